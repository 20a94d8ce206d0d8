/* test_gemm.c - lc_gemm and lc_gemv on every code path this CPU runs (scalar,
   AVX2, AVX-512, NEON) against a float64 naive product: odd sizes, both
   transposes, alpha / beta (beta == 0 must not read C: it starts as NaN),
   BF16 and F16 weights, leading dimensions wider than the rows, sizes that
   cross every cache block, and bit-identical results for 1 vs 2 and 3
   OpenMP threads; the GEMM's B panels (lc__pack_b) byte for byte against a
   plain packing; a wide product with BF16/F16 weights (the LM head's shape,
   small) against the same product with the weights widened first. */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static lc_rng rng;
static const int sizes[9] = {1, 3, 7, 17, 63, 64, 65, 130, 257};
static const char *dt_name[3] = {"f32", "f16", "bf16"};

/* op(B)(k,n) element of a weight in dtype dt, as float */
static float wval(const void *B, lc_dtype dt, size_t i) {
    if (dt == LOLCATS_DTYPE_BF16) return lc_bf16_to_f32(((const uint16_t *)B)[i]);
    if (dt == LOLCATS_DTYPE_F16) return lc_f16_to_f32(((const uint16_t *)B)[i]);
    return ((const float *)B)[i];
}

/* random (rows, ld) matrix in dtype dt; padding columns hold garbage */
static void *rand_mat(lc_dtype dt, int rows, size_t ld) {
    size_t n = (size_t)rows * ld, i;
    void *p = malloc((n ? n : 1) * 4);
    for (i = 0; i < n; i++) {
        float v = lc_rng_normal(&rng);
        if (dt == LOLCATS_DTYPE_BF16) ((uint16_t *)p)[i] = lc_f32_to_bf16(v);
        else if (dt == LOLCATS_DTYPE_F16) ((uint16_t *)p)[i] = lc_f32_to_f16(v);
        else ((float *)p)[i] = v;
    }
    return p;
}

typedef struct {
    int M, N, K, ta, tb;
    lc_dtype dt;
    float alpha, beta;
    size_t pad;  /* added to every leading dimension */
} gcase;

/* runs one case on ctx; returns the number of elements out of tolerance */
static int run_case(const lc_ctx *ctx, const gcase *g, int report) {
    int M = g->M, N = g->N, K = g->K, i, j, k, bad = 0;
    size_t lda = (size_t)(g->ta ? M : K) + g->pad, ldb = (size_t)(g->tb ? K : N) + g->pad;
    size_t ldc = (size_t)N + g->pad;
    float *A = (float *)rand_mat(LOLCATS_DTYPE_F32, g->ta ? K : M, lda);
    void *B = rand_mat(g->dt, g->tb ? N : K, ldb);
    float *C = (float *)rand_mat(LOLCATS_DTYPE_F32, M, ldc), *C0;
    void *scratch = malloc(lc_gemm_scratch_size(ctx, M, N, K) + 1);
    double worst = 0;
    C0 = (float *)malloc(sizeof(float) * (size_t)M * ldc);
    if (g->beta == 0.0f)
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) C[(size_t)i * ldc + j] = NAN;
    memcpy(C0, C, sizeof(float) * (size_t)M * ldc);
    /* odd scratch alignment on purpose */
    lc_gemm(ctx, C, A, B, g->dt, M, N, K, g->ta, g->tb, g->alpha, g->beta, ldc, lda, ldb,
            (char *)scratch + 1);
    for (i = 0; i < M; i++)
        for (j = 0; j < N + (int)g->pad; j++) {
            double s = 0, mag = 0, r, c = (double)C[(size_t)i * ldc + j];
            if (j >= N) {  /* padding columns untouched */
                float c0 = C0[(size_t)i * ldc + j];
                if (memcmp(&C[(size_t)i * ldc + j], &c0, 4)) bad++;
                continue;
            }
            for (k = 0; k < K; k++) {
                double a = (double)(g->ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]);
                double b = (double)wval(B, g->dt, g->tb ? (size_t)j * ldb + k : (size_t)k * ldb + j);
                s += a * b;
                mag += fabs(a * b);
            }
            r = (double)g->alpha * s;
            mag *= fabs((double)g->alpha);
            if (g->beta != 0.0f) {
                r += (double)g->beta * (double)C0[(size_t)i * ldc + j];
                mag += fabs((double)g->beta * (double)C0[(size_t)i * ldc + j]);
            }
            if (!(fabs(c - r) <= 2e-6 * mag + 1e-30)) bad++;
            if (fabs(c - r) / (mag + 1e-30) > worst || c != c) worst = c != c ? 1e30 : fabs(c - r) / (mag + 1e-30);
        }
    if (report || bad)
        printf("  gemm %-6s M=%-4d N=%-4d K=%-4d ta=%d tb=%d %-4s a=%.2f b=%.2f pad=%zu  "
               "err/|sum| %.2e %s\n", lc_simd_name(ctx->simd), M, N, K, g->ta, g->tb,
               dt_name[g->dt], (double)g->alpha, (double)g->beta, g->pad, worst,
               bad ? "FAIL" : "PASS");
    free(A); free(B); free(C); free(C0); free(scratch);
    return bad;
}

