/* Shared fixture for liboutpost tests: a replica in a fresh temporary directory with a small
 * contacts schema installed, and helpers to build protocol values and count rows. Header-only so
 * that each test program stays one file. */
#ifndef OUTPOST_CLIENT_FIXTURE_H
#define OUTPOST_CLIENT_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "outpost.h"
#include "outpost_engine.h"
#include "ovalue.h"

#define CONTACTS_SQL                                                                               \
    "CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT NOT NULL, name TEXT, age INTEGER,"  \
    " notes TEXT)"
#define VISITS_SQL                                                                                 \
    "CREATE TABLE visits(contact_id TEXT NOT NULL, n TEXT NOT NULL, place TEXT,"                  \
    " PRIMARY KEY (contact_id, n)) WITHOUT ROWID"

/* The fixed key every test replica is encrypted with (tests run with encryption on, as apps
 * do); only tests about plain files open with no_encryption. */
static const uint8_t fx_test_key[OUTPOST_KEY_BYTES] = {
    0x6f, 0x75, 0x74, 0x70, 0x6f, 0x73, 0x74, 0x2d, 0x74, 0x65, 0x73, 0x74, 0x2d, 0x6b, 0x65, 0x79,
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};

static const char *fx_contacts_cols[] = {"id", "team_id", "name", "age", "notes"};
static uint32_t fx_contacts_pk[] = {0};
static const char *fx_visits_cols[] = {"contact_id", "n", "place"};
static uint32_t fx_visits_pk[] = {0, 1};

typedef struct fixture {
    char dir[256];
    char path[300];
    outpost_replica *r;
    proto_schema_table tables[4];
    proto_schema schema;
    int64_t now_ms; /* the clock the replica sees */
    int n_conflicts;
    outpost_conflict_info last_conflict;
    char last_conflict_kind[32];
} fixture;

static inline proto_value pv_text(const char *s)
{
    proto_value v;

    memset(&v, 0, sizeof v);
    v.type = PROTO_TEXT;
    v.u.b.p = (const uint8_t *)s;
    v.u.b.n = (uint32_t)strlen(s);
    return v;
}

static inline proto_value pv_int(int64_t i)
{
    proto_value v;

    memset(&v, 0, sizeof v);
    v.type = PROTO_INT;
    v.u.i = i;
    return v;
}

static inline proto_value pv_null(void)
{
    proto_value v;

    memset(&v, 0, sizeof v);
    v.type = PROTO_NULL;
    return v;
}

static inline int64_t fx_clock(void *user_data)
{
    return ((fixture *)user_data)->now_ms;
}

static inline void fx_on_conflict(void *user_data, const outpost_conflict_info *info)
{
    fixture *f = user_data;

    f->n_conflicts++;
    f->last_conflict = *info;
    snprintf(f->last_conflict_kind, sizeof f->last_conflict_kind, "%s", info->kind);
}

static inline void fx_schema_v1(fixture *f)
{
    memset(f->tables, 0, sizeof f->tables);
    f->tables[0] = (proto_schema_table){.name = "contacts", .create_sql = CONTACTS_SQL,
                                        .scope_col = "team_id", .n_columns = 5,
                                        .columns = fx_contacts_cols, .n_pk = 1, .pk = fx_contacts_pk};
    f->tables[1] = (proto_schema_table){.name = "visits", .create_sql = VISITS_SQL,
                                        .scope_col = "contact_id", .n_columns = 3,
                                        .columns = fx_visits_cols, .n_pk = 2, .pk = fx_visits_pk};
    f->schema = (proto_schema){.version = 1, .n_tables = 2, .tables = f->tables};
}

/* A config for the fixture's replica, encrypted under fx_test_key. */
static inline outpost_config fx_config(fixture *f)
{
    outpost_config cfg;

    memset(&cfg, 0, sizeof cfg);
    cfg.path = f->path;
    cfg.clock = fx_clock;
    cfg.on_conflict = fx_on_conflict;
    cfg.user_data = f;
    cfg.secret.key = fx_test_key;
    return cfg;
}

static inline int fx_open(fixture *f)
{
    outpost_config cfg = fx_config(f);
    char err[256];
    int rc;

    rc = outpost_replica_open(&cfg, &f->r, err, sizeof err);
    if (rc != OUTPOST_OK)
        fprintf(stderr, "open: %s\n", err);
    return rc;
}

/* A fresh directory, a replica in it, schema v1 installed. */
static inline int fx_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    const char *tmp = getenv("TMPDIR");

    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "%s/outpost-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/replica.db", f->dir);
    f->now_ms = 1700000000000;
    assert_int_equal(fx_open(f), OUTPOST_OK);
    fx_schema_v1(f);
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_OK);
    *state = f;
    return 0;
}

static inline int fx_teardown(void **state)
{
    fixture *f = *state;
    char err[256];

    if (f->r)
        outpost_replica_close(f->r);
    outpost_files_wipe(f->path, err, sizeof err);
    rmdir(f->dir);
    free(f);
    return 0;
}

static inline void fx_reopen(fixture *f)
{
    outpost_replica_close(f->r);
    f->r = NULL;
    assert_int_equal(fx_open(f), OUTPOST_OK);
}

/* One integer from a query on the replica's connection (-1 on error). */
static inline int64_t fx_query_int(fixture *f, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    int64_t v = -1;

    if (sqlite3_prepare_v2(outpost_replica_db(f->r), sql, -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW)
        v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
}

/* One text from a query into buf ("" when no row or NULL). */
static inline const char *fx_query_text(fixture *f, const char *sql, char *buf, size_t size)
{
    sqlite3_stmt *stmt = NULL;

    buf[0] = '\0';
    if (sqlite3_prepare_v2(outpost_replica_db(f->r), sql, -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0))
        snprintf(buf, size, "%s", (const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    return buf;
}

#define INSERT_CONTACT "INSERT INTO contacts(id, team_id, name, age, notes) VALUES(?1, ?2, ?3, ?4, ?5)"

/* Inserts a contact through the write API, in the open transaction or its own. */
static inline int fx_insert_contact(fixture *f, const char *id, const char *name, int64_t age)
{
    outpost_value p[5] = {ov_text(id), ov_text("team-a"), ov_text(name), ov_int(age), ov_null()};

    return outpost_exec(f->r, INSERT_CONTACT, p, 5);
}

static inline uint64_t fx_pending(fixture *f)
{
    outpost_status st;

    assert_int_equal(outpost_status_get(f->r, &st), OUTPOST_OK);
    return st.pending;
}

#endif /* OUTPOST_CLIENT_FIXTURE_H */
