/* Every SWEEP_INTERVAL_US the service thread lists the devices holding an authenticated
 * session and asks the login lane's store worker (one SWEEP job, one indexed lookup per device) which of
 * them are now revoked or belong to a disabled worker; their sessions end with ERROR 4, retry
 * true, so each device connects again and the answer to its HELLO carries the verdict (WIPE
 * when a wipe was ordered). One sweep is in flight at a time; none runs with no session. */
#include "sweep.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "log.h"
#include "ops.h"
#include "session.h"

#define SWEEP_INTERVAL_US (2 * 1000 * 1000)

static struct {
    server *srv;
    lws_sorted_usec_list_t timer;
    bool in_flight;
} sweep;

static void sweep_tick(lws_sorted_usec_list_t *sul)
{
    server *srv = sweep.srv;
    uint32_t n = 0;

    lws_sul_schedule(srv->context, 0, sul, sweep_tick, SWEEP_INTERVAL_US);
    if (sweep.in_flight)
        return;
    for (uint32_t i = 0; i < srv->config.limits.max_connections; i++) {
        const session *s = srv->slots[i];
        n += s && s->authenticated && s->state == SESSION_READY;
    }
    /* On PostgreSQL a sweep with no device still asks the database: /healthz reports it. */
    if (n == 0 && strcmp(srv->config.store_engine, "postgresql") != 0)
        return;
    job *j = job_new(JOB_SWEEP, 0, 0);
    if (!j)
        return;
    j->sweep_ids = calloc(n ? n : 1, sizeof *j->sweep_ids);
    j->sweep_barred = calloc(n ? n : 1, sizeof *j->sweep_barred);
    if (!j->sweep_ids || !j->sweep_barred) {
        job_free(j);
        return;
    }
    for (uint32_t i = 0; i < srv->config.limits.max_connections && j->n_sweep < n; i++) {
        const session *s = srv->slots[i];
        if (s && s->authenticated && s->state == SESSION_READY)
            memcpy(j->sweep_ids[j->n_sweep++], s->device.device_id, sizeof j->sweep_ids[0]);
    }
    /* The sweep runs on the login lane (its own store handle), never in the sync lane, where
     * it would take a device job's room; and only when that lane is idle, so it never holds a
     * login back behind it. Busy: this round is skipped and the next tick asks again. */
    if (worker_in_flight(srv->login_worker) != 0 || worker_submit(srv->login_worker, j) != 0) {
        job_free(j);
        return;
    }
    sweep.in_flight = true;
}

void sweep_start(server *srv)
{
    sweep.srv = srv;
    sweep.in_flight = false;
    lws_sul_schedule(srv->context, 0, &sweep.timer, sweep_tick, SWEEP_INTERVAL_US);
}

void sweep_stop(void)
{
    lws_sul_cancel(&sweep.timer);
}

void sweep_done(server *srv, job *j)
{
    sweep.in_flight = false;
    ops_store_probed(j->rc, j->errmsg);
    if (j->rc == STORE_EREPLACED && !srv->store_replaced) {
        srv->store_replaced = true;
        log_msg(LOG_ERROR, "store: %s. outpostd no longer serves devices: if a backup was "
                "restored into the database, run outpost-admin restored on it with every outpostd "
                "stopped, then start them again (docs/operations.md, \"Restoring a PostgreSQL "
                "store\")", j->errmsg);
        for (uint32_t i = 0; i < srv->config.limits.max_connections; i++)
            if (srv->slots[i])
                session_store_replaced(srv->slots[i]);
    }
    if (j->rc != STORE_OK && j->n_sweep > 0)
        log_msg(LOG_WARN, "revocation sweep failed: %s", j->errmsg[0] ? j->errmsg : "store error");
    for (uint32_t k = 0; j->rc == STORE_OK && k < j->n_sweep; k++) {
        if (!j->sweep_barred[k])
            continue;
        for (uint32_t i = 0; i < srv->config.limits.max_connections; i++) {
            session *s = srv->slots[i];
            if (!s || !s->authenticated || s->state != SESSION_READY ||
                strcmp(s->device.device_id, j->sweep_ids[k]) != 0)
                continue;
            log_msg(LOG_INFO, "conn=%" PRIu64 " device=%s revoked or disabled while connected: "
                    "session closed", s->id, s->device.device_id);
            session_barred(s);
        }
    }
    job_free(j);
}
