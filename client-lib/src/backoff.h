/*
 * Retry schedule for reconnecting to the sync server.
 *
 * A device in the field loses the server for minutes or days. It must not hammer a dead server
 * (every device retrying at once when the office comes back would be a self-made flood), and it
 * must find a returning server within seconds of the app saying "the network changed".
 *
 * The schedule is exponential backoff with jitter, as in the AWS Architecture Blog's "Exponential
 * Backoff And Jitter":
 *   - full jitter:         delay = uniform(0, min(cap, base * 2^attempt))
 *   - decorrelated jitter: delay = min(cap, uniform(base, previous_delay * 3))
 * A success resets the schedule; a network-changed hint makes the next delay 0 and restarts the
 * exponent, so the attempts after it start small again.
 *
 * Everything here is a pure function of its arguments: the state lives in a caller-owned struct
 * and randomness comes from a caller-supplied source, so a test that seeds the source sees the
 * same delays every run. No function allocates, blocks or keeps globals; any thread may call any
 * function on its own backoff_state (the struct itself is not locked).
 */
#ifndef OUTPOST_BACKOFF_H
#define OUTPOST_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

typedef enum backoff_jitter {
    BACKOFF_JITTER_FULL = 0,     /* the default: spreads devices the most */
    BACKOFF_JITTER_DECORRELATED, /* grows from the previous delay instead of the attempt count */
} backoff_jitter;

typedef struct backoff_policy {
    uint32_t base_ms;      /* scale of the first delay; must be > 0 */
    uint32_t cap_ms;       /* no delay is ever longer than this; must be >= base_ms */
    backoff_jitter jitter;
} backoff_policy;

/* Caller-owned progress of one retry schedule. Zero-initialise it or call backoff_reset(). */
typedef struct backoff_state {
    uint32_t attempt;       /* failures since the last success or network hint */
    uint32_t last_delay_ms; /* the previous delay (decorrelated jitter grows from it) */
    bool network_changed;   /* the next delay is 0 */
} backoff_state;

/* Returns a uniformly distributed 64-bit value. ctx is whatever the caller passed along. */
typedef uint64_t (*backoff_random_cb)(void *ctx);

/* Back to the start of the schedule: call after a successful connection. */
void backoff_reset(backoff_state *state);

/* The app reported a network change: the next backoff_next_delay_ms() returns 0 and the delays
 * after it start again from the beginning of the schedule. */
void backoff_network_changed(backoff_state *state);

/* Records one failed attempt and returns how long to wait, in milliseconds, before the next one.
 * The value is always in [0, policy->cap_ms]. rng is called at most once. */
uint32_t backoff_next_delay_ms(const backoff_policy *policy, backoff_state *state,
                               backoff_random_cb rng, void *rng_ctx);

/* The upper bound of the full-jitter delay after `attempt` failures: min(cap, base * 2^attempt).
 * Exposed so callers and tests can reason about the schedule without randomness. */
uint32_t backoff_ceiling_ms(const backoff_policy *policy, uint32_t attempt);

/* A small deterministic generator (splitmix64) usable as a backoff_random_cb with a uint64_t
 * seed as its context. Seed it from real entropy in production; tests seed it with a constant. */
uint64_t backoff_splitmix64(void *seed_state);

#endif /* OUTPOST_BACKOFF_H */
