/*
 * WAL checkpoints off the push's COMMIT (store_wal_defer, store_wal_tend: what outpostd's worker
 * does between jobs): the COMMIT leaves its pages in the WAL, an idle tend copies them into the
 * database file, and under a steady load that never leaves the worker idle the WAL still stays
 * within its bound instead of growing with every push.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store_fixture.h"

enum { LIMIT_PAGES = 64, PUSHES = 120, ROWS_PER_PUSH = 20 };

static int64_t file_bytes(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

/* FNV-1a of a file's bytes: whether a checkpoint wrote into the database file (which need not
 * grow: a few rows fit in the free room of its 16 KiB pages). */
static uint64_t file_hash(const char *path)
{
    uint64_t h = 14695981039346656037u;
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    int c;
    while ((c = getc(f)) != EOF)
        h = (h ^ (uint64_t)c) * 1099511628211u;
    fclose(f);
    return h;
}

static int64_t wal_bytes(const fixture *fx)
{
    char p[400];
    snprintf(p, sizeof p, "%s-wal", fx->path);
    return file_bytes(p);
}

/* Push k: ROWS_PER_PUSH new contacts "w<k>-<j>". */
static void push_rows(fixture *fx, store_device *dev, uint64_t k)
{
    tpush *tp = tp_new(k + 1, HLC(NOW_MS + k));
    char ids[ROWS_PER_PUSH][32];
    for (uint32_t j = 0; j < ROWS_PER_PUSH; j++) {
        snprintf(ids[j], sizeof ids[j], "w%03" PRIu64 "-%02u", k, j);
        tp_insert_contact(tp, ids[j], "north", "a name long enough to fill some pages quickly");
    }
    store_push_info info;
    proto_msg *m = fx_push(fx, dev, tp, NOW_MS + k, &info);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    proto_msg_free(m);
    free(info.teams_touched);
    tp_free(tp);
}

/* Contacts as another connection reads them. */
static int64_t contacts(const fixture *fx)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM contacts", -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

/* The COMMIT leaves the push's pages in the WAL (the database file is not written); tend copies
 * them when idle, and not while jobs wait under the bound. */
static void test_commit_leaves_the_checkpoint_to_tend(void **state)
{
    (void)state;
    fixture fx;
    store_device dev;
    fx_open(&fx);
    fx_device(&fx, "ana", &dev);
    store_wal_defer(fx.st, 1, 1000); /* idle: copy any backlog; the bound well above */
    assert_int_equal(store_wal_backlog(fx.st), 0);
    push_rows(&fx, &dev, 0);
    assert_int_equal(store_wal_tend(fx.st, true), STORE_OK);
    assert_int_equal(store_wal_backlog(fx.st), 0);
    uint64_t settled = file_hash(fx.path);

    for (uint64_t k = 1; k <= 3; k++)
        push_rows(&fx, &dev, k);
    assert_true(store_wal_backlog(fx.st) > 0);
    assert_true(file_hash(fx.path) == settled);
    assert_int_equal(store_wal_tend(fx.st, false), STORE_OK); /* a job waits: not due */
    assert_true(file_hash(fx.path) == settled);
    assert_true(store_wal_backlog(fx.st) > 0);

    assert_int_equal(store_wal_tend(fx.st, true), STORE_OK);
    assert_int_equal(store_wal_backlog(fx.st), 0);
    assert_true(file_hash(fx.path) != settled);
    assert_int_equal(contacts(&fx), 4 * ROWS_PER_PUSH);
    store_device_clear(&dev);
    fx_close(&fx);
}

/* An idle tend leaves a backlog under idle_pages in the WAL (no checkpoint, with its fsyncs,
 * after each small push) and copies it once it reaches idle_pages. */
static void test_idle_tend_waits_for_a_backlog(void **state)
{
    (void)state;
    fixture fx;
    store_device dev;
    fx_open(&fx);
    fx_device(&fx, "ana", &dev);
    store_wal_defer(fx.st, 1, 1000);
    push_rows(&fx, &dev, 0);
    assert_int_equal(store_wal_tend(fx.st, true), STORE_OK);
    uint64_t settled = file_hash(fx.path);

    store_wal_defer(fx.st, 40, 1000);
    uint64_t k = 1;
    while (store_wal_backlog(fx.st) < 40) {
        assert_int_equal(store_wal_tend(fx.st, true), STORE_OK);
        assert_true(file_hash(fx.path) == settled);
        assert_true(k < 100);
        push_rows(&fx, &dev, k++);
    }
    assert_true(k > 2); /* it took several pushes */
    assert_int_equal(store_wal_tend(fx.st, true), STORE_OK);
    assert_int_equal(store_wal_backlog(fx.st), 0);
    assert_true(file_hash(fx.path) != settled);
    store_device_clear(&dev);
    fx_close(&fx);
}

