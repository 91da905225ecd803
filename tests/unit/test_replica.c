/* Two handles on one replica file, as the app and the sync engine hold them: each follows the
 * other's schema upgrades, pending rows and commits, and a wipe by one stops the other. */
#include "unit/client_fixture.h"

#include "../client-lib/src/internal.h"

static outpost_replica *open_sibling(fixture *f)
{
    outpost_replica *sib = NULL;
    char err[256] = "";

    assert_int_equal(replica_open_sibling(f->r, &sib, err, sizeof err), OUTPOST_OK);
    assert_non_null(sib);
    return sib;
}

static void test_replica_sibling_schema_upgrade_is_guarded_and_captured(void **state)
{
    fixture *f = *state;
    static const char *note_cols[] = {"id", "body"};
    static uint32_t pk0[] = {0};
    outpost_replica *sync = open_sibling(f);
    outpost_outbox_entry *e = NULL;

    f->tables[2] = (proto_schema_table){.name = "notes", .n_columns = 2, .columns = note_cols,
                                        .n_pk = 1, .pk = pk0,
                                        .create_sql = "CREATE TABLE notes(id TEXT PRIMARY KEY, body TEXT)"};
    f->schema.n_tables = 3;
    f->schema.version = 2;
    assert_int_equal(outpost_schema_install(sync, &f->schema), OUTPOST_OK);

    /* The app's handle has made no call since: a direct write to the new table is still refused. */
    assert_int_equal(sqlite3_exec(outpost_replica_db(f->r), "INSERT INTO notes VALUES('n0', 'x')",
                                  NULL, NULL, NULL), SQLITE_AUTH);
    /* Through the library it is captured. */
    assert_int_equal(outpost_exec(f->r, "INSERT INTO notes VALUES('n1', 'y')", NULL, 0), OUTPOST_OK);
    assert_int_equal(outpost_outbox_read(sync, 0, &e), OUTPOST_OK);
    assert_non_null(e);
    assert_string_equal(e->push.tables[0].table, "notes");
    assert_int_equal(e->push.schema_version, 2);
    outpost_outbox_entry_free(e);
    assert_int_equal(sqlite3_exec(outpost_replica_db(f->r), "INSERT INTO notes VALUES('n2', 'z')",
                                  NULL, NULL, NULL), SQLITE_AUTH);
    outpost_replica_close(sync);
}

static void test_replica_sibling_pull_skips_rows_pending_on_app_handle(void **state)
{
    fixture *f = *state;
    outpost_replica *sync = open_sibling(f);
    proto_value row[5] = {pv_text("c1"), pv_text("team-a"), pv_text("Server"), pv_int(1), pv_null()};
    proto_table_rows tr = {.table = "contacts", .n_columns = 5, .n_rows = 1, .rows = row, .n_pk = 1};
    proto_rows page = {.cursor = 1, .n_tables = 1, .tables = &tr};
    char buf[32];

    /* The sync handle has built its pending-row set before the app writes. */
    assert_int_equal(outpost_rows_apply(sync, &page), OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "UPDATE contacts SET name = 'Mine' WHERE id = 'c1'", NULL, 0),
                     OUTPOST_OK);
    row[2] = pv_text("Server2");
    page.cursor = 2;
    assert_int_equal(outpost_rows_apply(sync, &page), OUTPOST_OK);
    assert_string_equal(fx_query_text(f, "SELECT name FROM contacts WHERE id = 'c1'", buf, sizeof buf),
                        "Mine");
    outpost_replica_close(sync);
}

static void count_commit(void *ctx)
{
    (*(int *)ctx)++;
}

static void test_replica_commit_listener_hears_captured_commits(void **state)
{
    fixture *f = *state;
    int calls = 0;

    replica_set_commit_listener(f->r, count_commit, &calls);
    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(calls, 1);
    assert_int_equal(outpost_exec(f->r, "UPDATE contacts SET age = 15", NULL, 0), OUTPOST_OK);
    assert_int_equal(calls, 1); /* nothing changed, nothing to send */
    replica_set_commit_listener(f->r, NULL, NULL);
    assert_int_equal(fx_insert_contact(f, "c2", "Ben", 15), OUTPOST_OK);
    assert_int_equal(calls, 1);
}

static void test_replica_wiped_handle_refuses_everything(void **state)
{
    fixture *f = *state;
    outpost_replica *sync = open_sibling(f);
    outpost_status st;
    outpost_outbox_entry *e = NULL;
    proto_rows page = {.cursor = 1};

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_OK);
    assert_int_equal(outpost_replica_wipe(sync), OUTPOST_OK);
    replica_mark_wiped(f->r);
    assert_int_equal(fx_insert_contact(f, "c2", "Ben", 15), OUTPOST_EWIPED);
    assert_int_equal(outpost_tx_commit(f->r, NULL), OUTPOST_EWIPED);
    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_EWIPED);
    assert_int_equal(outpost_status_get(f->r, &st), OUTPOST_EWIPED);
    assert_int_equal(outpost_outbox_read(f->r, 0, &e), OUTPOST_EWIPED);
    assert_int_equal(outpost_rows_apply(f->r, &page), OUTPOST_EWIPED);
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_EWIPED);
    assert_non_null(strstr(outpost_errmsg(f->r), "wiped"));
    assert_int_equal(access(f->path, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replica_sibling_schema_upgrade_is_guarded_and_captured,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_replica_sibling_pull_skips_rows_pending_on_app_handle,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_replica_commit_listener_hears_captured_commits, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_replica_wiped_handle_refuses_everything, fx_setup,
                                        fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
