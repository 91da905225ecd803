/*
 * The audit log against the store's own writer: each tampering of issue 13, done on a copy of a
 * real store the way an insider with the file and the sqlite3 shell would, must be caught by
 * the keyed chain and by a checkpoint taken before it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <mbedtls/sha256.h>
#include <sqlite3.h>

#include "store_fixture.h"
#include "store_internal.h"


typedef struct world {
    fixture fx;
    char copy[340];
    char at3[STORE_CHECKPOINT_LINE_MAX]; /* checkpoint after 3 rows */
    char at5[STORE_CHECKPOINT_LINE_MAX]; /* checkpoint after all 5 */
    store *st;                           /* the copy, opened with the key */
} world;

static const struct {
    const char *actor, *action, *target;
} rows[] = {
    {"sara", "login.ok", ""},
    {"sara", "record.view", "contacts/c-1"},
    {"sara", "export", "view=records team=north ids=c-1,c-2"},
    {"omar", "login.ok", ""},
    {"omar", "record.view", "contacts/c-9"},
};

static void append_rows(store *st, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        assert_int_equal(store_audit_append(st, NOW_MS + i, rows[i].actor, rows[i].action,
                                            rows[i].target, "10.0.0.5"),
                         STORE_OK);
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    uint64_t n = 0;

    assert_non_null(w);
    fx_open(&w->fx);
    append_rows(w->fx.st, 0, 3);
    assert_int_equal(store_audit_checkpoint(w->fx.st, NOW_MS + 10, w->at3, &n), STORE_OK);
    assert_int_equal(n, 3);
    append_rows(w->fx.st, 3, 5);
    assert_int_equal(store_audit_checkpoint(w->fx.st, NOW_MS + 20, w->at5, &n), STORE_OK);
    assert_int_equal(n, 5);
    snprintf(w->copy, sizeof w->copy, "%s/copy.db", w->fx.dir);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    char p[360];

    store_close(w->st);
    unlink(w->copy);
    snprintf(p, sizeof p, "%s-wal", w->copy);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", w->copy);
    unlink(p);
    fx_close(&w->fx);
    free(w);
    return 0;
}

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
}

/* A copy of the real store (VACUUM INTO), tampered with around the triggers by sql, then
 * opened with the key as `outpost-admin audit verify` would. */
static store *tampered_copy(world *w, const char *sql)
{
    sqlite3 *db = NULL;
    char vacuum[400], err[256];

    snprintf(vacuum, sizeof vacuum, "VACUUM INTO '%s'", w->copy);
    exec(store_sqlite_db(w->fx.st), vacuum);
    assert_int_equal(sqlite3_open(w->copy, &db), SQLITE_OK);
    exec(db, "DROP TRIGGER _outpost_audit_no_update; DROP TRIGGER _outpost_audit_no_delete;");
    exec(db, sql);
    sqlite3_close(db);
    assert_int_equal(store_open(w->copy, false, &w->st, err, sizeof err), STORE_OK);
    assert_int_equal(store_audit_key_load(w->st, w->fx.key_path), STORE_OK);
    return w->st;
}

static void expect_verify(store *st, int rc, int64_t bad_id, const char *message_part)
{
    uint64_t n = 0;
    int64_t bad = -1;
    int got = store_audit_verify(st, &n, &bad);
    if (got != rc || bad != bad_id || strstr(store_errmsg(st), message_part) == NULL)
        fail_msg("verify: rc %d bad %lld '%s'; expected rc %d bad %lld with '%s'", got,
                 (long long)bad, store_errmsg(st), rc, (long long)bad_id, message_part);
}

static void expect_checkpoint(store *st, const char *line, int rc, int64_t bad_id,
                              const char *message_part)
{
    int64_t bad = -1;
    int got = store_audit_verify_checkpoint(st, line, &bad);
    if (got != rc || bad != bad_id || strstr(store_errmsg(st), message_part) == NULL)
        fail_msg("checkpoint: rc %d bad %lld '%s'; expected rc %d bad %lld with '%s'", got,
                 (long long)bad, store_errmsg(st), rc, (long long)bad_id, message_part);
}

