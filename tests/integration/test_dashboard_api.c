/*
 * The dashboard's HTTPS API against a real outpostd: logins and their cookie, team limits on
 * every view, CSRF on every state change, CSV export, a conflict reversal reaching a connected
 * device, the lockout, logout, and the audit log (admins only, verified by outpost-admin).
 * Built a second time with OUTPOST_DASH_ON_POSTGRESQL as test_daemon_postgresql: outpostd
 * serving from a private PostgreSQL cluster (unit/pg_cluster.h), the cases that do not read the
 * store's SQLite file directly.
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
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "daemon_fixture.h"
#include "dash_client.h"
#include "store.h"
#include "testclient.h"
#include "strf.h"
#ifdef OUTPOST_DASH_ON_POSTGRESQL
#include "db.h"
#include "pg_cluster.h"
static pg_cluster cluster;
static daemon_fixture node2; /* a second outpostd on the same database */
#endif

#define T_MS 10000
static const char pw[] = "correct horse battery";
static daemon_fixture fx;

typedef struct login {
    char cookie[80];
    char csrf[80];
} login;

static int run_admin(const char *args)
{
#ifdef OUTPOST_DASH_ON_POSTGRESQL
    return systemf("printf '%%s\\n' '%s' | '%s' --store 'postgresql:%s' --audit-key %s%s %s "
                   "--password-fd 0 >/dev/null",
                   pw, OUTPOST_ADMIN_PATH, fx.conninfo, fx.store_path, STORE_AUDIT_KEY_SUFFIX,
                   args);
#else
    return systemf("printf '%%s\\n' '%s' | '%s' --store %s %s --password-fd 0 >/dev/null", pw,
                   OUTPOST_ADMIN_PATH, fx.store_path, args);
#endif
}

static int create_fixture(const char *extra)
{
#ifdef OUTPOST_DASH_ON_POSTGRESQL
    if (!pg_cluster_available() || pg_cluster_start(&cluster) != 0)
        return -1;
    return fixture_create_postgresql(&fx, extra, cluster.conninfo);
#else
    return fixture_create(&fx, extra);
#endif
}

