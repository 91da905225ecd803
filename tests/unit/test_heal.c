/* heal.c: acknowledged entries kept for the retention window, and what WELCOME from a store that
 * went back in time does to the outbox and the cursor. */
#include "unit/client_fixture.h"

#include <sqlite3.h>

#include "../client-lib/src/internal.h"
#include "unit/replica_format1.h"

#define DAY_MS INT64_C(86400000)

static int64_t q(fixture *f, const char *sql)
{
    return fx_query_int(f, sql);
}

/* Commits one contact (one outbox entry) and acknowledges it. */
static void write_and_ack(fixture *f, const char *id)
{
    assert_int_equal(fx_insert_contact(f, id, "name", 1), OUTPOST_OK);
    outpost_status st;
    assert_int_equal(outpost_status_get(f->r, &st), OUTPOST_OK);
    proto_ack ack = {.seq = st.last_seq, .server_seq = 1};
    assert_int_equal(outpost_outbox_ack(f->r, &ack), OUTPOST_OK);
}

static void set_cursor(fixture *f, uint64_t cursor)
{
    proto_rows page = {.cursor = cursor, .more = false};
    assert_int_equal(outpost_rows_apply(f->r, &page), OUTPOST_OK);
}

static proto_welcome welcome(const char *store_id, uint64_t epoch, uint64_t ack, uint64_t sseq)
{
    proto_welcome w;
    memset(&w, 0, sizeof w);
    w.version = PROTO_VERSION;
    w.acked_seq = ack;
    w.server_seq = sseq;
    if (store_id) {
        w.has_store = true;
        w.store.id = store_id;
        w.store.epoch = epoch;
    }
    return w;
}

static void test_ack_keeps_the_entry_for_the_retention_window(void **state)
{
    fixture *f = *state;
    write_and_ack(f, "c1");
    assert_int_equal(fx_pending(f), 0);
    assert_int_equal(q(f, "SELECT count(*) FROM _outpost_sent WHERE seq = 1"), 1);
    assert_int_equal(q(f, "SELECT acked_max FROM _outpost_server"), 1);
    /* 29 days on: still kept */
    f->now_ms += 29 * DAY_MS;
    write_and_ack(f, "c2");
    assert_int_equal(q(f, "SELECT count(*) FROM _outpost_sent"), 2);
    /* past 30 days since the first ACK: pruned at the next ACK */
    f->now_ms += 2 * DAY_MS;
    write_and_ack(f, "c3");
    char buf[64];
    assert_string_equal(fx_query_text(f, "SELECT group_concat(seq, ',') FROM"
                                         " (SELECT seq FROM _outpost_sent ORDER BY seq)",
                                      buf, sizeof buf),
                        "2,3");
    assert_int_equal(q(f, "SELECT acked_max FROM _outpost_server"), 3);
}

/* Every ACK prunes kept entries by acked_ms. As a scan, that read every kept changeset (the
 * column sits after it) at every ACK: a bulk push of 100 entries of 1,000 rows read about
 * 570 MB, decrypting it on an encrypted replica. The prune must be an index range. */
