/* cryptvfs page format: key schedule, sealing and opening of one page, WAL checksum masking.
 *
 * Every page ends with CRYPTVFS_RESERVE_BYTES that SQLite leaves alone (the database is created
 * with that many reserved bytes per page):
 *
 *     [0, usable)                 ciphertext of the page's first `usable` bytes
 *     [usable, usable+12)         nonce: 96 random bits, fresh for every write
 *     [usable+12, usable+28)      GCM tag
 *     [usable+28, usable+32)      key check value: tells a wrong key from a damaged page
 *
 * Page 1 of the database file differs: bytes 0..15 hold the file's salt in clear (SQLite's magic
 * string is put back on read), bytes 16..23 stay in clear (authenticated as associated data) and
 * encryption starts at byte 24.
 *
 * Associated data binds each page to its place: "OPC1", the structure (database and WAL 'D',
 * journal 'J'), the page number, the database salt, 8 bytes of structure context and, for page 1,
 * its clear bytes. A page copied to another page number or another replica fails. A WAL frame's
 * page is sealed as the database page it will become, so checkpoints copy it sealed; its place in
 * the WAL is guarded by SQLite's frame checksums, which are masked with a key (cryptvfs_wal_mask)
 * so a frame cannot be forged or moved without the key.
 */
#include <string.h>

#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <psa/crypto.h>

#include "cryptvfs_int.h"

#define AAD_MAX (8 + 4 + CRYPTVFS_SALT_BYTES + 8 + CRYPTVFS_PAGE1_CLEAR_BYTES)

static const uint8_t sqlite_magic[16] = "SQLite format 3";

static int hmac_label(const uint8_t master[CRYPTVFS_KEY_BYTES], const char *label,
                      const uint8_t salt[CRYPTVFS_SALT_BYTES], uint8_t out[32])
{
    uint8_t msg[64];
    size_t label_len = strlen(label);
    if (label_len + CRYPTVFS_SALT_BYTES > sizeof msg)
        return CRYPTVFS_EINVAL;
    memcpy(msg, label, label_len);
    memcpy(msg + label_len, salt, CRYPTVFS_SALT_BYTES);
    int rc = mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), master,
                             CRYPTVFS_KEY_BYTES, msg, label_len + CRYPTVFS_SALT_BYTES, out);
    return rc == 0 ? 0 : CRYPTVFS_ECRYPTO;
}

/* Separate keys for separate jobs, each also bound to the salt, so one app key used for two
 * replicas gives unrelated page keys. */
int cryptvfs_keys_derive(cryptvfs *vfs, const uint8_t master[CRYPTVFS_KEY_BYTES])
{
    uint8_t check[32];
    int rc = hmac_label(master, "outpost-cryptvfs-1 page", vfs->salt, vfs->page_key);
    if (rc == 0)
        rc = hmac_label(master, "outpost-cryptvfs-1 wal-mask", vfs->salt, vfs->mask_key);
    if (rc == 0)
        rc = hmac_label(master, "outpost-cryptvfs-1 check", vfs->salt, check);
    if (rc == 0)
        memcpy(vfs->kcv, check, CRYPTVFS_KCV_BYTES);
    mbedtls_platform_zeroize(check, sizeof check);
    return rc;
}

int cryptvfs_cipher_init(cryptvfs_cipher *cipher, const cryptvfs *vfs)
{
    mbedtls_gcm_init(&cipher->gcm);
    mbedtls_aes_init(&cipher->mask);
    if (mbedtls_gcm_setkey(&cipher->gcm, MBEDTLS_CIPHER_ID_AES, vfs->page_key, 256) != 0 ||
        mbedtls_aes_setkey_enc(&cipher->mask, vfs->mask_key, 256) != 0) {
        cryptvfs_cipher_free(cipher);
        return CRYPTVFS_ECRYPTO;
    }
    return 0;
}

void cryptvfs_cipher_free(cryptvfs_cipher *cipher)
{
    mbedtls_gcm_free(&cipher->gcm);
    mbedtls_aes_free(&cipher->mask);
}

static int is_page1(const cryptvfs_page_id *id)
{
    return id->kind == CRYPTVFS_PAGE_DB && id->pgno == 1;
}

static size_t build_aad(uint8_t aad[AAD_MAX], const cryptvfs *vfs, const cryptvfs_page_id *id,
                        const uint8_t *page1_clear)
{
    size_t n = 0;
    memcpy(aad, "OPC1", 4);
    aad[4] = (uint8_t)id->kind;
    aad[5] = aad[6] = aad[7] = 0;
    aad[8] = (uint8_t)(id->pgno >> 24);
    aad[9] = (uint8_t)(id->pgno >> 16);
    aad[10] = (uint8_t)(id->pgno >> 8);
    aad[11] = (uint8_t)id->pgno;
    n = 12;
    memcpy(aad + n, vfs->salt, CRYPTVFS_SALT_BYTES);
    n += CRYPTVFS_SALT_BYTES;
    memcpy(aad + n, id->context, sizeof id->context);
    n += sizeof id->context;
    if (page1_clear) {
        memcpy(aad + n, page1_clear, CRYPTVFS_PAGE1_CLEAR_BYTES);
        n += CRYPTVFS_PAGE1_CLEAR_BYTES;
    }
    return n;
}

