#include "live.h"

#include <stdio.h>
#include <string.h>

#include "dashboard.h"
#include "server.h"

/* The session behind a connection's cookie, or NULL. */
static dash_session *cookie_session(dashboard *dash, struct lws *wsi)
{
    char token[DASH_TOKEN_HEX + 1];
    size_t n = sizeof token;

    if (lws_http_cookie_get(wsi, DASH_COOKIE, token, &n) != 0)
        return NULL;
    return dash_session_peek(&dash->sessions, token, server_now_ms());
}

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
    dash_session *s;
    char uri[16];

    (void)in;
    (void)len;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 ||
            strcmp(uri, LIVE_PATH) != 0 || !srv || !srv->dash ||
            !cookie_session(srv->dash, wsi))
            return 1;
        return 0;

    case LWS_CALLBACK_ESTABLISHED:
        s = srv && srv->dash ? cookie_session(srv->dash, wsi) : NULL;
        if (!s)
            return -1;
        memset(c, 0, sizeof *c);
        c->wsi = wsi;
        memcpy(c->token, s->token, sizeof c->token);
        c->next = srv->dash->live;
        if (c->next)
            c->next->pprev = &c->next;
        c->pprev = &srv->dash->live;
        srv->dash->live = c;
        return 0;

    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (c->closing)
            return -1;
        if (c->events && send_events(c) != 0)
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
