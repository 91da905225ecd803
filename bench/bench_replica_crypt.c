/* What encryption at rest costs liboutpost, measured through its public API in one run:
 *   - the write path: 100,000 ten-column contacts through outpost_exec() in transactions of
 *     1,000 (capture and outbox included), on an encrypted replica beside a no_encryption one;
 *   - pull-apply: the same 100,000 rows applied with outpost_rows_apply() in pages of 1,000,
 *     encrypted beside unencrypted;
 *   - the time to open a replica with a passphrase (Argon2id, 64 MiB, 3 passes) beside with a
 *     raw key.
 * Best of RUNS, the two kinds interleaved so both see the same machine. Prints name=value lines;
 * each ratio is encrypted rows/s over unencrypted rows/s (target at least 0.8). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "outpost.h"

#define ROWS 100000u
#define BATCH 1000u
#define N_COLS 10
#define RUNS 3

static const char *cols[N_COLS] = {"id", "team_id", "name", "age", "gender", "place",
                                   "met_at", "risk", "notes", "worker"};
static uint32_t pk[] = {0};

static const char create_sql[] =
    "CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT NOT NULL, name TEXT, age INTEGER,"
    " gender TEXT, place TEXT, met_at INTEGER, risk INTEGER, notes TEXT, worker TEXT)";
static const char insert_sql[] =
    "INSERT INTO contacts(id, team_id, name, age, gender, place, met_at, risk, notes, worker)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/* A fixed benchmark key: what an app would unwrap from the platform keystore. */
static const uint8_t bench_key[OUTPOST_KEY_BYTES] = {
    0x62, 0x65, 0x6e, 0x63, 0x68, 0x2d, 0x72, 0x65, 0x70, 0x6c, 0x69, 0x63, 0x61, 0x2d, 0x63, 0x72,
    0x79, 0x70, 0x74, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c};
static const char bench_passphrase[] = "a long passphrase typed on a field laptop";

