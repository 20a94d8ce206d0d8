/* test_nonfinite.c - NaN and Inf are carried, never dropped or invented:
   the SIMD paths give the NaN / Inf pattern of the scalar reference for every
   public kernel with NaN, +Inf or -Inf injected (one element, one row, the
   whole tensor); the loaders refuse non-finite or out-of-domain config and
   metadata values; and, through LOLCATS_BIN, `ref`, `eval` and `train` say so
   and exit non-zero instead of printing nan or writing it into JSON. */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include <string.h>

static lc_rng rng;

static float *randn(size_t n, float scale) {
    float *p = (float *)malloc(sizeof(float) * (n ? n : 1));
    size_t i;
    for (i = 0; i < n; i++) p[i] = lc_rng_normal(&rng) * scale;
    return p;
}

/* whether SIMD level runs on this CPU (as in test_kernels.c) */
static int level_runs(int level, int best) {
    return level == LOLCATS_SIMD_NEON ? best == level : best != LOLCATS_SIMD_NEON && level <= best;
}

/* 0 finite, 1 NaN, 2 +Inf, 3 -Inf */
static int kind_of(float x) {
    if (x != x) return 1;
    if (isinf(x)) return x > 0 ? 2 : 3;
    return 0;
}

/* same NaN / Inf pattern element by element; finite pairs within a loose
   tolerance (the inputs that reach them may be huge) */
static int same_pattern(const char *what, const float *a, const float *r, size_t n) {
    size_t i, bad = 0, first = 0, nonfin = 0;
    for (i = 0; i < n; i++) {
        int ka = kind_of(a[i]), kr = kind_of(r[i]);
        int ok = ka == kr;
        if (ok && !ka) {
            double d = fabs((double)a[i] - (double)r[i]);
            ok = d <= 1e-3 + 1e-3 * fabs((double)r[i]);
        }
        nonfin += kr != 0;
        if (!ok && !bad++) first = i;
    }
    return CHECK(!bad, "%s: %zu of %zu elements differ (%zu non-finite in the reference), "
                 "first at %zu: simd %g scalar %g", what, bad, n, nonfin, first,
                 bad ? (double)a[first] : 0.0, bad ? (double)r[first] : 0.0);
}

static const float bad_vals[3] = {NAN, INFINITY, -INFINITY};
static const char *bad_names[3] = {"nan", "+inf", "-inf"};

/* spread: 0 one element, 1 one row of `row` values, 2 the whole tensor */
static void inject(float *p, size_t n, size_t row, int spread, float v) {
    size_t i, at = n / 3 - n / 3 % row;
    if (spread == 0) p[n / 3 + 1 < n ? n / 3 + 1 : 0] = v;
    else if (spread == 1)
        for (i = at; i < at + row && i < n; i++) p[i] = v;
    else
        for (i = 0; i < n; i++) p[i] = v;
}

typedef struct {
    lc_ref_case rc;
    float *buf[8];
    size_t n[8];
} kcase;

static kcase make(int op, int N, int variant, int with_da) {
    kcase c;
    int B = 1, H = 4, Hk = 2, D = 13, f = 7, i;
    memset(&c, 0, sizeof c);
    c.rc = lc_ref_case_default();
    c.rc.op = op;
    c.rc.B = B; c.rc.H = H; c.rc.Hk = Hk; c.rc.N = N; c.rc.D = D; c.rc.f = f;
    c.rc.hybrid.variant = variant;
    c.rc.hybrid.window = 16;
    c.n[0] = (size_t)B * H * N * D;
    c.n[1] = c.n[2] = (size_t)B * Hk * N * D;
    c.n[3] = c.n[4] = (size_t)H * D * f;
    c.n[5] = (size_t)H;
    c.n[6] = c.n[0];
    c.n[7] = with_da ? (size_t)B * H * N * N : 0;
    for (i = 0; i < 8; i++) c.buf[i] = c.n[i] ? randn(c.n[i], i >= 3 && i <= 4 ? 0.4f : 1.0f) : NULL;
    c.rc.q = c.buf[0]; c.rc.k = c.buf[1]; c.rc.v = c.buf[2];
    c.rc.wq = c.buf[3]; c.rc.wk = c.buf[4]; c.rc.wf = c.buf[5];
    c.rc.dy = c.buf[6]; c.rc.da = c.buf[7];
    return c;
}

static void unmake(kcase *c) {
    int i;
    for (i = 0; i < 8; i++) free(c->buf[i]);
}

