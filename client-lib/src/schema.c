/* Installing the server's schema and its additive upgrades.
 *
 * Every CREATE TABLE from the server is first run in a private in-memory database, where it can
 * harm nothing, and checked there: one ordinary table of the right name, the columns and primary
 * key the message lists, a primary key devices can create offline. Only then does it touch the
 * replica, in one transaction with the library's record of the schema. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static bool name_reserved(const char *name)
{
    return sqlite3_strnicmp(name, OUTPOST_RESERVED_PREFIX, sizeof OUTPOST_RESERVED_PREFIX - 1) == 0 ||
           sqlite3_strnicmp(name, "sqlite_", 7) == 0;
}

/* The message itself: every pointer present, indexes in range, names unique and not reserved. */
static int schema_check_message(outpost_replica *r, const proto_schema *s)
{
    if (s->version == 0)
        return replica_fail(r, OUTPOST_EINVAL, "schema version 0 is not a version");
    if (s->n_tables > 0 && s->tables == NULL)
        return replica_fail(r, OUTPOST_EINVAL, "schema lists %u tables but carries none",
                            (unsigned)s->n_tables);
    for (uint32_t i = 0; i < s->n_tables; i++) {
        const proto_schema_table *t = &s->tables[i];

        if (t->name == NULL || t->name[0] == '\0' || t->create_sql == NULL)
            return replica_fail(r, OUTPOST_EINVAL, "schema table %u has no name or no CREATE TABLE",
                                (unsigned)i);
        if (name_reserved(t->name))
            return replica_fail(r, OUTPOST_ESCHEMA, "table name %s is reserved", t->name);
        if (t->n_columns == 0 || t->columns == NULL)
            return replica_fail(r, OUTPOST_EINVAL, "table %s lists no columns", t->name);
        for (uint32_t c = 0; c < t->n_columns; c++) {
            if (t->columns[c] == NULL)
                return replica_fail(r, OUTPOST_EINVAL, "table %s: column %u has no name", t->name,
                                    (unsigned)c);
        }
        if (t->n_pk == 0 || t->pk == NULL)
            return replica_fail(r, OUTPOST_ESCHEMA,
                                "table %s has no primary key; synced tables need an explicit "
                                "non-integer PRIMARY KEY", t->name);
        for (uint32_t k = 0; k < t->n_pk; k++) {
            if (t->pk[k] >= t->n_columns)
                return replica_fail(r, OUTPOST_EINVAL, "table %s: primary key index %u out of range",
                                    t->name, (unsigned)t->pk[k]);
        }
        for (uint32_t j = 0; j < i; j++) {
            if (sqlite3_stricmp(s->tables[j].name, t->name) == 0)
                return replica_fail(r, OUTPOST_EINVAL, "table %s listed twice", t->name);
        }
    }
    return OUTPOST_OK;
}

/* Runs create_sql in the scratch database and checks it made exactly the table it claims. */
static int scratch_create(outpost_replica *r, sqlite3 *scratch, const proto_schema_table *t)
{
    sqlite3_stmt *stmt = NULL;
    const char *tail = NULL;
    int rc;

    rc = sqlite3_prepare_v2(scratch, t->create_sql, -1, &stmt, &tail);
    if (rc != SQLITE_OK || stmt == NULL) {
        rc = replica_fail(r, rc == SQLITE_NOMEM ? OUTPOST_ENOMEM : OUTPOST_ESCHEMA,
                          "table %s: CREATE TABLE does not compile: %s", t->name,
                          stmt == NULL && rc == SQLITE_OK ? "empty" : sqlite3_errmsg(scratch));
        sqlite3_finalize(stmt);
        return rc;
    }
    while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == '\r' || *tail == ';'))
        tail++;
    if (tail && *tail) {
        sqlite3_finalize(stmt);
        return replica_fail(r, OUTPOST_ESCHEMA, "table %s: create_sql holds more than one statement",
                            t->name);
    }
    rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return replica_fail(r, rc == SQLITE_NOMEM ? OUTPOST_ENOMEM : OUTPOST_ESCHEMA,
                            "table %s: CREATE TABLE failed: %s", t->name, sqlite3_errmsg(scratch));

    rc = sqlite3_prepare_v2(scratch,
                            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1"
                            " AND sql LIKE 'CREATE TABLE%'", -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return replica_fail(r, sqlite_to_outpost(rc), "checking table %s: %s", t->name,
                            sqlite3_errmsg(scratch));
    sqlite3_bind_text(stmt, 1, t->name, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        rc = replica_fail(r, sqlite_to_outpost(rc), "checking table %s: %s", t->name,
                          sqlite3_errmsg(scratch));
        sqlite3_finalize(stmt);
        return rc;
    }
    rc = sqlite3_column_int(stmt, 0) == 1 ? OUTPOST_OK : OUTPOST_ESCHEMA;
    sqlite3_finalize(stmt);
    if (rc != OUTPOST_OK)
        return replica_fail(r, rc, "table %s: create_sql is not a CREATE TABLE of table %s",
                            t->name, t->name);
    return OUTPOST_OK;
}

