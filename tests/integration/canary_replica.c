/* Canary test through liboutpost: a child process writes records carrying unique marker strings
 * through every path the library stores data by (the app's writes with their outbox entries,
 * pulled rows, conflicts recorded from an ACK), with WAL on, then opens a large transaction,
 * keeps writing marked rows after SQLite has spilled them to the WAL, and is SIGKILLed there.
 * Every file in the replica's directory is then searched for every marker in UTF-8, UTF-16LE and
 * UTF-16BE: zero hits.
 *
 * Two controls keep the test honest: the same child on a replica opened with no_encryption must
 * leave every kind of marker findable (the search works and the data did reach the disk), and
 * the encrypted replica must open afterwards with every committed marker and none of the
 * interrupted transaction's. */
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "integration/canary_text.h"
#include "unit/client_fixture.h"

#define N_MARKED 10          /* records per committed path */
#define MIDTX_SIGNAL_AT 200  /* rows of the open transaction written before the parent is told */
#define MIDTX_MAX 100000     /* the child keeps writing until killed, at most this many */
#define MARKER_MAX 96

enum path { PATH_WRITE, PATH_UTF16LE, PATH_UTF16BE, PATH_PULL, PATH_MINE, PATH_WINNER, PATH_MIDTX,
            N_PATHS };
static const char *const path_names[N_PATHS] = {"write", "le16", "be16", "pull", "mine", "winner",
                                                "midtx"};

static const char *cols[] = {"id", "team_id", "name", "notes", "raw"};
static uint32_t pk0[] = {0};

/* Unique per path and record; the non-ASCII letters make the UTF-16 forms differ from
 * zero-padded ASCII. */
static void marker(char out[MARKER_MAX], enum path p, int i)
{
    snprintf(out, MARKER_MAX, "CANARY-%s-%05d-Zo\xc3\xab-\xc5\x81\xc3\xb3\x64\xc5\xba-\xe5\x85\x92",
             path_names[p], i);
}

#define INSERT "INSERT INTO contacts(id, team_id, name, notes, raw) VALUES(?1, 'team-a', ?2, ?3, ?4)"

/* One committed transaction per record: the notes hold a UTF-8 marker, name a UTF-16LE one as a
 * blob and raw a UTF-16BE one, so the outbox entry carries all three too. */
static int write_committed(outpost_replica *r)
{
    for (int i = 0; i < N_MARKED; i++) {
        char id[32], m8[MARKER_MAX], mle[MARKER_MAX], mbe[MARKER_MAX];
        uint8_t le[2 * MARKER_MAX], be[2 * MARKER_MAX];
        size_t n_le, n_be;

        snprintf(id, sizeof id, "w-%d", i);
        marker(m8, PATH_WRITE, i);
        marker(mle, PATH_UTF16LE, i);
        marker(mbe, PATH_UTF16BE, i);
        n_le = canary_utf16(mle, le, false);
        n_be = canary_utf16(mbe, be, true);
        outpost_value p[4] = {ov_text(id), ov_blob(le, (uint32_t)n_le), ov_text(m8), ov_blob(be, (uint32_t)n_be)};
        if (outpost_exec(r, INSERT, p, 4) != OUTPOST_OK)
            return -1;
    }
    return 0;
}

/* One ROWS page of marked rows, as the sync engine hands it over. */
static int apply_pulled(outpost_replica *r)
{
    char ids[N_MARKED][32], marks[N_MARKED][MARKER_MAX];
    proto_value vals[N_MARKED * 5];
    proto_table_rows tr = {.table = "contacts", .n_columns = 5, .n_rows = N_MARKED, .rows = vals,
                           .n_pk = 1};
    proto_rows page = {.cursor = 7, .n_tables = 1, .tables = &tr};

    for (int i = 0; i < N_MARKED; i++) {
        snprintf(ids[i], sizeof ids[i], "p-%d", i);
        marker(marks[i], PATH_PULL, i);
        vals[i * 5 + 0] = pv_text(ids[i]);
        vals[i * 5 + 1] = pv_text("team-a");
        vals[i * 5 + 2] = pv_text("pulled");
        vals[i * 5 + 3] = pv_text(marks[i]);
        vals[i * 5 + 4] = pv_null();
    }
    return outpost_rows_apply(r, &page) == OUTPOST_OK ? 0 : -1;
}

/* The server's ACK of the first entry with merge decisions whose values are markers: they land
 * in _outpost_conflicts. */
static int ack_with_conflicts(outpost_replica *r)
{
    char mine[N_MARKED][MARKER_MAX], winner[N_MARKED][MARKER_MAX];
    proto_value pk = pv_text("w-0");
    proto_conflict conflicts[N_MARKED];
    proto_ack ack = {.seq = 1, .server_seq = 8, .n_conflicts = N_MARKED, .conflicts = conflicts};

    for (int i = 0; i < N_MARKED; i++) {
        marker(mine[i], PATH_MINE, i);
        marker(winner[i], PATH_WINNER, i);
        conflicts[i] = (proto_conflict){.table = "contacts", .n_pk = 1, .pk = &pk, .col = 3,
                                        .kind = PROTO_CONFLICT_DATA, .mine = pv_text(mine[i]),
                                        .winner = pv_text(winner[i])};
    }
    return outpost_outbox_ack(r, &ack) == OUTPOST_OK ? 0 : -1;
}

