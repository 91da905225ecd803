/* The central store as SQLite reads it, on either engine (central_db.h). */
#include "central_db.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db.h"
#include "store_arena.h"
#include "store_values.h"

/* The bookkeeping columns that hold one value of any type (store_sync_ddl's comment). */
static bool any_value_column(const char *name)
{
    static const char *const names[] = {"scope", "scope_old", "scope_new", "losing_value",
                                        "winning_value"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* Binds PostgreSQL column col of s (its data_type kind) to parameter col + 1 of ins; a decoded
 * value's bytes stay in arena until the row is inserted. */
static int copy_value(store_arena *arena, db_stmt *s, int col, char kind, sqlite3_stmt *ins)
{
    int idx = col + 1;
    if (db_column_is_null(s, col))
        return sqlite3_bind_null(ins, idx);
    switch (kind) {
    case 'i':
        return sqlite3_bind_int64(ins, idx, db_column_int64(s, col));
    case 'r':
        return sqlite3_bind_double(ins, idx, strtod(db_column_text(s, col), NULL));
    case 'b':
    case 'v': {
        size_t n = 0;
        const void *p = db_column_blob(s, col, &n);
        if (kind == 'b')
            return sqlite3_bind_blob(ins, idx, p, (int)n, SQLITE_TRANSIENT);
        proto_value v;
        uint32_t got = 0;
        return store_values_decode(arena, p, n, &v, 1, &got) == 0 && got == 1
                   ? store_value_bind(ins, idx, &v)
                   : SQLITE_CORRUPT;
    }
    default:
        return sqlite3_bind_text(ins, idx, db_column_text(s, col), -1, SQLITE_TRANSIENT);
    }
}

/* Copies PostgreSQL table `table` into db under the same name and columns, declared without a
 * type so that SQLite keeps every value's own type. synced: every column is an encoded value. */
static int copy_table(db_conn *pg, sqlite3 *db, const char *table, bool synced)
{
    enum { MAX_COLS = 64 };
    char names[MAX_COLS][64], kinds[MAX_COLS];
    char create[4096], select[4096], insert[4096];
    int n = 0, rc = -1;
    db_stmt *s = NULL;
    sqlite3_stmt *ins = NULL;
    store_arena arena = {0};

    if (db_prepare(pg,
                   "SELECT column_name, data_type FROM information_schema.columns"
                   " WHERE table_schema = current_schema() AND table_name = ?1"
                   " ORDER BY ordinal_position",
                   &s) != 0 ||
        db_bind_text(s, 1, table) != 0)
        goto done;
    while (n < MAX_COLS && db_step(s) == DB_ROW) {
        const char *type = db_column_text(s, 1);
        snprintf(names[n], sizeof names[n], "%s", db_column_text(s, 0));
        if (strcmp(type, "bytea") == 0)
            kinds[n] = synced || any_value_column(names[n]) ? 'v' : 'b';
        else if (strcmp(type, "bigint") == 0 || strcmp(type, "integer") == 0 ||
                 strcmp(type, "smallint") == 0)
            kinds[n] = 'i';
        else if (strcmp(type, "double precision") == 0 || strcmp(type, "real") == 0)
            kinds[n] = 'r';
        else
            kinds[n] = 't';
        n++;
    }
    db_finalize(s);
    s = NULL;
    int c = snprintf(create, sizeof create, "CREATE TABLE \"%s\"(", table);
    int l = snprintf(select, sizeof select, "SELECT ");
    int k = snprintf(insert, sizeof insert, "INSERT INTO \"%s\" VALUES(", table);
    for (int i = 0; i < n; i++) {
        c += snprintf(create + c, sizeof create - (size_t)c, "%s\"%s\"", i ? ", " : "", names[i]);
        l += snprintf(select + l, sizeof select - (size_t)l, "%s\"%s\"", i ? ", " : "", names[i]);
        k += snprintf(insert + k, sizeof insert - (size_t)k, "%s?", i ? ", " : "");
    }
    snprintf(create + c, sizeof create - (size_t)c, ")");
    snprintf(select + l, sizeof select - (size_t)l, " FROM \"%s\"", table);
    snprintf(insert + k, sizeof insert - (size_t)k, ")");
    if (n == 0 || sqlite3_exec(db, create, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, insert, -1, &ins, NULL) != SQLITE_OK ||
        db_prepare(pg, select, &s) != 0)
        goto done;
    int step;
    while ((step = db_step(s)) == DB_ROW) {
        bool ok = true;
        for (int i = 0; i < n && ok; i++)
            ok = copy_value(&arena, s, i, kinds[i], ins) == SQLITE_OK;
        ok = ok && sqlite3_step(ins) == SQLITE_DONE;
        sqlite3_reset(ins);
        store_arena_free(&arena);
        if (!ok)
            goto done;
    }
    rc = step == DB_DONE ? 0 : -1;
done:
    if (rc != 0)
        fprintf(stderr, "copying the central table %s: %s / %s\n", table, db_errmsg(pg),
                sqlite3_errmsg(db));
    db_finalize(s);
    sqlite3_finalize(ins);
    return rc;
}

int central_db_open(const daemon_fixture *fx, sqlite3 **out_db)
{
    enum { MAX_TABLES = 128 };
    char tables[MAX_TABLES][64];
    bool synced[MAX_TABLES];
    int n = 0, rc = -1;
    db_conn *pg = NULL;
    db_stmt *s = NULL;
    sqlite3 *db = NULL;
    char err[256];

    *out_db = NULL;
    if (!fx->conninfo[0]) {
        if (sqlite3_open_v2(fx->store_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
            fprintf(stderr, "central store %s: %s\n", fx->store_path, sqlite3_errmsg(db));
            sqlite3_close(db);
            return -1;
        }
        sqlite3_busy_timeout(db, 10000);
        *out_db = db;
        return 0;
    }
    if (db_open_postgresql(fx->conninfo, &pg, err, sizeof err) != 0) {
        fprintf(stderr, "central store on PostgreSQL: %s\n", err);
        return -1;
    }
    /* One snapshot for every table. */
    if (sqlite3_open(":memory:", &db) != SQLITE_OK || db_begin(pg, false) != 0 ||
        db_prepare(pg,
                   "SELECT t.table_name, EXISTS (SELECT 1 FROM _outpost_tables o"
                   " WHERE o.name = t.table_name) FROM information_schema.tables t"
                   " WHERE t.table_schema = current_schema() AND t.table_type = 'BASE TABLE'",
                   &s) != 0)
        goto done;
    while (n < MAX_TABLES && db_step(s) == DB_ROW) {
        snprintf(tables[n], sizeof tables[n], "%s", db_column_text(s, 0));
        synced[n] = strcmp(db_column_text(s, 1), "t") == 0;
        n++;
    }
    db_finalize(s);
    s = NULL;
    for (int i = 0; i < n; i++)
        if (copy_table(pg, db, tables[i], synced[i]) != 0)
            goto done;
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "central store on PostgreSQL: %s\n", db_errmsg(pg));
    db_finalize(s);
    db_rollback(pg);
    db_close(pg);
    if (rc != 0)
        sqlite3_close(db);
    else
        *out_db = db;
    return rc;
}
