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
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "outpost.h"

#define ROWS 100000u
#define N_COLS 10

static const char *cols[N_COLS] = {"id", "team_id", "name", "age", "gender", "place",
                                   "met_at", "risk", "notes", "worker"};
static uint32_t pk[] = {0};

static const char create_sql[] =
    "CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT NOT NULL, name TEXT, age INTEGER,"
    " gender TEXT, place TEXT, met_at INTEGER, risk INTEGER, notes TEXT, worker TEXT)";
static const char insert_sql[] =
    "INSERT INTO contacts(id, team_id, name, age, gender, place, met_at, risk, notes, worker)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

#define DIE(...)                                                                                    \
    do {                                                                                           \
        fprintf(stderr, "bench_client: " __VA_ARGS__);                                             \
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

static void wipe(const char *path)
{
    outpost_files_wipe(path, NULL, 0);
}

static void sql_ok(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        DIE("%s: %s", sql, sqlite3_errmsg(db));
}

static void bind_row(sqlite3_stmt *stmt, const row *r)
{
    for (int c = 0; c < N_COLS; c++) {
        const proto_value *v = &r->v[c];

        if (v->type == PROTO_INT)
            sqlite3_bind_int64(stmt, c + 1, v->u.i);
        else
            sqlite3_bind_text(stmt, c + 1, (const char *)v->u.b.p, (int)v->u.b.n, SQLITE_STATIC);
    }
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
    sql_ok(db, create_sql);
    sql_ok(db, "CREATE TABLE outbox(seq INTEGER PRIMARY KEY, changeset BLOB NOT NULL)");
    if (sqlite3_prepare_v2(db, insert_sql, -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO outbox(changeset) VALUES(?1)", -1, &ins, NULL) != SQLITE_OK)
        DIE("prepare: %s", sqlite3_errmsg(db));
    if (with_session && session_start(db, &session) != SQLITE_OK)
        DIE("session");
    t0 = now_s();
    for (uint32_t i = 0; i < ROWS; i++) {
        if (i % batch == 0)
            sql_ok(db, "BEGIN");
        bind_row(stmt, &rows[i]);
        if (sqlite3_step(stmt) != SQLITE_DONE)
            DIE("insert: %s", sqlite3_errmsg(db));
        sqlite3_reset(stmt);
        if ((i + 1) % batch == 0 || i + 1 == ROWS) {
            if (with_session)
                session_capture(db, &session, ins);
            sql_ok(db, "COMMIT");
        }
    }
    t1 = now_s();
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
    proto_schema_table t = {.name = "contacts", .create_sql = create_sql, .scope_col = "team_id",
                            .n_columns = N_COLS, .columns = cols, .n_pk = 1, .pk = pk};
    proto_schema schema = {.version = 1, .n_tables = 1, .tables = &t};
    /* Plain beside plain: encryption's own cost is bench_replica_crypt's figure. */
    outpost_config cfg = {.path = path, .no_encryption = 1};
    outpost_replica *r = NULL;
    sqlite3_stmt *stmt = NULL;
    char err[256];
    double t0, t1;

    wipe(path);
    if (outpost_replica_open(&cfg, &r, err, sizeof err) != OUTPOST_OK)
        DIE("open: %s", err);
    if (outpost_schema_install(r, &schema) != OUTPOST_OK)
        DIE("schema: %s", outpost_errmsg(r));
    t0 = now_s();
    for (uint32_t i = 0; i < ROWS; i++) {
        if (i % batch == 0 && outpost_tx_begin(r) != OUTPOST_OK)
            DIE("begin: %s", outpost_errmsg(r));
        if (outpost_exec(r, insert_sql, rows[i].v, N_COLS) != OUTPOST_OK)
            DIE("exec: %s", outpost_errmsg(r));
        if (((i + 1) % batch == 0 || i + 1 == ROWS) && outpost_tx_commit(r, NULL) != OUTPOST_OK)
            DIE("commit: %s", outpost_errmsg(r));
    }
    t1 = now_s();
    if (sqlite3_prepare_v2(outpost_replica_db(r), "SELECT sum(length(changeset)) FROM _outpost_outbox",
                           -1, &stmt, NULL) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
        *out_outbox_bytes = (double)sqlite3_column_int64(stmt, 0) / ROWS;
    sqlite3_finalize(stmt);
    outpost_replica_close(r);
    wipe(path);
    return ROWS / (t1 - t0);
}

static double max2(double a, double b)
{
    return a > b ? a : b;
}

typedef struct figures {
    double plain, session, outpost;
} figures;

/* Best of RUNS, the three kinds interleaved so that all see the same machine (other work on a
 * shared two-core machine only ever slows a run down). */
#define RUNS 3
static figures measure(const char *path, const row *rows, uint32_t batch, double *out_bytes)
{
    figures best = {0, 0, 0};

    for (int i = 0; i < RUNS; i++) {
        best.plain = max2(best.plain, run_plain(path, rows, batch, false));
        best.session = max2(best.session, run_plain(path, rows, batch, true));
        best.outpost = max2(best.outpost, run_outpost(path, rows, batch, out_bytes));
    }
    return best;
}

static void report(const char *name, const figures *f)
{
    printf("client_plain_%s_rows_per_s=%.0f\n", name, f->plain);
    printf("client_session_floor_%s_rows_per_s=%.0f\n", name, f->session);
    printf("client_outpost_%s_rows_per_s=%.0f\n", name, f->outpost);
    printf("client_ratio_%s=%.2f\n", name, f->outpost / f->plain);
    printf("client_ratio_vs_session_floor_%s=%.2f\n", name, f->outpost / f->session);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    char dir[256], path[300];
    row *rows = rows_make();
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
    printf("client_runs_best_of=%d\n", RUNS);
    report("tx1000", &tx1000);
    report("one_tx", &one_tx);
    printf("client_outbox_bytes_per_row=%.0f\n", bytes);
    printf("client_target_ratio=0.60\n");
    return 0;
}
