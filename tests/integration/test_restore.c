/*
 * The central store goes back in time, end to end: a real outpostd over real TLS, devices
 * through liboutpost, the operator's own outpost-admin backup and restore. What is asserted is
 * what an office would check afterwards: the server and every device hold every record, row by
 * row, and no device said "synced" while the server lacked its records. Also: one outpostd per
 * store, and an outpostd killed (SIGKILL) in the middle of a device's multi-page pull.
 *
 * Built a second time with OUTPOST_RESTORE_ON_POSTGRESQL as test_restore_postgresql: outpostd
 * serves from a private PostgreSQL cluster (tests/unit/pg_cluster), the office backs it up with
 * pg_dump and restores with pg_restore, then marks it with outpost-admin restored.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <outpost.h>
#include <sqlite3.h>

#include "daemon_fixture.h"
#include "ovalue.h"
#include "strf.h"
#include "test_util.h"
#include "testclient.h"
#include "unit/replica_format1.h"

#ifdef OUTPOST_RESTORE_ON_POSTGRESQL
#include <libpq-fe.h>

#include "pg_cluster.h"

static pg_cluster cluster;
static char pg_store[460]; /* --store postgresql:CONNINFO */
static char pg_key[400];   /* --audit-key */
#endif

#ifndef OUTPOST_ADMIN_PATH
#error "OUTPOST_ADMIN_PATH must name the outpost-admin binary"
#endif

#define WAIT_MS 20000u

typedef struct device {
    char path[400];
    outpost_replica *r;
    outpost_sync *sync;
} device;

static daemon_fixture fx;
static char admin_out[8192];

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

/* outpost-admin --store STORE CMD ARG: exit status, output in admin_out. */
static int admin_on(const char *store_path, const char *cmd, const char *arg)
{
    const char *argv[] = {OUTPOST_ADMIN_PATH, "--store", store_path, cmd, arg, NULL};
    return test_run(argv, admin_out, sizeof admin_out);
}

static int admin(const char *cmd, const char *arg)
{
#ifdef OUTPOST_RESTORE_ON_POSTGRESQL
    const char *argv[] = {OUTPOST_ADMIN_PATH, "--store", pg_store, "--audit-key", pg_key, cmd,
                          arg, NULL};
    return test_run(argv, admin_out, sizeof admin_out);
#else
    return admin_on(fx.store_path, cmd, arg);
#endif
}

static const uint8_t device_key[OUTPOST_KEY_BYTES] = {
    0x72, 0x65, 0x73, 0x74, 0x6f, 0x72, 0x65, 0x2d, 0x74, 0x65, 0x73, 0x74, 0x2d, 0x6b, 0x65, 0x79,
    0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98, 0xa9, 0xba, 0xcb, 0xdc, 0xed, 0xfe, 0x0f};

static void device_enroll(device *d, const char *name, const char *worker)
{
    char err[256], code[32], url[64];
    memset(d, 0, sizeof *d);
    snprintf(d->path, sizeof d->path, "%s/%s.db", fx.dir, name);
    outpost_config cfg = {.path = d->path, .secret.key = device_key};
    assert_int_equal(outpost_replica_open(&cfg, &d->r, err, sizeof err), OUTPOST_OK);
    assert_int_equal(fixture_enroll_code(&fx, worker, code), 0);
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/sync", fx.port);
    outpost_enroll_options eo = {.url = url, .code = code, .ca_pem = slurp(fx.ca_path)};
    int rc = outpost_enroll(d->r, &eo);
    if (rc != OUTPOST_OK)
        fail_msg("enroll: %s", outpost_errmsg(d->r));
}

static void device_start(device *d, uint32_t page_rows)
{
    outpost_sync_config cfg = {.stay_connected = 1, .debounce_ms = 50, .retry_base_ms = 100,
                               .retry_cap_ms = 500, .pull_page_rows = page_rows};
    assert_int_equal(outpost_sync_start(d->r, &cfg, &d->sync), OUTPOST_OK);
}

static void device_stop(device *d)
{
    outpost_sync_stop(d->sync);
    d->sync = NULL;
}

static void device_close(device *d)
{
    device_stop(d);
    outpost_replica_close(d->r);
    d->r = NULL;
}

static void write_contacts(device *d, int n, const char *name)
{
    assert_int_equal(outpost_tx_begin(d->r), OUTPOST_OK);
    for (int i = 0; i < n; i++) {
        char id[OUTPOST_UUID_TEXT_SIZE], note[64];
        assert_int_equal(outpost_uuid_make(id), OUTPOST_OK);
        snprintf(note, sizeof note, "%s #%d", name, i);
        outpost_value params[3] = {ov_text(id), ov_text(name), ov_text(note)};
        int rc = outpost_exec(d->r,
                              "INSERT INTO contacts (id, team_id, name, note) VALUES (?1, 't1',"
                              " ?2, ?3)",
                              params, 3);
        if (rc != OUTPOST_OK)
            fail_msg("write: %s", outpost_errmsg(d->r));
    }
    assert_int_equal(outpost_tx_commit(d->r, NULL), OUTPOST_OK);
}

/* Every contact, one line per row in key order: what "holds every record" is checked on. */
static char *dump_rows(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    sqlite3_str *out = sqlite3_str_new(NULL);
    if (sqlite3_prepare_v2(db,
                           "SELECT id, team_id, coalesce(name, '-'), coalesce(note, '-')"
                           " FROM contacts ORDER BY id",
                           -1, &st, NULL) == SQLITE_OK)
        while (sqlite3_step(st) == SQLITE_ROW)
            sqlite3_str_appendf(out, "%s|%s|%s|%s\n", sqlite3_column_text(st, 0),
                                sqlite3_column_text(st, 1), sqlite3_column_text(st, 2),
                                sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    return sqlite3_str_finish(out);
}

static sqlite3 *central_open(void)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(fx.store_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

#ifdef OUTPOST_RESTORE_ON_POSTGRESQL
/* One statement on the store's database (or on conninfo's, when given); NULL when it failed. */
static PGresult *central_query(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo ? conninfo : fx.conninfo);
    PGresult *r = PQexec(c, sql);
    ExecStatusType status = PQresultStatus(r);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
        PQclear(r);
        r = NULL;
    }
    PQfinish(c);
    return r;
}

/* dump_rows of the central store: PostgreSQL keeps the values encoded (read through init's
 * value functions); the keys are UUIDs of one length, so their encodings sort as their text. */
