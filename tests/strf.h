/*
 * strf: a printf-made string on the heap, as long as it needs to be.
 *
 * Paths of the checkout and of the build reach tests as compile-time literals (OUTPOSTD_PATH,
 * OUTPOST_ADMIN_PATH, ...) or environment variables (OUTPOST_SOURCE_DIR), and a checkout can
 * live at any depth: format them with strf, never into a fixed-size buffer (a long path would
 * be cut, or make -O2's format checks fail the build). scripts/longpath-build.sh checks this.
 */
#ifndef OUTPOST_TESTS_STRF_H
#define OUTPOST_TESTS_STRF_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static inline char *vstrf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Returns a malloc'd string (free it); aborts the test program when memory runs out. */
static inline char *vstrf(const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s == NULL)
        abort();
    vsnprintf(s, (size_t)n + 1, fmt, again);
    va_end(again);
    return s;
}

static inline char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline char *strf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vstrf(fmt, ap);
    va_end(ap);
    return s;
}

/* Runs a shell command made like printf; returns system()'s status. */
static inline int systemf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline int systemf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = vstrf(fmt, ap);
    va_end(ap);
    int status = system(cmd);
    free(cmd);
    return status;
}

#endif
