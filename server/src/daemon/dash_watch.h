/*
 * The dashboard's "Needs attention" view (dash_watch.c): open watch items within the caller's
 * teams, oldest due first, and their counts per team, rule and week. Both run on the worker
 * thread as dash calls and write their audit row before anything is shown.
 */
#ifndef OUTPOSTD_DASH_WATCH_H
#define OUTPOSTD_DASH_WATCH_H

#include "dash_api.h"

/* Test-only clock for watch rules: when this environment variable names a file, the time in it
 * ("YYYY-MM-DD HH:MM:SS" UTC, or ms since the epoch) is "now" for watch rules, read at each
 * call (docs/operations.md). Never set it in production. */
#define DASH_WATCH_CLOCK_ENV "OUTPOSTD_TEST_WATCH_CLOCK"

/* GET /api/watch: {"now", "items": [...], "truncated"} (audit watch.list with the ids shown). */
void dash_watch_items(dash_call *c, store *st);

/* GET /api/watch/counts: {"weeks", "rules": [...], "counts": [...]} for the last 12 weeks (audit
 * watch.counts). */
void dash_watch_counts(dash_call *c, store *st);

#endif /* OUTPOSTD_DASH_WATCH_H */
