/*
 * Decoding: bytes -> proto_check -> msgpack-c -> typed structs in one arena.
 *
 * msgpack-c only ever sees input that proto_check() accepted, so its allocations are bounded
 * by the bytes actually received. Its objects point into the caller's input; everything kept
 * is copied into the message's arena, so the message outlives the input buffer.
 *
 * Errors name the field by path ("PUSH.tables[0].changes[2]: ...") so a peer's bug report
 * points at the offending value. Nothing is allocated from a number the peer declared: a
 * table's ncol only ever sizes memory after an array of that many values has been seen.
 */
#include "proto_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

/* One step of the path to the value being decoded: a map key, or an array index when key is
 * NULL. Steps are only recorded on the way down; text is made only when something fails. */
typedef struct path_step {
    const char *key;
    uint32_t index;
} path_step;

#define PATH_MAX_STEPS 24u

typedef struct dec {
    proto_arena *arena;
    char *err;
    size_t err_size;
    path_step path[PATH_MAX_STEPS];
    size_t path_len;
} dec;

/* ---- error paths -------------------------------------------------------------------------- */

/* Records one step; returns the mark path_leave() restores. Steps past the last slot are
 * dropped (the message then names a shallower place), never written out of bounds. */
static size_t path_push(dec *d, const char *key, uint32_t index)
{
    size_t mark = d->path_len;
    if (mark < PATH_MAX_STEPS) {
        d->path[mark] = (path_step){.key = key, .index = index};
        d->path_len++;
    }
    return mark;
}

static size_t path_key(dec *d, const char *key)
{
    return path_push(d, key, 0);
}

static size_t path_index(dec *d, uint32_t index)
{
    return path_push(d, NULL, index);
}

static void path_leave(dec *d, size_t mark)
{
    d->path_len = mark;
}

/* "PUSH.tables[0].changes[2]" */
static void path_format(const dec *d, char *out, size_t out_size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < d->path_len && used < out_size; i++) {
        const path_step *step = &d->path[i];
        int n;
        if (step->key != NULL)
            n = snprintf(out + used, out_size - used, "%s%s", i > 0 ? "." : "", step->key);
        else
            n = snprintf(out + used, out_size - used, "[%" PRIu32 "]", step->index);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static int fail(dec *d, int rc, const char *fmt, ...) PROTO_PRINTF(3, 4);

static int fail(dec *d, int rc, const char *fmt, ...)
{
    if (d->err == NULL || d->err_size == 0)
        return rc;
    char path[192];
    char detail[160];
    path_format(d, path, sizeof path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    snprintf(d->err, d->err_size, "%s: %s", path, detail);
    return rc;
}

static const char *type_name(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return "unsigned int";
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "negative int";
    case MSGPACK_OBJECT_FLOAT32: return "float32";
    case MSGPACK_OBJECT_FLOAT64: return "float64";
    case MSGPACK_OBJECT_STR: return "str";
    case MSGPACK_OBJECT_ARRAY: return "array";
    case MSGPACK_OBJECT_MAP: return "map";
    case MSGPACK_OBJECT_BIN: return "bin";
    case MSGPACK_OBJECT_EXT: return "ext";
    }
    return "unknown";
}

static int wrong_type(dec *d, const msgpack_object *o, const char *expected)
{
    return fail(d, PROTO_ETYPE, "expected %s, got %s", expected, type_name(o));
}

/* ---- arena helpers ------------------------------------------------------------------------ */

static void *alloc_array(dec *d, size_t count, size_t elem_size)
{
    if (count != 0 && elem_size > SIZE_MAX / count)
        return NULL;
    return proto_arena_alloc(d->arena, count * elem_size);
}

static int out_of_memory(dec *d)
{
    return fail(d, PROTO_ENOMEM, "out of memory");
}

/* ---- fields of a map ---------------------------------------------------------------------- */

static bool key_is(const msgpack_object *k, const char *key, size_t key_len)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == key_len &&
           memcmp(k->via.str.ptr, key, key_len) == 0;
}

/* Finds key in map. Keys this version does not know are ignored; a known key given twice is
 * refused, since two readers could otherwise each believe a different copy. */
static int find(dec *d, const msgpack_object *map, const char *key, bool required,
                const msgpack_object **out)
{
    size_t key_len = strlen(key);
    *out = NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (!key_is(&kv->key, key, key_len))
            continue;
        if (*out != NULL)
            return fail(d, PROTO_EMALFORMED, "key \"%s\" appears twice", key);
        *out = &kv->val;
    }
    if (*out == NULL && required)
        return fail(d, PROTO_EMISSING, "required field \"%s\" missing", key);
    return PROTO_OK;
}

static int get_uint(dec *d, const msgpack_object *map, const char *key, uint64_t max,
                    uint64_t *out)
{
    const msgpack_object *o;
    int rc = find(d, map, key, true, &o);
    if (rc != PROTO_OK)
        return rc;
    size_t mark = path_key(d, key);
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return fail(d, PROTO_ERANGE, "%" PRId64 " is negative", o->via.i64);
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return wrong_type(d, o, "unsigned int");
    if (o->via.u64 > max)
        return fail(d, PROTO_ERANGE, "%" PRIu64 " is above %" PRIu64, o->via.u64, max);
    *out = o->via.u64;
    path_leave(d, mark);
    return PROTO_OK;
}

static int get_u64(dec *d, const msgpack_object *map, const char *key, uint64_t *out)
{
    return get_uint(d, map, key, UINT64_MAX, out);
}

static int get_u32(dec *d, const msgpack_object *map, const char *key, uint32_t *out)
{
    uint64_t v = 0;
    int rc = get_uint(d, map, key, UINT32_MAX, &v);
    *out = (uint32_t)v;
    return rc;
}

