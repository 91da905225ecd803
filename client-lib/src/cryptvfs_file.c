/* cryptvfs io methods for files that reach the disk: the database, its WAL and its rollback
 * journal are encrypted page by page; a super-journal (file names only) passes through.
 *
 * SQLite's access patterns, which this file relies on (sqlite3 3.40 pager.c and wal.c):
 *   database  whole pages at page-aligned offsets; the 100-byte header and the 16 bytes at
 *             offset 24 are also read on their own.
 *   WAL       32-byte header at 0 (clear); per frame a 24-byte frame header, then the page right
 *             after it; recovery and checksum rewrites read whole frames (24 + page size);
 *             readers and checkpoints read the page alone; a checksum rewrite first reads the
 *             previous frame's 8 checksum bytes alone.
 *   journal   a header per sector (clear); per record a 4-byte page number, the page, a 4-byte
 *             checksum, so page images sit at offsets that are 4 modulo 8 while headers sit at
 *             sector boundaries.
 * In the database and the WAL, a write that fits none of these shapes is refused rather than
 * written in clear; in the journal everything but page images is SQLite's bookkeeping (headers,
 * page numbers, checksums, a super-journal name) and passes through.
 *
 * Checkpoints copy sealed pages. SQLite brackets a checkpoint with SQLITE_FCNTL_CKPT_START and
 * SQLITE_FCNTL_CKPT_DONE on the database file, and in between only reads frame pages from the WAL
 * and writes them to the database. A WAL frame's page is sealed exactly as the database page it
 * becomes (same associated data, same page-1 layout), so during a checkpoint the WAL file hands
 * out sealed bytes and the database file writes them unchanged: no decryption, no re-encryption,
 * and nothing is ever authenticated less (the tag travels with the page and is checked when the
 * page is read). The database file only passes through a buffer whose page number and tag match
 * the frame just read; anything else is sealed as usual.
 */
#include <string.h>

#include <mbedtls/platform_util.h>

#include "cryptvfs_int.h"

typedef struct cryptvfs_file {
    sqlite3_file base;
    cryptvfs *vfs;
    sqlite3_file *real; /* the platform VFS's file, allocated right after this struct */
    cryptvfs_file_kind kind;
    int has_cipher;
    int refused;        /* database file refused at open (plain SQLite or foreign salt) */
    int refused_code;
    cryptvfs_cipher cipher;
    uint8_t *scratch;   /* one page (or frame) of work space */
    size_t scratch_size;
    /* WAL: the last frame header written, so the page that follows it needs no read-back. */
    sqlite3_int64 wal_header_offset;
    uint8_t wal_header[CRYPTVFS_WAL_FRAME_HEADER_BYTES];
    /* WAL: the same connection's database file (SQLite closes the WAL first). */
    struct cryptvfs_file *db_peer;
    /* Database: between SQLITE_FCNTL_CKPT_START and _DONE, and the sealed page in transit. */
    int checkpointing;
    uint32_t transit_pgno;
    uint8_t transit_tag[CRYPTVFS_TAG_BYTES];
} cryptvfs_file;

static const uint8_t sqlite_magic[16] = "SQLite format 3";

size_t cryptvfs_file_size(const sqlite3_vfs *root)
{
    return sizeof(cryptvfs_file) + (size_t)root->szOsFile;
}

/* Work space of at least n bytes. It can hold a decrypted page 1, so an outgrown buffer is wiped
 * before it goes back to the allocator. */
static uint8_t *scratch(cryptvfs_file *f, size_t n)
{
    if (f->scratch_size < n) {
        uint8_t *p = sqlite3_malloc64(n);
        if (!p)
            return NULL;
        if (f->scratch) {
            mbedtls_platform_zeroize(f->scratch, f->scratch_size);
            sqlite3_free(f->scratch);
        }
        f->scratch = p;
        f->scratch_size = n;
    }
    return f->scratch;
}

static const char *kind_name(cryptvfs_file_kind kind)
{
    switch (kind) {
    case CRYPTVFS_FILE_DB: return "database";
    case CRYPTVFS_FILE_WAL: return "WAL";
    case CRYPTVFS_FILE_JOURNAL: return "journal";
    case CRYPTVFS_FILE_PASSTHROUGH: break;
    }
    return "file";
}

