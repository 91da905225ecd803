/*
 * The store's schema: initialising it from the admin's files, additive upgrades, the SCHEMA
 * message, and the cached table descriptions the merge engine and pull work from.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "forms.h"
#include "schema_parse.h"
#include "store_internal.h"
#include "store_rowcheck.h"
#include "store_values.h"
#include "store_watch.h"

/* Longest SQL statement the store builds for one table (quoted names of every column). */
enum { SQL_MAX = 16384 };

/* The author column of each table that has one (a table of its own, so that stores made before
 * it need no migration: a store without it has no author columns). */
static int record_author(store *st, const schema_table *t, int64_t table_id)
{
    db_stmt *stmt = NULL;
    int rc = store_exec(st,
                        "CREATE TABLE IF NOT EXISTS _outpost_table_authors("
                        "  table_id INTEGER PRIMARY KEY, author_col INTEGER NOT NULL);",
                        "create the author table");
    if (rc != STORE_OK)
        return rc;
    rc = db_prepare(st->conn,
                    t->author_idx == SCHEMA_NO_AUTHOR
                        ? "DELETE FROM _outpost_table_authors WHERE table_id = ?1"
                        : "INSERT INTO _outpost_table_authors VALUES(?1, ?2)"
                          " ON CONFLICT(table_id) DO UPDATE SET author_col = excluded.author_col",
                    &stmt);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 1, table_id);
    if (rc == STORE_OK && t->author_idx != SCHEMA_NO_AUTHOR)
        rc = db_bind_int64(stmt, 2, t->author_idx);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    db_finalize(stmt);
    return rc == DB_DONE ? STORE_OK : store_fail_db(st, rc, "record author column");
}

/* The author column recorded for table_id, or SCHEMA_NO_AUTHOR. */
static uint32_t load_author(store *st, int64_t table_id)
{
    db_stmt *stmt = NULL;
    uint32_t out = SCHEMA_NO_AUTHOR;
    bool kept = false;

    /* No such table (a store older than author columns): none. */
    if (store_table_exists(st, "_outpost_table_authors", &kept) != STORE_OK || !kept ||
        db_prepare(st->conn, "SELECT author_col FROM _outpost_table_authors WHERE table_id = ?1",
                   &stmt) != STORE_OK) {
        db_finalize(stmt);
        return out;
    }
    if (db_bind_int64(stmt, 1, table_id) == STORE_OK && db_step(stmt) == DB_ROW)
        out = (uint32_t)db_column_int64(stmt, 0);
    db_finalize(stmt);
    return out;
}

static int record_table(store *st, const schema_table *t, int64_t table_id, uint32_t first_col,
                        uint32_t version)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn,
                        "INSERT INTO _outpost_tables(id, name, create_sql, scope_col,"
                        " policy, since_version) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"
                        " ON CONFLICT(id) DO UPDATE SET create_sql = ?3, policy = ?5",
                        &stmt);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 1, table_id);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 2, t->name);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 3, t->create_sql);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 4, t->scope_idx);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 5, (int64_t)t->policy);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 6, version);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    db_finalize(stmt);
    stmt = NULL;
    if (rc != DB_DONE)
        return store_fail_db(st, rc, "record table");
    if (record_author(st, t, table_id) != STORE_OK)
        return STORE_EIO;
    rc = db_prepare(st->conn,
                    "INSERT INTO _outpost_columns(table_id, idx, name, pk_pos,"
                    " since_version) VALUES(?1, ?2, ?3, ?4, ?5)",
                    &stmt);
    for (uint32_t c = first_col; rc == STORE_OK && c < t->n_cols; c++) {
        rc = db_bind_int64(stmt, 1, table_id);
        if (rc == STORE_OK)
            rc = db_bind_int64(stmt, 2, c);
        if (rc == STORE_OK)
            rc = db_bind_text(stmt, 3, t->cols[c].name);
        if (rc == STORE_OK)
            rc = db_bind_int64(stmt, 4, t->cols[c].pk_pos);
        if (rc == STORE_OK)
            rc = db_bind_int64(stmt, 5, version);
        if (rc == STORE_OK)
            rc = db_step(stmt);
        if (rc == DB_DONE)
            rc = db_reset(stmt);
    }
    db_finalize(stmt);
    if (rc != STORE_OK)
        return store_fail_db(st, rc, "record columns");
    return 0;
}

static int record_version(store *st, uint32_t version, const char *schema_sql,
                          const char *policy_text)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn, "INSERT INTO _outpost_schema_versions VALUES(?1, ?2, ?3, ?4)",
                        &stmt);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 1, version);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 2, schema_sql);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 3, policy_text);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 4, (int64_t)store_now_ms());
    if (rc == STORE_OK)
        rc = db_step(stmt);
    db_finalize(stmt);
    if (rc != DB_DONE)
        return store_fail_db(st, rc, "record schema version");
    return store_meta_set(st, "schema_version", version);
}

/* Creates the schema's indexes the store does not have yet; *out_created counts them. */
static int create_indexes(store *st, const schema_def *def, uint32_t *out_created)
{
    *out_created = 0;
    for (uint32_t i = 0; i < def->n_indexes; i++) {
        db_stmt *stmt = NULL;
        int rc = db_prepare(st->conn,
                            store_engine_of(st) == DB_POSTGRESQL
                                ? "SELECT 1 WHERE to_regclass(CAST(?1 AS TEXT)) IS NOT NULL"
                                : "SELECT 1 FROM sqlite_master WHERE type = 'index'"
                                  " AND name = ?1",
                            &stmt);
        if (rc == STORE_OK)
            rc = db_bind_text(stmt, 1, def->index_names[i]);
        if (rc == STORE_OK)
            rc = db_step(stmt);
        db_finalize(stmt);
        if (rc == DB_ROW)
            continue;
        if (rc != DB_DONE)
            return store_fail_db(st, rc, "look up index");
        int out = store_exec(st, def->index_sql[i], "create index");
        if (out != 0)
            return out;
        (*out_created)++;
    }
    return 0;
}

