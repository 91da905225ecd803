/* Pull-apply: the server's rows written into the replica with capture off. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Bounds the key copies kept on the stack; far above any real primary key. */
#define MAX_PK_COLS 64

/* Rows per upsert statement when a page is applied: a statement's fixed cost (VDBE start and
 * halt, cursors opened and closed) is paid per batch instead of per row. */
#define UPSERT_BATCH_ROWS 32

static bool is_pk_col(const synced_table *t, uint32_t col)
{
    for (uint32_t k = 0; k < t->n_pk; k++) {
        if (t->pk[k] == col)
            return true;
    }
    return false;
}

/* INSERT of n_rows rows of the first n_vals columns (parameter n_vals * row + column + 1) that updates a row in
 * place when its key exists. Not INSERT OR REPLACE: that deletes and reinserts, firing delete
 * triggers and cascades. Rows are inserted in order, each seeing the ones before it, so of two
 * rows with one key the later wins, as with one statement per row. Several rows are inserted OR
 * FAIL: a row refused by a constraint (other than the key's, which the upsert handles) stops the
 * statement but keeps the rows before it, so SQLite keeps no statement journal to undo them (the
 * caller then applies the rows one by one to find the refused one; writing a row again with the
 * same values changes nothing). */
static char *upsert_sql(const synced_table *t, uint32_t n_vals, uint32_t n_rows)
{
    sqlite3_str *s = sqlite3_str_new(NULL);
    uint32_t n_set = 0;

    sqlite3_str_appendf(s, "INSERT%s INTO main.\"%w\"(", n_rows > 1 ? " OR FAIL" : "", t->name);
    for (uint32_t c = 0; c < n_vals; c++)
        sqlite3_str_appendf(s, "%s\"%w\"", c ? "," : "", t->cols[c]);
    sqlite3_str_appendall(s, ") VALUES");
    /* Anonymous parameters, numbered in order: SQLite looks each ?NNN up among those before it,
     * which made preparing a batch of 32 rows as costly as applying it. */
    for (uint32_t row = 0; row < n_rows; row++) {
        for (uint32_t c = 0; c < n_vals; c++)
            sqlite3_str_appendall(s, c ? ",?" : row ? "),(?" : "(?");
    }
    sqlite3_str_appendall(s, ") ON CONFLICT(");
    for (uint32_t k = 0; k < t->n_pk; k++)
        sqlite3_str_appendf(s, "%s\"%w\"", k ? "," : "", t->cols[t->pk[k]]);
    sqlite3_str_appendall(s, ") DO ");
    for (uint32_t c = 0; c < n_vals; c++) {
        if (is_pk_col(t, c))
            continue;
        sqlite3_str_appendf(s, "%s\"%w\"=excluded.\"%w\"", n_set ? "," : "UPDATE SET ",
                            t->cols[c], t->cols[c]);
        n_set++;
    }
    if (n_set == 0)
        sqlite3_str_appendall(s, "NOTHING"); /* every carried column is in the key */
    return sqlite3_str_finish(s);
}

static void where_pk(sqlite3_str *s, const synced_table *t, uint32_t first_param)
{
    sqlite3_str_appendall(s, " WHERE ");
    for (uint32_t k = 0; k < t->n_pk; k++)
        sqlite3_str_appendf(s, "%s\"%w\" IS ?%u", k ? " AND " : "", t->cols[t->pk[k]],
                            (unsigned)(first_param + k));
}

static char *delete_sql(const synced_table *t)
{
    sqlite3_str *s = sqlite3_str_new(NULL);

    sqlite3_str_appendf(s, "DELETE FROM main.\"%w\"", t->name);
    where_pk(s, t, 1);
    return sqlite3_str_finish(s);
}

static int prepare_owned(outpost_replica *r, char *sql, sqlite3_stmt **out_stmt)
{
    int rc;

    if (sql == NULL)
        return replica_fail(r, OUTPOST_ENOMEM, "out of memory building a statement");
    rc = replica_prepare(r, sql, out_stmt);
    sqlite3_free(sql);
    return rc;
}

static int step_library(outpost_replica *r, sqlite3_stmt *stmt, const char *what)
{
    int rc;

    r->mode = MODE_LIBRARY;
    rc = sqlite3_step(stmt);
    r->mode = MODE_APP;
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE)
        return replica_fail_sqlite(r, rc, what);
    return OUTPOST_OK;
}

