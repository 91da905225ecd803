/*
 * A store's life: its identity and epoch, online backup, restore (which starts a new epoch), and
 * the lock that lets only one outpostd serve a store.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "forms.h"
#include "store_internal.h"

const char store_identity_ddl[] =
    "CREATE TABLE IF NOT EXISTS _outpost_store("
    "  one INTEGER PRIMARY KEY CHECK (one = 1), store_id TEXT NOT NULL,"
    "  epoch INTEGER NOT NULL CHECK (epoch >= 1))";

static void err_set(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err_set(char *err, size_t err_size, const char *fmt, ...)
{
    if (err == NULL || err_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* ---- identity ------------------------------------------------------------------------------ */

static int identity_read(store *st, store_identity *out, bool *out_found)
{
    memset(out, 0, sizeof *out);
    *out_found = false;
    db_stmt *s = NULL;
    int rc = db_prepare(st->conn, "SELECT store_id, epoch FROM _outpost_store WHERE one = 1",
                        &s);
    if (rc != STORE_OK) {
        /* No such table: a store made before identities existed. */
        db_finalize(s);
        return 0;
    }
    rc = db_step(s);
    if (rc == DB_ROW) {
        snprintf(out->id, sizeof out->id, "%s", db_column_text(s, 0));
        out->epoch = (uint64_t)db_column_int64(s, 1);
        *out_found = true;
        rc = DB_DONE;
    }
    db_finalize(s);
    return rc == DB_DONE ? 0 : store_fail_db(st, rc, "read the store's identity");
}

static int identity_write(store *st, const store_identity *identity)
{
    db_stmt *s = NULL;
    int rc = db_prepare(st->conn, "INSERT INTO _outpost_store VALUES(1, ?1, ?2) ON CONFLICT(one)"
                        " DO UPDATE SET store_id = excluded.store_id, epoch = excluded.epoch",
                        &s);
    if (rc == STORE_OK) {
        db_bind_text(s, 1, identity->id);
        db_bind_int64(s, 2, (int64_t)identity->epoch);
        rc = db_step(s);
    }
    db_finalize(s);
    return rc == DB_DONE ? 0 : store_fail_db(st, rc, "write the store's identity");
}

int store_identity_ensure(store *st, bool *out_created)
{
    store_identity identity;
    bool found = false;
    *out_created = false;
    int out = identity_read(st, &identity, &found);
    if (out != 0 || found)
        return out;
    out = store_begin(st, true);
    if (out == 0)
        out = store_exec(st, store_identity_ddl, "create the store's identity");
    if (out == 0)
        out = identity_read(st, &identity, &found); /* another process may have been first */
    if (out == 0 && !found) {
        identity.epoch = 1;
        out = store_random_uuid(st, identity.id);
        if (out == 0)
            out = identity_write(st, &identity);
        *out_created = out == 0;
    }
    if (out == 0)
        return store_commit(st);
    store_rollback(st);
    *out_created = false;
    return out;
}

int store_identity_get(store *st, store_identity *out_identity)
{
    bool found = false;
    int out = identity_read(st, out_identity, &found);
    if (out == 0 && !found)
        out = store_fail(st, STORE_EIO, "the store has no identity");
    return out;
}

/* ---- backup -------------------------------------------------------------------------------- */

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* The directory holding path, so that a rename in it is durable. */
static void fsync_dir_of(const char *path)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
    (void)fsync_path(dir);
}

int store_backup(store *st, const char *path)
{
    if (path == NULL || path[0] == 0)
        return store_fail(st, STORE_EINVAL, "no backup file given");
    /* Created here, empty and 0600, so that the copy is never readable by others; VACUUM INTO
     * accepts an empty file. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return store_fail(st, errno == EEXIST ? STORE_EEXISTS : STORE_EIO,
                          "cannot create %s: %s%s", path, strerror(errno),
                          errno == EEXIST ? " (a backup never overwrites a file)" : "");
    close(fd);
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, "VACUUM INTO ?1", -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
    }
    sqlite3_finalize(s);
    int out = 0;
    if (rc != SQLITE_DONE)
        out = store_fail_sqlite(st, rc, "backup");
    else if (fsync_path(path) != 0)
        out = store_fail(st, STORE_EIO, "backup: cannot flush %s: %s", path, strerror(errno));
    if (out != 0) {
        unlink(path);
        return out;
    }
    fsync_dir_of(path);
    return 0;
}

/* ---- the one-daemon lock ------------------------------------------------------------------- */

/* The store's own path, links resolved, so that the lock and a restore name the file that is
 * served however it is reached (a symbolic link, a relative path). When the store itself does
 * not exist (a dead disk), its folder is resolved and its name kept. False when too long or the
 * folder does not exist. */
static bool canonical_path(const char *path, char *out, size_t size)
{
    char resolved[PATH_MAX];
    if (realpath(path, resolved) != NULL)
        return snprintf(out, size, "%s", resolved) < (int)size;
    if (errno != ENOENT)
        return false;
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path) >= (int)sizeof dir)
        return false;
    if (dir[0] == '\0')
        snprintf(dir, sizeof dir, "/");
    if (realpath(dir, resolved) == NULL)
        return false;
    return snprintf(out, size, "%s/%s", strcmp(resolved, "/") ? resolved : "",
                    slash ? slash + 1 : path) < (int)size;
}

