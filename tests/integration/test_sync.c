/*
 * End to end through liboutpost: real outpostd over real TLS on 127.0.0.1, devices enrolled with
 * one-time codes, the sync engine on its own thread. What an outreach worker would notice is
 * what is asserted: records written offline arrive by themselves, reach the team's other device
 * and nobody else, survive server restarts and cut connections without loss or duplicates, and
 * a revoked device is wiped.
 * Built a second time with OUTPOST_SYNC_ON_POSTGRESQL as test_sync_postgresql: outpostd serving
 * from a private PostgreSQL cluster (unit/pg_cluster.h), the cases that do not edit or copy the
 * store's SQLite file (counts in the central store read a decoded copy: central_db_open);
 * with OUTPOST_SYNC_FAILOVER as test_failover_postgresql, devices through a failover.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <outpost.h>
#include <sqlite3.h>

#include "central_db.h"
#include "daemon_fixture.h"
#include "test_util.h"
#include "faultproxy.h"
#include "outpost_engine.h"
#include "ovalue.h"
#ifdef OUTPOST_SYNC_ON_POSTGRESQL
#include "pg_cluster.h"
static pg_cluster cluster;
#endif
#ifdef OUTPOST_SYNC_FAILOVER
#include "dash_client.h"
static pg_cluster standby; /* cluster's synchronous standby, promoted mid-test */
static daemon_fixture node2; /* a second outpostd on the same database */
#endif
#include "strf.h"

#define WAIT_MS 20000u

typedef struct device {
    char path[400];
    outpost_replica *r;
    outpost_sync *sync;
    int wiped;
} device;

static daemon_fixture fx;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Restarts must come back on the same port: devices keep the URL they enrolled with. */
static void pin_port(void)
{
    char *text = slurp(fx.config_path);
    char port_line[32];
    snprintf(port_line, sizeof port_line, "port = %u", fx.port);
    char *at = strstr(text, "port = 0");
    if (!at)
        return;
    char out[16384];
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - text), text, port_line, at + 8);
    FILE *f = fopen(fx.config_path, "w");
    assert_non_null(f);
    fputs(out, f);
    fclose(f);
}

static void url_for(uint16_t port, char *out, size_t out_size)
{
    snprintf(out, out_size, "wss://127.0.0.1:%u/sync", port);
}

static void on_wiped(void *user_data, const char *reason)
{
    (void)reason;
    ((device *)user_data)->wiped = 1;
}

/* Every device's replica is encrypted at rest, so the sync engine's own connection (opened
 * beside the app's) runs through the same encrypting VFS instance. */
static const uint8_t device_key[OUTPOST_KEY_BYTES] = {
    0x64, 0x65, 0x76, 0x69, 0x63, 0x65, 0x2d, 0x6b, 0x65, 0x79, 0x2d, 0x66, 0x6f, 0x72, 0x2d, 0x73,
    0x79, 0x6e, 0x63, 0x2d, 0x74, 0x65, 0x73, 0x74, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7};

static void device_open(device *d, const char *name)
{
    char err[256];
    snprintf(d->path, sizeof d->path, "%s/%s.db", fx.dir, name);
    outpost_config cfg = {.path = d->path, .secret.key = device_key};
    assert_int_equal(outpost_replica_open(&cfg, &d->r, err, sizeof err), OUTPOST_OK);
}

static void device_enroll(device *d, const char *name, const char *worker, uint16_t port)
{
    char code[32], url[64];
    device_open(d, name);
    assert_int_equal(fixture_enroll_code(&fx, worker, code), 0);
    url_for(port, url, sizeof url);
    outpost_enroll_options eo = {.url = url, .code = code, .ca_pem = slurp(fx.ca_path)};
    int rc = outpost_enroll(d->r, &eo);
    if (rc != OUTPOST_OK)
        fail_msg("enroll: %s", outpost_errmsg(d->r));
}

static void device_start(device *d, uint32_t retry_base_ms)
{
    outpost_sync_config cfg = {.stay_connected = 1, .debounce_ms = 50,
                               .retry_base_ms = retry_base_ms, .retry_cap_ms = 2000,
                               .on_wiped = on_wiped, .user_data = d};
    assert_int_equal(outpost_sync_start(d->r, &cfg, &d->sync), OUTPOST_OK);
}

static void device_close(device *d)
{
    outpost_sync_stop(d->sync);
    d->sync = NULL;
    outpost_replica_close(d->r);
    d->r = NULL;
}

static void write_contact(device *d, const char *team, const char *name)
{
    char id[OUTPOST_UUID_TEXT_SIZE];
    assert_int_equal(outpost_uuid_make(id), OUTPOST_OK);
    outpost_value params[3] = {ov_text(id), ov_text(team), ov_text(name)};
    int rc = outpost_exec(d->r, "INSERT INTO contacts (id, team_id, name) VALUES (?1, ?2, ?3)",
                          params, 3);
    if (rc != OUTPOST_OK)
        fail_msg("write: %s", outpost_errmsg(d->r));
}

