/*
 * Pull: one ROWS page of what changed in a device's scope since its cursor.
 *
 * The change log holds one entry per row change; the page walks it in server-sequence order
 * and keeps only entries that are the row's latest change (joined on _outpost_rows.seq), so each
 * row is sent once, at its newest version. For each row:
 *   - in the device's scope and live: the row, unless the changes since the device last saw it
 *     are all its own unaltered writes (no echo);
 *   - in scope and deleted: a tombstone (not for a first pull, which has nothing to delete);
 *   - out of scope: "removed" when, since the cursor, it left one of the device's teams.
 * Interleaved by sequence with the change log: the rows a device gains or loses when its
 * worker's teams change (store_rescope.c), so those are paged like any other change.
 * Rows to send are read from their tables ROW_READ_BATCH at a time, and added to the page in
 * the log's order: a page that fills inside a batch ends before the first row left out.
 */
#include <stdlib.h>
#include <string.h>

#include "store_rows.h"

enum {
    PULL_DEFAULT_LIMIT = 1000,
    PULL_MAX_LIMIT = 10000,
    /* Change-log entries examined per page beyond the rows sent: bounds a page's read when
     * most entries are skipped (other teams, superseded versions, the device's own writes).
     * A skipped entry costs one indexed lookup (a few microseconds), so a page stays within
     * tens of milliseconds of worker time; at 4,096 a device pulling after its own bulk push
     * of 100,000 rows walked them in 13 empty pages, each a network round trip. */
    PULL_SCAN_EXTRA = 32768
};

/* What a walked entry is (the query's last column). */
enum { PULL_CHANGE = 0, PULL_LEFT = 1, PULL_JOINED = 2 };

/* The change log, each entry kept when it is its row's latest change, interleaved by sequence
 * with the snapshots of the teams this device's worker joined (live rows) or left (keys). A
 * joined row changed since its snapshot is left to the change log, which has it later. */
static const char pull_sql_rescope[] =
    "SELECT c.seq, c.table_id, c.pk, r.deleted, r.scope, r.echo_device, r.echo_since, 0"
    " FROM _outpost_changes c JOIN _outpost_rows r"
    " ON r.table_id = c.table_id AND r.pk = c.pk AND r.seq = c.seq"
    " WHERE c.seq > ?1 AND c.seq <= ?4"
    " UNION ALL"
    " SELECT x.seq, x.table_id, x.pk, r.deleted, r.scope, 0, 0, 1 + d.joined"
    " FROM _outpost_rescope_rows x"
    " JOIN _outpost_rescopes d ON d.device_no = ?3 AND d.team_id = x.team_id"
    " AND d.marker_seq = x.marker_seq"
    " JOIN _outpost_rows r ON r.table_id = x.table_id AND r.pk = x.pk"
    " AND (d.joined = 0 OR r.seq < x.seq) WHERE x.seq > ?1 AND x.seq <= ?4"
    " ORDER BY 1 LIMIT ?2";
/* The same without scope changes, for a store that never recorded one. */
static const char pull_sql_plain[] =
    "SELECT c.seq, c.table_id, c.pk, r.deleted, r.scope, r.echo_device, r.echo_since, 0"
    " FROM _outpost_changes c JOIN _outpost_rows r"
    " ON r.table_id = c.table_id AND r.pk = c.pk AND r.seq = c.seq"
    " WHERE c.seq > ?1 AND c.seq <= ?3 ORDER BY c.seq LIMIT ?2";

