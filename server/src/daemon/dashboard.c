#include "dashboard.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "display_text.h"
#include "live.h"
#include "log.h"
#include "server.h"

/* Dashboard sessions held at once (the least recently used ends when a new one needs room). */
#define DASH_SESSIONS 256u
/* Sessions one account may hold at once (browsers, tabs after a lost cookie): its own oldest
 * ends past that, never another account's. */
#define DASH_SESSIONS_PER_USER 8u

static const char json_type[] = "application/json";

int dashboard_create(struct server *srv, dashboard **out_dash)
{
    dashboard *dash = calloc(1, sizeof *dash);

    *out_dash = NULL;
    if (!dash)
        return -1;
    dash->srv = srv;
    dash->next_id = 1;
    dash->n_pending_max = srv->config.limits.queue_depth + srv->config.limits.login_queue_depth;
    dash->pending = calloc(dash->n_pending_max, sizeof *dash->pending);
    if (!dash->pending ||
        dash_sessions_init(&dash->sessions, DASH_SESSIONS, DASH_SESSIONS_PER_USER) != 0) {
        dashboard_destroy(dash);
        return -1;
    }
    *out_dash = dash;
    return 0;
}

void dashboard_destroy(dashboard *dash)
{
    if (!dash)
        return;
    dash_sessions_free(&dash->sessions);
    free(dash->pending);
    free(dash);
}

static int respond_error(http_request *req, int status, const char *message)
{
    dash_buf b = {0};

    if (status >= 500)
        log_msg(LOG_WARN, "dashboard %s status=%d: %s", req->path, status, message);
    dash_buf_puts(&b, "{\"error\":");
    dash_buf_json_str(&b, message);
    dash_buf_puts(&b, "}");
    if (b.failed) {
        dash_buf_free(&b);
        return -1;
    }
    http_respond_buf(req, status, json_type, &b);
    return 0;
}

static void peer_address(http_request *req, char *out, size_t size)
{
    if (!lws_get_peer_simple(req->wsi, out, size))
        snprintf(out, size, "unknown");
}

/* The page marks the requests it makes by itself (reloading a view after a live event,
 * checking the session on reconnect) with "X-Outpost-Background: 1": they do not restart the
 * idle clock, so an open dashboard nobody uses still logs out. */
static bool is_background(http_request *req)
{
    char value[8];
    int n = lws_hdr_custom_copy(req->wsi, value, (int)sizeof value, "x-outpost-background:", 21);

    return n == 1 && value[0] == '1';
}

