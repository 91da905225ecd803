/*
 * Hostile input against a running outpostd (docs/design.md, invariant 7), while a good device keeps
 * syncing through liboutpost. What test_daemon.c already covers (oversize, one truncated HELLO,
 * non-MessagePack bytes, one hostile length, a text frame, PULL before HELLO, a three-failure
 * lockout) is not repeated; this covers the rest:
 *   - the protocol corpus (tests/fuzz/corpus/proto: every message type, valid and broken) and
 *     each of its files truncated at several points, both before and after HELLO;
 *   - deeply nested arrays and maps, hostile declared lengths inside a message, hostile values
 *     inside a PUSH;
 *   - messages out of order inside an authenticated session (HELLO or ENROLL again, server-only
 *     messages, chunks that do not continue);
 *   - hundreds of slow handshakes: TCP connections that never start TLS, TLS sessions that
 *     never send the WebSocket upgrade, upgrades cut half way;
 *   - a flood of wrong credentials from one address, which gets locked out while the good
 *     device, from another address, goes on syncing.
 * Each time: the server answers with the right error, stays up, the good device's push and pull
 * succeed, and the store passes integrity_check at the end.
 * The last two cases pin, at the protocol level, two pull bugs the convergence test found
 * (first pull after a push, echo of a row another device changed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#include <outpost.h>
#include <sqlite3.h>

#include "daemon_fixture.h"
#include "test_util.h"
#include "faultproxy.h"
#include "strf.h"
#include "testclient.h"
#include "ovalue.h"

#define T_MS 15000
#define WAIT_MS 60000u
#define LOCKOUT_FAILURES 5

static daemon_fixture fx;
static char *ca_pem;
static faultproxy *other_addr; /* connections through it come from 127.0.0.2 */
static uint16_t other_port;
static faultproxy *flood_addr; /* and through this one from 127.0.0.3 */
static uint16_t flood_port;
static int roundtrips;

typedef struct device {
    char path[400];
    outpost_replica *r;
    outpost_sync *sync;
} device;

static device writer, reader; /* the good devices, both worker w1, from 127.0.0.1 */

/* ---- the good devices ----------------------------------------------------------------------- */

static void device_up(device *d, const char *name)
{
    char err[256], code[32], url[64];
    snprintf(d->path, sizeof d->path, "%s/%s.db", fx.dir, name);
    outpost_config cfg = {.path = d->path, .no_encryption = 1};
    assert_int_equal(outpost_replica_open(&cfg, &d->r, err, sizeof err), OUTPOST_OK);
    assert_int_equal(fixture_enroll_code(&fx, "w1", code), 0);
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/sync", fx.port);
    outpost_enroll_options eo = {.url = url, .code = code, .ca_pem = ca_pem};
    if (outpost_enroll(d->r, &eo) != OUTPOST_OK)
        fail_msg("enroll: %s", outpost_errmsg(d->r));
    outpost_sync_config sc = {.stay_connected = 1, .debounce_ms = 20, .retry_base_ms = 100,
                              .retry_cap_ms = 1000};
    assert_int_equal(outpost_sync_start(d->r, &sc, &d->sync), OUTPOST_OK);
}

static void device_down(device *d)
{
    outpost_sync_stop(d->sync);
    d->sync = NULL;
    outpost_replica_close(d->r);
    d->r = NULL;
}

static int64_t count_named(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM contacts WHERE name = ?1", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return n;
}

static int64_t central_named(const char *name)
{
    sqlite3 *db = NULL;
    int64_t n = -1;
    if (sqlite3_open_v2(fx.store_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 10000);
        n = count_named(db, name);
    }
    sqlite3_close(db);
    return n;
}

/* The store's newest server sequence: a PULL from beyond it is answered CURSOR_AHEAD. */
static uint64_t central_server_seq(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t seq = -1;
    if (sqlite3_open_v2(fx.store_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_busy_timeout(db, 10000) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT value FROM _outpost_meta WHERE key = 'server_seq'", -1,
                           &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        seq = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_true(seq >= 0);
    return (uint64_t)seq;
}

/* The good device writes a record; it reaches the server (push) and the other good device
 * (pull after NOTIFY). This is what an outreach worker would notice. */
static void good_roundtrip(const char *phase)
{
    char id[OUTPOST_UUID_TEXT_SIZE], name[96];
    snprintf(name, sizeof name, "good %d %s", ++roundtrips, phase);
    assert_int_equal(outpost_uuid_make(id), OUTPOST_OK);
    outpost_value p[3] = {ov_text(id), ov_text("t1"), ov_text(name)};
    if (outpost_exec(writer.r, "INSERT INTO contacts (id, team_id, name) VALUES (?1, ?2, ?3)", p,
                     3) != OUTPOST_OK)
        fail_msg("write: %s", outpost_errmsg(writer.r));
    outpost_sync_now(writer.sync);
    int64_t at_reader = 0;
    for (uint32_t waited = 0; waited < WAIT_MS; waited += 50) {
        at_reader = count_named(outpost_replica_db(reader.r), name);
        if (at_reader == 1)
            break;
        if (waited % 2000 == 0)
            outpost_sync_now(reader.sync);
        test_sleep_ms(50);
    }
    if (at_reader != 1) {
        outpost_sync_status st;
        outpost_sync_get_status(writer.sync, &st);
        fail_msg("%s: the good device's record did not reach the other device (writer: %s, "
                 "last error %s: %s)",
                 phase, outpost_activity_name(st.activity), outpost_strerror(st.last_error),
                 st.last_error_msg);
    }
    assert_int_equal(central_named(name), 1);
    assert_int_equal(kill(fx.pid, 0), 0);
}

/* ---- raw messages --------------------------------------------------------------------------- */

static testclient *connect_via(uint16_t port)
{
    testclient *tc = NULL;
    char err[256];
    if (testclient_connect(port, fx.ca_path, T_MS, &tc, err, sizeof err) != 0)
        fail_msg("connect: %s", err);
    return tc;
}

static void expect_error(testclient *tc, proto_error_code code)
{
    proto_msg *m = NULL;
    assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ERROR, T_MS, &m), 0);
    assert_int_equal(m->type, PROTO_MSG_ERROR);
    if (m->u.error.code != (uint32_t)code)
        fail_msg("expected error %u, got %u: %s", (unsigned)code, (unsigned)m->u.error.code,
                 m->u.error.message ? m->u.error.message : "");
    assert_non_null(m->u.error.message);
    assert_true(strlen(m->u.error.message) > 0);
    proto_msg_free(m);
}

