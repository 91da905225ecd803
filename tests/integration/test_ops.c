/*
 * Operating outpostd, through real HTTPS as a monitoring system and an operator meet it:
 * /healthz, the Prometheus /metrics and its address allow list, and SIGHUP reloading the
 * configuration and the certificate while a device stays connected.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon_fixture.h"
#include "strf.h"
#include "testclient.h"

#define T_MS 10000

#ifndef OUTPOST_RENEW_SCRIPT
#error "OUTPOST_RENEW_SCRIPT must name certs-example/renew-dev-cert.sh"
#endif

static daemon_fixture fx;

typedef struct reply {
    int status;
    char *body;
} reply;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return strf("%s", "");
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    return buf;
}

/* GET https://localhost:PORT/PATH with curl, trusting the fixture's CA. */
static reply get(const char *path)
{
    reply r = {0};
    char *body_path = strf("%s/body.txt", fx.dir);
    char *cmd = strf("curl -s -o %s -w '%%{http_code}' --cacert %s "
                     "--resolve localhost:%u:127.0.0.1 https://localhost:%u%s",
                     body_path, fx.ca_path, (unsigned)fx.port, (unsigned)fx.port, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char status[16] = "";
    if (fgets(status, sizeof status, p) == NULL)
        status[0] = '\0';
    pclose(p);
    r.status = atoi(status);
    r.body = slurp(body_path);
    free(cmd);
    free(body_path);
    return r;
}

static void reply_free(reply *r)
{
    free(r->body);
    r->body = NULL;
}

/* The value of the metric line that starts with "name " (name may carry labels). */
static long long metric(const char *body, const char *name)
{
    char *needle = strf("\n%s ", name);
    const char *at = strstr(body, needle);
    if (at == NULL)
        fail_msg("metric %s missing from:\n%s", name, body);
    long long v = atoll(at + strlen(needle));
    free(needle);
    return v;
}

static long long scrape(const char *name)
{
    reply r = get("/metrics");
    assert_int_equal(r.status, 200);
    long long v = metric(r.body, name);
    reply_free(&r);
    return v;
}

static int count_in_log(const char *text)
{
    char *log = slurp(fx.log_path);
    int n = 0;
    for (const char *p = log; (p = strstr(p, text)) != NULL; p++)
        n++;
    free(log);
    return n;
}

/* Appends text to the config file and sends SIGHUP; waits until the log says it reloaded. */
static void reload_with(const char *text)
{
    int before = count_in_log("reloaded ");
    FILE *f = fopen(fx.config_path, "a");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(kill(fx.pid, SIGHUP), 0);
    for (int i = 0; i < 100 && count_in_log("reloaded ") == before; i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(count_in_log("reloaded "), before + 1);
}

static void push_one(testclient *tc, uint64_t seq, const char *id)
{
    const char *ids[1] = {id};
    proto_msg *push = fixture_insert_push(seq, 1, ids, "t1", "ops");
    proto_msg *ack = NULL;
    assert_non_null(push);
    assert_int_equal(testclient_send(tc, push, T_MS), 0);
    fixture_push_free(push);
    assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ACK, T_MS, &ack), 0);
    assert_int_equal(ack->u.ack.seq, seq);
    proto_msg_free(ack);
}

static char *fingerprint_cmd_output(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[256] = "";
    if (fgets(line, sizeof line, p) == NULL)
        line[0] = '\0';
    pclose(p);
    return strf("%s", line);
}

/* The SHA-256 fingerprint of the certificate a new connection is shown. */
static char *served_fingerprint(void)
{
    char *cmd = strf("openssl s_client -connect 127.0.0.1:%u -servername localhost </dev/null "
                     "2>/dev/null | openssl x509 -noout -fingerprint -sha256",
                     (unsigned)fx.port);
    char *out = fingerprint_cmd_output(cmd);
    free(cmd);
    return out;
}

