/* cryptvfs benchmark: the same 100,000 contact-like rows (10 columns, about 350 bytes) written
 * through the encrypting VFS and through SQLite's own, in transactions of 1,000 (the app's write
 * path) and in one transaction (a bulk pull-apply, which is also the raw-SQLite ceiling), plus the
 * Argon2id derivation time for a passphrase. Both databases use WAL with synchronous=FULL, as
 * the replica does (client-lib opens it so), so each figure includes the same fsyncs the app
 * pays. Median of BENCH_RUNS after BENCH_WARMUP (bench_time.h). Prints name=value lines. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_time.h"
#include "cryptvfs.h"

#define ROWS 100000
#define TXN_ROWS 1000
#define TARGET_RATIO 0.80 /* bench_replica_crypt's target, one layer down */

static int exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "bench_cryptvfs: %s: %s\n", sql, err ? err : sqlite3_errstr(rc));
    sqlite3_free(err);
    return rc == SQLITE_OK ? 0 : -1;
}

/* Inserts ROWS rows in transactions of txn_rows; returns rows per second or -1. */
static double insert_rows(sqlite3 *db, int txn_rows)
{
    static const char notes[] =
        "Met at the bus station near the market; says she is 15 and travelling alone to the "
        "capital for work arranged by an older cousin. Referred to the shelter; follow up.";
    if (exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                 "CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT NOT NULL, "
                 "worker_id TEXT NOT NULL, name TEXT, age INTEGER, place TEXT, lat REAL, "
                 "lon REAL, notes TEXT, updated_at INTEGER)") != 0)
        return -1;
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO contacts VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                           -1, &stmt, NULL) != SQLITE_OK)
        return -1;
    double start = bench_now_s();
    int rc = 0;
    for (int i = 0; i < ROWS && rc == 0; i++) {
        char id[40], name[32], place[48];
        /* UUIDv7-shaped ids: time-ordered prefix, random-looking tail */
        unsigned u = (unsigned)i;
        snprintf(id, sizeof id, "0190a3c2-%04x-7%03x-8%03x-%012x", (u >> 12) & 0xffffu,
                 u & 0xfffu, (u * 2654435761u) & 0xfffu, u * 40503u);
        snprintf(name, sizeof name, "Person %06d", i);
        snprintf(place, sizeof place, "Bus station, district %d", i % 97);
        if (i % txn_rows == 0)
            rc = exec(db, "BEGIN");
        sqlite3_bind_text(stmt, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 2, "team-0017-north", -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, "worker-3f9a2c71", -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(stmt, 5, 10 + i % 8);
        sqlite3_bind_text(stmt, 6, place, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(stmt, 7, 9.05 + (i % 1000) * 1e-4);
        sqlite3_bind_double(stmt, 8, 7.49 + (i % 777) * 1e-4);
        sqlite3_bind_text(stmt, 9, notes, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 10, 1732780800000LL + i);
        if (rc == 0 && sqlite3_step(stmt) != SQLITE_DONE)
            rc = -1;
        sqlite3_reset(stmt);
        if (rc == 0 && (i % txn_rows == txn_rows - 1 || i == ROWS - 1))
            rc = exec(db, "COMMIT");
    }
    sqlite3_finalize(stmt);
    /* The checkpoint is part of the write cost: it re-reads the WAL and writes the database. */
    if (rc == 0)
        rc = exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    double elapsed = bench_now_s() - start;
    return rc == 0 ? ROWS / elapsed : -1;
}

static void remove_db(const char *path)
{
    const char *suffixes[] = { "", "-wal", "-shm", "-journal" };
    for (size_t i = 0; i < 4; i++) {
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s%s", path, suffixes[i]) < (int)sizeof p)
            unlink(p);
    }
}

static double run_plain(const char *path, int txn_rows)
{
    sqlite3 *db = NULL;
    remove_db(path);
    double rate = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK)
        rate = insert_rows(db, txn_rows);
    sqlite3_close(db);
    remove_db(path);
    return rate;
}

