/* test_kernels.c - consistency of the kernels with each other:
   SIMD path vs scalar reference at odd sizes, quadratic vs state form of
   linear attention, token-by-token decode vs sw prefill, the masks vs the
   spec, loss gradients vs finite differences, AdamW vs PyTorch's formula,
   and bit-identical results for any OpenMP thread count. */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "naive.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static lc_rng rng;

static float *randn(size_t n, float scale) {
    float *p = (float *)malloc(sizeof(float) * (n ? n : 1));
    size_t i;
    for (i = 0; i < n; i++) p[i] = lc_rng_normal(&rng) * scale;
    return p;
}

typedef struct {
    lc_ref_case rc;
    float *buf[12];
} kcase;

static kcase make(int op, int B, int H, int Hk, int N, int D, int f, int variant, int w) {
    kcase c;
    int F;
    memset(&c, 0, sizeof c);
    c.rc = lc_ref_case_default();
    c.rc.op = op;
    c.rc.B = B; c.rc.H = H; c.rc.Hk = Hk; c.rc.N = N; c.rc.D = D; c.rc.f = f;
    c.rc.hybrid.variant = variant;
    c.rc.hybrid.window = w;
    F = lc_fmap_out_dim(&c.rc.fmap, f);
    c.rc.q = c.buf[0] = randn((size_t)B * H * N * D, 1.0f);
    c.rc.k = c.buf[1] = randn((size_t)B * Hk * N * D, 1.0f);
    c.rc.v = c.buf[2] = randn((size_t)B * Hk * N * D, 1.0f);
    c.rc.wq = c.buf[3] = randn((size_t)H * D * f, 0.4f);
    c.rc.wk = c.buf[4] = randn((size_t)H * D * f, 0.4f);
    c.rc.wf = c.buf[5] = randn((size_t)H, 1.0f);
    c.rc.dy = c.buf[6] = randn((size_t)B * H * N * D, 1.0f);
    if (op != LOLCATS_OP_LINEAR) c.rc.da = c.buf[7] = randn((size_t)B * H * N * N, 1.0f);
    (void)F;
    return c;
}

static void unmake(kcase *c) {
    int i;
    for (i = 0; i < 12; i++) free(c->buf[i]);
}

static size_t n_of(const lc_ref_case *rc, int which) {
    size_t q = (size_t)rc->B * rc->H * rc->N * rc->D, k = (size_t)rc->B * rc->Hk * rc->N * rc->D;
    switch (which) {
    case 0: return q;
    case 1: return (size_t)rc->B * rc->H * rc->N * rc->N;
    case 2: return q;
    case 3: case 4: return k;
    case 5: case 6: return (size_t)rc->H * rc->D * rc->f;
    default: return (size_t)rc->H;
    }
}

/* compare every output of two lc_ref_eval runs */
static void compare_outs(const char *tag, const lc_ref_case *rc, const lc_ref_out *a,
                         const lc_ref_out *b, double rtol) {
    const float *pa[8] = {a->y, a->a, a->dq, a->dk, a->dv, a->dwq, a->dwk, a->dwf};
    const float *pb[8] = {b->y, b->a, b->dq, b->dk, b->dv, b->dwq, b->dwk, b->dwf};
    static const char *nm[8] = {"y", "a", "dq", "dk", "dv", "d_wq", "d_wk", "d_wf"};
    char what[200];
    int i;
    for (i = 0; i < 8; i++) {
        size_t n = n_of(rc, i), j;
        double scale = 0;
        if (!pa[i] && !pb[i]) continue;
        if (!CHECK(pa[i] && pb[i], "%s %s: present in one run only", tag, nm[i])) continue;
        for (j = 0; j < n; j++)
            if (fabs((double)pb[i][j]) > scale) scale = fabs((double)pb[i][j]);
        snprintf(what, sizeof what, "%s %s", tag, nm[i]);
        check_close(what, pa[i], pb[i], n, rtol * (scale > 1 ? scale : 1), rtol);
    }
}

/* whether SIMD level runs on this CPU: x86 levels nest (AVX-512 machines run
   AVX2 too); NEON stands alone */
static int level_runs(int level, int best) {
    return level == LOLCATS_SIMD_NEON ? best == level : best != LOLCATS_SIMD_NEON && level <= best;
}

/* The stacked softmax tiles and the packed feature-map forms against the
   scalar reference, at the GQA ratios that choose different stackings (1, 2,
   3, 4, 6, 8, 16 query heads per kv head), row counts across the tile edges,
   odd head widths, with and without bias / dX. */
static void tiles_vs_scalar(const lc_ctx *simd, const lc_ctx *ref) {
    static const int shapes[][5] = {  /* B, H, Hk, N, D */
        {1, 1, 1, 1, 8},   {1, 2, 1, 63, 13}, {2, 3, 1, 64, 16}, {1, 4, 1, 65, 17},
        {1, 8, 2, 127, 9}, {1, 6, 1, 129, 20}, {1, 16, 1, 71, 8}, {1, 4, 4, 257, 33},
        {2, 8, 2, 300, 64}};
    int level = simd->simd, si;
    printf("softmax tiles and packed feature maps (%s) vs scalar\n", lc_simd_name(level));
    for (si = 0; si < (int)(sizeof shapes / sizeof shapes[0]); si++) {
        int B = shapes[si][0], H = shapes[si][1], Hk = shapes[si][2], N = shapes[si][3];
        int D = shapes[si][4], f = 3 + si * 5, F, bias = si % 2;
        lc_fmap_cfg fm = lc_fmap_cfg_default();
        size_t nq = (size_t)B * H * N * D, nk = (size_t)B * Hk * N * D, nf, nw = (size_t)H * D * f;
        float *q = randn(nq, 1.5f), *k = randn(nk, 1.5f), *v = randn(nk, 1);
        float *y1 = randn(nq, 0), *y2 = randn(nq, 0);
        float *l1 = randn((size_t)B * H * N, 0), *l2 = randn((size_t)B * H * N, 0);
        float *w = randn(nw, 0.3f), *bb = randn((size_t)H, 0.5f), *p1, *p2, *dphi;
        float *dw1 = randn(nw, 0), *dw2 = randn(nw, 0), *dx1 = randn(nk, 0), *dx2 = randn(nk, 0);
        float *db1 = randn((size_t)H, 0), *db2 = randn((size_t)H, 0);
        char what[160];
        F = lc_fmap_out_dim(&fm, f);
        nf = (size_t)B * H * N * F;
        p1 = randn(nf, 0); p2 = randn(nf, 0); dphi = randn(nf, 1);
        lc_attn_softmax_fwd(simd, y1, l1, q, k, v, B, H, Hk, N, D);
        lc_attn_softmax_fwd(ref, y2, l2, q, k, v, B, H, Hk, N, D);
        snprintf(what, sizeof what, "[%s] softmax y B=%d H=%d/%d N=%d D=%d", lc_simd_name(level),
                 B, H, Hk, N, D);
        check_close(what, y1, y2, nq, 1e-5, 1e-4);
        snprintf(what, sizeof what, "[%s] softmax lse H=%d/%d N=%d", lc_simd_name(level), H, Hk, N);
        check_close(what, l1, l2, (size_t)B * H * N, 1e-5, 1e-5);
        lc_fmap_fwd(simd, p1, k, w, bias ? bb : NULL, B, H, Hk, N, D, f, &fm);
        lc_fmap_fwd(ref, p2, k, w, bias ? bb : NULL, B, H, Hk, N, D, f, &fm);
        snprintf(what, sizeof what, "[%s] fmap phi H=%d/%d N=%d D=%d f=%d", lc_simd_name(level),
                 H, Hk, N, D, f);
        check_close(what, p1, p2, nf, 1e-6, 1e-4);
        lc_fmap_bwd(simd, si % 3 ? dx1 : NULL, dw1, bias ? db1 : NULL, dphi, k, w,
                    bias ? bb : NULL, B, H, Hk, N, D, f, &fm);
        lc_fmap_bwd(ref, si % 3 ? dx2 : NULL, dw2, bias ? db2 : NULL, dphi, k, w,
                    bias ? bb : NULL, B, H, Hk, N, D, f, &fm);
        snprintf(what, sizeof what, "[%s] fmap dW H=%d/%d N=%d", lc_simd_name(level), H, Hk, N);
        check_close(what, dw1, dw2, nw, 1e-5, 1e-4);
        if (si % 3) {
            snprintf(what, sizeof what, "[%s] fmap dX H=%d/%d N=%d", lc_simd_name(level), H, Hk, N);
            check_close(what, dx1, dx2, nk, 1e-5, 1e-4);
        }
        if (bias) {
            snprintf(what, sizeof what, "[%s] fmap dbias H=%d/%d N=%d", lc_simd_name(level), H, Hk, N);
            check_close(what, db1, db2, (size_t)H, 1e-5, 1e-4);
        }
        free(q); free(k); free(v); free(y1); free(y2); free(l1); free(l2); free(w); free(bb);
        free(p1); free(p2); free(dphi); free(dw1); free(dw2); free(dx1); free(dx2);
        free(db1); free(db2);
    }
}

