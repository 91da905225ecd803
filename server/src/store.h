/*
 * The central store: the seam between outpostd's network side and the engine that keeps the
 * data. One implementation today (SQLite, store_sqlite.c); PostgreSQL plugs in here later.
 *
 * A store handle is one connection: not thread safe, use one per thread. Several handles on
 * the same path may be open at once (the daemon's worker threads, outpost-admin).
 *
 * Every function returns 0 on success or a negative STORE_E* code, and on failure writes a
 * human message into the handle (store_errmsg). Messages never contain record contents.
 *
 * Replies to devices are returned already encoded (proto_buf, caller frees with
 * proto_buf_free) so that the network side never has to reason about the lifetimes of rows.
 */
#ifndef OUTPOST_STORE_H
#define OUTPOST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outpost/proto.h"

enum {
    STORE_OK = 0,
    STORE_ENOMEM = -1,
    STORE_EIO = -2,        /* the engine failed (I/O error, corrupt file) */
    STORE_EFULL = -3,      /* disk or quota full: nothing was written */
    STORE_EBUSY = -4,      /* locked by another writer past the busy timeout: retry */
    STORE_ENOTFOUND = -5,  /* no such device, worker, team, code */
    STORE_EAUTH = -6,      /* wrong secret */
    STORE_EREVOKED = -7,   /* device revoked */
    STORE_ECODE = -8,      /* enrollment code unknown, used or expired */
    STORE_EINVAL = -9,     /* bad argument (bad schema file, bad name, ...) */
    STORE_ESCHEMA = -10,   /* schema problem: not additive, no primary key, bad policy */
    STORE_EEXISTS = -11    /* already exists */
};

typedef struct store store;

/* Opens (and, with create, makes) the store at path: WAL, synchronous=FULL, busy timeout. */
int store_open(const char *path, bool create, store **out_store, char *err, size_t err_size);
void store_close(store *st); /* NULL is a no-op */
const char *store_errmsg(const store *st);

/* ---- Schema -------------------------------------------------------------------------------- */

/* Initialises an empty store from a schema SQL file's text (CREATE TABLE statements) and a
 * policy text (one line per synced table: "TABLE scope=COLUMN policy=hlc|server-wins|device-wins").
 * Fails with STORE_ESCHEMA naming the table when a synced table has no explicit non-integer
 * PRIMARY KEY or lacks its scope column. */
int store_init_schema(store *st, const char *schema_sql, const char *policy_text);

/* Applies an additive upgrade (new tables, new nullable or defaulted columns) and bumps the
 * schema version. Anything else is STORE_ESCHEMA with the reason. (An upgrade identical to the
 * current schema changes nothing and keeps the version.) */
int store_upgrade_schema(store *st, const char *schema_sql, const char *policy_text);

/* Current schema encoded as a SCHEMA message, and its version. */
int store_schema_encode(store *st, proto_buf *out, uint32_t *out_version);

/* ---- Devices -------------------------------------------------------------------------------- */

typedef struct store_device {
    char device_id[40];   /* UUID text */
    char worker_id[64];
    uint32_t n_teams;
    char (*teams)[64];    /* the worker's teams: the scope values this device may see */
    bool revoked;
    bool wipe;            /* revoked with a wipe order */
    uint64_t acked_seq;   /* highest device seq applied */
    uint64_t cursor;      /* last cursor the device reported */
} store_device;

void store_device_clear(store_device *dev); /* frees teams; the struct may be reused */

/* Checks a device's secret in constant time. STORE_ENOTFOUND and STORE_EAUTH are both
 * "authentication failed" to the device; STORE_EREVOKED fills dev (with wipe set as ordered). */
int store_device_auth(store *st, const char *device_id, const uint8_t secret[32],
                      store_device *out_dev);

/* Turns a one-time enrollment code into a new device: a fresh device id and a 256-bit secret
 * from mbedTLS's random generator; only a hash of the secret is kept. Single use; the code must
 * not have expired. */
int store_device_enroll(store *st, const char *code, const char *device_name,
                        char out_device_id[40], uint8_t out_secret[32]);

/* Records that a device synced (time, cursor) for `outpost-admin devices` and the dashboard. */
int store_device_seen(store *st, const char *device_id, uint64_t cursor);

/* ---- Administration (outpost-admin, later the dashboard) ------------------------------------ */

/* Team and worker ids: 1 to 63 characters from A-Z a-z 0-9 . _ - (STORE_EINVAL else). */

