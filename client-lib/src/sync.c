/*
 * The sync engine: one thread, one transport, one replica connection of its own.
 *
 * Session phases on one connection:
 *   HELLO   -> WELCOME: install a newer schema (entries the server answered while the answer
 *                       was lost in a cut are pushed again and answered from its record).
 *           The first flight goes behind HELLO without waiting for WELCOME (send_first_flight):
 *           the push window's small entries and, when they are the whole outbox, the PULL.
 *   PUSH    the oldest outbox entries, up to a window of WINDOW_ENTRIES (and WINDOW_BYTES)
 *           unanswered at once, each in chunks when big; every ACK or REJECT, which come in
 *           order, lets the next entry go
 *   PULL    pages until "more" is false
 *   IDLE    connected; a local write (debounced) starts PUSH again, NOTIFY starts PULL
 * Any close goes back to DISCONNECTED and schedules a retry with backoff and jitter; a
 * permanent failure (certificate, authentication, revocation, schema) stops the engine.
 *
 * Exactly once: an entry leaves the outbox only inside outpost_outbox_ack_batch()/_reject(), in
 * the same local transaction that records its outcome (the ACKs of one turn of the loop are
 * recorded together: record_acks); the server dedups by (device, seq), so an
 * entry resent after a cut is acknowledged again without being applied twice. That record
 * (applied and refused alike) is also what makes the window safe: the server takes the entries
 * one at a time in seq order, exactly as if each had waited for the answer before it, and a
 * REJECT changes only the replica's rows, never a later entry's changes, so entries already in
 * flight behind a refused one are the bytes they would have been anyway.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "outpost_build_id.h"
#include "outpost_version.h"
#include "device.h"
#include "internal.h"
#include "transport.h"

enum {
    DEFAULT_DEBOUNCE_MS = 1000,
    DEFAULT_RETRY_BASE_MS = 1000,
    /* The range of the server's advertised `msg` this device accepts messages up to. */
    SYNC_MIN_RECEIVE = 16 * 1024,
    SYNC_MAX_RECEIVE = 64 * 1024 * 1024,
    /* 15 minutes: settled offline, 2 wakes an attempt, ~16 an hour (docs/library.md). */
    DEFAULT_RETRY_CAP_MS = 900000,
    /* Chunks are cut well under the message limit: the size estimate leaves headroom. */
    CHUNK_TARGET_BYTES = 512 * 1024,
    /* An idle engine sleeps until something needs it: a local commit (the commit listener
     * wakes it), a message, a timer below. Commits by another process fire no listener: the
     * engine looks for them (PRAGMA data_version) at every wake and at least this often. */
    LOOK_INTERVAL_MS = 5 * 60 * 1000,
    /* Connected and idle, the transport pings after half of this with no message received and
     * hangs up after all of it unanswered (a sync in progress keeps the transport's default,
     * 60 s). Longer than the keepalive PULL's interval (half the server's idle, 5 minutes by
     * default), whose answer counts as proof, so an idle connection sees only those PULLs; a
     * dead one is found within 15 minutes. */
    IDLE_CONNECTION_TIMEOUT_S = 900,
    /* The push window (docs/protocol.md 8.2): entries unanswered at once, and their encoded
     * bytes (one entry may exceed it alone). The server reads one message at a time, so what
     * waits sits in the socket and in the transport's queue. 32 entries: on a 600 ms link a
     * day's ~65 small entries go in 2-3 window turns instead of 8-9 (bench_field). The byte
     * bound is what the engine holds in memory; a day's entries are a few KiB, so it stays. */
    WINDOW_ENTRIES = 32,
    WINDOW_BYTES = 1024 * 1024,
    /* lws turns given to writing the PULL queued ahead of a held page (a small message: one
     * WRITEABLE callback) before the page is applied anyway. */
    HELD_FLUSH_TURNS = 4,
    /* A PUSH sent before WELCOME (the first flight) is one message within the `msg` of the last
     * WELCOME this engine saw, or within the smallest `msg` a server may advertise before any
     * (docs/protocol.md 8.2): nothing the server could refuse as too large. */
    FIRST_FLIGHT_MIN_MESSAGE_BYTES = 1024
};

/* One outbox entry in the push window, with its encoded chunks. */
typedef struct inflight {
    outpost_outbox_entry *entry;
    proto_buf *chunks;
    uint32_t n_chunks, next_chunk;
    uint32_t n_framed; /* chunks already replaced by their compressed frames */
    size_t bytes;
} inflight;

typedef enum phase {
    PHASE_DISCONNECTED,
    PHASE_HELLO,
    PHASE_PUSH,
    PHASE_PULL,
    PHASE_IDLE
} phase;

struct outpost_sync {
    outpost_replica *app; /* the app's handle: only its wiped flag is touched from here */
    outpost_replica *r;   /* the engine's own connection to the same file */
    outpost_sync_config cfg;
    device_credentials creds;
    transport *t;
    proto_limits limits;    /* what this device sends, and receives until WELCOME */
    proto_limits rx_limits; /* what it accepts from the server (receive_limit_from_welcome) */
    pthread_t thread;

    /* Shared with app threads, under lock. */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool stopping, want_sync, net_changed, wrote;
    int64_t last_write_mono;
    outpost_sync_status status;
    bool stopped; /* permanently, or the thread ended */

