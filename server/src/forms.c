/*
 * Validating a schema package's forms against its schema: the rules of docs/forms.md, each
 * refusal naming the file, the table, the column and the problem.
 */
#include "forms.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

typedef struct vctx {
    const schema_def *def;
    const char *path;
    const schema_table *t;
    json_t *langs;         /* this form's title: its keys are the form's languages */
    const char *where;     /* the part of the form being read, for messages */
    bool *used;            /* per column of t: named in a field or in auto */
    bool *required;        /* per column of t: automatic, or a required field */
    char *err;
    size_t err_size;
} vctx;

/* Writes "<file>: <table>.<column>: <problem>" (the parts that are known) and refuses. */
static int fail(vctx *v, const char *column, const char *fmt, ...)
{
    int n;
    if (v->t != NULL && column != NULL)
        n = snprintf(v->err, v->err_size, "%s: %s.%s: ", v->path, v->t->name, column);
    else if (v->t != NULL)
        n = snprintf(v->err, v->err_size, "%s: %s: ", v->path, v->t->name);
    else
        n = snprintf(v->err, v->err_size, "%s: ", v->path);
    if (n >= 0 && (size_t)n < v->err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->err + n, v->err_size - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return STORE_ESCHEMA;
}

static const char *json_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
    default:
        return "null";
    }
}

/* Refuses any key of obj not in allowed (NULL-terminated). */
static int check_keys(vctx *v, const char *column, const json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)obj, key, value) {
        bool known = false;
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known)
            return fail(v, column, "unknown key \"%s\" in %s", key, v->where);
    }
    return 0;
}

static int find_column(const schema_table *t, const char *name)
{
    for (uint32_t i = 0; i < t->n_cols; i++)
        if (strcmp(t->cols[i].name, name) == 0)
            return (int)i;
    return -1;
}

static const schema_table *find_table(const schema_def *def, const char *name)
{
    for (uint32_t i = 0; i < def->n_tables; i++)
        if (strcmp(def->tables[i].name, name) == 0)
            return &def->tables[i];
    return NULL;
}

/* A column's name from a JSON string, checked to exist in the form's table. */
static int column_of(vctx *v, const json_t *name, int *out_idx)
{
    if (!json_is_string(name))
        return fail(v, NULL, "%s: a column name must be a string, not %s", v->where,
                    json_type_name(name));
    *out_idx = find_column(v->t, json_string_value(name));
    if (*out_idx < 0)
        return fail(v, json_string_value(name), "no such column in table %s (%s)", v->t->name,
                    v->where);
    return 0;
}

/* Declared type affinity, as SQLite's rules decide it (datatype3.html 3.1). */
typedef enum { AFF_INTEGER, AFF_TEXT, AFF_BLOB, AFF_REAL, AFF_NUMERIC } affinity;

static affinity column_affinity(const char *type)
{
    char up[128];
    size_t n = 0;
    for (; type && type[n] && n + 1 < sizeof up; n++)
        up[n] = (char)toupper((unsigned char)type[n]);
    up[n] = '\0';
    if (strstr(up, "INT"))
        return AFF_INTEGER;
    if (strstr(up, "CHAR") || strstr(up, "CLOB") || strstr(up, "TEXT"))
        return AFF_TEXT;
    if (n == 0 || strstr(up, "BLOB"))
        return AFF_BLOB;
    if (strstr(up, "REAL") || strstr(up, "FLOA") || strstr(up, "DOUB"))
        return AFF_REAL;
    return AFF_NUMERIC;
}

static bool holds_text(affinity a)
{
    return a == AFF_TEXT || a == AFF_BLOB;
}

static bool holds_integer(affinity a)
{
    return a != AFF_TEXT;
}

/* The form's languages, for messages: "en, es". */
static void langs_text(const json_t *langs, char *buf, size_t size)
{
    size_t at = 0;
    const char *key;
    json_t *value;
    buf[0] = '\0';
    json_object_foreach((json_t *)langs, key, value) {
        int n = snprintf(buf + at, size - at, "%s%s", at ? ", " : "", key);
        if (n < 0 || (size_t)n >= size - at)
            break;
        at += (size_t)n;
    }
}

