/*
 * The merge engine's writes to the synced data tables. Identifiers come from the stored schema
 * and are always quoted; values are always bound, never formatted into SQL.
 */
#include <stdio.h>
#include <string.h>

#include "merge_internal.h"

enum { SQL_MAX = 16384 };

/* A failed statement: constraint failures refuse the push; anything else fails it. */
static int step_result(push_ctx *c, int rc, const store_table *t, const proto_value *pk,
                       const proto_change *ch, const char *what)
{
    if (rc == SQLITE_DONE)
        return 0;
    if ((rc & 0xff) == SQLITE_CONSTRAINT || (rc & 0xff) == SQLITE_MISMATCH) {
        /* SQLite's text names the constraint and column, never the value. */
        char msg[200];
        snprintf(msg, sizeof msg, "the store refused the row: %s", sqlite3_errmsg(c->st->db));
        return merge_reject(c, (store_table *)t, t->name, pk, PROTO_ERR_CONSTRAINT, msg, ch);
    }
    return store_fail_sqlite(c->st, rc, what);
}

/* INSERT of the first n values (n < t->n_cols for a device on an older schema). */
int merge_apply_insert(push_ctx *c, store_table *t, const proto_value *vals, uint32_t n,
                       const proto_value *pk, const proto_change *ch)
{
    int out = store_table_prepare(c->st, t);
    if (out != 0)
        return out;
    sqlite3_stmt *s = t->ins_row;
    bool dynamic = n < t->n_cols;
    if (dynamic) {
        char sql[SQL_MAX], q[512];
        size_t at = 0;
        if (store_quote_ident(q, sizeof q, t->name) != 0)
            return store_fail(c->st, STORE_EINVAL, "table name too long");
        at += (size_t)snprintf(sql + at, sizeof sql - at, "INSERT INTO %s(", q);
        for (uint32_t i = 0; i < n && at < sizeof sql; i++) {
            if (store_quote_ident(q, sizeof q, t->cols[i]) != 0)
                return store_fail(c->st, STORE_EINVAL, "column name too long");
            at += (size_t)snprintf(sql + at, sizeof sql - at, "%s%s", i ? ", " : "", q);
        }
        for (uint32_t i = 0; i < n && at < sizeof sql; i++)
            at +=
                (size_t)snprintf(sql + at, sizeof sql - at, "%s?%u", i ? ", " : ") VALUES(", i + 1);
        if (at >= sizeof sql - 2)
            return store_fail(c->st, STORE_EINVAL, "table %s: statement too long", t->name);
        memcpy(sql + at, ")", 2);
        int rc = sqlite3_prepare_v2(c->st->db, sql, -1, &s, NULL);
        if (rc != SQLITE_OK)
            return store_fail_sqlite(c->st, rc, "prepare insert");
    }
    for (uint32_t i = 0; i < n; i++)
        store_value_bind(s, (int)i + 1, &vals[i]);
    int rc = sqlite3_step(s);
    if (dynamic) {
        sqlite3_finalize(s);
    } else {
        sqlite3_reset(s); /* every parameter is bound again before the next step */
    }
    return step_result(c, rc, t, pk, ch, "insert row");
}

/* UPDATE t SET the columns flagged in set[] to vals[] WHERE pk. */
int merge_apply_update(push_ctx *c, const store_table *t, const bool *set, const proto_value *vals,
                       const proto_value *pk, const proto_change *ch)
{
    char sql[SQL_MAX], q[512];
    size_t at = 0;
    if (store_quote_ident(q, sizeof q, t->name) != 0)
        return store_fail(c->st, STORE_EINVAL, "table name too long");
    at += (size_t)snprintf(sql, sizeof sql, "UPDATE %s SET ", q);
    int param = 0;
    for (uint32_t i = 0; i < t->n_cols && at < sizeof sql; i++) {
        if (!set[i])
            continue;
        if (store_quote_ident(q, sizeof q, t->cols[i]) != 0)
            return store_fail(c->st, STORE_EINVAL, "column name too long");
        at +=
            (size_t)snprintf(sql + at, sizeof sql - at, "%s%s = ?%u", param ? ", " : "", q, i + 1);
        param++;
    }
    for (uint32_t k = 0; k < t->n_pk && at < sizeof sql; k++) {
        if (store_quote_ident(q, sizeof q, t->cols[t->pk[k]]) != 0)
            return store_fail(c->st, STORE_EINVAL, "column name too long");
        at += (size_t)snprintf(sql + at, sizeof sql - at, "%s%s IS ?%u", k ? " AND " : " WHERE ", q,
                               t->n_cols + k + 1);
    }
    if (at >= sizeof sql)
        return store_fail(c->st, STORE_EINVAL, "table %s: statement too long", t->name);
    if (param == 0)
        return 0;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(c->st->db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return store_fail_sqlite(c->st, rc, "prepare update");
    for (uint32_t i = 0; i < t->n_cols; i++)
        if (set[i])
            store_value_bind(s, (int)i + 1, &vals[i]);
    for (uint32_t k = 0; k < t->n_pk; k++)
        store_value_bind(s, (int)(t->n_cols + k + 1), &pk[k]);
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return step_result(c, rc, t, pk, ch, "update row");
}

int merge_apply_delete(push_ctx *c, store_table *t, const proto_value *pk, const proto_change *ch)
{
    int out = store_table_prepare(c->st, t);
    if (out != 0)
        return out;
    for (uint32_t k = 0; k < t->n_pk; k++)
        store_value_bind(t->del_row, (int)k + 1, &pk[k]);
    int rc = sqlite3_step(t->del_row);
    sqlite3_reset(t->del_row);
    sqlite3_clear_bindings(t->del_row);
    return step_result(c, rc, t, pk, ch, "delete row");
}
