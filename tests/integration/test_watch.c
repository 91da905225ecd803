/*
 * Needs attention, end to end: the example schema and watch rules in a real outpostd, devices
 * that are liboutpost replicas syncing over real TLS, the rules' clock set through the test-only
 * clock file. Items appear when a duty falls due, leave by themselves when a device records the
 * duty done, stay within the supervisor's teams, and every view is audited.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <outpost.h>
#include <sqlite3.h>

#include "daemon_fixture.h"
#include "dash_client.h"
#include "ovalue.h"
#include "store.h"
#include "store_watch.h"
#include "strf.h"
#include "test_util.h"

#define WAIT_MS 20000u

static const char pw[] = "correct horse battery";
static daemon_fixture fx;
static char *clock_path;

typedef struct device {
    char path[400];
    outpost_replica *r;
    outpost_sync *sync;
} device;

typedef struct login {
    char cookie[80];
    char csrf[80];
} login;

static device d1, d2; /* worker w1 (team t1), worker w2 (team t2) */
static login sup1, sup2;
static char e1[OUTPOST_UUID_TEXT_SIZE], e2[OUTPOST_UUID_TEXT_SIZE];

static const uint8_t device_key[OUTPOST_KEY_BYTES] = {
    0x77, 0x61, 0x74, 0x63, 0x68, 0x2d, 0x74, 0x65, 0x73, 0x74, 0x2d, 0x6b, 0x65, 0x79, 0x2d, 0x31,
    0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7};

static char *source_file(const char *rel)
{
    char *path = strf("%s/%s", getenv("OUTPOST_SOURCE_DIR"), rel);
    char *text = test_read_file(path, NULL);
    free(path);
    return text;
}

static void set_clock(const char *utc)
{
    FILE *f = fopen(clock_path, "w");
    assert_non_null(f);
    fputs(utc, f);
    fclose(f);
}

static int run_admin(const char *args)
{
    return systemf("printf '%%s\\n' '%s' | '%s' --store %s %s --password-fd 0 >/dev/null", pw,
                   OUTPOST_ADMIN_PATH, fx.store_path, args);
}

static void device_up(device *d, const char *name, const char *worker)
{
    char err[256], code[32], url[64];
    snprintf(d->path, sizeof d->path, "%s/%s.db", fx.dir, name);
    outpost_config cfg = {.path = d->path, .secret.key = device_key};
    assert_int_equal(outpost_replica_open(&cfg, &d->r, err, sizeof err), OUTPOST_OK);
    assert_int_equal(fixture_enroll_code(&fx, worker, code), 0);
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/sync", fx.port);
    char *ca = test_read_file(fx.ca_path, NULL);
    outpost_enroll_options eo = {.url = url, .code = code, .ca_pem = ca};
    if (outpost_enroll(d->r, &eo) != OUTPOST_OK)
        fail_msg("enroll: %s", outpost_errmsg(d->r));
    free(ca);
    outpost_sync_config sc = {.stay_connected = 1, .debounce_ms = 50, .retry_base_ms = 100,
                              .retry_cap_ms = 1000};
    assert_int_equal(outpost_sync_start(d->r, &sc, &d->sync), OUTPOST_OK);
}

static void device_exec(device *d, const char *sql, const outpost_value *params, uint32_t n)
{
    if (outpost_exec(d->r, sql, params, n) != OUTPOST_OK)
        fail_msg("device write: %s", outpost_errmsg(d->r));
}

