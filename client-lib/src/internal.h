/* liboutpost internals shared between its modules. Not API. */
#ifndef OUTPOST_INTERNAL_H
#define OUTPOST_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cryptvfs.h"
#include "outpost.h"
#include "outpost_engine.h"

/* Tables of the library itself carry this prefix and live in the replica's own database, so
 * they commit atomically with the app's data. */
#define OUTPOST_RESERVED_PREFIX "_outpost_"

#define OUTPOST_ERRMSG_SIZE 256
#define OUTPOST_STMT_CACHE 16

/* Who is running SQL on the connection right now; the authorizer decides by it. */
enum replica_mode {
    MODE_APP = 0,      /* the app, straight on the connection: no writes to synced tables */
    MODE_APP_EXEC = 1, /* the app's statement inside outpost_exec(): synced writes allowed */
    MODE_LIBRARY = 2   /* the library's own statements: everything allowed */
};

/* A synced table as the replica has it (from PRAGMA table_info, not from the schema message). */
typedef struct synced_table {
    char *name;
    uint32_t n_cols;
    char **cols;
    uint32_t n_pk;
    uint32_t *pk; /* column indexes in primary key order */
} synced_table;

/* What the handles on one replica file share: the first handle and its siblings (the sync
 * engine's connection, opened with replica_open_sibling()) run on different threads, so
 * everything here is under lock, except vfs, which is set before any sibling exists.
 *
 * vfs is the encrypting VFS every connection to the file is opened through (NULL for a replica
 * opened with no_encryption: SQLite's default VFS). It holds the file's keys, is shared by all
 * the handles and is closed (its keys wiped) by the last one, after its connection. */
typedef struct replica_shared {
    pthread_mutex_t lock;
    unsigned refs;
    cryptvfs *vfs;
    uint64_t schema_gen;     /* bumped after any sibling installs a schema */
    char *synced_names;      /* the synced tables then: names one after another, each with its
                              * NUL, and an empty name at the end */
    void (*commit_listener)(void *ctx);
    void *commit_ctx;
    int64_t sent_retention_ms; /* how long acknowledged entries are kept (heal.c) */
} replica_shared;

typedef struct stmt_slot {
    char *sql;
    sqlite3_stmt *stmt;
} stmt_slot;

struct outpost_replica {
    sqlite3 *db;
    char *path;
    outpost_conflict_cb on_conflict;
    outpost_rejected_cb on_rejected;
    outpost_clock_cb clock;
    void *user_data;

    sqlite3_session *session; /* attached to every synced table; recreated per transaction */
    bool session_stale;       /* a rollback happened: the session holds dead entries */
    enum replica_mode mode;
    bool in_tx;               /* outpost_tx_begin() opened a transaction */
    bool committing;          /* the commit hook lets this commit through */

    synced_table *tables;
    uint32_t n_tables;

    stmt_slot stmts[OUTPOST_STMT_CACHE]; /* the app's statements, by SQL text */
    uint32_t next_evict;
    sqlite3_stmt *st_next_seq;      /* the library's per-commit statements */
    sqlite3_stmt *st_outbox_insert;
    sqlite3_stmt *st_changeset_insert;
    sqlite3_stmt *st_pending;       /* lookup in temp._outpost_pending */

    /* The outbox the temp pending-row set was built from, as (entries, last seq). Read from the
     * database, not counted here, because another connection (the sync engine's) changes the
     * outbox too. Sequences only grow and entries only leave, so the pair changes whenever the
     * outbox does. pending_valid is false when a rollback may have undone the build. */
    int64_t pending_count;
    int64_t pending_max;
    bool pending_valid;
    /* Pull-apply: rows of the page being applied that were kept for their pending local change,
     * and whether this pull kept one (its cursor then stays where it was: page_apply). */
    uint32_t pull_kept;
    bool pull_cursor_held;
    int schema_cookie;        /* PRAGMA schema_version the table list was read at */
    bool schema_loaded;       /* the table list has been read once */

    replica_shared *shared;
    uint64_t shared_gen_seen; /* shared->schema_gen this handle's table list is at */
    atomic_bool wiped;        /* the replica's files were deleted under this handle */

    char errmsg[OUTPOST_ERRMSG_SIZE];
};

/* A bump allocator owning the values of a decoded outbox entry. */
struct outpost_arena;
void *arena_alloc(struct outpost_arena **arena, size_t n_bytes);
void arena_free(struct outpost_arena *arena);

