/* 02_quadratic_recurrent.c - linear attention computed three ways gives the
   same numbers, and that is why a linearized model decodes in constant memory.

     cc -O2 examples/02_quadratic_recurrent.c -lm && ./a.out

   With A_ij = phi(q_i) . phi(k_j) (j <= i), linear attention is
       y_i = sum_j A_ij v_j / sum_j A_ij                      (quadratic: N x N)
           = phi(q_i)^T S_i / phi(q_i)^T z_i,                  (recurrent)
       S_i = S_{i-1} + phi(k_i) v_i^T  (F x D),  z_i = z_{i-1} + phi(k_i)  (F)
   because the sum over j can be taken before multiplying by phi(q_i). This
   example computes, on one seeded head (N = 512, D = 16, F = 32):
   1. the quadratic form written out here (the masked N x N product), the
      library's quadratic form (lc_attn_linear_fwd) and its causal state form
      (lc_attn_linear_state_fwd, which also returns the final S, z);
   2. the LoLCATs hybrid (sliding window w = 64 of exact softmax + the linear
      part for older keys) over the whole sequence at once (lc_attn_hybrid_fwd),
      and token by token from a constant-size decode state: the last w keys in
      a ring plus (S, z) of every key that left it (lc_attn_hybrid_decode);
   3. the bytes that decode state takes against a softmax KV cache.
   All pairs agree to float rounding; exits 1 if one does not. */
#define LOLCATS_NO_FILES   // kernels only: no file readers, models, tokenizers (compiles faster)
#define LOLCATS_IMPLEMENTATION
#include "../lolcats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 512, D = 16, FD = 16, F = 2 * FD, W = 64 };

/* max_i |a_i - b_i| / max_i |b_i| */
static double rel_diff(const float *a, const float *b, size_t n) {
    double md = 0, mb = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]), x = fabs((double)b[i]);
        md = d > md ? d : md;
        mb = x > mb ? x : mb;
    }
    return md / (mb > 0 ? mb : 1);
}

