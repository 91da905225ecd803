/*
 * Test checks that read the central store with SQL, whichever its engine.
 */
#ifndef OUTPOST_TEST_CENTRAL_DB_H
#define OUTPOST_TEST_CENTRAL_DB_H

#include <sqlite3.h>

#include "daemon_fixture.h"

/* The central store as SQLite reads it, for a test's checks: on SQLite the store file, opened
 * read only; on PostgreSQL an in-memory SQLite copy of every table of the store taken now,
 * with the synced tables' values and the bookkeeping's any-value columns (scope, scope_old,
 * scope_new, losing_value, winning_value) decoded from their encoding into SQLite values of
 * their own type, so that the same SQL (count(*), quote(), =) answers the same on both
 * engines. Close it with sqlite3_close. Returns 0, or -1 with the reason on stderr. */
int central_db_open(const daemon_fixture *fx, sqlite3 **out_db);

#endif
