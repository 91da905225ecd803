#include "testclient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

typedef struct tc_frame {
    struct tc_frame *next;
    uint8_t *buf; /* LWS_PRE + len */
    size_t len;
    int flags;
} tc_frame;

typedef struct tc_message {
    struct tc_message *next;
    uint8_t *data;
    size_t len;
} tc_message;

struct testclient {
    struct lws_context *context;
    struct lws *wsi;
    bool established, closed, failed;
    unsigned pongs;
    char failure[256];
    tc_frame *tx_head, *tx_tail;
    uint8_t *rx;
    size_t rx_len, rx_cap;
    tc_message *rx_head, *rx_tail;
    proto_zstream *zin, *zout; /* testclient_compress() */
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int on_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    testclient *tc = user;

    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (tc) {
            tc->failed = tc->closed = true;
            snprintf(tc->failure, sizeof tc->failure, "%s",
                     in ? (const char *)in : "connect error");
            tc->wsi = NULL;
        }
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        tc->established = true;
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (tc->rx_len + len > tc->rx_cap) {
            size_t cap = tc->rx_cap ? tc->rx_cap : 4096;
            while (cap < tc->rx_len + len)
                cap *= 2;
            uint8_t *grown = realloc(tc->rx, cap);
            if (!grown)
                return -1;
            tc->rx = grown;
            tc->rx_cap = cap;
        }
        memcpy(tc->rx + tc->rx_len, in, len);
        tc->rx_len += len;
        if (lws_is_final_fragment(wsi)) {
            tc_message *m = calloc(1, sizeof *m);
            if (!m)
                return -1;
            m->data = tc->rx;
            m->len = tc->rx_len;
            tc->rx = NULL;
            tc->rx_len = tc->rx_cap = 0;
            if (tc->rx_tail)
                tc->rx_tail->next = m;
            else
                tc->rx_head = m;
            tc->rx_tail = m;
        }
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        tc_frame *f = tc->tx_head;
        if (!f)
            break;
        if (lws_write(wsi, f->buf + LWS_PRE, f->len, (enum lws_write_protocol)f->flags) <
            (int)f->len)
            return -1;
        tc->tx_head = f->next;
        if (!tc->tx_head)
            tc->tx_tail = NULL;
        free(f->buf);
        free(f);
        if (tc->tx_head)
            lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
        tc->pongs++;
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        tc->closed = true;
        tc->wsi = NULL;
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"outpost-testclient", on_event, 0, 0, 0, NULL, 0},
    LWS_PROTOCOL_LIST_TERM,
};

static void service_for(testclient *tc, int ms)
{
    lws_service(tc->context, ms);
}

int testclient_connect(uint16_t port, const char *ca_path, int timeout_ms,
                       testclient **out_client, char *err, size_t err_size)
{
    struct lws_context_creation_info info;
    struct lws_client_connect_info ci;
    testclient *tc = calloc(1, sizeof *tc);
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;

    *out_client = NULL;
    if (!tc)
        return -1;
    lws_set_log_level(LLL_ERR, NULL);
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.client_ssl_ca_filepath = ca_path;
    info.fd_limit_per_thread = 4;
    tc->context = lws_create_context(&info);
    if (!tc->context) {
        if (err)
            snprintf(err, err_size, "lws_create_context failed");
        free(tc);
        return -1;
    }
    memset(&ci, 0, sizeof ci);
    ci.context = tc->context;
    ci.address = "127.0.0.1";
    ci.port = port;
    ci.path = "/sync";
    ci.host = "localhost";
    ci.origin = "localhost";
    ci.ssl_connection = LCCSCF_USE_SSL;
    ci.protocol = "outpost.1";
    ci.local_protocol_name = "outpost-testclient";
    ci.alpn = "http/1.1";
    ci.userdata = tc;
    ci.pwsi = &tc->wsi;
    if (!lws_client_connect_via_info(&ci)) {
        if (err)
            snprintf(err, err_size, "connect to 127.0.0.1:%u failed at once", (unsigned)port);
        testclient_close(tc);
        return -1;
    }
    while (!tc->established && !tc->closed && now_ms() < deadline)
        service_for(tc, 20);
    if (!tc->established) {
        if (err)
            snprintf(err, err_size, "not established: %s",
                     tc->failure[0] ? tc->failure : "timeout");
        testclient_close(tc);
        return -1;
    }
    *out_client = tc;
    return 0;
}

static int queue_frame(testclient *tc, const uint8_t *data, size_t n, int flags)
{
    tc_frame *f = calloc(1, sizeof *f);

    if (!f)
        return -1;
    f->buf = malloc(LWS_PRE + n + 1);
    if (!f->buf) {
        free(f);
        return -1;
    }
    if (n > 0)
        memcpy(f->buf + LWS_PRE, data, n);
    f->len = n;
    f->flags = flags;
    if (tc->tx_tail)
        tc->tx_tail->next = f;
    else
        tc->tx_head = f;
    tc->tx_tail = f;
    return 0;
}

