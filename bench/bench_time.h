/* Timing helpers shared by the benchmarks: a monotonic clock and best-of-N folds. */
#ifndef OUTPOST_BENCH_TIME_H
#define OUTPOST_BENCH_TIME_H

/* Seconds on CLOCK_MONOTONIC. */
double bench_now_s(void);

/* Best of N: the larger of two rates, the smaller of two durations. */
double bench_max(double a, double b);
double bench_min(double a, double b);

#endif