static void simd_vs_scalar(void) {
    static const int Ns[] = {1, 7, 63, 64, 65, 127, 128, 129, 257};
    lc_ctx simd, ref;
    int ni, op, level, best = lc_simd_detect(), tested = 0;
    lc_ctx_init(&ref);
    ref.simd = LOLCATS_SIMD_SCALAR;
    for (level = LOLCATS_SIMD_AVX2; level <= LOLCATS_SIMD_NEON; level++) {
        if (!level_runs(level, best)) continue;
        simd = ref;
        simd.simd = level;
        tested++;
        printf("SIMD (%s) vs scalar reference at odd sizes\n", lc_simd_name(level));
        for (op = 0; op < 3; op++)
            for (ni = 0; ni < 9; ni++) {
                int N = Ns[ni];
                kcase c = make(op, 1, 4, 2, N, 13, 7, ni % 2 ? LOLCATS_WINDOW_SW : LOLCATS_WINDOW_TK, 16);
                lc_ref_out oa, ob;
                lc_error err;
                char tag[64];
                if (N > 129 && op == LOLCATS_OP_LINEAR) { unmake(&c); continue; }
                if (op == LOLCATS_OP_HYBRID && ni % 3) c.rc.da = NULL;  /* prefix-state form */
                snprintf(tag, sizeof tag, "[%s] op%d N=%d", lc_simd_name(level), op, N);
                CHECK(lc_ref_eval(&simd, &c.rc, &oa, &err) == 0, "%s", err.msg);
                CHECK(lc_ref_eval(&ref, &c.rc, &ob, &err) == 0, "%s", err.msg);
                compare_outs(tag, &c.rc, &oa, &ob, 2e-5);
                lc_ref_out_free(&oa);
                lc_ref_out_free(&ob);
                unmake(&c);
            }
        tiles_vs_scalar(&simd, &ref);
    }
    if (!tested) printf("SKIPPED: SIMD vs scalar (no SIMD path in this build or on this CPU)\n");
}

static void linear_forms_agree(void) {
    static const int Ns[] = {1, 7, 64, 65, 130};
    lc_ctx ctx;
    int ni, sp;
    lc_ctx_init(&ctx);
    printf("linear attention: quadratic form vs causal state form\n");
    for (sp = 0; sp < 2; sp++) {
        if (sp) ctx.simd = LOLCATS_SIMD_SCALAR;
        for (ni = 0; ni < 5; ni++) {
            kcase c = make(LOLCATS_OP_LINEAR, 2, 4, 2, Ns[ni], 9, 5, 0, 0);
            lc_ref_out oa, ob;
            lc_error err;
            char tag[64];
            snprintf(tag, sizeof tag, "[%s] N=%d quad vs state", lc_simd_name(ctx.simd), Ns[ni]);
            CHECK(lc_ref_eval(&ctx, &c.rc, &oa, &err) == 0, "%s", err.msg);
            c.rc.linear_state = 1;
            CHECK(lc_ref_eval(&ctx, &c.rc, &ob, &err) == 0, "%s", err.msg);
            compare_outs(tag, &c.rc, &ob, &oa, 2e-5);
            lc_ref_out_free(&oa);
            lc_ref_out_free(&ob);
            unmake(&c);
        }
    }
}

