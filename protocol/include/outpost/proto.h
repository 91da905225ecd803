/*
 * Outpost wire protocol: typed messages, MessagePack encode and bounded decode.
 *
 * Pure code over buffers: no sockets, no files, no globals. Both the device library and the
 * server link it. docs/protocol.md is the language-neutral description of the same format.
 *
 * Every message is one MessagePack map with a small unsigned integer under key "t" (the message
 * type) and the message's fields under short string keys. Unknown keys are ignored (forward
 * compatibility); an unknown "t" is PROTO_EUNKNOWN_TYPE.
 *
 * Decoding never hands untrusted bytes straight to msgpack-c: proto_decode() first walks the
 * input with a bounded structural check (declared lengths no longer than the bytes left, nesting
 * no deeper than proto_limits.max_depth, whole message no larger than max_message_bytes), and
 * only then unpacks it.
 *
 * Thread safety: every function is reentrant; a proto_msg or proto_buf must not be used by two
 * threads at once.
 */
#ifndef OUTPOST_PROTO_H
#define OUTPOST_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the wire protocol this library speaks; travels in HELLO and ENROLL. */
#define PROTO_VERSION 1u

/* ---------------------------------------------------------------------------------------------
 * Results of encode and decode. 0 is success; failures are negative and only ever appended.
 */
enum {
    PROTO_OK = 0,
    PROTO_ENOMEM = -1,        /* allocation failed */
    PROTO_ETRUNCATED = -2,    /* input ends inside a value */
    PROTO_ETRAILING = -3,     /* bytes left after the one top-level value */
    PROTO_ETOOBIG = -4,       /* message, string, blob or array beyond a limit */
    PROTO_EDEPTH = -5,        /* nesting deeper than the limit */
    PROTO_ETYPE = -6,         /* a field has the wrong MessagePack type */
    PROTO_EMISSING = -7,      /* a required field is absent */
    PROTO_ERANGE = -8,        /* a value is outside its allowed range */
    PROTO_EUNKNOWN_TYPE = -9, /* "t" names no message this version knows */
    PROTO_EMALFORMED = -10,   /* not MessagePack at all (reserved byte 0xc1, bad ext, ...) */
    PROTO_EINVAL = -11        /* encode: the struct given is not a valid message */
};

/* A short, static English text for a PROTO_* result. Never NULL. */
const char *proto_strerror(int rc);

/* ---------------------------------------------------------------------------------------------
 * Limits. Zero-initialise and call proto_limits_default(), then tighten or loosen fields.
 */
typedef struct proto_limits {
    size_t max_message_bytes; /* whole encoded message; default 1 MiB */
    uint32_t max_depth;       /* nesting of arrays and maps, the top-level map being 1;
                                 default 8; values above 32 act as 32 (msgpack-c's own stack) */
    uint32_t max_items;       /* elements of any one array or map; default 65536 */
    size_t max_bytes_value;   /* one string or blob; default 1 MiB */
} proto_limits;

void proto_limits_default(proto_limits *out_limits);

/* ---------------------------------------------------------------------------------------------
 * SQLite values. Text and blob are (pointer, length) views; text is UTF-8 without a NUL
 * terminator requirement. PROTO_UNDEF marks a column a change does not carry (for an UPDATE,
 * an unchanged column), exactly like an undefined value in a SQLite changeset.
 */
typedef enum proto_value_type {
    PROTO_UNDEF = 0,
    PROTO_NULL = 1,
    PROTO_INT = 2,
    PROTO_REAL = 3,
    PROTO_TEXT = 4,
    PROTO_BLOB = 5
} proto_value_type;

typedef struct proto_value {
    proto_value_type type;
    union {
        int64_t i;
        double r;
        struct {
            const uint8_t *p;
            uint32_t n;
        } b; /* PROTO_TEXT and PROTO_BLOB */
    } u;
} proto_value;

/* Exact equality as SQLite's IS would see it (type and value; REAL compared bitwise). */
bool proto_value_equal(const proto_value *a, const proto_value *b);

