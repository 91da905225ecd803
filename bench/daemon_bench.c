/*
 * outpostd benchmark (never a timed test): prints name=value lines.
 *
 *   1. One 100,000-row device transaction pushed over TLS on loopback (in PUSH chunks under the
 *      message limit), timed from the first chunk sent to the ACK, beside its ceiling measured
 *      in the same run: the same rows inserted into SQLite in one transaction (WAL,
 *      synchronous=FULL) with no network, no merge and no change log. Median of BENCH_RUNS
 *      after BENCH_WARMUP, each on a fresh daemon (bench_time.h).
 *   2. 1,000 authenticated idle device connections held at once: the server's resident memory
 *      growth per connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench_time.h"
#include "daemon_fixture.h"
#include "testclient.h"

#define N_ROWS 100000u
#define ROWS_PER_CHUNK 4000u
#define N_IDLE 1000u
#define T_MS 120000

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* The ceiling: the same rows straight into SQLite, one transaction. */
static double raw_sqlite_rows_per_s(const char *dir, char **ids)
{
    char path[400];
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    double t0, t1 = 0;

    snprintf(path, sizeof path, "%s/raw.db", dir);
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                         "CREATE TABLE contacts (id TEXT PRIMARY KEY NOT NULL, team_id TEXT NOT"
                         " NULL, name TEXT, note TEXT);",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO contacts VALUES (?1, ?2, ?3, ?4)", -1, &ins, NULL) !=
            SQLITE_OK)
        goto done;
    t0 = bench_now_s();
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        goto done;
    for (uint32_t i = 0; i < N_ROWS; i++) {
        sqlite3_bind_text(ins, 1, ids[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, "t1", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, "bench", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 4, "note", -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            goto done;
        sqlite3_reset(ins);
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto done;
    t1 = bench_now_s() - t0;
done:
    if (t1 <= 0)
        fprintf(stderr, "bench_daemon: ceiling: %s\n", db ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_finalize(ins);
    sqlite3_close(db);
    return t1 > 0 ? N_ROWS / t1 : 0;
}

static double push_rows_per_s(const daemon_fixture *fx, const test_device *dev, char **ids)
{
    testclient *tc = fixture_hello(fx, dev, NULL);
    proto_msg *reply = NULL;
    uint32_t n_chunks = (N_ROWS + ROWS_PER_CHUNK - 1) / ROWS_PER_CHUNK;
    double t0, elapsed = 0;

    if (!tc)
        return 0;
    t0 = bench_now_s();
    for (uint32_t c = 0; c < n_chunks; c++) {
        uint32_t first = c * ROWS_PER_CHUNK;
        uint32_t n = N_ROWS - first < ROWS_PER_CHUNK ? N_ROWS - first : ROWS_PER_CHUNK;
        proto_msg *push =
            fixture_insert_push(1, n, (const char *const *)ids + first, "t1", "bench");
        push->u.push.chunk = c;
        push->u.push.more = c + 1 < n_chunks;
        push->u.push.hlc = PROTO_HLC_MAKE(1700000000000ull, 0);
        if (testclient_send(tc, push, T_MS) != 0) {
            fixture_push_free(push);
            goto done;
        }
        fixture_push_free(push);
    }
    if (testclient_recv_type(tc, PROTO_MSG_ACK, T_MS, &reply) != 0 ||
        reply->type != PROTO_MSG_ACK) {
        fprintf(stderr, "push: no ACK (got %s)\n",
                reply ? proto_msg_type_name((uint32_t)reply->type) : "nothing");
        goto done;
    }
    elapsed = bench_now_s() - t0;
done:
    proto_msg_free(reply);
    testclient_close(tc);
    return elapsed > 0 ? N_ROWS / elapsed : 0;
}

static long idle_bytes_per_connection(const daemon_fixture *fx, const test_device *dev)
{
    testclient **held = calloc(N_IDLE, sizeof *held);
    long before, after, per = -1;
    uint32_t n = 0;

    if (!held)
        return -1;
    /* Warm up allocator arenas and lws tables with a few connections first. */
    for (uint32_t i = 0; i < 10; i++)
        testclient_close(fixture_hello(fx, dev, NULL));
    usleep(200 * 1000);
    before = rss_kib(fx->pid);
    for (; n < N_IDLE; n++) {
        held[n] = fixture_hello(fx, dev, NULL);
        if (!held[n]) {
            fprintf(stderr, "idle: connection %u failed\n", n);
            break;
        }
    }
    usleep(500 * 1000);
    after = rss_kib(fx->pid);
    if (n == N_IDLE && before > 0 && after > 0)
        per = (after - before) * 1024 / (long)N_IDLE;
    printf("daemon_idle_connections=%u\n", n);
    printf("daemon_rss_before_kib=%ld\n", before);
    printf("daemon_rss_with_idle_kib=%ld\n", after);
    for (uint32_t i = 0; i < n; i++)
        testclient_close(held[i]);
    free(held);
    return per;
}

int main(void)
{
    daemon_fixture fx;
    test_device dev;

    memset(&fx, 0, sizeof fx);
    char **ids = calloc(N_ROWS, sizeof *ids);
    double raw, push;
    long per_conn;
    int rc = 1;

    if (!ids)
        return 1;
    for (uint32_t i = 0; i < N_ROWS; i++) {
        ids[i] = malloc(40);
        if (!ids[i])
            return 1;
        snprintf(ids[i], 40, "0190b7a2-0000-7000-8000-%012u", i);
    }
    /* BENCH_WARMUP runs, then BENCH_RUNS, each on a fresh daemon and store (so every push
     * inserts new rows, as the ceiling does); the last daemon then measures idle memory. */
    double raw_r[BENCH_RUNS], push_r[BENCH_RUNS];
    for (int r = -BENCH_WARMUP; r < BENCH_RUNS; r++) {
        if (r > -BENCH_WARMUP)
            fixture_destroy(&fx);
        memset(&fx, 0, sizeof fx);
        if (fixture_create(&fx, "max_connections = 1100\nmax_transaction_bytes = 268435456\n") !=
                0 ||
            fixture_start(&fx) != 0 || fixture_enroll_device(&fx, "w1", &dev) != 0) {
            fprintf(stderr, "cannot start outpostd for the benchmark\n");
            goto done;
        }
        raw = raw_sqlite_rows_per_s(fx.dir, ids);
        push = push_rows_per_s(&fx, &dev, ids);
        if (raw <= 0 || push <= 0)
            goto done;
        if (r >= 0)
            raw_r[r] = raw, push_r[r] = push;
    }
    bench_stat raw_s = bench_stat_of(raw_r, BENCH_RUNS), push_s = bench_stat_of(push_r, BENCH_RUNS);
    printf("daemon_push_rows=%u\n", N_ROWS);
    bench_print_method("daemon");
    bench_print_stat("daemon_push_rows_per_s", push_s, 0);
    bench_print_stat("sqlite_raw_insert_rows_per_s", raw_s, 0);
    printf("daemon_push_vs_raw=%.2f\n", push_s.median / raw_s.median);
    /* The same target as bench_sync and bench_merge: half the raw one-transaction rate. */
    printf("daemon_push_vs_raw_target=0.50\n");
    bench_print_target("daemon_push_vs_raw", push_s.median / raw_s.median >= 0.50);

    per_conn = idle_bytes_per_connection(&fx, &dev);
    printf("daemon_memory_per_idle_connection_bytes=%ld\n", per_conn);
    printf("daemon_memory_per_idle_connection_kib=%.1f\n", (double)per_conn / 1024.0);
    rc = (push > 0 && per_conn > 0) ? 0 : 1;

done:
    fixture_stop(&fx);
    fixture_destroy(&fx);
    for (uint32_t i = 0; i < N_ROWS; i++)
        free(ids[i]);
    free(ids);
    return rc;
}