/* The declared type of column col of table in db, into buf ("" when none). */
static int column_decl(outpost_replica *r, sqlite3 *db, const char *table, uint32_t col,
                       char *type_buf, size_t type_size, bool *out_notnull, char **out_default)
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    *out_default = NULL;
    rc = sqlite3_prepare_v2(db, "SELECT type, \"notnull\", dflt_value FROM pragma_table_info(?1)"
                                " WHERE cid = ?2", -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return replica_fail(r, sqlite_to_outpost(rc), "reading column types: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, col);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        rc = replica_fail(r, rc == SQLITE_DONE ? OUTPOST_ESCHEMA : sqlite_to_outpost(rc),
                          "reading column %u of %s", (unsigned)col, table);
        sqlite3_finalize(stmt);
        return rc;
    }
    snprintf(type_buf, type_size, "%s", (const char *)sqlite3_column_text(stmt, 0));
    *out_notnull = sqlite3_column_int(stmt, 1) != 0;
    if (sqlite3_column_type(stmt, 2) != SQLITE_NULL) {
        *out_default = sqlite3_mprintf("%s", (const char *)sqlite3_column_text(stmt, 2));
        if (*out_default == NULL) {
            sqlite3_finalize(stmt);
            return replica_fail(r, OUTPOST_ENOMEM, "out of memory reading column defaults");
        }
    }
    sqlite3_finalize(stmt);
    return OUTPOST_OK;
}

/* The table as created must match the message, and its key must be one devices can make. */
static int table_matches(outpost_replica *r, sqlite3 *db, const proto_schema_table *t,
                         const synced_table *have)
{
    char type[64];
    char *dflt = NULL;
    bool notnull;
    int rc;

    if (have->n_cols != t->n_columns)
        return replica_fail(r, OUTPOST_ESCHEMA, "table %s: CREATE TABLE has %u columns, the schema "
                            "lists %u", t->name, (unsigned)have->n_cols, (unsigned)t->n_columns);
    for (uint32_t c = 0; c < t->n_columns; c++) {
        if (sqlite3_stricmp(have->cols[c], t->columns[c]) != 0)
            return replica_fail(r, OUTPOST_ESCHEMA, "table %s: column %u is %s, the schema says %s",
                                t->name, (unsigned)c, have->cols[c], t->columns[c]);
    }
    if (have->n_pk == 0)
        return replica_fail(r, OUTPOST_ESCHEMA,
                            "table %s has no PRIMARY KEY (a rowid table); synced tables need an "
                            "explicit non-integer primary key such as a UUIDv7 text id", t->name);
    if (have->n_pk != t->n_pk || memcmp(have->pk, t->pk, t->n_pk * sizeof *t->pk) != 0)
        return replica_fail(r, OUTPOST_ESCHEMA,
                            "table %s: PRIMARY KEY differs from the schema's pk list", t->name);
    if (have->n_pk == 1) {
        rc = column_decl(r, db, t->name, have->pk[0], type, sizeof type, &notnull, &dflt);
        sqlite3_free(dflt);
        if (rc != OUTPOST_OK)
            return rc;
        if (sqlite3_strlike("%INT%", type, 0) == 0)
            return replica_fail(r, OUTPOST_ESCHEMA,
                                "table %s: primary key %s is an integer (%s, a rowid); devices create "
                                "rows offline, so synced tables need a non-integer key such as a "
                                "UUIDv7 text id", t->name, have->cols[have->pk[0]], type);
    }
    return OUTPOST_OK;
}

