/* Enrollment: one short connection that trades a one-time code for the device's credentials. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device.h"
#include "internal.h"
#include "transport.h"

enum { DEFAULT_ENROLL_TIMEOUT_MS = 30000 };

typedef struct enrollment {
    outpost_replica *r;
    const outpost_enroll_options *opt;
    transport *t;
    proto_limits limits;
    bool done;
    int rc; /* result once done */
} enrollment;

static void finish(enrollment *e, int rc)
{
    if (e->done)
        return;
    e->done = true;
    e->rc = rc;
    transport_disconnect(e->t);
}

static void cb_connected(void *user_data)
{
    enrollment *e = user_data;
    proto_msg msg = {.type = PROTO_MSG_ENROLL};
    msg.u.enroll.version = PROTO_VERSION;
    msg.u.enroll.code = e->opt->code;
    msg.u.enroll.device_name = e->opt->device_name;
    proto_buf buf = {0};
    if (proto_encode(&msg, &buf) != PROTO_OK || transport_send(e->t, buf.data, buf.len) != 0)
        finish(e, replica_fail(e->r, OUTPOST_EINVAL, "the enrollment request could not be sent"));
    proto_buf_free(&buf);
}

/* Stores what ENROLLED carries: credentials first, the worker's teams, then the schema. */
static int accept_enrolled(enrollment *e, const proto_enrolled *en)
{
    device_credentials c = {0};
    if (strlen(en->device_id) >= sizeof c.device_id || !en->ca_pem[0])
        return replica_fail(e->r, OUTPOST_EPROTO, "the server's enrollment answer is malformed");
    memcpy(c.device_id, en->device_id, strlen(en->device_id) + 1);
    memcpy(c.secret, en->secret, sizeof c.secret);
    c.url = (char *)e->opt->url;
    c.ca_pem = (char *)en->ca_pem;
    int rc = device_credentials_save(e->r, &c);
    memset(c.secret, 0, sizeof c.secret);
    if (rc == OUTPOST_OK && en->has_teams)
        rc = scope_teams_store(e->r, &en->teams);
    if (rc == OUTPOST_OK)
        rc = scope_worker_store(e->r, en->worker_id);
    if (rc != OUTPOST_OK)
        return rc;
    return outpost_schema_install(e->r, &en->schema);
}

static void cb_message(void *user_data, const uint8_t *data, size_t n_bytes)
{
    enrollment *e = user_data;
    proto_msg *m = NULL;
    char err[160];
    if (e->done)
        return;
    if (proto_decode(data, n_bytes, &e->limits, &m, err, sizeof err) != PROTO_OK) {
        finish(e, replica_fail(e->r, OUTPOST_EPROTO, "malformed answer from the server: %s", err));
        return;
    }
    if (m->type == PROTO_MSG_ENROLLED) {
        finish(e, accept_enrolled(e, &m->u.enrolled));
    } else if (m->type == PROTO_MSG_ERROR) {
        int code = m->u.error.code == PROTO_ERR_ENROLL_CODE ? OUTPOST_EENROLL
                   : m->u.error.retryable                   ? OUTPOST_ESERVER
                                                            : OUTPOST_EPROTO;
        finish(e, replica_fail(e->r, code, "the server refused the enrollment: %s",
                               m->u.error.message));
    } else {
        finish(e, replica_fail(e->r, OUTPOST_EPROTO, "unexpected %s during enrollment",
                               proto_msg_type_name(m->type)));
    }
    proto_msg_free(m);
}

