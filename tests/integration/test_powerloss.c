/*
 * Power loss (the design's invariant 1, "a crash, reboot or power loss before sync loses
 * nothing"; outpost_replica_open() promises synchronous=FULL): a SIGKILL keeps the page cache,
 * so it never tests synchronous=FULL, the WAL and checkpoint fsync order or the rekey's
 * durability. Here every file goes through the power-loss
 * VFS (powerloss_vfs.h): writes stay pending until xSync, and a cut at the Nth write drops or
 * tears every one of them.
 *
 * For each storage path (the replica plain and encrypted, the rekey, the central store) the
 * test first counts the writes of the whole workload, then cuts the power at many write numbers
 * spread over that range (bounded by a time budget) and after each cut reopens and checks:
 *   - the cut destroyed something (dropped or torn bytes > 0): the fault landed;
 *   - every file opens and PRAGMA integrity_check says ok;
 *   - every transaction whose commit returned is there, whole; the one in flight is there whole
 *     or not at all; nothing later is there; the replica's outbox matches its data.
 * OUTPOST_POWERLOSS_SEED=N fixes the tearing seed (printed otherwise).
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "outpost.h"
#include "outpost_engine.h"
#include "ovalue.h"
#include "powerloss_vfs.h"
#include "store.h"
#include "unit/store_fixture.h"

#define TX_COUNT 24          /* transactions per workload */
#define MIN_CUTS 12          /* every storage path is cut at least this often */
#define MAX_CUTS 150
#define BUDGET_S 2.5         /* per storage path, after MIN_CUTS */
#define CHECKPOINT_EVERY 8   /* the replica workload checkpoints its WAL now and then */

static const uint8_t key_a[OUTPOST_KEY_BYTES] = {
    0x70, 0x6f, 0x77, 0x65, 0x72, 0x2d, 0x6c, 0x6f, 0x73, 0x73, 0x2d, 0x6b, 0x65, 0x79, 0x2d, 0x41,
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10};
static const uint8_t key_b[OUTPOST_KEY_BYTES] = {
    0x70, 0x6f, 0x77, 0x65, 0x72, 0x2d, 0x6c, 0x6f, 0x73, 0x73, 0x2d, 0x6b, 0x65, 0x79, 0x2d, 0x42,
    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20};

static const char *cols[] = {"id", "team_id", "name", "age"};
static uint32_t pk[] = {0};

static uint64_t seed;
static char dir[256];

typedef struct tally {
    uint32_t cuts;
    uint64_t dropped, torn, committed_checked;
} tally;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A fresh, empty directory for one run; the previous run's files go. */
static void fresh_dir(void)
{
    if (dir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/outpost-powerloss-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
}

static uint32_t rows_of(int64_t tx)
{
    return 1u + (uint32_t)(tx % 4);
}

static int64_t query_int(sqlite3 *db, const char *sql, int64_t bind)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_bind_parameter_count(st) > 0)
        sqlite3_bind_int64(st, 1, bind);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void assert_integrity(sqlite3 *db, const char *what)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    int rc = sqlite3_step(st);
    const char *text = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    if (text == NULL || strcmp(text, "ok") != 0)
        fail_msg("%s: integrity_check says %s (%s)", what, text ? text : "nothing",
                 sqlite3_errmsg(db));
    sqlite3_finalize(st);
}

/* ---- the replica ---------------------------------------------------------------------------- */

static outpost_replica *replica_open(const char *path, const uint8_t *key, int *out_rc)
{
    outpost_config cfg = {.path = path, .secret.key = key, .no_encryption = key == NULL};
    outpost_replica *r = NULL;
    char err[256] = "";
    int rc = outpost_replica_open(&cfg, &r, err, sizeof err);
    if (out_rc)
        *out_rc = rc;
    else if (rc != OUTPOST_OK)
        fail_msg("open %s: %s", path, err);
    return rc == OUTPOST_OK ? r : NULL;
}

static void replica_create(const char *path, const uint8_t *key)
{
    proto_schema_table table = {
        .name = "contacts", .scope_col = "team_id", .n_columns = 4, .columns = cols, .n_pk = 1,
        .pk = pk,
        .create_sql = "CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT NOT NULL,"
                      " name TEXT, age INTEGER)"};
    proto_schema schema = {.version = 1, .n_tables = 1, .tables = &table};
    outpost_replica *r = replica_open(path, key, NULL);
    assert_int_equal(outpost_schema_install(r, &schema), OUTPOST_OK);
    outpost_replica_close(r);
}

/* Transactions first..first+n-1, each inserting rows_of(tx) contacts whose age is its number.
 * Returns how many committed (the commit returned OK) before the first failure. */