static void test_gemm_path(const lc_ctx *ctx) {
    static const float betas[3] = {0.0f, 1.0f, -0.5f};
    int im, in, fails = 0, cases = 0, t;
    for (im = 0; im < 9; im++)
        for (in = 0; in < 9; in++) {
            gcase g;
            g.M = sizes[im]; g.N = sizes[in]; g.K = sizes[(im * 4 + in * 7) % 9];
            t = im * 9 + in;
            g.ta = t & 1; g.tb = (t >> 1) & 1;
            g.dt = (lc_dtype)(t % 3 == 0 ? LOLCATS_DTYPE_F32 : t % 3 == 1 ? LOLCATS_DTYPE_BF16 : LOLCATS_DTYPE_F16);
            g.alpha = (t % 5 == 0) ? 1.0f : 0.75f;
            g.beta = betas[t % 3 == 0 ? (t / 3) % 3 : t % 3];
            g.pad = (size_t)(t % 4 == 3 ? 5 : 0);
            fails += run_case(ctx, &g, 0) != 0;
            cases++;
        }
    CHECK(fails == 0, "gemm %s: %d of %d odd-size cases failed", lc_simd_name(ctx->simd), fails, cases);
    {  /* every transpose and dtype at one awkward size; then sizes crossing
          the K block (256), the M chunk (>1120) and the N chunk (>4096) */
        static const int big[4][3] = {{65, 130, 600}, {1200, 40, 300}, {20, 4200, 30}, {257, 257, 257}};
        int d, b;
        for (t = 0; t < 4; t++)
            for (d = 0; d < 3; d++) {
                gcase g;
                g.M = 63; g.N = 65; g.K = 130; g.ta = t & 1; g.tb = t >> 1;
                g.dt = (lc_dtype)d; g.alpha = -1.25f; g.beta = 0.5f; g.pad = 3;
                CHECK(run_case(ctx, &g, 0) == 0, "gemm %s transposes %d dtype %s",
                      lc_simd_name(ctx->simd), t, dt_name[d]);
            }
        for (b = 0; b < 4; b++) {
            gcase g;
            g.M = big[b][0]; g.N = big[b][1]; g.K = big[b][2];
            g.ta = b & 1; g.tb = b == 0 || b == 3; g.dt = b == 3 ? LOLCATS_DTYPE_BF16 : LOLCATS_DTYPE_F32;
            g.alpha = 1.0f; g.beta = b == 2 ? 0.0f : 1.0f; g.pad = (size_t)b;
            CHECK(run_case(ctx, &g, 1) == 0, "gemm %s large case %d", lc_simd_name(ctx->simd), b);
        }
    }
    {  /* K == 0: C = beta C */
        float C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {0}, B[1] = {0};
        lc_gemm(ctx, C, A, B, LOLCATS_DTYPE_F32, 2, 3, 0, 0, 0, 1.0f, 2.0f, 3, 1, 3, NULL);
        CHECK(C[0] == 2 && C[5] == 12, "gemm %s K=0 gives beta C", lc_simd_name(ctx->simd));
    }
    {  /* NULL scratch: internal allocation */
        float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, 0, 1, 1, 1}, C[4];
        lc_gemm(ctx, C, A, B, LOLCATS_DTYPE_F32, 2, 2, 3, 0, 1, 1.0f, 0.0f, 2, 3, 3, NULL);
        CHECK(C[0] == 1 && C[1] == 6 && C[2] == 4 && C[3] == 15, "gemm %s NULL scratch",
              lc_simd_name(ctx->simd));
    }
}

/* lc__pack_b, the B panel of the packed GEMM, byte for byte against the plain
   element-by-element packing written here (dst[k NR + n] = op(B)(p0 + k,
   j0 + n), columns past `cols` zero): every dtype, both transposes, odd
   panel widths and depths, offsets and padded rows; the panel starts as
   garbage so every element must be written. */