/* The old unkeyed chain, as anyone can recompute it: SHA-256(prev || content). */
static void recompute_unkeyed(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *sel = NULL, *upd = NULL;
    uint8_t prev[32] = {0};

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT id, time_ms, actor, action, target, address"
                                            " FROM _outpost_audit ORDER BY id",
                                        -1, &sel, NULL),
                     SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "UPDATE _outpost_audit SET hash = ?2 WHERE id = ?1", -1, &upd, NULL),
        SQLITE_OK);
    while (sqlite3_step(sel) == SQLITE_ROW) {
        mbedtls_sha256_context ctx;
        uint8_t b[8];
        mbedtls_sha256_init(&ctx);
        mbedtls_sha256_starts(&ctx, 0);
        mbedtls_sha256_update(&ctx, prev, 32);
        for (int col = 0; col < 2; col++) {
            uint64_t v = (uint64_t)sqlite3_column_int64(sel, col);
            for (int i = 0; i < 8; i++)
                b[i] = (uint8_t)(v >> (56 - 8 * i));
            mbedtls_sha256_update(&ctx, b, 8);
        }
        for (int col = 2; col < 6; col++) {
            size_t n = (size_t)sqlite3_column_bytes(sel, col);
            uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
                              (uint8_t)n};
            mbedtls_sha256_update(&ctx, len, 4);
            mbedtls_sha256_update(&ctx, sqlite3_column_text(sel, col), n);
        }
        mbedtls_sha256_finish(&ctx, prev);
        mbedtls_sha256_free(&ctx);
        sqlite3_bind_int64(upd, 1, sqlite3_column_int64(sel, 0));
        sqlite3_bind_blob(upd, 2, prev, 32, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(upd), SQLITE_DONE);
        sqlite3_reset(upd);
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    sqlite3_close(db);
}

static void test_untouched_copy_verifies_with_key_and_checkpoints(void **state)
{
    world *w = *state;
    store *st = tampered_copy(w, "SELECT 1");

    expect_verify(st, STORE_OK, 0, "");
    expect_checkpoint(st, w->at3, STORE_OK, 0, "");
    expect_checkpoint(st, w->at5, STORE_OK, 0, "");
}

/* Sara's view and export are deleted, the ids closed up, the chain recomputed, the count set. */
static void test_rewrite_with_recomputed_unkeyed_chain_is_detected(void **state)
{
    world *w = *state;
    store *st = tampered_copy(w, "DELETE FROM _outpost_audit WHERE id IN (2, 3);"
                                 "UPDATE _outpost_audit SET id = id - 2 WHERE id > 3;"
                                 "UPDATE _outpost_meta SET value = 3 WHERE key = 'audit_rows';");
    recompute_unkeyed(w->copy);

    expect_verify(st, STORE_ETAMPERED, 1, "row 1 does not match its hash chain");
    expect_checkpoint(st, w->at5, STORE_ETAMPERED, 4, "finds only 3 rows");
    expect_checkpoint(st, w->at3, STORE_ETAMPERED, 3, "no longer chains to the checkpoint");
}

/* The tail is cut off and audit_rows set to what is left: a chain that verifies by itself. */
static void test_truncated_tail_with_reset_count_is_detected(void **state)
{
    world *w = *state;
    store *st = tampered_copy(w, "DELETE FROM _outpost_audit WHERE id > 3;"
                                 "UPDATE _outpost_meta SET value = 3 WHERE key = 'audit_rows';");

    expect_verify(st, STORE_ETAMPERED, 4, "rows were removed from the end");
    expect_checkpoint(st, w->at5, STORE_ETAMPERED, 4, "rows 4 on were removed");
    /* what was left is what the earlier checkpoint saw */
    expect_checkpoint(st, w->at3, STORE_OK, 0, "");
}

