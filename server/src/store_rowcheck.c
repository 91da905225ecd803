/*
 * SQLite's rules for a synced row, from an always-empty in-memory copy of the schema's tables
 * (store_rowcheck.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "store_rowcheck.h"
#include "store_values.h"

/* A table's two statements for rows of its first n columns, kept for the next row: the merge
 * checks every row of a push, mostly of one table and width. */
enum { ROWCHECK_KEPT = 8 };
typedef struct rowcheck_stmts {
    char *table;
    uint32_t n;
    sqlite3_stmt *ins, *sel;
} rowcheck_stmts;

struct store_rowcheck {
    sqlite3 *db;
    sqlite3_stmt *savepoint, *rollback, *release;
    rowcheck_stmts kept[ROWCHECK_KEPT];
    uint32_t next; /* the slot replaced next when none matches */
};

int store_rowcheck_open(const char *schema_sql, store_rowcheck **out_rc, char *err,
                        size_t err_size)
{
    *out_rc = NULL;
    store_rowcheck *rc = calloc(1, sizeof *rc);
    if (rc == NULL) {
        snprintf(err, err_size, "out of memory");
        return STORE_ENOMEM;
    }
    int src = sqlite3_open_v2(":memory:", &rc->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY,
                              NULL);
    if (src == SQLITE_OK) {
        sqlite3_extended_result_codes(rc->db, 1);
        src = sqlite3_exec(rc->db, "PRAGMA trusted_schema=OFF;", NULL, NULL, NULL);
    }
    if (src == SQLITE_OK)
        src = sqlite3_exec(rc->db, schema_sql, NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        snprintf(err, err_size, "row check: %s",
                 rc->db != NULL ? sqlite3_errmsg(rc->db) : "cannot open");
        store_rowcheck_close(rc);
        return store_rc_from_sqlite(src) == STORE_ENOMEM ? STORE_ENOMEM : STORE_ESCHEMA;
    }
    *out_rc = rc;
    return STORE_OK;
}

void store_rowcheck_close(store_rowcheck *rc)
{
    if (rc == NULL)
        return;
    for (uint32_t i = 0; i < ROWCHECK_KEPT; i++) {
        sqlite3_finalize(rc->kept[i].ins);
        sqlite3_finalize(rc->kept[i].sel);
        free(rc->kept[i].table);
    }
    sqlite3_finalize(rc->savepoint);
    sqlite3_finalize(rc->rollback);
    sqlite3_finalize(rc->release);
    sqlite3_close(rc->db);
    free(rc);
}

/* "INSERT INTO t(c1, ..., cn) VALUES(?1, ..., ?n)" and "SELECT c1, ..., c_all FROM t" into
 * malloc'd strings. */
static int build_sql(const char *table, const char *const *cols, uint32_t n_cols, uint32_t n,
                     char **out_insert, char **out_select)
{
    char q[512];
    size_t len_i = 0, len_s = 0;
    FILE *fi = open_memstream(out_insert, &len_i);
    FILE *fs = open_memstream(out_select, &len_s);
    int out = fi != NULL && fs != NULL ? STORE_OK : STORE_ENOMEM;
    if (out == STORE_OK && store_quote_ident(q, sizeof q, table) != 0)
        out = STORE_EINVAL;
    if (out == STORE_OK) {
        fprintf(fi, "INSERT INTO %s", q);
        fputs("SELECT ", fs);
        for (uint32_t i = 0; out == STORE_OK && i < n_cols; i++) {
            if (store_quote_ident(q, sizeof q, cols[i]) != 0) {
                out = STORE_EINVAL;
                break;
            }
            if (i < n)
                fprintf(fi, "%s%s", i ? ", " : "(", q);
            fprintf(fs, "%s%s", i ? ", " : "", q);
        }
        if (n == 0)
            fputs(" DEFAULT VALUES", fi);
        for (uint32_t i = 0; i < n; i++)
            fprintf(fi, "%s?%u", i ? ", " : ") VALUES(", i + 1);
        if (n > 0)
            fputc(')', fi);
        if (store_quote_ident(q, sizeof q, table) == 0)
            fprintf(fs, " FROM %s", q);
    }
    if (fi != NULL && (ferror(fi) || fclose(fi) != 0))
        out = STORE_ENOMEM;
    if (fs != NULL && (ferror(fs) || fclose(fs) != 0))
        out = STORE_ENOMEM;
    return out;
}

