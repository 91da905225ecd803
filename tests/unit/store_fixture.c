#include "store_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store_internal.h"
#include "store_values.h"
#include "strf.h"
#include "unit/pg_cluster.h"

int fx_engine = FX_SQLITE;
static pg_cluster fx_pg;
static int fx_pg_count;

int fx_group_sqlite(void **state)
{
    (void)state;
    fx_engine = FX_SQLITE;
    return 0;
}

int fx_group_postgresql(void **state)
{
    (void)state;
    fx_engine = FX_POSTGRESQL;
    return pg_cluster_start(&fx_pg);
}

int fx_group_teardown(void **state)
{
    (void)state;
    pg_cluster_stop(&fx_pg);
    memset(&fx_pg, 0, sizeof fx_pg);
    fx_engine = FX_SQLITE;
    return 0;
}

bool fx_postgresql_available(void)
{
    return pg_cluster_available();
}

int fx_run_both_engines(const char *name, const struct CMUnitTest *tests, size_t n_tests,
                        const struct CMUnitTest *pg, size_t n_pg)
{
    char group[80];
    snprintf(group, sizeof group, "%s_sqlite", name);
    int failed = _cmocka_run_group_tests(group, tests, n_tests, fx_group_sqlite,
                                         fx_group_teardown);
    snprintf(group, sizeof group, "%s_postgresql", name);
    if (!fx_postgresql_available()) {
        printf("%s: SKIPPED because PostgreSQL 15 binaries are not installed (scripts/deps.sh "
               "installs them)\n", group);
        return failed != 0 ? failed : 77; /* test_skip.h's TEST_SKIPPED_EXIT */
    }
    return failed + _cmocka_run_group_tests(group, pg, n_pg, fx_group_postgresql,
                                            fx_group_teardown);
}

/* Runs one statement without results on the cluster's first database (CREATE/DROP DATABASE). */
static void fx_pg_admin(const char *sql)
{
    db_conn *d = NULL;
    char err[256];
    if (db_open_postgresql(fx_pg.conninfo, &d, err, sizeof err) != 0)
        fail_msg("%s", err);
    if (db_exec(d, sql) != 0)
        fail_msg("%s: %s", sql, db_errmsg(d));
    db_close(d);
}

/* PostgreSQL: one column of contacts row id as the merge stored it (an encoded value); false
 * when there is no such row. Text and blobs live in arena. */
static bool pg_contact_value(fixture *fx, const char *id, const char *column, store_arena *arena,
                             proto_value *out)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT %s FROM contacts WHERE id = ?1", column);
    db_stmt *s = NULL;
    proto_value key = T(id);
    if (db_prepare(fx->st->conn, sql, &s) != 0)
        fail_msg("%s: %s", sql, db_errmsg(fx->st->conn));
    assert_int_equal(store_value_bind_any(s, 1, &key), 0);
    int rc = db_step(s);
    bool found = rc == DB_ROW;
    if (found)
        assert_int_equal(store_value_column_any(arena, s, 0, out), 0);
    else
        assert_int_equal(rc, DB_DONE);
    db_finalize(s);
    return found;
}

