/*
 * What the store's modules share: the handles, the cached schema, error helpers and
 * transaction helpers. Not API: only server/src/store_*.c, merge.c, pull.c and schema.c include it.
 *
 * Two handles while the port to the database seam (db.h) goes on: conn, through which modules
 * ported to the seam run on SQLite and PostgreSQL alike, and db, SQLite's own connection (the
 * same one conn wraps), which the modules not yet ported use. A store on PostgreSQL has no db.
 */
#ifndef OUTPOST_STORE_INTERNAL_H
#define OUTPOST_STORE_INTERNAL_H

#include <sqlite3.h>

#include "db.h"
#include "store.h"

/* How far ahead of the server's clock a device's HLC may run before it is clamped. */
#define STORE_HLC_TOLERANCE_MS (5u * 60u * 1000u)

/* One synced table as the store knows it (loaded from _outpost_tables/_outpost_columns). */
typedef struct store_table {
    int64_t id;
    char *name;
    char *create_sql;
    uint32_t scope_idx;
    proto_policy policy;
    uint32_t author_idx; /* SCHEMA_NO_AUTHOR (UINT32_MAX): none */
    uint32_t n_cols;
    char **cols;
    uint32_t n_pk;
    uint32_t *pk; /* column indexes in primary key order */
    uint64_t pk_text; /* bit k: primary key column k has TEXT affinity (its values stay text) */
    /* Statements prepared on first use and kept until the schema changes. */
    db_stmt *sel_row; /* SELECT every column WHERE pk = ?1.. */
    db_stmt *ins_row; /* INSERT every column, ?1..?n */
    db_stmt *del_row; /* DELETE WHERE pk = ?1.. */
    db_stmt *ins_rows; /* SQLite: INSERT of MERGE_INSERT_BATCH whole rows (merge_apply.c) */
    db_stmt *sel_rows; /* SQLite: SELECT of ROW_READ_BATCH rows by key (store_rows.c) */
} store_table;

/* A device's echo run: change-log entries from..to (server sequences, no gap) that are all that
 * device's unaltered writes, each leaving its row echoed to the device since at most echo_max
 * (row_meta.echo_since). While such an entry is its row's latest change, a pull by that device
 * from a cursor >= echo_max skips it (pull.c); once another change supersedes it, the row is
 * considered at that later entry. So a pull by the device may jump the run unread: the run is
 * history, which nothing rewrites. Kept in memory, only once committed: lost at a restart,
 * which costs a slower pull and nothing else. */
typedef struct store_echo_run {
    int64_t device_no; /* 0: none */
    uint64_t from, to;
    uint64_t echo_max;
} store_echo_run;

/* Notes that the committed entry of device_no wrote change-log entries first..last, each its
 * own unaltered write echoed since at most echo_max; in an open group, for when it commits. */
void store_echo_note(store *st, int64_t device_no, uint64_t first, uint64_t last,
                     uint64_t echo_max);

