/*
 * Fuzz target for the protocol decoder.
 *
 * Built two ways: with -DOUTPOST_LIBFUZZER and -fsanitize=fuzzer it is a libFuzzer target;
 * otherwise main() replays every file of the seed corpus (or of the paths given) through the
 * same entry point, which is how ctest runs it without a fuzzer.
 *
 * Besides "never crash", it checks: proto_check and proto_decode agree on structural errors,
 * every failure carries a message, and a decoded message re-encodes to bytes that decode again
 * and re-encode to the same bytes.
 */
#include <dirent.h>
#include <stdbool.h>
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

#ifndef OUTPOST_LIBFUZZER

/* dir + "/" + name into out; false when it does not fit. */
static bool join_path(char *out, size_t out_size, const char *dir, const char *name)
{
    int n = snprintf(out, out_size, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < out_size;
}

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *grown = realloc(data, cap);
            if (grown == NULL) {
                rc = -1;
                break;
            }
            data = grown;
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f))
        rc = -1;
    fclose(f);
    if (rc == 0)
        LLVMFuzzerTestOneInput(data, len);
    free(data);
    return rc;
}

/* Replays every regular file directly in dir; returns how many, or -1. */
static long replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        perror(dir);
        return -1;
    }
    long n = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char path[4096];
        if (!join_path(path, sizeof path, dir, entry->d_name) || replay_file(path) != 0) {
            n = -1;
            break;
        }
        n++;
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    char default_dir[4096];
    const char *dirs[64];
    int n_dirs = 0;
    for (int i = 1; i < argc && n_dirs < 64; i++)
        dirs[n_dirs++] = argv[i];
    if (n_dirs == 0) {
        const char *src = getenv("OUTPOST_SOURCE_DIR");
        if (!join_path(default_dir, sizeof default_dir, src != NULL ? src : ".",
                       "tests/fuzz/corpus/proto"))
            return 1;
        dirs[n_dirs++] = default_dir;
    }
    long total = 0;
    for (int i = 0; i < n_dirs; i++) {
        long n = replay_dir(dirs[i]);
        if (n < 0)
            return 1;
        total += n;
    }
    if (total == 0) {
        fprintf(stderr, "fuzz_proto: no inputs found\n");
        return 1;
    }
    printf("fuzz_proto: replayed %ld inputs\n", total);
    return 0;
}

#endif /* OUTPOST_LIBFUZZER */
