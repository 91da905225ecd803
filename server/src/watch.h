/*
 * Watch rules ("Needs attention"): the duties a program watches for, shipped in the schema
 * package as watch.json (docs/watch.md). This module reads the JSON (jansson), checks each
 * rule's two SQL expressions against the tables of a SQLite database, and prepares the
 * statements that evaluate a rule for one team at one time. It knows nothing of the store: the
 * central store (store_watch.c) and outpost-admin use it alike.
 *
 * Safety: a rule's expressions are SQL text written by the program's administrator. They are
 * never pasted into a statement unchecked: each is lexed first (balanced parentheses, no
 * statement separator, no comment, no subquery keyword, no 'now'), then prepared under an
 * authorizer that allows one SELECT, reads of the rule's own table and a list of pure
 * functions, and nothing else. Values (the team, the time, the rule's parameters) are bound.
 */
#ifndef OUTPOST_WATCH_H
#define OUTPOST_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* Longest expression text accepted, in bytes. */
#define WATCH_EXPR_MAX 2000
#define WATCH_TIME_COLS_MAX 8 /* columns a rule may read as times */

typedef struct watch_param {
    char *name;  /* without the colon */
    int type;    /* SQLITE_INTEGER, SQLITE_FLOAT or SQLITE_TEXT */
    int64_t i;
    double d;
    char *s;
} watch_param;

typedef struct watch_rule {
    char *id;          /* [a-z0-9_]{1,63} */
    char *table;
    char *severity;    /* high, medium or low */
    char *title_json;  /* {"en": "...", "es": "..."} as compact JSON */
    char *title_en;    /* the English title, for logs and messages */
    char *when;        /* the duty is unmet while this is true */
    char *due;         /* when the duty falls due (a time); the item is open from then on */
    char *alias;       /* column naming the young person, or NULL */
    uint32_t n_params;
    watch_param *params;
} watch_rule;

typedef struct watch_rules {
    uint32_t n;
    watch_rule *rules;
} watch_rules;

/* Reads watch.json text. On failure returns -1 with a message in err naming the rule (by id
 * or position) and the problem; out is then empty. Free with watch_rules_free. */
int watch_rules_parse(const char *json, watch_rules *out, char *err, size_t err_size);
void watch_rules_free(watch_rules *rules); /* NULL is a no-op; the struct may be reused */

/* Checks one rule against db's tables: the table exists with a one-column primary key and the
 * scope column, the alias column exists, both expressions compile under the rules above and
 * use no parameter but :now and the rule's own. -1 with "rule ID: problem" in err. */
int watch_rule_check(sqlite3 *db, const watch_rule *rule, const char *scope_col, char *err,
                     size_t err_size);

/* What a statement prepared by watch_rule_prepare returns, one row per open item, oldest due
 * first: 0 the record's key, 1 the alias (or NULL), 2 the due time ("YYYY-MM-DD HH:MM:SS" UTC),
 * 3 NULL, or the name of a column the rule reads as a time (a date function's time argument)
 * whose value in this row is not a readable time (datetime() gives NULL, or it has no digit, as
 * 'now' has). Such a row is an item of its own, due :now, while the rule's `when` is not false:
 * a duty must never vanish because its time could not be read. */
enum { WATCH_COL_KEY, WATCH_COL_ALIAS, WATCH_COL_DUE, WATCH_COL_UNREADABLE };

/* The title of an item for an unreadable time: {"en": "Time not readable: COLUMN (TITLE)",
 * "es": ...} as compact JSON, NULL when out of memory. Free with free(). */
char *watch_unreadable_title(const watch_rule *rule, const char *column);

/* The severity of such an item. */
#define WATCH_UNREADABLE_SEVERITY "high"

/* The authorizer to put back on db after a rule's statement is prepared (a connection that has
 * its own, like a device's replica); NULL leaves none. */
typedef struct watch_restore {
    int (*auth)(void *ctx, int action, const char *a3, const char *a4, const char *db_name,
                const char *trigger);
    void *ctx;
} watch_restore;

/* The rule's open items for one team: prepared under the authorizer (err says why not). */
int watch_rule_prepare(sqlite3 *db, const watch_rule *rule, const char *scope_col,
                       const watch_restore *restore, sqlite3_stmt **out_stmt, char *err,
                       size_t err_size);

/* The rule's history for one team: rows (week starting Monday "YYYY-MM-DD", items due that
 * week, of which still open) for due times in [:since, :now]. */
int watch_rule_prepare_counts(sqlite3 *db, const watch_rule *rule, const char *scope_col,
                              sqlite3_stmt **out_stmt, char *err, size_t err_size);

/* Binds :team, :now (ms since the epoch, bound as UTC text), :since (the same, may be 0) and
 * the rule's parameters. Returns a SQLite result code. */
int watch_bind(sqlite3_stmt *stmt, const watch_rule *rule, const char *team, uint64_t now_ms,
               uint64_t since_ms);

/* Formats ms since the epoch as "YYYY-MM-DD HH:MM:SS" (UTC), the form SQLite's datetime()
 * gives, so that times compare as text. */
void watch_format_time(uint64_t ms, char out[20]);

#endif /* OUTPOST_WATCH_H */
