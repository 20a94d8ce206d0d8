/* lolcats.h - LoLCATs linearized attention in one C header.            v0.1.0
//
// LoLCATs (Zhang et al. 2024, arXiv 2410.10254) converts a pretrained Llama-style
// model into a subquadratic one: (1) attention transfer trains small feature maps
// so that sliding-window softmax + linear attention reproduces each layer's
// softmax attention; (2) LoRA recovers the rest. This header holds the math of
// both steps in float32, forward and analytic backward, reproducing the original
// PyTorch implementation (HazyResearch/lolcats @ 375df84) quirks included.
//
// USAGE
//   In exactly one C or C++ file:
//       #define LOLCATS_IMPLEMENTATION
//       #include "lolcats.h"
//   Everywhere else just #include "lolcats.h".
//
// BUILD OPTIONS (define before the implementation include)
//   LOLCATS_STATIC        every symbol static (private copy per translation unit)
//   LOLCATS_NO_SIMD       scalar reference only (no AVX2/AVX-512/NEON code)
//   LOLCATS_ASSERT(x)     programmer-error check (default: assert)
//   LOLCATS_MALLOC/LOLCATS_REALLOC/LOLCATS_FREE   allocator (define all or none)
//   -fopenmp              optional: kernels split heads across threads; results are
//                         bit-identical for any thread count.
//
// LAYOUTS (row-major float32, PyTorch's)
//   q (B,H,N,D)   k, v (B,Hk,N,D)   H % Hk == 0, query head h reads kv head h/(H/Hk)
//   feature-map weight (H,D,f), bias (H)   features phi (B,H,N,F), F = 2f or f
//   window_factors (H) (logits; gamma = sigmoid)   state S (B,H,F,D), z (B,H,F)
//   attention weights (B,H,N,N)
//
// KERNEL CONVENTIONS
//   Arguments: context, outputs, saved-for-backward buffers, inputs, dims, config.
//   No kernel allocates. Every _bwd ACCUMULATES (+=) into caller-zeroed gradients,
//   so gradients of shared inputs (GQA keys, tied maps) simply add up.
//   The lc_ctx selects the code path: ctx.simd = LOLCATS_SIMD_SCALAR gives the
//   reference (double accumulation over the sequence); the SIMD paths agree with it
//   within float32 rounding.
//
// ERRORS
//   Functions that can fail on input data return lc_status (LOLCATS_OK == 0,
//   negative on error) and fill a caller-owned lc_error whose message names the
//   file / tensor / value and how to fix it. The library never prints or exits.
//
// SKETCH
//   lc_ctx ctx; lc_ctx_init(&ctx);
//   lc_fmap_cfg fm = lc_fmap_cfg_default();            // Hedgehog softmax_dim
//   lc_fmap_fwd(&ctx, phiq, q, wq, NULL, B,H,H, N,D,f, &fm);
//   lc_fmap_fwd(&ctx, phik, k, wk, NULL, B,H,Hk,N,D,f, &fm);
//   lc_hybrid_cfg hc = lc_hybrid_cfg_default();        // tk, window 64
//   lc_attn_hybrid_fwd(&ctx, y, NULL, m, den, q,k,v, phiq,phik, wf, NULL,NULL,
//                      B,H,Hk,N,D,F, &hc);
//
// See README.md for the full tour and the end of this file for the license (MIT).
*/
#ifndef LOLCATS_H
#define LOLCATS_H

// >>version
#define LOLCATS_VERSION_MAJOR 0
#define LOLCATS_VERSION_MINOR 1
#define LOLCATS_VERSION_PATCH 0
#define LOLCATS_VERSION_STRING "0.1.0"

// >>decoration
#include <stddef.h>
#include <stdint.h>

#ifdef LOLCATS_STATIC
#define LCAPI static
#else
#define LCAPI extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

// >>types
typedef enum lc_status {
    LOLCATS_OK = 0,
    LOLCATS_ERR_ARG = -1,         // bad argument or configuration
    LOLCATS_ERR_IO = -2,          // cannot open / read / write a file
    LOLCATS_ERR_FORMAT = -3,      // file contents malformed
    LOLCATS_ERR_NOMEM = -4,       // allocation failed
    LOLCATS_ERR_UNSUPPORTED = -5  // valid but not supported (dtype, op, ...)
} lc_status;