int main(void) {
    static float q[N * D], k[N * D], v[N * D], phiq[N * F], phik[N * F], wq[D * FD], wk[D * FD];
    static float A[N * N], y_mine[N * D], y_quad[N * D], y_state[N * D], y_rec[N * D], den[N];
    static float S[F * D], z[F], S_lib[F * D], z_lib[F];
    static float y_hyb[N * D], y_hyb_ref[N * D], y_dec[N * D], m[N];
    float wf = -2.1972246f;  /* window factor logit: gamma = 0.1 */
    float *work, *state_mem;
    lc_ctx ctx;
    lc_rng rng;
    lc_fmap_cfg fm = lc_fmap_cfg_default();
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    lc_decode_state st;
    double e1, e2, e3, e4, e5, e6;
    size_t state_floats;
    int i, j, c, d, lens[5] = {512, 4096, 32768, 131072, 1048576};

    lc_ctx_init(&ctx);
    lc_rng_seed(&rng, 3);
    for (i = 0; i < N * D; i++) {
        q[i] = lc_rng_normal(&rng);
        k[i] = lc_rng_normal(&rng);
        v[i] = lc_rng_normal(&rng);
    }
    lc_fmap_init_kaiming(wq, NULL, 1, D, FD, &rng);  /* the identity holds for any map: a random one */
    lc_fmap_init_kaiming(wk, NULL, 1, D, FD, &rng);
    lc_fmap_fwd(&ctx, phiq, q, wq, NULL, 1, 1, 1, N, D, FD, &fm);
    lc_fmap_fwd(&ctx, phik, k, wk, NULL, 1, 1, 1, N, D, FD, &fm);

    /* 1a. quadratic, written out: the masked N x N matrix, then A V / rowsum */
    for (i = 0; i < N; i++)
        for (j = 0; j < N; j++) {
            float s = 0;
            if (j <= i)
                for (c = 0; c < F; c++) s += phiq[i * F + c] * phik[j * F + c];
            A[i * N + j] = s;  /* zero above the diagonal: the causal mask */
        }
    for (i = 0; i < N; i++) {
        float rs = 0;
        for (j = 0; j <= i; j++) rs += A[i * N + j];
        for (d = 0; d < D; d++) {
            float acc = 0;
            for (j = 0; j <= i; j++) acc += A[i * N + j] * v[j * D + d];
            y_mine[i * D + d] = acc / (rs + 1e-12f);
        }
    }
    /* 1b. recurrent, written out: S and z grow one key at a time, O(F D) memory */
    memset(S, 0, sizeof S);
    memset(z, 0, sizeof z);
    for (i = 0; i < N; i++) {
        float dn = 0;
        for (c = 0; c < F; c++) {
            for (d = 0; d < D; d++) S[c * D + d] += phik[i * F + c] * v[i * D + d];
            z[c] += phik[i * F + c];
            dn += phiq[i * F + c] * z[c];
        }
        for (d = 0; d < D; d++) {
            float nm = 0;
            for (c = 0; c < F; c++) nm += phiq[i * F + c] * S[c * D + d];
            y_rec[i * D + d] = nm / (dn + 1e-12f);
        }
    }
    /* 1c. the library's two forms */
    lc_attn_linear_fwd(&ctx, y_quad, den, phiq, phik, v, 1, 1, 1, N, F, D, 1e-12f);
    lc_attn_linear_state_fwd(&ctx, y_state, den, S_lib, z_lib, phiq, phik, v, 1, 1, 1, N, F, D, 1e-12f);
    e1 = rel_diff(y_rec, y_mine, (size_t)N * D);
    e2 = rel_diff(y_quad, y_mine, (size_t)N * D);
    e3 = rel_diff(y_state, y_mine, (size_t)N * D);
    e4 = rel_diff(S_lib, S, (size_t)F * D);
    printf("1. linear attention, N=%d D=%d F=%d (simd=%s); max |difference| / max |y|:\n", N, D, F,
           lc_simd_name(ctx.simd));
    printf("   recurrent loop here        vs quadratic here   %.2e\n", e1);
    printf("   lc_attn_linear_fwd         vs quadratic here   %.2e   (quadratic: N*N = %d scores)\n", e2, N * N);
    printf("   lc_attn_linear_state_fwd   vs quadratic here   %.2e   (state: F*D + F = %d floats)\n", e3,
           F * D + F);
    printf("   final state S: library vs the loop here        %.2e\n", e4);

    /* 2. the hybrid: whole sequence vs token by token */
    hc.variant = LOLCATS_WINDOW_SW;  /* decoding is a plain sliding window for both variants */
    hc.window = W;
    work = (float *)malloc(sizeof(float) * lc_attn_hybrid_work_floats(1, 1, D, F));
    state_floats = lc_decode_state_floats(1, 1, D, F, W);
    state_mem = (float *)malloc(sizeof(float) * state_floats);
    if (!work || !state_mem) { fprintf(stderr, "out of memory\n"); return 1; }
    lc_attn_hybrid_fwd(&ctx, y_hyb_ref, NULL, m, den, NULL, q, k, v, phiq, phik, &wf, NULL, NULL, 1, 1, 1, N, D,
                       F, &hc);  /* work NULL: the quadratic reference */
    lc_attn_hybrid_fwd(&ctx, y_hyb, NULL, m, den, work, q, k, v, phiq, phik, &wf, NULL, NULL, 1, 1, 1, N, D, F,
                       &hc);     /* work: the prefix-state form */
    lc_decode_state_init(&st, state_mem, 1, 1, D, F, W);
    for (i = 0; i < N; i++)  /* one token at a time; the state never grows */
        lc_attn_hybrid_decode(&ctx, y_dec + i * D, &st, q + i * D, k + i * D, v + i * D, phiq + i * F,
                              phik + i * F, &wf, 0);
    e5 = rel_diff(y_hyb, y_hyb_ref, (size_t)N * D);
    e6 = rel_diff(y_dec, y_hyb_ref, (size_t)N * D);
    printf("2. hybrid sliding window w=%d + linear (gamma 0.1), same inputs:\n", W);
    printf("   prefix-state form          vs quadratic        %.2e\n", e5);
    printf("   token-by-token decode      vs quadratic        %.2e   (after %lld tokens)\n", e6, (long long)st.pos);

    /* 3. memory per sequence per head: decode state vs the KV cache softmax needs */
    printf("3. per head and sequence, fp32: decode state (ring of %d k, v, phi(k) + S + z) vs softmax KV cache\n", W);
    printf("   %9s %14s %14s\n", "tokens", "LoLCATs state", "KV cache");
    for (i = 0; i < 5; i++)
        printf("   %9d %12zu B %12zu B\n", lens[i], state_floats * sizeof(float),
               (size_t)2 * (size_t)lens[i] * D * sizeof(float));
    free(work);
    free(state_mem);
    if (e1 < 1e-5 && e2 < 1e-5 && e3 < 1e-5 && e4 < 1e-5 && e5 < 1e-5 && e6 < 1e-5) {
        printf("verdict: OK - quadratic, recurrent and token-by-token forms agree to float rounding (largest "
               "%.1e); the decode state is %zu bytes at any length, the KV cache passes it at %zu tokens\n",
               fmax(fmax(fmax(e1, e2), fmax(e3, e4)), fmax(e5, e6)), state_floats * sizeof(float),
               state_floats / (2 * D) + 1);
        return 0;
    }
    printf("verdict: MISMATCH - a form differs beyond rounding\n");
    return 1;
}
