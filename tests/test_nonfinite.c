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
#include <sys/stat.h>
#include <sys/wait.h>

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

/* the transfer pair (fwd), the fused transfer MSE step and the one-token
   decode, with each input poisoned: SIMD gives the scalar NaN / Inf pattern */
static void transfer_decode(const lc_ctx *simd, const lc_ctx *ref) {
    int B = 1, H = 4, Hk = 2, N = 128, D = 16, f = 4, F, which, spread, bv, fails0 = check_fail_;
    lc_fmap_cfg fm = lc_fmap_cfg_default();
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    size_t nq = (size_t)B * H * N * D, nk = (size_t)B * Hk * N * D, nr = (size_t)B * H * N, nf;
    hc.variant = LOLCATS_WINDOW_TK;
    hc.window = 64;
    F = lc_fmap_out_dim(&fm, f);
    nf = (size_t)B * H * N * F;
    for (which = 0; which < 6; which++)
        for (spread = 0; spread < 3; spread++)
            for (bv = 0; bv < 3; bv++) {
                float *in[6], *o[2][5], *g[2][3], *work[2];
                size_t ns[6];
                double loss[2];
                char what[200], w2[240];
                int r, j;
                static const char *nm[6] = {"q", "k", "v", "phiq", "phik", "wf"};
                ns[0] = nq; ns[1] = ns[2] = nk; ns[3] = ns[4] = nf; ns[5] = (size_t)H;
                for (j = 0; j < 6; j++) in[j] = randn(ns[j], 1.0f);
                for (j = 0; j < (int)nf; j++) { in[3][j] = fabsf(in[3][j]) / F; in[4][j] = fabsf(in[4][j]) / F; }
                inject(in[which], ns[which], which < 3 ? (size_t)D : which < 5 ? (size_t)F : 1, spread,
                       bad_vals[bv]);
                snprintf(what, sizeof what, "[%s] transfer N=%d %s %s in %s", lc_simd_name(simd->simd), N,
                         spread == 0 ? "one" : spread == 1 ? "row" : "all", bad_names[bv], nm[which]);
                for (r = 0; r < 2; r++) {
                    const lc_ctx *cx = r ? ref : simd;
                    for (j = 0; j < 5; j++) o[r][j] = (float *)calloc(j < 2 ? nq : nr, sizeof(float));
                    for (j = 0; j < 3; j++) g[r][j] = (float *)calloc(j < 2 ? nf : (size_t)H, sizeof(float));
                    work[r] = (float *)malloc(sizeof(float) * lc_attn_transfer_work_floats(B, H, N, D, F));
                    loss[r] = lc_attn_transfer_mse(cx, o[r][0], o[r][2], o[r][1], o[r][3], o[r][4], g[r][0],
                                                   g[r][1], g[r][2], work[r], in[0], in[1], in[2], in[3],
                                                   in[4], in[5], B, H, Hk, N, D, F, 1000.0f, &hc);
                }
                CHECK(kind_of((float)loss[0]) == kind_of((float)loss[1]), "%s loss: simd %g scalar %g", what,
                      loss[0], loss[1]);
                {
                    static const char *on[5] = {"yt", "y", "lse", "m", "den"};
                    static const char *gn[3] = {"dphiq", "dphik", "dwf"};
                    for (j = 0; j < 5; j++) {
                        if (j == 3) continue;   /* m: a saved row max, its form differs by path */
                        snprintf(w2, sizeof w2, "%s mse %s", what, on[j]);
                        same_pattern(w2, o[0][j], o[1][j], j < 2 ? nq : nr);
                    }
                    for (j = 0; j < 3; j++) {
                        snprintf(w2, sizeof w2, "%s mse %s", what, gn[j]);
                        same_pattern(w2, g[0][j], g[1][j], j < 2 ? nf : (size_t)H);
                    }
                }
                for (r = 0; r < 2; r++) {  /* the pair's forward alone */
                    const lc_ctx *cx = r ? ref : simd;
                    for (j = 0; j < 5; j++) memset(o[r][j], 0, sizeof(float) * (j < 2 ? nq : nr));
                    lc_attn_transfer_fwd(cx, o[r][0], o[r][2], o[r][1], o[r][3], o[r][4], work[r], in[0], in[1],
                                         in[2], in[3], in[4], in[5], B, H, Hk, N, D, F, &hc);
                }
                snprintf(w2, sizeof w2, "%s fwd yt", what);
                same_pattern(w2, o[0][0], o[1][0], nq);
                snprintf(w2, sizeof w2, "%s fwd y", what);
                same_pattern(w2, o[0][1], o[1][1], nq);
                {   /* decode token by token through the first 80 positions */
                    size_t sf = lc_decode_state_floats(H, Hk, D, F, 16);
                    float *mem[2], y[2][64];
                    lc_decode_state ds[2];
                    int t;
                    for (r = 0; r < 2; r++) {
                        mem[r] = (float *)malloc(sizeof(float) * sf);
                        lc_decode_state_init(&ds[r], mem[r], H, Hk, D, F, 16);
                    }
                    for (t = 0; t < 80; t++) {
                        float qt[64], kt[32], vt[32], pq[64 * 8], pk[64 * 8];
                        int h;
                        for (h = 0; h < H; h++) {
                            memcpy(qt + h * D, in[0] + ((size_t)h * N + t) * D, sizeof(float) * D);
                            memcpy(pq + h * F, in[3] + ((size_t)h * N + t) * F, sizeof(float) * F);
                            memcpy(pk + h * F, in[4] + ((size_t)h * N + t) * F, sizeof(float) * F);
                        }
                        for (h = 0; h < Hk; h++) {
                            memcpy(kt + h * D, in[1] + ((size_t)h * N + t) * D, sizeof(float) * D);
                            memcpy(vt + h * D, in[2] + ((size_t)h * N + t) * D, sizeof(float) * D);
                        }
                        for (r = 0; r < 2; r++)
                            lc_attn_hybrid_decode(r ? ref : simd, y[r], &ds[r], qt, kt, vt, pq, pk, in[5], 0);
                        snprintf(w2, sizeof w2, "%s decode t=%d", what, t);
                        if (!same_pattern(w2, y[0], y[1], (size_t)H * D)) break;
                    }
                    free(mem[0]); free(mem[1]);
                }
                for (r = 0; r < 2; r++) {
                    for (j = 0; j < 5; j++) free(o[r][j]);
                    for (j = 0; j < 3; j++) free(g[r][j]);
                    free(work[r]);
                }
                for (j = 0; j < 6; j++) free(in[j]);
            }
    printf("  [%s] poisoned transfer / decode: %d failures\n", lc_simd_name(simd->simd), check_fail_ - fails0);
}

