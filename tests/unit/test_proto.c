/*
 * Wire protocol: round trips of every message, every class of malformed input, and the bound
 * on what a decode allocates.
 */
#include <malloc.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "outpost/proto.h"
#include "proto_examples.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_UNDER_ASAN 1
#endif
#endif
#ifndef TEST_UNDER_ASAN
#define TEST_UNDER_ASAN 0
#endif

#if TEST_UNDER_ASAN
/* From <sanitizer/allocator_interface.h>, which GCC does not install; its runtime has them. */
size_t __sanitizer_get_allocated_size(const volatile void *p);
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
#endif

/* ---- allocation accounting ------------------------------------------------------------------
 * Plain builds interpose malloc and friends on glibc's own (__libc_*); sanitizer builds, whose
 * runtime owns malloc, use its hook interface instead. Both feed the same counters, which only
 * move while a measurement is open. */

typedef struct alloc_stats {
    int counting;
    long long live; /* bytes allocated minus bytes freed since the window opened */
    long long peak;
    long long calls;
} alloc_stats;

static alloc_stats g_alloc;

static void note_alloc(size_t n)
{
    if (!g_alloc.counting)
        return;
    g_alloc.calls++;
    g_alloc.live += (long long)n;
    if (g_alloc.live > g_alloc.peak)
        g_alloc.peak = g_alloc.live;
}

static void note_free(size_t n)
{
    if (g_alloc.counting)
        g_alloc.live -= (long long)n;
}

#if TEST_UNDER_ASAN
static void on_malloc_hook(const volatile void *ptr, size_t size)
{
    (void)ptr;
    note_alloc(size);
}

static void on_free_hook(const volatile void *ptr)
{
    note_free(__sanitizer_get_allocated_size(ptr));
}

static void alloc_hooks_install(void)
{
    __sanitizer_install_malloc_and_free_hooks(on_malloc_hook, on_free_hook);
}
#else
/* Exported despite the project's hidden default visibility, so that shared libraries
 * (msgpack-c) resolve malloc to these too. */
#define INTERPOSE __attribute__((visibility("default")))

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);

INTERPOSE void *malloc(size_t size)
{
    void *p = __libc_malloc(size);
    if (p != NULL)
        note_alloc(malloc_usable_size(p));
    return p;
}

INTERPOSE void *calloc(size_t count, size_t size)
{
    void *p = __libc_calloc(count, size);
    if (p != NULL)
        note_alloc(malloc_usable_size(p));
    return p;
}

INTERPOSE void *realloc(void *ptr, size_t size)
{
    size_t old = ptr != NULL ? malloc_usable_size(ptr) : 0;
    void *p = __libc_realloc(ptr, size);
    if (p != NULL) {
        note_free(old);
        note_alloc(malloc_usable_size(p));
    } else if (size == 0) {
        note_free(old); /* glibc's realloc(p, 0) frees p */
    }
    return p;
}

INTERPOSE void free(void *ptr)
{
    if (ptr != NULL)
        note_free(malloc_usable_size(ptr));
    __libc_free(ptr);
}

static void alloc_hooks_install(void)
{
}
#endif

static void alloc_window_open(void)
{
    g_alloc = (alloc_stats){.counting = 1};
}

static void alloc_window_close(void)
{
    g_alloc.counting = 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct bytes {
    uint8_t *data;
    size_t len;
} bytes;

static proto_buf encode_ok(const proto_msg *msg)
{
    proto_buf buf = {0};
    assert_int_equal(proto_encode(msg, &buf), PROTO_OK);
    assert_true(buf.len > 0);
    return buf;
}

static int decode_rc(const uint8_t *data, size_t n, char *err, size_t err_size)
{
    proto_msg *msg = (proto_msg *)1;
    int rc = proto_decode(data, n, NULL, &msg, err, err_size);
    if (rc == PROTO_OK)
        proto_msg_free(msg);
    else
        assert_null(msg);
    return rc;
}

/* Decodes data and expects rc, with an error text that mentions needle. */
static void expect_decode_error(const uint8_t *data, size_t n, int rc, const char *needle)
{
    char err[256] = "";
    int got = decode_rc(data, n, err, sizeof err);
    if (got != rc || strstr(err, needle) == NULL)
        fail_msg("expected %s mentioning \"%s\", got %s: \"%s\"", proto_strerror(rc), needle,
                 proto_strerror(got), err);
}

static const proto_msg *example_named(const char *name)
{
    for (size_t i = 0; i < proto_example_count(); i++)
        if (strcmp(proto_example_name(i), name) == 0)
            return proto_example(i);
    fail_msg("no example %s", name);
    return NULL;
}

/* ---- editing encoded messages ---------------------------------------------------------------
 * Malformed messages are made from the valid examples: unpack with msgpack-c, repack with one
 * value at a path replaced by raw bytes, removed, duplicated, or followed by an extra key. */

typedef enum edit_action { EDIT_REPLACE, EDIT_REMOVE, EDIT_DUPLICATE, EDIT_ADD_AFTER } edit_action;

typedef struct edit {
    const char *path[8]; /* map keys, or "#N" for array index N; NULL-terminated */
    edit_action action;
    const char *raw; /* replacement or added value, as MessagePack bytes */
    size_t raw_len;
} edit;

static bool segment_matches(const char *segment, const msgpack_object *key, uint32_t index)
{
    if (segment[0] == '#')
        return strtoul(segment + 1, NULL, 10) == index;
    return key != NULL && key->type == MSGPACK_OBJECT_STR &&
           key->via.str.size == strlen(segment) &&
           memcmp(key->via.str.ptr, segment, key->via.str.size) == 0;
}

static void pack_edited(msgpack_packer *pk, msgpack_sbuffer *sb, const msgpack_object *o,
                        const edit *ed, size_t depth);

static void pack_member(msgpack_packer *pk, msgpack_sbuffer *sb, const msgpack_object *key,
                        const msgpack_object *val, const edit *ed, size_t depth, bool hit)
{
    bool last = ed->path[depth + 1] == NULL;
    if (hit && last && ed->action == EDIT_REMOVE)
        return;
    int copies = hit && last && ed->action == EDIT_DUPLICATE ? 2 : 1;
    for (int c = 0; c < copies; c++) {
        if (key != NULL)
            msgpack_pack_object(pk, *key);
        if (hit && last && ed->action == EDIT_REPLACE)
            msgpack_sbuffer_write(sb, ed->raw, ed->raw_len);
        else if (hit && !last)
            pack_edited(pk, sb, val, ed, depth + 1);
        else
            msgpack_pack_object(pk, *val);
    }
    if (hit && last && ed->action == EDIT_ADD_AFTER) {
        msgpack_pack_str_with_body(pk, "x-future", 8);
        msgpack_sbuffer_write(sb, ed->raw, ed->raw_len);
    }
}

static uint32_t edited_count(uint32_t count, const edit *ed, size_t depth, bool any_hit)
{
    if (!any_hit || ed->path[depth + 1] != NULL)
        return count;
    if (ed->action == EDIT_REMOVE)
        return count - 1;
    if (ed->action == EDIT_DUPLICATE || ed->action == EDIT_ADD_AFTER)
        return count + 1;
    return count;
}

static void pack_edited(msgpack_packer *pk, msgpack_sbuffer *sb, const msgpack_object *o,
                        const edit *ed, size_t depth)
{
    const char *segment = ed->path[depth];
    if (o->type == MSGPACK_OBJECT_MAP) {
        bool any = false;
        for (uint32_t i = 0; i < o->via.map.size; i++)
            any |= segment_matches(segment, &o->via.map.ptr[i].key, i);
        msgpack_pack_map(pk, edited_count(o->via.map.size, ed, depth, any));
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            pack_member(pk, sb, &kv->key, &kv->val, ed, depth,
                        segment_matches(segment, &kv->key, i));
        }
    } else if (o->type == MSGPACK_OBJECT_ARRAY) {
        bool any = false;
        for (uint32_t i = 0; i < o->via.array.size; i++)
            any |= segment_matches(segment, NULL, i) && segment[0] == '#';
        msgpack_pack_array(pk, edited_count(o->via.array.size, ed, depth, any));
        for (uint32_t i = 0; i < o->via.array.size; i++)
            pack_member(pk, sb, NULL, &o->via.array.ptr[i], ed, depth,
                        segment[0] == '#' && segment_matches(segment, NULL, i));
    } else {
        fail_msg("edit path segment %s reaches a scalar", segment);
    }
}