/* decode token by token == sw prefill (same window, no eps in either) */
static void decode_vs_prefill(int H, int Hk, int N, int D, int f, int w, int affine, int simd) {
    lc_ctx ctx;
    lc_fmap_cfg fm = lc_fmap_cfg_default();
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    int F = lc_fmap_out_dim(&fm, f), i, h, g;
    size_t nq = (size_t)H * N * D, nk = (size_t)Hk * N * D;
    float *q = randn(nq, 1), *k = randn(nk, 1), *v = randn(nk, 1);
    float *wq = randn((size_t)H * D * f, 0.4f), *wk = randn((size_t)H * D * f, 0.4f);
    float *wf = randn((size_t)H, 1), *phiq = randn((size_t)H * N * F, 0), *phik = randn((size_t)H * N * F, 0);
    float *y = randn(nq, 0), *yd = randn(nq, 0), *m = randn((size_t)H * N, 0), *den = randn((size_t)H * N, 0);
    float *mem = (float *)malloc(sizeof(float) * lc_decode_state_floats(H, Hk, D, F, w));
    float *qt = randn((size_t)H * D, 0), *kt = randn((size_t)Hk * D, 0), *vt = randn((size_t)Hk * D, 0);
    float *pq = randn((size_t)H * F, 0), *pk = randn((size_t)H * F, 0), *yt = randn((size_t)H * D, 0);
    lc_decode_state st;
    char what[128];
    lc_ctx_init(&ctx);
    if (!simd) ctx.simd = LOLCATS_SIMD_SCALAR;
    hc.variant = LOLCATS_WINDOW_SW;
    hc.window = w;
    hc.affine = affine;
    lc_fmap_fwd(&ctx, phiq, q, wq, NULL, 1, H, H, N, D, f, &fm);
    lc_fmap_fwd(&ctx, phik, k, wk, NULL, 1, H, Hk, N, D, f, &fm);
    lc_attn_hybrid_fwd(&ctx, y, NULL, m, den, NULL, q, k, v, phiq, phik, wf, NULL, NULL, 1, H, Hk, N, D, F, &hc);
    lc_decode_state_init(&st, mem, H, Hk, D, F, w);
    for (i = 0; i < N; i++) {
        for (h = 0; h < H; h++) memcpy(qt + (size_t)h * D, q + ((size_t)h * N + i) * D, sizeof(float) * D);
        for (g = 0; g < Hk; g++) {
            memcpy(kt + (size_t)g * D, k + ((size_t)g * N + i) * D, sizeof(float) * D);
            memcpy(vt + (size_t)g * D, v + ((size_t)g * N + i) * D, sizeof(float) * D);
        }
        lc_fmap_fwd(&ctx, pq, qt, wq, NULL, 1, H, H, 1, D, f, &fm);
        lc_fmap_fwd(&ctx, pk, kt, wk, NULL, 1, H, Hk, 1, D, f, &fm);
        lc_attn_hybrid_decode(&ctx, yt, &st, qt, kt, vt, pq, pk, wf, affine);
        for (h = 0; h < H; h++) memcpy(yd + ((size_t)h * N + i) * D, yt + (size_t)h * D, sizeof(float) * D);
    }
    snprintf(what, sizeof what, "[%s] decode vs sw prefill H=%d/%d N=%d w=%d%s", lc_simd_name(ctx.simd),
             H, Hk, N, w, affine ? " affine" : "");
    check_close(what, yd, y, nq, 1e-5, 1e-4);
    CHECK(st.pos == N, "decode position %d after %d tokens", (int)st.pos, N);
    free(q); free(k); free(v); free(wq); free(wk); free(wf); free(phiq); free(phik); free(y);
    free(yd); free(m); free(den); free(mem); free(qt); free(kt); free(vt); free(pq); free(pk); free(yt);
}

static void masks_match_spec(void) {
    static const int Ns[] = {1, 5, 11, 16, 17, 29, 32, 33, 71, 100};
    int v, ni, w, i, j, bad = 0, total = 0;
    for (v = 0; v < 2; v++)
        for (w = 1; w <= 16; w *= 4)
            for (ni = 0; ni < 10; ni++) {
                naive_dims s;
                lc_hybrid_cfg hc = lc_hybrid_cfg_default();
                memset(&s, 0, sizeof s);
                s.N = Ns[ni]; s.window = w; s.variant = v;
                hc.variant = v; hc.window = w;
                for (i = 0; i < s.N; i++)
                    for (j = 0; j < s.N; j++) {
                        int win, lin, m = lc_hybrid_mask(&hc, s.N, i, j);
                        naive_mask(&s, i, j, &win, &lin);
                        total++;
                        bad += m != (win | (lin << 1));
                    }
            }
    CHECK(bad == 0, "masks: %d of %d entries differ from the spec", bad, total);
    {   /* the documented quirks, spelled out */
        lc_hybrid_cfg hc = lc_hybrid_cfg_default();
        hc.window = 16;
        CHECK(lc_hybrid_mask(&hc, 11, 10, 0) == 3, "tk N<=w: key 0 must be window AND linear");
        CHECK(lc_hybrid_mask(&hc, 29, 28, 0) == 1, "tk w<N<=2w: every key is window");
        CHECK(lc_hybrid_mask(&hc, 71, 70, 0) == 2 && lc_hybrid_mask(&hc, 71, 70, 39) == 1 &&
                  lc_hybrid_mask(&hc, 71, 70, 38) == 2,
              "tk N=71 w=16: last query sees keys 39..70 in its window");
    }
    printf("  masks vs spec: %d entries checked\n", total);
}

static void losses(void) {
    size_t n = 37, rows = 6, i;
    int cols = 9;
    float *p = randn(n, 1), *t = randn(n, 1), *g = randn(n, 0), *fd = randn(n, 0);
    float *ap = randn(rows * cols, 0), *at = randn(rows * cols, 0), *ga = randn(rows * cols, 0);
    double L;
    for (i = 0; i < n; i++) {
        double h = 1e-3, lp, lm;
        float keep = p[i];
        p[i] = keep + (float)h; lp = lc_loss_mse(NULL, p, t, n, 1000.0f);
        p[i] = keep - (float)h; lm = lc_loss_mse(NULL, p, t, n, 1000.0f);
        p[i] = keep;
        fd[i] = (float)((lp - lm) / (double)(((keep + (float)h) - (keep - (float)h))));
    }
    L = lc_loss_mse(g, p, t, n, 1000.0f);
    CHECK(L > 0, "mse loss positive");
    check_close("mse gradient vs finite differences", g, fd, n, 1e-2, 1e-3);
    /* rows of attention-like weights: softmax rows with some exact zeros */
    for (i = 0; i < rows; i++) {
        int j;
        double sp = 0, st = 0;
        for (j = 0; j < cols; j++) {
            ap[i * cols + j] = j <= (int)i ? (float)exp((double)lc_rng_normal(&rng)) : 0.0f;
            at[i * cols + j] = j <= (int)i ? (float)exp((double)lc_rng_normal(&rng)) : 0.0f;
            sp += (double)ap[i * cols + j];
            st += (double)at[i * cols + j];
        }
        for (j = 0; j < cols; j++) {
            ap[i * cols + j] = (float)((double)ap[i * cols + j] / sp);
            at[i * cols + j] = (float)((double)at[i * cols + j] / st);
        }
    }
    L = lc_loss_xent(ga, ap, at, rows, cols, 1.0f);
    {
        double ok = 1, e = 0;
        int j;
        for (i = 0; i < rows; i++) { /* closed form: -sum t log a~ + log sum a~ */
            double sa = 0;
            for (j = 0; j < cols; j++) {
                float a = ap[i * cols + j] < 1e-12f ? 1e-12f : ap[i * cols + j];
                sa += (double)a;
                e -= (double)at[i * cols + j] * log((double)a);
            }
            e += log(sa);
        }
        e /= (double)rows;
        ok = fabs(e - L) < 1e-9 * fabs(e) + 1e-12;
        CHECK(ok, "xent value %.12g vs closed form %.12g", L, e);
        for (i = 0; i < rows * cols; i++) {
            if (ap[i] == 0) { CHECK(ga[i] == 0, "xent gradient must be 0 below the clamp"); continue; }
            {
                float keep = ap[i], h = 1e-4f * keep;
                double lp, lm;
                ap[i] = keep + h; lp = lc_loss_xent(NULL, ap, at, rows, cols, 1.0f);
                ap[i] = keep - h; lm = lc_loss_xent(NULL, ap, at, rows, cols, 1.0f);
                ap[i] = keep;
                fd[0] = (float)((lp - lm) / (double)((keep + h) - (keep - h)));
                CHECK(fabs((double)(fd[0] - ga[i])) <= 2e-3 * fabs((double)fd[0]) + 1e-3,
                      "xent gradient [%zu]: %g vs fd %g", i, (double)ga[i], (double)fd[0]);
            }
        }
    }
    free(p); free(t); free(g); free(fd); free(ap); free(at); free(ga);
}

