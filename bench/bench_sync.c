/*
 * bench_sync: end to end through liboutpost over TLS on loopback (never a timed test). Prints
 * name=value lines, each figure beside its ceiling measured in the same run.
 *
 *   push  100,000 contacts written on one device in transactions of 1,000 (outpost_exec,
 *         outpost_tx_*), then one sync (stay_connected=0) into a real outpostd: rows/s from
 *         outpost_sync_start() to the completed sync.
 *   pull  the initial pull of those 100,000 rows into a fresh device of the same team.
 *   raw   the ceilings: the same rows inserted into plain SQLite (WAL, synchronous=FULL) in
 *         100 transactions of 1,000 (like for like with the push) and in one transaction
 *         (every benchmark's common ceiling; the pull is compared with it, difference printed).
 *         Both keep SQLite's 4 KiB pages, as an application would; the store has 16 KiB pages,
 *         so raw in transactions of 1,000 with those is printed too (*_store_pages_*), not judged.
 * Each figure is the median of BENCH_RUNS runs after BENCH_WARMUP (bench_time.h).
 *   wire  WebSocket payload bytes per row each way (outpost_sync_status) beside the same rows'
 *         SQLite session changeset size (the outbox's own blobs).
 *   mem   the pulling process's peak during the pull: SQLite's heap high-water mark and the
 *         peak resident set growth (VmHWM, reset through /proc/self/clear_refs first).
 *   rtt   round trips of each sync: requests sent with nothing else unanswered (HELLO, a PUSH
 *         window that had drained, each PULL page), from outpost_sync_status.
 *
 * The rows are the ten-column outreach contact rows every liboutpost benchmark uses
 * (bench_rows.h, as bench_client and bench_replica_crypt), all in team t1. The daemon is the
 * integration tests' fixture (tests/integration/daemon_fixture.h: dev certificates, a free port)
 * with that contacts table as its schema.
 *
 * Mode "pg" (issue 17): the same push with outpostd serving a private PostgreSQL 15 cluster
 * (tests/unit/pg_cluster.c, a fresh database each run), beside raw libpq INSERT (one prepared
 * statement, transactions of 1,000 as the device wrote them) and COPY of the same rows into the
 * same cluster (bench_pg_raw.c). That cluster runs with fsync off, so the raw figures are made
 * with the same setting: the ratios are like for like, the absolute rates are not a disk's. Sessions are compressed (docs/protocol.md 1.1) unless
 * the mode is "uncompressed" (a plain replica whose engine offers no compression).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "bench_pg_raw.h"
#include "bench_rows.h"
#include "bench_time.h"
#include "daemon_fixture.h"
#include "pg_cluster.h"
#include "test_util.h"
#include "outpost.h"
#include "outpost_engine.h"

#define N_ROWS 100000u
#define BATCH 1000u
#define WAIT_MS 600000u

#define N_COLS BENCH_CONTACT_COLS
#define WIRE_BYTES_PER_ROW_TARGET 150.0

static const char policy_text[] = "contacts scope=team_id policy=hlc\n";

#define DIE(...)                                                                                    \
    do {                                                                                           \
        fprintf(stderr, "bench_sync: " __VA_ARGS__);                                               \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

typedef bench_contact_row row;

/* bench_rows' contacts, moved into the fixture's team t1 (the worker w1's). */
static row *rows_make(void)
{
    row *rows = bench_contact_rows_make("bench_sync", N_ROWS);

    for (uint32_t i = 0; i < N_ROWS; i++) {
        rows[i].v[1] = bench_text("t1");
        value_to_public(&rows[i].v[1], &rows[i].ov[1]);
    }
    return rows;
}

/* The ceiling: the same rows into plain SQLite (WAL, synchronous=FULL) in transactions of
 * tx_rows: BATCH for the push (the server applies and fsyncs one transaction per outbox entry,
 * as the device wrote them), N_ROWS for the one-transaction figure every benchmark prints.
 * page_size 0 is SQLite's default (the judged ceilings); STORE_PAGE_BYTES is the store's. */
