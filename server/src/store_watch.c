/*
 * Watch rules in the central store: checked against the schema, kept in _outpost_watch, and
 * evaluated within a supervisor's teams (store_watch.h; the rule checks are in watch.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema_parse.h"
#include "store_arena.h"
#include "store_internal.h"
#include "store_values.h"
#include "store_watch.h"
#include "watch.h"

static const char *def_scope(const schema_def *def, const char *table)
{
    for (uint32_t i = 0; i < def->n_tables; i++)
        if (strcmp(def->tables[i].name, table) == 0) /* as store_table_find: names as written */
            return def->tables[i].cols[def->tables[i].scope_idx].name;
    return NULL;
}

int store_watch_check(const char *schema_sql, const char *policy_text, const char *json,
                      char *err, size_t err_size)
{
    schema_def def;
    watch_rules rules = {0};
    sqlite3 *db = NULL;
    int out = schema_parse(schema_sql, policy_text, &def, err, err_size);
    if (out != 0)
        goto done;
    if (watch_rules_parse(json, &rules, err, err_size) != 0) {
        out = STORE_ESCHEMA;
        goto done;
    }
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, NULL) !=
        SQLITE_OK) {
        snprintf(err, err_size, "out of memory");
        out = STORE_ENOMEM;
        goto done;
    }
    for (uint32_t i = 0; out == 0 && i < def.n_tables; i++)
        if (sqlite3_exec(db, def.tables[i].create_sql, NULL, NULL, NULL) != SQLITE_OK) {
            snprintf(err, err_size, "table %s: %s", def.tables[i].name, sqlite3_errmsg(db));
            out = STORE_ESCHEMA;
        }
    for (uint32_t i = 0; out == 0 && i < rules.n; i++) {
        const char *scope = def_scope(&def, rules.rules[i].table);
        if (scope == NULL) {
            snprintf(err, err_size, "rule %s: no synced table %.64s in the schema",
                     rules.rules[i].id, rules.rules[i].table);
            out = STORE_ESCHEMA;
        } else if (watch_rule_check(db, &rules.rules[i], scope, err, err_size) != 0) {
            out = STORE_ESCHEMA;
        }
    }
done:
    sqlite3_close(db);
    watch_rules_free(&rules);
    schema_def_free(&def);
    return out;
}

/* A rule's expressions are SQLite SQL over SQLite's typed values, checked with SQLite's
 * authorizer. On PostgreSQL, which keeps synced values encoded, they run on a mirror: an
 * in-memory SQLite database with the synced tables as the schema made them, into which
 * mirror_fill copies, decoded, the rows of a rule's table in the caller's teams. */
typedef struct rules_db {
    sqlite3 *db;     /* where rules are checked and run: the store's own, or the mirror */
    sqlite3 *mirror; /* PostgreSQL: the in-memory mirror (closed by rules_db_close) */
} rules_db;

