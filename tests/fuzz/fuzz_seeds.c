/*
 * Writes the seed corpora of the server and pull-apply fuzz targets from typed messages, so the
 * seeds follow the protocol when it changes:
 *   fuzz_seeds DIR     writes DIR/server/ and DIR/pull_apply/ (tests/fuzz/corpus/ in the tree)
 * Server seeds are message sequences (2-byte big-endian length, then the message) of a device
 * of worker w1 (team t1); pull-apply seeds are single ROWS pages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "outpost/proto.h"

#define HLC PROTO_HLC_MAKE(1700000000000ull, 1)

static proto_value txt(const char *s)
{
    proto_value v = {.type = PROTO_TEXT};
    v.u.b.p = (const uint8_t *)s;
    v.u.b.n = (uint32_t)strlen(s);
    return v;
}

static const proto_value undef = {.type = PROTO_UNDEF};

typedef struct seq_file {
    unsigned char buf[65536];
    size_t len;
} seq_file;

static int add(seq_file *f, const proto_msg *m)
{
    proto_buf b = {0};
    if (proto_encode(m, &b) != PROTO_OK || b.len > 65535 || f->len + 2 + b.len > sizeof f->buf) {
        proto_buf_free(&b);
        return -1;
    }
    f->buf[f->len++] = (unsigned char)(b.len >> 8);
    f->buf[f->len++] = (unsigned char)b.len;
    memcpy(f->buf + f->len, b.data, b.len);
    f->len += b.len;
    proto_buf_free(&b);
    return 0;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len) {
        perror(path);
        if (f)
            fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* One change to contacts in one PUSH. */
static proto_msg push_of(uint64_t seq, const char *table, proto_change *ch, uint32_t n_ch)
{
    static proto_table_changes tc;
    tc.table = table;
    tc.n_columns = 4;
    tc.n_changes = n_ch;
    tc.changes = ch;
    proto_msg m;
    memset(&m, 0, sizeof m);
    m.type = PROTO_MSG_PUSH;
    m.u.push.seq = seq;
    m.u.push.hlc = HLC + seq;
    m.u.push.schema_version = 1;
    m.u.push.n_tables = 1;
    m.u.push.tables = &tc;
    return m;
}

static int server_seeds(const char *dir)
{
    proto_col ins[4] = {{0, undef, txt("row-1")}, {1, undef, txt("t1")},
                        {2, undef, txt("Ana")},   {3, undef, txt("met at the station")}};
    proto_col ins_t2[4] = {{0, undef, txt("row-2")}, {1, undef, txt("t2")},
                           {2, undef, txt("Ben")},   {3, undef, txt("not my team")}};
    proto_col upd[2] = {{0, txt("row-1"), undef}, {2, txt("Ana"), txt("Ana M.")}};
    proto_col upd_stale[2] = {{0, txt("row-1"), undef}, {3, txt("old"), txt("newer")}};
    proto_col del[4] = {{0, txt("row-1"), undef}, {1, txt("t1"), undef},
                        {2, txt("Ana M."), undef}, {3, txt("met at the station"), undef}};
    proto_change c_ins = {PROTO_OP_INSERT, 4, ins};
    proto_change c_ins_t2 = {PROTO_OP_INSERT, 4, ins_t2};
    proto_change c_upd = {PROTO_OP_UPDATE, 2, upd};
    proto_change c_upd_stale = {PROTO_OP_UPDATE, 2, upd_stale};
    proto_change c_del = {PROTO_OP_DELETE, 4, del};
    proto_msg pull;
    memset(&pull, 0, sizeof pull);
    pull.type = PROTO_MSG_PULL;
    pull.u.pull.limit = 100;

    static seq_file f;
    proto_msg m;
    struct {
        const char *name;
        int n;
        proto_change *ch[4];
        uint64_t seq[4];
        bool pull_after;
    } seeds[] = {
        {"insert", 1, {&c_ins}, {1}, false},
        {"insert-update-delete-pull", 3, {&c_ins, &c_upd, &c_del}, {1, 2, 3}, true},
        {"update-conflict", 3, {&c_ins, &c_upd_stale, &c_upd}, {1, 2, 3}, false},
        {"out-of-scope", 1, {&c_ins_t2}, {1}, false},
        {"resend", 2, {&c_ins, &c_ins}, {1, 1}, true},
        {"update-unknown-row", 1, {&c_upd}, {5}, false},
        {"delete-then-update", 3, {&c_ins, &c_del, &c_upd}, {1, 2, 3}, true},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        f.len = 0;
        for (int k = 0; k < seeds[i].n; k++) {
            m = push_of(seeds[i].seq[k], "contacts", seeds[i].ch[k], 1);
            if (add(&f, &m) != 0)
                return -1;
        }
        if (seeds[i].pull_after && add(&f, &pull) != 0)
            return -1;
        if (write_file(dir, seeds[i].name, f.buf, f.len) != 0)
            return -1;
    }
    f.len = 0;
    m = push_of(1, "no_such_table", &c_ins, 1);
    if (add(&f, &m) != 0 || add(&f, &pull) != 0 || write_file(dir, "unknown-table", f.buf, f.len))
        return -1;
    f.len = 0;
    proto_change two[2] = {c_ins, c_upd};
    m = push_of(1, "contacts", two, 2);
    if (add(&f, &m) != 0 || write_file(dir, "two-changes-one-entry", f.buf, f.len) != 0)
        return -1;
    return 0;
}

