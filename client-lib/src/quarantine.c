/* Quarantine: what the server refused stays on the device, inside the encrypted replica, until
 * a person resubmits it (corrected) or discards it. Filled by outpost_outbox_reject() in the
 * same local transaction that restores the server's version of the rows. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Bounds the key copies kept on the stack; far above any real primary key. */
#define MAX_PK_COLS 64

static const char *op_name(uint32_t op)
{
    switch (op) {
    case PROTO_OP_INSERT: return "INSERT";
    case PROTO_OP_DELETE: return "DELETE";
    default: return "UPDATE";
    }
}

static char *pk_json(outpost_replica *r, const proto_value *pk, uint32_t n_pk)
{
    sqlite3_str *s = sqlite3_str_new(r->db);

    sqlite3_str_appendchar(s, 1, '[');
    for (uint32_t i = 0; i < n_pk; i++) {
        if (i)
            sqlite3_str_appendchar(s, 1, ',');
        value_json_append(s, &pk[i]);
    }
    sqlite3_str_appendchar(s, 1, ']');
    return sqlite3_str_finish(s);
}

/* The REJECT's word on this row: its own item when the server named it, otherwise the first
 * item's reason (the whole transaction was refused with it). */
static void reject_reason_for(const proto_reject *rej, const char *table, const proto_value *pk,
                              uint32_t n_pk, uint32_t *out_code, const char **out_message,
                              bool *out_named)
{
    *out_code = 0;
    *out_message = "";
    *out_named = false;
    for (uint32_t i = 0; i < rej->n_rows; i++) {
        const proto_reject_row *row = &rej->rows[i];
        bool same = strcmp(row->table, table) == 0 && row->n_pk == n_pk;

        for (uint32_t k = 0; same && k < n_pk; k++)
            same = value_same(&row->pk[k], &pk[k]);
        if (same || i == 0) {
            *out_code = row->code;
            *out_message = row->message ? row->message : "";
            *out_named = same;
        }
        if (same)
            return;
    }
}

static int step_library(outpost_replica *r, sqlite3_stmt *stmt)
{
    int rc;

    r->mode = MODE_LIBRARY;
    rc = sqlite3_step(stmt);
    r->mode = MODE_APP;
    return rc;
}

/* Whether change ch wrote column col: every column of an INSERT, the new-value columns of an
 * UPDATE, none of a DELETE. */
static bool change_writes(const proto_change *ch, uint32_t col)
{
    if (ch->op != PROTO_OP_UPDATE)
        return ch->op == PROTO_OP_INSERT;
    for (uint32_t c = 0; c < ch->n_cols; c++) {
        if (ch->cols[c].idx == col)
            return ch->cols[c].new_val.type != PROTO_UNDEF;
    }
    return false;
}

/* Stores one column value of quarantine entry id. */
static int value_store(outpost_replica *r, sqlite3_stmt *ins, int64_t id, uint32_t pos,
                       const char *col, sqlite3_value *sv, const proto_value *pv, bool changed)
{
    int rc;

    sqlite3_bind_int64(ins, 1, id);
    sqlite3_bind_int64(ins, 2, pos);
    sqlite3_bind_text(ins, 3, col, -1, SQLITE_STATIC);
    sqlite3_bind_int(ins, 5, changed ? 1 : 0);
    if (sv)
        sqlite3_bind_value(ins, 4, sv);
    else
        value_bind(ins, 4, pv);
    rc = step_library(r, ins);
    sqlite3_reset(ins);
    sqlite3_clear_bindings(ins);
    return rc == SQLITE_DONE ? OUTPOST_OK : replica_fail_sqlite(r, rc, "quarantining a value");
}

/* The row as it stands in the replica now (the worker's version), into the quarantine entry.
 * *out_found is false when the replica has no such row. */
