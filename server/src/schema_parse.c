#include "schema_parse.h"

#include <ctype.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sql_token.h"
#include "store.h"

const char *schema_policy_name(proto_policy policy)
{
    switch (policy) {
    case PROTO_POLICY_SERVER_WINS:
        return "server-wins";
    case PROTO_POLICY_DEVICE_WINS:
        return "device-wins";
    case PROTO_POLICY_HLC:
    default:
        return "hlc";
    }
}

/* The schema file may only create tables and indexes. Triggers, views, ATTACH and PRAGMA are
 * refused: a trigger would run inside every merge, ATTACH could write files. */
static int schema_authorizer(void *user_data, int action, const char *arg1, const char *arg2,
                             const char *db_name, const char *trigger)
{
    (void)user_data;
    (void)arg2;
    (void)db_name;
    (void)trigger;
    switch (action) {
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_INDEX:
    case SQLITE_REINDEX: /* CREATE INDEX fills the new index */
    case SQLITE_READ:
    case SQLITE_FUNCTION:
        return SQLITE_OK;
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
        /* SQLite reports its own bookkeeping in sqlite_master while creating tables. */
        if (arg1 != NULL &&
            (strcmp(arg1, "sqlite_master") == 0 || strcmp(arg1, "sqlite_schema") == 0))
            return SQLITE_OK;
        return SQLITE_DENY;
    default:
        return SQLITE_DENY;
    }
}

static bool has_prefix_nocase(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* SQLite's affinity rule 1: a declared type containing "INT" has INTEGER affinity. */
static bool is_integer_affinity(const char *type)
{
    for (const char *p = type; *p; p++)
        if (strncasecmp(p, "INT", 3) == 0)
            return true;
    return false;
}

/* Whether the n bytes at p are one of words (NULL-terminated), ignoring case. */
static bool word_in(const char *p, size_t n, const char *const *words)
{
    for (size_t k = 0; words[k] != NULL; k++)
        if (strlen(words[k]) == n && strncasecmp(words[k], p, n) == 0)
            return true;
    return false;
}

/* In a declared type of several words, the word where a second column seems to begin, copied
 * into word (empty when none): SQLite takes "name TEXT\n age INTEGER" without its comma as one
 * column `name` of type "TEXT age INTEGER", which loses the column `age` for good (upgrade
 * cannot split it). Suspect are a word that is no type word, and a second type of its own
 * ("note TEXT\n time INTEGER"); SQL's types of several words are a type with modifiers
 * (DOUBLE PRECISION, UNSIGNED BIG INT, NATIONAL CHARACTER VARYING, LONG RAW) and a time zone
 * clause after WITH or WITHOUT. A size in parentheses ends the words read. */
static void type_odd_word(const char *type, char *word, size_t word_size)
{
    static const char *const types[] = {
        "INT",     "INTEGER",  "TINYINT",  "SMALLINT",  "MEDIUMINT", "BIGINT",  "INT2",
        "INT4",    "INT8",     "CHARACTER", "CHAR",     "VARCHAR",   "NCHAR",   "NVARCHAR",
        "TEXT",    "CLOB",     "BLOB",     "REAL",      "DOUBLE",    "FLOAT",   "NUMERIC",
        "DECIMAL", "BOOLEAN",  "BOOL",     "DATE",      "DATETIME",  "TIMESTAMP", "TIME",
        "BINARY",  "VARBINARY", "BIT",     "RAW",       "UUID",      "JSON",    NULL};
    static const char *const modifiers[] = {"UNSIGNED", "SIGNED",   "BIG",   "LONG",
                                            "VARYING",  "NATIVE",   "NATIONAL", "PRECISION",
                                            "LARGE",    "OBJECT",   NULL};
    static const char *const zone_clause[] = {"WITH", "WITHOUT", NULL};
    uint32_t n_words = 0, n_types = 0;
    word[0] = '\0';
    for (const char *p = type; *p && *p != '(';) {
        if (isspace((unsigned char)*p)) {
            p++;
            continue;
        }
        size_t n = 0;
        while (p[n] && p[n] != '(' && !isspace((unsigned char)p[n]))
            n++;
        if (n_words++ > 0 && word_in(p, n, zone_clause))
            break;
        bool is_type = word_in(p, n, types);
        n_types += is_type;
        bool odd = is_type ? n_types == 2 : !word_in(p, n, modifiers);
        if (odd && word[0] == '\0')
            snprintf(word, word_size, "%.*s", (int)n, p);
        p += n;
    }
    if (n_words < 2)
        word[0] = '\0';
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = 0;
    return s;
}

/* Moves an arena-held array of n items into a new block with room for cap items (the old
 * block stays in the arena until it is freed). NULL when out of memory. */
static void *arena_array_grow(store_arena *arena, const void *items, uint32_t n, uint32_t cap,
                              size_t item_size)
{
    void *grown = store_arena_alloc(arena, cap * item_size);
    if (grown != NULL && n > 0)
        memcpy(grown, items, n * item_size);
    return grown;
}

static int load_columns(sqlite3 *db, schema_def *def, schema_table *t, char *err, size_t err_size)
{
    sqlite3_stmt *stmt = NULL;
    int out = 0;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT name, type, \"notnull\", dflt_value, pk, hidden"
                                " FROM pragma_table_xinfo(?1) ORDER BY cid",
                                -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 1, t->name, -1, SQLITE_STATIC);
    uint32_t cap = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        if (sqlite3_column_int(stmt, 5) != 0) {
            snprintf(err, err_size, "table %s: generated or hidden columns are not supported",
                     t->name);
            out = STORE_ESCHEMA;
            goto done;
        }
        if (t->n_cols == cap) {
            uint32_t ncap = cap ? cap * 2 : 16;
            schema_col *cols =
                arena_array_grow(&def->arena, t->cols, t->n_cols, ncap, sizeof *cols);
            if (cols == NULL)
                goto nomem;
            t->cols = cols;
            cap = ncap;
        }
        schema_col *c = &t->cols[t->n_cols++];
        const char *type = (const char *)sqlite3_column_text(stmt, 1);
        const char *dflt = (const char *)sqlite3_column_text(stmt, 3);
        c->name = store_arena_strdup(&def->arena, (const char *)sqlite3_column_text(stmt, 0));
        c->type = store_arena_strdup(&def->arena, type ? type : "");
        c->notnull = sqlite3_column_int(stmt, 2) != 0;
        c->dflt = dflt ? store_arena_strdup(&def->arena, dflt) : NULL;
        c->pk_pos = (uint32_t)sqlite3_column_int(stmt, 4);
        if (c->name == NULL || c->type == NULL || (dflt != NULL && c->dflt == NULL))
            goto nomem;
    }
    if (rc != SQLITE_OK && rc != SQLITE_DONE) {
        snprintf(err, err_size, "table %s: %s", t->name, sqlite3_errmsg(db));
        out = STORE_EINVAL;
    }
    goto done;
