/*
 * The audit key and signed checkpoints. The key lives in a file outside the store, so that
 * whoever can write the store (and nothing more) cannot recompute the audit chain; checkpoints
 * carry the chain's head out of the store, so that even the key's holder cannot rewrite what
 * was checkpointed before. docs/threat-model.md says which adversary each one stops.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/md.h>
#include <mbedtls/sha256.h>

#include "store_internal.h"

enum { KEY_SIZE = 32, KEY_HEX = 2 * KEY_SIZE, KEY_ID_SIZE = 8 };

static const char checkpoint_magic[] = "outpost-audit-checkpoint v1 ";

static void to_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = 0;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Exactly 2n lowercase hex digits into n bytes; -1 otherwise. */
static int from_hex(const char *hex, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hi < 0 ? -1 : hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int store_audit_key_create(const char *path, char *err, size_t err_size)
{
    uint8_t key[KEY_SIZE];
    char text[KEY_HEX + 2];
    size_t got = 0;
    int fd;

    while (got < sizeof key) {
        ssize_t n = getrandom(key + got, sizeof key - got, 0);
        if (n < 0 && errno != EINTR) {
            snprintf(err, err_size, "no randomness for the audit key: %s", strerror(errno));
            return STORE_EIO;
        }
        if (n > 0)
            got += (size_t)n;
    }
    to_hex(key, sizeof key, text);
    explicit_bzero(key, sizeof key);
    text[KEY_HEX] = '\n';
    text[KEY_HEX + 1] = 0;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(err, err_size, "cannot create the audit key %s: %s", path, strerror(e));
        explicit_bzero(text, sizeof text);
        return e == EEXIST ? STORE_EEXISTS : STORE_EIO;
    }
    /* The umask may have narrowed the mode, never widened it; fchmod makes it exact. */
    bool ok = fchmod(fd, 0600) == 0 && write(fd, text, KEY_HEX + 1) == KEY_HEX + 1 &&
              fsync(fd) == 0;
    int e = errno;
    explicit_bzero(text, sizeof text);
    if (close(fd) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (!ok) {
        snprintf(err, err_size, "cannot write the audit key %s: %s", path, strerror(e));
        unlink(path);
        return STORE_EIO;
    }
    return STORE_OK;
}

int store_audit_key_load(store *st, const char *path)
{
    char text[KEY_HEX + 3];
    struct stat sb;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int out = STORE_OK;

    if (fd < 0)
        return store_fail(st, STORE_EINVAL, "cannot read the audit key %s: %s", path,
                          strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        out = store_fail(st, STORE_EINVAL, "the audit key %s is not a regular file", path);
    } else if ((sb.st_mode & 077) != 0) {
        out = store_fail(st, STORE_EINVAL,
                         "the audit key %s is open to others (mode %04o): it must be readable by "
                         "its owner only (chmod 600)",
                         path, (unsigned)(sb.st_mode & 07777));
    } else {
        n = read(fd, text, sizeof text);
        if (n != KEY_HEX + 1 || text[KEY_HEX] != '\n' ||
            from_hex(text, KEY_SIZE, st->audit_key) != 0)
            out = store_fail(st, STORE_EINVAL,
                             "the audit key %s is malformed (64 lowercase hex digits and a "
                             "newline expected)",
                             path);
    }
    close(fd);
    explicit_bzero(text, sizeof text);
    st->has_audit_key = out == STORE_OK;
    if (out != STORE_OK)
        explicit_bzero(st->audit_key, sizeof st->audit_key);
    return out;
}

int store_audit_mac(store *st, const void *const *parts, const size_t *n_bytes, size_t n_parts,
                    uint8_t out[32])
{
    mbedtls_md_context_t ctx;
    int rc;

    if (!st->has_audit_key)
        return store_fail(st, STORE_EINVAL,
                          "no audit key loaded (outpost-admin init makes one; see "
                          "docs/operations.md)");
    mbedtls_md_init(&ctx);
    rc = mbedtls_md_setup(&ctx, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
    if (rc == 0)
        rc = mbedtls_md_hmac_starts(&ctx, st->audit_key, sizeof st->audit_key);
    for (size_t i = 0; rc == 0 && i < n_parts; i++)
        rc = mbedtls_md_hmac_update(&ctx, parts[i], n_bytes[i]);
    if (rc == 0)
        rc = mbedtls_md_hmac_finish(&ctx, out);
    mbedtls_md_free(&ctx);
    return rc == 0 ? STORE_OK : store_fail(st, STORE_EIO, "HMAC-SHA-256 failed");
}

/* The key's public name: it tells which key signed a checkpoint without revealing the key. */
static int key_id(store *st, char out_hex[2 * KEY_ID_SIZE + 1])
{
    static const char label[] = "outpost audit key id";
    uint8_t digest[32];
    mbedtls_sha256_context ctx;
    int rc;

    mbedtls_sha256_init(&ctx);
    rc = mbedtls_sha256_starts(&ctx, 0);
    if (rc == 0)
        rc = mbedtls_sha256_update(&ctx, (const uint8_t *)label, sizeof label - 1);
    if (rc == 0)
        rc = mbedtls_sha256_update(&ctx, st->audit_key, sizeof st->audit_key);
    if (rc == 0)
        rc = mbedtls_sha256_finish(&ctx, digest);
    mbedtls_sha256_free(&ctx);
    if (rc != 0)
        return store_fail(st, STORE_EIO, "sha256 failed");
    to_hex(digest, KEY_ID_SIZE, out_hex);
    return STORE_OK;
}

static int line_mac(store *st, const char *body, size_t n, char out_hex[65])
{
    const void *parts[] = {body};
    uint8_t mac[32];
    int out = store_audit_mac(st, parts, &n, 1, mac);
    if (out == STORE_OK)
        to_hex(mac, sizeof mac, out_hex);
    return out;
}

int store_audit_checkpoint(store *st, uint64_t now_ms, char *out_line, uint64_t *out_n_rows)
{
    uint8_t head[32];
    char head_hex[65], id[2 * KEY_ID_SIZE + 1], mac[65];
    int n, out = store_audit_head(st, out_n_rows, head);

    out_line[0] = 0;
    if (out == STORE_OK && !st->has_audit_key)
        out = store_audit_mac(st, NULL, NULL, 0, head); /* the "no key" message */
    /* A checkpoint vouches for the log: never for one whose end does not match its seal. */
    if (out == STORE_OK)
        out = store_audit_seal_check(st);
    if (out == STORE_OK)
        out = key_id(st, id);
    if (out != STORE_OK)
        return out;
    to_hex(head, sizeof head, head_hex);
    n = snprintf(out_line, STORE_CHECKPOINT_LINE_MAX, "%srows=%" PRIu64 " head=%s time_ms=%" PRIu64
                 " key=%s", checkpoint_magic, *out_n_rows, head_hex, now_ms, id);
    out = line_mac(st, out_line, (size_t)n, mac);
    if (out == STORE_OK)
        snprintf(out_line + n, STORE_CHECKPOINT_LINE_MAX - (size_t)n, " mac=%s", mac);
    else
        out_line[0] = 0;
    return out;
}

/* Compares two strings of equal length without an early exit. */
static bool same(const char *a, const char *b, size_t n)
{
    unsigned diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned)(a[i] ^ b[i]);
    return diff == 0;
}

int store_audit_verify_checkpoint(store *st, const char *line, int64_t *out_bad_id)
{
    uint64_t rows = 0, time_ms = 0, n_rows = 0;
    char head_hex[65], id[17], mac_hex[65], want_id[17], want_mac[65];
    uint8_t head[32], have[32];
    int used = 0, out;

    *out_bad_id = 0;
    if (strncmp(line, checkpoint_magic, sizeof checkpoint_magic - 1) != 0 ||
        sscanf(line + sizeof checkpoint_magic - 1,
               "rows=%" SCNu64 " head=%64[0-9a-f] time_ms=%" SCNu64 " key=%16[0-9a-f] mac=%n",
               &rows, head_hex, &time_ms, id, &used) != 4 ||
        used == 0 || strlen(head_hex) != 64 || strlen(id) != 16 ||
        strlen(line + sizeof checkpoint_magic - 1 + used) != 64 ||
        from_hex(head_hex, sizeof head, head) != 0)
        return store_fail(st, STORE_EINVAL, "not an audit checkpoint line");
    snprintf(mac_hex, sizeof mac_hex, "%s", line + sizeof checkpoint_magic - 1 + used);
    out = key_id(st, want_id);
    if (out == STORE_OK && !st->has_audit_key)
        out = store_audit_mac(st, NULL, NULL, 0, have);
    if (out != STORE_OK)
        return out;
    if (strcmp(id, want_id) != 0)
        return store_fail(st, STORE_EINVAL,
                          "the checkpoint was signed with another audit key (key %s, this key "
                          "is %s)",
                          id, want_id);
    out = line_mac(st, line, strlen(line) - strlen(" mac=") - 64, want_mac);
    if (out != STORE_OK)
        return out;
    if (!same(mac_hex, want_mac, 64))
        return store_fail(st, STORE_ETAMPERED,
                          "the checkpoint of %" PRIu64 " rows does not verify: it was altered "
                          "or forged",
                          rows);
    out = store_audit_chain_at(st, (int64_t)rows, &n_rows, have);
    if (out != STORE_OK)
        return out;
    if (rows > n_rows) {
        *out_bad_id = (int64_t)n_rows + 1;
        return store_fail(st, STORE_ETAMPERED,
                          "the checkpoint of %" PRIu64 " rows (time_ms %" PRIu64
                          ") finds only %" PRIu64 " rows: rows %" PRIu64 " on were removed",
                          rows, time_ms, n_rows, n_rows + 1);
    }
    if (memcmp(have, head, sizeof head) != 0) {
        *out_bad_id = (int64_t)rows;
        return store_fail(st, STORE_ETAMPERED,
                          "the log up to row %" PRIu64 " no longer chains to the checkpoint "
                          "of %" PRIu64 " rows (time_ms %" PRIu64 "): rows up to it were "
                          "changed, removed or inserted",
                          rows, rows, time_ms);
    }
    return STORE_OK;
}
