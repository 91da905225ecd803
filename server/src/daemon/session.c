#include "session.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "ops.h"

/* Bytes per WebSocket frame written: a partial send leaves at most this much inside lws. */
#define TX_FRAGMENT_BYTES (32u * 1024u)
/* After a final error is queued, how long the peer has to read it before lws drops it. */
#define CLOSING_GRACE_S 5

static uint64_t monotonic_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void secure_free(void *p, size_t n)
{
    volatile uint8_t *v = p;

    if (!p)
        return;
    for (size_t i = 0; i < n; i++)
        v[i] = 0;
    free(p);
}

/* A device id as sent by the peer, made safe for a log line: unauthenticated input must not
 * forge log lines, so only UUID characters pass and the length is bounded. */
static const char *loggable_id(const char *in, char out[41])
{
    size_t n = 0;

    for (; in && in[n] != '\0' && n < 40; n++) {
        char c = in[n];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '-';
        out[n] = ok ? c : '?';
    }
    out[n] = '\0';
    return n ? out : "-";
}

/* Moves the session's share of the server's held_bytes to what it holds now. */
static void account(session *s)
{
    size_t now = s->rx_cap + s->txn_cap + s->pending_push_bytes;

    s->srv->held_bytes = s->srv->held_bytes - s->held + now;
    s->held = now;
}

/* Whether holding more bytes keeps every session together within max_held_bytes. */
static bool within_budget(const session *s, size_t more)
{
    return more <= s->srv->config.limits.max_held_bytes - s->srv->held_bytes;
}

static void drop_rx(session *s)
{
    free(s->rx);
    s->rx = NULL;
    s->rx_len = s->rx_cap = 0;
    s->rx_in_message = false;
    account(s);
}

static void drop_chunks(session *s)
{
    free(s->txn);
    s->txn = NULL;
    s->txn_len = s->txn_cap = 0;
    s->n_chunks = 0;
    account(s);
}

static void free_reply(session_reply *r)
{
    if (r->sensitive && r->buf.data)
        memset(r->buf.data, 0, r->buf.len);
    proto_buf_free(&r->buf);
    free(r);
}

/* Takes the oldest queued reply off the queue (the caller frees it). */
static session_reply *pop_reply(session *s)
{
    session_reply *r = s->replies;

    if (!r)
        return NULL;
    s->replies = r->next;
    if (!s->replies)
        s->replies_tail = NULL;
    s->n_replies--;
    if (r->push)
        s->n_push_replies--;
    return r;
}

static void drop_replies(session *s)
{
    session_reply *r;

    while ((r = pop_reply(s)) != NULL)
        free_reply(r);
}

/* ---- Flow control and timers ---------------------------------------------------------------- */

static void on_timer(lws_sorted_usec_list_t *sul);

/* Reading pauses while a job runs or a reply waits: one message in flight per connection,
 * except PUSH entries, taken ahead while nothing but PUSHes and their answers is outstanding,
 * up to SESSION_PUSHES_AHEAD and SESSION_PUSH_AHEAD_BYTES, and while the server's memory budget
 * has room for one more message. In CLOSING the peer's remaining bytes are read and discarded,
 * so that closing does not reset a connection whose last error the peer has not read yet. */
static bool session_busy(const session *s)
{
    uint32_t out = s->n_pending + s->n_replies + (s->tx != NULL);

    if (out == 0)
        return false;
    if (s->state != SESSION_READY || s->n_pending_other > 0 ||
        s->n_replies != s->n_push_replies || (s->tx != NULL && !s->tx_push))
        return true;
    return out >= SESSION_PUSHES_AHEAD || s->pending_push_bytes >= SESSION_PUSH_AHEAD_BYTES ||
           !within_budget(s, s->srv->config.limits.max_message_bytes);
}

static void update_flow(session *s)
{
    lws_rx_flow_control(s->wsi, s->state == SESSION_CLOSING || !session_busy(s));
}

/* Arms the deadline that applies now: a message must complete within message_timeout_s, an
 * unauthenticated session must finish its handshake by its deadline whatever it sends, and an
 * authenticated one must not stay silent longer than idle_timeout_s. */
static void update_timer(session *s)
{
    const daemon_limits *lim = &s->srv->config.limits;
    uint64_t now = monotonic_us();
    uint64_t deadline = 0; /* 0: none */

    /* Waiting for the store is not the device's silence. */
    if (s->state == SESSION_CLOSING ||
        (s->n_pending > 0 && !s->rx_in_message && s->n_chunks == 0)) {
        lws_sul_cancel(&s->timer);
        return;
    }
    if (s->rx_in_message)
        deadline = now + (uint64_t)lim->message_timeout_s * 1000000u;
    else if (s->n_chunks > 0) /* between the chunks of one PUSH */
        deadline = now + (uint64_t)daemon_chunk_gap_s(lim) * 1000000u;
    else if (s->authenticated && lim->idle_timeout_s > 0)
        deadline = now + (uint64_t)lim->idle_timeout_s * 1000000u;
    if (!s->authenticated && (deadline == 0 || s->handshake_deadline_us < deadline))
        deadline = s->handshake_deadline_us;
    if (deadline == 0) {
        lws_sul_cancel(&s->timer);
        return;
    }
    lws_sul_schedule(lws_get_context(s->wsi), 0, &s->timer, on_timer,
                     (lws_usec_t)(deadline > now ? deadline - now : 1));
}

/* ---- Sending -------------------------------------------------------------------------------- */

/* Queues a reply behind those already waiting (answers go out in the order asked). */
static void queue_reply_as(session *s, proto_buf *buf, bool closes, bool sensitive, bool push)
{
    session_reply *r = calloc(1, sizeof *r);

    if (!r) {
        if (sensitive && buf->data)
            memset(buf->data, 0, buf->len);
        proto_buf_free(buf);
        /* Out of memory: the peers no longer agree on what was answered; just close. */
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return;
    }
    r->buf = *buf;
    memset(buf, 0, sizeof *buf);
    r->closes = closes;
    r->sensitive = sensitive;
    r->push = push;
    if (s->replies_tail)
        s->replies_tail->next = r;
    else
        s->replies = r;
    s->replies_tail = r;
    s->n_replies++;
    if (push)
        s->n_push_replies++;
    lws_callback_on_writable(s->wsi);
}

