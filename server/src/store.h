/*
 * The central store: the seam between outpostd's network side and the engine that keeps the
 * data, over the database seam (db.h): SQLite (store_sqlite.c), or PostgreSQL
 * (store_postgresql.c) for the modules ported to the seam so far.
 *
 * A store handle is one connection: not thread safe, use one per thread. Several handles on
 * the same path may be open at once (the daemon's worker threads, outpost-admin).
 *
 * Every function returns 0 on success or a negative STORE_E* code, and on failure writes a
 * human message into the handle (store_errmsg). Messages never contain record contents.
 *
 * Replies to devices are returned already encoded (proto_buf, caller frees with
 * proto_buf_free) so that the network side never has to reason about the lifetimes of rows.
 */
#ifndef OUTPOST_STORE_H
#define OUTPOST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outpost/proto.h"

enum {
    STORE_OK = 0,
    STORE_ENOMEM = -1,
    STORE_EIO = -2,        /* the engine failed (I/O error, corrupt file) */
    STORE_EFULL = -3,      /* disk or quota full: nothing was written */
    STORE_EBUSY = -4,      /* locked by another writer past the busy timeout: retry */
    STORE_ENOTFOUND = -5,  /* no such device, worker, team, code */
    STORE_EAUTH = -6,      /* wrong secret */
    STORE_EREVOKED = -7,   /* device revoked */
    STORE_ECODE = -8,      /* enrollment code unknown, used or expired */
    STORE_EINVAL = -9,     /* bad argument (bad schema file, bad name, ...) */
    STORE_ESCHEMA = -10,   /* schema problem: not additive, no primary key, bad policy */
    STORE_EEXISTS = -11,   /* already exists */
    STORE_ELOCKED = -12,   /* dashboard account locked after too many failed logins */
    STORE_ETAMPERED = -13, /* the audit log's hash chain does not verify */
    STORE_EAHEAD = -14,    /* a pull cursor beyond the store's newest sequence */
    STORE_ESEQ = -15,      /* a device sequence below its highest recorded one that was never
                            * applied or refused: the device's counter went back */
    STORE_ECONSTRAINT = -16, /* a row a table's constraint refuses (NOT NULL, CHECK, foreign key,
                              * a value of the wrong type); a duplicate key is STORE_EEXISTS */
    STORE_EREPLACED = -17    /* PostgreSQL: the database under a serving outpostd is no longer
                              * where the store was served (pg_restore --clean into it) */
};

typedef struct store store;

/* Opens (and, with create, makes) the store at path: WAL, synchronous=FULL, busy timeout. */
int store_open(const char *path, bool create, store **out_store, char *err, size_t err_size);
/* Opens (and, with create, makes in an empty database) a store kept in PostgreSQL 15; conninfo
 * is a libpq connection string ("host=/run/postgresql dbname=outpost"). Several processes, on
 * several hosts, may open the same database: write transactions take turns across all of them.
 * Everything outpostd and outpost-admin do runs on it but store_backup and store_restore (a
 * PostgreSQL store is backed up and restored with PostgreSQL's tools, then marked with
 * store_mark_restored; docs/operations.md, "PostgreSQL"). Opening compares where the store
 * lives with where it was last marked (store_restore_unmarked). */
int store_open_postgresql(const char *conninfo, bool create, store **out_store, char *err,
                          size_t err_size);

/* init on PostgreSQL in one transaction: store_open_postgresql(create) whose work, and that of
 * every store call made on the handle until store_create_commit (the schema, its audit row),
 * stays in one open write transaction. Closing the handle without store_create_commit (a
 * refusal, a killed process, a lost connection) leaves the database as it was. */
int store_create_postgresql(const char *conninfo, store **out_store, char *err, size_t err_size);
int store_create_commit(store *st);

void store_close(store *st); /* NULL is a no-op */
const char *store_errmsg(const store *st);
/* Which engine keeps the store: 1 SQLite, 2 PostgreSQL (db_engine in db.h). */
int store_engine_of(const store *st);
/* Whether the last failure came from having no connection to PostgreSQL (a STORE_EIO that
 * says nothing about the request: try again shortly); always false on SQLite. */
bool store_unreachable(const store *st);

/* ---- Schema -------------------------------------------------------------------------------- */

/* Initialises an empty store from a schema SQL file's text (CREATE TABLE statements) and a
 * policy text (one line per synced table: "TABLE scope=COLUMN policy=hlc|server-wins|device-wins").
 * Fails with STORE_ESCHEMA naming the table when a synced table has no explicit non-integer
 * PRIMARY KEY or lacks its scope column. */
int store_init_schema(store *st, const char *schema_sql, const char *policy_text);

/* Applies an additive upgrade (new tables, new nullable or defaulted columns) and bumps the
 * schema version. Anything else is STORE_ESCHEMA with the reason. (An upgrade identical to the
 * current schema changes nothing and keeps the version.) */
/* Calls cb once per constraint of the store's current schema that an offline-first replica set
 * cannot keep consistent (a UNIQUE column, a collated key, a cascading foreign key; see
 * schema_parse.h), and once per recorded upgrade that changed a table beyond appending plain
 * columns (a CHECK on an added column: fresh devices have it, the store and older devices do
 * not), with a message naming the table and column. init and upgrade refuse new ones; a store
 * made before that may have some, and outpostd logs them when it starts. 0 with no schema. */
int store_schema_warnings(store *st, void (*cb)(void *user_data, const char *message),
                          void *user_data);
int store_upgrade_schema(store *st, const char *schema_sql, const char *policy_text);

/* Current schema encoded as a SCHEMA message, and its version. */
int store_schema_encode(store *st, proto_buf *out, uint32_t *out_version);

/* ---- Forms (docs/forms.md) ------------------------------------------------------------------ */

/* One forms/<table>.json file of a schema package. */
typedef struct store_form_file {
    const char *path; /* as messages name it */
    const char *text; /* its contents, NUL-terminated */
} store_form_file;