/* What the server did with one message: the type of its answer (0: it closed without one),
 * the ERROR code when it was an ERROR, and whether the session then ended. */
typedef struct answer {
    int type;
    uint32_t code;
    bool ended;
} answer;

/* Sends bytes as one message and reads the answer. Never silence with the connection left
 * open. A NOTIFY (another device's write) is skipped. */
static answer send_and_read(testclient *tc, const uint8_t *data, size_t n)
{
    answer a = {0, 0, false};
    proto_msg *m = NULL;

    (void)testclient_send_raw(tc, data, n, 0, true, false, T_MS);
    while (testclient_recv(tc, T_MS, &m) == 0 && m->type == PROTO_MSG_NOTIFY) {
        proto_msg_free(m);
        m = NULL;
    }
    if (m == NULL) {
        if (!testclient_wait_closed(tc, T_MS))
            fail_msg("the server neither answered nor closed (%zu bytes sent)", n);
        a.ended = true;
        return a;
    }
    a.type = (int)m->type;
    if (m->type == PROTO_MSG_ERROR) {
        assert_non_null(m->u.error.message);
        assert_true(strlen(m->u.error.message) > 0);
        a.code = m->u.error.code;
    }
    if (m->type == PROTO_MSG_REJECT && m->u.reject.n_rows > 0)
        a.code = m->u.reject.rows[0].code; /* the first refused row's code */
    proto_msg_free(m);
    /* An ERROR that ends the session closes at once; anything else leaves it open. */
    a.ended = testclient_wait_closed(tc, a.type == PROTO_MSG_ERROR ? T_MS : 300);
    return a;
}

/* The error code of the answer to bytes that must be refused with an ERROR that ends the
 * session (fails on any other answer). */
static int send_and_judge(testclient *tc, const uint8_t *data, size_t n)
{
    answer a = send_and_read(tc, data, n);
    if (a.type != PROTO_MSG_ERROR || !a.ended)
        fail_msg("expected an ERROR that ends the session, got %s%s",
                 a.type ? proto_msg_type_name((uint32_t)a.type) : "a close without answer",
                 a.ended ? "" : " with the session left open");
    return (int)a.code;
}

static proto_msg hello_for(const test_device *dev)
{
    proto_msg m;
    memset(&m, 0, sizeof m);
    m.type = PROTO_MSG_HELLO;
    m.u.hello.version = PROTO_VERSION;
    m.u.hello.device_id = dev->id;
    memcpy(m.u.hello.secret, dev->secret, sizeof dev->secret);
    return m;
}

typedef struct blob {
    uint8_t *data;
    size_t len;
    char name[300];
} blob;

/* Every corpus file, plus each cut at a third, at half and one byte short. */
static blob *load_corpus(size_t *out_n)
{
    const char *src = getenv("OUTPOST_SOURCE_DIR");
    char *dir = strf("%s/tests/fuzz/corpus/proto", src ? src : ".");
    DIR *d = opendir(dir);
    assert_non_null(d);
    blob *out = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *path = strf("%s/%s", dir, e->d_name);
        size_t len = 0;
        char *bytes = test_read_file(path, &len);
        free(path);
        assert_non_null(bytes);
        size_t cuts[4] = {len, len / 3, len / 2, len > 0 ? len - 1 : 0};
        for (int k = 0; k < 4; k++) {
            if (k > 0 && (cuts[k] == 0 || cuts[k] == len))
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                out = realloc(out, cap * sizeof *out);
                assert_non_null(out);
            }
            out[n].len = cuts[k];
            out[n].data = malloc(cuts[k] + 1);
            assert_non_null(out[n].data);
            memcpy(out[n].data, bytes, cuts[k]);
            snprintf(out[n].name, sizeof out[n].name, "%s[0:%zu]", e->d_name, cuts[k]);
            n++;
        }
        free(bytes);
    }
    closedir(d);
    free(dir);
    assert_true(n >= 20);
    *out_n = n;
    return out;
}

