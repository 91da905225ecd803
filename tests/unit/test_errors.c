/* Error codes and messages, bad files, and every allocation failing in turn: each failure gives
 * a clear error and loses nothing that was committed. */
#include <fcntl.h>

#include "unit/client_fixture.h"

/* ---- a failing allocator under SQLite (and so under the library, which allocates through it) */

static sqlite3_mem_methods base_mem;
static long fail_countdown = -1; /* allocations left before one fails; -1: never */
static bool fail_persist;        /* keep failing once the first failure happened */
static bool fail_fired;

static bool should_fail(void)
{
    if (fail_fired && fail_persist)
        return true;
    if (fail_countdown < 0)
        return false;
    if (fail_countdown-- == 0) {
        fail_fired = true;
        return true;
    }
    return false;
}

static void *fail_malloc(int n)
{
    return should_fail() ? NULL : base_mem.xMalloc(n);
}

static void *fail_realloc(void *p, int n)
{
    return should_fail() ? NULL : base_mem.xRealloc(p, n);
}

static void fail_arm(long countdown, bool persist)
{
    fail_countdown = countdown;
    fail_persist = persist;
    fail_fired = false;
}

static void fail_disarm(void)
{
    fail_countdown = -1;
    fail_fired = false;
}

static int install_failing_allocator(void)
{
    sqlite3_mem_methods m;

    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &base_mem) != SQLITE_OK)
        return -1;
    m = base_mem;
    m.xMalloc = fail_malloc;
    m.xRealloc = fail_realloc;
    return sqlite3_config(SQLITE_CONFIG_MALLOC, &m) == SQLITE_OK ? 0 : -1;
}

/* ---- codes and messages ------------------------------------------------------------------ */

static void test_errors_every_code_has_text(void **state)
{
    (void)state;
    for (int code = OUTPOST_ETOOBIG; code <= OUTPOST_OK; code++) {
        assert_string_not_equal(outpost_strerror(code), "unknown error");
        assert_true(strlen(outpost_strerror(code)) > 0);
    }
    assert_string_equal(outpost_strerror(-1000), "unknown error");
    assert_true(outpost_error_is_transient(OUTPOST_EBUSY));
    assert_true(outpost_error_is_transient(OUTPOST_ENOMEM));
    assert_true(outpost_error_is_transient(OUTPOST_EFULL));
    assert_false(outpost_error_is_transient(OUTPOST_ESCHEMA));
    assert_false(outpost_error_is_transient(OUTPOST_EDENIED));
    assert_false(outpost_error_is_transient(OUTPOST_ECORRUPT));
    assert_false(outpost_error_is_transient(OUTPOST_OK));
    assert_string_equal(outpost_errmsg(NULL), "no replica handle");
}

static void test_errors_open_refuses_bad_config(void **state)
{
    outpost_config cfg;
    outpost_replica *r = (outpost_replica *)&cfg;
    char err[128] = "";

    (void)state;
    memset(&cfg, 0, sizeof cfg);
    assert_int_equal(outpost_replica_open(&cfg, &r, err, sizeof err), OUTPOST_EINVAL);
    assert_null(r);
    assert_non_null(strstr(err, "path"));
    assert_int_equal(outpost_replica_open(NULL, &r, NULL, 0), OUTPOST_EINVAL);
    cfg.secret.key = fx_test_key;
    cfg.path = "/nonexistent-dir/x/replica.db";
    assert_int_equal(outpost_replica_open(&cfg, &r, err, sizeof err), OUTPOST_EIO);
    assert_non_null(strstr(err, "cannot open"));
    outpost_replica_close(NULL);
}