/* Pushes back to back, never idle: without tend the WAL grows with every push; with it the
 * WAL is cut back whenever it passes the bound, and never holds much more than the bound plus
 * one push. */
static void steady_load(bool tend, int64_t *out_max_bytes, uint32_t *out_cuts,
                        int64_t *out_page_bytes)
{
    fixture fx;
    store_device dev;
    fx_open(&fx);
    *out_page_bytes = store_page_bytes(fx.st);
    fx_device(&fx, "ana", &dev);
    store_wal_defer(fx.st, 1, LIMIT_PAGES);
    int64_t max_bytes = 0, last = 0;
    uint32_t cuts = 0;
    for (uint64_t k = 0; k < PUSHES; k++) {
        push_rows(&fx, &dev, k);
        if (tend)
            assert_int_equal(store_wal_tend(fx.st, false), STORE_OK);
        int64_t now = wal_bytes(&fx);
        if (now > max_bytes)
            max_bytes = now;
        cuts += now < last;
        last = now;
    }
    assert_int_equal(contacts(&fx), (int64_t)PUSHES * ROWS_PER_PUSH);
    store_device_clear(&dev);
    fx_close(&fx);
    *out_max_bytes = max_bytes;
    *out_cuts = cuts;
}

static void test_wal_stays_bounded_under_a_steady_push_load(void **state)
{
    (void)state;
    int64_t unbounded = 0, bounded = 0;
    uint32_t cuts_without = 0, cuts = 0;
    int64_t page = 0;
    steady_load(false, &unbounded, &cuts_without, &page);
    steady_load(true, &bounded, &cuts, &page);
    printf("wal: without tend %" PRId64 " bytes at most (%u cuts), with tend %" PRId64
           " (%u cuts)\n",
           unbounded, cuts_without, bounded, cuts);
    /* the load is large enough to pass the bound many times over */
    assert_true(unbounded > 4 * LIMIT_PAGES * page);
    assert_int_equal(cuts_without, 0);
    /* a push of 20 rows writes far fewer than LIMIT_PAGES pages */
    assert_true(bounded <= 2 * LIMIT_PAGES * page);
    assert_true(cuts >= 2);
}

/* A new store has 16 KiB pages (fewer, larger WAL frames per push); a store made with SQLite's
 * 4 KiB pages keeps them and takes pushes as before, its WAL bounds counted in its own pages. */
static void test_new_store_has_16k_pages_and_an_older_one_keeps_its_own(void **state)
{
    (void)state;
    fixture fx;
    store_device dev;
    fx_open(&fx);
    assert_int_equal(store_page_bytes(fx.st), 16384);
    store_close(fx.st);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "PRAGMA journal_mode=DELETE; PRAGMA page_size=4096; VACUUM;"
                                  " PRAGMA journal_mode=WAL;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    fx.st = fx_open_other(&fx);
    assert_int_equal(store_page_bytes(fx.st), 4096);
    fx_device(&fx, "ana", &dev);
    store_wal_defer(fx.st, 1, LIMIT_PAGES);
    for (uint64_t k = 0; k < 40; k++) {
        push_rows(&fx, &dev, k);
        assert_int_equal(store_wal_tend(fx.st, false), STORE_OK);
        assert_true(wal_bytes(&fx) <= 2 * LIMIT_PAGES * 4096);
    }
    assert_int_equal(contacts(&fx), 40 * ROWS_PER_PUSH);
    store_device_clear(&dev);
    fx_close(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_leaves_the_checkpoint_to_tend),
        cmocka_unit_test(test_idle_tend_waits_for_a_backlog),
        cmocka_unit_test(test_wal_stays_bounded_under_a_steady_push_load),
        cmocka_unit_test(test_new_store_has_16k_pages_and_an_older_one_keeps_its_own),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
