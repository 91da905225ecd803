/*
 * Fuzz target for outbox_decode() (client-lib/src/outbox.c), the device's own reader of the
 * SQLite session changesets in its outbox: the bytes are the changeset. They are copied into a
 * buffer of exactly their size, so that a read past the end is an ASan report.
 *
 * Besides "never crash, never read past the end, always return":
 * - the answer is OUTPOST_OK or OUTPOST_ECORRUPT;
 * - what is read has the shape sqlite3session_changeset() gives it: every table named once,
 *   1 to 65,536 columns and at least one change; columns in order and inside the table; an
 *   INSERT a new value for every column, a DELETE an old one, an UPDATE old and new values
 *   for the columns it changes; text and blobs NUL-terminated (as value_from_sqlite() did);
 * - SQLite's own iterator (sqlite3changeset_next) reads the same tables, changes and values,
 *   and nothing more. It is only asked about accepted bytes: SQLite 3.40's iterator loops
 *   forever on a table header without its NUL, which an accepted changeset never has, and on
 *   accepted bytes it reads every field where outbox_decode() does;
 * - it is pushable: the PUSH encodes, and the protocol decoder (the server's) reads it back
 *   with the same changes.
 *
 * Built two ways, like the other targets: a libFuzzer target (-DOUTPOST_FUZZ=ON with clang,
 * tests/zz_proof.cmake) or, linked with fuzz_replay.c, a program that replays
 * tests/fuzz/corpus/outbox/ (fuzz_outbox_decode_replay in ctest). outbox_seeds writes that
 * corpus.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h" /* outbox_decode, arena_free */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_outbox_decode: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
    abort();
}

static bool is_undef(const proto_value *v)
{
    return v->type == PROTO_UNDEF;
}

static void check_value(const proto_value *v)
{
    bool bytes = v->type == PROTO_TEXT || v->type == PROTO_BLOB;
    if (bytes && (v->u.b.p == NULL || v->u.b.p[v->u.b.n] != 0))
        die("text or blob not NUL-terminated", NULL);
    if (v->type == PROTO_REAL && v->u.r != v->u.r)
        die("a NaN was read", NULL);
}

static void check_shape(const proto_push *push)
{
    for (uint32_t t = 0; t < push->n_tables; t++) {
        const proto_table_changes *tc = &push->tables[t];
        if (tc->table == NULL || tc->table[0] == '\0')
            die("a table without a name", NULL);
        for (uint32_t u = 0; u < t; u++)
            if (strcmp(push->tables[u].table, tc->table) == 0)
                die("a table named twice", tc->table);
        if (tc->n_columns == 0 || tc->n_columns > 65536 || tc->n_changes == 0)
            die("a table without columns or changes", tc->table);
        for (uint32_t c = 0; c < tc->n_changes; c++) {
            const proto_change *ch = &tc->changes[c];
            bool dense = ch->op != PROTO_OP_UPDATE;
            if (dense && ch->n_cols != tc->n_columns)
                die("an INSERT or DELETE without every column", tc->table);
            if (!dense && ch->n_cols == 0)
                die("an UPDATE without columns", tc->table);
            for (uint32_t k = 0; k < ch->n_cols; k++) {
                const proto_col *col = &ch->cols[k];
                if (col->idx >= tc->n_columns || (k > 0 && col->idx <= ch->cols[k - 1].idx))
                    die("columns out of order or outside the table", tc->table);
                bool has_old = !is_undef(&col->old_val), has_new = !is_undef(&col->new_val);
                bool ok = ch->op == PROTO_OP_INSERT   ? !has_old && has_new
                        : ch->op == PROTO_OP_DELETE ? has_old && !has_new
                                                    : has_old;
                if (!ok)
                    die("a column's old and new values do not fit its change", tc->table);
                check_value(&col->old_val);
                check_value(&col->new_val);
            }
        }
    }
}

/* Whether SQLite's value is the decoder's (NULL pointer: undefined). */
static bool same_value(sqlite3_value *sv, const proto_value *v)
{
    if (sv == NULL)
        return v->type == PROTO_UNDEF;
    switch (sqlite3_value_type(sv)) {
    case SQLITE_INTEGER: return v->type == PROTO_INT && v->u.i == sqlite3_value_int64(sv);
    case SQLITE_FLOAT: {
        double d = sqlite3_value_double(sv);
        return v->type == PROTO_REAL && memcmp(&d, &v->u.r, sizeof d) == 0;
    }
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
        int n = sqlite3_value_bytes(sv);
        const void *p = sqlite3_value_blob(sv);
        return v->type == (sqlite3_value_type(sv) == SQLITE_TEXT ? PROTO_TEXT : PROTO_BLOB) &&
               v->u.b.n == (uint32_t)n && (n == 0 || memcmp(v->u.b.p, p, (size_t)n) == 0);
    }
    default: return v->type == PROTO_NULL;
    }
}

/* The accepted changeset read again by sqlite3changeset_next(): the same changes in the same
 * order, table by table. */
