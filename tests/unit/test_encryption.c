/* Encryption at rest through the public API: which key material opens a replica, what a user
 * sees for a wrong key, a tampered page or a plain file, passphrases, rekeying, and the sync
 * engine's second connection on the same keys. */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "unit/client_fixture.h"

#include "../client-lib/src/internal.h"

static const uint8_t other_key[OUTPOST_KEY_BYTES] = {
    0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c,
    0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c};

#define PASSPHRASE "correct horse battery staple"

/* Opens f->path with cfg's callbacks and the given secret; returns the result, the message in
 * err. */
static int open_with(fixture *f, const outpost_secret *secret, int no_encryption, char *err,
                     size_t err_size)
{
    outpost_config cfg = fx_config(f);

    cfg.secret = secret ? *secret : (outpost_secret){0};
    cfg.no_encryption = no_encryption;
    return outpost_replica_open(&cfg, &f->r, err, err_size);
}

static void close_replica(fixture *f)
{
    outpost_replica_close(f->r);
    f->r = NULL;
}

static void assert_contact_name(fixture *f, const char *id, const char *name)
{
    char sql[128], buf[64];

    snprintf(sql, sizeof sql, "SELECT name FROM contacts WHERE id = '%s'", id);
    assert_string_equal(fx_query_text(f, sql, buf, sizeof buf), name);
}

static void test_encryption_open_needs_key_material(void **state)
{
    fixture *f = *state;
    outpost_secret both = {.key = fx_test_key, .passphrase = PASSPHRASE,
                           .passphrase_len = strlen(PASSPHRASE)};
    outpost_secret key = {.key = fx_test_key};
    outpost_secret empty_passphrase = {.passphrase = "", .passphrase_len = 0};
    char err[256] = "";

    close_replica(f);
    assert_int_equal(open_with(f, NULL, 0, err, sizeof err), OUTPOST_EINVAL);
    assert_null(f->r);
    assert_non_null(strstr(err, "no key"));
    assert_int_equal(open_with(f, &key, 1, err, sizeof err), OUTPOST_EINVAL);
    assert_non_null(strstr(err, "not both"));
    assert_int_equal(open_with(f, &both, 0, err, sizeof err), OUTPOST_EINVAL);
    assert_non_null(strstr(err, "one key or one non-empty passphrase"));
    assert_int_equal(open_with(f, &empty_passphrase, 0, err, sizeof err), OUTPOST_EINVAL);
    assert_null(f->r);
}

/* An outsider's finding: replica files followed the umask (0644 here). Encrypted or not, what
 * a worker recorded is nobody else's to read on a shared laptop. */
static void test_encryption_replica_files_are_owner_only(void **state)
{
    fixture *f = *state;
    char err[256] = "", wal[320];
    outpost_secret key = {.key = fx_test_key};
    struct stat sb;

    close_replica(f);
    outpost_files_wipe(f->path, err, sizeof err);
    mode_t was = umask(022);
    int rc = open_with(f, &key, 0, err, sizeof err);
    umask(was);
    assert_int_equal(rc, OUTPOST_OK);
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
}

static void test_encryption_wrong_key_is_refused(void **state)
{
    fixture *f = *state;
    outpost_secret wrong = {.key = other_key};
    outpost_secret passphrase = {.passphrase = PASSPHRASE, .passphrase_len = strlen(PASSPHRASE)};
    char err[256] = "";

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    close_replica(f);
    assert_int_equal(open_with(f, &wrong, 0, err, sizeof err), OUTPOST_EKEY);
    assert_null(f->r);
    assert_non_null(strstr(err, "wrong key or passphrase"));
    assert_string_equal(outpost_strerror(OUTPOST_EKEY), "wrong key or passphrase");
    assert_false(outpost_error_is_transient(OUTPOST_EKEY));
    assert_int_equal(open_with(f, &passphrase, 0, err, sizeof err), OUTPOST_EKEY);
    /* The refused opens changed nothing: the right key still opens every record. */
    assert_int_equal(fx_open(f), OUTPOST_OK);
    assert_contact_name(f, "c1", "Ana");
    assert_int_equal(fx_pending(f), 1);
}

