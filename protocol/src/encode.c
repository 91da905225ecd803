/*
 * Encoding: typed messages to MessagePack through msgpack-c's packer.
 *
 * The encoder validates as it goes and refuses (PROTO_EINVAL) anything the decoder would
 * refuse, so a message this library encodes always decodes. The packer writes into a sink that
 * either appends to a proto_buf or only counts bytes; counting gives exact sizes for chunking.
 * Packer return values are not checked one by one: the sink remembers a failed append and the
 * message is abandoned at the end.
 */
#include "proto_internal.h"

#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

typedef struct enc_sink {
    proto_buf *buf; /* NULL: only count */
    size_t counted;
    bool nomem;
} enc_sink;

typedef struct enc {
    msgpack_packer pk;
    enc_sink sink;
} enc;

static int sink_reserve(proto_buf *buf, size_t extra)
{
    if (buf->cap - buf->len >= extra)
        return PROTO_OK;
    if (extra > SIZE_MAX / 2 - buf->len)
        return PROTO_ENOMEM;
    size_t cap = buf->cap > 0 ? buf->cap : 256;
    while (cap - buf->len < extra)
        cap *= 2;
    uint8_t *data = realloc(buf->data, cap);
    if (data == NULL)
        return PROTO_ENOMEM;
    buf->data = data;
    buf->cap = cap;
    return PROTO_OK;
}

static int sink_write(void *data, const char *bytes, size_t n_bytes)
{
    enc_sink *sink = data;
    if (sink->nomem)
        return -1;
    if (sink->buf == NULL) {
        sink->counted += n_bytes;
        return 0;
    }
    if (sink_reserve(sink->buf, n_bytes) != PROTO_OK) {
        sink->nomem = true;
        return -1;
    }
    memcpy(sink->buf->data + sink->buf->len, bytes, n_bytes);
    sink->buf->len += n_bytes;
    return 0;
}

static void enc_init(enc *e, proto_buf *buf)
{
    e->sink = (enc_sink){.buf = buf};
    msgpack_packer_init(&e->pk, &e->sink, sink_write);
}

/* ---- scalars ------------------------------------------------------------------------------ */

static void put_str(enc *e, const char *s, size_t n)
{
    msgpack_pack_str_with_body(&e->pk, s, n);
}

static void put_key(enc *e, const char *key)
{
    put_str(e, key, strlen(key));
}

static void put_uint(enc *e, const char *key, uint64_t v)
{
    put_key(e, key);
    msgpack_pack_uint64(&e->pk, v);
}

static void put_bool(enc *e, const char *key, bool v)
{
    put_key(e, key);
    if (v)
        msgpack_pack_true(&e->pk);
    else
        msgpack_pack_false(&e->pk);
}

static int put_text(enc *e, const char *key, const char *s)
{
    if (s == NULL)
        return PROTO_EINVAL;
    put_key(e, key);
    put_str(e, s, strlen(s));
    return PROTO_OK;
}

static void put_secret(enc *e, const uint8_t secret[PROTO_SECRET_BYTES])
{
    put_key(e, KEY_SECRET);
    msgpack_pack_bin_with_body(&e->pk, secret, PROTO_SECRET_BYTES);
}

static int put_value(enc *e, const proto_value *v)
{
    switch (v->type) {
    case PROTO_NULL:
        msgpack_pack_nil(&e->pk);
        return PROTO_OK;
    case PROTO_INT:
        msgpack_pack_int64(&e->pk, v->u.i);
        return PROTO_OK;
    case PROTO_REAL:
        msgpack_pack_double(&e->pk, v->u.r);
        return PROTO_OK;
    case PROTO_TEXT:
    case PROTO_BLOB:
        if (v->u.b.n > 0 && v->u.b.p == NULL)
            return PROTO_EINVAL;
        if (v->type == PROTO_TEXT)
            msgpack_pack_str_with_body(&e->pk, v->u.b.p, v->u.b.n);
        else
            msgpack_pack_bin_with_body(&e->pk, v->u.b.p, v->u.b.n);
        return PROTO_OK;
    case PROTO_UNDEF:
        break;
    }
    return PROTO_EINVAL; /* UNDEF has no encoding: it is the absence of a value */
}