static int64_t replica_workload(outpost_replica *r, int64_t first, int64_t n)
{
    for (int64_t tx = first; tx < first + n; tx++) {
        if (outpost_tx_begin(r) != OUTPOST_OK)
            return tx - first;
        for (uint32_t j = 0; j < rows_of(tx); j++) {
            char id[48], name[32];
            snprintf(id, sizeof id, "tx%" PRId64 "-%u", tx, j);
            snprintf(name, sizeof name, "row %u of %u", j + 1, rows_of(tx));
            outpost_value p[4] = {ov_text(id), ov_text("t1"), ov_text(name), ov_int(tx)};
            if (outpost_exec(r, "INSERT INTO contacts(id, team_id, name, age)"
                                " VALUES(?1, ?2, ?3, ?4)",
                             p, 4) != OUTPOST_OK) {
                (void)outpost_tx_rollback(r);
                return tx - first;
            }
        }
        if (outpost_tx_commit(r, NULL) != OUTPOST_OK)
            return tx - first;
        if ((tx + 1) % CHECKPOINT_EVERY == 0)
            (void)sqlite3_wal_checkpoint_v2(outpost_replica_db(r), NULL,
                                            SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    }
    return n;
}

/* Transactions 0..committed-1 whole, transaction `committed` whole or absent, nothing later;
 * one outbox entry per transaction present. */
static void replica_check(outpost_replica *r, int64_t committed, int64_t attempted, tally *t)
{
    sqlite3 *db = outpost_replica_db(r);
    assert_integrity(db, "replica");
    int64_t present = 0;
    for (int64_t tx = 0; tx < attempted; tx++) {
        int64_t n = query_int(db, "SELECT count(*) FROM contacts WHERE age = ?1", tx);
        if (tx < committed && n != (int64_t)rows_of(tx))
            fail_msg("transaction %" PRId64 " was reported committed but %" PRId64 " of its %u"
                     " rows survived the cut (seed %" PRIu64 ")",
                     tx, n, rows_of(tx), seed);
        if (tx >= committed && n != 0 && n != (int64_t)rows_of(tx))
            fail_msg("transaction %" PRId64 " is half there: %" PRId64 " of %u rows", tx, n,
                     rows_of(tx));
        if (tx > committed && n != 0)
            fail_msg("transaction %" PRId64 " never started but has rows", tx);
        present += n ? 1 : 0;
    }
    t->committed_checked += (uint64_t)committed;
    int64_t outbox = query_int(db, "SELECT count(*) FROM _outpost_outbox", 0);
    if (outbox != present)
        fail_msg("the outbox holds %" PRId64 " entries for %" PRId64 " transactions", outbox,
                 present);
}

/* The cut itself: the program's handles are closed, the pending writes dropped or torn, and
 * the fault must have destroyed something. */
static void cut_and_prove(uint64_t n, tally *t)
{
    powerloss_stats s;
    assert_true(powerloss_is_dead());
    powerloss_cut(seed ^ (n * 0x9e3779b97f4a7c15ull), &s);
    powerloss_reset();
    if (s.dropped_bytes == 0)
        fail_msg("the cut at write %" PRIu64 " destroyed nothing (%" PRIu64 " pending writes)",
                 n, s.pending_writes);
    t->cuts++;
    t->dropped += s.dropped_bytes;
    t->torn += s.torn_writes;
}

/* Cut points spread over 1..total (total writes of the whole workload), MIN_CUTS at least,
 * more while the budget lasts, at most MAX_CUTS. */
static bool next_cut(uint64_t total, uint32_t i, double t0, uint64_t *out_n)
{
    if (i >= MAX_CUTS || (i >= MIN_CUTS && now_s() - t0 > BUDGET_S))
        return false;
    /* a stride that visits the range evenly, offset per pass so that later passes fill gaps */
    uint64_t n = 1 + ((uint64_t)i * 2654435761u + seed) % total;
    *out_n = n;
    return true;
}

static void replica_case(const uint8_t *key, const char *what)
{
    char path[320];
    tally t = {0};
    powerloss_stats s;

    fresh_dir();
    snprintf(path, sizeof path, "%s/replica.db", dir);
    replica_create(path, key);
    if (key != NULL) {
        /* the encrypting VFS really is on top of the shim: no plain SQLite header on disk */
        char head[16] = "";
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        assert_int_equal(fread(head, 1, sizeof head, f), sizeof head);
        fclose(f);
        assert_true(memcmp(head, "SQLite format 3", 15) != 0);
    }
    outpost_replica *r = replica_open(path, key, NULL);
    powerloss_arm(0);
    assert_int_equal(replica_workload(r, 0, TX_COUNT), TX_COUNT);
    powerloss_stats_get(&s);
    outpost_replica_close(r);
    uint64_t total = s.writes;
    assert_true(total > TX_COUNT);

    double t0 = now_s();
    uint64_t n;
    for (uint32_t i = 0; next_cut(total, i, t0, &n); i++) {
        fresh_dir();
        snprintf(path, sizeof path, "%s/replica.db", dir);
        replica_create(path, key);
        r = replica_open(path, key, NULL);
        powerloss_arm(n);
        int64_t committed = replica_workload(r, 0, TX_COUNT);
        outpost_replica_close(r);
        cut_and_prove(n, &t);
        r = replica_open(path, key, NULL);
        replica_check(r, committed, TX_COUNT, &t);
        outpost_replica_close(r);
    }
    printf("powerloss: %s: %u cuts over %" PRIu64 " writes, %" PRIu64 " bytes dropped, %" PRIu64
           " writes torn, %" PRIu64 " committed transactions checked\n",
           what, t.cuts, total, t.dropped, t.torn, t.committed_checked);
    assert_true(t.cuts >= MIN_CUTS);
    assert_true(t.torn > 0);
}

static void test_replica_plain_survives_power_loss(void **state)
{
    (void)state;
    replica_case(NULL, "replica (plain)");
}

static void test_replica_encrypted_survives_power_loss(void **state)
{
    (void)state;
    replica_case(key_a, "replica (encrypted)");
}

/* ---- the rekey ------------------------------------------------------------------------------ */

/* An encrypted replica with TX_COUNT / 2 transactions, closed without the checkpoint a clean
 * close makes, so that the rekey's own checkpoint writes the database file. */
static void rekey_setup(const char *path)
{
    replica_create(path, key_a);
    outpost_replica *r = replica_open(path, key_a, NULL);
    assert_int_equal(replica_workload(r, 0, TX_COUNT / 2), TX_COUNT / 2);
    assert_int_equal(sqlite3_db_config(outpost_replica_db(r), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1,
                                       NULL),
                     SQLITE_OK);
    outpost_replica_close(r);
}

static void test_rekey_survives_power_loss(void **state)
{
    (void)state;
    char path[320], err[256];
    outpost_secret a = {.key = key_a}, b = {.key = key_b};
    tally t = {0};
    powerloss_stats s;

    fresh_dir();
    snprintf(path, sizeof path, "%s/replica.db", dir);
    rekey_setup(path);
    powerloss_arm(0);
    assert_int_equal(outpost_replica_rekey(path, &a, &b, err, sizeof err), OUTPOST_OK);
    powerloss_stats_get(&s);
    uint64_t total = s.writes;
    assert_true(total > 0);

    double t0 = now_s();
    uint64_t n;
    uint32_t under_new = 0;
    /* The first run cuts the power just after the rekey returned (write total + 1 never comes):
     * whatever it left unsynced is lost, and it reported success, so the new key must open it. */
    for (uint32_t i = 0; i == 0 || next_cut(total, i, t0, &n); i++) {
        if (i == 0)
            n = total + 1;
        fresh_dir();
        snprintf(path, sizeof path, "%s/replica.db", dir);
        rekey_setup(path);
        powerloss_arm(n);
        int rc = outpost_replica_rekey(path, &a, &b, err, sizeof err);
        if (i == 0) {
            powerloss_stats done;
            assert_int_equal(rc, OUTPOST_OK);
            assert_false(powerloss_is_dead());
            powerloss_cut(seed, &done);
            powerloss_reset();
        } else {
            cut_and_prove(n, &t);
        }
        /* Reported done: the new key opens it. Otherwise one of the two does, never neither. */
        int open_rc;
        outpost_replica *r = replica_open(path, rc == OUTPOST_OK ? key_b : key_a, &open_rc);
        if (r == NULL && rc != OUTPOST_OK) {
            r = replica_open(path, key_b, &open_rc);
            under_new += r != NULL;
        }
        if (r == NULL)
            fail_msg("after a cut at write %" PRIu64 " of the rekey (which returned %d) neither"
                     " key opens the replica: %s",
                     n, rc, outpost_strerror(open_rc));
        replica_check(r, TX_COUNT / 2, TX_COUNT / 2, &t);
        outpost_replica_close(r);
    }
    printf("powerloss: rekey: %u cuts over %" PRIu64 " writes, %" PRIu64 " bytes dropped, %" PRIu64
           " writes torn, %u reopened under the new key after a failed rekey\n",
           t.cuts, total, t.dropped, t.torn, under_new);
    assert_true(t.cuts >= MIN_CUTS);
}

/* ---- the central store ---------------------------------------------------------------------- */

static int64_t store_workload(store *st, int64_t n)
{
    for (int64_t k = 0; k < n; k++) {
        char team[32], name[48];
        snprintf(team, sizeof team, "team-%" PRId64, k);
        snprintf(name, sizeof name, "Team number %" PRId64, k);
        if (store_team_add(st, team, name) != STORE_OK)
            return k;
    }
    return n;
}

static void test_store_survives_power_loss(void **state)
{
    (void)state;
    char path[320], err[256];
    tally t = {0};
    powerloss_stats s;
    store *st = NULL;

    fresh_dir();
    snprintf(path, sizeof path, "%s/central.db", dir);
    assert_int_equal(store_open(path, true, &st, err, sizeof err), STORE_OK);
    powerloss_arm(0);
    assert_int_equal(store_workload(st, TX_COUNT), TX_COUNT);
    powerloss_stats_get(&s);
    store_close(st);
    uint64_t total = s.writes;

    double t0 = now_s();
    uint64_t n;
    for (uint32_t i = 0; next_cut(total, i, t0, &n); i++) {
        fresh_dir();
        snprintf(path, sizeof path, "%s/central.db", dir);
        st = NULL;
        assert_int_equal(store_open(path, true, &st, err, sizeof err), STORE_OK);
        powerloss_arm(n);
        int64_t committed = store_workload(st, TX_COUNT);
        store_close(st);
        cut_and_prove(n, &t);
        st = NULL;
        if (store_open(path, false, &st, err, sizeof err) != STORE_OK)
            fail_msg("the store does not open after a cut at write %" PRIu64 ": %s", n, err);
        store_close(st);
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        assert_integrity(db, "central store");
        int64_t teams = query_int(db, "SELECT count(*) FROM _outpost_teams", 0);
        for (int64_t k = 0; k < committed; k++) {
            char team[32];
            snprintf(team, sizeof team, "team-%" PRId64, k);
            sqlite3_stmt *q = NULL;
            assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM _outpost_teams"
                                                    " WHERE id = ?1",
                                                -1, &q, NULL),
                             SQLITE_OK);
            sqlite3_bind_text(q, 1, team, -1, SQLITE_STATIC);
            assert_int_equal(sqlite3_step(q), SQLITE_ROW);
            if (sqlite3_column_int64(q, 0) != 1)
                fail_msg("team %s was committed before the cut at write %" PRIu64 " and is gone",
                         team, n);
            sqlite3_finalize(q);
        }
        if (teams != committed && teams != committed + 1)
            fail_msg("%" PRId64 " teams after the cut, %" PRId64 " committed", teams, committed);
        t.committed_checked += (uint64_t)committed;
        sqlite3_close(db);
    }
    printf("powerloss: central store: %u cuts over %" PRIu64 " writes, %" PRIu64
           " bytes dropped, %" PRIu64 " writes torn, %" PRIu64 " committed transactions checked\n",
           t.cuts, total, t.dropped, t.torn, t.committed_checked);
    assert_true(t.cuts >= MIN_CUTS);
}