static void test_truncated_tail_without_seal_is_detected(void **state)
{
    world *w = *state;
    store *st = tampered_copy(w, "DELETE FROM _outpost_audit WHERE id > 3;"
                                 "UPDATE _outpost_meta SET value = 3 WHERE key = 'audit_rows';"
                                 "DELETE FROM _outpost_audit_seal;");

    expect_verify(st, STORE_ETAMPERED, 4, "no seal");
}

/* An insider's finding: outpostd chained new rows onto a cut tail and re-sealed it, hiding the
 * cut. A log whose end does not match its seal is never extended. */
static void test_a_cut_tail_is_not_extended(void **state)
{
    world *w = *state;
    store *st = tampered_copy(w, "DELETE FROM _outpost_audit WHERE id > 3;"
                                 "UPDATE _outpost_meta SET value = 3 WHERE key = 'audit_rows';");

    assert_int_equal(store_audit_append(st, NOW_MS + 99, "sara", "record.list", "records", "x"),
                     STORE_ETAMPERED);
    expect_verify(st, STORE_ETAMPERED, 4, "rows were removed from the end");
    /* nor signed: outpostd signed a "start" checkpoint of such a log */
    char line[STORE_CHECKPOINT_LINE_MAX];
    uint64_t n = 0;
    assert_int_equal(store_audit_checkpoint(st, NOW_MS + 99, line, &n), STORE_ETAMPERED);
}

/* An insider's finding: a trigger added to the store (RAISE(IGNORE) before the insert) dropped
 * the audit row of a read while the read was served. The append now fails, so nothing is
 * shown; an AFTER trigger that deletes the row is caught the same way. */
static void test_a_trigger_that_drops_audit_rows_makes_the_append_fail(void **state)
{
    world *w = *state;
    store *st = tampered_copy(w, "CREATE TRIGGER quiet BEFORE INSERT ON _outpost_audit"
                                 " WHEN NEW.actor = 'sara' BEGIN SELECT RAISE(IGNORE); END;"
                                 "CREATE TRIGGER gone AFTER INSERT ON _outpost_audit"
                                 " WHEN NEW.actor = 'sam' BEGIN"
                                 " DELETE FROM _outpost_audit WHERE id = NEW.id; END;");

    assert_int_equal(store_audit_append(st, NOW_MS + 99, "sara", "record.list", "records", "x"),
                     STORE_ETAMPERED);
    assert_non_null(strstr(store_errmsg(st), "was not kept"));
    /* (outpostd's own no-delete trigger, back at open, may refuse the delete first: either way
     * the append fails) */
    assert_int_not_equal(store_audit_append(st, NOW_MS + 99, "sam", "record.view", "r/1", "x"),
                         STORE_OK);
    /* rows nobody tampers with still go in */
    assert_int_equal(store_audit_append(st, NOW_MS + 99, "root", "user.add", "x", "x"), STORE_OK);
}

static void test_deleted_row_is_detected(void **state)
{
    world *w = *state;
    store *st = tampered_copy(w, "DELETE FROM _outpost_audit WHERE id = 2;"
                                 "UPDATE _outpost_meta SET value = 4 WHERE key = 'audit_rows';");

    expect_verify(st, STORE_ETAMPERED, 2, "audit row 2 is missing");
    expect_checkpoint(st, w->at5, STORE_ETAMPERED, 5, "no longer chains to the checkpoint");
    expect_checkpoint(st, w->at3, STORE_ETAMPERED, 3, "no longer chains to the checkpoint");
}

static void test_changed_row_is_detected(void **state)
{
    world *w = *state;
    store *st = tampered_copy(w, "UPDATE _outpost_audit SET target = 'contacts/other' WHERE id = 2");

    expect_verify(st, STORE_ETAMPERED, 2, "row 2 does not match its hash chain");
    expect_checkpoint(st, w->at3, STORE_ETAMPERED, 3, "no longer chains to the checkpoint");
}

/* An insider holding the key file as well writes a consistent log without sara's rows: the
 * chain verifies (the key cannot stop its holder), a checkpoint shipped before does not. */