static void test_errors_open_refuses_foreign_files(void **state)
{
    fixture *f = *state;
    outpost_config cfg;
    outpost_replica *r = NULL;
    char path[320], err[256] = "";
    sqlite3 *db = NULL;
    int fd;

    memset(&cfg, 0, sizeof cfg);
    cfg.path = path;
    cfg.secret.key = fx_test_key;
    /* Not a database at all. */
    snprintf(path, sizeof path, "%s/garbage.db", f->dir);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    for (int i = 0; i < 64; i++)
        assert_int_equal(write(fd, "this is not sqlite", 18), 18);
    close(fd);
    assert_int_equal(outpost_replica_open(&cfg, &r, err, sizeof err), OUTPOST_ECORRUPT);
    assert_null(r);
    assert_int_equal(outpost_files_wipe(path, NULL, 0), OUTPOST_OK);
    /* Another application's database is left alone. */
    snprintf(path, sizeof path, "%s/other.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA application_id = 42; CREATE TABLE t(x)", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    /* A plain file is refused with a key before anything reads it, and without one it is
     * recognised as another application's. */
    assert_int_equal(outpost_replica_open(&cfg, &r, err, sizeof err), OUTPOST_ENOTENCRYPTED);
    cfg.secret.key = NULL;
    cfg.no_encryption = 1;
    assert_int_equal(outpost_replica_open(&cfg, &r, err, sizeof err), OUTPOST_ECORRUPT);
    assert_non_null(strstr(err, "another application"));
    assert_int_equal(outpost_files_wipe(path, NULL, 0), OUTPOST_OK);
}

/* ---- allocation failures ----------------------------------------------------------------- */

typedef struct run_result {
    bool opened, committed, acked, pulled, upgraded;
} run_result;

static void assert_clear_failure(outpost_replica *r, int rc)
{
    if (rc == OUTPOST_OK)
        return;
    assert_true(rc < 0);
    assert_string_not_equal(outpost_strerror(rc), "unknown error");
    if (r)
        assert_true(strlen(outpost_errmsg(r)) > 0);
}

/* Everything an app and the sync engine do in a session, with allocations failing. */
static run_result run_session(fixture *f)
{
    static const char *cols2[] = {"id", "team_id", "name", "age", "notes", "phone"};
    proto_value row[5] = {pv_text("p1"), pv_text("team-a"), pv_text("Pulled"), pv_int(9), pv_null()};
    proto_table_rows tr = {.table = "contacts", .n_columns = 5, .n_rows = 1, .rows = row, .n_pk = 1};
    proto_rows page = {.cursor = 9, .n_tables = 1, .tables = &tr};
    proto_ack ack = {.seq = 1};
    run_result res = {0};
    outpost_outbox_entry *e = NULL;
    outpost_status st;
    char err[256];
    outpost_config cfg = fx_config(f);
    outpost_replica *r = NULL;
    int rc;

    rc = outpost_replica_open(&cfg, &r, err, sizeof err);
    if (rc != OUTPOST_OK) {
        assert_string_not_equal(outpost_strerror(rc), "unknown error");
        assert_true(strlen(err) > 0);
        return res;
    }
    res.opened = true;
    rc = outpost_tx_begin(r);
    assert_clear_failure(r, rc);
    if (rc == OUTPOST_OK) {
        outpost_value a[5] = {ov_text("c1"), ov_text("team-a"), ov_text("One"), ov_int(1), ov_null()};
        outpost_value b[5] = {ov_text("c2"), ov_text("team-a"), ov_text("Two"), ov_int(2), ov_null()};

        rc = outpost_exec(r, INSERT_CONTACT, a, 5);
        assert_clear_failure(r, rc);
        if (rc == OUTPOST_OK) {
            rc = outpost_exec(r, INSERT_CONTACT, b, 5);
            assert_clear_failure(r, rc);
        }
        if (rc == OUTPOST_OK) {
            rc = outpost_tx_commit(r, NULL);
            assert_clear_failure(r, rc);
            res.committed = rc == OUTPOST_OK;
        } else {
            outpost_tx_rollback(r);
        }
    }
    rc = outpost_outbox_read(r, 0, &e);
    assert_clear_failure(r, rc);
    outpost_outbox_entry_free(e);
    assert_clear_failure(r, outpost_status_get(r, &st));
    rc = outpost_rows_apply(r, &page);
    assert_clear_failure(r, rc);
    res.pulled = rc == OUTPOST_OK;
    rc = outpost_outbox_ack(r, &ack);
    assert_clear_failure(r, rc);
    res.acked = rc == OUTPOST_OK;
    f->tables[0].create_sql = "CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT NOT NULL,"
                              " name TEXT, age INTEGER, notes TEXT, phone TEXT)";
    f->tables[0].columns = cols2;
    f->tables[0].n_columns = 6;
    f->schema.version = 2;
    rc = outpost_schema_install(r, &f->schema);
    assert_clear_failure(r, rc);
    res.upgraded = rc == OUTPOST_OK;
    outpost_replica_close(r);
    return res;
}

/* After a run, with allocations working again: what the run was told is what is there. */
static void check_after(fixture *f, const run_result *res)
{
    char buf[64];

    assert_int_equal(fx_open(f), OUTPOST_OK);
    assert_string_equal(fx_query_text(f, "PRAGMA integrity_check", buf, sizeof buf), "ok");
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts WHERE id IN ('c1', 'c2')"),
                     res->committed ? 2 : 0);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM _outpost_outbox WHERE seq = 2"),
                     res->committed ? 1 : 0);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM _outpost_outbox WHERE seq = 1"),
                     res->acked ? 0 : 1);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts WHERE id = 'p1'"),
                     res->pulled ? 1 : 0);
    assert_int_equal(fx_query_int(f, "SELECT cursor FROM _outpost_state"), res->pulled ? 9 : 0);
    assert_int_equal(fx_query_int(f, "SELECT schema_version FROM _outpost_state"),
                     res->upgraded ? 2 : 1);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM pragma_table_info('contacts')"),
                     res->upgraded ? 6 : 5);
    if (res->committed) {
        outpost_outbox_entry *e = NULL;

        assert_int_equal(outpost_outbox_read(f->r, 1, &e), OUTPOST_OK);
        assert_non_null(e);
        assert_int_equal(e->push.tables[0].n_changes, 2);
        outpost_outbox_entry_free(e);
    }
    /* Captured writes still work: nothing was left half set up. */
    assert_int_equal(fx_insert_contact(f, "after", "x", 1), OUTPOST_OK);
    outpost_replica_close(f->r);
    f->r = NULL;
}

