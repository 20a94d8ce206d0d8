/* test_prims.c - the SIMD primitives of every level this CPU has (AVX2 and
   AVX-512 on x86, NEON on arm64) against their scalar definitions
   (lc__prims_ref) at odd lengths, so each vector body and scalar tail runs:
   dot, axpy, scal, max, exp_sum (both signs), and the column forms colmax,
   colexp, colmul over w = 32 and 64 columns and 1 to 17 rows. Inputs include
   -inf, NaN, values past expf's range and below its normal range.
   Rules: max, colmax, colmul, scal exact (NaN where the reference has NaN);
   axpy within 1e-7 + 1.2e-7 |r| (a fused multiply-add or not); dot within 1e-6 of
   sum |a_i b_i|; exp within 4 float ulp, except inputs below expf's normal
   range, where the vector exp gives its floor 2^-126 or less instead of the
   subnormal (|y| <= 1.2e-38); float sums within 2e-6 relative. Each exp form
   must be a vector one (not the reference) on every SIMD level. */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"

#include <float.h>
#include <string.h>

#define NMAX 300

static const int ns[16] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 257};

static float tiny_or(float v, float r, float z) { return z < LC__EXP_LO && fabsf(v) <= 1.2e-38f ? r : v; }

static void fill(float *x, int n, lc_rng *g, float scale) {
    int i;
    for (i = 0; i < n; i++) x[i] = scale * lc_rng_normal(g);
}

/* exact equality, NaN equal to NaN */
static int same(float a, float b) { return a == b || (a != a && b != b); }

static void case_vec(const char *lv, const lc__prims *P, lc_rng *g) {
    const lc__prims *R = &lc__prims_ref;
    float a[NMAX], b[NMAX], y[NMAX], r[NMAX];
    char what[96];
    int k, i, bad;
    for (k = 0; k < 16; k++) {
        int n = ns[k];
        double s, rs, mag = 0;
        float m, rm;
        fill(a, n, g, 1.0f);
        fill(b, n, g, 1.0f);
        for (i = 0; i < n; i++) mag += fabs((double)a[i] * (double)b[i]);
        s = (double)P->dot(a, b, n);
        rs = (double)R->dot(a, b, n);
        CHECK(fabs(s - rs) <= 1e-6 * mag + 1e-30, "%s dot n=%d: %.9g vs %.9g", lv, n, s, rs);

        memcpy(y, b, sizeof(float) * (size_t)n);
        memcpy(r, b, sizeof(float) * (size_t)n);
        P->axpy(y, 0.37f, a, n);
        R->axpy(r, 0.37f, a, n);
        snprintf(what, sizeof what, "%s axpy n=%d", lv, n);
        check_close(what, y, r, (size_t)n, 1e-7, 1.2e-7);

        memcpy(y, a, sizeof(float) * (size_t)n);
        memcpy(r, a, sizeof(float) * (size_t)n);
        P->scal(y, -1.7f, n);
        R->scal(r, -1.7f, n);
        for (i = 0, bad = 0; i < n; i++) bad += !same(y[i], r[i]);
        CHECK(bad == 0, "%s scal n=%d: %d elements differ", lv, n, bad);

        m = P->max(a, 1.0f, n);
        rm = R->max(a, 1.0f, n);
        CHECK(same(m, rm), "%s max n=%d: %g vs %g", lv, n, (double)m, (double)rm);
        m = P->max(a, -1.0f, n);
        rm = R->max(a, -1.0f, n);
        CHECK(same(m, rm), "%s max -x n=%d: %g vs %g", lv, n, (double)m, (double)rm);
        a[n / 2] = NAN;
        m = P->max(a, 1.0f, n);
        CHECK(m != m, "%s max n=%d: a NaN gives NaN (%g)", lv, n, (double)m);
        a[n / 2] = 0.5f;

        {  // exp_sum, both signs, with -inf, an input below expf's range and a large one
            float sgn = k % 2 ? -1.0f : 1.0f, sub = 1.25f;
            for (i = 0; i < n; i++) {
                a[i] = 3.0f * lc_rng_normal(g);
                if (i % 7 == 3) a[i] = -sgn * INFINITY;
                if (i % 11 == 5) a[i] = sgn * (sub - 95.0f);
                if (i % 13 == 6) a[i] = sgn * (sub + 80.0f);
            }
            s = P->exp_sum(y, a, sgn, sub, n);
            rs = R->exp_sum(r, a, sgn, sub, n);
            for (i = 0, bad = 0; i < n; i++) {
                float z = sgn * a[i] - sub, v = tiny_or(y[i], r[i], z);
                bad += v != r[i] && fabsf(v - r[i]) > 4.8e-7f * fabsf(r[i]);
            }
            CHECK(bad == 0, "%s exp_sum sgn %g n=%d: %d exps off", lv, (double)sgn, n, bad);
            CHECK(fabs(s - rs) <= 2e-6 * rs + 1e-36 * n, "%s exp_sum sgn %g n=%d: sum %.9g vs %.9g", lv,
                  (double)sgn, n, s, rs);
            memcpy(y, a, sizeof(float) * (size_t)n);  // in place (y aliasing x)
            s = P->exp_sum(y, y, sgn, sub, n);
            CHECK(fabs(s - rs) <= 2e-6 * rs + 1e-36 * n, "%s exp_sum in place n=%d: %.9g vs %.9g", lv, n, s,
                  rs);
            a[n / 2] = sgn * (sub + 89.0f);  // past expf's range
            s = P->exp_sum(y, a, sgn, sub, n);
            CHECK(s == (double)INFINITY && y[n / 2] == INFINITY, "%s exp_sum n=%d: overflow gives inf (%g)",
                  lv, n, s);
            a[n / 2] = NAN;
            s = P->exp_sum(y, a, sgn, sub, n);
            for (i = 0, bad = 0; i < n; i++) bad += i == n / 2 ? y[i] == y[i] : y[i] != y[i];
            CHECK(s != s && bad == 0, "%s exp_sum n=%d: NaN gives a NaN sum (%g), NaN only there (%d off)", lv,
                  n, s, bad);
        }
    }
}