nomem:
    snprintf(err, err_size, "out of memory");
    out = STORE_ENOMEM;
done:
    sqlite3_finalize(stmt);
    return out;
}

static int check_table(schema_table *t, char *err, size_t err_size)
{
    if (has_prefix_nocase(t->name, "_outpost_")) {
        snprintf(err, err_size, "table %s: names starting with _outpost_ are reserved", t->name);
        return STORE_ESCHEMA;
    }
    uint32_t n_pk = 0;
    for (uint32_t i = 0; i < t->n_cols; i++) {
        char odd[64];
        type_odd_word(t->cols[i].type, odd, sizeof odd);
        if (odd[0] != '\0') {
            char shown[128];
            size_t k = 0;
            for (const char *p = t->cols[i].type; *p && k + 1 < sizeof shown; p++)
                if (!isspace((unsigned char)*p))
                    shown[k++] = *p;
                else if (k > 0 && shown[k - 1] != ' ')
                    shown[k++] = ' ';
            shown[k] = '\0';
            snprintf(err, err_size,
                     "table %s, column %s: its type \"%s\" is more than a type (a comma missing "
                     "before \"%s\"?): each column needs its own definition, separated by commas",
                     t->name, t->cols[i].name, shown, odd);
            return STORE_ESCHEMA;
        }
        if (t->cols[i].pk_pos == 0)
            continue;
        n_pk++;
        if (is_integer_affinity(t->cols[i].type)) {
            snprintf(err, err_size,
                     "table %s: primary key column %s is an integer; devices create rows offline, "
                     "so synced tables need a non-integer key (a TEXT UUID)",
                     t->name, t->cols[i].name);
            return STORE_ESCHEMA;
        }
    }
    if (n_pk == 0) {
        snprintf(err, err_size,
                 "table %s has no explicit PRIMARY KEY (synced tables need a "
                 "non-integer one, for example a TEXT UUID)",
                 t->name);
        return STORE_ESCHEMA;
    }
    return 0;
}

static int read_tables(sqlite3 *db, schema_def *def, char *err, size_t err_size)
{
    sqlite3_stmt *stmt = NULL;
    int out = 0;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT type, name, sql FROM sqlite_master"
                                " WHERE sql IS NOT NULL ORDER BY rowid",
                                -1, &stmt, NULL);
    uint32_t cap_t = 0, cap_i = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        const char *type = (const char *)sqlite3_column_text(stmt, 0);
        const char *name = (const char *)sqlite3_column_text(stmt, 1);
        const char *sql = (const char *)sqlite3_column_text(stmt, 2);
        if (strcmp(type, "table") == 0) {
            if (def->n_tables == cap_t) {
                uint32_t ncap = cap_t ? cap_t * 2 : 8;
                schema_table *ts =
                    arena_array_grow(&def->arena, def->tables, def->n_tables, ncap, sizeof *ts);
                if (ts == NULL)
                    goto nomem;
                def->tables = ts;
                cap_t = ncap;
            }
            schema_table *t = &def->tables[def->n_tables++];
            memset(t, 0, sizeof *t);
            t->name = store_arena_strdup(&def->arena, name);
            t->create_sql = store_arena_strdup(&def->arena, sql);
            if (t->name == NULL || t->create_sql == NULL)
                goto nomem;
        } else if (strcmp(type, "index") == 0) {
            if (def->n_indexes == cap_i) {
                uint32_t ncap = cap_i ? cap_i * 2 : 8;
                const char **names = arena_array_grow(&def->arena, def->index_names,
                                                      def->n_indexes, ncap, sizeof *names);
                const char **sqls = arena_array_grow(&def->arena, def->index_sql, def->n_indexes,
                                                     ncap, sizeof *sqls);
                if (names == NULL || sqls == NULL)
                    goto nomem;
                def->index_names = names;
                def->index_sql = sqls;
                cap_i = ncap;
            }
            def->index_names[def->n_indexes] = store_arena_strdup(&def->arena, name);
            def->index_sql[def->n_indexes] = store_arena_strdup(&def->arena, sql);
            if (def->index_names[def->n_indexes] == NULL || def->index_sql[def->n_indexes] == NULL)
                goto nomem;
            def->n_indexes++;
        }
    }
    if (rc != SQLITE_OK && rc != SQLITE_DONE) {
        snprintf(err, err_size, "reading the schema: %s", sqlite3_errmsg(db));
        out = STORE_EINVAL;
        goto done;
    }
    for (uint32_t i = 0; i < def->n_tables && out == 0; i++) {
        out = load_columns(db, def, &def->tables[i], err, err_size);
        if (out == 0)
            out = check_table(&def->tables[i], err, err_size);
    }
    goto done;