/* error.c */
int replica_fail(outpost_replica *r, int code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int replica_fail_sqlite(outpost_replica *r, int sqlite_rc, const char *what);
int replica_fail_crypt(outpost_replica *r, int crypt_rc, const char *what);
int crypt_error_describe(int crypt_rc, const char *detail, const char *what, char *msg,
                         size_t msg_size);
int sqlite_to_outpost(int sqlite_rc);
void replica_clear_error(outpost_replica *r);

/* replica.c */
int replica_exec(outpost_replica *r, const char *sql);
int replica_begin(outpost_replica *r);
int replica_schema_cookie(outpost_replica *r, int *out_cookie);
int replica_query_int64(outpost_replica *r, const char *sql, const char *what, int64_t *out_value);
int replica_commit(outpost_replica *r);
void replica_rollback(outpost_replica *r);
int replica_apply_uncaptured(outpost_replica *r, int (*apply)(outpost_replica *r, void *ctx),
                             void *ctx);
int replica_session_reset(outpost_replica *r);
int replica_load_tables(outpost_replica *r);
int replica_read_tables(outpost_replica *r, synced_table **out_tables, uint32_t *out_n);
void replica_set_tables(outpost_replica *r, synced_table *tables, uint32_t n);
void replica_free_tables(synced_table *tables, uint32_t n);
int synced_table_describe(outpost_replica *r, sqlite3 *db, const char *name, synced_table *t);
void synced_table_clear(synced_table *t);
const synced_table *replica_table(const outpost_replica *r, const char *name);
int64_t replica_now_ms(const outpost_replica *r);
int replica_prepare(outpost_replica *r, const char *sql, sqlite3_stmt **out_stmt);
/* Puts the write guard (the library's authorizer) back on the connection (watch_items.c
 * prepares a watch rule under its own, stricter one). */
void replica_guard_install(outpost_replica *r);
/* watch_items.c: keeps the schema's watch rules (NULL: none) inside the install transaction. */
int watch_keep(outpost_replica *r, const char *watch_json);
void replica_stmt_cache_clear(outpost_replica *r);

/* forms.c: the schema's forms as the server sent them (NULL: none), inside the install */
int replica_forms_record(outpost_replica *r, const char *forms_json);

/* sync_error.c: the last sync attempt's error across runs of the app ("": it succeeded) */
int replica_sync_error_set(outpost_replica *r, const char *message);
void replica_sync_error_get(outpost_replica *r, char *out, size_t size);

/* replica.c: handles on one file */
int replica_open_sibling(outpost_replica *replica, outpost_replica **out_sibling, char *err,
                         size_t err_size);
void replica_set_commit_listener(outpost_replica *replica, void (*listener)(void *ctx), void *ctx);
void replica_notify_commit(outpost_replica *r);
void replica_mark_wiped(outpost_replica *replica);
int replica_check_usable(outpost_replica *r);
char *replica_names_blob(const synced_table *tables, uint32_t n);
void replica_publish_schema(outpost_replica *r, char *names);

/* value.c */
int value_bind(sqlite3_stmt *stmt, int idx, const proto_value *v);
int value_from_sqlite(sqlite3_value *sv, proto_value *out, struct outpost_arena **arena);
void value_from_sqlite_view(sqlite3_value *sv, proto_value *out);
bool value_same(const proto_value *a, const proto_value *b);
int value_key_append(sqlite3_str *key, const proto_value *v);
void value_json_append(sqlite3_str *out, const proto_value *v);

/* outbox.c */
int outbox_decode(const void *changeset, int n_bytes, struct outpost_arena **arena,
                  proto_push *push);
int outbox_pending_refresh(outpost_replica *r);
int outbox_row_pending(outpost_replica *r, const char *table, const proto_value *pk,
                       uint32_t n_pk, uint64_t after_seq, bool *out_pending);
/* One table's rows with pending changes, for asking about every row of a page: a Bloom filter
 * of their keys answers most rows without a query (a row it may hold is asked of
 * outbox_row_pending). Valid while the outbox does not change (within the page's transaction). */
typedef struct pending_filter {
    const char *table;
    uint64_t *bits; /* NULL: no row of the table is pending */
    uint64_t mask;  /* number of bits - 1 */
    sqlite3_str *scratch;
} pending_filter;
int outbox_pending_filter_build(outpost_replica *r, const char *table, pending_filter *out_f);
int outbox_pending_filter_check(outpost_replica *r, pending_filter *f, const proto_value *pk,
                                uint32_t n_pk, bool *out_pending);
void outbox_pending_filter_free(pending_filter *f);

/* heal.c: a server that went back in time (restored from a backup) */
int sent_keep(outpost_replica *r, uint64_t seq);
typedef struct heal_result {
    bool rewound;      /* the server is behind this device: entries re-queued, cursor reset */
    uint64_t n_resent; /* acknowledged entries put back in the outbox */
    char why[160];     /* what showed it, for the sync status */
} heal_result;
/* What this device said in its HELLO: the highest entry the store had acknowledged and its
 * cursor. Only those are evidence against the WELCOME that answers it: another engine on the
 * same replica may record ACKs and pages after the HELLO left, which this WELCOME predates. */
typedef struct heal_hello {
    uint64_t acked;
    uint64_t cursor;
} heal_hello;
/* hello NULL: judge by what the replica holds now (one engine, nothing in between). */
int heal_on_welcome(outpost_replica *r, const proto_welcome *w, const heal_hello *hello,
                    heal_result *out_result);
int heal_rewind(outpost_replica *r, uint64_t server_acked, heal_result *out_result);
/* For HELLO: the highest seq the store acknowledged to this device (0: none yet) and the
 * store's id ("" when not known yet or longer than store_id_size allows). */
int heal_known_server(outpost_replica *r, uint64_t *out_acked_max, char *store_id,
                      size_t store_id_size);

/* quarantine.c */
int quarantine_change(outpost_replica *r, const proto_reject *rej, const synced_table *t,
                      const proto_change *ch, int64_t *out_id);

/* scope.c */
int scope_teams_store(outpost_replica *r, const proto_teams *teams);
/* Keeps the worker id the server sent (NULL: unchanged). */
int scope_worker_store(outpost_replica *r, const char *worker_id);
int scope_check(outpost_replica *r, const void *changeset, int n_bytes);

/* pull.c */
int rows_apply_table(outpost_replica *r, const proto_table_rows *tr);
/* The cursor at which the replica's last pull completed (the PULL's `seen`). */
int rows_pulled_cursor(outpost_replica *r, uint64_t *out_seen);
int rows_delete(outpost_replica *r, const synced_table *t, const proto_value *pk);
int rows_upsert(outpost_replica *r, const synced_table *t, const proto_value *vals,
                uint32_t n_vals);
int rows_update_cols(outpost_replica *r, const synced_table *t, const proto_change *change,
                     bool use_old);

#endif /* OUTPOST_INTERNAL_H */
