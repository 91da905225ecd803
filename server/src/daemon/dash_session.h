/*
 * Dashboard login sessions, kept in memory on the service thread (a restart logs everyone
 * out). A session is named by a random 256-bit token carried in an HttpOnly, Secure,
 * SameSite=Strict cookie, and has its own random CSRF token that every state-changing request
 * must send back in the X-CSRF-Token header.
 */
#ifndef OUTPOSTD_DASH_SESSION_H
#define OUTPOSTD_DASH_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define DASH_TOKEN_HEX 65 /* 64 hex digits and NUL */
#define DASH_IDLE_MS (30u * 60u * 1000u)
#define DASH_MAX_AGE_MS (12u * 60u * 60u * 1000u)
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