/* Records why a page did not open and picks the SQLite code the caller will see. */
static int page_failure(cryptvfs_file *f, int code, uint32_t pgno)
{
    if (code == CRYPTVFS_EWRONGKEY) {
        cryptvfs_set_error(f->vfs, code,
                           "wrong key: %s page %u was not written with this key "
                           "(or the file is corrupted)", kind_name(f->kind), pgno);
        return pgno == 1 && f->kind == CRYPTVFS_FILE_DB ? SQLITE_NOTADB : SQLITE_IOERR_DATA;
    }
    if (code == CRYPTVFS_ECORRUPT) {
        cryptvfs_set_error(f->vfs, code,
                           "integrity check failed: %s page %u was modified or damaged on disk",
                           kind_name(f->kind), pgno);
        return SQLITE_IOERR_DATA;
    }
    cryptvfs_set_error(f->vfs, code, "%s page %u: %s", kind_name(f->kind), pgno,
                       cryptvfs_strerror(code));
    return code == CRYPTVFS_ENOMEM ? SQLITE_NOMEM : SQLITE_IOERR;
}

static int refuse_write(cryptvfs_file *f, int amount, sqlite3_int64 offset)
{
    cryptvfs_set_error(f->vfs, CRYPTVFS_EFORMAT,
                       "refused to write %d bytes at offset %lld of the %s: not a page",
                       amount, (long long)offset, kind_name(f->kind));
    return SQLITE_IOERR_WRITE;
}

static int seal_and_write(cryptvfs_file *f, const cryptvfs_page_id *id, const void *buf,
                          int amount, sqlite3_int64 offset)
{
    uint8_t *out = scratch(f, (size_t)amount);
    if (!out)
        return SQLITE_IOERR_NOMEM;
    int rc = cryptvfs_page_seal(&f->cipher, f->vfs, id, buf, out, (size_t)amount);
    if (rc != 0)
        return page_failure(f, rc, id->pgno);
    return f->real->pMethods->xWrite(f->real, out, amount, offset);
}

/* ---- database file --------------------------------------------------------------------------- */

/* Page 1 layout check, on the clear bytes 16..23 as they are on disk or in SQLite's buffer. */
static int check_page1_fields(cryptvfs_file *f, const uint8_t *clear16, sqlite3_int64 page_size)
{
    sqlite3_int64 declared = ((sqlite3_int64)clear16[0] << 8) | clear16[1];
    if (declared == 1)
        declared = 65536;
    if (clear16[4] != CRYPTVFS_RESERVE_BYTES) {
        cryptvfs_set_error(f->vfs, CRYPTVFS_EFORMAT,
                           "database has %u reserved bytes per page, encryption needs %d "
                           "(was the connection made ready with cryptvfs_prepare?)",
                           clear16[4], CRYPTVFS_RESERVE_BYTES);
        return CRYPTVFS_EFORMAT;
    }
    /* SQLite changes the page size of a rollback-mode database (VACUUM) by copying bytes across
     * page boundaries, which page-by-page encryption cannot follow. */
    if (declared != page_size) {
        cryptvfs_set_error(f->vfs, CRYPTVFS_EFORMAT,
                           "page size %lld declared but %lld-byte pages in use: changing the "
                           "page size of an existing encrypted database is not supported",
                           (long long)declared, (long long)page_size);
        return CRYPTVFS_EFORMAT;
    }
    return 0;
}

/* Reads and opens database page `pgno` (page_size bytes at its offset) into buf. A page wholly
 * past the end of the file is zeros with SQLITE_IOERR_SHORT_READ, as SQLite expects; a page cut
 * short is a truncated file. */
