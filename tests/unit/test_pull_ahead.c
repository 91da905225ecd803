/*
 * Pull ahead (server/src/daemon/pull_ahead.c) over a real store, on SQLite and PostgreSQL: the
 * page read for a device while its previous page travels is served only when it is exactly
 * what the device may be sent now. A revocation, a change of the worker's teams or of the
 * schema, a delete, a row leaving a scope or the device's own push between the read and the
 * PULL drops it; rows other devices commit meanwhile come in a later page, each exactly once;
 * the pages kept stay within their byte cap and go with their session.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pull_ahead.h"
#include "store_fixture.h"

enum { PAGE_ROWS = 10, MAX_BYTES = 1 << 20, CAP = 4 << 20 };

typedef struct ahead_fx {
    fixture fx;
    pull_ahead *pa;
} ahead_fx;

static int setup(void **state)
{
    ahead_fx *a = calloc(1, sizeof *a);
    fx_open(&a->fx);
    a->pa = pull_ahead_new(64, CAP);
    assert_non_null(a->pa);
    *state = a;
    return 0;
}

static int teardown(void **state)
{
    ahead_fx *a = *state;
    pull_ahead_free(a->pa);
    fx_close(&a->fx);
    free(a);
    return 0;
}

/* n contacts c-<first>.. of team in one push by dev. */
static void push_contacts(fixture *fx, store_device *dev, int first, int n, const char *team)
{
    tpush *tp = tp_new(dev->acked_seq + 1, HLC(NOW_MS));
    char ids[64][16];
    assert_true(n <= 64);
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "c-%03d", first + i);
        tp_insert_contact(tp, ids[i], team, "Name");
    }
    proto_msg *m = fx_push(fx, dev, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    proto_msg_free(m);
    tp_free(tp);
}

