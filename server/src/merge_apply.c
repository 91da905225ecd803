/*
 * The merge engine's writes to the synced data tables. Identifiers come from the stored schema
 * and are always quoted; values are always bound, never formatted into SQL.
 *
 * On PostgreSQL every row goes through the schema's row check (store_rowcheck.h) first and is
 * written as SQLite would have stored it, or refused with SQLite's own message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merge_internal.h"
#include "store_rowcheck.h"

enum { SQL_MAX = 16384 };

static int refuse(push_ctx *c, const store_table *t, const proto_value *pk,
                  const proto_change *ch, const char *why)
{
    /* SQLite's text names the constraint and column, never the value. */
    char msg[300];
    snprintf(msg, sizeof msg, "the store refused the row: %.250s", why);
    return merge_reject(c, (store_table *)t, t->name, pk, PROTO_ERR_CONSTRAINT, msg, ch);
}

/* Whether a failed statement's code is a constraint of the table refusing the row. A unique
 * key is one too: the merge has looked the row's key up already, so a clash left is with a
 * UNIQUE column, or with a key equal under the key column's collation (a store made before
 * init refused those), and answering it with an ERROR would have the device send the entry
 * again for ever. */
static bool is_refusal(int rc)
{
    return rc == STORE_ECONSTRAINT || rc == STORE_EEXISTS;
}

/* A failed statement: constraint failures refuse the push; anything else fails it. why is the
 * engine's message for it, or NULL for db_errmsg's. */
static int step_result_why(push_ctx *c, int rc, const store_table *t, const proto_value *pk,
                           const proto_change *ch, const char *what, const char *why)
{
    if (rc == DB_DONE)
        return 0;
    if (is_refusal(rc))
        return refuse(c, t, pk, ch, why != NULL ? why : db_errmsg(c->st->conn));
    if (why == NULL || rc == STORE_EFULL || rc == STORE_EBUSY || rc >= 0)
        return store_fail_db(c->st, rc, what);
    return store_fail(c->st, rc, "%s: %s", what, why);
}

static int step_result(push_ctx *c, int rc, const store_table *t, const proto_value *pk,
                       const proto_change *ch, const char *what)
{
    return step_result_why(c, rc, t, pk, ch, what, NULL);
}

/* PostgreSQL: a failed statement aborts the transaction, and the merge goes on reading after a
 * refusal (to list every refused row). A one-row write the row check cannot vouch for (a UNIQUE
 * index) runs inside a savepoint, rolled back when the server refuses the row; why gets the
 * server's message ("" when db_errmsg still has it). */
static int guarded_step(push_ctx *c, db_stmt *s, char *why, size_t why_size)
{
    why[0] = 0;
    if (c->st->rowcheck == NULL)
        return db_step(s); /* SQLite: the statement's own message, db_errmsg */
    int out = store_exec(c->st, "SAVEPOINT outpost_row", "write row");
    if (out != 0)
        return out;
    int rc = db_step(s);
    snprintf(why, why_size, "%s", rc == DB_DONE ? "" : db_errmsg(c->st->conn));
    out = store_exec(c->st,
                     rc == DB_DONE ? "RELEASE SAVEPOINT outpost_row"
                                   : "ROLLBACK TO SAVEPOINT outpost_row;"
                                     " RELEASE SAVEPOINT outpost_row",
                     "write row");
    return out != 0 ? out : rc;
}

/* PostgreSQL: the row (n_cols values in vals) as SQLite stores it, into out; 1 when refused
 * (the refusal recorded), 0 when out holds it, or a STORE_E* code. */
static int row_check(push_ctx *c, const store_table *t, const proto_value *vals, uint32_t n,
                     const proto_value *pk, const proto_change *ch, proto_value *out)
{
    char msg[200];
    int rc = store_rowcheck_row(c->st->rowcheck, t->name, (const char *const *)t->cols, t->n_cols,
                                vals, n, &c->arena, out, msg, sizeof msg);
    if (rc == STORE_ROWCHECK_REFUSED) {
        rc = refuse(c, t, pk, ch, msg);
        return rc != 0 ? rc : 1;
    }
    return rc == 0 ? 0 : store_fail(c->st, rc, "row check: %s", msg);
}

