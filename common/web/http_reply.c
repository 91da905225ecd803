#include "http_reply.h"

#include <string.h>

int http_reply_add_header(struct lws *wsi, const char *name, const char *value, uint8_t **p,
                          uint8_t *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

void http_reply_start(http_reply *reply, struct lws *wsi, int status, const char *content_type,
                      const void *data, size_t n_bytes, void (*owned_free)(void *))
{
    http_reply_reset(reply);
    reply->status = status;
    reply->content_type = content_type;
    reply->out = data;
    reply->out_len = n_bytes;
    if (owned_free) {
        reply->owned = (void *)(uintptr_t)data;
        reply->owned_free = owned_free;
    }
    reply->responding = true;
    lws_callback_on_writable(wsi);
}

int http_reply_write_headers(http_reply *reply, struct lws *wsi, http_reply_headers_cb cb,
                             void *user_data)
{
    uint8_t buf[LWS_PRE + 2048];
    uint8_t *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;

    if (lws_add_http_common_headers(wsi, (unsigned)reply->status, reply->content_type,
                                    reply->out_len, &p, end) ||
        (cb && cb(user_data, wsi, &p, end)) || lws_finalize_http_header(wsi, &p, end))
        return -1;
    if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) != (int)(p - start))
        return -1;
    reply->headers_sent = true;
    return 0;
}

int http_reply_write_body(http_reply *reply, struct lws *wsi)
{
    uint8_t buf[LWS_PRE + HTTP_REPLY_CHUNK];
    size_t n = reply->out_len - reply->out_sent;
    enum lws_write_protocol kind = LWS_WRITE_HTTP_FINAL;

    if (n > HTTP_REPLY_CHUNK) {
        n = HTTP_REPLY_CHUNK;
        kind = LWS_WRITE_HTTP;
    }
    if (n > 0)
        memcpy(buf + LWS_PRE, reply->out + reply->out_sent, n);
    if (lws_write(wsi, buf + LWS_PRE, n, kind) != (int)n)
        return -1;
    reply->out_sent += n;
    return kind == LWS_WRITE_HTTP_FINAL ? 1 : 0;
}

int http_reply_writeable(http_reply *reply, struct lws *wsi, http_reply_headers_cb cb,
                         void *user_data)
{
    int rc;

    if (!reply->headers_sent) {
        if (http_reply_write_headers(reply, wsi, cb, user_data) != 0)
            return -1;
        lws_callback_on_writable(wsi);
        return 0;
    }
    rc = http_reply_write_body(reply, wsi);
    if (rc == 0)
        lws_callback_on_writable(wsi);
    return rc;
}

void http_reply_reset(http_reply *reply)
{
    if (!reply)
        return;
    if (reply->owned_free)
        reply->owned_free(reply->owned);
    memset(reply, 0, sizeof *reply);
}
