/* bench.c - `make bench`: our time and peak memory beside a peer's, same work,
   same run, same thread count (2 unless BENCH_THREADS says otherwise).

   (a) hybrid tk attention forward+backward (B=1, H=8, D=64, f=64, F=128,
       w=64): feature maps + lc_attn_hybrid_fwd/bwd (prefix-state form) vs the
       original's quadratic formulation in PyTorch autograd and PyTorch's
       softmax attention (bench/peer_torch.py, Debian's /usr/bin/python3).
   (b) GEMM at training shapes and GEMV vs OpenBLAS (dlopen'ed at run time).
   (c) decode: time per token of linearized (hybrid) vs softmax KV-cache
       attention against context length, and a synthetic BF16 model larger
       than the caches against the memory-bandwidth bound.

   (d) one attention-transfer step of a Llama-3-8B-sized layer vs the
       original's step in PyTorch (peer_torch.py --kind step).
   (f) training stages end to end: stage 1 and stage 2 tokens/s on
       alpaca-llama-25m and on a 2-layer Llama-3-8B-shaped BF16 model made in
       memory (1 thread and BENCH_THREADS), % of the fp32 peak by the FLOP count
       in stage_flops, peak memory, where stage 2 spends its time (25M), and the
       original recipe in PyTorch (tools/orig_recipe.py --bench-stage) beside
       each row with the same threads.
   (g) stage 1 in float32 and with --compute bf16 (AVX512_BF16), 1 thread,
       alpaca-llama-25m and a 1-layer 8B-shaped model: CPU seconds and the
       ratio, side by side in one run.

   Usage: bench [--full] [--only attn|gemm|gemv|step|decode|options|stages|bf16]
     --full   also run the PyTorch original at N=8192 (~34 s, ~16 GB).
   Peak memory: ours is VmHWM of this process after resetting it through
   /proc/self/clear_refs, minus VmRSS once the inputs exist; the peer's is
   ru_maxrss of a fresh python process minus its RSS once its inputs exist
   (both: outputs, gradients and temporaries). When the
   reset is not available the figure is marked '?'. RSS counts touched pages
   only, at page granularity. */
#define _GNU_SOURCE
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "bench/peak.h"
#include <dlfcn.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int g_threads = 2, g_full = 0;
static int g_sinks = 0;     /* attention sinks of (a)'s hybrid (its sinks row) */
static int g_gate = 0;      /* (a)'s gated row: log g in [-0.5, -0.01] (lc_hybrid_args.log_g) */
static double g_peak_f32;   /* measured fp32 FMA peak of g_threads threads, GFLOP/s (0) */
static double g_peak_f32_1; /* the same on 1 thread */
static double g_peak_bf16;  /* bf16 dot-product peak of g_threads threads (0: none) */
static lc_ctx g_ctx;
static int g_compute = LOLCATS_COMPUTE_F32;  /* ctx.compute of stage_run (bench_bf16_stages) */
static lc_rng g_rng;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the calling thread: on a shared machine, the time a one-thread
   run actually computed (the stages rows give it beside the wall time; with
   one OpenMP thread every region runs on this thread, and idle pool threads
   spinning elsewhere are not counted). */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, n)) { v = atol(line + n); break; }
    fclose(f);
    return v;
}

/* Peak-memory probe: mem_begin() resets the high-water mark and remembers the
   RSS; mem_end() returns MB above it, or -1 if the reset failed. */
static long g_mem_base;
static int g_mem_ok;
static void mem_begin(void) {
    FILE *f;
#ifdef __GLIBC__
    malloc_trim(0);  /* hand freed heap back first, so that reuse does not hide new pages */
#endif
    f = fopen("/proc/self/clear_refs", "w");
    g_mem_ok = f && fputs("5", f) >= 0;
    if (f) g_mem_ok = (fclose(f) == 0) && g_mem_ok;
    g_mem_base = status_kb("VmRSS:");
    if (status_kb("VmHWM:") > g_mem_base + 1024) g_mem_ok = 0;
}
static double mem_end(void) {
    if (!g_mem_ok) return -1;
    return (double)(status_kb("VmHWM:") - g_mem_base) / 1024.0;
}

static float *randn(size_t n, float scale) {
    float *p = (float *)malloc(sizeof(float) * (n ? n : 1));
    size_t i;
    for (i = 0; i < n; i++) p[i] = lc_rng_normal(&g_rng) * scale;
    return p;
}

static float *zeros(size_t n) { return (float *)calloc(n ? n : 1, sizeof(float)); }

/* (d)'s buffers as the trainer's activations are: advised for transparent
   huge pages before the first write (lc_advise_hugepages). */
static float *zeros_hp(size_t n) {
    float *p = (float *)malloc(sizeof(float) * (n ? n : 1));
    if (p) {
        lc_advise_hugepages(p, sizeof(float) * n);
        memset(p, 0, sizeof(float) * (n ? n : 1));
    }
    return p;
}
static float *randn_hp(size_t n, float scale) {
    float *p = zeros_hp(n);
    size_t i;
    for (i = 0; p && i < n; i++) p[i] = lc_rng_normal(&g_rng) * scale;
    return p;
}

static void fmt_mb(char *buf, double mb) {
    if (mb < 0) snprintf(buf, 32, "?");
    else snprintf(buf, 32, "%.1f", mb);
}

/* ------------------------------------------------------------------ (a) */

/* Forward+backward of the feature maps and the hybrid layer, best of reps after
   a warm-up; *mb is the peak memory the computation allocates beyond its inputs
   (q, k, v, dy, the feature-map weights and window factors): outputs, gradients,
   feature buffers and scratch. Heads are independent, so they go through the
   kernels G at a time (G = threads, each kernel parallelises over heads): the
   feature buffers and their gradients hold G heads, not all H. */
static double attn_ours(int N, int H, int D, int f, int reps, double *mb) {
    lc_fmap_cfg fm = lc_fmap_cfg_default();
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    int F = lc_fmap_out_dim(&fm, f), G = g_threads < H ? g_threads : H, r, h0;
    hc.sinks = g_sinks;
    size_t nq = (size_t)H * N * D, ng = (size_t)G * N * F, nw = (size_t)H * D * f;
    float *q, *k, *v, *wq, *wk, *wf, *dy, *phiq, *phik, *y, *m, *den, *work;
    float *dq, *dk, *dv, *dphiq, *dphik, *dwq, *dwk, *dwf, *lg = NULL, *dlg = NULL;
    double best = 1e30;
    while (H % G) G--;
    if (g_gate) {
        size_t i;
        lg = zeros_hp((size_t)H * N);
        dlg = zeros_hp((size_t)G * N);
        for (i = 0; lg && i < (size_t)H * N; i++) lg[i] = -0.01f - 0.49f * lc_rng_uniform(&g_rng);
    }
    lc_rng_seed(&g_rng, 1);
    q = randn_hp(nq, 1); k = randn_hp(nq, 1); v = randn_hp(nq, 1); dy = randn_hp(nq, 1);
    wq = randn_hp(nw, 0.1f); wk = randn_hp(nw, 0.1f); wf = randn_hp((size_t)H, 1);
    mem_begin();
    phiq = zeros_hp(ng); phik = zeros_hp(ng); y = zeros_hp(nq);
    m = zeros_hp((size_t)G * N); den = zeros_hp((size_t)G * N);
    work = zeros_hp(lc_attn_hybrid_work_floats(1, G, D, F));
    dq = zeros_hp(nq); dk = zeros_hp(nq); dv = zeros_hp(nq); dphiq = zeros_hp(ng); dphik = zeros_hp(ng);
    dwq = zeros_hp(nw); dwk = zeros_hp(nw); dwf = zeros_hp((size_t)H);
    for (r = 0; r <= reps; r++) {  /* r == 0 warms up (first touch of every page) */
        double t0 = now(), t;
        memset(dq, 0, sizeof(float) * nq); memset(dk, 0, sizeof(float) * nq);
        memset(dv, 0, sizeof(float) * nq);
        for (h0 = 0; h0 < H; h0 += G) {
            size_t o = (size_t)h0 * N * D, ow = (size_t)h0 * D * f;
            lc_fmap_fwd(&g_ctx, phiq, q + o, wq + ow, NULL, 1, G, G, N, D, f, &fm);
            lc_fmap_fwd(&g_ctx, phik, k + o, wk + ow, NULL, 1, G, G, N, D, f, &fm);
            if (lg) {  /* the gated row: the same through the args struct */
                lc_hybrid_args x = lc_hybrid_args_default();
                x.B = 1; x.H = G; x.Hk = G; x.N = N; x.D = D; x.F = F; x.cfg = &hc;
                x.q = q + o; x.k = k + o; x.v = v + o; x.phiq = phiq; x.phik = phik; x.wf = wf + h0;
                x.log_g = lg + (size_t)h0 * N; x.y = y + o; x.m = m; x.den = den; x.work = work;
                lc_attn_hybrid_fwd_args(&g_ctx, &x);
                x.dy = dy + o; x.dq = dq + o; x.dk = dk + o; x.dv = dv + o; x.dphiq = dphiq;
                x.dphik = dphik; x.dwf = dwf + h0; x.dlog_g = dlg;
                lc_attn_hybrid_bwd_args(&g_ctx, &x);
            } else {
                lc_attn_hybrid_fwd(&g_ctx, y + o, NULL, m, den, work, q + o, k + o, v + o, phiq,
                                   phik, wf + h0, NULL, NULL, 1, G, G, N, D, F, &hc);
                lc_attn_hybrid_bwd(&g_ctx, dq + o, dk + o, dv + o, dphiq, dphik, dwf + h0, NULL,
                                   NULL, work, dy + o, NULL, y + o, m, den, q + o, k + o, v + o,
                                   phiq, phik, wf + h0, NULL, NULL, 1, G, G, N, D, F, &hc);
            }
            lc_fmap_bwd(&g_ctx, dq + o, dwq + ow, NULL, dphiq, q + o, wq + ow, NULL, 1, G, G, N, D,
                        f, &fm);
            lc_fmap_bwd(&g_ctx, dk + o, dwk + ow, NULL, dphik, k + o, wk + ow, NULL, 1, G, G, N, D,
                        f, &fm);
        }
        t = now() - t0;
        if (r && t < best) best = t;
    }
    *mb = mem_end();
    free(q); free(k); free(v); free(dy); free(wq); free(wk); free(wf); free(phiq); free(phik);
    free(y); free(m); free(den); free(work); free(dq); free(dk); free(dv); free(dphiq);
    free(dphik); free(dwq); free(dwk); free(dwf); free(lg); free(dlg);
    return best;
}

