#include "store_rows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char rows_get_sql[] =
    "SELECT seq, deleted, scope, versions, del_hlc, del_device, tomb, echo_device, echo_since,"
    " base_hlc, base_device FROM _outpost_rows WHERE table_id = ?1 AND pk = ?2";
static const char rows_put_sql[] =
    "INSERT INTO _outpost_rows(table_id, pk, seq, deleted, scope, versions, del_hlc,"
    " del_device, tomb, echo_device, echo_since, base_hlc, base_device)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    " ON CONFLICT(table_id, pk) DO UPDATE SET seq = excluded.seq, deleted = excluded.deleted,"
    " scope = excluded.scope, versions = excluded.versions, del_hlc = excluded.del_hlc,"
    " del_device = excluded.del_device, tomb = excluded.tomb,"
    " echo_device = excluded.echo_device, echo_since = excluded.echo_since,"
    " base_hlc = excluded.base_hlc, base_device = excluded.base_device";
static const char rows_add_sql[] =
    "INSERT INTO _outpost_rows(table_id, pk, seq, deleted, scope, versions, del_hlc,"
    " del_device, tomb, echo_device, echo_since, base_hlc, base_device)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    " ON CONFLICT(table_id, pk) DO NOTHING";

int row_meta_get(store *st, int64_t table_id, const store_bytes *pk, store_arena *arena,
                 row_meta *out)
{
    memset(out, 0, sizeof *out);
    out->scope.type = PROTO_NULL;
    int rc = store_new_rows_flush(st);
    if (rc != 0)
        return rc;
    if (st->rows_get == NULL)
        rc = db_prepare(st->conn, rows_get_sql, &st->rows_get);
    if (rc != STORE_OK)
        return store_fail_db(st, rc, "prepare row state");
    db_stmt *s = st->rows_get;
    rc = db_bind_int64(s, 1, table_id);
    if (rc == STORE_OK)
        rc = db_bind_blob_static(s, 2, pk->data, pk->len);
    if (rc == STORE_OK)
        rc = db_step(s);
    int out_rc = 0;
    if (rc == DB_ROW) {
        out->exists = true;
        out->seq = (uint64_t)db_column_int64(s, 0);
        out->deleted = db_column_int64(s, 1) != 0;
        out_rc = store_value_column_any(arena, s, 2, &out->scope);
        size_t nv = 0, nt = 0;
        const void *v = db_column_blob(s, 3, &nv);
        out->n_cols = (uint32_t)(nv / ROW_VERSION_BYTES);
        out->versions = nv > 0 ? store_arena_dup(arena, v, nv) : NULL;
        out->del_hlc = (uint64_t)db_column_int64(s, 4);
        out->del_device = db_column_int64(s, 5);
        const void *tomb = db_column_blob(s, 6, &nt);
        if (nt > 0) {
            out->tomb = store_arena_dup(arena, tomb, nt);
            out->tomb_len = nt;
            if (out->tomb == NULL)
                out_rc = STORE_ENOMEM;
        }
        out->echo_device = db_column_int64(s, 7);
        out->echo_since = (uint64_t)db_column_int64(s, 8);
        out->base_hlc = (uint64_t)db_column_int64(s, 9);
        out->base_device = db_column_int64(s, 10);
        if (out->versions == NULL && nv > 0)
            out_rc = STORE_ENOMEM;
        if (out_rc != 0)
            store_fail(st, out_rc, out_rc == STORE_ENOMEM ? "out of memory" : "row state damaged");
    } else if (rc != DB_DONE) {
        out_rc = store_fail_db(st, rc, "read row state");
    }
    db_reset(s);
    return out_rc;
}

