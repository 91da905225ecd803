/*
 * The liboutpost transport: a libwebsockets client on mbedTLS 3.6 (see transport.h for the
 * contract). One lws context per transport, one client connection at a time, one protocol
 * handler below with a switch on the callback reason, as in lws's minimal-ws-client.
 *
 * How the server's certificate is checked, and why not simply by lws. lws 4.3.5 on mbedTLS
 * reports a failed certificate check only as text, and through its OpenSSL-compatibility layer,
 * which maps mbedTLS's verification flags to one reason: a handshake cut before the certificate
 * arrived leaves the flags at "all bits set" and comes out as "invalidca", exactly like a server
 * from another CA. Reporting a dropped connection as "certificate rejected" would make the app
 * stop retrying and tell the worker the wrong thing. So the TLS layer is asked to complete the
 * handshake even when the chain does not verify (LCCSCF_ALLOW_SELFSIGNED | LCCSCF_ALLOW_EXPIRED;
 * mbedTLS still verifies the chain and records the result, and still checks that the server
 * holds the certificate's key), and this file decides, in
 * LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: lws calls it once TLS is up and before it writes
 * the first byte of the upgrade request, and returning -1 there closes the connection with
 * nothing sent. In CA mode the decision is mbedTLS's own full-chain result (lws exposes it as
 * LWS_TLS_CERT_INFO_VERIFIED); only the explanation comes from re-verifying the leaf here. A
 * host name mismatch on an otherwise good certificate is still refused by lws itself (no flag
 * is set to allow it), and recognised from its text.
 */
#include "transport.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

/* One WebSocket fragment per WRITEABLE callback: fits one TLS record (16 KiB) with the frame
 * header, so a large message never holds the loop for more than one record's work. */
#define TX_FRAGMENT_BYTES (16u * 1024u - 16u)
#define RX_CHUNK_BYTES (16u * 1024u)
/* After a message larger than this the reassembly buffer is freed rather than kept, so one big
 * pull page does not pin its memory for the rest of the connection. */
#define RX_KEEP_BYTES (256u * 1024u)
#define MAX_MESSAGE_LIMIT (1024u * 1024u * 1024u)
#define DETAIL_SIZE 256

/* One queued outgoing message: LWS_PRE bytes of headroom for the frame header, then the payload.
 * Later fragments reuse the already-sent bytes in front of them as their headroom. */
typedef struct out_msg {
    struct out_msg *next;
    size_t len;
    size_t sent;
    uint8_t buf[];
} out_msg;

/* Per-connection state; lws allocates it zeroed for each connection and frees it after
 * LWS_CALLBACK_WSI_DESTROY. */
typedef struct conn {
    uint8_t *rx;
    size_t rx_len;
    size_t rx_cap;
} conn;

struct transport {
    struct lws_context *ctx;
    struct lws *wsi; /* the current connection, once lws has one */
    transport_state state;

    transport_url url;
    bool pin_mode;
    uint8_t pin[TRANSPORT_PIN_SIZE];
    mbedtls_x509_crt ca;
    size_t max_message;
    size_t max_receive; /* largest message accepted from the server (transport_set_max_receive) */
    size_t queue_limit;
    uint32_t connect_timeout_ms;
    lws_retry_bo_t keepalive; /* lws keeps a pointer to it for the connection's life */
    uint32_t idle_timeout_s;  /* the configured one, which keepalive goes back to */

    transport_connected_cb on_connected;
    transport_message_cb on_message;
    transport_sent_cb on_sent;
    transport_closed_cb on_closed;
    void *user_data;

    out_msg *queue_head;
    out_msg *queue_tail;
    size_t queued_bytes;

    /* What the current attempt has got through, to explain how it ended. */
    uint32_t attempt;
    bool tcp_connected;
    bool tls_done;
    transport_close_reason forced; /* decided here before lws closed; 0 if none */
    char forced_detail[DETAIL_SIZE];
    bool peer_sent_close;
    uint16_t peer_close_code;
    char peer_close_text[128];

    /* TLS session resumption (see "Resuming a session" below). In memory only, never saved. */
    bool resume;              /* transport_config.no_resumption not set */
    bool have_session;        /* session holds a ticket from a connection whose check passed */
    mbedtls_ssl_session session;
    mbedtls_ssl_context *ssl; /* this attempt's, from the callback below; NULL once it ends */
    bool offered;             /* this attempt offered session */
    bool certificate_sent;    /* the server sent a certificate in this handshake (a full one) */
    bool checked;             /* this connection passed check_server_certificate() */
    uint32_t handshakes_full, handshakes_resumed; /* atomics: read from other threads */

    bool destroying; /* lws_context_destroy() is closing things: no user callbacks */
    lws_sorted_usec_list_t connect_sul;  /* starts the attempt inside the service loop */
    lws_sorted_usec_list_t deadline_sul; /* connect_timeout_ms */
    lws_sorted_usec_list_t service_sul;  /* bounds one transport_service() wait */
    int wake_pipe[2]; /* transport_wake() ends a quiet wait (wait_quietly()) through it */
    bool have_pipe;
    lws_log_cx_t log_cx;
};

static int transport_lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                                  void *in, size_t len);

static const struct lws_protocols transport_protocols[] = {
    {
        .name = TRANSPORT_SUBPROTOCOL,
        .callback = transport_lws_callback,
        .per_session_data_size = sizeof(conn),
        .rx_buffer_size = RX_CHUNK_BYTES,
    },
    LWS_PROTOCOL_LIST_TERM,
};

/* ---- small helpers ------------------------------------------------------------------------ */

__attribute__((format(printf, 4, 5)))
static int fail_with(char *errmsg, size_t errmsg_size, int code, const char *fmt, ...)
{
    if (errmsg && errmsg_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errmsg, errmsg_size, fmt, ap);
        va_end(ap);
    }
    return code;
}

__attribute__((format(printf, 3, 4)))
static void force_close_reason(transport *t, transport_close_reason reason, const char *fmt, ...)
{
    if (t->forced)
        return; /* the first decision explains the close; later ones are consequences */
    t->forced = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->forced_detail, sizeof t->forced_detail, fmt, ap);
    va_end(ap);
}

