/*
 * Crash test: outpostd is killed with SIGKILL at random points while a device pushes, and
 * restarted. After every restart and at the end:
 *   - every push the device saw ACKed is in the store (WELCOME's acked_seq covers it, and
 *     another device of the team pulls both of its rows);
 *   - no push is half applied: each push inserts two rows, and for every seq either both are
 *     there or neither is, and nothing past acked_seq is there;
 *   - nothing is applied twice: every ACK, including those of resent entries, reports no
 *     conflict (a second apply of an INSERT would collide with the first).
 * OUTPOST_CRASH_KILLS sets the number of kills (default 100); OUTPOST_CRASH_SEED the seed.
 *
 * A second case kills it while several entries in flight are merged in one store transaction
 * (group commit): right after an ACK arrives, which must then be durable with all of its rows,
 * while the rest of its group may be lost whole (OUTPOST_CRASH_GROUP_ROUNDS rounds, default 12).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "central_db.h"
#include "daemon_fixture.h"
#include "testclient.h"
/* Built a second time with OUTPOST_CRASH_ON_POSTGRESQL as test_daemon_crash_postgresql: outpostd
 * serving from a private PostgreSQL cluster (unit/pg_cluster.h), 60 kills by default; a push
 * there is several round trips to the database, so the kill falls within 1.2 times the push's
 * round trip as last measured (the commit lies near its end). */
#ifdef OUTPOST_CRASH_ON_POSTGRESQL
#include "pg_cluster.h"
#include "common/test_skip.h"
#define DEFAULT_KILLS 60u
#else
#define DEFAULT_KILLS 100u
#endif

#define T_MS 20000
#define MAX_SEQ 2000u

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void row_ids(uint64_t seq, char a[32], char b[32])
{
    snprintf(a, 32, "crash-%06llu-a", (unsigned long long)seq);
    snprintf(b, 32, "crash-%06llu-b", (unsigned long long)seq);
}

static int send_push(testclient *tc, uint64_t seq)
{
    char a[32], b[32];
    const char *ids[2] = {a, b};
    proto_msg *push;
    int rc;

    row_ids(seq, a, b);
    push = fixture_insert_push(seq, 2, ids, "t1", "crash");
    if (!push)
        return -1;
    rc = testclient_send(tc, push, T_MS);
    fixture_push_free(push);
    return rc;
}

/* Reads every contacts row the checker can see; marks present[seq] with a bit per row. */
static void pull_all(const daemon_fixture *fx, const test_device *checker, uint8_t *present)
{
    testclient *tc = fixture_hello(fx, checker, NULL);
    uint64_t cursor = 0;
    bool more = true;

    assert_non_null(tc);
    memset(present, 0, MAX_SEQ + 1);
    while (more) {
        proto_msg req, *rows = NULL;
        memset(&req, 0, sizeof req);
        req.type = PROTO_MSG_PULL;
        req.u.pull.cursor = cursor;
        req.u.pull.limit = 1000;
        assert_int_equal(testclient_send(tc, &req, T_MS), 0);
        assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ROWS, T_MS, &rows), 0);
        assert_int_equal(rows->type, PROTO_MSG_ROWS);
        for (uint32_t t = 0; t < rows->u.rows.n_tables; t++) {
            const proto_table_rows *tr = &rows->u.rows.tables[t];
            for (uint32_t r = 0; r < tr->n_rows; r++) {
                const proto_value *v = tr->rows + (size_t)r * tr->n_columns;
                char id[32] = "";
                unsigned long long seq;
                char which;
                if (v[0].type != PROTO_TEXT || v[0].u.b.n >= sizeof id)
                    continue;
                memcpy(id, v[0].u.b.p, v[0].u.b.n);
                if (sscanf(id, "crash-%6llu-%c", &seq, &which) != 2 || seq > MAX_SEQ)
                    continue;
                /* A row seen twice would mean a duplicate apply. */
                assert_false(present[seq] & (which == 'a' ? 1 : 2));
                present[seq] |= (uint8_t)(which == 'a' ? 1 : 2);
            }
        }
        more = rows->u.rows.more;
        cursor = rows->u.rows.cursor;
        proto_msg_free(rows);
    }
    testclient_close(tc);
}

static void check_store(const daemon_fixture *fx, const test_device *checker, uint64_t acked)
{
    uint8_t present[MAX_SEQ + 1];

    pull_all(fx, checker, present);
    for (uint64_t seq = 1; seq <= MAX_SEQ; seq++) {
        if (seq <= acked && present[seq] != 3)
            fail_msg("push %llu is acknowledged but rows present=%u",
                     (unsigned long long)seq, present[seq]);
        if (seq > acked && present[seq] != 0)
            fail_msg("push %llu is not acknowledged but rows present=%u",
                     (unsigned long long)seq, present[seq]);
    }
}

