/* Pull-apply: ROWS pages land in the replica with their cursor, never in the outbox, and never
 * over rows with pending local changes. */
#include "unit/client_fixture.h"

typedef struct page_fixture {
    proto_value vals[4 * 5];
    proto_value deleted[2];
    proto_value removed[2];
    proto_table_rows table;
    proto_rows page;
} page_fixture;

/* A page of contacts c1..cN named name, at cursor. */
static void page_make(page_fixture *p, uint32_t n, const char *name, uint64_t cursor)
{
    static const char *ids[] = {"c1", "c2", "c3", "c4"};

    memset(p, 0, sizeof *p);
    for (uint32_t i = 0; i < n; i++) {
        proto_value *row = &p->vals[i * 5];

        row[0] = pv_text(ids[i]);
        row[1] = pv_text("team-a");
        row[2] = pv_text(name);
        row[3] = pv_int(20 + (int64_t)i);
        row[4] = pv_null();
    }
    p->table = (proto_table_rows){.table = "contacts", .n_columns = 5, .n_rows = n, .rows = p->vals,
                                  .n_pk = 1};
    p->page = (proto_rows){.cursor = cursor, .more = false, .n_tables = 1, .tables = &p->table};
}

static void test_pull_applies_rows_and_cursor_without_capture(void **state)
{
    fixture *f = *state;
    page_fixture p;
    outpost_status st;

    page_make(&p, 3, "Srv", 42);
    p.page.more = true;
    f->now_ms = 1700000005000;
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts WHERE name = 'Srv'"), 3);
    assert_int_equal(outpost_status_get(f->r, &st), OUTPOST_OK);
    assert_int_equal(st.cursor, 42);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.last_sync_ms, 0); /* more pages follow: the pull is not complete */
    p.page.more = false;
    p.page.cursor = 43;
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_int_equal(outpost_status_get(f->r, &st), OUTPOST_OK);
    assert_int_equal(st.last_sync_ms, 1700000005000);
    /* Writes after the pull are still captured. */
    assert_int_equal(outpost_exec(f->r, "UPDATE contacts SET age = 1 WHERE id = 'c1'", NULL, 0), OUTPOST_OK);
    assert_int_equal(fx_pending(f), 1);
}

static void test_pull_reapplying_a_page_is_harmless(void **state)
{
    fixture *f = *state;
    page_fixture p;
    char buf[128];

    page_make(&p, 3, "Srv", 42);
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_string_equal(fx_query_text(f, "SELECT group_concat(id || name || age) FROM contacts", buf,
                                      sizeof buf), "c1Srv20,c2Srv21,c3Srv22");
    assert_int_equal(fx_pending(f), 0);
}

static void test_pull_skips_rows_with_pending_changes(void **state)
{
    fixture *f = *state;
    page_fixture p;
    proto_ack ack = {.seq = 1};
    char buf[128];

    page_make(&p, 2, "Srv", 10);
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "UPDATE contacts SET name = 'Mine' WHERE id = 'c1'", NULL, 0),
                     OUTPOST_OK);
    page_make(&p, 2, "Srv2", 11);
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_string_equal(fx_query_text(f, "SELECT group_concat(id || name) FROM contacts", buf,
                                      sizeof buf), "c1Mine,c2Srv2");
    /* Once acknowledged, the merged version from the server is applied. */
    assert_int_equal(outpost_outbox_ack(f->r, &ack), OUTPOST_OK);
    page_make(&p, 2, "Merged", 12);
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_string_equal(fx_query_text(f, "SELECT group_concat(id || name) FROM contacts", buf,
                                      sizeof buf), "c1Merged,c2Merged");
}

/* A row kept for its pending change is not what the server holds, and the server may not send
 * it again (a second local edit while the echo of the first arrives, and the rest are this
 * device's own writes, never echoed): the cursor stays before the page that kept it for the
 * rest of that pull, so the next pull reads it again. */
