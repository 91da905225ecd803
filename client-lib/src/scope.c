/* Refusing early what the server would refuse later: the worker's teams (from ENROLLED and
 * WELCOME) and the check at commit that every synced row written stays in them and keeps the
 * declared type of its primary key. A write the server would refuse is refused here, while
 * the worker is still looking at it, instead of going to quarantine after a sync. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static int step_library(outpost_replica *r, sqlite3_stmt *stmt)
{
    enum replica_mode saved = r->mode;
    int rc;

    r->mode = MODE_LIBRARY;
    rc = sqlite3_step(stmt);
    r->mode = saved;
    return rc;
}

int scope_worker_store(outpost_replica *r, const char *worker_id)
{
    sqlite3_stmt *ins = NULL;
    int rc;

    if (worker_id == NULL)
        return OUTPOST_OK; /* an older server: what is known stays */
    rc = replica_prepare(r, "INSERT OR REPLACE INTO _outpost_worker(id, worker) VALUES(1, ?1)",
                         &ins);
    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_text(ins, 1, worker_id, -1, SQLITE_STATIC);
    rc = step_library(r, ins);
    sqlite3_finalize(ins);
    return rc == SQLITE_DONE ? OUTPOST_OK : replica_fail_sqlite(r, rc, "storing the worker");
}

int scope_teams_store(outpost_replica *r, const proto_teams *teams)
{
    sqlite3_stmt *ins = NULL;
    int rc;

    if (teams->n > 0 && teams->names == NULL)
        return replica_fail(r, OUTPOST_EPROTO, "the server listed %u teams but sent none",
                            (unsigned)teams->n);
    rc = replica_begin(r);
    if (rc != OUTPOST_OK)
        return rc;
    rc = replica_exec(r, "DELETE FROM _outpost_teams");
    if (rc == OUTPOST_OK)
        rc = replica_prepare(r, "INSERT OR IGNORE INTO _outpost_teams(name) VALUES(?1)", &ins);
    for (uint32_t i = 0; rc == OUTPOST_OK && i < teams->n; i++) {
        if (teams->names[i] == NULL)
            continue;
        sqlite3_bind_text(ins, 1, teams->names[i], -1, SQLITE_STATIC);
        rc = step_library(r, ins);
        sqlite3_reset(ins);
        rc = rc == SQLITE_DONE ? OUTPOST_OK : replica_fail_sqlite(r, rc, "storing the teams");
    }
    sqlite3_finalize(ins);
    if (rc == OUTPOST_OK)
        rc = replica_commit(r);
    else
        replica_rollback(r);
    return rc;
}

/* What the check needs to know about one synced table. */
typedef struct table_rules {
    char name[128];
    int scope_col;       /* -1: none */
    char scope_name[128];
    uint64_t pk_text;    /* bit c: column c is a primary key column with TEXT affinity */
} table_rules;

/* SQLite's affinity rules (datatype3.html 3.1): INT first, then CHAR, CLOB or TEXT. */
static bool decl_is_text(const unsigned char *decl)
{
    char up[128];
    size_t n = 0;

    for (; decl && decl[n] && n + 1 < sizeof up; n++)
        up[n] = (char)(decl[n] >= 'a' && decl[n] <= 'z' ? decl[n] - 32 : decl[n]);
    up[n] = '\0';
    return strstr(up, "INT") == NULL &&
           (strstr(up, "CHAR") || strstr(up, "CLOB") || strstr(up, "TEXT"));
}

static int rules_load(outpost_replica *r, const char *table, table_rules *out)
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", table);
    out->scope_col = -1;
    rc = replica_prepare(r, "SELECT p.cid, p.name, p.type, p.pk,"
                            " p.name = (SELECT scope_col FROM _outpost_tables WHERE name = ?1)"
                            " FROM pragma_table_info(?1) p ORDER BY p.cid", &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC);
    while ((rc = step_library(r, stmt)) == SQLITE_ROW) {
        int cid = sqlite3_column_int(stmt, 0);

        if (sqlite3_column_int(stmt, 4) == 1) {
            out->scope_col = cid;
            snprintf(out->scope_name, sizeof out->scope_name, "%s",
                     (const char *)sqlite3_column_text(stmt, 1));
        }
        if (sqlite3_column_int(stmt, 3) > 0 && cid < 64 && decl_is_text(sqlite3_column_text(stmt, 2)))
            out->pk_text |= (uint64_t)1 << cid;
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? OUTPOST_OK : replica_fail_sqlite(r, rc, "reading a table's rules");
}

static const char *type_name(int type)
{
    switch (type) {
    case SQLITE_INTEGER: return "an integer";
    case SQLITE_FLOAT: return "a real number";
    case SQLITE_BLOB: return "a blob";
    case SQLITE_NULL: return "NULL";
    default: return "text";
    }
}

