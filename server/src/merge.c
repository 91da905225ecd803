/*
 * The merge engine's rules, one row change at a time: shape and scope checks, then the merge
 * against the row's central state. push.c runs it over a whole device transaction inside one
 * SQLite transaction, together with the record that makes it exactly-once.
 *
 * Rules (docs/operations.md, "Merge rules", says the same for operators):
 *  - Column-level: an UPDATE column conflicts only when the central value differs from the
 *    change's old value (DATA). The winner is the later HLC, ties broken by the larger device id;
 *    a table's policy may instead always keep the central value (server-wins) or always take the
 *    device's (device-wins). A column whose central value already equals the new value is not a
 *    conflict.
 *  - INSERT of a key that is live centrally (CONFLICT): merged column by column against each
 *    column's last writer, as above.
 *  - INSERT or UPDATE of a row deleted centrally (NOTFOUND): the later of the write and the
 *    delete wins. A winning UPDATE restores the row from its values at deletion with the update
 *    on top; a losing one leaves the row deleted. UPDATE of a row the store never had loses.
 *  - DELETE of a row whose columns changed since the device saw them (CONFLICT): the delete wins
 *    only if it is later than every such change; otherwise the row stays.
 *  - Every losing value goes to the conflict log with the winning one, devices, worker, time and
 *    the rule that decided; decisions against the pushing device also travel in its ACK.
 *  - When the merge alters a device's change, the row gets a new change-log entry so that the
 *    device pulls the merged version back; an unaltered change is never echoed.
 *  - A pushed HLC more than STORE_HLC_TOLERANCE_MS ahead of the server clock is clamped to it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merge_internal.h"

/* Does the pushed write beat the version (hlc, device) it collides with? */
static bool incoming_wins(push_ctx *c, const store_table *t, uint64_t other_hlc,
                          int64_t other_device)
{
    if (t->policy == PROTO_POLICY_SERVER_WINS)
        return false;
    if (t->policy == PROTO_POLICY_DEVICE_WINS)
        return true;
    if (c->hlc != other_hlc)
        return c->hlc > other_hlc;
    if (other_device == c->rec.no)
        return true;
    char other_id[40], other_worker[64];
    if (store_device_names(c->st, other_device, other_id, other_worker) != 0)
        return false;
    return strcmp(c->dev->device_id, other_id) > 0;
}

/* ---- validation ---------------------------------------------------------------------------- */

static const proto_col *find_col(const proto_change *ch, uint32_t idx)
{
    for (uint32_t i = 0; i < ch->n_cols; i++)
        if (ch->cols[i].idx == idx)
            return &ch->cols[i];
    return NULL;
}

/* Checks a change's shape against the table and collects its primary key. Returns a reason
 * text (static) or NULL when the change is well formed; *out_code gets the REJECT code. */
static const char *check_shape(const store_table *t, uint32_t n_columns, const proto_change *ch,
                               proto_value *pk, bool *out_have_pk, uint32_t *out_code)
{
    *out_have_pk = false;
    *out_code = PROTO_ERR_INVALID_CHANGE;
    if (n_columns > t->n_cols) {
        *out_code = PROTO_ERR_UNKNOWN_COLUMN;
        return "the change has more columns than the server's table";
    }
    for (uint32_t k = 0; k < t->n_pk; k++) {
        const proto_col *pc = find_col(ch, t->pk[k]);
        const proto_value *v = NULL;
        if (pc != NULL)
            v = ch->op == PROTO_OP_INSERT ? &pc->new_val : &pc->old_val;
        if (v == NULL || v->type == PROTO_UNDEF || v->type == PROTO_NULL || t->pk[k] >= n_columns)
            return "the change lacks its primary key";
        /* A TEXT key stays TEXT: stored through the column's affinity, 5 would become '5'
         * while the row's merge state kept the integer, and the two would never meet. */
        if ((t->pk_text >> k & 1) && v->type != PROTO_TEXT)
            return "a primary key column declared TEXT carries a value that is not text";
        pk[k] = *v;
    }
    *out_have_pk = true;
    uint32_t prev = 0;
    for (uint32_t i = 0; i < ch->n_cols; i++) {
        const proto_col *pc = &ch->cols[i];
        if (pc->idx >= n_columns || pc->idx >= t->n_cols) {
            *out_code = PROTO_ERR_UNKNOWN_COLUMN;
            return "column index beyond the table's columns";
        }
        if (i > 0 && pc->idx <= prev)
            return "column indexes are not strictly ascending";
        prev = pc->idx;
        if (pc->old_val.type == PROTO_UNDEF && pc->new_val.type == PROTO_UNDEF)
            return "a column carries neither an old nor a new value";
    }
    switch (ch->op) {
    case PROTO_OP_INSERT:
    case PROTO_OP_DELETE:
        if (ch->n_cols != n_columns)
            return "wrong column count for an insert or delete";
        for (uint32_t i = 0; i < ch->n_cols; i++) {
            const proto_value *v =
                ch->op == PROTO_OP_INSERT ? &ch->cols[i].new_val : &ch->cols[i].old_val;
            if (v->type == PROTO_UNDEF)
                return "an insert or delete lacks a column value";
        }
        return NULL;
    case PROTO_OP_UPDATE:
        for (uint32_t i = 0; i < ch->n_cols; i++) {
            const proto_col *pc = &ch->cols[i];
            bool is_pk = false;
            for (uint32_t k = 0; k < t->n_pk; k++)
                is_pk = is_pk || t->pk[k] == pc->idx;
            if (is_pk && pc->new_val.type != PROTO_UNDEF &&
                !store_value_equal(&pc->new_val, &pc->old_val))
                return "an update may not change the primary key";
            if (!is_pk && pc->new_val.type != PROTO_UNDEF && pc->old_val.type == PROTO_UNDEF)
                return "an updated column lacks its old value";
        }
        return NULL;
    default:
        return "unknown operation";
    }
}