static void adamw(void) {
    float p[3] = {0.5f, -1.0f, 2.0f}, m[3] = {0, 0, 0}, v[3] = {0, 0, 0};
    double pd[3] = {0.5, -1.0, 2.0}, md[3] = {0, 0, 0}, vd[3] = {0, 0, 0};
    lc_adamw_cfg cfg = lc_adamw_cfg_default();
    int t, i, ok = 1;
    cfg.weight_decay = 0.01f;
    for (t = 1; t <= 5; t++) {
        float g[3];
        for (i = 0; i < 3; i++) g[i] = (float)(0.3 * t - (double)i);
        lc_adamw_step(p, g, m, v, 3, &cfg, t);
        for (i = 0; i < 3; i++) { /* torch.optim.AdamW in double */
            double lr = (double)cfg.lr, b1 = (double)cfg.beta1, b2 = (double)cfg.beta2;
            pd[i] *= 1 - lr * (double)cfg.weight_decay;
            md[i] = b1 * md[i] + (1 - b1) * (double)g[i];
            vd[i] = b2 * vd[i] + (1 - b2) * (double)g[i] * (double)g[i];
            pd[i] -= lr / (1 - pow(b1, t)) * md[i] /
                     (sqrt(vd[i]) / sqrt(1 - pow(b2, t)) + (double)cfg.eps);
        }
    }
    for (i = 0; i < 3; i++) ok &= fabs((double)p[i] - pd[i]) < 1e-6;
    CHECK(ok, "AdamW after 5 steps: %g %g %g vs %g %g %g", (double)p[0], (double)p[1],
          (double)p[2], pd[0], pd[1], pd[2]);
}

static void thread_invariance(void) {
#ifdef _OPENMP
    kcase c = make(LOLCATS_OP_HYBRID, 3, 4, 1, 70, 8, 4, LOLCATS_WINDOW_TK, 16);  /* B > 1: shared dwf */
    lc_ref_out oa, ob;
    lc_ctx ctx;
    lc_error err;
    int nt = omp_get_max_threads();
    lc_ctx_init(&ctx);
    omp_set_num_threads(1);
    lc_ref_eval(&ctx, &c.rc, &oa, &err);
    omp_set_num_threads(3);
    lc_ref_eval(&ctx, &c.rc, &ob, &err);
    omp_set_num_threads(nt);
    CHECK(!memcmp(oa.y, ob.y, sizeof(float) * n_of(&c.rc, 0)) &&
              !memcmp(oa.dk, ob.dk, sizeof(float) * n_of(&c.rc, 3)) &&
              !memcmp(oa.dwq, ob.dwq, sizeof(float) * n_of(&c.rc, 5)) &&
              !memcmp(oa.dwf, ob.dwf, sizeof(float) * n_of(&c.rc, 7)),
          "results differ between 1 and 3 OpenMP threads");
    lc_ref_out_free(&oa);
    lc_ref_out_free(&ob);
    unmake(&c);
#else
    printf("SKIPPED: thread invariance (built without OpenMP)\n");
#endif
}

/* numerical guards: 100k tokens of decode and of prefill keep everything
   finite (the window max is subtracted, the state is fp32) */
static void long_sequences(void) {
    enum { H = 2, HK = 1, D = 8, FD = 4, W = 16 };
    enum { F = 2 * FD };
    int N = 100000, i, h, bad = 0;
    lc_ctx ctx;
    lc_fmap_cfg fm = lc_fmap_cfg_default();
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    float *wq = randn((size_t)H * D * FD, 0.4f), *wk = randn((size_t)H * D * FD, 0.4f), *wf = randn(H, 1);
    float *mem = (float *)malloc(sizeof(float) * lc_decode_state_floats(H, HK, D, F, W));
    float q[H * D], k[HK * D], v[HK * D], pq[H * F], pk[H * F], y[H * D];
    lc_decode_state st;
    lc_ctx_init(&ctx);
    lc_decode_state_init(&st, mem, H, HK, D, F, W);
    for (i = 0; i < N; i++) {
        int j;
        for (j = 0; j < H * D; j++) q[j] = 3.0f * lc_rng_normal(&rng);
        for (j = 0; j < HK * D; j++) { k[j] = 3.0f * lc_rng_normal(&rng); v[j] = lc_rng_normal(&rng); }
        lc_fmap_fwd(&ctx, pq, q, wq, NULL, 1, H, H, 1, D, FD, &fm);
        lc_fmap_fwd(&ctx, pk, k, wk, NULL, 1, H, HK, 1, D, FD, &fm);
        lc_attn_hybrid_decode(&ctx, y, &st, q, k, v, pq, pk, wf, 0);
        for (h = 0; h < H * D; h++) bad += !(y[h] == y[h] && fabsf(y[h]) < 1e6f);
    }
    for (h = 0; h < H * F; h++) bad += !(st.z[h] == st.z[h] && st.z[h] < 3e38f);
    CHECK(bad == 0, "decode of %d tokens: %d non-finite outputs or state entries", N, bad);
    {   /* prefill of 100k tokens through the prefix-state form */
        size_t nq = (size_t)H * N * D, nk = (size_t)HK * N * D;
        float *Q = randn(nq, 3), *K = randn(nk, 3), *V = randn(nk, 1), *Y = (float *)malloc(sizeof(float) * nq);
        float *PQ = (float *)malloc(sizeof(float) * (size_t)H * N * F), *PK = (float *)malloc(sizeof(float) * (size_t)H * N * F);
        float *M = (float *)malloc(sizeof(float) * (size_t)H * N), *DEN = (float *)malloc(sizeof(float) * (size_t)H * N);
        float *work = (float *)malloc(sizeof(float) * lc_attn_hybrid_work_floats(1, H, D, F));
        size_t j;
        hc.window = W;
        lc_fmap_fwd(&ctx, PQ, Q, wq, NULL, 1, H, H, N, D, FD, &fm);
        lc_fmap_fwd(&ctx, PK, K, wk, NULL, 1, H, HK, N, D, FD, &fm);
        lc_attn_hybrid_fwd(&ctx, Y, NULL, M, DEN, work, Q, K, V, PQ, PK, wf, NULL, NULL, 1, H, HK, N, D, F, &hc);
        bad = 0;
        for (j = 0; j < nq; j++) bad += !(Y[j] == Y[j] && fabsf(Y[j]) < 1e6f);
        CHECK(bad == 0, "prefill of %d tokens: %d non-finite outputs", N, bad);
        free(Q); free(K); free(V); free(Y); free(PQ); free(PK); free(M); free(DEN); free(work);
    }
    printf("  100k-token decode and prefill: finite\n");
    free(wq); free(wk); free(wf); free(mem);
}

/* lc_attn_hybrid_bwd with dq, dk, dv = NULL (what attention transfer asks for)
   gives the feature-map and window-factor gradients of the full call, in each
   of its three forms (chunked, row state form for windows past the chunk
   limit, quadratic reference). The chunked form then skips the window part and
   takes the window factors' gradient from the linear part (see
   lc__hybrid_bwd_chunk): equal within rounding, the rest bit for bit. */
