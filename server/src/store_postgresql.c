/*
 * Opening a store kept in PostgreSQL: the connection, the store's base tables (made once, by
 * whichever process comes first), the format check and the identity. The modules that speak
 * the database seam (db.h) then run on it as they do on SQLite. Also the few catalog lookups
 * those modules need on either engine (store_table_exists).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

static int open_fail(store *st, int rc, char *err, size_t err_size, const char *what)
{
    if (err != NULL && err_size > 0)
        snprintf(err, err_size, "%s: %s", what, st->errmsg);
    return rc;
}

/* Is there an Outpost store in this database (its metadata table)? */
static int store_present(store *st, bool *out_present)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn, "SELECT to_regclass('_outpost_meta') IS NOT NULL", &stmt);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    if (rc == DB_ROW) {
        *out_present = db_column_int64(stmt, 0) != 0;
        rc = STORE_OK;
    }
    db_finalize(stmt);
    return rc == STORE_OK ? STORE_OK : store_fail_db(st, rc, "look for the store's tables");
}

/* SQL functions that read a synced column's encoded value (store_values.c: one type byte, 1
 * NULL, 2 INTEGER then 8 bytes big-endian two's complement, 3 REAL then the 8 bytes of the IEEE
 * 754 double big-endian, 4 TEXT and 5 BLOB then a 4-byte big-endian length and the bytes; a
 * SQL NULL column is NULL), so that an administrator can report from psql. Bodies are quoted
 * text: the seam's rewriting leaves them alone. */
static const char value_functions_ddl[] =
    "CREATE OR REPLACE FUNCTION outpost_value_type(v BYTEA) RETURNS TEXT"
    " LANGUAGE sql IMMUTABLE STRICT AS 'SELECT CASE get_byte(v, 0) WHEN 1 THEN ''null''"
    " WHEN 2 THEN ''integer'' WHEN 3 THEN ''real'' WHEN 4 THEN ''text'' WHEN 5 THEN ''blob''"
    " END';"
    "CREATE OR REPLACE FUNCTION outpost_value_integer(v BYTEA) RETURNS BIGINT"
    " LANGUAGE sql IMMUTABLE STRICT AS 'SELECT CASE get_byte(v, 0) WHEN 2 THEN"
    " (''x'' || encode(substring(v FROM 2 FOR 8), ''hex''))::bit(64)::bigint END';"
    "CREATE OR REPLACE FUNCTION outpost_value_real(v BYTEA) RETURNS DOUBLE PRECISION"
    " LANGUAGE sql IMMUTABLE STRICT AS 'SELECT CASE get_byte(v, 0)"
    " WHEN 2 THEN outpost_value_integer(v)::double precision"
    " WHEN 3 THEN (SELECT CASE WHEN e = 2047 AND m = 0 AND s = 1 THEN ''-Infinity''::double precision"
    "  WHEN e = 2047 AND m = 0 THEN ''Infinity''::double precision"
    "  WHEN e = 2047 THEN ''NaN''::double precision"
    "  WHEN e = 0 THEN (1 - 2 * s) * (m::double precision / 4503599627370496)"
    "   * power(2::double precision, -1022)"
    "  ELSE (1 - 2 * s) * (1 + m::double precision / 4503599627370496)"
    "   * power(2::double precision, e - 1023) END"
    "  FROM (SELECT (b >> 63) & 1 AS s, (b >> 52) & 2047 AS e, b & 4503599627370495 AS m"
    "   FROM (SELECT (''x'' || encode(substring(v FROM 2 FOR 8), ''hex''))::bit(64)::bigint"
    "    AS b) AS bits) AS parts) END';"
    "CREATE OR REPLACE FUNCTION outpost_value_text(v BYTEA) RETURNS TEXT"
    " LANGUAGE sql IMMUTABLE STRICT AS 'SELECT CASE get_byte(v, 0)"
    " WHEN 2 THEN outpost_value_integer(v)::text WHEN 3 THEN outpost_value_real(v)::text"
    " WHEN 4 THEN convert_from(substring(v FROM 6), ''UTF8'')"
    " WHEN 5 THEN ''\\x'' || encode(substring(v FROM 6), ''hex'') END';";

/* Makes the base tables, the identity table and the merge engine's tables in one write
 * transaction: several processes opening a new database at once take turns, and the later ones
 * find the tables made. */
static int tables_make(store *st)
{
    int out = store_begin(st, true);
    if (out == STORE_OK)
        out = store_exec(st, store_base_ddl, "make the store's tables");
    if (out == STORE_OK)
        out = store_exec(st, store_identity_ddl, "make the store's identity table");
    if (out == STORE_OK)
        out = store_exec(st, store_sync_ddl, "make the merge engine's tables");
    if (out == STORE_OK)
        out = store_exec(st, value_functions_ddl, "make the value-reading functions");
    if (out == STORE_OK)
        return store_commit(st);
    store_rollback(st);
    return out;
}

/* Are all the tables and indexes a DDL text makes ("... IF NOT EXISTS name") there already? A
 * command on an existing store then runs no DDL (a role with only DML rights can run it); a
 * store made by an older build still gets the tables added since. */