/* Flips one byte in the middle of page pgno of the closed database file. */
static void tamper_page(const char *path, int64_t pgno)
{
    const off_t page_size = 4096;
    off_t at = (off_t)(pgno - 1) * page_size + page_size / 2;
    unsigned char b = 0;
    int fd = open(path, O_RDWR);

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    assert_int_equal(close(fd), 0);
}

static void test_encryption_tampered_page_fails_integrity(void **state)
{
    fixture *f = *state;
    int64_t contacts_page;
    sqlite3_stmt *stmt = NULL;

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    contacts_page = fx_query_int(f, "SELECT rootpage FROM sqlite_schema WHERE name = 'contacts'");
    assert_true(contacts_page > 1);
    close_replica(f); /* the last connection checkpoints: every page is in the database file */
    tamper_page(f->path, contacts_page);

    assert_int_equal(fx_open(f), OUTPOST_OK);
    /* A read on the connection fails instead of returning altered rows... */
    assert_int_equal(sqlite3_prepare_v2(outpost_replica_db(f->r), "SELECT name FROM contacts", -1,
                                        &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_IOERR_DATA);
    sqlite3_finalize(stmt);
    /* ...and the library names the integrity failure. */
    assert_int_equal(outpost_exec(f->r, "UPDATE contacts SET age = 16 WHERE id = 'c1'", NULL, 0),
                     OUTPOST_ECORRUPT);
    assert_non_null(strstr(outpost_errmsg(f->r), "integrity"));
    assert_non_null(strstr(outpost_strerror(OUTPOST_ECORRUPT), "integrity"));
}

static void test_encryption_tampered_first_page_fails_open(void **state)
{
    fixture *f = *state;
    char err[256] = "";

    close_replica(f);
    tamper_page(f->path, 1);
    assert_int_equal(fx_open(f), OUTPOST_ECORRUPT);
    assert_null(f->r);
    assert_int_equal(open_with(f, &(outpost_secret){.key = fx_test_key}, 0, err, sizeof err),
                     OUTPOST_ECORRUPT);
    assert_non_null(strstr(err, "integrity"));
}

static void test_encryption_truncated_replica_fails_integrity(void **state)
{
    fixture *f = *state;
    char err[256] = "";

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    close_replica(f);
    /* Cut in the middle of page 2: page 1 opens, everything after it is damaged. */
    assert_int_equal(truncate(f->path, 4096 + 2048), 0);
    assert_int_equal(open_with(f, &(outpost_secret){.key = fx_test_key}, 0, err, sizeof err),
                     OUTPOST_ECORRUPT);
    assert_null(f->r);
    assert_non_null(strstr(err, "integrity failure"));
    assert_non_null(strstr(err, "truncated"));
}

static void test_encryption_plain_replica_needs_no_encryption(void **state)
{
    fixture *f = *state;
    outpost_secret key = {.key = fx_test_key};
    char err[256] = "";

    close_replica(f);
    assert_int_equal(outpost_files_wipe(f->path, NULL, 0), OUTPOST_OK);
    /* A plain replica, as a test or a tool might make one. */
    assert_int_equal(open_with(f, NULL, 1, err, sizeof err), OUTPOST_OK);
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    close_replica(f);

    assert_int_equal(open_with(f, &key, 0, err, sizeof err), OUTPOST_ENOTENCRYPTED);
    assert_null(f->r);
    assert_non_null(strstr(err, "unencrypted"));
    assert_string_equal(outpost_strerror(OUTPOST_ENOTENCRYPTED), "replica is not encrypted");
    assert_false(outpost_error_is_transient(OUTPOST_ENOTENCRYPTED));
    /* Refusing it left it intact. */
    assert_int_equal(open_with(f, NULL, 1, err, sizeof err), OUTPOST_OK);
    assert_contact_name(f, "c1", "Ana");
}

static void test_encryption_encrypted_replica_refuses_no_encryption(void **state)
{
    fixture *f = *state;
    char err[256] = "";

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    close_replica(f);
    assert_int_equal(open_with(f, NULL, 1, err, sizeof err), OUTPOST_EKEY);
    assert_null(f->r);
    assert_non_null(strstr(err, "encrypted"));
    assert_int_equal(fx_open(f), OUTPOST_OK);
    assert_contact_name(f, "c1", "Ana");
}

static void test_encryption_passphrase_opens(void **state)
{
    fixture *f = *state;
    outpost_secret passphrase = {.passphrase = PASSPHRASE, .passphrase_len = strlen(PASSPHRASE)};
    /* A passphrase is taken by length: the same bytes with one more are another passphrase. */
    outpost_secret longer = {.passphrase = PASSPHRASE "!", .passphrase_len = strlen(PASSPHRASE) + 1};
    char err[256] = "";

    close_replica(f);
    assert_int_equal(outpost_files_wipe(f->path, NULL, 0), OUTPOST_OK);
    assert_int_equal(open_with(f, &passphrase, 0, err, sizeof err), OUTPOST_OK);
    assert_int_equal(outpost_schema_install(f->r, &f->schema), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    close_replica(f);

    assert_int_equal(open_with(f, &longer, 0, err, sizeof err), OUTPOST_EKEY);
    assert_int_equal(fx_open(f), OUTPOST_EKEY); /* the raw test key is not the passphrase's key */
    assert_int_equal(open_with(f, &passphrase, 0, err, sizeof err), OUTPOST_OK);
    assert_contact_name(f, "c1", "Ana");
}

static void test_encryption_rekey_then_open_with_new_secret(void **state)
{
    fixture *f = *state;
    outpost_secret old_key = {.key = fx_test_key};
    outpost_secret new_key = {.key = other_key};
    outpost_secret passphrase = {.passphrase = PASSPHRASE, .passphrase_len = strlen(PASSPHRASE)};
    char err[256] = "";

    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    close_replica(f);

    /* A rekey under a permissive umask still leaves an owner-only replica (an outsider saw
     * `outpost passwd` turn 0600 into 0644). */
    struct stat sb;
    assert_int_equal(chmod(f->path, 0600), 0);
    mode_t was = umask(022);
    int rc = outpost_replica_rekey(f->path, &old_key, &new_key, err, sizeof err);
    umask(was);
    assert_int_equal(rc, OUTPOST_OK);
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(fx_open(f), OUTPOST_EKEY);
    assert_int_equal(open_with(f, &new_key, 0, err, sizeof err), OUTPOST_OK);
    assert_contact_name(f, "c1", "Ana");
    assert_int_equal(fx_pending(f), 1); /* the outbox came across too */
    close_replica(f);

    /* From a key to a passphrase; a wrong old secret changes nothing. */
    assert_int_equal(outpost_replica_rekey(f->path, &old_key, &passphrase, err, sizeof err),
                     OUTPOST_EKEY);
    assert_non_null(strstr(err, "wrong key or passphrase"));
    assert_int_equal(outpost_replica_rekey(f->path, &new_key, &passphrase, err, sizeof err),
                     OUTPOST_OK);
    assert_int_equal(open_with(f, &new_key, 0, err, sizeof err), OUTPOST_EKEY);
    assert_int_equal(open_with(f, &passphrase, 0, err, sizeof err), OUTPOST_OK);
    assert_contact_name(f, "c1", "Ana");
}

/* A rekey killed at any moment leaves a replica that opens with the old key or the new one,
 * with every record. */
static void test_encryption_rekey_killed_opens_with_old_or_new(void **state)
{
    fixture *f = *state;
    outpost_secret keys[2] = {{.key = fx_test_key}, {.key = other_key}};
    int current = 0, switched = 0;
    char err[256] = "";

    /* Enough pages that a rekey takes a few milliseconds to copy. */
    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(outpost_tx_begin(f->r), OUTPOST_OK);
    for (int i = 0; i < 2000; i++) {
        char id[32];

        snprintf(id, sizeof id, "bulk-%d", i);
        assert_int_equal(fx_insert_contact(f, id, "a contact with a longer name to fill pages", i),
                         OUTPOST_OK);
    }
    assert_int_equal(outpost_tx_commit(f->r, NULL), OUTPOST_OK);
    close_replica(f);
    /* One rekey run to the end tells how long one takes here; the kills spread over 0 to 3
     * times that. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(outpost_replica_rekey(f->path, &keys[0], &keys[1], err, sizeof err), OUTPOST_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    current = 1;
    long rekey_ns = (long)(t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec);
    for (int round = 0; round < 30; round++) {
        long ns = rekey_ns / 5 * (round % 16);
        struct timespec delay = {ns / 1000000000L, ns % 1000000000L};
        int status = 0, opened = -1;
        pid_t pid;

        fflush(NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            _exit(outpost_replica_rekey(f->path, &keys[current], &keys[1 - current], NULL, 0) ==
                          OUTPOST_OK ? 0 : 1);
        nanosleep(&delay, NULL);
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        /* The app's recovery: the new secret first, then the old one. */
        for (int k = 0; k < 2 && opened < 0; k++) {
            int which = k == 0 ? 1 - current : current;

            if (open_with(f, &keys[which], 0, err, sizeof err) == OUTPOST_OK)
                opened = which;
            else
                assert_non_null(strstr(err, "wrong key"));
        }
        if (opened < 0)
            fail_msg("round %d: the replica opens with neither key", round);
        assert_contact_name(f, "c1", "Ana");
        assert_int_equal(fx_query_int(f, "SELECT count(*) FROM contacts"), 2001);
        close_replica(f);
        switched += opened != current;
        current = opened;
    }
    /* Some kills landed after the switch; the others left the old key in force. */
    assert_true(switched > 0);
    assert_true(switched < 30);
}

static void test_encryption_rekey_refuses_bad_arguments(void **state)
{
    fixture *f = *state;
    outpost_secret key = {.key = fx_test_key};
    outpost_secret none = {0};
    char missing[320], err[256] = "";

    close_replica(f);
    assert_int_equal(outpost_replica_rekey(NULL, &key, &key, err, sizeof err), OUTPOST_EINVAL);
    assert_int_equal(outpost_replica_rekey(f->path, &key, &none, err, sizeof err), OUTPOST_EINVAL);
    assert_int_equal(outpost_replica_rekey(f->path, NULL, &key, NULL, 0), OUTPOST_EINVAL);
    snprintf(missing, sizeof missing, "%s/absent.db", f->dir);
    assert_int_equal(outpost_replica_rekey(missing, &key, &key, err, sizeof err), OUTPOST_EINVAL);
    assert_non_null(strstr(err, "no replica"));
    /* The replica is untouched. */
    assert_int_equal(fx_open(f), OUTPOST_OK);
}

/* The sync engine's connection is opened beside the app's and reads what the app wrote, on the
 * same keys; the keys live until the last of the two closes, in either order. */
static void test_encryption_sibling_shares_keys(void **state)
{
    fixture *f = *state;
    outpost_replica *sync = NULL;
    outpost_outbox_entry *e = NULL;
    proto_value row[5] = {pv_text("p1"), pv_text("team-a"), pv_text("Pulled"), pv_int(9), pv_null()};
    proto_table_rows tr = {.table = "contacts", .n_columns = 5, .n_rows = 1, .rows = row, .n_pk = 1};
    proto_rows page = {.cursor = 3, .n_tables = 1, .tables = &tr};
    char err[256] = "";

    assert_int_equal(replica_open_sibling(f->r, &sync, err, sizeof err), OUTPOST_OK);
    assert_int_equal(fx_insert_contact(f, "c1", "Ana", 15), OUTPOST_OK);
    assert_int_equal(outpost_outbox_read(sync, 0, &e), OUTPOST_OK);
    assert_non_null(e);
    assert_string_equal(e->push.tables[0].table, "contacts");
    outpost_outbox_entry_free(e);
    assert_int_equal(outpost_rows_apply(sync, &page), OUTPOST_OK);
    assert_contact_name(f, "p1", "Pulled");

    /* The app closes first: the sync connection keeps working on the shared keys. */
    close_replica(f);
    assert_int_equal(outpost_rows_apply(sync, &(proto_rows){.cursor = 4}), OUTPOST_OK);
    outpost_replica_close(sync);
    assert_int_equal(fx_open(f), OUTPOST_OK);
    assert_contact_name(f, "p1", "Pulled");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_encryption_open_needs_key_material, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_encryption_replica_files_are_owner_only, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_encryption_wrong_key_is_refused, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_encryption_tampered_page_fails_integrity, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_encryption_tampered_first_page_fails_open, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_encryption_truncated_replica_fails_integrity, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_encryption_plain_replica_needs_no_encryption, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_encryption_encrypted_replica_refuses_no_encryption,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_encryption_passphrase_opens, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_encryption_rekey_then_open_with_new_secret, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_encryption_rekey_killed_opens_with_old_or_new, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_encryption_rekey_refuses_bad_arguments, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_encryption_sibling_shares_keys, fx_setup, fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
