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

char *fx_data(const char *name)
{
    const char *src = getenv("OUTPOST_SOURCE_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/%s", src ? src : ".", name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s (is OUTPOST_SOURCE_DIR set?)", path);
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
    snprintf(fx->dir, sizeof fx->dir, "%s/outpost-store-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/central.db", fx->dir);
    char err[256];
    assert_int_equal(store_open(fx->path, true, &fx->st, err, sizeof err), 0);
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
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        char p[320];
        snprintf(p, sizeof p, "%s%s", fx->path, suffix[i]);
        unlink(p);
    }
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

int64_t fx_int(fixture *fx, const char *sql)
{
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

char *fx_dump_except(fixture *fx, const char *const *skip)
{
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
