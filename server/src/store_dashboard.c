/*
 * The supervisor dashboard's read queries: devices, records of one synced table, records per
 * day per worker, the conflict queue. Every query is limited to the caller's teams in SQL, so a
 * row outside them never leaves the store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_arena.h"
#include "store_internal.h"
#include "store_dashboard.h"
#include "store_rows.h"
#include "store_values.h"

enum { RECORDS_DEFAULT = 200, RECORDS_MAX = 1000, SQL_MAX = 8192 };

/* Appends "?N, ?N+1, ..." for n_teams parameters starting at first. */
static int append_team_params(char *sql, size_t size, size_t *len, int first, uint32_t n_teams)
{
    for (uint32_t i = 0; i < n_teams; i++) {
        int n = snprintf(sql + *len, size - *len, "%s?%d", i ? ", " : "", first + (int)i);
        if (n < 0 || (size_t)n >= size - *len)
            return -1;
        *len += (size_t)n;
    }
    return 0;
}

static int appendf(char *sql, size_t size, size_t *len, const char *text)
{
    size_t n = strlen(text);
    if (n >= size - *len)
        return -1;
    memcpy(sql + *len, text, n + 1);
    *len += n;
    return 0;
}

static int bind_teams(db_stmt *stmt, int first, const char (*teams)[64], uint32_t n_teams)
{
    int rc = STORE_OK;
    for (uint32_t i = 0; rc == STORE_OK && i < n_teams; i++)
        rc = db_bind_text_static(stmt, first + (int)i, teams[i], strlen(teams[i]));
    return rc;
}