bool dashboard_cookie_token(struct lws *wsi, char token[DASH_TOKEN_HEX])
{
    char buf[DASH_TOKEN_HEX + 1];
    size_t n = sizeof buf;

    if (lws_http_cookie_get(wsi, DASH_COOKIE, buf, &n) != 0 ||
        strlen(buf) != DASH_TOKEN_HEX - 1)
        return false;
    for (const char *p = buf; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    memcpy(token, buf, DASH_TOKEN_HEX);
    return true;
}

static bool csrf_ok(http_request *req, const char *session_token)
{
    char token[DASH_TOKEN_HEX + 1], expected[DASH_TOKEN_HEX];
    int n = lws_hdr_custom_copy(req->wsi, token, (int)sizeof token, "x-csrf-token:", 13);

    dash_csrf_of(session_token, expected);
    return n == DASH_TOKEN_HEX - 1 && dash_token_equal(token, expected);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies the url-decoded value of name from an application/x-www-form-urlencoded body. Returns
 * 0, or -1 when absent, too long, or holding a NUL or a bad escape. */
static int form_get(const char *body, const char *name, char *out, size_t size)
{
    size_t name_len = strlen(name);
    const char *p = body;

    while (p && *p) {
        const char *end = strchr(p, '&');
        size_t field_len = end ? (size_t)(end - p) : strlen(p);
        if (field_len > name_len && strncmp(p, name, name_len) == 0 && p[name_len] == '=') {
            size_t n = 0;
            for (size_t i = name_len + 1; i < field_len; i++) {
                char c = p[i];
                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    int hi, lo;
                    if (i + 2 >= field_len)
                        return -1;
                    hi = hex_value(p[i + 1]);
                    lo = hex_value(p[i + 2]);
                    if (hi < 0 || lo < 0)
                        return -1;
                    c = (char)(hi * 16 + lo);
                    i += 2;
                }
                if (c == 0 || n + 1 >= size)
                    return -1;
                out[n++] = c;
            }
            out[n] = 0;
            return 0;
        }
        p = end ? end + 1 : NULL;
    }
    return -1;
}

/* A URL query argument into out ("" when absent); -1 when too long or holding a NUL. */
static int query_get(http_request *req, const char *name, char *out, size_t size)
{
    char key[32], buf[512];
    int n;

    snprintf(key, sizeof key, "%s=", name);
    n = lws_get_urlarg_by_name_safe(req->wsi, key, buf, (int)sizeof buf);
    out[0] = 0;
    if (n < 0)
        return 0;
    if ((size_t)n >= size || strlen(buf) != (size_t)n)
        return -1;
    memcpy(out, buf, (size_t)n + 1);
    return 0;
}

static dash_call *call_for(dashboard *dash, http_request *req, const char *token, dash_op op)
{
    const daemon_config *cfg = &dash->srv->config;
    dash_call *c = dash_call_new(op);

    if (!c)
        return NULL;
    c->now_ms = server_now_ms();
    peer_address(req, c->address, sizeof c->address);
    snprintf(c->table, sizeof c->table, "%s", cfg->dash_table);
    snprintf(c->worker_col, sizeof c->worker_col, "%s", cfg->dash_worker_col);
    snprintf(c->date_col, sizeof c->date_col, "%s", cfg->dash_date_col);
    if (token) {
        snprintf(c->session_token, sizeof c->session_token, "%s", token);
        c->background = is_background(req);
    }
    return c;
}

/* Hands the call to the worker; the request is answered in dashboard_job_done. */
static int submit(dashboard *dash, http_request *req, dash_call *c)
{
    dash_pending *slot = NULL;
    bool login = c->op == DASH_LOGIN;
    job *j;

    for (uint32_t i = 0; i < dash->n_pending_max; i++)
        if (dash->pending[i].id == 0) {
            slot = &dash->pending[i];
            break;
        }
    j = slot ? job_new(JOB_DASH, 0, 0) : NULL;
    c->request_id = dash->next_id++;
    if (j) {
        j->dash = c;
        /* Logins (Argon2id, tens of ms each) have their own lane: a flood of them can fill
         * only that lane's queue, never delay device sync. */
        if (worker_submit(login ? dash->srv->login_worker : dash->srv->worker, j) != 0) {
            job_free(j);
            j = NULL;
            c = NULL; /* freed with the job */
        }
    } else {
        dash_call_free(c);
        c = NULL;
    }
    if (!j) {
        log_limited(LOG_WARN, "dashboard %s refused status=503: the %s queue is full",
                    login ? "login" : req->path, login ? "login lane's" : "worker's");
        return respond_error(req, 503, "the server is busy: try again");
    }
    slot->id = c->request_id;
    slot->req = req;
    snprintf(slot->login_name, sizeof slot->login_name, "%s", login ? c->name : "");
    req->pending_id = c->request_id;
    return 0;
}

void dashboard_forget(dashboard *dash, http_request *req)
{
    for (uint32_t i = 0; i < dash->n_pending_max; i++)
        if (dash->pending[i].id == req->pending_id && dash->pending[i].req == req)
            memset(&dash->pending[i], 0, sizeof dash->pending[i]);
    req->pending_id = 0;
}

static void set_session_cookie(http_request *req, const char *token)
{
    if (token)
        snprintf(req->set_cookie, sizeof req->set_cookie,
                 "%s=%s; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=%u", DASH_COOKIE,
                 token, (unsigned)(DASH_MAX_AGE_MS / 1000u));
    else
        snprintf(req->set_cookie, sizeof req->set_cookie,
                 "%s=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0", DASH_COOKIE);
}

/* The lock the store answered a login with, remembered here (the oldest entry makes room). */
static void remember_refusal(dashboard *dash, int status, const char *key)
{
    dash_refusal *slot = &dash->refusals[0];
    uint64_t now = server_now_ms();

    for (uint32_t i = 0; i < DASH_REFUSALS; i++) {
        dash_refusal *r = &dash->refusals[i];
        if (r->status == status && strcmp(r->key, key) == 0) {
            slot = r;
            break;
        }
        if (r->until_ms < slot->until_ms)
            slot = r;
    }
    slot->status = status;
    snprintf(slot->key, sizeof slot->key, "%s", key);
    slot->until_ms = now + DASH_REFUSAL_MEMORY_MS;
}

/* 429 or 423 when a lock on the address or the name was answered here a moment ago; else 0. */
static int remembered_refusal(const dashboard *dash, const char *address, const char *name)
{
    uint64_t now = server_now_ms();

    for (uint32_t i = 0; i < DASH_REFUSALS; i++) {
        const dash_refusal *r = &dash->refusals[i];
        if (r->status == 0 || r->until_ms <= now)
            continue;
        if (strcmp(r->key, r->status == 429 ? address : name) == 0)
            return r->status;
    }
    return 0;
}

static void finish_login(dashboard *dash, http_request *req, dash_call *c)
{
    dash_buf b = {0};

    if (c->http_status != 200) {
        char name[64];
        display_text_clean(name, sizeof name, c->name);
        log_msg(LOG_INFO, "dashboard login refused name=\"%s\" addr=%s status=%d", name,
                c->address, c->http_status);
        if (c->http_status == 429 || c->http_status == 423)
            remember_refusal(dash, c->http_status, c->http_status == 429 ? c->address : c->name);
        http_respond_buf(req, c->http_status, json_type, &c->body);
        return;
    }
    /* The session is in the store; this node remembers it for its /live sockets. */
    if (!dash_session_remember(&dash->sessions, c->session_token, &c->login_user,
                               c->session_created_ms, c->session_last_ms, server_now_ms()))
        log_limited(LOG_WARN, "dashboard session of %s not remembered on this node (all %u "
                              "held by other accounts): no live updates for it here",
                    c->login_user.name, DASH_SESSIONS);
    log_msg(LOG_INFO, "dashboard login user=%s addr=%s", c->login_user.name, c->address);
    set_session_cookie(req, c->session_token);
    dash_session_json(&b, c->login_user.name, c->login_user.role,
                      (const char(*)[64])c->login_user.teams, c->login_user.n_teams,
                      c->session_token, c->session_created_ms, c->session_last_ms,
                      c->session_last_ms, dash->srv->config.dash_table);
    http_respond_buf(req, 200, json_type, &b);
}

/* What the worker learned about the call's session: gone (logged out or ended on any node, so
 * forgotten here and its live sockets closed), or alive (remembered here with its account's
 * current role and teams, for /live). */
static void note_session(dashboard *dash, http_request *req, const dash_call *c)
{
    if (c->op == DASH_LOGIN || !c->session_token[0])
        return;
    if (c->session_gone) {
        dash_session_forget(&dash->sessions, c->session_token);
        if (req)
            set_session_cookie(req, NULL);
        live_broadcast(dash, 0, NULL, 0);
        return;
    }
    if (c->user[0] && c->http_status != 401) {
        store_user u = {0};
        snprintf(u.name, sizeof u.name, "%s", c->user);
        u.role = c->role;
        u.teams = c->teams;
        u.n_teams = c->n_teams;
        (void)dash_session_remember(&dash->sessions, c->session_token, &u,
                                    c->session_created_ms, c->session_last_ms, server_now_ms());
    }
}

void dashboard_job_done(dashboard *dash, job *j)
{
    dash_call *c = j->dash;
    http_request *req = NULL;

    if (c->op == DASH_LIVE) {
        live_checked(dash, c);
        job_free(j);
        return;
    }
    for (uint32_t i = 0; i < dash->n_pending_max; i++)
        if (dash->pending[i].id == c->request_id) {
            req = dash->pending[i].req;
            memset(&dash->pending[i], 0, sizeof dash->pending[i]);
            break;
        }
    /* A reversal is a change like any other: devices in scope are told to pull. */
    if (c->op == DASH_DECIDE && c->http_status == 200) {
        if (c->push_info.n_teams_touched > 0) {
            server_notify_teams(dash->srv, 0, &c->push_info);
            dashboard_event(dash, DASH_EVENT_RECORDS, (const char(*)[64])c->push_info.teams_touched,
                            c->push_info.n_teams_touched);
        }
        dashboard_event(dash, DASH_EVENT_CONFLICTS, (const char(*)[64])c->teams, c->n_teams);
    }
    note_session(dash, req, c);
    if (c->session_ended) {
        uint32_t n = dash_sessions_end_user(&dash->sessions, c->user, NULL);
        log_msg(LOG_INFO, "dashboard sessions ended user=%s sessions=%u (disabled or removed)",
                c->user, n);
        if (req)
            set_session_cookie(req, NULL);
    }
    /* A new password ends every other session of the account: after a reset, that includes
     * whoever held the old password (an insider's pass found the thief's session came back). */
    if (c->op == DASH_PASSWORD && c->http_status == 200) {
        uint32_t n = dash_sessions_end_user(&dash->sessions, c->user, c->session_token);
        log_msg(LOG_INFO, "dashboard sessions ended user=%s sessions=%u (password changed)",
                c->user, n);
        if (n > 0)
            live_broadcast(dash, 0, NULL, 0);
    }
    /* An admin disabled or removed an account: its sessions end now, and its live sockets
     * close, so an open page learns at once. */
    if (c->ended_user[0]) {
        uint32_t n = dash_sessions_end_user(&dash->sessions, c->ended_user, NULL);
        log_msg(LOG_INFO, "dashboard sessions ended user=%s sessions=%u (by %s)", c->ended_user,
                n, c->user);
        live_broadcast(dash, 0, NULL, 0);
    }
    /* Every 5xx says "see the server log": this is the line it points to. */
    if (c->http_status >= 500) {
        char reason[sizeof c->log_reason];
        display_text_clean(reason, sizeof reason, c->log_reason[0] ? c->log_reason : "unknown");
        log_msg(LOG_WARN, "dashboard %s user=%s status=%d: %s",
                req ? req->path : "(client gone)", c->user[0] ? c->user : "-", c->http_status,
                reason);
    }
    if (req) {
        req->pending_id = 0;
        if (c->op == DASH_LOGIN) {
            finish_login(dash, req, c);
        } else {
            if (c->csv && c->http_status == 200)
                snprintf(req->disposition, sizeof req->disposition,
                         "attachment; filename=\"outpost-export.csv\"");
            req->truncated = c->truncated;
            http_respond_buf(req, c->http_status, c->content_type ? c->content_type : json_type,
                             &c->body);
        }
    }
    job_free(j);
}

/* A login locked out a moment ago, or one more of a name already waiting, is answered here
 * and never queued: a flood from a locked address or for one name cannot fill the login lane. */
static int gate_login(dashboard *dash, http_request *req, dash_call *c)
{
    uint32_t waiting = 0;
    int status = remembered_refusal(dash, c->address, c->name);
    char name[64];

    for (uint32_t i = 0; i < dash->n_pending_max; i++)
        waiting += dash->pending[i].id != 0 && dash->pending[i].login_name[0] &&
                   strcmp(dash->pending[i].login_name, c->name) == 0;
    if (status == 0 && waiting < DASH_LOGINS_PER_NAME)
        return submit(dash, req, c);
    if (status == 0)
        status = 503;
    display_text_clean(name, sizeof name, c->name);
    log_limited(LOG_INFO, "dashboard login refused name=\"%s\" addr=%s status=%d (%s)", name,
                c->address, status,
                status == 503 ? "this name's logins already waiting" : "locked a moment ago");
    dash_call_free(c);
    if (status == 429)
        return respond_error(req, 429, DASH_MSG_ADDRESS_LOCKED);
    if (status == 423)
        return respond_error(req, 423, DASH_MSG_NAME_LOCKED);
    return respond_error(req, 503, "a login of this name is already being checked: try again");
}

static int start_login(dashboard *dash, http_request *req)
{
    char marker[16];
    dash_call *c;
    int rc;

    /* A custom header: a cross-site form cannot send one, and fetch() from another origin
     * would need a CORS preflight, which outpostd never grants. */
    if (lws_hdr_custom_copy(req->wsi, marker, (int)sizeof marker, "x-requested-with:", 17) < 0 ||
        strcmp(marker, "outpost") != 0)
        return respond_error(req, 403, "missing X-Requested-With: outpost");
    c = call_for(dash, req, NULL, DASH_LOGIN);
    if (!c)
        return respond_error(req, 500, "out of memory");
    rc = form_get(req->body_in, "name", c->name, sizeof c->name) != 0 ||
         form_get(req->body_in, "password", c->password, sizeof c->password) != 0;
    /* The password lives on only in the call, which wipes it after the check. */
    mbedtls_platform_zeroize(req->body_in, sizeof req->body_in);
    req->body_in_len = 0;
    if (rc) {
        dash_call_free(c);
        return respond_error(req, 400, "name and password are required, as a form body "
                                       "(application/x-www-form-urlencoded: "
                                       "name=NAME&password=PASSWORD), not JSON");
    }
    return gate_login(dash, req, c);
}

typedef struct api_route {
    const char *path;
    bool post;
    dash_op op;
} api_route;

static const api_route api_routes[] = {
    {"/api/logout", true, DASH_LOGOUT},     {"/api/me", false, DASH_ME},
    {"/api/devices", false, DASH_DEVICES},  {"/api/records", false, DASH_RECORDS},
    {"/api/record", false, DASH_RECORD},    {"/api/perday", false, DASH_PERDAY},
    {"/api/conflicts", false, DASH_CONFLICTS}, {"/api/decide", true, DASH_DECIDE},
    {"/api/audit", false, DASH_AUDIT},      {"/api/export", false, DASH_RECORDS},
    {"/api/people", false, DASH_PEOPLE},    {"/api/people/act", true, DASH_PEOPLE_ACT},
    {"/api/password", true, DASH_PASSWORD},
    {"/api/forms", false, DASH_FORMS},
    {"/api/watch", false, DASH_WATCH},      {"/api/watch/counts", false, DASH_WATCH_COUNTS},
};

/* The view an export names. */
static int export_op(const char *view, dash_op *out_op)
{
    static const struct {
        const char *name;
        dash_op op;
    } views[] = {{"devices", DASH_DEVICES},     {"records", DASH_RECORDS},
                 {"perday", DASH_PERDAY},       {"conflicts", DASH_CONFLICTS},
                 {"audit", DASH_AUDIT}};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
        if (strcmp(views[i].name, view) == 0) {
            *out_op = views[i].op;
            return 0;
        }
    return -1;
}

static int read_filters(http_request *req, dash_call *c)
{
    char all[8], before[24], limit[12], offset[12], dir[8];

    if (query_get(req, "worker", c->f_worker, sizeof c->f_worker) != 0 ||
        query_get(req, "team", c->f_team, sizeof c->f_team) != 0 ||
        query_get(req, "from", c->f_from, sizeof c->f_from) != 0 ||
        query_get(req, "to", c->f_to, sizeof c->f_to) != 0 ||
        query_get(req, "q", c->f_text, sizeof c->f_text) != 0 ||
        query_get(req, "id", c->f_id, sizeof c->f_id) != 0 ||
        query_get(req, "all", all, sizeof all) != 0 ||
        query_get(req, "actor", c->f_actor, sizeof c->f_actor) != 0 ||
        query_get(req, "action", c->f_action, sizeof c->f_action) != 0 ||
        query_get(req, "before", before, sizeof before) != 0 ||
        query_get(req, "limit", limit, sizeof limit) != 0 ||
        query_get(req, "table", c->f_table, sizeof c->f_table) != 0 ||
        query_get(req, "sort", c->f_sort, sizeof c->f_sort) != 0 ||
        query_get(req, "dir", dir, sizeof dir) != 0 ||
        query_get(req, "offset", offset, sizeof offset) != 0)
        return -1;
    /* Paging takes digits only; the store bounds the offset and checks the sort column. */
    for (const char *p = offset; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    if (strlen(offset) > 9 || (dir[0] && strcmp(dir, "asc") != 0 && strcmp(dir, "desc") != 0))
        return -1;
    /* A page size, when given, is 1 to 1000 rows. */
    for (const char *p = limit; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    if (limit[0] && (strlen(limit) > 4 || strtoul(limit, NULL, 10) < 1 ||
                     strtoul(limit, NULL, 10) > 1000))
        return -1;
    c->f_offset = (uint32_t)strtoul(offset, NULL, 10);
    c->f_desc = strcmp(dir, "desc") == 0;
    c->f_all = strcmp(all, "1") == 0;
    c->f_before = strtoll(before, NULL, 10);
    c->f_limit = (uint32_t)strtoul(limit, NULL, 10);
    if (c->f_before < 0)
        c->f_before = 0;
    return 0;
}

int dashboard_request(dashboard *dash, http_request *req, const char *path)
{
    const api_route *route = NULL;
    char token[DASH_TOKEN_HEX];
    dash_call *c;

    if (strcmp(path, "/api/login") == 0)
        return req->is_post ? start_login(dash, req)
                            : respond_error(req, 405, "log in with POST");
    for (size_t i = 0; i < sizeof api_routes / sizeof api_routes[0]; i++)
        if (strcmp(api_routes[i].path, path) == 0)
            route = &api_routes[i];
    if (!route)
        return respond_error(req, 404, "no such API");
    if (route->post != req->is_post)
        return respond_error(req, 405, route->post ? "use POST" : "use GET");
    if (!dashboard_cookie_token(req->wsi, token)) {
        set_session_cookie(req, NULL);
        return respond_error(req, 401, "not logged in, or logged out after 30 idle minutes");
    }
    if ((route->post || strcmp(path, "/api/export") == 0) && !csrf_ok(req, token))
        return respond_error(req, 403, "missing or wrong CSRF token");
    c = call_for(dash, req, token, route->op);
    if (!c)
        return respond_error(req, 500, "out of memory");
    if (route->op == DASH_LOGOUT) {
        /* This node forgets it now; the worker ends it in the store (on every node) and
         * writes the audit row. */
        set_session_cookie(req, NULL);
        dash_session_forget(&dash->sessions, token);
        return submit(dash, req, c);
    }
    if (read_filters(req, c) != 0) {
        dash_call_free(c);
        return respond_error(req, 400, "a filter is too long, or offset, limit or dir is "
                                       "malformed (offset=DIGITS, limit=1..1000, dir=asc|desc)");
    }
    if (strcmp(path, "/api/export") == 0) {
        char view[16];
        if (query_get(req, "view", view, sizeof view) != 0 || export_op(view, &c->op) != 0) {
            dash_call_free(c);
            return respond_error(req, 400, "export which view? (view=devices|records|perday|"
                                           "conflicts|audit)");
        }
        c->csv = true;
    }
    if (route->op == DASH_PEOPLE_ACT &&
        (form_get(req->body_in, "kind", c->p_kind, sizeof c->p_kind) != 0 ||
         form_get(req->body_in, "id", c->p_id, sizeof c->p_id) != 0 ||
         form_get(req->body_in, "action", c->p_action, sizeof c->p_action) != 0)) {
        dash_call_free(c);
        return respond_error(req, 400, "kind, id and action are required (a form body)");
    }
    if (route->op == DASH_PEOPLE_ACT) {
        /* teams and wipe are optional: each act reads the one it uses. */
        c->p_has_teams = form_get(req->body_in, "teams", c->p_teams, sizeof c->p_teams) == 0;
        if (!c->p_has_teams)
            c->p_teams[0] = 0;
        if (form_get(req->body_in, "wipe", c->p_wipe, sizeof c->p_wipe) != 0)
            c->p_wipe[0] = 0;
    }
    if (route->op == DASH_PEOPLE_ACT) {
        /* Where devices reach this server: the host the page came from, when it is a plain
         * HOST:PORT (it goes into the enrollment QR, never into HTML). */
        char host[128];
        int n = lws_hdr_copy(req->wsi, host, (int)sizeof host, WSI_TOKEN_HOST);
        bool plain = n > 0 && strchr(host, ':') != NULL;
        for (int i = 0; plain && i < n; i++)
            plain = (host[i] >= 'a' && host[i] <= 'z') || (host[i] >= 'A' && host[i] <= 'Z') ||
                    (host[i] >= '0' && host[i] <= '9') || strchr(".-:[]", host[i]) != NULL;
        if (plain)
            snprintf(c->p_server, sizeof c->p_server, "%s", host);
    }
    if (route->op == DASH_PASSWORD &&
        (form_get(req->body_in, "current", c->password, sizeof c->password) != 0 ||
         form_get(req->body_in, "password", c->new_password, sizeof c->new_password) != 0)) {
        dash_call_free(c);
        return respond_error(req, 400, "current and password are required");
    }
    if (route->op == DASH_DECIDE) {
        char id[24], action[16];
        char *end = NULL;
        if (form_get(req->body_in, "id", id, sizeof id) != 0 ||
            form_get(req->body_in, "action", action, sizeof action) != 0 ||
            (strcmp(action, "keep") != 0 && strcmp(action, "reverse") != 0)) {
            dash_call_free(c);
            return respond_error(req, 400, "id and action=keep|reverse are required");
        }
        c->conflict_id = strtoll(id, &end, 10);
        if (!end || *end || c->conflict_id <= 0) {
            dash_call_free(c);
            return respond_error(req, 400, "bad conflict id");
        }
        c->reverse = strcmp(action, "reverse") == 0;
    }
    return submit(dash, req, c);
}

void dashboard_event(dashboard *dash, unsigned events, const char (*teams)[64], uint32_t n_teams)
{
    live_broadcast(dash, events, teams, n_teams);
}
