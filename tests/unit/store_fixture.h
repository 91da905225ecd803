/*
 * Shared by the store, merge and admin tests: a fresh store in a temporary directory with the
 * example schema (tests/data/contacts.sql), teams north and south, workers ana (north),
 * ben (south) and cai (north and south); a push builder; reply decoding; a store dump.
 */
#ifndef OUTPOST_TEST_STORE_FIXTURE_H
#define OUTPOST_TEST_STORE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outpost/proto.h"
#include "store.h"

/* contacts columns */
enum { C_ID, C_TEAM, C_NAME, C_AGE, C_LOCATION, C_NOTES, C_RISK, C_UPDATED, C_NCOLS };

typedef struct fixture {
    int engine; /* FX_SQLITE or FX_POSTGRESQL: fx_engine when fx_open ran */
    char db_name[32]; /* PostgreSQL: the test's own database in the shared cluster */
    char dir[256];
    char path[300];
    char key_path[320]; /* the audit key, made and loaded by fx_open */
    store *st;
} fixture;

/* Reads tests/data/NAME (via OUTPOST_SOURCE_DIR); malloc'd text, fails the test if missing. */
char *fx_data(const char *name);

/* The engine fx_open makes stores on. SQLite unless a group setup chose PostgreSQL: then every
 * store is a fresh database of one private cluster the group shares (unit/pg_cluster.h). */
enum { FX_SQLITE = 1, FX_POSTGRESQL = 2 };
extern int fx_engine;
/* cmocka group setup/teardown: SQLite, or PostgreSQL (run such a group only when
 * fx_postgresql_available()). */
int fx_group_sqlite(void **state);
int fx_group_postgresql(void **state);
int fx_group_teardown(void **state);
/* True when PostgreSQL 15's binaries are installed (scripts/deps.sh installs them). */
bool fx_postgresql_available(void);

/* The end of a store test program's main: the cases on SQLite (group NAME_sqlite), then the
 * pg ones (the same array, or those that apply) on PostgreSQL (NAME_postgresql). Returns the
 * failures; without PostgreSQL 15 installed, 77 when SQLite's all passed: the program shows as
 * skipped (test_skip.h), never as passed. Use FX_RUN_BOTH_ENGINES with the two arrays. */
struct CMUnitTest;
int fx_run_both_engines(const char *name, const struct CMUnitTest *tests, size_t n_tests,
                        const struct CMUnitTest *pg, size_t n_pg);
#define FX_RUN_BOTH_ENGINES(name, tests, pg)                                                      \
    fx_run_both_engines(name, tests, sizeof(tests) / sizeof((tests)[0]), pg,                     \
                        sizeof(pg) / sizeof((pg)[0]))

/* Makes the store (schema, teams, workers). fx_close removes everything. */
void fx_open(fixture *fx);
void fx_open_empty(fixture *fx); /* store file without schema, teams or workers */
void fx_close(fixture *fx);

/* Enrolls a device for worker and authenticates it into dev. */
void fx_device(fixture *fx, const char *worker, store_device *dev);

/* One value of each kind. */
proto_value T(const char *text);
proto_value I(int64_t i);
proto_value N(void);
proto_value U(void);

/* A push under construction; every pointer lives inside it. */
typedef struct tpush tpush;
tpush *tp_new(uint64_t seq, uint64_t hlc);
void tp_free(tpush *tp);
const proto_push *tp_push(tpush *tp);
proto_change *tp_change(tpush *tp, const char *table, uint32_t n_columns, proto_op op);
void tp_col(proto_change *ch, uint32_t idx, proto_value old_val, proto_value new_val);

/* contacts helpers */
void tp_insert_contact(tpush *tp, const char *id, const char *team, const char *name);
void tp_update_contact(tpush *tp, const char *id, uint32_t col, proto_value old_val,
                       proto_value new_val);
/* DELETE with the old values the central store holds now (read from the store). */
void tp_delete_contact(tpush *tp, fixture *fx, const char *id);

/* Pushes and decodes the reply (caller frees with proto_msg_free). Asserts store_push == 0. */
proto_msg *fx_push(fixture *fx, store_device *dev, tpush *tp, uint64_t now_ms,
                   store_push_info *out_info);
/* Pulls and decodes. */
proto_msg *fx_pull(fixture *fx, store_device *dev, uint64_t cursor, uint32_t limit,
                   size_t max_bytes, store_pull_info *out_info);

/* The text of one column of contacts row id, malloc'd; NULL when no row or NULL value. */
char *fx_contact(fixture *fx, const char *id, const char *column);
/* The SQL literal of a stored TEXT value, to compare a value column (a synced column, a
 * conflict's values, a change's scope) in fx_int's SQL: 'text' on SQLite, the encoded value as
 * bytea on PostgreSQL. Valid until 16 more calls. */
const char *fx_text(const fixture *fx, const char *text);
const char *fx_integer(const fixture *fx, int64_t i); /* the same for an INTEGER value */
/* Another handle on the fixture's store, as a second process would open it. */
store *fx_open_other(fixture *fx);
/* Integer result of a SQL query (on PostgreSQL, an INTEGER value column's value is decoded) with no parameters (first column of the first row). */
int64_t fx_int(fixture *fx, const char *sql);

/* Every table of the store, every row, in a fixed order: for "identical store" checks.
 * Wall-clock columns and the store's identity are left out. malloc'd. */
char *fx_dump(fixture *fx);
/* The same without the tables named in skip (NULL-terminated; NULL skips nothing). */
char *fx_dump_except(fixture *fx, const char *const *skip);

/* Finds the ROWS table entry for name, or NULL. */
const proto_table_rows *fx_rows_table(const proto_msg *msg, const char *name);
bool fx_value_is(const proto_value *v, const char *text);

#define HLC(ms) PROTO_HLC_MAKE((ms), 0)
/* A fixed "now" for pushes: 2026-01-01T00:00:00Z. */
#define NOW_MS UINT64_C(1767225600000)

#endif
