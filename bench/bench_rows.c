#include "bench_rows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *bench_contact_cols[BENCH_CONTACT_COLS] = {"id", "team_id", "name", "age", "gender",
                                                      "place", "met_at", "risk", "notes", "worker"};
uint32_t bench_contact_pk[1] = {0};

const char bench_contact_create_sql[] =
    "CREATE TABLE contacts(id TEXT PRIMARY KEY, team_id TEXT NOT NULL, name TEXT, age INTEGER,"
    " gender TEXT, place TEXT, met_at INTEGER, risk INTEGER, notes TEXT, worker TEXT)";
const char bench_contact_insert_sql[] =
    "INSERT INTO contacts(id, team_id, name, age, gender, place, met_at, risk, notes, worker)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

proto_value bench_text(const char *s)
{
    proto_value v;

    memset(&v, 0, sizeof v);
    v.type = PROTO_TEXT;
    v.u.b.p = (const uint8_t *)s;
    v.u.b.n = (uint32_t)strlen(s);
    return v;
}

proto_value bench_integer(int64_t i)
{
    proto_value v;

    memset(&v, 0, sizeof v);
    v.type = PROTO_INT;
    v.u.i = i;
    return v;
}

bench_contact_row *bench_contact_rows_make(const char *prog, uint32_t n)
{
    bench_contact_row *rows = calloc(n, sizeof *rows);

    if (rows == NULL) {
        fprintf(stderr, "%s: out of memory\n", prog);
        exit(1);
    }
    for (uint32_t i = 0; i < n; i++) {
        bench_contact_row *r = &rows[i];

        snprintf(r->id, sizeof r->id, "0190a000-0000-7000-8000-%012u", i);
        snprintf(r->name, sizeof r->name, "Contact %u", i);
        r->v[0] = bench_text(r->id);
        r->v[1] = bench_text(i % 3 ? "team-north" : "team-south");
        r->v[2] = bench_text(r->name);
        r->v[3] = bench_integer(10 + i % 8);
        r->v[4] = bench_text(i % 2 ? "f" : "m");
        r->v[5] = bench_text("central station, east exit");
        r->v[6] = bench_integer(1700000000000 + i);
        r->v[7] = bench_integer(i % 4);
        r->v[8] = bench_text("met at night; referred to shelter; follow up next week");
        r->v[9] = bench_text("worker-7");
        for (int c = 0; c < BENCH_CONTACT_COLS; c++)
            value_to_public(&r->v[c], &r->ov[c]);
    }
    return rows;
}

void bench_contact_schema(proto_schema_table *t, proto_schema *schema)
{
    memset(t, 0, sizeof *t);
    t->name = "contacts";
    t->create_sql = bench_contact_create_sql;
    t->scope_col = "team_id";
    t->n_columns = BENCH_CONTACT_COLS;
    t->columns = bench_contact_cols;
    t->n_pk = 1;
    t->pk = bench_contact_pk;
    memset(schema, 0, sizeof *schema);
    schema->version = 1;
    schema->n_tables = 1;
    schema->tables = t;
}

void bench_bind_values(sqlite3_stmt *stmt, const proto_value *v, int n)
{
    for (int c = 0; c < n; c++) {
        if (v[c].type == PROTO_INT)
            sqlite3_bind_int64(stmt, c + 1, v[c].u.i);
        else
            sqlite3_bind_text(stmt, c + 1, (const char *)v[c].u.b.p, (int)v[c].u.b.n,
                              SQLITE_STATIC);
    }
}