static int db_read_page(cryptvfs_file *f, uint8_t *buf, sqlite3_int64 page_size, uint32_t pgno)
{
    sqlite3_int64 offset = (sqlite3_int64)(pgno - 1) * page_size;
    int rc = f->real->pMethods->xRead(f->real, buf, (int)page_size, offset);
    if (rc == SQLITE_IOERR_SHORT_READ) {
        sqlite3_int64 size = 0;
        int src = f->real->pMethods->xFileSize(f->real, &size);
        if (src != SQLITE_OK)
            return src;
        if (size <= offset)
            return SQLITE_IOERR_SHORT_READ;
        cryptvfs_set_error(f->vfs, CRYPTVFS_ECORRUPT,
                           "database file truncated: page %u is cut short (file is %lld bytes)",
                           pgno, (long long)size);
        return SQLITE_IOERR_DATA;
    }
    if (rc != SQLITE_OK)
        return rc;
    cryptvfs_page_id id = { .kind = CRYPTVFS_PAGE_DB, .pgno = pgno };
    if (pgno == 1 && check_page1_fields(f, buf + CRYPTVFS_PAGE1_CLEAR_OFFSET, page_size) != 0)
        return SQLITE_NOTADB;
    int code = cryptvfs_page_open(&f->cipher, f->vfs, &id, buf, (size_t)page_size);
    return code == 0 ? SQLITE_OK : page_failure(f, code, pgno);
}

/* The page size, from page 1's clear bytes on disk; 0 if the file has no page 1 yet. */
static int db_page_size_on_disk(cryptvfs_file *f, sqlite3_int64 *out_page_size)
{
    uint8_t head[CRYPTVFS_PAGE1_BODY_OFFSET];
    *out_page_size = 0;
    int rc = f->real->pMethods->xRead(f->real, head, sizeof head, 0);
    if (rc == SQLITE_IOERR_SHORT_READ)
        return SQLITE_OK;
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_int64 page_size = ((sqlite3_int64)head[16] << 8) | head[17];
    if (page_size == 1)
        page_size = 65536;
    if (!cryptvfs_is_page_size(page_size)) {
        cryptvfs_set_error(f->vfs, CRYPTVFS_EFORMAT, "database header names no valid page size");
        return SQLITE_NOTADB;
    }
    *out_page_size = page_size;
    return SQLITE_OK;
}

static int db_refused(cryptvfs_file *f)
{
    cryptvfs_set_error(f->vfs, f->refused_code, "%s",
                       f->refused_code == CRYPTVFS_ENOTENCRYPTED
                           ? "database is not encrypted (a plain SQLite file): refused"
                           : "database salt changed since cryptvfs_open: refused");
    return SQLITE_NOTADB;
}

static int db_read(cryptvfs_file *f, void *buf, int amount, sqlite3_int64 offset)
{
    if (f->refused)
        return db_refused(f);
    if (cryptvfs_is_page_size(amount) && offset % amount == 0)
        return db_read_page(f, buf, amount, (uint32_t)(offset / amount + 1));

    /* Part of a page (the header): open the whole page and copy the part asked for. */
    sqlite3_int64 page_size = 0;
    int rc = db_page_size_on_disk(f, &page_size);
    if (rc != SQLITE_OK)
        return rc;
    if (page_size == 0) {
        memset(buf, 0, (size_t)amount);
        return SQLITE_IOERR_SHORT_READ;
    }
    sqlite3_int64 within = offset % page_size;
    if (within + amount > page_size) {
        cryptvfs_set_error(f->vfs, CRYPTVFS_EFORMAT,
                           "read of %d bytes at %lld crosses a page boundary", amount,
                           (long long)offset);
        return SQLITE_IOERR_READ;
    }
    uint8_t *page = scratch(f, (size_t)page_size);
    if (!page)
        return SQLITE_IOERR_NOMEM;
    rc = db_read_page(f, page, page_size, (uint32_t)(offset / page_size + 1));
    if (rc == SQLITE_IOERR_SHORT_READ)
        memset(page, 0, (size_t)page_size);
    else if (rc != SQLITE_OK)
        return rc;
    memcpy(buf, page + within, (size_t)amount);
    return rc;
}