static void free_corpus(blob *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(b[i].data);
    free(b);
}

/* ---- setup ---------------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    char limits[256];
    snprintf(limits, sizeof limits,
             "max_message_bytes = 65536\nhandshake_timeout_s = 3\nmessage_timeout_s = 3\n"
             "lockout_failures = %d\nlockout_window_s = 120\nlockout_duration_s = 120\n",
             LOCKOUT_FAILURES);
    if (fixture_create(&fx, limits) != 0 || fixture_start(&fx) != 0)
        return -1;
    ca_pem = test_read_file(fx.ca_path, NULL);
    if (ca_pem == NULL || faultproxy_start(fx.port, &other_addr, &other_port) != 0)
        return -1;
    faultproxy_set_source(other_addr, 0x7f000002u);
    if (faultproxy_start(fx.port, &flood_addr, &flood_port) != 0)
        return -1;
    faultproxy_set_source(flood_addr, 0x7f000003u);
    device_up(&writer, "writer");
    device_up(&reader, "reader");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    device_down(&writer);
    device_down(&reader);
    faultproxy_stop(other_addr);
    faultproxy_stop(flood_addr);
    free(ca_pem);
    fixture_destroy(&fx);
    return 0;
}

/* Last case: after everything it was sent, the daemon stops cleanly and the store is sound. */
static void test_hostile_daemon_stops_cleanly_with_sound_store(void **state)
{
    (void)state;
    device_down(&writer);
    device_down(&reader);
    assert_int_equal(fixture_stop_clean(&fx), 0);
}

/* ---- cases ---------------------------------------------------------------------------------- */

/* The answer docs/protocol.md prescribes for bytes sent as one message, before or after a
 * successful HELLO, with the corpus's own content against this fixture: what the decoder
 * refuses is an ERROR that ends the session (TOO_LARGE for a length beyond a limit,
 * BAD_MESSAGE otherwise); before HELLO a HELLO of an unknown device is AUTH and an ENROLL with
 * an unknown code ENROLL_CODE; after HELLO a PULL gets ROWS (CURSOR_AHEAD, ending the session,
 * when its cursor is beyond the store's newest sequence) and the corpus's one-chunk PUSH
 * (six columns for a four-column table) is REJECTed row by row as UNKNOWN_COLUMN, the session
 * going on; a PUSH that starts at a chunk other than 0, and every other message type in
 * either phase, is BAD_MESSAGE, ending the session. */
static answer expected_answer(bool after_hello, const uint8_t *data, size_t n)
{
    proto_msg *m = NULL;
    int rc = proto_decode(data, n, NULL, &m, NULL, 0);
    answer a = {PROTO_MSG_ERROR, PROTO_ERR_BAD_MESSAGE, true};

    if (rc != 0) {
        if (rc == PROTO_ETOOBIG)
            a.code = PROTO_ERR_TOO_LARGE;
        return a;
    }
    if (!after_hello && m->type == PROTO_MSG_HELLO)
        a.code = PROTO_ERR_AUTH;
    else if (!after_hello && m->type == PROTO_MSG_ENROLL)
        a.code = PROTO_ERR_ENROLL_CODE;
    else if (after_hello && m->type == PROTO_MSG_PULL && m->u.pull.cursor > central_server_seq())
        a.code = PROTO_ERR_CURSOR_AHEAD;
    else if (after_hello && m->type == PROTO_MSG_PULL)
        a = (answer){PROTO_MSG_ROWS, 0, false};
    else if (after_hello && m->type == PROTO_MSG_PUSH && m->u.push.chunk == 0 &&
             !m->u.push.more)
        a = (answer){PROTO_MSG_REJECT, PROTO_ERR_UNKNOWN_COLUMN, false};
    proto_msg_free(m);
    return a;
}

static void assert_answer(const char *phase, const blob *b, answer got, answer want)
{
    if (got.type != want.type || got.code != want.code || got.ended != want.ended)
        fail_msg("%s %s: expected %s code %u%s, got %s code %u%s", b->name, phase,
                 proto_msg_type_name((uint32_t)want.type), (unsigned)want.code,
                 want.ended ? " ending the session" : " keeping the session",
                 got.type ? proto_msg_type_name((uint32_t)got.type) : "a close without answer",
                 (unsigned)got.code, got.ended ? " ending the session" : " keeping the session");
}