/* ---- merging one change ------------------------------------------------------------------- */

typedef struct change_ref {
    store_table *t;
    const proto_change *ch;
    uint32_t n_columns; /* columns in the sender's schema */
    proto_value *pk;    /* t->n_pk values */
    store_bytes pk_blob;
    row_meta meta;
    proto_value *cur;      /* central values when the row is live */
    proto_value scope_cur; /* central scope (UNDEF when the row is unknown) */
} change_ref;

/* Logs every carried new value of a change that lost as a whole (kept for the supervisor). */
static int log_lost_values(push_ctx *c, change_ref *r, proto_conflict_kind kind,
                           conflict_side winner)
{
    for (uint32_t i = 0; i < r->ch->n_cols; i++) {
        const proto_col *pc = &r->ch->cols[i];
        if (pc->new_val.type == PROTO_UNDEF)
            continue;
        int out =
            merge_log_conflict(c, r->t, &r->pk_blob, r->pk, (int32_t)pc->idx, kind, &pc->new_val,
                               &merge_null_value, merge_pusher(c), winner, true);
        if (out != 0)
            return out;
    }
    return 0;
}

/* Encoded size bound of a row (rowset_row_cost, as the pull page builder counts it): vals where
 * set[] says so (every one of the first n when set is NULL), base elsewhere (NULL when it is
 * not there: such a column is nil or its default). */
static size_t row_cost(const store_table *t, const bool *set, const proto_value *vals,
                       const proto_value *base, uint32_t n)
{
    size_t cost = rowset_row_cost(t, vals, 0);
    for (uint32_t i = 0; i < t->n_cols; i++) {
        const proto_value *v = &merge_null_value;
        if (i < n && (set == NULL || set[i]))
            v = &vals[i];
        else if (base != NULL)
            v = &base[i];
        cost += store_value_encoded_max(v);
    }
    return cost;
}

/* Size: a row larger than one ROWS page can carry could never be pulled by any device of its
 * team (docs/protocol.md 8.6), so a change that would make it so is refused, whole entry with it;
 * the device keeps the worker's values in its quarantine. A row already larger (stored under a
 * larger limit) may still shrink. The written row is vals/set over base, as in row_cost. */
static int check_row_size(push_ctx *c, const change_ref *r, const bool *set,
                          const proto_value *vals, const proto_value *base, uint32_t n)
{
    size_t limit = c->st->max_page_bytes;
    if (limit == 0)
        return 0;
    const store_table *t = r->t;
    size_t room = rowset_row_room(t, limit);
    size_t cost = row_cost(t, set, vals, base, n);
    if (cost <= room || (base != NULL && cost <= row_cost(t, NULL, base, NULL, t->n_cols)))
        return 0;
    char why[256];
    snprintf(why, sizeof why,
             "the row would take %zu bytes, more than the %zu a pull page can carry within the"
             " message limit of %zu bytes: shorten its values",
             cost, room, limit);
    return merge_reject(c, r->t, t->name, r->pk, PROTO_ERR_ROW_TOO_LARGE, why, r->ch);
}

