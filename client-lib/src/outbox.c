/* The outbox: reading entries as PUSH messages, the set of rows with pending changes, and the
 * server's answers (ACK, REJECT) with the conflict log they feed. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* ---- decoding a captured changeset -------------------------------------------------------- */

/* The outbox's changesets are read directly in SQLite's changeset format (the "CHANGESET
 * FORMAT" comment in SQLite's ext/session/sqlite3session.c) rather than through
 * sqlite3changeset_next(): the iterator allocates and frees an sqlite3_value for every column
 * of every change (each through SQLite's malloc and its memory-statistics mutex), which was
 * ~40% of the sync thread's CPU per pushed entry. These
 * blobs are only ever the library's own, made by sqlite3session_changeset() on this replica;
 * anything that does not read as that format, or holds what sqlite3session_changeset() never
 * writes, is OUTPOST_ECORRUPT, never read past its end (tests/fuzz/fuzz_outbox_decode.c).
 *   table header: 'T', varint column count, one primary-key flag byte per column (0, or the
 *                 column's position in the key), name, NUL
 *   change:       op (SQLITE_INSERT/DELETE/UPDATE), indirect flag, then the old record
 *                 (DELETE, UPDATE) and the new record (INSERT, UPDATE)
 *   record:       per column a type byte: 0 undefined, SQLITE_INTEGER and SQLITE_FLOAT then 8
 *                 bytes big-endian, SQLITE_TEXT and SQLITE_BLOB then a varint length and the
 *                 bytes, SQLITE_NULL alone. */
typedef struct cs_reader {
    const uint8_t *p, *end;
} cs_reader;

/* SQLite's varint: big-endian groups of 7 bits, the high bit set on all but the last; a ninth
 * byte holds 8 bits. */
