/*
 * People over their lifetime: listing teams, workers and dashboard accounts; disabling,
 * enabling and removing them; changing their teams; resetting a password. Disabled people are
 * kept in _outpost_disabled (kind 'worker' or 'user'), which device lookups, device
 * authentication and dashboard logins read on every request, so a disable takes effect at the
 * next request of a running outpostd that shares the store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

int store_lifecycle_ensure(store *st)
{
    if (st->lifecycle_ready)
        return STORE_OK;
    int out = store_exec_ddl(st,
                         "CREATE TABLE IF NOT EXISTS _outpost_disabled("
                         "  kind TEXT NOT NULL, id TEXT NOT NULL, since_ms INTEGER NOT NULL,"
                         "  PRIMARY KEY(kind, id)) WITHOUT ROWID;"
                         "CREATE TABLE IF NOT EXISTS _outpost_pw_reset("
                         "  name TEXT PRIMARY KEY, since_ms INTEGER NOT NULL) WITHOUT ROWID;",
                         "create the disabled-people table");
    st->lifecycle_ready = out == STORE_OK;
    return out;
}

int store_person_disabled(store *st, const char *kind, const char *id, bool *out_disabled)
{
    db_stmt *stmt = NULL;
    int out = store_lifecycle_ensure(st);
    int rc;

    *out_disabled = false;
    if (out != STORE_OK)
        return out;
    rc = db_prepare(st->conn, "SELECT 1 FROM _outpost_disabled WHERE kind = ?1 AND id = ?2",
                    &stmt);
    if (rc == STORE_OK) {
        db_bind_text(stmt, 1, kind);
        db_bind_text(stmt, 2, id);
        rc = db_step(stmt);
    }
    db_finalize(stmt);
    if (rc != DB_ROW && rc != DB_DONE)
        return store_fail_db(st, rc, "read who is disabled");
    *out_disabled = rc == DB_ROW;
    return STORE_OK;
}

/* Runs one statement with up to three text parameters; *out_changes gets the rows changed. */
static int run(store *st, const char *sql, const char *a, const char *b, const char *c,
               int *out_changes, const char *what)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn, sql, &stmt);
    const char *params[] = {a, b, c};

    for (int i = 0; rc == STORE_OK && i < 3; i++)
        if (params[i])
            rc = db_bind_text(stmt, i + 1, params[i]);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    if (out_changes)
        *out_changes = rc == DB_DONE ? (int)db_changes(stmt) : 0;
    db_finalize(stmt);
    if (rc != DB_DONE)
        return store_fail_db(st, rc, what);
    return STORE_OK;
}

static int need(store *st, const char *sql, const char *id, const char *noun)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn, sql, &stmt);

    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 1, id);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    db_finalize(stmt);
    if (rc == DB_ROW)
        return STORE_OK;
    if (rc == DB_DONE)
        return store_fail(st, STORE_ENOTFOUND, "no %s %s", noun, id);
    return store_fail_db(st, rc, "look up");
}

static const char sql_worker[] = "SELECT 1 FROM _outpost_workers WHERE id = ?1";
static const char sql_user[] = "SELECT 1 FROM _outpost_users WHERE name = ?1";
static const char sql_team[] = "SELECT 1 FROM _outpost_teams WHERE id = ?1";

static int finish(store *st, int out)
{
    if (out == STORE_OK)
        return store_commit(st);
    store_rollback(st);
    return out;
}

static int set_disabled(store *st, const char *kind, const char *id, bool disabled)
{
    char since[24];
    int out = store_lifecycle_ensure(st);

    if (out == STORE_OK && strcmp(kind, "user") == 0)
        out = store_users_ensure(st);
    if (out == STORE_OK)
        out = store_begin(st, true);
    if (out != STORE_OK)
        return out;
    out = strcmp(kind, "worker") == 0 ? need(st, sql_worker, id, "worker")
                                      : need(st, sql_user, id, "account");
    snprintf(since, sizeof since, "%llu", (unsigned long long)store_now_ms());
    if (out == STORE_OK)
        out = disabled ? run(st,
                             "INSERT INTO _outpost_disabled VALUES(?1, ?2,"
                             " CAST(?3 AS INTEGER)) ON CONFLICT DO NOTHING",
                             kind, id, since, NULL, "disable")
                       : run(st, "DELETE FROM _outpost_disabled WHERE kind = ?1 AND id = ?2", kind,
                             id, NULL, NULL, "enable");
    /* A disabled account's dashboard sessions end at their next request on any node, which
     * says why (store_session_find); enabling it again brings none of them back. */
    if (out == STORE_OK && !disabled && strcmp(kind, "user") == 0)
        out = store_sessions_end_user(st, id, NULL, NULL);
    return finish(st, out);
}

