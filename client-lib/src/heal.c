/*
 * A central store that went back in time (restored from a backup) has lost what devices pushed
 * after the backup, and hands out server sequences devices have already passed. A device keeps
 * what it pushed for a retention window (_outpost_sent), remembers the store's identity and
 * epoch and the highest entry the store acknowledged (_outpost_server), and on WELCOME compares:
 *   - another store id: refused (OUTPOST_EOTHERSTORE), nothing sent or merged;
 *   - another epoch, an `ack` below what the store acknowledged before, or a server sequence
 *     below this device's cursor: every kept entry above the store's `ack` goes back into the
 *     outbox (pushed again; the store answers those it has from its record and applies the
 *     rest) and the cursor goes back to 0 (the next pull is a full one).
 * "Before" is as of the HELLO: a second engine on the same replica (the CLI beside the field
 * app) may record ACKs and a cursor the store gave it after this HELLO left, which the WELCOME
 * answering it cannot know of; taken for a rewind, they were sent and pulled again for nothing.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static int step_done(outpost_replica *r, sqlite3_stmt *stmt, const char *what)
{
    r->mode = MODE_LIBRARY;
    int rc = sqlite3_step(stmt);
    r->mode = MODE_APP;
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? OUTPOST_OK : replica_fail_sqlite(r, rc, what);
}

static int64_t clamp64(uint64_t v)
{
    return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* Inside the ACK's transaction, before the entry leaves the outbox: keeps its record (its
 * changeset stays where capture wrote it, in _outpost_changesets), raises the highest
 * acknowledged seq, and drops entries older than the retention window with their changesets. */
