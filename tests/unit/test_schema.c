/* Schema install and additive upgrades. */
#include "unit/client_fixture.h"

static void assert_msg_contains(fixture *f, const char *needle)
{
    const char *msg = outpost_errmsg(f->r);

    if (strstr(msg, needle) == NULL)
        fail_msg("message \"%s\" does not mention \"%s\"", msg, needle);
}

static void test_schema_install_creates_tables(void **state)
{
    fixture *f = *state;
    outpost_status st;

    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                                     " AND name IN ('contacts', 'visits')"), 2);
    assert_int_equal(outpost_status_get(f->r, &st), OUTPOST_OK);
    assert_int_equal(st.schema_version, 1);
    /* Capture covers the new tables at once. */
    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(fx_pending(f), 1);
}

static void test_schema_same_version_is_noop(void **state)
{
    fixture *f = *state;

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_OK);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts"), 1);
}

static void test_schema_upgrade_adds_columns_and_tables_in_place(void **state)
{
    fixture *f = *state;
    static const char *cols[] = {"id", "team_id", "name", "age", "notes", "phone", "seen"};
    static const char *note_cols[] = {"id", "body"};
    static uint32_t pk0[] = {0};
    proto_schema_table tables[3];
    proto_schema v2;
    outpost_outbox_entry *e = NULL;
    outpost_value p[2] = {ov_text("555"), ov_text("c1")};
    char buf[64];

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    tables[0] = f->tables[0];
    tables[0].create_sql = "CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT NOT NULL,"
                           " name TEXT, age INTEGER, notes TEXT, phone TEXT DEFAULT 'none',"
                           " seen INTEGER NOT NULL DEFAULT 0)";
    tables[0].n_columns = 7;
    tables[0].columns = cols;
    tables[1] = f->tables[1];
    tables[2] = (proto_schema_table){.name = "notes", .create_sql = "CREATE TABLE notes(id TEXT"
                                     " PRIMARY KEY, body TEXT)", .n_columns = 2,
                                     .columns = note_cols, .n_pk = 1, .pk = pk0};
    v2 = (proto_schema){.version = 2, .n_tables = 3, .tables = tables};
    assert_int_equal(outpost_schema_install(f->r, &v2), OUTPOST_OK);

    /* The old row is kept and takes the defaults. */
    assert_string_equal(fx_query_text(f, "SELECT name || '/' || phone || '/' || seen FROM contacts",
                                      buf, sizeof buf), "Ana/none/0");
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM notes"), 0);

    /* A write to the new column is captured, and so is a write to the new table. */
    assert_int_equal(outpost_exec(f->r, "UPDATE contacts SET phone = ?1 WHERE id = ?2", p, 2),
                     OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "INSERT INTO notes VALUES('n1', 'x')", NULL, 0), OUTPOST_OK);
    assert_int_equal(outpost_outbox_read(f->r, 1, &e), OUTPOST_OK);
    assert_non_null(e);
    assert_int_equal(e->push.schema_version, 2);
    assert_int_equal(e->push.tables[0].n_columns, 7);
    assert_int_equal(e->push.tables[0].changes[0].cols[1].idx, 5);
    outpost_outbox_entry_free(e);
    assert_int_equal(fx_pending(f), 3);

    /* Survives reopening: the new table is under the write guard. */
    fx_reopen(f);
    assert_int_equal(sqlite3_exec(outpost_replica_db(f->r), "INSERT INTO notes VALUES('n2', 'y')",
                                  NULL, NULL, NULL), SQLITE_AUTH);
}

static void test_schema_refuses_integer_primary_key(void **state)
{
    fixture *f = *state;
    static const char *cols[] = {"id", "x"};
    static uint32_t pk[] = {0};

    f->tables[2] = (proto_schema_table){.name = "counts", .n_columns = 2, .columns = cols,
                                        .n_pk = 1, .pk = pk,
                                        .create_sql = "CREATE TABLE counts(id INTEGER PRIMARY KEY, x)"};
    f->schema.n_tables = 3;
    f->schema.version = 2;
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_ESCHEMA);
    assert_msg_contains(f, "integer");
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM sqlite_schema WHERE name = 'counts'"), 0);
}