static int meta_write(store *st, db_stmt **stmt, const char *sql, int64_t table_id,
                      const store_bytes *pk, const row_meta *meta)
{
    int rc = STORE_OK;
    if (*stmt == NULL)
        rc = db_prepare(st->conn, sql, stmt);
    if (rc != STORE_OK)
        return store_fail_db(st, rc, "prepare row state");
    db_stmt *s = *stmt;
    /* Every parameter is bound on every call (NULL where absent). */
    rc = db_bind_int64(s, 1, table_id);
    if (rc == STORE_OK)
        rc = db_bind_blob_static(s, 2, pk->data, pk->len);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 3, (int64_t)meta->seq);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 4, meta->deleted ? 1 : 0);
    if (rc == STORE_OK)
        rc = store_value_bind_any(s, 5, &meta->scope);
    if (rc == STORE_OK)
        rc = meta->versions != NULL && meta->n_cols > 0
                 ? db_bind_blob_static(s, 6, meta->versions, meta->n_cols * ROW_VERSION_BYTES)
                 : db_bind_null(s, 6);
    if (rc == STORE_OK)
        rc = meta->deleted ? db_bind_int64(s, 7, (int64_t)meta->del_hlc) : db_bind_null(s, 7);
    if (rc == STORE_OK)
        rc = meta->deleted ? db_bind_int64(s, 8, meta->del_device) : db_bind_null(s, 8);
    if (rc == STORE_OK)
        rc = meta->deleted && meta->tomb != NULL
                 ? db_bind_blob_static(s, 9, meta->tomb, meta->tomb_len)
                 : db_bind_null(s, 9);
    if (rc == STORE_OK)
        rc = meta->echo_device != 0 ? db_bind_int64(s, 10, meta->echo_device)
                                    : db_bind_null(s, 10);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 11, (int64_t)meta->echo_since);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 12, (int64_t)meta->base_hlc);
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 13, meta->base_device);
    if (rc == STORE_OK)
        rc = db_step(s);
    db_reset(s);
    if (rc != DB_DONE)
        return store_fail_db(st, rc, "write row state");
    return 0;
}

int row_meta_put(store *st, int64_t table_id, const store_bytes *pk, const row_meta *meta)
{
    int out = store_new_rows_flush(st);
    st->rows_top_table = 0; /* it may add a key */
    return out != 0 ? out : meta_write(st, &st->rows_put, rows_put_sql, table_id, pk, meta);
}

/*
 * New rows' states are queued and written STORE_NEW_ROWS_BATCH per INSERT: a bulk push of new
 * rows then pays one statement per batch instead of one per row. A key is known to be new,
 * without a lookup, when it sorts after the largest key the table has (read once, then kept up
 * to date by the queue); device keys are UUIDv7, time-ordered, so a device's new rows mostly
 * do. Any other key takes the one-statement INSERT ... ON CONFLICT DO NOTHING. Keys sort as
 * SQLite sorts blobs: bytes, then length.
 */
enum { STORE_NEW_ROWS_BATCH = 32, NEW_ROW_PARAMS = 7 }; /* no gaps: PostgreSQL types each */

struct store_row_entry {
    int64_t table_id, device;
    uint64_t seq, hlc;
    size_t pk_at, pk_len;
    proto_value scope; /* text and blob bytes at scope_at in new_row_bytes */
    size_t scope_at;
};

static int key_cmp(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
    int c = memcmp(a, b, na < nb ? na : nb);
    if (c != 0)
        return c;
    return na < nb ? -1 : na > nb ? 1 : 0;
}

/* The table's largest key into rows_top_key (length 0 when it has no rows). */
static int top_load(store *st, int64_t table_id)
{
    int rc = STORE_OK;
    if (st->rows_top == NULL)
        rc = db_prepare(st->conn,
                        "SELECT pk FROM _outpost_rows WHERE table_id = ?1"
                        " ORDER BY pk DESC LIMIT 1",
                        &st->rows_top);
    if (rc != STORE_OK)
        return store_fail_db(st, rc, "prepare row state");
    rc = db_bind_int64(st->rows_top, 1, table_id);
    if (rc == STORE_OK)
        rc = db_step(st->rows_top);
    int out = 0;
    st->rows_top_len = 0;
    if (rc == DB_ROW) {
        size_t n = 0;
        const void *top = db_column_blob(st->rows_top, 0, &n);
        out = store_buf_append(&st->rows_top_key, &st->rows_top_len, &st->rows_top_cap, top, n,
                               NULL);
    } else if (rc != DB_DONE) {
        out = store_fail_db(st, rc, "read row state");
    }
    db_reset(st->rows_top);
    if (out == STORE_ENOMEM)
        return store_fail(st, out, "out of memory");
    if (out == 0)
        st->rows_top_table = table_id;
    return out;
}

