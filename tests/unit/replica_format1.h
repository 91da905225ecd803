/* A replica as liboutpost wrote it up to format 1, for the tests of the upgrade to format 2:
 * the changeset in each row of _outpost_outbox and _outpost_sent (the DDL is that version's).
 * Rebuilt by hand from an open replica's entries: what a device holds when it is updated. */
#ifndef OUTPOST_TEST_REPLICA_FORMAT1_H
#define OUTPOST_TEST_REPLICA_FORMAT1_H

#include <sqlite3.h>

static const char replica_format1_sql[] =
    "CREATE TABLE _outpost_outbox_v1(seq INTEGER PRIMARY KEY, hlc INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, schema_version INTEGER NOT NULL, changeset BLOB NOT NULL);"
    "INSERT INTO _outpost_outbox_v1 SELECT o.seq, o.hlc, o.created_ms, o.schema_version,"
    " c.changeset FROM _outpost_outbox o JOIN _outpost_changesets c USING (seq);"
    "DROP TABLE _outpost_outbox;"
    "ALTER TABLE _outpost_outbox_v1 RENAME TO _outpost_outbox;"
    "CREATE TABLE _outpost_sent_v1(seq INTEGER PRIMARY KEY, hlc INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, schema_version INTEGER NOT NULL, changeset BLOB NOT NULL,"
    " acked_ms INTEGER NOT NULL);"
    "INSERT INTO _outpost_sent_v1 SELECT s.seq, s.hlc, s.created_ms, s.schema_version,"
    " c.changeset, s.acked_ms FROM _outpost_sent s JOIN _outpost_changesets c USING (seq);"
    "DROP TABLE _outpost_sent;"
    "ALTER TABLE _outpost_sent_v1 RENAME TO _outpost_sent;"
    "CREATE INDEX _outpost_sent_acked ON _outpost_sent(acked_ms);"
    "DROP TABLE _outpost_changesets;"
    "UPDATE _outpost_state SET format = 1;";

/* Turns the replica open on db (outpost_replica_db(), no engine running on it) into format 1.
 * Lifts the library's write guard on that connection: close and reopen the replica after. */
static inline int replica_format1_make(sqlite3 *db)
{
    sqlite3_set_authorizer(db, NULL, NULL);
    return sqlite3_exec(db, replica_format1_sql, NULL, NULL, NULL);
}

#endif