static void test_schema_refuses_rowid_table(void **state)
{
    fixture *f = *state;
    static const char *cols[] = {"id", "x"};
    static uint32_t pk[] = {0};

    f->tables[2] = (proto_schema_table){.name = "plain", .create_sql = "CREATE TABLE plain(id TEXT, x)",
                                        .n_columns = 2, .columns = cols, .n_pk = 1, .pk = pk};
    f->schema.n_tables = 3;
    f->schema.version = 2;
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_ESCHEMA);
    assert_msg_contains(f, "PRIMARY KEY");
}

static void test_schema_refuses_older_version(void **state)
{
    fixture *f = *state;

    f->schema.version = 2;
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_OK);
    f->schema.version = 1;
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_ESCHEMA);
    assert_msg_contains(f, "older");
}

static void test_schema_refuses_dropping_table_or_column(void **state)
{
    fixture *f = *state;
    static const char *cols[] = {"id", "team_id", "name"};

    f->schema.version = 2;
    f->schema.n_tables = 1; /* visits dropped */
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_ESCHEMA);
    assert_msg_contains(f, "visits");

    f->schema.n_tables = 2;
    f->tables[0].create_sql = "CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT, name TEXT)";
    f->tables[0].columns = cols;
    f->tables[0].n_columns = 3;
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_ESCHEMA);
    assert_msg_contains(f, "additive");
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM pragma_table_info('contacts')"), 5);
}

static void test_schema_refuses_second_statement(void **state)
{
    fixture *f = *state;
    static const char *cols[] = {"id"};
    static uint32_t pk[] = {0};

    f->tables[2] = (proto_schema_table){.name = "evil", .n_columns = 1, .columns = cols, .n_pk = 1,
                                        .pk = pk,
                                        .create_sql = "CREATE TABLE evil(id TEXT PRIMARY KEY);"
                                                      " DROP TABLE contacts"};
    f->schema.n_tables = 3;
    f->schema.version = 2;
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_ESCHEMA);
    assert_msg_contains(f, "more than one statement");
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM sqlite_schema WHERE name IN"
                                     " ('evil', 'contacts')"), 1);
}

static void test_schema_refuses_reserved_and_mismatched_names(void **state)
{
    fixture *f = *state;
    static const char *cols[] = {"id"};
    static uint32_t pk[] = {0};

    f->tables[2] = (proto_schema_table){.name = "_outpost_x", .n_columns = 1, .columns = cols,
                                        .n_pk = 1, .pk = pk,
                                        .create_sql = "CREATE TABLE _outpost_x(id TEXT PRIMARY KEY)"};
    f->schema.n_tables = 3;
    f->schema.version = 2;
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_ESCHEMA);
    assert_msg_contains(f, "reserved");

    f->tables[2].name = "other";
    f->tables[2].create_sql = "CREATE TABLE notother(id TEXT PRIMARY KEY)";
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_ESCHEMA);
    assert_msg_contains(f, "not a CREATE TABLE of table other");
}

static void test_schema_refuses_existing_unsynced_table(void **state)
{
    fixture *f = *state;
    static const char *cols[] = {"id"};
    static uint32_t pk[] = {0};

    assert_int_equal(sqlite3_exec(outpost_replica_db(f->r), "CREATE TABLE mine(id TEXT PRIMARY KEY);"
                                  "INSERT INTO mine VALUES('a')", NULL, NULL, NULL), SQLITE_OK);
    f->tables[2] = (proto_schema_table){.name = "mine", .n_columns = 1, .columns = cols, .n_pk = 1,
                                        .pk = pk, .create_sql = "CREATE TABLE mine(id TEXT PRIMARY KEY)"};
    f->schema.n_tables = 3;
    f->schema.version = 2;
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_ESCHEMA);
    assert_msg_contains(f, "not synced");
}