/* ---------------------------------------------------------------------------------------------
 * Row changes: what one device transaction did to one row, taken from its session changeset.
 *
 * Columns are named by index in the table's column list (the order of SCHEMA's "cols"). Schema
 * upgrades only append columns, so an index means the same column in every schema version.
 *
 * INSERT carries new values of every column; DELETE carries old values of every column; UPDATE
 * carries old values of the primary key columns and of the changed columns, and new values of
 * the changed columns. A proto_col with both values PROTO_UNDEF is invalid.
 */
typedef enum proto_op {
    PROTO_OP_INSERT = 1,
    PROTO_OP_UPDATE = 2,
    PROTO_OP_DELETE = 3
} proto_op;

typedef struct proto_col {
    uint32_t idx;        /* column index; strictly ascending within a change */
    proto_value old_val; /* PROTO_UNDEF for INSERT, and for UPDATE columns that are not carried */
    proto_value new_val; /* PROTO_UNDEF for DELETE, and for the unchanged pk columns of UPDATE */
} proto_col;

typedef struct proto_change {
    proto_op op;
    uint32_t n_cols;
    proto_col *cols;
} proto_change;

/* The changes of one transaction to one table. n_columns is how many columns the table has in
 * the sender's schema: INSERT and DELETE carry exactly that many values. */
typedef struct proto_table_changes {
    const char *table; /* NUL-terminated */
    uint32_t n_columns;
    uint32_t n_changes;
    proto_change *changes;
} proto_table_changes;

/* Full current rows of one table, as the server sends them (ROWS, REJECT). Each row has
 * n_columns values in column order, none PROTO_UNDEF. Deletions name only the primary key, in
 * primary-key order (SCHEMA's "pk"). */
typedef struct proto_table_rows {
    const char *table;
    uint32_t n_columns;
    uint32_t n_rows;
    proto_value *rows; /* n_rows * n_columns values, row-major */
    uint32_t n_pk;     /* primary key columns per deletion */
    uint32_t n_deleted;
    proto_value *deleted; /* tombstones: rows deleted on the server; n_deleted * n_pk values */
    uint32_t n_removed;
    proto_value *removed; /* rows that left this device's scope; n_removed * n_pk values */
} proto_table_rows;

/* ---------------------------------------------------------------------------------------------
 * Schema: the server owns it. Each table is a CREATE TABLE statement plus its sync policy.
 */
typedef enum proto_policy {
    PROTO_POLICY_HLC = 0,        /* column-level merge, later hybrid logical clock wins */
    PROTO_POLICY_SERVER_WINS = 1,
    PROTO_POLICY_DEVICE_WINS = 2
} proto_policy;

typedef struct proto_schema_table {
    const char *name;
    const char *create_sql; /* the CREATE TABLE statement, as written by the admin */
    const char *scope_col;  /* scope column name, e.g. "team_id" */
    proto_policy policy;
    uint32_t n_columns;
    const char **columns; /* column names in order */
    uint32_t n_pk;
    uint32_t *pk; /* indexes into columns, in primary key order */
} proto_schema_table;

typedef struct proto_schema {
    uint32_t version;
    uint32_t n_tables;
    proto_schema_table *tables;
    const char *forms; /* the forms (docs/forms.md) as one JSON array text; NULL: none sent */
    const char *watch_json; /* the schema package's watch rules (docs/watch.md); NULL: none */
} proto_schema;

/* Hybrid logical clock: milliseconds since the Unix epoch in the high 48 bits, a logical
 * counter in the low 16 bits. Compared as plain unsigned integers. */
#define PROTO_HLC_MAKE(ms, counter) (((uint64_t)(ms) << 16) | ((uint64_t)(counter) & 0xffffu))
#define PROTO_HLC_MS(hlc) ((uint64_t)(hlc) >> 16)
#define PROTO_HLC_COUNTER(hlc) ((uint32_t)((hlc) & 0xffffu))

/* ---------------------------------------------------------------------------------------------
 * Codes the server sends in ERROR and REJECT; a client should act on the code, not the text.
 */