/* A row written whole (inserted) has one version for every column. */
static void version_stamp_all(push_ctx *c, change_ref *r)
{
    r->meta.base_hlc = c->hlc;
    r->meta.base_device = c->rec.no;
    r->meta.versions = NULL;
    r->meta.n_cols = 0;
}

/* INSERT of a key that is new (or was deleted: then the later of the two wins). */
static int merge_insert(push_ctx *c, change_ref *r)
{
    const store_table *t = r->t;
    proto_value *vals = store_arena_alloc(&c->arena, t->n_cols * sizeof *vals);
    if (vals == NULL)
        return store_fail(c->st, STORE_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < r->n_columns; i++)
        vals[i] = r->ch->cols[i].new_val;
    const proto_value *scope_new =
        t->scope_idx < r->n_columns ? &vals[t->scope_idx] : &merge_null_value;

    if (r->meta.exists && r->meta.deleted) {
        conflict_side deleter = {r->meta.del_device, r->meta.del_hlc};
        if (!incoming_wins(c, t, r->meta.del_hlc, r->meta.del_device)) {
            int out = log_lost_values(c, r, PROTO_CONFLICT_CONFLICT, deleter);
            if (out == 0)
                out = merge_log_change(c, t, &r->pk_blob, &r->meta, PROTO_OP_DELETE, true,
                                       &r->meta.scope, &r->meta.scope);
            return out;
        }
        /* A device that makes again a record it deleted itself knew of the delete: nothing
         * for a supervisor to decide (it was an empty "w3 vs w3" conflict in the queue). */
        int out = r->meta.del_device == c->rec.no
                      ? 0
                      : merge_log_conflict(c, t, &r->pk_blob, r->pk, -1,
                                           PROTO_CONFLICT_CONFLICT, &merge_undef_value,
                                           &merge_undef_value, deleter, merge_pusher(c), false);
        if (out != 0)
            return out;
    }
    int out = check_row_size(c, r, NULL, vals, NULL, r->n_columns);
    if (out == 0 && c->n_rejects == 0)
        out = merge_apply_insert(c, r->t, vals, r->n_columns, r->pk, r->ch);
    if (out != 0 || c->n_rejects > 0)
        return out;
    proto_value scope_old = r->meta.exists ? r->meta.scope : merge_undef_value;
    r->meta.deleted = false;
    r->meta.tomb = NULL;
    r->meta.scope = *scope_new;
    version_stamp_all(c, r);
    return merge_log_change(c, t, &r->pk_blob, &r->meta, PROTO_OP_INSERT, false, &scope_old,
                            scope_new);
}

/* The rest of an INSERT onto a live key and every UPDATE of a live row end here: write the
 * winning columns and log the change. */
static int finish_columns(push_ctx *c, change_ref *r, const bool *set, const proto_value *vals,
                          bool changed, bool altered)
{
    const store_table *t = r->t;
    if (changed) {
        int out = check_row_size(c, r, set, vals, r->cur, t->n_cols);
        if (out == 0 && c->n_rejects == 0)
            out = merge_apply_update(c, t, set, vals, r->pk, r->ch);
        if (out != 0 || c->n_rejects > 0)
            return out;
    }
    if (!changed && !altered)
        return 0;
    proto_value scope_new = r->scope_cur;
    if (set[t->scope_idx])
        scope_new = vals[t->scope_idx];
    r->meta.scope = scope_new;
    return merge_log_change(c, t, &r->pk_blob, &r->meta, PROTO_OP_UPDATE, altered, &r->scope_cur,
                            &scope_new);
}

/* Column col of the row holds a central value other than the pushed one: the newer write wins
 * (*out_win says whether that is the push) and the losing value goes into the conflict log. */
static int resolve_column(push_ctx *c, change_ref *r, uint32_t col, proto_conflict_kind kind,
                          const proto_value *incoming, bool *out_win)
{
    conflict_side other;
    row_version_get(&r->meta, col, &other.hlc, &other.device);
    bool win = incoming_wins(c, r->t, other.hlc, other.device);
    *out_win = win;
    return win ? merge_log_conflict(c, r->t, &r->pk_blob, r->pk, (int32_t)col, kind, &r->cur[col],
                                    incoming, other, merge_pusher(c), false)
               : merge_log_conflict(c, r->t, &r->pk_blob, r->pk, (int32_t)col, kind, incoming,
                                    &r->cur[col], merge_pusher(c), other, true);
}

