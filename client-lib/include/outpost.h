/*
 * liboutpost: the device side of Outpost. An offline SQLite replica that never loses a
 * committed record.
 *
 * The app writes synced tables through this library, in transactions. At commit the
 * transaction's changes are captured with SQLite's session extension and written to an outbox
 * in the same SQLite transaction, so a write that committed is always in the outbox, across
 * crashes and power loss. Reads are plain SQLite on the handle outpost_replica_db() returns.
 *
 * The sync engine (outpost_sync.h) sends the outbox to the server and applies what it pulls;
 * the app starts it and watches its status. Values cross this API as outpost_value, the
 * library's own type; nothing of the wire protocol is part of it.
 *
 * Errors: every function that can fail returns an int, 0 on success and a negative OUTPOST_E*
 * code on failure. outpost_strerror() gives a static text for a code; outpost_errmsg() gives a
 * message describing the last failure on a handle. A failed call changes nothing: any
 * transaction the call opened is rolled back, and nothing already committed is lost.
 *
 * Threads: a replica handle may be used from any thread, but by one thread at a time. Different
 * handles (on different files) are independent. Open at most one handle per database file; the
 * sync engine's own connection to the same file is coordinated with it by the library.
 * Callbacks run on the thread that made the call that triggered them, after the call's
 * transaction has committed; they must not block and must not call back into the same handle.
 *
 * Memory: the library allocates through sqlite3_malloc64(), so an allocator installed with
 * sqlite3_config(SQLITE_CONFIG_MALLOC) sees every allocation the library makes.
 */
#ifndef OUTPOST_H
#define OUTPOST_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "outpost_version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the public API; everything else in the library has hidden visibility. */
#if defined(__GNUC__) || defined(__clang__)
#define OUTPOST_API __attribute__((visibility("default")))
#else
#define OUTPOST_API
#endif

/* ---------------------------------------------------------------------------------------------
 * Results. 0 is success; failures are negative and are only ever appended.
 */
enum {
    OUTPOST_OK = 0,
    OUTPOST_ENOMEM = -1,    /* an allocation failed (transient) */
    OUTPOST_EINVAL = -2,    /* an argument is invalid (NULL handle, empty path, bad value) */
    OUTPOST_EMISUSE = -3,   /* call out of order: a transaction is (or is not) open */
    OUTPOST_EIO = -4,       /* the storage failed: I/O error, cannot open, read-only */
    OUTPOST_EBUSY = -5,     /* the database is locked by another connection (transient) */
    OUTPOST_ESCHEMA = -6,   /* schema refused, not installed, or not matching the data */
    OUTPOST_ESQL = -7,      /* the app's SQL failed: syntax, constraint, type */
    OUTPOST_EDENIED = -8,   /* a write to a synced or library table bypassed the write API */
    OUTPOST_EPROTO = -9,    /* a protocol message does not fit this replica */
    OUTPOST_ECORRUPT = -10, /* a page failed its integrity check, the file is damaged, or it is
                             * not an Outpost replica */
    OUTPOST_EFULL = -11,    /* the disk is full (transient) */
    /* Raised by the sync engine (outpost_sync.h) */
    OUTPOST_EOFFLINE = -12,     /* the server cannot be reached (transient) */
    OUTPOST_ETIMEOUT = -13,     /* the server did not answer in time (transient) */
    OUTPOST_ESERVER = -14,      /* the server failed or is overloaded (transient) */
    OUTPOST_ECERT = -15,        /* the server's certificate is not the one pinned */
    OUTPOST_EAUTH = -16,        /* the server does not know this device or its secret */
    OUTPOST_EREVOKED = -17,     /* this device was revoked */
    OUTPOST_EENROLL = -18,      /* enrollment code unknown, used or expired */
    OUTPOST_EEXISTS = -19,      /* this replica is already enrolled */
    OUTPOST_ENOTENROLLED = -20, /* this replica is not enrolled yet */
    OUTPOST_EWIPED = -21,       /* the replica was wiped (remote wipe): close the handle */
    OUTPOST_ETOOBIG = -22,      /* a transaction is too big to send */
    /* Encryption at rest (docs/encryption.md) */
    OUTPOST_EKEY = -23,         /* wrong key or passphrase, or no key for an encrypted replica */
    OUTPOST_ENOTENCRYPTED = -24, /* the replica is not encrypted and a key was given */
    /* Sync with a central store (docs/operations.md, "Backup and restore") */
    OUTPOST_EOTHERSTORE = -25,  /* the server is another central store than the one this
                                   replica synced with: nothing was sent or merged */
    /* Refused changes (docs/library.md, "Quarantine") */
    OUTPOST_ESEQ = -26,         /* the server has no record of an entry this device numbered
                                 * below one it has recorded: the device's counter went back
                                 * (replica restored from a backup); sync stops, nothing is
                                 * dropped: call the office */
    OUTPOST_ESCOPE = -27        /* a write to a synced table whose scope value is not one of
                                 * the worker's teams, or whose primary key has the wrong type:
                                 * the server would refuse it, so the commit does */
};