static char *central_rows(void)
{
    PGresult *r = central_query(NULL, "SELECT outpost_value_text(id) || '|' ||"
                                      " outpost_value_text(team_id) || '|' ||"
                                      " coalesce(outpost_value_text(name), '-') || '|' ||"
                                      " coalesce(outpost_value_text(note), '-')"
                                      " FROM contacts ORDER BY id");
    assert_non_null(r);
    sqlite3_str *out = sqlite3_str_new(NULL);
    for (int i = 0; i < PQntuples(r); i++)
        sqlite3_str_appendf(out, "%s\n", PQgetvalue(r, i, 0));
    PQclear(r);
    return sqlite3_str_finish(out);
}

static int64_t central_int(const char *sql)
{
    PGresult *r = central_query(NULL, sql);
    int64_t n = -1;
    if (r != NULL && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return n;
}
#else
static char *central_rows(void)
{
    sqlite3 *db = central_open();
    char *rows = dump_rows(db);
    sqlite3_close(db);
    return rows;
}
#endif

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

#ifndef OUTPOST_RESTORE_ON_POSTGRESQL
static int64_t central_int(const char *sql)
{
    sqlite3 *db = central_open();
    int64_t n = query_int(db, sql);
    sqlite3_close(db);
    return n;
}
#endif

static int64_t device_int(device *d, const char *sql)
{
    return query_int(outpost_replica_db(d->r), sql);
}

static uint64_t pending(device *d)
{
    outpost_status st;
    assert_int_equal(outpost_status_get(d->r, &st), OUTPOST_OK);
    return st.pending;
}

static uint64_t cursor_of(device *d)
{
    outpost_status st;
    assert_int_equal(outpost_status_get(d->r, &st), OUTPOST_OK);
    return st.cursor;
}

/* Waits until the device holds n contacts and has nothing pending; returns whether it did. */
static bool wait_settled(device *d, int64_t n)
{
    for (uint32_t waited = 0; waited < WAIT_MS; waited += 50) {
        if (device_int(d, "SELECT count(*) FROM contacts") == n && pending(d) == 0)
            return true;
        test_sleep_ms(50);
    }
    return false;
}

static bool wait_central(int64_t n)
{
    for (uint32_t waited = 0; waited < WAIT_MS; waited += 50) {
        if (central_int("SELECT count(*) FROM contacts") == n)
            return true;
        test_sleep_ms(50);
    }
    return false;
}

/* The device holds exactly the central rows, row by row. */
static void assert_same_rows(device *d, const char *central)
{
    char *mine = dump_rows(outpost_replica_db(d->r));
    assert_string_equal(mine, central);
    sqlite3_free(mine);
}

static int setup(void **state)
{
    (void)state;
#ifdef OUTPOST_RESTORE_ON_POSTGRESQL
    if (pg_cluster_start(&cluster) != 0 ||
        fixture_create_postgresql(&fx, NULL, cluster.conninfo) != 0)
        return -1;
    snprintf(pg_store, sizeof pg_store, "postgresql:%s", fx.conninfo);
    snprintf(pg_key, sizeof pg_key, "%s.audit-key", fx.store_path);
#else
    if (fixture_create(&fx, NULL) != 0)
        return -1;
#endif
    if (fixture_start(&fx) != 0 || fixture_pin_port(&fx) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fixture_destroy(&fx);
#ifdef OUTPOST_RESTORE_ON_POSTGRESQL
    pg_cluster_stop(&cluster);
#endif
    return 0;
}

/* ---- Cases ------------------------------------------------------------------------------ */

static void test_second_outpostd_on_a_store_refuses_to_start(void **state)
{
    (void)state;
    char out[4096];
    int status = fixture_run_outpostd(fx.config_path, out, sizeof out);
    assert_int_not_equal(status, 0);
    if (!strstr(out, "an outpostd already serves this store, and only one may"))
        fail_msg("second outpostd said: %s", out);
    /* An outsider's finding: the lock went by the name given, so the same store reached through
     * a symbolic link was served twice, and restored under the running daemon. */
    char link[400], config[400], backup[400];
    snprintf(link, sizeof link, "%s/link-to-central.db", fx.dir);
    snprintf(config, sizeof config, "%s/through-link.ini", fx.dir);
    snprintf(backup, sizeof backup, "%s/central-backup-link.db", fx.dir);
    assert_int_equal(symlink(fx.store_path, link), 0);
    assert_int_equal(systemf("sed 's|^path = .*|path = %s|' %s > %s", link, fx.config_path, config),
                     0);
    status = fixture_run_outpostd(config, out, sizeof out);
    assert_int_not_equal(status, 0);
    if (!strstr(out, "an outpostd already serves this store, and only one may"))
        fail_msg("second outpostd through a link said: %s", out);
    /* Another outsider's finding: a hard link (or a bind mount of the file) in another
     * directory has its own STORE.lock, so two outpostd ran on one file and lost writes. The
     * store file itself is locked as well. */
    char hard_dir[400], hard[480];
    snprintf(hard_dir, sizeof hard_dir, "%s/elsewhere", fx.dir);
    snprintf(hard, sizeof hard, "%s/central.db", hard_dir);
    snprintf(config, sizeof config, "%s/through-hard-link.ini", fx.dir);
    assert_int_equal(mkdir(hard_dir, 0700), 0);
    assert_int_equal(systemf("ln %s %s && cp -p %s.audit-key %s.audit-key", fx.store_path, hard,
                             fx.store_path, hard),
                     0);
    assert_int_equal(systemf("sed 's|^path = .*|path = %s|' %s > %s", hard, fx.config_path, config),
                     0);
    status = fixture_run_outpostd(config, out, sizeof out);
    assert_int_not_equal(status, 0);
    if (!strstr(out, "an outpostd already serves this store, and only one may") ||
        !strstr(out, hard))
        fail_msg("second outpostd through a hard link said: %s", out);
    assert_int_equal(systemf("rm %s %s.audit-key", hard, hard), 0);
    if (admin("backup", backup) != 0)
        fail_msg("backup said: %s", admin_out);
    assert_int_equal(admin_on(link, "restore", backup), 3);
    if (!strstr(admin_out, "stop outpostd before restoring"))
        fail_msg("restore through a link while served said: %s", admin_out);
    struct stat sb;
    assert_int_equal(lstat(link, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    /* the first one still serves, and online admin commands still work beside it */
    device d;
    device_enroll(&d, "lonely", "w1");
    outpost_replica_close(d.r);
}

/* Writes n contacts named "PHASE-TAG" on d. */
static void write_named(device *d, int n, const char *phase, const char *tag)
{
    char name[64];
    snprintf(name, sizeof name, "%s-%s", phase, tag);
    write_contacts(d, n, name);
}

/* Backup, more records from two devices, restore, more records; then the server and both
 * devices hold every record. lose_store: the store file is gone before the restore (a dead
 * disk), so nothing moves the server sequence forward and only the epoch tells the devices. */
/* With format1, device a's replica is turned back into format 1 while the store is restored
 * (as if its app had been updated to this library then): opened again, it is upgraded and
 * still sends the store what the store lost. */
static void restore_scenario(bool lose_store, bool format1, const char *ta, const char *tb)
{
    char backup[400], own[16];
    snprintf(backup, sizeof backup, "%s/central-backup-%s.db", fx.dir, ta);
    device a, b;
    device_enroll(&a, ta, "w1");
    device_enroll(&b, tb, "w12");
    device_start(&a, 0);
    device_start(&b, 0);
    int64_t base = central_int("SELECT count(*) FROM contacts");

    /* Before the backup: two records from each device, everywhere. */
    write_named(&a, 2, "before", ta);
    write_named(&b, 2, "before", tb);
    assert_true(wait_central(base + 4));
    assert_true(wait_settled(&a, base + 4));
    assert_true(wait_settled(&b, base + 4));
    uint64_t epoch_before = (uint64_t)central_int("SELECT epoch FROM _outpost_store");

    /* The operator takes a backup while outpostd serves. */
    assert_int_equal(admin("backup", backup), 0);
    struct stat sb;
    assert_int_equal(stat(backup, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    /* After the backup: three more from each, in one entry and in several. */
    write_named(&a, 3, "after", ta);
    for (int i = 0; i < 3; i++)
        write_named(&b, 1, "after", tb);
    assert_true(wait_central(base + 10));
    assert_true(wait_settled(&a, base + 10));
    assert_true(wait_settled(&b, base + 10));

    /* Restore is refused while outpostd serves the store. */
    assert_int_equal(admin("restore", backup), 3);
    if (!strstr(admin_out, "only one may; stop outpostd before restoring"))
        fail_msg("restore while served said: %s", admin_out);
    assert_int_equal(central_int("SELECT count(*) FROM contacts"), base + 10);

    /* The office restores the backup. */
    device_stop(&a);
    device_stop(&b);
    if (format1) {
        assert_int_equal(replica_format1_make(outpost_replica_db(a.r)), SQLITE_OK);
        assert_int_equal(device_int(&a, "SELECT count(*) FROM _outpost_sent"
                                        " WHERE length(changeset) > 0"), 2);
        outpost_replica_close(a.r);
        outpost_config cfg = {.path = a.path, .secret.key = device_key};
        char err[256];
        assert_int_equal(outpost_replica_open(&cfg, &a.r, err, sizeof err), OUTPOST_OK);
        assert_int_equal(device_int(&a, "SELECT format FROM _outpost_state"), 2);
    }
    assert_int_equal(fixture_stop(&fx), 0);
    if (lose_store) {
        static const char *const sfx[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            char p[400];
            snprintf(p, sizeof p, "%s%s", fx.store_path, sfx[i]);
            unlink(p);
        }
    }
    assert_int_equal(admin("restore", backup), 0);
    char said[64];
    snprintf(said, sizeof said, "(backup taken in epoch %llu)", (unsigned long long)epoch_before);
    if (!strstr(admin_out, said))
        fail_msg("restore said: %s", admin_out);
    uint64_t epoch_after = (uint64_t)central_int("SELECT epoch FROM _outpost_store");
    /* the restore is on record in the restored log (an insider's pass found no trace of it) */
    assert_int_equal(central_int("SELECT count(*) FROM _outpost_audit WHERE id ="
                                 " (SELECT max(id) FROM _outpost_audit) AND action ="
                                 " 'store.restore' AND actor LIKE 'os:%'"),
                     1);
    assert_true(epoch_after > epoch_before);
    if (!lose_store)
        assert_int_equal(epoch_after, epoch_before + 1);
    assert_int_equal(central_int("SELECT count(*) FROM contacts"), base + 4);
    assert_int_equal(fixture_start(&fx), 0);

    /* Workers keep writing, offline and online. */
    write_named(&a, 1, "restored", ta);
    write_named(&b, 1, "restored", tb);
    /* a comes back first: its new record gets a server sequence that b had already passed
     * before the restore (when the store was lost, nothing moved the sequence forward) */
    device_start(&a, 0);
    /* A device that says it synced has every record it wrote on the server (records of b that
     * a pulled before the restore come back when b re-sends them). */
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_int_equal(pending(&a), 0);
    char *central = central_rows();
    char *mine = dump_rows(outpost_replica_db(a.r));
    snprintf(own, sizeof own, "-%s|", ta);
    int n_own = 0;
    for (char *line = strtok(mine, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strstr(line, own))
            continue;
        n_own++;
        if (!strstr(central, line))
            fail_msg("device %s reported synced, but the server lacks: %s", ta, line);
    }
    assert_int_equal(n_own, 2 + 3 + 1);
    sqlite3_free(mine);
    sqlite3_free(central);
    device_start(&b, 0);

    write_named(&b, 1, "online", tb);
    assert_true(wait_central(base + 13));
    assert_true(wait_settled(&a, base + 13));
    assert_true(wait_settled(&b, base + 13));
    central = central_rows();
    assert_same_rows(&a, central);
    assert_same_rows(&b, central);
    /* every record written anywhere, once */
    assert_int_equal(central_int("SELECT count(DISTINCT id) FROM contacts"), base + 13);
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM contacts WHERE name IN ('after-%s', 'after-%s')", ta, tb);
    assert_int_equal(central_int(sql), 6);
    sqlite3_free(central);
    /* both devices now know the store's new life */
    assert_int_equal((uint64_t)device_int(&a, "SELECT epoch FROM _outpost_server"), epoch_after);
    assert_int_equal((uint64_t)device_int(&b, "SELECT epoch FROM _outpost_server"), epoch_after);
    device_close(&a);
    device_close(&b);
}

/* An outsider's finding: a device that pulled another device's edit before a restore kept it
 * after the restore, though the restored store holds the older version and the editing device
 * never came back (a lost phone). The store sends no device its own unaltered rows (echo
 * suppression), so the re-pull from 0 skipped the row; the replica disagreed with the store
 * while every status said synced. */
static void test_a_pulled_edit_the_restored_store_lacks_is_undone(void **state)
{
    (void)state;
    char backup[400];
    snprintf(backup, sizeof backup, "%s/central-backup-echo.db", fx.dir);
    device a, b;
    device_enroll(&a, "a3", "w1");
    device_enroll(&b, "b3", "w1");
    device_start(&a, 0);
    device_start(&b, 0);
    int64_t base = central_int("SELECT count(*) FROM contacts");

    /* a records a contact; everyone has it; the office takes a backup */
    write_named(&a, 1, "echo", "a3");
    assert_true(wait_central(base + 1));
    assert_true(wait_settled(&b, base + 1));
    assert_int_equal(admin("backup", backup), 0);

    /* b edits it, a pulls the edit */
    assert_int_equal(outpost_exec(b.r, "UPDATE contacts SET note = 'edited by b' WHERE name ="
                                       " 'echo-a3'",
                                  NULL, 0),
                     OUTPOST_OK);
    for (uint32_t waited = 0; waited < WAIT_MS; waited += 50) {
        if (device_int(&a, "SELECT count(*) FROM contacts WHERE note = 'edited by b'") == 1)
            break;
        test_sleep_ms(50);
    }
    assert_int_equal(device_int(&a, "SELECT count(*) FROM contacts WHERE note = 'edited by b'"),
                     1);

    /* b is lost; the office restores the backup; a syncs again */
    device_close(&b);
    device_stop(&a);
    assert_int_equal(fixture_stop(&fx), 0);
    assert_int_equal(admin("restore", backup), 0);
    assert_int_equal(fixture_start(&fx), 0);
    device_start(&a, 0);
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    for (uint32_t waited = 0; waited < WAIT_MS; waited += 50) {
        if (device_int(&a, "SELECT count(*) FROM contacts WHERE note = 'edited by b'") == 0)
            break;
        test_sleep_ms(50);
    }
    char *central = central_rows();
    assert_same_rows(&a, central);
    sqlite3_free(central);
    device_close(&a);
}

static bool wait_rows(device *d, int64_t n, const char *sql)
{
    for (uint32_t waited = 0; waited < WAIT_MS; waited += 50) {
        if (device_int(d, sql) == n)
            return true;
        test_sleep_ms(50);
    }
    return false;
}

static void test_restored_store_is_noticed_and_healed(void **state)
{
    (void)state;
    restore_scenario(false, false, "a1", "b1");
}

static void test_store_lost_and_restored_is_noticed_and_healed(void **state)
{
    (void)state;
    restore_scenario(true, false, "a2", "b2");
}

static void test_replica_upgraded_from_format1_resends_to_a_restored_store(void **state)
{
    (void)state;
    restore_scenario(false, true, "up-a", "up-b");
}

static void test_outpostd_killed_mid_pull_device_ends_with_central_rows(void **state)
{
    (void)state;
    device a, c;
    device_enroll(&a, "kill-a", "w1");
    device_start(&a, 0);
    int64_t total = central_int("SELECT count(*) FROM contacts") + 600;
    write_contacts(&a, 600, "bulk");
    assert_true(wait_central(total));
    assert_true(wait_settled(&a, total));
    device_stop(&a);
    uint64_t head = (uint64_t)central_int("SELECT value FROM _outpost_meta WHERE key = 'server_seq'");
    assert_true(total >= 600);

    /* A new device pulls everything in small pages; outpostd dies half way. */
    device_enroll(&c, "kill-c", "w1");
    device_start(&c, 5);
    uint64_t at_kill = 0;
    for (uint32_t waited = 0; waited < WAIT_MS * 10; waited++) {
        uint64_t cur = cursor_of(&c);
        if (cur > head / 3 && cur < head) {
            fixture_kill(&fx);
            at_kill = cursor_of(&c);
            break;
        }
        usleep(100);
    }
    /* the kill landed mid-pull: some pages applied, not all */
    assert_true(at_kill > 0);
    assert_true(at_kill < head);
    int64_t held = device_int(&c, "SELECT count(*) FROM contacts");
    assert_true(held > 0 && held < total);

    assert_int_equal(fixture_start(&fx), 0);
    outpost_sync_network_changed(c.sync);
    assert_true(wait_settled(&c, total));
    assert_int_equal(outpost_sync_wait(c.sync, 0, WAIT_MS), OUTPOST_OK);
    char *central = central_rows();
    assert_same_rows(&c, central);
    sqlite3_free(central);
    assert_int_equal(cursor_of(&c),
                     (uint64_t)central_int("SELECT value FROM _outpost_meta WHERE key = 'server_seq'"));
    outpost_replica_close(a.r);
    device_close(&c);
}

/* On the wire: WELCOME names the store and its life; a PULL from beyond the store's newest
 * sequence is ERROR 14, retryable, and ends the session. */
static void test_wire_store_identity_and_cursor_ahead(void **state)
{
    (void)state;
    test_device dev;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &dev), 0);
    testclient *tc = NULL;
    assert_int_equal(testclient_connect(fx.port, fx.ca_path, 10000, &tc, NULL, 0), 0);
    proto_msg msg, *reply = NULL;
    memset(&msg, 0, sizeof msg);
    msg.type = PROTO_MSG_HELLO;
    msg.u.hello.version = PROTO_VERSION;
    msg.u.hello.device_id = dev.id;
    memcpy(msg.u.hello.secret, dev.secret, sizeof dev.secret);
    assert_int_equal(testclient_send(tc, &msg, 10000), 0);
    assert_int_equal(testclient_recv(tc, 10000, &reply), 0);
    assert_int_equal(reply->type, PROTO_MSG_WELCOME);
    assert_true(reply->u.welcome.has_store);
    assert_int_equal(strlen(reply->u.welcome.store.id), 36);
    sqlite3 *db = central_open();
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT store_id, epoch FROM _outpost_store", -1,
                                        &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal(reply->u.welcome.store.id, (const char *)sqlite3_column_text(st, 0));
    assert_int_equal(reply->u.welcome.store.epoch, (uint64_t)sqlite3_column_int64(st, 1));
    sqlite3_finalize(st);
    sqlite3_close(db);
    uint64_t head = reply->u.welcome.server_seq;
    proto_msg_free(reply);

    memset(&msg, 0, sizeof msg);
    msg.type = PROTO_MSG_PULL;
    msg.u.pull.cursor = head + 1000;
    assert_int_equal(testclient_send(tc, &msg, 10000), 0);
    assert_int_equal(testclient_recv(tc, 10000, &reply), 0);
    assert_int_equal(reply->type, PROTO_MSG_ERROR);
    assert_int_equal(reply->u.error.code, PROTO_ERR_CURSOR_AHEAD);
    assert_true(reply->u.error.retryable);
    char expect[300];
    snprintf(expect, sizeof expect,
             "cursor %llu is beyond this store's newest sequence %llu: the store went back in "
             "time (restored from a backup, or failed over to a standby that lacked "
             "commits); pull again from 0",
             (unsigned long long)(head + 1000), (unsigned long long)head);
    assert_string_equal(reply->u.error.message, expect);
    proto_msg_free(reply);
    /* like every ERROR, the session's last message */
    assert_true(testclient_wait_closed(tc, 10000));
    testclient_close(tc);
    /* the operator hears that acknowledged writes were lost, and what to do */
    char line[120];
    snprintf(line, sizeof line, "store: device %s pulled further than this store's newest",
             dev.id);
    assert_true(fixture_log_contains(&fx, line));
}

#ifdef OUTPOST_RESTORE_ON_POSTGRESQL
/* A PostgreSQL program's client tool (pg_dump, pg_restore) on the store's database. */
static int pg_tool(const char *tool, const char *arg1, const char *arg2, const char *file)
{
    char path[300], out[4096];
    snprintf(path, sizeof path, "%s/%s", cluster.bin, tool);
    const char *argv[] = {path, "-d", fx.conninfo, arg1, arg2, file, NULL};
    int status = test_run(argv, out, sizeof out);
    if (status != 0)
        fprintf(stderr, "%s: %s\n", tool, out);
    return status;
}

/* The office backs the PostgreSQL store up with pg_dump while outpostd serves, devices go on
 * syncing, the database is lost and restored from the dump with pg_restore. outpostd refuses
 * the restored store until the operator runs outpost-admin restored; then every device heals:
 * a and b send again what they pushed after the dump, and c, which only pulled after the dump
 * (its cursor past the restored store's newest sequence) and pushed nothing, pulls again from 0
 * after a has written more than the store lost, so that only the new epoch can tell c. */
static void test_store_restored_with_pg_restore_is_marked_and_healed(void **state)
{
    (void)state;
    char dump[400], sql[200];
    snprintf(dump, sizeof dump, "%s/central.dump", fx.dir);
    device a, b, c;
    device_enroll(&a, "pa", "w1");
    device_enroll(&b, "pb", "w12");
    device_enroll(&c, "pc", "w1");
    device_start(&a, 0);
    device_start(&b, 0);
    device_start(&c, 0);
    write_named(&a, 2, "before", "pa");
    write_named(&b, 2, "before", "pb");
    assert_true(wait_central(4));
    assert_true(wait_settled(&a, 4) && wait_settled(&b, 4) && wait_settled(&c, 4));
    uint64_t epoch_before = (uint64_t)central_int("SELECT epoch FROM _outpost_store");

    /* The dump, taken while outpostd serves. */
    assert_int_equal(pg_tool("pg_dump", "-Fc", "-f", dump), 0);

    /* After it: three records from a in one entry, three from b in three; c pulls them all. */
    write_named(&a, 3, "after", "pa");
    for (int i = 0; i < 3; i++)
        write_named(&b, 1, "after", "pb");
    assert_true(wait_central(10));
    assert_true(wait_settled(&a, 10) && wait_settled(&b, 10) && wait_settled(&c, 10));
    uint64_t head = (uint64_t)central_int("SELECT value FROM _outpost_meta WHERE key = 'server_seq'");

    /* The database is lost; the office restores the dump into a new one. */
    device_stop(&a);
    device_stop(&b);
    device_stop(&c);
    assert_int_equal(fixture_stop(&fx), 0);
    char maintenance[500];
    snprintf(maintenance, sizeof maintenance, "%s dbname=postgres", fx.conninfo);
    PGresult *r = central_query(maintenance, "DROP DATABASE outpost");
    assert_non_null(r);
    PQclear(r);
    assert_non_null(r = central_query(maintenance, "CREATE DATABASE outpost"));
    PQclear(r);
    assert_int_equal(pg_tool("pg_restore", "--no-owner", "--exit-on-error", dump), 0);
    assert_int_equal(central_int("SELECT count(*) FROM contacts"), 4);
    assert_int_equal((uint64_t)central_int("SELECT epoch FROM _outpost_store"), epoch_before);

    /* outpostd will not serve it before the operator has marked it. */
    if (fixture_start(&fx) == 0) {
        fixture_stop(&fx);
        fail_msg("outpostd served the restored store before it was marked");
    }
    if (!fixture_log_contains(&fx, "this PostgreSQL database is not where the store was last "
                                   "served: it was kept in another database of this cluster") ||
        !fixture_log_contains(&fx, "run outpost-admin restored"))
        fail_msg("outpostd on the unmarked restored store did not say why (%s)", fx.log_path);
    /* other commands work, and say so */
    assert_int_equal(admin("devices", NULL), 0);
    if (!strstr(admin_out, "warning: this PostgreSQL database is not where the store was last "
                           "served"))
        fail_msg("devices on the unmarked restored store said: %s", admin_out);

    assert_int_equal(admin("restored", NULL), 0);
    if (!strstr(admin_out, "marked restored: epoch"))
        fail_msg("restored said: %s", admin_out);
    uint64_t epoch_after = (uint64_t)central_int("SELECT epoch FROM _outpost_store");
    assert_true(epoch_after > epoch_before);
    assert_int_equal(central_int("SELECT count(*) FROM _outpost_audit WHERE id ="
                                 " (SELECT max(id) FROM _outpost_audit) AND action ="
                                 " 'store.restore' AND actor LIKE 'os:%'"),
                     1);
    /* the same store, its sequence where the dump left it: behind c's cursor */
    uint64_t restored_head =
        (uint64_t)central_int("SELECT value FROM _outpost_meta WHERE key = 'server_seq'");
    assert_true(restored_head < head);
    assert_int_equal(admin("audit", "verify"), 0);

    /* Marked: outpostd serves it. a comes back first and writes more than the store lost, so
     * the store's newest sequence passes c's cursor again. */
    assert_int_equal(fixture_start(&fx), 0);
    device_start(&a, 0);
    write_named(&a, (int)(head - restored_head) + 2, "restored", "pa");
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_int_equal(pending(&a), 0);
    int64_t n_new = (int64_t)(head - restored_head) + 2;
    assert_true(wait_central(4 + 3 + n_new));
    assert_true((uint64_t)central_int("SELECT value FROM _outpost_meta WHERE key = 'server_seq'") >
                head);
    device_start(&b, 0);
    device_start(&c, 0);
    int64_t total = 4 + 6 + n_new;
    assert_true(wait_central(total));
    bool settled = wait_settled(&a, total) && wait_settled(&b, total);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM contacts WHERE name = 'restored-pa'");
    if (!wait_rows(&c, n_new, sql) || !wait_settled(&c, total))
        fail_msg("c holds %lld of a's %lld records written after the restore, %lld in all of "
                 "%lld: it missed what was numbered below its old cursor",
                 (long long)device_int(&c, sql), (long long)n_new,
                 (long long)device_int(&c, "SELECT count(*) FROM contacts"), (long long)total);
    assert_true(settled);
    char *central = central_rows();
    assert_same_rows(&a, central);
    assert_same_rows(&b, central);
    assert_same_rows(&c, central);
    sqlite3_free(central);
    assert_int_equal(central_int("SELECT count(DISTINCT id) FROM contacts"), total);
    assert_int_equal(central_int("SELECT count(*) FROM contacts WHERE outpost_value_text(name)"
                                 " IN ('after-pa', 'after-pb')"),
                     6);
    assert_int_equal((uint64_t)device_int(&c, "SELECT epoch FROM _outpost_server"), epoch_after);
    device_close(&a);
    device_close(&b);
    device_close(&c);
}

/* /healthz as curl sees it (as test_ops asks it): the status, and the body in out. */
static int healthz(char *out, size_t out_size)
{
    char *body = strf("%s/healthz.txt", fx.dir);
    char *cmd = strf("curl -s -o %s -w '%%{http_code}' --cacert %s --resolve "
                     "localhost:%u:127.0.0.1 https://localhost:%u/healthz",
                     body, fx.ca_path, (unsigned)fx.port, (unsigned)fx.port);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char code[16] = "";
    if (fgets(code, sizeof code, p) == NULL)
        code[0] = 0;
    pclose(p);
    snprintf(out, out_size, "%s", slurp(body));
    free(cmd);
    free(body);
    return atoi(code);
}

/* pg_restore --clean into the database a running outpostd serves (the outsider's finding 7):
 * within its 2 s probe outpostd stops serving devices (ERROR 9, retry, "store is
 * unavailable"), /healthz says why, and the log tells the operator to run restored; a new HELLO
 * is refused too. restored is refused while it runs; after a
 * restart on the marked store devices sync again. */
static void test_pg_restore_into_the_served_database_stops_serving(void **state)
{
    (void)state;
    char dump[400], said[400];
    snprintf(dump, sizeof dump, "%s/live.dump", fx.dir);
    test_device dev;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &dev), 0);
    testclient *tc = fixture_hello(&fx, &dev, NULL);
    assert_non_null(tc);
    assert_int_equal(healthz(said, sizeof said), 200);

    assert_int_equal(pg_tool("pg_dump", "-Fc", "-f", dump), 0);
    assert_int_equal(pg_tool("pg_restore", "--clean", "--if-exists", dump), 0);

    proto_msg *reply = NULL;
    assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ERROR, 10000, &reply), 0);
    assert_int_equal(reply->u.error.code, PROTO_ERR_INTERNAL);
    assert_true(reply->u.error.retryable);
    assert_string_equal(reply->u.error.message,
                        "the server's store is unavailable (its database was replaced): try "
                        "again later");
    proto_msg_free(reply);
    assert_true(testclient_wait_closed(tc, 10000));
    testclient_close(tc);
    assert_int_equal(healthz(said, sizeof said), 503);
    if (!strstr(said, "store: unavailable: the store's PostgreSQL database was replaced while "
                      "outpostd served it: its tables were made again"))
        fail_msg("/healthz said: %s", said);
    if (!fixture_log_contains(&fx, "outpostd no longer serves devices: if a backup was restored "
                                   "into the database, run outpost-admin restored on it"))
        fail_msg("outpostd did not tell the operator (%s)", fx.log_path);
    /* a device that connects again is refused until the restart */
    tc = NULL;
    assert_int_equal(testclient_connect(fx.port, fx.ca_path, 10000, &tc, NULL, 0), 0);
    proto_msg hello;
    memset(&hello, 0, sizeof hello);
    hello.type = PROTO_MSG_HELLO;
    hello.u.hello.version = PROTO_VERSION;
    hello.u.hello.device_id = dev.id;
    memcpy(hello.u.hello.secret, dev.secret, sizeof dev.secret);
    assert_int_equal(testclient_send(tc, &hello, 10000), 0);
    assert_int_equal(testclient_recv(tc, 10000, &reply), 0);
    assert_int_equal(reply->type, PROTO_MSG_ERROR);
    assert_int_equal(reply->u.error.code, PROTO_ERR_INTERNAL);
    proto_msg_free(reply);
    testclient_close(tc);

    /* restored is refused while it runs (its lanes hold the serving lock) */
    assert_int_equal(admin("restored", NULL), 3);
    if (!strstr(admin_out, "outpostd serves this store: 1 node holds its serving lock"))
        fail_msg("restored while outpostd runs said: %s", admin_out);
    assert_int_equal(fixture_stop(&fx), 0);
    assert_int_equal(admin("restored", NULL), 0);
    assert_int_equal(fixture_start(&fx), 0);
    uint64_t acked = 0;
    tc = fixture_hello(&fx, &dev, &acked);
    assert_non_null(tc);
    testclient_close(tc);
    assert_int_equal(healthz(said, sizeof said), 200);
}

