/*
 * Devices: enrollment codes, enrollment, authentication, revocation, the device list.
 *
 * Secrets and codes are 256-bit and 100-bit random values from mbedTLS's PSA generator, so a
 * plain SHA-256 of them is enough to store (no password stretching needed: nobody can guess
 * them). Secrets are compared in constant time.
 */
#include <mbedtls/constant_time.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <psa/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* Crockford base32: no I, L, O, U, so a code read aloud or typed from paper is unambiguous. */
static const char code_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
enum { CODE_CHARS = 20, CODE_GROUP = 5 };

static int random_bytes(store *st, uint8_t *out, size_t n)
{
    psa_status_t status = psa_crypto_init();
    if (status == PSA_SUCCESS)
        status = psa_generate_random(out, n);
    if (status != PSA_SUCCESS)
        return store_fail(st, STORE_EIO, "random generator failed (PSA status %d)", (int)status);
    return 0;
}

static int sha256(store *st, const void *data, size_t n, uint8_t out[32])
{
    if (mbedtls_sha256(data, n, out, 0) != 0)
        return store_fail(st, STORE_EIO, "sha256 failed");
    return 0;
}

/* Upper-cases, drops dashes and spaces, reads O as 0 and I/L as 1. False if anything else. */
static bool code_normalize(const char *code, char out[CODE_CHARS + 1])
{
    size_t n = 0;
    for (const char *p = code; *p; p++) {
        char c = *p;
        if (c == '-' || c == ' ')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c == 'O')
            c = '0';
        if (c == 'I' || c == 'L')
            c = '1';
        if (strchr(code_alphabet, c) == NULL || n == CODE_CHARS)
            return false;
        out[n++] = c;
    }
    out[n] = 0;
    return n == CODE_CHARS;
}

int store_enroll_code_create(store *st, const char *worker_id, uint64_t now_ms, uint64_t ttl_ms,
                             char out_code[STORE_CODE_SIZE])
{
    out_code[0] = 0;
    if (!store_id_valid(worker_id))
        return store_fail(st, STORE_EINVAL, "invalid worker id");
    if (ttl_ms == 0)
        return store_fail(st, STORE_EINVAL, "an enrollment code needs a validity time");
    uint8_t rnd[CODE_CHARS];
    int out = random_bytes(st, rnd, sizeof rnd);
    if (out != 0)
        return out;
    char plain[CODE_CHARS + 1];
    for (size_t i = 0; i < CODE_CHARS; i++)
        plain[i] = code_alphabet[rnd[i] & 31u];
    plain[CODE_CHARS] = 0;
    uint8_t hash[32];
    out = sha256(st, plain, CODE_CHARS, hash);
    if (out != 0)
        return out;
    out = store_begin(st, true);
    if (out != 0)
        return out;
    db_stmt *stmt = NULL;
    int rc =
        db_prepare(st->conn, "SELECT 1 FROM _outpost_workers WHERE id = ?1", &stmt);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 1, worker_id);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    db_finalize(stmt);
    stmt = NULL;
    if (rc == DB_DONE) {
        out = store_fail(st, STORE_ENOTFOUND, "no worker %s (add it with: worker add %s --team T)",
                         worker_id, worker_id);
        goto fail;
    }
    if (rc != DB_ROW) {
        out = store_fail_db(st, rc, "look up worker");
        goto fail;
    }
    rc = db_prepare(st->conn,
                    "INSERT INTO _outpost_enroll_codes(code_hash, worker_id, created_ms,"
                    " expires_ms) VALUES(?1, ?2, ?3, ?4)",
                    &stmt);
    if (rc == STORE_OK) {
        db_bind_blob(stmt, 1, hash, sizeof hash);
        db_bind_text(stmt, 2, worker_id);
        db_bind_int64(stmt, 3, (int64_t)now_ms);
        db_bind_int64(stmt, 4, (int64_t)(now_ms + ttl_ms));
        rc = db_step(stmt);
    }
    db_finalize(stmt);
    if (rc != DB_DONE) {
        out = store_fail_db(st, rc, "store enrollment code");
        goto fail;
    }
    out = store_commit(st);
    if (out != 0)
        return out;
    size_t at = 0;
    for (size_t i = 0; i < CODE_CHARS; i++) {
        if (i > 0 && i % CODE_GROUP == 0)
            out_code[at++] = '-';
        out_code[at++] = plain[i];
    }
    out_code[at] = 0;
    return 0;