/* A static English text for an OUTPOST_* code ("out of memory", ...). Never NULL; unknown codes
 * give "unknown error". Any thread. */
OUTPOST_API const char *outpost_strerror(int code);

/* Whether retrying the failed operation later can succeed without any change by the app or the
 * user: true for OUTPOST_ENOMEM, OUTPOST_EBUSY, OUTPOST_EFULL, OUTPOST_EOFFLINE,
 * OUTPOST_ETIMEOUT and OUTPOST_ESERVER, false otherwise. Any thread. */
OUTPOST_API int outpost_error_is_transient(int code);

/* ---------------------------------------------------------------------------------------------
 * Values: what outpost_exec() binds and what a conflict reports, in SQLite's types. Text and
 * blob are (pointer, length) views the caller owns; text is UTF-8 and needs no NUL terminator.
 * OUTPOST_VALUE_UNDEF is "no value": a value the library does not know, or (as a parameter) NULL.
 */
typedef enum outpost_value_type {
    OUTPOST_VALUE_UNDEF = 0,
    OUTPOST_VALUE_NULL = 1,
    OUTPOST_VALUE_INT = 2,  /* u.i */
    OUTPOST_VALUE_REAL = 3, /* u.r */
    OUTPOST_VALUE_TEXT = 4, /* u.b: n bytes of UTF-8 at p */
    OUTPOST_VALUE_BLOB = 5  /* u.b: n bytes at p */
} outpost_value_type;

typedef struct outpost_value {
    outpost_value_type type;
    union {
        int64_t i;
        double r;
        struct {
            const uint8_t *p;
            uint32_t n;
        } b;
    } u;
} outpost_value;

/* ---------------------------------------------------------------------------------------------
 * Replica.
 */
typedef struct outpost_replica outpost_replica;

/* What outpost_conflict_cb receives: one decision the server took against this device's write
 * (a merge conflict from an ACK) or one refused row (from a REJECT). Every pointer is valid only
 * during the callback. */
typedef struct outpost_conflict_info {
    uint64_t seq;               /* outbox entry (device sequence) the write belonged to */
    const char *table;
    uint32_t n_pk;
    const outpost_value *pk;    /* primary key values, in primary key order */
    int32_t col;                /* column index, or -1 when the whole row was decided */
    const char *column;         /* column name, or NULL when col is -1 or unknown locally */
    const outpost_value *mine;  /* the value this device wrote; OUTPOST_VALUE_UNDEF when not
                                 * known */
    const outpost_value *winner; /* the value the server kept; OUTPOST_VALUE_UNDEF when not
                                  * known */
    const char *kind;           /* "DATA", "NOTFOUND", "CONFLICT", "CONSTRAINT" or "REJECTED" */
    uint32_t code;              /* for "REJECTED": the protocol's error code (docs/protocol.md);
                                 * 0 otherwise */
    const char *reason;         /* human text: the server's message or the kind's meaning */
} outpost_conflict_info;