static int new_rows_prepare(store *st)
{
    if (st->rows_add_batch != NULL)
        return 0;
    char sql[STORE_NEW_ROWS_BATCH * 48 + 256];
    size_t at = (size_t)snprintf(sql, sizeof sql,
                                 "INSERT %sINTO _outpost_rows(table_id, pk, seq, deleted, scope,"
                                 " base_hlc, base_device, echo_device, echo_since) VALUES",
                                 store_insert_or_fail(st));
    for (int i = 0; i < STORE_NEW_ROWS_BATCH && at < sizeof sql; i++) {
        int p = i * NEW_ROW_PARAMS;
        at += (size_t)snprintf(sql + at, sizeof sql - at,
                               "%s(?%d, ?%d, ?%d, 0, ?%d, ?%d, ?%d, ?%d, 0)", i ? ", " : "",
                               p + 1, p + 2, p + 3, p + 4, p + 5, p + 6, p + 7);
    }
    if (at >= sizeof sql)
        return store_fail(st, STORE_EINVAL, "row state statement too long");
    int rc = db_prepare(st->conn, sql, &st->rows_add_batch);
    return rc == STORE_OK ? 0 : store_fail_db(st, rc, "prepare row state");
}

void store_new_rows_drop(store *st)
{
    st->n_new_rows = 0;
    st->new_row_bytes_len = 0;
    st->rows_top_table = 0;
}

int store_new_rows_flush(store *st)
{
    uint32_t done = 0;
    int out = 0;
    while (out == 0 && done < st->n_new_rows) {
        bool batch = st->n_new_rows - done >= STORE_NEW_ROWS_BATCH;
        uint32_t n = batch ? STORE_NEW_ROWS_BATCH : 1;
        if (!batch) {
            /* the remainder one by one, through the ordinary statement */
            const struct store_row_entry *e = &st->new_rows[done];
            row_meta m;
            memset(&m, 0, sizeof m);
            m.seq = e->seq;
            m.scope = e->scope;
            if (m.scope.type == PROTO_TEXT || m.scope.type == PROTO_BLOB)
                m.scope.u.b.p = st->new_row_bytes + e->scope_at;
            m.base_hlc = e->hlc;
            m.base_device = e->device;
            m.echo_device = e->device;
            store_bytes pk = {st->new_row_bytes + e->pk_at, e->pk_len, e->pk_len};
            out = meta_write(st, &st->rows_add, rows_add_sql, e->table_id, &pk, &m);
            if (out == 0 && db_changes(st->rows_add) != 1)
                out = store_fail(st, STORE_EIO, "row state: a new key was known already");
            done++;
            continue;
        }
        out = new_rows_prepare(st);
        if (out != 0)
            break;
        db_stmt *s = st->rows_add_batch;
        int rc = STORE_OK;
        for (uint32_t i = 0; i < n && rc == STORE_OK; i++) {
            const struct store_row_entry *e = &st->new_rows[done + i];
            int p = (int)i * NEW_ROW_PARAMS;
            proto_value scope = e->scope;
            if (scope.type == PROTO_TEXT || scope.type == PROTO_BLOB)
                scope.u.b.p = st->new_row_bytes + e->scope_at;
            rc = db_bind_int64(s, p + 1, e->table_id);
            if (rc == STORE_OK)
                rc = db_bind_blob_static(s, p + 2, st->new_row_bytes + e->pk_at, e->pk_len);
            if (rc == STORE_OK)
                rc = db_bind_int64(s, p + 3, (int64_t)e->seq);
            if (rc == STORE_OK)
                rc = store_value_bind_any(s, p + 4, &scope);
            if (rc == STORE_OK)
                rc = db_bind_int64(s, p + 5, (int64_t)e->hlc);
            if (rc == STORE_OK)
                rc = db_bind_int64(s, p + 6, e->device);
            if (rc == STORE_OK)
                rc = db_bind_int64(s, p + 7, e->device);
        }
        if (rc == STORE_OK)
            rc = db_step(s);
        db_reset(s); /* every parameter is bound again before the next step */
        if (rc != DB_DONE)
            out = store_fail_db(st, rc, "write row state");
        done += n;
    }
    st->n_new_rows = 0;
    st->new_row_bytes_len = 0;
    return out;
}

