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
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn, sql, &stmt);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 1, id);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    db_finalize(stmt);
    if (rc != DB_ROW && rc != DB_DONE)
        return store_fail_db(st, rc, "look up");
    *out_exists = rc == DB_ROW;
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
        db_stmt *stmt = NULL;
        int rc = db_prepare(st->conn, "INSERT INTO _outpost_teams VALUES(?1, ?2, ?3)", &stmt);
        if (rc == STORE_OK) {
            db_bind_text(stmt, 1, team_id);
            if (name != NULL)
                db_bind_text(stmt, 2, name);
            db_bind_int64(stmt, 3, (int64_t)store_now_ms());
            rc = db_step(stmt);
        }
        db_finalize(stmt);
        if (rc != DB_DONE)
            out = store_fail_db(st, rc, "add team");
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
    db_stmt *stmt = NULL;
    int rc = STORE_OK;
    if (out == 0) {
        rc = db_prepare(st->conn, "INSERT INTO _outpost_workers VALUES(?1, ?2)", &stmt);
        if (rc == STORE_OK) {
            db_bind_text(stmt, 1, worker_id);
            db_bind_int64(stmt, 2, (int64_t)store_now_ms());
            rc = db_step(stmt);
        }
        db_finalize(stmt);
        stmt = NULL;
        if (rc == DB_DONE)
            rc = db_prepare(st->conn,
                            "INSERT INTO _outpost_worker_teams VALUES(?1, ?2)"
                                    " ON CONFLICT DO NOTHING",
                            &stmt);
        for (uint32_t i = 0; rc == STORE_OK && i < n_teams; i++) {
            db_bind_text(stmt, 1, worker_id);
            db_bind_text(stmt, 2, team_ids[i]);
            rc = db_step(stmt);
            if (rc == DB_DONE)
                rc = db_reset(stmt);
        }
        db_finalize(stmt);
        if (rc != STORE_OK)
            out = store_fail_db(st, rc, "add worker");
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
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn,
                        "SELECT team_id FROM _outpost_worker_teams WHERE worker_id = ?1"
                        " ORDER BY team_id",
                        &stmt);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 1, worker_id);
    int out = 0;
    while (rc == STORE_OK && (rc = db_step(stmt)) == DB_ROW) {
        rc = STORE_OK;
        char(*teams)[64] = realloc(*out_teams, (*out_n + 1) * sizeof *teams);
        if (teams == NULL) {
            out = store_fail(st, STORE_ENOMEM, "out of memory");
            break;
        }
        *out_teams = teams;
        snprintf(teams[*out_n], 64, "%s", db_column_text(stmt, 0));
        (*out_n)++;
    }
    if (out == 0 && rc != DB_DONE)
        out = store_fail_db(st, rc, "read teams");
    db_finalize(stmt);
    if (out != 0) {
        free(*out_teams);
        *out_teams = NULL;
        *out_n = 0;
    }
    return out;
}