static int db_write(cryptvfs_file *f, const void *buf, int amount, sqlite3_int64 offset)
{
    if (f->refused)
        return db_refused(f);
    if (!cryptvfs_is_page_size(amount) || offset % amount != 0)
        return refuse_write(f, amount, offset);
    uint32_t pgno = (uint32_t)(offset / amount + 1);
    const uint8_t *plain = buf;
    if (f->checkpointing && f->transit_pgno == pgno && pgno != 0 &&
        memcmp(plain + amount - CRYPTVFS_RESERVE_BYTES + CRYPTVFS_NONCE_BYTES, f->transit_tag,
               CRYPTVFS_TAG_BYTES) == 0) {
        f->transit_pgno = 0;
        return f->real->pMethods->xWrite(f->real, buf, amount, offset);
    }
    if (pgno == 1) {
        if (memcmp(plain, sqlite_magic, sizeof sqlite_magic) != 0)
            return refuse_write(f, amount, offset);
        if (check_page1_fields(f, plain + CRYPTVFS_PAGE1_CLEAR_OFFSET, amount) != 0)
            return SQLITE_IOERR_WRITE;
    }
    cryptvfs_page_id id = { .kind = CRYPTVFS_PAGE_DB, .pgno = pgno };
    return seal_and_write(f, &id, buf, amount, offset);
}

/* ---- WAL ------------------------------------------------------------------------------------- */

/* The frame header (clear part: page number, commit size, salts) of the frame whose page starts
 * at page_offset. A writer has just written it (SQLite writes a frame's header, then its page);
 * anyone else reads it from the file, since other connections may have rewritten the WAL since. */
static int wal_frame_header(cryptvfs_file *f, sqlite3_int64 page_offset, int writing,
                            uint8_t header[CRYPTVFS_WAL_FRAME_HEADER_BYTES])
{
    sqlite3_int64 header_offset = page_offset - CRYPTVFS_WAL_FRAME_HEADER_BYTES;
    if (writing && f->wal_header_offset == header_offset) {
        memcpy(header, f->wal_header, CRYPTVFS_WAL_FRAME_HEADER_BYTES);
        f->wal_header_offset = -1;
        return SQLITE_OK;
    }
    int rc = f->real->pMethods->xRead(f->real, header, CRYPTVFS_WAL_FRAME_HEADER_BYTES,
                                      header_offset);
    return rc == SQLITE_IOERR_SHORT_READ ? SQLITE_IOERR_READ : rc;
}

static void wal_page_id(cryptvfs_page_id *id, const uint8_t header[CRYPTVFS_WAL_FRAME_HEADER_BYTES])
{
    memset(id, 0, sizeof *id);
    id->kind = CRYPTVFS_PAGE_DB;
    id->pgno = cryptvfs_get_be32(header);
}

static int wal_write(cryptvfs_file *f, const void *buf, int amount, sqlite3_int64 offset)
{
    if (offset == 0 && amount == CRYPTVFS_WAL_HEADER_BYTES)
        return f->real->pMethods->xWrite(f->real, buf, amount, offset);

    if (amount == CRYPTVFS_WAL_FRAME_HEADER_BYTES && offset >= CRYPTVFS_WAL_HEADER_BYTES) {
        uint8_t header[CRYPTVFS_WAL_FRAME_HEADER_BYTES];
        memcpy(header, buf, sizeof header);
        memcpy(f->wal_header, header, sizeof header);
        f->wal_header_offset = offset;
        if (cryptvfs_wal_mask(&f->cipher, header, offset) != 0)
            return page_failure(f, CRYPTVFS_ECRYPTO, cryptvfs_get_be32(header));
        return f->real->pMethods->xWrite(f->real, header, amount, offset);
    }

    if (cryptvfs_is_page_size(amount) &&
        offset >= CRYPTVFS_WAL_HEADER_BYTES + CRYPTVFS_WAL_FRAME_HEADER_BYTES) {
        const uint8_t *plain = buf;
        size_t usable = (size_t)amount - CRYPTVFS_RESERVE_BYTES;
        /* The frame checksum SQLite already wrote covers these bytes; they are replaced by the
         * nonce and tag and read back as zeros, so anything else would break WAL recovery. */
        for (size_t i = usable; i < (size_t)amount; i++) {
            if (plain[i] != 0) {
                cryptvfs_set_error(f->vfs, CRYPTVFS_EFORMAT,
                                   "WAL page at offset %lld has data in its reserved bytes",
                                   (long long)offset);
                return SQLITE_IOERR_WRITE;
            }
        }
        uint8_t header[CRYPTVFS_WAL_FRAME_HEADER_BYTES];
        int rc = wal_frame_header(f, offset, 1, header);
        if (rc != SQLITE_OK)
            return rc;
        cryptvfs_page_id id;
        wal_page_id(&id, header);
        /* Checkpoints copy this page into the database file as it is: check page 1 here as the
         * database file would. */
        if (id.pgno == 1) {
            if (memcmp(plain, sqlite_magic, sizeof sqlite_magic) != 0)
                return refuse_write(f, amount, offset);
            if (check_page1_fields(f, plain + CRYPTVFS_PAGE1_CLEAR_OFFSET, amount) != 0)
                return SQLITE_IOERR_WRITE;
        }
        return seal_and_write(f, &id, buf, amount, offset);
    }
    return refuse_write(f, amount, offset);
}