typedef struct lc_error {
    lc_status code;
    char msg[512];
} lc_error;

enum {
    LOLCATS_SIMD_SCALAR = 0,      // reference path
    LOLCATS_SIMD_AVX2 = 1,        // AVX2 + FMA
    LOLCATS_SIMD_AVX512 = 2,      // AVX-512F
    LOLCATS_SIMD_NEON = 3
};

// Execution context: which code path runs. Filled by lc_ctx_init (best path this
// CPU supports); set .simd = LOLCATS_SIMD_SCALAR to force the reference.
typedef struct lc_ctx {
    int simd;
} lc_ctx;

// >>api-core
LCAPI void lc_ctx_init(lc_ctx *ctx);
LCAPI int lc_simd_detect(void);                      // best level this CPU runs
LCAPI const char *lc_simd_name(int simd);
LCAPI const char *lc_status_name(lc_status s);
// Fills err (may be NULL) with a printf-style message; returns code.
LCAPI lc_status lc_error_set(lc_error *err, lc_status code, const char *fmt, ...);

// Deterministic RNG (splitmix64 seeding + xoshiro-style step) for inits and tests.
typedef struct lc_rng { uint64_t s[4]; } lc_rng;
LCAPI void lc_rng_seed(lc_rng *r, uint64_t seed);
LCAPI uint64_t lc_rng_u64(lc_rng *r);
LCAPI float lc_rng_uniform(lc_rng *r);               // [0, 1)
LCAPI float lc_rng_normal(lc_rng *r);                // N(0, 1)

// >>api-fmap
typedef enum lc_fmap_act {
    LOLCATS_FMAP_SOFTMAX_DIM = 0, // Hedgehog: softmax(z) (+) softmax(-z)
    LOLCATS_FMAP_EXP_DIM = 1,     // exp(z - max z) (+) exp(-z + min z)
    LOLCATS_FMAP_POS_ELU = 2,     // 1 + elu(z)
    LOLCATS_FMAP_RELU = 3         // relu(z) (T2R)
} lc_fmap_act;

typedef struct lc_fmap_cfg {
    lc_fmap_act act;
    int halfspace;                // 1: only the first half (softmax_dim, exp_dim)
    float eps;                    // clamp(min=eps) after the activation (1e-12)
} lc_fmap_cfg;

LCAPI lc_fmap_cfg lc_fmap_cfg_default(void);
// Parses "softmax_dim", "exp_dim", "pos_elu", "relu"; returns -1 if unknown.
LCAPI int lc_fmap_act_parse(const char *name);
LCAPI const char *lc_fmap_act_name(lc_fmap_act act);
LCAPI int lc_fmap_out_dim(const lc_fmap_cfg *cfg, int f);  // F

LCAPI void lc_fmap_init_identity(float *w /*(H,D,f)*/, int H, int D, int f);
LCAPI void lc_fmap_init_kaiming(float *w /*(H,D,f)*/, float *bias /*(H) or NULL*/,
                                int H, int D, int f, lc_rng *rng);

LCAPI void lc_fmap_fwd(const lc_ctx *ctx, float *phi /*(B,H,N,F)*/,
                       const float *x /*(B,Hx,N,D)*/, const float *w /*(H,D,f)*/,
                       const float *bias /*(H) or NULL*/,
                       int B, int H, int Hx, int N, int D, int f,
                       const lc_fmap_cfg *cfg);
LCAPI void lc_fmap_bwd(const lc_ctx *ctx, float *dx /*(B,Hx,N,D) or NULL*/,
                       float *dw /*(H,D,f) or NULL*/, float *dbias /*(H) or NULL*/,
                       const float *dphi /*(B,H,N,F)*/,
                       const float *x, const float *w, const float *bias,
                       int B, int H, int Hx, int N, int D, int f,
                       const lc_fmap_cfg *cfg);