fail:
    store_rollback(st);
    return out;
}

static void format_uuid(const uint8_t b[16], char out[40])
{
    static const char hex[] = "0123456789abcdef";
    size_t at = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[at++] = '-';
        out[at++] = hex[b[i] >> 4];
        out[at++] = hex[b[i] & 15u];
    }
    out[at] = 0;
}

int store_random_uuid(store *st, char out[40])
{
    uint8_t b[16];
    int out_rc = random_bytes(st, b, sizeof b);
    if (out_rc != 0)
        return out_rc;
    b[6] = (uint8_t)((b[6] & 0x0fu) | 0x40u);
    b[8] = (uint8_t)((b[8] & 0x3fu) | 0x80u);
    format_uuid(b, out);
    return 0;
}

int store_device_enroll(store *st, const char *code, const char *device_name,
                        char out_device_id[40], uint8_t out_secret[32])
{
    out_device_id[0] = 0;
    char plain[CODE_CHARS + 1];
    if (code == NULL || !code_normalize(code, plain))
        return store_fail(st, STORE_ECODE, "enrollment code unknown, used or expired");
    uint8_t code_hash[32], secret[32], secret_hash[32];
    /* A random (version 4) UUID: device ids reveal nothing about when or where. */
    char device_id[40];
    int out = sha256(st, plain, CODE_CHARS, code_hash);
    if (out == 0)
        out = random_bytes(st, secret, sizeof secret);
    if (out == 0)
        out = store_random_uuid(st, device_id);
    if (out == 0)
        out = sha256(st, secret, sizeof secret, secret_hash);
    if (out != 0)
        goto wipe;

    out = store_begin(st, true);
    if (out != 0)
        goto wipe;
    uint64_t now = store_now_ms();
    db_stmt *stmt = NULL;
    char worker[64] = "";
    int rc = db_prepare(st->conn,
                        "SELECT worker_id FROM _outpost_enroll_codes WHERE code_hash = ?1"
                        " AND used_ms IS NULL AND expires_ms > ?2",
                        &stmt);
    if (rc == STORE_OK) {
        db_bind_blob(stmt, 1, code_hash, sizeof code_hash);
        db_bind_int64(stmt, 2, (int64_t)now);
        rc = db_step(stmt);
        if (rc == DB_ROW)
            snprintf(worker, sizeof worker, "%s", db_column_text(stmt, 0));
    }
    db_finalize(stmt);
    stmt = NULL;
    if (rc == DB_DONE) {
        out = store_fail(st, STORE_ECODE, "enrollment code unknown, used or expired");
        goto fail;
    }
    if (rc != DB_ROW) {
        out = store_fail_db(st, rc, "look up enrollment code");
        goto fail;
    }
    rc = db_prepare(st->conn,
                    "UPDATE _outpost_enroll_codes SET used_ms = ?2, device_id = ?3"
                    " WHERE code_hash = ?1",
                    &stmt);
    if (rc == STORE_OK) {
        db_bind_blob(stmt, 1, code_hash, sizeof code_hash);
        db_bind_int64(stmt, 2, (int64_t)now);
        db_bind_text(stmt, 3, device_id);
        rc = db_step(stmt);
    }
    db_finalize(stmt);
    stmt = NULL;
    if (rc == DB_DONE)
        rc = db_prepare(st->conn,
                        "INSERT INTO _outpost_devices(id, worker_id, name, secret_hash,"
                        " enrolled_ms) VALUES(?1, ?2, ?3, ?4, ?5)",
                        &stmt);
    else if (rc == STORE_OK)
        rc = STORE_EIO;
    if (rc == STORE_OK) {
        db_bind_text(stmt, 1, device_id);
        db_bind_text(stmt, 2, worker);
        if (device_name != NULL) {
            char label[64];
            snprintf(label, sizeof label, "%s", device_name); /* the label keeps 63 bytes */
            db_bind_text(stmt, 3, label);
        }
        db_bind_blob(stmt, 4, secret_hash, sizeof secret_hash);
        db_bind_int64(stmt, 5, (int64_t)now);
        rc = db_step(stmt);
    }
    db_finalize(stmt);
    if (rc != DB_DONE) {
        out = store_fail_db(st, rc, "enroll device");
        goto fail;
    }
    out = store_commit(st);
    if (out != 0)
        goto wipe;
    memcpy(out_device_id, device_id, sizeof device_id);
    memcpy(out_secret, secret, sizeof secret);
    goto wipe;
fail:
    store_rollback(st);
wipe:
    /* The only copy of the secret that outlives this call is the caller's. */
    mbedtls_platform_zeroize(secret, sizeof secret);
    return out;
}