/* store_init_schema and store_upgrade_schema with the package's forms (forms[0..n_forms), none
 * when n_forms is 0). The forms are validated against the new schema first: a wrong one is
 * STORE_ESCHEMA naming the file, table, column and problem, and nothing changes. They are then
 * kept with the schema; forms that differ from the current ones are a new schema version even
 * when the tables are unchanged, so devices fetch them. (store_init_schema and
 * store_upgrade_schema leave the forms as they are.) */
int store_init_schema_forms(store *st, const char *schema_sql, const char *policy_text,
                            const store_form_file *forms, size_t n_forms);
int store_upgrade_schema_forms(store *st, const char *schema_sql, const char *policy_text,
                               const store_form_file *forms, size_t n_forms);

/* Every check of store_init_schema_forms (init) or store_upgrade_schema_forms, then a rollback:
 * 0 when the package would be applied, the same error otherwise; nothing changes either way. */
int store_check_schema_forms(store *st, bool init, const char *schema_sql,
                             const char *policy_text, const store_form_file *forms,
                             size_t n_forms);

/* The current forms as one JSON array text, "[]" when there are none; free with free(). */
int store_forms_json(store *st, char **out_json);

/* The tables of the current forms, comma-separated in their order, into names[0..size) (cut
 * with "..." when longer), and how many there are. */
int store_forms_tables(store *st, char *names, size_t size, size_t *out_n);

/* ---- Devices -------------------------------------------------------------------------------- */

typedef struct store_device {
    char device_id[40];   /* UUID text */
    char worker_id[64];
    uint32_t n_teams;
    char (*teams)[64];    /* the worker's teams: the scope values this device may see */
    bool revoked;
    bool wipe;            /* revoked with a wipe order */
    uint64_t acked_seq;   /* highest device seq applied */
    uint64_t cursor;      /* last cursor the device reported */
    bool synced_before;   /* had synced before this authentication (a last sync time was on
                           * record): it may hold rows even when it pulls from cursor 0 */
    bool repulls;         /* synced before, and this session's HELLO says cursor 0: it pulls
                           * again from 0 (a restored store's new epoch, CURSOR_AHEAD) and its
                           * copy of a row it sends again may differ from the store's, so its
                           * writes in this session are echoed back to it (merge_log.c) */
    bool has_pull_seen;   /* the PULL said where the device last completed a pull (pull_seen): */
    uint64_t pull_seen;   /* what it holds is judged from there, not from the page's cursor */
} store_device;

void store_device_clear(store_device *dev); /* frees teams; the struct may be reused */

/* Checks a device's secret in constant time. STORE_ENOTFOUND and STORE_EAUTH are both
 * "authentication failed" to the device; STORE_EREVOKED fills dev (with wipe set as ordered). */
int store_device_auth(store *st, const char *device_id, const uint8_t secret[32],
                      store_device *out_dev);

/* Turns a one-time enrollment code into a new device: a fresh device id and a 256-bit secret
 * from mbedTLS's random generator; only a hash of the secret is kept. Single use; the code must
 * not have expired. */
int store_device_enroll(store *st, const char *code, const char *device_name,
                        char out_device_id[40], uint8_t out_secret[32]);

/* Records that a device synced (time, cursor) for `outpost-admin devices` and the dashboard.
 * The time is read back once: a device with one on record is not taken for one that holds
 * nothing (store_device.synced_before, store_pull). The cursor decides nothing (a device sends
 * its own). On SQLite the write does not wait for the disk: a power cut may lose the newest
 * such record, never a change, and the next commit that does wait (every push) makes it
 * durable too. */
int store_device_seen(store *st, const char *device_id, uint64_t cursor);

/* ---- Administration (outpost-admin, later the dashboard) ------------------------------------ */

/* Team and worker ids: 1 to 63 characters from A-Z a-z 0-9 . _ - (STORE_EINVAL else). */

/* Creates a team; name is an optional label. STORE_EEXISTS when the id is taken. */
int store_team_add(store *st, const char *team_id, const char *name);

/* Creates a worker in one or more existing teams (STORE_ENOTFOUND names a missing team). */
int store_worker_add(store *st, const char *worker_id, const char *const *team_ids,
                     uint32_t n_teams);

/* Longest enrollment code text, with its NUL: "XXXXX-XXXXX-XXXXX-XXXXX" (100 random bits,
 * Crockford base32; the check ignores case and dashes). */
#define STORE_CODE_SIZE 24

/* Issues a one-time enrollment code for a worker, valid ttl_ms after now_ms. Only a hash of the
 * code is kept. */
int store_enroll_code_create(store *st, const char *worker_id, uint64_t now_ms, uint64_t ttl_ms,
                             char out_code[STORE_CODE_SIZE]);

typedef struct store_device_row {
    char device_id[40];
    char worker_id[64];
    char name[64];          /* label the device gave at enrollment, may be empty */
    uint64_t enrolled_ms;
    uint64_t last_seen_ms;  /* 0 = never synced */
    uint64_t cursor;
    uint64_t acked_seq;
    bool revoked;
    bool wipe;
} store_device_row;

/* Calls cb for each device, oldest enrollment first; a non-zero return from cb stops the walk
 * and is returned. */
typedef int (*store_device_list_cb)(const store_device_row *row, void *user_data);
int store_device_list(store *st, store_device_list_cb cb, void *user_data);

/* Revokes a device; with wipe it is also told to erase its replica at its next contact.
 * Revoking twice keeps the first time and adds a wipe order if asked. */
int store_device_revoke(store *st, const char *device_id, bool wipe);

/* Whether a device may no longer sync: revoked, unknown, or its worker disabled
 * (store_barred.c). Answers what HELLO would refuse, without the secret. */
int store_device_barred(store *st, const char *device_id, bool *out_barred);

/* Asks the database a trivial question (SELECT 1): 0, or why it cannot answer. On
 * PostgreSQL this also makes a connection the server ended again (db.h). On a handle given to
 * store_serve it also takes the serving lock again when a reconnect lost it, and checks that
 * the store still lives where it was served: STORE_EREPLACED (and why, in store_errmsg) when
 * its tables were made again, as pg_restore does into a live database. */
int store_ping(store *st);

/* ---- Sync ----------------------------------------------------------------------------------- */