/* A text: {lang: non-empty string} with exactly the form's languages. */
static int check_text(vctx *v, const char *column, const json_t *text, const char *what)
{
    char langs[128];
    langs_text(v->langs, langs, sizeof langs);
    if (!json_is_object(text))
        return fail(v, column, "%s must be an object of texts by language (%s), not %s", what,
                    langs, json_type_name(text));
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)text, key, value) {
        if (json_object_get(v->langs, key) == NULL)
            return fail(v, column, "%s has language \"%s\", which is not one of the form's (%s)",
                        what, key, langs);
        if (!json_is_string(value) || json_string_length(value) == 0)
            return fail(v, column, "%s in \"%s\" must be a non-empty string", what, key);
    }
    json_object_foreach(v->langs, key, value) {
        if (json_object_get(text, key) == NULL)
            return fail(v, column, "%s lacks language \"%s\" (the form's languages are %s)", what,
                        key, langs);
    }
    return 0;
}

static int check_title(vctx *v, const json_t *form, const json_t *package_langs)
{
    json_t *title = json_object_get(form, "title");
    if (!json_is_object(title) || json_object_size(title) == 0)
        return fail(v, NULL, "\"title\" must be an object of texts by language, e.g. "
                             "{\"en\": \"Contact\"}");
    v->langs = title;
    int out = check_text(v, NULL, title, "the title");
    if (out != 0 || package_langs == NULL)
        return out;
    char mine[128], theirs[128];
    langs_text(title, mine, sizeof mine);
    langs_text(package_langs, theirs, sizeof theirs);
    bool same = json_object_size(title) == json_object_size(package_langs);
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)package_langs, key, value) {
        same = same && json_object_get(title, key) != NULL;
    }
    if (!same)
        return fail(v, NULL, "the form's languages (%s) differ from the other forms' (%s)", mine,
                    theirs);
    return 0;
}

static const char *const auto_kinds[] = {"uuid", "team", "worker", "now", NULL};

static int check_auto(vctx *v, const json_t *form)
{
    json_t *autos = json_object_get(form, "auto");
    if (autos == NULL)
        return 0;
    v->where = "\"auto\"";
    if (!json_is_object(autos))
        return fail(v, NULL, "\"auto\" must be an object {column: kind}, not %s",
                    json_type_name(autos));
    int seen[4] = {0};
    const char *key;
    json_t *kind;
    json_object_foreach(autos, key, kind) {
        int col = find_column(v->t, key);
        if (col < 0)
            return fail(v, key, "no such column in table %s (\"auto\")", v->t->name);
        size_t k = 0;
        while (auto_kinds[k] != NULL &&
               !(json_is_string(kind) && strcmp(json_string_value(kind), auto_kinds[k]) == 0))
            k++;
        if (auto_kinds[k] == NULL)
            return fail(v, key, "automatic kind must be \"uuid\", \"team\", \"worker\" or \"now\"");
        const schema_col *c = &v->t->cols[col];
        if (strcmp(auto_kinds[k], "uuid") == 0 && c->pk_pos == 0)
            return fail(v, key, "\"uuid\" fills the primary key, and this column is not it");
        if (strcmp(auto_kinds[k], "team") == 0 && (uint32_t)col != v->t->scope_idx)
            return fail(v, key, "\"team\" fills the scope column (%s), and this column is not it",
                        v->t->cols[v->t->scope_idx].name);
        if (!holds_text(column_affinity(c->type)))
            return fail(v, key, "\"%s\" fills in text, and the column is declared %s",
                        auto_kinds[k], c->type);
        if (k < 3 && seen[k]++ > 0)
            return fail(v, key, "a second column is \"%s\"; a form has at most one",
                        auto_kinds[k]);
        v->used[col] = true;
        v->required[col] = true; /* always given */
    }
    return 0;
}

static const char *const widgets[] = {"text",   "textarea",    "integer", "datetime",
                                      "date",   "select",      "multiselect", "link",
                                      NULL};

static bool is_widget(const char *widget, const char *name)
{
    return strcmp(widget, name) == 0;
}