/* Runs a peer command that prints one JSON line with time_s, peak_mb and note;
   fills seconds and MB, returns 0 on success (else note holds its output). */
static char g_peer_out[1024];   /* the last peer_cmd's output */
static int peer_cmd(const char *cmd, double *sec, double *mb, char *note, size_t note_len) {
    char *out = g_peer_out;
    FILE *p;
    size_t got;
    p = popen(cmd, "r");
    if (!p) return -1;
    got = fread(out, 1, sizeof g_peer_out - 1, p);
    out[got] = 0;
    pclose(p);
    {
        char *s = strstr(out, "\"time_s\":"), *r = strstr(out, "\"peak_mb\":"), *n = strstr(out, "\"note\": \"");
        if (!s || !r) {
            snprintf(note, note_len, "%.200s", out);
            return -1;
        }
        *sec = atof(s + 9);
        *mb = atof(r + 10);
        note[0] = 0;
        if (n) {
            char *e = strchr(n + 9, '"');
            size_t len = e ? (size_t)(e - (n + 9)) : 0;
            if (len >= note_len) len = note_len - 1;
            memcpy(note, n + 9, len);
            note[len] = 0;
        }
    }
    return 0;
}

/* Runs bench/peer_torch.py for one size. */
static int peer_torch(const char *kind, int N, int reps, double *sec, double *mb, char *note,
                      size_t note_len) {
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 bench/peer_torch.py --kind %s --N %d --threads %d --reps %d 2>&1",
             kind, N, g_threads, reps);
    return peer_cmd(cmd, sec, mb, note, note_len);
}

static int have_torch(void) {
    return access("/usr/bin/python3", X_OK) == 0 &&
           system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

static void bench_attn(void) {
    static const int Ns[4] = {1024, 2048, 4096, 8192};
    int H = 8, D = 64, f = 64, w = 64, i, torch_ok = have_torch();
    char note[256] = "";
    printf("\n(a) hybrid tk attention forward+backward incl. feature maps, B=1 H=%d D=%d f=%d "
           "F=%d w=%d, %d threads\n", H, D, f, 2 * f, w, g_threads);
    if (!torch_ok) printf("    SKIPPED peers: /usr/bin/python3 with torch not found\n");
    printf("    %-6s %10s %9s | %12s %9s %8s %8s | %12s %9s %8s\n", "N", "ours ms", "ours MB",
           "orig ms", "orig MB", "speedup", "mem %", "softmax ms", "MB", "speedup");
    for (i = 0; i < 4; i++) {
        int N = Ns[i];
        double best, mb = 0, ts = 0, tm = 0, ss = 0, sm = 0;
        int ok_o = -1, ok_s = -1;
        char a[32], b[32], c[32], d[32], e[32];
        best = attn_ours(N, H, D, f, N <= 2048 ? 5 : 3, &mb);
        if (torch_ok) {
            if (N <= 4096 || g_full)
                ok_o = peer_torch("hybrid", N, N <= 1024 ? 3 : 1, &ts, &tm, note, sizeof note);
            ok_s = peer_torch("softmax", N, N <= 2048 ? 3 : 1, &ss, &sm, note, sizeof note);
        }
        fmt_mb(a, mb);
        if (ok_o == 0) {
            fmt_mb(b, tm);
            snprintf(c, sizeof c, "%.1fx", ts / best);
            if (mb >= 0) snprintf(d, sizeof d, "%.2f%%", 100.0 * mb / tm); else snprintf(d, sizeof d, "?");
        } else {
            snprintf(b, sizeof b, "-"); snprintf(c, sizeof c, "-"); snprintf(d, sizeof d, "-");
        }
        if (ok_s == 0) snprintf(e, sizeof e, "%.2fx", ss / best); else snprintf(e, sizeof e, "-");
        printf("    %-6d %10.1f %9s | %12s %9s %8s %8s | %12s %9s %8s\n", N, 1e3 * best, a,
               ok_o == 0 ? (snprintf(note + 200, 32, "%.1f", 1e3 * ts), note + 200) : "skipped",
               b, c, d, ok_s == 0 ? (snprintf(note + 232, 24, "%.1f", 1e3 * ss), note + 232) : "skipped",
               ok_s == 0 ? (fmt_mb(e + 16, sm), e + 16) : "-", e);
        fflush(stdout);
    }
    {  /* the same with attention sinks (--sinks 4), beside S = 0 */
        double mb = 0, t0 = attn_ours(1024, H, D, f, 5, &mb), t4;
        g_sinks = 4;
        t4 = attn_ours(1024, H, D, f, 5, &mb);
        g_sinks = 0;
        printf("    %-6d %10.1f  with 4 attention sinks (S = 0: %.1f ms)\n", 1024, 1e3 * t4, 1e3 * t0);
        g_gate = 1;
        t4 = attn_ours(1024, H, D, f, 5, &mb);
        g_gate = 0;
        printf("    %-6d %10.1f  with the gated linear state (--gate; ungated: %.1f ms)\n", 1024, 1e3 * t4,
               1e3 * t0);
    }
    if (torch_ok) {
        char tmp[256];
        double x, y;
        if (peer_torch("softmax", 64, 1, &x, &y, tmp, sizeof tmp) == 0 && tmp[0])
            printf("    softmax peer: %s\n", tmp);
    }
    if (!g_full) printf("    (PyTorch original at N=8192 skipped; run with --full to include it)\n");
}

/* ------------------------------------------------------------------ (d) */

/* One attention-transfer step of a Llama-3-8B-sized layer, as stage 1 trains
   it: the teacher's causal softmax output, the student hybrid (feature maps of
   q and k, tk window) on the same q, k, v, MSE x 1000, backward to the feature
   maps and window factors (q, k, v are the frozen teacher's: no gradient to
   them), AdamW; through lc_attn_transfer_mse, as lc_train_distill_block
   calls it. Best of reps after a warm-up; *mb as in (a). */
static double step_ours(int N, int H, int Hk, int D, int f, int reps, double *mb) {
    lc_fmap_cfg fm = lc_fmap_cfg_default();
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    lc_adamw_cfg opt = lc_adamw_cfg_default();
    int F = lc_fmap_out_dim(&fm, f), r;
    size_t nq = (size_t)H * N * D, nk = (size_t)Hk * N * D, nf = (size_t)H * N * F;
    size_t nw = (size_t)H * D * f;
    hc.sinks = g_sinks;
    float *q, *k, *v, *wq, *wk, *wf, *yt, *work, *phiq, *phik;
    float *dphiq, *dphik, *dwq, *dwk, *dwf, *mq, *vq, *mk, *vk, *mf, *vf;
    double best = 1e30;
    lc_rng_seed(&g_rng, 2);
    q = randn_hp(nq, 1); k = randn_hp(nk, 1); v = randn_hp(nk, 1);
    wq = randn_hp(nw, 0.1f); wk = randn_hp(nw, 0.1f); wf = randn_hp((size_t)H, 1);
    mem_begin();
    yt = zeros_hp(nq); work = zeros_hp(lc_attn_transfer_work_floats(1, H, N, D, F));
    phiq = zeros_hp(nf); phik = zeros_hp(nf); dphiq = zeros_hp(nf); dphik = zeros_hp(nf);
    dwq = zeros_hp(nw); dwk = zeros_hp(nw); dwf = zeros_hp((size_t)H);
    mq = zeros_hp(nw); vq = zeros_hp(nw); mk = zeros_hp(nw); vk = zeros_hp(nw);
    mf = zeros_hp((size_t)H); vf = zeros_hp((size_t)H);
    for (r = 0; r <= reps; r++) {  /* r == 0 warms up */
        double t0 = now(), t;
        lc_fmap_fwd(&g_ctx, phiq, q, wq, NULL, 1, H, H, N, D, f, &fm);
        lc_fmap_fwd(&g_ctx, phik, k, wk, NULL, 1, H, Hk, N, D, f, &fm);
        memset(dwf, 0, sizeof(float) * (size_t)H);
        lc_attn_transfer_mse(&g_ctx, yt, NULL, NULL, NULL, NULL, dphiq, dphik, dwf, work, q, k, v,
                             phiq, phik, wf, 1, H, Hk, N, D, F, 1000.0f, &hc);
        memset(dwq, 0, sizeof(float) * nw); memset(dwk, 0, sizeof(float) * nw);
        lc_fmap_bwd_phi(&g_ctx, NULL, dwq, NULL, dphiq, phiq, q, wq, NULL, 1, H, H, N, D, f, &fm);
        lc_fmap_bwd_phi(&g_ctx, NULL, dwk, NULL, dphik, phik, k, wk, NULL, 1, H, Hk, N, D, f, &fm);
        lc_adamw_step(wq, dwq, mq, vq, nw, &opt, r + 1);
        lc_adamw_step(wk, dwk, mk, vk, nw, &opt, r + 1);
        lc_adamw_step(wf, dwf, mf, vf, (size_t)H, &opt, r + 1);
        t = now() - t0;
        if (r && t < best) best = t;
    }
    *mb = mem_end();
    free(q); free(k); free(v); free(wq); free(wk); free(wf); free(yt); free(work);
    free(phiq); free(phik); free(dphiq); free(dphik); free(dwq); free(dwk); free(dwf);
    free(mq); free(vq); free(mk); free(vk); free(mf); free(vf);
    return best;
}

/* The arithmetic a transfer step needs (multiply-add = 2 flops), whatever the
   form computes it with: the teacher's causal QK^T and PV (2 H D N(N+1));
   the feature maps q W and k W forward and their weights' gradient
   (4 x 2 H N D f); the student's window part, tk with window w: for each
   (query, window key) pair, E v forward and dy . v backward (4 D; the scores
   and exponentials are the teacher's); its linear part, F = 2f features:
   phi(q) S and the state update forward (4 F D per token), dphi(q), dS and
   dphi(k) backward (6 F D). Softmaxes, exponentials, AdamW: not counted. */
static double step_flops(int N, int H, int D, int f, int w) {
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    double pairs = 0, F = 2.0 * f;
    int i, j;
    hc.window = w;
    for (i = 0; i < N; i++)
        for (j = 0; j <= i; j++) pairs += (lc_hybrid_mask(&hc, N, i, j) & 1) != 0;
    return 2.0 * H * D * N * (N + 1.0) + 8.0 * H * N * D * f + 4.0 * H * D * pairs +
           10.0 * H * N * F * D;
}

static void bench_step(void) {
    int N = 1024, H = 32, Hk = 8, D = 128, f = 64;
    double t, mb, ts = 0, tm = 0;
    char note[256] = "", a[32], b[32];
    printf("\n(d) one attention-transfer step of a Llama-3-8B-sized layer (H=%d Hk=%d D=%d f=%d "
           "N=%d): teacher + student forward, backward, AdamW, %d threads\n", H, Hk, D, f, N,
           g_threads);
    t = step_ours(N, H, Hk, D, f, 5, &mb);
    fmt_mb(a, mb);
    printf("    %-12s %10s %9s\n", "", "ms", "MB");
    printf("    %-12s %10.1f %9s   %.1f GFLOP/s, %.0f%% of the fp32 peak (%.2f GFLOP a step)\n",
           "ours", 1e3 * t, a, step_flops(N, H, D, f, 64) / t * 1e-9,
           100.0 * step_flops(N, H, D, f, 64) / t * 1e-9 / g_peak_f32,
           step_flops(N, H, D, f, 64) * 1e-9);
    if (!have_torch()) {
        printf("    SKIPPED peer: /usr/bin/python3 with torch not found\n");
        return;
    }
    if (peer_torch("step", N, 3, &ts, &tm, note, sizeof note) != 0) {
        printf("    peer failed: %s\n", note);
        return;
    }
    fmt_mb(b, tm);
    printf("    %-12s %10.1f %9s\n", "PyTorch orig", 1e3 * ts, b);
    printf("    ours is %.1fx faster (%.3f of its time)\n", ts / t, t / ts);
}

/* ------------------------------------------------------------------ (b) */

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *,
                         int, float, float *, int);
