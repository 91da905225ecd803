/*
 * The session rules of docs/protocol.md, each checked against a real outpostd over real TLS:
 * what WELCOME advertises, what HELLO may carry, what the enrollment connection allows, how
 * enrollment codes are read, how PULL pages are cut, what PUSH `sv` and `ncol` mean, how REJECT
 * names a key it could not read, who hears NOTIFY, how a wipe reaches a device revoked in a
 * session, and which silences end a session. docs/protocol.md names the test that pins each
 * statement.
 */
#include <ctype.h>
#include <inttypes.h>
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

#include "dash_client.h"
#include "daemon_fixture.h"
#include "test_util.h"
#include "testclient.h"

#define T_MS 10000

/* Limits chosen so that each is told apart in WELCOME, and short enough to be waited out. */
#define MAX_MESSAGE 65536u
#define MAX_TRANSACTION 200000u
#define MESSAGE_TIMEOUT_S 1u
#define IDLE_TIMEOUT_S 3u
#define PAGE_ROWS 5u
#define HANDSHAKE_TIMEOUT_S 2u

static daemon_fixture fx;

static int setup(void **state)
{
    char limits[256];

    (void)state;
    snprintf(limits, sizeof limits,
             "max_message_bytes = %u\nmax_transaction_bytes = %u\nmessage_timeout_s = %u\n"
             "idle_timeout_s = %u\npull_page_rows = %u\nhandshake_timeout_s = %u\n",
             MAX_MESSAGE, MAX_TRANSACTION, MESSAGE_TIMEOUT_S, IDLE_TIMEOUT_S, PAGE_ROWS,
             HANDSHAKE_TIMEOUT_S);
    if (fixture_create(&fx, limits) != 0)
        return -1;
    return fixture_start(&fx);
}

static int teardown(void **state)
{
    (void)state;
    fixture_destroy(&fx);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}


static testclient *connect_or_fail(void)
{
    testclient *tc = NULL;
    char err[256];

    if (testclient_connect(fx.port, fx.ca_path, T_MS, &tc, err, sizeof err) != 0)
        fail_msg("connect: %s", err);
    return tc;
}

static proto_msg hello_for(const test_device *dev, uint32_t schema_version)
{
    proto_msg m;

    memset(&m, 0, sizeof m);
    m.type = PROTO_MSG_HELLO;
    m.u.hello.version = PROTO_VERSION;
    m.u.hello.device_id = dev->id;
    memcpy(m.u.hello.secret, dev->secret, sizeof dev->secret);
    m.u.hello.schema_version = schema_version;
    return m;
}

static proto_msg enroll_msg(const char *code)
{
    proto_msg m;

    memset(&m, 0, sizeof m);
    m.type = PROTO_MSG_ENROLL;
    m.u.enroll.version = PROTO_VERSION;
    m.u.enroll.code = code;
    return m;
}

/* Receives the next message (NOTIFY skipped unless asked for) and checks its type. */
static proto_msg *expect_type(testclient *tc, proto_msg_type type)
{
    proto_msg *m = NULL;

    assert_int_equal(testclient_recv_type(tc, type, T_MS, &m), 0);
    if (m->type != type)
        fail_msg("expected %s, got %s (code %u: %s)", proto_msg_type_name(type),
                 proto_msg_type_name(m->type),
                 m->type == PROTO_MSG_ERROR ? m->u.error.code : 0,
                 m->type == PROTO_MSG_ERROR ? m->u.error.message : "");
    return m;
}

/* The next message is ERROR code, its text contains text, and the server then closes without
 * sending anything more. */
static void expect_error_and_close(testclient *tc, proto_error_code code, bool retry,
                                   const char *text)
{
    proto_msg *m = expect_type(tc, PROTO_MSG_ERROR);

    assert_int_equal(m->u.error.code, code);
    assert_int_equal(m->u.error.retryable, retry);
    if (text && !strstr(m->u.error.message, text))
        fail_msg("ERROR text '%s' lacks '%s'", m->u.error.message, text);
    proto_msg_free(m);
    assert_true(testclient_wait_closed(tc, T_MS));
    /* Nothing came between the ERROR and the close (such as a later idle timeout's ERROR). */
    m = NULL;
    if (testclient_recv(tc, 0, &m) == 0)
        fail_msg("after ERROR %u the server still sent %s", code, proto_msg_type_name(m->type));
}

/* Connects, says HELLO at the server's schema version and returns the client with WELCOME. */
static testclient *session_for(const test_device *dev, proto_msg **out_welcome)
{
    testclient *tc = connect_or_fail();
    proto_msg hello = hello_for(dev, 0);
    proto_msg *w;

    assert_int_equal(testclient_send(tc, &hello, T_MS), 0);
    w = expect_type(tc, PROTO_MSG_WELCOME);
    if (out_welcome)
        *out_welcome = w;
    else
        proto_msg_free(w);
    return tc;
}

static void send_push(testclient *tc, proto_msg *push)
{
    assert_non_null(push);
    assert_int_equal(testclient_send(tc, push, T_MS), 0);
    fixture_push_free(push);
}

static void push_rows(testclient *tc, uint64_t seq, uint32_t n, const char *prefix,
                      const char *team)
{
    char (*ids)[32] = calloc(n, sizeof *ids);
    const char **ptrs = calloc(n, sizeof *ptrs);
    proto_msg *ack;

    assert_non_null(ids);
    assert_non_null(ptrs);
    for (uint32_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "%s-%02u", prefix, i);
        ptrs[i] = ids[i];
    }
    send_push(tc, fixture_insert_push(seq, n, ptrs, team, "rules"));
    ack = expect_type(tc, PROTO_MSG_ACK);
    assert_int_equal(ack->u.ack.seq, seq);
    proto_msg_free(ack);
    free(ptrs);
    free(ids);
}

static proto_msg *pull(testclient *tc, uint64_t cursor, uint32_t limit)
{
    proto_msg req;

    memset(&req, 0, sizeof req);
    req.type = PROTO_MSG_PULL;
    req.u.pull.cursor = cursor;
    req.u.pull.limit = limit;
    assert_int_equal(testclient_send(tc, &req, T_MS), 0);
    return expect_type(tc, PROTO_MSG_ROWS);
}

typedef struct page_count {
    uint32_t rows, deleted, removed;
} page_count;

static page_count count_page(const proto_msg *rows)
{
    page_count c = {0, 0, 0};

    for (uint32_t t = 0; t < rows->u.rows.n_tables; t++) {
        c.rows += rows->u.rows.tables[t].n_rows;
        c.deleted += rows->u.rows.tables[t].n_deleted;
        c.removed += rows->u.rows.tables[t].n_removed;
    }
    return c;
}

/* Pulls from cursor until more is false; returns the final cursor. */
static uint64_t pull_to_end(testclient *tc, uint64_t cursor)
{
    for (;;) {
        proto_msg *rows = pull(tc, cursor, 0);
        bool more = rows->u.rows.more;
        cursor = rows->u.rows.cursor;
        proto_msg_free(rows);
        if (!more)
            return cursor;
    }
}

/* Whether a ROWS page holds the row with this id; copies it into out when found. */
static bool row_in_page(const proto_msg *rows, const char *id, proto_value out[FIXTURE_N_COLUMNS])
{
    bool found = false;

    for (uint32_t t = 0; t < rows->u.rows.n_tables; t++) {
        const proto_table_rows *tr = &rows->u.rows.tables[t];
        for (uint32_t r = 0; r < tr->n_rows; r++) {
            const proto_value *v = tr->rows + (size_t)r * tr->n_columns;
            if (v[0].type == PROTO_TEXT && v[0].u.b.n == strlen(id) &&
                memcmp(v[0].u.b.p, id, v[0].u.b.n) == 0) {
                found = true;
                /* Only types and lengths are compared after the message is freed. */
                for (uint32_t k = 0; k < FIXTURE_N_COLUMNS && k < tr->n_columns; k++) {
                    out[k] = v[k];
                    out[k].u.b.p = NULL;
                }
            }
        }
    }
    return found;
}

/* The row of FIXTURE_TABLE with this id in a pull from 0, copied into out (false if absent). */
static bool find_row(testclient *tc, const char *id, proto_value out[FIXTURE_N_COLUMNS])
{
    uint64_t cursor = 0;
    bool found = false, more = true;

    while (more) {
        proto_msg *rows = pull(tc, cursor, 0);
        if (row_in_page(rows, id, out))
            found = true;
        more = rows->u.rows.more;
        cursor = rows->u.rows.cursor;
        proto_msg_free(rows);
    }
    return found;
}

/* ---- WELCOME and HELLO -------------------------------------------------------------------- */

static void test_welcome_advertises_the_session_limits(void **state)
{
    test_device d;
    proto_msg *w = NULL;
    testclient *tc;

    (void)state;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);
    tc = session_for(&d, &w);
    assert_true(w->u.welcome.has_limits);
    assert_int_equal(w->u.welcome.limits.max_message_bytes, MAX_MESSAGE);
    assert_int_equal(w->u.welcome.limits.max_transaction_bytes, MAX_TRANSACTION);
    assert_int_equal(w->u.welcome.limits.message_timeout_ms, MESSAGE_TIMEOUT_S * 1000u);
    assert_int_equal(w->u.welcome.limits.idle_timeout_ms, IDLE_TIMEOUT_S * 1000u);
    assert_int_equal(w->u.welcome.limits.max_page_rows, PAGE_ROWS);
    proto_msg_free(w);
    testclient_close(tc);
}