#define STORE_PAGE_BYTES 16384u
static double raw_rows_per_s(const char *dir, const row *rows, uint32_t tx_rows,
                             uint32_t page_size)
{
    char path[400], pragmas[128];
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    double t0, t1;

    snprintf(path, sizeof path, "%s/raw.db", dir);
    outpost_files_wipe(path, NULL, 0);
    const char *wal_full = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;";
    if (page_size != 0)
        snprintf(pragmas, sizeof pragmas, "PRAGMA page_size=%u; %s", page_size, wal_full);
    else
        snprintf(pragmas, sizeof pragmas, "%s", wal_full);
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, pragmas, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, bench_contact_create_sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, bench_contact_insert_sql, -1, &ins, NULL) != SQLITE_OK)
        DIE("raw: %s", sqlite3_errmsg(db));
    t0 = bench_now_s();
    for (uint32_t i = 0; i < N_ROWS; i++) {
        if (i % tx_rows == 0)
            sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        bench_bind_values(ins, rows[i].v, N_COLS);
        if (sqlite3_step(ins) != SQLITE_DONE)
            DIE("raw insert: %s", sqlite3_errmsg(db));
        sqlite3_reset(ins);
        if ((i + 1) % tx_rows == 0 || i + 1 == N_ROWS) {
            if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
                DIE("raw commit: %s", sqlite3_errmsg(db));
        }
    }
    t1 = bench_now_s();
    sqlite3_finalize(ins);
    sqlite3_close(db);
    outpost_files_wipe(path, NULL, 0);
    return N_ROWS / (t1 - t0);
}

/* Row i of the contacts as text for the raw PostgreSQL ceilings (bench_pg_raw.h). */
static void pg_raw_row(uint32_t i, const char **v, char *scratch, void *arg)
{
    const row *r = &((const row *)arg)[i];
    size_t used = 0;

    for (int k = 0; k < N_COLS; k++) {
        char *out = scratch + used;
        size_t room = BENCH_PG_ROW_SCRATCH - used;
        int n = r->v[k].type == PROTO_TEXT
                    ? snprintf(out, room, "%.*s", (int)r->v[k].u.b.n, (const char *)r->v[k].u.b.p)
                    : snprintf(out, room, "%lld", (long long)r->v[k].u.i);
        if (n < 0 || (size_t)n >= room)
            DIE("raw pg: row %u does not fit", (unsigned)i);
        v[k] = out;
        used += (size_t)n + 1;
    }
}

/* The contacts table on PostgreSQL: INTEGER columns hold millisecond times, so BIGINT. */
static const char pg_raw_create_sql[] =
    "CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT NOT NULL, name TEXT, age BIGINT,"
    " gender TEXT, place TEXT, met_at BIGINT, risk BIGINT, notes TEXT, worker TEXT)";

/* The PostgreSQL ceilings: the same rows into the cluster's own database by INSERT in
 * transactions of BATCH (like for like with the push) or by one COPY. */
static double pg_raw_rows_per_s(PGconn *c, const row *rows, bool copy)
{
    bench_pg_rows r = {.table = "contacts",
                       .create_sql = pg_raw_create_sql,
                       .n_cols = N_COLS,
                       .n_rows = N_ROWS,
                       .tx_rows = BATCH,
                       .row = pg_raw_row,
                       .arg = (void *)rows};
    double t0 = bench_now_s();

    if ((copy ? bench_pg_raw_copy(c, &r) : bench_pg_raw_insert(c, &r)) != 0)
        DIE("raw pg %s failed", copy ? "COPY" : "INSERT");
    return N_ROWS / (bench_now_s() - t0);
}

static void pg_exec(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);

    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        DIE("%s: %s", sql, PQerrorMessage(c));
    PQclear(res);
}

/* A raw key as an app would unwrap from the platform keystore; fixed, this is a benchmark. */
static const uint8_t bench_key[OUTPOST_KEY_BYTES] = {
    0x42, 0x17, 0x99, 0x03, 0x5a, 0xc1, 0x7e, 0x22, 0x08, 0xf0, 0x61, 0x3d, 0xb4, 0x55, 0x0e, 0x91,
    0x2c, 0x6b, 0xd7, 0x48, 0x13, 0xa9, 0x70, 0xee, 0x35, 0x8f, 0x04, 0xc2, 0x5d, 0x1a, 0x66, 0xb3};