static int pack_b_case(const lc__gemm_kind *kd, lc_dtype dt, int tb, int cols, int kc, int j0, int p0) {
    int NR = kd->nr, rows = tb ? j0 + cols : p0 + kc, k, n, same;
    size_t ldb = (size_t)(tb ? p0 + kc : j0 + cols) + 3;
    void *B = rand_mat(dt, rows, ldb);
    float *got = (float *)malloc(sizeof(float) * (size_t)kc * (size_t)NR);
    float *want = (float *)malloc(sizeof(float) * (size_t)kc * (size_t)NR);
    memset(got, 0xA5, sizeof(float) * (size_t)kc * (size_t)NR);
    for (k = 0; k < kc; k++)
        for (n = 0; n < NR; n++)
            want[(size_t)k * NR + n] = n >= cols ? 0.0f : wval(B, dt, tb ? (size_t)(j0 + n) * ldb + (size_t)(p0 + k)
                                                                       : (size_t)(p0 + k) * ldb + (size_t)(j0 + n));
    lc__pack_b(kd, got, B, dt, ldb, tb, j0, cols, p0, kc);
    same = !memcmp(got, want, sizeof(float) * (size_t)kc * (size_t)NR);
    free(B); free(got); free(want);
    return same;
}

static void test_pack_b(const lc_ctx *ctx) {
    static const int kcs[7] = {1, 7, 15, 63, 65, 130, LC__GEMM_KC};
    const lc__kern *K = lc__kern_for(ctx);
    const lc__gemm_kind *kinds[2];
    int nk = 0, ik, d, tb, ic, ikc, fails = 0, cases = 0;
    if (K->gemm) kinds[nk++] = K->gemm;
    if (K->pk && K->pk != K->gemm) kinds[nk++] = K->pk;
    for (ik = 0; ik < nk; ik++) {
        int NR = kinds[ik]->nr, colv[5];
        colv[0] = 1; colv[1] = 5; colv[2] = NR / 2 + 1; colv[3] = NR - 1; colv[4] = NR;
        for (d = 0; d < 3; d++)
            for (tb = 0; tb < 2; tb++)
                for (ic = 0; ic < 5; ic++)
                    for (ikc = 0; ikc < 7; ikc++) {
                        fails += !pack_b_case(kinds[ik], (lc_dtype)d, tb, colv[ic], kcs[ikc], ic * 3, ikc * 5);
                        cases++;
                    }
    }
    if (!nk) return;   /* the scalar path packs nothing */
    printf("  pack_b %s: %d cases, %d kinds\n", lc_simd_name(ctx->simd), cases, nk);
    CHECK(fails == 0, "pack_b %s: %d of %d panels differ from the plain packing", lc_simd_name(ctx->simd), fails,
          cases);
}

static void test_gemv_path(const lc_ctx *ctx) {
    int io, ii, d, fails = 0;
    for (io = 0; io < 9; io++)
        for (ii = 0; ii < 9; ii++)
            for (d = 0; d < 3; d++) {
                int O = sizes[io], I = sizes[ii], o, i, bad = 0;
                size_t ldw = (size_t)I + (size_t)((io + ii) % 3) * 7;
                void *W = rand_mat((lc_dtype)d, O, ldw);
                float *x = (float *)rand_mat(LOLCATS_DTYPE_F32, 1, (size_t)I);
                float *y = (float *)malloc(sizeof(float) * (size_t)O);
                lc_gemv(ctx, y, W, (lc_dtype)d, x, O, I, ldw);
                for (o = 0; o < O; o++) {
                    double s = 0, mag = 0;
                    for (i = 0; i < I; i++) {
                        double t = (double)wval(W, (lc_dtype)d, (size_t)o * ldw + i) * (double)x[i];
                        s += t; mag += fabs(t);
                    }
                    if (!(fabs((double)y[o] - s) <= 2e-6 * mag + 1e-30)) bad++;
                }
                if (bad) printf("  gemv %s O=%d I=%d %s: %d bad\n", lc_simd_name(ctx->simd), O, I, dt_name[d], bad);
                fails += bad != 0;
                free(W); free(x); free(y);
            }
    CHECK(fails == 0, "gemv %s: %d of 243 cases failed", lc_simd_name(ctx->simd), fails);
}

