/* test_compute_cli.c - `--compute f32|bf16` (lc_ctx.compute, >>gemm-bf16) from
   the command line ($LOLCATS_BIN, default build/lolcats), on a tiny model
   written here (no ../shared):
   - eval of the softmax model and of the linearized model (--lolcats identity,
     --lolcats window-only): --compute f32 prints the default's NLL exactly,
     --compute bf16 moves it slightly (not equal, within 1e-2 relative) where
     this build runs the bf16 mode (lc_compute_supported; else it equals f32
     and the tool prints a note);
   - generate (greedy and sampled, both paths): --compute f32 prints the
     default's text byte for byte; --compute bf16 runs;
   - a bad value (--compute fp8) is a usage error (exit 2) naming the flag.
   The linearized path used to build its own lc_ctx and so ignored --compute. */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "tiny_files.h"

#define CD "build/tests/compute_cli"
#define TINY "--model " CD "/m.bin --tokenizer " CD "/tok.bin"
#define LOG CD "/log.txt"

static const char *bin;
static char out[8192];

/* Runs `lolcats ARGS` (stdout, and stderr unless stdout_only, into LOG, read
   into out); exit status. */
static int cli_run(const char *args, int stdout_only) {
    char cmd[1024];
    FILE *f;
    size_t n;
    int st;
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s %s >" LOG " %s", bin, args,
             stdout_only ? "2>/dev/null" : "2>&1");
    st = tiny_sh(cmd);
    f = fopen(LOG, "r");
    n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = 0;
    if (f) fclose(f);
    return st;
}

static int cli(const char *args) { return cli_run(args, 0); }

/* eval's "nll" (-1: failed) */
static double eval_nll(const char *lolcats, const char *compute) {
    char args[512];
    const char *p;
    snprintf(args, sizeof args, "eval " TINY " --data " CD "/d.txt --ctx 32 --json%s%s%s%s",
             lolcats ? " --lolcats " : "", lolcats ? lolcats : "", compute ? " --compute " : "",
             compute ? compute : "");
    if (!CHECK(cli(args) == 0, "`%s` failed: %s", args, out)) return -1;
    p = strstr(out, "\"nll\": ");
    return p ? atof(p + 7) : -1;
}

static void eval_case(const char *lolcats, int bf16_runs) {
    const char *name = lolcats ? lolcats : "softmax";
    double def = eval_nll(lolcats, NULL), f32 = eval_nll(lolcats, "f32"), bf = eval_nll(lolcats, "bf16");
    double rel = fabs(bf - f32) / fabs(f32);
    printf("  eval %-12s NLL default %.6f  f32 %.6f  bf16 %.6f  (rel %.2e)\n", name, def, f32, bf, rel);
    CHECK(def > 0 && f32 == def, "%s: --compute f32 %.6f != the default %.6f", name, f32, def);
    if (bf16_runs)
        CHECK(bf > 0 && bf != f32 && rel < 1e-2, "%s: --compute bf16 NLL %.6f vs f32 %.6f (rel %.2e): "
              "expected a small change", name, bf, f32, rel);
    else
        CHECK(bf == f32, "%s: bf16 does not run here, yet its NLL %.6f != f32 %.6f", name, bf, f32);
}

/* generate's text (stdout; the timings go to stderr) into buf */
static int gen_text(const char *lolcats, const char *compute, const char *sampling, char *buf, size_t cap) {
    char args[512];
    snprintf(args, sizeof args, "generate " TINY " -p 'the cat sat' --steps 48 %s%s%s%s%s", sampling,
             lolcats ? " --lolcats " : "", lolcats ? lolcats : "", compute ? " --compute " : "",
             compute ? compute : "");
    if (!CHECK(cli_run(args, 1) == 0, "`%s` failed: %s", args, out)) return 0;
    snprintf(buf, cap, "%s", out);
    return 1;
}

static void generate_case(const char *lolcats, const char *sampling) {
    char def[8192], f32[8192], bf[8192];
    const char *name = lolcats ? lolcats : "softmax";
    if (!gen_text(lolcats, NULL, sampling, def, sizeof def) || !gen_text(lolcats, "f32", sampling, f32, sizeof f32) ||
        !gen_text(lolcats, "bf16", sampling, bf, sizeof bf))
        return;
    CHECK(strlen(def) > 0 && !strcmp(def, f32), "generate %s %s: --compute f32 text differs from the default:\n%s\n--\n%s",
          name, sampling, f32, def);
    printf("  generate %-12s %-22s f32 == default; bf16 text %s\n", name, sampling,
           strcmp(bf, f32) ? "differs" : "equal");
}

int main(void) {
    static const char *paths[] = {NULL, "identity", "window-only"};
    char cmd[600];
    lc_ctx cx;
    int i, bf16_runs, st;
    bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    snprintf(cmd, sizeof cmd, "%s --version >/dev/null 2>&1", bin);
    if (tiny_sh(cmd) != 0) {
        printf("SKIPPED: %s does not run (make builds it)\n", bin);
        return check_done();
    }
    CHECK(tiny_sh("mkdir -p " CD) == 0, "mkdir " CD);
    CHECK(tiny_write_model(CD "/m.bin") && tiny_write_tokenizer(CD "/tok.bin") && tiny_write_text(CD "/d.txt"),
          "tiny files");
    lc_ctx_init(&cx);
    bf16_runs = lc_compute_supported(&cx, LOLCATS_COMPUTE_BF16);
    printf("bf16 mode %s here (%s)\n", bf16_runs ? "runs" : "does not run", lc_simd_name(cx.simd));
    for (i = 0; i < 3; i++) eval_case(paths[i], bf16_runs);
    if (!bf16_runs) {
        cli("eval " TINY " --data " CD "/d.txt --ctx 32 --compute bf16");
        CHECK(strstr(out, "--compute bf16") && strstr(out, "computing in f32") != NULL,
              "no note that bf16 does not run: %s", out);
    }
    for (i = 0; i < 3; i++) {
        generate_case(paths[i], "--temperature 0");
        generate_case(paths[i], "--temperature 1 -s 7");
    }
    /* a bad value: usage error naming the flag and the choices */
    st = cli("eval " TINY " --data " CD "/d.txt --compute fp8");
    CHECK(st == 2 && strstr(out, "--compute") && strstr(out, "fp8") && strstr(out, "f32|bf16"),
          "eval --compute fp8: exit %d, %s", st, out);
    st = cli("generate " TINY " --lolcats identity --compute fp8");
    CHECK(st == 2 && strstr(out, "--compute") && strstr(out, "fp8") && strstr(out, "f32|bf16"),
          "generate --compute fp8: exit %d, %s", st, out);
    return check_done();
}
