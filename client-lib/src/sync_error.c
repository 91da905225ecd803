/* The last sync attempt's error, kept in the replica so that it outlives the app's process: a
 * sync that failed in one run (the server down) and succeeded in the next still reports the
 * failure in the next HELLO's `err`, for the supervisors' device view. A table of its own, made
 * at the first failure, so that older replicas need no migration. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char table_ddl[] = "CREATE TABLE IF NOT EXISTS _outpost_sync_error("
                                " id INTEGER PRIMARY KEY CHECK (id = 1), message TEXT NOT NULL)";

int replica_sync_error_set(outpost_replica *r, const char *message)
{
    sqlite3_stmt *stmt = NULL;
    int rc = replica_exec(r, table_ddl);

    if (rc == OUTPOST_OK)
        rc = replica_prepare(r, "INSERT OR REPLACE INTO _outpost_sync_error VALUES(1, ?1)",
                             &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_text(stmt, 1, message ? message : "", -1, SQLITE_STATIC);
    enum replica_mode saved = r->mode;
    r->mode = MODE_LIBRARY;
    rc = sqlite3_step(stmt);
    r->mode = saved;
    rc = rc == SQLITE_DONE ? OUTPOST_OK : replica_fail_sqlite(r, rc, "recording the sync error");
    sqlite3_finalize(stmt);
    return rc;
}

void replica_sync_error_get(outpost_replica *r, char *out, size_t size)
{
    sqlite3_stmt *stmt = NULL;
    int64_t kept = 0;

    out[0] = '\0';
    if (replica_query_int64(r, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                               " AND name = '_outpost_sync_error'",
                            "reading the sync error", &kept) != OUTPOST_OK ||
        !kept || replica_prepare(r, "SELECT message FROM _outpost_sync_error WHERE id = 1",
                                 &stmt) != OUTPOST_OK)
        return;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0))
        snprintf(out, size, "%s", (const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
}