typedef void (*sgemv_fn)(int, int, int, int, float, const float *, int, const float *, int,
                         float, float *, int);
typedef void (*setthr_fn)(int);
enum { CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112 };

static void *g_blas;
static sgemm_fn g_sgemm;
static sgemv_fn g_sgemv;

static int load_openblas(void) {
    setthr_fn st;
    g_blas = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!g_blas) return -1;
    g_sgemm = (sgemm_fn)(uintptr_t)dlsym(g_blas, "cblas_sgemm");
    g_sgemv = (sgemv_fn)(uintptr_t)dlsym(g_blas, "cblas_sgemv");
    st = (setthr_fn)(uintptr_t)dlsym(g_blas, "openblas_set_num_threads");
    if (!g_sgemm || !g_sgemv) return -1;
    if (st) st(g_threads);
    return 0;
}

/* rest: let spinning worker threads (ours or OpenBLAS's) go to sleep */
static void rest(void) { usleep(300000); }

static double measure_bandwidth(void);

/* Streaming read of n bytes at buf (sums of 16-byte vectors of uint64, 4 chains per thread's
   part, so that the loads, not the adds, are the limit), best of 6, GB/s: the bound for a GEMV
   whose weights have the same footprint (same cache regime). Every other pass prefetches
   2 KiB ahead as lc_gemv does (>>gemv-rows): the bound is the faster of a plain and a
   prefetched read, never one that the kernel beats by its prefetch alone. */
typedef uint64_t bw_vec __attribute__((vector_size(16), aligned(8)));
static double read_bw(const void *buf, size_t bytes) {
    const uint64_t *q = (const uint64_t *)buf;
    size_t n = bytes / 8 / 1024 * 1024;   /* 64 parts of a multiple of 16 uint64 */
    double best = 0;
    uint64_t sink = 0;
    int r;
    for (r = 0; r < 6; r++) {
        double t = now();
        long blk;
        uint64_t tot = 0;
#ifdef _OPENMP
#pragma omp parallel for reduction(+ : tot) schedule(static)
#endif
        for (blk = 0; blk < 64; blk++) {
            const uint64_t *p = q + (size_t)blk * (n / 64);
            bw_vec s0 = {0, 0}, s1 = s0, s2 = s0, s3 = s0;
            size_t j, m = n / 64;
            for (j = 0; j < m; j += 8) {
                if ((r & 1) && j + 256 < m) __builtin_prefetch(p + j + 256);
                s0 += *(const bw_vec *)(const void *)(p + j);
                s1 += *(const bw_vec *)(const void *)(p + j + 2);
                s2 += *(const bw_vec *)(const void *)(p + j + 4);
                s3 += *(const bw_vec *)(const void *)(p + j + 6);
            }
            s0 ^= s1 ^ s2 ^ s3;
            tot += s0[0] ^ s0[1];
        }
        t = now() - t;
        sink += tot;
        if ((double)(n * 8) / t * 1e-9 > best) best = (double)(n * 8) / t * 1e-9;
    }
    if (sink == 42) printf(" ");
    return best;
}

/* GEMV y = W x, W (O,I) row-major: decode's shapes (4096 square, the 11008 FFN
   both ways, an LM head of 32000 x 512). Memory-bound: the figures are bytes
   of W read per second; F32 against OpenBLAS sgemv, BF16 weights against the
   machine's measured streaming-read bandwidth at the same thread count, and
   the 1 -> g_threads scaling of ours. */
static double time_gemv(const void *W, lc_dtype dt, const float *x, float *y, int O, int I) {
    double t, best = 1e30;
    int r;
    for (r = 0; r < 12; r++) {
        t = now();
        lc_gemv(&g_ctx, y, W, dt, x, O, I, (size_t)I);
        t = now() - t;
        if (r && t < best) best = t;
    }
    return best;
}

/* Evicts the caches: a read of 256 MB (more than any L3 here) of other data. */
static volatile float g_flush_sink;
static void flush_caches(void) {
    static float *buf;
    size_t n = (size_t)64 << 20, i;
    float s = 0;
    if (!buf) {
        buf = (float *)malloc(sizeof(float) * n);
        if (!buf) return;
        for (i = 0; i < n; i++) buf[i] = 1.0f;
    }
    for (i = 0; i < n; i += 16) s += buf[i];
    g_flush_sink = s;
}

/* ours (F32 W) and OpenBLAS sgemv alternating call by call, best of 11 each
   after one untimed pair: both see the same cache and clock state (timed one
   after the other, whichever ran second found more of W in L3). cold: the
   caches are evicted before every call, so W comes from DRAM, as a decode
   step reads each layer's weights once per token. */
static void time_gemv_pair(const float *W, const float *x, float *y, int O, int I, int cold,
                           double *ours, double *blas) {
    double t;
    int r;
    *ours = *blas = 1e30;
    for (r = 0; r < 12; r++) {
        if (cold) flush_caches();
        t = now();
        lc_gemv(&g_ctx, y, W, LOLCATS_DTYPE_F32, x, O, I, (size_t)I);
        t = now() - t;
        if (r && t < *ours) *ours = t;
        if (cold) flush_caches();
        t = now();
        g_sgemv(CblasRowMajor, CblasNoTrans, O, I, 1.0f, W, I, x, 1, 0.0f, y, 1);
        t = now() - t;
        if (r && t < *blas) *blas = t;
    }
}

static void bench_gemv(int have) {
    static const int shp[4][2] = {{4096, 4096}, {11008, 4096}, {4096, 11008}, {32000, 512}};
    setthr_fn st = have ? (setthr_fn)(uintptr_t)dlsym(g_blas, "openblas_set_num_threads") : NULL;
    double bw[2], t1[4];
    int s, k, thr[2] = {1, g_threads};
    for (k = 0; k < 2; k++) {
#ifdef _OPENMP
        omp_set_num_threads(thr[k]);
#endif
        bw[k] = measure_bandwidth();
    }
    printf("\n    GEMV y = W x (GB/s of W read; DRAM bound, streaming read of 1 GiB: %.1f GB/s on 1 "
           "thread, %.1f on %d; bf16 bound: the same read of the bf16 matrix itself)\n"
           "    %-14s %3s %9s %9s %7s %7s %9s %7s %8s %8s\n", bw[0], bw[1], g_threads,
           "O x I", "thr", "ours f32", "openblas", "ratio", "cold", "ours bf16", "read", "bf16/bw", "scaling");
    for (k = 0; k < 2; k++) {
#ifdef _OPENMP
        omp_set_num_threads(thr[k]);
#endif
        if (st) st(thr[k]);
        for (s = 0; s < 4; s++) {
            int O = shp[s][0], I = shp[s][1];
            size_t n = (size_t)O * I, i;
            float *W = randn(n, 1), *x = randn((size_t)I, 1), *y = zeros((size_t)O);
            uint16_t *Wh = (uint16_t *)malloc(sizeof(uint16_t) * n);
            double to, th, rd, tb = 0, tco, tcb, bytes = 4.0 * (double)n;
            char rb[16] = "-", rr[16] = "-", rc[16] = "-", sc[16] = "";
            for (i = 0; i < n; i++) Wh[i] = lc_f32_to_bf16(W[i]);
            th = time_gemv(Wh, LOLCATS_DTYPE_BF16, x, y, O, I);
            rd = read_bw(Wh, n * 2);
            if (have) {
                rest();
                time_gemv_pair(W, x, y, O, I, 0, &to, &tb);
                time_gemv_pair(W, x, y, O, I, 1, &tco, &tcb);
                rest();
                snprintf(rb, sizeof rb, "%.1f", bytes / tb * 1e-9);
                snprintf(rr, sizeof rr, "%.2f", tb / to);
                snprintf(rc, sizeof rc, "%.2f", tcb / tco);
            } else {
                to = time_gemv(W, LOLCATS_DTYPE_F32, x, y, O, I);
            }
            if (k == 0) t1[s] = to;
            else snprintf(sc, sizeof sc, "%.2fx", t1[s] / to);
            printf("    %5d x %5d  %3d %9.1f %9s %7s %7s %9.1f %7.1f %7.0f%% %8s\n", O, I, thr[k], bytes / to * 1e-9,
                   rb, rr, rc, bytes / 2 / th * 1e-9, rd, 100 * bytes / 2 / th * 1e-9 / rd, sc);
            fflush(stdout);
            free(W); free(x); free(y); free(Wh);
        }
    }
#ifdef _OPENMP
    omp_set_num_threads(g_threads);
#endif
    if (st) st(g_threads);
    printf("    (ratio: OpenBLAS time / ours, > 1 is faster, the two alternating call by call; cold: the same "
           "with the caches evicted before every call, W read from DRAM as in decoding; scaling: 1-thread "
           "time / %d-thread)\n", g_threads);
}