typedef struct store_push_info {
    bool duplicate;       /* seq <= acked_seq: already applied, answered ACK, nothing changed */
    bool rejected;        /* answered REJECT, nothing applied */
    bool hlc_clamped;
    uint64_t server_seq;  /* change-log sequence after the apply */
    uint32_t n_rows;      /* row changes applied */
    uint32_t n_conflicts;
    uint32_t n_teams_touched;
    char (*teams_touched)[64]; /* scope values whose rows changed: who to NOTIFY; caller frees */
} store_push_info;

/* Merges one device transaction (all chunks already joined into one proto_push) into the store
 * as docs/design.md's Merge section says, exactly once per (device, seq), atomically, and writes the
 * encoded reply (ACK or REJECT) to reply. dev->acked_seq is updated. A failure (STORE_EFULL,
 * STORE_EBUSY, STORE_EIO) applies nothing and writes no reply.
 * The answer comes from the record of (device, seq) pairs applied and refused: an applied seq
 * gets its ACK again (server_seq 0), a refused one the same REJECT rows again (with the rows'
 * current server version), an unknown seq below the highest recorded STORE_ESEQ (nothing
 * applied, no reply). push->seq must not be 0 (the session refuses it first). */
int store_push(store *st, store_device *dev, const proto_push *push, uint64_t now_ms,
               proto_buf *reply, store_push_info *out_info);
/* Details of the above (SQLite store):
 *  - A REJECTed entry is recorded as refused (_outpost_refused, with its REJECT rows) and
 *    acked_seq becomes the highest seq recorded, applied or refused; the same entry sent again
 *    is refused again without being checked again. A reject row whose key could not be read
 *    (unknown table, missing primary key) carries the key [nil].
 *  - A revoked device gets STORE_EREVOKED and no reply.
 *  - teams_touched is NULL when n_teams_touched is 0; free it with free(). */

/* Group commit: several store_push calls in one write transaction, one COMMIT (one fsync)
 * for all. Between store_push_group_begin and store_push_group_commit, each store_push runs in
 * a savepoint of the group's transaction: an entry refused (REJECT, its refusal recorded) or
 * failing (an error code) is undone alone and answered exactly as it would be alone, and later
 * entries see what earlier ones wrote. Nothing of the group is durable, and no reply of it may
 * be sent, before store_push_group_commit returns STORE_OK; when it fails, nothing of the group
 * was applied. store_push_group_ok turns false when the engine ended the transaction under an
 * entry (some I/O errors, a PostgreSQL connection lost): the earlier entries' work is gone
 * too, and the caller rolls the group back. */
int store_push_group_begin(store *st);
bool store_push_group_ok(const store *st);
int store_push_group_commit(store *st);
void store_push_group_rollback(store *st);

/* The message limit a ROWS page must stay within (the daemon's `msg`). From then on a push is
 * refused (REJECT code PROTO_ERR_ROW_TOO_LARGE) when it would make a row larger than one page
 * can carry, so that every row can always be pulled. 0 (the default) sets no bound. */
void store_set_page_limit(store *st, size_t max_bytes);

/* WAL checkpoints off the commit (outpostd's handles; SQLite store, a no-op on PostgreSQL).
 * By default SQLite checkpoints inside the COMMIT that leaves the WAL past 1000 pages: that
 * push copies every page of the WAL back into the database file, and fsyncs it, before its
 * ACK. store_wal_defer stops that on this handle; the caller runs store_wal_tend between jobs
 * instead. Durability is unchanged (the COMMIT still fsyncs the WAL, synchronous=FULL), and a
 * checkpoint is safe at any time, a crash in one included. idle_pages: the backlog an idle
 * tend checkpoints (SQLite's own threshold is 1000; 1 copies every page). limit_pages bounds
 * the WAL: past it store_wal_tend truncates the WAL whatever the load. */
void store_wal_defer(store *st, uint32_t idle_pages, uint32_t limit_pages);

/* The store's page size in bytes (SQLite; 0 on PostgreSQL): new stores have 16 KiB pages, older
 * ones keep what they were made with, so WAL bounds meant in bytes go through it. */
uint32_t store_page_bytes(store *st);

/* Checkpoints the WAL if it is due, on a handle given store_wal_defer (otherwise returns
 * STORE_OK at once). idle: no job is waiting. Past the limit: a TRUNCATE checkpoint, which
 * waits (up to the busy timeout) for readers and writers of other handles and leaves the WAL
 * empty. Otherwise, when idle and at least idle_pages may not be copied yet: a PASSIVE one,
 * which copies what no reader still needs and waits for nothing. Returns STORE_OK, STORE_EBUSY
 * when the TRUNCATE could not get the WAL to itself (the next call tries again), or STORE_EIO. */
int store_wal_tend(store *st, bool idle);

/* Pages of the WAL that may not be in the database file yet, as this handle saw at its last
 * commit or checkpoint, for a handle given store_wal_defer; 0 otherwise. */
uint32_t store_wal_backlog(const store *st);

/* The newest server sequence (the change log's head), for WELCOME's server_seq. */
int store_server_seq(store *st, uint64_t *out_seq);

typedef struct store_pull_info {
    uint32_t n_rows;
    uint32_t n_deleted;
    uint32_t n_removed;
    uint64_t next_cursor;
    bool more;
} store_pull_info;

/* One ROWS page for the device: the latest version of each row in its scope changed after
 * cursor (never the device's own unaltered changes), tombstones and scope removals, at most
 * limit rows and at most max_bytes encoded. */
int store_pull(store *st, const store_device *dev, uint64_t cursor, uint32_t limit,
               size_t max_bytes, proto_buf *reply, store_pull_info *out_info);
/* Details of the above (SQLite store): limit 0 means 1000, and at most 10000 rows go in a page;
 * a page always carries at least one row, even one larger than max_bytes; a first pull
 * (cursor 0, by a device that never had a push applied nor synced before dev was
 * authenticated) carries no tombstones or removals; next_cursor is the newest server sequence when
 * more is false; a cursor beyond the newest server sequence (the store was restored from a
 * backup) is STORE_EAHEAD with no reply: the device must pull again from 0. A revoked device gets
 * STORE_EREVOKED and no reply. */