/* Appends name to f as a PostgreSQL quoted identifier, folded to lower case as PostgreSQL folds
 * an unquoted name (SQLite's names are case-insensitive, so no two differ only by case): the
 * schema's own unquoted names in index statements find it, and a name PostgreSQL reserves
 * (user, order) stays a name. */
static void put_pg_name(FILE *f, const char *name)
{
    fputc('"', f);
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            fputc('"', f);
        fputc(tolower((unsigned char)*p), f);
    }
    fputc('"', f);
}

/* A synced table on PostgreSQL, from the parsed column list: every column BYTEA holding the
 * value's canonical encoding (store_values.h), since a SQLite column takes a value of any type
 * whatever its declared type and a typed column would refuse or convert it; NOT NULL and the
 * primary key as declared. Defaults, CHECK constraints and type affinity are SQLite's rules,
 * applied where rows are written, not by PostgreSQL. */
static int create_table_postgresql(store *st, const schema_table *t)
{
    char *sql = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&sql, &len);
    if (f == NULL)
        return store_fail(st, STORE_ENOMEM, "create table %s: out of memory", t->name);
    fputs("CREATE TABLE ", f);
    put_pg_name(f, t->name);
    fputc('(', f);
    uint32_t n_pk = 0;
    for (uint32_t c = 0; c < t->n_cols; c++) {
        put_pg_name(f, t->cols[c].name);
        fputs(t->cols[c].notnull ? " BYTEA NOT NULL, " : " BYTEA, ", f);
        if (t->cols[c].pk_pos > n_pk)
            n_pk = t->cols[c].pk_pos;
    }
    fputs("PRIMARY KEY(", f);
    for (uint32_t k = 1; k <= n_pk; k++)
        for (uint32_t c = 0; c < t->n_cols; c++)
            if (t->cols[c].pk_pos == k) {
                if (k > 1)
                    fputs(", ", f);
                put_pg_name(f, t->cols[c].name);
            }
    fputs("))", f);
    int out = ferror(f) ? STORE_ENOMEM : STORE_OK;
    if (fclose(f) != 0)
        out = STORE_ENOMEM;
    if (out == STORE_OK)
        out = store_exec(st, sql, "create table");
    else
        store_fail(st, out, "create table %s: out of memory", t->name);
    free(sql);
    return out;
}

/* Creates a table new in schema version `version` and records it, every column with it. */
static int create_table(store *st, const schema_table *t, int64_t table_id, uint32_t version)
{
    int out = store_engine_of(st) == DB_POSTGRESQL ? create_table_postgresql(st, t)
                                                     : store_exec(st, t->create_sql, "create table");
    if (out == 0)
        out = record_table(st, t, table_id, 0, version);
    return out;
}

/* The forms of a schema package, when the caller gives them (docs/forms.md). */
typedef struct package_forms {
    bool given;
    const store_form_file *files;
    size_t n_files;
    const char *json; /* validated, as kept and sent */
    bool check_only;  /* run every check, then roll back: nothing is applied */
    const char *watch_json; /* the package's watch rules (docs/watch.md); NULL: keep them */
    bool replay; /* a version the store had applied already (a restore): its tables are taken
                  * as they were, even where init and upgrade refuse such tables now */
} package_forms;

/* Parses a schema and policy into def (which the caller frees, whatever this returns),
 * validates the forms against it, and opens the write transaction that installs them. */
static int parse_and_begin(store *st, const char *schema_sql, const char *policy_text,
                           schema_def *def, package_forms *forms)
{
    char err[512];
    int out = schema_parse(schema_sql, policy_text, def, err, sizeof err);
    if (out == 0 && forms->given) {
        char *json = NULL;
        out = forms_validate(def, forms->files, forms->n_files, &json, err, sizeof err);
        forms->json = json;
    }
    if (out != 0)
        return store_fail(st, out, "%s", err);
    return store_begin(st, true);
}

static const schema_table *find_def_table(const schema_def *def, const char *name)
{
    for (uint32_t k = 0; k < def->n_tables; k++)
        if (strcasecmp(def->tables[k].name, name) == 0)
            return &def->tables[k];
    return NULL;
}

/* The replica problems (schema_replica_problems) of a schema, collected. */
typedef struct problem_list {
    char **msgs;
    size_t n;
    bool nomem;
} problem_list;

static void collect_problem(void *user_data, const char *message)
{
    problem_list *l = user_data;
    char **msgs = realloc(l->msgs, (l->n + 1) * sizeof *msgs);
    char *copy = strdup(message);
    if (msgs == NULL || copy == NULL) {
        if (msgs != NULL)
            l->msgs = msgs;
        free(copy);
        l->nomem = true;
        return;
    }
    l->msgs = msgs;
    l->msgs[l->n++] = copy;
}

static void problem_list_free(problem_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->msgs[i]);
    free(l->msgs);
    memset(l, 0, sizeof *l);
}

/* The schema SQL (and, when out_policy is not NULL, the policy text) the store recorded for
 * version, malloc'd. */
