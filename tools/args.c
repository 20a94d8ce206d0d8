/* args.c - strict flag values, named errors, aliases, --threads and the
   warnings for runs that cannot learn (args.h). */
#define _POSIX_C_SOURCE 200809L
#include "args.h"
#include "tools.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

int tool_arg_is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

int tool_arg_help(const char *text, const char *more) {
    size_t n;
    printf("usage: %s", text);
    if (more) fputs(more, stdout);
    n = strlen(more ? more : text);
    if (n && (more ? more : text)[n - 1] != '\n') putchar('\n');
    return 0;
}

const char *tool_arg_alias(const char *a) {
    static const char *const map[][2] = {
        {"-m", "--model"}, {"-p", "--prompt"}, {"-n", "--n-predict"}, {"-t", "--threads"}, {"-s", "--seed"},
    };
    size_t k;
    for (k = 0; k < sizeof map / sizeof map[0]; k++)
        if (!strcmp(a, map[k][0])) return map[k][1];
    return a;
}

TOOL_NORETURN static void arg_die(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static void arg_die(const char *fmt, ...) {
    va_list ap;
    fputs("lolcats: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

void tool_arg_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fputs("lolcats: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see `lolcats %s --help`)\n", cmd);
    exit(2);
}

void tool_arg_warn(int strict, const char *fmt, ...) {
    va_list ap;
    fputs(strict ? "lolcats: error: " : "lolcats: warning: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(strict ? " (an error under --strict)\n" : "\n", stderr);
    if (strict) exit(2);
}

void tool_arg_need(const char *flag, int argc, char **argv, int i) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) arg_die("%s needs a value", flag);
    /* `--out --resume`: the next flag taken as a path (a prompt may start with --) */
    if (v[0] == '-' && v[1] == '-' && isalpha((unsigned char)v[2]) && strcmp(tool_arg_alias(flag), "--prompt"))
        arg_die("%s needs a value, got the flag %s", flag, v);
}

const char *tool_arg_value(int argc, char **argv, int *i) {
    tool_arg_need(argv[*i], argc, argv, *i);
    return argv[++*i];
}

/* a number starts with a sign or a digit or '.' (no blanks: strto* skip them) */
static int arg_starts_number(const char *s) {
    return s[0] && !isspace((unsigned char)s[0]);
}

long long tool_arg_ll(const char *flag, const char *s, long long lo, long long hi) {
    char *end;
    long long v;
    errno = 0;
    v = arg_starts_number(s) ? strtoll(s, &end, 10) : 0;
    if (!arg_starts_number(s) || *end || end == s || errno == ERANGE || v < lo || v > hi)
        arg_die("%s '%s': expected an integer in [%lld, %lld]", flag, s, lo, hi);
    return v;
}

int tool_arg_int(const char *flag, const char *s, long lo, long hi) {
    if (lo < INT_MIN) lo = INT_MIN;
    if (hi > INT_MAX) hi = INT_MAX;
    return (int)tool_arg_ll(flag, s, lo, hi);
}

uint64_t tool_arg_u64(const char *flag, const char *s) {
    char *end;
    unsigned long long v;
    errno = 0;
    /* strtoull takes "-1" as 2^64-1: a sign is refused here */
    v = isdigit((unsigned char)s[0]) ? strtoull(s, &end, 10) : 0;
    if (!isdigit((unsigned char)s[0]) || *end || errno == ERANGE || (uint64_t)v != v)
        arg_die("%s '%s': expected an unsigned integer in [0, %llu]", flag, s, (unsigned long long)UINT64_MAX);
    return (uint64_t)v;
}

/* a range bound as a reader writes it: 1048576, not 1.04858e+06 */
static const char *arg_bound(char *buf, size_t cap, double x) {
    if (x == floor(x) && fabs(x) < 1e15) snprintf(buf, cap, "%.0f", x);
    else snprintf(buf, cap, "%g", x);
    return buf;
}

double tool_arg_num(const char *flag, const char *s, double lo, double hi, int open_lo) {
    char *end, b0[32], b1[32];
    double v;
    errno = 0;
    v = arg_starts_number(s) ? strtod(s, &end) : 0;
    if (!arg_starts_number(s) || *end || end == s || errno == ERANGE || !isfinite(v) || v < lo || v > hi ||
        (open_lo && v <= lo))
        arg_die("%s '%s': expected a finite number in %c%s, %s]", flag, s, open_lo ? '(' : '[',
                arg_bound(b0, sizeof b0, lo), arg_bound(b1, sizeof b1, hi));
    return v;
}

float tool_arg_float(const char *flag, const char *s, double lo, double hi, int open_lo) {
    double v = tool_arg_num(flag, s, lo, hi, open_lo);
    float f = (float)v;
    char b0[32], b1[32];
    if (!isfinite(f) || (open_lo && (double)f <= lo))   /* beyond float: 1e-50 is 0 */
        arg_die("%s '%s': expected a finite number in %c%s, %s] (as a 32-bit float)", flag, s,
                open_lo ? '(' : '[', arg_bound(b0, sizeof b0, lo), arg_bound(b1, sizeof b1, hi));
    return f;
}

int tool_arg_choice(const char *flag, const char *s, const char *choices) {
    const char *p = choices;
    int k = 0;
    size_t n = strlen(s);
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, s, n)) return k;
        if (!bar) break;
        p = bar + 1;
        k++;
    }
    arg_die("%s '%s': expected one of %s", flag, s, choices);
    return -1;
}