/* What a page was read against, so that it may be served later instead of a new read (the
 * daemon prepares a device's next page while the current one travels): the store's newest
 * sequence, its schema version and the worker's teams as the page's read saw them. */
typedef struct store_pull_stamp {
    uint64_t server_seq;
    uint32_t schema_version;
    uint32_t n_teams;
    char (*teams)[64];
} store_pull_stamp;

void store_pull_stamp_clear(store_pull_stamp *stamp); /* frees teams; NULL is a no-op */

/* store_pull, also filling *out_stamp (overwritten; the caller clears it after use). */
int store_pull_stamped(store *st, const store_device *dev, uint64_t cursor, uint32_t limit,
                       size_t max_bytes, proto_buf *reply, store_pull_info *out_info,
                       store_pull_stamp *out_stamp);

/* Whether a page read against stamp is still exactly what the device may be sent now: the
 * device is not revoked, the schema version and the worker's teams are the same, and every
 * change committed since (none, or at most a few thousand) came from another device, deleted
 * nothing and moved no row out of a scope. Rows changed since have higher sequences and come in
 * a later page. *out_fresh is false whenever in doubt; an error leaves it false too. */
int store_pull_recheck(store *st, const store_device *dev, const store_pull_stamp *stamp,
                       bool *out_fresh);

/* ---- Identity, backup, restore, one daemon per store (store_backup.c) ---------------------- */

/* Which store this is, for ever (a random UUID made when the store was created, or when a store
 * made before identities existed is first opened), and which life of it (the epoch: 1, grown by
 * every restore). Devices remember both: a new epoch tells them the store went back in time. */
typedef struct store_identity {
    char id[40];
    uint64_t epoch;
} store_identity;

int store_identity_get(store *st, store_identity *out_identity);

/* Writes a consistent copy of the store to path while others keep using it (VACUUM INTO, one
 * read transaction). The file is created 0600 and must not exist (STORE_EEXISTS). A failure
 * removes the partial file. */
int store_backup(store *st, const char *path);

typedef struct store_restore_info {
    store_identity identity;    /* the restored store's, with its new epoch */
    uint64_t backup_epoch;      /* the epoch the backup was taken in */
    uint64_t replaced_epoch;    /* the replaced store's epoch; 0 when there was none */
    uint64_t backup_server_seq; /* the backup's newest server sequence */
    uint64_t server_seq;        /* the restored store's: never below the replaced store's */
    char replaced_path[600];    /* where the replaced store was moved; empty when none */
    uint32_t n_schema_upgrades; /* schema versions replayed from the replaced store */
} store_restore_info;

/* Puts the backup at backup_path in place as the store at store_path:
 *   - refused (STORE_EBUSY) while an outpostd serves store_path (it holds the store lock);
 *   - refused (STORE_EINVAL) when the backup is not an Outpost store, or is a backup of another
 *     store (a different identity);
 *   - the new epoch is one past the highest of the backup's and the replaced store's (with no
 *     store to replace, at least the current Unix time in seconds, so that restoring one backup
 *     twice onto a lost store still gives a new epoch), so every device notices, re-sends what
 *     the store lacks and pulls again from 0;
 *   - the newest server sequence moves up to the replaced store's, so that even a device that
 *     never heard of epochs is not given a sequence number it has already passed;
 *   - schema versions the replaced store was given after the backup are replayed, in order,
 *     so that devices already on them are not refused;
 *   - the replaced store (if any) is kept beside it as STORE.replaced-epoch-N.
 * The backup file itself is only read. err receives a message on failure. */
int store_restore(const char *store_path, const char *backup_path, store_restore_info *out_info,
                  char *err, size_t err_size);

/* PostgreSQL: a store restored with PostgreSQL's own tools (pg_restore, a base backup) has gone
 * back in time as a restored SQLite store has, but nothing gave it a new epoch. Where the store
 * lives (the cluster's system identifier, the database's OID, its metadata table's OID) is
 * recorded when it is made and by store_mark_restored; store_restore_unmarked is true (why says
 * what differs) when the store was opened somewhere else: restored from a dump, copied into
 * another database or cluster, or its tables made again. A restore of a base backup into the
 * same cluster (point-in-time recovery) keeps all three, as a failover does, and is not seen.
 * Always false on SQLite. outpostd refuses to start on such a store. */
bool store_restore_unmarked(const store *st, char *why, size_t why_size);
/* What outpostd and outpost-admin say about such a store (one %s: the why above). */
#define STORE_UNMARKED_RESTORE_FMT                                                                \
    "this PostgreSQL database is not where the store was last served: %s. If it was restored "   \
    "from a backup, run outpost-admin restored on it before starting outpostd, so that devices " \
    "notice and send again what the backup lacks; if it was moved with nothing lost "            \
    "(pg_upgrade, a copy of a stopped store), run outpost-admin restored --moved "               \
    "(docs/operations.md, \"Restoring a PostgreSQL store\")"

/* PostgreSQL, after restored --moved: at a device's first HELLO since the move (enrolled
 * before it), a cursor beyond the store's newest sequence at the move proves the copy lacked
 * writes the old place had numbered: STORE_EAHEAD, with a message for the operator. 0
 * otherwise, and on SQLite. */
int store_moved_check(store *st, const char *device_id, uint64_t cursor);

/* PostgreSQL: outpostd serves through this handle. It holds a shared session-level advisory
 * lock (STORE_SERVE_LOCK) for as long as the connection lives, so that store_mark_restored,
 * which takes it exclusively, is refused while any node serves, whatever its application_name.
 * STORE_EBUSY while outpost-admin restored holds it. A no-op on SQLite (its store lock). */
int store_serve(store *st);
#define STORE_SERVE_LOCK_CLASS 1333097584 /* 'Outp': pg_locks.classid; objid 1 */

/* Marks a PostgreSQL store restored, in one transaction: a new epoch (one past its own, at
 * least the current Unix time in seconds, so that marking one dump restored twice still gives
 * a new one), echo suppression cleared (as store_restore does), and its place recorded. With
 * moved_only (moved with nothing lost: pg_upgrade, a copy of a stopped store) only the place is
 * recorded and the epoch kept. out_info gets the identity after (identity), the epoch before
 * (replaced_epoch) and the newest server sequence (server_seq, unchanged). STORE_EINVAL on a
 * SQLite store (its restore does this itself). */
