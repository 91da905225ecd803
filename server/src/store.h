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
 * schema version. Anything else is STORE_ESCHEMA with the reason. */
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

#endif /* OUTPOST_STORE_H */
