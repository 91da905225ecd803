/* The write API: transactions, the app's statements, and capture into the outbox at commit. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Resets a capture session left with dead entries by a rollback. Called where no transaction
 * is open, before anything can be captured. */
static int session_ready(outpost_replica *r)
{
    if (!r->session_stale)
        return OUTPOST_OK;
    return replica_session_reset(r);
}

/* After a failure inside a transaction: SQLite rolls the whole transaction back on some errors
 * (disk full, I/O error). Notices that, so the handle does not believe a transaction is open. */
static int tx_check_alive(outpost_replica *r, int rc)
{
    if (r->in_tx && sqlite3_get_autocommit(r->db)) {
        size_t len = strlen(r->errmsg);

        r->in_tx = false;
        r->session_stale = true;
        snprintf(r->errmsg + len, sizeof r->errmsg - len, " (the transaction was rolled back)");
        session_ready(r);
    }
    return rc;
}

int outpost_tx_begin(outpost_replica *replica)
{
    int rc;

    if (replica == NULL)
        return OUTPOST_EINVAL;
    rc = replica_check_usable(replica);
    if (rc != OUTPOST_OK)
        return rc;
    if (replica->in_tx)
        return replica_fail(replica, OUTPOST_EMISUSE, "a transaction is already open");
    if (!sqlite3_get_autocommit(replica->db))
        return replica_fail(replica, OUTPOST_EMISUSE,
                            "a transaction opened directly on the connection is still open");
    rc = session_ready(replica);
    if (rc != OUTPOST_OK)
        return rc;
    rc = replica_begin(replica);
    if (rc != OUTPOST_OK)
        return rc;
    replica->in_tx = true;
    replica_clear_error(replica);
    return OUTPOST_OK;
}

static bool only_space(const char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    return *s == '\0';
}

/* Finds the app statement for sql in the cache, or prepares and caches it. */
static int exec_prepare(outpost_replica *r, const char *sql, sqlite3_stmt **out_stmt)
{
    sqlite3_stmt *stmt = NULL;
    const char *tail = NULL;
    stmt_slot *slot;
    char *copy;
    int rc;

    for (uint32_t i = 0; i < OUTPOST_STMT_CACHE; i++) {
        if (r->stmts[i].sql && strcmp(r->stmts[i].sql, sql) == 0) {
            *out_stmt = r->stmts[i].stmt;
            return OUTPOST_OK;
        }
    }
    r->mode = MODE_APP_EXEC;
    rc = sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    r->mode = MODE_APP;
    if (rc == SQLITE_AUTH)
        return replica_fail(r, OUTPOST_EDENIED,
                            "statement refused: outpost_exec may not control transactions, attach "
                            "databases, write library tables or alter synced tables (%s)",
                            sqlite3_errmsg(r->db));
    if (rc != SQLITE_OK)
        return replica_fail_sqlite(r, rc, "prepare");
    if (stmt == NULL || (tail && !only_space(tail))) {
        sqlite3_finalize(stmt);
        return replica_fail(r, OUTPOST_EINVAL, "outpost_exec takes exactly one SQL statement");
    }
    copy = sqlite3_mprintf("%s", sql);
    if (copy == NULL) {
        sqlite3_finalize(stmt);
        return replica_fail(r, OUTPOST_ENOMEM, "out of memory caching a statement");
    }
    slot = &r->stmts[r->next_evict];
    r->next_evict = (r->next_evict + 1) % OUTPOST_STMT_CACHE;
    sqlite3_finalize(slot->stmt);
    sqlite3_free(slot->sql);
    slot->stmt = stmt;
    slot->sql = copy;
    *out_stmt = stmt;
    return OUTPOST_OK;
}

