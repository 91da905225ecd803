/* cryptvfs: round trips (WAL, rollback journal, UTF-16), wrong key, tampered and truncated files,
 * plain databases, passphrases, rekeying, temp files and argument handling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "unit/cryptvfs_fixture.h"

typedef struct test_ctx {
    fixture_dir dir;
    char db_path[PATH_MAX];
} test_ctx;

static int setup(void **state)
{
    test_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx || fixture_dir_make(&ctx->dir) != 0) {
        free(ctx);
        return -1;
    }
    fixture_dir_path(&ctx->dir, "replica.db", ctx->db_path);
    *state = ctx;
    return 0;
}

static int teardown(void **state)
{
    test_ctx *ctx = *state;
    fixture_dir_remove(&ctx->dir);
    free(ctx);
    return 0;
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fail_msg("SQL failed (%d): %s\n  in: %s", rc, err ? err : "?", sql);
    sqlite3_free(err);
}

/* rows [first, first+count) of a table of a few pages' worth of text, in one transaction */
static void insert_rows(sqlite3 *db, int first, int count)
{
    sqlite3_stmt *stmt = NULL;
    exec_ok(db, "BEGIN");
    assert_int_equal(sqlite3_prepare_v2(db,
                         "INSERT INTO people(id, name, notes) VALUES (?1, "
                         "printf('person-%06d-Zoë', ?1), printf('%0400d', ?1))",
                         -1, &stmt, NULL),
                     SQLITE_OK);
    for (int i = first; i < first + count; i++) {
        sqlite3_bind_int(stmt, 1, i);
        assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    exec_ok(db, "COMMIT");
}

static void create_people(sqlite3 *db)
{
    exec_ok(db, "CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT NOT NULL, notes TEXT)");
}

/* Rows 0..count-1 are all there with the content insert_rows gave them. */
static void assert_people(sqlite3 *db, int count)
{
    int rc;
    assert_int_equal(fixture_query_int(db, "SELECT count(*) FROM people", &rc), count);
    assert_int_equal(rc, SQLITE_OK);
    long long bad = fixture_query_int(
        db,
        "SELECT count(*) FROM people WHERE name != printf('person-%06d-Zoë', id) "
        "OR notes != printf('%0400d', id)",
        &rc);
    assert_int_equal(rc, SQLITE_OK);
    assert_int_equal(bad, 0);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "ok");
    sqlite3_finalize(stmt);
}

/* Builds a closed, checkpointed database of `rows` rows under key A in the given journal mode. */
static void build_db(const char *path, const char *journal_mode, int rows)
{
    cryptvfs *vfs;
    sqlite3 *db;
    cryptvfs_secret secret = fixture_secret(fixture_key_a);
    assert_int_equal(fixture_open(path, &secret, &vfs, &db, NULL, 0), 0);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", journal_mode);
    exec_ok(db, sql);
    create_people(db);
    for (int i = 0; i < rows; i += 100)
        insert_rows(db, i, rows - i < 100 ? rows - i : 100);
    fixture_close(vfs, db);
}

static void test_roundtrip_wal(void **state)
{
    test_ctx *ctx = *state;
    cryptvfs *vfs;
    sqlite3 *db;
    cryptvfs_secret secret = fixture_secret(fixture_key_a);
    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, NULL, 0), 0);
    exec_ok(db, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0");
    create_people(db);
    for (int i = 0; i < 1000; i += 250)
        insert_rows(db, i, 250);

    /* A second connection reads the rows from WAL frames (nothing is checkpointed yet). */
    char wal_path[PATH_MAX];
    fixture_join(wal_path, ctx->db_path, "-wal");
    assert_true(fixture_file_size(wal_path) > 100 * 4096);
    sqlite3 *reader;
    assert_int_equal(cryptvfs_connect(vfs, SQLITE_OPEN_READONLY, &reader), 0);
    assert_people(reader, 1000);
    sqlite3_close(reader);

    exec_ok(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    insert_rows(db, 1000, 10);
    fixture_close(vfs, db);

    /* On disk: the salt where SQLite's magic would be, page size and reserve in clear. */
    size_t size = 0;
    uint8_t *data = fixture_read_file(ctx->db_path, &size);
    assert_non_null(data);
    assert_true(size >= 4096);
    assert_memory_not_equal(data, "SQLite format 3", 16);
    assert_int_equal((data[16] << 8) | data[17], 4096);
    assert_int_equal(data[18], 2); /* WAL */
    assert_int_equal(data[20], CRYPTVFS_RESERVE_BYTES);
    free(data);

    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, NULL, 0), 0);
    assert_people(db, 1010);
    fixture_close(vfs, db);
}