static void copy_text(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

int store_dash_devices(store *st, const char (*teams)[64], uint32_t n_teams,
                       store_dash_device_cb cb, void *user_data)
{
    char sql[SQL_MAX];
    size_t len = 0;
    db_stmt *stmt = NULL;
    int out = STORE_OK, rc;

    if (n_teams == 0)
        return STORE_OK;
    out = store_device_reports_ensure(st);
    if (out != STORE_OK)
        return out;
    if (appendf(sql, sizeof sql, &len,
                "SELECT d.id, d.worker_id, COALESCE(d.name, ''), d.enrolled_ms,"
                " COALESCE(d.last_seen_ms, 0), d.revoked,"
                " (SELECT group_concat(tt.team_id, ',') FROM (SELECT team_id FROM"
                "  _outpost_worker_teams wt WHERE wt.worker_id = d.worker_id ORDER BY team_id)"
                "  tt),"
                " CASE WHEN COALESCE(rep.outbox_top, 0) > d.acked_seq"
                "  THEN COALESCE(rep.outbox_top, 0) - d.acked_seq ELSE 0 END,"
                " COALESCE(rep.time_ms, 0),"
                " (SELECT count(*) FROM _outpost_refused f WHERE f.device_no = d.no),"
                " (SELECT rf.message FROM _outpost_conflicts c JOIN _outpost_conflict_refusals rf"
                "  ON rf.conflict_id = c.id WHERE c.push_device = d.id ORDER BY c.id DESC LIMIT 1),"
                " rep.last_error, rep.app"
                " FROM _outpost_devices d"
                " LEFT JOIN _outpost_device_reports rep ON rep.device_no = d.no"
                " WHERE d.worker_id IN (SELECT worker_id FROM"
                " _outpost_worker_teams WHERE team_id IN (") != 0 ||
        append_team_params(sql, sizeof sql, &len, 1, n_teams) != 0 ||
        appendf(sql, sizeof sql, &len,
                ")) ORDER BY COALESCE(d.last_seen_ms, 0) DESC, d.worker_id, d.id") != 0)
        return store_fail(st, STORE_EINVAL, "too many teams");
    rc = db_prepare(st->conn, sql, &stmt);
    if (rc == STORE_OK)
        rc = bind_teams(stmt, 1, teams, n_teams);
    while (rc == STORE_OK || rc == DB_ROW) {
        store_dash_device row;
        rc = db_step(stmt);
        if (rc != DB_ROW)
            break;
        memset(&row, 0, sizeof row);
        copy_text(row.device_id, sizeof row.device_id, db_column_text(stmt, 0));
        copy_text(row.worker_id, sizeof row.worker_id, db_column_text(stmt, 1));
        copy_text(row.name, sizeof row.name, db_column_text(stmt, 2));
        row.enrolled_ms = (uint64_t)db_column_int64(stmt, 3);
        row.last_seen_ms = (uint64_t)db_column_int64(stmt, 4);
        row.revoked = db_column_int64(stmt, 5) != 0;
        copy_text(row.teams, sizeof row.teams, db_column_text(stmt, 6));
        row.pending = (uint64_t)db_column_int64(stmt, 7);
        row.reported_ms = (uint64_t)db_column_int64(stmt, 8);
        row.refused = (uint64_t)db_column_int64(stmt, 9);
        copy_text(row.last_refusal, sizeof row.last_refusal, db_column_text(stmt, 10));
        copy_text(row.last_error, sizeof row.last_error, db_column_text(stmt, 11));
        copy_text(row.app, sizeof row.app, db_column_text(stmt, 12));
        out = cb(&row, user_data);
        if (out != 0)
            break;
    }
    db_finalize(stmt);
    if (out == STORE_OK && rc != DB_DONE)
        out = store_fail_db(st, rc, "list devices");
    return out;
}

/* Index of column name in t, or -1. */
static int column_index(const store_table *t, const char *name)
{
    for (uint32_t i = 0; name && i < t->n_cols; i++)
        if (strcmp(t->cols[i], name) == 0)
            return (int)i;
    return -1;
}

static bool team_allowed(const char (*teams)[64], uint32_t n_teams, const char *team)
{
    for (uint32_t i = 0; i < n_teams; i++)
        if (strcmp(teams[i], team) == 0)
            return true;
    return false;
}

/* Looks up the table and its named columns; quoted identifiers go to the out buffers. */
static int resolve_table(store *st, const char *table, const char *worker_col,
                         const char *date_col, store_table **out_t, int *out_worker,
                         int *out_date)
{
    int out = store_tables_load(st);
    if (out != STORE_OK)
        return out;
    *out_t = table ? store_table_find(st, table) : NULL;
    if (!*out_t)
        return store_fail(st, STORE_ENOTFOUND, "no synced table %s",
                          table && store_id_valid(table) ? table : "of that name");
    *out_worker = column_index(*out_t, worker_col);
    *out_date = column_index(*out_t, date_col);
    if ((worker_col && *out_worker < 0) || (date_col && *out_date < 0))
        return store_fail(st, STORE_EINVAL, "table %s has no column %s", (*out_t)->name,
                          worker_col && *out_worker < 0 ? worker_col : date_col);
    return STORE_OK;
}

typedef store_dash_columns records_shape;

static int build_records_sql(const store_table *t, const records_shape *shape, uint32_t n_teams,
                             char *sql, size_t size)
{
    char ident[200];
    size_t len = 0;
    int param = 1, worker_idx = shape->worker_idx, date_idx = shape->date_idx;

    if (appendf(sql, size, &len, "SELECT ") != 0)
        return -1;
    for (uint32_t i = 0; i < t->n_cols; i++) {
        if (store_quote_ident(ident, sizeof ident, t->cols[i]) != 0 ||
            (i && appendf(sql, size, &len, ", ") != 0) || appendf(sql, size, &len, ident) != 0)
            return -1;
    }
    if (store_quote_ident(ident, sizeof ident, t->name) != 0 ||
        appendf(sql, size, &len, " FROM ") != 0 || appendf(sql, size, &len, ident) != 0 ||
        store_quote_ident(ident, sizeof ident, t->cols[t->scope_idx]) != 0 ||
        appendf(sql, size, &len, " WHERE ") != 0 || appendf(sql, size, &len, ident) != 0 ||
        appendf(sql, size, &len, " IN (") != 0 ||
        append_team_params(sql, size, &len, param, n_teams) != 0 ||
        appendf(sql, size, &len, ")") != 0)
        return -1;
    param += (int)n_teams;
    /* Fixed parameter numbers after the teams: team, worker, from, to, text, id. */
    char cond[1024];
    snprintf(cond, sizeof cond, " AND (?%d IS NULL OR %s = ?%d)", param, ident, param);
    if (appendf(sql, size, &len, cond) != 0)
        return -1;
    if (worker_idx >= 0) {
        if (store_quote_ident(ident, sizeof ident, t->cols[worker_idx]) != 0)
            return -1;
        snprintf(cond, sizeof cond, " AND (?%d IS NULL OR %s = ?%d)", param + 1, ident,
                 param + 1);
        if (appendf(sql, size, &len, cond) != 0)
            return -1;
    }
    if (date_idx >= 0) {
        if (store_quote_ident(ident, sizeof ident, t->cols[date_idx]) != 0)
            return -1;
        snprintf(cond, sizeof cond,
                 " AND (?%d IS NULL OR %s >= ?%d) AND (?%d IS NULL OR substr(%s, 1, length(?%d))"
                 " <= ?%d)",
                 param + 2, ident, param + 2, param + 3, ident, param + 3, param + 3);
        if (appendf(sql, size, &len, cond) != 0)
            return -1;
    }
    snprintf(cond, sizeof cond, " AND (?%d IS NULL OR instr(lower(", param + 4);
    if (appendf(sql, size, &len, cond) != 0)
        return -1;
    for (uint32_t i = 0; i < t->n_cols; i++) {
        if (store_quote_ident(ident, sizeof ident, t->cols[i]) != 0 ||
            (i && appendf(sql, size, &len, " || ' ' || ") != 0) ||
            appendf(sql, size, &len, "IFNULL(") != 0 || appendf(sql, size, &len, ident) != 0 ||
            appendf(sql, size, &len, ", '')") != 0)
            return -1;
    }
    if (store_quote_ident(ident, sizeof ident, t->cols[t->pk[0]]) != 0)
        return -1;
    snprintf(cond, sizeof cond, "), lower(?%d)) > 0) AND (?%d IS NULL OR %s = ?%d)", param + 4,
             param + 5, ident, param + 5);
    if (appendf(sql, size, &len, cond) != 0)
        return -1;
    if (shape->match_idx >= 0) {
        if (store_quote_ident(ident, sizeof ident, t->cols[shape->match_idx]) != 0)
            return -1;
        snprintf(cond, sizeof cond, " AND %s = ?%d", ident, param + 7);
        if (appendf(sql, size, &len, cond) != 0)
            return -1;
    }
    /* The sort column is one of the table's own (checked by index), quoted; the primary key
     * breaks ties so that pages never overlap or skip a row. */
    int order_idx = shape->sort_idx >= 0 ? shape->sort_idx : date_idx;
    bool desc = shape->sort_idx >= 0 ? shape->desc : true;
    if (order_idx >= 0) {
        if (store_quote_ident(ident, sizeof ident, t->cols[order_idx]) != 0 ||
            appendf(sql, size, &len, " ORDER BY ") != 0 || appendf(sql, size, &len, ident) != 0 ||
            appendf(sql, size, &len, desc ? " DESC, " : " ASC, ") != 0 ||
            store_quote_ident(ident, sizeof ident, t->cols[t->pk[0]]) != 0 ||
            appendf(sql, size, &len, ident) != 0 ||
            appendf(sql, size, &len, desc ? " DESC" : " ASC") != 0)
            return -1;
    } else if (appendf(sql, size, &len, " ORDER BY rowid DESC") != 0) {
        return -1;
    }
    snprintf(cond, sizeof cond, " LIMIT ?%d OFFSET ?%d", param + 6, param + 8);
    return appendf(sql, size, &len, cond);
}

static int bind_opt(db_stmt *stmt, int idx, const char *text)
{
    if (text && *text)
        return db_bind_text_static(stmt, idx, text, strlen(text));
    return db_bind_null(stmt, idx);
}

int store_dash_records(store *st, const char (*teams)[64], uint32_t n_teams,
                       const store_dash_query *q, store_dash_record_cb cb, void *user_data)
{
    store_table *t = NULL;
    db_stmt *stmt = NULL;
    const char **values = NULL;
    char *sql = NULL;
    records_shape shape = {-1, -1, -1, -1, q->desc};
    int param, rc = STORE_OK;
    uint32_t limit = q->limit == 0 ? RECORDS_DEFAULT : q->limit, n_rows = 0;
    int out = resolve_table(st, q->table, q->worker_col, q->date_col, &t, &shape.worker_idx,
                            &shape.date_idx);

    if (q->out_more)
        *q->out_more = false;
    if (out != STORE_OK)
        return out;
    if (q->sort && *q->sort && (shape.sort_idx = column_index(t, q->sort)) < 0)
        return store_fail(st, STORE_EINVAL, "cannot sort: table %s has no column %s", t->name,
                          store_id_valid(q->sort) ? q->sort : "of that name");
    if (q->match_col && (shape.match_idx = column_index(t, q->match_col)) < 0)
        return store_fail(st, STORE_EINVAL, "table %s has no column %s", t->name,
                          store_id_valid(q->match_col) ? q->match_col : "of that name");
    if (q->offset > STORE_DASH_OFFSET_MAX)
        return store_fail(st, STORE_EINVAL, "offset %u is past the last page allowed (%u)",
                          q->offset, STORE_DASH_OFFSET_MAX);
    if (n_teams == 0 || (q->team && *q->team && !team_allowed(teams, n_teams, q->team)))
        return STORE_OK;
    if (limit > RECORDS_MAX)
        limit = RECORDS_MAX;
    if (db_engine_of(st->conn) != DB_SQLITE)
        return store_dash_records_decoded(st, t, teams, n_teams, q, &shape, limit, cb,
                                          user_data);
    sql = malloc(SQL_MAX * 4);
    values = calloc(t->n_cols, sizeof *values);
    if (!sql || !values) {
        out = store_fail(st, STORE_ENOMEM, "out of memory");
        goto done;
    }
    if (build_records_sql(t, &shape, n_teams, sql, SQL_MAX * 4) != 0) {
        out = store_fail(st, STORE_EINVAL, "query too long for table %s", t->name);
        goto done;
    }
    rc = db_prepare(st->conn, sql, &stmt);
    if (rc != STORE_OK) {
        out = store_fail_db(st, rc, "prepare record query");
        goto done;
    }
    rc = bind_teams(stmt, 1, teams, n_teams);
    param = 1 + (int)n_teams;
    if (rc == STORE_OK)
        rc = bind_opt(stmt, param, q->team);
    if (rc == STORE_OK && shape.worker_idx >= 0)
        rc = bind_opt(stmt, param + 1, q->worker);
    if (rc == STORE_OK && shape.date_idx >= 0)
        rc = bind_opt(stmt, param + 2, q->date_from);
    if (rc == STORE_OK && shape.date_idx >= 0)
        rc = bind_opt(stmt, param + 3, q->date_to);
    if (rc == STORE_OK)
        rc = bind_opt(stmt, param + 4, q->text);
    if (rc == STORE_OK)
        rc = bind_opt(stmt, param + 5, q->id);
    /* One row past the page tells whether there is a next one. */
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, param + 6, (int64_t)limit + 1);
    if (rc == STORE_OK && shape.match_idx >= 0)
        rc = db_bind_text(stmt, param + 7, q->match_value ? q->match_value : "");
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, param + 8, q->offset);
    while (rc == STORE_OK || rc == DB_ROW) {
        store_dash_record rec;
        rc = db_step(stmt);
        if (rc != DB_ROW)
            break;
        if (++n_rows > limit) {
            if (q->out_more)
                *q->out_more = true;
            rc = DB_DONE;
            break;
        }
        for (uint32_t i = 0; i < t->n_cols; i++)
            values[i] = db_column_text(stmt, (int)i);
        rec.n_cols = t->n_cols;
        rec.cols = (const char *const *)t->cols;
        rec.values = values;
        rec.key = values[t->pk[0]] ? values[t->pk[0]] : "";
        out = cb(&rec, user_data);
        if (out != 0)
            break;
    }
    if (out == STORE_OK && rc != DB_DONE)
        out = store_fail_db(st, rc, "read records");
