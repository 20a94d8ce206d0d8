/* walltime.c - see walltime.h. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>
#include "walltime.h"

double tool_wall_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void tool_report_rate(const char *what, long long tokens, double secs) {
    if (secs > 0)
        fprintf(stderr, "lolcats: %s: %lld tokens in %.3f s, %.1f tokens/s\n", what, tokens, secs,
                (double)tokens / secs);
    else
        fprintf(stderr, "lolcats: %s: %lld tokens in %.3f s, - tokens/s\n", what, tokens, secs);
}