/* HELLO from dev saying it has pulled up to cursor; the reply's type. */
static proto_msg_type hello_at(const test_device *dev, uint64_t cursor)
{
    testclient *tc = NULL;
    assert_int_equal(testclient_connect(fx.port, fx.ca_path, 10000, &tc, NULL, 0), 0);
    proto_msg hello, *reply = NULL;
    memset(&hello, 0, sizeof hello);
    hello.type = PROTO_MSG_HELLO;
    hello.u.hello.version = PROTO_VERSION;
    hello.u.hello.device_id = dev->id;
    hello.u.hello.cursor = cursor;
    memcpy(hello.u.hello.secret, dev->secret, sizeof dev->secret);
    assert_int_equal(testclient_send(tc, &hello, 10000), 0);
    assert_int_equal(testclient_recv(tc, 10000, &reply), 0);
    proto_msg_type type = reply->type;
    proto_msg_free(reply);
    testclient_close(tc);
    return type;
}

/* restored --moved on a copy that lacked writes (the outsider's finding 3): the first HELLO
 * after the move of a device that had pulled past what the copy held proves the loss, and
 * outpostd tells the operator to run restored without --moved. A device whose cursor the copy
 * covers is not reported, nor is the same device at its next HELLO. */
static void test_moved_copy_that_lost_writes_is_reported(void **state)
{
    (void)state;
    test_device covered, ahead;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &covered), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w1", &ahead), 0);
    uint64_t head =
        (uint64_t)central_int("SELECT value FROM _outpost_meta WHERE key = 'server_seq'");
    assert_int_equal(fixture_stop(&fx), 0);
    const char *argv[] = {OUTPOST_ADMIN_PATH, "--store", pg_store, "--audit-key", pg_key,
                          "restored", "--moved", "--confirm-nothing-lost", NULL};
    assert_int_equal(test_run(argv, admin_out, sizeof admin_out), 0);
    assert_int_equal(fixture_start(&fx), 0);

    assert_int_equal(hello_at(&covered, head), PROTO_MSG_WELCOME);
    assert_false(fixture_log_contains(&fx, "when marked moved"));
    assert_int_equal(hello_at(&ahead, head + 7), PROTO_MSG_WELCOME);
    char said[300];
    snprintf(said, sizeof said, "had pulled up to sequence %llu, this store held %llu when "
             "marked moved: the move lost writes",
             (unsigned long long)(head + 7), (unsigned long long)head);
    if (!fixture_log_contains(&fx, said) ||
        !fixture_log_contains(&fx, "run outpost-admin restored without --moved"))
        fail_msg("outpostd did not report the lossy move (%s)", fx.log_path);
    /* a full restore forgets the move: no report after it */
    assert_int_equal(fixture_stop(&fx), 0);
    assert_int_equal(admin("restored", NULL), 0);
    assert_int_equal(central_int("SELECT count(*) FROM _outpost_meta WHERE key LIKE 'moved_%'"),
                     0);
    assert_int_equal(fixture_start(&fx), 0);
}

