/*
 * The audit log: append-only, chained with a key kept outside the store (audit_key.c).
 * Triggers refuse UPDATE and DELETE through SQLite; the keyed chain catches what bypasses SQLite
 * (an edited file, dropped triggers, a chain recomputed without the key), and the seal (an HMAC
 * of the row count and the newest hash) catches a removed tail even when audit_rows is reset.
 */
#include <stdio.h>
#include <string.h>

#include "store_internal.h"

static const char audit_ddl[] =
    "CREATE TABLE IF NOT EXISTS _outpost_audit("
    "  id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, actor TEXT NOT NULL,"
    "  action TEXT NOT NULL, target TEXT NOT NULL, address TEXT NOT NULL,"
    "  hash BLOB NOT NULL, ids TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE IF NOT EXISTS _outpost_audit_seal("
    "  id INTEGER PRIMARY KEY CHECK (id = 1), rows INTEGER NOT NULL, mac BLOB NOT NULL);"
    "INSERT INTO _outpost_meta VALUES('audit_rows', 0) ON CONFLICT DO NOTHING;";

/* The triggers that refuse UPDATE and DELETE, in each engine's own language. */
static const char audit_triggers_sqlite[] =
    "CREATE TRIGGER IF NOT EXISTS _outpost_audit_no_update BEFORE UPDATE ON _outpost_audit"
    "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS _outpost_audit_no_delete BEFORE DELETE ON _outpost_audit"
    "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;";
static const char audit_triggers_postgresql[] =
    "CREATE OR REPLACE FUNCTION _outpost_audit_append_only() RETURNS trigger LANGUAGE plpgsql"
    "  AS $$BEGIN RAISE EXCEPTION 'the audit log is append-only'; END$$;"
    "CREATE OR REPLACE TRIGGER _outpost_audit_no_change BEFORE UPDATE OR DELETE"
    "  ON _outpost_audit FOR EACH ROW EXECUTE FUNCTION _outpost_audit_append_only();";

static int ensure_table(store *st)
{
    db_stmt *stmt = NULL;
    bool lite = store_engine_of(st) == DB_SQLITE;
    int out;

    if (st->audit_ready)
        return STORE_OK;
    /* One writer at a time: nodes making the tables together on PostgreSQL take turns (inside
     * a caller's write transaction, its own turn). */
    /* On PostgreSQL a store that has its audit tables runs no DDL here: a role with only DML
     * rights on the tables can append and verify. */
    bool made = false, seal_made = false;
    if (!lite && store_table_exists(st, "_outpost_audit", &made) == STORE_OK && made &&
        store_table_exists(st, "_outpost_audit_seal", &seal_made) == STORE_OK && seal_made) {
        st->audit_ready = true;
        return STORE_OK;
    }
    bool own = !db_in_transaction(st->conn);
    out = own ? store_begin(st, true) : STORE_OK;
    if (out == STORE_OK)
        out = store_exec(st, audit_ddl, "create the audit table");
    if (out == STORE_OK)
        out = store_exec(st, lite ? audit_triggers_sqlite : audit_triggers_postgresql,
                         "make the audit log append-only");
    /* SQLite logs made before reads named their ids get the column (empty for the old rows);
     * SQLite refuses to prepare a statement naming a column that is not there. */
    if (out == STORE_OK && lite &&
        db_prepare(st->conn, "SELECT ids FROM _outpost_audit LIMIT 0", &stmt) != STORE_OK)
        out = store_exec(st, "ALTER TABLE _outpost_audit ADD COLUMN ids TEXT NOT NULL DEFAULT ''",
                         "add the audit log's ids column");
    db_finalize(stmt);
    if (own && out == STORE_OK)
        out = store_commit(st);
    else if (own)
        store_rollback(st);
    st->audit_ready = out == STORE_OK;
    return out;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(v >> (56 - 8 * i));
    return p;
}

static uint8_t *put_text(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    *p++ = (uint8_t)(n >> 24);
    *p++ = (uint8_t)(n >> 16);
    *p++ = (uint8_t)(n >> 8);
    *p++ = (uint8_t)n;
    memcpy(p, s, n);
    return p + n;
}

