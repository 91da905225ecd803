/* Canary test for cryptvfs: a writer stores rows full of unique marker strings (as UTF-8 text,
 * as UTF-16 text, and as raw UTF-16LE/BE blobs), commits some, is SIGKILLed in the middle of a
 * large transaction that has spilled to the WAL or journal, and then every file in the database's
 * directory is searched for every marker in UTF-8, UTF-16LE and UTF-16BE. Zero hits allowed.
 *
 * Two controls keep the test honest: the same writer on a plain SQLite database must produce
 * hits in all three encodings (the search works), and after the crash the encrypted database must
 * open with every committed marker row and none of the interrupted ones (the data was there). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "integration/canary_text.h"
#include "unit/cryptvfs_fixture.h"

#define COMMITTED_TXNS 5
#define ROWS_PER_TXN 40
#define COMMITTED_ROWS (COMMITTED_TXNS * ROWS_PER_TXN)
#define MAX_PENDING_ROWS 100000
#define MARKER_MAX 96

typedef struct scenario {
    const char *name;
    const char *journal_mode;
    const char *encoding;
    const char *side_file; /* must exist with content after the crash */
} scenario;

static const scenario scenarios[] = {
    { "wal-utf8", "WAL", "UTF-8", "-wal" },
    { "wal-utf16le", "WAL", "UTF-16le", "-wal" },
    { "wal-utf16be", "WAL", "UTF-16be", "-wal" },
    { "journal-utf8", "DELETE", "UTF-8", "-journal" },
};

/* Unique per scenario and row; the non-ASCII letters make the UTF-16 forms differ from
 * zero-padded ASCII. */
static void marker(char out[MARKER_MAX], size_t scenario_index, const char *phase, int row)
{
    snprintf(out, MARKER_MAX, "CANARY-%zu-%s-%05d-Zo\xc3\xab-\xc5\x81\xc3\xb3\x64\xc5\xba-\xe5\x85\x92",
             scenario_index, phase, row);
}

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* Inserts one marker row into both tables through every text path SQLite has. */
static int insert_marker_row(sqlite3_stmt *contact, sqlite3_stmt *outbox, size_t si,
                             const char *phase, int row)
{
    char m[MARKER_MAX], id[32];
    uint8_t le[2 * MARKER_MAX], be[2 * MARKER_MAX];
    marker(m, si, phase, row);
    size_t n_le = canary_utf16(m, le, false);
    size_t n_be = canary_utf16(m, be, true);
    snprintf(id, sizeof id, "%s-%d", phase, row);
    sqlite3_bind_text(contact, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(contact, 2, m, -1, SQLITE_TRANSIENT);
    /* native-order UTF-16 in, stored in the database's own encoding */
    sqlite3_bind_text16(contact, 3, le, (int)n_le, SQLITE_TRANSIENT);
    sqlite3_bind_blob(contact, 4, le, (int)n_le, SQLITE_TRANSIENT);
    sqlite3_bind_blob(outbox, 1, be, (int)n_be, SQLITE_TRANSIENT);
    sqlite3_bind_text(outbox, 2, m, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(contact) == SQLITE_DONE && sqlite3_step(outbox) == SQLITE_DONE ? 0 : -1;
    sqlite3_reset(contact);
    sqlite3_reset(outbox);
    return rc;
}

/* The writer. With `ready_fd` >= 0 it signals after the big transaction has spilled and keeps
 * writing until killed; with -1 it commits everything and returns (the plain control). */
static int write_markers(sqlite3 *db, size_t si, int ready_fd)
{
    const scenario *sc = &scenarios[si];
    char sql[256];
    snprintf(sql, sizeof sql,
             "PRAGMA encoding='%s'; PRAGMA journal_mode=%s; PRAGMA synchronous=FULL;"
             "PRAGMA cache_size=20;",
             sc->encoding, sc->journal_mode);
    if (exec(db, sql) != 0 ||
        exec(db, "CREATE TABLE contacts(id TEXT PRIMARY KEY, name TEXT, notes TEXT, raw BLOB);"
                 "CREATE INDEX contacts_name ON contacts(name);"
                 "CREATE TABLE outbox(seq INTEGER PRIMARY KEY, payload BLOB, summary TEXT);") != 0)
        return -1;
    sqlite3_stmt *contact = NULL, *outbox = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO contacts VALUES (?1, ?2, ?3, ?4)", -1, &contact,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO outbox(payload, summary) VALUES (?1, ?2)", -1, &outbox,
                           NULL) != SQLITE_OK)
        return -1;
    int rc = 0;
    for (int t = 0; t < COMMITTED_TXNS && rc == 0; t++) {
        rc = exec(db, "BEGIN");
        for (int r = 0; r < ROWS_PER_TXN && rc == 0; r++)
            rc = insert_marker_row(contact, outbox, si, "committed", t * ROWS_PER_TXN + r);
        if (rc == 0)
            rc = exec(db, "COMMIT");
    }
    if (rc == 0 && ready_fd >= 0) {
        rc = exec(db, "BEGIN");
        for (int r = 0; r < MAX_PENDING_ROWS && rc == 0; r++) {
            rc = insert_marker_row(contact, outbox, si, "pending", r);
            if (r == 300 && write(ready_fd, "!", 1) != 1)
                rc = -1;
        }
    }
    sqlite3_finalize(contact);
    sqlite3_finalize(outbox);
    return rc;
}

