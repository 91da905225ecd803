#include "admin_forms.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool is_directory(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* "<directory of schema_path>/forms". */
static char *beside_schema(const char *schema_path)
{
    const char *slash = strrchr(schema_path, '/');
    int dir_len = slash ? (int)(slash - schema_path) : 1;
    const char *dir = slash ? schema_path : ".";
    size_t size = (size_t)dir_len + sizeof "/forms";
    char *path = malloc(size);
    if (path != NULL)
        snprintf(path, size, "%.*s/forms", dir_len, dir);
    return path;
}

static bool is_form_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".json") == 0;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const store_form_file *)a)->path, ((const store_form_file *)b)->path);
}

int admin_forms_read(const char *forms_dir, const char *schema_path,
                     char *(*read_text)(const char *path), admin_forms *out)
{
    memset(out, 0, sizeof *out);
    char *dir = forms_dir ? strdup(forms_dir) : beside_schema(schema_path);
    if (dir == NULL) {
        fprintf(stderr, "outpost-admin: out of memory\n");
        return -1;
    }
    if (forms_dir == NULL && !is_directory(dir)) {
        free(dir);
        return 0;
    }
    out->dir = dir;
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "outpost-admin: cannot read the forms directory %s: %s\n", dir,
                strerror(errno));
        return -1;
    }
    int rc = 0;
    size_t cap = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;) {
        if (!is_form_name(e->d_name))
            continue;
        if (out->n_files == cap) {
            cap = cap ? 2 * cap : 8;
            store_form_file *grown = realloc(out->files, cap * sizeof *grown);
            if (grown == NULL) {
                fprintf(stderr, "outpost-admin: out of memory\n");
                rc = -1;
                break;
            }
            out->files = grown;
        }
        size_t size = strlen(dir) + strlen(e->d_name) + 2;
        char *path = malloc(size);
        if (path == NULL) {
            fprintf(stderr, "outpost-admin: out of memory\n");
            rc = -1;
            break;
        }
        snprintf(path, size, "%s/%s", dir, e->d_name);
        out->files[out->n_files].path = path;
        out->files[out->n_files].text = NULL;
        out->n_files++;
    }
    closedir(d);
    if (out->n_files > 0)
        qsort(out->files, out->n_files, sizeof *out->files, by_path);
    for (size_t i = 0; rc == 0 && i < out->n_files; i++)
        if ((out->files[i].text = read_text(out->files[i].path)) == NULL)
            rc = -1;
    return rc;
}

void admin_forms_free(admin_forms *forms)
{
    for (size_t i = 0; i < forms->n_files; i++) {
        free((char *)forms->files[i].path);
        free((char *)forms->files[i].text);
    }
    free(forms->files);
    free(forms->dir);
    memset(forms, 0, sizeof *forms);
}