static int left_scope_since(store *st, const store_device *dev, int64_t table_id, const void *pk,
                            size_t pk_len, uint64_t cursor, store_arena *arena, bool *out_left)
{
    *out_left = false;
    db_stmt *s = NULL;
    int rc = db_prepare(st->conn,
                        "SELECT scope_old FROM _outpost_scope_exits WHERE table_id = ?1"
                        " AND pk = ?2 AND seq > ?3",
                        &s);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 1, table_id);
    if (rc == STORE_OK)
        rc = db_bind_blob_static(s, 2, pk, pk_len);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 3, (int64_t)cursor);
    while (rc == STORE_OK && (rc = db_step(s)) == DB_ROW) {
        proto_value v;
        rc = store_value_column_any(arena, s, 0, &v);
        if (rc == STORE_OK && row_scope_allowed(dev, &v)) /* TEXT only */
            *out_left = true;
    }
    db_finalize(s);
    if (rc != DB_DONE)
        return store_fail_db(st, rc, "read scope exits");
    return 0;
}

static const store_table *table_by_id(store *st, int64_t id)
{
    for (uint32_t i = 0; i < st->n_tables; i++)
        if (st->tables[i].id == id)
            return &st->tables[i];
    return NULL;
}

typedef struct pull_page {
    store *st;
    const store_device *dev;
    int64_t dev_no;
    uint64_t cursor;
    /* Where the device last completed a pull (at most cursor): what it holds. A later page of
     * the same pull has a cursor past entries it skipped as superseded (the row is considered
     * at its latest entry), so the page's cursor says nothing about what reached the device. */
    uint64_t seen;
    uint32_t limit;
    size_t max_bytes;
    store_arena arena;
    rowset rs;
    uint32_t n_items;
    uint64_t last_seq;
    /* A first pull (cursor 0) by a device that has never had a push applied and never synced
     * before this session: it holds no rows, so tombstones and scope removals would tell it
     * nothing. A device that pushed before its first pull holds its own rows, and one that
     * synced before and pulls from 0 again (a restored store's new epoch, CURSOR_AHEAD) holds
     * what it pulled: both must hear what others deleted or moved. */
    bool holds_nothing;
    bool full;
    store_pull_info *info;
    /* Live rows of one table whose values are still to be read (row_read_batch), in sequence
     * order; nothing else is added to the page while any wait. */
    const store_table *batch_t;
    uint32_t n_batch;
    proto_value *batch_keys; /* arena, ROW_READ_BATCH keys of batch_t */
    struct pull_waiting {
        uint64_t seq;    /* its change-log entry */
        uint64_t before; /* last_seq when it was met: the next page starts there if it does
                          * not fit in this one (entries skipped since may be passed again) */
    } batch[ROW_READ_BATCH];
} pull_page;

/* Reads the waiting rows and adds them in order, until the page is full: the rows that do not
 * fit are left to the next page, whose cursor stops before the first of them. */
static int pull_batch_add(pull_page *p)
{
    uint32_t n = p->n_batch;
    if (n == 0)
        return 0;
    p->n_batch = 0;
    store_table *t = (store_table *)p->batch_t;
    proto_value *vals = store_arena_alloc(&p->arena, (size_t)n * t->n_cols * sizeof *vals);
    bool found[ROW_READ_BATCH];
    if (vals == NULL)
        return store_fail(p->st, STORE_ENOMEM, "out of memory");
    int out = row_read_batch(p->st, t, n, p->batch_keys, &p->arena, vals, found);
    if (out != 0)
        return out;
    for (uint32_t i = 0; i < n; i++) {
        if (!found[i])
            return store_fail(p->st, STORE_EIO, "table %s: row state without a row", t->name);
        const proto_value *row = vals + (size_t)i * t->n_cols;
        /* Room for the row, in case it is the page's first row of its table. The merge keeps
         * every row within one page (store_set_page_limit); a page still carries at least one
         * row, so that a row stored before that bound (or under a larger limit) still moves. */
        if (p->full || (p->n_items > 0 && p->rs.encoded_max + rowset_row_cost(t, row, t->n_cols) >
                                              rowset_row_room(t, p->max_bytes))) {
            p->full = true;
            p->last_seq = p->batch[i].before;
            return 0;
        }
        if (rowset_add_row(&p->rs, t, row) != 0)
            return store_fail(p->st, STORE_ENOMEM, "out of memory");
        p->info->n_rows++;
        if (++p->n_items >= p->limit)
            p->full = true;
    }
    return 0;
}

