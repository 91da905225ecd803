#include "dash_api.h"

#include "dash_forms.h"
#include "dash_people.h"
#include "dash_record.h"
#include "dash_session.h"
#include "dash_watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>

dash_call *dash_call_new(dash_op op)
{
    dash_call *c = calloc(1, sizeof *c);

    if (c)
        c->op = op;
    return c;
}

void dash_call_free(dash_call *c)
{
    if (!c)
        return;
    mbedtls_platform_zeroize(c->password, sizeof c->password);
    mbedtls_platform_zeroize(c->new_password, sizeof c->new_password);
    free(c->teams);
    dash_buf_free(&c->body);
    store_user_clear(&c->login_user);
    free(c->push_info.teams_touched);
    for (uint32_t i = 0; i < c->n_live; i++)
        store_user_clear(&c->live[i].user);
    free(c->live);
    free(c);
}

static void reply_error(dash_call *c, int status, const char *message)
{
    /* A 5xx tells the user to see the server log: the service thread logs this reason. */
    if (status >= 500 && !c->log_reason[0])
        snprintf(c->log_reason, sizeof c->log_reason, "%s", message);
    dash_buf_free(&c->body);
    c->http_status = status;
    c->content_type = "application/json";
    dash_buf_puts(&c->body, "{\"error\":");
    dash_buf_json_str(&c->body, message);
    dash_buf_puts(&c->body, "}");
}

static void reply_store_error(dash_call *c, store *st, int rc)
{
    switch (rc) {
    case STORE_ENOTFOUND: reply_error(c, 404, store_errmsg(st)); break;
    case STORE_EEXISTS: reply_error(c, 409, store_errmsg(st)); break;
    case STORE_EINVAL: reply_error(c, 400, store_errmsg(st)); break;
    case STORE_EBUSY: reply_error(c, 503, "the store is busy: try again"); break;
    default:
        if (store_unreachable(st)) { /* PostgreSQL down or failing over: nothing was decided */
            snprintf(c->log_reason, sizeof c->log_reason, "the store is unreachable: %s",
                     store_errmsg(st));
            reply_error(c, 503, "the store is unreachable: try again shortly");
            break;
        }
        snprintf(c->log_reason, sizeof c->log_reason, "the store failed: %s", store_errmsg(st));
        reply_error(c, 500, "the store failed: see the server log");
        break;
    }
}

static int audit(dash_call *c, store *st, const char *actor, const char *action,
                 const char *target)
{
    int rc = store_audit_append(st, c->now_ms, actor, action, target, c->address);
    if (rc != STORE_OK)
        snprintf(c->log_reason, sizeof c->log_reason, "audit %s: %s", action, store_errmsg(st));
    return rc;
}

void dash_reply_error(dash_call *c, int status, const char *message)
{
    reply_error(c, status, message);
}

void dash_reply_store_error(dash_call *c, store *st, int rc)
{
    reply_store_error(c, st, rc);
}

static void start_ok(dash_call *c)
{
    c->http_status = 200;
    c->content_type = c->csv ? "text/csv; charset=utf-8" : "application/json";
}

/* "view=NAME team=T worker=W from=F to=T [all] text=N chars" for the audit row of a read or an
 * export. The search text is recorded only as its length: it may be a child's name, and the
 * ids shown name what was seen. */
static void describe_filters(const dash_call *c, const char *view, char *out, size_t size)
{
    char page[96] = "";
    if (c->f_sort[0] || c->f_offset > 0)
        snprintf(page, sizeof page, "%s%s%s offset=%u", c->f_sort[0] ? " sort=" : "", c->f_sort,
                 c->f_sort[0] && c->f_desc ? " desc" : "", (unsigned)c->f_offset);
    int n = snprintf(out, size, "view=%s%s%s%s%s%s%s%s%s%s text=%zu chars%s", view,
                     c->f_team[0] ? " team=" : "", c->f_team, c->f_worker[0] ? " worker=" : "",
                     c->f_worker, c->f_from[0] ? " from=" : "", c->f_from,
                     c->f_to[0] ? " to=" : "", c->f_to, c->f_all ? " all" : "",
                     strlen(c->f_text), page);
    /* A description cut short at size is still a fine audit note: mark it. */
    if (n >= 0 && (size_t)n >= size && size > 4)
        memcpy(out + size - 4, "...", 4);
}

/* One audit row for a list, search or export that showed record contents: the filters and
 * the ids shown. Written before the reply leaves; when it cannot be, nothing is shown. */
static bool audit_read(dash_call *c, store *st, const char *action, const char *view,
                       dash_buf *ids)
{
    char target[256];

    describe_filters(c, view, target, sizeof target);
    dash_buf_put(ids, "", 1); /* NUL-terminate */
    if (!ids->failed && store_audit_append_ids(st, c->now_ms, c->user, c->csv ? "export" : action,
                                               target, c->address, ids->data) == STORE_OK)
        return true;
    reply_error(c, 500, c->csv ? "the audit log cannot be written: nothing exported"
                               : "the audit log cannot be written: nothing shown");
    return false;
}

