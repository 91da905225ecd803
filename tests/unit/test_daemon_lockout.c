/* outpostd's address lockout (server/src/daemon/lockout.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "lockout.h"

static void test_lockout_locks_after_n_failures_in_window(void **state)
{
    lockout *lo = NULL;

    (void)state;
    assert_int_equal(lockout_create(3, 60000, 900000, 16, &lo), 0);
    assert_false(lockout_record_failure(lo, "10.0.0.1", 1000));
    assert_false(lockout_record_failure(lo, "10.0.0.1", 2000));
    assert_false(lockout_is_locked(lo, "10.0.0.1", 2000));
    assert_true(lockout_record_failure(lo, "10.0.0.1", 3000));
    assert_true(lockout_is_locked(lo, "10.0.0.1", 3000));
    assert_false(lockout_is_locked(lo, "10.0.0.2", 3000)); /* others are not affected */
    assert_true(lockout_is_locked(lo, "10.0.0.1", 3000 + 899999));
    assert_false(lockout_is_locked(lo, "10.0.0.1", 3000 + 900000)); /* it expires */
    lockout_destroy(lo);
}

static void test_lockout_failures_outside_window_do_not_add_up(void **state)
{
    lockout *lo = NULL;

    (void)state;
    assert_int_equal(lockout_create(3, 60000, 900000, 16, &lo), 0);
    assert_false(lockout_record_failure(lo, "10.0.0.1", 0));
    assert_false(lockout_record_failure(lo, "10.0.0.1", 1000));
    /* The window restarts: two old failures and one new one are not three. */
    assert_false(lockout_record_failure(lo, "10.0.0.1", 70000));
    assert_false(lockout_is_locked(lo, "10.0.0.1", 70000));
    lockout_destroy(lo);
}

static void test_lockout_full_table_keeps_locked_addresses(void **state)
{
    lockout *lo = NULL;
    char addr[32];

    (void)state;
    assert_int_equal(lockout_create(2, 60000, 900000, 4, &lo), 0);
    assert_false(lockout_record_failure(lo, "attacker", 10));
    assert_true(lockout_record_failure(lo, "attacker", 11));
    /* A flood of fresh addresses recycles the unlocked entries, never the locked one... */
    for (int i = 0; i < 100; i++) {
        snprintf(addr, sizeof addr, "10.1.0.%d", i);
        assert_false(lockout_record_failure(lo, addr, (uint64_t)(20 + i)));
    }
    assert_true(lockout_is_locked(lo, "attacker", 200));
    /* ... and when every entry is locked, new addresses are not tracked rather than unlocking. */
    for (int i = 0; i < 3; i++) {
        snprintf(addr, sizeof addr, "10.2.0.%d", i);
        (void)lockout_record_failure(lo, addr, 300);
        assert_true(lockout_record_failure(lo, addr, 301));
    }
    assert_false(lockout_record_failure(lo, "10.3.0.1", 400));
    assert_false(lockout_record_failure(lo, "10.3.0.1", 401));
    assert_true(lockout_is_locked(lo, "attacker", 500));
    lockout_destroy(lo);
    lockout_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lockout_locks_after_n_failures_in_window),
        cmocka_unit_test(test_lockout_failures_outside_window_do_not_add_up),
        cmocka_unit_test(test_lockout_full_table_keeps_locked_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
