/* test_gemv.c - lc_gemv's multi-row kernels (>>gemv-rows) on every code path
   this CPU runs: each row of a many-row call has exactly the bits of the same
   row computed alone (so the row blocking never changes a result), the sums
   agree with a float64 product within float rounding, at odd sizes (rows not
   a multiple of the four-row block or the task, I not a multiple of the
   vector width), unaligned W and x, padded rows (ldw > I), F32 / F16 / BF16
   weights; every O and I in 1..67 against the scalar reference; and 1, 2 and
   3 OpenMP threads give the same bits. */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static lc_rng rng;
static const lc_dtype dts[3] = {LOLCATS_DTYPE_F32, LOLCATS_DTYPE_F16, LOLCATS_DTYPE_BF16};
static const char *dt_name[3] = {"f32", "f16", "bf16"};

/* (rows, ld) random weights in dtype dt starting one element past an aligned
   block (unaligned): *base is what to free */
static void *rand_w(lc_dtype dt, size_t n, void **base) {
    size_t es = lc_dtype_size(dt), i;
    char *p = (char *)malloc((n + 1) * es);
    *base = p;
    p += es;
    for (i = 0; i < n; i++) {
        float v = lc_rng_normal(&rng);
        if (dt == LOLCATS_DTYPE_F32) ((float *)(void *)p)[i] = v;
        else ((uint16_t *)(void *)p)[i] = dt == LOLCATS_DTYPE_BF16 ? lc_f32_to_bf16(v) : lc_f32_to_f16(v);
    }
    return p;
}

static float wv(const void *W, lc_dtype dt, size_t i) {
    if (dt == LOLCATS_DTYPE_BF16) return lc_bf16_to_f32(((const uint16_t *)W)[i]);
    if (dt == LOLCATS_DTYPE_F16) return lc_f16_to_f32(((const uint16_t *)W)[i]);
    return ((const float *)W)[i];
}

/* one (O, I, ldw, dtype) case: returns the number of bad rows */
static int one_case(const lc_ctx *ctx, int O, int I, size_t ldw, int d) {
    void *wb, *xb;
    const void *W = rand_w(dts[d], (size_t)O * ldw, &wb);
    const float *x = (const float *)rand_w(LOLCATS_DTYPE_F32, (size_t)I, &xb);
    float *y = (float *)malloc(sizeof(float) * (size_t)O), y1;
    size_t es = lc_dtype_size(dts[d]);
    int o, i, bad = 0;
    lc_gemv(ctx, y, W, dts[d], x, O, I, ldw);
    for (o = 0; o < O; o++) {
        double s = 0, mag = 0;
        /* the row alone: the first and last eight rows and every 16th (one call each) */
        if (o < 8 || o >= O - 8 || o % 16 == 5)
            lc_gemv(ctx, &y1, (const char *)W + (size_t)o * ldw * es, dts[d], x, 1, I, ldw);
        else
            y1 = y[o];
        for (i = 0; i < I; i++) {
            double t = (double)wv(W, dts[d], (size_t)o * ldw + (size_t)i) * (double)x[i];
            s += t; mag += fabs(t);
        }
        if (memcmp(&y1, &y[o], sizeof y1) != 0 || !(fabs((double)y[o] - s) <= 2e-6 * mag + 1e-30)) {
            if (bad < 3)
                printf("  gemv %s O=%d I=%d ldw=%d %s row %d: %.9g alone %.9g exact %.9g\n",
                       lc_simd_name(ctx->simd), O, I, (int)ldw, dt_name[d], o, (double)y[o], (double)y1, s);
            bad++;
        }
    }
    free(wb); free(xb); free(y);
    return bad;
}

static void test_rows(const lc_ctx *ctx) {
    /* I = 64, 128, 512, 520, 4097: the prefetch cursor (>>gemv-rows, 2 KiB
       ahead) wraps into the next four rows within one row, after several, or
       ends short of the row end; O = 257 with 512-wide BF16 rows is one task
       whose last group of four is a partial prefetch target */
    static const int Os[8] = {1, 3, 5, 8, 18, 67, 257, 259};
    static const int Is[13] = {1, 15, 17, 63, 64, 65, 128, 130, 257, 512, 520, 3001, 4097};
    int a, b, d, fails = 0, n = 0;
    for (a = 0; a < 8; a++)
        for (b = 0; b < 13; b++)
            for (d = 0; d < 3; d++, n++) {
                if (Os[a] * Is[b] > 400000 && d != 0) continue;
                fails += one_case(ctx, Os[a], Is[b], (size_t)Is[b] + (size_t)((a + b) % 3), d) != 0;
            }
    CHECK(fails == 0, "gemv %s: multi-row == row alone == float64 product (%d of %d cases failed)",
          lc_simd_name(ctx->simd), fails, n);
}

