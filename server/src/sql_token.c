#include "sql_token.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store.h"

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

/* Reads one sql_token at p; returns where the next starts, or NULL at the end. */
static const char *next_token(const char *p, sql_token *tk)
{
    p = skip_space(p);
    if (*p == '\0')
        return NULL;
    memset(tk, 0, sizeof *tk);
    if (*p == '\'' || *p == '"' || *p == '`' || *p == '[') {
        char close = *p == '[' ? ']' : *p;
        tk->kind = *p == '\'' ? SQL_TK_STRING : SQL_TK_IDENT;
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
        tk->kind = SQL_TK_NUMBER;
        while (isalnum((unsigned char)*p) || *p == '.')
            p++;
    } else if (isalpha((unsigned char)*p) || *p == '_' || (unsigned char)*p >= 0x80) {
        tk->kind = SQL_TK_IDENT;
        while (isalnum((unsigned char)*p) || *p == '_' || *p == '$' || (unsigned char)*p >= 0x80)
            p++;
    } else {
        tk->kind = SQL_TK_PUNCT;
        p++;
    }
    tk->n = (size_t)(p - tk->s);
    return p;
}

bool sql_token_is_word(const sql_token *tk, const char *word)
{
    return tk->kind == SQL_TK_IDENT && tk->quote == 0 && tk->n == strlen(word) &&
           strncasecmp(tk->s, word, tk->n) == 0;
}

bool sql_token_is_punct(const sql_token *tk, char c)
{
    return tk->kind == SQL_TK_PUNCT && tk->s[0] == c;
}

bool sql_token_names(const sql_token *tk, const char *name)
{
    return tk->kind == SQL_TK_IDENT && tk->n == strlen(name) &&
           strncasecmp(tk->s, name, tk->n) == 0;
}

int sql_tokenize(const char *sql, sql_token **out_toks, size_t *out_n)
{
    size_t n_toks = 0, cap = 64;
    sql_token *toks = malloc(cap * sizeof *toks);
    if (toks == NULL)
        return STORE_ENOMEM;
    sql_token tk;
    for (const char *p = sql; p != NULL && (p = next_token(p, &tk)) != NULL;) {
        if (n_toks == cap) {
            sql_token *grown = realloc(toks, 2 * cap * sizeof *toks);
            if (grown == NULL) {
                free(toks);
                return STORE_ENOMEM;
            }
            toks = grown;
            cap *= 2;
        }
        toks[n_toks++] = tk;
    }
    *out_toks = toks;
    *out_n = n_toks;
    return 0;
}

