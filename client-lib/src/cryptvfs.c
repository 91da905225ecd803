/* cryptvfs: instance lifecycle, the registered sqlite3_vfs, connections and error records.
 * The page format is in cryptvfs_page.c, file io in cryptvfs_file.c, temp files in
 * cryptvfs_memfile.c, Argon2id in cryptvfs_kdf.c, rekeying in cryptvfs_rekey.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>
#include <psa/crypto.h>

#include "cryptvfs_int.h"

static atomic_ulong instance_counter;

/* ---- small shared helpers -------------------------------------------------------------------- */

int cryptvfs_is_page_size(sqlite3_int64 n)
{
    return n >= 512 && n <= 65536 && (n & (n - 1)) == 0;
}

uint32_t cryptvfs_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void cryptvfs_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

void cryptvfs_set_error(cryptvfs *vfs, int code, const char *fmt, ...)
{
    char msg[CRYPTVFS_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sqlite3_mutex_enter(vfs->mutex);
    vfs->err_code = code;
    memcpy(vfs->err_msg, msg, sizeof msg);
    sqlite3_mutex_leave(vfs->mutex);
    sqlite3_log(SQLITE_WARNING, "cryptvfs: %s", msg);
}

int cryptvfs_last_error(cryptvfs *vfs, char *out_msg, size_t msg_size)
{
    int code = 0;
    if (out_msg && msg_size > 0)
        out_msg[0] = '\0';
    if (!vfs)
        return 0;
    sqlite3_mutex_enter(vfs->mutex);
    code = vfs->err_code;
    if (out_msg && msg_size > 0)
        snprintf(out_msg, msg_size, "%s", vfs->err_msg);
    sqlite3_mutex_leave(vfs->mutex);
    return code;
}

void cryptvfs_clear_error(cryptvfs *vfs)
{
    if (!vfs)
        return;
    sqlite3_mutex_enter(vfs->mutex);
    vfs->err_code = 0;
    vfs->err_msg[0] = '\0';
    sqlite3_mutex_leave(vfs->mutex);
}

const char *cryptvfs_strerror(int code)
{
    switch (code) {
    case CRYPTVFS_OK: return "success";
    case CRYPTVFS_EINVAL: return "invalid argument";
    case CRYPTVFS_ENOMEM: return "out of memory";
    case CRYPTVFS_ECRYPTO: return "cryptographic library failure";
    case CRYPTVFS_EWRONGKEY: return "wrong key or corrupted database";
    case CRYPTVFS_ECORRUPT: return "database failed its integrity check (modified or damaged)";
    case CRYPTVFS_ENOTENCRYPTED: return "database is not encrypted";
    case CRYPTVFS_EFORMAT: return "not an encrypted Outpost database layout";
    case CRYPTVFS_EIO: return "file system error";
    case CRYPTVFS_ESQLITE: return "SQLite error";
    default: return "unknown cryptvfs error";
    }
}

/* ---- the registered VFS ---------------------------------------------------------------------- */

static cryptvfs *owner(sqlite3_vfs *vfs)
{
    return vfs->pAppData;
}

static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                    int *out_flags)
{
    cryptvfs *v = owner(vfs);
    /* By file type, not by DELETEONCLOSE: a main journal must survive a crash to roll back. */
    const int in_memory = SQLITE_OPEN_TEMP_DB | SQLITE_OPEN_TEMP_JOURNAL |
                          SQLITE_OPEN_TRANSIENT_DB | SQLITE_OPEN_SUBJOURNAL;
    if (!name || (flags & in_memory)) {
        if (out_flags)
            *out_flags = flags;
        return cryptvfs_memfile_open(file);
    }
    cryptvfs_file_kind kind;
    if (flags & SQLITE_OPEN_MAIN_DB) {
        if (strcmp(name, v->full_path) != 0) {
            cryptvfs_set_error(v, CRYPTVFS_EINVAL,
                               "refused to open %s: this encryption instance serves %s only",
                               name, v->full_path);
            return SQLITE_CANTOPEN;
        }
        kind = CRYPTVFS_FILE_DB;
    } else if (flags & SQLITE_OPEN_WAL) {
        kind = CRYPTVFS_FILE_WAL;
    } else if (flags & SQLITE_OPEN_MAIN_JOURNAL) {
        kind = CRYPTVFS_FILE_JOURNAL;
    } else if (flags & SQLITE_OPEN_SUPER_JOURNAL) {
        kind = CRYPTVFS_FILE_PASSTHROUGH; /* holds journal file names, no content */
    } else {
        cryptvfs_set_error(v, CRYPTVFS_EINVAL, "refused to open %s: unknown file type 0x%x",
                           name, (unsigned)flags);
        return SQLITE_CANTOPEN;
    }
    return cryptvfs_file_open(v, kind, file, name, flags, out_flags);
}