static int exec_run(outpost_replica *r, const char *sql, const outpost_value *params,
                    uint32_t n_params)
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    rc = exec_prepare(r, sql, &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    if (n_params > (uint32_t)sqlite3_bind_parameter_count(stmt))
        return replica_fail(r, OUTPOST_EINVAL, "%u parameters given, the statement takes %d",
                            (unsigned)n_params, sqlite3_bind_parameter_count(stmt));
    sqlite3_clear_bindings(stmt);
    for (uint32_t i = 0; i < n_params; i++) {
        proto_value v;
        value_from_public(&params[i], &v);
        rc = value_bind(stmt, (int)i + 1, &v);
        if (rc != SQLITE_OK)
            return replica_fail_sqlite(r, rc, "binding a parameter");
    }
    r->mode = MODE_APP_EXEC;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        ;
    r->mode = MODE_APP;
    if (rc != SQLITE_DONE) {
        if (rc == SQLITE_AUTH)
            rc = replica_fail(r, OUTPOST_EDENIED, "statement refused: %s", sqlite3_errmsg(r->db));
        else
            rc = replica_fail_sqlite(r, rc, "exec");
        sqlite3_reset(stmt);
        return rc;
    }
    sqlite3_reset(stmt);
    return OUTPOST_OK;
}

int outpost_exec(outpost_replica *replica, const char *sql, const outpost_value *params,
                 uint32_t n_params)
{
    bool own_tx;
    int rc;

    if (replica == NULL)
        return OUTPOST_EINVAL;
    rc = replica_check_usable(replica);
    if (rc != OUTPOST_OK)
        return rc;
    if (sql == NULL || (n_params > 0 && params == NULL))
        return replica_fail(replica, OUTPOST_EINVAL, "outpost_exec: sql (and params when "
                                                     "n_params > 0) are required");
    own_tx = !replica->in_tx;
    if (own_tx) {
        rc = outpost_tx_begin(replica);
        if (rc != OUTPOST_OK)
            return rc;
    }
    rc = exec_run(replica, sql, params, n_params);
    if (rc != OUTPOST_OK) {
        tx_check_alive(replica, rc);
        if (own_tx && replica->in_tx) {
            /* The rollback clears the message; the app needs SQLite's own words. */
            char msg[OUTPOST_ERRMSG_SIZE];

            memcpy(msg, replica->errmsg, sizeof msg);
            outpost_tx_rollback(replica);
            memcpy(replica->errmsg, msg, sizeof msg);
        }
        return rc;
    }
    if (own_tx)
        return outpost_tx_commit(replica, NULL);
    return OUTPOST_OK;
}

/* Library statements used on every commit, kept prepared. */
static int commit_stmt(outpost_replica *r, sqlite3_stmt **slot, const char *sql)
{
    if (*slot)
        return OUTPOST_OK;
    r->mode = MODE_LIBRARY;
    int rc = sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
    r->mode = MODE_APP;
    if (rc != SQLITE_OK) {
        *slot = NULL;
        return replica_fail_sqlite(r, rc, "preparing the outbox");
    }
    return OUTPOST_OK;
}

/* Gives the transaction the next device sequence and a clock reading that is later than every
 * earlier one (the wall clock, or one tick past the last clock issued when the wall clock went
 * back), then writes its changeset to the outbox. Runs inside the app's transaction. */
