/*
 * The supervisor dashboard's server side, on the service thread: login sessions, the /api/
 * routes (each checked against the session and, when it changes anything, its CSRF token),
 * store calls handed to the worker as JOB_DASH jobs, and live-update events for the /live
 * WebSocket (live.c).
 */
#ifndef OUTPOSTD_DASHBOARD_H
#define OUTPOSTD_DASHBOARD_H

#include <stdbool.h>
#include <stdint.h>

#include "dash_session.h"
#include "http.h"
#include "job.h"

struct server;
struct live_conn;

/* Live-update events (a bit mask): what changed, never the data itself. */
enum {
    DASH_EVENT_RECORDS = 1u << 0,
    DASH_EVENT_SYNC = 1u << 1,
    DASH_EVENT_CONFLICTS = 1u << 2
};

typedef struct dash_pending {
    uint64_t id;
    http_request *req;
    char login_name[64]; /* a login's name tried ("" for other calls) */
} dash_pending;

/* A login the store refused for a lock (423 for the name, 429 for the address), remembered on
 * the service thread for DASH_REFUSAL_MEMORY_MS: the next attempts for that name or from that
 * address are answered at once and never take a place in the login lane's queue. */
#define DASH_REFUSALS 64u
#define DASH_REFUSAL_MEMORY_MS 10000u
/* Logins of one name waiting at once: more are refused 503 before queueing, so one account's
 * flood cannot fill the lane that every other account logs in through. */
#define DASH_LOGINS_PER_NAME 2u

typedef struct dash_refusal {
    int status;    /* 423 (key is a name) or 429 (key is an address); 0: free */
    char key[64];
    uint64_t until_ms;
} dash_refusal;

typedef struct dashboard {
    struct server *srv;
    dash_sessions sessions;
    dash_pending *pending;   /* HTTP requests waiting for a store call */
    uint32_t n_pending_max;
    uint64_t next_id;
    dash_refusal refusals[DASH_REFUSALS];
    struct live_conn *live;  /* open /live connections */
    lws_sorted_usec_list_t live_timer; /* the periodic check of their sessions (live.c) */
    struct lws_context *live_context;
    bool live_check_in_flight;
} dashboard;

int dashboard_create(struct server *srv, dashboard **out_dash);
void dashboard_destroy(dashboard *dash); /* NULL is a no-op */

/* The session token a request's cookie carries into token; false when there is none or it is
 * not 64 lower-case hex digits. Whether it names a live session, the worker asks the store. */
bool dashboard_cookie_token(struct lws *wsi, char token[DASH_TOKEN_HEX]);

/* Answers an /api/ request (POST bodies are in req). Returns 0, or -1 to drop the connection. */
int dashboard_request(dashboard *dash, http_request *req, const char *path);

/* The request's connection closed: its store call's answer will find nobody. */
void dashboard_forget(dashboard *dash, http_request *req);

/* A JOB_DASH job finished on the worker: answer its request (takes the job). */
void dashboard_job_done(dashboard *dash, job *j);

/* Tells every live connection that may see one of teams that something changed. */
void dashboard_event(dashboard *dash, unsigned events, const char (*teams)[64], uint32_t n_teams);

#endif /* OUTPOSTD_DASHBOARD_H */
