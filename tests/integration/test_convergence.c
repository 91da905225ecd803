/*
 * Convergence, model-based (DESIGN.md invariants 4 and 5): 2 to 10 devices on random workers
 * (w1 in t1, w2 in t2, w12 in both) write through liboutpost against a real outpostd over real
 * TLS: random inserts, updates of the same and of different columns of shared rows, deletes,
 * multi-statement transactions, syncs, engine stops and starts, and connections cut by the fault
 * proxy. Then everyone syncs until nothing moves, and the test checks what a supervisor would:
 *   - every replica holds exactly the central rows of its worker's teams, value for value;
 *   - every value a device committed is either still the central value, or was knowingly
 *     replaced (the writing device had it in its replica when it overwrote or deleted it), or
 *     is in the central conflict log as a losing value. Nothing vanishes silently.
 *
 * Values are unique strings, so each one can be traced. Seeds: OUTPOST_SEED=N runs seed N
 * alone; OUTPOST_SEEDS=N runs seeds 1..N (default 200); OUTPOST_SEED_BASE shifts the range
 * (scripts/soak.sh). A failing seed prints itself. The network and thread timing are real, so a
 * replay runs the same operations but not necessarily the same interleaving.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <outpost.h>
#include <sqlite3.h>

#include "daemon_fixture.h"
#include "faultproxy.h"
#include "ovalue.h"

#define SEEDS_PER_SERVER 25u
#define MAX_DEVICES 10u
#define SYNC_WAIT_MS 60000u
#define MAX_QUIESCE_ROUNDS 12

enum { W1, W2, W12 };
static const char *const worker_names[] = {"w1", "w2", "w12"};

typedef struct device {
    char path[400];
    char name[32];
    outpost_replica *r;
    outpost_sync *sync;
    int worker;
    bool via_proxy;
    bool stay_connected;
    uint64_t cursor;
} device;

/* One value a device committed, and whether some device knowingly replaced it since. */
typedef struct written {
    char value[48];
    char row[OUTPOST_UUID_TEXT_SIZE];
    int col; /* 2 name, 3 note */
    bool replaced;
} written;

