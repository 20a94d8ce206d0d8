/* 04_lora.c - LoRA, stage 2's adapter, on one dense layer.

     cc -O2 examples/04_lora.c -lm && ./a.out

   A frozen weight W (O x I) gets a trainable low-rank update:
       y = x W^T + s (x A^T) B^T,   A (r x I), B (O x r), s = alpha / r,
   which is the dense layer with W' = W + s B A. B starts at zero, so training
   starts from the unchanged model. This example
   1. checks that at init the LoRA layer equals the base layer exactly;
   2. checks lc_linear_bwd's gradients for A and B against finite differences;
   3. fits a target update of rank 4 (y* = x (W + U V)^T) with AdamW, training
      only A and B (W frozen: lc_linear_bwd gets dw = NULL), for r = 2 (too
      small to express it) and r = 8 (enough), printing the loss falling;
   4. merges the adapter, W' = W + (alpha/r) B A, and shows the plain dense
      layer with W' gives the LoRA layer's output (what export does).
   Exits 1 if any of these fails. */
#define LOLCATS_NO_FILES   // kernels only: no file readers, models, tokenizers (compiles faster)
#define LOLCATS_IMPLEMENTATION
#include "../lolcats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T = 64, I = 32, O = 24, RMAX = 8, RTRUE = 4, STEPS = 600 };

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double md = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        md = d > md ? d : md;
    }
    return md;
}

/* loss = mean((x W'^T - y*)^2) of the LoRA layer; grads into dA, dB when set */
static double lora_loss(const lc_ctx *ctx, const float *x, const float *w, const float *A, const float *B,
                        float s, int r, const float *ytarget, float *dA, float *dB) {
    static float y[T * O], xa[T * RMAX], dy[T * O];
    double loss;
    lc_linear_fwd(ctx, y, xa, x, w, LOLCATS_DTYPE_F32, A, B, s, r, T, O, I);
    memset(dy, 0, sizeof dy);
    loss = lc_loss_mse(dA ? dy : NULL, y, ytarget, (size_t)T * O, 1.0f);
    if (dA)
        lc_linear_bwd(ctx, NULL, NULL, dA, dB, dy, x, xa, w, LOLCATS_DTYPE_F32, A, B, s, r, T, O, I);
    return loss;
}

/* trains A, B of rank r on fresh inputs; returns the held-out loss */
static double fit(const lc_ctx *ctx, const float *w, const float *wtarget, int r, float alpha, float *A,
                  float *B, lc_rng *rng, const float *xev, const float *yev) {
    static float x[T * I], yt[T * O], p[2 * RMAX * (I + O)], g[2 * RMAX * (I + O)], m[2 * RMAX * (I + O)],
        v[2 * RMAX * (I + O)];
    size_t na = (size_t)r * I, nb = (size_t)O * r, i;
    float s = alpha / (float)r, bound = 1.0f / sqrtf((float)I);
    lc_adamw_cfg opt = lc_adamw_cfg_default();
    int step;
    memset(m, 0, sizeof m);
    memset(v, 0, sizeof v);
    for (i = 0; i < na; i++) p[i] = bound * (2 * lc_rng_uniform(rng) - 1);  /* A: kaiming-uniform(a=sqrt 5) */
    for (i = 0; i < nb; i++) p[na + i] = 0;                                 /* B: zero */
    opt.lr = 5e-3f;
    for (step = 1; step <= STEPS; step++) {
        for (i = 0; i < (size_t)T * I; i++) x[i] = lc_rng_normal(rng);
        lc_linear_fwd(ctx, yt, NULL, x, wtarget, LOLCATS_DTYPE_F32, NULL, NULL, 0, 0, T, O, I);
        memset(g, 0, sizeof g);
        lora_loss(ctx, x, w, p, p + na, s, r, yt, g, g + na);
        lc_adamw_step(p, g, m, v, na + nb, &opt, step);
        if (step % 150 == 0)
            printf("   r=%d step %3d  held-out mse %.3e\n", r, step, lora_loss(ctx, xev, w, p, p + na, s, r, yev,
                                                                              NULL, NULL));
    }
    memcpy(A, p, sizeof(float) * na);
    memcpy(B, p + na, sizeof(float) * nb);
    return lora_loss(ctx, xev, w, A, B, s, r, yev, NULL, NULL);
}

