/*
 * store_push: one device transaction into the store, exactly once, atomically. Opens the write
 * transaction, answers a repeated sequence with its earlier ACK, hands every change to the merge
 * engine (merge.c), and then either commits with the exactly-once record and an ACK, or rolls
 * back, records the refusal, and answers REJECT with the server's current rows.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merge_internal.h"

/* ---- an entry's transaction: its own, or a savepoint in an open group's -------------------- */

static void entry_undo(store *st);

static int entry_begin(store *st)
{
    if (!st->push_group)
        return store_begin(st, true);
    /* Outside a transaction a SAVEPOINT would start one of its own: the group's is gone. */
    if (st->push_group_broken || !db_in_transaction(st->conn)) {
        st->push_group_broken = true;
        return store_fail(st, STORE_EIO, "the group's store transaction ended: %s",
                          st->push_group_why);
    }
    int out = store_exec(st, "SAVEPOINT outpost_push", "begin entry");
    st->push_entry_open = out == 0;
    return out;
}

/* In a group the entry's queued rows and log entries are written before its savepoint ends, so
 * that a later entry's undo drops only its own. */
static int entry_commit(store *st)
{
    if (!st->push_group)
        return store_commit(st);
    int out = store_new_rows_flush(st);
    if (out == 0)
        out = store_changes_flush(st);
    if (out == 0)
        out = store_exec(st, "RELEASE SAVEPOINT outpost_push", "end entry");
    if (out != 0)
        entry_undo(st);
    st->push_entry_open = false;
    return out;
}

/* Undoes the entry alone. When the engine has ended the whole transaction (SQLite after some
 * I/O errors, a PostgreSQL connection lost), the group is broken: the caller fails every entry
 * of it. Keeps the store's message. */
static void entry_undo(store *st)
{
    if (!st->push_group) {
        store_rollback(st);
        return;
    }
    store_new_rows_drop(st);
    store_changes_drop(st);
    if (st->push_group_broken || !st->push_entry_open)
        return; /* nothing open: undone already */
    st->push_entry_open = false;
    char keep[sizeof st->errmsg];
    memcpy(keep, st->errmsg, sizeof keep);
    if (!db_in_transaction(st->conn) ||
        db_exec(st->conn, "ROLLBACK TO SAVEPOINT outpost_push;"
                          " RELEASE SAVEPOINT outpost_push") != STORE_OK) {
        st->push_group_broken = true;
        snprintf(st->push_group_why, sizeof st->push_group_why, "%s", keep);
    }
    memcpy(st->errmsg, keep, sizeof keep);
}

/* A read of the current rows for a REJECT: in a group, inside its transaction (which already
 * holds this entry's refusal record and every earlier entry's changes). */
static int read_begin(store *st)
{
    return st->push_group ? 0 : store_begin(st, false);
}

static void read_end(store *st)
{
    if (!st->push_group)
        store_rollback(st);
}

/* ---- replies ------------------------------------------------------------------------------- */

static int encode_reply(push_ctx *c, const proto_msg *msg, proto_buf *reply)
{
    int rc = proto_encode(msg, reply);
    if (rc == PROTO_OK)
        return 0;
    return store_fail(c->st, rc == PROTO_ENOMEM ? STORE_ENOMEM : STORE_EIO, "encode reply: %s",
                      proto_strerror(rc));
}

/* Prepares sql, whose ?1 and ?2 are the pushing device and the entry's seq, and binds them:
 * every record of an outbox entry is keyed so. Returns 0 or a STORE_E* code. */
static int prepare_entry_stmt(push_ctx *c, const char *sql, db_stmt **out)
{
    int rc = db_prepare(c->st->conn, sql, out);
    if (rc == STORE_OK)
        rc = db_bind_int64(*out, 1, c->rec.no);
    if (rc == STORE_OK)
        rc = db_bind_int64(*out, 2, (int64_t)c->push->seq);
    return rc;
}