static int merge_insert_live(push_ctx *c, change_ref *r)
{
    const store_table *t = r->t;
    proto_value *vals = store_arena_alloc(&c->arena, t->n_cols * sizeof *vals);
    bool *set = store_arena_alloc(&c->arena, t->n_cols * sizeof *set);
    if (vals == NULL || set == NULL || row_versions_resize(&c->arena, &r->meta, t->n_cols) != 0)
        return store_fail(c->st, STORE_ENOMEM, "out of memory");
    memset(set, 0, t->n_cols * sizeof *set);
    bool altered = false, changed = false;
    for (uint32_t i = 0; i < r->n_columns; i++) {
        vals[i] = r->ch->cols[i].new_val;
        if (store_value_equal(&r->cur[i], &vals[i]))
            continue;
        bool win;
        int out = resolve_column(c, r, i, PROTO_CONFLICT_CONFLICT, &vals[i], &win);
        if (out != 0)
            return out;
        if (win) {
            set[i] = changed = true;
            row_version_set(&r->meta, i, c->hlc, c->rec.no);
        } else {
            altered = true;
        }
    }
    return finish_columns(c, r, set, vals, changed, altered);
}

static int merge_update_deleted(push_ctx *c, change_ref *r)
{
    const store_table *t = r->t;
    conflict_side deleter = {r->meta.del_device, r->meta.del_hlc};
    bool never_had = !r->meta.exists;
    if (never_had || !incoming_wins(c, t, r->meta.del_hlc, r->meta.del_device)) {
        /* The row stays deleted; the device's values are kept in the conflict log and the
         * device is sent the tombstone. */
        int out = log_lost_values(c, r, PROTO_CONFLICT_NOTFOUND, deleter);
        if (out != 0)
            return out;
        if (never_had) {
            const proto_col *sc = find_col(r->ch, t->scope_idx);
            r->meta.deleted = true;
            r->meta.scope = sc ? (sc->new_val.type != PROTO_UNDEF ? sc->new_val : sc->old_val)
                               : merge_null_value;
        }
        return merge_log_change(c, t, &r->pk_blob, &r->meta, PROTO_OP_DELETE, true, &r->meta.scope,
                                &r->meta.scope);
    }
    /* The update is later than the delete: restore the row as it was, with the update on top. */
    proto_value *vals = store_arena_alloc(&c->arena, t->n_cols * sizeof *vals);
    if (vals == NULL || row_versions_resize(&c->arena, &r->meta, t->n_cols) != 0)
        return store_fail(c->st, STORE_ENOMEM, "out of memory");
    uint32_t n = 0;
    int out = store_values_decode(&c->arena, r->meta.tomb, r->meta.tomb_len, vals, t->n_cols, &n);
    if (out != 0)
        return store_fail(c->st, out, "table %s: damaged tombstone", t->name);
    for (uint32_t i = 0; i < r->ch->n_cols; i++) {
        const proto_col *pc = &r->ch->cols[i];
        if (pc->new_val.type == PROTO_UNDEF)
            continue;
        if (pc->idx >= n) {
            for (uint32_t k = n; k < pc->idx; k++)
                vals[k] = merge_null_value;
            n = pc->idx + 1;
        }
        vals[pc->idx] = pc->new_val;
        row_version_set(&r->meta, pc->idx, c->hlc, c->rec.no);
    }
    out =
        merge_log_conflict(c, t, &r->pk_blob, r->pk, -1, PROTO_CONFLICT_NOTFOUND,
                           &merge_undef_value, &merge_undef_value, deleter, merge_pusher(c), false);
    if (out == 0)
        out = check_row_size(c, r, NULL, vals, NULL, n);
    if (out == 0 && c->n_rejects == 0)
        out = merge_apply_insert(c, r->t, vals, n, r->pk, r->ch);
    if (out != 0 || c->n_rejects > 0)
        return out;
    proto_value scope_old = r->meta.scope;
    r->meta.deleted = false;
    r->meta.tomb = NULL;
    r->meta.scope = t->scope_idx < n ? vals[t->scope_idx] : merge_null_value;
    return merge_log_change(c, t, &r->pk_blob, &r->meta, PROTO_OP_INSERT, false, &scope_old,
                            &r->meta.scope);
}

