#include "live.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dash_api.h"
#include "dashboard.h"
#include "log.h"
#include "server.h"

static bool shares_team(const dash_session *s, const char (*teams)[64], uint32_t n_teams)
{
    for (uint32_t i = 0; i < n_teams; i++)
        if (dash_session_has_team(s, teams[i]))
            return true;
    return false;
}

void live_broadcast(dashboard *dash, unsigned events, const char (*teams)[64], uint32_t n_teams)
{
    for (live_conn *c = dash->live; c; c = c->next) {
        if (!c->confirmed)
            continue; /* its answer from the store decides */
        dash_session *s = dash_session_peek(&dash->sessions, c->token, server_now_ms());
        if (!s) {
            c->closing = 1;
        } else if (shares_team(s, teams, n_teams)) {
            c->events |= events;
        } else {
            continue;
        }
        lws_callback_on_writable(c->wsi);
    }
}

/* Hands the worker the sessions of tokens to look up in the store (live_checked answers).
 * Returns 0, or -1: no memory, or the worker's queue is full. */
static int ask_store(dashboard *dash, const char (*tokens)[DASH_TOKEN_HEX], uint32_t n,
                     bool sweep)
{
    dash_call *c = dash_call_new(DASH_LIVE);
    job *j = c ? job_new(JOB_DASH, 0, 0) : NULL;

    if (!j || !(c->live = calloc(n, sizeof *c->live))) {
        job_free(j);
        dash_call_free(c);
        return -1;
    }
    c->n_live = n;
    c->live_sweep = sweep;
    c->now_ms = server_now_ms();
    for (uint32_t i = 0; i < n; i++)
        memcpy(c->live[i].token, tokens[i], DASH_TOKEN_HEX);
    j->dash = c;
    if (worker_submit(dash->srv->worker, j) != 0) {
        job_free(j);
        return -1;
    }
    return 0;
}

void live_checked(dashboard *dash, const dash_call *c)
{
    uint64_t now = server_now_ms();

    if (c->live_sweep)
        dash->live_check_in_flight = false;
    for (uint32_t i = 0; i < c->n_live; i++) {
        const dash_live_check *k = &c->live[i];
        dash_session *s = NULL;

        if (k->state == DASH_LIVE_ENDED)
            dash_session_forget(&dash->sessions, k->token);
        if (k->state == DASH_LIVE_ALIVE) {
            s = dash_session_remember(&dash->sessions, k->token, &k->user, k->created_ms,
                                      k->last_ms, now);
            if (!s)
                log_limited(LOG_WARN, "dashboard session of %s not remembered on this node "
                                      "(every slot held by other accounts): live socket closed",
                            k->user.name);
        }
        for (live_conn *lc = dash->live; lc; lc = lc->next) {
            if (!dash_token_equal(lc->token, k->token))
                continue;
            if (s) {
                lc->confirmed = 1;
                continue;
            }
            /* the store could not answer: an open socket stays, a new one is not let in */
            if (k->state == DASH_LIVE_UNKNOWN && lc->confirmed)
                continue;
            lc->closing = 1;
            lws_callback_on_writable(lc->wsi);
        }
        if (!s && k->state != DASH_LIVE_UNKNOWN)
            log_msg(LOG_INFO, "dashboard live socket closed: session %s",
                    k->state == DASH_LIVE_ENDED ? "ended" : "not kept on this node");
    }
}

static void check_tick(lws_sorted_usec_list_t *sul)
{
    dashboard *dash = lws_container_of(sul, dashboard, live_timer);
    char (*tokens)[DASH_TOKEN_HEX] = NULL;
    uint32_t n = 0, cap = 0;

    lws_sul_schedule(dash->live_context, 0, sul, check_tick, LIVE_CHECK_INTERVAL_US);
    if (dash->live_check_in_flight || !dash->live)
        return;
    for (live_conn *c = dash->live; c; c = c->next)
        cap++;
    tokens = calloc(cap, sizeof *tokens);
    if (!tokens)
        return;
    /* each session once, however many sockets (tabs) it has */
    for (live_conn *c = dash->live; c; c = c->next) {
        bool seen = c->closing != 0;
        for (uint32_t i = 0; i < n && !seen; i++)
            seen = dash_token_equal(tokens[i], c->token);
        if (!seen)
            memcpy(tokens[n++], c->token, DASH_TOKEN_HEX);
    }
    /* Busy: this round is skipped and the next tick asks again. */
    if (n > 0 && ask_store(dash, (const char(*)[DASH_TOKEN_HEX])tokens, n, true) == 0)
        dash->live_check_in_flight = true;
    free(tokens);
}

