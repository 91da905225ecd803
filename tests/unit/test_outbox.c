/* The outbox: entries in commit order read as PUSH messages, removed only on ACK or REJECT. */
#include "unit/client_fixture.h"

static void assert_text(const proto_value *v, const char *s)
{
    assert_int_equal(v->type, PROTO_TEXT);
    assert_int_equal(v->u.b.n, strlen(s));
    assert_memory_equal(v->u.b.p, s, strlen(s));
}

static outpost_outbox_entry *read_after(fixture *f, uint64_t after)
{
    outpost_outbox_entry *e = NULL;

    assert_int_equal(outpost_outbox_read(f->r, after, &e), OUTPOST_OK);
    return e;
}

static void test_outbox_order_matches_commit_order(void **state)
{
    fixture *f = *state;
    char id[16];
    uint64_t last = 0, last_hlc = 0;
    int n = 0;

    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "c%02d", i);
        assert_int_equal(fx_insert_contact(f, id, "x", i), OUTPOST_OK);
    }
    for (outpost_outbox_entry *e = read_after(f, 0); e; e = read_after(f, last)) {
        snprintf(id, sizeof id, "c%02d", n);
        assert_int_equal(e->push.seq, last + 1);
        assert_true(e->push.hlc > last_hlc);
        assert_int_equal(e->push.schema_version, 1);
        assert_int_equal(e->push.chunk, 0);
        assert_false(e->push.more);
        assert_text(&e->push.tables[0].changes[0].cols[0].new_val, id);
        last = e->push.seq;
        last_hlc = e->push.hlc;
        n++;
        outpost_outbox_entry_free(e);
    }
    assert_int_equal(n, 20);
}

static void test_outbox_insert_carries_every_new_value(void **state)
{
    fixture *f = *state;
    outpost_outbox_entry *e;
    const proto_change *ch;

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    e = read_after(f, 0);
    assert_non_null(e);
    assert_string_equal(e->push.tables[0].table, "contacts");
    assert_int_equal(e->push.tables[0].n_columns, 5);
    ch = &e->push.tables[0].changes[0];
    assert_int_equal(ch->op, PROTO_OP_INSERT);
    assert_int_equal(ch->n_cols, 5);
    for (uint32_t c = 0; c < 5; c++) {
        assert_int_equal(ch->cols[c].idx, c);
        assert_int_equal(ch->cols[c].old_val.type, PROTO_UNDEF);
    }
    assert_text(&ch->cols[1].new_val, "team-a");
    assert_int_equal(ch->cols[3].new_val.type, PROTO_INT);
    assert_int_equal(ch->cols[3].new_val.u.i, 15);
    assert_int_equal(ch->cols[4].new_val.type, PROTO_NULL);
    assert_true(e->changeset_bytes > 0);
    assert_int_equal(e->created_ms, 1700000000000);
    outpost_outbox_entry_free(e);
}

static void test_outbox_update_carries_key_and_changed_columns_only(void **state)
{
    fixture *f = *state;
    outpost_value p[2] = {ov_text("Anna"), ov_text("c1")};
    outpost_outbox_entry *e;
    const proto_change *ch;

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "UPDATE contacts SET name = ?1 WHERE id = ?2", p, 2), OUTPOST_OK);
    e = read_after(f, 1);
    assert_non_null(e);
    ch = &e->push.tables[0].changes[0];
    assert_int_equal(ch->op, PROTO_OP_UPDATE);
    assert_int_equal(ch->n_cols, 2);
    assert_int_equal(ch->cols[0].idx, 0);
    assert_text(&ch->cols[0].old_val, "c1");
    assert_int_equal(ch->cols[0].new_val.type, PROTO_UNDEF);
    assert_int_equal(ch->cols[1].idx, 2);
    assert_text(&ch->cols[1].old_val, "Ana");
    assert_text(&ch->cols[1].new_val, "Anna");
    outpost_outbox_entry_free(e);
}

static void test_outbox_delete_carries_every_old_value(void **state)
{
    fixture *f = *state;
    outpost_outbox_entry *e;
    const proto_change *ch;

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "DELETE FROM contacts", NULL, 0), OUTPOST_OK);
    e = read_after(f, 1);
    assert_non_null(e);
    ch = &e->push.tables[0].changes[0];
    assert_int_equal(ch->op, PROTO_OP_DELETE);
    assert_int_equal(ch->n_cols, 5);
    assert_text(&ch->cols[2].old_val, "Ana");
    assert_int_equal(ch->cols[2].new_val.type, PROTO_UNDEF);
    outpost_outbox_entry_free(e);
}