static void queue_reply(session *s, proto_buf *buf, bool closes, bool sensitive)
{
    queue_reply_as(s, buf, closes, sensitive, false);
}

/* Queues ERROR and, when closes, ends the session once it is written. */
static void send_error(session *s, proto_error_code code, bool retryable, bool closes,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void send_error(session *s, proto_error_code code, bool retryable, bool closes,
                       const char *fmt, ...)
{
    char text[256];
    proto_msg msg;
    proto_buf buf = {0};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    log_msg(closes ? LOG_WARN : LOG_INFO, "conn=%" PRIu64 " peer=%s error %s: %s", s->id,
            s->peer, proto_error_code_name(code), text);

    memset(&msg, 0, sizeof msg);
    msg.type = PROTO_MSG_ERROR;
    msg.u.error.code = (uint32_t)code;
    msg.u.error.message = text;
    msg.u.error.retryable = retryable;
    /* Answers go out in the order asked: an ERROR about a later message (or the session as a
     * whole) waits for the entries read ahead of it to be answered. One about an earlier one
     * (a job's failure) goes now, and replaces the waiting one. */
    bool drain = closes && s->n_pending > 0 && s->state == SESSION_READY && !s->answering;
    if (closes && s->draining) {
        proto_buf_free(&s->deferred_error);
        s->draining = false;
    }
    if (closes) {
        s->state = SESSION_CLOSING;
        drop_chunks(s);
        if (!drain)
            lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, CLOSING_GRACE_S);
    }
    if (proto_encode(&msg, &buf) != PROTO_OK) {
        /* Out of memory while saying goodbye: just close. */
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return;
    }
    if (drain) {
        s->draining = true;
        s->deferred_error = buf;
    } else {
        queue_reply(s, &buf, closes, false);
    }
    update_flow(s);
    update_timer(s);
}

