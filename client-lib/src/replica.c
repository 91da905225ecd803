/* The replica handle: open, close, the write guard, the capture session, status, wipe. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* "OutP" in PRAGMA application_id marks a file as an Outpost replica. */
#define OUTPOST_APPLICATION_ID 0x4f757450
/* The layout of the library's own tables (_outpost_state.format). 2: the changesets of the
 * outbox and of the acknowledged entries live in _outpost_changesets (replica_upgrade). */
#define OUTPOST_FORMAT 2
#define BUSY_TIMEOUT_MS 5000

static void shared_mark_seen(outpost_replica *r);
static int replica_open_shared(const char *path, outpost_conflict_cb on_conflict,
                               outpost_clock_cb clock, void *user_data, replica_shared *shared,
                               outpost_replica **out_replica, char *err, size_t err_size);

static const char meta_sql[] =
    "CREATE TABLE IF NOT EXISTS _outpost_state("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " format INTEGER NOT NULL,"
    " device_seq INTEGER NOT NULL," /* last sequence given to an outbox entry */
    " hlc INTEGER NOT NULL,"        /* last hybrid logical clock issued */
    " cursor INTEGER NOT NULL,"
    " schema_version INTEGER NOT NULL,"
    " last_sync_ms INTEGER NOT NULL);"
    /* A new replica starts at OUTPOST_FORMAT; an older one keeps its number until upgraded. */
    "INSERT OR IGNORE INTO _outpost_state VALUES(1, 2, 0, 0, 0, 0, 0);"
    /* The cursor at which the last pull completed (a page with more false, no row kept for a
     * pending change): every PULL says it (`seen`), so that the server judges what this device
     * holds from there, not from a later page's cursor (docs/protocol.md, PULL). A replica made
     * before it starts from its cursor. */
    "CREATE TABLE IF NOT EXISTS _outpost_pulled(id INTEGER PRIMARY KEY CHECK (id = 1),"
    " cursor INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO _outpost_pulled SELECT 1, cursor FROM _outpost_state;"
    /* The entries not yet acknowledged. */
    "CREATE TABLE IF NOT EXISTS _outpost_outbox("
    " seq INTEGER PRIMARY KEY,"
    " hlc INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " schema_version INTEGER NOT NULL);"
    /* The changeset of every entry in _outpost_outbox or _outpost_sent, written once when the
     * app's transaction commits. An ACK moves the entry's small record from the outbox to
     * _outpost_sent and leaves its changeset where it is: copying it (~183 KB for 1,000 rows)
     * was most of the sync thread's CPU per pushed entry. */
    "CREATE TABLE IF NOT EXISTS _outpost_changesets("
    " seq INTEGER PRIMARY KEY,"
    " changeset BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS _outpost_tables("
    " name TEXT PRIMARY KEY,"
    " pos INTEGER NOT NULL,"
    " create_sql TEXT NOT NULL,"
    " scope_col TEXT,"
    " policy INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS _outpost_conflicts("
    " id INTEGER PRIMARY KEY,"
    " at_ms INTEGER NOT NULL,"
    " seq INTEGER NOT NULL,"
    " tbl TEXT NOT NULL,"
    " pk TEXT NOT NULL,"
    " col INTEGER,"
    " col_name TEXT,"
    " kind TEXT NOT NULL,"
    " code INTEGER NOT NULL,"
    " reason TEXT NOT NULL,"
    " mine,"
    " winner);"
    /* Which central store this replica syncs with and which life of it (epoch), and the
     * highest entry it acknowledged: a server behind these went back in time (heal.c). */
    "CREATE TABLE IF NOT EXISTS _outpost_server("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " store_id TEXT,"
    " epoch INTEGER NOT NULL,"
    " acked_max INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO _outpost_server VALUES(1, NULL, 0, 0);"
    /* Acknowledged outbox entries, kept (with their changesets) for the retention window so
     * that they can be sent again to a store restored from a backup. */
    "CREATE TABLE IF NOT EXISTS _outpost_sent("
    " seq INTEGER PRIMARY KEY,"
    " hlc INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " schema_version INTEGER NOT NULL,"
    " acked_ms INTEGER NOT NULL);"
    /* Every ACK prunes by acked_ms. Without an index that was a scan of every kept entry (in
     * format 1 acked_ms sat after the changeset, so the scan read each kept changeset's
     * overflow pages): quadratic in the entries of a bulk push. */
    "CREATE INDEX IF NOT EXISTS _outpost_sent_acked ON _outpost_sent(acked_ms);"
    /* Quarantine: changes the server refused, with the worker's values, until resubmitted or
     * discarded; the log keeps who-did-what of both (never the values). */
    "CREATE TABLE IF NOT EXISTS _outpost_rejected("
    " id INTEGER PRIMARY KEY,"
    " at_ms INTEGER NOT NULL,"
    " seq INTEGER NOT NULL,"
    " tbl TEXT NOT NULL,"
    " op TEXT NOT NULL,"
    " pk TEXT NOT NULL,"
    " code INTEGER NOT NULL,"
    " message TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS _outpost_rejected_values("
    " rejected_id INTEGER NOT NULL,"
    " pos INTEGER NOT NULL,"
    " col TEXT NOT NULL,"
    " value,"
    " changed INTEGER NOT NULL DEFAULT 1," /* the refused change wrote this column */
    " PRIMARY KEY(rejected_id, pos)) WITHOUT ROWID;"
    /* The worker's teams as the server last said (ENROLLED, WELCOME); empty: not known. */
    "CREATE TABLE IF NOT EXISTS _outpost_teams(name TEXT PRIMARY KEY);"
    /* The worker this device belongs to, as the server last said (ENROLLED, WELCOME `wkr`). */
    "CREATE TABLE IF NOT EXISTS _outpost_worker(id INTEGER PRIMARY KEY CHECK (id = 1),"
    " worker TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS _outpost_rejected_log("
    " id INTEGER PRIMARY KEY,"
    " at_ms INTEGER NOT NULL,"
    " action TEXT NOT NULL,"
    " rejected_id INTEGER NOT NULL,"
    " seq INTEGER NOT NULL,"
    " tbl TEXT NOT NULL,"
    " op TEXT NOT NULL,"
    " pk TEXT NOT NULL,"
    " code INTEGER NOT NULL,"
    " message TEXT NOT NULL);";