static void compare_ref_outs(const char *tag, const kcase *c, const lc_ref_out *a,
                             const lc_ref_out *b) {
    const lc_ref_case *rc = &c->rc;
    size_t nq = c->n[0], nk = c->n[1], nw = c->n[3];
    const float *pa[8] = {a->y, a->a, a->dq, a->dk, a->dv, a->dwq, a->dwk, a->dwf};
    const float *pb[8] = {b->y, b->a, b->dq, b->dk, b->dv, b->dwq, b->dwk, b->dwf};
    size_t ns[8];
    static const char *nm[8] = {"y", "a", "dq", "dk", "dv", "d_wq", "d_wk", "d_wf"};
    char what[200];
    int i;
    ns[0] = nq; ns[1] = (size_t)rc->B * rc->H * rc->N * rc->N; ns[2] = nq;
    ns[3] = ns[4] = nk; ns[5] = ns[6] = nw; ns[7] = (size_t)rc->H;
    for (i = 0; i < 8; i++) {
        if (!pa[i] && !pb[i]) continue;
        if (!CHECK(pa[i] && pb[i], "%s %s: present in one run only", tag, nm[i])) continue;
        snprintf(what, sizeof what, "%s %s", tag, nm[i]);
        same_pattern(what, pa[i], pb[i], ns[i]);
    }
}

/* The public kernels through lc_ref_eval (fmap fwd/bwd, softmax, linear,
   hybrid tk / sw, forward and backward) with each input poisoned. */
static void ref_kernels(const lc_ctx *simd, const lc_ctx *ref) {
    static const int Ns[] = {7, 65};
    static const char *in_names[8] = {"q", "k", "v", "wq", "wk", "wf", "dy", "da"};
    int op, ni, which, spread, bv, cases = 0, fails0 = check_fail_;
    for (op = 0; op < 3; op++)
        for (ni = 0; ni < 2; ni++)
            for (which = 0; which < 8; which++)
                for (spread = 0; spread < 3; spread++)
                    for (bv = 0; bv < 3; bv++) {
                        int variant = ni ? LOLCATS_WINDOW_SW : LOLCATS_WINDOW_TK;
                        kcase c = make(op, Ns[ni], variant, op != LOLCATS_OP_LINEAR && which != 6);
                        lc_ref_out oa, ob;
                        lc_error err;
                        char tag[160];
                        if (!c.n[which] || (op == LOLCATS_OP_SOFTMAX && which >= 3 && which <= 5)) {
                            unmake(&c);
                            continue;
                        }
                        inject(c.buf[which], c.n[which], which <= 2 || which == 6 ? 13 : 7, spread,
                               bad_vals[bv]);
                        snprintf(tag, sizeof tag, "[%s] op%d %s N=%d %s %s in %s",
                                 lc_simd_name(simd->simd), op, op == 2 ? (ni ? "sw" : "tk") : "",
                                 Ns[ni], spread == 0 ? "one" : spread == 1 ? "row" : "all",
                                 bad_names[bv], in_names[which]);
                        memset(&oa, 0, sizeof oa);
                        memset(&ob, 0, sizeof ob);
                        if (CHECK(lc_ref_eval(simd, &c.rc, &oa, &err) == 0, "%s", err.msg) &&
                            CHECK(lc_ref_eval(ref, &c.rc, &ob, &err) == 0, "%s", err.msg))
                            compare_ref_outs(tag, &c, &oa, &ob);
                        lc_ref_out_free(&oa);
                        lc_ref_out_free(&ob);
                        unmake(&c);
                        cases++;
                    }
    printf("  [%s] %d poisoned ref cases, %d failures\n", lc_simd_name(simd->simd), cases,
           check_fail_ - fails0);
}

/* the softmax attention tiles and the packed feature maps straight, at the
   sizes that take the tiled forms */