/* An array of n values; n > 0 needs values. */
static int put_values(enc *e, const proto_value *values, size_t n)
{
    if (n > 0 && values == NULL)
        return PROTO_EINVAL;
    msgpack_pack_array(&e->pk, n);
    for (size_t i = 0; i < n; i++) {
        int rc = put_value(e, &values[i]);
        if (rc != PROTO_OK)
            return rc;
    }
    return PROTO_OK;
}

/* n_rows arrays of width values each, from a row-major block. */
static int put_value_rows(enc *e, const proto_value *values, uint32_t n_rows, uint32_t width)
{
    if (n_rows > 0 && values == NULL)
        return PROTO_EINVAL;
    msgpack_pack_array(&e->pk, n_rows);
    for (uint32_t r = 0; r < n_rows; r++) {
        int rc = put_values(e, values + (size_t)r * width, width);
        if (rc != PROTO_OK)
            return rc;
    }
    return PROTO_OK;
}

/* ---- row changes -------------------------------------------------------------------------- */

/* INSERT and DELETE carry a dense list: column i at position i, every one with the one side
 * (new for INSERT, old for DELETE) defined and the other undefined. */
static int put_dense_change(enc *e, const proto_change *change, bool use_new)
{
    msgpack_pack_array(&e->pk, 2);
    msgpack_pack_uint32(&e->pk, (uint32_t)change->op);
    msgpack_pack_array(&e->pk, change->n_cols);
    for (uint32_t i = 0; i < change->n_cols; i++) {
        const proto_col *col = &change->cols[i];
        const proto_value *carried = use_new ? &col->new_val : &col->old_val;
        const proto_value *other = use_new ? &col->old_val : &col->new_val;
        if (col->idx != i || other->type != PROTO_UNDEF)
            return PROTO_EINVAL;
        int rc = put_value(e, carried);
        if (rc != PROTO_OK)
            return rc;
    }
    return PROTO_OK;
}

/* The defined side of an UPDATE's columns as a map {idx: value}, ascending idx. */
static int put_update_side(enc *e, const proto_change *change, bool use_new)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < change->n_cols; i++) {
        const proto_col *col = &change->cols[i];
        n += (use_new ? col->new_val.type : col->old_val.type) != PROTO_UNDEF;
    }
    msgpack_pack_map(&e->pk, n);
    for (uint32_t i = 0; i < change->n_cols; i++) {
        const proto_col *col = &change->cols[i];
        const proto_value *v = use_new ? &col->new_val : &col->old_val;
        if (v->type == PROTO_UNDEF)
            continue;
        msgpack_pack_uint32(&e->pk, col->idx);
        int rc = put_value(e, v);
        if (rc != PROTO_OK)
            return rc;
    }
    return PROTO_OK;
}

static int put_update_change(enc *e, const proto_change *change)
{
    if (change->n_cols == 0)
        return PROTO_EINVAL;
    for (uint32_t i = 0; i < change->n_cols; i++) {
        const proto_col *col = &change->cols[i];
        if (i > 0 && col->idx <= change->cols[i - 1].idx)
            return PROTO_EINVAL;
        if (col->old_val.type == PROTO_UNDEF && col->new_val.type == PROTO_UNDEF)
            return PROTO_EINVAL;
    }
    msgpack_pack_array(&e->pk, 3);
    msgpack_pack_uint32(&e->pk, (uint32_t)PROTO_OP_UPDATE);
    int rc = put_update_side(e, change, false);
    if (rc != PROTO_OK)
        return rc;
    return put_update_side(e, change, true);
}