/* True if offset is where a frame header starts, given the page size in the WAL header. */
static int wal_is_frame_header(cryptvfs_file *f, sqlite3_int64 offset)
{
    uint8_t size_field[4];
    if (offset < CRYPTVFS_WAL_HEADER_BYTES ||
        f->real->pMethods->xRead(f->real, size_field, sizeof size_field, 8) != SQLITE_OK)
        return 0;
    sqlite3_int64 page_size = cryptvfs_get_be32(size_field);
    return cryptvfs_is_page_size(page_size) &&
           (offset - CRYPTVFS_WAL_HEADER_BYTES) % (page_size + CRYPTVFS_WAL_FRAME_HEADER_BYTES) == 0;
}

/* SQLite reads a frame's two checksum words on their own when it rewrites the checksums of later
 * frames (walRewriteChecksums chains from them): unmask them as in a whole frame header. */
static int wal_unmask_checksums(cryptvfs_file *f, uint8_t *bytes, sqlite3_int64 header_offset)
{
    uint8_t header[CRYPTVFS_WAL_FRAME_HEADER_BYTES];
    int rc = f->real->pMethods->xRead(f->real, header, 16, header_offset);
    if (rc != SQLITE_OK)
        return rc == SQLITE_IOERR_SHORT_READ ? SQLITE_IOERR_READ : rc;
    memcpy(header + 16, bytes, 8);
    if (cryptvfs_wal_mask(&f->cipher, header, header_offset) != 0)
        return SQLITE_IOERR_READ;
    memcpy(bytes, header + 16, 8);
    return SQLITE_OK;
}

