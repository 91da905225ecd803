/*
 * Dashboard login sessions. The store holds them (store_session_*: every node on one database
 * knows every session; the worker checks the session of each API call there). What is here is
 * this node's memory of the sessions it has served, on the service thread, for the /live
 * WebSocket: which teams a session may hear about, and when it last made a request here.
 * A session is named by a random 256-bit token carried in an HttpOnly, Secure,
 * SameSite=Strict cookie; its CSRF token, which every state-changing request must send back in
 * the X-CSRF-Token header, is derived from it (dash_csrf_of), so any node can check it.
 */
#ifndef OUTPOSTD_DASH_SESSION_H
#define OUTPOSTD_DASH_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "dash_buf.h"
#include "store.h"

#define DASH_TOKEN_HEX STORE_SESSION_TOKEN_HEX /* 64 hex digits and NUL */
#define DASH_IDLE_MS STORE_SESSION_IDLE_MS
#define DASH_MAX_AGE_MS STORE_SESSION_MAX_AGE_MS
#define DASH_COOKIE "outpost_session"

typedef struct dash_session {
    bool in_use;
    char token[DASH_TOKEN_HEX];
    char csrf[DASH_TOKEN_HEX];
    char user[64];
    store_role role;
    uint32_t n_teams;
    char (*teams)[64];
    uint64_t created_ms;
    uint64_t last_ms;
} dash_session;

typedef struct dash_sessions {
    dash_session *slots;
    uint32_t capacity;
    uint32_t per_user; /* sessions one account may hold at once */
    bool full;         /* the last create found every slot held by other accounts */
} dash_sessions;

int dash_sessions_init(dash_sessions *ds, uint32_t capacity, uint32_t per_user);
void dash_sessions_free(dash_sessions *ds); /* NULL is a no-op */

/* Starts a session for user (its teams are copied). An account holds at most per_user sessions:
 * past that, or when every slot is taken, its own least recently used session ends; another
 * account's session is never ended to make room. Returns the session, or NULL: every slot is
 * held by other accounts (ds->full), no random bytes, out of memory. */
dash_session *dash_session_create(dash_sessions *ds, const store_user *user, uint64_t now_ms);

/* Remembers the session of token, which the store just confirmed for user (its role and teams
 * copied) with these times, at now_ms: updated when known here, else placed as dash_session_create places
 * a new one. NULL: no room (ds->full) or out of memory. */
dash_session *dash_session_remember(dash_sessions *ds, const char *token, const store_user *user,
                                    uint64_t created_ms, uint64_t last_ms, uint64_t now_ms);

/* Forgets the session of token here (logged out, or ended on another node). */
void dash_session_forget(dash_sessions *ds, const char *token);

/* The CSRF token of a session: hex SHA-256 over a fixed label and the session token. It tells
 * nothing about the session token, and needs no store to check. */
void dash_csrf_of(const char *token, char out[DASH_TOKEN_HEX]);

/* What /api/me and a login answer: user, role, teams, CSRF token, the dashboard table, the idle
 * limit and how long the session has left at now_ms (idle_left_ms): the idle time left after a
 * request at last_ms, or less when the 12-hour limit from created_ms comes first. */
void dash_session_json(dash_buf *b, const char *user, store_role role, const char (*teams)[64],
                       uint32_t n_teams, const char *token, uint64_t created_ms, uint64_t last_ms,
                       uint64_t now_ms, const char *table);

/* The live session for token (compared in constant time), its idle clock restarted; NULL when
 * none, or when it idled past DASH_IDLE_MS or lived past DASH_MAX_AGE_MS (it then ends). */
dash_session *dash_session_find(dash_sessions *ds, const char *token, uint64_t now_ms);

/* Same, without restarting the idle clock (for live-update pushes, which are not activity). */
dash_session *dash_session_peek(dash_sessions *ds, const char *token, uint64_t now_ms);

void dash_session_end(dash_session *s);

/* Ends every session of user (disabled or removed), but the one whose token is keep_token
 * (NULL: none kept); returns how many ended. */
uint32_t dash_sessions_end_user(dash_sessions *ds, const char *user, const char *keep_token);

/* True when a and b are equal DASH_TOKEN_HEX-1 digit tokens, in constant time. */
bool dash_token_equal(const char *a, const char *b);

/* True when the session may see team. */
bool dash_session_has_team(const dash_session *s, const char *team);

#endif /* OUTPOSTD_DASH_SESSION_H */