/* ---- the central store, through the sync path ------------------------------------------------ */

/* Device pushes 1..n, push k inserting rows_of(k) contacts "push<k>-<j>", each through the
 * whole store_push path (merge, change log, exactly-once record). Returns how many were
 * applied (store_push returned 0, not refused) before the first failure. */
static int64_t push_workload(fixture *fx, store_device *dev, int64_t n, bool deferred)
{
    /* as outpostd's worker: checkpoints after the push, not in its COMMIT; a bound small
     * enough that TRUNCATE checkpoints run too, and PASSIVE ones on every other push */
    if (deferred)
        store_wal_defer(fx->st, 1, 8);
    for (int64_t k = 0; k < n; k++) {
        char ids[4][48];
        tpush *tp = tp_new((uint64_t)k + 1, HLC(NOW_MS + (uint64_t)k));
        for (uint32_t j = 0; j < rows_of(k); j++) {
            snprintf(ids[j], sizeof ids[j], "push%" PRId64 "-%u", k, j);
            tp_insert_contact(tp, ids[j], "north", "power-loss test");
        }
        proto_buf reply = {0};
        store_push_info info;
        int rc = store_push(fx->st, dev, tp_push(tp), NOW_MS + (uint64_t)k, &reply, &info);
        proto_buf_free(&reply);
        free(info.teams_touched);
        tp_free(tp);
        if (rc != 0 || info.rejected)
            return k;
        if (deferred && store_wal_tend(fx->st, k % 2 == 0) != STORE_OK)
            return k + 1; /* the push itself was applied */
    }
    return n;
}

