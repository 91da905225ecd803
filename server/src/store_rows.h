/*
 * Rows as the merge engine and pull see them: a row's merge state (_outpost_rows), its current
 * values in the data table, and a builder for the per-table row lists of ROWS and REJECT.
 */
#ifndef OUTPOST_STORE_ROWS_H
#define OUTPOST_STORE_ROWS_H

#include "store_arena.h"
#include "store_internal.h"
#include "store_values.h"

/* Per-column version: the HLC and device (row number) of the column's last writer. A row has
 * a base version (set when it is inserted) and per-column entries of 12 bytes (8 HLC, 4 device,
 * big-endian) only once columns are written separately; a column without an entry has the base
 * version. A freshly inserted row so costs no per-column bytes at all. */
enum { ROW_VERSION_BYTES = 12 };

typedef struct row_meta {
    bool exists;
    bool deleted;
    uint64_t seq;
    proto_value scope; /* PROTO_NULL when unknown */
    uint64_t base_hlc;
    int64_t base_device;
    uint32_t n_cols;   /* entries in versions */
    uint8_t *versions; /* arena, n_cols * ROW_VERSION_BYTES */
    uint64_t del_hlc;
    int64_t del_device;
    const uint8_t *tomb; /* arena: encoded values of the row when it was deleted */
    size_t tomb_len;
    int64_t echo_device; /* 0 = none */
    uint64_t echo_since;
} row_meta;

/* Reads the merge state of (table, pk). out->exists is false when the store never saw the row. */
int row_meta_get(store *st, int64_t table_id, const store_bytes *pk, store_arena *arena,
                 row_meta *out);
int row_meta_put(store *st, int64_t table_id, const store_bytes *pk, const row_meta *meta);

/* Adds the merge state of a row the store has never seen; *out_added is false (and nothing is
 * written) when the row is known already. The fast path for inserts: one statement instead of
 * a lookup and a write, or none when the key sorts after every key of the table: then the state
 * is queued and written with others (store_new_rows_flush; row_meta_get, row_meta_put and
 * store_commit write the queue first). */
int row_meta_add(store *st, int64_t table_id, const store_bytes *pk, const row_meta *meta,
                 bool *out_added);

/* Makes meta->versions hold n_cols entries (arena copy, missing ones the base version). */
int row_versions_resize(store_arena *arena, row_meta *meta, uint32_t n_cols);
void row_version_get(const row_meta *meta, uint32_t col, uint64_t *out_hlc, int64_t *out_device);
void row_version_set(row_meta *meta, uint32_t col, uint64_t hlc, int64_t device);

/* Reads the current values of a live row (t->n_cols values into out). *out_found false when
 * the data table has no such row. */
int row_read(store *st, store_table *t, const proto_value *pk, store_arena *arena, proto_value *out,
             bool *out_found);

/* Reads up to ROW_READ_BATCH live rows of t at once: keys holds n keys (t->n_pk values each),
 * row i's t->n_cols values go to out + i * t->n_cols and found[i] says whether the data table
 * has it. On SQLite one statement reads them all (the same key twice is read twice); on
 * PostgreSQL row by row (row_read). */
enum { ROW_READ_BATCH = 32 };
int row_read_batch(store *st, store_table *t, uint32_t n, const proto_value *keys,
                   store_arena *arena, proto_value *out, bool *found);

/* True when the scope value is one of the device's teams (text, exact). */
bool row_scope_allowed(const store_device *dev, const proto_value *scope);

/* Rows grouped by table, for ROWS and REJECT messages. Values stay owned by whoever made them
 * (an arena); the builder owns only its arrays. */
typedef struct rowset_table {
    const store_table *t;
    uint32_t n_rows, cap_rows;
    proto_value *rows;
    uint32_t n_deleted, cap_deleted;
    proto_value *deleted;
    uint32_t n_removed, cap_removed;
    proto_value *removed;
} rowset_table;

typedef struct rowset {
    uint32_t n_tables;
    rowset_table *tables;
    proto_table_rows *out; /* built by rowset_export */
    size_t encoded_max;    /* upper bound of the encoded size so far */
} rowset;

enum rowset_kind { ROWSET_DELETED, ROWSET_REMOVED };

/* Adds a full row (t->n_cols values) or a key (t->n_pk values). 0 or STORE_ENOMEM. */
int rowset_add_row(rowset *rs, const store_table *t, const proto_value *vals);
int rowset_add_key(rowset *rs, const store_table *t, enum rowset_kind kind, const proto_value *pk);

/* Upper bound of the encoded size a row or key would add. */
size_t rowset_row_cost(const store_table *t, const proto_value *vals, uint32_t n);

/* A ROWS message's own fields (type, cursor, more) beyond its tables, generously. */
enum { ROWSET_MESSAGE_OVERHEAD = 64 };

/* The largest rowset_row_cost of a row of t that a ROWS page of at most max_bytes can carry
 * alone (the bound the merge keeps every row within). */
size_t rowset_row_room(const store_table *t, size_t max_bytes);

/* Fills rs->out (one entry per table) for a proto_rows or proto_reject. */
int rowset_export(rowset *rs);
void rowset_free(rowset *rs); /* NULL is a no-op */

#endif /* OUTPOST_STORE_ROWS_H */
