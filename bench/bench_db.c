/*
 * The database seam's write throughput on both engines, beside raw libpq on the same rows:
 * N contact-sized rows inserted in one write transaction
 *   - seam_sqlite_insert:   db_prepare once, bind/step/reset per row, SQLite (WAL)
 *   - seam_pg_insert:       the same code on PostgreSQL 15 (one PQexecParams per row)
 *   - raw_pg_insert:        libpq, one named prepared statement, PQexecPrepared per row
 *   - raw_pg_copy:          libpq COPY FROM STDIN of the same rows (both bench_pg_raw.c)
 *   - store_merge_pg:       the same rows as one device push merged by store_push into a store
 *                           on PostgreSQL (validation, row check, merge state, change log,
 *                           exactly-once record, commit), in a fresh database each run; only
 *                           store_push is timed
 * rows per second, median of BENCH_RUNS after BENCH_WARMUP. The PostgreSQL server is a private
 * one made for the run (tests/unit/pg_cluster.c: fsync off, Unix socket), so SQLite runs with
 * synchronous=OFF too: both figures are the engines' and the seam's work, not the disk's.
 * bench_merge compares the merge with raw SQLite.
 */
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_pg_raw.h"
#include "bench_time.h"
#include "db.h"
#include "store.h"
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

/* Row i for the raw libpq ceilings (bench_pg_raw.h), the same values as seam_insert's. */
static void raw_row(uint32_t i, const char **v, char *scratch, void *arg)
{
    char *id = scratch, *name = id + 40, *notes = name + 32, *age = notes + 80, *risk = age + 8,
         *updated = risk + 4;
    (void)arg;
    row_text((int)i, id, name, notes);
    snprintf(age, 8, "%u", 20 + i % 60);
    snprintf(risk, 4, "%u", i % 3);
    snprintf(updated, 24, "%lld", 1767225600000LL + i);
    const char *row[] = {id, i % 2 ? "north" : "south", name, age, notes, risk, updated};
    memcpy(v, row, sizeof row);
}

static const bench_pg_rows raw_rows = {
    .table = "contacts",
    .create_sql = "CREATE TABLE contacts(id TEXT PRIMARY KEY, team TEXT NOT NULL, name TEXT,"
                  " age BIGINT, notes TEXT, risk BIGINT, updated BIGINT)",
    .n_cols = 7,
    .n_rows = N_ROWS,
    .tx_rows = N_ROWS,
    .row = raw_row,
};

/* The merge on PostgreSQL: a fresh database, a store with the contacts schema, one device. */
typedef struct merge_run {
    const pg_cluster *pg;
    db_conn *admin;
    int n;
    double push_s; /* store_push's time in the last run */
    double view_all_ms, view_one_ms; /* the dashboard's record view after it (below) */
} merge_run;

static int count_record(const store_dash_record *rec, void *user_data)
{
    (void)rec;
    (*(uint32_t *)user_data)++;
    return 0;
}

/* The dashboard's record view of team north (half the rows) on the merged store: its first page
 * unfiltered, and filtered to one record by a column's value (a linked record), which PostgreSQL
 * answers in SQL rather than by reading every row of the team. */
static int view_pg(store *st, merge_run *m)
{
    static const char north[1][64] = {"north"};
    store_dash_query all = {.table = "contacts"};
    store_dash_query one = {.table = "contacts", .match_col = "name", .match_value = "Person 7"};
    uint32_t n_all = 0, n_one = 0;
    double t0 = bench_now_s();
    int rc = store_dash_records(st, north, 1, &all, count_record, &n_all);
    double t1 = bench_now_s();
    if (rc == 0)
        rc = store_dash_records(st, north, 1, &one, count_record, &n_one);
    m->view_all_ms = (t1 - t0) * 1000;
    m->view_one_ms = (bench_now_s() - t1) * 1000;
    return rc == 0 && n_all > 0 && n_one == 1 ? 0 : -1;
}

