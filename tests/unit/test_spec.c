/*
 * docs/protocol.md as an oracle, independent of the encoder:
 *   - golden bytes written by hand from the spec's tables (not produced by proto_encode), which
 *     the library must decode to the documented fields, including the freedoms the spec grants
 *     a foreign encoder (any integer width, any field order, unknown keys);
 *   - every hex example of section 8 decoded with msgpack-c alone (no proto_decode), its keys
 *     and MessagePack types checked against the key tables of sections 4 and 5, which this test
 *     parses from the Markdown.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "outpost/proto.h"

/* ---- golden bytes --------------------------------------------------------------------------- */

static proto_msg *decode_ok(const uint8_t *bytes, size_t n)
{
    proto_msg *m = NULL;
    char err[256] = "";
    int rc = proto_decode(bytes, n, NULL, &m, err, sizeof err);
    if (rc != 0)
        fail_msg("hand-written message refused: %d %s", rc, err);
    return m;
}

/* NOTIFY (10): {"t": 10, "sseq": 5}. */
static void test_golden_notify(void **state)
{
    (void)state;
    static const uint8_t bytes[] = {0x82, 0xa1, 't', 0x0a, 0xa4, 's', 's', 'e', 'q', 0x05};
    proto_msg *m = decode_ok(bytes, sizeof bytes);
    assert_int_equal(m->type, PROTO_MSG_NOTIFY);
    assert_int_equal(m->u.notify.server_seq, 5);
    proto_msg_free(m);
}

/* docs/protocol.md 1.1's example, frames made by another zlib binding (Python's): two
 * NOTIFYs in one stream, the second referring back into the first. */
static void test_golden_compressed_frames_in_one_stream(void **state)
{
    (void)state;
    static const uint8_t f1[] = {0xc1, 0x6a, 0x5a, 0x58, 0xc2, 0xb5, 0xa4,
                                 0xb8, 0x38, 0xb5, 0x90, 0x15, 0x00};
    static const uint8_t f2[] = {0xc1, 0x6a, 0x82, 0xb1, 0xd8, 0x00, 0x00};
    static const uint8_t notify5[] = {0x82, 0xa1, 't', 0x0a, 0xa4, 's', 's', 'e', 'q', 0x05};
    proto_zstream *z = NULL;
    proto_buf plain = {0};

    assert_int_equal(proto_zstream_new(false, &z), PROTO_OK);
    assert_int_equal(proto_zframe_inflate(z, f1, sizeof f1, 1024, &plain), PROTO_OK);
    assert_int_equal(plain.len, sizeof notify5);
    assert_memory_equal(plain.data, notify5, sizeof notify5);
    assert_int_equal(proto_zframe_inflate(z, f2, sizeof f2, 1024, &plain), PROTO_OK);
    proto_msg *m = decode_ok(plain.data, plain.len);
    assert_int_equal(m->type, PROTO_MSG_NOTIFY);
    assert_int_equal(m->u.notify.server_seq, 6);
    proto_msg_free(m);
    proto_zstream_free(z);

    /* Alone, the second frame names history a fresh stream does not have. */
    assert_int_equal(proto_zstream_new(false, &z), PROTO_OK);
    assert_int_equal(proto_zframe_inflate(z, f2, sizeof f2, 1024, &plain), PROTO_EMALFORMED);
    proto_zstream_free(z);
    proto_buf_free(&plain);
}

/* PULL (8) as a foreign encoder may write it: "t" last, `cur` as uint 64 and `lim` as uint 16
 * (section 2: any integer width, any field order), and an unknown key with an array value,
 * which must be ignored. {"lim": 100, "x": [nil], "cur": 2^40, "t": 8}. */
static void test_golden_pull_any_width_any_order(void **state)
{
    (void)state;
    static const uint8_t bytes[] = {
        0x84,                                                       /* map of 4 */
        0xa3, 'l', 'i', 'm', 0xcd, 0x00, 0x64,                      /* lim: uint16 100 */
        0xa1, 'x', 0x91, 0xc0,                                      /* x: [nil] */
        0xa3, 'c', 'u', 'r', 0xcf, 0, 0, 0x01, 0, 0, 0, 0, 0,       /* cur: uint64 2^40 */
        0xa1, 't', 0x08,                                            /* t: 8 */
    };
    proto_msg *m = decode_ok(bytes, sizeof bytes);
    assert_int_equal(m->type, PROTO_MSG_PULL);
    assert_int_equal(m->u.pull.cursor, UINT64_C(1) << 40);
    assert_int_equal(m->u.pull.limit, 100);
    proto_msg_free(m);
}

