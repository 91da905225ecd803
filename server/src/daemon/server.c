#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <libwebsockets.h>

#include "dashboard.h"
#include "http.h"
#include "live.h"
#include "log.h"
#include "outpost_build_id.h"
#include "outpost_version.h"
#include "ops.h"
#include "session.h"
#include "announce.h"
#include "sweep.h"
#include "sync_handler.h"
#include "tls.h"

/* How often the service loop wakes to notice a stop request that raced with poll(). */
#define STOP_POLL_US (250 * 1000)
/* Descriptors outpostd keeps for itself beyond what lws may use. */
#define FD_RESERVE 64u
/* Largest CA file accepted for ENROLLED. */
#define CA_PEM_MAX (64u * 1024u)
/* The largest plaintext one TLS record carries (RFC 8446 5.1): see pt_serv_buf_size below. */
#define TLS_RECORD_PLAINTEXT_BYTES (16u * 1024u)
/* Pull pages read ahead for devices, all together (pull_ahead.h; docs/operations.md). */
#define PULL_AHEAD_BYTES (4u * 1024u * 1024u)

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* The limits a sync session runs under, as WELCOME advertises them (`lims`). */
static proto_session_limits session_limits_of(const daemon_limits *limits)
{
    proto_session_limits out;

    memset(&out, 0, sizeof out);
    out.max_message_bytes = limits->max_message_bytes;
    out.max_transaction_bytes = limits->max_transaction_bytes;
    out.message_timeout_ms = daemon_chunk_gap_s(limits) * 1000u;
    out.idle_timeout_ms = limits->idle_timeout_s * 1000u;
    out.max_page_rows = limits->pull_page_rows;
    return out;
}

static void on_reload_signal(int sig)
{
    (void)sig;
    reload_requested = 1;
}

uint64_t server_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int server_slot_acquire(server *srv, session *s, uint32_t *out_slot)
{
    if (srv->n_free == 0)
        return -1;
    *out_slot = srv->free_slots[--srv->n_free];
    srv->slots[*out_slot] = s;
    return 0;
}

void server_slot_release(server *srv, uint32_t slot)
{
    srv->slots[slot] = NULL;
    srv->free_slots[srv->n_free++] = slot;
}

uint32_t server_sessions(const server *srv)
{
    return srv->config.limits.max_connections - srv->n_free;
}

void server_notify_teams(server *srv, uint64_t origin_id, const store_push_info *info)
{
    uint32_t n_notified = 0;

    if (info->duplicate || info->rejected || info->n_teams_touched == 0)
        return;
    for (uint32_t i = 0; i < srv->config.limits.max_connections; i++) {
        session *s = srv->slots[i];
        if (!s || s->id == origin_id || s->state != SESSION_READY)
            continue;
        if (session_in_teams(s, (const char(*)[64])info->teams_touched, info->n_teams_touched)) {
            session_notify(s, info->server_seq);
            n_notified++;
        }
    }
    if (n_notified > 0)
        log_msg(LOG_DEBUG, "notify server_seq=%" PRIu64 " sessions=%" PRIu32, info->server_seq,
                n_notified);
}

void server_notify_all(server *srv)
{
    uint32_t n_notified = 0;

    for (uint32_t i = 0; i < srv->config.limits.max_connections; i++) {
        session *s = srv->slots[i];
        if (s && s->state == SESSION_READY) {
            session_notify(s, 0);
            n_notified++;
        }
    }
    if (n_notified > 0)
        log_msg(LOG_DEBUG, "notify all sessions=%" PRIu32, n_notified);
}