typedef struct hits {
    int utf8, utf16le, utf16be;
    char first[PATH_MAX + MARKER_MAX + 16];
} hits;

/* Needle `index` for scenario si: the marker prefix and suffix shared by every row (they catch
 * rows of any number, however far the killed writer got), then each row's whole marker. */
static void needle(char out[MARKER_MAX], size_t si, int index)
{
    if (index == 0)
        snprintf(out, MARKER_MAX, "CANARY-%zu-", si);
    else if (index == 1)
        snprintf(out, MARKER_MAX, "-Zo\xc3\xab-\xc5\x81\xc3\xb3\x64\xc5\xba-\xe5\x85\x92");
    else if (index < 2 + COMMITTED_ROWS)
        marker(out, si, "committed", index - 2);
    else
        marker(out, si, "pending", index - 2 - COMMITTED_ROWS);
}

static void scan_file(const char *path, size_t si, int pending_rows, hits *h)
{
    size_t size = 0;
    uint8_t *data = fixture_read_file(path, &size);
    assert_non_null(data);
    int needles = 2 + COMMITTED_ROWS + pending_rows;
    for (int i = 0; i < needles; i++) {
        char m[MARKER_MAX];
        uint8_t u16[2 * MARKER_MAX];
        needle(m, si, i);
        int found = 0;
        if (canary_contains(data, size, (const uint8_t *)m, strlen(m))) {
            h->utf8++;
            found = 1;
        }
        size_t n = canary_utf16(m, u16, false);
        if (canary_contains(data, size, u16, n)) {
            h->utf16le++;
            found = 1;
        }
        n = canary_utf16(m, u16, true);
        if (canary_contains(data, size, u16, n)) {
            h->utf16be++;
            found = 1;
        }
        if (found && !h->first[0])
            snprintf(h->first, sizeof h->first, "'%s' in %s", m, path);
    }
    free(data);
}

/* Every regular file in the directory, every marker, three encodings. */
static void scan_dir(const fixture_dir *dir, size_t si, int pending_rows, hits *h, int *out_files)
{
    memset(h, 0, sizeof *h);
    DIR *d = opendir(dir->path);
    assert_non_null(d);
    struct dirent *e;
    *out_files = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[PATH_MAX];
        fixture_dir_path(dir, e->d_name, path);
        scan_file(path, si, pending_rows, h);
        (*out_files)++;
    }
    closedir(d);
}

