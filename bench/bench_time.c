#include "bench_time.h"

#include <time.h>

double bench_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_max(double a, double b)
{
    return a > b ? a : b;
}

double bench_min(double a, double b)
{
    return a < b ? a : b;
}