/* A replica with schema v1 and one committed entry (seq 1). */
static void prepare_replica(fixture *f)
{
    char err[256];

    outpost_files_wipe(f->path, err, sizeof err);
    assert_int_equal(fx_open(f), OUTPOST_OK);
    fx_schema_v1(f);
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c0", "Zero", 0), OUTPOST_OK);
    outpost_replica_close(f->r);
    f->r = NULL;
    fx_schema_v1(f);
}

static void allocation_sweep(fixture *f, bool persist)
{
    long n = 0, failures = 0;
    bool finished = false;

    outpost_replica_close(f->r);
    f->r = NULL;
    while (!finished) {
        run_result res;

        prepare_replica(f);
        fail_arm(n, persist);
        res = run_session(f);
        finished = !fail_fired;
        failures += fail_fired;
        fail_disarm();
        check_after(f, &res);
        /* Every allocation early on, then a sample: the later ones repeat the same paths. */
        n += n < 400 ? 1 : 7;
    }
    assert_true(failures > 100);
    printf("# %s allocation failures injected: %ld, every one reported and nothing lost\n",
           persist ? "persistent" : "single", failures);
}

static void test_errors_single_allocation_failure_loses_nothing(void **state)
{
    allocation_sweep(*state, false);
}

static void test_errors_persistent_allocation_failure_loses_nothing(void **state)
{
    allocation_sweep(*state, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_every_code_has_text),
        cmocka_unit_test(test_errors_open_refuses_bad_config),
        cmocka_unit_test_setup_teardown(test_errors_open_refuses_foreign_files, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_errors_single_allocation_failure_loses_nothing, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_errors_persistent_allocation_failure_loses_nothing,
                                        fx_setup, fx_teardown),
    };

    /* Hundreds of replicas are made and fsynced here; memory-backed storage keeps it fast and
     * changes nothing about what is checked. */
    if (getenv("TMPDIR") == NULL && access("/dev/shm", W_OK) == 0)
        setenv("TMPDIR", "/dev/shm", 0);
    if (install_failing_allocator() != 0) {
        fprintf(stderr, "cannot install the failing allocator\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