/* ---- small SQL helpers -------------------------------------------------------------------- */

int replica_exec(outpost_replica *r, const char *sql)
{
    enum replica_mode saved = r->mode;
    int rc;

    r->mode = MODE_LIBRARY;
    rc = sqlite3_exec(r->db, sql, NULL, NULL, NULL);
    r->mode = saved;
    if (rc != SQLITE_OK)
        return replica_fail_sqlite(r, rc, "replica");
    return OUTPOST_OK;
}

/* Runs sql, a query of one row, and reads its first column. No row at all is corruption. */
int replica_query_int64(outpost_replica *r, const char *sql, const char *what, int64_t *out_value)
{
    sqlite3_stmt *stmt = NULL;
    int rc = replica_prepare(r, sql, &stmt);

    if (rc != OUTPOST_OK)
        return rc;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *out_value = sqlite3_column_int64(stmt, 0);
        rc = OUTPOST_OK;
    } else {
        rc = replica_fail_sqlite(r, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, what);
    }
    sqlite3_finalize(stmt);
    return rc;
}

int replica_schema_cookie(outpost_replica *r, int *out_cookie)
{
    int64_t cookie = 0;
    int rc = replica_query_int64(r, "PRAGMA schema_version", "reading the schema version", &cookie);

    if (rc == OUTPOST_OK)
        *out_cookie = (int)cookie;
    return rc;
}

/* Another connection to the file (the sync engine's) may have installed a schema upgrade: the
 * table list and the capture session must follow it before anything is written. Runs inside a
 * write transaction, so the schema cannot change again until it ends. */
static int replica_follow_schema(outpost_replica *r)
{
    int cookie = 0;
    int rc = replica_schema_cookie(r, &cookie);

    if (rc != OUTPOST_OK || cookie == r->schema_cookie)
        return rc;
    rc = replica_load_tables(r);
    if (rc == OUTPOST_OK)
        rc = replica_session_reset(r);
    if (rc == OUTPOST_OK) {
        r->schema_cookie = cookie;
        shared_mark_seen(r);
    }
    return rc;
}

/* Opens a write transaction with the replica's view of the schema current. */
int replica_begin(outpost_replica *r)
{
    int rc = replica_exec(r, "BEGIN IMMEDIATE");

    if (rc == OUTPOST_OK && r->schema_loaded) {
        rc = replica_follow_schema(r);
        if (rc != OUTPOST_OK)
            replica_rollback(r);
    }
    return rc;
}

int replica_commit(outpost_replica *r)
{
    int rc;

    r->committing = true;
    rc = replica_exec(r, "COMMIT");
    r->committing = false;
    if (rc != OUTPOST_OK && !sqlite3_get_autocommit(r->db))
        replica_rollback(r);
    return rc;
}

/* Rolls back whatever transaction is open, keeping the message of the failure that led here. */
void replica_rollback(outpost_replica *r)
{
    enum replica_mode saved = r->mode;

    if (!sqlite3_get_autocommit(r->db)) {
        r->mode = MODE_LIBRARY;
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
        r->mode = saved;
    }
    r->in_tx = false;
    r->session_stale = true;
}

/* Runs apply(r, ctx) in a transaction of its own with capture off: what it writes is the
 * server's (pulled rows, a rejected write undone), never this device's writes. On failure the
 * transaction is rolled back, and the pending-row set, a temp table whose rebuild the rollback
 * may have undone, is marked stale. */
int replica_apply_uncaptured(outpost_replica *r, int (*apply)(outpost_replica *r, void *ctx),
                             void *ctx)
{
    int rc = replica_begin(r);

    if (rc != OUTPOST_OK)
        return rc;
    if (r->session)
        sqlite3session_enable(r->session, 0);
    rc = apply(r, ctx);
    if (rc == OUTPOST_OK)
        rc = replica_commit(r);
    else
        replica_rollback(r);
    if (r->session)
        sqlite3session_enable(r->session, 1);
    if (rc != OUTPOST_OK)
        r->pending_valid = false;
    return rc;
}