static outpost_replica *device_enroll(const daemon_fixture *fx, const char *name, bool encrypted)
{
    char path[400], err[256], code[32], url[64];
    outpost_replica *r = NULL;
    char *ca = test_read_file(fx->ca_path, NULL);
    if (ca == NULL)
        DIE("read %s", fx->ca_path);

    snprintf(path, sizeof path, "%s/%s.db", fx->dir, name);
    outpost_config cfg = {.path = path};
    if (encrypted)
        cfg.secret.key = bench_key;
    else
        cfg.no_encryption = 1;
    if (outpost_replica_open(&cfg, &r, err, sizeof err) != OUTPOST_OK)
        DIE("open %s: %s", name, err);
    if (fixture_enroll_code(fx, "w1", code) != 0)
        DIE("enroll code");
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/sync", (unsigned)fx->port);
    outpost_enroll_options eo = {.url = url, .code = code, .ca_pem = ca};
    if (outpost_enroll(r, &eo) != OUTPOST_OK)
        DIE("enroll %s: %s", name, outpost_errmsg(r));
    free(ca);
    return r;
}

/* One sync (stay_connected=0), timed from start to completion. */
static double sync_once(outpost_replica *r, bool compress, outpost_sync_status *out_status)
{
    outpost_sync_config cfg = {.stay_connected = 0, .no_compression = !compress};
    outpost_sync *sync = NULL;
    double t0 = bench_now_s(), t1;
    int rc;

    if (outpost_sync_start(r, &cfg, &sync) != OUTPOST_OK)
        DIE("sync start: %s", outpost_errmsg(r));
    rc = outpost_sync_wait(sync, 0, WAIT_MS);
    t1 = bench_now_s();
    if (rc != OUTPOST_OK)
        DIE("sync: %s", outpost_strerror(rc));
    outpost_sync_get_status(sync, out_status);
    outpost_sync_stop(sync);
    return t1 - t0;
}