static void test_hello_with_a_newer_schema_is_refused(void **state)
{
    test_device d;
    proto_msg *w = NULL, hello;
    testclient *tc;
    uint32_t server_sv;

    (void)state;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);
    tc = session_for(&d, &w);
    server_sv = w->u.welcome.schema_version;
    proto_msg_free(w);
    testclient_close(tc);

    /* The server's own version is welcomed without a schema... */
    hello = hello_for(&d, server_sv);
    tc = connect_or_fail();
    assert_int_equal(testclient_send(tc, &hello, T_MS), 0);
    w = expect_type(tc, PROTO_MSG_WELCOME);
    assert_false(w->u.welcome.has_schema);
    proto_msg_free(w);
    testclient_close(tc);

    /* ... one above it is ERROR 6, not retryable, and the session ends. */
    hello = hello_for(&d, server_sv + 1);
    tc = connect_or_fail();
    assert_int_equal(testclient_send(tc, &hello, T_MS), 0);
    expect_error_and_close(tc, PROTO_ERR_SCHEMA_TOO_OLD, false, "newer than the server's");
    testclient_close(tc);

    /* A protocol version other than 1 is ERROR 2, in HELLO as in ENROLL. */
    hello = hello_for(&d, server_sv);
    hello.u.hello.version = PROTO_VERSION + 1;
    tc = connect_or_fail();
    assert_int_equal(testclient_send(tc, &hello, T_MS), 0);
    expect_error_and_close(tc, PROTO_ERR_VERSION, false, "not supported");
    testclient_close(tc);
    {
        char code[32];
        proto_msg enroll;
        assert_int_equal(fixture_enroll_code(&fx, "w1", code), 0);
        enroll = enroll_msg(code);
        enroll.u.enroll.version = PROTO_VERSION + 1;
        tc = connect_or_fail();
        assert_int_equal(testclient_send(tc, &enroll, T_MS), 0);
        expect_error_and_close(tc, PROTO_ERR_VERSION, false, "not supported");
        testclient_close(tc);
    }
}

/* ---- decode failures ---------------------------------------------------------------------- */

/* ERROR 1 for what does not decode, except sizes: a declared length or count over a limit,
 * and a message over max_message_bytes however it is fragmented, are ERROR 7. */
static void test_decode_failures_are_error_1_except_sizes_error_7(void **state)
{
    static const uint8_t arr_over[] = {0x82, 0xa1, 't', 0x01, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff,
                                       0xff};
    static const uint8_t str_over[] = {0x82, 0xa1, 't', 0x01, 0xa1, 'x', 0xdb, 0x00, 0x10, 0x00,
                                       0x01, 'a'};
    static const uint8_t arr_short[] = {0x82, 0xa1, 't', 0x01, 0xa1, 'x', 0xdc, 0x00, 0x10};
    static const uint8_t deep[] = {0x81, 0xa1, 'x', 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91,
                                   0x91, 0xc0};
    static const uint8_t not_msgpack[] = {0xc1};
    static const struct {
        const char *what;
        const uint8_t *bytes;
        size_t len;
        bool text;
        proto_error_code code;
    } cases[] = {
        {"array count over the item limit", arr_over, sizeof arr_over, false,
         PROTO_ERR_TOO_LARGE},
        {"string length over the value limit", str_over, sizeof str_over, false,
         PROTO_ERR_TOO_LARGE},
        {"array count beyond the bytes sent", arr_short, sizeof arr_short, false,
         PROTO_ERR_BAD_MESSAGE},
        {"nesting over the depth limit", deep, sizeof deep, false, PROTO_ERR_BAD_MESSAGE},
        {"reserved byte", not_msgpack, sizeof not_msgpack, false, PROTO_ERR_BAD_MESSAGE},
        {"text frame", (const uint8_t *)"{}", 2, true, PROTO_ERR_BAD_MESSAGE},
    };
    uint8_t *big;
    testclient *tc;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        proto_msg *m = NULL;
        tc = connect_or_fail();
        assert_int_equal(testclient_send_raw(tc, cases[i].bytes, cases[i].len, 0, true,
                                             cases[i].text, T_MS), 0);
        assert_int_equal(testclient_recv(tc, T_MS, &m), 0);
        if (m->type != PROTO_MSG_ERROR || m->u.error.code != cases[i].code)
            fail_msg("%s: got %s code %u, expected ERROR %u", cases[i].what,
                     proto_msg_type_name(m->type), m->type == PROTO_MSG_ERROR ? m->u.error.code : 0,
                     cases[i].code);
        proto_msg_free(m);
        assert_true(testclient_wait_closed(tc, T_MS));
        testclient_close(tc);
    }

    /* One byte over max_message_bytes, in 4 KiB fragments: refused before it is complete. */
    big = calloc(1, MAX_MESSAGE + 1);
    assert_non_null(big);
    tc = connect_or_fail();
    (void)testclient_send_raw(tc, big, MAX_MESSAGE + 1, 4096, true, false, T_MS);
    expect_error_and_close(tc, PROTO_ERR_TOO_LARGE, false, "exceeds");
    testclient_close(tc);
    free(big);
}

/* A device ends a session by closing; an ERROR it sends is out of place and answered ERROR 1. */
static void test_error_from_a_device_is_answered_error_1(void **state)
{
    test_device d;
    testclient *tc;
    proto_msg err;

    (void)state;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);
    tc = session_for(&d, NULL);
    memset(&err, 0, sizeof err);
    err.type = PROTO_MSG_ERROR;
    err.u.error.code = PROTO_ERR_INTERNAL;
    err.u.error.message = "device fault";
    assert_int_equal(testclient_send(tc, &err, T_MS), 0);
    expect_error_and_close(tc, PROTO_ERR_BAD_MESSAGE, false, "not expected");
    testclient_close(tc);
}

/* ---- enrollment --------------------------------------------------------------------------- */