static int get_bool(dec *d, const msgpack_object *map, const char *key, bool *out)
{
    const msgpack_object *o;
    int rc = find(d, map, key, true, &o);
    if (rc != PROTO_OK)
        return rc;
    if (o->type != MSGPACK_OBJECT_BOOLEAN) {
        path_key(d, key);
        return wrong_type(d, o, "bool");
    }
    *out = o->via.boolean;
    return PROTO_OK;
}

/* A str object copied into the arena as a NUL-terminated string; an embedded NUL would make
 * the C string silently shorter than what was sent, so it is refused. */
static int copy_cstr(dec *d, const msgpack_object *o, const char **out)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return wrong_type(d, o, "str");
    uint32_t n = o->via.str.size;
    if (n > 0 && memchr(o->via.str.ptr, '\0', n) != NULL)
        return fail(d, PROTO_ERANGE, "string contains a NUL byte");
    char *s = proto_arena_alloc(d->arena, (size_t)n + 1u);
    if (s == NULL)
        return out_of_memory(d);
    if (n > 0)
        memcpy(s, o->via.str.ptr, n);
    *out = s;
    return PROTO_OK;
}

/* A string field; an optional one left absent reads as NULL. */
static int get_str(dec *d, const msgpack_object *map, const char *key, bool required,
                   const char **out)
{
    const msgpack_object *o;
    *out = NULL;
    int rc = find(d, map, key, required, &o);
    if (rc != PROTO_OK || o == NULL)
        return rc;
    size_t mark = path_key(d, key);
    rc = copy_cstr(d, o, out);
    if (rc == PROTO_OK)
        path_leave(d, mark);
    return rc;
}

static int get_secret(dec *d, const msgpack_object *map, uint8_t out[PROTO_SECRET_BYTES])
{
    const msgpack_object *o;
    int rc = find(d, map, KEY_SECRET, true, &o);
    if (rc != PROTO_OK)
        return rc;
    size_t mark = path_key(d, KEY_SECRET);
    if (o->type != MSGPACK_OBJECT_BIN)
        return wrong_type(d, o, "bin");
    if (o->via.bin.size != PROTO_SECRET_BYTES)
        return fail(d, PROTO_ERANGE, "secret of %" PRIu32 " bytes, must be %u",
                    o->via.bin.size, PROTO_SECRET_BYTES);
    memcpy(out, o->via.bin.ptr, PROTO_SECRET_BYTES);
    path_leave(d, mark);
    return PROTO_OK;
}

/* An array or map field; the path is left pointing at it for the caller's element errors. */
static int get_container(dec *d, const msgpack_object *map, const char *key,
                         msgpack_object_type type, const msgpack_object **out, size_t *out_mark)
{
    int rc = find(d, map, key, true, out);
    if (rc != PROTO_OK)
        return rc;
    *out_mark = path_key(d, key);
    if ((*out)->type != type)
        return wrong_type(d, *out, type == MSGPACK_OBJECT_ARRAY ? "array" : "map");
    return PROTO_OK;
}

static int expect_map(dec *d, const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_MAP ? PROTO_OK : wrong_type(d, o, "map");
}

/* ---- values ------------------------------------------------------------------------------- */

static int copy_bytes(dec *d, const char *p, uint32_t n, proto_value *out)
{
    static const uint8_t empty[1];
    if (n == 0) {
        out->u.b.p = empty;
        out->u.b.n = 0;
        return PROTO_OK;
    }
    uint8_t *copy = proto_arena_alloc(d->arena, n);
    if (copy == NULL)
        return out_of_memory(d);
    memcpy(copy, p, n);
    out->u.b.p = copy;
    out->u.b.n = n;
    return PROTO_OK;
}

static int conv_value(dec *d, const msgpack_object *o, proto_value *out)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        out->type = PROTO_NULL;
        return PROTO_OK;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX)
            return fail(d, PROTO_ERANGE, "integer %" PRIu64 " does not fit a signed 64-bit int",
                        o->via.u64);
        out->type = PROTO_INT;
        out->u.i = (int64_t)o->via.u64;
        return PROTO_OK;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        out->type = PROTO_INT;
        out->u.i = o->via.i64;
        return PROTO_OK;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        out->type = PROTO_REAL;
        out->u.r = o->via.f64;
        return PROTO_OK;
    case MSGPACK_OBJECT_STR:
        out->type = PROTO_TEXT;
        return copy_bytes(d, o->via.str.ptr, o->via.str.size, out);
    case MSGPACK_OBJECT_BIN:
        out->type = PROTO_BLOB;
        return copy_bytes(d, o->via.bin.ptr, o->via.bin.size, out);
    default:
        return wrong_type(d, o, "nil, int, float, str or bin");
    }
}

/* An array of exactly width values into out[0..width). */
static int conv_value_list(dec *d, const msgpack_object *o, uint32_t width, proto_value *out)
{
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return wrong_type(d, o, "array of values");
    if (o->via.array.size != width)
        return fail(d, PROTO_ERANGE, "%" PRIu32 " values, must be %" PRIu32, o->via.array.size,
                    width);
    for (uint32_t i = 0; i < width; i++) {
        size_t mark = path_index(d, i);
        int rc = conv_value(d, &o->via.array.ptr[i], &out[i]);
        if (rc != PROTO_OK)
            return rc;
        path_leave(d, mark);
    }
    return PROTO_OK;
}

/* An array of arrays of width values each, into one row-major block. Every inner array's
 * length is checked before the block is sized, so width (a number the peer declared) only
 * multiplies counts that are really there. */
