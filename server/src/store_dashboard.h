/*
 * What store_dashboard.c shares with reverse.c. Not API.
 */
#ifndef OUTPOST_STORE_DASHBOARD_H
#define OUTPOST_STORE_DASHBOARD_H

#include "store_internal.h"

/* Creates _outpost_conflict_decisions when missing (one row per decided conflict). */
int store_dash_decisions_ensure(store *st);

/* Creates _outpost_device_reports when missing (store_device_report.c). */
int store_device_reports_ensure(store *st);

/* STORE_OK on SQLite. On PostgreSQL, which keeps synced tables' values and the merge log's
 * any-value columns encoded (BYTEA), STORE_EINVAL with the reason, prefixed by what: the
 * queries that read those values as SQLite types refuse there rather than answer wrongly. */
int store_dash_sqlite_only(store *st, const char *what);

#endif /* OUTPOST_STORE_DASHBOARD_H */