int session_writeable(session *s)
{
    size_t n;
    bool first, last;
    int flags;

    if (!s->tx) {
        proto_buf notify = {0};
        const proto_buf *src = NULL;
        session_reply *reply = NULL;
        const uint8_t *src_bytes;
        size_t src_len;

        if (s->replies) {
            reply = pop_reply(s);
            src = &reply->buf;
        } else if (s->notify_pending && s->state == SESSION_READY) {
            proto_msg msg;
            memset(&msg, 0, sizeof msg);
            msg.type = PROTO_MSG_NOTIFY;
            msg.u.notify.server_seq = s->notify_seq;
            s->notify_pending = false;
            s->notify_outstanding = true;
            if (proto_encode(&msg, &notify) != PROTO_OK)
                return 0; /* out of memory: the device pulls at its next sync anyway */
            src = &notify;
        } else {
            return 0;
        }
        proto_buf framed = {0};
        if (s->zout && !s->z_welcome_plain) {
            if (proto_zframe_deflate(s->zout, src->data, src->len, &framed) != PROTO_OK) {
                proto_buf_free(&notify);
                if (reply)
                    free_reply(reply);
                return -1; /* out of memory mid-stream: the peers no longer agree */
            }
            src_bytes = framed.data;
            src_len = framed.len;
        } else {
            src_bytes = src->data;
            src_len = src->len;
        }
        s->z_welcome_plain = false;
        s->tx = malloc(LWS_PRE + src_len);
        if (!s->tx) {
            proto_buf_free(&framed);
            proto_buf_free(&notify);
            if (reply)
                free_reply(reply);
            return -1;
        }
        memcpy(s->tx + LWS_PRE, src_bytes, src_len);
        s->tx_len = src_len;
        proto_buf_free(&framed);
        s->tx_off = 0;
        if (reply) {
            s->tx_closes = reply->closes;
            s->tx_sensitive = reply->sensitive;
            s->tx_push = reply->push;
            free_reply(reply);
        } else {
            s->tx_closes = s->tx_sensitive = s->tx_push = false;
            proto_buf_free(&notify);
        }
    }

    n = s->tx_len - s->tx_off;
    if (n > TX_FRAGMENT_BYTES)
        n = TX_FRAGMENT_BYTES;
    first = s->tx_off == 0;
    last = s->tx_off + n == s->tx_len;
    flags = first ? LWS_WRITE_BINARY : LWS_WRITE_CONTINUATION;
    if (!last)
        flags |= LWS_WRITE_NO_FIN;
    /* For a later fragment, lws writes the frame header into the LWS_PRE bytes before it: those
     * belong to the fragment already sent, so overwriting them is harmless. */
    if (lws_write(s->wsi, s->tx + LWS_PRE + s->tx_off, n, (enum lws_write_protocol)flags) < (int)n)
        return -1;
    s->tx_off += n;
    if (!last) {
        lws_callback_on_writable(s->wsi);
        return 0;
    }

    if (s->tx_sensitive)
        secure_free(s->tx, LWS_PRE + s->tx_len);
    else
        free(s->tx);
    s->tx = NULL;
    if (s->tx_closes) {
        lws_close_reason(s->wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
        return -1;
    }
    if (s->replies || (s->notify_pending && s->state == SESSION_READY))
        lws_callback_on_writable(s->wsi);
    update_flow(s);
    update_timer(s);
    return 0;
}

void session_notify(session *s, uint64_t server_seq)
{
    if (s->state != SESSION_READY)
        return;
    if (server_seq > s->notified_seq)
        s->notified_seq = server_seq;
    if (!s->notify_pending || server_seq > s->notify_seq)
        s->notify_seq = server_seq;
    if (s->notify_outstanding)
        return; /* its coming PULL sees this change too */
    s->notify_pending = true;
    lws_callback_on_writable(s->wsi);
}

bool session_in_teams(const session *s, const char (*teams)[64], uint32_t n)
{
    for (uint32_t i = 0; i < s->device.n_teams; i++)
        for (uint32_t k = 0; k < n; k++)
            if (strncmp(s->device.teams[i], teams[k], 64) == 0)
                return true;
    return false;
}

/* ---- Timers ---------------------------------------------------------------------------------- */

static void on_timer(lws_sorted_usec_list_t *sul)
{
    session *s = lws_container_of(sul, session, timer);
    const daemon_limits *lim = &s->srv->config.limits;

    if (s->state == SESSION_CLOSING)
        return;
    if (!s->authenticated && monotonic_us() >= s->handshake_deadline_us)
        send_error(s, PROTO_ERR_TIMEOUT, true, true, "no successful HELLO within %" PRIu32 " s",
                   lim->handshake_timeout_s);
    else if (s->rx_in_message)
        send_error(s, PROTO_ERR_TIMEOUT, true, true, "message not completed within %" PRIu32 " s",
                   lim->message_timeout_s);
    else if (s->n_chunks > 0)
        send_error(s, PROTO_ERR_TIMEOUT, true, true,
                   "PUSH seq %" PRIu64 " chunk %" PRIu32 " not followed within %" PRIu32 " s",
                   s->txn_seq, s->n_chunks - 1, daemon_chunk_gap_s(lim));
    else
        send_error(s, PROTO_ERR_TIMEOUT, true, true, "idle for %" PRIu32 " s",
                   lim->idle_timeout_s);
}

/* ---- Jobs ------------------------------------------------------------------------------------ */

/* Overload is answered with backpressure: a job that finds the queue full waits in the server
 * while this session reads nothing more. Only past max_waiting_jobs is it BUSY, and never for
 * the HELLO of a device that says it has entries to push. */
static void submit(session *s, job *j, size_t held_bytes)
{
    bool must_wait = j->kind == JOB_AUTH && j->request->u.hello.outbox_count > 0;

    if (s->n_pending == SESSION_PUSHES_AHEAD) { /* session_busy keeps it from happening */
        job_free(j);
        send_error(s, PROTO_ERR_INTERNAL, true, true, "too many requests outstanding");
        return;
    }
    if (server_submit(s->srv, j, must_wait) != 0) {
        job_free(j);
        log_limited(LOG_WARN, "store queue full and %" PRIu32 " jobs waiting: BUSY",
                    s->srv->config.limits.max_waiting_jobs);
        send_error(s, PROTO_ERR_BUSY, true, true, "server busy, try again later");
        return;
    }
    uint32_t at = s->n_pending;
    s->pending[at] = j;
    s->pending_bytes[at] = held_bytes;
    s->n_pending++;
    if (j->kind != JOB_PUSH)
        s->n_pending_other++;
    s->pending_push_bytes += held_bytes;
    account(s);
    update_flow(s);
    update_timer(s);
}

/* ENROLL and HELLO open a session: both check the protocol version, then queue one job that
 * takes the message. */
static void submit_opening(session *s, proto_msg *msg, uint32_t version, job_kind kind)
{
    job *j;

    if (version != PROTO_VERSION) {
        send_error(s, PROTO_ERR_VERSION, false, true, "protocol version %" PRIu32
                   " not supported (server speaks %u)", version, PROTO_VERSION);
        proto_msg_free(msg);
        return;
    }
    j = job_new(kind, s->slot, s->id);
    if (!j) {
        proto_msg_free(msg);
        send_error(s, PROTO_ERR_INTERNAL, true, true, "out of memory");
        return;
    }
    j->request = msg;
    snprintf(j->peer, sizeof j->peer, "%s", s->peer);
    submit(s, j, 0);
}

static job *device_job(session *s, job_kind kind)
{
    job *j = job_new(kind, s->slot, s->id);

    if (j && device_copy(&s->device, &j->device) != 0) {
        job_free(j);
        j = NULL;
    }
    if (!j)
        send_error(s, PROTO_ERR_INTERNAL, true, true, "out of memory");
    return j;
}

/* Refuses, before anything is held, a chunk whose table entries no correct device sends: more
 * entries than the schema has tables (and a few it may not know yet), or one table twice in one
 * chunk. 0 when the chunk is acceptable. A table the server does not know is not refused here:
 * the merge REJECTs its rows (UNKNOWN_TABLE), so the entry leaves the device's outbox for its
 * quarantine instead of blocking every entry behind it. */
enum { UNKNOWN_TABLES_PER_CHUNK = 4 };

static int check_tables(session *s, const proto_push *p)
{
    const server *srv = s->srv;
    uint32_t unknown = 0;

    if (p->n_tables > srv->n_sync_tables + UNKNOWN_TABLES_PER_CHUNK) {
        send_error(s, PROTO_ERR_BAD_MESSAGE, false, true,
                   "PUSH seq %" PRIu64 " chunk %" PRIu32 " has %" PRIu32 " table entries; the "
                   "schema has %" PRIu32 " tables", p->seq, p->chunk, p->n_tables,
                   srv->n_sync_tables);
        return -1;
    }
    for (uint32_t t = 0; t < p->n_tables; t++) {
        const char *name = p->tables[t].table ? p->tables[t].table : "";
        if (!server_table_known(srv, name) && ++unknown > UNKNOWN_TABLES_PER_CHUNK) {
            send_error(s, PROTO_ERR_BAD_MESSAGE, false, true,
                       "PUSH seq %" PRIu64 " chunk %" PRIu32 " names more than %d tables the "
                       "server's schema does not have", p->seq, p->chunk,
                       UNKNOWN_TABLES_PER_CHUNK);
            return -1;
        }
        if (t + 1 > srv->n_sync_tables + unknown) {
            send_error(s, PROTO_ERR_BAD_MESSAGE, false, true,
                       "PUSH seq %" PRIu64 " chunk %" PRIu32 " has %" PRIu32 " table entries; the "
                       "schema has %" PRIu32 " tables", p->seq, p->chunk, p->n_tables,
                       srv->n_sync_tables);
            return -1;
        }
        for (uint32_t u = 0; u < t; u++) {
            if (strcmp(p->tables[u].table, name) == 0) {
                send_error(s, PROTO_ERR_BAD_MESSAGE, false, true,
                           "PUSH seq %" PRIu64 " chunk %" PRIu32 " names table %.64s twice",
                           p->seq, p->chunk, name);
                return -1;
            }
        }
    }
    return 0;
}

/* Keeps one PUSH chunk's bytes as received; the worker decodes the whole transaction once. */
static void on_push(session *s, proto_msg *msg, const uint8_t *raw, size_t n_bytes)
{
    const proto_push *p = &msg->u.push;
    const daemon_limits *lim = &s->srv->config.limits;
    size_t need = s->txn_len + job_raw_size(n_bytes);
    bool more = p->more;
    job *j;

    if (p->seq == 0) {
        send_error(s, PROTO_ERR_BAD_MESSAGE, false, true,
                   "PUSH seq 0: device sequences start at 1");
        proto_msg_free(msg);
        return;
    }
    if (s->n_chunks == 0 && p->chunk != 0) {
        send_error(s, PROTO_ERR_BAD_MESSAGE, false, true,
                   "PUSH seq %" PRIu64 " starts at chunk %" PRIu32 ", expected chunk 0", p->seq,
                   p->chunk);
        goto done;
    }
    if (s->n_chunks > 0 &&
        (p->seq != s->txn_seq || p->hlc != s->txn_hlc || p->chunk != s->n_chunks)) {
        send_error(s, PROTO_ERR_BAD_MESSAGE, false, true,
                   "PUSH seq %" PRIu64 " chunk %" PRIu32 " does not continue seq %" PRIu64
                   " (expected chunk %" PRIu32 ")", p->seq, p->chunk, s->txn_seq, s->n_chunks);
        goto done;
    }
    if (check_tables(s, p) != 0)
        goto done;
    if (s->txn_len - (size_t)s->n_chunks * job_raw_size(0) + n_bytes >
        lim->max_transaction_bytes) {
        send_error(s, PROTO_ERR_TOO_LARGE, false, true,
                   "transaction seq %" PRIu64 " exceeds %zu bytes", p->seq,
                   lim->max_transaction_bytes);
        goto done;
    }
    if (need > s->txn_cap) {
        size_t cap = s->txn_cap ? s->txn_cap : 64u * 1024u;
        uint8_t *grown;
        while (cap < need)
            cap *= 2;
        if (cap > lim->max_transaction_bytes)
            cap = need;
        if (!within_budget(s, cap - s->txn_cap)) {
            log_msg(LOG_WARN, "conn=%" PRIu64 " held bytes at max_held_bytes (%zu)", s->id,
                    lim->max_held_bytes);
            send_error(s, PROTO_ERR_BUSY, true, true,
                       "server memory for unfinished transactions is full, try again later");
            goto done;
        }
        grown = realloc(s->txn, cap);
        if (!grown) {
            send_error(s, PROTO_ERR_INTERNAL, true, true, "out of memory");
            goto done;
        }
        s->txn = grown;
        s->txn_cap = cap;
        account(s);
    }
    if (s->n_chunks == 0) {
        s->txn_seq = p->seq;
        s->txn_hlc = p->hlc;
    }
    job_raw_append(s->txn, &s->txn_len, raw, n_bytes);
    s->n_chunks++;
    proto_msg_free(msg);
    msg = NULL;
    if (more)
        return; /* chunks are not answered: keep reading */

    j = device_job(s, JOB_PUSH);
    if (!j)
        return;
    if (!s->chain)
        s->chain = push_chain_new();
    if (!s->chain) {
        job_free(j);
        send_error(s, PROTO_ERR_INTERNAL, true, true, "out of memory");
        return;
    }
    j->chain = push_chain_hold(s->chain);
    /* The job takes the bytes; the session starts the next transaction empty, and counts them
     * as held until the job is back. */
    size_t held = s->txn_cap;
    j->raw = s->txn;
    j->raw_len = s->txn_len;
    j->n_chunks = s->n_chunks;
    j->push.seq = s->txn_seq;
    s->txn = NULL;
    s->txn_len = s->txn_cap = 0;
    s->n_chunks = 0;
    submit(s, j, held);
    return;

done:
    proto_msg_free(msg);
}

/* A PULL without `seen` is judged as if it said where this connection's pull chain began: the
 * device holds what the chain's pages brought, and a later page's cursor is past entries the
 * scan skipped (docs/protocol.md PULL). A PULL from a cursor the chain handed out continues it:
 * the last page's end while that page said more (or is still being read), or an earlier page's
 * cursor again (the device could not apply a page). From the end of a page that said no more,
 * or from any other cursor, a new chain begins. */
static void pull_chain(session *s, proto_pull *req)
{
    uint64_t cur = req->cursor;
    bool in_chain = s->pull_chained && cur >= s->pull_origin && cur <= s->pull_reached &&
                    (s->pull_more || cur < s->pull_reached);

    if (!in_chain) {
        s->pull_chained = true;
        s->pull_origin = s->pull_reached = cur;
    }
    s->pull_more = true; /* until its page says otherwise */
    if (!req->has_seen) {
        req->has_seen = true;
        req->seen = s->pull_origin;
    }
}

static void on_pull(session *s, proto_msg *msg)
{
    job *j;

    if (s->n_chunks > 0) {
        send_error(s, PROTO_ERR_BAD_MESSAGE, false, true,
                   "PULL inside the unfinished PUSH seq %" PRIu64, s->txn_seq);
        proto_msg_free(msg);
        return;
    }
    j = device_job(s, JOB_PULL);
    if (!j) {
        proto_msg_free(msg);
        return;
    }
    /* This pull covers what a NOTIFY not yet written would say; changes committed from now on
     * may miss it and are worth a new NOTIFY. */
    s->notify_pending = false;
    s->notify_outstanding = false;
    pull_chain(s, &msg->u.pull);
    j->request = msg;
    submit(s, j, 0);
}

/* Why a store holds less than it acknowledged, and what the operator does about it: devices
 * that push heal the store themselves; one that only pulls may have its cursor past rows whose
 * numbers the store gives again, and misses them until the store is marked restored. */
#define LOST_CAUSES                                                                              \
    "restored from a backup, or failed over to a standby that lacked commits"

/* A device says this store lacks what it acknowledged or handed out. Its word alone proves
 * nothing (a faulty or hostile device can say it as often as it connects), so the line naming
 * it is information, and the advice, the same text for every device, goes through the repeat
 * limiter: one device cannot fill the log with calls to mark the store restored. */
static void store_behind_claimed(const char *detail_fmt, ...) __attribute__((format(printf, 1, 2)));
static void store_behind_claimed(const char *detail_fmt, ...)
{
    char detail[300];
    va_list ap;
    va_start(ap, detail_fmt);
    vsnprintf(detail, sizeof detail, detail_fmt, ap);
    va_end(ap);
    log_msg(LOG_INFO, "store: %s", detail);
    log_limited(LOG_WARN, "store: a device says this store lacks what it acknowledged or handed "
                "out (the info lines above name it); one device's word proves nothing, but if "
                "several say so, acknowledged writes were lost (" LOST_CAUSES "): unless "
                "outpost-admin restored was run since, stop every outpostd, run outpost-admin "
                "restored on the store and start them again, or devices that only pull keep "
                "missing rows");
}

/* A store failure after authentication. Like every ERROR it ends the session (one rule for
 * clients: after ERROR, reconnect later if `retry` says so); the refused message changed
 * nothing. */
static void store_failure(session *s, const job *j, const char *what)
{
    /* No connection to PostgreSQL (down, or no primary yet during a failover): nothing about
     * the request was decided, and the device must not read it as a refusal (at HELLO, as bad
     * credentials that call for enrolling again). */
    if (j->unreachable) {
        log_msg(LOG_ERROR, "conn=%" PRIu64 " %s not done: the store is unreachable: %s", s->id,
                what, j->errmsg[0] ? j->errmsg : "store error");
        send_error(s, PROTO_ERR_INTERNAL, true, true,
                   "the server cannot reach its store right now (database down or failing "
                   "over): nothing was checked or refused, try again shortly");
        return;
    }
    log_msg(j->rc == STORE_EREVOKED || j->rc == STORE_EAHEAD ? LOG_WARN : LOG_ERROR,
            "conn=%" PRIu64 " %s failed: %s", s->id, what,
            j->errmsg[0] ? j->errmsg : "store error");
    if (j->rc == STORE_EAHEAD)
        store_behind_claimed("device %s pulled further than this store's newest sequence",
                             s->device.device_id);
    switch (j->rc) {
    case STORE_EREVOKED: /* revoked while connected; its next HELLO learns about a wipe */
        session_barred(s);
        break;
    case STORE_EFULL:
        send_error(s, PROTO_ERR_STORE_FULL, true, true, "server storage full, try again later");
        break;
    case STORE_EBUSY:
        send_error(s, PROTO_ERR_BUSY, true, true, "store busy, try again later");
        break;
    case STORE_EAHEAD:
        send_error(s, PROTO_ERR_CURSOR_AHEAD, true, true, "%s", j->errmsg);
        break;
    case STORE_ESEQ: /* the device must not resend this: it would be refused again */
        send_error(s, PROTO_ERR_SEQ_REWOUND, false, true, "%s", j->errmsg);
        break;
    default:
        send_error(s, PROTO_ERR_INTERNAL, true, true, "server error during %s", what);
        break;
    }
}

static void enroll_done(session *s, job *j)
{
    if (j->rc == STORE_OK) {
        log_msg(LOG_INFO, "conn=%" PRIu64 " peer=%s enrolled device=%s", s->id, s->peer,
                j->enrolled_id);
        queue_reply(s, &j->reply, false, true);
        return;
    }
    if (j->rc == STORE_ELOCKED) {
        log_msg(LOG_WARN, "conn=%" PRIu64 " peer=%s enroll refused: address locked out after %"
                PRIu32 " failed enrollment codes", s->id, s->peer,
                s->srv->config.limits.lockout_failures);
        send_error(s, PROTO_ERR_LOCKED_OUT, true, true,
                   "too many failed enrollment codes from this address, try again later");
        return;
    }
    if (j->rc == STORE_ECODE || j->rc == STORE_ENOTFOUND) {
        log_msg(LOG_WARN, "conn=%" PRIu64 " peer=%s enroll refused: code unknown, used or expired",
                s->id, s->peer);
        send_error(s, PROTO_ERR_ENROLL_CODE, false, true,
                   "enrollment code unknown, already used or expired");
        return;
    }
    store_failure(s, j, "enroll");
}

void session_replace(session *s)
{
    send_error(s, PROTO_ERR_BUSY, true, true,
               "this device connected again: the older connection is closed");
}

void session_barred(session *s)
{
    /* retry is true: the device connects again at once, and the answer to its HELLO is the
     * verdict (WIPE when a wipe was ordered, else ERROR 4 with retry false). */
    send_error(s, PROTO_ERR_REVOKED, true, true,
               "this device was revoked or its worker disabled: connect again to hear what "
               "the office ordered");
}

void session_store_replaced(session *s)
{
    send_error(s, PROTO_ERR_INTERNAL, true, true,
               "the server's store is unavailable (its database was replaced): try again later");
}

/* One live session per device: what a device can make the server hold is one session's. */
static void close_older_sessions(session *s)
{
    server *srv = s->srv;

    for (uint32_t i = 0; i < srv->config.limits.max_connections; i++) {
        session *o = srv->slots[i];
        if (!o || o == s || !o->authenticated || o->state == SESSION_CLOSING ||
            strcmp(o->device.device_id, s->device.device_id) != 0)
            continue;
        log_msg(LOG_INFO, "conn=%" PRIu64 " device=%s replaced by conn=%" PRIu64, o->id,
                o->device.device_id, s->id);
        session_replace(o);
    }
}

static void auth_done(session *s, job *j)
{
    char id_buf[41];
    const char *device_id = loggable_id(j->request->u.hello.device_id, id_buf);

    switch (j->rc) {
    case STORE_OK:
        if (device_copy(&j->device, &s->device) != 0) {
            send_error(s, PROTO_ERR_INTERNAL, true, true, "out of memory");
            return;
        }
        s->authenticated = true;
        s->state = SESSION_READY;
        s->store_behind = j->request->u.hello.has_acked &&
                          j->request->u.hello.acked > s->device.acked_seq;
        s->hello_acked = j->request->u.hello.acked;
        if (s->store_behind)
            store_behind_claimed("device %s was acknowledged up to seq %" PRIu64
                                 " but this store holds its entries only up to seq %" PRIu64,
                                 s->device.device_id, s->hello_acked, s->device.acked_seq);
        s->other_store = j->other_store;
        close_older_sessions(s);
        log_msg(LOG_INFO, "conn=%" PRIu64 " peer=%s auth ok device=%s worker=%s teams=%" PRIu32
                " acked_seq=%" PRIu64, s->id, s->peer, s->device.device_id, s->device.worker_id,
                s->device.n_teams, s->device.acked_seq);
        if (j->request->u.hello.compress == PROTO_COMPRESS_DEFLATE) {
            if (proto_zstream_new(false, &s->zin) != PROTO_OK ||
                proto_zstream_new(true, &s->zout) != PROTO_OK) {
                send_error(s, PROTO_ERR_INTERNAL, true, true, "out of memory");
                return;
            }
            s->z_welcome_plain = true;
        }
        queue_reply(s, &j->reply, false, false);
        return;
    case STORE_EAUTH:
    case STORE_ENOTFOUND:
        log_msg(LOG_WARN, "conn=%" PRIu64 " peer=%s auth failed device=%s", s->id, s->peer,
                device_id);
        send_error(s, PROTO_ERR_AUTH, false, true, "unknown device or wrong secret");
        return;
    case STORE_ELOCKED:
        log_msg(LOG_WARN, "conn=%" PRIu64 " peer=%s auth failed device=%s: address locked out "
                "after %" PRIu32 " failed authentications", s->id, s->peer, device_id,
                s->srv->config.limits.lockout_failures);
        send_error(s, PROTO_ERR_LOCKED_OUT, true, true,
                   "too many failed authentications from this address, try again later");
        return;
    case STORE_EREVOKED:
        log_msg(LOG_WARN, "conn=%" PRIu64 " peer=%s auth refused device=%s: revoked%s", s->id,
                s->peer, device_id, j->reply.len ? ", wipe ordered" : "");
        if (j->reply.len > 0) {
            s->state = SESSION_CLOSING;
            lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, CLOSING_GRACE_S);
            queue_reply(s, &j->reply, true, false);
        } else {
            send_error(s, PROTO_ERR_REVOKED, false, true, "this device was revoked");
        }
        return;
    case STORE_ESCHEMA:
        send_error(s, PROTO_ERR_SCHEMA_TOO_OLD, false, true, "%s", j->errmsg);
        return;
    default:
        store_failure(s, j, "authentication");
        return;
    }
}

