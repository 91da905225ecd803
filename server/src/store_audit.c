/*
 * The audit log: append-only, hash-chained. Triggers refuse UPDATE and DELETE through SQLite;
 * the chain catches what bypasses SQLite (an edited file, dropped triggers), and the row count
 * kept in _outpost_meta catches a removed tail.
 */
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <string.h>

#include "store_internal.h"

static const char audit_ddl[] =
    "CREATE TABLE IF NOT EXISTS _outpost_audit("
    "  id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, actor TEXT NOT NULL,"
    "  action TEXT NOT NULL, target TEXT NOT NULL, address TEXT NOT NULL,"
    "  hash BLOB NOT NULL);"
    "CREATE TRIGGER IF NOT EXISTS _outpost_audit_no_update BEFORE UPDATE ON _outpost_audit"
    "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS _outpost_audit_no_delete BEFORE DELETE ON _outpost_audit"
    "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    "INSERT OR IGNORE INTO _outpost_meta VALUES('audit_rows', 0);";

static int ensure_table(store *st)
{
    return store_exec(st, audit_ddl, "create the audit table");
}

static void put_u64(mbedtls_sha256_context *ctx, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (56 - 8 * i));
    mbedtls_sha256_update(ctx, b, sizeof b);
}

static void put_text(mbedtls_sha256_context *ctx, const char *s)
{
    size_t n = strlen(s);
    uint8_t b[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    mbedtls_sha256_update(ctx, b, sizeof b);
    mbedtls_sha256_update(ctx, (const uint8_t *)s, n);
}

static int row_hash(store *st, const uint8_t prev[32], const store_audit_row *row,
                    uint8_t out[32])
{
    mbedtls_sha256_context ctx;
    int rc;

    mbedtls_sha256_init(&ctx);
    rc = mbedtls_sha256_starts(&ctx, 0);
    if (rc == 0) {
        mbedtls_sha256_update(&ctx, prev, 32);
        put_u64(&ctx, (uint64_t)row->id);
        put_u64(&ctx, row->time_ms);
        put_text(&ctx, row->actor);
        put_text(&ctx, row->action);
        put_text(&ctx, row->target);
        put_text(&ctx, row->address);
        rc = mbedtls_sha256_finish(&ctx, out);
    }
    mbedtls_sha256_free(&ctx);
    return rc == 0 ? STORE_OK : store_fail(st, STORE_EIO, "sha256 failed");
}

static bool fits(const char *s, size_t size)
{
    return s && strlen(s) < size;
}

/* Reads the newest row's id and hash; id 0 and zero hash when the log is empty. */
static int read_head(store *st, int64_t *out_id, uint8_t out_hash[32])
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(st->db, "SELECT id, hash FROM _outpost_audit ORDER BY id DESC"
                                " LIMIT 1", -1, &stmt, NULL);

    *out_id = 0;
    memset(out_hash, 0, 32);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *out_id = sqlite3_column_int64(stmt, 0);
        if (sqlite3_column_bytes(stmt, 1) == 32)
            memcpy(out_hash, sqlite3_column_blob(stmt, 1), 32);
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? STORE_OK : store_fail_sqlite(st, rc, "read the audit head");
}

static int insert_row(store *st, const store_audit_row *row)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(st->db, "INSERT INTO _outpost_audit VALUES(?1,?2,?3,?4,?5,?6,?7)",
                                -1, &stmt, NULL);

    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(stmt, 1, row->id);
        sqlite3_bind_int64(stmt, 2, (int64_t)row->time_ms);
        sqlite3_bind_text(stmt, 3, row->actor, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, row->action, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 5, row->target, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 6, row->address, -1, SQLITE_STATIC);
        sqlite3_bind_blob(stmt, 7, row->hash, 32, SQLITE_STATIC);
        rc = sqlite3_step(stmt);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? STORE_OK : store_fail_sqlite(st, rc, "append to the audit log");
}

int store_audit_append(store *st, uint64_t time_ms, const char *actor, const char *action,
                       const char *target, const char *address)
{
    store_audit_row row;
    uint8_t prev[32];
    int64_t n_rows = 0;
    int out;

    memset(&row, 0, sizeof row);
    if (!fits(actor, sizeof row.actor) || !fits(action, sizeof row.action) ||
        !fits(target, sizeof row.target) || !fits(address, sizeof row.address))
        return store_fail(st, STORE_EINVAL, "audit entry field missing or too long");
    row.time_ms = time_ms;
    memcpy(row.actor, actor, strlen(actor));
    memcpy(row.action, action, strlen(action));
    memcpy(row.target, target, strlen(target));
    memcpy(row.address, address, strlen(address));

    out = ensure_table(st);
    if (out == STORE_OK)
        out = store_begin(st, true);
    if (out != STORE_OK)
        return out;
    out = read_head(st, &row.id, prev);
    row.id++;
    if (out == STORE_OK)
        out = row_hash(st, prev, &row, row.hash);
    if (out == STORE_OK)
        out = insert_row(st, &row);
    if (out == STORE_OK)
        out = store_meta_get(st, "audit_rows", &n_rows);
    if (out == STORE_OK)
        out = store_meta_set(st, "audit_rows", n_rows + 1);
    if (out == STORE_OK)
        return store_commit(st);
    store_rollback(st);
    return out;
}

