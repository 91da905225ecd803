/*
 * The dashboard's reply writers (JSON and CSV escaping of untrusted text) and its in-memory
 * login sessions (tokens, CSRF, idle logout).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <stdio.h>
#include <unistd.h>

#include "config.h"
#include "dash_buf.h"
#include "dash_session.h"
#include "display_text.h"

static char *json(const char *s)
{
    static char out[512];
    dash_buf b = {0};
    dash_buf_json_str(&b, s);
    assert_false(b.failed);
    strcpy(out, b.data);
    dash_buf_free(&b);
    return out;
}

static char *csv(const char *s)
{
    static char out[512];
    dash_buf b = {0};
    dash_buf_csv_field(&b, s);
    dash_buf_puts(&b, "|");
    strcpy(out, b.data);
    dash_buf_free(&b);
    return out;
}

static void test_json_escapes_markup_quotes_and_controls(void **state)
{
    (void)state;
    assert_string_equal(json("Amina"), "\"Amina\"");
    assert_string_equal(json("a\"b\\c"), "\"a\\\"b\\\\c\"");
    assert_string_equal(json("</script><img src=x onerror=alert(1)>"),
                        "\"\\u003c/script\\u003e\\u003cimg src=x onerror=alert(1)\\u003e\"");
    assert_string_equal(json("line\nbreak\ttab\x01"), "\"line\\u000abreak\\u0009tab\\u0001\"");
    assert_string_equal(json("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
    assert_string_equal(json("bad\xff\xc3"), "\"bad\\ufffd\\ufffd\"");
    assert_string_equal(json("\xe2\x80\xa8"), "\"\\u2028\"");
    assert_string_equal(json(NULL), "null");
}

/* A device's name, app and last error reach supervisors' screens: an outsider's device sent
 * ESC, BEL, CR/LF, U+202E (right-to-left override) and invalid UTF-8, shown raw. */
static void test_device_text_is_cleaned_for_display(void **state)
{
    char out[64];
    (void)state;
    display_text_clean(out, sizeof out,
                       "a\x1b[31mb\xe2\x80\xae" "c\xff" "d\r\n\x07" "e\xe2\x81\xa6" "f");
    assert_string_equal(out, "a [31mbc\xef\xbf\xbd" "d   ef");
    display_text_clean(out, sizeof out, NULL);
    assert_string_equal(out, "");
    /* Cut at whole characters: three two-byte letters do not fit in six bytes with the NUL. */
    display_text_clean(out, 6, "\xc3\xa9\xc3\xa9\xc3\xa9");
    assert_string_equal(out, "\xc3\xa9\xc3\xa9");
    display_text_clean(out, sizeof out, "liboutpost 0.9.0 (espa\xc3\xb1ol)");
    assert_string_equal(out, "liboutpost 0.9.0 (espa\xc3\xb1ol)");
}

static void test_csv_quotes_and_defuses_formulas(void **state)
{
    (void)state;
    assert_string_equal(csv("plain"), "plain|");
    assert_string_equal(csv("a,b"), "\"a,b\"|");
    assert_string_equal(csv("say \"hi\""), "\"say \"\"hi\"\"\"|");
    assert_string_equal(csv("two\nlines"), "\"two\nlines\"|");
    assert_string_equal(csv("=HYPERLINK(\"http://x\")"), "\"'=HYPERLINK(\"\"http://x\"\")\"|");
    assert_string_equal(csv("+1"), "'+1|");
    assert_string_equal(csv("@SUM(A1)"), "'@SUM(A1)|");
    assert_string_equal(csv(NULL), "|");
}

static void test_buf_refuses_past_limit(void **state)
{
    dash_buf b = {0};
    char *big = malloc(DASH_BUF_MAX);
    (void)state;
    memset(big, 'x', DASH_BUF_MAX);
    dash_buf_put(&b, big, DASH_BUF_MAX);
    assert_true(b.failed);
    dash_buf_puts(&b, "more");
    assert_true(b.failed);
    dash_buf_free(&b);
    free(big);
}

