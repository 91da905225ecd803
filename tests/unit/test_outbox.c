/* The outbox: entries in commit order read as PUSH messages, removed only on ACK or REJECT. */
#include "unit/client_fixture.h"

#include <math.h>

#include "internal.h" /* outbox_decode */

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

/* ACKs recorded together: one transaction, all or nothing, conflicts reported after it. */
static void test_outbox_acks_recorded_together_all_or_none(void **state)
{
    fixture *f = *state;
    proto_value pk = pv_text("c2");
    proto_conflict conflict = {.table = "contacts", .n_pk = 1, .pk = &pk, .col = 2,
                               .kind = PROTO_CONFLICT_DATA, .mine = pv_text("Ben"),
                               .winner = pv_text("Benno")};
    proto_ack a1 = {.seq = 1, .server_seq = 10}, a2 = {.seq = 2, .server_seq = 11,
                                                         .n_conflicts = 1, .conflicts = &conflict};
    proto_ack never = {.seq = 9, .server_seq = 12};
    const proto_ack *bad[] = {&a1, &a2, &never}, *good[] = {&a1, &a2};

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c2", "Ben", 16), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c3", "Cai", 17), OUTPOST_OK);
    /* The third answers an entry never made: none of the three is recorded. */
    assert_int_equal(outpost_outbox_ack_batch(f->r, bad, 3), OUTPOST_EPROTO);
    assert_int_equal(fx_pending(f), 3);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM _outpost_sent"), 0);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM _outpost_conflicts"), 0);
    assert_int_equal(f->n_conflicts, 0);

    assert_int_equal(outpost_outbox_ack_batch(f->r, good, 2), OUTPOST_OK);
    assert_int_equal(fx_pending(f), 1);
    outpost_outbox_entry *e = read_after(f, 0);
    assert_non_null(e);
    assert_int_equal(e->push.seq, 3);
    outpost_outbox_entry_free(e);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM _outpost_sent"), 2);
    assert_int_equal(fx_query_int(f, "SELECT acked_max FROM _outpost_server"), 2);
    assert_int_equal(f->n_conflicts, 1);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM _outpost_conflicts WHERE seq = 2"), 1);
    /* The same answers again (resent after a crash before they were recorded elsewhere):
     * nothing changes, nothing is reported twice. */
    assert_int_equal(outpost_outbox_ack_batch(f->r, good, 2), OUTPOST_OK);
    assert_int_equal(fx_pending(f), 1);
    assert_int_equal(f->n_conflicts, 1);
    assert_int_equal(outpost_outbox_ack_batch(f->r, NULL, 0), OUTPOST_OK);
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

/* ---- the changeset decoder against SQLite's own iterator (the oracle) ---------------------- */

static void assert_same_value(sqlite3_value *sv, const proto_value *v)
{
    if (sv == NULL) {
        assert_int_equal(v->type, PROTO_UNDEF);
        return;
    }
    switch (sqlite3_value_type(sv)) {
    case SQLITE_INTEGER:
        assert_int_equal(v->type, PROTO_INT);
        assert_true(v->u.i == sqlite3_value_int64(sv));
        break;
    case SQLITE_FLOAT: {
        double d = sqlite3_value_double(sv);
        assert_int_equal(v->type, PROTO_REAL);
        assert_memory_equal(&v->u.r, &d, sizeof d);
        break;
    }
    case SQLITE_TEXT:
    case SQLITE_BLOB:
        assert_int_equal(v->type, sqlite3_value_type(sv) == SQLITE_TEXT ? PROTO_TEXT : PROTO_BLOB);
        assert_int_equal(v->u.b.n, sqlite3_value_bytes(sv));
        if (v->u.b.n)
            assert_memory_equal(v->u.b.p, sqlite3_value_blob(sv), v->u.b.n);
        assert_int_equal(v->u.b.p[v->u.b.n], 0); /* NUL-terminated, as before */
        break;
    default: assert_int_equal(v->type, PROTO_NULL); break;
    }
}

/* Whether outbox_decode reads bytes exactly as sqlite3changeset_next() does: the same tables,
 * changes, columns and values, and a refusal exactly where SQLite finds the bytes corrupt.
 * Returns the number of changes compared. */
