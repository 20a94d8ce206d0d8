/* test_scratchless.c - kernels whose fast forms take scratch from the heap
   (the teacher's tiles, the transfer pair's tiles, the feature maps' packed
   form) give the same results when every allocation is refused: they fall
   back to forms that need none. */
#include <stdlib.h>
static int g_refuse;
static void *try_malloc(size_t n) { return g_refuse ? NULL : malloc(n); }
static void *try_realloc(void *p, size_t n) { return g_refuse ? NULL : realloc(p, n); }
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
    int B = 1, H = 8, Hk = 2, N = 256, D = 32, f = 8, F, run, j;
    lc_ctx ctx;
    lc_fmap_cfg fm = lc_fmap_cfg_default();
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    lc__sm_plan pl;
    size_t nq, nk, nf, nr, nw;
    float *q, *k, *v, *wq, *wk, *wf, *dy, *work, *o[2][9];
    lc_rng_seed(&rng, 7);
    lc_ctx_init(&ctx);
    F = lc_fmap_out_dim(&fm, f);
    nq = (size_t)B * H * N * D; nk = (size_t)B * Hk * N * D; nf = (size_t)B * H * N * F;
    nr = (size_t)B * H * N; nw = (size_t)H * D * f;
    CHECK(ctx.simd == LOLCATS_SIMD_SCALAR || lc__xfer_fast(&ctx, &pl, H, Hk, N, D, &hc),
          "the transfer pair's fast form applies to this case");
    q = randn(nq, 1); k = randn(nk, 1); v = randn(nk, 1); dy = randn(nq, 1);
    wq = randn(nw, 0.4f); wk = randn(nw, 0.4f); wf = randn((size_t)H, 1);
    work = (float *)malloc(sizeof(float) * lc_attn_transfer_work_floats(B, H, N, D, F));
    for (run = 0; run < 2; run++) {  // 0: as usual; 1: every allocation refused
        size_t n[9] = {nf, nf, nq, nq, nr, nr, nf, nf, (size_t)H};
        for (j = 0; j < 9; j++) o[run][j] = (float *)calloc(n[j], sizeof(float));
        g_refuse = run;
        lc_fmap_fwd(&ctx, o[run][0], q, wq, NULL, B, H, H, N, D, f, &fm);
        lc_fmap_fwd(&ctx, o[run][1], k, wk, NULL, B, H, Hk, N, D, f, &fm);
        lc_attn_transfer_fwd(&ctx, o[run][2], NULL, o[run][3], o[run][4], o[run][5], work, q, k, v,
                             o[run][0], o[run][1], wf, B, H, Hk, N, D, F, &hc);
        lc_attn_transfer_bwd(&ctx, o[run][6], o[run][7], o[run][8], work, dy,
                             o[run][3], o[run][4], o[run][5], q, k, v, o[run][0], o[run][1], wf, B,
                             H, Hk, N, D, F, &hc);
        g_refuse = 0;
    }
    {
        static const char *nm[9] = {"phiq", "phik", "teacher y", "student y", "m", "den",
                                    "dphiq", "dphik", "dwf"};
        size_t n[9] = {nf, nf, nq, nq, nr, nr, nf, nf, (size_t)H};
        for (j = 0; j < 9; j++) {
            float e = rel_diff(o[1][j], o[0][j], n[j]);
            CHECK(e <= 1e-5f, "no scratch: %s off the usual result by %g of its largest entry",
                  nm[j], (double)e);
        }
    }
    printf("  without heap scratch: feature maps and the transfer pair as usual\n");
    for (run = 0; run < 2; run++)
        for (j = 0; j < 9; j++) free(o[run][j]);
    free(q); free(k); free(v); free(dy); free(wq); free(wk); free(wf); free(work);
    return check_done();
}