static void test_pull_kept_row_holds_the_cursor_for_the_next_pull(void **state)
{
    fixture *f = *state;
    page_fixture p;
    proto_ack ack = {.seq = 1};
    outpost_status st;
    char buf[128];

    page_make(&p, 2, "Srv", 10);
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "UPDATE contacts SET name = 'Mine' WHERE id = 'c1'", NULL, 0),
                     OUTPOST_OK);
    page_make(&p, 2, "Srv2", 11);
    p.page.more = true;
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_int_equal(outpost_status_get(f->r, &st), OUTPOST_OK);
    assert_int_equal(st.cursor, 10);
    page_make(&p, 0, "", 12); /* a later page of the same pull: the cursor stays held */
    p.page.more = true;
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    page_make(&p, 0, "", 13);
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_int_equal(outpost_status_get(f->r, &st), OUTPOST_OK);
    assert_int_equal(st.cursor, 10);
    assert_string_equal(fx_query_text(f, "SELECT group_concat(id || name) FROM contacts", buf,
                                      sizeof buf), "c1Mine,c2Srv2");
    /* Pushed and acknowledged: the next pull, from 10, brings the merged row, and moves on. */
    assert_int_equal(outpost_outbox_ack(f->r, &ack), OUTPOST_OK);
    page_make(&p, 2, "Merged", 13);
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_int_equal(outpost_status_get(f->r, &st), OUTPOST_OK);
    assert_int_equal(st.cursor, 13);
    assert_string_equal(fx_query_text(f, "SELECT group_concat(id || name) FROM contacts", buf,
                                      sizeof buf), "c1Merged,c2Merged");
}

static void test_pull_tombstones_and_scope_removals_delete(void **state)
{
    fixture *f = *state;
    page_fixture p;
    char buf[64];

    page_make(&p, 4, "Srv", 10);
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    page_make(&p, 0, "", 11);
    p.deleted[0] = pv_text("c1");
    p.removed[0] = pv_text("c2");
    p.removed[1] = pv_text("nope"); /* never here: harmless */
    p.table.deleted = p.deleted;
    p.table.n_deleted = 1;
    p.table.removed = p.removed;
    p.table.n_removed = 2;
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_string_equal(fx_query_text(f, "SELECT group_concat(id) FROM contacts", buf, sizeof buf),
                        "c3,c4");
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts"), 2);
    assert_int_equal(fx_pending(f), 0);
}

static void test_pull_older_page_is_ignored(void **state)
{
    fixture *f = *state;
    page_fixture p;
    outpost_status st;

    page_make(&p, 1, "New", 20);
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    page_make(&p, 1, "Old", 19);
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts WHERE name = 'New'"), 1);
    assert_int_equal(outpost_status_get(f->r, &st), OUTPOST_OK);
    assert_int_equal(st.cursor, 20);
}

static void test_pull_bad_page_applies_nothing(void **state)
{
    fixture *f = *state;
    page_fixture p;
    proto_table_rows two[2];
    proto_value bad[5] = {pv_text("c9"), pv_text("t"), pv_text("x"), pv_int(1), {.type = PROTO_UNDEF}};
    outpost_status st;

    page_make(&p, 2, "Srv", 10);
    two[0] = p.table;
    two[1] = (proto_table_rows){.table = "unknown", .n_columns = 1, .n_rows = 1, .rows = p.vals};
    p.page.tables = two;
    p.page.n_tables = 2;
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_EPROTO);
    assert_non_null(strstr(outpost_errmsg(f->r), "unknown"));
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts"), 0);
    assert_int_equal(outpost_status_get(f->r, &st), OUTPOST_OK);
    assert_int_equal(st.cursor, 0);

    two[1] = (proto_table_rows){.table = "contacts", .n_columns = 5, .n_rows = 1, .rows = bad};
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_EPROTO);
    two[1] = (proto_table_rows){.table = "contacts", .n_columns = 9, .n_rows = 1, .rows = p.vals};
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_EPROTO);
    two[1] = (proto_table_rows){.table = "contacts", .n_pk = 2, .n_deleted = 1, .deleted = p.vals};
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_EPROTO);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts"), 0);

    assert_int_equal(outpost_rows_apply(f->r, NULL), OUTPOST_EINVAL);
    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_OK);
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_EMISUSE);
    assert_int_equal(outpost_tx_rollback(f->r), OUTPOST_OK);
}