/* Appends one id to a comma-separated list. */
static void add_id(dash_buf *ids, const char *id)
{
    if (ids->len > 0)
        dash_buf_puts(ids, ",");
    dash_buf_puts(ids, id);
}

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
              (name[i] >= '0' && name[i] <= '9') || name[i] == '.' || name[i] == '_' ||
              name[i] == '-'))
            return false;
    return true;
}

/* Failed logins from one address, across accounts, within the window that lock it out. */
#define DASH_ADDR_FAILURES 20u
#define DASH_ADDR_WINDOW_MS (15u * 60u * 1000u)
#define DASH_ADDR_LOCK_MS (15u * 60u * 1000u)

static void run_login(dash_call *c, store *st)
{
    static const store_lockout_policy per_address = {DASH_ADDR_FAILURES, DASH_ADDR_WINDOW_MS,
                                                     DASH_ADDR_LOCK_MS};
    char actor[64];
    bool locked = false;
    int rc = store_lockout_check(st, STORE_LOCKOUT_LOGIN_ADDR, c->address, c->now_ms, &locked);

    if (rc == STORE_OK && locked) {
        mbedtls_platform_zeroize(c->password, sizeof c->password);
        reply_error(c, 429, DASH_MSG_ADDRESS_LOCKED);
        return;
    }
    if (rc == STORE_OK)
        rc = store_user_login(st, c->name, c->password, c->now_ms, &c->login_user);
    mbedtls_platform_zeroize(c->password, sizeof c->password);
    /* Counted here, on the worker, one login at a time: concurrent guesses cannot pass the
     * limit together, and the count survives a restart. */
    if ((rc == STORE_EAUTH || rc == STORE_ELOCKED) &&
        store_lockout_fail(st, STORE_LOCKOUT_LOGIN_ADDR, c->address, &per_address, c->now_ms,
                           &locked) != STORE_OK)
        rc = STORE_EIO;
    /* The name tried goes to the audit log only when it could be an account name. */
    snprintf(actor, sizeof actor, "%s", name_ok(c->name) ? c->name : "(not an account name)");
    if (rc == STORE_OK) {
        if (audit(c, st, actor, "login.ok", "") != STORE_OK) {
            store_user_clear(&c->login_user);
            reply_error(c, 500, "the audit log cannot be written: login refused");
            return;
        }
        /* Kept in the store: every node knows the session from now on. */
        uint32_t n_ended = 0;
        if (store_session_create(st, c->login_user.name, c->now_ms, c->session_token,
                                 &n_ended) != STORE_OK) {
            store_user_clear(&c->login_user);
            reply_error(c, 500, "cannot start a session");
            return;
        }
        /* A ninth session ended the account's least recently used one: say so in the audit. */
        if (n_ended > 0)
            (void)audit(c, st, actor, "session.end", "least recently used, by a newer login");
        c->session_created_ms = c->session_last_ms = c->now_ms;
        c->http_status = 200;
        return;
    }
    if (rc == STORE_EAUTH || rc == STORE_ELOCKED) {
        /* The failure is recorded even when the audit write fails; the answer stays the same. */
        (void)audit(c, st, actor, rc == STORE_ELOCKED ? "login.locked" : "login.fail", "");
        /* The same answers whether the name is an account or not. */
        reply_error(c, rc == STORE_ELOCKED ? 423 : 401,
                    rc == STORE_ELOCKED ? DASH_MSG_NAME_LOCKED : "wrong name or password");
        return;
    }
    reply_store_error(c, st, rc);
}

/* A comma before every array element but the first. */
static void json_sep(dash_buf *b)
{
    if (b->len > 0 && b->data[b->len - 1] != '[')
        dash_buf_puts(b, ",");
}

static void format_ms(dash_buf *b, uint64_t ms)
{
    dash_buf_printf(b, "%llu", (unsigned long long)ms);
}

/* The caller's teams a view reads: all of them, or the one a team filter names (none when it
 * names a team that is not the caller's), from *first on. */
static uint32_t team_scope(const dash_call *c, uint32_t *first)
{
    *first = 0;
    if (!c->f_team[0])
        return c->n_teams;
    for (uint32_t i = 0; i < c->n_teams; i++)
        if (strcmp(c->teams[i], c->f_team) == 0) {
            *first = i;
            return 1;
        }
    return 0;
}