/* Whether the entry's clock was clamped when it was applied (the repeated ACK says the same). */
static int load_clamped(push_ctx *c)
{
    db_stmt *s = NULL;
    int rc = prepare_entry_stmt(c, "SELECT clamped FROM _outpost_applied WHERE device_no = ?1"
                                   " AND seq = ?2", &s);
    if (rc == STORE_OK)
        rc = db_step(s);
    c->clamped = rc == DB_ROW && db_column_int64(s, 0) != 0;
    db_finalize(s);
    if (rc != DB_ROW && rc != DB_DONE)
        return store_fail_db(c->st, rc, "read applied entries");
    return 0;
}

/* The decisions against this device in an entry applied before, for a repeated ACK. */
static int load_conflicts(push_ctx *c)
{
    int out = load_clamped(c);
    if (out == 0)
        out = store_tables_load(c->st);
    if (out != 0)
        return out;
    db_stmt *s = NULL;
    int rc = db_prepare(c->st->conn,
                        "SELECT table_id, pk, col, kind, losing_value, winning_value"
                        " FROM _outpost_conflicts WHERE push_device = ?1"
                        " AND push_seq = ?2 AND against_push = 1 ORDER BY id",
                        &s);
    if (rc == STORE_OK)
        rc = db_bind_text(s, 1, c->dev->device_id);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 2, (int64_t)c->push->seq);
    while (rc == STORE_OK && (rc = db_step(s)) == DB_ROW) {
        rc = STORE_OK;
        const store_table *t = NULL;
        for (uint32_t i = 0; i < c->st->n_tables; i++)
            if (c->st->tables[i].id == db_column_int64(s, 0))
                t = &c->st->tables[i];
        if (t == NULL)
            continue;
        proto_conflict *cs = realloc(c->conflicts, (c->n_conflicts + 1) * sizeof *cs);
        proto_value *pk = store_arena_alloc(&c->arena, t->n_pk * sizeof *pk);
        if (cs == NULL || pk == NULL) {
            if (cs != NULL)
                c->conflicts = cs;
            out = store_fail(c->st, STORE_ENOMEM, "out of memory");
            break;
        }
        c->conflicts = cs;
        proto_conflict *pc = &cs[c->n_conflicts];
        memset(pc, 0, sizeof *pc);
        uint32_t n_pk = 0;
        size_t pk_bytes = 0;
        const void *pk_data = db_column_blob(s, 1, &pk_bytes);
        out = store_values_decode(&c->arena, pk_data, pk_bytes, pk, t->n_pk, &n_pk);
        if (out == 0 && n_pk == t->n_pk) {
            pc->table = t->name;
            pc->n_pk = t->n_pk;
            pc->pk = pk;
            pc->col = (int32_t)db_column_int64(s, 2);
            pc->kind = (proto_conflict_kind)db_column_int64(s, 3);
            pc->mine.type = PROTO_UNDEF;
            pc->winner.type = PROTO_UNDEF;
            if (pc->col >= 0) {
                out = store_value_column_any(&c->arena, s, 4, &pc->mine);
                if (out == 0)
                    out = store_value_column_any(&c->arena, s, 5, &pc->winner);
            }
            if (out == 0)
                c->n_conflicts++;
        }
        if (out != 0) {
            store_fail(c->st, out, "read conflict log");
            break;
        }
    }
    if (out == 0 && rc != DB_DONE)
        out = store_fail_db(c->st, rc, "read conflict log");
    db_finalize(s);
    return out;
}

/* An ACK lists at most this many decisions against the device, in at most
 * merge_reply_budget: an entry that lost on 20,000 rows must still get an ACK the device
 * can take (within `msg`). The rest are counted (`cmore`); their server values come with the
 * pull, and the conflict log keeps them all. */
#define STORE_ACK_MAX_CONFLICTS 1000u

