/*
 * `outpost field`: the field app. A small web app served on 127.0.0.1 only, over the replica
 * this process holds open, with the sync engine running beside it when the device is enrolled.
 *
 * Plain HTTP, on purpose: the socket is bound to the loopback interface, so no byte of it
 * leaves the machine, and a certificate for 127.0.0.1 would have to be made on each device and
 * trusted in its browser by hand. What keeps other local programs and other web pages out is
 * the token: 192 random bits made at each start, printed once, and required as the first
 * segment of every path. A request without it is answered 403 and nothing else.
 *
 * Paths below /TOKEN/: index.html, app.js, app.css (embedded from field-web/ at build time) and
 * the JSON API the page uses:
 *   GET  api/info                 forms (the server's, outpost_forms_json, or --forms DIR),
 *                                 synced tables with their columns and CREATE TABLE,
 *                                 the worker (--worker) and the worker's teams
 *   GET  api/status               the sync status line
 *   GET  api/records?table=T&q=S  up to 200 rows, newest first, each with its sync state
 *   GET  api/record?table=T&key=K one row, its state and its recorded conflicts
 *   GET  api/rejected             changes the server refused, with the values typed
 *   GET  api/watch                this device's Needs attention items (outpost_watch_items at
 *                                 the wall clock): rule, severity, title, table, team, key,
 *                                 alias, due
 *   POST api/save                 {"table","key"|null,"values":{column: value}}: insert or update
 *   POST api/rejected/resubmit    {"id","values":{column: value}}: corrected, written again
 *   POST api/rejected/discard     {"id"}
 *   POST api/sync                 sync now
 * Request bodies are read with SQLite's JSON functions (json_each, json_extract), not by hand.
 */
#include "field.h"
#include "json_where.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "http_reply.h"
#include "web_asset.h"

#define TOKEN_BYTES 24
#define BODY_MAX (256u * 1024u)
#define LIST_MAX 200
#define COLUMNS_MAX 60 /* json_object() takes at most 127 arguments */
#define TICK_US (200 * LWS_US_PER_MS)

typedef struct field_app {
    outpost_replica *r;
    outpost_sync *sync; /* NULL when the replica is not enrolled */
    const field_options *opt;
    char token[2 * TOKEN_BYTES + 1];
    char *forms_json; /* a JSON array of form objects */
    struct lws_context *context;
    lws_sorted_usec_list_t tick;
    int port; /* the port listened on: the only one a Host header may name */
    const char *worker; /* the server's word for this device (outpost_worker_id), else --worker */
    char worker_buf[OUTPOST_WORKER_ID_SIZE];
} field_app;

/* One HTTP request; lws allocates it per connection and zeroes it. */
typedef struct field_req {
    struct lws *wsi;
    char path[256];
    char host[96]; /* the Host header as sent */
    bool is_post;
    char *body;
    size_t body_len;
    bool body_too_big;
    http_reply reply;
} field_req;

/* A table's columns, from PRAGMA table_info. */
typedef struct table_info {
    char *names[COLUMNS_MAX];
    uint32_t n;
    int pk; /* index of the single primary key column; -1 when there is none or several */
} table_info;

static volatile sig_atomic_t field_stop;
static volatile sig_atomic_t field_wiped;

static void on_stop_signal(int sig)
{
    (void)sig;
    field_stop = 1;
}

/* ---- JSON output ------------------------------------------------------------------------ */

static void json_text(sqlite3_str *s, const char *p, size_t n)
{
    sqlite3_str_appendchar(s, 1, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\')
            sqlite3_str_appendf(s, "\\%c", c);
        else if (c < 0x20)
            sqlite3_str_appendf(s, "\\u%04x", c);
        else
            sqlite3_str_appendchar(s, 1, (char)c);
    }
    sqlite3_str_appendchar(s, 1, '"');
}

static void json_cstr(sqlite3_str *s, const char *p)
{
    if (p)
        json_text(s, p, strlen(p));
    else
        sqlite3_str_appendall(s, "null");
}

static void json_value(sqlite3_str *s, const outpost_value *v)
{
    switch (v->type) {
    case OUTPOST_VALUE_INT: sqlite3_str_appendf(s, "%lld", (long long)v->u.i); break;
    case OUTPOST_VALUE_REAL: sqlite3_str_appendf(s, "%!.17g", v->u.r); break;
    case OUTPOST_VALUE_TEXT: json_text(s, (const char *)v->u.b.p, v->u.b.n); break;
    case OUTPOST_VALUE_BLOB: sqlite3_str_appendf(s, "\"<%u-byte blob>\"", (unsigned)v->u.b.n); break;
    default: sqlite3_str_appendall(s, "null"); break;
    }
}

/* ---- responses -------------------------------------------------------------------------- */

static void respond(field_req *req, int status, const char *content_type, const void *data,
                    size_t n_bytes)
{
    http_reply_start(&req->reply, req->wsi, status, content_type, data, n_bytes, NULL);
}

/* Sends what s holds as JSON and frees it. */
static int respond_json(field_req *req, int status, sqlite3_str *s)
{
    int n = sqlite3_str_length(s);
    char *text = sqlite3_str_finish(s);

    if (!text && n > 0)
        return -1;
    http_reply_start(&req->reply, req->wsi, status, "application/json; charset=utf-8",
                     text ? text : "", (size_t)n, text ? sqlite3_free : NULL);
    return 0;
}

static int respond_error(field_req *req, int status, const char *message)
{
    sqlite3_str *s = sqlite3_str_new(NULL);

    sqlite3_str_appendall(s, "{\"error\":");
    json_cstr(s, message);
    sqlite3_str_appendall(s, "}");
    return respond_json(req, status, s);
}

/* The field app's headers after lws's common ones. */
static int add_headers(void *user_data, struct lws *wsi, uint8_t **p, uint8_t *end)
{
    (void)user_data;
    return http_reply_add_header(wsi, "cache-control:", "no-store", p, end) ||
           /* the token is in every URL: never hand it to another site */
           http_reply_add_header(wsi, "referrer-policy:", "no-referrer", p, end) ||
           /* the page talks to this app only (no ws:, no other host), in no frame */
           http_reply_add_header(wsi, "content-security-policy:",
                                 "default-src 'none'; script-src 'self'; style-src 'self'; "
                                 "img-src 'self' data:; connect-src 'self'; "
                                 "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
                                 p, end) ||
           http_reply_add_header(wsi, "x-content-type-options:", "nosniff", p, end) ||
           http_reply_add_header(wsi, "x-frame-options:", "deny", p, end);
}

static void request_reset(field_req *req)
{
    struct lws *wsi = req->wsi;

    http_reply_reset(&req->reply);
    free(req->body);
    memset(req, 0, sizeof *req);
    req->wsi = wsi;
}

/* ---- tables ----------------------------------------------------------------------------- */