static void test_roundtrip_rollback_journal(void **state)
{
    test_ctx *ctx = *state;
    cryptvfs *vfs;
    sqlite3 *db;
    cryptvfs_secret secret = fixture_secret(fixture_key_a);
    build_db(ctx->db_path, "DELETE", 600);

    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, NULL, 0), 0);
    /* A tiny cache makes SQLite spill changed pages to the file mid-transaction, so the
     * rollback must read original pages back from the journal. */
    exec_ok(db, "PRAGMA cache_size=5");
    exec_ok(db, "BEGIN; UPDATE people SET notes = 'overwritten', name = 'x'; DELETE FROM people "
                "WHERE id % 3 = 0");
    char journal[PATH_MAX];
    fixture_join(journal, ctx->db_path, "-journal");
    assert_true(fixture_file_size(journal) > 10 * 4096);
    exec_ok(db, "ROLLBACK");
    assert_people(db, 600);

    insert_rows(db, 600, 50);
    exec_ok(db, "SAVEPOINT s; DELETE FROM people; ROLLBACK TO s; RELEASE s");
    fixture_close(vfs, db);

    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, NULL, 0), 0);
    assert_people(db, 650);
    fixture_close(vfs, db);
}

static void test_roundtrip_utf16_database(void **state)
{
    test_ctx *ctx = *state;
    cryptvfs *vfs;
    sqlite3 *db;
    cryptvfs_secret secret = fixture_secret(fixture_key_a);
    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, NULL, 0), 0);
    exec_ok(db, "PRAGMA encoding='UTF-16le'; PRAGMA journal_mode=WAL");
    create_people(db);
    insert_rows(db, 0, 300);
    fixture_close(vfs, db);

    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, NULL, 0), 0);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA encoding", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "UTF-16le");
    sqlite3_finalize(stmt);
    assert_people(db, 300);
    fixture_close(vfs, db);
}

