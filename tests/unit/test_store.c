/*
 * The store around the merge: opening, schema init and upgrade, teams and workers,
 * enrollment, authentication, revocation, and pull (paging, tombstones, scope removal, echo).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store_fixture.h"
#include "strf.h"
#include "store_internal.h"

static const char contacts_policy[] = "contacts scope=team_id\n";

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    fx_open(fx);
    *state = fx;
    return 0;
}

static int setup_empty(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    fx_open_empty(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    fx_close(fx);
    free(fx);
    return 0;
}

/* ---- open --------------------------------------------------------------------------------- */

static void test_open_missing_without_create_is_enotfound(void **state)
{
    (void)state;
    store *st = NULL;
    char err[256];
    assert_int_equal(store_open("/nonexistent-dir/x.db", false, &st, err, sizeof err),
                     STORE_ENOTFOUND);
    assert_null(st);
    assert_non_null(strstr(err, "/nonexistent-dir/x.db"));
    store_close(NULL); /* harmless */
}

static void test_open_sets_wal_and_full_sync(void **state)
{
    fixture *fx = *state;
    sqlite3_stmt *s = NULL;
    sqlite3 *db = store_sqlite_db(fx->st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    assert_int_equal(fx_int(fx, "PRAGMA synchronous"), 2); /* FULL */
}

static void test_open_foreign_file_is_refused(void **state)
{
    fixture *fx = *state;
    char path[400];
    snprintf(path, sizeof path, "%s/other.db", fx->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    store *st = NULL;
    char err[256];
    assert_int_equal(store_open(path, false, &st, err, sizeof err), STORE_EINVAL);
    assert_non_null(strstr(err, "not an Outpost store"));
    assert_int_equal(store_open(path, true, &st, err, sizeof err), STORE_EINVAL);
    assert_non_null(strstr(err, "refusing to add to it"));
    assert_null(st);
    /* the foreign file was left as it was */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "delete");
    sqlite3_finalize(s);
    /* Nothing was added: the file still holds exactly its own table t. */
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*), sum(name = 't') FROM sqlite_master",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(s, 0), 1);
    assert_int_equal(sqlite3_column_int64(s, 1), 1);
    sqlite3_finalize(s);
    sqlite3_close(db);
    unlink(path);
}

/* ---- schema ------------------------------------------------------------------------------- */

/* store_schema_warnings' callback: appends each message and a newline to user_data (1024). */
static void collect_warning(void *user_data, const char *message)
{
    char *buf = user_data;
    size_t n = strlen(buf);
    snprintf(buf + n, 1024 - n, "%s\n", message);
}

static void expect_schema_error(fixture *fx, const char *sql, const char *policy,
                                const char *message_part)
{
    int rc = store_init_schema(fx->st, sql, policy);
    assert_int_equal(rc, STORE_ESCHEMA);
    if (strstr(store_errmsg(fx->st), message_part) == NULL)
        fail_msg("error '%s' lacks '%s'", store_errmsg(fx->st), message_part);
    assert_int_equal(fx_int(fx, "SELECT value FROM _outpost_meta WHERE key = 'schema_version'"), 0);
}

static void test_schema_init_refuses_integer_or_missing_pk(void **state)
{
    fixture *fx = *state;
    expect_schema_error(fx, "CREATE TABLE contacts(id INTEGER PRIMARY KEY, team_id TEXT);",
                        contacts_policy, "integer");
    expect_schema_error(fx, "CREATE TABLE contacts(id BIGINT PRIMARY KEY, team_id TEXT);",
                        contacts_policy, "integer");
    expect_schema_error(fx, "CREATE TABLE contacts(id TEXT, team_id TEXT);", contacts_policy,
                        "no explicit PRIMARY KEY");
    /* nothing was created */
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM sqlite_master WHERE name = 'contacts'"), 0);
}

static void test_schema_init_refuses_bad_policy_and_statements(void **state)
{
    fixture *fx = *state;
    const char *ok_sql = "CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT);";
    expect_schema_error(fx, ok_sql, "", "no policy line");
    expect_schema_error(fx, ok_sql, "contacts scope=nope\n", "no scope column");
    expect_schema_error(fx, ok_sql, "contacts\n", "needs scope=COLUMN");
    expect_schema_error(fx, ok_sql, "contacts scope=team_id policy=random\n", "unknown setting");
    expect_schema_error(fx, ok_sql, "contacts scope=team_id\nvisits scope=team_id\n",
                        "not in the schema");
    expect_schema_error(fx,
                        "CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT);"
                        "CREATE TRIGGER t AFTER INSERT ON contacts BEGIN SELECT 1; END;",
                        contacts_policy,
                        "schema file line 1: the statement 'CREATE TRIGGER t ...': a schema file "
                        "may only hold CREATE TABLE and CREATE INDEX statements");
    expect_schema_error(fx, "ATTACH DATABASE '/tmp/x.db' AS x;", contacts_policy,
                        "the statement 'ATTACH DATABASE '/tmp/x.db' ...': a schema file may only "
                        "hold CREATE TABLE");
    expect_schema_error(fx, "CREATE TABLE _outpost_x(id TEXT PRIMARY KEY, team_id TEXT);",
                        "_outpost_x scope=team_id\n", "reserved");
}

/* A schema file SQLite cannot read is refused naming the line, the table (or index) and the
 * column, and why in plain words, never with SQLite's bare "near ...: syntax error". */
