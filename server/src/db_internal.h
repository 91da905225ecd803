/* What db.c (dispatch and SQLite) and db_postgresql.c share. Not API: only db*.c. */
#ifndef OUTPOST_DB_INTERNAL_H
#define OUTPOST_DB_INTERNAL_H

#include <libpq-fe.h>
#include <sqlite3.h>

#include "db.h"

struct db_conn {
    db_engine engine;
    sqlite3 *lite;   /* DB_SQLITE: the caller's connection */
    PGconn *pg;      /* DB_POSTGRESQL: ours */
    uint64_t n_named; /* named prepared statements made on pg, for their names */
    uint64_t session; /* bumped at each reconnect: names prepared before it are gone */
    bool in_tx;       /* inside db_begin .. db_commit/db_rollback: never reconnected */
    bool held;        /* inside db_hold .. db_hold_end: db_begin makes a savepoint */
    bool held_inner;  /* that savepoint is open */
    bool listening;   /* has LISTENed: never reconnected (its owner opens a new one) */
    bool lost;        /* the loss was logged; the reconnect is not yet made */
    char errmsg[256];
};

/* One PostgreSQL parameter as libpq takes it. */
typedef struct db_param {
    char *value; /* NULL: SQL NULL */
    int length;
    int format;  /* 0 text, 1 binary */
    Oid type;
} db_param;

struct db_stmt {
    db_conn *d;
    sqlite3_stmt *lite;
    /* DB_POSTGRESQL */
    char *sql;
    int n_params;
    db_param *params;
    PGresult *res;
    int runs;         /* times run: from the second, a named prepared statement is reused */
    char name[32];    /* "" until prepared on the server */
    uint64_t session; /* d->session when name was prepared */
    Oid *named_types; /* the parameter types it was prepared with */
    int row;          /* current row; -1 before the first step */
    int64_t changes;
    unsigned char **blobs; /* the current row's bytea columns, unescaped, by column */
    size_t *blob_lens;
    int n_blobs;
};

/* Records a message in d and returns rc. */
int db_fail(db_conn *d, int rc, const char *what);


int db_pg_prepare(db_conn *d, const char *sql, db_stmt *s);
int db_pg_exec(db_conn *d, const char *sql);
int db_pg_step(db_stmt *s);
int db_pg_bind(db_stmt *s, int idx, const char *value, int length, int format, Oid type);
void db_pg_clear(db_stmt *s);
/* The unescaped bytes of the current row's bytea column col (kept until the row changes). */
const void *db_pg_blob(db_stmt *s, int col, size_t *out_n_bytes);
/* Frees the current row's unescaped columns (before moving to another row). */
void db_pg_blobs_free(db_stmt *s);
int db_pg_begin(db_conn *d, bool write);

#endif /* OUTPOST_DB_INTERNAL_H */