static int decode_matches_sqlite(const uint8_t *cs, int n)
{
    struct outpost_arena *arena = NULL;
    proto_push push;
    sqlite3_changeset_iter *it = NULL;
    int rc = outbox_decode(cs, n, &arena, &push), step, n_changes = 0;
    uint32_t ti = 0, ci = 0;
    char *prev = NULL; /* a copy: the iterator's name is in a buffer the next header reuses */

    assert_int_equal(sqlite3changeset_start(&it, n, (void *)cs), SQLITE_OK);
    while ((step = sqlite3changeset_next(it)) == SQLITE_ROW && rc == OUTPOST_OK) {
        const char *table;
        int n_col, op, indirect;

        assert_int_equal(sqlite3changeset_op(it, &table, &n_col, &op, &indirect), SQLITE_OK);
        if (prev != NULL && strcmp(prev, table) != 0) {
            ti++;
            ci = 0;
        }
        if (prev == NULL || strcmp(prev, table) != 0) {
            sqlite3_free(prev);
            prev = sqlite3_mprintf("%s", table);
            assert_non_null(prev);
        }
        assert_true(ti < push.n_tables);
        const proto_table_changes *tc = &push.tables[ti];
        assert_string_equal(tc->table, table);
        assert_int_equal(tc->n_columns, n_col);
        assert_true(ci < tc->n_changes);
        const proto_change *ch = &tc->changes[ci++];
        assert_int_equal(ch->op, op == SQLITE_INSERT   ? PROTO_OP_INSERT
                                 : op == SQLITE_DELETE ? PROTO_OP_DELETE
                                                       : PROTO_OP_UPDATE);
        uint32_t k = 0;
        for (int c = 0; c < n_col; c++) {
            sqlite3_value *o = NULL, *w = NULL;
            if (op != SQLITE_INSERT)
                assert_int_equal(sqlite3changeset_old(it, c, &o), SQLITE_OK);
            if (op != SQLITE_DELETE)
                assert_int_equal(sqlite3changeset_new(it, c, &w), SQLITE_OK);
            if (o == NULL && w == NULL)
                continue;
            assert_true(k < ch->n_cols);
            assert_int_equal(ch->cols[k].idx, c);
            assert_same_value(o, &ch->cols[k].old_val);
            assert_same_value(w, &ch->cols[k].new_val);
            k++;
        }
        assert_int_equal(ch->n_cols, k);
        n_changes++;
    }
    if (rc == OUTPOST_OK) {
        /* Accepted: SQLite read the same changes to the end, and no more. */
        assert_int_equal(step, SQLITE_DONE);
        assert_int_equal(push.n_tables, prev ? ti + 1 : 0);
        if (prev)
            assert_int_equal(push.tables[ti].n_changes, ci);
    } else {
        /* Refused: as corrupt, and SQLite stops on these bytes too. */
        assert_int_equal(rc, OUTPOST_ECORRUPT);
        while (step == SQLITE_ROW)
            step = sqlite3changeset_next(it);
        assert_int_not_equal(step, SQLITE_DONE);
    }
    sqlite3changeset_finalize(it);
    sqlite3_free(prev);
    arena_free(arena);
    return n_changes;
}

/* A changeset of every kind of value and change over two tables, captured by SQLite's session
 * extension on a plain database (the replica's capture makes the same format). */
