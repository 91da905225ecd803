/* Rekey crash test for cryptvfs: a child process rekeys a database from key A to key B and is
 * SIGKILLed at a random moment; afterwards the database must open with A or with B (never
 * neither), hold every row intact, and a repeated rekey must finish the job. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "unit/cryptvfs_fixture.h"

#define ROWS 3000
#define ROUNDS 30

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static void build_base(const char *path)
{
    cryptvfs *vfs;
    sqlite3 *db;
    cryptvfs_secret a = fixture_secret(fixture_key_a);
    assert_int_equal(fixture_open(path, &a, &vfs, &db, NULL, 0), 0);
    assert_int_equal(exec(db, "PRAGMA journal_mode=WAL"), SQLITE_OK);
    assert_int_equal(exec(db, "CREATE TABLE contacts(id INTEGER PRIMARY KEY, name TEXT, notes TEXT)"),
                     SQLITE_OK);
    assert_int_equal(
        exec(db, "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2999) "
                 "INSERT INTO contacts SELECT i, printf('name-%05d', i), printf('%0300d', i) "
                 "FROM n"),
        SQLITE_OK);
    fixture_close(vfs, db);
}

/* Opens with `key` and checks every row; returns the cryptvfs code of the open. */
static int open_and_check(const char *path, const uint8_t *key)
{
    cryptvfs *vfs;
    sqlite3 *db;
    cryptvfs_secret secret = fixture_secret(key);
    int code = fixture_open(path, &secret, &vfs, &db, NULL, 0);
    if (code != 0)
        return code;
    int rc;
    assert_int_equal(fixture_query_int(db, "SELECT count(*) FROM contacts", &rc), ROWS);
    assert_int_equal(fixture_query_int(db,
                                       "SELECT count(*) FROM contacts WHERE name != "
                                       "printf('name-%05d', id) OR notes != printf('%0300d', id)",
                                       &rc),
                     0);
    assert_int_equal(rc, SQLITE_OK);
    assert_int_equal(fixture_query_int(db, "SELECT count(*) FROM pragma_integrity_check "
                                           "WHERE integrity_check != 'ok'", &rc), 0);
    fixture_close(vfs, db);
    return 0;
}

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* work = a fresh copy of base, with no side files left from an earlier round. */
static void reset_work(const char *base, const char *work)
{
    static const char *const suffixes[] = { "", "-wal", "-shm", "-journal", "-rekey",
                                            "-rekey-journal" };
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char path[PATH_MAX];
        fixture_join(path, work, suffixes[i]);
        unlink(path);
    }
    size_t size = 0;
    uint8_t *data = fixture_read_file(base, &size);
    assert_non_null(data);
    FILE *f = fopen(work, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
    free(data);
}

static void test_rekey_killed_at_random_points_opens_with_old_or_new(void **state)
{
    (void)state;
    fixture_dir dir;
    assert_int_equal(fixture_dir_make(&dir), 0);
    char base[PATH_MAX], work[PATH_MAX];
    fixture_dir_path(&dir, "base.db", base);
    fixture_dir_path(&dir, "replica.db", work);
    build_base(base);
    cryptvfs_secret a = fixture_secret(fixture_key_a);
    cryptvfs_secret b = fixture_secret(fixture_key_b);
    char msg[CRYPTVFS_ERRMSG_SIZE];

    /* How long an uninterrupted rekey takes here, to spread the kills over it. */
    reset_work(base, work);
    long long start = now_us();
    assert_int_equal(cryptvfs_rekey(work, &a, &b, msg, sizeof msg), 0);
    long long duration = now_us() - start;
    assert_int_equal(open_and_check(work, fixture_key_b), 0);

    unsigned seed = (unsigned)time(NULL);
    srand(seed);
    int opened_old = 0, opened_new = 0;
    for (int round = 0; round < ROUNDS; round++) {
        reset_work(base, work);
        /* Uniform over twice an in-process rekey's run time, counted from the moment the child
         * starts it: a freshly forked child runs slower, so this still spreads the kills over
         * the whole rekey, the rename included. */
        long long delay = rand() % (duration * 2 + 1);
        int started[2];
        assert_int_equal(pipe(started), 0);
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
            close(started[0]);
            if (write(started[1], "!", 1) != 1)
                _exit(2);
            _exit(cryptvfs_rekey(work, &a, &b, NULL, 0) == 0 ? 0 : 1);
        }
        close(started[1]);
        char byte;
        assert_int_equal(read(started[0], &byte, 1), 1);
        close(started[0]);
        usleep((useconds_t)delay);
        kill(child, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(child, &status, 0), child);
        if (WIFEXITED(status))
            assert_int_equal(WEXITSTATUS(status), 0);

        int code = open_and_check(work, fixture_key_b);
        if (code == 0) {
            opened_new++;
        } else {
            if (code != CRYPTVFS_EWRONGKEY)
                fail_msg("round %d (seed %u, kill after %lld us): opening with the new key "
                         "gave %s", round, seed, delay, cryptvfs_strerror(code));
            code = open_and_check(work, fixture_key_a);
            if (code != 0)
                fail_msg("round %d (seed %u, kill after %lld us): opens with neither key: %s",
                         round, seed, delay, cryptvfs_strerror(code));
            opened_old++;
            /* Running the rekey again completes it over the stale copy. */
            if (round % 3 == 0) {
                assert_int_equal(cryptvfs_rekey(work, &a, &b, msg, sizeof msg), 0);
                assert_int_equal(open_and_check(work, fixture_key_b), 0);
            }
        }
    }
    print_message("rekey duration %lld us; %d rounds: %d opened with the old key, %d with the "
                  "new (seed %u)\n", duration, ROUNDS, opened_old, opened_new, seed);
    assert_int_equal(opened_old + opened_new, ROUNDS);
    fixture_dir_remove(&dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rekey_killed_at_random_points_opens_with_old_or_new),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
