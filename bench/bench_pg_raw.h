/* Raw libpq INSERT and COPY of a benchmark's rows: the ceilings the PostgreSQL figures are
 * compared with (bench_db beside the seam and the merge, bench_sync beside the end-to-end push).
 * The rows come from the caller as text, so every benchmark sends its own rows. */
#ifndef OUTPOST_BENCH_PG_RAW_H
#define OUTPOST_BENCH_PG_RAW_H

#include <stdint.h>

#include <libpq-fe.h>

#define BENCH_PG_MAX_COLS 16
#define BENCH_PG_ROW_SCRATCH 512

typedef struct bench_pg_rows {
    const char *table;      /* its name, as in create_sql */
    const char *create_sql; /* PostgreSQL DDL of the table, run after DROP TABLE IF EXISTS */
    int n_cols;             /* at most BENCH_PG_MAX_COLS, in the table's column order */
    uint32_t n_rows;
    uint32_t tx_rows; /* INSERT's rows per transaction (n_rows: one transaction) */
    /* Row i's values as text into v (NULL: SQL NULL); they may point into scratch
     * (BENCH_PG_ROW_SCRATCH bytes) or at storage that outlives the call. */
    void (*row)(uint32_t i, const char **v, char *scratch, void *arg);
    void *arg;
} bench_pg_rows;

/* The table made afresh, then the rows by one named prepared statement, PQexecPrepared per row,
 * in transactions of tx_rows. 0, or -1 with libpq's message on stderr. */
int bench_pg_raw_insert(PGconn *c, const bench_pg_rows *r);

/* The table made afresh, then the rows by one COPY FROM STDIN (text format). 0 or -1. */
int bench_pg_raw_copy(PGconn *c, const bench_pg_rows *r);

#endif
