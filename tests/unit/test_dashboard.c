/*
 * The store's dashboard functions: accounts (Argon2id, lockout), the hash-chained audit log,
 * the team-limited queries, and keeping or reversing a conflict decision.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store_fixture.h"
#include "store_watch.h"

static const char good_pw[] = "correct horse battery";
static const char north[][64] = {"north"};
static const char south[][64] = {"south"};

typedef struct world {
    fixture fx;
    store_device ana, ana2, ben;
} world;

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    fx_open(&w->fx);
    fx_device(&w->fx, "ana", &w->ana);
    fx_device(&w->fx, "ana", &w->ana2);
    fx_device(&w->fx, "ben", &w->ben);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    store_device_clear(&w->ana);
    store_device_clear(&w->ana2);
    store_device_clear(&w->ben);
    fx_close(&w->fx);
    free(w);
    return 0;
}

static void push_contact(world *w, store_device *dev, uint64_t seq, const char *id,
                         const char *team, const char *name, const char *location,
                         const char *notes)
{
    tpush *tp = tp_new(seq, HLC(NOW_MS - 1000));
    proto_change *ch = tp_change(tp, "contacts", C_NCOLS, PROTO_OP_INSERT);
    tp_col(ch, C_ID, U(), T(id));
    tp_col(ch, C_TEAM, U(), T(team));
    tp_col(ch, C_NAME, U(), T(name));
    tp_col(ch, C_AGE, U(), N());
    tp_col(ch, C_LOCATION, U(), location ? T(location) : N());
    tp_col(ch, C_NOTES, U(), notes ? T(notes) : N());
    tp_col(ch, C_RISK, U(), I(0));
    tp_col(ch, C_UPDATED, U(), N());
    store_push_info info;
    proto_msg *m = fx_push(&w->fx, dev, tp, NOW_MS, &info);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    free(info.teams_touched);
    proto_msg_free(m);
    tp_free(tp);
}

static proto_msg *push_name(world *w, store_device *dev, uint64_t seq, uint64_t hlc,
                            const char *id, const char *old_name, const char *new_name)
{
    tpush *tp = tp_new(seq, hlc);
    tp_update_contact(tp, id, C_NAME, T(old_name), T(new_name));
    store_push_info info;
    proto_msg *m = fx_push(&w->fx, dev, tp, NOW_MS, &info);
    free(info.teams_touched);
    tp_free(tp);
    return m;
}

/* ---- Accounts ------------------------------------------------------------------------------ */

static void test_user_login_gives_role_and_teams(void **state)
{
    world *w = *state;
    const char *teams[] = {"north"};
    store_user u;

    assert_int_equal(store_user_add(w->fx.st, "sara", STORE_ROLE_SUPERVISOR, teams, 1, good_pw),
                     STORE_OK);
    assert_int_equal(store_user_login(w->fx.st, "sara", good_pw, NOW_MS, &u), STORE_OK);
    assert_string_equal(u.name, "sara");
    assert_int_equal(u.role, STORE_ROLE_SUPERVISOR);
    assert_int_equal(u.n_teams, 1);
    assert_string_equal(u.teams[0], "north");
    store_user_clear(&u);

    /* an admin sees every team */
    assert_int_equal(store_user_add(w->fx.st, "root", STORE_ROLE_ADMIN, NULL, 0, good_pw),
                     STORE_OK);
    assert_int_equal(store_user_login(w->fx.st, "root", good_pw, NOW_MS, &u), STORE_OK);
    assert_int_equal(u.role, STORE_ROLE_ADMIN);
    assert_int_equal(u.n_teams, 2);
    assert_string_equal(u.teams[0], "north");
    assert_string_equal(u.teams[1], "south");
    store_user_clear(&u);

    /* only an Argon2id hash is kept */
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_users WHERE pw_hash LIKE "
                                    "'$argon2id$v=19$m=19456,t=2,p=1$%'"),
                     2);
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_users WHERE instr(pw_hash, "
                                    "'horse') > 0"),
                     0);
}

static void test_user_add_refuses_bad_input(void **state)
{
    world *w = *state;
    const char *teams[] = {"north"}, *missing[] = {"west"};

    assert_int_equal(store_user_add(w->fx.st, "sara", STORE_ROLE_SUPERVISOR, teams, 1, "short"),
                     STORE_EINVAL);
    assert_int_equal(store_user_add(w->fx.st, "sara", STORE_ROLE_SUPERVISOR, NULL, 0, good_pw),
                     STORE_EINVAL);
    assert_int_equal(store_user_add(w->fx.st, "sara", STORE_ROLE_SUPERVISOR, missing, 1, good_pw),
                     STORE_ENOTFOUND);
    assert_non_null(strstr(store_errmsg(w->fx.st), "west"));
    assert_int_equal(store_user_add(w->fx.st, "bad name", STORE_ROLE_ADMIN, NULL, 0, good_pw),
                     STORE_EINVAL);
    assert_int_equal(store_user_add(w->fx.st, "sara", STORE_ROLE_SUPERVISOR, teams, 1, good_pw),
                     STORE_OK);
    assert_int_equal(store_user_add(w->fx.st, "sara", STORE_ROLE_SUPERVISOR, teams, 1, good_pw),
                     STORE_EEXISTS);
}