static void test_open_wrong_key_is_clear_error(void **state)
{
    test_ctx *ctx = *state;
    cryptvfs *vfs;
    sqlite3 *db;
    char msg[CRYPTVFS_ERRMSG_SIZE];
    build_db(ctx->db_path, "WAL", 50);

    cryptvfs_secret wrong = fixture_secret(fixture_key_b);
    assert_int_equal(fixture_open(ctx->db_path, &wrong, &vfs, &db, msg, sizeof msg),
                     CRYPTVFS_EWRONGKEY);
    assert_null(db);
    assert_non_null(strstr(msg, "wrong key"));
    assert_string_equal(cryptvfs_strerror(CRYPTVFS_EWRONGKEY), "wrong key or corrupted database");

    /* Plain SQLite sees no database at all. */
    assert_int_equal(sqlite3_open_v2(ctx->db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    int rc;
    fixture_query_int(db, "SELECT count(*) FROM sqlite_schema", &rc);
    assert_int_equal(rc, SQLITE_NOTADB);
    sqlite3_close(db);

    cryptvfs_secret right = fixture_secret(fixture_key_a);
    assert_int_equal(fixture_open(ctx->db_path, &right, &vfs, &db, NULL, 0), 0);
    assert_people(db, 50);
    fixture_close(vfs, db);
}

static void test_read_tampered_page_fails_integrity(void **state)
{
    test_ctx *ctx = *state;
    cryptvfs *vfs;
    sqlite3 *db;
    char msg[CRYPTVFS_ERRMSG_SIZE];
    cryptvfs_secret secret = fixture_secret(fixture_key_a);
    build_db(ctx->db_path, "WAL", 400);
    assert_true(fixture_file_size(ctx->db_path) > 20 * 4096);

    /* One bit in the middle of page 10. */
    assert_int_equal(fixture_flip_byte(ctx->db_path, 9 * 4096 + 1000, 0x01), 0);
    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, NULL, 0), 0);
    int rc;
    fixture_query_int(db, "SELECT count(*) FROM people WHERE notes LIKE '%9%'", &rc);
    assert_int_equal(rc, SQLITE_IOERR_DATA);
    assert_int_equal(cryptvfs_last_error(vfs, msg, sizeof msg), CRYPTVFS_ECORRUPT);
    assert_non_null(strstr(msg, "integrity check failed"));
    assert_non_null(strstr(msg, "page 10"));
    fixture_close(vfs, db);

    /* Page 1 tampered (its tag, not the key check value): refused at open, as damage. */
    assert_int_equal(fixture_flip_byte(ctx->db_path, 9 * 4096 + 1000, 0x01), 0);
    assert_int_equal(fixture_flip_byte(ctx->db_path, 4096 - 10, 0x80), 0);
    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, msg, sizeof msg),
                     CRYPTVFS_ECORRUPT);
    assert_non_null(strstr(msg, "page 1 "));
    /* The clear page-size bytes are authenticated too. */
    assert_int_equal(fixture_flip_byte(ctx->db_path, 4096 - 10, 0x80), 0);
    assert_int_equal(fixture_flip_byte(ctx->db_path, 21, 0x01), 0); /* max payload fraction */
    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, NULL, 0), CRYPTVFS_ECORRUPT);
    assert_int_equal(fixture_flip_byte(ctx->db_path, 21, 0x01), 0);
    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, NULL, 0), 0);
    assert_people(db, 400);
    fixture_close(vfs, db);
}

/* Reads every row; returns the cryptvfs code of a failure (0 if all rows read). */
static int read_all(cryptvfs *vfs, sqlite3 *db, int *out_sqlite_rc)
{
    fixture_query_int(db, "SELECT sum(length(notes)) FROM people", out_sqlite_rc);
    return *out_sqlite_rc == SQLITE_OK ? 0 : cryptvfs_last_error(vfs, NULL, 0);
}

/* A changed byte in a WAL frame fails when the page is read from the WAL, and still fails after
 * a checkpoint has copied the sealed page into the database file. */
