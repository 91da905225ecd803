/* Internals shared by the cryptvfs modules. Not for use outside client-lib/src/cryptvfs*.c. */
#ifndef OUTPOST_CRYPTVFS_INT_H
#define OUTPOST_CRYPTVFS_INT_H

#include <stddef.h>
#include <stdint.h>

#include <mbedtls/aes.h>
#include <mbedtls/gcm.h>
#include <sqlite3.h>

#include "cryptvfs.h"

#define CRYPTVFS_NONCE_BYTES 12
#define CRYPTVFS_TAG_BYTES 16
#define CRYPTVFS_KCV_BYTES 4
/* Page 1 of the database keeps bytes 16..23 (page size, file format versions, reserved-byte
 * count, payload fractions) in clear so the VFS can find the page size before decrypting. */
#define CRYPTVFS_PAGE1_CLEAR_OFFSET 16
#define CRYPTVFS_PAGE1_CLEAR_BYTES 8
#define CRYPTVFS_PAGE1_BODY_OFFSET 24
#define CRYPTVFS_WAL_HEADER_BYTES 32
#define CRYPTVFS_WAL_FRAME_HEADER_BYTES 24

/* Which on-disk structure a page belongs to: part of the associated data. A WAL frame's page is
 * sealed exactly as the same page in the database file ('D'), so a checkpoint can copy it without
 * opening and resealing it; journal records are 'J'. */
typedef enum {
    CRYPTVFS_PAGE_DB = 'D',
    CRYPTVFS_PAGE_JOURNAL = 'J'
} cryptvfs_page_kind;

struct cryptvfs {
    sqlite3_vfs base; /* registered with SQLite; base.pAppData points back here */
    sqlite3_vfs *root;
    char name[48];
    char *db_path;      /* as given to cryptvfs_open */
    char *full_path;    /* root->xFullPathname(db_path): the only main database it opens */
    uint8_t salt[CRYPTVFS_SALT_BYTES];
    uint8_t page_key[CRYPTVFS_KEY_BYTES];
    uint8_t mask_key[CRYPTVFS_KEY_BYTES];
    uint8_t kcv[CRYPTVFS_KCV_BYTES];
    sqlite3_mutex *mutex; /* guards err_code / err_msg */
    int err_code;
    char err_msg[CRYPTVFS_ERRMSG_SIZE];
};

/* Per open file cipher state: mbedTLS contexts are not safe to share between threads. */
typedef struct cryptvfs_cipher {
    mbedtls_gcm_context gcm;
    mbedtls_aes_context mask;
} cryptvfs_cipher;

/* Identifies one page for the associated data. `context` is 8 bytes chosen by the structure:
 * zero for the database and WAL frames, the record offset for a journal. */
typedef struct cryptvfs_page_id {
    cryptvfs_page_kind kind;
    uint32_t pgno;
    uint8_t context[8];
} cryptvfs_page_id;

#if defined(__GNUC__)
#define CRYPTVFS_PRINTF(fmt_index, args_index) __attribute__((format(printf, fmt_index, args_index)))
#else
#define CRYPTVFS_PRINTF(fmt_index, args_index)
#endif

/* cryptvfs.c */
/* Records a failure for cryptvfs_last_error and SQLite's error log. */
void cryptvfs_set_error(cryptvfs *vfs, int code, const char *fmt, ...) CRYPTVFS_PRINTF(3, 4);
int cryptvfs_is_page_size(sqlite3_int64 n);
uint32_t cryptvfs_get_be32(const uint8_t *p);
void cryptvfs_put_be64(uint8_t *p, uint64_t v);

/* cryptvfs_page.c: key schedule and the page format. */
int cryptvfs_keys_derive(cryptvfs *vfs, const uint8_t master[CRYPTVFS_KEY_BYTES]);
int cryptvfs_cipher_init(cryptvfs_cipher *cipher, const cryptvfs *vfs);
void cryptvfs_cipher_free(cryptvfs_cipher *cipher);
/* Seals the plaintext page `plain` (page_size bytes) into `out` (same size, not overlapping). */
int cryptvfs_page_seal(cryptvfs_cipher *cipher, const cryptvfs *vfs, const cryptvfs_page_id *id,
                       const uint8_t *plain, uint8_t *out, size_t page_size);
/* Opens a sealed page in place. Returns 0, CRYPTVFS_EWRONGKEY (the key check value differs) or
 * CRYPTVFS_ECORRUPT (same key, bytes changed); on failure the buffer is left as read. */
int cryptvfs_page_open(cryptvfs_cipher *cipher, const cryptvfs *vfs, const cryptvfs_page_id *id,
                       uint8_t *page, size_t page_size);
/* XORs the 8 checksum bytes of a WAL frame header with a keystream bound to the WAL salts and
 * the frame's offset (SQLite's frame checksums are computed over plaintext). */
int cryptvfs_wal_mask(cryptvfs_cipher *cipher, uint8_t frame_header[CRYPTVFS_WAL_FRAME_HEADER_BYTES],
                      sqlite3_int64 offset);

/* cryptvfs_file.c: the io methods of encrypted files. */
typedef enum {
    CRYPTVFS_FILE_DB,
    CRYPTVFS_FILE_WAL,
    CRYPTVFS_FILE_JOURNAL,
    CRYPTVFS_FILE_PASSTHROUGH
} cryptvfs_file_kind;

size_t cryptvfs_file_size(const sqlite3_vfs *root);
int cryptvfs_file_open(cryptvfs *vfs, cryptvfs_file_kind kind, sqlite3_file *file,
                       const char *name, int flags, int *out_flags);

/* cryptvfs_memfile.c: temporary files that never touch the disk. */
size_t cryptvfs_memfile_size(void);
int cryptvfs_memfile_open(sqlite3_file *file);

#endif
