/*
 * cryptvfs: the encrypting SQLite VFS under every liboutpost replica (internal API).
 *
 * Everything SQLite writes for a replica goes through one `cryptvfs` instance:
 *   - the database file, its write-ahead log and its rollback journal are encrypted page by page
 *     with AES-256-GCM (docs/encryption.md has the byte layout);
 *   - temporary databases, statement journals and sorter spill files never touch the disk: they
 *     live in memory (capped at CRYPTVFS_MEMFILE_LIMIT bytes each);
 *   - the -shm wal-index (page numbers and frame numbers, no row content) and a super-journal
 *     (file names only) pass through to the platform VFS.
 *
 * One instance serves one database file. It registers a uniquely named sqlite3_vfs that holds
 * the keys for that file; connections are opened on it with cryptvfs_connect() (or with
 * sqlite3_open_v2(path, ..., cryptvfs_name(vfs)) followed by cryptvfs_prepare()). The instance
 * refuses to open any other main database file, so an ATTACH or VACUUM INTO through it fails
 * instead of writing a second file under the same keys.
 *
 * Opening an encrypted replica (what liboutpost does):
 *
 *     cryptvfs *vfs = NULL;
 *     sqlite3 *db = NULL;
 *     cryptvfs_secret secret = { .key = app_key };          // or .passphrase / .passphrase_len
 *     int rc = cryptvfs_open(path, &secret, &vfs);
 *     if (rc == 0)
 *         rc = cryptvfs_connect(vfs, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db);
 *     if (rc != 0) {                                          // CRYPTVFS_EWRONGKEY, ...
 *         char msg[CRYPTVFS_ERRMSG_SIZE];
 *         cryptvfs_last_error(vfs, msg, sizeof msg);         // vfs may be NULL: harmless
 *         cryptvfs_close(vfs);
 *         return map(rc, msg);
 *     }
 *     ... PRAGMA journal_mode=WAL, schema, work ...
 *     sqlite3_close(db);                                      // every connection first,
 *     cryptvfs_close(vfs);                                    // then the instance
 *
 * After any later SQLite failure, SQLITE_IOERR_DATA (a page failed authentication) and
 * SQLITE_NOTADB (wrong key, not encrypted) come with a code and message from
 * cryptvfs_last_error(). A plain SQLite file is refused (CRYPTVFS_ENOTENCRYPTED): the library's
 * explicit no-encryption option opens it with SQLite's default VFS instead, without cryptvfs.
 *
 * Fixed at creation: the page size (4096 unless set before the first write). Unsupported:
 * changing it later (VACUUM fails, database unchanged), URI file names, psow=0 (see
 * docs/encryption.md).
 *
 * Errors: functions return 0 or a negative CRYPTVFS_E* code; cryptvfs_strerror() gives text.
 *
 * Threads: an instance's keys never change after cryptvfs_open(), every open file has its own
 * cipher state, and the last-error record is guarded by a mutex, so connections on one instance
 * may be used from different threads under SQLite's usual rules (one thread per connection at a
 * time unless SQLite is in serialized mode). cryptvfs_open, cryptvfs_close and cryptvfs_rekey
 * may be called from any thread; cryptvfs_close must not race with use of the instance.
 *
 * Memory: key material lives only in the instance and in per-file cipher contexts; all of it is
 * wiped with mbedtls_platform_zeroize when they are freed. No key is ever written to disk.
 */
#ifndef OUTPOST_CRYPTVFS_H
#define OUTPOST_CRYPTVFS_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#define CRYPTVFS_KEY_BYTES 32
#define CRYPTVFS_SALT_BYTES 16
/* Bytes at the end of every page: 12-byte nonce, 16-byte GCM tag, 4-byte key check value. */
#define CRYPTVFS_RESERVE_BYTES 32
#define CRYPTVFS_ERRMSG_SIZE 256
/* Largest in-memory temporary file (sorter spill, temp table); past it SQLite gets SQLITE_FULL. */
#define CRYPTVFS_MEMFILE_LIMIT ((sqlite3_int64)256 * 1024 * 1024)

/* Argon2id parameters for passphrases: 64 MiB, 3 passes, 1 lane (0.25-0.5 s on the 2-core build
 * machine, slower on a low-end phone); see docs/encryption.md. Changing them changes every
 * passphrase-derived key: they are part of the format. */
#define CRYPTVFS_ARGON2_T_COST 3u
#define CRYPTVFS_ARGON2_M_COST_KIB 65536u
#define CRYPTVFS_ARGON2_PARALLELISM 1u

