/* bench_prefill.c - `make bench`: teacher prefill speed (issue 23 items 1, 5).

   (a) one Llama-3-8B-shaped layer (dim 4096, H 32, Hk 8, D 128, ffn 14336,
       vocabulary 256) built in memory with random BF16 and then F32 weights,
       each in float32 and with ctx.compute = LOLCATS_COMPUTE_BF16 (`--compute
       bf16`: bf16 GEMM operands, float32 sums; skipped visibly without
       AVX512_BF16), lc_model_forward of N = 1024 tokens from position 0 (the
       prefill of `generate`, the forward of `eval` without its classifier): tokens/s and
       the fraction of the measured fp32 FMA peak (bench/peak.h) of the same
       threads. FLOP count (multiply-add = 2) in prefill_flops below.
   (b) alpaca-llama-25m (../shared) teacher forward + NLL of N = 1024 tokens as
       `eval` runs it (lc_model_forward_nll), 1 thread and 2, beside the
       PyTorch forward of the same model and the same NLL (bench/peer_prefill.py,
       /usr/bin/python3 with torch, same thread count). Skipped visibly without
       ../shared or torch.
   "% peak" is wall-clock flops over the measured peak of the same threads;
   "% peak/CPU" is flops per CPU second of the process over the 1-thread peak,
   the code's efficiency on a machine shared with other work.
   Best of BENCH_PREFILL_REPS (3) after a warm-up. BENCH_PREFILL_N (1024) sets
   N of both; BENCH_THREADS (2) the threads of (a); BENCH_PREFILL_ONLY_BF16
   (set) limits (a) to the BF16 weights. */
#define _GNU_SOURCE
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "bench/peak.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define MODEL_25M "../shared/models/alpaca-llama-25m"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of the process (all threads): on a shared machine the time the
   work had the cores, so flops / CPU second / the 1-thread peak is the
   efficiency of the code whatever else runs (spin-waits count as busy). */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void set_threads(int t) {
#ifdef _OPENMP
    omp_set_num_threads(t);
#else
    (void)t;
#endif
}

/* FLOPs of a prefill of N tokens through L layers (multiply-add = 2): per token
   the projections q, k, v, o (2 dim (2 H D + 2 Hk D)), the MLP's gate, up and
   down (6 dim ffn); the causal attention QK^T and PV over N (N + 1) / 2
   (query, key) pairs per head (4 H D a pair, no window); the classifier
   (2 dim V) on `cls_rows` rows. RMSNorm, RoPE, SwiGLU, softmax: not counted. */
static double prefill_flops(const lc_model_config *c, int N, int cls_rows) {
    double dim = c->dim, H = c->n_heads, Hk = c->n_kv_heads, D = c->head_dim;
    double tok = 2.0 * dim * (2.0 * H * D + 2.0 * Hk * D) + 6.0 * dim * c->hidden_dim;
    double att = 4.0 * H * D * ((double)N * (N + 1.0) / 2.0);
    return c->n_layers * ((double)N * tok + att) + 2.0 * dim * c->vocab_size * cls_rows;
}

static void *rand_weight(lc_rng *g, lc_weight *w, lc_dtype dt, int64_t rows, int64_t cols, float s) {
    size_t n = (size_t)(rows * cols), i;
    void *p = malloc(n * (dt == LOLCATS_DTYPE_BF16 ? 2 : 4));
    if (!p) { fprintf(stderr, "bench_prefill: out of memory\n"); exit(1); }
    for (i = 0; i < n; i++) {
        float v = s * (2.0f * lc_rng_uniform(g) - 1.0f);
        if (dt == LOLCATS_DTYPE_BF16) ((uint16_t *)p)[i] = lc_f32_to_bf16(v);
        else ((float *)p)[i] = v;
    }
    w->data = p; w->dtype = dt; w->rows = rows; w->cols = cols;
    return p;
}

/* Best wall seconds (and *cpu, the least CPU seconds) of reps prefills of
   tok[0..N) from position 0 after a warm-up: lc_model_forward, or
   lc_model_forward_nll with targets tok + 1 when nll is given; -1 on failure.
   compute: lc_ctx.compute (LOLCATS_COMPUTE_F32 or _BF16). */
