/*
 * The dashboard's HTTPS API against a real outpostd: logins and their cookie, team limits on
 * every view, CSRF on every state change, CSV export, a conflict reversal reaching a connected
 * device, the lockout, logout, and the audit log (admins only, verified by outpost-admin).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "daemon_fixture.h"
#include "dash_client.h"
#include "testclient.h"

#define T_MS 10000
static const char pw[] = "correct horse battery";
static daemon_fixture fx;

typedef struct login {
    char cookie[80];
    char csrf[80];
} login;

static int run_admin(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "printf '%%s\\n' '%s' | %s --store %s %s --password-fd 0 >/dev/null",
             pw, OUTPOST_ADMIN_PATH, fx.store_path, args);
    return system(cmd);
}

static int group_setup(void **state)
{
    (void)state;
    if (fixture_create(&fx, "[dashboard]\ntable = contacts\nworker_column =\ndate_column =\n") !=
            0 ||
        run_admin("user add sup1 --role supervisor --team t1") != 0 ||
        run_admin("user add sup2 --role supervisor --team t2") != 0 ||
        run_admin("user add lock1 --role supervisor --team t1") != 0 ||
        run_admin("user add out1 --role supervisor --team t1") != 0 ||
        run_admin("user add admin1 --role admin") != 0 || fixture_start(&fx) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    fixture_destroy(&fx);
    return 0;
}

static int request(const char *method, const char *path, const login *who, bool with_csrf,
                   const char *extra, const char *body, dash_reply *out)
{
    return dash_request(fx.port, fx.ca_path, method, path, who ? who->cookie : NULL,
                        who && with_csrf ? who->csrf : NULL, extra, body, out);
}

static int try_login(const char *name, const char *password, dash_reply *out)
{
    char body[256];
    snprintf(body, sizeof body, "name=%s&password=%s", name, password);
    for (char *p = body; *p; p++)
        if (*p == ' ')
            *p = '+';
    return request("POST", "/api/login", NULL, false, "X-Requested-With: outpost", body, out);
}

static void log_in(const char *name, login *out)
{
    dash_reply r;
    char cookie[256];

    assert_int_equal(try_login(name, pw, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(dash_reply_header(&r, "set-cookie", cookie, sizeof cookie), 0);
    assert_int_equal(sscanf(cookie, "outpost_session=%64[0-9a-f]", out->cookie), 1);
    assert_int_equal(dash_json_string(r.body, "csrf", out->csrf, sizeof out->csrf), 0);
    dash_reply_free(&r);
}

static void push_row(const test_device *dev, uint64_t seq, const char *id, const char *team,
                     const char *name)
{
    const char *ids[1] = {id};
    testclient *tc = fixture_hello(&fx, dev, NULL);
    proto_msg *push = fixture_insert_push(seq, 1, ids, team, name);
    proto_msg *reply = NULL;

    assert_non_null(tc);
    assert_int_equal(testclient_send(tc, push, T_MS), 0);
    fixture_push_free(push);
    assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ACK, T_MS, &reply), 0);
    proto_msg_free(reply);
    testclient_close(tc);
}

static void test_login_sets_a_strict_session_cookie(void **state)
{
    dash_reply r;
    char value[512];
    (void)state;

    assert_int_equal(try_login("sup1", pw, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(dash_reply_header(&r, "set-cookie", value, sizeof value), 0);
    assert_non_null(strstr(value, "HttpOnly"));
    assert_non_null(strstr(value, "Secure"));
    assert_non_null(strstr(value, "SameSite=Strict"));
    assert_int_equal(dash_reply_header(&r, "strict-transport-security", value, sizeof value), 0);
    assert_non_null(strstr(value, "max-age="));
    assert_int_equal(dash_reply_header(&r, "content-security-policy", value, sizeof value), 0);
    assert_non_null(strstr(value, "script-src 'self'"));
    assert_null(strstr(value, "unsafe-inline"));
    assert_non_null(strstr(r.body, "\"teams\":[\"t1\"]"));
    dash_reply_free(&r);

    /* without the custom header a cross-site form post is refused */
    assert_int_equal(request("POST", "/api/login", NULL, false, NULL,
                             "name=sup1&password=correct+horse+battery", &r),
                     0);
    assert_int_equal(r.status, 403);
    dash_reply_free(&r);
    /* a wrong password */
    assert_int_equal(try_login("sup1", "not the password", &r), 0);
    assert_int_equal(r.status, 401);
    assert_null(strstr(r.headers, "set-cookie"));
    dash_reply_free(&r);
}