static int merge_pg(merge_run *m)
{
    static const char schema[] =
        "CREATE TABLE contacts(id TEXT PRIMARY KEY NOT NULL, team TEXT NOT NULL, name TEXT,"
        " age INTEGER, notes TEXT, risk INTEGER, updated INTEGER);";
    char sql[64], conninfo[600], err[256] = "", code[STORE_CODE_SIZE], device_id[40];
    uint8_t secret[32];
    const char *teams[] = {"north", "south"};
    store *st = NULL;
    store_device dev;
    memset(&dev, 0, sizeof dev);
    snprintf(sql, sizeof sql, "CREATE DATABASE merge_%d", ++m->n);
    if (db_exec(m->admin, sql) != 0)
        return -1;
    snprintf(conninfo, sizeof conninfo, "%s dbname=merge_%d", m->pg->conninfo, m->n);
    if (store_open_postgresql(conninfo, true, &st, err, sizeof err) != 0) {
        fprintf(stderr, "bench_db: %s\n", err);
        return -1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    int rc = store_init_schema(st, schema, "contacts scope=team policy=hlc\n");
    if (rc == 0)
        rc = store_team_add(st, "north", NULL);
    if (rc == 0)
        rc = store_team_add(st, "south", NULL);
    if (rc == 0)
        rc = store_worker_add(st, "ana", teams, 2);
    if (rc == 0)
        rc = store_enroll_code_create(st, "ana", now_ms, 3600000, code);
    if (rc == 0)
        rc = store_device_enroll(st, code, "bench", device_id, secret);
    if (rc == 0)
        rc = store_device_auth(st, device_id, secret, &dev);
    proto_change *changes = calloc(N_ROWS, sizeof *changes);
    proto_col *cols = calloc((size_t)N_ROWS * 7, sizeof *cols);
    char(*texts)[3][80] = calloc(N_ROWS, sizeof *texts);
    if (changes == NULL || cols == NULL || texts == NULL)
        rc = -1;
    for (int i = 0; rc == 0 && i < N_ROWS; i++) {
        row_text(i, texts[i][0], texts[i][1], texts[i][2]);
        const char *t[4] = {texts[i][0], i % 2 ? "north" : "south", texts[i][1], texts[i][2]};
        int64_t n[3] = {20 + i % 60, i % 3, 1767225600000 + i};
        proto_col *c = &cols[(size_t)i * 7];
        for (uint32_t k = 0; k < 7; k++) {
            c[k].idx = k;
            c[k].old_val.type = PROTO_UNDEF;
            bool is_text = k < 3 || k == 4;
            c[k].new_val.type = is_text ? PROTO_TEXT : PROTO_INT;
            if (is_text) {
                const char *v = t[k < 3 ? k : 3];
                c[k].new_val.u.b.p = (const uint8_t *)v;
                c[k].new_val.u.b.n = (uint32_t)strlen(v);
            } else {
                c[k].new_val.u.i = n[k == 3 ? 0 : k - 4];
            }
        }
        changes[i].op = PROTO_OP_INSERT;
        changes[i].n_cols = 7;
        changes[i].cols = c;
    }
    proto_table_changes table = {
        .table = "contacts", .n_columns = 7, .n_changes = N_ROWS, .changes = changes};
    proto_push push;
    memset(&push, 0, sizeof push);
    push.seq = 1;
    push.hlc = PROTO_HLC_MAKE(now_ms, 0);
    push.schema_version = 1;
    push.n_tables = 1;
    push.tables = &table;
    proto_buf reply = {0};
    store_push_info info;
    memset(&info, 0, sizeof info);
    if (rc == 0) {
        double t0 = bench_now_s();
        rc = store_push(st, &dev, &push, now_ms + 1000, &reply, &info);
        m->push_s = bench_now_s() - t0;
        if (rc == 0 && (info.n_rows != N_ROWS || info.rejected))
            rc = -1;
    }
    if (rc == 0)
        rc = view_pg(st, m);
    if (rc != 0)
        fprintf(stderr, "bench_db: merge on PostgreSQL: %s\n", store_errmsg(st));
    free(info.teams_touched);
    proto_buf_free(&reply);
    free(changes);
    free(cols);
    free(texts);
    store_device_clear(&dev);
    store_close(st);
    snprintf(sql, sizeof sql, "DROP DATABASE merge_%d", m->n);
    db_exec(m->admin, sql);
    return rc;
}

/* Rows per second of store_push alone (setup is not timed). */
static double measure_merge(merge_run *m)
{
    double samples[BENCH_RUNS], all[BENCH_RUNS], one[BENCH_RUNS];
    for (int i = 0; i < BENCH_WARMUP + BENCH_RUNS; i++) {
        if (merge_pg(m) != 0)
            return -1;
        if (i >= BENCH_WARMUP) {
            samples[i - BENCH_WARMUP] = N_ROWS / m->push_s;
            all[i - BENCH_WARMUP] = m->view_all_ms;
            one[i - BENCH_WARMUP] = m->view_one_ms;
        }
    }
    bench_stat st = bench_stat_of(samples, BENCH_RUNS);
    bench_print_stat("store_merge_pg_rows_per_s", st, 0);
    bench_print_stat("dash_pg_view_first_page_ms", bench_stat_of(all, BENCH_RUNS), 2);
    bench_print_stat("dash_pg_view_one_linked_record_ms", bench_stat_of(one, BENCH_RUNS), 2);
    return st.median;
}

typedef int (*run_fn)(void *arg);

static int run_seam(void *arg)
{
    return seam_insert(arg);
}

static int run_raw_insert(void *arg)
{
    return bench_pg_raw_insert(arg, &raw_rows);
}

static int run_raw_copy(void *arg)
{
    return bench_pg_raw_copy(arg, &raw_rows);
}

/* Rows per second of fn, as bench_time.h's statistic; -1 runs when it failed. */
static int measure(const char *name, run_fn fn, void *arg, double *out_median)
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
    bench_stat st = bench_stat_of(samples, BENCH_RUNS);
    bench_print_stat(name, st, 0);
    if (out_median != NULL)
        *out_median = st.median;
    return 0;
}