static void test_scanner_finds_markers_in_plain_database(void **state)
{
    (void)state;
    fixture_dir dir;
    assert_int_equal(fixture_dir_make(&dir), 0);
    char path[PATH_MAX];
    fixture_dir_path(&dir, "plain.db", path);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(write_markers(db, 0, -1), 0);
    sqlite3_close(db);
    hits h;
    int files;
    scan_dir(&dir, 0, 0, &h, &files);
    /* name column (UTF-8 database) and blobs: every marker in every encoding, plus the shared
     * prefix and suffix */
    assert_int_equal(h.utf8, COMMITTED_ROWS + 2);
    assert_int_equal(h.utf16le, COMMITTED_ROWS + 2);
    assert_int_equal(h.utf16be, COMMITTED_ROWS + 2);
    fixture_dir_remove(&dir);
}

static void run_crash_scenario(size_t si)
{
    const scenario *sc = &scenarios[si];
    fixture_dir dir;
    assert_int_equal(fixture_dir_make(&dir), 0);
    char path[PATH_MAX];
    fixture_dir_path(&dir, "replica.db", path);
    cryptvfs_secret secret = fixture_secret(fixture_key_a);

    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(ready[0]);
        cryptvfs *vfs;
        sqlite3 *db;
        if (fixture_open(path, &secret, &vfs, &db, NULL, 0) != 0)
            _exit(2);
        write_markers(db, si, ready[1]);
        _exit(3); /* reaching here means the writer failed before it was killed */
    }
    close(ready[1]);
    char byte = 0;
    ssize_t got = read(ready[0], &byte, 1);
    close(ready[0]);
    if (got == 1)
        usleep(20 * 1000); /* let the kill land while pages are being written */
    kill(child, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_int_equal(got, 1);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* The crash left the transaction's spill behind: the search covers real uncommitted data. */
    char side[PATH_MAX];
    fixture_join(side, path, sc->side_file);
    assert_true(fixture_file_size(side) > 4096);

    hits h;
    int files = 0;
    scan_dir(&dir, si, 2000, &h, &files);
    print_message("%s: %d files searched, hits utf8=%d utf16le=%d utf16be=%d\n", sc->name, files,
                  h.utf8, h.utf16le, h.utf16be);
    if (h.utf8 || h.utf16le || h.utf16be)
        fail_msg("%s: marker found on disk: %s", sc->name, h.first);
    assert_true(files >= 2);

    /* Reopened: every committed marker row, none of the interrupted transaction. */
    cryptvfs *vfs;
    sqlite3 *db;
    assert_int_equal(fixture_open(path, &secret, &vfs, &db, NULL, 0), 0);
    int rc;
    assert_int_equal(fixture_query_int(db, "SELECT count(*) FROM contacts", &rc), COMMITTED_ROWS);
    assert_int_equal(rc, SQLITE_OK);
    assert_int_equal(fixture_query_int(db, "SELECT count(*) FROM outbox", &rc), COMMITTED_ROWS);
    char m[MARKER_MAX];
    marker(m, si, "committed", COMMITTED_ROWS - 1);
    char *sql = sqlite3_mprintf("SELECT count(*) FROM contacts WHERE name = %Q AND notes = %Q",
                                m, m);
    assert_int_equal(fixture_query_int(db, sql, &rc), 1);
    sqlite3_free(sql);
    assert_int_equal(fixture_query_int(db, "SELECT count(*) FROM pragma_integrity_check "
                                           "WHERE integrity_check != 'ok'", &rc), 0);
    fixture_close(vfs, db);
    fixture_dir_remove(&dir);
}

static void test_crash_leaves_no_marker_wal_utf8(void **state)
{
    (void)state;
    run_crash_scenario(0);
}

static void test_crash_leaves_no_marker_wal_utf16le(void **state)
{
    (void)state;
    run_crash_scenario(1);
}

static void test_crash_leaves_no_marker_wal_utf16be(void **state)
{
    (void)state;
    run_crash_scenario(2);
}

static void test_crash_leaves_no_marker_rollback_journal(void **state)
{
    (void)state;
    run_crash_scenario(3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scanner_finds_markers_in_plain_database),
        cmocka_unit_test(test_crash_leaves_no_marker_wal_utf8),
        cmocka_unit_test(test_crash_leaves_no_marker_wal_utf16le),
        cmocka_unit_test(test_crash_leaves_no_marker_wal_utf16be),
        cmocka_unit_test(test_crash_leaves_no_marker_rollback_journal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
