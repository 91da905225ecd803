/*
 * One device's sync session: the state machine behind a wss://HOST:PORT/sync connection.
 *
 *   GREETING --HELLO ok--> READY --(PUSH chunks, PULL)*--> ...
 *      |  \--ENROLL ok--> GREETING (the device may HELLO on the same connection)
 *      \--anything else, bad auth, lockout, timeout--> CLOSING
 *
 * At most one message is handled at a time: while a store job runs or a reply waits to be
 * written, the connection is rx-flow-controlled, so a fast client is slowed down by TCP instead
 * of making the server buffer. The exception is PUSH: while only PUSH entries are outstanding,
 * the session reads up to SESSION_PUSHES_AHEAD of them (and SESSION_PUSH_AHEAD_BYTES, counted in
 * the server's held bytes) ahead, so that the worker can merge several in one store transaction
 * (group commit, job.h); their answers go out in order. Replies go out only from the WRITEABLE
 * callback, in fragments, with LWS_PRE headroom.
 *
 * The struct is lws's per-session data for the outpost.1 protocol (lws allocates and zeroes
 * it). Service thread only.
 */
#ifndef OUTPOSTD_SESSION_H
#define OUTPOSTD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "job.h"
#include "server.h"

typedef enum session_state {
    SESSION_GREETING = 0, /* waiting for HELLO or ENROLL */
    SESSION_READY,        /* authenticated: PUSH and PULL */
    SESSION_CLOSING       /* a final message is queued; what arrives is discarded */
} session_state;

/* PUSH entries a session takes ahead: jobs out plus answers not yet written. */
enum { SESSION_PUSHES_AHEAD = 8 };
#define SESSION_PUSH_AHEAD_BYTES (8u * 1024u * 1024u)

/* A reply waiting to be written, in order. */
typedef struct session_reply {
    struct session_reply *next;
    proto_buf buf;
    bool closes, sensitive;
    bool push; /* the answer to a PUSH */
} session_reply;

typedef struct session {
    struct lws *wsi;
    server *srv;
    uint64_t id;
    uint32_t slot;
    bool has_slot;
    char peer[64];
    session_state state;
    /* The jobs submitted, oldest first, until they come back (they may wait in the server):
     * several only when all are PUSHes. pending_bytes: the held bytes of each PUSH. */
    struct job *pending[SESSION_PUSHES_AHEAD];
    size_t pending_bytes[SESSION_PUSHES_AHEAD];
    uint32_t n_pending;
    uint32_t n_pending_other; /* of them, not PUSH */
    size_t pending_push_bytes;
    push_chain *chain;   /* shared by this connection's PUSH jobs (job.h) */
    /* CLOSING with jobs still out: their answers go first, then this final ERROR. */
    bool draining;
    proto_buf deferred_error;
    bool answering; /* inside session_job_done */
    bool authenticated;
    store_device device; /* the daemon's copy (device_copy) once authenticated */
    /* HELLO's `ack` is above what this store recorded (it went back in time, so requests sent
     * behind HELLO may be out of seq order for it), or HELLO names another store: each request
     * is refused (docs/protocol.md 8.2). */
    bool store_behind, other_store;
    uint64_t hello_acked;

    /* Reassembly of one message from its fragments. */
    uint8_t *rx;
    size_t rx_len, rx_cap;
    bool rx_in_message;
    bool rx_text;

    /* The PUSH chunks of one transaction so far, kept as received (each a 4-byte length, then
     * the message's bytes): the worker decodes them once, when the last chunk is in. */
    uint8_t *txn;
    size_t txn_len, txn_cap;
    uint32_t n_chunks;
    uint64_t txn_seq, txn_hlc;
    /* Bytes of rx and txn this session counts in the server's held_bytes. */
    size_t held;

    /* Sending: the queued replies, then the message being written. */
    session_reply *replies, *replies_tail;
    uint32_t n_replies, n_push_replies;
    uint8_t *tx; /* LWS_PRE + tx_len bytes */
    size_t tx_len, tx_off;
    bool tx_closes, tx_sensitive, tx_push;
    bool notify_pending;
    bool notify_outstanding; /* a NOTIFY went out and the device has not pulled since */
    uint64_t notify_seq;
    uint64_t notified_seq; /* the newest change this session was told of (session_notify) */

    /* The one deadline that applies now: handshake, message or idle. */
    lws_sorted_usec_list_t timer;
    uint64_t handshake_deadline_us;

    uint32_t n_pushes, n_pulls;
    /* The pull chain (docs/protocol.md PULL; session.c pull_chain), once there is one: it began
     * at pull_origin and its pages reached pull_reached, the last one saying pull_more. A PULL
     * without `seen` is judged from pull_origin. */
    bool pull_chained;
    uint64_t pull_origin, pull_reached;
    bool pull_more;

    /* Compression (docs/protocol.md, "Compression"): both streams exist once WELCOME accepted
     * the device's offer; WELCOME itself goes out plain. */
    proto_zstream *zin, *zout;
    bool z_welcome_plain; /* the next message written is the WELCOME: send it plain */
} session;

int session_open(session *s, server *srv, struct lws *wsi);
int session_receive(session *s, const void *in, size_t len);
int session_writeable(session *s);
void session_close(session *s);

/* Takes ownership of a finished job this session submitted. */
void session_job_done(session *s, job *j);

/* Logs a finished push (INFO): what was applied, refused or answered again, also when the
 * device's connection closed before the reply could go, so the log accounts for every apply. */
void session_log_push(const job *j, bool connection_gone);

/* Ends the session because the same device authenticated on a newer connection. */
void session_replace(session *s);

/* Ends the session of a device revoked (or whose worker was disabled) since it authenticated:
 * ERROR 4 with retry true, so the device's next HELLO hears whether to wipe. */
void session_barred(session *s);

/* Ends the session with ERROR 9 (retry): the store's database was replaced under outpostd. */
void session_store_replaced(session *s);

/* Tells the session's device that rows in its scope changed: at most one NOTIFY is outstanding
 * until the device pulls; later changes before that pull send nothing more. */
void session_notify(session *s, uint64_t server_seq);

/* Whether any of the session's teams is in teams[0..n). */
bool session_in_teams(const session *s, const char (*teams)[64], uint32_t n);

#endif /* OUTPOSTD_SESSION_H */