nomem:
    snprintf(err, err_size, "out of memory");
    out = STORE_ENOMEM;
done:
    sqlite3_finalize(stmt);
    return out;
}

static schema_table *find_table(schema_def *def, const char *name)
{
    for (uint32_t i = 0; i < def->n_tables; i++)
        if (strcasecmp(def->tables[i].name, name) == 0)
            return &def->tables[i];
    return NULL;
}

static int parse_policy(schema_def *def, const char *policy_text, char *err, size_t err_size)
{
    bool *seen = calloc(def->n_tables ? def->n_tables : 1, sizeof *seen);
    char *text = strdup(policy_text);
    int out = 0;
    if (seen == NULL || text == NULL) {
        snprintf(err, err_size, "out of memory");
        out = STORE_ENOMEM;
        goto done;
    }
    unsigned line_no = 0;
    char *save_line = NULL;
    for (char *line = strtok_r(text, "\n", &save_line); line != NULL;
         line = strtok_r(NULL, "\n", &save_line)) {
        line_no++;
        char *hash = strchr(line, '#');
        if (hash != NULL)
            *hash = 0;
        line = trim(line);
        if (line[0] == 0)
            continue;
        char *save_tok = NULL;
        const char *table_name = strtok_r(line, " \t\r", &save_tok);
        schema_table *t = find_table(def, table_name);
        if (t == NULL) {
            snprintf(err, err_size, "policy line %u: table %s is not in the schema file", line_no,
                     table_name);
            out = STORE_ESCHEMA;
            goto done;
        }
        size_t t_index = (size_t)(t - def->tables);
        if (seen[t_index]) {
            snprintf(err, err_size, "policy line %u: table %s has a policy already", line_no,
                     t->name);
            out = STORE_ESCHEMA;
            goto done;
        }
        seen[t_index] = true;
        const char *scope = NULL, *author = NULL;
        t->policy = PROTO_POLICY_HLC;
        t->author_idx = SCHEMA_NO_AUTHOR;
        for (char *tok = strtok_r(NULL, " \t\r", &save_tok); tok != NULL;
             tok = strtok_r(NULL, " \t\r", &save_tok)) {
            if (strncmp(tok, "scope=", 6) == 0 && tok[6] != 0) {
                scope = tok + 6;
            } else if (strncmp(tok, "author=", 7) == 0 && tok[7] != 0) {
                author = tok + 7;
            } else if (strcmp(tok, "policy=hlc") == 0) {
                t->policy = PROTO_POLICY_HLC;
            } else if (strcmp(tok, "policy=server-wins") == 0) {
                t->policy = PROTO_POLICY_SERVER_WINS;
            } else if (strcmp(tok, "policy=device-wins") == 0) {
                t->policy = PROTO_POLICY_DEVICE_WINS;
            } else {
                snprintf(err, err_size,
                         "policy line %u: unknown setting '%.40s' (expected scope=COLUMN, "
                         "policy=hlc|server-wins|device-wins and author=COLUMN)",
                         line_no, tok);
                out = STORE_ESCHEMA;
                goto done;
            }
        }
        if (scope == NULL) {
            snprintf(err, err_size, "policy line %u: table %s needs scope=COLUMN", line_no,
                     t->name);
            out = STORE_ESCHEMA;
            goto done;
        }
        bool found = false;
        for (uint32_t c = 0; c < t->n_cols; c++) {
            if (strcasecmp(t->cols[c].name, scope) == 0) {
                t->scope_idx = c;
                found = true;
            }
        }
        if (!found) {
            snprintf(err, err_size, "policy line %u: table %s has no scope column %.64s", line_no,
                     t->name, scope);
            out = STORE_ESCHEMA;
            goto done;
        }
        for (uint32_t c = 0; author != NULL && c < t->n_cols; c++)
            if (strcasecmp(t->cols[c].name, author) == 0)
                t->author_idx = c;
        if (author != NULL && (t->author_idx == SCHEMA_NO_AUTHOR || t->author_idx == t->scope_idx ||
                               t->cols[t->author_idx].pk_pos != 0)) {
            snprintf(err, err_size,
                     "policy line %u: table %s: author=%.64s must name a column that is neither "
                     "the scope column nor in the primary key",
                     line_no, t->name, author);
            out = STORE_ESCHEMA;
            goto done;
        }
    }
    for (uint32_t i = 0; i < def->n_tables; i++) {
        if (!seen[i]) {
            snprintf(err, err_size, "table %s has no policy line (TABLE scope=COLUMN ...)",
                     def->tables[i].name);
            out = STORE_ESCHEMA;
            goto done;
        }
    }
done:
    free(seen);
    free(text);
    return out;
}