/* same bits for 1, 2 and 3 threads, on a case with many blocks of C */
static void test_threads(const lc_ctx *ctx) {
#ifdef _OPENMP
    int M = 300, N = 1100, K = 700, nt = omp_get_max_threads(), t;
    float *A = (float *)rand_mat(LOLCATS_DTYPE_F32, M, K);
    void *B = rand_mat(LOLCATS_DTYPE_BF16, N, K);
    float *C[3], *y[3];
    for (t = 0; t < 3; t++) {
        C[t] = (float *)malloc(sizeof(float) * (size_t)M * N);
        y[t] = (float *)malloc(sizeof(float) * (size_t)N);
        omp_set_num_threads(t + 1);
        lc_gemm(ctx, C[t], A, B, LOLCATS_DTYPE_BF16, M, N, K, 0, 1, 1.0f, 0.0f, N, K, K, NULL);
        lc_gemv(ctx, y[t], B, LOLCATS_DTYPE_BF16, A, N, K, K);
    }
    omp_set_num_threads(nt);
    CHECK(!memcmp(C[0], C[1], sizeof(float) * (size_t)M * N) &&
          !memcmp(C[0], C[2], sizeof(float) * (size_t)M * N),
          "gemm %s: 1, 2 and 3 threads give the same bits", lc_simd_name(ctx->simd));
    CHECK(!memcmp(y[0], y[1], sizeof(float) * (size_t)N) && !memcmp(y[0], y[2], sizeof(float) * (size_t)N),
          "gemv %s: 1, 2 and 3 threads give the same bits", lc_simd_name(ctx->simd));
    for (t = 0; t < 3; t++) { free(C[t]); free(y[t]); }
    free(A); free(B);
#else
    (void)ctx;
    printf("  (no OpenMP: thread test skipped)\n");
#endif
}

/* A wide product with 2-byte weights, as the LM head's logits = X W^T (W
   (vocab, dim) in BF16/F16, N past the N chunk of 4096, K past the K block):
   bit for bit the product with W widened to F32 beforehand (the same floats
   through the F32 packing, which neither widens nor prefetches), on 1 and 2
   threads. */
static void test_wide_b16(const lc_ctx *ctx) {
    int M = 37, N = 4096 + 2 * 32 + 7, K = 300, d, nt = 1, t, same = 1;
    float *A = (float *)rand_mat(LOLCATS_DTYPE_F32, M, (size_t)K), *Bf = (float *)malloc(sizeof(float) * (size_t)N * K);
    float *C = (float *)malloc(sizeof(float) * (size_t)M * N), *C0 = (float *)malloc(sizeof(float) * (size_t)M * N);
    size_t i;
#ifdef _OPENMP
    nt = omp_get_max_threads();
#endif
    for (d = 1; d < 3; d++) {
        void *B = rand_mat((lc_dtype)d, N, (size_t)K);
        for (i = 0; i < (size_t)N * K; i++) Bf[i] = wval(B, (lc_dtype)d, i);
        lc_gemm(ctx, C0, A, Bf, LOLCATS_DTYPE_F32, M, N, K, 0, 1, 1.0f, 0.0f, (size_t)N, (size_t)K, (size_t)K, NULL);
        for (t = 1; t <= 2; t++) {
#ifdef _OPENMP
            omp_set_num_threads(t);
#endif
            memset(C, 0, sizeof(float) * (size_t)M * N);
            lc_gemm(ctx, C, A, B, (lc_dtype)d, M, N, K, 0, 1, 1.0f, 0.0f, (size_t)N, (size_t)K, (size_t)K, NULL);
            same &= !memcmp(C, C0, sizeof(float) * (size_t)M * N);
        }
        free(B);
    }
#ifdef _OPENMP
    omp_set_num_threads(nt);
#else
    (void)nt;
#endif
    CHECK(same, "gemm %s: wide B^T in f16/bf16 (N %d) equals the product with B widened first, 1 and 2 threads",
          lc_simd_name(ctx->simd), N);
    free(A); free(Bf); free(C); free(C0);
}

int main(void) {
    lc_ctx ctx;
    int best, s;
    lc_rng_seed(&rng, 5);
    lc_ctx_init(&ctx);
    best = ctx.simd;
    for (s = 0; s <= 3; s++) {
        if (s != LOLCATS_SIMD_SCALAR && s != best &&
            !(s == LOLCATS_SIMD_AVX2 && best == LOLCATS_SIMD_AVX512))
            continue;
        ctx.simd = s;
        printf("== path %s\n", lc_simd_name(s));
        test_gemm_path(&ctx);
        test_pack_b(&ctx);
        test_gemv_path(&ctx);
        test_threads(&ctx);
        test_wide_b16(&ctx);
    }
    return check_done();
}
