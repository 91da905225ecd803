/* Lockouts kept in the central store: they survive a restart, and every check and count runs
 * on the store's own connection, one job at a time, so concurrent guesses cannot pass a limit
 * together. */
#include <stdio.h>
#include <string.h>

#include "store_internal.h"

/* Expired rows removed per recorded failure: the table stays small however many keys fail. */
#define PRUNE_LIMIT_TEXT "16"

static const char lockouts_ddl[] =
    "CREATE TABLE IF NOT EXISTS _outpost_lockouts("
    "  kind TEXT NOT NULL, key TEXT NOT NULL, failures INTEGER NOT NULL,"
    "  window_start_ms INTEGER NOT NULL, locked_until_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(kind, key)) WITHOUT ROWID;";

/* Prepares sql, whose ?1 and ?2 are the lockout's kind and key, and binds them. */
static int prepare_kind_key(store *st, const char *sql, const char *kind, const char *key,
                            db_stmt **out)
{
    int rc = db_prepare(st->conn, sql, out);
    if (rc == STORE_OK)
        rc = db_bind_text(*out, 1, kind);
    if (rc == STORE_OK)
        rc = db_bind_text(*out, 2, key);
    return rc;
}

static int read_row(store *st, const char *kind, const char *key, int64_t *out_failures,
                    int64_t *out_window_start, int64_t *out_locked_until)
{
    db_stmt *stmt = NULL;
    int rc = store_exec_ddl(st, lockouts_ddl, "create the lockout table");

    *out_failures = *out_window_start = *out_locked_until = 0;
    if (rc != STORE_OK)
        return rc;
    rc = prepare_kind_key(st, "SELECT failures, window_start_ms, locked_until_ms"
                              " FROM _outpost_lockouts WHERE kind = ?1 AND key = ?2",
                          kind, key, &stmt);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    if (rc == DB_ROW) {
        *out_failures = db_column_int64(stmt, 0);
        *out_window_start = db_column_int64(stmt, 1);
        *out_locked_until = db_column_int64(stmt, 2);
        rc = DB_DONE;
    }
    db_finalize(stmt);
    return rc == DB_DONE ? STORE_OK : store_fail_db(st, rc, "read a lockout");
}

int store_lockout_check(store *st, const char *kind, const char *key, uint64_t now_ms,
                        bool *out_locked)
{
    int64_t failures, window_start, locked_until;
    int rc = read_row(st, kind, key, &failures, &window_start, &locked_until);

    *out_locked = rc == STORE_OK && (uint64_t)locked_until > now_ms;
    return rc;
}

int store_lockout_fail(store *st, const char *kind, const char *key,
                       const store_lockout_policy *policy, uint64_t now_ms, bool *out_locked)
{
    int64_t failures, window_start, locked_until;
    db_stmt *stmt = NULL;
    int rc = read_row(st, kind, key, &failures, &window_start, &locked_until);

    *out_locked = false;
    if (rc != STORE_OK)
        return rc;
    if ((uint64_t)locked_until > now_ms) {
        *out_locked = true; /* already locked: the lock is not extended */
        return STORE_OK;
    }
    if (locked_until != 0 || (uint64_t)window_start + policy->window_ms <= now_ms) {
        failures = 0; /* a lock that ran out, or a window that ended, starts a new count */
        window_start = (int64_t)now_ms;
    }
    failures++;
    locked_until = 0;
    if ((uint64_t)failures >= policy->max_failures) {
        locked_until = (int64_t)(now_ms + policy->duration_ms);
        *out_locked = true;
    }
    rc = prepare_kind_key(st, "INSERT INTO _outpost_lockouts"
                              " (kind, key, failures, window_start_ms, locked_until_ms)"
                              " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(kind, key) DO UPDATE"
                              " SET failures = excluded.failures,"
                              " window_start_ms = excluded.window_start_ms,"
                              " locked_until_ms = excluded.locked_until_ms",
                          kind, key, &stmt);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 3, failures);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 4, window_start);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 5, locked_until);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    db_finalize(stmt);
    if (rc != DB_DONE)
        return store_fail_db(st, rc, "record a failed attempt");

    /* Rows whose lock and window both ended say nothing any more. */
    stmt = NULL;
    rc = db_prepare(st->conn,
                    "DELETE FROM _outpost_lockouts WHERE (kind, key) IN"
                    " (SELECT kind, key FROM _outpost_lockouts"
                    "  WHERE locked_until_ms <= ?1 AND window_start_ms + ?2 <= ?1"
                    "  LIMIT " PRUNE_LIMIT_TEXT ")",
                    &stmt);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 1, (int64_t)now_ms);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 2, (int64_t)policy->window_ms);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    db_finalize(stmt);
    return rc == DB_DONE ? STORE_OK : store_fail_db(st, rc, "prune lockouts");
}

int store_lockout_clear(store *st, const char *kind, const char *key)
{
    db_stmt *stmt = NULL;
    int rc = store_exec_ddl(st, lockouts_ddl, "create the lockout table");

    if (rc != STORE_OK)
        return rc;
    rc = prepare_kind_key(st, "DELETE FROM _outpost_lockouts WHERE kind = ?1 AND key = ?2", kind,
                          key, &stmt);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    db_finalize(stmt);
    return rc == DB_DONE ? STORE_OK : store_fail_db(st, rc, "clear a lockout");
}
