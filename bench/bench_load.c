/*
 * Load: N concurrent devices (default 200; OUTPOST_BENCH_DEVICES) doing small syncs against one
 * outpostd over TLS on loopback. Every device is a real liboutpost replica with its own sync
 * engine (its own thread and connection, staying connected), enrolled with a one-time code for
 * a worker of its own team, so each sync is one pushed row and a pull, with no NOTIFY fan-out.
 * Rounds (OUTPOST_BENCH_ROUNDS, default 5): every device writes one contact and asks for a
 * sync at the same moment; a device's sync latency runs from its write to the moment its engine
 * reports the sync complete with an empty outbox.
 *
 * Prints name=value lines: syncs/s, p50 and p99 latency, the server's RSS (now and peak) and
 * CPU, and, as the ceiling, the rate at which the same rows go into SQLite in one transaction.
 * The devices run on the same machine as the server: on two cores they compete with it. Each
 * device is a whole sync engine with its own thread, so 1,000 of them (the figure issue 6 asks
 * for) swamp a two-core machine with their own work before the server is the limit: run
 * OUTPOST_BENCH_DEVICES=1000 with the devices on another machine for that figure.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <outpost.h>
#include "outpost_engine.h"
#include <sqlite3.h>

#include "bench_time.h"
#include "daemon_fixture.h"
#include "test_util.h"
#include "store.h"

typedef struct device {
    char path[320];
    char team[24];
    outpost_replica *r;
    outpost_sync *sync;
    _Atomic uint64_t completed;   /* syncs completed with an empty outbox */
    _Atomic int64_t done_us;      /* when the last such sync completed */
} device;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_status(void *user_data, const outpost_sync_status *st)
{
    device *d = user_data;
    if (st->pending == 0 && st->syncs_completed > atomic_load(&d->completed)) {
        atomic_store(&d->done_us, now_us());
        atomic_store(&d->completed, st->syncs_completed);
    }
}

/* Server RSS and peak RSS (KiB) and CPU seconds (user + system) from /proc. */
static void server_usage(pid_t pid, long *rss_kb, long *hwm_kb, double *cpu_s)
{
    char path[64], line[256];
    *rss_kb = *hwm_kb = 0;
    *cpu_s = 0;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "VmRSS:", 6) == 0)
                *rss_kb = strtol(line + 6, NULL, 10);
            if (strncmp(line, "VmHWM:", 6) == 0)
                *hwm_kb = strtol(line + 6, NULL, 10);
        }
        fclose(f);
    }
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
        char *p = strrchr(buf, ')');
        unsigned long ut = 0, stime = 0;
        /* after ") " : state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
         * utime stime */
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                        &stime) == 2)
            *cpu_s = (double)(ut + stime) / (double)sysconf(_SC_CLK_TCK);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The ceiling: the same rows inserted into SQLite (WAL, synchronous=FULL) in transactions of
 * tx_rows: 1 is like for like with the load (every sync applies one one-row transaction), n_rows
 * the one-transaction figure every benchmark prints. Every SQLite call is checked; a failure
 * ends the benchmark rather than print a figure for work that was not done. */