/* Refuses the write with a message naming the column and value, and the worker's teams. */
static int scope_refuse(outpost_replica *r, const table_rules *t, sqlite3_value *v)
{
    sqlite3_stmt *stmt = NULL;
    char teams[96] = "";
    int rc = replica_prepare(r, "SELECT group_concat(name, ', ') FROM _outpost_teams", &stmt);

    if (rc == OUTPOST_OK && step_library(r, stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0))
        snprintf(teams, sizeof teams, "%s", (const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    if (sqlite3_value_type(v) == SQLITE_TEXT)
        return replica_fail(r, OUTPOST_ESCOPE, "%.60s.%.60s = '%.60s' is not one of this worker's "
                            "teams (%s); the server would refuse it", t->name, t->scope_name,
                            (const char *)sqlite3_value_text(v), teams);
    return replica_fail(r, OUTPOST_ESCOPE, "%.60s.%.60s is %s, not one of this worker's teams "
                        "(%s); the server would refuse it", t->name, t->scope_name,
                        type_name(sqlite3_value_type(v)), teams);
}

/* Refuses an insert whose TEXT key column col holds another type, naming the column. */
static int key_refuse(outpost_replica *r, const char *table, int col, sqlite3_value *v)
{
    sqlite3_stmt *stmt = NULL;
    char name[64] = "?";
    int rc = replica_prepare(r, "SELECT name FROM pragma_table_info(?1) WHERE cid = ?2", &stmt);

    if (rc == OUTPOST_OK) {
        sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC);
        sqlite3_bind_int(stmt, 2, col);
        if (step_library(r, stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0))
            snprintf(name, sizeof name, "%s", (const char *)sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return replica_fail(r, OUTPOST_ESCOPE, "%.60s.%s: the primary key is declared TEXT but the "
                        "row's key is %s; the server would refuse it", table, name,
                        type_name(sqlite3_value_type(v)));
}

int scope_check(outpost_replica *r, const void *changeset, int n_bytes)
{
    sqlite3_changeset_iter *it = NULL;
    sqlite3_stmt *member = NULL;
    table_rules rules;
    int64_t n_teams = 0;
    int rc;

    rc = replica_query_int64(r, "SELECT count(*) FROM _outpost_teams", "reading the teams",
                             &n_teams);
    if (rc == OUTPOST_OK && n_teams > 0)
        rc = replica_prepare(r, "SELECT 1 FROM _outpost_teams WHERE name = ?1", &member);
    if (rc != OUTPOST_OK)
        return rc;
    rules.name[0] = '\0';
    rc = sqlite3changeset_start(&it, n_bytes, (void *)changeset);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(member);
        return replica_fail(r, rc == SQLITE_NOMEM ? OUTPOST_ENOMEM : OUTPOST_ECORRUPT,
                            "reading the transaction's changes");
    }
    rc = OUTPOST_OK;
    while (rc == OUTPOST_OK && sqlite3changeset_next(it) == SQLITE_ROW) {
        const char *table;
        int n_col, op, indirect;

        sqlite3changeset_op(it, &table, &n_col, &op, &indirect);
        if (op == SQLITE_DELETE)
            continue; /* a row this device holds is in its scope; deleting it changes no team */
        if (strcmp(rules.name, table) != 0)
            rc = rules_load(r, table, &rules);
        for (int c = 0; rc == OUTPOST_OK && op == SQLITE_INSERT && c < n_col && c < 64; c++) {
            sqlite3_value *v = NULL;

            if (!(rules.pk_text >> c & 1) || sqlite3changeset_new(it, c, &v) != SQLITE_OK || !v)
                continue;
            if (sqlite3_value_type(v) != SQLITE_TEXT)
                rc = key_refuse(r, table, c, v);
        }
        if (rc == OUTPOST_OK && member && rules.scope_col >= 0 && rules.scope_col < n_col) {
            sqlite3_value *v = NULL;

            if (sqlite3changeset_new(it, rules.scope_col, &v) != SQLITE_OK || v == NULL)
                continue; /* an UPDATE that leaves the scope alone */
            if (sqlite3_value_type(v) == SQLITE_TEXT) {
                sqlite3_bind_value(member, 1, v);
                int found = step_library(r, member);

                sqlite3_reset(member);
                if (found == SQLITE_ROW)
                    continue;
                if (found != SQLITE_DONE) {
                    rc = replica_fail_sqlite(r, found, "reading the teams");
                    break;
                }
            }
            rc = scope_refuse(r, &rules, v);
        }
    }
    sqlite3changeset_finalize(it);
    sqlite3_finalize(member);
    return rc;
}
