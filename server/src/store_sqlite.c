/*
 * The SQLite store: opening the file, the store's own metadata tables, and the helpers every
 * store module uses (errors, transactions, metadata keys).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store_internal.h"

/* Busy timeout: long enough to wait out another writer's transaction (pushes are bounded),
 * short enough that a stuck writer surfaces as STORE_EBUSY rather than a hung session. */
enum { STORE_BUSY_TIMEOUT_MS = 5000 };

/* The store's own tables. Everything Outpost keeps besides the synced data lives under the
 * _outpost_ prefix, which schema.c refuses for synced tables. The first part is written in the
 * seam's portable SQL (db.h) and made on both engines. */
const char store_base_ddl[] =
    "CREATE TABLE IF NOT EXISTS _outpost_meta("
    "  key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO _outpost_meta VALUES('format', 1), ('schema_version', 0),"
    "  ('server_seq', 0) ON CONFLICT DO NOTHING;"
    /* Every schema the store has had, as the admin gave it. */
    "CREATE TABLE IF NOT EXISTS _outpost_schema_versions("
    "  version INTEGER PRIMARY KEY, schema_sql TEXT NOT NULL, policy_text TEXT NOT NULL,"
    "  applied_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS _outpost_tables("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, create_sql TEXT NOT NULL,"
    "  scope_col INTEGER NOT NULL, policy INTEGER NOT NULL, since_version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS _outpost_columns("
    "  table_id INTEGER NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL,"
    "  pk_pos INTEGER NOT NULL, since_version INTEGER NOT NULL,"
    "  PRIMARY KEY(table_id, idx)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS _outpost_teams("
    "  id TEXT PRIMARY KEY, name TEXT, created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS _outpost_workers("
    "  id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS _outpost_worker_teams("
    "  worker_id TEXT NOT NULL, team_id TEXT NOT NULL,"
    "  PRIMARY KEY(worker_id, team_id)) WITHOUT ROWID;"
    /* no: a small integer that stands for the device in per-column versions. */
    "CREATE TABLE IF NOT EXISTS _outpost_devices("
    "  no INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, worker_id TEXT NOT NULL, name TEXT,"
    "  secret_hash BLOB NOT NULL, enrolled_ms INTEGER NOT NULL, last_seen_ms INTEGER,"
    "  cursor INTEGER NOT NULL DEFAULT 0, acked_seq INTEGER NOT NULL DEFAULT 0,"
    "  revoked INTEGER NOT NULL DEFAULT 0, wipe INTEGER NOT NULL DEFAULT 0,"
    "  revoked_ms INTEGER);"
    "CREATE TABLE IF NOT EXISTS _outpost_enroll_codes("
    "  code_hash BLOB PRIMARY KEY, worker_id TEXT NOT NULL, created_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL, used_ms INTEGER, device_id TEXT);"
    ;

/* The merge engine's tables, in the seam's portable SQL and made on both engines. A column that
 * takes a value of any type (scope, scope_old, scope_new, losing_value, winning_value) is
 * declared BLOB: on SQLite that is no affinity, the value is kept as it came, with its type; on
 * PostgreSQL it is BYTEA holding the value's canonical encoding. Such a column is only read
 * and written through store_value_bind_any / store_value_column_any (store_values.h). */
