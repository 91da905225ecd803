/* A small recursive-descent JSON syntax check that remembers where it stopped. */
#include "json_where.h"

#include <string.h>

enum { MAX_DEPTH = 256 };

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Each reader returns the byte after the value, or sets *bad to where it stopped and
 * returns NULL. */
static const char *value(const char *p, int depth, const char **bad);

static const char *string(const char *p, const char **bad)
{
    for (p++; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20) {
            *bad = p;
            return NULL;
        }
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!is_hex(p[i])) {
                        *bad = p + i;
                        return NULL;
                    }
                p += 4;
            } else if (strchr("\"\\/bfnrt", *p) == NULL || *p == 0) {
                *bad = p;
                return NULL;
            }
        }
    }
    return p + 1;
}

static const char *number(const char *p, const char **bad)
{
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (is_digit(*p))
        while (is_digit(*p))
            p++;
    else {
        *bad = p;
        return NULL;
    }
    if (*p == '.') {
        if (!is_digit(*++p)) {
            *bad = p;
            return NULL;
        }
        while (is_digit(*p))
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!is_digit(*p)) {
            *bad = p;
            return NULL;
        }
        while (is_digit(*p))
            p++;
    }
    return p;
}

/* An object ({...}, close '}') or array ([...], close ']'). */
static const char *container(const char *p, int depth, const char **bad)
{
    char close = *p == '{' ? '}' : ']';
    p = skip_space(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (close == '}') {
            if (*p != '"') {
                *bad = p;
                return NULL;
            }
            if ((p = string(p, bad)) == NULL)
                return NULL;
            p = skip_space(p);
            if (*p != ':') {
                *bad = p;
                return NULL;
            }
            p = skip_space(p + 1);
        }
        if ((p = value(p, depth + 1, bad)) == NULL)
            return NULL;
        p = skip_space(p);
        if (*p == close)
            return p + 1;
        if (*p != ',') {
            *bad = p;
            return NULL;
        }
        p = skip_space(p + 1);
    }
}

static const char *value(const char *p, int depth, const char **bad)
{
    if (depth > MAX_DEPTH) {
        *bad = p;
        return NULL;
    }
    if (*p == '{' || *p == '[')
        return container(p, depth, bad);
    if (*p == '"')
        return string(p, bad);
    if (*p == '-' || is_digit(*p))
        return number(p, bad);
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++)
        if (strncmp(p, words[i], strlen(words[i])) == 0)
            return p + strlen(words[i]);
    *bad = p;
    return NULL;
}

bool json_where(const char *text, int *out_line, int *out_column)
{
    const char *bad = NULL;
    const char *end = value(skip_space(text), 0, &bad);
    if (end != NULL) {
        end = skip_space(end);
        if (*end == 0)
            return true;
        bad = end;
    }
    int line = 1, column = 1;
    for (const char *p = text; p < bad; p++) {
        if (*p == '\n') {
            line++;
            column = 1;
        } else {
            column++;
        }
    }
    *out_line = line;
    *out_column = column;
    return false;
}