static bool cs_varint(cs_reader *rd, uint64_t *out)
{
    uint64_t v = 0;

    for (int i = 0; i < 9; i++) {
        if (rd->p >= rd->end)
            return false;
        uint8_t b = *rd->p++;
        if (i == 8) {
            *out = (v << 8) | b;
            return true;
        }
        v = (v << 7) | (b & 0x7f);
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* One value of a record; text and blob bytes are copied into the arena, NUL-terminated (as
 * value_from_sqlite() does). */
static int cs_value(cs_reader *rd, struct outpost_arena **arena, proto_value *out)
{
    uint64_t n = 0;

    memset(out, 0, sizeof *out);
    if (rd->p >= rd->end)
        return OUTPOST_ECORRUPT;
    uint8_t type = *rd->p++;
    switch (type) {
    case 0: out->type = PROTO_UNDEF; return OUTPOST_OK;
    case SQLITE_NULL: out->type = PROTO_NULL; return OUTPOST_OK;
    case SQLITE_INTEGER:
    case SQLITE_FLOAT: {
        uint64_t v = 0;
        if (rd->end - rd->p < 8)
            return OUTPOST_ECORRUPT;
        for (int i = 0; i < 8; i++)
            v = (v << 8) | rd->p[i];
        rd->p += 8;
        if (type == SQLITE_INTEGER) {
            out->type = PROTO_INT;
            out->u.i = (int64_t)v;
        } else {
            /* A NaN: SQLite never stores one (its iterator would read it as NULL). */
            if ((v & 0x7ff0000000000000u) == 0x7ff0000000000000u && (v & 0x000fffffffffffffu))
                return OUTPOST_ECORRUPT;
            out->type = PROTO_REAL;
            memcpy(&out->u.r, &v, sizeof out->u.r);
        }
        return OUTPOST_OK;
    }
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
        if (!cs_varint(rd, &n) || n > (uint64_t)(rd->end - rd->p) || n > UINT32_MAX - 1u)
            return OUTPOST_ECORRUPT;
        uint8_t *copy = arena_alloc(arena, (size_t)n + 1u);
        if (copy == NULL)
            return OUTPOST_ENOMEM;
        if (n)
            memcpy(copy, rd->p, (size_t)n);
        copy[n] = 0;
        rd->p += n;
        out->type = type == SQLITE_TEXT ? PROTO_TEXT : PROTO_BLOB;
        out->u.b.p = copy;
        out->u.b.n = (uint32_t)n;
        return OUTPOST_OK;
    }
    default: return OUTPOST_ECORRUPT;
    }
}

/* The table whose changes are being read: its header's primary-key flags (in the changeset's
 * bytes) and the old and new values of one change, reused from change to change. */
typedef struct cs_table {
    proto_table_changes *t;
    const uint8_t *pk;
    proto_value *old_v, *new_v;
    uint32_t changes_cap;
} cs_table;

/* Whether the records of one change are what sqlite3session_changeset() writes (see the format
 * above): INSERT and DELETE records define every column; an UPDATE's old record holds every
 * key column, and each other column is in both records (changed) or in neither; an UPDATE
 * changes something. The iterator reads other records without complaint, or with a meaning it
 * makes up (it drops an old value that has no new one): here they are damage. A key column may
 * carry a new value: SQLite writes one when a key's type changes (1 to 1.0, no affinity). */
static bool change_well_formed(int op, const cs_table *ct, uint32_t n_col)
{
    bool any_new = false;

    for (uint32_t c = 0; c < n_col; c++) {
        bool has_old = ct->old_v[c].type != PROTO_UNDEF, has_new = ct->new_v[c].type != PROTO_UNDEF;

        if ((op == SQLITE_INSERT && !has_new) || (op == SQLITE_DELETE && !has_old))
            return false;
        if (op == SQLITE_UPDATE && (ct->pk[c] ? !has_old : has_old != has_new))
            return false;
        any_new = any_new || has_new;
    }
    return op != SQLITE_UPDATE || any_new;
}

/* One change as protocol columns: INSERT every new value, DELETE every old value, UPDATE the
 * primary key's old values and the changed columns' old and new values (a column undefined in
 * both records is not carried). */
static int change_decode(cs_reader *rd, int op, cs_table *ct, struct outpost_arena **arena,
                         proto_change *out)
{
    uint32_t n_col = ct->t->n_columns, n = 0;
    int rc = OUTPOST_OK;

    out->op = op == SQLITE_INSERT ? PROTO_OP_INSERT
            : op == SQLITE_DELETE ? PROTO_OP_DELETE : PROTO_OP_UPDATE;
    for (uint32_t c = 0; c < n_col; c++)
        ct->old_v[c].type = ct->new_v[c].type = PROTO_UNDEF;
    for (uint32_t c = 0; rc == OUTPOST_OK && op != SQLITE_INSERT && c < n_col; c++)
        rc = cs_value(rd, arena, &ct->old_v[c]);
    for (uint32_t c = 0; rc == OUTPOST_OK && op != SQLITE_DELETE && c < n_col; c++)
        rc = cs_value(rd, arena, &ct->new_v[c]);
    if (rc != OUTPOST_OK)
        return rc;
    if (!change_well_formed(op, ct, n_col))
        return OUTPOST_ECORRUPT;
    for (uint32_t c = 0; c < n_col; c++)
        n += ct->old_v[c].type != PROTO_UNDEF || ct->new_v[c].type != PROTO_UNDEF;
    out->cols = arena_alloc(arena, (size_t)n * sizeof *out->cols);
    if (out->cols == NULL)
        return OUTPOST_ENOMEM;
    n = 0;
    for (uint32_t c = 0; c < n_col; c++) {
        if (ct->old_v[c].type == PROTO_UNDEF && ct->new_v[c].type == PROTO_UNDEF)
            continue;
        out->cols[n].idx = c;
        out->cols[n].old_val = ct->old_v[c];
        out->cols[n].new_val = ct->new_v[c];
        n++;
    }
    out->n_cols = n;
    return OUTPOST_OK;
}

/* Grows a table's change array by one. */
static proto_change *change_push(cs_table *ct, struct outpost_arena **arena)
{
    proto_table_changes *t = ct->t;

    if (t->n_changes == ct->changes_cap) {
        uint32_t ncap = ct->changes_cap ? ct->changes_cap * 2 : 16;
        proto_change *grown = arena_alloc(arena, ncap * sizeof *grown);

        if (grown == NULL)
            return NULL;
        if (t->n_changes)
            memcpy(grown, t->changes, t->n_changes * sizeof *grown);
        t->changes = grown;
        ct->changes_cap = ncap;
    }
    return &t->changes[t->n_changes++];
}

/* A table header: a new proto_table_changes in push->tables. At least one column is in the
 * key (the session records only tables with a primary key; a flag is the column's position in
 * the key, table_info's pk, not only 1), and no table has two headers
 * (sqlite3session_changeset() writes each table's changes together). */
static int table_header(cs_reader *rd, struct outpost_arena **arena, proto_push *push,
                        uint32_t *tables_cap, cs_table *ct)
{
    uint64_t n_col = 0;
    bool any_pk = false;

    /* SQLite's own reader allows at most 65,536 columns. */
    if (!cs_varint(rd, &n_col) || n_col == 0 || n_col > 65536 ||
        n_col > (uint64_t)(rd->end - rd->p))
        return OUTPOST_ECORRUPT;
    for (uint64_t c = 0; c < n_col; c++)
        any_pk = any_pk || rd->p[c];
    if (!any_pk)
        return OUTPOST_ECORRUPT;
    ct->pk = rd->p;
    rd->p += n_col;
    const uint8_t *nul = memchr(rd->p, 0, (size_t)(rd->end - rd->p));
    if (nul == NULL || nul == rd->p)
        return OUTPOST_ECORRUPT;
    for (uint32_t i = 0; i < push->n_tables; i++)
        if (strcmp(push->tables[i].table, (const char *)rd->p) == 0)
            return OUTPOST_ECORRUPT;
    if (push->n_tables == *tables_cap) {
        uint32_t ncap = *tables_cap ? *tables_cap * 2 : 4;
        proto_table_changes *grown = arena_alloc(arena, ncap * sizeof *grown);

        if (grown == NULL)
            return OUTPOST_ENOMEM;
        if (push->n_tables)
            memcpy(grown, push->tables, push->n_tables * sizeof *grown);
        push->tables = grown;
        *tables_cap = ncap;
    }
    size_t len = (size_t)(nul - rd->p) + 1;
    char *copy = arena_alloc(arena, len);
    ct->old_v = arena_alloc(arena, (size_t)n_col * 2u * sizeof *ct->old_v);
    if (copy == NULL || ct->old_v == NULL)
        return OUTPOST_ENOMEM;
    ct->new_v = ct->old_v + n_col;
    memcpy(copy, rd->p, len);
    rd->p += len;
    proto_table_changes *t = &push->tables[push->n_tables++];
    memset(t, 0, sizeof *t);
    t->table = copy;
    t->n_columns = (uint32_t)n_col;
    ct->t = t;
    ct->changes_cap = 0;
    return OUTPOST_OK;
}

/* Decodes a changeset into push->tables, allocating from *arena. A session changeset holds each
 * table's changes together, behind one header followed by at least one change: a header at the
 * end is a cut changeset. */
int outbox_decode(const void *changeset, int n_bytes, struct outpost_arena **arena, proto_push *push)
{
    cs_reader rd = {.p = changeset, .end = changeset};
    cs_table ct = {0};
    uint32_t tables_cap = 0;
    int rc = OUTPOST_OK;

    push->n_tables = 0;
    push->tables = NULL;
    if (n_bytes < 0 || (n_bytes > 0 && changeset == NULL))
        return OUTPOST_ECORRUPT;
    if (n_bytes > 0) /* an empty blob is NULL from sqlite3_column_blob(): no NULL + 0 */
        rd.end += n_bytes;
    while (rc == OUTPOST_OK && rd.p < rd.end) {
        uint8_t op = *rd.p++;
        if (op == 'T') {
            if (ct.t != NULL && ct.t->n_changes == 0)
                return OUTPOST_ECORRUPT;
            rc = table_header(&rd, arena, push, &tables_cap, &ct);
            continue;
        }
        if (ct.t == NULL || (op != SQLITE_INSERT && op != SQLITE_DELETE && op != SQLITE_UPDATE) ||
            rd.p >= rd.end || *rd.p > 1)
            return OUTPOST_ECORRUPT;
        rd.p++; /* the indirect flag (0 or 1): not carried in a PUSH */
        proto_change *change = change_push(&ct, arena);
        if (change == NULL)
            return OUTPOST_ENOMEM;
        rc = change_decode(&rd, op, &ct, arena, change);
    }
    if (rc == OUTPOST_OK && ct.t != NULL && ct.t->n_changes == 0)
        return OUTPOST_ECORRUPT;
    return rc;
}

/* ---- reading entries ---------------------------------------------------------------------- */

int outpost_outbox_read(outpost_replica *replica, uint64_t after_seq, outpost_outbox_entry **out_entry)
{
    sqlite3_stmt *stmt = NULL;
    outpost_outbox_entry *entry = NULL;
    int rc;

    if (out_entry)
        *out_entry = NULL;
    if (replica == NULL || out_entry == NULL)
        return replica ? replica_fail(replica, OUTPOST_EINVAL, "out_entry is required") : OUTPOST_EINVAL;
    rc = replica_check_usable(replica);
    if (rc != OUTPOST_OK)
        return rc;
    rc = replica_prepare(replica,
                         "SELECT o.seq, o.hlc, o.created_ms, o.schema_version, c.changeset"
                         " FROM _outpost_outbox o LEFT JOIN _outpost_changesets c USING (seq)"
                         " WHERE o.seq > ?1 ORDER BY o.seq LIMIT 1", &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_int64(stmt, 1, after_seq > INT64_MAX ? INT64_MAX : (int64_t)after_seq);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        rc = OUTPOST_OK;
        goto done;
    }
    if (rc != SQLITE_ROW) {
        rc = replica_fail_sqlite(replica, rc, "reading the outbox");
        goto done;
    }
    entry = sqlite3_malloc64(sizeof *entry);
    if (entry == NULL) {
        rc = replica_fail(replica, OUTPOST_ENOMEM, "out of memory reading the outbox");
        goto done;
    }
    memset(entry, 0, sizeof *entry);
    entry->push.seq = (uint64_t)sqlite3_column_int64(stmt, 0);
    entry->push.hlc = (uint64_t)sqlite3_column_int64(stmt, 1);
    entry->created_ms = sqlite3_column_int64(stmt, 2);
    entry->push.schema_version = (uint32_t)sqlite3_column_int64(stmt, 3);
    entry->changeset_bytes = (size_t)sqlite3_column_bytes(stmt, 4);
    rc = sqlite3_column_type(stmt, 4) == SQLITE_NULL ? OUTPOST_ECORRUPT : OUTPOST_OK;
    if (rc == OUTPOST_OK)
        rc = outbox_decode(sqlite3_column_blob(stmt, 4), sqlite3_column_bytes(stmt, 4), &entry->arena_,
                       &entry->push);
    if (rc != OUTPOST_OK) {
        rc = replica_fail(replica, rc, "outbox entry %llu: %s",
                          (unsigned long long)entry->push.seq,
                          rc == OUTPOST_ENOMEM ? "out of memory decoding it" : "changeset is damaged");
        outpost_outbox_entry_free(entry);
        goto done;
    }
    *out_entry = entry;
done:
    sqlite3_finalize(stmt);
    return rc;
}

void outpost_outbox_entry_free(outpost_outbox_entry *entry)
{
    if (entry == NULL)
        return;
    arena_free(entry->arena_);
    sqlite3_free(entry);
}

/* ---- rows with pending changes ------------------------------------------------------------ */

static int pending_key_append(sqlite3_str *key, const proto_value *pk, uint32_t n_pk)
{
    for (uint32_t i = 0; i < n_pk; i++) {
        if (value_key_append(key, &pk[i]) != OUTPOST_OK)
            return OUTPOST_ENOMEM;
    }
    return OUTPOST_OK;
}

static int pending_key(sqlite3_str *key, const proto_value *pk, uint32_t n_pk)
{
    sqlite3_str_reset(key);
    return pending_key_append(key, pk, n_pk);
}

/* The key of a change, from its old values (new for an INSERT). */
static bool change_pk(const synced_table *t, const proto_change *ch, proto_value *pk)
{
    for (uint32_t k = 0; k < t->n_pk; k++) {
        bool found = false;

        for (uint32_t c = 0; c < ch->n_cols && !found; c++) {
            if (ch->cols[c].idx == t->pk[k]) {
                pk[k] = ch->op == PROTO_OP_INSERT ? ch->cols[c].new_val : ch->cols[c].old_val;
                found = true;
            }
        }
        if (!found)
            return false;
    }
    return true;
}

/* Adds every row one changeset touches to temp._outpost_pending, with the latest entry that
 * touches it, keyed in primary-key order as the pull looks rows up (rows_apply_table). */
static int pending_add_changeset(outpost_replica *r, sqlite3_stmt *ins, sqlite3_str *key,
                                 int64_t seq, const void *changeset, int n_bytes)
{
    struct outpost_arena *arena = NULL;
    proto_push push;
    proto_value pk[64];
    int rc = outbox_decode(changeset, n_bytes, &arena, &push);

    if (rc != OUTPOST_OK)
        rc = replica_fail(r, rc, "outbox entry %lld cannot be read back", (long long)seq);
    for (uint32_t i = 0; rc == OUTPOST_OK && i < push.n_tables; i++) {
        const proto_table_changes *tc = &push.tables[i];
        const synced_table *t = replica_table(r, tc->table);

        for (uint32_t j = 0; t != NULL && rc == OUTPOST_OK && j < tc->n_changes; j++) {
            if (t->n_pk > 64 || !change_pk(t, &tc->changes[j], pk)) {
                rc = replica_fail(r, OUTPOST_ECORRUPT, "outbox entry %lld: a change to %s "
                                  "without its key", (long long)seq, t->name);
                break;
            }
            if (pending_key(key, pk, t->n_pk) != OUTPOST_OK) {
                rc = replica_fail(r, OUTPOST_ENOMEM, "out of memory indexing pending rows");
                break;
            }
            sqlite3_bind_text(ins, 1, tc->table, -1, SQLITE_STATIC);
            sqlite3_bind_blob(ins, 2, sqlite3_str_value(key), sqlite3_str_length(key),
                              SQLITE_STATIC);
            sqlite3_bind_int64(ins, 3, seq);
            int step = sqlite3_step(ins);
            sqlite3_reset(ins);
            if (step != SQLITE_DONE)
                rc = replica_fail_sqlite(r, step, "indexing pending rows");
        }
    }
    arena_free(arena);
    return rc;
}

/* Rebuilds temp._outpost_pending from the outbox when the outbox changed since the last build.
 * Runs inside the caller's (write) transaction, so the outbox cannot change under it. */
int outbox_pending_refresh(outpost_replica *r)
{
    sqlite3_stmt *sel = NULL, *ins = NULL;
    sqlite3_str *key = NULL;
    int rc;

    int64_t count = 0, max_seq = 0;

    rc = replica_prepare(r, "SELECT count(*), coalesce(max(seq), 0) FROM _outpost_outbox", &sel);
    if (rc != OUTPOST_OK)
        return rc;
    rc = sqlite3_step(sel);
    if (rc == SQLITE_ROW) {
        count = sqlite3_column_int64(sel, 0);
        max_seq = sqlite3_column_int64(sel, 1);
        rc = OUTPOST_OK;
    } else {
        rc = replica_fail_sqlite(r, rc, "reading the outbox");
    }
    sqlite3_finalize(sel);
    sel = NULL;
    if (rc != OUTPOST_OK)
        return rc;
    if (r->pending_valid && r->pending_count == count && r->pending_max == max_seq)
        return OUTPOST_OK;
    r->pending_valid = false;
    rc = replica_exec(r, "DELETE FROM temp._outpost_pending");
    if (rc == OUTPOST_OK)
        rc = replica_prepare(r, "SELECT o.seq, c.changeset FROM _outpost_outbox o"
                                " LEFT JOIN _outpost_changesets c USING (seq) ORDER BY o.seq",
                             &sel);
    if (rc == OUTPOST_OK)
        rc = replica_prepare(r, "INSERT INTO temp._outpost_pending(tbl, pk, seq) VALUES(?1, ?2, ?3)"
                                " ON CONFLICT(tbl, pk) DO UPDATE SET seq = max(seq, excluded.seq)",
                             &ins);
    if (rc != OUTPOST_OK)
        goto done;
    key = sqlite3_str_new(r->db);
    r->mode = MODE_LIBRARY;
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        if (sqlite3_column_type(sel, 1) == SQLITE_NULL) {
            rc = replica_fail(r, OUTPOST_ECORRUPT, "outbox entry %lld has no changeset",
                              (long long)sqlite3_column_int64(sel, 0));
            break;
        }
        rc = pending_add_changeset(r, ins, key, sqlite3_column_int64(sel, 0),
                                   sqlite3_column_blob(sel, 1), sqlite3_column_bytes(sel, 1));
        if (rc != OUTPOST_OK)
            break;
    }
    r->mode = MODE_APP;
    if (rc == SQLITE_DONE) {
        rc = OUTPOST_OK;
        r->pending_valid = true;
        r->pending_count = count;
        r->pending_max = max_seq;
    } else if (rc > 0) {
        rc = replica_fail_sqlite(r, rc, "reading the outbox");
    }
done:
    sqlite3_free(sqlite3_str_finish(key));
    sqlite3_finalize(sel);
    sqlite3_finalize(ins);
    return rc;
}