static void test_schema_refusals_name_table_column_and_reason(void **state)
{
    fixture *fx = *state;
    static const struct {
        const char *sql, *want;
    } cases[] = {
        {"CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT, name TEXT,);",
         "schema file line 1: table contacts: a comma too many after column name (an empty "
         "column definition)"},
        {"CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT,, name TEXT);",
         "schema file line 1: table contacts: a comma too many after column team_id"},
        {"CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT);\n"
         "CREATE TABLE visits(id TEXT PRIMARY KEY\n team_id TEXT);",
         "schema file line 3: table visits, column id: the definition cannot be read at "
         "'team_id' (a comma missing before it?)"},
        {"CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT,\n"
         " CHECK (team_id <> '' AND));",
         "schema file line 2: table contacts, a table constraint (CHECK (team_id <> '' AND)): "
         "the definition cannot be read at ')'"},
        {"CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT, name TEXT, name TEXT);",
         "schema file line 1: table contacts: column name is defined twice"},
        {"CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT);\n"
         "CREATE INDEX visits_team ON visits(team_id);",
         "schema file line 2: index visits_team: table visits is not created before it"},
        {"CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT);\n"
         "CREATE INDEX contacts_x ON contacts(x);",
         "schema file line 2: index contacts_x: its table has no column x"},
        {"CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT",
         "schema file line 1: table contacts: the statement ends too early"},
        {"CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT)\n"
         "CREATE TABLE visits(id TEXT PRIMARY KEY, team_id TEXT);",
         "schema file line 2: table contacts: the SQL cannot be read at 'CREATE' (a ';' missing "
         "before it?)"},
        {"CREATE TABLE contacts(id TEXT, team_id TEXT, PRIMARY KEY(idd));",
         "schema file line 1: table contacts: a constraint names column idd, which it does not "
         "have"},
        {"CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT,\n"
         " CHECK (team_id <>\n '' AND\t));",
         "schema file line 3: table contacts, a table constraint (CHECK (team_id <> '' AND )): "
         "the definition cannot be read at ')'"},
        /* SQLite reads this as one column `name` of type "TEXT age INTEGER": age would be lost
         * for good, and "007" stored as 7 */
        {"CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT, name TEXT\n age INTEGER);",
         "table contacts, column name: its type \"TEXT age INTEGER\" is more than a type (a "
         "comma missing before \"age\"?)"},
        {"CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT, name TEXT\n age);",
         "table contacts, column name: its type \"TEXT age\" is more than a type"},
        /* the next column's name is itself a type word */
        {"CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT, note TEXT\n time INTEGER);",
         "table contacts, column note: its type \"TEXT time INTEGER\" is more than a type (a "
         "comma missing before \"time\"?)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_schema_error(fx, cases[i].sql, contacts_policy, cases[i].want);
        if (strstr(store_errmsg(fx->st), "near") != NULL)
            fail_msg("SQLite's parser message: %s", store_errmsg(fx->st));
    }
}

/* Types of several words that SQL writes so are taken (only a word that is no type word is
 * read as a missing comma). */
static void test_schema_takes_types_of_several_words(void **state)
{
    fixture *fx = *state;
    assert_int_equal(store_init_schema(fx->st,
                                       "CREATE TABLE contacts(id VARCHAR(36) PRIMARY KEY,"
                                       " team_id CHARACTER VARYING(20), score DOUBLE PRECISION,"
                                       " n UNSIGNED BIG INT, at TIMESTAMP WITH TIME ZONE,"
                                       " name NATIVE CHARACTER(70), note TEXT,"
                                       " a NATIONAL CHARACTER VARYING(20), b LONG VARCHAR,"
                                       " c BIT VARYING(8), d LONG RAW, e SIGNED INTEGER,"
                                       " f NATIONAL CHAR(10), g TIME WITH TIME ZONE,"
                                       " h CHARACTER LARGE OBJECT, i BINARY LARGE OBJECT);",
                                       contacts_policy),
                     STORE_OK);
}

static void test_schema_init_twice_is_eexists(void **state)
{
    fixture *fx = *state;
    char *sql = fx_data("contacts.sql");
    char *policy = fx_data("contacts.policy");
    assert_int_equal(store_init_schema(fx->st, sql, policy), STORE_EEXISTS);
    assert_non_null(strstr(store_errmsg(fx->st), "upgrade"));
    free(sql);
    free(policy);
}

static void test_schema_encode_describes_tables(void **state)
{
    fixture *fx = *state;
    proto_buf buf = {0};
    uint32_t version = 0;
    assert_int_equal(store_schema_encode(fx->st, &buf, &version), 0);
    assert_int_equal(version, 1);
    proto_msg *m = NULL;
    char err[256];
    assert_int_equal(proto_decode(buf.data, buf.len, NULL, &m, err, sizeof err), 0);
    assert_int_equal(m->type, PROTO_MSG_SCHEMA);
    assert_int_equal(m->u.schema.n_tables, 3);
    const proto_schema_table *t = &m->u.schema.tables[0];
    assert_string_equal(t->name, "contacts");
    assert_string_equal(t->scope_col, "team_id");
    assert_int_equal(t->n_columns, C_NCOLS);
    assert_string_equal(t->columns[C_RISK], "risk_level");
    assert_int_equal(t->n_pk, 1);
    assert_int_equal(t->pk[0], 0);
    assert_non_null(strstr(t->create_sql, "CREATE TABLE contacts"));
    assert_int_equal(m->u.schema.tables[1].policy, PROTO_POLICY_SERVER_WINS);
    assert_int_equal(m->u.schema.tables[2].policy, PROTO_POLICY_DEVICE_WINS);
    proto_msg_free(m);
    proto_buf_free(&buf);
}

static void test_schema_upgrade_additive_accepted(void **state)
{
    fixture *fx = *state;
    /* the same schema again is not a new version */
    char *same_sql = fx_data("contacts.sql");
    char *same_policy = fx_data("contacts.policy");
    assert_int_equal(store_upgrade_schema(fx->st, same_sql, same_policy), 0);
    assert_int_equal(fx_int(fx, "SELECT value FROM _outpost_meta WHERE key = 'schema_version'"), 1);
    free(same_sql);
    free(same_policy);
    char *sql = fx_data("contacts_v2.sql");
    char *policy = fx_data("contacts_v2.policy");
    int rc = store_upgrade_schema(fx->st, sql, policy);
    if (rc != 0)
        fail_msg("upgrade: %s", store_errmsg(fx->st));
    assert_int_equal(fx_int(fx, "SELECT value FROM _outpost_meta WHERE key = 'schema_version'"), 2);
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM pragma_table_info('contacts')"), 10);
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM sqlite_master WHERE name = 'follow_ups'"), 1);
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM sqlite_master WHERE name = 'contacts_name'"),
                     1);
    /* a device on schema 1 can still push: its insert carries 8 of the 10 columns */
    store_device dev;
    fx_device(fx, "ana", &dev);
    tpush *tp = tp_new(1, HLC(NOW_MS));
    tp_insert_contact(tp, "c-1", "north", "Old schema");
    proto_msg *m = fx_push(fx, &dev, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    assert_int_equal(fx_int(fx, "SELECT consent FROM contacts WHERE id = 'c-1'"), 0);
    proto_msg_free(m);
    tp_free(tp);
    store_device_clear(&dev);
    free(sql);
    free(policy);
}

static void expect_upgrade_refused(fixture *fx, const char *sql, const char *policy,
                                   const char *message_part)
{
    char *before = fx_dump(fx);
    int rc = store_upgrade_schema(fx->st, sql, policy);
    assert_int_equal(rc, STORE_ESCHEMA);
    if (strstr(store_errmsg(fx->st), message_part) == NULL)
        fail_msg("error '%s' lacks '%s'", store_errmsg(fx->st), message_part);
    char *after = fx_dump(fx);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_schema_upgrade_non_additive_refused(void **state)
{
    fixture *fx = *state;
    const char *two = "visits scope=team_id\nreferrals scope=team_id\n";
    char policy[512];
    snprintf(policy, sizeof policy, "contacts scope=team_id\n%s", two);
    const char *rest = "CREATE TABLE visits(id TEXT PRIMARY KEY NOT NULL, team_id TEXT NOT NULL,"
                       " contact_id TEXT NOT NULL, summary TEXT);"
                       "CREATE TABLE referrals(id TEXT PRIMARY KEY NOT NULL, team_id TEXT NOT"
                       " NULL, agency TEXT, status TEXT);";
    char sql[2048];
    /* a column dropped */
    snprintf(sql, sizeof sql,
             "CREATE TABLE contacts(id TEXT PRIMARY KEY NOT NULL, team_id TEXT"
             " NOT NULL, name TEXT NOT NULL);%s",
             rest);
    expect_upgrade_refused(fx, sql, policy, "removed");
    /* a column retyped */
    snprintf(sql, sizeof sql,
             "CREATE TABLE contacts(id TEXT PRIMARY KEY NOT NULL, team_id TEXT NOT NULL,"
             " name BLOB NOT NULL, age INTEGER CHECK (age IS NULL OR (age BETWEEN 0 AND 25)),"
             " location TEXT, notes TEXT, risk_level INTEGER NOT NULL DEFAULT 0,"
             " updated_at INTEGER);%s",
             rest);
    expect_upgrade_refused(fx, sql, policy, "changed its type");
    /* a new NOT NULL column without default */
    snprintf(sql, sizeof sql,
             "CREATE TABLE contacts(id TEXT PRIMARY KEY NOT NULL, team_id TEXT NOT NULL,"
             " name TEXT NOT NULL, age INTEGER CHECK (age IS NULL OR (age BETWEEN 0 AND 25)),"
             " location TEXT, notes TEXT, risk_level INTEGER NOT NULL DEFAULT 0,"
             " updated_at INTEGER, must TEXT NOT NULL);%s",
             rest);
    expect_upgrade_refused(fx, sql, policy, "NOT NULL without a DEFAULT");
    /* a table dropped */
    expect_upgrade_refused(fx, rest, two, "removed");
}

/* What an offline-first replica set cannot keep consistent is refused by init, naming the
 * table, column and why (outside test conv16 F2, F3, F5): a UNIQUE other than the key, a
 * collated key, a foreign-key action. Plain REFERENCES, RESTRICT, plain indexes and collations
 * off the key are fine. */
static void test_schema_init_refuses_what_replicas_cannot_keep(void **state)
{
    fixture *fx = *state;
    const char *u_policy = "u scope=team_id\n";
    expect_schema_error(fx,
                        "CREATE TABLE u(id TEXT PRIMARY KEY, team_id TEXT NOT NULL,"
                        " code TEXT UNIQUE, v TEXT);",
                        u_policy, "table u: column code is UNIQUE");
    expect_schema_error(fx,
                        "CREATE TABLE u(id TEXT PRIMARY KEY, team_id TEXT NOT NULL, code TEXT,"
                        " UNIQUE(team_id, code));",
                        u_policy, "table u: column team_id, code is UNIQUE");
    expect_schema_error(fx,
                        "CREATE TABLE u(id TEXT PRIMARY KEY, team_id TEXT NOT NULL, code TEXT);"
                        "CREATE UNIQUE INDEX u_code ON u(code);",
                        u_policy, "table u: column code is in unique index u_code: two offline devices");
    expect_schema_error(fx,
                        "CREATE TABLE u(id TEXT PRIMARY KEY COLLATE NOCASE, team_id TEXT);",
                        u_policy, "table u: primary key column id has COLLATE NOCASE");
    expect_schema_error(fx,
                        "CREATE TABLE u(id TEXT, team_id TEXT, PRIMARY KEY(id COLLATE RTRIM));",
                        u_policy, "table u: primary key column id has COLLATE RTRIM");
    const char *pc_policy = "parent scope=team_id\nchild scope=team_id\n";
    const char *parent = "CREATE TABLE parent(id TEXT PRIMARY KEY, team_id TEXT NOT NULL);";
    const char *actions[][2] = {
        {"ON DELETE CASCADE", "REFERENCES parent ON DELETE CASCADE"},
        {"ON DELETE SET NULL", "REFERENCES parent ON DELETE SET NULL"},
        {"ON UPDATE SET DEFAULT", "REFERENCES parent ON UPDATE SET DEFAULT"},
        {"ON DELETE RESTRICT ON UPDATE CASCADE", "REFERENCES parent ON UPDATE CASCADE"},
    };
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "%sCREATE TABLE child(id TEXT PRIMARY KEY, team_id TEXT NOT NULL,"
                 " parent_id TEXT REFERENCES parent(id) %s, v TEXT);",
                 parent, actions[i][0]);
        char want[128];
        snprintf(want, sizeof want, "table child: column parent_id %s", actions[i][1]);
        expect_schema_error(fx, sql, pc_policy, want);
    }
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM sqlite_master WHERE name IN"
                                " ('u', 'parent', 'child')"),
                     0);
    /* what replicas can keep */
    char sql[1024];
    snprintf(sql, sizeof sql,
             "%sCREATE TABLE child(id TEXT PRIMARY KEY, team_id TEXT NOT NULL,"
             " parent_id TEXT REFERENCES parent(id), other TEXT REFERENCES parent(id)"
             " ON DELETE RESTRICT ON UPDATE NO ACTION, name TEXT COLLATE NOCASE);"
             "CREATE INDEX child_name ON child(name);",
             parent);
    if (store_init_schema(fx->st, sql, pc_policy) != 0)
        fail_msg("init: %s", store_errmsg(fx->st));
}

/* A UNIQUE whose columns include the whole primary key (compared as the key compares them) can
 * never clash while the key is unique: taken, by init and by upgrade. One that leaves out a key
 * column, or takes one under another collation, is still refused. */