static int put_change(enc *e, const proto_change *change)
{
    if (change->n_cols > 0 && change->cols == NULL)
        return PROTO_EINVAL;
    switch (change->op) {
    case PROTO_OP_INSERT: return put_dense_change(e, change, true);
    case PROTO_OP_DELETE: return put_dense_change(e, change, false);
    case PROTO_OP_UPDATE: return put_update_change(e, change);
    }
    return PROTO_EINVAL;
}

/* Checks what put_change cannot see: the columns fit the table. */
static bool change_fits_table(const proto_change *change, uint32_t n_columns)
{
    if (change->op == PROTO_OP_INSERT || change->op == PROTO_OP_DELETE)
        return change->n_cols == n_columns;
    return change->n_cols == 0 || change->cols == NULL ||
           change->cols[change->n_cols - 1].idx < n_columns;
}

static int put_table_changes(enc *e, const proto_table_changes *t)
{
    if (t->n_columns == 0 || (t->n_changes > 0 && t->changes == NULL))
        return PROTO_EINVAL;
    msgpack_pack_map(&e->pk, 3);
    int rc = put_text(e, KEY_NAME, t->table);
    if (rc != PROTO_OK)
        return rc;
    put_uint(e, KEY_NCOL, t->n_columns);
    put_key(e, KEY_CHANGES);
    msgpack_pack_array(&e->pk, t->n_changes);
    for (uint32_t i = 0; i < t->n_changes; i++) {
        if (!change_fits_table(&t->changes[i], t->n_columns))
            return PROTO_EINVAL;
        rc = put_change(e, &t->changes[i]);
        if (rc != PROTO_OK)
            return rc;
    }
    return PROTO_OK;
}

/* ---- tables of rows, schema, conflicts ----------------------------------------------------- */

static int put_table_rows(enc *e, const proto_table_rows *t)
{
    if (t->n_columns == 0 || t->n_pk == 0 || t->n_pk > t->n_columns)
        return PROTO_EINVAL;
    msgpack_pack_map(&e->pk, 6);
    int rc = put_text(e, KEY_NAME, t->table);
    if (rc != PROTO_OK)
        return rc;
    put_uint(e, KEY_NCOL, t->n_columns);
    put_uint(e, KEY_NPK, t->n_pk);
    put_key(e, KEY_ROWS);
    rc = put_value_rows(e, t->rows, t->n_rows, t->n_columns);
    if (rc != PROTO_OK)
        return rc;
    put_key(e, KEY_DELETED);
    rc = put_value_rows(e, t->deleted, t->n_deleted, t->n_pk);
    if (rc != PROTO_OK)
        return rc;
    put_key(e, KEY_REMOVED);
    return put_value_rows(e, t->removed, t->n_removed, t->n_pk);
}

static int put_table_rows_list(enc *e, const proto_table_rows *tables, uint32_t n)
{
    if (n > 0 && tables == NULL)
        return PROTO_EINVAL;
    put_key(e, KEY_TABLES);
    msgpack_pack_array(&e->pk, n);
    for (uint32_t i = 0; i < n; i++) {
        int rc = put_table_rows(e, &tables[i]);
        if (rc != PROTO_OK)
            return rc;
    }
    return PROTO_OK;
}

static int put_schema_table(enc *e, const proto_schema_table *t)
{
    if (t->n_columns == 0 || t->columns == NULL || t->n_pk == 0 || t->pk == NULL ||
        (uint32_t)t->policy > PROTO_POLICY_DEVICE_WINS)
        return PROTO_EINVAL;
    msgpack_pack_map(&e->pk, 6);
    int rc = put_text(e, KEY_NAME, t->name);
    if (rc == PROTO_OK)
        rc = put_text(e, KEY_SQL, t->create_sql);
    if (rc == PROTO_OK)
        rc = put_text(e, KEY_SCOPE, t->scope_col);
    if (rc != PROTO_OK)
        return rc;
    put_uint(e, KEY_POLICY, (uint64_t)t->policy);
    put_key(e, KEY_COLS);
    msgpack_pack_array(&e->pk, t->n_columns);
    for (uint32_t i = 0; i < t->n_columns; i++) {
        if (t->columns[i] == NULL)
            return PROTO_EINVAL;
        put_str(e, t->columns[i], strlen(t->columns[i]));
    }
    put_key(e, KEY_PK);
    msgpack_pack_array(&e->pk, t->n_pk);
    for (uint32_t i = 0; i < t->n_pk; i++) {
        if (t->pk[i] >= t->n_columns)
            return PROTO_EINVAL;
        msgpack_pack_uint32(&e->pk, t->pk[i]);
    }
    return PROTO_OK;
}