static double sqlite_ceiling(const char *dir, int n_rows, int tx_rows)
{
    char path[400];
    snprintf(path, sizeof path, "%s/ceiling.db", dir);
    unlink(path);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "CREATE TABLE contacts (id TEXT PRIMARY KEY NOT NULL, team_id TEXT NOT NULL,"
                     " name TEXT, note TEXT);",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO contacts VALUES (?1, ?2, ?3, NULL)", -1, &st,
                           NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_load: ceiling: %s\n", sqlite3_errmsg(db));
        exit(1);
    }
    double t0 = now_s();
    for (int i = 0; i < n_rows; i++) {
        char id[OUTPOST_UUID_TEXT_SIZE];
        if (outpost_uuid_make(id) != OUTPOST_OK ||
            (i % tx_rows == 0 && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) ||
            sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
            sqlite3_bind_text(st, 2, "team0001", -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(st, 3, "load test contact", -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_DONE || sqlite3_reset(st) != SQLITE_OK ||
            (((i + 1) % tx_rows == 0 || i + 1 == n_rows) &&
             sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)) {
            fprintf(stderr, "bench_load: ceiling row %d: %s\n", i, sqlite3_errmsg(db));
            exit(1);
        }
    }
    double dt = now_s() - t0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    unlink(path);
    return n_rows / dt;
}

/* Median of BENCH_RUNS after BENCH_WARMUP of one ceiling. */
static bench_stat ceiling_stat(const char *dir, int n_rows, int tx_rows)
{
    double v[BENCH_RUNS];
    for (int i = -BENCH_WARMUP; i < BENCH_RUNS; i++) {
        double r = sqlite_ceiling(dir, n_rows, tx_rows);
        if (i >= 0)
            v[i] = r;
    }
    return bench_stat_of(v, BENCH_RUNS);
}

int main(void)
{
    int n = getenv("OUTPOST_BENCH_DEVICES") ? atoi(getenv("OUTPOST_BENCH_DEVICES")) : 200;
    int rounds = getenv("OUTPOST_BENCH_ROUNDS") ? atoi(getenv("OUTPOST_BENCH_ROUNDS")) : 5;
    if (n < 1 || rounds < 1)
        return 2;
    /* Each device holds a replica (database, WAL, shm) and a socket; so does the server. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)(n * 8 + 256)) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)(n * 8 + 256) ? rl.rlim_max : (rlim_t)(n * 8 + 256);
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    daemon_fixture fx;
    char limits[192];
    /* every simulated device shares one address (loopback): allow them all to be connecting */
    snprintf(limits, sizeof limits,
             "max_connections = %d\nqueue_depth = %d\nmax_unauthenticated_per_address = %d\n",
             n + 64, n + 64, n + 64);
    if (fixture_create(&fx, limits) != 0) {
        fprintf(stderr, "bench_load: cannot prepare the server\n");
        return 1;
    }
    /* A team and a worker per device. */
    {
        store *st = NULL;
        char err[256];
        if (store_open(fx.store_path, false, &st, err, sizeof err) != STORE_OK) {
            fprintf(stderr, "bench_load: %s\n", err);
            return 1;
        }
        for (int i = 0; i < n; i++) {
            char team[24], worker[24];
            snprintf(team, sizeof team, "team%04d", i);
            snprintf(worker, sizeof worker, "worker%04d", i);
            const char *teams[1] = {team};
            if (store_team_add(st, team, team) != STORE_OK ||
                store_worker_add(st, worker, teams, 1) != STORE_OK) {
                fprintf(stderr, "bench_load: %s\n", store_errmsg(st));
                return 1;
            }
        }
        store_close(st);
    }
    if (fixture_start(&fx) != 0) {
        fprintf(stderr, "bench_load: outpostd did not start\n");
        return 1;
    }
    char *ca = test_read_file(fx.ca_path, NULL);
    device *devs = calloc((size_t)n, sizeof *devs);
    int64_t *lat = calloc((size_t)(n * rounds), sizeof *lat);
    int64_t *t0 = calloc((size_t)n, sizeof *t0);
    if (ca == NULL || devs == NULL || lat == NULL || t0 == NULL)
        return 1;

    double t_enroll = now_s();
    for (int i = 0; i < n; i++) {
        device *d = &devs[i];
        char err[256], code[32], url[64], worker[24];
        snprintf(d->path, sizeof d->path, "%s/dev%04d.db", fx.dir, i);
        snprintf(d->team, sizeof d->team, "team%04d", i);
        snprintf(worker, sizeof worker, "worker%04d", i);
        outpost_config cfg = {.path = d->path, .no_encryption = 1};
        if (outpost_replica_open(&cfg, &d->r, err, sizeof err) != OUTPOST_OK ||
            fixture_enroll_code(&fx, worker, code) != 0) {
            fprintf(stderr, "bench_load: device %d: %s\n", i, err);
            return 1;
        }
        snprintf(url, sizeof url, "wss://127.0.0.1:%u/sync", fx.port);
        outpost_enroll_options eo = {.url = url, .code = code, .ca_pem = ca};
        if (outpost_enroll(d->r, &eo) != OUTPOST_OK) {
            fprintf(stderr, "bench_load: enroll %d: %s\n", i, outpost_errmsg(d->r));
            return 1;
        }
    }
    t_enroll = now_s() - t_enroll;

    long rss0, hwm0, rss_pre;
    double cpu0;
    server_usage(fx.pid, &rss0, &hwm0, &cpu0);
    rss_pre = rss0;
    double t_connect = now_s();
    for (int i = 0; i < n; i++) {
        outpost_sync_config sc = {.on_status = on_status, .user_data = &devs[i],
                                  .stay_connected = 1, .debounce_ms = 1,
                                  .retry_base_ms = 200, .retry_cap_ms = 2000};
        if (outpost_sync_start(devs[i].r, &sc, &devs[i].sync) != OUTPOST_OK) {
            fprintf(stderr, "bench_load: sync start %d\n", i);
            return 1;
        }
    }
    for (int i = 0; i < n; i++)
        while (atomic_load(&devs[i].completed) == 0)
            test_sleep_ms(5);
    t_connect = now_s() - t_connect;
    long rss_idle, hwm_idle;
    double cpu_idle;
    server_usage(fx.pid, &rss_idle, &hwm_idle, &cpu_idle);

    int n_lat = 0, failures = 0;
    double t_rounds = now_s();
    server_usage(fx.pid, &rss0, &hwm0, &cpu0);
    for (int r = 0; r < rounds; r++) {
        uint64_t *base = calloc((size_t)n, sizeof *base);
        for (int i = 0; i < n; i++)
            base[i] = atomic_load(&devs[i].completed);
        for (int i = 0; i < n; i++) {
            device *d = &devs[i];
            char id[OUTPOST_UUID_TEXT_SIZE];
            outpost_uuid_make(id);
            outpost_value p[3] = {
                {.type = OUTPOST_VALUE_TEXT, .u.b = {(const uint8_t *)id, (uint32_t)strlen(id)}},
                {.type = OUTPOST_VALUE_TEXT,
                 .u.b = {(const uint8_t *)d->team, (uint32_t)strlen(d->team)}},
                {.type = OUTPOST_VALUE_TEXT, .u.b = {(const uint8_t *)"load test contact", 17}},
            };
            t0[i] = now_us();
            if (outpost_exec(d->r, "INSERT INTO contacts (id, team_id, name) VALUES (?1, ?2, ?3)",
                             p, 3) != OUTPOST_OK)
                failures++;
            outpost_sync_now(d->sync);
        }
        double deadline = now_s() + 300;
        for (int i = 0; i < n; i++) {
            while (atomic_load(&devs[i].completed) <= base[i] && now_s() < deadline)
                test_sleep_ms(2);
            if (atomic_load(&devs[i].completed) <= base[i]) {
                failures++;
                continue;
            }
            lat[n_lat++] = atomic_load(&devs[i].done_us) - t0[i];
        }
        free(base);
    }
    t_rounds = now_s() - t_rounds;
    long rss1, hwm1;
    double cpu1;
    server_usage(fx.pid, &rss1, &hwm1, &cpu1);

    qsort(lat, (size_t)n_lat, sizeof *lat, cmp_i64);
    int64_t p50 = n_lat ? lat[n_lat / 2] : 0;
    int64_t p99 = n_lat ? lat[(size_t)((double)n_lat * 0.99)] : 0;
    int64_t pmax = n_lat ? lat[n_lat - 1] : 0;
    bench_stat ceiling_tx1 = ceiling_stat(fx.dir, n * rounds, 1);
    bench_stat ceiling_one = ceiling_stat(fx.dir, n * rounds, n * rounds);

    printf("devices=%d\n", n);
    printf("rounds=%d\n", rounds);
    printf("enroll_s=%.1f\n", t_enroll);
    printf("connect_and_first_sync_all_s=%.2f\n", t_connect);
    printf("syncs=%d\n", n_lat);
    printf("failed_syncs=%d\n", failures);
    printf("syncs_per_s=%.0f\n", t_rounds > 0 ? n_lat / t_rounds : 0.0);
    printf("sync_p50_ms=%.1f\n", (double)p50 / 1000.0);
    printf("sync_p99_ms=%.1f\n", (double)p99 / 1000.0);
    printf("sync_max_ms=%.1f\n", (double)pmax / 1000.0);
    printf("server_rss_idle_connected_mb=%.1f\n", (double)rss_idle / 1024.0);
    printf("server_rss_after_mb=%.1f\n", (double)rss1 / 1024.0);
    printf("server_rss_peak_mb=%.1f\n", (double)hwm1 / 1024.0);
    printf("server_rss_per_connection_kb=%.1f\n", (double)(rss_idle - rss_pre) / n);
    printf("server_cpu_s=%.2f\n", cpu1 - cpu0);
    printf("server_cpu_cores_used=%.2f\n", t_rounds > 0 ? (cpu1 - cpu0) / t_rounds : 0.0);
    /* The load's figures are one run: its rounds are the repetitions (latency percentiles over
     * every sync); the ceilings follow the common statistic. */
    bench_print_method("load_ceiling");
    bench_print_stat("ceiling_sqlite_one_row_tx_rows_per_s", ceiling_tx1, 0);
    bench_print_stat("ceiling_sqlite_one_tx_rows_per_s", ceiling_one, 0);
    printf("syncs_vs_one_row_tx_ceiling_ratio=%.2f\n",
           t_rounds > 0 ? n_lat / t_rounds / ceiling_tx1.median : 0.0);
    printf("load_failed_syncs_target=0\n");
    bench_print_target("load_failed_syncs", failures == 0);

    for (int i = 0; i < n; i++) {
        outpost_sync_stop(devs[i].sync);
        outpost_replica_close(devs[i].r);
    }
    fixture_destroy(&fx);
    free(devs);
    free(lat);
    free(t0);
    free(ca);
    return failures == 0 ? 0 : 1;
}