static void test_api_needs_a_session(void **state)
{
    dash_reply r;
    login bogus;
    (void)state;

    assert_int_equal(request("GET", "/api/devices", NULL, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    dash_reply_free(&r);
    memset(&bogus, 0, sizeof bogus);
    memset(bogus.cookie, 'a', 64);
    assert_int_equal(request("GET", "/api/records", &bogus, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    dash_reply_free(&r);
}

static void test_views_are_limited_to_the_supervisors_teams(void **state)
{
    test_device d1, d2;
    login s1, s2;
    dash_reply r;
    (void)state;

    assert_int_equal(fixture_enroll_device(&fx, "w1", &d1), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w2", &d2), 0);
    push_row(&d1, 1, "r-t1-a", "t1", "Alpha");
    push_row(&d2, 1, "r-t2-z", "t2", "Zulu");
    log_in("sup1", &s1);
    log_in("sup2", &s2);

    assert_int_equal(request("GET", "/api/records", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"r-t1-a\""));
    assert_non_null(strstr(r.body, "\"Alpha\""));
    assert_null(strstr(r.body, "r-t2-z"));
    dash_reply_free(&r);
    /* asking for the other team by filter or by id shows nothing of it */
    assert_int_equal(request("GET", "/api/records?team=t2", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "r-t2-z"));
    dash_reply_free(&r);
    assert_int_equal(request("GET", "/api/record?id=r-t2-z", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    assert_null(strstr(r.body, "Zulu"));
    dash_reply_free(&r);
    /* search text arrives URL-decoded ("Al%70ha" is "Alpha", "+" a space) */
    assert_int_equal(request("GET", "/api/records?q=Al%70ha", &s1, false, NULL, NULL, &r), 0);
    assert_non_null(strstr(r.body, "\"r-t1-a\""));
    dash_reply_free(&r);
    assert_int_equal(request("GET", "/api/records?q=Alpha+note", &s1, false, NULL, NULL, &r), 0);
    assert_non_null(strstr(r.body, "\"r-t1-a\""));
    dash_reply_free(&r);
    assert_int_equal(request("GET", "/api/records?q=Alpha%2Bnote", &s1, false, NULL, NULL, &r), 0);
    assert_non_null(strstr(r.body, "\"rows\":[]"));
    dash_reply_free(&r);
    /* its own record opens in full */
    assert_int_equal(request("GET", "/api/record?id=r-t1-a", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"values\":[\"r-t1-a\",\"t1\",\"Alpha\",\"note\"]"));
    dash_reply_free(&r);
    /* devices: w1's for t1, w2's for t2 */
    assert_int_equal(request("GET", "/api/devices", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, d1.id));
    assert_null(strstr(r.body, d2.id));
    assert_null(strstr(r.body, "\"last_seen_ms\":0,"));
    dash_reply_free(&r);
    assert_int_equal(request("GET", "/api/records", &s2, false, NULL, NULL, &r), 0);
    assert_non_null(strstr(r.body, "r-t2-z"));
    assert_null(strstr(r.body, "r-t1-a"));
    dash_reply_free(&r);
}

static void test_state_changes_need_the_csrf_token(void **state)
{
    login s1;
    dash_reply r;
    char value[256];
    (void)state;

    log_in("sup1", &s1);
    assert_int_equal(request("POST", "/api/decide", &s1, false, NULL, "id=1&action=keep", &r), 0);
    assert_int_equal(r.status, 403);
    dash_reply_free(&r);
    login wrong = s1;
    wrong.csrf[0] = wrong.csrf[0] == 'a' ? 'b' : 'a';
    assert_int_equal(request("POST", "/api/decide", &wrong, true, NULL, "id=1&action=keep", &r),
                     0);
    assert_int_equal(r.status, 403);
    dash_reply_free(&r);
    assert_int_equal(request("GET", "/api/export?view=records", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 403);
    dash_reply_free(&r);

    /* with the token: the export is a CSV attachment of the view */
    assert_int_equal(request("GET", "/api/export?view=records", &s1, true, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(dash_reply_header(&r, "content-type", value, sizeof value), 0);
    assert_non_null(strstr(value, "text/csv"));
    assert_int_equal(dash_reply_header(&r, "content-disposition", value, sizeof value), 0);
    assert_non_null(strstr(value, "attachment"));
    assert_non_null(strstr(r.body, "id,team_id,name,note\r\n"));
    assert_non_null(strstr(r.body, "r-t1-a,t1,Alpha,note\r\n"));
    assert_null(strstr(r.body, "r-t2-z"));
    dash_reply_free(&r);
}

/* An UPDATE of name (old -> new) on row id, as device dev's transaction seq with clock hlc. */
static void push_name(testclient *tc, uint64_t seq, uint64_t hlc, const char *id,
                      const char *old_name, const char *new_name)
{
    proto_col cols[2];
    proto_change ch;
    proto_table_changes tc_changes;
    proto_msg msg, *reply = NULL;

    memset(cols, 0, sizeof cols);
    cols[0].idx = 0;
    cols[0].old_val.type = PROTO_TEXT;
    cols[0].old_val.u.b.p = (const uint8_t *)id;
    cols[0].old_val.u.b.n = (uint32_t)strlen(id);
    cols[0].new_val.type = PROTO_UNDEF;
    cols[1].idx = 2;
    cols[1].old_val.type = PROTO_TEXT;
    cols[1].old_val.u.b.p = (const uint8_t *)old_name;
    cols[1].old_val.u.b.n = (uint32_t)strlen(old_name);
    cols[1].new_val.type = PROTO_TEXT;
    cols[1].new_val.u.b.p = (const uint8_t *)new_name;
    cols[1].new_val.u.b.n = (uint32_t)strlen(new_name);
    ch.op = PROTO_OP_UPDATE;
    ch.n_cols = 2;
    ch.cols = cols;
    tc_changes.table = FIXTURE_TABLE;
    tc_changes.n_columns = FIXTURE_N_COLUMNS;
    tc_changes.n_changes = 1;
    tc_changes.changes = &ch;
    memset(&msg, 0, sizeof msg);
    msg.type = PROTO_MSG_PUSH;
    msg.u.push.seq = seq;
    msg.u.push.hlc = hlc;
    msg.u.push.schema_version = 1;
    msg.u.push.n_tables = 1;
    msg.u.push.tables = &tc_changes;
    assert_int_equal(testclient_send(tc, &msg, T_MS), 0);
    assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ACK, T_MS, &reply), 0);
    proto_msg_free(reply);
}

/* The name of row id as a pull from cursor 0 sees it. */
static void pull_name(testclient *tc, const char *id, char *out, size_t size)
{
    proto_msg req, *rows = NULL;
    bool more = true;
    uint64_t cursor = 0;

    out[0] = 0;
    while (more) {
        memset(&req, 0, sizeof req);
        req.type = PROTO_MSG_PULL;
        req.u.pull.cursor = cursor;
        req.u.pull.limit = 500;
        assert_int_equal(testclient_send(tc, &req, T_MS), 0);
        assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ROWS, T_MS, &rows), 0);
        for (uint32_t t = 0; t < rows->u.rows.n_tables; t++) {
            const proto_table_rows *tr = &rows->u.rows.tables[t];
            for (uint32_t i = 0; i < tr->n_rows; i++) {
                const proto_value *v = tr->rows + (size_t)i * tr->n_columns;
                if (v[0].u.b.n == strlen(id) && memcmp(v[0].u.b.p, id, v[0].u.b.n) == 0 &&
                    v[2].u.b.n < size) {
                    memcpy(out, v[2].u.b.p, v[2].u.b.n);
                    out[v[2].u.b.n] = 0;
                }
            }
        }
        more = rows->u.rows.more;
        cursor = rows->u.rows.cursor;
        proto_msg_free(rows);
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void test_reversal_reaches_a_connected_device(void **state)
{
    test_device a, b;
    login s1;
    dash_reply r;
    char body[64], id[24], name[64];
    proto_msg *msg = NULL;
    (void)state;

    assert_int_equal(fixture_enroll_device(&fx, "w1", &a), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w1", &b), 0);
    push_row(&a, 1, "k-1", "t1", "Orig");
    testclient *ta = fixture_hello(&fx, &a, NULL);
    testclient *tb = fixture_hello(&fx, &b, NULL);
    assert_non_null(ta);
    assert_non_null(tb);
    /* b writes later by its clock; a's older write arrives second and loses */
    push_name(tb, 1, PROTO_HLC_MAKE(now_ms(), 0), "k-1", "Orig", "Newer");
    push_name(ta, 2, PROTO_HLC_MAKE(now_ms() - 60000, 0), "k-1", "Orig", "Older");
    pull_name(tb, "k-1", name, sizeof name);
    assert_string_equal(name, "Newer");
    while (testclient_recv(tb, 300, &msg) == 0) /* drain the NOTIFY of a's push */
        proto_msg_free(msg);

    log_in("sup1", &s1);
    assert_int_equal(request("GET", "/api/conflicts", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"winning\":\"Newer\",\"losing\":\"Older\""));
    const char *p = strstr(r.body, "{\"id\":");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "{\"id\":%23[0-9]", id), 1);
    dash_reply_free(&r);
    /* sup2 (t2) cannot decide t1's conflict */
    login s2;
    log_in("sup2", &s2);
    snprintf(body, sizeof body, "id=%s&action=reverse", id);
    assert_int_equal(request("POST", "/api/decide", &s2, true, NULL, body, &r), 0);
    assert_int_equal(r.status, 404);
    dash_reply_free(&r);

    assert_int_equal(request("POST", "/api/decide", &s1, true, NULL, body, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"decision\":\"reversed\""));
    dash_reply_free(&r);
    /* the connected device is told, and its next pull brings the reversed value */
    assert_int_equal(testclient_recv_type(tb, PROTO_MSG_NOTIFY, T_MS, &msg), 0);
    proto_msg_free(msg);
    pull_name(tb, "k-1", name, sizeof name);
    assert_string_equal(name, "Older");
    /* decided once only */
    assert_int_equal(request("POST", "/api/decide", &s1, true, NULL, body, &r), 0);
    assert_int_equal(r.status, 409);
    dash_reply_free(&r);
    testclient_close(ta);
    testclient_close(tb);
}

static void push_refused(const test_device *dev, uint64_t seq, const char *id, const char *team,
                         const char *name)
{
    const char *ids[1] = {id};
    testclient *tc = fixture_hello(&fx, dev, NULL);
    proto_msg *push = fixture_insert_push(seq, 1, ids, team, name);
    proto_msg *reply = NULL;
    assert_non_null(tc);
    assert_int_equal(testclient_send(tc, push, T_MS), 0);
    fixture_push_free(push);
    assert_int_equal(testclient_recv_type(tc, PROTO_MSG_REJECT, T_MS, &reply), 0);
    assert_int_equal(reply->type, PROTO_MSG_REJECT);
    proto_msg_free(reply);
    testclient_close(tc);
}

/* A refused write reaches the supervisors' conflict queue: with the values the worker typed
 * when the row is in the worker's own team, without them (to the worker's team) when the row
 * was aimed at another team, and never in the other team's queue. */
static void test_refusals_reach_the_queue_without_leaking(void **state)
{
    test_device d1, d2;
    login s1, s2;
    dash_reply r;
    char body[64], id[24];
    (void)state;

    assert_int_equal(fixture_enroll_device(&fx, "w1", &d1), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w2", &d2), 0);
    push_row(&d2, 1, "claimed-k", "t2", "Theirs");
    push_refused(&d1, 1, "claimed-k", "t1", "Mine-typed-in-t1"); /* a key team two holds */
    push_refused(&d1, 2, "aimed-k", "t2", "Aimed-at-t2");        /* not the worker's team */

    log_in("sup1", &s1);
    assert_int_equal(request("GET", "/api/conflicts", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"refused\":{\"code\":20"));
    assert_non_null(strstr(r.body, "\"losing\":\"Mine-typed-in-t1\""));
    assert_non_null(strstr(r.body, "\"row\":\"aimed-k\""));
    assert_null(strstr(r.body, "Aimed-at-t2"));
    assert_null(strstr(r.body, "Theirs"));
    const char *p = strstr(r.body, "\"row\":\"aimed-k\"");
    while (p > r.body && strncmp(p, "{\"id\":", 6) != 0)
        p--;
    assert_int_equal(sscanf(p, "{\"id\":%23[0-9]", id), 1);
    dash_reply_free(&r);

    log_in("sup2", &s2);
    assert_int_equal(request("GET", "/api/conflicts", &s2, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "Mine-typed-in-t1"));
    assert_null(strstr(r.body, "aimed-k"));
    assert_null(strstr(r.body, "Aimed-at-t2"));
    dash_reply_free(&r);

    /* Nothing of a refusal is in the store to reverse; a supervisor can mark it seen. */
    snprintf(body, sizeof body, "id=%s&action=reverse", id);
    assert_int_equal(request("POST", "/api/decide", &s1, true, NULL, body, &r), 0);
    assert_int_not_equal(r.status, 200);
    dash_reply_free(&r);
    snprintf(body, sizeof body, "id=%s&action=keep", id);
    assert_int_equal(request("POST", "/api/decide", &s1, true, NULL, body, &r), 0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);
}

static void test_lockout_after_five_failures(void **state)
{
    dash_reply r;
    (void)state;

    for (int i = 0; i < 4; i++) {
        assert_int_equal(try_login("lock1", "not the password", &r), 0);
        assert_int_equal(r.status, 401);
        dash_reply_free(&r);
    }
    assert_int_equal(try_login("lock1", "not the password", &r), 0);
    assert_int_equal(r.status, 423);
    assert_non_null(strstr(r.body, "locked"));
    dash_reply_free(&r);
    assert_int_equal(try_login("lock1", pw, &r), 0);
    assert_int_equal(r.status, 423);
    dash_reply_free(&r);
}

static void test_logout_ends_the_session(void **state)
{
    login s;
    dash_reply r;
    (void)state;

    log_in("out1", &s);
    assert_int_equal(request("GET", "/api/me", &s, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);
    assert_int_equal(request("POST", "/api/logout", &s, true, NULL, "", &r), 0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);
    assert_int_equal(request("GET", "/api/me", &s, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    dash_reply_free(&r);
}

static void test_audit_is_for_admins_and_verifies(void **state)
{
    login s1, adm;
    dash_reply r;
    char cmd[1024];
    (void)state;

    log_in("sup1", &s1);
    assert_int_equal(request("GET", "/api/audit", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 403);
    dash_reply_free(&r);
    log_in("admin1", &adm);
    assert_int_equal(request("GET", "/api/audit", &adm, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"actor\":\"sup1\",\"action\":\"login.ok\""));
    assert_non_null(strstr(r.body, "\"actor\":\"sup1\",\"action\":\"login.fail\""));
    assert_non_null(strstr(r.body, "\"actor\":\"lock1\",\"action\":\"login.locked\""));
    assert_non_null(strstr(r.body, "\"action\":\"record.view\",\"target\":\"contacts/r-t1-a\""));
    assert_non_null(strstr(r.body, "\"action\":\"export\",\"target\":\"view=records"));
    assert_non_null(strstr(r.body, "\"action\":\"conflict.reverse\""));
    assert_non_null(strstr(r.body, "\"actor\":\"out1\",\"action\":\"logout\""));
    assert_non_null(strstr(r.body, "\"address\":\"127.0.0.1\""));
    /* no record contents in the audit log */
    assert_null(strstr(r.body, "Alpha"));
    dash_reply_free(&r);
    /* the log never holds record contents either */
    assert_false(fixture_log_contains(&fx, "Alpha"));
    assert_false(fixture_log_contains(&fx, "Older"));

    snprintf(cmd, sizeof cmd, "%s --store %s audit verify >/dev/null", OUTPOST_ADMIN_PATH,
             fx.store_path);
    int status = system(cmd);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* someone with the file and the sqlite3 shell edits row 2 around the triggers */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx.store_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TRIGGER _outpost_audit_no_update;"
                                  "UPDATE _outpost_audit SET actor = 'someone' WHERE id = 2;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    snprintf(cmd, sizeof cmd, "%s --store %s audit verify 2>&1 | grep -q 'first bad row 2:'",
             OUTPOST_ADMIN_PATH, fx.store_path);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s --store %s audit verify >/dev/null 2>&1", OUTPOST_ADMIN_PATH,
             fx.store_path);
    status = system(cmd);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_sets_a_strict_session_cookie),
        cmocka_unit_test(test_api_needs_a_session),
        cmocka_unit_test(test_views_are_limited_to_the_supervisors_teams),
        cmocka_unit_test(test_state_changes_need_the_csrf_token),
        cmocka_unit_test(test_reversal_reaches_a_connected_device),
        cmocka_unit_test(test_refusals_reach_the_queue_without_leaking),
        cmocka_unit_test(test_lockout_after_five_failures),
        cmocka_unit_test(test_logout_ends_the_session),
        cmocka_unit_test(test_audit_is_for_admins_and_verifies),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