/* "'none','low'" for messages. */
static void values_text(const json_t *values, char *buf, size_t size)
{
    size_t at = 0, i;
    json_t *value;
    buf[0] = '\0';
    json_array_foreach(values, i, value) {
        int n = json_is_string(value)
                    ? snprintf(buf + at, size - at, "%s'%s'", i ? "," : "", json_string_value(value))
                    : snprintf(buf + at, size - at, "%s%lld", i ? "," : "",
                               (long long)json_integer_value(value));
        if (n < 0 || (size_t)n >= size - at)
            break;
        at += (size_t)n;
    }
}

static bool contains_value(const json_t *values, const json_t *value)
{
    size_t i;
    json_t *each;
    json_array_foreach(values, i, each) {
        if (json_equal(each, value))
            return true;
    }
    return false;
}

/* A choice list given by name in a field, checked against the column it fills. */
static int check_choices(vctx *v, const json_t *form, const char *column, affinity aff,
                         const char *widget, const json_t *list_name)
{
    if (!json_is_string(list_name))
        return fail(v, column, "\"choices\" must name a list in the form's \"choices\"");
    const char *name = json_string_value(list_name);
    json_t *list = json_object_get(json_object_get(form, "choices"), name);
    if (list == NULL)
        return fail(v, column, "choice list \"%s\" is not in the form's \"choices\"", name);
    bool multi = is_widget(widget, "multiselect");
    size_t i;
    json_t *choice;
    json_array_foreach(list, i, choice) {
        json_t *value = json_object_get(choice, "value");
        if (json_is_string(value) && !holds_text(aff))
            return fail(v, column, "choice list \"%s\" has text values, and the column is "
                                   "declared %s", name, v->t->cols[find_column(v->t, column)].type);
        if (json_is_integer(value) && !holds_integer(aff))
            return fail(v, column, "choice list \"%s\" has integer values, and the column is "
                                   "declared %s", name, v->t->cols[find_column(v->t, column)].type);
        if (multi && (!json_is_string(value) || strchr(json_string_value(value), ',') != NULL))
            return fail(v, column, "a multiselect stores values joined by ',': list \"%s\" needs "
                                   "text values without ','", name);
    }
    json_t *allowed = NULL;
    int rc = forms_check_in_list(v->t->create_sql, column, &allowed);
    if (rc < 0)
        return fail(v, column, "out of memory");
    if (rc == 0)
        return 0;
    char allowed_text[512];
    values_text(allowed, allowed_text, sizeof allowed_text);
    int out = 0;
    if (multi) {
        out = fail(v, column, "the column's CHECK allows one value of (%s), so a multiselect "
                              "cannot be stored there; use \"select\"", allowed_text);
    } else {
        json_array_foreach(list, i, choice) {
            json_t *value = json_object_get(choice, "value");
            if (out == 0 && !contains_value(allowed, value)) {
                char one[256];
                json_t *single = json_pack("[O]", value);
                values_text(single, one, sizeof one);
                json_decref(single);
                out = fail(v, column, "choice %s is not allowed by the column's CHECK "
                                      "(allowed: %s)", one, allowed_text);
            }
        }
        json_t *value;
        json_array_foreach(allowed, i, value) {
            bool offered = false;
            size_t k;
            json_array_foreach(list, k, choice) {
                offered = offered || json_equal(json_object_get(choice, "value"), value);
            }
            if (out == 0 && !offered) {
                char one[256];
                json_t *single = json_pack("[O]", value);
                values_text(single, one, sizeof one);
                json_decref(single);
                out = fail(v, column, "the column's CHECK allows %s, and choice list \"%s\" does "
                                      "not offer it", one, name);
            }
        }
    }
    json_decref(allowed);
    return out;
}

static const char *const field_keys[] = {"column", "label", "help", "required", "widget",
                                         "choices", "min", "max", "link", NULL};

