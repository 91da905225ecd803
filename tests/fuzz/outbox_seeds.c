/*
 * Writes the seed corpus of fuzz_outbox_decode: changesets made by SQLite's session extension
 * (sqlite3session_changeset(), as the replica captures them) for tables of every value kind, then
 * cuts and bit flips of them, and a NaN SQLite would never write.
 *   outbox_seeds DIR     writes DIR/outbox/ (tests/fuzz/corpus/ in the tree)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

static const char *schema =
    "CREATE TABLE kinds(id TEXT PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, n);"
    "CREATE TABLE pair(v, k1 INTEGER, k2 TEXT, PRIMARY KEY(k2, k1)) WITHOUT ROWID;"
    "CREATE TABLE untyped(k PRIMARY KEY, v) WITHOUT ROWID;"
    "CREATE TABLE rid(id INTEGER PRIMARY KEY, v);"
    "INSERT INTO kinds VALUES('old', 1, 1.5, 'o', x'01', NULL), ('gone', 2, 2.5, 'g', x'02', 7);"
    "INSERT INTO pair VALUES('p', -7, 'q');"
    "INSERT INTO untyped VALUES(1, 'one');"
    "INSERT INTO rid VALUES(1, 'a');";

/* One session each: what the changeset of that transaction holds. */
static const struct {
    const char *name;
    const char *sql;
} sessions[] = {
    {"insert-ints", "INSERT INTO kinds(id, i) VALUES('a', 0), ('b', -1), ('c', 127), ('d', 128),"
                    " ('e', 9223372036854775807), ('f', -9223372036854775808);"},
    {"insert-reals", "INSERT INTO kinds(id, r) VALUES('a', 0.0), ('b', -0.0), ('c', 0.1),"
                     " ('d', 1e308 * 10), ('e', -1e308 * 10), ('f', 4.9e-324);"},
    {"insert-texts", "INSERT INTO kinds(id, t) VALUES('a', ''), ('b', 'été'),"
                     " ('c', substr(hex(zeroblob(100)), 1, 127)),"
                     " ('d', substr(hex(zeroblob(100)), 1, 200)),"
                     " ('e', 'nul' || char(0) || 'in');"},
    {"insert-long-text", "INSERT INTO kinds(id, t) VALUES('a', hex(zeroblob(10000)));"},
    {"insert-blobs", "INSERT INTO kinds(id, b) VALUES('a', x''), ('b', x'00ff'),"
                     " ('c', zeroblob(128)), ('d', zeroblob(300));"},
    {"insert-nulls", "INSERT INTO kinds VALUES('a', NULL, NULL, NULL, NULL, NULL);"},
    {"update-each-kind",
     "UPDATE kinds SET i = 3, r = -0.0, t = '', b = x'', n = 4 WHERE id = 'old';"},
    {"update-to-null", "UPDATE kinds SET r = NULL, t = NULL WHERE id = 'old';"},
    {"update-one-column", "UPDATE kinds SET n = 'text now' WHERE id = 'gone';"},
    {"delete", "DELETE FROM kinds WHERE id = 'gone';"},
    {"composite-key", "INSERT INTO pair VALUES(x'', 1, 'a'), (2.5, 2, '');"
                      "UPDATE pair SET v = 'changed' WHERE k1 = -7;"},
    {"composite-delete", "DELETE FROM pair WHERE k1 = -7;"},
    /* An untyped key from 1 to 1.0: SQLite writes an UPDATE whose new record holds the key. */
    {"key-type-change", "UPDATE untyped SET k = 1.0 WHERE k = 1;"},
    {"rowid-key",
     "INSERT INTO rid VALUES(2, 'b'), (-1, NULL); UPDATE rid SET v = 'c' WHERE id = 1;"},
    {"every-table", "INSERT INTO kinds(id, i, r, t, b) VALUES('x', 5, 0.5, 'x', x'05');"
                    "UPDATE pair SET v = 1 WHERE k1 = -7; INSERT INTO untyped VALUES('s', x'00');"
                    "DELETE FROM rid WHERE id = 1; DELETE FROM kinds WHERE id = 'old';"},
    /* The changes of test_client_outbox's test_outbox_changeset_decoded_as_sqlite_reads_it. */
    {"outbox-test-every-kind",
     "INSERT INTO kinds VALUES('r0', 0, 0.0, '', x'', NULL),"
     " ('r1', 1, -0.0, substr(hex(zeroblob(100)), 1, 200), x'7a', NULL),"
     " ('r2', -1, 0.1, 'été', NULL, NULL), ('r3', 127, -1e300, 'été', x'', NULL),"
     " ('r4', 128, 1e308 * 10, 'été', x'7a7a7a7a', NULL),"
     " ('r5', 9223372036854775807, 3.0, 'été', zeroblob(5), NULL),"
     " ('r6', -9223372036854775808, 0.0, 'été', zeroblob(6), NULL),"
     " ('r7', 1700000000000, -0.0, 'été', zeroblob(7), NULL);"
     "UPDATE kinds SET t = 'new', n = 4 WHERE id = 'old';"
     "UPDATE kinds SET r = NULL WHERE id = 'r1';"
     "INSERT INTO pair VALUES(x'', 1, 'a'), (2.5, 2, ''); DELETE FROM pair WHERE k1 = -7;"
     "UPDATE pair SET v = 'changed' WHERE k1 = 1;"},
};