static void test_schema_refuses_not_null_column_without_default(void **state)
{
    fixture *f = *state;
    static const char *cols[] = {"id", "team_id", "name", "age", "notes", "must"};
    static const char *note_cols[] = {"id"};
    static uint32_t pk0[] = {0};

    f->tables[0].create_sql = "CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT NOT NULL,"
                              " name TEXT, age INTEGER, notes TEXT, must TEXT NOT NULL)";
    f->tables[0].columns = cols;
    f->tables[0].n_columns = 6;
    /* A good new table in the same schema must not be created either. */
    f->tables[2] = (proto_schema_table){.name = "fine", .n_columns = 1, .columns = note_cols,
                                        .n_pk = 1, .pk = pk0,
                                        .create_sql = "CREATE TABLE fine(id TEXT PRIMARY KEY)"};
    f->schema.n_tables = 3;
    f->schema.version = 2;
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_ESCHEMA);
    assert_msg_contains(f, "NOT NULL");
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM sqlite_schema WHERE name = 'fine'"), 0);
    assert_int_equal(fx_query_int(f, "SELECT schema_version FROM _outpost_state"), 1);
}

static void test_schema_refuses_columns_not_matching_message(void **state)
{
    fixture *f = *state;
    static const char *cols[] = {"id", "team_id", "nom", "age", "notes"};

    f->tables[0].columns = cols;
    f->schema.version = 2;
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_ESCHEMA);
    assert_msg_contains(f, "nom");
}

static void test_schema_refuses_null_and_empty_input(void **state)
{
    fixture *f = *state;
    proto_schema s = {.version = 0};

    assert_int_equal(outpost_schema_install(NULL, &f->schema), OUTPOST_EINVAL);
    assert_int_equal(outpost_schema_install(f->r, NULL), OUTPOST_EINVAL);
    assert_int_equal(outpost_schema_install(f->r, &s), OUTPOST_EINVAL);
    s.version = 3;
    s.n_tables = 2;
    assert_int_equal(outpost_schema_install(f->r, &s), OUTPOST_EINVAL);
    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_OK);
    f->schema.version = 2;
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_EMISUSE);
    assert_int_equal(outpost_tx_rollback(f->r), OUTPOST_OK);
}

static void expect_forms(fixture *f, const char *want)
{
    char *json = NULL;

    assert_int_equal(outpost_forms_json(f->r, &json), OUTPOST_OK);
    assert_non_null(json);
    assert_string_equal(json, want);
    outpost_free(json);
}

/* Forms come with a schema version and are replaced by the next one's (none: "[]"). */
static void test_schema_forms_are_kept_and_replaced_with_the_schema(void **state)
{
    fixture *f = *state;
    static const char forms_v2[] = "[{\"table\":\"contacts\",\"title\":{\"en\":\"Contact\"}}]";
    static const char forms_v3[] = "[{\"table\":\"contacts\",\"title\":{\"en\":\"Meeting\"}}]";
    char *json = (char *)"unchanged";

    expect_forms(f, "[]"); /* v1 came without forms */
    f->schema.version = 2;
    f->schema.forms = forms_v2;
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_OK);
    expect_forms(f, forms_v2);
    /* the same version again changes nothing, even with other forms in hand */
    f->schema.forms = forms_v3;
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_OK);
    expect_forms(f, forms_v2);
    f->schema.version = 3;
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_OK);
    expect_forms(f, forms_v3);
    f->schema.version = 4;
    f->schema.forms = NULL;
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_OK);
    expect_forms(f, "[]");
    assert_int_equal(outpost_forms_json(NULL, &json), OUTPOST_EINVAL);
    assert_null(json);
    assert_int_equal(outpost_forms_json(f->r, NULL), OUTPOST_EINVAL);
    outpost_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_schema_install_creates_tables, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_schema_same_version_is_noop, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_schema_upgrade_adds_columns_and_tables_in_place, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_schema_refuses_integer_primary_key, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_schema_refuses_rowid_table, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_schema_refuses_older_version, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_schema_refuses_dropping_table_or_column, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_schema_refuses_second_statement, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_schema_refuses_reserved_and_mismatched_names, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_schema_refuses_existing_unsynced_table, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_schema_refuses_not_null_column_without_default, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_schema_refuses_columns_not_matching_message, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_schema_refuses_null_and_empty_input, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_schema_forms_are_kept_and_replaced_with_the_schema,
                                        fx_setup, fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