int64_t replica_now_ms(const outpost_replica *r)
{
    struct timespec ts;

    if (r->clock)
        return r->clock(r->user_data);
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Prepares a library statement (never cached: library statements run once per call). */
int replica_prepare(outpost_replica *r, const char *sql, sqlite3_stmt **out_stmt)
{
    enum replica_mode saved = r->mode;
    int rc;

    r->mode = MODE_LIBRARY;
    rc = sqlite3_prepare_v2(r->db, sql, -1, out_stmt, NULL);
    r->mode = saved;
    if (rc != SQLITE_OK) {
        *out_stmt = NULL;
        return replica_fail_sqlite(r, rc, "prepare");
    }
    return OUTPOST_OK;
}

void replica_stmt_cache_clear(outpost_replica *r)
{
    for (uint32_t i = 0; i < OUTPOST_STMT_CACHE; i++) {
        sqlite3_finalize(r->stmts[i].stmt);
        sqlite3_free(r->stmts[i].sql);
        r->stmts[i].stmt = NULL;
        r->stmts[i].sql = NULL;
    }
    sqlite3_finalize(r->st_next_seq);
    sqlite3_finalize(r->st_outbox_insert);
    sqlite3_finalize(r->st_changeset_insert);
    sqlite3_finalize(r->st_pending);
    r->st_pending = NULL;
    r->st_next_seq = NULL;
    r->st_outbox_insert = NULL;
    r->st_changeset_insert = NULL;
}

/* ---- synced tables ------------------------------------------------------------------------ */

void synced_table_clear(synced_table *t)
{
    for (uint32_t i = 0; i < t->n_cols; i++)
        sqlite3_free(t->cols[i]);
    sqlite3_free(t->cols);
    sqlite3_free(t->pk);
    sqlite3_free(t->name);
    memset(t, 0, sizeof *t);
}

void replica_free_tables(synced_table *tables, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        synced_table_clear(&tables[i]);
    sqlite3_free(tables);
}

/* Reads one table's columns and primary key as the database has them. t->pk first holds each
 * column's 1-based position in the key (0: not in it), then is turned into the key's columns. */
int synced_table_describe(outpost_replica *r, sqlite3 *db, const char *name, synced_table *t)
{
    sqlite3_stmt *stmt = NULL;
    uint32_t *pk = NULL;
    uint32_t cap = 0;
    int rc;

    memset(t, 0, sizeof *t);
    t->name = sqlite3_mprintf("%s", name);
    if (t->name == NULL)
        goto nomem;
    r->mode = MODE_LIBRARY;
    rc = sqlite3_prepare_v2(db, "SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid", -1,
                            &stmt, NULL);
    r->mode = MODE_APP;
    if (rc != SQLITE_OK) {
        rc = replica_fail(r, sqlite_to_outpost(rc), "describing table %s: %s", name,
                          sqlite3_errmsg(db));
        goto fail;
    }
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (t->n_cols == cap) {
            uint32_t ncap = cap ? cap * 2 : 16;
            char **cols = sqlite3_realloc64(t->cols, ncap * sizeof *cols);
            uint32_t *pos;

            if (cols == NULL)
                goto nomem;
            t->cols = cols;
            pos = sqlite3_realloc64(t->pk, ncap * sizeof *pos);
            if (pos == NULL)
                goto nomem;
            t->pk = pos;
            cap = ncap;
        }
        t->cols[t->n_cols] = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(stmt, 0));
        if (t->cols[t->n_cols] == NULL)
            goto nomem;
        t->pk[t->n_cols] = (uint32_t)sqlite3_column_int(stmt, 1);
        if (t->pk[t->n_cols] > 0)
            t->n_pk++;
        t->n_cols++;
    }
    if (rc != SQLITE_DONE) {
        rc = replica_fail(r, sqlite_to_outpost(rc), "describing table %s: %s", name,
                          sqlite3_errmsg(db));
        goto fail;
    }
    sqlite3_finalize(stmt);
    stmt = NULL;
    if (t->n_cols == 0) {
        rc = replica_fail(r, OUTPOST_ESCHEMA, "synced table %s is missing from the database", name);
        goto fail;
    }
    pk = sqlite3_malloc64((t->n_pk ? t->n_pk : 1) * sizeof *pk);
    if (pk == NULL)
        goto nomem;
    for (uint32_t i = 0; i < t->n_cols; i++) {
        if (t->pk[i] > 0 && t->pk[i] <= t->n_pk)
            pk[t->pk[i] - 1] = i;
    }
    sqlite3_free(t->pk);
    t->pk = pk;
    return OUTPOST_OK;
nomem:
    rc = replica_fail(r, OUTPOST_ENOMEM, "out of memory describing table %s", name);
fail:
    sqlite3_finalize(stmt);
    synced_table_clear(t);
    return rc;
}

/* Reads the synced tables from _outpost_tables and the database's own description of each.
 * On success the caller owns *out_tables (see replica_set_tables()). */
int replica_read_tables(outpost_replica *r, synced_table **out_tables, uint32_t *out_n)
{
    sqlite3_stmt *stmt = NULL;
    synced_table *tables = NULL;
    uint32_t n = 0, cap = 0;
    int rc;

    rc = replica_prepare(r, "SELECT name FROM _outpost_tables ORDER BY pos", &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == cap) {
            uint32_t ncap = cap ? cap * 2 : 8;
            synced_table *grown = sqlite3_realloc64(tables, ncap * sizeof *grown);

            if (grown == NULL) {
                rc = replica_fail(r, OUTPOST_ENOMEM, "out of memory loading the schema");
                goto fail;
            }
            tables = grown;
            cap = ncap;
        }
        rc = synced_table_describe(r, r->db, (const char *)sqlite3_column_text(stmt, 0), &tables[n]);
        if (rc != OUTPOST_OK)
            goto fail;
        n++;
    }
    if (rc != SQLITE_DONE) {
        rc = replica_fail_sqlite(r, rc, "loading the schema");
        goto fail;
    }
    sqlite3_finalize(stmt);
    *out_tables = tables;
    *out_n = n;
    return OUTPOST_OK;
fail:
    sqlite3_finalize(stmt);
    replica_free_tables(tables, n);
    return rc;
}

/* Takes ownership of tables; allocates nothing, so it cannot fail after a commit. */
void replica_set_tables(outpost_replica *r, synced_table *tables, uint32_t n)
{
    replica_free_tables(r->tables, r->n_tables);
    r->tables = tables;
    r->n_tables = n;
}

int replica_load_tables(outpost_replica *r)
{
    synced_table *tables = NULL;
    uint32_t n = 0;
    int rc = replica_read_tables(r, &tables, &n);

    if (rc == OUTPOST_OK)
        replica_set_tables(r, tables, n);
    return rc;
}

const synced_table *replica_table(const outpost_replica *r, const char *name)
{
    for (uint32_t i = 0; i < r->n_tables; i++) {
        if (strcmp(r->tables[i].name, name) == 0)
            return &r->tables[i];
    }
    return NULL;
}

static bool is_reserved_name(const char *name)
{
    return sqlite3_strnicmp(name, OUTPOST_RESERVED_PREFIX, sizeof OUTPOST_RESERVED_PREFIX - 1) == 0;
}

/* ---- handles on one file ------------------------------------------------------------------ */

static replica_shared *shared_new(void)
{
    replica_shared *sh = sqlite3_malloc64(sizeof *sh);

    if (sh == NULL)
        return NULL;
    memset(sh, 0, sizeof *sh);
    if (pthread_mutex_init(&sh->lock, NULL) != 0) {
        sqlite3_free(sh);
        return NULL;
    }
    sh->refs = 1;
    return sh;
}

