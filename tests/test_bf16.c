/* test_bf16.c - the bf16 compute mode of lc_gemm (ctx.compute =
   LOLCATS_COMPUTE_BF16, >>gemm-bf16): the rounding to bf16 (ties to even,
   denormals to zero, NaN quieted); the AVX512_BF16 form against its scalar
   twin, bit for bit, at odd sizes (odd K: the last pair padded; K across the
   512-blocks), both transposes, alpha / beta, F32 / BF16 / F16 B, 1 vs 2
   threads; both against a float64 product within the bf16 tolerance; the
   default (F32) mode untouched. Then the blocking of the fast form (more
   than 4096 columns, many blocks of 24 row panels) and leading dimensions past
   the matrix (odd: BF16 pairs at odd addresses), fast vs twin. */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static lc_rng rng;

static float bits_f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static void *rand_mat(lc_dtype dt, size_t n) {
    void *p = malloc((n ? n : 1) * 4);
    size_t i;
    for (i = 0; i < n; i++) {
        float v = lc_rng_normal(&rng);
        if (i % 97 == 5) v = bits_f(0x3f808000u);            /* a tie: 1 + 2^-8 */
        if (i % 101 == 7) v = bits_f(0x00012345u);           /* a denormal */
        if (dt == LOLCATS_DTYPE_BF16) ((uint16_t *)p)[i] = lc_f32_to_bf16(v);
        else if (dt == LOLCATS_DTYPE_F16) ((uint16_t *)p)[i] = lc_f32_to_f16(v);
        else ((float *)p)[i] = v;
    }
    return p;
}

static float wv(const void *B, lc_dtype dt, size_t i) {
    if (dt == LOLCATS_DTYPE_BF16) return lc_bf16_to_f32(((const uint16_t *)B)[i]);
    if (dt == LOLCATS_DTYPE_F16) return lc_f16_to_f32(((const uint16_t *)B)[i]);
    return ((const float *)B)[i];
}

static void run(const lc_ctx *c, int compute, float *C, const float *A, const void *B,
                lc_dtype dt, int M, int N, int K, int ta, int tb, float al, float be) {
    lc_ctx x = *c;
    x.compute = compute;
    lc_gemm(&x, C, A, B, dt, M, N, K, ta, tb, al, be, (size_t)N, (size_t)(ta ? M : K),
            (size_t)(tb ? K : N), NULL);
}

int main(void) {
    static const int shp[][3] = {{1, 1, 1},     {3, 5, 7},     {14, 32, 2},  {17, 33, 65},
                                 {15, 31, 513}, {29, 70, 1025}, {257, 65, 130}, {40, 600, 9}};
    static const float ab[][2] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {0.5f, 1.0f}, {2.0f, -0.25f}};
    lc_ctx fast, scal;
    int nfast, s, ta, tb, d, cases = 0, eq = 0, close = 0, moved = 0, thr = 1;
    lc_dtype dts[3] = {LOLCATS_DTYPE_F32, LOLCATS_DTYPE_BF16, LOLCATS_DTYPE_F16};

    /* the rounding, as vcvtne2ps2bf16 */
    CHECK(lc__bf16_rne(bits_f(0x3f808000u)) == 0x3f80u, "tie to even (down)");
    CHECK(lc__bf16_rne(bits_f(0x3f818000u)) == 0x3f82u, "tie to even (up)");
    CHECK(lc__bf16_rne(bits_f(0x3f808001u)) == 0x3f81u, "above the tie");
    CHECK(lc__bf16_rne(bits_f(0x00012345u)) == 0x0000u, "denormal to +0");
    CHECK(lc__bf16_rne(bits_f(0x80012345u)) == 0x8000u, "denormal to -0");
    CHECK(lc__bf16_rne(bits_f(0x7f800001u)) == 0x7fc0u, "NaN quieted");
    CHECK(lc__bf16_rne(bits_f(0x7f7fffffu)) == 0x7f80u, "max float rounds to inf");

    lc_ctx_init(&fast);
    CHECK(fast.compute == LOLCATS_COMPUTE_F32, "lc_ctx_init: F32 by default");
    scal = fast;
    scal.simd = LOLCATS_SIMD_SCALAR;
    CHECK(lc_compute_supported(&scal, LOLCATS_COMPUTE_BF16) == 1, "scalar ctx: the twin");
    CHECK(lc_compute_supported(&fast, LOLCATS_COMPUTE_F32) == 1, "F32 always");
    nfast = fast.simd != LOLCATS_SIMD_SCALAR && lc_compute_supported(&fast, LOLCATS_COMPUTE_BF16);
    if (!nfast)
        printf("SKIPPED: the AVX512_BF16 form does not run here (path %s, or no AVX512_BF16): fast vs twin not compared\n",
               lc_simd_name(fast.simd));