int store_mark_restored(store *st, bool moved_only, store_restore_info *out_info);

/* Only one outpostd may serve a store: an exclusive lock (flock) on STORE.lock, held while the
 * process lives and released by the kernel when it ends, even by SIGKILL, and another on the
 * store file itself, which is the same lock whatever path reaches the file (a hard link, a bind
 * mount of the file: STORE.lock beside it would be another file). flock does not touch
 * SQLite's own (POSIX) locks. STORE_EBUSY with a message naming the holder's pid, or the store
 * file, when another process holds either. Give *out to store_lock_release. Commands meant to
 * run online (outpost-admin enroll, backup, ...) do not take it; restore does. */
typedef struct store_lock {
    int lock_fd;  /* STORE.lock */
    int store_fd; /* the store file; -1 when it does not exist yet */
} store_lock;

int store_lock_acquire(const char *store_path, store_lock *out, char *err, size_t err_size);
/* Closes both (after every store handle on the file is closed: closing a descriptor of the
 * store file drops the process's POSIX locks on it, SQLite's among them). NULL is a no-op. */
void store_lock_release(store_lock *lock);

/* ---- Several nodes on one PostgreSQL (store_announce.c) ---------------------------------- */

/* Tells every node listening on the same database that rows of these teams changed, up to
 * server_seq (PostgreSQL NOTIFY; inside a transaction it is sent when the transaction commits,
 * never if it rolls back). origin names the announcing node (1..64 characters, no spaces), so
 * that it can ignore what it said itself. On SQLite, with one outpostd per store, it does
 * nothing. */
int store_announce_teams(store *st, const char *origin, const char (*teams)[64], uint32_t n_teams,
                         uint64_t server_seq);

/* This handle hears announcements from now on (a node's one listening connection). */
int store_announce_listen(store *st);

/* Calls cb with each team announced since the last call (and who announced it, with which
 * server sequence), waiting up to timeout_ms for the first (0: no wait); returns how many
 * notifications arrived (0 on SQLite) or a STORE_E* code. */
typedef void (*store_announce_cb)(const char *origin, const char *team, uint64_t server_seq,
                                  void *user_data);
int store_announcements(store *st, int timeout_ms, store_announce_cb cb, void *user_data);

/* A descriptor to poll() for announcements (its event loop's), -1 on SQLite. */
int store_announce_fd(const store *st);

/* ---- Lockouts (store_lockout.c) ------------------------------------------------------------ */

/* Failed attempts are counted per kind of attempt and key (what failed, where from), kept in the
 * store so that a restart does not clear them. Every call is one statement or two on the
 * caller's connection: callers that check and count on one thread, one attempt at a time (the
 * daemon's worker) cannot let concurrent attempts pass a limit together. */
#define STORE_LOCKOUT_ENROLL "enroll-addr" /* enrollment code guesses, by address */
#define STORE_LOCKOUT_SECRET "secret-addr" /* wrong device secrets, by address */
#define STORE_LOCKOUT_LOGIN "login"        /* dashboard passwords, by account name */
#define STORE_LOCKOUT_LOGIN_ADDR "login-addr" /* dashboard passwords, by address */

typedef struct store_lockout_policy {
    uint32_t max_failures; /* failures within window_ms that lock the key ... */
    uint64_t window_ms;
    uint64_t duration_ms;  /* ... for this long */
} store_lockout_policy;

/* *out_locked: whether kind/key is locked at now_ms. */
int store_lockout_check(store *st, const char *kind, const char *key, uint64_t now_ms,
                        bool *out_locked);

/* Counts one failure of kind/key; *out_locked: whether it is locked after it (a lock already in
 * force is not extended). Also removes a few rows whose lock and window have both ended. */
int store_lockout_fail(store *st, const char *kind, const char *key,
                       const store_lockout_policy *policy, uint64_t now_ms, bool *out_locked);

/* Forgets kind/key's failures (a successful login, an administrator's unlock). */
int store_lockout_clear(store *st, const char *kind, const char *key);

/* ---- Dashboard accounts (store_users.c) ------------------------------------------------------ */

/* Consecutive failed logins that lock an account, and how long the lock lasts. */
#define STORE_LOGIN_MAX_FAILURES 5u
#define STORE_LOGIN_LOCK_MS (15u * 60u * 1000u)
/* Password length accepted by store_user_add: 12 to 1024 bytes. */
#define STORE_PASSWORD_MIN 12u
#define STORE_PASSWORD_MAX 1024u

typedef enum store_role { STORE_ROLE_SUPERVISOR = 1, STORE_ROLE_ADMIN = 2 } store_role;

typedef struct store_user {
    char name[64];
    store_role role;
    uint32_t n_teams;
    char (*teams)[64]; /* teams the user may see, sorted; NULL when none */
    bool must_change;  /* an administrator reset the password: the user must choose one */
} store_user;

void store_user_clear(store_user *user); /* frees teams; NULL is a no-op */

/* Creates a dashboard account. The name follows the id rule above; every team must exist
 * (STORE_ENOTFOUND names the missing one); a supervisor needs at least one team. The password
 * (STORE_PASSWORD_MIN..MAX bytes) is kept only as an Argon2id hash (t=2, m=19 MiB, p=1, random
 * 16-byte salt). STORE_EEXISTS when the name is taken. */
int store_user_add(store *st, const char *name, store_role role, const char *const *team_ids,
                   uint32_t n_teams, const char *password);

/* Checks a password. On success fills out_user and resets the failure count. A wrong password
 * (or an unknown name, which costs the same Argon2id time and the same store writes) is
 * STORE_EAUTH; the STORE_LOGIN_MAX_FAILURES-th failure within STORE_LOGIN_LOCK_MS locks the
 * name, known or not, for STORE_LOGIN_LOCK_MS (STORE_LOCKOUT_LOGIN), during which every
 * attempt, right or wrong, is STORE_ELOCKED: the answers do not tell which names exist. */
int store_user_login(store *st, const char *name, const char *password, uint64_t now_ms,
                     store_user *out_user);