static int recorded_schema(store *st, int64_t version, char **out_sql, char **out_policy)
{
    db_stmt *stmt = NULL;
    *out_sql = NULL;
    if (out_policy != NULL)
        *out_policy = NULL;
    int rc = db_prepare(st->conn,
                        "SELECT schema_sql, policy_text FROM _outpost_schema_versions"
                        " WHERE version = ?1",
                        &stmt);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 1, version);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    bool nomem = false;
    if (rc == DB_ROW) {
        *out_sql = strdup(db_column_text(stmt, 0));
        nomem = *out_sql == NULL;
        if (out_policy != NULL) {
            *out_policy = strdup(db_column_text(stmt, 1));
            nomem = nomem || *out_policy == NULL;
        }
    }
    db_finalize(stmt);
    if (rc == DB_DONE)
        return store_fail(st, STORE_EIO, "schema version %lld is not recorded",
                          (long long)version);
    if (rc != DB_ROW)
        return store_fail_db(st, rc, "load schema");
    return nomem ? store_fail(st, STORE_ENOMEM, "out of memory") : 0;
}

static int recorded_schema_sql(store *st, int64_t version, char **out_sql)
{
    return recorded_schema(st, version, out_sql, NULL);
}

/* Upgrades recorded before upgrade held tables to appended plain columns
 * (schema_appended_only): each table of version that differs from version - 1 in more than
 * that, as a message to cb. */
static int upgrade_drift(store *st, int64_t version,
                         void (*cb)(void *user_data, const char *message), void *user_data)
{
    char *sql[2] = {NULL, NULL}, *policy[2] = {NULL, NULL};
    schema_def def[2];
    memset(def, 0, sizeof def);
    char err[512], msg[600];
    int out = recorded_schema(st, version - 1, &sql[0], &policy[0]);
    if (out == 0)
        out = recorded_schema(st, version, &sql[1], &policy[1]);
    for (int i = 0; i < 2 && out == 0; i++)
        if (schema_parse(sql[i], policy[i], &def[i], err, sizeof err) != 0)
            out = store_fail(st, STORE_EIO, "schema version %lld cannot be read: %s",
                             (long long)version - 1 + i, err);
    for (uint32_t k = 0; out == 0 && k < def[1].n_tables; k++) {
        const schema_table *t = &def[1].tables[k];
        const schema_table *was = find_def_table(&def[0], t->name);
        if (was == NULL || t->n_cols < was->n_cols ||
            schema_appended_only(was->create_sql, t, was->n_cols, err, sizeof err) == 0)
            continue;
        snprintf(msg, sizeof msg, "schema version %lld: %s", (long long)version, err);
        cb(user_data, msg);
    }
    for (int i = 0; i < 2; i++) {
        schema_def_free(&def[i]);
        free(sql[i]);
        free(policy[i]);
    }
    return out;
}

/* Refuses a schema with a constraint replicas cannot keep (schema_replica_problems) that
 * old_sql, the schema the store has (NULL for init), does not have already: a store made
 * before these were refused can still be upgraded, and outpostd warns of what it has. */
static int refuse_replica_problems(store *st, const char *schema_sql, const char *old_sql)
{
    problem_list now = {0}, had = {0};
    char err[512];
    int out = schema_replica_problems(schema_sql, collect_problem, &now, err, sizeof err);
    if (out == 0 && old_sql != NULL)
        out = schema_replica_problems(old_sql, collect_problem, &had, err, sizeof err);
    if (out != 0)
        out = store_fail(st, out, "%s", err);
    else if (now.nomem || had.nomem)
        out = store_fail(st, STORE_ENOMEM, "out of memory");
    for (size_t i = 0; out == 0 && i < now.n; i++) {
        bool old = false;
        for (size_t k = 0; k < had.n && !old; k++)
            old = strcmp(now.msgs[i], had.msgs[k]) == 0;
        if (!old)
            out = store_fail(st, STORE_ESCHEMA, "%s", now.msgs[i]);
    }
    problem_list_free(&now);
    problem_list_free(&had);
    return out;
}

int store_schema_warnings(store *st, void (*cb)(void *user_data, const char *message),
                          void *user_data)
{
    int64_t version = 0;
    int out = store_meta_get(st, "schema_version", &version);
    if (out != 0 || version == 0)
        return out;
    char *sql = NULL;
    out = recorded_schema_sql(st, version, &sql);
    char err[512];
    if (out == 0 && schema_replica_problems(sql, cb, user_data, err, sizeof err) != 0)
        out = store_fail(st, STORE_EIO, "the store's schema cannot be read: %s", err);
    free(sql);
    for (int64_t v = 2; out == 0 && v <= version; v++)
        out = upgrade_drift(st, v, cb, user_data);
    return out;
}

static int init_schema(store *st, const char *schema_sql, const char *policy_text,
                       package_forms *forms)
{
    schema_def def;
    int out = parse_and_begin(st, schema_sql, policy_text, &def, forms);
    if (out != 0)
        goto done;
    int64_t version = 0;
    out = store_meta_get(st, "schema_version", &version);
    if (out == 0 && version != 0)
        out = store_fail(st, STORE_EEXISTS,
                         "the store already has a schema (version %lld); use upgrade",
                         (long long)version);
    if (out == 0 && !forms->replay)
        out = refuse_replica_problems(st, schema_sql, NULL);
    for (uint32_t i = 0; out == 0 && i < def.n_tables; i++)
        out = create_table(st, &def.tables[i], (int64_t)i + 1, 1);
    uint32_t n_indexes = 0;
    if (out == 0)
        out = create_indexes(st, &def, &n_indexes);
    if (out == 0)
        out = record_version(st, 1, schema_sql, policy_text);
    if (out == 0 && forms->json != NULL)
        out = store_forms_record(st, 1, forms->json);
    bool new_watch = false;
    if (out == 0 && forms->watch_json != NULL)
        out = store_watch_keep_in_tx(st, forms->watch_json, &new_watch);
    if (out == 0 && !forms->check_only)
        out = store_commit(st);
    else
        store_rollback(st);
done:
    schema_def_free(&def);
    return out;
}