static uint8_t *changeset_of_every_kind(int long_text, int *out_n)
{
    sqlite3 *db = NULL;
    sqlite3_session *ses = NULL;
    void *cs = NULL;
    char *text = malloc((size_t)long_text + 1);

    assert_non_null(text);
    memset(text, 'x', (size_t)long_text);
    text[long_text] = 0;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE a(id TEXT PRIMARY KEY, i INTEGER, r REAL, t TEXT,"
                                  " b BLOB, n);"
                                  "CREATE TABLE bb(k1 INTEGER, k2 TEXT, v, PRIMARY KEY(k1, k2))"
                                  " WITHOUT ROWID;"
                                  "INSERT INTO a VALUES('old', 1, 1.5, 'o', x'01', NULL);"
                                  "INSERT INTO bb VALUES(-7, 'q', 'gone');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3session_create(db, "main", &ses), SQLITE_OK);
    assert_int_equal(sqlite3session_attach(ses, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO a VALUES(?1, ?2, ?3, ?4, ?5, NULL)", -1,
                                        &st, NULL),
                     SQLITE_OK);
    const int64_t ints[] = {0, 1, -1, 127, 128, INT64_MAX, INT64_MIN, 1700000000000};
    const double reals[] = {0.0, -0.0, 0.1, -1e300, INFINITY, 3.0};
    for (int i = 0; i < 8; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, ints[i]);
        sqlite3_bind_double(st, 3, reals[i % 6]);
        sqlite3_bind_text(st, 4, i == 0 ? "" : i == 1 ? text : "été", -1, SQLITE_STATIC);
        if (i == 2)
            sqlite3_bind_null(st, 5);
        else
            sqlite3_bind_blob(st, 5, text, i == 3 ? 0 : i, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE a SET t = 'new', n = 4 WHERE id = 'old';"
                                  "UPDATE a SET r = NULL WHERE id = 'r1';"
                                  "INSERT INTO bb VALUES(1, 'a', x''), (2, '', 2.5);"
                                  "DELETE FROM bb WHERE k1 = -7;"
                                  "UPDATE bb SET v = 'changed' WHERE k1 = 1;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    int n = 0;
    assert_int_equal(sqlite3session_changeset(ses, &n, &cs), SQLITE_OK);
    sqlite3session_delete(ses);
    sqlite3_close(db);
    free(text);
    *out_n = n;
    return cs;
}

static void test_outbox_changeset_decoded_as_sqlite_reads_it(void **state)
{
    int n = 0;
    (void)state;
    /* 200 and 20,000 bytes of text: lengths of two and three varint bytes. */
    uint8_t *cs = changeset_of_every_kind(20000, &n);
    assert_int_equal(decode_matches_sqlite(cs, n), 12);
    sqlite3_free(cs);
    cs = changeset_of_every_kind(200, &n);
    assert_int_equal(decode_matches_sqlite(cs, n), 12);
    assert_int_equal(decode_matches_sqlite(cs, 0), 0);
    /* Every cut: refused as corrupt, or (cut right after a change) read as the changes before
     * it. SQLite's own iterator is no oracle here: 3.40 loops forever on
     * some cuts (a lone 'T'). ASan sees any read past the end. */
    struct outpost_arena *arena = NULL;
    proto_push full;
    int accepted = 0;
    assert_int_equal(outbox_decode(cs, n, &arena, &full), OUTPOST_OK);
    for (int cut = 1; cut < n; cut++) {
        uint8_t *part = malloc((size_t)cut);
        struct outpost_arena *pa = NULL;
        proto_push push;
        assert_non_null(part);
        memcpy(part, cs, (size_t)cut);
        int rc = outbox_decode(part, cut, &pa, &push);
        if (rc == OUTPOST_OK) {
            accepted++;
            assert_true(push.n_tables >= 1 && push.n_tables <= full.n_tables);
            for (uint32_t t = 0; t < push.n_tables; t++) {
                const proto_table_changes *a = &push.tables[t], *b = &full.tables[t];
                assert_string_equal(a->table, b->table);
                assert_true(a->n_changes <= b->n_changes);
                assert_true(t + 1 == push.n_tables || a->n_changes == b->n_changes);
                for (uint32_t c = 0; c < a->n_changes; c++) {
                    assert_int_equal(a->changes[c].op, b->changes[c].op);
                    assert_int_equal(a->changes[c].n_cols, b->changes[c].n_cols);
                    for (uint32_t k = 0; k < a->changes[c].n_cols; k++) {
                        assert_int_equal(a->changes[c].cols[k].idx, b->changes[c].cols[k].idx);
                        assert_true(proto_value_equal(&a->changes[c].cols[k].old_val,
                                                      &b->changes[c].cols[k].old_val));
                        assert_true(proto_value_equal(&a->changes[c].cols[k].new_val,
                                                      &b->changes[c].cols[k].new_val));
                    }
                }
            }
        } else {
            assert_int_equal(rc, OUTPOST_ECORRUPT);
        }
        arena_free(pa);
        free(part);
    }
    /* After each of the 12 changes but the last; not after a table header (a header is
     * followed by a change: one at the end is a cut). */
    assert_int_equal(accepted, 11);
    arena_free(arena);
    sqlite3_free(cs);
}

/* ---- what SQLite's session extension never writes ------------------------------------------ */

/* Hand-made changesets over t(id PRIMARY KEY, a, b): a header, then changes. */
#define CS_HDR 'T', 3, 1, 0, 0, 't', 0
#define CS_I1 SQLITE_INTEGER, 0, 0, 0, 0, 0, 0, 0, 1
#define CS_I2 SQLITE_INTEGER, 0, 0, 0, 0, 0, 0, 0, 2
#define CS_X SQLITE_TEXT, 1, 'x'
#define CS_Y SQLITE_TEXT, 1, 'y'
#define CS_N SQLITE_NULL
#define CS_U 0
#define CS_INSERT SQLITE_INSERT, 0, CS_I1, CS_X, CS_N

typedef struct cs_case {
    const char *what;
    uint8_t bytes[96];
    int n;
} cs_case;

#define CS_CASE(what, ...)                                                                       \
    {what, {__VA_ARGS__}, (int)sizeof((uint8_t[]){__VA_ARGS__})}

static void test_outbox_decode_reads_hand_made_changesets_as_sqlite_does(void **state)
{
    (void)state;
    /* The controls for the refusals below: the same bytes, well formed. */
    static const cs_case good[] = {
        CS_CASE("insert", CS_HDR, CS_INSERT),
        CS_CASE("update", CS_HDR, SQLITE_UPDATE, 0, CS_I1, CS_X, CS_U, CS_U, CS_Y, CS_U),
        CS_CASE("delete", CS_HDR, SQLITE_DELETE, 1, CS_I1, CS_X, CS_N),
        /* What SQLite writes when a key's type changes (k = 1.0 where k = 1, no affinity). */
        CS_CASE("update of a key", CS_HDR, SQLITE_UPDATE, 0, CS_I1, CS_U, CS_U, CS_I2, CS_U, CS_U),
        /* A key flag is the column's position in the key (the format's comment says 1). */
        CS_CASE("composite key", 'T', 3, 2, 0, 1, 't', 0, CS_INSERT),
        CS_CASE("two tables", CS_HDR, CS_INSERT, 'T', 1, 1, 'u', 0, SQLITE_INSERT, 0, CS_N),
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        print_message("good: %s\n", good[i].what);
        assert_true(decode_matches_sqlite(good[i].bytes, good[i].n) >= 1);
    }
    /* An empty blob, as sqlite3_column_blob() gives it: no changes; NULL with bytes: corrupt. */
    struct outpost_arena *arena = NULL;
    proto_push push;
    assert_int_equal(outbox_decode(NULL, 0, &arena, &push), OUTPOST_OK);
    assert_int_equal(push.n_tables, 0);
    assert_int_equal(outbox_decode(NULL, 3, &arena, &push), OUTPOST_ECORRUPT);
    assert_int_equal(outbox_decode(good[0].bytes, -1, &arena, &push), OUTPOST_ECORRUPT);
    arena_free(arena);
}

static void test_outbox_decode_refuses_what_sqlite_never_writes(void **state)
{
    (void)state;
    /* Each read by SQLite 3.40's iterator without complaint (or with a meaning it makes up),
     * never written by sqlite3session_changeset(): damage, to be refused as corrupt. */
    static const cs_case bad[] = {
        /* The iterator drops an old value whose column has no new one. */
        CS_CASE("update, old value only", CS_HDR, SQLITE_UPDATE, 0, CS_I1, CS_X, CS_N, CS_U, CS_Y,
                CS_U),
        CS_CASE("update, new value only", CS_HDR, SQLITE_UPDATE, 0, CS_I1, CS_U, CS_U, CS_U, CS_Y,
                CS_U),
        CS_CASE("update changing nothing", CS_HDR, SQLITE_UPDATE, 0, CS_I1, CS_U, CS_U, CS_U, CS_U,
                CS_U),
        CS_CASE("update without its key", CS_HDR, SQLITE_UPDATE, 0, CS_U, CS_X, CS_U, CS_U, CS_Y,
                CS_U),
        CS_CASE("insert with an undefined value", CS_HDR, SQLITE_INSERT, 0, CS_I1, CS_U, CS_N),
        CS_CASE("delete with an undefined value", CS_HDR, SQLITE_DELETE, 0, CS_I1, CS_X, CS_U),
        /* The iterator reads a NaN as NULL; SQLite never stores one. */
        CS_CASE("NaN", CS_HDR, SQLITE_INSERT, 0, CS_I1, SQLITE_FLOAT, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0,
                CS_N),
        CS_CASE("indirect flag 2", CS_HDR, SQLITE_INSERT, 2, CS_I1, CS_X, CS_N),
        CS_CASE("no key column", 'T', 3, 0, 0, 0, 't', 0, CS_INSERT),
        /* A header is followed by at least one change: one at the end is a cut changeset. */
        CS_CASE("header at the end", CS_HDR, CS_INSERT, 'T', 1, 1, 'u', 0),
        CS_CASE("header without changes", 'T', 1, 1, 'u', 0, CS_HDR, CS_INSERT),
        CS_CASE("same table twice", CS_HDR, CS_INSERT, CS_HDR, SQLITE_INSERT, 0, CS_I2, CS_X, CS_N),
        CS_CASE("patchset", 'P', 3, 1, 0, 0, 't', 0, CS_INSERT),
        CS_CASE("empty table name", 'T', 3, 1, 0, 0, 0, CS_INSERT),
    };
    int wrong = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct outpost_arena *arena = NULL;
        proto_push push;
        int rc = outbox_decode(bad[i].bytes, bad[i].n, &arena, &push);
        if (rc != OUTPOST_ECORRUPT) {
            print_message("%s: %s, not refused as corrupt\n", bad[i].what, outpost_strerror(rc));
            wrong++;
        }
        arena_free(arena);
    }
    assert_int_equal(wrong, 0);
}

/* ---- random sessions: every changeset SQLite writes is read as SQLite reads it -------------- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A random value of any kind: integers at the varint and sign edges, reals with -0.0 and
 * infinities, text and blobs of 0, 1-byte, 2-byte and 3-byte varint lengths, NULL. */
static void bind_random(sqlite3_stmt *st, int idx, uint64_t *rng, const char *filler)
{
    static const int64_t ints[] = {0, 1, -1, 127, 128, 16383, 16384, INT32_MAX, INT64_MAX,
                                   INT64_MIN};
    static const double reals[] = {0.0, -0.0, 1.0, 0.5, -1e300, 1e-310, INFINITY, -INFINITY};
    static const int lens[] = {0, 1, 5, 127, 128, 200, 16384, 20000};
    uint64_t r = rng_next(rng);

    switch (r % 5) {
    case 0: sqlite3_bind_int64(st, idx, ints[(r >> 8) % 10]); break;
    case 1: sqlite3_bind_double(st, idx, reals[(r >> 8) % 8]); break;
    case 2: sqlite3_bind_text(st, idx, filler, lens[(r >> 8) % 8], SQLITE_STATIC); break;
    case 3: sqlite3_bind_blob(st, idx, filler, lens[(r >> 8) % 8], SQLITE_STATIC); break;
    default: sqlite3_bind_null(st, idx); break;
    }
}

/* Keys from a small set, so that statements meet rows; the untyped key mixes 1 and 1.0. */
static void bind_key(sqlite3_stmt *st, int idx, int table, uint64_t *rng)
{
    uint64_t r = rng_next(rng) % 6;

    switch (table) {
    case 0: sqlite3_bind_int64(st, idx, (int64_t)r); break;
    case 1: {
        char k[8];
        snprintf(k, sizeof k, "k%d", (int)r);
        sqlite3_bind_text(st, idx, k, -1, SQLITE_TRANSIENT);
        break;
    }
    default:
        if (r < 2)
            sqlite3_bind_double(st, idx, (double)(r + 1));
        else
            sqlite3_bind_int64(st, idx, (int64_t)r - 1);
        break;
    }
}

static void test_outbox_random_sessions_decoded_as_sqlite_reads_them(void **state)
{
    (void)state;
    /* Four tables: integer key, text key, composite key declared out of column order (key
     * flags 2 and 1) in a WITHOUT ROWID table, and an untyped key among 130 columns (a column
     * count of two varint bytes). */
    static const char *names[] = {"ri", "st", "wc", "wide"};
    static const int n_cols[] = {4, 3, 3, 130};
    char *wide = sqlite3_mprintf("CREATE TABLE wide(");
    for (int c = 0; c < 130; c++)
        wide = sqlite3_mprintf("%z%sc%d%s", wide, c ? ", " : "", c, c == 0 ? " PRIMARY KEY" : "");
    wide = sqlite3_mprintf("%z) WITHOUT ROWID", wide);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE ri(id INTEGER PRIMARY KEY, a, b REAL, c TEXT);"
                                  "CREATE TABLE st(k TEXT PRIMARY KEY, v BLOB, w);"
                                  "CREATE TABLE wc(v, k1 INTEGER, k2 TEXT, PRIMARY KEY(k2, k1))"
                                  " WITHOUT ROWID;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, wide, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_free(wide);
    char *filler = malloc(20001);
    assert_non_null(filler);
    memset(filler, 'z', 20000);
    filler[20000] = 0;
    uint64_t rng = 0x9e3779b97f4a7c15u;
    int ops[3] = {0, 0, 0}; /* INSERT, UPDATE, DELETE changes read */
    for (int round = 0; round < 300; round++) {
        sqlite3_session *ses = NULL;
        assert_int_equal(sqlite3session_create(db, "main", &ses), SQLITE_OK);
        assert_int_equal(sqlite3session_attach(ses, NULL), SQLITE_OK);
        int n_stmt = 1 + (int)(rng_next(&rng) % 8);
        for (int s = 0; s < n_stmt; s++) {
            int t = (int)(rng_next(&rng) % 4), kind = (int)(rng_next(&rng) % 3);
            int key_table = t == 3 ? 2 : t == 2 ? 0 : t;
            const char *key_col = t == 0 ? "id" : t == 1 ? "k" : t == 2 ? "k1" : "c0";
            int col = 1 + (int)(rng_next(&rng) % (uint64_t)(n_cols[t] - 1));
            char *sql;
            if (kind == 0) {
                sql = sqlite3_mprintf("INSERT OR REPLACE INTO %s(%s%s) VALUES(?1%s)", names[t],
                                      key_col, t == 2 ? ", k2" : "", t == 2 ? ", 'x'" : "");
            } else if (kind == 1) {
                const char *set = t == 0   ? (col == 1 ? "a" : col == 2 ? "b" : "c")
                                : t == 1   ? (col == 1 ? "v" : "w")
                                : t == 2   ? "v"
                                           : NULL;
                /* A key updated in place: 1 to 1.0 is an UPDATE of the key (see above). */
                if (t == 3 && col == 1)
                    set = "c0";
                sql = set ? sqlite3_mprintf("UPDATE %s SET %s = ?2 WHERE %s = ?1", names[t], set,
                                            key_col)
                          : sqlite3_mprintf("UPDATE %s SET c%d = ?2 WHERE %s = ?1", names[t], col,
                                            key_col);
            } else {
                sql = sqlite3_mprintf("DELETE FROM %s WHERE %s = ?1", names[t], key_col);
            }
            sqlite3_stmt *st = NULL;
            assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
            sqlite3_free(sql);
            bind_key(st, 1, key_table, &rng);
            if (kind == 1 && t == 3 && col == 1)
                bind_key(st, 2, key_table, &rng);
            else if (kind == 1)
                bind_random(st, 2, &rng, filler);
            int step = sqlite3_step(st);
            assert_true(step == SQLITE_DONE || step == SQLITE_CONSTRAINT);
            sqlite3_finalize(st);
        }
        void *cs = NULL;
        int n = 0;
        assert_int_equal(sqlite3session_changeset(ses, &n, &cs), SQLITE_OK);
        sqlite3session_delete(ses);
        if (n > 0) {
            struct outpost_arena *arena = NULL;
            proto_push push;
            assert_int_equal(decode_matches_sqlite(cs, n) > 0, 1);
            assert_int_equal(outbox_decode(cs, n, &arena, &push), OUTPOST_OK);
            for (uint32_t t = 0; t < push.n_tables; t++)
                for (uint32_t c = 0; c < push.tables[t].n_changes; c++)
                    ops[push.tables[t].changes[c].op - PROTO_OP_INSERT]++;
            arena_free(arena);
        }
        sqlite3_free(cs);
    }
    print_message("read %d inserts, %d updates, %d deletes\n", ops[0], ops[1], ops[2]);
    assert_true(ops[0] > 100 && ops[1] > 100 && ops[2] > 50);
    sqlite3_close(db);
    free(filler);
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
        cmocka_unit_test_setup_teardown(test_outbox_acks_recorded_together_all_or_none, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_outbox_bad_answers_refused, fx_setup, fx_teardown),
        cmocka_unit_test(test_outbox_changeset_decoded_as_sqlite_reads_it),
        cmocka_unit_test(test_outbox_decode_reads_hand_made_changesets_as_sqlite_does),
        cmocka_unit_test(test_outbox_decode_refuses_what_sqlite_never_writes),
        cmocka_unit_test(test_outbox_random_sessions_decoded_as_sqlite_reads_them),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