int main(void) {
    static float w[O * I], wt[O * I], wm[O * I], U[O * RTRUE], V[RTRUE * I];
    static float xev[T * I], yev[T * O], y0[T * O], y1[T * O], ym[T * O];
    static float A[RMAX * I], B[O * RMAX], dA[RMAX * I], dB[O * RMAX];
    lc_ctx ctx;
    lc_rng rng;
    float alpha = 16.0f, s;
    double base_loss, l2, l8, gerr = 0, init_diff, merge_diff, h = 1e-2;
    int i, j, c, ok = 1;

    lc_ctx_init(&ctx);
    lc_rng_seed(&rng, 5);
    for (i = 0; i < O * I; i++) w[i] = 0.2f * lc_rng_normal(&rng);
    for (i = 0; i < O * RTRUE; i++) U[i] = 0.3f * lc_rng_normal(&rng);
    for (i = 0; i < RTRUE * I; i++) V[i] = 0.3f * lc_rng_normal(&rng);
    for (i = 0; i < O; i++)  /* the target: W + U V, a rank-4 update */
        for (j = 0; j < I; j++) {
            float acc = 0;
            for (c = 0; c < RTRUE; c++) acc += U[i * RTRUE + c] * V[c * I + j];
            wt[i * I + j] = w[i * I + j] + acc;
        }
    for (i = 0; i < T * I; i++) xev[i] = lc_rng_normal(&rng);
    lc_linear_fwd(&ctx, yev, NULL, xev, wt, LOLCATS_DTYPE_F32, NULL, NULL, 0, 0, T, O, I);
    printf("LoRA on one dense layer: x (%d x %d) -> y (%d x %d), alpha %.0f (simd=%s)\n", T, I, T, O,
           (double)alpha, lc_simd_name(ctx.simd));

    /* 1. init: B = 0, so the adapter adds exactly nothing */
    s = alpha / RMAX;
    for (i = 0; i < RMAX * I; i++) A[i] = lc_rng_uniform(&rng) - 0.5f;
    memset(B, 0, sizeof B);
    lc_linear_fwd(&ctx, y0, NULL, xev, w, LOLCATS_DTYPE_F32, NULL, NULL, 0, 0, T, O, I);
    lc_linear_fwd(&ctx, y1, NULL, xev, w, LOLCATS_DTYPE_F32, A, B, s, RMAX, T, O, I);
    init_diff = max_abs_diff(y0, y1, (size_t)T * O);
    printf("1. at init (B = 0): max |y_lora - y_base| = %.1e   <- training starts from the base model\n", init_diff);
    if (init_diff != 0) ok = 0;

    /* 2. gradients vs central differences, at a non-zero B */
    for (i = 0; i < O * RMAX; i++) B[i] = 0.1f * lc_rng_normal(&rng);
    memset(dA, 0, sizeof dA);
    memset(dB, 0, sizeof dB);
    lora_loss(&ctx, xev, w, A, B, s, RMAX, yev, dA, dB);
    for (i = 0; i < 6; i++) {
        float *p = i < 3 ? &A[i * 37 % (RMAX * I)] : &B[i * 29 % (O * RMAX)];
        float an = i < 3 ? dA[i * 37 % (RMAX * I)] : dB[i * 29 % (O * RMAX)], keep = *p;
        double lp, lm, num;
        *p = keep + (float)h; lp = lora_loss(&ctx, xev, w, A, B, s, RMAX, yev, NULL, NULL);
        *p = keep - (float)h; lm = lora_loss(&ctx, xev, w, A, B, s, RMAX, yev, NULL, NULL);
        *p = keep;
        num = (lp - lm) / (2 * h);
        gerr = fmax(gerr, fabs(num - (double)an) / fmax(1e-3, fabs(num)));
    }
    printf("2. lc_linear_bwd's dA, dB vs central differences (6 entries): max relative error %.1e\n", gerr);
    if (gerr > 2e-2) ok = 0;

    /* 3. fit the rank-4 target update */
    base_loss = lora_loss(&ctx, xev, w, A, B, 0, RMAX, yev, NULL, NULL);  /* s = 0: the base layer */
    printf("3. fitting W + U V (rank %d) with A, B only, AdamW lr 5e-3, %d steps; base layer's mse %.5f\n", RTRUE,
           STEPS, base_loss);
    l2 = fit(&ctx, w, wt, 2, alpha, A, B, &rng, xev, yev);
    l8 = fit(&ctx, w, wt, RMAX, alpha, A, B, &rng, xev, yev);
    printf("   held-out mse: base %.5f, LoRA r=2 %.3e (cannot express rank %d), LoRA r=8 %.3e\n", base_loss, l2,
           RTRUE, l8);
    if (!(l8 < 0.01 * base_loss && l2 > 5 * l8)) ok = 0;

    /* 4. merge: W' = W + (alpha / r) B A, then the plain dense layer */
    s = alpha / RMAX;
    for (i = 0; i < O; i++)
        for (j = 0; j < I; j++) {
            float acc = 0;
            for (c = 0; c < RMAX; c++) acc += B[i * RMAX + c] * A[c * I + j];
            wm[i * I + j] = w[i * I + j] + s * acc;
        }
    lc_linear_fwd(&ctx, y1, NULL, xev, w, LOLCATS_DTYPE_F32, A, B, s, RMAX, T, O, I);
    lc_linear_fwd(&ctx, ym, NULL, xev, wm, LOLCATS_DTYPE_F32, NULL, NULL, 0, 0, T, O, I);
    merge_diff = max_abs_diff(ym, y1, (size_t)T * O);
    printf("4. merged W' = W + (%.0f/%d) B A: max |y(W') - y_lora| = %.1e; |W' - (W + U V)| max %.1e\n",
           (double)alpha, RMAX, merge_diff, max_abs_diff(wm, wt, (size_t)O * I));
    if (merge_diff > 1e-4) ok = 0;
    if (ok) {
        printf("verdict: OK - LoRA starts as the base layer, its gradients check, rank 8 fits the rank-%d update "
               "(mse %.3f -> %.1e; rank 2 stalls at %.3f) and merges into one weight\n",
               RTRUE, base_loss, l8, l2);
        return 0;
    }
    printf("verdict: UNEXPECTED - init %.1e, grad %.1e, fit r2 %.5f r8 %.5f, merge %.1e\n", init_diff, gerr, l2, l8,
           merge_diff);
    return 1;
}