static int device_row(const store_dash_device *d, void *user_data)
{
    dash_call *c = user_data;
    dash_buf *b = &c->body;

    if (c->csv) {
        dash_buf_csv_field(b, d->worker_id);
        dash_buf_puts(b, ",");
        dash_buf_csv_field(b, d->teams);
        dash_buf_puts(b, ",");
        dash_buf_csv_field(b, d->device_id);
        dash_buf_puts(b, ",");
        dash_buf_csv_field(b, d->name);
        dash_buf_printf(b, ",%llu,%llu,%s,%llu,%llu,", (unsigned long long)d->enrolled_ms,
                        (unsigned long long)d->last_seen_ms, d->revoked ? "yes" : "no",
                        (unsigned long long)d->pending, (unsigned long long)d->refused);
        dash_buf_csv_field(b, d->last_refusal);
        dash_buf_puts(b, ",");
        dash_buf_csv_field(b, d->last_error);
        dash_buf_puts(b, ",");
        dash_buf_csv_field(b, d->app);
        dash_buf_puts(b, "\r\n");
        return 0;
    }
    json_sep(b);
    dash_buf_puts(b, "{\"device_id\":");
    dash_buf_json_str(b, d->device_id);
    dash_buf_puts(b, ",\"worker\":");
    dash_buf_json_str(b, d->worker_id);
    dash_buf_puts(b, ",\"name\":");
    dash_buf_json_str(b, d->name);
    dash_buf_puts(b, ",\"teams\":");
    dash_buf_json_str(b, d->teams);
    dash_buf_puts(b, ",\"enrolled_ms\":");
    format_ms(b, d->enrolled_ms);
    dash_buf_puts(b, ",\"last_seen_ms\":");
    format_ms(b, d->last_seen_ms);
    dash_buf_printf(b, ",\"pending\":%llu,\"reported_ms\":%llu,\"refused\":%llu,\"last_refusal\":",
                    (unsigned long long)d->pending, (unsigned long long)d->reported_ms,
                    (unsigned long long)d->refused);
    dash_buf_json_str(b, d->last_refusal);
    dash_buf_puts(b, ",\"last_error\":");
    dash_buf_json_str(b, d->last_error);
    dash_buf_puts(b, ",\"app\":");
    dash_buf_json_str(b, d->app);
    dash_buf_printf(b, ",\"revoked\":%s}", d->revoked ? "true" : "false");
    return 0;
}

static void run_devices(dash_call *c, store *st)
{
    int rc;

    start_ok(c);
    if (c->csv)
        dash_buf_puts(&c->body, "worker,teams,device,name,enrolled_ms,last_sync_ms,revoked,"
                                "pending,refused,last_refusal,last_error,app\r\n");
    else
        dash_buf_printf(&c->body, "{\"now_ms\":%llu,\"devices\":[",
                        (unsigned long long)c->now_ms);
    uint32_t first, n = team_scope(c, &first);
    rc = store_dash_devices(st, (const char(*)[64])(c->teams + first), n, device_row, c);
    if (rc != STORE_OK) {
        reply_store_error(c, st, rc);
        return;
    }
    if (!c->csv)
        dash_buf_puts(&c->body, "]}");
}

typedef struct records_ctx {
    dash_call *call;
    uint32_t n_rows;
    dash_buf ids; /* the keys shown, for the audit row */
} records_ctx;

/* Bytes a record list or export may fill (with the row that crosses it, at least one row):
 * rows are paged by bytes as well as by count, so a few oversized rows end a page early instead
 * of overflowing DASH_BUF_MAX into an HTTP 500. */
#define DASH_PAGE_BYTES (4u * 1024u * 1024u)
#define DASH_EXPORT_BYTES (12u * 1024u * 1024u)

/* An upper bound on what rec adds to the reply: JSON escapes a byte into at most 6. */
static size_t record_bytes_max(const store_dash_record *rec)
{
    size_t n = 16;

    for (uint32_t i = 0; i < rec->n_cols; i++)
        n += 8 + 6 * (rec->values[i] ? strlen(rec->values[i]) : 4);
    return n;
}

static int record_row(const store_dash_record *rec, void *user_data)
{
    records_ctx *rc = user_data;
    dash_call *c = rc->call;
    dash_buf *b = &c->body;
    size_t budget = c->csv ? DASH_EXPORT_BYTES : DASH_PAGE_BYTES;

    if (rc->n_rows > 0 && b->len + record_bytes_max(rec) > budget) {
        c->truncated = true;
        return 1; /* stop: the next page (narrower filters) shows the rest */
    }

    if (rc->n_rows == 0) {
        if (c->csv) {
            for (uint32_t i = 0; i < rec->n_cols; i++) {
                if (i)
                    dash_buf_puts(b, ",");
                dash_buf_csv_field(b, rec->cols[i]);
            }
            dash_buf_puts(b, "\r\n");
        } else {
            dash_buf_puts(b, "\"columns\":[");
            for (uint32_t i = 0; i < rec->n_cols; i++) {
                if (i)
                    dash_buf_puts(b, ",");
                dash_buf_json_str(b, rec->cols[i]);
            }
            dash_buf_puts(b, "],\"rows\":[");
        }
    } else if (!c->csv) {
        dash_buf_puts(b, ",");
    }
    if (c->csv) {
        for (uint32_t i = 0; i < rec->n_cols; i++) {
            if (i)
                dash_buf_puts(b, ",");
            dash_buf_csv_field(b, rec->values[i]);
        }
        dash_buf_puts(b, "\r\n");
    } else {
        dash_buf_puts(b, "[");
        for (uint32_t i = 0; i < rec->n_cols; i++) {
            if (i)
                dash_buf_puts(b, ",");
            dash_buf_json_str(b, rec->values[i]);
        }
        dash_buf_puts(b, "]");
    }
    add_id(&rc->ids, rec->key);
    rc->n_rows++;
    return 0;
}