static int row_hash(store *st, const uint8_t prev[32], const store_audit_row *row,
                    uint8_t out[32])
{
    uint8_t buf[32 + 2 * 8 + 4 * 4 + sizeof row->actor + sizeof row->action +
                sizeof row->target + sizeof row->address];
    uint8_t *p = buf;
    size_t n;

    memcpy(p, prev, 32);
    p = put_u64(p + 32, (uint64_t)row->id);
    p = put_u64(p, row->time_ms);
    p = put_text(p, row->actor);
    p = put_text(p, row->action);
    p = put_text(p, row->target);
    p = put_text(p, row->address);
    n = (size_t)(p - buf);
    /* ids: a 4-byte length and the bytes, like the other text fields, without a copy */
    size_t n_ids = strlen(row->ids ? row->ids : "");
    uint8_t len[4] = {(uint8_t)(n_ids >> 24), (uint8_t)(n_ids >> 16), (uint8_t)(n_ids >> 8),
                      (uint8_t)n_ids};
    const void *all[] = {buf, len, row->ids ? row->ids : ""};
    size_t sizes[] = {n, sizeof len, n_ids};
    return store_audit_mac(st, all, sizes, 3, out);
}

/* The seal binds the row count to the newest hash: HMAC(key, "seal" || rows || head). */
static int seal_mac(store *st, uint64_t n_rows, const uint8_t head[32], uint8_t out[32])
{
    uint8_t count[8];
    const void *parts[] = {"seal", count, head};
    size_t sizes[] = {4, sizeof count, 32};

    put_u64(count, n_rows);
    return store_audit_mac(st, parts, sizes, 3, out);
}

static int write_seal(store *st, uint64_t n_rows, const uint8_t head[32])
{
    db_stmt *stmt = NULL;
    uint8_t mac[32];
    int out = seal_mac(st, n_rows, head, mac);
    int rc;

    if (out != STORE_OK)
        return out;
    rc = db_prepare(st->conn, "INSERT INTO _outpost_audit_seal VALUES(1, ?1, ?2) ON CONFLICT(id)"
                    " DO UPDATE SET rows = excluded.rows, mac = excluded.mac",
                    &stmt);
    if (rc == STORE_OK) {
        db_bind_int64(stmt, 1, (int64_t)n_rows);
        db_bind_blob(stmt, 2, mac, sizeof mac);
        rc = db_step(stmt);
    }
    db_finalize(stmt);
    return rc == DB_DONE ? STORE_OK : store_fail_db(st, rc, "seal the audit log");
}

/* STORE_OK when the stored seal matches n_rows and head; STORE_ETAMPERED otherwise. */
static int check_seal(store *st, uint64_t n_rows, const uint8_t head[32])
{
    db_stmt *stmt = NULL;
    uint8_t want[32];
    int64_t sealed_rows = -1;
    bool match = false;
    int out = seal_mac(st, n_rows, head, want);
    int rc;

    if (out != STORE_OK)
        return out;
    rc = db_prepare(st->conn, "SELECT rows, mac FROM _outpost_audit_seal WHERE id = 1", &stmt);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    if (rc == DB_ROW) {
        sealed_rows = db_column_int64(stmt, 0);
        size_t n_mac = 0;
        const void *mac = db_column_blob(stmt, 1, &n_mac);
        match = sealed_rows == (int64_t)n_rows && n_mac == 32 && memcmp(mac, want, 32) == 0;
        rc = DB_DONE;
    } else if (rc == DB_DONE && n_rows == 0) {
        match = true;
    }
    db_finalize(stmt);
    if (rc != DB_DONE)
        return store_fail_db(st, rc, "read the audit seal");
    if (match)
        return STORE_OK;
    if (sealed_rows < 0)
        return store_fail(st, STORE_ETAMPERED, "the audit log has %llu rows but no seal: it was "
                          "removed, or the log was written before the store had an audit key",
                          (unsigned long long)n_rows);
    return store_fail(st, STORE_ETAMPERED,
                      "the audit seal does not match the log's %llu rows and newest hash: rows "
                      "were removed from the end, or the seal was altered",
                      (unsigned long long)n_rows);
}

static bool fits(const char *s, size_t size)
{
    return s && strlen(s) < size;
}

