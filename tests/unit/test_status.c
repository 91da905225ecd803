/* Status: what the app shows the worker (pending records, last sync, schema). */
#include "unit/client_fixture.h"

static void test_status_fresh_replica_is_empty(void **state)
{
    fixture *f = *state;
    outpost_status st;

    memset(&st, 0xff, sizeof st);
    assert_int_equal(outpost_status_get(f->r, &st), OUTPOST_OK);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.oldest_pending_ms, 0);
    assert_int_equal(st.last_sync_ms, 0);
    assert_int_equal(st.cursor, 0);
    assert_int_equal(st.schema_version, 1);
    assert_int_equal(st.last_seq, 0);
    assert_int_equal(st.conflicts, 0);
}

static void test_status_counts_pending_and_oldest(void **state)
{
    fixture *f = *state;
    outpost_status st;
    proto_ack ack = {.seq = 1};

    f->now_ms = 1000;
    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    f->now_ms = 2000;
    assert_int_equal(fx_insert_contact(f, "c2", "Ben", 15), OUTPOST_OK);
    f->now_ms = 3000;
    assert_int_equal(fx_insert_contact(f, "c3", "Cy", 15), OUTPOST_OK);
    assert_int_equal(outpost_status_get(f->r, &st), OUTPOST_OK);
    assert_int_equal(st.pending, 3);
    assert_int_equal(st.oldest_pending_ms, 1000);
    assert_int_equal(st.last_seq, 3);
    assert_int_equal(outpost_outbox_ack(f->r, &ack), OUTPOST_OK);
    assert_int_equal(outpost_status_get(f->r, &st), OUTPOST_OK);
    assert_int_equal(st.pending, 2);
    assert_int_equal(st.oldest_pending_ms, 2000);
    assert_int_equal(st.last_seq, 3);
}

/* The per-record state an app shows: pending from the commit until the entry carrying the row
 * is acknowledged, even when a later entry for another row is still out. */
static void test_status_row_pending_until_its_entry_is_acked(void **state)
{
    fixture *f = *state;
    outpost_value c1 = {.type = OUTPOST_VALUE_TEXT, .u.b = {(const uint8_t *)"c1", 2}};
    outpost_value c2 = {.type = OUTPOST_VALUE_TEXT, .u.b = {(const uint8_t *)"c2", 2}};
    outpost_value other = {.type = OUTPOST_VALUE_TEXT, .u.b = {(const uint8_t *)"c9", 2}};
    proto_ack ack = {.seq = 1};
    int pending = -1;

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c2", "Ben", 15), OUTPOST_OK);
    assert_int_equal(outpost_row_pending(f->r, "contacts", &c1, 1, &pending), OUTPOST_OK);
    assert_int_equal(pending, 1);
    assert_int_equal(outpost_row_pending(f->r, "contacts", &other, 1, &pending), OUTPOST_OK);
    assert_int_equal(pending, 0);
    assert_int_equal(outpost_outbox_ack(f->r, &ack), OUTPOST_OK);
    assert_int_equal(outpost_row_pending(f->r, "contacts", &c1, 1, &pending), OUTPOST_OK);
    assert_int_equal(pending, 0);
    assert_int_equal(outpost_row_pending(f->r, "contacts", &c2, 1, &pending), OUTPOST_OK);
    assert_int_equal(pending, 1);
    /* Bad arguments are said, not guessed at. */
    assert_int_equal(outpost_row_pending(f->r, "_outpost_outbox", &c1, 1, &pending), OUTPOST_EINVAL);
    assert_non_null(strstr(outpost_errmsg(f->r), "not a synced table"));
    assert_int_equal(outpost_row_pending(f->r, "contacts", &c1, 2, &pending), OUTPOST_EINVAL);
    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_OK);
    assert_int_equal(outpost_row_pending(f->r, "contacts", &c2, 1, &pending), OUTPOST_EMISUSE);
    assert_int_equal(outpost_tx_rollback(f->r), OUTPOST_OK);
}

static void test_status_survives_reopen(void **state)
{
    fixture *f = *state;
    proto_rows page = {.cursor = 77, .more = false};
    outpost_status st;

    f->now_ms = 5000;
    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    f->now_ms = 6000;
    assert_int_equal(outpost_rows_apply(f->r, &page), OUTPOST_OK);
    fx_reopen(f);
    assert_int_equal(outpost_status_get(f->r, &st), OUTPOST_OK);
    assert_int_equal(st.pending, 1);
    assert_int_equal(st.oldest_pending_ms, 5000);
    assert_int_equal(st.last_sync_ms, 6000);
    assert_int_equal(st.cursor, 77);
    assert_int_equal(st.schema_version, 1);
    /* Sequence numbers go on from where they were. */
    uint64_t seq = 0;
    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c2", "Ben", 15), OUTPOST_OK);
    assert_int_equal(outpost_tx_commit(f->r, &seq), OUTPOST_OK);
    assert_int_equal(seq, 2);
}

static void test_status_refuses_null(void **state)
{
    fixture *f = *state;
    outpost_status st;

    assert_int_equal(outpost_status_get(NULL, &st), OUTPOST_EINVAL);
    assert_int_equal(outpost_status_get(f->r, NULL), OUTPOST_EINVAL);
    assert_string_equal(outpost_errmsg(f->r), "out_status is required");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_status_fresh_replica_is_empty, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_status_counts_pending_and_oldest, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_status_row_pending_until_its_entry_is_acked, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_status_survives_reopen, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_status_refuses_null, fx_setup, fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