static void test_outbox_transaction_over_two_tables_is_one_entry(void **state)
{
    fixture *f = *state;

    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "INSERT INTO visits VALUES('c1', '1', 'station')", NULL, 0),
                     OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "INSERT INTO visits VALUES('c1', '2', 'park')", NULL, 0),
                     OUTPOST_OK);
    assert_int_equal(outpost_tx_commit(f->r, NULL), OUTPOST_OK);
    outpost_outbox_entry *e = read_after(f, 0);
    assert_non_null(e);
    assert_int_equal(e->push.n_tables, 2);
    for (uint32_t i = 0; i < 2; i++) {
        const proto_table_changes *t = &e->push.tables[i];

        assert_int_equal(t->n_changes, strcmp(t->table, "visits") == 0 ? 2 : 1);
    }
    outpost_outbox_entry_free(e);
    assert_null(read_after(f, 1));
}

static void test_outbox_ack_removes_entry_and_logs_conflicts(void **state)
{
    fixture *f = *state;
    proto_value pk = pv_text("c1");
    proto_conflict conflict = {.table = "contacts", .n_pk = 1, .pk = &pk, .col = 2,
                               .kind = PROTO_CONFLICT_DATA, .mine = pv_text("Ana"),
                               .winner = pv_text("Anya")};
    proto_ack ack = {.seq = 1, .server_seq = 10, .n_conflicts = 1, .conflicts = &conflict};
    outpost_outbox_entry *e;
    char buf[128];

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c2", "Ben", 15), OUTPOST_OK);
    assert_int_equal(outpost_outbox_ack(f->r, &ack), OUTPOST_OK);
    assert_int_equal(fx_pending(f), 1);
    e = read_after(f, 0);
    assert_non_null(e);
    assert_int_equal(e->push.seq, 2);
    outpost_outbox_entry_free(e);
    assert_int_equal(f->n_conflicts, 1);
    assert_string_equal(f->last_conflict_kind, "DATA");
    assert_string_equal(fx_query_text(f, "SELECT tbl || ' ' || pk || ' ' || col_name || ' ' || mine"
                                         " || ' ' || winner || ' ' || kind FROM _outpost_conflicts",
                                      buf, sizeof buf),
                        "contacts [\"c1\"] name Ana Anya DATA");
    /* The row stays as written here until the next pull brings the merged version. */
    assert_string_equal(fx_query_text(f, "SELECT name FROM contacts WHERE id = 'c1'", buf, sizeof buf),
                        "Ana");

    /* A repeated ACK (after a cut) changes nothing and reports nothing again. */
    assert_int_equal(outpost_outbox_ack(f->r, &ack), OUTPOST_OK);
    assert_int_equal(f->n_conflicts, 1);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM _outpost_conflicts"), 1);
    assert_int_equal(fx_pending(f), 1);

    /* An ACK for an entry never made is a protocol error and changes nothing. */
    ack.seq = 7;
    assert_int_equal(outpost_outbox_ack(f->r, &ack), OUTPOST_EPROTO);
    assert_non_null(strstr(outpost_errmsg(f->r), "never made"));
    assert_int_equal(fx_pending(f), 1);

    assert_int_equal(outpost_conflicts_clear(f->r, 100), OUTPOST_OK);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM _outpost_conflicts"), 0);
}

/* An ACK that lists some decisions and counts the rest (`cmore`, server capping it within its
 * message limit): the log says how many were not listed, and the entry leaves the outbox. */
static void test_outbox_ack_with_unlisted_conflicts_says_how_many(void **state)
{
    fixture *f = *state;
    proto_value pk = pv_text("c1");
    proto_conflict conflict = {.table = "contacts", .n_pk = 1, .pk = &pk, .col = 2,
                               .kind = PROTO_CONFLICT_DATA, .mine = pv_text("Ana"),
                               .winner = pv_text("Anya")};
    proto_ack ack = {.seq = 1, .server_seq = 10, .n_conflicts = 1, .conflicts = &conflict,
                     .n_unlisted = 20029};
    char buf[256];

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(outpost_outbox_ack(f->r, &ack), OUTPOST_OK);
    assert_int_equal(fx_pending(f), 0);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM _outpost_conflicts"), 2);
    assert_int_equal(f->n_conflicts, 2);
    assert_string_equal(fx_query_text(f, "SELECT reason FROM _outpost_conflicts WHERE tbl = ''",
                                      buf, sizeof buf),
                        "20029 more decisions against this entry were not listed by the server"
                        " (its conflict log keeps them); the server's values come with the next"
                        " pull");
    /* None listed at all (one decision alone over the server's budget) still says so. */
    ack.seq = 2;
    ack.n_conflicts = 0;
    ack.conflicts = NULL;
    ack.n_unlisted = 1;
    assert_int_equal(fx_insert_contact(f, "c2", "Ben", 15), OUTPOST_OK);
    assert_int_equal(outpost_outbox_ack(f->r, &ack), OUTPOST_OK);
    assert_int_equal(fx_pending(f), 0);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM _outpost_conflicts WHERE seq = 2"), 1);
}

/* c0 came from the server earlier. The device inserts c1 (out of its scope) and updates c0 in
 * one transaction; the server refuses it and sends its own c0. */
