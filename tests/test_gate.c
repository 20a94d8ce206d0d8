/* test_gate.c - the gated linear state of the hybrid (lc_hybrid_args.log_g,
   >>gate): every form against an independent double-precision definition at
   odd sizes, finite-difference gradients of that definition in double for
   q k v phiq phik wf log_g and the carried state (through dy and da), the gate
   projection and its gradient, a 4096-token sequence with strong decay, gated
   decode token by token against the gated prefill, and log_g == 0 against the
   ungated kernels; plus the args struct against the positional calls. The
   chunked form (several 64-row chunks, GQA, tk and sw, w 16 / 64, log g in
   [-3, -0.01]) against the quadratic reference and FD of the definition, and
   the kernel table's choice of it (LOLCATS_COUNT_FAST counters); the
   prefix-state forms (windows over LC__HYB_WMAX) against the quadratic one.
   Every form also with attention sinks (cfg.sinks, fewer and more than the
   window), gated decode with sinks included. */
#define LOLCATS_COUNT_FAST
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"

static lc_rng rng;

static float *randn(size_t n, float s) {
    float *p = (float *)malloc(sizeof(float) * (n ? n : 1));
    size_t i;
    for (i = 0; i < n; i++) p[i] = s * lc_rng_normal(&rng);
    return p;
}
static float *randu(size_t n, float lo, float hi) {
    float *p = (float *)malloc(sizeof(float) * (n ? n : 1));
    size_t i;
    for (i = 0; i < n; i++) p[i] = lo + (hi - lo) * lc_rng_uniform(&rng);
    return p;
}
static float *zeros(size_t n) { return (float *)calloc(n ? n : 1, sizeof(float)); }
static double *tod(const float *a, size_t n) {
    double *p = (double *)malloc(sizeof(double) * (n ? n : 1));
    size_t i;
    for (i = 0; i < n; i++) p[i] = a ? (double)a[i] : 0.0;
    return p;
}

// One case's inputs in double: the definition the kernels are checked against.
typedef struct {
    int B, H, Hk, N, D, F, state;
    lc_hybrid_cfg cfg;
    double *q, *k, *v, *pq, *pk, *wf, *lg, *S, *z;
} dcase;

// Naive gated hybrid, straight from the formulas of >>attn-hybrid and >>gate,
// masks from lc_hybrid_mask; returns sum dy.y + sum da.a.
static double dref(const dcase *c, double *y, double *a, const double *dy, const double *da) {
    int B = c->B, H = c->H, Hk = c->Hk, N = c->N, D = c->D, F = c->F, b, h, i, j, d, e;
    double loss = 0, sc = 1.0 / sqrt((double)D);
    double *num = (double *)malloc(sizeof(double) * D), *wt = (double *)malloc(sizeof(double) * N);
    for (b = 0; b < B; b++)
        for (h = 0; h < H; h++) {
            int g = h / (H / Hk), bh = b * H + h;
            double gam = 1.0 / (1.0 + exp(-c->wf[h])), lam = c->cfg.affine ? 1.0 - gam : 1.0;
            for (i = 0; i < N; i++) {
                const double *qi = c->q + ((size_t)bh * N + i) * D, *pqi = c->pq + ((size_t)bh * N + i) * F;
                double mx = -(double)INFINITY, den0 = 0, den, G = 0, qS;
                for (j = 0; j <= i; j++) {
                    int mk = lc_hybrid_mask(&c->cfg, N, i, j);
                    double s = 0;
                    for (d = 0; d < D; d++) s += qi[d] * c->k[(((size_t)b * Hk + g) * N + j) * D + d];
                    s *= sc;
                    if ((mk & 1) && s > mx) mx = s;
                    wt[j] = s;
                }
                for (j = 0; j <= i; j++) {
                    int mk = lc_hybrid_mask(&c->cfg, N, i, j), t;
                    double w = 0;
                    if (mk & 1) w += gam * exp(wt[j] - mx);
                    if (mk & 2) {
                        double qk = 0, lsum = 0;
                        for (e = 0; e < F; e++) qk += pqi[e] * c->pk[((size_t)bh * N + j) * F + e];
                        for (t = j + 1; t <= i; t++) lsum += c->lg[(size_t)bh * N + t];
                        w += lam * exp(lsum) * qk;
                    }
                    wt[j] = w;
                    den0 += w;
                }
                for (d = 0; d < D; d++) {
                    num[d] = 0;
                    for (j = 0; j <= i; j++) num[d] += wt[j] * c->v[(((size_t)b * Hk + g) * N + j) * D + d];
                }
                den = den0;
                if (c->state) {
                    for (j = 0; j <= i; j++) G += c->lg[(size_t)bh * N + j];
                    G = lam * exp(G);
                    qS = 0;
                    for (e = 0; e < F; e++) qS += pqi[e] * c->z[(size_t)bh * F + e];
                    den += G * qS;
                    for (d = 0; d < D; d++)
                        for (e = 0; e < F; e++) num[d] += G * pqi[e] * c->S[((size_t)bh * F + e) * D + d];
                }
                for (d = 0; d < D; d++) {
                    double yy = num[d] / den;
                    if (y) y[((size_t)bh * N + i) * D + d] = yy;
                    if (dy) loss += dy[((size_t)bh * N + i) * D + d] * yy;
                }
                for (j = 0; j < N; j++) {
                    double aa = j <= i ? wt[j] / den0 : 0;
                    if (a) a[((size_t)bh * N + i) * N + j] = aa;
                    if (da) loss += da[((size_t)bh * N + i) * N + j] * aa;
                }
            }
        }
    free(num); free(wt);
    return loss;
}