static void fill_query(const dash_call *c, store_dash_query *q)
{
    memset(q, 0, sizeof *q);
    q->table = c->table;
    q->worker_col = c->worker_col[0] ? c->worker_col : NULL;
    q->date_col = c->date_col[0] ? c->date_col : NULL;
    q->worker = c->f_worker;
    q->team = c->f_team;
    q->date_from = c->f_from;
    q->date_to = c->f_to;
    q->text = c->f_text;
    q->sort = c->f_sort[0] ? c->f_sort : NULL;
    q->desc = c->f_desc;
    q->offset = c->f_offset;
    q->limit = c->csv ? 1000 : c->f_limit;
}

static void run_records(dash_call *c, store *st)
{
    store_dash_query q;
    records_ctx ctx = {c, 0, {0}};
    bool more = false;
    int rc;

    fill_query(c, &q);
    q.out_more = &more;
    start_ok(c);
    if (!c->csv)
        dash_buf_puts(&c->body, "{");
    rc = store_dash_records(st, (const char(*)[64])c->teams, c->n_teams, &q, record_row, &ctx);
    if (rc > 0)
        rc = STORE_OK; /* record_row stopped the walk at the byte budget */
    if (rc != STORE_OK) {
        reply_store_error(c, st, rc);
    } else if (audit_read(c, st, "record.list", "records", &ctx.ids)) {
        if (!c->csv) {
            if (ctx.n_rows == 0)
                dash_buf_puts(&c->body, "\"columns\":[],\"rows\":[");
            /* more: rows past this page match (offset + rows shown is the next page's). */
            dash_buf_printf(&c->body, "],\"truncated\":%s,\"offset\":%u,\"more\":%s}",
                            c->truncated ? "true" : "false", (unsigned)c->f_offset,
                            more || c->truncated ? "true" : "false");
        } else if (more) {
            c->truncated = true;
        }
    }
    dash_buf_free(&ctx.ids);
}

static int perday_row(const char *day, const char *worker, uint64_t count, void *user_data)
{
    dash_call *c = user_data;
    dash_buf *b = &c->body;

    if (c->csv) {
        dash_buf_csv_field(b, day);
        dash_buf_puts(b, ",");
        dash_buf_csv_field(b, worker);
        dash_buf_printf(b, ",%llu\r\n", (unsigned long long)count);
        return 0;
    }
    json_sep(b);
    dash_buf_puts(b, "{\"day\":");
    dash_buf_json_str(b, day);
    dash_buf_puts(b, ",\"worker\":");
    dash_buf_json_str(b, worker);
    dash_buf_printf(b, ",\"count\":%llu}", (unsigned long long)count);
    return 0;
}

static void run_perday(dash_call *c, store *st)
{
    int rc;

    start_ok(c);
    if (c->csv)
        dash_buf_puts(&c->body, "day,worker,count\r\n");
    else
        dash_buf_puts(&c->body, "{\"days\":[");
    uint32_t first, n = team_scope(c, &first);
    rc = store_dash_per_day(st, (const char(*)[64])(c->teams + first), n, c->table,
                            c->worker_col, c->date_col, c->f_from, perday_row, c);
    if (rc != STORE_OK) {
        reply_store_error(c, st, rc);
        return;
    }
    if (!c->csv)
        dash_buf_puts(&c->body, "]}");
}

typedef struct conflicts_ctx {
    dash_call *call;
    store *st;
    dash_buf ids; /* "ID:KEY" of each conflict shown, for the audit row */
} conflicts_ctx;

static int conflict_row(const store_dash_conflict *k, void *user_data)
{
    conflicts_ctx *ctx = user_data;
    dash_call *c = ctx->call;
    dash_buf *b = &c->body;

    if (ctx->ids.len > 0)
        dash_buf_puts(&ctx->ids, ",");
    dash_buf_printf(&ctx->ids, "%lld:%s", (long long)k->id, k->row_key);
    if (c->csv) {
        dash_buf_printf(b, "%lld,", (long long)k->id);
        dash_buf_csv_field(b, k->table);
        dash_buf_puts(b, ",");
        dash_buf_csv_field(b, k->row_key);
        dash_buf_puts(b, ",");
        dash_buf_csv_field(b, k->column);
        dash_buf_puts(b, ",");
        dash_buf_csv_field(b, k->scope);
        dash_buf_puts(b, ",");
        dash_buf_csv_field(b, k->winning);
        dash_buf_puts(b, ",");
        dash_buf_csv_field(b, k->losing);
        dash_buf_puts(b, ",");
        dash_buf_csv_field(b, k->loser_worker);
        dash_buf_printf(b, ",%llu,", (unsigned long long)k->time_ms);
        dash_buf_csv_field(b, k->decision);
        dash_buf_puts(b, "\r\n");
        return 0;
    }
    json_sep(b);
    dash_conflict_json(b, k);
    /* The record it is about, to name it (null when it is not in the caller's teams). */
    if (b->len > 0 && b->data[b->len - 1] == '}') {
        b->len--;
        dash_buf_puts(b, ",\"record\":");
        dash_record_object(c, ctx->st, k->table, k->row_key, b, NULL);
        dash_buf_puts(b, "}");
    }
    return 0;
}

