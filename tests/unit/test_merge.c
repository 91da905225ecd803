/*
 * The merge engine (store_push): one test per rule of docs/design.md's Merge section, exactly-once
 * replay, REJECT with nothing applied, and a full disk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store_fixture.h"
#include "store_internal.h"

typedef struct world {
    fixture fx;
    store_device ana;  /* north */
    store_device ben;  /* south */
    store_device cai;  /* north and south */
    store_device ana2; /* a second device of ana's, north */
} world;

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    fx_open(&w->fx);
    fx_device(&w->fx, "ana", &w->ana);
    fx_device(&w->fx, "ben", &w->ben);
    fx_device(&w->fx, "cai", &w->cai);
    fx_device(&w->fx, "ana", &w->ana2);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    store_device_clear(&w->ana);
    store_device_clear(&w->ben);
    store_device_clear(&w->cai);
    store_device_clear(&w->ana2);
    fx_close(&w->fx);
    free(w);
    return 0;
}

static void assert_contact(world *w, const char *id, const char *column, const char *expected)
{
    char *v = fx_contact(&w->fx, id, column);
    if (expected == NULL) {
        assert_null(v);
    } else {
        assert_non_null(v);
        assert_string_equal(v, expected);
    }
    free(v);
}

/* Pushes one contact insert from dev and asserts an ACK. */
static void seed_contact(world *w, store_device *dev, uint64_t seq, const char *id,
                         const char *team, const char *name)
{
    tpush *tp = tp_new(seq, HLC(NOW_MS - 100000));
    tp_insert_contact(tp, id, team, name);
    proto_msg *m = fx_push(&w->fx, dev, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    proto_msg_free(m);
    tp_free(tp);
}

/* A single-column update of contacts from dev, returning the decoded reply. */
static proto_msg *push_update(world *w, store_device *dev, uint64_t seq, uint64_t hlc,
                              const char *id, uint32_t col, proto_value old_val,
                              proto_value new_val, store_push_info *info)
{
    tpush *tp = tp_new(seq, hlc);
    tp_update_contact(tp, id, col, old_val, new_val);
    proto_msg *m = fx_push(&w->fx, dev, tp, NOW_MS, info);
    tp_free(tp);
    return m;
}

static int64_t conflicts_where(world *w, const char *where)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM _outpost_conflicts WHERE %.400s", where);
    return fx_int(&w->fx, sql);
}

/* ---- rules -------------------------------------------------------------------------------- */

static void test_insert_new_row_applied(void **state)
{
    world *w = *state;
    tpush *tp = tp_new(1, HLC(NOW_MS));
    tp_insert_contact(tp, "c-1", "north", "Amina");
    store_push_info info;
    proto_msg *m = fx_push(&w->fx, &w->ana, tp, NOW_MS, &info);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    assert_int_equal(m->u.ack.seq, 1);
    assert_true(m->u.ack.server_seq > 0);
    assert_int_equal(m->u.ack.n_conflicts, 0);
    assert_int_equal(info.n_rows, 1);
    assert_false(info.duplicate);
    assert_false(info.rejected);
    assert_int_equal(w->ana.acked_seq, 1);
    assert_int_equal(info.n_teams_touched, 1);
    assert_string_equal(info.teams_touched[0], "north");
    assert_contact(w, "c-1", "name", "Amina");
    assert_contact(w, "c-1", "team_id", "north");
    free(info.teams_touched);
    proto_msg_free(m);
    tp_free(tp);
}

static void test_update_different_columns_merge_without_conflict(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ana, 1, "c-1", "north", "Amina");
    proto_msg *a = push_update(w, &w->ana, 2, HLC(NOW_MS - 50), "c-1", C_NAME, T("Amina"),
                               T("Amina K."), NULL);
    proto_msg *b = push_update(w, &w->ana2, 1, HLC(NOW_MS - 60), "c-1", C_LOCATION, T("market"),
                               T("bus station"), NULL);
    assert_int_equal(a->type, PROTO_MSG_ACK);
    assert_int_equal(b->type, PROTO_MSG_ACK);
    assert_int_equal(a->u.ack.n_conflicts, 0);
    assert_int_equal(b->u.ack.n_conflicts, 0);
    assert_contact(w, "c-1", "name", "Amina K.");
    assert_contact(w, "c-1", "location", "bus station");
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_conflicts"), 0);
    proto_msg_free(a);
    proto_msg_free(b);
}

static void test_update_same_column_later_hlc_wins_loser_logged(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ana, 1, "c-1", "north", "Amina");
    /* ana2 writes later (HLC) but arrives first; ana's earlier write arrives second and loses. */
    proto_msg *first =
        push_update(w, &w->ana2, 1, HLC(NOW_MS - 10), "c-1", C_NAME, T("Amina"), T("Later"), NULL);
    store_push_info info;
    proto_msg *second = push_update(w, &w->ana, 2, HLC(NOW_MS - 20), "c-1", C_NAME, T("Amina"),
                                    T("Earlier"), &info);
    assert_int_equal(first->u.ack.n_conflicts, 0);
    assert_int_equal(second->type, PROTO_MSG_ACK);
    assert_int_equal(second->u.ack.n_conflicts, 1);
    const proto_conflict *c = &second->u.ack.conflicts[0];
    assert_string_equal(c->table, "contacts");
    assert_int_equal(c->col, C_NAME);
    assert_int_equal(c->kind, PROTO_CONFLICT_DATA);
    assert_true(fx_value_is(&c->mine, "Earlier"));
    assert_true(fx_value_is(&c->winner, "Later"));
    assert_true(fx_value_is(&c->pk[0], "c-1"));
    assert_int_equal(info.n_conflicts, 1);
    free(info.teams_touched);
    assert_contact(w, "c-1", "name", "Later");
    /* the conflict log keeps both values, the losing device and its worker */
    char where[512];
    snprintf(where, sizeof where,
             "losing_value = %s AND winning_value = %s AND kind = %d AND"
             " loser_device = '%s' AND loser_worker = 'ana' AND winner_device = '%s'"
             " AND decided_by = 'hlc' AND reversible = 1 AND time_ms = %lld",
             fx_text(&w->fx, "Earlier"), fx_text(&w->fx, "Later"), PROTO_CONFLICT_DATA, w->ana.device_id, w->ana2.device_id, (long long)NOW_MS);
    assert_int_equal(conflicts_where(w, where), 1);
    proto_msg_free(first);
    proto_msg_free(second);
}

/* A supervisor reverses a logged decision: the losing value is written back as the server's
 * change, pulled by the device that won, and the decision is recorded once. */
static void test_reversed_decision_reaches_the_winner(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ana, 1, "c-1", "north", "Amina");
    proto_msg *first =
        push_update(w, &w->ana2, 1, HLC(NOW_MS - 10), "c-1", C_NAME, T("Amina"), T("Later"), NULL);
    proto_msg *second = push_update(w, &w->ana, 2, HLC(NOW_MS - 20), "c-1", C_NAME, T("Amina"),
                                    T("Earlier"), NULL);
    assert_int_equal(second->u.ack.n_conflicts, 1);
    uint64_t cursor = second->u.ack.server_seq;
    int64_t id = fx_int(&w->fx, "SELECT id FROM _outpost_conflicts");
    const char north[][64] = {"north"}, south[][64] = {"south"};
    assert_int_equal(store_dash_decide(w->fx.st, south, 1, id, true, "sam", NOW_MS, NULL),
                     STORE_ENOTFOUND);
    store_push_info info;
    assert_int_equal(store_dash_decide(w->fx.st, north, 1, id, true, "sara", NOW_MS, &info),
                     STORE_OK);
    assert_int_equal(info.n_rows, 1);
    assert_int_equal(info.server_seq, cursor + 1);
    free(info.teams_touched);
    assert_contact(w, "c-1", "name", "Earlier");
    assert_int_equal(store_dash_decide(w->fx.st, north, 1, id, false, "sara", NOW_MS, NULL),
                     STORE_EEXISTS);
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_conflict_decisions"
                                    " WHERE decision = 'reversed' AND decided_by = 'sara'"),
                     1);
    store_pull_info pinfo;
    proto_msg *m = fx_pull(&w->fx, &w->ana2, cursor, 100, 1 << 20, &pinfo);
    const proto_table_rows *t = fx_rows_table(m, "contacts");
    assert_non_null(t);
    assert_int_equal(t->n_rows, 1);
    assert_true(fx_value_is(&t->rows[C_NAME], "Earlier"));
    proto_msg_free(m);
    proto_msg_free(first);
    proto_msg_free(second);
}

static void test_update_same_column_later_arrival_with_later_hlc_wins(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ana, 1, "c-1", "north", "Amina");
    proto_msg *first =
        push_update(w, &w->ana, 2, HLC(NOW_MS - 20), "c-1", C_NAME, T("Amina"), T("Earlier"), NULL);
    proto_msg *second =
        push_update(w, &w->ana2, 1, HLC(NOW_MS - 10), "c-1", C_NAME, T("Amina"), T("Later"), NULL);
    assert_int_equal(second->u.ack.n_conflicts, 0); /* ana2 won: nothing against it */
    assert_contact(w, "c-1", "name", "Later");
    char where[512];
    snprintf(where, sizeof where,
             "losing_value = %s AND winning_value = %s AND"
             " loser_device = '%s' AND against_push = 0",
             fx_text(&w->fx, "Earlier"), fx_text(&w->fx, "Later"),
             w->ana.device_id);
    assert_int_equal(conflicts_where(w, where), 1);
    proto_msg_free(first);
    proto_msg_free(second);
}

