/*
 * Form definitions (docs/forms.md): one JSON file per synced table in a schema package,
 * validated against the parsed schema before the package is installed.
 */
#ifndef OUTPOST_FORMS_H
#define OUTPOST_FORMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "schema_parse.h"
#include "store.h"

typedef store_form_file forms_file;

/* The most the forms may take together as sent (compact JSON): with the schema they travel in
 * one ENROLLED or WELCOME message, which a device accepts up to 1 MiB by default. */
#define FORMS_MAX_BYTES (256u * 1024u)

/* Validates every file against def (the rules of docs/forms.md). On success returns 0 and
 * *out_json is the forms as one compact JSON array in the schema's table order ("[]" when there
 * are none, at most FORMS_MAX_BYTES), to free with free(). On failure returns STORE_ESCHEMA (or
 * STORE_ENOMEM) and writes
 * into err a message naming the file, the table, the column where there is one, and the
 * problem; *out_json is NULL. */
int forms_validate(const schema_def *def, const forms_file *files, size_t n_files,
                   char **out_json, char *err, size_t err_size);

/* The values a CHECK constraint of create_sql restricts column to with `column IN (...)`, as a
 * JSON array of strings and integers (NULL in the list is left out). Returns 1 and the array in
 * *out_values (the caller decrefs it) when there is such a list of literals, 0 when there is
 * none, STORE_ENOMEM when memory ran out. */
int forms_check_in_list(const char *create_sql, const char *column, json_t **out_values);

/* Kept in the store (store_forms.c), inside the caller's transaction where one is open. */
int store_forms_record(store *st, uint32_t version, const char *json);
/* The forms of schema version (the newest kept at or below it): "[]" when there are none. */
int store_forms_at(store *st, uint32_t version, char **out_json);
/* The forms recorded with exactly version; *out_json NULL when that version changed none. */
int store_forms_recorded(store *st, uint32_t version, char **out_json);

/* Installs (init) or upgrades to a schema as a restore replays it (schema.c): with the forms
 * recorded for it, or keeping the forms as they are when forms_json is NULL. */
int store_schema_replay(store *st, bool init, const char *schema_sql, const char *policy_text,
                        const char *forms_json);

#endif /* OUTPOST_FORMS_H */