/* The old table's columns must be a prefix of the new one's, unchanged; what follows must be
 * addable with ALTER TABLE ADD COLUMN (not part of the key, nullable or defaulted). */
static int check_additive(store *st, const store_table *old, const schema_table *t)
{
    if (t->n_cols < old->n_cols)
        return store_fail(st, STORE_ESCHEMA,
                          "table %s: columns were removed (upgrades may only "
                          "add tables and columns)",
                          old->name);
    for (uint32_t c = 0; c < old->n_cols; c++) {
        if (strcasecmp(old->cols[c], t->cols[c].name) != 0)
            return store_fail(st, STORE_ESCHEMA,
                              "table %s: column %u is %s, was %s (columns may only be appended)",
                              old->name, c, t->cols[c].name, old->cols[c]);
        uint32_t was_pk = 0;
        for (uint32_t k = 0; k < old->n_pk; k++)
            if (old->pk[k] == c)
                was_pk = k + 1;
        if (was_pk != t->cols[c].pk_pos)
            return store_fail(st, STORE_ESCHEMA, "table %s: the primary key changed", old->name);
    }
    if (t->scope_idx != old->scope_idx)
        return store_fail(st, STORE_ESCHEMA, "table %s: the scope column changed", old->name);
    for (uint32_t c = old->n_cols; c < t->n_cols; c++) {
        const schema_col *col = &t->cols[c];
        if (col->pk_pos != 0)
            return store_fail(st, STORE_ESCHEMA, "table %s: new column %s is in the primary key",
                              old->name, col->name);
        if (col->notnull && col->dflt == NULL)
            return store_fail(st, STORE_ESCHEMA,
                              "table %s: new column %s is NOT NULL without a DEFAULT", old->name,
                              col->name);
    }
    return 0;
}

/* The central table's column types and defaults must stay what they were: compare against
 * what SQLite reports for the live table (on PostgreSQL, whose synced columns are BYTEA, for the
 * table as its recorded CREATE TABLE makes it). */
static int check_same_columns(store *st, const store_table *old, const schema_table *t)
{
    sqlite3_stmt *stmt = NULL;
    sqlite3 *db = st->db, *recorded = NULL;
    if (store_engine_of(st) == DB_POSTGRESQL) {
        int orc = sqlite3_open_v2(":memory:", &recorded,
                                  SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, NULL);
        if (orc == SQLITE_OK)
            orc = sqlite3_exec(recorded, old->create_sql, NULL, NULL, NULL);
        if (orc != SQLITE_OK) {
            sqlite3_close(recorded);
            return store_fail(st, STORE_EIO, "table %s: the recorded schema cannot be read",
                              old->name);
        }
        db = recorded;
    }
    int rc = sqlite3_prepare_v2(db,
                                "SELECT type, \"notnull\", dflt_value FROM pragma_table_info(?1)"
                                " ORDER BY cid",
                                -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 1, old->name, -1, SQLITE_STATIC);
    int out = 0;
    for (uint32_t c = 0; rc == SQLITE_OK && c < old->n_cols; c++) {
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
            break;
        rc = SQLITE_OK;
        const char *type = (const char *)sqlite3_column_text(stmt, 0);
        const char *dflt = (const char *)sqlite3_column_text(stmt, 2);
        const schema_col *col = &t->cols[c];
        bool same_dflt = (dflt == NULL && col->dflt == NULL) ||
                         (dflt != NULL && col->dflt != NULL && strcmp(dflt, col->dflt) == 0);
        if (strcasecmp(type ? type : "", col->type) != 0 ||
            (sqlite3_column_int(stmt, 1) != 0) != col->notnull || !same_dflt) {
            out = store_fail(st, STORE_ESCHEMA,
                             "table %s: column %s changed its type, NOT NULL or DEFAULT "
                             "(upgrades may only add)",
                             old->name, col->name);
            break;
        }
    }
    if (out == 0 && rc != SQLITE_OK && rc != SQLITE_ROW)
        out = store_fail(st, STORE_EIO, "read table columns: %s", sqlite3_errmsg(db));
    sqlite3_finalize(stmt);
    sqlite3_close(recorded);
    return out;
}

/* The table's new statement must be its old one with plain column definitions appended
 * (schema_appended_only): what the store and existing devices add is what fresh devices get. */
static int check_appended_only(store *st, const store_table *old, const schema_table *t)
{
    char err[600];
    int out = schema_appended_only(old->create_sql, t, old->n_cols, err, sizeof err);
    return out == 0 ? 0 : store_fail(st, out, "%s", err);
}

/* A new column's default on PostgreSQL: the value SQLite would give the existing rows (the
 * default expression with the column's type affinity: '7' into an INTEGER column is 7), as
 * the BYTEA expression of its encoding, or "" when the column has none. */