static void test_corpus_before_and_after_hello_is_answered(void **state)
{
    (void)state;
    size_t n = 0;
    blob *corpus = load_corpus(&n);
    test_device attacker;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &attacker), 0);
    size_t kept_open = 0;

    /* Before HELLO, from the other address (a HELLO of an unknown device is a failed login
     * there, away from the good devices' address). */
    for (size_t i = 0; i < n; i++) {
        testclient *tc = connect_via(other_port);
        answer got = send_and_read(tc, corpus[i].data, corpus[i].len);
        assert_answer("before HELLO", &corpus[i], got,
                      expected_answer(false, corpus[i].data, corpus[i].len));
        testclient_close(tc);
        if (i % 16 == 15)
            good_roundtrip("corpus before hello");
    }
    /* After HELLO, from an enrolled device: the session handler and the merge see it. */
    for (size_t i = 0; i < n; i++) {
        testclient *tc = fixture_hello(&fx, &attacker, NULL);
        assert_non_null(tc);
        answer want = expected_answer(true, corpus[i].data, corpus[i].len);
        answer got = send_and_read(tc, corpus[i].data, corpus[i].len);
        assert_answer("after HELLO", &corpus[i], got, want);
        kept_open += !want.ended;
        testclient_close(tc);
        if (i % 16 == 15)
            good_roundtrip("corpus after hello");
    }
    /* The corpus holds a PUSH and a PULL that are answered in a session that goes on. */
    assert_true(kept_open >= 2);
    free_corpus(corpus, n);
    good_roundtrip("after corpus");
}

static void test_deep_nesting_and_hostile_lengths_are_bad_messages(void **state)
{
    (void)state;
    /* Deep beyond any limit (32), yet under the 16 KiB a connection may send before HELLO. */
    enum { DEPTH = 12000 };
    uint8_t *buf = malloc(DEPTH * 3 + 16);
    assert_non_null(buf);

    /* [[[[...nil...]]]] */
    memset(buf, 0x91, DEPTH);
    buf[DEPTH] = 0xc0;
    testclient *tc = connect_via(fx.port);
    assert_int_equal(send_and_judge(tc, buf, DEPTH + 1), PROTO_ERR_BAD_MESSAGE);
    testclient_close(tc);

    /* {"k": {"k": {...}}} */
    size_t n = 0;
    for (int i = 0; i < DEPTH / 3; i++) {
        buf[n++] = 0x81;
        buf[n++] = 0xa1;
        buf[n++] = 'k';
    }
    buf[n++] = 0xc0;
    tc = connect_via(fx.port);
    assert_int_equal(send_and_judge(tc, buf, n), PROTO_ERR_BAD_MESSAGE);
    testclient_close(tc);

    /* A map declaring 2^32-1 pairs, an array 2^32-1 long, and a string 2^32-1 long, each
     * inside an otherwise plausible message. */
    static const uint8_t map32[] = {0x82, 0xa1, 't', 0x01, 0xa1, 'x', 0xdf, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t arr32[] = {0x82, 0xa1, 't', 0x01, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t str32[] = {0x82, 0xa1, 't', 0x01, 0xa1, 'x', 0xdb, 0xff, 0xff, 0xff, 0xff,
                                    'a'};
    static const uint8_t bin32[] = {0x82, 0xa1, 't', 0x01, 0xa1, 'x', 0xc6, 0x7f, 0xff, 0xff, 0xff};
    const uint8_t *const hostile[] = {map32, arr32, str32, bin32};
    const size_t lens[] = {sizeof map32, sizeof arr32, sizeof str32, sizeof bin32};
    for (int i = 0; i < 4; i++) {
        tc = connect_via(fx.port);
        /* A declared length beyond the limit is TOO_LARGE, whatever follows it. */
        assert_int_equal(send_and_judge(tc, hostile[i], lens[i]), PROTO_ERR_TOO_LARGE);
        testclient_close(tc);
    }
    free(buf);
    good_roundtrip("after nesting");
}

static void test_hostile_row_values_in_a_push_are_refused(void **state)
{
    (void)state;
    test_device dev;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &dev), 0);
    testclient *tc = fixture_hello(&fx, &dev, NULL);
    assert_non_null(tc);

    /* A change to a table that does not exist, one with an integer for its scope column's
     * team, one without its primary key, and one out of scope: each refused with its exact
     * code (never applied, never a crash), and the session goes on after a REJECT. */
    static const char *const ids[1] = {"hostile-row-1"};
    const answer want[4] = {
        {PROTO_MSG_REJECT, PROTO_ERR_UNKNOWN_TABLE, false},
        {PROTO_MSG_REJECT, PROTO_ERR_OUT_OF_SCOPE, false}, /* 1 is not one of its teams */
        {PROTO_MSG_REJECT, PROTO_ERR_INVALID_CHANGE, false},
        {PROTO_MSG_REJECT, PROTO_ERR_OUT_OF_SCOPE, false},
    };
    uint64_t seq = 1;
    for (int k = 0; k < 4; k++) {
        proto_msg *push = fixture_insert_push(seq, 1, ids, k == 3 ? "t2" : "t1", "hostile");
        assert_non_null(push);
        proto_table_changes *tch = &push->u.push.tables[0];
        if (k == 0)
            tch->table = "no_such_table";
        if (k == 1) {
            /* an integer where the scope column's team name belongs */
            tch->changes[0].cols[1].new_val.type = PROTO_INT;
            tch->changes[0].cols[1].new_val.u.i = 1;
        }
        if (k == 2)
            tch->changes[0].cols[0].new_val.type = PROTO_NULL; /* no primary key */
        if (testclient_send(tc, push, T_MS) != 0)
            fail_msg("hostile push %d could not be sent", k);
        fixture_push_free(push);
        proto_msg *reply = NULL;
        assert_int_equal(testclient_recv(tc, T_MS, &reply), 0);
        uint32_t code = reply->type == PROTO_MSG_ERROR ? reply->u.error.code
                        : reply->type == PROTO_MSG_REJECT && reply->u.reject.n_rows == 1
                            ? reply->u.reject.rows[0].code
                            : 0;
        if ((int)reply->type != want[k].type || code != want[k].code)
            fail_msg("hostile push %d: expected %s code %u, got %s code %u", k,
                     proto_msg_type_name((uint32_t)want[k].type), (unsigned)want[k].code,
                     proto_msg_type_name((uint32_t)reply->type), (unsigned)code);
        if (reply->type == PROTO_MSG_REJECT)
            assert_int_equal(reply->u.reject.seq, seq);
        bool closed = reply->type == PROTO_MSG_ERROR;
        proto_msg_free(reply);
        if (closed) {
            assert_true(testclient_wait_closed(tc, T_MS));
            testclient_close(tc);
            tc = fixture_hello(&fx, &dev, NULL);
            assert_non_null(tc);
        }
        seq++;
    }
    testclient_close(tc);
    assert_int_equal(central_named("hostile"), 0);
    good_roundtrip("after hostile rows");
}