static bool is_uuid_v4(const char *id)
{
    if (strlen(id) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash != (id[i] == '-'))
            return false;
        if (!dash && !(isdigit((unsigned char)id[i]) || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    }
    return id[14] == '4' && strchr("89ab", id[19]) != NULL;
}

static void test_session_continues_on_the_enrollment_connection(void **state)
{
    char code[32];
    proto_msg msg, *reply;
    test_device d;
    testclient *tc = connect_or_fail();

    (void)state;
    assert_int_equal(fixture_enroll_code(&fx, "w1", code), 0);
    msg = enroll_msg(code);
    assert_int_equal(testclient_send(tc, &msg, T_MS), 0);
    reply = expect_type(tc, PROTO_MSG_ENROLLED);
    snprintf(d.id, sizeof d.id, "%s", reply->u.enrolled.device_id);
    memcpy(d.secret, reply->u.enrolled.secret, sizeof d.secret);
    proto_msg_free(reply);

    /* HELLO on the same connection opens the session; PUSH works in it. */
    msg = hello_for(&d, 0);
    assert_int_equal(testclient_send(tc, &msg, T_MS), 0);
    reply = expect_type(tc, PROTO_MSG_WELCOME);
    proto_msg_free(reply);
    push_rows(tc, 1, 1, "enroll-conn", "t1");
    testclient_close(tc);

    /* Without that HELLO, a PUSH after ENROLLED is out of order. */
    tc = connect_or_fail();
    assert_int_equal(fixture_enroll_code(&fx, "w1", code), 0);
    msg = enroll_msg(code);
    assert_int_equal(testclient_send(tc, &msg, T_MS), 0);
    reply = expect_type(tc, PROTO_MSG_ENROLLED);
    proto_msg_free(reply);
    {
        const char *ids[1] = {"enroll-no-hello"};
        send_push(tc, fixture_insert_push(1, 1, ids, "t1", "rules"));
    }
    expect_error_and_close(tc, PROTO_ERR_BAD_MESSAGE, false, "before HELLO");
    testclient_close(tc);

    /* ENROLL does not restart the HELLO deadline: it counts from the connection's opening. */
    {
        uint64_t start = mono_ms();
        tc = connect_or_fail();
        assert_int_equal(fixture_enroll_code(&fx, "w1", code), 0);
        msg = enroll_msg(code);
        usleep(HANDSHAKE_TIMEOUT_S * 1000u * 1000u / 2u);
        assert_int_equal(testclient_send(tc, &msg, T_MS), 0);
        reply = expect_type(tc, PROTO_MSG_ENROLLED);
        proto_msg_free(reply);
        expect_error_and_close(tc, PROTO_ERR_TIMEOUT, true, "no successful HELLO");
        assert_true(mono_ms() - start < HANDSHAKE_TIMEOUT_S * 1000u + 900u);
        testclient_close(tc);
    }
}

static void test_enrollment_codes_are_normalised(void **state)
{
    char code[32], typed[64];
    size_t n = 0;
    proto_msg msg, *reply;
    testclient *tc;

    (void)state;
    assert_int_equal(fixture_enroll_code(&fx, "w1", code), 0);
    /* Issued as four groups of five Crockford base32 characters. */
    assert_int_equal(strlen(code), 23);
    assert_true(code[5] == '-' && code[11] == '-' && code[17] == '-');
    /* Typed back in lower case, with spaces instead of dashes, O for 0 and l for 1. */
    for (const char *p = code; *p; p++) {
        char c = *p == '-' ? ' ' : (char)tolower((unsigned char)*p);
        typed[n++] = c == '0' ? 'o' : c == '1' ? 'l' : c;
    }
    typed[n] = '\0';
    tc = connect_or_fail();
    msg = enroll_msg(typed);
    assert_int_equal(testclient_send(tc, &msg, T_MS), 0);
    reply = expect_type(tc, PROTO_MSG_ENROLLED);
    if (!is_uuid_v4(reply->u.enrolled.device_id))
        fail_msg("device id '%s' is not a lower-case version 4 UUID", reply->u.enrolled.device_id);
    proto_msg_free(reply);
    testclient_close(tc);

    /* Used up, whatever its spelling. */
    tc = connect_or_fail();
    msg = enroll_msg(code);
    assert_int_equal(testclient_send(tc, &msg, T_MS), 0);
    expect_error_and_close(tc, PROTO_ERR_ENROLL_CODE, false, NULL);
    testclient_close(tc);
}

/* ---- PULL --------------------------------------------------------------------------------- */

static void test_pull_lim_zero_means_the_server_page_cap(void **state)
{
    test_device writer, reader;
    testclient *tw, *tr;
    proto_msg *rows;
    page_count c;

    (void)state;
    assert_int_equal(fixture_enroll_device(&fx, "w2", &writer), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w2", &reader), 0);
    tw = session_for(&writer, NULL);
    push_rows(tw, 1, 3 * PAGE_ROWS, "page", "t2");
    tr = session_for(&reader, NULL);

    rows = pull(tr, 0, 0); /* 0: the server's cap */
    c = count_page(rows);
    assert_int_equal(c.rows, PAGE_ROWS);
    assert_true(rows->u.rows.more);
    proto_msg_free(rows);
    rows = pull(tr, 0, 2); /* below the cap: the device's */
    assert_int_equal(count_page(rows).rows, 2);
    assert_true(rows->u.rows.more);
    proto_msg_free(rows);
    rows = pull(tr, 0, 1000); /* above the cap: the server's */
    assert_int_equal(count_page(rows).rows, PAGE_ROWS);
    proto_msg_free(rows);
    testclient_close(tr);
    testclient_close(tw);
}

/* Tombstones count toward `lim` like rows, and a device's first pull leaves them out. */
static void test_pull_deletions_count_toward_lim(void **state)
{
    test_device writer, holder, newcomer;
    testclient *tw, *th, *tn;
    proto_msg *push, *rows, *ack;
    uint64_t cursor;
    page_count c;

    (void)state;
    assert_int_equal(fixture_enroll_device(&fx, "w12", &writer), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w12", &holder), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w12", &newcomer), 0);
    tw = session_for(&writer, NULL);
    th = session_for(&holder, NULL);
    push_rows(tw, 1, 4, "tomb", "t1");
    push_rows(th, 1, 1, "holder-own", "t1"); /* the holder has pushed: not a first pull */
    cursor = pull_to_end(th, 0);

    /* The writer deletes its four rows in one transaction. */
    {
        const char *ids[4] = {"tomb-00", "tomb-01", "tomb-02", "tomb-03"};
        push = fixture_insert_push(2, 4, ids, "t1", "rules");
        assert_non_null(push);
        for (uint32_t i = 0; i < 4; i++) {
            proto_change *ch = &push->u.push.tables[0].changes[i];
            ch->op = PROTO_OP_DELETE;
            for (uint32_t k = 0; k < ch->n_cols; k++) {
                ch->cols[k].old_val = ch->cols[k].new_val;
                ch->cols[k].new_val.type = PROTO_UNDEF;
            }
        }
        send_push(tw, push);
        ack = expect_type(tw, PROTO_MSG_ACK);
        proto_msg_free(ack);
    }

    rows = pull(th, cursor, 3);
    c = count_page(rows);
    assert_int_equal(c.rows + c.deleted + c.removed, 3);
    assert_int_equal(c.deleted, 3);
    assert_true(rows->u.rows.more);
    cursor = rows->u.rows.cursor;
    proto_msg_free(rows);
    rows = pull(th, cursor, 3);
    c = count_page(rows);
    assert_int_equal(c.deleted, 1);
    assert_false(rows->u.rows.more);
    proto_msg_free(rows);

    /* A device that never pushed pulls from 0 and gets the live row alone: the four
     * tombstones are left out of its first pull (one page here, as this test writes the only
     * rows of the store). */
    tn = session_for(&newcomer, NULL);
    rows = pull(tn, 0, 0);
    c = count_page(rows);
    assert_int_equal(c.rows, 1);
    assert_int_equal(c.deleted, 0);
    assert_false(rows->u.rows.more);
    proto_msg_free(rows);
    testclient_close(tn);
    /* In a later session the same device pulls from 0 again (as after a restored store's new
     * epoch): it synced before and may hold rows, so the tombstones come (the outsider's F6). */
    tn = session_for(&newcomer, NULL);
    rows = pull(tn, 0, 0);
    c = count_page(rows);
    assert_int_equal(c.rows, 1);
    assert_int_equal(c.deleted, 4);
    assert_false(rows->u.rows.more);
    proto_msg_free(rows);
    testclient_close(tn);
    testclient_close(th);
    testclient_close(tw);
}

/* Turns every change of push into an UPDATE of column col (the key kept as it is) from old_val
 * to new_val; cols holds two per change. */
static void make_updates(proto_msg *push, uint32_t col, proto_value old_val, proto_value new_val,
                         proto_col *cols)
{
    proto_table_changes *tbl = &push->u.push.tables[0];

    for (uint32_t i = 0; i < tbl->n_changes; i++) {
        proto_change *ch = &tbl->changes[i];
        proto_col *c = &cols[2 * i];
        c[0].idx = 0;
        c[0].old_val = ch->cols[0].new_val;
        c[0].new_val.type = PROTO_UNDEF;
        c[1].idx = col;
        c[1].old_val = old_val;
        c[1].new_val = new_val;
        ch->op = PROTO_OP_UPDATE;
        ch->cols = c;
        ch->n_cols = 2;
    }
}

/* One UPDATE entry of column col of rows ids[0..n) from old_text to new_text, acknowledged
 * without any conflict. */
static void push_updates(testclient *tc, uint64_t seq, const char *const *ids, uint32_t n,
                         uint32_t col, const char *old_text, const char *new_text)
{
    proto_col *cols = calloc(2u * n, sizeof *cols);
    proto_msg *push = fixture_insert_push(seq, n, ids, "t1", "x");
    proto_msg *ack;

    assert_non_null(cols);
    assert_non_null(push);
    make_updates(push, col, test_text_value(old_text), test_text_value(new_text), cols);
    send_push(tc, push);
    ack = expect_type(tc, PROTO_MSG_ACK);
    assert_int_equal(ack->u.ack.seq, seq);
    assert_int_equal(ack->u.ack.n_conflicts + ack->u.ack.n_unlisted, 0);
    proto_msg_free(ack);
    free(cols);
}

/* A device's copy of the rows a test follows: name and note per id, as its pulls left them. */
enum { SEEN_ROWS = 12 };
typedef struct seen_replica {
    char id[SEEN_ROWS][24];
    char name[SEEN_ROWS][16], note[SEEN_ROWS][16];
} seen_replica;

/* Pulls from cursor until `more` is false without `seen` (a client written from the table of
 * PULL keys alone), applies the followed rows to rep, and returns the final cursor; *out_got
 * counts the followed rows applied. With retry_page > 0, that page (1 = the first) is taken as
 * one the device could not apply: dropped, and asked for again from the same cursor. */
static uint64_t pull_without_seen(testclient *tc, uint64_t cursor, uint32_t retry_page,
                                  seen_replica *rep, uint32_t *out_got)
{
    bool more = true;

    *out_got = 0;
    for (uint32_t page = 1; more; page++) {
        proto_msg *rows = pull(tc, cursor, 0);
        if (page == retry_page) {
            assert_true(rows->u.rows.more); /* a page in the middle of the chain */
            proto_msg_free(rows);
            continue;
        }
        for (uint32_t t = 0; t < rows->u.rows.n_tables; t++) {
            const proto_table_rows *tr = &rows->u.rows.tables[t];
            for (uint32_t r = 0; r < tr->n_rows; r++) {
                const proto_value *v = tr->rows + (size_t)r * tr->n_columns;
                for (uint32_t i = 0; i < SEEN_ROWS; i++) {
                    if (v[0].type != PROTO_TEXT || v[0].u.b.n != strlen(rep->id[i]) ||
                        memcmp(v[0].u.b.p, rep->id[i], v[0].u.b.n) != 0)
                        continue;
                    assert_true(v[2].type == PROTO_TEXT && v[2].u.b.n < sizeof rep->name[i]);
                    assert_true(v[3].type == PROTO_TEXT && v[3].u.b.n < sizeof rep->note[i]);
                    snprintf(rep->name[i], sizeof rep->name[i], "%.*s", (int)v[2].u.b.n,
                             (const char *)v[2].u.b.p);
                    snprintf(rep->note[i], sizeof rep->note[i], "%.*s", (int)v[3].u.b.n,
                             (const char *)v[3].u.b.p);
                    (*out_got)++;
                }
            }
        }
        more = rows->u.rows.more;
        cursor = rows->u.rows.cursor;
        proto_msg_free(rows);
    }
    return cursor;
}

/* How many followed rows the device holds as name and note. */
static uint32_t rows_holding(const seen_replica *rep, const char *name, const char *note)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < SEEN_ROWS; i++)
        if (strcmp(rep->name[i], name) == 0 && strcmp(rep->note[i], note) == 0)
            n++;
    return n;
}

/* The outsider's N1 for a client that omits `seen`: device a edits its team's rows twice while
 * offline (their note) while b renamed them; a's pull takes three pages of PAGE_ROWS. Judged
 * by each page's cursor, pages 2 and 3 took the rows for a's own and seen, and a kept b's
 * rename on 5 of 12 rows only, for good. Without `seen` the server judges from where this
 * connection's pull chain began, so every row comes: also when the device asks for a page
 * again from the same cursor (it could not apply it). A chain ends with a page that says no
 * more, or with a PULL from elsewhere: then a's own edit is not echoed to it. */
