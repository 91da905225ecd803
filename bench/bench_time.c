#include "bench_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bench_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

bench_stat bench_stat_of(const double *samples, int n)
{
    bench_stat s = {0, 0, 0, n};
    double *sorted;

    if (n < 1)
        return s;
    sorted = malloc((size_t)n * sizeof *sorted);
    if (sorted == NULL) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    memcpy(sorted, samples, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_double);
    s.min = sorted[0];
    s.max = sorted[n - 1];
    s.median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    free(sorted);
    return s;
}

void bench_print_stat(const char *name, bench_stat s, int decimals)
{
    printf("%s=%.*f\n%s_min=%.*f\n%s_max=%.*f\n", name, decimals, s.median, name, decimals,
           s.min, name, decimals, s.max);
}

void bench_print_method(const char *prefix)
{
    printf("%s_statistic=median_of_%d_after_%d_warmup\n", prefix, BENCH_RUNS, BENCH_WARMUP);
}

void bench_print_target(const char *name, bool meets)
{
    printf("%s_meets_target=%s\n", name, meets ? "yes" : "no");
}