static void test_schema_unique_containing_the_whole_key_is_taken(void **state)
{
    fixture *fx = *state;
    const char *u_policy = "u scope=team_id\n";
    expect_schema_error(fx,
                        "CREATE TABLE u(a TEXT, b TEXT, team_id TEXT NOT NULL, code TEXT,"
                        " PRIMARY KEY(a, b), UNIQUE(a, code));",
                        u_policy, "table u: column a, code is UNIQUE");
    expect_schema_error(fx,
                        "CREATE TABLE u(id TEXT PRIMARY KEY, team_id TEXT NOT NULL, code TEXT);"
                        "CREATE UNIQUE INDEX u_ci ON u(id COLLATE NOCASE, code);",
                        u_policy, "table u: column id, code is in unique index u_ci");
    const char *sql = "CREATE TABLE u(a TEXT, b TEXT, team_id TEXT NOT NULL, code TEXT,"
                      " PRIMARY KEY(a, b), UNIQUE(code, b, a));"
                      "CREATE UNIQUE INDEX u_key ON u(b, a);"
                      "CREATE UNIQUE INDEX u_code ON u(a, lower(code), b) WHERE code IS NOT NULL;";
    if (store_init_schema(fx->st, sql, u_policy) != 0)
        fail_msg("init: %s", store_errmsg(fx->st));
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                " AND name IN ('u_key', 'u_code')"),
                     2);
    /* an upgrade adds one too, and still refuses one without the whole key */
    char more[1024];
    snprintf(more, sizeof more, "%sCREATE UNIQUE INDEX u_team ON u(team_id, a);", sql);
    expect_upgrade_refused(fx, more, u_policy, "column team_id, a is in unique index u_team");
    snprintf(more, sizeof more, "%sCREATE UNIQUE INDEX u_all ON u(team_id, a, b);", sql);
    if (store_upgrade_schema(fx->st, more, u_policy) != 0)
        fail_msg("upgrade: %s", store_errmsg(fx->st));
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM sqlite_master WHERE name = 'u_all'"), 1);
}

static void upgrade_contacts_with(fixture *fx, const char *contacts_sql, const char *extra_sql,
                                  const char *message_part)
{
    char sql[4096];
    char *v1 = fx_data("contacts.sql");
    char *v1_policy = fx_data("contacts.policy");
    char *rest = strstr(v1, "CREATE INDEX contacts_team");
    assert_non_null(rest);
    snprintf(sql, sizeof sql, "%s;\n%s\n%s", contacts_sql, rest, extra_sql);
    /* a new table "extra" gets its policy line */
    char *policy = strf("%s%s", v1_policy,
                        strstr(extra_sql, "TABLE extra") ? "extra scope=team_id\n" : "");
    free(v1_policy);
    if (message_part != NULL) {
        expect_upgrade_refused(fx, sql, policy, message_part);
    } else if (store_upgrade_schema(fx->st, sql, policy) != 0) {
        fail_msg("upgrade: %s", store_errmsg(fx->st));
    }
    free(v1);
    free(policy);
}

#define CONTACTS_V1_COLUMNS                                                                        \
    "CREATE TABLE contacts (id TEXT PRIMARY KEY NOT NULL, team_id TEXT NOT NULL,"                \
    " name TEXT NOT NULL, age INTEGER CHECK (age IS NULL OR (age BETWEEN 0 AND 25)),"             \
    " location TEXT, notes TEXT, risk_level INTEGER NOT NULL DEFAULT 0, updated_at INTEGER"

/* An upgrade adds columns to the store's table and to devices that have it with ALTER TABLE
 * ADD COLUMN (type, NOT NULL, DEFAULT), while devices that create the table fresh run the whole
 * new statement. So a new column with any other clause, or a change to the statement beyond
 * appended columns, would leave fresh devices refusing rows the store took (outside test
 * conv16 F1): refused by name, nothing changed. Plain appended columns, written in any layout,
 * are added. New UNIQUE indexes and tables are refused as init refuses them. */
static void test_schema_upgrade_refuses_what_add_column_would_drop(void **state)
{
    fixture *fx = *state;
    upgrade_contacts_with(fx, CONTACTS_V1_COLUMNS ", e INTEGER CHECK (e >= 0))", "",
                          "table contacts: new column e has a clause ALTER TABLE ADD COLUMN "
                          "would not add (CHECK)");
    upgrade_contacts_with(fx, CONTACTS_V1_COLUMNS ", e INTEGER NOT NULL DEFAULT 0 CHECK (e >= 0))",
                          "", "new column e has a clause ALTER TABLE ADD COLUMN would not add (CHECK)");
    upgrade_contacts_with(fx, CONTACTS_V1_COLUMNS ", e TEXT REFERENCES visits(id))", "",
                          "(REFERENCES)");
    upgrade_contacts_with(fx, CONTACTS_V1_COLUMNS ", e TEXT COLLATE NOCASE)", "", "(COLLATE)");
    upgrade_contacts_with(fx, CONTACTS_V1_COLUMNS ", e TEXT, CHECK (e <> ''))", "",
                          "table contacts: a table constraint (CHECK (e <> '')) was added: an "
                          "upgrade may only append columns");
    upgrade_contacts_with(fx, CONTACTS_V1_COLUMNS ", CHECK (notes <> ''))", "",
                          "table contacts: a table constraint (CHECK (notes <> '')) was added");
    upgrade_contacts_with(
        fx,
        "CREATE TABLE contacts (id TEXT PRIMARY KEY NOT NULL, team_id TEXT NOT NULL,"
        " name TEXT NOT NULL, age INTEGER CHECK (age IS NULL OR (age BETWEEN 0 AND 30)),"
        " location TEXT, notes TEXT, risk_level INTEGER NOT NULL DEFAULT 0, updated_at INTEGER)",
        "",
        "table contacts: column age changed from 'age INTEGER CHECK (age IS NULL OR (age BETWEEN 0"
        " AND 25))' to 'age INTEGER CHECK (age IS NULL OR (age BETWEEN 0 AND 30))': an upgrade "
        "may only append columns");
    /* a CHECK dropped: the first difference is the comma after the column */
    upgrade_contacts_with(
        fx,
        "CREATE TABLE contacts (id TEXT PRIMARY KEY NOT NULL, team_id TEXT NOT NULL,"
        " name TEXT NOT NULL, age INTEGER, location TEXT, notes TEXT,"
        " risk_level INTEGER NOT NULL DEFAULT 0, updated_at INTEGER)",
        "",
        "table contacts: column age changed from 'age INTEGER CHECK (age IS NULL OR (age BETWEEN 0"
        " AND 25))' to 'age INTEGER'");
    upgrade_contacts_with(fx, CONTACTS_V1_COLUMNS ")",
                          "CREATE UNIQUE INDEX contacts_loc ON contacts(location);",
                          "column location is in unique index contacts_loc");
    upgrade_contacts_with(fx, CONTACTS_V1_COLUMNS ")",
                          "CREATE TABLE extra(id TEXT PRIMARY KEY, team_id TEXT, k TEXT UNIQUE);",
                          "table extra: column k is UNIQUE");
    assert_int_equal(fx_int(fx, "SELECT value FROM _outpost_meta WHERE key = 'schema_version'"), 1);

    /* plain columns, another layout, comments and quoting: added */
    upgrade_contacts_with(fx,
                          "create table contacts ( -- v2\n \"id\" text primary key not null,"
                          " team_id TEXT NOT NULL, name TEXT NOT NULL, age INTEGER CHECK (age IS"
                          " NULL OR (age BETWEEN 0 AND 25)), location TEXT, notes TEXT,"
                          " risk_level INTEGER NOT NULL DEFAULT 0, updated_at INTEGER,\n"
                          " e INTEGER DEFAULT -1 NOT NULL, f VARCHAR(20) DEFAULT ('x, y'), g)",
                          "", NULL);
    assert_int_equal(fx_int(fx, "SELECT value FROM _outpost_meta WHERE key = 'schema_version'"), 2);
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM pragma_table_info('contacts')"), 11);
}

/* A store made before init refused these keeps working: its schema's problems are listed for
 * outpostd's log (store_schema_warnings), and an upgrade that keeps them (and adds a column) is
 * taken; only new ones are refused. */
static void test_schema_old_store_with_unique_warns_and_upgrades(void **state)
{
    fixture *fx = *state;
    /* as init made it before: the recorded schema and table have a UNIQUE name */
    assert_int_equal(db_exec(fx->st->conn,
                             "UPDATE _outpost_schema_versions SET schema_sql = replace(schema_sql,"
                             " 'name TEXT NOT NULL', 'name TEXT NOT NULL UNIQUE');"
                             "UPDATE _outpost_tables SET create_sql = replace(create_sql,"
                             " 'name TEXT NOT NULL', 'name TEXT NOT NULL UNIQUE');"
                             "CREATE UNIQUE INDEX contacts_name_u ON contacts(name);"),
                     0);
    char warned[1024] = "";
    assert_int_equal(store_schema_warnings(fx->st, collect_warning, warned), 0);
    assert_string_equal(warned, "table contacts: column name is UNIQUE: two offline devices can "
                                "each take the same value, and the store could keep only one; "
                                "drop it (a plain index is fine, and so is a UNIQUE that "
                                "includes every primary key column, each under the key's own "
                                "collation)\n");
    const char *with_unique = "CREATE TABLE contacts (id TEXT PRIMARY KEY NOT NULL, team_id TEXT"
                              " NOT NULL, name TEXT NOT NULL UNIQUE, age INTEGER CHECK (age IS"
                              " NULL OR (age BETWEEN 0 AND 25)), location TEXT, notes TEXT,"
                              " risk_level INTEGER NOT NULL DEFAULT 0, updated_at INTEGER";
    char sql[1024];
    snprintf(sql, sizeof sql, "%s, code TEXT UNIQUE)", with_unique);
    upgrade_contacts_with(fx, sql, "", "table contacts: column code is UNIQUE");
    snprintf(sql, sizeof sql, "%s, e TEXT)", with_unique);
    upgrade_contacts_with(fx, sql, "", NULL);
    assert_int_equal(fx_int(fx, "SELECT value FROM _outpost_meta WHERE key = 'schema_version'"), 2);
}

/* A store upgraded before upgrade refused it with a CHECK on an added column (outside test
 * conv16 F1: fresh devices get the CHECK, the store and older devices do not): named by
 * store_schema_warnings, with the version. A plain added column is not. */