static int check_field(vctx *v, const json_t *form, const json_t *field)
{
    if (!json_is_object(field))
        return fail(v, NULL, "%s must be an object, not %s", v->where, json_type_name(field));
    int col = -1;
    int out = column_of(v, json_object_get(field, "column"), &col);
    if (out != 0)
        return out;
    const char *column = v->t->cols[col].name;
    if ((out = check_keys(v, column, field, field_keys)) != 0)
        return out;
    if (v->used[col])
        return fail(v, column, "the column is named twice (in \"auto\" or another field)");
    v->used[col] = true;
    if ((out = check_text(v, column, json_object_get(field, "label"), "\"label\"")) != 0)
        return out;
    json_t *help = json_object_get(field, "help");
    if (help != NULL && (out = check_text(v, column, help, "\"help\"")) != 0)
        return out;
    json_t *required = json_object_get(field, "required");
    if (required != NULL && !json_is_boolean(required))
        return fail(v, column, "\"required\" must be true or false, not %s",
                    json_type_name(required));
    v->required[col] = json_is_true(required);
    json_t *widget_json = json_object_get(field, "widget");
    size_t w = 0;
    while (widgets[w] != NULL && !(json_is_string(widget_json) &&
                                   strcmp(json_string_value(widget_json), widgets[w]) == 0))
        w++;
    if (widgets[w] == NULL)
        return fail(v, column, "\"widget\" must be one of text, textarea, integer, datetime, "
                               "date, select, multiselect, link");
    const char *widget = widgets[w];
    affinity aff = column_affinity(v->t->cols[col].type);
    bool choosing = is_widget(widget, "select") || is_widget(widget, "multiselect");
    if (is_widget(widget, "integer") ? !holds_integer(aff) : !choosing && !holds_text(aff))
        return fail(v, column, "widget \"%s\" does not fit a column declared %s", widget,
                    v->t->cols[col].type);
    json_t *choices = json_object_get(field, "choices");
    if (choosing && choices == NULL)
        return fail(v, column, "widget \"%s\" needs \"choices\" naming a choice list", widget);
    if (!choosing && choices != NULL)
        return fail(v, column, "\"choices\" is only for select and multiselect, not \"%s\"",
                    widget);
    if (choosing && (out = check_choices(v, form, column, aff, widget, choices)) != 0)
        return out;
    json_t *allowed = NULL;
    if (!choosing) {
        int rc = forms_check_in_list(v->t->create_sql, column, &allowed);
        if (rc < 0)
            return fail(v, column, "out of memory");
        if (rc == 1) {
            char allowed_text[512];
            values_text(allowed, allowed_text, sizeof allowed_text);
            json_decref(allowed);
            return fail(v, column, "the column's CHECK allows only (%s): use a \"select\" with "
                                   "those values, not \"%s\"", allowed_text, widget);
        }
    }
    json_t *min = json_object_get(field, "min"), *max = json_object_get(field, "max");
    if ((min != NULL || max != NULL) && !is_widget(widget, "integer"))
        return fail(v, column, "\"min\" and \"max\" are only for the integer widget");
    if ((min != NULL && !json_is_integer(min)) || (max != NULL && !json_is_integer(max)))
        return fail(v, column, "\"min\" and \"max\" must be integers");
    if (min != NULL && max != NULL && json_integer_value(min) > json_integer_value(max))
        return fail(v, column, "\"min\" %lld is above \"max\" %lld",
                    (long long)json_integer_value(min), (long long)json_integer_value(max));
    json_t *link = json_object_get(field, "link");
    if (is_widget(widget, "link") != (link != NULL))
        return fail(v, column, "the link widget and \"link\" (a table name) go together");
    if (link != NULL &&
        (!json_is_string(link) || find_table(v->def, json_string_value(link)) == NULL))
        return fail(v, column, "\"link\" must name a synced table of the schema");
    return 0;
}

static const char *const section_keys[] = {"title", "fields", NULL};