static int pg_default(store *st, const schema_table *t, const schema_col *col, char *out,
                      size_t out_size)
{
    out[0] = 0;
    if (col->dflt == NULL)
        return 0;
    char sql[SQL_MAX];
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    store_arena arena = {0};
    store_bytes enc = {0};
    proto_value v;
    int n = snprintf(sql, sizeof sql,
                     "CREATE TABLE d(x %s DEFAULT %s); INSERT INTO d DEFAULT VALUES;", col->type,
                     col->dflt);
    int rc = n > 0 && (size_t)n < sizeof sql ? SQLITE_OK : SQLITE_TOOBIG;
    if (rc == SQLITE_OK)
        rc = sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "SELECT x FROM d", -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt) == SQLITE_ROW ? SQLITE_OK : SQLITE_ERROR;
    int out_rc = rc == SQLITE_OK ? store_value_column(&arena, stmt, 0, &v) : STORE_ESCHEMA;
    if (out_rc == 0 && v.type != PROTO_NULL)
        out_rc = store_values_encode(&v, 1, &enc);
    if (out_rc == 0 && v.type != PROTO_NULL && 24 + 2 * enc.len < out_size) {
        size_t at = (size_t)snprintf(out, out_size, " DEFAULT decode('");
        for (size_t i = 0; i < enc.len; i++)
            at += (size_t)snprintf(out + at, out_size - at, "%02x", enc.data[i]);
        snprintf(out + at, out_size - at, "', 'hex')");
    } else if (out_rc == 0 && v.type != PROTO_NULL) {
        out_rc = STORE_ESCHEMA;
    }
    if (out_rc != 0)
        store_fail(st, out_rc == STORE_ENOMEM ? STORE_ENOMEM : STORE_ESCHEMA,
                   "table %s: the default of new column %s cannot be kept", t->name, col->name);
    store_bytes_free(&enc);
    store_arena_free(&arena);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return out_rc == STORE_ENOMEM ? STORE_ENOMEM : out_rc != 0 ? STORE_ESCHEMA : 0;
}

/* A schema name quoted for the store's engine: as given on SQLite, folded to lower case on
 * PostgreSQL (as create_table_postgresql names tables and columns). */
static int quote_name(store *st, char *out, size_t out_size, const char *name)
{
    char folded[512];
    if (store_engine_of(st) != DB_POSTGRESQL)
        return store_quote_ident(out, out_size, name);
    size_t n = strlen(name);
    if (n >= sizeof folded)
        return STORE_EINVAL;
    for (size_t i = 0; i <= n; i++)
        folded[i] = (char)tolower((unsigned char)name[i]);
    return store_quote_ident(out, out_size, folded);
}

int store_quote_name(store *st, char *out, size_t out_size, const char *name)
{
    return quote_name(st, out, out_size, name);
}

static int add_columns(store *st, const store_table *old, const schema_table *t)
{
    char sql[SQL_MAX], table_q[512], col_q[512];
    if (quote_name(st, table_q, sizeof table_q, old->name) != 0)
        return store_fail(st, STORE_ESCHEMA, "table name too long");
    for (uint32_t c = old->n_cols; c < t->n_cols; c++) {
        const schema_col *col = &t->cols[c];
        if (quote_name(st, col_q, sizeof col_q, col->name) != 0)
            return store_fail(st, STORE_ESCHEMA, "column name too long");
        int n;
        if (store_engine_of(st) == DB_POSTGRESQL) {
            /* As create_table_postgresql names and types it. */
            char dflt[SQL_MAX / 2];
            int out = pg_default(st, t, col, dflt, sizeof dflt);
            if (out != 0)
                return out;
            n = snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s BYTEA%s%s", table_q,
                         col_q, col->notnull ? " NOT NULL" : "", dflt);
        } else {
            n = snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s %s%s%s%s", table_q, col_q,
                         col->type, col->notnull ? " NOT NULL" : "",
                         col->dflt ? " DEFAULT " : "", col->dflt ? col->dflt : "");
        }
        if (n < 0 || (size_t)n >= sizeof sql)
            return store_fail(st, STORE_ESCHEMA, "table %s: column definition too long", old->name);
        int out = store_exec(st, sql, "add column");
        if (out != 0)
            return out;
    }
    return 0;
}

int store_init_schema(store *st, const char *schema_sql, const char *policy_text)
{
    package_forms forms = {.given = false};
    return init_schema(st, schema_sql, policy_text, &forms);
}

int store_init_schema_forms(store *st, const char *schema_sql, const char *policy_text,
                            const store_form_file *files, size_t n_files)
{
    package_forms forms = {.given = true, .files = files, .n_files = n_files};
    int out = init_schema(st, schema_sql, policy_text, &forms);
    free((char *)forms.json);
    return out;
}

/* Whether json differs from the forms kept for version. */
static int forms_changed(store *st, uint32_t version, const char *json, bool *out_changed)
{
    char *kept = NULL;
    int out = store_forms_at(st, version, &kept);
    *out_changed = out == 0 && strcmp(kept, json) != 0;
    free(kept);
    return out;
}