/* How many of the first conflicts fit in an ACK. */
static uint32_t ack_listed(const push_ctx *c)
{
    size_t bytes = 64;
    uint32_t n = 0;
    for (; n < c->n_conflicts && n < STORE_ACK_MAX_CONFLICTS; n++) {
        const proto_conflict *pc = &c->conflicts[n];
        size_t cost = 48 + strlen(pc->table) + store_value_encoded_max(&pc->mine) +
                      store_value_encoded_max(&pc->winner);
        for (uint32_t k = 0; k < pc->n_pk; k++)
            cost += store_value_encoded_max(&pc->pk[k]);
        if (bytes + cost > merge_reply_budget(c))
            break;
        bytes += cost;
    }
    return n;
}

static int encode_ack(push_ctx *c, uint64_t server_seq, proto_buf *reply)
{
    proto_msg msg;
    memset(&msg, 0, sizeof msg);
    msg.type = PROTO_MSG_ACK;
    msg.u.ack.seq = c->push->seq;
    msg.u.ack.server_seq = server_seq;
    msg.u.ack.hlc_clamped = c->clamped;
    msg.u.ack.n_conflicts = ack_listed(c);
    msg.u.ack.n_unlisted = c->n_conflicts - msg.u.ack.n_conflicts;
    msg.u.ack.conflicts = c->conflicts;
    return encode_reply(c, &msg, reply);
}

/* The REJECT's rows as the wire has them (a key [nil] when it could not be read); rows is
 * c->n_rejects long. */
static void reject_rows_fill(push_ctx *c, proto_reject_row *rows)
{
    static const proto_value unknown_key[1] = {{.type = PROTO_NULL}};
    for (uint32_t i = 0; i < c->n_rejects; i++) {
        const push_reject *r = &c->rejects[i];
        rows[i].table = r->table;
        rows[i].n_pk = r->pk ? r->n_pk : 1;
        rows[i].pk = r->pk ? r->pk : (proto_value *)unknown_key;
        rows[i].code = r->code;
        rows[i].message = r->message;
    }
    /* The last listed row says how many more were refused and not listed. */
    if (c->n_rejects_more > 0 && c->n_rejects > 0) {
        char more[64];
        snprintf(more, sizeof more, " (and %" PRIu32 " more rows refused, not listed)",
                 c->n_rejects_more);
        size_t n = strlen(rows[c->n_rejects - 1].message), m = strlen(more);
        char *msg = store_arena_alloc(&c->arena, n + m + 1);
        if (msg != NULL) {
            memcpy(msg, rows[c->n_rejects - 1].message, n);
            memcpy(msg + n, more, m + 1);
            rows[c->n_rejects - 1].message = msg;
        }
    }
}

/* REJECT with each refused row's reason and the server's current version of those rows:
 * the row when the device may see it, a tombstone when the server has no live row, a removal
 * when the row belongs to another team. Runs after the rollback, in its own read. */
