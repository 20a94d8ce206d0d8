/* naive.h - an independent, mask-explicit float64 restatement of the LoLCATs
   math, written straight from ../shared/docs/LOLCATS_MATH.md and used by the
   tests as the function that finite differences differentiate. It shares no
   code with lolcats.h on purpose (masks included). Slow and simple. */
#ifndef NAIVE_H
#define NAIVE_H
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define NAIVE_FN static __attribute__((unused))
#else
#define NAIVE_FN static
#endif

typedef struct {
    int B, H, Hk, N, D, f, F;
    int act, half;        /* lc_fmap_act, halfspace */
    double eps;           /* feature-map clamp */
    int variant, window, affine;
} naive_dims;

/* window / linear membership straight from the spec (section 6) */
NAIVE_FN void naive_mask(const naive_dims *s, int i, int j, int *win, int *lin) {
    int w = s->window, N = s->N;
    *win = *lin = 0;
    if (j > i) return;
    if (s->variant == 0) { /* sw */
        *win = i - w < j;
        *lin = j <= i - w;
    } else if (N <= w) { /* quirk: both */
        *win = *lin = 1;
    } else {
        int n = w * ((N + w - 1) / w), pi = i + (n - N), pj = j + (n - N);
        int bi = pi / w, bj = pj / w;
        *win = bj == bi || bj == bi - 1;
        *lin = bj < bi - 1;
    }
}

NAIVE_FN void naive_fmap(const naive_dims *s, double *phi, const double *x, int Hx, const double *w,
                       const double *bias) {
    int b, h, i, c, d, f = s->f, D = s->D, H = s->H, two = s->F == 2 * f;
    double z[512], o[1024];
    for (b = 0; b < s->B; b++)
        for (h = 0; h < H; h++)
            for (i = 0; i < s->N; i++) {
                const double *xr = x + (((size_t)b * Hx + h / (H / Hx)) * s->N + i) * D;
                double mx = -1e300, mn = 1e300, s1 = 0, s2 = 0;
                for (c = 0; c < f; c++) {
                    z[c] = bias ? bias[h] : 0;
                    for (d = 0; d < D; d++) z[c] += xr[d] * w[((size_t)h * D + d) * f + c];
                    if (z[c] > mx) mx = z[c];
                    if (z[c] < mn) mn = z[c];
                }
                for (c = 0; c < f; c++) {
                    if (s->act == 0 || s->act == 1) {
                        o[c] = exp(z[c] - mx); s1 += o[c];
                        if (two) { o[f + c] = exp(mn - z[c]); s2 += o[f + c]; }
                    } else if (s->act == 2) {
                        o[c] = z[c] > 0 ? 1 + z[c] : exp(z[c]);
                    } else {
                        o[c] = z[c] > 0 ? z[c] : 0;
                    }
                }
                if (s->act == 0)
                    for (c = 0; c < f; c++) { o[c] /= s1; if (two) o[f + c] /= s2; }
                for (c = 0; c < s->F; c++)
                    phi[(((size_t)b * H + h) * s->N + i) * s->F + c] = o[c] < s->eps ? s->eps : o[c];
            }
}

NAIVE_FN void naive_softmax(const naive_dims *s, double *y, double *a, const double *q,
                          const double *k, const double *v) {
    int b, h, i, j, d, N = s->N, D = s->D;
    double *row = (double *)malloc(sizeof(double) * (size_t)N);
    for (b = 0; b < s->B; b++)
        for (h = 0; h < s->H; h++) {
            int g = h / (s->H / s->Hk);
            for (i = 0; i < N; i++) {
                const double *qi = q + (((size_t)b * s->H + h) * N + i) * D;
                double mx = -1e300, sum = 0;
                for (j = 0; j <= i; j++) {
                    const double *kj = k + (((size_t)b * s->Hk + g) * N + j) * D;
                    row[j] = 0;
                    for (d = 0; d < D; d++) row[j] += qi[d] * kj[d];
                    row[j] /= sqrt((double)D);
                    if (row[j] > mx) mx = row[j];
                }
                for (j = 0; j <= i; j++) { row[j] = exp(row[j] - mx); sum += row[j]; }
                for (d = 0; d < D; d++) {
                    double acc = 0;
                    for (j = 0; j <= i; j++) acc += row[j] / sum * v[(((size_t)b * s->Hk + g) * N + j) * D + d];
                    y[(((size_t)b * s->H + h) * N + i) * D + d] = acc;
                }
                if (a)
                    for (j = 0; j < N; j++)
                        a[(((size_t)b * s->H + h) * N + i) * N + j] = j <= i ? row[j] / sum : 0;
            }
        }
    free(row);
}