typedef enum proto_error_code {
    PROTO_ERR_BAD_MESSAGE = 1,       /* malformed or out-of-order message */
    PROTO_ERR_VERSION = 2,           /* protocol version not supported */
    PROTO_ERR_AUTH = 3,              /* unknown device or wrong secret */
    PROTO_ERR_REVOKED = 4,           /* device revoked (a WIPE may follow) */
    PROTO_ERR_LOCKED_OUT = 5,        /* too many failed attempts from this address */
    PROTO_ERR_SCHEMA_TOO_OLD = 6,    /* device schema cannot be brought to the server's (outpostd:
                                        HELLO sv newer than its own) */
    PROTO_ERR_TOO_LARGE = 7,         /* message or transaction over the server's limit */
    PROTO_ERR_BUSY = 8,              /* server overloaded; retry later */
    PROTO_ERR_INTERNAL = 9,          /* server fault; retry later */
    PROTO_ERR_ENROLL_CODE = 10,      /* enrollment code unknown, used or expired */
    PROTO_ERR_STORE_FULL = 11,       /* server storage full; retry later */
    PROTO_ERR_TIMEOUT = 12,          /* handshake or message too slow */
    PROTO_ERR_SEQ_REWOUND = 13,      /* PUSH seq below the highest this server recorded for the
                                        device, and never received: the device's counter went
                                        back (docs/protocol.md, sequence rules) */
    PROTO_ERR_CURSOR_AHEAD = 14,     /* PULL cursor beyond the server's newest sequence: the
                                        store went back in time; pull again from 0 */
    /* Per-row REJECT reasons */
    PROTO_ERR_OUT_OF_SCOPE = 20,     /* row's scope value not one of the device's teams */
    PROTO_ERR_UNKNOWN_TABLE = 21,
    PROTO_ERR_UNKNOWN_COLUMN = 22,
    PROTO_ERR_CONSTRAINT = 23,       /* the store refused the row (NOT NULL, CHECK, type) */
    PROTO_ERR_INVALID_CHANGE = 24,   /* change is self-inconsistent (missing pk, wrong count) */
    PROTO_ERR_ROW_TOO_LARGE = 25     /* the row would be larger than one ROWS page can carry */
} proto_error_code;

/* A static English name for a proto_error_code ("out of scope", ...); "unknown" otherwise. */
const char *proto_error_code_name(uint32_t code);

/* Conflict kinds, in SQLite session vocabulary. */
typedef enum proto_conflict_kind {
    PROTO_CONFLICT_DATA = 1,      /* column's central value differed from the change's old value */
    PROTO_CONFLICT_NOTFOUND = 2,  /* update or delete of a row deleted centrally */
    PROTO_CONFLICT_CONFLICT = 3,  /* insert of a primary key that exists; delete of a changed row */
    PROTO_CONFLICT_CONSTRAINT = 4
} proto_conflict_kind;

/* A decision the merge took against the receiving device's write. */
typedef struct proto_conflict {
    const char *table;
    uint32_t n_pk;
    proto_value *pk;      /* primary key values */
    int32_t col;          /* column index, or -1 when the whole row was decided */
    proto_conflict_kind kind;
    proto_value mine;     /* the value this device wrote (PROTO_UNDEF for row decisions) */
    proto_value winner;   /* the value the store kept */
} proto_conflict;

/* Why one row of a push was refused. */
typedef struct proto_reject_row {
    const char *table;
    uint32_t n_pk;
    proto_value *pk;
    uint32_t code; /* proto_error_code, PROTO_ERR_OUT_OF_SCOPE .. */
    const char *message;
} proto_reject_row;

/* ---------------------------------------------------------------------------------------------
 * Messages.
 */
typedef enum proto_msg_type {
    PROTO_MSG_HELLO = 1,    /* device -> server: authenticate, open a sync session */
    PROTO_MSG_WELCOME = 2,  /* server -> device: authenticated */
    PROTO_MSG_ENROLL = 3,   /* device -> server: one-time code */
    PROTO_MSG_ENROLLED = 4, /* server -> device: credentials, pin and schema */
    PROTO_MSG_SCHEMA = 5,   /* server -> device: the current schema */
    PROTO_MSG_PUSH = 6,     /* device -> server: one chunk of one outbox entry */
    PROTO_MSG_ACK = 7,      /* server -> device: an outbox entry is applied */
    PROTO_MSG_PULL = 8,     /* device -> server: rows since a cursor */
    PROTO_MSG_ROWS = 9,     /* server -> device: one page of rows */
    PROTO_MSG_NOTIFY = 10,  /* server -> device: something in your scope changed */
    PROTO_MSG_REJECT = 11,  /* server -> device: an outbox entry was refused, not applied */
    PROTO_MSG_ERROR = 12,   /* either way: session-level error */
    PROTO_MSG_WIPE = 13     /* server -> device: erase the replica now */
} proto_msg_type;

