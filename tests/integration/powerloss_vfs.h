/*
 * A power-loss VFS for tests, in the spirit of SQLite's crash-test VFS (src/test_vfs.c,
 * test/crash*.test): a shim over the default VFS that keeps every write (and truncate) made
 * since a file's last xSync in memory, as the page cache of an operating system would, and
 * passes it to the real file only at xSync. Reads see the pending writes, so the program above
 * behaves as it would on a real disk.
 *
 * A simulated power cut (powerloss_cut) drops or tears every write not yet synced, file by
 * file: a dropped write leaves the old bytes; a torn one lands as a correct prefix of random
 * length followed by a garbage tail up to its end. Everything synced stays. Bytes written
 * correctly are never counted as dropped, so a cut that reports dropped_bytes > 0 provably
 * destroyed something.
 *
 * The cut is armed to happen at the Nth write after powerloss_arm(N): that write is recorded
 * like any other and then the power goes: from there on every write, sync, truncate and open
 * through the shim fails with SQLITE_IOERR and changes nothing (the dying process). Closing and
 * unlocking still work, so the program can close its handles before powerloss_cut() applies
 * the damage and powerloss_reset() brings the power back.
 *
 * The shim registers itself as SQLite's default VFS, so liboutpost's plain replica, the
 * encrypting VFS (which stacks over the default VFS) and the central store all go through it.
 * Single-threaded use only (one test thread; no background sync engines).
 */
#ifndef OUTPOST_POWERLOSS_VFS_H
#define OUTPOST_POWERLOSS_VFS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct powerloss_stats {
    uint64_t writes;         /* writes through the shim since powerloss_arm() */
    uint64_t syncs;          /* xSync calls that flushed pending writes */
    uint64_t pending_writes; /* unsynced writes the last cut found */
    uint64_t dropped_bytes;  /* bytes of those writes that did not land as written */
    uint64_t torn_writes;    /* of them, writes that landed torn (prefix + garbage) */
    uint64_t files_hit;      /* files that had unsynced writes at the cut */
} powerloss_stats;

/* Registers the shim as the default VFS (idempotent). Returns 0 or -1. */
int powerloss_install(void);

/* Arms the cut at the nth write from now (n >= 1); 0 disarms. Clears the counters. */
void powerloss_arm(uint64_t nth_write);

/* Whether the power has gone (the armed write happened). */
bool powerloss_is_dead(void);

/* Drops or tears every unsynced write of every file (seeded, reproducible), forgets them, and
 * fills *out_stats. Call after the program closed its handles. The power stays off until
 * powerloss_reset(). */
void powerloss_cut(uint64_t seed, powerloss_stats *out_stats);

/* Power back on: disarms, forgets pending writes and counters. */
void powerloss_reset(void);

/* Counters so far (writes since arm, syncs). */
void powerloss_stats_get(powerloss_stats *out_stats);

#endif /* OUTPOST_POWERLOSS_VFS_H */