static int merge_update_live(push_ctx *c, change_ref *r)
{
    const store_table *t = r->t;
    proto_value *vals = store_arena_alloc(&c->arena, t->n_cols * sizeof *vals);
    bool *set = store_arena_alloc(&c->arena, t->n_cols * sizeof *set);
    if (vals == NULL || set == NULL || row_versions_resize(&c->arena, &r->meta, t->n_cols) != 0)
        return store_fail(c->st, STORE_ENOMEM, "out of memory");
    memset(set, 0, t->n_cols * sizeof *set);
    bool altered = false, changed = false;
    for (uint32_t i = 0; i < r->ch->n_cols; i++) {
        const proto_col *pc = &r->ch->cols[i];
        uint32_t col = pc->idx;
        if (pc->new_val.type == PROTO_UNDEF || store_value_equal(&r->cur[col], &pc->new_val))
            continue;
        vals[col] = pc->new_val;
        bool win = true;
        if (!store_value_equal(&r->cur[col], &pc->old_val)) {
            int out = resolve_column(c, r, col, PROTO_CONFLICT_DATA, &pc->new_val, &win);
            if (out != 0)
                return out;
        }
        if (win) {
            set[col] = changed = true;
            row_version_set(&r->meta, col, c->hlc, c->rec.no);
        } else {
            altered = true;
        }
    }
    return finish_columns(c, r, set, vals, changed, altered);
}

static int merge_delete_live(push_ctx *c, change_ref *r)
{
    const store_table *t = r->t;
    if (row_versions_resize(&c->arena, &r->meta, t->n_cols) != 0)
        return store_fail(c->st, STORE_ENOMEM, "out of memory");
    /* Columns changed centrally since the device saw the row; the delete must be later than
     * every one of them to win. */
    bool conflict = false, win = true;
    conflict_side latest = {0, 0}; /* the newest change the delete did not see */
    for (uint32_t i = 0; i < r->n_columns; i++) {
        if (store_value_equal(&r->cur[i], &r->ch->cols[i].old_val))
            continue;
        conflict = true;
        conflict_side other;
        row_version_get(&r->meta, i, &other.hlc, &other.device);
        if (other.hlc >= latest.hlc)
            latest = other;
        win = win && incoming_wins(c, t, other.hlc, other.device);
    }
    if (conflict && !win) {
        int out = merge_log_conflict(c, t, &r->pk_blob, r->pk, -1, PROTO_CONFLICT_CONFLICT,
                                     &merge_undef_value, &merge_undef_value, merge_pusher(c),
                                     latest, true);
        if (out != 0)
            return out;
        return merge_log_change(c, t, &r->pk_blob, &r->meta, PROTO_OP_UPDATE, true, &r->scope_cur,
                                &r->scope_cur);
    }
    for (uint32_t i = 0; conflict && i < r->n_columns; i++) {
        if (store_value_equal(&r->cur[i], &r->ch->cols[i].old_val))
            continue;
        conflict_side other;
        row_version_get(&r->meta, i, &other.hlc, &other.device);
        int out = merge_log_conflict(c, t, &r->pk_blob, r->pk, (int32_t)i, PROTO_CONFLICT_CONFLICT,
                                     &r->cur[i], &merge_null_value, other, merge_pusher(c), false);
        if (out != 0)
            return out;
    }
    int out = merge_apply_delete(c, r->t, r->pk, r->ch);
    if (out != 0 || c->n_rejects > 0)
        return out;
    store_bytes tomb = {0};
    if (store_values_encode(r->cur, t->n_cols, &tomb) != 0)
        return store_fail(c->st, STORE_ENOMEM, "out of memory");
    r->meta.tomb = store_arena_dup(&c->arena, tomb.data, tomb.len);
    r->meta.tomb_len = tomb.len;
    store_bytes_free(&tomb);
    if (r->meta.tomb == NULL)
        return store_fail(c->st, STORE_ENOMEM, "out of memory");
    r->meta.deleted = true;
    r->meta.del_hlc = c->hlc;
    r->meta.del_device = c->rec.no;
    r->meta.scope = r->scope_cur;
    return merge_log_change(c, t, &r->pk_blob, &r->meta, PROTO_OP_DELETE, false, &r->scope_cur,
                            &r->scope_cur);
}

/* Attribution: a table's author column (policy author=COLUMN) may only ever be written with the
 * pushing device's own worker id, so that no device records work in another worker's name. */