static int upgrade_schema(store *st, const char *schema_sql, const char *policy_text,
                          package_forms *forms)
{
    schema_def def;
    int out = parse_and_begin(st, schema_sql, policy_text, &def, forms);
    if (out != 0)
        goto done;
    st->schema_version = 0; /* force a reload inside this transaction */
    out = store_tables_load(st);
    if (out == 0 && st->n_tables == 0)
        out = store_fail(st, STORE_ESCHEMA, "the store has no schema yet; use init");
    int64_t version = st->schema_version;
    char *old_sql = NULL;
    if (out == 0)
        out = recorded_schema_sql(st, version, &old_sql);
    if (out == 0 && !forms->replay)
        out = refuse_replica_problems(st, schema_sql, old_sql);
    free(old_sql);
    bool changed = false; /* an identical schema is not a new version */
    for (uint32_t i = 0; out == 0 && i < st->n_tables; i++) {
        const store_table *old = &st->tables[i];
        const schema_table *t = find_def_table(&def, old->name);
        if (t == NULL) {
            out = store_fail(st, STORE_ESCHEMA, "table %s was removed (upgrades may only add)",
                             old->name);
            break;
        }
        out = check_additive(st, old, t);
        if (out == 0)
            out = check_same_columns(st, old, t);
        if (out == 0 && !forms->replay)
            out = check_appended_only(st, old, t);
        if (out == 0)
            out = add_columns(st, old, t);
        if (out == 0)
            out = record_table(st, t, old->id, old->n_cols, (uint32_t)version + 1);
        changed = changed || t->n_cols > old->n_cols || t->policy != old->policy;
    }
    int64_t next_id = 1;
    for (uint32_t i = 0; i < st->n_tables; i++)
        if (st->tables[i].id >= next_id)
            next_id = st->tables[i].id + 1;
    for (uint32_t k = 0; out == 0 && k < def.n_tables; k++) {
        bool known = false;
        for (uint32_t i = 0; i < st->n_tables; i++)
            known = known || strcasecmp(st->tables[i].name, def.tables[k].name) == 0;
        if (known)
            continue;
        out = create_table(st, &def.tables[k], next_id++, (uint32_t)version + 1);
        changed = true;
    }
    uint32_t n_indexes = 0;
    if (out == 0)
        out = create_indexes(st, &def, &n_indexes);
    changed = changed || n_indexes > 0;
    bool new_forms = false;
    if (out == 0 && forms->json != NULL)
        out = forms_changed(st, (uint32_t)version, forms->json, &new_forms);
    changed = changed || new_forms;
    /* Changed watch rules alone are a new version too: devices get them with the schema. */
    bool new_watch = false;
    if (out == 0 && forms->watch_json != NULL)
        out = store_watch_keep_in_tx(st, forms->watch_json, &new_watch);
    changed = changed || new_watch;
    if (out == 0 && changed)
        out = record_version(st, (uint32_t)version + 1, schema_sql, policy_text);
    if (out == 0 && changed && forms->json != NULL)
        out = store_forms_record(st, (uint32_t)version + 1, forms->json);
    if (out == 0 && changed && !forms->check_only)
        out = store_commit(st);
    else
        store_rollback(st);
    store_tables_free(st); /* reload from what was committed (or not) on next use */
done:
    schema_def_free(&def);
    return out;
}

int store_upgrade_schema(store *st, const char *schema_sql, const char *policy_text)
{
    package_forms forms = {.given = false};
    return upgrade_schema(st, schema_sql, policy_text, &forms);
}

int store_upgrade_schema_forms(store *st, const char *schema_sql, const char *policy_text,
                               const store_form_file *files, size_t n_files)
{
    package_forms forms = {.given = true, .files = files, .n_files = n_files};
    int out = upgrade_schema(st, schema_sql, policy_text, &forms);
    free((char *)forms.json);
    return out;
}

int store_check_schema_forms(store *st, bool init, const char *schema_sql,
                             const char *policy_text, const store_form_file *files,
                             size_t n_files)
{
    package_forms forms = {.given = true, .files = files, .n_files = n_files, .check_only = true};
    int out = init ? init_schema(st, schema_sql, policy_text, &forms)
                   : upgrade_schema(st, schema_sql, policy_text, &forms);
    free((char *)forms.json);
    return out;
}

int store_schema_package(store *st, bool init, bool check_only, const char *schema_sql,
                         const char *policy_text, const store_form_file *files, size_t n_files,
                         const char *watch_json)
{
    package_forms forms = {.given = true, .files = files, .n_files = n_files,
                           .check_only = check_only, .watch_json = watch_json};
    int out = init ? init_schema(st, schema_sql, policy_text, &forms)
                   : upgrade_schema(st, schema_sql, policy_text, &forms);
    free((char *)forms.json);
    return out;
}

int store_schema_replay(store *st, bool init, const char *schema_sql, const char *policy_text,
                        const char *forms_json)
{
    package_forms forms = {.given = false, .json = forms_json, .replay = true};
    return init ? init_schema(st, schema_sql, policy_text, &forms)
                : upgrade_schema(st, schema_sql, policy_text, &forms);
}

static void table_free(store_table *t)
{
    free(t->name);
    free(t->create_sql);
    for (uint32_t c = 0; c < t->n_cols; c++)
        free(t->cols[c]);
    free(t->cols);
    free(t->pk);
    db_finalize(t->sel_row);
    db_finalize(t->ins_row);
    db_finalize(t->del_row);
    db_finalize(t->ins_rows);
    db_finalize(t->sel_rows);
    memset(t, 0, sizeof *t);
}

void store_tables_free(store *st)
{
    for (uint32_t i = 0; i < st->n_tables; i++)
        table_free(&st->tables[i]);
    free(st->tables);
    st->tables = NULL;
    st->n_tables = 0;
    st->schema_version = 0;
    store_rowcheck_close(st->rowcheck);
    st->rowcheck = NULL;
}

store_table *store_table_find(store *st, const char *name)
{
    for (uint32_t i = 0; i < st->n_tables; i++)
        if (strcmp(st->tables[i].name, name) == 0)
            return &st->tables[i];
    return NULL;
}

store_table *store_table_by_id(store *st, int64_t id)
{
    for (uint32_t i = 0; i < st->n_tables; i++)
        if (st->tables[i].id == id)
            return &st->tables[i];
    return NULL;
}

/* SQLite's affinity rules (datatype3.html 3.1): INT first, then CHAR, CLOB or TEXT. */
static bool decl_is_text(const unsigned char *decl)
{
    char up[128];
    size_t n = 0;
    for (; decl && decl[n] && n + 1 < sizeof up; n++)
        up[n] = (char)toupper(decl[n]);
    up[n] = '\0';
    return strstr(up, "INT") == NULL &&
           (strstr(up, "CHAR") || strstr(up, "CLOB") || strstr(up, "TEXT"));
}