/* Called once per recorded conflict or rejection, after it is committed to the
 * _outpost_conflicts table. Runs on the calling thread; must not block or use the handle. */
typedef void (*outpost_conflict_cb)(void *user_data, const outpost_conflict_info *info);

/* One change the server refused, kept in quarantine (see "Quarantine" below). */
typedef struct outpost_rejected outpost_rejected;

/* Called once per change put in quarantine, after the transaction that put it there committed.
 * Runs on the thread that handed the REJECT to the library: with the sync engine, its own
 * thread. rejected is valid only during the callback (read it with the fields below; keep
 * rejected->id to act on it later from the app's thread). Must not block or use the handle. */
typedef void (*outpost_rejected_cb)(void *user_data, const outpost_rejected *rejected);

/* Wall clock in milliseconds since the Unix epoch. Lets tests and apps with a trusted time
 * source replace the system clock. Must not block. */
typedef int64_t (*outpost_clock_cb)(void *user_data);

#define OUTPOST_KEY_BYTES 32 /* a raw replica key: 256 bits */

/* The secret that opens an encrypted replica: exactly one of
 *   key             OUTPOST_KEY_BYTES raw bytes, for example unwrapped from the platform
 *                   keystore (Android Keystore, iOS Keychain: see docs/encryption.md);
 *   passphrase      passphrase_len bytes (any encoding; need not be NUL-terminated),
 *                   stretched with Argon2id (64 MiB, 3 passes) over the replica's random salt.
 *                   Deriving takes a few hundred milliseconds by design: open off the UI thread.
 * The library reads the secret during the call that takes it and keeps only the keys derived
 * from it; the caller keeps ownership and should wipe its own copy when done. */
typedef struct outpost_secret {
    const uint8_t *key;
    const char *passphrase;
    size_t passphrase_len;
} outpost_secret;

/* Zero-initialise, then fill in. path and the key material are required. The library copies
 * what it needs; the struct (and the secret it points to) may be freed or wiped after
 * outpost_replica_open() returns.
 *
 * Encryption: every file the library writes for the replica (database, write-ahead log,
 * journal) is encrypted with AES-256-GCM, page by page, from the first write; temporary files
 * stay in memory. Set secret (a key or a passphrase), or set no_encryption to open a plain,
 * unencrypted SQLite replica. no_encryption is meant for tests and tools that inspect files:
 * a real app never sets it. Neither, or both, is OUTPOST_EINVAL. */
typedef struct outpost_config {
    const char *path;               /* database file; created when absent */
    outpost_conflict_cb on_conflict; /* optional */
    outpost_clock_cb clock;         /* optional; NULL uses the system clock */
    void *user_data;                /* passed to every callback */
    outpost_secret secret;          /* the replica's key or passphrase */
    int no_encryption;              /* non-zero: plain SQLite, no secret (tests only) */
    /* Days an acknowledged outbox entry is kept after its ACK (0: the default,
     * OUTPOST_SENT_RETENTION_DAYS_DEFAULT). If the central store is restored from a backup,
     * the device re-sends every kept entry the restored store lacks; an entry pruned before
     * the restore exists only on devices that pulled it. A kept entry costs its changeset
     * plus about 40 bytes (docs/operations.md, "Backup and restore", has the measurement).
     * Entries are pruned when an ACK is recorded. */
    uint32_t sent_retention_days;
    outpost_rejected_cb on_rejected; /* optional: a refused change went to quarantine */
} outpost_config;

/* Default of outpost_config.sent_retention_days. */
#define OUTPOST_SENT_RETENTION_DAYS_DEFAULT 30u

