/* bench_eval.c - `lolcats eval --task` speed and memory, side by side in one run:
   - 5-shot MMLU on the first 10 subjects of alpaca-llama-25m: items/s of the
     teacher and of the linearized model with prefix reuse (the few-shot header
     once per subject, the question once per item), of the naive method in
     lolcats (--naive: every continuation a full forward of its context +
     continuation) and of the PyTorch naive method (tools/eval_reference.py
     --naive; skipped visibly without python3-torch / python3-sentencepiece);
   - passkey at 4k, 16k and 32k tokens: peak memory of the linearized model
     (flat in length) and of the teacher (its KV cache grows).
   Runs build/lolcats (LOLCATS_BIN) as a child per figure, one thread each.
   Sizes from the environment: BENCH_EVAL_SUBJECTS (10), BENCH_EVAL_LIMIT
   (questions per subject with reuse, 10), BENCH_EVAL_NAIVE_LIMIT (naive, 2),
   BENCH_EVAL_LENGTHS (4096,16384,32768), BENCH_EVAL_TEACHER_MAX (teacher
   passkey lengths up to this, 16384: its prefill is quadratic),
   BENCH_EVAL_LOLCATS (checkpoint, default identity). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MODEL "../shared/models/alpaca-llama-25m"
#define DATA "../shared/data/eval"
#define OUT "build/bench_eval.json"

static const char *env(const char *k, const char *d) {
    const char *v = getenv(k);
    return v && *v ? v : d;
}

static double json_num(const char *path, const char *key) {
    static char buf[1 << 16];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    char pat[64];
    const char *p;
    if (f) fclose(f);
    buf[n] = 0;
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    p = strstr(buf, pat);
    return p ? atof(p + strlen(pat)) : -1;
}

/* items/s of one `eval --task mmlu` run (-1 on failure). */
static double mmlu_rate(const char *bin, const char *extra, const char *limit, const char *subj) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s eval --task mmlu --model %s --data-dir %s --subjects %s "
             "--limit %s %s --json %s --quiet >/dev/null", bin, MODEL, DATA, subj, limit, extra, OUT);
    if (system(cmd) != 0) { printf("  FAILED: %s\n", cmd); return -1; }
    return json_num(OUT, "items_per_s");
}

int main(void) {
    const char *bin = env("LOLCATS_BIN", "build/lolcats"), *subj = env("BENCH_EVAL_SUBJECTS", "10");
    const char *lim = env("BENCH_EVAL_LIMIT", "10"), *nlim = env("BENCH_EVAL_NAIVE_LIMIT", "2");
    const char *lens = env("BENCH_EVAL_LENGTHS", "4096,16384,32768"), *ck = env("BENCH_EVAL_LOLCATS", "identity");
    long tmax = atol(env("BENCH_EVAL_TEACHER_MAX", "16384"));
    char lolx[512], cmd[2048];
    double t, l, tn, ln, pt = -1;
    struct stat sb;
    const char *p;
    if (stat(MODEL, &sb) || stat(DATA, &sb)) {
        printf("SKIPPED: eval bench (no %s or %s)\n", MODEL, DATA);
        return 0;
    }
    snprintf(lolx, sizeof lolx, "--lolcats %s", ck);
    printf("5-shot MMLU, first %s subjects of alpaca-llama-25m (one thread; items/s)\n", subj);
    t = mmlu_rate(bin, "", lim, subj);
    l = mmlu_rate(bin, lolx, lim, subj);
    tn = mmlu_rate(bin, "--naive", nlim, subj);
    snprintf(cmd, sizeof cmd, "%s --naive", lolx);
    ln = mmlu_rate(bin, cmd, nlim, subj);
    if (system("/usr/bin/python3 -c 'import torch, sentencepiece' >/dev/null 2>&1") == 0) {
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 tools/eval_reference.py --model %s --data-dir %s --task mmlu "
                 "--subjects %s --limit %s --naive --out build/bench_eval_torch.jsonl | tail -n 1 "
                 "| sed 's/.*items_per_s //' > build/bench_eval_torch.txt", MODEL, DATA, subj, nlim);
        if (system(cmd) == 0) {
            FILE *f = fopen("build/bench_eval_torch.txt", "r");
            if (f) { if (fscanf(f, "%lf", &pt) != 1) pt = -1; fclose(f); }
        }
    } else {
        printf("  SKIPPED: PyTorch naive (no python3-torch / python3-sentencepiece)\n");
    }
    printf("  %-34s %10.3f items/s\n", "teacher, prefix reuse", t);
    printf("  %-34s %10.3f items/s\n", "linearized, state snapshots", l);
    printf("  %-34s %10.3f items/s\n", "teacher, naive (lolcats)", tn);
    printf("  %-34s %10.3f items/s\n", "linearized, naive (lolcats)", ln);
    if (pt > 0) printf("  %-34s %10.3f items/s\n", "teacher, naive (PyTorch fp32)", pt);
    if (t > 0 && tn > 0) printf("  reuse / naive in lolcats: teacher %.1fx, linearized %.1fx (target >= 5x)\n",
                                t / tn, ln > 0 ? l / ln : -1);
    if (t > 0 && pt > 0) printf("  reuse / PyTorch naive: teacher %.1fx, linearized %.1fx (target >= 10x)\n",
                                t / pt, l / pt);
    printf("passkey (depth 0.5, one trial): peak RSS and run state\n");
    printf("  %-10s %-12s %12s %14s %6s\n", "tokens", "model", "peak RSS MiB", "run MiB", "acc");
    for (p = lens; *p;) {
        long L = strtol(p, (char **)&p, 10);
        int k;
        for (k = 0; k < 2; k++) {
            if (k == 0 && L > tmax) {
                printf("  %-10ld %-12s %12s %14s %6s  (BENCH_EVAL_TEACHER_MAX=%ld)\n", L, "teacher", "skipped", "-", "-", tmax);
                continue;
            }
            snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s eval --task passkey --model %s --data-dir %s --lengths %ld "
                     "--depths 0.5 --limit 1 %s --json %s --quiet >/dev/null", bin, MODEL, DATA, L, k ? lolx : "", OUT);
            if (system(cmd) != 0) { printf("  FAILED: %s\n", cmd); continue; }
            printf("  %-10ld %-12s %12.1f %14.2f %6.2f\n", L, k ? "linearized" : "teacher",
                   json_num(OUT, "peak_rss_kb") / 1024.0, json_num(OUT, "run_bytes") / 1048576.0,
                   json_num(OUT, "acc"));
        }
        if (*p == ',') p++;
        else break;
    }
    return 0;
}
