/* Whether a device may still sync, asked of a device already holding a session: outpostd's
 * sweep (daemon/sweep.c) closes the sessions of devices revoked or disabled since they
 * authenticated, whoever made the change (outpost-admin in its own process, or the dashboard). */
#include <stdio.h>

#include "store_internal.h"

int store_device_barred(store *st, const char *device_id, bool *out_barred)
{
    sqlite3_stmt *stmt = NULL;
    char worker[64] = "";
    bool revoked = true; /* a device the store does not know is not let on */

    int rc = sqlite3_prepare_v2(st->db,
                                "SELECT revoked, worker_id FROM _outpost_devices WHERE id = ?1",
                                -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 1, device_id ? device_id : "", -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        revoked = sqlite3_column_int(stmt, 0) != 0;
        snprintf(worker, sizeof worker, "%s", (const char *)sqlite3_column_text(stmt, 1));
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return store_fail_sqlite(st, rc, "look up device");
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
