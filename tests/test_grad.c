/* test_grad.c - every backward against central finite differences in double.
   The function differentiated is tests/naive.h (an independent float64
   restatement of the spec); the analytic gradients come from lolcats.h's
   float kernels through lc_ref_eval (feature maps + attention, chained), on
   both the scalar reference and the SIMD path. Also checks the forward
   outputs against the naive float64 forward. */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "naive.h"

typedef struct {
    naive_dims s;
    int op, with_bias, with_state, with_da, linear_state;
    /* float inputs (what the kernels see) */
    float *q, *k, *v, *wq, *wk, *bq, *bk, *wf, *S, *z, *dy, *da;
} gcase;

static lc_rng rng;

static float *randn(size_t n, float scale) {
    float *p = (float *)malloc(sizeof(float) * n);
    size_t i;
    for (i = 0; i < n; i++) p[i] = lc_rng_normal(&rng) * scale;
    return p;
}

static double *todbl(const float *x, size_t n) {
    double *p = (double *)malloc(sizeof(double) * (n ? n : 1));
    size_t i;
    for (i = 0; i < n; i++) p[i] = x ? (double)x[i] : 0;
    return p;
}

/* the parameters, in double, that FD perturbs */
enum { P_Q, P_K, P_V, P_WQ, P_WK, P_BQ, P_BK, P_WF, P_S, P_Z, NP };
static const char *pname[NP] = {"dq", "dk", "dv", "d_wq", "d_wk", "d_bq", "d_bk", "d_wf", "d_kv_state", "d_k_state"};

typedef struct {
    double *p[NP];
    size_t n[NP];
} dparams;

/* L = sum(y dy) + sum(a da) through the naive float64 forward */
static double naive_loss(const gcase *c, const dparams *P, double *y_out) {
    const naive_dims *s = &c->s;
    size_t nq = (size_t)s->B * s->H * s->N * s->D, nphi = (size_t)s->B * s->H * s->N * s->F;
    size_t na = (size_t)s->B * s->H * s->N * s->N, i;
    double *y = (double *)calloc(nq, sizeof(double)), *a = (double *)calloc(na, sizeof(double));
    double *phiq = NULL, *phik = NULL, L = 0;
    if (c->op != LOLCATS_OP_SOFTMAX) {
        phiq = (double *)calloc(nphi, sizeof(double));
        phik = (double *)calloc(nphi, sizeof(double));
        naive_fmap(s, phiq, P->p[P_Q], s->H, P->p[P_WQ], c->with_bias ? P->p[P_BQ] : NULL);
        naive_fmap(s, phik, P->p[P_K], s->Hk, P->p[P_WK], c->with_bias ? P->p[P_BK] : NULL);
    }
    if (c->op == LOLCATS_OP_SOFTMAX) naive_softmax(s, y, a, P->p[P_Q], P->p[P_K], P->p[P_V]);
    else if (c->op == LOLCATS_OP_LINEAR) naive_linear(s, y, phiq, phik, P->p[P_V], 1e-12);
    else
        naive_hybrid(s, y, a, P->p[P_Q], P->p[P_K], P->p[P_V], phiq, phik, P->p[P_WF],
                     c->with_state ? P->p[P_S] : NULL, c->with_state ? P->p[P_Z] : NULL);
    for (i = 0; i < nq; i++) L += y[i] * (double)c->dy[i];
    if (c->with_da)
        for (i = 0; i < na; i++) L += a[i] * (double)c->da[i];
    if (y_out) memcpy(y_out, y, sizeof(double) * nq);
    free(y); free(a); free(phiq); free(phik);
    return L;
}

