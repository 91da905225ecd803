/*
 * Fuzz target for the device's pull-apply: the bytes are decoded as a message with the device's
 * limits and, when they are a ROWS page, applied with outpost_rows_apply() to a replica that has
 * the test schema installed (contacts: id TEXT PRIMARY KEY, team_id, name, note). Pages from
 * earlier inputs stay applied, as on a phone.
 *
 * Besides "never crash": a page that applies leaves the outbox empty (pulled rows are never
 * captured), the stored cursor is the page's or, for an older page, unchanged; a page that is
 * refused changes nothing (same cursor, same row count) and leaves a message on the handle.
 *
 * Built two ways, like fuzz_proto.c: a libFuzzer target (-DOUTPOST_LIBFUZZER, scripts/fuzz.sh)
 * or, linked with fuzz_replay.c, a program that replays tests/fuzz/corpus/pull_apply/.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <outpost.h>
#include "outpost_engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static outpost_replica *rep;
static char dir[64];

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_pull_apply: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
    abort();
}

static void cleanup(void)
{
    outpost_replica_close(rep);
    rep = NULL;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0)
        fprintf(stderr, "fuzz_pull_apply: could not remove %s\n", dir);
}

static void prepare(void)
{
    static const char *cols[] = {"id", "team_id", "name", "note"};
    static uint32_t pk[] = {0};
    static proto_schema_table table = {
        .name = "contacts",
        .create_sql = "CREATE TABLE contacts (id TEXT PRIMARY KEY NOT NULL, team_id TEXT NOT "
                      "NULL, name TEXT, note TEXT)",
        .scope_col = "team_id",
        .policy = PROTO_POLICY_HLC,
        .n_columns = 4,
        .columns = cols,
        .n_pk = 1,
        .pk = pk,
    };
    proto_schema schema = {.version = 1, .n_tables = 1, .tables = &table};
    char path[128], err[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/fuzz-pull-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp", dir);
    atexit(cleanup);
    snprintf(path, sizeof path, "%s/replica.db", dir);
    outpost_config cfg = {.path = path, .no_encryption = 1};
    if (outpost_replica_open(&cfg, &rep, err, sizeof err) != OUTPOST_OK)
        die("open", err);
    if (outpost_schema_install(rep, &schema) != OUTPOST_OK)
        die("schema", outpost_errmsg(rep));
}

static int64_t rows(void)
{
    sqlite3_stmt *s = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(outpost_replica_db(rep), "SELECT count(*) FROM contacts", -1, &s,
                           NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (rep == NULL)
        prepare();
    proto_msg *msg = NULL;
    char err[256];
    if (proto_decode(data, size, NULL, &msg, err, sizeof err) != PROTO_OK)
        return 0;
    if (msg->type != PROTO_MSG_ROWS) {
        proto_msg_free(msg);
        return 0;
    }
    outpost_status before, after;
    if (outpost_status_get(rep, &before) != OUTPOST_OK)
        die("status", outpost_errmsg(rep));
    int64_t n_before = rows();
    int rc = outpost_rows_apply(rep, &msg->u.rows);
    if (outpost_status_get(rep, &after) != OUTPOST_OK)
        die("status", outpost_errmsg(rep));
    if (after.pending != 0)
        die("pulled rows entered the outbox", NULL);
    if (rc == OUTPOST_OK) {
        uint64_t want = msg->u.rows.cursor < before.cursor ? before.cursor : msg->u.rows.cursor;
        if (after.cursor != want)
            die("the stored cursor is not the page's", NULL);
    } else {
        if (after.cursor != before.cursor || rows() != n_before)
            die("a refused page changed the replica", outpost_strerror(rc));
        if (outpost_errmsg(rep)[0] == '\0')
            die("a refused page left no message", outpost_strerror(rc));
    }
    proto_msg_free(msg);
    return 0;
}
