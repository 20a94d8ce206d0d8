/* test_blocks.c - the Llama block pieces used for training (RMSNorm, RoPE +
   head split, head merge, SwiGLU, dense + LoRA with F32/BF16/F16 weights,
   next-token cross-entropy): each backward against central finite differences
   of a float64 restatement written here, on the scalar and SIMD paths. */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"

static lc_rng rng;

static float *randn(size_t n, float s) {
    float *p = (float *)malloc(sizeof(float) * (n ? n : 1));
    size_t i;
    for (i = 0; i < n; i++) p[i] = lc_rng_normal(&rng) * s;
    return p;
}

/* f64 loss of one block: sum(out * R); which selects the block */
enum { K_RMS, K_ROPE, K_SWIGLU, K_LINEAR, K_XENT };
typedef struct {
    int kind, T, C, H, D, O, I, r, inter, V;
    double *in[4];        /* perturbed inputs */
    size_t n_in[4];
    const float *R;       /* upstream weights */
    const int *labels;
    float eps, s;
    const double *cos_t, *sin_t;
} blk;

static double blk_loss(const blk *b) {
    double L = 0;
    int t, c, h, i, o, j;
    switch (b->kind) {
    case K_RMS: /* in0 = x (T,C), in1 = w (C) */
        for (t = 0; t < b->T; t++) {
            double ss = 0;
            for (c = 0; c < b->C; c++) ss += b->in[0][t * b->C + c] * b->in[0][t * b->C + c];
            ss = 1 / sqrt(ss / b->C + (double)b->eps);
            for (c = 0; c < b->C; c++) L += b->in[1][c] * b->in[0][t * b->C + c] * ss * (double)b->R[t * b->C + c];
        }
        break;
    case K_ROPE: /* in0 = x (T,H*D) -> (H,T,D) */
        for (t = 0; t < b->T; t++)
            for (h = 0; h < b->H; h++)
                for (i = 0; i < b->D / 2; i++) {
                    int ia = b->inter ? 2 * i : i, ib = b->inter ? 2 * i + 1 : i + b->D / 2;
                    double a = b->in[0][(t * b->H + h) * b->D + ia], bb = b->in[0][(t * b->H + h) * b->D + ib];
                    double cc = b->cos_t[t * (b->D / 2) + i], ss = b->sin_t[t * (b->D / 2) + i];
                    L += (a * cc - bb * ss) * (double)b->R[(h * b->T + t) * b->D + ia];
                    L += (a * ss + bb * cc) * (double)b->R[(h * b->T + t) * b->D + ib];
                }
        break;
    case K_SWIGLU: /* in0 = g, in1 = u */
        for (i = 0; i < (int)b->n_in[0]; i++) {
            double g = b->in[0][i];
            L += g / (1 + exp(-g)) * b->in[1][i] * (double)b->R[i];
        }
        break;
    case K_LINEAR: /* in0 = x (T,I), in1 = W (O,I), in2 = A (r,I), in3 = B (O,r) */
        for (t = 0; t < b->T; t++)
            for (o = 0; o < b->O; o++) {
                double y = 0;
                for (i = 0; i < b->I; i++) y += b->in[0][t * b->I + i] * b->in[1][o * b->I + i];
                for (j = 0; j < b->r; j++) {
                    double xa = 0;
                    for (i = 0; i < b->I; i++) xa += b->in[0][t * b->I + i] * b->in[2][j * b->I + i];
                    y += (double)b->s * xa * b->in[3][o * b->r + j];
                }
                L += y * (double)b->R[t * b->O + o];
            }
        break;
    default: { /* in0 = logits (T,V) */
        int n = 0;
        for (t = 0; t < b->T; t++) {
            double mx = -1e300, s = 0;
            if (b->labels[t] < 0) continue;
            n++;
            for (c = 0; c < b->V; c++) if (b->in[0][t * b->V + c] > mx) mx = b->in[0][t * b->V + c];
            for (c = 0; c < b->V; c++) s += exp(b->in[0][t * b->V + c] - mx);
            L += mx + log(s) - b->in[0][t * b->V + b->labels[t]];
        }
        L /= n;
    }
    }
    return L;
}

static void fd_check(const char *what, blk *b, int which, const float *analytic) {
    size_t n = b->n_in[which], i;
    float *fd = (float *)malloc(sizeof(float) * n);
    double scale = 0;
    for (i = 0; i < n; i++) {
        double keep = b->in[which][i], h = 1e-6 * (fabs(keep) > 1 ? fabs(keep) : 1), lp, lm;
        b->in[which][i] = keep + h; lp = blk_loss(b);
        b->in[which][i] = keep - h; lm = blk_loss(b);
        b->in[which][i] = keep;
        fd[i] = (float)((lp - lm) / (2 * h));
        if (fabs((double)fd[i]) > scale) scale = fabs((double)fd[i]);
    }
    check_close(what, analytic, fd, n, 1e-4 * (scale > 1 ? scale : 1), 1e-3);
    free(fd);
}

