/*
 * Watch rules: reading watch.json, checking each rule's expressions, preparing the statements
 * that find open items. See watch.h for the safety rules and docs/watch.md for the format.
 */
#include "watch.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

enum { SQL_MAX = 8192 };

static char *dup_str(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void rule_free(watch_rule *r)
{
    free(r->id);
    free(r->table);
    free(r->severity);
    free(r->title_json);
    free(r->title_en);
    free(r->when);
    free(r->due);
    free(r->alias);
    for (uint32_t k = 0; k < r->n_params; k++) {
        free(r->params[k].name);
        free(r->params[k].s);
    }
    free(r->params);
    memset(r, 0, sizeof *r);
}

void watch_rules_free(watch_rules *rules)
{
    if (rules == NULL)
        return;
    for (uint32_t i = 0; i < rules->n; i++)
        rule_free(&rules->rules[i]);
    free(rules->rules);
    memset(rules, 0, sizeof *rules);
}

static bool ident_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
            return false;
    return true;
}

/* A required string member; "" when missing or not a string. */
static const char *member_str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* A configured number out of a sane range would make every due time NULL (never fires) or
 * absurd: refused by name (days, hours, minutes) or, for other numbers, 0..1000000. */
static int param_range_check(const char *id, const char *key, const watch_param *p, char *err,
                             size_t err_size)
{
    static const struct {
        const char *part;
        double max;
    } units[] = {{"day", 3650}, {"hour", 87600}, {"minute", 5256000}, {"week", 520}};
    double max = 1000000;
    const char *unit = "";
    for (size_t k = 0; k < sizeof units / sizeof units[0]; k++) {
        if (strstr(key, units[k].part) != NULL) {
            max = units[k].max;
            unit = units[k].part;
            break;
        }
    }
    double v = p->type == SQLITE_INTEGER ? (double)p->i : p->d;
    if (!(v >= 0 && v <= max)) { /* NaN fails too */
        snprintf(err, err_size,
                 "rule %s: parameter %.64s is %g; it must be between 0 and %.0f%s%s%s", id, key,
                 v, max, unit[0] ? " " : "", unit, unit[0] ? "s" : "");
        return -1;
    }
    return 0;
}