static int get_value_rows(dec *d, const msgpack_object *map, const char *key, uint32_t width,
                          proto_value **out, uint32_t *out_n)
{
    const msgpack_object *arr;
    size_t mark;
    int rc = get_container(d, map, key, MSGPACK_OBJECT_ARRAY, &arr, &mark);
    if (rc != PROTO_OK)
        return rc;
    uint32_t n = arr->via.array.size;
    for (uint32_t r = 0; r < n; r++) {
        const msgpack_object *row = &arr->via.array.ptr[r];
        if (row->type != MSGPACK_OBJECT_ARRAY) {
            path_index(d, r);
            return wrong_type(d, row, "array of values");
        }
        if (row->via.array.size != width) {
            path_index(d, r);
            return fail(d, PROTO_ERANGE, "%" PRIu32 " values, must be %" PRIu32,
                        row->via.array.size, width);
        }
    }
    proto_value *values = NULL;
    if (n > 0) {
        values = alloc_array(d, (size_t)n * width, sizeof *values);
        if (values == NULL)
            return out_of_memory(d);
    }
    for (uint32_t r = 0; r < n; r++) {
        size_t row_mark = path_index(d, r);
        rc = conv_value_list(d, &arr->via.array.ptr[r], width, values + (size_t)r * width);
        if (rc != PROTO_OK)
            return rc;
        path_leave(d, row_mark);
    }
    *out = values;
    *out_n = n;
    path_leave(d, mark);
    return PROTO_OK;
}

/* The "pk" field of a conflict or reject row: a non-empty array of values. */
static int get_pk(dec *d, const msgpack_object *map, proto_value **out, uint32_t *out_n)
{
    const msgpack_object *arr;
    size_t mark;
    int rc = get_container(d, map, KEY_PK, MSGPACK_OBJECT_ARRAY, &arr, &mark);
    if (rc != PROTO_OK)
        return rc;
    uint32_t n = arr->via.array.size;
    if (n == 0)
        return fail(d, PROTO_ERANGE, "primary key has no values");
    proto_value *values = alloc_array(d, n, sizeof *values);
    if (values == NULL)
        return out_of_memory(d);
    rc = conv_value_list(d, arr, n, values);
    if (rc != PROTO_OK)
        return rc;
    *out = values;
    *out_n = n;
    path_leave(d, mark);
    return PROTO_OK;
}

/* An optional value field: absent reads as PROTO_UNDEF. */
static int get_opt_value(dec *d, const msgpack_object *map, const char *key, proto_value *out)
{
    const msgpack_object *o;
    out->type = PROTO_UNDEF;
    int rc = find(d, map, key, false, &o);
    if (rc != PROTO_OK || o == NULL)
        return rc;
    size_t mark = path_key(d, key);
    rc = conv_value(d, o, out);
    if (rc == PROTO_OK)
        path_leave(d, mark);
    return rc;
}

/* ---- row changes -------------------------------------------------------------------------- */

/* INSERT [1, [v0..]] and DELETE [3, [v0..]]: exactly n_columns values. */
static int conv_dense_change(dec *d, const msgpack_object *arr, uint32_t n_columns,
                             proto_change *out)
{
    if (arr->via.array.size != 2)
        return fail(d, PROTO_ERANGE, "%s has %" PRIu32 " elements, must be 2",
                    out->op == PROTO_OP_INSERT ? "insert" : "delete", arr->via.array.size);
    const msgpack_object *list = &arr->via.array.ptr[1];
    if (list->type != MSGPACK_OBJECT_ARRAY)
        return wrong_type(d, list, "array of values");
    if (list->via.array.size != n_columns)
        return fail(d, PROTO_ERANGE, "%" PRIu32 " values, table has %" PRIu32 " columns",
                    list->via.array.size, n_columns);
    proto_col *cols = alloc_array(d, n_columns, sizeof *cols);
    if (cols == NULL)
        return out_of_memory(d);
    for (uint32_t i = 0; i < n_columns; i++) {
        cols[i].idx = i;
        proto_value *v = out->op == PROTO_OP_INSERT ? &cols[i].new_val : &cols[i].old_val;
        size_t mark = path_index(d, i);
        int rc = conv_value(d, &list->via.array.ptr[i], v);
        if (rc != PROTO_OK)
            return rc;
        path_leave(d, mark);
    }
    out->cols = cols;
    out->n_cols = n_columns;
    return PROTO_OK;
}

/* One side of an UPDATE: a map with unsigned keys strictly ascending and below n_columns. */
static int check_update_side(dec *d, const msgpack_object *side, const char *which,
                             uint32_t n_columns)
{
    size_t mark = path_key(d, which);
    if (side->type != MSGPACK_OBJECT_MAP)
        return wrong_type(d, side, "map of column index to value");
    for (uint32_t i = 0; i < side->via.map.size; i++) {
        const msgpack_object *k = &side->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return wrong_type(d, k, "column index (unsigned int)");
        if (k->via.u64 >= n_columns)
            return fail(d, PROTO_ERANGE, "column %" PRIu64 ", table has %" PRIu32, k->via.u64,
                        n_columns);
        if (i > 0 && k->via.u64 <= side->via.map.ptr[i - 1].key.via.u64)
            return fail(d, PROTO_ERANGE, "column %" PRIu64 " not above the previous one",
                        k->via.u64);
    }
    path_leave(d, mark);
    return PROTO_OK;
}

/* Number of distinct column indexes over two ascending key lists. */
static uint32_t union_count(const msgpack_object_map *a, const msgpack_object_map *b)
{
    uint32_t i = 0, j = 0, n = 0;
    while (i < a->size || j < b->size) {
        uint64_t ka = i < a->size ? a->ptr[i].key.via.u64 : UINT64_MAX;
        uint64_t kb = j < b->size ? b->ptr[j].key.via.u64 : UINT64_MAX;
        i += ka <= kb;
        j += kb <= ka;
        n++;
    }
    return n;
}

/* Fills cols by merging the two ascending maps; a column only on one side keeps PROTO_UNDEF
 * (from the zeroed arena) on the other. */