int store_lock_acquire(const char *store_path, store_lock *out, char *err, size_t err_size)
{
    char lock_path[512], canonical[512];
    out->lock_fd = -1;
    out->store_fd = -1;
    if (!canonical_path(store_path, canonical, sizeof canonical)) {
        err_set(err, err_size, "cannot resolve the store path %s: %s", store_path,
                errno ? strerror(errno) : "too long");
        return STORE_EINVAL;
    }
    if (snprintf(lock_path, sizeof lock_path, "%s.lock", canonical) >= (int)sizeof lock_path) {
        err_set(err, err_size, "store path too long");
        return STORE_EINVAL;
    }
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        err_set(err, err_size, "cannot open the store lock %s: %s", lock_path, strerror(errno));
        return STORE_EIO;
    }
    /* Made by root (a restore) for a store a service account runs: the account must open it. */
    struct stat sb;
    if (geteuid() == 0 && stat(canonical, &sb) == 0 && fchown(fd, sb.st_uid, sb.st_gid) != 0) {
        err_set(err, err_size, "cannot give %s the store's owner: %s", lock_path, strerror(errno));
        close(fd);
        return STORE_EIO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char holder[32] = "";
        ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = 0;
        holder[strcspn(holder, "\n")] = 0;
        close(fd);
        if (e == EWOULDBLOCK) {
            err_set(err, err_size,
                    "another process (pid %s) holds the store lock %s: an outpostd already "
                    "serves this store, and only one may",
                    holder[0] ? holder : "unknown", lock_path);
            return STORE_EBUSY;
        }
        err_set(err, err_size, "cannot lock %s: %s", lock_path, strerror(e));
        return STORE_EIO;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* The pid is only for the message above; the lock itself holds. */
    }
    /* STORE.lock goes by the path; the store file's own lock goes by the file (its inode), so
     * a hard link or a bind mount of the file, whose STORE.lock is another file, is refused. */
    int store_fd = open(canonical, O_RDONLY | O_CLOEXEC);
    if (store_fd < 0 && errno != ENOENT) {
        err_set(err, err_size, "cannot open the store %s to lock it: %s", canonical,
                strerror(errno));
        close(fd);
        return STORE_EIO;
    }
    if (store_fd >= 0 && flock(store_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(store_fd);
        close(fd);
        if (e == EWOULDBLOCK) {
            err_set(err, err_size,
                    "another process holds a lock on the store file %s (reached through another "
                    "path: a hard link or a bind mount): an outpostd already serves this store, "
                    "and only one may",
                    canonical);
            return STORE_EBUSY;
        }
        err_set(err, err_size, "cannot lock %s: %s", canonical, strerror(e));
        return STORE_EIO;
    }
    out->lock_fd = fd;
    out->store_fd = store_fd;
    return 0;
}

void store_lock_release(store_lock *lock)
{
    if (!lock)
        return;
    /* releases the flocks; the lock file stays, empty of meaning */
    if (lock->store_fd >= 0)
        close(lock->store_fd);
    if (lock->lock_fd >= 0)
        close(lock->lock_fd);
    lock->store_fd = -1;
    lock->lock_fd = -1;
}

/* ---- restore ------------------------------------------------------------------------------- */

static int copy_file(const char *from, const char *to, char *err, size_t err_size)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        err_set(err, err_size, "cannot read the backup %s: %s", from, strerror(errno));
        return errno == ENOENT ? STORE_ENOTFOUND : STORE_EIO;
    }
    int outfd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (outfd < 0) {
        err_set(err, err_size, "cannot create %s: %s", to, strerror(errno));
        close(in);
        return STORE_EIO;
    }
    char buf[65536];
    int out = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n == 0)
            break;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err_set(err, err_size, "cannot read the backup %s: %s", from, strerror(errno));
            out = STORE_EIO;
            break;
        }
        for (ssize_t at = 0; at < n;) {
            ssize_t w = write(outfd, buf + at, (size_t)(n - at));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                err_set(err, err_size, "cannot write %s: %s", to, strerror(errno));
                out = errno == ENOSPC ? STORE_EFULL : STORE_EIO;
                break;
            }
            at += w;
        }
        if (out != 0)
            break;
    }
    if (out == 0 && fsync(outfd) != 0) {
        err_set(err, err_size, "cannot flush %s: %s", to, strerror(errno));
        out = STORE_EIO;
    }
    close(in);
    close(outfd);
    return out;
}