static void test_pull_without_seen_judges_from_where_the_pull_chain_began(void **state)
{
    test_device a, b;
    testclient *ta, *tb;
    static seen_replica rep;
    const char *ids[SEEN_ROWS];
    uint64_t cursor;
    uint32_t got = 0, n;
    proto_msg *rows;

    (void)state;
    memset(&rep, 0, sizeof rep);
    for (uint32_t i = 0; i < SEEN_ROWS; i++) {
        snprintf(rep.id[i], sizeof rep.id[i], "seenfb-%02u", i);
        ids[i] = rep.id[i];
    }
    assert_int_equal(fixture_enroll_device(&fx, "w1", &a), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w1", &b), 0);
    tb = session_for(&b, NULL);
    send_push(tb, fixture_insert_push(1, SEEN_ROWS, ids, "t1", "orig"));
    proto_msg_free(expect_type(tb, PROTO_MSG_ACK));
    ta = session_for(&a, NULL);
    cursor = pull_without_seen(ta, 0, 0, &rep, &got);
    assert_int_equal(got, SEEN_ROWS);
    testclient_close(ta);

    /* a is offline: b renames the rows, a edits their note twice, then a syncs. */
    push_updates(tb, 2, ids, SEEN_ROWS, 2, "orig", "renamed");
    ta = session_for(&a, NULL);
    push_updates(ta, 1, ids, SEEN_ROWS, 3, "note", "one");
    push_updates(ta, 2, ids, SEEN_ROWS, 3, "one", "two");
    cursor = pull_without_seen(ta, cursor, 0, &rep, &got);
    n = rows_holding(&rep, "renamed", "two");
    if (n != SEEN_ROWS)
        fail_msg("%u of %u rows reached the device as the store has them (name renamed, note "
                 "two): the others never got b's rename (%u rows came)", n, SEEN_ROWS, got);

    /* The chain ended: one more edit of a's own is not echoed to it. */
    push_updates(ta, 3, ids, SEEN_ROWS, 3, "two", "three");
    cursor = pull_without_seen(ta, cursor, 0, &rep, &got);
    if (got != 0)
        fail_msg("a new pull after a page that said no more echoed %u of a's own rows", got);
    /* A PULL from anywhere but the chain's cursors starts a new chain too: a pull from 0
     * given up after its first page leaves no earlier origin behind. */
    rows = pull(ta, 0, 0);
    assert_true(rows->u.rows.more);
    proto_msg_free(rows);
    push_updates(ta, 4, ids, SEEN_ROWS, 3, "three", "four");
    cursor = pull_without_seen(ta, cursor, 0, &rep, &got);
    if (got != 0)
        fail_msg("a pull from the last completed cursor after an abandoned pull from 0 echoed "
                 "%u of a's own rows", got);

    /* Again, and a's pull asks for its second page twice: the second PULL from that cursor
     * is still part of the chain that began before a's edits. */
    push_updates(tb, 3, ids, SEEN_ROWS, 2, "renamed", "again");
    push_updates(ta, 5, ids, SEEN_ROWS, 3, "four", "five");
    push_updates(ta, 6, ids, SEEN_ROWS, 3, "five", "six");
    (void)pull_without_seen(ta, cursor, 2, &rep, &got);
    n = rows_holding(&rep, "again", "six");
    if (n != SEEN_ROWS)
        fail_msg("after a page asked for again, %u of %u rows reached the device as the store "
                 "has them (name again, note six; %u rows came)", n, SEEN_ROWS, got);
    testclient_close(ta);
    testclient_close(tb);
}

/* ---- PUSH: sv, ncol, REJECT keys ---------------------------------------------------------- */

static void test_push_sv_is_not_checked_and_a_shorter_ncol_takes_defaults(void **state)
{
    test_device d, reader;
    testclient *tc, *tr;
    const char *ids[1] = {"short-ncol"};
    proto_value row[FIXTURE_N_COLUMNS];
    proto_msg *push, *ack;

    (void)state;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w1", &reader), 0);
    tc = session_for(&d, NULL);
    /* Three of the table's four columns, under a schema version the server never had. */
    push = fixture_insert_push(1, 1, ids, "t1", "three columns");
    push->u.push.schema_version = 4000;
    push->u.push.tables[0].n_columns = 3;
    push->u.push.tables[0].changes[0].n_cols = 3;
    send_push(tc, push);
    ack = expect_type(tc, PROTO_MSG_ACK);
    assert_true(ack->u.ack.server_seq > 0);
    proto_msg_free(ack);
    testclient_close(tc);

    tr = session_for(&reader, NULL);
    assert_true(find_row(tr, "short-ncol", row));
    assert_int_equal(row[2].type, PROTO_TEXT);
    assert_int_equal(row[3].type, PROTO_NULL); /* the column's default */
    testclient_close(tr);
}

/* An unknown table, a column beyond the server's (ncol above its count) and a change without
 * its key are refused with the key [nil]; nothing of the entry is applied. */
static void test_reject_names_an_unreadable_key_as_nil(void **state)
{
    static const struct {
        const char *what;
        uint32_t code;
    } cases[] = {{"unknown table", PROTO_ERR_UNKNOWN_TABLE},
                 {"column beyond", PROTO_ERR_UNKNOWN_COLUMN},
                 {"no key", PROTO_ERR_INVALID_CHANGE}};
    test_device d, reader;
    testclient *tc, *tr;
    proto_value row[FIXTURE_N_COLUMNS];
    proto_col cols[FIXTURE_N_COLUMNS + 1];

    (void)state;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);
    tc = session_for(&d, NULL);
    for (uint32_t i = 0; i < 3; i++) {
        const char *ids[2] = {"nil-key-a", "nil-key-b"};
        proto_msg *push = fixture_insert_push(i + 1, 2, ids, "t1", "refused");
        proto_table_changes *tbl = &push->u.push.tables[0];
        proto_msg *rej;
        if (i == 0) {
            tbl->table = "no_such_table";
        } else if (i == 1) {
            /* One change that carries a fifth column (ncol 5 against the server's 4). */
            memcpy(cols, tbl->changes[1].cols, FIXTURE_N_COLUMNS * sizeof *cols);
            cols[FIXTURE_N_COLUMNS].idx = FIXTURE_N_COLUMNS;
            cols[FIXTURE_N_COLUMNS].old_val.type = PROTO_UNDEF;
            cols[FIXTURE_N_COLUMNS].new_val.type = PROTO_NULL;
            tbl->n_columns = FIXTURE_N_COLUMNS + 1;
            tbl->n_changes = 1;
            tbl->changes = &tbl->changes[1];
            tbl->changes[0].cols = cols;
            tbl->changes[0].n_cols = FIXTURE_N_COLUMNS + 1;
        } else {
            /* An UPDATE of the name whose old map lacks the primary key column. */
            proto_change *ch = &tbl->changes[1];
            ch->op = PROTO_OP_UPDATE;
            ch->cols = cols;
            ch->n_cols = 1;
            cols[0].idx = 2;
            cols[0].old_val = tbl->changes[0].cols[2].new_val;
            cols[0].new_val = tbl->changes[0].cols[3].new_val;
        }
        send_push(tc, push);
        rej = expect_type(tc, PROTO_MSG_REJECT);
        assert_int_equal(rej->u.reject.seq, i + 1);
        /* Every change of an unknown table is refused; otherwise only the bad one. */
        assert_int_equal(rej->u.reject.n_rows, i == 0 ? 2 : 1);
        for (uint32_t r = 0; r < rej->u.reject.n_rows; r++) {
            const proto_reject_row *row_r = &rej->u.reject.rows[r];
            if (row_r->code != cases[i].code)
                fail_msg("%s: reject code %u, expected %u", cases[i].what, row_r->code,
                         cases[i].code);
            assert_int_equal(row_r->n_pk, 1);
            assert_int_equal(row_r->pk[0].type, PROTO_NULL);
        }
        proto_msg_free(rej);
    }
    testclient_close(tc);

    assert_int_equal(fixture_enroll_device(&fx, "w1", &reader), 0);
    tr = session_for(&reader, NULL);
    assert_false(find_row(tr, "nil-key-a", row));
    assert_false(find_row(tr, "nil-key-b", row));
    testclient_close(tr);
}

/* ---- Big rows: every message the server sends stays within `msg` -------------------------- */

/* The encoded size of a message as received (the encoding is canonical). */
static size_t encoded_size(const proto_msg *m)
{
    proto_buf b = {0};
    size_t n;

    assert_int_equal(proto_encode(m, &b), PROTO_OK);
    n = b.len;
    proto_buf_free(&b);
    return n;
}

/* One UPDATE of column col of row id from old_val to a text of n bytes of fill. */
static proto_msg *big_update(uint64_t seq, const char *id, uint32_t col, proto_value old_val,
                             char *text, size_t n, char fill, proto_col *cols)
{
    const char *ids[1] = {id};
    proto_msg *push = fixture_insert_push(seq, 1, ids, "t1", "big");
    proto_change *ch = &push->u.push.tables[0].changes[0];

    memset(text, fill, n);
    ch->op = PROTO_OP_UPDATE;
    cols[0].idx = 0; /* the key, unchanged */
    cols[0].old_val = ch->cols[0].new_val;
    cols[0].new_val.type = PROTO_UNDEF;
    cols[1].idx = col;
    cols[1].old_val = old_val;
    cols[1].new_val.type = PROTO_TEXT;
    cols[1].new_val.u.b.p = (const uint8_t *)text;
    cols[1].new_val.u.b.n = (uint32_t)n;
    ch->cols = cols;
    ch->n_cols = 2;
    return push;
}

/* outsider-wire #1: a row grown by updates that each fit in a message (insert with a long name,
 * then a long fourth column) would become larger than one ROWS page can carry: the update that
 * would do so is refused (ROW_TOO_LARGE), and every device still pulls every row, in pages
 * within `msg`, however many large rows there are. */
