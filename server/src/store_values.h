/*
 * Values between the wire (proto_value), SQLite statements and the store's own blobs.
 *
 * The blob codec turns a list of values into bytes that compare equal exactly when the values
 * are equal: it is the identity of a row (its primary key) in the store's metadata tables and
 * the frozen content of a deleted row. Format, per value: one type byte (proto_value_type), then
 * INT and REAL as 8 bytes big-endian, TEXT and BLOB as a 4-byte big-endian length and the bytes.
 */
#ifndef OUTPOST_STORE_VALUES_H
#define OUTPOST_STORE_VALUES_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "outpost/proto.h"
#include "store_arena.h"

typedef struct store_bytes {
    uint8_t *data;
    size_t len;
    size_t cap;
} store_bytes;

void store_bytes_free(store_bytes *b); /* NULL is a no-op */

/* Appends the encoding of n values to out (not cleared first). 0 or STORE_ENOMEM. */
int store_values_encode(const proto_value *vals, uint32_t n, store_bytes *out);

/* Decodes up to max values; text and blob payloads are copied into arena. *out_n receives
 * how many values the blob held (at most max). 0, STORE_ENOMEM, or STORE_EIO when the blob is
 * not a valid encoding (a corrupt store). */
int store_values_decode(store_arena *arena, const uint8_t *data, size_t n_bytes, proto_value *out,
                        uint32_t max, uint32_t *out_n);

/* Binds a value to parameter idx (1-based). PROTO_UNDEF binds NULL. Returns a SQLite code. */
int store_value_bind(sqlite3_stmt *stmt, int idx, const proto_value *val);

/* Reads result column col into out, copying text and blob into arena. 0 or STORE_ENOMEM. */
int store_value_column(store_arena *arena, sqlite3_stmt *stmt, int col, proto_value *out);

/* A value of any type through the database seam, into or out of a column declared BLOB (SQLite:
 * no affinity, the value is kept as it is, with its type; PostgreSQL: BYTEA holding the value's
 * canonical encoding above, so equal values are equal columns and WHERE col = ?1 still finds
 * them). NULL and UNDEF bind SQL NULL, which reads back as NULL. 0 or a STORE_E* code. */
int store_value_bind_any(db_stmt *stmt, int idx, const proto_value *val);
int store_value_column_any(store_arena *arena, db_stmt *stmt, int col, proto_value *out);

/* Exact equality (type and value, REAL bitwise); UNDEF equals only UNDEF. */
int store_value_equal(const proto_value *a, const proto_value *b);

/* An upper bound of the MessagePack encoding of one value, for page sizing. */
size_t store_value_encoded_max(const proto_value *val);

/* True when val is TEXT equal to the NUL-terminated s. */
int store_value_is_text(const proto_value *val, const char *s);

#endif /* OUTPOST_STORE_VALUES_H */