/* Waits until the central store answers sql with want. */
static void wait_central(const char *sql, int64_t want)
{
    int64_t n = -1;
    for (uint32_t waited = 0; waited < WAIT_MS; waited += 50) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        if (sqlite3_open_v2(fx.store_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
            sqlite3_busy_timeout(db, 2000) == SQLITE_OK &&
            sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        if (n == want)
            return;
        test_sleep_ms(50);
    }
    fail_msg("central store: '%s' is %lld, expected %lld", sql, (long long)n, (long long)want);
}

static void log_in(const char *name, login *out)
{
    dash_reply r;
    char cookie[256], body[128];
    snprintf(body, sizeof body, "name=%s&password=correct+horse+battery", name);
    assert_int_equal(dash_request(fx.port, fx.ca_path, "POST", "/api/login", NULL, NULL,
                                  "X-Requested-With: outpost", body, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_int_equal(dash_reply_header(&r, "set-cookie", cookie, sizeof cookie), 0);
    assert_int_equal(sscanf(cookie, "outpost_session=%64[0-9a-f]", out->cookie), 1);
    assert_int_equal(dash_json_string(r.body, "csrf", out->csrf, sizeof out->csrf), 0);
    dash_reply_free(&r);
}

/* GET path as who; the body (free it), status 200 asserted. */
static char *get(const login *who, const char *path)
{
    dash_reply r;
    assert_int_equal(dash_request(fx.port, fx.ca_path, "GET", path, who->cookie, NULL, NULL, NULL,
                                  &r),
                     0);
    if (r.status != 200)
        fail_msg("GET %s: %d %s", path, r.status, r.body);
    char *body = strdup(r.body);
    dash_reply_free(&r);
    return body;
}

/* Counts how often part occurs in text. */
static int occurrences(const char *text, const char *part)
{
    int n = 0;
    for (const char *p = strstr(text, part); p; p = strstr(p + 1, part))
        n++;
    return n;
}

static int group_setup(void **state)
{
    (void)state;
    char *schema = source_file("examples/outreach/schema.sql");
    char *policy = source_file("examples/outreach/policy");
    char *watch = source_file("examples/outreach/watch.json");
    char err[256];
    store *st = NULL;
    int rc = schema && policy && watch ? fixture_create_with_schema(&fx, NULL, schema, policy)
                                       : -1;
    if (rc == 0 && store_open(fx.store_path, false, &st, err, sizeof err) == STORE_OK) {
        rc = store_watch_set(st, watch);
        if (rc != STORE_OK)
            fprintf(stderr, "watch rules: %s\n", store_errmsg(st));
        store_close(st);
    }
    free(schema);
    free(policy);
    free(watch);
    if (rc != 0 || run_admin("user add sup1 --role supervisor --team t1") != 0 ||
        run_admin("user add sup2 --role supervisor --team t2") != 0)
        return -1;
    clock_path = strf("%s/watch-clock", fx.dir);
    setenv("OUTPOSTD_TEST_WATCH_CLOCK", clock_path, 1);
    set_clock("2026-12-01 12:00:00");
    return fixture_start(&fx);
}

static int group_teardown(void **state)
{
    (void)state;
    device *ds[] = {&d1, &d2};
    for (size_t i = 0; i < 2; i++) {
        outpost_sync_stop(ds[i]->sync);
        outpost_replica_close(ds[i]->r);
    }
    fixture_destroy(&fx);
    free(clock_path);
    return 0;
}

/* Two teams' devices record a missing episode each; nothing is due yet. */
static void test_nothing_is_due_before_its_time(void **state)
{
    (void)state;
    device_up(&d1, "d1", "w1");
    device_up(&d2, "d2", "w2");
    log_in("sup1", &sup1);
    log_in("sup2", &sup2);
    assert_int_equal(outpost_uuid_make(e1), OUTPOST_OK);
    assert_int_equal(outpost_uuid_make(e2), OUTPOST_OK);
    static const char insert[] =
        "INSERT INTO missing_episodes (id, team_id, worker_id, alias, went_missing_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5)";
    outpost_value p1[5] = {ov_text(e1), ov_text("t1"), ov_text("w1"), ov_text("Robin"),
                           ov_text("2026-12-01T11:00:00+01:00")};
    outpost_value p2[5] = {ov_text(e2), ov_text("t2"), ov_text("w2"), ov_text("Sam"),
                           ov_text("2026-12-01T10:00:00Z")};
    device_exec(&d1, insert, p1, 5);
    device_exec(&d2, insert, p2, 5);
    wait_central("SELECT count(*) FROM missing_episodes", 2);
    char *body = get(&sup1, "/api/watch");
    assert_non_null(strstr(body, "\"items\":[]"));
    free(body);
}

/* A day later both are overdue for their reports; each supervisor sees their own team's only. */
static void test_items_appear_when_due_within_the_team(void **state)
{
    (void)state;
    set_clock("2026-12-02 10:30:00");
    char *one = get(&sup1, "/api/watch");
    char *two = get(&sup2, "/api/watch");
    assert_int_equal(occurrences(one, "\"rule\":"), 1);
    assert_non_null(strstr(one, "\"rule\":\"missing_not_reported\""));
    assert_non_null(strstr(one, "\"alias\":\"Robin\""));
    assert_non_null(strstr(one, e1));
    assert_non_null(strstr(one, "\"due\":\"2026-12-02 10:00:00\"")); /* 11:00+01:00 + 24 h */
    assert_null(strstr(one, "Sam"));
    assert_null(strstr(one, e2));
    assert_int_equal(occurrences(two, "\"rule\":"), 1);
    assert_non_null(strstr(two, "\"alias\":\"Sam\""));
    assert_null(strstr(two, "Robin"));
    free(one);
    free(two);
    /* asking for another team's items is refused, not answered empty */
    dash_reply r;
    assert_int_equal(dash_request(fx.port, fx.ca_path, "GET", "/api/watch?team=t2", sup1.cookie,
                                  NULL, NULL, NULL, &r),
                     0);
    assert_int_equal(r.status, 403);
    dash_reply_free(&r);
    /* a filter the view does not apply is refused, not ignored */
    assert_int_equal(dash_request(fx.port, fx.ca_path, "GET", "/api/watch?worker=w1",
                                  sup1.cookie, NULL, NULL, NULL, &r),
                     0);
    assert_int_equal(r.status, 400);
    dash_reply_free(&r);
}

/* The worker records both reports on the device: the item leaves by itself once synced, and
 * the return starts the next duties. */
static void test_items_leave_when_a_device_records_the_duty(void **state)
{
    (void)state;
    outpost_value only_police[2] = {ov_text("2026-12-02T10:40:00Z"), ov_text(e1)};
    device_exec(&d1, "UPDATE missing_episodes SET police_reported_at = ?1 WHERE id = ?2",
                only_police, 2);
    wait_central("SELECT count(*) FROM missing_episodes WHERE police_reported_at IS NOT NULL", 1);
    char *body = get(&sup1, "/api/watch");
    assert_non_null(strstr(body, "missing_not_reported")); /* NCMEC still missing */
    free(body);
    outpost_value ncmec[3] = {ov_text("2026-12-02T10:45:00Z"), ov_text("NCMEC-1234"),
                              ov_text(e1)};
    device_exec(&d1,
                "UPDATE missing_episodes SET ncmec_reported_at = ?1, ncmec_case_number = ?2"
                " WHERE id = ?3",
                ncmec, 3);
    wait_central("SELECT count(*) FROM missing_episodes WHERE ncmec_reported_at IS NOT NULL", 1);
    body = get(&sup1, "/api/watch");
    assert_non_null(strstr(body, "\"items\":[]"));
    free(body);

    outpost_value back[2] = {ov_text("2026-12-02T12:00:00Z"), ov_text(e1)};
    device_exec(&d1, "UPDATE missing_episodes SET returned_at = ?1 WHERE id = ?2", back, 2);
    wait_central("SELECT count(*) FROM missing_episodes WHERE returned_at IS NOT NULL", 1);
    set_clock("2026-12-05 13:00:00");
    body = get(&sup1, "/api/watch");
    assert_non_null(strstr(body, "\"rule\":\"returned_not_screened\""));
    assert_non_null(strstr(body, "\"rule\":\"no_return_interview\""));
    assert_null(strstr(body, "no_safety_plan")); /* due after 7 days */
    /* oldest first: both fall due at 12-05 12:00 (72 h, 3 days), screening is listed first */
    assert_true(strstr(body, "returned_not_screened") < strstr(body, "no_return_interview"));
    free(body);
    outpost_value screened[3] = {ov_text("2026-12-05T13:10:00Z"), ov_text("2026-12-05T13:10:00Z"),
                                 ov_text(e1)};
    device_exec(&d1,
                "UPDATE missing_episodes SET screened_at = ?1, run_factors_at = ?2 WHERE id = ?3",
                screened, 3);
    wait_central("SELECT count(*) FROM missing_episodes WHERE screened_at IS NOT NULL", 1);
    body = get(&sup1, "/api/watch");
    assert_null(strstr(body, "returned_not_screened"));
    assert_non_null(strstr(body, "no_return_interview"));
    free(body);
}

typedef struct seen {
    char text[2048];
} seen;

static int collect(const outpost_watch_item *it, void *user_data)
{
    seen *s = user_data;
    size_t n = strlen(s->text);
    snprintf(s->text + n, sizeof s->text - n, "%s|%s|%s|%s|%s\n", it->rule_id, it->team,
             it->record_id, it->alias ? it->alias : "-", it->due);
    return 0;
}

/* The same rules reached the devices with the schema: each worker's own replica answers, offline
 * and for its own team only. */
static void test_devices_evaluate_the_same_rules_on_their_replica(void **state)
{
    (void)state;
    const uint64_t now = 1796475600000u; /* 2026-12-05 13:00:00 UTC */
    seen one = {""}, two = {""};
    assert_int_equal(outpost_watch_items(d1.r, now, collect, &one), OUTPOST_OK);
    assert_int_equal(outpost_watch_items(d2.r, now, collect, &two), OUTPOST_OK);
    char *want = strf("no_return_interview|t1|%s|Robin|2026-12-05 12:00:00\n", e1);
    assert_string_equal(one.text, want);
    free(want);
    want = strf("missing_not_reported|t2|%s|Sam|2026-12-02 10:00:00\n", e2);
    assert_string_equal(two.text, want);
    free(want);
    /* before the duty falls due, nothing */
    seen early = {""};
    assert_int_equal(outpost_watch_items(d1.r, now - 2 * 3600000u, collect, &early), OUTPOST_OK);
    assert_string_equal(early.text, "");
    /* the replica's write guard is back after a rule was prepared: a direct write is refused
     * when it is prepared (not only later by the commit hook) */
    sqlite3_stmt *direct = NULL;
    assert_int_equal(sqlite3_prepare_v2(outpost_replica_db(d1.r),
                                        "UPDATE missing_episodes SET notes = 'x'", -1, &direct,
                                        NULL),
                     SQLITE_AUTH);
    sqlite3_finalize(direct);
}

/* Counts per team and rule: the report duty fell due once and was met; sup2's team not shown. */
static void test_counts_per_team_and_rule(void **state)
{
    (void)state;
    char *body = get(&sup1, "/api/watch/counts");
    assert_non_null(strstr(body, "{\"team\":\"t1\",\"rule\":\"missing_not_reported\","
                                 "\"week\":\"2026-11-30\",\"due\":1,\"open\":0}"));
    assert_non_null(strstr(body, "{\"team\":\"t1\",\"rule\":\"no_return_interview\","
                                 "\"week\":\"2026-11-30\",\"due\":1,\"open\":1}"));
    assert_null(strstr(body, "\"t2\""));
    free(body);
    body = get(&sup2, "/api/watch/counts");
    assert_non_null(strstr(body, "{\"team\":\"t2\",\"rule\":\"missing_not_reported\","
                                 "\"week\":\"2026-11-30\",\"due\":1,\"open\":1}"));
    free(body);
}

/* Every view wrote its audit row, with the records it showed. */
static void test_views_are_audited_with_the_records_shown(void **state)
{
    (void)state;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(fx.store_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    char *want = strf("missing_episodes/%s", e1);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*), sum(instr(ids, ?1) > 0) FROM _outpost_audit"
                                        " WHERE actor = 'sup1' AND action = 'watch.list'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, want, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 6); /* the GETs of sup1 above, the 403 not */
    assert_int_equal(sqlite3_column_int(st, 1), 4);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM _outpost_audit WHERE action ="
                                        " 'watch.list' AND actor = 'sup2' AND instr(ids, ?1) > 0",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, want, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM _outpost_audit WHERE action ="
                                        " 'watch.counts' AND actor = 'sup1'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    /* asking for another team's items left its own row */
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM _outpost_audit WHERE action ="
                                        " 'watch.denied' AND actor = 'sup1' AND"
                                        " target = 'view=watch team=t2'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(want);
}

typedef struct titled {
    char text[4096];
} titled;

static int collect_titled(const outpost_watch_item *it, void *user_data)
{
    titled *s = user_data;
    size_t n = strlen(s->text);
    snprintf(s->text + n, sizeof s->text - n, "%s|%s|%s|%s\n", it->rule_id, it->severity,
             it->record_id, it->title_json);
    return 0;
}

/* The 24 h report duty stays until both reports are made, whether or not the child is back; a
 * time the database cannot read is shown as an item of its own, never hidden. Team t2 only, so
 * the audit counts above are not touched. */
static void test_returned_unreported_and_unreadable_times_stay_open(void **state)
{
    (void)state;
    char back[OUTPOST_UUID_TEXT_SIZE], basic[OUTPOST_UUID_TEXT_SIZE], local[OUTPOST_UUID_TEXT_SIZE];
    assert_int_equal(outpost_uuid_make(back), OUTPOST_OK);
    assert_int_equal(outpost_uuid_make(basic), OUTPOST_OK);
    assert_int_equal(outpost_uuid_make(local), OUTPOST_OK);
    static const char insert[] =
        "INSERT INTO missing_episodes (id, team_id, worker_id, alias, went_missing_at,"
        " returned_at) VALUES (?1, 't2', 'w2', ?2, ?3, ?4)";
    /* missing 48 h, back, never reported */
    outpost_value p1[4] = {ov_text(back), ov_text("Kit"), ov_text("2026-12-03T00:00:00+00:00"),
                           ov_text("2026-12-05T00:00:00+00:00")};
    /* ISO 8601 basic offset (strftime's %z) and a local day/month form: SQLite reads neither */
    outpost_value p2[4] = {ov_text(basic), ov_text("Lee"), ov_text("2026-12-04T10:00:00+0100"),
                           ov_null()};
    outpost_value p3[4] = {ov_text(local), ov_text("Max"), ov_text("04/12/2026 10:00"),
                           ov_null()};
    device_exec(&d2, insert, p1, 4);
    device_exec(&d2, insert, p2, 4);
    device_exec(&d2, insert, p3, 4);
    wait_central("SELECT count(*) FROM missing_episodes WHERE team_id = 't2'", 4);
    char *body = get(&sup2, "/api/watch");
    char *want = strf("\"id\":\"%s\"", back);
    assert_non_null(strstr(body, want)); /* returned does not meet the report duty */
    assert_non_null(strstr(body, "\"due\":\"2026-12-04 00:00:00\""));
    free(want);
    assert_non_null(strstr(body, basic));
    assert_non_null(strstr(body, local));
    assert_int_equal(occurrences(body, "Time not readable: went_missing_at (Missing 24 h"), 2);
    free(body);
    /* the device's own evaluation says the same */
    const uint64_t now = 1796475600000u; /* 2026-12-05 13:00:00 UTC */
    titled found = {""};
    assert_int_equal(outpost_watch_items(d2.r, now, collect_titled, &found), OUTPOST_OK);
    want = strf("missing_not_reported|high|%s|{\"en\":\"Missing 24 h", back);
    assert_non_null(strstr(found.text, want));
    free(want);
    const char *ids[] = {basic, local};
    for (size_t i = 0; i < 2; i++) {
        want = strf("missing_not_reported|high|%s|{\"en\":\"Time not readable: went_missing_at"
                    " (Missing 24 h: report to law enforcement and NCMEC)\",\"es\":\"Hora "
                    "ilegible: went_missing_at",
                    ids[i]);
        if (strstr(found.text, want) == NULL)
            fail_msg("device items:\n%s\nexpected a line starting %s", found.text, want);
        free(want);
    }
    /* once both reports are made, the unreadable row's duty is met and leaves */
    outpost_value done[1] = {ov_text(basic)};
    device_exec(&d2,
                "UPDATE missing_episodes SET police_reported_at = '2026-12-05T12:00:00Z',"
                " ncmec_reported_at = '2026-12-05T12:00:00Z' WHERE id = ?1",
                done, 1);
    wait_central("SELECT count(*) FROM missing_episodes WHERE ncmec_reported_at IS NOT NULL", 2);
    body = get(&sup2, "/api/watch");
    assert_null(strstr(body, basic));
    assert_non_null(strstr(body, local));
    free(body);
}

static void test_daemon_stops_cleanly(void **state)
{
    (void)state;
    device *ds[] = {&d1, &d2};
    for (size_t i = 0; i < 2; i++) {
        outpost_sync_stop(ds[i]->sync);
        ds[i]->sync = NULL;
    }
    assert_int_equal(fixture_stop_clean(&fx), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_is_due_before_its_time),
        cmocka_unit_test(test_items_appear_when_due_within_the_team),
        cmocka_unit_test(test_items_leave_when_a_device_records_the_duty),
        cmocka_unit_test(test_devices_evaluate_the_same_rules_on_their_replica),
        cmocka_unit_test(test_counts_per_team_and_rule),
        cmocka_unit_test(test_views_are_audited_with_the_records_shown),
        cmocka_unit_test(test_returned_unreported_and_unreadable_times_stay_open),
        cmocka_unit_test(test_daemon_stops_cleanly),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