static void test_update_tie_broken_by_device_id(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ana, 1, "c-1", "north", "Amina");
    store_device *hi = strcmp(w->ana.device_id, w->ana2.device_id) > 0 ? &w->ana : &w->ana2;
    store_device *lo = hi == &w->ana ? &w->ana2 : &w->ana;
    uint64_t same = HLC(NOW_MS - 5);
    proto_msg *a = push_update(w, hi, hi->acked_seq + 1, same, "c-1", C_NAME, T("Amina"),
                               T("from-higher-id"), NULL);
    proto_msg *b = push_update(w, lo, lo->acked_seq + 1, same, "c-1", C_NAME, T("Amina"),
                               T("from-lower-id"), NULL);
    assert_int_equal(b->u.ack.n_conflicts, 1);
    assert_contact(w, "c-1", "name", "from-higher-id");
    proto_msg_free(a);
    proto_msg_free(b);
}

static void test_same_value_written_twice_is_not_a_conflict(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ana, 1, "c-1", "north", "Amina");
    proto_msg *a = push_update(w, &w->ana, 2, HLC(NOW_MS - 20), "c-1", C_RISK, I(1), I(3), NULL);
    proto_msg *b = push_update(w, &w->ana2, 1, HLC(NOW_MS - 30), "c-1", C_RISK, I(1), I(3), NULL);
    assert_int_equal(b->u.ack.n_conflicts, 0);
    assert_int_equal(fx_int(&w->fx, "SELECT risk_level FROM contacts"), 3);
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_conflicts"), 0);
    proto_msg_free(a);
    proto_msg_free(b);
}

static void test_insert_of_existing_key_merges_by_column(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ana, 1, "c-1", "north", "Amina");
    tpush *tp = tp_new(1, HLC(NOW_MS - 200000)); /* older than the seed */
    tp_insert_contact(tp, "c-1", "north", "Other");
    proto_msg *m = fx_push(&w->fx, &w->ana2, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    assert_int_equal(m->u.ack.n_conflicts, 1);
    assert_int_equal(m->u.ack.conflicts[0].kind, PROTO_CONFLICT_CONFLICT);
    assert_int_equal(m->u.ack.conflicts[0].col, C_NAME);
    assert_contact(w, "c-1", "name", "Amina");
    proto_msg_free(m);
    tp_free(tp);
}

static void test_update_of_deleted_row_later_update_restores_it(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ana, 1, "c-1", "north", "Amina");
    tpush *del = tp_new(2, HLC(NOW_MS - 50));
    tp_delete_contact(del, &w->fx, "c-1");
    proto_msg *d = fx_push(&w->fx, &w->ana, del, NOW_MS, NULL);
    assert_int_equal(d->type, PROTO_MSG_ACK);
    assert_contact(w, "c-1", "name", NULL);
    proto_msg *u =
        push_update(w, &w->ana2, 1, HLC(NOW_MS - 10), "c-1", C_NOTES, N(), T("seen again"), NULL);
    assert_int_equal(u->type, PROTO_MSG_ACK);
    assert_int_equal(u->u.ack.n_conflicts, 0);
    /* restored from its values at deletion, with the update on top */
    assert_contact(w, "c-1", "name", "Amina");
    assert_contact(w, "c-1", "notes", "seen again");
    char where[512];
    snprintf(where, sizeof where, "kind = %d AND col = -1 AND loser_device = '%s'",
             PROTO_CONFLICT_NOTFOUND, w->ana.device_id);
    assert_int_equal(conflicts_where(w, where), 1);
    proto_msg_free(d);
    proto_msg_free(u);
    tp_free(del);
}

static void test_update_of_deleted_row_earlier_update_loses(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ana, 1, "c-1", "north", "Amina");
    tpush *del = tp_new(2, HLC(NOW_MS - 10));
    tp_delete_contact(del, &w->fx, "c-1");
    proto_msg *d = fx_push(&w->fx, &w->ana, del, NOW_MS, NULL);
    proto_msg *u =
        push_update(w, &w->ana2, 1, HLC(NOW_MS - 50), "c-1", C_NOTES, N(), T("too late"), NULL);
    assert_int_equal(u->type, PROTO_MSG_ACK);
    assert_int_equal(u->u.ack.n_conflicts, 1);
    assert_int_equal(u->u.ack.conflicts[0].kind, PROTO_CONFLICT_NOTFOUND);
    assert_true(fx_value_is(&u->u.ack.conflicts[0].mine, "too late"));
    assert_contact(w, "c-1", "name", NULL);
    char where[512];
    snprintf(where, sizeof where, "losing_value = %s AND kind = 2", fx_text(&w->fx, "too late"));
    assert_int_equal(conflicts_where(w, where), 1);
    proto_msg_free(d);
    proto_msg_free(u);
    tp_free(del);
}

static void test_update_of_unknown_row_loses_and_is_tombstoned(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ana, 1, "c-0", "north", "Amina"); /* server sequence 1 */
    /* carrying its scope, the update can be checked: it loses (nothing to update) and the
     * device is sent a tombstone so that its replica converges */
    tpush *tp = tp_new(2, HLC(NOW_MS));
    proto_change *ch = tp_change(tp, "contacts", C_NCOLS, PROTO_OP_UPDATE);
    tp_col(ch, C_ID, T("ghost"), U());
    tp_col(ch, C_TEAM, T("north"), T("north"));
    tp_col(ch, C_NAME, T("a"), T("b"));
    proto_msg *m = fx_push(&w->fx, &w->ana, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    assert_true(m->u.ack.n_conflicts >= 1);
    assert_int_equal(m->u.ack.conflicts[0].kind, PROTO_CONFLICT_NOTFOUND);
    proto_msg_free(m);
    tp_free(tp);
    store_pull_info info;
    m = fx_pull(&w->fx, &w->ana, 1, 100, 1 << 20, &info);
    assert_int_equal(info.n_deleted, 1);
    proto_msg_free(m);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM contacts WHERE id = %s",
             fx_text(&w->fx, "ghost"));
    assert_int_equal(fx_int(&w->fx, sql), 0);

    /* without its scope it cannot be checked at all: refused */
    tp = tp_new(3, HLC(NOW_MS));
    tp_update_contact(tp, "ghost-2", C_NAME, T("a"), T("b"));
    m = fx_push(&w->fx, &w->ana, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_REJECT);
    assert_int_equal(m->u.reject.rows[0].code, PROTO_ERR_OUT_OF_SCOPE);
    proto_msg_free(m);
    tp_free(tp);
}

static void test_delete_of_deleted_row_is_quiet(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ana, 1, "c-1", "north", "Amina");
    tpush *a = tp_new(2, HLC(NOW_MS - 20));
    tp_delete_contact(a, &w->fx, "c-1");
    tpush *b = tp_new(1, HLC(NOW_MS - 10));
    tp_delete_contact(b, &w->fx, "c-1");
    proto_msg *m = fx_push(&w->fx, &w->ana, a, NOW_MS, NULL);
    proto_msg_free(m);
    store_push_info info;
    m = fx_push(&w->fx, &w->ana2, b, NOW_MS, &info);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    assert_int_equal(m->u.ack.n_conflicts, 0);
    assert_int_equal(info.n_rows, 0);
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_conflicts"), 0);
    proto_msg_free(m);
    tp_free(a);
    tp_free(b);
}

/* A device that makes again a record it deleted itself logs no conflict (nothing for a
 * supervisor to decide); the same after another device's delete is logged, as before. */
