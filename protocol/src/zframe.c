/* Compressed frames: one raw DEFLATE stream per direction of a session (proto.h, "Compression"). */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "outpost/proto.h"

/* memLevel 4 with a 4 KiB window: deflate holds about 24 KiB of tables, inflate its 4 KiB window
 * and state. Contact rows repeat within a few hundred bytes, so a larger window buys little. */
enum { ZMEM_LEVEL = 4 };

static const uint8_t sync_tail[4] = {0x00, 0x00, 0xff, 0xff};

struct proto_zstream {
    z_stream z;
    bool compress;
    bool broken;
    int level;        /* the DEFLATE level the stream compresses at now */
    size_t bulk_from; /* messages this long or longer go at PROTO_ZLEVEL_BULK; 0: none */
    const char *why;  /* what was wrong with the last frame refused as malformed */
};

int proto_zstream_new(bool compress, proto_zstream **out_stream)
{
    proto_zstream *s = calloc(1, sizeof *s);
    int zrc;

    *out_stream = NULL;
    if (s == NULL)
        return PROTO_ENOMEM;
    s->compress = compress;
    s->level = PROTO_ZLEVEL;
    if (compress)
        zrc = deflateInit2(&s->z, PROTO_ZLEVEL, Z_DEFLATED, -PROTO_ZWINDOW_BITS, ZMEM_LEVEL,
                           Z_DEFAULT_STRATEGY);
    else
        zrc = inflateInit2(&s->z, -PROTO_ZWINDOW_BITS);
    if (zrc != Z_OK) {
        free(s);
        return PROTO_ENOMEM;
    }
    *out_stream = s;
    return PROTO_OK;
}

void proto_zstream_free(proto_zstream *stream)
{
    if (stream == NULL)
        return;
    if (stream->compress)
        deflateEnd(&stream->z);
    else
        inflateEnd(&stream->z);
    free(stream);
}

void proto_zstream_bulk_from(proto_zstream *stream, size_t n_bytes)
{
    if (stream != NULL)
        stream->bulk_from = n_bytes;
}

static int reserve(proto_buf *out, size_t more)
{
    if (out->cap - out->len >= more)
        return PROTO_OK;
    size_t cap = out->cap ? out->cap : 256;
    while (cap - out->len < more) {
        if (cap > SIZE_MAX / 2)
            return PROTO_ENOMEM;
        cap *= 2;
    }
    uint8_t *grown = realloc(out->data, cap);
    if (grown == NULL)
        return PROTO_ENOMEM;
    out->data = grown;
    out->cap = cap;
    return PROTO_OK;
}

bool proto_is_zframe(const uint8_t *data, size_t n_bytes)
{
    return n_bytes > 0 && data[0] == PROTO_ZFRAME_MARK;
}

int proto_zframe_deflate(proto_zstream *stream, const uint8_t *data, size_t n_bytes,
                         proto_buf *out)
{
    size_t start = out->len;

    if (stream == NULL || !stream->compress || stream->broken || n_bytes > UINT32_MAX)
        return PROTO_EINVAL;
    /* deflateBound() does not cover a sync flush's few bytes: allow 16 more, then grow. */
    int rc = reserve(out, 1 + deflateBound(&stream->z, (uLong)n_bytes) + 16);
    if (rc != PROTO_OK)
        return rc;
    out->data[out->len++] = PROTO_ZFRAME_MARK;
    int level = stream->bulk_from && n_bytes >= stream->bulk_from ? PROTO_ZLEVEL_BULK : PROTO_ZLEVEL;
    if (level != stream->level) {
        /* Between frames: the last one ended in a sync flush, so zlib has no input held back
         * and switches at once (anything it did emit belongs to this frame). */
        stream->z.next_in = (Bytef *)(uintptr_t)data;
        stream->z.avail_in = 0;
        stream->z.next_out = out->data + out->len;
        stream->z.avail_out = (uInt)(out->cap - out->len);
        int zrc = deflateParams(&stream->z, level, Z_DEFAULT_STRATEGY);
        out->len = out->cap - stream->z.avail_out;
        /* Z_BUF_ERROR: its internal flush had nothing to do (zlib 1.2.11 says so). */
        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            stream->broken = true;
            out->len = start;
            return PROTO_EINVAL;
        }
        stream->level = level;
    }
    stream->z.next_in = (Bytef *)(uintptr_t)data;
    stream->z.avail_in = (uInt)n_bytes;
    for (;;) {
        stream->z.next_out = out->data + out->len;
        stream->z.avail_out = (uInt)(out->cap - out->len);
        int zrc = deflate(&stream->z, Z_SYNC_FLUSH);
        out->len = out->cap - stream->z.avail_out;
        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            stream->broken = true;
            out->len = start;
            return PROTO_EINVAL;
        }
        if (stream->z.avail_in == 0 && stream->z.avail_out > 0)
            break;
        rc = reserve(out, 256);
        if (rc != PROTO_OK) {
            /* The stream has taken input the peer will never see: it cannot go on. */
            stream->broken = true;
            out->len = start;
            return rc;
        }
    }
    /* A sync flush always ends in an empty stored block, 00 00 ff ff: the peer puts it back. */
    if (out->len - start >= 1 + sizeof sync_tail &&
        memcmp(out->data + out->len - sizeof sync_tail, sync_tail, sizeof sync_tail) == 0)
        out->len -= sizeof sync_tail;
    return PROTO_OK;
}