static void bench_gemm(void) {
    static const int shapes[2][3] = {{1024, 2048, 2048}, {512, 4096, 4096}};
    static const char *form_name[3] = {"y=x.W^T", "dX=dY.W", "dW=dY^T.x"};
    int have = load_openblas() == 0, s, fm;
    printf("\n(b) GEMM C(M,N) = op(A) op(B), %d threads, best of 5 (GFLOP/s)\n", g_threads);
    if (!have) printf("    SKIPPED peer: libopenblas.so.0 not found (Debian: libopenblas0)\n");
    printf("    %-22s %-10s %10s %10s %10s %8s %16s\n", "M x N x K", "form", "ours", "ours bf16",
           "openblas", "ratio", "--compute bf16");
    for (s = 0; s < 2; s++)
        for (fm = 0; fm < 3; fm++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = fm == 2, tb = fm == 0, r;
            size_t lda = (size_t)(ta ? M : K), ldb = (size_t)(tb ? K : N);
            float *A = randn((size_t)M * K, 1), *B = randn((size_t)K * N, 1), *C = zeros((size_t)M * N);
            uint16_t *Bh = (uint16_t *)malloc(sizeof(uint16_t) * (size_t)K * N);
            void *ws = malloc(lc_gemm_scratch_size(&g_ctx, M, N, K));
            double flop = 2.0 * M * N * K, t, bo = 1e30, bh = 1e30, bb = 1e30, bc = 1e30;
            lc_ctx cb = g_ctx;   /* the bf16 compute mode (>>gemm-bf16), F32 B */
            char rc[48] = "-";
            size_t i;
            char rb[32] = "-", rr[32] = "-";
            for (i = 0; i < (size_t)K * N; i++) Bh[i] = lc_f32_to_bf16(B[i]);
            for (r = 0; r < 6; r++) {  /* first run warms up */
                t = now();
                lc_gemm(&g_ctx, C, A, B, LOLCATS_DTYPE_F32, M, N, K, ta, tb, 1, 0, (size_t)N, lda, ldb, ws);
                t = now() - t;
                if (r && t < bo) bo = t;
            }
            for (r = 0; r < 4; r++) {
                t = now();
                lc_gemm(&g_ctx, C, A, Bh, LOLCATS_DTYPE_BF16, M, N, K, ta, tb, 1, 0, (size_t)N, lda, ldb, ws);
                t = now() - t;
                if (r && t < bh) bh = t;
            }
            cb.compute = LOLCATS_COMPUTE_BF16;
            for (r = 0; g_peak_bf16 > 0 && lc_compute_supported(&cb, cb.compute) && r < 6; r++) {
                t = now();
                lc_gemm(&cb, C, A, B, LOLCATS_DTYPE_F32, M, N, K, ta, tb, 1, 0, (size_t)N, lda, ldb, NULL);
                t = now() - t;
                if (r && t < bc) bc = t;
            }
            if (bc < 1e30)
                snprintf(rc, sizeof rc, "%.1f (%.0f%%pk)", flop / bc * 1e-9, 100.0 * flop / bc * 1e-9 / g_peak_bf16);
            if (have) {
                rest();
                for (r = 0; r < 6; r++) {
                    t = now();
                    g_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                            M, N, K, 1.0f, A, (int)lda, B, (int)ldb, 0.0f, C, N);
                    t = now() - t;
                    if (r && t < bb) bb = t;
                }
                rest();
                snprintf(rb, sizeof rb, "%.1f", flop / bb * 1e-9);
                snprintf(rr, sizeof rr, "%.2f", bb / bo);
            }
            printf("    %5d x %5d x %5d    %-10s %10.1f %10.1f %10s %8s %16s\n", M, N, K, form_name[fm],
                   flop / bo * 1e-9, flop / bh * 1e-9, rb, rr, rc);
            fflush(stdout);
            free(A); free(B); free(C); free(Bh); free(ws);
        }
    bench_gemv(have);
}

/* ------------------------------------------------------------------ (c) */

/* Streaming read bandwidth, GB/s: integer sums over a buffer far larger than L3. */
static double measure_bandwidth(void) {
    size_t n = (size_t)1 << 27, i;  /* 1 GiB of uint64 */
    uint64_t *buf = (uint64_t *)malloc(n * sizeof(uint64_t));
    double best;
    if (!buf) return 0;
    for (i = 0; i < n; i++) buf[i] = i;
    best = read_bw(buf, n * sizeof(uint64_t));
    free(buf);
    return best;
}

/* Softmax decode of one token over a KV cache of ctx positions (one layer):
   scores = K_g q_h / sqrt(D) by lc_gemm, softmax in fp32, y_h = p V_g by lc_gemm. */
static void softmax_decode(float *y, const float *q, const float *kc, const float *vc, float *sc,
                           void *ws, int H, int Hk, int D, int ctx) {
    int g, rep = H / Hk;
    float scale = 1.0f / sqrtf((float)D);
    for (g = 0; g < Hk; g++) {
        const float *k_g = kc + (size_t)g * ctx * D, *v_g = vc + (size_t)g * ctx * D;
        int r, t;
        /* sc (rep, ctx) = q_g (rep, D) . K_g^T */
        lc_gemm(&g_ctx, sc, q + (size_t)g * rep * D, k_g, LOLCATS_DTYPE_F32, rep, ctx, D, 0, 1,
                scale, 0, (size_t)ctx, (size_t)D, (size_t)D, ws);
        for (r = 0; r < rep; r++) {
            float *s = sc + (size_t)r * ctx, mx = -INFINITY, sum = 0;
            for (t = 0; t < ctx; t++) mx = s[t] > mx ? s[t] : mx;
            for (t = 0; t < ctx; t++) { s[t] = expf(s[t] - mx); sum += s[t]; }
            for (t = 0; t < ctx; t++) s[t] /= sum;
        }
        lc_gemm(&g_ctx, y + (size_t)g * rep * D, sc, v_g, LOLCATS_DTYPE_F32, rep, D, ctx, 0, 0, 1,
                0, (size_t)D, (size_t)ctx, (size_t)D, ws);
    }
}

static void bench_decode(void) {
    static const int ctxs[4] = {1024, 4096, 16384, 32768};
    /* synthetic Llama-like layer: dim 2048, H 32, Hk 8, D 64, ffn 5632, BF16 weights */
    int dim = 2048, H = 32, Hk = 8, D = 64, ffn = 5632, f = 64, w = 64, L = 4, F, i, l, c;
    lc_fmap_cfg fm = lc_fmap_cfg_default();
    size_t per_layer = (size_t)dim * dim * 2 + (size_t)Hk * D * dim * 2 + (size_t)ffn * dim * 3;
    uint16_t *Wt;
    float *x, *q, *k, *v, *att, *h1, *h2, *phiq, *phik, *wq, *wk, *wf, *st_mem, *sc, *kc, *vc;
    double bw, bw2, tok_hyb = 0, tok_best = 1e30, bytes, t;
    void *ws;
    lc_decode_state st;
    F = lc_fmap_out_dim(&fm, f);
    printf("\n(c) decode, %d threads\n", g_threads);
    bw = measure_bandwidth();
    printf("    measured streaming read bandwidth: %.1f GB/s (1 GiB buffer)\n", bw);
    /* attention only, one layer, against context length */
    q = randn((size_t)H * D, 1); k = randn((size_t)Hk * D, 1); v = randn((size_t)Hk * D, 1);
    phiq = zeros((size_t)H * F); phik = zeros((size_t)H * F); att = zeros((size_t)H * D);
    wq = randn((size_t)H * D * f, 0.1f); wk = randn((size_t)H * D * f, 0.1f); wf = randn((size_t)H, 1);
    st_mem = zeros(lc_decode_state_floats(H, Hk, D, F, w));
    sc = zeros((size_t)(H / Hk) * 32768);
    ws = malloc(lc_gemm_scratch_size(&g_ctx, 1120, 32768, 256) + 4096);
    printf("    attention of one layer (H=%d Hk=%d D=%d, F=%d w=%d), us per token:\n", H, Hk, D, F, w);
    printf("    %-8s %14s %14s %10s\n", "context", "linearized", "softmax KV", "ratio");
    for (c = 0; c < 4; c++) {
        int ctx = ctxs[c], r, reps = 50;
        double th = 1e30, tsm = 1e30;
        kc = randn((size_t)Hk * ctx * D, 1); vc = randn((size_t)Hk * ctx * D, 1);
        lc_decode_state_init(&st, st_mem, H, Hk, D, F, w);
        for (r = 0; r < w + 1; r++) {  /* fill the ring */
            lc_fmap_fwd(&g_ctx, phik, k, wk, NULL, 1, H, Hk, 1, D, f, &fm);
            lc_attn_hybrid_decode(&g_ctx, att, &st, q, k, v, phiq, phik, wf, 0);
        }
        st.pos = ctx;  /* the state's cost does not depend on how it was filled */
        for (r = 0; r < reps; r++) {
            t = now();
            lc_fmap_fwd(&g_ctx, phiq, q, wq, NULL, 1, H, H, 1, D, f, &fm);
            lc_fmap_fwd(&g_ctx, phik, k, wk, NULL, 1, H, Hk, 1, D, f, &fm);
            lc_attn_hybrid_decode(&g_ctx, att, &st, q, k, v, phiq, phik, wf, 0);
            t = now() - t;
            if (t < th) th = t;
        }
        for (r = 0; r < (ctx > 4096 ? 10 : reps); r++) {
            t = now();
            softmax_decode(att, q, kc, vc, sc, ws, H, Hk, D, ctx);
            t = now() - t;
            if (t < tsm) tsm = t;
        }
        printf("    %-8d %14.1f %14.1f %9.1fx\n", ctx, 1e6 * th, 1e6 * tsm, tsm / th);
        fflush(stdout);
        free(kc); free(vc);
    }
    /* whole synthetic model: L layers of projections (BF16 GEMV) + attention + MLP */
    Wt = (uint16_t *)malloc(sizeof(uint16_t) * per_layer * (size_t)L);
    for (i = 0; i < (int)(per_layer * (size_t)L / 4096); i++) {
        size_t j, o = (size_t)i * 4096;
        for (j = 0; j < 4096; j++) Wt[o + j] = lc_f32_to_bf16(0.02f * (float)((int)((o + j) * 2654435761u % 2001u) - 1000) / 1000.0f);
    }
    x = randn((size_t)dim, 1); h1 = zeros((size_t)ffn); h2 = zeros((size_t)ffn);
    bytes = 2.0 * (double)per_layer * L;
    lc_decode_state_init(&st, st_mem, H, Hk, D, F, w);
    bw2 = measure_bandwidth();  /* again, next to the tokens it bounds: best of both */
    bw = bw2 > bw ? bw2 : bw;
    {
        int r;
        for (r = 0; r < 40; r++) {
            t = now();
            for (l = 0; l < L; l++) {
                const uint16_t *W = Wt + per_layer * (size_t)l;
                const uint16_t *Wq = W, *Wk = Wq + (size_t)dim * dim, *Wv = Wk + (size_t)Hk * D * dim;
                const uint16_t *Wo = Wv + (size_t)Hk * D * dim, *Wg = Wo + (size_t)dim * dim;
                const uint16_t *Wu = Wg + (size_t)ffn * dim, *Wd = Wu + (size_t)ffn * dim;
                int j;
                lc_gemv(&g_ctx, q, Wq, LOLCATS_DTYPE_BF16, x, dim, dim, (size_t)dim);
                lc_gemv(&g_ctx, k, Wk, LOLCATS_DTYPE_BF16, x, Hk * D, dim, (size_t)dim);
                lc_gemv(&g_ctx, v, Wv, LOLCATS_DTYPE_BF16, x, Hk * D, dim, (size_t)dim);
                lc_fmap_fwd(&g_ctx, phiq, q, wq, NULL, 1, H, H, 1, D, f, &fm);
                lc_fmap_fwd(&g_ctx, phik, k, wk, NULL, 1, H, Hk, 1, D, f, &fm);
                lc_attn_hybrid_decode(&g_ctx, att, &st, q, k, v, phiq, phik, wf, 0);
                lc_gemv(&g_ctx, x, Wo, LOLCATS_DTYPE_BF16, att, dim, dim, (size_t)dim);
                lc_gemv(&g_ctx, h1, Wg, LOLCATS_DTYPE_BF16, x, ffn, dim, (size_t)dim);
                lc_gemv(&g_ctx, h2, Wu, LOLCATS_DTYPE_BF16, x, ffn, dim, (size_t)dim);
                for (j = 0; j < ffn; j++) h1[j] = h1[j] / (1.0f + expf(-h1[j])) * h2[j];
                lc_gemv(&g_ctx, x, Wd, LOLCATS_DTYPE_BF16, h1, dim, ffn, (size_t)ffn);
                for (j = 0; j < dim; j++) x[j] = x[j] * 0.01f;  /* keep it bounded */
            }
            t = now() - t;
            if (r >= 2) tok_hyb += t;
            if (r >= 2 && t < tok_best) tok_best = t;
        }
        tok_hyb /= 38;
    }
    printf("    synthetic BF16 model, %d layers of dim %d / ffn %d (%.0f MB of weights):\n", L, dim,
           ffn, bytes / 1e6);
    printf("      linearized decode %.2f ms/token best, %.2f mean (%.1f tokens/s); bandwidth bound "
           "%.2f ms/token at the best of the two probes, %.1f GB/s (%.1f tokens/s) -> %.0f%% of "
           "the bound (best against best; %.0f%% by the mean)\n", 1e3 * tok_best, 1e3 * tok_hyb,
           1 / tok_best, 1e3 * bytes / (bw * 1e9), bw, bw * 1e9 / bytes,
           100.0 * (bytes / (bw * 1e9)) / tok_best, 100.0 * (bytes / (bw * 1e9)) / tok_hyb);
    free(Wt); free(x); free(h1); free(h2); free(q); free(k); free(v); free(phiq); free(phik);
    free(att); free(wq); free(wk); free(wf); free(st_mem); free(sc); free(ws);
}