int main(void)
{
    char dir[] = "/tmp/outpost-bench-db-XXXXXX", path[64], err[256] = "";
    sqlite3 *lite = NULL;
    db_conn *d = NULL;
    pg_cluster pg = {.up = false}; /* pg_cluster_stop of one never started is a no-op */
    int failed = 0;
    double merge_median = -1;

    bench_print_method("bench_db");
    printf("bench_db_rows=%d\n", N_ROWS);
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(path, sizeof path, "%s/bench.db", dir);
    sqlite3_open(path, &lite);
    sqlite3_exec(lite, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF", NULL, NULL, NULL);
    db_wrap_sqlite(lite, &d);
    failed |= measure("seam_sqlite_insert_rows_per_s", run_seam, d, NULL);
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
        failed |= measure("seam_pg_insert_rows_per_s", run_seam, d, NULL);
        merge_run m = {.pg = &pg, .admin = d};
        merge_median = measure_merge(&m);
        failed |= merge_median < 0;
        db_close(d);
    } else {
        fprintf(stderr, "bench_db: %s\n", err);
        failed = 1;
    }
    PGconn *c = PQconnectdb(pg.conninfo);
    if (PQstatus(c) == CONNECTION_OK) {
        double raw = 0, copy = 0;
        failed |= measure("raw_pg_insert_rows_per_s", run_raw_insert, c, &raw);
        failed |= measure("raw_pg_copy_rows_per_s", run_raw_copy, c, &copy);
        if (merge_median > 0 && raw > 0 && copy > 0) {
            printf("merge_pg_vs_raw_insert_ratio=%.2f\n", merge_median / raw);
            printf("merge_pg_vs_raw_copy_ratio=%.2f\n", merge_median / copy);
        }
    } else {
        failed = 1;
    }
    PQfinish(c);
    pg_cluster_stop(&pg);
    return failed ? 1 : 0;
}