static void push_done(session *s, job *j)
{
    if (j->push_skipped)
        return; /* behind a failed entry, whose ERROR ended the session */
    if (j->push_malformed) {
        send_error(s, PROTO_ERR_BAD_MESSAGE, false, true, "%s", j->errmsg);
        return;
    }
    if (j->rc != STORE_OK) {
        store_failure(s, j, "push");
        return;
    }
    s->device.acked_seq = j->device.acked_seq;
    s->n_pushes++;
    session_log_push(j, false);
    queue_reply_as(s, &j->reply, false, false, true);
}

void session_log_push(const job *j, bool connection_gone)
{
    const store_push_info *info = &j->push_info;

    log_msg(LOG_INFO, "conn=%" PRIu64 " device=%s push seq=%" PRIu64 " chunks=%" PRIu32
            " result=%s rows=%" PRIu32 " conflicts=%" PRIu32 " server_seq=%" PRIu64
            " store_ms=%" PRIu64 " group=%" PRIu32 "%s%s", j->session_id, j->device.device_id,
            j->push.seq, j->n_chunks,
            info->rejected ? "REJECT" : info->duplicate ? "ACK(duplicate)" : "ACK", info->n_rows,
            info->n_conflicts, info->server_seq, j->run_us / 1000u, j->group ? j->group : 1,
            info->hlc_clamped ? " hlc_clamped" : "",
            connection_gone ? " (connection closed before the reply: the device will resend)"
                            : "");
}

