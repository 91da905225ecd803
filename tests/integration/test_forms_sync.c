/*
 * Forms from the admin's schema package to the worker's device and the supervisor's dashboard:
 * a real outpostd on 127.0.0.1 over the outreach example, upgraded with `outpost-admin upgrade`
 * as an admin would; a device enrolled through liboutpost reads the forms from its replica, and
 * GET /api/forms serves the same text. After an upgrade that changes only a label, both have the
 * new one.
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
#include "strf.h"
#include "test_util.h"

#define WAIT_MS 15000u
static const char pw[] = "correct horse battery";
static daemon_fixture fx;
static char pkg[400]; /* a copy of examples/outreach the tests edit */

static const uint8_t device_key[32] = "forms-test-device-key-012345678";

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    if (text != NULL && fread(text, 1, (size_t)n, f) == (size_t)n)
        text[n] = '\0';
    fclose(f);
    return text;
}

/* outpost-admin upgrade with the package as it stands; its stdout into out. */
static int admin_upgrade(char *out, size_t out_size)
{
    char *log = strf("%s/admin.out", fx.dir);
    int rc = systemf("'%s' --store '%s' upgrade --schema '%s/schema.sql' --policy '%s/policy' "
                     ">'%s' 2>&1", OUTPOST_ADMIN_PATH, fx.store_path, pkg, pkg, log);
    char *text = read_text(log);
    snprintf(out, out_size, "%s", text ? text : "");
    free(text);
    free(log);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    const char *src = getenv("OUTPOST_SOURCE_DIR");
    char *schema = strf("%s/examples/outreach/schema.sql", src);
    char *policy = strf("%s/examples/outreach/policy", src);
    char *schema_text = read_text(schema), *policy_text = read_text(policy);
    char out[2048];
    int rc = schema_text && policy_text &&
                     fixture_create_with_schema(&fx, "[dashboard]\ntable = contacts\n",
                                                schema_text, policy_text) == 0
                 ? 0
                 : -1;
    free(schema);
    free(policy);
    free(schema_text);
    free(policy_text);
    if (rc != 0)
        return -1;
    /* The fixture made the store from schema and policy alone (version 1, no forms); the admin
     * adds the package's forms with an upgrade, as on a store made before forms existed. */
    snprintf(pkg, sizeof pkg, "%s/outreach", fx.dir);
    if (systemf("cp -r '%s/examples/outreach' '%s'", src, pkg) != 0 ||
        admin_upgrade(out, sizeof out) != 0 || strstr(out, "schema version 2 applied") == NULL) {
        fprintf(stderr, "upgrade: %s\n", out);
        return -1;
    }
    if (systemf("printf '%%s\\n' '%s' | '%s' --store '%s' user add sup1 --role supervisor "
                "--team t1 --password-fd 0 >/dev/null", pw, OUTPOST_ADMIN_PATH,
                fx.store_path) != 0 ||
        fixture_start(&fx) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    fixture_destroy(&fx);
    return 0;
}

/* The forms the central store keeps for its newest schema version. */
static char *central_forms(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char *json = NULL;
    assert_int_equal(sqlite3_open_v2(fx.store_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_prepare_v2(db, "SELECT forms FROM _outpost_forms ORDER BY version DESC LIMIT 1",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        json = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_non_null(json);
    return json;
}

static char *device_forms(outpost_replica *r)
{
    char *json = NULL;
    if (outpost_forms_json(r, &json) != OUTPOST_OK)
        fail_msg("outpost_forms_json: %s", outpost_errmsg(r));
    return json;
}

/* GET /api/forms as supervisor sup1 (logged in for the call); the body, or NULL on 401. */
static char *dashboard_forms(bool logged_in)
{
    char cookie[80] = "";
    dash_reply r;
    if (logged_in) {
        char body[128], header[256];
        snprintf(body, sizeof body, "name=sup1&password=correct+horse+battery");
        assert_int_equal(dash_request(fx.port, fx.ca_path, "POST", "/api/login", NULL, NULL,
                                      "X-Requested-With: outpost", body, &r), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(dash_reply_header(&r, "set-cookie", header, sizeof header), 0);
        assert_int_equal(sscanf(header, "outpost_session=%64[0-9a-f]", cookie), 1);
        dash_reply_free(&r);
    }
    assert_int_equal(dash_request(fx.port, fx.ca_path, "GET", "/api/forms",
                                  logged_in ? cookie : NULL, NULL, NULL, NULL, &r), 0);
    char *json = NULL;
    if (logged_in) {
        assert_int_equal(r.status, 200);
        char type[128];
        assert_int_equal(dash_reply_header(&r, "content-type", type, sizeof type), 0);
        assert_non_null(strstr(type, "application/json"));
        json = strdup(r.body);
    } else {
        assert_int_equal(r.status, 401);
    }
    dash_reply_free(&r);
    return json;
}

static outpost_replica *device;
static outpost_sync *device_sync;

static void test_enrolled_device_gets_the_forms(void **state)
{
    (void)state;
    char err[256], code[32], url[64];
    char *path = strf("%s/phone.db", fx.dir);
    outpost_config cfg = {.path = path, .secret.key = device_key};
    assert_int_equal(outpost_replica_open(&cfg, &device, err, sizeof err), OUTPOST_OK);
    free(path);
    char *none = device_forms(device);
    assert_string_equal(none, "[]"); /* before enrollment: no schema, no forms */
    outpost_free(none);
    assert_int_equal(fixture_enroll_code(&fx, "w1", code), 0);
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/sync", fx.port);
    char *ca = read_text(fx.ca_path);
    outpost_enroll_options eo = {.url = url, .code = code, .ca_pem = ca};
    int rc = outpost_enroll(device, &eo);
    free(ca);
    if (rc != OUTPOST_OK)
        fail_msg("enroll: %s", outpost_errmsg(device));
    char *central = central_forms(), *mine = device_forms(device);
    assert_string_equal(mine, central);
    /* what a worker reads: the Spanish label of a choice, in the right form */
    assert_non_null(strstr(mine, "{\"value\":\"exchange_sex_for_needs\",\"label\":{\"en\":"
                                 "\"Exchanges sex for food, shelter or money\",\"es\":"
                                 "\"Intercambia sexo por comida, alojamiento o dinero\"}}"));
    outpost_free(mine);
    free(central);
}

static void test_dashboard_serves_the_forms_to_a_session_only(void **state)
{
    (void)state;
    assert_null(dashboard_forms(false));
    char *central = central_forms(), *served = dashboard_forms(true);
    assert_string_equal(served, central);
    free(served);
    free(central);
}

/* Polls the device's forms until they contain text. */
static bool device_forms_contain(const char *text)
{
    for (uint32_t waited = 0; waited < WAIT_MS; waited += 50) {
        char *json = device_forms(device);
        bool found = strstr(json, text) != NULL;
        outpost_free(json);
        if (found)
            return true;
        test_sleep_ms(50);
    }
    return false;
}

static void test_upgrade_with_changed_forms_reaches_device_and_dashboard(void **state)
{
    (void)state;
    outpost_sync_config sc = {.stay_connected = 0, .debounce_ms = 50, .retry_base_ms = 100,
                              .retry_cap_ms = 1000};
    assert_int_equal(outpost_sync_start(device, &sc, &device_sync), OUTPOST_OK);
    /* the first sync is over before the upgrade: a schema travels in WELCOME only */
    assert_int_equal(outpost_sync_wait(device_sync, 0, WAIT_MS), OUTPOST_OK);
    assert_true(device_forms_contain("\"Risk level\""));
    /* only a label changes: the tables are the same */
    assert_int_equal(systemf("sed -i 's/\"Risk level\"/\"Overall risk\"/' "
                             "'%s/forms/contacts.json'", pkg), 0);
    char out[2048];
    assert_int_equal(admin_upgrade(out, sizeof out), 0);
    if (strstr(out, "schema version 3 applied") == NULL)
        fail_msg("upgrade said: %s", out);
    outpost_sync_now(device_sync);
    assert_int_equal(outpost_sync_wait(device_sync, 1, WAIT_MS), OUTPOST_OK);
    if (!device_forms_contain("\"Overall risk\""))
        fail_msg("the device did not get the new forms");
    char *mine = device_forms(device), *central = central_forms();
    assert_string_equal(mine, central);
    assert_null(strstr(mine, "Risk level"));
    outpost_status st;
    assert_int_equal(outpost_status_get(device, &st), OUTPOST_OK);
    assert_int_equal(st.schema_version, 3);
    char *served = dashboard_forms(true);
    assert_string_equal(served, central);
    free(served);
    outpost_free(mine);
    free(central);
    outpost_sync_stop(device_sync);
    device_sync = NULL;
    outpost_replica_close(device);
    device = NULL;
}

static void test_daemon_stops_cleanly(void **state)
{
    (void)state;
    assert_int_equal(fixture_stop_clean(&fx), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enrolled_device_gets_the_forms),
        cmocka_unit_test(test_dashboard_serves_the_forms_to_a_session_only),
        cmocka_unit_test(test_upgrade_with_changed_forms_reaches_device_and_dashboard),
        cmocka_unit_test(test_daemon_stops_cleanly), /* last */
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
