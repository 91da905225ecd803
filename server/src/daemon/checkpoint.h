/*
 * Signed audit checkpoints from outpostd: at start, on a schedule and at stop, each written to
 * the log and, when configured, appended to a file that an operator ships off the machine.
 * Runs on the worker thread, which owns the store.
 */
#ifndef OUTPOSTD_CHECKPOINT_H
#define OUTPOSTD_CHECKPOINT_H

#include <stdint.h>

#include "store.h"

/* Makes one checkpoint (why: "start", "scheduled", "stop") and writes it out. Failures are
 * logged as errors; nothing else depends on them. */
void checkpoint_emit(store *st, const char *file, uint64_t now_ms, const char *why);

#endif /* OUTPOSTD_CHECKPOINT_H */