static void test_record_made_again_by_its_deleter_is_no_conflict(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ana, 1, "c-1", "north", "Amina");
    seed_contact(w, &w->ana, 2, "c-2", "north", "Bea");
    tpush *del = tp_new(3, HLC(NOW_MS - 30));
    tp_delete_contact(del, &w->fx, "c-1");
    tp_delete_contact(del, &w->fx, "c-2");
    proto_msg *m = fx_push(&w->fx, &w->ana, del, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    proto_msg_free(m);
    tpush *again = tp_new(4, HLC(NOW_MS - 20));
    tp_insert_contact(again, "c-1", "north", "Amina again");
    m = fx_push(&w->fx, &w->ana, again, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    assert_int_equal(m->u.ack.n_conflicts, 0);
    proto_msg_free(m);
    assert_contact(w, "c-1", "name", "Amina again");
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_conflicts"), 0);
    tpush *other = tp_new(1, HLC(NOW_MS - 10));
    tp_insert_contact(other, "c-2", "north", "Bea again");
    m = fx_push(&w->fx, &w->ana2, other, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    proto_msg_free(m);
    assert_contact(w, "c-2", "name", "Bea again");
    char where[512];
    snprintf(where, sizeof where,
             "col = -1 AND kind = 3 AND loser_device = '%s' AND winner_device = '%s'",
             w->ana.device_id, w->ana2.device_id);
    assert_int_equal(conflicts_where(w, where), 1);
    tp_free(del);
    tp_free(again);
    tp_free(other);
}

static void test_delete_of_changed_row_earlier_delete_loses(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ana, 1, "c-1", "north", "Amina");
    /* ana2 deletes what it saw at the seed, but ana changed the name later than the delete */
    tpush *del = tp_new(1, HLC(NOW_MS - 50));
    tp_delete_contact(del, &w->fx, "c-1");
    proto_msg *u = push_update(w, &w->ana, 2, HLC(NOW_MS - 10), "c-1", C_NAME, T("Amina"),
                               T("Amina K."), NULL);
    proto_msg *d = fx_push(&w->fx, &w->ana2, del, NOW_MS, NULL);
    assert_int_equal(d->type, PROTO_MSG_ACK);
    assert_int_equal(d->u.ack.n_conflicts, 1);
    assert_int_equal(d->u.ack.conflicts[0].kind, PROTO_CONFLICT_CONFLICT);
    assert_int_equal(d->u.ack.conflicts[0].col, -1);
    assert_int_equal(d->u.ack.conflicts[0].mine.type, PROTO_UNDEF);
    assert_contact(w, "c-1", "name", "Amina K.");
    char where[512];
    snprintf(where, sizeof where,
             "col = -1 AND kind = 3 AND loser_device = '%s' AND winner_device = '%s'",
             w->ana2.device_id, w->ana.device_id);
    assert_int_equal(conflicts_where(w, where), 1);
    proto_msg_free(u);
    proto_msg_free(d);
    tp_free(del);
}

static void test_delete_of_changed_row_later_delete_wins(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ana, 1, "c-1", "north", "Amina");
    tpush *del = tp_new(1, HLC(NOW_MS - 10));
    tp_delete_contact(del, &w->fx, "c-1");
    proto_msg *u = push_update(w, &w->ana, 2, HLC(NOW_MS - 50), "c-1", C_NAME, T("Amina"),
                               T("Amina K."), NULL);
    proto_msg *d = fx_push(&w->fx, &w->ana2, del, NOW_MS, NULL);
    assert_int_equal(d->u.ack.n_conflicts, 0);
    assert_contact(w, "c-1", "name", NULL);
    /* the change the delete overrode is kept */
    char where[512];
    snprintf(where, sizeof where, "losing_value = %s AND loser_device = '%s' AND kind = %d",
             fx_text(&w->fx, "Amina K."),
             w->ana.device_id, PROTO_CONFLICT_CONFLICT);
    assert_int_equal(conflicts_where(w, where), 1);
    proto_msg_free(u);
    proto_msg_free(d);
    tp_free(del);
}

static void seed_table_row(world *w, const char *table, const char *id, const char *value)
{
    tpush *tp = tp_new(w->ana.acked_seq + 1, HLC(NOW_MS - 100000));
    proto_change *ch = tp_change(tp, table, 4, PROTO_OP_INSERT);
    tp_col(ch, 0, U(), T(id));
    tp_col(ch, 1, U(), T("north"));
    tp_col(ch, 2, U(), T(value));
    tp_col(ch, 3, U(), N());
    proto_msg *m = fx_push(&w->fx, &w->ana, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    proto_msg_free(m);
    tp_free(tp);
}

static proto_msg *update_table_row(world *w, store_device *dev, uint64_t hlc, const char *table,
                                   const char *id, const char *old_v, const char *new_v)
{
    tpush *tp = tp_new(dev->acked_seq + 1, hlc);
    proto_change *ch = tp_change(tp, table, 4, PROTO_OP_UPDATE);
    tp_col(ch, 0, T(id), U());
    tp_col(ch, 2, T(old_v), T(new_v));
    proto_msg *m = fx_push(&w->fx, dev, tp, NOW_MS, NULL);
    tp_free(tp);
    return m;
}

static void test_policy_server_wins_keeps_central_value(void **state)
{
    world *w = *state;
    seed_table_row(w, "visits", "v-1", "c-1");
    proto_msg *a = update_table_row(w, &w->ana, HLC(NOW_MS - 50), "visits", "v-1", "c-1", "c-2");
    /* later HLC, stale old value: under server-wins it still loses */
    proto_msg *b = update_table_row(w, &w->ana2, HLC(NOW_MS - 10), "visits", "v-1", "c-1", "c-3");
    assert_int_equal(b->u.ack.n_conflicts, 1);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT contact_id = %s FROM visits", fx_text(&w->fx, "c-2"));
    assert_int_equal(fx_int(&w->fx, sql), 1);
    snprintf(sql, sizeof sql, "decided_by = 'server-wins' AND losing_value = %s",
             fx_text(&w->fx, "c-3"));
    assert_int_equal(conflicts_where(w, sql), 1);
    proto_msg_free(a);
    proto_msg_free(b);
}

static void test_policy_device_wins_takes_pushed_value(void **state)
{
    world *w = *state;
    seed_table_row(w, "referrals", "r-1", "clinic");
    proto_msg *a =
        update_table_row(w, &w->ana, HLC(NOW_MS - 10), "referrals", "r-1", "clinic", "shelter");
    /* earlier HLC, stale old value: under device-wins the push still wins */
    proto_msg *b =
        update_table_row(w, &w->ana2, HLC(NOW_MS - 50), "referrals", "r-1", "clinic", "police");
    assert_int_equal(b->u.ack.n_conflicts, 0);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT agency = %s FROM referrals", fx_text(&w->fx, "police"));
    assert_int_equal(fx_int(&w->fx, sql), 1);
    snprintf(sql, sizeof sql, "decided_by = 'device-wins' AND losing_value = %s",
             fx_text(&w->fx, "shelter"));
    assert_int_equal(conflicts_where(w, sql),
                     1);
    proto_msg_free(a);
    proto_msg_free(b);
}

static void test_clock_far_ahead_is_clamped_and_cannot_win(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ana, 1, "c-1", "north", "Amina");
    uint64_t next_year = HLC(NOW_MS + UINT64_C(365) * 24 * 3600 * 1000);
    store_push_info info;
    proto_msg *a = push_update(w, &w->ana, 2, next_year, "c-1", C_NAME, T("Amina"),
                               T("from the future"), &info);
    assert_true(info.hlc_clamped);
    free(info.teams_touched);
    assert_true(a->u.ack.hlc_clamped);
    /* the repeated ACK of that entry (a resend carries the clock it was sent with) says the
     * same */
    proto_msg *again = push_update(w, &w->ana, 2, next_year, "c-1", C_NAME, T("Amina"),
                                   T("from the future"), &info);
    assert_true(info.duplicate);
    assert_true(again->u.ack.hlc_clamped);
    proto_msg_free(again);
    /* the same seq with another clock is another transaction: a rewound device counter */
    tpush *other = tp_new(2, HLC(NOW_MS));
    tp_update_contact(other, "c-1", C_NAME, T("Amina"), T("after a phone restore"));
    proto_buf reply = {0};
    assert_int_equal(store_push(w->fx.st, &w->ana, tp_push(other), NOW_MS, &reply, &info),
                     STORE_ESEQ);
    assert_non_null(strstr(store_errmsg(w->fx.st), "counter went back"));
    assert_int_equal(reply.len, 0);
    proto_buf_free(&reply);
    tp_free(other);
    assert_int_equal(fx_int(&w->fx, "SELECT clamped FROM _outpost_applied WHERE seq = 2"), 1);
    /* a write a minute later (within tolerance, not clamped) beats the clamped one */
    proto_msg *b = push_update(w, &w->ana2, 1, HLC(NOW_MS + 60000), "c-1", C_NAME, T("Amina"),
                               T("real time"), &info);
    assert_false(info.hlc_clamped);
    free(info.teams_touched);
    assert_int_equal(b->u.ack.n_conflicts, 0);
    assert_contact(w, "c-1", "name", "real time");
    proto_msg_free(a);
    proto_msg_free(b);
}

static void test_scope_moved_row_touches_old_and_new_team(void **state)
{
    world *w = *state;
    seed_contact(w, &w->cai, 1, "c-1", "north", "Amina");
    store_push_info info;
    proto_msg *m =
        push_update(w, &w->cai, 2, HLC(NOW_MS), "c-1", C_TEAM, T("north"), T("south"), &info);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    assert_int_equal(info.n_teams_touched, 2);
    bool north = false, south = false;
    for (uint32_t i = 0; i < info.n_teams_touched; i++) {
        north = north || strcmp(info.teams_touched[i], "north") == 0;
        south = south || strcmp(info.teams_touched[i], "south") == 0;
    }
    assert_true(north && south);
    free(info.teams_touched);
    proto_msg_free(m);
}

/* ---- REJECT: nothing applied -------------------------------------------------------------- */

/* The store without what a refusal writes: the exactly-once record (the refused seq, the
 * device's highest recorded seq) and the supervisors' conflict queue. */
