/*
 * Skips that show as skips. cmocka 1.1.5 counts a skip() as a pass in its exit status, so a test
 * that cannot run here calls TEST_SKIP(reason), and main returns test_exit_status(failed): 77
 * when anything was skipped and nothing failed, which ctest (SKIP_RETURN_CODE 77, set by
 * outpost_add_test) reports as "Skipped". scripts/ctest-guarded.sh then fails the run unless
 * OUTPOST_ALLOW_SKIPS=1. Include from the test program's own .c file only (one per program).
 */
#ifndef OUTPOST_TEST_SKIP_H
#define OUTPOST_TEST_SKIP_H

#include <stdbool.h>

#define TEST_SKIPPED_EXIT 77

static bool test_any_skipped;

#define TEST_SKIP(...)                                                                         \
    do {                                                                                       \
        test_any_skipped = true;                                                               \
        print_message("SKIPPED because: " __VA_ARGS__);                                       \
        print_message("\n");                                                                   \
        skip();                                                                                \
    } while (0)

static inline int test_exit_status(int failed)
{
    if (failed != 0)
        return failed;
    return test_any_skipped ? TEST_SKIPPED_EXIT : 0;
}

#endif /* OUTPOST_TEST_SKIP_H */
