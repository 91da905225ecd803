/* Change capture: every committed write to a synced table is in the outbox, and writes that
 * bypass the library are refused. */
#include "unit/client_fixture.h"

static void test_capture_commit_writes_outbox_entry(void **state)
{
    fixture *f = *state;
    uint64_t seq = 0;

    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c2", "Ben", 16), OUTPOST_OK);
    assert_int_equal(outpost_tx_commit(f->r, &seq), OUTPOST_OK);
    assert_int_equal(seq, 1);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts"), 2);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM _outpost_outbox WHERE seq = 1"), 1);
    /* Durable: still there after reopening. */
    fx_reopen(f);
    assert_int_equal(fx_pending(f), 1);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts"), 2);
}

static void test_capture_rollback_leaves_nothing(void **state)
{
    fixture *f = *state;
    outpost_outbox_entry *e = NULL;
    uint64_t seq = 0;

    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "gone", "Ana", 15), OUTPOST_OK);
    assert_int_equal(outpost_tx_rollback(f->r), OUTPOST_OK);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts"), 0);
    assert_int_equal(fx_pending(f), 0);

    /* The next transaction's entry holds only its own row, not the rolled-back one. */
    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "kept", "Ben", 16), OUTPOST_OK);
    assert_int_equal(outpost_tx_commit(f->r, &seq), OUTPOST_OK);
    assert_int_equal(seq, 1);
    assert_int_equal(outpost_outbox_read(f->r, 0, &e), OUTPOST_OK);
    assert_non_null(e);
    assert_int_equal(e->push.n_tables, 1);
    assert_int_equal(e->push.tables[0].n_changes, 1);
    assert_memory_equal(e->push.tables[0].changes[0].cols[0].new_val.u.b.p, "kept", 4);
    outpost_outbox_entry_free(e);
}

static void test_capture_direct_writes_refused(void **state)
{
    fixture *f = *state;
    sqlite3 *db = outpost_replica_db(f->r);

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(sqlite3_exec(db, "INSERT INTO contacts(id, team_id) VALUES('x', 't')", NULL,
                                  NULL, NULL), SQLITE_AUTH);
    assert_int_equal(sqlite3_exec(db, "UPDATE contacts SET name = 'Eve'", NULL, NULL, NULL), SQLITE_AUTH);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM contacts", NULL, NULL, NULL), SQLITE_AUTH);
    assert_int_equal(sqlite3_exec(db, "DROP TABLE contacts", NULL, NULL, NULL), SQLITE_AUTH);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM _outpost_outbox", NULL, NULL, NULL), SQLITE_AUTH);
    assert_int_equal(sqlite3_exec(db, "UPDATE _outpost_state SET device_seq = 0", NULL, NULL, NULL),
                     SQLITE_AUTH);
    /* A trigger cannot smuggle a write in either: the statement that would fire it is refused. */
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE scratch(x TEXT);"
                                  "CREATE TRIGGER sneak AFTER INSERT ON scratch BEGIN"
                                  " INSERT INTO contacts(id, team_id) VALUES(new.x, 't'); END",
                                  NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "INSERT INTO scratch VALUES('y')", NULL, NULL, NULL), SQLITE_AUTH);
    /* Nor can a trigger on a synced table, which would fire when pulled rows are applied. */
    assert_int_equal(sqlite3_exec(db, "CREATE TRIGGER t1 AFTER UPDATE ON contacts BEGIN"
                                  " INSERT INTO scratch VALUES('x'); END", NULL, NULL, NULL), SQLITE_AUTH);
    assert_int_equal(sqlite3_exec(db, "CREATE TEMP TRIGGER t2 AFTER DELETE ON main.contacts BEGIN"
                                  " SELECT 1; END", NULL, NULL, NULL), SQLITE_AUTH);
    /* Durability settings are the library's. */
    assert_int_equal(sqlite3_exec(db, "PRAGMA synchronous=OFF", NULL, NULL, NULL), SQLITE_AUTH);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL), SQLITE_AUTH);
    assert_int_equal(sqlite3_exec(db, "PRAGMA synchronous", NULL, NULL, NULL), SQLITE_OK);
    /* The app's own tables stay writable. */
    assert_int_equal(sqlite3_exec(db, "DROP TRIGGER sneak; INSERT INTO scratch VALUES('z')", NULL,
                                  NULL, NULL), SQLITE_OK);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts"), 1);
    assert_int_equal(fx_pending(f), 1);
}

static void test_capture_exec_refuses_transaction_control(void **state)
{
    fixture *f = *state;

    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "COMMIT", NULL, 0), OUTPOST_EDENIED);
    assert_non_null(strstr(outpost_errmsg(f->r), "transactions"));
    /* Straight on the connection too, while the library's transaction is open. */
    assert_int_equal(sqlite3_exec(outpost_replica_db(f->r), "COMMIT", NULL, NULL, NULL), SQLITE_AUTH);
    assert_int_equal(outpost_exec(f->r, "DELETE FROM _outpost_outbox", NULL, 0), OUTPOST_EDENIED);
    assert_int_equal(outpost_exec(f->r, "ALTER TABLE contacts ADD COLUMN x", NULL, 0), OUTPOST_EDENIED);
    assert_int_equal(outpost_tx_commit(f->r, NULL), OUTPOST_OK);
    assert_int_equal(fx_pending(f), 1);
}

