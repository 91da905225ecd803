/*
 * liboutpost sync: enrollment and the automatic sync engine. Included by <outpost.h>.
 *
 * Threading model: the sync engine runs on a thread the library owns, started by
 * outpost_sync_start() and joined by outpost_sync_stop(). That thread uses a second SQLite
 * connection to the same replica file (WAL lets it read and write while the app's handle does
 * the same), opened on the app handle's encryption keys (they are not asked for again), so the app keeps using its own outpost_replica from its own threads exactly as
 * before; the two never share a connection. Every outpost_sync_* function may be called from any
 * thread. Callbacks in outpost_sync_config run on the sync thread: they must return quickly and
 * must not call outpost_sync_stop().
 *
 * What the engine does by itself:
 *   - shortly after the app commits a write (debounce_ms, default 1 s) it syncs;
 *   - after outpost_sync_network_changed() it tries at once;
 *   - while the server is unreachable it retries with exponential backoff and full jitter
 *     (1 s doubling to a 5 minute cap by default), so a dead server is not hammered;
 *   - when connected it stays connected and pulls again whenever the server sends NOTIFY.
 * A sync is: HELLO; push every outbox entry in commit order, one at a time, each removed only
 * when its ACK (or REJECT) arrives, big entries in chunks; then pull pages until there are no
 * more, each page applied with its cursor in one local transaction. A connection cut at any
 * byte loses nothing: an entry whose answer was lost is pushed again, and the server answers
 * it from its record of applied and refused entries (the same ACK or REJECT), never applying
 * it twice. A refused entry goes to quarantine (outpost.h) with the worker's values.
 *
 * A central store restored from a backup is noticed at HELLO: its epoch changed, or it
 * acknowledges less than it did, or its newest sequence is behind this device's cursor. The
 * engine then puts every acknowledged entry it still keeps (outpost_config.sent_retention_days)
 * above what the store has back in the outbox, pushes them, and pulls again from cursor 0; the
 * outbox count (pending) is non-zero until they are acknowledged again.
 *
 * Errors the app can act on come through the status callback as last_error:
 *   OUTPOST_EOFFLINE (transient, retried), OUTPOST_ECERT (the server's certificate is not the
 *   one pinned at enrollment: the engine stops), OUTPOST_EAUTH and OUTPOST_EREVOKED (stops),
 *   OUTPOST_ESCHEMA (the server's schema cannot be installed: stops), OUTPOST_EOTHERSTORE (the
 *   server is another central store than the one this replica synced with: stops, nothing
 *   sent), OUTPOST_ESEQ (the server refuses an entry numbered below what it recorded from this
 *   device: the replica's counter went back; stops, the outbox is kept), OUTPOST_ESERVER
 *   (transient). When the server orders a wipe, the replica's files are deleted, on_wiped runs
 *   and the engine stops; the app must then close its replica handle, whose every call
 *   returns OUTPOST_EWIPED.
 */
#ifndef OUTPOST_SYNC_H
#define OUTPOST_SYNC_H

#ifndef OUTPOST_H
#error "include <outpost.h>, not <outpost_sync.h>"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Enrollment: turn a one-time code from the office into this device's credentials.
 */
typedef struct outpost_enroll_options {
    const char *url;         /* wss://host:port/sync */
    const char *code;        /* the one-time code, as typed (case and dashes do not matter) */
    /* How to trust the server during enrollment, exactly one of: */
    const char *pin;         /* SHA-256 of the server certificate, 64 hex digits (from the QR) */
    const char *ca_pem;      /* the office's CA certificate, PEM */
    const char *device_name; /* optional label shown to the office */
    uint32_t timeout_ms;     /* whole enrollment; 0 = 30 s */
} outpost_enroll_options;

/* Enrolls the device: connects (verifying the server by pin or CA, never neither), sends the
 * code, stores the device id, secret, server URL and the CA the server sends (pinned for every
 * later connection) in the replica, and installs the schema. Blocks the calling thread.
 * Errors: OUTPOST_EINVAL (bad options or URL), OUTPOST_EOFFLINE, OUTPOST_ECERT,
 * OUTPOST_EENROLL (code unknown, used or expired), OUTPOST_EEXISTS (already enrolled),
 * OUTPOST_ETIMEOUT, OUTPOST_ESCHEMA. outpost_errmsg(replica) says more. */
OUTPOST_API int outpost_enroll(outpost_replica *replica, const outpost_enroll_options *options);

/* The text of an enrollment QR code, "outpost://HOST:PORT/enroll?code=CODE&pin=HEX", split
 * into options (url becomes wss://HOST:PORT/sync). The strings point into buf, which must
 * outlive options. Returns OUTPOST_EINVAL when the text is not such a URI. */
OUTPOST_API int outpost_enroll_parse_uri(const char *uri, char *buf, size_t buf_size,
                                         outpost_enroll_options *out_options);

/* Whether this replica holds device credentials: OUTPOST_OK when it does (out_device_id, which
 * may be NULL, then receives the id), OUTPOST_ENOTENROLLED when it does not, another negative
 * code when the replica cannot be read. */
