/*
 * The merge engine's records: refusals, the conflict log and the change log (with the row's
 * merge state and echo suppression).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merge_internal.h"
#include "schema_parse.h"

const proto_value merge_undef_value = {.type = PROTO_UNDEF};
const proto_value merge_null_value = {.type = PROTO_NULL};

conflict_side merge_pusher(const push_ctx *c)
{
    conflict_side s = {c->rec.no, c->hlc};
    return s;
}

size_t merge_reply_budget(const push_ctx *c)
{
    size_t budget = 512u * 1024u, limit = c->st->max_page_bytes;
    return limit > 0 && limit / 2 < budget ? limit / 2 : budget;
}

int merge_reject(push_ctx *c, store_table *t, const char *table, const proto_value *pk,
                 uint32_t code, const char *message, const proto_change *change)
{
    /* Queued new rows come first: one of them may be refused, and the REJECT lists rows in
     * the push's order. */
    if (c->n_pending > 0) {
        int out = merge_apply_flush(c);
        if (out != 0)
            return out;
    }
    /* What the row adds to the REJECT: its table, reason, key and framing. A key too large to
     * echo (a hostile 900 KiB key) is not listed; the row still counts. */
    size_t cost = 32 + strlen(table) + strlen(message);
    for (uint32_t k = 0; pk && t && k < t->n_pk; k++)
        cost += store_value_encoded_max(&pk[k]);
    if (c->n_rejects >= MERGE_MAX_REJECT_ROWS || c->reject_bytes + cost > merge_reply_budget(c)) {
        /* The first refusal is always listed (the entry must be refused), without its key when
         * the key alone is too large. */
        if (c->n_rejects > 0) {
            c->n_rejects_more++;
            return 0;
        }
        pk = NULL;
        cost = 32 + strlen(table) + strlen(message);
    }
    c->reject_bytes += cost;
    push_reject *r = realloc(c->rejects, (c->n_rejects + 1) * sizeof *r);
    if (r == NULL)
        return store_fail(c->st, STORE_ENOMEM, "out of memory");
    c->rejects = r;
    r = &c->rejects[c->n_rejects++];
    r->t = t;
    r->table = table;
    r->n_pk = pk && t ? t->n_pk : 0;
    r->pk = NULL;
    if (r->n_pk > 0) {
        r->pk = store_arena_dup(&c->arena, pk, r->n_pk * sizeof *pk);
        if (r->pk == NULL)
            return store_fail(c->st, STORE_ENOMEM, "out of memory");
    }
    r->code = code;
    r->message = store_arena_strdup(&c->arena, message);
    r->change = change;
    return r->message ? 0 : store_fail(c->st, STORE_ENOMEM, "out of memory");
}

static int touch_team(push_ctx *c, const proto_value *scope)
{
    if (scope->type != PROTO_TEXT || scope->u.b.n == 0 || scope->u.b.n > 63)
        return 0;
    for (uint32_t i = 0; i < c->n_teams; i++)
        if (store_value_is_text(scope, c->teams[i]))
            return 0;
    char(*teams)[64] = realloc(c->teams, (c->n_teams + 1) * sizeof *teams);
    if (teams == NULL)
        return store_fail(c->st, STORE_ENOMEM, "out of memory");
    c->teams = teams;
    memcpy(teams[c->n_teams], scope->u.b.p, scope->u.b.n);
    teams[c->n_teams][scope->u.b.n] = 0;
    c->n_teams++;
    return 0;
}

/* Writes one decision to the conflict log. against_pusher: the pushing device lost, so the
 * decision also goes into its ACK. */