/* meta: a new live row, one version (base) for every column, echo_device the writer's. */
static int new_row_queue(store *st, int64_t table_id, const store_bytes *pk, const row_meta *meta)
{
    if (st->new_rows == NULL) {
        st->new_rows = malloc(STORE_NEW_ROWS_BATCH * sizeof *st->new_rows);
        if (st->new_rows == NULL)
            return store_fail(st, STORE_ENOMEM, "out of memory");
    }
    struct store_row_entry *e = &st->new_rows[st->n_new_rows];
    memset(e, 0, sizeof *e);
    e->table_id = table_id;
    e->device = meta->base_device;
    e->seq = meta->seq;
    e->hlc = meta->base_hlc;
    e->pk_len = pk->len;
    e->scope = meta->scope;
    int out = store_buf_append(&st->new_row_bytes, &st->new_row_bytes_len,
                               &st->new_row_bytes_cap, pk->data, pk->len, &e->pk_at);
    if (out == 0 && (e->scope.type == PROTO_TEXT || e->scope.type == PROTO_BLOB))
        out = store_buf_append(&st->new_row_bytes, &st->new_row_bytes_len,
                               &st->new_row_bytes_cap, e->scope.u.b.p, e->scope.u.b.n,
                               &e->scope_at);
    if (out == 0) { /* the new largest key */
        st->rows_top_len = 0;
        out = store_buf_append(&st->rows_top_key, &st->rows_top_len, &st->rows_top_cap, pk->data,
                               pk->len, NULL);
    }
    if (out != 0) {
        st->rows_top_table = 0;
        return store_fail(st, STORE_ENOMEM, "out of memory");
    }
    if (++st->n_new_rows == STORE_NEW_ROWS_BATCH)
        return store_new_rows_flush(st);
    return 0;
}

int row_meta_add(store *st, int64_t table_id, const store_bytes *pk, const row_meta *meta,
                 bool *out_added)
{
    *out_added = false;
    int out = 0;
    bool plain = !meta->deleted && meta->versions == NULL &&
                 meta->echo_device == meta->base_device && meta->echo_since == 0;
    if (plain && st->rows_top_table != table_id) {
        out = store_new_rows_flush(st);
        if (out == 0)
            out = top_load(st, table_id);
        if (out != 0)
            return out;
    }
    if (plain && (st->rows_top_len == 0 ||
                  key_cmp(pk->data, pk->len, st->rows_top_key, st->rows_top_len) > 0)) {
        *out_added = true;
        return new_row_queue(st, table_id, pk, meta);
    }
    out = store_new_rows_flush(st);
    if (out == 0)
        out = meta_write(st, &st->rows_add, rows_add_sql, table_id, pk, meta);
    if (out == 0)
        *out_added = db_changes(st->rows_add) > 0;
    /* A plain key here sorts before the largest; any other may be the largest now. */
    if (out == 0 && *out_added && !plain)
        st->rows_top_table = 0;
    return out;
}