/* ERROR (12): {"t": 12, "code": 11, "msg": "full", "retry": true}, and the same with `retry`
 * as the integer 1, which section 2 forbids ("bool is true/false, not 0/1"). */
static void test_golden_error_and_bool_not_int(void **state)
{
    (void)state;
    static const uint8_t bytes[] = {0x84, 0xa1, 't', 0x0c, 0xa4, 'c', 'o', 'd', 'e', 0x0b,
                                    0xa3, 'm', 's', 'g', 0xa4, 'f', 'u', 'l', 'l',
                                    0xa5, 'r', 'e', 't', 'r', 'y', 0xc3};
    proto_msg *m = decode_ok(bytes, sizeof bytes);
    assert_int_equal(m->type, PROTO_MSG_ERROR);
    assert_int_equal(m->u.error.code, PROTO_ERR_STORE_FULL);
    assert_string_equal(m->u.error.message, "full");
    assert_true(m->u.error.retryable);
    proto_msg_free(m);

    uint8_t as_int[sizeof bytes];
    memcpy(as_int, bytes, sizeof bytes);
    as_int[sizeof bytes - 1] = 0x01;
    m = NULL;
    assert_int_equal(proto_decode(as_int, sizeof as_int, NULL, &m, NULL, 0), PROTO_ETYPE);
    assert_null(m);
}

/* ---- the spec's key tables ------------------------------------------------------------------ */

#define MAX_TABLES 48
#define MAX_ROWS 24

typedef struct key_row {
    char key[32];
    char type[160];
    bool required; /* "yes" */
    char with[32]; /* "with `store`": required when that key is present */
} key_row;

typedef struct key_table {
    char name[96]; /* its heading ("HELLO (1)", "4.3 Table of rows ...") or label ("Conflict") */
    int n;
    key_row rows[MAX_ROWS];
} key_table;

typedef struct example {
    char name[64];
    size_t documented_len;
    uint8_t *bytes;
    size_t len;
} example;

static key_table tables[MAX_TABLES];
static int n_tables;
static example examples[64];
static int n_examples;

static char *read_spec(void)
{
    char path[600];
    const char *src = getenv("OUTPOST_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/docs/protocol.md", src ? src : ".");
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (is OUTPOST_SOURCE_DIR set?)", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
    text[size] = '\0';
    fclose(f);
    return text;
}

/* Copies the text between the first pair of backticks in cell into out. */
static void backticked(const char *cell, char *out, size_t out_size)
{
    const char *a = strchr(cell, '`');
    const char *b = a ? strchr(a + 1, '`') : NULL;
    out[0] = '\0';
    if (a && b && (size_t)(b - a - 1) < out_size)
        snprintf(out, out_size, "%.*s", (int)(b - a - 1), a + 1);
}

/* Splits "| a | b | c |" into trimmed cells; returns how many. */
static int split_row(char *line, char *cells[], int max)
{
    int n = 0;
    char *p = strchr(line, '|');
    while (p && n < max) {
        char *start = p + 1;
        char *end = strchr(start, '|');
        if (!end)
            break;
        *end = '\0';
        while (isspace((unsigned char)*start))
            start++;
        for (char *t = end - 1; t >= start && isspace((unsigned char)*t); t--)
            *t = '\0';
        cells[n++] = start;
        p = end;
    }
    return n;
}