static int group_setup(void **state)
{
    (void)state;
    if (create_fixture("[dashboard]\ntable = contacts\nworker_column =\ndate_column =\n"
                            "[audit]\ncheckpoint_file = checkpoints.txt\n") != 0 ||
        run_admin("user add sup1 --role supervisor --team t1") != 0 ||
        run_admin("user add sup2 --role supervisor --team t2") != 0 ||
        run_admin("user add lock1 --role supervisor --team t1") != 0 ||
        run_admin("user add out1 --role supervisor --team t1") != 0 ||
        run_admin("user add dis1 --role supervisor --team t1") != 0 ||
        run_admin("user add admin1 --role admin") != 0 ||
        run_admin("user add live1 --role supervisor --team t1") != 0 ||
        run_admin("user add live2 --role supervisor --team t1") != 0 ||
        run_admin("user add live3 --role supervisor --team t1") != 0 ||
        run_admin("user add live4 --role supervisor --team t1") != 0 ||
        run_admin("user add live5 --role supervisor --team t1") != 0 ||
        run_admin("user add live6 --role supervisor --team t1") != 0 ||
        run_admin("user add why1 --role supervisor --team t1") != 0 ||
        run_admin("user add why2 --role supervisor --team t1") != 0 ||
        run_admin("user add why3 --role supervisor --team t1") != 0 || fixture_start(&fx) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
#ifdef OUTPOST_DASH_ON_POSTGRESQL
    fixture_destroy(&node2); /* stops it if a failed case left it running */
#endif
    fixture_destroy(&fx);
#ifdef OUTPOST_DASH_ON_POSTGRESQL
    pg_cluster_stop(&cluster);
#endif
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

static int count_in(const char *body, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(body, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
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

static int64_t changes_row_index(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    int64_t n = -1;

    assert_int_equal(sqlite3_open(fx.store_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type ="
                                            " 'index' AND name = '_outpost_changes_row'",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
}

/* A record's history walks the change log back from the row's latest entry (prev_seq), so the
 * log has no index by row for every push to write. An older store's index goes the first time
 * this version opens it (outpost-admin here), before any dashboard read. */
static void test_change_log_has_no_index_by_row(void **state)
{
    (void)state;
    assert_int_equal(changes_row_index(), 0);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx.store_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE INDEX _outpost_changes_row"
                                  " ON _outpost_changes(table_id, pk, seq)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(changes_row_index(), 1);
    /* outpost-admin opens it as an older store */
    assert_int_equal(systemf("'%s' --store %s audit verify >/dev/null", OUTPOST_ADMIN_PATH,
                             fx.store_path),
                     0);
    assert_int_equal(changes_row_index(), 0);
}

/* The login takes a form body, and says so to whoever sends JSON. */
static void test_login_body_is_a_form(void **state)
{
    dash_reply r;
    (void)state;

    assert_int_equal(request("POST", "/api/login", NULL, false, "X-Requested-With: outpost",
                             "{\"name\":\"sup1\",\"password\":\"x\"}", &r), 0);
    assert_int_equal(r.status, 400);
    /* (the JSON reply escapes the '&' between the two fields) */
    assert_non_null(strstr(r.body, "name and password are required, as a form body "
                                   "(application/x-www-form-urlencoded: name=NAME"));
    assert_non_null(strstr(r.body, "password=PASSWORD), not JSON\"}"));
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

/* Sends ch (a change to the fixture's table) as the device's transaction seq with clock hlc;
 * returns its ACK (the caller frees it). */
static proto_msg *push_change(testclient *tc, uint64_t seq, uint64_t hlc, proto_change *ch)
{
    proto_table_changes tc_changes;
    proto_msg msg, *reply = NULL;

    tc_changes.table = FIXTURE_TABLE;
    tc_changes.n_columns = FIXTURE_N_COLUMNS;
    tc_changes.n_changes = 1;
    tc_changes.changes = ch;
    memset(&msg, 0, sizeof msg);
    msg.type = PROTO_MSG_PUSH;
    msg.u.push.seq = seq;
    msg.u.push.hlc = hlc;
    msg.u.push.schema_version = 1;
    msg.u.push.n_tables = 1;
    msg.u.push.tables = &tc_changes;
    assert_int_equal(testclient_send(tc, &msg, T_MS), 0);
    assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ACK, T_MS, &reply), 0);
    return reply;
}

/* An UPDATE of name (old -> new) on row id, as device dev's transaction seq with clock hlc. */
static void push_name(testclient *tc, uint64_t seq, uint64_t hlc, const char *id,
                      const char *old_name, const char *new_name)
{
    proto_col cols[2];
    proto_change ch;

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
    proto_msg_free(push_change(tc, seq, hlc, &ch));
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

/* Deletes row id (team_id team, name name, note as fixture_insert_push writes it) as a device
 * that has seen it so. */
static void push_delete(testclient *tc, uint64_t seq, uint64_t hlc, const char *id,
                        const char *team, const char *name)
{
    const char *old[FIXTURE_N_COLUMNS] = {id, team, name, "note"};
    proto_col cols[FIXTURE_N_COLUMNS];
    proto_change ch;

    memset(cols, 0, sizeof cols);
    for (uint32_t i = 0; i < FIXTURE_N_COLUMNS; i++) {
        cols[i].idx = i;
        cols[i].old_val.type = PROTO_TEXT;
        cols[i].old_val.u.b.p = (const uint8_t *)old[i];
        cols[i].old_val.u.b.n = (uint32_t)strlen(old[i]);
        cols[i].new_val.type = PROTO_UNDEF;
    }
    ch.op = PROTO_OP_DELETE;
    ch.n_cols = FIXTURE_N_COLUMNS;
    ch.cols = cols;
    proto_msg *reply = push_change(tc, seq, hlc, &ch);
    assert_int_equal(reply->u.ack.n_conflicts, 0);
    proto_msg_free(reply);
}

/* The id of the queue's one conflict on row key, after checking that the queue does not offer
 * Reverse for it and says why (its text contains why). */
static void queued_without_reverse(login *s, const char *key, const char *why, char id[24])
{
    dash_reply r;
    char row[64];

    snprintf(row, sizeof row, "\"row\":\"%s\"", key);
    assert_int_equal(request("GET", "/api/conflicts", s, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(count_in(r.body, row), 1);
    const char *p = strstr(r.body, row);
    while (p > r.body && strncmp(p, "{\"id\":", 6) != 0)
        p--;
    assert_int_equal(sscanf(p, "{\"id\":%23[0-9]", id), 1);
    const char *end = strstr(p, "\"decision\":");
    assert_non_null(end);
    const char *no = strstr(p, "\"reversible\":false,\"reverse_refused\":");
    if (!no || no > end)
        fail_msg("the queue offers Reverse for %s: %.400s", key, p);
    assert_non_null(strstr(no, why));
    dash_reply_free(&r);
}

/* POST /api/decide refuses to reverse conflict id with why (400), then keeps it (200). */
static void reverse_refused_then_kept(login *s, const char *id, const char *why)
{
    dash_reply r;
    char body[64];

    snprintf(body, sizeof body, "id=%s&action=reverse", id);
    assert_int_equal(request("POST", "/api/decide", s, true, NULL, body, &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, why));
    dash_reply_free(&r);
    snprintf(body, sizeof body, "id=%s&action=keep", id);
    assert_int_equal(request("POST", "/api/decide", s, true, NULL, body, &r), 0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);
}

/* A conflict on the name of row key (team t1): device b's "Newer" wins over a's older
 * "Older". Then b writes again through later (its open connection and next seq 2); the queue
 * is then read as sup1 into *s. */
static void conflict_then(const char *key, void (*later)(testclient *tb, const char *key),
                          login *s)
{
    test_device a, b;

    assert_int_equal(fixture_enroll_device(&fx, "w1", &a), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w1", &b), 0);
    push_row(&a, 1, key, "t1", "Orig");
    testclient *ta = fixture_hello(&fx, &a, NULL);
    testclient *tb = fixture_hello(&fx, &b, NULL);
    assert_non_null(ta);
    assert_non_null(tb);
    push_name(tb, 1, PROTO_HLC_MAKE(now_ms(), 0), key, "Orig", "Newer");
    push_name(ta, 2, PROTO_HLC_MAKE(now_ms() - 60000, 0), key, "Orig", "Older");
    later(tb, key);
    testclient_close(ta);
    testclient_close(tb);
    log_in("sup1", s);
}

static void delete_it(testclient *tb, const char *key)
{
    push_delete(tb, 2, PROTO_HLC_MAKE(now_ms() + 1, 0), key, "t1", "Newer");
}

static void edit_it_again(testclient *tb, const char *key)
{
    push_name(tb, 2, PROTO_HLC_MAKE(now_ms() + 1, 0), key, "Newer", "Latest");
}

/* F8: a conflict on a record deleted since is not offered for Reverse, the queue says why, and
 * POST /api/decide refuses a reversal with the same words (it would bring the deleted record
 * back); Keep closes it. */
static void test_conflict_on_a_deleted_record_offers_no_reverse(void **state)
{
    login s1;
    dash_reply r;
    char id[24];
    static const char why[] = "the record was deleted since: reversing would bring it back";
    (void)state;

    conflict_then("del-1", delete_it, &s1);
    queued_without_reverse(&s1, "del-1", why, id);
    reverse_refused_then_kept(&s1, id, why);
    assert_int_equal(request("GET", "/api/record?table=contacts&id=del-1", &s1, false, NULL,
                             NULL, &r), 0);
    assert_int_equal(r.status, 404); /* still deleted: nothing was brought back */
    dash_reply_free(&r);
}

/* S1: a conflict whose field was written again since (here the winner's own later edit) is
 * not offered for Reverse: the reversal would overwrite that later value, which the supervisor
 * never saw, without a trace for its writer. The queue and POST /api/decide say so alike. */
static void test_conflict_on_a_field_changed_since_offers_no_reverse(void **state)
{
    login s1;
    dash_reply r;
    char id[24];
    static const char why[] = "the field was changed again since this conflict";
    (void)state;

    conflict_then("chg-1", edit_it_again, &s1);
    queued_without_reverse(&s1, "chg-1", why, id);
    reverse_refused_then_kept(&s1, id, why);
    assert_int_equal(request("GET", "/api/record?table=contacts&id=chg-1", &s1, false, NULL,
                             NULL, &r), 0);
    assert_int_equal(r.status, 200);
    /* the later edit stands */
    assert_non_null(strstr(r.body, "\"values\":[\"chg-1\",\"t1\",\"Latest\",\"note\"]"));
    dash_reply_free(&r);
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

static int audit_count(const char *actor, const char *action)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    int n = -1;

    assert_int_equal(sqlite3_open(fx.store_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM _outpost_audit WHERE actor = ?1"
                                            " AND action = ?2",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(stmt, 1, actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, action, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    n = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
}

/* An outsider's finding: attempts for a locked name still took places in the login lane's
 * queue (8), so a flood of them got other accounts' logins 503. Once the store has answered
 * "locked", the node answers the next attempts itself for a moment (never queued: no audit row
 * each either), and one name's logins can hold at most two places. */
static void test_locked_logins_do_not_take_the_login_lane(void **state)
{
    enum { FLOOD = 24 };
    dash_reply r;
    pid_t kids[FLOOD];
    login real;
    int n_423 = 0, n_other = 0;
    (void)state;

    for (int i = 0; i < 5; i++) {
        assert_int_equal(try_login("flood1", "not the password", &r), 0);
        assert_int_equal(r.status, i < 4 ? 401 : 423);
        dash_reply_free(&r);
    }
    assert_int_equal(audit_count("flood1", "login.locked"), 1);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(try_login("flood1", "not the password", &r), 0);
        assert_int_equal(r.status, 423);
        assert_non_null(strstr(r.body, "locked"));
        dash_reply_free(&r);
    }
    /* answered by the node: the worker saw none of them */
    assert_int_equal(audit_count("flood1", "login.locked"), 1);

    /* a burst for the locked name, and meanwhile a real login of another account */
    for (int i = 0; i < FLOOD; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            dash_reply k;
            int rc = try_login("flood1", "not the password", &k);
            _exit(rc != 0 ? 2 : k.status == 423 ? 0 : k.status == 503 ? 3 : 1);
        }
    }
    log_in("sup2", &real);
    for (int i = 0; i < FLOOD; i++) {
        int status;
        assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            n_423++;
        else
            n_other++;
    }
    if (n_other != 0)
        fail_msg("%d of %d attempts for a locked name were not answered 423", n_other, FLOOD);
    assert_int_equal(n_423, FLOOD);
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

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Sessions live in the store, not in one outpostd: a session another node started (here a
 * second handle on the store, as a second node would hold one) is known to this outpostd, a
 * logout here ends it there, and one ended there is refused here. */
static void test_sessions_are_shared_through_the_store(void **state)
{
    char err[256] = "";
    store *node1 = NULL;
    store_session found;
    login s, mine;
    dash_reply r;
    (void)state;

    assert_int_equal(fixture_store_open(&fx, &node1, err, sizeof err), 0);
    /* started on node 1, used here: the CSRF token comes from the token, so this node has it */
    assert_int_equal(store_session_create(node1, "sup1", wall_ms(), s.cookie, NULL), 0);
    assert_int_equal(request("GET", "/api/me", &s, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"user\":\"sup1\""));
    assert_int_equal(dash_json_string(r.body, "csrf", s.csrf, sizeof s.csrf), 0);
    dash_reply_free(&r);
    assert_int_equal(request("GET", "/api/records", &s, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);
    /* logged out here: gone on node 1 */
    assert_int_equal(request("POST", "/api/logout", &s, true, NULL, "", &r), 0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);
    assert_int_equal(store_session_find(node1, s.cookie, wall_ms(), false, &found),
                     STORE_ENOTFOUND);

    /* started here, known on node 1; logged out on node 1: refused here */
    log_in("sup1", &mine);
    assert_int_equal(store_session_find(node1, mine.cookie, wall_ms(), false, &found), 0);
    assert_string_equal(found.user, "sup1");
    assert_int_equal(store_session_end(node1, mine.cookie), 0);
    assert_int_equal(request("GET", "/api/records", &mine, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.body, "not logged in"));
    dash_reply_free(&r);
    assert_int_equal(request("GET", "/api/me", &mine, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    dash_reply_free(&r);
    store_close(node1);
}

/* ---- /live follows the store, as every API call does ---------------------------------------- */

static int admin_cmd(const char *args);

static dash_live *live_open(const char *cookie)
{
    char origin[64];
    dash_live *l = NULL;

    snprintf(origin, sizeof origin, "https://127.0.0.1:%u", (unsigned)fx.port);
    assert_int_equal(dash_live_open(fx.port, fx.ca_path, cookie, origin, &l), 101);
    return l;
}

/* Frames come until one names event (a device's push brings "sync", then "records"). */
static void expect_live_event(dash_live *l, const char *event)
{
    char frame[256] = "";

    for (int i = 0; i < 4 && !strstr(frame, event); i++)
        assert_int_equal(dash_live_next(l, T_MS, frame, sizeof frame), 1);
    if (!strstr(frame, event))
        fail_msg("expected a live event naming %s, got %s", event, frame);
}

/* The server closes the socket within ms, with no event before. */
static void expect_live_closed(dash_live *l, int ms, const char *who)
{
    char frame[256] = "";
    int rc = dash_live_next(l, ms, frame, sizeof frame);

    if (rc != 2)
        fail_msg("/live of %s: expected the server to close it, got %d %s", who, rc, frame);
    dash_live_close(l);
}

/* A new handshake with cookie gets no live socket: refused, or closed before any event. */
static void expect_live_refused(const char *cookie, const char *who)
{
    char origin[64];
    dash_live *l = NULL;
    int status;

    snprintf(origin, sizeof origin, "https://127.0.0.1:%u", (unsigned)fx.port);
    status = dash_live_open(fx.port, fx.ca_path, cookie, origin, &l);
    if (status == 101)
        expect_live_closed(l, 1500, who);
    else
        assert_true(status >= 400);
}

static void sessions_sql(const char *sql)
{
    sqlite3 *db = NULL;
    char *err = NULL;

    assert_int_equal(sqlite3_open(fx.store_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    sqlite3_close(db);
}

/* A /live socket is the store's session like any API call: its handshake and then every few
 * seconds it is checked there, so a session ended anywhere (account disabled, removed, idle or
 * age limit, ended on another node) gets no socket and loses an open one; a change of teams
 * applies to an open socket; a page of another origin gets none. */
static void test_live_follows_the_store(void **state)
{
    char sql[256], bad[80], frame[256];
    login s[6], other;
    dash_live *l[6], *mine;
    test_device d1, d2;
    store *node1 = NULL;
    dash_live *l_other = NULL;
    (void)state;

    assert_int_equal(fixture_enroll_device(&fx, "w1", &d1), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w2", &d2), 0);
    for (int i = 0; i < 6; i++) {
        char name[16];
        snprintf(name, sizeof name, "live%d", i + 1);
        log_in(name, &s[i]);
    }
    /* another origin, or an opaque one, gets no socket; no cookie, or a made-up one, neither */
    assert_true(dash_live_open(fx.port, fx.ca_path, s[0].cookie, "https://evil.example",
                               &l_other) >= 400);
    assert_true(dash_live_open(fx.port, fx.ca_path, s[0].cookie, "null", &l_other) >= 400);
    snprintf(bad, sizeof bad, "https://127.0.0.1:%u.evil.example", (unsigned)fx.port);
    assert_true(dash_live_open(fx.port, fx.ca_path, s[0].cookie, bad, &l_other) >= 400);
    expect_live_refused(NULL, "no cookie");
    memset(bad, 'a', 64);
    bad[64] = 0;
    expect_live_refused(bad, "a made-up token");
    /* a session this node never served (another node's login, or before a restart) is let in */
    assert_int_equal(store_open(fx.store_path, false, &node1, bad, sizeof bad), 0);
    assert_int_equal(store_session_create(node1, "sup1", wall_ms(), other.cookie, NULL), 0);
    store_close(node1);
    l_other = live_open(other.cookie);

    for (int i = 0; i < 6; i++)
        l[i] = live_open(s[i].cookie);
    push_row(&d1, 1, "live-t1-a", "t1", "Before");
    for (int i = 0; i < 6; i++)
        expect_live_event(l[i], "records");
    expect_live_event(l_other, "records");
    dash_live_close(l_other);

    /* live6's teams change first; then each session ends another way, none through this
     * node's API. A check reads the sessions one by one, so one that began before the change
     * may still give live6 its old teams: the endings after live1's closure are seen by a
     * later check, which began after the change and so reads live6's new teams. */
    assert_int_equal(admin_cmd("user teams live6 --team t2"), 0);
    assert_int_equal(admin_cmd("user disable live1"), 0);
    expect_live_closed(l[0], 6000, "live1 (disabled)");
    assert_int_equal(admin_cmd("user remove live2"), 0);
    snprintf(sql, sizeof sql, "UPDATE _outpost_sessions SET last_ms = %llu WHERE user_name = "
                              "'live3'", (unsigned long long)(wall_ms() - 31u * 60u * 1000u));
    sessions_sql(sql);
    snprintf(sql, sizeof sql, "UPDATE _outpost_sessions SET created_ms = %llu WHERE user_name = "
                              "'live4'", (unsigned long long)(wall_ms() - 13u * 3600u * 1000u));
    sessions_sql(sql);
    sessions_sql("DELETE FROM _outpost_sessions WHERE user_name = 'live5'"); /* another node's logout */

    /* the open sockets close within a few seconds (the periodic check of the store) */
    expect_live_closed(l[1], 6000, "live2 (removed)");
    expect_live_closed(l[2], 6000, "live3 (idle)");
    expect_live_closed(l[3], 6000, "live4 (12 hours)");
    expect_live_closed(l[4], 6000, "live5 (ended elsewhere)");
    /* the same check read live6's teams: it now hears of t2, not of t1 */
    while (dash_live_next(l[5], 300, frame, sizeof frame) == 1)
        ; /* what the first push still brought */
    push_row(&d1, 2, "live-t1-b", "t1", "After");
    assert_int_equal(dash_live_next(l[5], 1500, frame, sizeof frame), 0);
    push_row(&d2, 1, "live-t2-a", "t2", "After");
    expect_live_event(l[5], "records");
    dash_live_close(l[5]);

    /* no new socket for any of them */
    expect_live_refused(s[0].cookie, "a disabled account");
    expect_live_refused(s[1].cookie, "a removed account");
    expect_live_refused(s[2].cookie, "an idle session");
    expect_live_refused(s[3].cookie, "a session past 12 hours");
    expect_live_refused(s[4].cookie, "a session ended on another node");
    /* enabling the account again brings its old session back nowhere */
    assert_int_equal(admin_cmd("user enable live1"), 0);
    expect_live_refused(s[0].cookie, "a disabled then enabled account");
    /* a live session still gets a socket after all that */
    mine = live_open(s[5].cookie);
    dash_live_close(mine);
}

/* ---- What an ended session is told, and what the log and audit say ------------------------ */

/* A 401 for a session of why1 names how it ended. */
static void expect_ended_because(const login *who, const char *why)
{
    dash_reply r;

    assert_int_equal(request("GET", "/api/records", who, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    if (!strstr(r.body, why))
        fail_msg("expected a 401 saying \"%s\", got %s", why, r.body);
    dash_reply_free(&r);
}

static bool log_has(const char *text)
{
    return systemf("grep -qF -- '%s' %s", text, fx.log_path) == 0;
}

/* An outsider's cosmetic findings: idle_left_ms ignored the 12-hour limit; every ended session
 * was told "logged out after 30 idle minutes"; the log said "sessions ended user=" with no name
 * and refused logins without the name tried; a POST without Content-Length got no reply; the
 * ninth login's ending of the least recently used session was not audited. */
static void test_sessions_say_why_they_ended(void **state)
{
    char sql[256], err[256] = "", left[32];
    store *node1 = NULL;
    login a, b, c, d, nine[9];
    dash_reply r;
    (void)state;

    assert_int_equal(store_open(fx.store_path, false, &node1, err, sizeof err), 0);
    /* 11 h 59 min old: about a minute left, whatever the idle clock says */
    assert_int_equal(store_session_create(node1, "why1", wall_ms(), a.cookie, NULL), 0);
    snprintf(sql, sizeof sql, "UPDATE _outpost_sessions SET created_ms = %llu WHERE user_name = "
                              "'why1'",
             (unsigned long long)(wall_ms() - 12u * 3600u * 1000u + 60u * 1000u));
    sessions_sql(sql);
    assert_int_equal(request("GET", "/api/me", &a, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    const char *p = strstr(r.body, "\"idle_left_ms\":");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "\"idle_left_ms\":%31[0-9]", left), 1);
    if (strtoull(left, NULL, 10) > 60000u)
        fail_msg("idle_left_ms %s past the 12-hour limit", left);
    dash_reply_free(&r);
    /* past 12 hours */
    snprintf(sql, sizeof sql, "UPDATE _outpost_sessions SET created_ms = %llu WHERE user_name = "
                              "'why1'", (unsigned long long)(wall_ms() - 13u * 3600u * 1000u));
    sessions_sql(sql);
    expect_ended_because(&a, "12-hour limit");
    /* idle */
    assert_int_equal(store_session_create(node1, "why1", wall_ms(), b.cookie, NULL), 0);
    snprintf(sql, sizeof sql, "UPDATE _outpost_sessions SET last_ms = %llu WHERE user_name = "
                              "'why1'", (unsigned long long)(wall_ms() - 31u * 60u * 1000u));
    sessions_sql(sql);
    expect_ended_because(&b, "30 idle minutes");
    /* logged out (here on another node) */
    assert_int_equal(store_session_create(node1, "why1", wall_ms(), c.cookie, NULL), 0);
    assert_int_equal(store_session_end(node1, c.cookie), 0);
    expect_ended_because(&c, "logged out");
    /* disabled: the log names the account */
    assert_int_equal(store_session_create(node1, "why3", wall_ms(), d.cookie, NULL), 0);
    store_close(node1);
    assert_int_equal(admin_cmd("user disable why3"), 0);
    expect_ended_because(&d, "disabled or removed");
    assert_true(log_has("dashboard sessions ended user=why3 "));
    /* a refused login's line names the name tried (test_locked_logins_... tried flood1) */
    assert_true(log_has("dashboard login refused name=\"flood1\""));

    /* a POST without Content-Length is answered 411, not left hanging */
    log_in("why2", &nine[0]);
    assert_int_equal(request("POST", "/api/logout", &nine[0], true, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 411);
    dash_reply_free(&r);
    /* the ninth login ends the least recently used session, and the audit says so */
    for (int i = 1; i < 9; i++)
        log_in("why2", &nine[i]);
    assert_int_equal(audit_count("why2", "session.end"), 1);
    expect_ended_because(&nine[0], "logged out, or by a newer login");
}

/* ---- Every read of record contents leaves one audit row naming what it showed ---------- */

static int64_t audit_newest(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    int64_t id = -1;

    assert_int_equal(sqlite3_open(fx.store_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) FROM _outpost_audit", -1,
                                        &stmt, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    id = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return id;
}

/* The rows after `after` as "actor|action|target|ids" lines; fails unless there is exactly one. */
static void expect_one_audit_row(int64_t after, const char *want)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    char got[8192] = "";
    int n = 0;

    assert_int_equal(sqlite3_open(fx.store_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT actor || '|' || action || '|' || target ||"
                                            " '|' || ids FROM _outpost_audit WHERE id > ?1"
                                            " ORDER BY id",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(stmt, 1, after);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        size_t len = strlen(got);
        snprintf(got + len, sizeof got - len, "%s%s", n ? "\n" : "", sqlite3_column_text(stmt, 0));
        n++;
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    if (n != 1 || strcmp(got, want) != 0)
        fail_msg("expected one audit row '%s', got %d: '%s'", want, n, got);
}

/* The record keys of t1 as the dashboard lists them (newest rowid first), comma separated. */
static void t1_keys(char *out, size_t size)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;

    out[0] = 0;
    assert_int_equal(sqlite3_open(fx.store_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT id FROM contacts WHERE team_id = 't1'"
                                            " ORDER BY rowid DESC",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s", len ? "," : "", sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

/* "ID:KEY,..." of the conflicts in a /api/conflicts JSON body, in its order. */
static void conflict_ids(const char *body, char *out, size_t size)
{
    out[0] = 0;
    for (const char *p = strstr(body, "{\"id\":"); p; p = strstr(p + 1, "{\"id\":")) {
        char id[24], key[128];
        const char *row = strstr(p, "\"row\":\"");
        assert_int_equal(sscanf(p, "{\"id\":%23[0-9]", id), 1);
        assert_non_null(row);
        assert_int_equal(sscanf(row, "\"row\":\"%127[^\"]", key), 1);
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s:%s", len ? "," : "", id, key);
    }
}

static void test_every_read_leaves_one_audit_row_naming_what_it_showed(void **state)
{
    login s1;
    dash_reply r;
    char keys[2048], want[4096], ids[2048];
    int64_t before;
    (void)state;

    log_in("sup1", &s1);
    t1_keys(keys, sizeof keys);
    assert_non_null(strstr(keys, "r-t1-a"));
    assert_non_null(strchr(keys, ',')); /* more than one record shown */

    before = audit_newest();
    assert_int_equal(request("GET", "/api/records", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);
    snprintf(want, sizeof want, "sup1|record.list|view=records text=0 chars|%s", keys);
    expect_one_audit_row(before, want);

    before = audit_newest();
    assert_int_equal(request("GET", "/api/records?team=t1&q=Alpha", &s1, false, NULL, NULL, &r),
                     0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);
    expect_one_audit_row(before, "sup1|record.list|view=records team=t1 text=5 chars|r-t1-a");

    /* a search that finds nothing is a read too */
    before = audit_newest();
    assert_int_equal(request("GET", "/api/records?q=nothing-like-this", &s1, false, NULL, NULL, &r),
                     0);
    assert_non_null(strstr(r.body, "\"rows\":[]"));
    dash_reply_free(&r);
    expect_one_audit_row(before, "sup1|record.list|view=records text=17 chars|");

    before = audit_newest();
    assert_int_equal(request("GET", "/api/export?view=records", &s1, true, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);
    snprintf(want, sizeof want, "sup1|export|view=records text=0 chars|%s", keys);
    expect_one_audit_row(before, want);

    before = audit_newest();
    assert_int_equal(request("GET", "/api/conflicts?all=1", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    conflict_ids(r.body, ids, sizeof ids);
    dash_reply_free(&r);
    assert_non_null(strstr(ids, ":k-1"));
    snprintf(want, sizeof want, "sup1|conflict.list|view=conflicts all text=0 chars|%s", ids);
    expect_one_audit_row(before, want);

    before = audit_newest();
    assert_int_equal(request("GET", "/api/export?view=conflicts&all=1", &s1, true, NULL, NULL, &r),
                     0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);
    snprintf(want, sizeof want, "sup1|export|view=conflicts all text=0 chars|%s", ids);
    expect_one_audit_row(before, want);
}

/* ---- Disabling a person ends what they have open, at their next request ------------------ */

static int admin_cmd(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --store %s %s >/dev/null", OUTPOST_ADMIN_PATH, fx.store_path,
             args);
    return system(cmd);
}

static void test_disabling_a_person_ends_their_session_and_sync(void **state)
{
    login s, again;
    dash_reply r;
    test_device dev;
    proto_msg req, *reply = NULL;
    (void)state;

    log_in("dis1", &s);
    assert_int_equal(request("GET", "/api/records", &s, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);
    /* the running outpostd shares the store with outpost-admin */
    assert_int_equal(admin_cmd("user disable dis1"), 0);
    assert_int_equal(request("GET", "/api/records", &s, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.body, "your session has ended"));
    assert_null(strstr(r.body, "r-t1-a"));
    dash_reply_free(&r);
    assert_int_equal(request("GET", "/api/me", &s, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    dash_reply_free(&r);
    assert_int_equal(try_login("dis1", pw, &r), 0);
    assert_int_equal(r.status, 401);
    dash_reply_free(&r);
    /* enabled again: a new login works, the ended session stays ended */
    assert_int_equal(admin_cmd("user enable dis1"), 0);
    log_in("dis1", &again);
    assert_int_equal(request("GET", "/api/me", &s, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    dash_reply_free(&r);
    assert_int_equal(request("GET", "/api/me", &again, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);

    /* a worker's connected device is refused at its next request, and at HELLO */
    assert_int_equal(fixture_enroll_device(&fx, "w12", &dev), 0);
    testclient *tc = fixture_hello(&fx, &dev, NULL);
    assert_non_null(tc);
    assert_int_equal(admin_cmd("worker disable w12"), 0);
    memset(&req, 0, sizeof req);
    req.type = PROTO_MSG_PULL;
    req.u.pull.limit = 10;
    assert_int_equal(testclient_send(tc, &req, T_MS), 0);
    assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ERROR, T_MS, &reply), 0);
    assert_int_equal(reply->u.error.code, PROTO_ERR_REVOKED);
    proto_msg_free(reply);
    testclient_close(tc);
    assert_null(fixture_hello(&fx, &dev, NULL));
    char line[128];
    snprintf(line, sizeof line, "auth refused device=%s: revoked", dev.id);
    assert_true(fixture_log_contains(&fx, line));
    assert_int_equal(admin_cmd("worker enable w12"), 0);
    tc = fixture_hello(&fx, &dev, NULL);
    assert_non_null(tc);
    testclient_close(tc);
}

/* ---- The idle clock counts what a person does, not the page's own refreshes ------------- */

static uint64_t idle_left_ms(const login *s)
{
    dash_reply r;
    const char *p;
    unsigned long long left = 0;

    assert_int_equal(request("GET", "/api/me", s, false, "X-Outpost-Background: 1", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    p = strstr(r.body, "\"idle_left_ms\":");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "\"idle_left_ms\":%llu", &left), 1);
    dash_reply_free(&r);
    return left;
}

static void test_background_refreshes_do_not_extend_the_idle_clock(void **state)
{
    login s;
    dash_reply r;
    uint64_t full, after_refreshes, after_click;
    (void)state;

    log_in("sup1", &s);
    full = idle_left_ms(&s);
    assert_true(full > 29u * 60u * 1000u);
    usleep(1200 * 1000);
    /* what a live event makes the page do: reload its view, marked as background */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(request("GET", "/api/records", &s, false, "X-Outpost-Background: 1",
                                 NULL, &r),
                         0);
        assert_int_equal(r.status, 200);
        dash_reply_free(&r);
    }
    after_refreshes = idle_left_ms(&s);
    assert_true(after_refreshes + 1000 <= full);
    /* what a person does restarts it */
    assert_int_equal(request("GET", "/api/records", &s, false, NULL, NULL, &r), 0);
    dash_reply_free(&r);
    after_click = idle_left_ms(&s);
    assert_true(after_click > after_refreshes + 900);
}

/* ---- The audit view pages and filters; failed logins push nothing out of it ------------ */

static void test_audit_view_pages_and_filters(void **state)
{
    login adm;
    dash_reply r;
    store *st = NULL;
    char err[256], key[400], path[256];
    long long before = 0, total = 0;
    (void)state;

    /* a flood of failed logins, as anyone without an account can cause */
    snprintf(key, sizeof key, "%s.audit-key", fx.store_path);
    assert_int_equal(store_open(fx.store_path, false, &st, err, sizeof err), STORE_OK);
    assert_int_equal(store_audit_key_load(st, key), STORE_OK);
    for (int i = 0; i < 600; i++)
        assert_int_equal(store_audit_append(st, (uint64_t)time(NULL) * 1000u, "nobody",
                                            "login.fail", "", "192.0.2.1"),
                         STORE_OK);
    store_close(st);

    log_in("admin1", &adm);
    /* the record view from before the flood is still found, by action */
    assert_int_equal(request("GET", "/api/audit?action=record.view", &adm, false, NULL, NULL, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"target\":\"contacts/r-t1-a\""));
    assert_int_equal(count_in(r.body, "login.fail"), 0);
    dash_reply_free(&r);
    /* by person, and a family of actions */
    assert_int_equal(request("GET", "/api/audit?actor=sup1&action=login", &adm, false, NULL, NULL,
                             &r),
                     0);
    assert_true(count_in(r.body, "\"action\":\"login.ok\"") >= 1);
    assert_true(count_in(r.body, "\"action\":\"login.fail\"") >= 1);
    assert_int_equal(count_in(r.body, "\"actor\":"), count_in(r.body, "\"actor\":\"sup1\""));
    dash_reply_free(&r);
    /* by time: nothing in 2099 */
    assert_int_equal(request("GET", "/api/audit?from=2099-01-01", &adm, false, NULL, NULL, &r), 0);
    assert_non_null(strstr(r.body, "\"audit\":[]"));
    dash_reply_free(&r);
    /* page by page down to row 1, every row once */
    do {
        const char *p;
        snprintf(path, sizeof path, "/api/audit?limit=250&before=%lld", before);
        assert_int_equal(request("GET", path, &adm, false, NULL, NULL, &r), 0);
        assert_int_equal(r.status, 200);
        total += count_in(r.body, "{\"id\":");
        p = strstr(r.body, "\"next_before\":");
        assert_non_null(p);
        assert_int_equal(sscanf(p, "\"next_before\":%lld", &before), 1);
        if (before == 0)
            assert_non_null(strstr(r.body, "{\"id\":1,"));
        dash_reply_free(&r);
    } while (before != 0);
    assert_true(total > 600);
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_open(fx.store_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM _outpost_audit", -1, &stmt, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(stmt, 0), total);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    /* the export takes the same filters, and is itself audited with them */
    assert_int_equal(request("GET", "/api/export?view=audit&action=record.view", &adm, true, NULL,
                             NULL, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "contacts/r-t1-a"));
    assert_int_equal(count_in(r.body, "login.fail"), 0);
    dash_reply_free(&r);
    assert_int_equal(request("GET", "/api/audit?action=export&actor=admin1", &adm, false, NULL,
                             NULL, &r),
                     0);
    assert_non_null(strstr(r.body, "\"target\":\"view=audit action=record.view\""));
    dash_reply_free(&r);
}

static void test_people_section_is_for_admins_and_audited(void **state)
{
    login sup, adm;
    dash_reply r;
    int64_t before;
    (void)state;

    log_in("sup1", &sup);
    assert_int_equal(request("GET", "/api/people", &sup, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 403);
    dash_reply_free(&r);
    assert_int_equal(request("POST", "/api/people/act", &sup, true, NULL,
                             "kind=user&id=sup2&action=disable&teams=", &r),
                     0);
    assert_int_equal(r.status, 403);
    dash_reply_free(&r);

    log_in("admin1", &adm);
    assert_int_equal(request("GET", "/api/people", &adm, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "{\"id\":\"w2\",\"teams\":\"t2\",\"disabled\":false"));
    assert_non_null(strstr(r.body, "{\"id\":\"sup1\",\"teams\":\"t1\",\"disabled\":false,"
                                   "\"role\":\"supervisor\"}"));
    dash_reply_free(&r);
    before = audit_newest();
    assert_int_equal(request("POST", "/api/people/act", &adm, true, NULL,
                             "kind=user&id=sup2&action=teams&teams=t1%2Ct2", &r),
                     0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);
    expect_one_audit_row(before, "admin1|user.teams|sup2 teams=t1,t2|");
    /* the change applies to sup2's next request */
    login s2;
    log_in("sup2", &s2);
    assert_int_equal(request("GET", "/api/records?team=t1", &s2, false, NULL, NULL, &r), 0);
    assert_non_null(strstr(r.body, "r-t1-a"));
    dash_reply_free(&r);
    assert_int_equal(request("POST", "/api/people/act", &adm, true, NULL,
                             "kind=user&id=sup2&action=teams&teams=t2", &r),
                     0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);
    assert_int_equal(request("GET", "/api/records?team=t1", &s2, false, NULL, NULL, &r), 0);
    assert_null(strstr(r.body, "r-t1-a"));
    dash_reply_free(&r);
    /* bad requests name the problem */
    assert_int_equal(request("POST", "/api/people/act", &adm, true, NULL,
                             "kind=user&id=nobody&action=disable&teams=", &r),
                     0);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "no account nobody"));
    dash_reply_free(&r);
    assert_int_equal(request("POST", "/api/people/act", &adm, true, NULL,
                             "kind=user&id=admin1&action=remove&teams=", &r),
                     0);
    assert_int_equal(r.status, 400);
    dash_reply_free(&r);
    /* teams may be left out only where the act does not use it */
    assert_int_equal(request("POST", "/api/people/act", &adm, true, NULL,
                             "kind=user&id=sup2&action=teams", &r),
                     0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "action=teams needs teams=a,b"));
    dash_reply_free(&r);
}

/* ---- Revoking a device keeps its unsent entries unless a wipe is asked for --------------- */

/* What a device's HELLO hears: WELCOME, WIPE, or ERROR (its code in *out_code). */
static proto_msg_type hello_verdict(const test_device *dev, uint64_t outbox, uint32_t *out_code)
{
    testclient *tc = NULL;
    proto_msg msg, *reply = NULL;
    proto_msg_type type;

    assert_int_equal(testclient_connect(fx.port, fx.ca_path, T_MS, &tc, NULL, 0), 0);
    memset(&msg, 0, sizeof msg);
    msg.type = PROTO_MSG_HELLO;
    msg.u.hello.version = PROTO_VERSION;
    msg.u.hello.device_id = dev->id;
    memcpy(msg.u.hello.secret, dev->secret, sizeof dev->secret);
    msg.u.hello.outbox_count = outbox;
    assert_int_equal(testclient_send(tc, &msg, T_MS), 0);
    assert_int_equal(testclient_recv(tc, T_MS, &reply), 0);
    type = reply->type;
    *out_code = type == PROTO_MSG_ERROR ? (uint32_t)reply->u.error.code : 0;
    proto_msg_free(reply);
    testclient_close(tc);
    return type;
}

/* "revoked wipe" of the device's row in the store, as 0/1 each. */
static void device_flags(const test_device *dev, char *out, size_t size)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;

    assert_int_equal(sqlite3_open(fx.store_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT revoked, wipe FROM _outpost_devices"
                                            " WHERE id = ?1",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(stmt, 1, dev->id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    snprintf(out, size, "%d %d", sqlite3_column_int(stmt, 0), sqlite3_column_int(stmt, 1));
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

static void test_revoking_a_device_keeps_its_unsent_entries_unless_wipe(void **state)
{
    login adm;
    dash_reply r;
    test_device keep, lost;
    char body[256], flags[16], want[256];
    uint32_t code = 0;
    int64_t before;
    (void)state;

    assert_int_equal(fixture_enroll_device(&fx, "w1", &keep), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w1", &lost), 0);
    log_in("admin1", &adm);

    /* a plain revoke (no teams field needed) keeps what the device has not sent yet */
    before = audit_newest();
    snprintf(body, sizeof body, "kind=device&id=%s&action=revoke", keep.id);
    assert_int_equal(request("POST", "/api/people/act", &adm, true, NULL, body, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"done\":\"device.revoke\""));
    dash_reply_free(&r);
    snprintf(want, sizeof want, "admin1|device.revoke|%s keep|", keep.id);
    expect_one_audit_row(before, want);
    device_flags(&keep, flags, sizeof flags);
    assert_string_equal(flags, "1 0");
    /* its HELLO with an entry waiting is refused, not told to wipe: the entry stays queued */
    assert_int_equal(hello_verdict(&keep, 1, &code), PROTO_MSG_ERROR);
    assert_int_equal(code, PROTO_ERR_REVOKED);

    /* revoke and wipe is asked for by name, and audited as such */
    before = audit_newest();
    snprintf(body, sizeof body, "kind=device&id=%s&action=revoke&wipe=1", lost.id);
    assert_int_equal(request("POST", "/api/people/act", &adm, true, NULL, body, &r), 0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);
    snprintf(want, sizeof want, "admin1|device.revoke|%s wipe|", lost.id);
    expect_one_audit_row(before, want);
    device_flags(&lost, flags, sizeof flags);
    assert_string_equal(flags, "1 1");
    assert_int_equal(hello_verdict(&lost, 1, &code), PROTO_MSG_WIPE);

    /* a wipe field that is not 0 or 1 is refused, and nothing changes */
    before = audit_newest();
    snprintf(body, sizeof body, "kind=device&id=%s&action=revoke&wipe=yes", keep.id);
    assert_int_equal(request("POST", "/api/people/act", &adm, true, NULL, body, &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "wipe=0 or wipe=1"));
    dash_reply_free(&r);
    device_flags(&keep, flags, sizeof flags);
    assert_string_equal(flags, "1 0");
    assert_int_equal(audit_newest(), before);
}

/* ---- A 500 says "see the server log": the log has the line ---------------------------- */

static void test_a_500_logs_its_reason(void **state)
{
    login s;
    dash_reply r;
    (void)state;

    log_in("sup1", &s);
    /* the conflict queue's table gone for a moment: the store fails under the dashboard */
    sessions_sql("ALTER TABLE _outpost_conflicts RENAME TO _outpost_conflicts_away");
    assert_int_equal(request("GET", "/api/conflicts", &s, false, NULL, NULL, &r), 0);
    sessions_sql("ALTER TABLE _outpost_conflicts_away RENAME TO _outpost_conflicts");
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(r.body, "see the server log"));
    dash_reply_free(&r);
    assert_true(fixture_log_contains(&fx, "warn dashboard /api/conflicts user=sup1 status=500: "
                                          "the store failed: "));
    assert_true(fixture_log_contains(&fx, "no such table: _outpost_conflicts"));
    assert_int_equal(request("GET", "/api/conflicts", &s, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);
}

/* ---- A worker's move reaches its devices at their next pull ------------------------------ */

/* One pull from cursor: "rows:ID,ID removed:ID" (ids sorted as sent) and the next cursor. */
static void pull_ids(testclient *tc, uint64_t cursor, char *out, size_t size,
                     uint64_t *out_next)
{
    proto_msg req, *rows = NULL;
    char rows_txt[512] = "", removed_txt[512] = "";

    memset(&req, 0, sizeof req);
    req.type = PROTO_MSG_PULL;
    req.u.pull.cursor = cursor;
    req.u.pull.limit = 500;
    assert_int_equal(testclient_send(tc, &req, T_MS), 0);
    assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ROWS, T_MS, &rows), 0);
    assert_false(rows->u.rows.more);
    for (uint32_t t = 0; t < rows->u.rows.n_tables; t++) {
        const proto_table_rows *tr = &rows->u.rows.tables[t];
        for (uint32_t i = 0; i < tr->n_rows; i++) {
            const proto_value *v = tr->rows + (size_t)i * tr->n_columns;
            size_t n = strlen(rows_txt);
            snprintf(rows_txt + n, sizeof rows_txt - n, "%s%.*s", n ? "," : "", (int)v[0].u.b.n,
                     (const char *)v[0].u.b.p);
        }
        for (uint32_t i = 0; i < tr->n_removed; i++) {
            const proto_value *v = tr->removed + (size_t)i * tr->n_pk;
            size_t n = strlen(removed_txt);
            snprintf(removed_txt + n, sizeof removed_txt - n, "%s%.*s", n ? "," : "",
                     (int)v[0].u.b.n, (const char *)v[0].u.b.p);
        }
    }
    snprintf(out, size, "rows:%s removed:%s", rows_txt, removed_txt);
    *out_next = rows->u.rows.cursor;
    proto_msg_free(rows);
}

static void test_moving_a_worker_changes_what_its_device_holds(void **state)
{
    test_device dev;
    char got[1200];
    uint64_t cursor = 0, next = 0, replay = 0;
    (void)state;

    assert_int_equal(fixture_enroll_device(&fx, "w2", &dev), 0);
    testclient *tc = fixture_hello(&fx, &dev, NULL);
    assert_non_null(tc);
    pull_ids(tc, 0, got, sizeof got, &cursor);
    /* t2's rows (the other tests of this program add some), nothing of t1, nothing removed */
    assert_non_null(strstr(got, "r-t2-z"));
    assert_null(strstr(got, "r-t1-a"));
    assert_string_equal(strstr(got, " removed:"), " removed:");

    /* w2 leaves t2 for t1: the device drops t2's rows and receives t1's, on the same
     * connection, at its next pull */
    assert_int_equal(admin_cmd("worker move w2 --team t1"), 0);
    pull_ids(tc, cursor, got, sizeof got, &next);
    assert_non_null(strstr(got, "r-t1-a"));
    assert_non_null(strstr(got, "k-1"));
    assert_non_null(strstr(got, " removed:r-t2-z"));
    assert_null(strstr(got, "rows:r-t2-z"));
    assert_true(next > cursor);
    /* a page lost on the way is pulled again from the same cursor, and says the same */
    char again[1200];
    pull_ids(tc, cursor, again, sizeof again, &replay);
    assert_string_equal(again, got);
    assert_int_equal(replay, next);
    /* then it is spent */
    pull_ids(tc, next, got, sizeof got, &cursor);
    assert_string_equal(got, "rows: removed:");

    /* and back */
    assert_int_equal(admin_cmd("worker move w2 --team t2"), 0);
    pull_ids(tc, cursor, got, sizeof got, &next);
    char *removed = strstr(got, " removed:");
    assert_non_null(removed);
    assert_true(strstr(got, "r-t2-z") < removed);
    assert_non_null(strstr(strstr(got, "removed:"), "r-t1-a"));
    assert_non_null(strstr(strstr(got, "removed:"), "k-1"));
    testclient_close(tc);
}

/* ---- A reset password must be changed at the next login ---------------------------------- */

static void test_reset_password_must_be_changed_at_next_login(void **state)
{
    login s, stolen;
    dash_reply r;
    char cmd[1024];
    int64_t before;
    (void)state;

    /* a session opened with the old password (the reason for a reset: it was stolen) */
    log_in("sup2", &stolen);
    snprintf(cmd, sizeof cmd,
             "printf '%%s\\n' 'temporary pass 123' | %s --store %s user reset-password sup2 "
             "--password-fd 0 >/dev/null",
             OUTPOST_ADMIN_PATH, fx.store_path);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(try_login("sup2", pw, &r), 0);
    assert_int_equal(r.status, 401);
    dash_reply_free(&r);
    assert_int_equal(try_login("sup2", "temporary pass 123", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(dash_reply_header(&r, "set-cookie", cmd, sizeof cmd), 0);
    assert_int_equal(sscanf(cmd, "outpost_session=%64[0-9a-f]", s.cookie), 1);
    assert_int_equal(dash_json_string(r.body, "csrf", s.csrf, sizeof s.csrf), 0);
    dash_reply_free(&r);
    /* nothing but a new password */
    assert_int_equal(request("GET", "/api/records", &s, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(r.body, "\"must_change\":true"));
    assert_null(strstr(r.body, "r-t2-z"));
    dash_reply_free(&r);
    assert_int_equal(request("POST", "/api/password", &s, true, NULL,
                             "current=wrong+password+here&password=my+own+new+passphrase", &r),
                     0);
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(r.body, "the current password is wrong"));
    dash_reply_free(&r);
    before = audit_newest();
    assert_int_equal(request("POST", "/api/password", &s, true, NULL,
                             "current=temporary+pass+123&password=correct+horse+battery", &r),
                     0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);
    expect_one_audit_row(before, "sup2|password.change||");
    assert_int_equal(request("GET", "/api/records", &s, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "r-t2-z"));
    dash_reply_free(&r);
    assert_int_equal(try_login("sup2", "temporary pass 123", &r), 0);
    assert_int_equal(r.status, 401);
    dash_reply_free(&r);
    /* the new password ended every other session: an insider's pass found the stolen one
     * came back to life once the owner chose a new password */
    assert_int_equal(request("GET", "/api/records", &stolen, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    dash_reply_free(&r);
}

static void test_people_section_issues_an_enrollment_code_with_its_qr(void **state)
{
    login adm;
    dash_reply r;
    char code[32], qr[16];
    int64_t before;
    test_device dev;
    (void)state;

    log_in("admin1", &adm);
    before = audit_newest();
    assert_int_equal(request("POST", "/api/people/act", &adm, true, NULL,
                             "kind=worker&id=w1&action=enroll&teams=", &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_int_equal(dash_json_string(r.body, "code", code, sizeof code), 0);
    assert_int_equal(strlen(code), 23);
    /* the QR code's modules: width, then width * width of '0' and '1' */
    const char *p = strstr(r.body, "\"qr_width\":");
    assert_non_null(p);
    int width = 0;
    assert_int_equal(sscanf(p, "\"qr_width\":%d", &width), 1);
    assert_true(width >= 21);
    p = strstr(r.body, "\"qr\":\"");
    assert_non_null(p);
    p += 6;
    size_t n = strspn(p, "01");
    assert_int_equal(n, (size_t)width * (size_t)width);
    snprintf(qr, sizeof qr, "%.8s", p);
    dash_reply_free(&r);
    expect_one_audit_row(before, "admin1|worker.enroll|w1 expires_h=24|");
    /* the code enrolls a device, once */
    assert_int_equal(fixture_enroll_with_code(&fx, code, &dev), 0);
    assert_int_not_equal(fixture_enroll_with_code(&fx, code, &dev), 0);
    /* supervisors cannot */
    login sup;
    log_in("sup1", &sup);
    assert_int_equal(request("POST", "/api/people/act", &sup, true, NULL,
                             "kind=worker&id=w1&action=enroll&teams=", &r),
                     0);
    assert_int_equal(r.status, 403);
    dash_reply_free(&r);
}

/* Sorting and paging are the server's: past the first 200 records, by a column the store checks
 * against the table, every value bound (a sort naming no column is refused, and nothing of the
 * text reaches SQL), offsets bounded, and another team's records never counted in. */
static void test_records_sort_and_page_past_200(void **state)
{
    enum { N = 250 };
    static char ids_buf[N][16];
    const char *ids[N];
    test_device d1, d2;
    login s1, s2;
    dash_reply r;
    (void)state;

    for (int i = 0; i < N; i++) {
        snprintf(ids_buf[i], sizeof ids_buf[i], "pg-%04d", i);
        ids[i] = ids_buf[i];
    }
    assert_int_equal(fixture_enroll_device(&fx, "w1", &d1), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w2", &d2), 0);
    testclient *tc = fixture_hello(&fx, &d1, NULL);
    proto_msg *push = fixture_insert_push(1, N, ids, "t1", "Paged");
    proto_msg *reply = NULL;
    assert_non_null(tc);
    assert_int_equal(testclient_send(tc, push, T_MS), 0);
    fixture_push_free(push);
    assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ACK, T_MS, &reply), 0);
    proto_msg_free(reply);
    testclient_close(tc);
    push_row(&d2, 1, "pg-t2-only", "t2", "Paged");
    log_in("sup1", &s1);
    log_in("sup2", &s2);

    /* the first page, ascending by id: pg-0000 .. pg-0099, and more to come */
    assert_int_equal(request("GET", "/api/records?q=pg-&sort=id&dir=asc&limit=100", &s1, false,
                             NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(count_in(r.body, "[\"pg-"), 100);
    assert_true(strstr(r.body, "\"pg-0000\"") < strstr(r.body, "\"pg-0099\""));
    assert_null(strstr(r.body, "\"pg-0100\""));
    assert_non_null(strstr(r.body, "\"more\":true"));
    dash_reply_free(&r);
    /* past 200: the last page holds pg-0200 .. pg-0249 and nothing after */
    int64_t before = audit_newest();
    assert_int_equal(request("GET", "/api/records?q=pg-&sort=id&dir=asc&limit=100&offset=200",
                             &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(count_in(r.body, "[\"pg-"), 50);
    assert_true(strstr(r.body, "\"pg-0200\"") < strstr(r.body, "\"pg-0249\""));
    assert_null(strstr(r.body, "\"pg-0199\""));
    assert_null(strstr(r.body, "pg-t2-only"));
    assert_non_null(strstr(r.body, "\"offset\":200,\"more\":false"));
    dash_reply_free(&r);
    /* the read is audited with its page, and names exactly the 50 ids shown */
    {
        char want[2048];
        size_t len = (size_t)snprintf(want, sizeof want, "sup1|record.list|view=records text=3 "
                                      "chars sort=id offset=200|");
        for (int i = 200; i < N; i++)
            len += (size_t)snprintf(want + len, sizeof want - len, "%s%s", i > 200 ? "," : "",
                                    ids[i]);
        expect_one_audit_row(before, want);
    }
    /* descending: pg-0249 first */
    assert_int_equal(request("GET", "/api/records?q=pg-&sort=id&dir=desc&limit=1", &s1, false,
                             NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"pg-0249\""));
    assert_int_equal(count_in(r.body, "[\"pg-"), 1);
    dash_reply_free(&r);
    /* the default page is 200 rows, and says there are more */
    assert_int_equal(request("GET", "/api/records?q=pg-&sort=id", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(count_in(r.body, "[\"pg-"), 200);
    assert_non_null(strstr(r.body, "\"more\":true"));
    dash_reply_free(&r);
    /* a sort that names no column, SQL in the sort, a bad direction or offset: refused */
    assert_int_equal(request("GET", "/api/records?sort=nope", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "cannot sort: table contacts has no column nope"));
    dash_reply_free(&r);
    assert_int_equal(request("GET", "/api/records?sort=id%3BDELETE+FROM+contacts", &s1, false,
                             NULL, NULL, &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "has no column of that name"));
    dash_reply_free(&r);
    assert_int_equal(request("GET", "/api/records?sort=id&dir=sideways", &s1, false, NULL, NULL,
                             &r), 0);
    assert_int_equal(r.status, 400);
    dash_reply_free(&r);
    assert_int_equal(request("GET", "/api/records?offset=-5", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 400);
    dash_reply_free(&r);
    assert_int_equal(request("GET", "/api/records?offset=999999999", &s1, false, NULL, NULL, &r),
                     0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "past the last page allowed"));
    dash_reply_free(&r);
    /* the table is whole after all that */
    assert_int_equal(request("GET", "/api/records?q=pg-&offset=249&sort=id", &s1, false, NULL,
                             NULL, &r), 0);
    assert_int_equal(count_in(r.body, "[\"pg-"), 1);
    dash_reply_free(&r);
    /* sup2 pages through t2 only, whatever the offset */
    assert_int_equal(request("GET", "/api/records?q=pg-&sort=id", &s2, false, NULL, NULL, &r), 0);
    assert_int_equal(count_in(r.body, "[\"pg-"), 1);
    assert_non_null(strstr(r.body, "pg-t2-only"));
    dash_reply_free(&r);
    assert_int_equal(request("GET", "/api/records?q=pg-&offset=200", &s2, false, NULL, NULL, &r),
                     0);
    assert_non_null(strstr(r.body, "\"rows\":[]"));
    dash_reply_free(&r);
}

/* A record's detail: its history (created by which device and worker, each change, a reversal
 * by the supervisor), its conflicts with winner and loser, and nothing of it for another team. */
static void test_record_detail_has_history_and_conflicts(void **state)
{
    test_device a, b;
    login s1, s2;
    dash_reply r;
    char body[64], id[24];
    (void)state;

    assert_int_equal(fixture_enroll_device(&fx, "w1", &a), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w12", &b), 0);
    push_row(&a, 1, "h-1", "t1", "First");
    testclient *ta = fixture_hello(&fx, &a, NULL);
    testclient *tb = fixture_hello(&fx, &b, NULL);
    assert_non_null(ta);
    assert_non_null(tb);
    push_name(tb, 1, PROTO_HLC_MAKE(now_ms(), 0), "h-1", "First", "By-b");
    push_name(ta, 2, PROTO_HLC_MAKE(now_ms() - 60000, 0), "h-1", "First", "By-a-late");
    testclient_close(ta);
    testclient_close(tb);
    log_in("sup1", &s1);
    log_in("sup2", &s2);

    /* the queue names the winner's worker and carries the record it is about */
    assert_int_equal(request("GET", "/api/conflicts", &s1, false, NULL, NULL, &r), 0);
    const char *p = strstr(r.body, "\"row\":\"h-1\"");
    assert_non_null(p);
    while (p > r.body && strncmp(p, "{\"id\":", 6) != 0)
        p--;
    assert_int_equal(sscanf(p, "{\"id\":%23[0-9]", id), 1);
    assert_non_null(strstr(p, "\"loser_worker\":\"w1\""));
    assert_non_null(strstr(p, "\"winner_worker\":\"w12\""));
    assert_non_null(strstr(p, "\"record\":{\"table\":\"contacts\",\"id\":\"h-1\""));
    dash_reply_free(&r);
    snprintf(body, sizeof body, "id=%s&action=reverse", id);
    assert_int_equal(request("POST", "/api/decide", &s1, true, NULL, body, &r), 0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);

    int64_t before = audit_newest();
    assert_int_equal(request("GET", "/api/record?table=contacts&id=h-1", &s1, false, NULL, NULL,
                             &r), 0);
    assert_int_equal(r.status, 200);
    expect_one_audit_row(before, "sup1|record.view|contacts/h-1|");
    /* created by a's device, changed by b's, a's merged change, then sup1's reversal */
    const char *h = strstr(r.body, "\"history\":[");
    assert_non_null(h);
    const char *created = strstr(h, "\"op\":\"insert\"");
    const char *by_b = strstr(h, b.id);
    const char *reversal = strstr(h, "\"by\":\"sup1\"");
    assert_non_null(created);
    assert_non_null(by_b);
    assert_non_null(reversal);
    assert_true(created < by_b && by_b < reversal);
    assert_non_null(strstr(created, a.id));
    assert_non_null(strstr(h, "\"worker\":\"w12\""));
    assert_int_equal(count_in(h, "\"seq\":"), 4);
    /* its conflict, decided */
    const char *c = strstr(r.body, "\"conflicts\":[");
    assert_non_null(c);
    assert_non_null(strstr(c, "\"decision\":\"reversed\",\"decided_by\":\"sup1\""));
    /* decided: it cannot be reversed again */
    assert_non_null(strstr(c, "\"reversible\":false,\"decision\":\"reversed\""));
    /* the reversal is the supervisor's, not a merge */
    const char *rev = reversal;
    while (rev > h && *rev != '{')
        rev--;
    assert_non_null(strstr(rev, "\"altered\":false"));
    assert_true(strstr(rev, "\"altered\":false") < reversal);
    assert_non_null(strstr(r.body, "\"links\":[]"));
    dash_reply_free(&r);

    /* another team's supervisor: not found, whichever way it is asked, and the probe is
     * audited once, naming what was asked */
    before = audit_newest();
    assert_int_equal(request("GET", "/api/record?table=contacts&id=h-1", &s2, false, NULL, NULL,
                             &r), 0);
    assert_int_equal(r.status, 404);
    assert_null(strstr(r.body, "By-"));
    dash_reply_free(&r);
    expect_one_audit_row(before, "sup2|record.denied|contacts/h-1|");
    before = audit_newest();
    snprintf(body, sizeof body, "id=%s&action=keep", id);
    assert_int_equal(request("POST", "/api/decide", &s2, true, NULL, body, &r), 0);
    assert_int_equal(r.status, 404);
    dash_reply_free(&r);
    char want[64];
    snprintf(want, sizeof want, "sup2|conflict.denied|conflict/%s keep|", id);
    expect_one_audit_row(before, want);
    before = audit_newest();
    assert_int_equal(request("GET", "/api/audit", &s2, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 403);
    dash_reply_free(&r);
    expect_one_audit_row(before, "sup2|audit.denied|view=audit|");
    assert_int_equal(request("GET", "/api/record?table=nosuch&id=h-1", &s1, false, NULL, NULL,
                             &r), 0);
    assert_int_equal(r.status, 404);
    dash_reply_free(&r);
}

/* A session whose HELLO says how many outbox entries wait. */
static testclient *hello_with_outbox(const test_device *dev, uint64_t outbox)
{
    testclient *tc = NULL;
    proto_msg msg, *reply = NULL;

    assert_int_equal(testclient_connect(fx.port, fx.ca_path, T_MS, &tc, NULL, 0), 0);
    memset(&msg, 0, sizeof msg);
    msg.type = PROTO_MSG_HELLO;
    msg.u.hello.version = PROTO_VERSION;
    msg.u.hello.device_id = dev->id;
    memcpy(msg.u.hello.secret, dev->secret, sizeof dev->secret);
    msg.u.hello.outbox_count = outbox;
    msg.u.hello.app = "testapp 1.2";
    msg.u.hello.last_error = "connection refused (test)";
    assert_int_equal(testclient_send(tc, &msg, T_MS), 0);
    assert_int_equal(testclient_recv_type(tc, PROTO_MSG_WELCOME, T_MS, &reply), 0);
    proto_msg_free(reply);
    return tc;
}

static void push_expect(testclient *tc, uint64_t seq, const char *id, const char *team,
                        proto_msg_type answer)
{
    const char *ids[1] = {id};
    proto_msg *push = fixture_insert_push(seq, 1, ids, team, "Stuck");
    proto_msg *reply = NULL;

    assert_int_equal(testclient_send(tc, push, T_MS), 0);
    fixture_push_free(push);
    assert_int_equal(testclient_recv_type(tc, answer, T_MS, &reply), 0);
    proto_msg_free(reply);
}

/* The device view shows what is stuck: entries the device reported waiting and the server has
 * not recorded since, its refused changes, the newest refusal's message. */
static void test_devices_show_what_is_stuck(void **state)
{
    test_device d;
    login s1, s2;
    dash_reply r;
    char want[160];
    (void)state;

    assert_int_equal(fixture_enroll_device(&fx, "w1", &d), 0);
    log_in("sup1", &s1);
    log_in("sup2", &s2);
    assert_int_equal(request("GET", "/api/devices", &s1, false, NULL, NULL, &r), 0);
    snprintf(want, sizeof want, "\"device_id\":\"%s\"", d.id);
    const char *p = strstr(r.body, want);
    assert_non_null(p);
    assert_non_null(strstr(p, "\"pending\":0,\"reported_ms\":0,\"refused\":0,"
                              "\"last_refusal\":\"\",\"last_error\":\"\",\"app\":\"\""));
    dash_reply_free(&r);

    testclient *tc = hello_with_outbox(&d, 3); /* three waiting, none sent yet */
    assert_int_equal(request("GET", "/api/devices", &s1, false, NULL, NULL, &r), 0);
    p = strstr(r.body, want);
    assert_non_null(p);
    assert_non_null(strstr(p, "\"pending\":3,\"reported_ms\":"));
    dash_reply_free(&r);
    /* one applied and one refused: one still waits */
    push_expect(tc, 1, "stuck-ok", "t1", PROTO_MSG_ACK);
    push_expect(tc, 2, "stuck-aimed", "t2", PROTO_MSG_REJECT);
    testclient_close(tc);
    assert_int_equal(request("GET", "/api/devices", &s1, false, NULL, NULL, &r), 0);
    p = strstr(r.body, want);
    assert_non_null(p);
    /* this device's object only */
    char one[1024];
    snprintf(one, sizeof one, "%.*s", (int)(strchr(p, '}') - p), p);
    assert_non_null(strstr(one, "\"pending\":1,"));
    assert_non_null(strstr(one, "\"refused\":1,\"last_refusal\":\""));
    assert_null(strstr(one, "\"last_refusal\":\"\""));
    /* what the device said of itself */
    assert_non_null(strstr(one, "\"last_error\":\"connection refused (test)\",\"app\":\"testapp 1.2\""));
    dash_reply_free(&r);
    /* another team's supervisor does not see the device at all */
    assert_int_equal(request("GET", "/api/devices", &s2, false, NULL, NULL, &r), 0);
    assert_null(strstr(r.body, d.id));
    dash_reply_free(&r);
}

/* A filter is applied and recorded as applied, or refused: the audit row never names a filter
 * that did not narrow what was shown. */
static void test_filters_are_applied_or_refused(void **state)
{
    static const char *const refused[] = {
        "/api/records?limit=-1",        "/api/records?limit=0",
        "/api/records?limit=abc",       "/api/records?limit=1001",
        "/api/records?table=nosuch",    "/api/perday?worker=w1",
        "/api/perday?to=2026-01-01",    "/api/conflicts?worker=w1",
        "/api/devices?q=x",             "/api/export?view=conflicts&worker=w1",
    };
    login s1;
    dash_reply r;
    int64_t before;
    (void)state;

    log_in("sup1", &s1);
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        before = audit_newest();
        assert_int_equal(request("GET", refused[i], &s1, true, NULL, NULL, &r), 0);
        if (r.status != 400)
            fail_msg("%s: expected 400, got %d: %s", refused[i], r.status, r.body);
        assert_non_null(strstr(r.body, "\"error\":"));
        dash_reply_free(&r);
        assert_int_equal(audit_newest(), before);
    }
    assert_int_equal(request("GET", "/api/records?limit=1000", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    dash_reply_free(&r);

    /* a team that is not the caller's narrows to nothing, as the log says */
    assert_int_equal(request("GET", "/api/conflicts?all=1", &s1, false, NULL, NULL, &r), 0);
    assert_non_null(strstr(r.body, "\"team\":\"t1\""));
    dash_reply_free(&r);
    before = audit_newest();
    assert_int_equal(request("GET", "/api/conflicts?team=t2&all=1", &s1, false, NULL, NULL, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"conflicts\":[]}");
    dash_reply_free(&r);
    expect_one_audit_row(before, "sup1|conflict.list|view=conflicts team=t2 all text=0 chars|");
    before = audit_newest();
    assert_int_equal(request("GET", "/api/export?view=conflicts&team=t2", &s1, true, NULL, NULL,
                             &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(count_in(r.body, "\r\n"), 1); /* the heading only */
    dash_reply_free(&r);
    expect_one_audit_row(before, "sup1|export|view=conflicts team=t2 text=0 chars|");
    assert_int_equal(request("GET", "/api/devices?team=t2", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "\"device_id\""));
    dash_reply_free(&r);
}

static void test_audit_is_for_admins_and_verifies(void **state)
{
    login s1, adm;
    dash_reply r;
    char cmd[2048], cp[400];
    (void)state;

    log_in("sup1", &s1);
    assert_int_equal(request("GET", "/api/audit", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 403);
    dash_reply_free(&r);
    log_in("admin1", &adm);
    assert_int_equal(request("GET", "/api/audit?limit=1000", &adm, false, NULL, NULL, &r), 0);
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

    int status = systemf("'%s' --store %s audit verify >/dev/null", OUTPOST_ADMIN_PATH,
                         fx.store_path);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* outpostd signed a checkpoint at start and one at stop, to its log and to the file; the
     * stop is the program's clean-stop check too (exit 0, no sanitizer report, store intact),
     * made before the tampering below, which is why this case runs last */
    assert_int_equal(fixture_stop_clean(&fx), 0);
    assert_true(fixture_log_contains(&fx, "audit checkpoint (start): outpost-audit-checkpoint v1"));
    assert_true(fixture_log_contains(&fx, "audit checkpoint (stop): outpost-audit-checkpoint v1"));
    snprintf(cp, sizeof cp, "%s/checkpoints.txt", fx.dir);
    snprintf(cmd, sizeof cmd,
             "%s --store %s audit verify --checkpoint %s --checkpoint %s | grep -q '4 checkpoints "
             "matched'",
             OUTPOST_ADMIN_PATH, fx.store_path, cp, fx.log_path);
    assert_int_equal(system(cmd), 0);

    /* someone with the file and the sqlite3 shell edits row 2 around the triggers */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx.store_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TRIGGER _outpost_audit_no_update;"
                                  "UPDATE _outpost_audit SET actor = 'someone' WHERE id = 2;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(systemf("'%s' --store %s audit verify 2>&1 | grep -q 'first bad row 2:'",
                             OUTPOST_ADMIN_PATH, fx.store_path),
                     0);
    status = systemf("'%s' --store %s audit verify >/dev/null 2>&1", OUTPOST_ADMIN_PATH,
                     fx.store_path);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    /* the stop checkpoint, shipped elsewhere, says it as well */
    snprintf(cmd, sizeof cmd,
             "%s --store %s audit verify --checkpoint %s 2>&1 | grep -q 'up to row [0-9]* no "
             "longer chains to the checkpoint'",
             OUTPOST_ADMIN_PATH, fx.store_path, cp);
    assert_int_equal(system(cmd), 0);
}

/* Last case: the daemon this program used stops cleanly (exit 0, under ASan without a leak) and
 * leaves a store that passes integrity_check. */
#ifdef OUTPOST_DASH_ON_POSTGRESQL
/* Two outpostd nodes on one database: a push through node 1 reaches a device connected to node 2
 * at once (NOTIFY between nodes, not its next sync), node 2 serves the row, and a supervisor's
 * session made on node 1 works on node 2. */
static void test_two_nodes_share_pushes_and_sessions(void **state)
{
    test_device a, b;
    login s1;
    dash_reply r;
    char name[64];
    proto_msg *msg = NULL;
    (void)state;

    fixture_second_node(&fx, &node2);
    assert_int_equal(fixture_start(&node2), 0);
    assert_int_not_equal(node2.port, fx.port);
    assert_int_equal(fixture_enroll_device(&fx, "w1", &a), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w1", &b), 0);
    testclient *tb = fixture_hello(&node2, &b, NULL);
    assert_non_null(tb);
    while (testclient_recv(tb, 300, &msg) == 0) /* whatever node 2 had to say at hello */
        proto_msg_free(msg);
    uint64_t t0 = wall_ms();
    push_row(&a, 1, "n-1", "t1", "Via node one");
    assert_int_equal(testclient_recv_type(tb, PROTO_MSG_NOTIFY, 3000, &msg), 0);
    proto_msg_free(msg);
    uint64_t waited = wall_ms() - t0;
    print_message("node 2's device told %llu ms after the push began\n",
                  (unsigned long long)waited);
    assert_true(waited < 3000);
    pull_name(tb, "n-1", name, sizeof name);
    assert_string_equal(name, "Via node one");
    testclient_close(tb);

    log_in("sup1", &s1);
    assert_int_equal(dash_request(node2.port, node2.ca_path, "GET", "/api/me", s1.cookie, NULL,
                                  NULL, NULL, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"user\":\"sup1\""));
    dash_reply_free(&r);
    assert_int_equal(dash_request(node2.port, node2.ca_path, "GET", "/api/records", s1.cookie,
                                  NULL, NULL, NULL, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "Via node one"));
    dash_reply_free(&r);
    assert_int_equal(fixture_stop_clean(&node2), 0);
}


/* The store's connections are ended by the database (an administrator, a restart, a failover):
 * outpostd makes them again by itself. Then the database refuses connections for a while:
 * /healthz says so (503) and says 200 again once it is back. Devices and the dashboard are
 * served after each, with no restart of outpostd. */
static int64_t admin_count(db_conn *admin, const char *sql)
{
    db_stmt *st = NULL;
    int64_t n = -1;
    assert_int_equal(db_prepare(admin, sql, &st), 0);
    if (db_step(st) == DB_ROW)
        n = db_column_int64(st, 0);
    db_finalize(st);
    return n;
}

static int health_status(char *body, size_t body_size)
{
    dash_reply r;
    assert_int_equal(request("GET", "/healthz", NULL, false, NULL, NULL, &r), 0);
    snprintf(body, body_size, "%s", r.body ? r.body : "");
    int status = r.status;
    dash_reply_free(&r);
    return status;
}

static int health_becomes(int want, char *body, size_t body_size)
{
    int status = 0;
    for (int i = 0; i < 50 && (status = health_status(body, body_size)) != want; i++)
        usleep(200 * 1000); /* the sweep asks the database every 2 s */
    return status;
}

static const char terminate_outpostd[] =
    "SELECT count(*) FROM (SELECT pid FROM pg_stat_activity WHERE application_name = 'outpostd'"
    " OFFSET 0) AS ours WHERE pg_terminate_backend(ours.pid)"; /* OFFSET 0: filter first */

/* While the database cannot be reached, a device's HELLO is answered "try again" (ERROR 9,
 * retry), never "unknown device or wrong secret": that would send a worker to enroll again. */
static void hello_while_unreachable(const test_device *dev)
{
    testclient *tc = NULL;
    proto_msg hello, *reply = NULL;

    assert_int_equal(testclient_connect(fx.port, fx.ca_path, T_MS, &tc, NULL, 0), 0);
    memset(&hello, 0, sizeof hello);
    hello.type = PROTO_MSG_HELLO;
    hello.u.hello.version = PROTO_VERSION;
    hello.u.hello.device_id = dev->id;
    memcpy(hello.u.hello.secret, dev->secret, sizeof dev->secret);
    assert_int_equal(testclient_send(tc, &hello, T_MS), 0);
    assert_int_equal(testclient_recv_type(tc, PROTO_MSG_ERROR, T_MS, &reply), 0);
    if (reply->u.error.code != PROTO_ERR_INTERNAL || !reply->u.error.retryable ||
        !strstr(reply->u.error.message, "cannot reach its store right now"))
        fail_msg("HELLO while the store is unreachable: ERROR %u retry=%d '%s'",
                 reply->u.error.code, reply->u.error.retryable, reply->u.error.message);
    proto_msg_free(reply);
    testclient_close(tc);
    assert_true(fixture_log_contains(&fx, "authentication not done: the store is unreachable: "));
}

/* ...and a dashboard login is a 503 with Retry-After that says why, not a 500 "the store
 * failed", and it is no failed login (no lockout, nothing to audit). */
static void login_while_unreachable(void)
{
    dash_reply r;
    char retry[16] = "";

    assert_int_equal(try_login("lock1", pw, &r), 0);
    if (r.status != 503 || !strstr(r.body, "the store is unreachable: try again shortly"))
        fail_msg("login while the store is unreachable: %d %s", r.status, r.body);
    assert_int_equal(dash_reply_header(&r, "retry-after", retry, sizeof retry), 0);
    assert_string_equal(retry, "3");
    dash_reply_free(&r);
}

static void test_store_connection_comes_back_after_postgresql_ends_it(void **state)
{
    db_conn *admin = NULL;
    char err[256], body[512];
    test_device dev;
    login s1;
    dash_reply r;
    (void)state;

    assert_int_equal(db_open_postgresql(cluster.conninfo, &admin, err, sizeof err), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w1", &dev), 0);
    push_row(&dev, 1, "rc-1", "t1", "Before the cut");

    /* every session of outpostd's (named by application_name) ended; the next calls work */
    assert_true(admin_count(admin, terminate_outpostd) >= 2);
    usleep(200 * 1000);
    push_row(&dev, 2, "rc-2", "t1", "After the cut");
    log_in("sup1", &s1);
    assert_int_equal(request("GET", "/api/records", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "After the cut"));
    dash_reply_free(&r);
    assert_true(fixture_log_contains(&fx, "store: lost the connection to PostgreSQL"));
    assert_true(fixture_log_contains(&fx, "store: reconnected to PostgreSQL"));

    /* the database refuses connections: unhealthy, with the reason; healthy once back */
    char other_db[sizeof cluster.conninfo + 32];
    db_conn *admin2 = NULL; /* on another database: the current one cannot be closed */
    snprintf(other_db, sizeof other_db, "%s dbname=postgres", cluster.conninfo);
    assert_int_equal(db_open_postgresql(other_db, &admin2, err, sizeof err), 0);
    assert_int_equal(db_exec(admin2, "ALTER DATABASE outpost ALLOW_CONNECTIONS false"), 0);
    assert_true(admin_count(admin, terminate_outpostd) >= 2);
    assert_int_equal(health_becomes(503, body, sizeof body), 503);
    assert_non_null(strstr(body, "unhealthy\nstore: cannot reach PostgreSQL: "));
    hello_while_unreachable(&dev);
    login_while_unreachable();
    assert_int_equal(db_exec(admin2, "ALTER DATABASE outpost ALLOW_CONNECTIONS true"), 0);
    db_close(admin2);
    assert_int_equal(health_becomes(200, body, sizeof body), 200);
    assert_non_null(strstr(body, "ok\nstore: reachable\n"));
    push_row(&dev, 3, "rc-3", "t1", "After the refusal");
    assert_int_equal(request("GET", "/api/records", &s1, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "After the refusal"));
    dash_reply_free(&r);
    db_close(admin);
}

/* Last: it was PostgreSQL outpostd served from (it listened for other nodes' changes), its
 * readiness says so without a store file to look at, and it stops cleanly, with no sanitizer
 * report. */
static void test_outpostd_stops_cleanly(void **state)
{
    dash_reply r;
    (void)state;

    assert_int_equal(request("GET", "/healthz", NULL, false, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "ok\nstore: reachable\n"));
    dash_reply_free(&r);
    assert_true(fixture_log_contains(&fx, "store=(PostgreSQL)"));
    assert_true(fixture_log_contains(&fx, "listening for other nodes' changes"));
    /* this cluster has no standby: acknowledged records could be lost at a failover */
    assert_true(fixture_log_contains(&fx, "store: the PostgreSQL primary has no synchronous "
                                          "standby: synchronous_standby_names is empty: "));
    assert_int_equal(fixture_stop_clean(&fx), 0);
}

/* After the others: the database server itself goes away (killed, as in a failover before the
 * promotion) under a running outpostd. A device's HELLO is "try again", not bad credentials, and
 * a dashboard login is a 503 with Retry-After; outpostd still stops cleanly. */
static void test_a_dead_database_is_try_again_not_bad_credentials(void **state)
{
    test_device dev;
    (void)state;

    assert_int_equal(fixture_start(&fx), 0);
    assert_int_equal(fixture_enroll_device(&fx, "w1", &dev), 0);
    pg_cluster_kill(&cluster);
    hello_while_unreachable(&dev);
    login_while_unreachable();
    assert_int_equal(fixture_stop_clean(&fx), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_sets_a_strict_session_cookie),
        cmocka_unit_test(test_views_are_limited_to_the_supervisors_teams),
        cmocka_unit_test(test_reversal_reaches_a_connected_device),
        cmocka_unit_test(test_conflict_on_a_deleted_record_offers_no_reverse),
        cmocka_unit_test(test_conflict_on_a_field_changed_since_offers_no_reverse),
        cmocka_unit_test(test_refusals_reach_the_queue_without_leaking),
        cmocka_unit_test(test_logout_ends_the_session),
        cmocka_unit_test(test_sessions_are_shared_through_the_store),
        cmocka_unit_test(test_two_nodes_share_pushes_and_sessions),
        cmocka_unit_test(test_store_connection_comes_back_after_postgresql_ends_it),
        cmocka_unit_test(test_outpostd_stops_cleanly),
        cmocka_unit_test(test_a_dead_database_is_try_again_not_bad_credentials),
    };
    if (!pg_cluster_available()) {
        printf("PostgreSQL binaries not installed: skipped\n");
        return 0;
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
#else
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_sets_a_strict_session_cookie),
        cmocka_unit_test(test_change_log_has_no_index_by_row),
        cmocka_unit_test(test_login_body_is_a_form),
        cmocka_unit_test(test_api_needs_a_session),
        cmocka_unit_test(test_views_are_limited_to_the_supervisors_teams),
        cmocka_unit_test(test_state_changes_need_the_csrf_token),
        cmocka_unit_test(test_reversal_reaches_a_connected_device),
        cmocka_unit_test(test_conflict_on_a_deleted_record_offers_no_reverse),
        cmocka_unit_test(test_conflict_on_a_field_changed_since_offers_no_reverse),
        cmocka_unit_test(test_refusals_reach_the_queue_without_leaking),
        cmocka_unit_test(test_lockout_after_five_failures),
        cmocka_unit_test(test_locked_logins_do_not_take_the_login_lane),
        cmocka_unit_test(test_logout_ends_the_session),
        cmocka_unit_test(test_sessions_are_shared_through_the_store),
        cmocka_unit_test(test_live_follows_the_store),
        cmocka_unit_test(test_sessions_say_why_they_ended),
        cmocka_unit_test(test_every_read_leaves_one_audit_row_naming_what_it_showed),
        cmocka_unit_test(test_disabling_a_person_ends_their_session_and_sync),
        cmocka_unit_test(test_background_refreshes_do_not_extend_the_idle_clock),
        cmocka_unit_test(test_audit_view_pages_and_filters),
        cmocka_unit_test(test_people_section_is_for_admins_and_audited),
        cmocka_unit_test(test_revoking_a_device_keeps_its_unsent_entries_unless_wipe),
        cmocka_unit_test(test_a_500_logs_its_reason),
        cmocka_unit_test(test_moving_a_worker_changes_what_its_device_holds),
        cmocka_unit_test(test_reset_password_must_be_changed_at_next_login),
        cmocka_unit_test(test_people_section_issues_an_enrollment_code_with_its_qr),
        cmocka_unit_test(test_records_sort_and_page_past_200),
        cmocka_unit_test(test_record_detail_has_history_and_conflicts),
        cmocka_unit_test(test_devices_show_what_is_stuck),
        cmocka_unit_test(test_filters_are_applied_or_refused),
        cmocka_unit_test(test_audit_is_for_admins_and_verifies), /* last: stops outpostd */
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
#endif