static void tof(float *o, const double *a, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) o[i] = (float)a[i];
}

// FD (central, double) of the definition on every stride-th entry of x vs g.
static int fd_check(const char *what, dcase *c, double *x, const float *g, size_t n,
                    const double *dy, const double *da, size_t stride) {
    size_t i, bad = 0, cnt = 0;
    double worst = 0, h = 1e-6;
    for (i = 0; i < n; i += stride) {
        double x0 = x[i], lp, lm, fd, err;
        x[i] = x0 + h; lp = dref(c, NULL, NULL, dy, da);
        x[i] = x0 - h; lm = dref(c, NULL, NULL, dy, da);
        x[i] = x0;
        fd = (lp - lm) / (2 * h);
        err = fabs(fd - (double)g[i]) / (1e-3 + fabs(fd));
        if (err > worst) worst = err;
        if (err > 2e-3) bad++;
        cnt++;
    }
    printf("  FD %-12s %4zu entries, worst rel %.2e %s\n", what, cnt, worst, bad ? "FAIL" : "PASS");
    return CHECK(bad == 0, "FD %s: %zu of %zu entries off", what, bad, cnt);
}

static void one_case(lc_ctx *ctx, int variant, int N, int w, int affine, int state, int Hk, int sinks) {
    int B = 2, H = 4, D = 7, F = 6;
    size_t nq = (size_t)B * H * N * D, nk = (size_t)B * Hk * N * D, nf = (size_t)B * H * N * F;
    size_t nr = (size_t)B * H * N, na = (size_t)B * H * N * N, ns = (size_t)B * H * F * D, nz = (size_t)B * H * F;
    lc_hybrid_cfg cfg = lc_hybrid_cfg_default();
    lc_hybrid_args x = lc_hybrid_args_default();
    dcase c;
    float *q = randn(nq, 1), *k = randn(nk, 1), *v = randn(nk, 1);
    float *pq = randu(nf, 0.05f, 1), *pk = randu(nf, 0.05f, 1), *wf = randn((size_t)H, 1);
    float *lg = randu(nr, -0.7f, 0), *S = state ? randu(ns, 0, 1) : NULL, *z = state ? randu(nz, 0.5f, 1.5f) : NULL;
    float *y = zeros(nq), *a = zeros(na), *m = zeros(nr), *den = zeros(nr), *y2 = zeros(nq);
    float *m2 = zeros(nr), *den2 = zeros(nr);
    float *work = zeros(lc_attn_hybrid_work_floats(B, H, D, F));
    float *dyf = randn(nq, 1), *daf = randn(na, 1);
    double *yd = (double *)malloc(sizeof(double) * nq), *ad = (double *)malloc(sizeof(double) * na);
    double *dyd, *dad;
    float *yr = zeros(nq), *ar = zeros(na);
    char nm[96];
    cfg.variant = variant; cfg.window = w; cfg.affine = affine; cfg.sinks = sinks;
    snprintf(nm, sizeof nm, "%s N=%d w=%d%s%s Hk=%d sinks=%d", variant ? "tk" : "sw", N, w,
             affine ? " affine" : "", state ? " state" : "", Hk, sinks);
    printf(" case %s\n", nm);
    c.B = B; c.H = H; c.Hk = Hk; c.N = N; c.D = D; c.F = F; c.state = state; c.cfg = cfg;
    c.q = tod(q, nq); c.k = tod(k, nk); c.v = tod(v, nk); c.pq = tod(pq, nf); c.pk = tod(pk, nf);
    c.wf = tod(wf, (size_t)H); c.lg = tod(lg, nr); c.S = tod(S, ns); c.z = tod(z, nz);
    dref(&c, yd, ad, NULL, NULL);
    tof(yr, yd, nq); tof(ar, ad, na);
    x.B = B; x.H = H; x.Hk = Hk; x.N = N; x.D = D; x.F = F; x.cfg = &cfg;
    x.q = q; x.k = k; x.v = v; x.phiq = pq; x.phik = pk; x.wf = wf; x.kv_state = S; x.k_state = z;
    x.log_g = lg; x.y = y; x.a = a; x.m = m; x.den = den;
    lc_attn_hybrid_fwd_args(ctx, &x);  // quadratic reference (a requested)
    check_close("gated quadratic y vs double", y, yr, nq, 1e-5, 1e-4);
    check_close("gated quadratic a vs double", a, ar, na, 1e-6, 1e-4);
    x.a = NULL; x.y = y2; x.m = m2; x.den = den2; x.work = work;
    lc_attn_hybrid_fwd_args(ctx, &x);  // prefix-state form
    check_close("gated prefix-state y vs double", y2, yr, nq, 1e-5, 1e-4);
    check_close("gated prefix-state den vs quadratic", den2, den, nr, 1e-5, 1e-4);
    {  // backward, FD of the definition: quadratic reference through dy and da;
       // with work and dy only the prefix-state form (on a SIMD path)
        int form;
        double *z0 = (double *)calloc(na, sizeof(double));
        dyd = tod(dyf, nq); dad = tod(daf, na);
        for (form = 0; form < 2; form++) {
            float *dq = zeros(nq), *dk = zeros(nk), *dv = zeros(nk), *dpq = zeros(nf), *dpk = zeros(nf);
            float *dwf = zeros((size_t)H), *dlg = zeros(nr), *dS = zeros(ns), *dz = zeros(nz);
            size_t st = N > 20 ? 5 : 1;
            const double *dda = form ? z0 : dad;
            printf("  backward: %s\n", form ? "dy only, work set" : "dy and da, quadratic");
            x.y = y; x.m = m; x.den = den; x.work = form ? work : NULL;
            x.dy = dyf; x.da = form ? NULL : daf; x.dq = dq; x.dk = dk; x.dv = dv; x.dphiq = dpq; x.dphik = dpk;
            x.dwf = dwf; x.dlog_g = dlg; x.dkv_state = state ? dS : NULL; x.dk_state = state ? dz : NULL;
            lc_attn_hybrid_bwd_args(ctx, &x);
            fd_check("q", &c, c.q, dq, nq, dyd, dda, st);
            fd_check("k", &c, c.k, dk, nk, dyd, dda, st);
            fd_check("v", &c, c.v, dv, nk, dyd, dda, st);
            fd_check("phiq", &c, c.pq, dpq, nf, dyd, dda, st);
            fd_check("phik", &c, c.pk, dpk, nf, dyd, dda, st);
            fd_check("wf", &c, c.wf, dwf, (size_t)H, dyd, dda, 1);
            fd_check("log_g", &c, c.lg, dlg, nr, dyd, dda, 1);
            if (state) {
                fd_check("kv_state", &c, c.S, dS, ns, dyd, dda, 3);
                fd_check("k_state", &c, c.z, dz, nz, dyd, dda, 1);
            }
            free(dq); free(dk); free(dv); free(dpq); free(dpk); free(dwf); free(dlg); free(dS); free(dz);
        }
        free(dyd); free(dad); free(z0);
    }
    {  // log_g == 0: the ungated kernels within rounding (every form)
        float *lz = zeros(nr), *yu = zeros(nq), *mu = zeros(nr), *du = zeros(nr);
        float *gq = zeros(nf), *gu = zeros(nf), *gl = zeros(nr), *gqu;
        lc_attn_hybrid_fwd(ctx, yu, NULL, mu, du, NULL, q, k, v, pq, pk, wf, S, z, B, H, Hk, N, D, F, &cfg);
        x = lc_hybrid_args_default();
        x.B = B; x.H = H; x.Hk = Hk; x.N = N; x.D = D; x.F = F; x.cfg = &cfg;
        x.q = q; x.k = k; x.v = v; x.phiq = pq; x.phik = pk; x.wf = wf; x.kv_state = S; x.k_state = z;
        x.log_g = lz; x.y = y; x.m = m; x.den = den;
        lc_attn_hybrid_fwd_args(ctx, &x);
        check_close("log_g = 0 quadratic vs ungated", y, yu, nq, 1e-6, 1e-5);
        x.work = work; x.y = y2;
        lc_attn_hybrid_fwd_args(ctx, &x);
        check_close("log_g = 0 prefix-state vs ungated", y2, yu, nq, 1e-6, 1e-5);
        x.work = NULL; x.y = y; x.dy = dyf; x.dphik = gq; x.dlog_g = gl;
        lc_attn_hybrid_bwd_args(ctx, &x);
        gqu = zeros(nf);
        lc_attn_hybrid_bwd(ctx, NULL, NULL, NULL, gqu, gu, NULL, NULL, NULL, NULL, dyf, NULL, yu, mu, du,
                           q, k, v, pq, pk, wf, S, z, B, H, Hk, N, D, F, &cfg);
        check_close("log_g = 0 backward dphik vs ungated", gq, gu, nf, 1e-5, 1e-4);
        free(lz); free(yu); free(mu); free(du); free(gq); free(gu); free(gl); free(gqu);
    }
    free(q); free(k); free(v); free(pq); free(pk); free(wf); free(lg); free(S); free(z);
    free(y); free(a); free(m); free(den); free(y2); free(m2); free(den2); free(work); free(dyf);
    free(daf); free(yd); free(ad); free(yr); free(ar);
    free(c.q); free(c.k); free(c.v); free(c.pq); free(c.pk); free(c.wf); free(c.lg); free(c.S); free(c.z);
}

