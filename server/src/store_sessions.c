/*
 * Dashboard login sessions kept in the store, so that every outpostd node on one database
 * knows them: a supervisor logged in on one node is known on another, and a logout, an idle
 * or aged-out session, or a disabled or removed account ends it on all of them. The store
 * keeps only the SHA-256 of each token: a copy of the database opens no session.
 */
#include <psa/crypto.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include "store_internal.h"

#define TOUCH_STEP_MS 1000u

/* Ended sessions removed per new session: the table stays small however many never log out. */
#define PRUNE_LIMIT_TEXT "16"

static const char sessions_ddl[] =
    "CREATE TABLE IF NOT EXISTS _outpost_sessions("
    "  token_hash TEXT PRIMARY KEY, user_name TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS _outpost_sessions_user ON _outpost_sessions(user_name);";

static const char hex_digits[] = "0123456789abcdef";

static void to_hex(const uint8_t *raw, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[raw[i] >> 4];
        out[2 * i + 1] = hex_digits[raw[i] & 15];
    }
    out[2 * n] = 0;
}

static bool token_well_formed(const char *token)
{
    if (!token || strlen(token) != STORE_SESSION_TOKEN_HEX - 1)
        return false;
    for (const char *p = token; *p; p++)
        if (!strchr(hex_digits, *p))
            return false;
    return true;
}

/* The key a session is stored under: the token's SHA-256, in hex. */
static int token_key(store *st, const char *token, char out[STORE_SESSION_TOKEN_HEX])
{
    uint8_t digest[32];

    if (mbedtls_sha256((const uint8_t *)token, strlen(token), digest, 0) != 0)
        return store_fail(st, STORE_EIO, "sha256 failed");
    to_hex(digest, sizeof digest, out);
    return STORE_OK;
}

static int ensure_table(store *st)
{
    return store_exec_ddl(st, sessions_ddl, "create the session table");
}

/* Runs sql with ?1 = text a and, when b is not NULL, ?2 = text b. */
static int run2(store *st, const char *sql, const char *a, const char *b, const char *what,
                int64_t *out_changed)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn, sql, &stmt);

    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 1, a);
    if (rc == STORE_OK && b)
        rc = db_bind_text(stmt, 2, b);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    if (rc == DB_DONE && out_changed)
        *out_changed = db_changes(stmt);
    db_finalize(stmt);
    return rc == DB_DONE ? STORE_OK : store_fail_db(st, rc, what);
}

/* Runs sql with ?1 = now_ms, ?2 = idle ms, ?3 = max age ms (removing ended sessions). */
static int run_times(store *st, const char *sql, uint64_t now_ms, const char *what)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn, sql, &stmt);

    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 1, (int64_t)now_ms);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 2, (int64_t)STORE_SESSION_IDLE_MS);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 3, (int64_t)STORE_SESSION_MAX_AGE_MS);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    db_finalize(stmt);
    return rc == DB_DONE ? STORE_OK : store_fail_db(st, rc, what);
}

/* Ends user's least recently used sessions until fewer than STORE_SESSIONS_PER_USER remain. */
static int make_room(store *st, const char *user, int64_t *out_n)
{
    char cap[16];
    char sql[320];

    snprintf(cap, sizeof cap, "%u", STORE_SESSIONS_PER_USER - 1u);
    snprintf(sql, sizeof sql,
             "DELETE FROM _outpost_sessions WHERE user_name = ?1 AND token_hash NOT IN"
             " (SELECT token_hash FROM _outpost_sessions WHERE user_name = ?1"
             "  ORDER BY last_ms DESC, token_hash LIMIT %s)",
             cap);
    return run2(st, sql, user, NULL, "end an account's oldest session", out_n);
}

int store_session_create(store *st, const char *user, uint64_t now_ms,
                         char out_token[STORE_SESSION_TOKEN_HEX], uint32_t *out_n_ended)
{
    int64_t n_ended = 0;
    uint8_t raw[32];
    char key[STORE_SESSION_TOKEN_HEX];
    db_stmt *stmt = NULL;
    int rc, out = ensure_table(st);

    out_token[0] = 0;
    if (out != STORE_OK)
        return out;
    if (psa_crypto_init() != PSA_SUCCESS || psa_generate_random(raw, sizeof raw) != PSA_SUCCESS)
        return store_fail(st, STORE_EIO, "no random bytes for a session token");
    to_hex(raw, sizeof raw, out_token);
    mbedtls_platform_zeroize(raw, sizeof raw);
    out = token_key(st, out_token, key);
    if (out == STORE_OK)
        out = store_begin(st, true);
    if (out != STORE_OK) {
        mbedtls_platform_zeroize(out_token, STORE_SESSION_TOKEN_HEX);
        return out;
    }
    out = run_times(st,
                    "DELETE FROM _outpost_sessions WHERE token_hash IN"
                    " (SELECT token_hash FROM _outpost_sessions"
                    "  WHERE last_ms + ?2 < ?1 OR created_ms + ?3 < ?1 LIMIT " PRUNE_LIMIT_TEXT ")",
                    now_ms, "remove ended sessions");
    if (out == STORE_OK)
        out = make_room(st, user, &n_ended);
    if (out == STORE_OK) {
        rc = db_prepare(st->conn,
                        "INSERT INTO _outpost_sessions(token_hash, user_name, created_ms, last_ms)"
                        " VALUES (?1, ?2, ?3, ?3)",
                        &stmt);
        if (rc == STORE_OK)
            rc = db_bind_text(stmt, 1, key);
        if (rc == STORE_OK)
            rc = db_bind_text(stmt, 2, user);
        if (rc == STORE_OK)
            rc = db_bind_int64(stmt, 3, (int64_t)now_ms);
        if (rc == STORE_OK)
            rc = db_step(stmt);
        db_finalize(stmt);
        out = rc == DB_DONE ? STORE_OK : store_fail_db(st, rc, "start a session");
    }
    if (out == STORE_OK)
        out = store_commit(st);
    if (out != STORE_OK) {
        store_rollback(st);
        mbedtls_platform_zeroize(out_token, STORE_SESSION_TOKEN_HEX);
        n_ended = 0;
    }
    if (out_n_ended)
        *out_n_ended = (uint32_t)n_ended;
    return out;
}