const char store_sync_ddl[] =
    /* Merge state of every row the store has seen, live or deleted:
     *   seq          server sequence of the row's latest change
     *   scope        current scope value (for a deleted row: its scope when deleted)
     *   base_hlc/base_device  version (HLC, device no) of every column without its own entry
     *   versions     per column: 8-byte HLC and 4-byte device no of the last writer; NULL
     *                or shorter than the row when columns still have the base version
     *   del_hlc/del_device  who deleted it (tombstone), tomb: the values it had
     *   echo_device/echo_since  the latest changes since echo_since are all this device's own
     *                unaltered writes: pull skips the row for that device */
    "CREATE TABLE IF NOT EXISTS _outpost_rows("
    "  table_id INTEGER NOT NULL, pk BLOB NOT NULL, seq INTEGER NOT NULL,"
    "  deleted INTEGER NOT NULL, scope BLOB, base_hlc INTEGER NOT NULL,"
    "  base_device INTEGER NOT NULL, versions BLOB, del_hlc INTEGER,"
    "  del_device INTEGER, tomb BLOB, echo_device INTEGER, echo_since INTEGER NOT NULL,"
    "  PRIMARY KEY(table_id, pk)) WITHOUT ROWID;"
    /* The change log: one entry per row change, global server sequence. prev_seq: the row's
     * previous entry (NULL for its first). A record's history (the dashboard) walks back from
     * _outpost_rows.seq along it, so the log needs no index by row: every push would write
     * one more b-tree per row for it. Last, so that an older store gains it by ALTER TABLE. */
    "CREATE TABLE IF NOT EXISTS _outpost_changes("
    "  seq INTEGER PRIMARY KEY, table_id INTEGER NOT NULL, pk BLOB NOT NULL,"
    "  op INTEGER NOT NULL, device INTEGER, altered INTEGER NOT NULL, hlc INTEGER NOT NULL,"
    "  scope_old BLOB, scope_new BLOB, time_ms INTEGER NOT NULL, prev_seq INTEGER);"
    /* Changes that took a row out of a scope value (moves and deletes), for scope removals. */
    "CREATE TABLE IF NOT EXISTS _outpost_scope_exits("
    "  table_id INTEGER NOT NULL, pk BLOB NOT NULL, seq INTEGER NOT NULL, scope_old BLOB,"
    "  PRIMARY KEY(table_id, pk, seq)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS _outpost_conflicts("
    "  id INTEGER PRIMARY KEY, table_id INTEGER NOT NULL, pk BLOB NOT NULL,"
    "  col INTEGER NOT NULL, kind INTEGER NOT NULL, losing_value BLOB, winning_value BLOB,"
    "  loser_device TEXT, loser_worker TEXT, loser_hlc INTEGER, winner_device TEXT,"
    "  winner_hlc INTEGER, time_ms INTEGER NOT NULL, decided_by TEXT NOT NULL,"
    "  reversible INTEGER NOT NULL, push_device TEXT NOT NULL, push_seq INTEGER NOT NULL,"
    "  server_seq INTEGER NOT NULL, against_push INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS _outpost_conflicts_push"
    "  ON _outpost_conflicts(push_device, push_seq);"
    /* Exactly once: (device, seq) applied, written in the same transaction as the apply. */
    "CREATE TABLE IF NOT EXISTS _outpost_applied("
    "  device_no INTEGER NOT NULL, seq INTEGER NOT NULL, server_seq INTEGER NOT NULL,"
    "  hlc INTEGER NOT NULL, hlc_used INTEGER NOT NULL, clamped INTEGER NOT NULL,"
    "  n_rows INTEGER NOT NULL, time_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(device_no, seq)) WITHOUT ROWID;"
    /* ... and (device, seq) refused, with the entry's clock (a different one under the same
     * seq is another transaction) and the REJECT's rows (an encoded REJECT without tables), so
     * that a resent entry gets the same answer. */
    /* A conflict-log row that records a refused change: the team whose supervisors see it
     * (the row's team when it is one of the worker's, else the worker's own team, and then
     * the row carries no values), the refusal's code and message. */
    "CREATE TABLE IF NOT EXISTS _outpost_conflict_refusals("
    "  conflict_id INTEGER PRIMARY KEY, team TEXT NOT NULL, code INTEGER NOT NULL,"
    "  message TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS _outpost_refused("
    "  device_no INTEGER NOT NULL, seq INTEGER NOT NULL, hlc INTEGER NOT NULL,"
    "  reject BLOB NOT NULL, time_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(device_no, seq)) WITHOUT ROWID;";

const char *store_insert_or_fail(const store *st)
{
    return db_engine_of(st->conn) == DB_SQLITE ? "OR FAIL " : "";
}

int store_fail(store *st, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->errmsg, sizeof st->errmsg, fmt, ap);
    va_end(ap);
    return rc;
}

int store_fail_db(store *st, int rc, const char *what)
{
    if (rc >= 0)
        rc = STORE_EIO;
    if (rc == STORE_EFULL)
        return store_fail(st, rc,
                          "%s: the disk or the store's size limit is full; "
                          "nothing was written",
                          what);
    if (rc == STORE_EBUSY)
        return store_fail(st, rc, "%s: the store is locked by another writer; retry", what);
    return store_fail(st, rc, "%s: %s", what, db_errmsg(st->conn));
}