/* Adds the columns the schema appends to a table the replica already has. */
static int table_upgrade(outpost_replica *r, sqlite3 *scratch, const proto_schema_table *t,
                         const synced_table *local, const synced_table *want)
{
    if (local->n_cols > want->n_cols)
        return replica_fail(r, OUTPOST_ESCHEMA,
                            "table %s: the schema drops columns (%u here, %u in the schema); only "
                            "additive changes are applied", t->name, (unsigned)local->n_cols,
                            (unsigned)want->n_cols);
    for (uint32_t c = 0; c < local->n_cols; c++) {
        if (sqlite3_stricmp(local->cols[c], want->cols[c]) != 0)
            return replica_fail(r, OUTPOST_ESCHEMA,
                                "table %s: column %u is %s here and %s in the schema; renaming or "
                                "reordering columns is not an additive change", t->name,
                                (unsigned)c, local->cols[c], want->cols[c]);
    }
    if (local->n_pk != want->n_pk ||
        memcmp(local->pk, want->pk, local->n_pk * sizeof *local->pk) != 0)
        return replica_fail(r, OUTPOST_ESCHEMA,
                            "table %s: the schema changes the primary key; not an additive change",
                            t->name);
    for (uint32_t c = local->n_cols; c < want->n_cols; c++) {
        char type[64];
        char *dflt = NULL, *sql;
        bool notnull;
        int rc = column_decl(r, scratch, t->name, c, type, sizeof type, &notnull, &dflt);

        if (rc != OUTPOST_OK)
            return rc;
        if (notnull && dflt == NULL)
            return replica_fail(r, OUTPOST_ESCHEMA,
                                "table %s: new column %s is NOT NULL without a DEFAULT; rows "
                                "already here could not take it", t->name, want->cols[c]);
        sql = sqlite3_mprintf("ALTER TABLE main.\"%w\" ADD COLUMN \"%w\" %s%s%s%s", t->name,
                              want->cols[c], type, notnull ? " NOT NULL" : "",
                              dflt ? " DEFAULT " : "", dflt ? dflt : "");
        sqlite3_free(dflt);
        if (sql == NULL)
            return replica_fail(r, OUTPOST_ENOMEM, "out of memory upgrading %s", t->name);
        rc = replica_exec(r, sql);
        sqlite3_free(sql);
        if (rc != OUTPOST_OK)
            return replica_fail(r, rc == OUTPOST_ESQL ? OUTPOST_ESCHEMA : rc,
                                "table %s: cannot add column %s: %s", t->name, want->cols[c],
                                outpost_errmsg(r));
    }
    return OUTPOST_OK;
}

static int state_schema_version(outpost_replica *r, uint32_t *out_version)
{
    int64_t version = 0;
    int rc = replica_query_int64(r, "SELECT schema_version FROM _outpost_state WHERE id = 1",
                                 "reading the schema version", &version);

    if (rc == OUTPOST_OK)
        *out_version = (uint32_t)version;
    return rc;
}

/* Whether the replica has table name, and whether it is one the library syncs. */
static int replica_has_table(outpost_replica *r, const char *name, bool *out_exists)
{
    sqlite3_stmt *stmt = NULL;
    int rc = replica_prepare(r, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1"
                                " COLLATE NOCASE", &stmt);

    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    *out_exists = rc == SQLITE_ROW;
    rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? OUTPOST_OK
                                                 : replica_fail_sqlite(r, rc, "reading the schema");
    sqlite3_finalize(stmt);
    return rc;
}

static int record_table(outpost_replica *r, const proto_schema_table *t, uint32_t pos)
{
    sqlite3_stmt *stmt = NULL;
    int rc = replica_prepare(r, "INSERT INTO _outpost_tables(name, pos, create_sql, scope_col, policy)"
                                " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(name) DO UPDATE SET"
                                " pos = excluded.pos, create_sql = excluded.create_sql,"
                                " scope_col = excluded.scope_col, policy = excluded.policy",
                             &stmt);

    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_text(stmt, 1, t->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, pos);
    sqlite3_bind_text(stmt, 3, t->create_sql, -1, SQLITE_STATIC);
    if (t->scope_col)
        sqlite3_bind_text(stmt, 4, t->scope_col, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, (int64_t)t->policy);
    r->mode = MODE_LIBRARY;
    rc = sqlite3_step(stmt);
    r->mode = MODE_APP;
    rc = rc == SQLITE_DONE ? OUTPOST_OK : replica_fail_sqlite(r, rc, "recording the schema");
    sqlite3_finalize(stmt);
    return rc;
}

/* Installs or upgrades one table inside the install transaction. */
static int table_install(outpost_replica *r, sqlite3 *scratch, const proto_schema_table *t,
                         uint32_t pos)
{
    synced_table want, local;
    bool exists = false;
    int rc;

    memset(&want, 0, sizeof want);
    memset(&local, 0, sizeof local);
    rc = scratch_create(r, scratch, t);
    if (rc == OUTPOST_OK)
        rc = synced_table_describe(r, scratch, t->name, &want);
    if (rc == OUTPOST_OK)
        rc = table_matches(r, scratch, t, &want);
    if (rc == OUTPOST_OK)
        rc = replica_has_table(r, t->name, &exists);
    if (rc != OUTPOST_OK)
        goto done;
    if (!exists) {
        rc = replica_exec(r, t->create_sql);
    } else if (replica_table(r, t->name) == NULL) {
        rc = replica_fail(r, OUTPOST_ESCHEMA,
                          "table %s already exists on this device and is not synced; its rows "
                          "would never reach the server", t->name);
    } else {
        rc = synced_table_describe(r, r->db, t->name, &local);
        if (rc == OUTPOST_OK)
            rc = table_upgrade(r, scratch, t, &local, &want);
    }
    if (rc == OUTPOST_OK)
        rc = record_table(r, t, pos);
done:
    synced_table_clear(&want);
    synced_table_clear(&local);
    return rc;
}

