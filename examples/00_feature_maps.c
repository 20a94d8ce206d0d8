/* 00_feature_maps.c - what a feature map phi does, and why LoLCATs trains it.

     cc -O2 examples/00_feature_maps.c -lm && ./a.out

   Linear attention replaces the softmax weight of key j for query i,
       exp(q_i . k_j / sqrt D) / sum_j' exp(q_i . k_j' / sqrt D),
   by phi(q_i) . phi(k_j) / sum_j' phi(q_i) . phi(k_j'). That only works when
   phi(q) . phi(k) behaves like exp(q . k): positive (a weight), and larger
   where q . k is larger (monotone), by about the right factor (spiky).
   Hedgehog's softmax_dim map is phi(x) = softmax(x W) (+) softmax(-x W): both
   halves are positive, the (+) doubles the output to F = 2f ("fullspace").
   This example
   1. prints F and the smallest phi value of each map (positivity);
   2. measures, on seeded q, k (one head, N = 64, D = 16, f = 16), how well
      the linear weights match the softmax weights for each map at its
      starting point: cross-entropy (the original's stage-1 xent), the
      correlation of log(phi(q).phi(k)) with q.k/sqrt D, and the weights'
      entropy (softmax attention is spiky: low entropy);
   3. fits W of the softmax_dim map (q and k each have their own) with AdamW on
      fresh sequences and shows the same three numbers on held-out ones.
   Exits 1 if positivity, the 2f doubling or the improvement by fitting fails. */
#define LOLCATS_NO_FILES   // kernels only: no file readers, models, tokenizers (compiles faster)
#define LOLCATS_IMPLEMENTATION
#include "../lolcats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


enum { N = 64, D = 16, DM = 32, FD = 16, FMAX = 2 * FD, STEPS = 2000, BATCH = 4, EVAL = 8 };

typedef struct { double xent, corr, ent; } fit_stats;

/* q, k: fixed projections (proj: (2, DM, D)) of hidden states that follow a
   slow random walk, as a layer's activations do */
static void make_qk(float *q, float *k, const float *proj, lc_rng *rng) {
    float x[N * DM];
    int t, c, d;
    for (c = 0; c < DM; c++) x[c] = lc_rng_normal(rng);
    for (t = 1; t < N; t++)
        for (c = 0; c < DM; c++) x[t * DM + c] = 0.9f * x[(t - 1) * DM + c] + 0.45f * lc_rng_normal(rng);
    for (t = 0; t < N; t++)
        for (d = 0; d < D; d++) {
            float aq = 0, ak = 0;
            for (c = 0; c < DM; c++) {
                aq += x[t * DM + c] * proj[c * D + d];
                ak += x[t * DM + c] * proj[(DM + c) * D + d];
            }
            q[t * D + d] = aq;
            k[t * D + d] = ak;
        }
}

/* causal linear-attention weights a_ij = phiq_i.phik_j / sum_{j'<=i} phiq_i.phik_j'
   (zeros above the diagonal); sums (N) keeps the denominators */
static void linear_weights(float *a, float *sums, const float *phiq, const float *phik, int F) {
    int i, j, c;
    memset(a, 0, sizeof(float) * N * N);
    for (i = 0; i < N; i++) {
        float s = 0;
        for (j = 0; j <= i; j++) {
            float dot = 0;
            for (c = 0; c < F; c++) dot += phiq[i * F + c] * phik[j * F + c];
            a[i * N + j] = dot;
            s += dot;
        }
        for (j = 0; j <= i; j++) a[i * N + j] /= s;
        sums[i] = s;
    }
}

/* the three numbers of section 2 on one sequence, added into st */
static void stats_add(fit_stats *st, const float *a, const float *a_sm, const float *q, const float *k,
                      const float *sums) {
    static double xs[N], ys[N];
    double sxx = 0, syy = 0, sxy = 0, ent = 0;
    int i, j, d;
    st->xent += lc_loss_xent(NULL, a, a_sm, N, N, 1.0f);
    for (i = 1; i < N; i++) {  /* row 0 has one key: nothing to compare */
        double mx = 0, my = 0;
        for (j = 0; j <= i; j++) {
            double x = 0;
            for (d = 0; d < D; d++) x += (double)q[i * D + d] * (double)k[j * D + d];
            xs[j] = x / sqrt((double)D);                             /* the softmax's log-score */
            ys[j] = log((double)a[i * N + j] * (double)sums[i]);     /* log phi(q).phi(k) */
            mx += xs[j]; my += ys[j];
            if (a[i * N + j] > 0) ent -= (double)a[i * N + j] * log((double)a[i * N + j]);
        }
        /* log-weights are only defined up to a per-row constant: center per row */
        mx /= i + 1; my /= i + 1;
        for (j = 0; j <= i; j++) {
            sxx += (xs[j] - mx) * (xs[j] - mx);
            syy += (ys[j] - my) * (ys[j] - my);
            sxy += (xs[j] - mx) * (ys[j] - my);
        }
    }
    st->corr += sxy / sqrt(sxx * syy);
    st->ent += ent / (N - 1);
}