static void test_user_locked_after_five_failures(void **state)
{
    world *w = *state;
    const char *teams[] = {"north"};
    store_user u;

    assert_int_equal(store_user_add(w->fx.st, "sara", STORE_ROLE_SUPERVISOR, teams, 1, good_pw),
                     STORE_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(store_user_login(w->fx.st, "sara", "wrong password!", NOW_MS, &u),
                         STORE_EAUTH);
    assert_int_equal(store_user_login(w->fx.st, "sara", "wrong password!", NOW_MS, &u),
                     STORE_ELOCKED);
    /* the right password does not open a locked account ... */
    assert_int_equal(store_user_login(w->fx.st, "sara", good_pw, NOW_MS + 1000, &u),
                     STORE_ELOCKED);
    assert_int_equal(u.n_teams, 0);
    /* ... until the lock runs out */
    assert_int_equal(store_user_login(w->fx.st, "sara", good_pw, NOW_MS + STORE_LOGIN_LOCK_MS + 1,
                                      &u),
                     STORE_OK);
    store_user_clear(&u);
    /* a success resets the count; an admin can also lift a lock */
    for (int i = 0; i < 5; i++)
        (void)store_user_login(w->fx.st, "sara", "wrong password!", NOW_MS + STORE_LOGIN_LOCK_MS + 2,
                               &u);
    assert_int_equal(store_user_login(w->fx.st, "sara", good_pw, NOW_MS + STORE_LOGIN_LOCK_MS + 3,
                                      &u),
                     STORE_ELOCKED);
    assert_int_equal(store_user_unlock(w->fx.st, "sara"), STORE_OK);
    assert_int_equal(store_user_login(w->fx.st, "sara", good_pw, NOW_MS + STORE_LOGIN_LOCK_MS + 4,
                                      &u),
                     STORE_OK);
    store_user_clear(&u);
    /* an unknown name is the same answer as a wrong password */
    assert_int_equal(store_user_login(w->fx.st, "nobody", good_pw, NOW_MS, &u), STORE_EAUTH);
}

/* ---- Audit log ----------------------------------------------------------------------------- */

static int count_row(const store_audit_row *row, void *user_data)
{
    char *seen = user_data;
    size_t n = strlen(seen);
    snprintf(seen + n, 512 - n, "%lld:%s:%s:%s:%s;", (long long)row->id, row->actor, row->action,
             row->target, row->address);
    return 0;
}

static void append_three(world *w)
{
    assert_int_equal(store_audit_append(w->fx.st, NOW_MS, "sara", "login.ok", "", "10.0.0.5"),
                     STORE_OK);
    assert_int_equal(store_audit_append(w->fx.st, NOW_MS + 1, "sara", "record.view",
                                        "contacts/c-1", "10.0.0.5"),
                     STORE_OK);
    assert_int_equal(store_audit_append(w->fx.st, NOW_MS + 2, "sara", "export",
                                        "view=records team=north text=0 chars", "10.0.0.5"),
                     STORE_OK);
}

static void test_audit_lists_newest_first_and_verifies(void **state)
{
    world *w = *state;
    char seen[512] = "";
    uint64_t n = 0;
    int64_t bad = -1;

    append_three(w);
    assert_int_equal(store_audit_list(w->fx.st, 0, 0, count_row, seen), STORE_OK);
    assert_string_equal(seen, "3:sara:export:view=records team=north text=0 chars:10.0.0.5;"
                              "2:sara:record.view:contacts/c-1:10.0.0.5;"
                              "1:sara:login.ok::10.0.0.5;");
    assert_int_equal(store_audit_verify(w->fx.st, &n, &bad), STORE_OK);
    assert_int_equal(n, 3);
    assert_int_equal(bad, 0);
}

static void test_audit_refuses_update_and_delete(void **state)
{
    world *w = *state;
    sqlite3 *db = NULL;

    append_three(w);
    assert_int_equal(sqlite3_open(w->fx.path, &db), SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(db, "UPDATE _outpost_audit SET actor = 'x' WHERE id = 2",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(db, "DELETE FROM _outpost_audit", NULL, NULL, NULL),
                         SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(fx_int(&w->fx, "SELECT count(*) FROM _outpost_audit"), 3);
}

/* Tampering around the triggers, as someone with the file and the sqlite3 shell could. */
static void tamper(world *w, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(w->fx.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TRIGGER _outpost_audit_no_update;"
                                  "DROP TRIGGER _outpost_audit_no_delete;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_audit_verify_names_changed_row(void **state)
{
    world *w = *state;
    uint64_t n = 0;
    int64_t bad = 0;

    append_three(w);
    tamper(w, "UPDATE _outpost_audit SET target = 'contacts/other' WHERE id = 2");
    assert_int_equal(store_audit_verify(w->fx.st, &n, &bad), STORE_ETAMPERED);
    assert_int_equal(bad, 2);
    assert_non_null(strstr(store_errmsg(w->fx.st), "row 2"));
}

static void test_audit_verify_names_removed_rows(void **state)
{
    world *w = *state;
    uint64_t n = 0;
    int64_t bad = 0;

    append_three(w);
    tamper(w, "DELETE FROM _outpost_audit WHERE id = 2");
    assert_int_equal(store_audit_verify(w->fx.st, &n, &bad), STORE_ETAMPERED);
    assert_int_equal(bad, 2);
}

static void test_audit_verify_names_removed_tail(void **state)
{
    world *w = *state;
    uint64_t n = 0;
    int64_t bad = 0;

    append_three(w);
    tamper(w, "DELETE FROM _outpost_audit WHERE id = 3");
    assert_int_equal(store_audit_verify(w->fx.st, &n, &bad), STORE_ETAMPERED);
    assert_int_equal(bad, 3);
}

/* ---- Queries ------------------------------------------------------------------------------- */

typedef struct collected {
    char text[2048];
    int n;
} collected;

static int collect_record(const store_dash_record *rec, void *user_data)
{
    collected *c = user_data;
    size_t len = strlen(c->text);
    /* id, team, name */
    snprintf(c->text + len, sizeof c->text - len, "%s/%s/%s;", rec->values[0], rec->values[1],
             rec->values[2]);
    assert_string_equal(rec->cols[2], "name");
    c->n++;
    return 0;
}

static void seed_two_teams(world *w)
{
    push_contact(w, &w->ana, 1, "c-1", "north", "Amina", "2026-11-01T09:00", "ana");
    push_contact(w, &w->ana, 2, "c-2", "north", "Bea", "2026-11-02T10:00", "ana");
    push_contact(w, &w->ana2, 1, "c-3", "north", "Cora", "2026-11-02T15:00", "ana2");
    push_contact(w, &w->ben, 1, "c-9", "south", "Zed", "2026-11-02T11:00", "ben");
}

static void test_records_limited_to_teams(void **state)
{
    world *w = *state;
    store_dash_query q = {.table = "contacts", .date_col = "location"};
    collected c = {0};

    seed_two_teams(w);
    assert_int_equal(store_dash_records(w->fx.st, north, 1, &q, collect_record, &c), STORE_OK);
    assert_string_equal(c.text, "c-3/north/Cora;c-2/north/Bea;c-1/north/Amina;");

    /* asking for another team's rows by filter shows nothing */
    memset(&c, 0, sizeof c);
    q.team = "south";
    assert_int_equal(store_dash_records(w->fx.st, north, 1, &q, collect_record, &c), STORE_OK);
    assert_int_equal(c.n, 0);
    /* nor does asking for one of its records by id */
    memset(&c, 0, sizeof c);
    q.team = NULL;
    q.id = "c-9";
    assert_int_equal(store_dash_records(w->fx.st, north, 1, &q, collect_record, &c), STORE_OK);
    assert_int_equal(c.n, 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(store_dash_records(w->fx.st, south, 1, &q, collect_record, &c), STORE_OK);
    assert_string_equal(c.text, "c-9/south/Zed;");
    /* no teams, no rows */
    memset(&c, 0, sizeof c);
    q.id = NULL;
    assert_int_equal(store_dash_records(w->fx.st, north, 0, &q, collect_record, &c), STORE_OK);
    assert_int_equal(c.n, 0);
}

static void test_records_filters(void **state)
{
    world *w = *state;
    store_dash_query q = {.table = "contacts", .worker_col = "notes", .date_col = "location"};
    collected c = {0};

    seed_two_teams(w);
    q.worker = "ana";
    assert_int_equal(store_dash_records(w->fx.st, north, 1, &q, collect_record, &c), STORE_OK);
    assert_string_equal(c.text, "c-2/north/Bea;c-1/north/Amina;");
    /* a whole day by its date */
    memset(&c, 0, sizeof c);
    q.worker = NULL;
    q.date_from = "2026-11-02";
    q.date_to = "2026-11-02";
    assert_int_equal(store_dash_records(w->fx.st, north, 1, &q, collect_record, &c), STORE_OK);
    assert_string_equal(c.text, "c-3/north/Cora;c-2/north/Bea;");
    /* text search, any column, any case */
    memset(&c, 0, sizeof c);
    q.date_from = q.date_to = NULL;
    q.text = "amI";
    assert_int_equal(store_dash_records(w->fx.st, north, 1, &q, collect_record, &c), STORE_OK);
    assert_string_equal(c.text, "c-1/north/Amina;");
    /* a column that does not exist is refused, not ignored */
    q.worker_col = "nope";
    assert_int_equal(store_dash_records(w->fx.st, north, 1, &q, collect_record, &c),
                     STORE_EINVAL);
    q.worker_col = NULL;
    q.table = "nope";
    assert_int_equal(store_dash_records(w->fx.st, north, 1, &q, collect_record, &c),
                     STORE_ENOTFOUND);
}

static int collect_day(const char *day, const char *worker, uint64_t count, void *user_data)
{
    collected *c = user_data;
    size_t len = strlen(c->text);
    snprintf(c->text + len, sizeof c->text - len, "%s %s %llu;", day, worker,
             (unsigned long long)count);
    return 0;
}

/* Filters on a column holding numbers: a number matches the text SQLite gives it, on both
 * engines (PostgreSQL filters the encoded bytes in SQL, letting numbers through to be decided on
 * their text); a date range on a text column lets through what both ends allow. */
static void test_records_filters_on_numbers_and_date_ends(void **state)
{
    world *w = *state;
    store_dash_query q = {.table = "contacts", .worker_col = "risk_level",
                          .date_col = "location", .match_col = "risk_level"};
    collected c = {0};

    seed_two_teams(w);
    q.worker = "0";
    q.match_value = "0";
    assert_int_equal(store_dash_records(w->fx.st, north, 1, &q, collect_record, &c), STORE_OK);
    assert_string_equal(c.text, "c-3/north/Cora;c-2/north/Bea;c-1/north/Amina;");
    memset(&c, 0, sizeof c);
    q.worker = "1";
    assert_int_equal(store_dash_records(w->fx.st, north, 1, &q, collect_record, &c), STORE_OK);
    assert_int_equal(c.n, 0);
    memset(&c, 0, sizeof c);
    q.worker = NULL;
    q.match_col = NULL;
    q.match_value = NULL;
    q.date_from = "2026-11-01T10";
    q.date_to = "2026-11-02T14";
    q.team = "north";
    assert_int_equal(store_dash_records(w->fx.st, north, 1, &q, collect_record, &c), STORE_OK);
    assert_string_equal(c.text, "c-2/north/Bea;");
    memset(&c, 0, sizeof c);
    assert_int_equal(store_dash_per_day(w->fx.st, north, 1, "contacts", "risk_level", "location",
                                        "2026-11-02", collect_day, &c),
                     STORE_OK);
    assert_string_equal(c.text, "2026-11-02 0 2;");
}

static void test_per_day_per_worker(void **state)
{
    world *w = *state;
    collected c = {0};

    seed_two_teams(w);
    assert_int_equal(store_dash_per_day(w->fx.st, north, 1, "contacts", "notes", "location",
                                        NULL, collect_day, &c),
                     STORE_OK);
    assert_string_equal(c.text, "2026-11-01 ana 1;2026-11-02 ana 1;2026-11-02 ana2 1;");
    memset(&c, 0, sizeof c);
    assert_int_equal(store_dash_per_day(w->fx.st, north, 1, "contacts", "notes", "location",
                                        "2026-11-02", collect_day, &c),
                     STORE_OK);
    assert_string_equal(c.text, "2026-11-02 ana 1;2026-11-02 ana2 1;");
}

static int collect_device(const store_dash_device *d, void *user_data)
{
    collected *c = user_data;
    size_t len = strlen(c->text);
    snprintf(c->text + len, sizeof c->text - len, "%s:%s;", d->worker_id, d->teams);
    c->n++;
    return 0;
}

static void test_devices_limited_to_teams(void **state)
{
    world *w = *state;
    collected c = {0};

    assert_int_equal(store_dash_devices(w->fx.st, south, 1, collect_device, &c), STORE_OK);
    assert_string_equal(c.text, "ben:south;");
    memset(&c, 0, sizeof c);
    assert_int_equal(store_dash_devices(w->fx.st, north, 1, collect_device, &c), STORE_OK);
    assert_int_equal(c.n, 2);
    assert_non_null(strstr(c.text, "ana:north;"));
}

typedef struct watch_seen {
    int n;
    char text[256];
} watch_seen;

static int collect_item(const store_watch_item *item, void *user_data)
{
    watch_seen *ws = user_data;
    size_t len = strlen(ws->text);
    snprintf(ws->text + len, sizeof ws->text - len, "%s/%s/%s/%s;", item->rule_id, item->team,
             item->record_id, item->due);
    ws->n++;
    return 0;
}

/* n counts items due (tens) and still open (units). */
static int count_rule(const char *team, const char *rule_id, const char *week, uint64_t n_due,
                      uint64_t n_open, void *user_data)
{
    (void)team, (void)rule_id, (void)week;
    ((watch_seen *)user_data)->n += (int)(n_due * 10 + n_open);
    return 0;
}

/* Both engines (PostgreSQL through its in-memory SQLite mirror of the team's rows): rules kept,
 * items open only for the rows they match, within the caller's teams. */
static void test_watch_rules_evaluated_within_teams(void **state)
{
    world *w = *state;
    static const char rules[] =
        "{\"rules\": [{\"id\": \"no_notes\", \"table\": \"contacts\", \"severity\": \"low\","
        " \"title\": {\"en\": \"No notes\"}, \"due\": \"datetime(location)\","
        " \"when\": \"notes IS NULL\"}]}";
    watch_seen ws = {0};

    assert_int_equal(store_watch_set(w->fx.st, rules), STORE_OK);
    push_contact(w, &w->ana, 1, "c-1", "north", "Amina", "2025-11-01 10:00:00", NULL);
    push_contact(w, &w->ana, 2, "c-2", "north", "Bea", "2025-11-01 11:00:00", "seen");
    push_contact(w, &w->ben, 1, "c-3", "south", "Cora", "2025-11-01 12:00:00", NULL);
    assert_int_equal(store_watch_items(w->fx.st, north, 1, NOW_MS, collect_item, &ws), STORE_OK);
    assert_string_equal(ws.text, "no_notes/north/c-1/2025-11-01 10:00:00;");
    memset(&ws, 0, sizeof ws);
    assert_int_equal(store_watch_items(w->fx.st, south, 1, NOW_MS, collect_item, &ws), STORE_OK);
    assert_string_equal(ws.text, "no_notes/south/c-3/2025-11-01 12:00:00;");
    memset(&ws, 0, sizeof ws);
    assert_int_equal(store_watch_counts(w->fx.st, north, 1, NOW_MS, 0, count_rule, &ws),
                     STORE_OK);
    assert_int_equal(ws.n, 21); /* c-1 and c-2 fell due, c-1 is open */
    /* a rule reading a column that does not exist is refused, the kept rules stay */
    assert_int_equal(store_watch_set(w->fx.st,
                                     "{\"rules\": [{\"id\": \"x\", \"table\": \"contacts\","
                                     " \"severity\": \"low\", \"title\": {\"en\": \"x\"},"
                                     " \"due\": \"datetime(nope)\", \"when\": \"1\"}]}"),
                     STORE_ESCHEMA);
    char *kept = NULL;
    assert_int_equal(store_watch_json(w->fx.st, &kept), STORE_OK);
    assert_string_equal(kept, rules);
    free(kept);
}

/* ---- Conflicts ----------------------------------------------------------------------------- */

typedef struct conflict_seen {
    int n;
    int64_t id;
    char losing[64], winning[64], decision[16], column[64], row[128], team[64];
    bool reversible;
} conflict_seen;

static int collect_conflict(const store_dash_conflict *k, void *user_data)
{
    conflict_seen *s = user_data;
    s->n++;
    s->id = k->id;
    snprintf(s->losing, sizeof s->losing, "%s", k->losing ? k->losing : "(null)");
    snprintf(s->winning, sizeof s->winning, "%s", k->winning ? k->winning : "(null)");
    snprintf(s->decision, sizeof s->decision, "%s", k->decision);
    snprintf(s->column, sizeof s->column, "%s", k->column);
    snprintf(s->row, sizeof s->row, "%s", k->row_key);
    snprintf(s->team, sizeof s->team, "%s", k->scope);
    s->reversible = k->reversible;
    return 0;
}

/* ana2 writes "Later" (newer HLC); ana's older "Earlier" arrives second and loses. */
static void make_conflict(world *w)
{
    push_contact(w, &w->ana, 1, "c-1", "north", "Amina", NULL, NULL);
    proto_msg *a = push_name(w, &w->ana2, 1, HLC(NOW_MS - 10), "c-1", "Amina", "Later");
    proto_msg *b = push_name(w, &w->ana, 2, HLC(NOW_MS - 20), "c-1", "Amina", "Earlier");
    assert_int_equal(b->u.ack.n_conflicts, 1);
    proto_msg_free(a);
    proto_msg_free(b);
}

static void test_conflict_queue_shows_both_values(void **state)
{
    world *w = *state;
    conflict_seen s = {0};

    make_conflict(w);
    assert_int_equal(store_dash_conflicts(w->fx.st, north, 1, false, 0, collect_conflict, &s),
                     STORE_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.winning, "Later");
    assert_string_equal(s.losing, "Earlier");
    assert_string_equal(s.column, "name");
    assert_string_equal(s.row, "c-1");
    assert_string_equal(s.team, "north");
    assert_true(s.reversible);
    /* another team's supervisor sees nothing and cannot decide it */
    memset(&s, 0, sizeof s);
    assert_int_equal(store_dash_conflicts(w->fx.st, south, 1, true, 0, collect_conflict, &s),
                     STORE_OK);
    assert_int_equal(s.n, 0);
    assert_int_equal(store_dash_decide(w->fx.st, south, 1, 1, true, "sam", NOW_MS, NULL),
                     STORE_ENOTFOUND);
    char *name = fx_contact(&w->fx, "c-1", "name");
    assert_string_equal(name, "Later");
    free(name);
}

static void test_conflict_keep_changes_nothing(void **state)
{
    world *w = *state;
    conflict_seen s = {0};

    make_conflict(w);
    assert_int_equal(store_dash_conflicts(w->fx.st, north, 1, false, 0, collect_conflict, &s),
                     STORE_OK);
    int64_t seq_before = fx_int(&w->fx, "SELECT value FROM _outpost_meta WHERE key = 'server_seq'");
    assert_int_equal(store_dash_decide(w->fx.st, north, 1, s.id, false, "sara", NOW_MS, NULL),
                     STORE_OK);
    assert_int_equal(fx_int(&w->fx, "SELECT value FROM _outpost_meta WHERE key = 'server_seq'"),
                     seq_before);
    /* decided: gone from the queue, shown with all */
    memset(&s, 0, sizeof s);
    assert_int_equal(store_dash_conflicts(w->fx.st, north, 1, false, 0, collect_conflict, &s),
                     STORE_OK);
    assert_int_equal(s.n, 0);
    assert_int_equal(store_dash_conflicts(w->fx.st, north, 1, true, 0, collect_conflict, &s),
                     STORE_OK);
    assert_string_equal(s.decision, "kept");
    assert_int_equal(store_dash_decide(w->fx.st, north, 1, s.id, true, "sara", NOW_MS, NULL),
                     STORE_EEXISTS);
}

/* Issue 12: a supervisor of north reversing a conflict on the scope column whose losing value
 * is south would move a row into a team they do not supervise. It is refused. */
static void test_conflict_reverse_never_moves_a_row_out_of_the_supervisors_teams(void **state)
{
    static const char *const three[] = {"north", "south", "east"};
    world *w = *state;
    store_device d1, d2;
    conflict_seen s = {0};

    assert_int_equal(store_team_add(w->fx.st, "east", NULL), STORE_OK);
    assert_int_equal(store_worker_add(w->fx.st, "dee", three, 3), STORE_OK);
    fx_device(&w->fx, "dee", &d1);
    fx_device(&w->fx, "dee", &d2);
    push_contact(w, &d1, 1, "c-9", "east", "Nia", NULL, NULL);
    tpush *tp = tp_new(1, HLC(NOW_MS - 10));
    tp_update_contact(tp, "c-9", C_TEAM, T("east"), T("north"));
    proto_msg *m = fx_push(&w->fx, &d2, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    proto_msg_free(m);
    tp_free(tp);
    tp = tp_new(2, HLC(NOW_MS - 20));
    tp_update_contact(tp, "c-9", C_TEAM, T("east"), T("south"));
    m = fx_push(&w->fx, &d1, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    assert_int_equal(m->u.ack.n_conflicts, 1);
    proto_msg_free(m);
    tp_free(tp);

    assert_int_equal(store_dash_conflicts(w->fx.st, north, 1, false, 0, collect_conflict, &s),
                     STORE_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.losing, "south");
    assert_false(s.reversible); /* the listing does not offer what Reverse refuses */
    assert_int_equal(store_dash_decide(w->fx.st, north, 1, s.id, true, "sara", NOW_MS, NULL),
                     STORE_EINVAL);
    assert_non_null(strstr(store_errmsg(w->fx.st), "south"));
    char *team = fx_contact(&w->fx, "c-9", "team_id");
    assert_string_equal(team, "north");
    free(team);
    /* keeping it is allowed */
    assert_int_equal(store_dash_decide(w->fx.st, north, 1, s.id, false, "sara", NOW_MS, NULL),
                     STORE_OK);
    store_device_clear(&d1);
    store_device_clear(&d2);
}

/* F8: a conflict on a row deleted since is not offered for Reverse, and Reverse is refused
 * with the reason: writing the losing value back would have to bring a deleted record back
 * to life, which only a person re-creating it may do. Keep still closes the conflict, and the
 * row stays deleted. */
static void test_conflict_on_a_deleted_row_is_not_offered_for_reverse(void **state)
{
    world *w = *state;
    conflict_seen s = {0};

    make_conflict(w);
    tpush *tp = tp_new(3, HLC(NOW_MS - 5));
    tp_delete_contact(tp, &w->fx, "c-1");
    proto_msg *m = fx_push(&w->fx, &w->ana2, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    assert_int_equal(m->u.ack.n_conflicts, 0);
    proto_msg_free(m);
    tp_free(tp);
    assert_null(fx_contact(&w->fx, "c-1", "name"));

    assert_int_equal(store_dash_conflicts(w->fx.st, north, 1, false, 0, collect_conflict, &s),
                     STORE_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.losing, "Earlier");
    assert_false(s.reversible);
    assert_int_equal(store_dash_decide(w->fx.st, north, 1, s.id, true, "sara", NOW_MS, NULL),
                     STORE_EINVAL);
    assert_non_null(strstr(store_errmsg(w->fx.st), "deleted"));
    assert_null(fx_contact(&w->fx, "c-1", "name"));
    assert_int_equal(store_dash_decide(w->fx.st, north, 1, s.id, false, "sara", NOW_MS, NULL),
                     STORE_OK);
    memset(&s, 0, sizeof s);
    assert_int_equal(store_dash_conflicts(w->fx.st, north, 1, true, 0, collect_conflict, &s),
                     STORE_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.decision, "kept");
    assert_null(fx_contact(&w->fx, "c-1", "name"));
}

static void test_conflict_reverse_syncs_back(void **state)
{
    world *w = *state;
    conflict_seen s = {0};
    store_push_info info;
    store_pull_info pinfo;

    make_conflict(w);
    /* both devices are up to date before the decision */
    proto_msg *first = fx_pull(&w->fx, &w->ana2, 0, 0, 1u << 20, &pinfo);
    uint64_t cursor = pinfo.next_cursor;
    proto_msg_free(first);

    assert_int_equal(store_dash_conflicts(w->fx.st, north, 1, false, 0, collect_conflict, &s),
                     STORE_OK);
    assert_int_equal(store_dash_decide(w->fx.st, north, 1, s.id, true, "sara", NOW_MS + 5, &info),
                     STORE_OK);
    assert_int_equal(info.n_teams_touched, 1);
    assert_string_equal(info.teams_touched[0], "north");
    assert_true(info.server_seq > cursor);
    free(info.teams_touched);

    char *name = fx_contact(&w->fx, "c-1", "name");
    assert_string_equal(name, "Earlier");
    free(name);

    /* the winner's device receives the reversal like any other change */
    proto_msg *rows = fx_pull(&w->fx, &w->ana2, cursor, 0, 1u << 20, &pinfo);
    const proto_table_rows *t = fx_rows_table(rows, "contacts");
    assert_non_null(t);
    assert_int_equal(t->n_rows, 1);
    assert_true(fx_value_is(&t->rows[C_NAME], "Earlier"));
    proto_msg_free(rows);
    /* ... and so does the loser's */
    rows = fx_pull(&w->fx, &w->ana, cursor, 0, 1u << 20, &pinfo);
    t = fx_rows_table(rows, "contacts");
    assert_non_null(t);
    assert_true(fx_value_is(&t->rows[C_NAME], "Earlier"));
    proto_msg_free(rows);

    /* a later write by a device whose clock is behind the reversal does not overturn it */
    proto_msg *late = push_name(w, &w->ana2, 2, HLC(NOW_MS - 5), "c-1", "Later", "Again");
    assert_int_equal(late->u.ack.n_conflicts, 1);
    proto_msg_free(late);
    name = fx_contact(&w->fx, "c-1", "name");
    assert_string_equal(name, "Earlier");
    free(name);

    memset(&s, 0, sizeof s);
    assert_int_equal(store_dash_conflicts(w->fx.st, north, 1, true, 0, collect_conflict, &s),
                     STORE_OK);
    assert_true(s.n >= 1);
}

typedef struct history {
    uint32_t n;
    int64_t seq[8];
    int op[8];
} history;

static int collect_change(const store_dash_change *ch, void *user_data)
{
    history *h = user_data;
    if (h->n < 8) {
        h->seq[h->n] = ch->seq;
        h->op[h->n] = ch->op;
    }
    h->n++;
    return 0;
}

static history history_of(world *w, const char *id, uint32_t limit)
{
    history h;
    memset(&h, 0, sizeof h);
    assert_int_equal(
        store_dash_history(w->fx.st, north, 1, "contacts", id, limit, collect_change, &h),
        STORE_OK);
    return h;
}

typedef struct report_seen {
    uint64_t pending;
    char app[64];
} report_seen;

static int collect_report(const store_dash_device *d, void *user_data)
{
    report_seen *r = user_data;
    if (d->reported_ms != 0) {
        r->pending = d->pending;
        snprintf(r->app, sizeof r->app, "%s", d->app);
    }
    return 0;
}

/* Both engines: a row's history limited to the supervisor's teams (the row's scope is an
 * any-value column, encoded on PostgreSQL), and a device's report written twice (the second
 * replaces the first) as the device list shows it. */
static void test_history_and_device_report(void **state)
{
    world *w = *state;
    push_contact(w, &w->ana, 1, "c-1", "north", "First", NULL, NULL);
    push_contact(w, &w->ana, 2, "c-2", "north", "Other", NULL, NULL);
    proto_msg_free(push_name(w, &w->ana, 3, HLC(NOW_MS - 900), "c-1", "First", "Second"));

    history c1 = history_of(w, "c-1", 0);
    assert_int_equal(c1.n, 2);
    assert_int_equal(c1.op[0], PROTO_OP_INSERT);
    assert_int_equal(c1.op[1], PROTO_OP_UPDATE);
    history south_sees;
    memset(&south_sees, 0, sizeof south_sees);
    assert_int_equal(store_dash_history(w->fx.st, south, 1, "contacts", "c-1", 0, collect_change,
                                        &south_sees),
                     STORE_OK);
    assert_int_equal(south_sees.n, 0);

    report_seen r = {0};
    assert_int_equal(store_device_report(w->fx.st, w->ben.device_id, 4, "app 1.0", NULL, NOW_MS),
                     STORE_OK);
    assert_int_equal(store_dash_devices(w->fx.st, south, 1, collect_report, &r), STORE_OK);
    assert_int_equal(r.pending, 4);
    assert_string_equal(r.app, "app 1.0");
    assert_int_equal(store_device_report(w->fx.st, w->ben.device_id, 1, "app 1.1", "offline",
                                         NOW_MS + 1),
                     STORE_OK);
    assert_int_equal(store_dash_devices(w->fx.st, south, 1, collect_report, &r), STORE_OK);
    assert_int_equal(r.pending, 1);
    assert_string_equal(r.app, "app 1.1");
}

static void run_sql(world *w, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(w->fx.path, &db), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    sqlite3_close(db);
}

static int64_t count_sql(world *w, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open(w->fx.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

static void reopen(world *w)
{
    char err[256];
    store_close(w->fx.st);
    w->fx.st = NULL;
    assert_int_equal(store_open(w->fx.path, false, &w->fx.st, err, sizeof err), STORE_OK);
}

static void expect_same_history(const history *a, const history *b)
{
    assert_int_equal(a->n, b->n);
    for (uint32_t i = 0; i < a->n && i < 8; i++) {
        assert_int_equal(a->seq[i], b->seq[i]);
        assert_int_equal(a->op[i], b->op[i]);
    }
}

/* A record's history follows the row through a log shared with other rows, newest `limit` kept,
 * without an index on the log by row (one b-tree fewer per pushed row). A store made before
 * that (with the index, or with neither) upgrades itself when opened and shows the same. */
static void test_history_follows_the_row_and_older_stores_upgrade(void **state)
{
    world *w = *state;
    push_contact(w, &w->ana, 1, "c-1", "north", "First", NULL, NULL);
    push_contact(w, &w->ana, 2, "c-2", "north", "Other", NULL, NULL);
    proto_msg_free(push_name(w, &w->ana, 3, HLC(NOW_MS - 900), "c-1", "First", "Second"));
    proto_msg_free(push_name(w, &w->ana, 4, HLC(NOW_MS - 800), "c-2", "Other", "Other2"));
    proto_msg_free(push_name(w, &w->ana, 5, HLC(NOW_MS - 700), "c-1", "Second", "Third"));

    history c1 = history_of(w, "c-1", 0), c2 = history_of(w, "c-2", 0);
    assert_int_equal(c1.n, 3);
    assert_int_equal(c1.op[0], PROTO_OP_INSERT);
    assert_int_equal(c1.op[1], PROTO_OP_UPDATE);
    assert_int_equal(c1.op[2], PROTO_OP_UPDATE);
    assert_true(c1.seq[0] < c1.seq[1] && c1.seq[1] < c1.seq[2]);
    assert_int_equal(c2.n, 2);
    assert_true(c2.seq[0] > c1.seq[0] && c2.seq[0] < c1.seq[1]);
    history newest = history_of(w, "c-1", 2);
    assert_int_equal(newest.n, 2);
    assert_int_equal(newest.seq[0], c1.seq[1]);
    assert_int_equal(newest.seq[1], c1.seq[2]);
    assert_int_equal(count_sql(w, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                  " AND tbl_name = '_outpost_changes'"),
                     0);

    /* a store from before, with the log's index by row; one from before that index; one that
     * an older build opened since (it made the index again and wrote an entry without
     * prev_seq) */
    static const char *const older[] = {
        "ALTER TABLE _outpost_changes DROP COLUMN prev_seq; CREATE INDEX _outpost_changes_row"
        " ON _outpost_changes(table_id, pk, seq);",
        "ALTER TABLE _outpost_changes DROP COLUMN prev_seq;",
        "CREATE INDEX _outpost_changes_row ON _outpost_changes(table_id, pk, seq);"
        "UPDATE _outpost_changes SET prev_seq = NULL WHERE seq = (SELECT max(seq) FROM"
        " _outpost_changes);"};
    for (size_t i = 0; i < sizeof older / sizeof older[0]; i++) {
        store_close(w->fx.st);
        w->fx.st = NULL;
        run_sql(w, older[i]);
        reopen(w);
        history a = history_of(w, "c-1", 0), b = history_of(w, "c-2", 0);
        expect_same_history(&a, &c1);
        expect_same_history(&b, &c2);
        assert_int_equal(count_sql(w, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                      " AND tbl_name = '_outpost_changes'"),
                         0);
    }
    /* ... and keeps following rows changed after the upgrade */
    proto_msg_free(push_name(w, &w->ana, 6, HLC(NOW_MS - 600), "c-1", "Third", "Fourth"));
    history after = history_of(w, "c-1", 0);
    assert_int_equal(after.n, 4);
    assert_int_equal(after.seq[2], c1.seq[2]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_user_login_gives_role_and_teams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_add_refuses_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_locked_after_five_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_lists_newest_first_and_verifies, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_audit_refuses_update_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_names_changed_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_names_removed_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_names_removed_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_limited_to_teams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_filters_on_numbers_and_date_ends, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_per_day_per_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_devices_limited_to_teams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_queue_shows_both_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_keep_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_reverse_syncs_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_on_a_deleted_row_is_not_offered_for_reverse,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_follows_the_row_and_older_stores_upgrade,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_conflict_reverse_never_moves_a_row_out_of_the_supervisors_teams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_and_device_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_rules_evaluated_within_teams, setup, teardown),
    };
    const struct CMUnitTest on_postgresql[] = {
        cmocka_unit_test_setup_teardown(test_devices_limited_to_teams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_limited_to_teams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_filters_on_numbers_and_date_ends, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_per_day_per_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_rules_evaluated_within_teams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_queue_shows_both_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_keep_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_reverse_syncs_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_on_a_deleted_row_is_not_offered_for_reverse,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_conflict_reverse_never_moves_a_row_out_of_the_supervisors_teams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_and_device_report, setup, teardown),
    };
    return FX_RUN_BOTH_ENGINES("dashboard", tests, on_postgresql);
}
