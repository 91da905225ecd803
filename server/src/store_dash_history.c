/*
 * What the dashboard shows about one record beyond its values, and what devices say about
 * themselves: a row's history from the change log (who created it, each change with its device
 * and time, the supervisor behind a reversal), and each device's last report (its waiting
 * outbox entries, from HELLO). Reads are limited to the caller's teams in SQL.
 */
#include <stdio.h>
#include <string.h>

#include "store_internal.h"
#include "store_dashboard.h"
#include "store_values.h"

enum { HISTORY_DEFAULT = 500, SQL_MAX = 4096 };

static const char reports_ddl[] =
    "CREATE TABLE IF NOT EXISTS _outpost_device_reports("
    "  device_no INTEGER PRIMARY KEY, outbox_top INTEGER NOT NULL, time_ms INTEGER NOT NULL,"
    "  app TEXT, last_error TEXT);";

int store_device_reports_ensure(store *st)
{
    return store_exec(st, reports_ddl, "create the device reports table");
}

/* A device's outbox holds the entries after the last one the server recorded (acked_seq) at
 * HELLO: the newest of them is acked_seq + pending. What is still waiting later is how far
 * acked_seq has yet to go to reach it, so a report does not go stale when the push succeeds. */
int store_device_report(store *st, const char *device_id, uint64_t pending, const char *app,
                        const char *last_error, uint64_t now_ms)
{
    db_stmt *stmt = NULL;
    int rc, out = store_device_reports_ensure(st);

    if (out != STORE_OK)
        return out;
    rc = db_prepare(st->conn,
                    "INSERT INTO _outpost_device_reports(device_no, outbox_top, time_ms, app,"
                    " last_error) SELECT no, acked_seq + ?2, ?3, substr(CAST(?4 AS TEXT), 1, 63),"
                    " substr(CAST(?5 AS TEXT), 1, 159) FROM _outpost_devices WHERE id = ?1"
                    " ON CONFLICT(device_no) DO UPDATE SET outbox_top = excluded.outbox_top,"
                    " time_ms = excluded.time_ms, app = excluded.app,"
                    " last_error = excluded.last_error",
                    &stmt);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 1, device_id);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 2, (int64_t)(pending > INT64_MAX ? INT64_MAX : pending));
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 3, (int64_t)now_ms);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 4, app); /* NULL binds NULL */
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 5, last_error);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    db_finalize(stmt);
    return rc == DB_DONE ? STORE_OK : store_fail_db(st, rc, "record a device report");
}