/* Reads the newest row's id and hash; id 0 and zero hash when the log is empty. */
static int read_head(store *st, int64_t *out_id, uint8_t out_hash[32])
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn, "SELECT id, hash FROM _outpost_audit ORDER BY id DESC"
                        " LIMIT 1", &stmt);

    *out_id = 0;
    memset(out_hash, 0, 32);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    if (rc == DB_ROW) {
        *out_id = db_column_int64(stmt, 0);
        size_t n_hash = 0;
        const void *hash = db_column_blob(stmt, 1, &n_hash);
        if (n_hash == 32)
            memcpy(out_hash, hash, 32);
        rc = DB_DONE;
    }
    db_finalize(stmt);
    return rc == DB_DONE ? STORE_OK : store_fail_db(st, rc, "read the audit head");
}

static int insert_row(store *st, const store_audit_row *row)
{
    db_stmt *stmt = NULL;
    int rc = db_prepare(st->conn,
                        "INSERT INTO _outpost_audit(id, time_ms, actor, action, target,"
                        " address, hash, ids) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
                        &stmt);

    if (rc == STORE_OK) {
        db_bind_int64(stmt, 1, row->id);
        db_bind_int64(stmt, 2, (int64_t)row->time_ms);
        db_bind_text(stmt, 3, row->actor);
        db_bind_text(stmt, 4, row->action);
        db_bind_text(stmt, 5, row->target);
        db_bind_text(stmt, 6, row->address);
        db_bind_blob(stmt, 7, row->hash, 32);
        db_bind_text(stmt, 8, row->ids);
        rc = db_step(stmt);
    }
    db_finalize(stmt);
    stmt = NULL;
    if (rc != DB_DONE)
        return store_fail_db(st, rc, "append to the audit log");
    /* The row must be there as written: a trigger someone added to the store (RAISE(IGNORE)
     * before the insert, a DELETE after it) would otherwise make a read leave no trace while
     * the caller believes it was recorded. */
    int64_t present = 0;
    rc = db_prepare(st->conn, "SELECT count(*) FROM _outpost_audit WHERE id = ?1 AND hash = ?2",
                    &stmt);
    if (rc == STORE_OK) {
        db_bind_int64(stmt, 1, row->id);
        db_bind_blob(stmt, 2, row->hash, 32);
        rc = db_step(stmt);
        if (rc == DB_ROW)
            present = db_column_int64(stmt, 0);
    }
    db_finalize(stmt);
    if (rc != DB_ROW)
        return store_fail_db(st, rc, "read back the audit row");
    if (present != 1)
        return store_fail(st, STORE_ETAMPERED, "the audit row %lld was not kept (a trigger in the "
                          "store drops or removes audit rows): nothing is recorded, so nothing "
                          "is shown", (long long)row->id);
    return STORE_OK;
}

int store_audit_append(store *st, uint64_t time_ms, const char *actor, const char *action,
                       const char *target, const char *address)
{
    return store_audit_append_ids(st, time_ms, actor, action, target, address, "");
}

int store_audit_append_ids(store *st, uint64_t time_ms, const char *actor, const char *action,
                           const char *target, const char *address, const char *ids)
{
    store_audit_row row;
    uint8_t prev[32];
    int64_t n_rows = 0;
    int out;

    memset(&row, 0, sizeof row);
    if (!fits(actor, sizeof row.actor) || !fits(action, sizeof row.action) ||
        !fits(target, sizeof row.target) || !fits(address, sizeof row.address) ||
        !fits(ids, STORE_AUDIT_IDS_MAX))
        return store_fail(st, STORE_EINVAL, "audit entry field missing or too long");
    row.ids = ids;
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
    /* Never extend a log whose end does not match its seal (rows cut from the end, or the seal
     * altered): a new row would re-seal the damage and hide it. */
    if (out == STORE_OK && row.id > 0)
        out = check_seal(st, (uint64_t)row.id, prev);
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
        out = write_seal(st, (uint64_t)row.id, row.hash);
    if (out == STORE_OK)
        return store_commit(st);
    store_rollback(st);
    return out;
}