static void test_read_tampered_wal_frame_fails_integrity(void **state)
{
    test_ctx *ctx = *state;
    cryptvfs *vfs;
    sqlite3 *writer, *reader;
    cryptvfs_secret secret = fixture_secret(fixture_key_a);
    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &writer, NULL, 0), 0);
    exec_ok(writer, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0");
    create_people(writer);
    insert_rows(writer, 0, 300);

    /* The last frame is the newest version of its page, so every later read uses it. */
    char wal[PATH_MAX];
    fixture_join(wal, ctx->db_path, "-wal");
    long long size = fixture_file_size(wal);
    assert_true(size > 10 * (24 + 4096));
    assert_int_equal(fixture_flip_byte(wal, size - 4096 + 700, 0x04), 0);

    int rc;
    assert_int_equal(cryptvfs_connect(vfs, SQLITE_OPEN_READONLY, &reader), 0);
    assert_int_equal(read_all(vfs, reader, &rc), CRYPTVFS_ECORRUPT);
    assert_int_equal(rc, SQLITE_IOERR_DATA);
    sqlite3_close(reader);

    cryptvfs_clear_error(vfs);
    exec_ok(writer, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert_int_equal(fixture_file_size(wal), 0);
    fixture_close(vfs, writer);

    char msg[CRYPTVFS_ERRMSG_SIZE];
    int code = fixture_open(ctx->db_path, &secret, &vfs, &reader, msg, sizeof msg);
    if (code == 0) {
        code = read_all(vfs, reader, &rc);
        assert_int_equal(rc, SQLITE_IOERR_DATA);
        fixture_close(vfs, reader);
    }
    assert_int_equal(code, CRYPTVFS_ECORRUPT);
}

/* A transaction that spills pages to the WAL and then changes them again makes SQLite overwrite
 * its own frames and rewrite their checksums, chaining from the previous frame's checksum it
 * reads back. A process that dies right after such commits (no checkpoint, WAL left behind) must
 * find every committed row when WAL recovery replays the log. */
static void test_wal_recovery_after_frame_rewrites(void **state)
{
    test_ctx *ctx = *state;
    cryptvfs_secret secret = fixture_secret(fixture_key_a);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        cryptvfs *vfs;
        sqlite3 *db;
        if (fixture_open(ctx->db_path, &secret, &vfs, &db, NULL, 0) != 0)
            _exit(2);
        int rc = sqlite3_exec(db,
                              "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;"
                              "PRAGMA cache_size=5;"
                              "CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                              "notes TEXT);"
                              "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n "
                              "WHERE i < 199) INSERT INTO people SELECT i, "
                              "printf('person-%06d-Zoë', i), 'x' FROM n;"
                              "BEGIN;"
                              "WITH RECURSIVE n(i) AS (SELECT 200 UNION ALL SELECT i + 1 FROM n "
                              "WHERE i < 599) INSERT INTO people SELECT i, "
                              "printf('person-%06d-Zoë', i), 'x' FROM n;"
                              "UPDATE people SET notes = printf('%0400d', id);"
                              "COMMIT;",
                              NULL, NULL, NULL);
        _exit(rc == SQLITE_OK ? 0 : 3); /* no close: the WAL stays as a crash leaves it */
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    char wal[PATH_MAX];
    fixture_join(wal, ctx->db_path, "-wal");
    assert_true(fixture_file_size(wal) > 30 * 4096);

    cryptvfs *vfs;
    sqlite3 *db;
    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, NULL, 0), 0);
    assert_people(db, 600);
    fixture_close(vfs, db);
}

/* Pages swapped within the file: each is authentic but bound to another page number. */
static void test_read_swapped_pages_fails_integrity(void **state)
{
    test_ctx *ctx = *state;
    cryptvfs *vfs;
    sqlite3 *db;
    cryptvfs_secret secret = fixture_secret(fixture_key_a);
    build_db(ctx->db_path, "DELETE", 400);
    size_t size = 0;
    uint8_t *data = fixture_read_file(ctx->db_path, &size);
    assert_non_null(data);
    uint8_t page[4096];
    memcpy(page, data + 4 * 4096, 4096);
    memcpy(data + 4 * 4096, data + 5 * 4096, 4096);
    memcpy(data + 5 * 4096, page, 4096);
    FILE *f = fopen(ctx->db_path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    fclose(f);
    free(data);

    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, NULL, 0), 0);
    int rc;
    fixture_query_int(db, "SELECT sum(length(notes)) FROM people", &rc);
    assert_int_equal(rc, SQLITE_IOERR_DATA);
    assert_int_equal(cryptvfs_last_error(vfs, NULL, 0), CRYPTVFS_ECORRUPT);
    fixture_close(vfs, db);
}

/* A truncated file fails clearly, at open or at the first read of a missing page: never rows
 * that silently stop early. */
static void assert_truncated_fails(const char *path)
{
    cryptvfs *vfs;
    sqlite3 *db;
    char msg[CRYPTVFS_ERRMSG_SIZE];
    cryptvfs_secret secret = fixture_secret(fixture_key_a);
    int code = fixture_open(path, &secret, &vfs, &db, msg, sizeof msg);
    if (code != 0) {
        assert_int_equal(code, CRYPTVFS_ECORRUPT);
        assert_non_null(strstr(msg, "truncated"));
        return;
    }
    int rc;
    fixture_query_int(db, "SELECT sum(length(notes)) FROM people", &rc);
    assert_true(rc == SQLITE_IOERR_DATA || (rc & 0xff) == SQLITE_CORRUPT);
    if (rc == SQLITE_IOERR_DATA) {
        assert_int_equal(cryptvfs_last_error(vfs, msg, sizeof msg), CRYPTVFS_ECORRUPT);
        assert_non_null(strstr(msg, "truncated"));
    }
    fixture_close(vfs, db);
}