void dash_conflict_json(dash_buf *b, const store_dash_conflict *k)
{
    dash_buf_printf(b, "{\"id\":%lld,\"table\":", (long long)k->id);
    dash_buf_json_str(b, k->table);
    dash_buf_puts(b, ",\"column\":");
    dash_buf_json_str(b, k->column);
    dash_buf_puts(b, ",\"row\":");
    dash_buf_json_str(b, k->row_key);
    dash_buf_puts(b, ",\"team\":");
    dash_buf_json_str(b, k->scope);
    dash_buf_puts(b, ",\"winning\":");
    dash_buf_json_str(b, k->winning);
    dash_buf_puts(b, ",\"losing\":");
    dash_buf_json_str(b, k->losing);
    dash_buf_puts(b, ",\"loser_device\":");
    dash_buf_json_str(b, k->loser_device);
    dash_buf_puts(b, ",\"loser_worker\":");
    dash_buf_json_str(b, k->loser_worker);
    dash_buf_puts(b, ",\"winner_device\":");
    dash_buf_json_str(b, k->winner_device);
    dash_buf_puts(b, ",\"winner_worker\":");
    dash_buf_json_str(b, k->winner_worker);
    dash_buf_puts(b, ",\"time_ms\":");
    format_ms(b, k->time_ms);
    dash_buf_printf(b, ",\"reversible\":%s", k->reversible ? "true" : "false");
    if (k->reverse_refused[0] != '\0') {
        /* why Reverse is not offered (POST /api/decide would refuse it with these words) */
        dash_buf_puts(b, ",\"reverse_refused\":");
        dash_buf_json_str(b, k->reverse_refused);
    }
    dash_buf_puts(b, ",\"decision\":");
    dash_buf_json_str(b, k->decision);
    dash_buf_puts(b, ",\"decided_by\":");
    dash_buf_json_str(b, k->decided_by);
    if (k->refused) {
        /* refused: the worker's change was never applied; losing is what the worker typed */
        dash_buf_printf(b, ",\"refused\":{\"code\":%u,\"message\":", (unsigned)k->refused_code);
        dash_buf_json_str(b, k->refused_message);
        dash_buf_puts(b, "}");
    }
    dash_buf_puts(b, "}");
}

static void run_conflicts(dash_call *c, store *st)
{
    conflicts_ctx ctx = {c, st, {0}};
    int rc;

    start_ok(c);
    if (c->csv)
        dash_buf_puts(&c->body, "id,table,row,column,team,kept_value,losing_value,losing_worker,"
                                "time_ms,decision\r\n");
    else
        dash_buf_puts(&c->body, "{\"conflicts\":[");
    uint32_t first, n = team_scope(c, &first);
    rc = store_dash_conflicts(st, (const char(*)[64])(c->teams + first), n, c->f_all, 200,
                              conflict_row, &ctx);
    if (rc != STORE_OK)
        reply_store_error(c, st, rc);
    else if (audit_read(c, st, "conflict.list", "conflicts", &ctx.ids) && !c->csv)
        dash_buf_puts(&c->body, "]}");
    dash_buf_free(&ctx.ids);
}

static void run_decide(dash_call *c, store *st)
{
    char target[64];
    int rc;

    snprintf(target, sizeof target, "conflict/%lld", (long long)c->conflict_id);
    rc = store_dash_decide(st, (const char(*)[64])c->teams, c->n_teams, c->conflict_id,
                           c->reverse, c->user, c->now_ms, &c->push_info);
    if (rc != STORE_OK) {
        reply_store_error(c, st, rc);
        return;
    }
    /* The decision is made: a failed audit write is reported, and the decision stands. */
    if (audit(c, st, c->user, c->reverse ? "conflict.reverse" : "conflict.keep", target) !=
        STORE_OK) {
        reply_error(c, 500, "decision recorded, but the audit log cannot be written");
        return;
    }
    start_ok(c);
    dash_buf_printf(&c->body, "{\"id\":%lld,\"decision\":\"%s\"}", (long long)c->conflict_id,
                    c->reverse ? "reversed" : "kept");
}

static int audit_row(const store_audit_row *row, void *user_data)
{
    dash_call *c = user_data;
    dash_buf *b = &c->body;

    if (c->csv) {
        dash_buf_printf(b, "%lld,%llu,", (long long)row->id, (unsigned long long)row->time_ms);
        dash_buf_csv_field(b, row->actor);
        dash_buf_puts(b, ",");
        dash_buf_csv_field(b, row->action);
        dash_buf_puts(b, ",");
        dash_buf_csv_field(b, row->target);
        dash_buf_puts(b, ",");
        dash_buf_csv_field(b, row->address);
        dash_buf_puts(b, ",");
        dash_buf_csv_field(b, row->ids);
        dash_buf_puts(b, "\r\n");
        return 0;
    }
    json_sep(b);
    dash_buf_printf(b, "{\"id\":%lld,\"time_ms\":%llu,\"actor\":", (long long)row->id,
                    (unsigned long long)row->time_ms);
    dash_buf_json_str(b, row->actor);
    dash_buf_puts(b, ",\"action\":");
    dash_buf_json_str(b, row->action);
    dash_buf_puts(b, ",\"target\":");
    dash_buf_json_str(b, row->target);
    dash_buf_puts(b, ",\"address\":");
    dash_buf_json_str(b, row->address);
    dash_buf_puts(b, ",\"ids\":");
    dash_buf_json_str(b, row->ids);
    dash_buf_puts(b, "}");
    return 0;
}