int store_worker_set_disabled(store *st, const char *worker_id, bool disabled)
{
    return set_disabled(st, "worker", worker_id, disabled);
}

int store_user_set_disabled(store *st, const char *name, bool disabled)
{
    return set_disabled(st, "user", name, disabled);
}

/* Checks every team exists; then replaces the member's teams. */
static int replace_teams(store *st, const char *del_sql, const char *ins_sql, const char *id,
                         const char *const *team_ids, uint32_t n_teams)
{
    int out = run(st, del_sql, id, NULL, NULL, NULL, "change teams");

    for (uint32_t i = 0; out == STORE_OK && i < n_teams; i++) {
        out = need(st, sql_team, team_ids[i], "team");
        if (out == STORE_OK)
            out = run(st, ins_sql, id, team_ids[i], NULL, NULL, "change teams");
    }
    return out;
}

int store_worker_set_teams(store *st, const char *worker_id, const char *const *team_ids,
                           uint32_t n_teams)
{
    if (n_teams == 0)
        return store_fail(st, STORE_EINVAL, "a worker needs at least one team");
    int out = store_begin(st, true);
    if (out != STORE_OK)
        return out;
    char(*old_teams)[64] = NULL;
    uint32_t n_old = 0;
    out = need(st, sql_worker, worker_id, "worker");
    if (out == STORE_OK)
        out = store_worker_teams(st, worker_id, &n_old, &old_teams);
    if (out == STORE_OK)
        out = replace_teams(st, "DELETE FROM _outpost_worker_teams WHERE worker_id = ?1",
                            "INSERT INTO _outpost_worker_teams VALUES(?1, ?2)"
                            " ON CONFLICT DO NOTHING",
                            worker_id, team_ids, n_teams);
    /* Its devices drop the rows of teams left and pull those of teams joined. */
    if (out == STORE_OK)
        out = store_rescope_record(st, worker_id, (const char(*)[64])old_teams, n_old, team_ids,
                                   n_teams);
    free(old_teams);
    return finish(st, out);
}

/* The account's role; STORE_ENOTFOUND when there is none (disabled ones included). */
static int user_role(store *st, const char *name, store_role *out_role)
{
    db_stmt *stmt = NULL;
    int out = store_users_ensure(st);
    int rc;

    if (out != STORE_OK)
        return out;
    rc = db_prepare(st->conn, "SELECT role FROM _outpost_users WHERE name = ?1", &stmt);
    if (rc == STORE_OK) {
        db_bind_text(stmt, 1, name);
        rc = db_step(stmt);
    }
    if (rc == DB_ROW)
        *out_role = db_column_int64(stmt, 0) == STORE_ROLE_ADMIN ? STORE_ROLE_ADMIN
                                                                    : STORE_ROLE_SUPERVISOR;
    db_finalize(stmt);
    if (rc == DB_ROW)
        return STORE_OK;
    if (rc == DB_DONE)
        return store_fail(st, STORE_ENOTFOUND, "no account %s", name);
    return store_fail_db(st, rc, "look up account");
}

int store_user_set_teams(store *st, const char *name, const char *const *team_ids,
                         uint32_t n_teams)
{
    store_role role = STORE_ROLE_SUPERVISOR;
    int out = user_role(st, name, &role);

    if (out != STORE_OK)
        return out;
    if (role != STORE_ROLE_ADMIN && n_teams == 0)
        return store_fail(st, STORE_EINVAL, "a supervisor needs at least one team");
    out = store_begin(st, true);
    if (out != STORE_OK)
        return out;
    out = replace_teams(st, "DELETE FROM _outpost_user_teams WHERE name = ?1",
                        "INSERT INTO _outpost_user_teams VALUES(?1, ?2) ON CONFLICT DO NOTHING",
                        name, team_ids, n_teams);
    return finish(st, out);
}

