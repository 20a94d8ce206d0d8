/* 02_attention_transfer.c - stage 1 of LoLCATs on one attention layer:
   train the feature maps (q and k) and the window factors so that the
   hybrid sliding-window + linear attention reproduces softmax attention.

     cc -O2 examples/03_attention_transfer.c -lm && ./a.out

   The "layer" is seeded: hidden states follow a slow random walk, q/k/v are
   fixed random projections of them (frozen, as in the original). Each step:
     teacher  y_t = softmax_attention(q, k, v)            (no gradient)
     student  y_s = hybrid(q, k, v, phi_q(q), phi_k(k), gamma)
     loss     = 1000 * mean((y_s - y_t)^2)                 (mse_factor 1000)
     backward hybrid -> feature maps, AdamW (lr 1e-2, as the original).
   Prints the held-out MSE falling. When stb_image_write is available
   (Debian: libstb-dev), writes attention heatmaps of the teacher and the
   student before/after training to attn_teacher.png / attn_student_*.png. */
#define LOLCATS_NO_FILES   // kernels only: no file readers, models, tokenizers (compiles faster)
#define LOLCATS_IMPLEMENTATION
#include "../lolcats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<stb/stb_image_write.h>)
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#ifndef __cplusplus
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#endif
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wpedantic"
#endif
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBIW_WINDOWS_UTF8_UNUSED
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#define HAVE_PNG 1
#endif
#endif

enum { H = 2, D = 16, FD = 16, N = 128, W = 32, DM = 32, EVAL = 4, STEPS = 1500 };
enum { F = 2 * FD };

typedef struct {       /* one sequence of the layer's inputs */
    float q[H * N * D], k[H * N * D], v[H * N * D], y_teacher[H * N * D];
} seq;

typedef struct {       /* trainable state: one allocation cut into views (as llm.c) */
    float *mem;
    float *wq, *wk, *wf;          /* params: (H,D,FD) x2, (H) */
    float *dwq, *dwk, *dwf;       /* grads, same shapes */
    float *m, *v;                 /* AdamW moments over all params */
    size_t n_params;
} trainable;

static void make_seq(seq *s, const float *proj, lc_rng *rng, const lc_ctx *ctx) {
    static float x[N * DM];
    int t, c, h, d;
    for (c = 0; c < DM; c++) x[c] = lc_rng_normal(rng);
    for (t = 1; t < N; t++)
        for (c = 0; c < DM; c++) x[t * DM + c] = 0.9f * x[(t - 1) * DM + c] + 0.45f * lc_rng_normal(rng);
    for (h = 0; h < H; h++)  /* proj: (3, H, DM, D) for q, k, v */
        for (t = 0; t < N; t++)
            for (d = 0; d < D; d++) {
                float aq = 0, ak = 0, av = 0;
                for (c = 0; c < DM; c++) {
                    aq += x[t * DM + c] * proj[((0 * H + h) * DM + c) * D + d];
                    ak += x[t * DM + c] * proj[((1 * H + h) * DM + c) * D + d];
                    av += x[t * DM + c] * proj[((2 * H + h) * DM + c) * D + d];
                }
                s->q[(h * N + t) * D + d] = aq;
                s->k[(h * N + t) * D + d] = ak;
                s->v[(h * N + t) * D + d] = av;
            }
    lc_attn_softmax_fwd(ctx, s->y_teacher, NULL, s->q, s->k, s->v, 1, H, H, N, D);
}

/* forward (and backward into the grads when train) of one sequence; returns the loss */
static double step_seq(const lc_ctx *ctx, trainable *tr, const seq *s, int train, float *a_out) {
    static float phiq[H * N * F], phik[H * N * F], y[H * N * D], m[H * N], den[H * N];
    static float dy[H * N * D], dphiq[H * N * F], dphik[H * N * F];
    static float dq[H * N * D], dk[H * N * D], dv[H * N * D];
    static float *work;  /* lc_attn_hybrid_work_floats(1, H, D, F) floats */
    lc_fmap_cfg fm = lc_fmap_cfg_default();
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    double loss;
    hc.window = W;
    if (!work) work = (float *)malloc(sizeof(float) * lc_attn_hybrid_work_floats(1, H, D, F));
    lc_fmap_fwd(ctx, phiq, s->q, tr->wq, NULL, 1, H, H, N, D, FD, &fm);
    lc_fmap_fwd(ctx, phik, s->k, tr->wk, NULL, 1, H, H, N, D, FD, &fm);
    lc_attn_hybrid_fwd(ctx, y, a_out, m, den, work, s->q, s->k, s->v, phiq, phik, tr->wf, NULL, NULL,
                       1, H, H, N, D, F, &hc);
    memset(dy, 0, sizeof dy);
    loss = lc_loss_mse(train ? dy : NULL, y, s->y_teacher, (size_t)H * N * D, 1000.0f);
    if (!train) return loss;
    memset(dphiq, 0, sizeof dphiq); memset(dphik, 0, sizeof dphik);
    memset(dq, 0, sizeof dq); memset(dk, 0, sizeof dk); memset(dv, 0, sizeof dv);
    lc_attn_hybrid_bwd(ctx, dq, dk, dv, dphiq, dphik, tr->dwf, NULL, NULL, work, dy, NULL, y, m, den,
                       s->q, s->k, s->v, phiq, phik, tr->wf, NULL, NULL, 1, H, H, N, D, F, &hc);
    /* q, k are frozen: only the feature-map weights get their gradient */
    lc_fmap_bwd(ctx, NULL, tr->dwq, NULL, dphiq, s->q, tr->wq, NULL, 1, H, H, N, D, FD, &fm);
    lc_fmap_bwd(ctx, NULL, tr->dwk, NULL, dphik, s->k, tr->wk, NULL, 1, H, H, N, D, FD, &fm);
    return loss;
}