static void check_as_sqlite(const uint8_t *cs, int n, const proto_push *push)
{
    sqlite3_changeset_iter *it = NULL;
    uint32_t ti = 0, ci = 0;
    int step;

    if (sqlite3changeset_start(&it, n, (void *)cs) != SQLITE_OK)
        die("sqlite3changeset_start failed", NULL);
    while ((step = sqlite3changeset_next(it)) == SQLITE_ROW) {
        const char *table;
        int n_col, op, indirect;
        sqlite3changeset_op(it, &table, &n_col, &op, &indirect);
        if (ti < push->n_tables && ci == push->tables[ti].n_changes) {
            ti++;
            ci = 0;
        }
        if (ti >= push->n_tables)
            die("SQLite reads more changes", table);
        const proto_table_changes *tc = &push->tables[ti];
        if (strcmp(tc->table, table) != 0 || tc->n_columns != (uint32_t)n_col)
            die("SQLite reads another table here", table);
        const proto_change *ch = &tc->changes[ci++];
        int want = ch->op == PROTO_OP_INSERT ? SQLITE_INSERT
                 : ch->op == PROTO_OP_DELETE ? SQLITE_DELETE : SQLITE_UPDATE;
        if (op != want)
            die("SQLite reads another operation", table);
        uint32_t k = 0;
        for (int c = 0; c < n_col; c++) {
            sqlite3_value *o = NULL, *w = NULL;
            if (op != SQLITE_INSERT)
                sqlite3changeset_old(it, c, &o);
            if (op != SQLITE_DELETE)
                sqlite3changeset_new(it, c, &w);
            if (o == NULL && w == NULL)
                continue;
            if (k >= ch->n_cols || ch->cols[k].idx != (uint32_t)c ||
                !same_value(o, &ch->cols[k].old_val) || !same_value(w, &ch->cols[k].new_val))
                die("SQLite reads another value", table);
            k++;
        }
        if (k != ch->n_cols)
            die("SQLite reads fewer columns", table);
    }
    if (step != SQLITE_DONE)
        die("SQLite finds the changeset corrupt", sqlite3_errstr(step));
    if (push->n_tables != (ti + (push->n_tables > 0)) ||
        (push->n_tables > 0 && ci != push->tables[ti].n_changes))
        die("SQLite reads fewer changes", NULL);
    sqlite3changeset_finalize(it);
}

/* The PUSH the sync engine would send, encoded and decoded as the server decodes it. */
static void check_pushable(const proto_push *push)
{
    proto_msg msg = {.type = PROTO_MSG_PUSH};
    proto_buf buf = {0};
    proto_msg *back = NULL;
    proto_limits limits;
    char err[256];

    msg.u.push.seq = 1;
    msg.u.push.hlc = 1;
    msg.u.push.schema_version = 1;
    msg.u.push.n_tables = push->n_tables;
    msg.u.push.tables = push->tables;
    if (proto_encode(&msg, &buf) != PROTO_OK)
        die("the PUSH does not encode", NULL);
    proto_limits_default(&limits);
    limits.max_message_bytes = buf.len; /* the sync engine cuts large entries into chunks */
    if (proto_decode(buf.data, buf.len, &limits, &back, err, sizeof err) != PROTO_OK)
        die("the PUSH does not decode", err);
    const proto_push *p = &back->u.push;
    if (back->type != PROTO_MSG_PUSH || p->n_tables != push->n_tables)
        die("the PUSH decodes to other tables", NULL);
    for (uint32_t t = 0; t < p->n_tables; t++) {
        const proto_table_changes *a = &push->tables[t], *b = &p->tables[t];
        if (strcmp(a->table, b->table) != 0 || a->n_columns != b->n_columns ||
            a->n_changes != b->n_changes)
            die("the PUSH decodes to another table", a->table);
        for (uint32_t c = 0; c < a->n_changes; c++) {
            const proto_change *x = &a->changes[c], *y = &b->changes[c];
            if (x->op != y->op || x->n_cols != y->n_cols)
                die("the PUSH decodes to another change", a->table);
            for (uint32_t k = 0; k < x->n_cols; k++)
                if (x->cols[k].idx != y->cols[k].idx ||
                    !proto_value_equal(&x->cols[k].old_val, &y->cols[k].old_val) ||
                    !proto_value_equal(&x->cols[k].new_val, &y->cols[k].new_val))
                    die("the PUSH decodes to another value", a->table);
        }
    }
    proto_msg_free(back);
    proto_buf_free(&buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > INT_MAX)
        return 0;
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        die("out of memory", NULL);
    if (size)
        memcpy(copy, data, size);
    struct outpost_arena *arena = NULL;
    proto_push push;
    int rc = outbox_decode(copy, (int)size, &arena, &push);
    if (rc == OUTPOST_OK) {
        check_shape(&push);
        check_as_sqlite(copy, (int)size, &push);
        check_pushable(&push);
    } else if (rc != OUTPOST_ECORRUPT) {
        die("neither read nor refused as corrupt", outpost_strerror(rc));
    }
    arena_free(arena);
    free(copy);
    return 0;
}
