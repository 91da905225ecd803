#include "ops.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "dash_buf.h"
#include "log.h"
#include "outpost_build_id.h"
#include "outpost_version.h"
#include "session.h"
#include "tls.h"

/* A worker busy on one job longer than this is reported stuck. */
#define WORKER_STUCK_MS 30000u
/* Less free space than this beside the store is "not writable". */
#define STORE_MIN_FREE_BYTES (16u * 1024u * 1024u)

/* Store job durations, in seconds (Prometheus histogram upper bounds). */
static const double duration_bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
#define N_BOUNDS (sizeof duration_bounds / sizeof duration_bounds[0])

static const char *const kind_names[] = {"enroll", "auth", "push", "pull", "dashboard"};
#define N_KINDS (sizeof kind_names / sizeof kind_names[0])

typedef struct histogram {
    uint64_t buckets[N_BOUNDS]; /* not cumulative here; summed when written */
    uint64_t count;
    double sum;
} histogram;

static struct {
    uint64_t syncs;
    uint64_t enrollments;
    uint64_t pushes_applied, pushes_duplicate, pushes_rejected;
    uint64_t rows_pushed, rows_pulled;
    uint64_t conflicts;
    uint64_t auth_failures;
    uint64_t store_errors;
    uint64_t tls_handshake_failures;
    uint64_t tls_handshakes, tls_handshakes_resumed;
    uint64_t lockouts;
    histogram durations[N_KINDS];
    bool store_failing; /* the last store job failed with an I/O error or a full disk */
    bool store_replaced; /* PostgreSQL: the store's database was replaced (until a restart) */
    char store_why[200]; /* its message */
} counters;

void ops_job_done(const job *j)
{
    if (j->push_skipped)
        return; /* never ran: an earlier entry of its connection failed */
    histogram *h = &counters.durations[(size_t)j->kind < N_KINDS ? (size_t)j->kind : 0];
    double s = (double)j->run_us / 1e6;

    for (size_t i = 0; i < N_BOUNDS; i++) {
        if (s <= duration_bounds[i]) {
            h->buckets[i]++;
            break;
        }
    }
    h->count++;
    h->sum += s;
    if (j->rc == STORE_EIO || j->rc == STORE_EFULL) {
        counters.store_errors++;
        counters.store_failing = true;
        snprintf(counters.store_why, sizeof counters.store_why, "%s", j->errmsg);
        return;
    }
    if (j->rc == STORE_OK)
        counters.store_failing = false;
    switch (j->kind) {
    case JOB_ENROLL:
        if (j->rc == STORE_OK)
            counters.enrollments++;
        break;
    case JOB_AUTH:
        if (j->rc != STORE_OK)
            counters.auth_failures++;
        break;
    case JOB_PUSH:
        if (j->rc != STORE_OK)
            break;
        if (j->push_info.duplicate) {
            counters.pushes_duplicate++;
        } else if (j->push_info.rejected) {
            counters.pushes_rejected++;
        } else {
            counters.pushes_applied++;
            counters.rows_pushed += j->push_info.n_rows;
            counters.conflicts += j->push_info.n_conflicts;
        }
        break;
    case JOB_PULL:
        if (j->rc != STORE_OK)
            break;
        counters.rows_pulled += j->pull_info.n_rows;
        if (!j->pull_info.more)
            counters.syncs++;
        break;
    case JOB_DASH:
    default:
        break;
    }
}

void ops_store_probed(int rc, const char *why)
{
    if (rc == STORE_EREPLACED && !counters.store_replaced) {
        counters.store_replaced = true;
        snprintf(counters.store_why, sizeof counters.store_why, "%s", why);
    }
    if (rc == STORE_EIO || rc == STORE_EFULL) {
        counters.store_failing = true;
        snprintf(counters.store_why, sizeof counters.store_why, "%s", why);
    } else if (rc == STORE_OK) {
        counters.store_failing = false;
    }
}

void ops_tls_handshake_failed(void)
{
    counters.tls_handshake_failures++;
}

void ops_tls_handshake_done(void)
{
    counters.tls_handshakes++;
}

void ops_tls_handshake_resumed(void)
{
    counters.tls_handshakes_resumed++;
}

/* Called from the store workers, which lock authentications out: atomic, unlike the rest. */
void ops_lockout(void)
{
    __atomic_fetch_add(&counters.lockouts, 1, __ATOMIC_RELAXED);
}

/* ---- /healthz ------------------------------------------------------------------------------ */

/* Whether outpostd can write its store: the file and its directory (for -wal and -shm) are
 * writable, there is room beside it, and the last store job did not fail on I/O. */
