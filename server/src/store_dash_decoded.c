/*
 * The dashboard's record views on a store that keeps synced values encoded (PostgreSQL: every
 * synced column is BYTEA holding the value codec's bytes). SQL can only pick a team's rows
 * there (the scope compared with the teams encoded the same way); the filters, text search,
 * sort and paging that store_dashboard.c writes in SQL for SQLite are done here on the decoded
 * values, with SQLite's rules: a value reads as SQLite's text of it, NULL never matches a filter,
 * values sort NULL < numbers < text < blob, the primary key breaks ties.
 *
 * The filters on one column (team, worker, match, dates) are also written in SQL on the encoded
 * bytes, so that only the rows that can match are read: a TEXT or BLOB without a zero byte
 * matches in SQL exactly when its text does here (bytea compares as strcmp does); a number, whose
 * text is SQLite's formatting of it, and a value holding a zero byte (its text ends there) are
 * let through and decided here. The SQL is never narrower than the checks below, which run on
 * every row read. The text search and the sort stay here (SQLite's number formatting and
 * ASCII-only case folding), so a search reads every row its other filters let through.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_arena.h"
#include "store_dashboard.h"
#include "store_values.h"

const char *store_dash_value_text(store_arena *arena, const proto_value *v)
{
    char num[40];

    switch (v->type) {
    case PROTO_INT:
        snprintf(num, sizeof num, "%lld", (long long)v->u.i);
        break;
    case PROTO_REAL:
        /* SQLite's "%!.15g": a whole number keeps its ".0". */
        snprintf(num, sizeof num, "%.15g", v->u.r);
        if (strspn(num, "-0123456789") == strlen(num))
            strcat(num, ".0");
        break;
    case PROTO_TEXT:
    case PROTO_BLOB: {
        char *text = store_arena_alloc(arena, (size_t)v->u.b.n + 1);
        if (text == NULL)
            return NULL;
        memcpy(text, v->u.b.p, v->u.b.n);
        text[v->u.b.n] = 0;
        return text;
    }
    default:
        return NULL;
    }
    return store_arena_strdup(arena, num);
}

/* One row of the team's rows: its values and their text. */
typedef struct decoded_row {
    proto_value *vals;
    const char **texts;
} decoded_row;

typedef struct decoded_set {
    store_arena arena;
    decoded_row *rows;
    size_t n, cap;
} decoded_set;

static void set_free(decoded_set *set)
{
    store_arena_free(&set->arena);
    free(set->rows);
}

/* The one-column filters a query has, as read_rows writes them in SQL. */
typedef struct col_filters {
    int team_idx, worker_idx, match_idx, date_idx; /* -1: none */
    const char *team, *worker, *match, *date_from, *date_to;
} col_filters;

/* The SQL bytes of an encoded synced value's payload, and its type byte. */
#define PAYLOAD "substring(%s FROM 6)"
#define LOOSE "(get_byte(%s, 0) IN (2, 3) OR position(decode('00', 'hex') IN " PAYLOAD ") > 0)"

/* " AND col's text = ?n" as a superset on the encoded bytes: the value encoded as TEXT (?n) or
 * as BLOB (?n+1), or LOOSE. */
static size_t cond_equals(char *sql, size_t size, size_t len, const char *col, int param)
{
    return len + (size_t)snprintf(sql + len, size > len ? size - len : 0,
                                  " AND (%s = ?%d OR %s = ?%d OR " LOOSE ")", col, param, col,
                                  param + 1, col, col);
}

static int bind_equals(db_stmt *stmt, int param, const char *want)
{
    proto_value v;
    memset(&v, 0, sizeof v);
    v.type = PROTO_TEXT;
    v.u.b.p = (const uint8_t *)want;
    v.u.b.n = (uint32_t)strlen(want);
    int rc = store_value_bind_any(stmt, param, &v);
    v.type = PROTO_BLOB;
    return rc == STORE_OK ? store_value_bind_any(stmt, param + 1, &v) : rc;
}

/* Reads every row of t in teams (and, with key, only that primary key; with f, only the rows its
 * filters may let through) into set. */
