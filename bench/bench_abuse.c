/*
 * Protocol-level load against outpostd (issues 12 and 17): many simulated devices multiplexed
 * on one lws client context in this one process over real TLS, not one sync engine thread per
 * device. Every device belongs to worker w1 (team t1), so every push concerns every other
 * device: the NOTIFY fan-out is the worst case. Each device says HELLO, then pushes PUSHES small
 * entries one after the other (waiting for each ACK), and pulls when told NOTIFY. A "sync" is
 * one entry pushed and its ACK; syncs/s is over the whole run, TLS handshakes included.
 *
 * 1. SQLite (issue 12): one outpostd on its own store, OUTPOST_BENCH_DEVICES devices (default
 *    1000) x OUTPOST_BENCH_PUSHES (default 10) (abuse_* lines). Then OUTPOST_BENCH_IDLE more
 *    devices (default 5000, as the open-file limit allows) connect, say HELLO and stay idle:
 *    the server's memory per idle connection.
 * 2. PostgreSQL nodes (issue 17): a private PostgreSQL 15 cluster (tests/unit/pg_cluster.c),
 *    the same load first against 1 outpostd, then against OUTPOST_BENCH_NODES (default 2)
 *    outpostd on one store, each run on a fresh database of that cluster; device i talks to node
 *    i mod N. Defaults 500 devices x 5 pushes per run (OUTPOST_BENCH_DEVICES/_PUSHES, when given,
 *    size both phases). Here the devices are in teams of OUTPOST_BENCH_TEAM_SIZE (default 20:
 *    device i in team i / 20, its own worker; so a team has devices on every node); 0 puts
 *    them all in t1, phase 1's worst case, where every device pulls every row (2,000 devices on
 *    PostgreSQL then take most of an hour). OUTPOST_BENCH_PULL=0: devices count NOTIFY but do
 *    not pull, so the runs measure the push path alone (the writers taking turns, NOTIFY
 *    between nodes) without the pulls that NOTIFY sets off. Prints nodes_pgN_* per run (throughput, p50/p99, per node, CPU seconds
 *    of each outpostd, of PostgreSQL and of this load generator, the load average) and
 *    nodes_pgN_vs_pg1_ratio, the N-node throughput beside the 1-node one measured just before.
 *
 * OUTPOST_BENCH_ONLY=sqlite or =postgresql runs one phase. No PostgreSQL binaries: phase 2 says
 * why and the program fails, as bench_db does (scripts/deps.sh installs them).
 *
 * Every device must have every push acknowledged, and on PostgreSQL the store must hold every
 * pushed row: otherwise the program says which and exits 1 (a figure over lost pushes is
 * worthless). Never a timed test.
 *
 * To drive nodes that already run on one PostgreSQL instead: OUTPOST_BENCH_PORTS=PORT,PORT,...
 * (on 127.0.0.1), OUTPOST_BENCH_CA=FILE (the CA they pin) and OUTPOST_BENCH_CONNINFO=CONNINFO
 * (their store, where the devices are enrolled for worker w1 of team t1): nodes_ext_* lines.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <libwebsockets.h>

#include "daemon_fixture.h"
#include "pg_cluster.h"
#include "store.h"

enum { ST_CONNECTING, ST_HELLO, ST_READY, ST_DONE, ST_CLOSED };

#define MAX_NODES 16

typedef struct bdev {
    struct lws *wsi;
    uint32_t node;      /* index into ports */
    char id[40];
    char team[16]; /* t1, or bN for teams of team_size */
    uint8_t secret[32];
    int state;
    bool idle;          /* phase 2: HELLO, then nothing */
    uint32_t pushed;
    bool waiting;       /* a PUSH or PULL is out */
    bool want_pull;     /* a NOTIFY came: pull after the current exchange */
    uint64_t cursor;
    uint64_t sent_us;
    proto_buf out;      /* the next message to write */
    uint8_t *rx;
    size_t rx_len, rx_cap;
} bdev;

/* The current run's sizes and nodes. */
static uint32_t n_devices, n_pushes, n_idle;
static uint32_t team_size; /* 0: every device in t1 */
static bool pulls_on = true; /* a device pulls when told NOTIFY */
static uint32_t n_nodes = 1;
static uint16_t ports[MAX_NODES];
static bdev *devs;
static uint32_t n_devs_alloc;
static uint64_t *rtt_us;
static uint8_t *rtt_node; /* the node of each rtt_us sample */
static uint32_t n_rtt, n_busy, n_errors, n_done, n_closed, n_notify, n_pulls, n_established;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void queue(bdev *d, const proto_msg *m)
{
    proto_buf_free(&d->out);
    if (proto_encode(m, &d->out) == PROTO_OK)
        lws_callback_on_writable(d->wsi);
}