NAIVE_FN void naive_linear(const naive_dims *s, double *y, const double *phiq, const double *phik,
                         const double *v, double eps) {
    int b, h, i, j, d, c, N = s->N, D = s->D, F = s->F;
    for (b = 0; b < s->B; b++)
        for (h = 0; h < s->H; h++) {
            int g = h / (s->H / s->Hk);
            for (i = 0; i < N; i++) {
                double sum = 0, acc[512];
                for (d = 0; d < D; d++) acc[d] = 0;
                for (j = 0; j <= i; j++) {
                    double A = 0;
                    for (c = 0; c < F; c++)
                        A += phiq[(((size_t)b * s->H + h) * N + i) * F + c] *
                             phik[(((size_t)b * s->H + h) * N + j) * F + c];
                    sum += A;
                    for (d = 0; d < D; d++) acc[d] += A * v[(((size_t)b * s->Hk + g) * N + j) * D + d];
                }
                for (d = 0; d < D; d++) y[(((size_t)b * s->H + h) * N + i) * D + d] = acc[d] / (sum + eps);
            }
        }
}

NAIVE_FN void naive_hybrid(const naive_dims *s, double *y, double *a, const double *q,
                         const double *k, const double *v, const double *phiq,
                         const double *phik, const double *wf, const double *S,
                         const double *z) {
    int b, h, i, j, d, c, N = s->N, D = s->D, F = s->F;
    double *E = (double *)malloc(sizeof(double) * (size_t)N * 2);
    double *L = E + N;
    for (b = 0; b < s->B; b++)
        for (h = 0; h < s->H; h++) {
            int g = h / (s->H / s->Hk);
            size_t bh = (size_t)b * s->H + h;
            double gam = 1 / (1 + exp(-wf[h])), lam = s->affine ? 1 - gam : 1;
            for (i = 0; i < N; i++) {
                const double *qi = q + (bh * N + i) * D, *pq = phiq + (bh * N + i) * F;
                double mx = -1e300, den0 = 0, den, acc[512];
                int win, lin;
                for (j = 0; j <= i; j++) {
                    double sc = 0;
                    naive_mask(s, i, j, &win, &lin);
                    for (d = 0; d < D; d++) sc += qi[d] * k[(((size_t)b * s->Hk + g) * N + j) * D + d];
                    E[j] = sc / sqrt((double)D);
                    if (win && E[j] > mx) mx = E[j];
                }
                for (j = 0; j <= i; j++) {
                    naive_mask(s, i, j, &win, &lin);
                    E[j] = win ? gam * exp(E[j] - mx) : 0;
                    L[j] = 0;
                    if (lin)
                        for (c = 0; c < F; c++) L[j] += lam * pq[c] * phik[(bh * N + j) * F + c];
                    den0 += E[j] + L[j];
                }
                for (d = 0; d < D; d++) {
                    acc[d] = 0;
                    for (j = 0; j <= i; j++) acc[d] += (E[j] + L[j]) * v[(((size_t)b * s->Hk + g) * N + j) * D + d];
                }
                den = den0;
                if (S) {
                    for (c = 0; c < F; c++) {
                        for (d = 0; d < D; d++) acc[d] += lam * pq[c] * S[(bh * F + c) * D + d];
                        den += lam * pq[c] * z[bh * F + c];
                    }
                }
                for (d = 0; d < D; d++) y[(bh * N + i) * D + d] = acc[d] / den;
                if (a)
                    for (j = 0; j < N; j++) a[(bh * N + i) * N + j] = j <= i ? (E[j] + L[j]) / den0 : 0;
            }
        }
    free(E);
}
#endif