static void test_a_row_never_grows_past_what_a_pull_page_carries(void **state)
{
    enum { PART = 30000 };
    test_device d, reader;
    testclient *tc, *tr;
    static char name[PART], extra[PART], more[PART + 10000];
    const char *ids[1] = {"big-row"};
    proto_col cols[2];
    proto_value nul = {.type = PROTO_NULL};
    proto_msg *push, *m;

    (void)state;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);
    tc = session_for(&d, NULL);
    memset(name, 'n', sizeof name);
    push = fixture_insert_push(1, 1, ids, "t1", "x");
    push->u.push.tables[0].changes[0].cols[2].new_val.u.b.p = (const uint8_t *)name;
    push->u.push.tables[0].changes[0].cols[2].new_val.u.b.n = PART;
    send_push(tc, push);
    proto_msg_free(expect_type(tc, PROTO_MSG_ACK));
    /* The fourth column too: about 60 KB, still within one 64 KiB page. */
    send_push(tc, big_update(2, "big-row", 3, nul, extra, PART, 'e', cols));
    proto_msg_free(expect_type(tc, PROTO_MSG_ACK));
    /* A longer name would make it about 70 KB: refused, nothing applied. (The old value is
     * given as nil, so that the message stays within `msg`: the later write wins anyway.) */
    send_push(tc, big_update(3, "big-row", 2, nul, more, sizeof more, 'm', cols));
    m = expect_type(tc, PROTO_MSG_REJECT);
    assert_int_equal(m->u.reject.seq, 3);
    assert_int_equal(m->u.reject.n_rows, 1);
    assert_int_equal(m->u.reject.rows[0].code, PROTO_ERR_ROW_TOO_LARGE);
    if (!strstr(m->u.reject.rows[0].message, "more than the") ||
        !strstr(m->u.reject.rows[0].message, "pull page"))
        fail_msg("REJECT reason: %s", m->u.reject.rows[0].message);
    assert_true(encoded_size(m) <= MAX_MESSAGE);
    proto_msg_free(m);
    /* Two more rows near the bound: each page holds what fits, never more than `msg`. */
    for (uint32_t i = 0; i < 2; i++) {
        const char *id2[1] = {i == 0 ? "big-row-2" : "big-row-3"};
        push = fixture_insert_push(4 + i, 1, id2, "t1", "x");
        push->u.push.tables[0].changes[0].cols[2].new_val.u.b.p = (const uint8_t *)more;
        push->u.push.tables[0].changes[0].cols[2].new_val.u.b.n = sizeof more;
        send_push(tc, push);
        proto_msg_free(expect_type(tc, PROTO_MSG_ACK));
    }
    testclient_close(tc);

    assert_int_equal(fixture_enroll_device(&fx, "w1", &reader), 0);
    tr = session_for(&reader, NULL);
    uint64_t cursor = 0;
    uint32_t big = 0;
    bool more_pages = true;
    while (more_pages) {
        m = pull(tr, cursor, 0);
        size_t size = encoded_size(m);
        if (size > MAX_MESSAGE)
            fail_msg("a ROWS page of %zu bytes, over msg = %u", size, MAX_MESSAGE);
        for (uint32_t t = 0; t < m->u.rows.n_tables; t++) {
            const proto_table_rows *tr_rows = &m->u.rows.tables[t];
            for (uint32_t r = 0; r < tr_rows->n_rows; r++) {
                const proto_value *v = tr_rows->rows + (size_t)r * tr_rows->n_columns;
                if (v[0].type == PROTO_TEXT && v[0].u.b.n >= 7 &&
                    memcmp(v[0].u.b.p, "big-row", 7) == 0) {
                    big++;
                    /* The refused update left the name as it was. */
                    if (v[0].u.b.n == 7)
                        assert_int_equal(v[2].u.b.n, PART);
                }
            }
        }
        more_pages = m->u.rows.more;
        cursor = m->u.rows.cursor;
        proto_msg_free(m);
    }
    assert_int_equal(big, 3);
    testclient_close(tr);
}

/* outsider-wire #2: an entry that lost on many rows got an ACK listing every decision, larger
 * than `msg`, which the device refused on every retry. The ACK lists what fits and counts the
 * rest (`cmore`), a replay of it too; every decision stays in the server's conflict log. */
static void test_an_ack_stays_within_msg_however_many_conflicts(void **state)
{
    enum { N = 120, WIN = 600 };
    test_device a, b;
    testclient *ta, *tb;
    static char ids_buf[N][24], winner[WIN];
    const char *ids[N];
    static proto_col cols[2 * N];
    proto_value orig = {.type = PROTO_TEXT}, mine = {.type = PROTO_TEXT},
                big = {.type = PROTO_TEXT};
    proto_msg *push, *m;

    (void)state;
    for (uint32_t i = 0; i < N; i++) {
        snprintf(ids_buf[i], sizeof ids_buf[i], "many-conf-%03u", i);
        ids[i] = ids_buf[i];
    }
    memset(winner, 'w', sizeof winner);
    orig.u.b.p = (const uint8_t *)"orig";
    orig.u.b.n = 4;
    mine.u.b.p = (const uint8_t *)"mine";
    mine.u.b.n = 4;
    big.u.b.p = (const uint8_t *)winner;
    big.u.b.n = WIN;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &a), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w1", &b), 0);
    ta = session_for(&a, NULL);
    send_push(ta, fixture_insert_push(1, N, ids, "t1", "orig"));
    proto_msg_free(expect_type(ta, PROTO_MSG_ACK));
    /* Device b writes long names later (a larger clock), in three entries of 40 rows. */
    tb = session_for(&b, NULL);
    for (uint32_t k = 0; k < 3; k++) {
        push = fixture_insert_push(10 + k, 40, ids + 40 * k, "t1", "x");
        make_updates(push, 2, orig, big, cols);
        send_push(tb, push);
        proto_msg_free(expect_type(tb, PROTO_MSG_ACK));
    }
    testclient_close(tb);
    /* Device a's edit of every name, made earlier, arrives after: it loses on all 120. */
    for (int replay = 0; replay < 2; replay++) {
        push = fixture_insert_push(2, N, ids, "t1", "x");
        make_updates(push, 2, orig, mine, cols);
        send_push(ta, push);
        m = expect_type(ta, PROTO_MSG_ACK);
        assert_int_equal(m->u.ack.seq, 2);
        size_t size = encoded_size(m);
        if (size > MAX_MESSAGE)
            fail_msg("an ACK of %zu bytes, over msg = %u", size, MAX_MESSAGE);
        assert_true(m->u.ack.n_conflicts > 0);
        assert_true(m->u.ack.n_unlisted > 0);
        assert_int_equal(m->u.ack.n_conflicts + m->u.ack.n_unlisted, N);
        assert_int_equal(m->u.ack.conflicts[0].winner.u.b.n, WIN);
        proto_msg_free(m);
    }
    testclient_close(ta);
}

/* A REJECT echoes keys within its byte budget too (four refused rows with 20 KB keys made a
 * REJECT of four times that): the first refusal is always listed, the rest counted. */
static void test_a_reject_stays_within_msg_with_large_keys(void **state)
{
    enum { KEY = 20000, N = 4 };
    test_device d;
    testclient *tc;
    static char keys[N][KEY + 1];
    const char *ids[N];
    proto_msg *push, *m;

    (void)state;
    for (uint32_t i = 0; i < N; i++) {
        memset(keys[i], 'k', KEY);
        keys[i][0] = (char)('a' + i);
        ids[i] = keys[i];
    }
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);
    tc = session_for(&d, NULL);
    /* Three chunks would be the real thing; one entry of rows for a team not the worker's. */
    push = fixture_insert_push(1, N - 1, ids, "team-of-nobody", "x");
    send_push(tc, push);
    m = expect_type(tc, PROTO_MSG_REJECT);
    size_t size = encoded_size(m);
    if (size > MAX_MESSAGE / 2)
        fail_msg("a REJECT of %zu bytes, over half of msg = %u", size, MAX_MESSAGE);
    assert_true(m->u.reject.n_rows >= 1);
    assert_int_equal(m->u.reject.rows[0].code, PROTO_ERR_OUT_OF_SCOPE);
    if (m->u.reject.n_rows < N - 1 &&
        !strstr(m->u.reject.rows[m->u.reject.n_rows - 1].message, "more rows refused"))
        fail_msg("a REJECT of %u rows that does not say more were refused: %s",
                 m->u.reject.n_rows, m->u.reject.rows[m->u.reject.n_rows - 1].message);
    proto_msg_free(m);
    testclient_close(tc);
}

/* Applies one page the way a device does: counts each rescope row ("rs-" ids) it carries into
 * seen, each such key in `gone` into gone, checks the page is within msg and page_rows. Returns the page's cursor. */
static uint64_t apply_rescope_page(const proto_msg *m, uint32_t *seen, uint32_t *gone,
                                   uint32_t n, bool *more)
{
    size_t size = encoded_size(m);
    page_count c = count_page(m);

    if (size > MAX_MESSAGE)
        fail_msg("a ROWS page of %zu bytes, over msg = %u", size, MAX_MESSAGE);
    if (c.rows + c.deleted + c.removed > PAGE_ROWS)
        fail_msg("a ROWS page of %u items, over page = %u", c.rows + c.deleted + c.removed,
                 PAGE_ROWS);
    for (uint32_t t = 0; t < m->u.rows.n_tables; t++) {
        const proto_table_rows *tr = &m->u.rows.tables[t];
        for (uint32_t r = 0; r < tr->n_rows; r++) {
            const proto_value *v = tr->rows + (size_t)r * tr->n_columns;
            unsigned i = 0;
            if (v[0].type == PROTO_TEXT && v[0].u.b.n == 5 &&
                sscanf((const char *)v[0].u.b.p, "rs-%2u", &i) == 1 && i < n)
                seen[i]++;
        }
        for (uint32_t r = 0; r < tr->n_removed; r++) {
            const proto_value *k = tr->removed + (size_t)r * tr->n_pk;
            unsigned i = 0;
            if (k[0].type == PROTO_TEXT && k[0].u.b.n == 5 &&
                sscanf((const char *)k[0].u.b.p, "rs-%2u", &i) == 1 && i < n)
                gone[i]++;
        }
    }
    *more = m->u.rows.more;
    return m->u.rows.cursor;
}

/* A worker who joins a team gets the team's older rows in pages within `msg` and `page`, like
 * any pull, resumable from any page's cursor: 12 rows of 12 KB (144 KB, 12 items) joined at
 * once, one page lost on the way. Leaving the team sends the 12 keys as `gone`, paged too. */