static int merge_update_sides(dec *d, const msgpack_object_map *old_side,
                              const msgpack_object_map *new_side, proto_col *cols)
{
    uint32_t i = 0, j = 0, n = 0;
    while (i < old_side->size || j < new_side->size) {
        uint64_t ko = i < old_side->size ? old_side->ptr[i].key.via.u64 : UINT64_MAX;
        uint64_t kn = j < new_side->size ? new_side->ptr[j].key.via.u64 : UINT64_MAX;
        proto_col *col = &cols[n++];
        col->idx = (uint32_t)(ko < kn ? ko : kn);
        if (ko <= kn) {
            size_t mark = path_key(d, "old");
            path_index(d, col->idx);
            int rc = conv_value(d, &old_side->ptr[i++].val, &col->old_val);
            if (rc != PROTO_OK)
                return rc;
            path_leave(d, mark);
        }
        if (kn <= ko) {
            size_t mark = path_key(d, "new");
            path_index(d, col->idx);
            int rc = conv_value(d, &new_side->ptr[j++].val, &col->new_val);
            if (rc != PROTO_OK)
                return rc;
            path_leave(d, mark);
        }
    }
    return PROTO_OK;
}

/* UPDATE [2, {idx: old, ...}, {idx: new, ...}] */
static int conv_update_change(dec *d, const msgpack_object *arr, uint32_t n_columns,
                              proto_change *out)
{
    if (arr->via.array.size != 3)
        return fail(d, PROTO_ERANGE, "update has %" PRIu32 " elements, must be 3",
                    arr->via.array.size);
    const msgpack_object *old_side = &arr->via.array.ptr[1];
    const msgpack_object *new_side = &arr->via.array.ptr[2];
    int rc = check_update_side(d, old_side, "old", n_columns);
    if (rc == PROTO_OK)
        rc = check_update_side(d, new_side, "new", n_columns);
    if (rc != PROTO_OK)
        return rc;
    uint32_t n = union_count(&old_side->via.map, &new_side->via.map);
    if (n == 0)
        return fail(d, PROTO_ERANGE, "update carries no columns");
    proto_col *cols = alloc_array(d, n, sizeof *cols);
    if (cols == NULL)
        return out_of_memory(d);
    rc = merge_update_sides(d, &old_side->via.map, &new_side->via.map, cols);
    if (rc != PROTO_OK)
        return rc;
    out->cols = cols;
    out->n_cols = n;
    return PROTO_OK;
}

static int conv_change(dec *d, const msgpack_object *o, uint32_t n_columns, proto_change *out)
{
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return wrong_type(d, o, "change array");
    if (o->via.array.size == 0)
        return fail(d, PROTO_ERANGE, "empty change");
    const msgpack_object *op = &o->via.array.ptr[0];
    if (op->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return wrong_type(d, op, "operation (unsigned int)");
    switch (op->via.u64) {
    case PROTO_OP_INSERT:
        out->op = PROTO_OP_INSERT;
        return conv_dense_change(d, o, n_columns, out);
    case PROTO_OP_DELETE:
        out->op = PROTO_OP_DELETE;
        return conv_dense_change(d, o, n_columns, out);
    case PROTO_OP_UPDATE:
        out->op = PROTO_OP_UPDATE;
        return conv_update_change(d, o, n_columns, out);
    default:
        return fail(d, PROTO_ERANGE, "operation %" PRIu64 " is not 1, 2 or 3", op->via.u64);
    }
}

/* The table's column count: at least one, and every list sized by it is checked against it. */
static int get_ncol(dec *d, const msgpack_object *map, uint32_t *out)
{
    int rc = get_u32(d, map, KEY_NCOL, out);
    if (rc == PROTO_OK && *out == 0) {
        path_key(d, KEY_NCOL);
        return fail(d, PROTO_ERANGE, "a table has at least one column");
    }
    return rc;
}

static int conv_table_changes(dec *d, const msgpack_object *o, proto_table_changes *out)
{
    int rc = expect_map(d, o);
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_NAME, true, &out->table);
    if (rc == PROTO_OK)
        rc = get_ncol(d, o, &out->n_columns);
    const msgpack_object *arr;
    size_t mark;
    if (rc == PROTO_OK)
        rc = get_container(d, o, KEY_CHANGES, MSGPACK_OBJECT_ARRAY, &arr, &mark);
    if (rc != PROTO_OK)
        return rc;
    uint32_t n = arr->via.array.size;
    out->changes = alloc_array(d, n, sizeof *out->changes);
    if (out->changes == NULL)
        return out_of_memory(d);
    for (uint32_t i = 0; i < n; i++) {
        size_t item_mark = path_index(d, i);
        rc = conv_change(d, &arr->via.array.ptr[i], out->n_columns, &out->changes[i]);
        if (rc != PROTO_OK)
            return rc;
        path_leave(d, item_mark);
    }
    out->n_changes = n;
    path_leave(d, mark);
    return PROTO_OK;
}

/* ---- rows, schema, conflicts, reject rows ------------------------------------------------- */

static int conv_table_rows(dec *d, const msgpack_object *o, proto_table_rows *out)
{
    int rc = expect_map(d, o);
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_NAME, true, &out->table);
    if (rc == PROTO_OK)
        rc = get_ncol(d, o, &out->n_columns);
    if (rc == PROTO_OK)
        rc = get_u32(d, o, KEY_NPK, &out->n_pk);
    if (rc == PROTO_OK && (out->n_pk == 0 || out->n_pk > out->n_columns)) {
        path_key(d, KEY_NPK);
        return fail(d, PROTO_ERANGE, "%" PRIu32 " primary key columns, must be 1..%" PRIu32,
                    out->n_pk, out->n_columns);
    }
    if (rc == PROTO_OK)
        rc = get_value_rows(d, o, KEY_ROWS, out->n_columns, &out->rows, &out->n_rows);
    if (rc == PROTO_OK)
        rc = get_value_rows(d, o, KEY_DELETED, out->n_pk, &out->deleted, &out->n_deleted);
    if (rc == PROTO_OK)
        rc = get_value_rows(d, o, KEY_REMOVED, out->n_pk, &out->removed, &out->n_removed);
    return rc;
}