/* Loads an account's role and teams (for a dashboard session). STORE_ENOTFOUND when gone. */
int store_user_get(store *st, const char *name, store_user *out_user);

/* Lifts a lock and clears the failure count. */
int store_user_unlock(store *st, const char *name);

/* ---- Dashboard sessions (store_sessions.c) ----------------------------------------------------- */

/* A session ends after this long without a request, or this long after login, whichever first. */
#define STORE_SESSION_IDLE_MS (30u * 60u * 1000u)
#define STORE_SESSION_MAX_AGE_MS (12u * 60u * 60u * 1000u)
/* Sessions one account holds at once: a new one past that ends its least recently used. */
#define STORE_SESSIONS_PER_USER 8u
#define STORE_SESSION_TOKEN_HEX 65 /* 64 hex digits and NUL */

typedef struct store_session {
    char user[64];
    uint64_t created_ms;
    uint64_t last_ms; /* the last request before this one */
} store_session;

/* Starts a session for user and writes its random 256-bit token (hex) to out_token. The store
 * keeps only the token's SHA-256, so every node on the same database knows the session.
 * *out_n_ended (may be NULL) counts the account's least recently used sessions it ended to stay
 * within STORE_SESSIONS_PER_USER. */
int store_session_create(store *st, const char *user, uint64_t now_ms,
                         char out_token[STORE_SESSION_TOKEN_HEX], uint32_t *out_n_ended);

/* The session of token. STORE_ENOTFOUND when there is none, or when it idled past
 * STORE_SESSION_IDLE_MS or lived past STORE_SESSION_MAX_AGE_MS (it ends here); STORE_EREVOKED
 * when its account was disabled or removed (all of the account's sessions end here). touch
 * restarts the idle clock (in steps of a second: a burst of requests writes once). A session
 * that ended here (limits, or EREVOKED) leaves its user and times in *out_session, to say why. */
int store_session_find(store *st, const char *token, uint64_t now_ms, bool touch,
                       store_session *out_session);

/* Ends one session (logout); an unknown token is not an error. */
int store_session_end(store *st, const char *token);

/* Ends every session of user but keep_token's (NULL: none kept); *out_n (may be NULL) counts
 * them. */
int store_sessions_end_user(store *st, const char *user, const char *keep_token,
                            uint32_t *out_n);

/* ---- People lifecycle (store_lifecycle.c) ---------------------------------------------------- */

/* A disabled worker's devices are refused at HELLO and at their next PUSH or PULL (as revoked,
 * without a wipe); a disabled account cannot log in, and a dashboard session of it ends at its
 * next request. Enabling undoes both. */
int store_worker_set_disabled(store *st, const char *worker_id, bool disabled);
int store_user_set_disabled(store *st, const char *name, bool disabled);

/* Removing a worker revokes its devices with a wipe order (*out_n_revoked counts them), drops
 * its teams and disables it for good; its id stays, as changes and conflicts name it. Removing
 * an account deletes it (the audit log keeps its name). STORE_ENOTFOUND when unknown. */
int store_worker_remove(store *st, const char *worker_id, uint32_t *out_n_revoked);
int store_user_remove(store *st, const char *name);

/* Replaces a worker's teams (at least one; moving between teams) or an account's (a supervisor
 * needs at least one). Every team must exist. Devices see the new scope at their next sync. */
int store_worker_set_teams(store *st, const char *worker_id, const char *const *team_ids,
                           uint32_t n_teams);
int store_user_set_teams(store *st, const char *name, const char *const *team_ids,
                         uint32_t n_teams);

/* Sets a new password (STORE_PASSWORD_MIN..MAX bytes), lifts any lock, and marks the account
 * must_change: its dashboard does nothing else until the user chose a password of their own. */
int store_user_reset_password(store *st, const char *name, const char *password);

/* The user changes their own password: current must verify (STORE_EAUTH, counted like a failed
 * login), new_password must differ from it (STORE_EINVAL). Clears must_change. */
int store_user_change_password(store *st, const char *name, const char *current,
                               const char *new_password, uint64_t now_ms);

/* One team, worker or account in a list. */
typedef struct store_person {
    char id[64];
    char name[128];      /* teams: the display name */
    char teams[1024];    /* workers and accounts: their teams; teams: their workers (a,b,c) */
    bool disabled;
    uint32_t n_devices;  /* workers: devices not revoked; teams: workers */
    store_role role;     /* accounts only */
} store_person;

typedef int (*store_person_cb)(const store_person *person, void *user_data);
/* Each in id order; a non-zero return from cb stops the walk and is returned. */
int store_team_list(store *st, store_person_cb cb, void *user_data);
int store_worker_list(store *st, store_person_cb cb, void *user_data);
int store_user_list(store *st, store_person_cb cb, void *user_data);

/* ---- Audit log (store_audit.c) --------------------------------------------------------------- */

/* The audit log is append-only (the store refuses UPDATE and DELETE on it) and chained with a
 * key that is not in the store: row n's hash is HMAC-SHA-256(key, hash of row n-1 || row n's
 * content), the first row chaining from 32 zero bytes. Row content: id and time as 8-byte
 * big-endian integers, then actor, action, target, address and ids, each as a 4-byte
 * big-endian length and its bytes. A seal (HMAC of the row count and the newest hash) kept beside the log
 * catches a cut-off tail. Appending and verifying need the key (store_audit_key_load). */
typedef struct store_audit_row {
    int64_t id;           /* 1, 2, 3, ... */
    uint64_t time_ms;
    char actor[64];       /* the account, or the name tried at a failed login */
    char action[32];      /* login.ok, login.fail, login.locked, record.view, export, ... */
    char target[256];     /* what was acted on: a record key, a view and its filters */
    char address[64];     /* the client's address */
    uint8_t hash[32];
    const char *ids;      /* what a read showed: the records' keys, comma separated ("" for
                             other acts); valid during the callback only */
} store_audit_row;

/* The longest ids list one audit row holds (a page of 1000 record keys fits). */
#define STORE_AUDIT_IDS_MAX (256u * 1024u)

/* Appends one row (strings longer than the fields above are refused with STORE_EINVAL). */
int store_audit_append(store *st, uint64_t time_ms, const char *actor, const char *action,
                       const char *target, const char *address);