int store_user_remove(store *st, const char *name)
{
    int changes = 0;
    int out = store_lifecycle_ensure(st);

    if (out == STORE_OK)
        out = store_users_ensure(st);
    if (out == STORE_OK)
        out = store_begin(st, true);
    if (out != STORE_OK)
        return out;
    out = run(st, "DELETE FROM _outpost_users WHERE name = ?1", name, NULL, NULL, &changes,
              "remove account");
    if (out == STORE_OK && changes == 0)
        out = store_fail(st, STORE_ENOTFOUND, "no account %s", name);
    if (out == STORE_OK)
        out = run(st, "DELETE FROM _outpost_user_teams WHERE name = ?1", name, NULL, NULL, NULL,
                  "remove account");
    if (out == STORE_OK)
        out = run(st, "DELETE FROM _outpost_disabled WHERE kind = 'user' AND id = ?1", name, NULL,
                  NULL, NULL, "remove account");
    if (out == STORE_OK)
        out = run(st, "DELETE FROM _outpost_pw_reset WHERE name = ?1", name, NULL, NULL, NULL,
                  "remove account");
    if (out == STORE_OK)
        out = store_sessions_end_user(st, name, NULL, NULL);
    return finish(st, out);
}

int store_worker_remove(store *st, const char *worker_id, uint32_t *out_n_revoked)
{
    char since[24];
    int changes = 0;
    int out = store_lifecycle_ensure(st);

    *out_n_revoked = 0;
    if (out == STORE_OK)
        out = store_begin(st, true);
    if (out != STORE_OK)
        return out;
    /* The worker's id stays (devices, changes and conflicts name it); it can no longer sync
     * or be enabled: its devices are revoked and told to wipe, its teams are gone. */
    out = need(st, sql_worker, worker_id, "worker");
    snprintf(since, sizeof since, "%llu", (unsigned long long)store_now_ms());
    if (out == STORE_OK)
        out = run(st,
                  "UPDATE _outpost_devices SET revoked = 1, wipe = 1,"
                  " revoked_ms = coalesce(revoked_ms, CAST(?2 AS INTEGER))"
                  " WHERE worker_id = ?1 AND (revoked = 0 OR wipe = 0)",
                  worker_id, since, NULL, &changes, "revoke the worker's devices");
    *out_n_revoked = (uint32_t)changes;
    if (out == STORE_OK)
        out = run(st, "DELETE FROM _outpost_worker_teams WHERE worker_id = ?1", worker_id, NULL,
                  NULL, NULL, "remove worker");
    if (out == STORE_OK)
        out = run(st,
                  "INSERT INTO _outpost_disabled VALUES('worker', ?1,"
                  " CAST(?2 AS INTEGER)) ON CONFLICT(kind, id) DO UPDATE"
                  " SET since_ms = excluded.since_ms",
                  worker_id, since, NULL, NULL, "remove worker");
    return finish(st, out);
}

int store_user_reset_password(store *st, const char *name, const char *password)
{
    store_role role;
    int out = user_role(st, name, &role);

    if (out != STORE_OK)
        return out;
    char since[24];
    snprintf(since, sizeof since, "%llu", (unsigned long long)store_now_ms());
    out = store_begin(st, true);
    if (out != STORE_OK)
        return out;
    out = store_user_set_password(st, name, password);
    if (out == STORE_OK)
        out = run(st,
                  "INSERT INTO _outpost_pw_reset VALUES(?1, CAST(?2 AS INTEGER))"
                  " ON CONFLICT(name) DO UPDATE SET since_ms = excluded.since_ms",
                  name, since, NULL, NULL, "mark the password as reset");
    return finish(st, out);
}

int store_user_must_change(store *st, const char *name, bool *out_must)
{
    db_stmt *stmt = NULL;
    int out = store_lifecycle_ensure(st);
    int rc;

    *out_must = false;
    if (out != STORE_OK)
        return out;
    rc = db_prepare(st->conn, "SELECT 1 FROM _outpost_pw_reset WHERE name = ?1", &stmt);
    if (rc == STORE_OK) {
        db_bind_text(stmt, 1, name);
        rc = db_step(stmt);
    }
    db_finalize(stmt);
    if (rc != DB_ROW && rc != DB_DONE)
        return store_fail_db(st, rc, "read password resets");
    *out_must = rc == DB_ROW;
    return STORE_OK;
}