static void copy_text(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

int store_dash_history(store *st, const char (*teams)[64], uint32_t n_teams, const char *table,
                       const char *key, uint32_t limit, store_dash_change_cb cb,
                       void *user_data)
{
    char sql[SQL_MAX];
    size_t len;
    db_stmt *stmt = NULL;
    store_bytes pk = {0};
    proto_value v;
    int out, rc;

    if (n_teams == 0)
        return STORE_OK;
    out = store_dash_decisions_ensure(st);
    if (out != STORE_OK)
        return out;
    memset(&v, 0, sizeof v);
    v.type = PROTO_TEXT;
    v.u.b.p = (const uint8_t *)key;
    v.u.b.n = (uint32_t)strlen(key);
    if (store_values_encode(&v, 1, &pk) != 0)
        return store_fail(st, STORE_ENOMEM, "out of memory");
    /* The newest `limit` changes, shown oldest first; only when the row is in one of teams.
     * They are the row's latest change (_outpost_rows.seq) and the entries its prev_seq chain
     * leads back to (store_sqlite.c): one lookup by seq each. */
    len = (size_t)snprintf(sql, sizeof sql,
                           "WITH RECURSIVE h(seq, n) AS (SELECT r.seq, 1 FROM _outpost_rows r"
                           " JOIN _outpost_tables t ON t.id = r.table_id"
                           " WHERE t.name = ?1 AND r.pk = ?2 AND r.scope IN (");
    for (uint32_t i = 0; i < n_teams && len < sizeof sql; i++)
        len += (size_t)snprintf(sql + len, sizeof sql - len, "%s?%u", i ? ", " : "", 4 + i);
    if (len < sizeof sql)
        len += (size_t)snprintf(sql + len, sizeof sql - len,
                                ") UNION ALL SELECT p.prev_seq, h.n + 1 FROM h"
                                " JOIN _outpost_changes p ON p.seq = h.seq"
                                " WHERE p.prev_seq IS NOT NULL AND h.n < ?3)"
                                " SELECT ch.seq, ch.time_ms, ch.op, ch.altered,"
                                " COALESCE(dv.id, ''), COALESCE(dv.name, ''),"
                                " COALESCE(dv.worker_id, ''), COALESCE(dd.decided_by, '')"
                                " FROM h JOIN _outpost_changes ch ON ch.seq = h.seq"
                                " LEFT JOIN _outpost_devices dv ON dv.no = ch.device"
                                " LEFT JOIN _outpost_conflict_decisions dd"
                                " ON dd.server_seq = ch.seq ORDER BY ch.seq");
    if (len >= sizeof sql) {
        store_bytes_free(&pk);
        return store_fail(st, STORE_EINVAL, "too many teams");
    }
    rc = db_prepare(st->conn, sql, &stmt);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 1, table);
    if (rc == STORE_OK)
        rc = db_bind_blob_static(stmt, 2, pk.data, pk.len);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 3, limit == 0 ? HISTORY_DEFAULT : limit);
    /* The row's scope is an any-value column (encoded on PostgreSQL): teams bound as values. */
    for (uint32_t i = 0; rc == STORE_OK && i < n_teams; i++) {
        proto_value team;
        memset(&team, 0, sizeof team);
        team.type = PROTO_TEXT;
        team.u.b.p = (const uint8_t *)teams[i];
        team.u.b.n = (uint32_t)strlen(teams[i]);
        rc = store_value_bind_any(stmt, 4 + (int)i, &team);
    }
    while (rc == STORE_OK || rc == DB_ROW) {
        store_dash_change ch;
        rc = db_step(stmt);
        if (rc != DB_ROW)
            break;
        memset(&ch, 0, sizeof ch);
        ch.seq = db_column_int64(stmt, 0);
        ch.time_ms = (uint64_t)db_column_int64(stmt, 1);
        ch.op = (int)db_column_int64(stmt, 2);
        ch.altered = db_column_int64(stmt, 3) != 0;
        copy_text(ch.device_id, sizeof ch.device_id, db_column_text(stmt, 4));
        copy_text(ch.device_name, sizeof ch.device_name, db_column_text(stmt, 5));
        copy_text(ch.worker_id, sizeof ch.worker_id, db_column_text(stmt, 6));
        copy_text(ch.decided_by, sizeof ch.decided_by, db_column_text(stmt, 7));
        out = cb(&ch, user_data);
        if (out != 0)
            break;
    }
    db_finalize(stmt);
    store_bytes_free(&pk);
    if (out == STORE_OK && rc != DB_DONE)
        out = store_fail_db(st, rc, "read a record's history");
    return out;
}

/* "referrals" -> "referral": the name a NAME_id column uses for a table. */
static bool singular_of(const char *table, char *out, size_t size)
{
    size_t n = strlen(table);

    if (n < 2 || table[n - 1] != 's' || n >= size)
        return false;
    memcpy(out, table, n - 1);
    out[n - 1] = 0;
    return true;
}

int store_dash_links(store *st, const char *table, store_dash_link_cb cb, void *user_data)
{
    char name[80], one[64];
    int out = store_tables_load(st);
    store_table *t;

    if (out != STORE_OK)
        return out;
    t = store_table_find(st, table);
    if (!t)
        return store_fail(st, STORE_ENOTFOUND, "no synced table of that name");
    /* Outgoing: a column NAME_id of this table (not its key, not its scope) naming NAMEs. */
    for (uint32_t i = 0; i < t->n_cols && out == STORE_OK; i++) {
        size_t n = strlen(t->cols[i]);
        if (i == t->pk[0] || i == t->scope_idx || n < 4 || n + 1 > sizeof name ||
            strcmp(t->cols[i] + n - 3, "_id") != 0)
            continue;
        snprintf(name, sizeof name, "%.*ss", (int)(n - 3), t->cols[i]);
        store_table *to = store_table_find(st, name);
        if (to && to != t)
            out = cb(to->name, t->cols[i], true, user_data);
    }
    /* Incoming: a column SINGULAR_id of another table, where this table is SINGULARs. */
    if (!singular_of(t->name, one, sizeof one))
        return out;
    snprintf(name, sizeof name, "%s_id", one);
    for (uint32_t k = 0; k < st->n_tables && out == STORE_OK; k++) {
        store_table *from = &st->tables[k];
        if (from == t)
            continue;
        for (uint32_t i = 0; i < from->n_cols && out == STORE_OK; i++)
            if (strcmp(from->cols[i], name) == 0 && i != from->pk[0] && i != from->scope_idx)
                out = cb(from->name, from->cols[i], false, user_data);
    }
    return out;
}