static int encode_reject(push_ctx *c, proto_buf *reply)
{
    rowset rs;
    memset(&rs, 0, sizeof rs);
    proto_reject_row *rows = calloc(c->n_rejects, sizeof *rows);
    int out = rows ? 0 : store_fail(c->st, STORE_ENOMEM, "out of memory");
    if (out == 0)
        out = read_begin(c->st);
    /* The wire needs a key: [nil] stands for "the change's key could not be read" (unknown
     * table, no primary key in the change). */
    if (rows != NULL)
        reject_rows_fill(c, rows);
    for (uint32_t i = 0; out == 0 && i < c->n_rejects; i++) {
        const push_reject *r = &c->rejects[i];
        if (r->t == NULL || r->pk == NULL)
            continue;
        bool seen = false;
        for (uint32_t k = 0; k < i && !seen; k++) {
            const push_reject *o = &c->rejects[k];
            seen = o->t == r->t && o->pk != NULL;
            for (uint32_t j = 0; seen && j < r->n_pk; j++)
                seen = store_value_equal(&o->pk[j], &r->pk[j]);
        }
        if (seen)
            continue;
        proto_value *vals = store_arena_alloc(&c->arena, r->t->n_cols * sizeof *vals);
        if (vals == NULL) {
            out = store_fail(c->st, STORE_ENOMEM, "out of memory");
            break;
        }
        bool found = false;
        out = row_read(c->st, r->t, r->pk, &c->arena, vals, &found);
        if (out != 0)
            break;
        if (!found)
            out = rowset_add_key(&rs, r->t, ROWSET_DELETED, r->pk);
        else if (row_scope_allowed(c->dev, &vals[r->t->scope_idx]))
            out = rowset_add_row(&rs, r->t, vals);
        else
            out = rowset_add_key(&rs, r->t, ROWSET_REMOVED, r->pk);
        if (out != 0)
            store_fail(c->st, out, "out of memory");
    }
    read_end(c->st);
    if (out == 0)
        out = rowset_export(&rs) == 0 ? 0 : store_fail(c->st, STORE_ENOMEM, "out of memory");
    if (out == 0) {
        proto_msg msg;
        memset(&msg, 0, sizeof msg);
        msg.type = PROTO_MSG_REJECT;
        msg.u.reject.seq = c->push->seq;
        msg.u.reject.n_rows = c->n_rejects;
        msg.u.reject.rows = rows;
        msg.u.reject.n_tables = rs.n_tables;
        msg.u.reject.tables = rs.out;
        out = encode_reply(c, &msg, reply);
        /* Too big for a device to take (and to be read back for a replay): the reasons alone,
         * without the server's rows; the device then undoes its refused changes itself. */
        if (out == 0 && reply->len > merge_reply_budget(c)) {
            proto_buf_free(reply);
            msg.u.reject.n_tables = 0;
            msg.u.reject.tables = NULL;
            out = encode_reply(c, &msg, reply);
        }
    }
    free(rows);
    rowset_free(&rs);
    return out;
}

/* ---- store_push ---------------------------------------------------------------------------- */

/* The scope value of a refused change when it is one of the worker's teams (NULL otherwise):
 * only then may the worker's values be shown to that team's supervisors. */
static const proto_value *refusal_scope(const push_ctx *c, const push_reject *r)
{
    const proto_value *carried = NULL;
    for (uint32_t k = 0; r->change && k < r->change->n_cols; k++) {
        const proto_col *pc = &r->change->cols[k];
        if (pc->idx == r->t->scope_idx)
            carried = pc->new_val.type != PROTO_UNDEF ? &pc->new_val : &pc->old_val;
    }
    if (carried && carried->type != PROTO_UNDEF && row_scope_allowed(c->dev, carried))
        return carried;
    return NULL;
}

static int refusal_note(push_ctx *c, const char *team, const push_reject *r)
{
    /* The conflict-log row just written is the newest: conflict ids only grow, and this
     * transaction is the only writer. */
    db_stmt *s = NULL;
    int rc = db_prepare(c->st->conn,
                        "INSERT INTO _outpost_conflict_refusals"
                        " SELECT max(id), ?1, ?2, ?3 FROM _outpost_conflicts",
                        &s);
    if (rc == STORE_OK)
        rc = db_bind_text(s, 1, team);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 2, r->code);
    if (rc == STORE_OK)
        rc = db_bind_text(s, 3, r->message);
    if (rc == STORE_OK)
        rc = db_step(s);
    db_finalize(s);
    return rc == DB_DONE ? 0 : store_fail_db(c->st, rc, "write conflict log");
}

/* A refused push is not applied, but it is not hidden either: each refused change goes to the
 * supervisors' conflict queue (not reversible: nothing of it is in the store), in the
 * transaction that records the refusal, so once per (device, seq). The worker's values go with
 * it only when the row is in one of the worker's teams (a constraint refusal passed the scope
 * check first); a row aimed at another team is shown to the worker's own team, without values,
 * so nothing leaks into a team the worker is not in. (The device keeps every value in its
 * quarantine either way.) */