static int64_t count_rows(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static int64_t device_count(device *d, const char *sql)
{
    return count_rows(outpost_replica_db(d->r), sql);
}

static void central_exec(const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(fx.store_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* A count in the central store, whichever its engine (on PostgreSQL a decoded copy, so the
 * same SQL counts the same). */
static int64_t central_count(const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(central_db_open(&fx, &db), 0);
    int64_t n = count_rows(db, sql);
    sqlite3_close(db);
    return n;
}

/* Polls until the device's count reaches want; returns the last count seen. */
static int64_t wait_device_count(device *d, const char *sql, int64_t want)
{
    int64_t n = -1;
    for (uint32_t waited = 0; waited < WAIT_MS; waited += 50) {
        n = device_count(d, sql);
        if (n == want)
            break;
        test_sleep_ms(50);
    }
    return n;
}

static uint64_t pending(device *d)
{
    outpost_status st;
    assert_int_equal(outpost_status_get(d->r, &st), OUTPOST_OK);
    return st.pending;
}

/* Polls until the device's outbox holds want entries (its engine records ACKs on its own
 * thread: entries committed together are acknowledged together, and another device may have
 * pulled them before the last ACK is recorded); returns the last count seen. */
static uint64_t wait_pending(device *d, uint64_t want)
{
    uint64_t n = pending(d);
    for (uint32_t waited = 0; n != want && waited < WAIT_MS; waited += 20) {
        test_sleep_ms(20);
        n = pending(d);
    }
    return n;
}

static int setup(void **state)
{
    (void)state;
#if defined(OUTPOST_SYNC_FAILOVER)
    /* What docs/operations.md "Topology and failover" tells operators to write: both servers,
     * the one that accepts writes chosen at each connect (the clusters' sockets are in their
     * directories, on pg_cluster's fixed port number). */
    char both[1024];
    if (pg_cluster_start(&cluster) != 0 || pg_cluster_start_sync_standby(&cluster, &standby) != 0)
        return -1;
    if (snprintf(both, sizeof both,
                 "host=%s,%s port=5432,5432 dbname=outpost user=outpost"
                 " target_session_attrs=read-write connect_timeout=2",
                 cluster.dir, standby.dir) >= (int)sizeof fx.conninfo ||
        fixture_create_postgresql(&fx, NULL, both) != 0 || fixture_start(&fx) != 0)
        return -1;
#elif defined(OUTPOST_SYNC_ON_POSTGRESQL)
    if (pg_cluster_start(&cluster) != 0 ||
        fixture_create_postgresql(&fx, NULL, cluster.conninfo) != 0 || fixture_start(&fx) != 0)
        return -1;
#else
    if (fixture_create(&fx, NULL) != 0 || fixture_start(&fx) != 0)
        return -1;
#endif
#ifndef OUTPOST_SYNC_FAILOVER /* there node 2 shares the config, on a port of its own */
    pin_port();
#endif
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fixture_destroy(&fx);
#ifdef OUTPOST_SYNC_ON_POSTGRESQL
    pg_cluster_stop(&cluster);
#endif
#ifdef OUTPOST_SYNC_FAILOVER
    fixture_kill(&node2);
    pg_cluster_stop(&standby);
#endif
    return 0;
}

/* ---- Cases ------------------------------------------------------------------------------ */

static void test_offline_writes_arrive_by_themselves_and_only_in_scope(void **state)
{
    (void)state;
    device a, b, c;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b), memset(&c, 0, sizeof c);
    device_enroll(&a, "a1", "w1", fx.port);
    device_enroll(&b, "b1", "w1", fx.port);
    device_enroll(&c, "c1", "w2", fx.port);

    /* The office is out of reach: the worker records three contacts. */
    assert_int_equal(fixture_stop_clean(&fx), 0);
    for (int i = 0; i < 3; i++)
        write_contact(&a, "t1", "offline contact");
    assert_int_equal(pending(&a), 3);
    device_start(&a, 100);
    device_start(&b, 100);
    device_start(&c, 100);
    test_sleep_ms(300);

    /* Back in reach: nobody presses anything. */
    assert_int_equal(fixture_start(&fx), 0);
    outpost_sync_network_changed(a.sync);
    assert_int_equal(
        wait_device_count(&b, "SELECT count(*) FROM contacts WHERE name = 'offline contact'", 3),
        3);
    assert_int_equal(wait_pending(&a, 0), 0);
    assert_int_equal(central_count("SELECT count(*) FROM contacts WHERE name = 'offline contact'"),
                     3);
    /* Team two's device synced too, and holds none of team one's records. */
    outpost_sync_status st;
    assert_int_equal(outpost_sync_wait(c.sync, 0, WAIT_MS), OUTPOST_OK);
    outpost_sync_get_status(c.sync, &st);
    assert_int_equal(device_count(&c, "SELECT count(*) FROM contacts"), 0);

    /* A write while connected reaches the other device within the debounce and a NOTIFY. */
    write_contact(&a, "t1", "online contact");
    assert_int_equal(
        wait_device_count(&b, "SELECT count(*) FROM contacts WHERE name = 'online contact'", 1),
        1);
    device_close(&a);
    device_close(&b);
    device_close(&c);
}

static void write_contact_note(device *d, const char *team, const char *name, const char *note)
{
    char id[OUTPOST_UUID_TEXT_SIZE];
    assert_int_equal(outpost_uuid_make(id), OUTPOST_OK);
    outpost_value params[4] = {ov_text(id), ov_text(team), ov_text(name), ov_text(note)};
    int rc = outpost_exec(d->r, "INSERT INTO contacts (id, team_id, name, note)"
                                " VALUES (?1, ?2, ?3, ?4)", params, 4);
    if (rc != OUTPOST_OK)
        fail_msg("write: %s", outpost_errmsg(d->r));
}

/* Two devices push the same day's contacts, one offering compression and one not: both arrive
 * in full, the compressed session says so in its status and costs well under two thirds of the
 * bytes. */
static void test_compressed_sync_delivers_everything_in_fewer_bytes(void **state)
{
    (void)state;
    enum { CONTACTS = 40 };
    device z, p;
    memset(&z, 0, sizeof z), memset(&p, 0, sizeof p);
    device_enroll(&z, "z1", "w2", fx.port);
    device_enroll(&p, "p1", "w2", fx.port);
    for (int i = 0; i < CONTACTS; i++) {
        char name[32];
        snprintf(name, sizeof name, "zip contact %d", i);
        write_contact_note(&z, "t2", name, "met at the central station, east exit; referred");
        write_contact_note(&p, "t2", name, "met at the central station, east exit; referred");
    }
    outpost_sync_config zc = {.debounce_ms = 50, .retry_base_ms = 100, .retry_cap_ms = 2000};
    outpost_sync_config pc = zc;
    pc.no_compression = 1;
    assert_int_equal(outpost_sync_start(z.r, &zc, &z.sync), OUTPOST_OK);
    assert_int_equal(outpost_sync_wait(z.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_int_equal(outpost_sync_start(p.r, &pc, &p.sync), OUTPOST_OK);
    assert_int_equal(outpost_sync_wait(p.sync, 0, WAIT_MS), OUTPOST_OK);
    outpost_sync_status zs, ps;
    outpost_sync_get_status(z.sync, &zs);
    outpost_sync_get_status(p.sync, &ps);
    assert_int_equal(pending(&z), 0);
    assert_int_equal(pending(&p), 0);
    assert_int_equal(central_count("SELECT count(*) FROM contacts WHERE name LIKE 'zip contact %'"),
                     2 * CONTACTS);
    /* p pulled z's contacts too, uncompressed; z pushed its own, compressed. */
    assert_int_equal(device_count(&p, "SELECT count(*) FROM contacts WHERE name LIKE 'zip %'"),
                     2 * CONTACTS);
    assert_int_equal(zs.compressed, 1);
    assert_int_equal(ps.compressed, 0);
    if (zs.bytes_sent * 3 > ps.bytes_sent * 2)
        fail_msg("compressed push sent %" PRIu64 " bytes, plain %" PRIu64, zs.bytes_sent,
                 ps.bytes_sent);
    device_close(&z);
    device_close(&p);
}

/* Round trips as the status counts them, predicted from the protocol: the device sends its
 * first flight behind HELLO (docs/protocol.md 8.2), so a sync with nothing to push waits once
 * (HELLO and PULL together: 1), and a later sync of one write on a new connection once more
 * (HELLO, PUSH and PULL together). A device that waits for WELCOME makes these 2 and 5. */
static void test_round_trips_of_a_sync_are_counted(void **state)
{
    (void)state;
    device d;
    memset(&d, 0, sizeof d);
    device_enroll(&d, "rt1", "w12", fx.port);
    outpost_sync_config cfg = {.debounce_ms = 50, .retry_base_ms = 100, .retry_cap_ms = 2000};
    assert_int_equal(outpost_sync_start(d.r, &cfg, &d.sync), OUTPOST_OK);
    assert_int_equal(outpost_sync_wait(d.sync, 0, WAIT_MS), OUTPOST_OK);
    outpost_sync_status st;
    outpost_sync_get_status(d.sync, &st);
    assert_int_equal(st.round_trips, 1);
    write_contact(&d, "t1", "round trip contact");
    assert_int_equal(outpost_sync_wait(d.sync, st.syncs_completed, WAIT_MS), OUTPOST_OK);
    outpost_sync_get_status(d.sync, &st);
    assert_int_equal(st.round_trips, 2);
    assert_int_equal(pending(&d), 0);
    assert_int_equal(central_count("SELECT count(*) FROM contacts WHERE name = "
                                   "'round trip contact'"),
                     1);
    device_close(&d);
}

/* The device knows its worker's teams (ENROLLED, WELCOME) and refuses at commit a write the
 * server would refuse, naming the column and the value. */
static void test_out_of_scope_write_is_refused_at_commit(void **state)
{
    (void)state;
    device a;
    char id[OUTPOST_UUID_TEXT_SIZE];
    memset(&a, 0, sizeof a);
    device_enroll(&a, "a2", "w1", fx.port);
    assert_int_equal(outpost_uuid_make(id), OUTPOST_OK);
    outpost_value params[3] = {
        ov_text(id), ov_text("t2"), ov_text("not my team"),
    };
    assert_int_equal(outpost_exec(a.r, "INSERT INTO contacts (id, team_id, name)"
                                       " VALUES (?1, ?2, ?3)", params, 3),
                     OUTPOST_ESCOPE);
    assert_non_null(strstr(outpost_errmsg(a.r), "team_id = 't2'"));
    assert_non_null(strstr(outpost_errmsg(a.r), "t1"));
    assert_string_not_equal(outpost_strerror(OUTPOST_ESCOPE), "unknown error");
    assert_false(outpost_error_is_transient(OUTPOST_ESCOPE));
    /* A TEXT key stays TEXT. */
    params[0] = ov_blob("\x01\x02", 2);
    params[1] = ov_text("t1");
    assert_int_equal(outpost_exec(a.r, "INSERT INTO contacts (id, team_id, name)"
                                       " VALUES (?1, ?2, ?3)", params, 3),
                     OUTPOST_ESCOPE);
    assert_non_null(strstr(outpost_errmsg(a.r), "contacts.id: the primary key is declared TEXT"));
    assert_non_null(strstr(outpost_errmsg(a.r), "a blob"));
    assert_int_equal(pending(&a), 0);
    assert_int_equal(device_count(&a, "SELECT count(*) FROM contacts"), 0);
    device_close(&a);
}

/* ---- Quarantine: what the server refuses stays on the device ----------------------------- */

static void write_contact_full(device *d, const char *id, const char *team, const char *name,
                               const char *note)
{
    outpost_value params[4] = {ov_text(id), ov_text(team), ov_text(name), ov_text(note)};
    int rc = outpost_exec(d->r, "INSERT INTO contacts (id, team_id, name, note)"
                                " VALUES (?1, ?2, ?3, ?4)", params, 4);
    if (rc != OUTPOST_OK)
        fail_msg("write: %s", outpost_errmsg(d->r));
}

/* The value of column col in a quarantined change, as text ("" when absent). */
static const char *rejected_text(const outpost_rejected *q, const char *col)
{
    static char buf[256];
    for (uint32_t i = 0; i < q->n_values; i++) {
        if (strcmp(q->columns[i], col) == 0 && q->values[i].type == OUTPOST_VALUE_TEXT) {
            snprintf(buf, sizeof buf, "%.*s", (int)q->values[i].u.b.n,
                     (const char *)q->values[i].u.b.p);
            return buf;
        }
    }
    return "";
}

static int rejected_seen;
static char claimed_id[OUTPOST_UUID_TEXT_SIZE]; /* a key team two holds centrally */

static void on_rejected(void *user_data, const outpost_rejected *q)
{
    (void)user_data;
    if (q && strcmp(q->table, "contacts") == 0)
        rejected_seen++;
}

/* The only quarantined change on d (the test fails when there is not exactly one). */
static outpost_rejected *only_rejected(device *d)
{
    int64_t ids[4];
    size_t n = 0;
    outpost_status st;
    assert_int_equal(outpost_rejected_list(d->r, ids, 4, &n), OUTPOST_OK);
    assert_int_equal(n, 1);
    assert_int_equal(outpost_status_get(d->r, &st), OUTPOST_OK);
    assert_int_equal(st.rejected, 1);
    outpost_rejected *q = NULL;
    assert_int_equal(outpost_rejected_read(d->r, ids[0], &q), OUTPOST_OK);
    return q;
}

static void test_refused_write_is_quarantined_with_every_value_then_resubmitted(void **state)
{
    (void)state;
    device a;
    char err[256], id[OUTPOST_UUID_TEXT_SIZE];
    memset(&a, 0, sizeof a);
    snprintf(a.path, sizeof a.path, "%s/q1.db", fx.dir);
    rejected_seen = 0;
    outpost_config cfg = {.path = a.path, .secret.key = device_key, .on_rejected = on_rejected};
    assert_int_equal(outpost_replica_open(&cfg, &a.r, err, sizeof err), OUTPOST_OK);
    char code[32], url[64];
    assert_int_equal(fixture_enroll_code(&fx, "w12", code), 0);
    url_for(fx.port, url, sizeof url);
    outpost_enroll_options eo = {.url = url, .code = code, .ca_pem = slurp(fx.ca_path)};
    assert_int_equal(outpost_enroll(a.r, &eo), OUTPOST_OK);

    /* A worker in teams one and two records a team-two contact offline; meanwhile the office
     * moves the worker out of team two. The server refuses the write. */
    assert_int_equal(outpost_uuid_make(id), OUTPOST_OK);
    write_contact_full(&a, id, "t2", "Alias Quarantined", "met at the station, age 14");
    central_exec("DELETE FROM _outpost_worker_teams WHERE worker_id = 'w12' AND team_id = 't2'");
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_int_equal(pending(&a), 0);
    assert_int_equal(central_count("SELECT count(*) FROM contacts WHERE name = 'Alias Quarantined'"), 0);

    /* Nothing the worker typed is gone: every value is in quarantine, with the server's reason. */
    outpost_rejected *q = only_rejected(&a);
    assert_string_equal(q->table, "contacts");
    assert_string_equal(q->op, "INSERT");
    assert_int_equal(q->code, PROTO_ERR_OUT_OF_SCOPE);
    assert_true(strlen(q->message) > 0);
    assert_string_equal(rejected_text(q, "id"), id);
    assert_string_equal(rejected_text(q, "team_id"), "t2");
    assert_string_equal(rejected_text(q, "name"), "Alias Quarantined");
    assert_string_equal(rejected_text(q, "note"), "met at the station, age 14");
    assert_int_equal(rejected_seen, 1);

    /* The app corrects the team and resubmits: a new outbox entry, and the row arrives. */
    const char *cols[] = {"team_id"};
    outpost_value vals[] = {ov_text("t1")};
    uint64_t seq = 0;
    int64_t qid = q->id;
    outpost_rejected_free(q);
    assert_int_equal(outpost_rejected_resubmit(a.r, qid, cols, vals, 1, &seq), OUTPOST_OK);
    assert_true(seq > 1);
    outpost_status st;
    assert_int_equal(outpost_status_get(a.r, &st), OUTPOST_OK);
    assert_int_equal(st.rejected, 0);
    assert_int_equal(device_count(&a, "SELECT count(*) FROM _outpost_rejected_log"
                                      " WHERE action = 'resubmitted'"), 1);
    outpost_sync_status ss;
    outpost_sync_get_status(a.sync, &ss);
    assert_int_equal(outpost_sync_wait(a.sync, ss.syncs_completed, WAIT_MS), OUTPOST_OK);
    for (int i = 0; i < 100 && pending(&a) > 0; i++)
        test_sleep_ms(50);
    assert_int_equal(pending(&a), 0);
    assert_int_equal(central_count("SELECT count(*) FROM contacts WHERE name = 'Alias Quarantined'"
                                   " AND team_id = 't1' AND note = 'met at the station, age 14'"),
                     1);
    assert_int_equal(outpost_status_get(a.r, &st), OUTPOST_OK);
    assert_int_equal(st.rejected, 0);
    device_close(&a);
}

/* An outsider's finding: resubmitting a refused UPDATE wrote the worker's whole old copy of the
 * row, so a newer value another device had written meanwhile was overwritten without a trace
 * (a high-risk flag erased). A resubmitted UPDATE writes what the worker changed, nothing more. */
static void test_resubmitted_update_writes_only_what_the_worker_changed(void **state)
{
    (void)state;
    device a, c;
    char id[OUTPOST_UUID_TEXT_SIZE], sql[256];
    memset(&a, 0, sizeof a), memset(&c, 0, sizeof c);
    /* w12 belongs to both teams here, whatever earlier cases did to it */
    central_exec("INSERT OR IGNORE INTO _outpost_worker_teams(worker_id, team_id)"
                 " VALUES('w12', 't1'), ('w12', 't2')");
    device_enroll(&c, "q4c", "w2", fx.port);  /* team two */
    device_enroll(&a, "q4a", "w12", fx.port); /* teams one and two */
    assert_int_equal(outpost_uuid_make(id), OUTPOST_OK);
    write_contact_full(&c, id, "t2", "Kim", "first note");
    device_start(&c, 100);
    assert_int_equal(outpost_sync_wait(c.sync, 0, WAIT_MS), OUTPOST_OK);
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    outpost_sync_stop(a.sync);
    a.sync = NULL;

    /* a, offline, moves the contact to team one; the office takes team one from a's worker, so
     * the server refuses the move. Meanwhile c writes a newer note. */
    snprintf(sql, sizeof sql, "UPDATE contacts SET team_id = 't1' WHERE id = '%s'", id);
    assert_int_equal(outpost_exec(a.r, sql, NULL, 0), OUTPOST_OK);
    central_exec("DELETE FROM _outpost_worker_teams WHERE worker_id = 'w12' AND team_id = 't1'");
    snprintf(sql, sizeof sql, "UPDATE contacts SET note = 'high risk: newer' WHERE id = '%s'", id);
    assert_int_equal(outpost_exec(c.r, sql, NULL, 0), OUTPOST_OK);
    outpost_sync_status ss;
    outpost_sync_get_status(c.sync, &ss);
    assert_int_equal(outpost_sync_wait(c.sync, ss.syncs_completed, WAIT_MS), OUTPOST_OK);
    for (int i = 0; i < 100 && pending(&c) > 0; i++)
        test_sleep_ms(50);
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    outpost_rejected *q = only_rejected(&a);
    assert_string_equal(q->op, "UPDATE");
    int64_t qid = q->id;
    outpost_rejected_free(q);

    /* The office gives team one back; after a new session the worker resubmits the move. */
    central_exec("INSERT INTO _outpost_worker_teams(worker_id, team_id) VALUES('w12', 't1')");
    outpost_sync_stop(a.sync);
    a.sync = NULL;
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_int_equal(outpost_rejected_resubmit(a.r, qid, NULL, NULL, 0, NULL), OUTPOST_OK);
    outpost_sync_get_status(a.sync, &ss);
    assert_int_equal(outpost_sync_wait(a.sync, ss.syncs_completed, WAIT_MS), OUTPOST_OK);
    for (int i = 0; i < 100 && pending(&a) > 0; i++)
        test_sleep_ms(50);
    assert_int_equal(pending(&a), 0);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM contacts WHERE id = '%s' AND team_id = 't1'"
             " AND note = 'high risk: newer'", id);
    assert_int_equal(central_count(sql), 1);
    device_close(&a);
    device_close(&c);
}

static void test_key_claimed_by_another_team_is_quarantined_and_resubmitted_with_a_new_key(
    void **state)
{
    (void)state;
    device a, c;
    char id[OUTPOST_UUID_TEXT_SIZE], id2[OUTPOST_UUID_TEXT_SIZE];
    memset(&a, 0, sizeof a), memset(&c, 0, sizeof c);
    device_enroll(&c, "q2c", "w2", fx.port);
    device_enroll(&a, "q2a", "w1", fx.port);
    assert_int_equal(outpost_uuid_make(id), OUTPOST_OK);
    memcpy(claimed_id, id, sizeof claimed_id);
    write_contact_full(&c, id, "t2", "team two's", "first");
    device_start(&c, 100);
    assert_int_equal(outpost_sync_wait(c.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_int_equal(pending(&c), 0);

    /* Team one's device makes a row with the same key (a copied id, a broken generator). */
    write_contact_full(&a, id, "t1", "team one's", "typed by w1");
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    outpost_rejected *q = only_rejected(&a);
    assert_string_equal(rejected_text(q, "name"), "team one's");
    assert_string_equal(rejected_text(q, "note"), "typed by w1");
    int64_t qid = q->id;
    outpost_rejected_free(q);
    /* The device holds neither the other team's row nor its own refused copy. */
    assert_int_equal(device_count(&a, "SELECT count(*) FROM contacts WHERE name = 'team one''s'"), 0);

    assert_int_equal(outpost_uuid_make(id2), OUTPOST_OK);
    const char *cols[] = {"id"};
    outpost_value vals[] = {ov_text(id2)};
    assert_int_equal(outpost_rejected_resubmit(a.r, qid, cols, vals, 1, NULL), OUTPOST_OK);
    for (int i = 0; i < 200 && central_count("SELECT count(*) FROM contacts WHERE name ="
                                             " 'team one''s'") != 1; i++)
        test_sleep_ms(50);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM contacts WHERE id = '%s' AND team_id = 't1'"
                              " AND note = 'typed by w1'", id2);
    assert_int_equal(central_count(sql), 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM contacts WHERE id = '%s' AND team_id = 't2'"
                              " AND name = 'team two''s'", id);
    assert_int_equal(central_count(sql), 1);
    device_close(&a);
    device_close(&c);
}

static void test_discard_is_explicit_and_recorded(void **state)
{
    (void)state;
    device a;
    char id[OUTPOST_UUID_TEXT_SIZE];
    memset(&a, 0, sizeof a);
    device_enroll(&a, "q3", "w1", fx.port);
    memcpy(id, claimed_id, sizeof id); /* a key team two holds: the server refuses it */
    write_contact_full(&a, id, "t1", "to be discarded", "");
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    outpost_rejected *q = only_rejected(&a);
    int64_t qid = q->id;
    outpost_rejected_free(q);
    assert_int_equal(outpost_rejected_discard(a.r, qid), OUTPOST_OK);
    outpost_status st;
    assert_int_equal(outpost_status_get(a.r, &st), OUTPOST_OK);
    assert_int_equal(st.rejected, 0);
    assert_int_equal(outpost_rejected_read(a.r, qid, &q), OUTPOST_EINVAL);
    assert_null(q);
    assert_int_equal(outpost_rejected_discard(a.r, qid), OUTPOST_EINVAL);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM _outpost_rejected_log WHERE action ="
                              " 'discarded' AND rejected_id = %lld AND tbl = 'contacts'"
                              " AND pk LIKE '%%%s%%' AND at_ms > 0", (long long)qid, id);
    assert_int_equal(device_count(&a, sql), 1);
    assert_int_equal(device_count(&a, "SELECT count(*) FROM _outpost_rejected_values"), 0);
    device_close(&a);
}

static void copy_file(const char *from, const char *to)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp '%.420s' '%.420s' && rm -f '%.420s-wal' '%.420s-shm'", from, to,
             to, to);
    assert_int_equal(system(cmd), 0);
}

/* A replica restored from a phone backup numbers its next entry with a seq the server already
 * recorded for another transaction. The server refuses it (ERROR SEQ_REWOUND) instead of
 * acknowledging it unapplied; the engine stops with OUTPOST_ESEQ and the entry stays. */
static void test_rewound_device_counter_is_stopped_not_dropped(void **state)
{
    (void)state;
    device a;
    char backup[420];
    memset(&a, 0, sizeof a);
    device_enroll(&a, "rw", "w1", fx.port);
    write_contact(&a, "t1", "before the backup");
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    device_close(&a);
    snprintf(backup, sizeof backup, "%s.backup", a.path);
    copy_file(a.path, backup);

    device_open(&a, "rw");
    write_contact(&a, "t1", "after the backup");
    write_contact(&a, "t1", "after the backup");
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_int_equal(pending(&a), 0);
    device_close(&a);

    copy_file(backup, a.path); /* the phone is restored from its backup */
    device_open(&a, "rw");
    write_contact(&a, "t1", "after the restore");
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_ESEQ);
    outpost_sync_status st;
    outpost_sync_get_status(a.sync, &st);
    assert_int_equal(st.activity, OUTPOST_ACTIVITY_STOPPED);
    assert_non_null(strstr(st.last_error_msg, "counter went back"));
    assert_int_equal(pending(&a), 1); /* kept, never taken as acknowledged */
    assert_int_equal(central_count("SELECT count(*) FROM contacts WHERE name = 'after the restore'"),
                     0);
    device_close(&a);
}

