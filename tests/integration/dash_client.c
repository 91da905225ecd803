#include "dash_client.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <psa/crypto.h>

void dash_reply_free(dash_reply *r)
{
    if (!r)
        return;
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static int parse_reply(char *raw, size_t n, dash_reply *out)
{
    char *end = strstr(raw, "\r\n\r\n");
    if (!end || sscanf(raw, "HTTP/1.1 %d", &out->status) != 1)
        return -1;
    size_t head_len = (size_t)(end - raw);
    out->headers = malloc(head_len + 1);
    out->body_len = n - head_len - 4;
    out->body = malloc(out->body_len + 1);
    if (!out->headers || !out->body)
        return -1;
    for (size_t i = 0; i < head_len; i++)
        out->headers[i] = raw[i];
    out->headers[head_len] = 0;
    /* lower-case the names */
    for (char *line = out->headers; line; line = strstr(line, "\r\n") ? strstr(line, "\r\n") + 2
                                                                        : NULL)
        for (char *p = line; *p && *p != ':' && *p != '\r'; p++)
            *p = (char)tolower((unsigned char)*p);
    memcpy(out->body, end + 4, out->body_len);
    out->body[out->body_len] = 0;
    return 0;
}

int dash_request(uint16_t port, const char *ca_path, const char *method, const char *path,
                 const char *cookie, const char *csrf, const char *extra_header,
                 const char *form_body, dash_reply *out)
{
    mbedtls_net_context net;
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    char port_text[8], *req = NULL, *raw = NULL;
    size_t raw_len = 0, raw_cap = 65536;
    int rc = -1, n;

    memset(out, 0, sizeof *out);
    psa_crypto_init();
    mbedtls_net_init(&net);
    mbedtls_ssl_init(&ssl);
    mbedtls_ssl_config_init(&conf);
    mbedtls_x509_crt_init(&ca);
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    snprintf(port_text, sizeof port_text, "%u", (unsigned)port);
    req = malloc(8192);
    raw = malloc(raw_cap);
    if (!req || !raw)
        goto done;
    /* A POST without a body is sent without Content-Length, as `curl -X POST` does. */
    char length[96] = "";
    if (form_body || strcmp(method, "POST") != 0)
        snprintf(length, sizeof length,
                 "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n",
                 form_body ? strlen(form_body) : 0);
    n = snprintf(req, 8192,
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n%s%s%s%s%s%s%s"
                 "%s%s\r\n%s",
                 method, path, (unsigned)port, cookie ? "Cookie: outpost_session=" : "",
                 cookie ? cookie : "", cookie ? "\r\n" : "", csrf ? "X-CSRF-Token: " : "",
                 csrf ? csrf : "", csrf ? "\r\n" : "", extra_header ? extra_header : "",
                 extra_header ? "\r\n" : "", length, form_body ? form_body : "");
    if (n < 0 || n >= 8192)
        goto done;
    if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0) != 0 ||
        mbedtls_x509_crt_parse_file(&ca, ca_path) != 0 ||
        mbedtls_net_connect(&net, "127.0.0.1", port_text, MBEDTLS_NET_PROTO_TCP) != 0 ||
        mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0)
        goto done;
    mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
    mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
    if (mbedtls_ssl_setup(&ssl, &conf) != 0 || mbedtls_ssl_set_hostname(&ssl, "localhost") != 0)
        goto done;
    mbedtls_ssl_set_bio(&ssl, &net, mbedtls_net_send, mbedtls_net_recv, NULL);
    for (size_t sent = 0; sent < (size_t)n;) {
        int w = mbedtls_ssl_write(&ssl, (const unsigned char *)req + sent, (size_t)n - sent);
        if (w == MBEDTLS_ERR_SSL_WANT_READ || w == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue;
        if (w <= 0)
            goto done;
        sent += (size_t)w;
    }
    for (;;) {
        if (raw_len + 4096 > raw_cap) {
            char *grown = realloc(raw, raw_cap * 2);
            if (!grown)
                goto done;
            raw = grown;
            raw_cap *= 2;
        }
        int r = mbedtls_ssl_read(&ssl, (unsigned char *)raw + raw_len, 4096);
        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE ||
            r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
            continue;
        if (r <= 0)
            break;
        raw_len += (size_t)r;
    }
    raw[raw_len] = 0;
    rc = parse_reply(raw, raw_len, out);
done:
    if (rc != 0)
        dash_reply_free(out);
    mbedtls_ssl_close_notify(&ssl);
    mbedtls_net_free(&net);
    mbedtls_ssl_free(&ssl);
    mbedtls_ssl_config_free(&conf);
    mbedtls_x509_crt_free(&ca);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    free(req);
    free(raw);
    return rc;
}