char *fx_data(const char *name)
{
    const char *src = getenv("OUTPOST_SOURCE_DIR");
    char *path = strf("%s/tests/data/%s", src ? src : ".", name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s (is OUTPOST_SOURCE_DIR set?)", path);
    free(path);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

void fx_open_empty(fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    fx->engine = fx_engine;
    snprintf(fx->dir, sizeof fx->dir, "%s/outpost-store-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/central.db", fx->dir);
    char err[256] = "";
    if (fx->engine == FX_POSTGRESQL) {
        char sql[64], conninfo[sizeof fx_pg.conninfo + 64];
        snprintf(fx->db_name, sizeof fx->db_name, "fx_%d", ++fx_pg_count);
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", fx->db_name);
        fx_pg_admin(sql);
        snprintf(conninfo, sizeof conninfo, "%s dbname=%s", fx_pg.conninfo, fx->db_name);
        if (store_open_postgresql(conninfo, true, &fx->st, err, sizeof err) != 0)
            fail_msg("%s", err);
    } else {
        assert_int_equal(store_open(fx->path, true, &fx->st, err, sizeof err), 0);
    }
    snprintf(fx->key_path, sizeof fx->key_path, "%s%s", fx->path, STORE_AUDIT_KEY_SUFFIX);
    if (store_audit_key_create(fx->key_path, err, sizeof err) != STORE_OK)
        fail_msg("%s", err);
    if (store_audit_key_load(fx->st, fx->key_path) != STORE_OK)
        fail_msg("%s", store_errmsg(fx->st));
}

void fx_open(fixture *fx)
{
    fx_open_empty(fx);
    char *schema = fx_data("contacts.sql");
    char *policy = fx_data("contacts.policy");
    int rc = store_init_schema(fx->st, schema, policy);
    if (rc != 0)
        fail_msg("init: %s", store_errmsg(fx->st));
    free(schema);
    free(policy);
    assert_int_equal(store_team_add(fx->st, "north", "North district"), 0);
    assert_int_equal(store_team_add(fx->st, "south", NULL), 0);
    const char *north[] = {"north"}, *south[] = {"south"}, *both[] = {"north", "south"};
    assert_int_equal(store_worker_add(fx->st, "ana", north, 1), 0);
    assert_int_equal(store_worker_add(fx->st, "ben", south, 1), 0);
    assert_int_equal(store_worker_add(fx->st, "cai", both, 2), 0);
}

void fx_close(fixture *fx)
{
    store_close(fx->st);
    fx->st = NULL;
    if (fx->db_name[0] != 0) {
        char sql[64];
        snprintf(sql, sizeof sql, "DROP DATABASE %s", fx->db_name);
        fx_pg_admin(sql);
        fx->db_name[0] = 0;
    }
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        char p[320];
        snprintf(p, sizeof p, "%s%s", fx->path, suffix[i]);
        unlink(p);
    }
    unlink(fx->key_path);
    rmdir(fx->dir);
}

void fx_device(fixture *fx, const char *worker, store_device *dev)
{
    char code[STORE_CODE_SIZE], id[40];
    uint8_t secret[32];
    assert_int_equal(store_enroll_code_create(fx->st, worker, store_now_ms(), 3600000, code), 0);
    assert_int_equal(store_device_enroll(fx->st, code, worker, id, secret), 0);
    memset(dev, 0, sizeof *dev);
    assert_int_equal(store_device_auth(fx->st, id, secret, dev), 0);
}

proto_value T(const char *text)
{
    proto_value v = {.type = PROTO_TEXT};
    v.u.b.p = (const uint8_t *)text;
    v.u.b.n = (uint32_t)strlen(text);
    return v;
}

proto_value I(int64_t i)
{
    proto_value v = {.type = PROTO_INT};
    v.u.i = i;
    return v;
}

proto_value N(void)
{
    proto_value v = {.type = PROTO_NULL};
    return v;
}

proto_value U(void)
{
    proto_value v = {.type = PROTO_UNDEF};
    return v;
}

enum { TP_TABLES = 4, TP_CHANGES = 256, TP_COLS = 16 };

struct tpush {
    proto_push push;
    proto_table_changes tables[TP_TABLES];
    proto_change changes[TP_TABLES][TP_CHANGES];
    proto_col cols[TP_TABLES][TP_CHANGES][TP_COLS];
    char names[TP_TABLES][64];
    /* values read back from the store for deletes */
    sqlite3_value *kept[1024];
    size_t n_kept;
    char *texts[1024];
    size_t n_texts;
};

tpush *tp_new(uint64_t seq, uint64_t hlc)
{
    tpush *tp = calloc(1, sizeof *tp);
    assert_non_null(tp);
    tp->push.seq = seq;
    tp->push.hlc = hlc;
    tp->push.schema_version = 1;
    tp->push.tables = tp->tables;
    return tp;
}

void tp_free(tpush *tp)
{
    if (tp == NULL)
        return;
    for (size_t i = 0; i < tp->n_texts; i++)
        free(tp->texts[i]);
    free(tp);
}

const proto_push *tp_push(tpush *tp)
{
    return &tp->push;
}

proto_change *tp_change(tpush *tp, const char *table, uint32_t n_columns, proto_op op)
{
    uint32_t t = 0;
    while (t < tp->push.n_tables && strcmp(tp->names[t], table) != 0)
        t++;
    if (t == tp->push.n_tables) {
        assert_true(t < TP_TABLES);
        snprintf(tp->names[t], sizeof tp->names[t], "%s", table);
        tp->tables[t].table = tp->names[t];
        tp->tables[t].n_columns = n_columns;
        tp->tables[t].changes = tp->changes[t];
        tp->push.n_tables++;
    }
    proto_table_changes *tc = &tp->tables[t];
    assert_true(tc->n_changes < TP_CHANGES);
    proto_change *ch = &tp->changes[t][tc->n_changes];
    ch->op = op;
    ch->n_cols = 0;
    ch->cols = tp->cols[t][tc->n_changes];
    tc->n_changes++;
    return ch;
}

void tp_col(proto_change *ch, uint32_t idx, proto_value old_val, proto_value new_val)
{
    assert_true(ch->n_cols < TP_COLS);
    proto_col *c = &ch->cols[ch->n_cols++];
    c->idx = idx;
    c->old_val = old_val;
    c->new_val = new_val;
}

void tp_insert_contact(tpush *tp, const char *id, const char *team, const char *name)
{
    proto_change *ch = tp_change(tp, "contacts", C_NCOLS, PROTO_OP_INSERT);
    tp_col(ch, C_ID, U(), T(id));
    tp_col(ch, C_TEAM, U(), T(team));
    tp_col(ch, C_NAME, U(), T(name));
    tp_col(ch, C_AGE, U(), I(12));
    tp_col(ch, C_LOCATION, U(), T("market"));
    tp_col(ch, C_NOTES, U(), N());
    tp_col(ch, C_RISK, U(), I(1));
    tp_col(ch, C_UPDATED, U(), I(1000));
}

void tp_update_contact(tpush *tp, const char *id, uint32_t col, proto_value old_val,
                       proto_value new_val)
{
    proto_change *ch = tp_change(tp, "contacts", C_NCOLS, PROTO_OP_UPDATE);
    tp_col(ch, C_ID, T(id), U());
    if (col != C_ID)
        tp_col(ch, col, old_val, new_val);
}

void tp_delete_contact(tpush *tp, fixture *fx, const char *id)
{
    static const char *const names[C_NCOLS] = {"id",       "team_id", "name",       "age",
                                               "location", "notes",   "risk_level", "updated_at"};
    proto_change *ch = tp_change(tp, "contacts", C_NCOLS, PROTO_OP_DELETE);
    char sql[128];
    for (uint32_t c = 0; c < C_NCOLS; c++) {
        if (fx->engine == FX_POSTGRESQL) {
            store_arena arena = {0};
            proto_value v = N();
            assert_true(pg_contact_value(fx, id, names[c], &arena, &v));
            if (v.type == PROTO_TEXT) {
                char *copy = strndup((const char *)v.u.b.p, v.u.b.n);
                tp->texts[tp->n_texts++] = copy;
                v = T(copy);
            } else if (v.type != PROTO_INT) {
                v = N();
            }
            store_arena_free(&arena);
            tp_col(ch, c, v, U());
            continue;
        }
        snprintf(sql, sizeof sql, "SELECT %s FROM contacts WHERE id = ?1", names[c]);
        sqlite3_stmt *s = NULL;
        assert_int_equal(sqlite3_prepare_v2(store_sqlite_db(fx->st), sql, -1, &s, NULL), 0);
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        proto_value v = N();
        switch (sqlite3_column_type(s, 0)) {
        case SQLITE_INTEGER:
            v = I(sqlite3_column_int64(s, 0));
            break;
        case SQLITE_TEXT: {
            char *copy = strdup((const char *)sqlite3_column_text(s, 0));
            tp->texts[tp->n_texts++] = copy;
            v = T(copy);
            break;
        }
        default:
            break;
        }
        sqlite3_finalize(s);
        tp_col(ch, c, v, U());
    }
}

proto_msg *fx_push(fixture *fx, store_device *dev, tpush *tp, uint64_t now_ms,
                   store_push_info *out_info)
{
    proto_buf reply = {0};
    store_push_info info;
    int rc = store_push(fx->st, dev, tp_push(tp), now_ms, &reply, &info);
    if (rc != 0)
        fail_msg("store_push: %d %s", rc, store_errmsg(fx->st));
    proto_msg *msg = NULL;
    char err[256];
    rc = proto_decode(reply.data, reply.len, NULL, &msg, err, sizeof err);
    if (rc != 0)
        fail_msg("decode reply: %s", err);
    proto_buf_free(&reply);
    if (out_info != NULL)
        *out_info = info;
    else
        free(info.teams_touched);
    return msg;
}

proto_msg *fx_pull(fixture *fx, store_device *dev, uint64_t cursor, uint32_t limit,
                   size_t max_bytes, store_pull_info *out_info)
{
    proto_buf reply = {0};
    int rc = store_pull(fx->st, dev, cursor, limit, max_bytes, &reply, out_info);
    if (rc != 0)
        fail_msg("store_pull: %d %s", rc, store_errmsg(fx->st));
    proto_msg *msg = NULL;
    char err[256];
    rc = proto_decode(reply.data, reply.len, NULL, &msg, err, sizeof err);
    if (rc != 0)
        fail_msg("decode rows: %s", err);
    proto_buf_free(&reply);
    assert_int_equal(msg->type, PROTO_MSG_ROWS);
    return msg;
}

char *fx_contact(fixture *fx, const char *id, const char *column)
{
    if (fx->engine == FX_POSTGRESQL) {
        store_arena arena = {0};
        proto_value v = N();
        char *out = NULL;
        if (pg_contact_value(fx, id, column, &arena, &v)) {
            if (v.type == PROTO_TEXT || v.type == PROTO_BLOB)
                out = strndup((const char *)v.u.b.p, v.u.b.n);
            else if (v.type == PROTO_INT)
                out = strf("%lld", (long long)v.u.i);
            else if (v.type == PROTO_REAL)
                out = strf("%.15g", v.u.r);
        }
        store_arena_free(&arena);
        return out;
    }
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT %s FROM contacts WHERE id = ?1", column);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_sqlite_db(fx->st), sql, -1, &s, NULL), 0);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    char *out = NULL;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
        out = strdup((const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return out;
}

static const char *value_sql(const fixture *fx, proto_value v)
{
    static char lits[16][600];
    static unsigned next;
    char *out = lits[next++ % 16];
    if (fx->engine != FX_POSTGRESQL) {
        if (v.type == PROTO_INT)
            snprintf(out, sizeof lits[0], "%lld", (long long)v.u.i);
        else
            snprintf(out, sizeof lits[0], "'%.*s'", (int)v.u.b.n, (const char *)v.u.b.p);
        return out;
    }
    store_bytes b = {0};
    assert_int_equal(store_values_encode(&v, 1, &b), 0);
    assert_true(b.len * 2 + 20 < sizeof lits[0]);
    size_t at = (size_t)snprintf(out, sizeof lits[0], "'\\x");
    for (size_t i = 0; i < b.len; i++)
        at += (size_t)snprintf(out + at, sizeof lits[0] - at, "%02x", b.data[i]);
    snprintf(out + at, sizeof lits[0] - at, "'::bytea");
    store_bytes_free(&b);
    return out;
}

const char *fx_text(const fixture *fx, const char *text)
{
    return value_sql(fx, T(text));
}

const char *fx_integer(const fixture *fx, int64_t i)
{
    return value_sql(fx, I(i));
}

store *fx_open_other(fixture *fx)
{
    char err[256] = "";
    store *st = NULL;
    int rc;
    if (fx->engine == FX_POSTGRESQL) {
        char conninfo[sizeof fx_pg.conninfo + 64];
        snprintf(conninfo, sizeof conninfo, "%s dbname=%s", fx_pg.conninfo, fx->db_name);
        rc = store_open_postgresql(conninfo, false, &st, err, sizeof err);
    } else {
        rc = store_open(fx->path, false, &st, err, sizeof err);
    }
    if (rc != STORE_OK)
        fail_msg("%s", err);
    return st;
}

int64_t fx_int(fixture *fx, const char *sql)
{
    if (fx->engine == FX_POSTGRESQL) {
        db_stmt *d = NULL;
        if (db_prepare(fx->st->conn, sql, &d) != 0)
            fail_msg("%s: %s", sql, db_errmsg(fx->st->conn));
        int64_t v = -1;
        if (db_step(d) == DB_ROW) {
            const char *text = db_column_text(d, 0);
            v = db_column_int64(d, 0);
            if (text != NULL && strncmp(text, "\\x", 2) == 0) { /* an encoded value */
                store_arena arena = {0};
                proto_value val = N();
                assert_int_equal(store_value_column_any(&arena, d, 0, &val), 0);
                assert_int_equal(val.type, PROTO_INT);
                v = val.u.i;
                store_arena_free(&arena);
            }
        }
        db_finalize(d);
        return v;
    }
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(store_sqlite_db(fx->st), sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(store_sqlite_db(fx->st)));
    int64_t v = -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static void dump_append(char **buf, size_t *len, size_t *cap, const char *text)
{
    size_t n = strlen(text);
    while (*len + n + 1 > *cap) {
        *cap = *cap ? *cap * 2 : 4096;
        *buf = realloc(*buf, *cap);
        assert_non_null(*buf);
    }
    memcpy(*buf + *len, text, n + 1);
    *len += n;
}

char *fx_dump(fixture *fx)
{
    return fx_dump_except(fx, NULL);
}

/* PostgreSQL: the same dump, each row as its columns' text joined by | (compared only with
 * other dumps of the same engine). */
static char *pg_dump_except(fixture *fx, const char *const *skip)
{
    db_conn *d = fx->st->conn;
    db_stmt *tables = NULL, *cols = NULL, *rows = NULL;
    assert_int_equal(db_prepare(d,
                                "SELECT table_name FROM information_schema.tables"
                                " WHERE table_schema = 'public' ORDER BY 1",
                                &tables),
                     0);
    assert_int_equal(db_prepare(d,
                                "SELECT column_name FROM information_schema.columns"
                                " WHERE table_schema = 'public' AND table_name = ?1"
                                " ORDER BY ordinal_position",
                                &cols),
                     0);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    while (db_step(tables) == DB_ROW) {
        const char *name = db_column_text(tables, 0);
        bool skipped = strcmp(name, "_outpost_store") == 0;
        for (size_t i = 0; skip && skip[i] && !skipped; i++)
            skipped = strcmp(skip[i], name) == 0;
        if (skipped)
            continue;
        char *sql = strf("SELECT ''");
        assert_int_equal(db_bind_text(cols, 1, name), 0);
        while (db_step(cols) == DB_ROW) {
            const char *col = db_column_text(cols, 0);
            if (strstr(col, "_ms") != NULL) /* wall-clock columns */
                continue;
            char *next = strf("%s || quote_nullable(\"%s\"::text) || '|'", sql, col);
            free(sql);
            sql = next;
        }
        db_reset(cols);
        char *next = strf("%s FROM \"%s\" ORDER BY 1", sql, name);
        free(sql);
        assert_int_equal(db_prepare(d, next, &rows), 0);
        free(next);
        dump_append(&buf, &len, &cap, name);
        dump_append(&buf, &len, &cap, ":\n");
        while (db_step(rows) == DB_ROW) {
            dump_append(&buf, &len, &cap, db_column_text(rows, 0));
            dump_append(&buf, &len, &cap, "\n");
        }
        db_finalize(rows);
    }
    db_finalize(cols);
    db_finalize(tables);
    return buf;
}

char *fx_dump_except(fixture *fx, const char *const *skip)
{
    if (fx->engine == FX_POSTGRESQL)
        return pg_dump_except(fx, skip);
    sqlite3 *db = store_sqlite_db(fx->st);
    sqlite3_stmt *tables = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT name FROM sqlite_master WHERE type = 'table'"
                                        " ORDER BY name",
                                        -1, &tables, NULL),
                     0);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    while (sqlite3_step(tables) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(tables, 0);
        if (strcmp(name, "_outpost_store") == 0)
            continue; /* every store has its own random identity */
        bool skipped = false;
        for (size_t i = 0; skip && skip[i] && !skipped; i++)
            skipped = strcmp(skip[i], name) == 0;
        if (skipped)
            continue;
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT * FROM \"%s\" ORDER BY 1, 2", name);
        sqlite3_stmt *rows = NULL;
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &rows, NULL), 0);
        dump_append(&buf, &len, &cap, name);
        dump_append(&buf, &len, &cap, ":\n");
        while (sqlite3_step(rows) == SQLITE_ROW) {
            for (int c = 0; c < sqlite3_column_count(rows); c++) {
                const char *col = sqlite3_column_name(rows, c);
                /* wall-clock columns differ between runs, not between replays */
                if (strstr(col, "_ms") != NULL)
                    continue;
                if (sqlite3_column_type(rows, c) == SQLITE_BLOB) {
                    const unsigned char *b = sqlite3_column_blob(rows, c);
                    int n = sqlite3_column_bytes(rows, c);
                    char hex[3];
                    dump_append(&buf, &len, &cap, "x'");
                    for (int k = 0; k < n; k++) {
                        snprintf(hex, sizeof hex, "%02x", b[k]);
                        dump_append(&buf, &len, &cap, hex);
                    }
                    dump_append(&buf, &len, &cap, "'|");
                    continue;
                }
                char *q = sqlite3_mprintf("%Q|", (const char *)sqlite3_column_text(rows, c));
                dump_append(&buf, &len, &cap, q);
                sqlite3_free(q);
            }
            dump_append(&buf, &len, &cap, "\n");
        }
        sqlite3_finalize(rows);
    }
    sqlite3_finalize(tables);
    return buf;
}

const proto_table_rows *fx_rows_table(const proto_msg *msg, const char *name)
{
    const proto_table_rows *tables = NULL;
    uint32_t n = 0;
    if (msg->type == PROTO_MSG_ROWS) {
        tables = msg->u.rows.tables;
        n = msg->u.rows.n_tables;
    } else if (msg->type == PROTO_MSG_REJECT) {
        tables = msg->u.reject.tables;
        n = msg->u.reject.n_tables;
    }
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(tables[i].table, name) == 0)
            return &tables[i];
    return NULL;
}

bool fx_value_is(const proto_value *v, const char *text)
{
    size_t n = strlen(text);
    return v->type == PROTO_TEXT && v->u.b.n == n && memcmp(v->u.b.p, text, n) == 0;
}