/* A "tables" field whose elements are decoded by conv into an array of elem_size each. */
typedef int (*conv_fn)(dec *d, const msgpack_object *o, void *out);

static int get_list(dec *d, const msgpack_object *map, const char *key, size_t elem_size,
                    conv_fn conv, void **out, uint32_t *out_n)
{
    const msgpack_object *arr;
    size_t mark;
    int rc = get_container(d, map, key, MSGPACK_OBJECT_ARRAY, &arr, &mark);
    if (rc != PROTO_OK)
        return rc;
    uint32_t n = arr->via.array.size;
    unsigned char *items = alloc_array(d, n, elem_size);
    if (items == NULL)
        return out_of_memory(d);
    for (uint32_t i = 0; i < n; i++) {
        size_t item_mark = path_index(d, i);
        rc = conv(d, &arr->via.array.ptr[i], items + (size_t)i * elem_size);
        if (rc != PROTO_OK)
            return rc;
        path_leave(d, item_mark);
    }
    *out = items;
    *out_n = n;
    path_leave(d, mark);
    return PROTO_OK;
}

static int conv_table_rows_any(dec *d, const msgpack_object *o, void *out)
{
    return conv_table_rows(d, o, out);
}

static int conv_table_changes_any(dec *d, const msgpack_object *o, void *out)
{
    return conv_table_changes(d, o, out);
}

static int conv_str_any(dec *d, const msgpack_object *o, void *out)
{
    return copy_cstr(d, o, out);
}

static int conv_pk_index(dec *d, const msgpack_object *o, uint32_t n_columns, uint32_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return wrong_type(d, o, "column index (unsigned int)");
    if (o->via.u64 >= n_columns)
        return fail(d, PROTO_ERANGE, "column %" PRIu64 ", table has %" PRIu32, o->via.u64,
                    n_columns);
    *out = (uint32_t)o->via.u64;
    return PROTO_OK;
}

static int get_schema_pk(dec *d, const msgpack_object *map, proto_schema_table *out)
{
    const msgpack_object *arr;
    size_t mark;
    int rc = get_container(d, map, KEY_PK, MSGPACK_OBJECT_ARRAY, &arr, &mark);
    if (rc != PROTO_OK)
        return rc;
    uint32_t n = arr->via.array.size;
    if (n == 0)
        return fail(d, PROTO_ERANGE, "primary key has no columns");
    out->pk = alloc_array(d, n, sizeof *out->pk);
    if (out->pk == NULL)
        return out_of_memory(d);
    for (uint32_t i = 0; i < n; i++) {
        size_t item_mark = path_index(d, i);
        rc = conv_pk_index(d, &arr->via.array.ptr[i], out->n_columns, &out->pk[i]);
        if (rc != PROTO_OK)
            return rc;
        path_leave(d, item_mark);
    }
    out->n_pk = n;
    path_leave(d, mark);
    return PROTO_OK;
}

static int conv_schema_table(dec *d, const msgpack_object *o, void *out_any)
{
    proto_schema_table *out = out_any;
    uint64_t policy = 0;
    void *columns = NULL;
    int rc = expect_map(d, o);
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_NAME, true, &out->name);
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_SQL, true, &out->create_sql);
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_SCOPE, true, &out->scope_col);
    if (rc == PROTO_OK)
        rc = get_uint(d, o, KEY_POLICY, PROTO_POLICY_DEVICE_WINS, &policy);
    if (rc == PROTO_OK)
        rc = get_list(d, o, KEY_COLS, sizeof(const char *), conv_str_any, &columns,
                      &out->n_columns);
    if (rc == PROTO_OK && out->n_columns == 0) {
        path_key(d, KEY_COLS);
        return fail(d, PROTO_ERANGE, "a table has at least one column");
    }
    if (rc != PROTO_OK)
        return rc;
    out->policy = (proto_policy)policy;
    out->columns = columns;
    return get_schema_pk(d, o, out);
}

/* The schema's fields from a map: the SCHEMA message itself or the "schema" of another. */
static int conv_schema_fields(dec *d, const msgpack_object *o, proto_schema *out)
{
    void *tables = NULL;
    int rc = get_u32(d, o, KEY_SCHEMA_VERSION, &out->version);
    if (rc == PROTO_OK)
        rc = get_list(d, o, KEY_TABLES, sizeof(proto_schema_table), conv_schema_table, &tables,
                      &out->n_tables);
    out->tables = tables;
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_FORMS, false, &out->forms);
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_WATCH, false, &out->watch_json);
    return rc;
}

static int get_schema_field(dec *d, const msgpack_object *map, bool required,
                            proto_schema *out, bool *out_present)
{
    const msgpack_object *o;
    int rc = find(d, map, KEY_SCHEMA, required, &o);
    if (rc != PROTO_OK || o == NULL)
        return rc;
    size_t mark = path_key(d, KEY_SCHEMA);
    rc = expect_map(d, o);
    if (rc == PROTO_OK)
        rc = conv_schema_fields(d, o, out);
    if (rc != PROTO_OK)
        return rc;
    path_leave(d, mark);
    if (out_present != NULL)
        *out_present = true;
    return PROTO_OK;
}