int dash_reply_header(const dash_reply *r, const char *name, char *out, size_t size)
{
    char key[128];
    snprintf(key, sizeof key, "\r\n%s:", name);
    const char *p = r->headers ? strstr(r->headers, key) : NULL;
    if (!p)
        return -1;
    p += strlen(key);
    while (*p == ' ')
        p++;
    const char *e = strstr(p, "\r\n");
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n >= size)
        return -1;
    memcpy(out, p, n);
    out[n] = 0;
    return 0;
}

int dash_json_string(const char *body, const char *key, char *out, size_t size)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = body ? strstr(body, pat) : NULL;
    if (!p)
        return -1;
    p += strlen(pat);
    const char *e = strchr(p, '"');
    if (!e || (size_t)(e - p) >= size)
        return -1;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = 0;
    return 0;
}

struct dash_live {
    mbedtls_net_context net;
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    unsigned char buf[65536]; /* bytes read and not yet parsed */
    size_t n;
};

void dash_live_close(dash_live *l)
{
    if (!l)
        return;
    mbedtls_ssl_close_notify(&l->ssl);
    mbedtls_net_free(&l->net);
    mbedtls_ssl_free(&l->ssl);
    mbedtls_ssl_config_free(&l->conf);
    mbedtls_x509_crt_free(&l->ca);
    mbedtls_ctr_drbg_free(&l->drbg);
    mbedtls_entropy_free(&l->entropy);
    free(l);
}

/* Reads more bytes into l->buf. 1: some came; 0: timed out; 2: end of stream; -1: error. */
static int live_fill(dash_live *l, int timeout_ms)
{
    mbedtls_ssl_conf_read_timeout(&l->conf, (uint32_t)timeout_ms);
    for (;;) {
        if (l->n == sizeof l->buf)
            return -1;
        int r = mbedtls_ssl_read(&l->ssl, l->buf + l->n, sizeof l->buf - l->n);
        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE ||
            r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
            continue;
        if (r == MBEDTLS_ERR_SSL_TIMEOUT)
            return 0;
        if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || r == MBEDTLS_ERR_NET_CONN_RESET)
            return 2;
        if (r < 0)
            return -1;
        l->n += (size_t)r;
        return 1;
    }
}