static void queue_clear(transport *t)
{
    out_msg *m = t->queue_head;
    while (m) {
        out_msg *next = m->next;
        free(m);
        m = next;
    }
    t->queue_head = t->queue_tail = NULL;
    t->queued_bytes = 0;
}

static void conn_release(conn *c)
{
    if (!c)
        return;
    free(c->rx);
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
}

/* The attempt or connection is over: back to IDLE, then tell the caller, who may start the next
 * attempt from inside on_closed(). */
static void finish(transport *t, transport_close_reason reason, uint16_t peer_code,
                   const char *detail)
{
    if (t->state == TRANSPORT_IDLE)
        return;
    char text[DETAIL_SIZE];
    snprintf(text, sizeof text, "%s", detail && *detail ? detail
                                      : transport_close_reason_name(reason));
    lws_sul_cancel(&t->connect_sul);
    lws_sul_cancel(&t->deadline_sul);
    t->state = TRANSPORT_IDLE;
    t->wsi = NULL;
    t->ssl = NULL;
    queue_clear(t);
    if (!t->destroying)
        t->on_closed(t->user_data, reason, peer_code, text);
}

/* ---- URL and pin -------------------------------------------------------------------------- */

static bool host_char_ok(char c, bool bracketed)
{
    if (bracketed)
        return isxdigit((unsigned char)c) || c == ':' || c == '.';
    return isalnum((unsigned char)c) || c == '-' || c == '.';
}