static void test_read_truncated_file_is_clear_error(void **state)
{
    test_ctx *ctx = *state;
    build_db(ctx->db_path, "WAL", 400);
    long long size = fixture_file_size(ctx->db_path);
    long long half = size / 2 / 4096 * 4096;

    assert_int_equal(truncate(ctx->db_path, (off_t)(half + 1500)), 0); /* mid-page */
    assert_truncated_fails(ctx->db_path);
    assert_int_equal(truncate(ctx->db_path, (off_t)half), 0); /* page boundary */
    assert_truncated_fails(ctx->db_path);
    assert_int_equal(truncate(ctx->db_path, 2000), 0); /* inside page 1 */
    assert_truncated_fails(ctx->db_path);
}

static void test_open_plain_database_refused(void **state)
{
    test_ctx *ctx = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(ctx->db_path, &db), SQLITE_OK);
    exec_ok(db, "CREATE TABLE t(x); INSERT INTO t VALUES ('plain')");
    sqlite3_close(db);
    size_t before_size = 0;
    uint8_t *before = fixture_read_file(ctx->db_path, &before_size);
    assert_non_null(before);

    cryptvfs *vfs;
    char msg[CRYPTVFS_ERRMSG_SIZE];
    cryptvfs_secret secret = fixture_secret(fixture_key_a);
    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, msg, sizeof msg),
                     CRYPTVFS_ENOTENCRYPTED);
    assert_non_null(strstr(msg, "not encrypted"));

    size_t after_size = 0;
    uint8_t *after = fixture_read_file(ctx->db_path, &after_size);
    assert_non_null(after);
    assert_int_equal(before_size, after_size);
    assert_memory_equal(before, after, before_size);
    free(before);
    free(after);
}

static void test_open_passphrase(void **state)
{
    test_ctx *ctx = *state;
    cryptvfs *vfs;
    sqlite3 *db;
    const char pass[] = "correct horse battery staple";
    cryptvfs_secret secret = { .passphrase = pass, .passphrase_len = strlen(pass) };
    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, NULL, 0), 0);
    create_people(db);
    insert_rows(db, 0, 20);
    fixture_close(vfs, db);

    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, NULL, 0), 0);
    assert_people(db, 20);
    fixture_close(vfs, db);

    const char wrong_pass[] = "correct horse battery stapler";
    cryptvfs_secret wrong = { .passphrase = wrong_pass, .passphrase_len = strlen(wrong_pass) };
    assert_int_equal(fixture_open(ctx->db_path, &wrong, &vfs, &db, NULL, 0), CRYPTVFS_EWRONGKEY);

    /* The key Argon2id makes from the passphrase and the file's salt opens it as a raw key. */
    size_t size = 0;
    uint8_t *data = fixture_read_file(ctx->db_path, &size);
    assert_non_null(data);
    uint8_t key[CRYPTVFS_KEY_BYTES];
    assert_int_equal(cryptvfs_derive_key(pass, strlen(pass), data, key), 0);
    free(data);
    cryptvfs_secret raw = fixture_secret(key);
    assert_int_equal(fixture_open(ctx->db_path, &raw, &vfs, &db, NULL, 0), 0);
    assert_people(db, 20);
    fixture_close(vfs, db);
}

