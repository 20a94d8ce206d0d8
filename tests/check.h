/* check.h - the tiny test harness: CHECK(cond, fmt, ...) counts passes and
   failures, check_close() compares arrays and prints a tolerance table row,
   check_done() prints "N passed, M failed" and returns the exit code. */
#ifndef CHECK_H
#define CHECK_H
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__GNUC__) || defined(__clang__)
#define CHECK_FN static __attribute__((unused))
#else
#define CHECK_FN static
#endif

static int check_pass_, check_fail_;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
CHECK_FN int check_(int ok, const char *fmt, ...) {
    va_list ap;
    if (ok) { check_pass_++; return 1; }
    check_fail_++;
    printf("FAIL: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    return 0;
}
#define CHECK(cond, ...) check_((cond) ? 1 : 0, __VA_ARGS__)

/* |a - r| <= atol + rtol * |r| elementwise (an infinity equals only the same
   infinity, a NaN fails); one table row per call. */
CHECK_FN int check_close(const char *what, const float *a, const float *r, size_t n,
                       double atol, double rtol) {
    double max_abs = 0, max_rel = 0;
    size_t worst = 0, bad = 0, i;
    for (i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)r[i]);
        double rel = d / (fabs((double)r[i]) + 1e-30);
        /* as numpy.isclose: an infinity matches only the same infinity, NaN nothing */
        int ok = isinf(a[i]) || isinf(r[i]) ? a[i] == r[i] : d <= atol + rtol * fabs((double)r[i]);
        if (isinf(a[i]) && a[i] == r[i]) d = rel = 0;
        if (!ok) {
            if (!bad) worst = i;
            bad++;
        }
        if (d > max_abs || d != d) { max_abs = d; if (!bad) worst = i; }
        if (rel > max_rel && fabs((double)r[i]) > atol) max_rel = rel;
    }
    printf("  %-44s n=%-8zu abs %.3e rel %.3e worst %-7zu %s\n", what, n, max_abs,
           max_rel, worst, bad ? "FAIL" : "PASS");
    return check_(bad == 0, "%s: %zu of %zu elements outside atol %.1e rtol %.1e",
                  what, bad, n, atol, rtol);
}

CHECK_FN int check_done(void) {
    printf("%d passed, %d failed\n", check_pass_, check_fail_);
    return check_fail_ ? 1 : 0;
}
#endif