static store_user user(char (*teams)[64], uint32_t n)
{
    store_user u;
    memset(&u, 0, sizeof u);
    strcpy(u.name, "sara");
    u.role = STORE_ROLE_SUPERVISOR;
    u.teams = teams;
    u.n_teams = n;
    return u;
}

static void test_session_tokens_and_idle_logout(void **state)
{
    dash_sessions ds;
    char teams[1][64] = {"north"};
    store_user u = user(teams, 1);
    (void)state;

    assert_int_equal(dash_sessions_init(&ds, 4, 8), 0);
    dash_session *s = dash_session_create(&ds, &u, 1000);
    assert_non_null(s);
    assert_int_equal(strlen(s->token), 64);
    assert_int_equal(strlen(s->csrf), 64);
    assert_string_not_equal(s->token, s->csrf);
    assert_true(dash_session_has_team(s, "north"));
    assert_false(dash_session_has_team(s, "south"));
    char token[DASH_TOKEN_HEX];
    strcpy(token, s->token);

    /* activity keeps it alive; a wrong or truncated token finds nothing */
    assert_ptr_equal(dash_session_find(&ds, token, 1000 + DASH_IDLE_MS - 1), s);
    token[10] ^= 1;
    assert_null(dash_session_find(&ds, token, 1000 + DASH_IDLE_MS));
    token[10] ^= 1;
    assert_null(dash_session_find(&ds, "abc", 1000));
    assert_null(dash_session_find(&ds, NULL, 1000));
    /* 30 idle minutes end it for good */
    assert_null(dash_session_find(&ds, token, 1000 + 2 * DASH_IDLE_MS));
    assert_null(dash_session_find(&ds, token, 1000 + 2 * DASH_IDLE_MS + 1));
    dash_sessions_free(&ds);
}

static void test_session_peek_does_not_extend(void **state)
{
    dash_sessions ds;
    char teams[1][64] = {"north"};
    store_user u = user(teams, 1);
    (void)state;

    assert_int_equal(dash_sessions_init(&ds, 2, 8), 0);
    dash_session *s = dash_session_create(&ds, &u, 0);
    char token[DASH_TOKEN_HEX];
    strcpy(token, s->token);
    assert_non_null(dash_session_peek(&ds, token, DASH_IDLE_MS - 1));
    assert_null(dash_session_peek(&ds, token, DASH_IDLE_MS + 1));
    /* when full, the least recently used session makes room */
    dash_session *a = dash_session_create(&ds, &u, 10);
    dash_session *b = dash_session_create(&ds, &u, 20);
    assert_non_null(a);
    assert_non_null(b);
    char a_token[DASH_TOKEN_HEX];
    strcpy(a_token, a->token);
    assert_non_null(dash_session_create(&ds, &u, 30));
    assert_null(dash_session_peek(&ds, a_token, 31));
    dash_sessions_free(&ds);
    dash_sessions_free(NULL);
}

/* Issue 12: one account logging in again and again used to end every other account's session
 * (256 shared slots, least recently used first). It now ends only its own. */
static void test_session_one_account_never_evicts_another(void **state)
{
    dash_sessions ds;
    char teams[1][64] = {"north"};
    store_user alice = user(teams, 1), bob = user(teams, 1);
    char a_token[DASH_TOKEN_HEX], first_bob[DASH_TOKEN_HEX];
    (void)state;

    snprintf(alice.name, sizeof alice.name, "alice");
    snprintf(bob.name, sizeof bob.name, "bob");
    assert_int_equal(dash_sessions_init(&ds, 4, 2), 0);
    strcpy(a_token, dash_session_create(&ds, &alice, 1)->token);
    strcpy(first_bob, dash_session_create(&ds, &bob, 2)->token);
    /* bob's third session ends bob's first (two per account), not alice's */
    for (uint64_t t = 3; t < 300; t++)
        assert_non_null(dash_session_create(&ds, &bob, t));
    assert_non_null(dash_session_peek(&ds, a_token, 300));
    assert_null(dash_session_peek(&ds, first_bob, 300));
    /* with every slot held by others, a new account is refused, nobody is ended */
    assert_non_null(dash_session_create(&ds, &(store_user){.name = "carol", .n_teams = 0}, 301));
    assert_null(dash_session_create(&ds, &(store_user){.name = "dan", .n_teams = 0}, 302));
    assert_true(ds.full);
    assert_non_null(dash_session_peek(&ds, a_token, 303));
    dash_sessions_free(&ds);
}