/* Whether an outbox entry later than after_seq (0: any entry) changes the row. */
int outbox_row_pending(outpost_replica *r, const char *table, const proto_value *pk, uint32_t n_pk,
                       uint64_t after_seq, bool *out_pending)
{
    /* The bulk pull of a device with an empty outbox asks this for every row: when the last
     * build found no entry the table is empty, and the answer is known without a query. */
    if (r->pending_valid && r->pending_count == 0) {
        *out_pending = false;
        return OUTPOST_OK;
    }
    sqlite3_str *key = sqlite3_str_new(r->db);
    int rc = pending_key(key, pk, n_pk);

    if (rc == OUTPOST_OK) {
        if (r->st_pending == NULL)
            rc = replica_prepare(r, "SELECT 1 FROM temp._outpost_pending WHERE tbl = ?1 AND pk = ?2"
                                    " AND seq > ?3",
                                 &r->st_pending);
    }
    if (rc == OUTPOST_OK) {
        sqlite3_bind_text(r->st_pending, 1, table, -1, SQLITE_STATIC);
        sqlite3_bind_blob(r->st_pending, 2, sqlite3_str_value(key), sqlite3_str_length(key),
                          SQLITE_STATIC);
        sqlite3_bind_int64(r->st_pending, 3, after_seq > INT64_MAX ? INT64_MAX : (int64_t)after_seq);
        r->mode = MODE_LIBRARY;
        rc = sqlite3_step(r->st_pending);
        r->mode = MODE_APP;
        *out_pending = rc == SQLITE_ROW;
        rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? OUTPOST_OK
                                                     : replica_fail_sqlite(r, rc, "checking pending rows");
        sqlite3_reset(r->st_pending);
    } else {
        replica_fail(r, rc, "out of memory checking pending rows");
    }
    sqlite3_free(sqlite3_str_finish(key));
    return rc;
}