static void test_rekey_switches_secret(void **state)
{
    test_ctx *ctx = *state;
    cryptvfs *vfs;
    sqlite3 *db;
    char msg[CRYPTVFS_ERRMSG_SIZE];
    build_db(ctx->db_path, "WAL", 300);
    uint8_t old_salt[16];
    size_t size = 0;
    uint8_t *data = fixture_read_file(ctx->db_path, &size);
    assert_non_null(data);
    memcpy(old_salt, data, sizeof old_salt);
    free(data);

    cryptvfs_secret a = fixture_secret(fixture_key_a);
    cryptvfs_secret b = fixture_secret(fixture_key_b);
    assert_int_equal(cryptvfs_rekey(ctx->db_path, &b, &a, msg, sizeof msg), CRYPTVFS_EWRONGKEY);
    assert_int_equal(cryptvfs_rekey(ctx->db_path, &a, &b, msg, sizeof msg), 0);

    data = fixture_read_file(ctx->db_path, &size);
    assert_non_null(data);
    assert_memory_not_equal(data, old_salt, sizeof old_salt);
    assert_int_equal(data[18], 2); /* still a WAL database */
    free(data);
    char copy[PATH_MAX];
    fixture_join(copy, ctx->db_path, "-rekey");
    assert_int_equal(fixture_file_size(copy), -1);

    assert_int_equal(fixture_open(ctx->db_path, &a, &vfs, &db, NULL, 0), CRYPTVFS_EWRONGKEY);
    assert_int_equal(fixture_open(ctx->db_path, &b, &vfs, &db, NULL, 0), 0);
    assert_people(db, 300);
    insert_rows(db, 300, 10);
    fixture_close(vfs, db);

    /* And on to a passphrase. */
    const char pass[] = "tähän salasana";
    cryptvfs_secret p = { .passphrase = pass, .passphrase_len = strlen(pass) };
    assert_int_equal(cryptvfs_rekey(ctx->db_path, &b, &p, msg, sizeof msg), 0);
    assert_int_equal(fixture_open(ctx->db_path, &p, &vfs, &db, NULL, 0), 0);
    assert_people(db, 310);
    fixture_close(vfs, db);
}

static void test_rekey_rollback_journal_database(void **state)
{
    test_ctx *ctx = *state;
    cryptvfs *vfs;
    sqlite3 *db;
    char msg[CRYPTVFS_ERRMSG_SIZE];
    build_db(ctx->db_path, "DELETE", 200);
    cryptvfs_secret a = fixture_secret(fixture_key_a);
    cryptvfs_secret b = fixture_secret(fixture_key_b);
    assert_int_equal(cryptvfs_rekey(ctx->db_path, &a, &b, msg, sizeof msg), 0);
    assert_int_equal(fixture_open(ctx->db_path, &b, &vfs, &db, NULL, 0), 0);
    assert_people(db, 200);
    int rc;
    assert_int_equal(fixture_query_int(db, "SELECT journal_mode = 'delete' FROM pragma_journal_mode",
                                       &rc), 1);
    fixture_close(vfs, db);
}

/* Sorter spills and temp tables go to memory even when the app asks for temp files on disk. */
static void test_temp_files_stay_in_memory(void **state)
{
    test_ctx *ctx = *state;
    cryptvfs *vfs;
    sqlite3 *db;
    fixture_dir tmp;
    assert_int_equal(fixture_dir_make(&tmp), 0);
    assert_int_equal(setenv("SQLITE_TMPDIR", tmp.path, 1), 0);

    cryptvfs_secret secret = fixture_secret(fixture_key_a);
    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, NULL, 0), 0);
    exec_ok(db, "PRAGMA temp_store=FILE; PRAGMA cache_size=10");
    create_people(db);
    insert_rows(db, 0, 2000);
    exec_ok(db, "CREATE TEMP TABLE scratch AS SELECT * FROM people");
    int rc;
    long long n = fixture_query_int(
        db, "SELECT count(*) FROM (SELECT notes FROM scratch ORDER BY name DESC, notes)", &rc);
    assert_int_equal(rc, SQLITE_OK);
    assert_int_equal(n, 2000);
    exec_ok(db, "CREATE INDEX people_notes ON people(notes)");

    DIR *d = opendir(tmp.path);
    assert_non_null(d);
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        files += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 0);
    fixture_close(vfs, db);
    unsetenv("SQLITE_TMPDIR");
    fixture_dir_remove(&tmp);
}