static void test_daemon_stops_cleanly(void **state)
{
    (void)state;
    assert_int_equal(fixture_stop_clean(&fx), 0);
}
#endif

/* ---- On both engines ---------------------------------------------------------------------- */

/* The office backs the store up while outpostd serves: outpost-admin backup on SQLite, pg_dump
 * on PostgreSQL. */
static void office_backup(const char *file)
{
#ifdef OUTPOST_RESTORE_ON_POSTGRESQL
    assert_int_equal(pg_tool("pg_dump", "-Fc", "-f", file), 0);
#else
    assert_int_equal(admin("backup", file), 0);
#endif
}

/* The office stops outpostd, restores file (on PostgreSQL into a new database, then marks it
 * with outpost-admin restored) and starts outpostd again. */
static void office_restore(const char *file)
{
    assert_int_equal(fixture_stop(&fx), 0);
#ifdef OUTPOST_RESTORE_ON_POSTGRESQL
    char maintenance[500];
    snprintf(maintenance, sizeof maintenance, "%s dbname=postgres", fx.conninfo);
    PGresult *r = central_query(maintenance, "DROP DATABASE outpost");
    assert_non_null(r);
    PQclear(r);
    assert_non_null(r = central_query(maintenance, "CREATE DATABASE outpost"));
    PQclear(r);
    assert_int_equal(pg_tool("pg_restore", "--no-owner", "--exit-on-error", file), 0);
    assert_int_equal(admin("restored", NULL), 0);
#else
    assert_int_equal(admin("restore", file), 0);
#endif
    assert_int_equal(fixture_start(&fx), 0);
}