static void shared_release(replica_shared *sh)
{
    unsigned refs;

    if (sh == NULL)
        return;
    pthread_mutex_lock(&sh->lock);
    refs = --sh->refs;
    pthread_mutex_unlock(&sh->lock);
    if (refs > 0)
        return;
    pthread_mutex_destroy(&sh->lock);
    cryptvfs_close(sh->vfs);
    sqlite3_free(sh->synced_names);
    sqlite3_free(sh);
}

static bool names_have(const char *names, const char *name)
{
    for (const char *p = names; p && *p; p += strlen(p) + 1) {
        if (sqlite3_stricmp(p, name) == 0)
            return true;
    }
    return false;
}

/* Whether a sibling installed a schema, not yet loaded by this handle, that syncs table name.
 * Until this handle's next transaction loads it, the guard still refuses writes to it. */
static bool synced_by_sibling(outpost_replica *r, const char *name)
{
    bool found = false;

    pthread_mutex_lock(&r->shared->lock);
    if (r->shared->schema_gen != r->shared_gen_seen)
        found = names_have(r->shared->synced_names, name);
    pthread_mutex_unlock(&r->shared->lock);
    return found;
}

static void shared_mark_seen(outpost_replica *r)
{
    pthread_mutex_lock(&r->shared->lock);
    r->shared_gen_seen = r->shared->schema_gen;
    pthread_mutex_unlock(&r->shared->lock);
}

/* The names of the synced tables in the form replica_shared keeps them; NULL when out of
 * memory. */
char *replica_names_blob(const synced_table *tables, uint32_t n)
{
    size_t len = 1;
    char *blob, *p;

    for (uint32_t i = 0; i < n; i++)
        len += strlen(tables[i].name) + 1;
    blob = sqlite3_malloc64(len);
    if (blob == NULL)
        return NULL;
    p = blob;
    for (uint32_t i = 0; i < n; i++) {
        size_t k = strlen(tables[i].name) + 1;

        memcpy(p, tables[i].name, k);
        p += k;
    }
    *p = '\0';
    return blob;
}

/* Tells the siblings a new schema is committed (takes names, from replica_names_blob()). */
void replica_publish_schema(outpost_replica *r, char *names)
{
    pthread_mutex_lock(&r->shared->lock);
    sqlite3_free(r->shared->synced_names);
    r->shared->synced_names = names;
    r->shared->schema_gen++;
    r->shared_gen_seen = r->shared->schema_gen;
    pthread_mutex_unlock(&r->shared->lock);
}

/* Opens a second handle on replica's file for another thread (the sync engine's), on the same
 * encrypting VFS instance (so the same keys, never asked for or derived again) and sharing the
 * write guard's knowledge of schema changes with it. Close it with outpost_replica_close(),
 * before or after replica: the VFS instance and its keys stay until the last handle on the
 * file is closed, after that handle's connection. */
int replica_open_sibling(outpost_replica *replica, outpost_replica **out_sibling, char *err,
                         size_t err_size)
{
    int rc;

    pthread_mutex_lock(&replica->shared->lock);
    replica->shared->refs++;
    pthread_mutex_unlock(&replica->shared->lock);
    rc = replica_open_shared(replica->path, replica->on_conflict, replica->clock,
                             replica->user_data, replica->shared, out_sibling, err, err_size);
    if (rc == OUTPOST_OK) {
        shared_mark_seen(*out_sibling);
        (*out_sibling)->on_rejected = replica->on_rejected;
    }
    return rc;
}

/* listener runs after every commit on replica that made an outbox entry, on the committing
 * thread, under the shared lock: it must be quick and must not use any handle. Setting NULL
 * returns only when no call is in progress. */
void replica_set_commit_listener(outpost_replica *replica, void (*listener)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&replica->shared->lock);
    replica->shared->commit_listener = listener;
    replica->shared->commit_ctx = ctx;
    pthread_mutex_unlock(&replica->shared->lock);
}

void replica_notify_commit(outpost_replica *r)
{
    pthread_mutex_lock(&r->shared->lock);
    if (r->shared->commit_listener)
        r->shared->commit_listener(r->shared->commit_ctx);
    pthread_mutex_unlock(&r->shared->lock);
}

/* The replica's files were deleted (remote wipe) by another thread: from now on every call on
 * this handle fails with OUTPOST_EWIPED. */
void replica_mark_wiped(outpost_replica *replica)
{
    atomic_store(&replica->wiped, true);
}

int replica_check_usable(outpost_replica *r)
{
    if (atomic_load(&r->wiped))
        return replica_fail(r, OUTPOST_EWIPED, "this replica was wiped; close the handle");
    return OUTPOST_OK;
}

static bool is_synced_name(outpost_replica *r, const char *name)
{
    for (uint32_t i = 0; i < r->n_tables; i++) {
        if (sqlite3_stricmp(r->tables[i].name, name) == 0)
            return true;
    }
    return synced_by_sibling(r, name);
}

/* Pragmas whose setting would break durability or the file's identity. */
static bool pragma_guarded(const char *name)
{
    static const char *const guarded[] = {"journal_mode", "synchronous", "writable_schema",
                                          "application_id", "schema_version", "locking_mode"};

    for (size_t i = 0; i < sizeof guarded / sizeof *guarded; i++) {
        if (sqlite3_stricmp(name, guarded[i]) == 0)
            return true;
    }
    return false;
}

/* ---- capture session ---------------------------------------------------------------------- */

/* A session keeps entries for changes that were rolled back, and cannot be emptied: it is
 * recreated after every commit and rollback so that "non-empty" means "changed in this
 * transaction". */