const char *proto_msg_type_name(uint32_t type); /* "HELLO", ...; "unknown" otherwise */

typedef struct proto_hello {
    uint32_t version;
    const char *device_id;
    uint8_t secret[32];
    uint32_t schema_version;
    uint64_t cursor;       /* server sequence up to which this device has pulled */
    uint64_t outbox_count; /* entries waiting to be pushed (informational) */
    /* Optional, informational, for the supervisors' device view; NULL when absent. */
    const char *app;        /* the app and library version, e.g. "outpost 0.9.0" */
    const char *last_error; /* the device's last sync error before this session ("" none) */
    uint32_t compress;     /* optional "z": PROTO_COMPRESS_DEFLATE offers compressed messages
                              (the device's may start right after HELLO, docs/protocol.md 1.1);
                              0 (absent on the wire) offers none */
    bool has_acked;        /* optional "ack": the highest seq this store acknowledged to the
                              device, as the device remembers it (docs/protocol.md 8.2) */
    uint64_t acked;
    const char *store_id;  /* optional "store": the store the device syncs with; NULL = none */
} proto_hello;

/* The teams whose rows a device may see and write: its worker's teams. */
typedef struct proto_teams {
    uint32_t n;
    const char **names; /* NUL-terminated */
} proto_teams;

/* Which central store a device talks to, and which life of it. A store keeps its id for ever;
 * its epoch grows when it is restored from a backup, so everything a device was told before
 * (acknowledged seqs, the pull cursor) may no longer hold. */
typedef struct proto_store_identity {
    const char *id; /* NUL-terminated, opaque (a UUID today) */
    uint64_t epoch; /* first epoch is 1 */
} proto_store_identity;

/* What the server enforces on this session, advertised so a client need not assume it.
 * 0 in a timeout means "never". */
typedef struct proto_session_limits {
    uint64_t max_message_bytes;     /* one WebSocket message */
    uint64_t max_transaction_bytes; /* all PUSH chunks of one outbox entry together */
    uint32_t message_timeout_ms;    /* first to last fragment of one message, and between the
                                       chunks of one PUSH */
    uint32_t idle_timeout_ms;       /* session with no message from the device */
    uint32_t max_page_rows;         /* the server's own cap on rows in one ROWS */
} proto_session_limits;

typedef struct proto_welcome {
    uint32_t version;
    uint32_t schema_version;
    uint64_t acked_seq;   /* highest device seq the server has applied for this device */
    uint64_t server_seq;  /* newest server sequence now */
    uint64_t server_time_ms;
    bool has_schema;      /* schema below is present: the device's version is older */
    proto_schema schema;
    bool has_teams;       /* optional fields below are present (encode: send them) */
    proto_teams teams;
    bool has_store;
    proto_store_identity store;
    bool has_limits;
    proto_session_limits limits;
    uint32_t compress;    /* optional "z": the compression both sides use after WELCOME, only
                             ever one the HELLO offered; 0 (absent) means none */
    const char *worker_id; /* optional: the device's worker; NULL = absent (older servers) */
} proto_welcome;

typedef struct proto_enroll {
    uint32_t version;
    const char *code;
    const char *device_name; /* optional label; may be NULL */
} proto_enroll;

typedef struct proto_enrolled {
    const char *device_id;
    uint8_t secret[32];
    const char *ca_pem; /* certificate the device pins for every later connection */
    proto_schema schema;
    bool has_teams;
    proto_teams teams;
    bool has_store;
    proto_store_identity store;
    const char *worker_id; /* optional: the device's worker; NULL = absent (older servers) */
} proto_enrolled;

/* One PUSH carries one chunk of one outbox entry. A transaction that does not fit one message
 * is sent as chunks 0..n-1 with the same seq and hlc, "more" set on all but the last; the server
 * applies the entry atomically after the last chunk and answers one ACK or REJECT. */
typedef struct proto_push {
    uint64_t seq; /* device sequence, strictly increasing per device, first is 1 */
    uint64_t hlc;
    uint32_t schema_version;
    uint32_t chunk;
    bool more;
    uint32_t n_tables;
    proto_table_changes *tables;
} proto_push;