/* Queues a live row for pull_batch_add; its entry counts as met (last_seq) until then. */
static int pull_batch_queue(pull_page *p, const store_table *t, const proto_value *pk,
                            uint64_t seq)
{
    if (p->n_batch > 0 && p->batch_t != t) {
        int out = pull_batch_add(p);
        if (out != 0 || p->full)
            return out;
    }
    if (p->n_batch == 0) {
        p->batch_t = t;
        p->batch_keys = store_arena_alloc(&p->arena, ROW_READ_BATCH * t->n_pk * sizeof *pk);
        if (p->batch_keys == NULL)
            return store_fail(p->st, STORE_ENOMEM, "out of memory");
    }
    memcpy(p->batch_keys + (size_t)p->n_batch * t->n_pk, pk, t->n_pk * sizeof *pk);
    p->batch[p->n_batch].seq = seq;
    p->batch[p->n_batch].before = p->last_seq;
    p->n_batch++;
    p->last_seq = seq;
    if (p->n_batch == ROW_READ_BATCH || p->n_items + p->n_batch >= p->limit)
        return pull_batch_add(p);
    return 0;
}

/* Considers one row whose latest change is `seq`. Sets p->full instead of adding when the
 * page has no room left. A live row to send waits in the batch (pull_batch_queue), whose rows
 * are read with one statement. */
static int pull_one(pull_page *p, db_stmt *s)
{
    uint64_t seq = (uint64_t)db_column_int64(s, 0);
    const store_table *t = table_by_id(p->st, db_column_int64(s, 1));
    size_t pk_len = 0;
    const void *pk_blob = db_column_blob(s, 2, &pk_len);
    bool deleted = db_column_int64(s, 3) != 0;
    int64_t echo_device = db_column_int64(s, 5);
    uint64_t echo_since = (uint64_t)db_column_int64(s, 6);
    int kind = (int)db_column_int64(s, 7);
    if (t == NULL || (kind == PULL_CHANGE && echo_device == p->dev_no && echo_since <= p->seen))
        goto skip;
    proto_value scope;
    int out = store_value_column_any(&p->arena, s, 4, &scope);
    if (out != 0)
        return store_fail(p->st, out, out == STORE_ENOMEM ? "out of memory" : "damaged scope");
    bool in_scope = row_scope_allowed(p->dev, &scope);
    enum { SEND_ROW, SEND_DELETED, SEND_REMOVED } what;
    if (kind == PULL_JOINED) {
        /* A row of a team the worker joined: sent if the device may see it now. */
        if (!in_scope || deleted)
            goto skip;
        what = SEND_ROW;
    } else if (kind == PULL_LEFT) {
        /* A row of a team the worker left: removed unless the device may still see it. */
        if (in_scope || p->holds_nothing)
            goto skip;
        what = SEND_REMOVED;
    } else if (in_scope && !deleted) {
        what = SEND_ROW;
    } else if (in_scope) {
        if (p->holds_nothing)
            goto skip;
        what = SEND_DELETED;
    } else {
        bool left = false;
        if (p->holds_nothing)
            goto skip;
        out = left_scope_since(p->st, p->dev, t->id, pk_blob, pk_len, p->seen, &p->arena,
                               &left);
        if (out != 0)
            return out;
        if (!left)
            goto skip;
        what = SEND_REMOVED;
    }
    proto_value *pk = store_arena_alloc(&p->arena, t->n_pk * sizeof *pk);
    if (pk == NULL)
        return store_fail(p->st, STORE_ENOMEM, "out of memory");
    uint32_t n_pk = 0;
    out = store_values_decode(&p->arena, pk_blob, pk_len, pk, t->n_pk, &n_pk);
    if (out != 0 || n_pk != t->n_pk)
        return store_fail(p->st, out == STORE_ENOMEM ? STORE_ENOMEM : STORE_EIO,
                          "table %s: damaged row key", t->name);
    if (what == SEND_ROW)
        return pull_batch_queue(p, t, pk, seq);
    /* The waiting rows first, so that the page holds entries in sequence order. */
    out = pull_batch_add(p);
    if (out != 0 || p->full)
        return out;
    size_t cost = rowset_row_cost(t, pk, t->n_pk);
    if (p->n_items > 0 && p->rs.encoded_max + cost > rowset_row_room(t, p->max_bytes)) {
        p->full = true;
        return 0;
    }
    if (what == SEND_DELETED) {
        out = rowset_add_key(&p->rs, t, ROWSET_DELETED, pk);
        p->info->n_deleted++;
    } else {
        out = rowset_add_key(&p->rs, t, ROWSET_REMOVED, pk);
        p->info->n_removed++;
    }
    if (out != 0)
        return store_fail(p->st, out, "out of memory");
    p->n_items++;
    if (p->n_items >= p->limit)
        p->full = true;
skip:
    p->last_seq = seq;
    return 0;
}

