/*
 * Bad networks between a device and outpostd (the fault proxy; cuts at random offsets are
 * test_sync.c's): a server that accepts connections and never answers (stall), and a link that
 * moves a few hundred bytes at a time (trickle). Once the fault stops, the sync completes by
 * itself, every record arrives exactly once, and the server saw each outbox entry at most once
 * more than needed (counted from its log: a resent entry is logged "ACK(duplicate)").
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <outpost.h>
#include <sqlite3.h>

#include "daemon_fixture.h"
#include "test_util.h"
#include "faultproxy.h"
#include "ovalue.h"

#define WAIT_MS 90000u

static daemon_fixture fx;
static char *ca_pem;
static faultproxy *proxy;
static uint16_t proxy_port;

static int64_t central(const char *sql, const char *arg)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_open_v2(fx.store_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 10000);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW)
                n = sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

/* Pushes the server logged for a device: all of them, and the resent ones. */
static void count_pushes(const char *device_id, int *out_all, int *out_dup)
{
    char *log = test_read_file(fx.log_path, NULL);
    assert_non_null(log);
    char needle[80];
    snprintf(needle, sizeof needle, "device=%s push seq=", device_id);
    *out_all = *out_dup = 0;
    for (char *line = log; line && *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        if (strstr(line, needle)) {
            (*out_all)++;
            if (strstr(line, "ACK(duplicate)"))
                (*out_dup)++;
        }
        line = end ? end + 1 : NULL;
    }
    free(log);
}

typedef struct device {
    char path[400];
    char id[40];
    outpost_replica *r;
    outpost_sync *sync;
} device;

/* Enrolled through the proxy, with entries x rows contacts named name waiting in the outbox. */
static void device_prepare(device *d, const char *file, const char *name, int entries, int rows)
{
    char err[256], code[32], url[64];
    memset(d, 0, sizeof *d);
    faultproxy_pass(proxy);
    snprintf(d->path, sizeof d->path, "%s/%s", fx.dir, file);
    outpost_config cfg = {.path = d->path, .no_encryption = 1};
    assert_int_equal(outpost_replica_open(&cfg, &d->r, err, sizeof err), OUTPOST_OK);
    assert_int_equal(fixture_enroll_code(&fx, "w1", code), 0);
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/sync", proxy_port);
    outpost_enroll_options eo = {.url = url, .code = code, .ca_pem = ca_pem};
    if (outpost_enroll(d->r, &eo) != OUTPOST_OK)
        fail_msg("enroll: %s", outpost_errmsg(d->r));
    assert_int_equal(outpost_device_id(d->r, d->id), OUTPOST_OK);
    for (int e = 0; e < entries; e++) {
        assert_int_equal(outpost_tx_begin(d->r), OUTPOST_OK);
        for (int i = 0; i < rows; i++) {
            char id[OUTPOST_UUID_TEXT_SIZE];
            assert_int_equal(outpost_uuid_make(id), OUTPOST_OK);
            outpost_value p[3] = {ov_text(id), ov_text("t1"), ov_text(name)};
            assert_int_equal(outpost_exec(d->r, "INSERT INTO contacts (id, team_id, name)"
                                                " VALUES (?1, ?2, ?3)",
                                          p, 3),
                             OUTPOST_OK);
        }
        assert_int_equal(outpost_tx_commit(d->r, NULL), OUTPOST_OK);
    }
}

static void device_start(device *d)
{
    outpost_sync_config sc = {.debounce_ms = 20, .retry_base_ms = 200, .retry_cap_ms = 2000};
    assert_int_equal(outpost_sync_start(d->r, &sc, &d->sync), OUTPOST_OK);
}

static uint64_t pending(device *d)
{
    outpost_status st;
    assert_int_equal(outpost_status_get(d->r, &st), OUTPOST_OK);
    return st.pending;
}

static void device_close(device *d)
{
    outpost_sync_stop(d->sync);
    outpost_replica_close(d->r);
}

static int setup(void **state)
{
    (void)state;
    if (fixture_create(&fx, NULL) != 0 || fixture_start(&fx) != 0)
        return -1;
    ca_pem = test_read_file(fx.ca_path, NULL);
    if (ca_pem == NULL)
        return -1;
    return faultproxy_start(fx.port, &proxy, &proxy_port);
}

static int teardown(void **state)
{
    (void)state;
    faultproxy_stop(proxy);
    free(ca_pem);
    fixture_destroy(&fx);
    return 0;
}