/* ------------------------------------------------------------------ (e) */

/* The options beyond the original recipe (README "Options beyond the original
   recipe"), each beside the original on the 8B-shaped layer of (d): the
   stage-1 step and one decoded token's attention at a context of 4096.
   Stage 1 of the gated state: the teacher's softmax, the gate projection
   log g = log sigmoid(x w_g + b_g) from the layer's normed input x (N, dim),
   the gated student through lc_attn_hybrid_fwd_args / _bwd_args (the form
   the trainer runs), MSE x 1000, the gate's and the feature maps' backward,
   AdamW on all of them (sinks: attention sinks beside the gate). Best of reps
   after a warm-up. */
static double step_gated(int N, int H, int Hk, int D, int f, int dim, int sinks, int reps) {
    lc_fmap_cfg fm = lc_fmap_cfg_default();
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    lc_adamw_cfg opt = lc_adamw_cfg_default();
    lc_hybrid_args a = lc_hybrid_args_default();
    int F = lc_fmap_out_dim(&fm, f), r;
    size_t nq = (size_t)H * N * D, nk = (size_t)Hk * N * D, nf = (size_t)H * N * F;
    size_t nw = (size_t)H * D * f, ng = (size_t)H * dim, nh = (size_t)H;
    float *q, *k, *v, *x, *wq, *wk, *wf, *wg, *bg, *yt, *y, *m, *den, *dy, *work, *phiq, *phik;
    float *logg, *dlogg, *dphiq, *dphik, *dwq, *dwk, *dwf, *dwg, *dbg, *mo, *vo;
    double best = 1e30;
    lc_rng_seed(&g_rng, 3);
    q = randn_hp(nq, 1); k = randn_hp(nk, 1); v = randn_hp(nk, 1); x = randn_hp((size_t)N * dim, 1);
    wq = randn_hp(nw, 0.1f); wk = randn_hp(nw, 0.1f); wf = randn_hp(nh, 1);
    wg = randn_hp(ng, 0.01f); bg = zeros_hp(nh);
    for (r = 0; r < H; r++) bg[r] = LOLCATS_GATE_BIAS_INIT;
    yt = zeros_hp(nq); y = zeros_hp(nq); dy = zeros_hp(nq); m = zeros_hp((size_t)H * N);
    den = zeros_hp((size_t)H * N); logg = zeros_hp((size_t)H * N); dlogg = zeros_hp((size_t)H * N);
    work = zeros_hp(lc_attn_hybrid_work_floats(1, H, D, F));
    phiq = zeros_hp(nf); phik = zeros_hp(nf); dphiq = zeros_hp(nf); dphik = zeros_hp(nf);
    dwq = zeros_hp(nw); dwk = zeros_hp(nw); dwf = zeros_hp(nh); dwg = zeros_hp(ng); dbg = zeros_hp(nh);
    mo = zeros_hp(2 * nw + nh + ng + nh); vo = zeros_hp(2 * nw + nh + ng + nh);
    hc.sinks = sinks;
    a.B = 1; a.H = H; a.Hk = Hk; a.N = N; a.D = D; a.F = F; a.cfg = &hc;
    a.q = q; a.k = k; a.v = v; a.phiq = phiq; a.phik = phik; a.wf = wf; a.log_g = logg;
    a.y = y; a.m = m; a.den = den; a.work = work;
    a.dy = dy; a.dphiq = dphiq; a.dphik = dphik; a.dwf = dwf; a.dlog_g = dlogg;
    for (r = 0; r <= reps; r++) {  /* r == 0 warms up */
        double t0 = now(), t;
        lc_attn_softmax_fwd(&g_ctx, yt, NULL, q, k, v, 1, H, Hk, N, D);
        lc_fmap_fwd(&g_ctx, phiq, q, wq, NULL, 1, H, H, N, D, f, &fm);
        lc_fmap_fwd(&g_ctx, phik, k, wk, NULL, 1, H, Hk, N, D, f, &fm);
        lc_gate_proj_fwd(&g_ctx, logg, x, wg, bg, 1, H, N, dim);
        lc_attn_hybrid_fwd_args(&g_ctx, &a);
        memset(dy, 0, sizeof(float) * nq);
        lc_loss_mse(dy, y, yt, nq, 1000.0f);
        memset(dphiq, 0, sizeof(float) * nf); memset(dphik, 0, sizeof(float) * nf);
        memset(dwf, 0, sizeof(float) * nh); memset(dlogg, 0, sizeof(float) * (size_t)H * N);
        lc_attn_hybrid_bwd_args(&g_ctx, &a);
        memset(dwg, 0, sizeof(float) * ng); memset(dbg, 0, sizeof(float) * nh);
        lc_gate_proj_bwd(&g_ctx, NULL, dwg, dbg, dlogg, x, wg, bg, 1, H, N, dim);
        memset(dwq, 0, sizeof(float) * nw); memset(dwk, 0, sizeof(float) * nw);
        lc_fmap_bwd_phi(&g_ctx, NULL, dwq, NULL, dphiq, phiq, q, wq, NULL, 1, H, H, N, D, f, &fm);
        lc_fmap_bwd_phi(&g_ctx, NULL, dwk, NULL, dphik, phik, k, wk, NULL, 1, H, Hk, N, D, f, &fm);
        lc_adamw_step(wq, dwq, mo, vo, nw, &opt, r + 1);
        lc_adamw_step(wk, dwk, mo + nw, vo + nw, nw, &opt, r + 1);
        lc_adamw_step(wf, dwf, mo + 2 * nw, vo + 2 * nw, nh, &opt, r + 1);
        lc_adamw_step(wg, dwg, mo + 2 * nw + nh, vo + 2 * nw + nh, ng, &opt, r + 1);
        lc_adamw_step(bg, dbg, mo + 2 * nw + nh + ng, vo + 2 * nw + nh + ng, nh, &opt, r + 1);
        t = now() - t0;
        if (r && t < best) best = t;
    }
    free(q); free(k); free(v); free(x); free(wq); free(wk); free(wf); free(wg); free(bg);
    free(yt); free(y); free(dy); free(m); free(den); free(logg); free(dlogg); free(work);
    free(phiq); free(phik); free(dphiq); free(dphik); free(dwq); free(dwk); free(dwf);
    free(dwg); free(dbg); free(mo); free(vo);
    return best;
}

enum { OPT_ORIG, OPT_SINKS, OPT_GATE, OPT_SOFTMAX, OPT_GATESINKS, OPT_N };

/* One decoded token of one layer's attention at context ctx, microseconds
   (best of reps): the feature maps of q and k and lc_attn_hybrid_decode for
   the original and for 4 sinks; plus the gate projection of the token and
   lc_attn_hybrid_decode_gated for the gate (and the gate with 4 sinks); a kept softmax layer reads its
   KV cache of ctx positions (softmax_decode above). */
