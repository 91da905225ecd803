/*
 * The forms kept with each schema version (docs/forms.md), in a table of their own so that
 * stores made before forms existed need no migration: a store without it has no forms.
 */
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "forms.h"
#include "store_internal.h"

static const char forms_ddl[] = "CREATE TABLE IF NOT EXISTS _outpost_forms("
                                "  version INTEGER PRIMARY KEY, forms TEXT NOT NULL);";

int store_forms_record(store *st, uint32_t version, const char *json)
{
    int rc = store_exec(st, forms_ddl, "create the forms table");
    if (rc != STORE_OK)
        return rc;
    sqlite3_stmt *stmt = NULL;
    rc = sqlite3_prepare_v2(st->db, "INSERT OR REPLACE INTO _outpost_forms VALUES(?1, ?2)", -1,
                            &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(stmt, 1, version);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 2, json, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? STORE_OK : store_fail_sqlite(st, rc, "record the forms");
}

/* The forms of version: exactly those recorded at it (NULL when none were), or the newest at or
 * below it ("[]" when none). */
static int read_forms(store *st, uint32_t version, bool exact, char **out_json)
{
    *out_json = NULL;
    sqlite3_stmt *stmt = NULL;
    /* A store whose schemas never had forms has no forms table. */
    int rc = sqlite3_prepare_v2(st->db,
                                "SELECT count(*) FROM sqlite_master"
                                " WHERE type = 'table' AND name = '_outpost_forms'",
                                -1, &stmt, NULL);
    bool kept = false;
    if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        kept = sqlite3_column_int(stmt, 0) == 1;
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(stmt);
    stmt = NULL;
    if (rc == SQLITE_DONE && kept) {
        rc = sqlite3_prepare_v2(st->db,
                                exact ? "SELECT forms FROM _outpost_forms WHERE version = ?1"
                                      : "SELECT forms FROM _outpost_forms WHERE version <= ?1"
                                        " ORDER BY version DESC LIMIT 1",
                                -1, &stmt, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(stmt, 1, version);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(stmt);
    }
    const unsigned char *text = rc == SQLITE_ROW ? sqlite3_column_text(stmt, 0) : NULL;
    if (rc == SQLITE_DONE && exact) {
        rc = STORE_OK;
    } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        *out_json = strdup(text ? (const char *)text : "[]");
        rc = *out_json ? STORE_OK : store_fail(st, STORE_ENOMEM, "out of memory");
    } else {
        rc = store_fail_sqlite(st, rc, "read the forms");
    }
    sqlite3_finalize(stmt);
    return rc;
}

int store_forms_at(store *st, uint32_t version, char **out_json)
{
    return read_forms(st, version, false, out_json);
}

int store_forms_recorded(store *st, uint32_t version, char **out_json)
{
    return read_forms(st, version, true, out_json);
}

int store_forms_json(store *st, char **out_json)
{
    *out_json = NULL;
    int64_t version = 0;
    int rc = store_meta_get(st, "schema_version", &version);
    return rc == STORE_OK ? store_forms_at(st, (uint32_t)version, out_json) : rc;
}
