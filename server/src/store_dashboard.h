/*
 * What store_dashboard.c shares with reverse.c. Not API.
 */
#ifndef OUTPOST_STORE_DASHBOARD_H
#define OUTPOST_STORE_DASHBOARD_H

#include "store_arena.h"
#include "store_internal.h"

/* Creates _outpost_conflict_decisions when missing (one row per decided conflict). */
int store_dash_decisions_ensure(store *st);

/* Creates _outpost_device_reports when missing (store_device_report.c). */
int store_device_reports_ensure(store *st);

/* A record query's column indexes: -1 when absent. */
typedef struct store_dash_columns {
    int worker_idx, date_idx, match_idx, sort_idx;
    bool desc;
} store_dash_columns;

/* The record views where synced values are kept encoded (store_dash_decoded.c): what
 * store_dash_records and store_dash_per_day do in SQL on SQLite, done on decoded values.
 * limit is the page size (already bounded). */
int store_dash_records_decoded(store *st, const store_table *t, const char (*teams)[64],
                               uint32_t n_teams, const store_dash_query *q,
                               const store_dash_columns *c, uint32_t limit,
                               store_dash_record_cb cb, void *user_data);
int store_dash_per_day_decoded(store *st, const store_table *t, const char (*teams)[64],
                               uint32_t n_teams, int worker_idx, int date_idx,
                               const char *date_from, store_dash_count_cb cb, void *user_data);

/* Why Reverse would refuse a conflict on column col of table t (NULL: no table), or NULL when
 * it will carry it out, save a constraint of the row that only writing it tells. The queue's
 * listing (store_dashboard.c) and store_dash_decide (reverse.c) both ask it, so the dashboard
 * offers Reverse exactly where the server does it. now: the row's merge state as it is now
 * (exists, deleted, base and per-column versions); winner_hlc, winner_no: the version the
 * conflict's winning write left in the column (device number -1 when not known); losing: the
 * value a reversal would write. The message is static or written into buf. */
struct row_meta;
const char *store_dash_reverse_refusal(const store_table *t, int32_t col, bool reversible,
                                       const struct row_meta *now, uint64_t winner_hlc,
                                       int64_t winner_no, const proto_value *losing,
                                       const char (*teams)[64], uint32_t n_teams, char *buf,
                                       size_t n_buf);

/* A decoded value as SQLite's text of it (NULL for NULL or no memory), in arena. */
const char *store_dash_value_text(store_arena *arena, const proto_value *v);

#endif /* OUTPOST_STORE_DASHBOARD_H */
