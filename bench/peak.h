/* peak.h - the machine's measured arithmetic peak, for `make bench` rows that
   report a fraction of it.

   bench_peak(kind, threads) runs, on each of `threads` OpenMP threads, a loop
   of independent multiply-adds that keeps every FMA (or bf16 dot-product) port
   busy, and returns the sum of the threads' rates in GFLOP/s:

     BENCH_PEAK_F32   fp32 fused multiply-add, 2 flops per lane: AVX-512
                      (16 lanes), AVX2+FMA (8), NEON (4), or scalar fma()
     BENCH_PEAK_BF16  AVX512_BF16 vdpbf16ps: each fp32 lane accumulates two
                      bf16 products, 4 flops per lane; 0 where the CPU lacks it

   Twelve independent accumulators cover the FMA latency (4 cycles) times the
   ports (2) with room to spare. The instruction set is chosen at run time
   (__builtin_cpu_supports), as lolcats.h does, so plain `cc -O2` measures what
   the CPU has. The result is the best of 30 timed repetitions of a few ms (a
   busy machine preempts some of them, rarely all). Include after a POSIX
   feature macro (clock_gettime), as bench.c does. */
#ifndef BENCH_PEAK_H
#define BENCH_PEAK_H

#include <math.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(LOLCATS_NO_SIMD)
#include <immintrin.h>
#define BENCH_PEAK_X86 1
#endif
#if defined(__aarch64__) && !defined(LOLCATS_NO_SIMD)
#include <arm_neon.h>
#endif

enum { BENCH_PEAK_F32 = 0, BENCH_PEAK_BF16 = 1 };

#define BENCH_PEAK_ITERS 2000000L
#define BENCH_PEAK_REPS 30

static double bench_peak_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Each kernel: n iterations of 12 multiply-adds on 12 independent registers
   (named variables, so that no optimisation level keeps them in memory);
   returns the flops done and stores a value the compiler cannot discard. */
#define BENCH_PEAK_BODY(T, SET, FMA, ADD, STORE, LANES, FLOPS)                                    \
    T a0 = SET(0.0f), a1 = SET(1.0f), a2 = SET(2.0f), a3 = SET(3.0f), a4 = SET(4.0f);            \
    T a5 = SET(5.0f), a6 = SET(6.0f), a7 = SET(7.0f), a8 = SET(8.0f), a9 = SET(9.0f);            \
    T a10 = SET(10.0f), a11 = SET(11.0f);                                                        \
    float t[LANES];                                                                              \
    long i;                                                                                      \
    for (i = 0; i < n; i++) {                                                                    \
        a0 = FMA(a0); a1 = FMA(a1); a2 = FMA(a2); a3 = FMA(a3); a4 = FMA(a4); a5 = FMA(a5);      \
        a6 = FMA(a6); a7 = FMA(a7); a8 = FMA(a8); a9 = FMA(a9); a10 = FMA(a10); a11 = FMA(a11);  \
    }                                                                                            \
    a0 = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));                      \
    a0 = ADD(a0, ADD(ADD(a8, a9), ADD(a10, a11)));                                               \
    STORE(t, a0);                                                                                \
    *sink += t[0] + t[LANES - 1];                                                                \
    return (double)(FLOPS) * 12.0 * (double)n

#ifdef BENCH_PEAK_X86
#define BENCH_FMA512(a) _mm512_fmadd_ps(a, x, y)
__attribute__((target("avx512f"))) static double bench_peak_avx512(long n, float *sink) {
    __m512 x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(0.9999999f);
    BENCH_PEAK_BODY(__m512, _mm512_set1_ps, BENCH_FMA512, _mm512_add_ps, _mm512_storeu_ps, 16,
                    2 * 16);
}

#define BENCH_FMA256(a) _mm256_fmadd_ps(a, x, y)
__attribute__((target("avx2,fma"))) static double bench_peak_avx2(long n, float *sink) {
    __m256 x = _mm256_set1_ps(1.0000001f), y = _mm256_set1_ps(0.9999999f);
    BENCH_PEAK_BODY(__m256, _mm256_set1_ps, BENCH_FMA256, _mm256_add_ps, _mm256_storeu_ps, 8,
                    2 * 8);
}