/* Opens (creating when absent) the replica at config->path and sets it up: WAL journal,
 * synchronous=FULL (a commit that returned survives power loss), the library's tables (named
 * with the reserved prefix "_outpost_"), change capture on the installed schema's tables, and
 * the guard that refuses writes to synced tables that bypass outpost_exec().
 *
 * A new replica is encrypted under config->secret (or created plain with no_encryption). An
 * existing one must be opened the way it was created:
 *   OUTPOST_EKEY            the key or passphrase does not open it, or it is encrypted and
 *                           no_encryption was set;
 *   OUTPOST_ENOTENCRYPTED   it is a plain SQLite file and a secret was given (open it with
 *                           no_encryption, or copy its data into a new encrypted replica);
 *   OUTPOST_ECORRUPT        a page failed its integrity check (changed on disk, truncated),
 *                           the file is not a SQLite database, or it belongs to another
 *                           application.
 * A wrong key never yields rows. With a passphrase, the call runs Argon2id first (slow by
 * design). The derived keys live in memory only while a handle on the file is open (the sync
 * engine's own connection shares them) and are wiped with mbedtls_platform_zeroize() when the
 * last one closes; no key is ever written to disk.
 *
 * On success *out_replica is a new handle the caller closes with outpost_replica_close(). On
 * failure *out_replica is NULL and the code says why. There is no handle to ask for a message
 * on failure; when err is not NULL it receives a NUL-terminated message (at most err_size
 * bytes). */
OUTPOST_API int outpost_replica_open(const outpost_config *config, outpost_replica **out_replica,
                                     char *err, size_t err_size);

/* Closes the replica. A transaction still open is rolled back (its writes were never
 * committed). When no other handle on the file is left (the sync engine's connection closes
 * with outpost_sync_stop()), the replica's keys are wiped from memory. NULL is a no-op. */
OUTPOST_API void outpost_replica_close(outpost_replica *replica);

/* The SQLite connection under the replica, for reads (SELECT, prepared statements, PRAGMAs that
 * only read). The handle owns it: do not close it, and do not use it after closing the replica;
 * the thread rule of the handle applies to it. Through it, writes to a synced table or to a
 * library table, triggers on them, dropping or altering them, and setting journal_mode,
 * synchronous, locking_mode, writable_schema, application_id or schema_version are refused with
 * SQLITE_AUTH at prepare time; as a second line, a commit holding an uncaptured change to a
 * synced table is turned into a rollback (SQLITE_CONSTRAINT_COMMITHOOK). So nothing is ever
 * committed without being captured. The app's own unsynced tables stay writable.
 * The guard lives in this connection: do not open other connections that write to the file. */
OUTPOST_API sqlite3 *outpost_replica_db(outpost_replica *replica);

/* A message describing the last failure on this handle ("" when none). Owned by the handle,
 * valid until the next call on it. NULL gives a static message. */
OUTPOST_API const char *outpost_errmsg(const outpost_replica *replica);

/* Closes the replica and deletes its database file and every file that belongs to it (-wal,
 * -shm, -journal, and a "-rekey" copy with its own -journal, -wal and -shm left by an
 * interrupted outpost_replica_rekey()). The handle is freed whatever the result. Returns
 * OUTPOST_EIO when a file exists but cannot be removed; files already gone are not an error.
 * Used for remote wipe. */
OUTPOST_API int outpost_replica_wipe(outpost_replica *replica);

/* Deletes the replica files at path without opening them (for a replica that cannot be opened,
 * for example after losing its key). The replica must not be open. Same results as
 * outpost_replica_wipe(); err as in outpost_replica_open(). */
OUTPOST_API int outpost_files_wipe(const char *path, char *err, size_t err_size);