static int ddl_made(store *st, const char *ddl, bool *out_made)
{
    static const char marker[] = "IF NOT EXISTS ";
    *out_made = true;
    for (const char *p = strstr(ddl, marker); p != NULL && *out_made; p = strstr(p, marker)) {
        char name[64];
        size_t n = 0;
        p += sizeof marker - 1;
        while (n + 1 < sizeof name && (p[n] == '_' || (p[n] >= 'a' && p[n] <= 'z') ||
                                       (p[n] >= '0' && p[n] <= '9')))
            n++;
        memcpy(name, p, n);
        name[n] = 0;
        int rc = store_table_exists(st, name, out_made);
        if (rc != STORE_OK)
            return rc;
    }
    return STORE_OK;
}

int store_exec_ddl(store *st, const char *ddl, const char *what)
{
    bool made = false;
    if (store_engine_of(st) == DB_POSTGRESQL) {
        int rc = ddl_made(st, ddl, &made);
        if (rc != STORE_OK)
            return rc;
    }
    return made ? STORE_OK : store_exec(st, ddl, what);
}

static int tables_made(store *st, bool *out_made)
{
    const char *const ddl[] = {store_base_ddl, store_identity_ddl, store_sync_ddl};
    *out_made = true;
    for (size_t i = 0; i < sizeof ddl / sizeof ddl[0] && *out_made; i++) {
        int rc = ddl_made(st, ddl[i], out_made);
        if (rc != STORE_OK)
            return rc;
    }
    return STORE_OK;
}

static int open_postgresql(const char *conninfo, bool create, bool hold, store **out_store,
                           char *err, size_t err_size);

int store_open_postgresql(const char *conninfo, bool create, store **out_store, char *err,
                          size_t err_size)
{
    return open_postgresql(conninfo, create, false, out_store, err, err_size);
}

int store_create_postgresql(const char *conninfo, store **out_store, char *err, size_t err_size)
{
    return open_postgresql(conninfo, true, true, out_store, err, err_size);
}

int store_create_commit(store *st)
{
    int rc = db_hold_end(st->conn, true);
    return rc == STORE_OK ? STORE_OK : store_fail_db(st, rc, "commit the new store");
}

static int open_postgresql(const char *conninfo, bool create, bool hold, store **out_store,
                           char *err, size_t err_size)
{
    *out_store = NULL;
    if (err != NULL && err_size > 0)
        err[0] = 0;
    if (conninfo == NULL || conninfo[0] == 0) {
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "no PostgreSQL connection string given ([store] conninfo)");
        return STORE_EINVAL;
    }
    store *st = calloc(1, sizeof *st);
    if (st == NULL) {
        if (err != NULL && err_size > 0)
            snprintf(err, err_size, "out of memory");
        return STORE_ENOMEM;
    }
    int out = db_open_postgresql(conninfo, &st->conn, err, err_size);
    if (out != STORE_OK) {
        free(st);
        return out;
    }
    bool present = false;
    int64_t format = 0;
    if (hold) {
        out = db_hold(st->conn);
        if (out != STORE_OK)
            out = store_fail_db(st, out, "begin the new store's transaction");
    }
    if (out == STORE_OK)
        out = store_present(st, &present);
    if (out == STORE_OK && !present && !create)
        out = store_fail(st, STORE_ENOTFOUND,
                         "the database holds no Outpost store (create one with outpost-admin init)");
    bool made = false;
    if (out == STORE_OK && present && !create)
        out = tables_made(st, &made);
    if (out == STORE_OK && !made)
        out = tables_make(st); /* CREATE ... IF NOT EXISTS: also adds tables a newer build has */
    if (out == STORE_OK)
        out = store_meta_get(st, "format", &format);
    if (out == STORE_OK && format != 1)
        out = store_fail(st, STORE_EINVAL, "format %lld, this build reads format 1",
                         (long long)format);
    if (out == STORE_OK)
        out = store_identity_ensure(st, &st->identity_created);
    if (out == STORE_OK)
        out = store_place_open(st);
    if (out == STORE_OK)
        out = store_lifecycle_ensure(st);
    if (out == STORE_OK && create)
        out = store_users_ensure(st); /* made by init, for a runtime role without DDL rights */
    if (out != STORE_OK) {
        open_fail(st, out, err, err_size, "cannot open the PostgreSQL store");
        store_close(st);
        return out;
    }
    *out_store = st;
    return STORE_OK;
}

int store_table_exists(store *st, const char *name, bool *out_exists)
{
    db_stmt *stmt = NULL;
    *out_exists = false;
    int rc = db_prepare(st->conn,
                        store_engine_of(st) == DB_POSTGRESQL
                            ? "SELECT to_regclass(CAST(?1 AS TEXT)) IS NOT NULL"
                            : "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                              " AND name = ?1",
                        &stmt);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 1, name);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    if (rc == DB_ROW) {
        *out_exists = db_column_int64(stmt, 0) != 0;
        rc = STORE_OK;
    }
    db_finalize(stmt);
    return rc == STORE_OK ? STORE_OK : store_fail_db(st, rc, "look for a table");
}

int store_engine_of(const store *st)
{
    return (int)db_engine_of(st->conn);
}

bool store_unreachable(const store *st)
{
    return st != NULL && st->conn != NULL && db_unreachable(st->conn);
}