void tool_arg_layers(const char *flag, const char *s, int *a, int *b) {
    const char *colon = strchr(s, ':');
    char head[32];
    size_t n = colon ? (size_t)(colon - s) : 0;
    long long x, y;
    char *e1, *e2;
    if (!colon || n == 0 || n >= sizeof head || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)colon[1]))
        arg_die("%s '%s': expected A:B, two integers with 0 <= A < B (layers A..B-1)", flag, s);
    memcpy(head, s, n);
    head[n] = 0;
    errno = 0;
    x = strtoll(head, &e1, 10);
    y = strtoll(colon + 1, &e2, 10);
    if (*e1 || *e2 || errno == ERANGE || x < 0 || y <= x || y > 1 << 16)
        arg_die("%s '%s': expected A:B, two integers with 0 <= A < B <= 65536 (layers A..B-1)", flag, s);
    *a = (int)x;
    *b = (int)y;
}

void tool_arg_layer_list(const char *flag, const char *s) {
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char block[64];
        int a, b;
        if (n == 0 || n >= sizeof block)
            arg_die("%s '%s': expected blocks A:B,C:D,... (two integers 0 <= A < B each, separated by commas)",
                    flag, s);
        memcpy(block, p, n);
        block[n] = 0;
        tool_arg_layers(flag, block, &a, &b);
        if (!comma) return;
        p = comma + 1;
    }
}

void tool_arg_threads(const char *flag, const char *s) {
    int n = tool_arg_int(flag, s, 1, 4096);
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    if (n > 1) fprintf(stderr, "lolcats: note: built without OpenMP, %s %d runs on one thread\n", flag, n);
#endif
}