static int wal_read(cryptvfs_file *f, void *buf, int amount, sqlite3_int64 offset)
{
    uint8_t *bytes = buf;
    int rc = f->real->pMethods->xRead(f->real, buf, amount, offset);
    if (rc != SQLITE_OK || offset < CRYPTVFS_WAL_HEADER_BYTES)
        return rc; /* short reads are zeros past the end: nothing to decrypt */

    if (amount == CRYPTVFS_WAL_FRAME_HEADER_BYTES)
        return cryptvfs_wal_mask(&f->cipher, bytes, offset) == 0 ? SQLITE_OK : SQLITE_IOERR_READ;

    if (amount == 8 && wal_is_frame_header(f, offset - 16))
        return wal_unmask_checksums(f, bytes, offset - 16);

    if (cryptvfs_is_page_size(amount - CRYPTVFS_WAL_FRAME_HEADER_BYTES)) {
        /* A whole frame: WAL recovery walking the log. A frame that does not open is a torn
         * write from a crash (or tampering, which could as well truncate the log): hand SQLite
         * the raw bytes so its frame checksum rejects the frame and recovery stops there. */
        if (cryptvfs_wal_mask(&f->cipher, bytes, offset) != 0)
            return SQLITE_IOERR_READ;
        cryptvfs_page_id id;
        wal_page_id(&id, bytes);
        uint8_t *page = bytes + CRYPTVFS_WAL_FRAME_HEADER_BYTES;
        size_t page_size = (size_t)amount - CRYPTVFS_WAL_FRAME_HEADER_BYTES;
        if (cryptvfs_page_open(&f->cipher, f->vfs, &id, page, page_size) != 0) {
            sqlite3_log(SQLITE_NOTICE, "cryptvfs: WAL frame at %lld does not open; "
                        "recovery ends the log before it", (long long)offset);
            return f->real->pMethods->xRead(f->real, page, (int)page_size,
                                            offset + CRYPTVFS_WAL_FRAME_HEADER_BYTES);
        }
        return SQLITE_OK;
    }

    if (cryptvfs_is_page_size(amount) &&
        offset >= CRYPTVFS_WAL_HEADER_BYTES + CRYPTVFS_WAL_FRAME_HEADER_BYTES) {
        uint8_t header[CRYPTVFS_WAL_FRAME_HEADER_BYTES];
        rc = wal_frame_header(f, offset, 0, header);
        if (rc != SQLITE_OK)
            return rc;
        cryptvfs_page_id id;
        wal_page_id(&id, header);
        if (f->db_peer && f->db_peer->checkpointing) {
            /* Checkpoint copy: leave it sealed for the database file to write as it is. */
            f->db_peer->transit_pgno = id.pgno;
            memcpy(f->db_peer->transit_tag,
                   bytes + amount - CRYPTVFS_RESERVE_BYTES + CRYPTVFS_NONCE_BYTES,
                   CRYPTVFS_TAG_BYTES);
            return SQLITE_OK;
        }
        int code = cryptvfs_page_open(&f->cipher, f->vfs, &id, bytes, (size_t)amount);
        return code == 0 ? SQLITE_OK : page_failure(f, code, id.pgno);
    }
    return SQLITE_OK;
}

/* ---- rollback journal ------------------------------------------------------------------------ */

static int journal_is_page(int amount, sqlite3_int64 offset)
{
    return cryptvfs_is_page_size(amount) && offset >= 4 && offset % 8 == 4;
}

/* A record's page image is bound to the page number stored just before it and to its offset. */
static int journal_page_id(cryptvfs_file *f, sqlite3_int64 offset, cryptvfs_page_id *id)
{
    uint8_t pgno[4];
    int rc = f->real->pMethods->xRead(f->real, pgno, sizeof pgno, offset - 4);
    if (rc != SQLITE_OK)
        return rc == SQLITE_IOERR_SHORT_READ ? SQLITE_IOERR_READ : rc;
    id->kind = CRYPTVFS_PAGE_JOURNAL;
    id->pgno = cryptvfs_get_be32(pgno);
    cryptvfs_put_be64(id->context, (uint64_t)offset);
    return SQLITE_OK;
}

static int journal_write(cryptvfs_file *f, const void *buf, int amount, sqlite3_int64 offset)
{
    if (!journal_is_page(amount, offset))
        return f->real->pMethods->xWrite(f->real, buf, amount, offset);
    cryptvfs_page_id id;
    int rc = journal_page_id(f, offset, &id);
    if (rc != SQLITE_OK)
        return rc;
    return seal_and_write(f, &id, buf, amount, offset);
}

static int journal_read(cryptvfs_file *f, void *buf, int amount, sqlite3_int64 offset)
{
    int rc = f->real->pMethods->xRead(f->real, buf, amount, offset);
    if (rc != SQLITE_OK || !journal_is_page(amount, offset))
        return rc;
    cryptvfs_page_id id;
    rc = journal_page_id(f, offset, &id);
    if (rc != SQLITE_OK)
        return rc;
    int code = cryptvfs_page_open(&f->cipher, f->vfs, &id, buf, (size_t)amount);
    return code == 0 ? SQLITE_OK : page_failure(f, code, id.pgno);
}

/* ---- sqlite3_io_methods ---------------------------------------------------------------------- */

static cryptvfs_file *as_file(sqlite3_file *file)
{
    return (cryptvfs_file *)file;
}