static void parse_spec(void)
{
    static bool parsed;
    if (parsed)
        return;
    parsed = true;
    char *text = read_spec();
    char heading[96] = "", label[96] = "";
    key_table *open = NULL;
    example *ex = NULL;
    bool in_code = false;

    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "```", 3) == 0) {
            in_code = !in_code;
            if (!in_code)
                ex = NULL;
            continue;
        }
        if (in_code) {
            /* "00000010  30 31 4a ...  |01J9...|": the bytes between the offset and '|'. */
            if (!ex || strlen(line) < 10 || !isxdigit((unsigned char)line[0]))
                continue;
            char *bar = strchr(line + 10, '|');
            if (bar)
                *bar = '\0';
            for (char *p = line + 8; *p;) {
                unsigned v;
                int used;
                if (sscanf(p, " %2x%n", &v, &used) != 1)
                    break;
                ex->bytes = realloc(ex->bytes, ex->len + 1);
                assert_non_null(ex->bytes);
                ex->bytes[ex->len++] = (uint8_t)v;
                p += used;
            }
            continue;
        }
        if (strncmp(line, "#### `", 6) == 0) {
            assert_true(n_examples < (int)(sizeof examples / sizeof *examples));
            ex = &examples[n_examples++];
            memset(ex, 0, sizeof *ex);
            backticked(line, ex->name, sizeof ex->name);
            const char *paren = strrchr(line, '(');
            assert_non_null(paren);
            ex->documented_len = strtoul(paren + 1, NULL, 10);
            open = NULL;
            continue;
        }
        if (strncmp(line, "##", 2) == 0) {
            const char *h = line;
            while (*h == '#' || *h == ' ')
                h++;
            snprintf(heading, sizeof heading, "%s", h);
            label[0] = '\0';
            open = NULL;
            ex = NULL;
            continue;
        }
        if (line[0] != '|') {
            /* A short line ending in ':' ("Conflict:") names the table that follows it. */
            size_t len = strlen(line);
            if (len > 1 && len < 40 && line[len - 1] == ':')
                snprintf(label, sizeof label, "%.*s", (int)(len - 1), line);
            else
                label[0] = '\0';
            open = NULL;
            continue;
        }
        char *cells[8];
        int n = split_row(line, cells, 8);
        if (n >= 3 && strcmp(cells[0], "key") == 0) {
            assert_true(n_tables < MAX_TABLES);
            open = &tables[n_tables++];
            memset(open, 0, sizeof *open);
            snprintf(open->name, sizeof open->name, "%s", label[0] ? label : heading);
            continue;
        }
        if (!open || n < 3 || cells[0][0] != '`')
            continue;
        assert_true(open->n < MAX_ROWS);
        key_row *r = &open->rows[open->n++];
        backticked(cells[0], r->key, sizeof r->key);
        snprintf(r->type, sizeof r->type, "%s", cells[1]);
        r->required = strcmp(cells[2], "yes") == 0;
        if (strncmp(cells[2], "with ", 5) == 0)
            backticked(cells[2], r->with, sizeof r->with);
    }
    free(text);
}

static const key_table *table_named(const char *prefix)
{
    for (int i = 0; i < n_tables; i++)
        if (strncmp(tables[i].name, prefix, strlen(prefix)) == 0)
            return &tables[i];
    return NULL;
}

/* The key table of message type t ("HELLO (1)"); SCHEMA (5) is the schema map of 4.4. */
static const key_table *message_table(uint64_t t)
{
    char suffix[16];
    snprintf(suffix, sizeof suffix, "(%llu)", (unsigned long long)t);
    for (int i = 0; i < n_tables; i++) {
        size_t a = strlen(tables[i].name), b = strlen(suffix);
        if (a > b && strcmp(tables[i].name + a - b, suffix) == 0)
            return &tables[i];
    }
    return t == PROTO_MSG_SCHEMA ? table_named("4.4") : NULL;
}

/* The table a type phrase refers to ("table of rows (4.3)", "conflict"), or NULL. */
static const key_table *table_for(const char *type)
{
    static const struct {
        const char *phrase, *table;
    } refs[] = {
        {"table of changes", "4.2"}, {"table of rows", "4.3"}, {"schema table", "Schema table"},
        {"schema", "4.4"},           {"conflict", "Conflict"}, {"reject row", "Reject row"},
    };
    for (size_t i = 0; i < sizeof refs / sizeof *refs; i++)
        if (strncmp(type, refs[i].phrase, strlen(refs[i].phrase)) == 0) {
            const key_table *t = table_named(refs[i].table);
            if (!t)
                fail_msg("docs/protocol.md has no table \"%s\" for \"%s\"", refs[i].table, type);
            return t;
        }
    return NULL;
}

static void check_map(const msgpack_object *map, const key_table *t, bool top, const char *where);
static void check_type(const msgpack_object *o, const char *type, const char *where);

/* 4.1: [1, [values]] INSERT, [2, {idx: old}, {idx: new}] UPDATE with strictly ascending uint
 * keys below ncol, [3, [values]] DELETE, each list exactly ncol long. */
