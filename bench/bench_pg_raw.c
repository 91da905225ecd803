#include "bench_pg_raw.h"

#include <stdio.h>
#include <string.h>

static int pg_ok(PGconn *c, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN;

    if (!ok)
        fprintf(stderr, "bench_pg_raw: %s", PQerrorMessage(c));
    PQclear(res);
    return ok ? 0 : -1;
}

static int table_fresh(PGconn *c, const bench_pg_rows *r)
{
    char sql[128];

    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", r->table);
    if (pg_ok(c, PQexec(c, sql)) != 0)
        return -1;
    return pg_ok(c, PQexec(c, r->create_sql));
}

int bench_pg_raw_insert(PGconn *c, const bench_pg_rows *r)
{
    char sql[512], scratch[BENCH_PG_ROW_SCRATCH];
    const char *v[BENCH_PG_MAX_COLS];
    size_t n;
    int rc;

    if (r->n_cols < 1 || r->n_cols > BENCH_PG_MAX_COLS || r->tx_rows == 0)
        return -1;
    n = (size_t)snprintf(sql, sizeof sql, "INSERT INTO %s VALUES(", r->table);
    for (int k = 1; k <= r->n_cols && n < sizeof sql; k++)
        n += (size_t)snprintf(sql + n, sizeof sql - n, "%s$%d", k > 1 ? "," : "", k);
    if (n + 2 > sizeof sql)
        return -1;
    strcpy(sql + n, ")");
    rc = table_fresh(c, r);
    if (rc == 0)
        rc = pg_ok(c, PQprepare(c, "bench_ins", sql, r->n_cols, NULL));
    for (uint32_t i = 0; rc == 0 && i < r->n_rows; i++) {
        if (i % r->tx_rows == 0)
            rc = pg_ok(c, PQexec(c, "BEGIN"));
        r->row(i, v, scratch, r->arg);
        if (rc == 0)
            rc = pg_ok(c, PQexecPrepared(c, "bench_ins", r->n_cols, v, NULL, NULL, 0));
        if (rc == 0 && ((i + 1) % r->tx_rows == 0 || i + 1 == r->n_rows))
            rc = pg_ok(c, PQexec(c, "COMMIT"));
    }
    if (rc != 0)
        PQclear(PQexec(c, "ROLLBACK"));
    PQclear(PQexec(c, "DEALLOCATE bench_ins"));
    return rc;
}

/* Appends s to line in COPY's text format (backslash, tab, newline and CR escaped; NULL as \N).
 * The new length, or -1 when it does not fit. */
static int copy_field(char *line, int n, int size, const char *s)
{
    if (s == NULL) {
        if (n + 2 >= size)
            return -1;
        memcpy(line + n, "\\N", 2);
        return n + 2;
    }
    for (; *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '\t' ? "\\t" : *s == '\n' ? "\\n"
                        : *s == '\r' ? "\\r" : NULL;
        int len = esc ? 2 : 1;
        if (n + len >= size)
            return -1;
        memcpy(line + n, esc ? esc : s, (size_t)len);
        n += len;
    }
    return n;
}

int bench_pg_raw_copy(PGconn *c, const bench_pg_rows *r)
{
    char sql[160], scratch[BENCH_PG_ROW_SCRATCH], line[2 * BENCH_PG_ROW_SCRATCH];
    const char *v[BENCH_PG_MAX_COLS];
    int rc;

    if (r->n_cols < 1 || r->n_cols > BENCH_PG_MAX_COLS)
        return -1;
    snprintf(sql, sizeof sql, "COPY %s FROM STDIN", r->table);
    rc = table_fresh(c, r);
    if (rc == 0)
        rc = pg_ok(c, PQexec(c, sql));
    for (uint32_t i = 0; rc == 0 && i < r->n_rows; i++) {
        int n = 0;
        r->row(i, v, scratch, r->arg);
        for (int k = 0; n >= 0 && k < r->n_cols; k++) {
            if (k > 0)
                line[n++] = '\t';
            n = copy_field(line, n, (int)sizeof line - 1, v[k]);
        }
        if (n < 0) {
            fprintf(stderr, "bench_pg_raw: row %u too long for COPY\n", (unsigned)i);
            rc = -1;
            break;
        }
        line[n++] = '\n';
        rc = PQputCopyData(c, line, n) == 1 ? 0 : -1;
    }
    if (PQputCopyEnd(c, rc == 0 ? NULL : "bench aborted") != 1)
        rc = -1;
    PGresult *res;
    while ((res = PQgetResult(c)) != NULL) /* COPY's result, then the end of the command */
        if (pg_ok(c, res) != 0)
            rc = -1;
    return rc;
}