/* The example's encoding with one edit applied; free with free(). */
static bytes edited_example(const char *name, const edit *ed)
{
    proto_buf orig = encode_ok(example_named(name));
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&up, (const char *)orig.data, orig.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_edited(&pk, &sb, &up.data, ed, 0);
    msgpack_unpacked_destroy(&up);
    proto_buf_free(&orig);
    bytes out = {.data = (uint8_t *)sb.data, .len = sb.size};
    return out;
}

static void expect_edit_error(const char *name, const edit *ed, int rc, const char *needle)
{
    bytes b = edited_example(name, ed);
    expect_decode_error(b.data, b.len, rc, needle);
    free(b.data);
}

#define RAW(s) (s), (sizeof(s) - 1)

/* ---- round trips -------------------------------------------------------------------------- */

static void test_examples_cover_every_message_type(void **state)
{
    (void)state;
    bool seen[PROTO_MSG_WIPE + 1] = {false};
    for (size_t i = 0; i < proto_example_count(); i++)
        seen[proto_example(i)->type] = true;
    for (uint32_t t = PROTO_MSG_HELLO; t <= PROTO_MSG_WIPE; t++) {
        if (!seen[t])
            fail_msg("no example of %s", proto_msg_type_name(t));
    }
}

/* Encoding is deterministic, so encode(decode(encode(m))) == encode(m) shows that decoding
 * kept every field the encoding carries. */
static void test_roundtrip_every_example_is_byte_stable(void **state)
{
    (void)state;
    for (size_t i = 0; i < proto_example_count(); i++) {
        proto_buf first = encode_ok(proto_example(i));
        assert_int_equal(proto_encoded_size(proto_example(i)), first.len);
        proto_msg *msg = NULL;
        char err[256] = "";
        int rc = proto_decode(first.data, first.len, NULL, &msg, err, sizeof err);
        if (rc != PROTO_OK)
            fail_msg("%s: %s", proto_example_name(i), err);
        assert_int_equal(msg->type, proto_example(i)->type);
        proto_buf second = encode_ok(msg);
        assert_int_equal(second.len, first.len);
        assert_memory_equal(second.data, first.data, first.len);
        proto_msg_free(msg);
        proto_buf_free(&first);
        proto_buf_free(&second);
    }
}

static proto_msg *roundtrip(const char *name)
{
    proto_buf buf = encode_ok(example_named(name));
    proto_msg *msg = NULL;
    assert_int_equal(proto_decode(buf.data, buf.len, NULL, &msg, NULL, 0), PROTO_OK);
    /* The message must not point into the input. */
    memset(buf.data, 0xee, buf.len);
    proto_buf_free(&buf);
    return msg;
}

static void assert_changes_equal(const proto_table_changes *a, const proto_table_changes *b)
{
    assert_string_equal(a->table, b->table);
    assert_int_equal(a->n_columns, b->n_columns);
    assert_int_equal(a->n_changes, b->n_changes);
    for (uint32_t c = 0; c < a->n_changes; c++) {
        const proto_change *ca = &a->changes[c], *cb = &b->changes[c];
        assert_int_equal(ca->op, cb->op);
        assert_int_equal(ca->n_cols, cb->n_cols);
        for (uint32_t k = 0; k < ca->n_cols; k++) {
            assert_int_equal(ca->cols[k].idx, cb->cols[k].idx);
            assert_true(proto_value_equal(&ca->cols[k].old_val, &cb->cols[k].old_val));
            assert_true(proto_value_equal(&ca->cols[k].new_val, &cb->cols[k].new_val));
        }
    }
}