static void push_update(fixture *fx, store_device *dev, const char *id, uint32_t col,
                        const char *old_val, const char *new_val)
{
    tpush *tp = tp_new(dev->acked_seq + 1, HLC(NOW_MS + 10 * (dev->acked_seq + 1)));
    tp_update_contact(tp, id, col, T(old_val), T(new_val));
    proto_msg *m = fx_push(fx, dev, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    proto_msg_free(m);
    tp_free(tp);
}

/* One PULL of session (slot, session) as outpostd's worker runs it, then what the worker does
 * once the reply is handed back (reads the next page). Returns the decoded page. */
static proto_msg *pull(ahead_fx *a, uint32_t slot, uint64_t session, store_device *dev,
                       uint64_t cursor, store_pull_info *info, bool *out_prepared)
{
    proto_buf reply = {0};
    int rc = pull_ahead_pull(a->pa, a->fx.st, slot, session, dev, cursor, PAGE_ROWS, MAX_BYTES,
                             &reply, info, out_prepared);
    if (rc != STORE_OK)
        fail_msg("pull: %d %s", rc, store_errmsg(a->fx.st));
    pull_ahead_run(a->pa, a->fx.st);
    proto_msg *m = NULL;
    char err[200];
    assert_int_equal(proto_decode(reply.data, reply.len, NULL, &m, err, sizeof err), PROTO_OK);
    proto_buf_free(&reply);
    assert_int_equal(m->type, PROTO_MSG_ROWS);
    assert_int_equal(m->u.rows.cursor, info->next_cursor);
    return m;
}

/* Whether page m sends the row id as a live row. */
static bool page_has_row(const proto_msg *m, const char *id)
{
    const proto_table_rows *t = fx_rows_table(m, "contacts");
    for (uint32_t r = 0; t != NULL && r < t->n_rows; r++)
        if (fx_value_is(&t->rows[r * t->n_columns + C_ID], id))
            return true;
    return false;
}

/* The first page of 10 of the 25 rows ana pushed, pulled by dev in session 1: page 2 is read
 * ahead and kept. Returns the cursor page 2 starts at. */
static uint64_t first_page(ahead_fx *a, store_device *ana, store_device *dev)
{
    store_pull_info info;
    bool prepared = true;
    push_contacts(&a->fx, ana, 0, 25, "north");
    proto_msg *m = pull(a, 0, 1, dev, 0, &info, &prepared);
    assert_false(prepared);
    assert_int_equal(info.n_rows, PAGE_ROWS);
    assert_true(info.more);
    proto_msg_free(m);
    uint32_t pages = 0;
    assert_true(pull_ahead_held(a->pa, &pages) > 0);
    assert_int_equal(pages, 1);
    return info.next_cursor;
}

/* Nothing changed: page 2 is the page read ahead, byte for byte what a read now gives. */
static void test_next_page_read_ahead_is_served_when_nothing_changed(void **state)
{
    ahead_fx *a = *state;
    store_device ana, cai;
    fx_device(&a->fx, "ana", &ana);
    fx_device(&a->fx, "cai", &cai);
    uint64_t cursor = first_page(a, &ana, &cai);
    proto_buf fresh = {0}, served = {0};
    store_pull_info fresh_info, info;
    bool prepared = false;
    assert_int_equal(store_pull(a->fx.st, &cai, cursor, PAGE_ROWS, MAX_BYTES, &fresh,
                                &fresh_info),
                     STORE_OK);
    assert_int_equal(pull_ahead_pull(a->pa, a->fx.st, 0, 1, &cai, cursor, PAGE_ROWS, MAX_BYTES,
                                     &served, &info, &prepared),
                     STORE_OK);
    assert_true(prepared);
    assert_int_equal(served.len, fresh.len);
    assert_memory_equal(served.data, fresh.data, fresh.len);
    assert_int_equal(info.next_cursor, fresh_info.next_cursor);
    /* another session (the device connected again) or another cursor is never served it */
    pull_ahead_run(a->pa, a->fx.st);
    proto_buf other = {0};
    assert_int_equal(pull_ahead_pull(a->pa, a->fx.st, 0, 2, &cai, info.next_cursor, PAGE_ROWS,
                                     MAX_BYTES, &other, &info, &prepared),
                     STORE_OK);
    assert_false(prepared);
    proto_buf_free(&fresh);
    proto_buf_free(&served);
    proto_buf_free(&other);
    store_device_clear(&ana);
    store_device_clear(&cai);
}

static void test_page_read_ahead_not_served_after_revocation(void **state)
{
    ahead_fx *a = *state;
    store_device ana, cai;
    fx_device(&a->fx, "ana", &ana);
    fx_device(&a->fx, "cai", &cai);
    uint64_t cursor = first_page(a, &ana, &cai);
    assert_int_equal(store_device_revoke(a->fx.st, cai.device_id, true), STORE_OK);
    proto_buf reply = {0};
    store_pull_info info;
    bool prepared = true;
    assert_int_equal(pull_ahead_pull(a->pa, a->fx.st, 0, 1, &cai, cursor, PAGE_ROWS, MAX_BYTES,
                                     &reply, &info, &prepared),
                     STORE_EREVOKED);
    assert_false(prepared);
    assert_int_equal(reply.len, 0);
    assert_int_equal(pull_ahead_held(a->pa, NULL), 0);
    store_device_clear(&ana);
    store_device_clear(&cai);
}

/* cai (north and south) is moved to south only between its pages: page 2 of north rows must not
 * reach it. */
static void test_page_read_ahead_not_served_after_teams_change(void **state)
{
    ahead_fx *a = *state;
    store_device ana, cai;
    fx_device(&a->fx, "ana", &ana);
    fx_device(&a->fx, "cai", &cai);
    uint64_t cursor = first_page(a, &ana, &cai);
    const char *south[] = {"south"};
    assert_int_equal(store_worker_set_teams(a->fx.st, "cai", south, 1), STORE_OK);
    store_pull_info info;
    bool prepared = true;
    proto_msg *m = pull(a, 0, 1, &cai, cursor, &info, &prepared);
    assert_false(prepared);
    assert_int_equal(info.n_rows, 0);
    proto_msg_free(m);
    store_device_clear(&ana);
    store_device_clear(&cai);
}

/* A schema upgrade between the pages: page 2 is read again in the new schema's columns. */
static void test_page_read_ahead_not_served_after_schema_change(void **state)
{
    ahead_fx *a = *state;
    store_device ana, cai;
    fx_device(&a->fx, "ana", &ana);
    fx_device(&a->fx, "cai", &cai);
    uint64_t cursor = first_page(a, &ana, &cai);
    char *sql = fx_data("contacts_v2.sql"), *policy = fx_data("contacts_v2.policy");
    if (store_upgrade_schema(a->fx.st, sql, policy) != STORE_OK)
        fail_msg("upgrade: %s", store_errmsg(a->fx.st));
    free(sql);
    free(policy);
    store_pull_info info;
    bool prepared = true;
    proto_msg *m = pull(a, 0, 1, &cai, cursor, &info, &prepared);
    assert_false(prepared);
    const proto_table_rows *t = fx_rows_table(m, "contacts");
    assert_non_null(t);
    assert_int_equal(t->n_columns, 10);
    proto_msg_free(m);
    store_device_clear(&ana);
    store_device_clear(&cai);
}

/* Between ana's pages, cai moves c-015 (in page 2) to south: ana must not get it as a row. */
static void test_page_read_ahead_not_served_past_a_row_leaving_scope(void **state)
{
    ahead_fx *a = *state;
    store_device ana, ana2, cai;
    fx_device(&a->fx, "ana", &ana);
    fx_device(&a->fx, "ana", &ana2);
    fx_device(&a->fx, "cai", &cai);
    uint64_t cursor = first_page(a, &ana, &ana2);
    push_update(&a->fx, &cai, "c-015", C_TEAM, "north", "south");
    store_pull_info info;
    bool prepared = true;
    proto_msg *m = pull(a, 0, 1, &ana2, cursor, &info, &prepared);
    assert_false(prepared);
    assert_false(page_has_row(m, "c-015"));
    proto_msg_free(m);
    store_device_clear(&ana);
    store_device_clear(&ana2);
    store_device_clear(&cai);
}

/* Between cai's pages, cai itself changes c-015 (in page 2): the page read before would send
 * the row as it was before cai's own write. */
static void test_page_read_ahead_not_served_past_the_devices_own_push(void **state)
{
    ahead_fx *a = *state;
    store_device ana, cai;
    fx_device(&a->fx, "ana", &ana);
    fx_device(&a->fx, "cai", &cai);
    uint64_t cursor = first_page(a, &ana, &cai);
    push_update(&a->fx, &cai, "c-015", C_NAME, "Name", "Renamed by cai");
    store_pull_info info;
    bool prepared = true;
    proto_msg *m = pull(a, 0, 1, &cai, cursor, &info, &prepared);
    assert_false(prepared);
    proto_msg_free(m);
    store_device_clear(&ana);
    store_device_clear(&cai);
}

/* Between cai's pages ana deletes c-015 (in page 2): it is not sent as a live row. */
static void test_page_read_ahead_not_served_past_a_delete(void **state)
{
    ahead_fx *a = *state;
    store_device ana, cai;
    fx_device(&a->fx, "ana", &ana);
    fx_device(&a->fx, "cai", &cai);
    uint64_t cursor = first_page(a, &ana, &cai);
    tpush *tp = tp_new(ana.acked_seq + 1, HLC(NOW_MS + 1000));
    tp_delete_contact(tp, &a->fx, "c-015");
    proto_msg_free(fx_push(&a->fx, &ana, tp, NOW_MS, NULL));
    tp_free(tp);
    store_pull_info info;
    bool prepared = true;
    proto_msg *m = pull(a, 0, 1, &cai, cursor, &info, &prepared);
    assert_false(prepared);
    assert_false(page_has_row(m, "c-015"));
    proto_msg_free(m);
    store_device_clear(&ana);
    store_device_clear(&cai);
}

/* Another device inserts rows between every pair of cai's pages: pages read ahead are still
 * served (those rows come in later pages), and every row reaches cai exactly once. */
static void test_rows_pushed_between_pages_arrive_exactly_once(void **state)
{
    ahead_fx *a = *state;
    enum { FIRST = 25, MORE = 5, ROUNDS = 6 };
    store_device ana, ben, cai;
    fx_device(&a->fx, "ana", &ana);
    fx_device(&a->fx, "ben", &ben);
    fx_device(&a->fx, "cai", &cai);
    push_contacts(&a->fx, &ana, 0, FIRST, "north");
    int seen[FIRST + MORE * ROUNDS];
    memset(seen, 0, sizeof seen);
    uint64_t cursor = 0;
    uint32_t served = 0, pages = 0;
    int pushed = 0;
    store_pull_info info;
    for (;;) {
        bool prepared = false;
        proto_msg *m = pull(a, 3, 7, &cai, cursor, &info, &prepared);
        served += prepared;
        const proto_table_rows *t = fx_rows_table(m, "contacts");
        for (uint32_t r = 0; t != NULL && r < t->n_rows; r++) {
            const proto_value *id = &t->rows[r * t->n_columns + C_ID];
            int n = -1;
            assert_int_equal(sscanf((const char *)id->u.b.p, "c-%3d", &n), 1);
            assert_true(n >= 0 && n < (int)(sizeof seen / sizeof seen[0]));
            seen[n]++;
        }
        cursor = info.next_cursor;
        proto_msg_free(m);
        assert_true(++pages < 100);
        if (pushed < ROUNDS) { /* ana and ben take turns; a last page is followed by NOTIFY */
            push_contacts(&a->fx, pushed % 2 ? &ben : &ana, FIRST + MORE * pushed, MORE,
                          pushed % 2 ? "south" : "north");
            pushed++;
        } else if (!info.more) {
            break;
        }
    }
    for (size_t i = 0; i < sizeof seen / sizeof seen[0]; i++)
        if (seen[i] != 1)
            fail_msg("c-%03zu arrived %d times", i, seen[i]);
    assert_true(served >= 2);
    store_device_clear(&ana);
    store_device_clear(&ben);
    store_device_clear(&cai);
}

/* 40 sessions pull at once with a cap of about three pages: never more is kept; a page whose
 * session closed while it was read is not kept; closing the sessions frees everything. */
static void test_pages_read_ahead_stay_within_their_cap(void **state)
{
    ahead_fx *a = *state;
    enum { SESSIONS = 40 };
    store_device ana, cai;
    fx_device(&a->fx, "ana", &ana);
    fx_device(&a->fx, "cai", &cai);
    push_contacts(&a->fx, &ana, 0, 25, "north");
    /* what one page kept costs */
    store_pull_info info;
    proto_buf one = {0};
    bool prepared = true;
    assert_int_equal(pull_ahead_pull(a->pa, a->fx.st, 0, 1, &cai, 0, PAGE_ROWS, MAX_BYTES, &one,
                                     &info, &prepared),
                     STORE_OK);
    pull_ahead_run(a->pa, a->fx.st);
    proto_buf_free(&one);
    size_t page_cost = pull_ahead_held(a->pa, NULL);
    assert_true(page_cost > 0);
    size_t cap = 3 * page_cost + page_cost / 2;
    pull_ahead *small = pull_ahead_new(SESSIONS, cap);
    assert_non_null(small);
    uint32_t most = 0;
    for (uint32_t s = 0; s < SESSIONS; s++) {
        proto_buf reply = {0};
        assert_int_equal(pull_ahead_pull(small, a->fx.st, s, 100 + s, &cai, 0, PAGE_ROWS,
                                         MAX_BYTES, &reply, &info, &prepared),
                         STORE_OK);
        assert_false(prepared);
        pull_ahead_run(small, a->fx.st);
        proto_buf_free(&reply);
        uint32_t pages = 0;
        size_t held = pull_ahead_held(small, &pages);
        assert_true(held <= cap);
        if (pages > most)
            most = pages;
    }
    assert_int_equal(most, 3);
    /* a session that closes while its page is being read leaves nothing behind */
    for (uint32_t s = 0; s < SESSIONS; s++)
        pull_ahead_drop(small, s, 100 + s);
    assert_int_equal(pull_ahead_held(small, NULL), 0);
    proto_buf reply = {0};
    assert_int_equal(pull_ahead_pull(small, a->fx.st, 5, 500, &cai, 0, PAGE_ROWS, MAX_BYTES,
                                     &reply, &info, &prepared),
                     STORE_OK);
    proto_buf_free(&reply);
    pull_ahead_drop(small, 5, 500);
    pull_ahead_run(small, a->fx.st);
    uint32_t pages = 1;
    assert_int_equal(pull_ahead_held(small, &pages), 0);
    assert_int_equal(pages, 0);
    pull_ahead_free(small);
    store_device_clear(&ana);
    store_device_clear(&cai);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T_(test_next_page_read_ahead_is_served_when_nothing_changed),
        T_(test_page_read_ahead_not_served_after_revocation),
        T_(test_page_read_ahead_not_served_after_teams_change),
        T_(test_page_read_ahead_not_served_after_schema_change),
        T_(test_page_read_ahead_not_served_past_a_row_leaving_scope),
        T_(test_page_read_ahead_not_served_past_the_devices_own_push),
        T_(test_page_read_ahead_not_served_past_a_delete),
        T_(test_rows_pushed_between_pages_arrive_exactly_once),
        T_(test_pages_read_ahead_stay_within_their_cap),
    };
    return FX_RUN_BOTH_ENGINES("pull_ahead", tests, tests);
}