done:
    db_finalize(stmt);
    free(values);
    free(sql);
    return out;
}

int store_dash_per_day(store *st, const char (*teams)[64], uint32_t n_teams, const char *table,
                       const char *worker_col, const char *date_col, const char *date_from,
                       store_dash_count_cb cb, void *user_data)
{
    store_table *t = NULL;
    db_stmt *stmt = NULL;
    char sql[SQL_MAX], scope[200], worker[200], date[200];
    size_t len = 0;
    int worker_idx = -1, date_idx = -1, rc;
    int out = resolve_table(st, table, worker_col, date_col, &t, &worker_idx, &date_idx);

    if (out != STORE_OK)
        return out;
    if (worker_idx < 0 || date_idx < 0)
        return store_fail(st, STORE_EINVAL, "records per day need a worker and a date column");
    if (n_teams == 0)
        return STORE_OK;
    if (db_engine_of(st->conn) != DB_SQLITE)
        return store_dash_per_day_decoded(st, t, teams, n_teams, worker_idx, date_idx,
                                          date_from, cb, user_data);
    if (store_quote_ident(scope, sizeof scope, t->cols[t->scope_idx]) != 0 ||
        store_quote_ident(worker, sizeof worker, t->cols[worker_idx]) != 0 ||
        store_quote_ident(date, sizeof date, t->cols[date_idx]) != 0 ||
        appendf(sql, sizeof sql, &len, "SELECT substr(") != 0 ||
        appendf(sql, sizeof sql, &len, date) != 0 ||
        appendf(sql, sizeof sql, &len, ", 1, 10) AS day, ") != 0 ||
        appendf(sql, sizeof sql, &len, worker) != 0 ||
        appendf(sql, sizeof sql, &len, ", count(*) FROM ") != 0 ||
        store_quote_ident(date, sizeof date, t->name) != 0 ||
        appendf(sql, sizeof sql, &len, date) != 0 ||
        appendf(sql, sizeof sql, &len, " WHERE ") != 0 ||
        appendf(sql, sizeof sql, &len, scope) != 0 ||
        appendf(sql, sizeof sql, &len, " IN (") != 0 ||
        append_team_params(sql, sizeof sql, &len, 2, n_teams) != 0 ||
        appendf(sql, sizeof sql, &len, ") AND (?1 IS NULL OR day >= ?1) GROUP BY day, ") != 0 ||
        appendf(sql, sizeof sql, &len, worker) != 0 ||
        appendf(sql, sizeof sql, &len, " ORDER BY day, 2") != 0)
        return store_fail(st, STORE_EINVAL, "query too long");
    rc = db_prepare(st->conn, sql, &stmt);
    if (rc == STORE_OK)
        rc = bind_opt(stmt, 1, date_from);
    if (rc == STORE_OK)
        rc = bind_teams(stmt, 2, teams, n_teams);
    while (rc == STORE_OK || rc == DB_ROW) {
        rc = db_step(stmt);
        if (rc != DB_ROW)
            break;
        const char *day = db_column_text(stmt, 0);
        const char *who = db_column_text(stmt, 1);
        out = cb(day ? day : "", who ? who : "", (uint64_t)db_column_int64(stmt, 2), user_data);
        if (out != 0)
            break;
    }
    db_finalize(stmt);
    if (out == STORE_OK && rc != DB_DONE)
        out = store_fail_db(st, rc, "count records");
    return out;
}

