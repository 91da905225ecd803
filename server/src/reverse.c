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

typedef struct conflict_rec {
    int64_t table_id;
    int32_t col;
    bool reversible;
    bool decided;
    char scope[64];
    store_bytes pk_blob;
    proto_value losing;
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
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(st->db,
                                "SELECT c.table_id, c.col, c.reversible,"
                                " CASE WHEN IFNULL(rf.team, '') <> '' THEN rf.team"
                                " ELSE r.scope END, c.pk,"
                                " c.losing_value, d.conflict_id IS NOT NULL"
                                " FROM _outpost_conflicts c LEFT JOIN _outpost_rows r"
                                " ON r.table_id = c.table_id AND r.pk = c.pk"
                                " LEFT JOIN _outpost_conflict_refusals rf ON rf.conflict_id = c.id"
                                " LEFT JOIN _outpost_conflict_decisions d ON d.conflict_id = c.id"
                                " WHERE c.id = ?1",
                                -1, &stmt, NULL);
    int out = STORE_OK;

    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const unsigned char *scope = sqlite3_column_text(stmt, 3);
        const void *pk = sqlite3_column_blob(stmt, 4);
        int n_pk = sqlite3_column_bytes(stmt, 4);
        rec->table_id = sqlite3_column_int64(stmt, 0);
        rec->col = sqlite3_column_int(stmt, 1);
        rec->reversible = sqlite3_column_int(stmt, 2) != 0;
        snprintf(rec->scope, sizeof rec->scope, "%s", scope ? (const char *)scope : "");
        rec->decided = sqlite3_column_int(stmt, 6) != 0;
        rec->pk_blob.len = 0;
        if (n_pk > 0) {
            rec->pk_blob.data = malloc((size_t)n_pk);
            if (!rec->pk_blob.data) {
                out = store_fail(st, STORE_ENOMEM, "out of memory");
            } else {
                memcpy(rec->pk_blob.data, pk, (size_t)n_pk);
                rec->pk_blob.len = rec->pk_blob.cap = (size_t)n_pk;
            }
        }
        if (out == STORE_OK && store_value_column(arena, stmt, 5, &rec->losing) != 0)
            out = store_fail(st, STORE_ENOMEM, "out of memory");
        rc = SQLITE_DONE;
    } else if (rc == SQLITE_DONE) {
        out = store_fail(st, STORE_ENOTFOUND, "no conflict %lld", (long long)id);
    }
    sqlite3_finalize(stmt);
    if (out == STORE_OK && rc != SQLITE_DONE)
        out = store_fail_sqlite(st, rc, "read conflict");
    return out;
}

static int record_decision(store *st, int64_t id, const char *decision, const char *user,
                           uint64_t now_ms, int64_t server_seq)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(st->db,
                                "INSERT INTO _outpost_conflict_decisions VALUES(?1, ?2, ?3, ?4, ?5)",
                                -1, &stmt, NULL);

    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(stmt, 1, id);
        sqlite3_bind_text(stmt, 2, decision, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, user, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 4, (int64_t)now_ms);
        if (server_seq > 0)
            sqlite3_bind_int64(stmt, 5, server_seq);
        rc = sqlite3_step(stmt);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? STORE_OK : store_fail_sqlite(st, rc, "record decision");
}

static store_table *table_by_id(store *st, int64_t id)
{
    for (uint32_t i = 0; i < st->n_tables; i++)
        if (st->tables[i].id == id)
            return &st->tables[i];
    return NULL;
}

/* UPDATE t SET col = losing WHERE pk = ..., on the data table. */
static int write_value(store *st, const store_table *t, uint32_t col, const proto_value *pk,
                       const proto_value *value)
{
    char sql[2048], ident[200];
    size_t len;
    sqlite3_stmt *stmt = NULL;
    int rc;

    if (store_quote_ident(ident, sizeof ident, t->name) != 0)
        return store_fail(st, STORE_EINVAL, "table name too long");
    len = (size_t)snprintf(sql, sizeof sql, "UPDATE %s SET ", ident);
    if (store_quote_ident(ident, sizeof ident, t->cols[col]) != 0)
        return store_fail(st, STORE_EINVAL, "column name too long");
    len += (size_t)snprintf(sql + len, sizeof sql - len, "%s = ?1 WHERE ", ident);
    for (uint32_t k = 0; k < t->n_pk && len < sizeof sql; k++) {
        if (store_quote_ident(ident, sizeof ident, t->cols[t->pk[k]]) != 0)
            return store_fail(st, STORE_EINVAL, "column name too long");
        len += (size_t)snprintf(sql + len, sizeof sql - len, "%s%s = ?%u", k ? " AND " : "",
                                ident, k + 2);
    }
    if (len >= sizeof sql)
        return store_fail(st, STORE_EINVAL, "statement too long");
    rc = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = store_value_bind(stmt, 1, value);
    for (uint32_t k = 0; rc == SQLITE_OK && k < t->n_pk; k++)
        rc = store_value_bind(stmt, (int)k + 2, &pk[k]);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_CONSTRAINT)
        return store_fail(st, STORE_EINVAL,
                          "the losing value breaks a constraint of the row as it is now");
    return rc == SQLITE_DONE ? STORE_OK : store_fail_sqlite(st, rc, "write reversal");
}

/* Reversing a scope-column decision writes the losing team: only one the supervisor holds. */
static int check_scope_target(store *st, const store_table *t, const conflict_rec *rec,
                              const char (*teams)[64], uint32_t n_teams)
{
    char team[64];
    const proto_value *v = &rec->losing;

    if ((uint32_t)rec->col != t->scope_idx)
        return STORE_OK;
    if (v->type != PROTO_TEXT || v->u.b.n == 0 || v->u.b.n >= sizeof team)
        return store_fail(st, STORE_EINVAL, "reversing would give the row no team: refused");
    memcpy(team, v->u.b.p, v->u.b.n);
    team[v->u.b.n] = '\0';
    if (!in_teams(teams, n_teams, team))
        return store_fail(st, STORE_EINVAL,
                          "reversing would move the row to team %s, which you do not "
                          "supervise: refused", team);
    return STORE_OK;
}

static int apply_reversal(store *st, push_ctx *c, conflict_rec *rec, const char (*teams)[64],
                          uint32_t n_teams)
{
    store_table *t = table_by_id(st, rec->table_id);
    proto_value pk[16];
    proto_value scope_new;
    row_meta meta;
    uint32_t n_pk = 0;
    uint64_t col_hlc = 0;
    int64_t col_device = 0;
    int out;

    if (!t || rec->col < 0 || (uint32_t)rec->col >= t->n_cols || !rec->reversible)
        return store_fail(st, STORE_EINVAL, "this decision cannot be reversed (a row-level "
                                            "conflict or a table without reversible merges)");
    out = store_values_decode(&c->arena, rec->pk_blob.data, rec->pk_blob.len, pk, 16, &n_pk);
    if (out != 0 || n_pk != t->n_pk)
        return store_fail(st, STORE_EIO, "conflict %s: bad primary key", t->name);
    out = check_scope_target(st, t, rec, teams, n_teams);
    if (out != STORE_OK)
        return out;
    out = row_meta_get(st, t->id, &rec->pk_blob, &c->arena, &meta);
    if (out != STORE_OK)
        return out;
    if (!meta.exists || meta.deleted)
        return store_fail(st, STORE_EINVAL, "the row was deleted since: nothing to reverse");
    out = write_value(st, t, (uint32_t)rec->col, pk, &rec->losing);
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
