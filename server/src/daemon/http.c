#include "http.h"

#include <stdio.h>
#include <string.h>

#include "server.h"

typedef struct http_route {
    const char *path;
    const char *content_type;
    /* Writes the body into buf (at most size bytes); returns its length. */
    size_t (*body)(const server *srv, char *buf, size_t size);
} http_route;

static size_t status_body(const server *srv, char *buf, size_t size)
{
    int n = snprintf(buf, size, "outpostd %s\nsync: wss://HOST:%u/sync (subprotocol outpost.1)\n"
                     "sessions: %u\n", "ok", (unsigned)srv->config.port,
                     (unsigned)server_sessions(srv));
    return n < 0 ? 0 : ((size_t)n < size ? (size_t)n : size - 1);
}

static const http_route routes[] = {
    {"/", "text/plain; charset=utf-8", status_body},
    {"/status", "text/plain; charset=utf-8", status_body},
};

static int find_route(const char *path)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strcmp(routes[i].path, path) == 0)
            return (int)i;
    return -1;
}

/* Headers go out from the HTTP callback, the body from HTTP_WRITEABLE, as lws asks. */
static int send_headers(struct lws *wsi, const http_route *route, size_t body_len)
{
    uint8_t buf[LWS_PRE + 1024];
    uint8_t *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    static const char hsts[] = "max-age=31536000";

    if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, route->content_type, body_len, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"strict-transport-security:",
                                    (const unsigned char *)hsts, (int)strlen(hsts), &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    http_request *req = user;
    server *srv = lws_context_user(lws_get_context(wsi));
    uint8_t out[LWS_PRE + sizeof req->body];

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        req->route = find_route((const char *)in);
        if (req->route < 0) {
            if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
                return -1;
            return lws_http_transaction_completed(wsi);
        }
        req->body_len = routes[req->route].body(srv, req->body, sizeof req->body);
        return send_headers(wsi, &routes[req->route], req->body_len);

    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!req || req->route < 0)
            break;
        memcpy(out + LWS_PRE, req->body, req->body_len);
        if (lws_write(wsi, out + LWS_PRE, req->body_len, LWS_WRITE_HTTP_FINAL) !=
            (int)req->body_len)
            return 1;
        req->route = -1;
        if (lws_http_transaction_completed(wsi))
            return -1;
        return 0;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