static int rules_db_open(store *st, rules_db *r)
{
    memset(r, 0, sizeof *r);
    int out = store_tables_load(st);
    if (out != 0 || st->db != NULL) {
        r->db = st->db;
        return out;
    }
    if (sqlite3_open_v2(":memory:", &r->mirror, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY,
                        NULL) != SQLITE_OK) {
        sqlite3_close(r->mirror);
        r->mirror = NULL;
        return store_fail(st, STORE_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < st->n_tables; i++)
        if (sqlite3_exec(r->mirror, st->tables[i].create_sql, NULL, NULL, NULL) != SQLITE_OK) {
            out = store_fail(st, STORE_EIO, "watch rules: table %s: %s", st->tables[i].name,
                             sqlite3_errmsg(r->mirror));
            sqlite3_close(r->mirror);
            r->mirror = NULL;
            return out;
        }
    r->db = r->mirror;
    return 0;
}

static void rules_db_close(rules_db *r)
{
    sqlite3_close(r->mirror);
    memset(r, 0, sizeof *r);
}

/* Replaces the mirror's copy of t with t's rows in teams, decoded. */
static int mirror_fill(store *st, rules_db *r, const store_table *t, const char (*teams)[64],
                       uint32_t n_teams)
{
    char sel[8192], ins[8192], name[200];
    size_t ls = 0, li = 0;
    db_stmt *stmt = NULL;
    sqlite3_stmt *put = NULL;
    store_arena arena = {0};

    if (r->mirror == NULL)
        return 0;
    ls += (size_t)snprintf(sel, sizeof sel, "SELECT ");
    if (store_quote_ident(name, sizeof name, t->name) != 0)
        return store_fail(st, STORE_EINVAL, "bad table name");
    li += (size_t)snprintf(ins, sizeof ins, "INSERT INTO %s(", name);
    for (uint32_t i = 0; i < t->n_cols && ls < sizeof sel && li < sizeof ins; i++) {
        if (store_quote_name(st, name, sizeof name, t->cols[i]) != 0)
            return store_fail(st, STORE_EINVAL, "bad column name");
        ls += (size_t)snprintf(sel + ls, sizeof sel - ls, "%s%s", i ? ", " : "", name);
        if (store_quote_ident(name, sizeof name, t->cols[i]) != 0)
            return store_fail(st, STORE_EINVAL, "bad column name");
        li += (size_t)snprintf(ins + li, sizeof ins - li, "%s%s", i ? ", " : "", name);
    }
    for (uint32_t i = 0; i < t->n_cols && li < sizeof ins; i++)
        li += (size_t)snprintf(ins + li, sizeof ins - li, "%s?%u", i ? ", " : ") VALUES(",
                               i + 1);
    if (li < sizeof ins)
        li += (size_t)snprintf(ins + li, sizeof ins - li, ")");
    if (ls < sizeof sel && store_quote_name(st, name, sizeof name, t->name) == 0)
        ls += (size_t)snprintf(sel + ls, sizeof sel - ls, " FROM %s WHERE ", name);
    if (ls < sizeof sel && store_quote_name(st, name, sizeof name, t->cols[t->scope_idx]) == 0)
        ls += (size_t)snprintf(sel + ls, sizeof sel - ls, "%s IN (", name);
    for (uint32_t i = 0; i < n_teams && ls < sizeof sel; i++)
        ls += (size_t)snprintf(sel + ls, sizeof sel - ls, "%s?%u", i ? ", " : "", i + 1);
    if (ls < sizeof sel)
        ls += (size_t)snprintf(sel + ls, sizeof sel - ls, ")");
    if (ls >= sizeof sel || li >= sizeof ins)
        return store_fail(st, STORE_EINVAL, "query too long for table %s", t->name);
    if (store_quote_ident(name, sizeof name, t->name) != 0)
        return store_fail(st, STORE_EINVAL, "bad table name");
    char del[256];
    snprintf(del, sizeof del, "DELETE FROM %s", name);
    if (sqlite3_exec(r->mirror, del, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->mirror, ins, -1, &put, NULL) != SQLITE_OK) {
        int out = store_fail(st, STORE_EIO, "watch rules: %s", sqlite3_errmsg(r->mirror));
        sqlite3_finalize(put);
        return out;
    }
    int rc = db_prepare(st->conn, sel, &stmt);
    for (uint32_t i = 0; rc == STORE_OK && i < n_teams; i++) {
        proto_value team;
        memset(&team, 0, sizeof team);
        team.type = PROTO_TEXT;
        team.u.b.p = (const uint8_t *)teams[i];
        team.u.b.n = (uint32_t)strlen(teams[i]);
        rc = store_value_bind_any(stmt, (int)i + 1, &team);
    }
    while (rc == STORE_OK || rc == DB_ROW) {
        rc = db_step(stmt);
        if (rc != DB_ROW)
            break;
        sqlite3_reset(put);
        for (uint32_t i = 0; rc == DB_ROW && i < t->n_cols; i++) {
            proto_value v;
            if (store_value_column_any(&arena, stmt, (int)i, &v) != 0 ||
                store_value_bind(put, (int)i + 1, &v) != SQLITE_OK)
                rc = STORE_EIO;
        }
        if (rc == DB_ROW && sqlite3_step(put) != SQLITE_DONE)
            rc = STORE_EIO;
        store_arena_free(&arena);
    }
    db_finalize(stmt);
    sqlite3_finalize(put);
    store_arena_free(&arena);
    return rc == DB_DONE ? 0 : store_fail_db(st, rc, "copy rows for the watch rules");
}

/* Parses json and checks every rule against the store's tables (loaded). */
static int load_checked(store *st, sqlite3 *db, const char *json, watch_rules *rules)
{
    char err[512];
    int out = 0;
    memset(rules, 0, sizeof *rules);
    if (watch_rules_parse(json, rules, err, sizeof err) != 0)
        return store_fail(st, STORE_ESCHEMA, "watch rules: %s", err);
    for (uint32_t i = 0; i < rules->n; i++) {
        const store_table *t = store_table_find(st, rules->rules[i].table);
        if (t == NULL)
            out = store_fail(st, STORE_ESCHEMA, "rule %s: no synced table %.64s",
                             rules->rules[i].id, rules->rules[i].table);
        else if (watch_rule_check(db, &rules->rules[i], t->cols[t->scope_idx], err,
                                  sizeof err) != 0)
            out = store_fail(st, STORE_ESCHEMA, "%s", err);
        if (out != 0) {
            watch_rules_free(rules);
            return out;
        }
    }
    return 0;
}

/* Inserts json as the newest rules (the table made when missing). */
static int insert_rules(store *st, const char *json)
{
    int out = store_exec(st,
                         "CREATE TABLE IF NOT EXISTS _outpost_watch("
                         "  id INTEGER PRIMARY KEY, json TEXT NOT NULL, set_ms INTEGER NOT NULL)",
                         "create the watch rules table");
    db_stmt *stmt = NULL;
    if (out == 0) {
        int rc = db_prepare(st->conn, "INSERT INTO _outpost_watch(json, set_ms) VALUES(?1, ?2)",
                            &stmt);
        if (rc == STORE_OK)
            rc = db_bind_text(stmt, 1, json);
        if (rc == STORE_OK)
            rc = db_bind_int64(stmt, 2, (int64_t)store_now_ms());
        if (rc == STORE_OK)
            rc = db_step(stmt);
        if (rc != DB_DONE)
            out = store_fail_db(st, rc, "keep the watch rules");
    }
    db_finalize(stmt);
    return out;
}

int store_watch_keep_in_tx(store *st, const char *json, bool *out_changed)
{
    char *kept = NULL;
    *out_changed = false;
    int out = store_watch_json(st, &kept);
    bool same = out == 0 && kept != NULL && strcmp(kept, json) == 0;
    free(kept);
    if (out != 0 || same)
        return out;
    /* The tables as this transaction made them, new ones included. */
    store_tables_free(st);
    watch_rules rules;
    rules_db r;
    out = rules_db_open(st, &r);
    if (out == 0)
        out = load_checked(st, r.db, json, &rules);
    watch_rules_free(&rules);
    rules_db_close(&r);
    if (out == 0)
        out = insert_rules(st, json);
    *out_changed = out == 0;
    return out;
}

int store_watch_set(store *st, const char *json)
{
    bool changed = false;
    int out = store_begin(st, true);
    if (out != 0)
        return out;
    out = store_watch_keep_in_tx(st, json, &changed);
    if (out == 0)
        out = store_commit(st);
    else
        store_rollback(st);
    store_tables_free(st);
    return out;
}

int store_watch_json(store *st, char **out_json)
{
    *out_json = NULL;
    db_stmt *stmt = NULL;
    /* A store that never had rules has no table: no rules. */
    bool kept = false;
    int rc = store_table_exists(st, "_outpost_watch", &kept);
    if (rc != STORE_OK || !kept)
        return rc;
    rc = db_prepare(st->conn, "SELECT json FROM _outpost_watch ORDER BY id DESC LIMIT 1", &stmt);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    int out = 0;
    if (rc == DB_ROW) {
        *out_json = strdup(db_column_text(stmt, 0));
        if (*out_json == NULL)
            out = store_fail(st, STORE_ENOMEM, "out of memory");
    } else if (rc != DB_DONE) {
        out = store_fail_db(st, rc, "read the watch rules");
    }
    db_finalize(stmt);
    return out;
}

/* The kept rules, checked again against the current tables (a schema upgrade since cannot
 * make a kept rule read what it should not). */
static int load_kept(store *st, sqlite3 *db, watch_rules *rules)
{
    char *json = NULL;
    memset(rules, 0, sizeof *rules);
    int out = store_watch_json(st, &json);
    if (out == 0 && json != NULL)
        out = load_checked(st, db, json, rules);
    free(json);
    return out;
}

int store_watch_rules(store *st, store_watch_rule_cb cb, void *user_data)
{
    watch_rules rules;
    rules_db r;
    int out = store_begin(st, false);
    if (out != 0)
        return out;
    memset(&rules, 0, sizeof rules);
    out = rules_db_open(st, &r);
    if (out == 0)
        out = load_kept(st, r.db, &rules);
    rules_db_close(&r);
    store_rollback(st);
    for (uint32_t i = 0; out == 0 && i < rules.n; i++)
        out = cb(rules.rules[i].id, rules.rules[i].severity, rules.rules[i].title_json,
                 user_data);
    watch_rules_free(&rules);
    return out;
}

typedef struct item_copy {
    uint32_t rule;
    uint32_t team;
    char *record_id;
    char *alias;
    char *title_json; /* an unreadable time's own title, or NULL for the rule's */
    char due[20];
} item_copy;

static int by_due(const void *a, const void *b)
{
    const item_copy *x = a, *y = b;
    int c = strcmp(x->due, y->due);
    if (c == 0)
        c = (x->rule > y->rule) - (x->rule < y->rule);
    if (c == 0)
        c = strcmp(x->record_id, y->record_id);
    return c;
}

static char *col_dup(sqlite3_stmt *stmt, int col)
{
    const unsigned char *s = sqlite3_column_text(stmt, col);
    return strdup(s ? (const char *)s : "");
}

/* A rule's statement on the rules database, its table's rows of the teams mirrored there first
 * (PostgreSQL): the items it finds, or with counts its weekly counts. */
static int rule_statement(store *st, rules_db *rdb, const watch_rule *r, const char (*teams)[64],
                          uint32_t n_teams, bool counts, sqlite3_stmt **out_stmt)
{
    const store_table *t = store_table_find(st, r->table);
    char err[512];
    int out = mirror_fill(st, rdb, t, teams, n_teams);
    if (out != 0)
        return out;
    const char *scope_col = t->cols[t->scope_idx];
    int rc = counts ? watch_rule_prepare_counts(rdb->db, r, scope_col, out_stmt, err, sizeof err)
                    : watch_rule_prepare(rdb->db, r, scope_col, NULL, out_stmt, err, sizeof err);
    return rc != 0 ? store_fail(st, STORE_ESCHEMA, "%s", err) : 0;
}

int store_watch_items(store *st, const char (*teams)[64], uint32_t n_teams, uint64_t now_ms,
                      store_watch_item_cb cb, void *user_data)
{
    watch_rules rules;
    item_copy *items = NULL;
    size_t n_items = 0, cap = 0;
    rules_db rdb;
    int out = store_begin(st, false);
    if (out != 0)
        return out;
    memset(&rules, 0, sizeof rules);
    out = rules_db_open(st, &rdb);
    if (out == 0)
        out = load_kept(st, rdb.db, &rules);
    for (uint32_t i = 0; out == 0 && i < rules.n; i++) {
        const watch_rule *r = &rules.rules[i];
        sqlite3_stmt *stmt = NULL;
        out = rule_statement(st, &rdb, r, teams, n_teams, false, &stmt);
        if (out != 0)
            break;
        for (uint32_t k = 0; out == 0 && k < n_teams; k++) {
            sqlite3_reset(stmt);
            int rc = watch_bind(stmt, r, teams[k], now_ms, 0);
            while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                rc = SQLITE_OK;
                if (n_items == cap) {
                    size_t ncap = cap ? cap * 2 : 64;
                    item_copy *grown = realloc(items, ncap * sizeof *items);
                    if (grown == NULL) {
                        rc = SQLITE_NOMEM;
                        break;
                    }
                    items = grown;
                    cap = ncap;
                }
                item_copy *it = &items[n_items];
                memset(it, 0, sizeof *it);
                it->rule = i;
                it->team = k;
                it->record_id = col_dup(stmt, WATCH_COL_KEY);
                it->alias = sqlite3_column_type(stmt, WATCH_COL_ALIAS) == SQLITE_NULL
                                ? NULL
                                : col_dup(stmt, WATCH_COL_ALIAS);
                snprintf(it->due, sizeof it->due, "%s",
                         (const char *)sqlite3_column_text(stmt, WATCH_COL_DUE));
                n_items++;
                if (sqlite3_column_type(stmt, WATCH_COL_UNREADABLE) != SQLITE_NULL &&
                    (it->title_json = watch_unreadable_title(
                         r, (const char *)sqlite3_column_text(stmt, WATCH_COL_UNREADABLE))) ==
                        NULL) {
                    rc = SQLITE_NOMEM;
                    break;
                }
                if (it->record_id == NULL) {
                    rc = SQLITE_NOMEM;
                    break;
                }
            }
            if (rc != SQLITE_DONE)
                out = store_fail_sqlite(st, rc, "evaluate a watch rule");
        }
        sqlite3_finalize(stmt);
    }
    rules_db_close(&rdb);
    store_rollback(st); /* a read: nothing to keep */
    if (out == 0 && n_items > 0)
        qsort(items, n_items, sizeof *items, by_due);
    for (size_t j = 0; out == 0 && j < n_items; j++) {
        const watch_rule *r = &rules.rules[items[j].rule];
        const char *title = items[j].title_json ? items[j].title_json : r->title_json;
        const char *severity = items[j].title_json ? WATCH_UNREADABLE_SEVERITY : r->severity;
        store_watch_item item = {r->id,     severity,           title,
                                 r->table,  teams[items[j].team], items[j].record_id,
                                 items[j].alias, items[j].due};
        out = cb(&item, user_data);
    }
    for (size_t j = 0; j < n_items; j++) {
        free(items[j].record_id);
        free(items[j].alias);
        free(items[j].title_json);
    }
    free(items);
    watch_rules_free(&rules);
    return out;
}

