/*
 * Form validation (docs/forms.md): the example forms pass, and each rule, broken once in an
 * otherwise valid example form, is refused with a message naming file, table, column, problem.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "forms.h"
#include "schema_parse.h"
#include "store.h"
#include "strf.h"

static const char *const tables[] = {"contacts", "missing_episodes", "referrals"};
#define N_FORMS 3

typedef struct ctx {
    char *schema_sql;
    char *policy;
    json_t *forms[N_FORMS]; /* the example forms, changed by each test */
    char err[1024];
    char *json; /* forms_validate's output */
} ctx;

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = '\0';
    fclose(f);
    return text;
}

static int setup(void **state)
{
    const char *src = getenv("OUTPOST_SOURCE_DIR");
    if (src == NULL)
        return -1;
    ctx *c = calloc(1, sizeof *c);
    char *path = strf("%s/examples/outreach/schema.sql", src);
    c->schema_sql = read_text(path);
    free(path);
    path = strf("%s/examples/outreach/policy", src);
    c->policy = read_text(path);
    free(path);
    for (int i = 0; i < N_FORMS; i++) {
        path = strf("%s/examples/outreach/forms/%s.json", src, tables[i]);
        json_error_t jerr;
        c->forms[i] = json_load_file(path, 0, &jerr);
        free(path);
        if (c->forms[i] == NULL)
            return -1;
    }
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    for (int i = 0; i < N_FORMS; i++)
        json_decref(c->forms[i]);
    free(c->schema_sql);
    free(c->policy);
    free(c->json);
    free(c);
    return 0;
}

/* Validates the forms as they stand (texts[i] replaces form i's JSON text when not NULL);
 * returns forms_validate's result, the message in c->err. */
static int validate_texts(ctx *c, const char *const *texts)
{
    schema_def def;
    char err[256];
    assert_int_equal(schema_parse(c->schema_sql, c->policy, &def, err, sizeof err), 0);
    forms_file files[N_FORMS];
    char *dumped[N_FORMS];
    for (int i = 0; i < N_FORMS; i++) {
        dumped[i] = json_dumps(c->forms[i], JSON_PRESERVE_ORDER);
        files[i].path = strf("pkg/forms/%s.json", tables[i]);
        files[i].text = texts && texts[i] ? texts[i] : dumped[i];
    }
    free(c->json);
    c->json = NULL;
    c->err[0] = '\0';
    int rc = forms_validate(&def, files, N_FORMS, &c->json, c->err, sizeof c->err);
    for (int i = 0; i < N_FORMS; i++) {
        free(dumped[i]);
        free((char *)files[i].path);
    }
    schema_def_free(&def);
    return rc;
}

static int validate(ctx *c)
{
    return validate_texts(c, NULL);
}

/* The forms must be refused with exactly this message. */
static void expect_refused(ctx *c, const char *message)
{
    int rc = validate(c);
    if (rc != STORE_ESCHEMA)
        fail_msg("expected a refusal \"%s\", got %d (%s)", message, rc, c->err);
    assert_null(c->json);
    if (strcmp(c->err, message) != 0)
        fail_msg("message\n  \"%s\"\nexpected\n  \"%s\"", c->err, message);
}

/* The field of form i that fills column. */
static json_t *field(ctx *c, int i, const char *column)
{
    size_t s, f;
    json_t *section, *fld;
    json_array_foreach(json_object_get(c->forms[i], "sections"), s, section) {
        json_array_foreach(json_object_get(section, "fields"), f, fld) {
            if (strcmp(json_string_value(json_object_get(fld, "column")), column) == 0)
                return fld;
        }
    }
    fail_msg("no field %s in form %d", column, i);
    return NULL;
}

static json_t *choice_list(ctx *c, int i, const char *name)
{
    json_t *list = json_object_get(json_object_get(c->forms[i], "choices"), name);
    assert_non_null(list);
    return list;
}

static json_t *choice(const char *value, const char *en, const char *es)
{
    return json_pack("{s:s, s:{s:s, s:s}}", "value", value, "label", "en", en, "es", es);
}

static void test_forms_examples_are_valid(void **state)
{
    ctx *c = *state;
    if (validate(c) != 0)
        fail_msg("example forms refused: %s", c->err);
    json_error_t jerr;
    json_t *all = json_loads(c->json, 0, &jerr);
    assert_non_null(all);
    assert_int_equal(json_array_size(all), N_FORMS);
    for (int i = 0; i < N_FORMS; i++) {
        assert_string_equal(json_string_value(json_object_get(json_array_get(all, (size_t)i), "table")),
                            tables[i]);
        assert_true(json_equal(json_array_get(all, (size_t)i), c->forms[i]));
    }
    json_decref(all);
}

