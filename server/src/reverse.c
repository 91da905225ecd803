/*
 * A supervisor's decision on a logged conflict. Keeping changes no data; reversing writes the
 * losing value back as a new change made by the server (device number 0) with an HLC newer
 * than the column's current version, through the merge engine's own change log, so that pull
 * sends it to every device in scope, the devices that wrote either side included.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merge_internal.h"
#include "store_dashboard.h"
#include "store_rowcheck.h"

typedef struct conflict_rec {
    int64_t table_id;
    int32_t col;
    bool reversible;
    bool decided;
    char scope[64];
    store_bytes pk_blob;
    proto_value losing;
    uint64_t winner_hlc; /* the version the winning write left in the column */
    int64_t winner_no;   /* its device's number, -1 when not known */
} conflict_rec;

static bool in_teams(const char (*teams)[64], uint32_t n_teams, const char *team)
{
    for (uint32_t i = 0; i < n_teams; i++)
        if (strcmp(teams[i], team) == 0)
            return true;
    return false;
}

static int read_conflict(store *st, int64_t id, store_arena *arena, conflict_rec *rec)
{
    /* The team: a refusal names its own, a merge decision is the row's (store_dashboard.c). */
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn,
                        "SELECT c.table_id, c.col, c.reversible, rf.team, r.scope, c.pk,"
                        " c.losing_value, d.conflict_id IS NOT NULL, COALESCE(c.winner_hlc, 0),"
                        " COALESCE(wd.no, -1)"
                        " FROM _outpost_conflicts c LEFT JOIN _outpost_rows r"
                        " ON r.table_id = c.table_id AND r.pk = c.pk"
                        " LEFT JOIN _outpost_devices wd ON wd.id = c.winner_device"
                        " LEFT JOIN _outpost_conflict_refusals rf ON rf.conflict_id = c.id"
                        " LEFT JOIN _outpost_conflict_decisions d ON d.conflict_id = c.id"
                        " WHERE c.id = ?1",
                        &stmt);
    int out = STORE_OK;

    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 1, id);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    if (rc == DB_ROW) {
        const char *team = db_column_text(stmt, 3);
        proto_value scope = {.type = PROTO_NULL};
        size_t n_pk = 0;
        const void *pk = db_column_blob(stmt, 5, &n_pk);
        rec->table_id = db_column_int64(stmt, 0);
        rec->col = (int32_t)db_column_int64(stmt, 1);
        rec->reversible = db_column_int64(stmt, 2) != 0;
        rec->decided = db_column_int64(stmt, 7) != 0;
        rec->winner_hlc = (uint64_t)db_column_int64(stmt, 8);
        rec->winner_no = db_column_int64(stmt, 9);
        rec->scope[0] = '\0';
        if (team != NULL && team[0] != '\0')
            snprintf(rec->scope, sizeof rec->scope, "%s", team);
        else if (store_value_column_any(arena, stmt, 4, &scope) == STORE_OK &&
                 scope.type == PROTO_TEXT)
            snprintf(rec->scope, sizeof rec->scope, "%.*s", (int)scope.u.b.n,
                     (const char *)scope.u.b.p);
        rec->pk_blob.len = 0;
        if (n_pk > 0) {
            rec->pk_blob.data = malloc(n_pk);
            if (!rec->pk_blob.data) {
                out = store_fail(st, STORE_ENOMEM, "out of memory");
            } else {
                memcpy(rec->pk_blob.data, pk, n_pk);
                rec->pk_blob.len = rec->pk_blob.cap = n_pk;
            }
        }
        if (out == STORE_OK && store_value_column_any(arena, stmt, 6, &rec->losing) != 0)
            out = store_fail(st, STORE_ENOMEM, "out of memory");
        rc = DB_DONE;
    } else if (rc == DB_DONE) {
        out = store_fail(st, STORE_ENOTFOUND, "no conflict %lld", (long long)id);
    }
    db_finalize(stmt);
    if (out == STORE_OK && rc != DB_DONE)
        out = store_fail_db(st, rc, "read conflict");
    return out;
}

static int record_decision(store *st, int64_t id, const char *decision, const char *user,
                           uint64_t now_ms, int64_t server_seq)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn,
                        "INSERT INTO _outpost_conflict_decisions VALUES(?1, ?2, ?3, ?4, ?5)",
                        &stmt);

    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 1, id);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 2, decision);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 3, user);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 4, (int64_t)now_ms);
    if (rc == STORE_OK)
        rc = server_seq > 0 ? db_bind_int64(stmt, 5, server_seq) : db_bind_null(stmt, 5);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    db_finalize(stmt);
    return rc == DB_DONE ? STORE_OK : store_fail_db(st, rc, "record decision");
}

