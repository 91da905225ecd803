/* outpostd's INI config (server/src/daemon/config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char dir[] = "/tmp/outpostd-config-unit-XXXXXX";

static void write_file(const char *name, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    write_file("server.pem", "cert");
    write_file("server.key", "key");
    write_file("ca.pem", "ca");
    return 0;
}

static int teardown(void **state)
{
    const char *names[] = {"server.pem", "server.key", "ca.pem", "c.ini"};
    char path[256];

    (void)state;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}

static int load(const char *text, daemon_config *cfg, char *err, size_t err_size)
{
    char path[256];

    write_file("c.ini", text);
    snprintf(path, sizeof path, "%s/c.ini", dir);
    return config_load(path, cfg, err, err_size);
}

static void test_config_full_file_sets_every_field(void **state)
{
    daemon_config cfg;
    char err[512] = "", expect[300];

    (void)state;
    assert_int_equal(load("[server]\nlisten = 0.0.0.0\nport = 9443\ncert = server.pem\n"
                          "key = server.key\nca = ca.pem\n[store]\npath = /var/lib/c.db\n"
                          "[limits]\nmax_message_bytes = 2048\nmax_transaction_bytes = 4096\n"
                          "max_connections = 7\nlockout_failures = 2\nidle_timeout_s = 0\n"
                          "[log]\nlevel = warn\n",
                          &cfg, err, sizeof err),
                     0);
    assert_string_equal(cfg.listen_addr, "0.0.0.0");
    assert_int_equal(cfg.port, 9443);
    snprintf(expect, sizeof expect, "%s/server.pem", dir); /* relative to the config file */
    assert_string_equal(cfg.cert_path, expect);
    assert_string_equal(cfg.store_path, "/var/lib/c.db");
    assert_int_equal(cfg.limits.max_message_bytes, 2048);
    assert_int_equal(cfg.limits.max_transaction_bytes, 4096);
    assert_int_equal(cfg.limits.max_connections, 7);
    assert_int_equal(cfg.limits.lockout_failures, 2);
    assert_int_equal(cfg.limits.idle_timeout_s, 0);
    assert_int_equal(cfg.limits.handshake_timeout_s, 10); /* untouched keys keep defaults */
    assert_int_equal(cfg.log_level, LOG_WARN);
}