static void test_roundtrip_push_values_exact(void **state)
{
    (void)state;
    const char *names[] = {"push", "push-edge"};
    for (size_t n = 0; n < 2; n++) {
        const proto_push *want = &example_named(names[n])->u.push;
        proto_msg *msg = roundtrip(names[n]);
        const proto_push *got = &msg->u.push;
        assert_int_equal(got->seq, want->seq);
        assert_int_equal(got->hlc, want->hlc);
        assert_int_equal(got->schema_version, want->schema_version);
        assert_int_equal(got->chunk, want->chunk);
        assert_int_equal(got->more, want->more);
        assert_int_equal(got->n_tables, want->n_tables);
        for (uint32_t t = 0; t < got->n_tables; t++)
            assert_changes_equal(&got->tables[t], &want->tables[t]);
        proto_msg_free(msg);
    }
}

static void test_roundtrip_edge_values_keep_type_and_bits(void **state)
{
    (void)state;
    proto_msg *msg = roundtrip("push-edge");
    const proto_col *cols = msg->u.push.tables[0].changes[0].cols;
    assert_int_equal(cols[1].new_val.type, PROTO_INT);
    assert_true(cols[1].new_val.u.i == INT64_MIN);
    assert_true(cols[2].new_val.u.i == INT64_MAX);
    assert_int_equal(cols[3].new_val.type, PROTO_REAL);
    assert_true(signbit(cols[3].new_val.u.r)); /* -0.0 stays negative zero */
    assert_int_equal(cols[5].new_val.type, PROTO_BLOB);
    assert_int_equal(cols[5].new_val.u.b.n, 0);
    assert_non_null(cols[5].new_val.u.b.p);
    assert_int_equal(cols[6].new_val.type, PROTO_TEXT);
    assert_int_equal(cols[6].new_val.u.b.n, 10);
    assert_memory_equal(cols[6].new_val.u.b.p, "nul\0inside", 10);
    const proto_change *update = &msg->u.push.tables[0].changes[1];
    assert_int_equal(update->cols[1].idx, 7);
    assert_int_equal(update->cols[1].old_val.type, PROTO_UNDEF);
    assert_int_equal(update->cols[1].new_val.type, PROTO_NULL);
    assert_int_equal(msg->u.push.tables[1].n_changes, 0);
    proto_msg_free(msg);
}

static void test_roundtrip_schema_and_optional_fields(void **state)
{
    (void)state;
    proto_msg *msg = roundtrip("welcome-schema");
    const proto_welcome *w = &msg->u.welcome;
    assert_true(w->has_schema);
    assert_int_equal(w->schema.version, 3);
    assert_int_equal(w->schema.n_tables, 1);
    const proto_schema_table *t = &w->schema.tables[0];
    assert_string_equal(t->name, "contacts");
    assert_string_equal(t->scope_col, "team_id");
    assert_int_equal(t->n_columns, 6);
    assert_string_equal(t->columns[5], "photo");
    assert_int_equal(t->n_pk, 1);
    assert_int_equal(t->pk[0], 0);
    assert_null(w->schema.forms); /* no forms: the key is absent */
    proto_msg_free(msg);

    msg = roundtrip("schema-forms");
    assert_int_equal(msg->u.schema.version, 4);
    assert_string_equal(msg->u.schema.forms, example_named("schema-forms")->u.schema.forms);
    assert_null(msg->u.schema.watch_json); /* no rules: the key is absent */
    proto_msg_free(msg);

    /* forms and watch rules side by side: both keys counted in the map */
    msg = roundtrip("schema-watch");
    assert_int_equal(msg->u.schema.version, 5);
    assert_string_equal(msg->u.schema.forms, "[]");
    assert_string_equal(msg->u.schema.watch_json,
                        example_named("schema-watch")->u.schema.watch_json);
    proto_msg_free(msg);

    msg = roundtrip("welcome");
    assert_false(msg->u.welcome.has_schema);
    assert_false(msg->u.welcome.has_teams);
    assert_false(msg->u.welcome.has_store);
    assert_false(msg->u.welcome.has_limits);
    assert_null(msg->u.welcome.worker_id); /* wkr absent: an older server */
    proto_msg_free(msg);

    /* wkr, the device's worker, in WELCOME and ENROLLED (optional, additive) */
    for (int k = 0; k < 2; k++) {
        proto_msg with = *example_named(k == 0 ? "welcome" : "enrolled");
        if (k == 0)
            with.u.welcome.worker_id = "alice";
        else
            with.u.enrolled.worker_id = "alice";
        proto_buf buf = encode_ok(&with);
        proto_msg *back = NULL;
        assert_int_equal(proto_decode(buf.data, buf.len, NULL, &back, NULL, 0), PROTO_OK);
        proto_buf_free(&buf);
        assert_string_equal(k == 0 ? back->u.welcome.worker_id : back->u.enrolled.worker_id,
                            "alice");
        proto_msg_free(back);
    }

    msg = roundtrip("welcome-session");
    w = &msg->u.welcome;
    assert_true(w->has_teams);
    assert_int_equal(w->teams.n, 2);
    assert_string_equal(w->teams.names[1], "team-south");
    assert_true(w->has_store);
    assert_string_equal(w->store.id, "0193a7c2-5e1f-7b3a-9c4d-2f6e8a1b3c5d");
    assert_int_equal(w->store.epoch, 2);
    assert_true(w->has_limits);
    assert_int_equal(w->limits.max_message_bytes, 1048576);
    assert_int_equal(w->limits.max_transaction_bytes, 67108864);
    assert_int_equal(w->limits.message_timeout_ms, 30000);
    assert_int_equal(w->limits.idle_timeout_ms, 300000);
    assert_int_equal(w->limits.max_page_rows, 1000);
    proto_msg_free(msg);

    msg = roundtrip("enrolled");
    assert_true(msg->u.enrolled.has_teams);
    assert_string_equal(msg->u.enrolled.teams.names[0], "team-north");
    assert_true(msg->u.enrolled.has_store);
    assert_int_equal(msg->u.enrolled.store.epoch, 1);
    proto_msg_free(msg);

    msg = roundtrip("enroll-unnamed");
    assert_null(msg->u.enroll.device_name);
    assert_string_equal(msg->u.enroll.code, "7K2QX-M4RTP-9HC3W-ZB8N1");
    proto_msg_free(msg);

    msg = roundtrip("ack");
    assert_int_equal(msg->u.ack.conflicts[0].col, 2);
    assert_int_equal(msg->u.ack.conflicts[1].col, -1);
    assert_int_equal(msg->u.ack.conflicts[1].mine.type, PROTO_UNDEF);
    assert_int_equal(msg->u.ack.conflicts[1].winner.type, PROTO_UNDEF);
    proto_msg_free(msg);
}