static fit_stats evaluate(const lc_ctx *ctx, const lc_fmap_cfg *fm, const float *wq, const float *wk,
                          const float *evq, const float *evk) {
    static float phiq[N * FMAX], phik[N * FMAX], a[N * N], a_sm[N * N], sums[N];
    fit_stats st = {0, 0, 0};
    int e, F = lc_fmap_out_dim(fm, FD);
    for (e = 0; e < EVAL; e++) {
        const float *q = evq + e * N * D, *k = evk + e * N * D;
        lc_attn_softmax_weights(ctx, a_sm, q, k, 1, 1, 1, N, D);
        lc_fmap_fwd(ctx, phiq, q, wq, NULL, 1, 1, 1, N, D, FD, fm);
        lc_fmap_fwd(ctx, phik, k, wk, NULL, 1, 1, 1, N, D, FD, fm);
        linear_weights(a, sums, phiq, phik, F);
        stats_add(&st, a, a_sm, q, k, sums);
    }
    st.xent /= EVAL; st.corr /= EVAL; st.ent /= EVAL;
    return st;
}

/* one training step's forward + backward: xent(linear weights, softmax weights)
   -> d a -> d(phiq.phik) -> d phi -> d W (lc_fmap_bwd) */
static double fit_step(const lc_ctx *ctx, const lc_fmap_cfg *fm, const float *wq, const float *wk,
                       float *dwq, float *dwk, const float *q, const float *k) {
    static float phiq[N * FMAX], phik[N * FMAX], a[N * N], a_sm[N * N], da[N * N], sums[N];
    static float dphiq[N * FMAX], dphik[N * FMAX];
    int F = lc_fmap_out_dim(fm, FD), i, j, c;
    double loss;
    lc_attn_softmax_weights(ctx, a_sm, q, k, 1, 1, 1, N, D);
    lc_fmap_fwd(ctx, phiq, q, wq, NULL, 1, 1, 1, N, D, FD, fm);
    lc_fmap_fwd(ctx, phik, k, wk, NULL, 1, 1, 1, N, D, FD, fm);
    linear_weights(a, sums, phiq, phik, F);
    memset(da, 0, sizeof da);
    loss = lc_loss_xent(da, a, a_sm, N, N, 1.0f);
    memset(dphiq, 0, sizeof dphiq);
    memset(dphik, 0, sizeof dphik);
    for (i = 0; i < N; i++) {
        float dot = 0;  /* through the row normalisation a = A / s */
        for (j = 0; j <= i; j++) dot += da[i * N + j] * a[i * N + j];
        for (j = 0; j <= i; j++) {
            float dA = (da[i * N + j] - dot) / sums[i];
            for (c = 0; c < F; c++) {
                dphiq[i * F + c] += dA * phik[j * F + c];
                dphik[j * F + c] += dA * phiq[i * F + c];
            }
        }
    }
    lc_fmap_bwd(ctx, NULL, dwq, NULL, dphiq, q, wq, NULL, 1, 1, 1, N, D, FD, fm);
    lc_fmap_bwd(ctx, NULL, dwk, NULL, dphik, k, wk, NULL, 1, 1, 1, N, D, FD, fm);
    return loss;
}