static void case_cols(const char *lv, const lc__prims *P, lc_rng *g) {
    static const int ws[2] = {32, 64}, rows_[4] = {1, 2, 5, 17};
    const lc__prims *R = &lc__prims_ref;
    float x[17 * 64], xr[17 * 64], x0[17 * 64], c1[64], c2[64], d1[64], d2[64];
    int wi, ri, i, bad;
    for (wi = 0; wi < 2; wi++)
        for (ri = 0; ri < 4; ri++) {
            int w = ws[wi], rows = rows_[ri], n = w * rows;
            fill(x, n, g, 2.0f);
            x[3] = NAN;                   // column 3: a NaN
            x[(size_t)(rows - 1) * w + 5] = -INFINITY;
            fill(c1, w, g, 1.0f);
            c1[7] = -INFINITY;
            memcpy(c2, c1, sizeof(float) * (size_t)w);
            P->colmax(x, c1, rows, w);
            R->colmax(x, c2, rows, w);
            for (i = 0, bad = 0; i < w; i++) bad += !same(c1[i], c2[i]);
            CHECK(bad == 0 && c1[3] != c1[3], "%s colmax %dx%d: %d columns differ, NaN column %g", lv, rows, w,
                  bad, (double)c1[3]);

            fill(x, n, g, 2.0f);
            x[(size_t)(rows - 1) * w + 5] = -INFINITY;
            x[(size_t)(rows - 1) * w + 6] = -200.0f;  // below expf's range after the shift
            x[9] = 120.0f;                           // past it: inf
            memcpy(xr, x, sizeof(float) * (size_t)n);
            memcpy(x0, x, sizeof(float) * (size_t)n);
            for (i = 0; i < w; i++) {
                c1[i] = 0.5f * lc_rng_normal(g);
                d1[i] = d2[i] = 1.0f + (float)i;
            }
            P->colexp(x, c1, d1, rows, w);
            R->colexp(xr, c1, d2, rows, w);
            for (i = 0, bad = 0; i < n; i++) {
                float v = tiny_or(x[i], xr[i], x0[i] - c1[i % w]);
                bad += !(v == xr[i] || fabsf(v - xr[i]) <= 4.8e-7f * fabsf(xr[i]));
            }
            CHECK(bad == 0, "%s colexp %dx%d: %d exps off", lv, rows, w, bad);
            for (i = 0, bad = 0; i < w; i++)
                bad += !(d1[i] == d2[i] || fabsf(d1[i] - d2[i]) <= 2e-6f * fabsf(d2[i]));
            CHECK(bad == 0 && d1[9] == INFINITY, "%s colexp %dx%d: %d column sums off (inf column %g)", lv, rows,
                  w, bad, (double)d1[9]);

            fill(x, n, g, 1.0f);
            memcpy(xr, x, sizeof(float) * (size_t)n);
            fill(c1, w, g, 1.0f);
            P->colmul(x, c1, rows, w);
            R->colmul(xr, c1, rows, w);
            for (i = 0, bad = 0; i < n; i++) bad += !same(x[i], xr[i]);
            CHECK(bad == 0, "%s colmul %dx%d: %d elements differ", lv, rows, w, bad);
        }
}

/* lc__all_finite (the guard of every attention kernel's inputs, >>fast-decl):
   false for NaN, -NaN, +-Inf at every position of n = 1..21 (the 8-float body
   and the scalar tail), true for finite extremes and signs */
static void case_finite(void) {
    static const float bad[4] = {NAN, -NAN, INFINITY, -INFINITY};
    float x[21];
    int n, i, b, k, wrong = 0;
    for (n = 1; n <= 21; n++) {
        for (i = 0; i < n; i++) x[i] = i % 3 == 0 ? -FLT_MAX : i % 3 == 1 ? 1e-45f : -0.0f;
        wrong += !lc__all_finite(x, (size_t)n);
        for (k = 0; k < n; k++)
            for (b = 0; b < 4; b++) {
                float keep = x[k];
                x[k] = bad[b];
                wrong += lc__all_finite(x, (size_t)n);
                x[k] = keep;
            }
    }
    CHECK(wrong == 0, "all_finite: %d wrong answers", wrong);
}

int main(void) {
    lc_ctx dflt, ctx;
    lc_rng g;
    int levels[2], nl = 0, k;
    lc_ctx_init(&dflt);
    lc_rng_seed(&g, 29);
    if (dflt.simd != LOLCATS_SIMD_SCALAR) levels[nl++] = dflt.simd;
    if (dflt.simd == LOLCATS_SIMD_AVX512) levels[nl++] = LOLCATS_SIMD_AVX2;
    printf("test_prims: default path %s\n", lc_simd_name(dflt.simd));
    if (nl == 0) printf("SKIPPED: no SIMD level on this CPU or build (the reference is the definition)\n");
    for (k = 0; k < nl; k++) {
        const char *lv = lc_simd_name(levels[k]);
        const lc__prims *P;
        lc_ctx_init(&ctx);
        ctx.simd = levels[k];
        P = lc__prims_for(&ctx);
        CHECK(P->exp_sum != lc__exp_sum_ref && P->colexp != lc__colexp_ref, "%s: exp_sum and colexp are vector forms",
              lv);
        case_vec(lv, P, &g);
        case_cols(lv, P, &g);
    }
    case_finite();
    return check_done();
}