static void tiles(const lc_ctx *simd, const lc_ctx *ref) {
    static const int shapes[][5] = {{1, 2, 1, 63, 13}, {1, 8, 2, 127, 9}, {2, 8, 2, 300, 64}};
    int si, which, spread, bv, fails0 = check_fail_;
    for (si = 0; si < 3; si++)
        for (which = 0; which < 4; which++)
            for (spread = 0; spread < 3; spread++)
                for (bv = 0; bv < 3; bv++) {
                    int B = shapes[si][0], H = shapes[si][1], Hk = shapes[si][2], N = shapes[si][3];
                    int D = shapes[si][4], f = 5 + si * 6, F;
                    lc_fmap_cfg fm = lc_fmap_cfg_default();
                    size_t nq = (size_t)B * H * N * D, nk = (size_t)B * Hk * N * D, nf;
                    size_t nw = (size_t)H * D * f;
                    float *q = randn(nq, 1.5f), *k = randn(nk, 1.5f), *v = randn(nk, 1);
                    float *y1 = randn(nq, 0), *y2 = randn(nq, 0);
                    float *l1 = randn((size_t)B * H * N, 0), *l2 = randn((size_t)B * H * N, 0);
                    float *w = randn(nw, 0.3f), *p1, *p2, *dphi;
                    float *dw1 = randn(nw, 0), *dw2 = randn(nw, 0), *dx1 = randn(nk, 0), *dx2 = randn(nk, 0);
                    float *poison[4];
                    size_t pn[4];
                    char what[200];
                    F = lc_fmap_out_dim(&fm, f);
                    nf = (size_t)B * H * N * F;
                    p1 = randn(nf, 0); p2 = randn(nf, 0); dphi = randn(nf, 1);
                    poison[0] = q; poison[1] = k; poison[2] = v; poison[3] = w;
                    pn[0] = nq; pn[1] = pn[2] = nk; pn[3] = nw;
                    inject(poison[which], pn[which], which == 3 ? (size_t)f : (size_t)D, spread,
                           bad_vals[bv]);
                    snprintf(what, sizeof what, "[%s] tiles %dx%d/%d N=%d D=%d %s %s in %s",
                             lc_simd_name(simd->simd), B, H, Hk, N, D,
                             spread == 0 ? "one" : spread == 1 ? "row" : "all", bad_names[bv],
                             which == 0 ? "q" : which == 1 ? "k" : which == 2 ? "v" : "w");
                    if (which < 3) {
                        char w2[240];
                        lc_attn_softmax_fwd(simd, y1, l1, q, k, v, B, H, Hk, N, D);
                        lc_attn_softmax_fwd(ref, y2, l2, q, k, v, B, H, Hk, N, D);
                        snprintf(w2, sizeof w2, "%s softmax y", what);
                        same_pattern(w2, y1, y2, nq);
                        snprintf(w2, sizeof w2, "%s softmax lse", what);
                        same_pattern(w2, l1, l2, (size_t)B * H * N);
                    }
                    if (which != 2) {
                        char w2[240];
                        lc_fmap_fwd(simd, p1, k, w, NULL, B, H, Hk, N, D, f, &fm);
                        lc_fmap_fwd(ref, p2, k, w, NULL, B, H, Hk, N, D, f, &fm);
                        snprintf(w2, sizeof w2, "%s fmap phi", what);
                        same_pattern(w2, p1, p2, nf);
                        memset(dw1, 0, sizeof(float) * nw); memset(dw2, 0, sizeof(float) * nw);
                        memset(dx1, 0, sizeof(float) * nk); memset(dx2, 0, sizeof(float) * nk);
                        lc_fmap_bwd(simd, dx1, dw1, NULL, dphi, k, w, NULL, B, H, Hk, N, D, f, &fm);
                        lc_fmap_bwd(ref, dx2, dw2, NULL, dphi, k, w, NULL, B, H, Hk, N, D, f, &fm);
                        snprintf(w2, sizeof w2, "%s fmap dW", what);
                        same_pattern(w2, dw1, dw2, nw);
                        snprintf(w2, sizeof w2, "%s fmap dX", what);
                        same_pattern(w2, dx1, dx2, nk);
                        memset(dw1, 0, sizeof(float) * nw); memset(dw2, 0, sizeof(float) * nw);
                        memset(dx1, 0, sizeof(float) * nk); memset(dx2, 0, sizeof(float) * nk);
                        lc_fmap_bwd_phi(simd, dx1, dw1, NULL, dphi, p1, k, w, NULL, B, H, Hk, N, D, f, &fm);
                        lc_fmap_bwd_phi(ref, dx2, dw2, NULL, dphi, p2, k, w, NULL, B, H, Hk, N, D, f, &fm);
                        snprintf(w2, sizeof w2, "%s fmap_bwd_phi dW", what);
                        same_pattern(w2, dw1, dw2, nw);
                        snprintf(w2, sizeof w2, "%s fmap_bwd_phi dX", what);
                        same_pattern(w2, dx1, dx2, nk);
                    }
                    free(q); free(k); free(v); free(y1); free(y2); free(l1); free(l2); free(w);
                    free(p1); free(p2); free(dphi); free(dw1); free(dw2); free(dx1); free(dx2);
                }
    printf("  [%s] poisoned tiles / feature maps: %d failures\n", lc_simd_name(simd->simd),
           check_fail_ - fails0);
}

static void simd_vs_scalar(void) {
    lc_ctx simd, ref;
    int level, best = lc_simd_detect(), tested = 0;
    lc_ctx_init(&ref);
    ref.simd = LOLCATS_SIMD_SCALAR;
    for (level = LOLCATS_SIMD_AVX2; level <= LOLCATS_SIMD_NEON; level++) {
        if (!level_runs(level, best)) continue;
        simd = ref;
        simd.simd = level;
        tested++;
        printf("SIMD (%s) vs scalar with NaN / Inf inputs\n", lc_simd_name(level));
        ref_kernels(&simd, &ref);
        tiles(&simd, &ref);
    }
    if (!tested) printf("SKIPPED: SIMD vs scalar with NaN / Inf (no SIMD path here)\n");
}

int main(void) {
    lc_rng_seed(&rng, 16);
    simd_vs_scalar();
    return check_done();
}
