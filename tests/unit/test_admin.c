/*
 * outpost-admin as an operator runs it: a subprocess, its exit code, its stdout and stderr.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "common/test_skip.h"
#include "db.h"
#include "store_values.h"
#include "store_fixture.h"
#include "strf.h"
#include "unit/pg_cluster.h"

#ifndef OUTPOST_ADMIN_PATH
#error "OUTPOST_ADMIN_PATH must name the outpost-admin binary"
#endif

typedef struct run {
    int status;
    char out[16384];
    char err[16384];
} run;

typedef struct ctx {
    char dir[256];
    char store[320];
    run r;
} ctx;

static void slurp(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, size - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
}

/* Runs outpost-admin with args (a shell fragment; every path in it is ours). */
static run *admin(ctx *c, const char *args)
{
    char out_path[400], err_path[400];
    snprintf(out_path, sizeof out_path, "%s/out.txt", c->dir);
    snprintf(err_path, sizeof err_path, "%s/err.txt", c->dir);
    int status = systemf("'%s' %s >'%s' 2>'%s'", OUTPOST_ADMIN_PATH, args, out_path, err_path);
    assert_true(WIFEXITED(status));
    c->r.status = WEXITSTATUS(status);
    slurp(out_path, c->r.out, sizeof c->r.out);
    slurp(err_path, c->r.err, sizeof c->r.err);
    return &c->r;
}

static void expect(ctx *c, const char *args, int status, const char *out_part, const char *err_part)
{
    run *r = admin(c, args);
    if (r->status != status)
        fail_msg("'%s': exit %d, expected %d; stderr: %s", args, r->status, status, r->err);
    if (out_part != NULL && strstr(r->out, out_part) == NULL)
        fail_msg("'%s': stdout lacks '%s': %s", args, out_part, r->out);
    if (err_part != NULL && strstr(r->err, err_part) == NULL)
        fail_msg("'%s': stderr lacks '%s': %s", args, err_part, r->err);
}

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    snprintf(c->dir, sizeof c->dir, "%s/outpost-admin-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(c->dir));
    snprintf(c->store, sizeof c->store, "%s/central.db", c->dir);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->dir);
    assert_int_equal(system(cmd), 0);
    free(c);
    return 0;
}

/* Runs `outpost-admin --store STORE VERB --schema tests/data/SQL --policy tests/data/POLICY`. */
static void expect_schema(ctx *c, const char *verb, const char *sql, const char *policy,
                          int status, const char *out_part, const char *err_part)
{
    const char *src = getenv("OUTPOST_SOURCE_DIR");
    char *args = strf("--store '%s' %s --schema '%s/tests/data/%s' --policy '%s/tests/data/%s'",
                      c->store, verb, src, sql, src, policy);
    expect(c, args, status, out_part, err_part);
    free(args);
}

static void init_store(ctx *c)
{
    expect_schema(c, "init", "contacts.sql", "contacts.policy", 0,
                  "schema version 1 initialised", NULL);
}

static void test_usage_errors_exit_2_with_message(void **state)
{
    ctx *c = *state;
    expect(c, "", 2, NULL, "no command given");
    expect(c, "devices", 2, NULL, "--store PATH is required");
    expect(c, "--store", 2, NULL, "missing value after '--store'");
    expect(c, "--bogus", 2, NULL, "unknown option '--bogus'");
    char args[512];
    snprintf(args, sizeof args, "--store '%s' frobnicate", c->store);
    expect(c, args, 2, NULL, "unknown command 'frobnicate'");
    snprintf(args, sizeof args, "--store '%s' init --schema x.sql", c->store);
    expect(c, args, 2, NULL, "both --schema FILE.sql and --policy FILE are required");
    snprintf(args, sizeof args, "--store '%s' worker add dee", c->store);
    expect(c, args, 2, NULL, "a worker needs at least one --team");
    snprintf(args, sizeof args, "--store '%s' enroll ana --expires 0", c->store);
    expect(c, args, 2, NULL, "--expires takes a whole number of hours from 1 to 720");
    snprintf(args, sizeof args, "--store '%s' enroll ana --server 'a b'", c->store);
    expect(c, args, 2, NULL, "--server takes HOST:PORT");
    snprintf(args, sizeof args, "--store '%s' revoke", c->store);
    expect(c, args, 2, NULL, "expected: revoke DEVICE");
}

static void test_help_on_every_command(void **state)
{
    ctx *c = *state;
    expect(c, "--help", 0, "usage: outpost-admin --store PATH|postgresql:CONNINFO COMMAND", NULL);
    /* the summary names every option of init and upgrade, --watch included */
    assert_non_null(strstr(c->r.out, "  init --schema FILE.sql --policy FILE [--forms DIR] "
                                     "[--watch FILE.json] [--check]\n"));
    assert_non_null(strstr(c->r.out, "  upgrade --schema FILE.sql --policy FILE [--forms DIR] "
                                     "[--watch FILE.json] [--check]\n"));
    const char *cmds[] = {"init", "upgrade", "team", "worker", "enroll", "devices", "revoke"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char args[64], want[64];
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        snprintf(want, sizeof want, "usage: outpost-admin --store PATH %s", cmds[i]);
        expect(c, args, 0, want, NULL);
    }
}

static void test_missing_store_and_bad_files(void **state)
{
    ctx *c = *state;
    char args[1200];
    snprintf(args, sizeof args, "--store '%s' devices", c->store);
    expect(c, args, 3, NULL, "no store at");
    snprintf(args, sizeof args, "--store '%s' init --schema /nonexistent.sql --policy /x",
             c->store);
    expect(c, args, 2, NULL, "cannot read /nonexistent.sql");
    /* an integer primary key is refused with the table named */
    char sql_path[300], pol_path[300];
    snprintf(sql_path, sizeof sql_path, "%s/bad.sql", c->dir);
    snprintf(pol_path, sizeof pol_path, "%s/bad.policy", c->dir);
    FILE *f = fopen(sql_path, "w");
    fputs("CREATE TABLE cases(id INTEGER PRIMARY KEY, team_id TEXT);\n", f);
    fclose(f);
    f = fopen(pol_path, "w");
    fputs("cases scope=team_id\n", f);
    fclose(f);
    snprintf(args, sizeof args, "--store '%s' init --schema '%s' --policy '%s'", c->store, sql_path,
             pol_path);
    expect(c, args, 1, NULL, "table cases: primary key column id is an integer");
}

static void test_full_workflow(void **state)
{
    ctx *c = *state;
    init_store(c);
    char args[1024];
    snprintf(args, sizeof args, "--store '%s' team add north --name 'North district'", c->store);
    expect(c, args, 0, "team north added", NULL);
    expect(c, args, 1, NULL, "team north exists already");
    snprintf(args, sizeof args, "--store '%s' worker add ana --team north --team east", c->store);
    expect(c, args, 1, NULL, "no team east");
    snprintf(args, sizeof args, "--store '%s' worker add ana --team north", c->store);
    expect(c, args, 0, "worker ana added", NULL);
    snprintf(args, sizeof args, "--store '%s' enroll nobody", c->store);
    expect(c, args, 1, NULL, "no worker nobody");
    snprintf(args, sizeof args,
             "--store '%s' enroll ana --expires 2 --server wss://sync.example.org:8443", c->store);
    expect(c, args, 0, "enrollment code for worker ana (single use, expires", NULL);
    /* the printed code enrolls a device exactly once */
    const char *p = strstr(c->r.out, ":\n\n    ");
    assert_non_null(p);
    char code[STORE_CODE_SIZE];
    memcpy(code, p + 7, 23);
    code[23] = 0;
    assert_non_null(strstr(c->r.out, "\xe2\x96")); /* a QR code drawn with block characters */
    store *st = NULL;
    char err[256], id[40], id2[40];
    uint8_t secret[32];
    assert_int_equal(store_open(c->store, false, &st, err, sizeof err), 0);
    assert_int_equal(store_device_enroll(st, code, "phone-1", id, secret), 0);
    assert_int_equal(store_device_enroll(st, code, "phone-2", id2, secret), STORE_ECODE);
    store_close(st);

    snprintf(args, sizeof args, "--store '%s' devices", c->store);
    expect(c, args, 0, id, NULL);
    assert_non_null(strstr(c->r.out, "never"));
    assert_non_null(strstr(c->r.out, "active"));
    snprintf(args, sizeof args, "--store '%s' revoke %s --wipe", c->store, id);
    expect(c, args, 0, "revoked; it will be told to wipe", NULL);
    snprintf(args, sizeof args, "--store '%s' devices", c->store);
    expect(c, args, 0, "revoked+wipe", NULL);
    snprintf(args, sizeof args, "--store '%s' revoke 00000000-0000-4000-8000-000000000000",
             c->store);
    expect(c, args, 1, NULL, "no device 00000000-0000-4000-8000-000000000000");
}