// The args struct is what the positional calls run: bit-identical (ungated).
static void args_equal(lc_ctx *ctx) {
    int B = 1, H = 4, Hk = 2, N = 150, D = 16, F = 12, run;
    size_t nq = (size_t)B * H * N * D, nk = (size_t)B * Hk * N * D, nf = (size_t)B * H * N * F, nr = (size_t)B * H * N;
    lc_hybrid_cfg cfg = lc_hybrid_cfg_default();
    float *q = randn(nq, 1), *k = randn(nk, 1), *v = randn(nk, 1), *pq = randu(nf, 0, 1), *pk = randu(nf, 0, 1);
    float *wf = randn((size_t)H, 1), *dy = randn(nq, 1);
    float *work = zeros(lc_attn_hybrid_work_floats(B, H, D, F));
    float *o[2][6];
    for (run = 0; run < 2; run++) {
        int j;
        size_t n[6] = {nq, nr, nr, nq, nf, nf};
        for (j = 0; j < 6; j++) o[run][j] = zeros(n[j]);
        if (run == 0) {
            lc_attn_hybrid_fwd(ctx, o[0][0], NULL, o[0][1], o[0][2], work, q, k, v, pq, pk, wf, NULL, NULL, B, H, Hk, N, D, F, &cfg);
            lc_attn_hybrid_bwd(ctx, o[0][3], NULL, NULL, o[0][4], o[0][5], NULL, NULL, NULL, work, dy, NULL,
                               o[0][0], o[0][1], o[0][2], q, k, v, pq, pk, wf, NULL, NULL, B, H, Hk, N, D, F, &cfg);
        } else {
            lc_hybrid_args x = lc_hybrid_args_default();
            x.B = B; x.H = H; x.Hk = Hk; x.N = N; x.D = D; x.F = F; x.cfg = &cfg;
            x.q = q; x.k = k; x.v = v; x.phiq = pq; x.phik = pk; x.wf = wf; x.work = work;
            x.y = o[1][0]; x.m = o[1][1]; x.den = o[1][2];
            lc_attn_hybrid_fwd_args(ctx, &x);
            x.dy = dy; x.dq = o[1][3]; x.dphiq = o[1][4]; x.dphik = o[1][5];
            lc_attn_hybrid_bwd_args(ctx, &x);
        }
    }
    {
        int j, same = 1;
        size_t n[6] = {nq, nr, nr, nq, nf, nf};
        for (j = 0; j < 6; j++) same &= !memcmp(o[0][j], o[1][j], sizeof(float) * n[j]);
        CHECK(same, "args struct: fwd/bwd bit-identical to the positional calls");
        for (j = 0; j < 6; j++) { free(o[0][j]); free(o[1][j]); }
    }
    free(q); free(k); free(v); free(pq); free(pk); free(wf); free(dy); free(work);
}