void store_pull_stamp_clear(store_pull_stamp *stamp)
{
    if (stamp == NULL)
        return;
    free(stamp->teams);
    memset(stamp, 0, sizeof *stamp);
}

int store_pull(store *st, const store_device *dev, uint64_t cursor, uint32_t limit,
               size_t max_bytes, proto_buf *reply, store_pull_info *out_info)
{
    return store_pull_stamped(st, dev, cursor, limit, max_bytes, reply, out_info, NULL);
}

int store_pull_stamped(store *st, const store_device *dev, uint64_t cursor, uint32_t limit,
                       size_t max_bytes, proto_buf *reply, store_pull_info *out_info,
                       store_pull_stamp *out_stamp)
{
    if (out_stamp != NULL)
        memset(out_stamp, 0, sizeof *out_stamp);
    memset(out_info, 0, sizeof *out_info);
    pull_page p;
    memset(&p, 0, sizeof p);
    p.st = st;
    p.dev = dev;
    p.cursor = cursor;
    p.seen = dev->has_pull_seen && dev->pull_seen < cursor ? dev->pull_seen : cursor;
    p.limit = limit == 0 ? PULL_DEFAULT_LIMIT : (limit > PULL_MAX_LIMIT ? PULL_MAX_LIMIT : limit);
    p.max_bytes = max_bytes;
    p.last_seq = cursor;
    p.info = out_info;
    db_stmt *s = NULL;
    store_device_rec rec;
    store_device fresh;
    int64_t server_seq = 0;
    memset(&fresh, 0, sizeof fresh);
    int out = store_begin(st, false);
    if (out != 0)
        goto done;
    out = store_device_lookup(st, dev->device_id, &rec);
    if (out == 0 && rec.revoked)
        out = store_fail(st, STORE_EREVOKED, "device is revoked");
    if (out == 0)
        out = store_tables_load(st);
    if (out == 0)
        out = store_meta_get(st, "server_seq", &server_seq);
    if (out != 0)
        goto done;
    p.dev_no = rec.no;
    p.holds_nothing = cursor == 0 && rec.acked_seq == 0 && !dev->synced_before;
    /* The worker's teams as they are now, not as they were at HELLO: a move applies at once. */
    fresh = *dev;
    fresh.teams = NULL;
    out = store_worker_teams(st, rec.worker_id, &fresh.n_teams, &fresh.teams);
    if (out != 0)
        goto done;
    p.dev = &fresh;
    /* A cursor ahead of the store means the store went back in time (restored from a backup, or
     * failed over to a standby that lacked commits).
     * Restarting from 0 here would hide that from the device, which then would not re-send what
     * the store lost: say so, and the device pulls again from 0 itself. */
    if (cursor > (uint64_t)server_seq) {
        out = store_fail(st, STORE_EAHEAD,
                         "cursor %llu is beyond this store's newest sequence %lld: the store went "
                         "back in time (restored from a backup, or failed over to a standby "
                         "that lacked commits); pull again from 0",
                         (unsigned long long)cursor, (long long)server_seq);
        goto done;
    }
    int scan_cap = (int)p.limit + PULL_SCAN_EXTRA;
    bool rescoped = false; /* a scope change was ever recorded in this store */
    out = store_table_exists(st, "_outpost_rescope_rows", &rescoped);
    if (out != 0)
        goto done;
    /* The log is read in one range, or in two around this device's echo run, which the page
     * jumps: every entry in it would be skipped (store_echo_run). */
    uint64_t ranges[2][2] = {{cursor, (uint64_t)server_seq}};
    int n_ranges = 1;
    const store_echo_run *run = &st->echo_run;
    if (run->device_no == p.dev_no && run->to > cursor && run->to <= (uint64_t)server_seq &&
        run->echo_max <= p.seen) {
        ranges[0][1] = run->from > cursor ? run->from - 1 : cursor;
        ranges[1][0] = run->to;
        ranges[1][1] = (uint64_t)server_seq;
        n_ranges = 2;
    }
    int rc = db_prepare(st->conn, rescoped ? pull_sql_rescope : pull_sql_plain, &s);
    int scanned = 0;
    for (int k = 0; k < n_ranges && rc == STORE_OK && !p.full && scanned < scan_cap; k++) {
        if (k > 0) {
            rc = db_reset(s);
            p.last_seq = ranges[k][0]; /* the run, jumped */
        }
        if (rc == STORE_OK)
            rc = db_bind_int64(s, 1, (int64_t)ranges[k][0]);
        if (rc == STORE_OK)
            rc = db_bind_int64(s, 2, scan_cap - scanned);
        if (rc == STORE_OK)
            rc = db_bind_int64(s, rescoped ? 4 : 3, (int64_t)ranges[k][1]);
        if (rc == STORE_OK && rescoped)
            rc = db_bind_int64(s, 3, p.dev_no);
        while (rc == STORE_OK && !p.full && (rc = db_step(s)) == DB_ROW) {
            rc = STORE_OK;
            scanned++;
            out = pull_one(&p, s);
            if (out != 0)
                goto done;
        }
        if (rc == DB_DONE)
            rc = STORE_OK;
        if (rc == STORE_OK) {
            out = pull_batch_add(&p);
            if (out != 0)
                goto done;
        }
    }
    if (rc != STORE_OK) {
        out = store_fail_db(st, rc, "read change log");
        goto done;
    }
    /* Everything up to server_seq was examined unless the page filled or the scan hit its cap. */
    bool exhausted = !p.full && scanned < scan_cap;
    out_info->more = !exhausted && p.last_seq < (uint64_t)server_seq;
    out_info->next_cursor = exhausted ? (uint64_t)server_seq : p.last_seq;
    if (rowset_export(&p.rs) != 0) {
        out = store_fail(st, STORE_ENOMEM, "out of memory");
        goto done;
    }
    proto_msg msg;
    memset(&msg, 0, sizeof msg);
    msg.type = PROTO_MSG_ROWS;
    msg.u.rows.cursor = out_info->next_cursor;
    msg.u.rows.more = out_info->more;
    msg.u.rows.n_tables = p.rs.n_tables;
    msg.u.rows.tables = p.rs.out;
    int prc = proto_encode(&msg, reply);
    if (prc != PROTO_OK)
        out = store_fail(st, prc == PROTO_ENOMEM ? STORE_ENOMEM : STORE_EIO, "encode rows: %s",
                         proto_strerror(prc));
    if (out == 0 && out_stamp != NULL) {
        out_stamp->server_seq = (uint64_t)server_seq;
        out_stamp->schema_version = st->schema_version;
        out_stamp->n_teams = fresh.n_teams;
        out_stamp->teams = fresh.teams;
        fresh.teams = NULL;
    }
done:
    db_finalize(s);
    store_rollback(st); /* ends the read transaction */
    rowset_free(&p.rs);
    store_arena_free(&p.arena);
    free(fresh.teams);
    if (out != 0) {
        memset(out_info, 0, sizeof *out_info);
    }
    return out;
}