static int read_rows(store *st, const store_table *t, const char (*teams)[64], uint32_t n_teams,
                     const char *key, const col_filters *f, decoded_set *set)
{
    char sql[8192], name[200];
    size_t len = 0;
    db_stmt *stmt = NULL;
    int rc = STORE_OK;
    /* the filters set, with their columns: equality ones take two parameters each */
    struct {
        int idx;
        const char *want;
    } eq[3] = {{f->team_idx, f->team}, {f->worker_idx, f->worker}, {f->match_idx, f->match}};
    bool from = f->date_idx >= 0 && f->date_from != NULL && *f->date_from;
    bool to = f->date_idx >= 0 && f->date_to != NULL && *f->date_to;

    len += (size_t)snprintf(sql, sizeof sql, "SELECT ");
    for (uint32_t i = 0; i < t->n_cols && len < sizeof sql; i++) {
        if (store_quote_name(st, name, sizeof name, t->cols[i]) != 0)
            return store_fail(st, STORE_EINVAL, "bad column name");
        len += (size_t)snprintf(sql + len, sizeof sql - len, "%s%s", i ? ", " : "", name);
    }
    if (len < sizeof sql && store_quote_name(st, name, sizeof name, t->name) == 0)
        len += (size_t)snprintf(sql + len, sizeof sql - len, " FROM %s WHERE ", name);
    if (len < sizeof sql && store_quote_name(st, name, sizeof name, t->cols[t->scope_idx]) == 0)
        len += (size_t)snprintf(sql + len, sizeof sql - len, "%s IN (", name);
    for (uint32_t i = 0; i < n_teams && len < sizeof sql; i++)
        len += (size_t)snprintf(sql + len, sizeof sql - len, "%s?%u", i ? ", " : "", 2 + i);
    if (len < sizeof sql && store_quote_name(st, name, sizeof name, t->cols[t->pk[0]]) == 0)
        len += (size_t)snprintf(sql + len, sizeof sql - len,
                                ") AND (CAST(?1 AS BLOB) IS NULL OR %s = ?1)", name);
    int param = 2 + (int)n_teams;
    for (int k = 0; k < 3 && len < sizeof sql; k++) {
        if (eq[k].idx < 0 || eq[k].want == NULL)
            continue;
        if (store_quote_name(st, name, sizeof name, t->cols[eq[k].idx]) != 0)
            return store_fail(st, STORE_EINVAL, "bad column name");
        len = cond_equals(sql, sizeof sql, len, name, param);
        param += 2;
    }
    if ((from || to) && store_quote_name(st, name, sizeof name, t->cols[f->date_idx]) != 0)
        return store_fail(st, STORE_EINVAL, "bad column name");
    if (from && len < sizeof sql) { /* text >= from */
        len += (size_t)snprintf(sql + len, sizeof sql - len,
                                " AND (" PAYLOAD " >= ?%d OR get_byte(%s, 0) NOT IN (4, 5) OR "
                                LOOSE ")",
                                name, param, name, name, name);
        param++;
    }
    if (to && len < sizeof sql) /* strncmp(text, to, strlen(to)) <= 0 */
        len += (size_t)snprintf(sql + len, sizeof sql - len,
                                " AND (substring(%s FROM 6 FOR CAST(?%d AS INT4)) <= ?%d OR get_byte(%s, 0)"
                                " NOT IN (4, 5) OR " LOOSE ")",
                                name, param, param + 1, name, name, name);
    if (len >= sizeof sql)
        return store_fail(st, STORE_EINVAL, "query too long for table %s", t->name);

    rc = db_prepare(st->conn, sql, &stmt);
    if (rc == STORE_OK && key) {
        proto_value v;
        memset(&v, 0, sizeof v);
        v.type = PROTO_TEXT;
        v.u.b.p = (const uint8_t *)key;
        v.u.b.n = (uint32_t)strlen(key);
        rc = store_value_bind_any(stmt, 1, &v);
    } else if (rc == STORE_OK) {
        rc = db_bind_null(stmt, 1);
    }
    for (uint32_t i = 0; rc == STORE_OK && i < n_teams; i++) {
        proto_value team;
        memset(&team, 0, sizeof team);
        team.type = PROTO_TEXT;
        team.u.b.p = (const uint8_t *)teams[i];
        team.u.b.n = (uint32_t)strlen(teams[i]);
        rc = store_value_bind_any(stmt, 2 + (int)i, &team);
    }
    param = 2 + (int)n_teams;
    for (int k = 0; k < 3 && rc == STORE_OK; k++) {
        if (eq[k].idx < 0 || eq[k].want == NULL)
            continue;
        rc = bind_equals(stmt, param, eq[k].want);
        param += 2;
    }
    if (from && rc == STORE_OK)
        rc = db_bind_blob(stmt, param++, f->date_from, strlen(f->date_from));
    if (to && rc == STORE_OK)
        rc = db_bind_int64(stmt, param, (int64_t)strlen(f->date_to));
    if (to && rc == STORE_OK)
        rc = db_bind_blob(stmt, param + 1, f->date_to, strlen(f->date_to));
    while (rc == STORE_OK || rc == DB_ROW) {
        rc = db_step(stmt);
        if (rc != DB_ROW)
            break;
        if (set->n == set->cap) {
            size_t ncap = set->cap ? set->cap * 2 : 64;
            decoded_row *grown = realloc(set->rows, ncap * sizeof *grown);
            if (grown == NULL) {
                rc = STORE_ENOMEM;
                break;
            }
            set->rows = grown;
            set->cap = ncap;
        }
        decoded_row *row = &set->rows[set->n];
        row->vals = store_arena_alloc(&set->arena, t->n_cols * sizeof *row->vals);
        row->texts = store_arena_alloc(&set->arena, t->n_cols * sizeof *row->texts);
        if (row->vals == NULL || row->texts == NULL) {
            rc = STORE_ENOMEM;
            break;
        }
        for (uint32_t i = 0; rc == DB_ROW && i < t->n_cols; i++) {
            if (store_value_column_any(&set->arena, stmt, (int)i, &row->vals[i]) != 0)
                rc = STORE_EIO;
            else
                row->texts[i] = store_dash_value_text(&set->arena, &row->vals[i]);
        }
        if (rc == DB_ROW)
            set->n++;
    }
    db_finalize(stmt);
    if (rc == STORE_ENOMEM)
        return store_fail(st, STORE_ENOMEM, "out of memory");
    return rc == DB_DONE ? STORE_OK : store_fail_db(st, rc, "read records");
}