/* INSERT of the first n values (n < t->n_cols for a device on an older schema). */
int merge_apply_insert(push_ctx *c, store_table *t, const proto_value *vals, uint32_t n,
                       const proto_value *pk, const proto_change *ch)
{
    int out = store_table_prepare(c->st, t);
    if (out != 0)
        return out;
    if (c->st->rowcheck != NULL) { /* the whole row, defaults filled in by the check */
        proto_value *row = store_arena_alloc(&c->arena, t->n_cols * sizeof *row);
        if (row == NULL)
            return store_fail(c->st, STORE_ENOMEM, "out of memory");
        out = row_check(c, t, vals, n, pk, ch, row);
        if (out != 0)
            return out < 0 ? out : 0;
        vals = row;
        n = t->n_cols;
    }
    db_stmt *s = t->ins_row;
    bool dynamic = n < t->n_cols;
    if (dynamic) {
        char sql[SQL_MAX], q[512];
        size_t at = 0;
        if (store_quote_name(c->st, q, sizeof q, t->name) != 0)
            return store_fail(c->st, STORE_EINVAL, "table name too long");
        at += (size_t)snprintf(sql + at, sizeof sql - at, "INSERT INTO %s(", q);
        for (uint32_t i = 0; i < n && at < sizeof sql; i++) {
            if (store_quote_name(c->st, q, sizeof q, t->cols[i]) != 0)
                return store_fail(c->st, STORE_EINVAL, "column name too long");
            at += (size_t)snprintf(sql + at, sizeof sql - at, "%s%s", i ? ", " : "", q);
        }
        for (uint32_t i = 0; i < n && at < sizeof sql; i++)
            at +=
                (size_t)snprintf(sql + at, sizeof sql - at, "%s?%u", i ? ", " : ") VALUES(", i + 1);
        if (at >= sizeof sql - 2)
            return store_fail(c->st, STORE_EINVAL, "table %s: statement too long", t->name);
        memcpy(sql + at, ")", 2);
        int rc = db_prepare(c->st->conn, sql, &s);
        if (rc != STORE_OK)
            return store_fail_db(c->st, rc, "prepare insert");
    }
    int rc = STORE_OK;
    sqlite3_stmt *lite = db_stmt_sqlite(s);
    if (lite != NULL) { /* SQLite binds the values as they are, without the seam's calls */
        for (uint32_t i = 0; i < n && rc == STORE_OK; i++) {
            int b = store_value_bind(lite, (int)i + 1, &vals[i]);
            if (b != SQLITE_OK)
                rc = b == SQLITE_NOMEM ? STORE_ENOMEM : STORE_EIO;
        }
    } else {
        for (uint32_t i = 0; i < n && rc == STORE_OK; i++)
            rc = store_value_bind_any(s, (int)i + 1, &vals[i]);
    }
    char why[256] = "";
    if (rc == STORE_OK)
        rc = guarded_step(c, s, why, sizeof why);
    if (dynamic)
        db_finalize(s);
    else
        db_reset(s); /* every parameter is bound again before the next step */
    return step_result_why(c, rc, t, pk, ch, "insert row", why[0] ? why : NULL);
}

/*
 * New rows are queued and written MERGE_INSERT_BATCH per statement: a bulk push of new rows then
 * pays a statement's fixed cost (on SQLite its cursors, its start and end; on PostgreSQL a round
 * trip) once per batch rather than once per row.
 *
 * On SQLite the statement is INSERT OR FAIL, so that SQLite keeps no statement journal (a copy of
 * every page the statement changes, to undo it alone): a constraint failure ends it with the rows
 * before the failing one written (sqlite3_changes counts them), and the rest is written row by
 * row, which refuses the failing row exactly as without the queue and applies nothing after it.
 * The refusal rolls the push back whole, the rows before it with it.
 *
 * On PostgreSQL a row is checked (row_check) when it is queued, so a refusal of the check keeps
 * its place in the push (merge_reject writes the queue first). A failed statement aborts the
 * transaction and writes none of its rows, so the queue is written inside a savepoint: when the
 * server refuses a row of the batch (a constraint the row check cannot foresee), the savepoint
 * is rolled back and the batch written row by row, which refuses the failing row as the one-row
 * path does, after the rows before it; after a refusal the savepoint is rolled back again, so
 * that the rest of the push can still be checked in a transaction that is not aborted.
 */