static void test_forms_unknown_column_is_named(void **state)
{
    ctx *c = *state;
    json_object_set_new(field(c, 0, "location"), "column", json_string("place"));
    expect_refused(c, "pkg/forms/contacts.json: contacts.place: no such column in table contacts "
                      "(field 4 of section 1)");
}

static void test_forms_unknown_key_is_refused(void **state)
{
    ctx *c = *state;
    json_object_set_new(field(c, 2, "organisation"), "requried", json_true());
    expect_refused(c, "pkg/forms/referrals.json: referrals.organisation: unknown key \"requried\" "
                      "in field 3 of section 1");
}

static void test_forms_unknown_top_level_key_is_refused(void **state)
{
    ctx *c = *state;
    json_object_set_new(c->forms[1], "colour", json_string("red"));
    expect_refused(c, "pkg/forms/missing_episodes.json: unknown key \"colour\" in the form");
}

static void test_forms_choice_outside_check_is_refused(void **state)
{
    ctx *c = *state;
    json_array_append_new(choice_list(c, 0, "risk_level"), choice("severe", "Severe", "Grave"));
    expect_refused(c, "pkg/forms/contacts.json: contacts.risk_level: choice 'severe' is not "
                      "allowed by the column's CHECK (allowed: 'none','low','medium','high')");
}

static void test_forms_check_value_without_choice_is_refused(void **state)
{
    ctx *c = *state;
    json_array_remove(choice_list(c, 2, "status"), 4); /* lost_contact */
    expect_refused(c, "pkg/forms/referrals.json: referrals.status: the column's CHECK allows "
                      "'lost_contact', and choice list \"status\" does not offer it");
}

static void test_forms_choice_type_must_match_column(void **state)
{
    ctx *c = *state;
    json_t *yes = json_array_get(choice_list(c, 1, "yes_no"), 1);
    json_object_set_new(yes, "value", json_string("1"));
    expect_refused(c, "pkg/forms/missing_episodes.json: missing_episodes.reported_to_police: "
                      "choice list \"yes_no\" has text values, and the column is declared "
                      "INTEGER");
}

static void test_forms_multiselect_on_check_column_is_refused(void **state)
{
    ctx *c = *state;
    json_object_set_new(field(c, 0, "risk_level"), "widget", json_string("multiselect"));
    expect_refused(c, "pkg/forms/contacts.json: contacts.risk_level: the column's CHECK allows "
                      "one value of ('none','low','medium','high'), so a multiselect cannot be "
                      "stored there; use \"select\"");
}

static void test_forms_free_text_on_check_column_is_refused(void **state)
{
    ctx *c = *state;
    json_t *f = field(c, 2, "status");
    json_object_del(f, "choices");
    json_object_set_new(f, "widget", json_string("text"));
    expect_refused(c, "pkg/forms/referrals.json: referrals.status: the column's CHECK allows "
                      "only ('made','accepted','declined','completed','lost_contact'): use a "
                      "\"select\" with those values, not \"text\"");
}

static void test_forms_not_null_column_must_be_required(void **state)
{
    ctx *c = *state;
    json_object_del(field(c, 0, "alias"), "required");
    expect_refused(c, "pkg/forms/contacts.json: contacts.alias: a NOT NULL column without "
                      "DEFAULT is neither automatic nor a required field, so a form filled in "
                      "without it could not be stored");
}

static void test_forms_primary_key_must_be_filled(void **state)
{
    ctx *c = *state;
    json_object_del(json_object_get(c->forms[2], "auto"), "id");
    expect_refused(c, "pkg/forms/referrals.json: referrals.id: the primary key is neither "
                      "automatic nor a required field, so a form filled in without it could not "
                      "be stored");
}

static void test_forms_team_must_fill_the_scope_column(void **state)
{
    ctx *c = *state;
    json_t *autos = json_object_get(c->forms[0], "auto");
    json_object_set_new(autos, "worker_id", json_string("team"));
    expect_refused(c, "pkg/forms/contacts.json: contacts.worker_id: \"team\" fills the scope "
                      "column (team_id), and this column is not it");
}

static void test_forms_unknown_auto_kind_is_refused(void **state)
{
    ctx *c = *state;
    json_object_set_new(json_object_get(c->forms[0], "auto"), "contacted_at",
                        json_string("today"));
    expect_refused(c, "pkg/forms/contacts.json: contacts.contacted_at: automatic kind must be "
                      "\"uuid\", \"team\", \"worker\" or \"now\"");
}