static void test_capture_exec_outside_tx_commits_alone(void **state)
{
    fixture *f = *state;
    outpost_value p[2] = {ov_text("Zoe"), ov_text("c1")};

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "UPDATE contacts SET name = ?1 WHERE id = ?2", p, 2), OUTPOST_OK);
    assert_int_equal(fx_pending(f), 2);
}

static void test_capture_failed_statement_keeps_transaction(void **state)
{
    fixture *f = *state;
    uint64_t seq = 0;

    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c1", "Dup", 15), OUTPOST_ESQL);
    assert_non_null(strstr(outpost_errmsg(f->r), "UNIQUE"));
    assert_int_equal(outpost_exec(f->r, "INSERT INTO nowhere VALUES(1)", NULL, 0), OUTPOST_ESQL);
    assert_int_equal(outpost_tx_commit(f->r, &seq), OUTPOST_OK);
    assert_int_equal(seq, 1);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts"), 1);
}

static void test_capture_no_change_no_entry(void **state)
{
    fixture *f = *state;
    uint64_t seq = 99;

    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "UPDATE contacts SET name = 'x' WHERE id = 'none'", NULL, 0),
                     OUTPOST_OK);
    assert_int_equal(sqlite3_exec(outpost_replica_db(f->r), "SELECT 1", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(outpost_tx_commit(f->r, &seq), OUTPOST_OK);
    assert_int_equal(seq, 0);
    assert_int_equal(fx_pending(f), 0);
    /* A row inserted and deleted in one transaction nets to nothing. */
    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "DELETE FROM contacts WHERE id = 'c1'", NULL, 0), OUTPOST_OK);
    assert_int_equal(outpost_tx_commit(f->r, &seq), OUTPOST_OK);
    assert_int_equal(seq, 0);
    assert_int_equal(fx_pending(f), 0);
}

static void test_capture_hlc_increases_when_clock_goes_back(void **state)
{
    fixture *f = *state;
    outpost_outbox_entry *a = NULL, *b = NULL, *c = NULL;

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    f->now_ms -= 60000; /* the phone's clock was set back a minute */
    assert_int_equal(fx_insert_contact(f, "c2", "Ben", 15), OUTPOST_OK);
    f->now_ms += 120000;
    assert_int_equal(fx_insert_contact(f, "c3", "Cy", 15), OUTPOST_OK);
    assert_int_equal(outpost_outbox_read(f->r, 0, &a), OUTPOST_OK);
    assert_int_equal(outpost_outbox_read(f->r, 1, &b), OUTPOST_OK);
    assert_int_equal(outpost_outbox_read(f->r, 2, &c), OUTPOST_OK);
    assert_int_equal(PROTO_HLC_MS(a->push.hlc), 1700000000000);
    assert_true(b->push.hlc > a->push.hlc);
    assert_int_equal(PROTO_HLC_MS(b->push.hlc), 1700000000000);
    assert_int_equal(PROTO_HLC_COUNTER(b->push.hlc), 1);
    assert_int_equal(c->push.hlc, PROTO_HLC_MAKE(1700000060000, 0));
    outpost_outbox_entry_free(a);
    outpost_outbox_entry_free(b);
    outpost_outbox_entry_free(c);
}

static void test_capture_calls_out_of_order_refused(void **state)
{
    fixture *f = *state;

    assert_int_equal(outpost_tx_commit(f->r, NULL), OUTPOST_EMISUSE);
    assert_int_equal(outpost_tx_rollback(f->r), OUTPOST_EMISUSE);
    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_OK);
    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_EMISUSE);
    assert_int_equal(outpost_exec(f->r, "INSERT INTO contacts(id, team_id) VALUES('a', 't');"
                                        " INSERT INTO contacts(id, team_id) VALUES('b', 't')", NULL, 0),
                     OUTPOST_EINVAL);
    assert_int_equal(outpost_exec(f->r, NULL, NULL, 0), OUTPOST_EINVAL);
    assert_int_equal(outpost_exec(f->r, "SELECT ?1", NULL, 1), OUTPOST_EINVAL);
    assert_int_equal(outpost_tx_rollback(f->r), OUTPOST_OK);
    assert_int_equal(outpost_tx_begin(NULL), OUTPOST_EINVAL);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts"), 0);
}

static void test_capture_raw_transaction_blocks_library(void **state)
{
    fixture *f = *state;
    sqlite3 *db = outpost_replica_db(f->r);

    /* The app may use its own tables in its own transaction, but not interleave it with the
     * library's. */
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE prefs(k TEXT PRIMARY KEY, v); BEGIN;"
                                  " INSERT INTO prefs VALUES('a', 1)", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_EMISUSE);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(fx_pending(f), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_capture_commit_writes_outbox_entry, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_capture_rollback_leaves_nothing, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_capture_direct_writes_refused, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_capture_exec_refuses_transaction_control, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_capture_exec_outside_tx_commits_alone, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_capture_failed_statement_keeps_transaction, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_capture_no_change_no_entry, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_capture_hlc_increases_when_clock_goes_back, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_capture_calls_out_of_order_refused, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_capture_raw_transaction_blocks_library, fx_setup,
                                        fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
