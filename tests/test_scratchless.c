/* test_scratchless.c - kernels whose fast forms take scratch from the heap
   (the teacher's tiles and its packed K and V, the transfer pair's tiles, the
   MSE step's tasks, the feature maps' packed form) give the same results when
   every allocation is refused, or only one of them: they fall back to forms
   that need none. */
#include <stdlib.h>
// g_refuse: -1 every allocation, n > 0 the next n after g_skip let through
static int g_refuse, g_refused, g_skip;
static int refuse(void) {
    int r = 0;
#if defined(_OPENMP)
#pragma omp critical(refuse)
#endif
    {
        if (g_refuse && g_skip > 0) {
            g_skip--;
        } else if (g_refuse) {
            if (g_refuse > 0) g_refuse--;
            g_refused++;
            r = 1;
        }
    }
    return r;
}
static void *try_malloc(size_t n) { return refuse() ? NULL : malloc(n); }
static void *try_realloc(void *p, size_t n) { return refuse() ? NULL : realloc(p, n); }
#define LOLCATS_MALLOC(sz) try_malloc(sz)
#define LOLCATS_REALLOC(p, sz) try_realloc(p, sz)
#define LOLCATS_FREE(p) free(p)
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"

static lc_rng rng;

static float *randn(size_t n, float s) {
    float *p = (float *)malloc(sizeof(float) * n);
    size_t i;
    for (i = 0; i < n; i++) p[i] = s * lc_rng_normal(&rng);
    return p;
}

static float rel_diff(const float *a, const float *b, size_t n) {
    float d = 0, mx = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        d = fabsf(a[i] - b[i]) > d ? fabsf(a[i] - b[i]) : d;
        mx = fabsf(b[i]) > mx ? fabsf(b[i]) : mx;
    }
    return mx > 0 ? d / mx : d;
}