static void copy_text(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

/* The size of the hash column (6) of the current audit row. */
static size_t hash_bytes(db_stmt *stmt)
{
    size_t n = 0;
    db_column_blob(stmt, 6, &n);
    return n;
}

static void read_row(db_stmt *stmt, store_audit_row *row)
{
    memset(row, 0, sizeof *row);
    row->id = db_column_int64(stmt, 0);
    row->time_ms = (uint64_t)db_column_int64(stmt, 1);
    copy_text(row->actor, sizeof row->actor, db_column_text(stmt, 2));
    copy_text(row->action, sizeof row->action, db_column_text(stmt, 3));
    copy_text(row->target, sizeof row->target, db_column_text(stmt, 4));
    copy_text(row->address, sizeof row->address, db_column_text(stmt, 5));
    size_t n_hash = 0;
    const void *hash = db_column_blob(stmt, 6, &n_hash);
    if (n_hash == 32)
        memcpy(row->hash, hash, 32);
    row->ids = db_column_text(stmt, 7);
    if (row->ids == NULL)
        row->ids = "";
}

int store_audit_list(store *st, int64_t before_id, uint32_t limit, store_audit_cb cb,
                     void *user_data)
{
    store_audit_filter f;

    memset(&f, 0, sizeof f);
    f.before_id = before_id;
    f.limit = limit == 0 ? 100 : limit;
    return store_audit_query(st, &f, cb, user_data);
}

static void bind_opt_text(db_stmt *stmt, int idx, const char *text)
{
    if (text && *text)
        db_bind_text(stmt, idx, text);
    else
        db_bind_null(stmt, idx);
}

int store_audit_query(store *st, const store_audit_filter *filter, store_audit_cb cb,
                      void *user_data)
{
    db_stmt *stmt = NULL;
    store_audit_row row;
    int out = ensure_table(st);
    int rc;

    if (out != STORE_OK)
        return out;
    rc = db_prepare(st->conn,
                    "SELECT id, time_ms, actor, action, target, address, hash, ids"
                    " FROM _outpost_audit WHERE (?1 = 0 OR id < ?1)"
                    " AND (CAST(?2 AS TEXT) IS NULL OR actor = ?2)"
                    " AND (CAST(?3 AS TEXT) IS NULL OR action = ?3"
                    "      OR (instr(?3, '.') = 0 AND substr(action, 1, length(?3) + 1)"
                    "          = ?3 || '.'))"
                    " AND (?4 = 0 OR time_ms >= ?4) AND (?5 = 0 OR time_ms < ?5)"
                    " ORDER BY id DESC LIMIT ?6",
                    &stmt);
    if (rc == STORE_OK) {
        db_bind_int64(stmt, 1, filter->before_id);
        bind_opt_text(stmt, 2, filter->actor);
        bind_opt_text(stmt, 3, filter->action);
        db_bind_int64(stmt, 4, (int64_t)filter->from_ms);
        db_bind_int64(stmt, 5, (int64_t)filter->to_ms);
        db_bind_int64(stmt, 6, filter->limit == 0 ? INT64_MAX : (int64_t)filter->limit);
    }
    while (rc == STORE_OK || rc == DB_ROW) {
        rc = db_step(stmt);
        if (rc != DB_ROW)
            break;
        read_row(stmt, &row);
        out = cb(&row, user_data);
        if (out != 0)
            break;
    }
    db_finalize(stmt);
    if (out == STORE_OK && rc != DB_DONE)
        out = store_fail_db(st, rc, "read the audit log");
    return out;
}

int store_audit_verify(store *st, uint64_t *out_n_rows, int64_t *out_bad_id)
{
    db_stmt *stmt = NULL;
    store_audit_row row;
    uint8_t prev[32] = {0}, want[32];
    int64_t expected_id = 1, n_meta = 0;
    int out = ensure_table(st);
    int rc;

    *out_n_rows = 0;
    *out_bad_id = 0;
    if (out == STORE_OK && !st->has_audit_key)
        out = store_audit_mac(st, NULL, NULL, 0, want); /* the "no key" message */
    if (out == STORE_OK)
        out = store_begin(st, false);
    if (out != STORE_OK)
        return out;
    rc = db_prepare(st->conn,
                    "SELECT id, time_ms, actor, action, target, address, hash, ids"
                    " FROM _outpost_audit ORDER BY id",
                    &stmt);
    while (out == STORE_OK && (rc == STORE_OK || rc == DB_ROW)) {
        rc = db_step(stmt);
        if (rc != DB_ROW)
            break;
        read_row(stmt, &row);
        if (row.id != expected_id) {
            *out_bad_id = expected_id;
            out = store_fail(st, STORE_ETAMPERED, "audit row %lld is missing",
                             (long long)expected_id);
            break;
        }
        out = row_hash(st, prev, &row, want);
        if (out == STORE_OK && (hash_bytes(stmt) != 32 ||
                                memcmp(want, row.hash, 32) != 0)) {
            *out_bad_id = row.id;
            out = store_fail(st, STORE_ETAMPERED,
                             "audit row %lld does not match its hash chain", (long long)row.id);
        }
        memcpy(prev, row.hash, 32);
        expected_id++;
    }
    db_finalize(stmt);
    if (out == STORE_OK && rc != DB_DONE)
        out = store_fail_db(st, rc, "read the audit log");
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
    if (out == STORE_OK) {
        out = check_seal(st, (uint64_t)(expected_id - 1), prev);
        if (out == STORE_ETAMPERED)
            *out_bad_id = expected_id;
    }
    store_rollback(st);
    if (out == STORE_OK)
        *out_n_rows = (uint64_t)(expected_id - 1);
    return out;
}

int store_audit_chain_at(store *st, int64_t id, uint64_t *out_n_rows, uint8_t out_hash[32])
{
    db_stmt *stmt = NULL;
    store_audit_row row;
    int out = ensure_table(st);
    int rc;

    *out_n_rows = 0;
    memset(out_hash, 0, 32);
    if (out != STORE_OK)
        return out;
    rc = db_prepare(st->conn,
                    "SELECT id, time_ms, actor, action, target, address, hash, ids"
                    " FROM _outpost_audit WHERE id <= ?1 ORDER BY id",
                    &stmt);
    if (rc == STORE_OK)
        db_bind_int64(stmt, 1, id);
    while (out == STORE_OK && (rc == STORE_OK || rc == DB_ROW)) {
        rc = db_step(stmt);
        if (rc != DB_ROW)
            break;
        read_row(stmt, &row);
        out = row_hash(st, out_hash, &row, out_hash);
    }
    db_finalize(stmt);
    if (out == STORE_OK && rc != DB_DONE)
        out = store_fail_db(st, rc, "read the audit log");
    if (out == STORE_OK) {
        uint8_t newest[32];
        int64_t max_id = 0;
        out = read_head(st, &max_id, newest);
        *out_n_rows = (uint64_t)max_id;
    }
    return out;
}

int store_audit_seal_check(store *st)
{
    int64_t id = 0;
    uint8_t head[32];
    int out = ensure_table(st);

    if (out == STORE_OK)
        out = read_head(st, &id, head);
    if (out == STORE_OK && id > 0)
        out = check_seal(st, (uint64_t)id, head);
    return out;
}

int store_audit_head(store *st, uint64_t *out_n_rows, uint8_t out_hash[32])
{
    int64_t id = 0;
    int out = ensure_table(st);

    *out_n_rows = 0;
    if (out == STORE_OK)
        out = read_head(st, &id, out_hash);
    if (out == STORE_OK)
        *out_n_rows = (uint64_t)id;
    return out;
}

int store_audit_key_check(store *st)
{
    db_stmt *stmt = NULL;
    store_audit_row row;
    uint8_t zero[32] = {0}, want[32];
    bool first_matches = true;
    int out = ensure_table(st);
    int rc;

    if (out != STORE_OK)
        return out;
    rc = db_prepare(st->conn,
                    "SELECT id, time_ms, actor, action, target, address, hash, ids"
                    " FROM _outpost_audit WHERE id = 1",
                    &stmt);
    if (rc == STORE_OK)
        rc = db_step(stmt);
    if (rc == DB_ROW) {
        read_row(stmt, &row);
        out = row_hash(st, zero, &row, want);
        first_matches = out == STORE_OK && hash_bytes(stmt) == 32 &&
                        memcmp(want, row.hash, 32) == 0;
        rc = DB_DONE;
    }
    db_finalize(stmt);
    if (out == STORE_OK && rc != DB_DONE)
        out = store_fail_db(st, rc, "read the audit log");
    if (out != STORE_OK || first_matches)
        return out;
    /* The first row and the seal both fail with this key: another store's key, not an edit. */
    if (store_audit_seal_check(st) != STORE_ETAMPERED)
        return STORE_OK;
    return store_fail(st, STORE_EINVAL, "the audit key does not match this store (wrong "
                                      "--audit-key?); nothing was changed");
}