static void test_roundtrip_hello_secret_and_rows(void **state)
{
    (void)state;
    proto_msg *msg = roundtrip("hello");
    assert_memory_equal(msg->u.hello.secret, example_named("hello")->u.hello.secret, 32);
    assert_string_equal(msg->u.hello.device_id, "4f1c9a2e-7b3d-4e8a-9c21-5d6e0f3a8b47");
    assert_int_equal(msg->u.hello.cursor, 1042);
    /* the optional app and err are absent from the example: NULL, not "" */
    assert_null(msg->u.hello.app);
    assert_null(msg->u.hello.last_error);
    proto_msg_free(msg);

    /* ... and come back as sent when present */
    proto_msg with = *example_named("hello");
    with.u.hello.app = "liboutpost 9.9.9";
    with.u.hello.last_error = "";
    proto_buf buf = encode_ok(&with);
    assert_int_equal(proto_decode(buf.data, buf.len, NULL, &msg, NULL, 0), PROTO_OK);
    proto_buf_free(&buf);
    assert_string_equal(msg->u.hello.app, "liboutpost 9.9.9");
    assert_string_equal(msg->u.hello.last_error, "");
    assert_int_equal(msg->u.hello.outbox_count, example_named("hello")->u.hello.outbox_count);
    proto_msg_free(msg);

    msg = roundtrip("rows");
    const proto_table_rows *want = &example_named("rows")->u.rows.tables[0];
    const proto_table_rows *got = &msg->u.rows.tables[0];
    assert_int_equal(got->n_rows, 1);
    for (uint32_t c = 0; c < want->n_columns; c++)
        assert_true(proto_value_equal(&got->rows[c], &want->rows[c]));
    assert_true(proto_value_equal(&got->deleted[0], &want->deleted[0]));
    assert_true(proto_value_equal(&got->removed[0], &want->removed[0]));
    proto_msg_free(msg);
}

/* ---- chunk sizing ------------------------------------------------------------------------- */

static void test_change_sizes_add_up_to_push_size(void **state)
{
    (void)state;
    const proto_msg *full = example_named("push");
    proto_msg empty = *full;
    proto_table_changes table = full->u.push.tables[0];
    table.n_changes = 0;
    empty.u.push.tables = &table;
    size_t sum = proto_encoded_size(&empty);
    assert_true(sum > 0);
    for (uint32_t i = 0; i < full->u.push.tables[0].n_changes; i++) {
        size_t one = proto_change_encoded_size(&full->u.push.tables[0].changes[i]);
        assert_true(one > 0);
        sum += one;
    }
    /* Under 16 changes the changes array header stays one byte. */
    assert_int_equal(sum, proto_encoded_size(full));
}

/* ---- encode refusals ---------------------------------------------------------------------- */

static void expect_encode_einval(const proto_msg *msg)
{
    proto_buf buf = {0};
    /* A reused buffer keeps its content on failure. */
    assert_int_equal(proto_encode(example_named("notify"), &buf), PROTO_OK);
    size_t before = buf.len;
    assert_int_equal(proto_encode(msg, &buf), PROTO_EINVAL);
    assert_int_equal(buf.len, before);
    assert_int_equal(proto_encoded_size(msg), 0);
    proto_buf_free(&buf);
}

static void test_encode_refuses_invalid_messages(void **state)
{
    (void)state;
    proto_col cols[2] = {{.idx = 0, .old_val = {.type = PROTO_TEXT, .u.b = {(const uint8_t *)"k", 1}}},
                         {.idx = 1}};
    proto_change change = {.op = PROTO_OP_UPDATE, .n_cols = 2, .cols = cols};
    proto_table_changes table = {.table = "t", .n_columns = 2, .n_changes = 1, .changes = &change};
    proto_msg msg = {.type = PROTO_MSG_PUSH, .u.push = {.seq = 1, .n_tables = 1, .tables = &table}};
    expect_encode_einval(&msg); /* UPDATE column with both values undefined */
    assert_int_equal(proto_change_encoded_size(&change), 0);

    cols[1].new_val.type = PROTO_NULL;
    cols[1].idx = 0; /* not ascending */
    expect_encode_einval(&msg);
    cols[1].idx = 2; /* beyond the table */
    expect_encode_einval(&msg);

    cols[1].idx = 1;
    change.op = PROTO_OP_INSERT; /* INSERT carrying old values */
    expect_encode_einval(&msg);

    proto_msg wipe = {.type = PROTO_MSG_WIPE, .u.wipe = {.reason = NULL}};
    expect_encode_einval(&wipe);
    proto_msg bad_type = {.type = (proto_msg_type)99};
    expect_encode_einval(&bad_type);

    proto_schema_table st = *example_named("schema")->u.schema.tables;
    uint32_t bad_pk = 6;
    st.pk = &bad_pk;
    proto_msg schema = {.type = PROTO_MSG_SCHEMA, .u.schema = {.version = 1, .n_tables = 1,
                                                               .tables = &st}};
    expect_encode_einval(&schema); /* pk index past the columns */
}

/* ---- malformed input: structure ----------------------------------------------------------- */

static void test_truncation_at_every_offset(void **state)
{
    (void)state;
    for (size_t i = 0; i < proto_example_count(); i++) {
        proto_buf buf = encode_ok(proto_example(i));
        for (size_t cut = 0; cut < buf.len; cut++) {
            /* A copy of exactly cut bytes, so ASan sees any read past the end. */
            uint8_t *copy = malloc(cut > 0 ? cut : 1);
            assert_non_null(copy);
            memcpy(copy, buf.data, cut);
            int rc = proto_check(copy, cut, NULL, NULL, 0);
            if (rc != PROTO_ETRUNCATED)
                fail_msg("%s cut at %zu of %zu: check gave %s", proto_example_name(i), cut,
                         buf.len, proto_strerror(rc));
            assert_int_equal(decode_rc(copy, cut, NULL, 0), PROTO_ETRUNCATED);
            free(copy);
        }
        proto_buf_free(&buf);
    }
}