/* The schema's fields, without the map header (SCHEMA adds "t" to the same map). */
static int put_schema_fields(enc *e, const proto_schema *s)
{
    if (s->n_tables > 0 && s->tables == NULL)
        return PROTO_EINVAL;
    put_uint(e, KEY_SCHEMA_VERSION, s->version);
    put_key(e, KEY_TABLES);
    msgpack_pack_array(&e->pk, s->n_tables);
    for (uint32_t i = 0; i < s->n_tables; i++) {
        int rc = put_schema_table(e, &s->tables[i]);
        if (rc != PROTO_OK)
            return rc;
    }
    int rc = s->forms != NULL ? put_text(e, KEY_FORMS, s->forms) : PROTO_OK;
    if (rc == PROTO_OK && s->watch_json != NULL)
        rc = put_text(e, KEY_WATCH, s->watch_json);
    return rc;
}

static int put_schema_field(enc *e, const proto_schema *s)
{
    put_key(e, KEY_SCHEMA);
    msgpack_pack_map(&e->pk, 2u + (s->forms != NULL) + (s->watch_json != NULL));
    return put_schema_fields(e, s);
}

static int put_pk(enc *e, const proto_value *pk, uint32_t n_pk)
{
    if (n_pk == 0)
        return PROTO_EINVAL;
    put_key(e, KEY_PK);
    return put_values(e, pk, n_pk);
}

static int put_conflict(enc *e, const proto_conflict *c)
{
    if (c->col < -1 || c->kind < PROTO_CONFLICT_DATA || c->kind > PROTO_CONFLICT_CONSTRAINT)
        return PROTO_EINVAL;
    bool has_mine = c->mine.type != PROTO_UNDEF;
    bool has_winner = c->winner.type != PROTO_UNDEF;
    msgpack_pack_map(&e->pk, 4u + has_mine + has_winner);
    int rc = put_text(e, KEY_TABLE, c->table);
    if (rc == PROTO_OK)
        rc = put_pk(e, c->pk, c->n_pk);
    if (rc != PROTO_OK)
        return rc;
    put_key(e, KEY_COL);
    msgpack_pack_int32(&e->pk, c->col);
    put_uint(e, KEY_KIND, (uint64_t)c->kind);
    if (has_mine) {
        put_key(e, KEY_MINE);
        rc = put_value(e, &c->mine);
    }
    if (rc == PROTO_OK && has_winner) {
        put_key(e, KEY_WINNER);
        rc = put_value(e, &c->winner);
    }
    return rc;
}

static int put_reject_row(enc *e, const proto_reject_row *r)
{
    msgpack_pack_map(&e->pk, 4);
    int rc = put_text(e, KEY_TABLE, r->table);
    if (rc == PROTO_OK)
        rc = put_pk(e, r->pk, r->n_pk);
    if (rc != PROTO_OK)
        return rc;
    put_uint(e, KEY_CODE, r->code);
    return put_text(e, KEY_MESSAGE, r->message);
}

/* ---- messages ----------------------------------------------------------------------------- */

/* Each starts the top-level map with its field count and "t", then writes its fields. */
static void put_header(enc *e, proto_msg_type type, uint32_t n_fields)
{
    msgpack_pack_map(&e->pk, n_fields + 1u);
    put_uint(e, KEY_TYPE, (uint64_t)type);
}