static void test_schema_old_upgrade_with_check_is_named(void **state)
{
    fixture *fx = *state;
    upgrade_contacts_with(fx, CONTACTS_V1_COLUMNS ", plain TEXT)", "", NULL);
    /* as upgrade recorded it before: version 3 adds e with a CHECK */
    assert_int_equal(db_exec(fx->st->conn,
                             "INSERT INTO _outpost_schema_versions SELECT 3,"
                             " replace(schema_sql, 'plain TEXT', 'plain TEXT, e INTEGER CHECK"
                             " (e >= 0)'), policy_text, applied_ms FROM _outpost_schema_versions"
                             " WHERE version = 2;"
                             "UPDATE _outpost_meta SET value = 3 WHERE key = 'schema_version';"),
                     0);
    char warned[1024] = "";
    assert_int_equal(store_schema_warnings(fx->st, collect_warning, warned), 0);
    assert_string_equal(warned, "schema version 3: table contacts: new column e has a clause ALTER"
                                " TABLE ADD COLUMN would not add (CHECK): only devices that create"
                                " the table fresh would get it, and refuse rows the store takes;"
                                " add the column without it\n");
}

/* ---- teams, workers, enrollment, auth ------------------------------------------------------ */

static void test_team_and_worker_errors(void **state)
{
    fixture *fx = *state;
    assert_int_equal(store_team_add(fx->st, "north", NULL), STORE_EEXISTS);
    assert_int_equal(store_team_add(fx->st, "bad id", NULL), STORE_EINVAL);
    const char *missing[] = {"east"};
    assert_int_equal(store_worker_add(fx->st, "dee", missing, 1), STORE_ENOTFOUND);
    assert_non_null(strstr(store_errmsg(fx->st), "no team east"));
    const char *north[] = {"north"};
    assert_int_equal(store_worker_add(fx->st, "ana", north, 1), STORE_EEXISTS);
    assert_int_equal(store_worker_add(fx->st, "dee", north, 0), STORE_EINVAL);
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM _outpost_workers WHERE id = 'dee'"), 0);
}

