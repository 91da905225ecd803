/*
 * outpost-admin: finding and reading a schema package's forms/<table>.json files.
 */
#ifndef OUTPOST_ADMIN_FORMS_H
#define OUTPOST_ADMIN_FORMS_H

#include <stddef.h>

#include "store.h"

typedef struct admin_forms {
    char *dir;              /* the directory read; NULL when the package has none */
    store_form_file *files; /* sorted by file name */
    size_t n_files;
} admin_forms;

/* Reads every *.json file of forms_dir, or, when forms_dir is NULL, of the forms/ directory
 * beside schema_path if there is one (a package without it has no forms). read_text reads one
 * file (NULL after printing why). Returns 0, or -1 after printing why to stderr. Free out with
 * admin_forms_free() in every case. */
int admin_forms_read(const char *forms_dir, const char *schema_path,
                     char *(*read_text)(const char *path), admin_forms *out);
void admin_forms_free(admin_forms *forms);

#endif /* OUTPOST_ADMIN_FORMS_H */
