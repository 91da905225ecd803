#include "dash_watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_watch.h"

/* At most this many items in one reply (the ids shown go into one audit row). */
#define WATCH_ITEMS_MAX 500u
#define WATCH_WEEKS 12u

/* "now" for watch rules: the test clock file when set, the server's clock otherwise. */
static uint64_t watch_now_ms(const dash_call *c)
{
    const char *path = getenv(DASH_WATCH_CLOCK_ENV);
    char text[64] = "";
    FILE *f = path && path[0] ? fopen(path, "r") : NULL;
    if (f == NULL)
        return c->now_ms;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (sscanf(text, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) == 6) {
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        return (uint64_t)timegm(&tm) * 1000u;
    }
    char *num_end = NULL;
    unsigned long long ms = strtoull(text, &num_end, 10);
    return num_end != text ? (uint64_t)ms : c->now_ms;
}

/* The teams asked for: all the caller's, or the one named by team= when it is one of them. */
static bool pick_teams(dash_call *c, const char (**out_teams)[64], uint32_t *out_n)
{
    *out_teams = (const char(*)[64])c->teams;
    *out_n = c->n_teams;
    if (!c->f_team[0])
        return true;
    for (uint32_t i = 0; i < c->n_teams; i++)
        if (strcmp(c->teams[i], c->f_team) == 0) {
            *out_teams = (const char(*)[64]) & c->teams[i];
            *out_n = 1;
            return true;
        }
    dash_reply_error(c, 403, "that team is not one of yours");
    return false;
}

typedef struct items_ctx {
    dash_call *call;
    dash_buf ids; /* "table/id" of each item shown, for the audit row */
    uint32_t n;
} items_ctx;

static int item_row(const store_watch_item *it, void *user_data)
{
    items_ctx *ctx = user_data;
    dash_buf *b = &ctx->call->body;
    if (ctx->n == WATCH_ITEMS_MAX) {
        ctx->call->truncated = true;
        return 1;
    }
    dash_buf_puts(b, ctx->n ? ",{\"rule\":" : "{\"rule\":");
    dash_buf_json_str(b, it->rule_id);
    dash_buf_puts(b, ",\"severity\":");
    dash_buf_json_str(b, it->severity);
    dash_buf_printf(b, ",\"title\":%s,\"table\":", it->title_json); /* JSON made by jansson */
    dash_buf_json_str(b, it->table);
    dash_buf_puts(b, ",\"team\":");
    dash_buf_json_str(b, it->team);
    dash_buf_puts(b, ",\"id\":");
    dash_buf_json_str(b, it->record_id);
    dash_buf_puts(b, ",\"alias\":");
    if (it->alias)
        dash_buf_json_str(b, it->alias);
    else
        dash_buf_puts(b, "null");
    dash_buf_puts(b, ",\"due\":");
    dash_buf_json_str(b, it->due);
    dash_buf_puts(b, "}");
    if (ctx->ids.len)
        dash_buf_puts(&ctx->ids, ",");
    dash_buf_printf(&ctx->ids, "%s/%s", it->table, it->record_id);
    ctx->n++;
    return 0;
}

static bool audit_ok(dash_call *c, store *st, const char *action, const char *target,
                     dash_buf *ids)
{
    dash_buf_put(ids, "", 1);
    if (!ids->failed && store_audit_append_ids(st, c->now_ms, c->user, action, target,
                                               c->address, ids->data) == STORE_OK)
        return true;
    dash_reply_error(c, 500, "the audit log cannot be written: nothing shown");
    return false;
}

/* A rule the store can no longer compile is named (it is the admin's to fix); the rest as the
 * other views answer them. */
static void store_error(dash_call *c, store *st, int rc)
{
    if (rc == STORE_ESCHEMA)
        dash_reply_error(c, 500, store_errmsg(st));
    else
        dash_reply_store_error(c, st, rc);
}