static int64_t query_int(outpost_replica *r, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;

    if (sqlite3_prepare_v2(outpost_replica_db(r), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static long status_kib(const char *key)
{
    char line[256];
    long kib = -1;
    size_t n = strlen(key);
    FILE *f = fopen("/proc/self/status", "r");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && sscanf(line + n, ": %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* Resets VmHWM to the current resident set (Linux 4.0+); 0 when it worked. */
static int hwm_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");

    if (f == NULL)
        return -1;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Where outpostd keeps its store: SQLite in the fixture's directory when pg is NULL, else a
 * fresh database of this cluster, with admin (a connection to its "outpost" database) for the
 * raw ceilings and for making and dropping that database. */
typedef struct engine {
    const pg_cluster *pg;
    PGconn *admin;
    int n_databases;
} engine;

typedef struct figures {
    double raw_tx, raw_one, raw_tx_store_pages, write_s, push_s, pull_s, changeset_row;
    double pg_raw_insert, pg_raw_copy;
    outpost_sync_status push, pull;
    long long sqlite_peak_kib;
    long rss_peak_growth_kib;
} figures;

/* One push and one pull through a fresh daemon and store (on PostgreSQL, the push alone). */
static void run(const row *rows, bool encrypted, bool compress, engine *e, figures *f)
{
    daemon_fixture fx;
    char database[32] = "", sql[64], conninfo[600];

    memset(f, 0, sizeof *f);
    if (e->pg != NULL) {
        snprintf(database, sizeof database, "sync_%d", ++e->n_databases);
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", database);
        pg_exec(e->admin, sql);
        snprintf(conninfo, sizeof conninfo, "%s dbname=%s", e->pg->conninfo, database);
        if (fixture_create_postgresql_with_schema(&fx, NULL, conninfo, bench_contact_create_sql,
                                                  policy_text) != 0 ||
            fixture_start(&fx) != 0)
            DIE("outpostd fixture on PostgreSQL");
        f->pg_raw_insert = pg_raw_rows_per_s(e->admin, rows, false);
        f->pg_raw_copy = pg_raw_rows_per_s(e->admin, rows, true);
    } else {
        if (fixture_create_with_schema(&fx, NULL, bench_contact_create_sql, policy_text) != 0 ||
            fixture_start(&fx) != 0)
            DIE("outpostd fixture");
        f->raw_tx = raw_rows_per_s(fx.dir, rows, BATCH, 0);
        f->raw_one = raw_rows_per_s(fx.dir, rows, N_ROWS, 0);
        f->raw_tx_store_pages = raw_rows_per_s(fx.dir, rows, BATCH, STORE_PAGE_BYTES);
    }

    /* Push: the device writes 100 transactions of 1,000 offline, then syncs once. */
    outpost_replica *a = device_enroll(&fx, "pusher", encrypted);
    double tw0 = bench_now_s();
    for (uint32_t i = 0; i < N_ROWS; i++) {
        if (i % BATCH == 0 && outpost_tx_begin(a) != OUTPOST_OK)
            DIE("begin: %s", outpost_errmsg(a));
        if (outpost_exec(a, bench_contact_insert_sql, rows[i].ov, N_COLS) != OUTPOST_OK)
            DIE("exec: %s", outpost_errmsg(a));
        if ((i + 1) % BATCH == 0 && outpost_tx_commit(a, NULL) != OUTPOST_OK)
            DIE("commit: %s", outpost_errmsg(a));
    }
    f->write_s = bench_now_s() - tw0;
    f->changeset_row =
        (double)query_int(a, "SELECT sum(length(changeset)) FROM _outpost_changesets") / N_ROWS;
    f->push_s = sync_once(a, compress, &f->push);
    int64_t left = query_int(a, "SELECT count(*) FROM _outpost_outbox");
    outpost_replica_close(a);
    if (left != 0)
        DIE("push left %lld outbox entries", (long long)left);
    if (e->pg != NULL) {
        fixture_destroy(&fx);
        snprintf(sql, sizeof sql, "DROP DATABASE %s", database);
        pg_exec(e->admin, sql);
        return;
    }

    /* Pull: a fresh device of the same team. */
    outpost_replica *b = device_enroll(&fx, "puller", encrypted);
    long rss0 = status_kib("VmRSS");
    int hwm_ok = hwm_reset() == 0;
    sqlite3_int64 sqlite_mem0 = sqlite3_memory_used();
    sqlite3_memory_highwater(1);
    f->pull_s = sync_once(b, compress, &f->pull);
    f->sqlite_peak_kib = (long long)(sqlite3_memory_highwater(0) - sqlite_mem0) / 1024;
    long hwm = status_kib("VmHWM");
    f->rss_peak_growth_kib = hwm_ok && hwm >= 0 && rss0 >= 0 ? hwm - rss0 : -1;
    int64_t pulled = query_int(b, "SELECT count(*) FROM contacts");
    outpost_replica_close(b);
    if (pulled != (int64_t)N_ROWS)
        DIE("pull: %lld rows, expected %u", (long long)pulled, N_ROWS);

    fixture_destroy(&fx);
}

#define SYNC_VS_RAW_TARGET 0.50
#define WIRE_VS_CHANGESET_TARGET 1.10

/* The PostgreSQL push beside raw INSERT and COPY, and beside the SQLite push of this run
 * (sqlite_push: the plain mode's median, 0 when that mode did not run). */
static void report_pg(const double *push, const double *write, const double *ins,
                      const double *copy, double sqlite_push)
{
    bench_stat ps = bench_stat_of(push, BENCH_RUNS), is = bench_stat_of(ins, BENCH_RUNS);
    bench_stat cs = bench_stat_of(copy, BENCH_RUNS);

    printf("sync_pg_fsync=off\n"); /* pg_cluster.c's setting, the raw figures' too */
    bench_print_stat("sync_pg_raw_insert_rows_per_s", is, 0);
    bench_print_stat("sync_pg_raw_copy_rows_per_s", cs, 0);
    bench_print_stat("sync_pg_device_write_rows_per_s", bench_stat_of(write, BENCH_RUNS), 0);
    bench_print_stat("sync_pg_push_rows_per_s", ps, 0);
    printf("sync_pg_push_vs_raw_insert_ratio=%.2f\n", ps.median / is.median);
    printf("sync_pg_push_vs_raw_copy_ratio=%.2f\n", ps.median / cs.median);
    if (sqlite_push > 0)
        printf("sync_pg_push_vs_sqlite_plain_push_ratio=%.2f\n", ps.median / sqlite_push);
}

/* BENCH_WARMUP runs, then the median of BENCH_RUNS, each on a fresh daemon and store. Returns
 * the push's median rows/s. */
static double measure_and_report(const row *rows, bool encrypted, bool compress, engine *e,
                                 const char *mode, double sqlite_push)
{
    double raw_tx[BENCH_RUNS], raw_one[BENCH_RUNS], raw_tx16k[BENCH_RUNS], write[BENCH_RUNS],
        push[BENCH_RUNS], pull[BENCH_RUNS], pg_ins[BENCH_RUNS], pg_copy[BENCH_RUNS];
    figures f;
    char key[128];

    for (int i = -BENCH_WARMUP; i < BENCH_RUNS; i++) {
        run(rows, encrypted, compress, e, &f);
        if (i < 0)
            continue;
        raw_tx[i] = f.raw_tx;
        raw_one[i] = f.raw_one;
        raw_tx16k[i] = f.raw_tx_store_pages;
        write[i] = N_ROWS / f.write_s;
        push[i] = N_ROWS / f.push_s;
        pull[i] = f.pull_s > 0 ? N_ROWS / f.pull_s : 0;
        pg_ins[i] = f.pg_raw_insert;
        pg_copy[i] = f.pg_raw_copy;
    }
    if (e->pg != NULL) {
        report_pg(push, write, pg_ins, pg_copy, sqlite_push);
        return bench_stat_of(push, BENCH_RUNS).median;
    }
    bench_stat rt = bench_stat_of(raw_tx, BENCH_RUNS), ro = bench_stat_of(raw_one, BENCH_RUNS);
    bench_stat ps = bench_stat_of(push, BENCH_RUNS), pl = bench_stat_of(pull, BENCH_RUNS);
    /* Wire and memory figures are the last run's: they do not vary from run to run. */
    double push_wire = (double)f.push.bytes_sent / N_ROWS;
    double pull_wire = (double)f.pull.bytes_received / N_ROWS;

#define KEY(suffix) (snprintf(key, sizeof key, "sync_%s_%s", mode, suffix), key)
    bench_print_stat(KEY("raw_sqlite_tx1000_rows_per_s"), rt, 0);
    bench_print_stat(KEY("raw_sqlite_one_tx_rows_per_s"), ro, 0);
    bench_print_stat(KEY("device_write_rows_per_s"), bench_stat_of(write, BENCH_RUNS), 0);
    bench_print_stat(KEY("push_rows_per_s"), ps, 0);
    /* Like for like: 100 pushed transactions against 100 raw transactions of the same rows. */
    printf("sync_%s_push_vs_raw_tx1000_ratio=%.2f\n", mode, ps.median / rt.median);
    /* Raw with the store's 16 KiB pages (store_sqlite.c): shown, not judged, so that the reader
     * sees how much of the push's figure any application would get from the page size. */
    bench_stat rt16k = bench_stat_of(raw_tx16k, BENCH_RUNS);
    bench_print_stat(KEY("raw_sqlite_tx1000_store_pages_rows_per_s"), rt16k, 0);
    printf("sync_%s_push_vs_raw_tx1000_store_pages_ratio=%.2f\n", mode,
           ps.median / rt16k.median);
    bench_print_stat(KEY("pull_rows_per_s"), pl, 0);
    /* The pull applies pages of the server's size, not 1,000-row transactions: beside the
     * one-transaction ceiling, the difference printed. */
    printf("sync_%s_pull_vs_raw_one_tx_ratio=%.2f\n", mode, pl.median / ro.median);
    printf("sync_%s_changeset_bytes_per_row=%.1f\n", mode, f.changeset_row);
    printf("sync_%s_push_wire_bytes_per_row=%.1f\n", mode, push_wire);
    printf("sync_%s_push_wire_vs_changeset=%.2f\n", mode, push_wire / f.changeset_row);
    printf("sync_%s_pull_wire_bytes_per_row=%.1f\n", mode, pull_wire);
    printf("sync_%s_pull_wire_vs_changeset=%.2f\n", mode, pull_wire / f.changeset_row);
    /* Requests that waited a whole network round trip (outpost_sync_status.round_trips): the
     * push sync's HELLO, its 100 entries and its empty pull; the pull sync's HELLO and pages. */
    printf("sync_%s_push_sync_round_trips=%llu\n", mode, (unsigned long long)f.push.round_trips);
    printf("sync_%s_pull_sync_round_trips=%llu\n", mode, (unsigned long long)f.pull.round_trips);
    printf("sync_%s_pull_sqlite_heap_peak_kib=%lld\n", mode, f.sqlite_peak_kib);
    if (f.rss_peak_growth_kib >= 0)
        printf("sync_%s_pull_rss_peak_growth_kib=%ld\n", mode, f.rss_peak_growth_kib);
    bench_print_target(KEY("push_vs_raw_tx1000_ratio"), ps.median / rt.median >= SYNC_VS_RAW_TARGET);
    bench_print_target(KEY("pull_vs_raw_one_tx_ratio"), pl.median / ro.median >= SYNC_VS_RAW_TARGET);
    bench_print_target(KEY("push_wire_vs_changeset"),
                       push_wire / f.changeset_row <= WIRE_VS_CHANGESET_TARGET);
    bench_print_target(KEY("pull_wire_vs_changeset"),
                       pull_wire / f.changeset_row <= WIRE_VS_CHANGESET_TARGET);
    bench_print_target(KEY("push_wire_bytes_per_row"), push_wire <= WIRE_BYTES_PER_ROW_TARGET);
    bench_print_target(KEY("pull_wire_bytes_per_row"), pull_wire <= WIRE_BYTES_PER_ROW_TARGET);
#undef KEY
    return ps.median;
}

/* The push on a private PostgreSQL cluster; -1 when there is none to make. */
static int measure_pg(const row *rows, double sqlite_push)
{
    pg_cluster pg;
    int rc = -1;

    memset(&pg, 0, sizeof pg); /* pg_cluster_stop of a cluster never started is a no-op */
    if (!pg_cluster_available() || pg_cluster_start(&pg) != 0) {
        fprintf(stderr, "bench_sync: no PostgreSQL 15 server (scripts/deps.sh installs it)\n");
        pg_cluster_stop(&pg);
        return -1;
    }
    engine e = {.pg = &pg, .admin = PQconnectdb(pg.conninfo)};
    if (PQstatus(e.admin) == CONNECTION_OK) {
        PQclear(PQexec(e.admin, "SET client_min_messages = warning"));
        measure_and_report(rows, false, true, &e, "pg", sqlite_push);
        rc = 0;
    } else {
        fprintf(stderr, "bench_sync: %s", PQerrorMessage(e.admin));
    }
    PQfinish(e.admin);
    pg_cluster_stop(&pg);
    return rc;
}

int main(int argc, char **argv)
{
    /* "plain", "encrypted", "uncompressed", "pg", or all but "uncompressed" when no argument
     * is given. */
    const char *only = argc > 1 ? argv[1] : NULL;
    row *rows = rows_make();
    engine sqlite_engine = {0};
    double plain_push = 0;
    int rc = 0;

    printf("sync_rows=%u\n", N_ROWS);
    printf("sync_columns=%d\n", N_COLS);
    printf("sync_write_tx_rows=%u\n", BATCH);
    printf("sync_vs_raw_target=%.2f\n", SYNC_VS_RAW_TARGET);
    printf("sync_wire_vs_changeset_target=%.2f\n", WIRE_VS_CHANGESET_TARGET);
    printf("sync_wire_bytes_per_row_target=%.0f\n", WIRE_BYTES_PER_ROW_TARGET);
    bench_print_method("sync");
    fflush(stdout);
    if (only == NULL || strcmp(only, "plain") == 0) {
        plain_push = measure_and_report(rows, false, true, &sqlite_engine, "plain", 0);
        fflush(stdout);
    }
    if (only == NULL || strcmp(only, "encrypted") == 0) {
        measure_and_report(rows, true, true, &sqlite_engine, "encrypted", 0);
        fflush(stdout);
    }
    if (only != NULL && strcmp(only, "uncompressed") == 0)
        measure_and_report(rows, false, false, &sqlite_engine, "uncompressed", 0);
    if (only == NULL || strcmp(only, "pg") == 0)
        rc = measure_pg(rows, plain_push);
    free(rows);
    return rc == 0 ? 0 : 1;
}