static void test_forms_column_named_twice_is_refused(void **state)
{
    ctx *c = *state;
    json_object_set_new(json_object_get(c->forms[0], "auto"), "location", json_string("now"));
    expect_refused(c, "pkg/forms/contacts.json: contacts.location: the column is named twice "
                      "(in \"auto\" or another field)");
}

static void test_forms_missing_language_is_named(void **state)
{
    ctx *c = *state;
    json_object_del(json_object_get(field(c, 1, "whereabouts"), "help"), "es");
    expect_refused(c, "pkg/forms/missing_episodes.json: missing_episodes.whereabouts: \"help\" "
                      "lacks language \"es\" (the form's languages are en, es)");
}

static void test_forms_extra_language_is_named(void **state)
{
    ctx *c = *state;
    json_t *label = json_object_get(json_array_get(choice_list(c, 0, "needs"), 2), "label");
    json_object_set_new(label, "fr", json_string("Vêtements"));
    expect_refused(c, "pkg/forms/contacts.json: contacts: choice 3 of list \"needs\" has "
                      "language \"fr\", which is not one of the form's (en, es)");
}

static void test_forms_languages_differ_between_forms(void **state)
{
    ctx *c = *state;
    json_object_del(json_object_get(c->forms[1], "title"), "es");
    expect_refused(c, "pkg/forms/missing_episodes.json: missing_episodes: the form's languages "
                      "(en) differ from the other forms' (en, es)");
}

static void test_forms_empty_text_is_refused(void **state)
{
    ctx *c = *state;
    json_object_set_new(json_object_get(field(c, 2, "outcome"), "label"), "es", json_string(""));
    expect_refused(c, "pkg/forms/referrals.json: referrals.outcome: \"label\" in \"es\" must be "
                      "a non-empty string");
}

static void test_forms_missing_choice_list_is_named(void **state)
{
    ctx *c = *state;
    json_object_set_new(field(c, 0, "gender"), "choices", json_string("genders"));
    expect_refused(c, "pkg/forms/contacts.json: contacts.gender: choice list \"genders\" is not "
                      "in the form's \"choices\"");
}

static void test_forms_repeated_choice_value_is_refused(void **state)
{
    ctx *c = *state;
    json_array_append_new(choice_list(c, 1, "run_factors"), choice("school", "School", "Escuela"));
    expect_refused(c, "pkg/forms/missing_episodes.json: missing_episodes: choice 10 of list "
                      "\"run_factors\" repeats a value of choice 6");
}

static void test_forms_table_not_synced_is_refused(void **state)
{
    ctx *c = *state;
    json_object_set_new(c->forms[2], "table", json_string("visits"));
    expect_refused(c, "pkg/forms/referrals.json: table visits is not a synced table of the schema "
                      "(no such table, or no line in the policy)");
}

static void test_forms_file_must_be_named_after_its_table(void **state)
{
    ctx *c = *state;
    json_object_set_new(c->forms[2], "table", json_string("contacts"));
    expect_refused(c, "pkg/forms/referrals.json: the form for table contacts must be in a file "
                      "named contacts.json");
}

static void test_forms_widget_must_fit_the_column(void **state)
{
    ctx *c = *state;
    json_object_set_new(field(c, 0, "alias"), "widget", json_string("integer"));
    expect_refused(c, "pkg/forms/contacts.json: contacts.alias: widget \"integer\" does not fit a "
                      "column declared TEXT");
}

static void test_forms_link_must_name_a_synced_table(void **state)
{
    ctx *c = *state;
    json_object_set_new(field(c, 0, "referral_id"), "link", json_string("services"));
    expect_refused(c, "pkg/forms/contacts.json: contacts.referral_id: \"link\" must name a synced "
                      "table of the schema");
}

static void test_forms_summary_column_must_exist(void **state)
{
    ctx *c = *state;
    json_array_append_new(json_object_get(c->forms[1], "summary"), json_string("status"));
    expect_refused(c, "pkg/forms/missing_episodes.json: missing_episodes.status: no such column "
                      "in table missing_episodes (\"summary\")");
}

static void test_forms_min_above_max_is_refused(void **state)
{
    ctx *c = *state;
    json_object_set_new(field(c, 0, "age_estimate"), "min", json_integer(31));
    expect_refused(c, "pkg/forms/contacts.json: contacts.age_estimate: \"min\" 31 is above "
                      "\"max\" 30");
}

static void test_forms_bad_json_names_line_and_column(void **state)
{
    ctx *c = *state;
    const char *texts[N_FORMS] = {NULL, "{\n  \"table\": \"missing_episodes\",\n  \"title\" {}\n}",
                                  NULL};
    assert_int_equal(validate_texts(c, texts), STORE_ESCHEMA);
    assert_string_equal(c->err, "pkg/forms/missing_episodes.json: line 3 column 11: "
                                "':' expected near '{'");
}