static double decode_option(int opt, int H, int Hk, int D, int f, int dim, int ctx, int reps) {
    lc_fmap_cfg fm = lc_fmap_cfg_default();
    int F = lc_fmap_out_dim(&fm, f), w = 64, sinks = opt == OPT_SINKS || opt == OPT_GATESINKS ? 4 : 0, r;
    float *q = randn((size_t)H * D, 1), *k = randn((size_t)Hk * D, 1), *v = randn((size_t)Hk * D, 1);
    float *x = randn((size_t)dim, 1), *wg = randn((size_t)H * dim, 0.01f), *bg = zeros((size_t)H);
    float *phiq = zeros((size_t)H * F), *phik = zeros((size_t)H * F), *y = zeros((size_t)H * D);
    float *wq = randn((size_t)H * D * f, 0.1f), *wk = randn((size_t)H * D * f, 0.1f);
    float *wf = randn((size_t)H, 1), *logg = zeros((size_t)H), *ring = zeros((size_t)H * w);
    float *mem = zeros(lc_decode_state_floats_sinks(H, Hk, D, F, w, sinks));
    float *kc = NULL, *vc = NULL, *sc = NULL;
    void *ws = NULL;
    double best = 1e30, t;
    lc_decode_state st;
    lc_decode_state_init_sinks(&st, mem, H, Hk, D, F, w, sinks);
    if (opt == OPT_SOFTMAX) {
        kc = randn((size_t)Hk * ctx * D, 1); vc = randn((size_t)Hk * ctx * D, 1);
        sc = zeros((size_t)(H / Hk) * ctx);
        ws = malloc(lc_gemm_scratch_size(&g_ctx, H / Hk, ctx, D > 256 ? D : 256) + 4096);
    } else {
        for (r = 0; r < w + sinks + 1; r++) {  /* fill the ring (and the sinks) */
            lc_fmap_fwd(&g_ctx, phik, k, wk, NULL, 1, H, Hk, 1, D, f, &fm);
            lc_attn_hybrid_decode(&g_ctx, y, &st, q, k, v, phiq, phik, wf, 0);
        }
        st.pos = ctx;  /* the state's cost does not depend on how it was filled */
    }
    for (r = 0; r < reps; r++) {
        t = now();
        if (opt == OPT_SOFTMAX) {
            softmax_decode(y, q, kc, vc, sc, ws, H, Hk, D, ctx);
        } else {
            lc_fmap_fwd(&g_ctx, phiq, q, wq, NULL, 1, H, H, 1, D, f, &fm);
            lc_fmap_fwd(&g_ctx, phik, k, wk, NULL, 1, H, Hk, 1, D, f, &fm);
            if (opt == OPT_GATE || opt == OPT_GATESINKS) {
                lc_gate_proj_fwd(&g_ctx, logg, x, wg, bg, 1, H, 1, dim);
                lc_attn_hybrid_decode_gated(&g_ctx, y, &st, ring, q, k, v, phiq, phik, wf, logg, 0);
            } else {
                lc_attn_hybrid_decode(&g_ctx, y, &st, q, k, v, phiq, phik, wf, 0);
            }
        }
        t = now() - t;
        if (t < best) best = t;
    }
    free(q); free(k); free(v); free(x); free(wg); free(bg); free(phiq); free(phik); free(y);
    free(wq); free(wk); free(wf); free(logg); free(ring); free(mem); free(kc); free(vc); free(sc);
    free(ws);
    return 1e6 * best;
}

static void bench_options(void) {
    int N = 1024, H = 32, Hk = 8, D = 128, f = 64, dim = 4096, ctx = 4096;
    double mb, t0, t4, tg, tgs, d[OPT_N];
    int i;
    printf("\n(e) the options beyond the original recipe, on the layer of (d) (H=%d Hk=%d D=%d "
           "f=%d, dim %d), %d threads\n", H, Hk, D, f, dim, g_threads);
    g_sinks = 0; t0 = step_ours(N, H, Hk, D, f, 3, &mb);
    g_sinks = 4; t4 = step_ours(N, H, Hk, D, f, 3, &mb);
    g_sinks = 0; tg = step_gated(N, H, Hk, D, f, dim, 0, 3);
    tgs = step_gated(N, H, Hk, D, f, dim, 4, 3);
    for (i = 0; i < OPT_N; i++) d[i] = decode_option(i, H, Hk, D, f, dim, ctx, 30);
    printf("    %-34s %16s %22s\n", "option", "stage-1 step ms", "decode us/token @4096");
    printf("    %-34s %16.1f %22.1f\n", "original recipe", 1e3 * t0, d[OPT_ORIG]);
    printf("    %-34s %16.1f %22.1f\n", "--sinks 4", 1e3 * t4, d[OPT_SINKS]);
    printf("    %-34s %16.1f %22.1f\n", "--gate", 1e3 * tg, d[OPT_GATE]);
    printf("    %-34s %16.1f %22.1f\n", "--gate --sinks 4", 1e3 * tgs, d[OPT_GATESINKS]);
    printf("    %-34s %16s %22.1f\n", "--softmax-layers (a kept layer)", "0 (not trained)",
           d[OPT_SOFTMAX]);
    printf("    %-34s %16s %22s\n", "--kl-factor (stage 2 only)", "as original", "as original");
    printf("    (stage 1 ratios to the original: sinks %.2fx, gate %.2fx, gate with sinks %.2fx; a kept "
           "softmax layer's decode grows with the context, the others' do not)\n", t4 / t0, tg / t0, tgs / t0);
}

/* ------------------------------------------------------------------ (f) */

/* FLOP count of one training token at sequence length N (multiply-add = 2):
     lin    per layer: q,k,v,o projections 2 (2 dim H D + 2 dim Hk D) + SwiGLU MLP 6 dim ffn
     soft   per head:  causal softmax attention, QK^T and PV over (N+1)/2 keys on average: 4 D (N+1)/2
     hyb    per head, forward: feature maps of q and k 4 D f, window (w keys) 4 D w,
                       linear state write and read 4 F D; its backward counted as 2 x forward
     lora   per layer, forward: 2 r (in + out) over q,k,v,o; backward 2 x forward
     head   2 dim V (logits); its backward to x again 2 dim V (frozen classifier: no dW)
   stage 1 (teacher forced, feature maps only): L (lin + H soft + 3 H hyb); the
     frozen projections and MLP run forward only (no gradient through them).
   stage 2 (LoRA, CE): L (2 lin + 3 H hyb + 3 lora) + 2 head: forward and the
     backward to the activations through every frozen GEMM, no weight gradient.
   (the norms, RoPE, softmax exps and AdamW are left out: O(dim) per token.) */
static double stage_flops(const lc_model_config *c, int N, int f, int F, int w, int r, int stage) {
    double d = c->dim, H = c->n_heads, Hk = c->n_kv_heads, D = c->head_dim, ffn = c->hidden_dim;
    double lin = 2 * (2 * d * H * D + 2 * d * Hk * D) + 6 * d * ffn;
    double soft = 4 * D * (N + 1) / 2.0;
    double hyb = 4 * D * f + 4 * D * (w < N ? w : N) + 4 * (double)F * D;
    double lora = 2.0 * r * ((d + H * D) + 2 * (d + Hk * D) + (H * D + d));
    double head = 2 * d * c->vocab_size;
    if (stage == 1) return c->n_layers * (lin + H * soft + 3 * H * hyb);
    return c->n_layers * (2 * lin + 3 * H * hyb + 3 * lora) + 2 * head;
}

/* tokens/s of `reps` steps (after one untimed when reps > 1) of stage 1 or
   stage 2 on model m at N tokens per step, with `threads` threads: the best
   step and the mean. */
static int stage_run(lc_model *m, int stage, int N, int threads, int reps, double *best,
                     double *mean, double *cpu_best, double *mem_mb) {
    lc_train_cfg tc = lc_train_cfg_default();
    lc_adamw_cfg opt;
    lc_train t;
    lc_error err;
    lc_ctx cx;
    int *tok = (int *)malloc(sizeof(int) * 2 * (size_t)N), i, rep, ns, warm = reps > 1;
    double loss, tm, tc0, sum = 0;
    opt = lc_adamw_cfg_default();
    if (stage == 2) opt.lr = 1e-4f;
    for (i = 0; i < 2 * N; i++) tok[i] = (int)(lc_rng_u64(&g_rng) % (uint64_t)m->cfg.vocab_size);
    tc.max_tokens = N;
    tc.attn = LOLCATS_ATTN_HYBRID;
    if (stage == 1) { tc.trainable = LOLCATS_TRAIN_FMAPS; tc.lora_rank = 0; tc.distill_only = 1; }
    else tc.trainable = LOLCATS_TRAIN_LORA;
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    mem_begin();
    cx = g_ctx;
    cx.compute = g_compute;
    if (lc_train_init(&t, &cx, m, &tc, &err)) {
        printf("    stage %d: lc_train_init failed: %s\n", stage, err.msg);
        free(tok);
        return 1;
    }
    *best = *cpu_best = 1e30;
    for (rep = !warm; rep <= reps; rep++) {
        lc_status st;
        tm = now();
        tc0 = cpu_now();
        lc_train_zero_grad(&t);
        if (stage == 1) st = lc_train_distill_step(&t, tok, N, 1, &loss, NULL, &err);
        else st = lc_train_lm_step(&t, tok, tok + 1, N, 1, &loss, &ns, &err);
        if (st) { printf("    stage %d step failed: %s\n", stage, err.msg); break; }
        lc_train_adamw(&t, &opt, 1.0f);
        tm = now() - tm;
        tc0 = cpu_now() - tc0;
        if (rep) { sum += tm; if (tm < *best) *best = tm; if (tc0 < *cpu_best) *cpu_best = tc0; }
    }
    *mem_mb = mem_end();
    *mean = sum / reps;
    lc_train_free(&t);
    free(tok);
#ifdef _OPENMP
    omp_set_num_threads(g_threads);
#endif
    return 0;
}

/* The original recipe in PyTorch (tools/orig_recipe.py --bench-stage) on the
   same model (`model` is "--model DIR" or "--synth dim,hidden,..."), the same N
   and thread count, with the workplace's OPENBLAS_* overrides unset: seconds of
   its best step (reps as stage_run) and its CPU time in *cpu (-1: not given),
   or -1 with the reason in note. */