static void test_trailing_bytes_rejected(void **state)
{
    (void)state;
    proto_buf buf = encode_ok(example_named("pull"));
    uint8_t *longer = malloc(buf.len + 1);
    assert_non_null(longer);
    memcpy(longer, buf.data, buf.len);
    longer[buf.len] = 0xc0;
    expect_decode_error(longer, buf.len + 1, PROTO_ETRAILING, "trailing");
    /* Two whole messages back to back are trailing bytes too. */
    proto_buf two = {0};
    assert_int_equal(proto_encode(example_named("pull"), &two), PROTO_OK);
    assert_int_equal(proto_encode(example_named("notify"), &two), PROTO_OK);
    expect_decode_error(two.data, two.len, PROTO_ETRAILING, "trailing");
    free(longer);
    proto_buf_free(&buf);
    proto_buf_free(&two);
}

static void test_array_bomb_rejected_without_allocating(void **state)
{
    (void)state;
    static const uint8_t bomb[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t bomb16m[] = {0xdd, 0x00, 0xff, 0xff, 0xff};
    static const uint8_t map_bomb[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t str_bomb[] = {0xdb, 0xff, 0xff, 0xff, 0xff};
    const uint8_t *inputs[] = {bomb, bomb16m, map_bomb, str_bomb};
    for (size_t i = 0; i < 4; i++) {
        proto_msg *msg = NULL;
        alloc_window_open();
        int check_rc = proto_check(inputs[i], 5, NULL, NULL, 0);
        int rc = proto_decode(inputs[i], 5, NULL, &msg, NULL, 0);
        alloc_window_close();
        assert_int_equal(check_rc, PROTO_ETOOBIG);
        assert_int_equal(rc, PROTO_ETOOBIG);
        assert_null(msg);
        assert_int_equal(g_alloc.calls, 0);
    }
    expect_decode_error(bomb, sizeof bomb, PROTO_ETOOBIG,
                        "offset 0: array of 4294967295 items over the limit of 65536");
    /* Within the item limit but beyond the bytes present: truncated, still no allocation. */
    static const uint8_t small_bomb[] = {0xdc, 0x01, 0x00, 0xc0};
    alloc_window_open();
    int rc = decode_rc(small_bomb, sizeof small_bomb, NULL, 0);
    alloc_window_close();
    assert_int_equal(rc, PROTO_ETRUNCATED);
    assert_int_equal(g_alloc.calls, 0);
}

static void test_declared_length_beyond_input(void **state)
{
    (void)state;
    static const uint8_t str[] = {0x81, 0xa1, 't', 0xa5, 'a', 'b'};
    static const uint8_t str32[] = {0x81, 0xa1, 't', 0xdb, 0x00, 0x00, 0x10, 0x00, 'x'};
    static const uint8_t bin8[] = {0x81, 0xa1, 't', 0xc4, 0x20, 0x00};
    static const uint8_t map16[] = {0xde, 0x00, 0x64, 0xa1, 't', 0x01};
    static const uint8_t ext8[] = {0x81, 0xa1, 't', 0xc7, 0x09, 0x01, 0x00};
    static const uint8_t f64[] = {0x81, 0xa1, 't', 0xcb, 0x00, 0x00};
    expect_decode_error(str, sizeof str, PROTO_ETRUNCATED, "str declares 5 bytes");
    expect_decode_error(str32, sizeof str32, PROTO_ETRUNCATED, "declares 4096 bytes");
    expect_decode_error(bin8, sizeof bin8, PROTO_ETRUNCATED, "bin declares 32 bytes");
    expect_decode_error(map16, sizeof map16, PROTO_ETRUNCATED, "map declares 100 items");
    expect_decode_error(ext8, sizeof ext8, PROTO_ETRUNCATED, "ext declares 9 bytes");
    expect_decode_error(f64, sizeof f64, PROTO_ETRUNCATED, "input ends inside a value");
}

static void test_nesting_beyond_limit(void **state)
{
    (void)state;
    /* {"x": [[[...]]]} with n arrays: depth n + 1. */
    uint8_t deep[64];
    for (size_t n_arrays = 6; n_arrays <= 12; n_arrays++) {
        size_t len = 0;
        deep[len++] = 0x81;
        deep[len++] = 0xa1;
        deep[len++] = 'x';
        for (size_t i = 0; i < n_arrays; i++)
            deep[len++] = 0x91;
        deep[len++] = 0xc0;
        int rc = proto_check(deep, len, NULL, NULL, 0);
        assert_int_equal(rc, n_arrays + 1 <= 8 ? PROTO_OK : PROTO_EDEPTH);
    }
    /* A depth above msgpack-c's own stack is capped, never passed through. */
    proto_limits deep_limits;
    proto_limits_default(&deep_limits);
    deep_limits.max_depth = 1000;
    uint8_t very_deep[40];
    memset(very_deep, 0x91, sizeof very_deep);
    very_deep[sizeof very_deep - 1] = 0xc0;
    assert_int_equal(proto_check(very_deep, sizeof very_deep, &deep_limits, NULL, 0),
                     PROTO_EDEPTH);
    /* At exactly the cap, msgpack-c still unpacks it: the decode gets as far as looking for
     * "t" in the outer map. */
    uint8_t at_cap[35];
    at_cap[0] = 0x81;
    at_cap[1] = 0xa1;
    at_cap[2] = 'x';
    memset(at_cap + 3, 0x91, 31);
    at_cap[34] = 0xc0;
    proto_msg *capped = NULL;
    assert_int_equal(proto_decode(at_cap, 35, &deep_limits, &capped, NULL, 0), PROTO_EMISSING);

    /* The PUSH example nests 6 deep: a limit of 5 refuses it with a message. */
    proto_limits tight;
    proto_limits_default(&tight);
    tight.max_depth = 5;
    proto_buf buf = encode_ok(example_named("push"));
    proto_msg *msg = NULL;
    char err[200];
    assert_int_equal(proto_decode(buf.data, buf.len, &tight, &msg, err, sizeof err),
                     PROTO_EDEPTH);
    assert_non_null(strstr(err, "nesting deeper than 5"));
    proto_buf_free(&buf);
}

static void test_oversize_rejected(void **state)
{
    (void)state;
    proto_buf buf = encode_ok(example_named("push"));
    proto_limits lim;
    proto_msg *msg = NULL;
    char err[200];

    proto_limits_default(&lim);
    lim.max_message_bytes = buf.len - 1;
    assert_int_equal(proto_decode(buf.data, buf.len, &lim, &msg, err, sizeof err), PROTO_ETOOBIG);
    assert_non_null(strstr(err, "over the limit"));

    proto_limits_default(&lim);
    lim.max_bytes_value = 35; /* the 36-byte contact id is one byte over */
    assert_int_equal(proto_decode(buf.data, buf.len, &lim, &msg, err, sizeof err), PROTO_ETOOBIG);
    assert_non_null(strstr(err, "str of 36 bytes over the limit of 35"));

    proto_limits_default(&lim);
    lim.max_items = 6; /* the top-level map has 7 pairs */
    assert_int_equal(proto_decode(buf.data, buf.len, &lim, &msg, err, sizeof err), PROTO_ETOOBIG);
    assert_non_null(strstr(err, "offset 0: map of 7 items over the limit of 6"));
    assert_null(msg);
    proto_buf_free(&buf);
}

static void test_reserved_byte_and_empty_input(void **state)
{
    (void)state;
    static const uint8_t reserved[] = {0x81, 0xa1, 't', 0xc1};
    expect_decode_error(reserved, sizeof reserved, PROTO_EMALFORMED, "reserved byte 0xc1");
    expect_decode_error(NULL, 0, PROTO_ETRUNCATED, "input ends");
    static const uint8_t not_a_map[] = {0x92, 0x01, 0x02};
    expect_decode_error(not_a_map, sizeof not_a_map, PROTO_ETYPE, "a message is a map");
}

/* ---- malformed input: fields -------------------------------------------------------------- */

static void test_wrong_types_rejected(void **state)
{
    (void)state;
    expect_edit_error("hello", &(edit){{"v"}, EDIT_REPLACE, RAW("\xa1" "1")}, PROTO_ETYPE,
                      "HELLO.v: expected unsigned int, got str");
    expect_edit_error("hello", &(edit){{"dev"}, EDIT_REPLACE, RAW("\x07")}, PROTO_ETYPE,
                      "HELLO.dev: expected str, got unsigned int");
    expect_edit_error("hello", &(edit){{"sec"}, EDIT_REPLACE, RAW("\xa2" "ab")}, PROTO_ETYPE,
                      "HELLO.sec: expected bin");
    expect_edit_error("push", &(edit){{"more"}, EDIT_REPLACE, RAW("\x01")}, PROTO_ETYPE,
                      "PUSH.more: expected bool");
    expect_edit_error("push", &(edit){{"tables", "#0", "changes", "#0", "#1", "#2"},
                                      EDIT_REPLACE, RAW("\xc3")},
                      PROTO_ETYPE, "PUSH.tables[0].changes[0][2]: expected nil, int, float");
    expect_edit_error("push", &(edit){{"tables", "#0", "changes", "#1", "#1"}, EDIT_REPLACE,
                                      RAW("\x90")},
                      PROTO_ETYPE, "changes[1].old: expected map");
    expect_edit_error("push", &(edit){{"tables"}, EDIT_REPLACE, RAW("\x80")}, PROTO_ETYPE,
                      "PUSH.tables: expected array, got map");
    expect_edit_error("schema", &(edit){{"tables", "#0", "cols", "#1"}, EDIT_REPLACE,
                                        RAW("\xc4\x01x")},
                      PROTO_ETYPE, "SCHEMA.tables[0].cols[1]: expected str, got bin");
}

static void test_missing_and_unknown_fields(void **state)
{
    (void)state;
    expect_edit_error("hello", &(edit){{"dev"}, EDIT_REMOVE, NULL, 0}, PROTO_EMISSING,
                      "required field \"dev\" missing");
    expect_edit_error("rows", &(edit){{"tables", "#0", "gone"}, EDIT_REMOVE, NULL, 0}, PROTO_EMISSING,
                      "ROWS.tables[0]: required field \"gone\"");
    expect_edit_error("hello", &(edit){{"t"}, EDIT_REMOVE, NULL, 0}, PROTO_EMISSING, "\"t\" missing");
    expect_edit_error("hello", &(edit){{"t"}, EDIT_REPLACE, RAW("\x63")}, PROTO_EUNKNOWN_TYPE,
                      "unknown message type 99");
    expect_edit_error("hello", &(edit){{"t"}, EDIT_REPLACE, RAW("\x00")}, PROTO_EUNKNOWN_TYPE,
                      "unknown message type 0");
    expect_edit_error("hello", &(edit){{"dev"}, EDIT_DUPLICATE, NULL, 0}, PROTO_EMALFORMED,
                      "key \"dev\" appears twice");

    /* Unknown keys, anywhere and of any type, are ignored. */
    const edit additions[] = {
        {{"seq"}, EDIT_ADD_AFTER, RAW("\x92\x01\xa1z")},
        {{"tables", "#0", "name"}, EDIT_ADD_AFTER, RAW("\xd4\x05\x00")},
    };
    for (size_t i = 0; i < 2; i++) {
        bytes b = edited_example("push", &additions[i]);
        proto_msg *msg = NULL;
        assert_int_equal(proto_decode(b.data, b.len, NULL, &msg, NULL, 0), PROTO_OK);
        assert_int_equal(msg->u.push.tables[0].n_changes, 3);
        proto_msg_free(msg);
        free(b.data);
    }
}

static void test_values_out_of_range_rejected(void **state)
{
    (void)state;
    /* uint64 above INT64_MAX has no SQLite integer */
    expect_edit_error("push", &(edit){{"tables", "#0", "changes", "#0", "#1", "#3"},
                                      EDIT_REPLACE, RAW("\xcf\x80\x00\x00\x00\x00\x00\x00\x00")},
                      PROTO_ERANGE, "does not fit a signed 64-bit int");
    expect_edit_error("hello", &(edit){{"v"}, EDIT_REPLACE, RAW("\xff")}, PROTO_ERANGE,
                      "HELLO.v: -1 is negative");
    expect_edit_error("hello", &(edit){{"sv"}, EDIT_REPLACE, RAW("\xcf\x00\x00\x00\x01\x00\x00\x00\x00")},
                      PROTO_ERANGE, "HELLO.sv: 4294967296 is above 4294967295");
    expect_edit_error("hello", &(edit){{"sec"}, EDIT_REPLACE, RAW("\xc4\x01\x00")}, PROTO_ERANGE,
                      "secret of 1 bytes, must be 32");
    expect_edit_error("hello", &(edit){{"dev"}, EDIT_REPLACE, RAW("\xa3" "a\0b")}, PROTO_ERANGE,
                      "HELLO.dev: string contains a NUL byte");
    /* INSERT with one value too few for ncol */
    expect_edit_error("push", &(edit){{"tables", "#0", "ncol"}, EDIT_REPLACE, RAW("\x07")},
                      PROTO_ERANGE, "changes[0]: 6 values, table has 7 columns");
    expect_edit_error("push", &(edit){{"tables", "#0", "ncol"}, EDIT_REPLACE, RAW("\x00")},
                      PROTO_ERANGE, "at least one column");
    /* UPDATE keys not strictly ascending, and beyond the table */
    expect_edit_error("push", &(edit){{"tables", "#0", "changes", "#1", "#2"}, EDIT_REPLACE,
                                      RAW("\x82\x03\x01\x02\x02")},
                      PROTO_ERANGE, "changes[1].new: column 2 not above the previous one");
    expect_edit_error("push", &(edit){{"tables", "#0", "changes", "#1", "#2"}, EDIT_REPLACE,
                                      RAW("\x81\x06\x01")},
                      PROTO_ERANGE, "column 6, table has 6");
    expect_edit_error("push", &(edit){{"tables", "#0", "changes", "#1"}, EDIT_REPLACE,
                                      RAW("\x93\x02\x80\x80")},
                      PROTO_ERANGE, "update carries no columns");
    expect_edit_error("push", &(edit){{"tables", "#0", "changes", "#2", "#0"}, EDIT_REPLACE,
                                      RAW("\x04")},
                      PROTO_ERANGE, "operation 4 is not 1, 2 or 3");
    expect_edit_error("rows", &(edit){{"tables", "#0", "rows", "#0"}, EDIT_REPLACE,
                                      RAW("\x91\xc0")},
                      PROTO_ERANGE, "ROWS.tables[0].rows[0]: 1 values, must be 6");
    expect_edit_error("rows", &(edit){{"tables", "#0", "npk"}, EDIT_REPLACE, RAW("\x07")},
                      PROTO_ERANGE, "primary key columns, must be 1..6");
    expect_edit_error("schema", &(edit){{"tables", "#0", "pol"}, EDIT_REPLACE, RAW("\x03")},
                      PROTO_ERANGE, "SCHEMA.tables[0].pol: 3 is above 2");
    expect_edit_error("schema", &(edit){{"tables", "#0", "pk", "#0"}, EDIT_REPLACE, RAW("\x06")},
                      PROTO_ERANGE, "SCHEMA.tables[0].pk[0]: column 6, table has 6");
    expect_edit_error("ack", &(edit){{"conf", "#0", "col"}, EDIT_REPLACE, RAW("\xfe")},
                      PROTO_ERANGE, "ACK.conf[0].col: column must be -1");
    expect_edit_error("ack", &(edit){{"conf", "#0", "kind"}, EDIT_REPLACE, RAW("\x05")},
                      PROTO_ERANGE, "ACK.conf[0].kind: 5 is above 4");
}

static void test_float32_accepted_as_real(void **state)
{
    (void)state;
    bytes b = edited_example("push", &(edit){{"tables", "#0", "changes", "#0", "#1", "#4"},
                                             EDIT_REPLACE, RAW("\xca\x3f\x40\x00\x00")});
    proto_msg *msg = NULL;
    assert_int_equal(proto_decode(b.data, b.len, NULL, &msg, NULL, 0), PROTO_OK);
    const proto_value *v = &msg->u.push.tables[0].changes[0].cols[4].new_val;
    assert_int_equal(v->type, PROTO_REAL);
    assert_true(v->u.r == 0.75);
    proto_msg_free(msg);
    free(b.data);
}

/* ---- allocation bound --------------------------------------------------------------------- */

/* Worst case is a message made of one-byte values: each becomes a 24-byte msgpack_object plus
 * a typed value (a 56-byte proto_col for an INSERT column). 128 bytes per input byte plus the
 * fixed first blocks of msgpack-c's zone and the arena bounds every example. */
#define ALLOC_PER_BYTE 128
#define ALLOC_FIXED (16 * 1024)

static void assert_decode_within_bound(const uint8_t *data, size_t len, const char *what)
{
    proto_msg *msg = NULL;
    alloc_window_open();
    int rc = proto_decode(data, len, NULL, &msg, NULL, 0);
    alloc_window_close();
    assert_int_equal(rc, PROTO_OK);
    long long bound = (long long)len * ALLOC_PER_BYTE + ALLOC_FIXED;
    if (g_alloc.peak > bound || g_alloc.peak <= 0)
        fail_msg("%s: decoding %zu bytes peaked at %lld bytes (bound %lld)", what, len,
                 g_alloc.peak, bound);
    /* PROTO_SHOW_ALLOC=1 prints the measured peaks, to see how far under the bound they are. */
    if (getenv("PROTO_SHOW_ALLOC") != NULL)
        print_message("%s: %zu bytes in, peak %lld bytes allocated\n", what, len, g_alloc.peak);
    proto_msg_free(msg);
}

static void test_decode_allocates_small_multiple(void **state)
{
    (void)state;
    for (size_t i = 0; i < proto_example_count(); i++) {
        proto_buf buf = encode_ok(proto_example(i));
        assert_decode_within_bound(buf.data, buf.len, proto_example_name(i));
        proto_buf_free(&buf);
    }
    /* The worst shape: a ROWS page of 60,000 one-byte NULL values. */
    enum { N_NULLS = 60000 };
    static proto_value nulls[N_NULLS];
    for (size_t i = 0; i < N_NULLS; i++)
        nulls[i].type = PROTO_NULL;
    proto_table_rows table = {.table = "t", .n_columns = N_NULLS, .n_rows = 1, .rows = nulls,
                              .n_pk = 1};
    proto_msg rows = {.type = PROTO_MSG_ROWS, .u.rows = {.n_tables = 1, .tables = &table}};
    proto_buf buf = encode_ok(&rows);
    assert_decode_within_bound(buf.data, buf.len, "60000 NULLs");
    proto_buf_free(&buf);
}

/* ---- peek --------------------------------------------------------------------------------- */

/* The device asks for the next page from a ROWS page's first bytes: the cursor and `more` read
 * there must be the ones proto_decode() reads, for every width of the cursor; anything that is
 * not a ROWS message as proto_encode() writes it is left to the decoder. */
static void test_rows_peek_reads_what_decode_reads(void **state)
{
    (void)state;
    static const uint64_t cursors[] = {0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295u,
                                       4294967296u, INT64_MAX};
    static proto_value vals[2] = {{.type = PROTO_INT, .u.i = 7}, {.type = PROTO_NULL}};
    proto_table_rows table = {.table = "t", .n_columns = 2, .n_rows = 1, .rows = vals, .n_pk = 1};
    for (size_t i = 0; i < sizeof cursors / sizeof cursors[0]; i++) {
        for (int more = 0; more <= 1; more++) {
            proto_msg rows = {.type = PROTO_MSG_ROWS,
                              .u.rows = {.cursor = cursors[i], .more = more != 0, .n_tables = 1,
                                         .tables = &table}};
            proto_buf buf = encode_ok(&rows);
            uint64_t cursor = 12345;
            bool peeked_more = !more;
            assert_true(proto_rows_peek(buf.data, buf.len, &cursor, &peeked_more));
            proto_msg *m = NULL;
            assert_int_equal(proto_decode(buf.data, buf.len, NULL, &m, NULL, 0), PROTO_OK);
            assert_int_equal(cursor, m->u.rows.cursor);
            assert_int_equal(cursor, cursors[i]);
            assert_int_equal(peeked_more, m->u.rows.more);
            proto_msg_free(m);
            /* Cut anywhere (copied to a buffer of exactly that size, so that ASan sees any read
             * past the end): inside the header nothing is claimed; once it is whole, the same
             * answer comes. */
            size_t header = 1 + 2 + 1 + 4 + 1 + (cursors[i] < 128 ? 0 : cursors[i] < 256 ? 1
                            : cursors[i] < 65536 ? 2 : cursors[i] < 4294967296u ? 4 : 8) + 5 + 1;
            for (size_t cut = 0; cut <= 32 && cut < buf.len; cut++) {
                uint64_t c = 0;
                bool mo = false;
                uint8_t *prefix = malloc(cut ? cut : 1);
                assert_non_null(prefix);
                memcpy(prefix, buf.data, cut);
                assert_int_equal(proto_rows_peek(prefix, cut, &c, &mo), cut >= header);
                free(prefix);
                if (cut >= header)
                    assert_true(c == cursors[i] && mo == (more != 0));
            }
            proto_buf_free(&buf);
        }
    }
    proto_msg notify = {.type = PROTO_MSG_NOTIFY, .u.notify = {.server_seq = 9}};
    proto_buf buf = encode_ok(&notify);
    uint64_t cursor = 0;
    bool more = false;
    assert_false(proto_rows_peek(buf.data, buf.len, &cursor, &more));
    proto_buf_free(&buf);
    assert_false(proto_rows_peek(NULL, 0, &cursor, &more));
}

/* ---- names -------------------------------------------------------------------------------- */

static void test_names_and_strerror(void **state)
{
    (void)state;
    for (int rc = PROTO_OK; rc >= PROTO_EINVAL; rc--)
        assert_string_not_equal(proto_strerror(rc), "unknown error");
    assert_string_equal(proto_strerror(-1000), "unknown error");
    assert_string_equal(proto_msg_type_name(PROTO_MSG_PUSH), "PUSH");
    assert_string_equal(proto_msg_type_name(0), "unknown");
    assert_string_equal(proto_msg_type_name(14), "unknown");
    assert_string_equal(proto_error_code_name(PROTO_ERR_OUT_OF_SCOPE), "out of scope");
    assert_string_equal(proto_error_code_name(PROTO_ERR_SEQ_REWOUND), "sequence rewound");
    assert_string_equal(proto_error_code_name(15), "unknown");
    proto_buf_free(NULL);
    proto_msg_free(NULL);
}

int main(void)
{
    alloc_hooks_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples_cover_every_message_type),
        cmocka_unit_test(test_roundtrip_every_example_is_byte_stable),
        cmocka_unit_test(test_roundtrip_push_values_exact),
        cmocka_unit_test(test_roundtrip_edge_values_keep_type_and_bits),
        cmocka_unit_test(test_roundtrip_schema_and_optional_fields),
        cmocka_unit_test(test_roundtrip_hello_secret_and_rows),
        cmocka_unit_test(test_change_sizes_add_up_to_push_size),
        cmocka_unit_test(test_encode_refuses_invalid_messages),
        cmocka_unit_test(test_truncation_at_every_offset),
        cmocka_unit_test(test_trailing_bytes_rejected),
        cmocka_unit_test(test_array_bomb_rejected_without_allocating),
        cmocka_unit_test(test_declared_length_beyond_input),
        cmocka_unit_test(test_nesting_beyond_limit),
        cmocka_unit_test(test_oversize_rejected),
        cmocka_unit_test(test_reserved_byte_and_empty_input),
        cmocka_unit_test(test_wrong_types_rejected),
        cmocka_unit_test(test_missing_and_unknown_fields),
        cmocka_unit_test(test_values_out_of_range_rejected),
        cmocka_unit_test(test_float32_accepted_as_real),
        cmocka_unit_test(test_decode_allocates_small_multiple),
        cmocka_unit_test(test_names_and_strerror),
        cmocka_unit_test(test_rows_peek_reads_what_decode_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