/* FNV-1a, then a 64-bit finalizer (MurmurHash3's) so that both halves are well mixed. */
static uint64_t pending_hash(const unsigned char *p, int n)
{
    uint64_t h = 0xcbf29ce484222325u;

    for (int i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3u;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    return h ^ (h >> 33);
}

/* Two bits per key (from the hash's two halves), at least 16 bits per key: about 1.4% of the
 * keys not in the filter still reach the query. */
static void pending_filter_bits(const pending_filter *f, uint64_t h, uint64_t *out_a, uint64_t *out_b)
{
    *out_a = h & f->mask;
    *out_b = (h >> 32) & f->mask;
}

#define PENDING_FILTER_MAX_BITS ((uint64_t)1 << 24) /* 2 MiB; more keys only raise the misses */
#define PENDING_SCRATCH_BYTES 4096 /* probed keys are appended, the buffer emptied past this */

int outbox_pending_filter_build(outpost_replica *r, const char *table, pending_filter *out_f)
{
    sqlite3_stmt *sel = NULL;
    int64_t n = 0;
    uint64_t bits = 4096;
    int rc;

    memset(out_f, 0, sizeof *out_f);
    out_f->table = table;
    if (r->pending_valid && r->pending_count == 0)
        return OUTPOST_OK;
    rc = replica_prepare(r, "SELECT count(*) FROM temp._outpost_pending WHERE tbl = ?1", &sel);
    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_text(sel, 1, table, -1, SQLITE_STATIC);
    r->mode = MODE_LIBRARY;
    rc = sqlite3_step(sel);
    r->mode = MODE_APP;
    n = sqlite3_column_int64(sel, 0);
    sqlite3_finalize(sel);
    sel = NULL;
    if (rc != SQLITE_ROW)
        return replica_fail_sqlite(r, rc, "checking pending rows");
    if (n == 0)
        return OUTPOST_OK;
    while (bits < PENDING_FILTER_MAX_BITS && bits < (uint64_t)n * 16)
        bits *= 2;
    out_f->bits = sqlite3_malloc64(bits / 8);
    out_f->scratch = sqlite3_str_new(r->db);
    if (out_f->bits == NULL || sqlite3_str_errcode(out_f->scratch) != SQLITE_OK) {
        outbox_pending_filter_free(out_f);
        return replica_fail(r, OUTPOST_ENOMEM, "out of memory checking pending rows");
    }
    memset(out_f->bits, 0, (size_t)(bits / 8)); /* at most PENDING_FILTER_MAX_BITS / 8 */
    out_f->mask = bits - 1;
    rc = replica_prepare(r, "SELECT pk FROM temp._outpost_pending WHERE tbl = ?1", &sel);
    if (rc != OUTPOST_OK) {
        outbox_pending_filter_free(out_f);
        return rc;
    }
    sqlite3_bind_text(sel, 1, table, -1, SQLITE_STATIC);
    r->mode = MODE_LIBRARY;
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        uint64_t a, b;

        pending_filter_bits(out_f, pending_hash(sqlite3_column_blob(sel, 0), sqlite3_column_bytes(sel, 0)),
                            &a, &b);
        out_f->bits[a / 64] |= (uint64_t)1 << (a % 64);
        out_f->bits[b / 64] |= (uint64_t)1 << (b % 64);
    }
    r->mode = MODE_APP;
    sqlite3_finalize(sel);
    if (rc != SQLITE_DONE) {
        outbox_pending_filter_free(out_f);
        return replica_fail_sqlite(r, rc, "checking pending rows");
    }
    return OUTPOST_OK;
}

/* outbox_row_pending(r, f->table, pk, n_pk, 0, out_pending), asked only of a key the filter may
 * hold. */
int outbox_pending_filter_check(outpost_replica *r, pending_filter *f, const proto_value *pk,
                                uint32_t n_pk, bool *out_pending)
{
    int start;
    uint64_t a, b;

    *out_pending = false;
    if (f->bits == NULL)
        return OUTPOST_OK;
    /* appended after the keys probed before, so that the buffer is not allocated per row */
    if (sqlite3_str_length(f->scratch) > PENDING_SCRATCH_BYTES)
        sqlite3_str_reset(f->scratch);
    start = sqlite3_str_length(f->scratch);
    if (pending_key_append(f->scratch, pk, n_pk) != OUTPOST_OK)
        return replica_fail(r, OUTPOST_ENOMEM, "out of memory checking pending rows");
    pending_filter_bits(f, pending_hash((const unsigned char *)sqlite3_str_value(f->scratch) + start,
                                        sqlite3_str_length(f->scratch) - start),
                        &a, &b);
    if (!(f->bits[a / 64] >> (a % 64) & 1) || !(f->bits[b / 64] >> (b % 64) & 1))
        return OUTPOST_OK;
    return outbox_row_pending(r, f->table, pk, n_pk, 0, out_pending);
}

void outbox_pending_filter_free(pending_filter *f)
{
    sqlite3_free(f->bits);
    sqlite3_free(sqlite3_str_finish(f->scratch));
    f->bits = NULL;
    f->scratch = NULL;
}