/* The kept statements for (table, n), prepared on first use; NULL with src set on failure. */
static rowcheck_stmts *stmts_for(store_rowcheck *rc, const char *table, const char *const *cols,
                                 uint32_t n_cols, uint32_t n, int *src, int *res)
{
    for (uint32_t i = 0; i < ROWCHECK_KEPT; i++)
        if (rc->kept[i].table != NULL && rc->kept[i].n == n && strcmp(rc->kept[i].table, table) == 0)
            return &rc->kept[i];
    rowcheck_stmts *k = &rc->kept[rc->next];
    rc->next = (rc->next + 1) % ROWCHECK_KEPT;
    sqlite3_finalize(k->ins);
    sqlite3_finalize(k->sel);
    free(k->table);
    memset(k, 0, sizeof *k);
    char *insert_sql = NULL, *select_sql = NULL;
    *res = build_sql(table, cols, n_cols, n, &insert_sql, &select_sql);
    if (*res == STORE_OK) {
        *src = sqlite3_prepare_v3(rc->db, insert_sql, -1, SQLITE_PREPARE_PERSISTENT, &k->ins, NULL);
        if (*src == SQLITE_OK)
            *src = sqlite3_prepare_v3(rc->db, select_sql, -1, SQLITE_PREPARE_PERSISTENT, &k->sel,
                                      NULL);
        k->table = *src == SQLITE_OK ? strdup(table) : NULL;
        if (*src == SQLITE_OK && k->table == NULL)
            *res = STORE_ENOMEM;
    }
    free(insert_sql);
    free(select_sql);
    if (*res == STORE_OK && *src == SQLITE_OK) {
        k->n = n;
        return k;
    }
    sqlite3_finalize(k->ins);
    sqlite3_finalize(k->sel);
    free(k->table);
    memset(k, 0, sizeof *k);
    return NULL;
}

static int step_kept(sqlite3 *db, sqlite3_stmt **s, const char *sql)
{
    int src = *s != NULL ? SQLITE_OK : sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, s,
                                                          NULL);
    if (src == SQLITE_OK) {
        src = sqlite3_step(*s);
        sqlite3_reset(*s);
    }
    return src == SQLITE_DONE ? SQLITE_OK : src;
}

int store_rowcheck_row(store_rowcheck *rc, const char *table, const char *const *cols,
                       uint32_t n_cols, const proto_value *vals, uint32_t n, store_arena *arena,
                       proto_value *out, char *msg, size_t msg_size)
{
    msg[0] = 0;
    if (n > n_cols)
        n = n_cols;
    int res = STORE_OK, src = SQLITE_OK;
    rowcheck_stmts *k = stmts_for(rc, table, cols, n_cols, n, &src, &res);
    if (res != STORE_OK) {
        snprintf(msg, msg_size, "row check of %s: %s", table,
                 res == STORE_ENOMEM ? "out of memory" : "name too long");
        return res;
    }
    sqlite3_stmt *ins = k != NULL ? k->ins : NULL, *sel = k != NULL ? k->sel : NULL;
    if (src == SQLITE_OK)
        src = step_kept(rc->db, &rc->savepoint, "SAVEPOINT rowcheck");
    for (uint32_t i = 0; src == SQLITE_OK && i < n; i++)
        src = store_value_bind(ins, (int)i + 1, &vals[i]);
    if (src == SQLITE_OK)
        src = sqlite3_step(ins);
    if (src == SQLITE_DONE)
        src = sqlite3_step(sel);
    if (src == SQLITE_ROW) {
        src = SQLITE_OK;
        for (uint32_t i = 0; res == STORE_OK && i < n_cols; i++)
            res = store_value_column(arena, sel, (int)i, &out[i]);
        if (res != STORE_OK)
            snprintf(msg, msg_size, "row check of %s: out of memory", table);
    } else if ((src & 0xff) == SQLITE_CONSTRAINT || (src & 0xff) == SQLITE_MISMATCH) {
        res = STORE_ROWCHECK_REFUSED;
        snprintf(msg, msg_size, "%s", sqlite3_errmsg(rc->db));
    } else {
        res = store_rc_from_sqlite(src) == STORE_ENOMEM ? STORE_ENOMEM : STORE_EIO;
        snprintf(msg, msg_size, "row check of %s: %s", table, sqlite3_errmsg(rc->db));
    }
    if (ins != NULL) {
        sqlite3_reset(ins);
        sqlite3_clear_bindings(ins); /* the values are the caller's */
    }
    if (sel != NULL)
        sqlite3_reset(sel);
    /* The copy stays empty whatever happened. */
    step_kept(rc->db, &rc->rollback, "ROLLBACK TO rowcheck");
    step_kept(rc->db, &rc->release, "RELEASE rowcheck");
    return res;
}
