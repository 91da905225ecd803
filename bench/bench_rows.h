/* The ten-column contacts table the liboutpost benchmarks write, the same rows for every run
 * (built before any clock starts), and the proto_value helpers behind them. */
#ifndef OUTPOST_BENCH_ROWS_H
#define OUTPOST_BENCH_ROWS_H

#include <stdint.h>

#include "outpost.h"
#include "outpost_engine.h"

#define BENCH_CONTACT_COLS 10

extern const char *bench_contact_cols[BENCH_CONTACT_COLS];
extern uint32_t bench_contact_pk[1];
extern const char bench_contact_create_sql[];
extern const char bench_contact_insert_sql[];

typedef struct bench_contact_row {
    char id[40];
    char name[24];
    proto_value v[BENCH_CONTACT_COLS];   /* for rows pages and plain SQLite */
    outpost_value ov[BENCH_CONTACT_COLS]; /* the same values, for outpost_exec() */
} bench_contact_row;

/* n contact rows, the same every time. Out of memory, prints "prog: out of memory" and exits 1.
 * Free with free(). */
bench_contact_row *bench_contact_rows_make(const char *prog, uint32_t n);

/* The contacts table as a one-table schema (t is filled and becomes schema->tables). */
void bench_contact_schema(proto_schema_table *t, proto_schema *schema);

proto_value bench_text(const char *s);
proto_value bench_integer(int64_t i);

/* Binds n values (TEXT or INT) to parameters 1..n of stmt, text as SQLITE_STATIC. */
void bench_bind_values(sqlite3_stmt *stmt, const proto_value *v, int n);

#endif