int row_versions_resize(store_arena *arena, row_meta *meta, uint32_t n_cols)
{
    if (meta->n_cols >= n_cols && meta->versions != NULL)
        return 0;
    uint8_t *v = store_arena_alloc(arena, (size_t)n_cols * ROW_VERSION_BYTES);
    if (v == NULL)
        return STORE_ENOMEM;
    uint32_t have = meta->versions != NULL ? meta->n_cols : 0;
    if (have > 0)
        memcpy(v, meta->versions, (size_t)have * ROW_VERSION_BYTES);
    meta->versions = v;
    meta->n_cols = n_cols;
    for (uint32_t c = have; c < n_cols; c++)
        row_version_set(meta, c, meta->base_hlc, meta->base_device);
    return 0;
}

void row_version_get(const row_meta *meta, uint32_t col, uint64_t *out_hlc, int64_t *out_device)
{
    *out_hlc = meta->base_hlc;
    *out_device = meta->base_device;
    if (col >= meta->n_cols || meta->versions == NULL)
        return;
    const uint8_t *p = meta->versions + (size_t)col * ROW_VERSION_BYTES;
    uint64_t h = 0;
    uint32_t d = 0;
    for (int i = 0; i < 8; i++)
        h = (h << 8) | p[i];
    for (int i = 8; i < 12; i++)
        d = (d << 8) | p[i];
    *out_hlc = h;
    *out_device = (int64_t)d;
}

void row_version_set(row_meta *meta, uint32_t col, uint64_t hlc, int64_t device)
{
    if (col >= meta->n_cols)
        return;
    uint8_t *p = meta->versions + (size_t)col * ROW_VERSION_BYTES;
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(hlc & 0xffu);
        hlc >>= 8;
    }
    uint32_t d = (uint32_t)device;
    for (int i = 11; i >= 8; i--) {
        p[i] = (uint8_t)(d & 0xffu);
        d >>= 8;
    }
}

int row_read(store *st, store_table *t, const proto_value *pk, store_arena *arena, proto_value *out,
             bool *out_found)
{
    *out_found = false;
    int out_rc = store_table_prepare(st, t);
    if (out_rc != 0)
        return out_rc;
    db_stmt *s = t->sel_row;
    int rc = STORE_OK;
    for (uint32_t k = 0; k < t->n_pk && rc == STORE_OK; k++)
        rc = store_value_bind_any(s, (int)k + 1, &pk[k]);
    if (rc == STORE_OK)
        rc = db_step(s);
    if (rc == DB_ROW) {
        *out_found = true;
        for (uint32_t c = 0; c < t->n_cols && out_rc == 0; c++)
            out_rc = store_value_column_any(arena, s, (int)c, &out[c]);
        if (out_rc != 0)
            store_fail(st, out_rc, out_rc == STORE_ENOMEM ? "out of memory" : "row damaged");
    } else if (rc != DB_DONE) {
        out_rc = store_fail_db(st, rc, "read row");
    }
    db_reset(s);
    return out_rc;
}

/* SELECT v.column1, r.<every column> FROM (VALUES (0, ?1, ?2..), (1, ...) ..) AS v
 * JOIN <t> AS r ON r.<key 1> IS v.column2 AND ..: key i's row comes back tagged i. Each key
 * compares as in sel_row (r.k IS ?, the column's affinity applied to the parameter), and the
 * planner walks the ROW_READ_BATCH keys, each a lookup in the table's key index. */
typedef struct sql_text {
    uint8_t *buf;
    size_t len, cap;
    int out; /* the first failure: later additions do nothing */
} sql_text;

static void sql_cat(sql_text *q, const char *text)
{
    if (q->out == 0)
        q->out = store_buf_append(&q->buf, &q->len, &q->cap, text, strlen(text) + 1, NULL);
    if (q->out == 0)
        q->len--; /* kept NUL-terminated, the NUL overwritten by the next addition */
}

/* sql_cat of a schema name quoted for the store's engine, after prefix. */
static void sql_cat_name(store *st, sql_text *q, const char *prefix, const char *name)
{
    char quoted[512];
    if (q->out == 0)
        q->out = store_quote_name(st, quoted, sizeof quoted, name);
    sql_cat(q, prefix);
    sql_cat(q, quoted);
}