typedef struct store_facts {
    store_identity identity;
    bool identity_created; /* it had none: made just now */
    int64_t server_seq;
    int64_t schema_version;
} store_facts;

static int read_facts(store *st, store_facts *out)
{
    int rc = store_identity_get(st, &out->identity);
    if (rc == 0)
        rc = store_meta_get(st, "server_seq", &out->server_seq);
    if (rc == 0)
        rc = store_meta_get(st, "schema_version", &out->schema_version);
    return rc;
}

/* Schemas the replaced store was given after the backup was taken, oldest first. */
typedef struct schema_steps {
    uint32_t n;
    int64_t *version;
    char **sql, **policy;
    char **forms; /* recorded with the version; NULL when it changed none */
} schema_steps;

static void schema_steps_free(schema_steps *steps)
{
    for (uint32_t i = 0; i < steps->n; i++) {
        free(steps->sql[i]);
        free(steps->policy[i]);
        free(steps->forms[i]);
    }
    free(steps->forms);
    free(steps->version);
    free(steps->sql);
    free(steps->policy);
    memset(steps, 0, sizeof *steps);
}

static int schema_steps_read(store *st, int64_t after, schema_steps *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db,
                                "SELECT version, schema_sql, policy_text"
                                " FROM _outpost_schema_versions WHERE version > ?1 ORDER BY version",
                                -1, &s, NULL);
    if (rc == SQLITE_OK)
        sqlite3_bind_int64(s, 1, after);
    int out_rc = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        uint32_t n = out->n + 1;
        int64_t *v = realloc(out->version, n * sizeof *v);
        if (v != NULL)
            out->version = v;
        char **q = realloc(out->sql, n * sizeof *q);
        if (q != NULL)
            out->sql = q;
        char **p = realloc(out->policy, n * sizeof *p);
        if (p != NULL)
            out->policy = p;
        char **f = realloc(out->forms, n * sizeof *f);
        if (f != NULL)
            out->forms = f;
        if (v == NULL || q == NULL || p == NULL || f == NULL) {
            out_rc = store_fail(st, STORE_ENOMEM, "out of memory");
            break;
        }
        out->version[out->n] = sqlite3_column_int64(s, 0);
        out->sql[out->n] = strdup((const char *)sqlite3_column_text(s, 1));
        out->policy[out->n] = strdup((const char *)sqlite3_column_text(s, 2));
        out->forms[out->n] = NULL;
        out->n = n;
        if (out->sql[n - 1] == NULL || out->policy[n - 1] == NULL) {
            out_rc = store_fail(st, STORE_ENOMEM, "out of memory");
            break;
        }
    }
    sqlite3_finalize(s);
    if (out_rc == 0 && rc != SQLITE_DONE)
        out_rc = store_fail_sqlite(st, rc, "read the schema history");
    for (uint32_t i = 0; out_rc == 0 && i < out->n; i++)
        out_rc = store_forms_recorded(st, (uint32_t)out->version[i], &out->forms[i]);
    if (out_rc != 0)
        schema_steps_free(out);
    return out_rc;
}

/* Gives the restored store the schemas the replaced one was upgraded to after the backup, in
 * order and with the same version numbers: devices already on them would be refused otherwise. */
static int schema_steps_apply(store *st, const schema_steps *steps)
{
    for (uint32_t i = 0; i < steps->n; i++) {
        int64_t have = 0;
        int out = store_meta_get(st, "schema_version", &have);
        if (out == 0)
            out = store_schema_replay(st, have == 0, steps->sql[i], steps->policy[i],
                                      steps->forms[i]);
        if (out == 0)
            out = store_meta_get(st, "schema_version", &have);
        if (out == 0 && have != steps->version[i])
            out = store_fail(st, STORE_ESCHEMA,
                             "replaying schema version %lld gave version %lld",
                             (long long)steps->version[i], (long long)have);
        if (out != 0)
            return out;
    }
    return 0;
}

