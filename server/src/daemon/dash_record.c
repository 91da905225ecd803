#include "dash_record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LINKED_MAX = 20, HISTORY_MAX = 500 };

static void put_record(dash_buf *b, const char *table, const store_dash_record *rec)
{
    dash_buf_puts(b, "{\"table\":");
    dash_buf_json_str(b, table);
    dash_buf_puts(b, ",\"id\":");
    dash_buf_json_str(b, rec->key);
    dash_buf_puts(b, ",\"columns\":[");
    for (uint32_t i = 0; i < rec->n_cols; i++) {
        if (i)
            dash_buf_puts(b, ",");
        dash_buf_json_str(b, rec->cols[i]);
    }
    dash_buf_puts(b, "],\"values\":[");
    for (uint32_t i = 0; i < rec->n_cols; i++) {
        if (i)
            dash_buf_puts(b, ",");
        dash_buf_json_str(b, rec->values[i]);
    }
    dash_buf_puts(b, "]}");
}

/* Appends "TABLE/KEY" to a comma-separated list of what was shown. */
static void add_shown(dash_buf *ids, const char *table, const char *key)
{
    if (!ids)
        return;
    if (ids->len > 0)
        dash_buf_puts(ids, ",");
    dash_buf_printf(ids, "%s/%s", table, key);
}

typedef struct one_ctx {
    dash_buf *out;
    dash_buf *ids;
    const char *table;
    uint32_t n;
    /* The main record keeps its values for its outgoing links. */
    uint32_t n_cols;
    char **cols;
    char **values;
} one_ctx;

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int one_row(const store_dash_record *rec, void *user_data)
{
    one_ctx *ctx = user_data;

    if (ctx->n > 0)
        dash_buf_puts(ctx->out, ",");
    put_record(ctx->out, ctx->table, rec);
    add_shown(ctx->ids, ctx->table, rec->key);
    ctx->n++;
    if (ctx->cols == NULL && ctx->n == 1 && rec->n_cols > 0) {
        ctx->cols = calloc(rec->n_cols, sizeof *ctx->cols);
        ctx->values = calloc(rec->n_cols, sizeof *ctx->values);
        if (!ctx->cols || !ctx->values)
            return STORE_ENOMEM;
        ctx->n_cols = rec->n_cols;
        for (uint32_t i = 0; i < rec->n_cols; i++) {
            ctx->cols[i] = dup_or_null(rec->cols[i]);
            ctx->values[i] = dup_or_null(rec->values[i]);
        }
    }
    return 0;
}

static void one_ctx_free(one_ctx *ctx)
{
    for (uint32_t i = 0; i < ctx->n_cols; i++) {
        free(ctx->cols[i]);
        free(ctx->values[i]);
    }
    free(ctx->cols);
    free(ctx->values);
}

void dash_record_object(dash_call *c, store *st, const char *table, const char *key,
                        dash_buf *out, dash_buf *ids)
{
    one_ctx ctx = {out, ids, table, 0, 0, NULL, NULL};
    size_t mark = out->len;
    int rc = store_dash_record_get(st, (const char(*)[64])c->teams, c->n_teams, table, key,
                                   one_row, &ctx);

    one_ctx_free(&ctx);
    if (rc != STORE_OK || ctx.n == 0) {
        out->len = mark; /* nothing of a record that could not be read whole */
        dash_buf_puts(out, "null");
    }
}

static const char *op_name(int op)
{
    return op == 1 ? "insert" : op == 2 ? "update" : op == 3 ? "delete" : "change";
}

static int history_row(const store_dash_change *ch, void *user_data)
{
    dash_buf *b = user_data;

    if (b->len > 0 && b->data[b->len - 1] != '[')
        dash_buf_puts(b, ",");
    dash_buf_printf(b, "{\"seq\":%lld,\"time_ms\":%llu,\"op\":\"%s\",\"altered\":%s,\"device\":",
                    (long long)ch->seq, (unsigned long long)ch->time_ms, op_name(ch->op),
                    ch->altered ? "true" : "false");
    dash_buf_json_str(b, ch->device_id);
    dash_buf_puts(b, ",\"device_name\":");
    dash_buf_json_str(b, ch->device_name);
    dash_buf_puts(b, ",\"worker\":");
    dash_buf_json_str(b, ch->worker_id);
    dash_buf_puts(b, ",\"by\":");
    dash_buf_json_str(b, ch->decided_by);
    dash_buf_puts(b, "}");
    return 0;
}

