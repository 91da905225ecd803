/*
 * Scope changes reaching devices. The change log tells a device what changed since its cursor,
 * but when its worker joins or leaves a team no row changes: rows of a joined team older than
 * the cursor would never arrive, rows of a left team would stay on the device. So a change of a
 * worker's teams records, for each of its devices, which teams were joined and left
 * (_outpost_rescopes, at a marker sequence), and a snapshot of the rows concerned
 * (_outpost_rescope_rows): every live row of a joined team, every key of a left team, each at
 * a server sequence of its own taken after the marker. The pull walks those sequences together
 * with the change log (pull.c), so the rows are paged within `msg` and `page` like any change,
 * and a page's cursor says how far the device got: a page lost on the way is pulled again from
 * the same cursor; once the device's cursor is past the snapshot the entry is spent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_rows.h"
#include "store_values.h"

static const char rescope_ddl[] =
    "CREATE TABLE IF NOT EXISTS _outpost_rescopes("
    "  device_no INTEGER NOT NULL, team_id TEXT NOT NULL, joined INTEGER NOT NULL,"
    "  marker_seq INTEGER NOT NULL, PRIMARY KEY(device_no, team_id)) WITHOUT ROWID;";
static const char rescope_rows_ddl[] =
    "CREATE TABLE IF NOT EXISTS _outpost_rescope_rows("
    "  seq INTEGER PRIMARY KEY, marker_seq INTEGER NOT NULL, team_id TEXT NOT NULL,"
    "  table_id INTEGER NOT NULL, pk BLOB NOT NULL);";

static bool has_team(const char (*teams)[64], uint32_t n, const char *team)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(teams[i], team) == 0)
            return true;
    return false;
}

/* Takes the snapshot of team's rows (joined: live rows; left: every key) for the entry at
 * marker, at the sequences after *last; moves *last to the last one taken. */
static int snapshot_team(store *st, const char *team, bool joined, int64_t marker, int64_t *last)
{
    db_stmt *s = NULL;
    proto_value scope;
    /* The row's scope is an any-value column (encoded on PostgreSQL): the team is bound as a
     * value for it (?4) and as text for the snapshot's team_id (?3). */
    memset(&scope, 0, sizeof scope);
    scope.type = PROTO_TEXT;
    scope.u.b.p = (const uint8_t *)team;
    scope.u.b.n = (uint32_t)strlen(team);
    int rc = db_prepare(
        st->conn,
        joined ? "INSERT INTO _outpost_rescope_rows(seq, marker_seq, team_id, table_id, pk)"
                 " SELECT ?1 + ROW_NUMBER() OVER (ORDER BY table_id, pk), ?2, ?3, table_id, pk"
                 " FROM _outpost_rows WHERE scope = ?4 AND deleted = 0"
               : "INSERT INTO _outpost_rescope_rows(seq, marker_seq, team_id, table_id, pk)"
                 " SELECT ?1 + ROW_NUMBER() OVER (ORDER BY table_id, pk), ?2, ?3, table_id, pk"
                 " FROM _outpost_rows WHERE scope = ?4",
        &s);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 1, *last);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 2, marker);
    if (rc == STORE_OK)
        rc = db_bind_text(s, 3, team);
    if (rc == STORE_OK)
        rc = store_value_bind_any(s, 4, &scope);
    if (rc == STORE_OK)
        rc = db_step(s);
    if (rc == DB_DONE) {
        *last += db_changes(s);
        rc = STORE_OK;
    }
    db_finalize(s);
    return rc == STORE_OK ? STORE_OK : store_fail_db(st, rc, "record a team's rows");
}

/* Inside the caller's write transaction. */
int store_rescope_record(store *st, const char *worker_id, const char (*old_teams)[64],
                         uint32_t n_old, const char *const *new_teams, uint32_t n_new)
{
    char (*now)[64] = calloc(n_new ? n_new : 1, sizeof *now);
    db_stmt *stmt = NULL;
    int64_t seq = 0, last = 0;
    bool changed = false;
    int out, rc;

    if (!now)
        return store_fail(st, STORE_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n_new; i++)
        snprintf(now[i], sizeof now[i], "%s", new_teams[i]);
    for (uint32_t i = 0; i < n_old && !changed; i++)
        changed = !has_team((const char(*)[64])now, n_new, old_teams[i]);
    for (uint32_t i = 0; i < n_new && !changed; i++)
        changed = !has_team(old_teams, n_old, now[i]);
    out = changed ? store_exec(st, rescope_ddl, "create the rescope table") : STORE_OK;
    if (out == STORE_OK && changed)
        out = store_exec(st, rescope_rows_ddl, "create the rescope rows table");
    if (out == STORE_OK && changed)
        out = store_meta_get(st, "server_seq", &seq);
    last = ++seq;
    rc = out == STORE_OK && changed
             ? db_prepare(st->conn,
                          "INSERT INTO _outpost_rescopes(device_no, team_id, joined, marker_seq)"
                          " SELECT no, CAST(?2 AS TEXT), ?3, ?4 FROM _outpost_devices"
                          " WHERE worker_id = ?1 AND revoked = 0"
                          " ON CONFLICT(device_no, team_id) DO UPDATE SET"
                          " joined = excluded.joined, marker_seq = excluded.marker_seq",
                          &stmt)
             : STORE_OK;
    for (int pass = 0; out == STORE_OK && changed && rc == STORE_OK && pass < 2; pass++) {
        /* pass 0: teams left; pass 1: teams joined */
        uint32_t n = pass ? n_new : n_old;
        for (uint32_t i = 0; i < n && rc == STORE_OK && out == STORE_OK; i++) {
            const char *team = pass ? now[i] : old_teams[i];
            bool in_other = pass ? has_team(old_teams, n_old, team)
                                 : has_team((const char(*)[64])now, n_new, team);
            if (in_other)
                continue;
            rc = db_reset(stmt);
            if (rc == STORE_OK)
                rc = db_bind_text(stmt, 1, worker_id);
            if (rc == STORE_OK)
                rc = db_bind_text(stmt, 2, team);
            if (rc == STORE_OK)
                rc = db_bind_int64(stmt, 3, pass);
            if (rc == STORE_OK)
                rc = db_bind_int64(stmt, 4, seq);
            if (rc == STORE_OK)
                rc = db_step(stmt);
            if (rc == DB_DONE)
                rc = STORE_OK;
            /* No device of this worker: nothing to send. */
            if (rc == STORE_OK && db_changes(stmt) > 0)
                out = snapshot_team(st, team, pass != 0, seq, &last);
        }
    }
    db_finalize(stmt);
    if (out == STORE_OK && rc != STORE_OK)
        out = store_fail_db(st, rc, "record the scope change");
    /* Snapshots no device entry refers to any more (replaced by a newer change). */
    if (out == STORE_OK && changed)
        out = store_exec(st,
                         "DELETE FROM _outpost_rescope_rows WHERE NOT EXISTS(SELECT 1 FROM"
                         " _outpost_rescopes d WHERE d.marker_seq = _outpost_rescope_rows.marker_seq"
                         " AND d.team_id = _outpost_rescope_rows.team_id)",
                         "drop spent scope changes");
    if (out == STORE_OK && changed)
        out = store_meta_set(st, "server_seq", last);
    free(now);
    return out;
}