static char *dump_data(world *w)
{
    static const char *const record[] = {"_outpost_refused", "_outpost_devices",
                                         "_outpost_conflicts", "_outpost_conflict_refusals",
                                         NULL};
    return fx_dump_except(&w->fx, record);
}

static void assert_rejected_nothing_applied(world *w, proto_msg *m, uint32_t code,
                                            const char *before_dump)
{
    assert_int_equal(m->type, PROTO_MSG_REJECT);
    assert_true(m->u.reject.n_rows >= 1);
    assert_int_equal(m->u.reject.rows[0].code, code);
    assert_non_null(m->u.reject.rows[0].message);
    char *after = dump_data(w);
    assert_string_equal(before_dump, after);
    free(after);
    /* ... but the refusal is recorded, so that a resend gets the same answer */
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM _outpost_refused WHERE seq = %llu",
             (unsigned long long)m->u.reject.seq);
    assert_true(fx_int(&w->fx, sql) >= 1);
}

static void test_reject_new_scope_value_out_of_scope(void **state)
{
    world *w = *state;
    char *before = dump_data(w);
    tpush *tp = tp_new(1, HLC(NOW_MS));
    tp_insert_contact(tp, "c-ok", "north", "fine");
    tp_insert_contact(tp, "c-bad", "south", "not mine");
    store_push_info info;
    proto_msg *m = fx_push(&w->fx, &w->ana, tp, NOW_MS, &info);
    assert_true(info.rejected);
    assert_int_equal(m->u.reject.seq, 1);
    assert_int_equal(m->u.reject.n_rows, 1);
    assert_true(fx_value_is(&m->u.reject.rows[0].pk[0], "c-bad"));
    /* server's truth for the refused row: it has none, so a tombstone */
    const proto_table_rows *t = fx_rows_table(m, "contacts");
    assert_non_null(t);
    assert_int_equal(t->n_deleted, 1);
    assert_rejected_nothing_applied(w, m, PROTO_ERR_OUT_OF_SCOPE, before);
    assert_int_equal(w->ana.acked_seq, 1); /* a refused seq is used up */
    /* The refusal is in the supervisors' queue for ana's own team, without the values she
     * aimed at another team. */
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_conflict_refusals rf"
                                    " JOIN _outpost_conflicts c ON c.id = rf.conflict_id"
                                    " WHERE rf.team = 'north' AND rf.code = 20"
                                    " AND c.losing_value IS NULL AND c.reversible = 0"),
                     1);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM _outpost_conflicts WHERE losing_value = %s",
             fx_text(&w->fx, "not mine"));
    assert_int_equal(fx_int(&w->fx, sql), 0);
    proto_msg_free(m);
    tp_free(tp);
    free(before);
}

static void test_reject_old_scope_value_out_of_scope(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ben, 1, "c-s", "south", "Bo");
    char *before = dump_data(w);
    /* ana (north only) tries to pull a south row into north */
    proto_msg *m =
        push_update(w, &w->ana, 1, HLC(NOW_MS), "c-s", C_TEAM, T("south"), T("north"), NULL);
    assert_rejected_nothing_applied(w, m, PROTO_ERR_OUT_OF_SCOPE, before);
    /* the row exists but is not ana's to see: it is named as removed, its values not sent */
    const proto_table_rows *t = fx_rows_table(m, "contacts");
    assert_non_null(t);
    assert_int_equal(t->n_rows, 0);
    assert_int_equal(t->n_removed, 1);
    proto_msg_free(m);
    /* an update that does not carry the scope is checked against the central row's scope */
    m = push_update(w, &w->ana, 2, HLC(NOW_MS), "c-s", C_NAME, T("Bo"), T("hijack"), NULL);
    assert_rejected_nothing_applied(w, m, PROTO_ERR_OUT_OF_SCOPE, before);
    proto_msg_free(m);
    free(before);
}

static void test_reject_unknown_table_column_count_pk_constraint(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ana, 1, "c-1", "north", "Amina");
    char *before = dump_data(w);

    tpush *tp = tp_new(3, HLC(NOW_MS));
    tp_insert_contact(tp, "c-2", "north", "valid but in a bad transaction");
    proto_change *ch = tp_change(tp, "no_such_table", 2, PROTO_OP_INSERT);
    tp_col(ch, 0, U(), T("x"));
    tp_col(ch, 1, U(), T("north"));
    proto_msg *m = fx_push(&w->fx, &w->ana, tp, NOW_MS, NULL);
    assert_rejected_nothing_applied(w, m, PROTO_ERR_UNKNOWN_TABLE, before);
    proto_msg_free(m);
    tp_free(tp);

    tp = tp_new(4, HLC(NOW_MS));
    tp_update_contact(tp, "c-1", 12, T("a"), T("b")); /* column 12 does not exist */
    m = fx_push(&w->fx, &w->ana, tp, NOW_MS, NULL);
    assert_rejected_nothing_applied(w, m, PROTO_ERR_UNKNOWN_COLUMN, before);
    /* the server's current row comes back so the device can converge */
    const proto_table_rows *t = fx_rows_table(m, "contacts");
    assert_non_null(t);
    assert_int_equal(t->n_rows, 1);
    assert_true(fx_value_is(&t->rows[C_NAME], "Amina"));
    proto_msg_free(m);
    tp_free(tp);

    tp = tp_new(5, HLC(NOW_MS));
    ch = tp_change(tp, "contacts", C_NCOLS, PROTO_OP_INSERT);
    tp_col(ch, C_ID, U(), T("c-3")); /* two values for eight columns */
    tp_col(ch, C_TEAM, U(), T("north"));
    m = fx_push(&w->fx, &w->ana, tp, NOW_MS, NULL);
    assert_rejected_nothing_applied(w, m, PROTO_ERR_INVALID_CHANGE, before);
    proto_msg_free(m);
    tp_free(tp);

    tp = tp_new(6, HLC(NOW_MS));
    ch = tp_change(tp, "contacts", C_NCOLS, PROTO_OP_UPDATE);
    tp_col(ch, C_NAME, T("Amina"), T("no key")); /* no primary key */
    m = fx_push(&w->fx, &w->ana, tp, NOW_MS, NULL);
    assert_rejected_nothing_applied(w, m, PROTO_ERR_INVALID_CHANGE, before);
    assert_int_equal(m->u.reject.rows[0].n_pk, 1); /* [nil]: the key could not be read */
    assert_int_equal(m->u.reject.rows[0].pk[0].type, PROTO_NULL);
    proto_msg_free(m);
    tp_free(tp);

    tp = tp_new(7, HLC(NOW_MS));
    tp_insert_contact(tp, "c-4", "north", "fine");
    tp_update_contact(tp, "c-1", C_AGE, I(12), I(99)); /* CHECK (age BETWEEN 0 AND 25) */
    for (int round = 0; round < 2; round++) {          /* a resent entry is refused the same way */
        m = fx_push(&w->fx, &w->ana, tp, NOW_MS, NULL);
        assert_int_equal(m->type, PROTO_MSG_REJECT);
        assert_int_equal(m->u.reject.n_rows, 1);
        assert_int_equal(m->u.reject.rows[0].code, PROTO_ERR_CONSTRAINT);
        assert_non_null(strstr(m->u.reject.rows[0].message, "CHECK"));
        proto_msg_free(m);
    }
    tp_free(tp);
    /* nothing applied; the refused value is kept once in the conflict log */
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM contacts"), 1);
    assert_int_equal(fx_int(&w->fx, "SELECT age FROM contacts"), 12);
    char where[256];
    snprintf(where, sizeof where, "kind = 4 AND col = 3 AND losing_value = %s",
             fx_integer(&w->fx, 99));
    assert_int_equal(conflicts_where(w, where), 1);
    assert_int_equal(conflicts_where(w, "kind = 4"), 1); /* only age was written */

    assert_int_equal(w->ana.acked_seq, 7); /* the highest seq recorded, refused ones too */
    free(before);
}

/* A TEXT key stays TEXT: an integer (or blob) key for a TEXT primary key is refused, not
 * silently stored as '5' beside a merge state keyed by the integer 5. */
static void test_reject_primary_key_of_the_wrong_type(void **state)
{
    world *w = *state;
    char *before = dump_data(w);
    tpush *tp = tp_new(1, HLC(NOW_MS));
    proto_change *ch = tp_change(tp, "contacts", C_NCOLS, PROTO_OP_INSERT);
    tp_col(ch, C_ID, U(), I(5));
    tp_col(ch, C_TEAM, U(), T("north"));
    tp_col(ch, C_NAME, U(), T("int key"));
    tp_col(ch, C_AGE, U(), I(12));
    tp_col(ch, C_LOCATION, U(), T("market"));
    tp_col(ch, C_NOTES, U(), N());
    tp_col(ch, C_RISK, U(), I(1));
    tp_col(ch, C_UPDATED, U(), I(1000));
    proto_msg *m = fx_push(&w->fx, &w->ana, tp, NOW_MS, NULL);
    assert_rejected_nothing_applied(w, m, PROTO_ERR_INVALID_CHANGE, before);
    assert_non_null(strstr(m->u.reject.rows[0].message, "TEXT"));
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM contacts"), 0);
    proto_msg_free(m);
    tp_free(tp);
    free(before);
}

