#include "dash_session.h"

#include <mbedtls/sha256.h>
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

/* The slot a new session of user takes: a free one, or user's own least recently used when
 * user holds per_user already or no slot is free; NULL (ds->full) when every slot is another
 * account's. Sessions past their limits end on the way. */
static dash_session *place(dash_sessions *ds, const char *user, uint64_t now_ms)
{
    dash_session *free_slot = NULL, *own_oldest = NULL;
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
        if (strcmp(s->user, user) != 0)
            continue;
        n_own++;
        if (!own_oldest || s->last_ms < own_oldest->last_ms)
            own_oldest = s;
    }
    if (n_own >= ds->per_user || !free_slot)
        free_slot = own_oldest;
    if (!free_slot)
        ds->full = true;
    return free_slot;
}

/* Fills slot (ended first) with token and user's name, role and teams. */
static int fill(dash_session *slot, const char *token, const store_user *user,
                uint64_t created_ms, uint64_t last_ms)
{
    dash_session_end(slot);
    if (user->n_teams > 0) {
        slot->teams = malloc((size_t)user->n_teams * sizeof *slot->teams);
        if (!slot->teams)
            return -1;
        memcpy(slot->teams, user->teams, (size_t)user->n_teams * sizeof *slot->teams);
    }
    snprintf(slot->token, sizeof slot->token, "%s", token);
    dash_csrf_of(token, slot->csrf);
    slot->n_teams = user->n_teams;
    slot->role = user->role;
    snprintf(slot->user, sizeof slot->user, "%s", user->name);
    slot->created_ms = created_ms;
    slot->last_ms = last_ms;
    slot->in_use = true;
    return 0;
}

dash_session *dash_session_create(dash_sessions *ds, const store_user *user, uint64_t now_ms)
{
    char token[DASH_TOKEN_HEX];
    dash_session *slot = place(ds, user->name, now_ms);

    if (!slot)
        return NULL;
    if (random_hex(token) != 0 || fill(slot, token, user, now_ms, now_ms) != 0) {
        dash_session_end(slot);
        return NULL;
    }
    return slot;
}

static dash_session *known(dash_sessions *ds, const char *token)
{
    dash_session *found = NULL;

    if (!token || strlen(token) != DASH_TOKEN_HEX - 1)
        return NULL;
    /* Every slot is compared, so the time taken does not say where a match was. */
    for (uint32_t i = 0; i < ds->capacity; i++)
        if (ds->slots[i].in_use && dash_token_equal(ds->slots[i].token, token))
            found = &ds->slots[i];
    return found;
}

dash_session *dash_session_remember(dash_sessions *ds, const char *token, const store_user *user,
                                    uint64_t created_ms, uint64_t last_ms, uint64_t now_ms)
{
    dash_session *slot = known(ds, token);

    if (!slot)
        slot = place(ds, user->name, now_ms);
    if (!slot)
        return NULL;
    if (fill(slot, token, user, created_ms, last_ms) != 0) {
        dash_session_end(slot);
        return NULL;
    }
    return slot;
}

void dash_session_forget(dash_sessions *ds, const char *token)
{
    dash_session_end(known(ds, token));
}

void dash_csrf_of(const char *token, char out[DASH_TOKEN_HEX])
{
    static const char label[] = "outpost dashboard csrf\n";
    static const char digits[] = "0123456789abcdef";
    mbedtls_sha256_context ctx;
    uint8_t digest[32];

    mbedtls_sha256_init(&ctx);
    if (mbedtls_sha256_starts(&ctx, 0) != 0 ||
        mbedtls_sha256_update(&ctx, (const uint8_t *)label, sizeof label - 1) != 0 ||
        mbedtls_sha256_update(&ctx, (const uint8_t *)token, strlen(token)) != 0 ||
        mbedtls_sha256_finish(&ctx, digest) != 0) {
        mbedtls_sha256_free(&ctx);
        out[0] = 0; /* matches no header: dash_token_equal wants 64 digits */
        return;
    }
    mbedtls_sha256_free(&ctx);
    for (size_t i = 0; i < sizeof digest; i++) {
        out[2 * i] = digits[digest[i] >> 4];
        out[2 * i + 1] = digits[digest[i] & 15];
    }
    out[64] = 0;
}

void dash_session_json(dash_buf *b, const char *user, store_role role, const char (*teams)[64],
                       uint32_t n_teams, const char *token, uint64_t created_ms, uint64_t last_ms,
                       uint64_t now_ms, const char *table)
{
    char csrf[DASH_TOKEN_HEX];
    uint64_t idle = now_ms > last_ms ? now_ms - last_ms : 0;
    uint64_t age = now_ms > created_ms ? now_ms - created_ms : 0;
    uint64_t left = idle < DASH_IDLE_MS ? DASH_IDLE_MS - idle : 0;

    if (age >= DASH_MAX_AGE_MS)
        left = 0;
    else if (DASH_MAX_AGE_MS - age < left)
        left = DASH_MAX_AGE_MS - age;

    dash_csrf_of(token, csrf);
    dash_buf_puts(b, "{\"user\":");
    dash_buf_json_str(b, user);
    dash_buf_printf(b, ",\"role\":\"%s\",\"teams\":[",
                    role == STORE_ROLE_ADMIN ? "admin" : "supervisor");
    for (uint32_t i = 0; i < n_teams; i++) {
        if (i)
            dash_buf_puts(b, ",");
        dash_buf_json_str(b, teams[i]);
    }
    dash_buf_puts(b, "],\"csrf\":");
    dash_buf_json_str(b, csrf);
    dash_buf_puts(b, ",\"table\":");
    dash_buf_json_str(b, table);
    dash_buf_printf(b, ",\"idle_ms\":%u,\"idle_left_ms\":%llu}", (unsigned)DASH_IDLE_MS,
                    (unsigned long long)left);
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
    dash_session *found = known(ds, token);

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