int store_rc_from_sqlite(int sqlite_rc)
{
    switch (sqlite_rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return STORE_OK;
    case SQLITE_NOMEM:
        return STORE_ENOMEM;
    case SQLITE_FULL:
        return STORE_EFULL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_EBUSY;
    default:
        return STORE_EIO;
    }
}

int store_fail_sqlite(store *st, int sqlite_rc, const char *what)
{
    int rc = store_rc_from_sqlite(sqlite_rc);
    if (rc == STORE_OK)
        rc = STORE_EIO;
    if (rc == STORE_EFULL)
        return store_fail(st, rc,
                          "%s: the disk or the store's size limit is full; "
                          "nothing was written",
                          what);
    if (rc == STORE_EBUSY)
        return store_fail(st, rc, "%s: the store is locked by another writer; retry", what);
    return store_fail(st, rc, "%s: %s", what, sqlite3_errstr(sqlite_rc));
}

int store_exec(store *st, const char *sql, const char *what)
{
    int rc = db_exec(st->conn, sql);
    return rc == STORE_OK ? STORE_OK : store_fail_db(st, rc, what);
}

int store_begin(store *st, bool write)
{
    st->rows_top_table = 0; /* another connection may have written since */
    if (write && st->sync_lowered) { /* store_device_seen could not raise it again */
        if (db_exec(st->conn, "PRAGMA synchronous=FULL") != STORE_OK)
            return store_fail_db(st, STORE_EIO, "restore synchronous=FULL");
        st->sync_lowered = false;
    }
    int rc = db_begin(st->conn, write);
    return rc == STORE_OK ? STORE_OK : store_fail_db(st, rc, "begin transaction");
}

int store_commit(store *st)
{
    int out = store_new_rows_flush(st);
    if (out == STORE_OK)
        out = store_changes_flush(st);
    if (out != STORE_OK) {
        store_rollback(st);
        return out;
    }
    st->rows_top_table = 0;
    int rc = db_commit(st->conn); /* rolls back when it fails */
    return rc == STORE_OK ? STORE_OK : store_fail_db(st, rc, "commit");
}

void store_rollback(store *st)
{
    store_new_rows_drop(st);
    store_changes_drop(st);
    db_rollback(st->conn);
}

/* The WAL hook of a handle given store_wal_defer, called after each of its commits with the
 * WAL's size in pages. It replaces SQLite's autocheckpoint (which is this same hook) and only
 * takes note: the checkpoint waits for store_wal_tend. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    store *st = arg;
    st->wal_pages = pages > 0 ? (uint32_t)pages : 0;
    st->wal_backlog = st->wal_pages; /* at most: some may be copied already */
    return SQLITE_OK;
}

uint32_t store_page_bytes(store *st)
{
    if (st->db == NULL)
        return 0;
    int64_t page_size = 4096;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(st->db, "PRAGMA page_size", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        page_size = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return (uint32_t)page_size;
}

void store_wal_defer(store *st, uint32_t idle_pages, uint32_t limit_pages)
{
    if (st->db == NULL || limit_pages == 0)
        return;
    st->wal_idle_pages = idle_pages > 0 ? idle_pages : 1;
    st->wal_limit_pages = limit_pages;
    sqlite3_wal_hook(st->db, wal_hook, st);
    /* A WAL that a completed checkpoint lets SQLite reuse from its start keeps its file size
     * unless told otherwise: keep at most the limit on disk. */
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA journal_size_limit=%lld",
             (long long)store_page_bytes(st) * (long long)limit_pages);
    sqlite3_exec(st->db, sql, NULL, NULL, NULL);
}