static bool store_writable(const server *srv, char *why, size_t why_size)
{
    char dir[CONFIG_PATH_MAX];
    const char *slash = strrchr(srv->config.store_path, '/');
    struct statvfs vfs;

    /* PostgreSQL: no file here to check; the revocation sweep asks the
     * database every 2 s (a failed answer, or a failed store job, until one succeeds). */
    if (strcmp(srv->config.store_engine, "postgresql") == 0) {
        if (counters.store_replaced) {
            snprintf(why, why_size, "store: unavailable: %s", counters.store_why);
            return false;
        }
        if (counters.store_failing)
            snprintf(why, why_size, "store: cannot reach PostgreSQL: %s", counters.store_why);
        else
            snprintf(why, why_size, "store: reachable");
        return !counters.store_failing;
    }
    if (slash && slash != srv->config.store_path)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - srv->config.store_path),
                 srv->config.store_path);
    else
        snprintf(dir, sizeof dir, "%s", slash ? "/" : ".");
    if (access(srv->config.store_path, W_OK) != 0 || access(dir, W_OK) != 0) {
        snprintf(why, why_size, "store: not writable");
        return false;
    }
    if (statvfs(dir, &vfs) == 0 &&
        (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize < STORE_MIN_FREE_BYTES) {
        snprintf(why, why_size, "store: disk full");
        return false;
    }
    if (counters.store_failing) {
        snprintf(why, why_size, "store: the last write failed");
        return false;
    }
    snprintf(why, why_size, "store: writable");
    return true;
}

static int serve_health(server *srv, http_request *req)
{
    char store_line[256], body[384];
    uint64_t busy = worker_busy_ms(srv->worker);
    bool store_ok = store_writable(srv, store_line, sizeof store_line);
    bool worker_ok = busy < WORKER_STUCK_MS;
    int n = snprintf(body, sizeof body, "%s\n%s\nworker: %s\n",
                     store_ok && worker_ok ? "ok" : "unhealthy", store_line,
                     worker_ok ? "alive" : "stuck on one job");

    return http_respond(req, store_ok && worker_ok ? 200 : 503, "text/plain; charset=utf-8", body,
                        (size_t)n, false);
}

/* ---- /metrics ------------------------------------------------------------------------------ */

static bool metrics_allowed(const server *srv, struct lws *wsi, char *peer, size_t peer_size)
{
    const char *addr = peer;

    peer[0] = '\0';
    lws_get_peer_simple(wsi, peer, peer_size);
    if (strncmp(addr, "::ffff:", 7) == 0 && strchr(addr + 7, '.'))
        addr += 7; /* an IPv4 peer on a dual-stack socket */
    for (uint32_t i = 0; i < srv->config.n_metrics_allow; i++)
        if (strcmp(addr, srv->config.metrics_allow[i]) == 0)
            return true;
    return false;
}

static void counter(dash_buf *b, const char *name, const char *help, uint64_t value)
{
    dash_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name,
                    name, value);
}

static void gauge(dash_buf *b, const char *name, const char *help, uint64_t value)
{
    dash_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %" PRIu64 "\n", name, help, name, name,
                    value);
}

static void write_durations(dash_buf *b)
{
    static const char name[] = "outpost_store_job_duration_seconds";

    dash_buf_printf(b, "# HELP %s Time the store worker spent on one job, by kind.\n"
                       "# TYPE %s histogram\n",
                    name, name);
    for (size_t k = 0; k < N_KINDS; k++) {
        const histogram *h = &counters.durations[k];
        uint64_t cumulative = 0;
        for (size_t i = 0; i < N_BOUNDS; i++) {
            cumulative += h->buckets[i];
            dash_buf_printf(b, "%s_bucket{kind=\"%s\",le=\"%g\"} %" PRIu64 "\n", name,
                            kind_names[k], duration_bounds[i], cumulative);
        }
        dash_buf_printf(b, "%s_bucket{kind=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", name,
                        kind_names[k], h->count);
        dash_buf_printf(b, "%s_sum{kind=\"%s\"} %.6f\n%s_count{kind=\"%s\"} %" PRIu64 "\n", name,
                        kind_names[k], h->sum, name, kind_names[k], h->count);
    }
}

static uint32_t ready_sessions(const server *srv)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < srv->config.limits.max_connections; i++)
        if (srv->slots[i] && srv->slots[i]->state == SESSION_READY)
            n++;
    return n;
}

