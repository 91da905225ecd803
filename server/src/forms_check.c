/*
 * Reading `column IN (...)` lists out of a CREATE TABLE statement's CHECK constraints, so that a
 * form's choice list can be held to what the database will accept. A small tokenizer over
 * SQLite's lexical rules (quoted identifiers, '' in strings, comments) is enough: the statement
 * has already been accepted by SQLite itself, and anything but a plain list of literals after
 * the column (a subquery, an expression) is treated as no list.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "forms.h"
#include "store.h"

typedef enum { TK_IDENT, TK_STRING, TK_NUMBER, TK_PUNCT } tk_kind;

typedef struct token {
    tk_kind kind;
    const char *s; /* identifier or string body without its quotes, number digits, punctuation */
    size_t n;
    char quote; /* the quote character of a quoted identifier or string, 0 otherwise */
} token;

static const char *skip_space(const char *p)
{
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (p[0] == '-' && p[1] == '-') {
            while (*p && *p != '\n')
                p++;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            p = end ? end + 2 : p + strlen(p);
        } else {
            return p;
        }
    }
}

/* Reads one token at p; returns where the next starts, or NULL at the end. */
static const char *next_token(const char *p, token *tk)
{
    p = skip_space(p);
    if (*p == '\0')
        return NULL;
    memset(tk, 0, sizeof *tk);
    if (*p == '\'' || *p == '"' || *p == '`' || *p == '[') {
        char close = *p == '[' ? ']' : *p;
        tk->kind = *p == '\'' ? TK_STRING : TK_IDENT;
        tk->quote = *p;
        tk->s = ++p;
        while (*p) {
            if (*p == close && close != ']' && p[1] == close) {
                p += 2; /* '' inside a string, "" inside an identifier */
                continue;
            }
            if (*p == close)
                break;
            p++;
        }
        tk->n = (size_t)(p - tk->s);
        return *p ? p + 1 : p;
    }
    tk->s = p;
    if (isdigit((unsigned char)*p)) {
        tk->kind = TK_NUMBER;
        while (isalnum((unsigned char)*p) || *p == '.')
            p++;
    } else if (isalpha((unsigned char)*p) || *p == '_' || (unsigned char)*p >= 0x80) {
        tk->kind = TK_IDENT;
        while (isalnum((unsigned char)*p) || *p == '_' || *p == '$' || (unsigned char)*p >= 0x80)
            p++;
    } else {
        tk->kind = TK_PUNCT;
        p++;
    }
    tk->n = (size_t)(p - tk->s);
    return p;
}

static bool is_word(const token *tk, const char *word)
{
    return tk->kind == TK_IDENT && tk->quote == 0 && tk->n == strlen(word) &&
           strncasecmp(tk->s, word, tk->n) == 0;
}

static bool is_punct(const token *tk, char c)
{
    return tk->kind == TK_PUNCT && tk->s[0] == c;
}

static bool names_column(const token *tk, const char *column)
{
    return tk->kind == TK_IDENT && tk->n == strlen(column) &&
           strncasecmp(tk->s, column, tk->n) == 0;
}

/* A string literal's value: its body with '' read as '. */
static json_t *string_value(const token *tk)
{
    char *buf = malloc(tk->n + 1);
    if (buf == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < tk->n; i++) {
        buf[n++] = tk->s[i];
        if (tk->s[i] == '\'')
            i++;
    }
    json_t *v = json_stringn(buf, n);
    free(buf);
    return v;
}

/* Parses "( literal, ... )" from toks[at]; 1 with the values, 0 when it is anything else. */
static int literal_list(const token *toks, size_t n_toks, size_t at, json_t **out_values)
{
    json_t *values = json_array();
    if (values == NULL)
        return STORE_ENOMEM;
    if (at >= n_toks || !is_punct(&toks[at], '('))
        goto not_a_list;
    for (at++; at < n_toks; at++) {
        const token *tk = &toks[at];
        bool negative = is_punct(tk, '-') && at + 1 < n_toks;
        if (negative)
            tk = &toks[++at];
        json_t *v = NULL;
        if (tk->kind == TK_STRING && !negative) {
            if ((v = string_value(tk)) == NULL)
                goto no_memory;
        } else if (tk->kind == TK_NUMBER) {
            char digits[24];
            if (tk->n >= sizeof digits)
                goto not_a_list;
            memcpy(digits, tk->s, tk->n);
            digits[tk->n] = '\0';
            char *end = NULL;
            long long n = strtoll(digits, &end, 10);
            if (*end != '\0')
                goto not_a_list; /* a real or hex number: no form offers those */
            if ((v = json_integer(negative ? -n : n)) == NULL)
                goto no_memory;
        } else if (!is_word(tk, "NULL") || negative) {
            goto not_a_list;
        }
        if (v != NULL && json_array_append_new(values, v) != 0)
            goto no_memory;
        if (at + 1 >= n_toks)
            goto not_a_list;
        at++;
        if (is_punct(&toks[at], ')')) {
            *out_values = values;
            return 1;
        }
        if (!is_punct(&toks[at], ','))
            goto not_a_list;
    }
not_a_list:
    json_decref(values);
    return 0;
no_memory:
    json_decref(values);
    return STORE_ENOMEM;
}

int forms_check_in_list(const char *create_sql, const char *column, json_t **out_values)
{
    *out_values = NULL;
    size_t n_toks = 0, cap = 64;
    token *toks = malloc(cap * sizeof *toks);
    if (toks == NULL)
        return STORE_ENOMEM;
    token tk;
    for (const char *p = create_sql; p != NULL && (p = next_token(p, &tk)) != NULL;) {
        if (n_toks == cap) {
            token *grown = realloc(toks, 2 * cap * sizeof *toks);
            if (grown == NULL) {
                free(toks);
                return STORE_ENOMEM;
            }
            toks = grown;
            cap *= 2;
        }
        toks[n_toks++] = tk;
    }
    /* Inside CHECK ( ... ): depth counts parentheses, check_depth is where the CHECK opened. */
    int depth = 0, check_depth = -1, out = 0;
    for (size_t i = 0; i < n_toks && out == 0; i++) {
        if (is_punct(&toks[i], '(')) {
            depth++;
            if (i > 0 && is_word(&toks[i - 1], "CHECK") && check_depth < 0)
                check_depth = depth;
        } else if (is_punct(&toks[i], ')')) {
            if (depth == check_depth)
                check_depth = -1;
            depth--;
        } else if (check_depth > 0 && is_word(&toks[i], "IN") && i > 0 &&
                   names_column(&toks[i - 1], column)) {
            out = literal_list(toks, n_toks, i + 1, out_values);
        }
    }
    free(toks);
    return out;
}