static int run_upsert(outpost_replica *r, sqlite3_stmt *stmt, const proto_value *vals, uint32_t n)
{
    for (uint32_t c = 0; c < n; c++)
        value_bind(stmt, (int)c + 1, &vals[c]);
    return step_library(r, stmt, "applying a row");
}

static int run_delete(outpost_replica *r, sqlite3_stmt *stmt, const proto_value *pk, uint32_t n_pk)
{
    for (uint32_t k = 0; k < n_pk; k++)
        value_bind(stmt, (int)k + 1, &pk[k]);
    return step_library(r, stmt, "deleting a row");
}

int rows_upsert(outpost_replica *r, const synced_table *t, const proto_value *vals, uint32_t n_vals)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prepare_owned(r, upsert_sql(t, n_vals, 1), &stmt);

    if (rc == OUTPOST_OK)
        rc = run_upsert(r, stmt, vals, n_vals);
    sqlite3_finalize(stmt);
    return rc;
}

int rows_delete(outpost_replica *r, const synced_table *t, const proto_value *pk)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prepare_owned(r, delete_sql(t), &stmt);

    if (rc == OUTPOST_OK)
        rc = run_delete(r, stmt, pk, t->n_pk);
    sqlite3_finalize(stmt);
    return rc;
}

/* Sets the columns a change carries to their old values (use_old) or new ones, by key. */
int rows_update_cols(outpost_replica *r, const synced_table *t, const proto_change *change, bool use_old)
{
    sqlite3_str *s = sqlite3_str_new(NULL);
    sqlite3_stmt *stmt = NULL;
    proto_value pk[MAX_PK_COLS];
    uint32_t n_set = 0, param = 1;
    int rc;

    if (t->n_pk > MAX_PK_COLS) {
        sqlite3_free(sqlite3_str_finish(s));
        return replica_fail(r, OUTPOST_ESCHEMA, "table %s: primary key too wide", t->name);
    }
    sqlite3_str_appendf(s, "UPDATE main.\"%w\" SET ", t->name);
    for (uint32_t c = 0; c < change->n_cols; c++) {
        const proto_col *col = &change->cols[c];
        const proto_value *v = use_old ? &col->old_val : &col->new_val;

        for (uint32_t k = 0; k < t->n_pk; k++) {
            if (t->pk[k] == col->idx)
                pk[k] = col->old_val;
        }
        if (v->type == PROTO_UNDEF || col->idx >= t->n_cols)
            continue;
        sqlite3_str_appendf(s, "%s\"%w\"=?%u", n_set ? "," : "", t->cols[col->idx], (unsigned)param++);
        n_set++;
    }
    if (n_set == 0) {
        sqlite3_free(sqlite3_str_finish(s));
        return OUTPOST_OK;
    }
    where_pk(s, t, param);
    rc = prepare_owned(r, sqlite3_str_finish(s), &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    param = 1;
    for (uint32_t c = 0; c < change->n_cols; c++) {
        const proto_col *col = &change->cols[c];
        const proto_value *v = use_old ? &col->old_val : &col->new_val;

        if (v->type != PROTO_UNDEF && col->idx < t->n_cols)
            value_bind(stmt, (int)param++, v);
    }
    for (uint32_t k = 0; k < t->n_pk; k++)
        value_bind(stmt, (int)(param + k), &pk[k]);
    rc = step_library(r, stmt, "restoring a row");
    sqlite3_finalize(stmt);
    return rc;
}

/* The page's view of one table must fit the replica before anything of it is applied. */
static int table_rows_check(outpost_replica *r, const proto_table_rows *tr, const synced_table **out_t)
{
    const synced_table *t;

    if (tr->table == NULL)
        return replica_fail(r, OUTPOST_EPROTO, "ROWS names no table");
    t = replica_table(r, tr->table);
    if (t == NULL)
        return replica_fail(r, OUTPOST_EPROTO, "ROWS for table %s, which the installed schema does "
                            "not have (install the newer schema first)", tr->table);
    if (t->n_pk > MAX_PK_COLS)
        return replica_fail(r, OUTPOST_ESCHEMA, "table %s: primary key too wide", t->name);
    if (tr->n_rows > 0) {
        if (tr->rows == NULL || tr->n_columns == 0)
            return replica_fail(r, OUTPOST_EPROTO, "ROWS for %s lists rows but carries none", t->name);
        if (tr->n_columns > t->n_cols)
            return replica_fail(r, OUTPOST_EPROTO, "ROWS for %s has %u columns, this replica %u "
                                "(install the newer schema first)", t->name,
                                (unsigned)tr->n_columns, (unsigned)t->n_cols);
        for (uint32_t k = 0; k < t->n_pk; k++) {
            if (t->pk[k] >= tr->n_columns)
                return replica_fail(r, OUTPOST_EPROTO, "ROWS for %s lacks primary key column %s",
                                    t->name, t->cols[t->pk[k]]);
        }
    }
    if (tr->n_deleted + (uint64_t)tr->n_removed > 0) {
        if (tr->n_pk != t->n_pk)
            return replica_fail(r, OUTPOST_EPROTO, "ROWS deletions for %s carry %u key columns, the "
                                "key has %u", t->name, (unsigned)tr->n_pk, (unsigned)t->n_pk);
        if ((tr->n_deleted && tr->deleted == NULL) || (tr->n_removed && tr->removed == NULL))
            return replica_fail(r, OUTPOST_EPROTO, "ROWS for %s lists deletions but carries none",
                                t->name);
    }
    *out_t = t;
    return OUTPOST_OK;
}

/* Rows of one table of a page waiting to be upserted together. */
typedef struct upsert_queue {
    outpost_replica *r;
    const synced_table *t;
    const proto_table_rows *tr;
    sqlite3_stmt *one;  /* one row */
    sqlite3_stmt *many; /* per_batch rows, prepared when a batch first fills */
    uint32_t per_batch; /* 0: rows one by one (a table too wide for SQLite's parameter limit) */
    uint32_t n;
    uint32_t rows[UPSERT_BATCH_ROWS]; /* indexes into tr->rows, in page order */
} upsert_queue;

/* Fails naming the row (its place among its table's rows in the page; UINT32_MAX: a batch's
 * rows) and SQLite's reason. */
static int fail_row(upsert_queue *q, int sqlite_rc, uint32_t row)
{
    char what[160];

    if (row == UINT32_MAX)
        snprintf(what, sizeof what, "applying rows of %s", q->t->name);
    else
        snprintf(what, sizeof what, "applying row %u of %s", (unsigned)row, q->t->name);
    return replica_fail_sqlite(q->r, sqlite_rc, what);
}

static int bind_row(upsert_queue *q, sqlite3_stmt *stmt, uint32_t first_param, uint32_t row)
{
    uint32_t n = q->tr->n_columns;
    const proto_value *vals = &q->tr->rows[(size_t)row * n];

    for (uint32_t c = 0; c < n; c++) {
        int rc = value_bind(stmt, (int)(first_param + c), &vals[c]);

        if (rc != SQLITE_OK) {
            sqlite3_reset(stmt);
            return fail_row(q, rc, row);
        }
    }
    return OUTPOST_OK;
}

/* SQLITE_OK or SQLite's error (its message still on the connection). */
static int step_rows(upsert_queue *q, sqlite3_stmt *stmt)
{
    int rc;

    q->r->mode = MODE_LIBRARY;
    rc = sqlite3_step(stmt);
    q->r->mode = MODE_APP;
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int upsert_one(upsert_queue *q, uint32_t row)
{
    int rc = OUTPOST_OK;

    if (q->one == NULL)
        rc = prepare_owned(q->r, upsert_sql(q->t, q->tr->n_columns, 1), &q->one);
    if (rc == OUTPOST_OK)
        rc = bind_row(q, q->one, 1, row);
    if (rc == OUTPOST_OK) {
        rc = step_rows(q, q->one);
        if (rc != SQLITE_OK)
            rc = fail_row(q, rc, row);
    }
    return rc;
}

/* Writes the queued rows: a full batch in one statement, a shorter queue row by row. A batch a
 * constraint refused is applied again row by row, so that the error names the row that failed
 * exactly as the one-row path does. */
static int upsert_flush(upsert_queue *q)
{
    int rc = OUTPOST_OK;

    if (q->n > 0 && q->n == q->per_batch) {
        if (q->many == NULL)
            rc = prepare_owned(q->r, upsert_sql(q->t, q->tr->n_columns, q->per_batch), &q->many);
        for (uint32_t i = 0; i < q->n && rc == OUTPOST_OK; i++)
            rc = bind_row(q, q->many, i * q->tr->n_columns + 1, q->rows[i]);
        if (rc != OUTPOST_OK)
            return rc;
        rc = step_rows(q, q->many);
        if (rc == SQLITE_OK) {
            q->n = 0;
            return OUTPOST_OK;
        }
        if ((rc & 0xff) != SQLITE_CONSTRAINT)
            return fail_row(q, rc, UINT32_MAX);
        rc = OUTPOST_OK;
    }
    for (uint32_t i = 0; i < q->n && rc == OUTPOST_OK; i++)
        rc = upsert_one(q, q->rows[i]);
    q->n = 0;
    return rc;
}

static int upsert_queue_add(upsert_queue *q, uint32_t row)
{
    q->rows[q->n++] = row;
    return q->n == q->per_batch || q->n == UPSERT_BATCH_ROWS ? upsert_flush(q) : OUTPOST_OK;
}

static int apply_upserts(outpost_replica *r, const synced_table *t, const proto_table_rows *tr,
                         pending_filter *pending_rows)
{
    upsert_queue q = {.r = r, .t = t, .tr = tr};
    int limit = sqlite3_limit(r->db, SQLITE_LIMIT_VARIABLE_NUMBER, -1);
    proto_value pk[MAX_PK_COLS];
    int rc = OUTPOST_OK;

    if (tr->n_rows == 0)
        return OUTPOST_OK;
    q.per_batch = limit > 0 && (uint32_t)limit / tr->n_columns >= UPSERT_BATCH_ROWS ? UPSERT_BATCH_ROWS
                                                                                    : 0;
    for (uint32_t row = 0; rc == OUTPOST_OK && row < tr->n_rows; row++) {
        const proto_value *vals = &tr->rows[(size_t)row * tr->n_columns];
        bool pending = false;

        for (uint32_t c = 0; c < tr->n_columns && rc == OUTPOST_OK; c++) {
            if (vals[c].type == PROTO_UNDEF || vals[c].type > PROTO_BLOB) {
                /* the rows before it first, so that the first bad row of the page is named */
                rc = upsert_flush(&q);
                if (rc == OUTPOST_OK)
                    rc = replica_fail(r, OUTPOST_EPROTO, "ROWS for %s: row %u column %u has no value",
                                      t->name, (unsigned)row, (unsigned)c);
            }
        }
        for (uint32_t k = 0; k < t->n_pk; k++)
            pk[k] = vals[t->pk[k]];
        if (rc == OUTPOST_OK)
            rc = outbox_pending_filter_check(r, pending_rows, pk, t->n_pk, &pending);
        if (rc == OUTPOST_OK && !pending)
            rc = upsert_queue_add(&q, row);
        r->pull_kept += pending;
    }
    if (rc == OUTPOST_OK)
        rc = upsert_flush(&q);
    sqlite3_finalize(q.one);
    sqlite3_finalize(q.many);
    return rc;
}

static int apply_deletes(outpost_replica *r, const synced_table *t, const proto_value *keys, uint32_t n,
                         pending_filter *pending_rows)
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    if (n == 0)
        return OUTPOST_OK;
    rc = prepare_owned(r, delete_sql(t), &stmt);
    for (uint32_t row = 0; rc == OUTPOST_OK && row < n; row++) {
        const proto_value *pk = &keys[(size_t)row * t->n_pk];
        bool pending = false;

        rc = outbox_pending_filter_check(r, pending_rows, pk, t->n_pk, &pending);
        if (rc == OUTPOST_OK && !pending)
            rc = run_delete(r, stmt, pk, t->n_pk);
        r->pull_kept += pending;
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* Applies one table of a ROWS page (or of a REJECT) inside the caller's transaction, with
 * capture off, skipping rows that have pending outbox changes. */
int rows_apply_table(outpost_replica *r, const proto_table_rows *tr)
{
    const synced_table *t = NULL;
    pending_filter pending_rows = {0};
    int rc = table_rows_check(r, tr, &t);

    if (rc == OUTPOST_OK)
        rc = outbox_pending_filter_build(r, t->name, &pending_rows);
    if (rc == OUTPOST_OK)
        rc = apply_upserts(r, t, tr, &pending_rows);
    if (rc == OUTPOST_OK)
        rc = apply_deletes(r, t, tr->deleted, tr->n_deleted, &pending_rows);
    if (rc == OUTPOST_OK)
        rc = apply_deletes(r, t, tr->removed, tr->n_removed, &pending_rows);
    outbox_pending_filter_free(&pending_rows);
    return rc;
}

static int state_cursor(outpost_replica *r, uint64_t *out_cursor)
{
    int64_t cursor = 0;
    int rc = replica_query_int64(r, "SELECT cursor FROM _outpost_state WHERE id = 1",
                                 "reading the cursor", &cursor);

    if (rc == OUTPOST_OK)
        *out_cursor = (uint64_t)cursor;
    return rc;
}

static int state_store_cursor(outpost_replica *r, uint64_t cursor, const proto_rows *page)
{
    sqlite3_stmt *stmt = NULL;
    int rc = replica_prepare(r, "UPDATE _outpost_state SET cursor = ?1,"
                                " last_sync_ms = CASE WHEN ?2 THEN last_sync_ms ELSE ?3 END"
                                " WHERE id = 1", &stmt);

    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_int64(stmt, 1, cursor > INT64_MAX ? INT64_MAX : (int64_t)cursor);
    sqlite3_bind_int(stmt, 2, page->more ? 1 : 0);
    sqlite3_bind_int64(stmt, 3, replica_now_ms(r));
    rc = step_library(r, stmt, "storing the cursor");
    sqlite3_finalize(stmt);
    return rc;
}

static int state_store_pulled(outpost_replica *r, uint64_t cursor)
{
    sqlite3_stmt *stmt = NULL;
    int rc = replica_prepare(r, "UPDATE _outpost_pulled SET cursor = ?1 WHERE id = 1", &stmt);

    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_int64(stmt, 1, (int64_t)cursor); /* outpost_rows_apply checked its range */
    rc = step_library(r, stmt, "recording the completed pull");
    sqlite3_finalize(stmt);
    return rc;
}

/* Applies page (a const proto_rows) inside replica_apply_uncaptured(). */
static int page_apply(outpost_replica *r, void *ctx)
{
    const proto_rows *page = ctx;
    uint64_t cursor = 0;
    int rc = state_cursor(r, &cursor);

    if (rc != OUTPOST_OK)
        return rc;
    /* An older page was superseded by one already applied; applying it would move rows back. */
    if (page->cursor < cursor)
        return OUTPOST_OK;
    rc = outbox_pending_refresh(r);
    r->pull_kept = 0;
    for (uint32_t i = 0; rc == OUTPOST_OK && i < page->n_tables; i++)
        rc = rows_apply_table(r, &page->tables[i]);
    if (rc != OUTPOST_OK)
        return rc;
    /* A row kept for its pending local change is not what the server holds, and the server may
     * never send it again: once this device's change is merged, the row's later changes may all
     * be its own unaltered writes, which are not echoed (a second local edit while the echo of
     * the first arrives is enough). So the cursor stays before this page for the rest of this
     * pull, and the next pull, after the push, reads from there again. */
    bool held = r->pull_cursor_held || r->pull_kept > 0;
    rc = state_store_cursor(r, held ? cursor : page->cursor, page);
    if (rc == OUTPOST_OK && !held && !page->more)
        rc = state_store_pulled(r, page->cursor);
    if (rc == OUTPOST_OK)
        r->pull_cursor_held = held && page->more;
    return rc;
}

int rows_pulled_cursor(outpost_replica *r, uint64_t *out_seen)
{
    int64_t seen = 0;
    int rc = replica_query_int64(r, "SELECT cursor FROM _outpost_pulled WHERE id = 1",
                                 "reading the completed pull's cursor", &seen);

    *out_seen = rc == OUTPOST_OK && seen > 0 ? (uint64_t)seen : 0;
    return rc;
}

int outpost_rows_apply(outpost_replica *replica, const proto_rows *page)
{
    int rc;

    if (replica == NULL)
        return OUTPOST_EINVAL;
    rc = replica_check_usable(replica);
    if (rc != OUTPOST_OK)
        return rc;
    if (page == NULL)
        return replica_fail(replica, OUTPOST_EINVAL, "page is required");
    if (page->n_tables > 0 && page->tables == NULL)
        return replica_fail(replica, OUTPOST_EPROTO, "ROWS lists tables but carries none");
    /* Server sequences are SQLite integers: a cursor past 2^63-1 is no server's (the short
     * fuzzing run found one stored clamped, as a cursor the server never sent). */
    if (page->cursor > INT64_MAX)
        return replica_fail(replica, OUTPOST_EPROTO, "ROWS cursor %llu is beyond any server "
                            "sequence", (unsigned long long)page->cursor);
    if (replica->in_tx)
        return replica_fail(replica, OUTPOST_EMISUSE, "a transaction is open");
    /* Pulled rows are the server's, not this device's writes: never capture them. */
    rc = replica_apply_uncaptured(replica, page_apply, (void *)page);
    if (rc != OUTPOST_OK)
        return rc;
    replica_clear_error(replica);
    return OUTPOST_OK;
}
