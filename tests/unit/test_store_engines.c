/*
 * The store modules that speak the database seam, run the same way on SQLite and on a private
 * PostgreSQL 15 server started here: teams and workers, enrollment and device authentication,
 * lockouts, identity, the merge engine's tables; and two handles on one store (two outpostd nodes
 * on one PostgreSQL) that see each other's writes and take turns writing.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/test_skip.h"
#include "store_internal.h" /* store_worker_teams */
#include "store_rowcheck.h"
#include "store_values.h"
#include "unit/pg_cluster.h"

enum { ENGINE_SQLITE = 1, ENGINE_POSTGRESQL = 2 };

typedef struct engine_fx {
    int engine;
    pg_cluster pg;
    char dir[64];
    char path[128];
    store *st;
} engine_fx;

/* Another handle on the fixture's store, as a second outpostd node would open it. */
static store *open_node(engine_fx *fx)
{
    char err[256] = "";
    store *st = NULL;
    int rc = fx->engine == ENGINE_POSTGRESQL
                 ? store_open_postgresql(fx->pg.conninfo, false, &st, err, sizeof err)
                 : store_open(fx->path, false, &st, err, sizeof err);
    if (rc != 0)
        fail_msg("open: %s", err);
    return st;
}

static int setup_engine(void **state, int engine)
{
    engine_fx *fx = calloc(1, sizeof *fx);
    char err[256] = "";
    int rc;

    if (fx == NULL)
        return -1;
    fx->engine = engine;
    *state = fx;
    if (engine == ENGINE_POSTGRESQL) {
        if (!pg_cluster_available())
            return 0; /* every test of the group skips */
        if (pg_cluster_start(&fx->pg) != 0)
            return -1;
        rc = store_open_postgresql(fx->pg.conninfo, true, &fx->st, err, sizeof err);
    } else {
        snprintf(fx->dir, sizeof fx->dir, "/tmp/outpost-engines-XXXXXX");
        if (mkdtemp(fx->dir) == NULL)
            return -1;
        snprintf(fx->path, sizeof fx->path, "%s/store.db", fx->dir);
        rc = store_open(fx->path, true, &fx->st, err, sizeof err);
    }
    if (rc != 0) {
        fprintf(stderr, "store open: %s\n", err);
        return -1;
    }
    const char *north[] = {"north"};
    const char *both[] = {"north", "south"};
    if (store_team_add(fx->st, "north", "North") != 0 || store_team_add(fx->st, "south", NULL) != 0 ||
        store_worker_add(fx->st, "ana", north, 1) != 0 ||
        store_worker_add(fx->st, "cai", both, 2) != 0) {
        fprintf(stderr, "people: %s\n", store_errmsg(fx->st));
        return -1;
    }
    return 0;
}

static int setup_sqlite(void **state)
{
    return setup_engine(state, ENGINE_SQLITE);
}

static int setup_postgresql(void **state)
{
    return setup_engine(state, ENGINE_POSTGRESQL);
}

static int teardown_engine(void **state)
{
    engine_fx *fx = *state;
    store_close(fx->st);
    if (fx->dir[0] != 0) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", fx->dir);
        if (system(cmd) != 0)
            return -1;
    }
    pg_cluster_stop(&fx->pg);
    free(fx);
    return 0;
}