/* The top-level part of a CREATE TABLE's column list that toks[at] is in: *out_first..*out_end
 * are its tokens (empty for ",," or ",)"); a ',' or the closing ')' at the list's level counts
 * as the end of the part before it. False when toks[at] is not inside the column list. */
static bool list_part_at(const sql_token *toks, size_t n, size_t at, size_t *out_first,
                         size_t *out_end)
{
    size_t open = 0;
    while (open < n && !sql_token_is_punct(&toks[open], '('))
        open++;
    if (open >= n || at <= open)
        return false;
    int depth = 0;
    size_t first = open + 1;
    for (size_t i = open + 1; i < n; i++) {
        bool sep = depth == 0 &&
                   (sql_token_is_punct(&toks[i], ',') || sql_token_is_punct(&toks[i], ')'));
        if (sep && i >= at) {
            *out_first = first;
            *out_end = i;
            return true;
        }
        if (sep && sql_token_is_punct(&toks[i], ')'))
            return false; /* at is past the list */
        if (sep)
            first = i + 1;
        depth += sql_token_is_punct(&toks[i], '(') - sql_token_is_punct(&toks[i], ')');
    }
    *out_first = first;
    *out_end = n;
    return at >= first;
}

/* A table constraint starts with one of these words, a column definition with its name. */
static bool is_table_constraint(const sql_token *tk)
{
    static const char *const words[] = {"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN",
                                        NULL};
    for (size_t i = 0; words[i] != NULL; i++)
        if (sql_token_is_word(tk, words[i]))
            return true;
    return false;
}

/* n bytes at from as text for a one-line message, into out: whitespace runs as one space,
 * other control bytes as '?', at most max bytes (then "..."). */
