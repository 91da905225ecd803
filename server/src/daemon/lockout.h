/*
 * Lockout of addresses after repeated failed authentication (wrong secret, unknown device, bad
 * enrollment code): lockout_failures failures within window_ms lock the address for
 * duration_ms. The table has a fixed capacity so that a flood of addresses cannot grow memory;
 * when it is full the least recently touched unlocked entry is recycled, and locked entries are
 * never given up early.
 *
 * Service thread only: not thread safe.
 */
#ifndef OUTPOSTD_LOCKOUT_H
#define OUTPOSTD_LOCKOUT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct lockout lockout;

int lockout_create(uint32_t max_failures, uint64_t window_ms, uint64_t duration_ms,
                   uint32_t capacity, lockout **out_lockout);
void lockout_destroy(lockout *lo); /* NULL is a no-op */

bool lockout_is_locked(lockout *lo, const char *addr, uint64_t now_ms);

/* Counts one failure; returns true when this failure locked the address. */
bool lockout_record_failure(lockout *lo, const char *addr, uint64_t now_ms);

#endif /* OUTPOSTD_LOCKOUT_H */