static void test_attach_other_file_refused(void **state)
{
    test_ctx *ctx = *state;
    cryptvfs *vfs;
    sqlite3 *db;
    char other[PATH_MAX];
    fixture_dir_path(&ctx->dir, "other.db", other);
    cryptvfs_secret secret = fixture_secret(fixture_key_a);
    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, NULL, 0), 0);
    char *sql = sqlite3_mprintf("ATTACH %Q AS other", other);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_CANTOPEN);
    sqlite3_free(sql);
    assert_int_equal(fixture_file_size(other), -1);
    fixture_close(vfs, db);
}

static void test_api_bad_arguments(void **state)
{
    (void)state;
    cryptvfs *vfs;
    memset(&vfs, 0xa5, sizeof vfs); /* out-parameters are set even on failure */
    const char pass[] = "x";
    cryptvfs_secret none = { 0 };
    cryptvfs_secret both = { .key = fixture_key_a, .passphrase = pass, .passphrase_len = 1 };
    cryptvfs_secret empty = { .passphrase = pass, .passphrase_len = 0 };
    assert_int_equal(cryptvfs_open("x.db", &none, &vfs), CRYPTVFS_EINVAL);
    assert_null(vfs);
    assert_int_equal(cryptvfs_open("x.db", &both, &vfs), CRYPTVFS_EINVAL);
    assert_int_equal(cryptvfs_open("x.db", &empty, &vfs), CRYPTVFS_EINVAL);
    assert_int_equal(cryptvfs_open(NULL, &none, &vfs), CRYPTVFS_EINVAL);
    assert_int_equal(cryptvfs_open("x.db", NULL, &vfs), CRYPTVFS_EINVAL);
    cryptvfs_close(NULL);
    char msg[8] = "junk";
    assert_int_equal(cryptvfs_last_error(NULL, msg, sizeof msg), 0);
    assert_string_equal(msg, "");
    sqlite3 *db;
    memset(&db, 0xa5, sizeof db);
    assert_int_equal(cryptvfs_connect(NULL, SQLITE_OPEN_READWRITE, &db), CRYPTVFS_EINVAL);
    assert_null(db);
    assert_int_equal(cryptvfs_rekey("/nonexistent/x.db", &none, &none, msg, sizeof msg),
                     CRYPTVFS_EINVAL);
}

/* VACUUM rebuilds every page (through an in-memory temp database) and writes them back, in WAL
 * and in rollback mode. Changing the page size of an existing database is refused (SQLite does it
 * by copying bytes across page boundaries) and leaves the database as it was. */
static void test_vacuum_and_page_size_change(void **state)
{
    test_ctx *ctx = *state;
    cryptvfs *vfs;
    sqlite3 *db;
    char msg[CRYPTVFS_ERRMSG_SIZE];
    cryptvfs_secret secret = fixture_secret(fixture_key_a);
    build_db(ctx->db_path, "WAL", 500);
    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, NULL, 0), 0);
    exec_ok(db, "DELETE FROM people WHERE id >= 250; VACUUM");
    assert_people(db, 250);
    exec_ok(db, "PRAGMA journal_mode=DELETE; VACUUM");
    insert_rows(db, 250, 50);
    exec_ok(db, "PRAGMA page_size=8192");
    assert_int_equal(sqlite3_exec(db, "VACUUM", NULL, NULL, NULL) & 0xff, SQLITE_IOERR);
    assert_int_equal(cryptvfs_last_error(vfs, msg, sizeof msg), CRYPTVFS_EFORMAT);
    assert_non_null(strstr(msg, "page size"));
    fixture_close(vfs, db);

    size_t size = 0;
    uint8_t *data = fixture_read_file(ctx->db_path, &size);
    assert_non_null(data);
    assert_int_equal((data[16] << 8) | data[17], 4096);
    free(data);
    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &db, NULL, 0), 0);
    assert_people(db, 300);
    fixture_close(vfs, db);
}

/* A connection opened on the VFS without cryptvfs_prepare has no reserved bytes: the first write
 * is refused with a format error, and nothing reaches the disk in clear. */