static void table_info_clear(table_info *t)
{
    for (uint32_t i = 0; i < t->n; i++)
        sqlite3_free(t->names[i]);
    memset(t, 0, sizeof *t);
}

/* Reads a synced table's columns; false when name is not one (the library's and SQLite's own
 * tables are not). */
static bool table_info_read(field_app *app, const char *name, table_info *t)
{
    sqlite3 *db = outpost_replica_db(app->r);
    sqlite3_stmt *st = NULL;
    int n_pk = 0;

    memset(t, 0, sizeof *t);
    t->pk = -1;
    if (!name || strncmp(name, "_outpost_", 9) == 0 || strncmp(name, "sqlite_", 7) == 0)
        return false;
    if (sqlite3_prepare_v2(db, "SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid", -1, &st,
                           NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW && t->n < COLUMNS_MAX) {
        if (sqlite3_column_int(st, 1) > 0) {
            n_pk++;
            t->pk = (int)t->n;
        }
        t->names[t->n++] = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    if (n_pk != 1)
        t->pk = -1;
    return t->n > 0;
}

static int column_index(const table_info *t, const char *name)
{
    for (uint32_t i = 0; i < t->n; i++)
        if (strcmp(t->names[i], name) == 0)
            return (int)i;
    return -1;
}

/* ---- sync state of a row ---------------------------------------------------------------- */

/* The quarantine's (table, pk) pairs, read once per request through the public API. */
typedef struct refused_set {
    char **keys; /* "table\npk-json" */
    size_t n;
} refused_set;

static void refused_set_read(field_app *app, refused_set *set)
{
    size_t n = 0;
    int64_t *ids = NULL;

    memset(set, 0, sizeof *set);
    if (outpost_rejected_list(app->r, NULL, 0, &n) != OUTPOST_OK || n == 0)
        return;
    ids = calloc(n, sizeof *ids);
    set->keys = calloc(n, sizeof *set->keys);
    if (ids && set->keys && outpost_rejected_list(app->r, ids, n, &n) == OUTPOST_OK) {
        for (size_t i = 0; i < n; i++) {
            outpost_rejected *q = NULL;
            if (outpost_rejected_read(app->r, ids[i], &q) == OUTPOST_OK)
                set->keys[set->n++] = sqlite3_mprintf("%s\n%s", q->table, q->pk);
            outpost_rejected_free(q);
        }
    }
    free(ids);
}

static void refused_set_clear(refused_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        sqlite3_free(set->keys[i]);
    free(set->keys);
    memset(set, 0, sizeof *set);
}

/* "refused", "conflict", "pending" or "synced", in that order of precedence. */
static const char *row_state(field_app *app, const refused_set *refused, const char *table,
                             sqlite3_stmt *conflicts, const outpost_value *key)
{
    sqlite3_str *pk = sqlite3_str_new(NULL);
    const char *state = "synced";
    int pending = 0;

    sqlite3_str_appendchar(pk, 1, '[');
    json_value(pk, key);
    sqlite3_str_appendchar(pk, 1, ']');
    char *pk_json = sqlite3_str_finish(pk);
    char *both = sqlite3_mprintf("%s\n%s", table, pk_json ? pk_json : "");
    for (size_t i = 0; both && i < refused->n; i++)
        if (strcmp(refused->keys[i], both) == 0)
            state = "refused";
    if (strcmp(state, "synced") == 0) {
        sqlite3_bind_text(conflicts, 1, table, -1, SQLITE_STATIC);
        sqlite3_bind_text(conflicts, 2, pk_json, -1, SQLITE_STATIC);
        if (sqlite3_step(conflicts) == SQLITE_ROW && sqlite3_column_int64(conflicts, 0) > 0)
            state = "conflict";
        sqlite3_reset(conflicts);
    }
    if (strcmp(state, "synced") == 0 &&
        outpost_row_pending(app->r, table, key, 1, &pending) == OUTPOST_OK && pending)
        state = "pending";
    sqlite3_free(both);
    sqlite3_free(pk_json);
    return state;
}

static const char conflicts_count_sql[] =
    "SELECT count(*) FROM _outpost_conflicts WHERE tbl = ?1 AND pk = ?2 AND kind <> 'REJECTED'";

/* ---- GET handlers ----------------------------------------------------------------------- */

static int get_info(field_app *app, field_req *req)
{
    static const char sql[] =
        "SELECT json_object("
        " 'tables', (SELECT json_group_array(json_object('name', m.name, 'sql', m.sql,"
        "   'columns', json((SELECT json_group_array(json_object('name', c.name, 'type', c.type,"
        "     'notnull', c.\"notnull\", 'pk', c.pk, 'dflt', c.dflt_value))"
        "     FROM pragma_table_info(m.name) c))))"
        "   FROM sqlite_schema m WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        "   AND m.name NOT LIKE '\\_outpost\\_%' ESCAPE '\\'),"
        " 'teams', (SELECT json_group_array(name) FROM _outpost_teams),"
        " 'worker', ?1, 'device', ?2, 'forms', json(?3))";
    sqlite3 *db = outpost_replica_db(app->r);
    sqlite3_stmt *st = NULL;
    char device[40];
    int rc;

    if (outpost_device_id(app->r, device) != OUTPOST_OK)
        device[0] = '\0';
    rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, app->worker, -1, SQLITE_STATIC);
        if (device[0])
            sqlite3_bind_text(st, 2, device, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, app->forms_json, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return respond_error(req, 500, sqlite3_errmsg(db));
    }
    sqlite3_str *s = sqlite3_str_new(NULL);
    sqlite3_str_appendall(s, (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return respond_json(req, 200, s);
}

static int get_status(field_app *app, field_req *req)
{
    outpost_status local;
    outpost_sync_status sync;
    sqlite3_str *s = sqlite3_str_new(NULL);

    memset(&sync, 0, sizeof sync);
    if (outpost_status_get(app->r, &local) != OUTPOST_OK)
        memset(&local, 0, sizeof local);
    if (app->sync)
        outpost_sync_get_status(app->sync, &sync);
    /* "conflicts" counts what the list shows as in conflict: the library's count also holds
     * the record of each refusal, which the Refused tab (and "rejected") already tells */
    sqlite3_stmt *count = NULL;
    if (sqlite3_prepare_v2(outpost_replica_db(app->r),
                           "SELECT count(*) FROM _outpost_conflicts WHERE kind <> 'REJECTED'", -1,
                           &count, NULL) == SQLITE_OK &&
        sqlite3_step(count) == SQLITE_ROW)
        local.conflicts = (uint64_t)sqlite3_column_int64(count, 0);
    sqlite3_finalize(count);
    sqlite3_str_appendf(s, "{\"enrolled\":%s,\"activity\":", app->sync ? "true" : "false");
    json_cstr(s, app->sync ? outpost_activity_name(sync.activity) : "not enrolled");
    sqlite3_str_appendf(s, ",\"pending\":%llu,\"rejected\":%llu,\"conflicts\":%llu,"
                           "\"last_sync_ms\":%lld,\"retry_in_ms\":%u,\"error\":",
                        (unsigned long long)local.pending, (unsigned long long)local.rejected,
                        (unsigned long long)local.conflicts, (long long)local.last_sync_ms,
                        (unsigned)sync.retry_in_ms);
    json_cstr(s, sync.last_error ? sync.last_error_msg : NULL);
    sqlite3_str_appendall(s, "}");
    return respond_json(req, 200, s);
}

static void arg(field_req *req, const char *name, char *buf, int size)
{
    if (lws_get_urlarg_by_name_safe(req->wsi, name, buf, size) < 0)
        buf[0] = '\0';
}

/* One row as {"values":{...},"key":...,"state":...}, from a statement whose columns are the
 * table's, in order. */
static void row_json(field_app *app, sqlite3_str *s, sqlite3_stmt *st, const table_info *t,
                     const char *table, const refused_set *refused, sqlite3_stmt *conflicts)
{
    outpost_value key = {.type = OUTPOST_VALUE_NULL};

    sqlite3_str_appendall(s, "{\"values\":{");
    for (uint32_t c = 0; c < t->n; c++) {
        outpost_value v = {.type = OUTPOST_VALUE_NULL};
        switch (sqlite3_column_type(st, (int)c)) {
        case SQLITE_INTEGER:
            v.type = OUTPOST_VALUE_INT;
            v.u.i = sqlite3_column_int64(st, (int)c);
            break;
        case SQLITE_FLOAT:
            v.type = OUTPOST_VALUE_REAL;
            v.u.r = sqlite3_column_double(st, (int)c);
            break;
        case SQLITE_TEXT:
            v.type = OUTPOST_VALUE_TEXT;
            v.u.b.p = sqlite3_column_text(st, (int)c);
            v.u.b.n = (uint32_t)sqlite3_column_bytes(st, (int)c);
            break;
        case SQLITE_BLOB:
            v.type = OUTPOST_VALUE_BLOB;
            v.u.b.n = (uint32_t)sqlite3_column_bytes(st, (int)c);
            break;
        default: break;
        }
        if (c)
            sqlite3_str_appendchar(s, 1, ',');
        json_cstr(s, t->names[c]);
        sqlite3_str_appendchar(s, 1, ':');
        json_value(s, &v);
        if ((int)c == t->pk)
            key = v;
    }
    sqlite3_str_appendall(s, "},\"key\":");
    json_value(s, &key);
    sqlite3_str_appendall(s, ",\"state\":");
    json_cstr(s, row_state(app, refused, table, conflicts, &key));
    sqlite3_str_appendchar(s, 1, '}');
}

/* SELECT "a", "b", ... FROM "table" */
static void select_columns(sqlite3_str *sql, const table_info *t, const char *table)
{
    sqlite3_str_appendall(sql, "SELECT ");
    for (uint32_t c = 0; c < t->n; c++)
        sqlite3_str_appendf(sql, "%s\"%w\"", c ? ", " : "", t->names[c]);
    sqlite3_str_appendf(sql, " FROM \"%w\"", table);
}

static int get_records(field_app *app, field_req *req)
{
    char table[128], q[256];
    table_info t;
    refused_set refused;
    sqlite3 *db = outpost_replica_db(app->r);
    sqlite3_stmt *st = NULL, *conflicts = NULL;
    int rc;

    arg(req, "table=", table, sizeof table);
    arg(req, "q=", q, sizeof q);
    if (!table_info_read(app, table, &t))
        return respond_error(req, 404, "no such table");
    if (t.pk < 0) {
        table_info_clear(&t);
        return respond_error(req, 400, "the field app shows tables with one primary key column");
    }
    sqlite3_str *sql = sqlite3_str_new(NULL);
    select_columns(sql, &t, table);
    if (q[0]) {
        for (uint32_t c = 0; c < t.n; c++)
            sqlite3_str_appendf(sql, "%s\"%w\" LIKE ?1 ESCAPE '\\'", c ? " OR " : " WHERE ",
                                t.names[c]);
    }
    /* Keys are UUIDv7 made on devices: by key is by creation time. */
    sqlite3_str_appendf(sql, " ORDER BY \"%w\" DESC LIMIT %d", t.names[t.pk], LIST_MAX);
    char *text = sqlite3_str_finish(sql);
    rc = sqlite3_prepare_v2(db, text, -1, &st, NULL);
    sqlite3_free(text);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, conflicts_count_sql, -1, &conflicts, NULL);
    if (rc != SQLITE_OK) {
        rc = respond_error(req, 500, sqlite3_errmsg(db));
        goto done;
    }
    if (q[0]) {
        sqlite3_str *pattern = sqlite3_str_new(NULL);
        sqlite3_str_appendchar(pattern, 1, '%');
        for (const char *p = q; *p; p++) {
            if (*p == '%' || *p == '_' || *p == '\\')
                sqlite3_str_appendchar(pattern, 1, '\\');
            sqlite3_str_appendchar(pattern, 1, *p);
        }
        sqlite3_str_appendchar(pattern, 1, '%');
        sqlite3_bind_text(st, 1, sqlite3_str_finish(pattern), -1, sqlite3_free);
    }
    /* The rows are read whole first: the state of each row runs statements of its own. */
    sqlite3_str *s = sqlite3_str_new(NULL);
    refused_set_read(app, &refused);
    sqlite3_str_appendall(s, "{\"rows\":[");
    for (int n = 0; (rc = sqlite3_step(st)) == SQLITE_ROW; n++) {
        if (n)
            sqlite3_str_appendchar(s, 1, ',');
        row_json(app, s, st, &t, table, &refused, conflicts);
    }
    sqlite3_str_appendall(s, "]}");
    refused_set_clear(&refused);
    if (rc != SQLITE_DONE) {
        sqlite3_free(sqlite3_str_finish(s));
        rc = respond_error(req, 500, sqlite3_errmsg(db));
    } else {
        rc = respond_json(req, 200, s);
    }
done:
    sqlite3_finalize(st);
    sqlite3_finalize(conflicts);
    table_info_clear(&t);
    return rc;
}

static int get_record(field_app *app, field_req *req)
{
    static const char conflicts_sql[] =
        "SELECT coalesce(json_group_array(json_object('id', id, 'at_ms', at_ms, 'column', col_name,"
        " 'kind', kind, 'mine', mine, 'winner', winner, 'reason', reason)), '[]')"
        " FROM (SELECT * FROM _outpost_conflicts WHERE tbl = ?1 AND pk = json_array(?2)"
        " AND kind <> 'REJECTED' ORDER BY id)";
    char table[128], key[256];
    table_info t;
    refused_set refused;
    sqlite3 *db = outpost_replica_db(app->r);
    sqlite3_stmt *st = NULL, *conflicts = NULL, *list = NULL;
    int rc;

    arg(req, "table=", table, sizeof table);
    arg(req, "key=", key, sizeof key);
    if (!table_info_read(app, table, &t) || t.pk < 0) {
        table_info_clear(&t);
        return respond_error(req, 404, "no such table");
    }
    sqlite3_str *sql = sqlite3_str_new(NULL);
    select_columns(sql, &t, table);
    sqlite3_str_appendf(sql, " WHERE \"%w\" = ?1", t.names[t.pk]);
    char *text = sqlite3_str_finish(sql);
    rc = sqlite3_prepare_v2(db, text, -1, &st, NULL);
    sqlite3_free(text);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, conflicts_count_sql, -1, &conflicts, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, conflicts_sql, -1, &list, NULL);
    if (rc != SQLITE_OK) {
        rc = respond_error(req, 500, sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = respond_error(req, 404, rc == SQLITE_DONE ? "no such record on this device"
                                                        : sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_str *s = sqlite3_str_new(NULL);
    refused_set_read(app, &refused);
    row_json(app, s, st, &t, table, &refused, conflicts);
    refused_set_clear(&refused);
    sqlite3_bind_text(list, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_text(list, 2, key, -1, SQLITE_STATIC);
    if (sqlite3_step(list) == SQLITE_ROW) {
        /* {"values":...,"state":...} + ,"conflicts":[...] */
        int len = sqlite3_str_length(s);
        char *obj = sqlite3_str_finish(s);
        s = sqlite3_str_new(NULL);
        if (obj && len > 0)
            sqlite3_str_append(s, obj, len - 1);
        sqlite3_free(obj);
        sqlite3_str_appendf(s, ",\"conflicts\":%s}", (const char *)sqlite3_column_text(list, 0));
    }
    rc = respond_json(req, 200, s);
done:
    sqlite3_finalize(st);
    sqlite3_finalize(conflicts);
    sqlite3_finalize(list);
    table_info_clear(&t);
    return rc;
}

static int get_rejected(field_app *app, field_req *req)
{
    size_t n = 0;
    int64_t *ids = NULL;
    int rc = outpost_rejected_list(app->r, NULL, 0, &n);
    sqlite3_str *s;

    if (rc == OUTPOST_OK && n) {
        ids = calloc(n, sizeof *ids);
        rc = ids ? outpost_rejected_list(app->r, ids, n, &n) : OUTPOST_ENOMEM;
    }
    if (rc != OUTPOST_OK) {
        free(ids);
        return respond_error(req, 500, outpost_errmsg(app->r));
    }
    s = sqlite3_str_new(NULL);
    sqlite3_str_appendchar(s, 1, '[');
    for (size_t i = 0; i < n; i++) {
        outpost_rejected *q = NULL;
        if (outpost_rejected_read(app->r, ids[i], &q) != OUTPOST_OK)
            continue;
        sqlite3_str_appendf(s, "%s{\"id\":%lld,\"at_ms\":%lld,\"seq\":%llu,\"table\":", i ? "," : "",
                            (long long)q->id, (long long)q->at_ms, (unsigned long long)q->seq);
        json_cstr(s, q->table);
        sqlite3_str_appendall(s, ",\"op\":");
        json_cstr(s, q->op);
        sqlite3_str_appendf(s, ",\"pk\":%s,\"code\":%u,\"code_name\":", q->pk, (unsigned)q->code);
        json_cstr(s, q->code_name);
        sqlite3_str_appendall(s, ",\"message\":");
        json_cstr(s, q->message);
        sqlite3_str_appendall(s, ",\"values\":{");
        for (uint32_t c = 0; c < q->n_values; c++) {
            if (c)
                sqlite3_str_appendchar(s, 1, ',');
            json_cstr(s, q->columns[c]);
            sqlite3_str_appendchar(s, 1, ':');
            json_value(s, &q->values[c]);
        }
        sqlite3_str_appendall(s, "},\"changed\":[");
        for (uint32_t c = 0, k = 0; c < q->n_values; c++) {
            if (!q->changed[c])
                continue;
            if (k++)
                sqlite3_str_appendchar(s, 1, ',');
            json_cstr(s, q->columns[c]);
        }
        sqlite3_str_appendall(s, "]}");
        outpost_rejected_free(q);
    }
    sqlite3_str_appendchar(s, 1, ']');
    free(ids);
    return respond_json(req, 200, s);
}

/* One Needs attention item as a JSON object; title_json is the rule's JSON, made by jansson. */
static int watch_item_json(const outpost_watch_item *it, void *user_data)
{
    sqlite3_str *s = user_data;
    if (sqlite3_str_length(s) > 1)
        sqlite3_str_appendchar(s, 1, ',');
    sqlite3_str_appendall(s, "{\"rule\":");
    json_cstr(s, it->rule_id);
    sqlite3_str_appendall(s, ",\"severity\":");
    json_cstr(s, it->severity);
    sqlite3_str_appendf(s, ",\"title\":%s,\"table\":", it->title_json);
    json_cstr(s, it->table);
    sqlite3_str_appendall(s, ",\"team\":");
    json_cstr(s, it->team);
    sqlite3_str_appendall(s, ",\"key\":");
    json_cstr(s, it->record_id);
    sqlite3_str_appendall(s, ",\"alias\":");
    if (it->alias)
        json_cstr(s, it->alias);
    else
        sqlite3_str_appendall(s, "null");
    sqlite3_str_appendall(s, ",\"due\":");
    json_cstr(s, it->due);
    sqlite3_str_appendchar(s, 1, '}');
    return 0;
}

static int get_watch(field_app *app, field_req *req)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    sqlite3_str *s = sqlite3_str_new(NULL);
    sqlite3_str_appendchar(s, 1, '[');
    if (outpost_watch_items(app->r, now_ms, watch_item_json, s) != OUTPOST_OK) {
        sqlite3_free(sqlite3_str_finish(s));
        return respond_error(req, 500, outpost_errmsg(app->r));
    }
    sqlite3_str_appendchar(s, 1, ']');
    return respond_json(req, 200, s);
}

/* ---- POST bodies ------------------------------------------------------------------------ */

/* The members of the object at path in a JSON body, as column names and values. */
typedef struct body_values {
    char *columns[COLUMNS_MAX];
    outpost_value values[COLUMNS_MAX];
    uint32_t n;
} body_values;

static void body_values_clear(body_values *b)
{
    for (uint32_t i = 0; i < b->n; i++) {
        sqlite3_free(b->columns[i]);
        if (b->values[i].type == OUTPOST_VALUE_TEXT)
            sqlite3_free((void *)b->values[i].u.b.p);
    }
    memset(b, 0, sizeof *b);
}

/* The JSON type of the member at path of body ("" when body is not JSON or has no such member;
 * "invalid" when body is not JSON at all). */
static void body_type(field_app *app, const char *body, const char *path, char *out,
                      size_t out_size)
{
    sqlite3_stmt *st = NULL;

    snprintf(out, out_size, "invalid");
    if (sqlite3_prepare_v2(outpost_replica_db(app->r),
                           "SELECT CASE WHEN json_valid(?1) THEN coalesce(json_type(?1, ?2), '') "
                           "ELSE 'invalid' END", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, body, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            snprintf(out, out_size, "%s", (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
}

/* Whether the body is a JSON object; if not, says so in err. */
static bool body_is_object(field_app *app, const char *body, char *err, size_t err_size)
{
    char type[16];

    body_type(app, body, "$", type, sizeof type);
    if (strcmp(type, "object") == 0)
        return true;
    snprintf(err, err_size, "%s", strcmp(type, "invalid") == 0
                                      ? "the request is not valid JSON"
                                      : "the request must be a JSON object");
    return false;
}

/* Reads body's "values" object; on failure writes why into err. */
static bool body_values_read(field_app *app, const char *body, body_values *b, char *err,
                             size_t err_size)
{
    sqlite3 *db = outpost_replica_db(app->r);
    sqlite3_stmt *st = NULL;
    bool ok = true;
    char values_type[16];

    memset(b, 0, sizeof *b);
    body_type(app, body, "$.values", values_type, sizeof values_type);
    if (strcmp(values_type, "object") != 0) {
        snprintf(err, err_size, "\"values\" must be an object of column: value (it is %s)",
                 values_type[0] ? values_type : "missing");
        return false;
    }
    if (sqlite3_prepare_v2(db, "SELECT key, value, type FROM json_each(?1, '$.values')", -1, &st,
                           NULL) != SQLITE_OK) {
        snprintf(err, err_size, "%s", sqlite3_errmsg(db));
        return false;
    }
    sqlite3_bind_text(st, 1, body, -1, SQLITE_STATIC);
    int rc;
    while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *type = (const char *)sqlite3_column_text(st, 2);
        outpost_value v = {.type = OUTPOST_VALUE_NULL};
        if (b->n == COLUMNS_MAX) {
            snprintf(err, err_size, "too many values");
            ok = false;
            break;
        }
        if (strcmp(type, "integer") == 0) {
            v.type = OUTPOST_VALUE_INT;
            v.u.i = sqlite3_column_int64(st, 1);
        } else if (strcmp(type, "real") == 0) {
            v.type = OUTPOST_VALUE_REAL;
            v.u.r = sqlite3_column_double(st, 1);
        } else if (strcmp(type, "true") == 0 || strcmp(type, "false") == 0) {
            v.type = OUTPOST_VALUE_INT;
            v.u.i = type[0] == 't';
        } else if (strcmp(type, "text") == 0) {
            v.type = OUTPOST_VALUE_TEXT;
            v.u.b.n = (uint32_t)sqlite3_column_bytes(st, 1);
            v.u.b.p = (const uint8_t *)sqlite3_mprintf("%s", sqlite3_column_text(st, 1));
        } else if (strcmp(type, "null") != 0) {
            snprintf(err, err_size, "%s: a value is a string, a number or null",
                     (const char *)sqlite3_column_text(st, 0));
            ok = false;
            break;
        }
        b->columns[b->n] = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(st, 0));
        b->values[b->n++] = v;
    }
    if (ok && rc != SQLITE_DONE) {
        snprintf(err, err_size, "the request is not JSON with a \"values\" object: %s",
                 sqlite3_errmsg(db));
        ok = false;
    }
    sqlite3_finalize(st);
    if (!ok)
        body_values_clear(b);
    return ok;
}

/* A text member of the body ("" when absent), or an integer one through out_int. */
static void body_member(field_app *app, const char *body, const char *path, char *buf,
                        size_t size, int64_t *out_int)
{
    sqlite3_stmt *st = NULL;

    buf[0] = '\0';
    if (out_int)
        *out_int = 0;
    if (sqlite3_prepare_v2(outpost_replica_db(app->r), "SELECT json_extract(?1, ?2)", -1, &st,
                           NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, body, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        snprintf(buf, size, "%s", (const char *)sqlite3_column_text(st, 0));
        if (out_int)
            *out_int = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
}

/* Reports a failed write: the library's message (a CHECK or NOT NULL names the column). */
static int respond_write_failure(field_app *app, field_req *req, int code)
{
    char message[600];

    snprintf(message, sizeof message, "%s", outpost_errmsg(app->r));
    if (!message[0])
        snprintf(message, sizeof message, "%s", outpost_strerror(code));
    return respond_error(req, 422, message);
}

/* With a known worker, a column the form fills with the worker (auto "worker") takes no other id:
 * the office refuses a record written in another worker's name (policy author=COLUMN), and the
 * app says so before anything is saved. Returns false with err set. */
static bool worker_values_ok(field_app *app, const char *table, const body_values *b, char *err,
                             size_t err_size)
{
    sqlite3_stmt *st = NULL;
    bool ok = true;

    if (!app->worker)
        return true;
    if (sqlite3_prepare_v2(outpost_replica_db(app->r),
                           "SELECT a.key FROM json_each(?1) f, json_each(f.value, '$.auto') a "
                           "WHERE json_extract(f.value, '$.table') = ?2 AND a.value = 'worker'",
                           -1, &st, NULL) != SQLITE_OK)
        return true;
    sqlite3_bind_text(st, 1, app->forms_json, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, table, -1, SQLITE_STATIC);
    while (ok && sqlite3_step(st) == SQLITE_ROW) {
        const char *column = (const char *)sqlite3_column_text(st, 0);
        for (uint32_t i = 0; i < b->n && ok; i++) {
            const outpost_value *v = &b->values[i];
            if (strcmp(b->columns[i], column) != 0)
                continue;
            if (v->type == OUTPOST_VALUE_TEXT && strcmp((const char *)v->u.b.p, app->worker) == 0)
                continue;
            snprintf(err, err_size,
                     "%s: this device records work as %s; the office refuses a record in another "
                     "worker's name", column, app->worker);
            ok = false;
        }
    }
    sqlite3_finalize(st);
    return ok;
}

/* A column the form treats as a time (widget "date"/"datetime", or auto "now") takes only text
 * SQLite reads as one (2026-12-05T22:30:00+01:00) or null: "x" would sync and show as "x". */
static bool time_values_ok(field_app *app, const char *table, const body_values *b, char *err,
                           size_t err_size)
{
    sqlite3_stmt *st = NULL;
    bool ok = true;

    if (sqlite3_prepare_v2(outpost_replica_db(app->r),
                           "SELECT c.column, (?3 IS NULL OR julianday(?3) IS NOT NULL) FROM "
                           "(SELECT json_extract(fl.value, '$.column') AS column FROM json_each(?1) f,"
                           " json_each(f.value, '$.sections') sc, json_each(sc.value, '$.fields') fl"
                           " WHERE json_extract(f.value, '$.table') = ?2"
                           " AND json_extract(fl.value, '$.widget') IN ('date', 'datetime')"
                           " UNION SELECT a.key FROM json_each(?1) f, json_each(f.value, '$.auto') a"
                           " WHERE json_extract(f.value, '$.table') = ?2 AND a.value = 'now') c"
                           " WHERE c.column = ?4",
                           -1, &st, NULL) != SQLITE_OK)
        return true;
    for (uint32_t i = 0; i < b->n && ok; i++) {
        const outpost_value *v = &b->values[i];
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, app->forms_json, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, table, -1, SQLITE_STATIC);
        if (v->type == OUTPOST_VALUE_TEXT)
            sqlite3_bind_text(st, 3, (const char *)v->u.b.p, -1, SQLITE_STATIC);
        else if (v->type == OUTPOST_VALUE_NULL)
            sqlite3_bind_null(st, 3);
        else
            sqlite3_bind_text(st, 3, "not a time", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, b->columns[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 1) == 0) {
            snprintf(err, err_size, "%s: a date and time is needed, such as "
                                    "2026-12-05T22:30:00+01:00", b->columns[i]);
            ok = false;
        }
    }
    sqlite3_finalize(st);
    return ok;
}

static int post_save(field_app *app, field_req *req)
{
    char table[128], key[OUTPOST_UUID_TEXT_SIZE + 64], err[256];
    table_info t;
    body_values b;
    uint64_t seq = 0;
    int rc;

    if (!body_is_object(app, req->body, err, sizeof err))
        return respond_error(req, 400, err);
    body_member(app, req->body, "$.table", table, sizeof table, NULL);
    body_member(app, req->body, "$.key", key, sizeof key, NULL);
    if (!table_info_read(app, table, &t) || t.pk < 0) {
        table_info_clear(&t);
        return respond_error(req, 404, "no such table");
    }
    if (!body_values_read(app, req->body, &b, err, sizeof err)) {
        table_info_clear(&t);
        return respond_error(req, 400, err);
    }
    rc = 0;
    for (uint32_t i = 0; i < b.n && rc == 0; i++) {
        int c = column_index(&t, b.columns[i]);
        if (c < 0 || c == t.pk) {
            snprintf(err, sizeof err, c < 0 ? "table %s has no column %s"
                                            : "table %s: %s is made by the app, not typed",
                     table, b.columns[i]);
            rc = respond_error(req, 400, err);
            goto done;
        }
    }
    if (!worker_values_ok(app, table, &b, err, sizeof err) ||
        !time_values_ok(app, table, &b, err, sizeof err)) {
        rc = respond_error(req, 400, err);
        goto done;
    }
    sqlite3_str *sql = sqlite3_str_new(NULL);
    bool is_new = key[0] == '\0';
    if (is_new) {
        /* a new record's key is a UUIDv7 made here, on the device */
        if (outpost_uuid_make(key) != OUTPOST_OK || b.n + 1 > COLUMNS_MAX) {
            sqlite3_free(sqlite3_str_finish(sql));
            rc = respond_error(req, 500, "cannot make a record id");
            goto done;
        }
        sqlite3_str_appendf(sql, "INSERT INTO \"%w\" (\"%w\"", table, t.names[t.pk]);
        for (uint32_t i = 0; i < b.n; i++)
            sqlite3_str_appendf(sql, ", \"%w\"", b.columns[i]);
        sqlite3_str_appendall(sql, ") VALUES (?1");
        for (uint32_t i = 0; i < b.n; i++)
            sqlite3_str_appendf(sql, ", ?%u", (unsigned)i + 2);
        sqlite3_str_appendall(sql, ")");
    } else {
        sqlite3_str_appendf(sql, "UPDATE \"%w\" SET ", table);
        for (uint32_t i = 0; i < b.n; i++)
            sqlite3_str_appendf(sql, "%s\"%w\" = ?%u", i ? ", " : "", b.columns[i], (unsigned)i + 2);
        sqlite3_str_appendf(sql, " WHERE \"%w\" = ?1", t.names[t.pk]);
    }
    char *text = sqlite3_str_finish(sql);
    outpost_value params[COLUMNS_MAX + 1];
    params[0].type = OUTPOST_VALUE_TEXT;
    params[0].u.b.p = (const uint8_t *)key;
    params[0].u.b.n = (uint32_t)strlen(key);
    memcpy(params + 1, b.values, b.n * sizeof *params);
    if (!is_new && b.n == 0) {
        sqlite3_free(text);
        rc = respond_error(req, 400, "nothing changed");
        goto done;
    }
    int code = outpost_tx_begin(app->r);
    if (code == OUTPOST_OK)
        code = outpost_exec(app->r, text, params, b.n + 1);
    if (code == OUTPOST_OK && !is_new && sqlite3_changes(outpost_replica_db(app->r)) == 0) {
        (void)outpost_tx_rollback(app->r);
        sqlite3_free(text);
        rc = respond_error(req, 404, "this record is no longer on this device");
        goto done;
    }
    if (code == OUTPOST_OK)
        code = outpost_tx_commit(app->r, &seq);
    sqlite3_free(text);
    if (code != OUTPOST_OK) {
        rc = respond_write_failure(app, req, code); /* before the rollback clears the message */
        (void)outpost_tx_rollback(app->r);
        goto done;
    }
    sqlite3_str *s = sqlite3_str_new(NULL);
    sqlite3_str_appendall(s, "{\"key\":");
    json_cstr(s, key);
    sqlite3_str_appendf(s, ",\"seq\":%llu}", (unsigned long long)seq);
    rc = respond_json(req, 200, s);
done:
    body_values_clear(&b);
    table_info_clear(&t);
    return rc;
}

static int post_rejected(field_app *app, field_req *req, bool resubmit)
{
    char idbuf[32], err[256];
    int64_t id;
    body_values b;
    uint64_t seq = 0;
    int code;
    char type[16];

    if (!body_is_object(app, req->body, err, sizeof err))
        return respond_error(req, 400, err);
    body_type(app, req->body, "$.id", type, sizeof type);
    body_member(app, req->body, "$.id", idbuf, sizeof idbuf, &id);
    if (strcmp(type, "integer") != 0 || id <= 0)
        return respond_error(req, 400, "\"id\" must be a quarantine id: a whole number above 0");
    if (!resubmit) {
        code = outpost_rejected_discard(app->r, id);
        if (code != OUTPOST_OK)
            return respond_write_failure(app, req, code);
        return respond(req, 200, "application/json", "{}", 2), 0;
    }
    if (!body_values_read(app, req->body, &b, err, sizeof err))
        return respond_error(req, 400, err);
    code = outpost_rejected_resubmit(app->r, id, (const char *const *)b.columns, b.values, b.n,
                                     &seq);
    body_values_clear(&b);
    if (code != OUTPOST_OK)
        return respond_write_failure(app, req, code);
    sqlite3_str *s = sqlite3_str_new(NULL);
    sqlite3_str_appendf(s, "{\"seq\":%llu}", (unsigned long long)seq);
    return respond_json(req, 200, s);
}

/* ---- routing ---------------------------------------------------------------------------- */

static const web_asset *find_asset(const char *path)
{
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (size_t i = 0; i < web_assets_count; i++)
        if (strcmp(web_assets[i].path, path) == 0)
            return &web_assets[i];
    return NULL;
}

/* The part of path after "/TOKEN", or NULL when the token is not there. Compared in constant
 * time, so the answer's timing says nothing about how much of a guess was right. */
static const char *after_token(const field_app *app, const char *path)
{
    size_t n = strlen(app->token);
    unsigned char diff = 0;

    if (path[0] != '/' || strlen(path) < n + 1)
        return NULL;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(path[1 + i] ^ app->token[i]);
    if (diff != 0 || (path[1 + n] != '/' && path[1 + n] != '\0'))
        return NULL;
    return path[1 + n] ? path + 1 + n : "/";
}

/* Whether a request's Host names this app: 127.0.0.1:PORT or localhost:PORT. A page of another
 * site that resolves its own name to 127.0.0.1 (DNS rebinding) sends its own name and is
 * refused, whatever it guessed of the token. */
static bool host_allowed(const field_app *app, const char *host)
{
    char a[64], b[64];

    snprintf(a, sizeof a, "127.0.0.1:%d", app->port);
    snprintf(b, sizeof b, "localhost:%d", app->port);
    return strcmp(host, a) == 0 || strcasecmp(host, b) == 0;
}

static int serve(field_app *app, field_req *req)
{
    static const char forbidden[] =
        "forbidden: open the address that 'outpost field' printed (it carries this run's "
        "token)\n";
    const char *path = after_token(app, req->path);
    const web_asset *asset;

    if (!host_allowed(app, req->host)) {
        static const char wrong_host[] =
            "forbidden: this app answers only to 127.0.0.1 or localhost on its own port\n";
        return respond(req, 403, "text/plain; charset=utf-8", wrong_host, sizeof wrong_host - 1),
               0;
    }
    if (!path)
        return respond(req, 403, "text/plain; charset=utf-8", forbidden, sizeof forbidden - 1), 0;
    if (req->is_post) {
        if (strcmp(path, "/api/save") == 0)
            return post_save(app, req);
        if (strcmp(path, "/api/rejected/resubmit") == 0)
            return post_rejected(app, req, true);
        if (strcmp(path, "/api/rejected/discard") == 0)
            return post_rejected(app, req, false);
        if (strcmp(path, "/api/sync") == 0) {
            if (!app->sync)
                return respond_error(req, 409, "this device is not enrolled: nothing to sync with");
            outpost_sync_now(app->sync);
            return respond(req, 200, "application/json", "{}", 2), 0;
        }
        return respond_error(req, 404, "not found");
    }
    if (strcmp(path, "/api/info") == 0)
        return get_info(app, req);
    if (strcmp(path, "/api/status") == 0)
        return get_status(app, req);
    if (strcmp(path, "/api/records") == 0)
        return get_records(app, req);
    if (strcmp(path, "/api/record") == 0)
        return get_record(app, req);
    if (strcmp(path, "/api/rejected") == 0)
        return get_rejected(app, req);
    if (strcmp(path, "/api/watch") == 0)
        return get_watch(app, req);
    asset = find_asset(path);
    if (asset)
        return respond(req, 200, asset->content_type, asset->data, asset->n_bytes), 0;
    return respond(req, 404, "text/plain; charset=utf-8", "not found\n", 10), 0;
}

static int field_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
    field_req *req = user;
    field_app *app = lws_context_user(lws_get_context(wsi));
    int rc;

    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return 1; /* no WebSocket here */

    case LWS_CALLBACK_HTTP:
        req->wsi = wsi;
        request_reset(req);
        req->is_post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
        snprintf(req->path, sizeof req->path, "%s", (const char *)in);
        if (strlen((const char *)in) >= sizeof req->path)
            req->path[0] = '\0'; /* refused as having no token */
        if (lws_hdr_copy(wsi, req->host, sizeof req->host, WSI_TOKEN_HOST) < 0)
            req->host[0] = '\0'; /* too long: refused */
        /* a POST with a body is answered once the body is in; one without (no length, or 0,
         * and not chunked) gets no BODY_COMPLETION: it is answered now, with an empty body */
        if (req->is_post && after_token(app, req->path)) {
            char length[24] = "";
            (void)lws_hdr_copy(wsi, length, sizeof length, WSI_TOKEN_HTTP_CONTENT_LENGTH);
            if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0 ||
                strtoull(length, NULL, 10) > 0)
                return 0;
            if (!(req->body = calloc(1, 1)))
                return -1;
        } else {
            req->is_post = false;
        }
        return serve(app, req) == 0 ? 0 : -1;

    case LWS_CALLBACK_HTTP_BODY:
        if (!req || req->body_too_big || len == 0 || req->reply.responding)
            return 0;
        if (req->body_len + len > BODY_MAX) {
            req->body_too_big = true;
            return 0;
        }
        char *grown = realloc(req->body, req->body_len + len + 1);
        if (!grown)
            return -1;
        req->body = grown;
        memcpy(req->body + req->body_len, in, len);
        req->body_len += len;
        req->body[req->body_len] = '\0';
        return 0;

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (!req)
            return -1;
        if (req->reply.responding)
            return 0; /* a POST without a body, answered already */
        if (req->body_too_big)
            return respond_error(req, 413, "request too large") == 0 ? 0 : -1;
        if (!req->body && !(req->body = calloc(1, 1)))
            return -1;
        return serve(app, req) == 0 ? 0 : -1;

    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!req || !req->reply.responding)
            return 0;
        rc = http_reply_writeable(&req->reply, wsi, add_headers, NULL);
        if (rc <= 0)
            return rc;
        request_reset(req);
        return lws_http_transaction_completed(wsi) ? -1 : 0;

    case LWS_CALLBACK_CLOSED_HTTP:
        if (req) {
            http_reply_reset(&req->reply);
            free(req->body);
            req->body = NULL;
        }
        break;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- start and stop --------------------------------------------------------------------- */

static bool token_make(char out[2 * TOKEN_BYTES + 1])
{
    uint8_t raw[TOKEN_BYTES];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    size_t got = 0;

    while (fd >= 0 && got < sizeof raw) {
        ssize_t n = read(fd, raw + got, sizeof raw - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (fd >= 0)
        close(fd);
    if (got != sizeof raw)
        return false;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return true;
}

static int json_file_filter(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && n > 5 && strcmp(e->d_name + n - 5, ".json") == 0;
}

/* Joins DIR/ *.json (each one form object) into a JSON array, checking that each parses. */
static char *forms_from_dir(field_app *app, const char *dir)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, json_file_filter, alphasort);
    sqlite3_str *s;
    sqlite3_stmt *valid = NULL;
    bool ok = n >= 0;

    if (n < 0) {
        fprintf(stderr, "outpost: field: cannot read the forms in %s: %s\n", dir, strerror(errno));
        return NULL;
    }
    s = sqlite3_str_new(NULL);
    sqlite3_str_appendchar(s, 1, '[');
    ok = sqlite3_prepare_v2(outpost_replica_db(app->r), "SELECT json_valid(?1)", -1, &valid,
                            NULL) == SQLITE_OK;
    for (int i = 0; i < n; i++) {
        char path[4096];
        FILE *f = NULL;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (ok && (f = fopen(path, "rb")) != NULL) {
            sqlite3_str *text = sqlite3_str_new(NULL);
            char chunk[4096];
            size_t got;
            while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
                sqlite3_str_append(text, chunk, (int)got);
            fclose(f);
            char *json = sqlite3_str_finish(text);
            sqlite3_bind_text(valid, 1, json ? json : "", -1, SQLITE_STATIC);
            if (sqlite3_step(valid) == SQLITE_ROW && sqlite3_column_int(valid, 0)) {
                sqlite3_str_appendf(s, "%s%s", sqlite3_str_length(s) > 1 ? "," : "", json);
            } else {
                int line = 0, column = 0;
                if (json && strncmp(json, "\xEF\xBB\xBF", 3) == 0)
                    fprintf(stderr, "outpost: field: %s: line 1 column 1: the file starts with a "
                                    "byte order mark (BOM); save it as UTF-8 without BOM\n", path);
                else if (json && !json_where(json, &line, &column))
                    fprintf(stderr, "outpost: field: %s: line %d column %d: not valid JSON\n",
                            path, line, column);
                else
                    fprintf(stderr, "outpost: field: %s is not valid JSON\n", path);
                ok = false;
            }
            sqlite3_reset(valid);
            sqlite3_free(json);
        } else if (ok) {
            fprintf(stderr, "outpost: field: cannot read %s: %s\n", path, strerror(errno));
            ok = false;
        }
        free(names[i]);
    }
    free(names);
    sqlite3_finalize(valid);
    sqlite3_str_appendchar(s, 1, ']');
    char *forms = sqlite3_str_finish(s);
    if (!ok) {
        sqlite3_free(forms);
        return NULL;
    }
    return forms;
}

/* The office ordered this device wiped: the replica's files are gone; stop serving it. Runs on
 * the sync thread. */
static void on_wiped(void *user_data, const char *reason)
{
    (void)user_data;
    (void)reason;
    field_wiped = 1;
    field_stop = 1;
}

static void tick(lws_sorted_usec_list_t *sul)
{
    field_app *app = lws_container_of(sul, field_app, tick);

    if (!field_stop)
        lws_sul_schedule(app->context, 0, &app->tick, tick, TICK_US);
}

int field_run(outpost_replica *replica, const field_options *options)
{
    static const struct lws_protocols protocols[] = {
        {"http", field_callback, sizeof(field_req), 0, 0, NULL, 0},
        LWS_PROTOCOL_LIST_TERM};
    field_app app;
    struct lws_context_creation_info info;
    char device[40];
    int ex = 2;

    memset(&app, 0, sizeof app);
    app.r = replica;
    app.opt = options;
    if (!token_make(app.token)) {
        fprintf(stderr, "outpost: field: the system's random source failed\n");
        return 2;
    }
    /* the worker: the server's word when it gave one; --worker must then agree */
    app.worker = options->worker;
    if (outpost_worker_id(replica, app.worker_buf) == OUTPOST_OK) {
        if (options->worker && strcmp(options->worker, app.worker_buf) != 0) {
            fprintf(stderr, "outpost: field: --worker %s, but the office enrolled this device "
                            "for worker %s; drop --worker\n", options->worker, app.worker_buf);
            return 1;
        }
        app.worker = app.worker_buf;
    }
    if (options->forms_dir) {
        app.forms_json = forms_from_dir(&app, options->forms_dir);
    } else {
        /* the forms the server sent with the schema */
        char *forms = NULL;
        int rc = outpost_forms_json(replica, &forms);
        if (rc != OUTPOST_OK)
            fprintf(stderr, "outpost: field: cannot read the forms: %s (%s); the app shows "
                            "column names\n", outpost_errmsg(replica), outpost_strerror(rc));
        app.forms_json = sqlite3_mprintf("%s", rc == OUTPOST_OK ? forms : "[]");
        outpost_free(forms);
    }
    if (!app.forms_json)
        return 2;

    /* quiet while listening: a port in use is said once, in outpost's own words, below */
    lws_set_log_level(0, NULL);
    memset(&info, 0, sizeof info);
    info.port = options->port;
    info.iface = "127.0.0.1"; /* loopback only: nothing of the replica is offered to a network */
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6; /* security headers: add_headers */
    info.protocols = protocols;
    info.vhost_name = "field";
    info.user = &app;
    app.context = lws_create_context(&info);
    if (!app.context) {
        fprintf(stderr, "outpost: field: cannot listen on 127.0.0.1 port %u\n",
                (unsigned)options->port);
        goto done;
    }
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_vhost *vhost = lws_get_vhost_by_name(app.context, "field");
    int port = vhost ? lws_get_vhost_listen_port(vhost) : options->port;
    app.port = port;

    if (outpost_device_id(replica, device) == OUTPOST_OK) {
        outpost_sync_config cfg = {.stay_connected = 1, .on_wiped = on_wiped};
        int rc = outpost_sync_start(replica, &cfg, &app.sync);
        if (rc != OUTPOST_OK)
            fprintf(stderr, "outpost: field: sync does not run: %s (%s)\n",
                    outpost_errmsg(replica), outpost_strerror(rc));
    } else {
        fprintf(stderr, "outpost: field: this replica is not enrolled: records stay on this "
                        "device until it is ('outpost enroll')\n");
    }
    printf("field app: http://127.0.0.1:%d/%s/\n(open it in a browser on this device; stop "
           "with Ctrl-C)\n", port, app.token);
    fflush(stdout);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    lws_sul_schedule(app.context, 0, &app.tick, tick, TICK_US);
    while (!field_stop)
        if (lws_service(app.context, 0) < 0)
            break;
    lws_sul_cancel(&app.tick);
    ex = field_stop ? 0 : 2;
    if (field_wiped) {
        fprintf(stderr, "outpost: the office ordered this device wiped; its replica is gone\n");
        ex = 4;
    }

done:
    outpost_sync_stop(app.sync);
    if (app.context)
        lws_context_destroy(app.context);
    sqlite3_free(app.forms_json);
    memset(app.token, 0, sizeof app.token);
    return ex;
}
