/*
 * Protocol benchmark: encode and decode 100,000 contact-like row changes (10 columns, about
 * 350 bytes of field data each) as the device would push them: INSERT changes cut into PUSH
 * chunks under the 1 MiB message limit with proto_change_encoded_size().
 *
 * Beside them, measured in the same run on the same rows: the size of the same inserts as a
 * SQLite session changeset, and the ceiling, the rate at which SQLite takes the rows in one
 * transaction (plain, and with a session attached).
 *
 * Each figure is the median of BENCH_RUNS after BENCH_WARMUP (bench_time.h). Prints name=value
 * lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench_time.h"
#include "outpost/proto.h"

enum { N_ROWS = 100000, N_COLS = 10, MESSAGE_LIMIT = 1024 * 1024 };

static const char *const column_names[N_COLS] = {
    "id", "team_id", "name", "age", "phone", "location", "notes", "risk", "last_seen", "updated_ms",
};

typedef struct dataset {
    char *text;          /* all text fields, back to back */
    proto_col *cols;     /* N_ROWS * N_COLS, row-major */
    proto_change *changes;
    size_t field_bytes;  /* field data over all rows: text bytes, plus 8 per integer */
} dataset;

static uint64_t rng_next(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* Appends n pseudo-random lowercase words to *cursor and returns the value. */
static proto_value make_text(char **cursor, size_t n, uint64_t *rng)
{
    static const char letters[] = "abcdefghijklmnopqrstuvwxyz     ";
    char *start = *cursor;
    for (size_t i = 0; i < n; i++)
        start[i] = letters[rng_next(rng) % (sizeof letters - 1)];
    *cursor += n;
    return (proto_value){.type = PROTO_TEXT, .u.b = {(const uint8_t *)start, (uint32_t)n}};
}

static proto_value make_fixed(char **cursor, const char *s)
{
    size_t n = strlen(s);
    memcpy(*cursor, s, n);
    proto_value v = {.type = PROTO_TEXT, .u.b = {(const uint8_t *)*cursor, (uint32_t)n}};
    *cursor += n;
    return v;
}

static proto_value make_int(int64_t i)
{
    return (proto_value){.type = PROTO_INT, .u.i = i};
}

static int dataset_make(dataset *ds)
{
    ds->text = malloc((size_t)N_ROWS * 400);
    ds->cols = calloc((size_t)N_ROWS * N_COLS, sizeof *ds->cols);
    ds->changes = calloc(N_ROWS, sizeof *ds->changes);
    if (ds->text == NULL || ds->cols == NULL || ds->changes == NULL)
        return -1;
    char *cursor = ds->text;
    uint64_t rng = 0x9e3779b97f4a7c15u;
    for (uint32_t r = 0; r < N_ROWS; r++) {
        proto_col *c = &ds->cols[(size_t)r * N_COLS];
        char id[40], team[16], phone[16], seen[32];
        snprintf(id, sizeof id, "0193a4f2-%04x-7%03x-8%03x-%012x", r & 0xffffu, r % 4096u,
                 (r * 7u) % 4096u, r * 2654435761u);
        snprintf(team, sizeof team, "team-%02u", r % 12u);
        snprintf(phone, sizeof phone, "+2547%08u", (r * 7919u) % 100000000u);
        snprintf(seen, sizeof seen, "2026-%02u-%02uT%02u:%02u:00Z", 1u + r % 12u, 1u + r % 28u,
                 r % 24u, r % 60u);
        c[0].new_val = make_fixed(&cursor, id);
        c[1].new_val = make_fixed(&cursor, team);
        c[2].new_val = make_text(&cursor, 22, &rng);
        c[3].new_val = make_int((int64_t)(r % 18u));
        c[4].new_val = make_fixed(&cursor, phone);
        c[5].new_val = make_text(&cursor, 48, &rng);
        c[6].new_val = make_text(&cursor, 200, &rng);
        c[7].new_val = make_int((int64_t)(r % 5u));
        c[8].new_val = make_fixed(&cursor, seen);
        c[9].new_val = make_int(1764340000000 + (int64_t)r * 1000);
        for (uint32_t i = 0; i < N_COLS; i++) {
            c[i].idx = i;
            ds->field_bytes += c[i].new_val.type == PROTO_TEXT ? c[i].new_val.u.b.n : 8;
        }
        ds->changes[r] = (proto_change){.op = PROTO_OP_INSERT, .n_cols = N_COLS, .cols = c};
    }
    return 0;
}

static void dataset_free(dataset *ds)
{
    free(ds->text);
    free(ds->cols);
    free(ds->changes);
}

/* ---- protocol ----------------------------------------------------------------------------- */

typedef struct encoded {
    proto_buf *messages;
    size_t n_messages;
    size_t total_bytes;
} encoded;

/* Cuts the changes into PUSH chunks as a device would and encodes them. */
static int encode_all(const dataset *ds, encoded *out)
{
    out->messages = calloc(N_ROWS, sizeof *out->messages);
    if (out->messages == NULL)
        return -1;
    proto_table_changes table = {.table = "contacts", .n_columns = N_COLS};
    proto_msg msg = {.type = PROTO_MSG_PUSH,
                     .u.push = {.seq = 1, .hlc = PROTO_HLC_MAKE(1764340000000u, 0),
                                .schema_version = 1, .n_tables = 1, .tables = &table}};
    table.changes = ds->changes;
    table.n_changes = 0;
    size_t envelope = proto_encoded_size(&msg) + 4; /* + array header growth */
    uint32_t next = 0;
    while (next < N_ROWS) {
        size_t size = envelope;
        uint32_t count = 0;
        while (next + count < N_ROWS) {
            size_t one = proto_change_encoded_size(&ds->changes[next + count]);
            if (size + one > MESSAGE_LIMIT)
                break;
            size += one;
            count++;
        }
        table.changes = &ds->changes[next];
        table.n_changes = count;
        msg.u.push.chunk = (uint32_t)out->n_messages;
        msg.u.push.more = next + count < N_ROWS;
        proto_buf *buf = &out->messages[out->n_messages++];
        if (count == 0 || proto_encode(&msg, buf) != PROTO_OK || buf->len > MESSAGE_LIMIT)
            return -1;
        out->total_bytes += buf->len;
        next += count;
    }
    return 0;
}

static int decode_all(const encoded *enc, uint32_t *out_rows)
{
    uint32_t rows = 0;
    for (size_t i = 0; i < enc->n_messages; i++) {
        proto_msg *msg = NULL;
        char err[200];
        if (proto_decode(enc->messages[i].data, enc->messages[i].len, NULL, &msg, err,
                         sizeof err) != PROTO_OK) {
            fprintf(stderr, "decode: %s\n", err);
            return -1;
        }
        rows += msg->u.push.tables[0].n_changes;
        proto_msg_free(msg);
    }
    *out_rows = rows;
    return 0;
}

static void encoded_free(encoded *enc)
{
    for (size_t i = 0; i < enc->n_messages; i++)
        proto_buf_free(&enc->messages[i]);
    free(enc->messages);
}

/* ---- SQLite ------------------------------------------------------------------------------- */

static int bind_value(sqlite3_stmt *stmt, int index, const proto_value *v)
{
    if (v->type == PROTO_INT)
        return sqlite3_bind_int64(stmt, index, v->u.i);
    return sqlite3_bind_text(stmt, index, (const char *)v->u.b.p, (int)v->u.b.n, SQLITE_STATIC);
}

/* Inserts every row in one transaction into a fresh WAL database file; with a session
 * attached, *out_changeset_bytes gets the changeset's size. Returns seconds, or -1. */
static double sqlite_insert(const dataset *ds, bool with_session, size_t *out_changeset_bytes)
{
    char path[] = "/tmp/outpost-bench-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    close(fd);
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    sqlite3_session *session = NULL;
    double seconds = -1;
    char sql[512] = "CREATE TABLE contacts(id TEXT PRIMARY KEY";
    for (int i = 1; i < N_COLS; i++) {
        strcat(sql, ", ");
        strcat(sql, column_names[i]);
    }
    strcat(sql, ")");
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", NULL, NULL,
                     NULL) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        goto done;
    if (with_session && (sqlite3session_create(db, "main", &session) != SQLITE_OK ||
                         sqlite3session_attach(session, "contacts") != SQLITE_OK))
        goto done;
    if (sqlite3_prepare_v2(db, "INSERT INTO contacts VALUES(?,?,?,?,?,?,?,?,?,?)", -1, &stmt,
                           NULL) != SQLITE_OK)
        goto done;
    double start = bench_now_s();
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        goto done;
    for (uint32_t r = 0; r < N_ROWS; r++) {
        const proto_col *c = &ds->cols[(size_t)r * N_COLS];
        for (int i = 0; i < N_COLS; i++)
            bind_value(stmt, i + 1, &c[i].new_val);
        if (sqlite3_step(stmt) != SQLITE_DONE || sqlite3_reset(stmt) != SQLITE_OK)
            goto done;
    }
    if (session != NULL) {
        int n = 0;
        void *changeset = NULL;
        if (sqlite3session_changeset(session, &n, &changeset) != SQLITE_OK)
            goto done;
        *out_changeset_bytes = (size_t)n;
        sqlite3_free(changeset);
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto done;
    seconds = bench_now_s() - start;
done:
    if (seconds < 0)
        fprintf(stderr, "sqlite: %s\n", db != NULL ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_finalize(stmt);
    if (session != NULL)
        sqlite3session_delete(session);
    sqlite3_close(db);
    unlink(path);
    char wal[64];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);
    return seconds;
}

/* Bytes of the same PUSH messages as compressed frames of one session's stream (proto.h,
 * "Compression"). These rows' text is random letters: the worst case for compression. */
static size_t compressed_bytes(const encoded *enc)
{
    proto_zstream *z = NULL;
    proto_buf frame = {0};
    size_t total = 0;
    if (proto_zstream_new(true, &z) != PROTO_OK)
        return 0;
    for (size_t i = 0; i < enc->n_messages; i++) {
        frame.len = 0;
        if (proto_zframe_deflate(z, enc->messages[i].data, enc->messages[i].len, &frame) !=
            PROTO_OK) {
            total = 0;
            break;
        }
        total += frame.len;
    }
    proto_buf_free(&frame);
    proto_zstream_free(z);
    return total;
}

int main(void)
{
    dataset ds = {0};
    encoded enc = {0};
    int rc = 1;
    if (dataset_make(&ds) != 0)
        goto done;

    /* BENCH_WARMUP runs, then BENCH_RUNS measured (bench_time.h). */
    double encode_r[BENCH_RUNS], decode_r[BENCH_RUNS], plain_r[BENCH_RUNS], session_r[BENCH_RUNS];
    size_t changeset_bytes = 0, unused = 0;
    for (int r = -BENCH_WARMUP; r < BENCH_RUNS; r++) {
        encoded_free(&enc);
        memset(&enc, 0, sizeof enc);
        double t0 = bench_now_s();
        if (encode_all(&ds, &enc) != 0)
            goto done;
        double encode_s = bench_now_s() - t0;
        uint32_t decoded_rows = 0;
        t0 = bench_now_s();
        if (decode_all(&enc, &decoded_rows) != 0 || decoded_rows != N_ROWS)
            goto done;
        double decode_s = bench_now_s() - t0;
        double plain_s = sqlite_insert(&ds, false, &unused);
        double session_s = sqlite_insert(&ds, true, &changeset_bytes);
        if (plain_s < 0 || session_s < 0)
            goto done;
        if (r >= 0) {
            encode_r[r] = N_ROWS / encode_s;
            decode_r[r] = N_ROWS / decode_s;
            plain_r[r] = N_ROWS / plain_s;
            session_r[r] = N_ROWS / session_s;
        }
    }
    bench_stat ceiling = bench_stat_of(plain_r, BENCH_RUNS);
    bench_stat encode = bench_stat_of(encode_r, BENCH_RUNS);
    bench_stat decode = bench_stat_of(decode_r, BENCH_RUNS);

    printf("rows=%d\n", N_ROWS);
    printf("columns=%d\n", N_COLS);
    bench_print_method("proto");
    printf("field_bytes_per_row=%.1f\n", (double)ds.field_bytes / N_ROWS);
    printf("proto_push_messages=%zu\n", enc.n_messages);
    bench_print_stat("proto_encode_rows_per_s", encode, 0);
    bench_print_stat("proto_decode_rows_per_s", decode, 0);
    printf("proto_bytes_per_row=%.1f\n", (double)enc.total_bytes / N_ROWS);
    printf("proto_compressed_bytes_per_row=%.1f\n", (double)compressed_bytes(&enc) / N_ROWS);
    printf("sqlite_changeset_bytes_per_row=%.1f\n", (double)changeset_bytes / N_ROWS);
    bench_print_stat("ceiling_sqlite_insert_rows_per_s", ceiling, 0);
    bench_print_stat("ceiling_sqlite_session_insert_rows_per_s",
                     bench_stat_of(session_r, BENCH_RUNS), 0);
    /* The wire format must never be the bottleneck: encode and decode at least as fast as
     * SQLite takes the rows, and at most 1.10 times the session changeset's size (bench_sync's
     * wire target). */
    printf("proto_target=encode_and_decode_at_least_ceiling_bytes_at_most_1.10_changeset\n");
    bench_print_target("proto_encode_rows_per_s", encode.median >= ceiling.median);
    bench_print_target("proto_decode_rows_per_s", decode.median >= ceiling.median);
    bench_print_target("proto_bytes_per_row",
                       (double)enc.total_bytes <= 1.10 * (double)changeset_bytes);
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "bench_proto failed\n");
    encoded_free(&enc);
    dataset_free(&ds);
    return rc;
}
