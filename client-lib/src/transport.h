/*
 * The device's connection to outpostd: one WebSocket (subprotocol "outpost.1") over TLS 1.3 or
 * 1.2, carrying whole binary messages. Internal to liboutpost; the sync engine drives it.
 *
 * Threads. A transport belongs to the one thread that calls transport_service() (the sync
 * engine's thread). Every function below must be called on that thread, except
 * transport_wake(), which any thread may call at any time between transport_create() and
 * transport_destroy(). Every callback runs inside transport_service(), on that thread, and must
 * not block: it may call transport_send(), transport_connect() and transport_disconnect(), but
 * never transport_destroy() or transport_service().
 *
 * Lifecycle. transport_create() parses and checks the configuration and makes the TLS context;
 * it opens no socket. transport_connect() starts one connection attempt. Each attempt that
 * transport_connect() accepted ends in exactly one on_closed(), unless the transport is
 * destroyed first: either it never got through (unreachable, certificate rejected, timeout...)
 * or it was open (on_connected() came first) and then closed. The transport never reconnects
 * by itself: the caller decides when to try again (backoff.h), by calling transport_connect()
 * again, for example from on_closed().
 *
 * Trust. Exactly one of two modes, chosen in the config, and no way to turn checking off:
 *   - CA (normal operation): the server's chain must verify against the CA certificate(s)
 *     given, the certificate must be within its validity dates, and it must be issued for the
 *     URL's host (DNS name or IP address in its subjectAltName).
 *   - pin (enrollment only, when the device has scanned the server's pin and has no CA yet): the
 *     chain, dates and host name are not checked, but the SHA-256 of the server's leaf
 *     certificate (its DER bytes) must equal the pin.
 * Either way the check runs after the TLS handshake and before the first byte of the WebSocket
 * upgrade request is written: a rejected server receives nothing but the TLS handshake.
 *
 * Errors. Functions that can fail return 0 or a negative errno value, listed per function.
 *
 * Name resolution. This build of lws resolves host names with a blocking getaddrinfo() inside
 * transport_service(); with an IP address in the URL nothing blocks.
 */
#ifndef OUTPOST_TRANSPORT_H
#define OUTPOST_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRANSPORT_SUBPROTOCOL "outpost.1"
#define TRANSPORT_PIN_SIZE 32 /* SHA-256 */

#define TRANSPORT_DEFAULT_MAX_MESSAGE (1024u * 1024u) /* matches proto_limits' default */
#define TRANSPORT_DEFAULT_CONNECT_TIMEOUT_MS 15000u
#define TRANSPORT_DEFAULT_IDLE_TIMEOUT_S 60u

typedef struct transport transport;

/* Why a connection attempt or an open connection ended. Values are only ever appended. */
typedef enum transport_close_reason {
    /* No TCP connection to host:port: name not resolved, connection refused, no route, or no
     * answer within connect_timeout_ms. The usual "offline" or "server down". */
    TRANSPORT_CLOSE_UNREACHABLE = 1,
    /* Something accepted the TCP connection but TLS and the WebSocket upgrade did not finish
     * within connect_timeout_ms. */
    TRANSPORT_CLOSE_TIMEOUT,
    /* CA mode: the server's chain does not lead to the configured CA (another CA's certificate,
     * a self-signed one). Not transient: this is not our server, or the CA changed. */
    TRANSPORT_CLOSE_CERT_UNTRUSTED,
    /* CA mode: the certificate is from our CA but expired or not yet valid (check the device's
     * clock as well as the server's certificate). */
    TRANSPORT_CLOSE_CERT_EXPIRED,
    /* CA mode: the certificate is from our CA but issued for another host name. */
    TRANSPORT_CLOSE_CERT_HOSTNAME,
    /* Pin mode: the leaf certificate's SHA-256 differs from the pin. */
    TRANSPORT_CLOSE_CERT_PIN_MISMATCH,
    /* Any other certificate rejection (bad key usage, weak key or signature, revoked...). */
    TRANSPORT_CLOSE_CERT_OTHER,
    /* The TLS handshake did not complete, for a reason other than the certificate (the
     * connection dropped during it, or no protocol version or cipher suite in common). */
    TRANSPORT_CLOSE_TLS_FAILED,
    /* The server answered the upgrade request with something other than 101 Switching
     * Protocols for "outpost.1": wrong path, wrong port, not an Outpost server. */
    TRANSPORT_CLOSE_UPGRADE_REFUSED,
    /* The server broke the WebSocket rules, or sent a text message (Outpost is binary). */
    TRANSPORT_CLOSE_PROTOCOL_ERROR,
    /* The server sent a message larger than max_message_size; we refused it and closed (1009). */
    TRANSPORT_CLOSE_MESSAGE_TOO_BIG,
    /* The server closed the WebSocket with a close frame; peer_close_code says which. */
    TRANSPORT_CLOSE_PEER_CLOSED,
    /* The open connection ended without a close frame: cut, reset, or idle past
     * idle_timeout_s with no answer to our pings. */
    TRANSPORT_CLOSE_CONNECTION_LOST,
    /* transport_disconnect() was called. */
    TRANSPORT_CLOSE_LOCAL,
    /* Memory ran out while setting up the attempt or reassembling a message. */
    TRANSPORT_CLOSE_OUT_OF_MEMORY,
} transport_close_reason;

