/* 100,000 ten-column contact inserts through liboutpost's write API (capture and outbox
 * included), in transactions of 1,000 rows and in one transaction, each beside plain SQLite
 * inserting the same rows the same way in the same run, with the same journal settings (WAL,
 * synchronous=FULL). Prints name=value lines; the ratio is library rows/s over plain rows/s.
 *
 * A third figure, the session floor, is plain SQLite with the session extension capturing each
 * transaction into an outbox table and nothing else: what any session-based capture costs.
 * Library over floor is the library's own overhead. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench_rows.h"
#include "bench_time.h"
#include "outpost.h"
#include "outpost_engine.h"

#define ROWS 100000u
#define N_COLS BENCH_CONTACT_COLS

typedef bench_contact_row row;

#define DIE(...)                                                                                    \
    do {                                                                                           \
        fprintf(stderr, "bench_client: " __VA_ARGS__);                                             \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

static void wipe(const char *path)
{
    outpost_files_wipe(path, NULL, 0);
}

static void sql_ok(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        DIE("%s: %s", sql, sqlite3_errmsg(db));
}

/* A session configured as the library configures its own (no size accounting). */
static int session_start(sqlite3 *db, sqlite3_session **out_session)
{
    int size_off = 0;
    int rc = sqlite3session_create(db, "main", out_session);

    if (rc == SQLITE_OK)
        rc = sqlite3session_object_config(*out_session, SQLITE_SESSION_OBJCONFIG_SIZE, &size_off);
    if (rc == SQLITE_OK)
        rc = sqlite3session_attach(*out_session, "contacts");
    return rc;
}

/* Writes the session's changeset into an outbox table in the open transaction, then starts a
 * new session: the least any session-based capture must do. */
static void session_capture(sqlite3 *db, sqlite3_session **session, sqlite3_stmt *ins)
{
    void *changeset = NULL;
    int n = 0;

    if (sqlite3session_changeset(*session, &n, &changeset) != SQLITE_OK)
        DIE("changeset");
    sqlite3_bind_blob(ins, 1, changeset, n, SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE)
        DIE("outbox: %s", sqlite3_errmsg(db));
    sqlite3_reset(ins);
    sqlite3_free(changeset);
    sqlite3session_delete(*session);
    if (session_start(db, session) != SQLITE_OK)
        DIE("session");
}

/* Plain SQLite: one prepared statement, bound and stepped per row. With with_session, SQLite's
 * session extension captures each transaction into an outbox table (the capture floor). */