/* ---- exactly once ----------------------------------------------------------------------- */

static void test_duplicate_seq_answers_same_ack_without_applying(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ana, 1, "c-1", "north", "Amina");
    proto_msg *first =
        push_update(w, &w->ana2, 1, HLC(NOW_MS - 10), "c-1", C_NAME, T("Amina"), T("Later"), NULL);
    proto_msg *lost =
        push_update(w, &w->ana, 2, HLC(NOW_MS - 20), "c-1", C_NAME, T("Amina"), T("Earlier"), NULL);
    char *before = fx_dump(&w->fx);
    store_push_info info;
    proto_msg *again = push_update(w, &w->ana, 2, HLC(NOW_MS - 20), "c-1", C_NAME, T("Amina"),
                                   T("Earlier"), &info);
    assert_true(info.duplicate);
    assert_int_equal(again->type, PROTO_MSG_ACK);
    assert_int_equal(again->u.ack.seq, 2);
    assert_int_equal(again->u.ack.server_seq, 0);
    assert_int_equal(again->u.ack.n_conflicts, lost->u.ack.n_conflicts);
    assert_true(fx_value_is(&again->u.ack.conflicts[0].mine, "Earlier"));
    char *after = fx_dump(&w->fx);
    assert_string_equal(before, after);
    free(before);
    free(after);
    proto_msg_free(first);
    proto_msg_free(lost);
    proto_msg_free(again);
}

/* The same pushes applied 1, 2 and 10 times leave identical stores. */
static char *replayed_store(int times)
{
    world w;
    memset(&w, 0, sizeof w);
    fx_open(&w.fx);
    fx_device(&w.fx, "ana", &w.ana);
    fx_device(&w.fx, "ana", &w.ana2);
    /* Device ids are random: give both devices fixed ids so that dumps compare. */
    sqlite3 *db = store_sqlite_db(w.fx.st);
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE _outpost_devices SET id = 'dev-a' WHERE id = '%s';"
             "UPDATE _outpost_devices SET id = 'dev-b' WHERE id = '%s';"
             "UPDATE _outpost_devices SET secret_hash = x'00'",
             w.ana.device_id, w.ana2.device_id);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE _outpost_enroll_codes SET code_hash = rowid,"
                                  " device_id = NULL",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    snprintf(w.ana.device_id, sizeof w.ana.device_id, "dev-a");
    snprintf(w.ana2.device_id, sizeof w.ana2.device_id, "dev-b");
    for (int round = 0; round < times; round++) {
        tpush *a = tp_new(1, HLC(NOW_MS - 100));
        tp_insert_contact(a, "c-1", "north", "Amina");
        tp_insert_contact(a, "c-2", "north", "Bilal");
        proto_msg *m = fx_push(&w.fx, &w.ana, a, NOW_MS, NULL);
        assert_int_equal(m->type, PROTO_MSG_ACK);
        proto_msg_free(m);
        tp_free(a);
        m = push_update(&w, &w.ana2, 1, HLC(NOW_MS - 50), "c-1", C_NAME, T("Amina"), T("B"), NULL);
        assert_int_equal(m->type, PROTO_MSG_ACK);
        proto_msg_free(m);
        m = push_update(&w, &w.ana, 2, HLC(NOW_MS - 60), "c-1", C_NAME, T("Amina"), T("A"), NULL);
        assert_int_equal(m->type, PROTO_MSG_ACK);
        assert_int_equal(m->u.ack.n_conflicts, 1);
        proto_msg_free(m);
        tpush *d = tp_new(3, HLC(NOW_MS - 40));
        if (round == 0)
            tp_delete_contact(d, &w.fx, "c-2");
        else
            tp_update_contact(d, "c-2", C_NOTES, N(), T("not applied: duplicate seq"));
        m = fx_push(&w.fx, &w.ana, d, NOW_MS, NULL);
        assert_int_equal(m->type, PROTO_MSG_ACK);
        proto_msg_free(m);
        tp_free(d);
    }
    char *dump = fx_dump(&w.fx);
    store_device_clear(&w.ana);
    store_device_clear(&w.ana2);
    fx_close(&w.fx);
    return dump;
}

static void test_replay_1_2_10_times_identical_store(void **state)
{
    (void)state;
    char *once = replayed_store(1);
    char *twice = replayed_store(2);
    char *ten = replayed_store(10);
    assert_non_null(strstr(once, "'B'")); /* the merge happened */
    assert_string_equal(once, twice);
    assert_string_equal(once, ten);
    free(once);
    free(twice);
    free(ten);
}

/* ---- full disk ---------------------------------------------------------------------------- */