/* the definitions themselves carry NaN: the feature-map floor max(x, eps)
   keeps a NaN (not eps), and all-NaN window factors or q give all-NaN y, on
   the scalar path and every SIMD level */
static void definitions_carry_nan(void) {
    lc_ctx cx;
    int level, best = lc_simd_detect();
    lc_ctx_init(&cx);
    printf("NaN through the definitions on every path\n");
    for (level = LOLCATS_SIMD_SCALAR; level <= LOLCATS_SIMD_NEON; level++) {
        int B = 1, H = 4, Hk = 2, N = 65, D = 13, f = 7, which;
        lc_fmap_cfg fm = lc_fmap_cfg_default();
        size_t nk = (size_t)B * Hk * N * D, nf = (size_t)B * H * N * lc_fmap_out_dim(&fm, f), j, finite = 0;
        float *k, *w, *phi;
        if (level != LOLCATS_SIMD_SCALAR && !level_runs(level, best)) continue;
        cx.simd = level;
        k = randn(nk, 1); w = randn((size_t)H * D * f, 0.4f); phi = randn(nf, 0);
        for (j = 0; j < nk; j++) k[j] = NAN;
        lc_fmap_fwd(&cx, phi, k, w, NULL, B, H, Hk, N, D, f, &fm);
        for (j = 0; j < nf; j++) finite += phi[j] == phi[j];
        CHECK(finite == 0, "[%s] feature map of all-NaN x: %zu of %zu phi not NaN (the eps floor ate them)",
              lc_simd_name(level), finite, nf);
        free(k); free(w); free(phi);
        for (which = 0; which < 2; which++) {   /* all-NaN q (softmax), all-NaN window factors (hybrid) */
            kcase c = make(which ? LOLCATS_OP_HYBRID : LOLCATS_OP_SOFTMAX, N, LOLCATS_WINDOW_TK, 0);
            lc_ref_out o;
            lc_error err;
            float *p = which ? c.buf[5] : c.buf[0];
            size_t n = which ? c.n[5] : c.n[0];
            for (j = 0; j < n; j++) p[j] = NAN;
            memset(&o, 0, sizeof o);
            if (CHECK(lc_ref_eval(&cx, &c.rc, &o, &err) == 0, "%s", err.msg)) {
                for (finite = 0, j = 0; j < c.n[0]; j++) finite += o.y[j] == o.y[j];
                CHECK(finite == 0, "[%s] %s: %zu of %zu y not NaN", lc_simd_name(level),
                      which ? "hybrid, all-NaN window factors" : "softmax, all-NaN q", finite, c.n[0]);
            }
            lc_ref_out_free(&o);
            unmake(&c);
        }
    }
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
        transfer_decode(&simd, &ref);
    }
    if (!tested) printf("SKIPPED: SIMD vs scalar with NaN / Inf (no SIMD path here)\n");
}