typedef struct proto_ack {
    uint64_t seq;
    uint64_t server_seq;   /* server sequence of the applied entry (0 if a replay) */
    bool hlc_clamped;      /* the device clock ran ahead; the server used its own */
    uint32_t n_conflicts;  /* decisions against this device's writes in this entry */
    proto_conflict *conflicts;
    uint32_t n_unlisted;   /* further such decisions the server did not list (`cmore`, optional
                            * on the wire: absent is 0), to keep the ACK within `msg` */
} proto_ack;

typedef struct proto_pull {
    uint64_t cursor;
    uint32_t limit;  /* rows per page the device can take */
    bool has_seen;   /* optional "seen": the cursor at which the device last completed a pull */
    uint64_t seen;
} proto_pull;

typedef struct proto_rows {
    uint64_t cursor; /* the device stores this after applying the page */
    bool more;       /* pull again */
    uint32_t n_tables;
    proto_table_rows *tables;
} proto_rows;

typedef struct proto_notify {
    uint64_t server_seq;
} proto_notify;

typedef struct proto_reject {
    uint64_t seq; /* the outbox entry refused; none of it was applied */
    uint32_t n_rows;
    proto_reject_row *rows;
    uint32_t n_tables;
    proto_table_rows *tables; /* the server's current version of the affected rows */
} proto_reject;

typedef struct proto_error {
    uint32_t code; /* proto_error_code */
    const char *message;
    bool retryable;
} proto_error;

typedef struct proto_wipe {
    const char *reason;
} proto_wipe;

typedef struct proto_msg {
    proto_msg_type type;
    union {
        proto_hello hello;
        proto_welcome welcome;
        proto_enroll enroll;
        proto_enrolled enrolled;
        proto_schema schema;
        proto_push push;
        proto_ack ack;
        proto_pull pull;
        proto_rows rows;
        proto_notify notify;
        proto_reject reject;
        proto_error error;
        proto_wipe wipe;
    } u;
    struct proto_arena *arena; /* set by proto_decode; owns every pointer above */
} proto_msg;

/* ---------------------------------------------------------------------------------------------
 * Encoding.
 */
typedef struct proto_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} proto_buf;

/* Frees the buffer's storage and zeroes it. NULL is a no-op. */
void proto_buf_free(proto_buf *buf);

/* Appends the encoding of msg to out (zero-initialised or reused; not cleared first).
 * Returns PROTO_OK, PROTO_EINVAL when msg is not a valid message (for example an UPDATE column
 * with both values undefined), or PROTO_ENOMEM; on failure out->len is as it was. The caller
 * owns out and frees it with proto_buf_free(). */
int proto_encode(const proto_msg *msg, proto_buf *out);

/* Bytes the encoding of one change takes; used to cut large transactions into chunks.
 * 0 when the change cannot be encoded (the checks of proto_encode() that need no table). */
size_t proto_change_encoded_size(const proto_change *change);

/* Exact bytes proto_encode() would append for msg, or 0 when it would fail with PROTO_EINVAL.
 * With proto_change_encoded_size() this sizes PUSH chunks: a PUSH's size is the size of the
 * same PUSH with no changes plus each change's size plus, per table, at most 4 bytes of array
 * header growth (docs/protocol.md, "Chunking"). */
size_t proto_encoded_size(const proto_msg *msg);

/* ---------------------------------------------------------------------------------------------
 * Decoding.
 */

/* Decodes exactly one message from data[0..n_bytes). limits may be NULL for the defaults.
 * On success *out_msg is a new message the caller frees with proto_msg_free(); every pointer in
 * it points into memory owned by the message. On failure *out_msg is NULL, the result is a
 * negative PROTO_* code and, when err is not NULL, err holds a NUL-terminated human message
 * naming what was wrong and where (at most err_size bytes). Never reads outside the input;
 * allocates at most a small multiple of n_bytes. */
int proto_decode(const uint8_t *data, size_t n_bytes, const proto_limits *limits,
                 proto_msg **out_msg, char *err, size_t err_size);