static void dispatch(server *srv, job *list)
{
    while (list) {
        job *j = list;
        session *s;
        list = j->next;
        j->next = NULL;
        if (j->kind == JOB_SWEEP) {
            sweep_done(srv, j);
            continue;
        }
        ops_job_done(j);
        if (j->kind == JOB_DASH) {
            dashboard_job_done(srv->dash, j);
            continue;
        }
        /* A committed push notifies others even when its own connection is gone. */
        if (j->kind == JOB_PUSH && j->rc == STORE_OK) {
            server_notify_teams(srv, j->session_id, &j->push_info);
            if (!j->push_info.duplicate && !j->push_info.rejected)
                dashboard_event(srv->dash,
                                DASH_EVENT_RECORDS | DASH_EVENT_SYNC |
                                    (j->push_info.n_conflicts ? DASH_EVENT_CONFLICTS : 0u),
                                (const char(*)[64])j->push_info.teams_touched,
                                j->push_info.n_teams_touched);
        }
        if (j->kind == JOB_AUTH)
            server_learn_tables(srv, j->schema_version, &j->schema_tables, &j->n_schema_tables);
        /* A device that authenticated or pulled has a new "last sync". */
        if ((j->kind == JOB_AUTH || j->kind == JOB_PULL) && j->rc == STORE_OK)
            dashboard_event(srv->dash, DASH_EVENT_SYNC, (const char(*)[64])j->device.teams,
                            j->device.n_teams);
        s = srv->slots[j->slot];
        if (s && s->id == j->session_id) {
            session_job_done(s, j);
        } else {
            /* Its page read ahead (kept, or being read now) has nobody to go to. */
            if (j->kind == JOB_PULL)
                pull_ahead_drop(srv->ahead, j->slot, j->session_id);
            if (j->kind == JOB_PUSH && j->rc == STORE_OK && !j->push_malformed)
                session_log_push(j, true);
            else
                log_msg(LOG_DEBUG, "conn=%" PRIu64 " closed before its reply was ready",
                        j->session_id);
            job_free(j);
        }
    }
}

void server_learn_tables(server *srv, uint32_t version, char ***names, uint32_t *n_names)
{
    char **drop = *names;
    uint32_t n_drop = *n_names;

    if (!drop)
        return;
    if (!srv->sync_tables || version >= srv->sync_tables_version) {
        drop = srv->sync_tables;
        n_drop = srv->n_sync_tables;
        srv->sync_tables = *names;
        srv->n_sync_tables = *n_names;
        srv->sync_tables_version = version;
    }
    job_free_names(drop, n_drop);
    *names = NULL;
    *n_names = 0;
}

bool server_table_known(const server *srv, const char *name)
{
    for (uint32_t i = 0; i < srv->n_sync_tables; i++)
        if (strcmp(srv->sync_tables[i], name) == 0)
            return true;
    return false;
}

int server_submit(server *srv, job *j, bool must_wait)
{
    if (!srv->wait_head && worker_submit(srv->worker, j) == 0)
        return 0;
    if (!must_wait && srv->n_waiting >= srv->config.limits.max_waiting_jobs)
        return -1;
    j->next = NULL;
    if (srv->wait_tail)
        srv->wait_tail->next = j;
    else
        srv->wait_head = j;
    srv->wait_tail = j;
    srv->n_waiting++;
    return 0;
}

bool server_unwait(server *srv, job *j)
{
    job **p = &srv->wait_head, *prev = NULL;

    for (; *p; prev = *p, p = &(*p)->next) {
        if (*p != j)
            continue;
        *p = j->next;
        if (srv->wait_tail == j)
            srv->wait_tail = prev;
        srv->n_waiting--;
        j->next = NULL;
        return true;
    }
    return false;
}

/* Moves waiting jobs into the worker's queue while it has room, oldest first. */
static void feed_waiting(server *srv)
{
    while (srv->wait_head) {
        job *j = srv->wait_head;
        job *next = j->next;
        if (worker_submit(srv->worker, j) != 0)
            return;
        srv->wait_head = next;
        if (!next)
            srv->wait_tail = NULL;
        srv->n_waiting--;
    }
}

void server_dispatch_completions(server *srv)
{
    dispatch(srv, worker_take_done(srv->worker));
    feed_waiting(srv);
    if (srv->login_worker)
        dispatch(srv, worker_take_done(srv->login_worker));
}

static void wake_service(void *arg)
{
    server *srv = arg;

    lws_cancel_service(srv->context);
}

static int read_ca(const char *path, char **out_pem, char *err, size_t err_size)
{
    FILE *f = fopen(path, "rb");
    char *pem = NULL;
    size_t n;

    if (!f) {
        snprintf(err, err_size, "CA certificate %s: %s", path, strerror(errno));
        return -1;
    }
    pem = malloc(CA_PEM_MAX + 1);
    if (!pem) {
        fclose(f);
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    n = fread(pem, 1, CA_PEM_MAX + 1, f);
    fclose(f);
    if (n == 0 || n > CA_PEM_MAX) {
        free(pem);
        snprintf(err, err_size, "CA certificate %s: empty or larger than %u bytes", path,
                 CA_PEM_MAX);
        return -1;
    }
    pem[n] = '\0';
    *out_pem = pem;
    return 0;
}

/* Lets max_connections sockets be open (plus lws's own and the HTTP side's). Returns how many
 * descriptors lws may use: the open-file limit less FD_RESERVE for the store, the log and the
 * worker, so that lws stops accepting (and leaves connections in the listen backlog) before
 * accept() could fail with EMFILE. */
static unsigned fd_limit_for_lws(uint32_t max_connections)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)max_connections + 256;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0; /* lws's own default */
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
            log_msg(LOG_WARN, "open-file limit %llu is below max_connections + 256",
                    (unsigned long long)rl.rlim_cur);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > want)
        rl.rlim_cur = want;
    return rl.rlim_cur > 2 * FD_RESERVE ? (unsigned)(rl.rlim_cur - FD_RESERVE) : FD_RESERVE;
}