/* every O and I in 1..67 (I against O = 9: two groups of four and a row
   left; O against I = 67: every count of leftover rows), each dtype, the
   fast path against the scalar reference (lc__gemv_row_ref, float64 sums)
   within the float rounding of the sum */
static void test_small(const lc_ctx *ctx) {
    lc_ctx ref = *ctx;
    int k, d, fails = 0, n = 0;
    ref.simd = LOLCATS_SIMD_SCALAR;
    for (k = 1; k <= 67; k++)
        for (d = 0; d < 3; d++) {
            int pass;
            for (pass = 0; pass < 2; pass++, n++) {
                int O = pass ? k : 9, I = pass ? 67 : k, o, i, bad = 0;
                void *wb, *xb;
                const void *W = rand_w(dts[d], (size_t)O * (size_t)I, &wb);
                const float *x = (const float *)rand_w(LOLCATS_DTYPE_F32, (size_t)I, &xb);
                float y[67], yr[67];
                lc_gemv(ctx, y, W, dts[d], x, O, I, (size_t)I);
                lc_gemv(&ref, yr, W, dts[d], x, O, I, (size_t)I);
                for (o = 0; o < O; o++) {
                    double mag = 0;
                    for (i = 0; i < I; i++) mag += fabs((double)wv(W, dts[d], (size_t)o * I + i) * (double)x[i]);
                    bad += !(fabs((double)y[o] - (double)yr[o]) <= 2e-6 * mag + 1e-30);
                }
                if (bad) printf("  gemv %s O=%d I=%d %s: %d rows off the reference\n", lc_simd_name(ctx->simd), O, I,
                                dt_name[d], bad);
                fails += bad != 0;
                free(wb); free(xb);
            }
        }
    CHECK(fails == 0, "gemv %s: O, I in 1..67 against the scalar reference (%d of %d cases failed)",
          lc_simd_name(ctx->simd), fails, n);
}

/* same bits for 1, 2 and 3 threads: I = 3000 makes tasks of 24 rows (f32) or
   44 (bf16), I = 520 of 252 (f16, bf16: several four-row groups per prefetch
   distance); 1001 rows end mid-block */
static void test_threads(const lc_ctx *ctx) {
#ifdef _OPENMP
    static const int cd[4] = {0, 2, 1, 2}, cI[4] = {3000, 3000, 520, 520};
    int O = 1001, nt = omp_get_max_threads(), t, c;
    for (c = 0; c < 4; c++) {
        int d = cd[c], I = cI[c];
        void *wb, *xb;
        const void *W = rand_w(dts[d], (size_t)O * I, &wb);
        const float *x = (const float *)rand_w(LOLCATS_DTYPE_F32, (size_t)I, &xb);
        float *y[3];
        for (t = 0; t < 3; t++) {
            y[t] = (float *)malloc(sizeof(float) * (size_t)O);
            omp_set_num_threads(t + 1);
            lc_gemv(ctx, y[t], W, dts[d], x, O, I, (size_t)I);
        }
        omp_set_num_threads(nt);
        CHECK(!memcmp(y[0], y[1], sizeof(float) * (size_t)O) && !memcmp(y[0], y[2], sizeof(float) * (size_t)O),
              "gemv %s %s I=%d: 1, 2 and 3 threads give the same bits", lc_simd_name(ctx->simd), dt_name[d], I);
        for (t = 0; t < 3; t++) free(y[t]);
        free(wb); free(xb);
    }
#else
    printf("  SKIPPED: %s thread bit-identity (built without OpenMP)\n", lc_simd_name(ctx->simd));
#endif
}

int main(void) {
    lc_ctx ctx;
    int path[3], np = 0, k;
    lc_rng_seed(&rng, 23);
    lc_ctx_init(&ctx);
    path[np++] = LOLCATS_SIMD_SCALAR;   /* the reference, then every fast level this CPU runs */
    if (ctx.simd == LOLCATS_SIMD_AVX512) path[np++] = LOLCATS_SIMD_AVX2;
    if (ctx.simd != LOLCATS_SIMD_SCALAR) path[np++] = ctx.simd;
    for (k = 0; k < np; k++) {
        ctx.simd = path[k];
        printf("== path %s\n", lc_simd_name(ctx.simd));
        test_rows(&ctx);
        test_small(&ctx);
        test_threads(&ctx);
    }
    return check_done();
}