static int parse_params(json_t *obj, watch_rule *r, char *err, size_t err_size)
{
    json_t *params = json_object_get(obj, "params");
    if (params == NULL)
        return 0;
    if (!json_is_object(params)) {
        snprintf(err, err_size, "rule %s: params must be an object of name: value", r->id);
        return -1;
    }
    r->params = calloc(json_object_size(params) + 1, sizeof *r->params);
    if (r->params == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    const char *key;
    json_t *value;
    json_object_foreach(params, key, value) {
        watch_param *p = &r->params[r->n_params];
        if (!ident_ok(key, 63) || strcmp(key, "now") == 0 || strcmp(key, "team") == 0 ||
            strcmp(key, "since") == 0) {
            snprintf(err, err_size,
                     "rule %s: parameter name \"%.64s\" must be lower case letters, digits and _ "
                     "(and not now, team or since)",
                     r->id, key);
            return -1;
        }
        if (json_is_integer(value)) {
            p->type = SQLITE_INTEGER;
            p->i = (int64_t)json_integer_value(value);
        } else if (json_is_real(value)) {
            p->type = SQLITE_FLOAT;
            p->d = json_real_value(value);
        } else if (json_is_string(value)) {
            p->type = SQLITE_TEXT;
            p->s = dup_str(json_string_value(value));
        } else {
            snprintf(err, err_size, "rule %s: parameter %s must be a number or a string", r->id,
                     key);
            return -1;
        }
        if (p->type != SQLITE_TEXT && param_range_check(r->id, key, p, err, err_size) != 0)
            return -1;
        p->name = dup_str(key);
        r->n_params++;
        if (p->name == NULL || (p->type == SQLITE_TEXT && p->s == NULL)) {
            snprintf(err, err_size, "out of memory");
            return -1;
        }
    }
    return 0;
}

static int parse_title(json_t *obj, watch_rule *r, char *err, size_t err_size)
{
    json_t *title = json_object_get(obj, "title");
    json_t *as_obj = NULL;
    if (json_is_string(title))
        as_obj = json_pack("{sO}", "en", title);
    else if (json_is_object(title) && json_is_string(json_object_get(title, "en")))
        as_obj = json_incref(title);
    if (as_obj == NULL) {
        snprintf(err, err_size,
                 "rule %s: title must be a text or an object of language: text with \"en\"",
                 r->id);
        return -1;
    }
    const char *lang;
    json_t *text;
    json_object_foreach(as_obj, lang, text) {
        if (!json_is_string(text) || json_string_length(text) == 0) {
            snprintf(err, err_size, "rule %s: title in %.8s must be a non-empty text", r->id,
                     lang);
            json_decref(as_obj);
            return -1;
        }
    }
    r->title_json = json_dumps(as_obj, JSON_COMPACT | JSON_SORT_KEYS);
    r->title_en = dup_str(json_string_value(json_object_get(as_obj, "en")));
    json_decref(as_obj);
    if (r->title_json == NULL || r->title_en == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    return 0;
}

static int parse_rule(json_t *obj, uint32_t pos, watch_rule *r, char *err, size_t err_size)
{
    if (!json_is_object(obj)) {
        snprintf(err, err_size, "rule %u: must be an object", pos + 1);
        return -1;
    }
    const char *id = member_str(obj, "id");
    if (!ident_ok(id, 63)) {
        snprintf(err, err_size,
                 "rule %u: id must be 1 to 63 lower case letters, digits and _ (got \"%.64s\")",
                 pos + 1, id);
        return -1;
    }
    r->id = dup_str(id);
    static const char *const allowed[] = {"id",  "table", "severity", "title",
                                          "when", "due",  "alias",    "params"};
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        bool known = false;
        for (size_t k = 0; k < sizeof allowed / sizeof allowed[0]; k++)
            known = known || strcmp(key, allowed[k]) == 0;
        if (!known) {
            snprintf(err, err_size,
                     "rule %s: unknown key \"%.64s\" (known: id, table, severity, title, when, "
                     "due, alias, params)",
                     id, key);
            return -1;
        }
    }
    const char *severity = member_str(obj, "severity");
    if (strcmp(severity, "high") != 0 && strcmp(severity, "medium") != 0 &&
        strcmp(severity, "low") != 0) {
        snprintf(err, err_size, "rule %s: severity must be high, medium or low (got \"%.32s\")",
                 id, severity);
        return -1;
    }
    static const char *const required[] = {"table", "when", "due"};
    for (size_t k = 0; k < 3; k++) {
        if (member_str(obj, required[k])[0] == '\0') {
            snprintf(err, err_size, "rule %s: %s is required (a non-empty text)", id,
                     required[k]);
            return -1;
        }
    }
    json_t *alias = json_object_get(obj, "alias");
    if (alias != NULL && !json_is_string(alias)) {
        snprintf(err, err_size, "rule %s: alias must name a column", id);
        return -1;
    }
    r->table = dup_str(member_str(obj, "table"));
    r->severity = dup_str(severity);
    r->when = dup_str(member_str(obj, "when"));
    r->due = dup_str(member_str(obj, "due"));
    r->alias = alias ? dup_str(json_string_value(alias)) : NULL;
    if (!r->id || !r->table || !r->severity || !r->when || !r->due || (alias && !r->alias)) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    if (parse_title(obj, r, err, err_size) != 0)
        return -1;
    return parse_params(obj, r, err, err_size);
}

int watch_rules_parse(const char *json, watch_rules *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loads(json ? json : "", JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, err_size, "line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        return -1;
    }
    int rc = 0;
    json_t *rules = json_object_get(root, "rules");
    if (!json_is_object(root) || !json_is_array(rules)) {
        snprintf(err, err_size, "the file must be an object {\"rules\": [...]}");
        rc = -1;
        goto done;
    }
    out->rules = calloc(json_array_size(rules) + 1, sizeof *out->rules);
    if (out->rules == NULL) {
        snprintf(err, err_size, "out of memory");
        rc = -1;
        goto done;
    }
    for (size_t i = 0; rc == 0 && i < json_array_size(rules); i++) {
        watch_rule *r = &out->rules[out->n++];
        rc = parse_rule(json_array_get(rules, i), (uint32_t)i, r, err, err_size);
        for (uint32_t k = 0; rc == 0 && k + 1 < out->n; k++) {
            if (strcmp(out->rules[k].id, r->id) == 0) {
                snprintf(err, err_size, "rule %s: the id is used twice", r->id);
                rc = -1;
            }
        }
    }
done:
    json_decref(root);
    if (rc != 0)
        watch_rules_free(out);
    return rc;
}

/* ---- Checking an expression ----------------------------------------------------------------- */

/* Date functions that read the clock when called with no time. */
static bool is_clock_function(const char *name, size_t len)
{
    static const char *const names[] = {"date", "time", "datetime", "julianday", "unixepoch"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (strlen(names[k]) == len && strncasecmp(name, names[k], len) == 0)
            return true;
    return false;
}

/* The columns whose values a rule reads as times (first argument of a date function). */
typedef struct time_cols {
    uint32_t n;
    char name[WATCH_TIME_COLS_MAX][64];
} time_cols;

/* Skips one argument of a call from expr[i] (strings and nested parentheses included); returns
 * the index of the ',' or ')' that ends it, or n. */
static size_t skip_arg(const char *expr, size_t n, size_t i)
{
    int depth = 0;
    for (; i < n; i++) {
        char c = expr[i];
        if (c == '\'' || c == '"' || c == '`' || c == '[') {
            char close = c == '[' ? ']' : c;
            for (i++; i < n && expr[i] != close; i++)
                ;
            continue;
        }
        if (c == '(')
            depth++;
        else if (c == ')' && depth-- == 0)
            return i;
        else if (c == ',' && depth == 0)
            return i;
    }
    return n;
}

/* A date function reads the clock for the time value 'now' (in any spelling a computation can
 * produce), so its time argument must be a bare column name or :now, nothing computed. The
 * column is remembered: its values are checked for being readable times (watch.h). */
static int time_arg_check(const char *id, const char *what, const char *expr, size_t n,
                          const char *fn, size_t fn_len, size_t open, time_cols *cols, char *err,
                          size_t err_size)
{
    size_t at = open + 1;
    if (fn_len == 8 && strncasecmp(fn, "strftime", 8) == 0) {
        at = skip_arg(expr, n, at); /* the format comes first */
        if (at >= n || expr[at] != ',')
            return 0; /* SQLite itself refuses strftime(fmt) with no time as a wrong call */
        at++;
    }
    size_t end = skip_arg(expr, n, at);
    while (at < end && isspace((unsigned char)expr[at]))
        at++;
    size_t last = end;
    while (last > at && isspace((unsigned char)expr[last - 1]))
        last--;
    size_t len = last - at;
    bool ident = len > 0 && (isalpha((unsigned char)expr[at]) || expr[at] == '_');
    for (size_t k = at; ident && k < last; k++)
        ident = isalnum((unsigned char)expr[k]) || expr[k] == '_';
    if (len == 4 && strncmp(expr + at, ":now", 4) == 0)
        return 0;
    if (len == 5 && strncasecmp(expr + at, "'now'", 5) == 0)
        return 0; /* refused with its own words when the scan reaches the text */
    if (!ident || len >= sizeof cols->name[0]) {
        snprintf(err, err_size,
                 "rule %s: %s calls %.*s() on \"%.*s\": its time must be a column name or :now "
                 "(a computed time could read the clock)",
                 id, what, (int)fn_len, fn, (int)(len > 60 ? 60 : len), expr + at);
        return -1;
    }
    if (len == 4 && strncasecmp(expr + at, "null", 4) == 0)
        return 0;
    for (uint32_t k = 0; k < cols->n; k++)
        if (strlen(cols->name[k]) == len && strncasecmp(cols->name[k], expr + at, len) == 0)
            return 0;
    if (cols->n == WATCH_TIME_COLS_MAX) {
        snprintf(err, err_size, "rule %s: reads more than %d time columns", id,
                 WATCH_TIME_COLS_MAX);
        return -1;
    }
    snprintf(cols->name[cols->n++], sizeof cols->name[0], "%.*s", (int)len, expr + at);
    return 0;
}

/* The text-level rules: what could let an expression leave its parentheses or do more than
 * compute a value from one row. */
static int lex_check(const char *id, const char *what, const char *expr, time_cols *cols,
                     char *err, size_t err_size)
{
    size_t n = strlen(expr);
    if (n > WATCH_EXPR_MAX) {
        snprintf(err, err_size, "rule %s: %s is longer than %d bytes", id, what, WATCH_EXPR_MAX);
        return -1;
    }
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        char c = expr[i];
        if (c == '\'' || c == '"' || c == '`' || c == '[') {
            char close = c == '[' ? ']' : c;
            size_t start = i + 1;
            for (i++; i < n; i++) {
                if (expr[i] == close) {
                    if (close != ']' && i + 1 < n && expr[i + 1] == close) {
                        i++;
                        continue;
                    }
                    break;
                }
            }
            if (i >= n) {
                snprintf(err, err_size, "rule %s: %s has an unterminated %c", id, what, c);
                return -1;
            }
            size_t next = i + 1;
            while (next < n && isspace((unsigned char)expr[next]))
                next++;
            if (c != '\'' && next < n && expr[next] == '(') {
                snprintf(err, err_size, "rule %s: %s calls a function by a quoted name", id,
                         what);
                return -1;
            }
            if (c == '\'' && i - start == 3 && strncasecmp(expr + start, "now", 3) == 0) {
                snprintf(err, err_size,
                         "rule %s: %s uses 'now': use the parameter :now (the server's clock)",
                         id, what);
                return -1;
            }
            continue;
        }
        if ((c == '-' && i + 1 < n && expr[i + 1] == '-') ||
            (c == '/' && i + 1 < n && expr[i + 1] == '*')) {
            snprintf(err, err_size, "rule %s: %s has a comment", id, what);
            return -1;
        }
        if (c == ';') {
            snprintf(err, err_size, "rule %s: %s has a ';' (one expression only)", id, what);
            return -1;
        }
        if (c == '(')
            depth++;
        if (c == ')' && --depth < 0) {
            snprintf(err, err_size, "rule %s: %s closes a parenthesis it did not open", id, what);
            return -1;
        }
        if (isalpha((unsigned char)c) || c == '_') {
            size_t start = i;
            while (i + 1 < n && (isalnum((unsigned char)expr[i + 1]) || expr[i + 1] == '_'))
                i++;
            size_t len = i - start + 1;
            size_t after = i + 1;
            while (after < n && isspace((unsigned char)expr[after]))
                after++;
            bool call = after < n && expr[after] == '(';
            size_t inner = after + 1;
            while (call && inner < n && isspace((unsigned char)expr[inner]))
                inner++;
            if (call && inner < n && expr[inner] == ')' && is_clock_function(expr + start, len)) {
                snprintf(err, err_size,
                         "rule %s: %s calls %.*s() without a time: use the parameter :now", id,
                         what, (int)len, expr + start);
                return -1;
            }
            if (call && (is_clock_function(expr + start, len) ||
                         (len == 8 && strncasecmp(expr + start, "strftime", 8) == 0)) &&
                time_arg_check(id, what, expr, n, expr + start, len, after, cols, err,
                               err_size) != 0)
                return -1;
            if (len > 8 && strncasecmp(expr + start, "current_", 8) == 0) {
                snprintf(err, err_size, "rule %s: %s uses %.*s: use the parameter :now", id,
                         what, (int)len, expr + start);
                return -1;
            }
            if (len == 4 && strncasecmp(expr + start, "over", 4) == 0) {
                snprintf(err, err_size,
                         "rule %s: %s uses a window function (not allowed in a rule)", id, what);
                return -1;
            }
            if (len == 6 && strncasecmp(expr + start, "select", 6) == 0) {
                snprintf(err, err_size, "rule %s: %s has a subquery (SELECT is not allowed)", id,
                         what);
                return -1;
            }
        }
    }
    if (depth != 0) {
        snprintf(err, err_size, "rule %s: %s leaves a parenthesis open", id, what);
        return -1;
    }
    return 0;
}

/* Functions an expression may call: pure, deterministic given :now, no I/O. */
static const char *const allowed_functions[] = {
    "abs",     "coalesce", "date",   "datetime", "glob",   "ifnull",    "iif",   "instr",
    "julianday", "length", "like",   "lower",    "ltrim",  "max",       "min",   "nullif",
    "replace", "round",    "rtrim",  "strftime", "substr", "substring", "time",  "trim",
    "typeof",  "unixepoch", "upper", "count",    "total",  "sum"};

typedef struct auth_ctx {
    const char *table;
    int max_selects; /* 1, or 2 for the counts statement (our own outer query) */
    int n_selects;
    char denied[160]; /* what was refused first */
} auth_ctx;

static int authorize(void *user_data, int action, const char *a3, const char *a4,
                     const char *db_name, const char *trigger)
{
    auth_ctx *ctx = user_data;
    (void)db_name;
    (void)trigger;
    switch (action) {
    case SQLITE_SELECT:
        if (++ctx->n_selects <= ctx->max_selects)
            return SQLITE_OK;
        snprintf(ctx->denied, sizeof ctx->denied, "a subquery");
        return SQLITE_DENY;
    case SQLITE_READ:
        if (a3 != NULL && strcasecmp(a3, ctx->table) == 0)
            return SQLITE_OK;
        snprintf(ctx->denied, sizeof ctx->denied, "reading table %.64s", a3 ? a3 : "?");
        return SQLITE_DENY;
    case SQLITE_FUNCTION:
        for (size_t k = 0; k < sizeof allowed_functions / sizeof allowed_functions[0]; k++)
            if (a4 != NULL && strcasecmp(a4, allowed_functions[k]) == 0)
                return SQLITE_OK;
        snprintf(ctx->denied, sizeof ctx->denied, "the function %.64s", a4 ? a4 : "?");
        return SQLITE_DENY;
    default:
        snprintf(ctx->denied, sizeof ctx->denied, "SQL action %d", action);
        return SQLITE_DENY;
    }
}

static bool param_known(const watch_rule *r, const char *name, bool wrapper)
{
    if (name == NULL || name[0] != ':')
        return false;
    name++;
    if (strcmp(name, "now") == 0)
        return true;
    if (wrapper && (strcmp(name, "team") == 0 || strcmp(name, "since") == 0))
        return true;
    for (uint32_t k = 0; k < r->n_params; k++)
        if (strcmp(r->params[k].name, name) == 0)
            return true;
    return false;
}

/* Prepares sql under the authorizer for rule r. wrapper says whether the statement is ours
 * (it may use :team and :since) or a rule expression alone. */
static int prepare_checked(sqlite3 *db, const watch_rule *r, const char *what, const char *sql,
                           int wrapper_selects, const watch_restore *restore,
                           sqlite3_stmt **out_stmt, char *err, size_t err_size)
{
    bool wrapper = wrapper_selects > 0;
    auth_ctx ctx = {r->table, wrapper ? wrapper_selects : 1, 0, ""};
    sqlite3_stmt *stmt = NULL;
    const char *tail = NULL;
    sqlite3_set_authorizer(db, authorize, &ctx);
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, &tail);
    sqlite3_set_authorizer(db, restore ? restore->auth : NULL, restore ? restore->ctx : NULL);
    if (rc != SQLITE_OK) {
        if (ctx.denied[0])
            snprintf(err, err_size, "rule %s: %s uses %s (not allowed in a rule)", r->id, what,
                     ctx.denied);
        else
            snprintf(err, err_size, "rule %s: %s: %s", r->id, what, sqlite3_errmsg(db));
        goto fail;
    }
    if (tail != NULL && tail[strspn(tail, " \t\r\n")] != '\0') {
        snprintf(err, err_size, "rule %s: %s is more than one expression", r->id, what);
        goto fail;
    }
    for (int k = 1; k <= sqlite3_bind_parameter_count(stmt); k++) {
        const char *name = sqlite3_bind_parameter_name(stmt, k);
        if (!param_known(r, name, wrapper)) {
            snprintf(err, err_size, "rule %s: %s uses the parameter %.64s, which is not :now or "
                     "one of the rule's params",
                     r->id, what, name ? name : "?");
            goto fail;
        }
    }
    *out_stmt = stmt;
    return 0;
fail:
    sqlite3_finalize(stmt);
    return -1;
}

