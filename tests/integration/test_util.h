/*
 * Small helpers every integration test and the benchmarks built on the daemon fixture share,
 * so that each exists once: sleeping, reading a whole file, a clock, and value builders.
 */
#ifndef OUTPOST_TEST_UTIL_H
#define OUTPOST_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "outpost/proto.h"

/* Sleeps ms milliseconds (nanosleep). */
void test_sleep_ms(long ms);

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t test_now_ms(void);

/* The whole file at path, NUL-terminated, in memory the caller frees; its length (without the
 * NUL) in *out_len when out_len is not NULL. NULL when it cannot be read. */
char *test_read_file(const char *path, size_t *out_len);

/* Runs argv (argv[0] a path) with stdin from /dev/null, stdout and stderr together into
 * out[0..out_size), NUL-terminated. Returns the exit status, or -1 when the program did not
 * exit normally or could not be started. */
int test_run(const char *const argv[], char *out, size_t out_size);

/* A TEXT value pointing at s (which must outlive it). */
proto_value test_text_value(const char *s);

/* A NULL value. */
proto_value test_null_value(void);

#endif /* OUTPOST_TEST_UTIL_H */