/* Re-encrypts the closed replica at path from old_secret to new_secret (either may be a key or
 * a passphrase; the replica also gets a fresh salt). Crash-safe: the library writes an
 * encrypted copy beside the file (path + "-rekey"), syncs it and renames it over the replica,
 * so after a crash at any moment the replica opens with the old secret or the new one, never
 * neither. Keep both secrets until this returns 0; after a crash, try opening with the new one,
 * then the old one, and call this again.
 *
 * The replica must be closed in every process, its WAL checkpointed (closing the last handle
 * does that): OUTPOST_EMISUSE otherwise. OUTPOST_EKEY when old_secret does not open it,
 * OUTPOST_ENOTENCRYPTED for a plain replica, OUTPOST_EINVAL for a missing path or a secret
 * that is not exactly one key or one non-empty passphrase. On failure the replica is unchanged
 * and opens with old_secret. err as in outpost_replica_open(). With passphrases this runs
 * Argon2id twice: call it off the UI thread. Any thread. */
OUTPOST_API int outpost_replica_rekey(const char *path, const outpost_secret *old_secret,
                                      const outpost_secret *new_secret, char *err,
                                      size_t err_size);

/* ---------------------------------------------------------------------------------------------
 * Ids.
 */
#define OUTPOST_UUID_TEXT_SIZE 37 /* 36 characters and the NUL */

/* Writes a new UUIDv7 (RFC 9562: 48-bit millisecond time, then random bits) as lowercase
 * hyphenated text to out_text. Ids made later in one process sort after earlier ones. Returns
 * OUTPOST_EIO when the system's random source fails. Any thread. */
OUTPOST_API int outpost_uuid_make(char out_text[OUTPOST_UUID_TEXT_SIZE]);

/* ---------------------------------------------------------------------------------------------
 * Writes. The only way to change a synced table.
 */

/* Opens a write transaction (BEGIN IMMEDIATE: the write lock is taken now, so the commit
 * cannot fail for a lock taken by another connection later). OUTPOST_EMISUSE when one is
 * already open; OUTPOST_EBUSY when another connection holds the lock past the busy timeout. */
OUTPOST_API int outpost_tx_begin(outpost_replica *replica);

/* Runs one SQL statement with params bound to ?1..?n (OUTPOST_VALUE_UNDEF binds NULL). Any rows it
 * returns are discarded. Inside a transaction the statement joins it; outside one it runs in a
 * transaction of its own that is committed (and captured) before this returns.
 *
 * The statement may read and write synced tables and the app's own tables. It may not control
 * transactions (BEGIN, COMMIT, SAVEPOINT...), ATTACH, write the library's tables, or drop or
 * alter a synced table (schema changes come from the server): those are refused with
 * OUTPOST_EDENIED. sql must hold exactly one statement (OUTPOST_EINVAL otherwise).
 *
 * A statement that fails (OUTPOST_ESQL for a constraint or syntax error) is undone, and the
 * open transaction stays open for the app to go on or roll back. When SQLite had to roll the
 * whole transaction back (disk full, I/O error), the transaction is closed, the result says so
 * and outpost_errmsg() mentions it. Statements are cached by their text: reuse the same text
 * with different params rather than formatting values into the SQL. */
OUTPOST_API int outpost_exec(outpost_replica *replica, const char *sql,
                             const outpost_value *params, uint32_t n_params);

/* Commits the open transaction. When it changed synced tables, its changeset is written to the
 * outbox with the next device sequence number and a hybrid logical clock, in the same SQLite
 * transaction: when this returns 0 the write and its outbox entry are both durable; when it
 * fails neither is there and the transaction is closed (rolled back).
 * out_seq (may be NULL) receives the entry's device sequence, or 0 when the transaction changed
 * no synced table and so made no entry.
 * What the server would refuse is refused here, with nothing committed: OUTPOST_ESCOPE when a
 * row written to a synced table has a scope value that is not one of the worker's teams (as
 * the server last sent them at enrollment or sync; not checked before it has), or a primary key
 * column declared TEXT gets a value of another type. outpost_errmsg() names the table, column,
 * value and teams. */
OUTPOST_API int outpost_tx_commit(outpost_replica *replica, uint64_t *out_seq);