/* "YYYY-MM-DD" (UTC) as milliseconds at its start, plus days; 0 for "", -1 when malformed. */
static int64_t day_ms(const char *day, int plus_days)
{
    int y, m, d, used = 0;

    if (!day[0])
        return 0;
    if (sscanf(day, "%4d-%2d-%2d%n", &y, &m, &d, &used) != 3 || day[used] || y < 1970 ||
        m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    /* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard Hinnant's
     * days_from_civil). */
    y -= m <= 2;
    int64_t era = y / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468 + plus_days;
    return days * 86400000;
}

typedef struct audit_page {
    dash_call *call;
    uint32_t n_rows;
    int64_t last_id;
} audit_page;

static int audit_page_row(const store_audit_row *row, void *user_data)
{
    audit_page *page = user_data;
    page->n_rows++;
    page->last_id = row->id;
    return audit_row(row, page->call);
}

/* The audit log, newest first, filtered by person, action (or family) and days; pages of
 * limit rows (100 by default, 1000 at most) walked with before=next_before; an export takes
 * every matching row. */
static void run_audit(dash_call *c, store *st)
{
    store_audit_filter f;
    audit_page page = {c, 0, 0};
    int64_t from = day_ms(c->f_from, 0), to = day_ms(c->f_to, 1);
    int rc;

    if (c->role != STORE_ROLE_ADMIN) {
        reply_error(c, 403, "the audit log is for administrators");
        return;
    }
    if (from < 0 || to < 0) {
        reply_error(c, 400, "from and to are days: YYYY-MM-DD");
        return;
    }
    memset(&f, 0, sizeof f);
    f.actor = c->f_actor;
    f.action = c->f_action;
    f.from_ms = (uint64_t)from;
    f.to_ms = (uint64_t)to;
    f.before_id = c->f_before;
    f.limit = c->csv ? 0 : c->f_limit == 0 ? 100 : c->f_limit > 1000 ? 1000 : c->f_limit;
    if (c->csv) {
        char target[256];
        int n = snprintf(target, sizeof target, "view=audit%s%s%s%s%s%s%s%s", c->f_actor[0] ?
                         " actor=" : "", c->f_actor, c->f_action[0] ? " action=" : "",
                         c->f_action, c->f_from[0] ? " from=" : "", c->f_from,
                         c->f_to[0] ? " to=" : "", c->f_to);
        if (n >= (int)sizeof target)
            memcpy(target + sizeof target - 4, "...", 4);
        if (audit(c, st, c->user, "export", target) != STORE_OK) {
            reply_error(c, 500, "the audit log cannot be written: nothing exported");
            return;
        }
    }
    start_ok(c);
    if (c->csv)
        dash_buf_puts(&c->body, "id,time_ms,actor,action,target,address,ids\r\n");
    else
        dash_buf_puts(&c->body, "{\"audit\":[");
    rc = store_audit_query(st, &f, audit_page_row, &page);
    if (rc != STORE_OK) {
        reply_store_error(c, st, rc);
        return;
    }
    if (!c->csv)
        dash_buf_printf(&c->body, "],\"next_before\":%lld}",
                        (long long)(f.limit != 0 && page.n_rows == f.limit ? page.last_id : 0));
}

static void run_password(dash_call *c, store *st)
{
    int rc = store_user_change_password(st, c->user, c->password, c->new_password, c->now_ms);

    mbedtls_platform_zeroize(c->password, sizeof c->password);
    mbedtls_platform_zeroize(c->new_password, sizeof c->new_password);
    if (rc == STORE_EAUTH || rc == STORE_ELOCKED) {
        (void)audit(c, st, c->user, "password.fail", "");
        reply_error(c, 403, rc == STORE_ELOCKED ? "this account is locked after five failed "
                                                  "attempts: ask an administrator"
                                                : "the current password is wrong");
        return;
    }
    if (rc != STORE_OK) {
        reply_store_error(c, st, rc);
        return;
    }
    /* Every other session of the account ends, on every node. */
    if (store_sessions_end_user(st, c->user, c->session_token, NULL) != STORE_OK) {
        reply_error(c, 500, "password changed, but its other sessions could not be ended");
        return;
    }
    if (audit(c, st, c->user, "password.change", "") != STORE_OK) {
        reply_error(c, 500, "password changed, but the audit log cannot be written");
        return;
    }
    start_ok(c);
    dash_buf_puts(&c->body, "{\"changed\":true}");
}

/* The call's session, from the store (any node may have started or ended it): fills c->user
 * and the session's times; the idle clock restarts unless the page asked by itself. */
static bool session_valid(dash_call *c, store *st)
{
    store_session s;
    int rc = store_session_find(st, c->session_token, c->now_ms, !c->background, &s);

    if (rc == STORE_ENOTFOUND || rc == STORE_EREVOKED) {
        c->session_gone = true;
        c->session_ended = rc == STORE_EREVOKED;
        snprintf(c->user, sizeof c->user, "%s", s.user); /* known when it ended here */
        reply_error(c, 401,
                    rc == STORE_EREVOKED
                        ? "your session has ended: this account was disabled or removed"
                    : !s.user[0] ? "not logged in, or the session was ended (logged out, or by "
                                   "a newer login or a new password)"
                    : c->now_ms > s.last_ms + STORE_SESSION_IDLE_MS
                        ? "logged out after 30 idle minutes"
                        : "the session reached its 12-hour limit: log in again");
        return false;
    }
    if (rc != STORE_OK) {
        reply_store_error(c, st, rc);
        return false;
    }
    snprintf(c->user, sizeof c->user, "%s", s.user);
    c->session_created_ms = s.created_ms;
    c->session_last_ms = c->background ? s.last_ms : c->now_ms;
    return true;
}

/* The sessions of /live sockets as the store has them now, without restarting an idle clock (a
 * socket is not activity), with each account's teams as they are now. A store error leaves the
 * answer UNKNOWN: the caller keeps open sockets and refuses new ones. */
static void run_live(dash_call *c, store *st)
{
    for (uint32_t i = 0; i < c->n_live; i++) {
        dash_live_check *k = &c->live[i];
        store_session s;
        int rc = store_session_find(st, k->token, c->now_ms, false, &s);

        k->state = rc == STORE_ENOTFOUND || rc == STORE_EREVOKED ? DASH_LIVE_ENDED
                                                                  : DASH_LIVE_UNKNOWN;
        if (rc != STORE_OK)
            continue;
        rc = store_user_get(st, s.user, &k->user);
        if (rc == STORE_ENOTFOUND)
            k->state = DASH_LIVE_ENDED;
        if (rc != STORE_OK)
            continue;
        /* after a reset, nothing but choosing a new password: no events either */
        if (k->user.must_change) {
            free(k->user.teams);
            k->user.teams = NULL;
            k->user.n_teams = 0;
        }
        k->created_ms = s.created_ms;
        k->last_ms = s.last_ms;
        k->state = DASH_LIVE_ALIVE;
    }
    c->http_status = 200;
}

/* Every call re-reads its account: a disabled or removed one ends here (and the service
 * thread ends its sessions); a changed role or set of teams applies from this call on. */
static bool account_still_valid(dash_call *c, store *st)
{
    store_user user;
    int rc = store_user_get(st, c->user, &user);

    if (rc == STORE_ENOTFOUND) {
        c->session_ended = true;
        c->session_gone = true;
        (void)store_sessions_end_user(st, c->user, NULL, NULL);
        reply_error(c, 401, "your session has ended: this account was disabled or removed");
        return false;
    }
    if (rc != STORE_OK) {
        reply_store_error(c, st, rc);
        return false;
    }
    /* After an administrator reset the password, nothing but choosing a new one. */
    if (user.must_change && c->op != DASH_PASSWORD && c->op != DASH_ME) {
        store_user_clear(&user);
        c->http_status = 403;
        c->content_type = "application/json";
        dash_buf_free(&c->body);
        dash_buf_puts(&c->body, "{\"error\":\"your password was reset by an administrator: "
                                "choose a new one\",\"must_change\":true}");
        return false;
    }
    free(c->teams);
    c->teams = user.teams;
    c->n_teams = user.n_teams;
    c->role = user.role;
    user.teams = NULL;
    return true;
}

/* The filters each view applies. */
enum {
    F_WORKER = 1 << 0, F_TEAM = 1 << 1, F_FROM = 1 << 2, F_TO = 1 << 3, F_TEXT = 1 << 4,
    F_ALL = 1 << 5, F_PAGE = 1 << 6, F_LIMIT = 1 << 7, F_AUDIT = 1 << 8, F_RECORD = 1 << 9,
};

static unsigned filters_applied(dash_op op)
{
    switch (op) {
    case DASH_RECORDS: return F_WORKER | F_TEAM | F_FROM | F_TO | F_TEXT | F_PAGE | F_LIMIT;
    case DASH_RECORD: return F_RECORD;
    case DASH_PERDAY: return F_TEAM | F_FROM;
    case DASH_CONFLICTS: return F_TEAM | F_ALL;
    case DASH_DEVICES: return F_TEAM;
    case DASH_WATCH:
    case DASH_WATCH_COUNTS: return F_TEAM;
    case DASH_AUDIT: return F_FROM | F_TO | F_LIMIT | F_AUDIT;
    default: return 0;
    }
}

/* A filter the view would not apply is refused, so that what the audit row names is what
 * narrowed the reply. The records view reads the dashboard table only. */
static bool filters_ok(dash_call *c)
{
    unsigned given = (c->f_worker[0] ? F_WORKER : 0) | (c->f_team[0] ? F_TEAM : 0) |
                     (c->f_from[0] ? F_FROM : 0) | (c->f_to[0] ? F_TO : 0) |
                     (c->f_text[0] ? F_TEXT : 0) | (c->f_all ? F_ALL : 0) |
                     (c->f_sort[0] || c->f_desc || c->f_offset ? F_PAGE : 0) |
                     (c->f_limit ? F_LIMIT : 0) |
                     (c->f_actor[0] || c->f_action[0] || c->f_before ? F_AUDIT : 0) |
                     (c->op != DASH_DECIDE && (c->f_id[0] || c->f_table[0]) ? F_RECORD : 0);
    unsigned extra = given & ~filters_applied(c->op);

    if (c->op == DASH_RECORDS && c->f_table[0] && strcmp(c->f_table, c->table) == 0)
        extra &= ~(unsigned)F_RECORD;
    if (extra == 0)
        return true;
    reply_error(c, 400, c->op == DASH_RECORDS && (extra & F_RECORD)
                            ? "the dashboard lists one table: the one named in the server's "
                              "[dashboard] table"
                            : "this view does not take that filter (records: team, worker, "
                              "from, to, q, sort, dir, offset, limit; perday: team, from; "
                              "conflicts: team, all; devices, watch: team)");
    return false;
}

/* A read or decision that was refused (403) or found nothing in the caller's teams (404)
 * leaves its own row, naming what was asked: an insider guessing ids leaves a trace. A
 * successful read is audited by its view; these replies showed nothing. */
static void audit_denied(dash_call *c, store *st)
{
    char target[256];
    const char *action = NULL;

    if (c->http_status != 403 && c->http_status != 404)
        return;
    switch (c->op) {
    case DASH_RECORD:
        action = "record.denied";
        snprintf(target, sizeof target, "%s/%s", c->f_table[0] ? c->f_table : c->table,
                 c->f_id);
        break;
    case DASH_DECIDE:
        action = "conflict.denied";
        snprintf(target, sizeof target, "conflict/%lld %s", (long long)c->conflict_id,
                 c->reverse ? "reverse" : "keep");
        break;
    case DASH_AUDIT:
        action = "audit.denied";
        snprintf(target, sizeof target, "view=audit");
        break;
    case DASH_PEOPLE:
    case DASH_PEOPLE_ACT:
        if (c->http_status != 403)
            return; /* an administrator naming someone who is not there */
        action = "people.denied";
        snprintf(target, sizeof target, "%s%s%s%s%s", c->op == DASH_PEOPLE ? "view=people"
                                                                          : "act",
                 c->p_kind[0] ? " " : "", c->p_kind, c->p_id[0] ? "/" : "", c->p_id);
        break;
    case DASH_WATCH:
    case DASH_WATCH_COUNTS:
        action = "watch.denied";
        snprintf(target, sizeof target, "view=watch team=%s", c->f_team);
        break;
    default: return;
    }
    (void)audit(c, st, c->user, action, target);
}

void dash_run(dash_call *c, store *st)
{
    int rc;

    if (c->op == DASH_LIVE) {
        run_live(c, st);
        return;
    }
    if (c->op != DASH_LOGIN && !session_valid(c, st))
        return;
    if (c->op != DASH_LOGIN && c->op != DASH_LOGOUT && !filters_ok(c))
        return;
    if (c->op != DASH_LOGIN && c->op != DASH_LOGOUT && !account_still_valid(c, st))
        return;
    switch (c->op) {
    case DASH_LOGIN: run_login(c, st); break;
    case DASH_LOGOUT:
        /* Ended in the store: on every node at once. */
        if ((rc = store_session_end(st, c->session_token)) != STORE_OK) {
            reply_store_error(c, st, rc);
            break;
        }
        c->session_gone = true;
        (void)audit(c, st, c->user, "logout", "");
        start_ok(c);
        dash_buf_puts(&c->body, "{}");
        break;
    case DASH_ME:
        start_ok(c);
        dash_session_json(&c->body, c->user, c->role, (const char(*)[64])c->teams, c->n_teams,
                          c->session_token, c->session_created_ms, c->session_last_ms,
                          c->now_ms, c->table);
        break;
    case DASH_DEVICES:
        if (c->csv) {
            char target[256];
            describe_filters(c, "devices", target, sizeof target);
            if (audit(c, st, c->user, "export", target) != STORE_OK) {
                reply_error(c, 500, "the audit log cannot be written: nothing exported");
                break;
            }
        }
        run_devices(c, st);
        break;
    case DASH_RECORDS: run_records(c, st); break;
    case DASH_RECORD: dash_record_view(c, st); break;
    case DASH_PERDAY:
        if (c->csv) {
            char target[256];
            describe_filters(c, "per-day", target, sizeof target);
            if (audit(c, st, c->user, "export", target) != STORE_OK) {
                reply_error(c, 500, "the audit log cannot be written: nothing exported");
                break;
            }
        }
        run_perday(c, st);
        break;
    case DASH_CONFLICTS: run_conflicts(c, st); break;
    case DASH_DECIDE: run_decide(c, st); break;
    case DASH_AUDIT: run_audit(c, st); break;
    case DASH_PEOPLE: dash_people_list(c, st); break;
    case DASH_PEOPLE_ACT: dash_people_act(c, st); break;
    case DASH_PASSWORD: run_password(c, st); break;
    case DASH_FORMS: dash_forms_get(c, st); break;
    case DASH_WATCH: dash_watch_items(c, st); break;
    case DASH_WATCH_COUNTS: dash_watch_counts(c, st); break;
    case DASH_LIVE: break; /* answered above */
    }
    audit_denied(c, st);
    if (c->body.failed)
        reply_error(c, 500, "reply too large or out of memory: narrow the filters");
}
