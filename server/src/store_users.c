/*
 * Dashboard accounts: supervisors and admins, their teams, Argon2id password hashes and the
 * per-account lock after too many failed logins.
 */
#include <argon2.h>
#include <psa/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* OWASP's Argon2id minimum: 19 MiB, two passes, one lane. About 50 ms on the office server. */
#define HASH_T_COST 2u
#define HASH_M_COST_KIB (19u * 1024u)
#define HASH_PARALLELISM 1u
#define HASH_SALT_BYTES 16u
#define HASH_BYTES 32u
#define HASH_ENCODED_MAX 128u

static const char users_ddl[] =
    "CREATE TABLE IF NOT EXISTS _outpost_users("
    "  name TEXT PRIMARY KEY, role INTEGER NOT NULL, pw_hash TEXT NOT NULL,"
    "  failures INTEGER NOT NULL DEFAULT 0, locked_until_ms INTEGER NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS _outpost_user_teams("
    "  name TEXT NOT NULL, team_id TEXT NOT NULL, PRIMARY KEY(name, team_id)) WITHOUT ROWID;";

static int ensure_tables(store *st)
{
    return store_exec_ddl(st, users_ddl, "create the account tables");
}

int store_users_ensure(store *st)
{
    return ensure_tables(st);
}

void store_user_clear(store_user *user)
{
    if (!user)
        return;
    free(user->teams);
    user->teams = NULL;
    user->n_teams = 0;
}

static int hash_password(store *st, const char *password, char out[HASH_ENCODED_MAX])
{
    uint8_t salt[HASH_SALT_BYTES];

    if (psa_crypto_init() != PSA_SUCCESS || psa_generate_random(salt, sizeof salt) != PSA_SUCCESS)
        return store_fail(st, STORE_EIO, "no random salt for the password hash");
    if (argon2id_hash_encoded(HASH_T_COST, HASH_M_COST_KIB, HASH_PARALLELISM, password,
                              strlen(password), salt, sizeof salt, HASH_BYTES, out,
                              HASH_ENCODED_MAX) != ARGON2_OK)
        return store_fail(st, STORE_ENOMEM, "password hashing failed");
    return STORE_OK;
}

static int team_exists(store *st, const char *team_id, bool *out_found)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn, "SELECT 1 FROM _outpost_teams WHERE id = ?1", &stmt);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 1, team_id);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    db_finalize(stmt);
    if (rc != DB_ROW && rc != DB_DONE)
        return store_fail_db(st, rc, "look up team");
    *out_found = rc == DB_ROW;
    return STORE_OK;
}

static int insert_user(store *st, const char *name, store_role role, const char *const *team_ids,
                       uint32_t n_teams, const char *encoded)
{
    db_stmt *stmt = NULL;
    bool found = false;
    int out = STORE_OK;
    int rc = db_prepare(st->conn, "SELECT 1 FROM _outpost_users WHERE name = ?1", &stmt);

    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 1, name);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    db_finalize(stmt);
    stmt = NULL;
    if (rc == DB_ROW)
        return store_fail(st, STORE_EEXISTS, "account %s exists already", name);
    if (rc != DB_DONE)
        return store_fail_db(st, rc, "look up account");
    for (uint32_t i = 0; i < n_teams; i++) {
        out = team_exists(st, team_ids[i], &found);
        if (out != STORE_OK)
            return out;
        if (!found)
            return store_fail(st, STORE_ENOTFOUND, "no team %s (add it with: team add %s)",
                              store_id_valid(team_ids[i]) ? team_ids[i] : "?",
                              store_id_valid(team_ids[i]) ? team_ids[i] : "ID");
    }
    rc = db_prepare(st->conn,
                    "INSERT INTO _outpost_users(name, role, pw_hash, created_ms)"
                    " VALUES(?1, ?2, ?3, ?4)",
                    &stmt);
    if (rc == STORE_OK) {
        db_bind_text(stmt, 1, name);
        db_bind_int64(stmt, 2, (int)role);
        db_bind_text(stmt, 3, encoded);
        db_bind_int64(stmt, 4, (int64_t)store_now_ms());
        rc = db_step(stmt);
    }
    db_finalize(stmt);
    stmt = NULL;
    if (rc != DB_DONE)
        return store_fail_db(st, rc, "add account");
    rc = db_prepare(st->conn, "INSERT INTO _outpost_user_teams VALUES(?1, ?2)"
                    " ON CONFLICT DO NOTHING",
                    &stmt);
    for (uint32_t i = 0; rc == STORE_OK && i < n_teams; i++) {
        db_reset(stmt);
        db_bind_text(stmt, 1, name);
        db_bind_text(stmt, 2, team_ids[i]);
        rc = db_step(stmt);
        if (rc == DB_DONE)
            rc = STORE_OK;
    }
    db_finalize(stmt);
    if (rc != STORE_OK)
        return store_fail_db(st, rc, "add account teams");
    return STORE_OK;
}

