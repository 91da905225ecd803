/*
 * The bounded structural check every received message passes before msgpack-c sees it.
 *
 * msgpack-c 4.0 allocates from declared lengths before it has read what they declare: the five
 * bytes dd ff ff ff ff ask it for an array of four billion objects. This walk reads only
 * headers, allocates nothing, and refuses any declared length, count or nesting the bytes that
 * are actually there (or the limits) cannot back. Iterative, with one counter per open
 * container, so hostile nesting cannot exhaust the C stack either.
 */
#include "proto_internal.h"

#include <inttypes.h>

typedef struct check_state {
    const uint8_t *data;
    size_t n_bytes;
    size_t pos;
    const proto_limits *limits;
    uint32_t max_depth;
    char *err;
    size_t err_size;
} check_state;

/* What one MessagePack header announces. */
typedef struct check_head {
    size_t payload;    /* bytes of the value after its header (scalars, str, bin, ext) */
    uint64_t children; /* values nested in it: array items, or twice the map pairs */
    uint64_t count;    /* declared array length or map pair count */
    bool container;
    bool is_map;
} check_head;

static size_t bytes_left(const check_state *st)
{
    return st->n_bytes - st->pos;
}

static uint64_t read_be(const uint8_t *p, size_t width)
{
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Reads a width-byte big-endian length that follows the type byte. */
static int read_length(check_state *st, size_t width, uint64_t *out_len)
{
    if (bytes_left(st) < width)
        return proto_set_err(st->err, st->err_size, PROTO_ETRUNCATED,
                             "offset %zu: input ends inside a %zu-byte length", st->pos, width);
    *out_len = read_be(st->data + st->pos, width);
    st->pos += width;
    return PROTO_OK;
}

/* str, bin and ext bodies: bounded by the value limit, then by the bytes actually present.
 * extra is the ext type byte that precedes an ext body. */
static int body_length(check_state *st, uint64_t len, size_t extra, const char *what,
                       check_head *out)
{
    if (len > st->limits->max_bytes_value)
        return proto_set_err(st->err, st->err_size, PROTO_ETOOBIG,
                             "offset %zu: %s of %" PRIu64 " bytes over the limit of %zu",
                             st->pos, what, len, st->limits->max_bytes_value);
    if (len + extra > bytes_left(st))
        return proto_set_err(st->err, st->err_size, PROTO_ETRUNCATED,
                             "offset %zu: %s declares %" PRIu64 " bytes, %zu left", st->pos,
                             what, len, bytes_left(st));
    out->payload = (size_t)len + extra;
    return PROTO_OK;
}

static int sized_body(check_state *st, size_t width, size_t extra, const char *what,
                      check_head *out)
{
    uint64_t len = 0;
    int rc = read_length(st, width, &len);
    if (rc != PROTO_OK)
        return rc;
    return body_length(st, len, extra, what, out);
}

/* Arrays and maps: count bounded by the item limit, then by the bytes left (every value takes
 * at least one byte). The depth is checked by the caller, which knows it. */
static int container(check_state *st, size_t width, uint64_t count_if_fix, bool is_map,
                     check_head *out)
{
    size_t start = st->pos - 1;
    uint64_t count = count_if_fix;
    if (width > 0) {
        int rc = read_length(st, width, &count);
        if (rc != PROTO_OK)
            return rc;
    }
    const char *what = is_map ? "map" : "array";
    if (count > st->limits->max_items)
        return proto_set_err(st->err, st->err_size, PROTO_ETOOBIG,
                             "offset %zu: %s of %" PRIu64 " items over the limit of %" PRIu32,
                             start, what, count, st->limits->max_items);
    uint64_t children = is_map ? count * 2u : count;
    if (children > bytes_left(st))
        return proto_set_err(st->err, st->err_size, PROTO_ETRUNCATED,
                             "offset %zu: %s declares %" PRIu64 " items, only %zu bytes left",
                             start, what, count, bytes_left(st));
    out->container = true;
    out->is_map = is_map;
    out->count = count;
    out->children = children;
    return PROTO_OK;
}

static int read_head(check_state *st, check_head *out)
{
    *out = (check_head){0};
    if (bytes_left(st) == 0)
        return proto_set_err(st->err, st->err_size, PROTO_ETRUNCATED,
                             "offset %zu: input ends where a value should start", st->pos);
    uint8_t b = st->data[st->pos++];
    if (b <= 0x7f || b >= 0xe0)
        return PROTO_OK; /* fixint */
    if (b <= 0x8f)
        return container(st, 0, b & 0x0fu, true, out);
    if (b <= 0x9f)
        return container(st, 0, b & 0x0fu, false, out);
    if (b <= 0xbf)
        return body_length(st, b & 0x1fu, 0, "str", out); /* fixstr */
    switch (b) {
    case 0xc0: case 0xc2: case 0xc3:
        return PROTO_OK;
    case 0xc1:
        return proto_set_err(st->err, st->err_size, PROTO_EMALFORMED,
                             "offset %zu: reserved byte 0xc1", st->pos - 1);
    case 0xc4: return sized_body(st, 1, 0, "bin", out);
    case 0xc5: return sized_body(st, 2, 0, "bin", out);
    case 0xc6: return sized_body(st, 4, 0, "bin", out);
    case 0xc7: return sized_body(st, 1, 1, "ext", out);
    case 0xc8: return sized_body(st, 2, 1, "ext", out);
    case 0xc9: return sized_body(st, 4, 1, "ext", out);
    case 0xca: out->payload = 4; return PROTO_OK;
    case 0xcb: out->payload = 8; return PROTO_OK;
    case 0xcc: case 0xd0: out->payload = 1; return PROTO_OK;
    case 0xcd: case 0xd1: out->payload = 2; return PROTO_OK;
    case 0xce: case 0xd2: out->payload = 4; return PROTO_OK;
    case 0xcf: case 0xd3: out->payload = 8; return PROTO_OK;
    case 0xd4: out->payload = 2; return PROTO_OK;  /* fixext 1: type byte + 1 */
    case 0xd5: out->payload = 3; return PROTO_OK;
    case 0xd6: out->payload = 5; return PROTO_OK;
    case 0xd7: out->payload = 9; return PROTO_OK;
    case 0xd8: out->payload = 17; return PROTO_OK;
    case 0xd9: return sized_body(st, 1, 0, "str", out);
    case 0xda: return sized_body(st, 2, 0, "str", out);
    case 0xdb: return sized_body(st, 4, 0, "str", out);
    case 0xdc: return container(st, 2, 0, false, out);
    case 0xdd: return container(st, 4, 0, false, out);
    case 0xde: return container(st, 2, 0, true, out);
    default:   return container(st, 4, 0, true, out); /* 0xdf */
    }
}

static int skip_payload(check_state *st, const check_head *head)
{
    if (head->payload > bytes_left(st))
        return proto_set_err(st->err, st->err_size, PROTO_ETRUNCATED,
                             "offset %zu: input ends inside a value (%zu bytes needed, %zu left)",
                             st->pos, head->payload, bytes_left(st));
    st->pos += head->payload;
    return PROTO_OK;
}

static int walk(check_state *st)
{
    /* pending[d] = values still to read inside the open container at depth d; depth 0 is the
     * virtual level holding the one top-level value. */
    uint64_t pending[PROTO_DEPTH_CAP + 1];
    uint32_t depth = 0;
    pending[0] = 1;
    for (;;) {
        while (pending[depth] == 0) {
            if (depth == 0)
                return PROTO_OK;
            depth--;
        }
        pending[depth]--;
        check_head head;
        int rc = read_head(st, &head);
        if (rc != PROTO_OK)
            return rc;
        if (!head.container) {
            rc = skip_payload(st, &head);
            if (rc != PROTO_OK)
                return rc;
            continue;
        }
        if (depth + 1 > st->max_depth)
            return proto_set_err(st->err, st->err_size, PROTO_EDEPTH,
                                 "offset %zu: nesting deeper than %" PRIu32, st->pos,
                                 st->max_depth);
        pending[++depth] = head.children;
    }
}

int proto_check(const uint8_t *data, size_t n_bytes, const proto_limits *limits, char *err,
                size_t err_size)
{
    proto_limits defaults;
    if (limits == NULL) {
        proto_limits_default(&defaults);
        limits = &defaults;
    }
    if (err != NULL && err_size > 0)
        err[0] = '\0';
    if (n_bytes > limits->max_message_bytes)
        return proto_set_err(err, err_size, PROTO_ETOOBIG,
                             "message of %zu bytes over the limit of %zu", n_bytes,
                             limits->max_message_bytes);
    if (data == NULL && n_bytes > 0)
        return proto_set_err(err, err_size, PROTO_EINVAL, "no input");
    check_state st = {
        .data = data,
        .n_bytes = n_bytes,
        .limits = limits,
        .max_depth = limits->max_depth < PROTO_DEPTH_CAP ? limits->max_depth : PROTO_DEPTH_CAP,
        .err = err,
        .err_size = err_size,
    };
    int rc = walk(&st);
    if (rc != PROTO_OK)
        return rc;
    if (st.pos != n_bytes)
        return proto_set_err(err, err_size, PROTO_ETRAILING,
                             "%zu trailing bytes after the message (which ends at offset %zu)",
                             n_bytes - st.pos, st.pos);
    return PROTO_OK;
}