static int serve_metrics(server *srv, http_request *req)
{
    dash_buf b = {0};
    char peer[64];

    if (!metrics_allowed(srv, req->wsi, peer, sizeof peer)) {
        log_msg(LOG_WARN, "peer=%s refused /metrics (not in [metrics] allow)", peer);
        static const char refused[] = "forbidden: this address is not in [metrics] allow\n";
        return http_respond(req, 403, "text/plain; charset=utf-8", refused, sizeof refused - 1,
                            true);
    }
    dash_buf_printf(&b, "# HELP outpost_build_info The running outpostd's version.\n"
                        "# TYPE outpost_build_info gauge\n"
                        "outpost_build_info{version=\"%s\",build=\"%s\"} 1\n",
                    OUTPOST_VERSION_STRING, OUTPOST_BUILD_ID);
    gauge(&b, "outpost_connected_devices", "Devices connected and authenticated now.",
          ready_sessions(srv));
    gauge(&b, "outpost_connections", "WebSocket connection slots held now.",
          server_sessions(srv));
    counter(&b, "outpost_syncs_total", "Pulls that brought a device up to date.",
            counters.syncs);
    counter(&b, "outpost_enrollments_total", "Devices enrolled.", counters.enrollments);
    dash_buf_printf(&b, "# HELP outpost_pushes_total Device transactions received, by outcome.\n"
                        "# TYPE outpost_pushes_total counter\n"
                        "outpost_pushes_total{result=\"applied\"} %" PRIu64 "\n"
                        "outpost_pushes_total{result=\"duplicate\"} %" PRIu64 "\n"
                        "outpost_pushes_total{result=\"rejected\"} %" PRIu64 "\n",
                    counters.pushes_applied, counters.pushes_duplicate, counters.pushes_rejected);
    counter(&b, "outpost_pushed_rows_total", "Row changes applied from devices.",
            counters.rows_pushed);
    counter(&b, "outpost_pulled_rows_total", "Rows sent to devices in pulls.",
            counters.rows_pulled);
    counter(&b, "outpost_refusals_total", "Device transactions refused (REJECT).",
            counters.pushes_rejected);
    counter(&b, "outpost_conflicts_total", "Conflicts the merge decided (in the conflict log).",
            counters.conflicts);
    counter(&b, "outpost_auth_failures_total", "Failed device authentications.",
            counters.auth_failures);
    counter(&b, "outpost_lockouts_total", "Addresses locked out after failed authentications.",
            __atomic_load_n(&counters.lockouts, __ATOMIC_RELAXED));
    counter(&b, "outpost_tls_handshake_failures_total", "TLS handshakes that failed.",
            counters.tls_handshake_failures);
    counter(&b, "outpost_tls_handshakes_total", "TLS handshakes completed.",
            counters.tls_handshakes);
    counter(&b, "outpost_tls_handshakes_resumed_total",
            "TLS handshakes that resumed a session from a ticket (no certificate sent).",
            counters.tls_handshakes_resumed);
    counter(&b, "outpost_store_errors_total", "Store jobs that failed on I/O or a full disk.",
            counters.store_errors);
    gauge(&b, "outpost_store_queue_jobs", "Store jobs queued or running now.",
          worker_in_flight(srv->worker));
    gauge(&b, "outpost_store_queue_capacity", "Store jobs that may wait at once (queue_depth).",
          srv->config.limits.queue_depth);
    write_durations(&b);
    if (b.failed) {
        dash_buf_free(&b);
        return http_respond(req, 500, "text/plain; charset=utf-8", "out of memory\n", 14, true);
    }
    http_respond_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
    return 0;
}

bool ops_serve(server *srv, http_request *req, const char *path, int *out_rc)
{
    if (strcmp(path, "/healthz") == 0) {
        *out_rc = serve_health(srv, req);
        return true;
    }
    if (strcmp(path, "/metrics") == 0) {
        *out_rc = serve_metrics(srv, req);
        return true;
    }
    return false;
}

/* ---- SIGHUP -------------------------------------------------------------------------------- */

void ops_reload(server *srv)
{
    daemon_config fresh;
    char err[4096];
    const daemon_config *old = &srv->config;

    if (config_load(old->path, &fresh, err, sizeof err) != 0) {
        log_msg(LOG_ERROR, "reload refused, nothing changed: %s", err);
        return;
    }
    if (tls_load_identity(&fresh, err, sizeof err) != 0) {
        log_msg(LOG_ERROR, "reload refused, nothing changed: %s", err);
        return;
    }
    log_set_level(fresh.log_level);
    memcpy(srv->config.metrics_allow, fresh.metrics_allow, sizeof fresh.metrics_allow);
    srv->config.n_metrics_allow = fresh.n_metrics_allow;
    log_msg(LOG_INFO, "reloaded %s: certificate %s for new connections, log level, metrics "
                      "allow list",
            old->path, fresh.cert_path);
    if (strcmp(fresh.listen_addr, old->listen_addr) != 0 ||
        (fresh.port != 0 && fresh.port != old->port) ||
        strcmp(fresh.store_path, old->store_path) != 0 ||
        strcmp(fresh.store_engine, old->store_engine) != 0 ||
        strcmp(fresh.store_conninfo, old->store_conninfo) != 0 ||
        strcmp(fresh.audit_key_path, old->audit_key_path) != 0 ||
        strcmp(fresh.ca_path, old->ca_path) != 0 ||
        memcmp(&fresh.limits, &old->limits, sizeof fresh.limits) != 0 ||
        strcmp(fresh.dash_table, old->dash_table) != 0)
        log_msg(LOG_WARN, "reload: listen, port, store, ca, [limits] and [dashboard] changes take "
                          "effect at the next restart");
}
