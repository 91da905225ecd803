/*
 * The database seam (db.h): the calls every store module makes, dispatched to the engine, and
 * the SQLite side, which is SQLite's own API almost one for one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"
#include "store.h"

int db_fail(db_conn *d, int rc, const char *what)
{
    snprintf(d->errmsg, sizeof d->errmsg, "%s", what);
    return rc;
}

static int lite_rc(db_conn *d, int rc)
{
    snprintf(d->errmsg, sizeof d->errmsg, "%s", sqlite3_errmsg(d->lite));
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return STORE_ENOMEM;
    case SQLITE_FULL:
        return STORE_EFULL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_EBUSY;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
            return STORE_EEXISTS;
        if (rc == SQLITE_CONSTRAINT_TRIGGER) /* a trigger's refusal: not the row's constraint */
            return STORE_EIO;
        return STORE_ECONSTRAINT;
    case SQLITE_MISMATCH:
        return STORE_ECONSTRAINT;
    default:
        return STORE_EIO;
    }
}

int db_wrap_sqlite(sqlite3 *handle, db_conn **out_db)
{
    db_conn *d = calloc(1, sizeof *d);
    *out_db = NULL;
    if (d == NULL)
        return STORE_ENOMEM;
    d->engine = DB_SQLITE;
    d->lite = handle;
    sqlite3_extended_result_codes(handle, 1);
    *out_db = d;
    return 0;
}

void db_close(db_conn *d)
{
    if (d == NULL)
        return;
    if (d->pg != NULL)
        PQfinish(d->pg);
    free(d);
}

db_engine db_engine_of(const db_conn *d)
{
    return d->engine;
}

const char *db_errmsg(const db_conn *d)
{
    return d->errmsg;
}