OUTPOST_API int outpost_device_id(outpost_replica *replica, char out_device_id[40]);

/* ---------------------------------------------------------------------------------------------
 * The sync engine.
 */
typedef enum outpost_activity {
    OUTPOST_ACTIVITY_STOPPED = 0, /* not running, or stopped for good on a permanent error */
    OUTPOST_ACTIVITY_OFFLINE,     /* server unreachable; a retry is scheduled */
    OUTPOST_ACTIVITY_CONNECTING,
    OUTPOST_ACTIVITY_PUSHING,
    OUTPOST_ACTIVITY_PULLING,
    OUTPOST_ACTIVITY_IDLE         /* connected and up to date; waiting for writes or NOTIFY */
} outpost_activity;

/* A short English name for an activity ("pushing", ...). */
OUTPOST_API const char *outpost_activity_name(outpost_activity activity);

typedef struct outpost_sync_status {
    outpost_activity activity;
    uint64_t push_done;       /* entries acknowledged in the current sync */
    uint64_t push_total;      /* entries to push in the current sync (grows with new writes) */
    uint64_t rows_pushed;     /* row changes acknowledged in the current sync */
    uint64_t rows_pulled;     /* rows applied in the current sync */
    uint64_t bytes_sent;      /* WebSocket payload bytes, since start */
    uint64_t bytes_received;
    uint64_t pending;         /* outbox entries waiting */
    uint64_t syncs_completed; /* full push+pull cycles since start */
    int64_t last_sync_ms;     /* last completed sync (wall clock), 0 when never */
    uint32_t retry_in_ms;     /* OFFLINE: time to the next attempt */
    int last_error;           /* OUTPOST_OK, or why the last attempt failed */
    char last_error_msg[256];
    uint64_t rejected;        /* refused changes waiting in quarantine (outpost.h): while it is
                               * not 0, nothing may say "synced" */
    uint64_t round_trips;     /* since start: requests sent while no other was unanswered, so
                               * each one waited a whole network round trip (HELLO, a PULL
                               * page, a PUSH window that had drained) */
    int compressed;           /* 1 while the connection's messages are compressed */
} outpost_sync_status;

/* Called on the sync thread whenever the status changes (activity, progress, error). */
typedef void (*outpost_sync_status_cb)(void *user_data, const outpost_sync_status *status);

/* The server ordered a wipe and the replica's files are gone. Close the app's handle now. */
typedef void (*outpost_wiped_cb)(void *user_data, const char *reason);

/* Zero-initialise, then set what you need; everything is copied. */
typedef struct outpost_sync_config {
    outpost_sync_status_cb on_status; /* optional */
    outpost_wiped_cb on_wiped;        /* optional */
    void *user_data;
    uint32_t debounce_ms;     /* after a local write; 0 = 1000 */
    uint32_t retry_base_ms;   /* first retry delay scale; 0 = 1000 */
    uint32_t retry_cap_ms;    /* longest retry delay; 0 = 900000 (15 minutes) */
    uint32_t pull_page_rows;  /* rows per pull page; 0 = as many as the server allows (its
                               * `page` limit, 4,000 by default; a page also stays within its
                               * message limit, 1 MiB by default) */
    int stay_connected;       /* 1: keep the connection and pull on NOTIFY; 0: hang up after
                               * each sync and reconnect on the next trigger */
    int no_compression;       /* 1: do not offer compressed messages (docs/protocol.md,
                               * "Compression"); 0: offer them, the server decides */
} outpost_sync_config;

typedef struct outpost_sync outpost_sync;

/* Starts the engine for an enrolled replica and begins a first sync at once. The replica
 * handle must stay open until outpost_sync_stop() returns. OUTPOST_ENOTENROLLED when the
 * replica has no credentials. */
OUTPOST_API int outpost_sync_start(outpost_replica *replica, const outpost_sync_config *config,
                                   outpost_sync **out_sync);

/* Stops the engine: closes the connection (an entry in flight stays in the outbox and is
 * resent next time, harmlessly) and joins the thread. NULL is a no-op. */
OUTPOST_API void outpost_sync_stop(outpost_sync *sync);

/* Asks for a sync now (ignoring the backoff schedule). */
OUTPOST_API void outpost_sync_now(outpost_sync *sync);

/* The app saw the network change (Wi-Fi joined, mobile data back): retry at once and restart
 * the backoff schedule. */
OUTPOST_API void outpost_sync_network_changed(outpost_sync *sync);

/* A copy of the current status. */
OUTPOST_API void outpost_sync_get_status(outpost_sync *sync, outpost_sync_status *out_status);

/* Blocks until syncs_completed exceeds after_count, the engine stops, or timeout_ms passes.
 * Returns OUTPOST_OK when a sync completed, the permanent error when the engine stopped, or
 * OUTPOST_ETIMEOUT. For tools and tests; apps use the status callback. */
OUTPOST_API int outpost_sync_wait(outpost_sync *sync, uint64_t after_count, uint32_t timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* OUTPOST_SYNC_H */