static int put_hello(enc *e, const proto_hello *m)
{
    put_header(e, PROTO_MSG_HELLO,
               6u + (m->app != NULL) + (m->last_error != NULL) + (m->compress != 0) +
                   m->has_acked + (m->store_id != NULL));
    put_uint(e, KEY_VERSION, m->version);
    int rc = put_text(e, KEY_DEVICE, m->device_id);
    if (rc != PROTO_OK)
        return rc;
    put_secret(e, m->secret);
    put_uint(e, KEY_SCHEMA_VERSION, m->schema_version);
    put_uint(e, KEY_CURSOR, m->cursor);
    put_uint(e, KEY_OUTBOX, m->outbox_count);
    if (m->app && (rc = put_text(e, KEY_APP, m->app)) != PROTO_OK)
        return rc;
    if (m->last_error && (rc = put_text(e, KEY_LAST_ERROR, m->last_error)) != PROTO_OK)
        return rc;
    if (m->compress != 0)
        put_uint(e, KEY_COMPRESS, m->compress);
    if (m->has_acked)
        put_uint(e, KEY_ACKED, m->acked);
    if (m->store_id && (rc = put_text(e, KEY_STORE, m->store_id)) != PROTO_OK)
        return rc;
    return PROTO_OK;
}

static int put_teams(enc *e, const proto_teams *t)
{
    if (t->n > 0 && t->names == NULL)
        return PROTO_EINVAL;
    put_key(e, KEY_TEAMS);
    msgpack_pack_array(&e->pk, t->n);
    for (uint32_t i = 0; i < t->n; i++) {
        if (t->names[i] == NULL)
            return PROTO_EINVAL;
        put_str(e, t->names[i], strlen(t->names[i]));
    }
    return PROTO_OK;
}

static int put_store(enc *e, const proto_store_identity *s)
{
    int rc = put_text(e, KEY_STORE, s->id);
    if (rc == PROTO_OK)
        put_uint(e, KEY_EPOCH, s->epoch);
    return rc;
}

static void put_limits(enc *e, const proto_session_limits *l)
{
    put_key(e, KEY_LIMITS);
    msgpack_pack_map(&e->pk, 5);
    put_uint(e, KEY_LIM_MESSAGE, l->max_message_bytes);
    put_uint(e, KEY_LIM_TRANSACTION, l->max_transaction_bytes);
    put_uint(e, KEY_LIM_MESSAGE_TIMEOUT, l->message_timeout_ms);
    put_uint(e, KEY_LIM_IDLE, l->idle_timeout_ms);
    put_uint(e, KEY_LIM_PAGE, l->max_page_rows);
}

static int put_welcome(enc *e, const proto_welcome *m)
{
    put_header(e, PROTO_MSG_WELCOME,
               5u + m->has_schema + m->has_teams + 2u * m->has_store + m->has_limits +
                   (m->compress != 0) + (m->worker_id != NULL));
    put_uint(e, KEY_VERSION, m->version);
    put_uint(e, KEY_SCHEMA_VERSION, m->schema_version);
    put_uint(e, KEY_ACKED, m->acked_seq);
    put_uint(e, KEY_SERVER_SEQ, m->server_seq);
    put_uint(e, KEY_NOW, m->server_time_ms);
    int rc = m->has_schema ? put_schema_field(e, &m->schema) : PROTO_OK;
    if (rc == PROTO_OK && m->has_teams)
        rc = put_teams(e, &m->teams);
    if (rc == PROTO_OK && m->has_store)
        rc = put_store(e, &m->store);
    if (rc == PROTO_OK && m->has_limits)
        put_limits(e, &m->limits);
    if (rc == PROTO_OK && m->compress != 0)
        put_uint(e, KEY_COMPRESS, m->compress);
    if (rc == PROTO_OK && m->worker_id != NULL)
        rc = put_text(e, KEY_WORKER, m->worker_id);
    return rc;
}