int db_exec(db_conn *d, const char *sql)
{
    if (d->engine == DB_POSTGRESQL)
        return db_pg_exec(d, sql);
    int rc = sqlite3_exec(d->lite, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : lite_rc(d, rc);
}

int db_prepare(db_conn *d, const char *sql, db_stmt **out_stmt)
{
    db_stmt *s = calloc(1, sizeof *s);
    int rc;

    *out_stmt = NULL;
    if (s == NULL)
        return db_fail(d, STORE_ENOMEM, "out of memory");
    s->d = d;
    s->row = -1;
    if (d->engine == DB_POSTGRESQL) {
        rc = db_pg_prepare(d, sql, s);
    } else {
        /* persistent: most statements are kept for the connection's life */
        rc = sqlite3_prepare_v3(d->lite, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->lite, NULL);
        rc = rc == SQLITE_OK ? 0 : lite_rc(d, rc);
    }
    if (rc != 0) {
        db_finalize(s);
        return rc;
    }
    *out_stmt = s;
    return 0;
}

int db_bind_int64(db_stmt *s, int idx, int64_t value)
{
    if (s->d->engine == DB_POSTGRESQL) {
        char text[24];
        int n = snprintf(text, sizeof text, "%lld", (long long)value);
        return db_pg_bind(s, idx, text, n, 0, 20 /* int8 */);
    }
    int rc = sqlite3_bind_int64(s->lite, idx, value);
    return rc == SQLITE_OK ? 0 : lite_rc(s->d, rc);
}

int db_bind_text(db_stmt *s, int idx, const char *text)
{
    if (text == NULL)
        return db_bind_null(s, idx);
    if (s->d->engine == DB_POSTGRESQL)
        return db_pg_bind(s, idx, text, (int)strlen(text), 0, 25 /* text */);
    int rc = sqlite3_bind_text(s->lite, idx, text, -1, SQLITE_TRANSIENT);
    return rc == SQLITE_OK ? 0 : lite_rc(s->d, rc);
}

int db_bind_blob(db_stmt *s, int idx, const void *data, size_t n_bytes)
{
    if (n_bytes > INT32_MAX)
        return db_fail(s->d, STORE_EINVAL, "value too large");
    if (s->d->engine == DB_POSTGRESQL)
        return db_pg_bind(s, idx, n_bytes ? data : "", (int)n_bytes, 1, 17 /* bytea */);
    int rc = sqlite3_bind_blob(s->lite, idx, n_bytes ? data : "", (int)n_bytes, SQLITE_TRANSIENT);
    return rc == SQLITE_OK ? 0 : lite_rc(s->d, rc);
}

int db_bind_text_static(db_stmt *s, int idx, const char *text, size_t n_bytes)
{
    if (n_bytes > INT32_MAX)
        return db_fail(s->d, STORE_EINVAL, "value too large");
    if (s->d->engine == DB_POSTGRESQL)
        return db_pg_bind(s, idx, text, (int)n_bytes, 0, 25 /* text */);
    int rc = sqlite3_bind_text(s->lite, idx, text, (int)n_bytes, SQLITE_STATIC);
    return rc == SQLITE_OK ? 0 : lite_rc(s->d, rc);
}

int db_bind_blob_static(db_stmt *s, int idx, const void *data, size_t n_bytes)
{
    if (n_bytes > INT32_MAX)
        return db_fail(s->d, STORE_EINVAL, "value too large");
    if (s->d->engine == DB_POSTGRESQL)
        return db_pg_bind(s, idx, n_bytes ? data : "", (int)n_bytes, 1, 17 /* bytea */);
    /* a zero-length blob stays a blob, not NULL */
    int rc = n_bytes ? sqlite3_bind_blob(s->lite, idx, data, (int)n_bytes, SQLITE_STATIC)
                     : sqlite3_bind_zeroblob(s->lite, idx, 0);
    return rc == SQLITE_OK ? 0 : lite_rc(s->d, rc);
}

int db_bind_null(db_stmt *s, int idx)
{
    if (s->d->engine == DB_POSTGRESQL)
        return db_pg_bind(s, idx, NULL, 0, 0, 0);
    int rc = sqlite3_bind_null(s->lite, idx);
    return rc == SQLITE_OK ? 0 : lite_rc(s->d, rc);
}

int db_step(db_stmt *s)
{
    if (s->d->engine == DB_POSTGRESQL)
        return db_pg_step(s);
    int rc = sqlite3_step(s->lite);
    if (rc == SQLITE_ROW)
        return DB_ROW;
    if (rc == SQLITE_DONE) {
        s->changes = sqlite3_changes(s->d->lite);
        return DB_DONE;
    }
    return lite_rc(s->d, rc);
}

int db_reset(db_stmt *s)
{
    if (s->d->engine == DB_POSTGRESQL) {
        db_pg_blobs_free(s);
        PQclear(s->res);
        s->res = NULL;
        s->row = -1;
        return 0;
    }
    sqlite3_reset(s->lite);
    return 0;
}

int64_t db_changes(db_stmt *s)
{
    return s->changes;
}

bool db_column_is_null(db_stmt *s, int col)
{
    if (s->d->engine == DB_POSTGRESQL)
        return s->res == NULL || s->row < 0 || PQgetisnull(s->res, s->row, col);
    return sqlite3_column_type(s->lite, col) == SQLITE_NULL;
}

int64_t db_column_int64(db_stmt *s, int col)
{
    if (s->d->engine == DB_POSTGRESQL) {
        if (db_column_is_null(s, col))
            return 0;
        const char *v = PQgetvalue(s->res, s->row, col);
        if (v[0] == 't' || v[0] == 'f') /* a boolean expression */
            return v[0] == 't';
        return strtoll(v, NULL, 10);
    }
    return sqlite3_column_int64(s->lite, col);
}

const char *db_column_text(db_stmt *s, int col)
{
    if (s->d->engine == DB_POSTGRESQL)
        return db_column_is_null(s, col) ? NULL : PQgetvalue(s->res, s->row, col);
    return (const char *)sqlite3_column_text(s->lite, col);
}

const void *db_column_blob(db_stmt *s, int col, size_t *out_n_bytes)
{
    *out_n_bytes = 0;
    if (s->d->engine == DB_POSTGRESQL) {
        if (db_column_is_null(s, col))
            return "";
        return db_pg_blob(s, col, out_n_bytes);
    }
    const void *p = sqlite3_column_blob(s->lite, col);
    *out_n_bytes = (size_t)sqlite3_column_bytes(s->lite, col);
    return p != NULL ? p : "";
}

void db_finalize(db_stmt *s)
{
    if (s == NULL)
        return;
    if (s->d->engine == DB_POSTGRESQL)
        db_pg_clear(s);
    else
        sqlite3_finalize(s->lite);
    free(s);
}

db_engine db_stmt_engine(const db_stmt *s)
{
    return s->d->engine;
}

sqlite3_stmt *db_stmt_sqlite(db_stmt *s)
{
    return s->lite;
}

int db_begin(db_conn *d, bool write)
{
    int rc;
    if (d->held) {
        rc = db_exec(d, "SAVEPOINT outpost_held");
        d->held_inner = rc == 0;
        return rc;
    }
    if (d->engine == DB_POSTGRESQL)
        rc = db_pg_begin(d, write);
    else
        rc = db_exec(d, write ? "BEGIN IMMEDIATE" : "BEGIN");
    return rc;
}

int db_commit(db_conn *d)
{
    if (d->held) {
        int rc = db_exec(d, "RELEASE SAVEPOINT outpost_held");
        if (rc != 0)
            db_rollback(d);
        d->held_inner = false;
        return rc;
    }
    int rc = db_exec(d, "COMMIT");
    if (rc != 0)
        db_rollback(d);
    d->in_tx = false;
    return rc;
}

void db_rollback(db_conn *d)
{
    char keep[sizeof d->errmsg];

    memcpy(keep, d->errmsg, sizeof keep);
    if (d->held) {
        if (d->held_inner && PQstatus(d->pg) == CONNECTION_OK)
            PQclear(PQexec(d->pg, "ROLLBACK TO SAVEPOINT outpost_held;"
                                  " RELEASE SAVEPOINT outpost_held"));
        d->held_inner = false;
    } else if (d->engine == DB_POSTGRESQL) {
        d->in_tx = false;
        if (PQstatus(d->pg) == CONNECTION_OK && PQtransactionStatus(d->pg) != PQTRANS_IDLE)
            PQclear(PQexec(d->pg, "ROLLBACK"));
    } else if (!sqlite3_get_autocommit(d->lite)) {
        sqlite3_exec(d->lite, "ROLLBACK", NULL, NULL, NULL);
    }
    memcpy(d->errmsg, keep, sizeof keep);
}

int db_hold(db_conn *d)
{
    if (d->engine != DB_POSTGRESQL || d->held)
        return db_fail(d, STORE_EINVAL, "db_hold: PostgreSQL only, and once");
    int rc = db_pg_begin(d, true);
    d->held = rc == 0;
    return rc;
}

int db_hold_end(db_conn *d, bool commit)
{
    if (!d->held)
        return db_fail(d, STORE_EINVAL, "db_hold_end without db_hold");
    d->held = false;
    d->held_inner = false;
    if (commit)
        return db_commit(d);
    db_rollback(d);
    return 0;
}

bool db_in_transaction(const db_conn *d)
{
    if (d->engine == DB_POSTGRESQL)
        return d->in_tx ||
               (PQstatus(d->pg) == CONNECTION_OK && PQtransactionStatus(d->pg) != PQTRANS_IDLE);
    return !sqlite3_get_autocommit(d->lite);
}

bool db_unreachable(const db_conn *d)
{
    return d->engine == DB_POSTGRESQL && PQstatus(d->pg) != CONNECTION_OK;
}