int store_dash_record_get(store *st, const char (*teams)[64], uint32_t n_teams, const char *table,
                          const char *key, store_dash_record_cb cb, void *user_data)
{
    char sql[SQL_MAX], ident[200];
    size_t len = 0;
    db_stmt *stmt = NULL;
    const char *values[64];
    store_table *t;
    int out = store_tables_load(st), rc;

    if (out != STORE_OK)
        return out;
    t = table ? store_table_find(st, table) : NULL;
    if (!t)
        return store_fail(st, STORE_ENOTFOUND, "no synced table %s",
                          table && store_id_valid(table) ? table : "of that name");
    if (n_teams == 0 || t->n_cols > 64)
        return STORE_OK;
    if (db_engine_of(st->conn) != DB_SQLITE) { /* values kept encoded */
        store_dash_query q = {.table = table, .id = key};
        store_dash_columns none = {-1, -1, -1, -1, false};
        return store_dash_records_decoded(st, t, teams, n_teams, &q, &none, 1, cb, user_data);
    }
    /* SELECT every column WHERE key = ?1 AND scope IN (?2, ...): the key's index finds it. */
    len = (size_t)snprintf(sql, sizeof sql, "SELECT ");
    for (uint32_t i = 0; i < t->n_cols && len < sizeof sql; i++) {
        if (store_quote_ident(ident, sizeof ident, t->cols[i]) != 0)
            return store_fail(st, STORE_EINVAL, "bad column name");
        len += (size_t)snprintf(sql + len, sizeof sql - len, "%s%s", i ? ", " : "", ident);
    }
    if (len < sizeof sql && store_quote_ident(ident, sizeof ident, t->name) == 0)
        len += (size_t)snprintf(sql + len, sizeof sql - len, " FROM %s WHERE ", ident);
    if (len < sizeof sql && store_quote_ident(ident, sizeof ident, t->cols[t->pk[0]]) == 0)
        len += (size_t)snprintf(sql + len, sizeof sql - len, "%s = ?1 AND ", ident);
    if (len < sizeof sql && store_quote_ident(ident, sizeof ident, t->cols[t->scope_idx]) == 0)
        len += (size_t)snprintf(sql + len, sizeof sql - len, "%s IN (", ident);
    for (uint32_t i = 0; i < n_teams && len < sizeof sql; i++)
        len += (size_t)snprintf(sql + len, sizeof sql - len, "%s?%u", i ? ", " : "", 2 + i);
    if (len < sizeof sql)
        len += (size_t)snprintf(sql + len, sizeof sql - len, ")");
    if (len >= sizeof sql)
        return store_fail(st, STORE_EINVAL, "query too long for table %s", t->name);
    rc = db_prepare(st->conn, sql, &stmt);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 1, key);
    for (uint32_t i = 0; rc == STORE_OK && i < n_teams; i++)
        rc = db_bind_text_static(stmt, 2 + (int)i, teams[i], strlen(teams[i]));
    if (rc == STORE_OK)
        rc = db_step(stmt);
    if (rc == DB_ROW) {
        store_dash_record rec;
        for (uint32_t i = 0; i < t->n_cols; i++)
            values[i] = db_column_text(stmt, (int)i);
        rec.n_cols = t->n_cols;
        rec.cols = (const char *const *)t->cols;
        rec.values = values;
        rec.key = values[t->pk[0]] ? values[t->pk[0]] : "";
        out = cb(&rec, user_data);
        rc = DB_DONE;
    }
    db_finalize(stmt);
    if (out == STORE_OK && rc != DB_DONE)
        out = store_fail_db(st, rc, "read a record");
    return out;
}