static void test_full_disk_is_efull_and_nothing_applied(void **state)
{
    world *w = *state;
    seed_contact(w, &w->ana, 1, "c-0", "north", "first");
    sqlite3 *db = store_sqlite_db(w->fx.st);
    int64_t pages = fx_int(&w->fx, "PRAGMA page_count");
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", (long long)pages + 2);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    char *before = fx_dump(&w->fx);
    tpush *tp = tp_new(2, HLC(NOW_MS));
    /* rows enough to need more than 2 new pages of 16 KiB (~75 KB of names) */
    char ids[250][16], name[301];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    for (int i = 0; i < 250; i++) {
        snprintf(ids[i], sizeof ids[i], "c-%d", i + 1);
        tp_insert_contact(tp, ids[i], "north", name);
    }
    proto_buf reply = {0};
    store_push_info info;
    int rc = store_push(w->fx.st, &w->ana, tp_push(tp), NOW_MS, &reply, &info);
    assert_int_equal(rc, STORE_EFULL);
    assert_non_null(strstr(store_errmsg(w->fx.st), "full"));
    assert_int_equal(reply.len, 0);
    assert_int_equal(w->ana.acked_seq, 1);
    char *after = fx_dump(&w->fx);
    assert_string_equal(before, after);
    /* with room again, the same entry applies */
    assert_int_equal(sqlite3_exec(db, "PRAGMA max_page_count = 1073741823", NULL, NULL, NULL),
                     SQLITE_OK);
    proto_msg *m = fx_push(&w->fx, &w->ana, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM contacts"), 251);
    proto_msg_free(m);
    proto_buf_free(&reply);
    free(before);
    free(after);
    tp_free(tp);
}

static void test_revoked_device_push_refused(void **state)
{
    world *w = *state;
    assert_int_equal(store_device_revoke(w->fx.st, w->ana.device_id, false), 0);
    tpush *tp = tp_new(1, HLC(NOW_MS));
    tp_insert_contact(tp, "c-1", "north", "x");
    proto_buf reply = {0};
    store_push_info info;
    assert_int_equal(store_push(w->fx.st, &w->ana, tp_push(tp), NOW_MS, &reply, &info),
                     STORE_EREVOKED);
    assert_int_equal(reply.len, 0);
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM contacts"), 0);
    tp_free(tp);
}

/* ---- hostile input ------------------------------------------------------------------------ */

static uint32_t rnd_next(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

static proto_value rnd_value(uint32_t *r, char texts[][8], uint32_t slot)
{
    static const char *const teams[] = {"north", "south", "east", ""};
    switch (rnd_next(r) % 7) {
    case 0:
        return U();
    case 1:
        return N();
    case 2:
        return I((int64_t)rnd_next(r) - 100000);
    case 3:
        return T(teams[rnd_next(r) % 4]);
    case 4: {
        proto_value v = {.type = PROTO_REAL};
        v.u.r = (double)rnd_next(r) / 7.0;
        return v;
    }
    case 5: {
        proto_value v = {.type = PROTO_BLOB};
        v.u.b.p = (const uint8_t *)"\x00\x01\x02";
        v.u.b.n = rnd_next(r) % 4;
        return v;
    }
    default:
        snprintf(texts[slot], 8, "k%u", rnd_next(r) % 6);
        return T(texts[slot]);
    }
}

/* Random, mostly malformed pushes: each is answered ACK or REJECT, none crashes, the store
 * stays consistent, and an ACKed push really was the device's next entry. */
static void test_hostile_pushes_never_break_the_store(void **state)
{
    world *w = *state;
    static const char *const tables[] = {"contacts", "visits", "referrals", "nope", ""};
    uint32_t r = 12345;
    int n_ack = 0, n_reject = 0;
    for (int round = 0; round < 400; round++) {
        tpush *tp = tp_new(w->cai.acked_seq + 1, HLC(NOW_MS - (rnd_next(&r) % 1000)));
        static char texts[256][8];
        uint32_t slot = 0;
        uint32_t n_changes = 1 + rnd_next(&r) % 4;
        /* odd rounds: well-formed contacts changes with random keys and values, which reach
         * every merge path (new rows, conflicts, deleted rows, constraints) */
        for (uint32_t k = 0; round % 2 == 1 && k < n_changes; k++) {
            static const char *const keys[] = {"k0", "k1", "k2", "k3", "k4", "k5"};
            static const char *const teams[] = {"north", "south"};
            const char *key = keys[rnd_next(&r) % 6];
            proto_op op = (proto_op)(1 + rnd_next(&r) % 3);
            proto_change *ch = tp_change(tp, "contacts", C_NCOLS, op);
            if (op == PROTO_OP_UPDATE) {
                tp_col(ch, C_ID, T(key), U());
                for (uint32_t c = C_NAME; c < C_NCOLS; c++)
                    if (rnd_next(&r) % 2)
                        tp_col(ch, c, rnd_value(&r, texts, slot++), I(rnd_next(&r) % 30));
                continue;
            }
            for (uint32_t c = 0; c < C_NCOLS; c++) {
                proto_value v = c == C_ID     ? T(key)
                                : c == C_TEAM ? T(teams[rnd_next(&r) % 2])
                                : c == C_NAME ? T("n")
                                              : I(rnd_next(&r) % 30);
                tp_col(ch, c, op == PROTO_OP_DELETE ? v : U(), op == PROTO_OP_INSERT ? v : U());
            }
        }
        for (uint32_t k = 0; round % 2 == 0 && k < n_changes; k++) {
            const char *table = tables[rnd_next(&r) % 5];
            uint32_t n_columns = rnd_next(&r) % 10;
            proto_change *ch = tp_change(tp, table, n_columns, (proto_op)(1 + rnd_next(&r) % 3));
            uint32_t n_cols = rnd_next(&r) % 10;
            uint32_t idx = rnd_next(&r) % 2;
            for (uint32_t c = 0; c < n_cols && slot + 2 < 256; c++) {
                proto_value old_v = rnd_value(&r, texts, slot++);
                proto_value new_v = rnd_value(&r, texts, slot++);
                if (old_v.type == PROTO_UNDEF && new_v.type == PROTO_UNDEF)
                    new_v = N(); /* the wire cannot carry a column with neither value */
                tp_col(ch, idx, old_v, new_v);
                idx += rnd_next(&r) % 8 == 0 ? 2u : 1u; /* sometimes skip a column */
            }
        }
        uint64_t before = w->cai.acked_seq;
        store_push_info info;
        proto_msg *m = fx_push(&w->fx, &w->cai, tp, NOW_MS, &info);
        assert_true(m->type == PROTO_MSG_ACK || m->type == PROTO_MSG_REJECT);
        if (m->type == PROTO_MSG_ACK) {
            assert_int_equal(w->cai.acked_seq, before + 1);
            n_ack++;
        } else {
            assert_int_equal(w->cai.acked_seq, before + 1); /* refused: the seq is used up */
            n_reject++;
        }
        free(info.teams_touched);
        proto_msg_free(m);
        tp_free(tp);
    }
    assert_true(n_ack > 10 && n_reject > 10); /* both paths were exercised */
    sqlite3_stmt *s = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(store_sqlite_db(w->fx.st), "PRAGMA integrity_check", -1, &s, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "ok");
    sqlite3_finalize(s);
    /* every live row has its merge state, every merge state of a live row has its row */
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM contacts"),
                     fx_int(&w->fx, "SELECT count(*) FROM _outpost_rows WHERE table_id = 1"
                                    " AND deleted = 0"));
    /* nobody wrote outside cai's teams */
    assert_int_equal(
        fx_int(&w->fx, "SELECT count(*) FROM contacts WHERE team_id NOT IN ('north', 'south')"), 0);
}

/* The change log is written in batches (merge_log.c): a push of more than a batch, its
 * remainder, rows changed again in the same push and a scope exit all land once each, and a
 * refused push leaves none of its queued entries behind for the next commit. */
static void test_change_log_batches_land_once_and_refusals_leave_none(void **state)
{
    world *w = *state;
    static char ids[110][8]; /* the push points at them */
    store_push_info info;

    tpush *tp = tp_new(1, HLC(NOW_MS));
    for (int i = 0; i < 40; i++) {
        snprintf(ids[i], sizeof ids[i], "r-%02d", i);
        tp_insert_contact(tp, ids[i], "north", "refused with the rest");
    }
    tp_insert_contact(tp, "r-bad", "east", "no such team of cai's");
    proto_msg *m = fx_push(&w->fx, &w->cai, tp, NOW_MS, &info);
    assert_int_equal(m->type, PROTO_MSG_REJECT);
    proto_msg_free(m);
    tp_free(tp);
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_changes"), 0);

    tp = tp_new(2, HLC(NOW_MS));
    for (int i = 0; i < 70; i++) {
        snprintf(ids[40 + i], sizeof ids[40 + i], "c-%02d", i);
        tp_insert_contact(tp, ids[40 + i], "north", "Amina");
    }
    tp_update_contact(tp, "c-05", C_NAME, T("Amina"), T("Amina B"));
    tp_update_contact(tp, "c-69", C_TEAM, T("north"), T("south"));
    m = fx_push(&w->fx, &w->cai, tp, NOW_MS, &info);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    assert_int_equal(info.n_rows, 72);
    free(info.teams_touched);
    proto_msg_free(m);
    tp_free(tp);

    /* seqs 1..72, each once, none of the refused push's */
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_changes"), 72);
    assert_int_equal(fx_int(&w->fx, "SELECT count(DISTINCT seq) FROM _outpost_changes"
                                    " WHERE seq BETWEEN 1 AND 72"),
                     72);
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_changes c JOIN _outpost_rows"
                                    " r ON r.table_id = c.table_id AND r.pk = c.pk"),
                     72);
    /* every row's state points at its latest entry, which names the one before */
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_rows r JOIN _outpost_changes"
                                    " c ON c.seq = r.seq AND c.pk = r.pk"),
                     70);
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_changes WHERE prev_seq IS NOT"
                                    " NULL"),
                     2);
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_changes c JOIN _outpost_changes"
                                    " p ON p.seq = c.prev_seq WHERE p.pk = c.pk AND p.op = 1"),
                     2);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM _outpost_changes WHERE scope_new = %s AND scope_old = %s",
             fx_text(&w->fx, "south"), fx_text(&w->fx, "north"));
    assert_int_equal(fx_int(&w->fx, sql), 1);
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_scope_exits"), 1);
    assert_contact(w, "c-05", "name", "Amina B");
    assert_contact(w, "c-69", "team_id", "south");
    assert_int_equal(fx_int(&w->fx, "SELECT value FROM _outpost_meta WHERE key = 'server_seq'"),
                     72);
}

/* An insert like tp_insert_contact's with another age (CHECK (age BETWEEN 0 AND 25)). */
static void insert_contact_aged(tpush *tp, const char *id, const char *team, int64_t age)
{
    proto_change *ch = tp_change(tp, "contacts", C_NCOLS, PROTO_OP_INSERT);
    tp_col(ch, C_ID, U(), T(id));
    tp_col(ch, C_TEAM, U(), T(team));
    tp_col(ch, C_NAME, U(), T(id));
    tp_col(ch, C_AGE, U(), I(age));
    tp_col(ch, C_LOCATION, U(), T("market"));
    tp_col(ch, C_NOTES, U(), N());
    tp_col(ch, C_RISK, U(), I(1));
    tp_col(ch, C_UPDATED, U(), I(1000));
}

/* New rows are written 32 per statement (merge_apply.c). A row the store refuses in
 * the middle of a batch, or in the short rest, is refused by name, in the push's order before
 * a later row's refusal, and nothing of the push is applied; a good push lands every row with
 * its own values. */