static void bwd_without_input_grads(void) {
    static const int windows[5] = {16, 160, 16, 16, 16};
    lc_ctx ctx;
    int form;
    lc_ctx_init(&ctx);
    for (form = 0; form < 5; form++) {
        int B = 2, H = 4, Hk = 2, N = 200, D = 9, f = 5, F, w = windows[form];
        kcase c = make(LOLCATS_OP_HYBRID, B, H, Hk, N, D, f,
                       form == 3 ? LOLCATS_WINDOW_SW : LOLCATS_WINDOW_TK, w);
        lc_hybrid_cfg hc = c.rc.hybrid;
        float dmax = 0, gmax = 0;
        if (form == 4) hc.affine = 1;
        size_t nq = (size_t)B * H * N * D, nk = (size_t)B * Hk * N * D, nf;
        float *phiq, *phik, *y, *m, *den, *work, *g1[3], *g2[3], *dq, *dk, *dv;
        int i;
        F = lc_fmap_out_dim(&c.rc.fmap, f);
        nf = (size_t)B * H * N * F;
        phiq = (float *)malloc(sizeof(float) * nf); phik = (float *)malloc(sizeof(float) * nf);
        y = (float *)malloc(sizeof(float) * nq);
        m = (float *)malloc(sizeof(float) * (size_t)B * H * N);
        den = (float *)malloc(sizeof(float) * (size_t)B * H * N);
        work = form == 2 ? NULL : (float *)malloc(sizeof(float) * lc_attn_hybrid_work_floats(B, H, D, F));
        dq = (float *)calloc(nq, sizeof(float)); dk = (float *)calloc(nk, sizeof(float));
        dv = (float *)calloc(nk, sizeof(float));
        for (i = 0; i < 3; i++) {
            size_t n = i < 2 ? nf : (size_t)H;
            g1[i] = (float *)calloc(n, sizeof(float));
            g2[i] = (float *)calloc(n, sizeof(float));
        }
        lc_fmap_fwd(&ctx, phiq, c.rc.q, c.rc.wq, NULL, B, H, H, N, D, f, &c.rc.fmap);
        lc_fmap_fwd(&ctx, phik, c.rc.k, c.rc.wk, NULL, B, H, Hk, N, D, f, &c.rc.fmap);
        lc_attn_hybrid_fwd(&ctx, y, NULL, m, den, work, c.rc.q, c.rc.k, c.rc.v, phiq, phik, c.rc.wf,
                           NULL, NULL, B, H, Hk, N, D, F, &hc);
        lc_attn_hybrid_bwd(&ctx, dq, dk, dv, g1[0], g1[1], g1[2], NULL, NULL, work, c.rc.dy, NULL,
                           y, m, den, c.rc.q, c.rc.k, c.rc.v, phiq, phik, c.rc.wf, NULL, NULL, B,
                           H, Hk, N, D, F, &hc);
        lc_attn_hybrid_bwd(&ctx, NULL, NULL, NULL, g2[0], g2[1], g2[2], NULL, NULL, work, c.rc.dy,
                           NULL, y, m, den, c.rc.q, c.rc.k, c.rc.v, phiq, phik, c.rc.wf, NULL,
                           NULL, B, H, Hk, N, D, F, &hc);
        for (i = 0; i < H; i++) {
            float d = fabsf(g1[2][i] - g2[2][i]);
            dmax = d > dmax ? d : dmax;
            gmax = fabsf(g1[2][i]) > gmax ? fabsf(g1[2][i]) : gmax;
        }
        CHECK(!memcmp(g1[0], g2[0], sizeof(float) * nf) && !memcmp(g1[1], g2[1], sizeof(float) * nf),
              "hybrid backward form %d (w %d): dq/dk/dv = NULL changes the feature-map gradients",
              form, w);
        CHECK(gmax > 0 && (form == 0 || form >= 3 ? dmax <= 1e-4f * gmax : dmax == 0),
              "hybrid backward form %d (w %d): dq/dk/dv = NULL moves the window-factor gradient "
              "by %g (largest %g)", form, w, (double)dmax, (double)gmax);
        for (i = 0; i < 3; i++) { free(g1[i]); free(g2[i]); }
        free(phiq); free(phik); free(y); free(m); free(den); free(work); free(dq); free(dk); free(dv);
        unmake(&c);
    }
    printf("  hybrid backward without input gradients: same feature-map and window gradients\n");
}

static float rel_diff(const float *a, const float *b, size_t n) {
    float d = 0, mx = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        float e = fabsf(a[i] - b[i]);
        d = e > d ? e : d;
        mx = fabsf(b[i]) > mx ? fabsf(b[i]) : mx;
    }
    return mx > 0 ? d / mx : d;
}

// rel_diff for the window-factor gradient: its scale floored at 1, since where
// every key is in the window (N = 2 w) it is 0 by the math and the scalar
// definition's is rounding (~1e-6) where the fast forms' is exactly 0.
static float rel_diff_dwf(const float *a, const float *b, size_t n) {
    float mx = 0, r = rel_diff(a, b, n);  // max |a - b| / mx when mx > 0
    size_t i;
    for (i = 0; i < n; i++) mx = fabsf(b[i]) > mx ? fabsf(b[i]) : mx;
    return mx >= 1.0f || mx == 0 ? r : r * mx;
}

// lc_attn_transfer_fwd / _bwd against the calls they stand for: the teacher
// (lc_attn_softmax_fwd) and the student (lc_attn_hybrid_fwd, then
// lc_attn_hybrid_bwd without input gradients), on the fast form's shapes
// (which must take it on a SIMD path) and on ones that fall back.
static const struct { int B, H, Hk, N, D, f, variant, w, affine, fast; } xfer_cases[] = {
    {2, 8, 2, 256, 64, 8, LOLCATS_WINDOW_TK, 64, 0, 1},
    {1, 4, 1, 320, 40, 5, LOLCATS_WINDOW_TK, 64, 1, 1},
    {1, 3, 3, 192, 33, 4, LOLCATS_WINDOW_TK, 64, 0, 1},
    {1, 4, 2, 128, 16, 4, LOLCATS_WINDOW_TK, 64, 0, 1},
    {2, 16, 1, 192, 32, 16, LOLCATS_WINDOW_TK, 64, 1, 1},  // two groups of 8 stacked heads
    {1, 4, 2, 200, 16, 4, LOLCATS_WINDOW_TK, 64, 0, 0},  // N not a multiple of w
    {1, 4, 2, 64, 16, 4, LOLCATS_WINDOW_TK, 64, 0, 0},   // N <= w: every key in both
    {1, 4, 2, 256, 16, 4, LOLCATS_WINDOW_TK, 32, 0, 0},  // w != 64
    {1, 4, 2, 256, 16, 4, LOLCATS_WINDOW_SW, 64, 0, 0},
};
#define cs xfer_cases