static void test_rows_gained_by_joining_a_team_are_paged_within_msg(void **state)
{
    enum { N = 12, SIZE = 12000 };
    static const char *const t1[] = {"t1"};
    static const char *const both[] = {"t1", "t2"};
    static char name[SIZE];
    test_device writer, joiner;
    testclient *tc;
    uint32_t seen[N] = {0}, gone[N] = {0};
    uint64_t cursor;
    bool more = true;
    proto_msg *m;

    (void)state;
    memset(name, 'j', sizeof name);
    assert_int_equal(fixture_enroll_device(&fx, "w2", &writer), 0);
    tc = session_for(&writer, NULL);
    for (uint32_t i = 0; i < N; i++) {
        char id[8];
        const char *ids[1] = {id};
        snprintf(id, sizeof id, "rs-%02u", i);
        proto_msg *push = fixture_insert_push(1 + i, 1, ids, "t2", "x");
        push->u.push.tables[0].changes[0].cols[2].new_val.u.b.p = (const uint8_t *)name;
        push->u.push.tables[0].changes[0].cols[2].new_val.u.b.n = SIZE;
        send_push(tc, push);
        proto_msg_free(expect_type(tc, PROTO_MSG_ACK));
    }
    testclient_close(tc);

    /* The joiner's cursor passes those rows while they are not its team's. */
    assert_int_equal(fixture_worker_teams(&fx, "w-join", true, t1, 1), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w-join", &joiner), 0);
    tc = session_for(&joiner, NULL);
    cursor = pull_to_end(tc, 0);
    assert_int_equal(fixture_worker_teams(&fx, "w-join", false, both, 2), 0);

    /* First page applied; the second lost with the connection; then pull on from the stored
     * cursor until the server says there is no more. */
    m = pull(tc, cursor, 0);
    cursor = apply_rescope_page(m, seen, gone, N, &more);
    proto_msg_free(m);
    assert_true(more);
    m = pull(tc, cursor, 0);
    proto_msg_free(m);
    testclient_close(tc);
    tc = session_for(&joiner, NULL);
    while (more) {
        m = pull(tc, cursor, 0);
        cursor = apply_rescope_page(m, seen, gone, N, &more);
        proto_msg_free(m);
    }
    for (uint32_t i = 0; i < N; i++)
        if (seen[i] != 1)
            fail_msg("row rs-%02u arrived %u times, expected once", i, seen[i]);
    /* Up to date: nothing more from the final cursor. */
    m = pull(tc, cursor, 0);
    assert_false(m->u.rows.more);
    assert_int_equal(count_page(m).rows, 0);
    proto_msg_free(m);

    /* Leaving the team again: each key comes as `gone`, within `page` items per page. */
    assert_int_equal(fixture_worker_teams(&fx, "w-join", false, t1, 1), 0);
    more = true;
    while (more) {
        m = pull(tc, cursor, 0);
        cursor = apply_rescope_page(m, seen, gone, N, &more);
        proto_msg_free(m);
    }
    for (uint32_t i = 0; i < N; i++)
        if (gone[i] != 1 || seen[i] != 1)
            fail_msg("row rs-%02u: %u times in gone, %u as a row; expected once, once", i,
                     gone[i], seen[i]);
    testclient_close(tc);
}

/* ---- NOTIFY ------------------------------------------------------------------------------- */

static void test_notify_is_not_sent_to_the_pushing_device(void **state)
{
    test_device pusher, peer;
    testclient *tp, *tq;
    proto_msg *m = NULL, req;

    (void)state;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &pusher), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w1", &peer), 0);
    tp = session_for(&pusher, NULL);
    tq = session_for(&peer, NULL);
    push_rows(tp, 1, 1, "notify-self", "t1");
    m = expect_type(tq, PROTO_MSG_NOTIFY); /* the other device of the team hears it... */
    proto_msg_free(m);
    /* ... the pusher does not: a NOTIFY for it would be written right after the ACK, so the
     * next message it gets is the answer to its PULL. */
    memset(&req, 0, sizeof req);
    req.type = PROTO_MSG_PULL;
    assert_int_equal(testclient_send(tp, &req, T_MS), 0);
    assert_int_equal(testclient_recv(tp, T_MS, &m), 0);
    if (m->type != PROTO_MSG_ROWS)
        fail_msg("the pusher got %s before ROWS", proto_msg_type_name(m->type));
    proto_msg_free(m);
    testclient_close(tq);
    testclient_close(tp);
}

/* ---- pipelining --------------------------------------------------------------------------- */

/* Sends n PUSHes of rows_each rows (seqs first_seq..) and a PULL without reading anything, then
 * expects the n ACKs in order and the ROWS: the server answers every request it was sent, in
 * order, however many wait unanswered (8.2). */
static void push_window(testclient *tc, uint64_t first_seq, uint32_t n, uint32_t rows_each,
                        const char *prefix)
{
    char (*ids)[40] = calloc(rows_each, sizeof *ids);
    const char **ptrs = calloc(rows_each, sizeof *ptrs);
    proto_msg req, *m;

    assert_non_null(ids);
    assert_non_null(ptrs);
    for (uint32_t k = 0; k < n; k++) {
        for (uint32_t i = 0; i < rows_each; i++) {
            snprintf(ids[i], sizeof ids[i], "%s-%02u-%03u", prefix, k, i);
            ptrs[i] = ids[i];
        }
        send_push(tc, fixture_insert_push(first_seq + k, rows_each, ptrs, "t1", "window"));
    }
    memset(&req, 0, sizeof req);
    req.type = PROTO_MSG_PULL;
    assert_int_equal(testclient_send(tc, &req, T_MS), 0);
    for (uint32_t k = 0; k < n; k++) {
        m = expect_type(tc, PROTO_MSG_ACK);
        assert_int_equal(m->u.ack.seq, first_seq + k);
        assert_true(m->u.ack.server_seq > 0); /* applied, not a replay */
        proto_msg_free(m);
    }
    m = expect_type(tc, PROTO_MSG_ROWS);
    proto_msg_free(m);
    free(ptrs);
    free(ids);
}

static void test_many_requests_may_wait_unanswered(void **state)
{
    test_device d, reader;
    testclient *tc;
    proto_value row[FIXTURE_N_COLUMNS];

    (void)state;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);
    tc = session_for(&d, NULL);
    /* 64 small entries, then 6 of 1,000 rows (about 55 KB, near the message limit) each. */
    push_window(tc, 1, 64, 1, "win-small");
    push_window(tc, 65, 6, 1000, "win-big");
    testclient_close(tc);
    /* Another device of the team sees them (a pull leaves out a device's own rows). */
    assert_int_equal(fixture_enroll_device(&fx, "w1", &reader), 0);
    tc = session_for(&reader, NULL);
    assert_true(find_row(tc, "win-big-05-999", row));
    testclient_close(tc);
}

/* ---- the first flight (8.2) -------------------------------------------------------------- */

/* HELLO (`ack` first_seq - 1, as the device remembers it), then the first flight: two PUSHes
 * (seqs first_seq, first_seq + 1, one row each, ids prefix-0 and prefix-1) and a PULL from 0,
 * all sent before anything is read. The PUSHes are compressed on HELLO's offer alone (1.1).
 * When refused is true the server may close before the last of it is written: sending may then
 * fail. */
static testclient *send_first_flight(const test_device *dev, uint64_t first_seq,
                                     const char *prefix, bool refused)
{
    testclient *tc = connect_or_fail();
    proto_msg hello = hello_for(dev, 0), req;
    char ids[2][40];

    hello.u.hello.compress = PROTO_COMPRESS_DEFLATE;
    hello.u.hello.has_acked = true;
    hello.u.hello.acked = first_seq - 1;
    assert_int_equal(testclient_send(tc, &hello, T_MS), 0);
    assert_int_equal(testclient_compress(tc), 0);
    for (uint32_t k = 0; k < 2; k++) {
        const char *id = ids[k];
        snprintf(ids[k], sizeof ids[k], "%s-%u", prefix, k);
        proto_msg *push = fixture_insert_push(first_seq + k, 1, &id, "t1", "first flight");
        assert_non_null(push);
        int rc = testclient_send(tc, push, T_MS);
        fixture_push_free(push);
        assert_true(rc == 0 || refused);
    }
    memset(&req, 0, sizeof req);
    req.type = PROTO_MSG_PULL;
    assert_true(testclient_send(tc, &req, T_MS) == 0 || refused);
    return tc;
}

/* The server reads what follows HELLO only once WELCOME is written, and answers in order:
 * WELCOME, each ACK, then ROWS, which comes after the merges and so leaves the device's own
 * rows out (no echo), while another device of the team gets them. */
static void test_first_flight_is_answered_in_order_after_welcome(void **state)
{
    test_device d, reader;
    testclient *tc;
    proto_msg *m;
    proto_value row[FIXTURE_N_COLUMNS];

    (void)state;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);
    tc = send_first_flight(&d, 1, "flight", false);
    m = expect_type(tc, PROTO_MSG_WELCOME);
    assert_int_equal(m->u.welcome.compress, PROTO_COMPRESS_DEFLATE);
    proto_msg_free(m);
    for (uint64_t seq = 1; seq <= 2; seq++) {
        m = expect_type(tc, PROTO_MSG_ACK);
        assert_int_equal(m->u.ack.seq, seq);
        assert_true(m->u.ack.server_seq > 0); /* applied, not a replay */
        proto_msg_free(m);
    }
    m = expect_type(tc, PROTO_MSG_ROWS);
    assert_false(row_in_page(m, "flight-0", row));
    assert_false(row_in_page(m, "flight-1", row));
    proto_msg_free(m);
    testclient_close(tc);

    assert_int_equal(fixture_enroll_device(&fx, "w1", &reader), 0);
    tc = session_for(&reader, NULL);
    assert_true(find_row(tc, "flight-1", row));
    testclient_close(tc);
}

/* ---- several messages in one TLS record ---------------------------------------------------- */

/* Appends msg, encoded, to flight[*n]. */
static void add_encoded(proto_buf *flight, size_t *n, const proto_msg *msg)
{
    memset(&flight[*n], 0, sizeof flight[*n]);
    assert_int_equal(proto_encode(msg, &flight[*n]), PROTO_OK);
    (*n)++;
}

/* Appends a one-row PUSH (id prefix-seq, its name name) to flight[*n]. */
static void add_push(proto_buf *flight, size_t *n, uint64_t seq, const char *prefix,
                     const char *name)
{
    char id[48];
    const char *idp = id;

    snprintf(id, sizeof id, "%s-%" PRIu64, prefix, seq);
    proto_msg *push = fixture_insert_push(seq, 1, &idp, "t1", name);
    assert_non_null(push);
    add_encoded(flight, n, push);
    fixture_push_free(push);
}