static void test_messages_out_of_order_in_a_session(void **state)
{
    (void)state;
    test_device dev;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &dev), 0);

    /* HELLO twice. */
    testclient *tc = fixture_hello(&fx, &dev, NULL);
    assert_non_null(tc);
    proto_msg hello = hello_for(&dev);
    assert_int_equal(testclient_send(tc, &hello, T_MS), 0);
    expect_error(tc, PROTO_ERR_BAD_MESSAGE);
    testclient_close(tc);

    /* ENROLL inside a session. */
    tc = fixture_hello(&fx, &dev, NULL);
    assert_non_null(tc);
    proto_msg m;
    memset(&m, 0, sizeof m);
    m.type = PROTO_MSG_ENROLL;
    m.u.enroll.version = PROTO_VERSION;
    m.u.enroll.code = "AAAAA-BBBBB-CCCCC-DDDDD";
    assert_int_equal(testclient_send(tc, &m, T_MS), 0);
    expect_error(tc, PROTO_ERR_BAD_MESSAGE);
    testclient_close(tc);

    /* Messages only a server sends: NOTIFY, ACK, WIPE. */
    const proto_msg_type server_only[] = {PROTO_MSG_NOTIFY, PROTO_MSG_ACK, PROTO_MSG_WIPE};
    for (int i = 0; i < 3; i++) {
        tc = fixture_hello(&fx, &dev, NULL);
        assert_non_null(tc);
        memset(&m, 0, sizeof m);
        m.type = server_only[i];
        if (m.type == PROTO_MSG_WIPE)
            m.u.wipe.reason = "no";
        assert_int_equal(testclient_send(tc, &m, T_MS), 0);
        expect_error(tc, PROTO_ERR_BAD_MESSAGE);
        testclient_close(tc);
    }

    /* A push that starts at chunk 1, and one whose second chunk belongs to another entry. */
    static const char *const ids[1] = {"order-1"};
    tc = fixture_hello(&fx, &dev, NULL);
    assert_non_null(tc);
    proto_msg *push = fixture_insert_push(1, 1, ids, "t1", "out of order");
    push->u.push.chunk = 1;
    assert_int_equal(testclient_send(tc, push, T_MS), 0);
    fixture_push_free(push);
    expect_error(tc, PROTO_ERR_BAD_MESSAGE);
    testclient_close(tc);

    tc = fixture_hello(&fx, &dev, NULL);
    assert_non_null(tc);
    push = fixture_insert_push(1, 1, ids, "t1", "out of order");
    push->u.push.more = true;
    assert_int_equal(testclient_send(tc, push, T_MS), 0);
    fixture_push_free(push);
    push = fixture_insert_push(2, 1, ids, "t1", "out of order");
    push->u.push.chunk = 1;
    assert_int_equal(testclient_send(tc, push, T_MS), 0);
    fixture_push_free(push);
    expect_error(tc, PROTO_ERR_BAD_MESSAGE);
    testclient_close(tc);
    /* Nothing of those half transactions was applied. */
    assert_int_equal(central_named("out of order"), 0);
    good_roundtrip("after out of order");
}

/* A TLS client that completes the handshake and then says nothing (never sends the upgrade). */
typedef struct tls_idle {
    mbedtls_net_context net;
    mbedtls_ssl_context ssl;
    bool up;
} tls_idle;