static int vfs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    sqlite3_vfs *root = owner(vfs)->root;
    return root->xDelete(root, name, sync_dir);
}

static int vfs_access(sqlite3_vfs *vfs, const char *name, int flags, int *out_result)
{
    sqlite3_vfs *root = owner(vfs)->root;
    return root->xAccess(root, name, flags, out_result);
}

static int vfs_full_pathname(sqlite3_vfs *vfs, const char *name, int n_out, char *out)
{
    sqlite3_vfs *root = owner(vfs)->root;
    return root->xFullPathname(root, name, n_out, out);
}

static void *vfs_dl_open(sqlite3_vfs *vfs, const char *path)
{
    sqlite3_vfs *root = owner(vfs)->root;
    return root->xDlOpen(root, path);
}

static void vfs_dl_error(sqlite3_vfs *vfs, int n_bytes, char *out_msg)
{
    sqlite3_vfs *root = owner(vfs)->root;
    root->xDlError(root, n_bytes, out_msg);
}

static void (*vfs_dl_sym(sqlite3_vfs *vfs, void *handle, const char *symbol))(void)
{
    sqlite3_vfs *root = owner(vfs)->root;
    return root->xDlSym(root, handle, symbol);
}

static void vfs_dl_close(sqlite3_vfs *vfs, void *handle)
{
    sqlite3_vfs *root = owner(vfs)->root;
    root->xDlClose(root, handle);
}

static int vfs_randomness(sqlite3_vfs *vfs, int n_bytes, char *out)
{
    sqlite3_vfs *root = owner(vfs)->root;
    return root->xRandomness(root, n_bytes, out);
}

static int vfs_sleep(sqlite3_vfs *vfs, int microseconds)
{
    sqlite3_vfs *root = owner(vfs)->root;
    return root->xSleep(root, microseconds);
}

static int vfs_current_time(sqlite3_vfs *vfs, double *out_time)
{
    sqlite3_vfs *root = owner(vfs)->root;
    return root->xCurrentTime(root, out_time);
}

static int vfs_get_last_error(sqlite3_vfs *vfs, int n_bytes, char *out_msg)
{
    sqlite3_vfs *root = owner(vfs)->root;
    return root->xGetLastError ? root->xGetLastError(root, n_bytes, out_msg) : 0;
}

static int vfs_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out_time)
{
    sqlite3_vfs *root = owner(vfs)->root;
    return root->xCurrentTimeInt64(root, out_time);
}

static int vfs_set_system_call(sqlite3_vfs *vfs, const char *name, sqlite3_syscall_ptr call)
{
    sqlite3_vfs *root = owner(vfs)->root;
    return root->xSetSystemCall(root, name, call);
}

static sqlite3_syscall_ptr vfs_get_system_call(sqlite3_vfs *vfs, const char *name)
{
    sqlite3_vfs *root = owner(vfs)->root;
    return root->xGetSystemCall(root, name);
}

static const char *vfs_next_system_call(sqlite3_vfs *vfs, const char *name)
{
    sqlite3_vfs *root = owner(vfs)->root;
    return root->xNextSystemCall(root, name);
}

/* ---- instance lifecycle ---------------------------------------------------------------------- */