static int read_batch_prepare(store *st, store_table *t)
{
    if (t->sel_rows != NULL)
        return 0;
    sql_text q = {0};
    char part[64];
    sql_cat(&q, "SELECT v.column1");
    for (uint32_t c = 0; c < t->n_cols; c++)
        sql_cat_name(st, &q, ", r.", t->cols[c]);
    sql_cat(&q, " FROM (VALUES");
    int param = 1;
    for (uint32_t i = 0; i < ROW_READ_BATCH; i++) {
        snprintf(part, sizeof part, "%s(%u", i ? ", " : " ", i);
        sql_cat(&q, part);
        for (uint32_t k = 0; k < t->n_pk; k++) {
            snprintf(part, sizeof part, ", ?%d", param++);
            sql_cat(&q, part);
        }
        sql_cat(&q, ")");
    }
    sql_cat_name(st, &q, ") AS v JOIN ", t->name);
    sql_cat(&q, " AS r ON ");
    for (uint32_t k = 0; k < t->n_pk; k++) {
        sql_cat_name(st, &q, k ? " AND r." : "r.", t->cols[t->pk[k]]);
        snprintf(part, sizeof part, " IS v.column%u", k + 2);
        sql_cat(&q, part);
    }
    int out = q.out;
    if (out == 0) {
        int rc = db_prepare(st->conn, (const char *)q.buf, &t->sel_rows);
        if (rc != STORE_OK)
            out = store_fail_db(st, rc, "prepare row read");
    } else {
        out = store_fail(st, out, out == STORE_ENOMEM ? "out of memory" : "table %s: name too long",
                         t->name);
    }
    free(q.buf);
    return out;
}