int store_wal_tend(store *st, bool idle)
{
    if (st->db == NULL || st->wal_limit_pages == 0 || st->wal_backlog == 0)
        return STORE_OK;
    bool full = st->wal_pages >= st->wal_limit_pages;
    if (!full && (!idle || st->wal_backlog < st->wal_idle_pages))
        return STORE_OK;
    int in_log = 0, copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(st->db, NULL,
                                       full ? SQLITE_CHECKPOINT_TRUNCATE
                                            : SQLITE_CHECKPOINT_PASSIVE,
                                       &in_log, &copied);
    if (rc == SQLITE_OK) {
        st->wal_pages = in_log > 0 ? (uint32_t)in_log : 0;
        st->wal_backlog = copied < in_log ? (uint32_t)(in_log - copied) : 0;
        return STORE_OK;
    }
    /* A PASSIVE checkpoint is busy only when another handle is checkpointing: nothing lost,
     * the pages stay marked for the next call. */
    if ((rc & 0xff) == SQLITE_BUSY && !full)
        return STORE_OK;
    return store_fail_sqlite(st, rc, full ? "WAL checkpoint (truncate)" : "WAL checkpoint");
}

uint32_t store_wal_backlog(const store *st)
{
    return st->wal_limit_pages != 0 ? st->wal_backlog : 0;
}

int store_meta_get(store *st, const char *key, int64_t *out_value)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn, "SELECT value FROM _outpost_meta WHERE key = ?1", &stmt);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 1, key);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    int out = 0;
    if (rc == DB_ROW)
        *out_value = db_column_int64(stmt, 0);
    else if (rc == DB_DONE)
        out = store_fail(st, STORE_EIO, "store metadata key %s is missing", key);
    else
        out = store_fail_db(st, rc, "read store metadata");
    db_finalize(stmt);
    return out;
}

int store_meta_set(store *st, const char *key, int64_t value)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn, "UPDATE _outpost_meta SET value = ?2 WHERE key = ?1", &stmt);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 1, key);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 2, value);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    db_finalize(stmt);
    if (rc != DB_DONE)
        return store_fail_db(st, rc, "write store metadata");
    return 0;
}

int store_buf_append(uint8_t **buf, size_t *len, size_t *cap, const void *p, size_t n,
                     size_t *out_at)
{
    if (*len + n > *cap) {
        size_t ncap = *cap ? *cap : 4096;
        while (ncap < *len + n)
            ncap *= 2;
        uint8_t *grown = realloc(*buf, ncap);
        if (grown == NULL)
            return STORE_ENOMEM;
        *buf = grown;
        *cap = ncap;
    }
    if (out_at != NULL)
        *out_at = *len;
    if (n > 0)
        memcpy(*buf + *len, p, n);
    *len += n;
    return 0;
}

uint64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int store_quote_ident(char *out, size_t out_size, const char *name)
{
    size_t at = 0;
    if (out_size < 3)
        return STORE_EINVAL;
    out[at++] = '"';
    for (const char *p = name; *p; p++) {
        size_t need = *p == '"' ? 2 : 1;
        if (at + need + 2 > out_size)
            return STORE_EINVAL;
        out[at++] = *p;
        if (*p == '"')
            out[at++] = '"';
    }
    out[at++] = '"';
    out[at] = 0;
    return 0;
}

static int open_fail(char *err, size_t err_size, sqlite3 *db, const char *path, const char *what)
{
    if (err != NULL && err_size > 0)
        snprintf(err, err_size, "%s %s: %s", what, path, db ? sqlite3_errmsg(db) : "out of memory");
    return STORE_EIO;
}

/*
 * The store holds every team's records and the supervisors' password hashes: it and its -wal
 * and -shm are readable by their owner only. SQLite creates a new database with the caller's
 * umask and gives -wal and -shm the database's own mode, so taking group and other bits off the
 * database (and any -wal/-shm a wider mode left behind) right after opening it covers a new
 * store, a store made by an older release, and every file SQLite makes beside it.
 */
static void keep_owner_only(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    size_t len = strlen(path);
    char *name = malloc(len + 5);

    if (name == NULL)
        return;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        struct stat sb;
        memcpy(name, path, len);
        strcpy(name + len, suffixes[i]);
        if (stat(name, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 077) != 0)
            chmod(name, sb.st_mode & 0700);
    }
    free(name);
}

/*
 * A store made before the change log's prev_seq (it had an index on the log by row instead, or
 * neither) gets the column, filled from the log itself, and loses the index: one pass over the
 * log in one transaction, once. A store that has both was opened by an older build since (which
 * made the index again and wrote entries without prev_seq): the pass runs again. An interrupted
 * upgrade rolls back and runs again at the next open.
 */
