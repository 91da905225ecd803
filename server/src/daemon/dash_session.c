#include "dash_session.h"

#include <psa/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dash_sessions_init(dash_sessions *ds, uint32_t capacity, uint32_t per_user)
{
    ds->slots = calloc(capacity, sizeof *ds->slots);
    ds->capacity = ds->slots ? capacity : 0;
    ds->per_user = per_user ? per_user : 1;
    ds->full = false;
    return ds->slots ? 0 : -1;
}

void dash_session_end(dash_session *s)
{
    if (!s)
        return;
    free(s->teams);
    memset(s, 0, sizeof *s);
}

uint32_t dash_sessions_end_user(dash_sessions *ds, const char *user, const char *keep_token)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < ds->capacity; i++)
        if (ds->slots[i].in_use && strcmp(ds->slots[i].user, user) == 0 &&
            !(keep_token && dash_token_equal(ds->slots[i].token, keep_token))) {
            dash_session_end(&ds->slots[i]);
            n++;
        }
    return n;
}

void dash_sessions_free(dash_sessions *ds)
{
    if (!ds)
        return;
    for (uint32_t i = 0; i < ds->capacity; i++)
        dash_session_end(&ds->slots[i]);
    free(ds->slots);
    ds->slots = NULL;
    ds->capacity = 0;
}

static int random_hex(char out[DASH_TOKEN_HEX])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t raw[32];

    if (psa_crypto_init() != PSA_SUCCESS || psa_generate_random(raw, sizeof raw) != PSA_SUCCESS)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++) {
        out[2 * i] = digits[raw[i] >> 4];
        out[2 * i + 1] = digits[raw[i] & 15];
    }
    out[64] = 0;
    memset(raw, 0, sizeof raw);
    return 0;
}

dash_session *dash_session_create(dash_sessions *ds, const store_user *user, uint64_t now_ms)
{
    dash_session *slot = NULL, *free_slot = NULL, *own_oldest = NULL;
    uint32_t n_own = 0;

    ds->full = false;
    for (uint32_t i = 0; i < ds->capacity; i++) {
        dash_session *s = &ds->slots[i];
        if (s->in_use && (now_ms - s->last_ms > DASH_IDLE_MS ||
                          now_ms - s->created_ms > DASH_MAX_AGE_MS))
            dash_session_end(s);
        if (!s->in_use) {
            if (!free_slot)
                free_slot = s;
            continue;
        }
        if (strcmp(s->user, user->name) != 0)
            continue;
        n_own++;
        if (!own_oldest || s->last_ms < own_oldest->last_ms)
            own_oldest = s;
    }
    if (n_own >= ds->per_user || !free_slot)
        slot = own_oldest;
    else
        slot = free_slot;
    if (!slot) {
        ds->full = true;
        return NULL;
    }
    dash_session_end(slot);
    if (user->n_teams > 0) {
        slot->teams = malloc((size_t)user->n_teams * sizeof *slot->teams);
        if (!slot->teams)
            return NULL;
        memcpy(slot->teams, user->teams, (size_t)user->n_teams * sizeof *slot->teams);
    }
    if (random_hex(slot->token) != 0 || random_hex(slot->csrf) != 0) {
        dash_session_end(slot);
        return NULL;
    }
    slot->n_teams = user->n_teams;
    slot->role = user->role;
    snprintf(slot->user, sizeof slot->user, "%s", user->name);
    slot->created_ms = slot->last_ms = now_ms;
    slot->in_use = true;
    return slot;
}

bool dash_token_equal(const char *a, const char *b)
{
    unsigned diff = 0;

    if (!a || !b || strlen(a) != DASH_TOKEN_HEX - 1 || strlen(b) != DASH_TOKEN_HEX - 1)
        return false;
    for (size_t i = 0; i < DASH_TOKEN_HEX - 1; i++)
        diff |= (unsigned)(a[i] ^ b[i]);
    return diff == 0;
}

dash_session *dash_session_peek(dash_sessions *ds, const char *token, uint64_t now_ms)
{
    dash_session *found = NULL;

    if (!token || strlen(token) != DASH_TOKEN_HEX - 1)
        return NULL;
    /* Every slot is compared, so the time taken does not say where a match was. */
    for (uint32_t i = 0; i < ds->capacity; i++)
        if (ds->slots[i].in_use && dash_token_equal(ds->slots[i].token, token))
            found = &ds->slots[i];
    if (found && (now_ms - found->last_ms > DASH_IDLE_MS ||
                  now_ms - found->created_ms > DASH_MAX_AGE_MS)) {
        dash_session_end(found);
        found = NULL;
    }
    return found;
}

dash_session *dash_session_find(dash_sessions *ds, const char *token, uint64_t now_ms)
{
    dash_session *s = dash_session_peek(ds, token, now_ms);

    if (s)
        s->last_ms = now_ms;
    return s;
}

bool dash_session_has_team(const dash_session *s, const char *team)
{
    for (uint32_t i = 0; i < s->n_teams; i++)
        if (strcmp(s->teams[i], team) == 0)
            return true;
    return false;
}