static void test_ack_prune_reads_an_index_not_every_kept_entry(void **state)
{
    fixture *f = *state;
    sqlite3_stmt *st = NULL;
    bool indexed = false, scans = false;
    write_and_ack(f, "c1");
    assert_int_equal(sqlite3_prepare_v2(outpost_replica_db(f->r),
                                        "EXPLAIN QUERY PLAN SELECT seq FROM _outpost_sent"
                                        " WHERE acked_ms < 1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(st, 3);
        if (detail && strstr(detail, "_outpost_sent_acked"))
            indexed = true;
        if (detail && strncmp(detail, "SCAN", 4) == 0)
            scans = true;
    }
    sqlite3_finalize(st);
    assert_true(indexed);
    assert_false(scans);
}

/* The id of the contact entry seq's PUSH writes (the outbox read back as the server gets it). */
static void assert_entry_writes(fixture *f, uint64_t seq, const char *id)
{
    outpost_outbox_entry *e = NULL;
    assert_int_equal(outpost_outbox_read(f->r, seq - 1, &e), OUTPOST_OK);
    assert_non_null(e);
    assert_int_equal(e->push.seq, seq);
    assert_int_equal(e->push.n_tables, 1);
    assert_string_equal(e->push.tables[0].table, "contacts");
    assert_int_equal(e->push.tables[0].n_changes, 1);
    const proto_change *ch = &e->push.tables[0].changes[0];
    assert_int_equal(ch->op, PROTO_OP_INSERT);
    assert_int_equal(ch->cols[0].idx, 0);
    assert_int_equal(ch->cols[0].new_val.u.b.n, strlen(id));
    assert_memory_equal(ch->cols[0].new_val.u.b.p, id, strlen(id));
    outpost_outbox_entry_free(e);
}

/* An ACK records the entry as sent without writing its changeset again: the commit writes a
 * handful of pages, not the ~100 KB changeset's (format 1 copied it into _outpost_sent, about
 * 25 pages more, and freed it from the outbox). */
static void test_ack_does_not_rewrite_the_changeset(void **state)
{
    fixture *f = *state;
    static char notes[100 * 1024];
    memset(notes, 'n', sizeof notes - 1);
    outpost_value p[5] = {ov_text("big"), ov_text("team-a"), ov_text("name"), ov_int(1),
                          ov_text(notes)};
    assert_int_equal(outpost_exec(f->r, INSERT_CONTACT, p, 5), OUTPOST_OK);
    sqlite3 *db = outpost_replica_db(f->r);
    int written = 0, high = 0;
    assert_int_equal(sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_WRITE, &written, &high, 1),
                     SQLITE_OK);
    proto_ack ack = {.seq = 1, .server_seq = 1};
    assert_int_equal(outpost_outbox_ack(f->r, &ack), OUTPOST_OK);
    assert_int_equal(sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_WRITE, &written, &high, 0),
                     SQLITE_OK);
    assert_int_equal(fx_pending(f), 0);
    assert_int_equal(q(f, "SELECT count(*) FROM _outpost_sent WHERE seq = 1"), 1);
    assert_in_range(written, 1, 10);
    /* and it is still there to be sent again */
    heal_result h;
    assert_int_equal(heal_rewind(f->r, 0, &h), OUTPOST_OK);
    assert_int_equal(h.n_resent, 1);
    assert_entry_writes(f, 1, "big");
}

/* A replica of format 1 (two entries acknowledged and kept, one pending), encrypted as every
 * replica is, opened by this library: upgraded in place, it pushes its pending entry and, when
 * the store turns out restored, sends the kept ones again, each with its own changes. */
static void test_format1_replica_is_upgraded_and_keeps_pending_and_sent(void **state)
{
    fixture *f = *state;
    write_and_ack(f, "c1");
    write_and_ack(f, "c2");
    assert_int_equal(fx_insert_contact(f, "c3", "pending", 1), OUTPOST_OK);
    assert_int_equal(replica_format1_make(outpost_replica_db(f->r)), SQLITE_OK);
    assert_int_equal(q(f, "SELECT count(*) FROM _outpost_sent WHERE length(changeset) > 0"), 2);
    assert_int_equal(q(f, "SELECT count(*) FROM _outpost_outbox WHERE length(changeset) > 0"), 1);

    fx_reopen(f);
    assert_int_equal(q(f, "SELECT format FROM _outpost_state"), 2);
    assert_int_equal(fx_pending(f), 1);
    assert_int_equal(q(f, "SELECT count(*) FROM _outpost_sent"), 2);
    assert_int_equal(q(f, "SELECT count(*) FROM pragma_table_info('_outpost_outbox')"
                          " WHERE name = 'changeset'"), 0);
    assert_entry_writes(f, 3, "c3");
    /* the store was restored from a backup that has none of them */
    proto_welcome w = welcome("store-a", 1, 2, 0);
    heal_result h;
    assert_int_equal(heal_on_welcome(f->r, &w, NULL, &h), OUTPOST_OK);
    assert_false(h.rewound);
    w = welcome("store-a", 2, 0, 0);
    assert_int_equal(heal_on_welcome(f->r, &w, NULL, &h), OUTPOST_OK);
    assert_true(h.rewound);
    assert_int_equal(h.n_resent, 2);
    assert_int_equal(fx_pending(f), 3);
    assert_entry_writes(f, 1, "c1");
    assert_entry_writes(f, 2, "c2");
    assert_entry_writes(f, 3, "c3");
    /* opened again: nothing to upgrade, nothing changes */
    fx_reopen(f);
    assert_int_equal(fx_pending(f), 3);
    assert_entry_writes(f, 1, "c1");
}