int store_user_add(store *st, const char *name, store_role role, const char *const *team_ids,
                   uint32_t n_teams, const char *password)
{
    char encoded[HASH_ENCODED_MAX];
    size_t pw_len = password ? strlen(password) : 0;
    int out;

    if (!store_id_valid(name))
        return store_fail(st, STORE_EINVAL,
                          "invalid account name (1 to 63 characters from A-Z a-z 0-9 . _ -)");
    if (role != STORE_ROLE_SUPERVISOR && role != STORE_ROLE_ADMIN)
        return store_fail(st, STORE_EINVAL, "role must be supervisor or admin");
    if (role == STORE_ROLE_SUPERVISOR && n_teams == 0)
        return store_fail(st, STORE_EINVAL, "a supervisor needs at least one team");
    if (pw_len < STORE_PASSWORD_MIN || pw_len > STORE_PASSWORD_MAX)
        return store_fail(st, STORE_EINVAL, "a password has %u to %u characters",
                          STORE_PASSWORD_MIN, STORE_PASSWORD_MAX);
    out = hash_password(st, password, encoded);
    if (out != STORE_OK)
        return out;
    out = ensure_tables(st);
    if (out == STORE_OK)
        out = store_begin(st, true);
    if (out != STORE_OK)
        return out;
    out = insert_user(st, name, role, team_ids, n_teams, encoded);
    if (out == STORE_OK)
        return store_commit(st);
    store_rollback(st);
    return out;
}

static int load_teams(store *st, store_user *user)
{
    db_stmt *stmt = NULL;
    const char *sql = user->role == STORE_ROLE_ADMIN
                          ? "SELECT id FROM _outpost_teams ORDER BY id"
                          : "SELECT team_id FROM _outpost_user_teams WHERE name = ?1"
                            " ORDER BY team_id";
    int rc = db_prepare(st->conn, sql, &stmt);
    int out = STORE_OK;

    if (rc == STORE_OK && user->role != STORE_ROLE_ADMIN)
        rc = db_bind_text(stmt, 1, user->name);
    while (rc == STORE_OK || rc == DB_ROW) {
        rc = db_step(stmt);
        if (rc != DB_ROW)
            break;
        char(*grown)[64] = realloc(user->teams, (user->n_teams + 1) * sizeof *user->teams);
        if (!grown) {
            out = store_fail(st, STORE_ENOMEM, "out of memory");
            break;
        }
        user->teams = grown;
        snprintf(user->teams[user->n_teams++], 64, "%s", db_column_text(stmt, 0));
    }
    db_finalize(stmt);
    if (out == STORE_OK && rc != DB_DONE)
        out = store_fail_db(st, rc, "read account teams");
    return out;
}

/* Reads (role, hash, failures, locked_until) into the out-parameters; found false if none. */
static int read_user(store *st, const char *name, store_user *user, char hash[HASH_ENCODED_MAX],
                     int64_t *out_failures, int64_t *out_locked_until, bool *out_found)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn,
                        "SELECT role, pw_hash, failures, locked_until_ms"
                        " FROM _outpost_users WHERE name = ?1",
                        &stmt);

    *out_found = false;
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 1, name);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    if (rc == DB_ROW) {
        *out_found = true;
        snprintf(user->name, sizeof user->name, "%s", name);
        user->role = db_column_int64(stmt, 0) == STORE_ROLE_ADMIN ? STORE_ROLE_ADMIN
                                                                     : STORE_ROLE_SUPERVISOR;
        if (hash)
            snprintf(hash, HASH_ENCODED_MAX, "%s", db_column_text(stmt, 1));
        *out_failures = db_column_int64(stmt, 2);
        *out_locked_until = db_column_int64(stmt, 3);
        rc = DB_DONE;
    }
    db_finalize(stmt);
    if (rc != DB_DONE)
        return store_fail_db(st, rc, "read account");
    return STORE_OK;
}

static int set_failures(store *st, const char *name, int64_t failures, int64_t locked_until)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn,
                        "UPDATE _outpost_users SET failures = ?2, locked_until_ms = ?3"
                        " WHERE name = ?1",
                        &stmt);

    if (rc == STORE_OK) {
        db_bind_text(stmt, 1, name);
        db_bind_int64(stmt, 2, failures);
        db_bind_int64(stmt, 3, locked_until);
        rc = db_step(stmt);
    }
    db_finalize(stmt);
    if (rc != DB_DONE)
        return store_fail_db(st, rc, "update account");
    return STORE_OK;
}

/* A hash of a password nobody has, so that an unknown name costs what a known one does. */
static const char dummy_hash[] =
    "$argon2id$v=19$m=19456,t=2,p=1$b3V0cG9zdC1kdW1teS1zYQ$"
    "vyMWPJGKqZnxMks9UTGDBeYx7Q0L7lJk70WH4NnyvOU";