static double run_plain(const char *path, const row *rows, uint32_t batch, bool with_session)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL, *ins = NULL;
    sqlite3_session *session = NULL;
    double t0, t1;

    wipe(path);
    if (sqlite3_open(path, &db) != SQLITE_OK)
        DIE("open %s", path);
    sql_ok(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL");
    sql_ok(db, bench_contact_create_sql);
    sql_ok(db, "CREATE TABLE outbox(seq INTEGER PRIMARY KEY, changeset BLOB NOT NULL)");
    if (sqlite3_prepare_v2(db, bench_contact_insert_sql, -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO outbox(changeset) VALUES(?1)", -1, &ins, NULL) != SQLITE_OK)
        DIE("prepare: %s", sqlite3_errmsg(db));
    if (with_session && session_start(db, &session) != SQLITE_OK)
        DIE("session");
    t0 = bench_now_s();
    for (uint32_t i = 0; i < ROWS; i++) {
        if (i % batch == 0)
            sql_ok(db, "BEGIN");
        bench_bind_values(stmt, rows[i].v, N_COLS);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            DIE("insert: %s", sqlite3_errmsg(db));
        sqlite3_reset(stmt);
        if ((i + 1) % batch == 0 || i + 1 == ROWS) {
            if (with_session)
                session_capture(db, &session, ins);
            sql_ok(db, "COMMIT");
        }
    }
    t1 = bench_now_s();
    if (session)
        sqlite3session_delete(session);
    sqlite3_finalize(stmt);
    sqlite3_finalize(ins);
    sqlite3_close(db);
    wipe(path);
    return ROWS / (t1 - t0);
}

/* liboutpost: outpost_exec() per row, outpost_tx_commit() per batch (capture + outbox). */
static double run_outpost(const char *path, const row *rows, uint32_t batch, double *out_outbox_bytes)
{
    proto_schema_table t;
    proto_schema schema;
    /* Plain beside plain: encryption's own cost is bench_replica_crypt's figure. */
    outpost_config cfg = {.path = path, .no_encryption = 1};
    outpost_replica *r = NULL;
    sqlite3_stmt *stmt = NULL;
    char err[256];
    double t0, t1;

    bench_contact_schema(&t, &schema);
    wipe(path);
    if (outpost_replica_open(&cfg, &r, err, sizeof err) != OUTPOST_OK)
        DIE("open: %s", err);
    if (outpost_schema_install(r, &schema) != OUTPOST_OK)
        DIE("schema: %s", outpost_errmsg(r));
    t0 = bench_now_s();
    for (uint32_t i = 0; i < ROWS; i++) {
        if (i % batch == 0 && outpost_tx_begin(r) != OUTPOST_OK)
            DIE("begin: %s", outpost_errmsg(r));
        if (outpost_exec(r, bench_contact_insert_sql, rows[i].ov, N_COLS) != OUTPOST_OK)
            DIE("exec: %s", outpost_errmsg(r));
        if (((i + 1) % batch == 0 || i + 1 == ROWS) && outpost_tx_commit(r, NULL) != OUTPOST_OK)
            DIE("commit: %s", outpost_errmsg(r));
    }
    t1 = bench_now_s();
    if (sqlite3_prepare_v2(outpost_replica_db(r), "SELECT sum(length(changeset)) FROM _outpost_changesets",
                           -1, &stmt, NULL) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
        *out_outbox_bytes = (double)sqlite3_column_int64(stmt, 0) / ROWS;
    sqlite3_finalize(stmt);
    outpost_replica_close(r);
    wipe(path);
    return ROWS / (t1 - t0);
}

typedef struct figures {
    bench_stat plain, session, outpost;
} figures;

/* The three kinds interleaved so that all see the same machine (other work on a shared two-core
 * machine only ever slows a run down); BENCH_WARMUP rounds first, then BENCH_RUNS measured. */
static figures measure(const char *path, const row *rows, uint32_t batch, double *out_bytes)
{
    double plain[BENCH_RUNS], session[BENCH_RUNS], outpost[BENCH_RUNS];
    figures f;

    for (int i = -BENCH_WARMUP; i < BENCH_RUNS; i++) {
        double p = run_plain(path, rows, batch, false);
        double s = run_plain(path, rows, batch, true);
        double o = run_outpost(path, rows, batch, out_bytes);
        if (i >= 0)
            plain[i] = p, session[i] = s, outpost[i] = o;
    }
    f.plain = bench_stat_of(plain, BENCH_RUNS);
    f.session = bench_stat_of(session, BENCH_RUNS);
    f.outpost = bench_stat_of(outpost, BENCH_RUNS);
    return f;
}

#define TARGET_RATIO 0.60

static void report(const char *name, const figures *f)
{
    char key[96];

    snprintf(key, sizeof key, "client_plain_%s_rows_per_s", name);
    bench_print_stat(key, f->plain, 0);
    snprintf(key, sizeof key, "client_session_floor_%s_rows_per_s", name);
    bench_print_stat(key, f->session, 0);
    snprintf(key, sizeof key, "client_outpost_%s_rows_per_s", name);
    bench_print_stat(key, f->outpost, 0);
    printf("client_ratio_%s=%.2f\n", name, f->outpost.median / f->plain.median);
    printf("client_ratio_vs_session_floor_%s=%.2f\n", name,
           f->outpost.median / f->session.median);
    snprintf(key, sizeof key, "client_ratio_%s", name);
    bench_print_target(key, f->outpost.median / f->plain.median >= TARGET_RATIO);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    char dir[256], path[300];
    row *rows = bench_contact_rows_make("bench_client", ROWS);
    double bytes = 0;
    figures tx1000, one_tx;

    snprintf(dir, sizeof dir, "%s/outpost-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        DIE("mkdtemp %s", dir);
    snprintf(path, sizeof path, "%s/bench.db", dir);
    tx1000 = measure(path, rows, 1000, &bytes);
    one_tx = measure(path, rows, ROWS, &bytes);
    rmdir(dir);
    free(rows);

    printf("client_rows=%u\n", ROWS);
    printf("client_columns=%d\n", N_COLS);
    bench_print_method("client");
    report("tx1000", &tx1000);
    report("one_tx", &one_tx);
    printf("client_outbox_bytes_per_row=%.0f\n", bytes);
    printf("client_target_ratio=%.2f\n", TARGET_RATIO);
    return 0;
}
