/*
 * SQLite's tokens over a statement SQLite has already accepted (a schema's CREATE TABLE): quoted
 * identifiers, '' in strings, comments skipped. For reading what SQLite's own pragmas do not
 * tell (a CHECK's IN list, which clauses a column definition carries).
 */
#ifndef OUTPOST_SQL_TOKEN_H
#define OUTPOST_SQL_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { SQL_TK_IDENT, SQL_TK_STRING, SQL_TK_NUMBER, SQL_TK_PUNCT } sql_tk_kind;

typedef struct sql_token {
    sql_tk_kind kind;
    const char *s; /* identifier or string body without its quotes, number digits, punctuation */
    size_t n;
    char quote; /* the quote character of a quoted identifier or string, 0 otherwise */
} sql_token;

/* The tokens of sql into *out_toks (free() them); STORE_ENOMEM or 0. They point into sql. */
int sql_tokenize(const char *sql, sql_token **out_toks, size_t *out_n);
/* An unquoted word, compared without case (a keyword). */
bool sql_token_is_word(const sql_token *tk, const char *word);
bool sql_token_is_punct(const sql_token *tk, char c);
/* An identifier, quoted or not, naming name (without case). */
bool sql_token_names(const sql_token *tk, const char *name);

#endif /* OUTPOST_SQL_TOKEN_H */