/* Ends every session of user but keep_key's (NULL: none kept). */
static int end_user_sessions(store *st, const char *user, const char *keep_key,
                             uint32_t *out_n)
{
    int64_t n = 0;
    int out = keep_key ? run2(st,
                              "DELETE FROM _outpost_sessions WHERE user_name = ?1"
                              " AND token_hash <> ?2",
                              user, keep_key, "end an account's sessions", &n)
                       : run2(st, "DELETE FROM _outpost_sessions WHERE user_name = ?1", user,
                              NULL, "end an account's sessions", &n);
    if (out_n)
        *out_n = out == STORE_OK ? (uint32_t)n : 0;
    return out;
}

int store_session_find(store *st, const char *token, uint64_t now_ms, bool touch,
                       store_session *out_session)
{
    char key[STORE_SESSION_TOKEN_HEX];
    db_stmt *stmt = NULL;
    bool disabled = false;
    int rc, out;

    memset(out_session, 0, sizeof *out_session);
    if (!token_well_formed(token))
        return store_fail(st, STORE_ENOTFOUND, "no such session");
    out = ensure_table(st);
    if (out == STORE_OK)
        out = store_users_ensure(st);
    if (out == STORE_OK)
        out = token_key(st, token, key);
    if (out != STORE_OK)
        return out;
    rc = db_prepare(st->conn,
                    "SELECT s.user_name, s.created_ms, s.last_ms,"
                    " CASE WHEN u.name IS NULL THEN 0 ELSE 1 END"
                    " FROM _outpost_sessions s LEFT JOIN _outpost_users u ON u.name = s.user_name"
                    " WHERE s.token_hash = ?1",
                    &stmt);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 1, key);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    if (rc == DB_ROW) {
        snprintf(out_session->user, sizeof out_session->user, "%s", db_column_text(stmt, 0));
        out_session->created_ms = (uint64_t)db_column_int64(stmt, 1);
        out_session->last_ms = (uint64_t)db_column_int64(stmt, 2);
        disabled = db_column_int64(stmt, 3) == 0; /* the account was removed */
    }
    db_finalize(stmt);
    if (rc != DB_ROW && rc != DB_DONE)
        return store_fail_db(st, rc, "read a session");
    if (rc == DB_DONE)
        return store_fail(st, STORE_ENOTFOUND, "no such session");
    if (now_ms > out_session->last_ms + STORE_SESSION_IDLE_MS ||
        now_ms > out_session->created_ms + STORE_SESSION_MAX_AGE_MS) {
        (void)run2(st, "DELETE FROM _outpost_sessions WHERE token_hash = ?1", key, NULL,
                   "end a session", NULL);
        return store_fail(st, STORE_ENOTFOUND, "the session ended (idle or too old)");
    }
    if (!disabled)
        out = store_person_disabled(st, "user", out_session->user, &disabled);
    if (out == STORE_OK && disabled) {
        (void)end_user_sessions(st, out_session->user, NULL, NULL);
        return store_fail(st, STORE_EREVOKED, "the account was disabled or removed");
    }
    /* The idle clock moves in steps of a second: a page's burst of requests writes once. */
    if (out == STORE_OK && touch && now_ms >= out_session->last_ms + TOUCH_STEP_MS) {
        db_stmt *up = NULL;
        rc = db_prepare(st->conn,
                        "UPDATE _outpost_sessions SET last_ms = ?2"
                        " WHERE token_hash = ?1 AND last_ms < ?2",
                        &up);
        if (rc == STORE_OK)
            rc = db_bind_text(up, 1, key);
        if (rc == STORE_OK)
            rc = db_bind_int64(up, 2, (int64_t)now_ms);
        if (rc == STORE_OK)
            rc = db_step(up);
        db_finalize(up);
        out = rc == DB_DONE ? STORE_OK : store_fail_db(st, rc, "restart a session's idle clock");
    }
    return out;
}

int store_session_end(store *st, const char *token)
{
    char key[STORE_SESSION_TOKEN_HEX];
    int out;

    if (!token_well_formed(token))
        return STORE_OK; /* nothing to end */
    out = ensure_table(st);
    if (out == STORE_OK)
        out = token_key(st, token, key);
    if (out == STORE_OK)
        out = run2(st, "DELETE FROM _outpost_sessions WHERE token_hash = ?1", key, NULL,
                   "end a session", NULL);
    return out;
}

int store_sessions_end_user(store *st, const char *user, const char *keep_token,
                            uint32_t *out_n)
{
    char key[STORE_SESSION_TOKEN_HEX];
    int out = ensure_table(st);

    if (out_n)
        *out_n = 0;
    if (out == STORE_OK && keep_token && token_well_formed(keep_token))
        out = token_key(st, keep_token, key);
    else
        keep_token = NULL;
    if (out != STORE_OK)
        return out;
    return end_user_sessions(st, user, keep_token ? key : NULL, out_n);
}