int testclient_send_raw(testclient *tc, const uint8_t *data, size_t n_bytes,
                        size_t fragment_bytes, bool finish, bool text, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    size_t off = 0;

    if (tc->closed || !tc->wsi)
        return -1;
    if (fragment_bytes == 0 || fragment_bytes > n_bytes)
        fragment_bytes = n_bytes ? n_bytes : 1;
    do {
        size_t n = n_bytes - off < fragment_bytes ? n_bytes - off : fragment_bytes;
        bool last = off + n == n_bytes;
        int flags = off == 0 ? (text ? LWS_WRITE_TEXT : LWS_WRITE_BINARY) : LWS_WRITE_CONTINUATION;
        if (!last || !finish)
            flags |= LWS_WRITE_NO_FIN;
        if (queue_frame(tc, data + off, n, flags) != 0)
            return -1;
        off += n;
    } while (off < n_bytes);
    lws_callback_on_writable(tc->wsi);
    /* Done when lws holds nothing back either: the bytes are with the kernel. */
    while ((tc->tx_head || (tc->wsi && lws_partial_buffered(tc->wsi))) && !tc->closed &&
           now_ms() < deadline)
        service_for(tc, 10);
    return tc->tx_head || tc->closed ? -1 : 0;
}

int testclient_compress(testclient *tc)
{
    if (tc->zin)
        return 0;
    if (proto_zstream_new(false, &tc->zin) != PROTO_OK ||
        proto_zstream_new(true, &tc->zout) != PROTO_OK)
        return -1;
    return 0;
}

int testclient_send_framed(testclient *tc, const uint8_t *data, size_t n_bytes, int timeout_ms)
{
    proto_buf framed = {0};
    int rc = -1;

    if (tc->zout && proto_zframe_deflate(tc->zout, data, n_bytes, &framed) == PROTO_OK)
        rc = testclient_send_raw(tc, framed.data, framed.len, 0, true, false, timeout_ms);
    proto_buf_free(&framed);
    return rc;
}

int testclient_send(testclient *tc, const proto_msg *msg, int timeout_ms)
{
    proto_buf buf = {0};
    int rc;

    if (proto_encode(msg, &buf) != PROTO_OK)
        return -1;
    if (tc->zout)
        rc = testclient_send_framed(tc, buf.data, buf.len, timeout_ms);
    else
        rc = testclient_send_raw(tc, buf.data, buf.len, 0, true, false, timeout_ms);
    proto_buf_free(&buf);
    return rc;
}

int testclient_ping(testclient *tc, int timeout_ms)
{
    static const uint8_t payload[] = {'o', 'p'};
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    unsigned before = tc->pongs;

    if (tc->closed || !tc->wsi || queue_frame(tc, payload, sizeof payload, LWS_WRITE_PING) != 0)
        return -1;
    lws_callback_on_writable(tc->wsi);
    while (tc->pongs == before && !tc->closed && now_ms() < deadline)
        service_for(tc, 10);
    return tc->pongs > before ? 0 : -1;
}

int testclient_recv(testclient *tc, int timeout_ms, proto_msg **out_msg)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    proto_limits limits;
    tc_message *m;
    int rc;

    *out_msg = NULL;
    while (!tc->rx_head && !tc->closed && now_ms() < deadline)
        service_for(tc, 10);
    m = tc->rx_head;
    if (!m)
        return -1;
    tc->rx_head = m->next;
    if (!tc->rx_head)
        tc->rx_tail = NULL;
    proto_limits_default(&limits);
    if (tc->zin && proto_is_zframe(m->data, m->len)) {
        proto_buf plain = {0};
        rc = proto_zframe_inflate(tc->zin, m->data, m->len, 64u << 20, &plain);
        free(m->data);
        m->data = plain.data;
        m->len = plain.len;
        if (rc != PROTO_OK) {
            free(m->data);
            free(m);
            return -1;
        }
    }
    limits.max_message_bytes = m->len + 1;
    rc = proto_decode(m->data, m->len, &limits, out_msg, NULL, 0);
    free(m->data);
    free(m);
    return rc == PROTO_OK ? 0 : -1;
}

int testclient_recv_type(testclient *tc, proto_msg_type type, int timeout_ms,
                         proto_msg **out_msg)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;

    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return -1;
        if (testclient_recv(tc, (int)(deadline - now), out_msg) != 0)
            return -1;
        if ((*out_msg)->type == type || type == PROTO_MSG_NOTIFY ||
            (*out_msg)->type != PROTO_MSG_NOTIFY)
            return 0;
        proto_msg_free(*out_msg);
        *out_msg = NULL;
    }
}

bool testclient_wait_closed(testclient *tc, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;

    while (!tc->closed && now_ms() < deadline)
        service_for(tc, 10);
    return tc->closed;
}

void testclient_close(testclient *tc)
{
    if (!tc)
        return;
    if (tc->context)
        lws_context_destroy(tc->context);
    while (tc->tx_head) {
        tc_frame *f = tc->tx_head;
        tc->tx_head = f->next;
        free(f->buf);
        free(f);
    }
    while (tc->rx_head) {
        tc_message *m = tc->rx_head;
        tc->rx_head = m->next;
        free(m->data);
        free(m);
    }
    free(tc->rx);
    proto_zstream_free(tc->zin);
    proto_zstream_free(tc->zout);
    free(tc);
}
