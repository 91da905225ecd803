/*
 * A growable byte buffer for dashboard replies, with JSON and CSV writers that escape every
 * byte they are given. Text from the store is untrusted here: it may hold quotes, control
 * characters, "</script>", or a formula for a spreadsheet.
 */
#ifndef OUTPOSTD_DASH_BUF_H
#define OUTPOSTD_DASH_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Replies larger than this fail (the client narrows its filters). */
#define DASH_BUF_MAX (16u * 1024u * 1024u)

typedef struct dash_buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed; /* out of memory or over DASH_BUF_MAX: every later append is ignored */
} dash_buf;

void dash_buf_free(dash_buf *b); /* the buffer is empty and reusable; NULL is a no-op */
void dash_buf_put(dash_buf *b, const char *data, size_t n);
void dash_buf_puts(dash_buf *b, const char *s);
void dash_buf_printf(dash_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* A JSON string literal, quotes included; NULL writes null. Escapes ", \, control characters,
 * <, >, & and U+2028/9, and replaces invalid UTF-8 with U+FFFD. */
void dash_buf_json_str(dash_buf *b, const char *s);

/* One CSV field (RFC 4180): quoted when it holds a comma, quote or line break; a field that
 * starts with = + - @ or a tab/CR gets a leading ' so spreadsheets do not run it as a formula.
 * NULL writes an empty field. */
void dash_buf_csv_field(dash_buf *b, const char *s);

#endif /* OUTPOSTD_DASH_BUF_H */