static void cb_closed(void *user_data, transport_close_reason reason, uint16_t peer_close_code,
                      const char *detail)
{
    enrollment *e = user_data;
    (void)peer_close_code;
    if (e->done)
        return;
    int code = transport_close_is_certificate(reason) ? OUTPOST_ECERT
               : reason == TRANSPORT_CLOSE_TIMEOUT     ? OUTPOST_ETIMEOUT
                                                       : OUTPOST_EOFFLINE;
    e->done = true;
    e->rc = replica_fail(e->r, code, "enrollment failed: %s (%s)",
                         transport_close_reason_name(reason), detail);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int outpost_enroll(outpost_replica *replica, const outpost_enroll_options *options)
{
    char err[256];
    uint8_t pin[TRANSPORT_PIN_SIZE];
    if (!replica || !options)
        return OUTPOST_EINVAL;
    if (!options->url || !options->code || !options->code[0])
        return replica_fail(replica, OUTPOST_EINVAL, "enrollment needs a server URL and a code");
    if (!options->pin == !options->ca_pem)
        return replica_fail(replica, OUTPOST_EINVAL,
                            "enrollment needs exactly one of the server's pin and a CA certificate");
    if (options->pin && transport_pin_parse(options->pin, pin) != 0)
        return replica_fail(replica, OUTPOST_EINVAL,
                            "the pin must be 64 hexadecimal digits (a SHA-256 fingerprint)");
    char existing[40];
    if (outpost_device_id(replica, existing) == OUTPOST_OK)
        return replica_fail(replica, OUTPOST_EEXISTS, "this replica is already enrolled as %s",
                            existing);

    enrollment e = {.r = replica, .opt = options};
    proto_limits_default(&e.limits);
    transport_config tc = {
        .url = options->url,
        .ca_pem = options->ca_pem,
        .pin_sha256 = options->pin ? pin : NULL,
        .on_connected = cb_connected,
        .on_message = cb_message,
        .on_closed = cb_closed,
        .user_data = &e,
    };
    if (transport_create(&tc, &e.t, err, sizeof err) != 0)
        return replica_fail(replica, OUTPOST_EINVAL, "cannot connect: %s", err);
    int64_t deadline = mono_ms() + (options->timeout_ms ? options->timeout_ms
                                                        : DEFAULT_ENROLL_TIMEOUT_MS);
    transport_connect(e.t);
    while (!e.done && mono_ms() < deadline)
        transport_service(e.t, 100);
    /* Let a disconnect started by finish() send its close frame. */
    for (int i = 0; i < 10 && transport_get_state(e.t) != TRANSPORT_IDLE; i++)
        transport_service(e.t, 20);
    transport_destroy(e.t);
    if (!e.done)
        return replica_fail(replica, OUTPOST_ETIMEOUT, "the server did not answer the enrollment");
    return e.rc;
}

/* outpost://HOST:PORT/enroll?code=CODE&pin=HEX */
int outpost_enroll_parse_uri(const char *uri, char *buf, size_t buf_size,
                             outpost_enroll_options *out_options)
{
    static const char scheme[] = "outpost://";
    if (!uri || !buf || !out_options || strncmp(uri, scheme, sizeof scheme - 1) != 0)
        return OUTPOST_EINVAL;
    const char *authority = uri + sizeof scheme - 1;
    const char *path = strchr(authority, '/');
    if (!path || path == authority || strncmp(path, "/enroll?", 8) != 0)
        return OUTPOST_EINVAL;
    const char *query = path + 8;
    /* Layout in buf: "wss://AUTHORITY/sync\0CODE\0PIN\0" */
    int n = snprintf(buf, buf_size, "wss://%.*s/sync", (int)(path - authority), authority);
    if (n < 0 || (size_t)n >= buf_size)
        return OUTPOST_EINVAL;
    memset(out_options, 0, sizeof *out_options);
    out_options->url = buf;
    size_t used = (size_t)n + 1;
    while (*query) {
        size_t len = strcspn(query, "&");
        const char *eq = memchr(query, '=', len);
        if (eq) {
            size_t klen = (size_t)(eq - query), vlen = len - klen - 1;
            if (used + vlen + 1 > buf_size)
                return OUTPOST_EINVAL;
            char *value = buf + used;
            memcpy(value, eq + 1, vlen);
            value[vlen] = '\0';
            used += vlen + 1;
            if (klen == 4 && strncmp(query, "code", 4) == 0)
                out_options->code = value;
            else if (klen == 3 && strncmp(query, "pin", 3) == 0)
                out_options->pin = value;
        }
        query += len + (query[len] == '&');
    }
    return out_options->code && out_options->code[0] ? OUTPOST_OK : OUTPOST_EINVAL;
}