static int log_refused_values(push_ctx *c)
{
    int out = store_meta_get(c->st, "server_seq", &c->server_seq);
    if (out != 0)
        return out;
    conflict_side none = {0, 0};
    c->refusing = true;
    for (uint32_t i = 0; out == 0 && i < c->n_rejects; i++) {
        const push_reject *r = &c->rejects[i];
        if (r->t == NULL || r->pk == NULL)
            continue;
        const proto_value *scope = refusal_scope(c, r);
        bool with_values = scope != NULL || r->code == PROTO_ERR_CONSTRAINT;
        /* "" for a constraint refusal that does not carry the scope: the queue then shows it
         * to the row's team in the store (the scope check passed, so it is the worker's). */
        char team[64] = "";
        if (scope != NULL && scope->type == PROTO_TEXT)
            snprintf(team, sizeof team, "%.*s", (int)scope->u.b.n, (const char *)scope->u.b.p);
        else if (!with_values && c->dev->n_teams > 0)
            snprintf(team, sizeof team, "%s", c->dev->teams[0]);
        proto_conflict_kind kind =
            r->code == PROTO_ERR_CONSTRAINT ? PROTO_CONFLICT_CONSTRAINT : PROTO_CONFLICT_CONFLICT;
        store_bytes blob = {0};
        if (store_values_encode(r->pk, r->t->n_pk, &blob) != 0) {
            out = store_fail(c->st, STORE_ENOMEM, "out of memory");
            break;
        }
        bool logged = false;
        for (uint32_t k = 0; with_values && r->change && out == 0 && k < r->change->n_cols; k++) {
            const proto_col *pc = &r->change->cols[k];
            const proto_value *v = r->change->op == PROTO_OP_DELETE ? &pc->old_val : &pc->new_val;
            if (v->type == PROTO_UNDEF)
                continue;
            out = merge_log_conflict(c, r->t, &blob, r->pk, (int32_t)pc->idx, kind, v,
                                     &merge_null_value, merge_pusher(c), none, false);
            if (out == 0)
                out = refusal_note(c, team, r);
            logged = true;
        }
        if (out == 0 && !logged)
            out = merge_log_conflict(c, r->t, &blob, r->pk, -1, kind, &merge_undef_value,
                                     &merge_undef_value, merge_pusher(c), none, false);
        if (out == 0 && !logged)
            out = refusal_note(c, team, r);
        store_bytes_free(&blob);
    }
    c->refusing = false;
    return out;
}

/* The device's highest recorded seq (WELCOME `ack`) takes in this entry, applied or refused.
 * Returns DB_DONE on success, else a STORE_E* code. */
static int raise_acked_seq(push_ctx *c)
{
    db_stmt *s = NULL;
    int rc = prepare_entry_stmt(c, "UPDATE _outpost_devices SET acked_seq ="
                                   " CASE WHEN acked_seq > ?2 THEN acked_seq ELSE ?2 END"
                                   " WHERE no = ?1", &s);
    if (rc == STORE_OK)
        rc = db_step(s);
    db_finalize(s);
    return rc;
}

/* Records the refusal of (device, seq) with its REJECT rows, raises acked_seq to the highest
 * seq recorded, and logs refused values, in one write transaction. */