typedef struct run {
    daemon_fixture fx;
    bool fx_up;
    faultproxy *proxy;
    uint16_t proxy_port;
    char *ca_pem;
    uint64_t seed;
    uint64_t rng;
    device dev[MAX_DEVICES];
    uint32_t n_dev;
    written *vals;
    size_t n_vals, cap_vals;
    uint32_t n_ops;
    char failure[1024];
} run;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rnd(run *R)
{
    /* splitmix64: every seed gives its own well-mixed stream. */
    uint64_t z = (R->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t below(run *R, uint32_t n)
{
    return (uint32_t)(rnd(R) % n);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int fail(run *R, const char *fmt, ...)
{
    if (R->failure[0] != '\0')
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(R->failure, sizeof R->failure, fmt, ap);
    va_end(ap);
    return -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = malloc(65536);
    size_t n = buf ? fread(buf, 1, 65535, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

/* ---- the model ------------------------------------------------------------------------------ */

static int remember(run *R, const char *value, const char *row, int col)
{
    if (R->n_vals == R->cap_vals) {
        size_t cap = R->cap_vals ? R->cap_vals * 2 : 256;
        written *v = realloc(R->vals, cap * sizeof *v);
        if (v == NULL)
            return fail(R, "out of memory");
        R->vals = v;
        R->cap_vals = cap;
    }
    written *w = &R->vals[R->n_vals++];
    memset(w, 0, sizeof *w);
    snprintf(w->value, sizeof w->value, "%s", value);
    snprintf(w->row, sizeof w->row, "%s", row);
    w->col = col;
    return 0;
}

/* The device had value in its replica when it overwrote or deleted it. */
static void mark_replaced(run *R, const char *value)
{
    if (value == NULL)
        return;
    for (size_t i = 0; i < R->n_vals; i++)
        if (strcmp(R->vals[i].value, value) == 0)
            R->vals[i].replaced = true;
}

static void new_value(run *R, uint32_t d, char out[48])
{
    snprintf(out, 48, "s%" PRIu64 "-d%u-v%u", R->seed, d, R->n_ops++);
}

/* ---- devices -------------------------------------------------------------------------------- */

static int device_start(run *R, device *d)
{
    if (d->sync != NULL)
        return 0;
    outpost_sync_config cfg = {.debounce_ms = 20, .retry_base_ms = 50, .retry_cap_ms = 400,
                               .stay_connected = d->stay_connected ? 1 : 0};
    int rc = outpost_sync_start(d->r, &cfg, &d->sync);
    if (rc != OUTPOST_OK)
        return fail(R, "%s: sync start: %s", d->name, outpost_strerror(rc));
    return 0;
}

static void device_stop(device *d)
{
    outpost_sync_stop(d->sync);
    d->sync = NULL;
}

static int device_enroll(run *R, uint32_t i)
{
    device *d = &R->dev[i];
    memset(d, 0, sizeof *d);
    d->worker = (int)below(R, 3);
    d->via_proxy = below(R, 2) == 0;
    d->stay_connected = below(R, 3) != 0;
    char name[32];
    snprintf(name, sizeof name, "s%" PRIu64 "d%u", R->seed, i);
    memcpy(d->name, name, sizeof name);
    snprintf(d->path, sizeof d->path, "%s/%s.db", R->fx.dir, name);
    char err[256], code[32], url[64];
    outpost_config cfg = {.path = d->path, .no_encryption = 1};
    if (outpost_replica_open(&cfg, &d->r, err, sizeof err) != OUTPOST_OK)
        return fail(R, "%s: open: %s", d->name, err);
    if (fixture_enroll_code(&R->fx, worker_names[d->worker], code) != 0)
        return fail(R, "%s: no enrollment code", d->name);
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/sync",
             d->via_proxy ? R->proxy_port : R->fx.port);
    outpost_enroll_options eo = {.url = url, .code = code, .ca_pem = R->ca_pem};
    int rc = outpost_enroll(d->r, &eo);
    if (rc != OUTPOST_OK)
        return fail(R, "%s: enroll: %s", d->name, outpost_errmsg(d->r));
    return 0;
}

static void device_close(device *d)
{
    device_stop(d);
    outpost_replica_close(d->r);
    d->r = NULL;
}

static const char *team_for(run *R, const device *d)
{
    if (d->worker == W1)
        return "t1";
    if (d->worker == W2)
        return "t2";
    return below(R, 2) ? "t1" : "t2";
}

/* A random row of the device's replica: its id and current name and note (NULL when NULL).
 * Returns false when the replica holds no rows. */
static bool pick_row(run *R, device *d, char id[OUTPOST_UUID_TEXT_SIZE], char name[48],
                     char note[48], bool *has_name, bool *has_note)
{
    sqlite3 *db = outpost_replica_db(d->r);
    sqlite3_stmt *st = NULL;
    int64_t n = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM contacts", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (n <= 0)
        return false;
    /* Favour this seed's rows (the newest ids) so devices collide on shared rows. */
    uint32_t window = n > 12 ? 12u : (uint32_t)n;
    int64_t off = n - 1 - (int64_t)below(R, window);
    st = NULL;
    bool found = false;
    if (sqlite3_prepare_v2(db, "SELECT id, name, note FROM contacts ORDER BY id LIMIT 1 OFFSET ?1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, off);
        if (sqlite3_step(st) == SQLITE_ROW) {
            snprintf(id, OUTPOST_UUID_TEXT_SIZE, "%s", (const char *)sqlite3_column_text(st, 0));
            *has_name = sqlite3_column_type(st, 1) != SQLITE_NULL;
            *has_note = sqlite3_column_type(st, 2) != SQLITE_NULL;
            snprintf(name, 48, "%s", *has_name ? (const char *)sqlite3_column_text(st, 1) : "");
            snprintf(note, 48, "%s", *has_note ? (const char *)sqlite3_column_text(st, 2) : "");
            found = true;
        }
    }
    sqlite3_finalize(st);
    return found;
}

static int exec(run *R, device *d, const char *sql, const outpost_value *params, uint32_t n)
{
    int rc = outpost_exec(d->r, sql, params, n);
    if (rc != OUTPOST_OK)
        return fail(R, "%s: %s: %s", d->name, sql, outpost_errmsg(d->r));
    return 0;
}

static int op_insert(run *R, uint32_t i)
{
    device *d = &R->dev[i];
    char id[OUTPOST_UUID_TEXT_SIZE], name[48], note[48];
    if (outpost_uuid_make(id) != OUTPOST_OK)
        return fail(R, "uuid");
    new_value(R, i, name);
    new_value(R, i, note);
    const char *team = team_for(R, d);
    outpost_value p[4] = {ov_text(id), ov_text(team), ov_text(name), ov_text(note)};
    if (exec(R, d, "INSERT INTO contacts (id, team_id, name, note) VALUES (?1, ?2, ?3, ?4)", p,
             4) != 0)
        return -1;
    if (remember(R, name, id, 2) != 0 || remember(R, note, id, 3) != 0)
        return -1;
    return 0;
}

/* Updates name, note or both of a row this device holds. */
static int op_update(run *R, uint32_t i)
{
    device *d = &R->dev[i];
    char id[OUTPOST_UUID_TEXT_SIZE], name[48], note[48], v1[48], v2[48];
    bool has_name, has_note;
    if (!pick_row(R, d, id, name, note, &has_name, &has_note))
        return op_insert(R, i);
    uint32_t which = below(R, 3);
    new_value(R, i, v1);
    new_value(R, i, v2);
    if (which == 0) {
        outpost_value p[2] = {ov_text(id), ov_text(v1)};
        if (exec(R, d, "UPDATE contacts SET name = ?2 WHERE id = ?1", p, 2) != 0)
            return -1;
        mark_replaced(R, has_name ? name : NULL);
        return remember(R, v1, id, 2);
    }
    if (which == 1) {
        outpost_value p[2] = {ov_text(id), ov_text(v2)};
        if (exec(R, d, "UPDATE contacts SET note = ?2 WHERE id = ?1", p, 2) != 0)
            return -1;
        mark_replaced(R, has_note ? note : NULL);
        return remember(R, v2, id, 3);
    }
    outpost_value p[3] = {ov_text(id), ov_text(v1), ov_text(v2)};
    if (exec(R, d, "UPDATE contacts SET name = ?2, note = ?3 WHERE id = ?1", p, 3) != 0)
        return -1;
    mark_replaced(R, has_name ? name : NULL);
    mark_replaced(R, has_note ? note : NULL);
    if (remember(R, v1, id, 2) != 0)
        return -1;
    return remember(R, v2, id, 3);
}

static int op_delete(run *R, uint32_t i)
{
    device *d = &R->dev[i];
    char id[OUTPOST_UUID_TEXT_SIZE], name[48], note[48];
    bool has_name, has_note;
    if (!pick_row(R, d, id, name, note, &has_name, &has_note))
        return op_insert(R, i);
    outpost_value p[1] = {ov_text(id)};
    if (exec(R, d, "DELETE FROM contacts WHERE id = ?1", p, 1) != 0)
        return -1;
    mark_replaced(R, has_name ? name : NULL);
    mark_replaced(R, has_note ? note : NULL);
    return 0;
}

static int op_write(run *R, uint32_t i)
{
    uint32_t k = below(R, 10);
    if (k < 3)
        return op_insert(R, i);
    if (k < 8)
        return op_update(R, i);
    return op_delete(R, i);
}

/* One write in a transaction of its own. The transaction is opened before the row is read:
 * the engine's pull cannot change the row between the read and the write, so the values the
 * model marks as replaced are exactly the old values the change carries. */
static int op_single(run *R, uint32_t i)
{
    device *d = &R->dev[i];
    int rc = outpost_tx_begin(d->r);
    if (rc != OUTPOST_OK)
        return fail(R, "%s: begin: %s", d->name, outpost_errmsg(d->r));
    if (op_write(R, i) != 0)
        return -1;
    rc = outpost_tx_commit(d->r, NULL);
    if (rc != OUTPOST_OK)
        return fail(R, "%s: commit: %s", d->name, outpost_errmsg(d->r));
    return 0;
}

/* Two to four writes in one device transaction. */
static int op_transaction(run *R, uint32_t i)
{
    device *d = &R->dev[i];
    int rc = outpost_tx_begin(d->r);
    if (rc != OUTPOST_OK)
        return fail(R, "%s: begin: %s", d->name, outpost_errmsg(d->r));
    uint32_t n = 2 + below(R, 3);
    for (uint32_t k = 0; k < n; k++)
        if (op_write(R, i) != 0)
            return -1;
    rc = outpost_tx_commit(d->r, NULL);
    if (rc != OUTPOST_OK)
        return fail(R, "%s: commit: %s", d->name, outpost_errmsg(d->r));
    return 0;
}

/* ---- quiesce -------------------------------------------------------------------------------- */

/* One fresh sync per device (stop, start, wait for the first complete sync), in order. On
 * return *all_empty says whether every outbox is empty and *moved whether any cursor moved. */
static int sync_round(run *R, bool *all_empty, bool *moved)
{
    *all_empty = true;
    *moved = false;
    for (uint32_t i = 0; i < R->n_dev; i++) {
        device *d = &R->dev[i];
        device_stop(d);
        if (device_start(R, d) != 0)
            return -1;
        int rc = outpost_sync_wait(d->sync, 0, SYNC_WAIT_MS);
        if (rc != OUTPOST_OK) {
            outpost_sync_status st;
            outpost_sync_get_status(d->sync, &st);
            return fail(R, "%s: sync did not complete: %s (last error %s: %s)", d->name,
                        outpost_strerror(rc), outpost_strerror(st.last_error),
                        st.last_error_msg);
        }
        outpost_status s;
        if (outpost_status_get(d->r, &s) != OUTPOST_OK)
            return fail(R, "%s: status: %s", d->name, outpost_errmsg(d->r));
        if (s.pending != 0)
            *all_empty = false;
        if (s.cursor != d->cursor)
            *moved = true;
        d->cursor = s.cursor;
    }
    return 0;
}

static int quiesce(run *R)
{
    faultproxy_pass(R->proxy);
    bool empty = false, moved = true;
    int round = 0;
    /* Until a round ends with every outbox empty: from then on nobody pushes. */
    while (!empty) {
        if (++round > MAX_QUIESCE_ROUNDS)
            return fail(R, "outboxes still not empty after %d sync rounds", MAX_QUIESCE_ROUNDS);
        if (sync_round(R, &empty, &moved) != 0)
            return -1;
    }
    /* Every device pulls once more after the last push; then a full round must move nothing. */
    if (sync_round(R, &empty, &moved) != 0)
        return -1;
    if (!empty)
        return fail(R, "an outbox filled again with no new writes");
    if (sync_round(R, &empty, &moved) != 0)
        return -1;
    if (!empty || moved)
        return fail(R, "not quiescent: a sync round with no writes still %s",
                    !empty ? "pushed" : "pulled new changes");
    return 0;
}

/* ---- checks --------------------------------------------------------------------------------- */

static bool same_text(sqlite3_stmt *a, sqlite3_stmt *b, int col)
{
    int ta = sqlite3_column_type(a, col), tb = sqlite3_column_type(b, col);
    if (ta == SQLITE_NULL || tb == SQLITE_NULL)
        return ta == tb;
    return strcmp((const char *)sqlite3_column_text(a, col),
                  (const char *)sqlite3_column_text(b, col)) == 0;
}

static const char *text_or_null(sqlite3_stmt *s, int col)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    return t ? (const char *)t : "NULL";
}

static void explain_row(run *R, sqlite3 *central, const char *row);

/* The replica equals the central rows of the worker's teams, row for row, column for column. */
static int check_replica(run *R, sqlite3 *central, device *d)
{
    static const char *const scoped[] = {
        "SELECT id, team_id, name, note FROM contacts WHERE team_id = 't1' ORDER BY id",
        "SELECT id, team_id, name, note FROM contacts WHERE team_id = 't2' ORDER BY id",
        "SELECT id, team_id, name, note FROM contacts WHERE team_id IN ('t1', 't2') ORDER BY id",
    };
    sqlite3_stmt *c = NULL, *l = NULL;
    int out = 0;
    if (sqlite3_prepare_v2(central, scoped[d->worker], -1, &c, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(outpost_replica_db(d->r),
                           "SELECT id, team_id, name, note FROM contacts ORDER BY id", -1, &l,
                           NULL) != SQLITE_OK) {
        out = fail(R, "%s: cannot read contacts", d->name);
        goto done;
    }
    for (uint64_t n = 0;; n++) {
        int rc_c = sqlite3_step(c), rc_l = sqlite3_step(l);
        if (rc_c == SQLITE_DONE && rc_l == SQLITE_DONE)
            break;
        if (rc_c != SQLITE_ROW || rc_l != SQLITE_ROW) {
            out = fail(R, "%s (%s): replica has %s rows than the central store in its scope "
                          "(first difference: %s %s)",
                       d->name, worker_names[d->worker], rc_l == SQLITE_ROW ? "more" : "fewer",
                       rc_l == SQLITE_ROW ? "replica row" : "central row",
                       rc_l == SQLITE_ROW ? text_or_null(l, 0) : text_or_null(c, 0));
            explain_row(R, central, rc_l == SQLITE_ROW ? text_or_null(l, 0) : text_or_null(c, 0));
            goto done;
        }
        for (int col = 0; col < 4; col++)
            if (!same_text(c, l, col)) {
                out = fail(R, "%s (%s): row %" PRIu64 " differs in column %d: central %s/%s/%s/%s,"
                              " replica %s/%s/%s/%s",
                           d->name, worker_names[d->worker], n, col, text_or_null(c, 0),
                           text_or_null(c, 1), text_or_null(c, 2), text_or_null(c, 3),
                           text_or_null(l, 0), text_or_null(l, 1), text_or_null(l, 2),
                           text_or_null(l, 3));
                explain_row(R, central, text_or_null(c, 0));
                explain_row(R, central, text_or_null(l, 0));
                goto done;
            }
    }
done:
    sqlite3_finalize(c);
    sqlite3_finalize(l);
    return out;
}

static int64_t count_text(sqlite3 *db, const char *sql, const char *a, const char *b)
{
    sqlite3_stmt *s = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, a, -1, SQLITE_STATIC);
        if (b)
            sqlite3_bind_text(s, 2, b, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW)
            n = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return n;
}

/* For a failure report: what the model and the central store know about one row. */
static void explain_row(run *R, sqlite3 *central, const char *row)
{
    fprintf(stderr, "convergence: seed %" PRIu64 ", row %s, values in commit order:\n", R->seed,
            row);
    for (size_t i = 0; i < R->n_vals; i++)
        if (strcmp(R->vals[i].row, row) == 0)
            fprintf(stderr, "  %-20s %s%s\n", R->vals[i].value,
                    R->vals[i].col == 2 ? "name" : "note",
                    R->vals[i].replaced ? " (knowingly replaced)" : "");
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(central, "SELECT team_id, name, note FROM contacts WHERE id = ?1", -1,
                           &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, row, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW)
            fprintf(stderr, "  central: %s / %s / %s\n", text_or_null(s, 0), text_or_null(s, 1),
                    text_or_null(s, 2));
        else
            fprintf(stderr, "  central: deleted\n");
    }
    sqlite3_finalize(s);
    s = NULL;
    if (sqlite3_prepare_v2(central,
                           "SELECT col, kind, quote(losing_value), quote(winning_value),"
                           " loser_device, winner_device, push_device, push_seq, against_push"
                           " FROM _outpost_conflicts WHERE instr(pk, CAST(?1 AS BLOB)) > 0"
                           " ORDER BY id",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, row, -1, SQLITE_STATIC);
        while (sqlite3_step(s) == SQLITE_ROW)
            fprintf(stderr, "  conflict: col %s kind %s losing %s winning %s loser %s winner %s"
                            " (push %s #%s, against pusher %s)\n",
                    text_or_null(s, 0), text_or_null(s, 1), text_or_null(s, 2),
                    text_or_null(s, 3), text_or_null(s, 4), text_or_null(s, 5),
                    text_or_null(s, 6), text_or_null(s, 7), text_or_null(s, 8));
    }
    sqlite3_finalize(s);
    s = NULL;
    if (sqlite3_prepare_v2(central,
                           "SELECT c.seq, c.op, c.altered, c.hlc, d.id, c.scope_old,"
                           " c.scope_new FROM _outpost_changes c LEFT JOIN _outpost_devices d"
                           " ON d.no = c.device WHERE instr(c.pk, CAST(?1 AS BLOB)) > 0"
                           " ORDER BY c.seq",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, row, -1, SQLITE_STATIC);
        while (sqlite3_step(s) == SQLITE_ROW)
            fprintf(stderr, "  change: seq %s op %s altered %s hlc %s device %s scope %s -> %s\n",
                    text_or_null(s, 0), text_or_null(s, 1), text_or_null(s, 2),
                    text_or_null(s, 3), text_or_null(s, 4), text_or_null(s, 5),
                    text_or_null(s, 6));
    }
    sqlite3_finalize(s);
    s = NULL;
    if (sqlite3_prepare_v2(central,
                           "SELECT seq, deleted, echo_device, echo_since FROM _outpost_rows"
                           " WHERE instr(pk, CAST(?1 AS BLOB)) > 0",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, row, -1, SQLITE_STATIC);
        while (sqlite3_step(s) == SQLITE_ROW)
            fprintf(stderr, "  row state: seq %s deleted %s echo_device %s echo_since %s\n",
                    text_or_null(s, 0), text_or_null(s, 1), text_or_null(s, 2),
                    text_or_null(s, 3));
    }
    sqlite3_finalize(s);
    for (uint32_t i = 0; i < R->n_dev; i++) {
        char id[40] = "";
        (void)outpost_device_id(R->dev[i].r, id);
        fprintf(stderr, "  device %s is %s (%s), cursor %llu\n", R->dev[i].name, id,
                worker_names[R->dev[i].worker], (unsigned long long)R->dev[i].cursor);
        s = NULL;
        if (sqlite3_prepare_v2(outpost_replica_db(R->dev[i].r),
                               "SELECT seq, kind, col_name, quote(mine), quote(winner), reason"
                               " FROM _outpost_conflicts WHERE instr(pk, ?1) > 0",
                               -1, &s, NULL) == SQLITE_OK) {
            sqlite3_bind_text(s, 1, row, -1, SQLITE_STATIC);
            while (sqlite3_step(s) == SQLITE_ROW)
                fprintf(stderr, "    its conflict: entry %s %s %s mine %s winner %s: %s\n",
                        text_or_null(s, 0), text_or_null(s, 1), text_or_null(s, 2),
                        text_or_null(s, 3), text_or_null(s, 4), text_or_null(s, 5));
        }
        sqlite3_finalize(s);
    }
}

/* Every committed value is the central value, was knowingly replaced, or lost a conflict and is
 * in the conflict log. */
static int check_nothing_lost(run *R, sqlite3 *central)
{
    for (size_t i = 0; i < R->n_vals; i++) {
        const written *w = &R->vals[i];
        if (w->replaced)
            continue;
        const char *live = w->col == 2
                               ? "SELECT count(*) FROM contacts WHERE id = ?1 AND name = ?2"
                               : "SELECT count(*) FROM contacts WHERE id = ?1 AND note = ?2";
        if (count_text(central, live, w->row, w->value) == 1)
            continue;
        int64_t logged = count_text(central,
                                    "SELECT count(*) FROM _outpost_conflicts"
                                    " WHERE losing_value = ?1 AND col = ?2",
                                    w->value, w->col == 2 ? "2" : "3");
        if (logged < 1) {
            explain_row(R, central, w->row);
            return fail(R, "value %s (row %s, column %s) was overwritten but is not in the "
                           "conflict log",
                        w->value, w->row, w->col == 2 ? "name" : "note");
        }
    }
    return 0;
}

static int check(run *R)
{
    sqlite3 *central = NULL;
    if (sqlite3_open_v2(R->fx.store_path, &central, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(central);
        return fail(R, "cannot open the central store");
    }
    sqlite3_busy_timeout(central, 10000);
    int out = 0;
    for (uint32_t i = 0; i < R->n_dev && out == 0; i++)
        out = check_replica(R, central, &R->dev[i]);
    if (out == 0)
        out = check_nothing_lost(R, central);
    sqlite3_close(central);
    return out;
}

/* ---- one seed ------------------------------------------------------------------------------- */

static int run_seed(run *R, uint64_t seed)
{
    R->seed = seed;
    R->rng = seed * 0x2545f4914f6cdd1dull + 1;
    R->n_vals = 0;
    R->n_ops = 0;
    /* Mostly small, now and then up to ten devices. */
    R->n_dev = seed % 16 == 0 ? 5 + below(R, MAX_DEVICES - 4) : 2 + below(R, 3);
    faultproxy_pass(R->proxy);
    for (uint32_t i = 0; i < R->n_dev; i++)
        if (device_enroll(R, i) != 0)
            return -1;
    for (uint32_t i = 0; i < R->n_dev; i++)
        if (below(R, 4) != 0 && device_start(R, &R->dev[i]) != 0)
            return -1;

    uint32_t steps = 12 + below(R, 14);
    for (uint32_t s = 0; s < steps; s++) {
        uint32_t i = below(R, R->n_dev);
        device *d = &R->dev[i];
        uint32_t k = below(R, 100);
        int rc = 0;
        if (k < 55)
            rc = op_single(R, i);
        else if (k < 65)
            rc = op_transaction(R, i);
        else if (k < 75) {
            if (d->sync)
                outpost_sync_now(d->sync);
            else
                rc = device_start(R, d);
        } else if (k < 82) {
            if (d->sync) {
                /* Wait for a sync now and then, so later writes build on pulled rows. */
                outpost_sync_status st;
                outpost_sync_get_status(d->sync, &st);
                outpost_sync_now(d->sync);
                (void)outpost_sync_wait(d->sync, st.syncs_completed, 3000);
            }
        } else if (k < 88) {
            device_stop(d);
        } else if (k < 92) {
            faultproxy_cut_all(R->proxy);
        } else if (k < 96) {
            /* Later connections through the proxy die somewhere in the handshake or the sync. */
            faultproxy_cut_after(R->proxy, 200 + below(R, 30000));
        } else {
            faultproxy_pass(R->proxy);
        }
        if (rc != 0)
            return -1;
        if (below(R, 3) == 0)
            sleep_ms((long)below(R, 40));
    }
    if (quiesce(R) != 0)
        return -1;
    return check(R);
}

static void close_devices(run *R)
{
    for (uint32_t i = 0; i < R->n_dev; i++)
        if (R->dev[i].r)
            device_close(&R->dev[i]);
    R->n_dev = 0;
}

static void server_down(run *R)
{
    close_devices(R);
    faultproxy_stop(R->proxy);
    R->proxy = NULL;
    if (R->fx_up)
        fixture_destroy(&R->fx);
    R->fx_up = false;
    free(R->ca_pem);
    R->ca_pem = NULL;
}

static int server_up(run *R)
{
    memset(&R->fx, 0, sizeof R->fx);
    if (fixture_create(&R->fx, NULL) != 0 || fixture_start(&R->fx) != 0) {
        fixture_destroy(&R->fx);
        return fail(R, "cannot start outpostd");
    }
    R->fx_up = true;
    R->ca_pem = slurp(R->fx.ca_path);
    if (R->ca_pem == NULL)
        return fail(R, "cannot read the CA");
    if (faultproxy_start(R->fx.port, &R->proxy, &R->proxy_port) != 0)
        return fail(R, "cannot start the fault proxy");
    return 0;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *s = getenv(name);
    if (s == NULL || *s == '\0')
        return dflt;
    return strtoull(s, NULL, 10);
}

int main(void)
{
    uint64_t first, last;
    if (getenv("OUTPOST_SEED") && *getenv("OUTPOST_SEED")) {
        first = last = env_u64("OUTPOST_SEED", 1);
    } else {
        first = env_u64("OUTPOST_SEED_BASE", 0) + 1;
        last = first + env_u64("OUTPOST_SEEDS", 200) - 1;
    }
    run *R = calloc(1, sizeof *R);
    if (R == NULL)
        return 1;
    double t0 = now_s();
    uint64_t done = 0, values = 0, devices = 0;
    int status = 0;
    for (uint64_t seed = first; seed <= last; seed++) {
        if (!R->fx_up || (seed - first) % SEEDS_PER_SERVER == 0) {
            server_down(R);
            if (server_up(R) != 0) {
                fprintf(stderr, "convergence: %s\n", R->failure);
                status = 1;
                break;
            }
        }
        int rc = run_seed(R, seed);
        values += R->n_vals;
        devices += R->n_dev;
        close_devices(R);
        if (rc != 0) {
            fprintf(stderr,
                    "convergence: seed %" PRIu64 " FAILED: %s\n"
                    "convergence: replay with OUTPOST_SEED=%" PRIu64 " %s\n",
                    seed, R->failure, seed, "tests/test_convergence (from the build directory)");
            status = 1;
            break;
        }
        done++;
    }
    server_down(R);
    free(R->vals);
    free(R);
    printf("convergence: %" PRIu64 " seeds passed (%" PRIu64 " devices, %" PRIu64
           " values traced) in %.1f s\n",
           done, devices, values, now_s() - t0);
    return status;
}