static int conflict_of_row(const store_dash_conflict *k, void *user_data)
{
    dash_buf *b = user_data;

    if (b->len > 0 && b->data[b->len - 1] != '[')
        dash_buf_puts(b, ",");
    dash_conflict_json(b, k);
    return 0;
}

typedef struct links_ctx {
    dash_call *call;
    store *st;
    const one_ctx *self;
    const char *key;
    dash_buf ids;
    bool first;
} links_ctx;

static int link_row(const char *table, const char *column, bool outgoing, void *user_data)
{
    links_ctx *lk = user_data;
    dash_call *c = lk->call;
    dash_buf *b = &c->body;

    if (outgoing) {
        const char *value = NULL;
        for (uint32_t i = 0; i < lk->self->n_cols; i++)
            if (strcmp(lk->self->cols[i], column) == 0)
                value = lk->self->values[i];
        if (!value || !*value)
            return 0;
        dash_buf_puts(b, lk->first ? "" : ",");
        lk->first = false;
        dash_buf_puts(b, "{\"column\":");
        dash_buf_json_str(b, column);
        dash_buf_puts(b, ",\"outgoing\":true,\"records\":[");
        size_t mark = b->len;
        dash_record_object(c, lk->st, table, value, b, &lk->ids);
        if (b->len == mark + 4 && memcmp(b->data + mark, "null", 4) == 0)
            b->len = mark; /* not in the caller's teams, or gone: an empty list */
        dash_buf_puts(b, "]}");
        return 0;
    }
    /* Records of another table that name this one. */
    store_dash_query q;
    one_ctx ctx = {b, &lk->ids, table, 0, 0, NULL, NULL};
    memset(&q, 0, sizeof q);
    q.table = table;
    q.match_col = column;
    q.match_value = lk->key;
    q.limit = LINKED_MAX;
    dash_buf_puts(b, lk->first ? "" : ",");
    lk->first = false;
    dash_buf_puts(b, "{\"column\":");
    dash_buf_json_str(b, column);
    dash_buf_puts(b, ",\"from\":");
    dash_buf_json_str(b, table);
    dash_buf_puts(b, ",\"outgoing\":false,\"records\":[");
    int rc = store_dash_records(lk->st, (const char(*)[64])c->teams, c->n_teams, &q, one_row,
                                &ctx);
    one_ctx_free(&ctx);
    dash_buf_puts(b, "]}");
    return rc;
}

void dash_record_view(dash_call *c, store *st)
{
    const char *table = c->f_table[0] ? c->f_table : c->table;
    one_ctx self = {&c->body, NULL, table, 0, 0, NULL, NULL};
    links_ctx lk = {c, st, &self, c->f_id, {0}, true};
    char target[256];
    int rc;

    if (!c->f_id[0]) {
        dash_reply_error(c, 400, "which record? (id=)");
        return;
    }
    c->http_status = 200;
    c->content_type = "application/json";
    dash_buf_puts(&c->body, "{\"record\":");
    rc = store_dash_record_get(st, (const char(*)[64])c->teams, c->n_teams, table, c->f_id,
                               one_row, &self);
    if (rc == STORE_OK && self.n == 0) {
        one_ctx_free(&self);
        dash_reply_error(c, 404, "no such record in your teams");
        return;
    }
    if (rc == STORE_OK) {
        dash_buf_puts(&c->body, ",\"history\":[");
        rc = store_dash_history(st, (const char(*)[64])c->teams, c->n_teams, table, c->f_id,
                                HISTORY_MAX, history_row, &c->body);
    }
    if (rc == STORE_OK) {
        dash_buf_puts(&c->body, "],\"conflicts\":[");
        rc = store_dash_conflicts_of(st, (const char(*)[64])c->teams, c->n_teams, table,
                                     c->f_id, conflict_of_row, &c->body);
    }
    if (rc == STORE_OK) {
        dash_buf_puts(&c->body, "],\"links\":[");
        rc = store_dash_links(st, table, link_row, &lk);
        dash_buf_puts(&c->body, "]}");
    }
    one_ctx_free(&self);
    if (rc != STORE_OK) {
        dash_buf_free(&lk.ids);
        dash_reply_store_error(c, st, rc);
        return;
    }
    /* One audit row for what was shown: the record, and in ids the linked records. */
    snprintf(target, sizeof target, "%s/%s", table, c->f_id);
    dash_buf_put(&lk.ids, "", 1);
    if (lk.ids.failed || store_audit_append_ids(st, c->now_ms, c->user, "record.view", target,
                                                c->address, lk.ids.data) != STORE_OK)
        dash_reply_error(c, 500, "the audit log cannot be written: nothing shown");
    dash_buf_free(&lk.ids);
}
