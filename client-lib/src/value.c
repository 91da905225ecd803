/* proto_value <-> SQLite values, row keys, and the arena decoded entries live in. */
#include <string.h>

#include "internal.h"

/* ---- arena -------------------------------------------------------------------------------- */

/* sqlite3_malloc() returns 8-byte aligned memory, which is all any value stored here needs. */
#define ARENA_ALIGN 8u

struct outpost_arena {
    struct outpost_arena *next;
    size_t used;
    size_t cap;
    uint64_t data[]; /* keeps the blocks' payload 8-byte aligned */
};

#define ARENA_BLOCK 4096u

void *arena_alloc(struct outpost_arena **arena, size_t n_bytes)
{
    const size_t align = ARENA_ALIGN;
    struct outpost_arena *block = *arena;
    size_t need = (n_bytes + align - 1) / align * align;

    if (need == 0)
        need = align;
    if (block == NULL || block->cap - block->used < need) {
        size_t cap = need > ARENA_BLOCK ? need : ARENA_BLOCK;

        block = sqlite3_malloc64(sizeof *block + cap);
        if (block == NULL)
            return NULL;
        block->next = *arena;
        block->used = 0;
        block->cap = cap;
        *arena = block;
    }
    block->used += need;
    return (unsigned char *)block->data + block->used - need;
}

void arena_free(struct outpost_arena *arena)
{
    while (arena) {
        struct outpost_arena *next = arena->next;

        sqlite3_free(arena);
        arena = next;
    }
}

/* ---- binding and conversion --------------------------------------------------------------- */

void value_to_public(const proto_value *in, outpost_value *out)
{
    memset(out, 0, sizeof *out);
    switch (in->type) {
    case PROTO_NULL: out->type = OUTPOST_VALUE_NULL; break;
    case PROTO_INT: out->type = OUTPOST_VALUE_INT; out->u.i = in->u.i; break;
    case PROTO_REAL: out->type = OUTPOST_VALUE_REAL; out->u.r = in->u.r; break;
    case PROTO_TEXT:
    case PROTO_BLOB:
        out->type = in->type == PROTO_TEXT ? OUTPOST_VALUE_TEXT : OUTPOST_VALUE_BLOB;
        out->u.b.p = in->u.b.p;
        out->u.b.n = in->u.b.n;
        break;
    case PROTO_UNDEF:
    default: out->type = OUTPOST_VALUE_UNDEF; break;
    }
}

void value_from_public(const outpost_value *in, proto_value *out)
{
    memset(out, 0, sizeof *out);
    switch (in->type) {
    case OUTPOST_VALUE_NULL: out->type = PROTO_NULL; break;
    case OUTPOST_VALUE_INT: out->type = PROTO_INT; out->u.i = in->u.i; break;
    case OUTPOST_VALUE_REAL: out->type = PROTO_REAL; out->u.r = in->u.r; break;
    case OUTPOST_VALUE_TEXT:
    case OUTPOST_VALUE_BLOB:
        out->type = in->type == OUTPOST_VALUE_TEXT ? PROTO_TEXT : PROTO_BLOB;
        out->u.b.p = in->u.b.p;
        out->u.b.n = in->u.b.n;
        break;
    case OUTPOST_VALUE_UNDEF:
    default: out->type = PROTO_UNDEF; break;
    }
}

int value_bind(sqlite3_stmt *stmt, int idx, const proto_value *v)
{
    switch (v->type) {
    case PROTO_INT: return sqlite3_bind_int64(stmt, idx, v->u.i);
    case PROTO_REAL: return sqlite3_bind_double(stmt, idx, v->u.r);
    case PROTO_TEXT:
        /* An empty text may come with a NULL pointer, which SQLite would bind as NULL. */
        return sqlite3_bind_text64(stmt, idx, v->u.b.n ? (const char *)v->u.b.p : "", v->u.b.n,
                                   SQLITE_STATIC, SQLITE_UTF8);
    case PROTO_BLOB:
        /* A zero-length blob with a NULL pointer would bind NULL: keep it a blob. */
        if (v->u.b.n == 0)
            return sqlite3_bind_zeroblob(stmt, idx, 0);
        return sqlite3_bind_blob64(stmt, idx, v->u.b.p, v->u.b.n, SQLITE_STATIC);
    case PROTO_UNDEF:
    case PROTO_NULL:
    default: return sqlite3_bind_null(stmt, idx);
    }
}