static double run_encrypted(const char *path, int txn_rows, const uint8_t key[CRYPTVFS_KEY_BYTES])
{
    cryptvfs *vfs = NULL;
    sqlite3 *db = NULL;
    cryptvfs_secret secret = { .key = key };
    remove_db(path);
    double rate = -1;
    int rc = cryptvfs_open(path, &secret, &vfs);
    if (rc == 0)
        rc = cryptvfs_connect(vfs, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db);
    if (rc == 0)
        rate = insert_rows(db, txn_rows);
    else
        fprintf(stderr, "bench_cryptvfs: open: %s\n", cryptvfs_strerror(rc));
    sqlite3_close(db);
    cryptvfs_close(vfs);
    remove_db(path);
    return rate;
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    char dir[PATH_MAX], plain[PATH_MAX], encrypted[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/outpost-bench-cryptvfs-XXXXXX",
                 base && *base ? base : "/tmp") >= (int)sizeof dir || !mkdtemp(dir))
        return 1;
    if (snprintf(plain, sizeof plain, "%s/plain.db", dir) >= (int)sizeof plain ||
        snprintf(encrypted, sizeof encrypted, "%s/encrypted.db", dir) >= (int)sizeof encrypted)
        return 1;
    uint8_t key[CRYPTVFS_KEY_BYTES];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 37 + 11);

    /* Plain and encrypted alternate so that neither gets a warmer machine; a failed run (-1)
     * fails the benchmark. */
    double plain_txn[BENCH_RUNS], enc_txn[BENCH_RUNS], plain_bulk[BENCH_RUNS], enc_bulk[BENCH_RUNS];
    for (int round = -BENCH_WARMUP; round < BENCH_RUNS; round++) {
        double r[4] = {run_plain(plain, TXN_ROWS), run_encrypted(encrypted, TXN_ROWS, key),
                       run_plain(plain, ROWS), run_encrypted(encrypted, ROWS, key)};
        for (int k = 0; k < 4; k++)
            if (r[k] <= 0)
                return 1;
        if (round >= 0)
            plain_txn[round] = r[0], enc_txn[round] = r[1], plain_bulk[round] = r[2],
            enc_bulk[round] = r[3];
    }
    bench_stat pt = bench_stat_of(plain_txn, BENCH_RUNS), et = bench_stat_of(enc_txn, BENCH_RUNS);
    bench_stat pb = bench_stat_of(plain_bulk, BENCH_RUNS), eb = bench_stat_of(enc_bulk, BENCH_RUNS);

    const char pass[] = "correct horse battery staple";
    uint8_t salt[CRYPTVFS_SALT_BYTES] = { 0 };
    uint8_t derived[CRYPTVFS_KEY_BYTES];
    double start = bench_now_s();
    int kdf_rc = cryptvfs_derive_key(pass, strlen(pass), salt, derived);
    double kdf_ms = (bench_now_s() - start) * 1000.0;
    rmdir(dir);
    if (kdf_rc != 0)
        return 1;

    printf("cryptvfs_rows=%d\n", ROWS);
    printf("cryptvfs_row_columns=10\n");
    printf("cryptvfs_txn_rows=%d\n", TXN_ROWS);
    printf("cryptvfs_synchronous=FULL\n");
    bench_print_method("cryptvfs");
    bench_print_stat("cryptvfs_plain_txn_rows_per_s", pt, 0);
    bench_print_stat("cryptvfs_encrypted_txn_rows_per_s", et, 0);
    printf("cryptvfs_txn_ratio=%.2f\n", et.median / pt.median);
    bench_print_stat("cryptvfs_plain_bulk_rows_per_s", pb, 0);
    bench_print_stat("cryptvfs_encrypted_bulk_rows_per_s", eb, 0);
    printf("cryptvfs_bulk_ratio=%.2f\n", eb.median / pb.median);
    printf("cryptvfs_ceiling_plain_one_txn_rows_per_s=%.0f\n", pb.median);
    printf("cryptvfs_target_ratio=%.2f\n", TARGET_RATIO);
    bench_print_target("cryptvfs_txn_ratio", et.median / pt.median >= TARGET_RATIO);
    bench_print_target("cryptvfs_bulk_ratio", eb.median / pb.median >= TARGET_RATIO);
    printf("cryptvfs_argon2id_t=%u\n", CRYPTVFS_ARGON2_T_COST);
    printf("cryptvfs_argon2id_m_kib=%u\n", CRYPTVFS_ARGON2_M_COST_KIB);
    printf("cryptvfs_argon2id_p=%u\n", CRYPTVFS_ARGON2_PARALLELISM);
    printf("cryptvfs_argon2id_ms=%.0f\n", kdf_ms);
    return 0;
}
