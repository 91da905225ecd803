/*
 * Compressed frames (proto.h, "Compression"): messages round-trip through one stream per
 * direction, later messages cost less than the first, and a decompression bomb is refused at the
 * message limit without the receiver ever holding more than that limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "outpost/proto.h"

/* A PUSH-like message: one contact row as the outreach app writes it. */
static void contact_text(char *out, size_t n, unsigned i)
{
    snprintf(out, n,
             "{id:0190a000-0000-7000-8000-%012u,team:team-north,name:Contact %u,age:%u,"
             "place:central station, east exit,notes:met at night; referred to shelter}",
             i, i, 10 + i % 8);
}

static void test_frames_round_trip_in_order_and_shrink_with_history(void **state)
{
    (void)state;
    proto_zstream *tx = NULL, *rx = NULL;
    proto_buf frame = {0}, plain = {0};
    size_t first = 0, last = 0;

    assert_int_equal(proto_zstream_new(true, &tx), PROTO_OK);
    assert_int_equal(proto_zstream_new(false, &rx), PROTO_OK);
    for (unsigned i = 0; i < 20; i++) {
        char msg[256];
        contact_text(msg, sizeof msg, i);
        frame.len = 0;
        assert_int_equal(proto_zframe_deflate(tx, (const uint8_t *)msg, strlen(msg), &frame),
                         PROTO_OK);
        assert_true(proto_is_zframe(frame.data, frame.len));
        assert_int_equal(proto_zframe_inflate(rx, frame.data, frame.len, 1024, &plain),
                         PROTO_OK);
        assert_int_equal(plain.len, strlen(msg));
        assert_memory_equal(plain.data, msg, plain.len);
        if (i == 0)
            first = frame.len;
        last = frame.len;
    }
    /* The twentieth row refers back to the ones before it. */
    assert_true(last * 2 < first);
    proto_buf_free(&frame);
    proto_buf_free(&plain);
    proto_zstream_free(tx);
    proto_zstream_free(rx);
}

static void test_bomb_is_refused_at_the_limit(void **state)
{
    (void)state;
    enum { BOMB = 8 * 1024 * 1024, LIMIT = 64 * 1024 };
    proto_zstream *tx = NULL, *rx = NULL;
    proto_buf frame = {0}, plain = {0};
    uint8_t *zeros = calloc(1, BOMB);

    assert_non_null(zeros);
    assert_int_equal(proto_zstream_new(true, &tx), PROTO_OK);
    assert_int_equal(proto_zstream_new(false, &rx), PROTO_OK);
    assert_int_equal(proto_zframe_deflate(tx, zeros, BOMB, &frame), PROTO_OK);
    assert_true(frame.len < BOMB / 500); /* a small frame ... */
    assert_int_equal(proto_zframe_inflate(rx, frame.data, frame.len, LIMIT, &plain),
                     PROTO_ETOOBIG);
    /* ... that never made the receiver hold more than the limit and a byte. */
    assert_true(plain.cap <= LIMIT + 1);
    assert_int_equal(plain.len, 0);
    /* The stream is spent: the session has to end. */
    assert_int_equal(proto_zframe_inflate(rx, frame.data, frame.len, BOMB, &plain), PROTO_EINVAL);
    /* The same frame within a limit that holds it is accepted: the refusal was the limit. */
    proto_zstream_free(rx);
    assert_int_equal(proto_zstream_new(false, &rx), PROTO_OK);
    assert_int_equal(proto_zframe_inflate(rx, frame.data, frame.len, BOMB, &plain), PROTO_OK);
    assert_int_equal(plain.len, BOMB);
    free(zeros);
    proto_buf_free(&frame);
    proto_buf_free(&plain);
    proto_zstream_free(tx);
    proto_zstream_free(rx);
}

/* count contact rows, one after another: a bulk message of about 180 bytes a row. */
static size_t contacts_text(char *out, size_t cap, unsigned first, unsigned count)
{
    size_t n = 0;

    for (unsigned i = first; i < first + count && n + 256 < cap; i++) {
        contact_text(out + n, cap - n, i);
        n += strlen(out + n);
    }
    return n;
}

/* One stream carries small messages at level 6 and big ones at level 1, switching between frames
 * both ways: every message comes back byte for byte through one receiving stream, and the big
 * ones really went at the faster level (a longer frame than the same stream at level 6 makes). */
static void test_bulk_messages_switch_level_and_round_trip(void **state)
{
    (void)state;
    enum { BULK = 4096, CAP = 200 * 1024 };
    proto_zstream *tx = NULL, *tx6 = NULL, *rx = NULL;
    proto_buf frame = {0}, frame6 = {0}, plain = {0};
    char *msg = malloc(CAP);
    unsigned bulk_frames = 0;

    assert_non_null(msg);
    assert_int_equal(proto_zstream_new(true, &tx), PROTO_OK);
    assert_int_equal(proto_zstream_new(true, &tx6), PROTO_OK);
    assert_int_equal(proto_zstream_new(false, &rx), PROTO_OK);
    proto_zstream_bulk_from(tx, BULK);
    for (unsigned i = 0; i < 12; i++) {
        /* small, small, big, small, big, big, ... */
        size_t n = (i % 3 == 2 || i % 4 == 1) ? contacts_text(msg, CAP, i * 1000, 600)
                                              : contacts_text(msg, CAP, i * 1000, 1);
        frame.len = frame6.len = 0;
        assert_int_equal(proto_zframe_deflate(tx, (const uint8_t *)msg, n, &frame), PROTO_OK);
        assert_int_equal(proto_zframe_deflate(tx6, (const uint8_t *)msg, n, &frame6), PROTO_OK);
        assert_int_equal(proto_zframe_inflate(rx, frame.data, frame.len, CAP, &plain), PROTO_OK);
        assert_int_equal(plain.len, n);
        assert_memory_equal(plain.data, msg, n);
        if (n >= BULK) {
            bulk_frames++;
            assert_true(frame.len > frame6.len);
        }
    }
    assert_int_equal(bulk_frames, 6);
    free(msg);
    proto_buf_free(&frame);
    proto_buf_free(&frame6);
    proto_buf_free(&plain);
    proto_zstream_free(tx);
    proto_zstream_free(tx6);
    proto_zstream_free(rx);
}