static double eval_loss(const lc_ctx *ctx, trainable *tr, const seq *ev) {
    double s = 0;
    int i;
    for (i = 0; i < EVAL; i++) s += step_seq(ctx, tr, &ev[i], 0, NULL);
    return s / EVAL;
}

static void save_heatmap(const char *path, const float *a) {
#ifdef HAVE_PNG
    static unsigned char img[N * N];
    int i, j;
    for (i = 0; i < N; i++)  /* head 0, sqrt-scaled so small weights show */
        for (j = 0; j < N; j++) {
            double v = sqrt((double)a[i * N + j]) * 255.0 * 2.0;
            img[i * N + j] = (unsigned char)(v > 255 ? 255 : v);
        }
    if (stbi_write_png(path, N, N, 1, img, N)) printf("wrote %s\n", path);
#else
    (void)path; (void)a;
#endif
}

int main(void) {
    static seq train, ev[EVAL];
    static float a_teacher[H * N * N], a_student[H * N * N];
    float *proj;
    trainable tr;
    lc_ctx ctx;
    lc_rng rng;
    lc_adamw_cfg opt = lc_adamw_cfg_default();  /* lr 1e-2, betas .9/.999, wd 0 */
    size_t i, nw = (size_t)H * D * FD;
    double first, best, last = 0;
    int step;

    lc_ctx_init(&ctx);
    lc_rng_seed(&rng, 2024);
    proj = (float *)malloc(sizeof(float) * 3 * H * DM * D);
    for (i = 0; i < (size_t)3 * H * DM * D; i++) proj[i] = lc_rng_normal(&rng) * 0.35f;
    for (i = 0; i < EVAL; i++) make_seq(&ev[i], proj, &rng, &ctx);

    tr.n_params = 2 * nw + H;
    tr.mem = (float *)calloc(tr.n_params * 4, sizeof(float));
    if (!tr.mem || !proj) { fprintf(stderr, "out of memory\n"); return 1; }
    tr.wq = tr.mem; tr.wk = tr.wq + nw; tr.wf = tr.wk + nw;
    tr.dwq = tr.mem + tr.n_params; tr.dwk = tr.dwq + nw; tr.dwf = tr.dwk + nw;
    tr.m = tr.mem + 2 * tr.n_params; tr.v = tr.mem + 3 * tr.n_params;
    lc_fmap_init_identity(tr.wq, H, D, FD);  /* every published run: identity init */
    lc_fmap_init_identity(tr.wk, H, D, FD);
    for (i = 0; i < H; i++) tr.wf[i] = -2.1972246f;  /* gamma = 0.1 */

    lc_attn_softmax_weights(&ctx, a_teacher, ev[0].q, ev[0].k, 1, H, H, N, D);
    save_heatmap("attn_teacher.png", a_teacher);
    step_seq(&ctx, &tr, &ev[0], 0, a_student);
    save_heatmap("attn_student_before.png", a_student);

    first = best = eval_loss(&ctx, &tr, ev);
    printf("attention transfer: H=%d D=%d f=%d N=%d window=%d (tk), %d steps on fresh sequences, %d held out\n",
           H, D, FD, N, W, STEPS, EVAL);
    printf("step %4d  held-out mse*1000 %.4f  gamma %.3f %.3f\n", 0, first,
           1.0 / (1.0 + exp(-(double)tr.wf[0])), 1.0 / (1.0 + exp(-(double)tr.wf[1])));
    for (step = 1; step <= STEPS; step++) {
        double tl;
        memset(tr.dwq, 0, sizeof(float) * tr.n_params);  /* zero all grads at once */
        make_seq(&train, proj, &rng, &ctx);  /* a fresh sequence every step */
        tl = step_seq(&ctx, &tr, &train, 1, NULL);
        lc_adamw_step(tr.wq, tr.dwq, tr.m, tr.v, tr.n_params, &opt, step);
        if (step % 150 == 0) {
            last = eval_loss(&ctx, &tr, ev);
            if (last < best) best = last;
            printf("step %4d  train %.4f  held-out %.4f  gamma %.3f %.3f\n", step, tl, last,
                   1.0 / (1.0 + exp(-(double)tr.wf[0])), 1.0 / (1.0 + exp(-(double)tr.wf[1])));
        }
    }
    step_seq(&ctx, &tr, &ev[0], 0, a_student);
    save_heatmap("attn_student_after.png", a_student);
#ifndef HAVE_PNG
    printf("(no PNG heatmaps: stb_image_write not found; apt-get install libstb-dev)\n");
#endif
    free(proj);
    free(tr.mem);
    if (last < 0.5 * first) {
        printf("verdict: OK - held-out attention MSE fell %.1fx (%.4f -> %.4f) by training only %zu parameters\n",
               first / last, first, last, tr.n_params);
        return 0;
    }
    printf("verdict: NOT CONVERGED - held-out MSE %.4f -> %.4f\n", first, last);
    return 1;
}
