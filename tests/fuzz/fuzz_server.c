/*
 * Fuzz target for the server's handling of a device's messages, without sockets: the bytes are
 * a sequence of messages (each a 2-byte big-endian length, then the message), decoded with the
 * daemon's limits and handled as an authenticated session would: PUSH goes through store_push
 * (validation, scope, merge, exactly-once) and PULL through store_pull, on a real SQLite central
 * store prepared with the test schema, teams t1 and t2 and one device of worker w1 (team t1).
 *
 * Besides "never crash": every reply the store produces decodes (a device must be able to read
 * it) and is the right type for the request (ACK or REJECT for the same seq, ROWS), and a
 * REJECTed push changed nothing (the server sequence did not move).
 *
 * Built two ways, like fuzz_proto.c: a libFuzzer target (-DOUTPOST_LIBFUZZER, scripts/fuzz.sh)
 * or, linked with fuzz_replay.c, a program that replays tests/fuzz/corpus/server/.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "outpost/proto.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static store *st;
static store_device dev;
static char dir[64];

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_server: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void cleanup(void)
{
    store_close(st);
    st = NULL;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0)
        fprintf(stderr, "fuzz_server: could not remove %s\n", dir);
}

static void prepare(void)
{
    static const char *const t1[] = {"t1"};
    char path[128], err[256], code[STORE_CODE_SIZE], id[40];
    uint8_t secret[32];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/fuzz-server-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp", dir);
    atexit(cleanup);
    snprintf(path, sizeof path, "%s/central.db", dir);
    if (store_open(path, true, &st, err, sizeof err) != STORE_OK)
        die("store_open", err);
    if (store_init_schema(st,
                          "CREATE TABLE contacts (id TEXT PRIMARY KEY NOT NULL, team_id TEXT NOT"
                          " NULL, name TEXT, note TEXT);\n",
                          "contacts scope=team_id policy=hlc\n") != STORE_OK ||
        store_team_add(st, "t1", "Team one") != STORE_OK ||
        store_team_add(st, "t2", "Team two") != STORE_OK ||
        store_worker_add(st, "w1", t1, 1) != STORE_OK ||
        store_enroll_code_create(st, "w1", (uint64_t)time(NULL) * 1000u, 3600000ull, code) !=
            STORE_OK ||
        store_device_enroll(st, code, "fuzz", id, secret) != STORE_OK ||
        store_device_auth(st, id, secret, &dev) != STORE_OK)
        die("preparing the store", store_errmsg(st));
}

static void judge_reply(const proto_buf *reply, proto_msg_type want, uint64_t seq)
{
    proto_msg *m = NULL;
    char err[256] = "";
    if (proto_decode(reply->data, reply->len, NULL, &m, err, sizeof err) != PROTO_OK)
        die("the store's reply does not decode", err);
    bool ok = m->type == want;
    if (want == PROTO_MSG_ACK)
        ok = (m->type == PROTO_MSG_ACK && m->u.ack.seq == seq) ||
             (m->type == PROTO_MSG_REJECT && m->u.reject.seq == seq);
    if (!ok)
        die("the store's reply is not the answer to the request",
            proto_msg_type_name((uint32_t)m->type));
    proto_msg_free(m);
}

static void handle(const proto_msg *msg)
{
    proto_buf reply = {0};
    uint64_t before = 0, after = 0;
    if (msg->type == PROTO_MSG_PUSH) {
        const proto_push *p = &msg->u.push;
        if (p->chunk != 0 || p->more)
            return; /* the session assembles chunks before the store sees them */
        store_push_info info;
        memset(&info, 0, sizeof info);
        (void)store_server_seq(st, &before);
        int rc = store_push(st, &dev, p, 1700000000000ull, &reply, &info);
        (void)store_server_seq(st, &after);
        if (rc == STORE_OK) {
            judge_reply(&reply, PROTO_MSG_ACK, p->seq);
            if ((info.rejected || info.duplicate) && after != before)
                die("a refused or duplicate push moved the server sequence", NULL);
        } else if (store_errmsg(st)[0] == '\0') {
            die("a failed push has no message", NULL);
        }
        free(info.teams_touched);
    } else if (msg->type == PROTO_MSG_PULL) {
        store_pull_info info;
        memset(&info, 0, sizeof info);
        if (store_pull(st, &dev, msg->u.pull.cursor, msg->u.pull.limit, 256 * 1024, &reply,
                       &info) == STORE_OK)
            judge_reply(&reply, PROTO_MSG_ROWS, 0);
    }
    proto_buf_free(&reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (st == NULL)
        prepare();
    proto_limits limits;
    proto_limits_default(&limits);
    limits.max_message_bytes = 65536;
    size_t at = 0;
    for (int n = 0; n < 16 && at + 2 <= size; n++) {
        size_t len = (size_t)data[at] << 8 | data[at + 1];
        at += 2;
        if (len > size - at)
            len = size - at;
        proto_msg *msg = NULL;
        char err[256];
        if (proto_decode(data + at, len, &limits, &msg, err, sizeof err) == PROTO_OK) {
            handle(msg);
            proto_msg_free(msg);
        }
        at += len;
    }
    return 0;
}