static void test_pull_composite_key_and_partial_columns(void **state)
{
    fixture *f = *state;
    proto_value v[3] = {pv_text("c1"), pv_text("1"), pv_text("station")};
    proto_value narrow[2] = {pv_text("c1"), pv_text("1")};
    proto_table_rows t = {.table = "visits", .n_columns = 3, .n_rows = 1, .rows = v, .n_pk = 2};
    proto_rows page = {.cursor = 3, .n_tables = 1, .tables = &t};
    char buf[64];

    assert_int_equal(outpost_rows_apply(f->r, &page), OUTPOST_OK);
    /* A page from an older schema carries fewer columns: the others keep their values. */
    t.n_columns = 2;
    t.rows = narrow;
    page.cursor = 4;
    assert_int_equal(outpost_rows_apply(f->r, &page), OUTPOST_OK);
    assert_string_equal(fx_query_text(f, "SELECT contact_id || n || place FROM visits", buf, sizeof buf),
                        "c11station");
    t.n_rows = 0;
    t.n_deleted = 1;
    t.deleted = narrow;
    assert_int_equal(outpost_rows_apply(f->r, &page), OUTPOST_OK);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM visits"), 0);
}

/* A table whose key lists its columns in another order than the table (PRIMARY KEY (b, a)): a
 * pulled row still finds the row's pending local change and leaves it alone. */
static void test_pull_pending_row_found_under_a_key_in_another_order(void **state)
{
    fixture *f = *state;
    static const char *cols[] = {"a", "b", "v"};
    static uint32_t pk[] = {1, 0};
    proto_schema_table tables[3] = {f->tables[0], f->tables[1]};
    proto_value row[3] = {pv_text("x"), pv_text("y"), pv_text("Srv")};
    proto_table_rows t = {.table = "pairs", .n_columns = 3, .n_rows = 1, .rows = row, .n_pk = 2};
    proto_rows page = {.cursor = 10, .n_tables = 1, .tables = &t};
    char buf[64];

    tables[2] = (proto_schema_table){.name = "pairs", .create_sql = "CREATE TABLE pairs(a TEXT NOT"
                                     " NULL, b TEXT NOT NULL, v TEXT, PRIMARY KEY (b, a))"
                                     " WITHOUT ROWID", .n_columns = 3, .columns = cols,
                                     .n_pk = 2, .pk = pk};
    proto_schema v2 = {.version = 2, .n_tables = 3, .tables = tables};
    assert_int_equal(outpost_schema_install(f->r, &v2), OUTPOST_OK);
    assert_int_equal(outpost_rows_apply(f->r, &page), OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "UPDATE pairs SET v = 'Mine' WHERE a = 'x' AND b = 'y'",
                                  NULL, 0), OUTPOST_OK);
    row[2] = pv_text("Srv2");
    page.cursor = 11;
    assert_int_equal(outpost_rows_apply(f->r, &page), OUTPOST_OK);
    assert_string_equal(fx_query_text(f, "SELECT a || b || v FROM pairs", buf, sizeof buf),
                        "xyMine");
}

/* A page of n contacts k0000..k(n-1) (the row's place in the page) named name. BIG_ROWS: enough
 * rows for the apply's multi-row statements (32 rows each) to fill twice and leave a short rest. */
#define BIG_ROWS 70
#define BIG_ROWS_MAX 1500

typedef struct big_page {
    char ids[BIG_ROWS_MAX][12];
    proto_value vals[BIG_ROWS_MAX * 5];
    proto_table_rows table;
    proto_rows page;
} big_page;