static int outbox_append(outpost_replica *r, const void *changeset, int n_bytes, uint64_t *out_seq)
{
    int64_t now_ms = replica_now_ms(r);
    sqlite3_stmt *st;
    int64_t seq, hlc, schema_version;
    int rc;

    rc = commit_stmt(r, &r->st_next_seq,
                     "UPDATE _outpost_state SET device_seq = device_seq + 1,"
                     " hlc = max(?1, hlc + 1) WHERE id = 1"
                     " RETURNING device_seq, hlc, schema_version");
    if (rc == OUTPOST_OK)
        rc = commit_stmt(r, &r->st_outbox_insert,
                         "INSERT INTO _outpost_outbox(seq, hlc, created_ms, schema_version)"
                         " VALUES(?1, ?2, ?3, ?4)");
    if (rc == OUTPOST_OK)
        rc = commit_stmt(r, &r->st_changeset_insert,
                         "INSERT INTO _outpost_changesets(seq, changeset) VALUES(?1, ?2)");
    if (rc != OUTPOST_OK)
        return rc;

    st = r->st_next_seq;
    sqlite3_bind_int64(st, 1, (int64_t)PROTO_HLC_MAKE(now_ms < 0 ? 0 : now_ms, 0));
    r->mode = MODE_LIBRARY;
    rc = sqlite3_step(st);
    r->mode = MODE_APP;
    if (rc != SQLITE_ROW) {
        rc = replica_fail_sqlite(r, rc, "numbering the outbox entry");
        sqlite3_reset(st);
        return rc;
    }
    seq = sqlite3_column_int64(st, 0);
    hlc = sqlite3_column_int64(st, 1);
    schema_version = sqlite3_column_int64(st, 2);
    /* Step to the end so the UPDATE is complete before the INSERT runs. */
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return replica_fail_sqlite(r, rc, "numbering the outbox entry");

    st = r->st_outbox_insert;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int64(st, 2, hlc);
    sqlite3_bind_int64(st, 3, now_ms);
    sqlite3_bind_int64(st, 4, schema_version);
    r->mode = MODE_LIBRARY;
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) {
        st = r->st_changeset_insert;
        sqlite3_bind_int64(st, 1, seq);
        sqlite3_bind_blob(st, 2, changeset, n_bytes, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_clear_bindings(st);
        sqlite3_reset(st);
    }
    r->mode = MODE_APP;
    if (rc != SQLITE_DONE)
        return replica_fail_sqlite(r, rc, "writing the outbox entry");
    *out_seq = (uint64_t)seq;
    return OUTPOST_OK;
}

int outpost_tx_commit(outpost_replica *replica, uint64_t *out_seq)
{
    void *changeset = NULL;
    int n_bytes = 0;
    uint64_t seq = 0;
    int rc;

    if (out_seq)
        *out_seq = 0;
    if (replica == NULL)
        return OUTPOST_EINVAL;
    if (!replica->in_tx)
        return replica_fail(replica, OUTPOST_EMISUSE, "no transaction is open");
    rc = replica_check_usable(replica);
    if (rc != OUTPOST_OK) {
        replica_rollback(replica);
        session_ready(replica);
        return rc;
    }
    if (sqlite3_get_autocommit(replica->db)) {
        tx_check_alive(replica, 0);
        return replica_fail(replica, OUTPOST_EMISUSE,
                            "the transaction was already rolled back; nothing was committed");
    }
    if (replica->session) {
        /* The session wraps its reads in a SAVEPOINT, which the guard allows only the library. */
        replica->mode = MODE_LIBRARY;
        rc = sqlite3session_changeset(replica->session, &n_bytes, &changeset);
        replica->mode = MODE_APP;
        if (rc != SQLITE_OK) {
            rc = replica_fail_sqlite(replica, rc, "capturing the transaction's changes");
            goto fail;
        }
    }
    /* An empty changeset: the transaction changed no synced table (or changed rows back).
     * What the server would refuse is refused now, while the worker still sees it. */
    if (n_bytes > 0) {
        rc = scope_check(replica, changeset, n_bytes);
        if (rc == OUTPOST_OK)
            rc = outbox_append(replica, changeset, n_bytes, &seq);
        if (rc != OUTPOST_OK)
            goto fail;
    }
    rc = replica_commit(replica);
    if (rc != OUTPOST_OK)
        goto fail;
    sqlite3_free(changeset);
    replica->in_tx = false;
    /* The commit stands whatever happens here; a failed reset is retried before the next
     * transaction. */
    replica->session_stale = true;
    session_ready(replica);
    replica_clear_error(replica);
    if (out_seq)
        *out_seq = seq;
    if (n_bytes > 0)
        replica_notify_commit(replica);
    return OUTPOST_OK;
fail:
    sqlite3_free(changeset);
    replica_rollback(replica);
    session_ready(replica);
    return rc;
}

int outpost_tx_rollback(outpost_replica *replica)
{
    if (replica == NULL)
        return OUTPOST_EINVAL;
    if (!replica->in_tx)
        return replica_fail(replica, OUTPOST_EMISUSE, "no transaction is open");
    replica_rollback(replica);
    session_ready(replica);
    replica_clear_error(replica);
    return OUTPOST_OK;
}