static double *dupd(const float *x, size_t n) {
    double *p = (double *)malloc(sizeof(double) * n);
    size_t i;
    for (i = 0; i < n; i++) p[i] = (double)x[i];
    return p;
}

int main(void) {
    int path;
    lc_rng_seed(&rng, 5);
    for (path = 0; path < 2; path++) {
        lc_ctx ctx;
        char what[96];
        const char *pn;
        lc_ctx_init(&ctx);
        if (!path) ctx.simd = LOLCATS_SIMD_SCALAR;
        pn = lc_simd_name(ctx.simd);
        { /* RMSNorm */
            int T = 3, C = 13;
            float *x = randn((size_t)T * C, 1), *w = randn((size_t)C, 1), *R = randn((size_t)T * C, 1);
            float *y = randn((size_t)T * C, 0), *rs = randn((size_t)T, 0), *dx = randn((size_t)T * C, 0), *dw = randn((size_t)C, 0);
            blk b;
            memset(&b, 0, sizeof b);
            b.kind = K_RMS; b.T = T; b.C = C; b.eps = 1e-5f; b.R = R;
            b.in[0] = dupd(x, (size_t)T * C); b.n_in[0] = (size_t)T * C;
            b.in[1] = dupd(w, (size_t)C); b.n_in[1] = (size_t)C;
            lc_rmsnorm_fwd(y, rs, x, w, T, C, 1e-5f);
            lc_rmsnorm_bwd(dx, dw, R, x, w, rs, T, C);
            snprintf(what, sizeof what, "[%s] rmsnorm dx", pn); fd_check(what, &b, 0, dx);
            snprintf(what, sizeof what, "[%s] rmsnorm dw", pn); fd_check(what, &b, 1, dw);
            free(x); free(w); free(R); free(y); free(rs); free(dx); free(dw); free(b.in[0]); free(b.in[1]);
        }
        { /* RoPE + split, both pairings */
            int T = 5, H = 3, D = 6, inter;
            for (inter = 0; inter < 2; inter++) {
                float *x = randn((size_t)T * H * D, 1), *R = randn((size_t)T * H * D, 1);
                float *ct = randn((size_t)T * D / 2, 0), *st = randn((size_t)T * D / 2, 0);
                float *out = randn((size_t)T * H * D, 0), *dx = randn((size_t)T * H * D, 0), *back = randn((size_t)T * H * D, 0);
                double *cd, *sd;
                blk b;
                lc_rope_table(ct, st, 7, T, D, 10000.0f);
                cd = dupd(ct, (size_t)T * D / 2); sd = dupd(st, (size_t)T * D / 2);
                memset(&b, 0, sizeof b);
                b.kind = K_ROPE; b.T = T; b.H = H; b.D = D; b.inter = inter; b.R = R; b.cos_t = cd; b.sin_t = sd;
                b.in[0] = dupd(x, (size_t)T * H * D); b.n_in[0] = (size_t)T * H * D;
                lc_rope_split_fwd(out, x, ct, st, T, H, D, inter);
                lc_rope_split_bwd(dx, R, ct, st, T, H, D, inter);
                snprintf(what, sizeof what, "[%s] rope split dx (%s)", pn, inter ? "interleaved" : "rotate_half");
                fd_check(what, &b, 0, dx);
                /* merge is the inverse layout change of a plain split */
                lc_rope_split_fwd(out, x, NULL, NULL, T, H, D, 0);
                lc_heads_merge(back, out, T, H, D);
                check_close("split then merge is the identity", back, x, (size_t)T * H * D, 0, 0);
                free(x); free(R); free(ct); free(st); free(out); free(dx); free(back); free(cd); free(sd); free(b.in[0]);
            }
        }
        { /* SwiGLU */
            size_t n = 29;
            float *g = randn(n, 2), *u = randn(n, 1), *R = randn(n, 1), *h = randn(n, 0), *dg = randn(n, 0), *du = randn(n, 0);
            blk b;
            memset(&b, 0, sizeof b);
            b.kind = K_SWIGLU; b.R = R;
            b.in[0] = dupd(g, n); b.n_in[0] = n; b.in[1] = dupd(u, n); b.n_in[1] = n;
            lc_swiglu_fwd(h, g, u, n);
            lc_swiglu_bwd(dg, du, R, g, u, n);
            snprintf(what, sizeof what, "[%s] swiglu dg", pn); fd_check(what, &b, 0, dg);
            snprintf(what, sizeof what, "[%s] swiglu du", pn); fd_check(what, &b, 1, du);
            free(g); free(u); free(R); free(h); free(dg); free(du); free(b.in[0]); free(b.in[1]);
        }
        { /* dense + LoRA, fp32 weight (with dW) and bf16 / f16 weights (frozen) */
            int T = 4, O = 7, I = 11, r = 3, dt;
            for (dt = 0; dt < 3; dt++) {
                int dtype = dt == 0 ? LOLCATS_DTYPE_F32 : dt == 1 ? LOLCATS_DTYPE_BF16 : LOLCATS_DTYPE_F16;
                float *x = randn((size_t)T * I, 1), *w = randn((size_t)O * I, 0.5f), *A = randn((size_t)r * I, 0.5f);
                float *Bm = randn((size_t)O * r, 0.5f), *R = randn((size_t)T * O, 1), *y = randn((size_t)T * O, 0);
                float *xa = randn((size_t)T * r, 0), *dx = randn((size_t)T * I, 0), *dw = randn((size_t)O * I, 0);
                float *dA = randn((size_t)r * I, 0), *dB = randn((size_t)O * r, 0);
                uint16_t *w16 = (uint16_t *)malloc(sizeof(uint16_t) * (size_t)O * I);
                const void *wp = w;
                blk b;
                size_t i;
                if (dt) { /* round W to the 16-bit format; the f64 model uses the rounded values */
                    for (i = 0; i < (size_t)O * I; i++) {
                        w16[i] = dt == 1 ? lc_f32_to_bf16(w[i]) : lc_f32_to_f16(w[i]);
                        w[i] = dt == 1 ? lc_bf16_to_f32(w16[i]) : lc_f16_to_f32(w16[i]);
                    }
                    wp = w16;
                }
                memset(&b, 0, sizeof b);
                b.kind = K_LINEAR; b.T = T; b.O = O; b.I = I; b.r = r; b.s = 2.0f; b.R = R;
                b.in[0] = dupd(x, (size_t)T * I); b.n_in[0] = (size_t)T * I;
                b.in[1] = dupd(w, (size_t)O * I); b.n_in[1] = (size_t)O * I;
                b.in[2] = dupd(A, (size_t)r * I); b.n_in[2] = (size_t)r * I;
                b.in[3] = dupd(Bm, (size_t)O * r); b.n_in[3] = (size_t)O * r;
                lc_linear_fwd(&ctx, y, xa, x, wp, dtype, A, Bm, 2.0f, r, T, O, I);
                lc_linear_bwd(&ctx, dx, dt ? NULL : dw, dA, dB, R, x, xa, wp, dtype, A, Bm, 2.0f, r, T, O, I);
                snprintf(what, sizeof what, "[%s] linear+lora dx (%s)", pn, lc_dtype_name((lc_dtype)dtype));
                fd_check(what, &b, 0, dx);
                if (!dt) { snprintf(what, sizeof what, "[%s] linear dW", pn); fd_check(what, &b, 1, dw); }
                snprintf(what, sizeof what, "[%s] lora dA (%s)", pn, lc_dtype_name((lc_dtype)dtype)); fd_check(what, &b, 2, dA);
                snprintf(what, sizeof what, "[%s] lora dB (%s)", pn, lc_dtype_name((lc_dtype)dtype)); fd_check(what, &b, 3, dB);
                free(x); free(w); free(A); free(Bm); free(R); free(y); free(xa); free(dx); free(dw); free(dA); free(dB); free(w16);
                for (i = 0; i < 4; i++) free(b.in[i]);
            }
        }
        { /* cross-entropy with ignored rows */
            int T = 5, V = 9, labels[5] = {3, -1, 0, 8, -1}, n;
            float *lg = randn((size_t)T * V, 2), *dl = randn((size_t)T * V, 0);
            blk b;
            double L;
            memset(&b, 0, sizeof b);
            b.kind = K_XENT; b.T = T; b.V = V; b.labels = labels;
            b.in[0] = dupd(lg, (size_t)T * V); b.n_in[0] = (size_t)T * V;
            L = lc_xent_fwd_bwd(dl, lg, labels, T, V, &n);
            CHECK(n == 3 && fabs(L - blk_loss(&b)) < 1e-5, "xent value %g vs %g, counted %d", L, blk_loss(&b), n);
            snprintf(what, sizeof what, "[%s] xent dlogits", pn); fd_check(what, &b, 0, dl);
            free(lg); free(dl); free(b.in[0]);
        }
    }
    return check_done();
}