// 4096 tokens, log g in [-3, -0.5]: the products over the gap underflow any
// cumulative-product form; ours sum logs. Quadratic and chunked vs the double definition.
static void long_seq(lc_ctx *ctx) {
    int B = 1, H = 1, Hk = 1, N = 4096, D = 8, F = 8;
    size_t nq = (size_t)N * D, nf = (size_t)N * F;
    lc_hybrid_cfg cfg = lc_hybrid_cfg_default();
    lc_hybrid_args x = lc_hybrid_args_default();
    dcase c;
    float *q = randn(nq, 1), *k = randn(nq, 1), *v = randn(nq, 1), *pq = randu(nf, 0.05f, 1), *pk = randu(nf, 0.05f, 1);
    float *wf = randn(1, 1), *lg = randu((size_t)N, -3.0f, -0.5f);
    float *y = zeros(nq), *y2 = zeros(nq), *yr = zeros(nq), *m = zeros((size_t)N), *den = zeros((size_t)N);
    float *work = zeros(lc_attn_hybrid_work_floats(B, H, D, F));
    double *yd = (double *)malloc(sizeof(double) * nq);
    cfg.window = 16;
    c.B = B; c.H = H; c.Hk = Hk; c.N = N; c.D = D; c.F = F; c.state = 0; c.cfg = cfg;
    c.q = tod(q, nq); c.k = tod(k, nq); c.v = tod(v, nq); c.pq = tod(pq, nf); c.pk = tod(pk, nf);
    c.wf = tod(wf, 1); c.lg = tod(lg, (size_t)N); c.S = c.z = NULL;
    dref(&c, yd, NULL, NULL, NULL);
    tof(yr, yd, nq);
    x.B = B; x.H = H; x.Hk = Hk; x.N = N; x.D = D; x.F = F; x.cfg = &cfg;
    x.q = q; x.k = k; x.v = v; x.phiq = pq; x.phik = pk; x.wf = wf; x.log_g = lg;
    x.y = y; x.m = m; x.den = den;
    lc_attn_hybrid_fwd_args(ctx, &x);
    check_close("N=4096 strong decay, quadratic vs double", y, yr, nq, 1e-5, 1e-4);
    x.y = y2; x.work = work;
    lc_attn_hybrid_fwd_args(ctx, &x);
    check_close("N=4096 strong decay, chunked vs double", y2, yr, nq, 1e-5, 1e-4);
    free(q); free(k); free(v); free(pq); free(pk); free(wf); free(lg); free(y); free(y2); free(yr);
    free(m); free(den); free(work); free(yd);
    free(c.q); free(c.k); free(c.v); free(c.pq); free(c.pk); free(c.wf); free(c.lg);
}