/* The salt in the first 16 bytes of an existing encrypted database, or a fresh random one for a
 * file that does not exist yet, is empty, or is a plain SQLite file (refused later, at read). */
static int load_salt(const char *db_path, uint8_t salt[CRYPTVFS_SALT_BYTES])
{
    int fd = open(db_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            return CRYPTVFS_EIO;
    } else {
        ssize_t n = pread(fd, salt, CRYPTVFS_SALT_BYTES, 0);
        close(fd);
        if (n < 0)
            return CRYPTVFS_EIO;
        if (n == CRYPTVFS_SALT_BYTES && memcmp(salt, "SQLite format 3", 16) != 0)
            return 0;
    }
    return psa_generate_random(salt, CRYPTVFS_SALT_BYTES) == PSA_SUCCESS ? 0 : CRYPTVFS_ECRYPTO;
}

static int secret_is_valid(const cryptvfs_secret *secret)
{
    if (!secret)
        return 0;
    if (secret->key)
        return secret->passphrase == NULL;
    return secret->passphrase != NULL && secret->passphrase_len > 0;
}

int cryptvfs_open(const char *db_path, const cryptvfs_secret *secret, cryptvfs **out_vfs)
{
    cryptvfs *v = NULL;
    uint8_t master[CRYPTVFS_KEY_BYTES];
    int rc = CRYPTVFS_EINVAL;

    if (!out_vfs)
        return CRYPTVFS_EINVAL;
    *out_vfs = NULL;
    if (!db_path || !db_path[0] || !secret_is_valid(secret))
        return CRYPTVFS_EINVAL;
    if (sqlite3_initialize() != SQLITE_OK)
        return CRYPTVFS_ESQLITE;
    if (psa_crypto_init() != PSA_SUCCESS)
        return CRYPTVFS_ECRYPTO;
    sqlite3_vfs *root = sqlite3_vfs_find(NULL);
    if (!root)
        return CRYPTVFS_ESQLITE;

    rc = CRYPTVFS_ENOMEM;
    v = sqlite3_malloc(sizeof *v);
    if (!v)
        goto fail;
    memset(v, 0, sizeof *v);
    v->root = root;
    v->mutex = sqlite3_mutex_alloc(SQLITE_MUTEX_FAST);
    v->db_path = sqlite3_mprintf("%s", db_path);
    v->full_path = sqlite3_malloc(root->mxPathname + 1);
    if (!v->db_path || !v->full_path)
        goto fail;
    if (root->xFullPathname(root, db_path, root->mxPathname + 1, v->full_path) != SQLITE_OK) {
        rc = CRYPTVFS_EIO;
        goto fail;
    }
    rc = load_salt(db_path, v->salt);
    if (rc != 0)
        goto fail;

    if (secret->key)
        memcpy(master, secret->key, sizeof master);
    else
        rc = cryptvfs_derive_key(secret->passphrase, secret->passphrase_len, v->salt, master);
    if (rc == 0)
        rc = cryptvfs_keys_derive(v, master);
    mbedtls_platform_zeroize(master, sizeof master);
    if (rc != 0)
        goto fail;

    snprintf(v->name, sizeof v->name, "outpost-cryptvfs-%lu",
             atomic_fetch_add(&instance_counter, 1ul));
    size_t file_size = cryptvfs_file_size(root);
    if (file_size < cryptvfs_memfile_size())
        file_size = cryptvfs_memfile_size();
    v->base = (sqlite3_vfs){
        .iVersion = root->iVersion < 3 ? root->iVersion : 3, /* pass through what root has */
        .szOsFile = (int)file_size,
        .mxPathname = root->mxPathname,
        .zName = v->name,
        .pAppData = v,
        .xOpen = vfs_open,
        .xDelete = vfs_delete,
        .xAccess = vfs_access,
        .xFullPathname = vfs_full_pathname,
        .xDlOpen = vfs_dl_open,
        .xDlError = vfs_dl_error,
        .xDlSym = vfs_dl_sym,
        .xDlClose = vfs_dl_close,
        .xRandomness = vfs_randomness,
        .xSleep = vfs_sleep,
        .xCurrentTime = vfs_current_time,
        .xGetLastError = vfs_get_last_error,
        .xCurrentTimeInt64 = vfs_current_time_int64,
        .xSetSystemCall = vfs_set_system_call,
        .xGetSystemCall = vfs_get_system_call,
        .xNextSystemCall = vfs_next_system_call,
    };
    if (sqlite3_vfs_register(&v->base, 0) != SQLITE_OK) {
        rc = CRYPTVFS_ESQLITE;
        goto fail;
    }
    *out_vfs = v;
    return 0;

fail:
    if (v) {
        sqlite3_free(v->db_path);
        sqlite3_free(v->full_path);
        sqlite3_mutex_free(v->mutex);
        mbedtls_platform_zeroize(v, sizeof *v);
        sqlite3_free(v);
    }
    return rc;
}