/* Moves path (and any -wal / -shm beside it) to path.replaced-epoch-N. */
static int move_aside(const char *path, uint64_t epoch, char *out_path, size_t out_size,
                      char *err, size_t err_size)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char from[600], to[600];
        snprintf(from, sizeof from, "%s%s", path, suffixes[i]);
        snprintf(to, sizeof to, "%s.replaced-epoch-%llu%s", path, (unsigned long long)epoch,
                 suffixes[i]);
        if (i == 0)
            snprintf(out_path, out_size, "%s", to);
        if (rename(from, to) != 0 && errno != ENOENT) {
            err_set(err, err_size, "cannot move %s aside: %s", from, strerror(errno));
            return STORE_EIO;
        }
    }
    return 0;
}

int store_restore(const char *given_path, const char *backup_path, store_restore_info *out_info,
                  char *err, size_t err_size)
{
    memset(out_info, 0, sizeof *out_info);
    err_set(err, err_size, "restore failed");
    /* A link to the store is resolved: the file served is the one replaced, never the link. */
    char store_path[512];
    if (!canonical_path(given_path, store_path, sizeof store_path)) {
        err_set(err, err_size, "cannot resolve the store path %s", given_path);
        return STORE_EINVAL;
    }
    char tmp_path[512];
    if (snprintf(tmp_path, sizeof tmp_path, "%s.restoring", store_path) >= (int)sizeof tmp_path) {
        err_set(err, err_size, "store path too long");
        return STORE_EINVAL;
    }
    store_lock lock;
    int out = store_lock_acquire(store_path, &lock, err, err_size);
    if (out == STORE_EBUSY) {
        size_t len = strlen(err);
        snprintf(err + len, err_size - len, "; stop outpostd before restoring");
    }
    if (out != 0)
        return out;

    /* The backup is only read: it is copied first, and the copy is what gets opened. */
    store *bk = NULL, *cur = NULL;
    store_facts bf, cf;
    schema_steps steps = {0};
    memset(&bf, 0, sizeof bf);
    memset(&cf, 0, sizeof cf);
    out = copy_file(backup_path, tmp_path, err, err_size);
    if (out != 0)
        goto fail;
    /* Restored by root for a service account: the new store keeps the old one's owner, or the
     * service could no longer open it. */
    struct stat old_sb;
    if (geteuid() == 0 && stat(store_path, &old_sb) == 0 &&
        chown(tmp_path, old_sb.st_uid, old_sb.st_gid) != 0) {
        err_set(err, err_size, "cannot give %s the store's owner: %s", tmp_path, strerror(errno));
        out = STORE_EIO;
        goto fail;
    }
    char open_err[512];
    out = store_open(tmp_path, false, &bk, open_err, sizeof open_err);
    if (out != 0) {
        err_set(err, err_size, "%s is not a usable Outpost store backup: %s", backup_path,
                open_err);
        out = STORE_EINVAL;
        goto fail;
    }
    bf.identity_created = bk->identity_created;
    out = read_facts(bk, &bf);
    if (out != 0) {
        err_set(err, err_size, "backup %s: %s", backup_path, store_errmsg(bk));
        goto fail;
    }

    /* The store being replaced, when there is one and it still opens: its epoch and its newest
     * server sequence are what the restored store must go past. */
    bool have_cur = access(store_path, F_OK) == 0;
    if (have_cur) {
        out = store_open(store_path, false, &cur, open_err, sizeof open_err);
        if (out == 0) {
            cf.identity_created = cur->identity_created;
            out = read_facts(cur, &cf);
            if (out == 0)
                out = schema_steps_read(cur, bf.schema_version, &steps);
            if (out != 0)
                err_set(err, err_size, "store %s: %s", store_path, store_errmsg(cur));
            store_close(cur); /* the last connection: checkpoints and removes its WAL */
            cur = NULL;
        } else {
            err_set(err, err_size,
                    "the store %s does not open (%s); move it away first if it is damaged "
                    "beyond use, then restore again",
                    store_path, open_err);
        }
        if (out != 0)
            goto fail;
        if (strcmp(cf.identity.id, bf.identity.id) != 0) {
            if (!bf.identity_created) {
                err_set(err, err_size,
                        "%s is a backup of another store (%s), not of %s (%s): refusing to "
                        "replace one store with another",
                        backup_path, bf.identity.id, store_path, cf.identity.id);
                out = STORE_EINVAL;
                goto fail;
            }
            /* A backup made before identities existed belongs to the store it is restored to. */
            snprintf(bf.identity.id, sizeof bf.identity.id, "%s", cf.identity.id);
        }
    }

    out = schema_steps_apply(bk, &steps);
    if (out != 0) {
        err_set(err, err_size, "giving the restored store the replaced store's schema: %s",
                store_errmsg(bk));
        goto fail;
    }
    store_identity next = bf.identity;
    next.epoch = (bf.identity.epoch > cf.identity.epoch ? bf.identity.epoch : cf.identity.epoch) + 1;
    /* With no store to replace (a dead disk), earlier restores of this backup may have used
     * backup + 1 already: the clock in seconds is past any epoch counted up from 1. */
    if (!have_cur && next.epoch < store_now_ms() / 1000u)
        next.epoch = store_now_ms() / 1000u;
    int64_t next_seq = bf.server_seq > cf.server_seq ? bf.server_seq : cf.server_seq;
    out = store_begin(bk, true);
    if (out == 0)
        out = identity_write(bk, &next);
    if (out == 0)
        out = store_meta_set(bk, "server_seq", next_seq);
    /* Pulls leave out a row whose changes are all the pulling device's own (echo suppression).
     * After a restore that is no longer safe: the device may hold a later version, pulled from
     * another device before the restore, that the restored store lacks. Every row is sent again
     * at the devices' pulls from 0, so each replica returns to what the store holds. */
    if (out == 0)
        out = store_exec(bk, "UPDATE _outpost_rows SET echo_device = 0, echo_since = 0",
                         "clear echo suppression");
    if (out == 0)
        out = store_commit(bk);
    else
        store_rollback(bk);
    /* One self-contained file (no WAL beside it) is what gets renamed into place. */
    if (out == 0)
        out = store_exec(bk, "PRAGMA journal_mode=DELETE", "leave WAL mode");
    if (out != 0) {
        err_set(err, err_size, "preparing the restored store: %s", store_errmsg(bk));
        goto fail;
    }
    store_close(bk);
    bk = NULL;
    if (fsync_path(tmp_path) != 0) {
        err_set(err, err_size, "cannot flush %s: %s", tmp_path, strerror(errno));
        out = STORE_EIO;
        goto fail;
    }
    if (have_cur) {
        out = move_aside(store_path, cf.identity.epoch, out_info->replaced_path,
                         sizeof out_info->replaced_path, err, err_size);
        if (out != 0)
            goto fail;
    }
    if (rename(tmp_path, store_path) != 0) {
        err_set(err, err_size, "cannot put the restored store in place: %s", strerror(errno));
        out = STORE_EIO;
        goto fail;
    }
    fsync_dir_of(store_path);
    out_info->identity = next;
    out_info->backup_epoch = bf.identity.epoch;
    out_info->replaced_epoch = cf.identity.epoch;
    out_info->backup_server_seq = (uint64_t)bf.server_seq;
    out_info->server_seq = (uint64_t)next_seq;
    out_info->n_schema_upgrades = steps.n;
    schema_steps_free(&steps);
    if (err != NULL && err_size > 0)
        err[0] = 0;
    store_lock_release(&lock);
    return 0;

fail:
    schema_steps_free(&steps);
    store_close(bk);
    store_close(cur);
    unlink(tmp_path);
    char side[600];
    snprintf(side, sizeof side, "%s-wal", tmp_path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", tmp_path);
    unlink(side);
    store_lock_release(&lock);
    return out;
}

/* ---- a PostgreSQL store's place, and marking it restored ----------------------------------- */

/* Where a PostgreSQL store lives: its cluster (the system identifier initdb made, which a base
 * backup, a standby and so a failover keep), its database (the OID) and its metadata table (the
 * OID, new whenever the table is made again, as pg_restore does, --clean or not). */
typedef struct store_place {
    int64_t cluster, database, table;
} store_place;

static int place_here(store *st, store_place *out)
{
    db_stmt *s = NULL;
    int rc = db_prepare(st->conn,
                        "SELECT (SELECT system_identifier FROM pg_control_system()),"
                        " (SELECT CAST(oid AS BIGINT) FROM pg_database"
                        "   WHERE datname = current_database()),"
                        " CAST(CAST(to_regclass('_outpost_meta') AS oid) AS BIGINT)",
                        &s);
    if (rc == STORE_OK)
        rc = db_step(s);
    if (rc == DB_ROW) {
        out->cluster = db_column_int64(s, 0);
        out->database = db_column_int64(s, 1);
        out->table = db_column_int64(s, 2);
        rc = DB_DONE;
    }
    db_finalize(s);
    return rc == DB_DONE ? 0 : store_fail_db(st, rc, "ask PostgreSQL where the store lives");
}

static int place_recorded(store *st, store_place *out, bool *out_found)
{
    db_stmt *s = NULL;
    *out_found = false;
    int rc = db_prepare(st->conn,
                        "SELECT (SELECT value FROM _outpost_meta WHERE key = 'pg_cluster'),"
                        " (SELECT value FROM _outpost_meta WHERE key = 'pg_database'),"
                        " (SELECT value FROM _outpost_meta WHERE key = 'pg_meta_table')",
                        &s);
    if (rc == STORE_OK)
        rc = db_step(s);
    if (rc == DB_ROW) {
        *out_found = !db_column_is_null(s, 0) && !db_column_is_null(s, 1) &&
                     !db_column_is_null(s, 2);
        out->cluster = db_column_int64(s, 0);
        out->database = db_column_int64(s, 1);
        out->table = db_column_int64(s, 2);
        rc = DB_DONE;
    }
    db_finalize(s);
    return rc == DB_DONE ? 0 : store_fail_db(st, rc, "read where the store was last marked");
}

/* Sets keys[i] to values[i] in _outpost_meta, adding those missing. */
static int meta_put(store *st, const char *const *keys, const int64_t *values, size_t n)
{
    db_stmt *s = NULL;
    int rc = db_prepare(st->conn,
                        "INSERT INTO _outpost_meta(key, value) VALUES(?1, ?2)"
                        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        &s);
    for (size_t i = 0; rc == STORE_OK && i < n; i++) {
        db_bind_text(s, 1, keys[i]);
        db_bind_int64(s, 2, values[i]);
        rc = db_step(s);
        if (rc == DB_DONE)
            rc = db_reset(s);
    }
    db_finalize(s);
    return rc == STORE_OK ? 0 : store_fail_db(st, rc, "write store metadata");
}

/* Inside the caller's write transaction. */
static int place_record(store *st, const store_place *place)
{
    const char *const keys[] = {"pg_cluster", "pg_database", "pg_meta_table"};
    const int64_t values[] = {place->cluster, place->database, place->table};
    return meta_put(st, keys, values, sizeof keys / sizeof keys[0]);
}

/* What differs between where the store was marked and where it is, in words. */
static void place_compare(const store_place *was, const store_place *now, char *out, size_t size)
{
    out[0] = 0;
    if (was->cluster != now->cluster)
        snprintf(out, size,
                 "it was kept in another PostgreSQL cluster (system identifier %lld, this one is "
                 "%lld)",
                 (long long)was->cluster, (long long)now->cluster);
    else if (was->database != now->database)
        snprintf(out, size, "it was kept in another database of this cluster (OID %lld, this one "
                            "is %lld)",
                 (long long)was->database, (long long)now->database);
    else if (was->table != now->table)
        snprintf(out, size, "its tables were made again since (as pg_restore does)");
}

int store_place_open(store *st)
{
    store_place now, was;
    bool found = false;
    st->place_moved[0] = 0;
    if (store_engine_of(st) != DB_POSTGRESQL)
        return 0;
    int out = place_here(st, &now);
    if (out == 0)
        out = place_recorded(st, &was, &found);
    if (out != 0 || found) {
        if (out == 0)
            place_compare(&was, &now, st->place_moved, sizeof st->place_moved);
        return out;
    }
    /* Made just now, or before places were kept: this is where it lives. */
    out = store_begin(st, true);
    if (out == 0)
        out = place_recorded(st, &was, &found); /* another process may have been first */
    if (out == 0 && !found)
        out = place_record(st, &now);
    if (out == 0)
        return store_commit(st);
    store_rollback(st);
    return out;
}

bool store_restore_unmarked(const store *st, char *why, size_t why_size)
{
    if (why != NULL && why_size > 0)
        snprintf(why, why_size, "%s", st->place_moved);
    return st->place_moved[0] != 0;
}

/* Connections of outpostd (its application_name, unless a node's conninfo names it otherwise)
 * to this database. */
static int nodes_connected(store *st, int64_t *out_n)
{
    db_stmt *s = NULL;
    int rc = db_prepare(st->conn,
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND application_name = 'outpostd' AND pid <> pg_backend_pid()",
                        &s);
    if (rc == STORE_OK)
        rc = db_step(s);
    if (rc == DB_ROW) {
        *out_n = db_column_int64(s, 0);
        rc = DB_DONE;
    }
    db_finalize(s);
    return rc == DB_DONE ? 0 : store_fail_db(st, rc, "look for outpostd's connections");
}

/* ---- the serving lock ---------------------------------------------------------------------- */

#define SERVE_STR_(x) #x
#define SERVE_STR(x) SERVE_STR_(x)
#define SERVE_LOCK_KEY SERVE_STR(STORE_SERVE_LOCK_CLASS) ", 1" /* two int4 keys */
/* The lock's rows in pg_locks (a two-key advisory lock: classid, objid, objsubid 2). */
#define SERVE_LOCK_ROWS                                                                         \
    "locktype = 'advisory' AND classid = CAST(" SERVE_STR(STORE_SERVE_LOCK_CLASS) " AS oid)"     \
    " AND objid = CAST(1 AS oid) AND objsubid = 2"                                               \
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"

/* Takes the shared serving lock unless this connection holds it already (a reconnect drops
 * it; taking it again would only count it twice). *out_held false: restored holds it. */
static int serve_lock_take(store *st, bool *out_held)
{
    db_stmt *s = NULL;
    *out_held = false;
    int rc = db_prepare(st->conn,
                        "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE " SERVE_LOCK_ROWS
                        " AND pid = pg_backend_pid() AND granted) THEN 1"
                        " WHEN pg_try_advisory_lock_shared(" SERVE_LOCK_KEY ") THEN 1 ELSE 0 END",
                        &s);
    if (rc == STORE_OK)
        rc = db_step(s);
    if (rc == DB_ROW) {
        *out_held = db_column_int64(s, 0) != 0;
        rc = DB_DONE;
    }
    db_finalize(s);
    return rc == DB_DONE ? 0 : store_fail_db(st, rc, "take the serving lock");
}

int store_serve(store *st)
{
    if (store_engine_of(st) != DB_POSTGRESQL)
        return 0;
    bool held = false;
    int out = serve_lock_take(st, &held);
    if (out == 0 && !held)
        out = store_fail(st, STORE_EBUSY,
                         "outpost-admin restored is marking this store (it holds the serving "
                         "lock): start outpostd again when it has finished");
    if (out == 0)
        st->serving = true;
    return out;
}

int store_serve_check(store *st)
{
    if (!st->serving)
        return 0;
    bool held = false, found = false;
    store_place now, was;
    char why[256] = "";
    int out = serve_lock_take(st, &held);
    if (out == 0 && !held)
        return store_fail(st, STORE_EREPLACED,
                          "outpost-admin restored ran on the store while this outpostd served it "
                          "(a reconnect had dropped its serving lock)");
    if (out == 0)
        out = place_here(st, &now);
    if (out == 0)
        out = place_recorded(st, &was, &found);
    if (out == 0 && found)
        place_compare(&was, &now, why, sizeof why);
    if (out == 0 && (!found || why[0]))
        out = store_fail(st, STORE_EREPLACED,
                         "the store's PostgreSQL database was replaced while outpostd served it: "
                         "%s",
                         why[0] ? why : "its place is no longer recorded");
    return out;
}

/* Which outpostd nodes hold the serving lock, when restored cannot take it: "NAME at ADDRESS
 * (N connections), ..." (one entry per application_name and address). */
static int nodes_serving(store *st, int64_t *out_n, char *names, size_t size)
{
    db_stmt *s = NULL;
    names[0] = 0;
    int rc = db_prepare(st->conn,
                        "SELECT count(*), string_agg(who, ', ' ORDER BY who) FROM ("
                        " SELECT COALESCE(NULLIF(a.application_name, ''), 'unnamed')"
                        "  || ' at ' || COALESCE(host(a.client_addr), 'local socket')"
                        "  || ' (' || count(*) || ' connection' ||"
                        "  CASE WHEN count(*) = 1 THEN ')' ELSE 's)' END AS who"
                        " FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
                        " WHERE l.pid <> pg_backend_pid() AND " SERVE_LOCK_ROWS
                        " GROUP BY a.application_name, a.client_addr) nodes",
                        &s);
    if (rc == STORE_OK)
        rc = db_step(s);
    if (rc == DB_ROW) {
        *out_n = db_column_int64(s, 0);
        const char *t = db_column_text(s, 1);
        snprintf(names, size, "%s", t ? t : "");
        rc = DB_DONE;
    }
    db_finalize(s);
    return rc == DB_DONE ? 0 : store_fail_db(st, rc, "list the nodes serving the store");
}

/* Exclusively, for restored's transaction (released at its end): refused while any outpostd
 * serves, whatever its application_name. */
static int serve_lock_exclusive(store *st)
{
    db_stmt *s = NULL;
    bool got = false;
    int rc = db_prepare(st->conn, "SELECT pg_try_advisory_xact_lock(" SERVE_LOCK_KEY ")", &s);
    if (rc == STORE_OK)
        rc = db_step(s);
    if (rc == DB_ROW) {
        got = db_column_int64(s, 0) != 0;
        rc = DB_DONE;
    }
    db_finalize(s);
    if (rc != DB_DONE)
        return store_fail_db(st, rc, "take the serving lock");
    if (got)
        return 0;
    int64_t n = 0;
    char names[512];
    int out = nodes_serving(st, &n, names, sizeof names);
    if (out != 0)
        return out;
    return store_fail(st, STORE_EBUSY,
                      "outpostd serves this store: %lld node%s hold%s its serving lock "
                      "(pg_locks): %s; stop every outpostd first",
                      (long long)n, n == 1 ? "" : "s", n == 1 ? "s" : "", names[0] ? names : "?");
}

int store_mark_restored(store *st, bool moved_only, store_restore_info *out_info)
{
    memset(out_info, 0, sizeof *out_info);
    if (store_engine_of(st) != DB_POSTGRESQL)
        return store_fail(st, STORE_EINVAL,
                          "a SQLite store is restored with outpost-admin restore FILE, which "
                          "starts the new epoch itself");
    store_place now;
    store_identity identity;
    int64_t server_seq = 0, n_nodes = 0;
    int out = store_begin(st, true);
    if (out == 0)
        out = serve_lock_exclusive(st);
    if (out == 0)
        out = nodes_connected(st, &n_nodes);
    if (out == 0 && n_nodes > 0)
        out = store_fail(st, STORE_EBUSY,
                         "%lld connection%s named outpostd %s open on this database "
                         "(pg_stat_activity): stop every outpostd first",
                         (long long)n_nodes, n_nodes == 1 ? "" : "s", n_nodes == 1 ? "is" : "are");
    if (out == 0)
        out = place_here(st, &now);
    if (out == 0)
        out = store_identity_get(st, &identity);
    if (out == 0)
        out = store_meta_get(st, "server_seq", &server_seq);
    out_info->replaced_epoch = identity.epoch;
    out_info->backup_epoch = identity.epoch;
    out_info->backup_server_seq = (uint64_t)server_seq;
    out_info->server_seq = (uint64_t)server_seq;
    store_identity next = identity;
    if (out == 0 && !moved_only) {
        /* The store this one replaces is gone, and with it its epoch: the clock in seconds is
         * past any epoch counted up from 1, so marking the same dump restored twice still
         * gives a new one (as restore does for a lost SQLite store). */
        next.epoch = identity.epoch + 1;
        if (next.epoch < store_now_ms() / 1000u)
            next.epoch = store_now_ms() / 1000u;
        out = identity_write(st, &next);
        /* As restore does: a device may hold a later version of its own row than the restored
         * store, so every row goes to every device again at its pull from 0. */
        if (out == 0)
            out = store_exec(st, "UPDATE _outpost_rows SET echo_device = 0, echo_since = 0",
                             "clear echo suppression");
    }
    if (out == 0)
        out = place_record(st, &now);
    /* A move keeps the epoch: what it held is kept, so that a device's first HELLO after it
     * can prove it lost writes (store_moved_check); a new epoch makes that moot. */
    if (out == 0 && moved_only) {
        const char *const keys[] = {"moved_seq", "moved_ms"};
        const int64_t values[] = {server_seq, (int64_t)store_now_ms()};
        out = meta_put(st, keys, values, 2);
    } else if (out == 0) {
        out = store_exec(st, "DELETE FROM _outpost_meta WHERE key IN ('moved_seq', 'moved_ms')",
                         "forget an earlier move");
    }
    if (out == 0)
        out = store_commit(st);
    else
        store_rollback(st);
    if (out == 0) {
        out_info->identity = next;
        st->place_moved[0] = 0;
    }
    return out;
}

int store_moved_check(store *st, const char *device_id, uint64_t cursor)
{
    if (store_engine_of(st) != DB_POSTGRESQL)
        return 0;
    db_stmt *s = NULL;
    int rc = db_prepare(st->conn,
                        "SELECT m.value FROM _outpost_devices d"
                        " JOIN _outpost_meta m ON m.key = 'moved_seq'"
                        " JOIN _outpost_meta t ON t.key = 'moved_ms'"
                        " WHERE d.id = ?1 AND d.enrolled_ms < t.value"
                        " AND coalesce(d.last_seen_ms, 0) < t.value AND ?2 > m.value",
                        &s);
    if (rc == STORE_OK)
        rc = db_bind_text(s, 1, device_id ? device_id : "");
    if (rc == STORE_OK)
        rc = db_bind_int64(s, 2, (int64_t)cursor);
    if (rc == STORE_OK)
        rc = db_step(s);
    int64_t moved_seq = rc == DB_ROW ? db_column_int64(s, 0) : 0;
    db_finalize(s);
    if (rc == DB_DONE)
        return 0;
    if (rc != DB_ROW)
        return store_fail_db(st, rc, "compare a device's cursor with the move");
    return store_fail(st, STORE_EAHEAD,
                      "device %s had pulled up to sequence %llu, this store held %lld when "
                      "marked moved: the move lost writes. Stop every outpostd and run "
                      "outpost-admin restored without --moved",
                      device_id, (unsigned long long)cursor, (long long)moved_seq);
}
