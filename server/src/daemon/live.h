/*
 * The dashboard's live updates: a WebSocket at /live (subprotocol outpost.live) on the same
 * port, authenticated by the dashboard's session cookie. The server sends small text frames
 * naming what changed ({"events":["records","sync","conflicts"]}), never the data itself; the
 * page then reloads its current view through the API, which checks teams and audits as always.
 */
#ifndef OUTPOSTD_LIVE_H
#define OUTPOSTD_LIVE_H

#include <stdint.h>

#include <libwebsockets.h>

#include "dash_session.h"

#define LIVE_PROTOCOL_NAME "outpost.live"
#define LIVE_PATH "/live"

struct dashboard;

/* Per-connection state lws allocates for the live protocol. */
typedef struct live_conn {
    struct lws *wsi;
    char token[DASH_TOKEN_HEX];
    unsigned events;  /* pending events, sent at the next WRITEABLE */
    int closing;      /* the session ended: close at the next WRITEABLE */
    struct live_conn *next;
    struct live_conn **pprev;
} live_conn;

int live_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len);

/* Marks events on every connection whose session may see one of teams. */
void live_broadcast(struct dashboard *dash, unsigned events, const char (*teams)[64],
                    uint32_t n_teams);

#endif /* OUTPOSTD_LIVE_H */
