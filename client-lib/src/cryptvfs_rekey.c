/* cryptvfs rekeying: copy under the new key, then one atomic rename.
 *
 * Order of events and what a crash at each point leaves:
 *   1. stale "<db>-rekey" removed              old database untouched: old secret
 *   2. old database checkpointed (WAL emptied)  old database complete: old secret
 *   3. "<db>-rekey" written through SQLite's backup API under the new secret (fresh salt),
 *      committed with synchronous=FULL and fsynced   old database untouched: old secret
 *   4. old database closed; its WAL and journal checked empty      old secret
 *   5. rename("<db>-rekey", "<db>"), directory fsynced               new secret
 * The rename is the single switch point, so the file at <db> is always one whole database under
 * one secret, never a mixture.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cryptvfs_int.h"

typedef struct rekey_state {
    const char *db_path;
    char *copy_path;
    char *msg;
    size_t msg_size;
    cryptvfs *old_vfs;
    cryptvfs *new_vfs;
    sqlite3 *old_db;
    sqlite3 *new_db;
} rekey_state;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int fail_with(rekey_state *s, int code, const char *fmt, ...)
{
    if (s->msg && s->msg_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->msg, s->msg_size, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int fail_from_vfs(rekey_state *s, cryptvfs *vfs, int code, const char *what)
{
    char detail[CRYPTVFS_ERRMSG_SIZE];
    cryptvfs_last_error(vfs, detail, sizeof detail);
    return fail_with(s, code, "%s: %s%s%s", what, cryptvfs_strerror(code), detail[0] ? ": " : "",
                     detail);
}

static int remove_if_present(const char *path)
{
    return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

static int remove_copy_files(const char *copy_path)
{
    static const char *const suffixes[] = { "", "-journal", "-wal", "-shm" };
    int rc = 0;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char *path = sqlite3_mprintf("%s%s", copy_path, suffixes[i]);
        if (!path)
            return -1;
        if (remove_if_present(path) != 0)
            rc = -1;
        sqlite3_free(path);
    }
    return rc;
}

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int fsync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return fsync_path(".", O_RDONLY | O_DIRECTORY);
    if (slash == path)
        return fsync_path("/", O_RDONLY | O_DIRECTORY);
    char *dir = sqlite3_mprintf("%.*s", (int)(slash - path), path);
    if (!dir)
        return -1;
    int rc = fsync_path(dir, O_RDONLY | O_DIRECTORY);
    sqlite3_free(dir);
    return rc;
}

/* True when <db><suffix> exists with content: a WAL or hot journal the old database still needs. */
static int has_content(const char *db_path, const char *suffix)
{
    char *path = sqlite3_mprintf("%s%s", db_path, suffix);
    struct stat st;
    int result = path && stat(path, &st) == 0 && st.st_size > 0;
    sqlite3_free(path);
    return result;
}

static int copy_under_new_secret(rekey_state *s, const cryptvfs_secret *old_secret,
                                 const cryptvfs_secret *new_secret)
{
    int rc = cryptvfs_open(s->db_path, old_secret, &s->old_vfs);
    if (rc == 0)
        rc = cryptvfs_connect(s->old_vfs, SQLITE_OPEN_READWRITE, &s->old_db);
    if (rc != 0)
        return fail_from_vfs(s, s->old_vfs, rc, "opening the database with the old secret");
    if (sqlite3_exec(s->old_db, "PRAGMA wal_checkpoint(TRUNCATE);", NULL, NULL, NULL) != SQLITE_OK)
        return fail_with(s, CRYPTVFS_ESQLITE, "checkpointing the database: %s",
                         sqlite3_errmsg(s->old_db));

    rc = cryptvfs_open(s->copy_path, new_secret, &s->new_vfs);
    if (rc == 0)
        rc = cryptvfs_connect(s->new_vfs, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &s->new_db);
    if (rc != 0)
        return fail_from_vfs(s, s->new_vfs, rc, "creating the re-encrypted copy");
    if (sqlite3_exec(s->new_db, "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL;", NULL,
                     NULL, NULL) != SQLITE_OK)
        return fail_with(s, CRYPTVFS_ESQLITE, "setting up the copy: %s",
                         sqlite3_errmsg(s->new_db));

    sqlite3_backup *backup = sqlite3_backup_init(s->new_db, "main", s->old_db, "main");
    if (!backup)
        return fail_with(s, CRYPTVFS_ESQLITE, "starting the copy: %s", sqlite3_errmsg(s->new_db));
    int step = sqlite3_backup_step(backup, -1);
    int finish = sqlite3_backup_finish(backup);
    if (step != SQLITE_DONE || finish != SQLITE_OK) {
        cryptvfs *culprit = cryptvfs_last_error(s->old_vfs, NULL, 0) ? s->old_vfs : s->new_vfs;
        int code = cryptvfs_last_error(culprit, NULL, 0);
        if (code != 0)
            return fail_from_vfs(s, culprit, code, "copying pages");
        return fail_with(s, CRYPTVFS_ESQLITE, "copying pages: %s", sqlite3_errmsg(s->new_db));
    }
    return 0;
}

