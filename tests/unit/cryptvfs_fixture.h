/* Helpers shared by the cryptvfs tests: scratch directories, keys, opening, file surgery.
 * Header-only (static functions) so each test program stays one translation unit plus this. */
#ifndef OUTPOST_TESTS_CRYPTVFS_FIXTURE_H
#define OUTPOST_TESTS_CRYPTVFS_FIXTURE_H

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cryptvfs.h"

static const uint8_t fixture_key_a[CRYPTVFS_KEY_BYTES] = {
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,
    0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0,
};
static const uint8_t fixture_key_b[CRYPTVFS_KEY_BYTES] = {
    0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f,
    0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10, 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01,
};

typedef struct fixture_dir {
    char path[PATH_MAX];
} fixture_dir;

/* A fresh empty directory under $TMPDIR (or /tmp); 0 on success. */
static inline int fixture_dir_make(fixture_dir *dir)
{
    const char *base = getenv("TMPDIR");
    if (snprintf(dir->path, sizeof dir->path, "%s/outpost-cryptvfs-XXXXXX",
                 base && *base ? base : "/tmp") >= (int)sizeof dir->path)
        return -1;
    return mkdtemp(dir->path) ? 0 : -1;
}

/* out = a + b; paths here are short, so an overlong one is a broken test machine. */
static inline void fixture_join(char out[PATH_MAX], const char *a, const char *b)
{
    if (snprintf(out, PATH_MAX, "%s%s", a, b) >= PATH_MAX)
        abort();
}

static inline void fixture_dir_path(const fixture_dir *dir, const char *name, char out[PATH_MAX])
{
    if (snprintf(out, PATH_MAX, "%s/%s", dir->path, name) >= PATH_MAX)
        abort();
}

/* Removes every file in the (flat) directory, then the directory. */
static inline void fixture_dir_remove(fixture_dir *dir)
{
    DIR *d = opendir(dir->path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[PATH_MAX];
        fixture_dir_path(dir, e->d_name, path);
        unlink(path);
    }
    closedir(d);
    rmdir(dir->path);
}

static inline cryptvfs_secret fixture_secret(const uint8_t *key)
{
    cryptvfs_secret secret = { .key = key };
    return secret;
}

/* cryptvfs_open + cryptvfs_connect; on failure both outputs are NULL and the code is returned,
 * with the instance's message in msg (if given). */
static inline int fixture_open(const char *path, const cryptvfs_secret *secret, cryptvfs **out_vfs,
                        sqlite3 **out_db, char *msg, size_t msg_size)
{
    *out_vfs = NULL;
    *out_db = NULL;
    int rc = cryptvfs_open(path, secret, out_vfs);
    if (rc == 0)
        rc = cryptvfs_connect(*out_vfs, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, out_db);
    if (rc != 0) {
        if (msg)
            cryptvfs_last_error(*out_vfs, msg, msg_size);
        cryptvfs_close(*out_vfs);
        *out_vfs = NULL;
    }
    return rc;
}

static inline void fixture_close(cryptvfs *vfs, sqlite3 *db)
{
    sqlite3_close(db);
    cryptvfs_close(vfs);
}

static inline long long fixture_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* XORs one byte of a file in place; 0 on success. */
static inline int fixture_flip_byte(const char *path, long long offset, uint8_t mask)
{
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return -1;
    uint8_t b;
    int rc = -1;
    if (pread(fd, &b, 1, (off_t)offset) == 1) {
        b ^= mask;
        rc = pwrite(fd, &b, 1, (off_t)offset) == 1 ? 0 : -1;
    }
    close(fd);
    return rc;
}

/* Reads a whole file into a malloc'd buffer; NULL on failure. */
static inline uint8_t *fixture_read_file(const char *path, size_t *out_size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *data = NULL;
    size_t size = 0, cap = 0;
    for (;;) {
        if (size == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *grown = realloc(data, cap);
            if (!grown) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = grown;
        }
        size_t n = fread(data + size, 1, cap - size, f);
        size += n;
        if (n == 0)
            break;
    }
    fclose(f);
    *out_size = size;
    return data;
}

/* Runs SQL that returns one integer; -1 with *out_rc set on failure. */
static inline long long fixture_query_int(sqlite3 *db, const char *sql, int *out_rc)
{
    sqlite3_stmt *stmt = NULL;
    long long value = -1;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            value = sqlite3_column_int64(stmt, 0);
            rc = SQLITE_OK;
        }
    }
    if (rc != SQLITE_OK)
        rc = sqlite3_extended_errcode(db);
    sqlite3_finalize(stmt);
    if (out_rc)
        *out_rc = rc;
    return value;
}

#endif