// Gated decode token by token == the gated sw prefill; log_g = 0 == ungated decode.
static void decode_eq(lc_ctx *ctx, int sinks) {
    int H = 4, Hk = 2, N = 41, D = 8, F = 6, w = 8, t, h;
    size_t nq = (size_t)H * N * D, nk = (size_t)Hk * N * D, nf = (size_t)H * N * F;
    lc_hybrid_cfg cfg = lc_hybrid_cfg_default();
    lc_hybrid_args x = lc_hybrid_args_default();
    float *q = randn(nq, 1), *k = randn(nk, 1), *v = randn(nk, 1), *pq = randu(nf, 0.05f, 1), *pk = randu(nf, 0.05f, 1);
    float *wf = randn((size_t)H, 1), *lg = randu((size_t)H * N, -0.5f, 0);
    float *y = zeros(nq), *m = zeros((size_t)H * N), *den = zeros((size_t)H * N), *yd = zeros(nq), *yu = zeros(nq);
    size_t nst = lc_decode_state_floats_sinks(H, Hk, D, F, w, sinks);
    float *mem = zeros(nst), *mem2 = zeros(nst);
    float *ring = zeros((size_t)H * w), *ring2 = zeros((size_t)H * w), *lz = zeros((size_t)H);
    float qt[64], kt[32], vt[32], pqt[48], pkt[48], lt[4], ya[32], yb[32];
    lc_decode_state st, st2;
    int same0 = 1;
    cfg.variant = LOLCATS_WINDOW_SW; cfg.window = w; cfg.sinks = sinks;
    printf(" gated decode, sinks=%d\n", sinks);
    x.B = 1; x.H = H; x.Hk = Hk; x.N = N; x.D = D; x.F = F; x.cfg = &cfg;
    x.q = q; x.k = k; x.v = v; x.phiq = pq; x.phik = pk; x.wf = wf; x.log_g = lg;
    x.y = y; x.m = m; x.den = den;
    lc_attn_hybrid_fwd_args(ctx, &x);
    lc_decode_state_init_sinks(&st, mem, H, Hk, D, F, w, sinks);
    lc_decode_state_init_sinks(&st2, mem2, H, Hk, D, F, w, sinks);
    for (t = 0; t < N; t++) {
        int g;
        for (h = 0; h < H; h++) {
            memcpy(qt + h * D, q + ((size_t)h * N + t) * D, sizeof(float) * D);
            memcpy(pqt + h * F, pq + ((size_t)h * N + t) * F, sizeof(float) * F);
            memcpy(pkt + h * F, pk + ((size_t)h * N + t) * F, sizeof(float) * F);
            lt[h] = lg[(size_t)h * N + t];
        }
        for (g = 0; g < Hk; g++) {
            memcpy(kt + g * D, k + ((size_t)g * N + t) * D, sizeof(float) * D);
            memcpy(vt + g * D, v + ((size_t)g * N + t) * D, sizeof(float) * D);
        }
        lc_attn_hybrid_decode_gated(ctx, ya, &st, ring, qt, kt, vt, pqt, pkt, wf, lt, 0);
        for (h = 0; h < H; h++) memcpy(yd + ((size_t)h * N + t) * D, ya + h * D, sizeof(float) * D);
        lc_attn_hybrid_decode_gated(ctx, yb, &st2, ring2, qt, kt, vt, pqt, pkt, wf, lz, 0);
        (void)yu;
        {
            float yc[32];
            static float mem3[1 << 16];
            static lc_decode_state st3;
            if (t == 0) lc_decode_state_init_sinks(&st3, mem3, H, Hk, D, F, w, sinks);
            lc_attn_hybrid_decode(ctx, yc, &st3, qt, kt, vt, pqt, pkt, wf, 0);
            same0 &= !memcmp(yb, yc, sizeof yc);
        }
    }
    check_close("gated decode token by token vs gated sw prefill", yd, y, nq, 1e-5, 1e-4);
    CHECK(same0, "gated decode with log_g = 0 bit-identical to lc_attn_hybrid_decode");
    free(q); free(k); free(v); free(pq); free(pk); free(wf); free(lg); free(y); free(m); free(den);
    free(yd); free(yu); free(mem); free(mem2); free(ring); free(ring2); free(lz);
}

// Gate projection: forward vs double, backward vs FD in double.
static void proj(lc_ctx *ctx) {
    int B = 2, H = 3, N = 11, dim = 9, i, b, h, n;
    size_t nx = (size_t)B * N * dim, nw = (size_t)H * dim, nr = (size_t)B * H * N;
    float *x = randn(nx, 1), *w = randn(nw, 0.7f), *bg = randn((size_t)H, 2), *lg = zeros(nr), *lr = zeros(nr);
    float *dl = randn(nr, 1), *dx = zeros(nx), *dw = zeros(nw), *db = zeros((size_t)H);
    double *xd = tod(x, nx), *wd = tod(w, nw), *bd = tod(bg, (size_t)H);
    float *g[3];
    double *p[3];
    size_t cnt[3];
    const char *nm[3] = {"x", "w_g", "b_g"};
    int k2;
    bg[0] = 40; bd[0] = 40;  // far into the tails: log1p forms stay exact
    bg[1] = -40; bd[1] = -40;
    lc_gate_proj_fwd(ctx, lg, x, w, bg, B, H, N, dim);
    for (b = 0; b < B; b++)
        for (h = 0; h < H; h++)
            for (n = 0; n < N; n++) {
                double u = bd[h];
                for (i = 0; i < dim; i++) u += xd[((size_t)b * N + n) * dim + i] * wd[(size_t)h * dim + i];
                lr[((size_t)b * H + h) * N + n] = (float)-log1p(exp(-u));
            }
    check_close("gate projection log_g vs double", lg, lr, nr, 1e-6, 1e-5);
    lc_gate_proj_bwd(ctx, dx, dw, db, dl, x, w, bg, B, H, N, dim);
    g[0] = dx; g[1] = dw; g[2] = db; p[0] = xd; p[1] = wd; p[2] = bd; cnt[0] = nx; cnt[1] = nw; cnt[2] = (size_t)H;
    for (k2 = 0; k2 < 3; k2++) {
        size_t j, bad = 0;
        double worst = 0;
        for (j = 0; j < cnt[k2]; j++) {
            double x0 = p[k2][j], L[2], hh = 1e-6;
            int s;
            for (s = 0; s < 2; s++) {
                p[k2][j] = x0 + (s ? -hh : hh);
                L[s] = 0;
                for (b = 0; b < B; b++)
                    for (h = 0; h < H; h++)
                        for (n = 0; n < N; n++) {
                            double u = bd[h];
                            for (i = 0; i < dim; i++) u += xd[((size_t)b * N + n) * dim + i] * wd[(size_t)h * dim + i];
                            L[s] += (double)dl[((size_t)b * H + h) * N + n] * (u >= 0 ? -log1p(exp(-u)) : u - log1p(exp(u)));
                        }
            }
            p[k2][j] = x0;
            {
                double fd = (L[0] - L[1]) / (2 * hh), err = fabs(fd - (double)g[k2][j]) / (1e-3 + fabs(fd));
                if (err > worst) worst = err;
                bad += err > 2e-3;
            }
        }
        printf("  FD gate %-8s %4zu entries, worst rel %.2e %s\n", nm[k2], cnt[k2], worst, bad ? "FAIL" : "PASS");
        CHECK(bad == 0, "gate projection FD %s: %zu entries off", nm[k2], bad);
    }
    free(x); free(w); free(bg); free(lg); free(lr); free(dl); free(dx); free(dw); free(db);
    free(xd); free(wd); free(bd);
}

