/*
 * What the merge engine's modules share (merge.c: the rules; merge_log.c: the conflict and
 * change logs; merge_apply.c: writes to the data tables; push.c: store_push itself, exactly-once
 * and the replies). Not API.
 */
#ifndef OUTPOST_MERGE_INTERNAL_H
#define OUTPOST_MERGE_INTERNAL_H

#include "store_rows.h"

/* Why a push is refused: which row, for what. */
typedef struct push_reject {
    store_table *t; /* NULL when the table is unknown */
    const char *table;
    uint32_t n_pk;
    proto_value *pk; /* NULL when the key could not be read */
    uint32_t code;
    const char *message;
    const proto_change *change;
} push_reject;

/* A REJECT lists at most this many refused rows (the entry is refused whole whatever the
 * number): one device's hostile entry of millions of refused rows must not cost the worker
 * quadratic time, the store its disk, or the device a REJECT larger than it can read. */
#define MERGE_MAX_REJECT_ROWS 256u


/* New rows written by one multi-row INSERT (at most this many) */
#define MERGE_INSERT_BATCH 32u

typedef struct push_ctx {
    store *st;
    const store_device *dev;
    store_device_rec rec;
    const proto_push *push;
    uint64_t now_ms;
    uint64_t hlc;
    bool clamped;
    int64_t server_seq;
    store_arena arena;
    uint32_t n_rows;
    push_reject *rejects;
    uint32_t n_rejects;
    uint32_t n_rejects_more; /* refused rows past MERGE_MAX_REJECT_ROWS or the byte budget:
                              * counted, not listed */
    size_t reject_bytes;     /* encoded size bound of the rows listed so far */
    proto_conflict *conflicts;
    uint32_t n_conflicts;
    char (*teams)[64];
    uint32_t n_teams;
    store_bytes key_buf; /* the current change's encoded key, reused change after change */
    proto_value *scratch; /* the current change's key and values on the fast insert path */
    uint32_t n_scratch;
    bool refusing;        /* conflict rows written now record a refusal: not reversible */
    /* New rows of one table waiting for their multi-row INSERT (merge_apply.c) */
    store_table *pending_t;
    const proto_change *pending[MERGE_INSERT_BATCH];
    const proto_value *pending_vals[MERGE_INSERT_BATCH]; /* PostgreSQL: the checked rows */
    uint32_t n_pending;
    /* For the device's echo run (store_echo_note): server_seq before the entry's first change;
     * set when a change left its row echoed to this device (altered, another device's row
     * written: echo_since is this entry) or not its own; the largest echo_since of the rest. */
    int64_t seq_base;
    bool echo_broken;
    uint64_t echo_max;
} push_ctx;

/* The most bytes the listed part of an ACK (its conflicts) or a REJECT (its rows, then its
 * server rows) may take: 512 KiB, or half the message limit when that is smaller, so that the
 * server never sends a device more than `msg` (docs/protocol.md 8.5). */
size_t merge_reply_budget(const push_ctx *c);

/* One side of a decision: which device wrote, with which clock. */
typedef struct conflict_side {
    int64_t device;
    uint64_t hlc;
} conflict_side;

extern const proto_value merge_undef_value; /* a value not carried */
extern const proto_value merge_null_value;

/* The pushing device as a side of a decision. */
conflict_side merge_pusher(const push_ctx *c);

/* Records why a change is refused; from then on the push is only checked, not applied. */
int merge_reject(push_ctx *c, store_table *t, const char *table, const proto_value *pk,
                 uint32_t code, const char *message, const proto_change *change);

/* Writes one decision to the conflict log. against_pusher: the pushing device lost, so the
 * decision also goes into its ACK. */
int merge_log_conflict(push_ctx *c, const store_table *t, const store_bytes *pk_blob,
                       const proto_value *pk, int32_t col, proto_conflict_kind kind,
                       const proto_value *losing, const proto_value *winning, conflict_side loser,
                       conflict_side winner, bool against_pusher);

/* Appends one change-log entry (and a scope exit when the row left a scope value); prev_seq:
 * the row's previous entry, 0 for its first. */
int merge_log_change_entry(push_ctx *c, const store_table *t, const store_bytes *pk_blob,
                           proto_op op, bool altered, const proto_value *scope_old,
                           const proto_value *scope_new, uint64_t prev_seq);

/* Appends one change-log entry and updates the row's merge state to it. */
int merge_log_change(push_ctx *c, const store_table *t, const store_bytes *pk_blob, row_meta *meta,
                     proto_op op, bool altered, const proto_value *scope_old,
                     const proto_value *scope_new);

/* Writes to the data table. A constraint failure becomes a refusal (merge_reject) and returns
 * 0; anything else fails the push. */
int merge_apply_insert(push_ctx *c, store_table *t, const proto_value *vals, uint32_t n,
                       const proto_value *pk, const proto_change *ch);
/* INSERT of a new key's whole row (ch an INSERT carrying columns 0..n-1 in order, which stays
 * in memory until the push ends): queued and written MERGE_INSERT_BATCH rows per statement
 * (on SQLite unless the batch would take more parameters than SQLite allows; on PostgreSQL
 * after the row check), otherwise at once. A queued row's refusal is recorded when the queue
 * is written. */
int merge_apply_insert_new(push_ctx *c, store_table *t, const proto_value *vals, uint32_t n,
                           const proto_value *pk, const proto_change *ch);
/* Writes the queued new rows. Called before anything reads or writes a data table other than
 * by merge_apply_insert_new, before a refusal is recorded, and at the end of the merge. */
int merge_apply_flush(push_ctx *c);
int merge_apply_update(push_ctx *c, const store_table *t, const bool *set, const proto_value *vals,
                       const proto_value *pk, const proto_change *ch);
int merge_apply_delete(push_ctx *c, store_table *t, const proto_value *pk, const proto_change *ch);

/* Validates, scope-checks and merges one change (merge.c). */
int merge_change(push_ctx *c, store_table *t, uint32_t n_columns, const proto_change *ch);

#endif /* OUTPOST_MERGE_INTERNAL_H */