void store_device_clear(store_device *dev)
{
    if (dev == NULL)
        return;
    free(dev->teams);
    memset(dev, 0, sizeof *dev);
}

int store_device_auth(store *st, const char *device_id, const uint8_t secret[32],
                      store_device *out_dev)
{
    store_device_clear(out_dev);
    uint8_t given_hash[32], stored_hash[32];
    /* Unknown devices are compared against a fixed hash too, so the time taken does not tell
     * an attacker whether a device id exists. */
    memset(stored_hash, 0xa5, sizeof stored_hash);
    int out = sha256(st, secret, 32, given_hash);
    if (out != 0)
        return out;
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn,
                        "SELECT secret_hash, worker_id, revoked, wipe, acked_seq, cursor,"
                        " coalesce(last_seen_ms, 0) FROM _outpost_devices WHERE id = ?1",
                        &stmt);
    if (rc == STORE_OK)
        rc = db_bind_text(stmt, 1, device_id ? device_id : "");
    if (rc == STORE_OK)
        rc = db_step(stmt);
    bool found = rc == DB_ROW;
    if (found) {
        size_t n_hash = 0;
        const void *hash = db_column_blob(stmt, 0, &n_hash);
        if (n_hash == sizeof stored_hash)
            memcpy(stored_hash, hash, sizeof stored_hash);
        snprintf(out_dev->device_id, sizeof out_dev->device_id, "%s", device_id);
        snprintf(out_dev->worker_id, sizeof out_dev->worker_id, "%s",
                 db_column_text(stmt, 1));
        out_dev->revoked = db_column_int64(stmt, 2) != 0;
        out_dev->wipe = db_column_int64(stmt, 3) != 0;
        out_dev->acked_seq = (uint64_t)db_column_int64(stmt, 4);
        out_dev->cursor = (uint64_t)db_column_int64(stmt, 5);
        out_dev->synced_before = db_column_int64(stmt, 6) != 0;
    }
    db_finalize(stmt);
    if (!found && rc != DB_DONE)
        return store_fail_db(st, rc, "look up device");
    bool match = mbedtls_ct_memcmp(given_hash, stored_hash, sizeof given_hash) == 0;
    if (!found || !match) {
        store_device_clear(out_dev);
        return store_fail(st, found ? STORE_EAUTH : STORE_ENOTFOUND,
                          "authentication failed: unknown device or wrong secret");
    }
    if (out_dev->revoked)
        return store_fail(st, STORE_EREVOKED, "device is revoked%s",
                          out_dev->wipe ? " and ordered to wipe" : "");
    bool disabled = false;
    out = store_person_disabled(st, "worker", out_dev->worker_id, &disabled);
    if (out == STORE_OK && disabled) {
        out_dev->revoked = true;
        out = store_fail(st, STORE_EREVOKED, "the device's worker %s is disabled",
                         out_dev->worker_id);
    }
    if (out != STORE_OK)
        return out;
    out = store_worker_teams(st, out_dev->worker_id, &out_dev->n_teams, &out_dev->teams);
    if (out != 0)
        store_device_clear(out_dev);
    return out;
}