static void copy_text(char *dst, size_t size, const unsigned char *src)
{
    snprintf(dst, size, "%s", src ? (const char *)src : "");
}

static void read_row(sqlite3_stmt *stmt, store_audit_row *row)
{
    memset(row, 0, sizeof *row);
    row->id = sqlite3_column_int64(stmt, 0);
    row->time_ms = (uint64_t)sqlite3_column_int64(stmt, 1);
    copy_text(row->actor, sizeof row->actor, sqlite3_column_text(stmt, 2));
    copy_text(row->action, sizeof row->action, sqlite3_column_text(stmt, 3));
    copy_text(row->target, sizeof row->target, sqlite3_column_text(stmt, 4));
    copy_text(row->address, sizeof row->address, sqlite3_column_text(stmt, 5));
    if (sqlite3_column_bytes(stmt, 6) == 32)
        memcpy(row->hash, sqlite3_column_blob(stmt, 6), 32);
}

int store_audit_list(store *st, int64_t before_id, uint32_t limit, store_audit_cb cb,
                     void *user_data)
{
    sqlite3_stmt *stmt = NULL;
    store_audit_row row;
    int out = ensure_table(st);
    int rc;

    if (out != STORE_OK)
        return out;
    rc = sqlite3_prepare_v2(st->db,
                            "SELECT id, time_ms, actor, action, target, address, hash"
                            " FROM _outpost_audit WHERE ?1 = 0 OR id < ?1 ORDER BY id DESC"
                            " LIMIT ?2",
                            -1, &stmt, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(stmt, 1, before_id);
        sqlite3_bind_int64(stmt, 2, limit == 0 ? 100 : limit);
    }
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
            break;
        read_row(stmt, &row);
        out = cb(&row, user_data);
        if (out != 0)
            break;
    }
    sqlite3_finalize(stmt);
    if (out == STORE_OK && rc != SQLITE_DONE)
        out = store_fail_sqlite(st, rc, "read the audit log");
    return out;
}

int store_audit_verify(store *st, uint64_t *out_n_rows, int64_t *out_bad_id)
{
    sqlite3_stmt *stmt = NULL;
    store_audit_row row;
    uint8_t prev[32] = {0}, want[32];
    int64_t expected_id = 1, n_meta = 0;
    int out = ensure_table(st);
    int rc;

    *out_n_rows = 0;
    *out_bad_id = 0;
    if (out == STORE_OK)
        out = store_begin(st, false);
    if (out != STORE_OK)
        return out;
    rc = sqlite3_prepare_v2(st->db,
                            "SELECT id, time_ms, actor, action, target, address, hash"
                            " FROM _outpost_audit ORDER BY id",
                            -1, &stmt, NULL);
    while (out == STORE_OK && (rc == SQLITE_OK || rc == SQLITE_ROW)) {
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
            break;
        read_row(stmt, &row);
        if (row.id != expected_id) {
            *out_bad_id = expected_id;
            out = store_fail(st, STORE_ETAMPERED, "audit row %lld is missing",
                             (long long)expected_id);
            break;
        }
        out = row_hash(st, prev, &row, want);
        if (out == STORE_OK && (sqlite3_column_bytes(stmt, 6) != 32 ||
                                memcmp(want, row.hash, 32) != 0)) {
            *out_bad_id = row.id;
            out = store_fail(st, STORE_ETAMPERED,
                             "audit row %lld does not match its hash chain", (long long)row.id);
        }
        memcpy(prev, row.hash, 32);
        expected_id++;
    }
    sqlite3_finalize(stmt);
    if (out == STORE_OK && rc != SQLITE_DONE)
        out = store_fail_sqlite(st, rc, "read the audit log");
    if (out == STORE_OK)
        out = store_meta_get(st, "audit_rows", &n_meta);
    if (out == STORE_OK && n_meta != expected_id - 1) {
        *out_bad_id = expected_id;
        out = store_fail(st, STORE_ETAMPERED,
                         "the audit log holds %lld rows but %lld were written: row %lld on "
                         "are missing",
                         (long long)(expected_id - 1), (long long)n_meta,
                         (long long)expected_id);
    }
    store_rollback(st);
    if (out == STORE_OK)
        *out_n_rows = (uint64_t)(expected_id - 1);
    return out;
}