#define DIE(...)                                                                                    \
    do {                                                                                           \
        fprintf(stderr, "bench_replica_crypt: " __VA_ARGS__);                                      \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

typedef struct row {
    char id[40];
    char name[24];
    proto_value v[N_COLS];
} row;

static proto_value text(const char *s)
{
    proto_value v;

    memset(&v, 0, sizeof v);
    v.type = PROTO_TEXT;
    v.u.b.p = (const uint8_t *)s;
    v.u.b.n = (uint32_t)strlen(s);
    return v;
}

static proto_value integer(int64_t i)
{
    proto_value v;

    memset(&v, 0, sizeof v);
    v.type = PROTO_INT;
    v.u.i = i;
    return v;
}

/* The same rows for every run, built before any clock starts. */
static row *rows_make(void)
{
    row *rows = calloc(ROWS, sizeof *rows);

    if (rows == NULL)
        DIE("out of memory");
    for (uint32_t i = 0; i < ROWS; i++) {
        row *r = &rows[i];

        snprintf(r->id, sizeof r->id, "0190a000-0000-7000-8000-%012u", i);
        snprintf(r->name, sizeof r->name, "Contact %u", i);
        r->v[0] = text(r->id);
        r->v[1] = text(i % 3 ? "team-north" : "team-south");
        r->v[2] = text(r->name);
        r->v[3] = integer(10 + i % 8);
        r->v[4] = text(i % 2 ? "f" : "m");
        r->v[5] = text("central station, east exit");
        r->v[6] = integer(1700000000000 + i);
        r->v[7] = integer(i % 4);
        r->v[8] = text("met at night; referred to shelter; follow up next week");
        r->v[9] = text("worker-7");
    }
    return rows;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A fresh replica at path with the contacts schema, encrypted or not. */
static outpost_replica *replica_fresh(const char *path, bool encrypted)
{
    proto_schema_table t = {.name = "contacts", .create_sql = create_sql, .scope_col = "team_id",
                            .n_columns = N_COLS, .columns = cols, .n_pk = 1, .pk = pk};
    proto_schema schema = {.version = 1, .n_tables = 1, .tables = &t};
    outpost_config cfg = {.path = path};
    outpost_replica *r = NULL;
    char err[256];

    if (encrypted)
        cfg.secret.key = bench_key;
    else
        cfg.no_encryption = 1;
    outpost_files_wipe(path, NULL, 0);
    if (outpost_replica_open(&cfg, &r, err, sizeof err) != OUTPOST_OK)
        DIE("open: %s", err);
    if (outpost_schema_install(r, &schema) != OUTPOST_OK)
        DIE("schema: %s", outpost_errmsg(r));
    return r;
}

/* outpost_exec() per row, outpost_tx_commit() per BATCH rows (capture + outbox). */
static double run_write(const char *path, const row *rows, bool encrypted)
{
    outpost_replica *r = replica_fresh(path, encrypted);
    double t0, t1;

    t0 = now_s();
    for (uint32_t i = 0; i < ROWS; i++) {
        if (i % BATCH == 0 && outpost_tx_begin(r) != OUTPOST_OK)
            DIE("begin: %s", outpost_errmsg(r));
        if (outpost_exec(r, insert_sql, rows[i].v, N_COLS) != OUTPOST_OK)
            DIE("exec: %s", outpost_errmsg(r));
        if ((i + 1) % BATCH == 0 && outpost_tx_commit(r, NULL) != OUTPOST_OK)
            DIE("commit: %s", outpost_errmsg(r));
    }
    t1 = now_s();
    outpost_replica_close(r);
    outpost_files_wipe(path, NULL, 0);
    return ROWS / (t1 - t0);
}

/* outpost_rows_apply() of ROWS rows in pages of BATCH, as the sync engine applies a pull. */
static double run_pull(const char *path, row *rows, bool encrypted)
{
    outpost_replica *r = replica_fresh(path, encrypted);
    proto_value *vals = malloc((size_t)BATCH * N_COLS * sizeof *vals);
    proto_table_rows tr = {.table = "contacts", .n_columns = N_COLS, .n_rows = BATCH, .rows = vals,
                           .n_pk = 1};
    proto_rows page = {.n_tables = 1, .tables = &tr, .more = true};
    double t0, t1;

    if (vals == NULL)
        DIE("out of memory");
    t0 = now_s();
    for (uint32_t first = 0; first < ROWS; first += BATCH) {
        for (uint32_t i = 0; i < BATCH; i++)
            memcpy(&vals[(size_t)i * N_COLS], rows[first + i].v, sizeof rows[first + i].v);
        page.cursor = first + BATCH;
        page.more = first + BATCH < ROWS;
        if (outpost_rows_apply(r, &page) != OUTPOST_OK)
            DIE("apply: %s", outpost_errmsg(r));
    }
    t1 = now_s();
    free(vals);
    outpost_replica_close(r);
    outpost_files_wipe(path, NULL, 0);
    return ROWS / (t1 - t0);
}

/* Milliseconds to open an existing replica with the given secret (and close it). */
static double time_open(const char *path, const outpost_secret *secret)
{
    outpost_config cfg = {.path = path, .secret = *secret};
    outpost_replica *r = NULL;
    char err[256];
    double t0 = now_s();

    if (outpost_replica_open(&cfg, &r, err, sizeof err) != OUTPOST_OK)
        DIE("open: %s", err);
    double t1 = now_s();
    outpost_replica_close(r);
    return (t1 - t0) * 1000.0;
}

static double max2(double a, double b)
{
    return a > b ? a : b;
}

static double min2(double a, double b)
{
    return a < b ? a : b;
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    char dir[256], path[300], err[256];
    row *rows = rows_make();
    double write_plain = 0, write_crypt = 0, pull_plain = 0, pull_crypt = 0;
    double open_key_ms = 1e9, open_passphrase_ms = 1e9;
    outpost_secret key = {.key = bench_key};
    outpost_secret passphrase = {.passphrase = bench_passphrase,
                                 .passphrase_len = sizeof bench_passphrase - 1};

    snprintf(dir, sizeof dir, "%s/outpost-bench-crypt-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        DIE("mkdtemp %s", dir);
    snprintf(path, sizeof path, "%s/bench.db", dir);
    for (int i = 0; i < RUNS; i++) {
        write_plain = max2(write_plain, run_write(path, rows, false));
        write_crypt = max2(write_crypt, run_write(path, rows, true));
        pull_plain = max2(pull_plain, run_pull(path, rows, false));
        pull_crypt = max2(pull_crypt, run_pull(path, rows, true));
    }
    /* Opening: a small replica under a key, then the same under a passphrase. */
    outpost_replica_close(replica_fresh(path, true));
    for (int i = 0; i < RUNS; i++)
        open_key_ms = min2(open_key_ms, time_open(path, &key));
    if (outpost_replica_rekey(path, &key, &passphrase, err, sizeof err) != OUTPOST_OK)
        DIE("rekey: %s", err);
    for (int i = 0; i < RUNS; i++)
        open_passphrase_ms = min2(open_passphrase_ms, time_open(path, &passphrase));
    outpost_files_wipe(path, NULL, 0);
    rmdir(dir);
    free(rows);

    printf("replica_crypt_rows=%u\n", ROWS);
    printf("replica_crypt_columns=%d\n", N_COLS);
    printf("replica_crypt_batch_rows=%u\n", BATCH);
    printf("replica_crypt_runs_best_of=%d\n", RUNS);
    printf("replica_write_tx1000_plain_rows_per_s=%.0f\n", write_plain);
    printf("replica_write_tx1000_encrypted_rows_per_s=%.0f\n", write_crypt);
    printf("replica_write_tx1000_ratio=%.2f\n", write_crypt / write_plain);
    printf("replica_pull_apply_page1000_plain_rows_per_s=%.0f\n", pull_plain);
    printf("replica_pull_apply_page1000_encrypted_rows_per_s=%.0f\n", pull_crypt);
    printf("replica_pull_apply_page1000_ratio=%.2f\n", pull_crypt / pull_plain);
    printf("replica_open_key_ms=%.1f\n", open_key_ms);
    printf("replica_open_passphrase_argon2id_ms=%.0f\n", open_passphrase_ms);
    printf("replica_crypt_target_ratio=0.80\n");
    return 0;
}