int cryptvfs_page_seal(cryptvfs_cipher *cipher, const cryptvfs *vfs, const cryptvfs_page_id *id,
                       const uint8_t *plain, uint8_t *out, size_t page_size)
{
    size_t usable = page_size - CRYPTVFS_RESERVE_BYTES;
    uint8_t *nonce = out + usable;
    uint8_t *tag = nonce + CRYPTVFS_NONCE_BYTES;
    uint8_t *kcv = tag + CRYPTVFS_TAG_BYTES;
    size_t body = 0;
    const uint8_t *page1_clear = NULL;
    uint8_t aad[AAD_MAX];

    if (psa_generate_random(nonce, CRYPTVFS_NONCE_BYTES) != PSA_SUCCESS)
        return CRYPTVFS_ECRYPTO;
    if (is_page1(id)) {
        memcpy(out, vfs->salt, CRYPTVFS_SALT_BYTES);
        memcpy(out + CRYPTVFS_PAGE1_CLEAR_OFFSET, plain + CRYPTVFS_PAGE1_CLEAR_OFFSET,
               CRYPTVFS_PAGE1_CLEAR_BYTES);
        page1_clear = out + CRYPTVFS_PAGE1_CLEAR_OFFSET;
        body = CRYPTVFS_PAGE1_BODY_OFFSET;
    }
    size_t aad_len = build_aad(aad, vfs, id, page1_clear);
    if (mbedtls_gcm_crypt_and_tag(&cipher->gcm, MBEDTLS_GCM_ENCRYPT, usable - body, nonce,
                                  CRYPTVFS_NONCE_BYTES, aad, aad_len, plain + body, out + body,
                                  CRYPTVFS_TAG_BYTES, tag) != 0)
        return CRYPTVFS_ECRYPTO;
    memcpy(kcv, vfs->kcv, CRYPTVFS_KCV_BYTES);
    return 0;
}

int cryptvfs_page_open(cryptvfs_cipher *cipher, const cryptvfs *vfs, const cryptvfs_page_id *id,
                       uint8_t *page, size_t page_size)
{
    size_t usable = page_size - CRYPTVFS_RESERVE_BYTES;
    uint8_t nonce[CRYPTVFS_NONCE_BYTES];
    uint8_t tag[CRYPTVFS_TAG_BYTES];
    size_t body = 0;
    const uint8_t *page1_clear = NULL;
    uint8_t aad[AAD_MAX];

    memcpy(nonce, page + usable, sizeof nonce);
    memcpy(tag, page + usable + CRYPTVFS_NONCE_BYTES, sizeof tag);
    if (memcmp(page + usable + CRYPTVFS_NONCE_BYTES + CRYPTVFS_TAG_BYTES, vfs->kcv,
               CRYPTVFS_KCV_BYTES) != 0)
        return CRYPTVFS_EWRONGKEY;
    if (is_page1(id)) {
        page1_clear = page + CRYPTVFS_PAGE1_CLEAR_OFFSET;
        body = CRYPTVFS_PAGE1_BODY_OFFSET;
    }
    size_t aad_len = build_aad(aad, vfs, id, page1_clear);
    int rc = mbedtls_gcm_auth_decrypt(&cipher->gcm, usable - body, nonce, sizeof nonce, aad,
                                      aad_len, tag, sizeof tag, page + body, page + body);
    if (rc == MBEDTLS_ERR_GCM_AUTH_FAILED)
        return CRYPTVFS_ECORRUPT;
    if (rc != 0)
        return CRYPTVFS_ECRYPTO;
    if (body)
        memcpy(page, sqlite_magic, sizeof sqlite_magic);
    /* SQLite computes WAL frame checksums over whole pages, reserved bytes included: hand it
     * zeros here, which is what its page buffers hold there, so a checksum computed at write
     * time matches the page read back. */
    memset(page + usable, 0, CRYPTVFS_RESERVE_BYTES);
    return 0;
}

int cryptvfs_wal_mask(cryptvfs_cipher *cipher, uint8_t frame_header[CRYPTVFS_WAL_FRAME_HEADER_BYTES],
                      sqlite3_int64 offset)
{
    uint8_t block[16];
    uint8_t stream[16];
    memcpy(block, frame_header + 8, 8); /* salt-1, salt-2: change with every WAL generation */
    cryptvfs_put_be64(block + 8, (uint64_t)offset);
    if (mbedtls_aes_crypt_ecb(&cipher->mask, MBEDTLS_AES_ENCRYPT, block, stream) != 0)
        return CRYPTVFS_ECRYPTO;
    for (size_t i = 0; i < 8; i++)
        frame_header[16 + i] ^= stream[i];
    mbedtls_platform_zeroize(stream, sizeof stream);
    return 0;
}