/* Rolls back the open transaction. Without one, OUTPOST_EMISUSE. */
OUTPOST_API int outpost_tx_rollback(outpost_replica *replica);

/* ---------------------------------------------------------------------------------------------
 * Status and conflicts.
 */
typedef struct outpost_status {
    uint64_t pending;          /* outbox entries waiting for the server */
    int64_t oldest_pending_ms; /* commit time of the oldest of them; 0 when none */
    int64_t last_sync_ms;      /* when a pull last completed; 0 when never */
    uint64_t cursor;           /* server sequence up to which this replica has pulled */
    uint32_t schema_version;   /* installed schema; 0 when none */
    uint64_t last_seq;         /* last device sequence given to an outbox entry */
    uint64_t conflicts;        /* rows in _outpost_conflicts */
    uint64_t rejected;         /* changes the server refused, waiting in quarantine */
} outpost_status;

/* Fills *out_status from the replica. */
OUTPOST_API int outpost_status_get(outpost_replica *replica, outpost_status *out_status);

/*
 * _outpost_conflicts holds every conflict and rejection until the app clears it; the app reads
 * it with plain SQL. Columns:
 *   id INTEGER      increasing
 *   at_ms INTEGER   when it was recorded
 *   seq INTEGER     outbox entry (device sequence)
 *   tbl TEXT        table
 *   pk TEXT         primary key values as a JSON array (blobs as "x'hex'")
 *   col INTEGER     column index, NULL for a whole-row decision
 *   col_name TEXT   column name, NULL when col is NULL
 *   kind TEXT       "DATA", "NOTFOUND", "CONFLICT", "CONSTRAINT", "REJECTED"
 *   code INTEGER    the protocol's error code for "REJECTED", 0 otherwise
 *   reason TEXT     human text
 *   mine, winner    this device's value and the server's, as SQLite values (NULL when unknown)
 */

/* Deletes recorded conflicts with id <= up_to_id (the app has shown them to a person). */
OUTPOST_API int outpost_conflicts_clear(outpost_replica *replica, int64_t up_to_id);

/* ---------------------------------------------------------------------------------------------
 * Version. OUTPOST_VERSION_MAJOR/MINOR/PATCH and OUTPOST_VERSION_STRING (outpost_version.h) are
 * the version an app was compiled against; outpost_version() is the one it runs with (a static
 * string, "MAJOR.MINOR.PATCH"; any thread).
 */
OUTPOST_API const char *outpost_version(void);

/* ---------------------------------------------------------------------------------------------
 * Quarantine: changes the server refused. Nothing a worker committed is ever dropped.
 *
 * When the server refuses an outbox entry (a REJECT: outside the worker's teams, a key another
 * team already holds, a constraint), the library restores the server's version of the rows and,
 * in the same local transaction, keeps every change of the entry here with the values the
 * worker wrote, inside the encrypted replica. A change stays until the app or the worker
 * decides: resubmit it (corrected) or discard it. The count is outpost_status.rejected: an app
 * must not tell the worker "synced" while it is not 0 (the CLI's `outpost sync` exits 5).
 *
 * Same rules as the rest of the API: any thread, one at a time per handle; no transaction may
 * be open (OUTPOST_EMISUSE); an id that is not in quarantine is OUTPOST_EINVAL with a message.
 */
struct outpost_rejected {
    int64_t id;               /* quarantine id: increasing, never reused */
    int64_t at_ms;            /* when the refusal arrived (the replica's clock) */
    uint64_t seq;             /* the outbox entry (device sequence) that carried it */
    const char *table;
    const char *op;           /* "INSERT", "UPDATE" or "DELETE" */
    const char *pk;           /* primary key values as a JSON array (blobs as "x'hex'") */
    uint32_t code;            /* the server's refusal code for this row, or for the entry when
                               * the row was refused with the rest of it (docs/protocol.md, 7.2) */
    const char *code_name;    /* a short English name of code ("out of scope", ...) */
    const char *message;      /* the server's message, or why the row went with its entry */
    uint32_t n_values;
    const char *const *columns; /* column names, in table order */
    const uint8_t *changed;     /* n_values flags: 1 for a column the refused change wrote (every
                                 * column of an INSERT), 0 for one it only carried along */
    const outpost_value *values; /* the worker's values: for INSERT and UPDATE the whole row as
                                 * the replica held it when the refusal arrived, for DELETE
                                 * the deleted row's values */
    struct outpost_arena *arena_; /* private: owns every pointer above */
};

