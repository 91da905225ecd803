/* The forms that came with the schema (docs/forms.md): kept in the replica as the one JSON text
 * the server sent, in a table of its own so that replicas made before forms need no migration
 * (a replica without it has no forms). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int replica_forms_record(outpost_replica *r, const char *forms_json)
{
    sqlite3_stmt *stmt = NULL;
    int rc = replica_exec(r, "CREATE TABLE IF NOT EXISTS _outpost_forms("
                             " id INTEGER PRIMARY KEY CHECK (id = 1), forms TEXT)");

    if (rc == OUTPOST_OK)
        rc = replica_prepare(r, "INSERT OR REPLACE INTO _outpost_forms VALUES(1, ?1)", &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    if (forms_json != NULL)
        sqlite3_bind_text(stmt, 1, forms_json, -1, SQLITE_STATIC);
    enum replica_mode saved = r->mode;
    r->mode = MODE_LIBRARY;
    rc = sqlite3_step(stmt);
    r->mode = saved;
    rc = rc == SQLITE_DONE ? OUTPOST_OK : replica_fail_sqlite(r, rc, "recording the forms");
    sqlite3_finalize(stmt);
    return rc;
}

int outpost_forms_json(outpost_replica *replica, char **json_out)
{
    sqlite3_stmt *stmt = NULL;
    int64_t kept = 0;
    int rc;

    if (json_out == NULL)
        return OUTPOST_EINVAL;
    *json_out = NULL;
    if (replica == NULL)
        return OUTPOST_EINVAL;
    rc = replica_check_usable(replica);
    if (rc == OUTPOST_OK)
        rc = replica_query_int64(replica,
                                 "SELECT count(*) FROM sqlite_master"
                                 " WHERE type = 'table' AND name = '_outpost_forms'",
                                 "reading the forms", &kept);
    if (rc != OUTPOST_OK)
        return rc;
    const char *text = NULL;
    if (kept) {
        rc = replica_prepare(replica, "SELECT forms FROM _outpost_forms WHERE id = 1", &stmt);
        if (rc != OUTPOST_OK)
            return rc;
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
            text = (const char *)sqlite3_column_text(stmt, 0);
        else if (rc != SQLITE_DONE) {
            rc = replica_fail_sqlite(replica, rc, "reading the forms");
            sqlite3_finalize(stmt);
            return rc;
        }
    }
    *json_out = strdup(text != NULL ? text : "[]");
    sqlite3_finalize(stmt);
    if (*json_out == NULL)
        return replica_fail(replica, OUTPOST_ENOMEM, "out of memory reading the forms");
    return OUTPOST_OK;
}

void outpost_free(void *ptr)
{
    free(ptr);
}