static void run_case(const char *name, gcase *c) {
    naive_dims *s = &c->s;
    size_t nq = (size_t)s->B * s->H * s->N * s->D, nk = (size_t)s->B * s->Hk * s->N * s->D;
    size_t nw = (size_t)s->H * s->D * s->f, nst = (size_t)s->B * s->H * s->F * s->D, i;
    lc_ref_case rc = lc_ref_case_default();
    dparams P;
    int p, path;
    double *yd;
    char what[160];
    memset(&P, 0, sizeof P);
    P.n[P_Q] = nq; P.n[P_K] = nk; P.n[P_V] = nk;
    if (c->op != LOLCATS_OP_SOFTMAX) { P.n[P_WQ] = nw; P.n[P_WK] = nw; }
    if (c->with_bias) { P.n[P_BQ] = (size_t)s->H; P.n[P_BK] = (size_t)s->H; }
    if (c->op == LOLCATS_OP_HYBRID) P.n[P_WF] = (size_t)s->H;
    if (c->with_state) { P.n[P_S] = nst; P.n[P_Z] = (size_t)s->B * s->H * s->F; }
    {
        const float *src[NP];
        src[P_Q] = c->q; src[P_K] = c->k; src[P_V] = c->v; src[P_WQ] = c->wq; src[P_WK] = c->wk;
        src[P_BQ] = c->bq; src[P_BK] = c->bk; src[P_WF] = c->wf; src[P_S] = c->S; src[P_Z] = c->z;
        for (p = 0; p < NP; p++) P.p[p] = todbl(P.n[p] ? src[p] : NULL, P.n[p]);
    }
    rc.op = c->op;
    rc.B = s->B; rc.H = s->H; rc.Hk = s->Hk; rc.N = s->N; rc.D = s->D; rc.f = s->f;
    rc.fmap.act = (lc_fmap_act)s->act; rc.fmap.halfspace = s->half; rc.fmap.eps = (float)s->eps;
    rc.hybrid.variant = s->variant; rc.hybrid.window = s->window; rc.hybrid.affine = s->affine;
    rc.linear_state = c->linear_state;
    rc.q = c->q; rc.k = c->k; rc.v = c->v; rc.wq = c->wq; rc.wk = c->wk;
    rc.bq = c->with_bias ? c->bq : NULL; rc.bk = c->with_bias ? c->bk : NULL;
    rc.wf = c->wf;
    rc.kv_state = c->with_state ? c->S : NULL; rc.k_state = c->with_state ? c->z : NULL;
    rc.dy = c->dy; rc.da = c->with_da ? c->da : NULL;

    printf("%s\n", name);
    yd = (double *)malloc(sizeof(double) * nq);
    naive_loss(c, &P, yd);
    for (path = 0; path < 2; path++) {
        lc_ctx ctx;
        lc_ref_out o;
        lc_error err;
        float *grads[NP];
        lc_ctx_init(&ctx);
        if (path == 0) ctx.simd = LOLCATS_SIMD_SCALAR;
        if (!CHECK(lc_ref_eval(&ctx, &rc, &o, &err) == LOLCATS_OK, "%s: lc_ref_eval: %s", name, err.msg))
            continue;
        {
            float *yf = (float *)malloc(sizeof(float) * nq);
            for (i = 0; i < nq; i++) yf[i] = (float)yd[i];
            snprintf(what, sizeof what, "[%s] y vs naive f64", lc_simd_name(ctx.simd));
            check_close(what, o.y, yf, nq, 2e-6, 2e-5);
            free(yf);
        }
        grads[P_Q] = o.dq; grads[P_K] = o.dk; grads[P_V] = o.dv; grads[P_WQ] = o.dwq;
        grads[P_WK] = o.dwk; grads[P_BQ] = o.dbq; grads[P_BK] = o.dbk; grads[P_WF] = o.dwf;
        grads[P_S] = o.dkv_state; grads[P_Z] = o.dk_state;
        for (p = 0; p < NP; p++) {
            float *fd;
            double scale = 0;
            if (!P.n[p]) continue;
            if (!CHECK(grads[p] != NULL, "%s: gradient %s missing", name, pname[p])) continue;
            fd = (float *)malloc(sizeof(float) * P.n[p]);
            for (i = 0; i < P.n[p]; i++) {
                double keep = P.p[p][i], h = 1e-6 * (fabs(keep) > 1 ? fabs(keep) : 1), lp, lm;
                P.p[p][i] = keep + h;
                lp = naive_loss(c, &P, NULL);
                P.p[p][i] = keep - h;
                lm = naive_loss(c, &P, NULL);
                P.p[p][i] = keep;
                fd[i] = (float)((lp - lm) / (2 * h));
                if (fabs((double)fd[i]) > scale) scale = fabs((double)fd[i]);
            }
            snprintf(what, sizeof what, "[%s] %s vs finite differences", lc_simd_name(ctx.simd), pname[p]);
            check_close(what, grads[p], fd, P.n[p], 1e-4 * (scale > 1 ? scale : 1), 1e-3);
            free(fd);
        }
        lc_ref_out_free(&o);
    }
    free(yd);
    for (p = 0; p < NP; p++) free(P.p[p]);
}

static gcase make_case(int op, int B, int H, int Hk, int N, int D, int f, int act, int half) {
    gcase c;
    naive_dims *s = &c.s;
    lc_fmap_cfg fc = lc_fmap_cfg_default();
    memset(&c, 0, sizeof c);
    c.op = op;
    s->B = B; s->H = H; s->Hk = Hk; s->N = N; s->D = D; s->f = f;
    s->act = act; s->half = half; s->eps = 1e-12;
    fc.act = (lc_fmap_act)act; fc.halfspace = half;
    s->F = lc_fmap_out_dim(&fc, f);
    s->variant = LOLCATS_WINDOW_TK; s->window = 4;
    c.q = randn((size_t)B * H * N * D, 1.0f);
    c.k = randn((size_t)B * Hk * N * D, 1.0f);
    c.v = randn((size_t)B * Hk * N * D, 1.0f);
    c.wq = randn((size_t)H * D * f, 0.5f);
    c.wk = randn((size_t)H * D * f, 0.5f);
    c.bq = randn((size_t)H, 0.5f);
    c.bk = randn((size_t)H, 0.5f);
    c.wf = randn((size_t)H, 1.0f);
    c.S = randn((size_t)B * H * s->F * D, 0.3f);
    c.z = randn((size_t)B * H * s->F, 0.3f);
    {   /* states must keep the denominator positive */
        size_t i;
        for (i = 0; i < (size_t)B * H * s->F; i++) c.z[i] = (float)fabs((double)c.z[i]) + 0.1f;
    }
    c.dy = randn((size_t)B * H * N * D, 1.0f);
    c.da = randn((size_t)B * H * N * N, 1.0f);
    return c;
}