static void test_new_rows_in_batches_refuse_the_failing_row_in_order(void **state)
{
    world *w = *state;
    static char ids[260][8]; /* the pushes point at them */
    char *before = dump_data(w);

    /* the 38th row breaks the CHECK inside the second batch; the 51st, queued after it, is
     * out of scope and refused while that batch is not yet written */
    tpush *tp = tp_new(1, HLC(NOW_MS));
    for (int i = 0; i < 70; i++) {
        snprintf(ids[i], sizeof ids[i], "a-%02d", i);
        insert_contact_aged(tp, ids[i], i == 50 ? "east" : "north", i == 37 ? 99 : i % 20);
    }
    proto_msg *m = fx_push(&w->fx, &w->ana, tp, NOW_MS, NULL);
    assert_rejected_nothing_applied(w, m, PROTO_ERR_CONSTRAINT, before);
    assert_int_equal(m->u.reject.n_rows, 2);
    assert_true(fx_value_is(&m->u.reject.rows[0].pk[0], "a-37"));
    assert_non_null(strstr(m->u.reject.rows[0].message, "CHECK"));
    assert_int_equal(m->u.reject.rows[1].code, PROTO_ERR_OUT_OF_SCOPE);
    assert_true(fx_value_is(&m->u.reject.rows[1].pk[0], "a-50"));
    proto_msg_free(m);
    tp_free(tp);

    /* the 11th of 40 rows: inside a full batch, nothing refused after it */
    tp = tp_new(2, HLC(NOW_MS));
    for (int i = 0; i < 40; i++) {
        snprintf(ids[150 + i], sizeof ids[150 + i], "d-%02d", i);
        insert_contact_aged(tp, ids[150 + i], "north", i == 10 ? 26 : 3);
    }
    m = fx_push(&w->fx, &w->ana, tp, NOW_MS, NULL);
    assert_rejected_nothing_applied(w, m, PROTO_ERR_CONSTRAINT, before);
    assert_int_equal(m->u.reject.n_rows, 1);
    assert_true(fx_value_is(&m->u.reject.rows[0].pk[0], "d-10"));
    proto_msg_free(m);
    tp_free(tp);

    /* the 33rd of 33 rows: the short rest after one full batch */
    tp = tp_new(3, HLC(NOW_MS));
    for (int i = 0; i < 33; i++) {
        snprintf(ids[70 + i], sizeof ids[70 + i], "b-%02d", i);
        insert_contact_aged(tp, ids[70 + i], "north", i == 32 ? -1 : 3);
    }
    m = fx_push(&w->fx, &w->ana, tp, NOW_MS, NULL);
    assert_rejected_nothing_applied(w, m, PROTO_ERR_CONSTRAINT, before);
    assert_int_equal(m->u.reject.n_rows, 1);
    assert_true(fx_value_is(&m->u.reject.rows[0].pk[0], "b-32"));
    proto_msg_free(m);
    tp_free(tp);
    free(before);

    /* 70 good rows: two batches and a rest of six, each row with its own values */
    tp = tp_new(4, HLC(NOW_MS));
    for (int i = 0; i < 70; i++) {
        snprintf(ids[190 + i], sizeof ids[190 + i], "c-%02d", i);
        insert_contact_aged(tp, ids[190 + i], "north", i % 20);
    }
    store_push_info info;
    m = fx_push(&w->fx, &w->ana, tp, NOW_MS, &info);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    assert_int_equal(info.n_rows, 70);
    free(info.teams_touched);
    proto_msg_free(m);
    tp_free(tp);
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM contacts"), 70);
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_changes"), 70);
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM contacts WHERE name = id"), 70);
    assert_contact(w, "c-00", "age", "0");
    assert_contact(w, "c-31", "age", "11");
    assert_contact(w, "c-45", "age", "5");
    assert_contact(w, "c-69", "age", "9");
}

/* Whether a refusal's message names a unique constraint (SQLite: "UNIQUE constraint failed:
 * contacts.name"; PostgreSQL: "duplicate key value violates unique constraint ...") */
static bool names_unique(const char *message)
{
    return message != NULL && strstr(message, "the store refused the row") != NULL &&
           (strstr(message, "UNIQUE") != NULL || strstr(message, "unique") != NULL);
}

/* A store whose table has a UNIQUE column other than the key (made before init refused them,
 * or an index an operator added): two devices each give a new record the same value while
 * offline. The second push is refused (CONSTRAINT, the row named), never an ERROR the device
 * would retry for ever behind which its outbox waits; its next entry lands. The same for an
 * update taking a value another row holds, and for a clash inside a batch of new rows. */