static double time_prefill(const lc_model *m, const int *tok, int N, double *nll, int reps,
                           int compute, double *cpu) {
    lc_run r;
    lc_error err;
    lc_ctx ctx;
    lc_status st = LOLCATS_OK;
    double best = -1;
    int rep;
    memset(&err, 0, sizeof err);
    lc_ctx_init(&ctx);
    ctx.compute = compute;
    if (lc_run_init(&r, m, N, N, &err) != LOLCATS_OK) {
        printf("    FAILED: lc_run_init: %s\n", err.msg);
        return -1;
    }
    for (rep = 0; rep <= reps && st == LOLCATS_OK; rep++) {  /* rep 0 warms up */
        double t0 = now(), c0 = cpu_now(), t;
        lc_run_reset(&r);
        st = nll ? lc_model_forward_nll(&ctx, m, &r, tok, N, tok + 1, nll, &err)
                 : lc_model_forward(&ctx, m, &r, tok, N, NULL, &err);
        t = now() - t0;
        if (rep && (best < 0 || t < best)) best = t;
        if (rep && (rep == 1 || cpu_now() - c0 < *cpu)) *cpu = cpu_now() - c0;
    }
    lc_run_free(&r);
    if (st != LOLCATS_OK) {
        printf("    FAILED: the forward: %s\n", err.msg);
        return -1;
    }
    return best;
}

/* (a) one layer of dtype dt: best seconds of a prefill of N tokens, or -1. */
static double layer_prefill(lc_dtype dt, int compute, int N, int reps, lc_model_config *cfg_out,
                            double *cpu) {
    lc_model m;
    lc_layer_weights lw;
    lc_rng g;
    void *p[12];
    int np = 0, i, *tok;
    int dim = 4096, H = 32, Hk = 8, D = 128, ffn = 14336, V = 256;
    double best = -1;
    float sd = 1.0f / 64.0f, so = 1.0f / 120.0f;
    memset(&m, 0, sizeof m); memset(&lw, 0, sizeof lw);
    lc_rng_seed(&g, 11);
    m.cfg.dim = dim; m.cfg.hidden_dim = ffn; m.cfg.n_layers = 1; m.cfg.n_heads = H;
    m.cfg.n_kv_heads = Hk; m.cfg.head_dim = D; m.cfg.vocab_size = V; m.cfg.seq_len = 8192;
    m.cfg.norm_eps = 1e-5f; m.cfg.rope_theta = 500000.0f; m.cfg.tied = 1;
    m.cfg.bos_id = m.cfg.eos_id = -1;
    strcpy(m.cfg.arch, "LlamaForCausalLM");
    m.format = LOLCATS_MODEL_HF;
    p[np++] = rand_weight(&g, &m.tok_emb, LOLCATS_DTYPE_F32, V, dim, 1.0f);
    p[np++] = rand_weight(&g, &m.rms_final, LOLCATS_DTYPE_F32, 1, dim, 0.0f);
    for (i = 0; i < dim; i++) ((float *)p[np - 1])[i] = 1.0f;
    m.wcls = m.tok_emb;
    p[np++] = rand_weight(&g, &lw.rms_att, LOLCATS_DTYPE_F32, 1, dim, 0.0f);
    for (i = 0; i < dim; i++) ((float *)p[np - 1])[i] = 1.0f;
    p[np++] = rand_weight(&g, &lw.rms_ffn, LOLCATS_DTYPE_F32, 1, dim, 0.0f);
    for (i = 0; i < dim; i++) ((float *)p[np - 1])[i] = 1.0f;
    p[np++] = rand_weight(&g, &lw.wq, dt, (int64_t)H * D, dim, sd);
    p[np++] = rand_weight(&g, &lw.wk, dt, (int64_t)Hk * D, dim, sd);
    p[np++] = rand_weight(&g, &lw.wv, dt, (int64_t)Hk * D, dim, sd);
    p[np++] = rand_weight(&g, &lw.wo, dt, dim, (int64_t)H * D, sd);
    p[np++] = rand_weight(&g, &lw.w1, dt, ffn, dim, sd);
    p[np++] = rand_weight(&g, &lw.w2, dt, dim, ffn, so);
    p[np++] = rand_weight(&g, &lw.w3, dt, ffn, dim, sd);
    m.layers = &lw;
    *cfg_out = m.cfg;
    tok = (int *)malloc(sizeof(int) * (size_t)N);
    for (i = 0; i < N; i++) tok[i] = (int)(lc_rng_u64(&g) % (uint64_t)V);
    best = time_prefill(&m, tok, N, NULL, reps, compute, cpu);
    free(tok);
    for (i = 0; i < np; i++) free(p[i]);
    return best;
}