static bool equals(const char *text, const char *want)
{
    return text != NULL && strcmp(text, want) == 0;
}

static bool set_arg(const char *s)
{
    return s != NULL && *s != '\0';
}

/* instr(lower(col1 || ' ' || col2 ...), lower(needle)) > 0, with SQLite's ASCII-only lower. */
static bool contains_text(const decoded_row *row, uint32_t n_cols, const char *needle)
{
    size_t n = strlen(needle), len = 0;
    for (uint32_t i = 0; i < n_cols; i++)
        len += (row->texts[i] ? strlen(row->texts[i]) : 0) + 1;
    char *all = malloc(len + 1), *low = malloc(n + 1);
    bool found = false;
    if (all != NULL && low != NULL) {
        size_t at = 0;
        for (uint32_t i = 0; i < n_cols; i++) {
            const char *t = row->texts[i] ? row->texts[i] : "";
            if (i)
                all[at++] = ' ';
            for (; *t; t++)
                all[at++] = (char)(*t >= 'A' && *t <= 'Z' ? *t + 32 : *t);
        }
        all[at] = 0;
        for (size_t k = 0; k <= n; k++)
            low[k] = (char)(needle[k] >= 'A' && needle[k] <= 'Z' ? needle[k] + 32 : needle[k]);
        found = strstr(all, low) != NULL;
    }
    free(all);
    free(low);
    return found;
}

static int type_rank(const proto_value *v)
{
    switch (v->type) {
    case PROTO_INT:
    case PROTO_REAL:
        return 1;
    case PROTO_TEXT:
        return 2;
    case PROTO_BLOB:
        return 3;
    default:
        return 0;
    }
}

/* SQLite's order of two values (BINARY collation). */
static int value_cmp(const proto_value *a, const proto_value *b)
{
    int ra = type_rank(a), rb = type_rank(b);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    if (ra == 0)
        return 0;
    if (ra == 1) {
        if (a->type == PROTO_INT && b->type == PROTO_INT)
            return (a->u.i > b->u.i) - (a->u.i < b->u.i);
        double x = a->type == PROTO_INT ? (double)a->u.i : a->u.r;
        double y = b->type == PROTO_INT ? (double)b->u.i : b->u.r;
        return (x > y) - (x < y);
    }
    uint32_t n = a->u.b.n < b->u.b.n ? a->u.b.n : b->u.b.n;
    int c = n ? memcmp(a->u.b.p, b->u.b.p, n) : 0;
    return c ? c : (a->u.b.n > b->u.b.n) - (a->u.b.n < b->u.b.n);
}

typedef struct sort_ref {
    const decoded_row *row;
    uint32_t col, pk;
    bool desc;
} sort_ref;

static int by_sort(const void *x, const void *y)
{
    const sort_ref *a = x, *b = y;
    int c = value_cmp(&a->row->vals[a->col], &b->row->vals[b->col]);
    if (c == 0)
        c = value_cmp(&a->row->vals[a->pk], &b->row->vals[b->pk]);
    return a->desc ? -c : c;
}