int sent_keep(outpost_replica *r, uint64_t seq)
{
    int64_t now = replica_now_ms(r);
    sqlite3_stmt *stmt = NULL;
    int rc = replica_prepare(r,
                             "INSERT OR REPLACE INTO _outpost_sent(seq, hlc, created_ms,"
                             " schema_version, acked_ms)"
                             " SELECT seq, hlc, created_ms, schema_version, ?2"
                             " FROM _outpost_outbox WHERE seq = ?1",
                             &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_int64(stmt, 1, clamp64(seq));
    sqlite3_bind_int64(stmt, 2, now);
    rc = step_done(r, stmt, "keeping the acknowledged entry");
    if (rc == OUTPOST_OK)
        rc = replica_prepare(r, "UPDATE _outpost_server SET acked_max = max(acked_max, ?1)"
                                " WHERE id = 1", &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_int64(stmt, 1, clamp64(seq));
    rc = step_done(r, stmt, "recording the acknowledged entry");
    if (rc == OUTPOST_OK)
        rc = replica_prepare(r, "DELETE FROM _outpost_changesets WHERE seq IN"
                                " (SELECT seq FROM _outpost_sent WHERE acked_ms < ?1)", &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_int64(stmt, 1, now - r->shared->sent_retention_ms);
    rc = step_done(r, stmt, "pruning acknowledged entries");
    if (rc == OUTPOST_OK)
        rc = replica_prepare(r, "DELETE FROM _outpost_sent WHERE acked_ms < ?1", &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_int64(stmt, 1, now - r->shared->sent_retention_ms);
    return step_done(r, stmt, "pruning acknowledged entries");
}

/* Inside an open transaction: kept entries above server_acked back into the outbox (their
 * changesets stay in _outpost_changesets), cursor 0. */
static int rewind_in_tx(outpost_replica *r, uint64_t server_acked, heal_result *out)
{
    sqlite3_stmt *stmt = NULL;
    int rc = replica_prepare(r,
                             "INSERT INTO _outpost_outbox(seq, hlc, created_ms, schema_version)"
                             " SELECT seq, hlc, created_ms, schema_version"
                             " FROM _outpost_sent WHERE seq > ?1 ORDER BY seq",
                             &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_int64(stmt, 1, clamp64(server_acked));
    rc = step_done(r, stmt, "putting acknowledged entries back in the outbox");
    if (rc == OUTPOST_OK)
        out->n_resent = (uint64_t)sqlite3_changes(r->db);
    if (rc == OUTPOST_OK)
        rc = replica_prepare(r, "DELETE FROM _outpost_sent WHERE seq > ?1", &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_int64(stmt, 1, clamp64(server_acked));
    rc = step_done(r, stmt, "putting acknowledged entries back in the outbox");
    if (rc == OUTPOST_OK)
        rc = replica_prepare(r, "UPDATE _outpost_server SET acked_max = min(acked_max, ?1)"
                                " WHERE id = 1", &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_int64(stmt, 1, clamp64(server_acked));
    rc = step_done(r, stmt, "recording the store's acknowledged entry");
    if (rc == OUTPOST_OK)
        rc = replica_prepare(r, "UPDATE _outpost_state SET cursor = 0 WHERE id = 1", &stmt);
    if (rc == OUTPOST_OK)
        rc = step_done(r, stmt, "resetting the cursor");
    if (rc == OUTPOST_OK)
        rc = replica_prepare(r, "UPDATE _outpost_pulled SET cursor = 0 WHERE id = 1", &stmt);
    if (rc == OUTPOST_OK)
        rc = step_done(r, stmt, "resetting the cursor");
    if (rc == OUTPOST_OK) {
        out->rewound = true;
        r->pending_valid = false;
    }
    return rc;
}

static int finish(outpost_replica *r, int rc)
{
    if (rc == OUTPOST_OK)
        return replica_commit(r);
    replica_rollback(r);
    return rc;
}

int heal_rewind(outpost_replica *r, uint64_t server_acked, heal_result *out_result)
{
    memset(out_result, 0, sizeof *out_result);
    int rc = replica_begin(r);
    if (rc != OUTPOST_OK)
        return rc;
    return finish(r, rewind_in_tx(r, server_acked, out_result));
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

int heal_on_welcome(outpost_replica *r, const proto_welcome *w, const heal_hello *hello,
                    heal_result *out_result)
{
    memset(out_result, 0, sizeof *out_result);
    int rc = replica_begin(r);
    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_stmt *stmt = NULL;
    rc = replica_prepare(r,
                         "SELECT s.store_id, s.epoch, s.acked_max, t.cursor"
                         " FROM _outpost_server s, _outpost_state t WHERE s.id = 1 AND t.id = 1",
                         &stmt);
    if (rc != OUTPOST_OK) {
        replica_rollback(r);
        return rc;
    }
    /* The id is opaque and of any length: compared while the row is at hand, kept for the
     * message (shortened) only. */
    char known_id[80] = "";
    bool known = false, same_id = false;
    uint64_t known_epoch = 0, acked_max = 0, cursor = 0;
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(stmt, 0);
        known = sqlite3_column_type(stmt, 0) == SQLITE_TEXT && id != NULL && id[0] != '\0';
        if (known) {
            snprintf(known_id, sizeof known_id, "%s", id);
            same_id = w->has_store && strcmp(id, w->store.id) == 0;
        }
        known_epoch = (uint64_t)sqlite3_column_int64(stmt, 1);
        acked_max = (uint64_t)sqlite3_column_int64(stmt, 2);
        cursor = (uint64_t)sqlite3_column_int64(stmt, 3);
    }
    sqlite3_finalize(stmt);
    if (step != SQLITE_ROW)
        return finish(r, replica_fail_sqlite(r, step == SQLITE_DONE ? SQLITE_CORRUPT : step,
                                             "reading what this device knows of the server"));
    if (hello != NULL) {
        acked_max = min_u64(acked_max, hello->acked);
        cursor = min_u64(cursor, hello->cursor);
    }

    if (w->has_store && known && !same_id)
        return finish(r, replica_fail(r, OUTPOST_EOTHERSTORE,
                                      "the server is central store %s, but this replica syncs "
                                      "with store %s: refusing to merge two stores",
                                      w->store.id, known_id));
    if (w->has_store && known_epoch != 0 && w->store.epoch != known_epoch)
        snprintf(out_result->why, sizeof out_result->why,
                 "the central store was restored (epoch %llu, was %llu)",
                 (unsigned long long)w->store.epoch, (unsigned long long)known_epoch);
    else if (w->acked_seq < acked_max)
        snprintf(out_result->why, sizeof out_result->why,
                 "the server acknowledges entries up to %llu, but had acknowledged %llu",
                 (unsigned long long)w->acked_seq, (unsigned long long)acked_max);
    else if (w->server_seq < cursor)
        snprintf(out_result->why, sizeof out_result->why,
                 "the server's newest sequence %llu is behind this device's cursor %llu",
                 (unsigned long long)w->server_seq, (unsigned long long)cursor);
    if (out_result->why[0])
        rc = rewind_in_tx(r, w->acked_seq, out_result);
    if (rc == OUTPOST_OK && w->has_store && !(same_id && known_epoch == w->store.epoch)) {
        rc = replica_prepare(r, "UPDATE _outpost_server SET store_id = ?1, epoch = ?2 WHERE id = 1",
                             &stmt);
        if (rc == OUTPOST_OK) {
            sqlite3_bind_text(stmt, 1, w->store.id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(stmt, 2, clamp64(w->store.epoch));
            rc = step_done(r, stmt, "remembering the central store");
        }
    }
    return finish(r, rc);
}

int heal_known_server(outpost_replica *r, uint64_t *out_acked_max, char *store_id,
                      size_t store_id_size)
{
    sqlite3_stmt *stmt = NULL;
    *out_acked_max = 0;
    store_id[0] = '\0';
    int rc = replica_prepare(r, "SELECT acked_max, store_id FROM _outpost_server WHERE id = 1",
                             &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    r->mode = MODE_LIBRARY;
    int step = sqlite3_step(stmt);
    r->mode = MODE_APP;
    if (step == SQLITE_ROW) {
        *out_acked_max = (uint64_t)sqlite3_column_int64(stmt, 0);
        const char *id = (const char *)sqlite3_column_text(stmt, 1);
        if (id && strlen(id) < store_id_size)
            memcpy(store_id, id, strlen(id) + 1);
    }
    sqlite3_finalize(stmt);
    return step == SQLITE_ROW || step == SQLITE_DONE
               ? OUTPOST_OK
               : replica_fail_sqlite(r, step, "reading what this device knows of the server");
}