static void test_cuts_at_random_offsets_lose_and_duplicate_nothing(void **state)
{
    (void)state;
    faultproxy *proxy;
    uint16_t proxy_port;
    assert_int_equal(faultproxy_start(fx.port, &proxy, &proxy_port), 0);
    device a;
    memset(&a, 0, sizeof a);
    device_enroll(&a, "a3", "w1", proxy_port);
    srand(7);
    int64_t before = central_count("SELECT count(*) FROM contacts WHERE name = 'cut test'");
    int written = 0;
    for (int round = 0; round < 12; round++) {
        for (int i = 0; i < 5; i++, written++)
            write_contact(&a, "t1", "cut test");
        /* The TLS handshake alone is a few KiB: cut anywhere in the first 40 KiB. */
        faultproxy_cut_after(proxy, (uint64_t)(rand() % 40000));
        device_start(&a, 50);
        test_sleep_ms(300);
        outpost_sync_stop(a.sync);
        a.sync = NULL;
    }
    faultproxy_pass(proxy);
    device_start(&a, 50);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_int_equal(pending(&a), 0);
    assert_int_equal(central_count("SELECT count(*) FROM contacts WHERE name = 'cut test'"),
                     before + written);
    assert_int_equal(central_count("SELECT count(DISTINCT id) FROM contacts WHERE name = 'cut test'"),
                     before + written);
    assert_true(faultproxy_cuts(proxy) >= 1);
    device_close(&a);
    faultproxy_stop(proxy);
}

/* ---- The push window ---------------------------------------------------------------------- */

static void update_note(device *d, const char *id, const char *note)
{
    char sql[200];
    snprintf(sql, sizeof sql, "UPDATE contacts SET note = '%s' WHERE id = '%s'", note, id);
    assert_int_equal(outpost_exec(d->r, sql, NULL, 0), OUTPOST_OK);
}

/* Forty entries written offline go in one sync with several in flight at once: the push costs
 * one round trip, not one per entry (the window is 32 entries; sending one entry at a time
 * made this 40 round trips and more). The first 32 go behind HELLO, each ACK lets the next go,
 * and the PULL follows the last entry, so something is always unanswered. */
static void test_push_keeps_several_entries_in_flight(void **state)
{
    (void)state;
    enum { ENTRIES = 40 };
    device a;
    memset(&a, 0, sizeof a);
    device_enroll(&a, "win1", "w1", fx.port);
    for (int i = 0; i < ENTRIES; i++)
        write_contact(&a, "t1", "window test");
    assert_int_equal(pending(&a), ENTRIES);
    outpost_sync_config cfg = {.stay_connected = 0, .retry_base_ms = 100};
    assert_int_equal(outpost_sync_start(a.r, &cfg, &a.sync), OUTPOST_OK);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    outpost_sync_status ss;
    outpost_sync_get_status(a.sync, &ss);
    assert_int_equal(pending(&a), 0);
    assert_int_equal(ss.push_done, ENTRIES);
    assert_int_equal(central_count("SELECT count(*) FROM contacts WHERE name = 'window test'"),
                     ENTRIES);
    print_message("round trips for %d entries: %" PRIu64 "\n", ENTRIES, ss.round_trips);
    assert_int_equal(ss.round_trips, 1);
    device_close(&a);
}