int store_dash_records_decoded(store *st, const store_table *t, const char (*teams)[64],
                               uint32_t n_teams, const store_dash_query *q,
                               const store_dash_columns *c, uint32_t limit,
                               store_dash_record_cb cb, void *user_data)
{
    decoded_set set = {0};
    sort_ref *refs = NULL;
    size_t n_refs = 0;
    col_filters f = {
        .team_idx = set_arg(q->team) ? (int)t->scope_idx : -1,
        .worker_idx = set_arg(q->worker) ? c->worker_idx : -1,
        .match_idx = c->match_idx,
        .date_idx = c->date_idx,
        .team = q->team,
        .worker = q->worker,
        .match = q->match_value ? q->match_value : "",
        .date_from = q->date_from,
        .date_to = q->date_to,
    };
    int out = read_rows(st, t, teams, n_teams, set_arg(q->id) ? q->id : NULL, &f, &set);

    if (out == STORE_OK && set.n > 0 && (refs = calloc(set.n, sizeof *refs)) == NULL)
        out = store_fail(st, STORE_ENOMEM, "out of memory");
    /* Without a sort or date column: the primary key, newest-looking first (PostgreSQL has no
     * rowid to give the order rows were written in). */
    int order = c->sort_idx >= 0 ? c->sort_idx : c->date_idx >= 0 ? c->date_idx : (int)t->pk[0];
    bool desc = c->sort_idx >= 0 ? c->desc : true;
    for (size_t k = 0; out == STORE_OK && k < set.n; k++) {
        const decoded_row *row = &set.rows[k];
        if (set_arg(q->team) && !equals(row->texts[t->scope_idx], q->team))
            continue;
        if (c->worker_idx >= 0 && set_arg(q->worker) &&
            !equals(row->texts[c->worker_idx], q->worker))
            continue;
        if (c->date_idx >= 0 && set_arg(q->date_from) &&
            (row->texts[c->date_idx] == NULL || strcmp(row->texts[c->date_idx], q->date_from) < 0))
            continue;
        if (c->date_idx >= 0 && set_arg(q->date_to) &&
            (row->texts[c->date_idx] == NULL ||
             strncmp(row->texts[c->date_idx], q->date_to, strlen(q->date_to)) > 0))
            continue;
        if (set_arg(q->text) && !contains_text(row, t->n_cols, q->text))
            continue;
        if (c->match_idx >= 0 &&
            !equals(row->texts[c->match_idx], q->match_value ? q->match_value : ""))
            continue;
        refs[n_refs++] = (sort_ref){row, (uint32_t)order, t->pk[0], desc};
    }
    if (n_refs > 1)
        qsort(refs, n_refs, sizeof *refs, by_sort);
    for (size_t k = q->offset; out == STORE_OK && k < n_refs; k++) {
        if (k - q->offset >= limit) {
            if (q->out_more)
                *q->out_more = true;
            break;
        }
        store_dash_record rec;
        rec.n_cols = t->n_cols;
        rec.cols = (const char *const *)t->cols;
        rec.values = refs[k].row->texts;
        rec.key = rec.values[t->pk[0]] ? rec.values[t->pk[0]] : "";
        out = cb(&rec, user_data);
    }
    free(refs);
    set_free(&set);
    return out;
}

typedef struct day_ref {
    const char *day, *who;
} day_ref;

static int text_cmp(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return (a != NULL) - (b != NULL);
    return strcmp(a, b);
}

static int by_day(const void *x, const void *y)
{
    const day_ref *a = x, *b = y;
    int c = text_cmp(a->day, b->day);
    return c ? c : text_cmp(a->who, b->who);
}

int store_dash_per_day_decoded(store *st, const store_table *t, const char (*teams)[64],
                               uint32_t n_teams, int worker_idx, int date_idx,
                               const char *date_from, store_dash_count_cb cb, void *user_data)
{
    decoded_set set = {0};
    day_ref *days = NULL;
    size_t n_days = 0;
    col_filters f = {.team_idx = -1, .worker_idx = -1, .match_idx = -1, .date_idx = date_idx,
                     .date_from = date_from};
    int out = read_rows(st, t, teams, n_teams, NULL, &f, &set);

    if (out == STORE_OK && set.n > 0 && (days = calloc(set.n, sizeof *days)) == NULL)
        out = store_fail(st, STORE_ENOMEM, "out of memory");
    for (size_t k = 0; out == STORE_OK && k < set.n; k++) {
        const char *date = set.rows[k].texts[date_idx];
        char *day = NULL;
        if (date != NULL) { /* substr(date, 1, 10) */
            day = store_arena_strdup(&set.arena, date);
            if (day == NULL) {
                out = store_fail(st, STORE_ENOMEM, "out of memory");
                break;
            }
            if (strlen(day) > 10)
                day[10] = 0;
        }
        if (set_arg(date_from) && (day == NULL || strcmp(day, date_from) < 0))
            continue;
        days[n_days++] = (day_ref){day, set.rows[k].texts[worker_idx]};
    }
    if (n_days > 1)
        qsort(days, n_days, sizeof *days, by_day);
    for (size_t k = 0; out == STORE_OK && k < n_days;) {
        size_t run = 1;
        while (k + run < n_days && by_day(&days[k], &days[k + run]) == 0)
            run++;
        out = cb(days[k].day ? days[k].day : "", days[k].who ? days[k].who : "", run, user_data);
        k += run;
    }
    free(days);
    set_free(&set);
    return out;
}