/* Lists the ids in quarantine, oldest first: up to max_ids of them into out_ids, and the total
 * number into *out_count (which may exceed max_ids: call again with a bigger array). */
OUTPOST_API int outpost_rejected_list(outpost_replica *replica, int64_t *out_ids, size_t max_ids,
                                      size_t *out_count);

/* Reads quarantined change id. On success *out_rejected is a new record the caller frees with
 * outpost_rejected_free(); on failure it is NULL. */
OUTPOST_API int outpost_rejected_read(outpost_replica *replica, int64_t id,
                                      outpost_rejected **out_rejected);

/* Frees a record. NULL is a no-op. */
OUTPOST_API void outpost_rejected_free(outpost_rejected *rejected);

/* Writes quarantined change id back through the normal write path, with the n_values values
 * named by columns (for example a corrected team, or a new primary key) over the worker's
 * values, and removes it from quarantine, in one transaction. When the replica no longer holds
 * the row it is inserted whole; when it holds it (often newer, pulled since), only the columns
 * the refused change wrote (`changed`) and the corrections are written, so a newer value of
 * another column is never overwritten with the worker's old copy. A DELETE deletes the row
 * again (it takes no values). The
 * write is a new outbox entry with a new device sequence (*out_seq, may be NULL; 0 when the
 * row already held those values): a refused sequence is never reused. _outpost_rejected_log
 * records the resubmission (time, id, entry, table, key, code, message). A column the table
 * does not have is OUTPOST_EINVAL; a write the replica refuses (a constraint, OUTPOST_ESQL)
 * leaves the change in quarantine. */
OUTPOST_API int outpost_rejected_resubmit(outpost_replica *replica, int64_t id,
                                          const char *const *columns, const outpost_value *values,
                                          uint32_t n_values, uint64_t *out_seq);

/* Discards quarantined change id for good: an explicit, audited act. Its values are deleted;
 * _outpost_rejected_log keeps a line with the time, the action "discarded", the quarantine id,
 * the outbox entry, table, operation, primary key, the server's code and message (not the
 * values). */
OUTPOST_API int outpost_rejected_discard(outpost_replica *replica, int64_t id);

/* ---------------------------------------------------------------------------------------------
 * Row sync state: what an app shows beside one record.
 *
 * A record is "pending" while an outbox entry that changes it waits for the server; "refused"
 * while a change of it is in quarantine (outpost_rejected_list, its table and pk); "in
 * conflict" while _outpost_conflicts holds a decision about it (tbl, pk); otherwise it is
 * synced as far as this replica knows.
 *
 * _outpost_teams (name TEXT) holds the worker's teams as the server last sent them (at
 * enrollment and at each sync); empty when not known yet. Apps read it with plain SQL to offer
 * the scope column's values (a form's "team"); writes to it are refused like any library table.
 */

/* Sets *out_pending to 1 when an outbox entry not yet acknowledged by the server changes the
 * row of the synced table whose primary key values are pk (n_pk of them, in primary key
 * order), and to 0 otherwise. A table that is not synced, or a key of the wrong length, is
 * OUTPOST_EINVAL; an open transaction is OUTPOST_EMISUSE. Same thread rules as the rest of the
 * handle. */
OUTPOST_API int outpost_row_pending(outpost_replica *replica, const char *table,
                                    const outpost_value *pk, uint32_t n_pk, int *out_pending);