/* (b) peer: seconds of the PyTorch forward + NLL of N tokens, threads t; -1 if it failed. */
static char g_peer_blas[256] = "";

static double peer_25m(int N, int t, int reps, char *note, size_t nn) {
    char cmd[1024], out[4096];
    FILE *f;
    size_t n;
    const char *s;
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=%d /usr/bin/python3 bench/peer_prefill.py --model %s "
             "--n %d --threads %d --reps %d 2>&1", t, MODEL_25M, N, t, reps);
    f = popen(cmd, "r");
    if (!f) { snprintf(note, nn, "popen failed"); return -1; }
    n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    if (pclose(f) != 0 || !(s = strstr(out, "\"time_s\": "))) {
        snprintf(note, nn, "%.200s", out);
        return -1;
    }
    {
        const char *b = strstr(out, "\"blas\": \""), *q;
        if (b && (q = strchr(b + 9, '"')) != NULL)
            snprintf(g_peer_blas, sizeof g_peer_blas, "%.*s", (int)(q - b - 9), b + 9);
    }
    return atof(s + 10);
}

/* (b) ours: seconds of lc_model_forward_nll of N tokens of the 25M model, threads t. */
static double ours_25m(const lc_model *m, int N, int t, int reps, double *mean_nll, double *cpu) {
    lc_rng g;
    int *tok = (int *)malloc(sizeof(int) * (size_t)(N + 1)), i;
    double *nll = (double *)malloc(sizeof(double) * (size_t)N), best = -1;
    lc_rng_seed(&g, 5);
    for (i = 0; i <= N; i++) tok[i] = 3 + (int)(lc_rng_u64(&g) % (uint64_t)(m->cfg.vocab_size - 3));
    set_threads(t);
    best = time_prefill(m, tok, N, nll, reps, LOLCATS_COMPUTE_F32, cpu);
    if (best < 0) memset(nll, 0, sizeof(double) * (size_t)N);
    *mean_nll = 0;
    for (i = 0; i < N; i++) *mean_nll += nll[i] / N;
    free(tok); free(nll);
    return best;
}