static void stop_poll_tick(lws_sorted_usec_list_t *sul);

static lws_sorted_usec_list_t stop_poll;
static struct lws_context *stop_poll_context;

static void stop_poll_tick(lws_sorted_usec_list_t *sul)
{
    lws_sul_schedule(stop_poll_context, 0, sul, stop_poll_tick, STOP_POLL_US);
}

int server_run(const daemon_config *config)
{
    static const struct lws_protocols protocols_template[] = {
        {"http", http_callback, sizeof(http_request), 0, 0, NULL, 0},
        {SYNC_PROTOCOL_NAME, sync_callback, sizeof(session), 0, 0, NULL, 0},
        {LIVE_PROTOCOL_NAME, live_callback, sizeof(live_conn), 0, 0, NULL, 0},
        LWS_PROTOCOL_LIST_TERM,
    };
    struct lws_context_creation_info info;
    struct sigaction sa;
    struct lws_vhost *vhost;
    job_env env;
    server srv;
    char err[4096];
    int exit_code = 1;
    store_lock lock = {-1, -1};
    /* The conninfo may hold a password: logs name the engine, not the connection string. */
    const bool on_postgresql = strcmp(config->store_engine, "postgresql") == 0;
    const char *conninfo = on_postgresql ? config->store_conninfo : NULL;
    const char *store_name = on_postgresql ? "(PostgreSQL)" : config->store_path;
    unsigned fd_limit;

    memset(&srv, 0, sizeof srv);
    srv.config = *config;
    srv.next_session_id = 1;
    proto_limits_default(&srv.proto_limits);
    srv.proto_limits.max_message_bytes = config->limits.max_message_bytes;
    if (srv.proto_limits.max_bytes_value > config->limits.max_message_bytes)
        srv.proto_limits.max_bytes_value = config->limits.max_message_bytes;

    if (tls_load_identity(config, err, sizeof err) != 0 ||
        read_ca(config->ca_path, &srv.ca_pem, err, sizeof err) != 0) {
        log_msg(LOG_ERROR, "%s", err);
        goto done;
    }
    srv.slots = calloc(config->limits.max_connections, sizeof *srv.slots);
    srv.free_slots = calloc(config->limits.max_connections, sizeof *srv.free_slots);
    srv.ahead = pull_ahead_new(config->limits.max_connections, PULL_AHEAD_BYTES);
    if (!srv.slots || !srv.free_slots || !srv.ahead || dashboard_create(&srv, &srv.dash) != 0) {
        log_msg(LOG_ERROR, "out of memory");
        goto done;
    }
    for (uint32_t i = 0; i < config->limits.max_connections; i++)
        srv.free_slots[srv.n_free++] = config->limits.max_connections - 1 - i;

    memset(&env, 0, sizeof env);
    env.ca_pem = srv.ca_pem;
    env.max_reply_bytes = config->limits.max_message_bytes;
    env.pull_page_rows = config->limits.pull_page_rows;
    env.session_limits = session_limits_of(&config->limits);
    env.audit_key_path = config->audit_key_path;
    env.checkpoint_path = config->checkpoint_path[0] ? config->checkpoint_path : NULL;
    env.checkpoint_interval_s = config->checkpoint_interval_s;
    env.proto_limits = srv.proto_limits;
    env.device_lockout.max_failures = config->limits.lockout_failures;
    env.device_lockout.window_ms = (uint64_t)config->limits.lockout_window_s * 1000u;
    env.device_lockout.duration_ms = (uint64_t)config->limits.lockout_duration_s * 1000u;
    env.node = announce_node_name();
    env.ahead = srv.ahead;
    /* Two daemons on one SQLite file would each believe they own its sequences. On PostgreSQL
     * several nodes are the point: the store's writer lock (an advisory lock) serializes writes
     * and sessions live in the store. */
    if (!on_postgresql &&
        store_lock_acquire(config->store_path, &lock, err, sizeof err) != STORE_OK) {
        log_msg(LOG_ERROR, "store %s: %s", store_name, err);
        goto done;
    }
    job_env login_env = env;
    env.checkpoints = true;
    login_env.checkpoints = false;
    login_env.ahead = NULL; /* pulls run on the sync lane only */
    if (worker_start(config->store_path, conninfo, config->limits.queue_depth, &env, wake_service,
                     &srv, &srv.worker, err, sizeof err) != 0 ||
        worker_start(config->store_path, conninfo, config->limits.login_queue_depth, &login_env,
                     wake_service, &srv, &srv.login_worker, err, sizeof err) != 0) {
        log_msg(LOG_ERROR, "store %s: %s", store_name, err);
        goto done;
    }

    fd_limit = fd_limit_for_lws(config->limits.max_connections);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_reload_signal;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    memset(&info, 0, sizeof info);
    info.port = config->port;
    info.iface = strcmp(config->listen_addr, "*") == 0 ? NULL : config->listen_addr;
    if (info.iface && !strchr(info.iface, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    info.protocols = protocols_template;
    info.vhost_name = "outpostd";
    info.user = &srv;
    /* TLS accept and HTTP upgrade share the handshake budget; the session enforces the rest. */
    info.timeout_secs = config->limits.handshake_timeout_s;
    info.fd_limit_per_thread = fd_limit;
    /* lws reads a connection in steps of this size. While a session waits for its job it stops
     * reading (session.c update_flow); lws 4.3.5 then keeps the rest of the step, but whatever
     * of the same TLS record is still inside mbedTLS it tries to read again and again, and
     * after 100 tries closes the connection silently. One step that holds a whole record
     * (16 KiB of plaintext at most) leaves nothing inside mbedTLS: several messages coalesced
     * in one record, as a buffered writer sends them, are all read and answered in order. */
    info.pt_serv_buf_size = TLS_RECORD_PLAINTEXT_BYTES;
    info.options |= LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE;
    tls_fill_creation_info(&info, config);

    srv.context = lws_create_context(&info);
    if (!srv.context) {
        log_msg(LOG_ERROR, "cannot listen on %s port %u with certificate %s",
                config->listen_addr, (unsigned)config->port, config->cert_path);
        goto done;
    }
    vhost = lws_get_vhost_by_name(srv.context, "outpostd");
    if (vhost)
        srv.config.port = (uint16_t)lws_get_vhost_listen_port(vhost);
    log_msg(LOG_INFO,
            "outpostd listening addr=%s port=%u path=%s protocol=%s store=%s version=%s build=%s",
            config->listen_addr, (unsigned)srv.config.port, SYNC_PATH, SYNC_PROTOCOL_NAME,
            store_name, OUTPOST_VERSION_STRING, OUTPOST_BUILD_ID);

    stop_poll_context = srv.context;
    lws_sul_schedule(srv.context, 0, &stop_poll, stop_poll_tick, STOP_POLL_US);
    sweep_start(&srv);
    live_start(srv.dash, srv.context);
    announce_start(&srv);
    while (!stop_requested) {
        if (reload_requested) {
            reload_requested = 0;
            ops_reload(&srv);
        }
        if (lws_service(srv.context, 0) < 0)
            break;
    }
    log_msg(LOG_INFO, "outpostd stopping: %s", stop_requested ? "signal" : "service error");
    lws_sul_cancel(&stop_poll);
    sweep_stop();
    live_stop(srv.dash);
    announce_stop();
    exit_code = stop_requested ? 0 : 1;

done:
    /* The running store job finishes (its transaction commits or not as a whole); queued ones
     * are dropped, and their devices resend. Then lws closes every connection. */
    worker_stop(srv.worker);
    srv.worker = NULL;
    while (srv.wait_head) {
        job *j = srv.wait_head;
        srv.wait_head = j->next;
        job_free(j);
    }
    worker_stop(srv.login_worker);
    srv.login_worker = NULL;
    pull_ahead_free(srv.ahead);
    srv.ahead = NULL;
    store_lock_release(&lock);
    if (srv.context)
        lws_context_destroy(srv.context);
    tls_free_identities();
    tls_free_tickets();
    dashboard_destroy(srv.dash);
    free(srv.slots);
    free(srv.free_slots);
    free(srv.ca_pem);
    job_free_names(srv.sync_tables, srv.n_sync_tables);
    if (exit_code == 0)
        log_msg(LOG_INFO, "outpostd stopped");
    return exit_code;
}
