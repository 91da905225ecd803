/*
 * Fuzz target for the protocol decoder.
 *
 * Built two ways: with -DOUTPOST_LIBFUZZER and -fsanitize=fuzzer it is a libFuzzer target;
 * otherwise it is linked with fuzz_replay.c, whose main() replays every file of the seed corpus
 * (or of the paths given) through the same entry point, which is how ctest runs it without a
 * fuzzer.
 *
 * Besides "never crash", it checks: proto_check and proto_decode agree on structural errors,
 * every failure carries a message, and a decoded message re-encodes to bytes that decode again
 * and re-encode to the same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outpost/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_proto: %s%s%s\n", what, detail != NULL ? ": " : "",
            detail != NULL ? detail : "");
    abort();
}

/* Re-encoding may grow a message (a float32 comes back as float64), so the second decode
 * runs without the size limit. */
static void check_stable(const proto_msg *msg)
{
    proto_buf first = {0}, second = {0};
    if (proto_encode(msg, &first) != PROTO_OK)
        die("a decoded message does not re-encode", NULL);
    if (proto_encoded_size(msg) != first.len)
        die("proto_encoded_size disagrees with proto_encode", NULL);
    proto_limits loose;
    proto_limits_default(&loose);
    loose.max_message_bytes = SIZE_MAX;
    proto_msg *again = NULL;
    char err[256] = "";
    if (proto_decode(first.data, first.len, &loose, &again, err, sizeof err) != PROTO_OK)
        die("a re-encoded message does not decode", err);
    if (proto_encode(again, &second) != PROTO_OK)
        die("a twice-decoded message does not re-encode", NULL);
    if (second.len != first.len || memcmp(second.data, first.data, first.len) != 0)
        die("encoding is not stable across a round trip", NULL);
    proto_msg_free(again);
    proto_buf_free(&first);
    proto_buf_free(&second);
}

/* A frame on a fresh decompressing stream: never more than the limit out, whatever comes in
 * (a decompression bomb is PROTO_ETOOBIG), and what does come out decodes like any message. */
static void check_inflate(const uint8_t *data, size_t size)
{
    enum { LIMIT = 64 * 1024 };
    proto_zstream *z = NULL;
    proto_buf out = {0};
    if (!proto_is_zframe(data, size) || proto_zstream_new(false, &z) != PROTO_OK)
        return;
    int rc = proto_zframe_inflate(z, data, size, LIMIT, &out);
    if (out.len > LIMIT)
        die("a frame inflated past its limit", proto_strerror(rc));
    if (rc == PROTO_OK) {
        proto_msg *msg = NULL;
        if (proto_decode(out.data, out.len, NULL, &msg, NULL, 0) == PROTO_OK)
            proto_msg_free(msg);
    }
    proto_buf_free(&out);
    proto_zstream_free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    proto_msg *msg = NULL;
    check_inflate(data, size);
    int check_rc = proto_check(data, size, NULL, NULL, 0);
    int rc = proto_decode(data, size, NULL, &msg, err, sizeof err);
    if (check_rc != PROTO_OK && rc != check_rc)
        die("proto_decode and proto_check disagree", proto_strerror(rc));
    if (rc != PROTO_OK) {
        if (msg != NULL || err[0] == '\0')
            die("a failed decode left a message or no error text", proto_strerror(rc));
        return 0;
    }
    check_stable(msg);
    proto_msg_free(msg);
    return 0;
}