static void test_forms_duplicate_key_is_refused(void **state)
{
    ctx *c = *state;
    const char *texts[N_FORMS] = {NULL, NULL, "{\"table\": \"referrals\", \"table\": \"referrals\"}"};
    assert_int_equal(validate_texts(c, texts), STORE_ESCHEMA);
    assert_string_equal(c->err, "pkg/forms/referrals.json: line 1 column 30: duplicate object "
                                "key near '\"table\"'");
}

static void test_forms_too_large_to_send_are_refused(void **state)
{
    ctx *c = *state;
    /* a help text of 300 KB: valid, but it could not travel with the schema */
    size_t n = 300u * 1024u;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = '\0';
    json_object_set_new(json_object_get(field(c, 2, "outcome"), "help"), "en", json_string(big));
    free(big);
    int rc = validate(c);
    assert_int_equal(rc, STORE_ESCHEMA);
    assert_null(c->json);
    if (strstr(c->err, "pkg/forms/contacts.json: the forms take ") != c->err ||
        strstr(c->err, " bytes together (compact JSON), more than the 262144 that travel with "
                       "the schema to a device") == NULL)
        fail_msg("message: %s", c->err);
}

/* The IN lists the validator holds choices to, read from CREATE TABLE text. */
static void expect_in_list(const char *sql, const char *column, const char *expected_json)
{
    json_t *values = NULL;
    int rc = forms_check_in_list(sql, column, &values);
    if (expected_json == NULL) {
        assert_int_equal(rc, 0);
        assert_null(values);
        return;
    }
    assert_int_equal(rc, 1);
    char *got = json_dumps(values, JSON_COMPACT);
    assert_string_equal(got, expected_json);
    free(got);
    json_decref(values);
}

static void test_forms_check_in_lists_are_read(void **state)
{
    (void)state;
    expect_in_list("CREATE TABLE t(a TEXT CHECK (a IS NULL OR a IN ('x','y''s', NULL)))", "a",
                   "[\"x\",\"y's\"]");
    expect_in_list("CREATE TABLE t(\"b c\" INTEGER, CHECK (\"b c\" IN (-1, 0, 2)))", "b c",
                   "[-1,0,2]");
    expect_in_list("CREATE TABLE t(a TEXT /* a IN ('no') */ CHECK (a NOT IN ('z')), b)", "a",
                   NULL);
    expect_in_list("CREATE TABLE t(a TEXT CHECK (a IN (SELECT 1)))", "a", NULL);
    expect_in_list("CREATE TABLE t(a TEXT, b TEXT CHECK (b IN ('q')))", "a", NULL);
    expect_in_list("CREATE TABLE t(a TEXT DEFAULT 'a IN (1)' -- b IN ('x')\n)", "a", NULL);
    expect_in_list("CREATE TABLE t(A TEXT CHECK (length(a) < 9 AND [a] IN ('k')))", "a",
                   "[\"k\"]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_forms_examples_are_valid),
        T(test_forms_unknown_column_is_named),
        T(test_forms_unknown_key_is_refused),
        T(test_forms_unknown_top_level_key_is_refused),
        T(test_forms_choice_outside_check_is_refused),
        T(test_forms_check_value_without_choice_is_refused),
        T(test_forms_choice_type_must_match_column),
        T(test_forms_multiselect_on_check_column_is_refused),
        T(test_forms_free_text_on_check_column_is_refused),
        T(test_forms_not_null_column_must_be_required),
        T(test_forms_primary_key_must_be_filled),
        T(test_forms_team_must_fill_the_scope_column),
        T(test_forms_unknown_auto_kind_is_refused),
        T(test_forms_column_named_twice_is_refused),
        T(test_forms_missing_language_is_named),
        T(test_forms_extra_language_is_named),
        T(test_forms_languages_differ_between_forms),
        T(test_forms_empty_text_is_refused),
        T(test_forms_missing_choice_list_is_named),
        T(test_forms_repeated_choice_value_is_refused),
        T(test_forms_table_not_synced_is_refused),
        T(test_forms_file_must_be_named_after_its_table),
        T(test_forms_widget_must_fit_the_column),
        T(test_forms_link_must_name_a_synced_table),
        T(test_forms_summary_column_must_exist),
        T(test_forms_min_above_max_is_refused),
        T(test_forms_bad_json_names_line_and_column),
        T(test_forms_duplicate_key_is_refused),
        T(test_forms_too_large_to_send_are_refused),
        cmocka_unit_test(test_forms_check_in_lists_are_read),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