static void test_outbox_reject_restores_server_rows(void **state)
{
    fixture *f = *state;
    proto_value server_row[5] = {pv_text("c0"), pv_text("team-a"), pv_text("Server"), pv_int(30),
                                 pv_null()};
    proto_table_rows pulled = {.table = "contacts", .n_columns = 5, .n_rows = 1, .rows = server_row,
                               .n_pk = 1};
    proto_rows page = {.cursor = 5, .n_tables = 1, .tables = &pulled};
    proto_value pk = pv_text("c1");
    proto_reject_row why = {.table = "contacts", .n_pk = 1, .pk = &pk,
                            .code = PROTO_ERR_OUT_OF_SCOPE, .message = "team-b is not yours"};
    proto_reject rej = {.seq = 1, .n_rows = 1, .rows = &why, .n_tables = 1, .tables = &pulled};
    char buf[128];

    assert_int_equal(outpost_rows_apply(f->r, &page), OUTPOST_OK);
    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c1", "Outsider", 15), OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "UPDATE contacts SET name = 'Local', age = 31 WHERE id = 'c0'",
                                  NULL, 0), OUTPOST_OK);
    assert_int_equal(outpost_tx_commit(f->r, NULL), OUTPOST_OK);
    assert_int_equal(fx_pending(f), 1);

    assert_int_equal(outpost_outbox_reject(f->r, &rej), OUTPOST_OK);
    assert_int_equal(fx_pending(f), 0);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts WHERE id = 'c1'"), 0);
    assert_string_equal(fx_query_text(f, "SELECT name || age FROM contacts WHERE id = 'c0'", buf,
                                      sizeof buf), "Server30");
    assert_string_equal(fx_query_text(f, "SELECT kind || ' ' || code || ' ' || reason FROM"
                                         " _outpost_conflicts", buf, sizeof buf),
                        "REJECTED 20 team-b is not yours");
    assert_int_equal(f->n_conflicts, 1);
    assert_int_equal(f->last_conflict.code, PROTO_ERR_OUT_OF_SCOPE);
    /* Restoring was not captured as a write of this device. */
    assert_null(read_after(f, 0));
    /* A repeated REJECT is harmless. */
    assert_int_equal(outpost_outbox_reject(f->r, &rej), OUTPOST_OK);
    assert_int_equal(f->n_conflicts, 1);
}

/* A refused update and delete the server says nothing about are put back as they were. */
static void test_outbox_reject_undoes_unmentioned_changes(void **state)
{
    fixture *f = *state;
    proto_reject rej = {.seq = 3};
    char buf[64];

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c2", "Ben", 16), OUTPOST_OK);
    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "UPDATE contacts SET age = 99 WHERE id = 'c1'", NULL, 0),
                     OUTPOST_OK);
    assert_int_equal(outpost_exec(f->r, "DELETE FROM contacts WHERE id = 'c2'", NULL, 0), OUTPOST_OK);
    assert_int_equal(outpost_tx_commit(f->r, NULL), OUTPOST_OK);
    assert_int_equal(outpost_outbox_reject(f->r, &rej), OUTPOST_OK);
    assert_string_equal(fx_query_text(f, "SELECT group_concat(id || name || age, ',') FROM"
                                         " (SELECT * FROM contacts ORDER BY id)", buf, sizeof buf),
                        "c1Ana15,c2Ben16");
    assert_int_equal(fx_pending(f), 2);
}

static void test_outbox_bad_answers_refused(void **state)
{
    fixture *f = *state;
    proto_ack ack = {.seq = 1, .n_conflicts = 2, .conflicts = NULL};
    proto_reject rej = {.seq = 1, .n_rows = 1, .rows = NULL};
    outpost_outbox_entry *e = NULL;

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(outpost_outbox_ack(f->r, NULL), OUTPOST_EINVAL);
    assert_int_equal(outpost_outbox_ack(f->r, &ack), OUTPOST_EPROTO);
    assert_int_equal(outpost_outbox_reject(f->r, &rej), OUTPOST_EPROTO);
    assert_int_equal(outpost_outbox_read(f->r, 0, NULL), OUTPOST_EINVAL);
    assert_int_equal(outpost_outbox_read(NULL, 0, &e), OUTPOST_EINVAL);
    assert_int_equal(fx_pending(f), 1);
    outpost_outbox_entry_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_outbox_order_matches_commit_order, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_outbox_insert_carries_every_new_value, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_outbox_update_carries_key_and_changed_columns_only,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_outbox_delete_carries_every_old_value, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_outbox_transaction_over_two_tables_is_one_entry, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_outbox_ack_removes_entry_and_logs_conflicts, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_outbox_ack_with_unlisted_conflicts_says_how_many,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_outbox_reject_restores_server_rows, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_outbox_reject_undoes_unmentioned_changes, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_outbox_bad_answers_refused, fx_setup, fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
