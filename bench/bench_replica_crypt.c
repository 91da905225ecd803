/* What encryption at rest costs liboutpost, measured through its public API in one run:
 *   - the write path: 100,000 ten-column contacts through outpost_exec() in transactions of
 *     1,000 (capture and outbox included), on an encrypted replica beside a no_encryption one;
 *   - pull-apply: the same 100,000 rows applied with outpost_rows_apply() in pages of 1,000,
 *     encrypted beside unencrypted;
 *   - the time to open a replica with a passphrase (Argon2id, 64 MiB, 3 passes) beside with a
 *     raw key.
 * Median of BENCH_RUNS after BENCH_WARMUP (bench_time.h), the two kinds interleaved so both see
 * the same machine. Prints name=value lines;
 * each ratio is encrypted rows/s over unencrypted rows/s (target at least 0.8). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_rows.h"
#include "bench_time.h"
#include "outpost.h"
#include "outpost_engine.h"

#define ROWS 100000u
#define BATCH 1000u
#define N_COLS BENCH_CONTACT_COLS

/* A fixed benchmark key: what an app would unwrap from the platform keystore. */
static const uint8_t bench_key[OUTPOST_KEY_BYTES] = {
    0x62, 0x65, 0x6e, 0x63, 0x68, 0x2d, 0x72, 0x65, 0x70, 0x6c, 0x69, 0x63, 0x61, 0x2d, 0x63, 0x72,
    0x79, 0x70, 0x74, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c};
static const char bench_passphrase[] = "a long passphrase typed on a field laptop";

typedef bench_contact_row row;

#define DIE(...)                                                                                    \
    do {                                                                                           \
        fprintf(stderr, "bench_replica_crypt: " __VA_ARGS__);                                      \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

/* A fresh replica at path with the contacts schema, encrypted or not. */
static outpost_replica *replica_fresh(const char *path, bool encrypted)
{
    proto_schema_table t;
    proto_schema schema;
    outpost_config cfg = {.path = path};
    outpost_replica *r = NULL;
    char err[256];

    bench_contact_schema(&t, &schema);
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

    t0 = bench_now_s();
    for (uint32_t i = 0; i < ROWS; i++) {
        if (i % BATCH == 0 && outpost_tx_begin(r) != OUTPOST_OK)
            DIE("begin: %s", outpost_errmsg(r));
        if (outpost_exec(r, bench_contact_insert_sql, rows[i].ov, N_COLS) != OUTPOST_OK)
            DIE("exec: %s", outpost_errmsg(r));
        if ((i + 1) % BATCH == 0 && outpost_tx_commit(r, NULL) != OUTPOST_OK)
            DIE("commit: %s", outpost_errmsg(r));
    }
    t1 = bench_now_s();
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
    t0 = bench_now_s();
    for (uint32_t first = 0; first < ROWS; first += BATCH) {
        for (uint32_t i = 0; i < BATCH; i++)
            memcpy(&vals[(size_t)i * N_COLS], rows[first + i].v, sizeof rows[first + i].v);
        page.cursor = first + BATCH;
        page.more = first + BATCH < ROWS;
        if (outpost_rows_apply(r, &page) != OUTPOST_OK)
            DIE("apply: %s", outpost_errmsg(r));
    }
    t1 = bench_now_s();
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
    double t0 = bench_now_s();

    if (outpost_replica_open(&cfg, &r, err, sizeof err) != OUTPOST_OK)
        DIE("open: %s", err);
    double t1 = bench_now_s();
    outpost_replica_close(r);
    return (t1 - t0) * 1000.0;
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    char dir[256], path[300], err[256];
    row *rows = bench_contact_rows_make("bench_replica_crypt", ROWS);
    double write_plain[BENCH_RUNS], write_crypt[BENCH_RUNS], pull_plain[BENCH_RUNS],
        pull_crypt[BENCH_RUNS], open_key_ms[BENCH_RUNS], open_passphrase_ms[BENCH_RUNS];
    outpost_secret key = {.key = bench_key};
    outpost_secret passphrase = {.passphrase = bench_passphrase,
                                 .passphrase_len = sizeof bench_passphrase - 1};

    snprintf(dir, sizeof dir, "%s/outpost-bench-crypt-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        DIE("mkdtemp %s", dir);
    snprintf(path, sizeof path, "%s/bench.db", dir);
    for (int i = -BENCH_WARMUP; i < BENCH_RUNS; i++) {
        double wp = run_write(path, rows, false), wc = run_write(path, rows, true);
        double pp = run_pull(path, rows, false), pc = run_pull(path, rows, true);
        if (i >= 0)
            write_plain[i] = wp, write_crypt[i] = wc, pull_plain[i] = pp, pull_crypt[i] = pc;
    }
    /* Opening: a small replica under a key, then the same under a passphrase. */
    outpost_replica_close(replica_fresh(path, true));
    for (int i = -BENCH_WARMUP; i < BENCH_RUNS; i++) {
        double ms = time_open(path, &key);
        if (i >= 0)
            open_key_ms[i] = ms;
    }
    if (outpost_replica_rekey(path, &key, &passphrase, err, sizeof err) != OUTPOST_OK)
        DIE("rekey: %s", err);
    for (int i = -BENCH_WARMUP; i < BENCH_RUNS; i++) {
        double ms = time_open(path, &passphrase);
        if (i >= 0)
            open_passphrase_ms[i] = ms;
    }
    outpost_files_wipe(path, NULL, 0);
    rmdir(dir);
    free(rows);

    printf("replica_crypt_rows=%u\n", ROWS);
    printf("replica_crypt_columns=%d\n", N_COLS);
    printf("replica_crypt_batch_rows=%u\n", BATCH);
    bench_print_method("replica_crypt");
    bench_stat wp = bench_stat_of(write_plain, BENCH_RUNS), wc = bench_stat_of(write_crypt, BENCH_RUNS);
    bench_stat pp = bench_stat_of(pull_plain, BENCH_RUNS), pc = bench_stat_of(pull_crypt, BENCH_RUNS);
    bench_print_stat("replica_write_tx1000_plain_rows_per_s", wp, 0);
    bench_print_stat("replica_write_tx1000_encrypted_rows_per_s", wc, 0);
    printf("replica_write_tx1000_ratio=%.2f\n", wc.median / wp.median);
    bench_print_stat("replica_pull_apply_page1000_plain_rows_per_s", pp, 0);
    bench_print_stat("replica_pull_apply_page1000_encrypted_rows_per_s", pc, 0);
    printf("replica_pull_apply_page1000_ratio=%.2f\n", pc.median / pp.median);
    bench_print_stat("replica_open_key_ms", bench_stat_of(open_key_ms, BENCH_RUNS), 1);
    bench_print_stat("replica_open_passphrase_argon2id_ms",
                     bench_stat_of(open_passphrase_ms, BENCH_RUNS), 0);
    printf("replica_crypt_target_ratio=0.80\n");
    bench_print_target("replica_write_tx1000_ratio", wc.median / wp.median >= 0.80);
    bench_print_target("replica_pull_apply_page1000_ratio", pc.median / pp.median >= 0.80);
    return 0;
}