static void test_hundreds_of_slow_handshakes_are_timed_out(void **state)
{
    (void)state;
    enum { RAW = 300, TLS = 100, PARTIAL = 50 };
    int raw[RAW];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(fx.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    /* TCP connections that never start TLS. */
    for (int i = 0; i < RAW; i++) {
        raw[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(raw[i] >= 0);
        assert_int_equal(connect(raw[i], (struct sockaddr *)&sa, sizeof sa), 0);
    }

    /* TLS sessions that never send the upgrade, and some that send half of it. */
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config conf;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_ssl_config_init(&conf);
    assert_int_equal(mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0), 0);
    assert_int_equal(mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT,
                                                 MBEDTLS_SSL_TRANSPORT_STREAM,
                                                 MBEDTLS_SSL_PRESET_DEFAULT),
                     0);
    /* The attacker does not care who the server is. */
    mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_NONE);
    mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
    tls_idle *tls = calloc(TLS + PARTIAL, sizeof *tls);
    assert_non_null(tls);
    char port[8];
    snprintf(port, sizeof port, "%u", fx.port);
    int handshakes = 0;
    for (int i = 0; i < TLS + PARTIAL; i++) {
        mbedtls_net_init(&tls[i].net);
        mbedtls_ssl_init(&tls[i].ssl);
        if (mbedtls_net_connect(&tls[i].net, "127.0.0.1", port, MBEDTLS_NET_PROTO_TCP) != 0 ||
            mbedtls_ssl_setup(&tls[i].ssl, &conf) != 0)
            continue;
        mbedtls_ssl_set_bio(&tls[i].ssl, &tls[i].net, mbedtls_net_send, mbedtls_net_recv, NULL);
        int rc;
        while ((rc = mbedtls_ssl_handshake(&tls[i].ssl)) == MBEDTLS_ERR_SSL_WANT_READ ||
               rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
        }
        if (rc != 0)
            continue;
        tls[i].up = true;
        handshakes++;
        if (i >= TLS) {
            static const char half[] = "GET /sync HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websoc";
            (void)mbedtls_ssl_write(&tls[i].ssl, (const unsigned char *)half, sizeof half - 1);
        }
        if (i % 50 == 49)
            good_roundtrip("during slow handshakes");
    }
    assert_int_equal(handshakes, TLS + PARTIAL);
    good_roundtrip("while slow handshakes are held");

    /* handshake_timeout_s is 3: every one of them is closed by the server, well within 30 s. */
    int open_raw = RAW;
    for (int waited = 0; open_raw > 0 && waited < 30000; waited += 100) {
        open_raw = 0;
        for (int i = 0; i < RAW; i++) {
            if (raw[i] < 0)
                continue;
            struct pollfd pfd = {.fd = raw[i], .events = POLLIN};
            char c;
            if (poll(&pfd, 1, 0) == 1 && read(raw[i], &c, 1) <= 0) {
                close(raw[i]);
                raw[i] = -1;
            } else {
                open_raw++;
            }
        }
        if (open_raw > 0)
            test_sleep_ms(100);
    }
    if (open_raw > 0)
        fail_msg("%d TCP connections that never started TLS are still open after 30 s",
                 open_raw);

    int open_tls = 0;
    for (int i = 0; i < TLS + PARTIAL; i++) {
        if (!tls[i].up)
            continue;
        /* The server closes: the read ends (close_notify, EOF or reset), it does not block. */
        struct pollfd pfd = {.fd = tls[i].net.fd, .events = POLLIN};
        bool closed = false;
        for (int waited = 0; waited < 30000 && !closed; waited += 100) {
            if (poll(&pfd, 1, 100) == 1) {
                unsigned char b[512];
                int rc = mbedtls_ssl_read(&tls[i].ssl, b, sizeof b);
                closed = rc == 0 || (rc < 0 && rc != MBEDTLS_ERR_SSL_WANT_READ &&
                                     rc != MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET);
            }
        }
        if (!closed)
            open_tls++;
        mbedtls_ssl_free(&tls[i].ssl);
        mbedtls_net_free(&tls[i].net);
    }
    free(tls);
    mbedtls_ssl_config_free(&conf);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    if (open_tls > 0)
        fail_msg("%d TLS connections that never upgraded are still open after 30 s", open_tls);
    good_roundtrip("after slow handshakes");
}