// `lolcats ref` with a log_g tensor: y and d_log_g as the kernels give them;
// precision=f64 (which has no gated form) is refused.
static void ref_case(int sinks) {
    enum { B = 1, H = 2, Hk = 1, N = 45, D = 8, f = 4 };
    int F = 2 * f, i, found = 0;
    size_t nq = (size_t)B * H * N * D, nk = (size_t)B * Hk * N * D, nr = (size_t)B * H * N;
    float *q = randn(nq, 1), *k = randn(nk, 1), *v = randn(nk, 1), *wq = randn((size_t)H * D * f, 0.3f);
    float *wk = randn((size_t)H * D * f, 0.3f), *wf = randn((size_t)H, 1), *lg = randu(nr, -0.5f, 0);
    float *dy = randn(nq, 1);
    const char *names[8] = {"q", "k", "v", "feature_map_q.weight", "feature_map_k.weight", "window_factors", "log_g", "dy"};
    const float *data[8];
    int ndim[8] = {4, 4, 4, 3, 3, 1, 3, 4};
    int64_t shape[8 * LOLCATS_MAX_DIMS];
    char sk[16];
    const char *meta[8] = {"op", "hybrid_attention", "window", "16", "sinks", sk, "precision", "f64"};
    lc_ref_result *res = NULL;
    lc_error err;
    lc_ctx ctx;
    lc_status st;
    lc_ctx_init(&ctx);
    snprintf(sk, sizeof sk, "%d", sinks);
    data[0] = q; data[1] = k; data[2] = v; data[3] = wq; data[4] = wk; data[5] = wf; data[6] = lg; data[7] = dy;
    memset(shape, 0, sizeof shape);
#define SH(i, a, b, c, d) (shape[(i) * LOLCATS_MAX_DIMS] = a, shape[(i) * LOLCATS_MAX_DIMS + 1] = b, \
                           shape[(i) * LOLCATS_MAX_DIMS + 2] = c, shape[(i) * LOLCATS_MAX_DIMS + 3] = d)
    SH(0, B, H, N, D); SH(1, B, Hk, N, D); SH(2, B, Hk, N, D); SH(3, H, D, f, 0); SH(4, H, D, f, 0);
    SH(5, H, 0, 0, 0); SH(6, B, H, N, 0); SH(7, B, H, N, D);
#undef SH
    st = lc_ref_run(&ctx, 8, names, data, ndim, shape, meta, 3, &res, &err);
    CHECK(st == LOLCATS_OK, "gated ref case runs: %s", st ? err.msg : "");
    if (st == LOLCATS_OK) {
        lc_fmap_cfg fm = lc_fmap_cfg_default();
        lc_hybrid_cfg cfg = lc_hybrid_cfg_default();
        lc_hybrid_args x = lc_hybrid_args_default();
        float *pq = zeros((size_t)B * H * N * F), *pk = zeros((size_t)B * H * N * F), *y = zeros(nq);
        float *m = zeros(nr), *den = zeros(nr), *dlg = zeros(nr), *dpq = zeros((size_t)B * H * N * F);
        float *dpk = zeros((size_t)B * H * N * F), *work = zeros(lc_attn_hybrid_work_floats(B, H, D, F));
        cfg.window = 16;
        cfg.sinks = sinks;
        lc_fmap_fwd(&ctx, pq, q, wq, NULL, B, H, H, N, D, f, &fm);
        lc_fmap_fwd(&ctx, pk, k, wk, NULL, B, H, Hk, N, D, f, &fm);
        x.B = B; x.H = H; x.Hk = Hk; x.N = N; x.D = D; x.F = F; x.cfg = &cfg;
        x.q = q; x.k = k; x.v = v; x.phiq = pq; x.phik = pk; x.wf = wf; x.log_g = lg;
        x.y = y; x.m = m; x.den = den; x.work = work;
        lc_attn_hybrid_fwd_args(&ctx, &x);
        x.dy = dy; x.dphiq = dpq; x.dphik = dpk; x.dlog_g = dlg;
        lc_attn_hybrid_bwd_args(&ctx, &x);
        for (i = 0; i < lc_ref_result_count(res); i++) {
            const char *nm = lc_ref_result_name(res, i);
            if (!strcmp(nm, "y")) found += check_close("ref y vs the kernel calls", lc_ref_result_data(res, i), y, nq, 0, 0);
            if (!strcmp(nm, "d_log_g")) found += check_close("ref d_log_g vs the kernel calls", lc_ref_result_data(res, i), dlg, nr, 0, 0);
        }
        CHECK(found == 2, "ref outputs y and d_log_g present and equal to the kernels' (%d of 2)", found);
        printf("  ref case with log_g, sinks %d: y and d_log_g bit-equal to the kernel calls\n", sinks);
        free(pq); free(pk); free(y); free(m); free(den); free(dlg); free(dpq); free(dpk); free(work);
        lc_ref_result_free(res);
    }
    res = NULL;
    st = lc_ref_run(&ctx, 8, names, data, ndim, shape, meta, 4, &res, &err);
    CHECK(st == LOLCATS_ERR_UNSUPPORTED && strstr(err.msg, "log_g"), "precision=f64 with log_g refused: %s", err.msg);
    lc_ref_result_free(res);
    free(q); free(k); free(v); free(wq); free(wk); free(wf); free(lg); free(dy);
}