int transport_url_parse(const char *url, transport_url *out_url, char *errmsg,
                        size_t errmsg_size)
{
    if (!out_url)
        return fail_with(errmsg, errmsg_size, -EINVAL, "no place to store the parsed URL");
    memset(out_url, 0, sizeof *out_url);
    if (!url || !*url)
        return fail_with(errmsg, errmsg_size, -EINVAL, "no server URL given");
    if (strncasecmp(url, "ws://", 5) == 0)
        return fail_with(errmsg, errmsg_size, -EINVAL,
                         "'%s': ws:// is unencrypted; the server URL must start with wss://", url);
    if (strncasecmp(url, "wss://", 6) != 0)
        return fail_with(errmsg, errmsg_size, -EINVAL,
                         "'%s': the server URL must start with wss:// (its sync address, "
                         "wss://HOST:PORT/sync)", url);

    const char *p = url + 6;
    const char *authority_end = p + strcspn(p, "/?#");
    if (memchr(p, '@', (size_t)(authority_end - p)))
        return fail_with(errmsg, errmsg_size, -EINVAL,
                         "'%s': user names and passwords in the URL are not supported", url);

    const char *host = p, *host_end, *after_host;
    bool bracketed = *p == '[';
    if (bracketed) {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(authority_end - host));
        if (!host_end)
            return fail_with(errmsg, errmsg_size, -EINVAL,
                             "'%s': IPv6 address without its closing ']'", url);
        after_host = host_end + 1;
        if (after_host != authority_end && *after_host != ':')
            return fail_with(errmsg, errmsg_size, -EINVAL,
                             "'%s': unexpected text after the IPv6 address", url);
    } else {
        host_end = memchr(host, ':', (size_t)(authority_end - host));
        if (!host_end)
            host_end = authority_end;
        after_host = host_end;
    }

    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0)
        return fail_with(errmsg, errmsg_size, -EINVAL, "'%s': the URL has no host", url);
    if (host_len >= sizeof out_url->host)
        return fail_with(errmsg, errmsg_size, -EINVAL, "'%s': the host name is too long", url);
    for (size_t i = 0; i < host_len; i++)
        if (!host_char_ok(host[i], bracketed))
            return fail_with(errmsg, errmsg_size, -EINVAL,
                             "'%s': character '%c' is not allowed in a host name", url,
                             host[i]);
    memcpy(out_url->host, host, host_len);

    out_url->port = 443;
    if (after_host != authority_end) { /* ':' then the port */
        const char *digits = after_host + 1;
        if (digits == authority_end)
            return fail_with(errmsg, errmsg_size, -EINVAL, "'%s': empty port after ':'", url);
        unsigned long port = 0;
        for (const char *d = digits; d < authority_end; d++) {
            if (!isdigit((unsigned char)*d))
                return fail_with(errmsg, errmsg_size, -EINVAL,
                                 "'%s': the port must be a number", url);
            port = port * 10 + (unsigned long)(*d - '0');
            if (port > 65535)
                break;
        }
        if (port == 0 || port > 65535)
            return fail_with(errmsg, errmsg_size, -EINVAL,
                             "'%s': the port must be between 1 and 65535", url);
        out_url->port = (uint16_t)port;
    }

    const char *path = authority_end;
    /* outpostd serves devices at /sync only; without a path the upgrade is refused, which a
     * device could only report as a lost connection. */
    if (path[0] == 0 || (path[0] == '/' && path[1] == 0) || path[0] == '?')
        return fail_with(errmsg, errmsg_size, -EINVAL,
                         "'%s': no path; outpostd serves devices at wss://HOST:PORT/sync", url);
    if (strchr(path, '#'))
        return fail_with(errmsg, errmsg_size, -EINVAL,
                         "'%s': a fragment (#...) has no meaning in a server URL", url);
    for (const char *c = path; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return fail_with(errmsg, errmsg_size, -EINVAL,
                             "'%s': the path contains a space or a control character", url);
    int n = snprintf(out_url->path, sizeof out_url->path, "%s%s", *path == '/' ? "" : "/",
                     path);
    if (n < 0 || (size_t)n >= sizeof out_url->path)
        return fail_with(errmsg, errmsg_size, -EINVAL, "'%s': the path is too long", url);
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int transport_pin_parse(const char *text, uint8_t out_pin[TRANSPORT_PIN_SIZE])
{
    uint8_t pin[TRANSPORT_PIN_SIZE];
    size_t n = 0;
    if (!text || !out_pin)
        return -EINVAL;
    for (const char *p = text; *p;) {
        int hi = hex_value(p[0]), lo = hi < 0 ? -1 : hex_value(p[1]);
        if (hi < 0 || lo < 0 || n == sizeof pin)
            return -EINVAL;
        pin[n++] = (uint8_t)(hi << 4 | lo);
        p += 2;
        if (*p == ':' && *++p == '\0')
            return -EINVAL; /* a trailing colon */
    }
    if (n != sizeof pin)
        return -EINVAL;
    memcpy(out_pin, pin, sizeof pin);
    return 0;
}

/* ---- names -------------------------------------------------------------------------------- */

const char *transport_close_reason_name(transport_close_reason reason)
{
    switch (reason) {
    case TRANSPORT_CLOSE_UNREACHABLE: return "server unreachable";
    case TRANSPORT_CLOSE_TIMEOUT: return "timed out";
    case TRANSPORT_CLOSE_CERT_UNTRUSTED: return "certificate not trusted";
    case TRANSPORT_CLOSE_CERT_EXPIRED: return "certificate expired or not yet valid";
    case TRANSPORT_CLOSE_CERT_HOSTNAME: return "certificate is for another host name";
    case TRANSPORT_CLOSE_CERT_PIN_MISMATCH: return "certificate does not match the pin";
    case TRANSPORT_CLOSE_CERT_OTHER: return "certificate rejected";
    case TRANSPORT_CLOSE_TLS_FAILED: return "TLS handshake failed";
    case TRANSPORT_CLOSE_UPGRADE_REFUSED: return "WebSocket upgrade refused";
    case TRANSPORT_CLOSE_PROTOCOL_ERROR: return "WebSocket protocol error";
    case TRANSPORT_CLOSE_MESSAGE_TOO_BIG: return "message too big";
    case TRANSPORT_CLOSE_PEER_CLOSED: return "closed by the server";
    case TRANSPORT_CLOSE_CONNECTION_LOST: return "connection lost";
    case TRANSPORT_CLOSE_LOCAL: return "disconnected";
    case TRANSPORT_CLOSE_OUT_OF_MEMORY: return "out of memory";
    }
    return "unknown";
}

bool transport_close_is_certificate(transport_close_reason reason)
{
    switch (reason) {
    case TRANSPORT_CLOSE_CERT_UNTRUSTED:
    case TRANSPORT_CLOSE_CERT_EXPIRED:
    case TRANSPORT_CLOSE_CERT_HOSTNAME:
    case TRANSPORT_CLOSE_CERT_PIN_MISMATCH:
    case TRANSPORT_CLOSE_CERT_OTHER:
        return true;
    default:
        return false;
    }
}

/* ---- the server's certificate ------------------------------------------------------------- */

/* The peer's leaf certificate as DER. lws copies it into the tail of a union whose last member
 * is a char array of arbitrary real length; *out_block owns the copy (free() it). */
static int peer_certificate_der(struct lws *wsi, void **out_block, const uint8_t **out_der,
                                size_t *out_len)
{
    const size_t name_offset = offsetof(union lws_tls_cert_info_results, ns.name);
    size_t room = 4096;
    for (int tries = 0; tries < 2; tries++) {
        size_t size = name_offset + room;
        if (size < sizeof(union lws_tls_cert_info_results))
            size = sizeof(union lws_tls_cert_info_results);
        union lws_tls_cert_info_results *info = malloc(size);
        if (!info)
            return -1;
        if (lws_tls_peer_cert_info(wsi, LWS_TLS_CERT_INFO_DER_RAW, info, room) == 0 &&
            info->ns.len > 0) {
            *out_block = info;
            *out_der = (const uint8_t *)info + name_offset;
            *out_len = (size_t)info->ns.len;
            return 0;
        }
        int needed = info->ns.len; /* set to the real size when room was too small */
        free(info);
        if (needed <= 0 || (size_t)needed <= room)
            return -1;
        room = (size_t)needed;
    }
    return -1;
}

/* CA mode, certificate refused by mbedTLS's chain check: say why, from the leaf alone (lws
 * exposes neither the flags nor the intermediates the server sent, so with an intermediate CA
 * a problem further up the chain reads as "not trusted"). */
static void explain_untrusted(transport *t, const uint8_t *der, size_t der_len)
{
    mbedtls_x509_crt leaf;
    uint32_t flags = 0;
    char why[200] = "";
    mbedtls_x509_crt_init(&leaf);
    if (mbedtls_x509_crt_parse_der(&leaf, der, der_len) != 0) {
        force_close_reason(t, TRANSPORT_CLOSE_CERT_OTHER,
                           "the server's certificate does not parse");
        goto out;
    }
    (void)mbedtls_x509_crt_verify(&leaf, &t->ca, NULL, t->url.host, &flags, NULL, NULL);
    if (flags)
        mbedtls_x509_crt_verify_info(why, sizeof why, "", flags);
    for (char *c = why; *c; c++)
        if (*c == '\n')
            *c = c[1] ? ';' : '\0';

    if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED)
        force_close_reason(t, TRANSPORT_CLOSE_CERT_UNTRUSTED,
                           "the server's certificate is not from the configured CA (%s)", why);
    else if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH)
        force_close_reason(t, TRANSPORT_CLOSE_CERT_HOSTNAME,
                           "the server's certificate is not for host %.100s (%s)", t->url.host,
                           why);
    else if (flags & (MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE))
        force_close_reason(t, TRANSPORT_CLOSE_CERT_EXPIRED,
                           "the server's certificate is outside its validity dates (%s)", why);
    else
        force_close_reason(t, TRANSPORT_CLOSE_CERT_OTHER,
                           "the TLS layer rejected the server's certificate (%s)",
                           flags ? why : "key usage or key type");
out:
    mbedtls_x509_crt_free(&leaf);
}