int store_user_login(store *st, const char *name, const char *password, uint64_t now_ms,
                     store_user *out_user)
{
    static const store_lockout_policy policy = {STORE_LOGIN_MAX_FAILURES, STORE_LOGIN_LOCK_MS,
                                                STORE_LOGIN_LOCK_MS};
    char hash[HASH_ENCODED_MAX];
    int64_t failures = 0, locked_until = 0;
    /* Names that cannot be accounts share one key: they still cost what a real one does. */
    const char *key = name && store_id_valid(name) ? name : "(not an account name)";
    bool found = false, locked = false;
    bool ok;
    int out;

    memset(out_user, 0, sizeof *out_user);
    if (!password || strlen(password) > STORE_PASSWORD_MAX)
        password = "";
    out = ensure_tables(st);
    if (out == STORE_OK && store_id_valid(name))
        out = read_user(st, name, out_user, hash, &failures, &locked_until, &found);
    if (out == STORE_OK)
        out = store_lockout_check(st, STORE_LOCKOUT_LOGIN, key, now_ms, &locked);
    if (out != STORE_OK)
        return out;
    if (locked) {
        memset(out_user, 0, sizeof *out_user);
        return store_fail(st, STORE_ELOCKED, "account locked after %u failed logins",
                          STORE_LOGIN_MAX_FAILURES);
    }
    ok = argon2id_verify(found ? hash : dummy_hash, password, strlen(password)) == ARGON2_OK;
    bool disabled = false;
    if (found && ok) {
        out = store_person_disabled(st, "user", name, &disabled);
        if (out != STORE_OK || disabled) {
            memset(out_user, 0, sizeof *out_user);
            return out != STORE_OK ? out : store_fail(st, STORE_EAUTH, "wrong name or password");
        }
    }
    if (found && ok) {
        out = store_lockout_clear(st, STORE_LOCKOUT_LOGIN, key);
        if (out == STORE_OK)
            out = store_user_must_change(st, name, &out_user->must_change);
        if (out == STORE_OK)
            out = load_teams(st, out_user);
        if (out != STORE_OK)
            store_user_clear(out_user);
        return out;
    }
    /* Known or not, a failure is counted against the name tried, with the same writes. */
    memset(out_user, 0, sizeof *out_user);
    out = store_lockout_fail(st, STORE_LOCKOUT_LOGIN, key, &policy, now_ms, &locked);
    if (out != STORE_OK)
        return out;
    if (locked)
        return store_fail(st, STORE_ELOCKED, "account locked after %u failed logins",
                          STORE_LOGIN_MAX_FAILURES);
    return store_fail(st, STORE_EAUTH, "wrong name or password");
}

int store_user_get(store *st, const char *name, store_user *out_user)
{
    int64_t failures = 0, locked_until = 0;
    bool found = false;
    int out;

    memset(out_user, 0, sizeof *out_user);
    if (!store_id_valid(name))
        return store_fail(st, STORE_ENOTFOUND, "no such account");
    out = ensure_tables(st);
    if (out == STORE_OK)
        out = read_user(st, name, out_user, NULL, &failures, &locked_until, &found);
    if (out == STORE_OK && !found)
        out = store_fail(st, STORE_ENOTFOUND, "no account %s", name);
    bool disabled = false;
    if (out == STORE_OK)
        out = store_person_disabled(st, "user", name, &disabled);
    if (out == STORE_OK && disabled)
        out = store_fail(st, STORE_ENOTFOUND, "account %s is disabled", name);
    if (out == STORE_OK)
        out = store_user_must_change(st, name, &out_user->must_change);
    if (out == STORE_OK)
        out = load_teams(st, out_user);
    if (out != STORE_OK)
        store_user_clear(out_user);
    return out;
}

int store_user_unlock(store *st, const char *name)
{
    store_user user;
    int out = store_user_get(st, name, &user);

    store_user_clear(&user);
    if (out == STORE_OK)
        out = set_failures(st, name, 0, 0);
    if (out == STORE_OK)
        out = store_lockout_clear(st, STORE_LOCKOUT_LOGIN, name);
    return out;
}

int store_user_set_password(store *st, const char *name, const char *password)
{
    char encoded[HASH_ENCODED_MAX];
    db_stmt *stmt = NULL;
    size_t pw_len = password ? strlen(password) : 0;
    int out, rc;

    if (pw_len < STORE_PASSWORD_MIN || pw_len > STORE_PASSWORD_MAX)
        return store_fail(st, STORE_EINVAL, "a password has %u to %u characters",
                          STORE_PASSWORD_MIN, STORE_PASSWORD_MAX);
    out = hash_password(st, password, encoded);
    if (out != STORE_OK)
        return out;
    rc = db_prepare(st->conn,
                    "UPDATE _outpost_users SET pw_hash = ?2, failures = 0,"
                    " locked_until_ms = 0 WHERE name = ?1",
                    &stmt);
    if (rc == STORE_OK) {
        db_bind_text(stmt, 1, name);
        db_bind_text(stmt, 2, encoded);
        rc = db_step(stmt);
    }
    int64_t changed = rc == DB_DONE ? db_changes(stmt) : 0;
    db_finalize(stmt);
    if (rc != DB_DONE)
        return store_fail_db(st, rc, "set the password");
    if (changed == 0)
        return store_fail(st, STORE_ENOTFOUND, "no account %s", name);
    return STORE_OK;
}