#ifdef _OPENMP
    thr = omp_get_max_threads();
#endif
    (void)thr;

    for (s = 0; s < (int)(sizeof shp / sizeof shp[0]); s++)
        for (d = 0; d < 3; d++)
            for (ta = 0; ta < 2; ta++)
                for (tb = 0; tb < 2; tb++) {
                    int M = shp[s][0], N = shp[s][1], K = shp[s][2], i, j, k;
                    const float *al = ab[(s + d + ta + 2 * tb) % 4];
                    size_t nc = (size_t)M * N;
                    float *A = (float *)rand_mat(LOLCATS_DTYPE_F32, (size_t)M * K);
                    void *B = rand_mat(dts[d], (size_t)K * N);
                    float *C0 = (float *)rand_mat(LOLCATS_DTYPE_F32, nc);
                    float *Ct = (float *)malloc(nc * 4), *Cf = (float *)malloc(nc * 4);
                    float *C32 = (float *)malloc(nc * 4);
                    int ok_eq = 1, ok_close = 1;
                    memcpy(Ct, C0, nc * 4);
                    memcpy(Cf, C0, nc * 4);
                    memcpy(C32, C0, nc * 4);
                    run(&scal, LOLCATS_COMPUTE_BF16, Ct, A, B, dts[d], M, N, K, ta, tb, al[0], al[1]);
                    run(&fast, LOLCATS_COMPUTE_F32, C32, A, B, dts[d], M, N, K, ta, tb, al[0], al[1]);
                    if (nfast) {
                        run(&fast, LOLCATS_COMPUTE_BF16, Cf, A, B, dts[d], M, N, K, ta, tb, al[0], al[1]);
                        ok_eq = memcmp(Cf, Ct, nc * 4) == 0;
                    }
                    for (i = 0; i < M && ok_close; i++)
                        for (j = 0; j < N; j++) {
                            double ref = 0, mag = 0, got = (double)Ct[(size_t)i * N + j];
                            for (k = 0; k < K; k++) {
                                double a = (double)A[ta ? (size_t)k * M + i : (size_t)i * K + k];
                                double b = (double)wv(B, dts[d], tb ? (size_t)j * K + k : (size_t)k * N + j);
                                ref += a * b;
                                mag += fabs(a * b);
                            }
                            ref = (double)al[0] * ref + (double)al[1] * (double)C0[(size_t)i * N + j];
                            mag = fabs((double)al[0]) * mag + fabs((double)al[1] * (double)C0[(size_t)i * N + j]);
                            if (fabs(got - ref) > 1.6e-2 * mag + 1e-30) {
                                ok_close = 0;
                                printf("  (%d,%d): %.9g vs %.9g (mag %.3g)\n", i, j, got, ref, mag);
                                break;
                            }
                            if (got != (double)C32[(size_t)i * N + j]) moved++;
                        }
                                    cases++;
                    eq += ok_eq;
                    close += ok_close;
                    CHECK(ok_eq, "fast == twin bit for bit: %dx%dx%d ta %d tb %d %s", M, N, K, ta,
                          tb, d == 0 ? "f32" : d == 1 ? "bf16" : "f16");
                    CHECK(ok_close, "twin within bf16 tolerance of float64: %dx%dx%d ta %d tb %d",
                          M, N, K, ta, tb);
#ifdef _OPENMP
                    if (nfast && thr > 1 && s >= 4) {   /* 1 thread vs all */
                        memcpy(Cf, C0, nc * 4);
                        omp_set_num_threads(1);
                        run(&fast, LOLCATS_COMPUTE_BF16, Cf, A, B, dts[d], M, N, K, ta, tb, al[0], al[1]);
                        omp_set_num_threads(thr);
                        CHECK(memcmp(Cf, Ct, nc * 4) == 0, "1 thread == %d threads", thr);
                    }
#endif
                    free(A); free(B); free(C0); free(Ct); free(Cf); free(C32);
                }
    {   /* blocks and padded leading dimensions: A (M,K) / B^T (N,K) rows along k */
        static const int big[][4] = {{4100, 37, 3, 1}, {23, 4200, 5, 3}, {350, 70, 515, 1}, {9, 40, 1030, 7}};
        for (s = 0; nfast && s < (int)(sizeof big / sizeof big[0]); s++)
            for (d = 0; d < 2; d++)
                for (ta = 0; ta < 2; ta++) {
                    int M = big[s][0], N = big[s][1], K = big[s][2], pad = big[s][3];
                    size_t lda = (size_t)(ta ? M : K) + (size_t)pad, ldb = (size_t)K + (size_t)pad;
                    size_t ldc = (size_t)N + 2, nc = (size_t)M * ldc;
                    float *A = (float *)rand_mat(LOLCATS_DTYPE_F32, (size_t)(ta ? K : M) * lda);
                    void *B = rand_mat(dts[d], (size_t)N * ldb);
                    float *Ct = (float *)rand_mat(LOLCATS_DTYPE_F32, nc), *Cf = (float *)malloc(nc * 4);
                    lc_ctx x = fast, y = scal;
                    x.compute = y.compute = LOLCATS_COMPUTE_BF16;
                    memcpy(Cf, Ct, nc * 4);
                    lc_gemm(&y, Ct, A, B, dts[d], M, N, K, ta, 1, 1.0f, 1.0f, ldc, lda, ldb, NULL);
                    lc_gemm(&x, Cf, A, B, dts[d], M, N, K, ta, 1, 1.0f, 1.0f, ldc, lda, ldb, NULL);
                    CHECK(memcmp(Cf, Ct, nc * 4) == 0, "blocks: fast == twin: %dx%dx%d ta %d lda %zu ldb %zu %s",
                          M, N, K, ta, lda, ldb, d == 0 ? "f32" : "bf16");
                    free(A); free(B); free(Ct); free(Cf);
                }
    }
    CHECK(moved > 0, "the bf16 mode changes results (%d elements differ from F32)", moved);
    {   /* the default mode is the float32 path: a K whose products bf16 cannot hold */
        float A1[2] = {1.0f + 1.0f / 1024, 1.0f}, B1[2] = {1.0f, 1.0f + 1.0f / 4096}, C1 = 0;
        lc_gemm(&fast, &C1, A1, B1, LOLCATS_DTYPE_F32, 1, 1, 2, 0, 0, 1.0f, 0.0f, 1, 2, 1, NULL);
        CHECK(C1 == 2.0f + 1.0f / 1024 + 1.0f / 4096, "F32 mode exact: %.9g", (double)C1);
        run(&scal, LOLCATS_COMPUTE_BF16, &C1, A1, B1, LOLCATS_DTYPE_F32, 1, 1, 2, 0, 0, 1.0f, 0.0f);
        CHECK(C1 == 2.0f, "bf16 mode rounds the operands: %.9g", (double)C1);
    }
    printf("bf16 gemm: %d cases, fast == twin in %d, within tolerance %d (fast form %s)\n", cases,
           eq, close, nfast ? "on" : "off");
    return check_done();
}
