/* test_sinks.c - attention sinks (lc_hybrid_cfg.sinks = S): the first S keys
   are window keys of every query and never linear keys, in the tk and sw
   masks, prefill and decode.
   1. masks for small N (printed), their rules checked for S = 0, 1, 4 and S >= N;
   2. every form (quadratic reference, the chunked form and the prefix-state form
      on the SIMD path, carried state, windows above the chunked form's limit,
      transfer calls) equal to the scalar quadratic reference at odd sizes,
      forward and backward; the chunked form with sinks (w <= 128, several
      chunks, S = 1, 4, 64 and S >= N, GQA, carried state) is asserted taken;
   3. forward and analytic backward (q k v phiq phik wf, carried S z, and the
      weights' gradient da) against a mask-explicit float64 restatement and its
      central finite differences;
   4. decode token by token == the sw prefill with sinks; S = 0 through the
      new sinks-aware state functions == the old ones;
   5. the ref grid's sinks cases (metadata, expected == float64);
   6. the command line (tiny model written here, no ../shared): distill --sinks
      records "sinks" in the checkpoint (absent without it), bad values are
      usage errors, eval --lolcats window-only with the window over the context
      is the softmax model, and --sinks changes it when the window is short. */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "tiny_files.h"

static lc_rng rng;

static float *randn(size_t n, float scale) {
    float *p = (float *)malloc(sizeof(float) * (n ? n : 1));
    size_t i;
    for (i = 0; i < n; i++) p[i] = lc_rng_normal(&rng) * scale;
    return p;
}

/* positive features (as a feature map's output) */
static float *randpos(size_t n) {
    float *p = (float *)malloc(sizeof(float) * (n ? n : 1));
    size_t i;
    for (i = 0; i < n; i++) p[i] = 0.05f + 0.5f * lc_rng_uniform(&rng);
    return p;
}

/* ---------------------------------------------------------------- 1. masks */
static void masks(void) {
    static const int Ss[] = {0, 1, 4, 9};
    int variant, si, n, w, i, j;
    for (variant = 0; variant < 2; variant++)
        for (si = 0; si < 4; si++) {
            lc_hybrid_cfg hc = lc_hybrid_cfg_default();
            hc.variant = variant;
            hc.window = 3;
            hc.sinks = Ss[si];
            printf("mask %s w=3 S=%d N=9 (1 window, 2 linear, 3 both, . masked)\n",
                   variant == LOLCATS_WINDOW_TK ? "tk" : "sw", hc.sinks);
            for (i = 0; i < 9; i++) {
                printf("   ");
                for (j = 0; j < 9; j++) {
                    int mk = lc_hybrid_mask(&hc, 9, i, j);
                    putchar(mk ? '0' + mk : '.');
                }
                putchar('\n');
            }
        }
    /* the rules, over many shapes (the tk N <= w quirk included) */
    for (variant = 0; variant < 2; variant++)
        for (w = 1; w <= 9; w += 2)
            for (n = 1; n <= 23; n += 3)
                for (si = 0; si < 4; si++) {
                    lc_hybrid_cfg h0 = lc_hybrid_cfg_default(), hs;
                    int bad = 0;
                    h0.variant = variant;
                    h0.window = w;
                    hs = h0;
                    hs.sinks = Ss[si] > n ? n + 3 : Ss[si];  /* S >= N too */
                    for (i = 0; i < n; i++)
                        for (j = 0; j < n; j++) {
                            int m0 = lc_hybrid_mask(&h0, n, i, j), ms = lc_hybrid_mask(&hs, n, i, j);
                            int want = j > i ? 0 : j < hs.sinks ? 1 : m0;
                            bad += ms != want;
                        }
                    CHECK(!bad, "mask %s w=%d N=%d S=%d: %d entries break the sink rule",
                          variant ? "tk" : "sw", w, n, hs.sinks, bad);
                }
    {
        lc_hybrid_cfg hc = lc_hybrid_cfg_default();
        hc.window = 4;
        hc.sinks = 1;
        CHECK(lc_hybrid_mask(&hc, 11, 10, 0) == 1 && lc_hybrid_mask(&hc, 11, 10, 1) == 2 &&
                  lc_hybrid_mask(&hc, 11, 10, 8) == 1,
              "tk w=4 S=1 N=11 row 10: sink 1, key 1 linear, key 8 window");
        CHECK(lc_hybrid_mask(&hc, 4, 3, 0) == 1 && lc_hybrid_mask(&hc, 4, 3, 1) == 3,
              "tk N <= w with S=1: the sink leaves the linear part, the rest stays both");
        CHECK(lc_hybrid_mask(&hc, 11, 0, 0) == 1 && lc_hybrid_mask(&hc, 11, 0, 1) == 0,
              "sink of row 0, future key masked");
    }
}

/* --------------------------------------------------- float64 restatement */
typedef struct {
    int B, H, Hk, N, D, F;
    lc_hybrid_cfg hc;
} dims;