static void test_upgrade_additive_and_refused(void **state)
{
    ctx *c = *state;
    init_store(c);
    expect_schema(c, "upgrade", "contacts.sql", "contacts_v2.policy", 1, NULL,
                  "policy line 4: table follow_ups is not in the schema file");
    expect_schema(c, "upgrade", "contacts.sql", "contacts.policy", 0,
                  "schema unchanged (version 1)", NULL);
    expect_schema(c, "upgrade", "contacts_v2.sql", "contacts_v2.policy", 0,
                  "schema version 2 applied", NULL);
}

static unsigned file_mode(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        fail_msg("%s: missing", path);
    return (unsigned)(sb.st_mode & 0777);
}

/* What outpost-admin creates is its user's alone, whatever umask the operator's shell has; a
 * store an older release left readable by everyone is tightened on the next command. */
static void test_store_is_created_owner_only(void **state)
{
    ctx *c = *state;
    mode_t old_umask = umask(022);
    init_store(c);
    assert_int_equal(file_mode(c->store), 0600);
    assert_int_equal(chmod(c->store, 0644), 0);
    char *args = strf("--store '%s' team add north", c->store);
    expect(c, args, 0, "team north added", NULL);
    free(args);
    umask(old_umask);
    assert_int_equal(file_mode(c->store), 0600);
}

/* An insider with the store file but not the key cuts off the tail and resets the count: the
 * keyed seal and a checkpoint appended before both say so. */