/* The same with the ids a read showed (at most STORE_AUDIT_IDS_MAX - 1 bytes). */
int store_audit_append_ids(store *st, uint64_t time_ms, const char *actor, const char *action,
                           const char *target, const char *address, const char *ids);

/* Newest first, rows with id < before_id (0: from the newest), at most limit (0: 100). A
 * non-zero return from cb stops the walk and is returned. */
typedef int (*store_audit_cb)(const store_audit_row *row, void *user_data);
int store_audit_list(store *st, int64_t before_id, uint32_t limit, store_audit_cb cb,
                     void *user_data);

/* Newest first, the rows matching every filter set: id < before_id (0: from the newest);
 * actor equal; action equal or, for a name without a dot such as "login", in its family
 * ("login.ok", "login.fail", ...); from_ms <= time_ms < to_ms (0: open). At most limit rows
 * (0: every match). */
typedef struct store_audit_filter {
    int64_t before_id;
    uint32_t limit;
    const char *actor;  /* NULL or "": any */
    const char *action; /* NULL or "": any */
    uint64_t from_ms;
    uint64_t to_ms;
} store_audit_filter;
int store_audit_query(store *st, const store_audit_filter *filter, store_audit_cb cb,
                      void *user_data);

/* Recomputes the keyed chain and checks the seal. STORE_OK with the row count, or
 * STORE_ETAMPERED with the id of the first row that does not verify in *out_bad_id (a changed,
 * removed or inserted row, a chain recomputed without the key; a removed tail shows as the row
 * after the last one left) and the reason in store_errmsg. STORE_EINVAL without a key. */
int store_audit_verify(store *st, uint64_t *out_n_rows, int64_t *out_bad_id);

/* ---- Audit key and checkpoints (audit_key.c) --------------------------------------------------- */

/* The audit key: 32 random bytes kept outside the store in a file of 64 hex digits and a
 * newline, readable by its owner only (mode 0600). The default path is the store's path with
 * ".audit-key" appended. */
#define STORE_AUDIT_KEY_SUFFIX ".audit-key"

/* Makes a new key file at path (O_EXCL, mode 0600). STORE_EEXISTS when path exists (nothing is
 * overwritten), STORE_EIO with the reason in err otherwise. No store needed. */
int store_audit_key_create(const char *path, char *err, size_t err_size);

/* Reads the key file into st. STORE_EINVAL when it is missing, malformed, or readable or
 * writable by anyone but its owner (group/other mode bits set); the reason in store_errmsg. */
int store_audit_key_load(store *st, const char *path);

/* Checks the loaded key against the store's audit log before anything is changed: STORE_EINVAL
 * when the log's first row and its seal both fail with this key (another store's key, not an
 * edit, which audit verify reports); STORE_OK on an empty log. */
int store_audit_key_check(store *st);

/* A checkpoint is one text line, signed with the audit key, that an operator keeps outside the
 * store (a log, a file shipped elsewhere, paper):
 *   outpost-audit-checkpoint v1 rows=N head=HEX64 time_ms=T key=HEX16 mac=HEX64
 * key is the key's id (the first 8 bytes of SHA-256 over a label and the key); mac is
 * HMAC-SHA-256(key, everything before " mac="). A later store must still hold row N with the
 * hash head: a rewritten, deleted or truncated log no longer does. */
#define STORE_CHECKPOINT_LINE_MAX 256

/* Writes the checkpoint of the log as it is now (NUL-terminated, no newline) into out_line
 * (at least STORE_CHECKPOINT_LINE_MAX bytes) and its row count into *out_n_rows. */
int store_audit_checkpoint(store *st, uint64_t now_ms, char *out_line, uint64_t *out_n_rows);

/* Checks one checkpoint line against the key and the log. STORE_OK when the signature verifies
 * and the log still holds row N with that hash; STORE_ETAMPERED when it does not (the reason,
 * and the row in *out_bad_id: N when it is gone or differs); STORE_EINVAL for a line that is
 * not a checkpoint, or one signed with another key. */
int store_audit_verify_checkpoint(store *st, const char *line, int64_t *out_bad_id);

/* ---- Dashboard queries (store_dashboard.c) ---------------------------------------------------- */

/* Every query below sees only rows whose scope value (or whose worker's team) is one of teams;
 * n_teams 0 sees nothing. Text is returned as stored: the caller escapes it for its output. */

typedef struct store_dash_device {
    char device_id[40];
    char worker_id[64];
    char name[64];
    char teams[256];        /* the worker's teams, comma separated */
    uint64_t enrolled_ms;
    uint64_t last_seen_ms;  /* 0 = never synced */
    bool revoked;
    /* What is stuck: the outbox entries the device said were waiting at its last HELLO that
     * the server has not recorded since (reported_ms 0: it has not said), its changes the
     * server refused and the newest refusal's message, and what the device said of itself. */
    uint64_t pending;
    uint64_t reported_ms;
    uint64_t refused;
    char last_refusal[160]; /* the newest refusal's message, "" when none */
    char last_error[160];   /* the device's own last sync error, as it said at HELLO */
    char app[64];           /* the library version it said at HELLO, "" when not said */
} store_dash_device;

typedef int (*store_dash_device_cb)(const store_dash_device *row, void *user_data);
/* Workers' devices in teams, most recently seen first. */
int store_dash_devices(store *st, const char (*teams)[64], uint32_t n_teams,
                       store_dash_device_cb cb, void *user_data);

/* A search over one synced table. worker_col and date_col name columns of the table (NULL when
 * the table has none); date_from/date_to compare the date column's text (ISO 8601 sorts). */
typedef struct store_dash_query {
    const char *table;
    const char *worker_col;
    const char *date_col;
    const char *worker;     /* exact worker id, or NULL */
    const char *team;       /* exact scope value (must be one of teams), or NULL */
    const char *date_from;  /* inclusive, or NULL */
    const char *date_to;    /* inclusive prefix ("2026-11-28" covers the whole day), or NULL */
    const char *text;       /* substring of any column, or NULL */
    const char *id;         /* exact primary key text (one record), or NULL */
    const char *match_col;  /* with match_value: rows whose column equals it (linked records) */
    const char *match_value;
    const char *sort;       /* a column of the table to order by, or NULL (date, newest first) */
    bool desc;              /* with sort: descending */
    uint32_t offset;        /* rows to skip (paging), at most STORE_DASH_OFFSET_MAX */
    uint32_t limit;         /* 0: 200; at most 1000 */
    bool *out_more;         /* may be NULL: set when rows beyond this page match */
} store_dash_query;