const char *cryptvfs_name(const cryptvfs *vfs)
{
    return vfs ? vfs->name : NULL;
}

void cryptvfs_close(cryptvfs *vfs)
{
    if (!vfs)
        return;
    sqlite3_vfs_unregister(&vfs->base);
    sqlite3_free(vfs->db_path);
    sqlite3_free(vfs->full_path);
    sqlite3_mutex_free(vfs->mutex);
    mbedtls_platform_zeroize(vfs, sizeof *vfs);
    sqlite3_free(vfs);
}

/* ---- connections ----------------------------------------------------------------------------- */

/* The cryptvfs code for a failed SQLite call: the VFS's own record when it has one (wrong key,
 * tampered page, plain file), otherwise SQLite's message under CRYPTVFS_ESQLITE. */
static int failure_code(cryptvfs *vfs, sqlite3 *db, int sqlite_rc)
{
    int code = cryptvfs_last_error(vfs, NULL, 0);
    if (code != 0)
        return code;
    const char *detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(sqlite_rc);
    switch (sqlite_rc & 0xff) {
    case SQLITE_CORRUPT:
        /* Every page opened, so the damage is structural: a file cut short at a page boundary
         * or pages missing. */
        code = CRYPTVFS_ECORRUPT;
        cryptvfs_set_error(vfs, code, "database damaged or truncated (sqlite: %s)", detail);
        return code;
    case SQLITE_NOTADB: code = CRYPTVFS_EFORMAT; break;
    case SQLITE_NOMEM: code = CRYPTVFS_ENOMEM; break;
    default: code = CRYPTVFS_ESQLITE; break;
    }
    cryptvfs_set_error(vfs, code, "sqlite: %s", detail);
    return code;
}

int cryptvfs_prepare(cryptvfs *vfs, sqlite3 *db)
{
    if (!vfs || !db)
        return CRYPTVFS_EINVAL;
    cryptvfs_clear_error(vfs);
    /* Takes effect only while the database is empty; an existing file's page 1 says 32 or is
     * refused when read. */
    int reserve = CRYPTVFS_RESERVE_BYTES;
    int rc = sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db,
                          "PRAGMA temp_store=MEMORY;"
                          "PRAGMA mmap_size=0;"
                          "SELECT count(*) FROM sqlite_schema;",
                          NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : failure_code(vfs, db, rc);
}

int cryptvfs_connect(cryptvfs *vfs, int sqlite_flags, sqlite3 **out_db)
{
    sqlite3 *db = NULL;
    if (!out_db)
        return CRYPTVFS_EINVAL;
    *out_db = NULL;
    if (!vfs)
        return CRYPTVFS_EINVAL;
    cryptvfs_clear_error(vfs);
    int rc = sqlite3_open_v2(vfs->db_path, &db, sqlite_flags, vfs->name);
    int code = rc == SQLITE_OK ? cryptvfs_prepare(vfs, db) : failure_code(vfs, db, rc);
    if (code != 0) {
        sqlite3_close(db);
        return code;
    }
    *out_db = db;
    return 0;
}