static void test_stalled_server_then_sync_completes(void **state)
{
    (void)state;
    enum { ENTRIES = 30, ROWS = 10 };
    device d;
    device_prepare(&d, "stall.db", "stalled", ENTRIES, ROWS);
    faultproxy_stall(proxy);
    uint32_t base = faultproxy_accepted(proxy);
    device_start(&d);
    /* The engine connects into the void, gives up on its own (connect timeout) and retries. */
    for (uint32_t waited = 0; faultproxy_accepted(proxy) < base + 2 && waited < WAIT_MS;
         waited += 100)
        test_sleep_ms(100);
    assert_true(faultproxy_accepted(proxy) >= base + 2);
    outpost_sync_status st;
    outpost_sync_get_status(d.sync, &st);
    assert_int_equal(st.syncs_completed, 0);
    if (st.last_error != OUTPOST_ETIMEOUT && st.last_error != OUTPOST_EOFFLINE)
        fail_msg("a stalled server gave %s: %s", outpost_strerror(st.last_error),
                 st.last_error_msg);
    assert_int_equal(pending(&d), ENTRIES);

    /* The network heals: no hint from the app, the retry schedule finds it. */
    faultproxy_pass(proxy);
    assert_int_equal(outpost_sync_wait(d.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_int_equal(pending(&d), 0);
    assert_int_equal(central("SELECT count(*) FROM contacts WHERE name = ?1", "stalled"),
                     ENTRIES * ROWS);
    int all, dup;
    count_pushes(d.id, &all, &dup);
    assert_int_equal(dup, 0); /* nothing reached the server while stalled */
    assert_int_equal(all, ENTRIES);
    device_close(&d);
}

static void test_trickled_link_completes_without_resending(void **state)
{
    (void)state;
    enum { ENTRIES = 25, ROWS = 20 };
    device d;
    device_prepare(&d, "trickle.db", "trickled", ENTRIES, ROWS);
    /* About 8 KiB/s each way: the TLS handshake alone takes a while. */
    faultproxy_trickle(proxy, 400, 50);
    device_start(&d);
    assert_int_equal(outpost_sync_wait(d.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_int_equal(pending(&d), 0);
    assert_int_equal(central("SELECT count(*) FROM contacts WHERE name = ?1", "trickled"),
                     ENTRIES * ROWS);
    assert_int_equal(central("SELECT count(DISTINCT id) FROM contacts WHERE name = ?1",
                             "trickled"),
                     ENTRIES * ROWS);
    int all, dup;
    count_pushes(d.id, &all, &dup);
    assert_true(dup <= 1);
    assert_int_equal(all - dup, ENTRIES);
    faultproxy_pass(proxy);
    device_close(&d);
}

static void test_trickle_then_cut_resends_at_most_one_window_per_cut(void **state)
{
    (void)state;
    enum { ENTRIES = 40, ROWS = 20 };
    device d;
    device_prepare(&d, "trickle-cut.db", "trickled then cut", ENTRIES, ROWS);
    faultproxy_trickle(proxy, 600, 20);
    device_start(&d);
    /* Cut the slow link three times, each time once some entries went through and while
     * some were still pending. A cut counts only if it closed an open connection (the proxy
     * counts those); a cut that found none is not a fault that landed. */
    int cuts = 0, landed = 0;
    for (uint32_t waited = 0; cuts < 3 && waited < WAIT_MS; waited += 100) {
        int all, dup;
        count_pushes(d.id, &all, &dup);
        if (all >= 5 * (cuts + 1) && pending(&d) > 0) {
            uint32_t before = faultproxy_cuts(proxy);
            faultproxy_cut_all(proxy);
            cuts++;
            for (int w = 0; w < 100 && faultproxy_cuts(proxy) == before; w++)
                test_sleep_ms(10);
            landed += faultproxy_cuts(proxy) > before;
        }
        test_sleep_ms(100);
    }
    printf("trickle then cut: %d of %d cuts closed a live connection mid-push\n", landed, cuts);
    assert_true(landed >= 1);
    faultproxy_pass(proxy);
    outpost_sync_network_changed(d.sync);
    for (uint32_t waited = 0; pending(&d) > 0 && waited < WAIT_MS; waited += 100)
        test_sleep_ms(100);
    assert_int_equal(pending(&d), 0);
    assert_int_equal(central("SELECT count(*) FROM contacts WHERE name = ?1",
                             "trickled then cut"),
                     ENTRIES * ROWS);
    /* A cut can lose the ACKs of every entry in flight: the library keeps up to 32 of them
     * (docs/protocol.md 8.2), and each is answered from the server's record when resent. */
    enum { WINDOW_ENTRIES = 32 };
    int all, dup;
    count_pushes(d.id, &all, &dup);
    printf("trickle then cut: %d replays of %d pushes\n", dup, all);
    assert_true(dup <= landed * WINDOW_ENTRIES);
    assert_int_equal(all - dup, ENTRIES);
    device_close(&d);
}

/* Last case: the daemon this program used stops cleanly (exit 0, under ASan without a leak) and
 * leaves a store that passes integrity_check. */
static void test_daemon_stops_cleanly(void **state)
{
    (void)state;
    assert_int_equal(fixture_stop_clean(&fx), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalled_server_then_sync_completes),
        cmocka_unit_test(test_trickled_link_completes_without_resending),
        cmocka_unit_test(test_trickle_then_cut_resends_at_most_one_window_per_cut),
        cmocka_unit_test(test_daemon_stops_cleanly), /* last */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
