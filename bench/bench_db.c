/*
 * The database seam's write throughput on both engines, beside raw libpq on the same rows:
 * N contact-sized rows inserted in one write transaction
 *   - seam_sqlite_insert:   db_prepare once, bind/step/reset per row, SQLite (WAL)
 *   - seam_pg_insert:       the same code on PostgreSQL 15 (one PQexecParams per row)
 *   - raw_pg_insert:        libpq, one named prepared statement, PQexecPrepared per row
 *   - raw_pg_copy:          libpq COPY FROM STDIN of the same rows
 * rows per second, median of BENCH_RUNS after BENCH_WARMUP. The PostgreSQL server is a private
 * one made for the run (tests/unit/pg_cluster.c: fsync off, Unix socket), so SQLite runs with
 * synchronous=OFF too: both figures are the engines' and the seam's work, not the disk's.
 * The merge engine itself (bench_merge) does not run on PostgreSQL yet.
 */
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_time.h"
#include "db.h"
#include "unit/pg_cluster.h"

enum { N_ROWS = 5000 };

static const char ddl[] =
    "DROP TABLE IF EXISTS contacts; CREATE TABLE contacts(id TEXT PRIMARY KEY, team TEXT NOT NULL,"
    " name TEXT, age INTEGER, notes TEXT, risk INTEGER, updated INTEGER)";

static void row_text(int i, char id[40], char name[32], char notes[80])
{
    snprintf(id, 40, "00000000-0000-4000-8000-%012d", i);
    snprintf(name, 32, "Person %d", i);
    snprintf(notes, 80, "visited on day %d, follow up in two weeks with the family", i % 365);
}

static int seam_insert(db_conn *d)
{
    db_stmt *s = NULL;
    int rc = db_exec(d, ddl);
    if (rc == 0)
        rc = db_begin(d, true);
    if (rc == 0)
        rc = db_prepare(d, "INSERT INTO contacts VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)", &s);
    for (int i = 0; rc == 0 && i < N_ROWS; i++) {
        char id[40], name[32], notes[80];
        row_text(i, id, name, notes);
        db_bind_text(s, 1, id);
        db_bind_text(s, 2, i % 2 ? "north" : "south");
        db_bind_text(s, 3, name);
        db_bind_int64(s, 4, 20 + i % 60);
        db_bind_text(s, 5, notes);
        db_bind_int64(s, 6, i % 3);
        db_bind_int64(s, 7, 1767225600000 + i);
        rc = db_step(s) == DB_DONE ? db_reset(s) : -1;
    }
    db_finalize(s);
    if (rc == 0)
        return db_commit(d);
    db_rollback(d);
    return rc;
}

static int pg_ok(PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN;
    PQclear(r);
    return ok ? 0 : -1;
}

static int raw_insert(PGconn *c)
{
    int rc = pg_ok(PQexec(c, "DROP TABLE IF EXISTS contacts; CREATE TABLE contacts(id TEXT PRIMARY"
                             " KEY, team TEXT NOT NULL, name TEXT, age BIGINT, notes TEXT,"
                             " risk BIGINT, updated BIGINT)"));
    if (rc == 0)
        rc = pg_ok(PQexec(c, "BEGIN"));
    if (rc == 0)
        rc = pg_ok(PQprepare(c, "ins", "INSERT INTO contacts VALUES($1,$2,$3,$4,$5,$6,$7)", 7,
                             NULL));
    for (int i = 0; rc == 0 && i < N_ROWS; i++) {
        char id[40], name[32], notes[80], age[8], risk[4], updated[24];
        row_text(i, id, name, notes);
        snprintf(age, sizeof age, "%d", 20 + i % 60);
        snprintf(risk, sizeof risk, "%d", i % 3);
        snprintf(updated, sizeof updated, "%lld", 1767225600000LL + i);
        const char *v[] = {id, i % 2 ? "north" : "south", name, age, notes, risk, updated};
        rc = pg_ok(PQexecPrepared(c, "ins", 7, v, NULL, NULL, 0));
    }
    if (rc == 0)
        rc = pg_ok(PQexec(c, "COMMIT"));
    if (rc == 0)
        rc = pg_ok(PQexec(c, "DEALLOCATE ins"));
    return rc;
}