int main(void) {
    int B = 1, H = 8, Hk = 2, N = 256, D = 32, f = 8, F, run, j, simd;
    lc_ctx ctx;
    lc_fmap_cfg fm = lc_fmap_cfg_default();
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    lc__sm_plan pl;
    size_t nq, nk, nf, nr, nw;
    float *q, *k, *v, *wq, *wk, *wf, *dy, *work, *o[3][9];
    lc_rng_seed(&rng, 7);
    lc_ctx_init(&ctx);
    F = lc_fmap_out_dim(&fm, f);
    nq = (size_t)B * H * N * D; nk = (size_t)B * Hk * N * D; nf = (size_t)B * H * N * F;
    nr = (size_t)B * H * N; nw = (size_t)H * D * f;
    simd = ctx.simd != LOLCATS_SIMD_SCALAR;
#if defined(LC__X86)
    CHECK(!simd || lc__xfer_fast(&ctx, &pl, H, Hk, N, D, &hc),
          "the transfer pair's fast form applies to this case");
#else
    (void)pl;
#endif
    q = randn(nq, 1); k = randn(nk, 1); v = randn(nk, 1); dy = randn(nq, 1);
    wq = randn(nw, 0.4f); wk = randn(nw, 0.4f); wf = randn((size_t)H, 1);
    work = (float *)malloc(sizeof(float) * lc_attn_transfer_work_floats(B, H, N, D, F));
    for (run = 0; run < 3; run++) {  // as usual; every allocation refused; the first one
        size_t n[9] = {nf, nf, nq, nq, nr, nr, nf, nf, (size_t)H};
        for (j = 0; j < 9; j++) o[run][j] = (float *)calloc(n[j], sizeof(float));
        g_refuse = run == 1 ? -1 : 0;
        g_refused = 0;
        lc_fmap_fwd(&ctx, o[run][0], q, wq, NULL, B, H, H, N, D, f, &fm);
        lc_fmap_fwd(&ctx, o[run][1], k, wk, NULL, B, H, Hk, N, D, f, &fm);
        if (run == 2) g_refuse = 1;
        lc_attn_transfer_fwd(&ctx, o[run][2], NULL, o[run][3], o[run][4], o[run][5], work, q, k, v,
                             o[run][0], o[run][1], wf, B, H, Hk, N, D, F, &hc);
        lc_attn_transfer_bwd(&ctx, o[run][6], o[run][7], o[run][8], work, dy,
                             o[run][3], o[run][4], o[run][5], q, k, v, o[run][0], o[run][1], wf, B,
                             H, Hk, N, D, F, &hc);
        // the scalar path allocates nothing; the SIMD paths' first allocation in
        // lc_attn_transfer_fwd is the packed K and V
        CHECK(run == 0 ? g_refused == 0 : !simd ? g_refused == 0 : run == 1 ? g_refused > 0 : g_refused == 1,
              "run %d: %d allocations refused", run, g_refused);
        g_refuse = 0;
    }
    {
        static const char *nm[9] = {"phiq", "phik", "teacher y", "student y", "m", "den",
                                    "dphiq", "dphik", "dwf"};
        size_t n[9] = {nf, nf, nq, nq, nr, nr, nf, nf, (size_t)H};
        for (run = 1; run < 3; run++)
            for (j = 0; j < 9; j++) {
                float e = rel_diff(o[run][j], o[0][j], n[j]);
                CHECK(e <= 1e-5f, "%s: %s off the usual result by %g of its largest entry",
                      run == 1 ? "no scratch" : "no packed K, V", nm[j], (double)e);
            }
    }
    printf("  without heap scratch, or without the packed K and V: as usual\n");
    // the MSE step: as usual; every allocation refused; the second (its packed
    // K and V: tiles pack block by block); the third (V's panels for the
    // sweeps: packed block by block); the fourth (a task's scratch: all by the
    // calls it stands for)
    {
        float *r[5][5];
        double loss[5];
        static const char *nm[5] = {"teacher y", "dphiq", "dphik", "dwf", "student y"};
        size_t n[5] = {nq, nf, nf, (size_t)H, nq};
        for (run = 0; run < 5; run++) {
            for (j = 0; j < 5; j++) r[run][j] = (float *)calloc(n[j], sizeof(float));
            g_refuse = run == 1 ? -1 : run > 1;
            g_skip = run > 1 ? run - 1 : 0;
            g_refused = 0;
            loss[run] = lc_attn_transfer_mse(&ctx, r[run][0], NULL, r[run][4], NULL, NULL,
                                             r[run][1], r[run][2], r[run][3], work, q, k, v,
                                             o[0][0], o[0][1], wf, B, H, Hk, N, D, F, 1000.0f, &hc);
            CHECK(run == 0 || !simd ? g_refused == 0 : run == 1 ? g_refused > 0 : g_refused == 1,
                  "MSE step run %d: %d allocations refused", run, g_refused);
            g_refuse = g_skip = 0;
        }
        for (run = 1; run < 5; run++) {
            CHECK(fabs(loss[run] - loss[0]) <= 1e-5 * loss[0], "MSE step run %d: loss %.9g, usually %.9g",
                  run, loss[run], loss[0]);
            for (j = 0; j < 5; j++) {
                float e = rel_diff(r[run][j], r[0][j], n[j]);
                CHECK(e <= 1e-5f, "MSE step run %d: %s off the usual result by %g of its largest entry",
                      run, nm[j], (double)e);
            }
        }
        for (run = 0; run < 5; run++)
            for (j = 0; j < 5; j++) free(r[run][j]);
        printf("  the MSE step without its scratch, its packed K and V, V's panels or a task's "
               "scratch: as usual\n");
    }
    for (run = 0; run < 3; run++)
        for (j = 0; j < 9; j++) free(o[run][j]);
    free(q); free(k); free(v); free(dy); free(wq); free(wk); free(wf); free(work);
    return check_done();
}