static int quote_ident(char *out, size_t size, const char *name)
{
    size_t at = 0;
    if (size < 3)
        return -1;
    out[at++] = '"';
    for (const char *p = name; *p; p++) {
        if (at + 4 > size)
            return -1;
        out[at++] = *p;
        if (*p == '"')
            out[at++] = '"';
    }
    out[at++] = '"';
    out[at] = '\0';
    return 0;
}

/* The table's one primary key column (pk_out) and whether the named columns exist. */
static int check_table(sqlite3 *db, const watch_rule *r, const char *scope_col, char *pk_out,
                       size_t pk_size, char *err, size_t err_size)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT name, pk FROM pragma_table_info(?1)", -1, &stmt,
                                NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 1, r->table, -1, SQLITE_STATIC);
    int n_cols = 0, n_pk = 0;
    bool have_scope = false, have_alias = r->alias == NULL;
    pk_out[0] = '\0';
    while (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(stmt, 0);
        n_cols++;
        if (sqlite3_column_int(stmt, 1) > 0) {
            n_pk++;
            snprintf(pk_out, pk_size, "%s", name ? name : "");
        }
        have_scope = have_scope || (name && strcasecmp(name, scope_col) == 0);
        have_alias = have_alias || (name && strcasecmp(name, r->alias) == 0);
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK) {
        snprintf(err, err_size, "rule %s: reading table %s: %s", r->id, r->table,
                 sqlite3_errmsg(db));
        return -1;
    }
    if (n_cols == 0) {
        snprintf(err, err_size, "rule %s: no table %.64s in the schema", r->id, r->table);
        return -1;
    }
    if (n_pk != 1) {
        snprintf(err, err_size, "rule %s: table %s must have a one-column primary key", r->id,
                 r->table);
        return -1;
    }
    if (!have_scope) {
        snprintf(err, err_size, "rule %s: table %s has no scope column %s", r->id, r->table,
                 scope_col);
        return -1;
    }
    if (!have_alias) {
        snprintf(err, err_size, "rule %s: alias: table %s has no column %.64s", r->id, r->table,
                 r->alias);
        return -1;
    }
    return 0;
}

