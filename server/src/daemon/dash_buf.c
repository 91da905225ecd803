#include "dash_buf.h"
#include "display_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dash_buf_free(dash_buf *b)
{
    if (!b)
        return;
    free(b->data);
    memset(b, 0, sizeof *b);
}

static bool reserve(dash_buf *b, size_t extra)
{
    size_t want, cap;
    char *grown;

    if (b->failed)
        return false;
    if (extra > DASH_BUF_MAX || b->len + extra + 1 > DASH_BUF_MAX) {
        b->failed = true;
        return false;
    }
    want = b->len + extra + 1;
    if (want <= b->cap)
        return true;
    cap = b->cap ? b->cap : 1024;
    while (cap < want)
        cap *= 2;
    grown = realloc(b->data, cap);
    if (!grown) {
        b->failed = true;
        return false;
    }
    b->data = grown;
    b->cap = cap;
    return true;
}

void dash_buf_put(dash_buf *b, const char *data, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
}

void dash_buf_puts(dash_buf *b, const char *s)
{
    dash_buf_put(b, s, strlen(s));
}

void dash_buf_printf(dash_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        dash_buf_put(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void dash_buf_json_str(dash_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    if (!s) {
        dash_buf_puts(b, "null");
        return;
    }
    dash_buf_put(b, "\"", 1);
    while (*p) {
        size_t n = utf8_seq_len(p);
        if (n == 0) {
            dash_buf_puts(b, "\\ufffd");
            p++;
        } else if (n == 1) {
            unsigned char c = *p++;
            if (c == '"' || c == '\\') {
                char esc[2] = {'\\', (char)c};
                dash_buf_put(b, esc, 2);
            } else if (c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f) {
                dash_buf_printf(b, "\\u%04x", c);
            } else {
                dash_buf_put(b, (const char *)&c, 1);
            }
        } else if (n == 3 && p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
            dash_buf_printf(b, "\\u%04x", p[2] == 0xa8 ? 0x2028 : 0x2029);
            p += 3;
        } else {
            dash_buf_put(b, (const char *)p, n);
            p += n;
        }
    }
    dash_buf_put(b, "\"", 1);
}

void dash_buf_csv_field(dash_buf *b, const char *s)
{
    bool quote, formula;

    if (!s)
        return;
    formula = s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' ||
              s[0] == '\r';
    quote = strpbrk(s, ",\"\r\n") != NULL;
    if (quote)
        dash_buf_put(b, "\"", 1);
    if (formula)
        dash_buf_put(b, "'", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            dash_buf_put(b, "\"\"", 2);
        else
            dash_buf_put(b, p, 1);
    }
    if (quote)
        dash_buf_put(b, "\"", 1);
}
