/*
 * What the SQLite store's modules share: the handle, the cached schema, error helpers and
 * transaction helpers. Not API: only server/src/store_*.c, merge.c, pull.c and schema.c include it.
 */
#ifndef OUTPOST_STORE_INTERNAL_H
#define OUTPOST_STORE_INTERNAL_H

#include <sqlite3.h>

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
    /* Statements prepared on first use and kept until the schema changes. */
    sqlite3_stmt *sel_row; /* SELECT every column WHERE pk = ?1.. */
    sqlite3_stmt *ins_row; /* INSERT every column, ?1..?n */
    sqlite3_stmt *del_row; /* DELETE WHERE pk = ?1.. */
} store_table;

struct store {
    sqlite3 *db;
    char errmsg[256];
    uint32_t schema_version; /* version of the cached tables below; 0 = not loaded */
    uint32_t n_tables;
    store_table *tables;
    sqlite3_stmt *rows_get;   /* _outpost_rows by (table_id, pk) */
    sqlite3_stmt *rows_put;   /* INSERT OR REPLACE into _outpost_rows */
    sqlite3_stmt *rows_add;   /* INSERT into _outpost_rows unless known */
    sqlite3_stmt *change_put; /* INSERT into _outpost_changes */
};

/* Writes a message into st->errmsg and returns rc. */
int store_fail(store *st, int rc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Maps a SQLite result to a STORE_E* code and records "what: sqlite message" in st. */
int store_fail_sqlite(store *st, int sqlite_rc, const char *what);

/* Maps a SQLite result code to a STORE_E* code without touching the message. */
int store_rc_from_sqlite(int sqlite_rc);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. Rollback is safe when SQLite already rolled back
 * (after SQLITE_FULL, for example) and keeps st->errmsg as it was. */
int store_begin(store *st, bool write);
int store_commit(store *st);
void store_rollback(store *st);

/* Runs SQL without results. */
int store_exec(store *st, const char *sql, const char *what);

/* Integer key/value metadata (_outpost_meta): schema_version, server_seq. */
int store_meta_get(store *st, const char *key, int64_t *out_value);
int store_meta_set(store *st, const char *key, int64_t value);

/* Milliseconds since the Unix epoch from the wall clock. */
uint64_t store_now_ms(void);

/* Loads (or reloads, when the stored schema version changed) the synced tables. */
int store_tables_load(store *st);
void store_tables_free(store *st);
store_table *store_table_find(store *st, const char *name);

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

/* Writes `"name"` with embedded quotes doubled into out (for identifiers from the schema). */
int store_quote_ident(char *out, size_t out_size, const char *name);

#endif /* OUTPOST_STORE_INTERNAL_H */