/* Where a kill fell, as seen from the next WELCOME. */
static void classify(uint64_t in_flight, uint64_t acked_max, uint64_t server_acked,
                     unsigned *lost_before_commit, unsigned *committed_unacked,
                     unsigned *acked_before_kill)
{
    if (in_flight <= acked_max)
        (*acked_before_kill)++;
    else if (in_flight <= server_acked)
        (*committed_unacked)++;
    else
        (*lost_before_commit)++;
}

/* The store outpostd runs on in this build: a SQLite file, or (test_daemon_crash_postgresql) a
 * private PostgreSQL cluster made for the test case and stopped by crash_store_destroy. */
#ifdef OUTPOST_CRASH_ON_POSTGRESQL
static pg_cluster cluster;
#endif

static void crash_store_create(daemon_fixture *fx)
{
#ifdef OUTPOST_CRASH_ON_POSTGRESQL
    if (!pg_cluster_available())
        TEST_SKIP("PostgreSQL 15 binaries not installed (scripts/deps.sh installs them)");
    assert_int_equal(pg_cluster_start(&cluster), 0);
    assert_int_equal(fixture_create_postgresql(fx, NULL, cluster.conninfo), 0);
#else
    assert_int_equal(fixture_create(fx, NULL), 0);
#endif
}

static void crash_store_destroy(void)
{
#ifdef OUTPOST_CRASH_ON_POSTGRESQL
    pg_cluster_stop(&cluster);
#endif
}

static void test_crash_sigkill_during_pushes(void **state)
{
    daemon_fixture fx;
    test_device device, checker;
    const char *env_kills = getenv("OUTPOST_CRASH_KILLS");
    const char *env_seed = getenv("OUTPOST_CRASH_SEED");
    unsigned kills = env_kills ? (unsigned)strtoul(env_kills, NULL, 10) : DEFAULT_KILLS;
    unsigned seed = env_seed ? (unsigned)strtoul(env_seed, NULL, 10) : (unsigned)time(NULL);
    uint64_t acked_max = 0; /* highest seq this test saw ACKed */
    uint64_t server_acked = 0;
    unsigned kills_while_pushing = 0;
    unsigned lost_before_commit = 0, committed_unacked = 0, acked_before_kill = 0;
    uint64_t in_flight = 0; /* the seq that was being pushed at the last kill */
    uint64_t rtt_us = 1000;  /* a push's round trip, last measured */

    (void)state;
    srand(seed);
    fprintf(stderr, "crash test: %u kills, seed %u\n", kills, seed);
    crash_store_create(&fx);
    assert_int_equal(fixture_start(&fx), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w1", &device), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w1", &checker), 0);

    /* Past `kills`, on (up to four times as many) until each window below has had a kill. */
    for (unsigned k = 0; k < kills || (k < 4 * kills && (lost_before_commit == 0 ||
                                                         committed_unacked == 0 ||
                                                         acked_before_kill == 0));
         k++) {
        testclient *tc = fixture_hello(&fx, &device, &server_acked);
        uint64_t next;
        unsigned before = (unsigned)rand() % 3;
        proto_msg *reply = NULL;

        assert_non_null(tc);
        /* Durable: the server has every push it ever acknowledged. */
        assert_true(server_acked >= acked_max);
        if (in_flight > 0)
            classify(in_flight, acked_max, server_acked, &lost_before_commit,
                     &committed_unacked, &acked_before_kill);
        next = server_acked + 1;
        assert_true(next + 4 < MAX_SEQ);

        for (unsigned i = 0; i < before; i++, next++) {
            uint64_t sent_us = now_us();
            assert_int_equal(send_push(tc, next), 0);
            assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ACK, T_MS, &reply), 0);
            assert_int_equal(reply->type, PROTO_MSG_ACK);
            assert_int_equal(reply->u.ack.seq, next);
            assert_int_equal(reply->u.ack.n_conflicts, 0);
            proto_msg_free(reply);
            acked_max = next;
            rtt_us = now_us() - sent_us + 1;
        }

        /* The kill: 0..2 ms after the push leaves (half of them within 0.4 ms; PostgreSQL:
         * within 1.2 round trips), which falls before, during and after the store transaction
         * and the ACK. */
        assert_int_equal(send_push(tc, next), 0);
        in_flight = next;
#ifdef OUTPOST_CRASH_ON_POSTGRESQL
        usleep((useconds_t)((uint64_t)rand() % (rtt_us * 6 / 5)));