/* y (and a) from the mask alone: window keys gamma exp(s - m), m = max over
   the window keys; linear keys lambda phiq.phik; carried state added */
static void naive_fwd(const dims *s, double *y, double *a, const double *q, const double *k,
                      const double *v, const double *pq, const double *pk, const double *wf,
                      const double *S, const double *z) {
    int B = s->B, H = s->H, Hk = s->Hk, N = s->N, D = s->D, F = s->F, b, h, i, j, d, c;
    double scale = 1.0 / sqrt((double)D);
    for (b = 0; b < B; b++)
        for (h = 0; h < H; h++) {
            int g = h / (H / Hk);
            double gam = 1.0 / (1.0 + exp(-wf[h])), lam = s->hc.affine ? 1.0 - gam : 1.0;
            for (i = 0; i < N; i++) {
                size_t row = ((size_t)b * H + h) * N + i;
                double mx = -(double)INFINITY, den0 = 0, den, *w = (double *)calloc((size_t)N, sizeof(double));
                const double *qi = q + row * D, *pqi = pq + row * F;
                for (j = 0; j <= i; j++)
                    if (lc_hybrid_mask(&s->hc, N, i, j) & 1) {
                        const double *kj = k + (((size_t)b * Hk + g) * N + j) * D;
                        double sc = 0;
                        for (d = 0; d < D; d++) sc += qi[d] * kj[d];
                        sc *= scale;
                        if (sc > mx) mx = sc;
                    }
                for (j = 0; j <= i; j++) {
                    int mk = lc_hybrid_mask(&s->hc, N, i, j);
                    const double *kj = k + (((size_t)b * Hk + g) * N + j) * D;
                    const double *pkj = pk + (((size_t)b * H + h) * N + j) * F;
                    if (mk & 1) {
                        double sc = 0;
                        for (d = 0; d < D; d++) sc += qi[d] * kj[d];
                        w[j] += gam * exp(sc * scale - mx);
                    }
                    if (mk & 2) {
                        double l = 0;
                        for (c = 0; c < F; c++) l += pqi[c] * pkj[c];
                        w[j] += lam * l;
                    }
                    den0 += w[j];
                }
                den = den0;
                for (d = 0; d < D; d++) {
                    double acc = 0;
                    for (j = 0; j <= i; j++) acc += w[j] * v[(((size_t)b * Hk + g) * N + j) * D + d];
                    if (S)
                        for (c = 0; c < F; c++)
                            acc += lam * pqi[c] * S[(((size_t)b * H + h) * F + c) * D + d];
                    y[row * D + d] = acc;
                }
                if (z)
                    for (c = 0; c < F; c++) den += lam * pqi[c] * z[((size_t)b * H + h) * F + c];
                for (d = 0; d < D; d++) y[row * D + d] /= den;
                if (a)
                    for (j = 0; j < N; j++) a[row * N + j] = j <= i ? w[j] / den0 : 0;
                free(w);
            }
        }
}

enum { I_Q, I_K, I_V, I_PQ, I_PK, I_WF, I_S, I_Z, NI };
static const char *iname[NI] = {"dq", "dk", "dv", "dphiq", "dphik", "dwf", "dkv_state", "dk_state"};

typedef struct {
    dims s;
    size_t n[NI];
    float *x[NI];       /* inputs (float) */
    float *dy, *da;
    int with_state;
} tcase;

static tcase make(int B, int H, int Hk, int N, int D, int F, int variant, int w, int S,
                  int affine, int with_state) {
    tcase t;
    memset(&t, 0, sizeof t);
    t.s.B = B; t.s.H = H; t.s.Hk = Hk; t.s.N = N; t.s.D = D; t.s.F = F;
    t.s.hc = lc_hybrid_cfg_default();
    t.s.hc.variant = variant; t.s.hc.window = w; t.s.hc.sinks = S; t.s.hc.affine = affine;
    t.with_state = with_state;
    t.n[I_Q] = (size_t)B * H * N * D; t.n[I_K] = t.n[I_V] = (size_t)B * Hk * N * D;
    t.n[I_PQ] = t.n[I_PK] = (size_t)B * H * N * F; t.n[I_WF] = (size_t)H;
    t.n[I_S] = with_state ? (size_t)B * H * F * D : 0; t.n[I_Z] = with_state ? (size_t)B * H * F : 0;
    t.x[I_Q] = randn(t.n[I_Q], 1.0f); t.x[I_K] = randn(t.n[I_K], 1.0f); t.x[I_V] = randn(t.n[I_V], 1.0f);
    t.x[I_PQ] = randpos(t.n[I_PQ]); t.x[I_PK] = randpos(t.n[I_PK]); t.x[I_WF] = randn(t.n[I_WF], 1.0f);
    t.x[I_S] = randn(t.n[I_S], 0.3f); t.x[I_Z] = randpos(t.n[I_Z]);
    t.dy = randn(t.n[I_Q], 1.0f);
    t.da = randn((size_t)B * H * N * N, 1.0f);
    return t;
}