/* The child: every path, then a transaction that spills to the WAL and never commits. Tells the
 * parent on ready_fd ('c') when everything committed is written and the transaction is open,
 * waits for a byte on go_fd (the parent measures the WAL), tells it again ('!') once the spill
 * has happened, and writes on until it is killed. */
static int child_run(const char *path, const uint8_t *key, int ready_fd, int go_fd)
{
    char go;

    proto_schema_table t = {.name = "contacts", .scope_col = "team_id", .n_columns = 5,
                            .columns = cols, .n_pk = 1, .pk = pk0,
                            .create_sql = "CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT"
                                          " NOT NULL, name, notes TEXT, raw BLOB)"};
    proto_schema schema = {.version = 1, .n_tables = 1, .tables = &t};
    outpost_config cfg = {.path = path, .secret.key = key, .no_encryption = key == NULL};
    outpost_replica *r = NULL;
    char err[256];

    if (outpost_replica_open(&cfg, &r, err, sizeof err) != OUTPOST_OK ||
        outpost_schema_install(r, &schema) != OUTPOST_OK ||
        /* A small page cache makes the open transaction spill to the WAL early. */
        sqlite3_exec(outpost_replica_db(r), "PRAGMA cache_size=8", NULL, NULL, NULL) != SQLITE_OK ||
        write_committed(r) != 0 || apply_pulled(r) != 0 || ack_with_conflicts(r) != 0 ||
        outpost_tx_begin(r) != OUTPOST_OK)
        return 1;
    if (write(ready_fd, "c", 1) != 1 || read(go_fd, &go, 1) != 1)
        return 1;
    for (int i = 0; i < MIDTX_MAX; i++) {
        char id[32], m[MARKER_MAX], notes[4 * MARKER_MAX];

        snprintf(id, sizeof id, "m-%d", i);
        marker(m, PATH_MIDTX, i);
        snprintf(notes, sizeof notes, "%s %s %s", m, m, m);
        outpost_value p[4] = {ov_text(id), ov_text("midtx"), ov_text(notes), ov_null()};
        if (outpost_exec(r, INSERT, p, 4) != OUTPOST_OK)
            return 1;
        if (i == MIDTX_SIGNAL_AT && write(ready_fd, "!", 1) != 1)
            return 1;
    }
    return 1; /* never reached before the kill */
}

static off_t file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Runs the child on a fresh replica in dir and kills it mid-transaction. Proves the fault
 * landed where the test needs it: the WAL grew between the end of the committed writes and the
 * kill, so the open transaction's frames are on disk (encrypted or not) when the child dies. */
static void run_and_kill(const char *path, const uint8_t *key)
{
    int ready[2], go[2], status = 0;
    char byte = 0, wal[320];
    off_t wal_committed, wal_midtx;
    pid_t pid;

    snprintf(wal, sizeof wal, "%s-wal", path);
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        close(go[1]);
        _exit(child_run(path, key, ready[1], go[0]));
    }
    close(ready[1]);
    close(go[0]);
    assert_int_equal(read(ready[0], &byte, 1), 1);
    assert_int_equal(byte, 'c');
    wal_committed = file_size(wal);
    assert_int_equal(write(go[1], "g", 1), 1);
    assert_int_equal(read(ready[0], &byte, 1), 1);
    assert_int_equal(byte, '!');
    wal_midtx = file_size(wal);
    close(ready[0]);
    close(go[1]);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    if (wal_midtx <= wal_committed)
        fail_msg("the open transaction wrote no WAL frames before the kill (WAL %lld bytes "
                 "after the commits, %lld at the kill)",
                 (long long)wal_committed, (long long)wal_midtx);
    assert_true(file_size(wal) >= wal_midtx);
}

typedef struct dir_bytes {
    char names[16][256];
    uint8_t *data[16];
    size_t size[16];
    int n;
} dir_bytes;

/* Every file of dir read into memory. */
static void dir_read(const char *dir, dir_bytes *out)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    memset(out, 0, sizeof *out);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        char name[512];
        struct stat st;
        FILE *fp;

        if (de->d_name[0] == '.')
            continue;
        assert_true(out->n < 16);
        snprintf(name, sizeof name, "%s/%s", dir, de->d_name);
        assert_int_equal(stat(name, &st), 0);
        snprintf(out->names[out->n], sizeof out->names[out->n], "%s", de->d_name);
        out->size[out->n] = (size_t)st.st_size;
        out->data[out->n] = malloc(out->size[out->n] + 1);
        assert_non_null(out->data[out->n]);
        fp = fopen(name, "rb");
        assert_non_null(fp);
        assert_int_equal(fread(out->data[out->n], 1, out->size[out->n], fp), out->size[out->n]);
        fclose(fp);
        out->n++;
    }
    closedir(d);
}

static void dir_free(dir_bytes *db)
{
    for (int i = 0; i < db->n; i++)
        free(db->data[i]);
}