int store_user_change_password(store *st, const char *name, const char *current,
                               const char *new_password, uint64_t now_ms)
{
    store_user user;
    int out = store_user_login(st, name, current, now_ms, &user);

    store_user_clear(&user);
    if (out != STORE_OK)
        return out;
    if (strcmp(current, new_password) == 0)
        return store_fail(st, STORE_EINVAL, "the new password must differ from the current one");
    out = store_begin(st, true);
    if (out != STORE_OK)
        return out;
    out = store_user_set_password(st, name, new_password);
    if (out == STORE_OK)
        out = run(st, "DELETE FROM _outpost_pw_reset WHERE name = ?1", name, NULL, NULL, NULL,
                  "clear the password reset");
    return finish(st, out);
}

/* ---- Lists ---------------------------------------------------------------------------------- */

static int list(store *st, const char *sql, store_person_cb cb, void *user_data, int kind_col)
{
    db_stmt *stmt = NULL;
    int out = store_lifecycle_ensure(st);
    int rc;

    if (out == STORE_OK)
        out = store_users_ensure(st);
    if (out != STORE_OK)
        return out;
    rc = db_prepare(st->conn, sql, &stmt);
    while (out == STORE_OK && rc == STORE_OK) {
        store_person p;
        rc = db_step(stmt);
        if (rc != DB_ROW)
            break;
        rc = STORE_OK;
        memset(&p, 0, sizeof p);
        snprintf(p.id, sizeof p.id, "%s", db_column_text(stmt, 0));
        snprintf(p.name, sizeof p.name, "%s",
                 db_column_text(stmt, 1) ? db_column_text(stmt, 1) : "");
        snprintf(p.teams, sizeof p.teams, "%s",
                 db_column_text(stmt, 2) ? db_column_text(stmt, 2) : "");
        p.disabled = db_column_int64(stmt, 3) != 0;
        p.n_devices = (uint32_t)db_column_int64(stmt, 4);
        p.role = kind_col ? (store_role)db_column_int64(stmt, 5) : 0;
        out = cb(&p, user_data);
    }
    if (out == STORE_OK && rc != DB_DONE && rc != STORE_OK)
        out = store_fail_db(st, rc, "list");
    db_finalize(stmt);
    return out;
}

int store_team_list(store *st, store_person_cb cb, void *user_data)
{
    return list(st,
                "SELECT t.id, t.name,"
                " (SELECT group_concat(worker_id, ',') FROM (SELECT worker_id FROM"
                "  _outpost_worker_teams WHERE team_id = t.id ORDER BY worker_id) AS w),"
                " 0, (SELECT count(*) FROM _outpost_worker_teams WHERE team_id = t.id), 0"
                " FROM _outpost_teams t ORDER BY t.id",
                cb, user_data, 0);
}

int store_worker_list(store *st, store_person_cb cb, void *user_data)
{
    return list(st,
                "SELECT w.id, '',"
                " (SELECT group_concat(team_id, ',') FROM (SELECT team_id FROM"
                "  _outpost_worker_teams WHERE worker_id = w.id ORDER BY team_id) AS t),"
                " EXISTS(SELECT 1 FROM _outpost_disabled WHERE kind = 'worker' AND id = w.id),"
                " (SELECT count(*) FROM _outpost_devices WHERE worker_id = w.id AND revoked = 0),"
                " 0 FROM _outpost_workers w ORDER BY w.id",
                cb, user_data, 0);
}

int store_user_list(store *st, store_person_cb cb, void *user_data)
{
    return list(st,
                "SELECT u.name, '',"
                " (SELECT group_concat(team_id, ',') FROM (SELECT team_id FROM"
                "  _outpost_user_teams WHERE name = u.name ORDER BY team_id) AS t),"
                " EXISTS(SELECT 1 FROM _outpost_disabled WHERE kind = 'user' AND id = u.name),"
                " 0, u.role FROM _outpost_users u ORDER BY u.name",
                cb, user_data, 1);
}