/* [metrics] allow: loopback by default, a list replaces it, empty allows nobody. */
static void test_config_metrics_allow_list(void **state)
{
    static const char base[] = "[server]\ncert = server.pem\nkey = server.key\nca = ca.pem\n"
                               "[store]\npath = s.db\n";
    daemon_config cfg;
    char err[512] = "", text[512];

    (void)state;
    assert_int_equal(load(base, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.n_metrics_allow, 2);
    assert_string_equal(cfg.metrics_allow[0], "127.0.0.1");
    assert_string_equal(cfg.metrics_allow[1], "::1");
    snprintf(text, sizeof text, "%s[metrics]\nallow = 10.0.0.5, ::1,192.0.2.1\n", base);
    assert_int_equal(load(text, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.n_metrics_allow, 3);
    assert_string_equal(cfg.metrics_allow[0], "10.0.0.5");
    assert_string_equal(cfg.metrics_allow[1], "::1");
    assert_string_equal(cfg.metrics_allow[2], "192.0.2.1");
    snprintf(text, sizeof text, "%s[metrics]\nallow =\n", base);
    assert_int_equal(load(text, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.n_metrics_allow, 0);
    snprintf(text, sizeof text, "%s[metrics]\nallowed = 1.2.3.4\n", base);
    assert_int_equal(load(text, &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "[metrics] allowed: unknown key"));
    snprintf(text, sizeof text,
             "%s[metrics]\nallow = 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\n", base);
    assert_int_equal(load(text, &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "expected up to 16 addresses"));
}

static void test_config_errors_name_the_problem(void **state)
{
    static const struct {
        const char *text;
        const char *needle;
    } cases[] = {
        {"[server]\nport = 70000\n", "port"},
        {"[server]\nport = -1\n", "port"},
        {"[server]\nfoo = 1\n", "foo"},
        {"[nonsense]\nx = 1\n", "nonsense"},
        {"[limits]\nmax_connections = 0\n", "max_connections"},
        {"[limits]\nmax_message_bytes = 12abc\n", "max_message_bytes"},
        {"[log]\nlevel = loud\n", "level"},
        {"not an ini line\n", "line 1"},
        {"[server]\ncert = server.pem\nkey = server.key\nca = ca.pem\n", "[store] path"},
        {"[server]\ncert = nope.pem\nkey = server.key\nca = ca.pem\n[store]\npath = s\n",
         "nope.pem"},
        {"[server]\ncert = server.pem\nkey = server.key\n[store]\npath = s\n", "[server] ca"},
        {"[server]\ncert = server.pem\nkey = server.key\nca = ca.pem\n[store]\npath = s\n"
         "[limits]\nmax_message_bytes = 4096\nmax_transaction_bytes = 2048\n",
         "max_transaction_bytes"},
    };
    daemon_config cfg;
    char err[512];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        assert_int_equal(load(cases[i].text, &cfg, err, sizeof err), -1);
        if (!strstr(err, cases[i].needle))
            fail_msg("case %zu: '%s' does not name '%s'", i, err, cases[i].needle);
    }
}

/* The lockout settings' valid ranges as docs/operations.md gives them: both ends accepted, one
 * past either end refused naming the key. */
/* [store] engine: sqlite is the default and may be named; anything else is refused by name;
 * postgresql needs its conninfo and the audit key's path (no store file to default it from), and
 * then needs no [store] path. */
static void test_config_store_engine(void **state)
{
    static const char head[] = "[server]\ncert = server.pem\nkey = server.key\nca = ca.pem\n"
                               "[store]\npath = s.db\n";
    daemon_config cfg;
    char text[512], err[512] = "";

    (void)state;
    assert_int_equal(load(head, &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.store_engine, "sqlite");
    snprintf(text, sizeof text, "%sengine = sqlite\n", head);
    assert_int_equal(load(text, &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.store_engine, "sqlite");

    snprintf(text, sizeof text, "%sengine = mysql\n", head);
    assert_int_equal(load(text, &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "[store] engine: expected sqlite or postgresql"));

    snprintf(text, sizeof text, "%sengine = postgresql\n", head);
    assert_int_equal(load(text, &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "[store] conninfo (a libpq connection string) is not set"));

    snprintf(text, sizeof text, "%sengine = postgresql\nconninfo = host=/run/pg dbname=o\n", head);
    assert_int_equal(load(text, &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "[store] audit_key (the audit log's key file) is not set"));

    snprintf(text, sizeof text,
             "[server]\ncert = server.pem\nkey = server.key\nca = ca.pem\n[store]\n"
             "engine = postgresql\nconninfo = host=/run/pg dbname=o\naudit_key = /etc/o.key\n");
    assert_int_equal(load(text, &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.store_engine, "postgresql");
    assert_string_equal(cfg.store_conninfo, "host=/run/pg dbname=o");
    assert_string_equal(cfg.audit_key_path, "/etc/o.key");
}

/* A config that holds the database's password must be readable by its owner only, as the audit
 * key must: anyone else on the machine who can read it can read every team's records. Refused by
 * name whether the password is a conninfo keyword or in a URI; a password kept in ~/.pgpass
 * (none in the file) leaves the file's mode alone. */
static void test_config_refuses_a_password_open_to_others(void **state)
{
    static const char head[] = "[server]\ncert = server.pem\nkey = server.key\nca = ca.pem\n"
                               "[store]\nengine = postgresql\naudit_key = /etc/o.key\n";
    static const char *with_password[] = {
        "conninfo = host=/run/pg dbname=o password=s3cret\n",
        "conninfo = host=/run/pg dbname=o password = 's3 cret'\n",
        "conninfo = postgresql://outpost:s3cret@db.example/outpost\n",
        "conninfo = postgresql://outpost@db.example/outpost?password=s3cret\n",
    };
    daemon_config cfg;
    char text[512], path[256], err[512] = "";

    (void)state;
    snprintf(path, sizeof path, "%s/c.ini", dir);
    for (size_t i = 0; i < sizeof with_password / sizeof with_password[0]; i++) {
        snprintf(text, sizeof text, "%s%s", head, with_password[i]);
        write_file("c.ini", text);
        assert_int_equal(chmod(path, 0640), 0);
        assert_int_equal(config_load(path, &cfg, err, sizeof err), -1);
        assert_non_null(strstr(err, "holds the database password"));
        assert_non_null(strstr(err, "mode 0640"));
        /* the password is not repeated (after the path, whose random part could hold anything) */
        assert_true(strncmp(err, "config ", 7) == 0 && strncmp(err + 7, path, strlen(path)) == 0);
        assert_null(strstr(err + 7 + strlen(path), "cret"));
        assert_int_equal(chmod(path, 0600), 0);
        assert_int_equal(config_load(path, &cfg, err, sizeof err), 0);
    }

    snprintf(text, sizeof text, "%sconninfo = host=/run/pg dbname=o passfile=/etc/o.pgpass\n", head);
    write_file("c.ini", text);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(config_load(path, &cfg, err, sizeof err), 0);
}

static void test_config_lockout_ranges(void **state)
{
    static const struct {
        const char *key;
        unsigned long long lo, hi;
    } keys[] = {
        {"lockout_failures", 1, 1000},
        {"lockout_window_s", 1, 86400},
        {"lockout_duration_s", 1, 604800},
    };
    static const char base[] = "[server]\ncert = server.pem\nkey = server.key\nca = ca.pem\n"
                               "[store]\npath = s\n[limits]\n";
    daemon_config cfg;
    char text[512], err[512];

    (void)state;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const unsigned long long values[4] = {keys[i].lo, keys[i].hi, keys[i].lo - 1,
                                              keys[i].hi + 1};
        for (int v = 0; v < 4; v++) {
            snprintf(text, sizeof text, "%s%s = %llu\n", base, keys[i].key, values[v]);
            err[0] = '\0';
            if (v < 2) {
                if (load(text, &cfg, err, sizeof err) != 0)
                    fail_msg("%s = %llu refused: %s", keys[i].key, values[v], err);
            } else {
                assert_int_equal(load(text, &cfg, err, sizeof err), -1);
                if (!strstr(err, keys[i].key))
                    fail_msg("%s = %llu: '%s' does not name the key", keys[i].key, values[v], err);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_full_file_sets_every_field),
        cmocka_unit_test(test_config_errors_name_the_problem),
        cmocka_unit_test(test_config_lockout_ranges),
        cmocka_unit_test(test_config_store_engine),
        cmocka_unit_test(test_config_refuses_a_password_open_to_others),
        cmocka_unit_test(test_config_metrics_allow_list),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