static void check_change(const msgpack_object *o, uint64_t ncol, const char *where)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 2 ||
        o->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        fail_msg("%s: a change is an array starting with its operation", where);
    const msgpack_object *a = o->via.array.ptr;
    uint64_t op = a[0].via.u64;
    if (op == 1 || op == 3) {
        if (o->via.array.size != 2 || a[1].type != MSGPACK_OBJECT_ARRAY ||
            a[1].via.array.size != ncol)
            fail_msg("%s: INSERT/DELETE is [op, [ncol values]]", where);
        for (uint32_t i = 0; i < ncol; i++)
            check_type(&a[1].via.array.ptr[i], "value", where);
        return;
    }
    if (op != 2 || o->via.array.size != 3)
        fail_msg("%s: operation %llu with %u elements is not a change", where,
                 (unsigned long long)op, (unsigned)o->via.array.size);
    for (int m = 1; m <= 2; m++) {
        if (a[m].type != MSGPACK_OBJECT_MAP)
            fail_msg("%s: UPDATE carries two maps", where);
        int64_t last = -1;
        for (uint32_t i = 0; i < a[m].via.map.size; i++) {
            const msgpack_object_kv *kv = &a[m].via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_POSITIVE_INTEGER || (int64_t)kv->key.via.u64 <= last ||
                kv->key.via.u64 >= ncol)
                fail_msg("%s: UPDATE keys are ascending column indexes below ncol", where);
            last = (int64_t)kv->key.via.u64;
            check_type(&kv->val, "value", where);
        }
    }
}

static bool key_is(const msgpack_object_kv *kv, const char *key)
{
    return kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(key) &&
           memcmp(kv->key.via.str.ptr, key, kv->key.via.str.size) == 0;
}

/* Checks o against a type cell of the spec ("uint64", "array of str, >= 1", "value", ...). */
static void check_type(const msgpack_object *o, const char *type, const char *where)
{
    const key_table *sub = table_for(type);
    bool ok = false;

    if (sub) {
        if (o->type != MSGPACK_OBJECT_MAP)
            fail_msg("%s: %s must be a map", where, type);
        check_map(o, sub, false, where);
        return;
    }
    if (strncmp(type, "array of ", 9) == 0) {
        if (o->type != MSGPACK_OBJECT_ARRAY)
            fail_msg("%s: %s must be an array (MessagePack type %d)", where, type, o->type);
        char elem[160];
        snprintf(elem, sizeof elem, "%s", type + 9);
        elem[strcspn(elem, ",")] = '\0';
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (strcmp(elem, "change") == 0) /* 4.1, checked by the enclosing table group */
                assert_int_equal(o->via.array.ptr[i].type, MSGPACK_OBJECT_ARRAY);
            else
                check_type(&o->via.array.ptr[i], elem, where);
        }
        return;
    }
    if (strncmp(type, "uint", 4) == 0)
        ok = o->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
    else if (strncmp(type, "int", 3) == 0)
        ok = o->type == MSGPACK_OBJECT_POSITIVE_INTEGER || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
    else if (strncmp(type, "str", 3) == 0)
        ok = o->type == MSGPACK_OBJECT_STR;
    else if (strncmp(type, "bin", 3) == 0)
        ok = o->type == MSGPACK_OBJECT_BIN &&
             (strstr(type, "exactly 32 bytes") == NULL || o->via.bin.size == 32);
    else if (strncmp(type, "bool", 4) == 0)
        ok = o->type == MSGPACK_OBJECT_BOOLEAN;
    else if (strncmp(type, "map", 3) == 0)
        ok = o->type == MSGPACK_OBJECT_MAP;
    else if (strncmp(type, "value", 5) == 0) /* section 3: nil, integer, float 64, str, bin */
        ok = o->type == MSGPACK_OBJECT_NIL || o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
             o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER || o->type == MSGPACK_OBJECT_FLOAT64 ||
             o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_BIN;
    else
        fail_msg("%s: this test does not know the spec's type \"%s\"", where, type);
    if (!ok)
        fail_msg("%s: MessagePack type %d does not match the spec's \"%s\"", where, o->type, type);
}