static int values_from_row(outpost_replica *r, sqlite3_stmt *ins, int64_t id,
                           const synced_table *t, const proto_change *ch, const proto_value *pk,
                           bool *out_found)
{
    sqlite3_str *s = sqlite3_str_new(r->db);
    sqlite3_stmt *sel = NULL;
    char *sql;
    int rc;

    *out_found = false;
    sqlite3_str_appendf(s, "SELECT * FROM main.\"%w\" WHERE ", t->name);
    for (uint32_t k = 0; k < t->n_pk; k++)
        sqlite3_str_appendf(s, "%s\"%w\" IS ?%u", k ? " AND " : "", t->cols[t->pk[k]],
                            (unsigned)k + 1);
    sql = sqlite3_str_finish(s);
    if (sql == NULL)
        return replica_fail(r, OUTPOST_ENOMEM, "out of memory quarantining a row");
    rc = replica_prepare(r, sql, &sel);
    sqlite3_free(sql);
    if (rc != OUTPOST_OK)
        return rc;
    for (uint32_t k = 0; k < t->n_pk; k++)
        value_bind(sel, (int)k + 1, &pk[k]);
    rc = step_library(r, sel);
    if (rc == SQLITE_ROW) {
        *out_found = true;
        rc = OUTPOST_OK;
        for (uint32_t c = 0; rc == OUTPOST_OK && c < t->n_cols && (int)c < sqlite3_column_count(sel); c++)
            rc = value_store(r, ins, id, c, t->cols[c], sqlite3_column_value(sel, (int)c), NULL,
                             change_writes(ch, c));
    } else {
        rc = rc == SQLITE_DONE ? OUTPOST_OK : replica_fail_sqlite(r, rc, "reading a refused row");
    }
    sqlite3_finalize(sel);
    return rc;
}

int quarantine_change(outpost_replica *r, const proto_reject *rej, const synced_table *t,
                      const proto_change *ch, int64_t *out_id)
{
    sqlite3_stmt *ins = NULL, *vals = NULL;
    proto_value pk[MAX_PK_COLS];
    const char *message;
    char *reason = NULL, *key = NULL;
    uint32_t code;
    bool named, found = false;
    int rc;

    *out_id = 0;
    if (t->n_pk > MAX_PK_COLS)
        return replica_fail(r, OUTPOST_ECORRUPT, "table %s: primary key too wide", t->name);
    for (uint32_t k = 0; k < t->n_pk; k++) {
        bool have = false;

        for (uint32_t c = 0; c < ch->n_cols && !have; c++) {
            if (ch->cols[c].idx == t->pk[k]) {
                pk[k] = ch->op == PROTO_OP_INSERT ? ch->cols[c].new_val : ch->cols[c].old_val;
                have = true;
            }
        }
        if (!have)
            return replica_fail(r, OUTPOST_ECORRUPT, "outbox entry %llu: a change to %s has no key",
                                (unsigned long long)rej->seq, t->name);
    }
    reject_reason_for(rej, t->name, pk, t->n_pk, &code, &message, &named);
    if (named)
        reason = sqlite3_mprintf("%s", message[0] ? message : "refused by the server");
    else
        reason = sqlite3_mprintf("refused with the rest of its transaction (outbox entry %llu)%s%s",
                                 (unsigned long long)rej->seq, message[0] ? ": " : "", message);
    key = pk_json(r, pk, t->n_pk);
    if (reason == NULL || key == NULL) {
        rc = replica_fail(r, OUTPOST_ENOMEM, "out of memory quarantining a row");
        goto done;
    }
    rc = replica_prepare(r, "INSERT INTO _outpost_rejected(at_ms, seq, tbl, op, pk, code, message)"
                            " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)", &ins);
    if (rc == OUTPOST_OK)
        rc = replica_prepare(r, "INSERT INTO _outpost_rejected_values(rejected_id, pos, col, value,"
                                " changed) VALUES(?1, ?2, ?3, ?4, ?5)", &vals);
    if (rc != OUTPOST_OK)
        goto done;
    sqlite3_bind_int64(ins, 1, replica_now_ms(r));
    sqlite3_bind_int64(ins, 2, rej->seq > INT64_MAX ? INT64_MAX : (int64_t)rej->seq);
    sqlite3_bind_text(ins, 3, t->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 4, op_name(ch->op), -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 5, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 6, code);
    sqlite3_bind_text(ins, 7, reason, -1, SQLITE_STATIC);
    rc = step_library(r, ins);
    if (rc != SQLITE_DONE) {
        rc = replica_fail_sqlite(r, rc, "quarantining a refused row");
        goto done;
    }
    *out_id = sqlite3_last_insert_rowid(r->db);
    /* The worker's whole row as the replica holds it; for a delete, or a row a later write
     * removed, the values the change itself carries. */
    rc = ch->op == PROTO_OP_DELETE ? OUTPOST_OK : values_from_row(r, vals, *out_id, t, ch, pk, &found);
    for (uint32_t c = 0; rc == OUTPOST_OK && !found && c < ch->n_cols; c++) {
        const proto_col *col = &ch->cols[c];
        const proto_value *v = ch->op == PROTO_OP_DELETE ? &col->old_val : &col->new_val;

        if (v->type == PROTO_UNDEF)
            v = &col->old_val; /* an UPDATE's key column: only its old value is carried */
        if (v->type == PROTO_UNDEF || col->idx >= t->n_cols)
            continue;
        rc = value_store(r, vals, *out_id, col->idx, t->cols[col->idx], NULL, v,
                         change_writes(ch, col->idx));
    }
done:
    sqlite3_finalize(ins);
    sqlite3_finalize(vals);
    sqlite3_free(reason);
    sqlite3_free(key);
    return rc;
}