/* vdpbf16ps: 16 fp32 lanes, each += two bf16 products (1.0 x 0.0078125) */
#define BENCH_DPBF16(a) _mm512_dpbf16_ps(a, x, y)
__attribute__((target("avx512f,avx512bf16"))) static double bench_peak_bf16(long n, float *sink) {
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3c00);
    BENCH_PEAK_BODY(__m512, _mm512_set1_ps, BENCH_DPBF16, _mm512_add_ps, _mm512_storeu_ps, 16,
                    4 * 16);
}
#endif

#if defined(__aarch64__) && !defined(LOLCATS_NO_SIMD)
#define BENCH_FMANEON(a) vfmaq_f32(y, a, x)
static double bench_peak_neon(long n, float *sink) {
    float32x4_t x = vdupq_n_f32(1.0000001f), y = vdupq_n_f32(0.9999999f);
    BENCH_PEAK_BODY(float32x4_t, vdupq_n_f32, BENCH_FMANEON, vaddq_f32, vst1q_f32, 4, 2 * 4);
}
#endif

static float bench_peak_set1(float v) { return v; }
static float bench_peak_add1(float a, float b) { return a + b; }
static void bench_peak_store1(float *t, float a) { t[0] = a; }
#define BENCH_FMA1(a) fmaf(a, 1.0000001f, 0.9999999f)
static double bench_peak_scalar(long n, float *sink) {
    BENCH_PEAK_BODY(float, bench_peak_set1, BENCH_FMA1, bench_peak_add1, bench_peak_store1, 1, 2);
}

typedef double (*bench_peak_fn)(long, float *);

/* The kernel of `kind` this CPU runs, and its name; NULL where it has none. */
static bench_peak_fn bench_peak_kernel(int kind, const char **name) {
#ifdef BENCH_PEAK_X86
    __builtin_cpu_init();
    if (kind == BENCH_PEAK_BF16) {
        *name = "avx512_bf16 vdpbf16ps";
        return __builtin_cpu_supports("avx512bf16") ? bench_peak_bf16 : (bench_peak_fn)0;
    }
    if (__builtin_cpu_supports("avx512f")) { *name = "avx512f fma"; return bench_peak_avx512; }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *name = "avx2 fma";
        return bench_peak_avx2;
    }
#elif defined(__aarch64__) && !defined(LOLCATS_NO_SIMD)
    if (kind == BENCH_PEAK_BF16) { *name = "bf16"; return (bench_peak_fn)0; }
    *name = "neon fma";
    return bench_peak_neon;
#endif
    if (kind == BENCH_PEAK_BF16) { *name = "bf16"; return (bench_peak_fn)0; }
    *name = "scalar fmaf";
    return bench_peak_scalar;
}

/* GFLOP/s summed over `threads` threads running the kernel at once (0: none). */
static double bench_peak(int kind, int threads, const char **name) {
    bench_peak_fn fn = bench_peak_kernel(kind, name);
    double best = 0.0;
    int rep;
    float sink = 0.0f;
    if (!fn) return 0.0;
    if (threads < 1) threads = 1;
    fn(BENCH_PEAK_ITERS / 10, &sink);                   /* warm the clocks up */
    for (rep = 0; rep < BENCH_PEAK_REPS; rep++) {
        double flops = 0.0, t = bench_peak_now();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : flops)
        {
            float s = 0.0f;
            flops += fn(BENCH_PEAK_ITERS, &s);
            if (s == 12345.0f) flops += 1.0;               /* keeps s alive */
        }
#else
        flops = fn(BENCH_PEAK_ITERS, &sink);
        (void)threads;
#endif
        t = bench_peak_now() - t;
        if (flops / t > best) best = flops / t;
    }
    if (sink == 12345.0f) best += 1e-9;
    return best * 1e-9;
}

#endif