static int record_refused(push_ctx *c)
{
    proto_reject_row *rows = calloc(c->n_rejects, sizeof *rows);
    proto_buf blob = {0};
    if (rows == NULL)
        return store_fail(c->st, STORE_ENOMEM, "out of memory");
    reject_rows_fill(c, rows);
    proto_msg msg;
    memset(&msg, 0, sizeof msg);
    msg.type = PROTO_MSG_REJECT;
    msg.u.reject.seq = c->push->seq;
    msg.u.reject.n_rows = c->n_rejects;
    msg.u.reject.rows = rows;
    int out = encode_reply(c, &msg, &blob);
    free(rows);
    if (out == 0)
        out = entry_begin(c->st);
    if (out != 0) {
        proto_buf_free(&blob);
        return out;
    }
    db_stmt *s = NULL;
    int rc = prepare_entry_stmt(c, "INSERT INTO _outpost_refused VALUES(?1, ?2, ?3, ?4, ?5)"
                                   " ON CONFLICT DO NOTHING", &s);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 3, (int64_t)c->push->hlc);
    if (rc == STORE_OK)
        rc = db_bind_blob(s, 4, blob.data, blob.len);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 5, (int64_t)c->now_ms);
    if (rc == STORE_OK)
        rc = db_step(s);
    bool first = rc == DB_DONE && db_changes(s) > 0;
    db_finalize(s);
    if (rc == DB_DONE)
        rc = raise_acked_seq(c);
    proto_buf_free(&blob);
    out = rc == DB_DONE ? 0 : store_fail_db(c->st, rc, "record refused entry");
    if (out == 0 && first)
        out = log_refused_values(c);
    if (out == 0)
        out = entry_commit(c->st);
    else
        entry_undo(c->st);
    return out;
}

/* What the record says about (device, seq): 1 applied, 2 refused (*out_reject holds its
 * REJECT rows, decoded; the caller frees it), 0 neither, 3 recorded for another transaction
 * (another clock: the device's counter went back and reused the seq). Inside the open
 * transaction. */
static int seq_recorded(push_ctx *c, int *out_kind, proto_msg **out_reject)
{
    *out_kind = 0;
    *out_reject = NULL;
    db_stmt *s = NULL;
    int rc = prepare_entry_stmt(c, "SELECT 1, NULL, hlc FROM _outpost_applied WHERE device_no = ?1"
                                   " AND seq = ?2 UNION ALL SELECT 2, reject, hlc"
                                   " FROM _outpost_refused WHERE device_no = ?1 AND seq = ?2", &s);
    if (rc == STORE_OK)
        rc = db_step(s);
    int out = 0;
    if (rc == DB_ROW) {
        *out_kind = (int)db_column_int64(s, 0);
        if ((uint64_t)db_column_int64(s, 2) != c->push->hlc)
            *out_kind = 3;
        if (*out_kind == 2) {
            char err[160];
            size_t n_bytes = 0;
            const void *bytes = db_column_blob(s, 1, &n_bytes);
            int drc = proto_decode(bytes, n_bytes, NULL, out_reject, err, sizeof err);
            if (drc != PROTO_OK || (*out_reject)->type != PROTO_MSG_REJECT)
                out = store_fail(c->st, drc == PROTO_ENOMEM ? STORE_ENOMEM : STORE_EIO,
                                 "refused entry %" PRIu64 " cannot be read back: %s",
                                 c->push->seq, drc == PROTO_OK ? "not a REJECT" : err);
        }
    } else if (rc != DB_DONE) {
        out = store_fail_db(c->st, rc, "read the exactly-once record");
    }
    db_finalize(s);
    return out;
}

/* The same REJECT again for a refused entry: its recorded rows, with the rows' current server
 * version (a replay must not bring back a version older than what the device has pulled). */
static int replay_reject(push_ctx *c, const proto_msg *recorded, proto_buf *reply)
{
    const proto_reject *rej = &recorded->u.reject;
    for (uint32_t i = 0; i < rej->n_rows; i++) {
        const proto_reject_row *row = &rej->rows[i];
        store_table *t = row->table ? store_table_find(c->st, row->table) : NULL;
        bool key = t != NULL && row->n_pk == t->n_pk && row->pk != NULL &&
                   !(row->n_pk == 1 && row->pk[0].type == PROTO_NULL);
        int out = merge_reject(c, t, row->table ? row->table : "", key ? row->pk : NULL,
                               row->code, row->message ? row->message : "", NULL);
        if (out != 0)
            return out;
    }
    return encode_reject(c, reply);
}