/* The server's record of the cursor a device last pulled from (store_device_seen). */
static int64_t central_device_cursor(const char *worker)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT cursor FROM _outpost_devices WHERE worker_id = '%s'"
             " ORDER BY no DESC LIMIT 1", worker);
    return central_count(sql);
}

/* Pull ahead: the PULL for the next page leaves before this page is applied, so the server
 * reads the next page while the device writes this one. The device's replica is held locked by
 * the app (a transaction open), so applying the first page waits; meanwhile the server must
 * already have been asked for the second page (its record of the device's cursor moves past
 * where the pull began). It stayed put when the PULL was only written after the apply. Then
 * every row arrives exactly once. */
static void test_next_page_is_asked_for_before_this_page_is_applied(void **state)
{
    (void)state;
    enum { ROWS = 30, PAGE = 10, LOCKED_MS = 3000 };
    device a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    device_enroll(&a, "ahead_a", "w1", fx.port);
    device_enroll(&b, "ahead_b", "w1", fx.port); /* the worker's newest device */
    outpost_sync_config cfg = {.stay_connected = 1, .debounce_ms = 50, .retry_base_ms = 100,
                               .retry_cap_ms = 2000, .pull_page_rows = PAGE};
    assert_int_equal(outpost_sync_start(b.r, &cfg, &b.sync), OUTPOST_OK);
    assert_int_equal(outpost_sync_wait(b.sync, 0, WAIT_MS), OUTPOST_OK);
    outpost_status st;
    assert_int_equal(outpost_status_get(b.r, &st), OUTPOST_OK);
    const int64_t began = (int64_t)st.cursor;
    const int64_t before = device_count(&b, "SELECT count(*) FROM contacts");

    assert_int_equal(outpost_tx_begin(b.r), OUTPOST_OK); /* the app holds the replica */
    /* One transaction: one merge on the server, then one NOTIFY, and b pulls all of it. */
    assert_int_equal(outpost_tx_begin(a.r), OUTPOST_OK);
    for (int i = 0; i < ROWS; i++)
        write_contact(&a, "t1", "pulled ahead");
    assert_int_equal(outpost_tx_commit(a.r, NULL), OUTPOST_OK);
    outpost_sync_config once = {.stay_connected = 0, .retry_base_ms = 100};
    assert_int_equal(outpost_sync_start(a.r, &once, &a.sync), OUTPOST_OK);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    /* The server NOTIFYs b, which pulls; its first page cannot be applied yet. */
    int64_t seen = -1;
    for (uint32_t waited = 0; waited < LOCKED_MS; waited += 50) {
        seen = central_device_cursor("w1");
        if (seen > began)
            break;
        test_sleep_ms(50);
    }
    assert_int_equal(outpost_tx_rollback(b.r), OUTPOST_OK);
    print_message("pull began at %" PRId64 ", server asked from %" PRId64 " while locked\n",
                  began, seen);
    assert_true(seen > began);
    assert_int_equal(wait_device_count(&b, "SELECT count(*) FROM contacts", before + ROWS),
                     before + ROWS);
    assert_int_equal(device_count(&b, "SELECT count(*) FROM contacts WHERE name = 'pulled ahead'"),
                     ROWS);
    device_close(&a);
    device_close(&b);
}

/* Sync once with pages of `page` rows, and stop the engine. */
static void sync_once_paged(device *d, uint32_t page)
{
    outpost_sync_config once = {.stay_connected = 0, .retry_base_ms = 100, .pull_page_rows = page};
    assert_int_equal(outpost_sync_start(d->r, &once, &d->sync), OUTPOST_OK);
    assert_int_equal(outpost_sync_wait(d->sync, 0, WAIT_MS), OUTPOST_OK);
    outpost_sync_stop(d->sync);
    d->sync = NULL;
}

/* An outside tester's finding (N1): b edits its team's rows twice while offline, and a renamed
 * them meanwhile. b's edits are merged with a's names, and the rows come back to b, but only on
 * the first page of its pull: the rest kept the old names for good while b said synced. */
static void test_rows_edited_twice_offline_all_come_back_over_several_pages(void **state)
{
    (void)state;
    enum { ROWS = 12, PAGE = 5 };
    device a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    device_enroll(&a, "twice_a", "w1", fx.port);
    device_enroll(&b, "twice_b", "w1", fx.port);
    assert_int_equal(outpost_tx_begin(a.r), OUTPOST_OK);
    for (int i = 0; i < ROWS; i++)
        write_contact(&a, "t1", "twice");
    assert_int_equal(outpost_tx_commit(a.r, NULL), OUTPOST_OK);
    sync_once_paged(&a, PAGE);
    sync_once_paged(&b, PAGE);
    assert_int_equal(device_count(&b, "SELECT count(*) FROM contacts WHERE name = 'twice'"), ROWS);

    assert_int_equal(outpost_exec(a.r, "UPDATE contacts SET name = 'renamed by a'"
                                       " WHERE name = 'twice'", NULL, 0), OUTPOST_OK);
    sync_once_paged(&a, PAGE);
    assert_int_equal(outpost_exec(b.r, "UPDATE contacts SET note = 'one' WHERE name = 'twice'",
                                  NULL, 0), OUTPOST_OK);
    assert_int_equal(outpost_exec(b.r, "UPDATE contacts SET note = 'two' WHERE name = 'twice'",
                                  NULL, 0), OUTPOST_OK);
    sync_once_paged(&b, PAGE);
    assert_int_equal(pending(&b), 0);
    assert_int_equal(device_count(&b, "SELECT count(*) FROM contacts"
                                      " WHERE name = 'renamed by a' AND note = 'two'"), ROWS);
    device_close(&a);
    device_close(&b);
}

/* A refused entry with entries behind it already in flight that change the same row: the
 * refused row's values all stay in quarantine, the server keeps its own row untouched, the
 * unrelated entry in the same window is applied, and the device converges to the server (it
 * does not hold the other team's row, nor its refused copy). */
static void test_reject_with_later_entries_to_the_same_row_in_flight(void **state)
{
    (void)state;
    device a, c;
    char id[OUTPOST_UUID_TEXT_SIZE], other[OUTPOST_UUID_TEXT_SIZE], sql[300];
    memset(&a, 0, sizeof a), memset(&c, 0, sizeof c);
    device_enroll(&c, "win2c", "w2", fx.port);
    device_enroll(&a, "win2a", "w1", fx.port);
    assert_int_equal(outpost_uuid_make(id), OUTPOST_OK);
    write_contact_full(&c, id, "t2", "held by team two", "theirs");
    device_start(&c, 100);
    assert_int_equal(outpost_sync_wait(c.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_int_equal(pending(&c), 0);

    /* Offline, team one's device makes a row under the same key (refused: the key is team
     * two's), changes it twice more in later entries and records another contact between. */
    write_contact_full(&a, id, "t1", "copied key", "typed first");
    update_note(&a, id, "typed second");
    assert_int_equal(outpost_uuid_make(other), OUTPOST_OK);
    write_contact_full(&a, other, "t1", "window neighbour", "fine");
    update_note(&a, id, "typed third");
    assert_int_equal(pending(&a), 4);
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    for (int i = 0; i < 100 && pending(&a) > 0; i++)
        test_sleep_ms(50);
    assert_int_equal(pending(&a), 0);

    /* Nothing typed is lost: the insert and both updates are in quarantine. */
    assert_int_equal(device_count(&a, "SELECT count(*) FROM _outpost_rejected_values"
                                      " WHERE value = 'copied key'"), 1);
    assert_true(device_count(&a, "SELECT count(*) FROM _outpost_rejected_values"
                                 " WHERE value = 'typed third'") >= 1);
    outpost_status st;
    assert_int_equal(outpost_status_get(a.r, &st), OUTPOST_OK);
    assert_true(st.rejected >= 1);
    /* The server's row is untouched, the neighbour arrived once. */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM contacts WHERE id = '%s' AND team_id = 't2'"
                              " AND name = 'held by team two' AND note = 'theirs'", id);
    assert_int_equal(central_count(sql), 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM contacts WHERE id = '%s' AND team_id = 't1'"
                              " AND note = 'fine'", other);
    assert_int_equal(central_count(sql), 1);
    /* The device holds neither the other team's row nor any refused value of it. */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM contacts WHERE id = '%s'", id);
    assert_int_equal(device_count(&a, sql), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM contacts WHERE id = '%s'", other);
    assert_int_equal(device_count(&a, sql), 1);
    device_close(&a);
    device_close(&c);
}

/* outpost_sync_now() while a cycle is under way is answered by a cycle begun after it, not
 * dropped: over a slow link the request lands mid-cycle, and a second cycle must follow (an
 * upgrade's schema or a supervisor's change the worker is waiting for comes with it). */
static void test_sync_now_mid_cycle_is_not_dropped(void **state)
{
    (void)state;
    faultproxy *proxy;
    uint16_t proxy_port;
    assert_int_equal(faultproxy_start(fx.port, &proxy, &proxy_port), 0);
    device a;
    memset(&a, 0, sizeof a);
    device_enroll(&a, "mid1", "w1", proxy_port);
    for (int i = 0; i < 5; i++)
        write_contact(&a, "t1", "asked mid-cycle");
    faultproxy_shape(proxy, &faultproxy_3g); /* a cycle takes several 200 ms round trips */
    device_start(&a, 50);
    outpost_sync_status st;
    bool mid_cycle = false;
    for (int i = 0; i < 500 && !mid_cycle; i++) {
        outpost_sync_get_status(a.sync, &st);
        mid_cycle = st.syncs_completed == 0 && (st.activity == OUTPOST_ACTIVITY_PUSHING ||
                                                st.activity == OUTPOST_ACTIVITY_PULLING);
        if (!mid_cycle)
            test_sleep_ms(5);
    }
    assert_true(mid_cycle);
    outpost_sync_now(a.sync);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_int_equal(outpost_sync_wait(a.sync, 1, WAIT_MS), OUTPOST_OK);
    device_close(&a);
    faultproxy_stop(proxy);
}

/* Cuts while a window of entries is in flight: some entries were applied and their ACKs lost,
 * others never arrived. Reconnecting resends the whole window; the server answers the applied
 * ones from its record, so every row is there exactly once. */
static void test_cut_mid_window_resends_without_duplicates(void **state)
{
    (void)state;
    enum { ENTRIES = 60 };
    faultproxy *proxy;
    uint16_t proxy_port;
    assert_int_equal(faultproxy_start(fx.port, &proxy, &proxy_port), 0);
    device a;
    memset(&a, 0, sizeof a);
    device_enroll(&a, "win3", "w1", proxy_port);
    char note[1001], id[OUTPOST_UUID_TEXT_SIZE];
    uint32_t lcg = 12345;
    for (int i = 0; i < ENTRIES; i++) {
        /* Letters that do not compress, so each entry stays near 1 KB on a compressed link. */
        for (size_t j = 0; j < sizeof note - 1; j++) {
            lcg = lcg * 1103515245u + 12345u;
            note[j] = (char)('a' + (lcg >> 16) % 26);
        }
        note[sizeof note - 1] = '\0';
        assert_int_equal(outpost_uuid_make(id), OUTPOST_OK);
        write_contact_full(&a, id, "t1", "window cut", note);
    }
    /* Each entry is near 1 KB on the wire even compressed (about 600 B of it for the note),
     * the window 32 entries, the handshake a few KiB: cut inside the pushes, three times over. */
    const uint64_t cuts[] = {12000, 14000, 16000};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        faultproxy_cut_after(proxy, cuts[k]);
        device_start(&a, 50);
        for (int i = 0; i < 100 && faultproxy_cuts(proxy) < (uint32_t)k + 1; i++)
            test_sleep_ms(20);
        outpost_sync_stop(a.sync);
        a.sync = NULL;
    }
    int64_t landed = central_count("SELECT count(*) FROM contacts WHERE name = 'window cut'");
    print_message("rows on the server after %u cuts: %lld of %d\n", faultproxy_cuts(proxy),
                  (long long)landed, ENTRIES);
    assert_true(faultproxy_cuts(proxy) >= 3);
    assert_true(landed > 0 && landed < ENTRIES); /* the cuts fell mid-push */
    faultproxy_pass(proxy);
    device_start(&a, 50);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_int_equal(pending(&a), 0);
    assert_int_equal(central_count("SELECT count(*) FROM contacts WHERE name = 'window cut'"),
                     ENTRIES);
    assert_int_equal(
        central_count("SELECT count(DISTINCT id) FROM contacts WHERE name = 'window cut'"),
        ENTRIES);
    device_close(&a);
    faultproxy_stop(proxy);
}

static void test_server_restart_mid_sync_loses_nothing(void **state)
{
    (void)state;
    device a, b;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b);
    device_enroll(&a, "a4", "w1", fx.port);
    device_enroll(&b, "b4", "w1", fx.port);
    const int entries = 40;
    for (int i = 0; i < entries; i++) {
        assert_int_equal(outpost_tx_begin(a.r), OUTPOST_OK);
        for (int j = 0; j < 50; j++)
            write_contact(&a, "t1", "restart test");
        assert_int_equal(outpost_tx_commit(a.r, NULL), OUTPOST_OK);
    }
    /* SIGKILL mid-push, proven: once the central store holds the first entry's rows and
     * before it holds the last's. The store cannot change after the kill, so its count then
     * is where the kill landed. */
    const char *count_sql = "SELECT count(*) FROM contacts WHERE name = 'restart test'";
    device_start(&a, 50);
    int64_t seen = 0;
    for (uint32_t polls = 0; polls < WAIT_MS * 10 && seen < 50; polls++) {
        seen = central_count(count_sql);
        if (seen < 50)
            usleep(100);
    }
    fixture_kill(&fx);
    int64_t at_kill = central_count(count_sql);
    printf("restart: SIGKILL landed after %" PRId64 " of %d rows (%" PRId64 " entries)\n",
           at_kill, entries * 50, at_kill / 50);
    assert_true(at_kill >= 50);
    assert_true(at_kill < entries * 50);
    test_sleep_ms(200);
    assert_int_equal(fixture_start(&fx), 0);
    outpost_sync_network_changed(a.sync);
    device_start(&b, 50);
    assert_int_equal(
        wait_device_count(&b, "SELECT count(*) FROM contacts WHERE name = 'restart test'",
                          entries * 50),
        entries * 50);
    /* b can hold every row before a has recorded the last ACKs of its window. */
    for (uint32_t waited = 0; waited < WAIT_MS && pending(&a) > 0; waited += 50)
        test_sleep_ms(50);
    assert_int_equal(pending(&a), 0);
    assert_int_equal(central_count("SELECT count(*) FROM contacts WHERE name = 'restart test'"),
                     entries * 50);
    device_close(&a);
    device_close(&b);
}