/* Fills *out with a view of sv; text and blob point into sv and live as long as it does. */
void value_from_sqlite_view(sqlite3_value *sv, proto_value *out)
{
    memset(out, 0, sizeof *out);
    if (sv == NULL) {
        out->type = PROTO_UNDEF;
        return;
    }
    switch (sqlite3_value_type(sv)) {
    case SQLITE_INTEGER:
        out->type = PROTO_INT;
        out->u.i = sqlite3_value_int64(sv);
        break;
    case SQLITE_FLOAT:
        out->type = PROTO_REAL;
        out->u.r = sqlite3_value_double(sv);
        break;
    case SQLITE_TEXT:
        out->type = PROTO_TEXT;
        out->u.b.p = sqlite3_value_text(sv);
        out->u.b.n = (uint32_t)sqlite3_value_bytes(sv);
        break;
    case SQLITE_BLOB:
        out->type = PROTO_BLOB;
        out->u.b.p = sqlite3_value_blob(sv);
        out->u.b.n = (uint32_t)sqlite3_value_bytes(sv);
        break;
    default: out->type = PROTO_NULL; break;
    }
}

/* Like value_from_sqlite_view(), but text and blob bytes are copied into the arena. */
int value_from_sqlite(sqlite3_value *sv, proto_value *out, struct outpost_arena **arena)
{
    value_from_sqlite_view(sv, out);
    if (out->type == PROTO_TEXT || out->type == PROTO_BLOB) {
        uint8_t *copy = arena_alloc(arena, out->u.b.n + 1u);

        if (copy == NULL)
            return OUTPOST_ENOMEM;
        if (out->u.b.n)
            memcpy(copy, out->u.b.p, out->u.b.n);
        copy[out->u.b.n] = 0;
        out->u.b.p = copy;
    }
    return OUTPOST_OK;
}

bool value_same(const proto_value *a, const proto_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case PROTO_INT: return a->u.i == b->u.i;
    case PROTO_REAL: return memcmp(&a->u.r, &b->u.r, sizeof a->u.r) == 0;
    case PROTO_TEXT:
    case PROTO_BLOB:
        return a->u.b.n == b->u.b.n && (a->u.b.n == 0 || memcmp(a->u.b.p, b->u.b.p, a->u.b.n) == 0);
    default: return true;
    }
}

/* Appends an unambiguous encoding of v (type, then fixed-size or length-prefixed data) so that
 * a primary key can be looked up by its bytes. */
int value_key_append(sqlite3_str *key, const proto_value *v)
{
    char tag = (char)('0' + (int)v->type);

    sqlite3_str_append(key, &tag, 1);
    switch (v->type) {
    case PROTO_INT: sqlite3_str_appendf(key, "%lld;", (long long)v->u.i); break;
    case PROTO_REAL: sqlite3_str_appendf(key, "%!.17g;", v->u.r); break;
    case PROTO_TEXT:
    case PROTO_BLOB:
        sqlite3_str_appendf(key, "%u:", (unsigned)v->u.b.n);
        if (v->u.b.n)
            sqlite3_str_append(key, (const char *)v->u.b.p, (int)v->u.b.n);
        break;
    default: break;
    }
    return sqlite3_str_errcode(key) == SQLITE_OK ? OUTPOST_OK : OUTPOST_ENOMEM;
}

static void json_string_append(sqlite3_str *out, const uint8_t *p, uint32_t n)
{
    sqlite3_str_appendchar(out, 1, '"');
    for (uint32_t i = 0; i < n; i++) {
        uint8_t c = p[i];

        if (c == '"' || c == '\\')
            sqlite3_str_appendf(out, "\\%c", c);
        else if (c < 0x20)
            sqlite3_str_appendf(out, "\\u%04x", (unsigned)c);
        else
            sqlite3_str_appendchar(out, 1, (char)c);
    }
    sqlite3_str_appendchar(out, 1, '"');
}

/* Appends v as one JSON value; blobs become the string "x'<hex>'" (JSON has no bytes). */
void value_json_append(sqlite3_str *out, const proto_value *v)
{
    switch (v->type) {
    case PROTO_INT: sqlite3_str_appendf(out, "%lld", (long long)v->u.i); break;
    case PROTO_REAL: sqlite3_str_appendf(out, "%!.17g", v->u.r); break;
    case PROTO_TEXT: json_string_append(out, v->u.b.p, v->u.b.n); break;
    case PROTO_BLOB:
        sqlite3_str_appendall(out, "\"x'");
        for (uint32_t i = 0; i < v->u.b.n; i++)
            sqlite3_str_appendf(out, "%02x", (unsigned)v->u.b.p[i]);
        sqlite3_str_appendall(out, "'\"");
        break;
    default: sqlite3_str_appendall(out, "null"); break;
    }
}
