/*
 * The dashboard's store work, run on the worker thread as JOB_DASH jobs: a dash_call carries
 * everything the call needs (who asks, with which teams, from which address, the filters) and
 * receives the reply body. Every call that shows a record, exports or decides writes its audit
 * row first; when the audit row cannot be written nothing is shown.
 */
#ifndef OUTPOSTD_DASH_API_H
#define OUTPOSTD_DASH_API_H

#include <stdbool.h>
#include <stdint.h>

#include "dash_buf.h"
#include "store.h"

/* What a login refused for a lock is told (by the worker, or by the service thread that
 * remembers the lock a moment: dashboard.c). */
#define DASH_MSG_ADDRESS_LOCKED "too many failed logins from this address: wait 15 minutes"
#define DASH_MSG_NAME_LOCKED                                                                       \
    "this name is locked after five failed logins: wait 15 minutes or ask an administrator"

typedef enum dash_op {
    DASH_LOGIN,     /* name + password -> user (audit login.ok / login.fail / login.locked) */
    DASH_LOGOUT,    /* audit logout */
    DASH_DEVICES,   /* workers' devices with last sync */
    DASH_RECORDS,   /* records of the dashboard table, filtered */
    DASH_RECORD,    /* one record in full (audit record.view) */
    DASH_PERDAY,    /* records per day per worker */
    DASH_CONFLICTS, /* the conflict queue */
    DASH_DECIDE,    /* keep or reverse a conflict (audit conflict.keep / conflict.reverse) */
    DASH_AUDIT,     /* the audit log, admins only */
    DASH_PEOPLE,    /* teams, workers and accounts, admins only (dash_people.c) */
    DASH_PEOPLE_ACT, /* disable, enable, remove, change teams, revoke a device; audited */
    DASH_PASSWORD,  /* the user's own new password (password = current, new_password) */
    DASH_FORMS,     /* the schema's forms, JSON (dash_forms.c) */
    DASH_WATCH,     /* Needs attention: open watch items (dash_watch.c) */
    DASH_WATCH_COUNTS, /* watch items per team, rule and week (dash_watch.c) */
    DASH_ME,        /* the session: user, role, teams, CSRF token, idle time left */
    DASH_LIVE       /* the sessions of /live sockets, as the store has them now (live.c) */
} dash_op;

/* What the store says of one /live socket's session. */
typedef enum dash_live_state {
    DASH_LIVE_UNKNOWN, /* not asked, or the store could not answer */
    DASH_LIVE_ALIVE,   /* user holds the account's role and teams now */
    DASH_LIVE_ENDED    /* logged out, idle, too old, account disabled or removed */
} dash_live_state;

typedef struct dash_live_check {
    char token[65];
    dash_live_state state;
    store_user user; /* ALIVE: teams owned (none while the password must be changed) */
    uint64_t created_ms, last_ms;
} dash_live_check;

typedef struct dash_call {
    dash_op op;
    uint64_t request_id; /* the HTTP request waiting for this call */
    bool csv;            /* reply as CSV (an export: audit export) */
    bool truncated;      /* the reply stopped at its byte budget: more rows matched */
    uint64_t now_ms;

    /* Who asks: the session token the request came with, looked up in the store on the worker,
     * which fills user (empty for LOGIN). */
    char session_token[65];
    bool background; /* the page asked by itself: the session's idle clock is not restarted */
    char user[64];
    store_role role;
    uint32_t n_teams;
    char (*teams)[64]; /* owned */
    char address[64];

    /* The synced table the record views show, from the config. */
    char table[64];
    char worker_col[64];
    char date_col[64];

    /* Parameters. */
    char name[64];
    char password[STORE_PASSWORD_MAX + 1];
    char new_password[STORE_PASSWORD_MAX + 1]; /* PASSWORD */
    char f_worker[64];
    char f_team[64];
    char f_from[32];
    char f_to[32];
    char f_text[128];
    char f_id[128];
    char f_table[64];    /* record view: the record's table ("" for the dashboard table) */
    char f_sort[64];     /* records: a column to sort by ("" for newest first) */
    bool f_desc;         /* records: with f_sort, descending */
    uint32_t f_offset;   /* records: rows to skip (paging) */
    bool f_all;
    char f_actor[64];    /* audit view: person */
    char f_action[32];   /* audit view: action or family ("login") */
    int64_t f_before;    /* audit view: rows older than this id (0: newest) */
    uint32_t f_limit;    /* audit view: page size (0: 100) */
    char p_kind[16];     /* PEOPLE_ACT: user, worker or device */
    char p_id[64];
    char p_action[16];   /* disable, enable, remove, teams, revoke */
    char p_teams[512];   /* teams: comma separated */
    bool p_has_teams;    /* the request named teams (action=teams needs it, even empty) */
    char p_wipe[16];     /* revoke: "1" orders a wipe, "0" or "" (absent) keeps the data */
    char p_server[128];  /* enroll: HOST:PORT the page was served from, for the QR; "" if odd */
    int64_t conflict_id;
    bool reverse;

    /* Result. */
    int http_status;
    const char *content_type;
    dash_buf body;
    store_user login_user;     /* LOGIN: the account, when http_status is 200 */
    store_push_info push_info; /* DECIDE with reverse: teams to NOTIFY */
    bool session_ended;        /* the account is disabled or gone: end its sessions */
    bool session_gone;         /* no such session (any more): 401, this node forgets it */
    uint64_t session_created_ms; /* the session's times, when it was found */
    uint64_t session_last_ms;
    char log_reason[256];      /* a 5xx answer: what failed, for the server's log line */
    char ended_user[64];       /* PEOPLE_ACT: an account disabled or removed: end its sessions */

    /* LIVE: the sessions asked about (owned), their idle clocks left as they are. */
    dash_live_check *live;
    uint32_t n_live;
    bool live_sweep; /* the periodic check of every open socket, not one handshake */
} dash_call;

dash_call *dash_call_new(dash_op op);
void dash_call_free(dash_call *c); /* wipes the password; NULL is a no-op */

/* Runs the call against the worker's store. */
void dash_run(dash_call *c, store *st);

/* For the other dash_*.c modules: an error reply (the body replaced), a store error as its
 * HTTP status, and one conflict as the JSON object the conflict queue shows. */
void dash_reply_error(dash_call *c, int status, const char *message);
void dash_reply_store_error(dash_call *c, store *st, int rc);
void dash_conflict_json(dash_buf *b, const store_dash_conflict *k);

#endif /* OUTPOSTD_DASH_API_H */
