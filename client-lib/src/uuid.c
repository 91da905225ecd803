/* UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, 12 bits counter, variant, 62 random
 * bits. The 12-bit field counts up within one millisecond (the RFC's method 1) so that ids made
 * later in one process sort after earlier ones. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"

static pthread_mutex_t uuid_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t uuid_last_ms;
static uint32_t uuid_counter;

static int random_fill(uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t got = getrandom(buf, n, 0);

        if (got < 0) {
            if (errno == EINTR)
                continue;
            return OUTPOST_EIO;
        }
        buf += got;
        n -= (size_t)got;
    }
    return OUTPOST_OK;
}

/* The millisecond and the counter for a new id: the counter restarts from a random value each
 * millisecond and, should it run out, the time is borrowed from the next millisecond. */
static void uuid_clock(uint64_t now_ms, uint16_t seed, uint64_t *out_ms, uint32_t *out_counter)
{
    pthread_mutex_lock(&uuid_lock);
    if (now_ms > uuid_last_ms) {
        uuid_last_ms = now_ms;
        uuid_counter = seed & 0x7ffu; /* top bit clear leaves room to count */
    } else if (++uuid_counter > 0xfffu) {
        uuid_last_ms++;
        uuid_counter = 0;
    }
    *out_ms = uuid_last_ms;
    *out_counter = uuid_counter;
    pthread_mutex_unlock(&uuid_lock);
}

int outpost_uuid_make(char out_text[OUTPOST_UUID_TEXT_SIZE])
{
    struct timespec ts;
    uint8_t b[16];
    uint64_t ms;
    uint32_t counter;

    if (out_text == NULL)
        return OUTPOST_EINVAL;
    if (random_fill(b, sizeof b) != OUTPOST_OK)
        return OUTPOST_EIO;
    clock_gettime(CLOCK_REALTIME, &ts);
    uuid_clock((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u,
               (uint16_t)(b[6] << 8 | b[7]), &ms, &counter);
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70u | ((counter >> 8) & 0x0fu));
    b[7] = (uint8_t)(counter & 0xffu);
    b[8] = (uint8_t)(0x80u | (b[8] & 0x3fu));
    snprintf(out_text, OUTPOST_UUID_TEXT_SIZE,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return OUTPOST_OK;
}
