/*
 * Protocol-level load against one outpostd (issue 12's figures): many simulated devices
 * multiplexed on one lws client context in this one process over real TLS, not one sync engine
 * thread per device. Every device belongs to worker w1 (team t1), so every push concerns every
 * other device: the NOTIFY fan-out is the worst case. Each device says HELLO, then pushes
 * PUSHES small entries one after the other (waiting for each ACK), and pulls when told NOTIFY.
 *
 * Then OUTPOST_BENCH_IDLE more devices (default 5000, as the open-file limit allows) connect,
 * say HELLO and stay idle: the server's memory per idle connection.
 *
 * OUTPOST_BENCH_DEVICES (default 1000) and OUTPOST_BENCH_PUSHES (default 10). Prints name=value
 * lines beside their targets. Never a timed test.
 *
 * Several nodes (issue 17): device i talks to node i % N, and the pushes acknowledged per
 * second (a "sync": one entry pushed and its ACK) and the p99 of their round trips are printed
 * per node and in total. OUTPOST_BENCH_NODES=N asks for N outpostd processes on this
 * benchmark's own store; one SQLite store serves one outpostd, so with the SQLite store it
 * runs one node and says that the other figures wait for the PostgreSQL sync path. To drive
 * nodes that already run (on one PostgreSQL), give OUTPOST_BENCH_PORTS=PORT,PORT,... (on
 * 127.0.0.1), OUTPOST_BENCH_CA=FILE (the CA they pin) and OUTPOST_BENCH_CONNINFO=CONNINFO (their
 * store, where the devices are enrolled for worker w1 of team t1): no idle phase, no RSS.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <libwebsockets.h>

#include "daemon_fixture.h"
#include "store.h"

enum { ST_CONNECTING, ST_HELLO, ST_READY, ST_DONE, ST_CLOSED };

#define MAX_NODES 16

typedef struct bdev {
    struct lws *wsi;
    uint32_t node;      /* index into ports */
    char id[40];
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

static uint32_t n_devices = 1000, n_pushes = 10, n_idle = 5000;
static uint32_t n_nodes = 1, n_nodes_asked = 1;
static uint16_t ports[MAX_NODES];
static const char *conninfo; /* external nodes: their PostgreSQL store */
static bdev *devs;
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
        proto_msg *m = fixture_insert_push(d->pushed + 1, 1, ids, "t1", "bench");
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
        d->want_pull = true;
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

static int enroll_all(const daemon_fixture *fx)
{
    store *st = NULL;
    char err[256];
    int rc = 0;

    if (conninfo) {
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
    } else if (store_open(fx->store_path, false, &st, err, sizeof err) != STORE_OK) {
        return -1;
    }
    for (uint32_t i = 0; i < n_devices + n_idle && rc == 0; i++) {
        char code[STORE_CODE_SIZE];
        rc = store_enroll_code_create(st, "w1", 0, UINT64_MAX / 2, code) == STORE_OK &&
                     store_device_enroll(st, code, "bench", devs[i].id, devs[i].secret) ==
                         STORE_OK
                 ? 0
                 : -1;
    }
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

/* The p99 of the sorted samples. */
static uint64_t p99_of(const uint64_t *sorted, uint32_t n)
{
    return n ? sorted[(size_t)((double)n * 0.99)] : 0;
}

/* Per node and in total: pushes acknowledged per second over the whole run, and their p99. */
static void report_nodes(double secs)
{
    uint64_t *mine = calloc(n_rtt ? n_rtt : 1, sizeof *mine);

    printf("load_nodes_asked=%u\n", n_nodes_asked);
    printf("load_nodes=%u\n", n_nodes);
    if (n_nodes < n_nodes_asked)
        printf("load_nodes_pending=%u reason=one_sqlite_store_serves_one_outpostd_"
               "(several_nodes_need_the_postgresql_sync_path)\n",
               n_nodes_asked - n_nodes);
    if (!mine)
        return;
    for (uint32_t k = 0; k < n_nodes; k++) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < n_rtt; i++) /* rtt_us is sorted: so is mine */
            if (rtt_node[i] == k)
                mine[n++] = rtt_us[i];
        printf("node%u_port=%u\n", k, (unsigned)ports[k]);
        printf("node%u_syncs=%u\n", k, n);
        printf("node%u_syncs_per_s=%.0f\n", k, secs > 0 ? n / secs : 0.0);
        printf("node%u_sync_p99_ms=%.1f\n", k, (double)p99_of(mine, n) / 1000.0);
    }
    printf("total_syncs_per_s=%.0f\n", secs > 0 ? n_rtt / secs : 0.0);
    printf("total_sync_p99_ms=%.1f\n", (double)p99_of(rtt_us, n_rtt) / 1000.0);
    free(mine);
}