static int insert_batch_prepare(push_ctx *c, store_table *t)
{
    if (t->ins_rows != NULL)
        return 0;
    char q[512];
    if (store_quote_name(c->st, q, sizeof q, t->name) != 0)
        return store_fail(c->st, STORE_EINVAL, "table name too long");
    size_t row = 2 + 2 * (size_t)t->n_cols; /* "(?,?)," */
    size_t size = 40 + strlen(q) + MERGE_INSERT_BATCH * row;
    char *sql = malloc(size);
    if (sql == NULL)
        return store_fail(c->st, STORE_ENOMEM, "out of memory");
    size_t at =
        (size_t)snprintf(sql, size, "INSERT %sINTO %s VALUES", store_insert_or_fail(c->st), q);
    for (uint32_t i = 0; i < MERGE_INSERT_BATCH; i++) {
        sql[at++] = i ? ',' : ' ';
        sql[at++] = '(';
        for (uint32_t k = 0; k < t->n_cols; k++) {
            if (k)
                sql[at++] = ',';
            sql[at++] = '?';
        }
        sql[at++] = ')';
    }
    sql[at] = 0;
    int rc = db_prepare(c->st->conn, sql, &t->ins_rows);
    free(sql);
    return rc == STORE_OK ? 0 : store_fail_db(c->st, rc, "prepare insert");
}

/* Binds queued row i's values (the change's on SQLite, the checked row's on PostgreSQL) from
 * parameter base + 1 on. */
static int bind_new_row(push_ctx *c, db_stmt *s, int base, uint32_t i)
{
    const store_table *t = c->pending_t;
    sqlite3_stmt *lite = db_stmt_sqlite(s);
    if (lite == NULL) {
        int rc = STORE_OK;
        for (uint32_t k = 0; k < t->n_cols && rc == STORE_OK; k++)
            rc = store_value_bind_any(s, base + (int)k + 1, &c->pending_vals[i][k]);
        return rc;
    }
    const proto_change *ch = c->pending[i];
    for (uint32_t k = 0; k < t->n_cols; k++) {
        int b = store_value_bind(lite, base + (int)k + 1, &ch->cols[k].new_val);
        if (b != SQLITE_OK)
            return b == SQLITE_NOMEM ? STORE_ENOMEM : STORE_EIO;
    }
    return STORE_OK;
}

/* Queued row i alone, through the table's one-row INSERT; a constraint failure refuses it. */
static int insert_one_queued(push_ctx *c, store_table *t, uint32_t i)
{
    const proto_change *ch = c->pending[i];
    db_stmt *s = t->ins_row;
    int rc = bind_new_row(c, s, 0, i);
    if (rc == STORE_OK)
        rc = db_step(s);
    db_reset(s);
    if (!is_refusal(rc))
        return step_result(c, rc, t, NULL, ch, "insert row");
    proto_value *pk = store_arena_alloc(&c->arena, t->n_pk * sizeof *pk);
    if (pk == NULL)
        return store_fail(c->st, STORE_ENOMEM, "out of memory");
    for (uint32_t k = 0; k < t->n_pk; k++)
        pk[k] = ch->cols[t->pk[k]].new_val;
    return step_result(c, rc, t, pk, ch, "insert row");
}

