/*
 * The device transport against a real TLS WebSocket server on 127.0.0.1: a small lws echo
 * server (subprotocol outpost.1) that runs on a thread of this test, with certificates made for
 * the test by the openssl command line: a dev CA and its server certificate, another CA, an
 * expired certificate, one for another host name, and a self-signed one.
 *
 * What a user of the transport would check: messages come back whole and equal, a server that
 * is not ours is refused with the right reason before it receives a single application byte,
 * failures are reported as what they are, and the loop can be woken from another thread.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <mbedtls/psa_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <psa/crypto.h>

#include "integration/faultproxy.h"
#include "transport.h"

/* ---- certificates ------------------------------------------------------------------------- */

static char cert_dir[64];

static char *read_file(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", cert_dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = calloc(1, (size_t)size + 1);
    if (text && fread(text, 1, (size_t)size, f) != (size_t)size) {
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

static int make_certificates(void **state)
{
    (void)state;
    /* The echo server's lws messages go to lws's global log: keep it quiet unless asked. */
    if (!getenv("OUTPOST_TRANSPORT_DEBUG"))
        lws_set_log_level(0, NULL);
    snprintf(cert_dir, sizeof cert_dir, "/tmp/outpost-transport-XXXXXX");
    if (!mkdtemp(cert_dir))
        return -1;
    /* ECDSA P-256 throughout. The expired certificate needs explicit dates, which in openssl
     * 3.0 only `openssl ca` can set, hence its small configuration. */
    char script[4096];
    snprintf(script, sizeof script,
        "set -e; cd %s\n"
        "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $1; }\n"
        "ca() { key $1.key; openssl req -x509 -new -key $1.key -sha256 -days 3650 -subj \"/CN=$2\""
        "  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
        "  -out $1.pem; }\n"
        "ext() { printf 'basicConstraints=CA:FALSE\\nkeyUsage=critical,digitalSignature\\n"
        "extendedKeyUsage=serverAuth\\nsubjectAltName=%%s\\n' \"$1\" > $2; }\n"
        "leaf() { key $1.key; openssl req -new -key $1.key -subj /CN=outpost-test -out $1.csr;"
        "  ext \"$3\" $1.ext; openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key"
        "  -CAcreateserial -days 30 -sha256 -extfile $1.ext -out $1.pem 2>/dev/null; }\n"
        "ca ca 'Outpost Test CA'; ca other 'Unrelated CA'\n"
        "leaf good ca 'DNS:localhost,IP:127.0.0.1'\n"
        "leaf foreign other 'DNS:localhost,IP:127.0.0.1'\n"
        "leaf wronghost ca 'DNS:sync.elsewhere.example'\n"
        "key self.key; openssl req -x509 -new -key self.key -sha256 -days 30 -subj /CN=localhost"
        "  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -out self.pem\n"
        "key expired.key\n"
        "openssl req -new -key expired.key -subj /CN=outpost-test -out expired.csr\n"
        "ext 'DNS:localhost,IP:127.0.0.1' expired.ext; : > index.txt; echo 01 > serial\n"
        "printf '[ca]\\ndefault_ca=d\\n[d]\\ndatabase=index.txt\\nserial=serial\\n"
        "new_certs_dir=.\\ndefault_md=sha256\\npolicy=p\\nunique_subject=no\\n[p]\\n"
        "commonName=supplied\\n' > ca.cnf\n"
        "openssl ca -batch -notext -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr"
        "  -startdate 20200101000000Z -enddate 20200201000000Z -extfile expired.ext"
        "  -out expired.pem 2>/dev/null\n"
        "openssl x509 -in self.pem -noout -fingerprint -sha256 | cut -d= -f2 > self.pin\n"
        "openssl x509 -in good.pem -noout -fingerprint -sha256 | cut -d= -f2 > good.pin\n",
        cert_dir);
    return system(script) == 0 ? 0 : -1;
}

static int remove_certificates(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", cert_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- the echo server ---------------------------------------------------------------------- */

typedef struct echo_conn {
    uint8_t *msg; /* LWS_PRE headroom + message */
    size_t len, cap;
    size_t out_len, out_sent; /* the reply being written, in msg */
    bool replying;
} echo_conn;

typedef struct echo_server {
    struct lws_context *ctx;
    pthread_t thread;
    atomic_bool stop;
    atomic_bool paused; /* the server's loop stops: TCP stays up, nothing is answered */
    uint16_t port;
    size_t reply_size; /* 0: echo; else reply with this many bytes */
    atomic_int upgrade_requests; /* WebSocket upgrades asked for: the first application bytes */
    atomic_int messages;         /* complete messages received */
    atomic_int frames;           /* frames received (a fragmented message has several) */
    atomic_size_t last_message_len;
    lws_log_cx_t log_cx;
} echo_server;

static int echo_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    echo_server *s = lws_context_user(lws_get_context(wsi));
    echo_conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        atomic_fetch_add(&s->upgrade_requests, 1);
        break;
    case LWS_CALLBACK_RECEIVE:
        if (LWS_PRE + c->len + len > c->cap) {
            size_t cap = (LWS_PRE + c->len + len) * 2;
            uint8_t *grown = realloc(c->msg, cap);
            if (!grown)
                return -1;
            c->msg = grown;
            c->cap = cap;
        }
        memcpy(c->msg + LWS_PRE + c->len, in, len);
        c->len += len;
        if (lws_remaining_packet_payload(wsi) == 0)
            atomic_fetch_add(&s->frames, 1);
        if (lws_is_final_fragment(wsi)) {
            atomic_fetch_add(&s->messages, 1);
            if (c->len == 6 && memcmp(c->msg + LWS_PRE, "revoke", 6) == 0) {
                lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                                 (unsigned char *)"device revoked", 14);
                return -1;
            }
            atomic_store(&s->last_message_len, c->len);
            c->out_len = c->len;
            if (s->reply_size) {
                uint8_t *grown = realloc(c->msg, LWS_PRE + s->reply_size);
                if (!grown)
                    return -1;
                c->msg = grown;
                c->cap = LWS_PRE + s->reply_size;
                memset(c->msg + LWS_PRE, 'x', s->reply_size);
                c->out_len = s->reply_size;
            }
            c->out_sent = 0;
            c->replying = true;
            lws_rx_flow_control(wsi, 0); /* one reply at a time: hold the next message */
            lws_callback_on_writable(wsi);
        }
        break;
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        if (!c->replying)
            break;
        size_t chunk = c->out_len - c->out_sent;
        if (chunk > 16000)
            chunk = 16000;
        bool first = c->out_sent == 0, last = c->out_sent + chunk == c->out_len;
        int flags = lws_write_ws_flags(LWS_WRITE_BINARY, first, last);
        if (lws_write(wsi, c->msg + LWS_PRE + c->out_sent, chunk,
                      (enum lws_write_protocol)flags) < (int)chunk)
            return -1;
        c->out_sent += chunk;
        if (last) {
            c->replying = false;
            c->len = 0;
            lws_rx_flow_control(wsi, 1);
        } else {
            lws_callback_on_writable(wsi);
        }
        break;
    }
    case LWS_CALLBACK_CLOSED:
        free(c->msg);
        c->msg = NULL;
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols echo_protocols[] = {
    {.name = TRANSPORT_SUBPROTOCOL, .callback = echo_callback,
     .per_session_data_size = sizeof(echo_conn), .rx_buffer_size = 16384},
    LWS_PROTOCOL_LIST_TERM,
};

static void *echo_main(void *arg)
{
    echo_server *s = arg;
    while (!atomic_load(&s->stop)) {
        if (atomic_load(&s->paused)) {
            struct timespec nap = {.tv_nsec = 10 * 1000 * 1000};
            nanosleep(&nap, NULL);
            continue;
        }
        if (lws_service(s->ctx, 0) < 0)
            break;
    }
    return NULL;
}

static void quiet_log(int level, const char *line)
{
    (void)level;
    (void)line;
}

/* TLS 1.3 session tickets on the echo server, as outpostd issues them (server/src/daemon/tls.c):
 * this program links with --wrap=mbedtls_ssl_config_defaults (tests/client_transport.cmake). The
 * keys are this process's; tickets_rekey() gives them the fresh keys another server would have. */
static mbedtls_ssl_ticket_context tickets;
static bool tickets_ready;

int __real_mbedtls_ssl_config_defaults(mbedtls_ssl_config *conf, int endpoint, int tls_transport,
                                       int preset);
int __wrap_mbedtls_ssl_config_defaults(mbedtls_ssl_config *conf, int endpoint, int tls_transport,
                                       int preset);

int __wrap_mbedtls_ssl_config_defaults(mbedtls_ssl_config *conf, int endpoint, int tls_transport,
                                       int preset)
{
    int rc = __real_mbedtls_ssl_config_defaults(conf, endpoint, tls_transport, preset);
    if (rc == 0 && endpoint == MBEDTLS_SSL_IS_SERVER && tickets_ready)
        mbedtls_ssl_conf_session_tickets_cb(conf, mbedtls_ssl_ticket_write,
                                            mbedtls_ssl_ticket_parse, &tickets);
    return rc;
}

/* No echo server may be running. */
static void tickets_rekey(void)
{
    if (tickets_ready)
        mbedtls_ssl_ticket_free(&tickets);
    assert_int_equal(psa_crypto_init(), PSA_SUCCESS);
    mbedtls_ssl_ticket_init(&tickets);
    assert_int_equal(mbedtls_ssl_ticket_setup(&tickets, mbedtls_psa_get_random,
                                              MBEDTLS_PSA_RANDOM_STATE,
                                              MBEDTLS_CIPHER_AES_256_GCM, 3600),
                     0);
    tickets_ready = true;
}

static void tickets_off(void)
{
    if (tickets_ready)
        mbedtls_ssl_ticket_free(&tickets);
    tickets_ready = false;
}

/* Starts an echo server presenting <cert_name>.pem on port (0: any free one). */
static echo_server *echo_start_on(const char *cert_name, size_t reply_size, uint16_t port)
{
    echo_server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->reply_size = reply_size;
    s->log_cx.u.emit = quiet_log;
    s->log_cx.lll_flags = 0;
    char cert[256], key[256];
    snprintf(cert, sizeof cert, "%s/%s.pem", cert_dir, cert_name);
    snprintf(key, sizeof key, "%s/%s.key", cert_dir, cert_name);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = "127.0.0.1";
    info.protocols = echo_protocols;
    info.user = s;
    info.log_cx = &s->log_cx;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_DISABLE_IPV6;
    info.ssl_cert_filepath = cert;
    info.ssl_private_key_filepath = key;
    s->ctx = lws_create_context(&info);
    assert_non_null(s->ctx);
    int listening = lws_get_vhost_listen_port(lws_get_vhost_by_name(s->ctx, "default"));
    assert_true(listening > 0 && listening < 65536);
    s->port = (uint16_t)listening;
    assert_int_equal(pthread_create(&s->thread, NULL, echo_main, s), 0);
    return s;
}

static echo_server *echo_start(const char *cert_name, size_t reply_size)
{
    return echo_start_on(cert_name, reply_size, 0);
}

static void echo_stop(echo_server *s)
{
    atomic_store(&s->stop, true);
    lws_cancel_service(s->ctx);
    pthread_join(s->thread, NULL);
    lws_context_destroy(s->ctx);
    free(s);
}

/* ---- the client under test ---------------------------------------------------------------- */

typedef struct client {
    transport *t;
    int connected;
    int messages;
    uint8_t *last;
    size_t last_len;
    int sent;
    int closed;
    transport_close_reason reason;
    uint16_t peer_code;
    char detail[256];
} client;

static void on_connected(void *user_data)
{
    ((client *)user_data)->connected++;
}

static void on_message(void *user_data, const uint8_t *data, size_t n_bytes)
{
    client *c = user_data;
    c->messages++;
    free(c->last);
    c->last = malloc(n_bytes ? n_bytes : 1);
    assert_non_null(c->last);
    if (n_bytes)
        memcpy(c->last, data, n_bytes);
    c->last_len = n_bytes;
}

static void on_sent(void *user_data, size_t queued_bytes)
{
    (void)queued_bytes;
    ((client *)user_data)->sent++;
}

static void on_closed(void *user_data, transport_close_reason reason, uint16_t peer_code,
                      const char *detail)
{
    client *c = user_data;
    c->closed++;
    c->reason = reason;
    c->peer_code = peer_code;
    snprintf(c->detail, sizeof c->detail, "%s", detail);
}

static transport_config base_config(client *c, const char *url)
{
    transport_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.url = url;
    cfg.max_message_size = 4u * 1024 * 1024;
    cfg.connect_timeout_ms = 5000;
    cfg.on_connected = on_connected;
    cfg.on_message = on_message;
    cfg.on_sent = on_sent;
    cfg.on_closed = on_closed;
    cfg.user_data = c;
    return cfg;
}

static void client_start(client *c, transport_config *cfg)
{
    char err[256] = "";
    int rc = transport_create(cfg, &c->t, err, sizeof err);
    if (rc)
        fail_msg("transport_create: %d %s", rc, err);
    assert_int_equal(transport_connect(c->t), 0);
    assert_int_equal(transport_get_state(c->t), TRANSPORT_CONNECTING);
}

static void client_free(client *c)
{
    transport_destroy(c->t);
    free(c->last);
    memset(c, 0, sizeof *c);
}

static void client_start_ca(client *c, uint16_t port, const char *ca_name)
{
    char url[64];
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/sync", (unsigned)port);
    char file[32];
    snprintf(file, sizeof file, "%s.pem", ca_name);
    char *ca = read_file(file);
    assert_non_null(ca);
    transport_config cfg = base_config(c, url);
    cfg.ca_pem = ca;
    client_start(c, &cfg);
    free(ca); /* copied by transport_create */
}

static void client_start_pin(client *c, uint16_t port, const uint8_t pin[TRANSPORT_PIN_SIZE])
{
    char url[64];
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/sync", (unsigned)port);
    transport_config cfg = base_config(c, url);
    cfg.pin_sha256 = pin;
    client_start(c, &cfg);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Services the transport until *counter reaches target or ten seconds pass. */
static void pump_until(client *c, const int *counter, int target)
{
    int64_t deadline = now_ms() + 10000;
    while (*counter < target && now_ms() < deadline)
        assert_int_equal(transport_service(c->t, 50), 0);
    assert_int_equal(*counter, target);
}

static void assert_refused(client *c, echo_server *s, transport_close_reason expected)
{
    pump_until(c, &c->closed, 1);
    if (c->reason != expected)
        fail_msg("closed with '%s' (%s), expected '%s'", transport_close_reason_name(c->reason),
                 c->detail, transport_close_reason_name(expected));
    assert_true(transport_close_is_certificate(c->reason));
    assert_int_equal(c->connected, 0);
    assert_int_equal(transport_get_state(c->t), TRANSPORT_IDLE);
    assert_int_equal(transport_send(c->t, (const uint8_t *)"x", 1), -ENOTCONN);
    /* Give a stray byte time to arrive, then check the server got none. */
    for (int i = 0; i < 4; i++)
        transport_service(c->t, 25);
    assert_int_equal(atomic_load(&s->upgrade_requests), 0);
    assert_int_equal(atomic_load(&s->messages), 0);
}

static uint8_t *pattern(size_t n)
{
    uint8_t *p = malloc(n);
    assert_non_null(p);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    return p;
}

static void read_pin(const char *name, uint8_t pin[TRANSPORT_PIN_SIZE])
{
    char *text = read_file(name);
    assert_non_null(text);
    text[strcspn(text, "\r\n")] = '\0';
    assert_int_equal(transport_pin_parse(text, pin), 0);
    free(text);
}

/* ---- configuration ------------------------------------------------------------------------ */

static void test_url_parse_accepts_sync_urls(void **state)
{
    (void)state;
    transport_url u;
    assert_int_equal(transport_url_parse("wss://127.0.0.1:8443/sync", &u, NULL, 0), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 8443);
    assert_string_equal(u.path, "/sync");
    assert_int_equal(transport_url_parse("WSS://Sync.Example.org/sync", &u, NULL, 0), 0);
    assert_string_equal(u.host, "Sync.Example.org");
    assert_int_equal(u.port, 443);
    assert_string_equal(u.path, "/sync");
    assert_int_equal(transport_url_parse("wss://[::1]:9000/sync?v=1", &u, NULL, 0), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 9000);
    assert_string_equal(u.path, "/sync?v=1");
}

static void test_url_parse_refuses_with_a_reason(void **state)
{
    (void)state;
    struct {
        const char *url, *says;
    } cases[] = {
        {"ws://127.0.0.1/sync", "unencrypted"},
        {"https://127.0.0.1/sync", "must start with wss://"},
        {"", "no server URL"},
        {"wss:///sync", "no host"},
        {"wss://host:/sync", "empty port"},
        {"wss://host:0/sync", "between 1 and 65535"},
        {"wss://host:65536/sync", "between 1 and 65535"},
        {"wss://host:8x/sync", "must be a number"},
        {"wss://admin:secret@host/sync", "passwords"},
        {"wss://ho st/sync", "not allowed in a host"},
        {"wss://[::1/sync", "closing ']'"},
        {"wss://host/sync#top", "fragment"},
        {"wss://host/sy nc", "space"},
        {"wss://host:8443", "no path; outpostd serves devices at wss://HOST:PORT/sync"},
        {"wss://host/", "no path"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        transport_url u;
        char err[200] = "";
        assert_int_equal(transport_url_parse(cases[i].url, &u, err, sizeof err), -EINVAL);
        if (!strstr(err, cases[i].says))
            fail_msg("'%s': message '%s' lacks '%s'", cases[i].url, err, cases[i].says);
    }
    assert_int_equal(transport_url_parse(NULL, &(transport_url){{0}, 0, {0}}, NULL, 0), -EINVAL);
}

static void test_pin_parse_reads_hex_with_or_without_colons(void **state)
{
    (void)state;
    uint8_t a[TRANSPORT_PIN_SIZE], b[TRANSPORT_PIN_SIZE];
    const char *plain = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    const char *colons = "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
                         "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff";
    assert_int_equal(transport_pin_parse(plain, a), 0);
    assert_int_equal(transport_pin_parse(colons, b), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(a[0], 0x00);
    assert_int_equal(a[31], 0xff);
    assert_int_equal(transport_pin_parse("0011", a), -EINVAL);                   /* short */
    assert_int_equal(transport_pin_parse("zz112233445566778899aabbccddeeff00112233445566778899"
                                         "aabbccddeeff", a), -EINVAL);            /* not hex */
    char longer[128];
    snprintf(longer, sizeof longer, "%s00", plain);
    assert_int_equal(transport_pin_parse(longer, a), -EINVAL);                   /* too long */
    snprintf(longer, sizeof longer, "%s:", colons);
    assert_int_equal(transport_pin_parse(longer, a), -EINVAL);                   /* trailing : */
}

static void test_create_refuses_bad_configuration(void **state)
{
    (void)state;
    client c = {0};
    char err[256];
    transport *t = (transport *)&c; /* must be reset to NULL on failure */
    transport_config cfg = base_config(&c, "wss://127.0.0.1:1/sync");

    assert_int_equal(transport_create(&cfg, &t, err, sizeof err), -EINVAL);
    assert_null(t);
    assert_non_null(strstr(err, "no trust given"));

    uint8_t pin[TRANSPORT_PIN_SIZE] = {0};
    cfg.pin_sha256 = pin;
    cfg.ca_pem = "-----BEGIN CERTIFICATE-----\n";
    assert_int_equal(transport_create(&cfg, &t, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not both"));

    cfg.pin_sha256 = NULL;
    assert_int_equal(transport_create(&cfg, &t, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not a valid PEM"));

    cfg.ca_pem = NULL;
    cfg.pin_sha256 = pin;
    cfg.url = "ws://127.0.0.1:1/sync";
    assert_int_equal(transport_create(&cfg, &t, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "wss://"));

    cfg.url = "wss://127.0.0.1:1/sync";
    cfg.on_closed = NULL;
    assert_int_equal(transport_create(&cfg, &t, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "required"));

    transport_destroy(NULL); /* harmless */
}

/* ---- round trips -------------------------------------------------------------------------- */

static void test_echo_small_and_3mib_messages(void **state)
{
    (void)state;
    echo_server *s = echo_start("good", 0);
    client c = {0};
    client_start_ca(&c, s->port, "ca");
    pump_until(&c, &c.connected, 1);
    assert_int_equal(transport_get_state(c.t), TRANSPORT_OPEN);

    assert_int_equal(transport_send(c.t, (const uint8_t *)"hello, office", 13), 0);
    pump_until(&c, &c.messages, 1);
    assert_int_equal(c.last_len, 13);
    assert_memory_equal(c.last, "hello, office", 13);

    const size_t big = 3u * 1024 * 1024;
    uint8_t *payload = pattern(big);
    assert_int_equal(transport_send(c.t, payload, big), 0);
    assert_int_equal(transport_queued_bytes(c.t), big);
    pump_until(&c, &c.messages, 2);
    assert_int_equal(c.last_len, big);
    assert_memory_equal(c.last, payload, big);
    assert_int_equal(transport_queued_bytes(c.t), 0);
    assert_int_equal(c.sent, 2);

    assert_int_equal(atomic_load(&s->messages), 2);
    assert_int_equal(atomic_load(&s->last_message_len), big);
    /* It crossed as many WebSocket fragments, not one 3 MiB frame. */
    assert_true(atomic_load(&s->frames) > (int)(big / (16 * 1024)));
    assert_int_equal(c.closed, 0);

    transport_disconnect(c.t);
    pump_until(&c, &c.closed, 1);
    assert_int_equal(c.reason, TRANSPORT_CLOSE_LOCAL);
    assert_int_equal(transport_get_state(c.t), TRANSPORT_IDLE);
    free(payload);
    client_free(&c);
    echo_stop(s);
}

static void test_send_queue_is_bounded(void **state)
{
    (void)state;
    echo_server *s = echo_start("good", 0);
    client c = {0};
    char url[64];
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/sync", (unsigned)s->port);
    char *ca = read_file("ca.pem");
    transport_config cfg = base_config(&c, url);
    cfg.ca_pem = ca;
    cfg.max_message_size = 64 * 1024;
    cfg.send_queue_limit = 100 * 1024;
    client_start(&c, &cfg);
    free(ca);
    pump_until(&c, &c.connected, 1);

    uint8_t *block = pattern(64 * 1024);
    assert_int_equal(transport_send(c.t, block, 64 * 1024 + 1), -EMSGSIZE);
    assert_int_equal(transport_send(c.t, block, 60 * 1024), 0);
    assert_int_equal(transport_send(c.t, block, 40 * 1024), 0);
    assert_int_equal(transport_send(c.t, block, 1), -EAGAIN); /* 100 KiB queued: full */
    pump_until(&c, &c.sent, 2);                                /* drained by the loop */
    assert_int_equal(transport_send(c.t, block, 1), 0);
    pump_until(&c, &c.messages, 3);
    assert_int_equal(c.last_len, 1);
    free(block);
    client_free(&c);
    echo_stop(s);
}

/* The default send queue is four of the largest messages, and stays usable at the 1 GiB limit
 * where four of them are more than a 32-bit size_t holds (it wrapped to a queue of nothing). */
static void test_default_queue_at_the_largest_message_size_takes_a_second_message(void **state)
{
    (void)state;
    echo_server *s = echo_start("good", 0);
    client c = {0};
    char url[64];
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/sync", (unsigned)s->port);
    char *ca = read_file("ca.pem");
    transport_config cfg = base_config(&c, url);
    cfg.ca_pem = ca;
    cfg.max_message_size = 1024u * 1024u * 1024u;
    client_start(&c, &cfg);
    free(ca);
    pump_until(&c, &c.connected, 1);

    const uint8_t one[1] = {7};
    assert_int_equal(transport_send(c.t, one, 1), 0);
    assert_int_equal(transport_send(c.t, one, 1), 0); /* queued behind the first, not -EAGAIN */
    pump_until(&c, &c.messages, 2);
    client_free(&c);
    echo_stop(s);
}

static void test_message_over_the_limit_from_the_server_is_refused(void **state)
{
    (void)state;
    echo_server *s = echo_start("good", 200 * 1024); /* answers everything with 200 KiB */
    client c = {0};
    char url[64];
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/sync", (unsigned)s->port);
    char *ca = read_file("ca.pem");
    transport_config cfg = base_config(&c, url);
    cfg.ca_pem = ca;
    cfg.max_message_size = 64 * 1024;
    client_start(&c, &cfg);
    free(ca);
    pump_until(&c, &c.connected, 1);
    assert_int_equal(transport_send(c.t, (const uint8_t *)"pull", 4), 0);
    pump_until(&c, &c.closed, 1);
    assert_int_equal(c.reason, TRANSPORT_CLOSE_MESSAGE_TOO_BIG);
    assert_int_equal(c.messages, 0);
    assert_non_null(strstr(c.detail, "65536"));
    client_free(&c);
    echo_stop(s);
}

static void test_server_close_is_reported_with_its_code(void **state)
{
    (void)state;
    echo_server *s = echo_start("good", 0);
    client c = {0};
    client_start_ca(&c, s->port, "ca");
    pump_until(&c, &c.connected, 1);
    assert_int_equal(transport_send(c.t, (const uint8_t *)"revoke", 6), 0);
    pump_until(&c, &c.closed, 1);
    assert_int_equal(c.reason, TRANSPORT_CLOSE_PEER_CLOSED);
    assert_int_equal(c.peer_code, 1008);
    assert_non_null(strstr(c.detail, "device revoked"));
    client_free(&c);
    echo_stop(s);
}

static void test_disconnect_while_connecting_and_reconnect(void **state)
{
    (void)state;
    echo_server *s = echo_start("good", 0);
    client c = {0};
    client_start_ca(&c, s->port, "ca");
    transport_disconnect(c.t); /* before the loop even started the attempt */
    pump_until(&c, &c.closed, 1);
    assert_int_equal(c.reason, TRANSPORT_CLOSE_LOCAL);
    assert_int_equal(c.connected, 0);

    assert_int_equal(transport_connect(c.t), 0);
    for (int i = 0; i < 2; i++) /* the attempt is under way: TCP and TLS in flight */
        assert_int_equal(transport_service(c.t, 0), 0);
    /* On a quiet loopback the handshake can finish within those two turns (CI once saw it):
     * then this is a disconnect right after connecting, which must end the same way. */
    int connected_before = c.connected;
    transport_disconnect(c.t);
    pump_until(&c, &c.closed, 2);
    assert_int_equal(c.reason, TRANSPORT_CLOSE_LOCAL);
    assert_int_equal(c.connected, connected_before); /* no connection reported after it */

    assert_int_equal(transport_connect(c.t), 0);
    pump_until(&c, &c.connected, connected_before + 1);
    assert_int_equal(transport_send(c.t, (const uint8_t *)"again", 5), 0);
    pump_until(&c, &c.messages, 1);
    assert_memory_equal(c.last, "again", 5);
    client_free(&c);
    echo_stop(s);
}

static int open_descriptors(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* An app that starts and stops sync many times (each `outpost sync`, each enrollment, an app
 * moving between foreground and background) must not run out of descriptors: libwebsockets
 * 4.3.5 leaked its event pipe on every context destroyed until cmake/patches fixed it. */
static void test_create_and_destroy_leaks_no_descriptor(void **state)
{
    (void)state;
    echo_server *s = echo_start("good", 0);
    int before = -1;

    for (int i = 0; i < 12; i++) {
        client c = {0};
        client_start_ca(&c, s->port, "ca");
        pump_until(&c, &c.connected, 1);
        transport_disconnect(c.t);
        pump_until(&c, &c.closed, 1);
        client_free(&c);
        if (i == 1) /* after the first rounds' one-time allocations */
            before = open_descriptors();
    }
    /* A leak grows by one per round (ten here); the in-process server may still be closing
     * one or two of its own sockets when we count. */
    assert_in_range(open_descriptors(), 0, before + 2);
    echo_stop(s);
}

/* ---- refusing servers that are not ours --------------------------------------------------- */

static void test_refuses_certificate_from_another_ca(void **state)
{
    (void)state;
    echo_server *s = echo_start("foreign", 0);
    client c = {0};
    client_start_ca(&c, s->port, "ca");
    assert_refused(&c, s, TRANSPORT_CLOSE_CERT_UNTRUSTED);
    client_free(&c);
    echo_stop(s);
}

static void test_refuses_expired_certificate(void **state)
{
    (void)state;
    echo_server *s = echo_start("expired", 0);
    client c = {0};
    client_start_ca(&c, s->port, "ca");
    assert_refused(&c, s, TRANSPORT_CLOSE_CERT_EXPIRED);
    assert_non_null(strstr(c.detail, "expired"));
    client_free(&c);
    echo_stop(s);
}

static void test_refuses_certificate_for_another_host(void **state)
{
    (void)state;
    echo_server *s = echo_start("wronghost", 0);
    client c = {0};
    client_start_ca(&c, s->port, "ca");
    assert_refused(&c, s, TRANSPORT_CLOSE_CERT_HOSTNAME);
    assert_non_null(strstr(c.detail, "not for host 127.0.0.1"));
    client_free(&c);
    echo_stop(s);
}

static void test_refuses_self_signed_certificate(void **state)
{
    (void)state;
    echo_server *s = echo_start("self", 0);
    client c = {0};
    client_start_ca(&c, s->port, "ca");
    assert_refused(&c, s, TRANSPORT_CLOSE_CERT_UNTRUSTED);
    client_free(&c);
    echo_stop(s);
}

static void test_pin_accepts_the_pinned_certificate(void **state)
{
    (void)state;
    /* Enrollment against a self-signed server, and against the CA-issued one: only the pin
     * matters. */
    const char *servers[] = {"self", "good"};
    const char *pins[] = {"self.pin", "good.pin"};
    for (int i = 0; i < 2; i++) {
        echo_server *s = echo_start(servers[i], 0);
        uint8_t pin[TRANSPORT_PIN_SIZE];
        read_pin(pins[i], pin);
        client c = {0};
        client_start_pin(&c, s->port, pin);
        pump_until(&c, &c.connected, 1);
        assert_int_equal(transport_send(c.t, (const uint8_t *)"enroll", 6), 0);
        pump_until(&c, &c.messages, 1);
        assert_memory_equal(c.last, "enroll", 6);
        client_free(&c);
        echo_stop(s);
    }
}

static void test_pin_refuses_another_certificate(void **state)
{
    (void)state;
    echo_server *s = echo_start("good", 0);
    uint8_t pin[TRANSPORT_PIN_SIZE];
    read_pin("self.pin", pin); /* the pin of a different certificate */
    client c = {0};
    client_start_pin(&c, s->port, pin);
    assert_refused(&c, s, TRANSPORT_CLOSE_CERT_PIN_MISMATCH);
    assert_non_null(strstr(c.detail, "does not match the pin"));
    client_free(&c);
    echo_stop(s);
}

/* ---- network failures --------------------------------------------------------------------- */

static uint16_t closed_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd); /* bound, never listened: connections are refused */
    return ntohs(sa.sin_port);
}

/* ---- session resumption ------------------------------------------------------------------- */

/* Connects, has one message echoed, disconnects: the session (with its ticket) is kept. */
static void echo_once(client *c)
{
    int connected = c->connected, messages = c->messages, closed = c->closed;
    assert_int_equal(transport_connect(c->t), 0);
    pump_until(c, &c->connected, connected + 1);
    assert_int_equal(transport_send(c->t, (const uint8_t *)"ping", 4), 0);
    pump_until(c, &c->messages, messages + 1);
    assert_memory_equal(c->last, "ping", 4);
    transport_disconnect(c->t);
    pump_until(c, &c->closed, closed + 1);
}

static void assert_handshakes(const client *c, uint32_t full, uint32_t resumed)
{
    uint32_t f, r;
    transport_handshakes(c->t, &f, &r);
    if (f != full || r != resumed)
        fail_msg("TLS handshakes: %u full and %u resumed, expected %u and %u", f, r, full,
                 resumed);
}

static void start_idle_pin(client *c, uint16_t port, bool no_resumption)
{
    uint8_t pin[TRANSPORT_PIN_SIZE];
    read_pin("good.pin", pin);
    char url[64];
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/sync", (unsigned)port);
    transport_config cfg = base_config(c, url);
    cfg.pin_sha256 = pin;
    cfg.no_resumption = no_resumption;
    char err[256] = "";
    if (transport_create(&cfg, &c->t, err, sizeof err) != 0)
        fail_msg("transport_create: %s", err);
}

/* The second connection of a transport resumes the first one's session (pin mode: the pin is
 * checked again on the certificate the first handshake verified); with no_resumption, it is a
 * full handshake again. */
static void test_reconnection_resumes_the_session(void **state)
{
    (void)state;
    tickets_rekey();
    echo_server *s = echo_start("good", 0);
    for (int off = 0; off < 2; off++) {
        client c = {0};
        start_idle_pin(&c, s->port, off);
        echo_once(&c);
        assert_handshakes(&c, 1, 0);
        echo_once(&c);
        echo_once(&c);
        if (off)
            assert_handshakes(&c, 3, 0);
        else
            assert_handshakes(&c, 1, 2);
        client_free(&c);
    }
    echo_stop(s);
    tickets_off();
}

/* The device holds a ticket from the pinned server; another server (its own ticket keys, another
 * certificate) now answers on the same address: a full handshake, and the pin refuses it before
 * it receives a byte. */
static void test_pin_refuses_another_certificate_while_holding_a_ticket(void **state)
{
    (void)state;
    tickets_rekey();
    echo_server *s = echo_start("good", 0);
    uint16_t port = s->port;
    client c = {0};
    start_idle_pin(&c, port, false);
    echo_once(&c);
    echo_stop(s);

    tickets_rekey();
    s = echo_start_on("self", 0, port);
    c.connected = 0;
    c.closed = 0;
    assert_int_equal(transport_connect(c.t), 0);
    assert_refused(&c, s, TRANSPORT_CLOSE_CERT_PIN_MISMATCH);
    assert_handshakes(&c, 1, 0);
    client_free(&c);
    echo_stop(s);
    tickets_off();
}

static void test_closed_port_is_unreachable(void **state)
{
    (void)state;
    client c = {0};
    client_start_ca(&c, closed_port(), "ca");
    pump_until(&c, &c.closed, 1);
    assert_int_equal(c.reason, TRANSPORT_CLOSE_UNREACHABLE);
    assert_non_null(strstr(c.detail, "refused"));
    assert_false(transport_close_is_certificate(c.reason));
    assert_int_equal(c.connected, 0);
    /* The transport is reusable: another attempt reports the same. */
    assert_int_equal(transport_connect(c.t), 0);
    assert_int_equal(transport_connect(c.t), -EBUSY);
    pump_until(&c, &c.closed, 2);
    assert_int_equal(c.reason, TRANSPORT_CLOSE_UNREACHABLE);
    client_free(&c);
}

static void test_silent_server_times_out(void **state)
{
    (void)state;
    echo_server *s = echo_start("good", 0);
    faultproxy *proxy;
    uint16_t proxy_port;
    assert_int_equal(faultproxy_start(s->port, &proxy, &proxy_port), 0);
    faultproxy_stall(proxy); /* accepts TCP, never answers TLS */
    client c = {0};
    char url[64];
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/sync", (unsigned)proxy_port);
    char *ca = read_file("ca.pem");
    transport_config cfg = base_config(&c, url);
    cfg.ca_pem = ca;
    cfg.connect_timeout_ms = 400;
    client_start(&c, &cfg);
    free(ca);
    int64_t start = now_ms();
    pump_until(&c, &c.closed, 1);
    assert_int_equal(c.reason, TRANSPORT_CLOSE_TIMEOUT);
    assert_true(now_ms() - start >= 350);
    assert_true(now_ms() - start < 3000);
    client_free(&c);
    faultproxy_stop(proxy);
    echo_stop(s);
}

static void test_cut_mid_message_is_reported_and_reconnect_works(void **state)
{
    (void)state;
    echo_server *s = echo_start("good", 0);
    faultproxy *proxy;
    uint16_t proxy_port;
    assert_int_equal(faultproxy_start(s->port, &proxy, &proxy_port), 0);
    /* Well past the TLS handshake and upgrade (a few KiB), well inside a 1 MiB message. */
    faultproxy_cut_after(proxy, 200 * 1024);

    client c = {0};
    client_start_ca(&c, proxy_port, "ca");
    pump_until(&c, &c.connected, 1);
    const size_t n = 1024 * 1024;
    uint8_t *payload = pattern(n);
    assert_int_equal(transport_send(c.t, payload, n), 0);
    pump_until(&c, &c.closed, 1);
    assert_int_equal(c.reason, TRANSPORT_CLOSE_CONNECTION_LOST);
    assert_int_equal(c.messages, 0);
    assert_int_equal(transport_queued_bytes(c.t), 0); /* dropped: the engine resends */
    assert_int_equal(faultproxy_cuts(proxy), 1);

    faultproxy_pass(proxy);
    assert_int_equal(transport_connect(c.t), 0);
    pump_until(&c, &c.connected, 2);
    assert_int_equal(transport_send(c.t, payload, n), 0);
    pump_until(&c, &c.messages, 1);
    assert_int_equal(c.last_len, n);
    assert_memory_equal(c.last, payload, n);
    free(payload);
    client_free(&c);
    faultproxy_stop(proxy);
    echo_stop(s);
}

/* A TLS 1.3-only HTTPS server that is not an Outpost server: openssl s_server answers the
 * upgrade request with its 200 status page. Shows the client speaks TLS 1.3 and reports a
 * refused upgrade as such. */
static void test_tls13_server_that_refuses_the_upgrade(void **state)
{
    (void)state;
    uint16_t port = closed_port();
    char accept[32], cert[256], key[256];
    snprintf(accept, sizeof accept, "127.0.0.1:%u", (unsigned)port);
    snprintf(cert, sizeof cert, "%s/good.pem", cert_dir);
    snprintf(key, sizeof key, "%s/good.key", cert_dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execlp("openssl", "openssl", "s_server", "-quiet", "-tls1_3", "-www", "-accept", accept,
               "-cert", cert, "-key", key, (char *)NULL);
        _exit(127);
    }
    /* Wait until it listens. */
    int64_t deadline = now_ms() + 5000;
    for (;;) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int up = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (up)
            break;
        assert_true(now_ms() < deadline);
        struct timespec nap = {.tv_nsec = 20 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }

    client c = {0};
    client_start_ca(&c, port, "ca");
    pump_until(&c, &c.closed, 1);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    if (c.reason != TRANSPORT_CLOSE_UPGRADE_REFUSED)
        fail_msg("closed with '%s' (%s)", transport_close_reason_name(c.reason), c.detail);
    assert_non_null(strstr(c.detail, "not 101"));
    assert_int_equal(c.connected, 0);
    client_free(&c);
}

static void test_unresponsive_server_is_dropped_after_the_idle_timeout(void **state)
{
    (void)state;
    echo_server *s = echo_start("good", 0);
    client c = {0};
    char url[64];
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/sync", (unsigned)s->port);
    char *ca = read_file("ca.pem");
    transport_config cfg = base_config(&c, url);
    cfg.ca_pem = ca;
    cfg.idle_timeout_s = 2; /* ping after 1 s of silence, give up after 2 s */
    client_start(&c, &cfg);
    free(ca);
    pump_until(&c, &c.connected, 1);
    atomic_store(&s->paused, true); /* the office server hangs; the TCP connection stays */
    lws_cancel_service(s->ctx);
    int64_t start = now_ms();
    pump_until(&c, &c.closed, 1);
    assert_int_equal(c.reason, TRANSPORT_CLOSE_CONNECTION_LOST);
    assert_true(now_ms() - start >= 1000);
    atomic_store(&s->paused, false);
    client_free(&c);
    echo_stop(s);
}

/* An idle open connection waits quietly (on its socket, not lws's timers), yet no wait outlasts
 * the ping interval, so lws's ping goes out on time (a wait as long as asked, 20 s, left it and
 * the hangup timer unserviced), and the answers keep the connection open. */
static void test_quiet_idle_connection_still_pings_and_stays_open(void **state)
{
    (void)state;
    echo_server *s = echo_start("good", 0);
    client c = {0};
    char url[64];
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/sync", (unsigned)s->port);
    char *ca = read_file("ca.pem");
    transport_config cfg = base_config(&c, url);
    cfg.ca_pem = ca;
    cfg.idle_timeout_s = 2; /* ping after 1 s of silence, give up after 2 s */
    client_start(&c, &cfg);
    free(ca);
    pump_until(&c, &c.connected, 1);
    int64_t start = now_ms(), longest = 0;
    while (now_ms() - start < 5000 && c.closed == 0) {
        int64_t t0 = now_ms();
        assert_int_equal(transport_service(c.t, 20000), 0);
        if (now_ms() - t0 > longest)
            longest = now_ms() - t0;
    }
    print_message("longest idle wait %lld ms\n", (long long)longest);
    assert_true(longest < 1500);
    if (c.closed)
        fail_msg("closed after %lld ms idle: %s", (long long)(now_ms() - start), c.detail);
    assert_int_equal(transport_get_state(c.t), TRANSPORT_OPEN);
    client_free(&c);
    echo_stop(s);
}

/* ---- threads ------------------------------------------------------------------------------ */

typedef struct waker {
    transport *t;
    atomic_bool woken;
    _Atomic int64_t woken_at_ms;
} waker;

static void *wake_after_200ms(void *arg)
{
    waker *w = arg;
    struct timespec delay = {.tv_nsec = 200 * 1000 * 1000};
    nanosleep(&delay, NULL);
    atomic_store(&w->woken_at_ms, now_ms());
    atomic_store(&w->woken, true);
    transport_wake(w->t);
    return NULL;
}

static void test_wake_from_another_thread_ends_a_blocked_service(void **state)
{
    (void)state;
    client c = {0};
    uint8_t pin[TRANSPORT_PIN_SIZE] = {0};
    transport_config cfg = base_config(&c, "wss://127.0.0.1:9/sync");
    cfg.pin_sha256 = pin;
    assert_int_equal(transport_create(&cfg, &c.t, NULL, 0), 0);
    /* lws runs start-up timers in its first ~100 ms (and polls with a zero timeout for up to
     * a millisecond around each timer); let them pass so the waits below are clean. */
    int64_t settle = now_ms();
    while (now_ms() - settle < 400)
        assert_int_equal(transport_service(c.t, 100), 0);

    /* A call that would wait 20 s returns as soon as another thread wakes it. Count the
     * returns: a blocked loop returns once or twice in those 200 ms, a spinning one thousands
     * of times. */
    waker w = {.t = c.t};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, wake_after_200ms, &w), 0);
    int64_t start = now_ms();
    int returns = 0;
    while (!atomic_load(&w.woken)) {
        assert_int_equal(transport_service(c.t, 20000), 0);
        returns++;
    }
    int64_t returned = now_ms();
    pthread_join(thread, NULL);
    assert_true(returned - start >= 150);
    assert_true(returned - atomic_load(&w.woken_at_ms) < 1000);
    assert_true(returns <= 3);
    client_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_parse_accepts_sync_urls),
        cmocka_unit_test(test_url_parse_refuses_with_a_reason),
        cmocka_unit_test(test_pin_parse_reads_hex_with_or_without_colons),
        cmocka_unit_test(test_create_refuses_bad_configuration),
        cmocka_unit_test(test_echo_small_and_3mib_messages),
        cmocka_unit_test(test_send_queue_is_bounded),
        cmocka_unit_test(test_default_queue_at_the_largest_message_size_takes_a_second_message),
        cmocka_unit_test(test_message_over_the_limit_from_the_server_is_refused),
        cmocka_unit_test(test_server_close_is_reported_with_its_code),
        cmocka_unit_test(test_disconnect_while_connecting_and_reconnect),
        cmocka_unit_test(test_create_and_destroy_leaks_no_descriptor),
        cmocka_unit_test(test_refuses_certificate_from_another_ca),
        cmocka_unit_test(test_refuses_expired_certificate),
        cmocka_unit_test(test_refuses_certificate_for_another_host),
        cmocka_unit_test(test_refuses_self_signed_certificate),
        cmocka_unit_test(test_pin_accepts_the_pinned_certificate),
        cmocka_unit_test(test_pin_refuses_another_certificate),
        cmocka_unit_test(test_reconnection_resumes_the_session),
        cmocka_unit_test(test_pin_refuses_another_certificate_while_holding_a_ticket),
        cmocka_unit_test(test_closed_port_is_unreachable),
        cmocka_unit_test(test_silent_server_times_out),
        cmocka_unit_test(test_cut_mid_message_is_reported_and_reconnect_works),
        cmocka_unit_test(test_tls13_server_that_refuses_the_upgrade),
        cmocka_unit_test(test_unresponsive_server_is_dropped_after_the_idle_timeout),
        cmocka_unit_test(test_quiet_idle_connection_still_pings_and_stays_open),
        cmocka_unit_test(test_wake_from_another_thread_ends_a_blocked_service),
    };
    return cmocka_run_group_tests(tests, make_certificates, remove_certificates);
}