static void pull_done(session *s, job *j)
{
    const store_pull_info *info = &j->pull_info;

    s->pull_more = j->rc == STORE_OK && info->more;
    if (j->rc == STORE_OK && info->next_cursor > s->pull_reached)
        s->pull_reached = info->next_cursor;
    if (j->rc != STORE_OK) {
        store_failure(s, j, "pull");
        return;
    }
    s->n_pulls++;
    log_msg(LOG_INFO, "conn=%" PRIu64 " device=%s pull cursor=%" PRIu64 " rows=%" PRIu32
            " deleted=%" PRIu32 " removed=%" PRIu32 " next_cursor=%" PRIu64 " more=%d"
            " store_ms=%" PRIu64 "%s", s->id, s->device.device_id, j->request->u.pull.cursor,
            info->n_rows, info->n_deleted, info->n_removed, info->next_cursor,
            info->more ? 1 : 0, j->run_us / 1000u, j->pull_prepared ? " read_ahead=1" : "");
    queue_reply(s, &j->reply, false, false);
    /* A page read ahead may predate a change this session was told of before its PULL came
     * (on_pull then cleared that NOTIFY): a last page that ends before it is followed by a new
     * NOTIFY. */
    if (!info->more && s->notified_seq > info->next_cursor)
        session_notify(s, s->notified_seq);
}

