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

#endif /* OUTPOST_STORE_DASHBOARD_H */
