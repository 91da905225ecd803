/*
 * Reading `column IN (...)` lists out of a CREATE TABLE statement's CHECK constraints, so that a
 * form's choice list can be held to what the database will accept. SQLite's tokens
 * (sql_token.h) are enough: the statement has already been accepted by SQLite itself, and
 * anything but a plain list of literals after the column (a subquery, an expression) is
 * treated as no list.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "forms.h"
#include "sql_token.h"
#include "store.h"

/* A string literal's value: its body with '' read as '. */
static json_t *string_value(const sql_token *tk)
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
static int literal_list(const sql_token *toks, size_t n_toks, size_t at, json_t **out_values)
{
    json_t *values = json_array();
    if (values == NULL)
        return STORE_ENOMEM;
    if (at >= n_toks || !sql_token_is_punct(&toks[at], '('))
        goto not_a_list;
    for (at++; at < n_toks; at++) {
        const sql_token *tk = &toks[at];
        bool negative = sql_token_is_punct(tk, '-') && at + 1 < n_toks;
        if (negative)
            tk = &toks[++at];
        json_t *v = NULL;
        if (tk->kind == SQL_TK_STRING && !negative) {
            if ((v = string_value(tk)) == NULL)
                goto no_memory;
        } else if (tk->kind == SQL_TK_NUMBER) {
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
        } else if (!sql_token_is_word(tk, "NULL") || negative) {
            goto not_a_list;
        }
        if (v != NULL && json_array_append_new(values, v) != 0)
            goto no_memory;
        if (at + 1 >= n_toks)
            goto not_a_list;
        at++;
        if (sql_token_is_punct(&toks[at], ')')) {
            *out_values = values;
            return 1;
        }
        if (!sql_token_is_punct(&toks[at], ','))
            goto not_a_list;
    }
not_a_list:
    json_decref(values);
    return 0;
no_memory:
    json_decref(values);
    return STORE_ENOMEM;
}

/* The index of the first `column WORD` inside a CHECK ( ... ) at or after `from`, the index
 * of WORD; n_toks when there is none. */
static size_t find_in_check(const sql_token *toks, size_t n_toks, size_t from, const char *column,
                            const char *word)
{
    /* depth counts parentheses, check_depth is where the CHECK opened. */
    int depth = 0, check_depth = -1;
    for (size_t i = 0; i < n_toks; i++) {
        if (sql_token_is_punct(&toks[i], '(')) {
            depth++;
            if (i > 0 && sql_token_is_word(&toks[i - 1], "CHECK") && check_depth < 0)
                check_depth = depth;
        } else if (sql_token_is_punct(&toks[i], ')')) {
            if (depth == check_depth)
                check_depth = -1;
            depth--;
        } else if (i >= from && check_depth > 0 && sql_token_is_word(&toks[i], word) && i > 0 &&
                   sql_token_names(&toks[i - 1], column)) {
            return i;
        }
    }
    return n_toks;
}

int forms_check_in_list(const char *create_sql, const char *column, json_t **out_values)
{
    *out_values = NULL;
    sql_token *toks = NULL;
    size_t n_toks = 0;
    int out = sql_tokenize(create_sql, &toks, &n_toks);
    for (size_t i = 0; out == 0 && (i = find_in_check(toks, n_toks, i, column, "IN")) < n_toks;
         i++)
        out = literal_list(toks, n_toks, i + 1, out_values);
    free(toks);
    return out;
}

/* An integer literal at toks[*at] (with a leading '-'), advancing *at past it. */
static bool integer_at(const sql_token *toks, size_t n_toks, size_t *at, long long *out)
{
    bool negative = *at < n_toks && sql_token_is_punct(&toks[*at], '-');
    if (negative)
        ++*at;
    if (*at >= n_toks || toks[*at].kind != SQL_TK_NUMBER || toks[*at].n >= 24)
        return false;
    char digits[24], *end = NULL;
    memcpy(digits, toks[*at].s, toks[*at].n);
    digits[toks[*at].n] = '\0';
    long long n = strtoll(digits, &end, 10);
    if (*end != '\0')
        return false;
    *out = negative ? -n : n;
    ++*at;
    return true;
}

int forms_check_between(const char *create_sql, const char *column, long long *out_low,
                        long long *out_high)
{
    sql_token *toks = NULL;
    size_t n_toks = 0;
    int out = sql_tokenize(create_sql, &toks, &n_toks);
    for (size_t i = 0; out == 0 && (i = find_in_check(toks, n_toks, i, column, "BETWEEN")) <
                                       n_toks;
         i++) {
        size_t at = i + 1;
        long long low, high;
        if (integer_at(toks, n_toks, &at, &low) && at < n_toks && sql_token_is_word(&toks[at], "AND") &&
            (++at, integer_at(toks, n_toks, &at, &high))) {
            *out_low = low;
            *out_high = high;
            out = 1;
        }
    }
    free(toks);
    return out;
}