static int check_sections(vctx *v, const json_t *form)
{
    json_t *sections = json_object_get(form, "sections");
    if (!json_is_array(sections) || json_array_size(sections) == 0)
        return fail(v, NULL, "\"sections\" must be a non-empty array of sections");
    size_t i;
    json_t *section;
    json_array_foreach(sections, i, section) {
        char where[64];
        snprintf(where, sizeof where, "section %zu", i + 1);
        v->where = where;
        if (!json_is_object(section))
            return fail(v, NULL, "%s must be an object, not %s", where, json_type_name(section));
        int out = check_keys(v, NULL, section, section_keys);
        if (out == 0)
            out = check_text(v, NULL, json_object_get(section, "title"), where);
        if (out != 0)
            return out;
        json_t *fields = json_object_get(section, "fields");
        if (!json_is_array(fields) || json_array_size(fields) == 0)
            return fail(v, NULL, "%s: \"fields\" must be a non-empty array of fields", where);
        size_t k;
        json_t *field;
        json_array_foreach(fields, k, field) {
            char field_where[96];
            snprintf(field_where, sizeof field_where, "field %zu of section %zu", k + 1, i + 1);
            v->where = field_where;
            if ((out = check_field(v, form, field)) != 0)
                return out;
        }
    }
    return 0;
}

static const char *const choice_keys[] = {"value", "label", NULL};

/* The lists themselves; how fields use them is checked with each field. */
static int check_choice_lists(vctx *v, const json_t *form)
{
    json_t *lists = json_object_get(form, "choices");
    if (lists == NULL)
        return 0;
    if (!json_is_object(lists))
        return fail(v, NULL, "\"choices\" must be an object {list name: [choices]}, not %s",
                    json_type_name(lists));
    const char *name;
    json_t *list;
    json_object_foreach(lists, name, list) {
        if (!json_is_array(list) || json_array_size(list) == 0)
            return fail(v, NULL, "choice list \"%s\" must be a non-empty array", name);
        size_t i;
        json_t *choice;
        json_array_foreach(list, i, choice) {
            char where[192];
            snprintf(where, sizeof where, "choice %zu of list \"%s\"", i + 1, name);
            v->where = where;
            if (!json_is_object(choice))
                return fail(v, NULL, "%s must be an object, not %s", where,
                            json_type_name(choice));
            int out = check_keys(v, NULL, choice, choice_keys);
            if (out != 0)
                return out;
            json_t *value = json_object_get(choice, "value");
            if (!(json_is_string(value) && json_string_length(value) > 0) &&
                !json_is_integer(value))
                return fail(v, NULL, "%s: \"value\" must be a non-empty string or an integer",
                            where);
            for (size_t k = 0; k < i; k++)
                if (json_equal(json_object_get(json_array_get(list, k), "value"), value))
                    return fail(v, NULL, "%s repeats a value of choice %zu", where, k + 1);
            if ((out = check_text(v, NULL, json_object_get(choice, "label"), where)) != 0)
                return out;
        }
    }
    return 0;
}

static int check_summary(vctx *v, const json_t *form)
{
    json_t *summary = json_object_get(form, "summary");
    if (summary == NULL)
        return 0;
    v->where = "\"summary\"";
    if (!json_is_array(summary))
        return fail(v, NULL, "\"summary\" must be an array of column names");
    size_t i;
    json_t *name;
    json_array_foreach(summary, i, name) {
        int col = -1;
        int out = column_of(v, name, &col);
        if (out != 0)
            return out;
        for (size_t k = 0; k < i; k++)
            if (json_equal(json_array_get(summary, k), name))
                return fail(v, json_string_value(name), "named twice in \"summary\"");
    }
    return 0;
}

/* Every column the database requires must come from somewhere. */
static int check_required(vctx *v)
{
    for (uint32_t i = 0; i < v->t->n_cols; i++) {
        const schema_col *c = &v->t->cols[i];
        if (!((c->notnull && c->dflt == NULL) || c->pk_pos > 0) || v->required[i])
            continue;
        return fail(v, c->name, "%s is neither automatic nor a required field, so a form filled "
                                "in without it could not be stored",
                    c->pk_pos > 0 ? "the primary key" : "a NOT NULL column without DEFAULT");
    }
    return 0;
}