/* An outsider's finding (F6): a read-only device (it never pushed anything) that held a record
 * the office deleted while it was offline kept that record for good after a restore. Its pull
 * from 0 on the new epoch was taken for a first pull by a device that holds nothing, so it
 * carried no tombstones; the device then said synced, its cursor at the store's newest
 * sequence, while it held a record the store had deleted. */
static void test_a_read_only_device_drops_a_record_deleted_before_the_backup(void **state)
{
    (void)state;
    char backup[400], sql[200];
    snprintf(backup, sizeof backup, "%s/central-backup-tomb.db", fx.dir);
    device a, ro;
    device_enroll(&a, "tomb-a", "w1");
    device_enroll(&ro, "tomb-ro", "w1");
    device_start(&a, 0);
    int64_t base = central_int("SELECT count(*) FROM contacts");
    write_named(&a, 1, "tomb", "keep");
    write_named(&a, 1, "tomb", "gone");
    assert_true(wait_central(base + 2));
    assert_true(wait_settled(&a, base + 2));

    /* The read-only device pulls both records, then goes offline. */
    device_start(&ro, 0);
    assert_true(wait_settled(&ro, base + 2));
    device_stop(&ro);
    assert_int_equal(device_int(&ro, "SELECT count(*) FROM _outpost_outbox"), 0);

    /* The office deletes one (here through a's replica) and takes a backup that holds the
     * delete; a is lost; the store is restored from that backup. */
    assert_int_equal(outpost_exec(a.r, "DELETE FROM contacts WHERE name = 'tomb-gone'", NULL, 0),
                     OUTPOST_OK);
    assert_true(wait_central(base + 1));
    assert_true(wait_settled(&a, base + 1));
    device_close(&a);
    uint64_t epoch_before = (uint64_t)central_int("SELECT epoch FROM _outpost_store");
    office_backup(backup);
    office_restore(backup);
    uint64_t epoch_after = (uint64_t)central_int("SELECT epoch FROM _outpost_store");
    assert_true(epoch_after > epoch_before);
    uint64_t head =
        (uint64_t)central_int("SELECT value FROM _outpost_meta WHERE key = 'server_seq'");

    /* The read-only device comes back: it notices the new epoch and pulls again from 0. */
    device_start(&ro, 0);
    bool pulled = false;
    for (uint32_t waited = 0; waited < WAIT_MS && !pulled; waited += 50) {
        pulled = (uint64_t)device_int(&ro, "SELECT epoch FROM _outpost_server") == epoch_after &&
                 cursor_of(&ro) == head && pending(&ro) == 0;
        if (!pulled)
            test_sleep_ms(50);
    }
    assert_true(pulled);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM contacts WHERE name = 'tomb-gone'");
    if (device_int(&ro, sql) != 0)
        fail_msg("the read-only device pulled again from 0 up to the store's newest sequence "
                 "%llu and still holds the record deleted before the backup",
                 (unsigned long long)head);
    assert_int_equal(device_int(&ro, "SELECT count(*) FROM contacts WHERE name = 'tomb-keep'"),
                     1);
    char *central = central_rows();
    assert_same_rows(&ro, central);
    sqlite3_free(central);
    device_close(&ro);
}

