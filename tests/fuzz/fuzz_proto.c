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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    proto_msg *msg = NULL;
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