struct store {
    db_conn *conn;    /* the seam: SQLite (wrapping db) or PostgreSQL */
    sqlite3 *db; /* NULL on PostgreSQL */
    char errmsg[256];
    size_t max_page_bytes; /* a ROWS page's limit (store_set_page_limit); 0 = none */
    bool sync_lowered; /* SQLite left at synchronous=NORMAL (store_device_seen); store_begin
                        * raises it again before a write */
    uint32_t schema_version; /* version of the cached tables below; 0 = not loaded */
    uint32_t n_tables;
    store_table *tables;
    db_stmt *rows_get;   /* _outpost_rows by (table_id, pk) */
    db_stmt *rows_put;   /* INSERT into _outpost_rows, or replace its state */
    db_stmt *rows_add;   /* INSERT into _outpost_rows unless known */
    db_stmt *change_put; /* INSERT into _outpost_changes */
    db_stmt *change_put_batch; /* ... STORE_CHANGES_BATCH entries at once */
    struct store_change_entry *changes; /* change-log entries not yet written (merge_log.c) */
    uint32_t n_changes;
    uint8_t *change_bytes; /* their keys and scope values */
    size_t change_bytes_len, change_bytes_cap;
    /* New rows' merge states not yet written (store_rows.c), and the largest key of the table
     * rows_top_table (0: none known) in _outpost_rows and that queue. */
    db_stmt *rows_add_batch;
    db_stmt *rows_top;
    /* PostgreSQL: SQLite's rules for the synced rows of the loaded schema (store_rowcheck.h),
     * run before each row write; NULL on SQLite, whose tables apply them themselves. */
    struct store_rowcheck *rowcheck;
    struct store_row_entry *new_rows;
    uint32_t n_new_rows;
    uint8_t *new_row_bytes;
    size_t new_row_bytes_len, new_row_bytes_cap;
    int64_t rows_top_table;
    uint8_t *rows_top_key;
    size_t rows_top_len, rows_top_cap;
    bool identity_created;    /* store_open gave the store its identity (it had none) */
    /* PostgreSQL: why this database is not where the store was made or last marked restored
     * (store_backup.c, store_restore_unmarked); empty when it is, and on SQLite. */
    char place_moved[256];
    bool serving;             /* store_serve: outpostd's handle, holding the serving lock */
    bool has_audit_key;       /* audit_key loaded (store_audit_key_load) */
    bool audit_ready;         /* the audit tables exist on this connection's file */
    bool lifecycle_ready;     /* _outpost_disabled exists */
    /* store_wal_defer: the backlog an idle tend copies and the WAL's limit, in pages (limit
     * 0: SQLite checkpoints in COMMIT, its default), the WAL's pages at the last commit or
     * checkpoint, and how many of them may not be copied into the database file yet. */
    uint32_t wal_idle_pages;
    uint32_t wal_limit_pages;
    uint32_t wal_pages;
    uint32_t wal_backlog;
    /* Group commit (store_push_group_begin): store_push runs each entry in a savepoint of the
     * group's transaction; broken once the engine ended that transaction (why: its message). */
    bool push_group;
    bool push_group_broken;
    bool push_entry_open; /* an entry's savepoint is open */
    char push_group_why[256];
    /* The newest echo run (store_echo_note) as committed, and as the open group will leave it
     * when it commits (echo_next_set). */
    store_echo_run echo_run;
    store_echo_run echo_next;
    bool echo_next_set;
    uint8_t audit_key[32];
};