/* An outsider's finding (F4), the documented order between devices: after a restore, an edit
 * of a record created after the backup reaches the store only if the creating device has sent
 * the record again first. When the editing device comes back first its entry is refused (the
 * store has no such row) with the rest of its transaction, into its quarantine, with a message
 * that says why; nothing is lost, and both devices converge once the record is back. */
static void test_an_edit_of_a_record_the_restored_store_lacks_waits_in_quarantine(void **state)
{
    (void)state;
    char backup[400];
    snprintf(backup, sizeof backup, "%s/central-backup-order.db", fx.dir);
    device a, b;
    device_enroll(&a, "order-a", "w1");
    device_enroll(&b, "order-b", "w1");
    device_start(&a, 0);
    device_start(&b, 0);
    int64_t base = central_int("SELECT count(*) FROM contacts");
    write_named(&a, 1, "order", "old");
    assert_true(wait_central(base + 1));
    assert_true(wait_settled(&b, base + 1));
    office_backup(backup);

    /* After the backup a creates a record; b edits it and an older one in one transaction. */
    write_named(&a, 1, "order", "new");
    assert_true(wait_central(base + 2));
    assert_true(wait_settled(&a, base + 2));
    assert_true(wait_settled(&b, base + 2));
    assert_int_equal(outpost_tx_begin(b.r), OUTPOST_OK);
    assert_int_equal(outpost_exec(b.r, "UPDATE contacts SET note = 'b' WHERE name IN"
                                       " ('order-new', 'order-old')",
                                  NULL, 0),
                     OUTPOST_OK);
    assert_int_equal(outpost_tx_commit(b.r, NULL), OUTPOST_OK);
    assert_true(wait_settled(&b, base + 2));
    device_stop(&a);
    device_stop(&b);
    office_restore(backup);

    /* b comes back first: both its changes wait in its quarantine, one saying why. */
    device_start(&b, 0);
    outpost_status st;
    for (uint32_t waited = 0; waited < WAIT_MS; waited += 50) {
        assert_int_equal(outpost_status_get(b.r, &st), OUTPOST_OK);
        if (st.rejected == 2)
            break;
        test_sleep_ms(50);
    }
    assert_int_equal(st.rejected, 2);
    int64_t ids[2];
    size_t n = 0;
    assert_int_equal(outpost_rejected_list(b.r, ids, 2, &n), OUTPOST_OK);
    assert_int_equal(n, 2);
    bool said_why = false;
    for (size_t i = 0; i < n; i++) {
        outpost_rejected *rj = NULL;
        assert_int_equal(outpost_rejected_read(b.r, ids[i], &rj), OUTPOST_OK);
        assert_string_equal(rj->op, "UPDATE");
        if (strstr(rj->message, "the server has no such row") &&
            strstr(rj->message, "a store restored from a backup lacks the rows created after "
                                "the backup until the device that created them sends them "
                                "again"))
            said_why = true;
        outpost_rejected_free(rj);
    }
    assert_true(said_why);

    /* a comes back and sends its record again: everyone converges on it; b's edit waits. a
     * had pulled that edit before the restore: the record it sent again comes back to it at its
     * pull from 0 (the store lacks the edit), else it would keep it while saying synced. */
    device_start(&a, 0);
    assert_true(wait_central(base + 2));
    assert_true(wait_rows(&a, 0, "SELECT count(*) FROM contacts WHERE note = 'b'"));
    assert_true(wait_settled(&a, base + 2));
    assert_int_equal(outpost_sync_wait(a.sync, 0, WAIT_MS), OUTPOST_OK);
    assert_true(wait_settled(&b, base + 2));
    char *central = central_rows();
    assert_same_rows(&a, central);
    assert_same_rows(&b, central);
    sqlite3_free(central);
    assert_int_equal(outpost_status_get(b.r, &st), OUTPOST_OK);
    assert_int_equal(st.rejected, 2);
    device_close(&a);
    device_close(&b);
}

