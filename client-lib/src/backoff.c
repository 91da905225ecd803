/* Exponential backoff with jitter; see backoff.h for the schedule and why it is shaped so. */
#include "backoff.h"

#include <stddef.h>

/* A policy with base 0 or a cap below the base would give a schedule that never grows or never
 * waits; both are caller mistakes, so they are read as the nearest sensible policy rather than
 * producing a retry storm. */
static uint32_t policy_base(const backoff_policy *policy)
{
    return policy->base_ms ? policy->base_ms : 1;
}

static uint32_t policy_cap(const backoff_policy *policy)
{
    uint32_t base = policy_base(policy);
    return policy->cap_ms > base ? policy->cap_ms : base;
}

/* Uniform in [lo, hi]. The modulo bias of a 64-bit draw over a range of at most 2^32 values is
 * below 2^-32, far under anything a retry schedule could notice. */
static uint32_t uniform_between(uint32_t lo, uint32_t hi, backoff_random_cb rng, void *rng_ctx)
{
    uint64_t span = (uint64_t)hi - lo + 1;
    return lo + (uint32_t)(rng(rng_ctx) % span);
}

void backoff_reset(backoff_state *state)
{
    state->attempt = 0;
    state->last_delay_ms = 0;
    state->network_changed = false;
}

void backoff_network_changed(backoff_state *state)
{
    state->network_changed = true;
}

uint32_t backoff_ceiling_ms(const backoff_policy *policy, uint32_t attempt)
{
    uint32_t base = policy_base(policy), cap = policy_cap(policy);
    /* base * 2^attempt overflows 64 bits past attempt 31 (base < 2^32); by then it is far above
     * any 32-bit cap anyway. */
    if (attempt >= 32)
        return cap;
    uint64_t ceiling = (uint64_t)base << attempt;
    return ceiling < cap ? (uint32_t)ceiling : cap;
}

uint32_t backoff_next_delay_ms(const backoff_policy *policy, backoff_state *state,
                               backoff_random_cb rng, void *rng_ctx)
{
    if (state->network_changed) {
        /* The conditions that made the server unreachable may be gone: try now, and if that
         * fails too, start the schedule from its beginning. */
        backoff_reset(state);
        return 0;
    }

    uint32_t delay;
    if (policy->jitter == BACKOFF_JITTER_DECORRELATED) {
        uint32_t base = policy_base(policy), cap = policy_cap(policy);
        uint64_t previous = state->last_delay_ms ? state->last_delay_ms : base;
        uint64_t hi = previous * 3;
        if (hi > cap)
            hi = cap;
        if (hi < base)
            hi = base;
        delay = uniform_between(base, (uint32_t)hi, rng, rng_ctx);
    } else {
        delay = uniform_between(0, backoff_ceiling_ms(policy, state->attempt), rng, rng_ctx);
    }

    if (state->attempt < UINT32_MAX)
        state->attempt++;
    state->last_delay_ms = delay;
    return delay;
}

uint64_t backoff_splitmix64(void *seed_state)
{
    uint64_t *s = seed_state;
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}
