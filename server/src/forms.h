/*
 * Form definitions (docs/forms.md): one JSON file per synced table in a schema package,
 * validated against the parsed schema before the package is installed.
 */
#ifndef OUTPOST_FORMS_H
#define OUTPOST_FORMS_H

#include <stddef.h>

#include <jansson.h>

#include "schema_parse.h"

typedef struct forms_file {
    const char *path; /* as errors name it, e.g. "examples/outreach/forms/contacts.json" */
    const char *text; /* the file's contents, NUL-terminated */
} forms_file;

/* Validates every file against def (the rules of docs/forms.md). On success returns 0 and
 * *out_json is the forms as one compact JSON array in the schema's table order ("[]" when there
 * are none), to free with free(). On failure returns STORE_ESCHEMA (or STORE_ENOMEM) and writes
 * into err a message naming the file, the table, the column where there is one, and the
 * problem; *out_json is NULL. */
int forms_validate(const schema_def *def, const forms_file *files, size_t n_files,
                   char **out_json, char *err, size_t err_size);

/* The values a CHECK constraint of create_sql restricts column to with `column IN (...)`, as a
 * JSON array of strings and integers (NULL in the list is left out). Returns 1 and the array in
 * *out_values (the caller decrefs it) when there is such a list of literals, 0 when there is
 * none, STORE_ENOMEM when memory ran out. */
int forms_check_in_list(const char *create_sql, const char *column, json_t **out_values);

#endif /* OUTPOST_FORMS_H */