/* A bomb sent at the bulk level is refused at the limit like one sent at level 6. */
static void test_bomb_at_the_bulk_level_is_refused_at_the_limit(void **state)
{
    (void)state;
    enum { BOMB = 8 * 1024 * 1024, LIMIT = 64 * 1024 };
    proto_zstream *tx = NULL, *rx = NULL;
    proto_buf frame = {0}, plain = {0};
    uint8_t *zeros = calloc(1, BOMB);

    assert_non_null(zeros);
    assert_int_equal(proto_zstream_new(true, &tx), PROTO_OK);
    assert_int_equal(proto_zstream_new(false, &rx), PROTO_OK);
    proto_zstream_bulk_from(tx, 1);
    assert_int_equal(proto_zframe_deflate(tx, zeros, BOMB, &frame), PROTO_OK);
    assert_true(frame.len < BOMB / 100);
    assert_int_equal(proto_zframe_inflate(rx, frame.data, frame.len, LIMIT, &plain),
                     PROTO_ETOOBIG);
    assert_true(plain.cap <= LIMIT + 1);
    assert_int_equal(plain.len, 0);
    proto_zstream_free(rx);
    assert_int_equal(proto_zstream_new(false, &rx), PROTO_OK);
    assert_int_equal(proto_zframe_inflate(rx, frame.data, frame.len, BOMB, &plain), PROTO_OK);
    assert_int_equal(plain.len, BOMB);
    free(zeros);
    proto_buf_free(&frame);
    proto_buf_free(&plain);
    proto_zstream_free(tx);
    proto_zstream_free(rx);
}

static void test_garbage_and_plain_messages_are_not_frames(void **state)
{
    (void)state;
    proto_zstream *rx = NULL;
    proto_buf plain = {0};
    static const uint8_t garbage[] = {PROTO_ZFRAME_MARK, 0xff, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t msgpack_map[] = {0x81, 0xa1, 't', 0x07};

    assert_false(proto_is_zframe(msgpack_map, sizeof msgpack_map));
    assert_int_equal(proto_zstream_new(false, &rx), PROTO_OK);
    assert_int_equal(proto_zframe_inflate(rx, garbage, sizeof garbage, 1024, &plain),
                     PROTO_EMALFORMED);
    proto_zstream_free(rx);
    assert_int_equal(proto_zstream_new(false, &rx), PROTO_OK);
    assert_int_equal(proto_zframe_inflate(rx, msgpack_map, sizeof msgpack_map, 1024, &plain),
                     PROTO_EMALFORMED);
    proto_buf_free(&plain);
    proto_zstream_free(rx);
}

static void test_hello_and_welcome_carry_the_offer(void **state)
{
    (void)state;
    proto_msg m, *back = NULL;
    proto_buf buf = {0};

    memset(&m, 0, sizeof m);
    m.type = PROTO_MSG_HELLO;
    m.u.hello.version = PROTO_VERSION;
    m.u.hello.device_id = "d1";
    m.u.hello.compress = PROTO_COMPRESS_DEFLATE;
    assert_int_equal(proto_encode(&m, &buf), PROTO_OK);
    assert_int_equal(proto_decode(buf.data, buf.len, NULL, &back, NULL, 0), PROTO_OK);
    assert_int_equal(back->u.hello.compress, PROTO_COMPRESS_DEFLATE);
    proto_msg_free(back);

    /* Absent is "none", and an old peer's message has no "z" at all. */
    buf.len = 0;
    m.u.hello.compress = 0;
    assert_int_equal(proto_encode(&m, &buf), PROTO_OK);
    assert_null(memchr(buf.data, 'z', buf.len));
    assert_int_equal(proto_decode(buf.data, buf.len, NULL, &back, NULL, 0), PROTO_OK);
    assert_int_equal(back->u.hello.compress, 0);
    proto_msg_free(back);

    memset(&m, 0, sizeof m);
    m.type = PROTO_MSG_WELCOME;
    m.u.welcome.version = PROTO_VERSION;
    m.u.welcome.compress = PROTO_COMPRESS_DEFLATE;
    buf.len = 0;
    assert_int_equal(proto_encode(&m, &buf), PROTO_OK);
    assert_int_equal(proto_decode(buf.data, buf.len, NULL, &back, NULL, 0), PROTO_OK);
    assert_int_equal(back->u.welcome.compress, PROTO_COMPRESS_DEFLATE);
    proto_msg_free(back);
    proto_buf_free(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_round_trip_in_order_and_shrink_with_history),
        cmocka_unit_test(test_bomb_is_refused_at_the_limit),
        cmocka_unit_test(test_bulk_messages_switch_level_and_round_trip),
        cmocka_unit_test(test_bomb_at_the_bulk_level_is_refused_at_the_limit),
        cmocka_unit_test(test_garbage_and_plain_messages_are_not_frames),
        cmocka_unit_test(test_hello_and_welcome_carry_the_offer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
