#include "schema_parse.h"

#include <ctype.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    int out = 0;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, NULL) !=
        SQLITE_OK) {
        snprintf(err, err_size, "out of memory");
        out = STORE_ENOMEM;
        goto done;
    }
    sqlite3_set_authorizer(db, schema_authorizer, NULL);
    char *sql_err = NULL;
    if (sqlite3_exec(db, schema_sql, NULL, NULL, &sql_err) != SQLITE_OK) {
        snprintf(err, err_size,
                 "schema file: %s (only CREATE TABLE and CREATE INDEX statements are allowed)",
                 sql_err ? sql_err : "invalid SQL");
        sqlite3_free(sql_err);
        out = STORE_ESCHEMA;
        goto done;
    }
    sqlite3_set_authorizer(db, NULL, NULL);
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