/* Returns 0 if the server may receive application bytes, -1 (reason recorded) if not. */
static int check_server_certificate(transport *t, struct lws *wsi)
{
    void *block = NULL;
    const uint8_t *der;
    size_t der_len;
    int rc = -1;

    if (peer_certificate_der(wsi, &block, &der, &der_len) != 0) {
        force_close_reason(t, TRANSPORT_CLOSE_CERT_OTHER,
                           "the server's certificate could not be read");
        goto out;
    }

    if (t->pin_mode) {
        uint8_t digest[TRANSPORT_PIN_SIZE];
        if (mbedtls_sha256(der, der_len, digest, 0) != 0) {
            force_close_reason(t, TRANSPORT_CLOSE_CERT_OTHER, "SHA-256 failed");
            goto out;
        }
        if (memcmp(digest, t->pin, sizeof digest) != 0) {
            char seen[2 * TRANSPORT_PIN_SIZE + 1];
            for (size_t i = 0; i < sizeof digest; i++)
                snprintf(seen + 2 * i, 3, "%02x", digest[i]);
            force_close_reason(t, TRANSPORT_CLOSE_CERT_PIN_MISMATCH,
                               "the server's certificate (SHA-256 %s) does not match the pin",
                               seen);
            goto out;
        }
        rc = 0;
    } else {
        union lws_tls_cert_info_results verified;
        memset(&verified, 0, sizeof verified);
        if (lws_tls_peer_cert_info(wsi, LWS_TLS_CERT_INFO_VERIFIED, &verified, 0) == 0 &&
            verified.verified)
            rc = 0;
        else
            explain_untrusted(t, der, der_len);
    }
out:
    free(block);
    return rc;
}

/* ---- resuming a session ------------------------------------------------------------------ */

/*
 * A device that connects again offers the TLS 1.3 ticket of its last good connection, and the
 * server, if it still holds the ticket's key (same outpostd process, within a day), resumes
 * without sending its certificate or signing: one flight less. lws's own session cache is off
 * (it saves the session as the handshake ends, before a TLS 1.3 ticket arrives, and whether or
 * not our check passed); this transport keeps one session itself, in memory only:
 * - taken (remember_session) only on a connection that passed check_server_certificate(), once
 *   the server's ticket has arrived (outpostd sends it before the upgrade's answer;
 *   mbedtls_ssl_get_session() gives a session once, and again after each new ticket);
 * - offered (LWS_CALLBACK_CLIENT_TLS_CONTEXT_CREATED, added by cmake/patches/
 *   lws-4.3.5-session-tickets.patch) only to this transport's host and port, with its pin or CA;
 * - a resumed handshake carries no certificate: the session keeps the one its full handshake
 *   verified (MBEDTLS_SSL_KEEP_PEER_CERTIFICATE), and check_server_certificate() checks that one
 *   again against the pin or CA, so a resumed connection is accepted only under the same trust.
 *   Only the server that issued the ticket (or one holding the same ticket keys) can resume
 *   it; any other gets a full handshake and the usual check of the certificate it sends.
 *   outpostd replaces its ticket keys whenever it loads a new certificate.
 * Authentication is unchanged: HELLO runs on every connection, resumed or not.
 */

/* mbedTLS calls this for each certificate of the chain it verifies, which happens only in a
 * full handshake: how a resumed one is told apart. The verification result is left alone. */
static int note_certificate(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    (void)crt;
    (void)depth;
    (void)flags;
    ((transport *)ctx)->certificate_sent = true;
    return 0;
}

/* Before the ClientHello: offer the kept session, and watch for a certificate. */
static int prepare_handshake(transport *t, mbedtls_ssl_context *ssl)
{
    t->ssl = ssl;
    t->offered = t->certificate_sent = false;
    if (!ssl)
        return 0;
    /* Replaces lws's own callback, which only forwards to an OpenSSL-style verify callback
     * that lws sets only with LWS_WITH_TLS_JIT_TRUST (off in our build). */
    mbedtls_ssl_set_verify(ssl, note_certificate, t);
    if (t->resume && t->have_session && mbedtls_ssl_set_session(ssl, &t->session) == 0)
        t->offered = true;
    return 0;
}

/* Keeps the connection's session if a new ticket has arrived and the connection was checked. */
static void remember_session(transport *t)
{
    if (!t->resume || !t->checked || !t->ssl)
        return;
    mbedtls_ssl_session fresh;
    mbedtls_ssl_session_init(&fresh);
    /* Fails (harmlessly) when no ticket came since the last call. */
    if (mbedtls_ssl_get_session(t->ssl, &fresh) == 0) {
        mbedtls_ssl_session_free(&t->session); /* zeroizes */
        t->session = fresh;
        t->have_session = true;
        return;
    }
    mbedtls_ssl_session_free(&fresh);
}

static void count_handshake(transport *t)
{
    uint32_t *n = t->offered && !t->certificate_sent ? &t->handshakes_resumed
                                                     : &t->handshakes_full;
    __atomic_fetch_add(n, 1, __ATOMIC_RELAXED);
}

void transport_handshakes(const transport *t, uint32_t *out_full, uint32_t *out_resumed)
{
    *out_full = __atomic_load_n(&t->handshakes_full, __ATOMIC_RELAXED);
    *out_resumed = __atomic_load_n(&t->handshakes_resumed, __ATOMIC_RELAXED);
}

/* lws's text for a connection that never opened, read as one of our reasons. The certificate
 * texts are lws 4.3.5's lws_tls_client_confirm_peer_cert() (lib/tls/mbedtls/mbedtls-client.c). */
static transport_close_reason classify_connect_error(const transport *t, const char *text)
{
    if (t->forced)
        return t->forced;
    if (strstr(text, "server's cert didn't look good")) {
        if (strstr(text, "good, hostname"))
            return TRANSPORT_CLOSE_CERT_HOSTNAME;
        if (strstr(text, "good, expired") || strstr(text, "good, notyetvalid"))
            return TRANSPORT_CLOSE_CERT_EXPIRED;
        if (strstr(text, "good, invalidca"))
            return TRANSPORT_CLOSE_CERT_UNTRUSTED;
        return TRANSPORT_CLOSE_CERT_OTHER;
    }
    if (!t->tcp_connected)
        return TRANSPORT_CLOSE_UNREACHABLE;
    if (strstr(text, "Timed out"))
        return TRANSPORT_CLOSE_TIMEOUT;
    if (!t->tls_done)
        return TRANSPORT_CLOSE_TLS_FAILED;
    if (strncmp(text, "HS: ", 4) == 0 || strstr(text, "protocol no match"))
        return TRANSPORT_CLOSE_UPGRADE_REFUSED;
    return TRANSPORT_CLOSE_CONNECTION_LOST;
}