static int x_close(sqlite3_file *file)
{
    cryptvfs_file *f = as_file(file);
    int rc = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    if (f->has_cipher)
        cryptvfs_cipher_free(&f->cipher);
    if (f->scratch) {
        mbedtls_platform_zeroize(f->scratch, f->scratch_size);
        sqlite3_free(f->scratch);
    }
    mbedtls_platform_zeroize(f->wal_header, sizeof f->wal_header);
    return rc;
}

static int x_read(sqlite3_file *file, void *buf, int amount, sqlite3_int64 offset)
{
    cryptvfs_file *f = as_file(file);
    switch (f->kind) {
    case CRYPTVFS_FILE_DB: return db_read(f, buf, amount, offset);
    case CRYPTVFS_FILE_WAL: return wal_read(f, buf, amount, offset);
    case CRYPTVFS_FILE_JOURNAL: return journal_read(f, buf, amount, offset);
    case CRYPTVFS_FILE_PASSTHROUGH: break;
    }
    return f->real->pMethods->xRead(f->real, buf, amount, offset);
}

static int x_write(sqlite3_file *file, const void *buf, int amount, sqlite3_int64 offset)
{
    cryptvfs_file *f = as_file(file);
    switch (f->kind) {
    case CRYPTVFS_FILE_DB: return db_write(f, buf, amount, offset);
    case CRYPTVFS_FILE_WAL: return wal_write(f, buf, amount, offset);
    case CRYPTVFS_FILE_JOURNAL: return journal_write(f, buf, amount, offset);
    case CRYPTVFS_FILE_PASSTHROUGH: break;
    }
    return f->real->pMethods->xWrite(f->real, buf, amount, offset);
}

static int x_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    sqlite3_file *real = as_file(file)->real;
    return real->pMethods->xTruncate(real, size);
}

static int x_sync(sqlite3_file *file, int flags)
{
    sqlite3_file *real = as_file(file)->real;
    return real->pMethods->xSync(real, flags);
}

static int x_file_size(sqlite3_file *file, sqlite3_int64 *out_size)
{
    sqlite3_file *real = as_file(file)->real;
    return real->pMethods->xFileSize(real, out_size);
}

static int x_lock(sqlite3_file *file, int lock)
{
    sqlite3_file *real = as_file(file)->real;
    return real->pMethods->xLock(real, lock);
}

static int x_unlock(sqlite3_file *file, int lock)
{
    sqlite3_file *real = as_file(file)->real;
    return real->pMethods->xUnlock(real, lock);
}

static int x_check_reserved_lock(sqlite3_file *file, int *out_reserved)
{
    sqlite3_file *real = as_file(file)->real;
    return real->pMethods->xCheckReservedLock(real, out_reserved);
}

static int x_file_control(sqlite3_file *file, int op, void *arg)
{
    cryptvfs_file *f = as_file(file);
    if (op == SQLITE_FCNTL_CKPT_START || op == SQLITE_FCNTL_CKPT_DONE) {
        f->checkpointing = op == SQLITE_FCNTL_CKPT_START && f->kind == CRYPTVFS_FILE_DB;
        f->transit_pgno = 0;
    }
    if (op == SQLITE_FCNTL_VFSNAME) {
        int rc = f->real->pMethods->xFileControl(f->real, op, arg);
        if (rc == SQLITE_OK) {
            char **name = arg;
            char *joined = sqlite3_mprintf("%s/%z", f->vfs->name, *name);
            if (!joined)
                return SQLITE_NOMEM;
            *name = joined;
        }
        return rc;
    }
    return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int x_sector_size(sqlite3_file *file)
{
    sqlite3_file *real = as_file(file)->real;
    return real->pMethods->xSectorSize(real);
}

static int x_device_characteristics(sqlite3_file *file)
{
    sqlite3_file *real = as_file(file)->real;
    return real->pMethods->xDeviceCharacteristics(real);
}

static int x_shm_map(sqlite3_file *file, int region, int size, int extend, void volatile **out)
{
    sqlite3_file *real = as_file(file)->real;
    return real->pMethods->xShmMap(real, region, size, extend, out);
}

static int x_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    sqlite3_file *real = as_file(file)->real;
    return real->pMethods->xShmLock(real, offset, n, flags);
}