/* The bounded structural check proto_decode() runs first, exposed for tests and fuzzing.
 * Reads only MessagePack headers and allocates nothing. Checks, in this order for each value:
 * str/bin/ext length and array/map count against the limits (PROTO_ETOOBIG), then against the
 * bytes left (PROTO_ETRUNCATED), nesting (PROTO_EDEPTH), reserved byte 0xc1
 * (PROTO_EMALFORMED), and finally that nothing follows the one value (PROTO_ETRAILING). */
int proto_check(const uint8_t *data, size_t n_bytes, const proto_limits *limits, char *err,
                size_t err_size);

/* Frees a decoded message. NULL is a no-op. */
void proto_msg_free(proto_msg *msg);

/* Reads the cursor and `more` of a ROWS message from its first bytes, without decoding the
 * rest, when it begins as proto_encode() writes one (type, cursor, more, then the tables).
 * true and both set, or false (anything else, other key orders included): then decode it.
 * Says nothing about whether the rest is well formed; proto_decode() still decides that. */
bool proto_rows_peek(const uint8_t *data, size_t n_bytes, uint64_t *out_cursor, bool *out_more);

/* ---------------------------------------------------------------------------------------------
 * Compression (docs/protocol.md, "Compression"). When HELLO offers and WELCOME accepts
 * PROTO_COMPRESS_DEFLATE, every later message either way may be a compressed frame: the byte
 * PROTO_ZFRAME_MARK (0xc1, which MessagePack never uses) followed by raw DEFLATE data (RFC 1951)
 * ending in a sync flush whose final 00 00 ff ff is left off, as in RFC 7692. One DEFLATE stream
 * runs per direction for the whole session, so later messages refer back to earlier ones; a
 * message is decompressed into at most limits.max_message_bytes, so a small frame that would
 * inflate beyond that is PROTO_ETOOBIG like any oversized message. Window and memory are fixed
 * (PROTO_ZWINDOW_BITS): about 20 KiB to compress and 10 KiB to decompress per stream.
 */
#define PROTO_COMPRESS_DEFLATE 1u
#define PROTO_ZFRAME_MARK 0xc1u
#define PROTO_ZWINDOW_BITS 12

typedef struct proto_zstream proto_zstream;

/* A compressing (compress true) or decompressing stream. Returns PROTO_OK or PROTO_ENOMEM. */
int proto_zstream_new(bool compress, proto_zstream **out_stream);

/* Frees a stream. NULL is a no-op. */
void proto_zstream_free(proto_zstream *stream);

/* A compressing stream compresses every message at DEFLATE level 6 (PROTO_ZLEVEL), and with
 * n_bytes > 0 each message of at least n_bytes at level 1 (PROTO_ZLEVEL_BULK). The sender's
 * choice alone: the frames are the same format, the receiver cannot tell (docs/protocol.md
 * 1.1 gives the figures). 0 puts every message back at level 6. */
#define PROTO_ZLEVEL 6
#define PROTO_ZLEVEL_BULK 1
void proto_zstream_bulk_from(proto_zstream *stream, size_t n_bytes);

/* Appends the compressed frame of one encoded message to out (not cleared first). Frames must
 * reach the peer in the order they were made. PROTO_ENOMEM or PROTO_EINVAL (a decompressing
 * stream, or a stream that failed before) leave out->len as it was. */
int proto_zframe_deflate(proto_zstream *stream, const uint8_t *data, size_t n_bytes,
                         proto_buf *out);

/* True when data starts a compressed frame rather than a plain MessagePack message. */
bool proto_is_zframe(const uint8_t *data, size_t n_bytes);

/* Decompresses one frame into out (cleared first), writing at most max_out bytes: PROTO_OK,
 * PROTO_ETOOBIG when the message would be longer than max_out, PROTO_EMALFORMED when the bytes
 * are not a frame of this stream, PROTO_ENOMEM. After a failure the stream is unusable (the
 * session must end: the peers no longer agree on the history). */
int proto_zframe_inflate(proto_zstream *stream, const uint8_t *data, size_t n_bytes,
                         size_t max_out, proto_buf *out);

/* What was wrong with the frame proto_zframe_inflate last refused with PROTO_EMALFORMED (zlib's
 * reason, or that the frame ended the stream), for an ERROR text: "invalid compressed frame:
 * <this>". Static text, never NULL. */
const char *proto_zframe_why(const proto_zstream *stream);

#ifdef __cplusplus
}
#endif

#endif /* OUTPOST_PROTO_H */
