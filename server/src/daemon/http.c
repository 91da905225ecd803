#include "http.h"

#include <stdio.h>
#include <string.h>

#include "dashboard.h"
#include "ops.h"
#include "live.h"
#include "log.h"
#include "server.h"
#include "sync_handler.h"
#include "web_asset.h"

/* Bytes written per HTTP_WRITEABLE callback. */
#define HTTP_CHUNK 16384u

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
    dash_buf_free(&req->owned);
    req->status = status;
    req->content_type = content_type;
    if (is_static) {
        req->out = data;
    } else {
        dash_buf_put(&req->owned, data, n_bytes);
        if (req->owned.failed)
            return -1;
        req->out = (const uint8_t *)req->owned.data;
    }
    req->out_len = n_bytes;
    req->out_sent = 0;
    req->responding = true;
    req->headers_sent = false;
    lws_callback_on_writable(req->wsi);
    return 0;
}

void http_respond_buf(http_request *req, int status, const char *content_type, dash_buf *body)
{
    dash_buf_free(&req->owned);
    req->owned = *body;
    memset(body, 0, sizeof *body);
    req->status = status;
    req->content_type = content_type;
    req->out = (const uint8_t *)req->owned.data;
    req->out_len = req->owned.len;
    req->out_sent = 0;
    req->responding = true;
    req->headers_sent = false;
    lws_callback_on_writable(req->wsi);
}

static int add_header(struct lws *wsi, const char *name, const char *value, uint8_t **p,
                      uint8_t *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

static int write_headers(http_request *req)
{
    uint8_t buf[LWS_PRE + 2048];
    uint8_t *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    struct lws *wsi = req->wsi;

    if (lws_add_http_common_headers(wsi, (unsigned)req->status, req->content_type, req->out_len,
                                    &p, end) ||
        add_header(wsi, "strict-transport-security:", "max-age=31536000; includeSubDomains", &p,
                   end) ||
        add_header(wsi, "cache-control:", "no-store", &p, end) ||
        (req->set_cookie[0] && add_header(wsi, "set-cookie:", req->set_cookie, &p, end)) ||
        (req->disposition[0] &&
         add_header(wsi, "content-disposition:", req->disposition, &p, end)) ||
        (req->truncated && add_header(wsi, "x-outpost-truncated:", "rows", &p, end)) ||
        lws_finalize_http_header(wsi, &p, end))
        return -1;
    if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) != (int)(p - start))
        return -1;
    req->headers_sent = true;
    return 0;
}

/* Writes the next piece; returns 1 when the response is complete, 0 when more is to come, -1
 * on a write failure. */
static int write_body(http_request *req)
{
    uint8_t buf[LWS_PRE + HTTP_CHUNK];
    size_t n = req->out_len - req->out_sent;
    enum lws_write_protocol kind = LWS_WRITE_HTTP_FINAL;

    if (n > HTTP_CHUNK) {
        n = HTTP_CHUNK;
        kind = LWS_WRITE_HTTP;
    }
    if (n > 0)
        memcpy(buf + LWS_PRE, req->out + req->out_sent, n);
    if (lws_write(req->wsi, buf + LWS_PRE, n, kind) != (int)n)
        return -1;
    req->out_sent += n;
    return kind == LWS_WRITE_HTTP_FINAL ? 1 : 0;
}

static void request_reset(http_request *req)
{
    struct lws *wsi = req->wsi;

    dash_buf_free(&req->owned);
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
        if (req->is_post) {
            /* lws re-arms its own timeout at every piece of body, so a body trickled in a byte
             * at a time would hold the connection for ever: the whole body has a deadline. */
            req->body_deadline_ms =
                server_now_ms() + (uint64_t)srv->config.limits.message_timeout_s * 1000u;
            return 0; /* answered once the body is in */
        }
        return serve(req, srv, req->path) == 0 ? 0 : -1;

    case LWS_CALLBACK_HTTP_BODY:
        if (!req)
            return -1;
        if (server_now_ms() > req->body_deadline_ms) {
            log_limited(LOG_WARN, "http %s: request body not complete within %u s, closed",
                        req->path, (unsigned)srv->config.limits.message_timeout_s);
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
        if (req->body_too_big)
            return http_respond(req, 413, "text/plain; charset=utf-8", "request too large\n",
                                18, true) == 0
                       ? 0
                       : -1;
        return serve(req, srv, req->path) == 0 ? 0 : -1;

    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!req || !req->responding)
            return 0;
        if (!req->headers_sent) {
            if (write_headers(req) != 0)
                return -1;
            lws_callback_on_writable(wsi);
            return 0;
        }
        rc = write_body(req);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            lws_callback_on_writable(wsi);
            return 0;
        }
        request_reset(req);
        if (lws_http_transaction_completed(wsi))
            return -1;
        return 0;

    case LWS_CALLBACK_CLOSED_HTTP:
        if (req) {
            if (req->pending_id)
                dashboard_forget(srv->dash, req);
            dash_buf_free(&req->owned);
        }
        break;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