/* The human explanation that goes with classify_connect_error()'s reason. */
static void describe_connect_error(const transport *t, transport_close_reason why,
                                   const char *text, char *out, size_t out_size)
{
    int err;
    if (t->forced)
        snprintf(out, out_size, "%s", t->forced_detail);
    else if (why == TRANSPORT_CLOSE_UNREACHABLE && sscanf(text, "conn fail: %d", &err) == 1)
        snprintf(out, out_size, "could not connect to %.100s:%u: %s", t->url.host,
                 (unsigned)t->url.port, strerror(err));
    else if (why == TRANSPORT_CLOSE_CERT_HOSTNAME)
        snprintf(out, out_size, "the server's certificate is not for host %.100s (%s)", t->url.host,
                 text);
    else if (why == TRANSPORT_CLOSE_CONNECTION_LOST) /* after TLS, before the upgrade's answer */
        snprintf(out, out_size, "%s: %s; the server closed the connection before accepting the "
                                "WebSocket upgrade to %.100s: outpostd serves devices at /sync, so "
                                "check the URL's path",
                 transport_close_reason_name(why), text, t->url.path);
    else
        snprintf(out, out_size, "%s: %s", transport_close_reason_name(why), text);
}

/* ---- receiving ---------------------------------------------------------------------------- */

/* Returns 0, or -1 after recording why the connection must close. */
static int receive_fragment(transport *t, struct lws *wsi, conn *c, const uint8_t *in,
                            size_t len)
{
    if (!lws_frame_is_binary(wsi)) {
        force_close_reason(t, TRANSPORT_CLOSE_PROTOCOL_ERROR,
                           "the server sent a text message; Outpost messages are binary");
        lws_close_reason(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
                         (unsigned char *)"binary only", 11);
        return -1;
    }
    /* Refuse as soon as the declared frame length shows the message cannot fit, before
     * buffering the rest of it. */
    size_t pending = lws_remaining_packet_payload(wsi);
    if (len > t->max_receive - c->rx_len || pending > t->max_receive - c->rx_len - len) {
        force_close_reason(t, TRANSPORT_CLOSE_MESSAGE_TOO_BIG,
                           "the server sent a message larger than %zu bytes", t->max_receive);
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                         (unsigned char *)"message too big", 15);
        return -1;
    }
    size_t needed = c->rx_len + len + pending;
    if (needed > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : RX_CHUNK_BYTES;
        while (cap < needed)
            cap = cap > t->max_receive / 2 ? t->max_receive : cap * 2;
        uint8_t *grown = realloc(c->rx, cap);
        if (!grown) {
            force_close_reason(t, TRANSPORT_CLOSE_OUT_OF_MEMORY,
                               "no memory to receive a %zu-byte message", needed);
            lws_close_reason(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, NULL, 0);
            return -1;
        }
        c->rx = grown;
        c->rx_cap = cap;
    }
    if (len)
        memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;

    if (lws_is_final_fragment(wsi)) {
        size_t n = c->rx_len;
        c->rx_len = 0;
        /* A whole message, nearly always the answer to one of ours: both directions work, so
         * no ping is needed before the next idle interval (a phone wakes for fewer pings). */
        lws_validity_confirmed(wsi);
        t->on_message(t->user_data, c->rx, n);
        if (c->rx_cap > RX_KEEP_BYTES)
            conn_release(c);
    }
    return 0;
}

/* ---- sending ------------------------------------------------------------------------------ */

/* Writes the next fragment of the head message. Returns 0, or -1 if the connection failed. */
static int write_next_fragment(transport *t, struct lws *wsi)
{
    out_msg *m = t->queue_head;
    if (!m)
        return 0;
    size_t chunk = m->len - m->sent;
    if (chunk > TX_FRAGMENT_BYTES)
        chunk = TX_FRAGMENT_BYTES;
    bool first = m->sent == 0, last = m->sent + chunk == m->len;
    int flags = lws_write_ws_flags(LWS_WRITE_BINARY, first, last);
    /* The payload starts LWS_PRE bytes in; lws writes the frame header just before it, over
     * bytes of this message that earlier fragments already handed to lws. */
    uint8_t *payload = m->buf + LWS_PRE + m->sent;
    if (lws_write(wsi, payload, chunk, (enum lws_write_protocol)flags) < (int)chunk)
        return -1;
    m->sent += chunk;

    if (last) {
        t->queue_head = m->next;
        if (!t->queue_head)
            t->queue_tail = NULL;
        t->queued_bytes -= m->len;
        free(m);
        if (t->on_sent)
            t->on_sent(t->user_data, t->queued_bytes);
    }
    /* on_sent may have queued more, disconnected, or both. */
    if (t->queue_head || t->state == TRANSPORT_CLOSING)
        lws_callback_on_writable(wsi);
    return 0;
}

/* ---- the protocol handler ----------------------------------------------------------------- */