/* Takes j off the pending jobs (the oldest: jobs come back in the order submitted). */
static void pending_remove(session *s, job *j)
{
    for (uint32_t i = 0; i < s->n_pending; i++) {
        if (s->pending[i] != j)
            continue;
        s->pending_push_bytes -= s->pending_bytes[i];
        if (j->kind != JOB_PUSH)
            s->n_pending_other--;
        for (uint32_t k = i; k + 1 < s->n_pending; k++) {
            s->pending[k] = s->pending[k + 1];
            s->pending_bytes[k] = s->pending_bytes[k + 1];
        }
        s->n_pending--;
        account(s);
        return;
    }
}

void session_job_done(session *s, job *j)
{
    pending_remove(s, j);
    s->answering = true; /* an ERROR now is about this job: it goes at once */
    if (s->state != SESSION_CLOSING || s->draining) {
        switch (j->kind) {
        case JOB_ENROLL: enroll_done(s, j); break;
        case JOB_AUTH: auth_done(s, j); break;
        case JOB_PUSH: push_done(s, j); break;
        case JOB_PULL: pull_done(s, j); break;
        case JOB_DASH: /* dashboard jobs go to dashboard_job_done, never here */
        case JOB_SWEEP: break; /* and sweeps to sweep_done */
        }
    }
    s->answering = false;
    job_free(j);
    if (s->draining && s->n_pending == 0) {
        s->draining = false;
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, CLOSING_GRACE_S);
        queue_reply(s, &s->deferred_error, true, false);
    }
    update_flow(s);
    update_timer(s);
}