/* Writes a message into st->errmsg and returns rc. */
int store_fail(store *st, int rc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Maps a SQLite result to a STORE_E* code and records "what: sqlite message" in st. */
int store_fail_sqlite(store *st, int sqlite_rc, const char *what);

/* Records "what: the engine's message" in st for a seam call that returned rc (a STORE_E* code;
 * any other value, such as an unexpected DB_ROW, is STORE_EIO) and returns the STORE_E* code. */
int store_fail_db(store *st, int rc, const char *what);

/* "OR FAIL " on SQLite, "" on PostgreSQL: for a multi-row INSERT whose failure always fails the
 * push (and so rolls back its transaction). SQLite otherwise keeps a statement journal for each
 * such statement, copying every page it changes, only to undo the statement alone. */
const char *store_insert_or_fail(const store *st);

/* Tables every store has and the merge engine's tables, in the seam's portable SQL
 * (store_sqlite.c), and the store's identity table (store_backup.c). */
extern const char store_base_ddl[];
extern const char store_sync_ddl[];
extern const char store_identity_ddl[];

/* Maps a SQLite result code to a STORE_E* code without touching the message. */
int store_rc_from_sqlite(int sqlite_rc);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. Rollback is safe when SQLite already rolled back
 * (after SQLITE_FULL, for example) and keeps st->errmsg as it was. */
int store_begin(store *st, bool write);
int store_commit(store *st);
void store_rollback(store *st);

/* Writes the change-log entries a merge queued in this transaction (merge_log.c); store_commit
 * runs it first, store_rollback drops them. */
int store_changes_flush(store *st);
void store_changes_drop(store *st);

/* The same for new rows' merge states (store_rows.c): row_meta_get and row_meta_put write them
 * first, so that every read of a row's state sees them. */
int store_new_rows_flush(store *st);
void store_new_rows_drop(store *st);

/* Runs SQL without results. */
int store_exec(store *st, const char *sql, const char *what);

/* Integer key/value metadata (_outpost_meta): schema_version, server_seq. */
int store_meta_get(store *st, const char *key, int64_t *out_value);
int store_meta_set(store *st, const char *key, int64_t value);

/* HMAC-SHA-256 with the loaded audit key over the n_parts buffers in order. STORE_EINVAL
 * without a key (audit_key.c). */
/* STORE_OK when the audit log's newest row and count match its seal (or the log is empty);
 * STORE_ETAMPERED with a message otherwise. */
int store_audit_seal_check(store *st);
int store_audit_mac(store *st, const void *const *parts, const size_t *n_bytes, size_t n_parts,
                    uint8_t out[32]);

/* The audit log's newest row id and stored hash (0 and zeros when empty) (store_audit.c). */
int store_audit_head(store *st, uint64_t *out_n_rows, uint8_t out_hash[32]);

/* The chain recomputed with the key over the rows now present with ids up to id, ignoring the
 * stored hashes, into out_hash; the newest id present into *out_n_rows. */
int store_audit_chain_at(store *st, int64_t id, uint64_t *out_n_rows, uint8_t out_hash[32]);

/* _outpost_disabled exists (store_lifecycle.c); is (kind 'worker' or 'user', id) disabled? */
int store_lifecycle_ensure(store *st);
int store_person_disabled(store *st, const char *kind, const char *id, bool *out_disabled);
int store_user_must_change(store *st, const char *name, bool *out_must);

/* The account tables exist (store_users.c); a new password hash for an account, lock lifted. */
int store_users_ensure(store *st);
int store_user_set_password(store *st, const char *name, const char *password);

/* Records, inside the caller's write transaction, that a worker's teams went from old to new:
 * each of its devices gets the rows it gained and loses the rows it lost at its next pull
 * (store_rescope.c). */
int store_rescope_record(store *st, const char *worker_id, const char (*old_teams)[64],
                         uint32_t n_old, const char *const *new_teams, uint32_t n_new);

/* Appends n bytes at p to the growing buffer (*buf, *len, *cap); their offset into *out_at
 * (when not NULL). STORE_ENOMEM leaves the buffer as it was. */
int store_buf_append(uint8_t **buf, size_t *len, size_t *cap, const void *p, size_t n,
                     size_t *out_at);

/* Milliseconds since the Unix epoch from the wall clock. */
uint64_t store_now_ms(void);

/* Loads (or reloads, when the stored schema version changed) the synced tables. */
int store_tables_load(store *st);
void store_tables_free(store *st);
store_table *store_table_find(store *st, const char *name);
/* The synced table whose _outpost_tables id is id; NULL when none is (loaded). */
store_table *store_table_by_id(store *st, int64_t id);

/* Looks up a device's row number, worker and flags by id. STORE_ENOTFOUND when unknown. */
typedef struct store_device_rec {
    int64_t no;
    char worker_id[64];
    bool revoked;
    bool wipe;
    uint64_t acked_seq;
} store_device_rec;
int store_device_lookup(store *st, const char *device_id, store_device_rec *out_rec);

/* Device id and worker of a device row number; empty strings when unknown. */
int store_device_names(store *st, int64_t device_no, char out_id[40], char out_worker[64]);

/* The SQLite connection behind a store (tests use it to set size limits and to dump). */
sqlite3 *store_sqlite_db(store *st);

/* Prepares t's cached statements (sel_row, ins_row, del_row) if not done yet. */
int store_table_prepare(store *st, store_table *t);

/* True when id is 1 to 63 characters from A-Z a-z 0-9 . _ - */
bool store_id_valid(const char *id);

/* The worker's teams, sorted; *out_teams is malloc'd (free it), NULL when there are none. */
int store_worker_teams(store *st, const char *worker_id, uint32_t *out_n, char (**out_teams)[64]);

/* A random (version 4) UUID as text, from mbedTLS's PSA generator. */
int store_random_uuid(store *st, char out[40]);

/* Gives a store that has no identity yet (new, or made before identities existed) one: a random
 * id and epoch 1. Called by store_open; *out_created says whether it did. */
int store_identity_ensure(store *st, bool *out_created);

/* PostgreSQL: compares where the store lives (cluster, database, metadata table) with where it
 * was made or last marked restored, recording it when nothing is (a store made before this was
 * kept); a difference is kept in st->place_moved. Called by store_open_postgresql. */
int store_place_open(store *st);
/* store_ping's part on a serving handle (store_serve): the lock again, and the place. */
int store_serve_check(store *st);

/* Whether the store has table name (a table made on first use: forms, watch rules, authors).
 * 0 or a STORE_E* code. */
int store_table_exists(store *st, const char *name, bool *out_exists);
/* Runs DDL of "CREATE ... IF NOT EXISTS name" statements, except on a PostgreSQL store that has
 * every object it names already: there it runs nothing, so a runtime role with DML rights only
 * can open the store (store_postgresql.c). */
int store_exec_ddl(store *st, const char *ddl, const char *what);

/* A synced table's or column's name quoted for the store's engine: as given on SQLite, folded
 * to lower case on PostgreSQL (as the schema made them there). */
int store_quote_name(store *st, char *out, size_t out_size, const char *name);

/* Writes `"name"` with embedded quotes doubled into out (for identifiers from the schema). */
int store_quote_ident(char *out, size_t out_size, const char *name);

#endif /* OUTPOST_STORE_INTERNAL_H */
