/*
 * SQLite's rules for a synced row, for a store whose synced tables are not SQLite tables.
 *
 * On SQLite the synced table itself converts a value by its column's type affinity ('12' into
 * an INTEGER column is stored as 12), fills defaults for columns a device on an older schema
 * did not send, and refuses a row that breaks NOT NULL or a CHECK constraint. On PostgreSQL the
 * synced columns are BYTEA holding the encoded value (docs/operations.md, "PostgreSQL"), which
 * does none of that. A row check is an in-memory SQLite database holding the schema's tables,
 * always empty: the row is inserted there inside a savepoint, read back as SQLite stored it,
 * and rolled back. What comes out is exactly what the SQLite store would have kept, and a
 * refusal carries SQLite's own message. Constraints between rows (the primary key, UNIQUE
 * indexes) are not its job: the store's own table enforces them.
 */
#ifndef OUTPOST_STORE_ROWCHECK_H
#define OUTPOST_STORE_ROWCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "outpost/proto.h"
#include "store_arena.h"

typedef struct store_rowcheck store_rowcheck;

/* A row the table's constraints refuse (store_rowcheck_row); msg holds SQLite's text. */
enum { STORE_ROWCHECK_REFUSED = 1 };

/* Makes the schema's tables (the admin's schema SQL, as schema_parse read it) in a new
 * in-memory database. 0, or a STORE_E* code with SQLite's message in err. */
int store_rowcheck_open(const char *schema_sql, store_rowcheck **out_rc, char *err,
                        size_t err_size);
void store_rowcheck_close(store_rowcheck *rc); /* NULL is a no-op */

/* Runs a row of table through SQLite's rules: vals are the first n of the table's n_cols
 * columns (named cols, in the table's order); the others take their defaults. On 0, out (n_cols
 * values, text and blobs in arena) is the row as SQLite stores it. STORE_ROWCHECK_REFUSED when
 * a constraint refuses it, with SQLite's message (naming the constraint, never the value) in
 * msg; else a STORE_E* code with the message in msg. */
int store_rowcheck_row(store_rowcheck *rc, const char *table, const char *const *cols,
                       uint32_t n_cols, const proto_value *vals, uint32_t n, store_arena *arena,
                       proto_value *out, char *msg, size_t msg_size);

#endif /* OUTPOST_STORE_ROWCHECK_H */