static void unmake(tcase *t) {
    int p;
    for (p = 0; p < NI; p++) free(t->x[p]);
    free(t->dy); free(t->da);
}

/* forward + backward of one form: form 0 the quadratic reference (work NULL),
   1 the form work selects (the prefix-state form with sinks), 2 the reference
   with da. Outputs y, m, den and the gradients (caller frees). */
typedef struct { float *y, *m, *den, *a, *g[NI]; } outs;

static outs run_form(const lc_ctx *ctx, const tcase *t, int form) {
    const dims *s = &t->s;
    outs o;
    size_t nq = t->n[I_Q], nr = (size_t)s->B * s->H * s->N;
    float *work = form == 1 ? (float *)malloc(sizeof(float) * lc_attn_hybrid_work_floats(s->B, s->H, s->D, s->F)) : NULL;
    int p;
    const float *S = t->with_state ? t->x[I_S] : NULL, *z = t->with_state ? t->x[I_Z] : NULL;
    o.y = (float *)calloc(nq, sizeof(float));
    o.m = (float *)calloc(nr, sizeof(float));
    o.den = (float *)calloc(nr, sizeof(float));
    o.a = form == 2 ? (float *)calloc(nr * s->N, sizeof(float)) : NULL;
    for (p = 0; p < NI; p++) o.g[p] = (float *)calloc(t->n[p] ? t->n[p] : 1, sizeof(float));
    lc_attn_hybrid_fwd(ctx, o.y, o.a, o.m, o.den, work, t->x[I_Q], t->x[I_K], t->x[I_V], t->x[I_PQ],
                       t->x[I_PK], t->x[I_WF], S, z, s->B, s->H, s->Hk, s->N, s->D, s->F, &s->hc);
    lc_attn_hybrid_bwd(ctx, o.g[I_Q], o.g[I_K], o.g[I_V], o.g[I_PQ], o.g[I_PK], o.g[I_WF],
                       S ? o.g[I_S] : NULL, S ? o.g[I_Z] : NULL, work, t->dy, form == 2 ? t->da : NULL,
                       o.y, o.m, o.den, t->x[I_Q], t->x[I_K], t->x[I_V], t->x[I_PQ], t->x[I_PK],
                       t->x[I_WF], S, z, s->B, s->H, s->Hk, s->N, s->D, s->F, &s->hc);
    free(work);
    return o;
}

static void free_outs(outs *o) {
    int p;
    free(o->y); free(o->m); free(o->den); free(o->a);
    for (p = 0; p < NI; p++) free(o->g[p]);
}

static double gmax(const float *x, size_t n) {
    double m = 0;
    size_t i;
    for (i = 0; i < n; i++) m = fabs((double)x[i]) > m ? fabs((double)x[i]) : m;
    return m;
}

/* ------------------------------------- 2. every form == scalar reference */
/* does the work form run as the chunked form (>>hybrid-chunk)? */
static int chunked(const lc_hybrid_cfg *hc, int N) {
#if !defined(LOLCATS_NO_FAST)
    lc_ctx ctx;
    lc_ctx_init(&ctx);
    return lc__kern_for(&ctx)->hybrid_fwd && hc->window <= LC__HYB_WMAX && lc__hyb_sinks_fit(hc, N);
#else
    (void)hc; (void)N;
    return 0;
#endif
}

static void forms(int B, int H, int Hk, int N, int D, int F, int variant, int w, int S, int affine,
                  int with_state) {
    tcase t = make(B, H, Hk, N, D, F, variant, w, S, affine, with_state);
    lc_ctx sc, fast;
    outs r, o;
    int p;
    char what[160];
    lc_ctx_init(&fast);
    sc = fast;
    sc.simd = LOLCATS_SIMD_SCALAR;
    printf("forms: %s w=%d S=%d B=%d H=%d/%d N=%d D=%d F=%d%s%s [%s]%s\n", variant ? "tk" : "sw", w, S,
           B, H, Hk, N, D, F, affine ? " affine" : "", with_state ? " carried state" : "",
           lc_simd_name(fast.simd), chunked(&t.s.hc, N) ? " chunked form" : "");
    r = run_form(&sc, &t, 0);
    o = run_form(&fast, &t, 1);
    snprintf(what, sizeof what, "y (work form vs scalar ref)");
    check_close(what, o.y, r.y, t.n[I_Q], 1e-5, 1e-4);
    check_close("den", o.den, r.den, (size_t)B * H * N, 1e-5, 1e-4);
    check_close("m", o.m, r.m, (size_t)B * H * N, 1e-5, 1e-4);
    for (p = 0; p < NI; p++) {
        if (!t.n[p]) continue;
        snprintf(what, sizeof what, "%s (work form vs scalar ref)", iname[p]);
        check_close(what, o.g[p], r.g[p], t.n[p], 1e-4 * (gmax(r.g[p], t.n[p]) + 1), 1e-3);
    }
    free_outs(&o);
    o = run_form(&fast, &t, 0);  /* the quadratic reference on the SIMD prims */
    check_close("y (SIMD quadratic vs scalar)", o.y, r.y, t.n[I_Q], 1e-5, 1e-4);
    check_close("dq (SIMD quadratic vs scalar)", o.g[I_Q], r.g[I_Q], t.n[I_Q],
                1e-4 * (gmax(r.g[I_Q], t.n[I_Q]) + 1), 1e-3);
    free_outs(&o);
    free_outs(&r);
    unmake(&t);
}