static void big_page_make(big_page *p, uint32_t n, const char *name, uint64_t cursor)
{
    memset(p, 0, sizeof *p);
    for (uint32_t i = 0; i < n; i++) {
        proto_value *row = &p->vals[i * 5];

        snprintf(p->ids[i], sizeof p->ids[i], "k%04u", (unsigned)i);
        row[0] = pv_text(p->ids[i]);
        row[1] = pv_text("team-a");
        row[2] = pv_text(name);
        row[3] = pv_int((int64_t)i);
        row[4] = pv_null();
    }
    p->table = (proto_table_rows){.table = "contacts", .n_columns = 5, .n_rows = n, .rows = p->vals,
                                  .n_pk = 1};
    p->page = (proto_rows){.cursor = cursor, .n_tables = 1, .tables = &p->table};
}

/* The server sends one row per key per page, but a page that repeats a key is applied in order,
 * as one statement per row would: the later row wins, inside a multi-row statement, across two of
 * them and between one and the short rest. */
static void test_pull_repeated_key_in_a_page_later_row_wins(void **state)
{
    fixture *f = *state;
    static big_page p;
    char buf[128];

    big_page_make(&p, BIG_ROWS, "Srv", 5);
    p.vals[20 * 5] = pv_text("k0003"); /* same statement as row 3 */
    p.vals[20 * 5 + 2] = pv_text("Later");
    p.vals[40 * 5] = pv_text("k0031"); /* the next statement */
    p.vals[40 * 5 + 2] = pv_text("Later");
    p.vals[69 * 5] = pv_text("k0060"); /* the rest, row by row, after a full statement */
    p.vals[69 * 5 + 2] = pv_text("Later");
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts"), BIG_ROWS - 3);
    assert_string_equal(fx_query_text(f, "SELECT group_concat(id || name || age) FROM contacts"
                                         " WHERE id IN ('k0003', 'k0031', 'k0060') ORDER BY id", buf,
                                      sizeof buf),
                        "k0003Later20,k0031Later40,k0060Later69");
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts WHERE name = 'Srv'"), BIG_ROWS - 6);
    assert_int_equal(fx_pending(f), 0);
}

/* A row the replica refuses (here NOT NULL) fails the whole page, and the error names the first
 * such row of the page, wherever it sits: inside a multi-row statement, first of one, or in the
 * short rest; before a later row the page carries no value for. */
static void test_pull_refused_row_is_named_and_nothing_is_applied(void **state)
{
    static const uint32_t bad_rows[] = {40, 32, 68, 0};
    fixture *f = *state;
    static big_page p;
    outpost_status st;
    char want[128];

    for (size_t i = 0; i < sizeof bad_rows / sizeof bad_rows[0]; i++) {
        big_page_make(&p, BIG_ROWS, "Srv", 7);
        p.vals[bad_rows[i] * 5 + 1] = pv_null();
        assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_ESQL);
        snprintf(want, sizeof want, "applying row %u of contacts: NOT NULL constraint failed: "
                 "contacts.team_id", (unsigned)bad_rows[i]);
        assert_string_equal(outpost_errmsg(f->r), want);
        assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts"), 0);
        assert_int_equal(outpost_status_get(f->r, &st), OUTPOST_OK);
        assert_int_equal(st.cursor, 0);
    }
    /* A later row without a value does not hide the earlier refusal still waiting to be written. */
    big_page_make(&p, BIG_ROWS, "Srv", 7);
    p.vals[5 * 5 + 1] = pv_null();
    p.vals[10 * 5 + 3] = (proto_value){.type = PROTO_UNDEF};
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_ESQL);
    assert_string_equal(outpost_errmsg(f->r), "applying row 5 of contacts: NOT NULL constraint failed: "
                                              "contacts.team_id");
    /* The same page without the refused row applies whole. */
    p.vals[10 * 5 + 3] = pv_int(10);
    p.vals[5 * 5 + 1] = pv_text("team-a");
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts WHERE name = 'Srv'"), BIG_ROWS);
}

/* A row with a pending local change in the middle of a multi-row statement keeps its value; its
 * neighbours in the same statement are applied. */