int merge_log_conflict(push_ctx *c, const store_table *t, const store_bytes *pk_blob,
                       const proto_value *pk, int32_t col, proto_conflict_kind kind,
                       const proto_value *losing, const proto_value *winning, conflict_side loser,
                       conflict_side winner, bool against_pusher)
{
    char loser_id[40], loser_worker[64], winner_id[40], winner_worker[64];
    int out = store_device_names(c->st, loser.device, loser_id, loser_worker);
    if (out == 0)
        out = store_device_names(c->st, winner.device, winner_id, winner_worker);
    if (out != 0)
        return out;
    db_stmt *s = NULL;
    int rc = db_prepare(c->st->conn,
                        "INSERT INTO _outpost_conflicts(table_id, pk, col, kind,"
                        " losing_value, winning_value, loser_device, loser_worker,"
                        " loser_hlc, winner_device, winner_hlc, time_ms, decided_by,"
                        " reversible, push_device, push_seq, server_seq, against_push)"
                        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
                        " ?18, ?14, ?15, ?16, ?17)",
                        &s);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 1, t->id);
    if (rc == STORE_OK)
        rc = db_bind_blob(s, 2, pk_blob->data, pk_blob->len);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 3, col);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 4, (int64_t)kind);
    if (rc == STORE_OK)
        rc = store_value_bind_any(s, 5, losing);
    if (rc == STORE_OK)
        rc = store_value_bind_any(s, 6, winning);
    if (rc == STORE_OK)
        rc = db_bind_text(s, 7, loser_id);
    if (rc == STORE_OK)
        rc = db_bind_text(s, 8, loser_worker);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 9, (int64_t)loser.hlc);
    if (rc == STORE_OK)
        rc = db_bind_text(s, 10, winner_id);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 11, (int64_t)winner.hlc);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 12, (int64_t)c->now_ms);
    if (rc == STORE_OK)
        rc = db_bind_text(s, 13, schema_policy_name(t->policy));
    if (rc == STORE_OK)
        rc = db_bind_text(s, 14, c->dev->device_id);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 15, (int64_t)c->push->seq);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 16, c->server_seq + 1);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 17, against_pusher ? 1 : 0);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 18, c->refusing ? 0 : 1);
    if (rc == STORE_OK)
        rc = db_step(s);
    db_finalize(s);
    if (rc != DB_DONE)
        return store_fail_db(c->st, rc, "write conflict log");
    if (!against_pusher)
        return 0;
    proto_conflict *cs = realloc(c->conflicts, (c->n_conflicts + 1) * sizeof *cs);
    if (cs == NULL)
        return store_fail(c->st, STORE_ENOMEM, "out of memory");
    c->conflicts = cs;
    proto_conflict *pc = &cs[c->n_conflicts++];
    memset(pc, 0, sizeof *pc);
    pc->table = t->name;
    pc->n_pk = t->n_pk;
    pc->pk = (proto_value *)pk;
    pc->col = col;
    pc->kind = kind;
    /* Row-level decisions carry no values; the wire says so with UNDEF. */
    pc->mine.type = PROTO_UNDEF;
    pc->winner.type = PROTO_UNDEF;
    if (col >= 0) {
        pc->mine = *losing;
        pc->winner = *winning;
    }
    return 0;
}

/*
 * Change-log entries are queued in the store and written STORE_CHANGES_BATCH at a time by one
 * multi-row INSERT: a bulk push pays the statement's fixed cost once per batch rather than once
 * per row. Nothing reads the log inside a push; store_commit writes what is left before it
 * commits, store_rollback drops it.
 */
enum { STORE_CHANGES_BATCH = 32, CHANGE_PARAMS = 11 };

struct store_change_entry {
    int64_t seq, table_id, device, prev_seq; /* prev_seq 0: none */
    uint64_t hlc, time_ms;
    int op;
    bool altered;
    size_t pk_at, pk_len;
    proto_value scope[2];  /* old, new; text and blob bytes at scope_at in change_bytes */
    size_t scope_at[2];
};