/* Opens a raw /sync WebSocket: lws as a client cuts every write into records of 1,460 bytes,
 * this one does not. */
static dash_live *raw_connect(void)
{
    dash_live *l = NULL;

    assert_int_equal(dash_ws_open(fx.port, fx.ca_path, "/sync", "outpost.1", &l), 101);
    return l;
}

/* Writes flight[0..n) in one write (one TLS record up to 16 KiB) and frees it. */
static void send_coalesced(dash_live *l, proto_buf *flight, size_t n)
{
    const uint8_t *msgs[64];
    size_t lens[64];

    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++) {
        msgs[i] = flight[i].data;
        lens[i] = flight[i].len;
    }
    assert_int_equal(dash_ws_send_binary(l, msgs, lens, n), 0);
    for (size_t i = 0; i < n; i++)
        proto_buf_free(&flight[i]);
}

/* The next message on a raw connection, of the given type (an ERROR's code must be code);
 * compressed frames are inflated with zin. */
static void raw_expect(dash_live *l, proto_zstream *zin, proto_msg_type type,
                       proto_error_code code)
{
    static uint8_t payload[65536];
    proto_buf plain = {0};
    proto_limits limits;
    proto_msg *m = NULL;
    size_t len = 0;
    char err[200];
    int r = dash_ws_next_binary(l, T_MS, payload, sizeof payload, &len);

    if (r != 1)
        fail_msg("expected %s, got %s", proto_msg_type_name(type),
                 r == 2 ? "the connection closed" : r == 0 ? "nothing" : "an error");
    proto_limits_default(&limits);
    if (zin && proto_is_zframe(payload, len)) {
        assert_int_equal(proto_zframe_inflate(zin, payload, len, 1u << 20, &plain), PROTO_OK);
        assert_int_equal(proto_decode(plain.data, plain.len, &limits, &m, err, sizeof err),
                         PROTO_OK);
        proto_buf_free(&plain);
    } else {
        assert_int_equal(proto_decode(payload, len, &limits, &m, err, sizeof err), PROTO_OK);
    }
    if (m->type != type || (type == PROTO_MSG_ERROR && m->u.error.code != (uint32_t)code))
        fail_msg("expected %s, got %s (code %u: %s)", proto_msg_type_name(type),
                 proto_msg_type_name(m->type), m->type == PROTO_MSG_ERROR ? m->u.error.code : 0,
                 m->type == PROTO_MSG_ERROR ? m->u.error.message : "");
    if (type == PROTO_MSG_ACK)
        assert_true(m->u.ack.server_seq > 0); /* applied, not a replay */
    proto_msg_free(m);
}

/* A writer that coalesces its sends puts several messages in one TLS record; 8.2 allows any
 * number unanswered. outpostd used to drop the connection without a word once more than 4 KiB
 * of them followed the message it was handling (an outsider: 40 PUSHes in 6 KB; HELLO and a
 * 4 KB PUSH). Before WELCOME and after it, every one is answered, in order. */
static void test_requests_coalesced_in_one_record_are_all_answered(void **state)
{
    enum { N_SMALL = 40 };
    test_device d, reader;
    proto_buf flight[N_SMALL + 2];
    size_t n = 0;
    dash_live *l;
    testclient *tc;
    proto_msg hello, req;
    proto_value row[FIXTURE_N_COLUMNS];
    char big[4200];

    (void)state;
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);

    /* HELLO, 40 small PUSHes and a PULL in one record (about 6 KB). */
    l = raw_connect();
    hello = hello_for(&d, 0);
    add_encoded(flight, &n, &hello);
    for (uint64_t seq = 1; seq <= N_SMALL; seq++)
        add_push(flight, &n, seq, "coalesced", "small");
    memset(&req, 0, sizeof req);
    req.type = PROTO_MSG_PULL;
    add_encoded(flight, &n, &req);
    send_coalesced(l, flight, n);
    raw_expect(l, NULL, PROTO_MSG_WELCOME, 0);
    for (uint64_t seq = 1; seq <= N_SMALL; seq++)
        raw_expect(l, NULL, PROTO_MSG_ACK, 0);
    raw_expect(l, NULL, PROTO_MSG_ROWS, 0);

    /* After WELCOME: 40 more in one record. */
    n = 0;
    for (uint64_t seq = N_SMALL + 1; seq <= 2 * N_SMALL; seq++)
        add_push(flight, &n, seq, "coalesced", "small");
    send_coalesced(l, flight, n);
    for (uint64_t seq = N_SMALL + 1; seq <= 2 * N_SMALL; seq++)
        raw_expect(l, NULL, PROTO_MSG_ACK, 0);
    dash_live_close(l);

    /* HELLO and a 4 KB PUSH in one record. */
    l = raw_connect();
    n = 0;
    hello = hello_for(&d, 0);
    add_encoded(flight, &n, &hello);
    add_push(flight, &n, 2 * N_SMALL + 1, "coalesced", big);
    send_coalesced(l, flight, n);
    raw_expect(l, NULL, PROTO_MSG_WELCOME, 0);
    raw_expect(l, NULL, PROTO_MSG_ACK, 0);
    dash_live_close(l);

    assert_int_equal(fixture_enroll_device(&fx, "w1", &reader), 0);
    tc = session_for(&reader, NULL);
    assert_true(find_row(tc, "coalesced-80", row));
    assert_true(find_row(tc, "coalesced-81", row));
    testclient_close(tc);
}

/* An oversized message coalesced behind HELLO (a decompression bomb behind a 5 KB PUSH) is
 * ERROR 7 as in its own record (1.1): WELCOME, the PUSH's ACK, then the ERROR and the close. */
static void test_bomb_coalesced_behind_hello_is_too_large(void **state)
{
    test_device d;
    proto_buf flight[3];
    size_t n = 0;
    dash_live *l;
    proto_msg hello;
    proto_zstream *z = NULL, *zin = NULL;
    char big[5200];
    uint8_t *zeros = calloc(1, MAX_MESSAGE + 1);

    (void)state;
    assert_non_null(zeros);
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);
    l = raw_connect();
    hello = hello_for(&d, 0);
    hello.u.hello.compress = PROTO_COMPRESS_DEFLATE;
    add_encoded(flight, &n, &hello);
    add_push(flight, &n, 1, "bomb", big);
    assert_int_equal(proto_zstream_new(true, &z), PROTO_OK);
    memset(&flight[n], 0, sizeof flight[n]);
    assert_int_equal(proto_zframe_deflate(z, zeros, MAX_MESSAGE + 1, &flight[n]), PROTO_OK);
    n++;
    send_coalesced(l, flight, n);
    proto_zstream_free(z);
    free(zeros);
    assert_int_equal(proto_zstream_new(false, &zin), PROTO_OK);
    raw_expect(l, zin, PROTO_MSG_WELCOME, 0);
    raw_expect(l, zin, PROTO_MSG_ACK, 0);
    raw_expect(l, zin, PROTO_MSG_ERROR, PROTO_ERR_TOO_LARGE);
    proto_zstream_free(zin);
    dash_live_close(l);
}

/* A refused HELLO ends the session before anything behind it is read: a revoked device's
 * first flight gets ERROR 4 (or WIPE) and nothing else, and none of it is applied. */
static void test_first_flight_of_a_revoked_device_is_not_applied(void **state)
{
    test_device d, wiped, reader;
    testclient *tc;
    proto_msg *m = NULL;
    proto_value row[FIXTURE_N_COLUMNS];

    (void)state;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);
    assert_int_equal(fixture_revoke(&fx, d.id, false), 0);
    tc = send_first_flight(&d, 1, "revoked-flight", true);
    expect_error_and_close(tc, PROTO_ERR_REVOKED, false, "revoked");
    testclient_close(tc);

    assert_int_equal(fixture_enroll_device(&fx, "w1", &wiped), 0);
    assert_int_equal(fixture_revoke(&fx, wiped.id, true), 0);
    tc = send_first_flight(&wiped, 1, "wiped-flight", true);
    assert_int_equal(testclient_recv(tc, T_MS, &m), 0);
    assert_int_equal(m->type, PROTO_MSG_WIPE);
    proto_msg_free(m);
    assert_true(testclient_wait_closed(tc, T_MS));
    assert_int_equal(testclient_recv(tc, 0, &m), -1);
    testclient_close(tc);

    assert_int_equal(fixture_enroll_device(&fx, "w1", &reader), 0);
    tc = session_for(&reader, NULL);
    assert_false(find_row(tc, "revoked-flight-0", row));
    assert_false(find_row(tc, "wiped-flight-0", row));
    testclient_close(tc);
}

/* A store that went back in time (restored from a backup) has recorded less from the device
 * than HELLO's `ack` says it acknowledged: entries it lost come back later, below the first
 * flight's seqs, so the flight is refused (ERROR 14, retry), not applied out of order. The
 * next session, with the `ack` WELCOME gave, goes through. */