#else
        (void)rtt_us;
        usleep((useconds_t)(rand() % 2 ? rand() % 400 : rand() % 2000));
#endif
        fixture_kill(&fx);
        kills_while_pushing++;
        if (testclient_recv(tc, 200, &reply) == 0) {
            if (reply->type == PROTO_MSG_ACK) {
                assert_int_equal(reply->u.ack.seq, next);
                assert_int_equal(reply->u.ack.n_conflicts, 0);
                acked_max = next;
            }
            proto_msg_free(reply);
        }
        testclient_close(tc);
        assert_int_equal(fixture_start(&fx), 0);

        /* Every tenth restart, look inside: all-or-nothing per push. */
        if (k % 10 == 9) {
            testclient *probe = fixture_hello(&fx, &device, &server_acked);
            assert_non_null(probe);
            testclient_close(probe);
            assert_true(server_acked >= acked_max);
            check_store(&fx, &checker, server_acked);
        }
    }

    {
        testclient *tc = fixture_hello(&fx, &device, &server_acked);
        assert_non_null(tc);
        testclient_close(tc);
    }
    assert_true(server_acked >= acked_max);
    if (in_flight > 0)
        classify(in_flight, acked_max, server_acked, &lost_before_commit, &committed_unacked,
                 &acked_before_kill);
    check_store(&fx, &checker, server_acked);
    fprintf(stderr,
            "crash test: %u kills while pushing: %u before the commit, %u after the commit "
            "before the ACK arrived, %u after the ACK; %llu pushes applied, all checked\n",
            kills_while_pushing, lost_before_commit, committed_unacked, acked_before_kill,
            (unsigned long long)server_acked);
    /* The kills landed where the test claims: in each of the three windows at least once. */
    assert_true(lost_before_commit >= 1);
    assert_true(committed_unacked >= 1);
    assert_true(acked_before_kill >= 1);
    assert_int_equal(fixture_stop_clean(&fx), 0);
    fixture_destroy(&fx);
    crash_store_destroy();
}

/* ---- kills during group commits ------------------------------------------------------------ */

enum { GC_ENTRIES = 6, GC_ROWS = 400, GC_MAX_SEQ = 400 };