static const char *check_author(push_ctx *c, const store_table *t, uint32_t n_columns,
                                const proto_change *ch, char *why, size_t why_size)
{
    const proto_col *ac;

    if (t->author_idx == UINT32_MAX || t->author_idx >= n_columns)
        return NULL;
    ac = find_col(ch, t->author_idx);
    if (ac == NULL || ac->new_val.type == PROTO_UNDEF)
        return NULL; /* not written by this change (an UPDATE of other columns, a DELETE) */
    if (ac->new_val.type == PROTO_TEXT && store_value_is_text(&ac->new_val, c->dev->worker_id))
        return NULL;
    if (ac->new_val.type == PROTO_TEXT)
        snprintf(why, why_size,
                 "column %s names worker %.*s, but this device belongs to worker %s: a device "
                 "may record only its own worker as the author",
                 t->cols[t->author_idx], (int)(ac->new_val.u.b.n > 64 ? 64 : ac->new_val.u.b.n),
                 (const char *)ac->new_val.u.b.p, c->dev->worker_id);
    else
        snprintf(why, why_size, "column %s must name this device's worker %s",
                 t->cols[t->author_idx], c->dev->worker_id);
    return why;
}

/* Scope: the change's old and new scope values and the central row's must all be teams of
 * the device's worker. */
static const char *check_scope(push_ctx *c, const change_ref *r)
{
    const proto_col *sc = r->t->scope_idx < r->n_columns ? find_col(r->ch, r->t->scope_idx) : NULL;
    bool carried = false;
    if (sc != NULL) {
        if (sc->old_val.type != PROTO_UNDEF) {
            carried = true;
            if (!row_scope_allowed(c->dev, &sc->old_val))
                return "the row's scope value before the change is not one of the device's teams";
        }
        if (sc->new_val.type != PROTO_UNDEF) {
            carried = true;
            if (!row_scope_allowed(c->dev, &sc->new_val))
                return "the row's new scope value is not one of the device's teams";
        }
    }
    if (r->meta.exists) {
        if (!row_scope_allowed(c->dev, &r->meta.scope))
            return "the row is not in the device's scope on the server";
    } else if (!carried) {
        return "the server has no such row, so its scope cannot be checked (a store restored "
               "from a backup lacks the rows created after the backup until the device that "
               "created them sends them again)";
    }
    return NULL;
}

/* The common case, an INSERT of a key the store has never seen: the row's merge state is added
 * unless it exists (one statement, no lookup), then the row and its change-log entry. Leaves
 * *out_done false, having written nothing, when the key is known: the full merge takes over. */
static int insert_new_row(push_ctx *c, change_ref *r, bool *out_done)
{
    *out_done = false;
    const store_table *t = r->t;
    /* check_shape made an INSERT carry columns 0..n_columns-1 in order */
    const proto_value *scope_new =
        t->scope_idx < r->n_columns ? &r->ch->cols[t->scope_idx].new_val : &merge_null_value;
    if (!row_scope_allowed(c->dev, scope_new))
        return merge_reject(c, r->t, t->name, r->pk, PROTO_ERR_OUT_OF_SCOPE,
                            "the row's new scope value is not one of the device's teams", r->ch);
    /* The values are only bound, never kept: the context's scratch holds them (after the
     * key), so that a push of many rows does not grow the arena row by row. */
    proto_value *vals = r->pk + t->n_pk;
    for (uint32_t i = 0; i < r->n_columns; i++)
        vals[i] = r->ch->cols[i].new_val;
    int out = check_row_size(c, r, NULL, vals, NULL, r->n_columns);
    if (out != 0 || c->n_rejects > 0)
        return out;
    r->meta.seq = (uint64_t)c->server_seq + 1; /* the entry merge_log_change_entry appends below */
    r->meta.scope = *scope_new;
    r->meta.echo_device = c->dev->repulls ? 0 : c->rec.no; /* see merge_log_change */
    r->meta.echo_since = 0;
    if (c->dev->repulls)
        c->echo_broken = true;
    version_stamp_all(c, r);
    bool added = false;
    out = row_meta_add(c->st, t->id, &r->pk_blob, &r->meta, &added);
    if (out != 0 || !added)
        return out;
    *out_done = true;
    out = merge_apply_insert_new(c, r->t, vals, r->n_columns, r->pk, r->ch);
    if (out != 0 || c->n_rejects > 0)
        return out;
    return merge_log_change_entry(c, t, &r->pk_blob, PROTO_OP_INSERT, false, &merge_undef_value,
                                  scope_new, 0);
}