    /* Sync thread only. */
    phase phase;
    bool permanent;       /* stopped for good; only stop() ends the thread */
    bool attempt_failed;  /* the last connection ended before a completed sync */
    bool error_kept;      /* the replica holds a failed attempt's error (sync_error.c) */
    int64_t retry_at;     /* monotonic ms; 0 = no retry scheduled */
    int64_t debounce_at;  /* monotonic ms; 0 = no local write waiting */
    int64_t keepalive_at; /* monotonic ms; connected and idle: a PULL from the cursor before the
                           * server's idle timeout ends the session; 0 = none */
    int64_t next_look;    /* monotonic ms: the next look for other processes' commits */
    uint32_t server_idle_ms; /* the server's `idle` from WELCOME; 0 = never */
    atomic_uint_fast64_t wakes; /* the thread's loop turns (outpost_sync_wakes()) */
    atomic_uint_fast64_t wakes_for[OUTPOST_WAKE_REASONS]; /* the same, by reason */
    uint64_t events;      /* transport callbacks run, to tell a network wake from others */
    bool log_wakes;       /* OUTPOST_SYNC_DEBUG: each wake and its reason on stderr */
    bool pull_again;      /* NOTIFY came while busy */
    bool sync_asked;      /* outpost_sync_now() not yet answered by a cycle begun after it */
    backoff_policy policy;
    backoff_state backoff;
    uint64_t rng_state;
    int64_t data_version;        /* PRAGMA data_version at the last look */
    uint64_t welcome_acked;      /* the server's `ack` in this session's WELCOME */
    heal_hello hello_said;       /* this session's HELLO's `ack` and cursor (heal_on_welcome) */
    inflight window[WINDOW_ENTRIES]; /* entries pushed and not yet answered, oldest first */
    uint32_t win_head, win_count;
    size_t win_bytes;
    uint64_t win_last_seq;           /* seq of the newest entry taken into the window */
    int unsendable;                  /* an entry that cannot be encoded waits behind the window */
    uint32_t unanswered;             /* requests sent whose answer has not come */
    proto_msg *held_page;            /* a ROWS page whose next PULL is queued: applied once
                                      * that PULL has left (apply_held_page) */
    bool asked_ahead;                /* the ROWS being received was answered, and its next
                                      * page asked for, from its first bytes (ask_ahead) */
    uint64_t asked_cursor;           /* ... from this cursor */
    proto_buf held_bytes;            /* that ROWS, not yet decoded: decoded and handled once
                                      * its PULL has left (held_bytes_handle) */
    proto_zstream *zin, *zout;       /* this session's compression, once WELCOME agreed to it */
    bool awaiting_welcome;           /* HELLO sent, WELCOME not yet received */
    bool first_flight;               /* requests went behind HELLO (send_first_flight) */
    bool outbox_end;                 /* the window holds the outbox's last entry */
    bool pull_sent;                  /* this cycle's PULL went behind that entry (pull_behind) */
    bool plain_first_flight;         /* a WELCOME declined compression: first flights go plain */
    size_t flight_limit;             /* the last WELCOME's `msg`; 0 = none seen yet */
    size_t flight_largest;           /* the largest PUSH message of this connection's flight */
    proto_msg *acks[WINDOW_ENTRIES]; /* ACKs received, not yet recorded (record_acks) */
    uint64_t ack_rows[WINDOW_ENTRIES];
    uint32_t n_acks;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *outpost_activity_name(outpost_activity activity)
{
    switch (activity) {
    case OUTPOST_ACTIVITY_STOPPED: return "stopped";
    case OUTPOST_ACTIVITY_OFFLINE: return "offline";
    case OUTPOST_ACTIVITY_CONNECTING: return "connecting";
    case OUTPOST_ACTIVITY_PUSHING: return "pushing";
    case OUTPOST_ACTIVITY_PULLING: return "pulling";
    case OUTPOST_ACTIVITY_IDLE: return "idle";
    }
    return "unknown";
}

/* ---- Status ------------------------------------------------------------------------------ */

/* Copies the status out under the lock and reports it outside it. */
static void publish(outpost_sync *s)
{
    outpost_sync_status copy;
    outpost_status st;
    if (outpost_status_get(s->r, &st) == OUTPOST_OK) {
        pthread_mutex_lock(&s->lock);
        s->status.pending = st.pending;
        s->status.rejected = st.rejected;
        s->status.last_sync_ms = st.last_sync_ms;
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_lock(&s->lock);
    copy = s->status;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    if (s->cfg.on_status)
        s->cfg.on_status(s->cfg.user_data, &copy);
}

static void set_activity(outpost_sync *s, outpost_activity activity)
{
    pthread_mutex_lock(&s->lock);
    s->status.activity = activity;
    pthread_mutex_unlock(&s->lock);
    publish(s);
}

static void set_error(outpost_sync *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(outpost_sync *s, int code, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&s->lock);
    s->status.last_error = code;
    va_start(ap, fmt);
    vsnprintf(s->status.last_error_msg, sizeof s->status.last_error_msg, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&s->lock);
}

static void count_bytes(outpost_sync *s, uint64_t *counter, size_t n)
{
    pthread_mutex_lock(&s->lock);
    *counter += n;
    pthread_mutex_unlock(&s->lock);
}

/* ---- Connection outcomes ---------------------------------------------------------------- */

static void inflight_free(inflight *f)
{
    for (uint32_t i = 0; i < f->n_chunks; i++)
        proto_buf_free(&f->chunks[i]);
    free(f->chunks);
    outpost_outbox_entry_free(f->entry);
    memset(f, 0, sizeof *f);
}

static inflight *window_at(outpost_sync *s, uint32_t i)
{
    return &s->window[(s->win_head + i) % WINDOW_ENTRIES];
}

/* Forgets ACKs not recorded: their entries stay in the outbox, are sent again and answered
 * from the server's record. */
static void acks_forget(outpost_sync *s)
{
    for (uint32_t i = 0; i < s->n_acks; i++)
        proto_msg_free(s->acks[i]);
    s->n_acks = 0;
}

/* Empties the push window (a cut, a stop): its entries stay in the outbox and go again. */
static void drop_window(outpost_sync *s)
{
    acks_forget(s);
    while (s->win_count > 0) {
        inflight_free(window_at(s, 0));
        s->win_head = (s->win_head + 1) % WINDOW_ENTRIES;
        s->win_count--;
    }
    s->win_head = 0;
    s->win_bytes = 0;
    s->win_last_seq = 0;
    s->unsendable = OUTPOST_OK;
    s->unanswered = 0;
    s->outbox_end = s->pull_sent = false;
}

/* A request is about to be sent: one sent with nothing else unanswered waits a round trip. */
static void request_sent(outpost_sync *s)
{
    if (s->unanswered++ == 0) {
        pthread_mutex_lock(&s->lock);
        s->status.round_trips++;
        pthread_mutex_unlock(&s->lock);
    }
}

static void answer_received(outpost_sync *s)
{
    if (s->unanswered > 0)
        s->unanswered--;
}

/* Stops the engine for good: retrying cannot help until a person acts. */
static void stop_permanently(outpost_sync *s, int code, const char *why)
{
    set_error(s, code, "%s", why);
    s->permanent = true;
    s->retry_at = 0;
    drop_window(s);
    transport_disconnect(s->t);
    pthread_mutex_lock(&s->lock);
    s->stopped = true;
    pthread_mutex_unlock(&s->lock);
    set_activity(s, OUTPOST_ACTIVITY_STOPPED);
}

/* Hangs up and schedules the next attempt on the backoff schedule. */
static void fail_transient(outpost_sync *s, int code, const char *why)
{
    set_error(s, code, "%s", why);
    s->attempt_failed = true;
    transport_disconnect(s->t);
}

/* Messages from this size on, in practice PUSHes of bulk transactions (a 1,000-row entry is
 * ~150 KB of MessagePack, a field worker's contact under 2 KB), are compressed at DEFLATE level 1
 * rather than 6 (proto_zstream_bulk_from). bench_sync plain, perf of the pushing thread: level 6
 * spent 0.61 ms per 1,000-row entry in deflate, level 1 0.39 ms and level 3 0.40 ms, for 11.0
 * wire bytes per row instead of 9.6. Over 2G (bench_field) the small messages of a day's work
 * are where bytes count, and there level 6 wins: 109.6 bytes per row up against 117.4 (level 3)
 * and 120.3 (level 1), so they stay at 6. */
enum { ZBULK_BYTES = 64 * 1024 };

/* This session's compressing stream. */
static int zout_new(outpost_sync *s)
{
    int rc = proto_zstream_new(true, &s->zout);

    if (rc == PROTO_OK)
        proto_zstream_bulk_from(s->zout, ZBULK_BYTES);
    return rc;
}

/* Replaces an encoded message by its compressed frame when this session compresses. */
static int frame(outpost_sync *s, proto_buf *buf)
{
    proto_buf framed = {0};
    if (!s->zout)
        return OUTPOST_OK;
    int rc = proto_zframe_deflate(s->zout, buf->data, buf->len, &framed);
    if (rc != PROTO_OK) {
        fail_transient(s, rc == PROTO_ENOMEM ? OUTPOST_ENOMEM : OUTPOST_EPROTO,
                       "could not compress a message for the server");
        return OUTPOST_EPROTO;
    }
    proto_buf_free(buf);
    *buf = framed;
    return OUTPOST_OK;
}

static int send_msg(outpost_sync *s, const proto_msg *msg)
{
    proto_buf buf = {0};
    int rc = proto_encode(msg, &buf);
    if (rc == PROTO_OK && frame(s, &buf) != OUTPOST_OK) {
        proto_buf_free(&buf);
        return OUTPOST_EPROTO;
    }
    if (rc != PROTO_OK) {
        fail_transient(s, OUTPOST_EPROTO, proto_strerror(rc));
        return OUTPOST_EPROTO;
    }
    rc = transport_send(s->t, buf.data, buf.len);
    if (rc == 0) {
        count_bytes(s, &s->status.bytes_sent, buf.len);
        request_sent(s);
    }
    proto_buf_free(&buf);
    if (rc != 0) {
        fail_transient(s, OUTPOST_EOFFLINE, "could not queue a message for the server");
        return OUTPOST_EOFFLINE;
    }
    return OUTPOST_OK;
}

/* ---- Push ------------------------------------------------------------------------------- */

static int add_chunk(outpost_sync *s, inflight *f, const proto_push *base,
                     proto_table_changes *tables, uint32_t n_tables, bool more)
{
    proto_buf *grown = realloc(f->chunks, (f->n_chunks + 1) * sizeof *grown);
    if (!grown)
        return OUTPOST_ENOMEM;
    f->chunks = grown;
    proto_msg msg = {.type = PROTO_MSG_PUSH};
    msg.u.push = *base;
    msg.u.push.chunk = f->n_chunks;
    msg.u.push.more = more;
    msg.u.push.tables = tables;
    msg.u.push.n_tables = n_tables;
    proto_buf *buf = &f->chunks[f->n_chunks];
    memset(buf, 0, sizeof *buf);
    int rc = proto_encode(&msg, buf);
    if (rc != PROTO_OK)
        return rc == PROTO_ENOMEM ? OUTPOST_ENOMEM : OUTPOST_EPROTO;
    if (buf->len > s->limits.max_message_bytes) {
        proto_buf_free(buf);
        return OUTPOST_ETOOBIG;
    }
    f->n_chunks++;
    f->bytes += buf->len;
    return OUTPOST_OK;
}

static proto_table_changes table_slice(const proto_table_changes *tc, uint32_t from, uint32_t to)
{
    return (proto_table_changes){.table = tc->table, .n_columns = tc->n_columns,
                                 .n_changes = to - from, .changes = tc->changes + from};
}

/* Cuts the entry's PUSH into messages of about CHUNK_TARGET_BYTES. Each chunk's tables are
 * slices of the entry's own change arrays, so nothing is copied but the encoding. A change
 * bigger than the target travels alone; one bigger than a message is OUTPOST_ETOOBIG. */
static int encode_chunks(outpost_sync *s, inflight *f)
{
    const proto_push *push = &f->entry->push;
    proto_table_changes *slices = calloc(push->n_tables ? push->n_tables : 1, sizeof *slices);
    if (!slices)
        return OUTPOST_ENOMEM;
    proto_msg header = {.type = PROTO_MSG_PUSH};
    header.u.push = *push;
    header.u.push.n_tables = 0;
    const size_t base = proto_encoded_size(&header);
    size_t size = base;
    uint32_t n_slices = 0;
    int rc = OUTPOST_OK;

    for (uint32_t ti = 0; ti < push->n_tables && rc == OUTPOST_OK; ti++) {
        const proto_table_changes *tc = &push->tables[ti];
        const size_t table_header = strlen(tc->table) + 32;
        uint32_t start = 0;
        for (uint32_t ci = 0; ci < tc->n_changes && rc == OUTPOST_OK; ci++) {
            size_t grow = proto_change_encoded_size(&tc->changes[ci]) +
                          (ci == start ? table_header : 0);
            if (size + grow > CHUNK_TARGET_BYTES && (n_slices > 0 || ci > start)) {
                if (ci > start)
                    slices[n_slices++] = table_slice(tc, start, ci);
                rc = add_chunk(s, f, push, slices, n_slices, true);
                n_slices = 0;
                size = base;
                start = ci;
                grow = proto_change_encoded_size(&tc->changes[ci]) + table_header;
            }
            size += grow;
        }
        if (tc->n_changes > start)
            slices[n_slices++] = table_slice(tc, start, tc->n_changes);
    }
    if (rc == OUTPOST_OK)
        rc = add_chunk(s, f, push, slices, n_slices, false);
    free(slices);
    return rc;
}

static void send_pull(outpost_sync *s);

/* The PULL goes right behind the outbox's last entry, without waiting for the answers: the
 * server answers it after merging them (docs/protocol.md 8.2), so it sees this device's rows as
 * already merged (no echo), and the sync saves the round trip the last answers took. Before
 * WELCOME it goes even when there is nothing to push. */
static void pull_behind(outpost_sync *s)
{
    if (!s->outbox_end || s->pull_sent || s->unsendable != OUTPOST_OK ||
        s->phase != PHASE_PUSH || (s->win_count == 0 && !s->awaiting_welcome))
        return;
    if (s->win_count > 0) {
        const inflight *last = window_at(s, s->win_count - 1);
        if (last->next_chunk < last->n_chunks)
            return; /* once its chunks are queued (send_chunks from on_sent) */
    }
    s->pull_again = false;
    s->pull_sent = true;
    send_pull(s);
}

/* Sends, oldest entry first, the chunks the transport will take now; the rest go from on_sent.
 * Messages leave in the order queued, so the server sees the entries in seq order. */
static void send_chunks(outpost_sync *s)
{
    for (uint32_t i = 0; i < s->win_count; i++) {
        inflight *f = window_at(s, i);
        while (f->next_chunk < f->n_chunks) {
            proto_buf *b = &f->chunks[f->next_chunk];
            /* Framed once, in send order: a chunk the transport could not take yet keeps its
             * frame for the retry, since the stream has already moved past it. */
            if (f->next_chunk >= f->n_framed) {
                if (frame(s, b) != OUTPOST_OK)
                    return;
                f->n_framed = f->next_chunk + 1;
            }
            int rc = transport_send(s->t, b->data, b->len);
            if (rc == -EAGAIN)
                return;
            if (rc != 0) {
                fail_transient(s, OUTPOST_EOFFLINE, "could not queue a push for the server");
                return;
            }
            count_bytes(s, &s->status.bytes_sent, b->len);
            proto_buf_free(b);
            if (++f->next_chunk == f->n_chunks)
                request_sent(s); /* the last chunk is the request the server answers */
        }
    }
    pull_behind(s);
}

static void start_pull(outpost_sync *s);

/* A single change larger than a message cannot be sent: keep it, say so, stop. */
static void push_unsendable(outpost_sync *s, int rc)
{
    stop_permanently(s, rc,
                     rc == OUTPOST_ETOOBIG
                         ? "an outbox entry holds a value larger than a protocol message"
                         : "could not encode an outbox entry");
}

/* Takes the next outbox entries into the window while it has room, and sends them. 0, or a
 * failure already reported (the connection is then closing). An entry that cannot be encoded
 * stops the filling: the entries before it are answered first, then the engine stops. */
static int window_fill(outpost_sync *s)
{
    /* Once the PULL went behind the last entry, newer entries wait for the next sync. */
    while (s->unsendable == OUTPOST_OK && !s->pull_sent && s->win_count < WINDOW_ENTRIES &&
           (s->win_count == 0 || s->win_bytes < WINDOW_BYTES)) {
        inflight *f = window_at(s, s->win_count);
        int rc = outpost_outbox_read(s->r, s->win_last_seq, &f->entry);
        if (rc != OUTPOST_OK) {
            fail_transient(s, rc, outpost_errmsg(s->r));
            return rc;
        }
        if (!f->entry) {
            s->outbox_end = true;
            break;
        }
        rc = encode_chunks(s, f);
        if (rc != OUTPOST_OK) {
            inflight_free(f);
            s->unsendable = rc;
            break;
        }
        if (s->awaiting_welcome) {
            size_t limit = s->flight_limit ? s->flight_limit : FIRST_FLIGHT_MIN_MESSAGE_BYTES;
            if (f->n_chunks > 1 || f->bytes > limit) {
                inflight_free(f); /* waits for WELCOME, read again then */
                break;
            }
            if (f->bytes > s->flight_largest)
                s->flight_largest = f->bytes;
        }
        s->win_last_seq = f->entry->push.seq;
        s->win_bytes += f->bytes;
        s->win_count++;
    }
    send_chunks(s);
    return OUTPOST_OK;
}

static int record_acks(outpost_sync *s);

/* Once every entry of the window is answered (and recorded): stop on an unsendable entry, else
 * pull. */
static void window_drained(outpost_sync *s)
{
    if (s->win_count > 0 || record_acks(s) != OUTPOST_OK)
        return;
    if (s->unsendable != OUTPOST_OK)
        push_unsendable(s, s->unsendable);
    else
        start_pull(s);
}

/* Pushes the oldest outbox entries not in the window yet, or moves on to pulling when there are
 * none. */
static void push_more(outpost_sync *s)
{
    s->phase = PHASE_PUSH;
    if (window_fill(s) != OUTPOST_OK)
        return;
    if (s->win_count > 0)
        set_activity(s, OUTPOST_ACTIVITY_PUSHING);
    window_drained(s);
}

/* Pushes the oldest outbox entries, or moves on to pulling when the outbox is empty. */
static void push_next(outpost_sync *s)
{
    drop_window(s);
    push_more(s);
}

/* The answer to the oldest entry of the window, or NULL (then the connection is closing). */
static inflight *window_answered(outpost_sync *s, uint64_t seq, const char *what)
{
    if (s->phase != PHASE_PUSH || s->win_count == 0 || window_at(s, 0)->entry->push.seq != seq ||
        window_at(s, 0)->next_chunk < window_at(s, 0)->n_chunks) {
        fail_transient(s, OUTPOST_EPROTO, what);
        return NULL;
    }
    answer_received(s);
    return window_at(s, 0);
}

static void window_pop(outpost_sync *s)
{
    inflight *f = window_at(s, 0);
    s->win_bytes -= f->bytes;
    inflight_free(f);
    s->win_head = (s->win_head + 1) % WINDOW_ENTRIES;
    s->win_count--;
}

/* Records every ACK received and not yet recorded, in one replica transaction: the server
 * commits queued entries together, so their ACKs arrive together, and each recorded alone cost
 * a commit and an fsync here. Called at the end of each turn of the engine's loop and before
 * anything else is handled (a REJECT, a page, a close), so answers are recorded in the order
 * they came and every page is applied after them. A crash before this only means the entries
 * are sent again, which the server answers with the same ACK (exactly once). */
static int record_acks(outpost_sync *s)
{
    const proto_ack *acks[WINDOW_ENTRIES];
    uint64_t rows = 0;
    uint32_t n = s->n_acks;

    if (n == 0)
        return OUTPOST_OK;
    for (uint32_t i = 0; i < n; i++) {
        acks[i] = &s->acks[i]->u.ack;
        rows += s->ack_rows[i];
    }
    int rc = outpost_outbox_ack_batch(s->r, acks, n);
    acks_forget(s);
    if (rc != OUTPOST_OK) {
        fail_transient(s, rc, outpost_errmsg(s->r));
        return rc;
    }
    pthread_mutex_lock(&s->lock);
    s->status.push_done += n;
    s->status.rows_pushed += rows;
    pthread_mutex_unlock(&s->lock);
    if (s->win_count > 0)
        publish(s); /* progress */
    return OUTPOST_OK;
}

/* Takes ownership of m (an ACK message). */
static void on_ack(outpost_sync *s, proto_msg *m)
{
    const proto_ack *ack = &m->u.ack;
    inflight *f = window_answered(s, ack->seq, "the server acknowledged an entry not in flight");
    if (!f) {
        proto_msg_free(m);
        return;
    }
    uint64_t rows = 0;
    for (uint32_t i = 0; i < f->entry->push.n_tables; i++)
        rows += f->entry->push.tables[i].n_changes;
    /* The window moves on before this ACK is recorded here, so that the server merges the next
     * entries while this side commits; it is recorded with the others that came with it
     * (record_acks). */
    window_pop(s);
    if (s->n_acks == WINDOW_ENTRIES && record_acks(s) != OUTPOST_OK) {
        proto_msg_free(m);
        return;
    }
    s->acks[s->n_acks] = m;
    s->ack_rows[s->n_acks++] = rows;
    if (window_fill(s) != OUTPOST_OK)
        return;
    window_drained(s);
}

/* A refused entry goes to quarantine and its rows back to the server's version (outbox.c);
 * the entries behind it in the window stand or fall on their own at the server, as they would
 * have had they been sent after this answer. */
static void on_reject(outpost_sync *s, const proto_reject *reject)
{
    if (!window_answered(s, reject->seq, "the server rejected an entry not in flight"))
        return;
    int rc = outpost_outbox_reject(s->r, reject);
    if (rc != OUTPOST_OK) {
        fail_transient(s, rc, outpost_errmsg(s->r));
        return;
    }
    window_pop(s);
    pthread_mutex_lock(&s->lock);
    s->status.push_done++;
    pthread_mutex_unlock(&s->lock);
    if (window_fill(s) != OUTPOST_OK)
        return;
    if (s->win_count > 0)
        publish(s); /* progress */
    window_drained(s);
}

/* ---- Pull ------------------------------------------------------------------------------- */

static int send_pull_from(outpost_sync *s, uint64_t cursor)
{
    proto_msg msg = {.type = PROTO_MSG_PULL};
    msg.u.pull.cursor = cursor;
    msg.u.pull.limit = s->cfg.pull_page_rows;
    msg.u.pull.has_seen = true;
    int rc = rows_pulled_cursor(s->r, &msg.u.pull.seen);
    if (rc != OUTPOST_OK) {
        fail_transient(s, rc, outpost_errmsg(s->r));
        return rc;
    }
    return send_msg(s, &msg);
}

static void send_pull(outpost_sync *s)
{
    outpost_status st;
    int rc = outpost_status_get(s->r, &st);
    if (rc != OUTPOST_OK) {
        fail_transient(s, rc, outpost_errmsg(s->r));
        return;
    }
    send_pull_from(s, st.cursor);
}

static void start_pull(outpost_sync *s)
{
    s->phase = PHASE_PULL;
    set_activity(s, OUTPOST_ACTIVITY_PULLING);
    /* Sent behind the last entry: a NOTIFY since then may be newer than it (pull_again). */
    if (s->pull_sent) {
        s->pull_sent = false;
        return;
    }
    s->pull_again = false;
    send_pull(s);
}

static void sync_completed(outpost_sync *s)
{
    s->phase = PHASE_IDLE;
    s->attempt_failed = false;
    pthread_mutex_lock(&s->lock);
    s->status.syncs_completed++;
    s->status.last_error = OUTPOST_OK;
    s->status.last_error_msg[0] = '\0';
    pthread_mutex_unlock(&s->lock);
    /* Reported in this session's HELLO: the next one has nothing to report. */
    if (s->error_kept && replica_sync_error_set(s->r, "") == OUTPOST_OK)
        s->error_kept = false;
    set_activity(s, OUTPOST_ACTIVITY_IDLE);
    s->keepalive_at = 0;
    if (!s->cfg.stay_connected)
        transport_disconnect(s->t);
    else {
        transport_set_idle_timeout(s->t, IDLE_CONNECTION_TIMEOUT_S);
        if (s->server_idle_ms)
            s->keepalive_at = mono_ms() + s->server_idle_ms / 2;
    }
}

/* Applies a page and counts its rows; a failure hangs up (the next sync starts again from the
 * stored cursor, so nothing is skipped). */
static int rows_apply(outpost_sync *s, const proto_rows *rows)
{
    int rc = outpost_rows_apply(s->r, rows);
    if (rc != OUTPOST_OK) {
        fail_transient(s, rc, outpost_errmsg(s->r));
        return rc;
    }
    uint64_t n = 0;
    for (uint32_t i = 0; i < rows->n_tables; i++)
        n += rows->tables[i].n_rows + rows->tables[i].n_deleted + rows->tables[i].n_removed;
    pthread_mutex_lock(&s->lock);
    s->status.rows_pulled += n;
    pthread_mutex_unlock(&s->lock);
    return OUTPOST_OK;
}

/* The page held back by on_rows, applied now (before anything that came after it is handled). */
static void apply_held_page(outpost_sync *s)
{
    proto_msg *m = s->held_page;
    if (!m)
        return;
    s->held_page = NULL;
    (void)rows_apply(s, &m->u.rows);
    proto_msg_free(m);
}

/* Takes ownership of m (a ROWS message). */
static void on_rows(outpost_sync *s, proto_msg *m)
{
    const proto_rows *rows = &m->u.rows;
    if (s->phase != PHASE_PULL) {
        fail_transient(s, OUTPOST_EPROTO, "the server sent rows that were not asked for");
        proto_msg_free(m);
        return;
    }
    if (s->asked_ahead) {
        /* Answered and the next page asked for already, from the first bytes (ask_ahead). */
        s->asked_ahead = false;
        if (!rows->more || rows->cursor != s->asked_cursor) {
            fail_transient(s, OUTPOST_EPROTO, "a ROWS page decoded differently from its first "
                                              "bytes");
            proto_msg_free(m);
            return;
        }
        s->held_page = m;
        return;
    }
    answer_received(s);
    /* More pages: ask for the next one (from this page's cursor, which applying it stores)
     * before applying this one, so that the server reads and sends it while this page is
     * written here. Pages arrive and are applied in order; a failed apply hangs up, and the
     * next sync starts again from the stored cursor, so nothing is skipped.
     * The PULL only leaves from lws's WRITEABLE callback, after this one returns: the page is
     * held and applied by the thread's loop once the PULL is written (sync_main), else the
     * server would wait for the whole apply before starting the next page. */
    if (rows->more && !s->pull_again) {
        if (send_pull_from(s, rows->cursor) == OUTPOST_OK)
            s->held_page = m;
        else
            proto_msg_free(m);
        return;
    }
    int rc = rows_apply(s, rows);
    bool more = rows->more;
    proto_msg_free(m);
    if (rc != OUTPOST_OK)
        return;
    if (more || s->pull_again) {
        s->pull_again = false;
        send_pull(s);
        return;
    }
    sync_completed(s);
}

/* A ROWS page with more to come names the next page's cursor in its first bytes: the PULL for
 * it goes out before this page is decoded (a 4,000-row page takes milliseconds), so the server
 * starts on it that much sooner. The page is then handled as answered (on_rows). */
static bool ask_ahead(outpost_sync *s, const uint8_t *data, size_t n_bytes)
{
    uint64_t cursor = 0;
    bool more = false;
    if (s->phase != PHASE_PULL || s->pull_again || s->asked_ahead ||
        !proto_rows_peek(data, n_bytes, &cursor, &more) || !more)
        return false;
    answer_received(s);
    if (send_pull_from(s, cursor) != OUTPOST_OK)
        return false;
    s->asked_ahead = true;
    s->asked_cursor = cursor;
    return true;
}

/* ---- Session ---------------------------------------------------------------------------- */

/* A sync starts: counters and timers. */
static void cycle_reset(outpost_sync *s)
{
    outpost_status st;
    s->debounce_at = 0;
    s->sync_asked = false;
    s->keepalive_at = 0;
    transport_set_idle_timeout(s->t, 0);
    if (outpost_status_get(s->r, &st) == OUTPOST_OK) {
        pthread_mutex_lock(&s->lock);
        s->status.push_done = 0;
        s->status.push_total = st.pending;
        s->status.rows_pushed = 0;
        s->status.rows_pulled = 0;
        pthread_mutex_unlock(&s->lock);
    }
}

/* Starts a sync on an open, authenticated connection: pending writes first. */
static void begin_cycle(outpost_sync *s)
{
    cycle_reset(s);
    push_next(s);
}

/* The first flight (docs/protocol.md 8.2), sent right behind HELLO: the server reads it only
 * once WELCOME is written, and not at all when HELLO fails. It holds what is safe before
 * WELCOME: PUSHes of one message each within the last WELCOME's `msg` (1 KiB before any;
 * bigger entries wait), compressed on HELLO's offer, and the PULL when those entries are the
 * whole outbox (pull_behind). A day's sync then waits one round trip after the upgrade, not
 * three. HELLO's `ack` and `store` let a restored or another store refuse it. */
static void send_first_flight(outpost_sync *s)
{
    cycle_reset(s);
    s->first_flight = true;
    s->phase = PHASE_PUSH;
    if (window_fill(s) == OUTPOST_OK && s->win_count > 0)
        set_activity(s, OUTPOST_ACTIVITY_PUSHING);
}

/* The server never sends more than the `msg` it advertises (docs/protocol.md 8.5): accept up to
 * that, within [SYNC_MIN_RECEIVE, SYNC_MAX_RECEIVE], rather than the library's own default, so
 * that a server configured above 1 MiB does not send pages this device refuses. A server that
 * advertises nothing keeps the default. One value may be as large as the message. */
static void receive_limit_from_welcome(outpost_sync *s, const proto_welcome *w)
{
    proto_limits def;
    proto_limits_default(&def);
    uint64_t n = w->has_limits && w->limits.max_message_bytes ? w->limits.max_message_bytes
                                                               : def.max_message_bytes;
    n = n < SYNC_MIN_RECEIVE ? SYNC_MIN_RECEIVE : n > SYNC_MAX_RECEIVE ? SYNC_MAX_RECEIVE : n;
    s->rx_limits.max_message_bytes = (size_t)n;
    s->rx_limits.max_bytes_value = (size_t)n > def.max_bytes_value ? (size_t)n
                                                                   : def.max_bytes_value;
    transport_set_max_receive(s->t, (size_t)n);
}

static void end_compression(outpost_sync *s);

static void on_welcome(outpost_sync *s, const proto_welcome *w)
{
    if (!s->awaiting_welcome) {
        fail_transient(s, OUTPOST_EPROTO, "unexpected WELCOME");
        return;
    }
    s->awaiting_welcome = false;
    answer_received(s);
    if (w->compress != 0) {
        if (w->compress != PROTO_COMPRESS_DEFLATE || s->cfg.no_compression) {
            fail_transient(s, OUTPOST_EPROTO, "the server chose a compression this device "
                                              "did not offer");
            return;
        }
        if (proto_zstream_new(false, &s->zin) != PROTO_OK ||
            (!s->zout && zout_new(s) != PROTO_OK)) {
            fail_transient(s, OUTPOST_ENOMEM, "out of memory");
            return;
        }
        pthread_mutex_lock(&s->lock);
        s->status.compressed = 1;
        pthread_mutex_unlock(&s->lock);
    } else if (s->zout) {
        /* The first flight went compressed, on HELLO's offer, and this server declines: it
         * refuses those frames (ERROR 1) and applies none. Again, plain from now on. */
        s->plain_first_flight = true;
        if (s->unanswered > 0) {
            fail_transient(s, OUTPOST_ESERVER, "the server declined compression: sending "
                                               "the first flight again uncompressed");
            return;
        }
        end_compression(s);
    }
    if (w->has_schema) {
        int rc = outpost_schema_install(s->r, &w->schema);
        if (rc != OUTPOST_OK) {
            stop_permanently(s, OUTPOST_ESCHEMA, outpost_errmsg(s->r));
            return;
        }
    }
    /* A store that went back in time: what it lost goes back in the outbox, and the next pull
     * starts from 0 (heal.c). Another store altogether is refused before anything more is sent
     * (a first flight reaches it only if it authenticated this device's secret). */
    heal_result heal;
    int heal_rc = heal_on_welcome(s->r, w, &s->hello_said, &heal);
    if (heal_rc == OUTPOST_EOTHERSTORE) {
        stop_permanently(s, heal_rc, outpost_errmsg(s->r));
        return;
    }
    if (heal_rc != OUTPOST_OK) {
        fail_transient(s, heal_rc, outpost_errmsg(s->r));
        return;
    }
    s->welcome_acked = w->acked_seq;
    s->server_idle_ms = w->has_limits ? w->limits.idle_timeout_ms : 0;
    /* The server's limit went down since the last WELCOME: a message of the first flight may be
     * over it (ERROR 7). Again, within the new one. */
    proto_limits def;
    proto_limits_default(&def);
    s->flight_limit = w->has_limits && w->limits.max_message_bytes
                          ? (size_t)w->limits.max_message_bytes
                          : def.max_message_bytes;
    if (s->flight_largest > s->flight_limit) {
        fail_transient(s, OUTPOST_ESERVER, "the server's message limit went down: sending the "
                                           "first flight again within it");
        return;
    }
    receive_limit_from_welcome(s, w);
    if (w->has_teams || w->worker_id) {
        int rc = w->has_teams ? scope_teams_store(s->r, &w->teams) : OUTPOST_OK;
        if (rc == OUTPOST_OK)
            rc = scope_worker_store(s->r, w->worker_id);
        if (rc != OUTPOST_OK) {
            fail_transient(s, rc, outpost_errmsg(s->r));
            return;
        }
    }
    /* Entries at or below w->acked_seq are not taken as acknowledged: the server may have
     * refused them (the REJECT lost in a cut), and only its answer says which. Pushing them is
     * harmless: the server answers from its record of applied and refused (device, seq). */
    backoff_reset(&s->backoff);
    if (!s->first_flight) {
        begin_cycle(s);
        return;
    }
    s->first_flight = false;
    /* Healing put entries back below the window and the cursor back to 0: the first flight
     * pulled from the old cursor. The next session starts from what healing stored. */
    if (heal.rewound) {
        fail_transient(s, OUTPOST_ESERVER, heal.why);
        return;
    }
    push_more(s); /* the window goes on with what waited for WELCOME */
}

/* Maps a server ERROR to what the app can act on. */
static void on_error(outpost_sync *s, const proto_error *e)
{
    int code;
    /* The store is behind this device's cursor (restored from a backup): what it may lack goes
     * back in the outbox and the cursor to 0, so the next session re-sends and pulls in full. */
    if (e->code == PROTO_ERR_CURSOR_AHEAD) {
        heal_result heal;
        int rc = heal_rewind(s->r, s->welcome_acked, &heal);
        if (rc != OUTPOST_OK) {
            fail_transient(s, rc, outpost_errmsg(s->r));
            return;
        }
    }
    switch (e->code) {
    case PROTO_ERR_AUTH: code = OUTPOST_EAUTH; break;
    case PROTO_ERR_REVOKED: code = OUTPOST_EREVOKED; break;
    case PROTO_ERR_SCHEMA_TOO_OLD: code = OUTPOST_ESCHEMA; break;
    case PROTO_ERR_VERSION:
    case PROTO_ERR_BAD_MESSAGE:
    case PROTO_ERR_TOO_LARGE: code = OUTPOST_EPROTO; break;
    case PROTO_ERR_SEQ_REWOUND: code = OUTPOST_ESEQ; break;
    default: code = OUTPOST_ESERVER; break;
    }
    char why[300];
    snprintf(why, sizeof why, "server: %s (%s)", e->message, proto_error_code_name(e->code));
    if (e->retryable)
        fail_transient(s, code == OUTPOST_EPROTO ? OUTPOST_ESERVER : code, why);
    else
        stop_permanently(s, code, why);
}

/* The office ordered a wipe: the files go first, then the app hears it, then the engine stops
 * (so whoever waits on the engine sees the wipe already done and reported). */
static void on_wipe(outpost_sync *s, const proto_wipe *w)
{
    transport_disconnect(s->t);
    drop_window(s);
    replica_mark_wiped(s->app);
    int rc = outpost_replica_wipe(s->r);
    s->r = NULL;
    if (s->cfg.on_wiped)
        s->cfg.on_wiped(s->cfg.user_data, w->reason);
    stop_permanently(s, OUTPOST_EWIPED,
                     rc == OUTPOST_OK ? "the office ordered this device wiped; it was"
                                      : "the office ordered a wipe; some files could not be removed");
}

static void held_bytes_handle(outpost_sync *s);

/* Handles m and frees it. A held page (undecoded or decoded) goes first: messages are handled
 * in arrival order. Its apply waits past a NOTIFY, which only marks that another pull is due:
 * applying here, inside lws's callback, would keep the queued PULL from leaving until done. */
static void handle_message(outpost_sync *s, proto_msg *m)
{
    if (m->type != PROTO_MSG_ACK)
        (void)record_acks(s); /* a failure hangs up: attempt_failed, below */
    held_bytes_handle(s);
    if (m->type != PROTO_MSG_NOTIFY)
        apply_held_page(s);
    if (s->attempt_failed) { /* hung up: nothing after a failed apply may be applied */
        proto_msg_free(m);
        return;
    }
    /* The server answers in order: nothing but WELCOME (or its last word) before WELCOME. */
    if (s->awaiting_welcome && m->type != PROTO_MSG_WELCOME && m->type != PROTO_MSG_ERROR &&
        m->type != PROTO_MSG_WIPE) {
        fail_transient(s, OUTPOST_EPROTO, "the server answered a request before WELCOME");
        proto_msg_free(m);
        return;
    }
    switch (m->type) {
    case PROTO_MSG_WELCOME: on_welcome(s, &m->u.welcome); break;
    case PROTO_MSG_ACK: on_ack(s, m); return; /* on_ack owns m */
    case PROTO_MSG_REJECT: on_reject(s, &m->u.reject); break;
    case PROTO_MSG_ROWS: on_rows(s, m); return; /* on_rows owns m */
    case PROTO_MSG_NOTIFY:
        if (s->phase == PHASE_IDLE)
            begin_cycle(s);
        else
            s->pull_again = true;
        break;
    case PROTO_MSG_ERROR: on_error(s, &m->u.error); break;
    case PROTO_MSG_WIPE: on_wipe(s, &m->u.wipe); break;
    default:
        fail_transient(s, OUTPOST_EPROTO, "the server sent a message a device does not expect");
        break;
    }
    proto_msg_free(m);
}

/* ---- Transport callbacks ---------------------------------------------------------------- */

/* A new connection starts without compression until its WELCOME agrees to it. */
static void end_compression(outpost_sync *s)
{
    proto_zstream_free(s->zin);
    proto_zstream_free(s->zout);
    s->zin = s->zout = NULL;
    pthread_mutex_lock(&s->lock);
    s->status.compressed = 0;
    pthread_mutex_unlock(&s->lock);
}

static void cb_connected(void *user_data)
{
    outpost_sync *s = user_data;
    s->events++;
    outpost_status st;
    int rc = outpost_status_get(s->r, &st);
    if (rc != OUTPOST_OK) {
        fail_transient(s, rc, outpost_errmsg(s->r));
        return;
    }
    proto_msg msg = {.type = PROTO_MSG_HELLO};
    msg.u.hello.version = PROTO_VERSION;
    msg.u.hello.device_id = s->creds.device_id;
    memcpy(msg.u.hello.secret, s->creds.secret, sizeof msg.u.hello.secret);
    msg.u.hello.schema_version = st.schema_version;
    msg.u.hello.cursor = st.cursor;
    msg.u.hello.outbox_count = st.pending;
    /* For the supervisors' device view: which library, and why the last attempt failed. */
    char last_error[sizeof s->status.last_error_msg];
    pthread_mutex_lock(&s->lock);
    memcpy(last_error, s->status.last_error_msg, sizeof last_error);
    pthread_mutex_unlock(&s->lock);
    last_error[sizeof last_error - 1] = '\0';
    if (!last_error[0]) {
        /* A failure in an earlier run of the app (the CLI is one process a sync). */
        replica_sync_error_get(s->r, last_error, sizeof last_error);
        s->error_kept = last_error[0] != '\0';
    }
    msg.u.hello.app = "liboutpost " OUTPOST_VERSION_STRING " (build " OUTPOST_BUILD_ID ")";
    msg.u.hello.last_error = last_error;
    msg.u.hello.compress = s->cfg.no_compression ? 0 : PROTO_COMPRESS_DEFLATE;
    /* A store that went back in time, or another store, refuses the first flight
     * (docs/protocol.md 8.2). */
    char store_id[80];
    rc = heal_known_server(s->r, &msg.u.hello.acked, store_id, sizeof store_id);
    if (rc != OUTPOST_OK) {
        fail_transient(s, rc, outpost_errmsg(s->r));
        return;
    }
    msg.u.hello.has_acked = true;
    msg.u.hello.store_id = store_id[0] ? store_id : NULL;
    s->hello_said = (heal_hello){.acked = msg.u.hello.acked, .cursor = msg.u.hello.cursor};
    end_compression(s);
    s->unanswered = 0;
    s->phase = PHASE_HELLO;
    s->awaiting_welcome = true;
    s->first_flight = s->pull_sent = false;
    s->flight_largest = 0;
    rc = send_msg(s, &msg);
    memset(msg.u.hello.secret, 0, sizeof msg.u.hello.secret);
    if (rc != OUTPOST_OK)
        return;
    /* HELLO is plain; the first flight is compressed on HELLO's offer (docs/protocol.md 1.1). */
    if (!s->plain_first_flight && !s->cfg.no_compression && zout_new(s) != PROTO_OK) {
        fail_transient(s, OUTPOST_ENOMEM, "out of memory");
        return;
    }
    send_first_flight(s);
}

/* Decodes one whole (inflated) message from the server and handles it. */
static void decode_and_handle(outpost_sync *s, const uint8_t *data, size_t n_bytes)
{
    proto_msg *m = NULL;
    char err[160];
    int rc = proto_decode(data, n_bytes, &s->rx_limits, &m, err, sizeof err);
    if (rc != PROTO_OK) {
        char why[200];
        snprintf(why, sizeof why, "malformed message from the server: %s", err);
        fail_transient(s, OUTPOST_EPROTO, why);
        return;
    }
    handle_message(s, m);
}

/* The page ask_ahead held back, decoded and handled now (it becomes the held page). */
static void held_bytes_handle(outpost_sync *s)
{
    if (!s->held_bytes.data)
        return;
    proto_buf bytes = s->held_bytes;
    memset(&s->held_bytes, 0, sizeof s->held_bytes);
    decode_and_handle(s, bytes.data, bytes.len);
    proto_buf_free(&bytes);
}

static void cb_message(void *user_data, const uint8_t *data, size_t n_bytes)
{
    outpost_sync *s = user_data;
    s->events++;
    proto_buf plain = {0};
    count_bytes(s, &s->status.bytes_received, n_bytes);
    /* Stopped, or hung up and waiting for the close: what still arrives is not acted on. */
    if (s->permanent || s->attempt_failed)
        return;
    if (proto_is_zframe(data, n_bytes)) {
        int zrc = s->zin ? proto_zframe_inflate(s->zin, data, n_bytes,
                                                s->rx_limits.max_message_bytes, &plain)
                         : PROTO_EINVAL;
        if (zrc != PROTO_OK) {
            char why[200];
            /* The server broke its own limit (docs/protocol.md 8.5): its fault, not this
             * device's, so a sync failure to retry (as a plain message over the limit is). */
            if (zrc == PROTO_ETOOBIG)
                snprintf(why, sizeof why, "message from the server exceeds %zu bytes once "
                         "decompressed, more than the limit it advertised",
                         s->rx_limits.max_message_bytes);
            else if (zrc == PROTO_EMALFORMED)
                snprintf(why, sizeof why, "invalid compressed frame from the server: %s",
                         proto_zframe_why(s->zin));
            else
                snprintf(why, sizeof why, "cannot decompress a message from the server (%s)",
                         s->zin ? proto_strerror(zrc) : "compression was not agreed");
            proto_buf_free(&plain);
            fail_transient(s, zrc == PROTO_ENOMEM   ? OUTPOST_ENOMEM
                              : zrc == PROTO_ETOOBIG ? OUTPOST_ESERVER
                                                     : OUTPOST_EPROTO,
                           why);
            return;
        }
        data = plain.data;
        n_bytes = plain.len;
    }
    /* The next page is asked for now; this one waits, undecoded, until that PULL has left. */
    if (!s->held_bytes.data && ask_ahead(s, data, n_bytes)) {
        if (plain.data) {
            s->held_bytes = plain;
            return;
        }
        s->held_bytes.data = malloc(n_bytes ? n_bytes : 1);
        if (!s->held_bytes.data) {
            fail_transient(s, OUTPOST_ENOMEM, "out of memory");
            return;
        }
        memcpy(s->held_bytes.data, data, n_bytes);
        s->held_bytes.len = s->held_bytes.cap = n_bytes;
        return;
    }
    decode_and_handle(s, data, n_bytes);
    proto_buf_free(&plain);
}

static void cb_sent(void *user_data, size_t queued_bytes)
{
    outpost_sync *s = user_data;
    (void)queued_bytes;
    s->events++;
    send_chunks(s);
}

static void cb_closed(void *user_data, transport_close_reason reason, uint16_t peer_close_code,
                      const char *detail)
{
    outpost_sync *s = user_data;
    (void)peer_close_code;
    s->events++;
    bool was_idle = s->phase == PHASE_IDLE;
    (void)record_acks(s); /* answers that came before the close stand */
    held_bytes_handle(s); /* whole and in order: applied, as they would have been before the close */
    apply_held_page(s);
    s->asked_ahead = false;
    s->phase = PHASE_DISCONNECTED;
    s->awaiting_welcome = s->first_flight = s->pull_sent = false;
    drop_window(s);
    if (s->permanent)
        return;
    if (transport_close_is_certificate(reason)) {
        char why[300];
        snprintf(why, sizeof why, "the server's certificate was rejected (%s): %s",
                 transport_close_reason_name(reason), detail);
        stop_permanently(s, OUTPOST_ECERT, why);
        return;
    }
    if (reason == TRANSPORT_CLOSE_LOCAL && !s->attempt_failed)
        return; /* we hung up after a completed sync */
    if (!s->attempt_failed || was_idle) {
        char why[300];
        snprintf(why, sizeof why, "%s: %s", transport_close_reason_name(reason), detail);
        set_error(s, OUTPOST_EOFFLINE, "%s", why);
    }
    /* Kept in the replica for the next HELLO, should the app end before it. */
    char kept[sizeof s->status.last_error_msg];
    pthread_mutex_lock(&s->lock);
    memcpy(kept, s->status.last_error_msg, sizeof kept);
    pthread_mutex_unlock(&s->lock);
    kept[sizeof kept - 1] = '\0';
    if (kept[0] && replica_sync_error_set(s->r, kept) == OUTPOST_OK)
        s->error_kept = true;
    s->attempt_failed = false;
    uint32_t delay = backoff_next_delay_ms(&s->policy, &s->backoff, backoff_splitmix64,
                                           &s->rng_state);
    s->retry_at = mono_ms() + delay;
    pthread_mutex_lock(&s->lock);
    s->status.retry_in_ms = delay;
    pthread_mutex_unlock(&s->lock);
    set_activity(s, OUTPOST_ACTIVITY_OFFLINE);
}

/* ---- The thread ------------------------------------------------------------------------- */

static void connect_now(outpost_sync *s)
{
    s->retry_at = 0;
    s->debounce_at = 0;
    s->attempt_failed = false;
    if (transport_connect(s->t) == 0)
        set_activity(s, OUTPOST_ACTIVITY_CONNECTING);
}

/* Acts on what the app asked for and on the timers. */
static void drive(outpost_sync *s, bool want_sync, bool net_changed, int64_t wrote_at)
{
    int64_t now = mono_ms();
    if (s->permanent)
        return;
    /* Kept until a cycle begins: a request that comes mid-cycle (or while connecting) is
     * answered by the next cycle, not dropped. */
    if (want_sync)
        s->sync_asked = true;
    /* The hint's immediate attempt is the connect below; the schedule after it starts over. */
    if (net_changed)
        backoff_reset(&s->backoff);
    if (wrote_at)
        s->debounce_at = wrote_at + s->cfg.debounce_ms;

    transport_state ts = transport_get_state(s->t);
    if (ts == TRANSPORT_IDLE) {
        bool retry_due = s->retry_at && now >= s->retry_at;
        bool write_due = s->debounce_at && now >= s->debounce_at && !s->retry_at;
        if (s->sync_asked || net_changed || retry_due || write_due)
            connect_now(s);
        return;
    }
    if (ts == TRANSPORT_OPEN && s->phase == PHASE_IDLE &&
        (s->sync_asked || (s->debounce_at && now >= s->debounce_at) ||
         (s->keepalive_at && now >= s->keepalive_at)))
        begin_cycle(s);
}

/* Until the earliest timer; lws's own (pings, timeouts) end the wait earlier by themselves. */
static int next_wait_ms(const outpost_sync *s)
{
    /* Offline with a retry scheduled, the look waits for it: whatever it would find goes with
     * that attempt's push anyway (a found commit does not advance a scheduled retry). */
    int64_t now = mono_ms(), wait = s->retry_at ? s->retry_at - now : s->next_look - now;
    if (s->retry_at && s->retry_at - now < wait)
        wait = s->retry_at - now;
    if (s->debounce_at && s->debounce_at - now < wait)
        wait = s->debounce_at - now;
    if (s->phase == PHASE_IDLE && s->keepalive_at && s->keepalive_at - now < wait)
        wait = s->keepalive_at - now;
    return wait < 1 ? 1 : (int)wait;
}

/* Whether another connection (another process, or the app's handle when no commit listener
 * fired) committed since the last look: PRAGMA data_version changes exactly then. */
static bool others_committed(outpost_sync *s)
{
    sqlite3_stmt *st = NULL;
    bool changed = false;
    if (!s->r || sqlite3_prepare_v2(outpost_replica_db(s->r), "PRAGMA data_version", -1, &st,
                                    NULL) != SQLITE_OK)
        return false;
    if (sqlite3_step(st) == SQLITE_ROW) {
        int64_t v = sqlite3_column_int64(st, 0);
        changed = s->data_version && v != s->data_version;
        s->data_version = v;
    }
    sqlite3_finalize(st);
    return changed;
}

static const char *const wake_names[OUTPOST_WAKE_REASONS] = {"app", "timer", "network",
                                                             "other"};

/* Counts one turn of the loop under its reason (outpost_sync_wakes_for()). */
static void count_wake(outpost_sync *s, outpost_sync_wake_reason why)
{
    atomic_fetch_add(&s->wakes_for[why], 1);
    if (s->log_wakes)
        fprintf(stderr, "outpost sync: wake (%s) at %lld ms, phase %d, transport %d\n",
                wake_names[why], (long long)mono_ms(), (int)s->phase,
                (int)transport_get_state(s->t));
}

uint64_t outpost_sync_wakes_for(outpost_sync *sync, outpost_sync_wake_reason why)
{
    if (!sync || (unsigned)why >= OUTPOST_WAKE_REASONS)
        return 0;
    return (uint64_t)atomic_load(&sync->wakes_for[why]);
}

static void *sync_main(void *arg)
{
    outpost_sync *s = arg;
    s->next_look = mono_ms() + LOOK_INTERVAL_MS;
    connect_now(s);
    for (;;) {
        int64_t due = mono_ms() + next_wait_ms(s);
        uint64_t events = s->events;
        transport_service(s->t, next_wait_ms(s));
        if (s->held_bytes.data || s->held_page) {
            /* Write the queued PULL (a turn of lws without waiting), then the page. */
            for (int i = 0; i < HELD_FLUSH_TURNS && (s->held_bytes.data || s->held_page) &&
                            transport_queued_bytes(s->t);
                 i++)
                transport_service(s->t, -1);
            held_bytes_handle(s);
            apply_held_page(s);
        }
        (void)record_acks(s); /* what this turn received */
        atomic_fetch_add(&s->wakes, 1);
        pthread_mutex_lock(&s->lock);
        bool stopping = s->stopping, want = s->want_sync, net = s->net_changed;
        int64_t wrote = s->wrote ? s->last_write_mono : 0;
        s->want_sync = s->net_changed = s->wrote = false;
        pthread_mutex_unlock(&s->lock);
        count_wake(s, stopping || want || net || wrote ? OUTPOST_WAKE_APP
                      : s->events != events            ? OUTPOST_WAKE_NETWORK
                      : mono_ms() >= due               ? OUTPOST_WAKE_TIMER
                                                       : OUTPOST_WAKE_OTHER);
        if (stopping)
            break;
        int64_t now = mono_ms();
        if (now >= s->next_look || (s->phase != PHASE_PUSH && s->phase != PHASE_PULL)) {
            s->next_look = now + LOOK_INTERVAL_MS;
            if (others_committed(s) && !wrote)
                wrote = now;
        }
        drive(s, want, net, wrote);
    }
    (void)record_acks(s);
    drop_window(s);
    return NULL;
}

uint64_t outpost_sync_wakes(outpost_sync *sync)
{
    return sync ? (uint64_t)atomic_load(&sync->wakes) : 0;
}

void outpost_sync_handshakes(outpost_sync *sync, uint32_t *out_full, uint32_t *out_resumed)
{
    *out_full = *out_resumed = 0;
    if (sync)
        transport_handshakes(sync->t, out_full, out_resumed);
}

/* Called by the app's replica after each commit that made an outbox entry (its thread). */
static void on_local_commit(void *ctx)
{
    outpost_sync *s = ctx;
    pthread_mutex_lock(&s->lock);
    s->wrote = true;
    s->last_write_mono = mono_ms();
    pthread_mutex_unlock(&s->lock);
    transport_wake(s->t);
}

/* ---- Public API ------------------------------------------------------------------------- */

int outpost_sync_start(outpost_replica *replica, const outpost_sync_config *config,
                       outpost_sync **out_sync)
{
    char err[256];
    if (!replica || !out_sync)
        return OUTPOST_EINVAL;
    *out_sync = NULL;
    outpost_sync *s = calloc(1, sizeof *s);
    if (!s)
        return replica_fail(replica, OUTPOST_ENOMEM, "out of memory starting sync");
    if (config)
        s->cfg = *config;
    if (!s->cfg.debounce_ms)
        s->cfg.debounce_ms = DEFAULT_DEBOUNCE_MS;
    /* pull_page_rows 0 goes on the wire as PULL lim 0: the server's own cap (protocol 8.6). */
    s->policy.base_ms = s->cfg.retry_base_ms ? s->cfg.retry_base_ms : DEFAULT_RETRY_BASE_MS;
    s->policy.cap_ms = s->cfg.retry_cap_ms ? s->cfg.retry_cap_ms : DEFAULT_RETRY_CAP_MS;
    if (s->policy.cap_ms < s->policy.base_ms)
        s->policy.cap_ms = s->policy.base_ms;
    s->policy.jitter = BACKOFF_JITTER_FULL;
    s->rng_state = (uint64_t)mono_ms() ^ (uint64_t)(uintptr_t)s;
    proto_limits_default(&s->limits);
    s->rx_limits = s->limits;
    s->app = replica;
    s->log_wakes = getenv("OUTPOST_SYNC_DEBUG") != NULL;

    int rc = device_credentials_load(replica, &s->creds);
    if (rc != OUTPOST_OK)
        goto fail_free;
    rc = replica_open_sibling(replica, &s->r, err, sizeof err);
    if (rc != OUTPOST_OK) {
        replica_fail(replica, rc, "%s", err);
        goto fail_free;
    }
    transport_config tc = {
        .url = s->creds.url,
        .ca_pem = s->creds.ca_pem,
        .max_message_size = s->limits.max_message_bytes,
        .on_connected = cb_connected,
        .on_message = cb_message,
        .on_sent = cb_sent,
        .on_closed = cb_closed,
        .user_data = s,
    };
    if (transport_create(&tc, &s->t, err, sizeof err) != 0) {
        rc = replica_fail(replica, OUTPOST_EINVAL, "cannot set up the connection: %s", err);
        goto fail_close;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->changed, NULL);
    s->status.activity = OUTPOST_ACTIVITY_CONNECTING;
    replica_set_commit_listener(replica, on_local_commit, s);
    if (pthread_create(&s->thread, NULL, sync_main, s) != 0) {
        replica_set_commit_listener(replica, NULL, NULL);
        pthread_cond_destroy(&s->changed);
        pthread_mutex_destroy(&s->lock);
        rc = replica_fail(replica, OUTPOST_ENOMEM, "cannot start the sync thread");
        goto fail_transport;
    }
    *out_sync = s;
    return OUTPOST_OK;

fail_transport:
    transport_destroy(s->t);
fail_close:
    outpost_replica_close(s->r);
fail_free:
    device_credentials_clear(&s->creds);
    free(s);
    return rc;
}

void outpost_sync_stop(outpost_sync *sync)
{
    if (!sync)
        return;
    replica_set_commit_listener(sync->app, NULL, NULL);
    pthread_mutex_lock(&sync->lock);
    sync->stopping = true;
    pthread_mutex_unlock(&sync->lock);
    transport_wake(sync->t);
    pthread_join(sync->thread, NULL);
    transport_destroy(sync->t);
    proto_msg_free(sync->held_page);
    proto_buf_free(&sync->held_bytes);
    end_compression(sync);
    outpost_replica_close(sync->r);
    device_credentials_clear(&sync->creds);
    pthread_cond_destroy(&sync->changed);
    pthread_mutex_destroy(&sync->lock);
    free(sync);
}

static void poke(outpost_sync *s, bool *flag)
{
    pthread_mutex_lock(&s->lock);
    *flag = true;
    pthread_mutex_unlock(&s->lock);
    transport_wake(s->t);
}

void outpost_sync_now(outpost_sync *sync)
{
    if (sync)
        poke(sync, &sync->want_sync);
}

void outpost_sync_network_changed(outpost_sync *sync)
{
    if (sync)
        poke(sync, &sync->net_changed);
}

void outpost_sync_get_status(outpost_sync *sync, outpost_sync_status *out_status)
{
    pthread_mutex_lock(&sync->lock);
    *out_status = sync->status;
    pthread_mutex_unlock(&sync->lock);
}

int outpost_sync_wait(outpost_sync *sync, uint64_t after_count, uint32_t timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)(timeout_ms / 1000);
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    int rc = OUTPOST_ETIMEOUT;
    pthread_mutex_lock(&sync->lock);
    for (;;) {
        if (sync->status.syncs_completed > after_count) {
            rc = OUTPOST_OK;
            break;
        }
        if (sync->stopped) {
            rc = sync->status.last_error ? sync->status.last_error : OUTPOST_ESERVER;
            break;
        }
        if (pthread_cond_timedwait(&sync->changed, &sync->lock, &deadline) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&sync->lock);
    return rc;
}