int replica_session_reset(outpost_replica *r)
{
    sqlite3_session *session = NULL;
    int rc;

    if (r->session) {
        sqlite3session_delete(r->session);
        r->session = NULL;
    }
    r->session_stale = false;
    if (r->n_tables == 0)
        return OUTPOST_OK;
    rc = sqlite3session_create(r->db, "main", &session);
    if (rc != SQLITE_OK)
        goto fail;
    /* The library never asks for the changeset's size up front; keeping it costs every write. */
    int size_off = 0;
    sqlite3session_object_config(session, SQLITE_SESSION_OBJCONFIG_SIZE, &size_off);
    for (uint32_t i = 0; i < r->n_tables; i++) {
        rc = sqlite3session_attach(session, r->tables[i].name);
        if (rc != SQLITE_OK)
            goto fail;
    }
    r->session = session;
    return OUTPOST_OK;
fail:
    if (session)
        sqlite3session_delete(session);
    r->session_stale = true;
    return replica_fail(r, sqlite_to_outpost(rc), "cannot start change capture: %s",
                        sqlite3_errstr(rc));
}

/* ---- the write guard ---------------------------------------------------------------------- */

/* Refuses, at prepare time, every statement that would change a synced table or a library
 * table without the library capturing it. Statements SQLite re-prepares later (after a schema
 * change) are checked again under the mode in force then. */
static int authorize(void *ctx, int action, const char *a1, const char *a2, const char *db_name,
                     const char *trigger)
{
    outpost_replica *r = ctx;
    const char *table = NULL;

    (void)trigger;
    if (r->mode == MODE_LIBRARY)
        return SQLITE_OK;
    switch (action) {
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
        if (db_name && strcmp(db_name, "main") != 0)
            return SQLITE_OK;
        table = a1;
        if (is_reserved_name(table))
            return SQLITE_DENY;
        return (r->mode == MODE_APP && is_synced_name(r, table)) ? SQLITE_DENY : SQLITE_OK;
    case SQLITE_DROP_TABLE:
    case SQLITE_ALTER_TABLE:
        table = action == SQLITE_ALTER_TABLE ? a2 : a1;
        if (action == SQLITE_DROP_TABLE && db_name && strcmp(db_name, "main") != 0)
            return SQLITE_OK;
        return (is_reserved_name(table) || is_synced_name(r, table)) ? SQLITE_DENY : SQLITE_OK;
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_TEMP_TRIGGER:
        /* A trigger on a synced table would also fire when pulled rows are applied, with the
         * library's rights and capture off. */
        return (is_reserved_name(a2) || is_synced_name(r, a2)) ? SQLITE_DENY : SQLITE_OK;
    case SQLITE_PRAGMA:
        /* Reading any pragma is fine; changing how commits reach the disk is not. */
        return (a2 != NULL && pragma_guarded(a1)) ? SQLITE_DENY : SQLITE_OK;
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
        /* The library owns the transaction while one of its own is open or it runs app SQL. */
        return (r->mode == MODE_APP_EXEC || r->in_tx) ? SQLITE_DENY : SQLITE_OK;
    default: return SQLITE_OK;
    }
}

void replica_guard_install(outpost_replica *r)
{
    sqlite3_set_authorizer(r->db, authorize, r);
}

/* Second line behind the authorizer: a commit the library did not start, holding a captured
 * change, becomes a rollback (the app sees SQLITE_CONSTRAINT_COMMITHOOK). */
static int on_commit(void *ctx)
{
    outpost_replica *r = ctx;

    if (r->committing)
        return 0;
    if (r->in_tx)
        return 1;
    return (r->session && !sqlite3session_isempty(r->session)) ? 1 : 0;
}

static void on_rollback(void *ctx)
{
    outpost_replica *r = ctx;

    r->session_stale = true;
}

/* ---- open and close ----------------------------------------------------------------------- */

static void err_copy(char *err, size_t err_size, const char *msg)
{
    if (err && err_size)
        snprintf(err, err_size, "%s", msg);
}

/* Brings a replica made by an earlier liboutpost to OUTPOST_FORMAT, inside replica_setup()'s
 * transaction (all or nothing), after meta_sql made the tables it lacked.
 *   1 -> 2: the outbox's and the acknowledged entries' changesets move into
 *           _outpost_changesets; both tables keep their rows, seqs and clocks. A replica of
 *           format 1 made before _outpost_rejected_values had `changed` (its CREATE IF NOT
 *           EXISTS never added it) gains it: 1, every value of a refused change was written. */
static int replica_upgrade(outpost_replica *r)
{
    static const char to_2[] =
        "INSERT INTO _outpost_changesets(seq, changeset) SELECT seq, changeset FROM _outpost_sent;"
        /* an entry is in one of the two (a rewind moves it): the outbox's copy wins anyway */
        "INSERT OR REPLACE INTO _outpost_changesets(seq, changeset)"
        " SELECT seq, changeset FROM _outpost_outbox;"
        "ALTER TABLE _outpost_outbox DROP COLUMN changeset;"
        "ALTER TABLE _outpost_sent DROP COLUMN changeset;"
        "UPDATE _outpost_state SET format = 2 WHERE id = 1;";
    int64_t format = 0;
    int rc = replica_query_int64(r, "SELECT format FROM _outpost_state WHERE id = 1",
                                 "reading the replica's format", &format);

    if (rc != OUTPOST_OK)
        return rc;
    if (format > OUTPOST_FORMAT)
        return replica_fail(r, OUTPOST_ECORRUPT,
                            "%s has format %lld, newer than this liboutpost knows (%d): open it "
                            "with the newer library", r->path, (long long)format, OUTPOST_FORMAT);
    if (format >= 2)
        return OUTPOST_OK;
    rc = replica_exec(r, to_2);
    int64_t has_changed = 1;
    if (rc == OUTPOST_OK)
        rc = replica_query_int64(r, "SELECT count(*) FROM pragma_table_info("
                                    "'_outpost_rejected_values') WHERE name = 'changed'",
                                 "reading the quarantine's layout", &has_changed);
    if (rc == OUTPOST_OK && !has_changed)
        rc = replica_exec(r, "ALTER TABLE _outpost_rejected_values"
                             " ADD COLUMN changed INTEGER NOT NULL DEFAULT 1");
    return rc;
}