static void test_unique_clash_refused_as_constraint(void **state)
{
    world *w = *state;
    static char ids[40][8]; /* the pushes point at them */
    assert_int_equal(
        db_exec(w->fx.st->conn, "CREATE UNIQUE INDEX contacts_name_unique ON contacts(name)"), 0);
    seed_contact(w, &w->ana, 1, "c-1", "north", "Amina");
    char *before = dump_data(w);

    tpush *tp = tp_new(1, HLC(NOW_MS));
    tp_insert_contact(tp, "c-2", "north", "Amina");
    proto_msg *m = fx_push(&w->fx, &w->ana2, tp, NOW_MS, NULL);
    tp_free(tp);
    assert_rejected_nothing_applied(w, m, PROTO_ERR_CONSTRAINT, before);
    assert_int_equal(m->u.reject.n_rows, 1);
    assert_true(fx_value_is(&m->u.reject.rows[0].pk[0], "c-2"));
    assert_true(names_unique(m->u.reject.rows[0].message));
    proto_msg_free(m);
    free(before);

    /* the device goes on: its next entry lands */
    seed_contact(w, &w->ana2, 2, "c-3", "north", "Other");
    assert_contact(w, "c-3", "name", "Other");

    /* an update taking the value another row holds */
    before = dump_data(w);
    m = push_update(w, &w->ana2, 3, HLC(NOW_MS), "c-3", C_NAME, T("Other"), T("Amina"), NULL);
    assert_rejected_nothing_applied(w, m, PROTO_ERR_CONSTRAINT, before);
    assert_true(fx_value_is(&m->u.reject.rows[0].pk[0], "c-3"));
    assert_true(names_unique(m->u.reject.rows[0].message));
    proto_msg_free(m);

    /* the 11th of 40 new rows (inside a full batch), then an out-of-scope row after it */
    tp = tp_new(4, HLC(NOW_MS));
    for (int i = 0; i < 40; i++) {
        snprintf(ids[i], sizeof ids[i], "b-%02d", i);
        tp_insert_contact(tp, ids[i], i == 35 ? "east" : "north", i == 10 ? "Amina" : ids[i]);
    }
    m = fx_push(&w->fx, &w->ana2, tp, NOW_MS, NULL);
    tp_free(tp);
    assert_rejected_nothing_applied(w, m, PROTO_ERR_CONSTRAINT, before);
    assert_int_equal(m->u.reject.n_rows, 2);
    assert_true(fx_value_is(&m->u.reject.rows[0].pk[0], "b-10"));
    assert_true(names_unique(m->u.reject.rows[0].message));
    assert_int_equal(m->u.reject.rows[1].code, PROTO_ERR_OUT_OF_SCOPE);
    proto_msg_free(m);
    free(before);

    /* and an update after a refused one-row write goes through in a later entry */
    m = push_update(w, &w->ana2, 5, HLC(NOW_MS), "c-3", C_NAME, T("Other"), T("Amira"), NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    proto_msg_free(m);
    assert_contact(w, "c-3", "name", "Amira");
}

static void tp_family(tpush *tp, const char *table, const char *id, const char *parent_id)
{
    proto_change *ch = tp_change(tp, table, 3, PROTO_OP_INSERT);
    tp_col(ch, 0, U(), T(id));
    tp_col(ch, 1, U(), T("north"));
    tp_col(ch, 2, U(), parent_id ? T(parent_id) : N());
}

/* Pushes tp from dev; on SQLite asserts a REJECT CONSTRAINT naming the foreign key for key
 * first_refused, on PostgreSQL (which does not keep REFERENCES) an ACK. */
static void push_expect_fk(fixture *fx, store_device *dev, tpush *tp, const char *first_refused)
{
    proto_msg *m = fx_push(fx, dev, tp, NOW_MS, NULL);
    tp_free(tp);
    if (first_refused == NULL || fx->engine == FX_POSTGRESQL) {
        assert_int_equal(m->type, PROTO_MSG_ACK);
    } else {
        assert_int_equal(m->type, PROTO_MSG_REJECT);
        assert_int_equal(m->u.reject.rows[0].code, PROTO_ERR_CONSTRAINT);
        assert_true(fx_value_is(&m->u.reject.rows[0].pk[0], first_refused));
        assert_string_equal(m->u.reject.rows[0].message,
                            "the store refused the row: FOREIGN KEY constraint failed");
    }
    proto_msg_free(m);
}

/* A plain REFERENCES (init takes it; devices do not check it). A SQLite store checks it as it
 * applies each row, in the order of the device's transaction: a child naming a parent the store
 * does not have, a child written before its parent in one transaction, and a parent deleted
 * while a child names it are refused (CONSTRAINT, quarantined on the device), never an ERROR;
 * a parent written first lands. A PostgreSQL store does not check it: every push lands. */
static void test_plain_references(void **state)
{
    (void)state;
    fixture fx;
    fx_open_empty(&fx);
    const char *sql = "CREATE TABLE parent(id TEXT PRIMARY KEY, team_id TEXT NOT NULL, name TEXT);"
                      "CREATE TABLE child(id TEXT PRIMARY KEY, team_id TEXT NOT NULL,"
                      " parent_id TEXT REFERENCES parent(id));";
    if (store_init_schema(fx.st, sql, "parent scope=team_id\nchild scope=team_id\n") != 0)
        fail_msg("init: %s", store_errmsg(fx.st));
    assert_int_equal(store_team_add(fx.st, "north", NULL), 0);
    const char *north[] = {"north"};
    assert_int_equal(store_worker_add(fx.st, "ana", north, 1), 0);
    store_device dev;
    fx_device(&fx, "ana", &dev);

    tpush *tp = tp_new(1, HLC(NOW_MS));
    tp_family(tp, "child", "k-1", "p-missing");
    push_expect_fk(&fx, &dev, tp, "k-1");

    tp = tp_new(2, HLC(NOW_MS));
    tp_family(tp, "child", "k-2", "p-2");
    tp_family(tp, "parent", "p-2", "P2");
    push_expect_fk(&fx, &dev, tp, "k-2");

    tp = tp_new(3, HLC(NOW_MS));
    tp_family(tp, "parent", "p-3", "P3");
    tp_family(tp, "child", "k-3", "p-3");
    push_expect_fk(&fx, &dev, tp, NULL);

    tp = tp_new(4, HLC(NOW_MS));
    proto_change *ch = tp_change(tp, "parent", 3, PROTO_OP_DELETE);
    tp_col(ch, 0, T("p-3"), U());
    tp_col(ch, 1, T("north"), U());
    tp_col(ch, 2, T("P3"), U());
    push_expect_fk(&fx, &dev, tp, "p-3");
    store_device_clear(&dev);
    fx_close(&fx);
}

/* On PostgreSQL a batch of new rows runs in a savepoint: a row the server refuses and the row
 * check cannot foresee (a CHECK an operator added to the table) aborts the batch's statement,
 * and the batch is written again row by row. The push is refused as the one-row path refuses
 * it: the same row, the same message, in push order before a later refusal, nothing applied;
 * and the transaction goes on, so the next push lands. */
static void test_postgresql_batch_refused_by_the_server_refuses_as_one_row(void **state)
{
    world *w = *state;
    static char ids[120][8]; /* the pushes point at them */
    static const char long_name[] = "a name much longer than the operator's check allows";
    assert_int_equal(db_exec(w->fx.st->conn, "ALTER TABLE contacts ADD CONSTRAINT"
                                             " contacts_name_short CHECK (octet_length(name) < 30)"),
                     0);
    char *before = dump_data(w);

    /* the 11th of 11 rows: a short queue, written by the one-row INSERT */
    tpush *tp = tp_new(1, HLC(NOW_MS));
    for (int i = 0; i < 11; i++) {
        snprintf(ids[i], sizeof ids[i], "s-%02d", i);
        tp_insert_contact(tp, ids[i], "north", i == 10 ? long_name : "short");
    }
    proto_msg *one = fx_push(&w->fx, &w->ana, tp, NOW_MS, NULL);
    tp_free(tp);
    assert_rejected_nothing_applied(w, one, PROTO_ERR_CONSTRAINT, before);
    assert_int_equal(one->u.reject.n_rows, 1);
    assert_true(fx_value_is(&one->u.reject.rows[0].pk[0], "s-10"));
    assert_non_null(strstr(one->u.reject.rows[0].message, "contacts_name_short"));

    /* the 11th of 40 rows, inside a full batch, then an out-of-scope row after it */
    tp = tp_new(2, HLC(NOW_MS));
    for (int i = 0; i < 40; i++) {
        snprintf(ids[20 + i], sizeof ids[20 + i], "b-%02d", i);
        tp_insert_contact(tp, ids[20 + i], i == 35 ? "east" : "north",
                          i == 10 ? long_name : "short");
    }
    proto_msg *m = fx_push(&w->fx, &w->ana, tp, NOW_MS, NULL);
    tp_free(tp);
    assert_rejected_nothing_applied(w, m, PROTO_ERR_CONSTRAINT, before);
    assert_int_equal(m->u.reject.n_rows, 2);
    assert_true(fx_value_is(&m->u.reject.rows[0].pk[0], "b-10"));
    assert_string_equal(m->u.reject.rows[0].message, one->u.reject.rows[0].message);
    assert_int_equal(m->u.reject.rows[1].code, PROTO_ERR_OUT_OF_SCOPE);
    assert_true(fx_value_is(&m->u.reject.rows[1].pk[0], "b-35"));
    proto_msg_free(m);
    proto_msg_free(one);
    free(before);

    /* 40 good rows land, each with its own values */
    tp = tp_new(3, HLC(NOW_MS));
    for (int i = 0; i < 40; i++) {
        snprintf(ids[70 + i], sizeof ids[70 + i], "g-%02d", i);
        tp_insert_contact(tp, ids[70 + i], "north", ids[70 + i]);
    }
    m = fx_push(&w->fx, &w->ana, tp, NOW_MS, NULL);
    tp_free(tp);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    proto_msg_free(m);
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM contacts"), 40);
    assert_contact(w, "g-00", "name", "g-00");
    assert_contact(w, "g-33", "name", "g-33");
}

/* New rows' merge states are queued when their key sorts after every key the table has
 * (store_rows.c). Keys below, keys the store has, a key twice in one push, and a larger key
 * another connection added meanwhile all still get exactly one state, merged as they must. */
static void test_new_row_states_in_any_key_order_get_one_state_each(void **state)
{
    world *w = *state;
    static char ids[90][8]; /* the pushes point at them */
    for (int i = 0; i < 80; i++)
        snprintf(ids[i], sizeof ids[i], "k-%02d", i);

    tpush *tp = tp_new(1, HLC(NOW_MS - 5000));
    for (int i = 40; i < 80; i++)
        tp_insert_contact(tp, ids[i], "north", "ascending");
    proto_msg *m = fx_push(&w->fx, &w->ana, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    proto_msg_free(m);
    tp_free(tp);

    /* another connection to the same store adds a larger key */
    fixture other = w->fx;
    other.st = fx_open_other(&w->fx);
    tp = tp_new(1, HLC(NOW_MS - 4000));
    tp_insert_contact(tp, "k-90", "north", "from elsewhere");
    m = fx_push(&other, &w->ana2, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    proto_msg_free(m);
    tp_free(tp);
    store_close(other.st);

    tp = tp_new(2, HLC(NOW_MS - 3000));
    tp_insert_contact(tp, "k-90", "north", "from elsewhere"); /* known: merges, no conflict */
    tp_insert_contact(tp, "k-99", "north", "one");
    tp_insert_contact(tp, "k-99", "north", "two"); /* twice in one push */
    for (int i = 39; i >= 0; i--)
        tp_insert_contact(tp, ids[i], "north", "descending");
    tp_insert_contact(tp, "k-50", "north", "ascending"); /* known */
    tp_insert_contact(tp, "k-95", "north", "between");
    m = fx_push(&w->fx, &w->ana, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    proto_msg_free(m);
    tp_free(tp);

    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM contacts"), 83);
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_rows"), 83);
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_rows r JOIN _outpost_changes"
                                    " c ON c.seq = r.seq AND c.pk = r.pk AND c.table_id ="
                                    " r.table_id"),
                     83);
    /* the one decision: k-99's second insert over its first */
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_conflicts"), 1);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM _outpost_conflicts WHERE losing_value = %s AND winning_value = %s",
             fx_text(&w->fx, "one"), fx_text(&w->fx, "two"));
    assert_int_equal(fx_int(&w->fx, sql), 1);
    assert_contact(w, "k-99", "name", "two");
    assert_contact(w, "k-00", "name", "descending");
    assert_contact(w, "k-90", "name", "from elsewhere");
    assert_contact(w, "k-95", "name", "between");
}

#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* The merge rules every engine must keep. */
#define MERGE_RULE_TESTS \
    T_(test_insert_new_row_applied), \
    T_(test_update_different_columns_merge_without_conflict), \
    T_(test_update_same_column_later_hlc_wins_loser_logged), \
    T_(test_reversed_decision_reaches_the_winner), \
    T_(test_update_same_column_later_arrival_with_later_hlc_wins), \
    T_(test_update_tie_broken_by_device_id), \
    T_(test_same_value_written_twice_is_not_a_conflict), \
    T_(test_insert_of_existing_key_merges_by_column), \
    T_(test_update_of_deleted_row_later_update_restores_it), \
    T_(test_update_of_deleted_row_earlier_update_loses), \
    T_(test_update_of_unknown_row_loses_and_is_tombstoned), \
    T_(test_delete_of_deleted_row_is_quiet), \
    T_(test_record_made_again_by_its_deleter_is_no_conflict), \
    T_(test_delete_of_changed_row_earlier_delete_loses), \
    T_(test_delete_of_changed_row_later_delete_wins), \
    T_(test_policy_server_wins_keeps_central_value), \
    T_(test_policy_device_wins_takes_pushed_value), \
    T_(test_clock_far_ahead_is_clamped_and_cannot_win), \
    T_(test_scope_moved_row_touches_old_and_new_team), \
    T_(test_reject_new_scope_value_out_of_scope), \
    T_(test_reject_old_scope_value_out_of_scope), \
    T_(test_reject_unknown_table_column_count_pk_constraint), \
    T_(test_reject_primary_key_of_the_wrong_type), \
    T_(test_duplicate_seq_answers_same_ack_without_applying), \
    T_(test_revoked_device_push_refused), \
    T_(test_change_log_batches_land_once_and_refusals_leave_none), \
    T_(test_new_row_states_in_any_key_order_get_one_state_each),                              \
    T_(test_new_rows_in_batches_refuse_the_failing_row_in_order), \
    T_(test_unique_clash_refused_as_constraint), \
    cmocka_unit_test(test_plain_references),

int main(void)
{
    const struct CMUnitTest tests[] = {
        MERGE_RULE_TESTS
        /* What only SQLite has: the replay test's store file copies, a full disk (page limits),
         * the hostile-push model (PRAGMA integrity_check). */
        cmocka_unit_test(test_replay_1_2_10_times_identical_store),
        T_(test_full_disk_is_efull_and_nothing_applied),
        T_(test_hostile_pushes_never_break_the_store),
    };
    const struct CMUnitTest on_postgresql[] = {
        MERGE_RULE_TESTS
        T_(test_postgresql_batch_refused_by_the_server_refuses_as_one_row),
    };
    return FX_RUN_BOTH_ENGINES("merge", tests, on_postgresql);
}