void live_start(dashboard *dash, struct lws_context *context)
{
    dash->live_context = context;
    dash->live_check_in_flight = false;
    lws_sul_schedule(context, 0, &dash->live_timer, check_tick, LIVE_CHECK_INTERVAL_US);
}

void live_stop(dashboard *dash)
{
    lws_sul_cancel(&dash->live_timer);
}

static int refuse(struct lws *wsi, int status, const char *why)
{
    char peer[64];

    if (!lws_get_peer_simple(wsi, peer, sizeof peer))
        snprintf(peer, sizeof peer, "unknown");
    log_limited(LOG_INFO, "dashboard live handshake refused addr=%s status=%d: %s", peer, status,
                why);
    return lws_return_http_status(wsi, (unsigned)status, why) ? -1 : 1;
}

/* A browser names the page's origin in every WebSocket handshake. The server's own origin is
 * https:// and the Host the request was sent to: any other (another port, a subdomain, an
 * opaque "null") is another origin, whose page must not read this session's events. A client
 * that is not a browser sends none and carries no one else's cookie. */
static bool same_origin(struct lws *wsi)
{
    char origin[256], host[256];
    int n_origin = lws_hdr_copy(wsi, origin, (int)sizeof origin, WSI_TOKEN_ORIGIN);

    if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) == 0)
        return true;
    if (n_origin <= 0 || lws_hdr_copy(wsi, host, (int)sizeof host, WSI_TOKEN_HOST) <= 0)
        return false;
    return strncmp(origin, "https://", 8) == 0 && strcasecmp(origin + 8, host) == 0;
}

int live_confirm_upgrade(dashboard *dash, struct lws *wsi)
{
    char uri[16], token[DASH_TOKEN_HEX];

    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, LIVE_PATH) != 0)
        return 0;
    if (!dash)
        return refuse(wsi, 404, "no dashboard on this server");
    if (!same_origin(wsi))
        return refuse(wsi, 403, "another origin");
    if (!dashboard_cookie_token(wsi, token))
        return refuse(wsi, 401, "not logged in");
    return 0;
}

static int send_events(live_conn *c)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{DASH_EVENT_RECORDS, "records"},
                 {DASH_EVENT_SYNC, "sync"},
                 {DASH_EVENT_CONFLICTS, "conflicts"}};
    uint8_t buf[LWS_PRE + 128];
    char *text = (char *)buf + LWS_PRE;
    size_t n = 0;

    n += (size_t)snprintf(text, 128, "{\"events\":[");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (c->events & names[i].bit)
            n += (size_t)snprintf(text + n, 128 - n, "%s\"%s\"", text[n - 1] == '[' ? "" : ",",
                                  names[i].name);
    n += (size_t)snprintf(text + n, 128 - n, "]}");
    c->events = 0;
    return lws_write(c->wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT) == (int)n ? 0 : -1;
}

int live_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    live_conn *c = user;
    server *srv = lws_context_user(lws_get_context(wsi));
    char uri[16], token[DASH_TOKEN_HEX];

    (void)in;
    (void)len;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        /* live_confirm_upgrade checked the origin; whether the session lives, the store says */
        if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 ||
            strcmp(uri, LIVE_PATH) != 0 || !srv || !srv->dash ||
            !dashboard_cookie_token(wsi, token))
            return 1;
        return 0;

    case LWS_CALLBACK_ESTABLISHED:
        if (!srv || !srv->dash || !dashboard_cookie_token(wsi, token))
            return -1;
        memset(c, 0, sizeof *c);
        c->wsi = wsi;
        memcpy(c->token, token, sizeof c->token);
        /* Nothing is sent until the store confirms the session (live_checked). */
        if (ask_store(srv->dash, (const char(*)[DASH_TOKEN_HEX])c->token, 1, false) != 0) {
            log_limited(LOG_WARN, "dashboard live socket closed: the worker's queue is full");
            return -1;
        }
        c->next = srv->dash->live;
        if (c->next)
            c->next->pprev = &c->next;
        c->pprev = &srv->dash->live;
        srv->dash->live = c;
        return 0;

    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (c->closing) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)"session ended",
                             13);
            return -1;
        }
        if (c->confirmed && c->events && send_events(c) != 0)
            return -1;
        return 0;

    case LWS_CALLBACK_RECEIVE:
        return 0; /* the page sends nothing that matters */

    case LWS_CALLBACK_CLOSED:
        if (c->pprev) {
            *c->pprev = c->next;
            if (c->next)
                c->next->pprev = c->pprev;
            c->pprev = NULL;
        }
        return 0;

    default:
        return 0;
    }
}