static int conv_conflict(dec *d, const msgpack_object *o, void *out_any)
{
    proto_conflict *out = out_any;
    const msgpack_object *col;
    uint64_t kind = 0;
    int rc = expect_map(d, o);
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_TABLE, true, &out->table);
    if (rc == PROTO_OK)
        rc = get_pk(d, o, &out->pk, &out->n_pk);
    if (rc == PROTO_OK)
        rc = find(d, o, KEY_COL, true, &col);
    if (rc != PROTO_OK)
        return rc;
    size_t mark = path_key(d, KEY_COL);
    if (col->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && col->via.i64 == -1)
        out->col = -1;
    else if (col->type == MSGPACK_OBJECT_POSITIVE_INTEGER && col->via.u64 <= INT32_MAX)
        out->col = (int32_t)col->via.u64;
    else if (col->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
             col->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return fail(d, PROTO_ERANGE, "column must be -1 or 0..%" PRId32, INT32_MAX);
    else
        return wrong_type(d, col, "int");
    path_leave(d, mark);
    rc = get_uint(d, o, KEY_KIND, PROTO_CONFLICT_CONSTRAINT, &kind);
    if (rc == PROTO_OK && kind < PROTO_CONFLICT_DATA) {
        path_key(d, KEY_KIND);
        return fail(d, PROTO_ERANGE, "conflict kind 0 is not 1..4");
    }
    if (rc == PROTO_OK)
        rc = get_opt_value(d, o, KEY_MINE, &out->mine);
    if (rc == PROTO_OK)
        rc = get_opt_value(d, o, KEY_WINNER, &out->winner);
    out->kind = (proto_conflict_kind)kind;
    return rc;
}

static int conv_reject_row(dec *d, const msgpack_object *o, void *out_any)
{
    proto_reject_row *out = out_any;
    int rc = expect_map(d, o);
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_TABLE, true, &out->table);
    if (rc == PROTO_OK)
        rc = get_pk(d, o, &out->pk, &out->n_pk);
    if (rc == PROTO_OK)
        rc = get_u32(d, o, KEY_CODE, &out->code);
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_MESSAGE, true, &out->message);
    return rc;
}

/* ---- messages ----------------------------------------------------------------------------- */

/* Optional "z": the compression a peer offers (HELLO) or accepts (WELCOME); absent is none. */
static int get_compress(dec *d, const msgpack_object *map, uint32_t *out)
{
    const msgpack_object *o;
    int rc = find(d, map, KEY_COMPRESS, false, &o);
    if (rc != PROTO_OK || o == NULL)
        return rc;
    return get_u32(d, map, KEY_COMPRESS, out);
}

static int dec_hello(dec *d, const msgpack_object *o, proto_hello *m)
{
    int rc = get_u32(d, o, KEY_VERSION, &m->version);
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_DEVICE, true, &m->device_id);
    if (rc == PROTO_OK)
        rc = get_secret(d, o, m->secret);
    if (rc == PROTO_OK)
        rc = get_u32(d, o, KEY_SCHEMA_VERSION, &m->schema_version);
    if (rc == PROTO_OK)
        rc = get_u64(d, o, KEY_CURSOR, &m->cursor);
    if (rc == PROTO_OK)
        rc = get_u64(d, o, KEY_OUTBOX, &m->outbox_count);
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_APP, false, &m->app);
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_LAST_ERROR, false, &m->last_error);
    if (rc == PROTO_OK)
        rc = get_compress(d, o, &m->compress);
    const msgpack_object *acked = NULL;
    if (rc == PROTO_OK)
        rc = find(d, o, KEY_ACKED, false, &acked);
    if (rc == PROTO_OK && acked) {
        m->has_acked = true;
        rc = get_u64(d, o, KEY_ACKED, &m->acked);
    }
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_STORE, false, &m->store_id);
    return rc;
}

/* Optional "teams": an array of names; absent leaves *out_present false. */
static int get_teams(dec *d, const msgpack_object *map, proto_teams *out, bool *out_present)
{
    const msgpack_object *o;
    int rc = find(d, map, KEY_TEAMS, false, &o);
    if (rc != PROTO_OK || o == NULL)
        return rc;
    void *names = NULL;
    rc = get_list(d, map, KEY_TEAMS, sizeof(const char *), conv_str_any, &names, &out->n);
    out->names = names;
    *out_present = rc == PROTO_OK;
    return rc;
}

/* Optional "store" and "ep", present together or not at all. */
static int get_store(dec *d, const msgpack_object *map, proto_store_identity *out,
                     bool *out_present)
{
    int rc = get_str(d, map, KEY_STORE, false, &out->id);
    if (rc != PROTO_OK || out->id == NULL)
        return rc;
    rc = get_u64(d, map, KEY_EPOCH, &out->epoch);
    *out_present = rc == PROTO_OK;
    return rc;
}

/* Optional "lims": a map of the session's limits, every key required inside it. */
static int get_limits(dec *d, const msgpack_object *map, proto_session_limits *out,
                      bool *out_present)
{
    const msgpack_object *o;
    int rc = find(d, map, KEY_LIMITS, false, &o);
    if (rc != PROTO_OK || o == NULL)
        return rc;
    size_t mark = path_key(d, KEY_LIMITS);
    rc = expect_map(d, o);
    if (rc == PROTO_OK)
        rc = get_u64(d, o, KEY_LIM_MESSAGE, &out->max_message_bytes);
    if (rc == PROTO_OK)
        rc = get_u64(d, o, KEY_LIM_TRANSACTION, &out->max_transaction_bytes);
    if (rc == PROTO_OK)
        rc = get_u32(d, o, KEY_LIM_MESSAGE_TIMEOUT, &out->message_timeout_ms);
    if (rc == PROTO_OK)
        rc = get_u32(d, o, KEY_LIM_IDLE, &out->idle_timeout_ms);
    if (rc == PROTO_OK)
        rc = get_u32(d, o, KEY_LIM_PAGE, &out->max_page_rows);
    if (rc != PROTO_OK)
        return rc;
    path_leave(d, mark);
    *out_present = true;
    return PROTO_OK;
}