static int put_enroll(enc *e, const proto_enroll *m)
{
    put_header(e, PROTO_MSG_ENROLL, m->device_name != NULL ? 3u : 2u);
    put_uint(e, KEY_VERSION, m->version);
    int rc = put_text(e, KEY_CODE, m->code);
    if (rc == PROTO_OK && m->device_name != NULL)
        rc = put_text(e, KEY_NAME, m->device_name);
    return rc;
}

static int put_enrolled(enc *e, const proto_enrolled *m)
{
    put_header(e, PROTO_MSG_ENROLLED,
               4u + m->has_teams + 2u * m->has_store + (m->worker_id != NULL));
    int rc = put_text(e, KEY_DEVICE, m->device_id);
    if (rc != PROTO_OK)
        return rc;
    put_secret(e, m->secret);
    rc = put_text(e, KEY_CA, m->ca_pem);
    if (rc == PROTO_OK)
        rc = put_schema_field(e, &m->schema);
    if (rc == PROTO_OK && m->has_teams)
        rc = put_teams(e, &m->teams);
    if (rc == PROTO_OK && m->has_store)
        rc = put_store(e, &m->store);
    if (rc == PROTO_OK && m->worker_id != NULL)
        rc = put_text(e, KEY_WORKER, m->worker_id);
    return rc;
}

static int put_schema_msg(enc *e, const proto_schema *m)
{
    put_header(e, PROTO_MSG_SCHEMA, 2u + (m->forms != NULL) + (m->watch_json != NULL));
    return put_schema_fields(e, m);
}

static int put_push(enc *e, const proto_push *m)
{
    if (m->n_tables > 0 && m->tables == NULL)
        return PROTO_EINVAL;
    put_header(e, PROTO_MSG_PUSH, 6);
    put_uint(e, KEY_SEQ, m->seq);
    put_uint(e, KEY_HLC, m->hlc);
    put_uint(e, KEY_SCHEMA_VERSION, m->schema_version);
    put_uint(e, KEY_CHUNK, m->chunk);
    put_bool(e, KEY_MORE, m->more);
    put_key(e, KEY_TABLES);
    msgpack_pack_array(&e->pk, m->n_tables);
    for (uint32_t i = 0; i < m->n_tables; i++) {
        int rc = put_table_changes(e, &m->tables[i]);
        if (rc != PROTO_OK)
            return rc;
    }
    return PROTO_OK;
}

static int put_ack(enc *e, const proto_ack *m)
{
    if (m->n_conflicts > 0 && m->conflicts == NULL)
        return PROTO_EINVAL;
    put_header(e, PROTO_MSG_ACK, m->n_unlisted > 0 ? 5 : 4);
    put_uint(e, KEY_SEQ, m->seq);
    put_uint(e, KEY_SERVER_SEQ, m->server_seq);
    put_bool(e, KEY_CLAMPED, m->hlc_clamped);
    put_key(e, KEY_CONFLICTS);
    msgpack_pack_array(&e->pk, m->n_conflicts);
    for (uint32_t i = 0; i < m->n_conflicts; i++) {
        int rc = put_conflict(e, &m->conflicts[i]);
        if (rc != PROTO_OK)
            return rc;
    }
    if (m->n_unlisted > 0)
        put_uint(e, KEY_CONFLICTS_MORE, m->n_unlisted);
    return PROTO_OK;
}

static int put_pull(enc *e, const proto_pull *m)
{
    put_header(e, PROTO_MSG_PULL, 2u + m->has_seen);
    put_uint(e, KEY_CURSOR, m->cursor);
    put_uint(e, KEY_LIMIT, m->limit);
    if (m->has_seen)
        put_uint(e, KEY_SEEN, m->seen);
    return PROTO_OK;
}