/* Creates a team; name is an optional label. STORE_EEXISTS when the id is taken. */
int store_team_add(store *st, const char *team_id, const char *name);

/* Creates a worker in one or more existing teams (STORE_ENOTFOUND names a missing team). */
int store_worker_add(store *st, const char *worker_id, const char *const *team_ids,
                     uint32_t n_teams);

/* Longest enrollment code text, with its NUL: "XXXXX-XXXXX-XXXXX-XXXXX" (100 random bits,
 * Crockford base32; the check ignores case and dashes). */
#define STORE_CODE_SIZE 24

/* Issues a one-time enrollment code for a worker, valid ttl_ms after now_ms. Only a hash of the
 * code is kept. */
int store_enroll_code_create(store *st, const char *worker_id, uint64_t now_ms, uint64_t ttl_ms,
                             char out_code[STORE_CODE_SIZE]);

typedef struct store_device_row {
    char device_id[40];
    char worker_id[64];
    char name[64];          /* label the device gave at enrollment, may be empty */
    uint64_t enrolled_ms;
    uint64_t last_seen_ms;  /* 0 = never synced */
    uint64_t cursor;
    uint64_t acked_seq;
    bool revoked;
    bool wipe;
} store_device_row;

/* Calls cb for each device, oldest enrollment first; a non-zero return from cb stops the walk
 * and is returned. */
typedef int (*store_device_list_cb)(const store_device_row *row, void *user_data);
int store_device_list(store *st, store_device_list_cb cb, void *user_data);

/* Revokes a device; with wipe it is also told to erase its replica at its next contact.
 * Revoking twice keeps the first time and adds a wipe order if asked. */
int store_device_revoke(store *st, const char *device_id, bool wipe);

/* ---- Sync ----------------------------------------------------------------------------------- */

typedef struct store_push_info {
    bool duplicate;       /* seq <= acked_seq: already applied, answered ACK, nothing changed */
    bool rejected;        /* answered REJECT, nothing applied */
    bool hlc_clamped;
    uint64_t server_seq;  /* change-log sequence after the apply */
    uint32_t n_rows;      /* row changes applied */
    uint32_t n_conflicts;
    uint32_t n_teams_touched;
    char (*teams_touched)[64]; /* scope values whose rows changed: who to NOTIFY; caller frees */
} store_push_info;

/* Merges one device transaction (all chunks already joined into one proto_push) into the store
 * as DESIGN.md's Merge section says, exactly once per (device, seq), atomically, and writes the
 * encoded reply (ACK or REJECT) to reply. dev->acked_seq is updated. A failure (STORE_EFULL,
 * STORE_EBUSY, STORE_EIO) applies nothing and writes no reply. */
int store_push(store *st, store_device *dev, const proto_push *push, uint64_t now_ms,
               proto_buf *reply, store_push_info *out_info);
/* Details of the above (SQLite store):
 *  - A REJECTed entry is not recorded as applied: acked_seq stays, and the same entry sent
 *    again is checked again. A reject row whose key could not be read (unknown table, missing
 *    primary key) carries the key [nil].
 *  - A revoked device gets STORE_EREVOKED and no reply.
 *  - teams_touched is NULL when n_teams_touched is 0; free it with free(). */

/* The newest server sequence (the change log's head), for WELCOME's server_seq. */
int store_server_seq(store *st, uint64_t *out_seq);

typedef struct store_pull_info {
    uint32_t n_rows;
    uint32_t n_deleted;
    uint32_t n_removed;
    uint64_t next_cursor;
    bool more;
} store_pull_info;

/* One ROWS page for the device: the latest version of each row in its scope changed after
 * cursor (never the device's own unaltered changes), tombstones and scope removals, at most
 * limit rows and at most max_bytes encoded. */
int store_pull(store *st, const store_device *dev, uint64_t cursor, uint32_t limit,
               size_t max_bytes, proto_buf *reply, store_pull_info *out_info);
/* Details of the above (SQLite store): limit 0 means 1000, and at most 10000 rows go in a page;
 * a page always carries at least one row, even one larger than max_bytes; a first pull
 * (cursor 0) carries no tombstones or removals; next_cursor is the newest server sequence when
 * more is false; a cursor beyond the newest server sequence (the store was restored from a
 * backup) is read as 0. A revoked device gets STORE_EREVOKED and no reply. */

#endif /* OUTPOST_STORE_H */