static void test_rewrite_by_key_holder_is_caught_only_by_checkpoint(void **state)
{
    world *w = *state;
    store *st = tampered_copy(w, "DELETE FROM _outpost_audit; DELETE FROM _outpost_audit_seal;"
                                 "UPDATE _outpost_meta SET value = 0 WHERE key = 'audit_rows';");
    append_rows(st, 0, 1);
    append_rows(st, 3, 5);

    expect_verify(st, STORE_OK, 0, "");
    expect_checkpoint(st, w->at5, STORE_ETAMPERED, 4, "finds only 3 rows");
    expect_checkpoint(st, w->at3, STORE_ETAMPERED, 3, "no longer chains to the checkpoint");
}

static void test_altered_or_foreign_checkpoint_is_refused(void **state)
{
    world *w = *state;
    store *st = tampered_copy(w, "SELECT 1");
    char line[STORE_CHECKPOINT_LINE_MAX];
    char *p;
    fixture other;

    /* rows=5 claimed as rows=4 */
    snprintf(line, sizeof line, "%s", w->at5);
    p = strstr(line, "rows=5");
    assert_non_null(p);
    p[5] = '4';
    expect_checkpoint(st, line, STORE_ETAMPERED, 0, "altered or forged");
    expect_checkpoint(st, "rows=5 head=00", STORE_EINVAL, 0, "not an audit checkpoint line");

    /* a checkpoint of another store, with its own key */
    fx_open(&other);
    append_rows(other.st, 0, 5);
    uint64_t n = 0;
    assert_int_equal(store_audit_checkpoint(other.st, NOW_MS, line, &n), STORE_OK);
    fx_close(&other);
    expect_checkpoint(st, line, STORE_EINVAL, 0, "signed with another audit key");
}

static void test_key_file_must_be_private_and_present(void **state)
{
    world *w = *state;
    store *st = tampered_copy(w, "SELECT 1");
    store *bare = NULL;
    char err[256], path[360];
    uint64_t n = 0;
    int64_t bad = 0;

    assert_int_equal(chmod(w->fx.key_path, 0640), 0);
    assert_int_equal(store_audit_key_load(st, w->fx.key_path), STORE_EINVAL);
    assert_non_null(strstr(store_errmsg(st), "mode 0640"));
    assert_int_equal(chmod(w->fx.key_path, 0600), 0);
    /* a second create never overwrites the key */
    assert_int_equal(store_audit_key_create(w->fx.key_path, err, sizeof err), STORE_EEXISTS);
    assert_int_equal(store_audit_key_load(st, w->fx.key_path), STORE_OK);
    expect_verify(st, STORE_OK, 0, "");

    /* without the key nothing is appended and nothing is called verified */
    snprintf(path, sizeof path, "%s", w->copy);
    assert_int_equal(store_open(path, false, &bare, err, sizeof err), STORE_OK);
    assert_int_equal(store_audit_append(bare, NOW_MS, "x", "login.ok", "", "::1"), STORE_EINVAL);
    assert_non_null(strstr(store_errmsg(bare), "no audit key loaded"));
    assert_int_equal(store_audit_verify(bare, &n, &bad), STORE_EINVAL);
    store_close(bare);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T_(test_untouched_copy_verifies_with_key_and_checkpoints),
        T_(test_rewrite_with_recomputed_unkeyed_chain_is_detected),
        T_(test_truncated_tail_with_reset_count_is_detected),
        T_(test_truncated_tail_without_seal_is_detected),
        T_(test_a_cut_tail_is_not_extended),
        T_(test_a_trigger_that_drops_audit_rows_makes_the_append_fail),
        T_(test_deleted_row_is_detected),
        T_(test_changed_row_is_detected),
        T_(test_rewrite_by_key_holder_is_caught_only_by_checkpoint),
        T_(test_altered_or_foreign_checkpoint_is_refused),
        T_(test_key_file_must_be_private_and_present),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