/* The declared type of column col of the table create_sql makes, read by SQLite from the
 * statement itself (a PostgreSQL store keeps synced columns as BYTEA: the admin's declared types
 * live in the statement only). Writes "" when the type cannot be read. */
static void declared_type(const char *create_sql, const char *table, const char *col, char *out,
                          size_t out_size)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    out[0] = 0;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, NULL) ==
            SQLITE_OK &&
        sqlite3_exec(db, create_sql, NULL, NULL, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT type FROM pragma_table_info(?1) WHERE name = ?2", -1,
                           &stmt, NULL) == SQLITE_OK &&
        sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_bind_text(stmt, 2, col, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != NULL)
        snprintf(out, out_size, "%s", (const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

static int load_columns(store *st, store_table *t)
{
    db_stmt *stmt = NULL;
    bool pg = store_engine_of(st) == DB_POSTGRESQL;
    int rc = db_prepare(st->conn,
                        pg ? "SELECT c.name, c.pk_pos FROM _outpost_columns c"
                             " WHERE c.table_id = ?1 ORDER BY c.idx"
                           : "SELECT c.name, c.pk_pos, p.type FROM _outpost_columns c"
                             " LEFT JOIN pragma_table_info(?2) p ON p.name = c.name"
                             " WHERE c.table_id = ?1 ORDER BY c.idx",
                        &stmt);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 1, t->id);
    if (rc == STORE_OK && !pg)
        rc = db_bind_text(stmt, 2, t->name);
    uint32_t pk_pos[64] = {0};
    int out = 0;
    while (rc == STORE_OK && (rc = db_step(stmt)) == DB_ROW) {
        rc = STORE_OK;
        char **cols = realloc(t->cols, (t->n_cols + 1) * sizeof *cols);
        if (cols == NULL)
            goto nomem;
        t->cols = cols;
        t->cols[t->n_cols] = strdup(db_column_text(stmt, 0));
        if (t->cols[t->n_cols] == NULL)
            goto nomem;
        uint32_t pos = (uint32_t)db_column_int64(stmt, 1);
        if (pos > 0 && pos <= 64) {
            pk_pos[pos - 1] = t->n_cols;
            if (pos > t->n_pk)
                t->n_pk = pos;
            char decl[128];
            if (pg)
                declared_type(t->create_sql, t->name, t->cols[t->n_cols], decl, sizeof decl);
            else
                snprintf(decl, sizeof decl, "%s",
                         db_column_is_null(stmt, 2) ? "" : db_column_text(stmt, 2));
            if (decl_is_text((const unsigned char *)decl))
                t->pk_text |= (uint64_t)1 << (pos - 1);
        }
        t->n_cols++;
    }
    if (rc != DB_DONE) {
        out = store_fail_db(st, rc, "load columns");
        goto done;
    }
    t->pk = malloc((t->n_pk ? t->n_pk : 1) * sizeof *t->pk);
    if (t->pk == NULL)
        goto nomem;
    memcpy(t->pk, pk_pos, t->n_pk * sizeof *t->pk);
    if (t->n_pk == 0 || t->scope_idx >= t->n_cols)
        out = store_fail(st, STORE_EIO, "table %s: stored schema is damaged", t->name);
    goto done;
nomem:
    out = store_fail(st, STORE_ENOMEM, "out of memory");
done:
    db_finalize(stmt);
    return out;
}

/* PostgreSQL: the row check of schema version (its whole schema, as the admin gave it). */
static int rowcheck_load(store *st, int64_t version)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn,
                        "SELECT schema_sql FROM _outpost_schema_versions WHERE version = ?1", &stmt);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 1, version);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    if (rc != DB_ROW) {
        db_finalize(stmt);
        return rc == DB_DONE ? store_fail(st, STORE_EIO, "schema version %lld is not recorded",
                                          (long long)version)
                             : store_fail_db(st, rc, "load schema");
    }
    char err[256];
    rc = store_rowcheck_open(db_column_text(stmt, 0), &st->rowcheck, err, sizeof err);
    db_finalize(stmt);
    return rc == 0 ? 0 : store_fail(st, rc, "schema's row check: %s", err);
}

int store_tables_load(store *st)
{
    int64_t version = 0;
    int out = store_meta_get(st, "schema_version", &version);
    if (out != 0)
        return out;
    if (st->schema_version == (uint32_t)version && st->tables != NULL)
        return 0;
    store_tables_free(st);
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn,
                        "SELECT id, name, create_sql, scope_col, policy"
                        " FROM _outpost_tables ORDER BY id",
                        &stmt);
    while (rc == STORE_OK && (rc = db_step(stmt)) == DB_ROW) {
        rc = STORE_OK;
        store_table *ts = realloc(st->tables, (st->n_tables + 1) * sizeof *ts);
        if (ts == NULL) {
            out = store_fail(st, STORE_ENOMEM, "out of memory");
            goto done;
        }
        st->tables = ts;
        store_table *t = &st->tables[st->n_tables++];
        memset(t, 0, sizeof *t);
        t->id = db_column_int64(stmt, 0);
        t->name = strdup(db_column_text(stmt, 1));
        t->create_sql = strdup(db_column_text(stmt, 2));
        t->scope_idx = (uint32_t)db_column_int64(stmt, 3);
        t->policy = (proto_policy)db_column_int64(stmt, 4);
        t->author_idx = load_author(st, t->id);
        if (t->name == NULL || t->create_sql == NULL) {
            out = store_fail(st, STORE_ENOMEM, "out of memory");
            goto done;
        }
        out = load_columns(st, t);
        if (out != 0)
            goto done;
    }
    if (rc != DB_DONE) {
        out = store_fail_db(st, rc, "load tables");
        goto done;
    }
    if (store_engine_of(st) == DB_POSTGRESQL && st->n_tables > 0)
        out = rowcheck_load(st, version);
    if (out != 0)
        goto done;
    st->schema_version = (uint32_t)version;
