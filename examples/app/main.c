/*
 * The smallest app on an installed liboutpost: opens an encrypted replica, writes a note to an
 * app-local table through the library, reads it back with plain SQLite, and prints the
 * library's version and the replica's status. Built out of tree, against the installed files:
 *
 *   cc -o outpost-example main.c $(pkg-config --cflags --libs outpost)
 *   cmake -S . -B build -DCMAKE_PREFIX_PATH=PREFIX && cmake --build build   (find_package)
 *
 *   outpost-example DIR     makes DIR/example.db; prints what it did, exits 0 on success
 */
#include <stdio.h>
#include <string.h>

#include <outpost.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    char path[4096];
    if (snprintf(path, sizeof path, "%s/example.db", argv[1]) >= (int)sizeof path) {
        fprintf(stderr, "%s: directory name too long\n", argv[0]);
        return 2;
    }
    /* A real app takes its key from the platform keystore (docs/encryption.md). */
    static const uint8_t key[OUTPOST_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    outpost_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.path = path;
    cfg.secret.key = key;
    outpost_replica *r = NULL;
    char err[256];
    int rc = outpost_replica_open(&cfg, &r, err, sizeof err);
    if (rc != OUTPOST_OK) {
        fprintf(stderr, "open: %s (%s)\n", err, outpost_strerror(rc));
        return 1;
    }
    const char *text = "hello from an installed liboutpost";
    outpost_value note = {.type = OUTPOST_VALUE_TEXT};
    note.u.b.p = (const uint8_t *)text;
    note.u.b.n = (uint32_t)strlen(text);
    if (outpost_exec(r, "CREATE TABLE IF NOT EXISTS notes (body TEXT)", NULL, 0) != OUTPOST_OK ||
        outpost_exec(r, "INSERT INTO notes (body) VALUES (?1)", &note, 1) != OUTPOST_OK) {
        fprintf(stderr, "write: %s\n", outpost_errmsg(r));
        outpost_replica_close(r);
        return 1;
    }
    sqlite3_stmt *stmt = NULL;
    rc = sqlite3_prepare_v2(outpost_replica_db(r), "SELECT body FROM notes ORDER BY rowid DESC",
                            -1, &stmt, NULL);
    if (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
        printf("read back: %s\n", (const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    outpost_status st;
    if (outpost_status_get(r, &st) == OUTPOST_OK)
        printf("pending entries: %llu\n", (unsigned long long)st.pending);
    printf("liboutpost %s (built against %s)\n", outpost_version(), OUTPOST_VERSION_STRING);
    outpost_replica_close(r);
    return 0;
}
