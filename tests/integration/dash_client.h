/*
 * A small HTTPS/1.1 client for the dashboard API tests: one request per connection (Connection:
 * close), mbedTLS verifying outpostd against the test CA, the reply's status, headers and body.
 */
#ifndef OUTPOST_DASH_CLIENT_H
#define OUTPOST_DASH_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct dash_reply {
    int status;
    char *headers; /* the header block, lower-cased names, NUL-terminated */
    char *body;    /* NUL-terminated */
    size_t body_len;
} dash_reply;

/* Sends method path with the optional session cookie value, CSRF token, one extra header line
 * ("Name: value") and form body (NULL on a POST: none, and no Content-Length header). Returns
 * 0 (the reply is in out) or -1. */
int dash_request(uint16_t port, const char *ca_path, const char *method, const char *path,
                 const char *cookie, const char *csrf, const char *extra_header,
                 const char *form_body, dash_reply *out);
void dash_reply_free(dash_reply *r);

/* The value of header name (lower case, without colon) into out; -1 when absent. */
int dash_reply_header(const dash_reply *r, const char *name, char *out, size_t size);

/* The string value of "key":"..." in a JSON body (no escapes expected); -1 when absent. */
int dash_json_string(const char *body, const char *key, char *out, size_t size);

/* A /live WebSocket (subprotocol outpost.live) over TLS, as the dashboard page opens it. */
typedef struct dash_live dash_live;

/* Sends the /live handshake with the session cookie and Origin header (each NULL: none sent).
 * Returns the reply's HTTP status (101: upgraded, *out is the open socket), or -1. */
int dash_live_open(uint16_t port, const char *ca_path, const char *cookie, const char *origin,
                   dash_live **out);

/* Waits up to timeout_ms for the server's next frame. 1: a text frame, its payload in out;
 * 0: nothing came; 2: the server closed the socket (close frame or end of stream); -1: error. */
int dash_live_next(dash_live *l, int timeout_ms, char *out, size_t size);

void dash_live_close(dash_live *l); /* NULL is a no-op */

/* The same raw client on another WebSocket path and subprotocol (such as /sync, outpost.1),
 * for what lws as a client never sends: it writes at most 1,460 bytes per TLS record. */
int dash_ws_open(uint16_t port, const char *ca_path, const char *path, const char *protocol,
                 dash_live **out);

/* Sends n binary messages as masked frames in one write: up to 16 KiB travel in one TLS
 * record, as a writer that coalesces its sends produces. 0 or -1. */
int dash_ws_send_binary(dash_live *l, const uint8_t *const *msgs, const size_t *lens, size_t n);

/* The server's next frame: 1 a binary frame (payload in out, its length in *out_len), 0
 * nothing came within timeout_ms, 2 closed (close frame or end of stream), -1 error. */
int dash_ws_next_binary(dash_live *l, int timeout_ms, uint8_t *out, size_t size,
                        size_t *out_len);

#endif /* OUTPOST_DASH_CLIENT_H */
