/*
 * One HTTP response written from libwebsockets' HTTP_WRITEABLE callback: the status line and
 * headers first, then the body in pieces of HTTP_REPLY_CHUNK bytes, the last one marked final.
 * Shared by outpostd's HTTPS side (server/src/daemon/http.c) and the CLI's field app
 * (client-lib/cli/field.c); each adds its own headers through http_reply_headers_cb.
 *
 * Not thread-safe: call from the lws service thread that owns the connection.
 */
#ifndef OUTPOST_HTTP_REPLY_H
#define OUTPOST_HTTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

/* Bytes written per HTTP_WRITEABLE callback. */
#define HTTP_REPLY_CHUNK 16384u

typedef struct http_reply {
    bool responding;   /* a response is queued or being written */
    bool headers_sent; /* the status line and headers are out */
    int status;
    const char *content_type;
    const uint8_t *out; /* the body */
    size_t out_len;
    size_t out_sent;
    void *owned;              /* the body's memory, when the reply frees it */
    void (*owned_free)(void *); /* frees owned */
} http_reply;

/* Adds the headers that follow lws's common ones (status, content-type, content-length);
 * returns 0, or non-zero when they do not fit between *p and end. */
typedef int (*http_reply_headers_cb)(void *user_data, struct lws *wsi, uint8_t **p,
                                     uint8_t *end);

/* One "name:" value header; returns 0, or non-zero when it does not fit. */
int http_reply_add_header(struct lws *wsi, const char *name, const char *value, uint8_t **p,
                          uint8_t *end);

/* Queues a response of n_bytes from data and asks lws for a writable callback. data must stay
 * valid until the reply is reset; when owned_free is not NULL the reply takes data and frees it
 * with owned_free. A response queued before is dropped (and its body freed). */
void http_reply_start(http_reply *reply, struct lws *wsi, int status, const char *content_type,
                      const void *data, size_t n_bytes, void (*owned_free)(void *));

/* Writes the status line, lws's common headers, what cb adds (cb may be NULL) and the end of
 * the headers. Returns 0 or -1. */
int http_reply_write_headers(http_reply *reply, struct lws *wsi, http_reply_headers_cb cb,
                             void *user_data);

/* Writes the next piece of the body: 1 when the response is complete, 0 when more is to come,
 * -1 on a write failure. */
int http_reply_write_body(http_reply *reply, struct lws *wsi);

/* One HTTP_WRITEABLE callback's work: the headers, or the next piece of the body, asking for
 * another callback while more is to come. Returns 1 when the response is complete (the caller
 * resets its request and completes the transaction), 0 otherwise, -1 on a write failure. */
int http_reply_writeable(http_reply *reply, struct lws *wsi, http_reply_headers_cb cb,
                         void *user_data);

/* Frees an owned body and empties the reply. NULL is a no-op. */
void http_reply_reset(http_reply *reply);

#endif /* OUTPOST_HTTP_REPLY_H */