// >>api-attn-softmax
// Causal softmax attention (the teacher). Saves lse (B,H,N): log-sum-exp of
// the scaled scores of each row.
LCAPI void lc_attn_softmax_fwd(const lc_ctx *ctx, float *y /*(B,H,N,D)*/,
                               float *lse /*(B,H,N) or NULL*/,
                               const float *q, const float *k, const float *v,
                               int B, int H, int Hk, int N, int D);
LCAPI void lc_attn_softmax_bwd(const lc_ctx *ctx, float *dq, float *dk, float *dv,
                               const float *dy /*(B,H,N,D)*/,
                               const float *da /*(B,H,N,N) or NULL*/,
                               const float *y, const float *lse,
                               const float *q, const float *k, const float *v,
                               int B, int H, int Hk, int N, int D);
// Attention weights a (B,H,N,N), zeros above the diagonal.
LCAPI void lc_attn_softmax_weights(const lc_ctx *ctx, float *a,
                                   const float *q, const float *k,
                                   int B, int H, int Hk, int N, int D);

// >>api-attn-linear
// Pure linear attention, y_i = sum_j A_ij v_j / (sum_j A_ij + eps),
// A_ij = phiq_i . phik_j (j <= i). Saves den (B,H,N) = sum_j A_ij + eps.
// _ref: quadratic, mask-explicit; _state: causal running state, same numbers.
LCAPI void lc_attn_linear_fwd(const lc_ctx *ctx, float *y /*(B,H,N,D)*/,
                              float *den /*(B,H,N) or NULL*/,
                              const float *phiq /*(B,H,N,F)*/,
                              const float *phik /*(B,H,N,F)*/,
                              const float *v /*(B,Hk,N,D)*/,
                              int B, int H, int Hk, int N, int F, int D, float eps);
LCAPI void lc_attn_linear_bwd(const lc_ctx *ctx, float *dphiq, float *dphik, float *dv,
                              const float *dy, const float *y, const float *den,
                              const float *phiq, const float *phik, const float *v,
                              int B, int H, int Hk, int N, int F, int D, float eps);
LCAPI void lc_attn_linear_state_fwd(const lc_ctx *ctx, float *y, float *den,
                                    const float *phiq, const float *phik,
                                    const float *v,
                                    int B, int H, int Hk, int N, int F, int D,
                                    float eps);
LCAPI void lc_attn_linear_state_bwd(const lc_ctx *ctx, float *dphiq, float *dphik,
                                    float *dv, const float *dy, const float *y,
                                    const float *den, const float *phiq,
                                    const float *phik, const float *v,
                                    int B, int H, int Hk, int N, int F, int D,
                                    float eps);

// >>api-attn-hybrid
enum { LOLCATS_WINDOW_SW = 0, LOLCATS_WINDOW_TK = 1 };

typedef struct lc_hybrid_cfg {
    int variant;                  // LOLCATS_WINDOW_TK (default) or _SW
    int window;                   // w, default 64
    int affine;                   // lambda = 1 - gamma instead of 1
} lc_hybrid_cfg;

LCAPI lc_hybrid_cfg lc_hybrid_cfg_default(void);
// Mask of key j for query i in a sequence of n: 1 window, 2 linear, 3 both
// (the tk N <= w quirk), 0 masked.
LCAPI int lc_hybrid_mask(const lc_hybrid_cfg *cfg, int n, int i, int j);

LCAPI void lc_attn_hybrid_fwd(const lc_ctx *ctx, float *y /*(B,H,N,D)*/,
                              float *a /*(B,H,N,N) or NULL*/,
                              float *m /*(B,H,N)*/, float *den /*(B,H,N)*/,
                              const float *q, const float *k, const float *v,
                              const float *phiq, const float *phik,
                              const float *wf /*(H)*/,
                              const float *kv_state /*(B,H,F,D) or NULL*/,
                              const float *k_state /*(B,H,F) or NULL*/,
                              int B, int H, int Hk, int N, int D, int F,
                              const lc_hybrid_cfg *cfg);