static const char *const form_keys[] = {"table",   "title",   "summary", "auto",
                                        "sections", "choices", NULL};

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Reads and checks one file; on success *out_form is its JSON and *out_table its table. */
static int check_form(vctx *v, const json_t *package_langs, json_t **out_form,
                      const schema_table **out_table, const char *text)
{
    json_error_t jerr;
    json_t *form = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (form == NULL)
        return fail(v, NULL, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    *out_form = form;
    v->where = "the form";
    if (!json_is_object(form))
        return fail(v, NULL, "a form must be one JSON object, not %s", json_type_name(form));
    int out = check_keys(v, NULL, form, form_keys);
    if (out != 0)
        return out;
    json_t *table = json_object_get(form, "table");
    if (!json_is_string(table))
        return fail(v, NULL, "\"table\" must name the synced table the form is for");
    const char *name = json_string_value(table);
    const schema_table *t = find_table(v->def, name);
    if (t == NULL)
        return fail(v, NULL, "table %s is not a synced table of the schema (no such table, or "
                             "no line in the policy)", name);
    const char *file = base_name(v->path);
    size_t n = strlen(name);
    if (strncmp(file, name, n) != 0 || strcmp(file + n, ".json") != 0)
        return fail(v, NULL, "the form for table %s must be in a file named %s.json", name, name);
    v->t = t;
    *out_table = v->t;
    v->used = calloc(v->t->n_cols, sizeof *v->used);
    v->required = calloc(v->t->n_cols, sizeof *v->required);
    if (v->used == NULL || v->required == NULL)
        return fail(v, NULL, "out of memory");
    if ((out = check_title(v, form, package_langs)) != 0 || (out = check_auto(v, form)) != 0 ||
        (out = check_choice_lists(v, form)) != 0 || (out = check_sections(v, form)) != 0 ||
        (out = check_summary(v, form)) != 0 || (out = check_required(v)) != 0)
        return out;
    return 0;
}

int forms_validate(const schema_def *def, const forms_file *files, size_t n_files,
                   char **out_json, char *err, size_t err_size)
{
    *out_json = NULL;
    json_t **by_table = calloc(def->n_tables ? def->n_tables : 1, sizeof *by_table);
    const char **paths = calloc(def->n_tables ? def->n_tables : 1, sizeof *paths);
    int out = by_table && paths ? 0 : STORE_ENOMEM;
    if (out != 0)
        snprintf(err, err_size, "out of memory");
    json_t *package_langs = NULL;
    for (size_t i = 0; out == 0 && i < n_files; i++) {
        vctx v = {.def = def, .path = files[i].path, .err = err, .err_size = err_size};
        json_t *form = NULL;
        const schema_table *t = NULL;
        out = check_form(&v, package_langs, &form, &t, files[i].text);
        free(v.used);
        free(v.required);
        size_t at = t ? (size_t)(t - def->tables) : 0;
        if (out == 0 && by_table[at] != NULL)
            out = fail(&v, NULL, "a second form for table %s (the first is %s)", t->name,
                       paths[at]);
        if (out != 0) {
            json_decref(form);
            break;
        }
        by_table[at] = form;
        paths[at] = files[i].path;
        if (package_langs == NULL)
            package_langs = json_object_get(form, "title");
    }
    json_t *all = out == 0 ? json_array() : NULL;
    for (uint32_t i = 0; i < def->n_tables; i++) {
        if (all != NULL && by_table[i] != NULL && json_array_append(all, by_table[i]) != 0)
            out = STORE_ENOMEM;
        json_decref(by_table[i]);
    }
    if (out == 0 && all == NULL)
        out = STORE_ENOMEM;
    if (out == 0 && (*out_json = json_dumps(all, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
        out = STORE_ENOMEM;
    size_t n_bytes = *out_json ? strlen(*out_json) : 0;
    if (out == 0 && n_bytes > FORMS_MAX_BYTES) {
        snprintf(err, err_size, "%s: the forms take %zu bytes together (compact JSON), more than "
                                "the %u that travel with the schema to a device",
                 n_files > 0 ? files[0].path : "forms", n_bytes, (unsigned)FORMS_MAX_BYTES);
        free(*out_json);
        *out_json = NULL;
        out = STORE_ESCHEMA;
    }
    if (out == STORE_ENOMEM)
        snprintf(err, err_size, "out of memory reading the forms");
    json_decref(all);
    free(by_table);
    free(paths);
    return out;
}
