#include "store_values.h"

#include <stdlib.h>
#include <string.h>

#include "store.h"

void store_bytes_free(store_bytes *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int bytes_reserve(store_bytes *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2)
            return STORE_ENOMEM;
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL)
        return STORE_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

static void put_be(uint8_t *p, uint64_t v, int n_bytes)
{
    for (int i = n_bytes - 1; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xffu);
        v >>= 8;
    }
}

static uint64_t get_be(const uint8_t *p, int n_bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < n_bytes; i++)
        v = (v << 8) | p[i];
    return v;
}

int store_values_encode(const proto_value *vals, uint32_t n, store_bytes *out)
{
    for (uint32_t i = 0; i < n; i++) {
        const proto_value *v = &vals[i];
        size_t need = 1 + 8;
        if (v->type == PROTO_TEXT || v->type == PROTO_BLOB)
            need = 1 + 4 + (size_t)v->u.b.n;
        if (bytes_reserve(out, need) != 0)
            return STORE_ENOMEM;
        uint8_t *p = out->data + out->len;
        p[0] = (uint8_t)v->type;
        switch (v->type) {
        case PROTO_INT:
            put_be(p + 1, (uint64_t)v->u.i, 8);
            out->len += 9;
            break;
        case PROTO_REAL: {
            uint64_t bits;
            memcpy(&bits, &v->u.r, sizeof bits);
            put_be(p + 1, bits, 8);
            out->len += 9;
            break;
        }
        case PROTO_TEXT:
        case PROTO_BLOB:
            put_be(p + 1, v->u.b.n, 4);
            if (v->u.b.n > 0)
                memcpy(p + 5, v->u.b.p, v->u.b.n);
            out->len += 5 + (size_t)v->u.b.n;
            break;
        case PROTO_UNDEF:
        case PROTO_NULL:
        default:
            out->len += 1;
            break;
        }
    }
    return 0;
}

int store_values_decode(store_arena *arena, const uint8_t *data, size_t n_bytes, proto_value *out,
                        uint32_t max, uint32_t *out_n)
{
    size_t at = 0;
    uint32_t n = 0;
    while (at < n_bytes && n < max) {
        proto_value *v = &out[n];
        memset(v, 0, sizeof *v);
        uint8_t type = data[at++];
        switch (type) {
        case PROTO_UNDEF:
        case PROTO_NULL:
            v->type = (proto_value_type)type;
            break;
        case PROTO_INT:
        case PROTO_REAL: {
            if (n_bytes - at < 8)
                return STORE_EIO;
            uint64_t bits = get_be(data + at, 8);
            at += 8;
            v->type = (proto_value_type)type;
            if (type == PROTO_INT)
                v->u.i = (int64_t)bits;
            else
                memcpy(&v->u.r, &bits, sizeof bits);
            break;
        }
        case PROTO_TEXT:
        case PROTO_BLOB: {
            if (n_bytes - at < 4)
                return STORE_EIO;
            uint32_t len = (uint32_t)get_be(data + at, 4);
            at += 4;
            if (n_bytes - at < len)
                return STORE_EIO;
            /* One spare NUL byte so that text can be used as a C string by the store. */
            uint8_t *copy = store_arena_alloc(arena, (size_t)len + 1);
            if (copy == NULL)
                return STORE_ENOMEM;
            if (len > 0)
                memcpy(copy, data + at, len);
            copy[len] = 0;
            at += len;
            v->type = (proto_value_type)type;
            v->u.b.p = copy;
            v->u.b.n = len;
            break;
        }
        default:
            return STORE_EIO;
        }
        n++;
    }
    *out_n = n;
    return 0;
}

int store_value_bind(sqlite3_stmt *stmt, int idx, const proto_value *val)
{
    switch (val->type) {
    case PROTO_INT:
        return sqlite3_bind_int64(stmt, idx, val->u.i);
    case PROTO_REAL:
        return sqlite3_bind_double(stmt, idx, val->u.r);
    case PROTO_TEXT:
        return sqlite3_bind_text(stmt, idx, (const char *)val->u.b.p, (int)val->u.b.n,
                                 SQLITE_STATIC);
    case PROTO_BLOB:
        /* A zero-length blob must stay a blob, not become NULL. */
        if (val->u.b.n == 0)
            return sqlite3_bind_zeroblob(stmt, idx, 0);
        return sqlite3_bind_blob(stmt, idx, val->u.b.p, (int)val->u.b.n, SQLITE_STATIC);
    case PROTO_UNDEF:
    case PROTO_NULL:
    default:
        return sqlite3_bind_null(stmt, idx);
    }
}

