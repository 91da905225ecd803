/* Wipe: the replica and every file that belongs to it are gone. */
#include <dirent.h>
#include <sys/stat.h>

#include "unit/client_fixture.h"

/* Files in the fixture's directory. */
static int files_in(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    }
    closedir(d);
    return n;
}

static void test_wipe_removes_replica_and_journals(void **state)
{
    fixture *f = *state;
    char wal[320];

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_equal(access(wal, F_OK), 0); /* open in WAL mode: -wal and -shm exist */
    assert_true(files_in(f->dir) >= 2);
    assert_int_equal(outpost_replica_wipe(f->r), OUTPOST_OK);
    f->r = NULL;
    assert_int_equal(files_in(f->dir), 0);
    /* Opening again gives an empty replica, not the old records. */
    assert_int_equal(fx_open(f), OUTPOST_OK);
    assert_int_equal(fx_query_int(f, "SELECT count(*) FROM sqlite_schema WHERE name = 'contacts'"), 0);
}

static void test_wipe_by_path_when_replica_cannot_open(void **state)
{
    fixture *f = *state;
    char err[256] = "";
    char journal[320];
    FILE *fp;

    outpost_replica_close(f->r);
    f->r = NULL;
    snprintf(journal, sizeof journal, "%s-journal", f->path);
    fp = fopen(journal, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(outpost_files_wipe(f->path, err, sizeof err), OUTPOST_OK);
    assert_int_equal(files_in(f->dir), 0);
    /* Nothing left to remove is not an error. */
    assert_int_equal(outpost_files_wipe(f->path, err, sizeof err), OUTPOST_OK);
}

static void test_wipe_refuses_bad_arguments(void **state)
{
    fixture *f = *state;
    char err[256] = "";

    assert_int_equal(outpost_replica_wipe(NULL), OUTPOST_EINVAL);
    assert_int_equal(outpost_files_wipe(NULL, err, sizeof err), OUTPOST_EINVAL);
    assert_non_null(strstr(err, "path"));
    assert_int_equal(outpost_files_wipe("", NULL, 0), OUTPOST_EINVAL);
    assert_int_equal(fx_pending(f), 0);
}

/* An interrupted rekey leaves an encrypted copy with journals of its own: a wipe takes them
 * too, and a wiped directory holds no file of the replica at all. */
static void test_wipe_removes_rekey_leftovers(void **state)
{
    static const char *const leftovers[] = {"-rekey", "-rekey-journal", "-rekey-wal", "-rekey-shm"};
    fixture *f = *state;
    char name[340];

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    for (size_t i = 0; i < sizeof leftovers / sizeof *leftovers; i++) {
        FILE *fp;

        snprintf(name, sizeof name, "%s%s", f->path, leftovers[i]);
        fp = fopen(name, "wb");
        assert_non_null(fp);
        fputs("encrypted pages", fp);
        fclose(fp);
    }
    assert_int_equal(outpost_replica_wipe(f->r), OUTPOST_OK);
    f->r = NULL;
    assert_int_equal(files_in(f->dir), 0);
}

static void test_wipe_reports_file_it_cannot_remove(void **state)
{
    fixture *f = *state;
    char err[256] = "";
    char shm[320];

    outpost_replica_close(f->r);
    f->r = NULL;
    /* A directory where a file is expected cannot be unlinked, even by root. */
    snprintf(shm, sizeof shm, "%s-shm", f->path);
    unlink(shm);
    assert_int_equal(mkdir(shm, 0700), 0);
    assert_int_equal(outpost_files_wipe(f->path, err, sizeof err), OUTPOST_EIO);
    assert_non_null(strstr(err, "-shm"));
    rmdir(shm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wipe_removes_replica_and_journals, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_wipe_by_path_when_replica_cannot_open, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_wipe_refuses_bad_arguments, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_wipe_removes_rekey_leftovers, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_wipe_reports_file_it_cannot_remove, fx_setup, fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