static void next_step(bdev *d)
{
    if (d->waiting)
        return;
    if (d->idle) {
        if (d->state != ST_DONE) {
            d->state = ST_DONE;
            n_done++;
        }
        return;
    }
    if (d->want_pull) {
        proto_msg m = {.type = PROTO_MSG_PULL};
        m.u.pull.cursor = d->cursor;
        d->want_pull = false;
        d->waiting = true;
        n_pulls++;
        queue(d, &m);
        return;
    }
    if (d->pushed < n_pushes) {
        char id[48];
        const char *ids[1] = {id};
        snprintf(id, sizeof id, "%.24s%012" PRIu32, d->id, d->pushed);
        proto_msg *m = fixture_insert_push(d->pushed + 1, 1, ids, d->team, "bench");
        d->waiting = true;
        d->sent_us = now_us();
        queue(d, m);
        fixture_push_free(m);
        return;
    }
    if (d->state != ST_DONE) {
        d->state = ST_DONE;
        n_done++;
    }
}

static void on_message(bdev *d, const proto_msg *m)
{
    switch (m->type) {
    case PROTO_MSG_WELCOME:
        d->state = ST_READY;
        d->cursor = m->u.welcome.server_seq;
        next_step(d);
        break;
    case PROTO_MSG_ACK:
        rtt_node[n_rtt] = (uint8_t)d->node;
        rtt_us[n_rtt++] = now_us() - d->sent_us;
        d->pushed++;
        d->waiting = false;
        next_step(d);
        break;
    case PROTO_MSG_ROWS:
        d->cursor = m->u.rows.cursor;
        d->waiting = false;
        if (m->u.rows.more)
            d->want_pull = true;
        next_step(d);
        break;
    case PROTO_MSG_NOTIFY:
        n_notify++;
        d->want_pull = pulls_on;
        next_step(d);
        break;
    case PROTO_MSG_ERROR:
        if (m->u.error.code == PROTO_ERR_BUSY)
            n_busy++;
        else
            n_errors++;
        break;
    default:
        n_errors++;
        break;
    }
}

static int on_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    bdev *d = user;

    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED: {
        proto_msg m = {.type = PROTO_MSG_HELLO};
        n_established++;
        d->state = ST_HELLO;
        m.u.hello.version = PROTO_VERSION;
        m.u.hello.device_id = d->id;
        memcpy(m.u.hello.secret, d->secret, sizeof d->secret);
        queue(d, &m);
        break;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        uint8_t *buf;
        if (d->out.len == 0)
            break;
        buf = malloc(LWS_PRE + d->out.len);
        if (!buf)
            return -1;
        memcpy(buf + LWS_PRE, d->out.data, d->out.len);
        if (lws_write(wsi, buf + LWS_PRE, d->out.len, LWS_WRITE_BINARY) < (int)d->out.len) {
            free(buf);
            return -1;
        }
        free(buf);
        proto_buf_free(&d->out);
        break;
    }
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (d->rx_len + len > d->rx_cap) {
            size_t cap = d->rx_cap ? d->rx_cap * 2 : 4096;
            while (cap < d->rx_len + len)
                cap *= 2;
            uint8_t *g = realloc(d->rx, cap);
            if (!g)
                return -1;
            d->rx = g;
            d->rx_cap = cap;
        }
        memcpy(d->rx + d->rx_len, in, len);
        d->rx_len += len;
        if (lws_is_final_fragment(wsi)) {
            proto_limits lim;
            proto_msg *m = NULL;
            proto_limits_default(&lim);
            lim.max_message_bytes = d->rx_len + 1;
            if (proto_decode(d->rx, d->rx_len, &lim, &m, NULL, 0) == PROTO_OK)
                on_message(d, m);
            else
                n_errors++;
            proto_msg_free(m);
            d->rx_len = 0;
        }
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (d && d->state != ST_CLOSED) {
            if (d->state != ST_DONE)
                n_errors++;
            d->state = ST_CLOSED;
            n_closed++;
        }
        if (d)
            d->wsi = NULL;
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"outpost-bench", on_event, 0, 0, 0, NULL, 0},
    LWS_PROTOCOL_LIST_TERM,
};

/* Sorts rtt_us, its nodes alongside (the node in the low bits of a sort key). */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void sort_samples(void)
{
    for (uint32_t i = 0; i < n_rtt; i++)
        rtt_us[i] = rtt_us[i] * MAX_NODES + rtt_node[i];
    qsort(rtt_us, n_rtt, sizeof *rtt_us, cmp_u64);
    for (uint32_t i = 0; i < n_rtt; i++) {
        rtt_node[i] = (uint8_t)(rtt_us[i] % MAX_NODES);
        rtt_us[i] /= MAX_NODES;
    }
}

static long status_kib(pid_t pid, const char *key)
{
    char path[64], line[256];
    long kib = -1;
    size_t n = strlen(key);
    FILE *f;

    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':')
            kib = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return kib;
}

/* A process's parent and its user plus system CPU time in clock ticks, from /proc/PID/stat
 * (the name in parentheses may hold spaces: fields are counted after the last ')'). -1 when
 * the process is gone. */