static void transfer_pair(void) {
    lc_ctx ctx, sc;
    int ci, simd;
    lc_ctx_init(&ctx);
    lc_ctx_init(&sc);
    sc.simd = LOLCATS_SIMD_SCALAR;
    simd = ctx.simd != LOLCATS_SIMD_SCALAR;
    for (ci = 0; ci < (int)(sizeof cs / sizeof cs[0]); ci++) {
        int B = cs[ci].B, H = cs[ci].H, Hk = cs[ci].Hk, N = cs[ci].N, D = cs[ci].D, f = cs[ci].f;
        kcase c = make(LOLCATS_OP_HYBRID, B, H, Hk, N, D, f, cs[ci].variant, cs[ci].w);
        lc_hybrid_cfg hc = c.rc.hybrid;
        size_t nq = (size_t)B * H * N * D, nr = (size_t)B * H * N, nf;
        float *phiq, *phik, *o[2][5], *g[2][3], *work[2], e[8];
        int F, i, j, fast, tile64;
        lc__sm_plan pl;
        hc.affine = cs[ci].affine;
        F = lc_fmap_out_dim(&c.rc.fmap, f);
        nf = (size_t)B * H * N * F;
        phiq = (float *)malloc(sizeof(float) * nf);
        phik = (float *)malloc(sizeof(float) * nf);
        for (i = 0; i < 2; i++) {
            for (j = 0; j < 5; j++) o[i][j] = (float *)calloc(j < 2 ? nq : nr, sizeof(float));
            for (j = 0; j < 3; j++) g[i][j] = (float *)calloc(j < 2 ? nf : (size_t)H, sizeof(float));
        }
        work[0] = (float *)malloc(sizeof(float) * lc_attn_hybrid_work_floats(B, H, D, F));
        work[1] = (float *)malloc(sizeof(float) * lc_attn_transfer_work_floats(B, H, N, D, F));
        lc_fmap_fwd(&ctx, phiq, c.rc.q, c.rc.wq, NULL, B, H, H, N, D, f, &c.rc.fmap);
        lc_fmap_fwd(&ctx, phik, c.rc.k, c.rc.wk, NULL, B, H, Hk, N, D, f, &c.rc.fmap);
        // the two calls (outputs yt, y, lse, m, den) by the scalar definition
        lc_attn_softmax_fwd(&sc, o[0][0], o[0][2], c.rc.q, c.rc.k, c.rc.v, B, H, Hk, N, D);
        lc_attn_hybrid_fwd(&sc, o[0][1], NULL, o[0][3], o[0][4], work[0], c.rc.q, c.rc.k, c.rc.v,
                           phiq, phik, c.rc.wf, NULL, NULL, B, H, Hk, N, D, F, &hc);
        lc_attn_hybrid_bwd(&sc, NULL, NULL, NULL, g[0][0], g[0][1], g[0][2], NULL, NULL, work[0],
                           c.rc.dy, NULL, o[0][1], o[0][3], o[0][4], c.rc.q, c.rc.k, c.rc.v, phiq,
                           phik, c.rc.wf, NULL, NULL, B, H, Hk, N, D, F, &hc);
        lc_attn_transfer_fwd(&ctx, o[1][0], o[1][2], o[1][1], o[1][3], o[1][4], work[1], c.rc.q,
                             c.rc.k, c.rc.v, phiq, phik, c.rc.wf, B, H, Hk, N, D, F, &hc);
        lc_attn_transfer_bwd(&ctx, g[1][0], g[1][1], g[1][2], work[1], c.rc.dy, o[1][1], o[1][3],
                             o[1][4], c.rc.q, c.rc.k, c.rc.v, phiq, phik, c.rc.wf, B, H, Hk, N, D,
                             F, &hc);
        // the fast form needs teacher tiles of 64 rows: so on x86 (AVX2, AVX-512),
        // not on NEON, whose 12-column panels make them 63
        memset(&pl, 0, sizeof pl);
#if !defined(LOLCATS_NO_FAST)
        tile64 = simd && lc__sm_plan_for(&ctx, &pl, H / Hk, N, D) && pl.tq == 64;
#if defined(LC__X86)
        CHECK(!simd || tile64, "transfer case %d: x86 teacher tiles of %d rows, not 64", ci, pl.tq);
#endif
        fast = lc__xfer_fast(&ctx, &pl, H, Hk, N, D, &hc);
#else
        tile64 = fast = 0 * simd;  // the reference-only build has no fast forms
#endif
        CHECK(fast == (tile64 && cs[ci].fast),
              "transfer case %d: fast form %s", ci, fast ? "taken where it must not be" : "not taken");
        for (j = 0; j < 5; j++) e[j] = rel_diff(o[1][j], o[0][j], j < 2 ? nq : nr);
        for (j = 0; j < 3; j++)
            e[5 + j] = (j < 2 ? rel_diff : rel_diff_dwf)(g[1][j], g[0][j], j < 2 ? nf : (size_t)H);
        for (j = 0; j < 8; j++) {
            static const char *nm[8] = {"yt", "y", "lse", "m", "den", "dphiq", "dphik", "dwf"};
            CHECK(e[j] <= 2e-5f, "transfer case %d (N %d, H %d/%d, D %d, w %d): %s off the two-call "
                  "scalar form by %g of its largest entry", ci, N, H, Hk, D, cs[ci].w, nm[j],
                  (double)e[j]);
        }
        for (i = 0; i < 2; i++) {
            for (j = 0; j < 5; j++) free(o[i][j]);
            for (j = 0; j < 3; j++) free(g[i][j]);
            free(work[i]);
        }
        free(phiq); free(phik);
        unmake(&c);
    }
    printf("  attention transfer pair: teacher and student as their own calls\n");
}