/* Levenshtein distance of two short strings (longer ones: a large number) */
static int arg_distance(const char *a, const char *b) {
    int row[64], na = (int)strlen(a), nb = (int)strlen(b), i, j;
    if (na >= 63 || nb >= 63) return 1 << 20;
    for (j = 0; j <= nb; j++) row[j] = j;
    for (i = 1; i <= na; i++) {
        int diag = row[0];
        row[0] = i;
        for (j = 1; j <= nb; j++) {
            int up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[nb];
}

/* the --flag in help nearest to arg: its distance, the flag in best (cap) */
static int arg_nearest(const char *arg, const char *help, char *best, size_t cap, int dmin) {
    const char *p = help;
    while (help && (p = strstr(p, "--")) != NULL) {
        char name[64];
        size_t n = 2;
        if (p > help && (isalnum((unsigned char)p[-1]) || p[-1] == '-')) { p += 2; continue; }
        while (n < sizeof name - 1 && (isalnum((unsigned char)p[n]) || p[n] == '-')) n++;
        memcpy(name, p, n);
        name[n] = 0;
        p += n;
        if (n > 2) {
            int d = arg_distance(arg, name);
            if (d < dmin && n < cap) { dmin = d; memcpy(best, name, n + 1); }
        }
    }
    return dmin;
}

int tool_arg_known(const char *flag, const char *help) {
    char best[64];
    return flag[0] == '-' && flag[1] == '-' && arg_nearest(flag, help, best, sizeof best, 1) == 0;
}

void tool_arg_unknown(const char *cmd, const char *arg, const char *help1, const char *help2) {
    char best[64] = "", dashed[72];
    int d, n = (int)strlen(arg);
    /* "-stpes" and "stpes" are compared as "--stpes" */
    snprintf(dashed, sizeof dashed, "%s%s", arg[0] == '-' && arg[1] == '-' ? "" : arg[0] == '-' ? "-" : "--", arg);
    d = arg_nearest(dashed, help1, best, sizeof best, 1 << 20);
    d = arg_nearest(dashed, help2, best, sizeof best, d);
    if (best[0] && d <= (n >= 9 ? 3 : 2))
        arg_die("unknown flag '%s' for '%s'; did you mean %s? (see `lolcats %s --help`)", arg, cmd, best, cmd);
    if (arg[0] != '-')
        arg_die("unexpected argument '%s' for '%s' (see `lolcats %s --help`)", arg, cmd, cmd);
    arg_die("unknown flag '%s' for '%s' (see `lolcats %s --help`)", arg, cmd, cmd);
}

/* ---- runs that cannot learn ---- */

void tool_check_window(int strict, int variant, int window, int n) {
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    int j, linear = 0;
    if (n < 2) return;
    hc.variant = variant;
    hc.window = window;
    for (j = 0; j < n && !linear; j++) linear = lc_hybrid_mask(&hc, n, n - 1, j) == 2;   /* the last query sees most */
    if (!linear)
        tool_arg_warn(strict, "--window %d with --seq-len %d (%s): every key of every query is inside the softmax "
                      "window, none is left to the linear attention, so the feature maps learn nothing a longer "
                      "sequence needs; use a --window below %s%d", window, n, variant == LOLCATS_WINDOW_TK ? "tk" : "sw",
                      variant == LOLCATS_WINDOW_TK ? "about half of " : "", n);
}

void tool_check_budget(int strict, const char *flag, long long tokens, int seq_len, int grad_accum) {
    long long step = (long long)seq_len * grad_accum;
    if (tokens > 0 && tokens < step)
        tool_arg_warn(strict, "%s %lld is less than one optimizer step (--seq-len %d x --grad-accum %d = %lld "
                      "tokens): it rounds to zero steps, and the run takes one step anyway; give at least %lld",
                      flag, tokens, seq_len, grad_accum, step, step);
}

void tool_check_state(int strict, int H, int Hk, int D, int F, int window, long long ctx) {
    double state = (double)H * ((double)F * D + F) + (double)Hk * 2.0 * window * D;
    double kv = (double)Hk * 2.0 * (double)ctx * D;
    if (ctx > 0 && state >= kv)
        tool_arg_warn(strict, "the linearized decode state is not smaller than the KV cache it replaces: per layer "
                      "%d heads x (F %d x D %d + F) + %d kv heads x 2 x window %d x D = %.0f floats, against "
                      "%d kv heads x 2 x %lld positions x D = %.0f floats; lower --feature-dim or --window, or "
                      "use longer contexts", H, F, D, Hk, window, state, Hk, ctx, kv);
}

void tool_omp_passive(char **argv) {
#ifdef _OPENMP
    if (getenv("OMP_WAIT_POLICY") || getenv("LOLCATS_OMP_REEXEC")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) || setenv("LOLCATS_OMP_REEXEC", "1", 1)) return;
    execv("/proc/self/exe", argv);
    /* exec failed: run on, active waiting, as before */
    unsetenv("OMP_WAIT_POLICY");
    unsetenv("LOLCATS_OMP_REEXEC");
#else
    (void)argv;
#endif
}