static long long proc_ticks(pid_t pid, pid_t *out_parent)
{
    char path[64], line[1024];
    long long ticks = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    if (fgets(line, sizeof line, f)) {
        const char *p = strrchr(line, ')');
        long parent;
        unsigned long long utime, stime;
        /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
         * utime stime */
        if (p && sscanf(p + 1, " %*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                        &parent, &utime, &stime) == 3) {
            ticks = (long long)(utime + stime);
            if (out_parent)
                *out_parent = (pid_t)parent;
        }
    }
    fclose(f);
    return ticks;
}

/* CPU time of the PostgreSQL server: the postmaster and its children (backends, writers). */
enum { MAX_PG_PROCS = 256 };
typedef struct pg_cpu {
    pid_t pid[MAX_PG_PROCS];
    long long ticks[MAX_PG_PROCS];
    uint32_t n;
} pg_cpu;

static pid_t postmaster_pid(const pg_cluster *pg)
{
    char path[320];
    long pid = 0;
    FILE *f;

    snprintf(path, sizeof path, "%s/data/postmaster.pid", pg->dir);
    f = fopen(path, "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return (pid_t)pid;
}

static void pg_cpu_sample(pid_t postmaster, pg_cpu *out)
{
    DIR *dir = opendir("/proc");
    struct dirent *e;

    out->n = 0;
    if (!dir || postmaster <= 0) {
        if (dir)
            closedir(dir);
        return;
    }
    while ((e = readdir(dir)) && out->n < MAX_PG_PROCS) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        pid_t parent = 0;
        long long t;
        if (*end || pid <= 0)
            continue;
        t = proc_ticks((pid_t)pid, &parent);
        if (t >= 0 && ((pid_t)pid == postmaster || parent == postmaster)) {
            out->pid[out->n] = (pid_t)pid;
            out->ticks[out->n++] = t;
        }
    }
    closedir(dir);
}

/* Ticks spent between two samples by the processes alive at the second. */
static long long pg_cpu_spent(const pg_cpu *before, const pg_cpu *after)
{
    long long sum = 0;
    for (uint32_t i = 0; i < after->n; i++) {
        long long base = 0;
        for (uint32_t j = 0; j < before->n; j++)
            if (before->pid[j] == after->pid[i])
                base = before->ticks[j];
        sum += after->ticks[i] - base;
    }
    return sum;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double loadavg_1m(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

/* Enrolls devs[0 .. n_devices + n_idle) for worker w1 of team t1 (team_size 0) or for worker
 * wbK of team bK, device i in team i / team_size (made here), in the fixture's store, or (fx
 * NULL) in the PostgreSQL store conninfo, adding t1 and w1 there if they are missing. */
static int enroll_all(const daemon_fixture *fx, const char *conninfo)
{
    store *st = NULL;
    char err[256];
    int rc = 0;

    if (!fx) {
        const char *t1[1] = {"t1"};
        if (store_open_postgresql(conninfo, true, &st, err, sizeof err) != STORE_OK) {
            fprintf(stderr, "bench_abuse: %s\n", err);
            return -1;
        }
        /* Already there from an earlier run is fine. */
        rc = store_team_add(st, "t1", "bench");
        if (rc == STORE_OK || rc == STORE_EEXISTS)
            rc = store_worker_add(st, "w1", t1, 1);
        if (rc != STORE_OK && rc != STORE_EEXISTS) {
            fprintf(stderr, "bench_abuse: %s\n", store_errmsg(st));
            store_close(st);
            return -1;
        }
        rc = 0;
    } else if (fixture_store_open(fx, &st, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "bench_abuse: %s\n", err);
        return -1;
    }
    for (uint32_t i = 0; i < n_devices + n_idle && rc == 0; i++) {
        char code[STORE_CODE_SIZE], worker[16];
        snprintf(worker, sizeof worker, "w1");
        snprintf(devs[i].team, sizeof devs[i].team, "t1");
        if (team_size > 0) { /* a team and its worker at the team's first device */
            const char *team[1] = {devs[i].team};
            snprintf(devs[i].team, sizeof devs[i].team, "b%u", i / team_size);
            snprintf(worker, sizeof worker, "wb%u", i / team_size);
            if (i % team_size == 0 && (store_team_add(st, devs[i].team, "bench") != STORE_OK ||
                                       store_worker_add(st, worker, team, 1) != STORE_OK)) {
                rc = -1;
                break;
            }
        }
        rc = store_enroll_code_create(st, worker, 0, UINT64_MAX / 2, code) == STORE_OK &&
                     store_device_enroll(st, code, "bench", devs[i].id, devs[i].secret) ==
                         STORE_OK
                 ? 0
                 : -1;
    }
    if (rc != 0)
        fprintf(stderr, "bench_abuse: enrolling: %s\n", store_errmsg(st));
    store_close(st);
    return rc;
}

static int connect_one(struct lws_context *ctx, bdev *d)
{
    struct lws_client_connect_info ci;

    memset(&ci, 0, sizeof ci);
    ci.context = ctx;
    ci.address = "127.0.0.1";
    ci.port = ports[d->node];
    ci.path = "/sync";
    ci.host = "localhost";
    ci.origin = "localhost";
    ci.ssl_connection = LCCSCF_USE_SSL;
    ci.protocol = "outpost.1";
    ci.local_protocol_name = "outpost-bench";
    ci.alpn = "http/1.1";
    ci.userdata = d;
    ci.pwsi = &d->wsi;
    return lws_client_connect_via_info(&ci) ? 0 : -1;
}

/* Forgets the previous run: counters, samples and every device's state (ids come again from
 * enroll_all). Sizes the run. */
static void reset_run(uint32_t devices, uint32_t pushes, uint32_t idle, uint32_t nodes,
                      uint32_t teams_of)
{
    for (uint32_t i = 0; i < n_devs_alloc; i++) {
        proto_buf_free(&devs[i].out);
        free(devs[i].rx);
        memset(&devs[i], 0, sizeof devs[i]);
    }
    n_devices = devices;
    n_pushes = pushes;
    n_idle = idle;
    n_nodes = nodes;
    team_size = teams_of;
    for (uint32_t i = 0; i < n_devices; i++)
        devs[i].node = i % n_nodes;
    n_rtt = n_busy = n_errors = n_done = n_closed = n_notify = n_pulls = n_established = 0;
}

/* lws's default for clients pings after 300 s without a PONG and hangs up at 310 s; outpostd
 * does not read a session's socket while its job waits (a PING neither), so under a long queue
 * every simulated device would hang up at 310 s. These devices keep no keepalive of their own:
 * a sync slower than liboutpost's hang-up is counted instead (syncs_over_60s). */
static const lws_retry_bo_t no_keepalive = {
    .secs_since_valid_ping = 65000,
    .secs_since_valid_hangup = 65535,
};

/* Runs the active devices against ports[0 .. n_nodes) until each is done or closed, or 20
 * minutes pass. Returns the client context (the idle phase goes on with it) or NULL;
 * *out_secs is the run's wall time. */
static struct lws_context *run_load(const char *ca_path, double *out_secs)
{
    struct lws_context_creation_info info;
    struct lws_context *ctx;
    uint32_t next = 0;
    uint64_t t0, deadline;

    lws_set_log_level(LLL_ERR, NULL);
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.client_ssl_ca_filepath = ca_path;
    info.fd_limit_per_thread = n_devices + n_idle + 64;
    info.retry_and_idle_policy = &no_keepalive;
    ctx = lws_create_context(&info);
    if (!ctx)
        return NULL;
    t0 = now_us();
    deadline = t0 + 1200u * 1000000u;
    while (n_done + n_closed < n_devices && now_us() < deadline) {
        /* At most 32 handshakes at a time: a TLS accept costs the server a few ms. */
        while (next < n_devices && next - n_established < 32) {
            bdev *d = &devs[next++];
            if (connect_one(ctx, d) != 0) {
                d->state = ST_CLOSED;
                n_closed++;
                n_errors++;
            }
        }
        lws_service(ctx, 0);
    }
    *out_secs = (double)(now_us() - t0) / 1e6;
    if (n_done + n_closed < n_devices)
        fprintf(stderr, "bench_abuse: %u of %u devices still busy after 20 minutes\n",
                n_devices - n_done - n_closed, n_devices);
    sort_samples();
    return ctx;
}

/* Devices with fewer pushes acknowledged than they sent: each named on stderr (the first
 * few), their number returned. */
static uint32_t devices_missing_acks(const char *label)
{
    uint32_t missing = 0;
    for (uint32_t i = 0; i < n_devices; i++)
        if (devs[i].pushed < n_pushes && missing++ < 5)
            fprintf(stderr, "bench_abuse: %s: device %s (node %u) has %u of %u pushes acked\n",
                    label, devs[i].id, devs[i].node, devs[i].pushed, n_pushes);
    return missing;
}

/* The p99 of the sorted samples. */
static uint64_t p99_of(const uint64_t *sorted, uint32_t n)
{
    return n ? sorted[(size_t)((double)n * 0.99)] : 0;
}

/* Issue 12's lines for the SQLite run. */
static void report_sqlite(const daemon_fixture *fx, double secs)
{
    uint64_t p50 = n_rtt ? rtt_us[n_rtt / 2] : 0, p99 = p99_of(rtt_us, n_rtt);

    printf("abuse_devices=%u\n", n_devices);
    printf("abuse_pushes_per_device=%u\n", n_pushes);
    printf("abuse_pushes_acked=%u target=%u\n", n_rtt, n_devices * n_pushes);
    printf("abuse_sessions_closed_by_busy=%u target=0\n", n_busy);
    printf("abuse_other_errors=%u target=0\n", n_errors);
    printf("abuse_push_rtt_p50_ms=%.1f\n", (double)p50 / 1000.0);
    printf("abuse_push_rtt_p99_ms=%.1f target_below=250\n", (double)p99 / 1000.0);
    printf("abuse_notify_frames=%u\n", n_notify);
    printf("abuse_notify_frames_per_push=%.3f target_at_most=2 uncoalesced_would_be=%u\n",
           n_rtt ? (double)n_notify / (double)n_rtt : 0.0, n_devices - 1);
    printf("abuse_pulls=%u\n", n_pulls);
    printf("abuse_wall_s=%.1f\n", secs);
    printf("abuse_server_rss_kib=%ld\n", status_kib(fx->pid, "VmRSS"));
    printf("abuse_server_peak_rss_kib=%ld\n", status_kib(fx->pid, "VmHWM"));
    fflush(stdout);
}

/* Where the CPU went during a nodes run: each outpostd, PostgreSQL, this load generator. */
typedef struct cpu_split {
    double node_s[MAX_NODES];
    double postgres_s;
    double bench_s;
    bool known; /* the nodes are this program's children */
} cpu_split;

/* A nodes run's lines, LABEL_*: totals, per node, and where the CPU went. Returns the run's
 * syncs per second. */
static double report_nodes(const char *label, double secs, const cpu_split *cpu, double load0)
{
    uint64_t *mine = calloc(n_rtt ? n_rtt : 1, sizeof *mine);
    double per_s = secs > 0 ? n_rtt / secs : 0.0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    printf("%s_nodes=%u\n", label, n_nodes);
    printf("%s_devices=%u\n", label, n_devices);
    printf("%s_pushes_per_device=%u\n", label, n_pushes);
    printf("%s_devices_per_team=%u\n", label, team_size ? team_size : n_devices);
    printf("%s_devices_pull_on_notify=%s\n", label, pulls_on ? "yes" : "no");
    printf("%s_pushes_acked=%u target=%u\n", label, n_rtt, n_devices * n_pushes);
    printf("%s_busy=%u target=0\n", label, n_busy);
    printf("%s_errors=%u target=0\n", label, n_errors);
    printf("%s_syncs_per_s=%.1f\n", label, per_s);
    printf("%s_sync_p50_ms=%.1f\n", label, n_rtt ? (double)rtt_us[n_rtt / 2] / 1000.0 : 0.0);
    printf("%s_sync_p99_ms=%.1f\n", label, (double)p99_of(rtt_us, n_rtt) / 1000.0);
    printf("%s_sync_max_ms=%.1f\n", label, n_rtt ? (double)rtt_us[n_rtt - 1] / 1000.0 : 0.0);
    {
        uint32_t slow = 0; /* liboutpost's default keepalive hangs up after 60 s */
        for (uint32_t i = 0; i < n_rtt; i++)
            slow += rtt_us[i] > 60u * 1000000u;
        printf("%s_syncs_over_60s=%u (a liboutpost device hangs up at 60 s and resends)\n", label,
               slow);
    }
    printf("%s_notify_frames_per_push=%.3f\n", label,
           n_rtt ? (double)n_notify / (double)n_rtt : 0.0);
    printf("%s_pulls=%u\n", label, n_pulls);
    printf("%s_wall_s=%.1f\n", label, secs);
    for (uint32_t k = 0; mine && k < n_nodes; k++) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < n_rtt; i++) /* rtt_us is sorted: so is mine */
            if (rtt_node[i] == k)
                mine[n++] = rtt_us[i];
        printf("%s_node%u_syncs=%u\n", label, k, n);
        printf("%s_node%u_syncs_per_s=%.1f\n", label, k, secs > 0 ? n / secs : 0.0);
        printf("%s_node%u_sync_p99_ms=%.1f\n", label, k, (double)p99_of(mine, n) / 1000.0);
    }
    free(mine);
    if (cpu && cpu->known) {
        /* seconds of CPU over the run, and as a share of all the machine's cores over it */
        double sum = cpu->postgres_s + cpu->bench_s;
        for (uint32_t k = 0; k < n_nodes; k++) {
            printf("%s_cpu_node%u_s=%.1f\n", label, k, cpu->node_s[k]);
            sum += cpu->node_s[k];
        }
        printf("%s_cpu_postgres_s=%.1f\n", label, cpu->postgres_s);
        printf("%s_cpu_bench_s=%.1f\n", label, cpu->bench_s);
        printf("%s_cpu_ours_share_of_%ld_cores=%.2f\n", label, cores, sum / (secs * (double)cores));
    }
    printf("%s_loadavg_1m_before=%.2f\n", label, load0);
    printf("%s_loadavg_1m_after=%.2f\n", label, loadavg_1m());
    fflush(stdout);
    return per_s;
}

/* Phase 2 of the SQLite run: n_idle more devices connect, say HELLO and stay; RSS before and
 * after. */
static void idle_phase(struct lws_context *ctx, const daemon_fixture *fx)
{
    uint32_t first = n_devices, next = first, base_done = n_done, base_closed = n_closed;
    uint32_t base_est = n_established;
    uint64_t deadline = now_us() + 600u * 1000000u;
    long before, after;

    if (n_idle == 0)
        return;
    before = status_kib(fx->pid, "VmRSS");
    for (uint32_t i = first; i < first + n_idle; i++)
        devs[i].idle = true;
    while ((n_done - base_done) + (n_closed - base_closed) < n_idle && now_us() < deadline) {
        while (next < first + n_idle && (next - first) - (n_established - base_est) < 32) {
            bdev *d = &devs[next++];
            if (connect_one(ctx, d) != 0) {
                d->state = ST_CLOSED;
                n_closed++;
            }
        }
        lws_service(ctx, 0);
    }
    after = status_kib(fx->pid, "VmRSS");
    printf("abuse_idle_connections=%u held=%u\n", n_idle, n_done - base_done);
    printf("abuse_idle_server_rss_before_kib=%ld\n", before);
    printf("abuse_idle_server_rss_after_kib=%ld\n", after);
    printf("abuse_idle_bytes_per_connection=%.0f target_below=65536\n",
           n_done > base_done ? (double)(after - before) * 1024.0 / (double)(n_done - base_done)
                              : 0.0);
}

/* The limits every outpostd here runs with: all the simulated devices share one address. */
static void limits_for(uint32_t connections, char *out, size_t out_size)
{
    snprintf(out, out_size,
             "max_connections = %u\nmax_waiting_jobs = %u\nmax_unauthenticated_per_address = %u\n",
             connections + 64, connections + 64, connections + 64);
}

/* Phase 1: one outpostd on its own SQLite store, then the idle connections. 0 when every push
 * was acknowledged and none refused as busy. */
static int run_sqlite(uint32_t devices, uint32_t pushes, uint32_t idle)
{
    daemon_fixture fx;
    struct lws_context *ctx = NULL;
    char limits[256];
    double secs = 0;
    int rc = 1;

    reset_run(devices, pushes, idle, 1, 0);
    limits_for(devices + idle, limits, sizeof limits);
    memset(&fx, 0, sizeof fx);
    if (fixture_create(&fx, limits) != 0 || enroll_all(&fx, NULL) != 0 ||
        fixture_start(&fx) != 0) {
        fprintf(stderr, "bench_abuse: cannot prepare outpostd on SQLite\n");
        goto done;
    }
    ports[0] = fx.port;
    ctx = run_load(fx.ca_path, &secs);
    if (!ctx)
        goto done;
    report_sqlite(&fx, secs);
    rc = n_busy == 0 && devices_missing_acks("sqlite") == 0 ? 0 : 1;
    idle_phase(ctx, &fx);
    lws_context_destroy(ctx);
done:
    fixture_stop(&fx);
    fixture_destroy(&fx);
    return rc;
}

/* A new, empty database NAME in the cluster; its connection string in out. 0 or -1. */
static int fresh_database(const pg_cluster *pg, const char *name, char *out, size_t out_size)
{
    char sql[128];
    PGconn *c = PQconnectdb(pg->conninfo);
    int rc = -1;

    if (PQstatus(c) == CONNECTION_OK) {
        /* a name made here, never input: CREATE DATABASE takes no parameters */
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
        PGresult *r = PQexec(c, sql);
        rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
        if (rc != 0)
            fprintf(stderr, "bench_abuse: %s: %s", sql, PQerrorMessage(c));
        PQclear(r);
    } else {
        fprintf(stderr, "bench_abuse: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    /* libpq takes the last of a repeated keyword */
    snprintf(out, out_size, "%s dbname=%s", pg->conninfo, name);
    return rc;
}

/* The rows of the devices' pushes the store holds (the contacts table), or -1. */
static long long rows_stored(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    long long n = -1;

    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, "SELECT count(*) FROM contacts");
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        else
            fprintf(stderr, "bench_abuse: counting rows: %s", PQerrorMessage(c));
        PQclear(r);
    }
    PQfinish(c);
    return n;
}

/* One nodes run on a fresh database of the cluster: `nodes` outpostd, the devices spread over
 * them. Prints nodes_pgN_*; *out_per_s is its syncs per second. 0 when every device had every
 * push acknowledged, none was refused as busy and the store holds every row. */
static int run_pg_nodes(const pg_cluster *pg, uint32_t nodes, uint32_t devices, uint32_t pushes,
                        uint32_t teams_of, double *out_per_s)
{
    daemon_fixture fx[MAX_NODES];
    struct lws_context *ctx = NULL;
    char limits[256], conninfo[512], label[32], dbname[32];
    long long ticks0[MAX_NODES], stored;
    long hz = sysconf(_SC_CLK_TCK);
    pg_cpu pg0, pg1;
    cpu_split cpu;
    double secs = 0, self0, load0;
    uint32_t missing;
    int rc = 1;

    memset(fx, 0, sizeof fx);
    memset(&cpu, 0, sizeof cpu);
    snprintf(label, sizeof label, "nodes_pg%u", nodes);
    snprintf(dbname, sizeof dbname, "outpost_nodes%u", nodes);
    reset_run(devices, pushes, 0, nodes, teams_of);
    limits_for(devices, limits, sizeof limits);
    if (fresh_database(pg, dbname, conninfo, sizeof conninfo) != 0 ||
        fixture_create_postgresql(&fx[0], limits, conninfo) != 0 ||
        enroll_all(&fx[0], NULL) != 0) {
        fprintf(stderr, "bench_abuse: cannot prepare the PostgreSQL store %s\n", dbname);
        goto done;
    }
    for (uint32_t k = 0; k < nodes; k++) {
        if (k > 0)
            fixture_second_node(&fx[0], &fx[k]);
        if (k > 0) /* each node its own log */
            snprintf(fx[k].log_path, sizeof fx[k].log_path, "%s/outpostd-node%u.log", fx[0].dir,
                     k + 1);
        if (fixture_start(&fx[k]) != 0) {
            fprintf(stderr, "bench_abuse: outpostd node %u did not start (%s)\n", k + 1,
                    fx[k].log_path);
            goto done;
        }
        ports[k] = fx[k].port;
    }
    for (uint32_t k = 0; k < nodes; k++)
        ticks0[k] = proc_ticks(fx[k].pid, NULL);
    pg_cpu_sample(postmaster_pid(pg), &pg0);
    self0 = self_cpu_s();
    load0 = loadavg_1m();
    ctx = run_load(fx[0].ca_path, &secs);
    if (!ctx)
        goto done;
    cpu.known = true;
    for (uint32_t k = 0; k < nodes; k++)
        cpu.node_s[k] = (double)(proc_ticks(fx[k].pid, NULL) - ticks0[k]) / (double)hz;
    pg_cpu_sample(postmaster_pid(pg), &pg1);
    cpu.postgres_s = (double)pg_cpu_spent(&pg0, &pg1) / (double)hz;
    cpu.bench_s = self_cpu_s() - self0;
    *out_per_s = report_nodes(label, secs, &cpu, load0);
    stored = rows_stored(conninfo);
    missing = devices_missing_acks(label);
    printf("%s_rows_stored=%lld target=%u\n", label, stored, devices * pushes);
    printf("%s_devices_missing_acks=%u target=0\n", label, missing);
    fflush(stdout);
    rc = n_busy == 0 && n_rtt == devices * pushes && missing == 0 &&
                 stored == (long long)devices * pushes
             ? 0
             : 1;
    if (rc != 0)
        fprintf(stderr, "bench_abuse: %s LOST PUSHES OR WAS REFUSED: the figures above do not "
                        "count\n", label);
    lws_context_destroy(ctx);
done:
    for (uint32_t k = nodes; k-- > 0;)
        if (fx[k].pid > 0)
            fixture_stop(&fx[k]);
    if (rc != 0 && fx[0].dir[0])
        fprintf(stderr, "bench_abuse: %s: the nodes' logs are kept in %s\n", label, fx[0].dir);
    else
        fixture_destroy(&fx[0]);
    return rc;
}

/* Phase 2: 1 node, then `nodes`, each on a fresh database of one private cluster. */
static int run_postgresql(uint32_t nodes, uint32_t devices, uint32_t pushes, uint32_t teams_of)
{
    pg_cluster pg;
    double one = 0, many = 0;
    int rc = 1;

    memset(&pg, 0, sizeof pg);
    if (!pg_cluster_available() || pg_cluster_start(&pg) != 0) {
        fprintf(stderr, "bench_abuse: no PostgreSQL 15 server for the nodes runs "
                        "(scripts/deps.sh installs it)\n");
        pg_cluster_stop(&pg);
        return 1;
    }
    rc = run_pg_nodes(&pg, 1, devices, pushes, teams_of, &one);
    if (rc == 0 && nodes > 1)
        rc = run_pg_nodes(&pg, nodes, devices, pushes, teams_of, &many);
    if (rc == 0 && nodes > 1)
        printf("nodes_pg%u_vs_pg1_ratio=%.2f (syncs/s of %u nodes over 1 node; the machine's "
               "%ld cores are shared by every node, PostgreSQL and this generator)\n",
               nodes, one > 0 ? many / one : 0.0, nodes, sysconf(_SC_NPROCESSORS_ONLN));
    pg_cluster_stop(&pg);
    return rc;
}

/* Nodes that already run (OUTPOST_BENCH_PORTS): nodes_ext_* lines. */
static int run_external(const char *ca_path, const char *conninfo, uint32_t devices,
                        uint32_t pushes)
{
    struct lws_context *ctx;
    double secs = 0, load0 = loadavg_1m();
    int rc;

    reset_run(devices, pushes, 0, n_nodes, 0);
    if (enroll_all(NULL, conninfo) != 0) {
        fprintf(stderr, "bench_abuse: cannot enroll the devices in %s\n", conninfo);
        return 1;
    }
    ctx = run_load(ca_path, &secs);
    if (!ctx)
        return 1;
    report_nodes("nodes_ext", secs, NULL, load0);
    printf("nodes_ext_devices_missing_acks=%u target=0\n", devices_missing_acks("nodes_ext"));
    rc = n_busy == 0 && n_rtt == devices * pushes ? 0 : 1;
    lws_context_destroy(ctx);
    return rc;
}

/* A positive count from the environment, or dflt. */
static uint32_t env_count(const char *name, uint32_t dflt, bool zero_ok)
{
    const char *env = getenv(name);
    if (env && (atoi(env) > 0 || (zero_ok && strcmp(env, "0") == 0)))
        return (uint32_t)atoi(env);
    return dflt;
}

int main(void)
{
    struct rlimit rl;
    const char *env, *only = getenv("OUTPOST_BENCH_ONLY");
    uint32_t sq_devices = env_count("OUTPOST_BENCH_DEVICES", 1000, false);
    uint32_t sq_pushes = env_count("OUTPOST_BENCH_PUSHES", 10, false);
    uint32_t idle = env_count("OUTPOST_BENCH_IDLE", 5000, true);
    uint32_t pg_devices = env_count("OUTPOST_BENCH_DEVICES", 500, false);
    uint32_t pg_pushes = env_count("OUTPOST_BENCH_PUSHES", 5, false);
    uint32_t nodes = env_count("OUTPOST_BENCH_NODES", 2, false);
    uint32_t teams_of = env_count("OUTPOST_BENCH_TEAM_SIZE", 20, true);
    pulls_on = env_count("OUTPOST_BENCH_PULL", 1, true) != 0;
    bool sqlite = !only || strcmp(only, "sqlite") == 0;
    bool postgresql = !only || strcmp(only, "postgresql") == 0;
    const char *conninfo = NULL;
    int rc = 0;

    if (only && !sqlite && !postgresql) {
        fprintf(stderr, "OUTPOST_BENCH_ONLY: expected sqlite or postgresql\n");
        return 2;
    }
    if (nodes > MAX_NODES)
        nodes = MAX_NODES;
    if ((env = getenv("OUTPOST_BENCH_PORTS")) && *env) {
        char *end = NULL;
        n_nodes = 0;
        for (const char *p = env; *p && n_nodes < MAX_NODES; p = *end ? end + 1 : end) {
            unsigned long port = strtoul(p, &end, 10);
            if (end == p || port == 0 || port > 65535 || (*end && *end != ',')) {
                fprintf(stderr, "OUTPOST_BENCH_PORTS: expected PORT,PORT,... (1..65535)\n");
                return 2;
            }
            ports[n_nodes++] = (uint16_t)port;
        }
        conninfo = getenv("OUTPOST_BENCH_CONNINFO");
        if (!conninfo || !getenv("OUTPOST_BENCH_CA")) {
            fprintf(stderr, "OUTPOST_BENCH_PORTS needs OUTPOST_BENCH_CA (the CA file the nodes "
                            "pin) and OUTPOST_BENCH_CONNINFO (their PostgreSQL store)\n");
            return 2;
        }
        sqlite = postgresql = false;
        idle = 0;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        uint32_t most = sq_devices > pg_devices ? sq_devices : pg_devices;
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
        /* this process and outpostd each need a descriptor per connection */
        if (rl.rlim_cur != RLIM_INFINITY && most + idle + 512 > rl.rlim_cur)
            idle = rl.rlim_cur > most + 512 ? (uint32_t)(rl.rlim_cur - most - 512) : 0;
    }
    n_devs_alloc = (sq_devices > pg_devices ? sq_devices : pg_devices) + idle;
    {
        size_t most = (size_t)(sq_devices > pg_devices ? sq_devices : pg_devices) *
                      (sq_pushes > pg_pushes ? sq_pushes : pg_pushes);
        devs = calloc(n_devs_alloc, sizeof *devs);
        rtt_us = calloc(most, sizeof *rtt_us);
        rtt_node = calloc(most, sizeof *rtt_node);
    }
    if (!devs || !rtt_us || !rtt_node)
        return 1;

    if (conninfo)
        rc |= run_external(getenv("OUTPOST_BENCH_CA"), conninfo, pg_devices, pg_pushes);
    if (sqlite)
        rc |= run_sqlite(sq_devices, sq_pushes, idle);
    if (postgresql)
        rc |= run_postgresql(nodes, pg_devices, pg_pushes, teams_of);

    reset_run(0, 0, 0, 1, 0);
    free(devs);
    free(rtt_us);
    free(rtt_node);
    return rc;
}