// lc_attn_transfer_mse against the calls it stands for, by the scalar
// definition: the teacher, the student, lc_loss_mse and the student's
// backward of its gradient; with the student's outputs and without, and
// forward only (loss and teacher), on every SIMD level this CPU runs. dphiq,
// dphik are set, dwf accumulates.
static void transfer_mse(void) {
    lc_ctx ctx, sc;
    int ci, run, level, best = lc_simd_detect();
    lc_ctx_init(&ctx);
    lc_ctx_init(&sc);
    sc.simd = LOLCATS_SIMD_SCALAR;
    for (level = LOLCATS_SIMD_SCALAR; level <= LOLCATS_SIMD_NEON; level++)
    for (ci = 0; ci < (int)(sizeof cs / sizeof cs[0]); ci++) {
        if (level != LOLCATS_SIMD_SCALAR && !level_runs(level, best)) break;
        ctx.simd = level;
        int B = cs[ci].B, H = cs[ci].H, Hk = cs[ci].Hk, N = cs[ci].N, D = cs[ci].D, f = cs[ci].f;
        kcase c = make(LOLCATS_OP_HYBRID, B, H, Hk, N, D, f, cs[ci].variant, cs[ci].w);
        lc_hybrid_cfg hc = c.rc.hybrid;
        size_t nq = (size_t)B * H * N * D, nr = (size_t)B * H * N, nf, i;
        float *phiq, *phik, *o[2][5], *g[2][3], *dy, *work, e[8], factor = 1000.0f / 3;
        double loss[2];
        int F, j;
        hc.affine = cs[ci].affine;
        F = lc_fmap_out_dim(&c.rc.fmap, f);
        nf = (size_t)B * H * N * F;
        phiq = (float *)malloc(sizeof(float) * nf);
        phik = (float *)malloc(sizeof(float) * nf);
        dy = (float *)calloc(nq, sizeof(float));
        for (i = 0; i < 2; i++) {
            for (j = 0; j < 5; j++) o[i][j] = (float *)calloc(j < 2 ? nq : nr, sizeof(float));
            for (j = 0; j < 3; j++) g[i][j] = (float *)calloc(j < 2 ? nf : (size_t)H, sizeof(float));
        }
        work = (float *)malloc(sizeof(float) * lc_attn_transfer_work_floats(B, H, N, D, F));
        lc_fmap_fwd(&ctx, phiq, c.rc.q, c.rc.wq, NULL, B, H, H, N, D, f, &c.rc.fmap);
        lc_fmap_fwd(&ctx, phik, c.rc.k, c.rc.wk, NULL, B, H, Hk, N, D, f, &c.rc.fmap);
        lc_attn_softmax_fwd(&sc, o[0][0], o[0][2], c.rc.q, c.rc.k, c.rc.v, B, H, Hk, N, D);
        lc_attn_hybrid_fwd(&sc, o[0][1], NULL, o[0][3], o[0][4], work, c.rc.q, c.rc.k, c.rc.v,
                           phiq, phik, c.rc.wf, NULL, NULL, B, H, Hk, N, D, F, &hc);
        loss[0] = lc_loss_mse(dy, o[0][1], o[0][0], nq, factor);
        lc_attn_hybrid_bwd(&sc, NULL, NULL, NULL, g[0][0], g[0][1], g[0][2], NULL, NULL, work, dy,
                           NULL, o[0][1], o[0][3], o[0][4], c.rc.q, c.rc.k, c.rc.v, phiq, phik,
                           c.rc.wf, NULL, NULL, B, H, Hk, N, D, F, &hc);
        for (run = 0; run < 3; run++) {  // with y, m, den; without; forward only
            int bwd = run < 2;
            for (j = 0; j < 5; j++) memset(o[1][j], 0, sizeof(float) * (j < 2 ? nq : nr));
            for (i = 0; i < nf; i++) g[1][0][i] = g[1][1][i] = 7.0f;  // set, not accumulated
            for (j = 0; j < H; j++) g[1][2][j] = 0.5f;                 // accumulated
            loss[1] = lc_attn_transfer_mse(&ctx, o[1][0], o[1][2], run == 0 ? o[1][1] : NULL,
                                           run == 0 ? o[1][3] : NULL, run == 0 ? o[1][4] : NULL,
                                           bwd ? g[1][0] : NULL, g[1][1], g[1][2], work, c.rc.q,
                                           c.rc.k, c.rc.v, phiq, phik, c.rc.wf, B, H, Hk, N, D, F,
                                           factor, &hc);
            for (j = 0; j < H; j++) g[1][2][j] -= 0.5f;
            for (j = 0; j < 5; j++) e[j] = rel_diff(o[1][j], o[0][j], j < 2 ? nq : nr);
            for (j = 0; j < 3; j++)
                e[5 + j] = (j < 2 ? rel_diff : rel_diff_dwf)(g[1][j], g[0][j], j < 2 ? nf : (size_t)H);
            // (N = 2 w: every key in the window, the loss only rounding)
            CHECK(fabs(loss[1] - loss[0]) <= 1e-5 * loss[0] + 1e-9 * (double)factor && loss[0] > 0,
                  "transfer MSE [%s] case %d run %d: loss %.9g, the calls' %.9g",
                  lc_simd_name(level), ci, run, loss[1], loss[0]);
            for (j = 0; j < 8; j++) {
                static const char *nm[8] = {"yt", "y", "lse", "m", "den", "dphiq", "dphik", "dwf"};
                int want = j == 0 || j == 2 || (run == 0 && j < 5) || (bwd && j >= 5);
                if (!want) continue;
                CHECK(e[j] <= 2e-5f, "transfer MSE [%s] case %d run %d (N %d, H %d/%d, D %d, w %d): "
                      "%s off the calls' scalar form by %g of its largest entry", lc_simd_name(level),
                      ci, run, N, H, Hk, D, cs[ci].w, nm[j], (double)e[j]);
            }
            if (!bwd) {
                for (i = 0; i < nf && g[1][0][i] == 7.0f && g[1][1][i] == 7.0f; i++) {}
                for (j = 0; j < H && g[1][2][j] == 0; j++) {}
                CHECK(i == nf && j == H, "transfer MSE [%s] case %d: forward only wrote gradients",
                      lc_simd_name(level), ci);
            }
        }
        for (i = 0; i < 2; i++) {
            for (j = 0; j < 5; j++) free(o[i][j]);
            for (j = 0; j < 3; j++) free(g[i][j]);
        }
        free(phiq); free(phik); free(dy); free(work);
        unmake(&c);
    }
    lc_ctx_init(&ctx);
#ifdef _OPENMP
    {  // bit for bit the same with 1 thread (the one group's tiles in 2 segments) and 3 (in 4)
        int B = 1, H = 4, Hk = 1, N = 1024, D = 16, f = 4, F, nt = omp_get_max_threads(), r;
        kcase c = make(LOLCATS_OP_HYBRID, B, H, Hk, N, D, f, LOLCATS_WINDOW_TK, 64);
        size_t nq = (size_t)B * H * N * D, nf;
        float *phiq, *phik, *o[2][4], *work;
        double loss[2];
        F = lc_fmap_out_dim(&c.rc.fmap, f);
        nf = (size_t)B * H * N * F;
        phiq = (float *)malloc(sizeof(float) * nf);
        phik = (float *)malloc(sizeof(float) * nf);
        work = (float *)malloc(sizeof(float) * lc_attn_transfer_work_floats(B, H, N, D, F));
        lc_fmap_fwd(&ctx, phiq, c.rc.q, c.rc.wq, NULL, B, H, H, N, D, f, &c.rc.fmap);
        lc_fmap_fwd(&ctx, phik, c.rc.k, c.rc.wk, NULL, B, H, Hk, N, D, f, &c.rc.fmap);
        for (r = 0; r < 2; r++) {
            o[r][0] = (float *)calloc(nq, sizeof(float));
            o[r][1] = (float *)calloc(nf, sizeof(float));
            o[r][2] = (float *)calloc(nf, sizeof(float));
            o[r][3] = (float *)calloc((size_t)H, sizeof(float));
            omp_set_num_threads(r ? 3 : 1);
            loss[r] = lc_attn_transfer_mse(&ctx, o[r][0], NULL, NULL, NULL, NULL, o[r][1], o[r][2],
                                           o[r][3], work, c.rc.q, c.rc.k, c.rc.v, phiq, phik, c.rc.wf,
                                           B, H, Hk, N, D, F, 1000.0f, &c.rc.hybrid);
        }
        omp_set_num_threads(nt);
        CHECK(loss[0] == loss[1] && !memcmp(o[0][0], o[1][0], sizeof(float) * nq) &&
                  !memcmp(o[0][1], o[1][1], sizeof(float) * nf) &&
                  !memcmp(o[0][2], o[1][2], sizeof(float) * nf) &&
                  !memcmp(o[0][3], o[1][3], sizeof(float) * (size_t)H),
              "transfer MSE step: results differ between 1 and 3 OpenMP threads");
        for (r = 0; r < 2; r++) { free(o[r][0]); free(o[r][1]); free(o[r][2]); free(o[r][3]); }
        free(phiq); free(phik); free(work);
        unmake(&c);
    }
#endif
    printf("  attention transfer MSE step: the calls it stands for\n");
}
#undef cs