int store_watch_counts(store *st, const char (*teams)[64], uint32_t n_teams, uint64_t now_ms,
                       uint64_t since_ms, store_watch_count_cb cb, void *user_data)
{
    watch_rules rules;
    rules_db rdb;
    int out = store_begin(st, false);
    if (out != 0)
        return out;
    memset(&rules, 0, sizeof rules);
    out = rules_db_open(st, &rdb);
    if (out == 0)
        out = load_kept(st, rdb.db, &rules);
    for (uint32_t i = 0; out == 0 && i < rules.n; i++) {
        const watch_rule *r = &rules.rules[i];
        sqlite3_stmt *stmt = NULL;
        out = rule_statement(st, &rdb, r, teams, n_teams, true, &stmt);
        if (out != 0)
            break;
        for (uint32_t k = 0; out == 0 && k < n_teams; k++) {
            sqlite3_reset(stmt);
            int rc = watch_bind(stmt, r, teams[k], now_ms, since_ms);
            while (out == 0 && rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                rc = SQLITE_OK;
                out = cb(teams[k], r->id, (const char *)sqlite3_column_text(stmt, 0),
                         (uint64_t)sqlite3_column_int64(stmt, 1),
                         (uint64_t)sqlite3_column_double(stmt, 2), user_data);
            }
            if (out == 0 && rc != SQLITE_DONE)
                out = store_fail_sqlite(st, rc, "count a watch rule");
        }
        sqlite3_finalize(stmt);
    }
    rules_db_close(&rdb);
    store_rollback(st);
    watch_rules_free(&rules);
    return out;
}