/* A connected engine with nothing to do sleeps: on a phone every wake costs battery. It used to
 * wake once a second (a poll for other processes' commits), 5 or more times in this window, and
 * 5 s after connecting (a timer of libwebsockets'). Its next timers are minutes away (keepalive
 * PULL, ping, the look for other processes' commits), so the window sees no wake at all, yet a
 * local commit still wakes it at once and syncs within its debounce (50 ms) and a round trip. */
static void test_idle_engine_sleeps_until_needed(void **state)
{
    (void)state;
    device a;
    memset(&a, 0, sizeof a);
    device_enroll(&a, "sleepy", "w1", fx.port);
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    test_sleep_ms(500);
    uint64_t w0 = outpost_sync_wakes(a.sync), r0[OUTPOST_WAKE_REASONS];
    for (int i = 0; i < OUTPOST_WAKE_REASONS; i++)
        r0[i] = outpost_sync_wakes_for(a.sync, (outpost_sync_wake_reason)i);
    test_sleep_ms(6000);
    uint64_t woke = outpost_sync_wakes(a.sync) - w0;
    print_message("idle engine woke %" PRIu64 " times in 6 s (app %" PRIu64 ", timer %" PRIu64
                  ", network %" PRIu64 ", other %" PRIu64 ")\n", woke,
                  outpost_sync_wakes_for(a.sync, OUTPOST_WAKE_APP) - r0[OUTPOST_WAKE_APP],
                  outpost_sync_wakes_for(a.sync, OUTPOST_WAKE_TIMER) - r0[OUTPOST_WAKE_TIMER],
                  outpost_sync_wakes_for(a.sync, OUTPOST_WAKE_NETWORK) - r0[OUTPOST_WAKE_NETWORK],
                  outpost_sync_wakes_for(a.sync, OUTPOST_WAKE_OTHER) - r0[OUTPOST_WAKE_OTHER]);
    assert_int_equal(woke, 0);

    outpost_sync_status ss;
    outpost_sync_get_status(a.sync, &ss);
    w0 = outpost_sync_wakes_for(a.sync, OUTPOST_WAKE_APP);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    write_contact(&a, "t1", "wakes the sleeper");
    assert_int_equal(outpost_sync_wait(a.sync, ss.syncs_completed, WAIT_MS), OUTPOST_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long took_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    print_message("the commit synced in %ld ms\n", took_ms);
    assert_true(took_ms < 1000);
    assert_true(outpost_sync_wakes_for(a.sync, OUTPOST_WAKE_APP) > w0);
    assert_int_equal(central_count("SELECT count(*) FROM contacts WHERE name = 'wakes the sleeper'"),
                     1);
    device_close(&a);
}

/* Kept connected and idle, the engine sends a PULL before the server's idle timeout would end
 * the session, so it keeps one connection instead of being dropped and reconnecting (which is
 * what happened when nothing was sent: a new connection each `idle`). */
static void test_idle_connection_is_kept_past_the_server_idle_timeout(void **state)
{
    (void)state;
    daemon_fixture idle_fx;
    faultproxy *proxy = NULL;
    uint16_t port = 0;
    char code[32], url[64];
    device a;
    memset(&a, 0, sizeof a);
    assert_int_equal(fixture_create(&idle_fx, "idle_timeout_s = 2\n"), 0);
    assert_int_equal(fixture_start(&idle_fx), 0);
    assert_int_equal(faultproxy_start(idle_fx.port, &proxy, &port), 0);
    device_open(&a, "keepalive");
    assert_int_equal(fixture_enroll_code(&idle_fx, "w1", code), 0);
    url_for(port, url, sizeof url);
    outpost_enroll_options eo = {.url = url, .code = code, .ca_pem = slurp(idle_fx.ca_path)};
    if (outpost_enroll(a.r, &eo) != OUTPOST_OK)
        fail_msg("enroll: %s", outpost_errmsg(a.r));
    uint32_t before = faultproxy_accepted(proxy); /* the enrollment's connection */
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    test_sleep_ms(5000); /* 2.5 times the server's idle */
    outpost_sync_status ss;
    outpost_sync_get_status(a.sync, &ss);
    print_message("connections %u, syncs %" PRIu64 "\n", faultproxy_accepted(proxy) - before,
                  ss.syncs_completed);
    assert_int_equal(faultproxy_accepted(proxy) - before, 1);
    assert_int_equal(ss.last_error, OUTPOST_OK);
    assert_true(ss.syncs_completed >= 3); /* the first sync, then a PULL every second */
    device_close(&a);
    faultproxy_stop(proxy);
    fixture_destroy(&idle_fx);
}

/* Waits (up to WAIT_MS) until a's engine has failed to reach the server and scheduled a retry:
 * a fixed sleep was once too short for a loaded ASan run, still CONNECTING at 500 ms. */
static outpost_sync_status wait_offline(const device *a)
{
    outpost_sync_status st;
    for (uint32_t waited = 0;; waited += 20) {
        outpost_sync_get_status(a->sync, &st);
        if (st.activity == OUTPOST_ACTIVITY_OFFLINE || waited >= WAIT_MS)
            return st;
        test_sleep_ms(20);
    }
}

static void test_automatic_retry_finds_the_server_when_it_returns(void **state)
{
    (void)state;
    device a;
    memset(&a, 0, sizeof a);
    device_enroll(&a, "a5", "w1", fx.port);
    assert_int_equal(fixture_stop_clean(&fx), 0);
    write_contact(&a, "t1", "retry test");
    device_start(&a, 100);
    outpost_sync_status st = wait_offline(&a);
    assert_int_equal(st.activity, OUTPOST_ACTIVITY_OFFLINE);
    assert_int_equal(st.last_error, OUTPOST_EOFFLINE);
    assert_int_equal(fixture_start(&fx), 0);
    /* No hint from the app: the backoff schedule alone (capped at 2 s here) finds it. */
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_int_equal(pending(&a), 0);
    device_close(&a);
}

/* The supervisors' device view shows why a device could not sync: a sync that failed (server
 * down) in one run of the app, then succeeded in the next, reports the failure in the next
 * HELLO's err, and the server keeps it for the device view. */
static void test_failed_sync_is_reported_by_the_next_hello(void **state)
{
    (void)state;
    device a;
    memset(&a, 0, sizeof a);
    device_enroll(&a, "lasterr", "w1", fx.port);
    char *device_id = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(outpost_replica_db(a.r),
                                        "SELECT device_id FROM _outpost_device", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    device_id = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    assert_int_equal(fixture_stop_clean(&fx), 0);
    write_contact(&a, "t1", "server down");
    device_start(&a, 100);
    outpost_sync_status ss = wait_offline(&a);
    assert_int_equal(ss.last_error, OUTPOST_EOFFLINE);
    device_close(&a); /* the app ends; the next run is a new process */
    assert_int_equal(fixture_start(&fx), 0);
    device_open(&a, "lasterr");
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    device_close(&a);
    char *sql = strf("SELECT count(*) FROM _outpost_device_reports r JOIN _outpost_devices d"
                     " ON d.no = r.device_no WHERE d.id = '%s' AND r.last_error LIKE '%%refused%%'",
                     device_id);
    int64_t n = central_count(sql);
    if (n != 1) {
        free(sql);
        sql = strf("SELECT count(*) FROM _outpost_device_reports r JOIN _outpost_devices d"
                   " ON d.no = r.device_no WHERE d.id = '%s' AND r.last_error = ''", device_id);
        fail_msg("the device's report has no refused connection (empty: %lld)",
                 (long long)central_count(sql));
    }
    free(sql);
    free(device_id);
}

/* Stops outpostd, makes it present server.pem, server.key and ca.pem from dir, and starts it
 * again; dir NULL puts back the fixture's own certificates, saved by the first swap. */
static void serve_certs_from(const char *dir)
{
    assert_int_equal(fixture_stop_clean(&fx), 0);
    char *saved = strf("%s/saved-certs", fx.dir);
    struct stat sb;
    if (stat(saved, &sb) != 0)
        assert_int_equal(systemf("mkdir %s && cp %s/certs/server.pem %s/certs/server.key "
                                 "%s/certs/ca.pem %s/",
                                 saved, fx.dir, fx.dir, fx.dir, saved),
                         0);
    const char *from = dir != NULL ? dir : saved;
    assert_int_equal(systemf("cp %s/server.pem %s/server.key %s/ca.pem %s/certs/", from, from,
                             from, fx.dir),
                     0);
    free(saved);
    assert_int_equal(fixture_start(&fx), 0);
}

static void test_wrong_server_certificate_is_refused(void **state)
{
    (void)state;
    device a;
    memset(&a, 0, sizeof a);
    device_enroll(&a, "a6", "w1", fx.port);
    /* The server now presents a certificate from another CA. */
    char *other = strf("%s/othercerts", fx.dir);
    assert_int_equal(fixture_make_certs(other), 0);
    serve_certs_from(other);
    free(other);
    write_contact(&a, "t1", "must not leave");
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_ECERT);
    assert_int_equal(pending(&a), 1);
    device_close(&a);
    /* Put the real certificate back for the cases after this one. */
    serve_certs_from(NULL);
}

/* The usual CA layout: a root signs an intermediate that signs the server certificate, and the
 * cert file holds the server certificate then the intermediate. A device pins the root (what
 * ENROLLED hands out); it can only verify the server if outpostd serves the whole chain. */
static void test_intermediate_ca_chain_is_served(void **state)
{
    (void)state;
    char *chain = strf("%s/chaincerts", fx.dir);
    assert_int_equal(fixture_make_chain_certs(chain), 0);
    serve_certs_from(chain);
    free(chain);
    device a;
    memset(&a, 0, sizeof a);
    device_enroll(&a, "a9", "w1", fx.port);
    write_contact(&a, "t1", "through an intermediate");
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_int_equal(pending(&a), 0);
    /* A second connection after the first sync verifies the chain again. */
    device_close(&a);
    device_open(&a, "a9");
    write_contact(&a, "t1", "second session");
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_int_equal(pending(&a), 0);
    device_close(&a);
    serve_certs_from(NULL);
}

/* ---- TLS session resumption ---------------------------------------------------------------
 * An engine that connects again (next sync, or after a cut) offers the TLS 1.3 ticket of its
 * last good connection, and outpostd resumes it: no certificate flight. Nothing else changes:
 * HELLO authenticates the device every time, and only the trust of the first connection is
 * ever resumed. */

/* How many times text appears in outpostd's log. */
static int log_count(const char *text)
{
    char *log = test_read_file(fx.log_path, NULL);
    assert_non_null(log);
    int n = 0;
    for (const char *p = log; (p = strstr(p, text)) != NULL; p++)
        n++;
    free(log);
    return n;
}

/* An engine that closes its connection after each sync (stay_connected 0). */
static void device_start_per_sync(device *d)
{
    outpost_sync_config cfg = {.debounce_ms = 50, .retry_base_ms = 100, .retry_cap_ms = 2000,
                               .on_wiped = on_wiped, .user_data = d};
    assert_int_equal(outpost_sync_start(d->r, &cfg, &d->sync), OUTPOST_OK);
}

static void assert_handshakes(device *d, uint32_t full, uint32_t resumed)
{
    uint32_t f, r;
    outpost_sync_handshakes(d->sync, &f, &r);
    if (f != full || r != resumed)
        fail_msg("TLS handshakes: %u full and %u resumed, expected %u and %u", f, r, full,
                 resumed);
}

/* Sync, write, sync: the second sync is a new connection, which resumes the first's session. */
static void test_next_sync_resumes_the_tls_session(void **state)
{
    (void)state;
    device d;
    memset(&d, 0, sizeof d);
    device_enroll(&d, "tls1", "w1", fx.port);
    device_start_per_sync(&d);
    assert_int_equal(outpost_sync_wait(d.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_handshakes(&d, 1, 0);
    outpost_sync_status st;
    outpost_sync_get_status(d.sync, &st);
    write_contact(&d, "t1", "over a resumed session");
    assert_int_equal(outpost_sync_wait(d.sync, st.syncs_completed, WAIT_MS), OUTPOST_OK);
    assert_handshakes(&d, 1, 1);
    assert_int_equal(pending(&d), 0);
    assert_int_equal(central_count("SELECT count(*) FROM contacts WHERE name = "
                                   "'over a resumed session'"),
                     1);
    device_close(&d);
}

/* Resuming skips the TLS handshake, not authentication: a device revoked between two syncs
 * resumes its TLS session and is still refused (and wiped) at HELLO. */
static void test_revoked_device_is_refused_on_a_resumed_session(void **state)
{
    (void)state;
    device d;
    memset(&d, 0, sizeof d);
    device_enroll(&d, "tls2", "w1", fx.port);
    device_start_per_sync(&d);
    assert_int_equal(outpost_sync_wait(d.sync, 0, WAIT_MS), OUTPOST_OK);
    char id[40];
    assert_int_equal(outpost_device_id(d.r, id), OUTPOST_OK);
    assert_int_equal(fixture_revoke(&fx, id, true), 0);
    outpost_sync_status st;
    outpost_sync_get_status(d.sync, &st);
    write_contact(&d, "t1", "after the revoke");
    assert_int_equal(outpost_sync_wait(d.sync, st.syncs_completed, WAIT_MS), OUTPOST_EWIPED);
    assert_true(d.wiped);
    assert_handshakes(&d, 1, 1);
    assert_int_equal(central_count("SELECT count(*) FROM contacts WHERE name = "
                                   "'after the revoke'"),
                     0);
    device_close(&d);
}

/* The same outpostd process reloads (SIGHUP) a certificate from another CA: its tickets die
 * with the old certificate, so the device, which holds a ticket from before, gets a full
 * handshake, sees the new certificate and refuses it. Resuming would have carried the old
 * certificate's verification over to the new one. */
static void test_ticket_is_not_resumed_across_a_certificate_change(void **state)
{
    (void)state;
    device d;
    memset(&d, 0, sizeof d);
    device_enroll(&d, "tls3", "w1", fx.port);
    device_start_per_sync(&d);
    assert_int_equal(outpost_sync_wait(d.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_handshakes(&d, 1, 0);

    char *other = strf("%s/tlsothercerts", fx.dir);
    char *saved = strf("%s/tlssavedcerts", fx.dir);
    assert_int_equal(fixture_make_certs(other), 0);
    assert_int_equal(systemf("mkdir %s && cp %s/certs/server.pem %s/certs/server.key "
                             "%s/certs/ca.pem %s/ && cp %s/server.pem %s/server.key %s/ca.pem "
                             "%s/certs/",
                             saved, fx.dir, fx.dir, fx.dir, saved, other, other, other, fx.dir),
                     0);
    int reloads = log_count("reloaded ");
    assert_int_equal(kill(fx.pid, SIGHUP), 0);
    /* Until the reload is done the old certificate may still be served: wait for the log. */
    for (int i = 0; i < 200 && log_count("reloaded ") == reloads; i++)
        usleep(25000);
    assert_int_equal(log_count("reloaded "), reloads + 1);

    outpost_sync_status st;
    outpost_sync_get_status(d.sync, &st);
    write_contact(&d, "t1", "must not reach another certificate");
    assert_int_equal(outpost_sync_wait(d.sync, st.syncs_completed, WAIT_MS), OUTPOST_ECERT);
    assert_int_equal(pending(&d), 1);
    assert_handshakes(&d, 1, 0);
    device_close(&d);

    /* The fixture's own certificates back, and a restart for the cases after this one. */
    assert_int_equal(systemf("cp %s/server.pem %s/server.key %s/ca.pem %s/certs/", saved, saved,
                             saved, fx.dir),
                     0);
    assert_int_equal(fixture_stop_clean(&fx), 0);
    assert_int_equal(fixture_start(&fx), 0);
    free(other);
    free(saved);
}

static void test_revoked_device_is_wiped(void **state)
{
    (void)state;
    device a;
    memset(&a, 0, sizeof a);
    device_enroll(&a, "a7", "w1", fx.port);
    write_contact(&a, "t1", "lost phone");
    char id[40];
    assert_int_equal(outpost_device_id(a.r, id), OUTPOST_OK);
    assert_int_equal(fixture_revoke(&fx, id, true), 0);
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_EWIPED);
    assert_true(a.wiped);
    struct stat sb;
    assert_int_not_equal(stat(a.path, &sb), 0);
    char wal[420];
    snprintf(wal, sizeof wal, "%s-wal", a.path);
    assert_int_not_equal(stat(wal, &sb), 0);
    assert_int_equal(outpost_exec(a.r, "SELECT 1", NULL, 0), OUTPOST_EWIPED);
    device_close(&a);
}

/* A device that stays connected and idle (a phone with the app open) learns of a revoke with a
 * wipe within seconds: outpostd closes its session, and the HELLO that follows hears the wipe. */
static void test_idle_connected_device_is_wiped_promptly_when_revoked(void **state)
{
    (void)state;
    device a;
    memset(&a, 0, sizeof a);
    device_enroll(&a, "a10", "w1", fx.port);
    char worker[OUTPOST_WORKER_ID_SIZE];
    assert_int_equal(outpost_worker_id(a.r, worker), OUTPOST_OK); /* ENROLLED's wkr */
    assert_string_equal(worker, "w1");
    write_contact(&a, "t1", "phone left open");
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    outpost_sync_status st;
    outpost_sync_get_status(a.sync, &st);
    char id[40];
    assert_int_equal(outpost_device_id(a.r, id), OUTPOST_OK);
    assert_int_equal(fixture_revoke(&fx, id, true), 0);
    assert_int_equal(outpost_sync_wait(a.sync, st.syncs_completed, 8000), OUTPOST_EWIPED);
    assert_true(a.wiped);
    struct stat sb;
    assert_int_not_equal(stat(a.path, &sb), 0);
    device_close(&a);
}

/* The same for a worker disabled while their device is connected: it stops as revoked. */
static void test_idle_connected_device_stops_promptly_when_its_worker_is_disabled(void **state)
{
    (void)state;
    device a;
    memset(&a, 0, sizeof a);
    device_enroll(&a, "a11", "w12", fx.port);
    device_start(&a, 100);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    outpost_sync_status st;
    outpost_sync_get_status(a.sync, &st);
    assert_int_equal(fixture_disable_worker(&fx, "w12"), 0);
    assert_int_equal(outpost_sync_wait(a.sync, st.syncs_completed, 8000), OUTPOST_EREVOKED);
    assert_false(a.wiped);
    device_close(&a);
}

/* Last case: the daemon this program used stops cleanly (exit 0, under ASan without a leak) and
 * leaves a store that passes integrity_check. */
/* A server configured above the library's 1 MiB default advertises its `msg` in WELCOME, and
 * the device takes messages up to that: a row of 1.5 MB (two columns, each written in its own
 * entry under 1 MiB) reaches a second device under a 2 MiB limit. Before, its transport refused
 * the page ("larger than 1048576 bytes") in every session. */
static void test_device_takes_messages_up_to_the_advertised_limit(void **state)
{
    enum { NAME = 700000, NOTE = 800000 };
    daemon_fixture saved = fx;
    char id[OUTPOST_UUID_TEXT_SIZE];
    char *name = malloc(NAME + 1), *note = malloc(NOTE + 1);
    device a = {0}, b = {0};

    (void)state;
    assert_non_null(name);
    assert_non_null(note);
    memset(name, 'n', NAME);
    name[NAME] = '\0';
    memset(note, 'o', NOTE);
    note[NOTE] = '\0';
    assert_int_equal(fixture_create(&fx, "max_message_bytes = 2097152\n"), 0);
    assert_int_equal(fixture_start(&fx), 0);
    device_enroll(&a, "big-a", "w1", fx.port);
    device_start(&a, 100);
    assert_int_equal(outpost_uuid_make(id), OUTPOST_OK);
    outpost_value ins[3] = {ov_text(id), ov_text("t1"), ov_text(name)};
    assert_int_equal(outpost_exec(a.r, "INSERT INTO contacts (id, team_id, name)"
                                       " VALUES (?1, ?2, ?3)", ins, 3), OUTPOST_OK);
    outpost_value upd[2] = {ov_text(note), ov_text(id)};
    assert_int_equal(outpost_exec(a.r, "UPDATE contacts SET note = ?1 WHERE id = ?2", upd, 2),
                     OUTPOST_OK);
    for (uint32_t waited = 0; pending(&a) > 0 && waited < WAIT_MS; waited += 50)
        test_sleep_ms(50);
    assert_int_equal(pending(&a), 0);

    device_enroll(&b, "big-b", "w1", fx.port);
    device_start(&b, 100);
    assert_int_equal(wait_device_count(&b, "SELECT count(*) FROM contacts WHERE"
                                           " length(name) = 700000 AND length(note) = 800000", 1),
                     1);
    device_close(&b);
    device_close(&a);
    fixture_destroy(&fx);
    fx = saved;
    free(name);
    free(note);
}

/* The store is upgraded (a new column) while a device on the old schema has entries waiting:
 * its first flight carries them in the old schema before WELCOME brings the new one. The server
 * merges them as it merges any entry written before an upgrade (the missing column takes its
 * default), the device installs the schema, and nothing is lost. Runs last but one: it changes
 * the shared store's schema. */
static void test_first_flight_across_a_schema_upgrade_loses_nothing(void **state)
{
    (void)state;
    enum { ENTRIES = 5 };
    device d;
    memset(&d, 0, sizeof d);
    device_enroll(&d, "sv1", "w1", fx.port);
    for (int i = 0; i < ENTRIES; i++)
        write_contact(&d, "t1", "before the upgrade");
    outpost_status before;
    assert_int_equal(outpost_status_get(d.r, &before), OUTPOST_OK);
    char *dir = strf("%s/v2", fx.dir);
    assert_int_equal(systemf("mkdir -p '%s' && printf '%%s\\n' 'CREATE TABLE contacts (id TEXT "
                             "PRIMARY KEY NOT NULL, team_id TEXT NOT NULL, name TEXT, note TEXT, "
                             "phone TEXT);' >'%s/schema.sql' && printf '%%s\\n' 'contacts "
                             "scope=team_id policy=hlc' >'%s/policy' && '%s' --store '%s' "
                             "upgrade --schema '%s/schema.sql' --policy '%s/policy' >/dev/null",
                             dir, dir, dir, OUTPOST_ADMIN_PATH, fx.store_path, dir, dir),
                     0);
    free(dir);
    device_start_per_sync(&d);
    assert_int_equal(outpost_sync_wait(d.sync, 0, WAIT_MS), OUTPOST_OK);
    outpost_sync_status ss;
    outpost_sync_get_status(d.sync, &ss);
    assert_int_equal(ss.round_trips, 1); /* the entries went in the first flight */
    outpost_status after;
    assert_int_equal(outpost_status_get(d.r, &after), OUTPOST_OK);
    assert_int_equal(after.schema_version, before.schema_version + 1);
    assert_int_equal(after.pending, 0);
    assert_int_equal(central_count("SELECT count(*) FROM contacts WHERE name = "
                                   "'before the upgrade' AND phone IS NULL"),
                     ENTRIES);
    /* The new column works both ways from here. */
    char id[OUTPOST_UUID_TEXT_SIZE];
    assert_int_equal(outpost_uuid_make(id), OUTPOST_OK);
    outpost_value params[2] = {ov_text(id), ov_text("555-0100")};
    assert_int_equal(outpost_exec(d.r, "INSERT INTO contacts (id, team_id, name, phone) "
                                        "VALUES (?1, 't1', 'after the upgrade', ?2)",
                                  params, 2),
                     OUTPOST_OK);
    assert_int_equal(outpost_sync_wait(d.sync, 1, WAIT_MS), OUTPOST_OK);
    assert_int_equal(central_count("SELECT count(*) FROM contacts WHERE phone = '555-0100'"), 1);
    device_close(&d);
}

#ifdef OUTPOST_SYNC_FAILOVER
/* ---- Failover (docs/operations.md "Topology and failover") ------------------------------- */

/* FO_DETECT_MS: from the crash to the promotion, as a cluster manager's detection takes (and
 * past /healthz's 2 s probe). */
enum { FO_DEVICES = 3, FO_MAX_WRITES = 1000, FO_STEP_MS = 100, FO_BIG_TX = 200,
       FO_DETECT_MS = 2500 };

typedef struct fo_device {
    device d;
    int n;                                           /* rows written */
    char ids[FO_MAX_WRITES][OUTPOST_UUID_TEXT_SIZE]; /* their keys */
    int64_t seqs[FO_MAX_WRITES];                     /* the outbox entry holding each */
    bool acked_at_crash[FO_MAX_WRITES];              /* its entry acknowledged at the crash */
    int first_after;   /* the first row written after the crash */
    int64_t outage_ms; /* crash to its entry's acknowledgement (seen within one FO_STEP_MS);
                        * -1 while not yet */
} fo_device;

static int64_t replica_int(device *d, const char *sql, int64_t bind)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(outpost_replica_db(d->r), sql, -1, &st, NULL) == SQLITE_OK &&
        (sqlite3_bind_parameter_count(st) == 0 || sqlite3_bind_int64(st, 1, bind) == SQLITE_OK) &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static bool fo_acked(fo_device *f, int k)
{
    return replica_int(&f->d, "SELECT count(*) FROM _outpost_outbox WHERE seq = ?1",
                       f->seqs[k]) == 0;
}

/* One entry of n_rows new rows. */
static void fo_write_rows(fo_device *f, int n_rows)
{
    assert_true(f->n + n_rows <= FO_MAX_WRITES);
    assert_int_equal(outpost_tx_begin(f->d.r), OUTPOST_OK);
    for (int k = f->n; k < f->n + n_rows; k++) {
        assert_int_equal(outpost_uuid_make(f->ids[k]), OUTPOST_OK);
        write_contact_full(&f->d, f->ids[k], "t1", "failover", "pushed through a failover");
    }
    assert_int_equal(outpost_tx_commit(f->d.r, NULL), OUTPOST_OK);
    int64_t seq = replica_int(&f->d, "SELECT device_seq FROM _outpost_state", 0);
    assert_true(seq > 0);
    for (int k = f->n; k < f->n + n_rows; k++)
        f->seqs[k] = seq;
    f->n += n_rows;
}

static void fo_write(fo_device *f)
{
    fo_write_rows(f, 1);
}

/* The first column of sql's first row as text, malloc'd ("" when NULL). */
static char *fo_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const char *text = (const char *)sqlite3_column_text(st, 0);
    char *out = strdup(text ? text : "");
    sqlite3_finalize(st);
    assert_non_null(out);
    return out;
}

/* /healthz's status, or -1 when it did not answer. */
static int fo_health(char *body, size_t size)
{
    dash_reply r;
    if (dash_request(fx.port, fx.ca_path, "GET", "/healthz", NULL, NULL, NULL, NULL, &r) != 0)
        return -1;
    snprintf(body, size, "%s", r.body ? r.body : "");
    int status = r.status;
    dash_reply_free(&r);
    return status;
}

/* Each device writes a row every FO_STEP_MS for ms milliseconds; after the crash (crash_ms set)
 * it notes when each device's first entry written since was acknowledged. */
static void fo_run(fo_device *fo, uint64_t ms, uint64_t crash_ms)
{
    for (uint64_t end = test_now_ms() + ms; test_now_ms() < end;) {
        for (int i = 0; i < FO_DEVICES; i++) {
            fo_device *f = &fo[i];
            fo_write(f);
            if (crash_ms != 0 && f->outage_ms < 0 && fo_acked(f, f->first_after))
                f->outage_ms = (int64_t)(test_now_ms() - crash_ms);
        }
        test_sleep_ms(FO_STEP_MS);
    }
}

/* Several liboutpost devices push and pull through two outpostd nodes (two devices on the
 * first, one on the second) on a primary with a synchronous standby; the primary's postmaster
 * is SIGKILLed while they do, and the standby promoted FO_DETECT_MS later (/healthz says 503
 * meanwhile). Each node, whose conninfo names both
 * servers with target_session_attrs=read-write, finds the new primary by itself; the devices
 * retry by themselves, through the same node. Every row a device saw acknowledged before the
 * crash is on the promoted store, once; every row written at all is there once (the change log
 * has one entry per row, the conflict log none: a second apply of an INSERT would be a
 * conflict); every outbox drains and every device ends with the same rows. */
static void test_devices_sync_through_a_failover(void **state)
{
    (void)state;
    fo_device *fo = calloc(FO_DEVICES, sizeof *fo);
    static const char *const workers[FO_DEVICES] = {"w1", "w1", "w12"};
    assert_non_null(fo);
    fixture_second_node(&fx, &node2);
    assert_int_equal(fixture_start(&node2), 0);
    for (int i = 0; i < FO_DEVICES; i++) {
        char name[16];
        snprintf(name, sizeof name, "fo%d", i);
        device_enroll(&fo[i].d, name, workers[i], i == FO_DEVICES - 1 ? node2.port : fx.port);
        device_start(&fo[i].d, 100);
        fo[i].outage_ms = -1;
    }
    fo_run(fo, 1500, 0);

    /* Mid-stream: an entry of FO_BIG_TX rows on every device just before the crash, on its way
     * to the store (one PostgreSQL round trip per row: tens of ms of merge). */
    for (int i = 0; i < FO_DEVICES; i++)
        fo_write_rows(&fo[i], FO_BIG_TX);
    test_sleep_ms(65); /* past the debounce: the entries are being pushed */
    pg_cluster_crash(&cluster);
    uint64_t crash_ms = test_now_ms();
    int acked_before = 0, unacked_at_crash = 0; /* rows */
    for (int i = 0; i < FO_DEVICES; i++) {
        for (int k = 0; k < fo[i].n; k++) {
            fo[i].acked_at_crash[k] = fo_acked(&fo[i], k);
            acked_before += fo[i].acked_at_crash[k];
            unacked_at_crash += !fo[i].acked_at_crash[k];
        }
        fo[i].first_after = fo[i].n;
    }
    /* No primary until the promotion: the devices keep writing, /healthz says why it is
     * unhealthy. */
    int unhealthy = 0;
    char body[256], why[256] = "";
    while (test_now_ms() - crash_ms < FO_DETECT_MS) {
        fo_run(fo, 250, crash_ms);
        if (fo_health(body, sizeof body) == 503) {
            unhealthy++;
            snprintf(why, sizeof why, "%s", body);
        }
    }
    assert_true(unhealthy > 0);
    assert_non_null(strstr(why, "store: cannot reach PostgreSQL: "));
    int unhealthy_before = unhealthy;
    uint64_t promote_began_ms = test_now_ms() - crash_ms;
    assert_int_equal(pg_cluster_promote(&standby), 0);
    uint64_t promoted_ms = test_now_ms() - crash_ms;

    /* Writing on until every device has had an entry written after the crash acknowledged,
     * and a second more; /healthz asked meanwhile. */
    bool all_back = false;
    for (uint64_t waited = 0; !all_back && waited < WAIT_MS; waited += 250) {
        fo_run(fo, 250, crash_ms);
        unhealthy += fo_health(body, sizeof body) == 503;
        all_back = true;
        for (int i = 0; i < FO_DEVICES; i++)
            all_back = all_back && fo[i].outage_ms >= 0;
    }
    assert_true(all_back);
    fo_run(fo, 1000, crash_ms);
    /* The probe runs every 2 s: healthy again by then. */
    int health = -1;
    for (int i = 0; i < 40 && health != 200; i++) {
        health = fo_health(body, sizeof body);
        if (health != 200)
            test_sleep_ms(100);
    }
    assert_int_equal(health, 200);
    assert_non_null(strstr(body, "store: reachable"));

    /* Drained and converged. */
    int total = 0;
    for (int i = 0; i < FO_DEVICES; i++)
        total += fo[i].n;
    for (int i = 0; i < FO_DEVICES; i++) {
        for (uint32_t waited = 0; waited < WAIT_MS && pending(&fo[i].d) > 0; waited += 50)
            test_sleep_ms(50);
        assert_int_equal(pending(&fo[i].d), 0);
    }
    for (int i = 0; i < FO_DEVICES; i++)
        assert_int_equal(wait_device_count(&fo[i].d, "SELECT count(*) FROM contacts"
                                                     " WHERE name = 'failover'", total),
                         total);

    /* The promoted store, through the same conninfo. */
    sqlite3 *central = NULL;
    assert_int_equal(central_db_open(&fx, &central), 0);
    sqlite3_stmt *one = NULL;
    assert_int_equal(sqlite3_prepare_v2(central, "SELECT count(*) FROM contacts WHERE id = ?1",
                                        -1, &one, NULL),
                     SQLITE_OK);
    int acked_before_found = 0;
    for (int i = 0; i < FO_DEVICES; i++) {
        for (int k = 0; k < fo[i].n; k++) {
            sqlite3_bind_text(one, 1, fo[i].ids[k], -1, SQLITE_STATIC);
            assert_int_equal(sqlite3_step(one), SQLITE_ROW);
            int64_t n = sqlite3_column_int64(one, 0);
            sqlite3_reset(one);
            if (n != 1)
                fail_msg("device %d's row %d (%s acknowledged) is on the promoted store %lld"
                         " times", i, k, fo[i].acked_at_crash[k] ? "before the crash" : "later",
                         (long long)n);
            acked_before_found += fo[i].acked_at_crash[k];
        }
    }
    sqlite3_finalize(one);
    /* Every device holds the rows the store holds, no more, no fewer. */
    const char *all_ids = "SELECT group_concat(id) FROM (SELECT id FROM contacts"
                          " WHERE name = 'failover' ORDER BY id)";
    char *central_ids = fo_text(central, all_ids);
    for (int j = 0; j < FO_DEVICES; j++) {
        char *ids = fo_text(outpost_replica_db(fo[j].d.r), all_ids);
        if (strcmp(ids, central_ids) != 0)
            fail_msg("device %d's rows differ from the promoted store's", j);
        free(ids);
    }
    free(central_ids);
    assert_int_equal(count_rows(central, "SELECT count(*) FROM contacts"), total);
    assert_int_equal(count_rows(central, "SELECT count(*) FROM _outpost_applied"),
                     total - FO_DEVICES * (FO_BIG_TX - 1)); /* one per entry */
    assert_int_equal(count_rows(central, "SELECT count(*) FROM _outpost_changes"), total);
    assert_int_equal(count_rows(central, "SELECT count(*) FROM _outpost_conflicts"), 0);
    sqlite3_close(central);

    /* The same nodes throughout: each lost its connections and made new ones. */
    assert_true(fixture_log_contains(&fx, "store: lost the connection to PostgreSQL"));
    assert_true(fixture_log_contains(&fx, "store: reconnected to PostgreSQL"));
    assert_true(fixture_log_contains(&node2, "store: lost the connection to PostgreSQL"));
    assert_true(fixture_log_contains(&node2, "store: reconnected to PostgreSQL"));
    int64_t worst = 0, best = INT64_MAX;
    for (int i = 0; i < FO_DEVICES; i++) {
        worst = fo[i].outage_ms > worst ? fo[i].outage_ms : worst;
        best = fo[i].outage_ms < best ? fo[i].outage_ms : best;
    }
    print_message("failover: %d rows acknowledged before the crash (%d not yet), %d of them on"
                  " the promoted store; %d rows in all, each there once; promoted %" PRIu64
                  " ms after the crash (pg_ctl promote took %" PRIu64 " ms); outage seen by a"
                  " device %" PRId64 "..%" PRId64 " ms, %" PRId64 "..%" PRId64 " ms of it after"
                  " the promotion; /healthz 503 in %d polls before the promotion, %d after\n",
                  acked_before, unacked_at_crash, acked_before_found, total, promoted_ms,
                  promoted_ms - promote_began_ms, best, worst, best - (int64_t)promoted_ms,
                  worst - (int64_t)promoted_ms, unhealthy_before, unhealthy - unhealthy_before);
    assert_int_equal(acked_before_found, acked_before);
    assert_true(acked_before > 0);
    for (int i = 0; i < FO_DEVICES; i++)
        device_close(&fo[i].d);
    free(fo);
    assert_int_equal(fixture_stop_clean(&node2), 0);
}
#endif

static void test_daemon_stops_cleanly(void **state)
{
    (void)state;
    assert_int_equal(fixture_stop_clean(&fx), 0);
}

#if defined(OUTPOST_SYNC_FAILOVER)
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_devices_sync_through_a_failover),
        cmocka_unit_test(test_daemon_stops_cleanly), /* last */
    };
    if (!pg_cluster_available()) {
        printf("PostgreSQL binaries not installed: skipped\n");
        return 0;
    }
    return cmocka_run_group_tests(tests, setup, teardown);
}
#elif defined(OUTPOST_SYNC_ON_POSTGRESQL)
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offline_writes_arrive_by_themselves_and_only_in_scope),
        cmocka_unit_test(test_out_of_scope_write_is_refused_at_commit),
        cmocka_unit_test(
            test_key_claimed_by_another_team_is_quarantined_and_resubmitted_with_a_new_key),
        cmocka_unit_test(test_discard_is_explicit_and_recorded),
        /* cuts at random offsets: the wire's, whatever the engine (3.6 s of waits); the
         * resends after a cut that matter to the store are the mid-window case's */
        cmocka_unit_test(test_push_keeps_several_entries_in_flight),
        cmocka_unit_test(test_reject_with_later_entries_to_the_same_row_in_flight),
        cmocka_unit_test(test_next_page_is_asked_for_before_this_page_is_applied),
        cmocka_unit_test(test_rows_edited_twice_offline_all_come_back_over_several_pages),
        cmocka_unit_test(test_sync_now_mid_cycle_is_not_dropped),
        cmocka_unit_test(test_cut_mid_window_resends_without_duplicates),
        cmocka_unit_test(test_server_restart_mid_sync_loses_nothing),
        cmocka_unit_test(test_revoked_device_is_wiped),
        cmocka_unit_test(test_idle_connected_device_is_wiped_promptly_when_revoked),
        cmocka_unit_test(test_daemon_stops_cleanly), /* last */
    };
    if (!pg_cluster_available()) {
        printf("PostgreSQL binaries not installed: skipped\n");
        return 0;
    }
    return cmocka_run_group_tests(tests, setup, teardown);
}
#else
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offline_writes_arrive_by_themselves_and_only_in_scope),
        cmocka_unit_test(test_out_of_scope_write_is_refused_at_commit),
        cmocka_unit_test(test_compressed_sync_delivers_everything_in_fewer_bytes),
        cmocka_unit_test(test_round_trips_of_a_sync_are_counted),
        cmocka_unit_test(test_refused_write_is_quarantined_with_every_value_then_resubmitted),
        cmocka_unit_test(
            test_key_claimed_by_another_team_is_quarantined_and_resubmitted_with_a_new_key),
        cmocka_unit_test(test_resubmitted_update_writes_only_what_the_worker_changed),
        cmocka_unit_test(test_discard_is_explicit_and_recorded),
        cmocka_unit_test(test_rewound_device_counter_is_stopped_not_dropped),
        cmocka_unit_test(test_cuts_at_random_offsets_lose_and_duplicate_nothing),
        cmocka_unit_test(test_push_keeps_several_entries_in_flight),
        cmocka_unit_test(test_reject_with_later_entries_to_the_same_row_in_flight),
        cmocka_unit_test(test_next_page_is_asked_for_before_this_page_is_applied),
        cmocka_unit_test(test_rows_edited_twice_offline_all_come_back_over_several_pages),
        cmocka_unit_test(test_sync_now_mid_cycle_is_not_dropped),
        cmocka_unit_test(test_cut_mid_window_resends_without_duplicates),
        cmocka_unit_test(test_server_restart_mid_sync_loses_nothing),
        cmocka_unit_test(test_idle_engine_sleeps_until_needed),
        cmocka_unit_test(test_idle_connection_is_kept_past_the_server_idle_timeout),
        cmocka_unit_test(test_automatic_retry_finds_the_server_when_it_returns),
        cmocka_unit_test(test_failed_sync_is_reported_by_the_next_hello),
        cmocka_unit_test(test_wrong_server_certificate_is_refused),
        cmocka_unit_test(test_intermediate_ca_chain_is_served),
        cmocka_unit_test(test_next_sync_resumes_the_tls_session),
        cmocka_unit_test(test_revoked_device_is_refused_on_a_resumed_session),
        cmocka_unit_test(test_ticket_is_not_resumed_across_a_certificate_change),
        cmocka_unit_test(test_revoked_device_is_wiped),
        cmocka_unit_test(test_idle_connected_device_is_wiped_promptly_when_revoked),
        cmocka_unit_test(test_idle_connected_device_stops_promptly_when_its_worker_is_disabled),
        cmocka_unit_test(test_device_takes_messages_up_to_the_advertised_limit),
        cmocka_unit_test(test_first_flight_across_a_schema_upgrade_loses_nothing),
        cmocka_unit_test(test_daemon_stops_cleanly), /* last */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
#endif