#define STORE_DASH_OFFSET_MAX 1000000u

/* One row: n_cols column names and their values as text (NULL for SQL NULL). */
typedef struct store_dash_record {
    uint32_t n_cols;
    const char *const *cols;
    const char *const *values;
    const char *key; /* the primary key's (first column's) value: what the audit row names */
} store_dash_record;

typedef int (*store_dash_record_cb)(const store_dash_record *rec, void *user_data);
/* Rows matching q, newest date first (rowid order without a date column) or by q->sort, from
 * q->offset on. The sort column is checked against the table's columns and every value is a
 * bound parameter. STORE_ENOTFOUND when the table is not synced; STORE_EINVAL when a named
 * column does not exist or the offset is past STORE_DASH_OFFSET_MAX. */
int store_dash_records(store *st, const char (*teams)[64], uint32_t n_teams,
                       const store_dash_query *q, store_dash_record_cb cb, void *user_data);

/* Records per day per worker: calls cb once per (day, worker) with its count, days ascending,
 * for days >= date_from (the first 10 characters of date_col). */
typedef int (*store_dash_count_cb)(const char *day, const char *worker, uint64_t count,
                                   void *user_data);
int store_dash_per_day(store *st, const char (*teams)[64], uint32_t n_teams, const char *table,
                       const char *worker_col, const char *date_col, const char *date_from,
                       store_dash_count_cb cb, void *user_data);

typedef struct store_dash_conflict {
    int64_t id;
    char table[64];
    char column[64];
    char row_key[128];       /* the primary key as text (first key column) */
    char scope[64];
    const char *losing;      /* value text, NULL for SQL NULL */
    const char *winning;
    char loser_device[40];
    char loser_worker[64];
    char winner_device[40];
    char winner_worker[64];  /* the winning device's worker; "" when the server wrote it */
    uint64_t time_ms;
    bool reversible;         /* undecided and store_dash_decide would reverse it */
    char reverse_refused[160]; /* undecided, not refused, not reversible: why ("" otherwise) */
    char decision[16];       /* "", "kept" or "reversed" */
    char decided_by[64];
    bool refused;            /* a change the server refused (never applied, not reversible):
                              * losing is the worker's value, or NULL when the row was aimed
                              * at a team the worker is not in */
    uint32_t refused_code;   /* its proto_error_code */
    char refused_message[160];
} store_dash_conflict;

typedef int (*store_dash_conflict_cb)(const store_dash_conflict *c, void *user_data);
/* Conflicts on rows in teams, newest first; only undecided ones unless all. */
int store_dash_conflicts(store *st, const char (*teams)[64], uint32_t n_teams, bool all,
                         uint32_t limit, store_dash_conflict_cb cb, void *user_data);
/* Every conflict (decided or not) on one row of table whose first key column is key. */
int store_dash_conflicts_of(store *st, const char (*teams)[64], uint32_t n_teams,
                            const char *table, const char *key, store_dash_conflict_cb cb,
                            void *user_data);

/* One entry of a record's history, from the change log (store_dash_history.c). */
typedef struct store_dash_change {
    int64_t seq;
    uint64_t time_ms;
    int op;                 /* proto_op: 1 insert, 2 update, 3 delete */
    bool altered;           /* the merge changed what the device sent */
    char device_id[40];     /* "" when the server wrote it (a supervisor's reversal) */
    char device_name[64];
    char worker_id[64];
    char decided_by[64];    /* a reversal: the supervisor who made it */
} store_dash_change;

typedef int (*store_dash_change_cb)(const store_dash_change *ch, void *user_data);
/* The changes of one row of table (first key column = key), oldest first, when the row's scope
 * is one of teams (nothing otherwise). At most limit entries (0: 500), the newest kept. */
int store_dash_history(store *st, const char (*teams)[64], uint32_t n_teams, const char *table,
                       const char *key, uint32_t limit, store_dash_change_cb cb,
                       void *user_data);

/* The links of table to other synced tables, by naming: an outgoing link is a column NAME_id of
 * table where NAMEs is a synced table (cb gets NAMEs and the column); an incoming one is a
 * column SINGULAR_id of another synced table where table is SINGULARs (cb gets that table and
 * its column). A non-zero cb return stops the walk and is returned. */
typedef int (*store_dash_link_cb)(const char *table, const char *column, bool outgoing,
                                  void *user_data);
int store_dash_links(store *st, const char *table, store_dash_link_cb cb, void *user_data);

/* One record of table by its first key column, through the key's index, when its scope is one
 * of teams: cb is called once, or not at all when there is no such record in teams. */
int store_dash_record_get(store *st, const char (*teams)[64], uint32_t n_teams, const char *table,
                          const char *key, store_dash_record_cb cb, void *user_data);

/* Records what a device said about itself at HELLO: its waiting outbox entries, its library
 * version and its last sync error (either may be NULL: not said; cut to the view's sizes). */
int store_device_report(store *st, const char *device_id, uint64_t pending, const char *app,
                        const char *last_error, uint64_t now_ms);

/* Records a supervisor's decision on a conflict in teams: keep (nothing changes) or reverse
 * (the losing value is written back as a new change with a server HLC, so it syncs to every
 * device in scope). STORE_ENOTFOUND for a conflict outside teams; STORE_EEXISTS when already
 * decided; STORE_EINVAL when reversing a conflict that is not reversible. out_info (may be
 * NULL) names the teams to NOTIFY, as store_push does. */
int store_dash_decide(store *st, const char (*teams)[64], uint32_t n_teams, int64_t conflict_id,
                      bool reverse, const char *user, uint64_t now_ms,
                      store_push_info *out_info);

#endif /* OUTPOST_STORE_H */