// lc_fmap_bwd_phi against lc_fmap_bwd's scalar definition: softmax_dim (full
// and half space, with a bias, with dx, weights large enough that part of the
// rows sit on the eps floor) within rounding; every other activation, and a
// floor high enough to matter, exactly lc_fmap_bwd.
static void fmap_bwd_from_phi(void) {
    static const struct { lc_fmap_act act; int half; float ws; int bias; float eps; } cs[] = {
        {LOLCATS_FMAP_SOFTMAX_DIM, 0, 0.4f, 0, 1e-12f}, {LOLCATS_FMAP_SOFTMAX_DIM, 1, 0.4f, 1, 1e-12f},
        {LOLCATS_FMAP_SOFTMAX_DIM, 0, 12.0f, 1, 1e-12f}, {LOLCATS_FMAP_EXP_DIM, 0, 0.4f, 0, 1e-12f},
        {LOLCATS_FMAP_POS_ELU, 0, 0.4f, 1, 1e-12f}, {LOLCATS_FMAP_RELU, 0, 0.4f, 0, 1e-12f},
        {LOLCATS_FMAP_SOFTMAX_DIM, 0, 3.0f, 1, 1e-3f},  // a floor that matters: recomputed
    };
    lc_ctx ctx, sc;
    int ci;
    lc_ctx_init(&ctx);
    lc_ctx_init(&sc);
    sc.simd = LOLCATS_SIMD_SCALAR;
    for (ci = 0; ci < (int)(sizeof cs / sizeof cs[0]); ci++) {
        int B = 2, H = 4, Hx = 2, N = 300, D = 37, f = 21, F, j, floor = 0;
        lc_fmap_cfg fm = lc_fmap_cfg_default();
        size_t nx = (size_t)B * Hx * N * D, nf, nw = (size_t)H * D * f, i;
        float *x, *w, *bias, *phi, *dphi, *g[2][3], e[3];
        fm.act = cs[ci].act;
        fm.halfspace = cs[ci].half;
        fm.eps = cs[ci].eps;
        F = lc_fmap_out_dim(&fm, f);
        nf = (size_t)B * H * N * F;
        x = randn(nx, 1.0f); w = randn(nw, cs[ci].ws); bias = randn((size_t)H, 1.0f);
        dphi = randn(nf, 1.0f);
        phi = (float *)malloc(sizeof(float) * nf);
        for (j = 0; j < 2; j++) {
            g[j][0] = (float *)calloc(nx, sizeof(float));
            g[j][1] = (float *)calloc(nw, sizeof(float));
            g[j][2] = (float *)calloc((size_t)H, sizeof(float));
        }
        lc_fmap_fwd(&ctx, phi, x, w, cs[ci].bias ? bias : NULL, B, H, Hx, N, D, f, &fm);
        for (i = 0; i < nf; i++) floor += phi[i] == fm.eps;
        lc_fmap_bwd(lc__fmap_phi_ok(&fm, f) ? &sc : &ctx, g[0][0], g[0][1], g[0][2], dphi,
                    x, w, cs[ci].bias ? bias : NULL, B, H, Hx, N, D, f, &fm);
        lc_fmap_bwd_phi(&ctx, g[1][0], g[1][1], g[1][2], dphi, phi, x, w, cs[ci].bias ? bias : NULL,
                        B, H, Hx, N, D, f, &fm);
        e[0] = rel_diff(g[1][0], g[0][0], nx);
        // softmax rows' gradients sum to zero: dbias is rounding noise there, so
        // its difference is measured against the scale of dw instead
        e[2] = 0;
        for (j = 0; j < H; j++) e[2] = fmaxf(e[2], fabsf(g[1][2][j] - g[0][2][j]));
        for (i = 0, e[1] = 0; i < nw; i++) e[1] = fmaxf(e[1], fabsf(g[0][1][i]));
        e[2] = lc__fmap_phi_ok(&fm, f) ? e[2] / e[1] : e[2];
        e[1] = rel_diff(g[1][1], g[0][1], nw);
        if (lc__fmap_phi_ok(&fm, f))
            CHECK(e[0] <= 4e-5f && e[1] <= 4e-5f && e[2] <= 4e-5f && (cs[ci].ws < 1 || floor > 0),
                  "fmap backward from phi, case %d: dx %g dw %g dbias %g off the scalar form "
                  "(%d entries on the floor)", ci, (double)e[0], (double)e[1], (double)e[2], floor);
        else
            CHECK(e[0] == 0 && e[1] == 0 && e[2] == 0,
                  "fmap backward from phi, case %d (%s): not exactly lc_fmap_bwd", ci,
                  lc_fmap_act_name(fm.act));
        for (j = 0; j < 2; j++) { free(g[j][0]); free(g[j][1]); free(g[j][2]); }
        free(x); free(w); free(bias); free(phi); free(dphi);
    }
    printf("  feature-map backward from the forward's phi: as the recomputing form\n");
}

// lc_advise_hugepages: a hint only, on the whole 2 MiB pages inside the range
static void hugepage_advice(void) {
    size_t n = (size_t)9 << 20, got, i;
    char *p = (char *)malloc(n);
    CHECK(lc_advise_hugepages(NULL, n) == 0 && lc_advise_hugepages(p, 4096) == 0,
          "huge-page advice on NULL or under 2 MiB: nothing advised");
    got = lc_advise_hugepages(p, n);
    CHECK(got % ((size_t)2 << 20) == 0 && got <= n, "huge-page advice: %zu bytes advised of %zu",
          got, n);
    for (i = 0; i < n; i += 4096) p[i] = (char)i;
    for (i = 0; i < n && p[i] == (char)i; i += 4096) {}
    CHECK(i >= n, "memory advised for huge pages does not keep what was written");
    free(p);
    printf("  huge-page advice: %zu of %zu bytes\n", got, n);
}

int main(void) {
    lc_rng_seed(&rng, 42);
    simd_vs_scalar();
    linear_forms_agree();
    printf("decode vs prefill\n");
    decode_vs_prefill(4, 2, 40, 9, 5, 8, 0, 1);
    decode_vs_prefill(4, 2, 40, 9, 5, 8, 0, 0);
    decode_vs_prefill(2, 2, 9, 8, 4, 16, 1, 1);
    decode_vs_prefill(3, 1, 70, 16, 8, 64, 0, 1);
    printf("masks, losses, optimizer, threads\n");
    masks_match_spec();
    losses();
    adamw();
    thread_invariance();
    bwd_without_input_grads();
    transfer_pair();
    transfer_mse();
    fmap_bwd_from_phi();
    long_sequences();
    hugepage_advice();
    return check_done();
}