static void test_first_flight_to_a_store_that_went_back_is_refused(void **state)
{
    test_device d, reader;
    testclient *tc;
    proto_msg *m;
    proto_value row[FIXTURE_N_COLUMNS];

    (void)state;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);
    tc = send_first_flight(&d, 8, "behind-flight", true); /* says 7 acknowledged; store has 0 */
    m = expect_type(tc, PROTO_MSG_WELCOME);
    assert_int_equal(m->u.welcome.acked_seq, 0);
    proto_msg_free(m);
    expect_error_and_close(tc, PROTO_ERR_CURSOR_AHEAD, true,
                           "went back in time (restored from a backup, or failed over to a "
                           "standby that lacked commits)");
    testclient_close(tc);
    /* the operator is told the store lost acknowledged writes, and what to do */
    char line[160];
    snprintf(line, sizeof line, "store: device %s was acknowledged up to seq 7 but", d.id);
    assert_true(fixture_log_contains(&fx, line));
    assert_true(fixture_log_contains(&fx, "stop every outpostd, run outpost-admin restored on "
                                          "the store and start them again"));
    /* One device's word proves nothing: saying it again and again names the device each time,
     * but the call to mark the store restored goes through the log's repeat limit. */
    for (int k = 0; k < 12; k++) {
        tc = send_first_flight(&d, 8, "behind-flight", true);
        m = expect_type(tc, PROTO_MSG_WELCOME);
        proto_msg_free(m);
        expect_error_and_close(tc, PROTO_ERR_CURSOR_AHEAD, true, "went back in time");
        testclient_close(tc);
    }
    assert_true(fixture_log_count(&fx, line) >= 13);
    assert_true(fixture_log_count(&fx, "run outpost-admin restored on the store") <= 5);
    assert_true(fixture_log_contains(&fx, "one device's word proves nothing"));

    assert_int_equal(fixture_enroll_device(&fx, "w1", &reader), 0);
    tc = session_for(&reader, NULL);
    assert_false(find_row(tc, "behind-flight-0", row));
    testclient_close(tc);

    tc = send_first_flight(&d, 1, "behind-again", false);
    m = expect_type(tc, PROTO_MSG_WELCOME);
    proto_msg_free(m);
    m = expect_type(tc, PROTO_MSG_ACK);
    assert_int_equal(m->u.ack.seq, 1);
    proto_msg_free(m);
    testclient_close(tc);
}

/* HELLO names the store the device syncs with: another store (its credentials copied there)
 * answers WELCOME, whose `store` makes the device stop, and applies nothing of the flight. */
static void test_first_flight_to_another_store_is_not_applied(void **state)
{
    test_device d, reader;
    testclient *tc;
    proto_msg hello, req, *m;
    proto_value row[FIXTURE_N_COLUMNS];
    const char *id = "other-store-0";

    (void)state;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);
    tc = connect_or_fail();
    hello = hello_for(&d, 0);
    hello.u.hello.store_id = "a-store-this-server-is-not";
    assert_int_equal(testclient_send(tc, &hello, T_MS), 0);
    m = fixture_insert_push(1, 1, &id, "t1", "first flight");
    assert_non_null(m);
    assert_int_equal(testclient_send(tc, m, T_MS), 0);
    fixture_push_free(m);
    memset(&req, 0, sizeof req);
    req.type = PROTO_MSG_PULL;
    (void)testclient_send(tc, &req, T_MS); /* the server may have closed already */
    m = expect_type(tc, PROTO_MSG_WELCOME);
    proto_msg_free(m);
    expect_error_and_close(tc, PROTO_ERR_BAD_MESSAGE, false, "another central store");
    testclient_close(tc);

    assert_int_equal(fixture_enroll_device(&fx, "w1", &reader), 0);
    tc = session_for(&reader, NULL);
    assert_false(find_row(tc, "other-store-0", row));
    testclient_close(tc);
}

/* ---- revocation --------------------------------------------------------------------------- */

static void test_wipe_ordered_during_a_session_reaches_the_next_hello(void **state)
{
    test_device d;
    testclient *tc;
    proto_msg hello, *m;

    (void)state;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);
    tc = session_for(&d, NULL);
    assert_int_equal(fixture_revoke(&fx, d.id, true), 0);
    {
        proto_msg req;
        memset(&req, 0, sizeof req);
        req.type = PROTO_MSG_PULL;
        assert_int_equal(testclient_send(tc, &req, T_MS), 0);
    }
    expect_error_and_close(tc, PROTO_ERR_REVOKED, true, "revoked");
    testclient_close(tc);

    /* The next HELLO gets WIPE and nothing else, and the server closes. */
    tc = connect_or_fail();
    hello = hello_for(&d, 0);
    assert_int_equal(testclient_send(tc, &hello, T_MS), 0);
    assert_int_equal(testclient_recv(tc, T_MS, &m), 0);
    assert_int_equal(m->type, PROTO_MSG_WIPE);
    proto_msg_free(m);
    assert_true(testclient_wait_closed(tc, T_MS));
    assert_int_equal(testclient_recv(tc, 0, &m), -1);
    testclient_close(tc);
}

/* ---- silences ----------------------------------------------------------------------------- */

/* The chunks of one PUSH follow each other within the message timeout; the half entry is not
 * applied. */
static void test_push_chunks_must_follow_within_the_message_timeout(void **state)
{
    test_device d, reader;
    testclient *tc;
    const char *ids[1] = {"slow-chunks"};
    proto_msg *push;
    proto_value row[FIXTURE_N_COLUMNS];
    uint64_t start;

    (void)state;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);
    tc = session_for(&d, NULL);
    push = fixture_insert_push(1, 1, ids, "t1", "rules");
    push->u.push.more = true;
    start = mono_ms();
    send_push(tc, push);
    expect_error_and_close(tc, PROTO_ERR_TIMEOUT, true, "not followed within 1 s");
    /* Well before the idle timeout: the message timeout applied. */
    assert_true(mono_ms() - start < (IDLE_TIMEOUT_S * 1000u) - 500u);
    testclient_close(tc);

    assert_int_equal(fixture_enroll_device(&fx, "w1", &reader), 0);
    tc = session_for(&reader, NULL);
    assert_false(find_row(tc, "slow-chunks", row));
    testclient_close(tc);
}

/* WebSocket pings are answered but are not activity: a session that only pings is closed when
 * the idle timeout runs out. */
static void test_pings_are_answered_but_do_not_keep_a_session(void **state)
{
    test_device d;
    testclient *tc;
    proto_msg *m = NULL;
    uint64_t start, deadline;
    unsigned pongs = 0;

    (void)state;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);
    tc = session_for(&d, NULL);
    start = mono_ms();
    deadline = start + IDLE_TIMEOUT_S * 1000u + 3000u;
    while (mono_ms() < deadline && testclient_ping(tc, 400) == 0) {
        pongs++;
        usleep(300 * 1000);
    }
    assert_true(pongs >= 2);
    assert_int_equal(testclient_recv(tc, T_MS, &m), 0);
    assert_int_equal(m->type, PROTO_MSG_ERROR);
    assert_int_equal(m->u.error.code, PROTO_ERR_TIMEOUT);
    assert_non_null(strstr(m->u.error.message, "idle for"));
    proto_msg_free(m);
    assert_true(testclient_wait_closed(tc, T_MS));
    assert_true(mono_ms() - start >= IDLE_TIMEOUT_S * 1000u - 200u);
    testclient_close(tc);
}

/* A store held by another writer past the busy timeout: the PUSH is answered ERROR 8 BUSY
 * (retryable), the session ends like after every ERROR, and nothing of the entry was applied. */
static void test_store_busy_is_an_error_that_ends_the_session(void **state)
{
    test_device d, reader;
    testclient *tc;
    const char *ids[1] = {"while-busy"};
    proto_value row[FIXTURE_N_COLUMNS];
    sqlite3 *db = NULL;

    (void)state;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w1", &reader), 0);
    tc = session_for(&d, NULL);
    assert_int_equal(sqlite3_open(fx.store_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    send_push(tc, fixture_insert_push(1, 1, ids, "t1", "rules"));
    expect_error_and_close(tc, PROTO_ERR_BUSY, true, "busy");
    testclient_close(tc);
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    tc = session_for(&reader, NULL);
    assert_false(find_row(tc, "while-busy", row));
    testclient_close(tc);
}

/* Last: the daemon is still up and answering, and stops cleanly. */
static void test_daemon_stops_cleanly(void **state)
{
    (void)state;
    assert_int_equal(fixture_stop(&fx), 0);
    assert_true(fixture_log_contains(&fx, "outpostd stopped"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_welcome_advertises_the_session_limits),
        cmocka_unit_test(test_hello_with_a_newer_schema_is_refused),
        cmocka_unit_test(test_pull_deletions_count_toward_lim), /* first to write rows */
        cmocka_unit_test(test_decode_failures_are_error_1_except_sizes_error_7),
        cmocka_unit_test(test_error_from_a_device_is_answered_error_1),
        cmocka_unit_test(test_session_continues_on_the_enrollment_connection),
        cmocka_unit_test(test_enrollment_codes_are_normalised),
        cmocka_unit_test(test_pull_lim_zero_means_the_server_page_cap),
        cmocka_unit_test(test_pull_without_seen_judges_from_where_the_pull_chain_began),
        cmocka_unit_test(test_push_sv_is_not_checked_and_a_shorter_ncol_takes_defaults),
        cmocka_unit_test(test_reject_names_an_unreadable_key_as_nil),
        cmocka_unit_test(test_a_row_never_grows_past_what_a_pull_page_carries),
        cmocka_unit_test(test_an_ack_stays_within_msg_however_many_conflicts),
        cmocka_unit_test(test_a_reject_stays_within_msg_with_large_keys),
        cmocka_unit_test(test_rows_gained_by_joining_a_team_are_paged_within_msg),
        cmocka_unit_test(test_notify_is_not_sent_to_the_pushing_device),
        cmocka_unit_test(test_many_requests_may_wait_unanswered),
        cmocka_unit_test(test_first_flight_is_answered_in_order_after_welcome),
        cmocka_unit_test(test_first_flight_of_a_revoked_device_is_not_applied),
        cmocka_unit_test(test_requests_coalesced_in_one_record_are_all_answered),
        cmocka_unit_test(test_bomb_coalesced_behind_hello_is_too_large),
        cmocka_unit_test(test_first_flight_to_a_store_that_went_back_is_refused),
        cmocka_unit_test(test_first_flight_to_another_store_is_not_applied),
        cmocka_unit_test(test_wipe_ordered_during_a_session_reaches_the_next_hello),
        cmocka_unit_test(test_push_chunks_must_follow_within_the_message_timeout),
        cmocka_unit_test(test_pings_are_answered_but_do_not_keep_a_session),
        cmocka_unit_test(test_store_busy_is_an_error_that_ends_the_session),
        cmocka_unit_test(test_daemon_stops_cleanly),
    };

    return cmocka_run_group_tests_name("protocol_rules", tests, setup, teardown);
}