/* Room for more output when out is full, never past max_out + 1 bytes: one byte over the limit
 * is enough to know a message is over it. */
static int grow_bounded(proto_buf *out, size_t max_out)
{
    size_t want = out->cap ? out->cap * 2 : 4096;

    if (want > max_out + 1)
        want = max_out + 1;
    if (want <= out->cap)
        return PROTO_ETOOBIG;
    uint8_t *grown = realloc(out->data, want);
    if (grown == NULL)
        return PROTO_ENOMEM;
    out->data = grown;
    out->cap = want;
    return PROTO_OK;
}

/* Feeds in to the stream until zlib has taken all of it and holds back no output. */
static int inflate_input(proto_zstream *s, const uint8_t *in, size_t n, size_t max_out,
                         proto_buf *out)
{
    s->z.next_in = (Bytef *)(uintptr_t)in;
    s->z.avail_in = (uInt)n;
    for (;;) {
        if (out->len == out->cap) {
            int rc = grow_bounded(out, max_out);
            if (rc != PROTO_OK)
                return rc;
        }
        s->z.next_out = out->data + out->len;
        s->z.avail_out = (uInt)(out->cap - out->len);
        int zrc = inflate(&s->z, Z_SYNC_FLUSH);
        out->len = out->cap - s->z.avail_out;
        if (out->len > max_out)
            return PROTO_ETOOBIG;
        /* Z_STREAM_END too: a frame never ends the session's stream. */
        if (zrc == Z_STREAM_END) {
            s->why = "a final block ends the DEFLATE stream, which a frame must not";
            return PROTO_EMALFORMED;
        }
        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            s->why = s->z.msg ? s->z.msg : "not valid DEFLATE data";
            return PROTO_EMALFORMED;
        }
        if (s->z.avail_in == 0 && s->z.avail_out > 0)
            return PROTO_OK;
    }
}

int proto_zframe_inflate(proto_zstream *stream, const uint8_t *data, size_t n_bytes,
                         size_t max_out, proto_buf *out)
{
    out->len = 0;
    if (stream == NULL || stream->compress || stream->broken)
        return PROTO_EINVAL;
    int rc = PROTO_EMALFORMED;
    stream->why = "not a compressed frame";
    if (proto_is_zframe(data, n_bytes) && n_bytes - 1 <= UINT32_MAX)
        rc = inflate_input(stream, data + 1, n_bytes - 1, max_out, out);
    /* The sync tail the sender left off ends the message. */
    if (rc == PROTO_OK)
        rc = inflate_input(stream, sync_tail, sizeof sync_tail, max_out, out);
    if (rc != PROTO_OK) {
        stream->broken = true;
        out->len = 0;
    }
    return rc;
}

const char *proto_zframe_why(const proto_zstream *stream)
{
    return stream && stream->why ? stream->why : "not a compressed frame";
}