/* ---- the conflict log --------------------------------------------------------------------- */

static const char *conflict_kind_name(proto_conflict_kind kind)
{
    switch (kind) {
    case PROTO_CONFLICT_DATA: return "DATA";
    case PROTO_CONFLICT_NOTFOUND: return "NOTFOUND";
    case PROTO_CONFLICT_CONFLICT: return "CONFLICT";
    case PROTO_CONFLICT_CONSTRAINT: return "CONSTRAINT";
    default: return "UNKNOWN";
    }
}

static const char *conflict_kind_reason(proto_conflict_kind kind)
{
    switch (kind) {
    case PROTO_CONFLICT_DATA: return "the server's value changed since this device read it; the other write won";
    case PROTO_CONFLICT_NOTFOUND: return "the row was deleted on the server";
    case PROTO_CONFLICT_CONFLICT: return "the row was inserted or changed on the server at the same time";
    case PROTO_CONFLICT_CONSTRAINT: return "the server's constraints refused the value";
    default: return "conflict";
    }
}

static const char *reject_reason(uint32_t code)
{
    switch (code) {
    case PROTO_ERR_OUT_OF_SCOPE: return "row is outside this device's teams";
    case PROTO_ERR_UNKNOWN_TABLE: return "table unknown to the server";
    case PROTO_ERR_UNKNOWN_COLUMN: return "column unknown to the server";
    case PROTO_ERR_CONSTRAINT: return "the server's constraints refused the row";
    case PROTO_ERR_INVALID_CHANGE: return "the change was inconsistent";
    case PROTO_ERR_ROW_TOO_LARGE: return "the row would be too large to sync";
    default: return "refused by the server";
    }
}

/* One conflict or rejection as the library records it, in the protocol's values; the app sees
 * it as an outpost_conflict_info (conflict_report). */
typedef struct conflict_row {
    uint64_t seq;
    const char *table;
    uint32_t n_pk;
    const proto_value *pk;
    int32_t col;
    const char *column;
    const proto_value *mine;
    const proto_value *winner;
    const char *kind;
    uint32_t code;
    const char *reason;
} conflict_row;

/* Hands one recorded row to the app's on_conflict, in the library's own value type. */
static void conflict_report(const outpost_replica *r, const conflict_row *row)
{
    enum { PK_ON_STACK = 16 };
    outpost_value pk_small[PK_ON_STACK], mine, winner;
    outpost_value *pk = pk_small;
    static const proto_value undef;

    if (row->n_pk > PK_ON_STACK) {
        pk = sqlite3_malloc64((uint64_t)row->n_pk * sizeof *pk);
        if (pk == NULL)
            return;
    }
    for (uint32_t i = 0; i < row->n_pk; i++)
        value_to_public(&row->pk[i], &pk[i]);
    value_to_public(row->mine ? row->mine : &undef, &mine);
    value_to_public(row->winner ? row->winner : &undef, &winner);
    outpost_conflict_info info = {
        .seq = row->seq,       .table = row->table,   .n_pk = row->n_pk, .pk = pk,
        .col = row->col,       .column = row->column, .mine = &mine,     .winner = &winner,
        .kind = row->kind,     .code = row->code,     .reason = row->reason,
    };
    r->on_conflict(r->user_data, &info);
    if (pk != pk_small)
        sqlite3_free(pk);
}

/* Fills the record of one log row. */
static void conflict_info_fill(const outpost_replica *r, conflict_row *info, uint64_t seq,
                               const char *table, const proto_value *pk, uint32_t n_pk, int32_t col)
{
    const synced_table *t = replica_table(r, table);

    memset(info, 0, sizeof *info);
    info->seq = seq;
    info->table = table;
    info->pk = pk;
    info->n_pk = n_pk;
    info->col = col;
    info->column = (t && col >= 0 && (uint32_t)col < t->n_cols) ? t->cols[col] : NULL;
}