enum {
    CRYPTVFS_OK = 0,
    CRYPTVFS_EINVAL = -1,        /* bad argument (NULL path, no key, empty passphrase) */
    CRYPTVFS_ENOMEM = -2,
    CRYPTVFS_ECRYPTO = -3,       /* mbedTLS, PSA or Argon2 failed */
    CRYPTVFS_EWRONGKEY = -4,     /* the key does not open this database */
    CRYPTVFS_ECORRUPT = -5,      /* a page failed authentication or is truncated */
    CRYPTVFS_ENOTENCRYPTED = -6, /* a plain SQLite database: refused */
    CRYPTVFS_EFORMAT = -7,       /* not a cryptvfs file layout (page size, reserved bytes) */
    CRYPTVFS_EIO = -8,           /* the file system failed */
    CRYPTVFS_ESQLITE = -9        /* SQLite failed for a reason of its own (see the message) */
};

typedef struct cryptvfs cryptvfs;

/* The secret that opens a database: exactly one of `key` (CRYPTVFS_KEY_BYTES raw bytes, e.g.
 * unwrapped from the platform keystore) or `passphrase` (passphrase_len bytes, any encoding,
 * stretched with Argon2id over the database's salt). The caller keeps ownership and should wipe
 * its copy when done. */
typedef struct cryptvfs_secret {
    const uint8_t *key;
    const char *passphrase;
    size_t passphrase_len;
} cryptvfs_secret;

/* Creates the instance for the database at db_path (a plain file path, not a URI; the file need
 * not exist yet) and registers its VFS. Reads the database's salt from its first 16 bytes, or makes a fresh random salt for a new
 * file; for a passphrase, runs Argon2id (slow by design: call it off the UI thread). On success
 * *out_vfs owns the keys; free it with cryptvfs_close. On failure *out_vfs is NULL. */
int cryptvfs_open(const char *db_path, const cryptvfs_secret *secret, cryptvfs **out_vfs);

/* The registered VFS name, valid until cryptvfs_close. */
const char *cryptvfs_name(const cryptvfs *vfs);

/* Opens a connection to the instance's database through its VFS (flags as sqlite3_open_v2) and
 * runs cryptvfs_prepare on it. On failure *out_db is NULL and nothing is left open. */
int cryptvfs_connect(cryptvfs *vfs, int sqlite_flags, sqlite3 **out_db);

/* Makes a connection opened on cryptvfs_name(vfs) ready: reserves CRYPTVFS_RESERVE_BYTES per page
 * in a new database, keeps temporary storage in memory, turns memory-mapped I/O off, and reads
 * page 1 so that a wrong key (CRYPTVFS_EWRONGKEY), a plain database (CRYPTVFS_ENOTENCRYPTED) or
 * a damaged one (CRYPTVFS_ECORRUPT) is reported here, before any query. */
int cryptvfs_prepare(cryptvfs *vfs, sqlite3 *db);

/* The most recent encryption-level failure seen by any file of this instance (0 if none),
 * with its message copied into out_msg (always NUL-terminated when msg_size > 0). A NULL vfs
 * returns 0 with an empty message. */
int cryptvfs_last_error(cryptvfs *vfs, char *out_msg, size_t msg_size);

/* Forgets the recorded failure (e.g. before retrying a statement). */
void cryptvfs_clear_error(cryptvfs *vfs);

/* Unregisters the VFS and wipes the keys. Close every connection opened on it first.
 * NULL is a no-op. */
void cryptvfs_close(cryptvfs *vfs);

/* Argon2id(passphrase, salt) with the CRYPTVFS_ARGON2_* parameters into out_key. Exposed for
 * benchmarks and for apps that want to cache the derived key in the keystore. */
int cryptvfs_derive_key(const char *passphrase, size_t passphrase_len,
                        const uint8_t salt[CRYPTVFS_SALT_BYTES],
                        uint8_t out_key[CRYPTVFS_KEY_BYTES]);

/* Re-encrypts the database at db_path from old_secret to new_secret (a fresh salt too).
 * Crash-safe: writes an encrypted copy beside it (db_path + "-rekey"), syncs it and renames it
 * over the original, so after a crash at any point the database opens with the old secret or
 * the new one, never neither. The caller keeps both secrets until this returns 0 and, after a
 * crash, tries the new one and then the old one. Precondition: no connection (in any process)
 * has the database open. A stale copy from an interrupted rekey is removed first. */
int cryptvfs_rekey(const char *db_path, const cryptvfs_secret *old_secret,
                   const cryptvfs_secret *new_secret, char *out_msg, size_t msg_size);

/* Static text for a CRYPTVFS_* code. */
const char *cryptvfs_strerror(int code);

#endif