static int changes_chain_ensure(sqlite3 *db)
{
    sqlite3_stmt *probe = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT count(*) FROM pragma_table_info('_outpost_changes')"
                                " WHERE name = 'prev_seq' UNION ALL SELECT count(*) FROM"
                                " sqlite_master WHERE name = '_outpost_changes_row'",
                                -1, &probe, NULL);
    int has[2] = {0, 0};
    for (int i = 0; rc == SQLITE_OK && i < 2; i++) {
        rc = sqlite3_step(probe);
        if (rc == SQLITE_ROW) {
            has[i] = sqlite3_column_int(probe, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(probe);
    if (rc != SQLITE_OK || (has[0] && !has[1]))
        return rc;
    rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK && !has[0])
        rc = sqlite3_exec(db, "ALTER TABLE _outpost_changes ADD COLUMN prev_seq INTEGER", NULL,
                          NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(
            db,
            "CREATE INDEX IF NOT EXISTS _outpost_changes_row"
            "  ON _outpost_changes(table_id, pk, seq);"
            "UPDATE _outpost_changes AS c SET prev_seq = (SELECT max(p.seq) FROM _outpost_changes p"
            "  WHERE p.table_id = c.table_id AND p.pk = c.pk AND p.seq < c.seq);"
            "DROP INDEX _outpost_changes_row;"
            "COMMIT;",
            NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int store_open(const char *path, bool create, store **out_store, char *err, size_t err_size)
{
    *out_store = NULL;
    if (err != NULL && err_size > 0)
        err[0] = 0;
    if (path == NULL || path[0] == 0) {
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "no store path given");
        return STORE_EINVAL;
    }
    store *st = calloc(1, sizeof *st);
    if (st == NULL) {
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "out of memory");
        return STORE_ENOMEM;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &st->db, flags, NULL);
    int out = 0;
    if (rc != SQLITE_OK) {
        out = (rc & 0xff) == SQLITE_CANTOPEN ? STORE_ENOTFOUND : store_rc_from_sqlite(rc);
        open_fail(err, err_size, st->db, path,
                  create ? "cannot create store" : "cannot open store");
        goto fail;
    }
    keep_owner_only(path);
    if (db_wrap_sqlite(st->db, &st->conn) != STORE_OK) {
        out = STORE_ENOMEM;
        open_fail(err, err_size, NULL, path, "cannot open store");
        goto fail;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
    /* Connection settings first: the file itself is not touched until it is known to be an
     * Outpost store (or new and empty). */
    rc = sqlite3_exec(st->db,
                      "PRAGMA foreign_keys=ON; PRAGMA trusted_schema=OFF;"
                      "PRAGMA cache_size=-16384;",
                      NULL, NULL, NULL);
    int64_t format = 0;
    bool ours = false, empty = false;
    if (rc == SQLITE_OK) {
        sqlite3_stmt *stmt = NULL;
        rc = sqlite3_prepare_v2(st->db,
                                "SELECT count(*), count(*) FILTER (WHERE name = '_outpost_meta')"
                                " FROM sqlite_master",
                                -1, &stmt, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            empty = sqlite3_column_int(stmt, 0) == 0;
            ours = sqlite3_column_int(stmt, 1) == 1;
            rc = SQLITE_OK;
        }
        sqlite3_finalize(stmt);
    }
    if (rc != SQLITE_OK) {
        out = store_rc_from_sqlite(rc);
        open_fail(err, err_size, st->db, path, "cannot read store");
        goto fail;
    }
    if (!ours && !(create && empty)) {
        out = STORE_EINVAL;
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "%s is not an Outpost store%s", path,
                     create ? " (and not empty: refusing to add to it)"
                            : " (create one with outpost-admin init)");
        goto fail;
    }
    /* A new store's pages are 16 KiB, not SQLite's 4: a push dirties pages of five b-trees
     * (two of them keyed at random: the table's key index and _outpost_rows), and each dirty
     * page is a WAL frame (two writes) and later a checkpoint copy. Fewer, larger frames made
     * bench_merge's merge about 16% faster (508k -> 592k rows/s) and its pull no slower. A
     * store keeps the size it was made with (docs/operations.md). WAL: readers (pulls) never
     * block the writer. synchronous=FULL: a commit that returned is on disk, which is what an
     * ACK promises. */
    rc = ours ? SQLITE_OK : sqlite3_exec(st->db, "PRAGMA page_size=16384;", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(st->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL,
                          NULL, NULL);
    if (rc == SQLITE_OK && !ours)
        rc = sqlite3_exec(st->db, store_base_ddl, NULL, NULL, NULL);
    if (rc == SQLITE_OK && !ours)
        rc = sqlite3_exec(st->db, store_sync_ddl, NULL, NULL, NULL);
    if (rc == SQLITE_OK && ours)
        rc = changes_chain_ensure(st->db);
    if (rc != SQLITE_OK) {
        out = store_rc_from_sqlite(rc);
        open_fail(err, err_size, st->db, path, "cannot prepare store");
        goto fail;
    }
    out = store_meta_get(st, "format", &format);
    if (out == 0 && format != 1)
        out = store_fail(st, STORE_EINVAL, "format %lld, this build reads format 1",
                         (long long)format);
    if (out != 0) {
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "%s: unsupported store format (%s)", path, st->errmsg);
        goto fail;
    }
    out = store_identity_ensure(st, &st->identity_created);
    if (out != 0) {
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "%s: %s", path, st->errmsg);
        goto fail;
    }
    /* Device lookups read who is disabled on every request. */
    if (store_lifecycle_ensure(st) != STORE_OK) {
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "%s: %s", path, st->errmsg);
        out = STORE_EIO;
        goto fail;
    }
    *out_store = st;
    return 0;

fail:
    db_close(st->conn);
    sqlite3_close(st->db);
    free(st);
    return out;
}