static int conflict_record(outpost_replica *r, sqlite3_stmt *ins, const conflict_row *info)
{
    sqlite3_str *pk_json = sqlite3_str_new(r->db);
    static const proto_value undef;
    char *json;
    int rc;

    sqlite3_str_appendchar(pk_json, 1, '[');
    for (uint32_t i = 0; i < info->n_pk; i++) {
        if (i)
            sqlite3_str_appendchar(pk_json, 1, ',');
        value_json_append(pk_json, &info->pk[i]);
    }
    sqlite3_str_appendchar(pk_json, 1, ']');
    json = sqlite3_str_finish(pk_json);
    if (json == NULL)
        return replica_fail(r, OUTPOST_ENOMEM, "out of memory recording a conflict");
    sqlite3_bind_int64(ins, 1, replica_now_ms(r));
    sqlite3_bind_int64(ins, 2, (int64_t)info->seq);
    sqlite3_bind_text(ins, 3, info->table, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 4, json, -1, sqlite3_free);
    if (info->col >= 0)
        sqlite3_bind_int64(ins, 5, info->col);
    else
        sqlite3_bind_null(ins, 5);
    if (info->column)
        sqlite3_bind_text(ins, 6, info->column, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(ins, 6);
    sqlite3_bind_text(ins, 7, info->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 8, info->code);
    sqlite3_bind_text(ins, 9, info->reason, -1, SQLITE_STATIC);
    value_bind(ins, 10, info->mine ? info->mine : &undef);
    value_bind(ins, 11, info->winner ? info->winner : &undef);
    r->mode = MODE_LIBRARY;
    rc = sqlite3_step(ins);
    r->mode = MODE_APP;
    sqlite3_reset(ins);
    sqlite3_clear_bindings(ins);
    return rc == SQLITE_DONE ? OUTPOST_OK : replica_fail_sqlite(r, rc, "recording a conflict");
}

static int conflict_insert_stmt(outpost_replica *r, sqlite3_stmt **out_stmt)
{
    return replica_prepare(r, "INSERT INTO _outpost_conflicts(at_ms, seq, tbl, pk, col, col_name,"
                              " kind, code, reason, mine, winner)"
                              " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)", out_stmt);
}

/* The conflict-log rows an ACK makes: one per listed decision, and one more saying how many the
 * server did not list (`cmore`, to keep the ACK within its message limit). */
static uint32_t ack_log_rows(const proto_ack *ack)
{
    return ack->n_conflicts + (ack->n_unlisted > 0 ? 1u : 0u);
}

/* Row i of ack_log_rows; the unlisted row's reason is written to buf. */
static void ack_conflict_info(const outpost_replica *r, const proto_ack *ack, uint32_t i,
                              conflict_row *info, char *buf, size_t buf_size)
{
    if (i >= ack->n_conflicts) {
        conflict_info_fill(r, info, ack->seq, "", NULL, 0, -1);
        snprintf(buf, buf_size,
                 "%u more decisions against this entry were not listed by the server (its"
                 " conflict log keeps them); the server's values come with the next pull",
                 (unsigned)ack->n_unlisted);
        info->kind = conflict_kind_name(PROTO_CONFLICT_CONFLICT);
        info->reason = buf;
        return;
    }
    const proto_conflict *c = &ack->conflicts[i];

    conflict_info_fill(r, info, ack->seq, c->table, c->pk, c->n_pk, c->col);
    info->mine = &c->mine;
    info->winner = &c->winner;
    info->kind = conflict_kind_name(c->kind);
    info->reason = conflict_kind_reason(c->kind);
}

static void reject_row_info(const outpost_replica *r, const proto_reject *rej, uint32_t i,
                            conflict_row *info)
{
    const proto_reject_row *row = &rej->rows[i];

    conflict_info_fill(r, info, rej->seq, row->table, row->pk, row->n_pk, -1);
    info->kind = "REJECTED";
    info->code = row->code;
    info->reason = row->message && row->message[0] ? row->message : reject_reason(row->code);
}

/* ---- ACK and REJECT ----------------------------------------------------------------------- */

/* Removes entry seq inside the open transaction. *out_known is false when it is not there: an
 * answer for an entry already removed, or (beyond the last sequence issued) never made. With
 * out_changeset (a REJECT) its changeset goes too and is handed back; without (an ACK, which
 * sent_keep() has recorded) the changeset stays in _outpost_changesets for _outpost_sent. */
static int outbox_remove(outpost_replica *r, uint64_t seq, bool *out_known, void **out_changeset,
                         int *out_bytes)
{
    sqlite3_stmt *stmt = NULL;
    int64_t last_seq = 0;
    int64_t seq64 = seq > INT64_MAX ? INT64_MAX : (int64_t)seq;
    int rc;

    *out_known = false;
    rc = replica_prepare(r, "DELETE FROM _outpost_outbox WHERE seq = ?1", &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_int64(stmt, 1, seq64);
    r->mode = MODE_LIBRARY;
    rc = sqlite3_step(stmt);
    r->mode = MODE_APP;
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return replica_fail_sqlite(r, rc, "removing the outbox entry");
    *out_known = sqlite3_changes(r->db) > 0;
    if (*out_known && out_changeset) {
        rc = replica_prepare(r, "DELETE FROM _outpost_changesets WHERE seq = ?1 RETURNING changeset",
                             &stmt);
        if (rc != OUTPOST_OK)
            return rc;
        sqlite3_bind_int64(stmt, 1, seq64);
        r->mode = MODE_LIBRARY;
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            int n = sqlite3_column_bytes(stmt, 0);

            *out_changeset = sqlite3_malloc(n > 0 ? n : 1);
            if (*out_changeset == NULL) {
                r->mode = MODE_APP;
                sqlite3_finalize(stmt);
                return replica_fail(r, OUTPOST_ENOMEM, "out of memory reading the outbox");
            }
            if (n)
                memcpy(*out_changeset, sqlite3_column_blob(stmt, 0), (size_t)n);
            *out_bytes = n;
            rc = sqlite3_step(stmt);
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_CORRUPT;
        }
        r->mode = MODE_APP;
        sqlite3_finalize(stmt);
        if (rc != SQLITE_DONE)
            return replica_fail_sqlite(r, rc, "removing the outbox entry's changeset");
    }
    if (*out_known)
        return OUTPOST_OK;
    rc = replica_prepare(r, "SELECT device_seq FROM _outpost_state WHERE id = 1", &stmt);
    if (rc != OUTPOST_OK)
        return rc;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        last_seq = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    if (seq == 0 || seq > (uint64_t)last_seq)
        return replica_fail(r, OUTPOST_EPROTO, "the server answered for entry %llu, which this "
                            "device never made (last is %lld)", (unsigned long long)seq,
                            (long long)last_seq);
    return OUTPOST_OK;
}

static int ack_apply(outpost_replica *r, const proto_ack *ack, bool *out_known)
{
    sqlite3_stmt *ins = NULL;
    /* Kept for the retention window: a store restored from a backup gets it again (heal.c). */
    int rc = sent_keep(r, ack->seq);
    if (rc == OUTPOST_OK)
        rc = outbox_remove(r, ack->seq, out_known, NULL, NULL);

    if (rc != OUTPOST_OK || !*out_known || ack_log_rows(ack) == 0)
        return rc;
    rc = conflict_insert_stmt(r, &ins);
    for (uint32_t i = 0; rc == OUTPOST_OK && i < ack_log_rows(ack); i++) {
        conflict_row info;
        char buf[200];

        ack_conflict_info(r, ack, i, &info, buf, sizeof buf);
        rc = conflict_record(r, ins, &info);
    }
    sqlite3_finalize(ins);
    return rc;
}

static int answer_check(outpost_replica *r, const void *msg, uint32_t n_items, const void *items)
{
    int rc = replica_check_usable(r);

    if (rc != OUTPOST_OK)
        return rc;
    if (msg == NULL)
        return replica_fail(r, OUTPOST_EINVAL, "message is required");
    if (r->in_tx)
        return replica_fail(r, OUTPOST_EMISUSE, "a transaction is open");
    if (n_items > 0 && items == NULL)
        return replica_fail(r, OUTPOST_EPROTO, "message lists %u items but carries none",
                            (unsigned)n_items);
    return OUTPOST_OK;
}

int outpost_outbox_ack_batch(outpost_replica *replica, const proto_ack *const *acks,
                             uint32_t n_acks)
{
    bool known_small[32], *known = known_small;
    int rc;

    if (replica == NULL)
        return OUTPOST_EINVAL;
    if (n_acks > 0 && acks == NULL)
        return replica_fail(replica, OUTPOST_EINVAL, "acks is required");
    rc = n_acks == 0 ? replica_check_usable(replica) : OUTPOST_OK;
    for (uint32_t a = 0; rc == OUTPOST_OK && a < n_acks; a++) {
        const proto_ack *ack = acks[a];

        rc = answer_check(replica, ack, ack ? ack->n_conflicts : 0, ack ? ack->conflicts : NULL);
        for (uint32_t i = 0; rc == OUTPOST_OK && i < ack->n_conflicts; i++) {
            const proto_conflict *c = &ack->conflicts[i];

            if (c->table == NULL || (c->n_pk > 0 && c->pk == NULL))
                rc = replica_fail(replica, OUTPOST_EPROTO, "ACK conflict %u names no table or key",
                                  (unsigned)i);
        }
    }
    if (rc != OUTPOST_OK || n_acks == 0)
        return rc;
    if (n_acks > sizeof known_small / sizeof known_small[0]) {
        known = sqlite3_malloc64((uint64_t)n_acks * sizeof *known);
        if (known == NULL)
            return replica_fail(replica, OUTPOST_ENOMEM, "out of memory recording answers");
    }
    /* One transaction (one commit, one fsync) for every ACK: all recorded, or none. */
    rc = replica_begin(replica);
    for (uint32_t a = 0; rc == OUTPOST_OK && a < n_acks; a++) {
        known[a] = false;
        rc = ack_apply(replica, acks[a], &known[a]);
        if (rc != OUTPOST_OK)
            replica_rollback(replica);
    }
    if (rc == OUTPOST_OK)
        rc = replica_commit(replica);
    if (rc == OUTPOST_OK) {
        replica_clear_error(replica);
        for (uint32_t a = 0; a < n_acks; a++) {
            for (uint32_t i = 0; known[a] && replica->on_conflict && i < ack_log_rows(acks[a]);
                 i++) {
                conflict_row info;
                char buf[200];

                ack_conflict_info(replica, acks[a], i, &info, buf, sizeof buf);
                conflict_report(replica, &info);
            }
        }
    }
    if (known != known_small)
        sqlite3_free(known);
    return rc;
}

int outpost_outbox_ack(outpost_replica *replica, const proto_ack *ack)
{
    if (replica == NULL)
        return OUTPOST_EINVAL;
    if (ack == NULL)
        return answer_check(replica, NULL, 0, NULL);
    return outpost_outbox_ack_batch(replica, &ack, 1);
}

/* Whether a table's rows in the REJECT's server version mention the row with this key. */
static bool server_mentions(const proto_reject *rej, const synced_table *t, const proto_value *pk)
{
    for (uint32_t i = 0; i < rej->n_tables; i++) {
        const proto_table_rows *tr = &rej->tables[i];

        if (strcmp(tr->table, t->name) != 0)
            continue;
        for (uint32_t row = 0; row < tr->n_rows; row++) {
            const proto_value *vals = &tr->rows[(size_t)row * tr->n_columns];
            bool same = true;

            for (uint32_t k = 0; k < t->n_pk && same; k++)
                same = t->pk[k] < tr->n_columns && value_same(&vals[t->pk[k]], &pk[k]);
            if (same)
                return true;
        }
        for (uint32_t pass = 0; pass < 2; pass++) {
            const proto_value *keys = pass ? tr->removed : tr->deleted;
            uint32_t n = pass ? tr->n_removed : tr->n_deleted;

            for (uint32_t row = 0; row < n && tr->n_pk == t->n_pk; row++) {
                bool same = true;

                for (uint32_t k = 0; k < t->n_pk && same; k++)
                    same = value_same(&keys[(size_t)row * tr->n_pk + k], &pk[k]);
                if (same)
                    return true;
            }
        }
    }
    return false;
}

/* Whether change ch of table t is to the row with key pk. */
static bool change_is_to(const synced_table *t, const proto_change *ch, const proto_value *pk)
{
    proto_value cpk[64];

    if (t->n_pk > 64 || !change_pk(t, ch, cpk))
        return false;
    for (uint32_t k = 0; k < t->n_pk; k++) {
        if (!value_same(&cpk[k], &pk[k]))
            return false;
    }
    return true;
}

/* Replays, in order, what the outbox entries after after_seq do to row pk of t. */
static int replay_later_changes(outpost_replica *r, const synced_table *t, const proto_value *pk,
                                uint64_t after_seq)
{
    sqlite3_stmt *sel = NULL;
    int rc = replica_prepare(r, "SELECT c.changeset FROM _outpost_outbox o"
                                " LEFT JOIN _outpost_changesets c USING (seq) WHERE o.seq > ?1"
                                " ORDER BY o.seq", &sel);

    if (rc != OUTPOST_OK)
        return rc;
    sqlite3_bind_int64(sel, 1, after_seq > INT64_MAX ? INT64_MAX : (int64_t)after_seq);
    r->mode = MODE_LIBRARY;
    int step;
    while (rc == OUTPOST_OK && (step = sqlite3_step(sel)) == SQLITE_ROW) {
        struct outpost_arena *arena = NULL;
        proto_push push;

        r->mode = MODE_APP;
        rc = sqlite3_column_type(sel, 0) == SQLITE_NULL
                 ? replica_fail(r, OUTPOST_ECORRUPT, "an outbox entry has no changeset")
                 : outbox_decode(sqlite3_column_blob(sel, 0), sqlite3_column_bytes(sel, 0),
                                 &arena, &push);
        for (uint32_t i = 0; rc == OUTPOST_OK && i < push.n_tables; i++) {
            const proto_table_changes *tc = &push.tables[i];

            if (strcmp(tc->table, t->name) != 0)
                continue;
            for (uint32_t j = 0; rc == OUTPOST_OK && j < tc->n_changes; j++) {
                const proto_change *ch = &tc->changes[j];
                proto_value vals[256];

                if (!change_is_to(t, ch, pk))
                    continue;
                if (ch->op == PROTO_OP_DELETE) {
                    rc = rows_delete(r, t, pk);
                } else if (ch->op == PROTO_OP_UPDATE || ch->n_cols > 256) {
                    rc = rows_update_cols(r, t, ch, false);
                } else {
                    for (uint32_t c = 0; c < ch->n_cols; c++)
                        vals[c] = ch->cols[c].new_val;
                    rc = rows_upsert(r, t, vals, ch->n_cols);
                }
            }
        }
        arena_free(arena);
        r->mode = MODE_LIBRARY;
    }
    r->mode = MODE_APP;
    if (rc == OUTPOST_OK && step != SQLITE_DONE)
        rc = replica_fail_sqlite(r, step, "reading the outbox");
    sqlite3_finalize(sel);
    return rc;
}

/* A row the refused entry changed that a later entry changes again was left alone by the
 * server's version (pull-apply skips pending rows), so the refused values stayed under the
 * later change, and since the later change may win its merge unaltered the server would never
 * send the row back: the replica would keep values the server refused while saying synced.
 * Such a row is set to the server's version from the REJECT, and the later entries' changes to
 * it are replayed on top: the row the device then shows is the one it is about to push. */
static int reject_rebase(outpost_replica *r, const proto_reject *rej)
{
    int rc = OUTPOST_OK;

    for (uint32_t i = 0; rc == OUTPOST_OK && i < rej->n_tables; i++) {
        const proto_table_rows *tr = &rej->tables[i];
        const synced_table *t = replica_table(r, tr->table);
        proto_value pk[64];

        if (t == NULL || t->n_pk > 64)
            continue;
        for (uint32_t row = 0; rc == OUTPOST_OK && row < tr->n_rows; row++) {
            const proto_value *vals = &tr->rows[(size_t)row * tr->n_columns];
            bool pending = false;

            for (uint32_t k = 0; k < t->n_pk; k++)
                pk[k] = vals[t->pk[k]];
            rc = outbox_row_pending(r, t->name, pk, t->n_pk, rej->seq, &pending);
            if (rc == OUTPOST_OK && pending)
                rc = rows_upsert(r, t, vals, tr->n_columns);
            if (rc == OUTPOST_OK && pending)
                rc = replay_later_changes(r, t, pk, rej->seq);
        }
        for (uint32_t pass = 0; rc == OUTPOST_OK && pass < 2 && tr->n_pk == t->n_pk; pass++) {
            const proto_value *keys = pass ? tr->removed : tr->deleted;
            uint32_t n = pass ? tr->n_removed : tr->n_deleted;

            for (uint32_t row = 0; rc == OUTPOST_OK && row < n; row++) {
                const proto_value *key = &keys[(size_t)row * tr->n_pk];
                bool pending = false;

                rc = outbox_row_pending(r, t->name, key, t->n_pk, rej->seq, &pending);
                if (rc == OUTPOST_OK && pending)
                    rc = rows_delete(r, t, key);
                if (rc == OUTPOST_OK && pending)
                    rc = replay_later_changes(r, t, key, rej->seq);
            }
        }
    }
    return rc;
}

/* Undoes one refused change the server said nothing about. When a later entry changes the row
 * again, its changes are replayed on top of the undone row: they were made over this one and
 * stand or fall on their own, but the refused values must not stay under them. */
static int reject_undo_change(outpost_replica *r, const proto_reject *rej, const synced_table *t,
                              const proto_change *ch)
{
    proto_value pk[64];
    bool pending = false;
    int rc;

    if (t->n_pk > 64 || !change_pk(t, ch, pk))
        return replica_fail(r, OUTPOST_ECORRUPT, "outbox entry %llu: a change to %s has no key",
                            (unsigned long long)rej->seq, t->name);
    if (server_mentions(rej, t, pk))
        return OUTPOST_OK;
    rc = outbox_row_pending(r, t->name, pk, t->n_pk, rej->seq, &pending);
    if (rc != OUTPOST_OK)
        return rc;
    switch (ch->op) {
    case PROTO_OP_INSERT: rc = rows_delete(r, t, pk); break;
    case PROTO_OP_DELETE: {
        proto_value vals[256];

        if (ch->n_cols > 256 || ch->n_cols != t->n_cols) {
            rc = rows_update_cols(r, t, ch, true);
            break;
        }
        for (uint32_t c = 0; c < ch->n_cols; c++)
            vals[c] = ch->cols[c].old_val;
        rc = rows_upsert(r, t, vals, ch->n_cols);
        break;
    }
    default: rc = rows_update_cols(r, t, ch, true); break;
    }
    if (rc == OUTPOST_OK && pending)
        rc = replay_later_changes(r, t, pk, rej->seq);
    return rc;
}

/* A REJECT to apply, whether its entry was still in the outbox, and the quarantine ids it
 * made (for on_rejected, after the commit). */
struct reject_run {
    const proto_reject *reject;
    bool known;
    int64_t *quarantined;
    uint32_t n_quarantined;
};

/* Keeps every change of the refused entry in quarantine, before any row is restored. */
static int reject_quarantine(outpost_replica *r, struct reject_run *run, const proto_push *push)
{
    uint32_t n = 0;
    int rc = OUTPOST_OK;

    for (uint32_t i = 0; i < push->n_tables; i++)
        n += push->tables[i].n_changes;
    run->quarantined = n ? sqlite3_malloc64((uint64_t)n * sizeof *run->quarantined) : NULL;
    if (n && run->quarantined == NULL)
        return replica_fail(r, OUTPOST_ENOMEM, "out of memory quarantining refused rows");
    for (uint32_t i = 0; rc == OUTPOST_OK && i < push->n_tables; i++) {
        const synced_table *t = replica_table(r, push->tables[i].table);

        /* Synced tables are never dropped (schema changes are additive), so t is there. */
        for (uint32_t j = 0; t && rc == OUTPOST_OK && j < push->tables[i].n_changes; j++)
            rc = quarantine_change(r, run->reject, t, &push->tables[i].changes[j],
                                   &run->quarantined[run->n_quarantined++]);
    }
    return rc;
}

static int reject_apply(outpost_replica *r, struct reject_run *run)
{
    const proto_reject *rej = run->reject;
    struct outpost_arena *arena = NULL;
    void *changeset = NULL;
    sqlite3_stmt *ins = NULL;
    proto_push push;
    int n_bytes = 0;
    int rc;

    run->n_quarantined = 0;
    sqlite3_free(run->quarantined);
    run->quarantined = NULL;
    rc = outbox_remove(r, rej->seq, &run->known, &changeset, &n_bytes);
    if (rc != OUTPOST_OK || !run->known)
        goto done;
    rc = outbox_decode(changeset, n_bytes, &arena, &push);
    if (rc != OUTPOST_OK) {
        rc = replica_fail(r, rc, "outbox entry %llu cannot be read back", (unsigned long long)rej->seq);
        goto done;
    }
    rc = reject_quarantine(r, run, &push);
    if (rc == OUTPOST_OK)
        rc = outbox_pending_refresh(r);
    for (uint32_t i = 0; rc == OUTPOST_OK && i < rej->n_tables; i++)
        rc = rows_apply_table(r, &rej->tables[i]);
    if (rc == OUTPOST_OK)
        rc = reject_rebase(r, rej);
    if (rc != OUTPOST_OK)
        goto done;
    for (uint32_t i = 0; rc == OUTPOST_OK && i < push.n_tables; i++) {
        const synced_table *t = replica_table(r, push.tables[i].table);

        for (uint32_t j = 0; t && rc == OUTPOST_OK && j < push.tables[i].n_changes; j++)
            rc = reject_undo_change(r, rej, t, &push.tables[i].changes[j]);
    }
    if (rc == OUTPOST_OK && rej->n_rows)
        rc = conflict_insert_stmt(r, &ins);
    for (uint32_t i = 0; rc == OUTPOST_OK && i < rej->n_rows; i++) {
        conflict_row info;

        reject_row_info(r, rej, i, &info);
        rc = conflict_record(r, ins, &info);
    }
done:
    sqlite3_finalize(ins);
    arena_free(arena);
    sqlite3_free(changeset);
    return rc;
}

/* Applies a struct reject_run inside replica_apply_uncaptured(). */
static int reject_run_apply(outpost_replica *r, void *ctx)
{
    return reject_apply(r, ctx);
}

int outpost_outbox_reject(outpost_replica *replica, const proto_reject *reject)
{
    struct reject_run run = {.reject = reject, .known = false};
    int rc;

    if (replica == NULL)
        return OUTPOST_EINVAL;
    rc = answer_check(replica, reject, reject ? reject->n_rows : 0, reject ? reject->rows : NULL);
    if (rc == OUTPOST_OK && reject->n_tables > 0 && reject->tables == NULL)
        rc = replica_fail(replica, OUTPOST_EPROTO, "REJECT lists tables but carries none");
    for (uint32_t i = 0; rc == OUTPOST_OK && i < reject->n_rows; i++) {
        if (reject->rows[i].table == NULL || (reject->rows[i].n_pk > 0 && reject->rows[i].pk == NULL))
            rc = replica_fail(replica, OUTPOST_EPROTO, "REJECT row %u names no table or key",
                              (unsigned)i);
    }
    if (rc != OUTPOST_OK)
        return rc;
    /* The server's rows must not be captured as this device's writes. */
    rc = replica_apply_uncaptured(replica, reject_run_apply, &run);
    if (rc != OUTPOST_OK) {
        sqlite3_free(run.quarantined);
        return rc;
    }
    replica_clear_error(replica);
    for (uint32_t i = 0; run.known && replica->on_conflict && i < reject->n_rows; i++) {
        conflict_row info;

        reject_row_info(replica, reject, i, &info);
        conflict_report(replica, &info);
    }
    for (uint32_t i = 0; run.known && replica->on_rejected && i < run.n_quarantined; i++) {
        outpost_rejected *q = NULL;

        if (outpost_rejected_read(replica, run.quarantined[i], &q) == OUTPOST_OK)
            replica->on_rejected(replica->user_data, q);
        outpost_rejected_free(q);
    }
    sqlite3_free(run.quarantined);
    replica_clear_error(replica);
    return OUTPOST_OK;
}