static void test_enroll_code_is_single_use(void **state)
{
    fixture *fx = *state;
    char code[STORE_CODE_SIZE], id[40], id2[40];
    uint8_t secret[32];
    assert_int_equal(store_enroll_code_create(fx->st, "ana", store_now_ms(), 3600000, code), 0);
    assert_int_equal(strlen(code), 23);
    /* case and dashes do not matter to the person typing it */
    char typed[STORE_CODE_SIZE];
    size_t n = 0;
    for (const char *p = code; *p; p++)
        if (*p != '-')
            typed[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    typed[n] = 0;
    assert_int_equal(store_device_enroll(fx->st, typed, "phone", id, secret), 0);
    assert_int_equal(strlen(id), 36);
    assert_int_equal(store_device_enroll(fx->st, code, "phone", id2, secret), STORE_ECODE);
    assert_int_equal(store_device_enroll(fx->st, "AAAAA-AAAAA-AAAAA-AAAAA", NULL, id2, secret),
                     STORE_ECODE);
    assert_int_equal(store_device_enroll(fx->st, "short", NULL, id2, secret), STORE_ECODE);
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM _outpost_devices"), 1);
    /* only a hash of the code and of the secret are stored */
    assert_int_equal(fx_int(fx, "SELECT length(code_hash) FROM _outpost_enroll_codes"), 32);
    assert_int_equal(fx_int(fx, "SELECT length(secret_hash) FROM _outpost_devices"), 32);
}

static void test_enroll_code_expires(void **state)
{
    fixture *fx = *state;
    char code[STORE_CODE_SIZE], id[40];
    uint8_t secret[32];
    uint64_t day = UINT64_C(24) * 3600 * 1000;
    assert_int_equal(
        store_enroll_code_create(fx->st, "ana", store_now_ms() - day - 60000, day, code), 0);
    assert_int_equal(store_device_enroll(fx->st, code, NULL, id, secret), STORE_ECODE);
    assert_int_equal(store_enroll_code_create(fx->st, "nobody", store_now_ms(), day, code),
                     STORE_ENOTFOUND);
}

static void test_auth_right_wrong_unknown_revoked(void **state)
{
    fixture *fx = *state;
    char code[STORE_CODE_SIZE], id[40];
    uint8_t secret[32];
    assert_int_equal(store_enroll_code_create(fx->st, "cai", store_now_ms(), 3600000, code), 0);
    assert_int_equal(store_device_enroll(fx->st, code, "laptop", id, secret), 0);
    store_device dev;
    memset(&dev, 0, sizeof dev);
    assert_int_equal(store_device_auth(fx->st, id, secret, &dev), 0);
    assert_string_equal(dev.device_id, id);
    assert_string_equal(dev.worker_id, "cai");
    assert_int_equal(dev.n_teams, 2);
    assert_string_equal(dev.teams[0], "north");
    assert_string_equal(dev.teams[1], "south");
    assert_false(dev.revoked);

    uint8_t wrong[32];
    memcpy(wrong, secret, sizeof wrong);
    wrong[31] ^= 1;
    assert_int_equal(store_device_auth(fx->st, id, wrong, &dev), STORE_EAUTH);
    assert_int_equal(dev.n_teams, 0);
    assert_int_equal(
        store_device_auth(fx->st, "00000000-0000-4000-8000-000000000000", secret, &dev),
        STORE_ENOTFOUND);
    assert_string_equal(store_errmsg(fx->st),
                        "authentication failed: unknown device or wrong secret");

    assert_int_equal(store_device_revoke(fx->st, id, true), 0);
    assert_int_equal(store_device_auth(fx->st, id, secret, &dev), STORE_EREVOKED);
    assert_true(dev.revoked);
    assert_true(dev.wipe);
    /* a revoked device with the wrong secret learns nothing */
    assert_int_equal(store_device_auth(fx->st, id, wrong, &dev), STORE_EAUTH);
    assert_int_equal(store_device_revoke(fx->st, "no-such-device", false), STORE_ENOTFOUND);
    store_device_clear(&dev);
    store_device_clear(&dev); /* twice is harmless */
}

static int count_devices(const store_device_row *row, void *user_data)
{
    int *n = user_data;
    if (row->last_seen_ms > 0 && row->cursor == 7)
        (*n)++;
    return 0;
}

static void test_device_seen_recorded_for_listing(void **state)
{
    fixture *fx = *state;
    store_device dev;
    fx_device(fx, "ana", &dev);
    assert_int_equal(store_device_seen(fx->st, dev.device_id, 7), 0);
    assert_int_equal(fx_int(fx, "SELECT cursor FROM _outpost_devices"), 7);
    /* the record itself does not wait for the disk; every other commit still does */
    assert_int_equal(fx_int(fx, "PRAGMA synchronous"), 2); /* FULL */
    int n = 0;
    assert_int_equal(store_device_list(fx->st, count_devices, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_device_seen(fx->st, "no-such-device", 1), STORE_ENOTFOUND);
    store_device_clear(&dev);
}

/* ---- pull ---------------------------------------------------------------------------------- */

static void push_contacts(fixture *fx, store_device *dev, int first, int count, const char *team)
{
    tpush *tp = tp_new(dev->acked_seq + 1, HLC(NOW_MS));
    static char ids[256][16];
    for (int i = 0; i < count; i++) {
        snprintf(ids[i], sizeof ids[i], "c-%03d", first + i);
        tp_insert_contact(tp, ids[i], team, "Name");
    }
    proto_msg *m = fx_push(fx, dev, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    proto_msg_free(m);
    tp_free(tp);
}

static void test_pull_pages_by_limit_and_bytes(void **state)
{
    fixture *fx = *state;
    store_device ana, ben;
    fx_device(fx, "ana", &ana);
    fx_device(fx, "ben", &ben);
    push_contacts(fx, &ana, 0, 25, "north");
    push_contacts(fx, &ben, 100, 5, "south");
    uint64_t cursor = 0;
    uint32_t total = 0, pages = 0;
    store_pull_info info;
    do {
        proto_msg *m = fx_pull(fx, &ben, cursor, 10, 1 << 20, &info);
        assert_true(info.n_rows <= 10);
        total += info.n_rows;
        pages++;
        assert_int_equal(m->u.rows.cursor, info.next_cursor);
        assert_int_equal(m->u.rows.more, info.more);
        assert_true(info.next_cursor >= cursor);
        cursor = info.next_cursor;
        /* ben never sees a north row */
        const proto_table_rows *t = fx_rows_table(m, "contacts");
        for (uint32_t r = 0; t != NULL && r < t->n_rows; r++)
            assert_true(fx_value_is(&t->rows[r * t->n_columns + C_TEAM], "south"));
        proto_msg_free(m);
    } while (info.more && pages < 100);
    /* ben's own rows are not echoed back to ben */
    assert_int_equal(total, 0);

    /* cai sees all 30 of north and south, in pages of at most 10 rows */
    store_device cai;
    fx_device(fx, "cai", &cai);
    cursor = 0;
    total = 0;
    pages = 0;
    do {
        proto_msg *m = fx_pull(fx, &cai, cursor, 10, 1 << 20, &info);
        total += info.n_rows;
        pages++;
        cursor = info.next_cursor;
        proto_msg_free(m);
    } while (info.more && pages < 100);
    assert_int_equal(total, 30);
    assert_int_equal(pages, 3);
    uint64_t head = 0;
    assert_int_equal(store_server_seq(fx->st, &head), 0);
    assert_int_equal(cursor, head);
    assert_true(head >= 30);
    /* byte limit: pages of about 500 bytes hold fewer rows, and each stays near the limit */
    cursor = 0;
    total = 0;
    pages = 0;
    do {
        proto_buf reply = {0};
        assert_int_equal(store_pull(fx->st, &cai, cursor, 1000, 500, &reply, &info), 0);
        assert_true(reply.len <= 500);
        total += info.n_rows;
        pages++;
        cursor = info.next_cursor;
        proto_buf_free(&reply);
    } while (info.more && pages < 100);
    assert_int_equal(total, 30);
    assert_true(pages > 3);
    store_device_clear(&ana);
    store_device_clear(&ben);
    store_device_clear(&cai);
}

/* ---- pull: live rows read in batches (row_read_batch), pages that fill inside a batch ----- */

enum { MB_ROWS = 90 };

/* The model of contacts row i (c-NNN, north) that test_pull_full_inside_a_batch_* keeps. */
typedef struct mb_row {
    char id[16];
    char name[96];
    bool live, deleted, changed; /* changed: since the reader's cursor */
} mb_row;

/* Row i's name: its id and 0-70 letters, so that rows differ in size and a byte limit falls
 * at a different row of a batch for every page size. */
static void mb_name(mb_row *r, uint32_t i, int version)
{
    char pad[80];
    uint32_t n = (i * 37u + (uint32_t)version * 11u) % 71u;
    memset(pad, 'a' + (int)(i % 26), n);
    pad[n] = 0;
    snprintf(r->name, sizeof r->name, "%.8s-v%d-%.71s", r->id, version, pad);
}

/* The model's index of a key (c-NNN), MB_ROWS for any other. */
static uint32_t mb_index(const proto_value *key)
{
    char text[16];
    unsigned i = MB_ROWS;
    if (key->type != PROTO_TEXT || key->u.b.n != 5)
        return MB_ROWS;
    memcpy(text, key->u.b.p, 5);
    text[5] = 0;
    if (sscanf(text, "c-%3u", &i) != 1 || i >= MB_ROWS)
        return MB_ROWS;
    return i;
}

static void mb_push_south(fixture *fx, store_device *ben, uint32_t round, uint32_t n)
{
    tpush *tp = tp_new(ben->acked_seq + 1, HLC(NOW_MS + round));
    char ids[4][24]; /* the push keeps pointers to its values */
    assert_true(n <= 4);
    for (uint32_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "s-%03u-%u", round, i);
        tp_insert_contact(tp, ids[i], "south", "South");
    }
    proto_msg *m = fx_push(fx, ben, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    proto_msg_free(m);
    tp_free(tp);
}

/* Pulls from cursor in pages of limit rows and max_bytes until no more comes, and checks the
 * pages against the model: every row it expects (changed since cursor, or every live row from
 * 0) exactly once with its newest name, every deleted row exactly once as a tombstone (from
 * 0 at most once: the first page knows that the reader holds nothing), nothing else. */
static void mb_pull_check(fixture *fx, store_device *reader, const mb_row *rows, uint64_t cursor,
                          uint32_t limit, size_t max_bytes)
{
    uint32_t seen_row[MB_ROWS] = {0}, seen_deleted[MB_ROWS] = {0};
    store_pull_info info;
    uint64_t at = cursor;
    uint32_t pages = 0;
    do {
        proto_msg *m = fx_pull(fx, reader, at, limit, max_bytes, &info);
        assert_true(info.n_rows + info.n_deleted <= limit);
        assert_true(info.next_cursor >= at);
        assert_true(!info.more || info.n_rows + info.n_deleted > 0);
        const proto_table_rows *t = fx_rows_table(m, "contacts");
        for (uint32_t r = 0; t != NULL && r < t->n_rows; r++) {
            const proto_value *v = &t->rows[r * t->n_columns];
            uint32_t i = mb_index(&v[C_ID]);
            if (i == MB_ROWS)
                fail_msg("limit %u bytes %zu: a row not in the reader's scope", limit, max_bytes);
            seen_row[i]++;
            if (!fx_value_is(&v[C_NAME], rows[i].name))
                fail_msg("limit %u bytes %zu: %s came with another row's values", limit, max_bytes,
                         rows[i].id);
        }
        for (uint32_t r = 0; t != NULL && r < t->n_deleted; r++) {
            uint32_t i = mb_index(&t->deleted[r * t->n_pk]);
            assert_true(i < MB_ROWS);
            seen_deleted[i]++;
        }
        at = info.next_cursor;
        proto_msg_free(m);
        assert_true(++pages <= 4 * MB_ROWS);
    } while (info.more);
    for (uint32_t i = 0; i < MB_ROWS; i++) {
        uint32_t want_row = rows[i].live && (cursor == 0 || rows[i].changed);
        uint32_t want_deleted = rows[i].deleted;
        /* from 0 only the first page knows that the reader holds nothing yet; later pages may
         * send a tombstone, never two */
        bool deleted_ok = seen_deleted[i] == want_deleted ||
                          (cursor == 0 && want_deleted == 1 && seen_deleted[i] == 0);
        if (seen_row[i] != want_row || !deleted_ok)
            fail_msg("limit %u bytes %zu from %llu: %s came %u times as a row (want %u), %u as "
                     "deleted (want %u)",
                     limit, max_bytes, (unsigned long long)cursor, rows[i].id, seen_row[i],
                     want_row, seen_deleted[i], want_deleted);
    }
}

/* Live rows of a page are read 32 at a time; a page that fills inside such a batch (by bytes or
 * by rows) must leave the rest of the batch to the next page, not skip it or send it twice.
 * North rows of varied sizes, between south rows the reader skips, then updates, deletes (each
 * ends a batch) and new rows, pulled from 0 and from the middle in pages of many sizes. */
static void test_pull_full_inside_a_batch_skips_nothing_sends_nothing_twice(void **state)
{
    fixture *fx = *state;
    store_device ana, ana2, ben;
    fx_device(fx, "ana", &ana);
    fx_device(fx, "ana", &ana2);
    fx_device(fx, "ben", &ben);
    static mb_row rows[MB_ROWS];
    static char old_names[MB_ROWS][96]; /* a push keeps pointers to its values */
    memset(rows, 0, sizeof rows);
    for (uint32_t i = 0; i < MB_ROWS; i++) {
        snprintf(rows[i].id, sizeof rows[i].id, "c-%03u", i);
        mb_name(&rows[i], i, 0);
    }
    /* 60 rows in pushes of 12, each followed by 3 south rows */
    for (uint32_t i = 0; i < 60; i += 12) {
        tpush *tp = tp_new(ana.acked_seq + 1, HLC(NOW_MS + i));
        for (uint32_t k = i; k < i + 12; k++) {
            tp_insert_contact(tp, rows[k].id, "north", rows[k].name);
            rows[k].live = true;
        }
        proto_msg_free(fx_push(fx, &ana, tp, NOW_MS, NULL));
        tp_free(tp);
        mb_push_south(fx, &ben, i, 3);
    }
    store_pull_info info;
    proto_msg_free(fx_pull(fx, &ana2, 0, 1000, 1 << 20, &info));
    assert_int_equal(info.n_rows, 60);
    assert_false(info.more);
    uint64_t middle = info.next_cursor;
    /* then: every 4th row renamed, every 7th deleted, 30 new rows, in pushes between south ones */
    for (uint32_t round = 0; round < 3; round++) {
        tpush *tp = tp_new(ana.acked_seq + 1, HLC(NOW_MS + 100 + round));
        for (uint32_t k = round; k < 60; k += 3) {
            if (k % 7 == 0) {
                tp_delete_contact(tp, fx, rows[k].id);
                rows[k].live = false;
                rows[k].deleted = true;
            } else if (k % 4 == 0) {
                memcpy(old_names[k], rows[k].name, sizeof old_names[k]);
                mb_name(&rows[k], k, 1);
                tp_update_contact(tp, rows[k].id, C_NAME, T(old_names[k]), T(rows[k].name));
                rows[k].changed = true;
            }
        }
        for (uint32_t k = 60 + round * 10; k < 70 + round * 10; k++) {
            tp_insert_contact(tp, rows[k].id, "north", rows[k].name);
            rows[k].live = rows[k].changed = true;
        }
        proto_msg_free(fx_push(fx, &ana, tp, NOW_MS, NULL));
        tp_free(tp);
        mb_push_south(fx, &ben, 100 + round, 2);
    }
    /* pages by rows (around the batch of 32), by bytes, by both */
    static const struct {
        uint32_t limit;
        size_t bytes;
    } sizes[] = {{1, 1 << 20},  {3, 1 << 20},  {31, 1 << 20}, {32, 1 << 20}, {33, 1 << 20},
                 {1000, 1 << 20}, {1000, 300}, {1000, 420},   {1000, 650},   {1000, 1000},
                 {1000, 1700},  {1000, 3000}, {5, 650},      {33, 1000},    {20, 1700}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        mb_pull_check(fx, &ana2, rows, 0, sizes[k].limit, sizes[k].bytes);
        mb_pull_check(fx, &ana2, rows, middle, sizes[k].limit, sizes[k].bytes);
    }
    store_device_clear(&ana);
    store_device_clear(&ana2);
    store_device_clear(&ben);
}

/* Keys of every type through the batched read: k_any's key column has no type (SQLite keeps
 * each value as it came: 3, '3', x'03' and 3.5 are four rows), k_pair's is two columns, integers
 * (in a column without a type: a synced table may not have an INTEGER key) and TEXT, WITHOUT
 * ROWID. Rows of both tables alternate between pushes, so batches end at a
 * table change, at 32 rows and at the page's end. */
enum { KT_ANY = 48, KT_PAIR = 45 };

typedef struct kt_rows {
    char text[KT_ANY][16];
    uint8_t blob[KT_ANY];
    char pair_b[KT_PAIR][8];
    char value[KT_ANY + KT_PAIR][16];
    proto_value any[KT_ANY][3];   /* k, team_id, v */
    proto_value pair[KT_PAIR][4]; /* a, b, team_id, r */
    uint32_t seen_any[KT_ANY], seen_pair[KT_PAIR];
} kt_rows;

static void kt_make(kt_rows *kt)
{
    memset(kt, 0, sizeof *kt);
    for (uint32_t i = 0; i < KT_ANY; i++) {
        proto_value *row = kt->any[i];
        uint32_t n = i / 4;
        snprintf(kt->text[i], sizeof kt->text[i], "%u", n);
        kt->blob[i] = (uint8_t)n;
        switch (i % 4) {
        case 0:
            row[0] = I((int64_t)n);
            break;
        case 1:
            row[0] = T(kt->text[i]);
            break;
        case 2:
            row[0].type = PROTO_BLOB;
            row[0].u.b.p = &kt->blob[i];
            row[0].u.b.n = 1;
            break;
        default:
            row[0].type = PROTO_REAL;
            row[0].u.r = n + 0.5;
        }
        row[1] = T("north");
        snprintf(kt->value[i], sizeof kt->value[i], "any-%u", i);
        row[2] = T(kt->value[i]);
    }
    for (uint32_t i = 0; i < KT_PAIR; i++) {
        proto_value *row = kt->pair[i];
        snprintf(kt->pair_b[i], sizeof kt->pair_b[i], "b-%u", i % 3);
        row[0] = I((int64_t)(i / 3) - 7); /* negative ones too */
        row[1] = T(kt->pair_b[i]);
        row[2] = T("north");
        row[3].type = PROTO_REAL;
        row[3].u.r = i * 1.25;
    }
}

static void kt_insert(tpush *tp, const char *table, const proto_value *row, uint32_t n_cols)
{
    proto_change *ch = tp_change(tp, table, n_cols, PROTO_OP_INSERT);
    for (uint32_t c = 0; c < n_cols; c++)
        tp_col(ch, c, U(), row[c]);
}

/* Counts each pulled row against the expected ones: same key and every value the same. */
static void kt_count(const proto_table_rows *t, const proto_value *rows, uint32_t width,
                     uint32_t n_pk, uint32_t n_rows, uint32_t *seen)
{
    for (uint32_t r = 0; t != NULL && r < t->n_rows; r++) {
        const proto_value *got = &t->rows[r * t->n_columns];
        assert_int_equal(t->n_columns, width);
        uint32_t i = 0;
        for (; i < n_rows; i++) {
            const proto_value *want = rows + (size_t)i * width;
            uint32_t k = 0;
            while (k < n_pk && proto_value_equal(&got[k], &want[k]))
                k++;
            if (k == n_pk)
                break;
        }
        if (i == n_rows)
            fail_msg("%s: a row with a key that was never pushed", t->table);
        const proto_value *want = rows + (size_t)i * width;
        for (uint32_t c = 0; c < width; c++)
            if (!proto_value_equal(&got[c], &want[c]))
                fail_msg("%s row %u: column %u is not the value pushed", t->table, i, c);
        seen[i]++;
    }
}

static void test_pull_reads_keys_of_every_type_in_batches(void **state)
{
    fixture *fx = *state;
    static const char schema[] =
        "CREATE TABLE k_any (k BLOB NOT NULL, team_id TEXT NOT NULL, v TEXT, PRIMARY KEY(k));"
        "CREATE TABLE k_pair (a BLOB NOT NULL, b TEXT NOT NULL, team_id TEXT NOT NULL, r REAL,"
        " PRIMARY KEY(a, b)) WITHOUT ROWID;";
    if (store_init_schema(fx->st, schema, "k_any scope=team_id\nk_pair scope=team_id\n") != 0)
        fail_msg("init: %s", store_errmsg(fx->st));
    const char *north[] = {"north"};
    assert_int_equal(store_team_add(fx->st, "north", NULL), 0);
    assert_int_equal(store_worker_add(fx->st, "ana", north, 1), 0);
    store_device ana, ana2;
    fx_device(fx, "ana", &ana);
    fx_device(fx, "ana", &ana2);
    static kt_rows kt;
    kt_make(&kt);
    /* k_any 0-39; k_pair 0-29 and k_any 40-44; k_pair 30-44 and k_any 45-47 */
    static const struct {
        uint32_t any_from, any_to, pair_from, pair_to;
    } pushes[] = {{0, 40, 0, 0}, {40, 45, 0, 30}, {45, KT_ANY, 30, KT_PAIR}};
    for (size_t p = 0; p < sizeof pushes / sizeof pushes[0]; p++) {
        tpush *tp = tp_new(ana.acked_seq + 1, HLC(NOW_MS + p));
        for (uint32_t i = pushes[p].pair_from; i < pushes[p].pair_to; i++)
            kt_insert(tp, "k_pair", kt.pair[i], 4);
        for (uint32_t i = pushes[p].any_from; i < pushes[p].any_to; i++)
            kt_insert(tp, "k_any", kt.any[i], 3);
        proto_msg *m = fx_push(fx, &ana, tp, NOW_MS, NULL);
        assert_int_equal(m->type, PROTO_MSG_ACK);
        proto_msg_free(m);
        tp_free(tp);
    }
    static const uint32_t limits[] = {1000, 7, 32, 33};
    for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++) {
        memset(kt.seen_any, 0, sizeof kt.seen_any);
        memset(kt.seen_pair, 0, sizeof kt.seen_pair);
        uint64_t cursor = 0;
        uint32_t pages = 0;
        store_pull_info info;
        do {
            proto_msg *m = fx_pull(fx, &ana2, cursor, limits[l], 1 << 20, &info);
            kt_count(fx_rows_table(m, "k_any"), kt.any[0], 3, 1, KT_ANY, kt.seen_any);
            kt_count(fx_rows_table(m, "k_pair"), kt.pair[0], 4, 2, KT_PAIR, kt.seen_pair);
            cursor = info.next_cursor;
            proto_msg_free(m);
            assert_true(++pages <= KT_ANY + KT_PAIR);
        } while (info.more);
        for (uint32_t i = 0; i < KT_ANY; i++)
            if (kt.seen_any[i] != 1)
                fail_msg("limit %u: k_any row %u came %u times", limits[l], i, kt.seen_any[i]);
        for (uint32_t i = 0; i < KT_PAIR; i++)
            if (kt.seen_pair[i] != 1)
                fail_msg("limit %u: k_pair row %u came %u times", limits[l], i, kt.seen_pair[i]);
    }
    store_device_clear(&ana);
    store_device_clear(&ana2);
}

static void test_pull_tombstones_and_no_echo(void **state)
{
    fixture *fx = *state;
    store_device ana, ana2;
    fx_device(fx, "ana", &ana);
    fx_device(fx, "ana", &ana2);
    push_contacts(fx, &ana, 0, 2, "north");
    store_pull_info info;
    proto_msg *m = fx_pull(fx, &ana, 0, 100, 1 << 20, &info);
    assert_int_equal(info.n_rows, 0); /* no echo of ana's own inserts */
    uint64_t ana_cursor = info.next_cursor;
    proto_msg_free(m);
    m = fx_pull(fx, &ana2, 0, 100, 1 << 20, &info);
    assert_int_equal(info.n_rows, 2);
    uint64_t ana2_cursor = info.next_cursor;
    proto_msg_free(m);

    tpush *del = tp_new(ana.acked_seq + 1, HLC(NOW_MS + 1));
    tp_delete_contact(del, fx, "c-000");
    m = fx_push(fx, &ana, del, NOW_MS, NULL);
    proto_msg_free(m);
    tp_free(del);

    m = fx_pull(fx, &ana2, ana2_cursor, 100, 1 << 20, &info);
    assert_int_equal(info.n_rows, 0);
    assert_int_equal(info.n_deleted, 1);
    const proto_table_rows *t = fx_rows_table(m, "contacts");
    assert_non_null(t);
    assert_int_equal(t->n_pk, 1);
    assert_true(fx_value_is(&t->deleted[0], "c-000"));
    proto_msg_free(m);
    m = fx_pull(fx, &ana, ana_cursor, 100, 1 << 20, &info);
    assert_int_equal(info.n_deleted, 0); /* ana deleted it herself */
    proto_msg_free(m);
    store_device_clear(&ana);
    store_device_clear(&ana2);
}

static void test_pull_returns_row_when_merge_altered_it(void **state)
{
    fixture *fx = *state;
    store_device ana, ana2;
    fx_device(fx, "ana", &ana);
    fx_device(fx, "ana", &ana2);
    push_contacts(fx, &ana, 0, 1, "north");
    store_pull_info info;
    proto_msg *m = fx_pull(fx, &ana, 0, 100, 1 << 20, &info);
    uint64_t cursor = info.next_cursor;
    proto_msg_free(m);
    tpush *tp = tp_new(1, HLC(NOW_MS + 100));
    tp_update_contact(tp, "c-000", C_NAME, T("Name"), T("Winner"));
    proto_msg_free(fx_push(fx, &ana2, tp, NOW_MS, NULL));
    tp_free(tp);
    /* ana pushes before pulling, with an older clock: she loses and must get "Winner" back */
    uint64_t after_winner = (uint64_t)fx_int(fx, "SELECT value FROM _outpost_meta WHERE key ="
                                                 " 'server_seq'");
    tp = tp_new(2, HLC(NOW_MS + 50));
    tp_update_contact(tp, "c-000", C_NAME, T("Name"), T("Loser"));
    m = fx_push(fx, &ana, tp, NOW_MS, NULL);
    assert_int_equal(m->u.ack.n_conflicts, 1);
    proto_msg_free(m);
    tp_free(tp);
    m = fx_pull(fx, &ana, after_winner, 100, 1 << 20, &info);
    assert_int_equal(info.n_rows, 1);
    const proto_table_rows *t = fx_rows_table(m, "contacts");
    assert_true(fx_value_is(&t->rows[C_NAME], "Winner"));
    proto_msg_free(m);
    (void)cursor;
    store_device_clear(&ana);
    store_device_clear(&ana2);
}

/* ---- the device's echo run: a pull jumps the device's own writes, never another's --------- */

/* Every page from cursor on: the contacts sent as "id=name" in order, ';'-separated. */
static void pull_names(fixture *fx, store_device *dev, uint64_t cursor, char *out, size_t size)
{
    store_pull_info info;
    size_t len = 0;
    int pages = 0;
    out[0] = '\0';
    do {
        proto_msg *m = fx_pull(fx, dev, cursor, 3, 1 << 20, &info);
        const proto_table_rows *t = fx_rows_table(m, "contacts");
        for (uint32_t r = 0; t != NULL && r < t->n_rows; r++) {
            const proto_value *v = &t->rows[r * t->n_columns];
            len += (size_t)snprintf(out + len, size - len, "%.*s=%.*s;", (int)v[C_ID].u.b.n,
                                    (const char *)v[C_ID].u.b.p, (int)v[C_NAME].u.b.n,
                                    (const char *)v[C_NAME].u.b.p);
            assert_true(len < size);
        }
        cursor = info.next_cursor;
        proto_msg_free(m);
    } while (info.more && ++pages < 100);
    assert_false(info.more);
}

static void push_name(fixture *fx, store_device *dev, const char *id, const char *from,
                      const char *to, uint64_t hlc_ms, bool expect_conflict)
{
    tpush *tp = tp_new(dev->acked_seq + 1, HLC(hlc_ms));
    tp_update_contact(tp, id, C_NAME, T(from), T(to));
    proto_msg *m = fx_push(fx, dev, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    assert_int_equal(m->u.ack.n_conflicts, expect_conflict ? 1 : 0);
    proto_msg_free(m);
    tp_free(tp);
}

/* ana's two entries are a run (her own, unaltered, nothing between): her pull jumps it, and
 * still gets what ana2 wrote before it and after it, including a change to one of her rows. */
static void test_pull_jumps_own_run_keeps_others_around_it(void **state)
{
    fixture *fx = *state;
    store_device ana, ana2;
    char got[512];
    fx_device(fx, "ana", &ana);
    fx_device(fx, "ana", &ana2);
    push_contacts(fx, &ana2, 100, 1, "north");
    push_contacts(fx, &ana, 0, 5, "north");
    push_contacts(fx, &ana, 5, 5, "north");
    push_name(fx, &ana2, "c-002", "Name", "After", NOW_MS + 10, false);
    push_contacts(fx, &ana2, 101, 1, "north");
    pull_names(fx, &ana, 0, got, sizeof got);
    assert_string_equal(got, "c-100=Name;c-002=After;c-101=Name;");
    store_device_clear(&ana);
    store_device_clear(&ana2);
}

/* ana wrote a row of ana2's that she never pulled (that write is echoed to her once), then
 * wrote it again in a run of her own: the run may not be jumped from a cursor before the row's
 * echo began. */
static void test_pull_does_not_jump_a_run_over_a_row_not_seen(void **state)
{
    fixture *fx = *state;
    store_device ana, ana2;
    char got[512];
    fx_device(fx, "ana", &ana);
    fx_device(fx, "ana", &ana2);
    push_contacts(fx, &ana2, 0, 1, "north");
    push_name(fx, &ana, "c-000", "Name", "Mine", NOW_MS + 10, false);
    push_name(fx, &ana, "c-000", "Mine", "Mine again", NOW_MS + 20, false);
    pull_names(fx, &ana, 0, got, sizeof got);
    assert_string_equal(got, "c-000=Mine again;");
    store_device_clear(&ana);
    store_device_clear(&ana2);
}

/* ana's run is followed at once by her entry that lost a conflict (altered): the run ends
 * before it, and her pull gets the winning version. */
static void test_pull_run_ends_before_an_altered_entry(void **state)
{
    fixture *fx = *state;
    store_device ana, ana2;
    char got[512];
    fx_device(fx, "ana", &ana);
    fx_device(fx, "ana", &ana2);
    push_contacts(fx, &ana2, 100, 1, "north");
    push_name(fx, &ana2, "c-100", "Name", "Winner", NOW_MS + 100, false);
    pull_names(fx, &ana, 0, got, sizeof got);
    assert_string_equal(got, "c-100=Winner;");
    uint64_t cursor = 0;
    assert_int_equal(store_server_seq(fx->st, &cursor), 0);
    push_contacts(fx, &ana, 0, 2, "north");
    push_name(fx, &ana, "c-100", "Name", "Loser", NOW_MS + 50, true); /* an older clock */
    pull_names(fx, &ana, cursor, got, sizeof got);
    assert_string_equal(got, "c-100=Winner;");
    store_device_clear(&ana);
    store_device_clear(&ana2);
}

/* The outside tester's N1: ana edits rows twice while ana2's change to another column of them
 * waits for her. Her rows come back (echo once), but only on the pull's first page: a later page
 * has a cursor past her first edits, and judged by it the rows were hers and seen. The PULL's
 * `seen` (where her last pull completed) is what the echo rules go by. */
static void test_pull_later_pages_judge_echo_from_the_completed_pull(void **state)
{
    fixture *fx = *state;
    store_device ana, ana2;
    char got[1024];
    fx_device(fx, "ana", &ana);
    fx_device(fx, "ana", &ana2);
    push_contacts(fx, &ana2, 0, 10, "north");
    pull_names(fx, &ana, 0, got, sizeof got);
    uint64_t seen = 0;
    assert_int_equal(store_server_seq(fx->st, &seen), 0);
    for (int round = 0; round < 3; round++) {
        tpush *tp = tp_new(round == 0 ? ana2.acked_seq + 1 : ana.acked_seq + 1,
                           HLC(NOW_MS + 10 + (uint64_t)round));
        static char ids[10][16]; /* the push keeps pointers to them */
        for (int i = 0; i < 10; i++) {
            const char *id = ids[i];
            snprintf(ids[i], sizeof ids[i], "c-%03d", i);
            if (round == 0)
                tp_update_contact(tp, id, C_NAME, T("Name"), T("ana2's"));
            else
                tp_update_contact(tp, id, C_AGE, I(round == 1 ? 12 : 13), I(12 + round));
        }
        proto_msg_free(fx_push(fx, round == 0 ? &ana2 : &ana, tp, NOW_MS, NULL));
        tp_free(tp);
    }
    ana.has_pull_seen = true;
    ana.pull_seen = seen;
    pull_names(fx, &ana, seen, got, sizeof got);
    assert_string_equal(got, "c-000=ana2's;c-001=ana2's;c-002=ana2's;c-003=ana2's;"
                             "c-004=ana2's;c-005=ana2's;c-006=ana2's;c-007=ana2's;"
                             "c-008=ana2's;c-009=ana2's;");
    store_device_clear(&ana);
    store_device_clear(&ana2);
}

/* A group that rolled back leaves no run (its sequences are used again by the next push); in
 * a committed group, another device's entry between two of ana's ends her run. cai's entries
 * write rows last written by others (echoed to cai once): they start no run of their own that
 * would hide a wrong one of ana's. */
static void test_pull_run_only_from_committed_contiguous_entries(void **state)
{
    fixture *fx = *state;
    store_device ana, ana2, cai;
    char got[512];
    fx_device(fx, "ana", &ana);
    fx_device(fx, "ana", &ana2);
    fx_device(fx, "cai", &cai);
    push_contacts(fx, &ana2, 100, 1, "north");
    uint64_t cursor = 0;
    assert_int_equal(store_server_seq(fx->st, &cursor), 0);
    uint64_t acked = ana.acked_seq;
    assert_int_equal(store_push_group_begin(fx->st), 0);
    push_contacts(fx, &ana, 0, 3, "north");
    store_push_group_rollback(fx->st);
    ana.acked_seq = acked;
    tpush *tp = tp_new(cai.acked_seq + 1, HLC(NOW_MS + 10)); /* as many changes as ana's */
    tp_update_contact(tp, "c-100", C_NAME, T("Name"), T("Cai"));
    tp_insert_contact(tp, "c-101", "north", "Cai");
    tp_insert_contact(tp, "c-102", "north", "Cai");
    proto_msg_free(fx_push(fx, &cai, tp, NOW_MS, NULL));
    tp_free(tp);
    pull_names(fx, &ana, cursor, got, sizeof got);
    assert_string_equal(got, "c-100=Cai;c-101=Cai;c-102=Cai;");

    assert_int_equal(store_server_seq(fx->st, &cursor), 0);
    assert_int_equal(store_push_group_begin(fx->st), 0);
    push_contacts(fx, &ana, 0, 2, "north");
    push_name(fx, &cai, "c-000", "Name", "Cai", NOW_MS + 20, false);
    push_contacts(fx, &ana, 2, 2, "north");
    assert_int_equal(store_push_group_commit(fx->st), 0);
    pull_names(fx, &ana, cursor, got, sizeof got);
    assert_string_equal(got, "c-000=Cai;");
    store_device_clear(&ana);
    store_device_clear(&ana2);
    store_device_clear(&cai);
}

static void test_pull_scope_removal(void **state)
{
    fixture *fx = *state;
    store_device ana, ben, cai;
    fx_device(fx, "ana", &ana);
    fx_device(fx, "ben", &ben);
    fx_device(fx, "cai", &cai);
    push_contacts(fx, &cai, 0, 1, "north");
    store_pull_info info;
    proto_msg *m = fx_pull(fx, &ana, 0, 100, 1 << 20, &info);
    assert_int_equal(info.n_rows, 1);
    uint64_t ana_cursor = info.next_cursor;
    proto_msg_free(m);
    m = fx_pull(fx, &ben, 0, 100, 1 << 20, &info);
    assert_int_equal(info.n_rows, 0);
    uint64_t ben_cursor = info.next_cursor;
    proto_msg_free(m);

    tpush *tp = tp_new(2, HLC(NOW_MS + 10));
    tp_update_contact(tp, "c-000", C_TEAM, T("north"), T("south"));
    proto_msg_free(fx_push(fx, &cai, tp, NOW_MS, NULL));
    tp_free(tp);

    m = fx_pull(fx, &ana, ana_cursor, 100, 1 << 20, &info);
    assert_int_equal(info.n_rows, 0);
    assert_int_equal(info.n_removed, 1);
    const proto_table_rows *t = fx_rows_table(m, "contacts");
    assert_true(fx_value_is(&t->removed[0], "c-000"));
    proto_msg_free(m);
    m = fx_pull(fx, &ben, ben_cursor, 100, 1 << 20, &info);
    assert_int_equal(info.n_rows, 1);
    assert_int_equal(info.n_removed, 0);
    proto_msg_free(m);
    /* a first pull of a north device does not hear about rows that were never its to have */
    store_device ana2;
    fx_device(fx, "ana", &ana2);
    m = fx_pull(fx, &ana2, 0, 100, 1 << 20, &info);
    assert_int_equal(info.n_rows + info.n_removed + info.n_deleted, 0);
    proto_msg_free(m);
    store_device_clear(&ana);
    store_device_clear(&ana2);
    store_device_clear(&ben);
    store_device_clear(&cai);
}

static void test_pull_cursor_from_the_future_is_refused(void **state)
{
    fixture *fx = *state;
    store_device ana, cai;
    fx_device(fx, "ana", &ana);
    fx_device(fx, "cai", &cai);
    push_contacts(fx, &ana, 0, 2, "north");
    uint64_t head = 0;
    assert_int_equal(store_server_seq(fx->st, &head), 0);
    /* the device pulled up to 1000 from a store that was since restored from a backup: the
     * store says so instead of quietly starting over, so the device can re-send and re-pull */
    proto_buf reply = {0};
    store_pull_info info;
    assert_int_equal(store_pull(fx->st, &cai, 1000, 100, 1 << 20, &reply, &info), STORE_EAHEAD);
    assert_int_equal(reply.len, 0);
    char expect[300];
    snprintf(expect, sizeof expect,
             "cursor 1000 is beyond this store's newest sequence %llu: the store went back in "
             "time (restored from a backup, or failed over to a standby that lacked "
             "commits); pull again from 0",
             (unsigned long long)head);
    assert_string_equal(store_errmsg(fx->st), expect);
    /* at the head itself it is an ordinary, empty pull */
    proto_msg *m = fx_pull(fx, &cai, head, 100, 1 << 20, &info);
    assert_int_equal(info.n_rows, 0);
    assert_int_equal(info.next_cursor, head);
    proto_msg_free(m);
    store_device_clear(&ana);
    store_device_clear(&cai);
}

/* A worker joining a team gets that team's rows at the next pull, though they are older than
 * its cursor; leaving it, the device is told to drop them (store_rescope.c, both engines). */
static void test_pull_after_worker_changes_teams(void **state)
{
    fixture *fx = *state;
    store_device ana, ben;
    fx_device(fx, "ana", &ana);
    fx_device(fx, "ben", &ben);
    push_contacts(fx, &ben, 0, 2, "south");
    store_pull_info info;
    proto_msg *m = fx_pull(fx, &ana, 0, 100, 1 << 20, &info);
    assert_int_equal(info.n_rows, 0);
    uint64_t cursor = info.next_cursor;
    proto_msg_free(m);

    const char *both[] = {"north", "south"}, *north_only[] = {"north"};
    assert_int_equal(store_worker_set_teams(fx->st, "ana", both, 2), STORE_OK);
    m = fx_pull(fx, &ana, cursor, 100, 1 << 20, &info);
    assert_int_equal(info.n_rows, 2);
    assert_int_equal(info.n_removed, 0);
    cursor = info.next_cursor;
    proto_msg_free(m);

    assert_int_equal(store_worker_set_teams(fx->st, "ana", north_only, 1), STORE_OK);
    m = fx_pull(fx, &ana, cursor, 100, 1 << 20, &info);
    assert_int_equal(info.n_rows, 0);
    assert_int_equal(info.n_removed, 2);
    proto_msg_free(m);
    store_device_clear(&ana);
    store_device_clear(&ben);
}

static void test_pull_revoked_device_refused(void **state)
{
    fixture *fx = *state;
    store_device ana;
    fx_device(fx, "ana", &ana);
    assert_int_equal(store_device_revoke(fx->st, ana.device_id, false), 0);
    proto_buf reply = {0};
    store_pull_info info;
    assert_int_equal(store_pull(fx->st, &ana, 0, 10, 1 << 20, &reply, &info), STORE_EREVOKED);
    assert_int_equal(reply.len, 0);
    store_device_clear(&ana);
}

static void test_two_handles_and_a_busy_writer(void **state)
{
    fixture *fx = *state;
    store_device ana, cai;
    fx_device(fx, "ana", &ana);
    fx_device(fx, "cai", &cai);
    store *other = NULL;
    char err[256];
    assert_int_equal(store_open(fx->path, false, &other, err, sizeof err), 0);
    /* what one handle commits, another handle on the same file pulls */
    push_contacts(fx, &ana, 0, 3, "north");
    proto_buf reply = {0};
    store_pull_info info;
    assert_int_equal(store_pull(other, &cai, 0, 100, 1 << 20, &reply, &info), 0);
    assert_int_equal(info.n_rows, 3);
    proto_buf_free(&reply);

    /* while another writer holds the store past the busy timeout: EBUSY, nothing applied */
    assert_int_equal(sqlite3_exec(store_sqlite_db(other), "BEGIN IMMEDIATE", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(store_sqlite_db(fx->st), 50);
    tpush *tp = tp_new(ana.acked_seq + 1, HLC(NOW_MS));
    tp_insert_contact(tp, "c-busy", "north", "Name");
    store_push_info pinfo;
    assert_int_equal(store_push(fx->st, &ana, tp_push(tp), NOW_MS, &reply, &pinfo), STORE_EBUSY);
    assert_non_null(strstr(store_errmsg(fx->st), "locked by another writer"));
    assert_int_equal(reply.len, 0);
    assert_int_equal(sqlite3_exec(store_sqlite_db(other), "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    /* once the other writer is gone, the same entry applies */
    proto_msg *m = fx_push(fx, &ana, tp, NOW_MS, NULL);
    assert_int_equal(m->type, PROTO_MSG_ACK);
    assert_int_equal(fx_int(fx, "SELECT count(*) FROM contacts"), 4);
    proto_msg_free(m);
    tp_free(tp);
    store_close(other);
    store_device_clear(&ana);
    store_device_clear(&cai);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define E_(f) cmocka_unit_test_setup_teardown(f, setup_empty, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_missing_without_create_is_enotfound),
        T_(test_open_sets_wal_and_full_sync),
        T_(test_open_foreign_file_is_refused),
        E_(test_schema_init_refuses_integer_or_missing_pk),
        E_(test_schema_init_refuses_bad_policy_and_statements),
        E_(test_schema_refusals_name_table_column_and_reason),
        E_(test_schema_takes_types_of_several_words),
        T_(test_schema_init_twice_is_eexists),
        T_(test_schema_encode_describes_tables),
        T_(test_schema_upgrade_additive_accepted),
        T_(test_schema_upgrade_non_additive_refused),
        E_(test_schema_init_refuses_what_replicas_cannot_keep),
        E_(test_schema_unique_containing_the_whole_key_is_taken),
        T_(test_schema_upgrade_refuses_what_add_column_would_drop),
        T_(test_schema_old_store_with_unique_warns_and_upgrades),
        T_(test_schema_old_upgrade_with_check_is_named),
        T_(test_team_and_worker_errors),
        T_(test_enroll_code_is_single_use),
        T_(test_enroll_code_expires),
        T_(test_auth_right_wrong_unknown_revoked),
        T_(test_device_seen_recorded_for_listing),
        T_(test_pull_pages_by_limit_and_bytes),
        T_(test_pull_full_inside_a_batch_skips_nothing_sends_nothing_twice),
        E_(test_pull_reads_keys_of_every_type_in_batches),
        T_(test_pull_tombstones_and_no_echo),
        T_(test_pull_returns_row_when_merge_altered_it),
        T_(test_pull_jumps_own_run_keeps_others_around_it),
        T_(test_pull_does_not_jump_a_run_over_a_row_not_seen),
        T_(test_pull_run_ends_before_an_altered_entry),
        T_(test_pull_run_only_from_committed_contiguous_entries),
        T_(test_pull_later_pages_judge_echo_from_the_completed_pull),
        T_(test_pull_scope_removal),
        T_(test_pull_cursor_from_the_future_is_refused),
        T_(test_pull_revoked_device_refused),
        T_(test_two_handles_and_a_busy_writer),
        T_(test_pull_after_worker_changes_teams),
    };
    /* Pull on PostgreSQL (the rest of this file is SQLite's file handling or is covered for
     * both engines by test_store_engines). */
    const struct CMUnitTest on_postgresql[] = {
        T_(test_pull_pages_by_limit_and_bytes),
        T_(test_pull_full_inside_a_batch_skips_nothing_sends_nothing_twice),
        E_(test_pull_reads_keys_of_every_type_in_batches),
        T_(test_pull_tombstones_and_no_echo),
        T_(test_pull_returns_row_when_merge_altered_it),
        T_(test_pull_jumps_own_run_keeps_others_around_it),
        T_(test_pull_does_not_jump_a_run_over_a_row_not_seen),
        T_(test_pull_run_ends_before_an_altered_entry),
        T_(test_pull_run_only_from_committed_contiguous_entries),
        T_(test_pull_later_pages_judge_echo_from_the_completed_pull),
        T_(test_pull_scope_removal),
        T_(test_pull_cursor_from_the_future_is_refused),
        T_(test_pull_revoked_device_refused),
        T_(test_pull_after_worker_changes_teams),
    };
    return FX_RUN_BOTH_ENGINES("store", tests, on_postgresql);
}