typedef enum { STMT_ITEMS, STMT_COUNTS } stmt_kind;

static int build(sqlite3 *db, const watch_rule *r, const char *scope_col, stmt_kind kind,
                 const watch_restore *restore, sqlite3_stmt **out_stmt, char *err,
                 size_t err_size)
{
    char pk[256], pk_q[600], table_q[600], scope_q[600], alias_q[600];
    char *sql = NULL;
    *out_stmt = NULL;
    if (check_table(db, r, scope_col, pk, sizeof pk, err, err_size) != 0)
        return -1;
    time_cols cols = {0};
    if (lex_check(r->id, "when", r->when, &cols, err, err_size) != 0 ||
        lex_check(r->id, "due", r->due, &cols, err, err_size) != 0)
        return -1;
    /* CASE WHEN c IS NOT NULL AND (datetime(c) IS NULL OR c NOT GLOB '*[0-9]*') THEN 'c' ... */
    /* names are at most 63 bytes of [A-Za-z0-9_]: a clause is under 4 * 63 + 100 bytes */
    char unreadable[WATCH_TIME_COLS_MAX * 360 + 16] = "NULL";
    if (cols.n > 0) {
        size_t at = (size_t)snprintf(unreadable, sizeof unreadable, "CASE");
        for (uint32_t k = 0; k < cols.n && at < sizeof unreadable; k++)
            at += (size_t)snprintf(unreadable + at, sizeof unreadable - at,
                                   " WHEN %s IS NOT NULL AND (datetime(%s) IS NULL OR"
                                   " %s NOT GLOB '*[0-9]*') THEN '%s'",
                                   cols.name[k], cols.name[k], cols.name[k], cols.name[k]);
        if (at < sizeof unreadable)
            at += (size_t)snprintf(unreadable + at, sizeof unreadable - at, " END");
        if (at >= sizeof unreadable) {
            snprintf(err, err_size, "rule %s: its time columns' names are too long", r->id);
            return -1;
        }
    }
    if (quote_ident(pk_q, sizeof pk_q, pk) != 0 || quote_ident(table_q, sizeof table_q, r->table) ||
        quote_ident(scope_q, sizeof scope_q, scope_col) != 0 ||
        (r->alias && quote_ident(alias_q, sizeof alias_q, r->alias) != 0)) {
        snprintf(err, err_size, "rule %s: a name is too long", r->id);
        return -1;
    }
    /* Each expression alone first, so that an error names the part it is in. */
    sqlite3_stmt *alone = NULL;
    const char *parts[2][2] = {{"when", r->when}, {"due", r->due}};
    for (int k = 0; k < 2; k++) {
        sql = sqlite3_mprintf("SELECT (%s) FROM %s", parts[k][1], table_q);
        if (sql == NULL) {
            snprintf(err, err_size, "out of memory");
            return -1;
        }
        int rc = prepare_checked(db, r, parts[k][0], sql, 0, restore, &alone, err, err_size);
        sqlite3_free(sql);
        sqlite3_finalize(alone);
        alone = NULL;
        if (rc != 0)
            return -1;
    }
    if (kind == STMT_ITEMS)
        sql = sqlite3_mprintf("SELECT %s, %s, iif((%s) IS NULL, datetime((%s)), :now) AS due_at,"
                              " (%s) AS unreadable FROM %s WHERE %s = :team AND"
                              " ((unreadable IS NULL AND due_at IS NOT NULL AND due_at <= :now"
                              " AND ((%s))) OR (unreadable IS NOT NULL AND ((%s)) IS NOT 0))"
                              " ORDER BY due_at, 1",
                              pk_q, r->alias ? alias_q : "NULL", unreadable, r->due, unreadable,
                              table_q, scope_q, r->when, r->when);
    else
        sql = sqlite3_mprintf("SELECT date(due_at, '-6 days', 'weekday 1') AS week, count(*),"
                              " total(open) FROM (SELECT datetime((%s)) AS due_at,"
                              " CASE WHEN ((%s)) THEN 1 ELSE 0 END AS open FROM %s"
                              " WHERE %s = :team) WHERE due_at IS NOT NULL AND due_at <= :now"
                              " AND due_at >= :since GROUP BY week ORDER BY week",
                              r->due, r->when, table_q, scope_q);
    if (sql == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    int rc = prepare_checked(db, r, "the rule", sql, kind == STMT_ITEMS ? 1 : 2, restore, out_stmt, err, err_size);
    sqlite3_free(sql);
    return rc;
}

int watch_rule_check(sqlite3 *db, const watch_rule *rule, const char *scope_col, char *err,
                     size_t err_size)
{
    sqlite3_stmt *stmt = NULL;
    int rc = build(db, rule, scope_col, STMT_ITEMS, NULL, &stmt, err, err_size);
    sqlite3_finalize(stmt);
    stmt = NULL;
    if (rc == 0)
        rc = build(db, rule, scope_col, STMT_COUNTS, NULL, &stmt, err, err_size);
    sqlite3_finalize(stmt);
    return rc;
}

int watch_rule_prepare(sqlite3 *db, const watch_rule *rule, const char *scope_col,
                       const watch_restore *restore, sqlite3_stmt **out_stmt, char *err,
                       size_t err_size)
{
    return build(db, rule, scope_col, STMT_ITEMS, restore, out_stmt, err, err_size);
}

int watch_rule_prepare_counts(sqlite3 *db, const watch_rule *rule, const char *scope_col,
                              sqlite3_stmt **out_stmt, char *err, size_t err_size)
{
    return build(db, rule, scope_col, STMT_COUNTS, NULL, out_stmt, err, err_size);
}

char *watch_unreadable_title(const watch_rule *rule, const char *column)
{
    json_t *title = json_loads(rule->title_json, 0, NULL);
    const char *es = json_string_value(json_object_get(title, "es"));
    json_t *out = json_object();
    char *dumped = NULL;
    size_t en_size = strlen(column) + strlen(rule->title_en) + 32;
    size_t es_size = es ? strlen(column) + strlen(es) + 32 : 0;
    char *en_text = malloc(en_size), *es_text = es ? malloc(es_size) : NULL;
    if (en_text)
        snprintf(en_text, en_size, "Time not readable: %s (%s)", column, rule->title_en);
    if (es_text)
        snprintf(es_text, es_size, "Hora ilegible: %s (%s)", column, es);
    if (out && en_text && json_object_set_new(out, "en", json_string(en_text)) == 0 &&
        (es_text == NULL || json_object_set_new(out, "es", json_string(es_text)) == 0))
        dumped = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    free(en_text);
    free(es_text);
    json_decref(out);
    json_decref(title);
    return dumped;
}

void watch_format_time(uint64_t ms, char out[20])
{
    time_t secs = (time_t)(ms / 1000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, 20, "%Y-%m-%d %H:%M:%S", &tm);
}

static int bind_named(sqlite3_stmt *stmt, const char *name, int (*bind)(sqlite3_stmt *, int,
                                                                       const void *),
                      const void *value)
{
    int idx = sqlite3_bind_parameter_index(stmt, name);
    return idx > 0 ? bind(stmt, idx, value) : SQLITE_OK;
}

static int bind_text(sqlite3_stmt *stmt, int idx, const void *value)
{
    return sqlite3_bind_text(stmt, idx, value, -1, SQLITE_TRANSIENT);
}

int watch_bind(sqlite3_stmt *stmt, const watch_rule *rule, const char *team, uint64_t now_ms,
               uint64_t since_ms)
{
    char now[20], since[20];
    watch_format_time(now_ms, now);
    watch_format_time(since_ms, since);
    int rc = bind_named(stmt, ":team", bind_text, team);
    if (rc == SQLITE_OK)
        rc = bind_named(stmt, ":now", bind_text, now);
    if (rc == SQLITE_OK)
        rc = bind_named(stmt, ":since", bind_text, since);
    for (uint32_t k = 0; rc == SQLITE_OK && k < rule->n_params; k++) {
        const watch_param *p = &rule->params[k];
        char name[80];
        snprintf(name, sizeof name, ":%s", p->name);
        int idx = sqlite3_bind_parameter_index(stmt, name);
        if (idx <= 0)
            continue;
        if (p->type == SQLITE_INTEGER)
            rc = sqlite3_bind_int64(stmt, idx, p->i);
        else if (p->type == SQLITE_FLOAT)
            rc = sqlite3_bind_double(stmt, idx, p->d);
        else
            rc = sqlite3_bind_text(stmt, idx, p->s, -1, SQLITE_TRANSIENT);
    }
    return rc;
}