/* Decisions on conflicts live beside the merge engine's log, which stays as merge wrote it. */
static const char decisions_ddl[] =
    "CREATE TABLE IF NOT EXISTS _outpost_conflict_decisions("
    "  conflict_id INTEGER PRIMARY KEY, decision TEXT NOT NULL, decided_by TEXT NOT NULL,"
    "  time_ms INTEGER NOT NULL, server_seq INTEGER);";

int store_dash_decisions_ensure(store *st)
{
    return store_exec(st, decisions_ddl, "create the decisions table");
}

/* The first key value of an encoded primary key, as text. */
static void key_text(const void *blob, int n_bytes, char *out, size_t size)
{
    store_arena arena = {0};
    proto_value vals[8];
    uint32_t n = 0;

    out[0] = 0;
    if (blob && n_bytes > 0 &&
        store_values_decode(&arena, blob, (size_t)n_bytes, vals, 8, &n) == 0 && n > 0) {
        if (vals[0].type == PROTO_TEXT)
            snprintf(out, size, "%.*s", (int)vals[0].u.b.n, (const char *)vals[0].u.b.p);
        else if (vals[0].type == PROTO_INT)
            snprintf(out, size, "%lld", (long long)vals[0].u.i);
    }
    store_arena_free(&arena);
}

