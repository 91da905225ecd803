/* Whether a device may still sync, asked of a device already holding a session: outpostd's
 * sweep (daemon/sweep.c) closes the sessions of devices revoked or disabled since they
 * authenticated, whoever made the change (outpost-admin in its own process, or the dashboard). */
#include <stdio.h>

#include "store_internal.h"

int store_ping(store *st)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn, "SELECT 1", &stmt);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    db_finalize(stmt);
    if (rc != DB_ROW)
        return store_fail_db(st, rc, "ask the store");
    return store_serve_check(st);
}

int store_device_barred(store *st, const char *device_id, bool *out_barred)
{
    db_stmt *stmt = NULL;
    char worker[64] = "";
    bool revoked = true; /* a device the store does not know is not let on */

    int rc = db_prepare(st->conn, "SELECT revoked, worker_id FROM _outpost_devices WHERE id = ?1",
                        &stmt);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 1, device_id ? device_id : "");
    if (rc == STORE_OK)
        rc = db_step(stmt);
    if (rc == DB_ROW) {
        const char *w = db_column_text(stmt, 1);
        revoked = db_column_int64(stmt, 0) != 0;
        snprintf(worker, sizeof worker, "%s", w ? w : "");
        rc = DB_DONE;
    }
    db_finalize(stmt);
    if (rc != DB_DONE)
        return store_fail_db(st, rc, "look up device");
    *out_barred = revoked;
    if (revoked)
        return 0;
    bool disabled = false;
    int out = store_person_disabled(st, "worker", worker, &disabled);
    if (out != 0)
        return out;
    *out_barred = disabled;
    return 0;
}