static void free_case(gcase *c) {
    free(c->q); free(c->k); free(c->v); free(c->wq); free(c->wk); free(c->bq); free(c->bk);
    free(c->wf); free(c->S); free(c->z); free(c->dy); free(c->da);
}

int main(void) {
    static const char *acts[] = {"softmax_dim", "exp_dim", "pos_elu", "relu"};
    char name[160];
    int a, half, variant, N;
    gcase c;
    lc_rng_seed(&rng, 1234);

    c = make_case(LOLCATS_OP_SOFTMAX, 2, 4, 2, 7, 5, 0, 0, 0);
    run_case("softmax attention, GQA 4/2, N=7 D=5", &c);
    c.with_da = 1;
    run_case("softmax attention with attention-weight gradient", &c);
    free_case(&c);

    for (a = 0; a < 4; a++)
        for (half = 0; half < 2; half++) {
            if (half && a >= 2) continue;
            c = make_case(LOLCATS_OP_LINEAR, 1, 4, 2, 6, 5, 3, a, half);
            c.with_bias = a == 3;
            if (a == 3) { /* relu: keep most features alive */
                size_t i;
                for (i = 0; i < 4; i++) { c.bq[i] = 1.0f; c.bk[i] = 1.0f; }
            }
            snprintf(name, sizeof name, "linear attention, %s%s%s, GQA, N=6 D=5 f=3", acts[a],
                     half ? " halfspace" : "", c.with_bias ? " + bias" : "");
            run_case(name, &c);
            c.linear_state = 1;
            snprintf(name, sizeof name, "linear attention (state form), %s%s", acts[a], half ? " halfspace" : "");
            run_case(name, &c);
            free_case(&c);
        }

    for (variant = 0; variant < 2; variant++)
        for (N = 3; N <= 11; N += 4) { /* N <= w quirk (tk), w < N <= 2w, N > 2w */
            c = make_case(LOLCATS_OP_HYBRID, 1, 4, 2, N, 5, 3, 0, 0);
            c.s.variant = variant;
            snprintf(name, sizeof name, "hybrid %s, w=4 N=%d, GQA", variant ? "tk" : "sw", N);
            run_case(name, &c);
            c.with_da = 1;
            snprintf(name, sizeof name, "hybrid %s, w=4 N=%d, with da (xent path)", variant ? "tk" : "sw", N);
            run_case(name, &c);
            free_case(&c);
        }
    { /* large magnitudes (x10): scores in the hundreds, the window max keeps exp finite */
        size_t i, n;
        c = make_case(LOLCATS_OP_HYBRID, 1, 2, 1, 10, 5, 3, 0, 0);
        n = (size_t)c.s.B * c.s.H * c.s.N * c.s.D;
        for (i = 0; i < n; i++) c.q[i] *= 10.0f;
        for (i = 0; i < (size_t)c.s.B * c.s.Hk * c.s.N * c.s.D; i++) { c.k[i] *= 10.0f; c.v[i] *= 10.0f; }
        run_case("hybrid tk, inputs x10", &c);
        free_case(&c);
        c = make_case(LOLCATS_OP_SOFTMAX, 1, 2, 1, 10, 5, 0, 0, 0);
        for (i = 0; i < (size_t)20 * 5; i++) c.q[i] *= 10.0f;
        run_case("softmax attention, inputs x10", &c);
        free_case(&c);
    }
    c = make_case(LOLCATS_OP_HYBRID, 2, 2, 1, 9, 6, 4, 1, 0);
    c.s.affine = 1;
    c.with_bias = 1;
    run_case("hybrid tk, affine, exp_dim + bias, B=2, N=9", &c);
    c.with_state = 1;
    run_case("hybrid tk, carried state (S, z)", &c);
    c.s.variant = LOLCATS_WINDOW_SW;
    run_case("hybrid sw, carried state (S, z)", &c);
    c.s.variant = LOLCATS_WINDOW_TK;
    c.with_da = 1;
    run_case("hybrid tk, carried state (S, z), with da", &c);
    free_case(&c);
    return check_done();
}