done:
    db_finalize(stmt);
    if (out != 0)
        store_tables_free(st);
    return out;
}

/* Appends text to sql at *at; false when it does not fit. */
static bool sql_add(char *sql, size_t *at, const char *text)
{
    size_t n = strlen(text);
    if (*at + n + 1 > SQL_MAX)
        return false;
    memcpy(sql + *at, text, n + 1);
    *at += n;
    return true;
}

static bool sql_add_pk_where(store *st, char *sql, size_t *at, const store_table *t,
                             int first_param)
{
    char q[512], part[600];
    /* IS on SQLite, where a key column may hold NULL; = on PostgreSQL, whose IS compares with
     * NULL only (its keys are never NULL) */
    const char *eq = store_engine_of(st) == DB_POSTGRESQL ? "=" : "IS";
    bool ok = sql_add(sql, at, " WHERE ");
    for (uint32_t k = 0; ok && k < t->n_pk; k++) {
        ok = quote_name(st, q, sizeof q, t->cols[t->pk[k]]) == 0;
        snprintf(part, sizeof part, "%s%s %s ?%d", k ? " AND " : "", q, eq, first_param + (int)k);
        ok = ok && sql_add(sql, at, part);
    }
    return ok;
}

int store_table_prepare(store *st, store_table *t)
{
    if (t->sel_row != NULL)
        return 0;
    char sql[SQL_MAX], q[512], tq[512], part[600];
    size_t at = 0;
    bool ok = quote_name(st, tq, sizeof tq, t->name) == 0 && sql_add(sql, &at, "SELECT ");
    for (uint32_t c = 0; ok && c < t->n_cols; c++) {
        ok = quote_name(st, q, sizeof q, t->cols[c]) == 0;
        snprintf(part, sizeof part, "%s%s", c ? ", " : "", q);
        ok = ok && sql_add(sql, &at, part);
    }
    ok = ok && sql_add(sql, &at, " FROM ") && sql_add(sql, &at, tq) &&
         sql_add_pk_where(st, sql, &at, t, 1);
    int rc = ok ? db_prepare(st->conn, sql, &t->sel_row) : STORE_EINVAL;

    at = 0;
    ok =
        sql_add(sql, &at, "INSERT INTO ") && sql_add(sql, &at, tq) && sql_add(sql, &at, " VALUES(");
    for (uint32_t c = 0; ok && c < t->n_cols; c++) {
        snprintf(part, sizeof part, "%s?%u", c ? ", " : "", c + 1);
        ok = sql_add(sql, &at, part);
    }
    ok = ok && sql_add(sql, &at, ")");
    if (rc == STORE_OK)
        rc = ok ? db_prepare(st->conn, sql, &t->ins_row) : STORE_EINVAL;

    at = 0;
    ok = sql_add(sql, &at, "DELETE FROM ") && sql_add(sql, &at, tq) &&
         sql_add_pk_where(st, sql, &at, t, 1);
    if (rc == STORE_OK)
        rc = ok ? db_prepare(st->conn, sql, &t->del_row) : STORE_EINVAL;
    if (rc != STORE_OK) {
        db_finalize(t->sel_row);
        db_finalize(t->ins_row);
        db_finalize(t->del_row);
        t->sel_row = t->ins_row = t->del_row = NULL;
        if (rc == STORE_EINVAL)
            return store_fail(st, rc, "table %s: statement too long", t->name);
        return store_fail_db(st, rc, "prepare table statements");
    }
    return 0;
}

int store_schema_encode(store *st, proto_buf *out, uint32_t *out_version)
{
    int rc = store_tables_load(st);
    if (rc != 0)
        return rc;
    proto_msg msg;
    memset(&msg, 0, sizeof msg);
    msg.type = PROTO_MSG_SCHEMA;
    proto_schema_table *tables = calloc(st->n_tables ? st->n_tables : 1, sizeof *tables);
    if (tables == NULL)
        return store_fail(st, STORE_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < st->n_tables; i++) {
        const store_table *t = &st->tables[i];
        tables[i].name = t->name;
        tables[i].create_sql = t->create_sql;
        tables[i].scope_col = t->cols[t->scope_idx];
        tables[i].policy = t->policy;
        tables[i].n_columns = t->n_cols;
        tables[i].columns = (const char **)t->cols;
        tables[i].n_pk = t->n_pk;
        tables[i].pk = t->pk;
    }
    msg.u.schema.version = st->schema_version;
    msg.u.schema.n_tables = st->n_tables;
    msg.u.schema.tables = tables;
    char *forms = NULL;
    char *watch = NULL; /* the watch rules travel with the schema (docs/watch.md) */
    rc = store_forms_at(st, st->schema_version, &forms);
    if (rc == 0)
        rc = store_watch_json(st, &watch);
    if (rc != 0) {
        free(tables);
        return rc;
    }
    msg.u.schema.forms = strcmp(forms, "[]") != 0 ? forms : NULL;
    msg.u.schema.watch_json = watch;
    int prc = proto_encode(&msg, out);
    free(forms);
    free(watch);
    free(tables);
    if (prc != PROTO_OK)
        return store_fail(st, prc == PROTO_ENOMEM ? STORE_ENOMEM : STORE_EIO, "encode schema: %s",
                          proto_strerror(prc));
    if (out_version != NULL)
        *out_version = st->schema_version;
    return 0;
}