static void test_pull_pending_row_inside_a_batch_keeps_local_value(void **state)
{
    fixture *f = *state;
    static big_page p;
    char buf[128];

    big_page_make(&p, BIG_ROWS, "Srv", 10);
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "UPDATE contacts SET name = 'Mine' WHERE id IN ('k0040', 'k0045')",
                                  NULL, 0),
                     OUTPOST_OK);
    big_page_make(&p, BIG_ROWS, "Srv2", 11);
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_string_equal(fx_query_text(f, "SELECT group_concat(id || name) FROM contacts"
                                         " WHERE id BETWEEN 'k0039' AND 'k0046' ORDER BY id", buf,
                                      sizeof buf),
                        "k0039Srv2,k0040Mine,k0041Srv2,k0042Srv2,k0043Srv2,k0044Srv2,k0045Mine,"
                        "k0046Srv2");
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts WHERE name = 'Srv2'"), BIG_ROWS - 2);
    assert_int_equal(fx_pending(f), 1);
}

/* Many rows with pending changes, spread over a long page (and one in another table): each keeps
 * its local value against the page's row and its tombstone, every other row is applied. */
static void test_pull_many_pending_rows_over_a_long_page(void **state)
{
    fixture *f = *state;
    static big_page p;
    proto_value deleted[2] = {pv_text("k0005"), pv_text("k0006")};

    big_page_make(&p, BIG_ROWS_MAX, "Srv", 10);
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "UPDATE contacts SET name = 'Mine' WHERE age % 5 = 0", NULL, 0),
                     OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "INSERT INTO visits VALUES('k0001', '1', 'home')", NULL, 0),
                     OUTPOST_OK);
    big_page_make(&p, BIG_ROWS_MAX, "Srv2", 11);
    p.table.deleted = deleted;
    p.table.n_deleted = 2;
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts WHERE name = 'Mine' AND age % 5 = 0"),
                     BIG_ROWS_MAX / 5);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts WHERE name = 'Srv2' AND age % 5 != 0"),
                     BIG_ROWS_MAX - BIG_ROWS_MAX / 5 - 1);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts"), BIG_ROWS_MAX - 1);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts WHERE id = 'k0006'"), 0);
    assert_int_equal(fx_pending(f), 2);
}

/* A table too wide for a multi-row statement within SQLite's parameter limit is applied row by
 * row (here the limit is lowered below 32 rows of its 5 columns). */
static void test_pull_page_applies_under_a_low_parameter_limit(void **state)
{
    fixture *f = *state;
    static big_page p;

    sqlite3_limit(outpost_replica_db(f->r), SQLITE_LIMIT_VARIABLE_NUMBER, 5 * 32 - 1);
    big_page_make(&p, BIG_ROWS, "Srv", 3);
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts WHERE name = 'Srv'"), BIG_ROWS);
    sqlite3_limit(outpost_replica_db(f->r), SQLITE_LIMIT_VARIABLE_NUMBER, 5 * 32);
    big_page_make(&p, BIG_ROWS, "Srv2", 4);
    assert_int_equal(outpost_rows_apply(f->r, &p.page), OUTPOST_OK);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts WHERE name = 'Srv2'"), BIG_ROWS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pull_applies_rows_and_cursor_without_capture, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_pull_reapplying_a_page_is_harmless, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pull_skips_rows_with_pending_changes, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_pull_kept_row_holds_the_cursor_for_the_next_pull,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pull_tombstones_and_scope_removals_delete, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_pull_older_page_is_ignored, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pull_bad_page_applies_nothing, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pull_composite_key_and_partial_columns, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_pull_pending_row_found_under_a_key_in_another_order,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pull_repeated_key_in_a_page_later_row_wins, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_pull_refused_row_is_named_and_nothing_is_applied,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pull_pending_row_inside_a_batch_keeps_local_value,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pull_many_pending_rows_over_a_long_page, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_pull_page_applies_under_a_low_parameter_limit, fx_setup,
                                        fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