/* the chunked form with sinks: asserted taken where a SIMD path exists */
static void forms_chunked(int B, int H, int Hk, int N, int D, int F, int variant, int w, int S,
                          int affine, int with_state) {
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    lc_ctx ctx;
    lc_ctx_init(&ctx);
    hc.variant = variant; hc.window = w; hc.sinks = S;
    if (ctx.simd != LOLCATS_SIMD_SCALAR)
        CHECK(chunked(&hc, N), "%s w=%d S=%d N=%d: not the chunked form", variant ? "tk" : "sw", w, S, N);
    forms(B, H, Hk, N, D, F, variant, w, S, affine, with_state);
}
/* attention transfer's calls with sinks (the fused step: the sink keys join
   the student's window inside the teacher's tiles; asserted taken on a SIMD
   path) must equal softmax + hybrid: the MSE step, and the fwd / bwd pair */
static void transfer(int N, int S, int H, int Hk) {
    int B = 1, D = 16, F = 16;
    tcase t = make(B, H, Hk, N, D, F, LOLCATS_WINDOW_TK, 64, S, 0, 0);
    lc_ctx ctx;
    size_t nq = t.n[I_Q], nr = (size_t)B * H * N;
    float *work = (float *)malloc(sizeof(float) * lc_attn_transfer_work_floats(B, H, N, D, F));
    float *yt = (float *)calloc(nq, 4), *y = (float *)calloc(nq, 4), *m = (float *)calloc(nr, 4);
    float *den = (float *)calloc(nr, 4), *dpq = (float *)calloc(t.n[I_PQ], 4), *dpk = (float *)calloc(t.n[I_PK], 4);
    float dwf[8] = {0, 0, 0, 0, 0, 0, 0, 0}, *ytr = (float *)calloc(nq, 4), *dy = (float *)calloc(nq, 4);
    float dwf2[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    outs r;
    double loss;
    size_t i;
    lc_ctx_init(&ctx);
    printf("transfer: tk w=64 S=%d N=%d H=%d/%d [%s]\n", S, N, H, Hk, lc_simd_name(ctx.simd));
#if !defined(LOLCATS_NO_FAST)
    if (ctx.simd != LOLCATS_SIMD_SCALAR) {
        lc__sm_plan pl;
        CHECK(lc__xfer_fast(&ctx, &pl, H, Hk, N, D, &t.s.hc), "transfer S=%d N=%d: not the fused step", S, N);
    }
#endif
    loss = lc_attn_transfer_mse(&ctx, yt, NULL, y, m, den, dpq, dpk, dwf, work, t.x[I_Q], t.x[I_K],
                                t.x[I_V], t.x[I_PQ], t.x[I_PK], t.x[I_WF], B, H, Hk, N, D, F, (float)nq,
                                &t.s.hc);
    /* the same from the reference: factor n, dy = 2 (y - yt) */
    lc_attn_softmax_fwd(&ctx, ytr, NULL, t.x[I_Q], t.x[I_K], t.x[I_V], B, H, Hk, N, D);
    {
        lc_ctx sc = ctx;
        sc.simd = LOLCATS_SIMD_SCALAR;
        r = run_form(&sc, &t, 0);  /* forward only is used from here */
        for (i = 0; i < nq; i++) dy[i] = 2.0f * (r.y[i] - ytr[i]);
        free_outs(&r);
        memcpy(t.dy, dy, sizeof(float) * nq);
        r = run_form(&sc, &t, 0);
    }
    check_close("transfer y vs hybrid ref", y, r.y, nq, 1e-5, 1e-4);
    {
        double l = 0;
        for (i = 0; i < nq; i++) l += ((double)r.y[i] - (double)ytr[i]) * ((double)r.y[i] - (double)ytr[i]);
        CHECK(fabs(loss - l) <= 1e-4 * l + 1e-9, "transfer loss %.9g vs reference %.9g", loss, l);
    }
    check_close("transfer dphiq vs hybrid ref", dpq, r.g[I_PQ], t.n[I_PQ], 1e-4 * gmax(r.g[I_PQ], t.n[I_PQ]), 1e-3);
    check_close("transfer dphik vs hybrid ref", dpk, r.g[I_PK], t.n[I_PK], 1e-4 * gmax(r.g[I_PK], t.n[I_PK]), 1e-3);
    check_close("transfer dwf vs hybrid ref", dwf, r.g[I_WF], (size_t)H, 1e-4 * gmax(r.g[I_WF], (size_t)H) + 1e-9, 1e-3);
    /* the fwd / bwd pair (the bwd reads the states the fwd left in work) */
    memset(dpq, 0, sizeof(float) * t.n[I_PQ]);
    memset(dpk, 0, sizeof(float) * t.n[I_PK]);
    lc_attn_transfer_fwd(&ctx, yt, NULL, y, m, den, work, t.x[I_Q], t.x[I_K], t.x[I_V], t.x[I_PQ],
                         t.x[I_PK], t.x[I_WF], B, H, Hk, N, D, F, &t.s.hc);
    check_close("transfer_fwd y vs hybrid ref", y, r.y, nq, 1e-5, 1e-4);
    check_close("transfer_fwd yt vs softmax", yt, ytr, nq, 1e-5, 1e-4);
    lc_attn_transfer_bwd(&ctx, dpq, dpk, dwf2, work, dy, y, m, den, t.x[I_Q], t.x[I_K], t.x[I_V],
                         t.x[I_PQ], t.x[I_PK], t.x[I_WF], B, H, Hk, N, D, F, &t.s.hc);
    check_close("transfer_bwd dphiq vs hybrid ref", dpq, r.g[I_PQ], t.n[I_PQ], 1e-4 * gmax(r.g[I_PQ], t.n[I_PQ]), 1e-3);
    check_close("transfer_bwd dphik vs hybrid ref", dpk, r.g[I_PK], t.n[I_PK], 1e-4 * gmax(r.g[I_PK], t.n[I_PK]), 1e-3);
    check_close("transfer_bwd dwf vs hybrid ref", dwf2, r.g[I_WF], (size_t)H, 1e-4 * gmax(r.g[I_WF], (size_t)H) + 1e-9, 1e-3);
    free_outs(&r);
    free(work); free(yt); free(y); free(m); free(den); free(dpq); free(dpk); free(ytr); free(dy);
    unmake(&t);
}

/* ------------------------------------------ 3. float64 + finite differences */
static double loss64(const tcase *t, double **x, int with_da, double *y_out) {
    const dims *s = &t->s;
    size_t nq = t->n[I_Q], na = (size_t)s->B * s->H * s->N * s->N, i;
    double *y = (double *)calloc(nq, sizeof(double)), *a = (double *)calloc(na, sizeof(double)), L = 0;
    naive_fwd(s, y, a, x[I_Q], x[I_K], x[I_V], x[I_PQ], x[I_PK], x[I_WF],
              t->with_state ? x[I_S] : NULL, t->with_state ? x[I_Z] : NULL);
    for (i = 0; i < nq; i++) L += y[i] * (double)t->dy[i];
    if (with_da)
        for (i = 0; i < na; i++) L += a[i] * (double)t->da[i];
    if (y_out) memcpy(y_out, y, sizeof(double) * nq);
    free(y); free(a);
    return L;
}

static void grads(int variant, int N, int w, int S, int affine, int with_state) {
    tcase t = make(1, 2, 1, N, 4, 6, variant, w, S, affine, with_state);
    double *x[NI], *yd;
    int p, form, path;
    size_t i;
    char what[160];
    for (p = 0; p < NI; p++) {
        x[p] = (double *)malloc(sizeof(double) * (t.n[p] ? t.n[p] : 1));
        for (i = 0; i < t.n[p]; i++) x[p][i] = (double)t.x[p][i];
    }
    printf("gradients: %s w=%d S=%d N=%d GQA 2/1%s%s\n", variant ? "tk" : "sw", w, S, N,
           affine ? " affine" : "", with_state ? " carried state" : "");
    yd = (double *)malloc(sizeof(double) * t.n[I_Q]);
    for (form = 0; form < 3; form++) {
        float *fd[NI];
        for (p = 0; p < NI; p++) {  /* central differences of the float64 function */
            fd[p] = (float *)calloc(t.n[p] ? t.n[p] : 1, sizeof(float));
            for (i = 0; i < t.n[p]; i++) {
                double keep = x[p][i], h = 1e-6 * (fabs(keep) > 1 ? fabs(keep) : 1), lp, lm;
                x[p][i] = keep + h;
                lp = loss64(&t, x, form == 2, NULL);
                x[p][i] = keep - h;
                lm = loss64(&t, x, form == 2, NULL);
                x[p][i] = keep;
                fd[p][i] = (float)((lp - lm) / (2 * h));
            }
        }
        loss64(&t, x, form == 2, yd);
        for (path = 0; path < 2; path++) {
            lc_ctx ctx;
            outs o;
            float *yf = (float *)malloc(sizeof(float) * t.n[I_Q]);
            lc_ctx_init(&ctx);
            if (path == 0) ctx.simd = LOLCATS_SIMD_SCALAR;
            if (form == 1 && path == 0) { free(yf); continue; }  /* work needs a SIMD path */
            o = run_form(&ctx, &t, form);
            for (i = 0; i < t.n[I_Q]; i++) yf[i] = (float)yd[i];
            snprintf(what, sizeof what, "[%s] %s y vs float64", lc_simd_name(ctx.simd),
                     form == 0 ? "quadratic" : form == 1 ? "work form" : "quadratic + da");
            check_close(what, o.y, yf, t.n[I_Q], 2e-6, 2e-5);
            for (p = 0; p < NI; p++) {
                if (!t.n[p]) continue;
                snprintf(what, sizeof what, "[%s] %s %s vs finite differences", lc_simd_name(ctx.simd),
                         form == 0 ? "quadratic" : form == 1 ? "work form" : "quadratic + da", iname[p]);
                check_close(what, o.g[p], fd[p], t.n[p], 1e-4 * (gmax(fd[p], t.n[p]) > 1 ? gmax(fd[p], t.n[p]) : 1), 1e-3);
            }
            free_outs(&o);
            free(yf);
        }
        for (p = 0; p < NI; p++) free(fd[p]);
    }
    free(yd);
    for (p = 0; p < NI; p++) free(x[p]);
    unmake(&t);
}

/* ------------------------------------------------------------ 4. decode */
static void decode(int variant, int N, int w, int S, int simd) {
    int H = 4, Hk = 2, D = 8, F = 6, i, h, g;
    tcase t = make(1, H, Hk, N, D, F, LOLCATS_WINDOW_SW, w, S, 0, 0);
    lc_ctx ctx;
    lc_decode_state st;
    size_t nq = t.n[I_Q];
    float *mem = (float *)malloc(sizeof(float) * lc_decode_state_floats_sinks(H, Hk, D, F, w, S));
    float *yd = (float *)calloc(nq, 4), *yt = (float *)calloc((size_t)H * D, 4);
    float *qt = (float *)calloc((size_t)H * D, 4), *kt = (float *)calloc((size_t)Hk * D, 4);
    float *vt = (float *)calloc((size_t)Hk * D, 4), *pq = (float *)calloc((size_t)H * F, 4);
    float *pk = (float *)calloc((size_t)H * F, 4);
    outs r;
    char what[160];
    lc_ctx_init(&ctx);
    if (!simd) ctx.simd = LOLCATS_SIMD_SCALAR;
    (void)variant;
    r = run_form(&ctx, &t, 0);  /* decode is the sw recurrence for tk models too (as the original) */
    lc_decode_state_init_sinks(&st, mem, H, Hk, D, F, w, S);
    for (i = 0; i < N; i++) {
        for (h = 0; h < H; h++) {
            memcpy(qt + (size_t)h * D, t.x[I_Q] + ((size_t)h * N + i) * D, sizeof(float) * D);
            memcpy(pq + (size_t)h * F, t.x[I_PQ] + ((size_t)h * N + i) * F, sizeof(float) * F);
            memcpy(pk + (size_t)h * F, t.x[I_PK] + ((size_t)h * N + i) * F, sizeof(float) * F);
        }
        for (g = 0; g < Hk; g++) {
            memcpy(kt + (size_t)g * D, t.x[I_K] + ((size_t)g * N + i) * D, sizeof(float) * D);
            memcpy(vt + (size_t)g * D, t.x[I_V] + ((size_t)g * N + i) * D, sizeof(float) * D);
        }
        lc_attn_hybrid_decode(&ctx, yt, &st, qt, kt, vt, pq, pk, t.x[I_WF], 0);
        for (h = 0; h < H; h++) memcpy(yd + ((size_t)h * N + i) * D, yt + (size_t)h * D, sizeof(float) * D);
    }
    snprintf(what, sizeof what, "[%s] decode w=%d S=%d N=%d == sw prefill", lc_simd_name(ctx.simd), w, S, N);
    check_close(what, yd, r.y, nq, 1e-5, 1e-4);
    free_outs(&r);
    free(mem); free(yd); free(yt); free(qt); free(kt); free(vt); free(pq); free(pk);
    unmake(&t);
}

static void decode_api(void) {
    lc_decode_state a, b;
    float *ma, *mb;
    size_t n0 = lc_decode_state_floats(4, 2, 8, 6, 5);
    CHECK(n0 == lc_decode_state_floats_sinks(4, 2, 8, 6, 5, 0), "S = 0 state size == the old query");
    CHECK(lc_decode_state_floats_sinks(4, 2, 8, 6, 5, 3) == n0 + 2 * 2 * 3 * 8,
          "S = 3 keeps 3 keys and values per kv head beside the ring");
    ma = (float *)malloc(sizeof(float) * n0);
    mb = (float *)malloc(sizeof(float) * n0);
    lc_decode_state_init(&a, ma, 4, 2, 8, 6, 5);
    lc_decode_state_init_sinks(&b, mb, 4, 2, 8, 6, 5, 0);
    CHECK(a.sinks == 0 && !a.k_sink && !a.v_sink && b.S - mb == a.S - ma && b.z - mb == a.z - ma,
          "lc_decode_state_init == lc_decode_state_init_sinks(S = 0)");
    free(ma); free(mb);
}

/* ----------------------------------------- the ref grid's sinks cases */
/* each grid case with sinks: written, its metadata carries sinks, and the
   expected outputs of the default path equal the float64 ones (>>ref-f64) */
static void grid(void) {
    int i, found = 0;
    char nm[64], path[256];
    if (system("mkdir -p build/tests/sinks") != 0) { CHECK(0, "mkdir build/tests/sinks"); return; }
    for (i = 0; i < lc_ref_grid_count(); i++) {
        lc_st_file *f = NULL;
        lc_error err;
        int t;
        lc_ref_grid_name(i, nm, sizeof nm);
        if (!strstr(nm, "sinks")) continue;
        found++;
        snprintf(path, sizeof path, "build/tests/sinks/%s.safetensors", nm);
        if (!CHECK(lc_ref_grid_write(path, i, &err) == LOLCATS_OK, "grid %s: %s", nm, err.msg)) continue;
        if (!CHECK(lc_st_open(&f, path, &err) == LOLCATS_OK, "open %s: %s", path, err.msg)) continue;
        CHECK(lc_st_meta(f, "sinks") && atoi(lc_st_meta(f, "sinks")) > 0, "grid %s: no sinks metadata", nm);
        printf("grid case %s (sinks %s)\n", nm, lc_st_meta(f, "sinks") ? lc_st_meta(f, "sinks") : "?");
        for (t = 0; t < lc_st_count(f); t++) {
            const lc_tensor *x = lc_st_tensor_at(f, t), *r;
            char fn[96], what[160];
            if (!strncmp(x->name, "f64.", 4)) continue;
            snprintf(fn, sizeof fn, "f64.%s", x->name);
            if (!(r = lc_st_find(f, fn))) continue;
            snprintf(what, sizeof what, "%s: %s vs f64", nm, x->name);
            check_close(what, (const float *)x->data, (const float *)r->data, lc_tensor_numel(x),
                        1e-4 * (gmax((const float *)r->data, lc_tensor_numel(r)) + 1e-3), 1e-3);
        }
        lc_st_close(f);
    }
    CHECK(found >= 5, "the ref grid has %d sinks cases (5 expected)", found);
}

/* ------------------------------------------------------ 6. command line */
#define SD "build/tests/sinks"
#define TINY "--model " SD "/m.bin --tokenizer " SD "/tok.bin --data " SD "/d.txt"
static int cli(const char *args) {
    char cmd[2048];
    const char *bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s %s >" SD "/log.txt 2>&1", bin, args);
    return tiny_sh(cmd);
}

static double cli_nll(const char *args) {
    char buf[4096];
    FILE *f;
    size_t n;
    const char *p;
    if (cli(args) != 0) return -1;
    f = fopen(SD "/log.txt", "r");
    n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
    p = strstr(buf, "\"nll\": ");
    return p ? atof(p + 7) : -1;
}

static void cmdline(void) {
    const char *bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    char cmd[600];
    lc_st_file *f = NULL;
    lc_error err;
    double base, w64, w8, w8s;
    snprintf(cmd, sizeof cmd, "%s --version >/dev/null 2>&1", bin);
    if (tiny_sh(cmd) != 0) { printf("SKIPPED: command line (%s does not run; make builds it)\n", bin); return; }
    printf("command line (tiny model)\n");
    CHECK(tiny_write_model(SD "/m.bin") && tiny_write_tokenizer(SD "/tok.bin") && tiny_write_text(SD "/d.txt"),
          "tiny files");
#define D_OPTS TINY " --seq-len 32 --grad-accum 2 --tokens 640 --val-seqs 2 --val-every 0 --seed 5 --feature-dim 4 --window 8 --force"
    CHECK(cli("distill " D_OPTS " --sinks 2 --out " SD "/s2.safetensors") == 0, "distill --sinks 2 failed (" SD "/log.txt)");
    if (CHECK(lc_st_open(&f, SD "/s2.safetensors", &err) == LOLCATS_OK, "open: %s", err.msg)) {
        CHECK(lc_st_meta(f, "sinks") && !strcmp(lc_st_meta(f, "sinks"), "2"), "checkpoint metadata sinks: %s",
              lc_st_meta(f, "sinks") ? lc_st_meta(f, "sinks") : "(absent)");
        lc_st_close(f);
    }
    CHECK(cli("distill " D_OPTS " --out " SD "/s0.safetensors") == 0, "distill failed (" SD "/log.txt)");
    if (CHECK(lc_st_open(&f, SD "/s0.safetensors", &err) == LOLCATS_OK, "open: %s", err.msg)) {
        CHECK(!lc_st_meta(f, "sinks"), "a checkpoint without sinks records sinks=%s", lc_st_meta(f, "sinks"));
        lc_st_close(f);
    }
    CHECK(cli("distill " D_OPTS " --sinks -1 --out " SD "/bad.safetensors") == 2, "--sinks -1 is not a usage error");
    CHECK(cli("distill " D_OPTS " --sinks 2x --out " SD "/bad.safetensors") == 2, "--sinks 2x is not a usage error");
    CHECK(cli("eval " TINY " --ctx 32 --lolcats window-only --sinks abc") == 2, "eval --sinks abc is not a usage error");
    base = cli_nll("eval " TINY " --ctx 32 --json");
    w64 = cli_nll("eval " TINY " --ctx 32 --json --lolcats window-only --variant sw --window 64");
    w8 = cli_nll("eval " TINY " --ctx 32 --json --lolcats window-only --variant sw --window 4");
    w8s = cli_nll("eval " TINY " --ctx 32 --json --lolcats window-only --variant sw --window 4 --sinks 2");
    printf("  eval NLL: softmax %.6f, window-only w=64 %.6f, w=4 %.6f, w=4 + 2 sinks %.6f\n", base, w64, w8, w8s);
    CHECK(base > 0 && fabs(w64 - base) < 1e-4, "window-only over the context %.6f != softmax %.6f", w64, base);
    CHECK(w8 > 0 && w8s > 0 && fabs(w8 - w8s) > 1e-6, "--sinks does not change a short window's NLL");
    CHECK(cli_nll("eval " TINY " --ctx 32 --json --lolcats " SD "/s2.safetensors") > 0, "eval of the sinks checkpoint failed");
#undef D_OPTS
}

int main(void) {
    static const int Ss[] = {1, 3, 7};
    int si, variant;
    lc_rng_seed(&rng, 19);
    masks();
    decode_api();
    for (variant = 0; variant < 2; variant++)
        for (si = 0; si < 3; si++) {
            forms(1, 2, 1, 37, 13, 10, variant, 4, Ss[si], 0, 0);
            forms(2, 4, 2, 131, 16, 32, variant, 16, Ss[si], si == 1, si == 2);
        }
    forms(1, 2, 2, 141, 8, 8, LOLCATS_WINDOW_TK, 64, 4, 0, 0);
    forms(1, 2, 1, 301, 8, 8, LOLCATS_WINDOW_SW, 130, 4, 0, 1);  /* above the chunked form's window */
    forms(1, 2, 1, 23, 8, 8, LOLCATS_WINDOW_TK, 64, 40, 0, 0);   /* tk N <= w, S >= N */
    /* the chunked form: several chunks of 64 rows, block edges off the tk grid */
    forms_chunked(1, 4, 2, 300, 16, 16, LOLCATS_WINDOW_TK, 64, 1, 0, 1);
    forms_chunked(2, 4, 2, 300, 16, 16, LOLCATS_WINDOW_TK, 64, 4, 1, 0);
    forms_chunked(1, 4, 1, 257, 16, 16, LOLCATS_WINDOW_TK, 64, 64, 0, 1);
    forms_chunked(1, 4, 1, 257, 16, 16, LOLCATS_WINDOW_SW, 64, 64, 0, 0);
    forms_chunked(1, 2, 1, 333, 8, 8, LOLCATS_WINDOW_SW, 64, 4, 0, 1);
    forms_chunked(1, 2, 1, 330, 8, 8, LOLCATS_WINDOW_TK, 128, 4, 0, 1);
    forms_chunked(1, 2, 1, 250, 8, 8, LOLCATS_WINDOW_SW, 100, 70, 1, 0);
    forms_chunked(1, 2, 1, 200, 8, 8, LOLCATS_WINDOW_TK, 64, 200, 0, 1);  /* S >= N */
    forms_chunked(1, 2, 1, 150, 8, 8, LOLCATS_WINDOW_SW, 32, 1000, 0, 0);
    forms_chunked(1, 2, 1, 129, 8, 8, LOLCATS_WINDOW_TK, 64, 65, 0, 0);   /* sinks meet the block */
    forms(1, 2, 1, 700, 8, 8, LOLCATS_WINDOW_TK, 128, 128, 0, 1);  /* past the blocks' room: state form */
    transfer(256, 4, 2, 1);
    transfer(192, 1, 2, 1);
    transfer(320, 64, 4, 2);   /* a whole block of sinks, GQA */
    transfer(384, 100, 4, 1);  /* sinks over more than one block */
    transfer(256, 300, 2, 2);  /* S >= N: softmax for every row */
    transfer(512, 7, 8, 2);
    for (variant = 0; variant < 2; variant++) {
        grads(variant, 11, 3, 2, 0, 0);
        grads(variant, 9, 3, 4, 1, 1);
    }
    grads(LOLCATS_WINDOW_TK, 6, 8, 2, 0, 0);  /* tk N <= w quirk with sinks */
    for (si = 0; si < 3; si++) {
        decode(LOLCATS_WINDOW_SW, 29, 4, Ss[si], 0);
        decode(LOLCATS_WINDOW_SW, 29, 4, Ss[si], 1);
    }
    decode(LOLCATS_WINDOW_SW, 40, 8, 0, 1);
    decode(LOLCATS_WINDOW_SW, 12, 16, 3, 1);
    grid();
    cmdline();
    return check_done();
}