static char *file_fingerprint(void)
{
    char *cmd = strf("openssl x509 -in %s/certs/server.pem -noout -fingerprint -sha256", fx.dir);
    char *out = fingerprint_cmd_output(cmd);
    free(cmd);
    return out;
}

static int group_setup(void **state)
{
    (void)state;
    if (system("command -v curl >/dev/null && command -v openssl >/dev/null") != 0)
        return -1;
    if (fixture_create(&fx, NULL) != 0 || fixture_start(&fx) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    fixture_destroy(&fx);
    return 0;
}

static void test_healthz_says_ok(void **state)
{
    (void)state;
    reply r = get("/healthz");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\nstore: writable\nworker: alive\n");
    reply_free(&r);
}

static void test_metrics_count_what_devices_did(void **state)
{
    (void)state;
    test_device dev;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &dev), 0);
    testclient *tc = fixture_hello(&fx, &dev, NULL);
    assert_non_null(tc);
    push_one(tc, 1, "0190a000-0000-7000-8000-0000000000a1");

    reply r = get("/metrics");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "# TYPE outpost_connected_devices gauge\n"));
    assert_non_null(strstr(r.body, "# TYPE outpost_store_job_duration_seconds histogram\n"));
    assert_int_equal(metric(r.body, "outpost_connected_devices"), 1);
    assert_int_equal(metric(r.body, "outpost_enrollments_total"), 1);
    assert_int_equal(metric(r.body, "outpost_pushes_total{result=\"applied\"}"), 1);
    assert_int_equal(metric(r.body, "outpost_pushed_rows_total"), 1);
    assert_int_equal(metric(r.body, "outpost_store_job_duration_seconds_count{kind=\"push\"}"), 1);
    assert_int_equal(
        metric(r.body, "outpost_store_job_duration_seconds_bucket{kind=\"push\",le=\"+Inf\"}"), 1);
    assert_int_equal(metric(r.body, "outpost_store_queue_capacity"), 64);
    reply_free(&r);
    testclient_close(tc);
}

static void test_failed_tls_handshake_is_counted(void **state)
{
    (void)state;
    long long before = scrape("outpost_tls_handshake_failures_total");
    /* TLS 1.1 and older are refused by the server's policy. */
    char *cmd = strf("curl -s -o /dev/null --tlsv1.0 --tls-max 1.1 --cacert %s --resolve "
                     "localhost:%u:127.0.0.1 https://localhost:%u/healthz",
                     fx.ca_path, (unsigned)fx.port, (unsigned)fx.port);
    assert_int_not_equal(system(cmd), 0);
    free(cmd);
    assert_int_equal(scrape("outpost_tls_handshake_failures_total"), before + 1);
}

/* outpostd issues TLS 1.3 session tickets: curl's second connection (same process, so it has
 * the first one's ticket) resumes, and /metrics counts it. Each scrape is a full handshake too. */
static void test_resumed_tls_handshake_is_counted(void **state)
{
    (void)state;
    long long total = scrape("outpost_tls_handshakes_total");
    long long resumed = scrape("outpost_tls_handshakes_resumed_total");
    char *cmd = strf("curl -s -o /dev/null -o /dev/null --tlsv1.3 -H 'Connection: close' "
                     "--cacert %s --resolve localhost:%u:127.0.0.1 https://localhost:%u/healthz "
                     "https://localhost:%u/healthz",
                     fx.ca_path, (unsigned)fx.port, (unsigned)fx.port, (unsigned)fx.port);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    assert_int_equal(scrape("outpost_tls_handshakes_resumed_total"), resumed + 1);
    /* the two scrapes in between, curl's two connections, this scrape's own */
    assert_int_equal(scrape("outpost_tls_handshakes_total"), total + 5);
}