static int rows_seed(const char *dir, const char *name, proto_table_rows *t, uint64_t cursor,
                     bool more)
{
    proto_msg m;
    memset(&m, 0, sizeof m);
    m.type = PROTO_MSG_ROWS;
    m.u.rows.cursor = cursor;
    m.u.rows.more = more;
    m.u.rows.n_tables = 1;
    m.u.rows.tables = t;
    proto_buf b = {0};
    if (proto_encode(&m, &b) != PROTO_OK)
        return -1;
    int rc = write_file(dir, name, b.data, b.len);
    proto_buf_free(&b);
    return rc;
}

static int pull_seeds(const char *dir)
{
    proto_value two_rows[8] = {txt("row-1"), txt("t1"), txt("Ana"), txt("note"),
                               txt("row-2"), txt("t1"), txt("Ben"), {.type = PROTO_NULL}};
    proto_value gone[1] = {txt("row-1")};
    proto_value moved[1] = {txt("row-2")};
    proto_table_rows t = {.table = "contacts", .n_columns = 4, .n_rows = 2, .rows = two_rows,
                          .n_pk = 1};
    if (rows_seed(dir, "two-rows", &t, 10, true) != 0)
        return -1;
    proto_table_rows td = {.table = "contacts", .n_columns = 4, .n_pk = 1, .n_deleted = 1,
                           .deleted = gone, .n_removed = 1, .removed = moved};
    if (rows_seed(dir, "tombstone-and-removal", &td, 12, false) != 0)
        return -1;
    if (rows_seed(dir, "older-cursor", &t, 3, false) != 0)
        return -1;
    proto_table_rows tu = t;
    tu.table = "not_installed";
    if (rows_seed(dir, "unknown-table", &tu, 20, false) != 0)
        return -1;
    proto_table_rows ts = t;
    ts.n_columns = 2;
    ts.n_rows = 4;
    if (rows_seed(dir, "fewer-columns", &ts, 21, false) != 0)
        return -1;
    proto_value ints[4] = {{.type = PROTO_INT, .u.i = 7}, {.type = PROTO_INT, .u.i = 1},
                           {.type = PROTO_REAL}, {.type = PROTO_BLOB}};
    proto_table_rows tt = {.table = "contacts", .n_columns = 4, .n_rows = 1, .rows = ints,
                           .n_pk = 1};
    return rows_seed(dir, "odd-types", &tt, 22, false);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds DIR   (writes DIR/server and DIR/pull_apply)\n");
        return 2;
    }
    char server[900], pull[900];
    snprintf(server, sizeof server, "%s/server", argv[1]);
    snprintf(pull, sizeof pull, "%s/pull_apply", argv[1]);
    mkdir(server, 0755);
    mkdir(pull, 0755);
    if (server_seeds(server) != 0 || pull_seeds(pull) != 0) {
        fprintf(stderr, "fuzz_seeds: failed\n");
        return 1;
    }
    return 0;
}