typedef enum transport_state {
    TRANSPORT_IDLE = 0,   /* no connection; transport_connect() may be called */
    TRANSPORT_CONNECTING, /* attempt in progress; on_connected() or on_closed() will follow */
    TRANSPORT_OPEN,       /* on_connected() has run; transport_send() accepts messages */
    TRANSPORT_CLOSING,    /* transport_disconnect() was called on an open connection */
} transport_state;

/* The WebSocket upgrade completed: messages may now be sent. */
typedef void (*transport_connected_cb)(void *user_data);

/* One complete binary message from the server (fragments already reassembled). data is valid
 * only during the call; copy what must outlive it. n_bytes may be 0. */
typedef void (*transport_message_cb)(void *user_data, const uint8_t *data, size_t n_bytes);

/* One queued message has been written whole to the TLS layer (which is not an acknowledgement
 * from the server); queued_bytes is what is still waiting. Lets the caller refill the queue. */
typedef void (*transport_sent_cb)(void *user_data, size_t queued_bytes);

/* The attempt or connection is over; the transport is TRANSPORT_IDLE again and messages still
 * queued have been dropped. peer_close_code is the server's close code with
 * TRANSPORT_CLOSE_PEER_CLOSED (0 if its close frame had none) and 0 otherwise. detail is a
 * human-readable explanation for logs (never NULL, valid only during the call). */
typedef void (*transport_closed_cb)(void *user_data, transport_close_reason reason,
                                    uint16_t peer_close_code, const char *detail);

/* Zero-initialise, then set what you need. Everything is copied by transport_create(). */
typedef struct transport_config {
    const char *url;              /* "wss://host[:port]/path" (outpostd: /sync), port 443 default */
    const char *ca_pem;           /* CA mode: NUL-terminated PEM, one or more certificates */
    const uint8_t *pin_sha256;    /* pin mode: TRANSPORT_PIN_SIZE bytes */
    size_t max_message_size;      /* largest message either way; 0 = DEFAULT_MAX_MESSAGE */
    size_t send_queue_limit;      /* bytes queued at most; 0 = 4 * max_message_size */
    uint32_t connect_timeout_ms;  /* TCP + TLS + upgrade; 0 = DEFAULT_CONNECT_TIMEOUT_MS */
    uint32_t idle_timeout_s;      /* ping after half of it idle, hang up after it with no
                                   * answer; 0 = DEFAULT_IDLE_TIMEOUT_S */
    transport_connected_cb on_connected; /* optional */
    transport_message_cb on_message;     /* required */
    transport_sent_cb on_sent;           /* optional */
    transport_closed_cb on_closed;       /* required */
    void *user_data;                     /* passed to every callback */
    bool no_resumption; /* full TLS handshakes only: keep and offer no session ticket */
} transport_config;

/* The parts of a sync URL. */
typedef struct transport_url {
    char host[256]; /* DNS name or IP address, IPv6 without its brackets */
    uint16_t port;
    char path[512]; /* starts with '/' */
} transport_url;

/* Parses and checks a sync URL: scheme wss only (case-insensitive), a host, an optional port in
 * 1..65535, an optional path (default "/") with no fragment. Returns 0, or -EINVAL with the
 * reason in errmsg (if errmsg is not NULL; errmsg_size bytes, always NUL-terminated). */