static size_t dir_size_of(const dir_bytes *db, const char *name)
{
    for (int i = 0; i < db->n; i++) {
        if (strcmp(db->names[i], name) == 0)
            return db->size[i];
    }
    return 0;
}

/* How many of the markers of path p (records 0..n-1) occur in some file of db in the given
 * encoding (0 UTF-8, 1 UTF-16LE, 2 UTF-16BE). */
static int markers_found(const dir_bytes *db, enum path p, int n, int encoding)
{
    int found = 0;

    for (int i = 0; i < n; i++) {
        char m[MARKER_MAX];
        uint8_t needle[2 * MARKER_MAX];
        size_t n_needle;

        marker(m, p, i);
        if (encoding == 0) {
            n_needle = strlen(m);
            memcpy(needle, m, n_needle);
        } else {
            n_needle = canary_utf16(m, needle, encoding == 2);
        }
        for (int f = 0; f < db->n; f++) {
            if (canary_contains(db->data[f], db->size[f], needle, n_needle)) {
                found++;
                break;
            }
        }
    }
    return found;
}

static void make_dir(char *dir, size_t size, char *path, size_t path_size)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(dir, size, "%s/outpost-canary-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(path, path_size, "%s/replica.db", dir);
}

static void remove_dir(const char *dir, const char *path)
{
    assert_int_equal(outpost_files_wipe(path, NULL, 0), OUTPOST_OK);
    assert_int_equal(rmdir(dir), 0);
}

/* Markers the search must see in the plain control, per path and encoding. */
static const struct {
    enum path path;
    int encoding;
} expected_in_plain[] = {
    {PATH_WRITE, 0}, {PATH_UTF16LE, 1}, {PATH_UTF16BE, 2}, {PATH_PULL, 0},
    {PATH_MINE, 0},  {PATH_WINNER, 0},
};

static void test_canary_plain_replica_shows_every_marker(void **state)
{
    char dir[256], path[300];
    dir_bytes files;

    (void)state;
    make_dir(dir, sizeof dir, path, sizeof path);
    run_and_kill(path, NULL);
    dir_read(dir, &files);
    assert_true(dir_size_of(&files, "replica.db-wal") > 0);
    for (size_t i = 0; i < sizeof expected_in_plain / sizeof *expected_in_plain; i++) {
        int found = markers_found(&files, expected_in_plain[i].path, N_MARKED,
                                  expected_in_plain[i].encoding);
        if (found == 0)
            fail_msg("plain control: no %s marker on disk", path_names[expected_in_plain[i].path]);
    }
    /* The interrupted transaction reached the WAL too: the spill really happened. */
    assert_true(markers_found(&files, PATH_MIDTX, MIDTX_SIGNAL_AT, 0) > 0);
    dir_free(&files);
    remove_dir(dir, path);
}

static void test_canary_encrypted_replica_leaks_no_marker(void **state)
{
    char dir[256], path[300], err[256] = "";
    outpost_config cfg = {.path = path, .secret.key = fx_test_key};
    outpost_replica *r = NULL;
    dir_bytes files;
    int hits = 0;

    (void)state;
    make_dir(dir, sizeof dir, path, sizeof path);
    run_and_kill(path, fx_test_key);
    dir_read(dir, &files);
    assert_true(dir_size_of(&files, "replica.db-wal") > 0);
    for (int p = 0; p < N_PATHS; p++) {
        int n = p == PATH_MIDTX ? MIDTX_SIGNAL_AT : N_MARKED;

        for (int encoding = 0; encoding < 3; encoding++) {
            int found = markers_found(&files, (enum path)p, n, encoding);

            if (found > 0)
                fprintf(stderr, "LEAK: %d %s markers in encoding %d\n", found, path_names[p],
                        encoding);
            hits += found;
        }
    }
    dir_free(&files);
    assert_int_equal(hits, 0);

    /* The data was there: every committed record opens, the interrupted transaction is gone. */
    assert_int_equal(outpost_replica_open(&cfg, &r, err, sizeof err), OUTPOST_OK);
    fixture view = {.r = r};
    assert_int_equal(fx_query_int(&view, "SELECT count(*) FROM contacts WHERE notes LIKE 'CANARY-write-%'"),
                     N_MARKED);
    assert_int_equal(fx_query_int(&view, "SELECT count(*) FROM contacts WHERE notes LIKE 'CANARY-pull-%'"),
                     N_MARKED);
    assert_int_equal(fx_query_int(&view, "SELECT count(*) FROM _outpost_conflicts"
                                         " WHERE mine LIKE 'CANARY-mine-%' AND winner LIKE 'CANARY-winner-%'"),
                     N_MARKED);
    assert_int_equal(fx_query_int(&view, "SELECT count(*) FROM contacts WHERE id LIKE 'm-%'"), 0);
    assert_int_equal(fx_query_int(&view, "SELECT count(*) FROM _outpost_outbox"), N_MARKED - 1);
    outpost_replica_close(r);
    remove_dir(dir, path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canary_plain_replica_shows_every_marker),
        cmocka_unit_test(test_canary_encrypted_replica_leaks_no_marker),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