void dash_watch_items(dash_call *c, store *st)
{
    const char(*teams)[64];
    uint32_t n_teams;
    if (!pick_teams(c, &teams, &n_teams))
        return;
    uint64_t now = watch_now_ms(c);
    char now_text[24], target[128];
    time_t secs = (time_t)(now / 1000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(now_text, sizeof now_text, "%Y-%m-%d %H:%M:%S", &tm);
    items_ctx ctx = {c, {0}, 0};
    c->http_status = 200;
    c->content_type = "application/json";
    dash_buf_puts(&c->body, "{\"now\":");
    dash_buf_json_str(&c->body, now_text);
    dash_buf_puts(&c->body, ",\"items\":[");
    int rc = store_watch_items(st, teams, n_teams, now, item_row, &ctx);
    snprintf(target, sizeof target, "view=watch%s%s", c->f_team[0] ? " team=" : "", c->f_team);
    if (rc < 0)
        store_error(c, st, rc);
    else if (audit_ok(c, st, "watch.list", target, &ctx.ids))
        dash_buf_printf(&c->body, "],\"truncated\":%s}", c->truncated ? "true" : "false");
    dash_buf_free(&ctx.ids);
}

typedef struct counts_ctx {
    dash_buf *body;
    uint32_t n;
} counts_ctx;

static int count_row(const char *team, const char *rule_id, const char *week, uint64_t n_due,
                     uint64_t n_open, void *user_data)
{
    counts_ctx *ctx = user_data;
    dash_buf_puts(ctx->body, ctx->n++ ? ",{\"team\":" : "{\"team\":");
    dash_buf_json_str(ctx->body, team);
    dash_buf_puts(ctx->body, ",\"rule\":");
    dash_buf_json_str(ctx->body, rule_id);
    dash_buf_puts(ctx->body, ",\"week\":");
    dash_buf_json_str(ctx->body, week ? week : "");
    dash_buf_printf(ctx->body, ",\"due\":%llu,\"open\":%llu}", (unsigned long long)n_due,
                    (unsigned long long)n_open);
    return 0;
}

static int rule_row(const char *rule_id, const char *severity, const char *title_json,
                    void *user_data)
{
    counts_ctx *ctx = user_data;
    dash_buf_puts(ctx->body, ctx->n++ ? ",{\"id\":" : "{\"id\":");
    dash_buf_json_str(ctx->body, rule_id);
    dash_buf_puts(ctx->body, ",\"severity\":");
    dash_buf_json_str(ctx->body, severity);
    dash_buf_printf(ctx->body, ",\"title\":%s}", title_json); /* JSON made by jansson */
    return 0;
}

void dash_watch_counts(dash_call *c, store *st)
{
    const char(*teams)[64];
    uint32_t n_teams;
    if (!pick_teams(c, &teams, &n_teams))
        return;
    uint64_t now = watch_now_ms(c);
    uint64_t span = (uint64_t)WATCH_WEEKS * 7u * 24u * 3600u * 1000u;
    uint64_t since = now > span ? now - span : 0;
    char target[128];
    snprintf(target, sizeof target, "view=watch-counts%s%s", c->f_team[0] ? " team=" : "",
             c->f_team);
    dash_buf none = {0};
    if (!audit_ok(c, st, "watch.counts", target, &none)) {
        dash_buf_free(&none);
        return;
    }
    dash_buf_free(&none);
    counts_ctx ctx = {&c->body, 0};
    c->http_status = 200;
    c->content_type = "application/json";
    dash_buf_printf(&c->body, "{\"weeks\":%u,\"rules\":[", WATCH_WEEKS);
    int rc = store_watch_rules(st, rule_row, &ctx);
    dash_buf_puts(&c->body, "],\"counts\":[");
    ctx.n = 0;
    if (rc == 0)
        rc = store_watch_counts(st, teams, n_teams, now, since, count_row, &ctx);
    if (rc < 0)
        store_error(c, st, rc);
    else
        dash_buf_puts(&c->body, "]}");
}