static int ws_open(uint16_t port, const char *ca_path, const char *path, const char *protocol,
                   const char *cookie, const char *origin, dash_live **out)
{
    dash_live *l = calloc(1, sizeof *l);
    char port_text[8], req[1024];
    int status = -1, n;

    *out = NULL;
    if (!l)
        return -1;
    psa_crypto_init();
    mbedtls_net_init(&l->net);
    mbedtls_ssl_init(&l->ssl);
    mbedtls_ssl_config_init(&l->conf);
    mbedtls_x509_crt_init(&l->ca);
    mbedtls_entropy_init(&l->entropy);
    mbedtls_ctr_drbg_init(&l->drbg);
    snprintf(port_text, sizeof port_text, "%u", (unsigned)port);
    n = snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n"
                 "%s%s%s%s%s%s\r\n",
                 path, (unsigned)port, protocol, cookie ? "Cookie: outpost_session=" : "", cookie ? cookie : "",
                 cookie ? "\r\n" : "", origin ? "Origin: " : "", origin ? origin : "",
                 origin ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof req ||
        mbedtls_ctr_drbg_seed(&l->drbg, mbedtls_entropy_func, &l->entropy, NULL, 0) != 0 ||
        mbedtls_x509_crt_parse_file(&l->ca, ca_path) != 0 ||
        mbedtls_net_connect(&l->net, "127.0.0.1", port_text, MBEDTLS_NET_PROTO_TCP) != 0 ||
        mbedtls_ssl_config_defaults(&l->conf, MBEDTLS_SSL_IS_CLIENT,
                                    MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0)
        goto fail;
    mbedtls_ssl_conf_authmode(&l->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&l->conf, &l->ca, NULL);
    mbedtls_ssl_conf_rng(&l->conf, mbedtls_ctr_drbg_random, &l->drbg);
    if (mbedtls_ssl_setup(&l->ssl, &l->conf) != 0 ||
        mbedtls_ssl_set_hostname(&l->ssl, "localhost") != 0)
        goto fail;
    mbedtls_ssl_set_bio(&l->ssl, &l->net, mbedtls_net_send, NULL, mbedtls_net_recv_timeout);
    for (int sent = 0; sent < n;) {
        int w = mbedtls_ssl_write(&l->ssl, (const unsigned char *)req + sent, (size_t)(n - sent));
        if (w == MBEDTLS_ERR_SSL_WANT_READ || w == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue;
        if (w <= 0)
            goto fail;
        sent += w;
    }
    for (;;) {
        unsigned char *end = NULL;
        for (size_t i = 0; i + 4 <= l->n && !end; i++)
            if (memcmp(l->buf + i, "\r\n\r\n", 4) == 0)
                end = l->buf + i + 4;
        if (end) {
            char line[32];
            size_t head = (size_t)(end - l->buf);
            snprintf(line, sizeof line, "%.*s", (int)(head < 31 ? head : 31), (char *)l->buf);
            if (sscanf(line, "HTTP/1.%*d %d", &status) != 1)
                goto fail;
            memmove(l->buf, end, l->n - head);
            l->n -= head;
            break;
        }
        if (live_fill(l, 5000) != 1)
            goto fail;
    }
    if (status == 101)
        *out = l;
    else
        dash_live_close(l);
    return status;
fail:
    dash_live_close(l);
    return -1;
}

int dash_live_open(uint16_t port, const char *ca_path, const char *cookie, const char *origin,
                   dash_live **out)
{
    return ws_open(port, ca_path, "/live", "outpost.live", cookie, origin, out);
}

int dash_ws_open(uint16_t port, const char *ca_path, const char *path, const char *protocol,
                 dash_live **out)
{
    return ws_open(port, ca_path, path, protocol, NULL, NULL, out);
}

int dash_ws_send_binary(dash_live *l, const uint8_t *const *msgs, const size_t *lens, size_t n)
{
    size_t total = 0, off = 0;
    unsigned char *wire;
    int rc = 0;

    for (size_t i = 0; i < n; i++)
        total += 14 + lens[i];
    wire = malloc(total ? total : 1);
    if (!wire)
        return -1;
    /* RFC 6455 client frames: FIN + binary, masked with the all-zero key (payload unchanged). */
    for (size_t i = 0; i < n; i++) {
        uint64_t len = lens[i];
        wire[off++] = 0x82;
        if (len < 126) {
            wire[off++] = (unsigned char)(0x80 | len);
        } else if (len <= 0xffff) {
            wire[off++] = 0x80 | 126;
            wire[off++] = (unsigned char)(len >> 8);
            wire[off++] = (unsigned char)len;
        } else {
            wire[off++] = 0x80 | 127;
            for (int b = 7; b >= 0; b--)
                wire[off++] = (unsigned char)(len >> (8 * b));
        }
        memset(wire + off, 0, 4);
        off += 4;
        if (len > 0)
            memcpy(wire + off, msgs[i], lens[i]);
        off += lens[i];
    }
    /* mbedTLS puts one write of up to 16 KiB in one record. */
    for (size_t sent = 0; sent < off && rc == 0;) {
        int w = mbedtls_ssl_write(&l->ssl, wire + sent, off - sent);
        if (w == MBEDTLS_ERR_SSL_WANT_READ || w == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue;
        if (w <= 0)
            rc = -1;
        else
            sent += (size_t)w;
    }
    free(wire);
    return rc;
}

/* The next whole frame from the server (unmasked, payload under 64 KiB): 1 with its opcode,
 * payload and length set, 0 nothing came within timeout_ms, 2 closed, -1 error. */
static int next_frame(dash_live *l, int timeout_ms, unsigned *opcode, unsigned char *out,
                      size_t size, size_t *out_len)
{
    for (;;) {
        if (l->n >= 2) {
            size_t len = l->buf[1] & 0x7f, head = 2;
            if (len == 126 && l->n >= 4) {
                len = ((size_t)l->buf[2] << 8) | l->buf[3];
                head = 4;
            }
            if ((l->buf[1] & 0x7f) != 127 && !((l->buf[1] & 0x7f) == 126 && l->n < 4) &&
                l->n >= head + len) {
                *opcode = l->buf[0] & 0x0f;
                *out_len = len < size ? len : size;
                memcpy(out, l->buf + head, *out_len);
                memmove(l->buf, l->buf + head + len, l->n - head - len);
                l->n -= head + len;
                return 1;
            }
        }
        int r = live_fill(l, timeout_ms);
        if (r != 1)
            return r;
    }
}

int dash_ws_next_binary(dash_live *l, int timeout_ms, uint8_t *out, size_t size, size_t *out_len)
{
    unsigned opcode;
    int r = next_frame(l, timeout_ms, &opcode, out, size, out_len);

    if (r != 1)
        return r;
    return opcode == 0x2 ? 1 : opcode == 0x8 ? 2 : -1;
}

int dash_live_next(dash_live *l, int timeout_ms, char *out, size_t size)
{
    unsigned char payload[sizeof l->buf];
    unsigned opcode;
    size_t len;
    int r = next_frame(l, timeout_ms, &opcode, payload, sizeof payload, &len);

    if (r != 1)
        return r;
    if (opcode == 0x1)
        snprintf(out, size, "%.*s", (int)len, (char *)payload);
    return opcode == 0x1 ? 1 : opcode == 0x8 ? 2 : -1;
}
