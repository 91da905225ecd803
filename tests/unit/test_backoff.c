/* The reconnect schedule: what a device waits between attempts to reach a dead server. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "backoff.h"

/* A random source that always returns the same value, to pin the jitter to an edge. */
static uint64_t fixed_random(void *ctx)
{
    return *(const uint64_t *)ctx;
}

static const backoff_policy full = {.base_ms = 500, .cap_ms = 60000, .jitter = BACKOFF_JITTER_FULL};
static const backoff_policy decorrelated = {
    .base_ms = 500, .cap_ms = 60000, .jitter = BACKOFF_JITTER_DECORRELATED};

static void test_ceiling_grows_exponentially_to_the_cap(void **state)
{
    (void)state;
    uint32_t expected[] = {500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
    for (uint32_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        assert_int_equal(backoff_ceiling_ms(&full, i), expected[i]);
    /* Far past the point where base * 2^attempt would overflow. */
    assert_int_equal(backoff_ceiling_ms(&full, 40), 60000);
    assert_int_equal(backoff_ceiling_ms(&full, UINT32_MAX), 60000);
}

static void test_full_jitter_at_the_top_follows_the_ceiling(void **state)
{
    (void)state;
    /* A draw equal to the ceiling lands exactly on it (r % (ceiling + 1) == ceiling). */
    backoff_state s = {0};
    for (uint32_t i = 0; i < 12; i++) {
        uint64_t r = backoff_ceiling_ms(&full, i);
        assert_int_equal(backoff_next_delay_ms(&full, &s, fixed_random, &r),
                         backoff_ceiling_ms(&full, i));
    }
    assert_int_equal(s.attempt, 12);
}

static void test_full_jitter_stays_within_bounds(void **state)
{
    (void)state;
    uint64_t seed = 42;
    backoff_state s = {0};
    uint32_t lowest_seen = UINT32_MAX, highest_seen = 0;
    for (uint32_t i = 0; i < 2000; i++) {
        uint32_t ceiling = backoff_ceiling_ms(&full, s.attempt);
        uint32_t d = backoff_next_delay_ms(&full, &s, backoff_splitmix64, &seed);
        assert_true(d <= ceiling);
        if (i >= 8) { /* at the cap: the whole range [0, cap] is used */
            lowest_seen = d < lowest_seen ? d : lowest_seen;
            highest_seen = d > highest_seen ? d : highest_seen;
        }
    }
    assert_true(lowest_seen < 60000 / 10);
    assert_true(highest_seen > 60000 - 60000 / 10);
}

static void test_decorrelated_jitter_stays_within_bounds(void **state)
{
    (void)state;
    uint64_t seed = 7;
    backoff_state s = {0};
    uint32_t previous = 500;
    for (int i = 0; i < 2000; i++) {
        uint32_t d = backoff_next_delay_ms(&decorrelated, &s, backoff_splitmix64, &seed);
        uint32_t hi = previous * 3 < 60000 ? previous * 3 : 60000;
        assert_true(d >= 500);
        assert_true(d <= hi);
        previous = d;
    }
}

static void test_decorrelated_jitter_grows_to_the_cap(void **state)
{
    (void)state;
    uint64_t seed = 99;
    backoff_state s = {0};
    uint32_t highest = 0;
    for (int i = 0; i < 200; i++) {
        uint32_t d = backoff_next_delay_ms(&decorrelated, &s, backoff_splitmix64, &seed);
        highest = d > highest ? d : highest;
    }
    assert_true(highest > 60000 * 3 / 4);
    assert_true(highest <= 60000);
}

static void test_success_resets_the_schedule(void **state)
{
    (void)state;
    uint64_t seed = 1;
    backoff_state s = {0};
    for (int i = 0; i < 10; i++)
        (void)backoff_next_delay_ms(&full, &s, backoff_splitmix64, &seed);
    assert_int_equal(s.attempt, 10);
    backoff_reset(&s);
    /* After a success the next failure waits at most the base delay again. */
    for (int i = 0; i < 100; i++) {
        backoff_state fresh = s;
        assert_true(backoff_next_delay_ms(&full, &fresh, backoff_splitmix64, &seed) <= 500);
    }
}

static void test_network_hint_makes_the_next_attempt_immediate(void **state)
{
    (void)state;
    uint64_t top = UINT64_MAX;
    backoff_state s = {0};
    for (int i = 0; i < 10; i++)
        (void)backoff_next_delay_ms(&full, &s, fixed_random, &top);
    backoff_network_changed(&s);
    assert_int_equal(backoff_next_delay_ms(&full, &s, fixed_random, &top), 0);
    /* The hint is used up, and the schedule starts again from the base. */
    uint32_t after = backoff_next_delay_ms(&full, &s, fixed_random, &top);
    assert_true(after <= 500);
    assert_int_equal(s.attempt, 1);

    backoff_state d = {0};
    for (int i = 0; i < 10; i++)
        (void)backoff_next_delay_ms(&decorrelated, &d, fixed_random, &top);
    backoff_network_changed(&d);
    assert_int_equal(backoff_next_delay_ms(&decorrelated, &d, fixed_random, &top), 0);
    assert_true(backoff_next_delay_ms(&decorrelated, &d, fixed_random, &top) <= 3 * 500);
}

static void test_same_seed_gives_the_same_schedule(void **state)
{
    (void)state;
    const backoff_policy *policies[] = {&full, &decorrelated};
    for (size_t p = 0; p < 2; p++) {
        uint64_t seed_a = 2026, seed_b = 2026, seed_c = 2027;
        backoff_state a = {0}, b = {0}, c = {0};
        int differences = 0;
        for (int i = 0; i < 50; i++) {
            uint32_t da = backoff_next_delay_ms(policies[p], &a, backoff_splitmix64, &seed_a);
            uint32_t db = backoff_next_delay_ms(policies[p], &b, backoff_splitmix64, &seed_b);
            uint32_t dc = backoff_next_delay_ms(policies[p], &c, backoff_splitmix64, &seed_c);
            assert_int_equal(da, db);
            differences += da != dc;
        }
        assert_true(differences > 25); /* another seed really gives another schedule */
    }
}

static void test_degenerate_policy_is_read_sensibly(void **state)
{
    (void)state;
    backoff_policy zero = {0};
    uint64_t top = UINT64_MAX;
    backoff_state s = {0};
    for (int i = 0; i < 40; i++)
        assert_true(backoff_next_delay_ms(&zero, &s, fixed_random, &top) <= 1);
    backoff_policy inverted = {.base_ms = 1000, .cap_ms = 10, .jitter = BACKOFF_JITTER_FULL};
    assert_int_equal(backoff_ceiling_ms(&inverted, 5), 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ceiling_grows_exponentially_to_the_cap),
        cmocka_unit_test(test_full_jitter_at_the_top_follows_the_ceiling),
        cmocka_unit_test(test_full_jitter_stays_within_bounds),
        cmocka_unit_test(test_decorrelated_jitter_stays_within_bounds),
        cmocka_unit_test(test_decorrelated_jitter_grows_to_the_cap),
        cmocka_unit_test(test_success_resets_the_schedule),
        cmocka_unit_test(test_network_hint_makes_the_next_attempt_immediate),
        cmocka_unit_test(test_same_seed_gives_the_same_schedule),
        cmocka_unit_test(test_degenerate_policy_is_read_sensibly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