int transport_url_parse(const char *url, transport_url *out_url, char *errmsg,
                        size_t errmsg_size);

/* Reads a pin as 64 hex digits, optionally in colon-separated pairs as `openssl x509
 * -fingerprint -sha256` prints it ("AB:CD:..."), either case. Returns 0 or -EINVAL. */
int transport_pin_parse(const char *text, uint8_t out_pin[TRANSPORT_PIN_SIZE]);

/* Checks cfg and makes a transport in TRANSPORT_IDLE. Exactly one of ca_pem and pin_sha256
 * must be set. Returns 0 and *out_transport (owned by the caller: transport_destroy()), or
 * -EINVAL (bad URL, no or two trust modes, CA PEM that does not parse, missing callback),
 * -ENOMEM, or -EIO (TLS or libwebsockets setup failed); errmsg (optional) says which. */
int transport_create(const transport_config *cfg, transport **out_transport, char *errmsg,
                     size_t errmsg_size);

/* Closes any connection without calling callbacks, drops queued messages, frees everything.
 * NULL is a no-op. Not from inside a callback. */
void transport_destroy(transport *t);

/* Starts a connection attempt; it runs inside later transport_service() calls, which report
 * on_connected() or on_closed(). Returns 0, or -EBUSY when the transport is not
 * TRANSPORT_IDLE. */
int transport_connect(transport *t);

/* Ends the attempt or connection: an open one with a WebSocket close (1000), one still
 * connecting at once. on_closed(TRANSPORT_CLOSE_LOCAL) follows from transport_service(),
 * unless it had ended for another reason first. No-op when TRANSPORT_IDLE or already closing. */
void transport_disconnect(transport *t);

/* Sets the largest message accepted from the server (max_message_size until then), for the
 * messages after this call: the limit the server advertised. Call from a callback (the service
 * loop's thread). Sending keeps max_message_size. */
void transport_set_max_receive(transport *t, size_t max_bytes);

/* Queues a copy of one binary message; it is written from the service loop, in fragments if it
 * is large, never blocking the loop. Messages go out in the order queued. Returns 0, -ENOTCONN
 * unless TRANSPORT_OPEN, -EMSGSIZE if n_bytes > max_message_size, -EAGAIN when the queue holds
 * send_queue_limit bytes already (wait for on_sent; an empty queue always accepts one message),
 * -ENOMEM. data may be NULL when n_bytes is 0. */
int transport_send(transport *t, const uint8_t *data, size_t n_bytes);

/* Changes the idle timeout (pings after half of it with nothing received, hang up after it);
 * 0 = back to the configured one. Counts from now. Service thread only. */
void transport_set_idle_timeout(transport *t, uint32_t idle_timeout_s);

/* Runs the event loop once: waits up to timeout_ms (0 or less: do not wait) for network
 * activity, a timer or transport_wake(), then handles what is ready, calling the callbacks.
 * May return early; loop on it. Returns 0, or -EIO if the event loop failed. When nothing is
 * under way (no attempt, nothing queued, nothing buffered) the wait is on the socket and
 * transport_wake() alone, up to the ping interval when open: libwebsockets' own housekeeping
 * timer (30 s) does not end it. */
int transport_service(transport *t, int timeout_ms);

/* Makes a transport_service() that is waiting (or the next one) return soon. Thread-safe and
 * async-signal-unsafe; must not race with transport_destroy(). */
void transport_wake(transport *t);

transport_state transport_get_state(const transport *t);

/* TLS handshakes of connections that passed the certificate check: full ones, and those that
 * resumed the session of an earlier connection of this transport (TLS 1.3 ticket, kept in
 * memory only, offered only to the same server; the certificate its full handshake verified is
 * checked again). Any thread. */
void transport_handshakes(const transport *t, uint32_t *out_full, uint32_t *out_resumed);

/* Bytes of messages queued and not yet fully written. */
size_t transport_queued_bytes(const transport *t);

/* A short stable name for a reason ("server unreachable", "certificate not trusted", ...). */
const char *transport_close_reason_name(transport_close_reason reason);

/* True for the TRANSPORT_CLOSE_CERT_* reasons: retrying will not help until the server's
 * certificate or the device's trust (or clock) changes. */
bool transport_close_is_certificate(transport_close_reason reason);

#endif /* OUTPOST_TRANSPORT_H */