static int transport_lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                                  void *in, size_t len)
{
    transport *t = lws_context_user(lws_get_context(wsi));
    conn *c = user;

    switch (reason) {
    case LWS_CALLBACK_WSI_CREATE: /* for a client: the TCP connection is up */
        if (t->state == TRANSPORT_CONNECTING)
            t->tcp_connected = true;
        break;

    case LWS_CALLBACK_CLIENT_TLS_CONTEXT_CREATED:
        return prepare_handshake(t, in);

    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        /* TLS is up and nothing has been written yet: the one place to refuse the server. */
        t->tls_done = true;
        if (t->forced || check_server_certificate(t, wsi) != 0)
            return -1;
        t->checked = true;
        count_handshake(t);
        break;

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        const char *text = in ? (const char *)in : "connection failed";
        transport_close_reason why = classify_connect_error(t, text);
        char detail[DETAIL_SIZE];
        describe_connect_error(t, why, text, detail, sizeof detail);
        finish(t, why, 0, detail);
        break;
    }

    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (t->forced) /* disconnected or timed out while the upgrade completed */
            return -1;
        lws_sul_cancel(&t->deadline_sul);
        remember_session(t); /* the ticket came before the upgrade's answer */
        t->wsi = wsi;
        t->state = TRANSPORT_OPEN;
        if (t->on_connected && !t->destroying)
            t->on_connected(t->user_data);
        break;

    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (t->destroying || !c)
            return -1;
        remember_session(t); /* a ticket sent later, if any */
        return receive_fragment(t, wsi, c, in, len);

    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (t->state == TRANSPORT_CLOSING) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"disconnect", 10);
            return -1;
        }
        return write_next_fragment(t, wsi);

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
        const uint8_t *p = in;
        t->peer_sent_close = true;
        if (len >= 2) {
            t->peer_close_code = (uint16_t)(p[0] << 8 | p[1]);
            size_t text_len = len - 2 < sizeof t->peer_close_text - 1
                                  ? len - 2 : sizeof t->peer_close_text - 1;
            memcpy(t->peer_close_text, p + 2, text_len);
            t->peer_close_text[text_len] = '\0';
        }
        break; /* lws answers the close */
    }

    case LWS_CALLBACK_CLIENT_CLOSED: {
        conn_release(c);
        char detail[DETAIL_SIZE];
        transport_close_reason why;
        uint16_t code = 0;
        if (t->forced) {
            why = t->forced;
            snprintf(detail, sizeof detail, "%s", t->forced_detail);
        } else if (t->peer_sent_close) {
            why = TRANSPORT_CLOSE_PEER_CLOSED;
            code = t->peer_close_code;
            snprintf(detail, sizeof detail, "the server closed the connection (code %u%s%s)",
                     (unsigned)code, t->peer_close_text[0] ? ": " : "", t->peer_close_text);
        } else {
            why = TRANSPORT_CLOSE_CONNECTION_LOST;
            snprintf(detail, sizeof detail,
                     "the connection dropped, or the server stopped answering, without a "
                     "WebSocket close");
        }
        finish(t, why, code, detail);
        break;
    }

    case LWS_CALLBACK_WSI_DESTROY:
        conn_release(c);
        /* lws closes a connection refused from APPEND_HANDSHAKE_HEADER without either closing
         * callback: this is where such an attempt ends. */
        if (wsi == t->wsi) {
            const char *text = "the connection closed before it opened";
            if (t->state == TRANSPORT_CONNECTING) {
                transport_close_reason why = classify_connect_error(t, text);
                char detail[DETAIL_SIZE];
                describe_connect_error(t, why, text, detail, sizeof detail);
                finish(t, why, 0, detail);
            } else {
                finish(t, t->forced ? t->forced : TRANSPORT_CLOSE_CONNECTION_LOST, 0,
                       t->forced ? t->forced_detail : "the connection was torn down");
            }
        }
        break;

    default:
        break;
    }
    return 0;
}

/* ---- timers ------------------------------------------------------------------------------- */

static void connect_start(lws_sorted_usec_list_t *sul)
{
    transport *t = lws_container_of(sul, transport, connect_sul);
    if (t->state != TRANSPORT_CONNECTING)
        return;
    if (t->forced) { /* transport_disconnect() came first */
        finish(t, t->forced, 0, t->forced_detail);
        return;
    }

    struct lws_client_connect_info info;
    memset(&info, 0, sizeof info);
    info.context = t->ctx;
    info.address = t->url.host;
    info.port = t->url.port;
    info.path = t->url.path;
    info.host = t->url.host;
    /* See the comment at the top of this file: the certificate is decided in
     * LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER before any byte is sent. */
    info.ssl_connection = LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED | LCCSCF_ALLOW_EXPIRED;
    info.alpn = "http/1.1"; /* WebSocket over HTTP/1.1 only: no h2 preface before our check */
    info.protocol = TRANSPORT_SUBPROTOCOL;
    info.local_protocol_name = TRANSPORT_SUBPROTOCOL;
    info.retry_and_idle_policy = &t->keepalive;

    uint32_t attempt = t->attempt;
    struct lws *wsi = lws_client_connect_via_info(&info);
    if (t->attempt != attempt || t->state != TRANSPORT_CONNECTING)
        return; /* it failed inside the call and on_closed() has run */
    if (!wsi) {
        finish(t, TRANSPORT_CLOSE_UNREACHABLE, 0, "could not start a connection");
        return;
    }
    t->wsi = wsi;
}