static int dec_welcome(dec *d, const msgpack_object *o, proto_welcome *m)
{
    int rc = get_u32(d, o, KEY_VERSION, &m->version);
    if (rc == PROTO_OK)
        rc = get_u32(d, o, KEY_SCHEMA_VERSION, &m->schema_version);
    if (rc == PROTO_OK)
        rc = get_u64(d, o, KEY_ACKED, &m->acked_seq);
    if (rc == PROTO_OK)
        rc = get_u64(d, o, KEY_SERVER_SEQ, &m->server_seq);
    if (rc == PROTO_OK)
        rc = get_u64(d, o, KEY_NOW, &m->server_time_ms);
    if (rc == PROTO_OK)
        rc = get_schema_field(d, o, false, &m->schema, &m->has_schema);
    if (rc == PROTO_OK)
        rc = get_teams(d, o, &m->teams, &m->has_teams);
    if (rc == PROTO_OK)
        rc = get_store(d, o, &m->store, &m->has_store);
    if (rc == PROTO_OK)
        rc = get_limits(d, o, &m->limits, &m->has_limits);
    if (rc == PROTO_OK)
        rc = get_compress(d, o, &m->compress);
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_WORKER, false, &m->worker_id);
    return rc;
}

static int dec_enroll(dec *d, const msgpack_object *o, proto_enroll *m)
{
    int rc = get_u32(d, o, KEY_VERSION, &m->version);
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_CODE, true, &m->code);
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_NAME, false, &m->device_name);
    return rc;
}

static int dec_enrolled(dec *d, const msgpack_object *o, proto_enrolled *m)
{
    int rc = get_str(d, o, KEY_DEVICE, true, &m->device_id);
    if (rc == PROTO_OK)
        rc = get_secret(d, o, m->secret);
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_CA, true, &m->ca_pem);
    if (rc == PROTO_OK)
        rc = get_schema_field(d, o, true, &m->schema, NULL);
    if (rc == PROTO_OK)
        rc = get_teams(d, o, &m->teams, &m->has_teams);
    if (rc == PROTO_OK)
        rc = get_store(d, o, &m->store, &m->has_store);
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_WORKER, false, &m->worker_id);
    return rc;
}

static int dec_push(dec *d, const msgpack_object *o, proto_push *m)
{
    void *tables = NULL;
    int rc = get_u64(d, o, KEY_SEQ, &m->seq);
    if (rc == PROTO_OK)
        rc = get_u64(d, o, KEY_HLC, &m->hlc);
    if (rc == PROTO_OK)
        rc = get_u32(d, o, KEY_SCHEMA_VERSION, &m->schema_version);
    if (rc == PROTO_OK)
        rc = get_u32(d, o, KEY_CHUNK, &m->chunk);
    if (rc == PROTO_OK)
        rc = get_bool(d, o, KEY_MORE, &m->more);
    if (rc == PROTO_OK)
        rc = get_list(d, o, KEY_TABLES, sizeof(proto_table_changes), conv_table_changes_any,
                      &tables, &m->n_tables);
    m->tables = tables;
    return rc;
}

static int dec_ack(dec *d, const msgpack_object *o, proto_ack *m)
{
    void *conflicts = NULL;
    int rc = get_u64(d, o, KEY_SEQ, &m->seq);
    if (rc == PROTO_OK)
        rc = get_u64(d, o, KEY_SERVER_SEQ, &m->server_seq);
    if (rc == PROTO_OK)
        rc = get_bool(d, o, KEY_CLAMPED, &m->hlc_clamped);
    if (rc == PROTO_OK)
        rc = get_list(d, o, KEY_CONFLICTS, sizeof(proto_conflict), conv_conflict, &conflicts,
                      &m->n_conflicts);
    m->conflicts = conflicts;
    const msgpack_object *more = NULL;
    if (rc == PROTO_OK)
        rc = find(d, o, KEY_CONFLICTS_MORE, false, &more);
    if (rc == PROTO_OK && more != NULL)
        rc = get_u32(d, o, KEY_CONFLICTS_MORE, &m->n_unlisted);
    return rc;
}

static int dec_pull(dec *d, const msgpack_object *o, proto_pull *m)
{
    int rc = get_u64(d, o, KEY_CURSOR, &m->cursor);
    if (rc == PROTO_OK)
        rc = get_u32(d, o, KEY_LIMIT, &m->limit);
    const msgpack_object *seen = NULL;
    if (rc == PROTO_OK)
        rc = find(d, o, KEY_SEEN, false, &seen);
    if (rc == PROTO_OK && seen) {
        m->has_seen = true;
        rc = get_u64(d, o, KEY_SEEN, &m->seen);
    }
    return rc;
}

static int dec_rows(dec *d, const msgpack_object *o, proto_rows *m)
{
    void *tables = NULL;
    int rc = get_u64(d, o, KEY_CURSOR, &m->cursor);
    if (rc == PROTO_OK)
        rc = get_bool(d, o, KEY_MORE, &m->more);
    if (rc == PROTO_OK)
        rc = get_list(d, o, KEY_TABLES, sizeof(proto_table_rows), conv_table_rows_any, &tables,
                      &m->n_tables);
    m->tables = tables;
    return rc;
}

static int dec_notify(dec *d, const msgpack_object *o, proto_notify *m)
{
    return get_u64(d, o, KEY_SERVER_SEQ, &m->server_seq);
}

static int dec_reject(dec *d, const msgpack_object *o, proto_reject *m)
{
    void *rows = NULL;
    void *tables = NULL;
    int rc = get_u64(d, o, KEY_SEQ, &m->seq);
    if (rc == PROTO_OK)
        rc = get_list(d, o, KEY_ROWS, sizeof(proto_reject_row), conv_reject_row, &rows,
                      &m->n_rows);
    if (rc == PROTO_OK)
        rc = get_list(d, o, KEY_TABLES, sizeof(proto_table_rows), conv_table_rows_any, &tables,
                      &m->n_tables);
    m->rows = rows;
    m->tables = tables;
    return rc;
}

static int dec_error(dec *d, const msgpack_object *o, proto_error *m)
{
    int rc = get_u32(d, o, KEY_CODE, &m->code);
    if (rc == PROTO_OK)
        rc = get_str(d, o, KEY_MESSAGE, true, &m->message);
    if (rc == PROTO_OK)
        rc = get_bool(d, o, KEY_RETRY, &m->retryable);
    return rc;
}

static int dec_wipe(dec *d, const msgpack_object *o, proto_wipe *m)
{
    return get_str(d, o, KEY_REASON, true, &m->reason);
}

