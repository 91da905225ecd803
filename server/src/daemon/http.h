/*
 * The HTTPS side of outpostd's port: the status page (/ and /status), the health check and
 * metrics (/healthz, /metrics: ops.c), the dashboard's assets
 * (/dashboard/...) embedded in the binary, and the dashboard's API (/api/..., dashboard.c).
 * Every response carries HSTS, no-store and lws's security headers (a Content-Security-Policy
 * without inline script among them).
 */
#ifndef OUTPOSTD_HTTP_H
#define OUTPOSTD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "dash_buf.h"
#include "http_reply.h"

/* Largest request body (a login or decision form). */
#define HTTP_BODY_MAX 4096u
/* Retry-After on a 503, in seconds: about one health probe of the store (sweep.c, 2 s). */
#define HTTP_RETRY_AFTER_S "3"

/* Per-request state lws allocates for the "http" protocol. */
typedef struct http_request {
    struct lws *wsi;
    bool is_post;
    bool body_too_big;
    char path[64];
    size_t body_in_len;
    uint64_t body_deadline_ms; /* a POST body must be complete by then (message_timeout_s) */
    lws_sorted_usec_list_t body_timer; /* closes at body_deadline_ms if no piece comes */
    char body_in[HTTP_BODY_MAX + 1];
    uint64_t pending_id; /* non-zero while a store call for this request is out */

    /* The response, written from HTTP_WRITEABLE: headers first, then the body in pieces. */
    http_reply reply;
    char set_cookie[192];
    char disposition[96];
    bool truncated; /* an export stopped at its byte budget: x-outpost-truncated: rows */
} http_request;

int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len);

/* Queues a response; data is copied unless is_static. Returns 0 or -1. */
int http_respond(http_request *req, int status, const char *content_type, const void *data,
                 size_t n_bytes, bool is_static);

/* Queues a response whose body is taken from body (left empty). */
void http_respond_buf(http_request *req, int status, const char *content_type, dash_buf *body);

#endif /* OUTPOSTD_HTTP_H */
