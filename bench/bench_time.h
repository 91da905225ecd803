/* Timing and the one statistic every benchmark reports: BENCH_WARMUP runs thrown away, then
 * the median of BENCH_RUNS runs, printed with their min and max (name=median, name_min=,
 * name_max=), and whether a figure meets its target as name_meets_target=yes|no. */
#ifndef OUTPOST_BENCH_TIME_H
#define OUTPOST_BENCH_TIME_H

#include <stdbool.h>

#define BENCH_WARMUP 1
#define BENCH_RUNS 5

/* Seconds on CLOCK_MONOTONIC. */
double bench_now_s(void);

typedef struct bench_stat {
    double median, min, max;
    int runs;
} bench_stat;

/* Median, min and max of n samples (n >= 1; samples is left as it was). */
bench_stat bench_stat_of(const double *samples, int n);

/* Prints name=median, name_min=min and name_max=max, with decimals digits after the point. */
void bench_print_stat(const char *name, bench_stat s, int decimals);

/* Prints the statistic's definition once per program: name_statistic=median_of_N_after_W. */
void bench_print_method(const char *prefix);

/* Prints name_meets_target=yes or no. */
void bench_print_target(const char *name, bool meets);

#endif