int main(void) {
    static float evq[EVAL * N * D], evk[EVAL * N * D], q[N * D], k[N * D];
    static float w[2 * D * FD], g[2 * D * FD], m[2 * D * FD], v[2 * D * FD];  /* wq | wk */
    static float phi[N * FMAX], proj[2 * DM * D];
    static const char *names[5] = {"softmax_dim", "softmax_dim half", "exp_dim", "pos_elu", "relu"};
    static const int acts[5] = {LOLCATS_FMAP_SOFTMAX_DIM, LOLCATS_FMAP_SOFTMAX_DIM, LOLCATS_FMAP_EXP_DIM,
                                LOLCATS_FMAP_POS_ELU, LOLCATS_FMAP_RELU};
    float *wq = w, *wk = w + D * FD, *dwq = g, *dwk = g + D * FD;
    lc_ctx ctx;
    lc_rng rng;
    lc_adamw_cfg opt = lc_adamw_cfg_default();  /* lr 1e-2, as stage 1 */
    lc_fmap_cfg fm;
    fit_stats st0 = {0, 0, 0}, st1, sm_ent = {0, 0, 0};
    int i, e, ok = 1, step;

    lc_ctx_init(&ctx);
    lc_rng_seed(&rng, 11);
    for (i = 0; i < 2 * DM * D; i++) proj[i] = 0.35f * lc_rng_normal(&rng);
    for (e = 0; e < EVAL; e++) make_qk(evq + e * N * D, evk + e * N * D, proj, &rng);

    /* the teacher's own entropy (a = softmax weights, compared with itself) */
    for (e = 0; e < EVAL; e++) {
        static float a_sm[N * N], sums[N];
        lc_attn_softmax_weights(&ctx, a_sm, evq + e * N * D, evk + e * N * D, 1, 1, 1, N, D);
        for (i = 0; i < N; i++) sums[i] = 1.0f;
        stats_add(&sm_ent, a_sm, a_sm, evq + e * N * D, evk + e * N * D, sums);
    }
    printf("feature maps on one head: N=%d tokens, D=%d, f=%d, %d held-out sequences, simd=%s\n", N, D, FD, EVAL,
           lc_simd_name(ctx.simd));
    printf("softmax attention itself: xent %.4f (its own entropy), corr 1, entropy %.3f nats/row\n\n",
           sm_ent.xent / EVAL, sm_ent.ent / EVAL);
    printf("1-2. each map at its starting point (identity W for softmax_dim / exp_dim)\n");
    printf("  %-18s %3s %11s %9s %12s %9s\n", "map", "F", "min phi", "xent", "corr(log)", "entropy");
    for (i = 0; i < 5; i++) {
        fit_stats st;
        float mn = 1e30f;
        int F, j;
        fm = lc_fmap_cfg_default();
        fm.act = (lc_fmap_act)acts[i];
        fm.halfspace = i == 1;
        F = lc_fmap_out_dim(&fm, FD);
        lc_fmap_init_identity(wq, 1, D, FD);
        lc_fmap_init_identity(wk, 1, D, FD);
        lc_fmap_fwd(&ctx, phi, evq, wq, NULL, 1, 1, 1, N, D, FD, &fm);
        for (j = 0; j < N * F; j++) mn = phi[j] < mn ? phi[j] : mn;
        st = evaluate(&ctx, &fm, wq, wk, evq, evk);
        if (i == 0) st0 = st;
        printf("  %-18s %3d %11.3e %9.4f %12.3f %9.3f\n", names[i], F, (double)mn, st.xent, st.corr, st.ent);
        if (!(mn > 0)) ok = 0;                                   /* positivity (relu: the eps clamp) */
        if (F != ((acts[i] <= LOLCATS_FMAP_EXP_DIM && i != 1) ? 2 * FD : FD)) ok = 0;  /* the 2f doubling */
    }
    printf("  (min phi > 0 for every map: relu's zeros are clamped to eps = 1e-12; F = 2f only for\n"
           "   the fullspace softmax_dim / exp_dim, which add the mirrored half softmax(-xW))\n\n");

    /* 3. fit softmax_dim's W on fresh sequences */
    fm = lc_fmap_cfg_default();
    lc_fmap_init_identity(wq, 1, D, FD);
    lc_fmap_init_identity(wk, 1, D, FD);
    printf("3. fitting softmax_dim's W (q and k maps, %d parameters) to the softmax weights, AdamW lr %.0e, %d steps of %d fresh sequences\n",
           2 * D * FD, (double)opt.lr, STEPS, BATCH);
    for (step = 1; step <= STEPS; step++) {
        double loss;
        memset(g, 0, sizeof g);
        for (e = 0, loss = 0; e < BATCH; e++) {  /* a batch of fresh sequences */
            make_qk(q, k, proj, &rng);
            loss += fit_step(&ctx, &fm, wq, wk, dwq, dwk, q, k) / BATCH;
        }
        for (i = 0; i < 2 * D * FD; i++) g[i] /= BATCH;
        lc_adamw_step(w, g, m, v, 2 * D * FD, &opt, step);
        if (step % 400 == 0) printf("  step %3d  train xent %.4f\n", step, loss);
    }
    st1 = evaluate(&ctx, &fm, wq, wk, evq, evk);
    printf("  held-out      %9s %12s %9s\n", "xent", "corr(log)", "entropy");
    printf("  identity W    %9.4f %12.3f %9.3f\n", st0.xent, st0.corr, st0.ent);
    printf("  fitted W      %9.4f %12.3f %9.3f\n", st1.xent, st1.corr, st1.ent);
    printf("  softmax       %9.4f %12s %9.3f\n", sm_ent.xent / EVAL, "1", sm_ent.ent / EVAL);
    /* xent >= the teacher's entropy; the gap is the KL divergence still left */
    printf("  KL(softmax || linear) per row: %.4f at identity -> %.4f fitted\n", st0.xent - sm_ent.xent / EVAL,
           st1.xent - sm_ent.xent / EVAL);
    if (!ok) {
        printf("verdict: UNEXPECTED - a map produced a non-positive value or the wrong output dimension\n");
        return 1;
    }
    if (st1.xent - sm_ent.xent / EVAL < 0.9 * (st0.xent - sm_ent.xent / EVAL) && st1.corr > st0.corr) {
        printf("verdict: OK - every map is positive; fitting W brought phi(q).phi(k) closer to exp(q.k/sqrt D) "
               "(KL %.4f -> %.4f, log-score correlation %.3f -> %.3f, rows spikier); the gap a 2f = %d map "
               "cannot close is what the hybrid's exact softmax window covers (01)\n",
               st0.xent - sm_ent.xent / EVAL, st1.xent - sm_ent.xent / EVAL, st0.corr, st1.corr, 2 * FD);
        return 0;
    }
    printf("verdict: NOT CONVERGED - KL %.4f -> %.4f, correlation %.3f -> %.3f\n", st0.xent - sm_ent.xent / EVAL,
           st1.xent - sm_ent.xent / EVAL, st0.corr, st1.corr);
    return 1;
}