int merge_apply_flush(push_ctx *c)
{
    uint32_t n = c->n_pending;
    store_table *t = c->pending_t;
    c->n_pending = 0; /* emptied first: a refusal below goes through merge_reject, which flushes */
    if (n == 0)
        return 0;
    bool pg = c->st->rowcheck != NULL;
    int out = pg ? store_exec(c->st, "SAVEPOINT outpost_rows", "insert rows") : 0;
    if (out != 0)
        return out;
    uint32_t first = 0; /* the first row not written yet */
    if (n == MERGE_INSERT_BATCH) {
        out = insert_batch_prepare(c, t);
        if (out != 0)
            return out;
        int rc = STORE_OK;
        for (uint32_t i = 0; i < n && rc == STORE_OK; i++)
            rc = bind_new_row(c, t->ins_rows, (int)(i * t->n_cols), i);
        if (rc == STORE_OK)
            rc = db_step(t->ins_rows);
        /* OR FAIL: the rows before a refused one; PostgreSQL writes all or none */
        int written = pg ? 0 : sqlite3_changes(c->st->db);
        db_reset(t->ins_rows); /* every parameter is bound again before the next step */
        bool refused = is_refusal(rc);
        if (rc == DB_DONE)
            return pg ? store_exec(c->st, "RELEASE SAVEPOINT outpost_rows", "insert rows") : 0;
        if (!refused)
            return store_fail_db(c->st, rc, "insert rows");
        if (pg) /* the batch's statement aborted the transaction: back to before it */
            out = store_exec(c->st, "ROLLBACK TO SAVEPOINT outpost_rows", "insert rows");
        if (out != 0)
            return out;
        if (written < 0 || (uint32_t)written >= n)
            return store_fail(c->st, STORE_EIO, "insert rows: %d of %u rows written, none refused",
                              written, n);
        first = (uint32_t)written;
    }
    /* a short queue, or the rest of a batch one of whose rows was refused: row by row */
    for (uint32_t i = first; i < n && c->n_rejects == 0; i++) {
        out = insert_one_queued(c, t, i);
        if (out != 0)
            return out;
    }
    if (!pg)
        return 0;
    /* A row refused by PostgreSQL aborted the transaction: rolled back to before the queue (the
     * push is refused whole), so that the rest of the push can still be checked. */
    return store_exec(c->st,
                      c->n_rejects > 0 ? "ROLLBACK TO SAVEPOINT outpost_rows;"
                                         " RELEASE SAVEPOINT outpost_rows"
                                       : "RELEASE SAVEPOINT outpost_rows",
                      "insert rows");
}

int merge_apply_insert_new(push_ctx *c, store_table *t, const proto_value *vals, uint32_t n,
                           const proto_value *pk, const proto_change *ch)
{
    /* a batch of a wide table could take more parameters than this SQLite allows (PostgreSQL
     * takes 65535, more than 32 rows of its 1600 columns at most) */
    bool pg = c->st->rowcheck != NULL;
    bool queue = pg || (c->st->db != NULL && n == t->n_cols &&
                        (int64_t)t->n_cols * MERGE_INSERT_BATCH <=
                            sqlite3_limit(c->st->db, SQLITE_LIMIT_VARIABLE_NUMBER, -1));
    if (!queue || (c->n_pending > 0 && c->pending_t != t)) {
        int out = merge_apply_flush(c);
        if (out != 0 || c->n_rejects > 0)
            return out;
        if (!queue)
            return merge_apply_insert(c, t, vals, n, pk, ch);
    }
    int out = store_table_prepare(c->st, t);
    if (out != 0)
        return out;
    proto_value *row = NULL;
    if (pg) { /* checked now, so that a refusal by the check keeps its place in the push */
        row = store_arena_alloc(&c->arena, t->n_cols * sizeof *row);
        if (row == NULL)
            return store_fail(c->st, STORE_ENOMEM, "out of memory");
        out = row_check(c, t, vals, n, pk, ch, row);
        if (out != 0)
            return out < 0 ? out : 0;
    }
    c->pending_t = t;
    c->pending_vals[c->n_pending] = row;
    c->pending[c->n_pending++] = ch;
    return c->n_pending == MERGE_INSERT_BATCH ? merge_apply_flush(c) : 0;
}

