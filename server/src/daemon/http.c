#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard.h"
#include "ops.h"
#include "live.h"
#include "log.h"
#include "server.h"
#include "sync_handler.h"
#include "web_asset.h"

static size_t status_body(const server *srv, char *buf, size_t size)
{
    int n = snprintf(buf, size, "outpostd %s\nsync: wss://HOST:%u/sync (subprotocol outpost.1)\n"
                     "dashboard: https://HOST:%u/dashboard/\nsessions: %u\n", "ok",
                     (unsigned)srv->config.port, (unsigned)srv->config.port,
                     (unsigned)server_sessions(srv));
    return n < 0 ? 0 : ((size_t)n < size ? (size_t)n : size - 1);
}

int http_respond(http_request *req, int status, const char *content_type, const void *data,
                 size_t n_bytes, bool is_static)
{
    dash_buf copy = {0};

    if (is_static) {
        http_reply_start(&req->reply, req->wsi, status, content_type, data, n_bytes, NULL);
        return 0;
    }
    dash_buf_put(&copy, data, n_bytes);
    if (copy.failed) {
        dash_buf_free(&copy);
        return -1;
    }
    http_respond_buf(req, status, content_type, &copy);
    return 0;
}

void http_respond_buf(http_request *req, int status, const char *content_type, dash_buf *body)
{
    http_reply_start(&req->reply, req->wsi, status, content_type, body->data, body->len, free);
    memset(body, 0, sizeof *body);
}

/* The dashboard's headers after lws's common ones. */
static int add_headers(void *user_data, struct lws *wsi, uint8_t **p, uint8_t *end)
{
    const http_request *req = user_data;

    return http_reply_add_header(wsi, "strict-transport-security:",
                                 "max-age=31536000; includeSubDomains", p, end) ||
           http_reply_add_header(wsi, "cache-control:", "no-store", p, end) ||
           (req->set_cookie[0] && http_reply_add_header(wsi, "set-cookie:", req->set_cookie, p,
                                                        end)) ||
           (req->disposition[0] &&
            http_reply_add_header(wsi, "content-disposition:", req->disposition, p, end)) ||
           (req->truncated && http_reply_add_header(wsi, "x-outpost-truncated:", "rows", p, end)) ||
           /* every 503 means "try again": the store busy or unreachable, a queue full */
           (req->reply.status == 503 &&
            http_reply_add_header(wsi, "retry-after:", HTTP_RETRY_AFTER_S, p, end));
}

static void request_reset(http_request *req)
{
    struct lws *wsi = req->wsi;

    lws_sul_cancel(&req->body_timer); /* linked into lws's timer list while armed */
    http_reply_reset(&req->reply);
    memset(req, 0, sizeof *req);
    req->wsi = wsi;
}

static const web_asset *find_asset(const char *path)
{
    if (strcmp(path, "/dashboard") == 0 || strcmp(path, "/dashboard/") == 0)
        path = "/dashboard/index.html";
    for (size_t i = 0; i < web_assets_count; i++)
        if (strcmp(web_assets[i].path, path) == 0)
            return &web_assets[i];
    return NULL;
}

static int serve(http_request *req, server *srv, const char *path)
{
    const web_asset *asset;
    char text[512];
    int rc;

    if (ops_serve(srv, req, path, &rc))
        return rc;
    if (strcmp(path, "/") == 0 || strcmp(path, "/status") == 0) {
        size_t n = status_body(srv, text, sizeof text);
        return http_respond(req, 200, "text/plain; charset=utf-8", text, n, false);
    }
    if (strncmp(path, "/api/", 5) == 0)
        return dashboard_request(srv->dash, req, path);
    asset = find_asset(path);
    if (asset)
        return http_respond(req, 200, asset->content_type, asset->data, asset->n_bytes, true);
    return http_respond(req, 404, "text/plain; charset=utf-8", "not found\n", 10, true);
}

static void log_body_late(const http_request *req, const server *srv)
{
    log_limited(LOG_WARN, "http %s: request body not complete within %u s, closed", req->path,
                (unsigned)srv->config.limits.message_timeout_s);
}

/* The body's deadline passed with no piece arriving to notice it (lws re-arms its own timeout,
 * handshake_timeout_s, only while pieces come): the connection is closed now. */