/* Rows of each group-commit entry in the store, by seq (their name is "gc-<seq>"). */
static void gc_counts(const daemon_fixture *fx, uint32_t counts[GC_MAX_SEQ + 1])
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    memset(counts, 0, (GC_MAX_SEQ + 1) * sizeof counts[0]);
    assert_int_equal(central_db_open(fx, &db), 0);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT name, count(*) FROM contacts"
                                            " WHERE name LIKE 'gc-%' GROUP BY name", -1, &st,
                                        NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        unsigned long long seq = 0;
        if (sscanf((const char *)sqlite3_column_text(st, 0), "gc-%llu", &seq) == 1 &&
            seq <= GC_MAX_SEQ)
            counts[seq] = (uint32_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Every entry up to acked whole, none after it: the store holds what it acknowledged, each
 * entry all or nothing. */
static void gc_check(const daemon_fixture *fx, uint64_t acked)
{
    uint32_t counts[GC_MAX_SEQ + 1];

    gc_counts(fx, counts);
    for (uint64_t seq = 1; seq <= GC_MAX_SEQ; seq++) {
        uint32_t want = seq <= acked ? GC_ROWS : 0;
        if (counts[seq] != want)
            fail_msg("entry %llu has %u of its %u rows in the store (recorded up to %llu)",
                     (unsigned long long)seq, counts[seq], GC_ROWS, (unsigned long long)acked);
    }
}

static unsigned gc_largest_group(const daemon_fixture *fx)
{
    FILE *f = fopen(fx->log_path, "r");
    char line[1024];
    unsigned largest = 0;

    assert_non_null(f);
    while (fgets(line, sizeof line, f)) {
        const char *g = strstr(line, " group=");
        if (g && (unsigned)strtoul(g + 7, NULL, 10) > largest)
            largest = (unsigned)strtoul(g + 7, NULL, 10);
    }
    fclose(f);
    return largest;
}

static void test_crash_sigkill_during_group_commits(void **state)
{
    daemon_fixture fx;
    test_device device;
    const char *env_rounds = getenv("OUTPOST_CRASH_GROUP_ROUNDS");
    const char *env_seed = getenv("OUTPOST_CRASH_SEED");
    unsigned rounds = env_rounds ? (unsigned)strtoul(env_rounds, NULL, 10) : 12u;
    unsigned seed = env_seed ? (unsigned)strtoul(env_seed, NULL, 10) : (unsigned)time(NULL);
    uint64_t acked_max = 0, server_acked = 0;
    unsigned lost_in_flight = 0;
    char (*ids)[24] = calloc((size_t)GC_ENTRIES * GC_ROWS, sizeof *ids);
    const char **id_ptrs = calloc((size_t)GC_ENTRIES * GC_ROWS, sizeof *id_ptrs);
    char names[GC_ENTRIES][16];

    (void)state;
    assert_non_null(ids);
    assert_non_null(id_ptrs);
    srand(seed);
    fprintf(stderr, "group crash test: %u rounds, seed %u\n", rounds, seed);
    crash_store_create(&fx);
    assert_int_equal(fixture_start(&fx), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w1", &device), 0);

    for (unsigned round = 0; round < rounds; round++) {
        testclient *tc = fixture_hello(&fx, &device, &server_acked);
        assert_non_null(tc);
        /* Durable: every ACK this test saw is in the store, with all of its rows. */
        if (server_acked < acked_max)
            fail_msg("the store recorded up to seq %llu, but seq %llu was acknowledged",
                     (unsigned long long)server_acked, (unsigned long long)acked_max);
        gc_check(&fx, server_acked);
        uint64_t first = server_acked + 1;
        assert_true(first + GC_ENTRIES <= GC_MAX_SEQ);

        /* The whole window at once: the first entry is merged alone while the others arrive
         * and queue, and those go through the store together. */
        for (unsigned e = 0; e < GC_ENTRIES; e++) {
            uint64_t seq = first + e;
            snprintf(names[e], sizeof names[e], "gc-%llu", (unsigned long long)seq);
            for (unsigned r = 0; r < GC_ROWS; r++) {
                char *id = ids[(size_t)e * GC_ROWS + r];
                snprintf(id, sizeof ids[0], "gc-%06llu-%04u", (unsigned long long)seq, r);
                id_ptrs[(size_t)e * GC_ROWS + r] = id;
            }
            proto_msg *push = fixture_insert_push(seq, GC_ROWS, id_ptrs + (size_t)e * GC_ROWS,
                                                  "t1", names[e]);
            assert_non_null(push);
            assert_int_equal(testclient_send(tc, push, T_MS), 0);
            fixture_push_free(push);
        }
        /* The kill: as soon as the 2nd or 3rd ACK is here (the first ACKs of a group). */
        unsigned kill_at = 2 + (unsigned)rand() % 2, n_acks = 0;
        proto_msg *reply = NULL;
        while (n_acks < kill_at) {
            assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ACK, T_MS, &reply), 0);
            assert_int_equal(reply->type, PROTO_MSG_ACK);
            assert_int_equal(reply->u.ack.seq, first + n_acks);
            proto_msg_free(reply);
            acked_max = first + n_acks++;
        }
        fixture_kill(&fx);
        /* What was already on its way was sent before the kill: acknowledged too. */
        while (testclient_recv(tc, 100, &reply) == 0) {
            if (reply->type == PROTO_MSG_ACK) {
                assert_int_equal(reply->u.ack.seq, first + n_acks);
                acked_max = first + n_acks++;
            }
            proto_msg_free(reply);
        }
        testclient_close(tc);
        assert_int_equal(fixture_start(&fx), 0);
        if (acked_max < first + GC_ENTRIES - 1)
            lost_in_flight++;
    }
    testclient *tc = fixture_hello(&fx, &device, &server_acked);
    assert_non_null(tc);
    testclient_close(tc);
    if (server_acked < acked_max)
        fail_msg("the store recorded up to seq %llu, but seq %llu was acknowledged",
                 (unsigned long long)server_acked, (unsigned long long)acked_max);
    gc_check(&fx, server_acked);
    unsigned largest = gc_largest_group(&fx);
    fprintf(stderr, "group crash test: %u rounds, %u killed with entries unanswered, largest "
            "group %u, %llu entries applied, all checked\n", rounds, lost_in_flight, largest,
            (unsigned long long)server_acked);
    /* The kills landed where the test claims: while entries were in flight, and entries did
     * go through the store together. */
    assert_true(lost_in_flight >= 1);
    assert_true(largest >= 3);
    assert_int_equal(fixture_stop_clean(&fx), 0);
    fixture_destroy(&fx);
    crash_store_destroy();
    free(ids);
    free(id_ptrs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_sigkill_during_pushes),
        cmocka_unit_test(test_crash_sigkill_during_group_commits),
    };
#ifdef OUTPOST_CRASH_ON_POSTGRESQL
    return test_exit_status(
        cmocka_run_group_tests_name("daemon_crash_postgresql", tests, NULL, NULL));
#else
    return cmocka_run_group_tests_name("daemon_crash", tests, NULL, NULL);
#endif
}