/* Every table the replica syncs now must still be in the new schema. */
static int schema_check_kept(outpost_replica *r, const proto_schema *s)
{
    for (uint32_t i = 0; i < r->n_tables; i++) {
        bool kept = false;

        for (uint32_t j = 0; j < s->n_tables && !kept; j++)
            kept = sqlite3_stricmp(r->tables[i].name, s->tables[j].name) == 0;
        if (!kept)
            return replica_fail(r, OUTPOST_ESCHEMA,
                                "the schema drops table %s; only additive changes are applied",
                                r->tables[i].name);
    }
    return OUTPOST_OK;
}

static int schema_apply(outpost_replica *r, sqlite3 *scratch, const proto_schema *schema)
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    for (uint32_t i = 0; i < schema->n_tables; i++) {
        rc = table_install(r, scratch, &schema->tables[i], i);
        if (rc != OUTPOST_OK)
            return rc;
    }
    rc = replica_forms_record(r, schema->forms);
    if (rc != OUTPOST_OK)
        return rc;
    rc = replica_prepare(r, "UPDATE _outpost_state SET schema_version = ?1 WHERE id = 1", &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_int64(stmt, 1, schema->version);
    r->mode = MODE_LIBRARY;
    rc = sqlite3_step(stmt);
    r->mode = MODE_APP;
    rc = rc == SQLITE_DONE ? OUTPOST_OK : replica_fail_sqlite(r, rc, "recording the schema version");
    sqlite3_finalize(stmt);
    return rc;
}

int outpost_schema_install(outpost_replica *replica, const proto_schema *schema)
{
    sqlite3 *scratch = NULL;
    synced_table *tables = NULL;
    uint32_t n_tables = 0;
    uint32_t installed = 0;
    char *names = NULL;
    int cookie = 0;
    int rc;

    if (replica == NULL)
        return OUTPOST_EINVAL;
    rc = replica_check_usable(replica);
    if (rc != OUTPOST_OK)
        return rc;
    if (schema == NULL)
        return replica_fail(replica, OUTPOST_EINVAL, "schema is required");
    if (replica->in_tx)
        return replica_fail(replica, OUTPOST_EMISUSE, "a transaction is open");
    rc = schema_check_message(replica, schema);
    if (rc == OUTPOST_OK)
        rc = state_schema_version(replica, &installed);
    if (rc != OUTPOST_OK)
        return rc;
    if (schema->version == installed)
        return OUTPOST_OK;
    if (schema->version < installed)
        return replica_fail(replica, OUTPOST_ESCHEMA,
                            "schema version %u is older than the installed version %u",
                            (unsigned)schema->version, (unsigned)installed);
    rc = schema_check_kept(replica, schema);
    if (rc != OUTPOST_OK)
        return rc;

    rc = sqlite3_open_v2(":memory:", &scratch, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        rc = replica_fail(replica, sqlite_to_outpost(rc), "cannot open a scratch database");
        goto done;
    }
    rc = replica_begin(replica);
    if (rc != OUTPOST_OK)
        goto done;
    rc = schema_apply(replica, scratch, schema);
    /* Read the new table list before committing, so that nothing after the commit can fail to
     * put the new tables under the write guard. */
    if (rc == OUTPOST_OK)
        rc = replica_read_tables(replica, &tables, &n_tables);
    if (rc == OUTPOST_OK)
        rc = replica_schema_cookie(replica, &cookie);
    if (rc == OUTPOST_OK) {
        names = replica_names_blob(tables, n_tables);
        if (names == NULL)
            rc = replica_fail(replica, OUTPOST_ENOMEM, "out of memory installing the schema");
    }
    if (rc == OUTPOST_OK)
        rc = replica_commit(replica);
    if (rc != OUTPOST_OK) {
        replica_free_tables(tables, n_tables);
        sqlite3_free(names);
        replica_rollback(replica);
        goto done;
    }
    replica_set_tables(replica, tables, n_tables);
    replica->schema_cookie = cookie;
    replica_publish_schema(replica, names);
    /* Capture must cover the new tables; if this fails, the next transaction retries it
     * before it can write anything. */
    rc = replica_session_reset(replica);
    if (rc == OUTPOST_OK)
        replica_clear_error(replica);
    rc = OUTPOST_OK;
done:
    sqlite3_close(scratch);
    if (replica->session_stale)
        replica_session_reset(replica);
    return rc;
}