/* ---- Receiving ------------------------------------------------------------------------------- */

/* Replaces the compressed frame in rx by the message it holds, never more than the message
 * limit: a small frame that would inflate beyond it is refused like any oversized message. */
static int inflate_rx(session *s)
{
    size_t limit = s->srv->config.limits.max_message_bytes;
    proto_buf plain = {0};
    int rc;

    if (!s->zin) {
        send_error(s, PROTO_ERR_BAD_MESSAGE, false, true,
                   "compressed message, but this session did not agree to compression");
        return -1;
    }
    rc = proto_zframe_inflate(s->zin, s->rx, s->rx_len, limit, &plain);
    if (rc == PROTO_OK && !within_budget(s, plain.cap)) {
        proto_buf_free(&plain);
        send_error(s, PROTO_ERR_BUSY, true, true,
                   "server memory for unfinished messages is full, try again later");
        return -1;
    }
    if (rc != PROTO_OK) {
        proto_buf_free(&plain);
        if (rc == PROTO_ETOOBIG)
            send_error(s, PROTO_ERR_TOO_LARGE, false, true,
                       "message exceeds %zu bytes once decompressed", limit);
        else if (rc == PROTO_EMALFORMED)
            send_error(s, PROTO_ERR_BAD_MESSAGE, false, true, "invalid compressed frame: %s",
                       proto_zframe_why(s->zin));
        else
            send_error(s, rc == PROTO_ENOMEM ? PROTO_ERR_INTERNAL : PROTO_ERR_BAD_MESSAGE,
                       rc == PROTO_ENOMEM, true, "cannot decompress message (%s)",
                       proto_strerror(rc));
        return -1;
    }
    free(s->rx);
    s->rx = plain.data;
    s->rx_len = plain.len;
    s->rx_cap = plain.cap;
    account(s);
    return 0;
}

static void handle_message(session *s)
{
    proto_msg *msg = NULL;
    char err[200];
    int rc;

    if (s->rx_text) {
        send_error(s, PROTO_ERR_BAD_MESSAGE, false, true,
                   "outpost.1 messages are binary frames, got a text frame");
        return;
    }
    if (s->srv->store_replaced) { /* sweep.c: no device job runs until outpostd restarts */
        session_store_replaced(s);
        return;
    }
    if (proto_is_zframe(s->rx, s->rx_len) && inflate_rx(s) != 0)
        return;
    rc = proto_decode(s->rx, s->rx_len, &s->srv->proto_limits, &msg, err, sizeof err);
    if (rc != PROTO_OK) {
        send_error(s, rc == PROTO_ETOOBIG ? PROTO_ERR_TOO_LARGE : PROTO_ERR_BAD_MESSAGE, false,
                   true, "cannot decode message (%s): %s", proto_strerror(rc), err);
        return;
    }

    if (s->state == SESSION_GREETING) {
        if (msg->type == PROTO_MSG_HELLO) {
            submit_opening(s, msg, msg->u.hello.version, JOB_AUTH);
            return;
        }
        if (msg->type == PROTO_MSG_ENROLL) {
            submit_opening(s, msg, msg->u.enroll.version, JOB_ENROLL);
            return;
        }
        send_error(s, PROTO_ERR_BAD_MESSAGE, false, true,
                   "%s before HELLO: a session starts with HELLO (or ENROLL, then HELLO)",
                   proto_msg_type_name((uint32_t)msg->type));
        proto_msg_free(msg);
        return;
    }
    /* What the device sent behind HELLO assumed the store it knew; after WELCOME it knows
     * better and sends again, in seq order, on a new connection. */
    if (s->other_store) {
        send_error(s, PROTO_ERR_BAD_MESSAGE, false, true,
                   "HELLO names another central store than this one: nothing after HELLO was "
                   "applied (a device does not merge two stores)");
        proto_msg_free(msg);
        return;
    }
    if (s->store_behind) {
        send_error(s, PROTO_ERR_CURSOR_AHEAD, true, true,
                   "this store has recorded up to seq %" PRIu64 " from this device, which was "
                   "acknowledged up to seq %" PRIu64 ": the store went back in time (" LOST_CAUSES
                   "); nothing after HELLO was applied, send it again",
                   s->device.acked_seq, s->hello_acked);
        proto_msg_free(msg);
        return;
    }
    if (msg->type == PROTO_MSG_PUSH) {
        on_push(s, msg, s->rx, s->rx_len);
        return;
    }
    if (msg->type == PROTO_MSG_PULL) {
        on_pull(s, msg);
        return;
    }
    send_error(s, PROTO_ERR_BAD_MESSAGE, false, true, "%s is not expected in a sync session",
               proto_msg_type_name((uint32_t)msg->type));
    proto_msg_free(msg);
}