static double peer_orig(const char *model, int stage, int N, int threads, int reps, double *cpu, char *note,
                        size_t nl) {
    char cmd[768];
    double sec = -1, mb = 0;
    const char *c;
    snprintf(cmd, sizeof cmd,
             "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=%d /usr/bin/python3 tools/orig_recipe.py "
             "--cpu --threads %d %s --bench-stage %d --bench-n %d --bench-reps %d 2>&1 | tail -c 900",
             threads, threads, model, stage, N, reps);
    *cpu = -1;
    if (peer_cmd(cmd, &sec, &mb, note, nl)) return -1;
    c = strstr(g_peer_out, "\"cpu_s\":");
    if (c) *cpu = atof(c + 8);
    return sec;
}

/* stage 1 and stage 2 rows of model m: ours on 1 and g_threads threads, and
   (peer non-NULL and torch present) the original recipe in PyTorch beside each;
   on a CPU with AVX512_BF16 also our 1-thread step with --compute bf16, beside
   our float32 step and the (float32) peer. */
static void stage_rows(lc_model *m, const char *name, int N, int reps, const char *peer) {
    int stage, k, th[2], torch_ok = peer && have_torch(), bf16_ok;
    double p1 = g_peak_f32_1;
    char note[256];
    lc_ctx cx = g_ctx;
    bf16_ok = lc_compute_supported(&cx, LOLCATS_COMPUTE_BF16) && cx.simd != LOLCATS_SIMD_SCALAR;
    th[0] = 1; th[1] = g_threads;
    if (peer && !torch_ok) printf("    SKIPPED peer (original recipe): /usr/bin/python3 with torch not found\n");
    for (stage = 1; stage <= 2; stage++) {
        double fl = stage_flops(&m->cfg, N, 64, 128, 64, 8, stage), tps1 = 0;
        printf("    %s stage %d, N = %d, %.1f MFLOP/token (bench.c stage_flops), %s:\n", name, stage, N, fl * 1e-6,
               reps > 1 ? "best of the steps after one untimed" : "one step, none untimed");
        for (k = 0; k < (g_threads > 1 ? 2 : 1); k++) {
            double best, mean, cb, mb, tps, peak = th[k] == 1 ? p1 : g_peak_f32, ts, tc;
            if (stage_run(m, stage, N, th[k], reps, &best, &mean, &cb, &mb)) return;
            tps = N / best;
            if (k == 0) tps1 = tps;
            printf("      %d thread%s: %.0f tokens/s best (%.0f mean) = %.1f GFLOP/s, %.0f%% of the fp32 "
                   "peak (%.1f); peak memory %s%.0f MB", th[k], th[k] > 1 ? "s" : "", tps, N / mean,
                   fl * tps * 1e-9, 100 * fl * tps * 1e-9 / peak, peak, mb < 0 ? "?" : "", mb < 0 ? 0 : mb);
            if (k == 0)
                printf("; by CPU time %.0f tokens/s, %.0f%% of the peak", N / cb, 100 * fl * N / cb * 1e-9 / peak);
            if (k == 1) printf("; %.2fx of 1 thread", tps / tps1);
            printf("\n");
            tc = -1;
            if (torch_ok) {
                fflush(stdout);
                ts = peer_orig(peer, stage, N, th[k], reps, &tc, note, sizeof note);
                if (ts < 0) {
                    printf("        original recipe in PyTorch: failed: %s\n", note);
                    tc = -1;
                } else {
                    printf("        original recipe in PyTorch, %d thread%s: %.1f tokens/s (step %.2f s); ours / "
                           "peer %.2fx", th[k], th[k] > 1 ? "s" : "", N / ts, ts, ts / best);
                    if (k == 0 && tc > 0) printf("; by CPU time %.1f tokens/s, ours / peer %.2fx", N / tc, tc / cb);
                    printf("  [%s]\n", note);
                }
            }
            if (k == 0 && bf16_ok) {   /* the same step with --compute bf16, beside the float32 peer */
                double bb, bm, bc, bmb;
                g_compute = LOLCATS_COMPUTE_BF16;
                if (!stage_run(m, stage, N, 1, reps, &bb, &bm, &bc, &bmb)) {
                    printf("        ours with --compute bf16, 1 thread: by CPU time %.0f tokens/s, %.2fx our "
                           "float32", N / bc, cb / bc);
                    if (tc > 0) printf("; ours (bf16) / peer (float32) %.2fx", tc / bc);
                    printf("\n");
                }
                g_compute = LOLCATS_COMPUTE_F32;
            }
        }
    }
}

/* A Llama-3-8B-shaped model of L layers (dim 4096, 32 heads, 8 kv heads, head
   dim 128, hidden 14336, vocab 128256, untied) with BF16 weights in memory,
   uniform with std 0.02 and norms 1, as `lolcats synth --like llama3-8b
   --layers L` makes them (2 layers: 2.9 GB; no files). Returns the buffer to
   free after the model (NULL: out of memory). */
static uint16_t *synth_8b(lc_model *m, int L) {
    lc_model_config *c = &m->cfg;
    uint16_t *buf, *p;
    size_t n, i;
    int l, d = 4096, hd = 14336, qd = 32 * 128, kd = 8 * 128, V = 128256;
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    memset(m, 0, sizeof *m);
    c->dim = d; c->hidden_dim = hd; c->n_layers = L; c->n_heads = 32; c->n_kv_heads = 8; c->head_dim = 128;
    c->vocab_size = V; c->seq_len = 8192; c->norm_eps = 1e-5f; c->rope_theta = 500000.0f;
    c->bos_id = 128000; c->eos_id = 128001;
    strcpy(c->arch, "LlamaForCausalLM");
    m->format = LOLCATS_MODEL_HF;
    n = 2 * (size_t)V * d + d + (size_t)L * (2 * (size_t)d + (size_t)qd * d * 2 + (size_t)kd * d * 2 + 3 * (size_t)hd * d);
    buf = (uint16_t *)malloc(n * sizeof *buf);
    m->layers = (lc_layer_weights *)calloc((size_t)L, sizeof *m->layers);
    if (!buf || !m->layers) { free(buf); free(m->layers); return NULL; }
    for (i = 0; i < n; i++) {   /* xorshift64: uniform(-a, a), a = 0.02 sqrt(3) */
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        buf[i] = lc_f32_to_bf16(((float)(x >> 40) * (1.0f / 8388608.0f) - 1.0f) * 0.0346410162f);
    }
    p = buf;
#define SYNTH_W(w, r, cl) do { (w).data = p; (w).dtype = LOLCATS_DTYPE_BF16; (w).rows = (r); (w).cols = (cl); \
                               p += (size_t)(r) * (size_t)(cl); } while (0)
#define SYNTH_NORM(w) do { for (i = 0; i < (size_t)d; i++) p[i] = lc_f32_to_bf16(1.0f); SYNTH_W(w, 1, d); } while (0)
    SYNTH_W(m->tok_emb, V, d);
    SYNTH_W(m->wcls, V, d);
    SYNTH_NORM(m->rms_final);
    for (l = 0; l < L; l++) {
        lc_layer_weights *w = &m->layers[l];
        SYNTH_NORM(w->rms_att);
        SYNTH_NORM(w->rms_ffn);
        SYNTH_W(w->wq, qd, d); SYNTH_W(w->wk, kd, d); SYNTH_W(w->wv, kd, d); SYNTH_W(w->wo, d, qd);
        SYNTH_W(w->w1, hd, d); SYNTH_W(w->w2, d, hd); SYNTH_W(w->w3, hd, d);
    }
#undef SYNTH_W
#undef SYNTH_NORM
    return buf;
}

/* Where stage 2's time goes, from its public pieces at the same shapes, one
   thread each (best of 3; reps 1: one run each, as stage_run): the whole step,
   the step's forward alone, the LM
   head's forward GEMM (N,dim)x(V,dim)^T and its backward to x, the CE
   log-softmax and gradient over the (N,V) logits (lc_xent_fwd_bwd under g_ctx), and the
   frozen block GEMMs of all layers (q,k,v,o and the MLP, forward; their
   backward to x costs the same again). The rest (attention, LoRA, norms,
   elementwise) is the whole step minus these. Stage 1's step beside it: the
   block GEMMs forward (the teacher's) and the rest (attention, feature maps).
   The pieces' buffers are written before the clock starts and advised for huge
   pages, as the trainer's activations are (lc_train_init): a first write to
   untouched pages costs page faults (525 MB of logits at V = 128256: about
   2 s of CPU time on the Zen 5 test machine) that no training step pays. */