// The chunked gated form (several chunks, N not a multiple of 64) against the
// quadratic reference (forward and every gradient, dy only) and FD of the
// definition on sampled entries; the default table takes it (fast counter
// moves), the scalar table runs the reference (counter stays).
static void chunk_case(int variant, int N, int w, int state, int Hk, int sinks) {
    int B = 1, H = 4, D = 8, F = 6, pass;
    size_t nq = (size_t)B * H * N * D, nk = (size_t)B * Hk * N * D, nf = (size_t)B * H * N * F;
    size_t nr = (size_t)B * H * N, ns = (size_t)B * H * F * D, nz = (size_t)B * H * F;
    lc_hybrid_cfg cfg = lc_hybrid_cfg_default();
    float *q = randn(nq, 1), *k = randn(nk, 1), *v = randn(nk, 1), *pq = randu(nf, 0.05f, 1);
    float *pk = randu(nf, 0.05f, 1), *wf = randn((size_t)H, 1), *lg = randu(nr, -3.0f, -0.01f);
    float *S = state ? randu(ns, 0, 1) : NULL, *z = state ? randu(nz, 0.5f, 1.5f) : NULL, *dy = randn(nq, 1);
    float *work = zeros(lc_attn_hybrid_work_floats(B, H, D, F));
    float *o[2][10];
    size_t n[10] = {nq, nr, nq, nk, nk, nf, nf, (size_t)H, nr, ns};
    const char *nm[10] = {"y", "den", "dq", "dk", "dv", "dphiq", "dphik", "dwf", "dlog_g", "dkv_state"};
    unsigned long cnt[2];
    char lbl[128];
    cfg.variant = variant; cfg.window = w; cfg.sinks = sinks;
    printf(" chunked case %s N=%d w=%d%s Hk=%d sinks=%d\n", variant ? "tk" : "sw", N, w, state ? " state" : "",
           Hk, sinks);
    for (pass = 0; pass < 2; pass++) {  // 0: chunked (default table, work), 1: quadratic (scalar)
        lc_ctx ctx;
        lc_hybrid_args x = lc_hybrid_args_default();
        int j;
        for (j = 0; j < 10; j++) o[pass][j] = zeros(n[j]);
        lc_ctx_init(&ctx);
        if (pass) ctx.simd = LOLCATS_SIMD_SCALAR;
        cnt[pass] = 0;
        ctx.fast_count = &cnt[pass];
        x.B = B; x.H = H; x.Hk = Hk; x.N = N; x.D = D; x.F = F; x.cfg = &cfg;
        x.q = q; x.k = k; x.v = v; x.phiq = pq; x.phik = pk; x.wf = wf; x.kv_state = S; x.k_state = z;
        x.log_g = lg; x.y = o[pass][0]; x.m = zeros(nr); x.den = o[pass][1]; x.work = work;
        lc_attn_hybrid_fwd_args(&ctx, &x);
        x.dy = dy; x.dq = o[pass][2]; x.dk = o[pass][3]; x.dv = o[pass][4]; x.dphiq = o[pass][5];
        x.dphik = o[pass][6]; x.dwf = o[pass][7]; x.dlog_g = o[pass][8];
        x.dkv_state = state ? o[pass][9] : NULL; x.dk_state = state ? zeros(nz) : NULL;
        lc_attn_hybrid_bwd_args(&ctx, &x);
        free(x.m); free(x.dk_state);
    }
    {
        lc_ctx dflt;
        lc_ctx_init(&dflt);
        if (dflt.simd == LOLCATS_SIMD_SCALAR)  // a reference-only build: no fast form anywhere
            CHECK(cnt[0] == 0 && cnt[1] == 0, "gated: a reference-only build takes no fast form (%lu, %lu)",
                  cnt[0], cnt[1]);
        else if (w > LC__HYB_WMAX)  // the prefix-state form: table lookups only, no chunked entry
            CHECK(cnt[0] == 4 && cnt[1] == 0, "gated, window %d: the prefix-state form (%lu fast entries: "
                  "the 4 table lookups; %lu)", w, cnt[0], cnt[1]);
        else
            CHECK(cnt[0] > 0 && cnt[1] == 0, "gated: the default table takes the chunked form (%lu), scalar "
                  "the reference (%lu)", cnt[0], cnt[1]);
    }
    {
        int j;
        for (j = 0; j < (state ? 10 : 9); j++) {
            snprintf(lbl, sizeof lbl, "chunked %s vs quadratic", nm[j]);
            check_close(lbl, o[0][j], o[1][j], n[j], j == 8 ? 1e-4 : 1e-5, j == 8 ? 1e-3 : 2e-4);
        }
    }
    if (w <= LC__HYB_WMAX) {  // FD of the definition (double) on sampled entries of the chunked gradients
        dcase c;
        double *dyd = tod(dy, nq), *z0 = (double *)calloc((size_t)B * H * N * N, sizeof(double));
        c.B = B; c.H = H; c.Hk = Hk; c.N = N; c.D = D; c.F = F; c.state = state; c.cfg = cfg;
        c.q = tod(q, nq); c.k = tod(k, nk); c.v = tod(v, nk); c.pq = tod(pq, nf); c.pk = tod(pk, nf);
        c.wf = tod(wf, (size_t)H); c.lg = tod(lg, nr); c.S = tod(S, ns); c.z = tod(z, nz);
        fd_check("chunk k", &c, c.k, o[0][3], nk, dyd, z0, 97);
        fd_check("chunk phik", &c, c.pk, o[0][6], nf, dyd, z0, 89);
        fd_check("chunk wf", &c, c.wf, o[0][7], (size_t)H, dyd, z0, 1);
        fd_check("chunk log_g", &c, c.lg, o[0][8], nr, dyd, z0, 13);
        if (state) fd_check("chunk kv_state", &c, c.S, o[0][9], ns, dyd, z0, 17);
        free(dyd); free(z0);
        free(c.q); free(c.k); free(c.v); free(c.pq); free(c.pk); free(c.wf); free(c.lg); free(c.S); free(c.z);
    }
    for (pass = 0; pass < 2; pass++) {
        int j;
        for (j = 0; j < 10; j++) free(o[pass][j]);
    }
    free(q); free(k); free(v); free(pq); free(pk); free(wf); free(lg); free(S); free(z); free(dy); free(work);
}