static int dec_msg(dec *d, const msgpack_object *root, proto_msg *msg)
{
    if (root->type != MSGPACK_OBJECT_MAP)
        return fail(d, PROTO_ETYPE, "a message is a map, got %s", type_name(root));
    uint64_t type = 0;
    int rc = get_u64(d, root, KEY_TYPE, &type);
    if (rc != PROTO_OK)
        return rc;
    if (type < PROTO_MSG_HELLO || type > PROTO_MSG_WIPE)
        return fail(d, PROTO_EUNKNOWN_TYPE, "unknown message type %" PRIu64, type);
    msg->type = (proto_msg_type)type;
    path_leave(d, 0);
    path_key(d, proto_msg_type_name(msg->type));
    switch (msg->type) {
    case PROTO_MSG_HELLO: return dec_hello(d, root, &msg->u.hello);
    case PROTO_MSG_WELCOME: return dec_welcome(d, root, &msg->u.welcome);
    case PROTO_MSG_ENROLL: return dec_enroll(d, root, &msg->u.enroll);
    case PROTO_MSG_ENROLLED: return dec_enrolled(d, root, &msg->u.enrolled);
    case PROTO_MSG_SCHEMA: return conv_schema_fields(d, root, &msg->u.schema);
    case PROTO_MSG_PUSH: return dec_push(d, root, &msg->u.push);
    case PROTO_MSG_ACK: return dec_ack(d, root, &msg->u.ack);
    case PROTO_MSG_PULL: return dec_pull(d, root, &msg->u.pull);
    case PROTO_MSG_ROWS: return dec_rows(d, root, &msg->u.rows);
    case PROTO_MSG_NOTIFY: return dec_notify(d, root, &msg->u.notify);
    case PROTO_MSG_REJECT: return dec_reject(d, root, &msg->u.reject);
    case PROTO_MSG_ERROR: return dec_error(d, root, &msg->u.error);
    case PROTO_MSG_WIPE: return dec_wipe(d, root, &msg->u.wipe);
    }
    return PROTO_EUNKNOWN_TYPE;
}

/* msgpack-c over input proto_check() has accepted: it can still run out of memory. */
static int unpack(dec *d, const uint8_t *data, size_t n_bytes, msgpack_unpacked *up)
{
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack_next(up, (const char *)data, n_bytes, &off);
    if (ret == MSGPACK_UNPACK_SUCCESS && off == n_bytes)
        return PROTO_OK;
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
        return fail(d, PROTO_ENOMEM, "out of memory unpacking");
    return fail(d, PROTO_EMALFORMED, "msgpack-c refused the input (%d)", (int)ret);
}

int proto_decode(const uint8_t *data, size_t n_bytes, const proto_limits *limits,
                 proto_msg **out_msg, char *err, size_t err_size)
{
    *out_msg = NULL;
    int rc = proto_check(data, n_bytes, limits, err, err_size);
    if (rc != PROTO_OK)
        return rc;
    dec d = {.err = err, .err_size = err_size};
    path_key(&d, "message");
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    proto_msg *msg = NULL;
    rc = unpack(&d, data, n_bytes, &up);
    if (rc != PROTO_OK)
        goto done;
    d.arena = proto_arena_new();
    msg = d.arena != NULL ? proto_arena_alloc(d.arena, sizeof *msg) : NULL;
    if (msg == NULL) {
        rc = out_of_memory(&d);
        goto done;
    }
    msg->arena = d.arena;
    rc = dec_msg(&d, &up.data, msg);
done:
    msgpack_unpacked_destroy(&up);
    if (rc != PROTO_OK) {
        proto_arena_free(d.arena);
        return rc;
    }
    *out_msg = msg;
    return PROTO_OK;
}

void proto_msg_free(proto_msg *msg)
{
    if (msg != NULL)
        proto_arena_free(msg->arena);
}

/* Matches the fixstr key at *at; advances past it. */
static bool peek_key(const uint8_t *data, size_t n_bytes, size_t *at, const char *key)
{
    size_t len = strlen(key);
    if (*at + 1 + len > n_bytes || data[*at] != (uint8_t)(0xa0u | len) ||
        memcmp(data + *at + 1, key, len) != 0)
        return false;
    *at += 1 + len;
    return true;
}

/* Reads a MessagePack unsigned integer (positive fixint or uint 8/16/32/64) at *at. */
static bool peek_uint(const uint8_t *data, size_t n_bytes, size_t *at, uint64_t *out)
{
    if (*at >= n_bytes)
        return false;
    uint8_t tag = data[(*at)++];
    size_t width = tag == 0xcc ? 1 : tag == 0xcd ? 2 : tag == 0xce ? 4 : tag == 0xcf ? 8 : 0;
    if (tag <= 0x7f) {
        *out = tag;
        return true;
    }
    if (width == 0 || *at + width > n_bytes)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++)
        v = v << 8 | data[*at + i];
    *at += width;
    *out = v;
    return true;
}

bool proto_rows_peek(const uint8_t *data, size_t n_bytes, uint64_t *out_cursor, bool *out_more)
{
    size_t at = 1;
    uint64_t type = 0, cursor = 0;
    if (data == NULL || n_bytes < 1 || data[0] != 0x84 || /* fixmap of type, cur, more, tables */
        !peek_key(data, n_bytes, &at, KEY_TYPE) || !peek_uint(data, n_bytes, &at, &type) ||
        type != PROTO_MSG_ROWS || !peek_key(data, n_bytes, &at, KEY_CURSOR) ||
        !peek_uint(data, n_bytes, &at, &cursor) || !peek_key(data, n_bytes, &at, KEY_MORE) ||
        at >= n_bytes || (data[at] != 0xc2 && data[at] != 0xc3))
        return false;
    *out_cursor = cursor;
    *out_more = data[at] == 0xc3;
    return true;
}
