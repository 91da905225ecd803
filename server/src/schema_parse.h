/*
 * Reading an admin's schema: the SQL file (CREATE TABLE and CREATE INDEX statements only) and
 * the policy text. The SQL runs in a private in-memory database under an authorizer that allows
 * nothing but creating tables and indexes, and SQLite itself then says what the tables are.
 *
 * Policy text, one line per synced table, '#' starts a comment:
 *     TABLE scope=COLUMN [policy=hlc|server-wins|device-wins] [author=COLUMN]
 * author names the column that records which worker wrote a row: a device may write only its
 * own worker's id there.
 */
#ifndef OUTPOST_SCHEMA_PARSE_H
#define OUTPOST_SCHEMA_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outpost/proto.h"
#include "store_arena.h"

typedef struct schema_col {
    const char *name;
    const char *type; /* declared type, "" when none */
    bool notnull;
    const char *dflt; /* default expression text, NULL when none */
    uint32_t pk_pos;  /* 1-based position in the primary key, 0 when not part of it */
} schema_col;

typedef struct schema_table {
    const char *name;
    const char *create_sql;
    uint32_t n_cols;
    schema_col *cols;
    uint32_t scope_idx;
    proto_policy policy;
    uint32_t author_idx; /* SCHEMA_NO_AUTHOR when the table has no author column */
} schema_table;

#define SCHEMA_NO_AUTHOR UINT32_MAX

typedef struct schema_def {
    store_arena arena; /* owns everything below */
    uint32_t n_tables;
    schema_table *tables;
    uint32_t n_indexes;
    const char **index_names;
    const char **index_sql;
} schema_def;

/* Parses and validates. On failure returns STORE_ESCHEMA, STORE_EINVAL or STORE_ENOMEM and
 * writes a message naming the table, column or policy line into err. Free with
 * schema_def_free() in every case. */
int schema_parse(const char *schema_sql, const char *policy_text, schema_def *out_def, char *err,
                 size_t err_size);
void schema_def_free(schema_def *def);

const char *schema_policy_name(proto_policy policy);

/* What an offline-first replica set cannot keep consistent, in a schema file's tables: a
 * UNIQUE constraint or index other than the primary key (two devices offline can always each
 * take the same value), a primary-key column with a collation other than BINARY (keys equal to
 * the store but not to the merge), a foreign-key action other than NO ACTION or RESTRICT (the
 * store's cascades would change rows behind its change log). Read from SQLite's own view of the
 * parsed schema. cb gets one message per problem, naming the table, column and why, in table
 * order. Returns 0, or STORE_ESCHEMA / STORE_ENOMEM (message in err) when the SQL cannot be
 * loaded. */
/* For an upgrade: whether t's CREATE TABLE is old_sql (the table's statement until now, of
 * old_n_cols columns) with column definitions appended that carry nothing but a type, NOT NULL
 * and DEFAULT, which is all that ALTER TABLE ADD COLUMN on the store and on devices that have
 * the table already reproduces (devices that create the table fresh run the whole statement).
 * 0, or STORE_ESCHEMA / STORE_ENOMEM with a message naming the table, column and clause. */
int schema_appended_only(const char *old_sql, const schema_table *t, uint32_t old_n_cols,
                         char *err, size_t err_size);

typedef void (*schema_problem_cb)(void *user_data, const char *message);
int schema_replica_problems(const char *schema_sql, schema_problem_cb cb, void *user_data,
                            char *err, size_t err_size);

#endif /* OUTPOST_SCHEMA_PARSE_H */