static int record_applied(push_ctx *c)
{
    db_stmt *s = NULL;
    int rc = prepare_entry_stmt(c, "INSERT INTO _outpost_applied"
                                   " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", &s);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 3, c->server_seq);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 4, (int64_t)c->push->hlc);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 5, (int64_t)c->hlc);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 6, c->clamped ? 1 : 0);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 7, c->n_rows);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 8, (int64_t)c->now_ms);
    if (rc == STORE_OK)
        rc = db_step(s);
    db_finalize(s);
    if (rc == DB_DONE)
        rc = raise_acked_seq(c);
    if (rc != DB_DONE)
        return store_fail_db(c->st, rc, "record applied entry");
    return store_meta_set(c->st, "server_seq", c->server_seq);
}

static int merge_all(push_ctx *c)
{
    for (uint32_t i = 0; i < c->push->n_tables; i++) {
        const proto_table_changes *tc = &c->push->tables[i];
        store_table *t = tc->table ? store_table_find(c->st, tc->table) : NULL;
        for (uint32_t k = 0; k < tc->n_changes; k++) {
            int out = t == NULL
                          ? merge_reject(c, NULL, tc->table ? tc->table : "", NULL,
                                         PROTO_ERR_UNKNOWN_TABLE,
                                         "the table is not in the server's schema", &tc->changes[k])
                          : merge_change(c, t, tc->n_columns, &tc->changes[k]);
            if (out != 0)
                return out;
        }
    }
    return merge_apply_flush(c);
}

int store_push(store *st, store_device *dev, const proto_push *push, uint64_t now_ms,
               proto_buf *reply, store_push_info *out_info)
{
    memset(out_info, 0, sizeof *out_info);
    proto_msg *recorded = NULL;
    push_ctx c;
    memset(&c, 0, sizeof c);
    c.st = st;
    c.dev = dev;
    c.push = push;
    c.now_ms = now_ms;
    c.hlc = push->hlc;
    /* A device clock far ahead would win every conflict until real time caught up. */
    if (PROTO_HLC_MS(push->hlc) > now_ms + STORE_HLC_TOLERANCE_MS) {
        c.hlc = PROTO_HLC_MAKE(now_ms, PROTO_HLC_COUNTER(push->hlc));
        c.clamped = true;
    }
    size_t reply_len = reply->len;
    int out = entry_begin(st);
    if (out != 0)
        goto done;
    out = store_device_lookup(st, dev->device_id, &c.rec);
    if (out == 0 && c.rec.revoked)
        out = store_fail(st, STORE_EREVOKED, "device is revoked");
    if (out == 0)
        out = store_tables_load(st);
    if (out != 0)
        goto fail;
    if (push->seq <= c.rec.acked_seq) {
        /* Answered from the record, changing nothing: applied -> the same ACK, refused -> the
         * same REJECT, neither -> the device's counter went back. */
        int kind = 0;
        out = seq_recorded(&c, &kind, &recorded);
        /* Alone the transaction ends here; in a group the reads below stay in its own. */
        if (!st->push_group)
            store_rollback(st);
        if (out == 0 && kind == 1)
            out = load_conflicts(&c);
        if (out == 0 && kind == 1)
            out = encode_ack(&c, 0, reply);
        if (out == 0 && kind == 2)
            out = replay_reject(&c, recorded, reply);
        if (out == 0 && kind == 0)
            out = store_fail(st, STORE_ESEQ,
                             "PUSH seq %" PRIu64 " was never applied or refused, and this server"
                             " has recorded seq %" PRIu64 " from this device: its counter went"
                             " back (restored from a backup?); nothing was applied",
                             push->seq, c.rec.acked_seq);
        if (out == 0 && kind == 3)
            out = store_fail(st, STORE_ESEQ,
                             "PUSH seq %" PRIu64 " was recorded for another transaction (another"
                             " clock) from this device: its counter went back (restored from a"
                             " backup?); nothing was applied",
                             push->seq);
        if (out == 0) {
            dev->acked_seq = c.rec.acked_seq;
            out_info->duplicate = true;
            out_info->rejected = kind == 2;
            out_info->hlc_clamped = c.clamped;
            out_info->n_conflicts = c.n_conflicts;
        }
        if (st->push_group)
            entry_undo(st); /* read only: ends the savepoint */
        goto done;
    }
    out = store_meta_get(st, "server_seq", &c.server_seq);
    c.seq_base = c.server_seq;
    if (out == 0)
        out = merge_all(&c);
    if (out != 0)
        goto fail;
    if (c.n_rejects > 0) {
        entry_undo(st);
        out = record_refused(&c);
        if (out == 0)
            out = encode_reject(&c, reply);
        if (out == 0) {
            if (push->seq > dev->acked_seq)
                dev->acked_seq = push->seq;
            out_info->rejected = true;
            out_info->hlc_clamped = c.clamped;
        }
        goto done;
    }
    out = record_applied(&c);
    if (out == 0)
        out = encode_ack(&c, (uint64_t)c.server_seq, reply);
    if (out == 0)
        out = entry_commit(st);
    if (out != 0) {
        reply->len = reply_len;
        goto fail;
    }
    dev->acked_seq = push->seq;
    if (c.server_seq > c.seq_base && !c.echo_broken)
        store_echo_note(st, c.rec.no, (uint64_t)c.seq_base + 1, (uint64_t)c.server_seq,
                        c.echo_max);
    out_info->hlc_clamped = c.clamped;
    out_info->server_seq = (uint64_t)c.server_seq;
    out_info->n_rows = c.n_rows;
    out_info->n_conflicts = c.n_conflicts;
    out_info->n_teams_touched = c.n_teams;
    out_info->teams_touched = c.teams;
    c.teams = NULL;
    goto done;
fail:
    entry_undo(st);
done:
    proto_msg_free(recorded);
    free(c.rejects);
    free(c.conflicts);
    free(c.teams);
    store_bytes_free(&c.key_buf);
    free(c.scratch);
    store_arena_free(&c.arena);
    return out;
}