static void test_audit_checkpoint_and_verify_catch_a_cut_tail(void **state)
{
    ctx *c = *state;
    char args[1024], key[400], cp[400], err[256];
    store *st = NULL;
    sqlite3 *db = NULL;

    init_store(c);
    snprintf(key, sizeof key, "%s.audit-key", c->store);
    struct stat sb;
    assert_int_equal(stat(key, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(store_open(c->store, false, &st, err, sizeof err), 0);
    assert_int_equal(store_audit_key_load(st, key), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(store_audit_append(st, 1000 + (uint64_t)i, "sara", "record.view",
                                            "contacts/c-1", "10.0.0.5"),
                         0);
    store_close(st);

    snprintf(cp, sizeof cp, "%s/checkpoints.txt", c->dir);
    snprintf(args, sizeof args, "--store '%s' audit checkpoint --append '%s'", c->store, cp);
    expect(c, args, 0, "outpost-audit-checkpoint v1 rows=6 head=", NULL); /* init + 5 */
    snprintf(args, sizeof args, "--store '%s' audit verify --checkpoint '%s'", c->store, cp);
    expect(c, args, 0, "6 rows, keyed chain and seal intact, 1 checkpoint matched", NULL);

    assert_int_equal(sqlite3_open(c->store, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TRIGGER _outpost_audit_no_delete;"
                                  "DELETE FROM _outpost_audit WHERE id > 3;"
                                  "UPDATE _outpost_meta SET value = 3 WHERE key = 'audit_rows';",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    snprintf(args, sizeof args, "--store '%s' audit verify", c->store);
    expect(c, args, 1, NULL, "TAMPERED: first bad row 4: the audit seal does not match");
    /* the checkpoint taken before says it too */
    snprintf(args, sizeof args, "--store '%s' audit verify --checkpoint '%s'", c->store, cp);
    expect(c, args, 1, NULL, "finds only 3 rows: rows 4 on were removed");
    assert_non_null(strstr(c->r.err, "the audit seal does not match"));

    /* without the key there is nothing to verify against */
    snprintf(args, sizeof args, "--store '%s' --audit-key '%s/none' audit verify", c->store,
             c->dir);
    expect(c, args, 1, NULL, "not found (only init makes one; check --audit-key)");
    snprintf(args, sizeof args, "--store '%s' audit verify --checkpoint '%s'", c->store, key);
    expect(c, args, 2, NULL, "no audit checkpoint line in");
}

static int collect_audit(const store_audit_row *row, void *user_data)
{
    char *out = user_data;
    char line[512];
    snprintf(line, sizeof line, "%s|%s|%s|%s\n", row->actor, row->action, row->target,
             row->address);
    /* newest first from the store: prepend, so that the text reads oldest first */
    size_t n = strlen(out), m = strlen(line);
    assert_true(n + m < 8192);
    memmove(out + m, out, n + 1);
    memcpy(out, line, m);
    return 0;
}

/* Every administrative act leaves a row naming the operating-system user who ran it. */
static void test_admin_acts_are_audited_with_the_os_user(void **state)
{
    ctx *c = *state;
    char args[1024], want[4096], pwfile[400], key[400], err[256], audit[8192] = "";
    const struct passwd *pw = getpwuid(geteuid());
    const char *me = pw ? pw->pw_name : "?";
    store *st = NULL;
    FILE *f;

    init_store(c);
    snprintf(args, sizeof args, "--store '%s' team add north", c->store);
    expect(c, args, 0, "team north added", NULL);
    snprintf(args, sizeof args, "--store '%s' worker add ana --team north", c->store);
    expect(c, args, 0, "worker ana added", NULL);
    snprintf(args, sizeof args, "--store '%s' enroll ana --expires 2", c->store);
    expect(c, args, 0, "enrollment code for worker ana", NULL);
    snprintf(pwfile, sizeof pwfile, "%s/pw", c->dir);
    f = fopen(pwfile, "w");
    assert_non_null(f);
    fputs("correct horse battery staple\n", f);
    fclose(f);
    snprintf(args, sizeof args,
             "--store '%s' user add sara --role supervisor --team north --password-fd 3 3<'%s'",
             c->store, pwfile);
    expect(c, args, 0, "supervisor sara added", NULL);
    snprintf(args, sizeof args, "--store '%s' user unlock sara", c->store);
    expect(c, args, 0, "account sara unlocked", NULL);
    snprintf(args, sizeof args, "--store '%s' revoke 00000000-0000-4000-8000-000000000000",
             c->store);
    expect(c, args, 1, NULL, "no device");

    snprintf(key, sizeof key, "%s.audit-key", c->store);
    assert_int_equal(store_open(c->store, false, &st, err, sizeof err), 0);
    assert_int_equal(store_audit_list(st, 0, 100, collect_audit, audit), 0);
    store_close(st);
    snprintf(want, sizeof want,
             "os:%s|schema.init|version 1|local\n"
             "os:%s|team.add|north|local\n"
             "os:%s|worker.add|ana teams=north|local\n"
             "os:%s|enroll.code|ana expires_h=2|local\n"
             "os:%s|user.add|sara role=supervisor teams=north|local\n"
             "os:%s|user.unlock|sara|local\n",
             me, me, me, me, me, me);
    if (strcmp(audit, want) != 0)
        fail_msg("audit log:\n%s\nexpected:\n%s", audit, want);
    /* nothing secret in it: not the enrollment code, not the password */
    assert_null(strstr(audit, "horse"));
    snprintf(args, sizeof args, "--store '%s' audit verify", c->store);
    expect(c, args, 0, "6 rows, keyed chain and seal intact", NULL);
}

/* An administrator manages people from the command line, and every change is audited. */
static void test_people_lifecycle_from_the_cli(void **state)
{
    ctx *c = *state;
    char args[2048], pwfile[400], pwfile2[400], err[256], audit[8192] = "";
    const char *S = c->store;
    store *st = NULL;
    store_user u;
    FILE *f;

    init_store(c);
    snprintf(pwfile, sizeof pwfile, "%s/pw", c->dir);
    f = fopen(pwfile, "w");
    assert_non_null(f);
    fputs("correct horse battery staple\n", f);
    fclose(f);
    snprintf(pwfile2, sizeof pwfile2, "%s/pw2", c->dir);
    f = fopen(pwfile2, "w");
    assert_non_null(f);
    fputs("another long passphrase\n", f);
    fclose(f);
#define RUN(status, out, errpart, ...)                                                             \
    do {                                                                                           \
        char tail_[700];                                                                           \
        snprintf(tail_, sizeof tail_, __VA_ARGS__);                                                \
        snprintf(args, sizeof args, "--store '%s' %s", S, tail_);                                  \
        expect(c, args, status, out, errpart);                                                     \
    } while (0)
    RUN(0, "team north added", NULL, "team add north --name North");
    RUN(0, "team south added", NULL, "team add south");
    RUN(0, "worker ana added", NULL, "worker add ana --team north");
    RUN(0, "supervisor sara added", NULL,
        "user add sara --role supervisor --team north --password-fd 3 3<'%s'", pwfile);
    RUN(0, "north                 North", NULL, "team list");
    assert_non_null(strstr(c->r.out, "ana"));
    RUN(0, "ana                   active    0        north", NULL, "worker list");
    RUN(0, "sara                  supervisor  active    north", NULL, "user list");

    /* a device for ana */
    char code[STORE_CODE_SIZE], id[40];
    uint8_t secret[32];
    store_device dev;
    assert_int_equal(store_open(S, false, &st, err, sizeof err), 0);
    assert_int_equal(store_enroll_code_create(st, "ana", (uint64_t)time(NULL) * 1000u, 3600000, code), 0);
    assert_int_equal(store_device_enroll(st, code, "phone", id, secret), 0);
    store_close(st);
    RUN(0, id, NULL, "devices --worker ana");
    RUN(0, NULL, NULL, "devices --worker nobody");
    assert_null(strstr(c->r.out, id));

    RUN(0, "worker ana now in teams south", NULL, "worker move ana --team south");
    RUN(1, NULL, "no team east", "worker move ana --team east");
    RUN(2, NULL, "move needs at least one --team", "worker move ana");
    RUN(0, "ana                   active    1        south", NULL, "worker list");
    RUN(0, "worker ana disabled", NULL, "worker disable ana");
    RUN(0, "ana                   disabled  1        south", NULL, "worker list");
    assert_int_equal(store_open(S, false, &st, err, sizeof err), 0);
    assert_int_equal(store_device_auth(st, id, secret, &dev), STORE_EREVOKED);
    store_device_clear(&dev);
    store_close(st);
    RUN(0, "worker ana enabled", NULL, "worker enable ana");
    assert_int_equal(store_open(S, false, &st, err, sizeof err), 0);
    assert_int_equal(store_device_auth(st, id, secret, &dev), STORE_OK);
    assert_string_equal(dev.teams[0], "south");
    store_device_clear(&dev);
    store_close(st);

    RUN(0, "account sara now in teams north,south", NULL, "user teams sara --team north --team south");
    RUN(1, NULL, "a supervisor needs at least one team", "user teams sara");
    RUN(0, "account sara disabled", NULL, "user disable sara");
    assert_int_equal(store_open(S, false, &st, err, sizeof err), 0);
    assert_int_equal(store_user_login(st, "sara", "correct horse battery staple", 1000, &u),
                     STORE_EAUTH);
    store_close(st);
    RUN(0, "sara                  supervisor  disabled  north,south", NULL, "user list");
    RUN(0, "account sara enabled", NULL, "user enable sara");
    RUN(0, "account sara has a new password", NULL,
        "user reset-password sara --password-fd 3 3<'%s'", pwfile2);
    assert_int_equal(store_open(S, false, &st, err, sizeof err), 0);
    assert_int_equal(store_user_login(st, "sara", "another long passphrase", 1000, &u), STORE_OK);
    store_user_clear(&u);
    store_close(st);
    RUN(0, "account sara removed", NULL, "user remove sara");
    RUN(1, NULL, "no account sara", "user disable sara");
    RUN(0, "worker ana removed; 1 device revoked and told to wipe", NULL, "worker remove ana");
    RUN(0, "revoked+wipe", NULL, "devices --worker ana");
    RUN(1, NULL, "no worker nobody", "worker disable nobody");
#undef RUN

    assert_int_equal(store_open(S, false, &st, err, sizeof err), 0);
    assert_int_equal(store_audit_list(st, 0, 100, collect_audit, audit), 0);
    store_close(st);
    const char *want[] = {"|worker.move|ana teams=south|", "|worker.disable|ana|",
                          "|worker.enable|ana|", "|user.teams|sara teams=north,south|",
                          "|user.disable|sara|", "|user.enable|sara|",
                          "|user.password_reset|sara|", "|user.remove|sara|",
                          "|worker.remove|ana devices_revoked=1|"};
    const char *at = audit;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *p = strstr(at, want[i]);
        if (p == NULL)
            fail_msg("audit log lacks '%s' (in order) in:\n%s", want[i], audit);
        at = p + 1;
    }
    assert_null(strstr(audit, "passphrase"));
}

/* Writes one rule (JSON object text) as a watch file in the test's directory; returns its path
 * (free it). */
static char *watch_file(ctx *c, const char *rule_json)
{
    char *path = strf("%s/watch.json", c->dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fprintf(f, "{\"rules\": [%s]}\n", rule_json);
    fclose(f);
    return path;
}

/* Each rule that cannot compile is refused, naming the rule and the problem, before anything
 * is changed: init leaves no store behind. */
static void test_watch_rule_errors_name_rule_and_problem(void **state)
{
    ctx *c = *state;
    const char *src = getenv("OUTPOST_SOURCE_DIR");
#define BASE "\"id\": \"r1\", \"table\": \"missing_episodes\", \"severity\": \"high\", " \
             "\"title\": \"T\", \"alias\": \"alias\", \"due\": \"datetime(went_missing_at)\""
    static const struct {
        const char *rule;
        const char *message;
    } cases[] = {
        {"{" BASE ", \"when\": \"nope IS NULL\"}", "rule r1: when: no such column: nope"},
        {"{" BASE ", \"when\": \"1) OR (1\"}", "rule r1: when closes a parenthesis it did not open"},
        {"{" BASE ", \"when\": \"(1\"}", "rule r1: when leaves a parenthesis open"},
        {"{" BASE ", \"when\": \"1; DELETE FROM contacts\"}", "rule r1: when has a ';'"},
        {"{" BASE ", \"when\": \"1 -- x\"}", "rule r1: when has a comment"},
        {"{" BASE ", \"when\": \"EXISTS (SELECT 1 FROM referrals)\"}",
         "rule r1: when has a subquery"},
        {"{" BASE ", \"when\": \"went_missing_at < datetime('now')\"}",
         "rule r1: when uses 'now': use the parameter :now"},
        {"{" BASE ", \"when\": \"went_missing_at < datetime()\"}",
         "rule r1: when calls datetime() without a time"},
        {"{" BASE ", \"when\": \"random() > 0\"}",
         "rule r1: when uses the function random (not allowed in a rule)"},
        {"{" BASE ", \"when\": \"load_extension('x') IS NULL\"}",
         "rule r1: when uses the function load_extension"},
        {"{" BASE ", \"when\": \"returned_at < :days\"}",
         "rule r1: when uses the parameter :days, which is not :now or one of the rule's params"},
        {"{" BASE ", \"when\": \"1\", \"params\": {\"team\": 1}}",
         "rule r1: parameter name \"team\""},
        {"{\"id\": \"r1\", \"table\": \"nope\", \"severity\": \"high\", \"title\": \"T\","
         " \"due\": \"1\", \"when\": \"1\"}",
         "rule r1: no synced table nope in the schema"},
        {"{\"id\": \"r1\", \"table\": \"contacts\", \"severity\": \"urgent\", \"title\": \"T\","
         " \"due\": \"1\", \"when\": \"1\"}",
         "rule r1: severity must be high, medium or low"},
        {"{\"id\": \"r1\", \"table\": \"contacts\", \"severity\": \"low\", \"title\": \"T\","
         " \"when\": \"1\"}",
         "rule r1: due is required"},
        {"{\"id\": \"r1\", \"table\": \"contacts\", \"severity\": \"low\", \"title\": \"T\","
         " \"alias\": \"name\", \"due\": \"1\", \"when\": \"1\"}",
         "rule r1: alias: table contacts has no column name"},
        {"{\"id\": \"Bad Id\"}", "rule 1: id must be 1 to 63 lower case letters"},
        {"{" BASE ", \"when\": \"1\", \"colour\": 1}", "rule r1: unknown key \"colour\""},
        {"{" BASE ", \"when\": \"1\"}, {" BASE ", \"when\": \"1\"}", "rule r1: the id is used twice"},
        {"{" BASE ", \"when\": }", "outpost-admin: watch rules: line 1"},
        /* the clock, spelt so that no 'now' is in the text: a date function's time must be a
         * column or :now */
        {"{" BASE ", \"when\": \"went_missing_at < datetime(replace('nXw','X','o'))\"}",
         "rule r1: when calls datetime() on \"replace('nXw','X','o')\": its time must be a "
         "column name or :now"},
        {"{" BASE ", \"when\": \"went_missing_at < datetime(CAST(x'6e6f77' AS TEXT))\"}",
         "rule r1: when calls datetime() on \"CAST(x'6e6f77' AS TEXT)\""},
        {"{" BASE ", \"when\": \"strftime('%s', lower('NOW')) > 0\"}",
         "rule r1: when calls strftime() on \"lower('NOW')\""},
        {"{" BASE ", \"when\": \"julianday(:t) > 0\", \"params\": {\"t\": \"now\"}}",
         "rule r1: when calls julianday() on \":t\""},
        {"{" BASE ", \"when\": \"\\\"datetime\\\"(went_missing_at) IS NULL\"}",
         "rule r1: when calls a function by a quoted name"},
        {"{" BASE ", \"when\": \"date(a) || date(b) || date(c) || date(d) || date(e) || "
         "date(f) || date(g) || date(h) || date(i) IS NULL\"}",
         "rule r1: reads more than 8 time columns"},
        /* a configured number that would make the duty never fall due */
        {"{" BASE ", \"when\": \"1\", \"params\": {\"days\": 1e300}}",
         "rule r1: parameter days is 1e+300; it must be between 0 and 3650 days"},
        {"{" BASE ", \"when\": \"1\", \"params\": {\"hours\": -1}}",
         "rule r1: parameter hours is -1; it must be between 0 and 87600 hours"},
        {"{" BASE ", \"when\": \"count(*) OVER () > 0\"}",
         "rule r1: when uses a window function (not allowed in a rule)"},
    };
#undef BASE
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *watch = watch_file(c, cases[i].rule);
        char *args = strf("--store '%s' init --schema '%s/examples/outreach/schema.sql' --policy "
                          "'%s/examples/outreach/policy' --watch '%s'",
                          c->store, src, src, watch);
        run *r = admin(c, args);
        if (r->status != 1 || strstr(r->err, cases[i].message) == NULL)
            fail_msg("case %zu: exit %d, stderr '%s', expected exit 1 and '%s'", i, r->status,
                     r->err, cases[i].message);
        assert_int_not_equal(access(c->store, F_OK), 0); /* nothing was made */
        free(args);
        free(watch);
    }
}

/* The example's version 2 is an additive upgrade of version 1 that keeps the rows and carries
 * the watch rules; the same upgrade again changes nothing. */
static void test_watch_example_upgrades_version_1_additively(void **state)
{
    ctx *c = *state;
    const char *src = getenv("OUTPOST_SOURCE_DIR");
    expect_schema(c, "init", "outreach_v1.sql", "../../examples/outreach/policy", 0,
                  "schema version 1 initialised", NULL);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(c->store, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO missing_episodes(id, team_id, worker_id, alias,"
                                  " went_missing_at) VALUES('e1', 'north', 'ana', 'Robin',"
                                  " '2026-12-01T10:00:00+01:00')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    char *args = strf("--store '%s' upgrade --schema '%s/examples/outreach/schema.sql' --policy "
                      "'%s/examples/outreach/policy' --watch '%s/examples/outreach/watch.json'",
                      c->store, src, src, src);
    expect(c, args, 0, "schema version 2 applied\nforms: 3 from", NULL);
    assert_non_null(strstr(c->r.out, "\nwatch rules set\n"));
    expect(c, args, 0, "schema unchanged (version 2)\nforms: 3 from", NULL);
    assert_non_null(strstr(c->r.out, "\nwatch rules unchanged\n"));
    free(args);
    /* changed rules alone are a new schema version (devices receive them with it) */
    char *changed = strf("%s/watch.json", c->dir);
    assert_int_equal(systemf("sed 's/\"days\": 3/\"days\": 5/' '%s/examples/outreach/watch.json'"
                             " > '%s'", src, changed), 0);
    args = strf("--store '%s' upgrade --schema '%s/examples/outreach/schema.sql' --policy "
                "'%s/examples/outreach/policy' --watch '%s'", c->store, src, src, changed);
    expect(c, args, 0, "schema version 3 applied\n", NULL);
    assert_non_null(strstr(c->r.out, "\nwatch rules set\n"));
    free(args);
    free(changed);
    assert_int_equal(sqlite3_open(c->store, &db), SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT alias, ncmec_reported_at IS NULL,"
                                        " (SELECT count(*) FROM pragma_table_info('contacts')"
                                        "  WHERE name = 'intangible_needs')"
                                        " FROM missing_episodes",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "Robin");
    assert_int_equal(sqlite3_column_int(stmt, 1), 1);
    assert_int_equal(sqlite3_column_int(stmt, 2), 1);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

/* A copy of examples/outreach (schema, policy, forms) in the test's directory, to edit. */
static char *copy_outreach(ctx *c)
{
    char *pkg = strf("%s/outreach", c->dir);
    assert_int_equal(systemf("cp -r '%s/examples/outreach' '%s'", getenv("OUTPOST_SOURCE_DIR"),
                             pkg), 0);
    return pkg;
}

static char *package_args(ctx *c, const char *verb, const char *pkg)
{
    return strf("--store '%s' %s --schema '%s/schema.sql' --policy '%s/policy'", c->store, verb,
                pkg, pkg);
}

/* Not inlined: GCC 12 at -O3 then takes the strings found in the returned JSON for pointers
 * into this function's frame (a false -Wdangling-pointer that fails the Release build). */
__attribute__((noinline)) static char *forms_of(ctx *c)
{
    store *st = NULL;
    char err[256], *json = NULL;
    assert_int_equal(store_open(c->store, false, &st, err, sizeof err), 0);
    assert_int_equal(store_forms_json(st, &json), 0);
    store_close(st);
    return json;
}

static void test_forms_are_validated_and_kept_at_init_and_upgrade(void **state)
{
    ctx *c = *state;
    char *pkg = copy_outreach(c);
    char *init = package_args(c, "init", pkg), *upgrade = package_args(c, "upgrade", pkg);
    /* a wrong form refuses the whole package, naming file, table, column and problem */
    assert_int_equal(systemf("sed -i 's/\"value\": \"high\"/\"value\": \"severe\"/' "
                             "'%s/forms/contacts.json'", pkg), 0);
    char *want = strf("outpost-admin: %s/forms/contacts.json: contacts.risk_level: choice "
                      "'severe' is not allowed by the column's CHECK (allowed: "
                      "'none','low','medium','high')\n", pkg);
    expect(c, init, 1, NULL, want);
    free(want);
    /* and the refused init left nothing behind: no store, no audit key, no "key created" */
    assert_null(strstr(c->r.out, "audit key"));
    char *key = strf("%s.audit-key", c->store);
    struct stat sb;
    assert_int_equal(stat(c->store, &sb), -1);
    assert_int_equal(stat(key, &sb), -1);
    free(key);
    assert_int_equal(systemf("sed -i 's/\"value\": \"severe\"/\"value\": \"high\"/' "
                             "'%s/forms/contacts.json'", pkg), 0);
    /* fixed, it installs, and the store keeps the three forms in table order */
    expect(c, init, 0, "schema version 1 initialised\nforms: 3 from", NULL);
    char *json = forms_of(c);
    const char *contacts = strstr(json, "{\"table\":\"contacts\"");
    const char *missing = strstr(json, "{\"table\":\"missing_episodes\"");
    const char *referrals = strstr(json, "{\"table\":\"referrals\"");
    assert_true(json[0] == '[' && contacts == json + 1 && missing > contacts && referrals > missing);
    assert_non_null(strstr(json, "\"label\":{\"en\":\"Risk level\",\"es\":\"Nivel de riesgo\"}"));
    free(json);
    /* the same package again changes nothing */
    expect(c, upgrade, 0, "schema unchanged (version 1)", NULL);
    /* changed forms alone are a new version */
    assert_int_equal(systemf("sed -i 's/\"Risk level\"/\"Risk now\"/' '%s/forms/contacts.json'",
                             pkg), 0);
    expect(c, upgrade, 0, "schema version 2 applied", NULL);
    json = forms_of(c);
    assert_non_null(strstr(json, "\"label\":{\"en\":\"Risk now\""));
    assert_null(strstr(json, "Risk level"));
    free(json);
    /* a refused upgrade keeps the forms as they were */
    assert_int_equal(systemf("sed -i 's/\"required\": true,//' '%s/forms/referrals.json'", pkg),
                     0);
    want = strf("outpost-admin: %s/forms/referrals.json: referrals.alias: a NOT NULL column "
                "without DEFAULT is neither automatic nor a required field", pkg);
    expect(c, upgrade, 1, NULL, want);
    free(want);
    json = forms_of(c);
    assert_non_null(strstr(json, "Risk now"));
    free(json);
    /* a package without forms is refused while the store has forms, naming what would go */
    assert_int_equal(systemf("rm -r '%s/forms'", pkg), 0);
    const char *refusal = "the current schema has 3 forms (contacts, missing_episodes, "
                          "referrals) and this package has none";
    expect(c, upgrade, 1, NULL, refusal);
    assert_non_null(strstr(c->r.err, "--drop-forms"));
    char *upgrade_check = strf("%s --check", upgrade);
    expect(c, upgrade_check, 1, NULL, refusal);
    free(upgrade_check);
    json = forms_of(c);
    assert_non_null(strstr(json, "Risk now"));
    free(json);
    /* --drop-forms removes them, and says so */
    char *drop = strf("%s --drop-forms", upgrade);
    expect(c, drop, 0, "schema version 3 applied\nforms: none (3 removed)", NULL);
    free(drop);
    json = forms_of(c);
    assert_string_equal(json, "[]");
    free(json);
    free(init);
    free(upgrade);
    free(pkg);
}

static void test_forms_dir_option(void **state)
{
    ctx *c = *state;
    char *pkg = copy_outreach(c);
    assert_int_equal(systemf("mv '%s/forms' '%s/formulaires'", pkg, c->dir), 0);
    char *args = strf("--store '%s' init --schema '%s/schema.sql' --policy '%s/policy' --forms "
                      "'%s/nowhere'", c->store, pkg, pkg, c->dir);
    expect(c, args, 2, NULL, "cannot read the forms directory");
    free(args);
    args = strf("--store '%s' init --schema '%s/schema.sql' --policy '%s/policy' --forms "
                "'%s/formulaires'", c->store, pkg, pkg, c->dir);
    expect(c, args, 0, "forms: 3 from", NULL);
    free(args);
    free(pkg);
}

/* --check: the same verdict as the real command, and nothing applied. */
static void test_forms_check_applies_nothing(void **state)
{
    ctx *c = *state;
    char *pkg = copy_outreach(c);
    char *init = package_args(c, "init", pkg), *upgrade = package_args(c, "upgrade", pkg);
    char *init_check = strf("%s --check", init), *upgrade_check = strf("%s --check", upgrade);
    expect(c, init_check, 0, "package valid as a new store's schema (nothing applied)\nforms: 3",
           NULL);
    struct stat sb;
    assert_int_equal(stat(c->store, &sb), -1); /* no store file was made */
    expect(c, init, 0, "schema version 1 initialised", NULL);
    assert_int_equal(systemf("sed -i 's/\"Risk level\"/\"Overall risk\"/' "
                             "'%s/forms/contacts.json'", pkg), 0);
    expect(c, upgrade_check, 0, "package valid as an upgrade of schema version 1 (nothing "
                                "applied)", NULL);
    char *json = forms_of(c);
    assert_non_null(strstr(json, "Risk level"));
    assert_null(strstr(json, "Overall risk"));
    free(json);
    assert_int_equal(systemf("sed -i 's/\"widget\": \"integer\"/\"widget\": \"number\"/' "
                             "'%s/forms/contacts.json'", pkg), 0);
    char *want = strf("outpost-admin: %s/forms/contacts.json: contacts.age_estimate: \"widget\" "
                      "must be one of text, textarea, integer, datetime, date, select, "
                      "multiselect, link\n", pkg);
    expect(c, upgrade_check, 1, NULL, want);
    free(want);
    /* the real upgrade afterwards still sees version 1 */
    assert_int_equal(systemf("sed -i 's/\"widget\": \"number\"/\"widget\": \"integer\"/' "
                             "'%s/forms/contacts.json'", pkg), 0);
    expect(c, upgrade, 0, "schema version 2 applied", NULL);
    free(init_check);
    free(upgrade_check);
    free(init);
    free(upgrade);
    free(pkg);
}

/* Another store's audit key (SQLite): said to be the wrong key, not tampering, and the change
 * is refused before it is made. */
static void test_wrong_audit_key_refused_before_any_change(void **state)
{
    ctx *c = *state;
    init_store(c);
    char first[sizeof c->store];
    memcpy(first, c->store, sizeof first);
    snprintf(c->store, sizeof c->store, "%s/second.db", c->dir);
    init_store(c);
    const char *cmds[] = {"team add t9", "audit verify"};
    for (size_t k = 0; k < 2; k++) {
        char *args = strf("--store '%s' --audit-key '%s.audit-key' %s", c->store, first, cmds[k]);
        expect(c, args, 1, NULL, "the audit key does not match this store (wrong --audit-key?)");
        assert_null(strstr(c->r.err, "TAMPERED"));
        free(args);
    }
    char *args = strf("--store '%s' team list", c->store);
    expect(c, args, 0, NULL, NULL);
    assert_null(strstr(c->r.out, "t9"));
    free(args);
    args = strf("--store '%s' audit verify", c->store);
    expect(c, args, 0, "audit log verified: 1 rows", NULL);
    free(args);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* Runs SQL statements (no results) on database db of the cluster, as role outpost. */
static void pg_sql(const pg_cluster *pg, const char *db, const char *sql)
{
    db_conn *d = NULL;
    char err[256];
    char *conninfo = strf("%s dbname=%s", pg->conninfo, db);
    if (db_open_postgresql(conninfo, &d, err, sizeof err) != 0)
        fail_msg("%s", err);
    if (db_exec(d, sql) != 0)
        fail_msg("%s: %s", sql, db_errmsg(d));
    db_close(d);
    free(conninfo);
}

/* How many of Outpost's tables database db holds. */
static int64_t pg_outpost_tables(const pg_cluster *pg, const char *db)
{
    db_conn *d = NULL;
    db_stmt *s = NULL;
    char err[256];
    char *conninfo = strf("%s dbname=%s", pg->conninfo, db);
    if (db_open_postgresql(conninfo, &d, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(db_prepare(d, "SELECT count(*) FROM pg_tables WHERE tablename LIKE "
                                   "'\\_outpost\\_%'", &s), 0);
    assert_int_equal(db_step(s), DB_ROW);
    int64_t n = db_column_int64(s, 0);
    db_finalize(s);
    db_close(d);
    free(conninfo);
    return n;
}

static bool file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* A private PostgreSQL cluster for a test (skipped where PostgreSQL 15 is not installed) and
 * the path of its store's audit key beside the test's files. pg_cluster_stop(pg) at the end. */
static void pg_store_start(ctx *c, pg_cluster *pg, char key[400])
{
    if (!pg_cluster_available())
        TEST_SKIP("PostgreSQL 15 binaries not installed (scripts/deps.sh installs them)");
    assert_int_equal(pg_cluster_start(pg), 0);
    snprintf(key, 400, "%s/pg.audit-key", c->dir);
}

/* init with the outreach example on the store on_pg names (outpost-admin's --store and
 * --audit-key options). */
static void pg_store_init(ctx *c, const char *on_pg)
{
    const char *src = getenv("OUTPOST_SOURCE_DIR");
    char *args = strf("%s init --schema '%s/examples/outreach/schema.sql' --policy "
                      "'%s/examples/outreach/policy'", on_pg, src, src);
    expect(c, args, 0, "schema version 1 initialised", NULL);
    free(args);
}

/* The commands that run on PostgreSQL, against a private server: only init makes the store's
 * tables and the audit key; --audit-key is required, and a missing or foreign key is refused
 * before anything changes. */
static void test_admin_on_postgresql(void **state)
{
    ctx *c = *state;
    pg_cluster pg;
    char key[400];

    pg_store_start(c, &pg, key);
    char *on_pg = strf("--store 'postgresql:%s' --audit-key '%s'", pg.conninfo, key);
    /* a database without a store: refused, nothing made in it, no key */
    const char *reads[] = {"team list", "audit verify", "worker list", "team add north"};
    for (size_t k = 0; k < sizeof reads / sizeof reads[0]; k++) {
        char *args = strf("%s %s", on_pg, reads[k]);
        expect(c, args, 3, NULL, "no Outpost store in this database (create it with: "
                                 "outpost-admin --store ... init");
        free(args);
    }
    assert_int_equal(pg_outpost_tables(&pg, "outpost"), 0);
    assert_false(file_exists(key));
    const char *src = getenv("OUTPOST_SOURCE_DIR");
    char *package = strf("--schema '%s/examples/outreach/schema.sql' --policy "
                         "'%s/examples/outreach/policy' --forms '%s/examples/outreach/forms'",
                         src, src, src);
    char *args = strf("%s init %s", on_pg, package);
    expect(c, args, 0, "schema version 1 initialised\nforms: 3 from", NULL);
    assert_non_null(strstr(c->r.out, "audit key created"));
    free(args);
    args = strf("%s init %s", on_pg, package);
    expect(c, args, 1, NULL, "the store already has a schema (version 1); use upgrade");
    assert_null(strstr(c->r.out, "audit key kept"));
    free(args);
    args = strf("%s team add north", on_pg);
    expect(c, args, 0, "team north added", NULL);
    free(args);
    args = strf("%s worker add ana --team north", on_pg);
    expect(c, args, 0, "worker ana added", NULL);
    free(args);
    args = strf("%s worker add ben --team east", on_pg);
    expect(c, args, 1, NULL, "no team east");
    free(args);
    args = strf("%s team list", on_pg);
    expect(c, args, 0, "north", NULL);
    assert_non_null(strstr(c->r.out, "ana"));
    free(args);
    args = strf("%s enroll ana", on_pg);
    expect(c, args, 0, "enrollment code for worker ana", NULL);
    free(args);
    args = strf("%s upgrade %s", on_pg, package);
    expect(c, args, 0, "schema unchanged (version 1)", NULL);
    free(args);
    /* watch rules, checked through the in-memory SQLite mirror of the tables */
    args = strf("%s upgrade %s --watch '%s/examples/outreach/watch.json'", on_pg, package, src);
    expect(c, args, 0, "schema version 2 applied\nforms: 3 from", NULL);
    assert_non_null(strstr(c->r.out, "\nwatch rules set\n"));
    expect(c, args, 0, "schema unchanged (version 2)\nforms: 3 from", NULL);
    assert_non_null(strstr(c->r.out, "\nwatch rules unchanged\n"));
    free(args);
    args = strf("%s backup /tmp/x", on_pg);
    expect(c, args, 1, NULL, "backup runs only on a SQLite store so far");
    free(args);
    args = strf("%s audit verify", on_pg);
    expect(c, args, 0, "audit log verified: 6 rows", NULL);
    free(args);
    /* a typo'd key file: refused, no key made, nothing changed */
    args = strf("--store 'postgresql:%s' --audit-key '%s/typo.key' team add t9", pg.conninfo,
                c->dir);
    char *want = strf("audit key %s/typo.key not found", c->dir);
    expect(c, args, 1, NULL, want);
    free(want);
    free(args);
    args = strf("%s/typo.key", c->dir);
    assert_false(file_exists(args));
    free(args);
    /* another store's key: said so, not "tampered", and nothing changed */
    args = strf("--store '%s' init --schema '%s/examples/outreach/schema.sql' --policy "
                "'%s/examples/outreach/policy'", c->store, src, src);
    expect(c, args, 0, "initialised", NULL);
    free(args);
    const char *foreign[] = {"team add t9", "audit verify"};
    for (size_t k = 0; k < 2; k++) {
        args = strf("--store 'postgresql:%s' --audit-key '%s.audit-key' %s", pg.conninfo,
                    c->store, foreign[k]);
        expect(c, args, 1, NULL, "the audit key does not match this store (wrong --audit-key?)");
        assert_null(strstr(c->r.err, "TAMPERED"));
        free(args);
    }
    args = strf("%s team list", on_pg);
    expect(c, args, 0, "north", NULL);
    assert_null(strstr(c->r.out, "t9"));
    free(args);
    /* the prefix in any case, and a libpq URI */
    args = strf("--store 'PostgreSQL:%s' --audit-key '%s' team list", pg.conninfo, key);
    expect(c, args, 0, "north", NULL);
    free(args);
    args = strf("--store 'postgresql://outpost:secret-pw@/outpost?host=%s&port=5432' "
                "--audit-key '%s' team list", pg.dir, key);
    expect(c, args, 0, "north", NULL);
    free(args);
    /* a password is never printed */
    args = strf("--store 'postgresql://outpost:secret-pw@/nope?host=%s&port=5432' "
                "--audit-key '%s' team list", pg.dir, key);
    expect(c, args, 3, NULL, "database \"nope\" does not exist");
    assert_null(strstr(c->r.err, "secret-pw"));
    free(args);
    args = strf("--store 'postgresql:%s dbname=nope password=secret-pw' --audit-key '%s' "
                "team list", pg.conninfo, key);
    expect(c, args, 3, NULL, "does not exist");
    assert_null(strstr(c->r.err, "secret-pw"));
    free(args);
    args = strf("--store 'postgresql:%s password=secret-pw bogus' --audit-key '%s' team list",
                pg.conninfo, key);
    expect(c, args, 3, NULL, "bogus");
    assert_null(strstr(c->r.err, "secret-pw"));
    free(args);
    /* a conninfo without the prefix is not made into a SQLite file named after it */
    args = strf("--store '%s password=secret-pw' init --schema '%s/examples/outreach/schema.sql' "
                "--policy '%s/examples/outreach/policy'", pg.conninfo, src, src);
    expect(c, args, 2, NULL, "looks like a PostgreSQL connection string");
    assert_null(strstr(c->r.err, "secret-pw"));
    free(args);
    args = strf("--store '%s/none password=secret-pw' team list", c->dir);
    expect(c, args, 3, NULL, "no store at");
    assert_null(strstr(c->r.err, "secret-pw"));
    free(args);
    args = strf("--store 'postgresql:' --audit-key '%s' team list", key);
    expect(c, args, 2, NULL, "--store postgresql: needs a connection string");
    free(args);
    args = strf("--store 'postgresql:%s' team list", pg.conninfo);
    expect(c, args, 2, NULL, "--audit-key FILE is required with a PostgreSQL store");
    free(args);
    free(package);
    free(on_pg);
    pg_cluster_stop(&pg);
}

/* An init that stopped half-way (here: refused by a table already in the database) leaves no
 * key, and the other commands refuse the store until init is run again. A role with only DML
 * rights on an initialised store runs every command but init and upgrade. */
static void test_admin_on_postgresql_half_init_and_dml_role(void **state)
{
    ctx *c = *state;
    pg_cluster pg;
    char key[400];

    pg_store_start(c, &pg, key);
    const char *src = getenv("OUTPOST_SOURCE_DIR");
    char *package = strf("--schema '%s/examples/outreach/schema.sql' --policy "
                         "'%s/examples/outreach/policy'", src, src);
    char *on_pg = strf("--store 'postgresql:%s' --audit-key '%s'", pg.conninfo, key);
    char *args = NULL;
    /* a name PostgreSQL would cut short: refused by --check and by init, nothing made */
    char *long_schema = strf("%s/long.sql", c->dir);
    assert_int_equal(systemf("sed 's/^    gender /    gender_%s /' '%s/examples/outreach/schema.sql'"
                             " >'%s'", "x123456789x123456789x123456789x123456789x123456789x123456789",
                             src, long_schema), 0);
    const char *checks[] = {"--check", ""};
    for (size_t k = 0; k < 2; k++) {
        args = strf("%s init --schema '%s' --policy '%s/examples/outreach/policy' %s", on_pg,
                    long_schema, src, checks[k]);
        expect(c, args, 1, NULL, "column name gender_x123456789x12... is 67 bytes: a PostgreSQL store "
                                 "takes names of at most 63 bytes");
        free(args);
    }
    free(long_schema);
    assert_int_equal(pg_outpost_tables(&pg, "outpost"), 0);
    pg_sql(&pg, "outpost", "CREATE TABLE contacts(id TEXT PRIMARY KEY)");
    args = strf("%s init %s", on_pg, package);
    expect(c, args, 3, NULL, "already exists");
    free(args);
    assert_false(file_exists(key));
    /* init is one transaction: nothing of it is left */
    assert_int_equal(pg_outpost_tables(&pg, "outpost"), 0);
    args = strf("%s team list", on_pg);
    expect(c, args, 3, NULL, "no Outpost store in this database");
    free(args);
    pg_sql(&pg, "outpost", "DROP TABLE contacts");
    args = strf("%s init %s", on_pg, package);
    expect(c, args, 0, "schema version 1 initialised", NULL);
    free(args);
    /* every value type, encoded by the store's codec, read back through the SQL functions
     * init made, also from a synced table's row */
    pg_sql(&pg, "outpost", "CREATE TABLE probe(v BYTEA)");
    db_conn *d = NULL;
    char err[256];
    assert_int_equal(db_open_postgresql(pg.conninfo, &d, err, sizeof err), 0);
    const struct {
        proto_value v;
        const char *type, *text;
    } values[] = {
        {{.type = PROTO_INT, .u.i = -42}, "integer", "-42"},
        {{.type = PROTO_INT, .u.i = INT64_MAX}, "integer", "9223372036854775807"},
        {{.type = PROTO_REAL, .u.r = -2.5}, "real", "-2.5"},
        {{.type = PROTO_REAL, .u.r = 0.1}, "real", "0.1"},
        {{.type = PROTO_REAL, .u.r = 5e-324}, "real", "5e-324"},
        {{.type = PROTO_TEXT, .u.b = {(const uint8_t *)"n\xc3\xa9" "e", 4}}, "text", "n\xc3\xa9" "e"},
        {{.type = PROTO_BLOB, .u.b = {(const uint8_t *)"\x01\xff", 2}}, "blob", "\\x01ff"},
    };
    for (size_t k = 0; k < sizeof values / sizeof values[0]; k++) {
        db_stmt *s = NULL;
        assert_int_equal(db_exec(d, "DELETE FROM probe"), 0);
        assert_int_equal(db_prepare(d, "INSERT INTO probe VALUES(?1)", &s), 0);
        assert_int_equal(store_value_bind_any(s, 1, &values[k].v), 0);
        assert_int_equal(db_step(s), DB_DONE);
        db_finalize(s);
        assert_int_equal(db_prepare(d, "SELECT outpost_value_type(v), outpost_value_text(v)"
                                       " FROM probe", &s), 0);
        assert_int_equal(db_step(s), DB_ROW);
        assert_string_equal(db_column_text(s, 0), values[k].type);
        assert_string_equal(db_column_text(s, 1), values[k].text);
        db_finalize(s);
    }
    db_stmt *s = NULL;
    assert_int_equal(db_exec(d, "INSERT INTO contacts(id, team_id, worker_id, contacted_at,"
                                " alias) VALUES('\\x04000000026331', '\\x04000000056e6f727468',"
                                " '\\x0400000003616e61', '\\x040000000174',"
                                " '\\x0400000003416e61')"), 0);
    assert_int_equal(db_prepare(d, "SELECT outpost_value_text(alias), outpost_value_type(age_estimate)"
                                   " FROM contacts", &s), 0);
    assert_int_equal(db_step(s), DB_ROW);
    assert_string_equal(db_column_text(s, 0), "Ana");
    assert_true(db_column_is_null(s, 1));
    db_finalize(s);
    db_close(d);
    pg_sql(&pg, "outpost",
           "CREATE ROLE dml LOGIN; GRANT USAGE ON SCHEMA public TO dml;"
           "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO dml;"
           "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO dml");
    char *as_dml = strf("--store 'postgresql:%s user=dml' --audit-key '%s'", pg.conninfo, key);
    const char *cmds[][2] = {{"team add north", "team north added"},
                             {"worker add ana --team north", "worker ana added"},
                             {"team list", "north"},
                             {"enroll ana", "enrollment code for worker ana"},
                             {"audit verify", "audit log verified: 4 rows"}};
    for (size_t k = 0; k < sizeof cmds / sizeof cmds[0]; k++) {
        args = strf("%s %s", as_dml, cmds[k][0]);
        expect(c, args, 0, cmds[k][1], NULL);
        free(args);
    }
    free(as_dml);
    free(on_pg);
    free(package);
    pg_cluster_stop(&pg);
}

/* init killed half way on PostgreSQL: it waits, with the store's bookkeeping tables made, on a
 * table of the schema another session is making; SIGKILL then. Nothing of it is left, and init
 * run again makes the store whole. */
static void test_init_killed_half_way_on_postgresql_leaves_nothing(void **state)
{
    ctx *c = *state;
    pg_cluster pg;
    char key[400], err[256];

    pg_store_start(c, &pg, key);
    const char *src = getenv("OUTPOST_SOURCE_DIR");
    char *init = strf("--store 'postgresql:%s' --audit-key '%s' init --schema "
                      "'%s/examples/outreach/schema.sql' --policy '%s/examples/outreach/policy'",
                      pg.conninfo, key, src, src);
    db_conn *other = NULL, *watch = NULL;
    assert_int_equal(db_open_postgresql(pg.conninfo, &other, err, sizeof err), 0);
    assert_int_equal(db_open_postgresql(pg.conninfo, &watch, err, sizeof err), 0);
    assert_int_equal(db_exec(other, "BEGIN; CREATE TABLE contacts(id TEXT PRIMARY KEY)"), 0);
    char pid_path[400];
    snprintf(pid_path, sizeof pid_path, "%s/admin.pid", c->dir);
    assert_int_equal(systemf("'%s' %s >/dev/null 2>&1 & echo $! >'%s'", OUTPOST_ADMIN_PATH, init,
                             pid_path),
                     0);
    char pid_text[32];
    slurp(pid_path, pid_text, sizeof pid_text);
    pid_t pid = (pid_t)atol(pid_text);
    assert_true(pid > 0);
    /* waiting on the lock means its bookkeeping tables are made (inside its transaction) */
    int64_t waiting = 0;
    for (int i = 0; i < 400 && waiting == 0; i++) {
        db_stmt *s = NULL;
        assert_int_equal(db_prepare(watch, "SELECT count(*) FROM pg_stat_activity WHERE"
                                           " application_name = 'outpost-admin' AND"
                                           " wait_event_type = 'Lock'",
                                    &s),
                         0);
        assert_int_equal(db_step(s), DB_ROW);
        waiting = db_column_int64(s, 0);
        db_finalize(s);
        if (waiting == 0)
            usleep(10000);
    }
    assert_int_equal(waiting, 1);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(db_exec(other, "ROLLBACK"), 0);
    db_close(other);
    /* its server process ends once its statement is done and it finds the client gone */
    int64_t left = 1;
    for (int i = 0; i < 500 && left > 0; i++) {
        db_stmt *s = NULL;
        assert_int_equal(db_prepare(watch, "SELECT count(*) FROM pg_stat_activity WHERE"
                                           " application_name = 'outpost-admin'",
                                    &s),
                         0);
        assert_int_equal(db_step(s), DB_ROW);
        left = db_column_int64(s, 0);
        db_finalize(s);
        if (left > 0)
            usleep(10000);
    }
    assert_int_equal(left, 0);
    db_close(watch);
    assert_int_equal(pg_outpost_tables(&pg, "outpost"), 0);
    assert_false(file_exists(key));
    expect(c, init, 0, "schema version 1 initialised", NULL);
    char *args = strf("--store 'postgresql:%s' --audit-key '%s' audit verify", pg.conninfo, key);
    expect(c, args, 0, "audit log verified: 1 rows", NULL);
    free(args);
    free(init);
    pg_cluster_stop(&pg);
}

/* A PostgreSQL store restored or copied with PostgreSQL's tools is told apart from the one it
 * came from (outpostd refuses it, outpost-admin warns) until `restored` gives it a new epoch;
 * a promoted standby (a failover) is the same store and is not. */
static void test_restored_on_postgresql_tells_copies_from_failovers(void **state)
{
    ctx *c = *state;
    pg_cluster pg, standby;
    char key[400];
    static const char warning[] = "warning: this PostgreSQL database is not where the store was "
                                  "last served: ";

    memset(&standby, 0, sizeof standby);
    init_store(c);
    char *args = strf("--store '%s' restored", c->store);
    expect(c, args, 1, NULL, "a SQLite store is restored with restore FILE");
    free(args);
    pg_store_start(c, &pg, key);
    char *on_pg = strf("--store 'postgresql:%s' --audit-key '%s'", pg.conninfo, key);
    char *on_copy = strf("--store 'postgresql:%s dbname=copy1' --audit-key '%s'", pg.conninfo, key);
    pg_store_init(c, on_pg);
    args = strf("%s team add north", on_pg);
    expect(c, args, 0, "team north added", NULL);
    free(args);
    args = strf("%s team list", on_pg);
    expect(c, args, 0, "north", NULL);
    assert_null(strstr(c->r.err, "warning"));
    free(args);

    /* a copy into another database of the cluster (as pg_restore into a new one) */
    pg_sql(&pg, "postgres", "CREATE DATABASE copy1 TEMPLATE outpost");
    args = strf("%s team list", on_copy);
    expect(c, args, 0, "north", warning);
    assert_non_null(strstr(c->r.err, "it was kept in another database of this cluster"));
    free(args);
    /* refused while an outpostd is connected */
    db_conn *node = NULL;
    char err[256];
    char *node_conninfo = strf("%s dbname=copy1 application_name=outpostd", pg.conninfo);
    assert_int_equal(db_open_postgresql(node_conninfo, &node, err, sizeof err), 0);
    args = strf("%s restored", on_copy);
    expect(c, args, 3, NULL, "1 connection named outpostd is open on this database "
                             "(pg_stat_activity): stop every outpostd first");
    db_close(node);
    free(node_conninfo);
    expect(c, args, 0, "marked restored: epoch ", NULL);
    assert_null(strstr(c->r.out, "(the database is where the store was last served"));
    unsigned long long epoch = strtoull(strstr(c->r.out, "epoch ") + 6, NULL, 10);
    assert_true(epoch > 1);
    free(args);
    args = strf("%s audit list --limit 1", on_copy);
    expect(c, args, 0, "store.restore\trestored with PostgreSQL's tools: epoch ", NULL);
    assert_null(strstr(c->r.err, "warning"));
    free(args);
    /* the original is untouched and still where it was */
    args = strf("%s team list", on_pg);
    expect(c, args, 0, "north", NULL);
    assert_null(strstr(c->r.err, "warning"));
    free(args);

    /* its own dump restored into it with pg_restore --clean: its tables are made again */
    assert_int_equal(systemf("'%s/pg_dump' -Fc -f '%s/store.dump' -d '%s dbname=copy1' && "
                             "'%s/pg_restore' --clean --if-exists -d '%s dbname=copy1' "
                             "'%s/store.dump'",
                             pg.bin, c->dir, pg.conninfo, pg.bin, pg.conninfo, c->dir),
                     0);
    args = strf("%s team list", on_copy);
    expect(c, args, 0, "north", warning);
    assert_non_null(strstr(c->r.err, "its tables were made again since (as pg_restore does)"));
    free(args);
    /* --moved alone explains what it would do and changes nothing (outsider finding 3) */
    args = strf("%s restored --moved", on_copy);
    expect(c, args, 1, NULL, "outpost-admin: nothing changed. --moved keeps the epoch: devices "
                             "will neither send again what they pushed nor pull again");
    assert_non_null(strstr(c->r.err, "run restored without --moved"));
    assert_non_null(strstr(c->r.err, "restored --moved --confirm-nothing-lost"));
    free(args);
    args = strf("%s team list", on_copy);
    expect(c, args, 0, "north", "its tables were made again since (as pg_restore does)");
    free(args);
    args = strf("%s restored --confirm-nothing-lost", on_copy);
    expect(c, args, 2, NULL, "--confirm-nothing-lost goes with --moved");
    free(args);
    args = strf("%s restored --moved --confirm-nothing-lost", on_copy);
    char *kept = strf("recorded in its new place; epoch %llu kept", epoch);
    expect(c, args, 0, kept, NULL);
    free(kept);
    free(args);
    args = strf("%s team list", on_copy);
    expect(c, args, 0, "north", NULL);
    assert_null(strstr(c->r.err, "warning"));
    free(args);

    /* a failover: the promoted standby is the same store */
    assert_int_equal(pg_cluster_start_standby(&pg, &standby), 0);
    assert_int_equal(pg_cluster_promote(&standby), 0);
    args = strf("--store 'postgresql:%s' --audit-key '%s' team list", standby.conninfo, key);
    expect(c, args, 0, "north", NULL);
    assert_null(strstr(c->r.err, "warning"));
    free(args);
    pg_cluster_stop(&standby);
    free(on_copy);
    free(on_pg);
    pg_cluster_stop(&pg);
}

/* outpostd holds a shared serving lock on each store connection (store_serve); restored takes
 * it exclusively, so it is refused while any node serves, named or not, and says which. Also:
 * restored on a database with no store says to restore into it (never init), a missing
 * --audit-key is one line, and a pg_restore --clean under a serving handle is seen by its
 * probe (outsider findings 6, 7, 11, 12). */
static void test_restored_refused_while_any_node_serves(void **state)
{
    ctx *c = *state;
    pg_cluster pg;
    char key[400], err[512];

    pg_store_start(c, &pg, key);
    char *on_pg = strf("--store 'postgresql:%s' --audit-key '%s'", pg.conninfo, key);
    pg_store_init(c, on_pg);

    /* a missing --audit-key: one line, no usage text */
    char *args = strf("--store 'postgresql:%s' team list", pg.conninfo);
    expect(c, args, 2, NULL, "outpost-admin: --audit-key FILE is required with a PostgreSQL "
                             "store (the file init wrote the audit key to)");
    assert_int_equal(strchr(c->r.err, '\n') - c->r.err + 1, (long)strlen(c->r.err));
    free(args);

    /* restored on a database with no store: restore the dump into it, never init */
    pg_sql(&pg, "postgres", "CREATE DATABASE emptydb");
    args = strf("--store 'postgresql:%s dbname=emptydb' --audit-key '%s' restored", pg.conninfo,
                key);
    expect(c, args, 3, NULL, "no Outpost store in this database: restore the dump into it "
                             "first (pg_restore");
    assert_null(strstr(c->r.err, "init"));
    free(args);

    /* two nodes serve, named in their conninfo (the docs advise it), one with two lanes */
    store *a1 = NULL, *a2 = NULL, *b = NULL;
    char *conn_a = strf("%s application_name=node-a", pg.conninfo);
    char *conn_b = strf("%s application_name=node-b", pg.conninfo);
    assert_int_equal(store_open_postgresql(conn_a, false, &a1, err, sizeof err), STORE_OK);
    assert_int_equal(store_open_postgresql(conn_a, false, &a2, err, sizeof err), STORE_OK);
    assert_int_equal(store_open_postgresql(conn_b, false, &b, err, sizeof err), STORE_OK);
    assert_int_equal(store_serve(a1), STORE_OK);
    assert_int_equal(store_serve(a2), STORE_OK);
    assert_int_equal(store_serve(b), STORE_OK);
    assert_int_equal(store_ping(a1), STORE_OK);
    args = strf("%s restored", on_pg);
    expect(c, args, 3, NULL, "outpostd serves this store: 2 nodes hold its serving lock "
                             "(pg_locks): node-a at local socket (2 connections), node-b at "
                             "local socket (1 connection); stop every outpostd first");
    store_close(b);

    /* pg_restore --clean into the live database: the serving handle's probe sees it */
    assert_int_equal(systemf("'%s/pg_dump' -Fc -f '%s/store.dump' -d '%s' && "
                             "'%s/pg_restore' --clean --if-exists -d '%s' '%s/store.dump'",
                             pg.bin, c->dir, pg.conninfo, pg.bin, pg.conninfo, c->dir),
                     0);
    assert_int_equal(store_ping(a1), STORE_EREPLACED);
    assert_non_null(strstr(store_errmsg(a1), "the store's PostgreSQL database was replaced while "
                                             "outpostd served it: its tables were made again"));
    store_close(a1);
    store_close(a2);
    expect(c, args, 0, "marked restored: epoch ", NULL);
    assert_non_null(strstr(c->r.out, "devices enrolled after it are unknown here and must be "
                                     "enrolled anew"));
    free(args);
    /* marked again where nothing moved (outsider finding 10): the audit row says so */
    args = strf("%s restored", on_pg);
    expect(c, args, 0, "(the database is where the store was last served", NULL);
    free(args);
    args = strf("%s audit list --limit 1", on_pg);
    expect(c, args, 0, ", in the database where it was last served", NULL);
    free(args);
    free(conn_a);
    free(conn_b);
    free(on_pg);
    pg_cluster_stop(&pg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T_(test_usage_errors_exit_2_with_message), T_(test_help_on_every_command),
        T_(test_missing_store_and_bad_files),      T_(test_full_workflow),
        T_(test_upgrade_additive_and_refused),     T_(test_store_is_created_owner_only),
        T_(test_audit_checkpoint_and_verify_catch_a_cut_tail),
        T_(test_admin_acts_are_audited_with_the_os_user),
        T_(test_people_lifecycle_from_the_cli),
        T_(test_watch_rule_errors_name_rule_and_problem),
        T_(test_watch_example_upgrades_version_1_additively),
        T_(test_forms_are_validated_and_kept_at_init_and_upgrade),
        T_(test_forms_dir_option),
        T_(test_forms_check_applies_nothing),
        T_(test_wrong_audit_key_refused_before_any_change),
        T_(test_admin_on_postgresql),
        T_(test_admin_on_postgresql_half_init_and_dml_role),
        T_(test_init_killed_half_way_on_postgresql_leaves_nothing),
        T_(test_restored_on_postgresql_tells_copies_from_failovers),
        T_(test_restored_refused_while_any_node_serves),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
