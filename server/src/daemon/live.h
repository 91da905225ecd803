/*
 * The dashboard's live updates: a WebSocket at /live (subprotocol outpost.live) on the same
 * port, authenticated by the dashboard's session cookie. The server sends small text frames
 * naming what changed ({"events":["records","sync","conflicts"]}), never the data itself; the
 * page then reloads its current view through the API, which checks teams and audits as always.
 *
 * The session is the store's, as for every API call: the handshake must come from the server's
 * own origin with a session cookie; the worker then looks the session up in the store (a DASH_LIVE
 * call) and the socket hears nothing until it is confirmed, and is closed if it is not. Every
 * LIVE_CHECK_INTERVAL_US one such call checks the sessions of all open sockets at once: a
 * session ended anywhere (logout on another node, idle or age limit, account disabled or
 * removed) closes its sockets, and a change of the account's teams applies to them.
 */
#ifndef OUTPOSTD_LIVE_H
#define OUTPOSTD_LIVE_H

#include <stdint.h>

#include <libwebsockets.h>

#include "dash_session.h"

#define LIVE_PROTOCOL_NAME "outpost.live"
#define LIVE_PATH "/live"
#define LIVE_CHECK_INTERVAL_US (2 * 1000 * 1000)

struct dashboard;
struct dash_call;

/* Per-connection state lws allocates for the live protocol. */
typedef struct live_conn {
    struct lws *wsi;
    char token[DASH_TOKEN_HEX];
    unsigned events;  /* pending events, sent at the next WRITEABLE */
    int confirmed;    /* the store confirmed the session: events may be sent */
    int closing;      /* the session ended: close at the next WRITEABLE */
    struct live_conn *next;
    struct live_conn **pprev;
} live_conn;

int live_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len);

/* For the HTTP protocol's LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: an upgrade to /live from another
 * origin, or without a session cookie, is answered 403 or 401 here (returns 1); anything else
 * goes on (returns 0); -1: hang up. */
int live_confirm_upgrade(struct dashboard *dash, struct lws *wsi);

/* Marks events on every confirmed connection whose session may see one of teams. */
void live_broadcast(struct dashboard *dash, unsigned events, const char (*teams)[64],
                    uint32_t n_teams);

/* A DASH_LIVE call came back from the worker: confirm, update or close the sockets it names. */
void live_checked(struct dashboard *dash, const struct dash_call *c);

/* The periodic check of open sockets' sessions, on the service thread's timer. */
void live_start(struct dashboard *dash, struct lws_context *context);
void live_stop(struct dashboard *dash);

#endif /* OUTPOSTD_LIVE_H */