/* Room for a change's key and its values (t->n_pk + n_columns), reused change after change. */
static proto_value *scratch_for(push_ctx *c, uint32_t n)
{
    if (n > c->n_scratch) {
        proto_value *grown = realloc(c->scratch, n * sizeof *grown);
        if (grown == NULL)
            return NULL;
        c->scratch = grown;
        c->n_scratch = n;
    }
    return c->scratch;
}

int merge_change(push_ctx *c, store_table *t, uint32_t n_columns, const proto_change *ch)
{
    change_ref r;
    memset(&r, 0, sizeof r);
    r.t = t;
    r.ch = ch;
    r.n_columns = n_columns;
    r.scope_cur = merge_undef_value;
    /* The key lives in the scratch while the fast insert path may finish the change; the full
     * merge keeps it (conflicts and their ACK point at it), so it moves to the arena first. */
    r.pk = scratch_for(c, t->n_pk + (n_columns > t->n_cols ? n_columns : t->n_cols));
    if (r.pk == NULL)
        return store_fail(c->st, STORE_ENOMEM, "out of memory");
    bool have_pk = false;
    uint32_t code = 0;
    const char *why = check_shape(t, n_columns, ch, r.pk, &have_pk, &code);
    if (why != NULL)
        return merge_reject(c, t, t->name, have_pk ? r.pk : NULL, code, why, ch);
    char author_why[256];
    why = check_author(c, t, n_columns, ch, author_why, sizeof author_why);
    if (why != NULL)
        return merge_reject(c, t, t->name, r.pk, PROTO_ERR_INVALID_CHANGE, why, ch);

    int out = 0;
    c->key_buf.len = 0;
    if (store_values_encode(r.pk, t->n_pk, &c->key_buf) != 0) {
        out = store_fail(c->st, STORE_ENOMEM, "out of memory");
        goto done;
    }
    r.pk_blob = c->key_buf; /* a view: the storage stays the context's */
    if (ch->op == PROTO_OP_INSERT && c->n_rejects == 0) {
        bool done_fast = false;
        out = insert_new_row(c, &r, &done_fast);
        if (out != 0 || done_fast || c->n_rejects > 0)
            goto done;
    }
    r.pk = store_arena_dup(&c->arena, r.pk, t->n_pk * sizeof *r.pk);
    if (r.pk == NULL)
        return store_fail(c->st, STORE_ENOMEM, "out of memory");
    out = merge_apply_flush(c); /* the full merge reads and writes the data tables */
    if (out != 0)
        goto done;
    out = row_meta_get(c->st, t->id, &r.pk_blob, &c->arena, &r.meta);
    if (out != 0)
        goto done;
    why = check_scope(c, &r);
    if (why != NULL) {
        out = merge_reject(c, t, t->name, r.pk, PROTO_ERR_OUT_OF_SCOPE, why, ch);
        goto done;
    }
    /* After the first refusal nothing more is applied: the rest is only checked, so that the
     * REJECT lists every bad row at once. */
    if (c->n_rejects > 0)
        goto done;
    if (r.meta.exists && !r.meta.deleted) {
        r.cur = store_arena_alloc(&c->arena, t->n_cols * sizeof *r.cur);
        if (r.cur == NULL) {
            out = store_fail(c->st, STORE_ENOMEM, "out of memory");
            goto done;
        }
        bool found = false;
        out = row_read(c->st, t, r.pk, &c->arena, r.cur, &found);
        if (out != 0)
            goto done;
        if (!found) {
            out = store_fail(c->st, STORE_EIO, "table %s: row state without a row", t->name);
            goto done;
        }
        r.scope_cur = r.cur[t->scope_idx];
    }
    bool live = r.meta.exists && !r.meta.deleted;
    switch (ch->op) {
    case PROTO_OP_INSERT:
        out = live ? merge_insert_live(c, &r) : merge_insert(c, &r);
        break;
    case PROTO_OP_UPDATE:
        out = live ? merge_update_live(c, &r) : merge_update_deleted(c, &r);
        break;
    case PROTO_OP_DELETE:
        /* Deleting what is already gone (or never came) leaves both sides agreeing. */
        out = live ? merge_delete_live(c, &r) : 0;
        break;
    default:
        break;
    }
done:
    return out;
}