/* ---- group commit -------------------------------------------------------------------------- */

void store_echo_note(store *st, int64_t device_no, uint64_t first, uint64_t last,
                     uint64_t echo_max)
{
    store_echo_run *run = &st->echo_run;
    if (st->push_group) {
        if (!st->echo_next_set)
            st->echo_next = st->echo_run;
        st->echo_next_set = true;
        run = &st->echo_next;
    }
    if (run->device_no == device_no && run->to + 1 == first) {
        run->to = last;
        if (echo_max > run->echo_max)
            run->echo_max = echo_max;
    } else {
        *run = (store_echo_run){device_no, first, last, echo_max};
    }
}

int store_push_group_begin(store *st)
{
    int out = store_begin(st, true);
    st->push_group = out == 0;
    st->push_group_broken = st->push_entry_open = st->echo_next_set = false;
    st->push_group_why[0] = '\0';
    return out;
}

bool store_push_group_ok(const store *st)
{
    return st->push_group && !st->push_group_broken;
}

int store_push_group_commit(store *st)
{
    bool broken = st->push_group_broken;
    bool echo_next_set = st->echo_next_set;
    st->push_group = st->push_group_broken = st->push_entry_open = st->echo_next_set = false;
    if (broken) {
        store_rollback(st);
        return store_fail(st, STORE_EIO, "the group's store transaction ended: %s",
                          st->push_group_why);
    }
    int out = store_commit(st);
    if (out == 0 && echo_next_set)
        st->echo_run = st->echo_next;
    return out;
}

void store_push_group_rollback(store *st)
{
    st->push_group = st->push_group_broken = st->push_entry_open = st->echo_next_set = false;
    store_rollback(st);
}