static void x_shm_barrier(sqlite3_file *file)
{
    sqlite3_file *real = as_file(file)->real;
    real->pMethods->xShmBarrier(real);
}

static int x_shm_unmap(sqlite3_file *file, int delete_flag)
{
    sqlite3_file *real = as_file(file)->real;
    return real->pMethods->xShmUnmap(real, delete_flag);
}

/* Memory-mapped reads would hand SQLite ciphertext: always decline, SQLite falls back to xRead. */
static int x_fetch(sqlite3_file *file, sqlite3_int64 offset, int amount, void **out)
{
    (void)file;
    (void)offset;
    (void)amount;
    *out = NULL;
    return SQLITE_OK;
}

static int x_unfetch(sqlite3_file *file, sqlite3_int64 offset, void *page)
{
    (void)file;
    (void)offset;
    (void)page;
    return SQLITE_OK;
}

static const sqlite3_io_methods file_methods = {
    3,
    x_close,
    x_read,
    x_write,
    x_truncate,
    x_sync,
    x_file_size,
    x_lock,
    x_unlock,
    x_check_reserved_lock,
    x_file_control,
    x_sector_size,
    x_device_characteristics,
    x_shm_map,
    x_shm_lock,
    x_shm_barrier,
    x_shm_unmap,
    x_fetch,
    x_unfetch,
};

/* Checks the first bytes of an existing database: a plain SQLite file or one written under
 * another salt is refused (reads then fail with SQLITE_NOTADB and a recorded reason). */
static int db_check_identity(cryptvfs_file *f)
{
    uint8_t head[CRYPTVFS_SALT_BYTES];
    int rc = f->real->pMethods->xRead(f->real, head, sizeof head, 0);
    if (rc == SQLITE_IOERR_SHORT_READ)
        return SQLITE_OK; /* new or empty file: page 1 will carry the instance's salt */
    if (rc != SQLITE_OK)
        return rc;
    if (memcmp(head, sqlite_magic, sizeof sqlite_magic) == 0) {
        f->refused = 1;
        f->refused_code = CRYPTVFS_ENOTENCRYPTED;
    } else if (memcmp(head, f->vfs->salt, sizeof head) != 0) {
        f->refused = 1;
        f->refused_code = CRYPTVFS_EWRONGKEY;
    }
    return SQLITE_OK;
}

int cryptvfs_file_open(cryptvfs *vfs, cryptvfs_file_kind kind, sqlite3_file *file,
                       const char *name, int flags, int *out_flags)
{
    cryptvfs_file *f = as_file(file);
    memset(f, 0, sizeof *f);
    f->vfs = vfs;
    f->kind = kind;
    f->real = (sqlite3_file *)&f[1];
    f->wal_header_offset = -1;
    int rc = vfs->root->xOpen(vfs->root, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK)
        return rc; /* pMethods stays NULL: SQLite will not call xClose */
    file->pMethods = &file_methods;
    if (kind == CRYPTVFS_FILE_PASSTHROUGH)
        return SQLITE_OK;
    if (cryptvfs_cipher_init(&f->cipher, vfs) != 0) {
        cryptvfs_set_error(vfs, CRYPTVFS_ECRYPTO, "cannot set up AES-256-GCM for %s",
                           kind_name(kind));
        return SQLITE_CANTOPEN; /* SQLite still calls xClose, which closes the real file */
    }
    f->has_cipher = 1;
    if (kind == CRYPTVFS_FILE_DB)
        rc = db_check_identity(f);
    if (kind == CRYPTVFS_FILE_WAL) {
        /* SQLite passes the WAL's name as it allocated it beside its database file object. */
        sqlite3_file *db = sqlite3_database_file_object(name);
        if (db && db->pMethods == &file_methods && as_file(db)->vfs == vfs &&
            as_file(db)->kind == CRYPTVFS_FILE_DB)
            f->db_peer = as_file(db);
    }
    return rc;
}