/* ---- the public API ------------------------------------------------------------------------ */

static int api_check(outpost_replica *r)
{
    int rc;

    if (r == NULL)
        return OUTPOST_EINVAL;
    rc = replica_check_usable(r);
    if (rc != OUTPOST_OK)
        return rc;
    if (r->in_tx)
        return replica_fail(r, OUTPOST_EMISUSE, "a transaction is open");
    return OUTPOST_OK;
}

int outpost_rejected_list(outpost_replica *replica, int64_t *out_ids, size_t max_ids,
                          size_t *out_count)
{
    sqlite3_stmt *stmt = NULL;
    size_t n = 0;
    int rc = api_check(replica);

    if (rc != OUTPOST_OK)
        return rc;
    if (out_count == NULL || (max_ids > 0 && out_ids == NULL))
        return replica_fail(replica, OUTPOST_EINVAL, "out_count (and out_ids when max_ids > 0) "
                                                     "are required");
    rc = replica_prepare(replica, "SELECT id FROM _outpost_rejected ORDER BY id", &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    while ((rc = step_library(replica, stmt)) == SQLITE_ROW) {
        if (n < max_ids)
            out_ids[n] = sqlite3_column_int64(stmt, 0);
        n++;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return replica_fail_sqlite(replica, rc, "listing refused changes");
    *out_count = n;
    replica_clear_error(replica);
    return OUTPOST_OK;
}

static char *arena_strdup(struct outpost_arena **arena, const unsigned char *text)
{
    size_t len = text ? strlen((const char *)text) : 0;
    char *copy = arena_alloc(arena, len + 1);

    if (copy) {
        if (len)
            memcpy(copy, text, len);
        copy[len] = '\0';
    }
    return copy;
}

/* Reads the values of entry q->id into q. */
static int rejected_values_read(outpost_replica *r, outpost_rejected *q)
{
    sqlite3_stmt *stmt = NULL;
    uint32_t cap = 0;
    const char **cols = NULL;
    outpost_value *vals = NULL;
    uint8_t *changed = NULL;
    int rc = replica_prepare(r, "SELECT col, value, changed FROM _outpost_rejected_values"
                                " WHERE rejected_id = ?1 ORDER BY pos", &stmt);

    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_int64(stmt, 1, q->id);
    while ((rc = step_library(r, stmt)) == SQLITE_ROW) {
        if (q->n_values == cap) {
            uint32_t ncap = cap ? cap * 2 : 16;
            const char **gc = arena_alloc(&q->arena_, ncap * sizeof *gc);
            outpost_value *gv = arena_alloc(&q->arena_, ncap * sizeof *gv);
            uint8_t *gf = arena_alloc(&q->arena_, ncap * sizeof *gf);

            if (gc == NULL || gv == NULL || gf == NULL) {
                rc = SQLITE_NOMEM;
                break;
            }
            if (q->n_values) {
                memcpy(gc, cols, q->n_values * sizeof *gc);
                memcpy(gv, vals, q->n_values * sizeof *gv);
                memcpy(gf, changed, q->n_values * sizeof *gf);
            }
            cols = gc;
            vals = gv;
            changed = gf;
            cap = ncap;
        }
        proto_value v;
        cols[q->n_values] = arena_strdup(&q->arena_, sqlite3_column_text(stmt, 0));
        if (cols[q->n_values] == NULL ||
            value_from_sqlite(sqlite3_column_value(stmt, 1), &v, &q->arena_) != OUTPOST_OK) {
            rc = SQLITE_NOMEM;
            break;
        }
        value_to_public(&v, &vals[q->n_values]);
        changed[q->n_values] = sqlite3_column_int(stmt, 2) != 0;
        q->n_values++;
    }
    sqlite3_finalize(stmt);
    q->columns = cols;
    q->values = vals;
    q->changed = changed;
    return rc == SQLITE_DONE ? OUTPOST_OK : replica_fail_sqlite(r, rc, "reading a refused row");
}

int outpost_rejected_read(outpost_replica *replica, int64_t id, outpost_rejected **out_rejected)
{
    sqlite3_stmt *stmt = NULL;
    outpost_rejected *q = NULL;
    int rc;

    if (out_rejected)
        *out_rejected = NULL;
    rc = api_check(replica);
    if (rc != OUTPOST_OK)
        return rc;
    if (out_rejected == NULL)
        return replica_fail(replica, OUTPOST_EINVAL, "out_rejected is required");
    rc = replica_prepare(replica, "SELECT at_ms, seq, tbl, op, pk, code, message"
                                  " FROM _outpost_rejected WHERE id = ?1", &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_int64(stmt, 1, id);
    rc = step_library(replica, stmt);
    if (rc == SQLITE_DONE) {
        rc = replica_fail(replica, OUTPOST_EINVAL, "no refused change with id %lld", (long long)id);
        goto done;
    }
    if (rc != SQLITE_ROW) {
        rc = replica_fail_sqlite(replica, rc, "reading a refused change");
        goto done;
    }
    q = sqlite3_malloc64(sizeof *q);
    if (q == NULL) {
        rc = replica_fail(replica, OUTPOST_ENOMEM, "out of memory reading a refused change");
        goto done;
    }
    memset(q, 0, sizeof *q);
    q->id = id;
    q->at_ms = sqlite3_column_int64(stmt, 0);
    q->seq = (uint64_t)sqlite3_column_int64(stmt, 1);
    q->table = arena_strdup(&q->arena_, sqlite3_column_text(stmt, 2));
    q->op = arena_strdup(&q->arena_, sqlite3_column_text(stmt, 3));
    q->pk = arena_strdup(&q->arena_, sqlite3_column_text(stmt, 4));
    q->code = (uint32_t)sqlite3_column_int64(stmt, 5);
    q->code_name = proto_error_code_name(q->code);
    q->message = arena_strdup(&q->arena_, sqlite3_column_text(stmt, 6));
    if (q->table == NULL || q->op == NULL || q->pk == NULL || q->message == NULL) {
        rc = replica_fail(replica, OUTPOST_ENOMEM, "out of memory reading a refused change");
        goto done;
    }
    rc = rejected_values_read(replica, q);
    if (rc == OUTPOST_OK) {
        *out_rejected = q;
        q = NULL;
        replica_clear_error(replica);
    }
done:
    sqlite3_finalize(stmt);
    outpost_rejected_free(q);
    return rc;
}

void outpost_rejected_free(outpost_rejected *rejected)
{
    if (rejected == NULL)
        return;
    arena_free(rejected->arena_);
    sqlite3_free(rejected);
}

/* Removes entry id from quarantine and writes the audit line, inside the open transaction. */
static int rejected_close(outpost_replica *r, const outpost_rejected *q, const char *action)
{
    static const char *const sql[] = {
        "INSERT INTO _outpost_rejected_log(at_ms, action, rejected_id, seq, tbl, op, pk, code,"
        " message) SELECT ?2, ?3, id, seq, tbl, op, pk, code, message FROM _outpost_rejected"
        " WHERE id = ?1",
        "DELETE FROM _outpost_rejected_values WHERE rejected_id = ?1",
        "DELETE FROM _outpost_rejected WHERE id = ?1",
    };
    int rc = OUTPOST_OK;

    for (size_t i = 0; rc == OUTPOST_OK && i < sizeof sql / sizeof *sql; i++) {
        sqlite3_stmt *stmt = NULL;

        rc = replica_prepare(r, sql[i], &stmt);
        if (rc != OUTPOST_OK)
            break;
        sqlite3_bind_int64(stmt, 1, q->id);
        if (i == 0) {
            sqlite3_bind_int64(stmt, 2, replica_now_ms(r));
            sqlite3_bind_text(stmt, 3, action, -1, SQLITE_STATIC);
        }
        rc = step_library(r, stmt);
        sqlite3_finalize(stmt);
        rc = rc == SQLITE_DONE ? OUTPOST_OK : replica_fail_sqlite(r, rc, "closing a refused change");
    }
    return rc;
}

int outpost_rejected_discard(outpost_replica *replica, int64_t id)
{
    outpost_rejected *q = NULL;
    int rc = outpost_rejected_read(replica, id, &q);

    if (rc != OUTPOST_OK)
        return rc;
    rc = replica_begin(replica);
    if (rc == OUTPOST_OK) {
        rc = rejected_close(replica, q, "discarded");
        if (rc == OUTPOST_OK)
            rc = replica_commit(replica);
        else
            replica_rollback(replica);
    }
    outpost_rejected_free(q);
    if (rc == OUTPOST_OK)
        replica_clear_error(replica);
    return rc;
}

/* The statement that writes the corrected row back, or the delete again. A row the replica no
 * longer holds is inserted with every known column; a row it holds gets only the columns the
 * worker wrote (writes[i]) and the corrections: the others may have changed since (a newer
 * value from another device), and writing the worker's old copy of them over that would lose
 * it without a trace. */
static char *resubmit_sql(const synced_table *t, bool is_delete, const int32_t *col_of,
                          const bool *writes, uint32_t n_vals)
{
    sqlite3_str *s = sqlite3_str_new(NULL);
    uint32_t n_set = 0;

    if (is_delete) {
        sqlite3_str_appendf(s, "DELETE FROM main.\"%w\" WHERE ", t->name);
        for (uint32_t k = 0; k < t->n_pk; k++)
            sqlite3_str_appendf(s, "%s\"%w\" IS ?%u", k ? " AND " : "", t->cols[t->pk[k]],
                                (unsigned)k + 1);
        return sqlite3_str_finish(s);
    }
    sqlite3_str_appendf(s, "INSERT INTO main.\"%w\"(", t->name);
    for (uint32_t i = 0; i < n_vals; i++)
        sqlite3_str_appendf(s, "%s\"%w\"", i ? "," : "", t->cols[col_of[i]]);
    sqlite3_str_appendall(s, ") VALUES(");
    for (uint32_t i = 0; i < n_vals; i++)
        sqlite3_str_appendf(s, "%s?%u", i ? "," : "", (unsigned)i + 1);
    sqlite3_str_appendall(s, ") ON CONFLICT DO ");
    for (uint32_t i = 0; i < n_vals; i++) {
        bool in_pk = false;

        for (uint32_t k = 0; k < t->n_pk; k++)
            in_pk = in_pk || t->pk[k] == (uint32_t)col_of[i];
        if (in_pk || !writes[i])
            continue;
        sqlite3_str_appendf(s, "%s\"%w\"=excluded.\"%w\"", n_set ? "," : "UPDATE SET ",
                            t->cols[col_of[i]], t->cols[col_of[i]]);
        n_set++;
    }
    if (n_set == 0)
        sqlite3_str_appendall(s, "NOTHING");
    return sqlite3_str_finish(s);
}

static int32_t column_index(const synced_table *t, const char *name)
{
    for (uint32_t c = 0; c < t->n_cols; c++) {
        if (sqlite3_stricmp(t->cols[c], name) == 0)
            return (int32_t)c;
    }
    return -1;
}

/* The values to write: the quarantined ones with the corrections on top, by column. */
static int resubmit_values(outpost_replica *r, const synced_table *t, const outpost_rejected *q,
                           const char *const *columns, const outpost_value *values, uint32_t n,
                           int32_t *col_of, bool *writes, outpost_value *vals, uint32_t *out_n)
{
    uint32_t n_vals = 0;

    for (uint32_t i = 0; i < q->n_values; i++) {
        int32_t c = column_index(t, q->columns[i]);

        if (c < 0)
            continue; /* a column the schema no longer has */
        col_of[n_vals] = c;
        writes[n_vals] = q->changed[i] != 0;
        vals[n_vals++] = q->values[i];
    }
    for (uint32_t i = 0; i < n; i++) {
        int32_t c = columns[i] ? column_index(t, columns[i]) : -1;
        uint32_t at = 0;

        if (c < 0)
            return replica_fail(r, OUTPOST_EINVAL, "table %s has no column %s", t->name,
                                columns[i] ? columns[i] : "(null)");
        if (values[i].type == OUTPOST_VALUE_UNDEF)
            return replica_fail(r, OUTPOST_EINVAL, "column %s: an undefined value", columns[i]);
        while (at < n_vals && col_of[at] != c)
            at++;
        col_of[at] = c;
        writes[at] = true;
        vals[at] = values[i];
        if (at == n_vals)
            n_vals++;
    }
    *out_n = n_vals;
    return OUTPOST_OK;
}

int outpost_rejected_resubmit(outpost_replica *replica, int64_t id, const char *const *columns,
                              const outpost_value *values, uint32_t n_values, uint64_t *out_seq)
{
    outpost_rejected *q = NULL;
    const synced_table *t;
    int32_t *col_of = NULL;
    bool *writes = NULL;
    outpost_value *vals = NULL, pk[MAX_PK_COLS];
    uint32_t n_vals = 0;
    char *sql = NULL;
    bool is_delete;
    int rc;

    if (out_seq)
        *out_seq = 0;
    if (replica != NULL && n_values > 0 && (columns == NULL || values == NULL))
        return replica_fail(replica, OUTPOST_EINVAL, "columns and values are required when "
                                                     "n_values > 0");
    rc = outpost_rejected_read(replica, id, &q);
    if (rc != OUTPOST_OK)
        return rc;
    /* t is not used after outpost_tx_begin(), which may reload the table list. */
    t = replica_table(replica, q->table);
    if (t == NULL) {
        rc = replica_fail(replica, OUTPOST_ESCHEMA, "table %s is no longer synced", q->table);
        goto done;
    }
    is_delete = strcmp(q->op, "DELETE") == 0;
    if (is_delete && n_values > 0) {
        rc = replica_fail(replica, OUTPOST_EINVAL, "a refused delete takes no corrected values");
        goto done;
    }
    col_of = sqlite3_malloc64(((uint64_t)q->n_values + n_values + 1) * sizeof *col_of);
    writes = sqlite3_malloc64(((uint64_t)q->n_values + n_values + 1) * sizeof *writes);
    vals = sqlite3_malloc64(((uint64_t)q->n_values + n_values + 1) * sizeof *vals);
    if (col_of == NULL || writes == NULL || vals == NULL) {
        rc = replica_fail(replica, OUTPOST_ENOMEM, "out of memory resubmitting");
        goto done;
    }
    rc = resubmit_values(replica, t, q, columns, values, n_values, col_of, writes, vals, &n_vals);
    if (rc != OUTPOST_OK)
        goto done;
    if (is_delete) {
        for (uint32_t k = 0; k < t->n_pk && k < MAX_PK_COLS; k++) {
            uint32_t at = 0;

            while (at < n_vals && (uint32_t)col_of[at] != t->pk[k])
                at++;
            if (at == n_vals) {
                rc = replica_fail(replica, OUTPOST_ECORRUPT, "refused change %lld has no key",
                                  (long long)id);
                goto done;
            }
            pk[k] = vals[at];
        }
    }
    sql = resubmit_sql(t, is_delete, col_of, writes, n_vals);
    if (sql == NULL) {
        rc = replica_fail(replica, OUTPOST_ENOMEM, "out of memory resubmitting");
        goto done;
    }
    rc = outpost_tx_begin(replica);
    if (rc != OUTPOST_OK)
        goto done;
    rc = outpost_exec(replica, sql, is_delete ? pk : vals, is_delete ? t->n_pk : n_vals);
    if (rc == OUTPOST_OK)
        rc = rejected_close(replica, q, "resubmitted");
    if (rc == OUTPOST_OK)
        rc = outpost_tx_commit(replica, out_seq);
    else if (replica->in_tx) {
        char msg[OUTPOST_ERRMSG_SIZE];

        snprintf(msg, sizeof msg, "%s", replica->errmsg);
        outpost_tx_rollback(replica);
        snprintf(replica->errmsg, sizeof replica->errmsg, "resubmitting %lld: %.200s",
                 (long long)id, msg);
    }
done:
    sqlite3_free(sql);
    sqlite3_free(col_of);
    sqlite3_free(writes);
    sqlite3_free(vals);
    outpost_rejected_free(q);
    return rc;
}
