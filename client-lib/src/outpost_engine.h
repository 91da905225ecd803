/*
 * The sync engine's seams into the replica: installing the server's schema, reading outbox
 * entries as PUSH messages, applying ACK, REJECT and ROWS. Internal to liboutpost (the sync
 * engine in sync.c and enroll.c uses them, and so do the library's own tests and benchmarks,
 * which link the static library): every type that crosses these seams is a protocol type from
 * <outpost/proto.h>, which apps never see. Not installed; not exported from the shared library.
 */
#ifndef OUTPOST_ENGINE_H
#define OUTPOST_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include <outpost/proto.h>

#include "outpost.h"

/* ---------------------------------------------------------------------------------------------
 * Schema. The server owns it and sends it as a SCHEMA message.
 */

/* Installs schema, or upgrades the installed one in place, in one transaction.
 *
 * New tables are created from their create_sql. Tables already present may gain columns at the
 * end (the upgrade keeps each new column's declared type, NOT NULL and DEFAULT; a new NOT NULL
 * column needs a default). Dropping or renaming tables or columns, reordering columns or
 * changing a primary key is not additive and is refused with OUTPOST_ESCHEMA.
 *
 * Each table must be exactly one CREATE TABLE statement for the table it names, its columns
 * and primary key must match the table's columns and pk lists, and its primary key must not be
 * a rowid or any single integer column (devices create rows offline; ids are UUIDv7 text, see
 * outpost_uuid_make()). Names starting with "_outpost_" or "sqlite_" are reserved.
 *
 * Installing the version already installed is a no-op; an older version is refused. No
 * transaction may be open (OUTPOST_EMISUSE). On failure nothing changes. */
int outpost_schema_install(outpost_replica *replica, const proto_schema *schema);

/* ---------------------------------------------------------------------------------------------
 * Outbox: committed transactions waiting for the server, oldest first.
 */

/* One outbox entry read as the PUSH message that carries it. push.chunk is 0 and push.more is
 * false: cutting big entries into chunks is the sender's business. Each table's changes come
 * from the entry's session changeset: INSERT carries every new value, DELETE every old value,
 * UPDATE the primary key's old values and the changed columns' old and new values only. */
typedef struct outpost_outbox_entry {
    proto_push push;
    int64_t created_ms;        /* wall clock at commit */
    size_t changeset_bytes;    /* size of the captured changeset */
    struct outpost_arena *arena_; /* private: owns every pointer inside push */
} outpost_outbox_entry;

/* Reads the first entry whose device sequence is greater than after_seq (0 for the oldest), so
 * a sender can walk the outbox in commit order without removing anything. On success
 * *out_entry is a new entry the caller frees with outpost_outbox_entry_free(), or NULL when no
 * entry follows after_seq. Entries stay until acknowledged or rejected. */
int outpost_outbox_read(outpost_replica *replica, uint64_t after_seq,
                        outpost_outbox_entry **out_entry);

/* Frees an entry. NULL is a no-op. */
void outpost_outbox_entry_free(outpost_outbox_entry *entry);

/* The server applied entry ack->seq: removes it from the outbox and records ack->conflicts (the
 * merge decisions taken against this device's writes) in _outpost_conflicts, in one
 * transaction, then reports each through on_conflict. The entry is kept (no longer pending) for
 * the retention window (outpost_config.sent_retention_days), so that a central store restored
 * from a backup can be given it again; older kept entries are pruned in the same transaction.
 * The rows stay as this device wrote them until the next pull brings the merged version. An ACK for an entry already removed is a
 * harmless no-op; one for a sequence never issued is OUTPOST_EPROTO. */
int outpost_outbox_ack(outpost_replica *replica, const proto_ack *ack);

/* outpost_outbox_ack() for n_acks answers at once, in one transaction (one commit): all are
 * recorded, or none (then each entry stays and is sent again, which the server answers from its
 * record). Conflicts are reported after the commit, in order. */
int outpost_outbox_ack_batch(outpost_replica *replica, const proto_ack *const *acks,
                             uint32_t n_acks);

/* The server refused entry reject->seq (none of it was applied). In one transaction: removes
 * the entry; restores the server's version of the affected rows from reject->tables (rows,
 * tombstones and scope removals, as outpost_rows_apply() does); undoes the entry's other
 * changes that the server did not mention (a refused insert is deleted, a refused delete or
 * update is put back); records each reject->rows item in _outpost_conflicts with kind
 * "REJECTED". Rows that later outbox entries change are left alone. Before any row is
 * restored, every change of the entry goes to quarantine with the values the worker wrote
 * (outpost.h, "Quarantine"), in the same transaction, so nothing the worker typed is lost. Then
 * reports each rejected row through on_conflict and each quarantined change through
 * on_rejected. A REJECT for an entry already removed is a no-op. */
int outpost_outbox_reject(outpost_replica *replica, const proto_reject *reject);

/* ---------------------------------------------------------------------------------------------
 * Pull.
 */

/* Applies one ROWS page and stores its cursor, in one local transaction with change capture
 * off, so pulled rows never enter the outbox. Rows are inserted or updated in place (columns the
 * page does not carry keep their values); tombstones and scope removals delete. A row with
 * pending outbox changes is not touched: its merged version comes back after the push. Applying
 * the same page again is harmless; a page whose cursor is older than the stored cursor is
 * ignored. When page->more is false the pull is complete and the last successful sync time is
 * set. OUTPOST_EPROTO for a table not in the installed schema, more columns than the replica
 * has, or an undefined value; nothing is applied then. No transaction may be open. */
int outpost_rows_apply(outpost_replica *replica, const proto_rows *page);

/* The library's value type and the protocol's, both ways (value.c). value_to_public gives a
 * view: text and blob still point into in. */
void value_to_public(const proto_value *in, outpost_value *out);
void value_from_public(const outpost_value *in, proto_value *out);

/* ---------------------------------------------------------------------------------------------
 * The engine's thread, for tests and benchmarks.
 */

/* Why the thread woke, as the loop tells it after each wait. */
typedef enum outpost_sync_wake_reason {
    OUTPOST_WAKE_APP,     /* a local commit, outpost_sync_now(), _network_changed(), stop */
    OUTPOST_WAKE_TIMER,   /* one of the engine's timers: retry, debounce, keepalive, look */
    OUTPOST_WAKE_NETWORK, /* the transport reported something: connected, message, sent, closed */
    OUTPOST_WAKE_OTHER,   /* none of those: libwebsockets' own timers, a ping, a spurious return */
    OUTPOST_WAKE_REASONS
} outpost_sync_wake_reason;

/* The wakes counted by outpost_sync_wakes() that had this reason. With OUTPOST_SYNC_DEBUG set
 * in the environment, the engine also writes each wake and its reason to stderr. */
uint64_t outpost_sync_wakes_for(outpost_sync *sync, outpost_sync_wake_reason why);

/* How many times the sync thread has woken (turns of its loop) since outpost_sync_start(). An
 * idle engine sleeps until a commit, a message or one of its timers needs it. */
uint64_t outpost_sync_wakes(outpost_sync *sync);

/* The engine's TLS handshakes so far: full ones, and resumed ones (a reconnection of the same
 * engine to the same server, from a TLS 1.3 ticket kept in memory; transport.h). */
void outpost_sync_handshakes(outpost_sync *sync, uint32_t *out_full, uint32_t *out_resumed);

#endif /* OUTPOST_ENGINE_H */