/* A node remembers the sessions the store confirmed (made on any node) for its live sockets;
 * the CSRF token comes from the session token, the same on every node. */
static void test_session_remembered_from_the_store(void **state)
{
    dash_sessions ds;
    char north[1][64] = {"north"}, both[2][64] = {"north", "south"};
    store_user u = user(north, 1);
    const char *token = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    char csrf[DASH_TOKEN_HEX], other[DASH_TOKEN_HEX];
    (void)state;

    dash_csrf_of(token, csrf);
    assert_int_equal(strlen(csrf), 64);
    assert_string_not_equal(csrf, token);
    dash_csrf_of("f0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", other);
    assert_string_not_equal(csrf, other);

    assert_int_equal(dash_sessions_init(&ds, 4, 8), 0);
    dash_session *s = dash_session_remember(&ds, token, &u, 100, 200, 300);
    assert_non_null(s);
    assert_string_equal(s->csrf, csrf);
    assert_false(dash_session_has_team(s, "south"));
    /* confirmed again with the account's new teams: the same slot, updated */
    u.teams = both;
    u.n_teams = 2;
    assert_ptr_equal(dash_session_remember(&ds, token, &u, 100, 400, 400), s);
    assert_true(dash_session_has_team(s, "south"));
    assert_ptr_equal(dash_session_peek(&ds, token, 400 + DASH_IDLE_MS - 1), s);
    /* ended on another node: forgotten here */
    dash_session_forget(&ds, token);
    assert_null(dash_session_peek(&ds, token, 500));
    dash_sessions_free(&ds);
}

static int load_ini(const char *text, daemon_config *cfg, char *err, size_t err_size)
{
    char path[] = "/tmp/outpost-dash-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    int rc = config_load(path, cfg, err, err_size);
    unlink(path);
    return rc;
}

static void test_config_dashboard_section(void **state)
{
    daemon_config cfg;
    char err[256];
    (void)state;

    config_defaults(&cfg);
    assert_string_equal(cfg.dash_table, "contacts");
    assert_string_equal(cfg.dash_worker_col, "worker_id");
    assert_string_equal(cfg.dash_date_col, "contacted_at");
    assert_int_equal(load_ini("[server]\ncert = /dev/null\nkey = /dev/null\nca = /dev/null\n"
                              "[store]\npath = /dev/null\n[dashboard]\ntable = visits\n"
                              "worker_column =\ndate_column = seen_at\n",
                              &cfg, err, sizeof err),
                     0);
    assert_string_equal(cfg.dash_table, "visits");
    assert_string_equal(cfg.dash_worker_col, "");
    assert_string_equal(cfg.dash_date_col, "seen_at");
    assert_int_equal(load_ini("[dashboard]\ntable =\n", &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "[dashboard] table"));
    assert_int_equal(load_ini("[dashboard]\ncolour = red\n", &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown key"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_escapes_markup_quotes_and_controls),
        cmocka_unit_test(test_session_remembered_from_the_store),
        cmocka_unit_test(test_csv_quotes_and_defuses_formulas),
        cmocka_unit_test(test_device_text_is_cleaned_for_display),
        cmocka_unit_test(test_buf_refuses_past_limit),
        cmocka_unit_test(test_session_tokens_and_idle_logout),
        cmocka_unit_test(test_session_peek_does_not_extend),
        cmocka_unit_test(test_session_one_account_never_evicts_another),
        cmocka_unit_test(test_config_dashboard_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
