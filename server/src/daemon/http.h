/*
 * The HTTPS side of outpostd's port: a small route table. Today it serves a status page at /
 * and answers 404 elsewhere; the dashboard adds its routes here.
 */
#ifndef OUTPOSTD_HTTP_H
#define OUTPOSTD_HTTP_H

#include <stddef.h>

#include <libwebsockets.h>

/* Per-request state lws allocates for the "http" protocol. */
typedef struct http_request {
    int route; /* index into the route table, -1 when none */
    size_t body_len;
    char body[512]; /* made once per request so Content-Length and body agree */
} http_request;

int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len);

#endif /* OUTPOSTD_HTTP_H */