/* Refuses files of other applications, sets the pragmas that make a returned commit durable,
 * and creates the library's tables. */
static int replica_setup(outpost_replica *r)
{
    int64_t header_app_id = 0;
    int app_id;
    int rc;

    rc = replica_query_int64(r, "PRAGMA application_id", "reading the database header",
                             &header_app_id);
    if (rc != OUTPOST_OK)
        return rc;
    app_id = (int)header_app_id;
    if (app_id != 0 && app_id != OUTPOST_APPLICATION_ID)
        return replica_fail(r, OUTPOST_ECORRUPT,
                            "%s belongs to another application (application_id %d)", r->path,
                            app_id);
    rc = replica_exec(r, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL");
    if (rc != OUTPOST_OK)
        return rc;
    rc = replica_begin(r);
    if (rc != OUTPOST_OK)
        return rc;
    rc = replica_exec(r, meta_sql);
    if (rc == OUTPOST_OK)
        rc = replica_upgrade(r);
    if (rc == OUTPOST_OK && app_id == 0) {
        char sql[64];

        snprintf(sql, sizeof sql, "PRAGMA application_id=%d", OUTPOST_APPLICATION_ID);
        rc = replica_exec(r, sql);
    }
    if (rc == OUTPOST_OK)
        rc = replica_commit(r);
    if (rc != OUTPOST_OK)
        replica_rollback(r);
    return rc;
}

/* Opens the connection for r on the file's VFS: the encrypting one, which checks the key on
 * page 1 before anything else runs, or SQLite's default for a no_encryption replica. */
static int replica_connect(outpost_replica *r)
{
    /* NOMUTEX: a handle is used by one thread at a time (see outpost.h), so SQLite's per-call
     * connection mutex only costs time on every statement. */
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXRESCODE |
                      SQLITE_OPEN_NOMUTEX;
    cryptvfs *vfs = r->shared->vfs;
    char what[OUTPOST_ERRMSG_SIZE];
    int rc;

    snprintf(what, sizeof what, "cannot open %s", r->path);
    /* A new replica is made owner-only, whatever the umask: SQLite gives its -wal, -shm and
     * journal files the database file's mode. An empty file is a new database to SQLite. */
    int fd = open(r->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    rc = sqlite3_open_v2(r->path, &r->db, flags, vfs ? cryptvfs_name(vfs) : NULL);
    if (rc != SQLITE_OK)
        return replica_fail_sqlite(r, rc, what);
    if (vfs == NULL)
        return OUTPOST_OK;
    rc = cryptvfs_prepare(vfs, r->db);
    if (rc != CRYPTVFS_OK)
        return replica_fail_crypt(r, rc, what);
    return OUTPOST_OK;
}

/* Opens a handle on path whose file-wide state (the VFS and its keys, schema notices) is
 * shared. Takes one reference to shared: on failure it is released with the handle. */
static int replica_open_shared(const char *path, outpost_conflict_cb on_conflict,
                               outpost_clock_cb clock, void *user_data, replica_shared *shared,
                               outpost_replica **out_replica, char *err, size_t err_size)
{
    outpost_replica *r = sqlite3_malloc64(sizeof *r);
    int rc;

    *out_replica = NULL;
    if (r == NULL) {
        shared_release(shared);
        err_copy(err, err_size, "out of memory");
        return OUTPOST_ENOMEM;
    }
    memset(r, 0, sizeof *r);
    r->on_conflict = on_conflict;
    r->clock = clock;
    r->user_data = user_data;
    atomic_init(&r->wiped, false);
    r->shared = shared;
    r->path = sqlite3_mprintf("%s", path);
    if (r->path == NULL) {
        rc = replica_fail(r, OUTPOST_ENOMEM, "out of memory");
        goto fail;
    }
    rc = replica_connect(r);
    if (rc != OUTPOST_OK)
        goto fail;
    sqlite3_busy_timeout(r->db, BUSY_TIMEOUT_MS);
    sqlite3_set_authorizer(r->db, authorize, r);
    sqlite3_commit_hook(r->db, on_commit, r);
    sqlite3_rollback_hook(r->db, on_rollback, r);
    rc = replica_setup(r);
    if (rc != OUTPOST_OK)
        goto fail;
    rc = replica_schema_cookie(r, &r->schema_cookie);
    if (rc == OUTPOST_OK)
        rc = replica_load_tables(r);
    if (rc == OUTPOST_OK)
        rc = replica_session_reset(r);
    if (rc != OUTPOST_OK)
        goto fail;
    r->schema_loaded = true;
    /* Rows with pending outbox changes, rebuilt from the outbox when it changed; temp, so it
     * never reaches the file (the encrypting VFS keeps temporary storage in memory). */
    rc = replica_exec(r, "CREATE TEMP TABLE _outpost_pending(tbl TEXT NOT NULL, pk BLOB NOT NULL,"
                         " seq INTEGER NOT NULL, PRIMARY KEY (tbl, pk)) WITHOUT ROWID");
    if (rc != OUTPOST_OK)
        goto fail;
    *out_replica = r;
    return OUTPOST_OK;
fail:
    err_copy(err, err_size, r->errmsg);
    outpost_replica_close(r);
    return rc;
}

/* Exactly one of a key or a non-empty passphrase. */
static bool secret_is_one(const outpost_secret *secret)
{
    bool has_passphrase = secret->passphrase != NULL && secret->passphrase_len > 0;

    return (secret->key != NULL) != has_passphrase;
}

static bool secret_is_empty(const outpost_secret *secret)
{
    return secret->key == NULL && secret->passphrase == NULL && secret->passphrase_len == 0;
}

/* Checks the key material in config; on failure writes why to msg. */
static int config_check_secret(const outpost_config *config, char *msg, size_t msg_size)
{
    bool empty = secret_is_empty(&config->secret);

    if (config->no_encryption && !empty) {
        snprintf(msg, msg_size, "outpost_replica_open: set either secret or no_encryption, not both");
        return OUTPOST_EINVAL;
    }
    if (!config->no_encryption && empty) {
        snprintf(msg, msg_size, "outpost_replica_open: no key: set secret.key (%d bytes) or "
                                "secret.passphrase (no_encryption is for tests only)",
                 OUTPOST_KEY_BYTES);
        return OUTPOST_EINVAL;
    }
    if (!config->no_encryption && !secret_is_one(&config->secret)) {
        snprintf(msg, msg_size, "outpost_replica_open: secret must be one key or one non-empty "
                                "passphrase");
        return OUTPOST_EINVAL;
    }
    return OUTPOST_OK;
}

/* Whether the file at path starts like an encrypted replica: a plain SQLite header's fixed
 * fields at bytes 16..23 (which the encrypting VFS keeps in clear, with 32 reserved bytes per
 * page) behind a random salt where SQLite's magic string would be. */
static bool file_looks_encrypted(const char *path)
{
    static const char sqlite_magic[16] = "SQLite format 3";
    unsigned char h[24];
    unsigned page_size;
    FILE *fp = fopen(path, "rb");
    bool encrypted = false;

    if (fp == NULL)
        return false;
    if (fread(h, 1, sizeof h, fp) == sizeof h && memcmp(h, sqlite_magic, sizeof sqlite_magic) != 0) {
        page_size = ((unsigned)h[16] << 8) | h[17];
        if (page_size == 1)
            page_size = 65536;
        encrypted = page_size >= 512 && (page_size & (page_size - 1)) == 0 &&
                    h[20] == CRYPTVFS_RESERVE_BYTES && h[21] == 64 && h[22] == 32 && h[23] == 32;
    }
    fclose(fp);
    return encrypted;
}

int outpost_replica_open(const outpost_config *config, outpost_replica **out_replica, char *err,
                         size_t err_size)
{
    char msg[OUTPOST_ERRMSG_SIZE] = "";
    replica_shared *shared = NULL;
    int rc;

    if (out_replica)
        *out_replica = NULL;
    if (config == NULL || out_replica == NULL || config->path == NULL || config->path[0] == '\0') {
        err_copy(err, err_size, "outpost_replica_open: config, config->path and out_replica are required");
        return OUTPOST_EINVAL;
    }
    rc = config_check_secret(config, msg, sizeof msg);
    if (rc != OUTPOST_OK)
        goto fail;
    shared = shared_new();
    if (shared == NULL) {
        rc = OUTPOST_ENOMEM;
        snprintf(msg, sizeof msg, "out of memory");
        goto fail;
    }
    shared->sent_retention_ms =
        (int64_t)(config->sent_retention_days ? config->sent_retention_days
                                              : OUTPOST_SENT_RETENTION_DAYS_DEFAULT) *
        86400000;
    if (config->no_encryption) {
        if (file_looks_encrypted(config->path)) {
            rc = OUTPOST_EKEY;
            snprintf(msg, sizeof msg, "cannot open %s: it is encrypted; open it with its key or "
                                      "passphrase, not no_encryption", config->path);
            goto fail;
        }
    } else {
        cryptvfs_secret secret = {.key = config->secret.key,
                                  .passphrase = config->secret.passphrase,
                                  .passphrase_len = config->secret.passphrase_len};

        rc = cryptvfs_open(config->path, &secret, &shared->vfs);
        if (rc != CRYPTVFS_OK) {
            char what[OUTPOST_ERRMSG_SIZE];

            snprintf(what, sizeof what, "cannot open %s", config->path);
            rc = crypt_error_describe(rc, NULL, what, msg, sizeof msg);
            goto fail;
        }
    }
    rc = replica_open_shared(config->path, config->on_conflict, config->clock,
                             config->user_data, shared, out_replica, err, err_size);
    if (rc == OUTPOST_OK)
        (*out_replica)->on_rejected = config->on_rejected;
    return rc;
fail:
    shared_release(shared);
    err_copy(err, err_size, msg);
    return rc;
}

void outpost_replica_close(outpost_replica *replica)
{
    if (replica == NULL)
        return;
    if (replica->db && !sqlite3_get_autocommit(replica->db))
        replica_rollback(replica);
    replica_stmt_cache_clear(replica);
    if (replica->session) /* sqlite3session_delete() does not take NULL */
        sqlite3session_delete(replica->session);
    /* sqlite3_close_v2 would defer on unfinalized statements; every one is finalized here. */
    sqlite3_close(replica->db);
    replica_free_tables(replica->tables, replica->n_tables);
    shared_release(replica->shared);
    sqlite3_free(replica->path);
    sqlite3_free(replica);
}

sqlite3 *outpost_replica_db(outpost_replica *replica)
{
    return replica ? replica->db : NULL;
}

/* ---- wipe --------------------------------------------------------------------------------- */

/* Every file SQLite and the encrypting VFS make for a replica: its journals, the copy an
 * interrupted rekey leaves (with that copy's own journals), and the database itself. */
static const char *const replica_file_suffixes[] = {
    "-wal", "-shm", "-journal", "-rekey-wal", "-rekey-shm", "-rekey-journal", "-rekey", ""};

static int files_remove(const char *path, char *msg, size_t msg_size)
{
    int rc = OUTPOST_OK;

    /* The database goes last: while it exists, the journal beside it is still meaningful. */
    for (size_t i = 0; i < sizeof replica_file_suffixes / sizeof *replica_file_suffixes; i++) {
        char *name = sqlite3_mprintf("%s%s", path, replica_file_suffixes[i]);

        if (name == NULL) {
            snprintf(msg, msg_size, "out of memory");
            return OUTPOST_ENOMEM;
        }
        if (unlink(name) != 0 && errno != ENOENT) {
            snprintf(msg, msg_size, "cannot remove %s: %s", name, strerror(errno));
            rc = OUTPOST_EIO;
        }
        sqlite3_free(name);
    }
    return rc;
}

int outpost_files_wipe(const char *path, char *err, size_t err_size)
{
    char msg[OUTPOST_ERRMSG_SIZE] = "";
    int rc;

    if (path == NULL || path[0] == '\0') {
        err_copy(err, err_size, "outpost_files_wipe: path is required");
        return OUTPOST_EINVAL;
    }
    rc = files_remove(path, msg, sizeof msg);
    err_copy(err, err_size, msg);
    return rc;
}

int outpost_replica_wipe(outpost_replica *replica)
{
    char msg[OUTPOST_ERRMSG_SIZE] = "";
    char *path;
    int rc;

    if (replica == NULL)
        return OUTPOST_EINVAL;
    path = replica->path;
    replica->path = NULL;
    outpost_replica_close(replica);
    rc = files_remove(path, msg, sizeof msg);
    sqlite3_free(path);
    return rc;
}

/* ---- rekey -------------------------------------------------------------------------------- */

int outpost_replica_rekey(const char *path, const outpost_secret *old_secret,
                          const outpost_secret *new_secret, char *err, size_t err_size)
{
    char detail[CRYPTVFS_ERRMSG_SIZE] = "";
    char msg[OUTPOST_ERRMSG_SIZE + CRYPTVFS_ERRMSG_SIZE] = "";
    cryptvfs_secret old_cs, new_cs;
    struct stat st;
    int rc;

    if (path == NULL || path[0] == '\0' || old_secret == NULL || new_secret == NULL ||
        !secret_is_one(old_secret) || !secret_is_one(new_secret)) {
        err_copy(err, err_size, "outpost_replica_rekey: path and two secrets, each one key or one "
                                "non-empty passphrase, are required");
        return OUTPOST_EINVAL;
    }
    if (stat(path, &st) != 0) {
        snprintf(msg, sizeof msg, "outpost_replica_rekey: no replica at %s: %s", path,
                 strerror(errno));
        err_copy(err, err_size, msg);
        return errno == ENOENT ? OUTPOST_EINVAL : OUTPOST_EIO;
    }
    old_cs = (cryptvfs_secret){.key = old_secret->key, .passphrase = old_secret->passphrase,
                               .passphrase_len = old_secret->passphrase_len};
    new_cs = (cryptvfs_secret){.key = new_secret->key, .passphrase = new_secret->passphrase,
                               .passphrase_len = new_secret->passphrase_len};
    rc = cryptvfs_rekey(path, &old_cs, &new_cs, detail, sizeof detail);
    if (rc == CRYPTVFS_OK)
        return OUTPOST_OK;
    if (rc == CRYPTVFS_EINVAL) {
        /* The arguments were checked above: what is left is a replica still open elsewhere. */
        snprintf(msg, sizeof msg, "cannot rekey %s: close every handle on it first (%s)", path,
                 detail);
        rc = OUTPOST_EMISUSE;
    } else {
        char what[OUTPOST_ERRMSG_SIZE];

        snprintf(what, sizeof what, "cannot rekey %s", path);
        rc = crypt_error_describe(rc, detail, what, msg, sizeof msg);
    }
    err_copy(err, err_size, msg);
    return rc;
}

/* ---- status ------------------------------------------------------------------------------- */

int outpost_status_get(outpost_replica *replica, outpost_status *out_status)
{
    static const char sql[] =
        "SELECT (SELECT count(*) FROM _outpost_outbox),"
        " (SELECT coalesce(min(created_ms), 0) FROM _outpost_outbox),"
        " last_sync_ms, cursor, schema_version, device_seq,"
        " (SELECT count(*) FROM _outpost_conflicts),"
        " (SELECT count(*) FROM _outpost_rejected)"
        " FROM _outpost_state WHERE id = 1";
    sqlite3_stmt *stmt = NULL;
    int rc;

    if (replica == NULL || out_status == NULL)
        return replica ? replica_fail(replica, OUTPOST_EINVAL, "out_status is required")
                       : OUTPOST_EINVAL;
    memset(out_status, 0, sizeof *out_status);
    rc = replica_check_usable(replica);
    if (rc != OUTPOST_OK)
        return rc;
    rc = replica_prepare(replica, sql, &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        rc = replica_fail_sqlite(replica, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "reading status");
        sqlite3_finalize(stmt);
        return rc;
    }
    out_status->pending = (uint64_t)sqlite3_column_int64(stmt, 0);
    out_status->oldest_pending_ms = sqlite3_column_int64(stmt, 1);
    out_status->last_sync_ms = sqlite3_column_int64(stmt, 2);
    out_status->cursor = (uint64_t)sqlite3_column_int64(stmt, 3);
    out_status->schema_version = (uint32_t)sqlite3_column_int64(stmt, 4);
    out_status->last_seq = (uint64_t)sqlite3_column_int64(stmt, 5);
    out_status->conflicts = (uint64_t)sqlite3_column_int64(stmt, 6);
    out_status->rejected = (uint64_t)sqlite3_column_int64(stmt, 7);
    sqlite3_finalize(stmt);
    return OUTPOST_OK;
}

int outpost_conflicts_clear(outpost_replica *replica, int64_t up_to_id)
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    if (replica == NULL)
        return OUTPOST_EINVAL;
    rc = replica_check_usable(replica);
    if (rc != OUTPOST_OK)
        return rc;
    if (replica->in_tx)
        return replica_fail(replica, OUTPOST_EMISUSE, "a transaction is open");
    rc = replica_prepare(replica, "DELETE FROM _outpost_conflicts WHERE id <= ?1", &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_int64(stmt, 1, up_to_id);
    replica->mode = MODE_LIBRARY;
    rc = sqlite3_step(stmt);
    replica->mode = MODE_APP;
    /* Autocommit statement: its own commit passes the hook because no synced change is held. */
    rc = rc == SQLITE_DONE ? OUTPOST_OK : replica_fail_sqlite(replica, rc, "clearing conflicts");
    sqlite3_finalize(stmt);
    return rc;
}
