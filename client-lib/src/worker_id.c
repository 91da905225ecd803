/* The worker this device belongs to, as the server said at enrollment and at each sync. */
#include <stdio.h>

#include "internal.h"

int outpost_worker_id(outpost_replica *replica, char out_worker[OUTPOST_WORKER_ID_SIZE])
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    if (replica == NULL || out_worker == NULL)
        return replica ? replica_fail(replica, OUTPOST_EINVAL, "out_worker is required")
                       : OUTPOST_EINVAL;
    out_worker[0] = '\0';
    rc = replica_check_usable(replica);
    if (rc != OUTPOST_OK)
        return rc;
    rc = replica_prepare(replica, "SELECT worker FROM _outpost_worker WHERE id = 1", &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        snprintf(out_worker, OUTPOST_WORKER_ID_SIZE, "%s", (const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    if (step == SQLITE_DONE)
        return replica_fail(replica, OUTPOST_ENOTENROLLED,
                            "the server has not said which worker this device belongs to "
                            "(not enrolled, or enrolled with an older server)");
    if (step != SQLITE_ROW)
        return replica_fail_sqlite(replica, step, "reading the worker");
    return OUTPOST_OK;
}