static void connect_deadline(lws_sorted_usec_list_t *sul)
{
    transport *t = lws_container_of(sul, transport, deadline_sul);
    if (t->state != TRANSPORT_CONNECTING)
        return;
    if (t->tcp_connected)
        force_close_reason(t, TRANSPORT_CLOSE_TIMEOUT,
                           "%s:%u accepted the connection but did not complete TLS and the "
                           "WebSocket upgrade within %u ms",
                           t->url.host, (unsigned)t->url.port, (unsigned)t->connect_timeout_ms);
    else
        force_close_reason(t, TRANSPORT_CLOSE_UNREACHABLE,
                           "no answer from %s:%u within %u ms", t->url.host,
                           (unsigned)t->url.port, (unsigned)t->connect_timeout_ms);
    if (t->wsi)
        lws_set_timeout(t->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    else
        finish(t, t->forced, 0, t->forced_detail);
}

/* Its only job is to end the poll() of one transport_service() call on time. */
static void service_timeout(lws_sorted_usec_list_t *sul)
{
    (void)sul;
}

/* Whether a wait can leave lws out: no attempt under way, nothing to write, nothing lws holds
 * that needs service now (buffered TLS input, a timer already due, which this call runs). */
static bool quiet(transport *t)
{
    if (!t->have_pipe)
        return false;
    if (t->state != TRANSPORT_IDLE &&
        (t->state != TRANSPORT_OPEN || !t->wsi || t->queue_head))
        return false;
    return lws_service_adjust_timeout(t->ctx, 1, 0) != 0;
}

/* An idle wait without lws's poll: lws wakes its thread every 30 s for a periodic check of its
 * own (lws_sul_plat_unix: daemon parent, deferred listeners; nothing a client uses), which on a
 * phone is 120 wakes an hour. Waits for the connection's socket, transport_wake() or the
 * timeout, then lets lws handle whatever is ready without waiting. lws's keepalive ping is a
 * timer of its own: the wait ends by the ping interval, so the ping is never late by more. */
static void wait_quietly(transport *t, int timeout_ms)
{
    struct pollfd fds[2] = {{.fd = t->wake_pipe[0], .events = POLLIN}};
    nfds_t n = 1;
    if (t->state == TRANSPORT_OPEN) {
        int ping_ms = (int)t->keepalive.secs_since_valid_ping * 1000;
        if (timeout_ms > ping_ms)
            timeout_ms = ping_ms;
        fds[n].fd = lws_get_socket_fd(t->wsi);
        fds[n++].events = POLLIN;
    }
    (void)poll(fds, n, timeout_ms);
}

/* ---- public functions --------------------------------------------------------------------- */

static void close_wake_pipe(transport *t)
{
    for (int i = 0; i < 2 && t->have_pipe; i++)
        close(t->wake_pipe[i]);
    t->have_pipe = false;
}

static pthread_once_t process_once = PTHREAD_ONCE_INIT;
static psa_status_t psa_status = PSA_ERROR_BAD_STATE;

/* Once per process: PSA crypto, which mbedTLS 3.6 needs before a TLS 1.3 handshake, and lws's
 * global log level. Most lws messages ignore the per-context log (transport.log_cx) and go
 * through the global one; lws is linked statically into liboutpost, so its global log is ours
 * to quiet. OUTPOST_TRANSPORT_DEBUG=1 in the environment turns both logs on for debugging. */
static bool debug_log;

static void process_init_once(void)
{
    debug_log = getenv("OUTPOST_TRANSPORT_DEBUG") != NULL;
    lws_set_log_level(debug_log ? LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO : 0, NULL);
    psa_status = psa_crypto_init();
}

static void lws_log_to_stderr(int level, const char *line)
{
    (void)level;
    fprintf(stderr, "outpost transport: %s", line);
}

int transport_create(const transport_config *cfg, transport **out_transport, char *errmsg,
                     size_t errmsg_size)
{
    if (!out_transport)
        return fail_with(errmsg, errmsg_size, -EINVAL, "out_transport is NULL");
    *out_transport = NULL;
    if (!cfg)
        return fail_with(errmsg, errmsg_size, -EINVAL, "no configuration given");
    if (!cfg->on_message || !cfg->on_closed)
        return fail_with(errmsg, errmsg_size, -EINVAL, "on_message and on_closed are required");
    bool has_ca = cfg->ca_pem && *cfg->ca_pem, has_pin = cfg->pin_sha256 != NULL;
    if (has_ca == has_pin)
        return fail_with(errmsg, errmsg_size, -EINVAL,
                         has_ca ? "give either a CA certificate or a pin, not both"
                                : "no trust given: a CA certificate or a certificate pin is "
                                  "required");
    size_t max_message = cfg->max_message_size ? cfg->max_message_size
                                               : TRANSPORT_DEFAULT_MAX_MESSAGE;
    if (max_message > MAX_MESSAGE_LIMIT)
        return fail_with(errmsg, errmsg_size, -EINVAL,
                         "max_message_size %zu is above the 1 GiB limit", max_message);
    uint32_t idle_s = cfg->idle_timeout_s ? cfg->idle_timeout_s
                                          : TRANSPORT_DEFAULT_IDLE_TIMEOUT_S;
    if (idle_s < 2 || idle_s > UINT16_MAX)
        return fail_with(errmsg, errmsg_size, -EINVAL,
                         "idle_timeout_s must be between 2 and 65535");

    transport *t = calloc(1, sizeof *t);
    if (!t)
        return fail_with(errmsg, errmsg_size, -ENOMEM, "out of memory");
    mbedtls_x509_crt_init(&t->ca);
    mbedtls_ssl_session_init(&t->session);
    t->resume = !cfg->no_resumption;
    int rc = transport_url_parse(cfg->url, &t->url, errmsg, errmsg_size);
    if (rc)
        goto fail;

    t->max_message = max_message;
    t->max_receive = max_message;
    /* Four of the largest messages, or all a 32-bit size_t holds (4 GiB does not fit). */
    t->queue_limit = cfg->send_queue_limit         ? cfg->send_queue_limit
                     : max_message > SIZE_MAX / 4 ? SIZE_MAX
                                                  : 4 * max_message;
    t->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms
                                                    : TRANSPORT_DEFAULT_CONNECT_TIMEOUT_MS;
    t->idle_timeout_s = idle_s;
    t->keepalive.secs_since_valid_ping = (uint16_t)(idle_s / 2);
    t->keepalive.secs_since_valid_hangup = (uint16_t)idle_s;
    t->on_connected = cfg->on_connected;
    t->on_message = cfg->on_message;
    t->on_sent = cfg->on_sent;
    t->on_closed = cfg->on_closed;
    t->user_data = cfg->user_data;

    /* Without the pipe (no descriptors left) every wait goes through lws, as it always can. */
    t->have_pipe = pipe(t->wake_pipe) == 0;
    for (int i = 0; i < 2 && t->have_pipe; i++) {
        fcntl(t->wake_pipe[i], F_SETFL, O_NONBLOCK);
        fcntl(t->wake_pipe[i], F_SETFD, FD_CLOEXEC);
    }

    pthread_once(&process_once, process_init_once);
    if (psa_status != PSA_SUCCESS) {
        rc = fail_with(errmsg, errmsg_size, -EIO, "psa_crypto_init failed (%d)",
                       (int)psa_status);
        goto fail;
    }

    if (has_pin) {
        t->pin_mode = true;
        memcpy(t->pin, cfg->pin_sha256, sizeof t->pin);
    } else {
        size_t pem_len = strlen(cfg->ca_pem);
        int n = mbedtls_x509_crt_parse(&t->ca, (const unsigned char *)cfg->ca_pem, pem_len + 1);
        if (n != 0 || pem_len > UINT32_MAX) {
            rc = fail_with(errmsg, errmsg_size, -EINVAL,
                           "the CA certificate is not a valid PEM certificate (%s%x)",
                           n < 0 ? "-0x" : "failed: ", (unsigned)(n < 0 ? -n : n));
            goto fail;
        }
    }

    /* A log context per transport: lws updates its reference count, so it is not shared
     * between transports that may live on different threads. */
    t->log_cx.u.emit = lws_log_to_stderr;
    t->log_cx.lll_flags =
        debug_log ? (uint32_t)(LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO) : 0u;

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = transport_protocols;
    info.user = t;
    info.log_cx = &t->log_cx;
    /* lws's session cache stays off: this file keeps its own (see "Resuming a session"). */
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
                   LWS_SERVER_OPTION_DISABLE_TLS_SESSION_CACHE;
    info.fd_limit_per_thread = 8; /* one connection, lws's event pipe, margin */
    /* lws's own handshake timeouts stay behind ours, which are in milliseconds. */
    info.timeout_secs = t->connect_timeout_ms / 1000 + 5;
    info.connect_timeout_secs = info.timeout_secs;
    if (!has_pin) {
        info.client_ssl_ca_mem = cfg->ca_pem;
        info.client_ssl_ca_mem_len = (unsigned int)strlen(cfg->ca_pem);
    }
    t->ctx = lws_create_context(&info);
    if (!t->ctx) {
        rc = fail_with(errmsg, errmsg_size, -EIO, "libwebsockets could not create its context");
        goto fail;
    }
    *out_transport = t;
    return 0;

fail:
    close_wake_pipe(t);
    mbedtls_x509_crt_free(&t->ca);
    free(t);
    return rc;
}

void transport_set_max_receive(transport *t, size_t max_bytes)
{
    t->max_receive = max_bytes;
}

void transport_destroy(transport *t)
{
    if (!t)
        return;
    t->destroying = true;
    lws_sul_cancel(&t->connect_sul);
    lws_sul_cancel(&t->deadline_sul);
    lws_sul_cancel(&t->service_sul);
    lws_context_destroy(t->ctx);
    close_wake_pipe(t);
    queue_clear(t);
    mbedtls_x509_crt_free(&t->ca);
    mbedtls_ssl_session_free(&t->session);
    free(t);
}

int transport_connect(transport *t)
{
    if (t->state != TRANSPORT_IDLE)
        return -EBUSY;
    t->attempt++;
    t->wsi = NULL;
    t->tcp_connected = t->tls_done = false;
    t->ssl = NULL;
    t->offered = t->certificate_sent = t->checked = false;
    t->forced = 0;
    t->forced_detail[0] = '\0';
    t->peer_sent_close = false;
    t->peer_close_code = 0;
    t->peer_close_text[0] = '\0';
    t->state = TRANSPORT_CONNECTING;
    /* Start from inside the service loop, so that even a failure lws reports at once reaches
     * on_closed() from transport_service(), never from here. */
    lws_sul_schedule(t->ctx, 0, &t->connect_sul, connect_start, 1);
    lws_sul_schedule(t->ctx, 0, &t->deadline_sul, connect_deadline,
                     (lws_usec_t)t->connect_timeout_ms * LWS_US_PER_MS);
    return 0;
}

void transport_disconnect(transport *t)
{
    switch (t->state) {
    case TRANSPORT_IDLE:
    case TRANSPORT_CLOSING:
        return;
    case TRANSPORT_CONNECTING:
        force_close_reason(t, TRANSPORT_CLOSE_LOCAL, "disconnected before the connection opened");
        if (t->wsi)
            lws_set_timeout(t->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        /* else connect_start() has not run yet and will report the close */
        return;
    case TRANSPORT_OPEN:
        force_close_reason(t, TRANSPORT_CLOSE_LOCAL, "disconnected");
        t->state = TRANSPORT_CLOSING;
        lws_callback_on_writable(t->wsi); /* the close frame goes out from WRITEABLE */
        return;
    }
}

int transport_send(transport *t, const uint8_t *data, size_t n_bytes)
{
    if (t->state != TRANSPORT_OPEN)
        return -ENOTCONN;
    if (n_bytes > t->max_message)
        return -EMSGSIZE;
    /* An empty queue takes any message up to max_message_size, even above the limit. */
    if (t->queue_head &&
        (t->queued_bytes >= t->queue_limit || n_bytes > t->queue_limit - t->queued_bytes))
        return -EAGAIN;
    out_msg *m = malloc(sizeof *m + LWS_PRE + n_bytes);
    if (!m)
        return -ENOMEM;
    m->next = NULL;
    m->len = n_bytes;
    m->sent = 0;
    if (n_bytes)
        memcpy(m->buf + LWS_PRE, data, n_bytes);
    if (t->queue_tail)
        t->queue_tail->next = m;
    else
        t->queue_head = m;
    t->queue_tail = m;
    t->queued_bytes += n_bytes;
    lws_callback_on_writable(t->wsi);
    return 0;
}

void transport_set_idle_timeout(transport *t, uint32_t idle_timeout_s)
{
    uint32_t idle_s = idle_timeout_s ? idle_timeout_s : t->idle_timeout_s;
    if (idle_s < 2 || idle_s > UINT16_MAX)
        return;
    t->keepalive.secs_since_valid_ping = (uint16_t)(idle_s / 2);
    t->keepalive.secs_since_valid_hangup = (uint16_t)idle_s;
    if (t->wsi)
        lws_validity_confirmed(t->wsi); /* reschedules the check under the new timeout now */
}

int transport_service(transport *t, int timeout_ms)
{
    /* lws_service() ignores its timeout argument (it sleeps until the next lws timer), so a
     * timer of our own bounds the wait; a negative argument means "do not wait". */
    int wait = -1;
    if (timeout_ms > 0 && quiet(t)) {
        wait_quietly(t, timeout_ms);
        timeout_ms = -1;
    }
    if (timeout_ms > 0) {
        lws_sul_schedule(t->ctx, 0, &t->service_sul, service_timeout,
                         (lws_usec_t)timeout_ms * LWS_US_PER_MS);
        wait = 0;
    }
    int n = lws_service(t->ctx, wait);
    lws_sul_cancel(&t->service_sul);
    /* Emptied whichever way the wait ended: the engine reads what it was woken for after this
     * returns, so a wake read here is never lost, and a stale one never ends a later wait. */
    char drain[64];
    while (t->have_pipe && read(t->wake_pipe[0], drain, sizeof drain) > 0) {
    }
    return n < 0 ? -EIO : 0;
}

void transport_wake(transport *t)
{
    if (t->have_pipe && write(t->wake_pipe[1], "", 1) < 0) {
        /* full: a wake is already waiting to be read */
    }
    lws_cancel_service(t->ctx);
}

transport_state transport_get_state(const transport *t)
{
    return t->state;
}

size_t transport_queued_bytes(const transport *t)
{
    return t->queued_bytes;
}
