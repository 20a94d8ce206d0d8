/* args.h - the one argument layer of every `lolcats` command.

   Numbers are strict: the WHOLE string must parse, be finite and lie in the
   flag's range, else "lolcats: error: --lr 'abc': expected a finite number in
   (0, 10]" and exit 2. A flag without its value, an unknown flag (with the
   nearest known one as a suggestion, taken from the command's help text) and a
   value outside a flag's choices are named the same way. The short aliases of
   llama.cpp (-m -p -n -t -s) map to long flags; --threads sets OpenMP's thread
   count. Warnings for runs that cannot learn go to stderr, errors (exit 2)
   under --strict. Every error here exits: these are for tools/ only. */
#ifndef LOLCATS_TOOL_ARGS_H
#define LOLCATS_TOOL_ARGS_H
#include <stdint.h>

#if defined(__GNUC__)
#define TOOL_NORETURN __attribute__((noreturn))
#else
#define TOOL_NORETURN
#endif

/* "--help" or "-h" */
int tool_arg_is_help(const char *a);
/* The one help format: "usage: " + text (usage line, one-line purpose, the
   options with their defaults in parentheses) on stdout; returns 0 (the exit
   status of --help). */
int tool_arg_help(const char *text, const char *more);

/* -m -p -n -t -s -> --model --prompt --n-predict --threads --seed; any other
   string is returned as it is. */
const char *tool_arg_alias(const char *a);

/* argv[i] is a flag that takes a value: dies naming the flag when none follows. */
void tool_arg_need(const char *flag, int argc, char **argv, int i);
/* the value of flag argv[*i], advancing *i; dies when none follows */
const char *tool_arg_value(int argc, char **argv, int *i);

/* Strict numbers: the whole of s, finite, in [lo, hi] (open_lo: (lo, hi]). */
int tool_arg_int(const char *flag, const char *s, long lo, long hi);
long long tool_arg_ll(const char *flag, const char *s, long long lo, long long hi);
uint64_t tool_arg_u64(const char *flag, const char *s);
double tool_arg_num(const char *flag, const char *s, double lo, double hi, int open_lo);
float tool_arg_float(const char *flag, const char *s, double lo, double hi, int open_lo);

/* s one of the '|'-separated choices ("tk|sw"): its index; dies naming them. */
int tool_arg_choice(const char *flag, const char *s, const char *choices);

/* "A:B": exactly two integers, 0 <= A < B <= 1 << 16, nothing else. */
void tool_arg_layers(const char *flag, const char *s, int *a, int *b);
/* "A:B,C:D,...": each block as tool_arg_layers, no empty block. */
void tool_arg_layer_list(const char *flag, const char *s);

/* --threads N (1..4096): omp_set_num_threads(N) under OpenMP; without OpenMP,
   N > 1 prints a one-line notice. */
void tool_arg_threads(const char *flag, const char *s);

/* 1 when flag (a --name) is one of the --flags of help, exactly. */
int tool_arg_known(const char *flag, const char *help);

/* Dies: "unknown flag 'ARG' for 'CMD'; did you mean --X?" (X: the nearest
   --flag in the help texts help1, help2; either may be NULL). */
TOOL_NORETURN void tool_arg_unknown(const char *cmd, const char *arg, const char *help1, const char *help2);

/* Dies with "lolcats: error: <message> (see `lolcats CMD --help`)", exit 2. */
TOOL_NORETURN void tool_arg_fail(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* "lolcats: warning: <message>" on stderr; with strict, the same as an error
   ("... (--strict)") and exit 2. */
void tool_arg_warn(int strict, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Runs that cannot learn or gain, warned about (tool_arg_warn):
   - the hybrid window (variant 0 sw, 1 tk, as LOLCATS_WINDOW_*) leaves no key
     of an n-token sequence to the linear attention;
   - a budget of `tokens` (flag: where it came from) below one optimizer step;
   - a decode state per layer (H heads x (F*D + F) + Hk x 2*w*D ring floats)
     not smaller than the KV cache of ctx positions (Hk x 2*ctx*D floats). */
void tool_check_window(int strict, int variant, int window, int n);
void tool_check_budget(int strict, const char *flag, long long tokens, int seq_len, int grad_accum);
void tool_check_state(int strict, int H, int Hk, int D, int F, int window, long long ctx);

/* main(): when OMP_WAIT_POLICY is unset, sets it to passive and re-executes
   /proc/self/exe with the same argv (OpenMP reads it once, at start-up), so
   that idle threads sleep instead of spinning on a busy machine; the user's
   own OMP_WAIT_POLICY is kept. Does nothing without OpenMP or when exec fails. */
void tool_omp_passive(char **argv);
#endif