/* The write store_device_seen makes. */
static int store_device_seen_write(store *st, const char *device_id, uint64_t cursor)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn,
                        "UPDATE _outpost_devices SET last_seen_ms = ?2, cursor = ?3"
                        " WHERE id = ?1",
                        &stmt);
    if (rc == STORE_OK) {
        db_bind_text(stmt, 1, device_id);
        db_bind_int64(stmt, 2, (int64_t)store_now_ms());
        db_bind_int64(stmt, 3, (int64_t)cursor);
        rc = db_step(stmt);
    }
    int64_t changed = rc == DB_DONE ? db_changes(stmt) : 0;
    db_finalize(stmt);
    if (rc != DB_DONE)
        return store_fail_db(st, rc, "record device sync");
    if (changed == 0)
        return store_fail(st, STORE_ENOTFOUND, "no such device");
    return 0;
}

int store_device_seen(store *st, const char *device_id, uint64_t cursor)
{
    /* Once per PULL: with synchronous=FULL each was an fsync of the WAL on the pull's path (up
     * to 20 ms on a busy disk). In WAL mode synchronous=NORMAL keeps the store consistent
     * through a power cut; only this record may be lost. */
    bool lazy = db_engine_of(st->conn) == DB_SQLITE && !db_in_transaction(st->conn) &&
                db_exec(st->conn, "PRAGMA synchronous=NORMAL") == STORE_OK;
    int out = store_device_seen_write(st, device_id, cursor);
    if (lazy && db_exec(st->conn, "PRAGMA synchronous=FULL") != STORE_OK) {
        st->sync_lowered = true; /* store_begin restores it before any write */
        return store_fail(st, STORE_EIO, "restore synchronous=FULL: %s", db_errmsg(st->conn));
    }
    return out;
}

int store_device_list(store *st, store_device_list_cb cb, void *user_data)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn,
                        "SELECT id, worker_id, coalesce(name, ''), enrolled_ms,"
                        " coalesce(last_seen_ms, 0), cursor, acked_seq, revoked, wipe"
                        " FROM _outpost_devices ORDER BY no",
                        &stmt);
    int out = 0;
    while (rc == STORE_OK && (rc = db_step(stmt)) == DB_ROW) {
        rc = STORE_OK;
        store_device_row row;
        memset(&row, 0, sizeof row);
        snprintf(row.device_id, sizeof row.device_id, "%s",
                 db_column_text(stmt, 0));
        snprintf(row.worker_id, sizeof row.worker_id, "%s",
                 db_column_text(stmt, 1));
        snprintf(row.name, sizeof row.name, "%s", db_column_text(stmt, 2));
        row.enrolled_ms = (uint64_t)db_column_int64(stmt, 3);
        row.last_seen_ms = (uint64_t)db_column_int64(stmt, 4);
        row.cursor = (uint64_t)db_column_int64(stmt, 5);
        row.acked_seq = (uint64_t)db_column_int64(stmt, 6);
        row.revoked = db_column_int64(stmt, 7) != 0;
        row.wipe = db_column_int64(stmt, 8) != 0;
        out = cb(&row, user_data);
        if (out != 0)
            break;
    }
    if (out == 0 && rc != DB_DONE)
        out = store_fail_db(st, rc, "list devices");
    db_finalize(stmt);
    return out;
}

int store_device_revoke(store *st, const char *device_id, bool wipe)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn,
                        "UPDATE _outpost_devices SET revoked = 1, wipe = CASE WHEN wipe > ?2 THEN wipe ELSE ?2 END,"
                        " revoked_ms = coalesce(revoked_ms, ?3) WHERE id = ?1",
                        &stmt);
    if (rc == STORE_OK) {
        db_bind_text(stmt, 1, device_id ? device_id : "");
        db_bind_int64(stmt, 2, wipe ? 1 : 0);
        db_bind_int64(stmt, 3, (int64_t)store_now_ms());
        rc = db_step(stmt);
    }
    int64_t changed = rc == DB_DONE ? db_changes(stmt) : 0;
    db_finalize(stmt);
    if (rc != DB_DONE)
        return store_fail_db(st, rc, "revoke device");
    if (changed == 0)
        return store_fail(st, STORE_ENOTFOUND, "no device %.40s (see: outpost-admin devices)",
                          device_id ? device_id : "");
    return 0;
}
