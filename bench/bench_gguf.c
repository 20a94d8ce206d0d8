/* bench_gguf.c - `make bench`: decoding's matrix-vector product with the
   weight stored F32, BF16, Q8_0 and Q4_K (GGUF block types, dequantized as
   they stream): bytes of W read per token and time per product, for one
   4096 x 4096 matrix (a Llama-7B projection). Threads: BENCH_THREADS (2).
   Usage: bench_gguf [O I] */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    static const lc_dtype dts[] = {LOLCATS_DTYPE_F32, LOLCATS_DTYPE_BF16, LOLCATS_DTYPE_Q8_0, LOLCATS_DTYPE_Q4_K};
    int O = argc > 2 ? atoi(argv[1]) : 4096, I = argc > 2 ? atoi(argv[2]) : 4096, threads = 2, k, r, o;
    float *wf, *x, *y, *ref;
    lc_ctx cx;
    lc_rng rng;
    if (getenv("BENCH_THREADS")) threads = atoi(getenv("BENCH_THREADS"));
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    if (O <= 0 || I <= 0 || I % 256) { fprintf(stderr, "bench_gguf: O > 0 and I a multiple of 256\n"); return 2; }
    wf = (float *)malloc(sizeof(float) * (size_t)O * (size_t)I);
    x = (float *)malloc(sizeof(float) * (size_t)I);
    y = (float *)malloc(sizeof(float) * (size_t)O);
    ref = (float *)malloc(sizeof(float) * (size_t)O);
    if (!wf || !x || !y || !ref) { fprintf(stderr, "bench_gguf: out of memory\n"); return 1; }
    lc_rng_seed(&rng, 1);
    for (r = 0; r < O * I; r++) wf[r] = 0.02f * lc_rng_normal(&rng);
    for (r = 0; r < I; r++) x[r] = lc_rng_normal(&rng);
    lc_ctx_init(&cx);
    lc_gemv(&cx, ref, wf, LOLCATS_DTYPE_F32, x, O, I, (size_t)I);
    printf("GEMV y = W x, W %d x %d, %s, %d threads: bytes of W per token, median time of 21 products\n", O, I,
           lc_simd_name(cx.simd), threads);
    printf("  %-5s %12s %10s %9s %9s %12s\n", "dtype", "bytes/token", "bits/w", "ms", "GB/s", "max |dy|");
    for (k = 0; k < 4; k++) {
        size_t rb = lc_dtype_row_bytes(dts[k], I), bytes = rb * (size_t)O;
        unsigned char *w = (unsigned char *)malloc(bytes);
        double t[21], err = 0;
        if (!w) { fprintf(stderr, "bench_gguf: out of memory\n"); return 1; }
        for (o = 0; o < O; o++) lc_quant_row(w + (size_t)o * rb, wf + (size_t)o * I, dts[k], I);
        for (r = 0; r < 21; r++) {
            double t0 = now();
            lc_gemv(&cx, y, w, dts[k], x, O, I, (size_t)I);
            t[r] = now() - t0;
        }
        qsort(t, 21, sizeof t[0], cmp_d);
        for (o = 0; o < O; o++) if (fabs((double)(y[o] - ref[o])) > err) err = fabs((double)(y[o] - ref[o]));
        printf("  %-5s %12zu %10.2f %9.3f %9.2f %12.2e\n", lc_dtype_name(dts[k]), bytes, 8.0 * (double)bytes / ((double)O * I),
               1e3 * t[10], (double)bytes / t[10] / 1e9, err);
        free(w);
    }
    free(wf); free(x); free(y); free(ref);
    return 0;
}