/* Before a session is authenticated it can only send HELLO or ENROLL, a few hundred bytes: it
 * may hold no more than this, so that connections nobody authenticated cannot take the memory
 * budget that devices' pushes need. */
enum { UNAUTHENTICATED_MESSAGE_BYTES = 16384 };

int session_receive(session *s, const void *in, size_t len)
{
    size_t limit = s->srv->config.limits.max_message_bytes;

    if (!s->authenticated && limit > UNAUTHENTICATED_MESSAGE_BYTES)
        limit = UNAUTHENTICATED_MESSAGE_BYTES;

    if (s->state == SESSION_CLOSING)
        return 0; /* discard until the close handshake */
    if (!s->rx_in_message) {
        s->rx_in_message = true;
        s->rx_len = 0;
        s->rx_text = !lws_frame_is_binary(s->wsi);
        update_timer(s);
    }
    if (len > limit - s->rx_len) {
        send_error(s, PROTO_ERR_TOO_LARGE, false, true, "message exceeds %zu bytes", limit);
        drop_rx(s);
        return 0;
    }
    if (s->rx_len + len > s->rx_cap) {
        size_t cap = s->rx_cap ? s->rx_cap : 4096;
        uint8_t *grown;
        while (cap < s->rx_len + len)
            cap *= 2;
        if (cap > limit)
            cap = limit;
        if (!within_budget(s, cap - s->rx_cap)) {
            log_msg(LOG_WARN, "conn=%" PRIu64 " held bytes at max_held_bytes (%zu)", s->id,
                    s->srv->config.limits.max_held_bytes);
            send_error(s, PROTO_ERR_BUSY, true, true,
                       "server memory for unfinished messages is full, try again later");
            drop_rx(s);
            return 0;
        }
        grown = realloc(s->rx, cap);
        if (!grown) {
            send_error(s, PROTO_ERR_INTERNAL, true, true, "out of memory");
            return 0;
        }
        s->rx = grown;
        s->rx_cap = cap;
        account(s);
    }
    if (len > 0)
        memcpy(s->rx + s->rx_len, in, len);
    s->rx_len += len;
    if (!lws_is_final_fragment(s->wsi))
        return 0;

    s->rx_in_message = false;
    handle_message(s);
    /* Idle sessions keep no receive buffer: memory per idle connection stays small. */
    drop_rx(s);
    update_flow(s);
    update_timer(s);
    return 0;
}

/* ---- Lifetime -------------------------------------------------------------------------------- */

int session_open(session *s, server *srv, struct lws *wsi)
{
    s->wsi = wsi;
    s->srv = srv;
    s->id = srv->next_session_id++;
    s->state = SESSION_GREETING;
    if (!lws_get_peer_simple(wsi, s->peer, sizeof s->peer))
        snprintf(s->peer, sizeof s->peer, "unknown");
    s->handshake_deadline_us =
        monotonic_us() + (uint64_t)srv->config.limits.handshake_timeout_s * 1000000u;
    if (server_slot_acquire(srv, s, &s->slot) != 0) {
        log_msg(LOG_WARN, "conn=%" PRIu64 " peer=%s refused: %" PRIu32 " connections already",
                s->id, s->peer, srv->config.limits.max_connections);
        send_error(s, PROTO_ERR_BUSY, true, true, "server at its connection limit, try later");
        return 0;
    }
    s->has_slot = true;
    /* One address cannot fill the connection slots with sessions that never authenticate (an
     * outsider held 1,250 from one address and locked every device out). */
    uint32_t strangers = 0;
    for (uint32_t i = 0; i < srv->config.limits.max_connections; i++) {
        const session *o = srv->slots[i];
        if (o && o != s && !o->authenticated && o->state != SESSION_CLOSING &&
            strcmp(o->peer, s->peer) == 0)
            strangers++;
    }
    if (strangers >= srv->config.limits.max_unauthenticated_per_address) {
        log_limited(LOG_WARN, "peer=%s refused: %" PRIu32 " of its connections have not "
                    "authenticated", s->peer, strangers);
        send_error(s, PROTO_ERR_BUSY, true, true,
                   "too many connections from your address have not authenticated, try later");
        return 0;
    }
    log_msg(LOG_INFO, "conn=%" PRIu64 " peer=%s open", s->id, s->peer);
    update_timer(s);
    return 0;
}

void session_close(session *s)
{
    if (!s->srv)
        return; /* never opened */
    lws_sul_cancel(&s->timer);
    if (s->has_slot)
        pull_ahead_drop(s->srv->ahead, s->slot, s->id);
    /* A job still waiting for the queue is nobody's now; one in the worker comes back to
     * server_dispatch_completions, which finds this session gone. */
    for (uint32_t i = 0; i < s->n_pending; i++) {
        job *j = s->pending[i];
        if (server_unwait(s->srv, j))
            job_free(j);
    }
    s->n_pending = s->n_pending_other = 0;
    s->pending_push_bytes = 0;
    push_chain_release(s->chain);
    s->chain = NULL;
    if (s->has_slot) {
        server_slot_release(s->srv, s->slot);
        s->has_slot = false;
        log_msg(LOG_INFO, "conn=%" PRIu64 " peer=%s closed device=%s pushes=%" PRIu32
                " pulls=%" PRIu32, s->id, s->peer,
                s->authenticated ? s->device.device_id : "-", s->n_pushes, s->n_pulls);
    }
    drop_chunks(s);
    drop_rx(s);
    drop_replies(s);
    proto_buf_free(&s->deferred_error);
    proto_zstream_free(s->zin);
    proto_zstream_free(s->zout);
    s->zin = s->zout = NULL;
    if (s->tx_sensitive)
        secure_free(s->tx, LWS_PRE + s->tx_len);
    else
        free(s->tx);
    s->tx = NULL;
    device_release(&s->device);
}