static void body_deadline_passed(lws_sorted_usec_list_t *sul)
{
    http_request *req = lws_container_of(sul, http_request, body_timer);
    const server *srv = lws_context_user(lws_get_context(req->wsi));

    log_body_late(req, srv);
    lws_set_timeout(req->wsi, PENDING_TIMEOUT_HTTP_CONTENT, LWS_TO_KILL_ASYNC);
}

int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    http_request *req = user;
    server *srv = lws_context_user(lws_get_context(wsi));
    int rc;

    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        /* lws hands a WebSocket upgrade that names no subprotocol (or an unknown one) to this
         * first protocol: accepted, it would belong to no session, no count and no timeout. */
        char peer[64];
        if (!lws_get_peer_simple(wsi, peer, sizeof peer))
            snprintf(peer, sizeof peer, "unknown");
        log_limited(LOG_WARN, "peer=%s refused: WebSocket upgrade without subprotocol %s or %s",
                    peer, SYNC_PROTOCOL_NAME, LIVE_PROTOCOL_NAME);
        return 1;
    }

    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return live_confirm_upgrade(srv ? srv->dash : NULL, wsi);

    case LWS_CALLBACK_HTTP:
        if (req->pending_id)
            dashboard_forget(srv->dash, req);
        req->wsi = wsi;
        request_reset(req);
        req->is_post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
        if (strlen((const char *)in) >= sizeof req->path) {
            if (http_respond(req, 404, "text/plain; charset=utf-8", "not found\n", 10, true))
                return -1;
            return 0;
        }
        snprintf(req->path, sizeof req->path, "%s", (const char *)in);
        if (req->is_post && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0) {
            /* lws waits for a body it was not told the length of, and the client for a reply:
             * neither would come. Every POST here is a small form, sent with its length. */
            if (http_respond(req, 411, "text/plain; charset=utf-8",
                             "Content-Length required\n", 24, true))
                return -1;
            return 0;
        }
        if (req->is_post) {
            /* lws re-arms its own timeout at every piece of body, so a body trickled in a byte
             * at a time would hold the connection for ever: the whole body has a deadline,
             * checked at each piece and by a timer for a body that stops coming. */
            uint64_t limit_ms = (uint64_t)srv->config.limits.message_timeout_s * 1000u;
            req->body_deadline_ms = server_now_ms() + limit_ms;
            lws_sul_schedule(lws_get_context(wsi), 0, &req->body_timer, body_deadline_passed,
                             (lws_usec_t)limit_ms * LWS_US_PER_MS);
            return 0; /* answered once the body is in */
        }
        return serve(req, srv, req->path) == 0 ? 0 : -1;

    case LWS_CALLBACK_HTTP_BODY:
        if (!req)
            return -1;
        if (server_now_ms() > req->body_deadline_ms) {
            log_body_late(req, srv);
            return -1;
        }
        if (req->body_in_len + len > HTTP_BODY_MAX) {
            req->body_too_big = true;
            return 0;
        }
        if (len > 0)
            memcpy(req->body_in + req->body_in_len, in, len);
        req->body_in_len += len;
        req->body_in[req->body_in_len] = 0;
        return 0;

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (!req)
            return -1;
        lws_sul_cancel(&req->body_timer);
        if (req->body_too_big)
            return http_respond(req, 413, "text/plain; charset=utf-8", "request too large\n",
                                18, true) == 0
                       ? 0
                       : -1;
        return serve(req, srv, req->path) == 0 ? 0 : -1;

    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!req || !req->reply.responding)
            return 0;
        rc = http_reply_writeable(&req->reply, wsi, add_headers, req);
        if (rc <= 0)
            return rc;
        request_reset(req);
        if (lws_http_transaction_completed(wsi))
            return -1;
        return 0;

    case LWS_CALLBACK_HTTP_DROP_PROTOCOL: /* req is freed after this (close or upgrade) */
        if (req)
            lws_sul_cancel(&req->body_timer);
        break;

    case LWS_CALLBACK_CLOSED_HTTP:
        if (req) {
            lws_sul_cancel(&req->body_timer);
            if (req->pending_id)
                dashboard_forget(srv->dash, req);
            http_reply_reset(&req->reply);
        }
        break;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