LCAPI void lc_attn_hybrid_bwd(const lc_ctx *ctx, float *dq, float *dk, float *dv,
                              float *dphiq, float *dphik, float *dwf /*(H)*/,
                              float *dkv_state /*or NULL*/, float *dk_state /*or NULL*/,
                              const float *dy /*(B,H,N,D) or NULL*/,
                              const float *da /*(B,H,N,N) or NULL*/,
                              const float *y, const float *m, const float *den,
                              const float *q, const float *k, const float *v,
                              const float *phiq, const float *phik, const float *wf,
                              const float *kv_state, const float *k_state,
                              int B, int H, int Hk, int N, int D, int F,
                              const lc_hybrid_cfg *cfg);

// >>api-decode
// One-token hybrid attention for a single sequence: a ring of the last w keys /
// values (and their features) plus the fp32 linear state (S, z) of every key
// that left the window.
typedef struct lc_decode_state {
    int H, Hk, D, F, window;
    int64_t pos;                  // tokens consumed so far
    float *k_ring;                // (Hk,w,D)
    float *v_ring;                // (Hk,w,D)
    float *phik_ring;             // (H,w,F)
    float *S;                     // (H,F,D)
    float *z;                     // (H,F)
} lc_decode_state;

LCAPI size_t lc_decode_state_floats(int H, int Hk, int D, int F, int window);
// Cuts mem (lc_decode_state_floats floats) into the views and zeroes it.
LCAPI void lc_decode_state_init(lc_decode_state *st, float *mem,
                                int H, int Hk, int D, int F, int window);
LCAPI void lc_attn_hybrid_decode(const lc_ctx *ctx, float *y /*(H,D)*/,
                                 lc_decode_state *st,
                                 const float *q /*(H,D)*/, const float *k /*(Hk,D)*/,
                                 const float *v /*(Hk,D)*/,
                                 const float *phiq /*(H,F)*/,
                                 const float *phik /*(H,F)*/,
                                 const float *wf /*(H)*/, int affine);

// >>api-loss
// MSE, factor * mean((pred - target)^2); accumulates d/dpred into dpred if set.
LCAPI double lc_loss_mse(float *dpred, const float *pred, const float *target,
                         size_t n, float factor);
// Soft-target cross-entropy over attention rows as the original computes it:
// nn.CrossEntropyLoss(log(clamp(a_pred, 1e-12)), a_true), i.e. per row
// -sum_j t_j (log a~_j - log sum_k a~_k), mean over rows, times factor.
LCAPI double lc_loss_xent(float *da_pred, const float *a_pred, const float *a_true,
                          size_t rows, int cols, float factor);

// >>api-optim
typedef struct lc_adamw_cfg {
    float lr, beta1, beta2, eps, weight_decay;
} lc_adamw_cfg;
LCAPI lc_adamw_cfg lc_adamw_cfg_default(void);      // 1e-2, .9, .999, 1e-8, 0
// One step (t >= 1), PyTorch's order of operations.
LCAPI void lc_adamw_step(float *p, const float *g, float *m, float *v, size_t n,
                         const lc_adamw_cfg *cfg, int64_t t);

// >>api-files
// (safetensors, mmap)
// >>api-files-end

// >>api-model
// (models, tokenizers)
// >>api-model-end

// >>api-ref
// (reference evaluation used by `lolcats ref`)
// >>api-ref-end

#ifdef __cplusplus
}
#endif
#endif // LOLCATS_H

// ===========================================================================
//                              IMPLEMENTATION
// ===========================================================================
#ifdef LOLCATS_IMPLEMENTATION
#ifndef LOLCATS_IMPLEMENTATION_DONE
#define LOLCATS_IMPLEMENTATION_DONE

// >>platform
// (filled below)
// >>platform-end

// >>impl-files
// >>impl-files-end

// >>impl-model
// >>impl-model-end

// >>impl-ref
// >>impl-ref-end

#endif // LOLCATS_IMPLEMENTATION_DONE
#endif // LOLCATS_IMPLEMENTATION

/*
// >>history
   0.1.0  first release: feature maps, softmax / linear / hybrid attention,
          decode, losses, AdamW, safetensors, `lolcats ref`.

// >>license
MIT License. Copyright (c) 2026 the lolcats.h authors.
Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of
the Software, and to permit persons to whom the Software is furnished to do so,
subject to the following conditions: The above copyright notice and this
permission notice shall be included in all copies or substantial portions of the
Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS
OR IMPLIED.
*/