/* A replica of format 1 from before the quarantine recorded which values a refused change
 * wrote: the upgrade adds the column, and the quarantined values it held read as written. */
static void test_format1_replica_without_changed_values_gains_them(void **state)
{
    fixture *f = *state;
    sqlite3 *db = outpost_replica_db(f->r);
    assert_int_equal(replica_format1_make(db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "ALTER TABLE _outpost_rejected_values DROP COLUMN changed;"
                                  "INSERT INTO _outpost_rejected_values(rejected_id, pos, col,"
                                  " value) VALUES (7, 0, 'name', 'kept')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    fx_reopen(f);
    assert_int_equal(q(f, "SELECT format FROM _outpost_state"), 2);
    assert_int_equal(q(f, "SELECT count(*) FROM _outpost_rejected_values"
                          " WHERE rejected_id = 7 AND value = 'kept' AND changed = 1"), 1);
}

/* A replica written by a newer library (a format this one does not know) is refused, not
 * rewritten. */
static void test_replica_of_a_newer_format_is_refused(void **state)
{
    fixture *f = *state;
    sqlite3 *db = outpost_replica_db(f->r);
    sqlite3_set_authorizer(db, NULL, NULL);
    assert_int_equal(sqlite3_exec(db, "UPDATE _outpost_state SET format = 3", NULL, NULL, NULL),
                     SQLITE_OK);
    outpost_replica_close(f->r);
    f->r = NULL;
    outpost_config cfg = fx_config(f);
    char err[256];
    assert_int_equal(outpost_replica_open(&cfg, &f->r, err, sizeof err), OUTPOST_ECORRUPT);
    assert_non_null(strstr(err, "has format 3, newer than this liboutpost knows (2)"));
}

static void test_retention_is_configurable(void **state)
{
    fixture *f = *state;
    outpost_replica_close(f->r);
    outpost_config cfg = fx_config(f);
    cfg.sent_retention_days = 1;
    char err[256];
    assert_int_equal(outpost_replica_open(&cfg, &f->r, err, sizeof err), OUTPOST_OK);
    write_and_ack(f, "c1");
    f->now_ms += 2 * DAY_MS;
    write_and_ack(f, "c2");
    assert_int_equal(q(f, "SELECT min(seq) FROM _outpost_sent"), 2);
    assert_int_equal(q(f, "SELECT count(*) FROM _outpost_sent"), 1);
}

static void test_same_store_same_life_changes_nothing(void **state)
{
    fixture *f = *state;
    write_and_ack(f, "c1");
    write_and_ack(f, "c2");
    set_cursor(f, 40);
    proto_welcome w = welcome("store-a", 1, 2, 40);
    heal_result h;
    assert_int_equal(heal_on_welcome(f->r, &w, NULL, &h), OUTPOST_OK);
    assert_false(h.rewound);
    assert_int_equal(fx_pending(f), 0);
    assert_int_equal(q(f, "SELECT cursor FROM _outpost_state"), 40);
    char buf[64];
    assert_string_equal(fx_query_text(f, "SELECT store_id || '/' || epoch FROM _outpost_server",
                                      buf, sizeof buf),
                        "store-a/1");
    assert_int_equal(heal_on_welcome(f->r, &w, NULL, &h), OUTPOST_OK);
    assert_false(h.rewound);
}

static void test_new_epoch_requeues_what_the_store_lacks_and_pulls_from_zero(void **state)
{
    fixture *f = *state;
    proto_welcome w = welcome("store-a", 1, 0, 0);
    heal_result h;
    assert_int_equal(heal_on_welcome(f->r, &w, NULL, &h), OUTPOST_OK);
    write_and_ack(f, "c1");
    write_and_ack(f, "c2");
    write_and_ack(f, "c3");
    assert_int_equal(fx_insert_contact(f, "c4", "pending", 1), OUTPOST_OK);
    set_cursor(f, 50);
    /* restored from a backup that had entry 1 only, its sequence moved forward to 50 */
    w = welcome("store-a", 2, 1, 50);
    assert_int_equal(heal_on_welcome(f->r, &w, NULL, &h), OUTPOST_OK);
    assert_true(h.rewound);
    assert_int_equal(h.n_resent, 2);
    assert_string_equal(h.why, "the central store was restored (epoch 2, was 1)");
    assert_int_equal(fx_pending(f), 3); /* 2 and 3 again, and 4 never sent */
    assert_int_equal(q(f, "SELECT count(*) FROM _outpost_outbox WHERE seq IN (2, 3, 4)"), 3);
    assert_int_equal(q(f, "SELECT count(*) FROM _outpost_sent"), 1);
    assert_int_equal(q(f, "SELECT cursor FROM _outpost_state"), 0);
    assert_int_equal(q(f, "SELECT epoch FROM _outpost_server"), 2);
    /* the re-sent entry reads back as the same PUSH */
    outpost_outbox_entry *e = NULL;
    assert_int_equal(outpost_outbox_read(f->r, 1, &e), OUTPOST_OK);
    assert_non_null(e);
    assert_int_equal(e->push.seq, 2);
    assert_int_equal(e->push.n_tables, 1);
    assert_string_equal(e->push.tables[0].table, "contacts");
    outpost_outbox_entry_free(e);
    /* the next WELCOME of the same life is calm */
    w = welcome("store-a", 2, 1, 50);
    assert_int_equal(heal_on_welcome(f->r, &w, NULL, &h), OUTPOST_OK);
    assert_false(h.rewound);
}

/* Two engines on one replica (the CLI beside the field app): B's HELLO said ack 2 and cursor
 * 40; A then recorded ACK 3 and cursor 60 from the same store; B's WELCOME, made before those,
 * says ack 2 and newest sequence 50. Nothing was lost: taken for a rewind, it once sent 231
 * accepted entries again and pulled everything from 0. */
static void test_acks_recorded_after_the_hello_are_no_rewind(void **state)
{
    fixture *f = *state;
    proto_welcome w = welcome("store-a", 1, 0, 0);
    heal_result h;
    assert_int_equal(heal_on_welcome(f->r, &w, NULL, &h), OUTPOST_OK);
    write_and_ack(f, "c1");
    write_and_ack(f, "c2");
    set_cursor(f, 40);
    const heal_hello said = {.acked = 2, .cursor = 40};
    write_and_ack(f, "c3"); /* the other engine, after the HELLO left */
    set_cursor(f, 60);
    w = welcome("store-a", 1, 2, 50);
    assert_int_equal(heal_on_welcome(f->r, &w, &said, &h), OUTPOST_OK);
    assert_false(h.rewound);
    assert_int_equal(fx_pending(f), 0);
    assert_int_equal(q(f, "SELECT cursor FROM _outpost_state"), 60);
    assert_int_equal(q(f, "SELECT acked_max FROM _outpost_server"), 3);
    /* what the HELLO said is still evidence: a WELCOME below it is a rewind */
    w = welcome("store-a", 1, 1, 50);
    assert_int_equal(heal_on_welcome(f->r, &w, &said, &h), OUTPOST_OK);
    assert_true(h.rewound);
    assert_int_equal(h.n_resent, 2);
}

static void test_ack_below_what_was_acknowledged_is_a_rewind(void **state)
{
    fixture *f = *state;
    write_and_ack(f, "c1");
    write_and_ack(f, "c2");
    write_and_ack(f, "c3");
    /* a server that sends no identity (older outpostd) but lost entry 3 */
    proto_welcome w = welcome(NULL, 0, 2, 100);
    heal_result h;
    assert_int_equal(heal_on_welcome(f->r, &w, NULL, &h), OUTPOST_OK);
    assert_true(h.rewound);
    assert_int_equal(h.n_resent, 1);
    assert_string_equal(h.why, "the server acknowledges entries up to 2, but had acknowledged 3");
    assert_int_equal(q(f, "SELECT seq FROM _outpost_outbox"), 3);
}

static void test_server_behind_the_cursor_is_a_rewind(void **state)
{
    fixture *f = *state;
    write_and_ack(f, "c1");
    set_cursor(f, 70);
    proto_welcome w = welcome(NULL, 0, 1, 60);
    heal_result h;
    assert_int_equal(heal_on_welcome(f->r, &w, NULL, &h), OUTPOST_OK);
    assert_true(h.rewound);
    assert_int_equal(h.n_resent, 0);
    assert_string_equal(h.why, "the server's newest sequence 60 is behind this device's cursor 70");
    assert_int_equal(q(f, "SELECT cursor FROM _outpost_state"), 0);
    /* and the explicit rewind (ERROR 14) does the same */
    set_cursor(f, 70);
    assert_int_equal(heal_rewind(f->r, 1, &h), OUTPOST_OK);
    assert_true(h.rewound);
    assert_int_equal(q(f, "SELECT cursor FROM _outpost_state"), 0);
}

static void test_another_store_is_refused_and_nothing_changes(void **state)
{
    fixture *f = *state;
    proto_welcome w = welcome("store-a", 1, 0, 0);
    heal_result h;
    assert_int_equal(heal_on_welcome(f->r, &w, NULL, &h), OUTPOST_OK);
    write_and_ack(f, "c1");
    set_cursor(f, 9);
    w = welcome("store-b", 1, 0, 0);
    assert_int_equal(heal_on_welcome(f->r, &w, NULL, &h), OUTPOST_EOTHERSTORE);
    assert_string_equal(outpost_errmsg(f->r),
                        "the server is central store store-b, but this replica syncs with "
                        "store store-a: refusing to merge two stores");
    assert_false(h.rewound);
    assert_int_equal(fx_pending(f), 0);
    assert_int_equal(q(f, "SELECT cursor FROM _outpost_state"), 9);
    char buf[64];
    assert_string_equal(fx_query_text(f, "SELECT store_id FROM _outpost_server", buf, sizeof buf),
                        "store-a");
    assert_string_equal(outpost_strerror(OUTPOST_EOTHERSTORE), "the server is another central store");
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T_(test_ack_keeps_the_entry_for_the_retention_window),
        T_(test_ack_prune_reads_an_index_not_every_kept_entry),
        T_(test_ack_does_not_rewrite_the_changeset),
        T_(test_format1_replica_is_upgraded_and_keeps_pending_and_sent),
        T_(test_format1_replica_without_changed_values_gains_them),
        T_(test_acks_recorded_after_the_hello_are_no_rewind),
        T_(test_replica_of_a_newer_format_is_refused),
        T_(test_retention_is_configurable),
        T_(test_same_store_same_life_changes_nothing),
        T_(test_new_epoch_requeues_what_the_store_lacks_and_pulls_from_zero),
        T_(test_ack_below_what_was_acknowledged_is_a_rewind),
        T_(test_server_behind_the_cursor_is_a_rewind),
        T_(test_another_store_is_refused_and_nothing_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