/* UPDATE t SET the columns flagged in set[] to vals[] WHERE pk. */
int merge_apply_update(push_ctx *c, const store_table *t, const bool *set, const proto_value *vals,
                       const proto_value *pk, const proto_change *ch)
{
    char sql[SQL_MAX], q[512];
    size_t at = 0;
    bool pg = c->st->rowcheck != NULL;
    if (store_quote_name(c->st, q, sizeof q, t->name) != 0)
        return store_fail(c->st, STORE_EINVAL, "table name too long");
    at += (size_t)snprintf(sql, sizeof sql, "UPDATE %s SET ", q);
    int param = 0;
    for (uint32_t i = 0; i < t->n_cols && at < sizeof sql; i++) {
        if (!set[i])
            continue;
        if (store_quote_name(c->st, q, sizeof q, t->cols[i]) != 0)
            return store_fail(c->st, STORE_EINVAL, "column name too long");
        param++; /* numbered without gaps: PostgreSQL cannot type an unused parameter */
        at += (size_t)snprintf(sql + at, sizeof sql - at, "%s%s = ?%d", param > 1 ? ", " : "", q,
                               param);
    }
    for (uint32_t k = 0; k < t->n_pk && at < sizeof sql; k++) {
        if (store_quote_name(c->st, q, sizeof q, t->cols[t->pk[k]]) != 0)
            return store_fail(c->st, STORE_EINVAL, "column name too long");
        at += (size_t)snprintf(sql + at, sizeof sql - at, "%s%s %s ?%d", k ? " AND " : " WHERE ",
                               q, pg ? "=" : "IS", param + (int)k + 1);
    }
    if (at >= sizeof sql)
        return store_fail(c->st, STORE_EINVAL, "table %s: statement too long", t->name);
    if (param == 0)
        return 0;
    if (pg) { /* SQLite checks the whole row an UPDATE leaves: so does the row check */
        proto_value *row = store_arena_alloc(&c->arena, 2 * t->n_cols * sizeof *row);
        bool found = false;
        if (row == NULL)
            return store_fail(c->st, STORE_ENOMEM, "out of memory");
        int out = row_read(c->st, (store_table *)t, pk, &c->arena, row, &found);
        if (out != 0)
            return out;
        for (uint32_t i = 0; i < t->n_cols; i++)
            if (set[i] || !found)
                row[i] = vals[i];
        out = row_check(c, t, row, t->n_cols, pk, ch, row + t->n_cols);
        if (out != 0)
            return out < 0 ? out : 0;
        vals = row + t->n_cols;
    }
    db_stmt *s = NULL;
    int rc = db_prepare(c->st->conn, sql, &s);
    if (rc != STORE_OK)
        return store_fail_db(c->st, rc, "prepare update");
    int p = 0;
    for (uint32_t i = 0; i < t->n_cols && rc == STORE_OK; i++)
        if (set[i])
            rc = store_value_bind_any(s, ++p, &vals[i]);
    for (uint32_t k = 0; k < t->n_pk && rc == STORE_OK; k++)
        rc = store_value_bind_any(s, ++p, &pk[k]);
    char why[256] = "";
    if (rc == STORE_OK)
        rc = guarded_step(c, s, why, sizeof why);
    db_finalize(s);
    return step_result_why(c, rc, t, pk, ch, "update row", why[0] ? why : NULL);
}

int merge_apply_delete(push_ctx *c, store_table *t, const proto_value *pk, const proto_change *ch)
{
    int out = store_table_prepare(c->st, t);
    if (out != 0)
        return out;
    int rc = STORE_OK;
    for (uint32_t k = 0; k < t->n_pk && rc == STORE_OK; k++)
        rc = store_value_bind_any(t->del_row, (int)k + 1, &pk[k]);
    if (rc == STORE_OK)
        rc = db_step(t->del_row);
    db_reset(t->del_row);
    return step_result(c, rc, t, pk, ch, "delete row");
}