static int change_bind(store *st, db_stmt *s, int base, struct store_change_entry *e)
{
    int rc = db_bind_int64(s, base + 1, e->seq);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, base + 2, e->table_id);
    if (rc == STORE_OK)
        rc = db_bind_blob_static(s, base + 3, st->change_bytes + e->pk_at, e->pk_len);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, base + 4, e->op);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, base + 5, e->device);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, base + 6, e->altered ? 1 : 0);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, base + 7, (int64_t)e->hlc);
    for (int k = 0; k < 2 && rc == STORE_OK; k++) {
        proto_value v = e->scope[k];
        if (v.type == PROTO_TEXT || v.type == PROTO_BLOB)
            v.u.b.p = st->change_bytes + e->scope_at[k];
        rc = store_value_bind_any(s, base + 8 + k, &v);
    }
    if (rc == STORE_OK)
        rc = db_bind_int64(s, base + 10, (int64_t)e->time_ms);
    if (rc == STORE_OK)
        rc = e->prev_seq != 0 ? db_bind_int64(s, base + 11, e->prev_seq)
                              : db_bind_null(s, base + 11);
    return rc;
}

static int change_prepare(store *st, db_stmt **out, uint32_t n_entries)
{
    if (*out != NULL)
        return 0;
    char sql[STORE_CHANGES_BATCH * 64 + 256];
    size_t at = (size_t)snprintf(sql, sizeof sql,
                                 "INSERT %sINTO _outpost_changes(seq, table_id, pk, op, device,"
                                 " altered, hlc, scope_old, scope_new, time_ms, prev_seq) VALUES",
                                 store_insert_or_fail(st));
    for (uint32_t i = 0; i < n_entries && at < sizeof sql; i++) {
        int p = (int)i * CHANGE_PARAMS;
        at += (size_t)snprintf(sql + at, sizeof sql - at,
                               "%s(?%d, ?%d, ?%d, ?%d, ?%d, ?%d, ?%d, ?%d, ?%d, ?%d, ?%d)",
                               i ? ", " : "", p + 1, p + 2, p + 3, p + 4, p + 5, p + 6, p + 7,
                               p + 8, p + 9, p + 10, p + 11);
    }
    if (at >= sizeof sql)
        return store_fail(st, STORE_EINVAL, "change log statement too long");
    int rc = db_prepare(st->conn, sql, out);
    return rc == STORE_OK ? 0 : store_fail_db(st, rc, "prepare change log");
}

void store_changes_drop(store *st)
{
    st->n_changes = 0;
    st->change_bytes_len = 0;
}

int store_changes_flush(store *st)
{
    uint32_t done = 0;
    int out = 0;
    while (out == 0 && done < st->n_changes) {
        bool batch = st->n_changes - done >= STORE_CHANGES_BATCH;
        uint32_t n = batch ? STORE_CHANGES_BATCH : 1;
        db_stmt **s = batch ? &st->change_put_batch : &st->change_put;
        out = change_prepare(st, s, n);
        if (out != 0)
            break;
        int rc = STORE_OK;
        for (uint32_t i = 0; i < n && rc == STORE_OK; i++)
            rc = change_bind(st, *s, (int)i * CHANGE_PARAMS, &st->changes[done + i]);
        if (rc == STORE_OK)
            rc = db_step(*s);
        db_reset(*s); /* every parameter is bound again before the next step */
        if (rc != DB_DONE)
            out = store_fail_db(st, rc, "write change log");
        done += n;
    }
    store_changes_drop(st);
    return out;
}

