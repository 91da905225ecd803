/*
 * Watch rules on the device: kept with the schema, evaluated on the replica for
 * outpost_watch_items(). The checks and statements are the server's own (server/src/watch.c).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "watch.h"

int watch_keep(outpost_replica *r, const char *watch_json)
{
    int rc = replica_exec(r, "CREATE TABLE IF NOT EXISTS _outpost_watch("
                             "  id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL)");
    if (rc != OUTPOST_OK)
        return rc;
    if (watch_json == NULL)
        return replica_exec(r, "DELETE FROM _outpost_watch");
    sqlite3_stmt *stmt = NULL;
    enum replica_mode saved = r->mode;
    r->mode = MODE_LIBRARY;
    int src = sqlite3_prepare_v2(r->db, "INSERT OR REPLACE INTO _outpost_watch VALUES(1, ?1)", -1,
                                 &stmt, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_bind_text(stmt, 1, watch_json, -1, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    r->mode = saved;
    return src == SQLITE_DONE ? OUTPOST_OK : replica_fail_sqlite(r, src, "keeping the watch rules");
}

/* The kept rules' JSON (NULL when none); free with free(). */
static int kept_json(outpost_replica *r, char **out_json)
{
    sqlite3_stmt *stmt = NULL;
    *out_json = NULL;
    /* A replica whose schema came without rules has no table: no rules. */
    if (sqlite3_prepare_v2(r->db, "SELECT json FROM _outpost_watch WHERE id = 1", -1, &stmt,
                           NULL) != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return OUTPOST_OK;
    }
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *out_json = strdup((const char *)sqlite3_column_text(stmt, 0));
        rc = *out_json ? OUTPOST_OK : replica_fail(r, OUTPOST_ENOMEM, "out of memory");
    } else {
        rc = rc == SQLITE_DONE ? OUTPOST_OK : replica_fail_sqlite(r, rc, "reading the watch rules");
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* The scope column the schema gave table (copied into out), or an error. */
static int scope_of(outpost_replica *r, const char *table, char *out, size_t size)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(r->db, "SELECT scope_col FROM _outpost_tables WHERE name = ?1",
                                -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    const unsigned char *scope = rc == SQLITE_ROW ? sqlite3_column_text(stmt, 0) : NULL;
    int out_rc = OUTPOST_OK;
    if (scope == NULL)
        out_rc = replica_fail(r, OUTPOST_ESCHEMA, "watch rules: no synced table %.64s", table);
    else if (strlen((const char *)scope) >= size)
        out_rc = replica_fail(r, OUTPOST_ESCHEMA, "watch rules: scope column name too long");
    else
        memcpy(out, scope, strlen((const char *)scope) + 1);
    sqlite3_finalize(stmt);
    return out_rc;
}

/* Evaluates one rule for every team of this device's worker. */
static int rule_items(outpost_replica *r, const watch_rule *rule, uint64_t now_ms,
                      outpost_watch_cb cb, void *user_data)
{
    char scope[256], err[512];
    sqlite3_stmt *stmt = NULL, *teams = NULL;
    int rc = scope_of(r, rule->table, scope, sizeof scope);
    if (rc != OUTPOST_OK)
        return rc;
    watch_restore restore = {NULL, NULL};
    if (watch_rule_prepare(r->db, rule, scope, &restore, &stmt, err, sizeof err) != 0) {
        replica_guard_install(r);
        return replica_fail(r, OUTPOST_ESCHEMA, "watch rules: %s", err);
    }
    replica_guard_install(r);
    int src = sqlite3_prepare_v2(r->db, "SELECT name FROM _outpost_teams ORDER BY name", -1,
                                 &teams, NULL);
    while (rc == OUTPOST_OK && src == SQLITE_OK && (src = sqlite3_step(teams)) == SQLITE_ROW) {
        src = SQLITE_OK;
        const char *team = (const char *)sqlite3_column_text(teams, 0);
        sqlite3_reset(stmt);
        int step = watch_bind(stmt, rule, team, now_ms, 0);
        while (rc == OUTPOST_OK && step == SQLITE_OK &&
               (step = sqlite3_step(stmt)) == SQLITE_ROW) {
            step = SQLITE_OK;
            char *unreadable = NULL;
            if (sqlite3_column_type(stmt, WATCH_COL_UNREADABLE) != SQLITE_NULL &&
                (unreadable = watch_unreadable_title(
                     rule, (const char *)sqlite3_column_text(stmt, WATCH_COL_UNREADABLE))) ==
                    NULL) {
                rc = replica_fail(r, OUTPOST_ENOMEM, "out of memory");
                break;
            }
            outpost_watch_item item = {
                rule->id,
                unreadable ? WATCH_UNREADABLE_SEVERITY : rule->severity,
                unreadable ? unreadable : rule->title_json,
                rule->table,
                team,
                (const char *)sqlite3_column_text(stmt, WATCH_COL_KEY),
                (const char *)sqlite3_column_text(stmt, WATCH_COL_ALIAS),
                (const char *)sqlite3_column_text(stmt, WATCH_COL_DUE),
            };
            rc = cb(&item, user_data);
            free(unreadable);
        }
        if (rc == OUTPOST_OK && step != SQLITE_DONE)
            rc = replica_fail_sqlite(r, step, "evaluating a watch rule");
    }
    if (rc == OUTPOST_OK && src != SQLITE_DONE)
        rc = replica_fail_sqlite(r, src, "reading the teams");
    sqlite3_finalize(teams);
    sqlite3_finalize(stmt);
    return rc;
}

int outpost_watch_items(outpost_replica *replica, uint64_t now_ms, outpost_watch_cb cb,
                        void *user_data)
{
    if (replica == NULL || cb == NULL)
        return OUTPOST_EINVAL;
    int rc = replica_check_usable(replica);
    char *json = NULL;
    if (rc == OUTPOST_OK)
        rc = kept_json(replica, &json);
    if (rc != OUTPOST_OK || json == NULL)
        return rc;
    watch_rules rules;
    char err[512];
    if (watch_rules_parse(json, &rules, err, sizeof err) != 0) {
        free(json);
        return replica_fail(replica, OUTPOST_ESCHEMA, "watch rules: %s", err);
    }
    free(json);
    for (uint32_t i = 0; rc == OUTPOST_OK && i < rules.n; i++)
        rc = rule_items(replica, &rules.rules[i], now_ms, cb, user_data);
    watch_rules_free(&rules);
    return rc;
}