int main(void) {
    lc_ctx ctx;
    int pass;
    lc_rng_seed(&rng, 19);
    for (pass = 0; pass < 2; pass++) {
        lc_ctx_init(&ctx);
        if (pass == 1) ctx.simd = LOLCATS_SIMD_SCALAR;
        printf("== %s path\n", pass ? "scalar" : "default");
        one_case(&ctx, LOLCATS_WINDOW_TK, 29, 8, 0, 0, 2, 0);
        one_case(&ctx, LOLCATS_WINDOW_SW, 23, 5, 1, 1, 4, 0);
        one_case(&ctx, LOLCATS_WINDOW_TK, 29, 8, 0, 1, 2, 3);  // sinks with the gate
        one_case(&ctx, LOLCATS_WINDOW_SW, 23, 5, 1, 0, 4, 2);
        if (pass == 0) {
            one_case(&ctx, LOLCATS_WINDOW_TK, 7, 8, 0, 1, 1, 0);  // N <= w: keys in both parts
            one_case(&ctx, LOLCATS_WINDOW_TK, 7, 8, 0, 1, 1, 2);
            one_case(&ctx, LOLCATS_WINDOW_TK, 33, 4, 1, 1, 2, 0);
            one_case(&ctx, LOLCATS_WINDOW_TK, 33, 4, 1, 1, 2, 9);  // more sinks than the window
        }
        args_equal(&ctx);
        decode_eq(&ctx, 0);
        decode_eq(&ctx, 3);
        proj(&ctx);
    }
    chunk_case(LOLCATS_WINDOW_TK, 150, 16, 1, 2, 0);
    chunk_case(LOLCATS_WINDOW_SW, 133, 64, 0, 4, 0);
    chunk_case(LOLCATS_WINDOW_TK, 200, 64, 1, 1, 0);
    chunk_case(LOLCATS_WINDOW_SW, 97, 16, 1, 2, 0);
    chunk_case(LOLCATS_WINDOW_TK, 150, 16, 1, 2, 4);  // sinks with the gate
    chunk_case(LOLCATS_WINDOW_SW, 133, 64, 0, 4, 3);
    chunk_case(LOLCATS_WINDOW_TK, 200, 64, 1, 1, 4);
    chunk_case(LOLCATS_WINDOW_SW, 97, 16, 1, 2, 21);  // more sinks than the window
    // windows over LC__HYB_WMAX: the prefix-state forms against the quadratic reference
    chunk_case(LOLCATS_WINDOW_TK, 300, LC__HYB_WMAX + 2, 1, 2, 0);
    chunk_case(LOLCATS_WINDOW_SW, 290, LC__HYB_WMAX + 3, 1, 2, 5);
    chunk_case(LOLCATS_WINDOW_TK, 300, LC__HYB_WMAX + 2, 0, 4, 7);
    lc_ctx_init(&ctx);
    long_seq(&ctx);
    ref_case(0);
    ref_case(3);
    return check_done();
}
