#include "dash_people.h"

#include <qrencode.h>
#include <stdio.h>
#include <string.h>

enum { MAX_TEAMS = 64 };

static void reply_error(dash_call *c, int status, const char *message)
{
    dash_reply_error(c, status, message);
}

static bool for_admins(dash_call *c)
{
    if (c->role == STORE_ROLE_ADMIN)
        return true;
    reply_error(c, 403, "managing people is for administrators");
    return false;
}

typedef struct list_ctx {
    dash_call *call;
    int kind; /* 0 team, 1 worker, 2 user */
    bool first;
} list_ctx;

static int person_json(const store_person *p, void *user_data)
{
    list_ctx *ctx = user_data;
    dash_buf *b = &ctx->call->body;

    dash_buf_puts(b, ctx->first ? "{\"id\":" : ",{\"id\":");
    ctx->first = false;
    dash_buf_json_str(b, p->id);
    if (ctx->kind == 0) {
        dash_buf_puts(b, ",\"name\":");
        dash_buf_json_str(b, p->name);
        dash_buf_puts(b, ",\"workers\":");
        dash_buf_json_str(b, p->teams);
    } else {
        dash_buf_puts(b, ",\"teams\":");
        dash_buf_json_str(b, p->teams);
        dash_buf_printf(b, ",\"disabled\":%s", p->disabled ? "true" : "false");
        if (ctx->kind == 1)
            dash_buf_printf(b, ",\"devices\":%u", p->n_devices);
        else
            dash_buf_printf(b, ",\"role\":\"%s\"",
                            p->role == STORE_ROLE_ADMIN ? "admin" : "supervisor");
    }
    dash_buf_puts(b, "}");
    return 0;
}

void dash_people_list(dash_call *c, store *st)
{
    list_ctx ctx = {c, 0, true};
    int rc;

    if (!for_admins(c))
        return;
    c->http_status = 200;
    c->content_type = "application/json";
    dash_buf_puts(&c->body, "{\"teams\":[");
    rc = store_team_list(st, person_json, &ctx);
    ctx = (list_ctx){c, 1, true};
    if (rc == STORE_OK) {
        dash_buf_puts(&c->body, "],\"workers\":[");
        rc = store_worker_list(st, person_json, &ctx);
    }
    ctx = (list_ctx){c, 2, true};
    if (rc == STORE_OK) {
        dash_buf_puts(&c->body, "],\"users\":[");
        rc = store_user_list(st, person_json, &ctx);
    }
    if (rc != STORE_OK) {
        dash_reply_store_error(c, st, rc);
        return;
    }
    dash_buf_puts(&c->body, "]}");
}

/* Splits "a,b,c" in place into at most MAX_TEAMS names. */
static uint32_t split_teams(char *list, const char *out[MAX_TEAMS])
{
    uint32_t n = 0;
    for (char *p = list, *next; p && *p && n < MAX_TEAMS; p = next) {
        next = strchr(p, ',');
        if (next)
            *next++ = 0;
        if (*p)
            out[n++] = p;
    }
    return n;
}

enum { ENROLL_HOURS = 24 };

/* A one-time enrollment code for worker p_id, valid ENROLL_HOURS, with its QR code as
 * qr_width * qr_width modules ('1' dark), holding outpost://HOST:PORT/enroll?code=CODE when the
 * page's host is known, else the code. Audited as worker.enroll; the code itself is not. */
static void issue_enrollment(dash_call *c, store *st)
{
    char code[STORE_CODE_SIZE], text[256], target[128];
    int rc = store_enroll_code_create(st, c->p_id, c->now_ms,
                                      (uint64_t)ENROLL_HOURS * 3600u * 1000u, code);
    QRcode *qr;

    if (rc != STORE_OK) {
        dash_reply_store_error(c, st, rc);
        return;
    }
    snprintf(target, sizeof target, "%.63s expires_h=%d", c->p_id, ENROLL_HOURS);
    if (store_audit_append(st, c->now_ms, c->user, "worker.enroll", target, c->address) !=
        STORE_OK) {
        snprintf(c->log_reason, sizeof c->log_reason, "audit worker.enroll: %s", store_errmsg(st));
        reply_error(c, 500, "the audit log cannot be written: no code shown");
        return;
    }
    if (c->p_server[0])
        snprintf(text, sizeof text, "outpost://%s/enroll?code=%s", c->p_server, code);
    else
        snprintf(text, sizeof text, "%s", code);
    qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (!qr) {
        reply_error(c, 500, "cannot make the QR code");
        return;
    }
    c->http_status = 200;
    c->content_type = "application/json";
    dash_buf_puts(&c->body, "{\"code\":");
    dash_buf_json_str(&c->body, code);
    dash_buf_puts(&c->body, ",\"text\":");
    dash_buf_json_str(&c->body, text);
    dash_buf_printf(&c->body, ",\"expires_ms\":%llu,\"qr_width\":%d,\"qr\":\"",
                    (unsigned long long)(c->now_ms + (uint64_t)ENROLL_HOURS * 3600u * 1000u),
                    qr->width);
    for (int i = 0; i < qr->width * qr->width; i++)
        dash_buf_put(&c->body, qr->data[i] & 1 ? "1" : "0", 1);
    dash_buf_puts(&c->body, "\"}");
    QRcode_free(qr);
}