static double best_of(const double *t, int n) {
    double b = t[0];
    int i;
    for (i = 1; i < n; i++) b = t[i] < b ? t[i] : b;
    return b;
}
static void stage2_profile(lc_model *m, int N, int reps) {
    const lc_model_config *c = &m->cfg;
    int d = c->dim, V = c->vocab_size, L = c->n_layers, HD = c->n_heads * c->head_dim;
    int KD = c->n_kv_heads * c->head_dim, I = c->hidden_dim, rep, i, ns, l;
    float *x = randn_hp((size_t)N * (d > I ? I : d) + (size_t)N * I, 1), *y = zeros_hp((size_t)N * V);
    float *dx = zeros_hp((size_t)N * I);
    int *lab = (int *)malloc(sizeof(int) * (size_t)N);
    double th[3], tb[3], tx[3], tg[3], tall = 0, tfwd = 0, tm, mb, t1 = 0;
    int np = reps > 1 ? 3 : 1;
    lc_train_cfg tc = lc_train_cfg_default();
    lc_train t;
    lc_error err;
    for (i = 0; i < N; i++) lab[i] = (int)(lc_rng_u64(&g_rng) % (uint64_t)V);
    (void)stage_run(m, 1, N, 1, reps, &tm, &mb, &t1, &mb);
    (void)stage_run(m, 2, N, 1, reps, &tm, &mb, &tall, &mb);
#ifdef _OPENMP
    omp_set_num_threads(1);   /* after stage_run, which leaves g_threads set */
#endif
    tc.max_tokens = N; tc.attn = LOLCATS_ATTN_HYBRID; tc.trainable = LOLCATS_TRAIN_LORA;
    if (!lc_train_init(&t, &g_ctx, m, &tc, &err)) {
        tfwd = 1e30;
        for (rep = reps > 1 ? 0 : 1; rep <= reps; rep++) {
            double loss;
            tm = cpu_now();
            lc_train_lm_step(&t, lab, lab, N, 0, &loss, &ns, &err);
            tm = cpu_now() - tm;
            if (rep && tm < tfwd) tfwd = tm;
        }
        lc_train_free(&t);
    }
    for (rep = 0; rep < np; rep++) {
        tm = cpu_now();
        lc_linear_fwd(&g_ctx, y, NULL, x, m->wcls.data, (int)m->wcls.dtype, NULL, NULL, 0, 0, N, V, d);
        th[rep] = cpu_now() - tm;
        tm = cpu_now();
        lc__xent(&g_ctx, y, y, lab, N, V, &ns);
        tx[rep] = cpu_now() - tm;
        tm = cpu_now();
        lc_linear_bwd(&g_ctx, dx, NULL, NULL, NULL, y, x, NULL, m->wcls.data, (int)m->wcls.dtype, NULL, NULL, 0,
                      0, N, V, d);
        tb[rep] = cpu_now() - tm;
        tm = cpu_now();
        for (l = 0; l < L; l++) {
            const lc_layer_weights *w = &m->layers[l];
            lc_linear_fwd(&g_ctx, y, NULL, x, w->wq.data, (int)w->wq.dtype, NULL, NULL, 0, 0, N, HD, d);
            lc_linear_fwd(&g_ctx, y, NULL, x, w->wk.data, (int)w->wk.dtype, NULL, NULL, 0, 0, N, KD, d);
            lc_linear_fwd(&g_ctx, y, NULL, x, w->wv.data, (int)w->wv.dtype, NULL, NULL, 0, 0, N, KD, d);
            lc_linear_fwd(&g_ctx, y, NULL, x, w->wo.data, (int)w->wo.dtype, NULL, NULL, 0, 0, N, d, HD);
            lc_linear_fwd(&g_ctx, y, NULL, x, w->w1.data, (int)w->w1.dtype, NULL, NULL, 0, 0, N, I, d);
            lc_linear_fwd(&g_ctx, y, NULL, x, w->w3.data, (int)w->w3.dtype, NULL, NULL, 0, 0, N, I, d);
            lc_linear_fwd(&g_ctx, y, NULL, x, w->w2.data, (int)w->w2.dtype, NULL, NULL, 0, 0, N, d, I);
        }
        tg[rep] = cpu_now() - tm;
    }
    {
        double h = best_of(th, np), b = best_of(tb, np), xe = best_of(tx, np), g = best_of(tg, np), rest;
        double gfl = L * (2 * (2.0 * d * HD + 2.0 * d * KD) + 6.0 * d * I);   /* per token, stage_flops' lin */
        rest = tall - h - b - xe - 2 * g;
        printf("    stage 2 profile, 1 thread, CPU time, N = %d: step %.3f s (forward alone %.3f s); LM head fwd "
               "%.3f s (%.0f%%), CE log-softmax+grad %.3f s (%.0f%%), LM head bwd %.3f s (%.0f%%), block "
               "GEMMs fwd %.3f s x 2 for fwd+bwd (%.0f%%), the rest (attention, LoRA, norms, "
               "elementwise) %.3f s (%.0f%%)\n", N, tall, tfwd, h, 100 * h / tall, xe, 100 * xe / tall, b,
               100 * b / tall, g, 200 * g / tall, rest, 100 * rest / tall);
        printf("      block GEMMs fwd %.1f GFLOP/s (%.0f%% of the fp32 peak); stage 1 step %.3f s: block GEMMs fwd "
               "%.0f%%, the rest (attention, feature maps, norms) %.3f s (%.0f%%)\n", gfl * N / g * 1e-9,
               100 * gfl * N / g * 1e-9 / g_peak_f32_1, t1, 100 * g / t1, t1 - g, 100 * (t1 - g) / t1);
        if (rest < 0)
            printf("      (the rest < 0: the pieces alone ran slower than inside the step, or the backward's "
                   "GEMMs cost less than the forward's: a busy machine skews CPU time too)\n");
    }
#ifdef _OPENMP
    omp_set_num_threads(g_threads);
#endif
    free(x); free(y); free(dx); free(lab);
}

static void bench_stages(void) {
    lc_model m;
    lc_error err;
    const char *dir = "../shared/models/alpaca-llama-25m";
    printf("\n(f) training stages end to end (one step = N tokens, forward + backward + AdamW; "
           "random tokens), 1 and %d threads\n", g_threads);
    if (access(dir, R_OK)) {
        printf("    SKIPPED: %s absent (alpaca-llama-25m rows)\n", dir);
    } else if (lc_model_load(&m, dir, &err)) {
        printf("    SKIPPED: %s does not load: %s\n", dir, err.msg);
    } else {
        char peer[600];
        snprintf(peer, sizeof peer, "--model %s", dir);
        stage_rows(&m, "alpaca-llama-25m", 1024, 3, peer);
        stage2_profile(&m, 1024, 3);
        lc_model_free(&m);
    }
    {
        uint16_t *buf = synth_8b(&m, 2);
        if (!buf) { printf("    SKIPPED: out of memory for the 2-layer 8B-shaped model (2.9 GB)\n"); return; }
        /* reps 2: one step timed after one untimed, on both sides (a first step
           pays the first touch of every page and the peer's allocator warm-up) */
        stage_rows(&m, "2-layer Llama-3-8B-shaped synth (BF16)", 1024, 2,
                   "--synth 4096,14336,2,32,8,128,128256");
        stage2_profile(&m, 1024, 1);
        free(m.layers);
        free(buf);
    }
}

/* (g) the bf16 compute mode (`--compute bf16`, >>gemm-bf16) against float32:
   stage 1 steps (stage_run, best CPU time of 2 after one untimed), 1 thread,
   on alpaca-llama-25m and a 1-layer Llama-3-8B-shaped synth model, N = 1024;
   the ratio f32 / bf16 of CPU seconds, both measured in this run. Stage 1's
   bf16 GEMMs are the teacher's frozen projections and MLP; attention and the
   feature maps stay float32 (stage_flops' share of them is printed). */
static void bf16_stage1_row(lc_model *m, const char *name) {
    int N = 1024, c;
    double cpu[2] = {0, 0}, best, mean, mb, fl = stage_flops(&m->cfg, N, 64, 128, 64, 8, 1);
    const lc_model_config *k = &m->cfg;
    double lin = 2.0 * (2.0 * k->dim * k->n_heads * k->head_dim + 2.0 * k->dim * k->n_kv_heads * k->head_dim) +
                 6.0 * k->dim * k->hidden_dim;
    for (c = 0; c < 2; c++) {
        g_compute = c ? LOLCATS_COMPUTE_BF16 : LOLCATS_COMPUTE_F32;
        if (stage_run(m, 1, N, 1, 2, &best, &mean, &cpu[c], &mb)) break;
    }
    g_compute = LOLCATS_COMPUTE_F32;
    if (cpu[1] <= 0) return;
    printf("    %-40s f32 %7.3f s  bf16 %7.3f s  f32/bf16 %.2fx   (GEMM share of the FLOPs %.0f%%)\n", name,
           cpu[0], cpu[1], cpu[0] / cpu[1], 100.0 * k->n_layers * lin / fl);
}

static void bench_bf16_stages(void) {
    lc_model m;
    lc_error err;
    const char *dir = "../shared/models/alpaca-llama-25m";
    lc_ctx cx = g_ctx;
    printf("\n(g) stage 1 step, N = 1024, 1 thread, CPU seconds (best of 2 after one untimed): float32 vs "
           "--compute bf16\n");
    if (!lc_compute_supported(&cx, LOLCATS_COMPUTE_BF16) || cx.simd == LOLCATS_SIMD_SCALAR) {
        printf("    SKIPPED: no AVX512_BF16 on this CPU (the bf16 mode would run float32)\n");
        return;
    }
    if (access(dir, R_OK) || lc_model_load(&m, dir, &err)) {
        printf("    SKIPPED: %s absent or unreadable\n", dir);
    } else {
        bf16_stage1_row(&m, "alpaca-llama-25m");
        lc_model_free(&m);
    }
    {
        uint16_t *buf = synth_8b(&m, 1);
        if (!buf) { printf("    SKIPPED: out of memory for the 1-layer 8B-shaped model\n"); return; }
        bf16_stage1_row(&m, "1-layer Llama-3-8B-shaped synth (BF16)");
        free(m.layers);
        free(buf);
    }
}

int main(int argc, char **argv) {
    const char *only = NULL, *env = getenv("BENCH_THREADS");
    int i;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--full")) g_full = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else { fprintf(stderr, "usage: bench [--full] [--only attn|gemm|gemv|step|decode|options|stages|bf16]\n"); return 2; }
    }
    if (env && atoi(env) > 0) g_threads = atoi(env);
#ifdef _OPENMP
    omp_set_num_threads(g_threads);
#else
    g_threads = 1;
#endif
    lc_ctx_init(&g_ctx);
    lc_rng_seed(&g_rng, 7);
    {
        double la[3] = {0, 0, 0};
        if (getloadavg(la, 3) < 0) la[0] = -1;
        printf("lolcats bench: path %s, %d threads; load average %.2f on %ld CPUs before the run "
               "(other work on the machine skews every figure)\n", lc_simd_name(g_ctx.simd),
               g_threads, la[0], sysconf(_SC_NPROCESSORS_ONLN));
    }
    {
        const char *kn = "", *bn = "";
        double p1 = bench_peak(BENCH_PEAK_F32, 1, &kn), bf = bench_peak(BENCH_PEAK_BF16, 1, &bn);
        g_peak_f32 = bench_peak(BENCH_PEAK_F32, g_threads, &kn);
        g_peak_f32_1 = p1;
        g_peak_bf16 = bf > 0 ? (g_threads == 1 ? bf : bench_peak(BENCH_PEAK_BF16, g_threads, &bn)) : 0;
        printf("\n(0) the machine's measured peak (bench/peak.h; rows below give a fraction of it)\n"
               "    fp32 %s: %.1f GFLOP/s on 1 thread, %.1f on %d\n", kn, p1, g_peak_f32, g_threads);
        if (bf > 0) printf("    bf16 %s: %.1f GFLOP/s on 1 thread (%.2fx fp32)\n", bn, bf, bf / p1);
        else printf("    bf16 dot products: not on this CPU\n");
    }
    if (!only || !strcmp(only, "gemm")) bench_gemm();
    if (only && !strcmp(only, "gemv")) bench_gemv(load_openblas() == 0);   /* the GEMV rows alone */
    if (!only || !strcmp(only, "attn")) bench_attn();
    if (!only || !strcmp(only, "step")) bench_step();
    if (!only || !strcmp(only, "decode")) bench_decode();
    if (!only || !strcmp(only, "options")) bench_options();
    if (!only || !strcmp(only, "stages")) bench_stages();
    if (!only || !strcmp(only, "bf16")) bench_bf16_stages();
    return 0;
}