/* ---------------------------------------------------------------------------------------------
 * The device's worker: the id the server gave at enrollment and repeats at each sync (protocol
 * `wkr`), what a policy's author= column must hold. Apps fill a form's "worker" column with it.
 */
#define OUTPOST_WORKER_ID_SIZE 64

/* Copies the worker id into out_worker (NUL-terminated). OUTPOST_ENOTENROLLED when the server
 * has not said (not enrolled yet, or enrolled with a server that does not send it). */
OUTPOST_API int outpost_worker_id(outpost_replica *replica,
                                  char out_worker[OUTPOST_WORKER_ID_SIZE]);

/* ---------------------------------------------------------------------------------------------
 * Forms (docs/forms.md): how the server's schema package says a worker fills in each synced
 * table (sections, labels and help in several languages, choice lists, required and automatic
 * columns). They arrive with the schema, at enrollment and with every newer schema version.
 */

/* Writes to *json_out the forms of the installed schema as one JSON array of form objects, in
 * the server's table order: a NUL-terminated UTF-8 string, exactly the text the server sent, or
 * "[]" when the schema has no forms (or none has been installed yet: a replica never enrolled,
 * or one just created because the path was mistyped, also gives "[]"; tell them apart with
 * outpost_status_get(), whose schema_version is 0 until a schema is installed). The caller frees
 * it with outpost_free(); on failure *json_out is NULL. OUTPOST_ESCHEMA when the server sent
 * forms that are not a JSON array (ignored; the schema is in use). The same thread rules as every
 * call on the replica. */
OUTPOST_API int outpost_forms_json(outpost_replica *replica, char **json_out);

/* Frees memory a function of this library gave the caller to free with it. NULL is a no-op. */
OUTPOST_API void outpost_free(void *ptr);

/* ---------------------------------------------------------------------------------------------
 * Needs attention on the device: the schema package's watch rules (docs/watch.md), which arrive
 * with the schema, evaluated on this replica (the worker's own teams' rows), offline.
 */

/* One open item. Every pointer is valid only during the callback. */
typedef struct outpost_watch_item {
    const char *rule_id;    /* the rule's id, e.g. "missing_not_reported" */
    const char *severity;   /* "high", "medium" or "low" */
    const char *title_json; /* what is due, {"en": "...", "es": "..."} as JSON text */
    const char *table;      /* the record's table */
    const char *team;       /* its scope value */
    const char *record_id;  /* its primary key, as text */
    const char *alias;      /* the young person's alias, or NULL */
    const char *due;        /* open since: "YYYY-MM-DD HH:MM:SS" UTC */
} outpost_watch_item;

/* Called once per item; a non-zero return stops the walk and is returned by
 * outpost_watch_items(). Runs on the caller's thread; must not use the replica. */
typedef int (*outpost_watch_cb)(const outpost_watch_item *item, void *user_data);

/* Evaluates the watch rules the server sent with the schema against this replica at now_ms
 * (ms since the epoch, UTC; pass the wall clock), rule by rule in the file's order, and within
 * a rule team by team, oldest due first. A replica with no rules (a server without them, or not
 * enrolled yet) has no items: OUTPOST_OK and cb is never called. A rule that no longer compiles
 * against the replica is OUTPOST_ESCHEMA naming the rule. Rules are checked exactly as the
 * server checks them: only reads of the rule's own table, values bound. A row whose time the
 * rule cannot read (docs/watch.md) is an item too: severity "high", title "Time not readable:
 * COLUMN (the rule's title)", due = now_ms. Same thread rules as the other calls on this
 * handle. */
OUTPOST_API int outpost_watch_items(outpost_replica *replica, uint64_t now_ms,
                                    outpost_watch_cb cb, void *user_data);

#ifdef __cplusplus
}
#endif

/* Enrollment and the sync engine. */
#include "outpost_sync.h"

#endif /* OUTPOST_H */