enum { N_SESSIONS = sizeof sessions / sizeof sessions[0] };

static int write_seed(const char *dir, const char *name, const void *bytes, size_t n)
{
    char path[4096];
    int w = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= sizeof path)
        return -1;
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    size_t put = n ? fwrite(bytes, 1, n, f) : 0;
    if (fclose(f) != 0 || put != n) {
        perror(path);
        return -1;
    }
    return 0;
}

/* The changeset of one session running sql over a fresh database. */
static int capture(const char *sql, void **out, int *out_n)
{
    sqlite3 *db = NULL;
    sqlite3_session *ses = NULL;
    int rc = sqlite3_open(":memory:", &db);

    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, schema, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3session_create(db, "main", &ses);
    if (rc == SQLITE_OK)
        rc = sqlite3session_attach(ses, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3session_changeset(ses, out_n, out);
    if (rc != SQLITE_OK)
        fprintf(stderr, "outbox_seeds: %s\n", sqlite3_errmsg(db));
    sqlite3session_delete(ses);
    sqlite3_close(db);
    return rc == SQLITE_OK && *out_n > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    char dir[4096];

    if (argc != 2) {
        fprintf(stderr, "usage: outbox_seeds DIR (writes DIR/outbox/)\n");
        return 2;
    }
    int w = snprintf(dir, sizeof dir, "%s/outbox", argv[1]);
    if (w < 0 || (size_t)w >= sizeof dir || (mkdir(dir, 0755) != 0 && access(dir, W_OK) != 0)) {
        perror(dir);
        return 1;
    }
    uint64_t rng = 0x2545f4914f6cdd1du;
    for (int s = 0; s < N_SESSIONS; s++) {
        void *cs = NULL;
        int n = 0;
        char name[96];
        if (capture(sessions[s].sql, &cs, &n) != 0)
            return 1;
        const uint8_t *b = cs;
        int rc = write_seed(dir, sessions[s].name, b, (size_t)n);
        if (n > 4096) { /* the long text: its 3-byte varint is the point, not its cuts */
            sqlite3_free(cs);
            if (rc != 0)
                return 1;
            continue;
        }
        /* Cuts: after the header's first byte, inside the header, and through the records. */
        for (int k = 0; rc == 0 && k < 4; k++) {
            int cut = k == 0 ? 1 : k == 1 ? 3 : n * k / 4;
            snprintf(name, sizeof name, "%s-cut%d", sessions[s].name, cut);
            rc = write_seed(dir, name, b, (size_t)cut);
        }
        /* Bit flips at pseudo-random places (the same every run). */
        uint8_t *flip = malloc((size_t)n);
        for (int k = 0; rc == 0 && flip != NULL && k < 3; k++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            size_t at = (size_t)(rng % (uint64_t)n);
            memcpy(flip, b, (size_t)n);
            flip[at] ^= (uint8_t)(1u << (rng >> 60 & 7));
            snprintf(name, sizeof name, "%s-flip%zu", sessions[s].name, at);
            rc = write_seed(dir, name, flip, (size_t)n);
        }
        /* A NaN where SQLite wrote the real 0.5. */
        static const uint8_t half[] = {SQLITE_FLOAT, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0};
        for (int at = 0; rc == 0 && flip != NULL && at + 9 <= n; at++) {
            if (memcmp(b + at, half, sizeof half) != 0)
                continue;
            memcpy(flip, b, (size_t)n);
            flip[at + 1] = 0x7f;
            flip[at + 2] = 0xf8;
            snprintf(name, sizeof name, "%s-nan", sessions[s].name);
            rc = write_seed(dir, name, flip, (size_t)n);
            break;
        }
        free(flip);
        sqlite3_free(cs);
        if (rc != 0 || flip == NULL)
            return 1;
    }
    return 0;
}