static void test_credential_flood_is_locked_out_while_good_device_syncs(void **state)
{
    (void)state;
    test_device victim;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &victim), 0);
    /* Lockouts are kept per kind of attempt: [0] enrollment codes, [1] device secrets. */
    int auth[2] = {0, 0}, locked[2] = {0, 0};
    for (int i = 0; i < 60; i++) {
        int kind = i % 3 == 0 ? 0 : 1;
        testclient *tc = connect_via(flood_port);
        proto_msg m;
        test_device guess = victim;
        if (i % 3 == 0) {
            memset(&m, 0, sizeof m);
            m.type = PROTO_MSG_ENROLL;
            m.u.enroll.version = PROTO_VERSION;
            m.u.enroll.code = "ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ";
        } else {
            guess.secret[i % 32] ^= (uint8_t)(1 + i);
            if (i % 3 == 2)
                snprintf(guess.id, sizeof guess.id, "no-such-device-%d", i);
            m = hello_for(&guess);
        }
        assert_int_equal(testclient_send(tc, &m, T_MS), 0);
        proto_msg *reply = NULL;
        assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ERROR, T_MS, &reply), 0);
        assert_int_equal(reply->type, PROTO_MSG_ERROR);
        uint32_t code = reply->u.error.code;
        proto_msg_free(reply);
        if (code == PROTO_ERR_LOCKED_OUT)
            locked[kind]++;
        else if (code == (kind == 0 ? PROTO_ERR_ENROLL_CODE : PROTO_ERR_AUTH))
            auth[kind]++;
        else
            fail_msg("a wrong credential got error %u", (unsigned)code);
        /* Once locked, always locked (within the lockout duration). */
        if (locked[kind] > 0)
            assert_int_equal(code, PROTO_ERR_LOCKED_OUT);
        testclient_close(tc);
        if (i % 15 == 14)
            good_roundtrip("during credential flood");
    }
    assert_int_equal(auth[0], LOCKOUT_FAILURES);
    assert_int_equal(auth[1], LOCKOUT_FAILURES);
    assert_int_equal(locked[0], 20 - LOCKOUT_FAILURES);
    assert_int_equal(locked[1], 40 - LOCKOUT_FAILURES);

    /* A device with the right secret behind the locked address (an office NAT) still syncs:
     * 256-bit secrets are not guessed, and its colleagues' failures are not its own. */
    testclient *tc = connect_via(flood_port);
    proto_msg hello = hello_for(&victim);
    proto_msg *welcome = NULL;
    assert_int_equal(testclient_send(tc, &hello, T_MS), 0);
    assert_int_equal(testclient_recv(tc, T_MS, &welcome), 0);
    assert_int_equal(welcome->type, PROTO_MSG_WELCOME);
    proto_msg_free(welcome);
    testclient_close(tc);
    assert_true(fixture_log_contains(&fx, "locked out"));

    /* The victim itself, from its own address, is not locked out. */
    tc = fixture_hello(&fx, &victim, NULL);
    assert_non_null(tc);
    testclient_close(tc);
    good_roundtrip("after credential flood");
}

/* Found by test_convergence: a device that pushed rows before its first pull (cursor 0) holds
 * them, so that first pull must carry their deletion by another device. */
static void test_first_pull_after_a_push_carries_deletions(void **state)
{
    (void)state;
    test_device a, b;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &a), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w1", &b), 0);
    static const char *const ids[1] = {"pushed-then-deleted"};
    proto_msg *reply = NULL;

    testclient *tc = fixture_hello(&fx, &a, NULL);
    assert_non_null(tc);
    proto_msg *push = fixture_insert_push(1, 1, ids, "t1", "pushed before any pull");
    assert_int_equal(testclient_send(tc, push, T_MS), 0);
    fixture_push_free(push);
    assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ACK, T_MS, &reply), 0);
    assert_int_equal(reply->type, PROTO_MSG_ACK);
    proto_msg_free(reply);
    testclient_close(tc);

    /* Another device of the team deletes it (a DELETE carries every old value). */
    tc = fixture_hello(&fx, &b, NULL);
    assert_non_null(tc);
    push = fixture_insert_push(1, 1, ids, "t1", "pushed before any pull");
    proto_change *ch = &push->u.push.tables[0].changes[0];
    ch->op = PROTO_OP_DELETE;
    for (uint32_t k = 0; k < ch->n_cols; k++) {
        ch->cols[k].old_val = ch->cols[k].new_val;
        ch->cols[k].new_val.type = PROTO_UNDEF;
    }
    assert_int_equal(testclient_send(tc, push, T_MS), 0);
    fixture_push_free(push);
    assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ACK, T_MS, &reply), 0);
    assert_int_equal(reply->type, PROTO_MSG_ACK);
    proto_msg_free(reply);
    testclient_close(tc);

    /* The first device's first pull tells it the row is gone. */
    tc = fixture_hello(&fx, &a, NULL);
    assert_non_null(tc);
    uint64_t cursor = 0;
    bool more = true, told = false;
    while (more) {
        proto_msg pull;
        memset(&pull, 0, sizeof pull);
        pull.type = PROTO_MSG_PULL;
        pull.u.pull.cursor = cursor;
        pull.u.pull.limit = 1000;
        assert_int_equal(testclient_send(tc, &pull, T_MS), 0);
        assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ROWS, T_MS, &reply), 0);
        assert_int_equal(reply->type, PROTO_MSG_ROWS);
        for (uint32_t t = 0; t < reply->u.rows.n_tables; t++) {
            const proto_table_rows *tr = &reply->u.rows.tables[t];
            for (uint32_t k = 0; k < tr->n_deleted; k++) {
                const proto_value *v = &tr->deleted[(size_t)k * tr->n_pk];
                if (v->type == PROTO_TEXT && v->u.b.n == strlen(ids[0]) &&
                    memcmp(v->u.b.p, ids[0], v->u.b.n) == 0)
                    told = true;
            }
        }
        more = reply->u.rows.more;
        cursor = reply->u.rows.cursor;
        proto_msg_free(reply);
    }
    testclient_close(tc);
    assert_true(told);
}

/* Pulls every page from cursor; returns the new cursor and whether row id came as a row (its
 * name and note copied out). */