static void report(const daemon_fixture *fx, uint64_t t0)
{
    double secs = (double)(now_us() - t0) / 1e6;
    uint64_t p50 = 0, p99 = 0;

    sort_samples();
    if (n_rtt > 0) {
        p50 = rtt_us[n_rtt / 2];
        p99 = rtt_us[(size_t)((double)n_rtt * 0.99)];
    }
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
    if (fx->pid > 0) {
        printf("abuse_server_rss_kib=%ld\n", status_kib(fx->pid, "VmRSS"));
        printf("abuse_server_peak_rss_kib=%ld\n", status_kib(fx->pid, "VmHWM"));
    }
    report_nodes(secs);
    fflush(stdout);
}

/* Phase 2: n_idle more devices connect, say HELLO and stay; RSS before and after. */
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

int main(void)
{
    struct lws_context_creation_info info;
    struct lws_context *ctx;
    daemon_fixture fx;
    struct rlimit rl;
    char limits[256];
    const char *env;
    uint32_t next = 0;
    uint64_t t0, deadline;
    int rc = 1;

    if ((env = getenv("OUTPOST_BENCH_DEVICES")) && atoi(env) > 0)
        n_devices = (uint32_t)atoi(env);
    if ((env = getenv("OUTPOST_BENCH_PUSHES")) && atoi(env) > 0)
        n_pushes = (uint32_t)atoi(env);
    if ((env = getenv("OUTPOST_BENCH_IDLE")) && atoi(env) >= 0)
        n_idle = (uint32_t)atoi(env);
    if ((env = getenv("OUTPOST_BENCH_NODES")) && atoi(env) > 0)
        n_nodes_asked = (uint32_t)atoi(env) < MAX_NODES ? (uint32_t)atoi(env) : MAX_NODES;
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
        n_nodes_asked = n_nodes;
        conninfo = getenv("OUTPOST_BENCH_CONNINFO");
        if (!conninfo || !getenv("OUTPOST_BENCH_CA")) {
            fprintf(stderr, "OUTPOST_BENCH_PORTS needs OUTPOST_BENCH_CA (the CA file the nodes "
                            "pin) and OUTPOST_BENCH_CONNINFO (their PostgreSQL store)\n");
            return 2;
        }
        n_idle = 0;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
        /* this process and outpostd each need a descriptor per connection */
        if (rl.rlim_cur != RLIM_INFINITY && n_devices + n_idle + 512 > rl.rlim_cur)
            n_idle = rl.rlim_cur > n_devices + 512 ? (uint32_t)(rl.rlim_cur - n_devices - 512) : 0;
    }
    devs = calloc(n_devices + n_idle, sizeof *devs);
    rtt_us = calloc((size_t)n_devices * n_pushes, sizeof *rtt_us);
    rtt_node = calloc((size_t)n_devices * n_pushes, sizeof *rtt_node);
    if (!devs || !rtt_us || !rtt_node)
        return 1;
    /* Every simulated device shares one address (loopback): allow them all to be connecting. */
    snprintf(limits, sizeof limits,
             "max_connections = %u\nmax_waiting_jobs = %u\nmax_unauthenticated_per_address = %u\n",
             n_devices + n_idle + 64, n_devices + n_idle + 64, n_devices + n_idle + 64);
    memset(&fx, 0, sizeof fx);
    if (conninfo) {
        snprintf(fx.ca_path, sizeof fx.ca_path, "%s", getenv("OUTPOST_BENCH_CA"));
        if (enroll_all(&fx) != 0) {
            fprintf(stderr, "cannot enroll the devices in %s\n", conninfo);
            goto done;
        }
    } else {
        /* One SQLite store serves one outpostd (its lock): one node. */
        n_nodes = 1;
        if (fixture_create(&fx, limits) != 0 || enroll_all(&fx) != 0 ||
            fixture_start(&fx) != 0) {
            fprintf(stderr, "cannot prepare outpostd for the benchmark\n");
            goto done;
        }
        ports[0] = fx.port;
    }
    for (uint32_t i = 0; i < n_devices; i++)
        devs[i].node = i % n_nodes;

    lws_set_log_level(LLL_ERR, NULL);
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.client_ssl_ca_filepath = fx.ca_path;
    info.fd_limit_per_thread = n_devices + n_idle + 64;
    ctx = lws_create_context(&info);
    if (!ctx)
        goto done;

    t0 = now_us();
    deadline = t0 + 600u * 1000000u;
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
    report(&fx, t0);
    rc = n_busy == 0 && n_rtt == n_devices * n_pushes ? 0 : 1;
    if (fx.pid > 0)
    idle_phase(ctx, &fx);
    lws_context_destroy(ctx);

done:
    if (!conninfo) {
        fixture_stop(&fx);
        fixture_destroy(&fx);
    }
    for (uint32_t i = 0; i < n_devices + n_idle; i++) {
        proto_buf_free(&devs[i].out);
        free(devs[i].rx);
    }
    free(devs);
    free(rtt_us);
    free(rtt_node);
    return rc;
}
