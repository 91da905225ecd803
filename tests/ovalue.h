/*
 * outpost_value makers for tests that write through liboutpost's public API (outpost_exec):
 * views of the caller's memory, as the API takes them.
 */
#ifndef OUTPOST_TESTS_OVALUE_H
#define OUTPOST_TESTS_OVALUE_H

#include <stdint.h>
#include <string.h>

#include <outpost.h>

static inline outpost_value ov_text(const char *s)
{
    outpost_value v = {.type = OUTPOST_VALUE_TEXT};
    v.u.b.p = (const uint8_t *)s;
    v.u.b.n = (uint32_t)strlen(s);
    return v;
}

static inline outpost_value ov_blob(const void *p, uint32_t n)
{
    outpost_value v = {.type = OUTPOST_VALUE_BLOB};
    v.u.b.p = p;
    v.u.b.n = n;
    return v;
}

static inline outpost_value ov_int(int64_t i)
{
    outpost_value v = {.type = OUTPOST_VALUE_INT};
    v.u.i = i;
    return v;
}

static inline outpost_value ov_null(void)
{
    outpost_value v = {.type = OUTPOST_VALUE_NULL};
    return v;
}

#endif