static engine_fx *engine_of(void **state)
{
    engine_fx *fx = *state;
    if (fx->st == NULL)
        TEST_SKIP("PostgreSQL 15 binaries not installed (scripts/deps.sh installs them)");
    return fx;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Enrolls a device for worker on st with a code made now (codes expire by the wall clock). */
static void enroll(store *st, const char *worker, const char *name, char device_id[40],
                   uint8_t secret[32])
{
    char code[STORE_CODE_SIZE];
    assert_int_equal(store_enroll_code_create(st, worker, now_ms(), 600000, code), 0);
    assert_int_equal(store_device_enroll(st, code, name, device_id, secret), 0);
}

static void test_people(void **state)
{
    engine_fx *fx = engine_of(state);
    const char *east[] = {"east"};
    const char *south[] = {"south"};
    uint32_t n = 0;
    char(*teams)[64] = NULL;

    assert_int_equal(store_team_add(fx->st, "north", NULL), STORE_EEXISTS);
    assert_string_equal(store_errmsg(fx->st), "team north exists already");
    assert_int_equal(store_team_add(fx->st, "no/slash", NULL), STORE_EINVAL);
    assert_int_equal(store_worker_add(fx->st, "dee", east, 1), STORE_ENOTFOUND);
    assert_string_equal(store_errmsg(fx->st), "no team east (add it with: team add east)");
    assert_int_equal(store_worker_add(fx->st, "ana", south, 1), STORE_EEXISTS);

    assert_int_equal(store_worker_teams(fx->st, "cai", &n, &teams), 0);
    assert_int_equal(n, 2);
    assert_string_equal(teams[0], "north");
    assert_string_equal(teams[1], "south");
    free(teams);
    assert_int_equal(store_worker_teams(fx->st, "dee", &n, &teams), 0);
    assert_int_equal(n, 0);
    assert_null(teams);
}

typedef struct found_device {
    const char *id;
    store_device_row row;
    int n;
} found_device;

static int find_device(const store_device_row *row, void *user_data)
{
    found_device *f = user_data;
    f->n++;
    if (strcmp(row->device_id, f->id) == 0)
        f->row = *row;
    return 0;
}

static void test_enroll_and_authenticate(void **state)
{
    engine_fx *fx = engine_of(state);
    char id[40], code[STORE_CODE_SIZE], other_id[40];
    uint8_t secret[32], wrong[32], other_secret[32];
    store_device dev = {0};

    enroll(fx->st, "cai", "tablet 7", id, secret);
    assert_int_equal(strlen(id), 36);
    assert_int_equal(store_device_auth(fx->st, id, secret, &dev), 0);
    assert_string_equal(dev.worker_id, "cai");
    assert_int_equal(dev.n_teams, 2);
    assert_string_equal(dev.teams[1], "south");
    assert_false(dev.revoked);

    memcpy(wrong, secret, sizeof wrong);
    wrong[31] ^= 1;
    assert_int_equal(store_device_auth(fx->st, id, wrong, &dev), STORE_EAUTH);
    assert_int_equal(store_device_auth(fx->st, "00000000-0000-4000-8000-000000000000", secret,
                                       &dev),
                     STORE_ENOTFOUND);

    /* A code works once, and not after it expired. */
    assert_int_equal(store_enroll_code_create(fx->st, "ana", now_ms(), 600000, code), 0);
    assert_int_equal(store_device_enroll(fx->st, code, NULL, other_id, other_secret), 0);
    assert_int_equal(store_device_enroll(fx->st, code, NULL, other_id, other_secret), STORE_ECODE);
    assert_int_equal(store_enroll_code_create(fx->st, "ana", now_ms() - 10000, 1, code), 0);
    assert_int_equal(store_device_enroll(fx->st, code, NULL, other_id, other_secret), STORE_ECODE);
    assert_int_equal(store_enroll_code_create(fx->st, "nobody", now_ms(), 1000, code),
                     STORE_ENOTFOUND);

    found_device f = {.id = id};
    assert_int_equal(store_device_seen(fx->st, id, 77), 0);
    assert_int_equal(store_device_list(fx->st, find_device, &f), 0);
    assert_true(f.n >= 2);
    assert_string_equal(f.row.name, "tablet 7");
    assert_int_equal(f.row.cursor, 77);
    assert_true(f.row.last_seen_ms > 0);
    assert_int_equal(store_device_seen(fx->st, "no-such-device", 1), STORE_ENOTFOUND);

    bool barred = true; /* the sweep's question: may this device's session go on? */
    assert_int_equal(store_device_barred(fx->st, id, &barred), 0);
    assert_false(barred);
    assert_int_equal(store_device_barred(fx->st, "no-such-device", &barred), 0);
    assert_true(barred);
    assert_int_equal(store_device_revoke(fx->st, id, false), 0);
    barred = false;
    assert_int_equal(store_device_barred(fx->st, id, &barred), 0);
    assert_true(barred);
    assert_int_equal(store_device_revoke(fx->st, id, true), 0);
    assert_int_equal(store_device_revoke(fx->st, id, false), 0); /* the wipe order stays */
    assert_int_equal(store_device_auth(fx->st, id, secret, &dev), STORE_EREVOKED);
    assert_true(dev.wipe);
    assert_int_equal(store_device_revoke(fx->st, "no-such-device", false), STORE_ENOTFOUND);
    store_device_clear(&dev);
}

static void test_lockouts(void **state)
{
    engine_fx *fx = engine_of(state);
    const store_lockout_policy policy = {.max_failures = 3, .window_ms = 60000,
                                         .duration_ms = 30000};
    const uint64_t t = 1767225600000u;
    bool locked = true;

    assert_int_equal(store_lockout_fail(fx->st, "login", "ana", &policy, t, &locked), 0);
    assert_false(locked);
    assert_int_equal(store_lockout_fail(fx->st, "login", "ana", &policy, t + 1, &locked), 0);
    assert_false(locked);
    assert_int_equal(store_lockout_fail(fx->st, "login", "ana", &policy, t + 2, &locked), 0);
    assert_true(locked);
    assert_int_equal(store_lockout_check(fx->st, "login", "ana", t + 29000, &locked), 0);
    assert_true(locked);
    assert_int_equal(store_lockout_check(fx->st, "login", "other", t, &locked), 0);
    assert_false(locked);
    assert_int_equal(store_lockout_check(fx->st, "login", "ana", t + 40000, &locked), 0);
    assert_false(locked);
    assert_int_equal(store_lockout_fail(fx->st, "login", "ana", &policy, t + 3, &locked), 0);
    assert_true(locked);
    assert_int_equal(store_lockout_clear(fx->st, "login", "ana"), 0);
    assert_int_equal(store_lockout_check(fx->st, "login", "ana", t + 4, &locked), 0);
    assert_false(locked);
}

/* A second node sees the first one's identity, devices and lockouts. */
static void test_second_node_shares_everything(void **state)
{
    engine_fx *fx = engine_of(state);
    store *node2 = open_node(fx);
    store_identity a, b;
    char id[40];
    uint8_t secret[32];
    store_device dev = {0};
    const store_lockout_policy policy = {.max_failures = 2, .window_ms = 60000,
                                         .duration_ms = 30000};
    bool locked = false;

    assert_int_equal(store_identity_get(fx->st, &a), 0);
    assert_int_equal(store_identity_get(node2, &b), 0);
    assert_string_equal(a.id, b.id);
    assert_int_equal(a.epoch, 1);
    assert_int_equal(b.epoch, 1);

    enroll(fx->st, "ana", NULL, id, secret);
    assert_int_equal(store_device_auth(node2, id, secret, &dev), 0);
    assert_string_equal(dev.worker_id, "ana");
    store_device_clear(&dev);

    assert_int_equal(store_lockout_fail(fx->st, "secret-addr", "10.0.0.9", &policy,
                                        1767225600000u, &locked),
                     0);
    assert_false(locked);
    assert_int_equal(store_lockout_fail(node2, "secret-addr", "10.0.0.9", &policy,
                                        1767225600001u, &locked),
                     0);
    assert_true(locked);
    assert_int_equal(store_lockout_check(fx->st, "secret-addr", "10.0.0.9", 1767225600002u,
                                         &locked),
                     0);
    assert_true(locked);
    store_close(node2);
}

/* Dashboard accounts: a login on one node, the lock after wrong passwords seen by the other,
 * a password reset that the other node makes the user change. */
static void test_accounts_across_nodes(void **state)
{
    engine_fx *fx = engine_of(state);
    store *node2 = open_node(fx);
    const char *north[] = {"north"};
    store_user user = {0};
    uint64_t t = now_ms();

    assert_int_equal(store_user_add(fx->st, "sam", STORE_ROLE_SUPERVISOR, north, 1,
                                    "correct horse battery"),
                     0);
    assert_int_equal(store_user_add(node2, "sam", STORE_ROLE_SUPERVISOR, north, 1,
                                    "correct horse battery"),
                     STORE_EEXISTS);
    assert_int_equal(store_user_login(node2, "sam", "correct horse battery", t, &user), 0);
    assert_int_equal(user.role, STORE_ROLE_SUPERVISOR);
    assert_int_equal(user.n_teams, 1);
    assert_string_equal(user.teams[0], "north");
    assert_false(user.must_change);
    store_user_clear(&user);

    for (uint32_t i = 0; i + 1 < STORE_LOGIN_MAX_FAILURES; i++)
        assert_int_equal(store_user_login(i % 2 ? fx->st : node2, "sam", "wrong password 1", t,
                                          &user),
                         STORE_EAUTH);
    assert_int_equal(store_user_login(fx->st, "sam", "wrong password 1", t, &user), STORE_ELOCKED);
    assert_int_equal(store_user_login(node2, "sam", "correct horse battery", t + 1, &user),
                     STORE_ELOCKED);
    assert_int_equal(store_user_unlock(fx->st, "sam"), 0);
    assert_int_equal(store_user_reset_password(fx->st, "sam", "a new one for sam"), 0);
    assert_int_equal(store_user_login(node2, "sam", "a new one for sam", t + 2, &user), 0);
    assert_true(user.must_change);
    store_user_clear(&user);
    store_close(node2);
}

/* Dashboard sessions live in the store: made on one node, known on the other; a logout, the
 * idle and age limits, a password change and a disabled or removed account end them on all. */
static void test_sessions_across_nodes(void **state)
{
    engine_fx *fx = engine_of(state);
    store *node2 = open_node(fx);
    const char *north[] = {"north"};
    char token[STORE_SESSION_TOKEN_HEX], other[STORE_SESSION_TOKEN_HEX];
    char tokens[STORE_SESSIONS_PER_USER + 1][STORE_SESSION_TOKEN_HEX];
    store_session s;
    uint32_t n = 0;
    uint64_t t = now_ms();

    assert_int_equal(store_user_add(fx->st, "kim", STORE_ROLE_SUPERVISOR, north, 1,
                                    "correct horse battery"),
                     0);
    assert_int_equal(store_session_create(fx->st, "kim", t, token, NULL), 0);
    assert_int_equal(strlen(token), 64);
    assert_int_equal(store_session_find(node2, token, t + 1000, true, &s), 0);
    assert_string_equal(s.user, "kim");
    assert_true(s.created_ms == t && s.last_ms == t);
    /* node 2's request restarted the idle clock node 1 sees */
    assert_int_equal(store_session_find(fx->st, token, t + 2000, false, &s), 0);
    assert_true(s.last_ms == t + 1000);
    /* a token one digit off, or not hex, is no session */
    other[0] = 0;
    snprintf(other, sizeof other, "%s", token);
    other[0] = other[0] == 'a' ? 'b' : 'a';
    assert_int_equal(store_session_find(fx->st, other, t, false, &s), STORE_ENOTFOUND);
    assert_int_equal(store_session_find(fx->st, "zz", t, false, &s), STORE_ENOTFOUND);

    /* logout on node 2 ends it on node 1 */
    assert_int_equal(store_session_end(node2, token), 0);
    assert_int_equal(store_session_find(fx->st, token, t + 3000, true, &s), STORE_ENOTFOUND);

    /* idle past the limit, or older than the age limit though busy: refused on the other node */
    assert_int_equal(store_session_create(fx->st, "kim", t, token, NULL), 0);
    assert_int_equal(store_session_find(node2, token, t + STORE_SESSION_IDLE_MS, true, &s), 0);
    assert_int_equal(store_session_find(node2, token, t + 2 * STORE_SESSION_IDLE_MS + 1, true, &s),
                     STORE_ENOTFOUND);
    assert_int_equal(store_session_create(fx->st, "kim", t, token, NULL), 0);
    for (uint64_t at = t; at < t + STORE_SESSION_MAX_AGE_MS; at += STORE_SESSION_IDLE_MS / 2)
        assert_int_equal(store_session_find(at % 2 ? fx->st : node2, token, at, true, &s), 0);
    assert_int_equal(store_session_find(node2, token, t + STORE_SESSION_MAX_AGE_MS + 1, true, &s),
                     STORE_ENOTFOUND);

    /* at most STORE_SESSIONS_PER_USER at once: the least recently used ends */
    for (uint32_t i = 0; i <= STORE_SESSIONS_PER_USER; i++) {
        uint32_t ended = 99;
        assert_int_equal(store_session_create(i % 2 ? fx->st : node2, "kim", t + i, tokens[i],
                                              &ended),
                         0);
        assert_int_equal(ended, i == STORE_SESSIONS_PER_USER ? 1u : 0u); /* said, to audit it */
    }
    assert_int_equal(store_session_find(node2, tokens[0], t + 100, false, &s), STORE_ENOTFOUND);
    assert_int_equal(store_session_find(node2, tokens[1], t + 100, false, &s), 0);

    /* a password change keeps the session it came from and ends the others */
    assert_int_equal(store_sessions_end_user(node2, "kim", tokens[1], &n), 0);
    assert_int_equal(n, STORE_SESSIONS_PER_USER - 1);
    assert_int_equal(store_session_find(fx->st, tokens[1], t + 100, false, &s), 0);
    assert_int_equal(store_session_find(fx->st, tokens[2], t + 100, false, &s), STORE_ENOTFOUND);

    /* disabling the account on node 2 ends its sessions on node 1, and enabling it again does
     * not bring them back */
    assert_int_equal(store_user_set_disabled(node2, "kim", true), 0);
    assert_int_equal(store_session_find(fx->st, tokens[1], t + 200, true, &s), STORE_EREVOKED);
    assert_int_equal(store_session_create(fx->st, "kim", t, token, NULL), 0);
    assert_int_equal(store_user_set_disabled(node2, "kim", true), 0);
    assert_int_equal(store_user_set_disabled(node2, "kim", false), 0);
    assert_int_equal(store_session_find(fx->st, token, t + 300, true, &s), STORE_ENOTFOUND);
    assert_int_equal(store_session_find(fx->st, tokens[1], t + 300, true, &s), STORE_ENOTFOUND);

    /* removing it ends them too */
    assert_int_equal(store_session_create(node2, "kim", t, token, NULL), 0);
    assert_int_equal(store_user_remove(fx->st, "kim"), 0);
    assert_int_equal(store_session_find(node2, token, t + 1, true, &s), STORE_ENOTFOUND);
    store_close(node2);
}

typedef struct listed {
    char text[512];
} listed;

static int list_person(const store_person *person, void *user_data)
{
    listed *l = user_data;
    size_t at = strlen(l->text);
    snprintf(l->text + at, sizeof l->text - at, "%s[%s]%s;", person->id, person->teams,
             person->disabled ? "off" : "");
    return 0;
}

/* Lists (group_concat on SQLite, string_agg on PostgreSQL) and a disabled worker, whose
 * devices no node lets in. */
static void test_lists_and_disabled_worker(void **state)
{
    engine_fx *fx = engine_of(state);
    store *node2 = open_node(fx);
    listed teams = {""}, workers = {""};
    char id[40];
    uint8_t secret[32];
    store_device dev = {0};

    assert_int_equal(store_team_list(fx->st, list_person, &teams), 0);
    assert_string_equal(teams.text, "north[ana,cai];south[cai];");
    enroll(fx->st, "ana", NULL, id, secret);
    assert_int_equal(store_worker_set_disabled(fx->st, "ana", true), 0);
    assert_int_equal(store_worker_list(node2, list_person, &workers), 0);
    assert_string_equal(workers.text, "ana[north]off;cai[north,south];");
    assert_int_equal(store_device_auth(node2, id, secret, &dev), STORE_EREVOKED);
    assert_string_equal(store_errmsg(node2), "the device's worker ana is disabled");
    assert_int_equal(store_worker_set_disabled(node2, "ana", false), 0);
    assert_int_equal(store_device_auth(fx->st, id, secret, &dev), 0);
    store_device_clear(&dev);
    store_close(node2);
}

/* The audit chain shared by nodes: appends from two nodes at once make one unbroken chain,
 * a checkpoint signed on one verifies on the other, and no node can change a row. */
enum { AUDIT_APPENDS = 20 };

typedef struct audit_arg {
    engine_fx *fx;
    const char *key;
    const char *actor;
    int appended;
} audit_arg;

static void *node_audits(void *p)
{
    audit_arg *a = p;
    store *st = open_node(a->fx);
    if (store_audit_key_load(st, a->key) == STORE_OK)
        for (int i = 0; i < AUDIT_APPENDS; i++)
            if (store_audit_append(st, now_ms(), a->actor, "record.view", "contacts/1",
                                   "127.0.0.1") == STORE_OK)
                a->appended++;
    if (a->appended != AUDIT_APPENDS)
        fprintf(stderr, "audit node: %s\n", store_errmsg(st));
    store_close(st);
    return NULL;
}

static int count_row(const store_audit_row *row, void *user_data)
{
    (void)row;
    (*(int *)user_data)++;
    return 0;
}

static void test_audit_chain_across_nodes(void **state)
{
    engine_fx *fx = engine_of(state);
    char key_dir[] = "/tmp/outpost-engines-key-XXXXXX", key[64], err[256] = "", line[512];
    pthread_t threads[2];
    audit_arg args[2];
    uint64_t n_rows = 0;
    int64_t bad = 0;

    assert_non_null(mkdtemp(key_dir));
    snprintf(key, sizeof key, "%s/key", key_dir);
    assert_int_equal(store_audit_key_create(key, err, sizeof err), 0);
    assert_int_equal(store_audit_key_load(fx->st, key), 0);
    assert_int_equal(store_audit_append(fx->st, now_ms(), "sam", "login.ok", "", "127.0.0.1"), 0);
    for (int i = 0; i < 2; i++) {
        args[i] = (audit_arg){.fx = fx, .key = key, .actor = i ? "sam" : "ida"};
        assert_int_equal(pthread_create(&threads[i], NULL, node_audits, &args[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(args[i].appended, AUDIT_APPENDS);
    }
    assert_int_equal(store_audit_verify(fx->st, &n_rows, &bad), 0);
    assert_int_equal(n_rows, 1 + 2 * AUDIT_APPENDS);
    assert_int_equal(bad, 0);

    int n = 0;
    store_audit_filter by_action = {.action = "login"}; /* "login" matches login.ok */
    assert_int_equal(store_audit_query(fx->st, &by_action, count_row, &n), 0);
    assert_int_equal(n, 1);
    n = 0;
    store_audit_filter by_actor = {.actor = "ida", .limit = 5};
    assert_int_equal(store_audit_query(fx->st, &by_actor, count_row, &n), 0);
    assert_int_equal(n, 5);

    store *node2 = open_node(fx);
    assert_int_equal(store_audit_key_load(node2, key), 0);
    assert_int_equal(store_audit_checkpoint(node2, now_ms(), line, &n_rows), 0);
    assert_int_equal(store_audit_verify_checkpoint(fx->st, line, &bad), 0);
    assert_int_equal(store_exec(node2, "UPDATE _outpost_audit SET actor = 'x' WHERE id = 1",
                                "alter an audit row"),
                     STORE_EIO);
    assert_non_null(strstr(store_errmsg(node2), "the audit log is append-only"));
    assert_int_equal(store_exec(node2, "DELETE FROM _outpost_audit WHERE id = 2",
                                "remove an audit row"),
                     STORE_EIO);
    assert_int_equal(store_audit_verify(fx->st, &n_rows, &bad), 0);
    store_close(node2);
    unlink(key);
    rmdir(key_dir);
}

typedef struct heard_teams {
    char text[256];
} heard_teams;

static void hear(const char *origin, const char *team, uint64_t server_seq, void *user_data)
{
    heard_teams *h = user_data;
    size_t at = strlen(h->text);
    snprintf(h->text + at, sizeof h->text - at, "%s@%llu from %s;", team,
             (unsigned long long)server_seq, origin);
}

/* A node that changed rows announces their teams; a node listening on the same PostgreSQL
 * hears them (and would NOTIFY its devices), but not what a rolled-back transaction said. On
 * SQLite there is one node: nothing to announce, nothing heard, no descriptor. */
static void test_announcements_between_nodes(void **state)
{
    engine_fx *fx = engine_of(state);
    store *node2 = open_node(fx);
    const char teams[2][64] = {"north", "south"};
    heard_teams h = {""};
    bool pg = fx->engine == ENGINE_POSTGRESQL;

    assert_int_equal(store_announce_listen(node2), 0);
    assert_int_equal(store_announcements(node2, 0, hear, &h), 0);
    assert_int_equal(store_exec(fx->st, "BEGIN", "begin"), 0);
    assert_int_equal(store_announce_teams(fx->st, "node-1", teams, 1, 7), 0);
    store_rollback(fx->st);
    assert_int_equal(store_announce_teams(fx->st, "node-1", teams + 1, 1, 8), 0);
    assert_int_equal(store_announce_teams(fx->st, "node-1", teams, 1, 9), 0);
    assert_int_equal(store_announce_teams(fx->st, "two words", teams, 1, 9), STORE_EINVAL);
    int n = store_announcements(node2, 2000, hear, &h);
    if (pg && n == 1) /* the second may follow the first by a moment */
        n += store_announcements(node2, 2000, hear, &h);
    assert_int_equal(n, pg ? 2 : 0);
    assert_string_equal(h.text, pg ? "south@8 from node-1;north@9 from node-1;" : "");
    assert_true(pg ? store_announce_fd(node2) >= 0 : store_announce_fd(node2) == -1);
    store_close(node2);
}

/* The server sequence as the merge engine advances it (read, add, write back inside one write
 * transaction), from two nodes at once: no number is handed out twice or lost. */
enum { SEQ_STEPS = 50 };

static void *node_advances_seq(void *p)
{
    engine_fx *fx = p;
    store *st = open_node(fx);
    for (int i = 0; i < SEQ_STEPS; i++) {
        int64_t seq = 0;
        int rc = store_begin(st, true);
        if (rc == STORE_OK)
            rc = store_meta_get(st, "server_seq", &seq);
        if (rc == STORE_OK)
            rc = store_meta_set(st, "server_seq", seq + 1);
        if (rc == STORE_OK)
            rc = store_commit(st);
        else
            store_rollback(st);
        if (rc != STORE_OK)
            fprintf(stderr, "seq node: %s\n", store_errmsg(st));
    }
    store_close(st);
    return NULL;
}

static void test_server_seq_from_two_nodes(void **state)
{
    engine_fx *fx = engine_of(state);
    pthread_t threads[2];
    int64_t before = 0, after = 0;

    assert_int_equal(store_meta_get(fx->st, "server_seq", &before), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, node_advances_seq, fx), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(store_meta_get(fx->st, "server_seq", &after), 0);
    assert_int_equal(after, before + 2 * SEQ_STEPS);
}

/* Nodes enrolling at once: every enrollment lands, each device once. */
enum { NODES = 2, ENROLLMENTS = 15 };

typedef struct node_arg {
    engine_fx *fx;
    int enrolled;
    char ids[ENROLLMENTS][40];
} node_arg;

static void *node_enrolls(void *p)
{
    node_arg *n = p;
    store *st = open_node(n->fx);
    for (int i = 0; i < ENROLLMENTS; i++) {
        char code[STORE_CODE_SIZE];
        uint8_t secret[32];
        if (store_enroll_code_create(st, "cai", now_ms(), 600000, code) == 0 &&
            store_device_enroll(st, code, NULL, n->ids[n->enrolled], secret) == 0)
            n->enrolled++;
        else
            fprintf(stderr, "node: %s\n", store_errmsg(st));
    }
    store_close(st);
    return NULL;
}

static int count_device(const store_device_row *row, void *user_data)
{
    (void)row;
    (*(int *)user_data)++;
    return 0;
}

static void test_nodes_enroll_at_once(void **state)
{
    engine_fx *fx = engine_of(state);
    pthread_t threads[NODES];
    node_arg *args = calloc(NODES, sizeof *args);
    int before = 0, after = 0;

    assert_non_null(args);
    assert_int_equal(store_device_list(fx->st, count_device, &before), 0);
    for (int i = 0; i < NODES; i++) {
        args[i].fx = fx;
        assert_int_equal(pthread_create(&threads[i], NULL, node_enrolls, &args[i]), 0);
    }
    for (int i = 0; i < NODES; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < NODES; i++)
        assert_int_equal(args[i].enrolled, ENROLLMENTS);
    assert_int_equal(store_device_list(fx->st, count_device, &after), 0);
    assert_int_equal(after, before + NODES * ENROLLMENTS);
    free(args);
}

/* Runs sql with one any-type value bound as ?1 and returns the count it selects. */
static int64_t count_where(engine_fx *fx, const char *sql, const proto_value *val)
{
    db_stmt *stmt = NULL;
    int64_t n = -1;
    assert_int_equal(db_prepare(fx->st->conn, sql, &stmt), 0);
    assert_int_equal(store_value_bind_any(stmt, 1, val), 0);
    assert_int_equal(db_step(stmt), DB_ROW);
    n = db_column_int64(stmt, 0);
    db_finalize(stmt);
    return n;
}

/* The merge engine's tables exist on both engines, and their any-type columns keep a value of
 * every type as it came: read back equal, found by equality, TEXT and BLOB of the same bytes
 * told apart; keys the store assigns (conflict ids) come back with RETURNING. */
static void test_merge_tables_keep_any_value(void **state)
{
    engine_fx *fx = engine_of(state);
    static const uint8_t north[] = {'n', 'o', 'r', 't', 'h'};
    proto_value vals[5] = {{.type = PROTO_INT, .u.i = INT64_MIN},
                           {.type = PROTO_REAL, .u.r = -0.5},
                           {.type = PROTO_TEXT, .u.b = {north, sizeof north}},
                           {.type = PROTO_BLOB, .u.b = {north, sizeof north}},
                           {.type = PROTO_NULL}};
    db_stmt *stmt = NULL;
    store_arena arena = {0};

    assert_int_equal(store_begin(fx->st, true), 0);
    for (int i = 0; i < 5; i++) {
        uint8_t pk[1] = {(uint8_t)i};
        assert_int_equal(db_prepare(fx->st->conn,
                                    "INSERT INTO _outpost_rows(table_id, pk, seq, deleted, scope,"
                                    " base_hlc, base_device, echo_since)"
                                    " VALUES(1, ?1, ?2, 0, ?3, 7, 1, 0)",
                                    &stmt),
                         0);
        assert_int_equal(db_bind_blob(stmt, 1, pk, sizeof pk), 0);
        assert_int_equal(db_bind_int64(stmt, 2, i + 1), 0);
        assert_int_equal(store_value_bind_any(stmt, 3, &vals[i]), 0);
        assert_int_equal(db_step(stmt), DB_DONE);
        db_finalize(stmt);
        assert_int_equal(db_prepare(fx->st->conn,
                                    "INSERT INTO _outpost_changes(seq, table_id, pk, op, device,"
                                    " altered, hlc, scope_old, scope_new, time_ms)"
                                    " VALUES(?1, 1, ?2, 1, 1, 0, 7, ?3, ?4, 0)",
                                    &stmt),
                         0);
        assert_int_equal(db_bind_int64(stmt, 1, i + 1), 0);
        assert_int_equal(db_bind_blob(stmt, 2, pk, sizeof pk), 0);
        assert_int_equal(store_value_bind_any(stmt, 3, &vals[i]), 0);
        assert_int_equal(store_value_bind_any(stmt, 4, &vals[(i + 1) % 5]), 0);
        assert_int_equal(db_step(stmt), DB_DONE);
        db_finalize(stmt);
    }
    assert_int_equal(db_prepare(fx->st->conn,
                                "INSERT INTO _outpost_conflicts(table_id, pk, col, kind,"
                                " losing_value, winning_value, time_ms, decided_by, reversible,"
                                " push_device, push_seq, server_seq, against_push)"
                                " VALUES(1, ?1, 0, 1, ?2, ?3, 0, 'hlc', 1, 'd', 1, 1, 0)"
                                " RETURNING id",
                                &stmt),
                     0);
    assert_int_equal(db_bind_blob(stmt, 1, "\0", 1), 0);
    assert_int_equal(store_value_bind_any(stmt, 2, &vals[2]), 0);
    assert_int_equal(store_value_bind_any(stmt, 3, &vals[3]), 0);
    assert_int_equal(db_step(stmt), DB_ROW);
    assert_true(db_column_int64(stmt, 0) > 0);
    db_finalize(stmt);
    assert_int_equal(db_exec(fx->st->conn, "INSERT INTO _outpost_applied"
                                           " VALUES(1, 1, 1, 7, 7, 0, 1, 0)"),
                     0);
    assert_int_equal(db_prepare(fx->st->conn,
                                "INSERT INTO _outpost_refused VALUES(1, 2, 7, ?1, 0)", &stmt),
                     0);
    assert_int_equal(db_bind_blob(stmt, 1, "\0", 1), 0);
    assert_int_equal(db_step(stmt), DB_DONE);
    db_finalize(stmt);
    assert_int_equal(store_commit(fx->st), 0);

    for (int i = 0; i < 5; i++) {
        uint8_t pk[1] = {(uint8_t)i};
        proto_value back[2];
        assert_int_equal(db_prepare(fx->st->conn,
                                    "SELECT r.scope, c.scope_new FROM _outpost_rows r"
                                    " JOIN _outpost_changes c ON c.table_id = r.table_id"
                                    " AND c.pk = r.pk WHERE r.table_id = 1 AND r.pk = ?1",
                                    &stmt),
                         0);
        assert_int_equal(db_bind_blob(stmt, 1, pk, sizeof pk), 0);
        assert_int_equal(db_step(stmt), DB_ROW);
        assert_int_equal(store_value_column_any(&arena, stmt, 0, &back[0]), 0);
        assert_int_equal(store_value_column_any(&arena, stmt, 1, &back[1]), 0);
        db_finalize(stmt);
        assert_true(store_value_equal(&back[0], &vals[i]));
        assert_true(store_value_equal(&back[1], &vals[(i + 1) % 5]));
        if (vals[i].type != PROTO_NULL) {
            assert_int_equal(
                count_where(fx, "SELECT count(*) FROM _outpost_rows WHERE scope = ?1", &vals[i]),
                1);
            assert_int_equal(count_where(fx,
                                         "SELECT count(*) FROM _outpost_changes"
                                         " WHERE scope_old = ?1",
                                         &vals[i]),
                             1);
        }
    }
    assert_int_equal(count_where(fx,
                                 "SELECT count(*) FROM _outpost_conflicts"
                                 " WHERE losing_value = ?1 AND winning_value <> ?1",
                                 &vals[2]),
                     1);
    assert_int_equal(db_prepare(fx->st->conn,
                                "SELECT count(*) FROM _outpost_applied a JOIN _outpost_refused r"
                                " ON r.device_no = a.device_no WHERE a.seq = 1 AND r.seq = 2",
                                &stmt),
                     0);
    assert_int_equal(db_step(stmt), DB_ROW);
    assert_int_equal(db_column_int64(stmt, 0), 1);
    db_finalize(stmt);
    store_arena_free(&arena);
}

/* Counts the rows sql selects (no parameters). */
static int64_t count_rows(engine_fx *fx, const char *sql)
{
    db_stmt *stmt = NULL;
    int64_t n = -1;
    assert_int_equal(db_prepare(fx->st->conn, sql, &stmt), 0);
    assert_int_equal(db_step(stmt), DB_ROW);
    n = db_column_int64(stmt, 0);
    db_finalize(stmt);
    return n;
}

/* The schema installs on both engines: the synced tables made from the parsed column list
 * (PostgreSQL: names folded to lower case and quoted, so a name PostgreSQL reserves works; every
 * column BYTEA), their index, the tables and columns recorded, version 1; the primary key holds;
 * a second init is refused and changes nothing. */
static void test_schema_init(void **state)
{
    engine_fx *fx = engine_of(state);
    static const char schema[] =
        "CREATE TABLE Cases (id TEXT PRIMARY KEY NOT NULL, team_id TEXT NOT NULL, user TEXT,"
        "  age INTEGER DEFAULT 0 CHECK (age >= 0));"
        "CREATE INDEX cases_team ON cases(team_id);"
        "CREATE TABLE notes (case_id TEXT NOT NULL, n TEXT NOT NULL, team_id TEXT NOT NULL,"
        "  body TEXT, PRIMARY KEY(case_id, n));";
    static const char policy[] = "Cases scope=team_id policy=hlc\n"
                                 "notes scope=team_id policy=server-wins\n";
    static const uint8_t key[] = {'c', '1'};
    proto_value id = {.type = PROTO_TEXT, .u.b = {key, sizeof key}};
    db_stmt *stmt = NULL;
    int64_t version = -1;

    if (store_init_schema(fx->st, schema, policy) != 0)
        fail_msg("init: %s", store_errmsg(fx->st));
    assert_int_equal(store_meta_get(fx->st, "schema_version", &version), 0);
    assert_int_equal(version, 1);
    assert_int_equal(count_rows(fx, "SELECT count(*) FROM _outpost_tables"), 2);
    assert_int_equal(count_rows(fx, "SELECT count(*) FROM _outpost_columns"), 8);
    assert_int_equal(count_rows(fx, "SELECT count(*) FROM _outpost_columns WHERE pk_pos > 0"), 3);
    assert_int_equal(count_rows(fx, fx->engine == ENGINE_POSTGRESQL
                                        ? "SELECT count(*) FROM pg_indexes"
                                          " WHERE indexname = 'cases_team'"
                                        : "SELECT count(*) FROM sqlite_master"
                                          " WHERE name = 'cases_team'"),
                     1);

    /* A row written as the merge engine will write it on each engine, twice: the key holds. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(db_prepare(fx->st->conn,
                                    "INSERT INTO cases(id, team_id, \"user\") VALUES(?1, ?2, ?1)",
                                    &stmt),
                         0);
        assert_int_equal(store_value_bind_any(stmt, 1, &id), 0);
        assert_int_equal(store_value_bind_any(stmt, 2, &id), 0);
        assert_int_equal(db_step(stmt), i == 0 ? DB_DONE : STORE_EEXISTS);
        db_finalize(stmt);
    }
    assert_int_equal(db_prepare(fx->st->conn, "SELECT \"user\" FROM cases WHERE id = ?1", &stmt),
                     0);
    assert_int_equal(store_value_bind_any(stmt, 1, &id), 0);
    assert_int_equal(db_step(stmt), DB_ROW);
    store_arena arena = {0};
    proto_value back;
    assert_int_equal(store_value_column_any(&arena, stmt, 0, &back), 0);
    assert_true(store_value_equal(&back, &id));
    db_finalize(stmt);
    store_arena_free(&arena);

    /* The SCHEMA message devices get, from the tables as the store reads them back. */
    proto_buf buf = {0};
    proto_msg *msg = NULL;
    uint32_t at = 0;
    char err[160];
    assert_int_equal(store_schema_encode(fx->st, &buf, &at), 0);
    assert_int_equal(at, 1);
    assert_int_equal(proto_decode(buf.data, buf.len, NULL, &msg, err, sizeof err), PROTO_OK);
    assert_int_equal(msg->type, PROTO_MSG_SCHEMA);
    assert_int_equal(msg->u.schema.n_tables, 2);
    const proto_schema_table *cases = &msg->u.schema.tables[0], *notes = &msg->u.schema.tables[1];
    assert_string_equal(cases->name, "Cases");
    assert_string_equal(cases->scope_col, "team_id");
    assert_int_equal(cases->n_columns, 4);
    assert_string_equal(cases->columns[2], "user");
    assert_int_equal(cases->n_pk, 1);
    assert_int_equal(cases->pk[0], 0);
    assert_non_null(strstr(cases->create_sql, "CHECK (age >= 0)"));
    assert_string_equal(notes->name, "notes");
    assert_int_equal(notes->policy, PROTO_POLICY_SERVER_WINS);
    assert_int_equal(notes->n_pk, 2);
    assert_int_equal(notes->pk[1], 1);
    proto_msg_free(msg);
    proto_buf_free(&buf);
    /* Text keys known as text (the declared types, read from the admin's statement). */
    assert_int_equal(store_table_find(fx->st, "Cases")->pk_text, 1);
    assert_int_equal(store_table_find(fx->st, "notes")->pk_text, 3);

    assert_int_equal(store_init_schema(fx->st, schema, policy), STORE_EEXISTS);
    assert_non_null(strstr(store_errmsg(fx->st), "already has a schema"));
    assert_int_equal(count_rows(fx, "SELECT count(*) FROM _outpost_tables"), 2);
    assert_int_equal(count_rows(fx, "SELECT count(*) FROM _outpost_schema_versions"), 1);
}

/* A second, empty store beside the fixture's (PostgreSQL: another database on the same
 * server), for a test that installs its own schema; fx (the test's copy of the fixture) then
 * names it, so that open_node opens more handles on it. */
static store *open_fresh_store(engine_fx *fx, const char *name)
{
    char err[256] = "", where[600];
    store *st = NULL;
    int rc;
    if (fx->engine == ENGINE_POSTGRESQL) {
        snprintf(where, sizeof where, "CREATE DATABASE %s", name);
        assert_int_equal(db_exec(fx->st->conn, where), 0);
        snprintf(where, sizeof where, "%s", fx->pg.conninfo);
        int n = snprintf(fx->pg.conninfo, sizeof fx->pg.conninfo, "%s dbname=%s", where, name);
        assert_true(n > 0 && (size_t)n < sizeof fx->pg.conninfo);
        rc = store_open_postgresql(fx->pg.conninfo, true, &st, err, sizeof err);
    } else {
        snprintf(fx->path, sizeof fx->path, "%s/%s.db", fx->dir, name);
        rc = store_open(fx->path, true, &st, err, sizeof err);
    }
    if (rc != 0)
        fail_msg("open %s: %s", name, err);
    return st;
}

/* A text or blob value over a string literal. */
static proto_value vtext(proto_value_type type, const char *s)
{
    return (proto_value){.type = type, .u.b = {(const uint8_t *)s, (uint32_t)strlen(s)}};
}

enum { KIND_COLS = 9, KIND_SENT = 8 }; /* the device sends every column but the last */

/* Writes a row of kinds as each engine's store keeps it: SQLite through the table itself,
 * PostgreSQL through the row check and then the BYTEA table. Returns 0, or the refusal with
 * its message in msg. */
static int write_kind(engine_fx *fx, store_rowcheck *check, const proto_value *sent, char *msg,
                      size_t msg_size)
{
    static const char *const cols[KIND_COLS] = {"id",  "team_id", "i",   "r",   "t",
                                                "b",   "num",     "age", "risk"};
    store_arena arena = {0};
    proto_value row[KIND_COLS];
    const proto_value *vals = sent;
    uint32_t n = KIND_SENT;
    db_stmt *stmt = NULL;
    int rc = 0;

    msg[0] = 0;
    if (fx->engine == ENGINE_POSTGRESQL) {
        rc = store_rowcheck_row(check, "kinds", cols, KIND_COLS, sent, KIND_SENT, &arena, row,
                                msg, msg_size);
        vals = row;
        n = KIND_COLS;
    }
    if (rc == 0) {
        assert_int_equal(db_prepare(fx->st->conn,
                                    n == KIND_COLS
                                        ? "INSERT INTO kinds(id, team_id, i, r, t, b, num, age,"
                                          " risk) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                                        : "INSERT INTO kinds(id, team_id, i, r, t, b, num, age)"
                                          " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                                    &stmt),
                         0);
        for (uint32_t i = 0; i < n; i++)
            assert_int_equal(store_value_bind_any(stmt, (int)i + 1, &vals[i]), 0);
        rc = db_step(stmt);
        if (rc != DB_DONE)
            snprintf(msg, msg_size, "%s", db_errmsg(fx->st->conn));
        rc = rc == DB_DONE ? 0 : rc;
        db_finalize(stmt);
    }
    store_arena_free(&arena);
    return rc;
}

/* Rows keep SQLite's rules on both engines: type affinity converts what a device sent the same
 * way ('12' into INTEGER is 12, 7 into TEXT is '7', 'abc' stays text), a column the device did
 * not send takes its default, and NOT NULL and CHECK refuse a row with SQLite's own message. */
static void test_rows_keep_sqlite_rules(void **state)
{
    static const char schema[] =
        "CREATE TABLE kinds (id TEXT PRIMARY KEY NOT NULL, team_id TEXT NOT NULL, i INTEGER,"
        "  r REAL, t TEXT, b BLOB, num NUMERIC, age INTEGER CHECK (age IS NULL OR age >= 0),"
        "  risk INTEGER NOT NULL DEFAULT 0);";
    store_rowcheck *check = NULL;
    char msg[256];
    proto_value p[2][KIND_SENT] = {
        {vtext(PROTO_TEXT, "k1"), vtext(PROTO_TEXT, "north"), vtext(PROTO_TEXT, "12"),
         {.type = PROTO_INT, .u.i = 3}, {.type = PROTO_INT, .u.i = 7}, vtext(PROTO_TEXT, "x"),
         vtext(PROTO_TEXT, "3.0"), {.type = PROTO_INT, .u.i = 4}},
        {vtext(PROTO_TEXT, "k2"), vtext(PROTO_TEXT, "north"), vtext(PROTO_TEXT, "1.5"),
         vtext(PROTO_TEXT, "abc"), {.type = PROTO_REAL, .u.r = 2.5}, {.type = PROTO_INT, .u.i = 5},
         vtext(PROTO_TEXT, "x1"), {.type = PROTO_NULL}}};
    proto_value want[2][KIND_COLS] = {
        {p[0][0], p[0][1], {.type = PROTO_INT, .u.i = 12}, {.type = PROTO_REAL, .u.r = 3.0},
         vtext(PROTO_TEXT, "7"), vtext(PROTO_TEXT, "x"), {.type = PROTO_INT, .u.i = 3},
         {.type = PROTO_INT, .u.i = 4}, {.type = PROTO_INT, .u.i = 0}},
        {p[1][0], p[1][1], {.type = PROTO_REAL, .u.r = 1.5}, vtext(PROTO_TEXT, "abc"),
         vtext(PROTO_TEXT, "2.5"), {.type = PROTO_INT, .u.i = 5}, vtext(PROTO_TEXT, "x1"),
         {.type = PROTO_NULL}, {.type = PROTO_INT, .u.i = 0}}};

    engine_fx own = *engine_of(state);
    engine_fx *fx = &own;
    fx->st = open_fresh_store(fx, "kinds");
    if (store_init_schema(fx->st, schema, "kinds scope=team_id policy=hlc\n") != 0)
        fail_msg("init: %s", store_errmsg(fx->st));
    assert_int_equal(store_rowcheck_open(schema, &check, msg, sizeof msg), 0);
    for (int r = 0; r < 2; r++) {
        db_stmt *stmt = NULL;
        store_arena arena = {0};
        if (write_kind(fx, check, p[r], msg, sizeof msg) != 0)
            fail_msg("row %d: %s", r, msg);
        assert_int_equal(db_prepare(fx->st->conn,
                                    "SELECT id, team_id, i, r, t, b, num, age, risk FROM kinds"
                                    " WHERE id = ?1",
                                    &stmt),
                         0);
        assert_int_equal(store_value_bind_any(stmt, 1, &p[r][0]), 0);
        assert_int_equal(db_step(stmt), DB_ROW);
        for (int c = 0; c < KIND_COLS; c++) {
            proto_value got;
            assert_int_equal(store_value_column_any(&arena, stmt, c, &got), 0);
            if (!store_value_equal(&got, &want[r][c]))
                fail_msg("row %d column %d: type %d, want type %d", r, c, (int)got.type,
                         (int)want[r][c].type);
        }
        db_finalize(stmt);
        store_arena_free(&arena);
    }

    p[0][0] = vtext(PROTO_TEXT, "k3");
    p[0][7] = (proto_value){.type = PROTO_INT, .u.i = -1};
    assert_int_not_equal(write_kind(fx, check, p[0], msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "CHECK constraint failed: age IS NULL OR age >= 0"));
    p[0][0] = vtext(PROTO_TEXT, "k4");
    p[0][1] = (proto_value){.type = PROTO_NULL};
    p[0][7] = (proto_value){.type = PROTO_INT, .u.i = 1};
    assert_int_not_equal(write_kind(fx, check, p[0], msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "NOT NULL constraint failed: kinds.team_id"));
    assert_int_equal(count_rows(fx, "SELECT count(*) FROM kinds"), 2);
    store_rowcheck_close(check);
    store_close(fx->st);
}

/* An additive upgrade on both engines: a new column takes its default in the rows already
 * there, as SQLite gives it ('7' into an INTEGER column is 7), a nullable one NULL; a new table
 * is made; the SCHEMA message has version 2. A column whose type changed is refused, and
 * nothing changes. */
static void test_schema_upgrade(void **state)
{
    static const char v1[] = "CREATE TABLE Cases (id TEXT PRIMARY KEY NOT NULL,"
                             "  team_id TEXT NOT NULL, name TEXT);";
    static const char v2[] = "CREATE TABLE Cases (id TEXT PRIMARY KEY NOT NULL,"
                             "  team_id TEXT NOT NULL, name TEXT,"
                             "  Risk INTEGER NOT NULL DEFAULT '7', note TEXT);"
                             "CREATE TABLE visits (id TEXT PRIMARY KEY NOT NULL,"
                             "  team_id TEXT NOT NULL);";
    static const char v3_bad[] = "CREATE TABLE Cases (id TEXT PRIMARY KEY NOT NULL,"
                                 "  team_id TEXT NOT NULL, name INTEGER,"
                                 "  Risk INTEGER NOT NULL DEFAULT '7', note TEXT);"
                                 "CREATE TABLE visits (id TEXT PRIMARY KEY NOT NULL,"
                                 "  team_id TEXT NOT NULL);";
    static const char policy1[] = "Cases scope=team_id policy=hlc\n";
    static const char policy2[] = "Cases scope=team_id policy=hlc\n"
                                  "visits scope=team_id policy=hlc\n";
    engine_fx own = *engine_of(state);
    engine_fx *fx = &own;
    proto_value id = vtext(PROTO_TEXT, "c1"), team = vtext(PROTO_TEXT, "north");
    db_stmt *stmt = NULL;
    store_arena arena = {0};
    proto_value risk, note;
    int64_t version = 0;

    fx->st = open_fresh_store(fx, "upgrade");
    if (store_init_schema(fx->st, v1, policy1) != 0)
        fail_msg("init: %s", store_errmsg(fx->st));
    assert_int_equal(db_prepare(fx->st->conn, "INSERT INTO cases(id, team_id) VALUES(?1, ?2)",
                                &stmt),
                     0);
    assert_int_equal(store_value_bind_any(stmt, 1, &id), 0);
    assert_int_equal(store_value_bind_any(stmt, 2, &team), 0);
    assert_int_equal(db_step(stmt), DB_DONE);
    db_finalize(stmt);

    if (store_upgrade_schema(fx->st, v2, policy2) != 0)
        fail_msg("upgrade: %s", store_errmsg(fx->st));
    assert_int_equal(store_meta_get(fx->st, "schema_version", &version), 0);
    assert_int_equal(version, 2);
    assert_int_equal(db_prepare(fx->st->conn, "SELECT risk, note FROM cases WHERE id = ?1", &stmt),
                     0);
    assert_int_equal(store_value_bind_any(stmt, 1, &id), 0);
    assert_int_equal(db_step(stmt), DB_ROW);
    assert_int_equal(store_value_column_any(&arena, stmt, 0, &risk), 0);
    assert_int_equal(store_value_column_any(&arena, stmt, 1, &note), 0);
    db_finalize(stmt);
    assert_int_equal(risk.type, PROTO_INT);
    assert_int_equal(risk.u.i, 7);
    assert_int_equal(note.type, PROTO_NULL);
    assert_int_equal(count_rows(fx, "SELECT count(*) FROM visits"), 0);
    assert_int_equal(count_rows(fx, "SELECT count(*) FROM _outpost_columns"), 7);

    proto_buf buf = {0};
    uint32_t at = 0;
    assert_int_equal(store_schema_encode(fx->st, &buf, &at), 0);
    assert_int_equal(at, 2);
    proto_buf_free(&buf);

    assert_int_equal(store_upgrade_schema(fx->st, v3_bad, policy2), STORE_ESCHEMA);
    assert_non_null(strstr(store_errmsg(fx->st), "table Cases: column name changed its type"));
    assert_int_equal(store_meta_get(fx->st, "schema_version", &version), 0);
    assert_int_equal(version, 2);
    store_arena_free(&arena);
    store_close(fx->st);
}

typedef struct init_arg {
    engine_fx *fx;
    int rc;
    char msg[256];
} init_arg;

static const char race_schema[] = "CREATE TABLE cases (id TEXT PRIMARY KEY NOT NULL,"
                                  "  team_id TEXT NOT NULL, name TEXT);"
                                  "CREATE INDEX cases_team ON cases(team_id);";

static void *node_inits(void *p)
{
    init_arg *a = p;
    store *st = open_node(a->fx);
    a->rc = store_init_schema(st, race_schema, "cases scope=team_id policy=hlc\n");
    snprintf(a->msg, sizeof a->msg, "%s", a->rc != 0 ? store_errmsg(st) : "");
    store_close(st);
    return NULL;
}

/* Two nodes installing the same schema at once: one installs it, the other is told the store
 * already has one (it waited for the first: the writer lock), not a clash of half-made tables;
 * the tables are recorded once. */
static void test_nodes_init_at_once(void **state)
{
    engine_fx own = *engine_of(state);
    engine_fx *fx = &own;
    pthread_t threads[2];
    init_arg args[2] = {{.fx = fx}, {.fx = fx}};

    fx->st = open_fresh_store(fx, "race");
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, node_inits, &args[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    init_arg *loser = args[0].rc != 0 ? &args[0] : &args[1];
    assert_int_equal(args[0].rc + args[1].rc, STORE_EEXISTS);
    if (strstr(loser->msg, "the store already has a schema (version 1)") == NULL)
        fail_msg("the second init: %s", loser->msg);
    assert_int_equal(count_rows(fx, "SELECT count(*) FROM _outpost_tables"), 1);
    assert_int_equal(count_rows(fx, "SELECT count(*) FROM _outpost_columns"), 3);
    assert_int_equal(count_rows(fx, "SELECT count(*) FROM _outpost_schema_versions"), 1);
    store_close(fx->st);
}

#define ENGINE_TESTS                                                                           \
    cmocka_unit_test(test_people), cmocka_unit_test(test_enroll_and_authenticate),            \
        cmocka_unit_test(test_lockouts), cmocka_unit_test(test_second_node_shares_everything), \
        cmocka_unit_test(test_accounts_across_nodes),                                          \
        cmocka_unit_test(test_sessions_across_nodes),                                          \
        cmocka_unit_test(test_lists_and_disabled_worker),                                      \
        cmocka_unit_test(test_audit_chain_across_nodes),                                       \
        cmocka_unit_test(test_announcements_between_nodes),                                    \
        cmocka_unit_test(test_server_seq_from_two_nodes),                                      \
        cmocka_unit_test(test_nodes_enroll_at_once),                                          \
        cmocka_unit_test(test_merge_tables_keep_any_value),                                   \
        cmocka_unit_test(test_schema_init), cmocka_unit_test(test_rows_keep_sqlite_rules),   \
        cmocka_unit_test(test_schema_upgrade), cmocka_unit_test(test_nodes_init_at_once)

int main(void)
{
    const struct CMUnitTest tests[] = {ENGINE_TESTS};
    int failed = cmocka_run_group_tests_name("store_sqlite", tests, setup_sqlite, teardown_engine);
    failed += cmocka_run_group_tests_name("store_postgresql", tests, setup_postgresql,
                                          teardown_engine);
    return test_exit_status(failed);
}