/* UPDATE t SET col = losing WHERE pk = ..., on the data table (on PostgreSQL, the row as it
 * would be is checked by SQLite's rules first, as the merge does). */
static int write_value(store *st, push_ctx *c, store_table *t, uint32_t col,
                       const proto_value *pk, const proto_value *value)
{
    char sql[2048], ident[200];
    size_t len;
    db_stmt *stmt = NULL;
    int rc;

    if (store_quote_name(st, ident, sizeof ident, t->name) != 0)
        return store_fail(st, STORE_EINVAL, "table name too long");
    len = (size_t)snprintf(sql, sizeof sql, "UPDATE %s SET ", ident);
    if (store_quote_name(st, ident, sizeof ident, t->cols[col]) != 0)
        return store_fail(st, STORE_EINVAL, "column name too long");
    len += (size_t)snprintf(sql + len, sizeof sql - len, "%s = ?1 WHERE ", ident);
    for (uint32_t k = 0; k < t->n_pk && len < sizeof sql; k++) {
        if (store_quote_name(st, ident, sizeof ident, t->cols[t->pk[k]]) != 0)
            return store_fail(st, STORE_EINVAL, "column name too long");
        len += (size_t)snprintf(sql + len, sizeof sql - len, "%s%s = ?%u", k ? " AND " : "",
                                ident, k + 2);
    }
    if (len >= sizeof sql)
        return store_fail(st, STORE_EINVAL, "statement too long");
    if (st->rowcheck != NULL) {
        proto_value *row = store_arena_alloc(&c->arena, 2 * t->n_cols * sizeof *row);
        bool found = false;
        char msg[200];
        if (row == NULL)
            return store_fail(st, STORE_ENOMEM, "out of memory");
        rc = row_read(st, t, pk, &c->arena, row, &found);
        if (rc != STORE_OK)
            return rc;
        row[col] = *value;
        rc = store_rowcheck_row(st->rowcheck, t->name, (const char *const *)t->cols, t->n_cols,
                                row, t->n_cols, &c->arena, row + t->n_cols, msg, sizeof msg);
        if (rc == STORE_ROWCHECK_REFUSED)
            return store_fail(st, STORE_EINVAL,
                              "the losing value breaks a constraint of the row as it is now");
        if (rc != 0)
            return store_fail(st, rc, "row check: %s", msg);
        value = &row[t->n_cols + col];
    }
    rc = db_prepare(st->conn, sql, &stmt);
    if (rc == STORE_OK)
        rc = store_value_bind_any(stmt, 1, value);
    for (uint32_t k = 0; rc == STORE_OK && k < t->n_pk; k++)
        rc = store_value_bind_any(stmt, (int)k + 2, &pk[k]);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    db_finalize(stmt);
    if (rc == STORE_ECONSTRAINT)
        return store_fail(st, STORE_EINVAL,
                          "the losing value breaks a constraint of the row as it is now");
    return rc == DB_DONE ? STORE_OK : store_fail_db(st, rc, "write reversal");
}

const char *store_dash_reverse_refusal(const store_table *t, int32_t col, bool reversible,
                                       const row_meta *now, uint64_t winner_hlc,
                                       int64_t winner_no, const proto_value *losing,
                                       const char (*teams)[64], uint32_t n_teams, char *buf,
                                       size_t n_buf)
{
    char team[64];
    uint64_t col_hlc = 0;
    int64_t col_device = 0;

    if (!t || col < 0 || (uint32_t)col >= t->n_cols || !reversible)
        return "this decision cannot be reversed (a row-level conflict or a table without "
               "reversible merges)";
    /* Writing the losing value back would bring a deleted record back to life, which nobody
     * asked for: a record is re-created by a person, never by a reversal. */
    if (!now->exists || now->deleted)
        return "the record was deleted since: reversing would bring it back, so this decision "
               "can only be kept";
    /* Someone wrote the field after the conflict (an edit, another conflict, the record deleted
     * and made again): a reversal would overwrite that later value, which the supervisor never
     * saw, without a trace for its writer. */
    row_version_get(now, (uint32_t)col, &col_hlc, &col_device);
    if (col_hlc != winner_hlc || (winner_no >= 0 && col_device != winner_no))
        return "the field was changed again since this conflict: reversing would overwrite that "
               "later edit, so this decision can only be kept";
    /* Reversing a scope-column decision writes the losing team: only one the supervisor holds. */
    if ((uint32_t)col != t->scope_idx)
        return NULL;
    if (losing->type != PROTO_TEXT || losing->u.b.n == 0 || losing->u.b.n >= sizeof team)
        return "reversing would give the row no team: refused";
    memcpy(team, losing->u.b.p, losing->u.b.n);
    team[losing->u.b.n] = '\0';
    if (in_teams(teams, n_teams, team))
        return NULL;
    snprintf(buf, n_buf, "reversing would move the row to team %s, which you do not supervise: "
                         "refused", team);
    return buf;
}