static void shown(const char *from, size_t n, size_t max, char *out, size_t out_size)
{
    size_t k = 0;
    bool space = false;
    for (size_t i = 0; i < n && k + 4 < out_size; i++) {
        unsigned char ch = (unsigned char)from[i];
        if (isspace(ch)) {
            space = true;
            continue;
        }
        if (k >= max) {
            memcpy(out + k, "...", 3);
            k += 3;
            break;
        }
        if (space && k > 0)
            out[k++] = ' ';
        space = false;
        out[k++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    out[k] = '\0';
}

/* toks[first..end) as the text they came from (quotes included), cut to 60 bytes. */
static void part_text(const sql_token *toks, size_t first, size_t end, char *out,
                      size_t out_size)
{
    const char *from = toks[first].s - (toks[first].quote ? 1 : 0);
    const sql_token *last = &toks[end - 1];
    const char *to = last->s + last->n + (last->quote ? 1 : 0);
    shown(from, (size_t)(to - from), 60, out, out_size);
}

/* "column NAME" or "a table constraint (TEXT)" for the part toks[first..end) (not empty). */
static void describe_part(const sql_token *toks, size_t first, size_t end, char *out,
                          size_t out_size)
{
    char text[80];
    if (is_table_constraint(&toks[first])) {
        part_text(toks, first, end, text, sizeof text);
        snprintf(out, out_size, "a table constraint (%s)", text);
    } else {
        shown(toks[first].s, toks[first].n, 64, text, sizeof text);
        snprintf(out, out_size, "column %s", text);
    }
}

static bool same_token(const sql_token *a, const sql_token *b)
{
    if (a->kind != b->kind || a->n != b->n)
        return false;
    return a->kind == SQL_TK_IDENT ? strncasecmp(a->s, b->s, a->n) == 0
                                   : memcmp(a->s, b->s, a->n) == 0;
}

/* Index past the token group at toks[at]: a parenthesised group whole, else one token. */
static size_t skip_group(const sql_token *toks, size_t n, size_t at)
{
    if (!sql_token_is_punct(&toks[at], '('))
        return at + 1;
    int depth = 0;
    for (; at < n; at++) {
        depth += sql_token_is_punct(&toks[at], '(') - sql_token_is_punct(&toks[at], ')');
        if (depth == 0)
            return at + 1;
    }
    return n;
}

static bool starts_constraint(const sql_token *tk)
{
    static const char *const words[] = {"CONSTRAINT", "PRIMARY", "NOT",        "NULL",
                                        "UNIQUE",     "CHECK",   "DEFAULT",    "COLLATE",
                                        "REFERENCES", "GENERATED", "AS",       NULL};
    for (size_t i = 0; words[i] != NULL; i++)
        if (sql_token_is_word(tk, words[i]))
            return true;
    return false;
}

/* One appended column definition, toks[0..n): its name, type, then NOT NULL, NULL and
 * DEFAULT only. */
static int check_added_column(const sql_token *toks, size_t n, const char *table,
                              const char *column, char *err, size_t err_size)
{
    if (n == 0 || !sql_token_names(&toks[0], column)) {
        snprintf(err, err_size,
                 "table %s: the CREATE TABLE changes more than appending column %s "
                 "(upgrades may only append column definitions)",
                 table, column);
        return STORE_ESCHEMA;
    }
    size_t at = 1;
    while (at < n && !starts_constraint(&toks[at]))
        at = skip_group(toks, n, at);
    while (at < n) {
        if (sql_token_is_word(&toks[at], "NOT") && at + 1 < n &&
            sql_token_is_word(&toks[at + 1], "NULL")) {
            at += 2;
        } else if (sql_token_is_word(&toks[at], "NULL")) {
            at++;
        } else if (sql_token_is_word(&toks[at], "DEFAULT") && at + 1 < n) {
            at++;
            if (sql_token_is_punct(&toks[at], '-') || sql_token_is_punct(&toks[at], '+'))
                at++;
            if (at < n)
                at = skip_group(toks, n, at);
        } else {
            break;
        }
        if (at < n && (sql_token_is_word(&toks[at], "ON")))
            break; /* NOT NULL ON CONFLICT ... */
    }
    if (at >= n)
        return 0;
    snprintf(err, err_size,
             "table %s: new column %s has a clause ALTER TABLE ADD COLUMN would not add (%.*s): "
             "only devices that create the table fresh would get it, and refuse rows the store "
             "takes; add the column without it",
             table, column, (int)(toks[at].n > 20 ? 20 : toks[at].n), toks[at].s);
    return STORE_ESCHEMA;
}

#define APPEND_ONLY_WHY                                                                         \
    "an upgrade may only append columns (a device that creates the table fresh would get the "   \
    "change, the store and older devices would not)"

/* Why an upgrade's CREATE TABLE (w) is more than the old one (o) with columns appended, where
 * they first differ, w[at]: a part of the column list changed (named, with its old and new
 * text), a part inserted after a comma (inserted: w[at] is that comma), or a change outside the
 * column list. */
static void explain_change(const sql_token *o, size_t no, const sql_token *w, size_t nw,
                           size_t at, bool inserted, const char *table, char *err,
                           size_t err_size)
{
    size_t first, end, o_first, o_end;
    char what[120], text[80], o_text[80];

    if (at >= nw)
        at = nw - 1;
    if (inserted && at + 1 < nw && sql_token_is_punct(&w[at], ',') &&
        list_part_at(w, nw, at + 1, &first, &end) && first < end) {
        describe_part(w, first, end, what, sizeof what);
        snprintf(err, err_size, "table %s: %s was added: " APPEND_ONLY_WHY, table, what);
        return;
    }
    if (!list_part_at(w, nw, at, &first, &end) || first == end) {
        shown(w[at].s, w[at].n, 30, text, sizeof text);
        snprintf(err, err_size,
                 "table %s: the CREATE TABLE changed outside its column list (at '%s'): "
                 APPEND_ONLY_WHY,
                 table, text);
        return;
    }
    describe_part(w, first, end, what, sizeof what);
    part_text(w, first, end, text, sizeof text);
    if (at < no && list_part_at(o, no, at, &o_first, &o_end) && o_first < o_end) {
        part_text(o, o_first, o_end, o_text, sizeof o_text);
        snprintf(err, err_size, "table %s: %s changed from '%s' to '%s': " APPEND_ONLY_WHY, table,
                 what, o_text, text);
    } else {
        snprintf(err, err_size, "table %s: %s changed (now '%s'): " APPEND_ONLY_WHY, table, what,
                 text);
    }
}

int schema_appended_only(const char *old_sql, const schema_table *t, uint32_t old_n_cols,
                         char *err, size_t err_size)
{
    sql_token *o = NULL, *w = NULL;
    size_t no = 0, nw = 0;
    int out = sql_tokenize(old_sql, &o, &no);
    if (out == 0)
        out = sql_tokenize(t->create_sql, &w, &nw);
    if (out != 0) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    /* the new statement is the old one with a run of tokens inserted: prefix, middle, suffix */
    size_t pre = 0, suf = 0;
    while (pre < no && pre < nw && same_token(&o[pre], &w[pre]))
        pre++;
    while (suf < no - pre && suf < nw - pre && same_token(&o[no - 1 - suf], &w[nw - 1 - suf]))
        suf++;
    size_t from = pre, to = nw - suf; /* the inserted tokens, w[from..to) */
    uint32_t n_new = t->n_cols - old_n_cols;
    bool ok = pre + suf == no;
    if (ok && n_new == 0) {
        ok = from == to;
    } else if (ok) {
        /* ", def, def" before the table's end, or "def, def," before its table constraints */
        if (from < to && sql_token_is_punct(&w[from], ','))
            from++;
        else if (from < to && sql_token_is_punct(&w[to - 1], ','))
            to--;
        else
            ok = false;
    }
    if (!ok) {
        explain_change(o, no, w, nw, pre, pre + suf == no, t->name, err, err_size);
        out = STORE_ESCHEMA;
        goto done;
    }
    for (uint32_t c = old_n_cols; c < t->n_cols && out == 0; c++) {
        size_t end = from;
        while (end < to && !sql_token_is_punct(&w[end], ','))
            end = skip_group(w, to, end);
        if (c + 1 == t->n_cols && end != to) {
            /* more than the new columns was inserted: a table constraint after them */
            explain_change(o, no, w, nw, end, true, t->name, err, err_size);
            out = STORE_ESCHEMA;
            break;
        }
        out = check_added_column(w + from, end - from, t->name, t->cols[c].name, err, err_size);
        from = end + 1;
    }
done:
    free(o);
    free(w);
    return out;
}

/* What one statement of a schema file creates: "table NAME", "index NAME" or its first words. */
static void statement_subject(const sql_token *toks, size_t n, char *out, size_t out_size)
{
    size_t i = 0;
    if (i < n && sql_token_is_word(&toks[i], "CREATE")) {
        i++;
        while (i < n && (sql_token_is_word(&toks[i], "TEMP") ||
                         sql_token_is_word(&toks[i], "TEMPORARY") ||
                         sql_token_is_word(&toks[i], "UNIQUE")))
            i++;
        bool table = i < n && sql_token_is_word(&toks[i], "TABLE");
        bool index = i < n && sql_token_is_word(&toks[i], "INDEX");
        if ((table || index) && ++i < n) {
            if (i + 2 < n && sql_token_is_word(&toks[i], "IF") &&
                sql_token_is_word(&toks[i + 1], "NOT") && sql_token_is_word(&toks[i + 2], "EXISTS"))
                i += 3;
            if (i + 2 < n && sql_token_is_punct(&toks[i + 1], '.'))
                i += 2;
            if (i < n && toks[i].kind == SQL_TK_IDENT) {
                char name[80];
                shown(toks[i].s, toks[i].n, 64, name, sizeof name);
                snprintf(out, out_size, "%s %s", table ? "table" : "index", name);
                return;
            }
        }
    }
    size_t end = 0;
    while (end < n && end < 3 && !sql_token_is_punct(&toks[end], ';'))
        end++;
    if (end == 0) {
        snprintf(out, out_size, "a statement");
        return;
    }
    char text[80];
    part_text(toks, 0, end, text, sizeof text);
    snprintf(out, out_size, "the statement '%s ...'", text);
}

/* A syntax error at byte offset off of stmt_sql (-1: at its end), in plain words; an
 * unrecognized token is an unclosed quote or a character SQL has no use for. */
static void explain_syntax(const sql_token *toks, size_t n, const char *stmt_sql, int off,
                           bool unrecognized, const char *subject, char *out, size_t out_size)
{
    size_t at = 0;
    while (off >= 0 && at < n && toks[at].s + toks[at].n <= stmt_sql + off)
        at++;
    if (off < 0 || at >= n) {
        snprintf(out, out_size, "%s: the statement ends too early (a ')' or ';' missing?)",
                 subject);
        return;
    }
    char what[120], tk[40];
    shown(toks[at].s, toks[at].n, 30, tk, sizeof tk);
    const char *hint = unrecognized ? " (an unclosed quote?)"
                       : toks[at].kind == SQL_TK_IDENT && toks[at].quote == 0
                           ? " (a comma missing before it?)"
                           : "";
    size_t first, end;
    bool is_table = strncmp(subject, "table ", 6) == 0;
    if (!is_table || !list_part_at(toks, n, at, &first, &end)) {
        /* past a table's column list, CREATE starts the next statement */
        if (!unrecognized && at > 0 && sql_token_is_word(&toks[at], "CREATE"))
            hint = " (a ';' missing before it?)";
        else if (!unrecognized)
            hint = "";
        snprintf(out, out_size, "%s: the SQL cannot be read at '%s'%s", subject, tk, hint);
        return;
    }
    if (first == end && sql_token_is_punct(&toks[first - 1], '(')) {
        snprintf(out, out_size, "%s: the column list starts with a comma", subject);
        return;
    }
    if (first == end) {
        /* ",," or ",)": a definition that is not there */
        if (first >= 2 && sql_token_is_punct(&toks[first - 1], ',')) {
            size_t pf, pe;
            if (list_part_at(toks, n, first - 1, &pf, &pe) && pf < pe) {
                describe_part(toks, pf, pe, what, sizeof what);
                snprintf(out, out_size,
                         "%s: a comma too many after %s (an empty column definition)", subject,
                         what);
                return;
            }
        }
        snprintf(out, out_size, "%s: an empty column definition at '%s'", subject, tk);
        return;
    }
    describe_part(toks, first, end, what, sizeof what);
    snprintf(out, out_size, "%s, %s: the definition cannot be read at '%s'%s", subject, what,
             tk, hint);
}

/* Why SQLite refused one statement (stmt_sql, rc, its message), in plain words, into err:
 * "schema file line N: table T, column C: reason". SQLite's own message is kept as a detail
 * where ours is only a guess at what it meant. */
static void explain_refusal(sqlite3 *db, const char *sql, const char *stmt_sql, int rc,
                            char *err, size_t err_size)
{
    const char *raw = sqlite3_errmsg(db);
    int off = sqlite3_error_offset(db);
    sql_token *toks = NULL;
    size_t n = 0;
    char msg[200], subject[160], reason[400];
    unsigned line = 1;

    shown(raw, strlen(raw), 190, msg, sizeof msg);

    if (sql_tokenize(stmt_sql, &toks, &n) != 0) {
        snprintf(err, err_size, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (sql_token_is_punct(&toks[i], ';')) {
            n = i;
            break;
        }
    statement_subject(toks, n, subject, sizeof subject);
    const char *pos = off >= 0 ? stmt_sql + off : (n > 0 ? toks[0].s : stmt_sql);
    for (const char *p = sql; p < pos && *p; p++)
        line += *p == '\n';
    const char *name_in_msg = strchr(msg, ':') ? strchr(msg, ':') + 1 : "";
    while (*name_in_msg == ' ')
        name_in_msg++;
    if (strncmp(name_in_msg, "main.", 5) == 0)
        name_in_msg += 5;

    if (rc == SQLITE_AUTH)
        snprintf(reason, sizeof reason,
                 "%s: a schema file may only hold CREATE TABLE and CREATE INDEX statements",
                 subject);
    else if (strstr(msg, "syntax error") || strstr(msg, "incomplete input") ||
             strstr(msg, "unrecognized token"))
        explain_syntax(toks, n, stmt_sql, strstr(msg, "incomplete input") ? -1 : off,
                       strstr(msg, "unrecognized token") != NULL, subject, reason, sizeof reason);
    else if (strncmp(msg, "duplicate column name: ", 23) == 0)
        snprintf(reason, sizeof reason, "%s: column %s is defined twice", subject, name_in_msg);
    else if (strncmp(msg, "no such table: ", 15) == 0)
        snprintf(reason, sizeof reason,
                 "%s: table %s is not created before it in the schema file", subject,
                 name_in_msg);
    else if (strncmp(msg, "no such column: ", 16) == 0 && strncmp(subject, "index ", 6) == 0)
        snprintf(reason, sizeof reason, "%s: its table has no column %s", subject, name_in_msg);
    else if (strncmp(msg, "no such column: ", 16) == 0)
        snprintf(reason, sizeof reason, "%s: a constraint names column %s, which it does not have",
                 subject, name_in_msg);
    else if (strstr(msg, " already exists"))
        snprintf(reason, sizeof reason, "%s is created twice", subject);
    else
        snprintf(reason, sizeof reason, "%s: SQLite refuses it (%s)", subject, msg);
    snprintf(err, err_size, "schema file line %u: %s", line, reason);
    free(toks);
}

/* Runs schema_sql one statement at a time under the schema authorizer; the first one SQLite
 * refuses is explained (explain_refusal). */
static int run_schema_sql(sqlite3 *db, const char *schema_sql, char *err, size_t err_size)
{
    const char *at = schema_sql;
    int out = 0;

    sqlite3_set_authorizer(db, schema_authorizer, NULL);
    while (out == 0 && *at != '\0') {
        sqlite3_stmt *stmt = NULL;
        const char *tail = NULL;
        int rc = sqlite3_prepare_v2(db, at, -1, &stmt, &tail);
        if (rc == SQLITE_OK && stmt != NULL) {
            rc = sqlite3_step(stmt);
            if (rc == SQLITE_DONE || rc == SQLITE_ROW)
                rc = SQLITE_OK;
        }
        if (rc == SQLITE_NOMEM) {
            snprintf(err, err_size, "out of memory");
            out = STORE_ENOMEM;
        } else if (rc != SQLITE_OK) {
            explain_refusal(db, schema_sql, at, rc, err, err_size);
            out = STORE_ESCHEMA;
        }
        sqlite3_finalize(stmt);
        if (tail == NULL || tail == at)
            break;
        at = tail;
    }
    sqlite3_set_authorizer(db, NULL, NULL);
    return out;
}

/* Loads schema_sql into a new in-memory database under the schema authorizer. */
static int load_schema_db(const char *schema_sql, sqlite3 **out_db, char *err, size_t err_size)
{
    sqlite3 *db = NULL;
    *out_db = NULL;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, NULL) !=
        SQLITE_OK) {
        sqlite3_close(db);
        snprintf(err, err_size, "out of memory");
        return STORE_ENOMEM;
    }
    int out = run_schema_sql(db, schema_sql, err, err_size);
    if (out != 0) {
        sqlite3_close(db);
        return out;
    }
    *out_db = db;
    return 0;
}

enum problem_kind { PROBLEM_UNIQUE, PROBLEM_COLLATE, PROBLEM_FK_ACTION };

static void problem_message(enum problem_kind kind, const char *const v[4], char *msg,
                            size_t msg_size)
{
    switch (kind) {
    case PROBLEM_UNIQUE:
        snprintf(msg, msg_size,
                 "table %s: column %s is %s: two offline devices can each take the same value, "
                 "and the store could keep only one; drop it (a plain index is fine, and so is "
                 "a UNIQUE that includes every primary key column, each under the key's own "
                 "collation)",
                 v[0], v[1], v[2]);
        break;
    case PROBLEM_COLLATE:
        snprintf(msg, msg_size,
                 "table %s: primary key column %s has COLLATE %s: keys it holds equal would be "
                 "one row to the store, two on devices; drop the COLLATE",
                 v[0], v[1], v[2]);
        break;
    case PROBLEM_FK_ACTION:
        snprintf(msg, msg_size,
                 "table %s: column %s REFERENCES %s %s: the store would change rows behind its "
                 "change log, unseen by devices; use a plain REFERENCES",
                 v[0], v[1], v[2], v[3]);
        break;
    }
}

/* Each row of sql (its first four columns) as a problem of kind. */
static int report_rows(sqlite3 *db, const char *sql, enum problem_kind kind, schema_problem_cb cb,
                       void *user_data, char *err, size_t err_size)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        const char *v[4];
        for (int i = 0; i < 4; i++) {
            v[i] = i < sqlite3_column_count(stmt) ? (const char *)sqlite3_column_text(stmt, i)
                                                  : NULL;
            if (v[i] == NULL)
                v[i] = "";
        }
        char msg[600];
        problem_message(kind, v, msg, sizeof msg);
        cb(user_data, msg);
    }
    sqlite3_finalize(stmt);
    if (rc == SQLITE_DONE)
        return 0;
    snprintf(err, err_size, "reading the schema: %s", sqlite3_errmsg(db));
    return STORE_ESCHEMA;
}