/* deferred: checkpoints as outpostd runs them (store_wal_defer, store_wal_tend). */
static void pushes_survive_power_loss(bool deferred)
{
    tally t = {0};
    powerloss_stats s;
    fixture fx;
    store_device dev;

    fx_open(&fx);
    fx_device(&fx, "ana", &dev);
    powerloss_arm(0);
    assert_int_equal(push_workload(&fx, &dev, TX_COUNT, deferred), TX_COUNT);
    powerloss_stats_get(&s);
    store_device_clear(&dev);
    fx_close(&fx);
    uint64_t total = s.writes;

    double t0 = now_s();
    uint64_t n;
    for (uint32_t i = 0; next_cut(total, i, t0, &n); i++) {
        fx_open(&fx);
        fx_device(&fx, "ana", &dev);
        powerloss_arm(n);
        int64_t applied = push_workload(&fx, &dev, TX_COUNT, deferred);
        store_device_clear(&dev);
        store_close(fx.st);
        fx.st = NULL;
        cut_and_prove(n, &t);
        char err[256];
        if (store_open(fx.path, false, &fx.st, err, sizeof err) != STORE_OK)
            fail_msg("the store does not open after a cut at write %" PRIu64 ": %s", n, err);
        store_close(fx.st);
        fx.st = NULL;
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open_v2(fx.path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        assert_integrity(db, "central store");
        int64_t present = 0;
        for (int64_t k = 0; k < TX_COUNT; k++) {
            char like[48];
            snprintf(like, sizeof like, "push%" PRId64 "-%%", k);
            sqlite3_stmt *q = NULL;
            assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM contacts WHERE id LIKE ?1",
                                                -1, &q, NULL),
                             SQLITE_OK);
            sqlite3_bind_text(q, 1, like, -1, SQLITE_STATIC);
            assert_int_equal(sqlite3_step(q), SQLITE_ROW);
            int64_t rows = sqlite3_column_int64(q, 0);
            sqlite3_finalize(q);
            if (k < applied && rows != (int64_t)rows_of(k))
                fail_msg("push %" PRId64 " was applied before the cut at write %" PRIu64
                         " but %" PRId64 " of its %u rows survived",
                         k + 1, n, rows, rows_of(k));
            if (rows != 0 && rows != (int64_t)rows_of(k))
                fail_msg("push %" PRId64 " is half there: %" PRId64 " rows", k + 1, rows);
            if (k > applied && rows != 0)
                fail_msg("push %" PRId64 " was never sent but has rows", k + 1);
            present += rows != 0;
        }
        /* the exactly-once record says applied exactly for the pushes whose rows are there */
        int64_t recorded = query_int(db, "SELECT count(*) FROM _outpost_applied", 0);
        if (recorded != present)
            fail_msg("%" PRId64 " pushes recorded as applied, %" PRId64 " present", recorded,
                     present);
        t.committed_checked += (uint64_t)applied;
        sqlite3_close(db);
        fx_close(&fx);
    }
    printf("powerloss: central store pushes%s: %u cuts over %" PRIu64 " writes, %" PRIu64
           " bytes dropped, %" PRIu64 " writes torn, %" PRIu64 " applied pushes checked\n",
           deferred ? " (checkpoints after the push)" : "", t.cuts, total, t.dropped, t.torn,
           t.committed_checked);
    assert_true(t.cuts >= MIN_CUTS);
}

static void test_store_pushes_survive_power_loss(void **state)
{
    (void)state;
    pushes_survive_power_loss(false);
}

static void test_store_pushes_with_deferred_checkpoints_survive_power_loss(void **state)
{
    (void)state;
    pushes_survive_power_loss(true);
}

static int setup(void **state)
{
    (void)state;
    const char *s = getenv("OUTPOST_POWERLOSS_SEED");
    seed = s && *s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
    printf("powerloss: seed %" PRIu64 " (OUTPOST_POWERLOSS_SEED to repeat)\n", seed);
    return powerloss_install();
}

static int teardown(void **state)
{
    (void)state;
    if (dir[0] && !getenv("OUTPOST_KEEP_TEST_DIRS")) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replica_plain_survives_power_loss),
        cmocka_unit_test(test_replica_encrypted_survives_power_loss),
        cmocka_unit_test(test_rekey_survives_power_loss),
        cmocka_unit_test(test_store_survives_power_loss),
        cmocka_unit_test(test_store_pushes_survive_power_loss),
        cmocka_unit_test(test_store_pushes_with_deferred_checkpoints_survive_power_loss),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