static int apply_reversal(store *st, push_ctx *c, conflict_rec *rec, const char (*teams)[64],
                          uint32_t n_teams)
{
    store_table *t = store_table_by_id(st, rec->table_id);
    proto_value pk[16];
    proto_value scope_new;
    row_meta meta;
    uint32_t n_pk = 0;
    uint64_t col_hlc = 0;
    int64_t col_device = 0;
    const char *refusal;
    char why[160];
    int out;

    /* Asked as the dashboard's listing asks it (store_dash_reverse_refusal), on the row as it
     * is now, in this transaction. */
    out = row_meta_get(st, rec->table_id, &rec->pk_blob, &c->arena, &meta);
    if (out != STORE_OK)
        return out;
    refusal = store_dash_reverse_refusal(t, rec->col, rec->reversible, &meta, rec->winner_hlc,
                                         rec->winner_no, &rec->losing, teams, n_teams, why,
                                         sizeof why);
    if (refusal != NULL)
        return store_fail(st, STORE_EINVAL, "%s", refusal);
    out = store_values_decode(&c->arena, rec->pk_blob.data, rec->pk_blob.len, pk, 16, &n_pk);
    if (out != 0 || n_pk != t->n_pk)
        return store_fail(st, STORE_EIO, "conflict %s: bad primary key", t->name);
    out = write_value(st, c, t, (uint32_t)rec->col, pk, &rec->losing);
    if (out != STORE_OK)
        return out;
    /* Newer than the column's current version, so that no device's older write overtakes it. */
    row_version_get(&meta, (uint32_t)rec->col, &col_hlc, &col_device);
    c->hlc = PROTO_HLC_MAKE(c->now_ms, 0);
    if (c->hlc <= col_hlc)
        c->hlc = col_hlc + 1;
    if (row_versions_resize(&c->arena, &meta, t->n_cols) != 0)
        return store_fail(st, STORE_ENOMEM, "out of memory");
    row_version_set(&meta, (uint32_t)rec->col, c->hlc, 0);
    scope_new = (uint32_t)rec->col == t->scope_idx ? rec->losing : meta.scope;
    out = merge_log_change(c, t, &rec->pk_blob, &meta, PROTO_OP_UPDATE, true, &meta.scope,
                           &scope_new);
    if (out == STORE_OK)
        out = store_meta_set(st, "server_seq", c->server_seq);
    return out;
}

int store_dash_decide(store *st, const char (*teams)[64], uint32_t n_teams, int64_t conflict_id,
                      bool reverse, const char *user, uint64_t now_ms,
                      store_push_info *out_info)
{
    push_ctx c;
    conflict_rec rec;
    int out;

    memset(&c, 0, sizeof c);
    memset(&rec, 0, sizeof rec);
    if (out_info)
        memset(out_info, 0, sizeof *out_info);
    if (!user || !*user)
        return store_fail(st, STORE_EINVAL, "a decision needs the deciding account");
    out = store_dash_decisions_ensure(st);
    if (out == STORE_OK)
        out = store_begin(st, true);
    if (out != STORE_OK)
        return out;
    out = store_tables_load(st);
    if (out == STORE_OK)
        out = read_conflict(st, conflict_id, &c.arena, &rec);
    if (out == STORE_OK && !in_teams(teams, n_teams, rec.scope))
        out = store_fail(st, STORE_ENOTFOUND, "no conflict %lld", (long long)conflict_id);
    if (out == STORE_OK && rec.decided)
        out = store_fail(st, STORE_EEXISTS, "conflict %lld was decided already",
                         (long long)conflict_id);
    if (out == STORE_OK && reverse) {
        c.st = st;
        c.now_ms = now_ms;
        out = store_meta_get(st, "server_seq", &c.server_seq);
        if (out == STORE_OK)
            out = apply_reversal(st, &c, &rec, teams, n_teams);
    }
    if (out == STORE_OK)
        out = record_decision(st, conflict_id, reverse ? "reversed" : "kept", user, now_ms,
                              reverse ? c.server_seq : 0);
    if (out == STORE_OK)
        out = store_commit(st);
    else
        store_rollback(st);
    if (out == STORE_OK && out_info && reverse) {
        out_info->server_seq = (uint64_t)c.server_seq;
        out_info->n_rows = c.n_rows;
        out_info->n_teams_touched = c.n_teams;
        out_info->teams_touched = c.teams;
        c.teams = NULL;
    }
    free(c.teams);
    free(rec.pk_blob.data);
    store_arena_free(&c.arena);
    return out;
}