/* The allow list comes from the config, and SIGHUP applies a new one without a restart. */
static void test_metrics_only_for_allowed_addresses(void **state)
{
    (void)state;
    pid_t pid = fx.pid;
    reload_with("\n[metrics]\nallow = ::1, 192.0.2.7\n");
    reply r = get("/metrics");
    assert_int_equal(r.status, 403);
    assert_string_equal(r.body, "forbidden: this address is not in [metrics] allow\n");
    reply_free(&r);
    /* Health stays open to every address. */
    r = get("/healthz");
    assert_int_equal(r.status, 200);
    reply_free(&r);
    reload_with("\n[metrics]\nallow = 127.0.0.1\n");
    r = get("/metrics");
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_int_equal(fx.pid, pid);
}

/* A renewed certificate is served to new connections after SIGHUP; a device connected before
 * stays connected and goes on syncing. */
static void test_sighup_reloads_certificate_keeping_sessions(void **state)
{
    (void)state;
    test_device dev;
    assert_int_equal(fixture_enroll_device(&fx, "w1", &dev), 0);
    testclient *tc = fixture_hello(&fx, &dev, NULL);
    assert_non_null(tc);
    push_one(tc, 1, "0190a000-0000-7000-8000-0000000000b1");
    char *old_served = served_fingerprint();
    char *old_file = file_fingerprint();
    assert_string_equal(old_served, old_file);
    free(old_file);

    assert_int_equal(systemf("sh %s %s/certs >/dev/null", OUTPOST_RENEW_SCRIPT, fx.dir), 0);
    char *renewed = file_fingerprint();
    assert_string_not_equal(renewed, old_served);
    reload_with("");

    char *new_served = served_fingerprint();
    assert_string_equal(new_served, renewed);
    /* The session opened before the reload is still there and still syncs. */
    push_one(tc, 2, "0190a000-0000-7000-8000-0000000000b2");
    assert_int_equal(scrape("outpost_connected_devices"), 1);
    testclient_close(tc);
    free(old_served);
    free(renewed);
    free(new_served);
}

/* A reload whose certificate does not load changes nothing and says why. */
static void test_bad_reload_keeps_serving(void **state)
{
    (void)state;
    char *before = served_fingerprint();
    char *saved = strf("%s/certs/server.pem.saved", fx.dir);
    char *pem = strf("%s/certs/server.pem", fx.dir);
    assert_int_equal(rename(pem, saved), 0);
    FILE *f = fopen(pem, "w");
    assert_non_null(f);
    fputs("not a certificate\n", f);
    fclose(f);
    assert_int_equal(kill(fx.pid, SIGHUP), 0);
    for (int i = 0; i < 100 && count_in_log("reload refused") == 0; i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_true(count_in_log("reload refused, nothing changed: certificate") >= 1);
    char *after = served_fingerprint();
    assert_string_equal(after, before);
    assert_int_equal(rename(saved, pem), 0);
    free(before);
    free(after);
    free(saved);
    free(pem);
}

/* Last: the store disappears under outpostd, and the health check says so. */
static void test_healthz_reports_unwritable_store(void **state)
{
    (void)state;
    char *moved = strf("%s.moved", fx.store_path);
    assert_int_equal(rename(fx.store_path, moved), 0);
    reply r = get("/healthz");
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "unhealthy\nstore: not writable\nworker: alive\n");
    reply_free(&r);
    assert_int_equal(rename(moved, fx.store_path), 0);
    free(moved);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthz_says_ok),
        cmocka_unit_test(test_metrics_count_what_devices_did),
        cmocka_unit_test(test_failed_tls_handshake_is_counted),
        cmocka_unit_test(test_resumed_tls_handshake_is_counted),
        cmocka_unit_test(test_metrics_only_for_allowed_addresses),
        cmocka_unit_test(test_sighup_reloads_certificate_keeping_sessions),
        cmocka_unit_test(test_bad_reload_keeps_serving),
        cmocka_unit_test(test_healthz_reports_unwritable_store),
    };
    return cmocka_run_group_tests_name("ops", tests, group_setup, group_teardown);
}