/* Appends one change-log entry (and a scope exit when the row left a scope value). */
int merge_log_change_entry(push_ctx *c, const store_table *t, const store_bytes *pk_blob,
                           proto_op op, bool altered, const proto_value *scope_old,
                           const proto_value *scope_new, uint64_t prev_seq)
{
    int64_t seq = ++c->server_seq;
    store *st = c->st;
    if (st->changes == NULL) {
        st->changes = malloc(STORE_CHANGES_BATCH * sizeof *st->changes);
        if (st->changes == NULL)
            return store_fail(st, STORE_ENOMEM, "out of memory");
    }
    struct store_change_entry *e = &st->changes[st->n_changes];
    memset(e, 0, sizeof *e);
    e->seq = seq;
    e->table_id = t->id;
    e->device = c->rec.no;
    e->prev_seq = (int64_t)prev_seq;
    e->hlc = c->hlc;
    e->time_ms = c->now_ms;
    e->op = (int)op;
    e->altered = altered;
    e->pk_len = pk_blob->len;
    e->scope[0] = *scope_old;
    e->scope[1] = *scope_new;
    int out = store_buf_append(&st->change_bytes, &st->change_bytes_len, &st->change_bytes_cap,
                               pk_blob->data, pk_blob->len, &e->pk_at);
    for (int k = 0; k < 2 && out == 0; k++)
        if (e->scope[k].type == PROTO_TEXT || e->scope[k].type == PROTO_BLOB)
            out = store_buf_append(&st->change_bytes, &st->change_bytes_len,
                                   &st->change_bytes_cap, e->scope[k].u.b.p, e->scope[k].u.b.n,
                                   &e->scope_at[k]);
    if (out != 0)
        return store_fail(st, STORE_ENOMEM, "out of memory");
    if (++st->n_changes == STORE_CHANGES_BATCH)
        out = store_changes_flush(st);
    if (out != 0)
        return out;

    /* A row that left a scope value: devices of that team must be told to drop it. */
    if (scope_old->type != PROTO_UNDEF && scope_new->type != PROTO_UNDEF &&
        !store_value_equal(scope_old, scope_new)) {
        db_stmt *x = NULL;
        int rc = db_prepare(c->st->conn,
                            "INSERT INTO _outpost_scope_exits VALUES(?1, ?2, ?3, ?4)", &x);
        if (rc == STORE_OK)
            rc = db_bind_int64(x, 1, t->id);
        if (rc == STORE_OK)
            rc = db_bind_blob_static(x, 2, pk_blob->data, pk_blob->len);
        if (rc == STORE_OK)
            rc = db_bind_int64(x, 3, seq);
        if (rc == STORE_OK)
            rc = store_value_bind_any(x, 4, scope_old);
        if (rc == STORE_OK)
            rc = db_step(x);
        db_finalize(x);
        if (rc != DB_DONE)
            return store_fail_db(c->st, rc, "write scope exit");
    }
    out = touch_team(c, scope_old);
    if (out == 0)
        out = touch_team(c, scope_new);
    if (out == 0)
        c->n_rows++;
    return out;
}

/* Appends one change-log entry and updates the row's merge state to it. */
int merge_log_change(push_ctx *c, const store_table *t, const store_bytes *pk_blob, row_meta *meta,
                     proto_op op, bool altered, const proto_value *scope_old,
                     const proto_value *scope_new)
{
    int out = merge_log_change_entry(c, t, pk_blob, op, altered, scope_old, scope_new,
                                     meta->exists ? meta->seq : 0);
    if (out != 0)
        return out;
    int64_t seq = c->server_seq;

    /* Echo suppression: while every change since echo_since is this device's own unaltered
     * write, the device already has the row as it is and pull skips it for that device.
     * When the row's previous change came from elsewhere, the device may not hold it even if
     * its cursor is past it (a pull leaves rows with pending local changes alone), so this
     * write is echoed once: echo_since is this entry, which the device has not pulled yet.
     * A device that pulls again from 0 after a restore gets a row it creates now back too: it
     * sends again what the restored store lost, and may hold that row with another device's
     * later edit, pulled before the restore, that the store lacks. */
    if (altered || (!meta->exists && c->dev->repulls)) {
        meta->echo_device = 0;
        meta->echo_since = (uint64_t)seq;
    } else if (!(meta->exists && meta->echo_device == c->rec.no)) {
        meta->echo_since = meta->exists ? (uint64_t)seq : 0;
        meta->echo_device = c->rec.no;
    }
    meta->seq = (uint64_t)seq;
    if (meta->echo_device != c->rec.no || meta->echo_since > (uint64_t)c->seq_base)
        c->echo_broken = true;
    else if (meta->echo_since > c->echo_max)
        c->echo_max = meta->echo_since;
    return row_meta_put(c->st, t->id, pk_blob, meta);
}