/* Changes committed after a page was read that it may still be served past: more and the
 * check below (one indexed step per change) costs as much as reading the page again. */
enum { PULL_RECHECK_MAX_CHANGES = 4096 };

/* A change since the stamp that the page must not be served past: one of the device's own (the
 * page holds the row as it was before the device's write, which the device has already and
 * must not see go back), a delete, or a row leaving a scope value (the page may hold the row
 * for a team it has left). */
static const char recheck_sql[] =
    "SELECT 1 FROM _outpost_changes c WHERE c.seq > ?1 AND (c.device = ?2 OR c.op = ?3"
    " OR EXISTS(SELECT 1 FROM _outpost_scope_exits x WHERE x.table_id = c.table_id"
    " AND x.pk = c.pk AND x.seq = c.seq)) LIMIT 1";

static bool same_teams(const store_pull_stamp *stamp, uint32_t n_teams, char (*teams)[64])
{
    if (n_teams != stamp->n_teams)
        return false;
    for (uint32_t i = 0; i < n_teams; i++) /* both in team id order (store_worker_teams) */
        if (strcmp(teams[i], stamp->teams[i]) != 0)
            return false;
    return true;
}

int store_pull_recheck(store *st, const store_device *dev, const store_pull_stamp *stamp,
                       bool *out_fresh)
{
    store_device_rec rec;
    int64_t server_seq = 0, schema_version = 0;
    uint32_t n_teams = 0;
    char(*teams)[64] = NULL;
    db_stmt *s = NULL;
    bool fresh = false;

    *out_fresh = false;
    int out = store_begin(st, false);
    if (out == 0)
        out = store_device_lookup(st, dev->device_id, &rec);
    if (out == 0)
        out = store_meta_get(st, "server_seq", &server_seq);
    if (out == 0)
        out = store_meta_get(st, "schema_version", &schema_version);
    if (out == 0)
        out = store_worker_teams(st, rec.worker_id, &n_teams, &teams);
    if (out != 0)
        goto done;
    fresh = !rec.revoked && (uint32_t)schema_version == stamp->schema_version &&
            same_teams(stamp, n_teams, teams) && (uint64_t)server_seq >= stamp->server_seq &&
            (uint64_t)server_seq - stamp->server_seq <= PULL_RECHECK_MAX_CHANGES;
    if (fresh && (uint64_t)server_seq > stamp->server_seq) {
        int rc = db_prepare(st->conn, recheck_sql, &s);
        if (rc == STORE_OK)
            rc = db_bind_int64(s, 1, (int64_t)stamp->server_seq);
        if (rc == STORE_OK)
            rc = db_bind_int64(s, 2, rec.no);
        if (rc == STORE_OK)
            rc = db_bind_int64(s, 3, PROTO_OP_DELETE);
        if (rc == STORE_OK)
            rc = db_step(s);
        if (rc == DB_ROW)
            fresh = false;
        else if (rc != DB_DONE)
            out = store_fail_db(st, rc, "read changes since a prepared page");
    }
done:
    db_finalize(s);
    store_rollback(st); /* ends the read transaction */
    free(teams);
    if (out == 0)
        *out_fresh = fresh;
    return out;
}

void store_set_page_limit(store *st, size_t max_bytes)
{
    st->max_page_bytes = max_bytes;
}

int store_server_seq(store *st, uint64_t *out_seq)
{
    int64_t seq = 0;
    int out = store_meta_get(st, "server_seq", &seq);
    *out_seq = out == 0 ? (uint64_t)seq : 0;
    return out;
}