static int raw_copy(PGconn *c)
{
    int rc = pg_ok(PQexec(c, "DROP TABLE IF EXISTS contacts; CREATE TABLE contacts(id TEXT PRIMARY"
                             " KEY, team TEXT NOT NULL, name TEXT, age BIGINT, notes TEXT,"
                             " risk BIGINT, updated BIGINT)"));
    if (rc == 0)
        rc = pg_ok(PQexec(c, "COPY contacts FROM STDIN"));
    for (int i = 0; rc == 0 && i < N_ROWS; i++) {
        char id[40], name[32], notes[80], line[256];
        row_text(i, id, name, notes);
        int n = snprintf(line, sizeof line, "%s\t%s\t%s\t%d\t%s\t%d\t%lld\n", id,
                         i % 2 ? "north" : "south", name, 20 + i % 60, notes, i % 3,
                         1767225600000LL + i);
        rc = PQputCopyData(c, line, n) == 1 ? 0 : -1;
    }
    if (rc == 0)
        rc = PQputCopyEnd(c, NULL) == 1 ? 0 : -1;
    if (rc == 0)
        rc = pg_ok(PQgetResult(c));
    return rc;
}

typedef int (*run_fn)(void *arg);

static int run_seam(void *arg)
{
    return seam_insert(arg);
}

static int run_raw_insert(void *arg)
{
    return raw_insert(arg);
}

static int run_raw_copy(void *arg)
{
    return raw_copy(arg);
}

/* Rows per second of fn, as bench_time.h's statistic; -1 runs when it failed. */
static int measure(const char *name, run_fn fn, void *arg)
{
    double samples[BENCH_RUNS];
    for (int i = 0; i < BENCH_WARMUP + BENCH_RUNS; i++) {
        double t0 = bench_now_s();
        if (fn(arg) != 0) {
            fprintf(stderr, "bench_db: %s failed\n", name);
            return -1;
        }
        if (i >= BENCH_WARMUP)
            samples[i - BENCH_WARMUP] = N_ROWS / (bench_now_s() - t0);
    }
    bench_print_stat(name, bench_stat_of(samples, BENCH_RUNS), 0);
    return 0;
}

int main(void)
{
    char dir[] = "/tmp/outpost-bench-db-XXXXXX", path[64], err[256] = "";
    sqlite3 *lite = NULL;
    db_conn *d = NULL;
    pg_cluster pg;
    int failed = 0;

    bench_print_method("bench_db");
    printf("bench_db_rows=%d\n", N_ROWS);
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(path, sizeof path, "%s/bench.db", dir);
    sqlite3_open(path, &lite);
    sqlite3_exec(lite, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF", NULL, NULL, NULL);
    db_wrap_sqlite(lite, &d);
    failed |= measure("seam_sqlite_insert_rows_per_s", run_seam, d);
    db_close(d);
    sqlite3_close(lite);
    unlink(path);
    snprintf(path, sizeof path, "%s/bench.db-wal", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/bench.db-shm", dir);
    unlink(path);
    rmdir(dir);

    if (!pg_cluster_available() || pg_cluster_start(&pg) != 0) {
        fprintf(stderr, "bench_db: no PostgreSQL 15 server (scripts/deps.sh installs it)\n");
        pg_cluster_stop(&pg);
        return 1;
    }
    if (db_open_postgresql(pg.conninfo, &d, err, sizeof err) == 0) {
        failed |= measure("seam_pg_insert_rows_per_s", run_seam, d);
        db_close(d);
    } else {
        fprintf(stderr, "bench_db: %s\n", err);
        failed = 1;
    }
    PGconn *c = PQconnectdb(pg.conninfo);
    if (PQstatus(c) == CONNECTION_OK) {
        failed |= measure("raw_pg_insert_rows_per_s", run_raw_insert, c);
        failed |= measure("raw_pg_copy_rows_per_s", run_raw_copy, c);
    } else {
        failed = 1;
    }
    PQfinish(c);
    pg_cluster_stop(&pg);
    return failed ? 1 : 0;
}
