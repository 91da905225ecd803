/*
 * Teams and workers: who may see which rows. A worker belongs to one or more teams; the team
 * ids are the scope values of the synced tables.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

bool store_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static int exists(store *st, const char *sql, const char *id, bool *out_exists)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_fail_sqlite(st, rc, "look up");
    *out_exists = rc == SQLITE_ROW;
    return 0;
}

int store_team_add(store *st, const char *team_id, const char *name)
{
    if (!store_id_valid(team_id))
        return store_fail(st, STORE_EINVAL,
                          "invalid team id (1 to 63 characters from A-Z a-z 0-9 . _ -)");
    int out = store_begin(st, true);
    if (out != 0)
        return out;
    bool found = false;
    out = exists(st, "SELECT 1 FROM _outpost_teams WHERE id = ?1", team_id, &found);
    if (out == 0 && found)
        out = store_fail(st, STORE_EEXISTS, "team %s exists already", team_id);
    if (out == 0) {
        sqlite3_stmt *stmt = NULL;
        int rc = sqlite3_prepare_v2(st->db, "INSERT INTO _outpost_teams VALUES(?1, ?2, ?3)", -1,
                                    &stmt, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(stmt, 1, team_id, -1, SQLITE_STATIC);
            if (name != NULL)
                sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
            sqlite3_bind_int64(stmt, 3, (int64_t)store_now_ms());
            rc = sqlite3_step(stmt);
        }
        sqlite3_finalize(stmt);
        if (rc != SQLITE_DONE)
            out = store_fail_sqlite(st, rc, "add team");
    }
    if (out == 0)
        return store_commit(st);
    store_rollback(st);
    return out;
}

int store_worker_add(store *st, const char *worker_id, const char *const *team_ids,
                     uint32_t n_teams)
{
    if (!store_id_valid(worker_id))
        return store_fail(st, STORE_EINVAL,
                          "invalid worker id (1 to 63 characters from A-Z a-z 0-9 . _ -)");
    if (n_teams == 0)
        return store_fail(st, STORE_EINVAL, "a worker needs at least one team");
    int out = store_begin(st, true);
    if (out != 0)
        return out;
    bool found = false;
    out = exists(st, "SELECT 1 FROM _outpost_workers WHERE id = ?1", worker_id, &found);
    if (out == 0 && found)
        out = store_fail(st, STORE_EEXISTS, "worker %s exists already", worker_id);
    for (uint32_t i = 0; out == 0 && i < n_teams; i++) {
        if (!store_id_valid(team_ids[i])) {
            out = store_fail(st, STORE_EINVAL, "invalid team id");
            break;
        }
        out = exists(st, "SELECT 1 FROM _outpost_teams WHERE id = ?1", team_ids[i], &found);
        if (out == 0 && !found)
            out = store_fail(st, STORE_ENOTFOUND, "no team %s (add it with: team add %s)",
                             team_ids[i], team_ids[i]);
    }
    sqlite3_stmt *stmt = NULL;
    int rc = SQLITE_OK;
    if (out == 0) {
        rc = sqlite3_prepare_v2(st->db, "INSERT INTO _outpost_workers VALUES(?1, ?2)", -1, &stmt,
                                NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(stmt, 1, worker_id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(stmt, 2, (int64_t)store_now_ms());
            rc = sqlite3_step(stmt);
        }
        sqlite3_finalize(stmt);
        stmt = NULL;
        if (rc == SQLITE_DONE)
            rc = sqlite3_prepare_v2(st->db,
                                    "INSERT OR IGNORE INTO _outpost_worker_teams VALUES(?1, ?2)",
                                    -1, &stmt, NULL);
        for (uint32_t i = 0; rc == SQLITE_OK && i < n_teams; i++) {
            sqlite3_bind_text(stmt, 1, worker_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(stmt, 2, team_ids[i], -1, SQLITE_STATIC);
            rc = sqlite3_step(stmt);
            if (rc == SQLITE_DONE)
                rc = sqlite3_reset(stmt);
        }
        sqlite3_finalize(stmt);
        if (rc != SQLITE_OK)
            out = store_fail_sqlite(st, rc, "add worker");
    }
    if (out == 0)
        return store_commit(st);
    store_rollback(st);
    return out;
}

int store_worker_teams(store *st, const char *worker_id, uint32_t *out_n, char (**out_teams)[64])
{
    *out_n = 0;
    *out_teams = NULL;
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(st->db,
                                "SELECT team_id FROM _outpost_worker_teams WHERE worker_id = ?1"
                                " ORDER BY team_id",
                                -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 1, worker_id, -1, SQLITE_STATIC);
    int out = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        char(*teams)[64] = realloc(*out_teams, (*out_n + 1) * sizeof *teams);
        if (teams == NULL) {
            out = store_fail(st, STORE_ENOMEM, "out of memory");
            break;
        }
        *out_teams = teams;
        snprintf(teams[*out_n], 64, "%s", (const char *)sqlite3_column_text(stmt, 0));
        (*out_n)++;
    }
    if (out == 0 && rc != SQLITE_DONE)
        out = store_fail_sqlite(st, rc, "read teams");
    sqlite3_finalize(stmt);
    if (out != 0) {
        free(*out_teams);
        *out_teams = NULL;
        *out_n = 0;
    }
    return out;
}