static const char *bin;

/* runs cmd (output to build/tests/nf_out.txt), returns the exit status, the
   output in out */
static int run(const char *cmd, char *out, size_t cap) {
    char full[2048];
    FILE *f;
    size_t n;
    int st;
    snprintf(full, sizeof full, "%s >build/tests/nf_out.txt 2>&1", cmd);
    st = system(full);
    f = fopen("build/tests/nf_out.txt", "r");
    n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = 0;
    if (f) fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* `lolcats ref` on a softmax case whose q is all NaN: every y NaN on the
   default (SIMD) path, as --scalar and PyTorch give; an F64 q with a finite
   value beyond float range is refused naming the tensor and element. */
static void ref_cli(void) {
    static const char *in = "tests/data/softmax_mha_n65.safetensors";
    lc_st_file *f, *o;
    lc_error err;
    lc_tensor ts[16];
    float *q;
    double *q64;
    const lc_tensor *y;
    char cmd[1024], out[4096];
    int i, n, rc;
    size_t j, nq = 0;
    printf("ref with non-finite inputs\n");
    memset(ts, 0, sizeof ts);
    if (!CHECK(lc_st_open(&f, in, &err) == 0, "%s", err.msg)) return;
    n = lc_st_count(f);
    for (i = 0; i < n && i < 16; i++) ts[i] = *lc_st_tensor_at(f, i);
    for (i = 0; i < n; i++)
        if (!strcmp(ts[i].name, "q")) nq = lc_tensor_numel(&ts[i]);
    q = (float *)malloc(sizeof(float) * nq);
    q64 = (double *)malloc(sizeof(double) * nq);
    for (j = 0; j < nq; j++) { q[j] = NAN; q64[j] = 0.5; }
    q64[nq / 2] = 1e39;
    for (i = 0; i < n; i++)
        if (!strcmp(ts[i].name, "q")) { ts[i].dtype = LOLCATS_DTYPE_F32; ts[i].data = q; ts[i].nbytes = 4 * nq; }
    {
        const char *meta[16 * 2] = {0};
        int k, nm = lc_st_meta_count(f);
        for (k = 0; k < nm && k < 16; k++) lc_st_meta_at(f, k, &meta[2 * k], &meta[2 * k + 1]);
        CHECK(lc_st_write("build/tests/nf_q_nan.safetensors", ts, n, meta, nm, &err) == 0, "%s", err.msg);
        for (i = 0; i < n; i++)
            if (!strcmp(ts[i].name, "q")) { ts[i].dtype = LOLCATS_DTYPE_F64; ts[i].data = q64; ts[i].nbytes = 8 * nq; }
        CHECK(lc_st_write("build/tests/nf_q_f64.safetensors", ts, n, meta, nm, &err) == 0, "%s", err.msg);
    }
    snprintf(cmd, sizeof cmd, "%s ref build/tests/nf_q_nan.safetensors build/tests/nf_y.safetensors", bin);
    rc = run(cmd, out, sizeof out);
    if (CHECK(rc == 0, "`%s` exit %d: %s", cmd, rc, out) &&
        CHECK(lc_st_open(&o, "build/tests/nf_y.safetensors", &err) == 0, "%s", err.msg)) {
        y = lc_st_find(o, "y");
        if (CHECK(y != NULL, "no y in the ref output")) {
            size_t ny = lc_tensor_numel(y), finite = 0;
            float *yv = (float *)malloc(sizeof(float) * ny);
            lc_tensor_to_f32(y, yv, &err);
            for (j = 0; j < ny; j++) finite += yv[j] == yv[j];
            CHECK(finite == 0, "ref (default path) with all-NaN q: %zu of %zu y finite", finite, ny);
            free(yv);
        }
        lc_st_close(o);
    }
    snprintf(cmd, sizeof cmd, "%s ref build/tests/nf_q_f64.safetensors build/tests/nf_y64.safetensors", bin);
    rc = run(cmd, out, sizeof out);
    CHECK(rc != 0 && strstr(out, "'q'") && strstr(out, "element"),
          "ref with an F64 q beyond float range: exit %d, output: %s", rc, out);
    free(q); free(q64);
    lc_st_close(f);
}

/* an HF config with a bad real-valued field is refused naming file and field */
static void config_fields(void) {
    static const char *bad[][2] = {{"rope_theta", "0"}, {"rope_theta", "-5"}, {"rope_theta", "1e60"},
                                   {"rms_norm_eps", "-1e-6"}, {"rms_norm_eps", "1e300"}};
    char path[256];
    int i;
    printf("config fields\n");
    mkdir("build/tests/nf_hf", 0755);
    for (i = 0; i < 5; i++) {
        FILE *f;
        lc_model m;
        lc_error err;
        lc_status st;
        snprintf(path, sizeof path, "build/tests/nf_hf/config.json");
        f = fopen(path, "w");
        if (!CHECK(f != NULL, "cannot write %s", path)) return;
        fprintf(f, "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 128, "
                   "\"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"num_key_value_heads\": 4, "
                   "\"vocab_size\": 32, \"max_position_embeddings\": 64, \"%s\": %s}\n",
                bad[i][0], bad[i][1]);
        fclose(f);
        memset(&err, 0, sizeof err);
        st = lc_model_load_hf(&m, "build/tests/nf_hf", &err);
        CHECK(st != 0 && strstr(err.msg, bad[i][0]) && strstr(err.msg, "config.json"),
              "config %s = %s: status %d, message: %s", bad[i][0], bad[i][1], (int)st, err.msg);
        if (st == 0) lc_model_free(&m);
    }
}

#define MODEL "../shared/models/stories260K/stories260K.bin"
#define TOK "../shared/models/stories260K/tok512.bin"

/* stories260K with one NaN weight: eval says so, JSON holds null, exit != 0 */
static void eval_nan_model(void) {
    FILE *in, *of;
    char cmd[1024], out[4096];
    unsigned char *buf;
    long len;
    float nan_ = NAN;
    int rc;
    printf("eval on a model with a NaN weight\n");
    in = fopen(MODEL, "rb");
    if (!in) { printf("SKIPPED: %s not found\n", MODEL); return; }
    fseek(in, 0, SEEK_END);
    len = ftell(in);
    fseek(in, 0, SEEK_SET);
    buf = (unsigned char *)malloc((size_t)len);
    if (fread(buf, 1, (size_t)len, in) != (size_t)len) len = 0;
    fclose(in);
    memcpy(buf + 28, &nan_, 4);   /* the first float after the 7-int header */
    of = fopen("build/tests/nf_nan.bin", "wb");
    if (of) { fwrite(buf, 1, (size_t)len, of); fclose(of); }
    free(buf);
    of = fopen("build/tests/nf_text.txt", "w");
    if (of) { fputs("Once upon a time there was a little cat.\n", of); fclose(of); }
    snprintf(cmd, sizeof cmd, "%s eval --model build/tests/nf_nan.bin --tokenizer %s --data build/tests/nf_text.txt --json",
             bin, TOK);
    rc = run(cmd, out, sizeof out);
    CHECK(rc != 0, "eval --json on a NaN model exits %d: %s", rc, out);
    CHECK(!strstr(out, "nan") || strstr(out, "error"), "eval --json printed a bare nan: %s", out);
    CHECK(strstr(out, "\"nll\": null") != NULL || strstr(out, "error") != NULL,
          "eval --json on a NaN model: no null nll nor error: %s", out);
    snprintf(cmd, sizeof cmd, "%s eval --model build/tests/nf_nan.bin --tokenizer %s --data build/tests/nf_text.txt",
             bin, TOK);
    rc = run(cmd, out, sizeof out);
    CHECK(rc != 0 && (strstr(out, "not finite") || strstr(out, "error")),
          "eval on a NaN model: exit %d: %s", rc, out);
    {   /* finite weights whose logits overflow (final norm 3e38): the NLL itself is not finite */
        lc_model m;
        lc_error err;
        long off;
        float big = 3e38f;
        int i, dim;
        if (!CHECK(lc_model_load(&m, MODEL, &err) == 0, "%s", err.msg)) return;
        off = 28 + (long)((const char *)m.rms_final.data - (const char *)m.tok_emb.data);
        dim = m.cfg.dim;
        lc_model_free(&m);
        in = fopen(MODEL, "rb");
        of = fopen("build/tests/nf_big.bin", "wb");
        if (!CHECK(in && of, "cannot copy %s", MODEL)) { if (in) fclose(in); if (of) fclose(of); return; }
        buf = (unsigned char *)malloc((size_t)len);
        if (fread(buf, 1, (size_t)len, in) == (size_t)len) {
            for (i = 0; i < dim; i++) memcpy(buf + off + 4 * i, &big, 4);
            fwrite(buf, 1, (size_t)len, of);
        }
        free(buf);
        fclose(in);
        fclose(of);
        snprintf(cmd, sizeof cmd, "%s eval --model build/tests/nf_big.bin --tokenizer %s "
                 "--data build/tests/nf_text.txt --json", bin, TOK);
        rc = run(cmd, out, sizeof out);
        CHECK(rc == 1 && strstr(out, "\"nll\": null") && strstr(out, "\"ppl\": null") && !strstr(out, "nan,"),
              "eval --json with a non-finite NLL: exit %d (want 1), output: %s", rc, out);
        snprintf(cmd, sizeof cmd, "%s eval --model build/tests/nf_big.bin --tokenizer %s "
                 "--data build/tests/nf_text.txt", bin, TOK);
        rc = run(cmd, out, sizeof out);
        CHECK(rc == 1 && strstr(out, "not finite"), "eval with a non-finite NLL: exit %d (want 1): %s", rc, out);
    }
}

/* copies the safetensors file src to dst with metadata key set to val (NULL:
   unchanged) and, when poison, the first element of tensor poison set to NaN */
static int rewrite_st(const char *src, const char *dst, const char *key, const char *val, const char *poison) {
    lc_st_file *f;
    lc_error err;
    lc_tensor ts[64];
    const char *meta[128] = {0};
    void *copy = NULL;
    int i, n, nm, ok;
    if (!CHECK(lc_st_open(&f, src, &err) == 0, "%s", err.msg)) return 0;
    n = lc_st_count(f);
    nm = lc_st_meta_count(f);
    if (!CHECK(n <= 64 && nm <= 64, "%s: too many tensors for the test", src)) { lc_st_close(f); return 0; }
    for (i = 0; i < n; i++) {
        ts[i] = *lc_st_tensor_at(f, i);
        if (poison && !strcmp(ts[i].name, poison) && ts[i].dtype == LOLCATS_DTYPE_F32) {
            float nan_ = NAN;
            copy = malloc(ts[i].nbytes);
            memcpy(copy, ts[i].data, ts[i].nbytes);
            memcpy(copy, &nan_, 4);
            ts[i].data = copy;
        }
    }
    for (i = 0; i < nm; i++) {
        lc_st_meta_at(f, i, &meta[2 * i], &meta[2 * i + 1]);
        if (key && !strcmp(meta[2 * i], key)) meta[2 * i + 1] = val;
    }
    ok = CHECK(lc_st_write(dst, ts, n, meta, nm, &err) == 0, "%s", err.msg);
    free(copy);
    lc_st_close(f);
    return ok;
}

#define DATA "../shared/data/tinystories.valid-head.txt"

/* weights at load, training's non-finite stop, checkpoint / state metadata */
static void teacher_train_ckpt(void) {
    char cmd[1536], out[4096], base[1024];
    lc_model m;
    lc_lolcats lp;
    lc_error err;
    lc_status st;
    struct stat sb;
    int rc;
    printf("NaN teacher, --lr nan, non-finite checkpoint metadata and tensors\n");
    if (stat(MODEL, &sb) != 0 || stat(DATA, &sb) != 0) { printf("SKIPPED: %s or %s not found\n", MODEL, DATA); return; }
    memset(&err, 0, sizeof err);
    st = lc_model_load(&m, "build/tests/nf_nan.bin", &err);
    CHECK(st != 0 && strstr(err.msg, "nf_nan.bin") && strstr(err.msg, "model.embed_tokens.weight") &&
          strstr(err.msg, "element 0"), "a NaN weight at load: status %d, %s", (int)st, err.msg);
    if (st == 0) lc_model_free(&m);
    snprintf(base, sizeof base, "distill --tokenizer %s --data %s --seq-len 32 --grad-accum 2 --tokens 128 "
             "--val-every 0 --val-seqs 2", TOK, DATA);
    /* linearizing a NaN teacher is refused before any work */
    snprintf(cmd, sizeof cmd, "%s %s --model build/tests/nf_nan.bin --out build/tests/nf_t.safetensors", bin, base);
    rc = run(cmd, out, sizeof out);
    CHECK(rc != 0 && strstr(out, "model.embed_tokens.weight"), "distill on a NaN teacher: exit %d: %s", rc, out);
    /* --lr nan: refused by the flag layer before any work, the flag named */
    remove("build/tests/nf_lr.safetensors");
    remove("build/tests/nf_lr.safetensors.state");
    snprintf(cmd, sizeof cmd, "%s %s --model %s --lr nan --out build/tests/nf_lr.safetensors", bin, base, MODEL);
    rc = run(cmd, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "--lr 'nan'"), "distill --lr nan exits %d (want 2, the flag named): %s", rc, out);
    CHECK(stat("build/tests/nf_lr.safetensors", &sb) != 0, "distill --lr nan wrote a checkpoint");
    {   /* finite weights whose attention overflows (wq of layer 0 at 3e38): the first loss is not
           finite; the stop names the teacher / data, not the learning rate, and no file it did not write */
        lc_model wm;
        long off, len;
        float big = 3e38f;
        size_t i, n;
        unsigned char *buf;
        FILE *in, *of;
        if (!CHECK(lc_model_load(&wm, MODEL, &err) == 0, "%s", err.msg)) return;
        off = 28 + (long)((const char *)wm.layers[0].wq.data - (const char *)wm.tok_emb.data);
        n = (size_t)wm.cfg.dim * (size_t)wm.cfg.dim;
        lc_model_free(&wm);
        in = fopen(MODEL, "rb");
        of = fopen("build/tests/nf_wq.bin", "wb");
        if (!CHECK(in && of, "cannot copy %s", MODEL)) { if (in) fclose(in); if (of) fclose(of); return; }
        fseek(in, 0, SEEK_END);
        len = ftell(in);
        fseek(in, 0, SEEK_SET);
        buf = (unsigned char *)malloc((size_t)len);
        if (buf && fread(buf, 1, (size_t)len, in) == (size_t)len) {
            for (i = 0; i < n; i++) memcpy(buf + off + 4 * (long)i, &big, 4);
            fwrite(buf, 1, (size_t)len, of);
        }
        free(buf);
        fclose(in);
        fclose(of);
        remove("build/tests/nf_wq.safetensors");
        remove("build/tests/nf_wq.safetensors.state");
        snprintf(cmd, sizeof cmd, "%s %s --model build/tests/nf_wq.bin --out build/tests/nf_wq.safetensors", bin, base);
        rc = run(cmd, out, sizeof out);
        CHECK(rc == 1, "distill on an overflowing teacher exits %d (want 1): %s", rc, out);
        CHECK(stat("build/tests/nf_wq.safetensors", &sb) != 0, "distill on an overflowing teacher wrote a checkpoint");
        CHECK(strstr(out, "not the learning rate") && strstr(out, "no checkpoint was written") && !strstr(out, "kept"),
              "distill on an overflowing teacher: the message does not name the cause / the files: %s", out);
    }
    /* a good checkpoint, then copies with a NaN metadata value and a NaN tensor */
    snprintf(cmd, sizeof cmd, "%s %s --model %s --force --out build/tests/nf_ok.safetensors", bin, base, MODEL);
    rc = run(cmd, out, sizeof out);
    if (!CHECK(rc == 0, "distill: exit %d: %s", rc, out)) return;
    if (!CHECK(lc_model_load(&m, MODEL, &err) == 0, "%s", err.msg)) return;
    if (CHECK(lc_lolcats_load(&lp, "build/tests/nf_ok.safetensors", &m, &err) == 0, "%s", err.msg))
        lc_lolcats_free(&lp);
    if (rewrite_st("build/tests/nf_ok.safetensors", "build/tests/nf_eps.safetensors", "eps", "nan", NULL)) {
        st = lc_lolcats_load(&lp, "build/tests/nf_eps.safetensors", &m, &err);
        CHECK(st != 0 && strstr(err.msg, "eps") && strstr(err.msg, "nan"), "checkpoint eps=nan: %d %s", (int)st,
              err.msg);
        if (st == 0) lc_lolcats_free(&lp);
    }
    if (rewrite_st("build/tests/nf_ok.safetensors", "build/tests/nf_alpha.safetensors", "lora_alpha", "inf", NULL)) {
        st = lc_lolcats_load(&lp, "build/tests/nf_alpha.safetensors", &m, &err);
        CHECK(st != 0 && strstr(err.msg, "lora_alpha"), "checkpoint lora_alpha=inf: %d %s", (int)st, err.msg);
        if (st == 0) lc_lolcats_free(&lp);
    }
    if (rewrite_st("build/tests/nf_ok.safetensors", "build/tests/nf_w.safetensors", NULL, NULL,
                   "model.layers.0.self_attn.feature_map_q.mlp.layer")) {
        st = lc_lolcats_load(&lp, "build/tests/nf_w.safetensors", &m, &err);
        CHECK(st != 0 && strstr(err.msg, "feature_map_q") && strstr(err.msg, "element 0"),
              "checkpoint with a NaN feature map: %d %s", (int)st, err.msg);
        if (st == 0) lc_lolcats_free(&lp);
    }
    if (rewrite_st("build/tests/nf_ok.safetensors.state", "build/tests/nf_st.safetensors.state", "lr", "nan", NULL)) {
        snprintf(cmd, sizeof cmd, "cp build/tests/nf_ok.safetensors build/tests/nf_st.safetensors && "
                 "%s %s --model %s --resume --out build/tests/nf_st.safetensors", bin, base, MODEL);
        rc = run(cmd, out, sizeof out);
        CHECK(rc != 0 && strstr(out, "lr") && strstr(out, "not a finite number"),
              "resume from a state with lr=nan: exit %d: %s", rc, out);
    }
    lc_model_free(&m);
}

int main(void) {
    lc_rng_seed(&rng, 16);
    bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    simd_vs_scalar();
    definitions_carry_nan();
    ref_cli();
    config_fields();
    eval_nan_model();
    teacher_train_ckpt();
    return check_done();
}