static void test_write_without_prepare_refused(void **state)
{
    test_ctx *ctx = *state;
    cryptvfs *vfs;
    sqlite3 *db;
    char msg[CRYPTVFS_ERRMSG_SIZE];
    cryptvfs_secret secret = fixture_secret(fixture_key_a);
    assert_int_equal(cryptvfs_open(ctx->db_path, &secret, &vfs), 0);
    assert_int_equal(sqlite3_open_v2(ctx->db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                     cryptvfs_name(vfs)),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL) & 0xff, SQLITE_IOERR);
    assert_int_equal(cryptvfs_last_error(vfs, msg, sizeof msg), CRYPTVFS_EFORMAT);
    assert_non_null(strstr(msg, "reserved bytes"));
    fixture_close(vfs, db);
    assert_true(fixture_file_size(ctx->db_path) <= 0);
}

/* Two connections take turns writing, reading and checkpointing (which restarts the WAL, so
 * frames at the same offsets change pages between turns). */
static void test_two_connections_interleave(void **state)
{
    test_ctx *ctx = *state;
    cryptvfs *vfs;
    sqlite3 *conn[2];
    cryptvfs_secret secret = fixture_secret(fixture_key_a);
    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &conn[0], NULL, 0), 0);
    assert_int_equal(cryptvfs_connect(vfs, SQLITE_OPEN_READWRITE, &conn[1]), 0);
    exec_ok(conn[0], "PRAGMA journal_mode=WAL");
    create_people(conn[0]);
    int rows = 0;
    for (int turn = 0; turn < 24; turn++) {
        sqlite3 *writer = conn[turn % 2], *other = conn[(turn + 1) % 2];
        exec_ok(writer, "PRAGMA wal_autocheckpoint=0");
        insert_rows(writer, rows, 40 + turn);
        rows += 40 + turn;
        exec_ok(writer, turn % 3 == 0 ? "UPDATE people SET notes = printf('%0400d', id) "
                                        "WHERE id % 7 = 0"
                                      : "SELECT 1");
        assert_people(other, rows);
        if (turn % 4 == 1)
            exec_ok(other, "PRAGMA wal_checkpoint(RESTART)");
    }
    sqlite3_close(conn[1]);
    fixture_close(vfs, conn[0]);
    assert_int_equal(fixture_open(ctx->db_path, &secret, &vfs, &conn[0], NULL, 0), 0);
    assert_people(conn[0], rows);
    fixture_close(vfs, conn[0]);
}

/* Two instances (two databases) at once: names differ and neither opens the other's file. */
static void test_open_two_instances(void **state)
{
    test_ctx *ctx = *state;
    char second[PATH_MAX];
    fixture_dir_path(&ctx->dir, "second.db", second);
    cryptvfs *v1, *v2;
    sqlite3 *d1, *d2;
    cryptvfs_secret a = fixture_secret(fixture_key_a);
    cryptvfs_secret b = fixture_secret(fixture_key_b);
    assert_int_equal(fixture_open(ctx->db_path, &a, &v1, &d1, NULL, 0), 0);
    assert_int_equal(fixture_open(second, &b, &v2, &d2, NULL, 0), 0);
    assert_string_not_equal(cryptvfs_name(v1), cryptvfs_name(v2));
    create_people(d1);
    insert_rows(d1, 0, 10);
    create_people(d2);
    insert_rows(d2, 0, 20);
    assert_people(d1, 10);
    assert_people(d2, 20);
    fixture_close(v2, d2);
    fixture_close(v1, d1);
    assert_int_equal(fixture_open(second, &a, &v2, &d2, NULL, 0), CRYPTVFS_EWRONGKEY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_wal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_rollback_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_utf16_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_wrong_key_is_clear_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_tampered_page_fails_integrity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_tampered_wal_frame_fails_integrity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_recovery_after_frame_rewrites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_swapped_pages_fails_integrity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_truncated_file_is_clear_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_plain_database_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_passphrase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rekey_switches_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rekey_rollback_journal_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_temp_files_stay_in_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attach_other_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vacuum_and_page_size_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_without_prepare_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_connections_interleave, setup, teardown),
        cmocka_unit_test(test_api_bad_arguments),
        cmocka_unit_test_setup_teardown(test_open_two_instances, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