void store_close(store *st)
{
    if (st == NULL)
        return;
    store_tables_free(st);
    db_finalize(st->rows_get);
    db_finalize(st->rows_put);
    db_finalize(st->rows_add);
    db_finalize(st->change_put);
    db_finalize(st->change_put_batch);
    free(st->changes);
    free(st->change_bytes);
    db_finalize(st->rows_add_batch);
    db_finalize(st->rows_top);
    free(st->new_rows);
    free(st->new_row_bytes);
    free(st->rows_top_key);
    db_close(st->conn);
    sqlite3_close(st->db);
    explicit_bzero(st->audit_key, sizeof st->audit_key);
    free(st);
}

const char *store_errmsg(const store *st)
{
    if (st == NULL)
        return "no store";
    return st->errmsg;
}

sqlite3 *store_sqlite_db(store *st)
{
    return st->db;
}

int store_device_lookup(store *st, const char *device_id, store_device_rec *out_rec)
{
    memset(out_rec, 0, sizeof *out_rec);
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn,
                        "SELECT no, worker_id, revoked <> 0 OR EXISTS(SELECT 1 FROM"
                        " _outpost_disabled WHERE kind = 'worker' AND id = worker_id),"
                        " wipe, acked_seq FROM _outpost_devices WHERE id = ?1",
                        &stmt);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 1, device_id);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    int out = 0;
    if (rc == DB_ROW) {
        out_rec->no = db_column_int64(stmt, 0);
        snprintf(out_rec->worker_id, sizeof out_rec->worker_id, "%s",
                 db_column_text(stmt, 1));
        out_rec->revoked = db_column_int64(stmt, 2) != 0;
        out_rec->wipe = db_column_int64(stmt, 3) != 0;
        out_rec->acked_seq = (uint64_t)db_column_int64(stmt, 4);
    } else if (rc == DB_DONE) {
        out = store_fail(st, STORE_ENOTFOUND, "no such device");
    } else {
        out = store_fail_db(st, rc, "look up device");
    }
    db_finalize(stmt);
    return out;
}

int store_device_names(store *st, int64_t device_no, char out_id[40], char out_worker[64])
{
    out_id[0] = 0;
    out_worker[0] = 0;
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn, "SELECT id, worker_id FROM _outpost_devices WHERE no = ?1",
                        &stmt);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 1, device_no);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    int out = 0;
    if (rc == DB_ROW) {
        snprintf(out_id, 40, "%s", db_column_text(stmt, 0));
        snprintf(out_worker, 64, "%s", db_column_text(stmt, 1));
    } else if (rc != DB_DONE) {
        out = store_fail_db(st, rc, "look up device");
    }
    db_finalize(stmt);
    return out;
}