static uint64_t pull_all(testclient *tc, uint64_t cursor, const char *id, bool *out_row,
                         char name[64], char note[64])
{
    bool more = true;
    *out_row = false;
    while (more) {
        proto_msg pull, *reply = NULL;
        memset(&pull, 0, sizeof pull);
        pull.type = PROTO_MSG_PULL;
        pull.u.pull.cursor = cursor;
        pull.u.pull.limit = 1000;
        assert_int_equal(testclient_send(tc, &pull, T_MS), 0);
        assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ROWS, T_MS, &reply), 0);
        assert_int_equal(reply->type, PROTO_MSG_ROWS);
        for (uint32_t t = 0; t < reply->u.rows.n_tables; t++) {
            const proto_table_rows *tr = &reply->u.rows.tables[t];
            for (uint32_t k = 0; k < tr->n_rows; k++) {
                const proto_value *v = &tr->rows[(size_t)k * tr->n_columns];
                if (v[0].type == PROTO_TEXT && v[0].u.b.n == strlen(id) &&
                    memcmp(v[0].u.b.p, id, v[0].u.b.n) == 0 && tr->n_columns >= 4) {
                    *out_row = true;
                    snprintf(name, 64, "%.*s", (int)v[2].u.b.n, (const char *)v[2].u.b.p);
                    snprintf(note, 64, "%.*s", (int)v[3].u.b.n, (const char *)v[3].u.b.p);
                }
            }
        }
        more = reply->u.rows.more;
        cursor = reply->u.rows.cursor;
        proto_msg_free(reply);
    }
    return cursor;
}

/* An UPDATE of one column of row ids[0] from old_val to new_val, as device seq. */
static void push_update(testclient *tc, uint64_t seq, const char *const *ids, uint32_t col,
                        const char *old_val, const char *new_val)
{
    proto_msg *push = fixture_insert_push(seq, 1, ids, "t1", "x");
    proto_change *ch = &push->u.push.tables[0].changes[0];
    ch->op = PROTO_OP_UPDATE;
    ch->n_cols = 2;
    ch->cols[0].old_val = ch->cols[0].new_val;
    ch->cols[0].new_val.type = PROTO_UNDEF;
    ch->cols[1].idx = col;
    ch->cols[1].old_val = test_text_value(old_val);
    ch->cols[1].new_val = test_text_value(new_val);
    assert_int_equal(testclient_send(tc, push, T_MS), 0);
    fixture_push_free(push);
    proto_msg *reply = NULL;
    assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ACK, T_MS, &reply), 0);
    assert_int_equal(reply->type, PROTO_MSG_ACK);
    proto_msg_free(reply);
}

/* Found by test_convergence: a device skips pulled rows it has pending changes on (docs/design.md,
 * "Sync session"); when its own later change to such a row merges without alteration, the
 * server must still send it the row, which carries the other device's change it skipped. */
static void test_unaltered_push_echoes_a_row_changed_by_another_device(void **state)
{
    (void)state;
    test_device a, b;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &a), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w1", &b), 0);
    static const char *const ids[1] = {"echo-row"};
    char name[64], note[64];
    bool row;
    proto_msg *reply = NULL;

    testclient *ta = fixture_hello(&fx, &a, NULL);
    assert_non_null(ta);
    proto_msg *push = fixture_insert_push(1, 1, ids, "t1", "first name");
    assert_int_equal(testclient_send(ta, push, T_MS), 0);
    fixture_push_free(push);
    assert_int_equal(testclient_recv_type(ta, PROTO_MSG_ACK, T_MS, &reply), 0);
    proto_msg_free(reply);
    uint64_t cursor = pull_all(ta, 0, ids[0], &row, name, note);

    /* b changes the note; a's pull brings it, but a has a pending name change and skips it. */
    testclient *tb = fixture_hello(&fx, &b, NULL);
    assert_non_null(tb);
    push_update(tb, 1, ids, 3, "note", "note by b");
    testclient_close(tb);
    cursor = pull_all(ta, cursor, ids[0], &row, name, note);
    assert_true(row);

    /* a's name change merges cleanly; a's next pull must bring the row back, b's note in it. */
    push_update(ta, 2, ids, 2, "first name", "name by a");
    (void)pull_all(ta, cursor, ids[0], &row, name, note);
    testclient_close(ta);
    assert_true(row);
    assert_string_equal(name, "name by a");
    assert_string_equal(note, "note by b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_before_and_after_hello_is_answered),
        cmocka_unit_test(test_deep_nesting_and_hostile_lengths_are_bad_messages),
        cmocka_unit_test(test_hostile_row_values_in_a_push_are_refused),
        cmocka_unit_test(test_messages_out_of_order_in_a_session),
        cmocka_unit_test(test_hundreds_of_slow_handshakes_are_timed_out),
        cmocka_unit_test(test_credential_flood_is_locked_out_while_good_device_syncs),
        cmocka_unit_test(test_first_pull_after_a_push_carries_deletions),
        cmocka_unit_test(test_unaltered_push_echoes_a_row_changed_by_another_device),
        cmocka_unit_test(test_hostile_daemon_stops_cleanly_with_sound_store), /* last */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