int main(void) {
    const char *e = getenv("BENCH_THREADS"), *en = getenv("BENCH_PREFILL_N"), *er = getenv("BENCH_PREFILL_REPS");
    const char *kn = "";
    int T = e && atoi(e) > 0 ? atoi(e) : 2, N = en && atoi(en) > 0 ? atoi(en) : 1024;
    int reps = er && atoi(er) > 0 ? atoi(er) : 3, d, t;
    double peak1, peakT;
    lc_model_config cfg;
    lc_ctx cx;
    struct stat sb;
#ifndef _OPENMP
    T = 1;
#endif
    peak1 = bench_peak(BENCH_PEAK_F32, 1, &kn);
    peakT = bench_peak(BENCH_PEAK_F32, T, &kn);
    set_threads(T);
    {
        lc_ctx c;
        lc_ctx_init(&c);
        printf("lolcats bench_prefill: path %s; fp32 %s peak %.1f GFLOP/s on 1 thread, %.1f on %d\n",
               lc_simd_name(c.simd), kn, peak1, peakT, T);
    }
    printf("\n(a) teacher prefill of one Llama-3-8B-shaped layer (dim 4096 H 32 Hk 8 D 128 ffn 14336), "
           "N=%d, %d threads, best of %d\n", N, T, reps);
    printf("    %-8s %-8s %10s %10s %10s %8s %10s %12s\n", "weights", "compute", "s", "tokens/s", "GFLOP/s",
           "% peak", "CPU s", "% peak/CPU");
    for (d = 0; d < (getenv("BENCH_PREFILL_ONLY_BF16") ? 2 : 4); d++) {   /* weights x compute */
        lc_dtype dt = d < 2 ? LOLCATS_DTYPE_BF16 : LOLCATS_DTYPE_F32;
        int cm = d % 2 ? LOLCATS_COMPUTE_BF16 : LOLCATS_COMPUTE_F32;
        double c = 0, s, fl;
        lc_ctx_init(&cx);
        if (!lc_compute_supported(&cx, cm)) {
            printf("    %-8s %-8s SKIPPED: this CPU has no AVX512_BF16\n", d < 2 ? "BF16" : "F32", "bf16");
            continue;
        }
        s = layer_prefill(dt, cm, N, reps, &cfg, &c);
        fl = prefill_flops(&cfg, N, 1);
        if (s <= 0) continue;
        printf("    %-8s %-8s %10.3f %10.1f %10.1f %7.0f%% %10.3f %11.0f%%\n", d < 2 ? "BF16" : "F32",
               cm == LOLCATS_COMPUTE_BF16 ? "bf16" : "f32", s, N / s, fl / s * 1e-9,
               100.0 * fl / s * 1e-9 / peakT, c, 100.0 * fl / c * 1e-9 / peak1);
        if (d == 0) printf("    (%.1f GFLOP a prefill: projections + attention + MLP, see prefill_flops)\n",
                           fl * 1e-9);
    }
    printf("\n(b) alpaca-llama-25m teacher forward + NLL of N=%d tokens (`eval`'s forward) beside PyTorch\n", N);
    if (stat(MODEL_25M "/config.json", &sb) != 0) {
        printf("    SKIPPED: %s not found (../shared absent)\n", MODEL_25M);
        return 0;
    }
    {
        lc_model m;
        lc_error err;
        int have_torch = system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
        memset(&err, 0, sizeof err);
        if (lc_model_load_hf(&m, MODEL_25M, &err) != LOLCATS_OK) {
            printf("    FAILED: %s\n", err.msg);
            return 1;
        }
        if (!have_torch) printf("    SKIPPED peer: /usr/bin/python3 with torch not found\n");
        printf("    %-8s %10s %10s %10s %8s %11s %12s %10s %8s\n", "threads", "ours s", "tokens/s", "GFLOP/s",
               "% peak", "% peak/CPU", "PyTorch s", "tokens/s", "ratio");
        for (t = 1; t <= 2; t++) {
            double nl, c = 0, s = ours_25m(&m, N, t, reps, &nl, &c), fl = prefill_flops(&m.cfg, N, N);
            double pk = t == 1 ? peak1 : bench_peak(BENCH_PEAK_F32, 2, &kn), ps = -1;
            char note[256] = "";
            if (s <= 0) continue;
            if (have_torch) ps = peer_25m(N, t, reps, note, sizeof note);
            printf("    %-8d %10.3f %10.1f %10.1f %7.0f%% %10.0f%%", t, s, N / s, fl / s * 1e-9,
                   100.0 * fl / s * 1e-9 / pk, 100.0 * fl / c * 1e-9 / peak1);
            if (ps > 0) printf(" %12.3f %10.1f %7.1fx\n", ps, N / ps, ps / s);
            else printf("%s%s\n", have_torch ? "   peer failed: " : "", note);
            if (t == 1) printf("    (mean NLL of the random tokens %.4f; %.2f GFLOP a forward incl. the "
                               "classifier on every row)\n", nl, fl * 1e-9);
        }
        if (g_peer_blas[0]) printf("    (the peer's BLAS: %s)\n", g_peer_blas);
        lc_model_free(&m);
    }
    return 0;
}
