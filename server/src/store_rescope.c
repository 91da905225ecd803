/*
 * Scope changes reaching devices. The change log tells a device what changed since its cursor,
 * but when its worker joins or leaves a team no row changes: rows of a joined team older than
 * the cursor would never arrive, rows of a left team would stay on the device. So a change of a
 * worker's teams records, for each of its devices, which teams were joined and left, at a new
 * server sequence (the marker). The pull whose page covers the marker (cursor < marker <= the
 * page's next cursor) also carries every row of each joined team the cursor had passed, and a
 * "removed" for every row of each left team. A page lost on the way is simply pulled again
 * from the same cursor, and carries them again; once the device's cursor is past the marker
 * the entry is spent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_rows.h"

static const char rescope_ddl[] =
    "CREATE TABLE IF NOT EXISTS _outpost_rescopes("
    "  device_no INTEGER NOT NULL, team_id TEXT NOT NULL, joined INTEGER NOT NULL,"
    "  marker_seq INTEGER NOT NULL, PRIMARY KEY(device_no, team_id)) WITHOUT ROWID;";

static bool has_team(const char (*teams)[64], uint32_t n, const char *team)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(teams[i], team) == 0)
            return true;
    return false;
}

/* Inside the caller's write transaction. */
int store_rescope_record(store *st, const char *worker_id, const char (*old_teams)[64],
                         uint32_t n_old, const char *const *new_teams, uint32_t n_new)
{
    char (*now)[64] = calloc(n_new ? n_new : 1, sizeof *now);
    sqlite3_stmt *stmt = NULL;
    int64_t seq = 0;
    bool changed = false;
    int out, rc;

    if (!now)
        return store_fail(st, STORE_ENOMEM, "out of memory");
    if (st->db == NULL) { /* the change log is not on the database seam yet */
        free(now);
        return store_fail(st, STORE_EINVAL,
                          "changing a worker's teams runs only on a SQLite store so far");
    }
    for (uint32_t i = 0; i < n_new; i++)
        snprintf(now[i], sizeof now[i], "%s", new_teams[i]);
    for (uint32_t i = 0; i < n_old && !changed; i++)
        changed = !has_team((const char(*)[64])now, n_new, old_teams[i]);
    for (uint32_t i = 0; i < n_new && !changed; i++)
        changed = !has_team(old_teams, n_old, now[i]);
    out = changed ? store_exec(st, rescope_ddl, "create the rescope table") : STORE_OK;
    if (out == STORE_OK && changed)
        out = store_meta_get(st, "server_seq", &seq);
    if (out == STORE_OK && changed)
        out = store_meta_set(st, "server_seq", ++seq);
    rc = out == STORE_OK && changed
             ? sqlite3_prepare_v2(st->db,
                                  "INSERT OR REPLACE INTO _outpost_rescopes"
                                  " SELECT no, ?2, ?3, ?4 FROM _outpost_devices"
                                  " WHERE worker_id = ?1 AND revoked = 0",
                                  -1, &stmt, NULL)
             : SQLITE_OK;
    for (int pass = 0; out == STORE_OK && changed && rc == SQLITE_OK && pass < 2; pass++) {
        /* pass 0: teams left; pass 1: teams joined */
        uint32_t n = pass ? n_new : n_old;
        for (uint32_t i = 0; i < n && rc == SQLITE_OK; i++) {
            const char *team = pass ? now[i] : old_teams[i];
            bool in_other = pass ? has_team(old_teams, n_old, team)
                                 : has_team((const char(*)[64])now, n_new, team);
            if (in_other)
                continue;
            sqlite3_reset(stmt);
            sqlite3_bind_text(stmt, 1, worker_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(stmt, 2, team, -1, SQLITE_STATIC);
            sqlite3_bind_int(stmt, 3, pass);
            sqlite3_bind_int64(stmt, 4, seq);
            rc = sqlite3_step(stmt);
            if (rc == SQLITE_DONE)
                rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(stmt);
    if (out == STORE_OK && rc != SQLITE_OK)
        out = store_fail_sqlite(st, rc, "record the scope change");
    free(now);
    return out;
}

static const store_table *table_by_id(store *st, int64_t id)
{
    for (uint32_t i = 0; i < st->n_tables; i++)
        if (st->tables[i].id == id)
            return &st->tables[i];
    return NULL;
}

/* Adds every row of team (joined: live rows with seq <= cursor, in full; left: every key, as
 * removed) to rs. */
static int emit_team(store *st, const char *team, bool joined, uint64_t cursor, rowset *rs,
                     store_arena *arena, store_pull_info *info)
{
    sqlite3_stmt *s = NULL;
    int out = STORE_OK;
    int rc = sqlite3_prepare_v2(st->db,
                                joined ? "SELECT table_id, pk FROM _outpost_rows WHERE scope = ?1"
                                         " AND deleted = 0 AND seq <= ?2"
                                       : "SELECT table_id, pk FROM _outpost_rows WHERE scope = ?1",
                                -1, &s, NULL);

    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, team, -1, SQLITE_STATIC);
        if (joined)
            sqlite3_bind_int64(s, 2, (int64_t)cursor);
    }
    while (out == STORE_OK && rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        store_table *t = (store_table *)table_by_id(st, sqlite3_column_int64(s, 0));
        if (t == NULL)
            continue;
        proto_value *pk = store_arena_alloc(arena, t->n_pk * sizeof *pk);
        proto_value *vals = store_arena_alloc(arena, t->n_cols * sizeof *vals);
        uint32_t n_pk = 0;
        bool found = false;
        if (pk == NULL || vals == NULL) {
            out = store_fail(st, STORE_ENOMEM, "out of memory");
            break;
        }
        out = store_values_decode(arena, sqlite3_column_blob(s, 1),
                                  (size_t)sqlite3_column_bytes(s, 1), pk, t->n_pk, &n_pk);
        if (out != STORE_OK || n_pk != t->n_pk) {
            out = store_fail(st, STORE_EIO, "table %s: damaged row key", t->name);
            break;
        }
        int added = 0;
        if (joined) {
            out = row_read(st, t, pk, arena, vals, &found);
            if (out == STORE_OK && found) {
                added = rowset_add_row(rs, t, vals);
                info->n_rows += added == 0;
            }
        } else {
            added = rowset_add_key(rs, t, ROWSET_REMOVED, pk);
            info->n_removed += added == 0;
        }
        if (added != 0)
            out = store_fail(st, added, "out of memory");
    }
    sqlite3_finalize(s);
    if (out == STORE_OK && rc != SQLITE_DONE && rc != SQLITE_OK)
        out = store_fail_sqlite(st, rc, "read a team's rows");
    return out;
}

int store_rescope_emit(store *st, const store_device *dev, int64_t dev_no, uint64_t cursor,
                       uint64_t next_cursor, rowset *rs, store_arena *arena,
                       store_pull_info *info)
{
    sqlite3_stmt *s = NULL;
    int out = STORE_OK;
    int rc = sqlite3_prepare_v2(st->db,
                                "SELECT team_id, joined FROM _outpost_rescopes WHERE device_no = ?1"
                                " AND marker_seq > ?2 AND marker_seq <= ?3 ORDER BY team_id",
                                -1, &s, NULL);

    if (rc != SQLITE_OK) {
        /* No scope change was ever recorded in this store: nothing to do. */
        sqlite3_finalize(s);
        return STORE_OK;
    }
    sqlite3_bind_int64(s, 1, dev_no);
    sqlite3_bind_int64(s, 2, (int64_t)cursor);
    sqlite3_bind_int64(s, 3, (int64_t)next_cursor);
    while (out == STORE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *team = (const char *)sqlite3_column_text(s, 0);
        bool joined = sqlite3_column_int(s, 1) != 0;
        proto_value v = {.type = PROTO_TEXT};
        v.u.b.p = (const uint8_t *)team;
        v.u.b.n = (uint32_t)strlen(team);
        /* Only what still holds: a team left and joined again since is in the newer entry. */
        if (joined == row_scope_allowed(dev, &v))
            out = emit_team(st, team, joined, cursor, rs, arena, info);
    }
    if (out == STORE_OK && rc != SQLITE_DONE)
        out = store_fail_sqlite(st, rc, "read scope changes");
    sqlite3_finalize(s);
    return out;
}