int row_read_batch(store *st, store_table *t, uint32_t n, const proto_value *keys,
                   store_arena *arena, proto_value *out, bool *found)
{
    for (uint32_t i = 0; i < n; i++)
        found[i] = false;
    if (store_engine_of(st) == DB_POSTGRESQL || n == 1) {
        for (uint32_t i = 0; i < n; i++) {
            int rc = row_read(st, t, keys + (size_t)i * t->n_pk, arena, out + (size_t)i * t->n_cols,
                              &found[i]);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    int out_rc = read_batch_prepare(st, t);
    if (out_rc != 0)
        return out_rc;
    db_stmt *s = t->sel_rows;
    int rc = STORE_OK;
    /* keys beyond n bound NULL: whatever they find is not asked for */
    for (uint32_t i = 0; i < ROW_READ_BATCH && rc == STORE_OK; i++)
        for (uint32_t k = 0; k < t->n_pk && rc == STORE_OK; k++) {
            int idx = (int)(i * t->n_pk + k) + 1;
            rc = i < n ? store_value_bind_any(s, idx, &keys[(size_t)i * t->n_pk + k])
                       : db_bind_null(s, idx);
        }
    while (rc == STORE_OK && (rc = db_step(s)) == DB_ROW) {
        rc = STORE_OK;
        int64_t i = db_column_int64(s, 0);
        if (i < 0 || i >= (int64_t)n)
            continue;
        found[i] = true;
        proto_value *vals = out + (size_t)i * t->n_cols;
        for (uint32_t c = 0; c < t->n_cols && out_rc == 0; c++)
            out_rc = store_value_column_any(arena, s, (int)c + 1, &vals[c]);
        if (out_rc != 0) {
            store_fail(st, out_rc, out_rc == STORE_ENOMEM ? "out of memory" : "row damaged");
            break;
        }
    }
    if (out_rc == 0 && rc != DB_DONE)
        out_rc = store_fail_db(st, rc, "read rows");
    db_reset(s);
    return out_rc;
}

bool row_scope_allowed(const store_device *dev, const proto_value *scope)
{
    if (scope->type != PROTO_TEXT)
        return false;
    for (uint32_t i = 0; i < dev->n_teams; i++)
        if (store_value_is_text(scope, dev->teams[i]))
            return true;
    return false;
}

/* table name, keys and array headers of a table's first row in a message */
static size_t rowset_table_cost(const store_table *t)
{
    return 64 + strlen(t->name);
}

static rowset_table *rowset_table_for(rowset *rs, const store_table *t)
{
    for (uint32_t i = 0; i < rs->n_tables; i++)
        if (rs->tables[i].t == t)
            return &rs->tables[i];
    rowset_table *ts = realloc(rs->tables, (rs->n_tables + 1) * sizeof *ts);
    if (ts == NULL)
        return NULL;
    rs->tables = ts;
    rowset_table *rt = &ts[rs->n_tables++];
    memset(rt, 0, sizeof *rt);
    rt->t = t;
    rs->encoded_max += rowset_table_cost(t);
    return rt;
}

static int append_values(proto_value **arr, uint32_t *n, uint32_t *cap, const proto_value *vals,
                         uint32_t width)
{
    if (*n == *cap) {
        uint32_t ncap = *cap ? *cap * 2 : 16;
        proto_value *a = realloc(*arr, (size_t)ncap * width * sizeof *a);
        if (a == NULL)
            return STORE_ENOMEM;
        *arr = a;
        *cap = ncap;
    }
    memcpy(*arr + (size_t)*n * width, vals, width * sizeof *vals);
    (*n)++;
    return 0;
}

size_t rowset_row_cost(const store_table *t, const proto_value *vals, uint32_t n)
{
    size_t cost = 8 + strlen(t->name) / 8; /* per-row framing, generously */
    for (uint32_t i = 0; i < n; i++)
        cost += store_value_encoded_max(&vals[i]);
    return cost;
}

size_t rowset_row_room(const store_table *t, size_t max_bytes)
{
    size_t fixed = ROWSET_MESSAGE_OVERHEAD + rowset_table_cost(t);
    return max_bytes > fixed ? max_bytes - fixed : 0;
}

int rowset_add_row(rowset *rs, const store_table *t, const proto_value *vals)
{
    rowset_table *rt = rowset_table_for(rs, t);
    if (rt == NULL || append_values(&rt->rows, &rt->n_rows, &rt->cap_rows, vals, t->n_cols) != 0)
        return STORE_ENOMEM;
    rs->encoded_max += rowset_row_cost(t, vals, t->n_cols);
    return 0;
}

int rowset_add_key(rowset *rs, const store_table *t, enum rowset_kind kind, const proto_value *pk)
{
    rowset_table *rt = rowset_table_for(rs, t);
    if (rt == NULL)
        return STORE_ENOMEM;
    int rc = kind == ROWSET_DELETED
                 ? append_values(&rt->deleted, &rt->n_deleted, &rt->cap_deleted, pk, t->n_pk)
                 : append_values(&rt->removed, &rt->n_removed, &rt->cap_removed, pk, t->n_pk);
    if (rc != 0)
        return rc;
    rs->encoded_max += rowset_row_cost(t, pk, t->n_pk);
    return 0;
}

int rowset_export(rowset *rs)
{
    free(rs->out);
    rs->out = calloc(rs->n_tables ? rs->n_tables : 1, sizeof *rs->out);
    if (rs->out == NULL)
        return STORE_ENOMEM;
    for (uint32_t i = 0; i < rs->n_tables; i++) {
        const rowset_table *rt = &rs->tables[i];
        proto_table_rows *o = &rs->out[i];
        o->table = rt->t->name;
        o->n_columns = rt->t->n_cols;
        o->n_rows = rt->n_rows;
        o->rows = rt->rows;
        o->n_pk = rt->t->n_pk;
        o->n_deleted = rt->n_deleted;
        o->deleted = rt->deleted;
        o->n_removed = rt->n_removed;
        o->removed = rt->removed;
    }
    return 0;
}

void rowset_free(rowset *rs)
{
    if (rs == NULL)
        return;
    for (uint32_t i = 0; i < rs->n_tables; i++) {
        free(rs->tables[i].rows);
        free(rs->tables[i].deleted);
        free(rs->tables[i].removed);
    }
    free(rs->tables);
    free(rs->out);
    memset(rs, 0, sizeof *rs);
}
