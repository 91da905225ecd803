/*
 * Watch rules in the central store (store_watch.c): kept at outpost-admin init/upgrade, sent to
 * devices with the schema, evaluated for the dashboard's "Needs attention" view within a
 * supervisor's teams. Same conventions as store.h.
 */
#ifndef OUTPOST_STORE_WATCH_H
#define OUTPOST_STORE_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

/* Checks watch.json text against a schema and policy before either is installed (so that
 * outpost-admin changes nothing when a rule is wrong). STORE_ESCHEMA with "rule ID: problem"
 * in err. */
int store_watch_check(const char *schema_sql, const char *policy_text, const char *json,
                      char *err, size_t err_size);

/* init or upgrade (init), or only their checks (check_only), of a schema package with its forms
 * (as store_init_schema_forms) and watch rules (watch_json; NULL keeps the rules as they are).
 * Changed rules alone are a new schema version, so that devices receive them. A rule that does
 * not compile against the new tables is STORE_ESCHEMA naming it, and nothing is applied. */
int store_schema_package(store *st, bool init, bool check_only, const char *schema_sql,
                         const char *policy_text, const store_form_file *files, size_t n_files,
                         const char *watch_json);

/* For schema.c, inside its write transaction, after the tables are installed: checks json
 * against them and keeps it unless it equals the rules kept; *out_changed says whether it did. */
int store_watch_keep_in_tx(store *st, const char *json, bool *out_changed);

/* Checks the rules against the store's current tables and keeps them (replacing the rules kept
 * before). STORE_ESCHEMA naming the rule and problem; nothing is kept then. */
int store_watch_set(store *st, const char *json);

/* The rules kept, as the JSON text given to store_watch_set; *out_json is NULL when there are
 * none. Free with free(). */
int store_watch_json(store *st, char **out_json);

/* Calls cb for each rule kept, in file order: id, severity and title JSON ({"en": ...}). */
typedef int (*store_watch_rule_cb)(const char *rule_id, const char *severity,
                                   const char *title_json, void *user_data);
int store_watch_rules(store *st, store_watch_rule_cb cb, void *user_data);

typedef struct store_watch_item {
    const char *rule_id;
    const char *severity;   /* high, medium, low */
    const char *title_json; /* {"en": ..., "es": ...} */
    const char *table;
    const char *team;
    const char *record_id;
    const char *alias;      /* NULL when the rule names no alias column or it is NULL */
    const char *due;        /* "YYYY-MM-DD HH:MM:SS" UTC: open since then */
} store_watch_item;

/* The open items within the given teams at now_ms, oldest due first. A non-zero return from cb
 * stops the walk and is returned. */
typedef int (*store_watch_item_cb)(const store_watch_item *item, void *user_data);
int store_watch_items(store *st, const char (*teams)[64], uint32_t n_teams, uint64_t now_ms,
                      store_watch_item_cb cb, void *user_data);

/* Per team, rule and week (Monday, "YYYY-MM-DD"): items that fell due that week between
 * since_ms and now_ms, and how many of them are still open. */
typedef int (*store_watch_count_cb)(const char *team, const char *rule_id, const char *week,
                                    uint64_t n_due, uint64_t n_open, void *user_data);
int store_watch_counts(store *st, const char (*teams)[64], uint32_t n_teams, uint64_t now_ms,
                       uint64_t since_ms, store_watch_count_cb cb, void *user_data);

#endif /* OUTPOST_STORE_WATCH_H */
