/*
 * The dashboard's record detail (DASH_RECORD), run on the worker thread like dash_api.c: one
 * record of a synced table in the caller's teams, with its history from the change log, its
 * conflicts and their decisions, and its linked records (a column NAME_id that holds the key of
 * a record in the synced table NAMEs, in either direction). One audit row, record.view
 * TABLE/ID, names the linked records shown in its ids; when it cannot be written nothing is
 * shown.
 */
#ifndef OUTPOSTD_DASH_RECORD_H
#define OUTPOSTD_DASH_RECORD_H

#include "dash_api.h"

void dash_record_view(dash_call *c, store *st);

/* Writes {"table":T,"id":K,"columns":[...],"values":[...]} for the record table/key when it is
 * in c's teams, else null; its key is added to ids (comma separated) when shown. */
void dash_record_object(dash_call *c, store *st, const char *table, const char *key,
                        dash_buf *out, dash_buf *ids);

#endif /* OUTPOSTD_DASH_RECORD_H */