void dash_people_act(dash_call *c, store *st)
{
    const char *kind = c->p_kind, *id = c->p_id, *action = c->p_action;
    bool user = strcmp(kind, "user") == 0, worker = strcmp(kind, "worker") == 0;
    char teams_text[sizeof c->p_teams], target[256], audit_action[48];
    const char *teams[MAX_TEAMS];
    uint32_t n_teams = 0, n_revoked = 0;
    int rc;

    if (!for_admins(c))
        return;
    snprintf(teams_text, sizeof teams_text, "%s", c->p_teams);
    snprintf(target, sizeof target, "%s", id);
    if (!id[0]) {
        reply_error(c, 400, "which one? (id)");
        return;
    }
    if (worker && strcmp(action, "enroll") == 0) {
        issue_enrollment(c, st);
        return;
    }
    if ((user || worker) && strcmp(action, "disable") == 0) {
        rc = user ? store_user_set_disabled(st, id, true) : store_worker_set_disabled(st, id, true);
    } else if ((user || worker) && strcmp(action, "enable") == 0) {
        rc = user ? store_user_set_disabled(st, id, false)
                  : store_worker_set_disabled(st, id, false);
    } else if ((user || worker) && strcmp(action, "remove") == 0) {
        if (user && strcmp(id, c->user) == 0) {
            reply_error(c, 400, "an administrator cannot remove their own account");
            return;
        }
        rc = user ? store_user_remove(st, id) : store_worker_remove(st, id, &n_revoked);
        if (worker)
            snprintf(target, sizeof target, "%s devices_revoked=%u", id, n_revoked);
    } else if ((user || worker) && strcmp(action, "teams") == 0) {
        if (!c->p_has_teams) {
            reply_error(c, 400, "action=teams needs teams=a,b (empty for none)");
            return;
        }
        n_teams = split_teams(teams_text, teams);
        rc = user ? store_user_set_teams(st, id, teams, n_teams)
                  : store_worker_set_teams(st, id, teams, n_teams);
        snprintf(target, sizeof target, "%.63s teams=%.180s", id, c->p_teams);
    } else if (strcmp(kind, "device") == 0 && strcmp(action, "revoke") == 0) {
        /* A revoke keeps what the device has not sent yet (it waits there, refused); only an
         * explicit wipe=1 orders the device to destroy its replica, unsent entries with it. */
        bool wipe = strcmp(c->p_wipe, "1") == 0;
        if (!wipe && c->p_wipe[0] && strcmp(c->p_wipe, "0") != 0) {
            reply_error(c, 400, "wipe=0 or wipe=1 (0 keeps the device's unsent entries)");
            return;
        }
        rc = store_device_revoke(st, id, wipe);
        snprintf(target, sizeof target, "%s %s", id, wipe ? "wipe" : "keep");
    } else {
        reply_error(c, 400, "kind=user|worker with action=disable|enable|remove|teams, "
                            "kind=worker with action=enroll, or kind=device with action=revoke "
                            "(wipe=1 to wipe)");
        return;
    }
    if (rc != STORE_OK) {
        dash_reply_store_error(c, st, rc);
        return;
    }
    if (user && (strcmp(action, "disable") == 0 || strcmp(action, "remove") == 0))
        snprintf(c->ended_user, sizeof c->ended_user, "%s", id);
    snprintf(audit_action, sizeof audit_action, "%s.%s", kind,
             worker && strcmp(action, "teams") == 0 ? "move" : action);
    /* The act is done: a failed audit write is reported, and the act stands. */
    if (store_audit_append(st, c->now_ms, c->user, audit_action, target, c->address) !=
        STORE_OK) {
        snprintf(c->log_reason, sizeof c->log_reason, "audit %s: %s", audit_action,
                 store_errmsg(st));
        reply_error(c, 500, "done, but the audit log cannot be written");
        return;
    }
    c->http_status = 200;
    c->content_type = "application/json";
    dash_buf_puts(&c->body, "{\"done\":");
    dash_buf_json_str(&c->body, audit_action);
    dash_buf_puts(&c->body, ",\"id\":");
    dash_buf_json_str(&c->body, id);
    dash_buf_puts(&c->body, "}");
}