#ifdef OUTPOST_RESTORE_ON_POSTGRESQL

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_restored_with_pg_restore_is_marked_and_healed),
        cmocka_unit_test(test_pg_restore_into_the_served_database_stops_serving),
        cmocka_unit_test(test_moved_copy_that_lost_writes_is_reported),
        cmocka_unit_test(test_a_read_only_device_drops_a_record_deleted_before_the_backup),
        cmocka_unit_test(test_an_edit_of_a_record_the_restored_store_lacks_waits_in_quarantine),
        cmocka_unit_test(test_daemon_stops_cleanly), /* last */
    };
    if (!pg_cluster_available()) {
        printf("PostgreSQL binaries not installed: skipped\n");
        return 77; /* ctest's skip (tests/common/test_skip.h) */
    }
    return cmocka_run_group_tests(tests, setup, teardown);
}
#else
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_outpostd_on_a_store_refuses_to_start),
        cmocka_unit_test(test_wire_store_identity_and_cursor_ahead),
        cmocka_unit_test(test_restored_store_is_noticed_and_healed),
        cmocka_unit_test(test_store_lost_and_restored_is_noticed_and_healed),
        cmocka_unit_test(test_replica_upgraded_from_format1_resends_to_a_restored_store),
        cmocka_unit_test(test_a_pulled_edit_the_restored_store_lacks_is_undone),
        cmocka_unit_test(test_a_read_only_device_drops_a_record_deleted_before_the_backup),
        cmocka_unit_test(test_an_edit_of_a_record_the_restored_store_lacks_waits_in_quarantine),
        cmocka_unit_test(test_outpostd_killed_mid_pull_device_ends_with_central_rows),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
#endif
