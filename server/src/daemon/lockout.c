#include "lockout.h"

#include <stdlib.h>
#include <string.h>

typedef struct lockout_entry {
    char addr[64];
    uint32_t failures;
    uint64_t window_start_ms;
    uint64_t locked_until_ms;
    uint64_t touched_ms;
} lockout_entry;

struct lockout {
    uint32_t max_failures;
    uint64_t window_ms;
    uint64_t duration_ms;
    uint32_t capacity;
    lockout_entry *entries;
};

int lockout_create(uint32_t max_failures, uint64_t window_ms, uint64_t duration_ms,
                   uint32_t capacity, lockout **out_lockout)
{
    lockout *lo = calloc(1, sizeof *lo);

    if (!lo)
        return -1;
    lo->entries = calloc(capacity, sizeof *lo->entries);
    if (!lo->entries) {
        free(lo);
        return -1;
    }
    lo->max_failures = max_failures;
    lo->window_ms = window_ms;
    lo->duration_ms = duration_ms;
    lo->capacity = capacity;
    *out_lockout = lo;
    return 0;
}

void lockout_destroy(lockout *lo)
{
    if (!lo)
        return;
    free(lo->entries);
    free(lo);
}

static lockout_entry *find(lockout *lo, const char *addr)
{
    for (uint32_t i = 0; i < lo->capacity; i++)
        if (lo->entries[i].addr[0] != '\0' && strcmp(lo->entries[i].addr, addr) == 0)
            return &lo->entries[i];
    return NULL;
}

bool lockout_is_locked(lockout *lo, const char *addr, uint64_t now_ms)
{
    const lockout_entry *e = find(lo, addr);

    return e && e->locked_until_ms > now_ms;
}

bool lockout_record_failure(lockout *lo, const char *addr, uint64_t now_ms)
{
    lockout_entry *e = find(lo, addr);

    if (!e) {
        /* A free slot, else the least recently touched entry that is not locked right now. A
         * table full of locked addresses records no new ones rather than unlock one: a flood of
         * fresh addresses must not free an attacker. */
        lockout_entry *victim = NULL;
        for (uint32_t i = 0; i < lo->capacity; i++) {
            lockout_entry *c = &lo->entries[i];
            if (c->addr[0] == '\0') {
                victim = c;
                break;
            }
            if (c->locked_until_ms > now_ms)
                continue;
            if (!victim || c->touched_ms < victim->touched_ms)
                victim = c;
        }
        if (!victim)
            return false;
        e = victim;
        memset(e, 0, sizeof *e);
        strncpy(e->addr, addr, sizeof e->addr - 1);
        e->window_start_ms = now_ms;
    }
    e->touched_ms = now_ms;
    if (now_ms - e->window_start_ms > lo->window_ms) {
        e->window_start_ms = now_ms;
        e->failures = 0;
    }
    e->failures++;
    if (e->failures >= lo->max_failures && e->locked_until_ms <= now_ms) {
        e->locked_until_ms = now_ms + lo->duration_ms;
        e->failures = 0;
        e->window_start_ms = now_ms;
        return true;
    }
    return false;
}
