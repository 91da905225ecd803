#include "announce.h"

#include <psa/crypto.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "dashboard.h"
#include "log.h"

static struct {
    server *srv;
    store *st; /* the listening connection; NULL until open */
    lws_sorted_usec_list_t timer;
    bool running;
    bool lost; /* the connection was lost: what was announced since went unheard */
} listener;

const char *announce_node_name(void)
{
    static char name[24];

    if (!name[0]) {
        uint8_t raw[8] = {0};
        /* Without random bytes the pid still tells this node from the others on most hosts. */
        if (psa_crypto_init() != PSA_SUCCESS || psa_generate_random(raw, sizeof raw) != PSA_SUCCESS)
            snprintf(name, sizeof name, "node-%ld", (long)getpid());
        else
            snprintf(name, sizeof name, "node-%02x%02x%02x%02x%02x%02x%02x%02x", raw[0], raw[1],
                     raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]);
    }
    return name;
}

void announce_heard(server *srv, const char *origin, const char *team, uint64_t server_seq)
{
    store_push_info info;
    char teams[1][64];

    if (strcmp(origin, announce_node_name()) == 0)
        return;
    memset(&info, 0, sizeof info);
    snprintf(teams[0], sizeof teams[0], "%s", team);
    info.teams_touched = teams;
    info.n_teams_touched = 1;
    info.server_seq = server_seq;
    server_notify_teams(srv, 0, &info);
    dashboard_event(srv->dash, DASH_EVENT_RECORDS | DASH_EVENT_SYNC,
                    (const char(*)[64])teams, 1);
}

void announce_listening_again(server *srv)
{
    log_msg(LOG_INFO, "listening again: every device connected here pulls what other nodes"
                      " committed meanwhile");
    server_notify_all(srv);
}

static void on_heard(const char *origin, const char *team, uint64_t server_seq, void *user_data)
{
    announce_heard(user_data, origin, team, server_seq);
}

static void close_listener(void)
{
    store_close(listener.st);
    listener.st = NULL;
}

static bool open_listener(server *srv)
{
    char err[256] = "";

    if (store_open_postgresql(srv->config.store_conninfo, false, &listener.st, err,
                              sizeof err) != STORE_OK ||
        store_announce_listen(listener.st) != STORE_OK) {
        log_limited(LOG_WARN, "cannot listen for other nodes' changes: %s",
                    listener.st ? store_errmsg(listener.st) : err);
        close_listener();
        return false;
    }
    log_msg(LOG_INFO, "listening for other nodes' changes node=%s", announce_node_name());
    return true;
}

static void announce_tick(lws_sorted_usec_list_t *sul)
{
    server *srv = listener.srv;

    if (!listener.st) {
        if (!open_listener(srv)) {
            lws_sul_schedule(srv->context, 0, sul, announce_tick, ANNOUNCE_RETRY_US);
            return;
        }
        if (listener.lost)
            announce_listening_again(srv);
        listener.lost = false;
    }
    /* Never waits: the descriptor is only read when something arrived. */
    if (store_announcements(listener.st, 0, on_heard, srv) < 0) {
        /* The server went away (a failover): devices connected here pull on their own timer
         * until the connection is back, and all of them once it is. */
        log_limited(LOG_WARN, "lost the connection that hears other nodes' changes: %s",
                    store_errmsg(listener.st));
        close_listener();
        listener.lost = true;
        lws_sul_schedule(srv->context, 0, sul, announce_tick, ANNOUNCE_RETRY_US);
        return;
    }
    lws_sul_schedule(srv->context, 0, sul, announce_tick, ANNOUNCE_POLL_US);
}

void announce_start(server *srv)
{
    listener.srv = srv;
    listener.running = strcmp(srv->config.store_engine, "postgresql") == 0;
    if (listener.running)
        lws_sul_schedule(srv->context, 0, &listener.timer, announce_tick, 0);
}

void announce_stop(void)
{
    if (listener.running)
        lws_sul_cancel(&listener.timer);
    listener.running = false;
    close_listener();
}