int schema_replica_problems(const char *schema_sql, schema_problem_cb cb, void *user_data,
                            char *err, size_t err_size)
{
    sqlite3 *db = NULL;
    int out = load_schema_db(schema_sql, &db, err, err_size);
    if (out != 0)
        return out;
    /* origin 'u': a UNIQUE clause of the table; 'c': CREATE UNIQUE INDEX. One whose columns
     * include every primary key column, each under the key's own collation, can never clash
     * while the key is unique: only one that leaves out a key column (k) is a problem. */
    out = report_rows(
        db,
        "SELECT t.name, ifnull((SELECT group_concat(ifnull(x.name, '(an expression)'), ', ')"
        "   FROM pragma_index_info(l.name) x), ''),"
        "   CASE l.origin WHEN 'u' THEN 'UNIQUE' ELSE 'in unique index ' || l.name END"
        " FROM sqlite_master t, pragma_index_list(t.name) l"
        " WHERE t.type = 'table' AND l.\"unique\" AND l.origin <> 'pk'"
        "   AND (NOT EXISTS (SELECT 1 FROM pragma_table_info(t.name) k WHERE k.pk > 0)"
        "     OR EXISTS (SELECT 1 FROM pragma_table_info(t.name) k WHERE k.pk > 0"
        "       AND NOT EXISTS (SELECT 1 FROM pragma_index_xinfo(l.name) x"
        "         WHERE x.key AND x.name = k.name AND x.coll = ifnull("
        "           (SELECT px.coll FROM pragma_index_list(t.name) pl,"
        "              pragma_index_xinfo(pl.name) px"
        "            WHERE pl.origin = 'pk' AND px.key AND px.name = k.name), 'BINARY'))))"
        " ORDER BY t.rowid, l.seq DESC",
        PROBLEM_UNIQUE, cb, user_data, err, err_size);
    if (out == 0)
        out = report_rows(
            db,
            "SELECT t.name, x.name, x.coll FROM sqlite_master t, pragma_index_list(t.name) l,"
            "   pragma_index_xinfo(l.name) x"
            " WHERE t.type = 'table' AND l.origin = 'pk' AND x.key AND x.coll <> 'BINARY'"
            " ORDER BY t.rowid, x.seqno",
            PROBLEM_COLLATE, cb, user_data, err, err_size);
    if (out == 0)
        out = report_rows(
            db,
            "SELECT t.name, f.\"from\", f.\"table\","
            "   CASE WHEN f.on_delete NOT IN ('NO ACTION', 'RESTRICT')"
            "   THEN 'ON DELETE ' || f.on_delete ELSE 'ON UPDATE ' || f.on_update END"
            " FROM sqlite_master t, pragma_foreign_key_list(t.name) f"
            " WHERE t.type = 'table' AND (f.on_delete NOT IN ('NO ACTION', 'RESTRICT')"
            "   OR f.on_update NOT IN ('NO ACTION', 'RESTRICT'))"
            " ORDER BY t.rowid, f.id, f.seq",
            PROBLEM_FK_ACTION, cb, user_data, err, err_size);
    sqlite3_close(db);
    return out;
}

int schema_parse(const char *schema_sql, const char *policy_text, schema_def *out_def, char *err,
                 size_t err_size)
{
    memset(out_def, 0, sizeof *out_def);
    err[0] = 0;
    if (schema_sql == NULL || policy_text == NULL) {
        snprintf(err, err_size, "schema and policy are both required");
        return STORE_EINVAL;
    }
    sqlite3 *db = NULL;
    int out = load_schema_db(schema_sql, &db, err, err_size);
    if (out != 0)
        goto done;
    out = read_tables(db, out_def, err, err_size);
    if (out == 0 && out_def->n_tables == 0) {
        snprintf(err, err_size, "schema file creates no table");
        out = STORE_ESCHEMA;
    }
    if (out == 0)
        out = parse_policy(out_def, policy_text, err, err_size);
done:
    sqlite3_close(db);
    return out;
}

void schema_def_free(schema_def *def)
{
    if (def == NULL)
        return;
    store_arena_free(&def->arena);
    memset(def, 0, sizeof *def);
}