static void check_map(const msgpack_object *map, const key_table *t, bool top, const char *where)
{
    const msgpack_object_map *m = &map->via.map;

    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object_kv *kv = &m->ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            fail_msg("%s: a key of %s is not a str", where, t->name);
        if (top && key_is(kv, "t"))
            continue;
        const key_row *row = NULL;
        for (int r = 0; r < t->n && !row; r++)
            if (key_is(kv, t->rows[r].key))
                row = &t->rows[r];
        if (!row)
            fail_msg("%s: key \"%.*s\" is not in the spec's table %s", where,
                     (int)kv->key.via.str.size, kv->key.via.str.ptr, t->name);
        char here[200];
        snprintf(here, sizeof here, "%s.%s", where, row->key);
        check_type(&kv->val, row->type, here);
    }
    for (int r = 0; r < t->n; r++) {
        const key_row *row = &t->rows[r];
        bool present = false, with_present = false;
        for (uint32_t i = 0; i < m->size; i++) {
            present = present || key_is(&m->ptr[i], row->key);
            with_present = with_present || (row->with[0] && key_is(&m->ptr[i], row->with));
        }
        if ((row->required || with_present) && !present)
            fail_msg("%s: required key \"%s\" of %s is missing", where, row->key, t->name);
    }
    /* A table group's changes are checked against its ncol (4.1). */
    const msgpack_object *ncol = NULL, *changes = NULL;
    for (uint32_t i = 0; i < m->size; i++) {
        if (key_is(&m->ptr[i], "ncol"))
            ncol = &m->ptr[i].val;
        if (key_is(&m->ptr[i], "changes"))
            changes = &m->ptr[i].val;
    }
    if (ncol && changes)
        for (uint32_t i = 0; i < changes->via.array.size; i++)
            check_change(&changes->via.array.ptr[i], ncol->via.u64, where);
}

static void test_spec_tables_parse(void **state)
{
    (void)state;
    parse_spec();
    /* Every message type has its key table (SCHEMA through 4.4), and the sub-tables exist. */
    for (uint64_t t = PROTO_MSG_HELLO; t <= PROTO_MSG_WIPE; t++)
        if (!message_table(t))
            fail_msg("docs/protocol.md has no key table for message type %llu",
                     (unsigned long long)t);
    assert_non_null(table_for("table of changes"));
    assert_non_null(table_for("table of rows"));
    assert_non_null(table_for("schema table"));
    assert_non_null(table_for("conflict"));
    assert_non_null(table_for("reject row"));
    assert_true(message_table(PROTO_MSG_HELLO)->n >= 6);
}

static void test_spec_examples_match_tables_with_msgpack_alone(void **state)
{
    (void)state;
    bool type_seen[PROTO_MSG_WIPE + 1] = {false};
    parse_spec();

    assert_true(n_examples >= 13);
    for (int e = 0; e < n_examples; e++) {
        example *ex = &examples[e];
        if (ex->len != ex->documented_len)
            fail_msg("example %s: %zu bytes in the dump, %zu in its heading", ex->name, ex->len,
                     ex->documented_len);
        msgpack_unpacked u;
        size_t off = 0;
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, (const char *)ex->bytes, ex->len, &off) !=
                MSGPACK_UNPACK_SUCCESS ||
            off != ex->len)
            fail_msg("example %s is not exactly one MessagePack value", ex->name);
        const msgpack_object *o = &u.data;
        if (o->type != MSGPACK_OBJECT_MAP)
            fail_msg("example %s is not a map", ex->name);
        const msgpack_object *t = NULL;
        for (uint32_t i = 0; i < o->via.map.size; i++)
            if (key_is(&o->via.map.ptr[i], "t"))
                t = &o->via.map.ptr[i].val;
        if (!t || t->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            fail_msg("example %s has no unsigned \"t\"", ex->name);
        const key_table *table = message_table(t->via.u64);
        if (!table)
            fail_msg("example %s: type %llu has no key table", ex->name,
                     (unsigned long long)t->via.u64);
        check_map(o, table, true, ex->name);
        type_seen[t->via.u64] = true;
        msgpack_unpacked_destroy(&u);
    }
    for (int t = PROTO_MSG_HELLO; t <= PROTO_MSG_WIPE; t++)
        if (!type_seen[t])
            fail_msg("docs/protocol.md has no example of message type %d", t);
}

static int spec_teardown(void **state)
{
    (void)state;
    for (int e = 0; e < n_examples; e++)
        free(examples[e].bytes);
    return 0;
}

int main(void)
{
    const struct CMUnitTest golden[] = {
        cmocka_unit_test(test_golden_notify),
        cmocka_unit_test(test_golden_compressed_frames_in_one_stream),
        cmocka_unit_test(test_golden_pull_any_width_any_order),
        cmocka_unit_test(test_golden_error_and_bool_not_int),
    };
    const struct CMUnitTest spec[] = {
        cmocka_unit_test(test_spec_tables_parse),
        cmocka_unit_test(test_spec_examples_match_tables_with_msgpack_alone),
    };
    int failed = cmocka_run_group_tests_name("golden", golden, NULL, NULL);
    failed += cmocka_run_group_tests_name("spec", spec, NULL, spec_teardown);
    return failed;
}