/* Closes whatever is still open; returns nonzero if closing the copy failed. */
static int close_all(rekey_state *s)
{
    int rc = 0;
    if (s->new_db && sqlite3_close(s->new_db) != SQLITE_OK)
        rc = -1;
    s->new_db = NULL;
    cryptvfs_close(s->new_vfs);
    s->new_vfs = NULL;
    if (s->old_db && sqlite3_close(s->old_db) != SQLITE_OK)
        rc = -1;
    s->old_db = NULL;
    cryptvfs_close(s->old_vfs);
    s->old_vfs = NULL;
    return rc;
}

int cryptvfs_rekey(const char *db_path, const cryptvfs_secret *old_secret,
                   const cryptvfs_secret *new_secret, char *out_msg, size_t msg_size)
{
    rekey_state s = { .db_path = db_path, .msg = out_msg, .msg_size = msg_size };
    int rc;
    struct stat st;

    if (out_msg && msg_size > 0)
        out_msg[0] = '\0';
    if (!db_path || !old_secret || !new_secret)
        return fail_with(&s, CRYPTVFS_EINVAL, "missing path or secret");
    if (stat(db_path, &st) != 0 || st.st_size == 0)
        return fail_with(&s, CRYPTVFS_EINVAL, "no database at %s", db_path);
    s.copy_path = sqlite3_mprintf("%s-rekey", db_path);
    if (!s.copy_path)
        return fail_with(&s, CRYPTVFS_ENOMEM, "out of memory");
    if (remove_copy_files(s.copy_path) != 0) {
        rc = fail_with(&s, CRYPTVFS_EIO, "removing a stale %s: %s", s.copy_path, strerror(errno));
        goto done;
    }

    rc = copy_under_new_secret(&s, old_secret, new_secret);
    if (rc != 0)
        goto fail;
    if (close_all(&s) != 0) {
        rc = fail_with(&s, CRYPTVFS_ESQLITE, "closing the databases failed");
        goto fail;
    }
    if (fsync_path(s.copy_path, O_RDONLY) != 0) {
        rc = fail_with(&s, CRYPTVFS_EIO, "syncing %s: %s", s.copy_path, strerror(errno));
        goto fail;
    }
    /* A WAL or journal with content means another connection kept the old database open and
     * may have written after the copy: renaming now would lose that write. */
    if (has_content(db_path, "-wal") || has_content(db_path, "-journal")) {
        rc = fail_with(&s, CRYPTVFS_EINVAL,
                       "the database is still in use (its WAL or journal is not empty)");
        goto fail;
    }
    char *shm_path = sqlite3_mprintf("%s-shm", db_path);
    if (shm_path)
        remove_if_present(shm_path); /* wal-index of the old file: rebuilt on demand */
    sqlite3_free(shm_path);

    /* The copy was made under the umask: it takes the old file's mode (0600 for a replica). */
    if (chmod(s.copy_path, st.st_mode & 07777) != 0) {
        rc = fail_with(&s, CRYPTVFS_EIO, "setting the mode of %s: %s", s.copy_path,
                       strerror(errno));
        goto fail;
    }
    if (rename(s.copy_path, db_path) != 0) {
        rc = fail_with(&s, CRYPTVFS_EIO, "renaming %s: %s", s.copy_path, strerror(errno));
        goto fail;
    }
    if (fsync_parent_dir(db_path) != 0) {
        /* The rename happened; only its durability across power loss is in doubt. */
        rc = fail_with(&s, CRYPTVFS_EIO, "syncing the directory of %s: %s", db_path,
                       strerror(errno));
        goto done;
    }
    rc = 0;
    goto done;

fail:
    close_all(&s);
    remove_copy_files(s.copy_path);
done:
    sqlite3_free(s.copy_path);
    return rc;
}
