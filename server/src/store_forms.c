/*
 * The forms kept with each schema version (docs/forms.md), in a table of their own so that
 * stores made before forms existed need no migration: a store without it has no forms.
 */
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "forms.h"
#include "store_internal.h"

static const char forms_ddl[] = "CREATE TABLE IF NOT EXISTS _outpost_forms("
                                "  version INTEGER PRIMARY KEY, forms TEXT NOT NULL);";

int store_forms_record(store *st, uint32_t version, const char *json)
{
    int rc = store_exec_ddl(st, forms_ddl, "create the forms table");
    if (rc != STORE_OK)
        return rc;
    db_stmt *stmt = NULL;
    rc = db_prepare(st->conn,
                    "INSERT INTO _outpost_forms VALUES(?1, ?2)"
                    " ON CONFLICT(version) DO UPDATE SET forms = excluded.forms",
                    &stmt);
    if (rc == STORE_OK)
        rc = db_bind_int64(stmt, 1, version);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 2, json);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    db_finalize(stmt);
    return rc == DB_DONE ? STORE_OK : store_fail_db(st, rc, "record the forms");
}

/* The forms of version: exactly those recorded at it (NULL when none were), or the newest at or
 * below it ("[]" when none). */
static int read_forms(store *st, uint32_t version, bool exact, char **out_json)
{
    *out_json = NULL;
    db_stmt *stmt = NULL;
    /* A store whose schemas never had forms has no forms table. */
    bool kept = false;
    int rc = store_table_exists(st, "_outpost_forms", &kept);
    if (rc != STORE_OK)
        return rc;
    rc = DB_DONE;
    if (kept) {
        rc = db_prepare(st->conn,
                        exact ? "SELECT forms FROM _outpost_forms WHERE version = ?1"
                              : "SELECT forms FROM _outpost_forms WHERE version <= ?1"
                                " ORDER BY version DESC LIMIT 1",
                        &stmt);
        if (rc == STORE_OK)
            rc = db_bind_int64(stmt, 1, version);
        if (rc == STORE_OK)
            rc = db_step(stmt);
    }
    const char *text = rc == DB_ROW ? db_column_text(stmt, 0) : NULL;
    if (rc == DB_DONE && exact) {
        rc = STORE_OK;
    } else if (rc == DB_ROW || rc == DB_DONE) {
        *out_json = strdup(text ? text : "[]");
        rc = *out_json ? STORE_OK : store_fail(st, STORE_ENOMEM, "out of memory");
    } else {
        rc = store_fail_db(st, rc, "read the forms");
    }
    db_finalize(stmt);
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

int store_forms_tables(store *st, char *names, size_t size, size_t *out_n)
{
    char *json = NULL;
    *out_n = 0;
    names[0] = 0;
    int rc = store_forms_json(st, &json);
    if (rc != STORE_OK)
        return rc;
    json_t *forms = json_loads(json, 0, NULL);
    free(json);
    if (!json_is_array(forms)) {
        json_decref(forms);
        return store_fail(st, STORE_EIO, "the store's forms are not a JSON array");
    }
    size_t len = 0, i;
    json_t *form;
    json_array_foreach(forms, i, form) {
        const char *table = json_string_value(json_object_get(form, "table"));
        int w = snprintf(names + len, size - len, "%s%s", i ? ", " : "", table ? table : "?");
        if (w < 0 || (size_t)w >= size - len) {
            if (size >= 4)
                memcpy(names + size - 4, "...", 4);
            len = size - 1;
        } else {
            len += (size_t)w;
        }
    }
    *out_n = json_array_size(forms);
    json_decref(forms);
    return STORE_OK;
}