/* An any-value column as SQLite's text of it would read (NULL for NULL), in arena: the merge
 * log's values and a row's scope, which PostgreSQL keeps encoded. */
static const char *any_text(store_arena *arena, db_stmt *stmt, int col)
{
    proto_value v;

    if (db_stmt_engine(stmt) == DB_SQLITE)
        return db_column_text(stmt, col);
    if (store_value_column_any(arena, stmt, col, &v) != 0)
        return NULL;
    return store_dash_value_text(arena, &v);
}

/* Binds teams from first, as values of the any-value scope column. */
static int bind_teams_any(db_stmt *stmt, int first, const char (*teams)[64], uint32_t n_teams)
{
    int rc = STORE_OK;
    for (uint32_t i = 0; rc == STORE_OK && i < n_teams; i++) {
        proto_value team;
        memset(&team, 0, sizeof team);
        team.type = PROTO_TEXT;
        team.u.b.p = (const uint8_t *)teams[i];
        team.u.b.n = (uint32_t)strlen(teams[i]);
        rc = store_value_bind_any(stmt, first + (int)i, &team);
    }
    return rc;
}

/* The conflict queue, or (table and key set) every conflict of one row. */
static int conflicts_query(store *st, const char (*teams)[64], uint32_t n_teams, bool all,
                           uint32_t limit, const char *table, const char *key,
                           store_dash_conflict_cb cb, void *user_data)
{
    char sql[SQL_MAX];
    size_t len = 0;
    db_stmt *stmt = NULL;
    store_bytes pk = {0};
    store_arena arena = {0};
    int out, rc;

    if (n_teams == 0)
        return STORE_OK;
    if (key) {
        proto_value v;
        memset(&v, 0, sizeof v);
        v.type = PROTO_TEXT;
        v.u.b.p = (const uint8_t *)key;
        v.u.b.n = (uint32_t)strlen(key);
        if (store_values_encode(&v, 1, &pk) != 0)
            return store_fail(st, STORE_ENOMEM, "out of memory");
    }
    out = store_dash_decisions_ensure(st);
    if (out == STORE_OK)
        out = store_tables_load(st);
    if (out != STORE_OK)
        return out;
    /* The team a conflict belongs to: a refusal names its own (the row may not be in the store,
     * or may be another team's row the worker aimed at); a merge decision is the row's, whose
     * scope is an any-value column (encoded on PostgreSQL): teams are bound twice, as text for
     * the refusal's team (?5...) and as values for the row's scope. */
    int scope_first = 5 + (int)n_teams;
    if (appendf(sql, sizeof sql, &len,
                "SELECT c.id, t.name, COALESCE(col.name, ''), c.pk, COALESCE(rf.team, ''),"
                " r.scope, c.losing_value,"
                " c.winning_value, COALESCE(c.loser_device, ''), COALESCE(c.loser_worker, ''),"
                " COALESCE(c.winner_device, ''), c.time_ms, c.reversible,"
                " COALESCE(d.decision, ''), COALESCE(d.decided_by, ''), c.table_id, c.col,"
                " CASE WHEN rf.conflict_id IS NULL THEN 0 ELSE 1 END, COALESCE(rf.code, 0),"
                " COALESCE(rf.message, ''), COALESCE(wd.worker_id, ''), COALESCE(r.deleted, 1),"
                " r.versions, COALESCE(r.base_hlc, 0), COALESCE(r.base_device, 0),"
                " COALESCE(c.winner_hlc, 0), COALESCE(wd.no, -1)"
                " FROM _outpost_conflicts c JOIN _outpost_tables t ON t.id = c.table_id"
                " LEFT JOIN _outpost_devices wd ON wd.id = c.winner_device"
                " LEFT JOIN _outpost_rows r ON r.table_id = c.table_id AND r.pk = c.pk"
                " LEFT JOIN _outpost_conflict_refusals rf ON rf.conflict_id = c.id"
                " LEFT JOIN _outpost_columns col ON col.table_id = c.table_id AND col.idx = c.col"
                " LEFT JOIN _outpost_conflict_decisions d ON d.conflict_id = c.id"
                " WHERE ((COALESCE(rf.team, '') <> '' AND rf.team IN (") != 0 ||
        append_team_params(sql, sizeof sql, &len, 5, n_teams) != 0 ||
        appendf(sql, sizeof sql, &len, ")) OR (COALESCE(rf.team, '') = '' AND r.scope IN (") !=
            0 ||
        append_team_params(sql, sizeof sql, &len, scope_first, n_teams) != 0 ||
        appendf(sql, sizeof sql, &len,
                "))) AND (?1 <> 0 OR d.conflict_id IS NULL)"
                " AND (CAST(?3 AS TEXT) IS NULL OR (t.name = ?3 AND c.pk = ?4))"
                " ORDER BY c.id DESC LIMIT ?2") != 0) {
        store_bytes_free(&pk);
        return store_fail(st, STORE_EINVAL, "too many teams");
    }
    rc = db_prepare(st->conn, sql, &stmt);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 1, all ? 1 : 0);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 2, limit == 0 ? 100 : limit);
    if (rc == STORE_OK)
        rc = bind_opt(stmt, 3, table);
    if (rc == STORE_OK && key)
        rc = db_bind_blob_static(stmt, 4, pk.data, pk.len);
    if (rc == STORE_OK && !key)
        rc = db_bind_null(stmt, 4);
    if (rc == STORE_OK)
        rc = bind_teams(stmt, 5, teams, n_teams);
    if (rc == STORE_OK)
        rc = bind_teams_any(stmt, scope_first, teams, n_teams);
    while (rc == STORE_OK || rc == DB_ROW) {
        store_dash_conflict c;
        size_t n_pk = 0;
        rc = db_step(stmt);
        if (rc != DB_ROW)
            break;
        store_arena_free(&arena);
        memset(&c, 0, sizeof c);
        c.id = db_column_int64(stmt, 0);
        copy_text(c.table, sizeof c.table, db_column_text(stmt, 1));
        copy_text(c.column, sizeof c.column, db_column_text(stmt, 2));
        const void *pk_blob = db_column_blob(stmt, 3, &n_pk);
        key_text(pk_blob, (int)n_pk, c.row_key, sizeof c.row_key);
        const char *team = db_column_text(stmt, 4);
        copy_text(c.scope, sizeof c.scope,
                  team && *team ? team : any_text(&arena, stmt, 5));
        c.losing = any_text(&arena, stmt, 6);
        c.winning = any_text(&arena, stmt, 7);
        copy_text(c.loser_device, sizeof c.loser_device, db_column_text(stmt, 8));
        copy_text(c.loser_worker, sizeof c.loser_worker, db_column_text(stmt, 9));
        copy_text(c.winner_device, sizeof c.winner_device, db_column_text(stmt, 10));
        c.time_ms = (uint64_t)db_column_int64(stmt, 11);
        copy_text(c.decision, sizeof c.decision, db_column_text(stmt, 13));
        copy_text(c.decided_by, sizeof c.decided_by, db_column_text(stmt, 14));
        c.refused = db_column_int64(stmt, 17) != 0;
        c.refused_code = (uint32_t)db_column_int64(stmt, 18);
        /* Once decided, a conflict is not reversible again; undecided, it is when Reverse
         * would do it (a deleted row, a team the supervisor does not hold: not). */
        if (c.decision[0] == '\0') {
            char why_buf[160];
            proto_value losing = {.type = PROTO_NULL};
            const char *why;
            if (store_value_column_any(&arena, stmt, 6, &losing) != 0) {
                out = store_fail(st, STORE_ENOMEM, "out of memory");
                break;
            }
            /* the row's merge state now, as row_meta_get would read it (versions only) */
            row_meta now;
            size_t n_versions = 0;
            memset(&now, 0, sizeof now);
            now.exists = true;
            now.deleted = db_column_int64(stmt, 21) != 0;
            now.versions = (uint8_t *)db_column_blob(stmt, 22, &n_versions);
            now.n_cols = (uint32_t)(n_versions / ROW_VERSION_BYTES);
            now.base_hlc = (uint64_t)db_column_int64(stmt, 23);
            now.base_device = db_column_int64(stmt, 24);
            why = store_dash_reverse_refusal(store_table_by_id(st, db_column_int64(stmt, 15)),
                                             (int32_t)db_column_int64(stmt, 16),
                                             db_column_int64(stmt, 12) != 0, &now,
                                             (uint64_t)db_column_int64(stmt, 25),
                                             db_column_int64(stmt, 26), &losing, teams, n_teams,
                                             why_buf, sizeof why_buf);
            c.reversible = why == NULL;
            if (why != NULL && !c.refused)
                copy_text(c.reverse_refused, sizeof c.reverse_refused, why);
        }
        copy_text(c.refused_message, sizeof c.refused_message, db_column_text(stmt, 19));
        copy_text(c.winner_worker, sizeof c.winner_worker, db_column_text(stmt, 20));
        out = cb(&c, user_data);
        if (out != 0)
            break;
    }
    db_finalize(stmt);
    store_arena_free(&arena);
    store_bytes_free(&pk);
    if (out == STORE_OK && rc != DB_DONE)
        out = store_fail_db(st, rc, "list conflicts");
    return out;
}

int store_dash_conflicts(store *st, const char (*teams)[64], uint32_t n_teams, bool all,
                         uint32_t limit, store_dash_conflict_cb cb, void *user_data)
{
    return conflicts_query(st, teams, n_teams, all, limit, NULL, NULL, cb, user_data);
}

int store_dash_conflicts_of(store *st, const char (*teams)[64], uint32_t n_teams,
                            const char *table, const char *key, store_dash_conflict_cb cb,
                            void *user_data)
{
    return conflicts_query(st, teams, n_teams, true, 500, table, key, cb, user_data);
}