static int put_rows(enc *e, const proto_rows *m)
{
    put_header(e, PROTO_MSG_ROWS, 3);
    put_uint(e, KEY_CURSOR, m->cursor);
    put_bool(e, KEY_MORE, m->more);
    return put_table_rows_list(e, m->tables, m->n_tables);
}

static int put_notify(enc *e, const proto_notify *m)
{
    put_header(e, PROTO_MSG_NOTIFY, 1);
    put_uint(e, KEY_SERVER_SEQ, m->server_seq);
    return PROTO_OK;
}

static int put_reject(enc *e, const proto_reject *m)
{
    if (m->n_rows > 0 && m->rows == NULL)
        return PROTO_EINVAL;
    put_header(e, PROTO_MSG_REJECT, 3);
    put_uint(e, KEY_SEQ, m->seq);
    put_key(e, KEY_ROWS);
    msgpack_pack_array(&e->pk, m->n_rows);
    for (uint32_t i = 0; i < m->n_rows; i++) {
        int rc = put_reject_row(e, &m->rows[i]);
        if (rc != PROTO_OK)
            return rc;
    }
    return put_table_rows_list(e, m->tables, m->n_tables);
}

static int put_error(enc *e, const proto_error *m)
{
    put_header(e, PROTO_MSG_ERROR, 3);
    put_uint(e, KEY_CODE, m->code);
    int rc = put_text(e, KEY_MESSAGE, m->message);
    if (rc != PROTO_OK)
        return rc;
    put_bool(e, KEY_RETRY, m->retryable);
    return PROTO_OK;
}

static int put_wipe(enc *e, const proto_wipe *m)
{
    put_header(e, PROTO_MSG_WIPE, 1);
    return put_text(e, KEY_REASON, m->reason);
}

static int put_msg(enc *e, const proto_msg *msg)
{
    switch (msg->type) {
    case PROTO_MSG_HELLO: return put_hello(e, &msg->u.hello);
    case PROTO_MSG_WELCOME: return put_welcome(e, &msg->u.welcome);
    case PROTO_MSG_ENROLL: return put_enroll(e, &msg->u.enroll);
    case PROTO_MSG_ENROLLED: return put_enrolled(e, &msg->u.enrolled);
    case PROTO_MSG_SCHEMA: return put_schema_msg(e, &msg->u.schema);
    case PROTO_MSG_PUSH: return put_push(e, &msg->u.push);
    case PROTO_MSG_ACK: return put_ack(e, &msg->u.ack);
    case PROTO_MSG_PULL: return put_pull(e, &msg->u.pull);
    case PROTO_MSG_ROWS: return put_rows(e, &msg->u.rows);
    case PROTO_MSG_NOTIFY: return put_notify(e, &msg->u.notify);
    case PROTO_MSG_REJECT: return put_reject(e, &msg->u.reject);
    case PROTO_MSG_ERROR: return put_error(e, &msg->u.error);
    case PROTO_MSG_WIPE: return put_wipe(e, &msg->u.wipe);
    }
    return PROTO_EINVAL;
}

int proto_encode(const proto_msg *msg, proto_buf *out)
{
    if (msg == NULL || out == NULL)
        return PROTO_EINVAL;
    size_t old_len = out->len;
    enc e;
    enc_init(&e, out);
    int rc = put_msg(&e, msg);
    if (rc == PROTO_OK && e.sink.nomem)
        rc = PROTO_ENOMEM;
    if (rc != PROTO_OK)
        out->len = old_len;
    return rc;
}

size_t proto_encoded_size(const proto_msg *msg)
{
    if (msg == NULL)
        return 0;
    enc e;
    enc_init(&e, NULL);
    return put_msg(&e, msg) == PROTO_OK ? e.sink.counted : 0;
}

size_t proto_change_encoded_size(const proto_change *change)
{
    if (change == NULL)
        return 0;
    enc e;
    enc_init(&e, NULL);
    return put_change(&e, change) == PROTO_OK ? e.sink.counted : 0;
}
