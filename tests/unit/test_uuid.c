/* UUIDv7 ids made on the device. */
#include <ctype.h>
#include <time.h>

#include "unit/client_fixture.h"

static void test_uuid_has_v7_layout(void **state)
{
    char id[OUTPOST_UUID_TEXT_SIZE];

    (void)state;
    assert_int_equal(outpost_uuid_make(id), OUTPOST_OK);
    assert_int_equal(strlen(id), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(id[i], '-');
        else
            assert_true(isxdigit((unsigned char)id[i]) && !isupper((unsigned char)id[i]));
    }
    assert_int_equal(id[14], '7');                   /* version */
    assert_non_null(strchr("89ab", id[19]));         /* RFC 9562 variant */
}

static void test_uuid_carries_current_time(void **state)
{
    char id[OUTPOST_UUID_TEXT_SIZE];
    char hex[13];
    struct timespec ts;
    unsigned long long ms, now;

    (void)state;
    clock_gettime(CLOCK_REALTIME, &ts);
    now = (unsigned long long)ts.tv_sec * 1000ull + (unsigned long long)ts.tv_nsec / 1000000ull;
    assert_int_equal(outpost_uuid_make(id), OUTPOST_OK);
    memcpy(hex, id, 8);
    memcpy(hex + 8, id + 9, 4);
    hex[12] = '\0';
    ms = strtoull(hex, NULL, 16);
    assert_true(ms + 1000 >= now && ms <= now + 1000);
}

static void test_uuid_unique_and_increasing(void **state)
{
    enum { N = 20000 };
    char (*ids)[OUTPOST_UUID_TEXT_SIZE] = malloc(N * sizeof *ids);

    (void)state;
    assert_non_null(ids);
    for (int i = 0; i < N; i++)
        assert_int_equal(outpost_uuid_make(ids[i]), OUTPOST_OK);
    for (int i = 1; i < N; i++)
        assert_true(strcmp(ids[i - 1], ids[i]) < 0);
    free(ids);
    assert_int_equal(outpost_uuid_make(NULL), OUTPOST_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_has_v7_layout),
        cmocka_unit_test(test_uuid_carries_current_time),
        cmocka_unit_test(test_uuid_unique_and_increasing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