int store_value_column(store_arena *arena, sqlite3_stmt *stmt, int col, proto_value *out)
{
    memset(out, 0, sizeof *out);
    int type = sqlite3_column_type(stmt, col);
    switch (type) {
    case SQLITE_INTEGER:
        out->type = PROTO_INT;
        out->u.i = sqlite3_column_int64(stmt, col);
        return 0;
    case SQLITE_FLOAT:
        out->type = PROTO_REAL;
        out->u.r = sqlite3_column_double(stmt, col);
        return 0;
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
        int is_text = type == SQLITE_TEXT;
        const void *p =
            is_text ? (const void *)sqlite3_column_text(stmt, col) : sqlite3_column_blob(stmt, col);
        int n = sqlite3_column_bytes(stmt, col);
        if (p == NULL && n > 0)
            return STORE_ENOMEM;
        uint8_t *copy = store_arena_alloc(arena, (size_t)n + 1);
        if (copy == NULL)
            return STORE_ENOMEM;
        if (n > 0)
            memcpy(copy, p, (size_t)n);
        copy[n] = 0;
        out->type = is_text ? PROTO_TEXT : PROTO_BLOB;
        out->u.b.p = copy;
        out->u.b.n = (uint32_t)n;
        return 0;
    }
    case SQLITE_NULL:
    default:
        out->type = PROTO_NULL;
        return 0;
    }
}

int store_value_bind_any(db_stmt *stmt, int idx, const proto_value *val)
{
    sqlite3_stmt *lite = db_stmt_sqlite(stmt); /* one call: the merge's hot path */
    if (lite != NULL) {
        int rc = store_value_bind(lite, idx, val);
        return rc == SQLITE_OK ? 0 : rc == SQLITE_NOMEM ? STORE_ENOMEM : STORE_EIO;
    }
    if (val->type == PROTO_NULL || val->type == PROTO_UNDEF)
        return db_bind_null(stmt, idx);
    store_bytes b = {0};
    int rc = store_values_encode(val, 1, &b);
    if (rc == 0)
        rc = db_bind_blob(stmt, idx, b.data, b.len);
    store_bytes_free(&b);
    return rc;
}

int store_value_column_any(store_arena *arena, db_stmt *stmt, int col, proto_value *out)
{
    if (db_stmt_engine(stmt) == DB_SQLITE)
        return store_value_column(arena, db_stmt_sqlite(stmt), col, out);
    memset(out, 0, sizeof *out);
    if (db_column_is_null(stmt, col)) {
        out->type = PROTO_NULL;
        return 0;
    }
    size_t n = 0;
    uint32_t n_values = 0;
    const void *p = db_column_blob(stmt, col, &n);
    int rc = store_values_decode(arena, p, n, out, 1, &n_values);
    return rc == 0 && n_values != 1 ? STORE_EIO : rc;
}

int store_value_equal(const proto_value *a, const proto_value *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case PROTO_INT:
        return a->u.i == b->u.i;
    case PROTO_REAL:
        return memcmp(&a->u.r, &b->u.r, sizeof a->u.r) == 0;
    case PROTO_TEXT:
    case PROTO_BLOB:
        return a->u.b.n == b->u.b.n && (a->u.b.n == 0 || memcmp(a->u.b.p, b->u.b.p, a->u.b.n) == 0);
    case PROTO_UNDEF:
    case PROTO_NULL:
    default:
        return 1;
    }
}

size_t store_value_encoded_max(const proto_value *val)
{
    if (val->type == PROTO_TEXT || val->type == PROTO_BLOB)
        return 5 + (size_t)val->u.b.n;
    return 9;
}

int store_value_is_text(const proto_value *val, const char *s)
{
    size_t n = strlen(s);
    return val->type == PROTO_TEXT && val->u.b.n == n && memcmp(val->u.b.p, s, n) == 0;
}
