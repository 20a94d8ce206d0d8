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
//   LOLCATS_NO_FAST       the same: no SIMD and no fast forms compiled at all
//   LOLCATS_ASSERT(x)     programmer-error check (default: assert)
//   LOLCATS_MALLOC/LOLCATS_REALLOC/LOLCATS_FREE   allocator (define all or none)
//   LOLCATS_NO_MMAP       read files into memory instead of mapping them
//   LOLCATS_NO_FILES      kernels only: drops everything after >>kernels that reads
//                         or writes files (safetensors, GGUF, model load/export,
//                         tokenizers, sampler, checkpoints, lolcats-infer, ref
//                         runner) with its declarations, so a call to one fails to
//                         compile; dtype conversions, block (de)quantization and
//                         lc_model_release_layer (a no-op) stay. Compiles in about
//                         a third of the time (with LOLCATS_NO_FAST: under 3 s -O2).
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
//   Every _bwd ACCUMULATES (+=) into caller-zeroed gradients, so gradients of
//   shared inputs (GQA keys, tied maps) simply add up. The one exception:
//   lc_attn_transfer_mse SETS dphiq and dphik (dwf accumulates).
//   No kernel allocates, except scratch of these fast forms (each falls back to a
//   form without it when the allocation fails, unless noted):
//     lc_fmap_fwd / lc_fmap_bwd        packed-map panels (>>fmap-fast)
//     lc_attn_softmax_fwd, lc_attn_transfer_fwd / _mse
//                                      K/V panels and tile scratch (>>softmax-tiles)
//     lc_attn_transfer_mse             per-task sums and panels (>>transfer-fused)
//     lc_model_forward                 tiled prefill attention (>>prefill-attn)
//     lc_matmul on GGUF block types    dequantized 64-row panels (>>quant-gemm)
//     lc_gemm on GGUF block types      the widened B (NaN output when refused)
//     lc_gemm with scratch NULL        its own scratch (asserts)
//   The reference path (ctx.simd = LOLCATS_SIMD_SCALAR) allocates only in the
//   last two. Reading order: each kernel's math opens its section (>>fmap ...),
//   its contract is the comment at its declaration in the API.
//   The lc_ctx selects the code path through one kernel table (lc_ctx, >>fast-decl):
//   ctx.simd = LOLCATS_SIMD_SCALAR gives the reference (double accumulation over
//   the sequence); the SIMD paths agree with it within float32 rounding.
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
// CONTENTS, in file order (each section opens with a line `// >>tag`: search for it)
//   API         version decoration types api-core api-fmap api-attn-softmax
//               api-attn-linear api-attn-hybrid api-decode api-gate api-loss api-optim api-blocks
//               api-files api-gguf api-gemm api-model api-tokenizer api-sample
//               api-model-export api-train api-lolcats-io api-lolcats-infer api-ref
//               api-ref-run
//   IMPLEMENTATION
//   reference   includes config platform prims fast-decl fmap attn-softmax attn-linear
//               attn-hybrid (sinks) gate transfer decode (decode-sinks) loss kl optim
//               blocks llama-block model-forward train (gate-train)
//   fast paths  simd gemm quant-gemm (gemv-rows) model-matmul fmap-fast softmax-tiles
//               hybrid-chunk transfer-fused prefill-attn gemm-bf16 kernels (xent-fast
//               lora-fast)
//   files       errors json mmap safetensors quant gguf
//   models      model-load model-hf model-gguf release qwen-config model-export
//   text        tokenizer tokenizer-hf tokenizer-qwen tokenizer-gguf sample
//   checkpoints lolcats-io lolcats-infer
//   ref cases   ref ref-run ref-f64 ref-intermediates ref-grid (grid-sinks)
//   end         history license
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
#if defined(__GNUC__) || defined(__clang__)
#define LCAPI static __attribute__((unused))
#else
#define LCAPI static
#endif
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
enum { LOLCATS_COMPUTE_F32 = 0, LOLCATS_COMPUTE_BF16 = 1 };  // lc_ctx.compute (>>gemm-bf16)

// Execution context: which code path runs. Filled by lc_ctx_init (best path this
// CPU supports). Every kernel reads .simd at each call and picks the one kernel
// table of that level (>>fast-decl): the SIMD primitives, the GEMM kernels and
// the fast forms (packed, tiled, chunked, fused), each tried at one place at
// the top of its reference kernel, which runs when the entry is NULL or
// declines. .simd = LOLCATS_SIMD_SCALAR (also set after lc_ctx_init), and
// every ctx of a LOLCATS_NO_SIMD / LOLCATS_NO_FAST build, gets a table whose
// fast entries are all NULL: exactly the reference forms run.
// Debug builds with LOLCATS_COUNT_FAST (defined in every translation unit):
// each fetch of a non-scalar table adds one to *fast_count when it is set.
typedef struct lc_ctx {
    int simd;
    int compute;  // >>gemm-bf16 LOLCATS_COMPUTE_F32 (0, default) or _BF16 (lc_gemm)
#ifdef LOLCATS_COUNT_FAST
    unsigned long *fast_count;
#endif
} lc_ctx;

// >>api-core
LCAPI void lc_ctx_init(lc_ctx *ctx);
LCAPI int lc_simd_detect(void);                      // best level this CPU runs
LCAPI const char *lc_simd_name(int simd);
LCAPI const char *lc_status_name(lc_status s);
// Fills err (may be NULL) with a printf-style message; returns code.
LCAPI lc_status lc_error_set(lc_error *err, lc_status code, const char *fmt, ...);
// Frees memory the library allocated for the caller (LOLCATS_FREE); NULL is fine.
LCAPI void lc_free(void *p);

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
// The same given the forward's output phi (from these x, w, bias): for
// softmax_dim with eps f <= 1e-9 (the default eps 1e-12) on the SIMD paths the
// projection x W is not made again (where phi sits on the eps floor, eps
// stands in for the softmax value under it, a change below rounding at such
// eps); otherwise exactly lc_fmap_bwd.
LCAPI void lc_fmap_bwd_phi(const lc_ctx *ctx, float *dx, float *dw, float *dbias,
                           const float *dphi, const float *phi /*(B,H,N,F)*/,
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
// State form: also returns the final state (what decoding continues from).
LCAPI void lc_attn_linear_state_fwd(const lc_ctx *ctx, float *y, float *den,
                                    float *kv_state /*(B,H,F,D), required*/,
                                    float *k_state /*(B,H,F) or NULL*/,
                                    const float *phiq, const float *phik,
                                    const float *v,
                                    int B, int H, int Hk, int N, int F, int D,
                                    float eps);
// Reverse scan; work: lc_attn_linear_state_work_floats(B,H,F,D) floats.
LCAPI size_t lc_attn_linear_state_work_floats(int B, int H, int F, int D);
LCAPI void lc_attn_linear_state_bwd(const lc_ctx *ctx, float *dphiq, float *dphik,
                                    float *dv, float *work,
                                    const float *dy, const float *y,
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
    int sinks;                    // S >= 0 attention sinks, default 0: keys 0..S-1 are
                                  // window keys of every query (never linear)
} lc_hybrid_cfg;

LCAPI lc_hybrid_cfg lc_hybrid_cfg_default(void);
// Mask of key j for query i in a sequence of n: 1 window, 2 linear, 3 both
// (the tk N <= w quirk), 0 masked. Sink keys j < cfg->sinks (j <= i) are 1.
LCAPI int lc_hybrid_mask(const lc_hybrid_cfg *cfg, int n, int i, int j);

// Two forms behind one call. With work (lc_attn_hybrid_work_floats) and no
// attention weights requested: the prefix-state form, O(N (w+F) D) time and
// no N x N anything. With work == NULL, or a / da requested: the quadratic
// reference that mirrors the original's einsums. Both agree (tests assert it).
LCAPI size_t lc_attn_hybrid_work_floats(int B, int H, int D, int F);
LCAPI void lc_attn_hybrid_fwd(const lc_ctx *ctx, float *y /*(B,H,N,D)*/,
                              float *a /*(B,H,N,N) or NULL*/,
                              float *m /*(B,H,N)*/, float *den /*(B,H,N)*/,
                              float *work /*or NULL: quadratic reference*/,
                              const float *q, const float *k, const float *v,
                              const float *phiq, const float *phik,
                              const float *wf /*(H)*/,
                              const float *kv_state /*(B,H,F,D) or NULL*/,
                              const float *k_state /*(B,H,F) or NULL*/,
                              int B, int H, int Hk, int N, int D, int F,
                              const lc_hybrid_cfg *cfg);
// dq, dk, dv may each be NULL (attention transfer needs none of them: its
// q, k, v are the frozen teacher's). With all three NULL the chunked form
// skips the window part: the output is a ratio unchanged by scaling gamma and
// lambda together, so the window factors' gradient follows from the linear
// part's (equal to the full computation within rounding).
LCAPI void lc_attn_hybrid_bwd(const lc_ctx *ctx, float *dq, float *dk, float *dv,
                              float *dphiq, float *dphik, float *dwf /*(H)*/,
                              float *dkv_state /*or NULL*/, float *dk_state /*or NULL*/,
                              float *work /*or NULL: quadratic reference*/,
                              const float *dy /*(B,H,N,D) or NULL*/,
                              const float *da /*(B,H,N,N) or NULL*/,
                              const float *y, const float *m, const float *den,
                              const float *q, const float *k, const float *v,
                              const float *phiq, const float *phik, const float *wf,
                              const float *kv_state, const float *k_state,
                              int B, int H, int Hk, int N, int D, int F,
                              const lc_hybrid_cfg *cfg);

// The same two calls with every argument in one struct (fill it from
// lc_hybrid_args_default(), which zeroes it, then set what you use). The
// positional lc_attn_hybrid_fwd / _bwd are wrappers of these. Fields as above;
// fwd reads the inputs and writes y, a, m, den (work as above); bwd also reads
// dy, da, y, m, den and accumulates into the gradient fields that are set.
// Gated linear state (>>gate): log_g (B,H,N), log g_t <= 0 per query head and
// token, NULL for the original's ungated state. The linear-part weight of key
// j for query i is then multiplied by prod_{j<t<=i} g_t (a carried state by
// prod_{t<=i} g_t), i.e. S_t = g_t S_{t-1} + phik_t v_t^T, z likewise; the
// window part is unchanged and log_g == 0 gives the ungated result; with
// cfg->sinks the sink keys stay window keys (never in the decaying state). bwd
// accumulates d log_g into dlog_g (may be NULL). Gated forms: the quadratic
// reference (work NULL, a or da) and the prefix-state form (work set, no a / da:
// O(N (w + F) D) forward and backward).
typedef struct lc_hybrid_args {
    int B, H, Hk, N, D, F;
    const lc_hybrid_cfg *cfg;
    const float *q, *k, *v;               // (B,H,N,D), (B,Hk,N,D), (B,Hk,N,D)
    const float *phiq, *phik;             // (B,H,N,F)
    const float *wf;                      // (H)
    const float *kv_state, *k_state;      // (B,H,F,D), (B,H,F) or NULL
    const float *log_g;                   // (B,H,N) or NULL: ungated
    float *y, *a, *m, *den;               // outputs of fwd (a may be NULL)
    float *work;                          // lc_attn_hybrid_work_floats or NULL
    const float *dy, *da;                 // bwd: upstream gradients (either may be NULL)
    float *dq, *dk, *dv, *dphiq, *dphik, *dwf, *dkv_state, *dk_state;
    float *dlog_g;                        // (B,H,N) or NULL
} lc_hybrid_args;
LCAPI lc_hybrid_args lc_hybrid_args_default(void);
LCAPI void lc_attn_hybrid_fwd_args(const lc_ctx *ctx, const lc_hybrid_args *x);
LCAPI void lc_attn_hybrid_bwd_args(const lc_ctx *ctx, const lc_hybrid_args *x);

// Attention transfer (stage 1) on one layer's frozen q, k, v: the teacher's
// causal softmax (yt, lse as lc_attn_softmax_fwd; lse may be NULL) and the
// student hybrid (y, m, den as lc_attn_hybrid_fwd, no carried state) in one
// call, equal to those two calls within rounding. For tk windows of 64 that
// tile the sequence (N a multiple of 64 above 64) on a SIMD path, the
// student's window part comes out of the teacher's tiles (the same scores,
// the same exp, the same products with V) and work keeps the linear state
// before every window block, which lc_attn_transfer_bwd then reads instead of
// recomputing: about half the student's products of the two-call form.
// lc_attn_transfer_bwd is lc_attn_hybrid_bwd with dq = dk = dv = NULL
// (dphiq, dphik, dwf accumulate), given work as the forward left it.
LCAPI size_t lc_attn_transfer_work_floats(int B, int H, int N, int D, int F);
LCAPI void lc_attn_transfer_fwd(const lc_ctx *ctx, float *yt /*(B,H,N,D)*/,
                                float *lse /*(B,H,N) or NULL*/, float *y /*(B,H,N,D)*/,
                                float *m /*(B,H,N)*/, float *den /*(B,H,N)*/, float *work,
                                const float *q, const float *k, const float *v,
                                const float *phiq, const float *phik, const float *wf /*(H)*/,
                                int B, int H, int Hk, int N, int D, int F,
                                const lc_hybrid_cfg *cfg);
// Attention transfer's MSE step on one layer in one call: the teacher's yt
// (lse) and the student's y as lc_attn_transfer_fwd, the loss
// factor * mean((y - yt)^2) over B H N D (returned, as lc_loss_mse) and its
// gradient through the student as lc_attn_transfer_bwd: dphiq, dphik set (not
// accumulated), dwf accumulates; dphiq NULL: no backward. y, m, den: the
// student's output and row statistics, or NULL where not wanted. On the fast
// form (as lc_attn_transfer_fwd's) the student's rows never leave the tiles:
// each takes its rows' share of the backward at once, the keys' share follows
// in one reverse sweep, and no linear state is stored. Otherwise the calls it
// stands for. work: lc_attn_transfer_work_floats.
LCAPI double lc_attn_transfer_mse(const lc_ctx *ctx, float *yt /*(B,H,N,D)*/,
                                  float *lse /*or NULL*/, float *y /*or NULL*/,
                                  float *m /*or NULL*/, float *den /*or NULL*/,
                                  float *dphiq /*(B,H,N,F) or NULL*/, float *dphik,
                                  float *dwf /*(H) or NULL*/, float *work,
                                  const float *q, const float *k, const float *v,
                                  const float *phiq, const float *phik, const float *wf,
                                  int B, int H, int Hk, int N, int D, int F, float factor,
                                  const lc_hybrid_cfg *cfg);
LCAPI void lc_attn_transfer_bwd(const lc_ctx *ctx, float *dphiq, float *dphik,
                                float *dwf /*(H)*/, float *work, const float *dy,
                                const float *y, const float *m, const float *den,
                                const float *q, const float *k, const float *v,
                                const float *phiq, const float *phik, const float *wf,
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
    int sinks;                    // S attention sinks (lc_hybrid_cfg.sinks), 0: none
    float *k_sink;                // (Hk,S,D) keys of positions 0..S-1, NULL when S = 0
    float *v_sink;                // (Hk,S,D)
} lc_decode_state;

LCAPI size_t lc_decode_state_floats(int H, int Hk, int D, int F, int window);
// Cuts mem (lc_decode_state_floats floats) into the views and zeroes it.
LCAPI void lc_decode_state_init(lc_decode_state *st, float *mem,
                                int H, int Hk, int D, int F, int window);
// With S >= 0 attention sinks: the state also keeps the first S keys / values,
// which stay window keys for every later token and never enter S, z (as the
// prefill with cfg.sinks = S). S = 0: the two functions above.
LCAPI size_t lc_decode_state_floats_sinks(int H, int Hk, int D, int F, int window, int sinks);
LCAPI void lc_decode_state_init_sinks(lc_decode_state *st, float *mem, int H, int Hk, int D,
                                      int F, int window, int sinks);
LCAPI void lc_attn_hybrid_decode(const lc_ctx *ctx, float *y /*(H,D)*/,
                                 lc_decode_state *st,
                                 const float *q /*(H,D)*/, const float *k /*(Hk,D)*/,
                                 const float *v /*(Hk,D)*/,
                                 const float *phiq /*(H,F)*/,
                                 const float *phik /*(H,F)*/,
                                 const float *wf /*(H)*/, int affine);

// >>api-gate
// Gate projection of the gated linear state: log_g[b,h,n] = log sigmoid(
// x[b,n,:] . w_g[h,:] + b_g[h]) for x (B,N,dim) (the layer's normed input),
// w_g (H,dim), b_g (H); log_g (B,H,N) feeds lc_hybrid_args.log_g. The backward
// accumulates into dx (or NULL), dw_g, db_g from dlog_g.
LCAPI void lc_gate_proj_fwd(const lc_ctx *ctx, float *log_g, const float *x, const float *w_g,
                            const float *b_g, int B, int H, int N, int dim);
LCAPI void lc_gate_proj_bwd(const lc_ctx *ctx, float *dx, float *dw_g, float *db_g,
                            const float *dlog_g, const float *x, const float *w_g,
                            const float *b_g, int B, int H, int N, int dim);
// One gated token: lc_attn_hybrid_decode with S <- g S + ..., z likewise,
// g = exp(log_g[h]) per head (log_g (H)). logg_ring (H,window), zeroed with the
// state, keeps the window's log g (the state itself is the same size); equal
// to the gated sw prefill token by token, and to lc_attn_hybrid_decode when
// every log_g is 0.
// The trainer's initial gate bias b_g (w_g starts at 0): g = sigmoid(4) = 0.982
// (see >>gate-train for why).
#define LOLCATS_GATE_BIAS_INIT 4.0f
LCAPI void lc_attn_hybrid_decode_gated(const lc_ctx *ctx, float *y /*(H,D)*/,
                                       lc_decode_state *st, float *logg_ring /*(H,window)*/,
                                       const float *q, const float *k, const float *v,
                                       const float *phiq, const float *phik,
                                       const float *wf /*(H)*/, const float *log_g /*(H)*/,
                                       int affine);

// >>api-loss
// MSE, factor * mean((pred - target)^2); accumulates d/dpred into dpred if set.
LCAPI double lc_loss_mse(float *dpred, const float *pred, const float *target,
                         size_t n, float factor);
// Soft-target cross-entropy over attention rows as the original computes it:
// nn.CrossEntropyLoss(log(clamp(a_pred, 1e-12)), a_true), i.e. per row
// -sum_j t_j (log a~_j - log sum_k a~_k), mean over rows, times factor.
LCAPI double lc_loss_xent(float *da_pred, const float *a_pred, const float *a_true,
                          size_t rows, int cols, float factor);
// Stage-2 distillation (>>kl): factor * tau^2 * mean over scored rows (labels[t] >= 0;
// labels NULL: every row) of KL(softmax(teacher_t/tau) || softmax(student_t/tau)).
// The tau^2 (Hinton's convention) keeps the gradient's size independent of tau.
// SETS dlogits (T,V) to d loss / d student (0 on unscored rows) when set; it may
// be the student or the teacher buffer itself. *n_counted gets the scored rows.
LCAPI double lc_loss_kl(float *dlogits, const float *student /*(T,V)*/, const float *teacher /*(T,V)*/,
                        const int *labels, int T, int V, float tau, float factor, int *n_counted);

// >>api-optim
typedef struct lc_adamw_cfg {
    float lr, beta1, beta2, eps, weight_decay;
} lc_adamw_cfg;
LCAPI lc_adamw_cfg lc_adamw_cfg_default(void);      // 1e-2, .9, .999, 1e-8, 0
// One step (t >= 1), PyTorch's order of operations.
LCAPI void lc_adamw_step(float *p, const float *g, float *m, float *v, size_t n,
                         const lc_adamw_cfg *cfg, int64_t t);

// >>api-blocks
// The other pieces of a Llama block, forward and backward, for training
// (stage 2 LoRA, and the tiny models the demo trains). Token-major layouts:
// activations (T,C) row-major; heads (H,T,D) for the attention kernels.
// Weights are fp32 (out,in) here; frozen BF16/F16 matrices go through lc_weight.

// RMSNorm (LlamaRMSNorm): y = w * x / sqrt(mean(x^2) + eps). Saves rstd (T).
LCAPI void lc_rmsnorm_fwd(float *y /*(T,C)*/, float *rstd /*(T)*/, const float *x,
                          const float *w /*(C)*/, int T, int C, float eps);
LCAPI void lc_rmsnorm_bwd(float *dx /*(T,C)*/, float *dw /*(C) or NULL*/, const float *dy,
                          const float *x, const float *w, const float *rstd, int T, int C);

// RoPE tables for positions pos0 .. pos0+T-1: cos, sin (T, D/2), frequency
// theta^(-2i/D) in double (lc_model_rope_table: a model's table, as Hugging Face).
LCAPI void lc_rope_table(float *cos_t, float *sin_t, int pos0, int T, int D, float theta);
// (T, H*D) -> (H, T, D), rotating by the tables when cos_t is not NULL.
// interleaved = 1 pairs (2i, 2i+1) (llama2.c), 0 pairs (i, i + D/2) (HF).
LCAPI void lc_rope_split_fwd(float *out /*(H,T,D)*/, const float *in /*(T,H*D)*/,
                             const float *cos_t, const float *sin_t, int T, int H, int D,
                             int interleaved);
// Accumulates the gradient of lc_rope_split_fwd's input (rotation by -theta).
LCAPI void lc_rope_split_bwd(float *din /*(T,H*D)*/, const float *dout /*(H,T,D)*/,
                             const float *cos_t, const float *sin_t, int T, int H, int D,
                             int interleaved);
// (H,T,D) -> (T,H*D) and its gradient.
LCAPI void lc_heads_merge(float *out /*(T,H*D)*/, const float *in /*(H,T,D)*/, int T, int H, int D);
LCAPI void lc_heads_merge_bwd(float *din /*(H,T,D)*/, const float *dout /*(T,H*D)*/, int T, int H,
                              int D);

// SwiGLU: h = silu(g) * u.
LCAPI void lc_swiglu_fwd(float *h, const float *g, const float *u, size_t n);
LCAPI void lc_swiglu_bwd(float *dg, float *du, const float *dh, const float *g, const float *u,
                         size_t n);

// Dense layer y = x W^T (+ s * (x A^T) B^T with LoRA). W (O,I) F32/F16/BF16
// read in place; A (r,I), B (O,r) fp32, s = alpha / r. xa (T,r) saved = x A^T.
LCAPI void lc_linear_fwd(const lc_ctx *ctx, float *y /*(T,O)*/, float *xa /*(T,r) or NULL*/,
                         const float *x /*(T,I)*/, const void *w, int w_dtype,
                         const float *lora_a, const float *lora_b, float lora_scale, int r,
                         int T, int O, int I);
// Accumulates dx (if set), dw (fp32 W only, if set), d lora_a, d lora_b.
LCAPI void lc_linear_bwd(const lc_ctx *ctx, float *dx /*(T,I) or NULL*/, float *dw /*(O,I) or NULL*/,
                         float *dlora_a, float *dlora_b, const float *dy /*(T,O)*/,
                         const float *x, const float *xa, const void *w, int w_dtype,
                         const float *lora_a, const float *lora_b, float lora_scale, int r,
                         int T, int O, int I);

// Next-token cross-entropy, mean over tokens whose label is >= 0 (-1: ignored,
// e.g. prompt tokens). Writes dlogits (T,V) = d(mean loss)/dlogits (0 on
// ignored rows) when set; returns the mean loss and the count in *n_counted.
LCAPI double lc_xent_fwd_bwd(float *dlogits, const float *logits /*(T,V)*/, const int *labels,
                             int T, int V, int *n_counted);
// >>api-blocks-end

// >>api-files
// safetensors read / write, dtype conversions.
//
// A safetensors file is: an 8-byte little-endian header length N, N bytes of
// JSON {"name": {"dtype": "F32", "shape": [2,3], "data_offsets": [begin, end]},
// ..., "__metadata__": {"key": "value"}}, then the data area; offsets are
// relative to the data area (which starts at byte 8 + N).
//
// lc_st_open maps the file (mmap / MapViewOfFile, read into memory when mapping
// is impossible) and validates everything before returning: header length
// inside the file and <= 100 MB, header a JSON object, every dtype known, every
// shape made of non-negative integers (at most LOLCATS_MAX_DIMS), data_offsets
// inside the data area with end - begin == numel * dtype size, no duplicate
// names, __metadata__ an object of strings (or null). Like the reference
// implementation (safetensors, Rust), the tensors must tile the data area
// exactly: overlaps, holes between tensors and trailing bytes are all rejected.
// Unknown keys inside a tensor entry are ignored.
typedef enum lc_dtype {
    LOLCATS_DTYPE_F32 = 0,
    LOLCATS_DTYPE_F16,
    LOLCATS_DTYPE_BF16,
    LOLCATS_DTYPE_I32,
    LOLCATS_DTYPE_I64,
    LOLCATS_DTYPE_U8,
    LOLCATS_DTYPE_F64,
    LOLCATS_DTYPE_I8,
    LOLCATS_DTYPE_I16,
    LOLCATS_DTYPE_U16,
    LOLCATS_DTYPE_U32,
    LOLCATS_DTYPE_U64,
    LOLCATS_DTYPE_BOOL,
    LOLCATS_DTYPE_F8_E4M3,
    LOLCATS_DTYPE_F8_E5M2,
    LOLCATS_DTYPE_Q8_0,           // GGUF block-quantized weights (never in safetensors):
    LOLCATS_DTYPE_Q4_0,           //   lc_dtype_size is 0, see lc_dtype_block / >>api-gguf
    LOLCATS_DTYPE_Q4_K,
    LOLCATS_DTYPE_Q5_K,
    LOLCATS_DTYPE_Q6_K,
    LOLCATS_DTYPE_COUNT           // number of dtypes, not a dtype
} lc_dtype;

// "F32", "BF16", ... as spelled in safetensors headers; "?" if out of range.
LCAPI const char *lc_dtype_name(lc_dtype dt);
// Bytes per element; 0 if out of range.
LCAPI size_t lc_dtype_size(lc_dtype dt);
// Parses a safetensors dtype name; returns -1 if unknown.
LCAPI int lc_dtype_parse(const char *name);

#define LOLCATS_MAX_DIMS 8

// A view of one tensor. data points into the mapped file (or the caller's
// buffer) and may be unaligned; nbytes == numel * lc_dtype_size(dtype).
typedef struct lc_tensor {
    const char *name;
    lc_dtype dtype;
    int ndim;                     // 0 for a scalar
    int64_t shape[LOLCATS_MAX_DIMS];
    size_t nbytes;
    const void *data;
} lc_tensor;

LCAPI size_t lc_tensor_numel(const lc_tensor *t);   // 1 for a scalar

#ifndef LOLCATS_NO_FILES   // (BUILD OPTIONS)
typedef struct lc_st_file lc_st_file;                // opaque

LCAPI lc_status lc_st_open(lc_st_file **out, const char *path, lc_error *err);
// Same validation over a caller-owned buffer (not copied: it must outlive the
// file object). name is used in error messages and by lc_st_path.
LCAPI lc_status lc_st_open_memory(lc_st_file **out, const void *buf, size_t len,
                                  const char *name, lc_error *err);
LCAPI void lc_st_close(lc_st_file *f);               // NULL ok
LCAPI const char *lc_st_path(const lc_st_file *f);
LCAPI int lc_st_count(const lc_st_file *f);
// Tensors in file order: sorted by data offset (the order lc_st_write wrote them).
LCAPI const lc_tensor *lc_st_tensor_at(const lc_st_file *f, int i);
// Hash lookup, NULL if absent.
LCAPI const lc_tensor *lc_st_find(const lc_st_file *f, const char *name);
// __metadata__ entries, in header order; lc_st_meta returns NULL if absent.
LCAPI const char *lc_st_meta(const lc_st_file *f, const char *key);
LCAPI int lc_st_meta_count(const lc_st_file *f);
LCAPI void lc_st_meta_at(const lc_st_file *f, int i, const char **key, const char **val);

// Writes tensors (contiguously, in the given order) and metadata (n_meta
// key/value pairs: meta[2i] key, meta[2i+1] value) to path.tmp.<pid>, fsyncs,
// then renames it over path: path is either the old file or the complete new
// one, never half written. The header is padded with spaces so that the data
// area starts at a multiple of 8 bytes.
LCAPI lc_status lc_st_write(const char *path, const lc_tensor *tensors, int n,
                            const char *const *meta, int n_meta, lc_error *err);

#endif // !LOLCATS_NO_FILES
// Conversions. f32 -> bf16 / f16 round to nearest even, overflow to inf, NaN
// stays NaN (quiet, sign kept); f16 subnormals are exact both ways.
LCAPI float lc_bf16_to_f32(uint16_t h);
LCAPI uint16_t lc_f32_to_bf16(float f);
LCAPI float lc_f16_to_f32(uint16_t h);
LCAPI uint16_t lc_f32_to_f16(float f);
#ifndef LOLCATS_NO_FILES   // (BUILD OPTIONS)
// Converts any numeric dtype (F32, F16, BF16, F64, integers, BOOL) into
// dst[lc_tensor_numel(t)] (little-endian data, any alignment); F8 gives
// LOLCATS_ERR_UNSUPPORTED; a finite F64 beyond float range LOLCATS_ERR_FORMAT
// (NaN and inf convert as they are).
LCAPI lc_status lc_tensor_to_f32(const lc_tensor *t, float *dst, lc_error *err);
// Zero-copy access: t->data when t is F32, 4-byte aligned and the host is
// little-endian; NULL otherwise (then use lc_tensor_to_f32).
LCAPI const float *lc_tensor_f32(const lc_tensor *t);
#endif // !LOLCATS_NO_FILES
// >>api-files-end

// >>api-gguf
// GGUF files (llama.cpp's format), read through the same mapping as safetensors.
//
// Layout (little-endian): "GGUF", u32 version (2 or 3), u64 tensor count,
// u64 metadata count; metadata entries (string key, u32 value type, value);
// tensor infos (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64
// offset); padding to general.alignment (default 32); the data area. A string
// is a u64 length and that many bytes (no NUL). ne[0] is the fastest-varying
// dimension: the views below give shape in PyTorch order (ne reversed), so a
// GGUF weight (ne = {in, out}) reads as (out, in) like its safetensors twin.
//
// lc_gguf_open validates everything before returning: magic, version, counts
// that fit in the file, every string, value type and array inside the file,
// known tensor types with rows a whole number of blocks, offsets aligned and
// the data inside the file without overlaps, no duplicate keys or names,
// general.alignment a u32 power of two. Errors name the file and the field,
// key or tensor. Block-quantized tensors (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) come
// as lc_tensor views with those dtypes: row bytes = blocks x block bytes.
#ifndef LOLCATS_NO_FILES   // (BUILD OPTIONS)
enum {
    LOLCATS_GGUF_U8 = 0, LOLCATS_GGUF_I8, LOLCATS_GGUF_U16, LOLCATS_GGUF_I16, LOLCATS_GGUF_U32,
    LOLCATS_GGUF_I32, LOLCATS_GGUF_F32, LOLCATS_GGUF_BOOL, LOLCATS_GGUF_STRING, LOLCATS_GGUF_ARRAY,
    LOLCATS_GGUF_U64, LOLCATS_GGUF_I64, LOLCATS_GGUF_F64, LOLCATS_GGUF_TYPE_COUNT
};

// One metadata entry. Scalars: n = 1, elem_type = type. Arrays: type ARRAY,
// elem_type the element type, n elements (arrays of arrays are refused).
typedef struct lc_gguf_kv {
    const char *key;              // NUL-terminated copy
    int type, elem_type;          // LOLCATS_GGUF_*
    uint64_t n;
    const unsigned char *data;    // first value / element in the mapping (little-endian)
    const char *str;              // STRING scalar: NUL-terminated copy (else NULL)
    const uint64_t *str_off;      // STRING array: byte offset of element i's length from data
} lc_gguf_kv;

typedef struct lc_gguf_file lc_gguf_file;          // opaque

LCAPI lc_status lc_gguf_open(lc_gguf_file **out, const char *path, lc_error *err);
LCAPI lc_status lc_gguf_open_memory(lc_gguf_file **out, const void *buf, size_t len,
                                    const char *name, lc_error *err);
LCAPI void lc_gguf_close(lc_gguf_file *f);          // NULL ok
LCAPI const char *lc_gguf_path(const lc_gguf_file *f);
LCAPI int lc_gguf_version(const lc_gguf_file *f);
LCAPI size_t lc_gguf_alignment(const lc_gguf_file *f);
LCAPI size_t lc_gguf_data_offset(const lc_gguf_file *f);   // start of the data area in the file
LCAPI const char *lc_gguf_type_name(int type);      // "u32", "string", ...; "?" if unknown
LCAPI int lc_gguf_kv_count(const lc_gguf_file *f);
LCAPI const lc_gguf_kv *lc_gguf_kv_at(const lc_gguf_file *f, int i);
LCAPI const lc_gguf_kv *lc_gguf_find_kv(const lc_gguf_file *f, const char *key);   // NULL if absent
// Typed reads of a scalar entry. A missing key or one of another type is a
// LOLCATS_ERR_FORMAT naming the file, the key, the type found and the one
// expected. get_int takes any integer type (and bool) and checks the value
// fits int64; get_float takes F32 / F64 and integers.
LCAPI lc_status lc_gguf_get_int(const lc_gguf_file *f, const char *key, int64_t *out, lc_error *err);
LCAPI lc_status lc_gguf_get_float(const lc_gguf_file *f, const char *key, double *out, lc_error *err);
LCAPI lc_status lc_gguf_get_str(const lc_gguf_file *f, const char *key, const char **out, lc_error *err);
// Element i of an array entry (or the scalar when i == 0), widened; strings
// are not NUL-terminated in the mapping: *len gets the length.
LCAPI int64_t lc_gguf_arr_int(const lc_gguf_kv *kv, uint64_t i);     // integer / bool elements
LCAPI double lc_gguf_arr_float(const lc_gguf_kv *kv, uint64_t i);    // any numeric element
LCAPI const char *lc_gguf_arr_str(const lc_gguf_kv *kv, uint64_t i, size_t *len);
// Tensors in file order, shape in PyTorch order; lc_gguf_find is a hash lookup.
LCAPI int lc_gguf_tensor_count(const lc_gguf_file *f);
LCAPI const lc_tensor *lc_gguf_tensor_at(const lc_gguf_file *f, int i);
LCAPI const lc_tensor *lc_gguf_find(const lc_gguf_file *f, const char *name);
LCAPI int lc_gguf_tensor_ggml_type(const lc_gguf_file *f, int i);  // the file's type id
// ggml type id <-> dtype: -1 when the type is not one lolcats reads.
LCAPI int lc_gguf_dtype_of(uint32_t ggml_type);
LCAPI int lc_gguf_ggml_type_of(lc_dtype dt);
#endif // !LOLCATS_NO_FILES

// Block quantization (ggml's layouts; the scalar functions are the definition).
//   Q8_0  32 weights, 34 bytes: f16 d, i8 q[32]             x = d q
//   Q4_0  32 weights, 18 bytes: f16 d, u8 q[16]             x = d (nibble - 8); byte j: j (low), j+16 (high)
//   Q4_K 256 weights, 144 bytes: f16 d, f16 dmin, u8 scales[12] (8 x 6-bit scale, 6-bit min),
//        u8 q[128]                                          x = d sc_s q - dmin m_s
//   Q5_K 256 weights, 176 bytes: as Q4_K plus u8 qh[32] (5th bit) before q[128]
//   Q6_K 256 weights, 210 bytes: u8 ql[128], u8 qh[64], i8 scales[16], f16 d   x = d sc (q - 32)
// lc_dtype_block: weights per block (1 for the plain dtypes, 0 out of range).
LCAPI int lc_dtype_block(lc_dtype dt);
LCAPI size_t lc_dtype_block_bytes(lc_dtype dt);
// Bytes of a row of n weights (0 when n is not a whole number of blocks).
LCAPI size_t lc_dtype_row_bytes(lc_dtype dt, int64_t n);
// dst[n] = the n weights stored at src (n a multiple of the block; F32, F16,
// BF16 and every block type).
LCAPI void lc_dequant_row(float *dst, const void *src, lc_dtype dt, int64_t n);
// Quantizes n weights into dst (F32, F16, BF16, Q8_0, Q4_0, Q4_K): Q8_0 and
// Q4_0 by ggml's reference rules (absmax scale), Q4_K with per-sub-block
// min/max scales rounded to 6 bits. Returns 0, or -1 for another dtype or n
// not a whole number of blocks.
LCAPI int lc_quant_row(void *dst, const float *src, lc_dtype dt, int64_t n);
// >>api-gguf-end

// >>api-gemm
// Matrix products, row-major (PyTorch's layouts), float32 accumulation.
//
//   C (M,N) = alpha op(A) op(B) + beta C
//   op(A) (M,K): A is (M,K) with row stride lda, or with trans_a A is (K,M)
//                (row stride lda) read transposed. A is always float32.
//   op(B) (K,N): B is (K,N) with row stride ldb, or with trans_b B is (N,K)
//                read transposed. B is F32, BF16 or F16 (e.g. a weight read
//                straight from a mapped safetensors file), widened to float32
//                while it is packed.
//   C has row stride ldc. With beta == 0, C is only written (it may hold NaN).
//
// The three products of a dense layer y = x W^T, x (T,I), W (O,I):
//   forward       y  = x W^T    lc_gemm(c, y,  x,  W, dt,  T,O,I, 0,1, 1,0, O,I,I, s)
//   input grad    dX = dY W     lc_gemm(c, dX, dY, W, dt,  T,I,O, 0,0, 1,b, I,O,I, s)
//   weight grad   dW += dY^T x  lc_gemm(c, dW, dY, x, F32, O,I,T, 1,0, 1,1, I,O,I, s)
//
// Fast paths pack A and B into panels (cache blocks MC x KC and KC x NC) and
// run a register micro-kernel (AVX-512 14x32, AVX2 6x16, NEON 8x12); the
// scalar path (ctx.simd == LOLCATS_SIMD_SCALAR) is the definition: a plain
// triple loop accumulating in double. Threads (OpenMP) split independent
// blocks of C, and the K blocking never depends on the thread count, so
// results are bit-identical for any number of threads.
//
// scratch: lc_gemm_scratch_size(ctx, M, N, K) bytes from the caller (any
// alignment), or NULL to let lc_gemm allocate it through LOLCATS_MALLOC
// (and free it) for the call -- the one kernel allowed to, for convenience.
LCAPI size_t lc_gemm_scratch_size(const lc_ctx *ctx, int M, int N, int K);
LCAPI void lc_gemm(const lc_ctx *ctx, float *C, const float *A, const void *B,
                   lc_dtype b_dtype, int M, int N, int K, int trans_a, int trans_b,
                   float alpha, float beta, size_t ldc, size_t lda, size_t ldb,
                   void *scratch);
// Matrix-vector product for decoding: y (O) = W x, W (O,I) with row stride ldw
// in F32, BF16 or F16, x (I). Memory-bound: W is streamed once and widened in
// registers; rows are split across threads (each row's sum stays in one).
LCAPI void lc_gemv(const lc_ctx *ctx, float *y, const void *W, lc_dtype w_dtype,
                   const float *x, int O, int I, size_t ldw);
// >>gemm-bf16: ctx.compute = LOLCATS_COMPUTE_BF16 makes lc_gemm (and lc_matmul
// of 8+ rows) round A and B to bf16 and sum in float32 (AVX512_BF16); the
// kernels' inner products stay float32. 1 when this ctx runs the mode (a CPU
// without AVX512_BF16: 0, and lc_gemm computes in float32).
LCAPI int lc_compute_supported(const lc_ctx *ctx, int compute);
// >>api-gemm-end

// >>api-model
// A Llama-family decoder (Llama 1/2/3, Mistral, TinyLlama, SmolLM, llama2.c)
// run in float32. Weights stay in the file mapping and are read in place: BF16
// and F16 matrices are widened to float32 in registers inside the matmul, so a
// loaded model costs no memory beyond its (shared, read-only) pages.
//
//   x = embed[tok]
//   per layer:  h = x + Wo . attn(rope(Wq.rms(x)), rope(Wk.rms(x)), Wv.rms(x))
//               x = h + W2 . (silu(W1.rms(h)) * W3.rms(h))
//   logits = Wcls . rms(x)
//
// Matrices are PyTorch (out,in) row-major. Layouts of the KV cache:
// (L, Hk, ctx, D). RoPE pairs dims (i, i + D/2) (Hugging Face rotate_half) or
// (2i, 2i+1) (llama2.c checkpoints: cfg.rope_interleaved = 1).
enum { LOLCATS_MODEL_LLAMA2C = 1, LOLCATS_MODEL_HF = 2, LOLCATS_MODEL_GGUF = 3 };

// A read-only (rows, cols) row-major matrix (or vector: rows = 1) in a mapping.
typedef struct lc_weight {
    const void *data;
    lc_dtype dtype;               // LOLCATS_DTYPE_F32, _F16, _BF16, or a GGUF block type (Q8_0 ...)
    int64_t rows, cols;
} lc_weight;

typedef struct lc_model_config {
    int dim;                      // hidden_size
    int hidden_dim;               // intermediate_size
    int n_layers, n_heads, n_kv_heads, head_dim;
    int vocab_size;
    int seq_len;                  // max_position_embeddings
    float norm_eps;               // rms_norm_eps
    float rope_theta;
    int rope_interleaved;         // 1: llama2.c pairs (2i, 2i+1)
    int rope_llama3;              // rope_scaling.rope_type == "llama3"
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_orig_max_pos;        // original_max_position_embeddings
    int sliding_window;           // > 0: position i attends to (i - W, i] (Mistral)
    int tied;                     // classifier == embedding
    int bos_id, eos_id;           // -1 when unknown
    int qkv_bias;                 // Qwen2: q/k/v projections carry biases
    int qk_norm;                  // Qwen3: per-head RMSNorm of q and k before RoPE
    char arch[48];                // "LlamaForCausalLM", "llama2c", ...
} lc_model_config;

typedef struct lc_layer_weights {
    lc_weight rms_att;            // (1, dim)           input_layernorm
    lc_weight wq;                 // (H*D, dim)         q_proj
    lc_weight wk, wv;             // (Hk*D, dim)        k_proj, v_proj
    lc_weight wo;                 // (dim, H*D)         o_proj
    lc_weight rms_ffn;            // (1, dim)           post_attention_layernorm
    lc_weight w1;                 // (hidden, dim)      gate_proj
    lc_weight w2;                 // (dim, hidden)      down_proj
    lc_weight w3;                 // (hidden, dim)      up_proj
    lc_weight bq, bk, bv;         // (1, H*D) (1, Hk*D) x2  q/k/v_proj.bias (Qwen2; data NULL when absent)
    lc_weight q_norm, k_norm;     // (1, D)             self_attn.q_norm / k_norm (Qwen3; NULL when absent)
} lc_layer_weights;

typedef struct lc_model {
    lc_model_config cfg;
    int format;                   // LOLCATS_MODEL_*
    lc_weight tok_emb;            // (vocab, dim)
    lc_weight rms_final;          // (1, dim)
    lc_weight wcls;               // (vocab, dim); == tok_emb when tied
    lc_layer_weights *layers;     // n_layers
    void *priv;                   // mappings
} lc_model;

#ifndef LOLCATS_NO_FILES   // (BUILD OPTIONS)
// Loads a llama2.c legacy checkpoint (.bin: 7 int32 header fields, then float32
// weights; negative vocab_size = untied classifier). The file size must be
// exactly what the header implies.
LCAPI lc_status lc_model_load_llama2c(lc_model *m, const char *path, lc_error *err);
// Loads a Hugging Face directory: config.json + model.safetensors, or shards
// listed in model.safetensors.index.json.
LCAPI lc_status lc_model_load_hf(lc_model *m, const char *dir, lc_error *err);
// Loads a GGUF file of the llama, qwen2 or qwen3 architecture (>>model-gguf): block-quantized
// weights stay quantized (lc_weight.dtype Q8_0 ... Q6_K).
LCAPI lc_status lc_model_load_gguf(lc_model *m, const char *path, lc_error *err);
// A directory loads as Hugging Face, a file starting with "GGUF" as GGUF, any
// other file as llama2.c.
LCAPI lc_status lc_model_load(lc_model *m, const char *path, lc_error *err);
LCAPI void lc_model_free(lc_model *m);
LCAPI int64_t lc_model_param_count(const lc_model *m);
#endif // !LOLCATS_NO_FILES
// Gives back the resident pages of layer l's weights (madvise MADV_DONTNEED on
// the file mapping; the next read faults them in again from the page cache),
// so a pass over a model larger than memory keeps about one layer resident.
// Only file-mapped weights are touched; a no-op where the platform has no
// madvise or the weights live in allocated memory. Returns bytes advised.
LCAPI size_t lc_model_release_layer(const lc_model *m, int l);
// Asks for [p, p + bytes) to be backed by transparent huge pages (madvise
// MADV_HUGEPAGE on its whole 2 MiB pages; a no-op off Linux): fewer TLB misses
// in the kernels that stream through multi-MB buffers. Call it on a fresh
// allocation before writing to it; the trainer does so for its activations.
// Returns the bytes advised.
LCAPI size_t lc_advise_hugepages(void *p, size_t bytes);

// Decode state: KV cache, RoPE table and activations for up to max_tokens
// tokens per lc_model_forward call.
typedef struct lc_run {
    int ctx;                      // KV cache length (positions)
    int max_tokens;               // tokens per forward call
    int pos;                      // tokens consumed so far
    float *key_cache, *value_cache;   // (L, Hk, ctx, D)
    float *rope_cos, *rope_sin;   // (ctx, D/2)
    float *norm_w;                // (2L+1, dim) fp32 RMSNorm weights: att, ffn per layer; final
    float *x, *xb, *xb2, *q, *k, *v, *hb, *hb2;   // (T, *) activations
    float *att;                   // (H, ctx) scores
    float *logits;                // (V) logits of the last token fed
    double *nll_acc;              // (2, max_tokens) running max / sum of lc_model_forward_nll
    size_t bytes;                 // total allocated
} lc_run;

LCAPI lc_status lc_run_init(lc_run *r, const lc_model *m, int ctx, int max_tokens,
                            lc_error *err);
LCAPI void lc_run_free(lc_run *r);
LCAPI void lc_run_reset(lc_run *r);
// Rolls the cache back to its first pos tokens (0 <= pos <= r->pos): the keys /
// values before pos stay, the next lc_model_forward continues at pos. Scoring
// several continuations of one context feeds the context once, then truncates
// back to it before each continuation. r->logits is not restored.
LCAPI lc_status lc_run_truncate(lc_run *r, int pos, lc_error *err);
// Feeds tokens[0..n) at positions r->pos.. (prefill as matrix-matrix; n = 1 is
// one decode step), advances r->pos. Writes the last token's logits to
// r->logits and, when logits_all is set, every token's logits (n, V).
// n <= r->max_tokens and r->pos + n <= r->ctx.
// ctx picks the SIMD path of the matmuls and attention (NULL: scalar reference).
LCAPI lc_status lc_model_forward(const lc_ctx *ctx, const lc_model *m, lc_run *r,
                                 const int *tokens, int n, float *logits_all /*(n,V) or NULL*/,
                                 lc_error *err);
// Feeds tokens as lc_model_forward and writes nll[t] = -log softmax(logits_t)[targets[t]]
// (0 where targets[t] < 0) without materializing the (n, V) logits: the
// classifier runs in vocabulary blocks with an online log-sum-exp. r->logits
// is not updated.
LCAPI lc_status lc_model_forward_nll(const lc_ctx *ctx, const lc_model *m, lc_run *r,
                                     const int *tokens, int n, const int *targets /*(n)*/,
                                     double *nll /*(n)*/, lc_error *err);
// RoPE inverse frequencies (D/2) of a config (llama3 scaling included), and the
// cos/sin tables (T, D/2) of positions pos0 .. pos0+T-1, as Hugging Face computes
// them: float32 frequencies and angles, cos/sin of the float32 angle.
LCAPI void lc_rope_inv_freq(float *inv /*(D/2)*/, const lc_model_config *c);
LCAPI void lc_model_rope_table(float *cos_t /*(T,D/2)*/, float *sin_t /*(T,D/2)*/,
                               const lc_model_config *c, int pos0, int T);

// y (T,O) = x (T,I) . W^T for an F32/F16/BF16 weight W (O,I) read in place.
// ctx->simd picks the path (AVX2 register-blocked kernel on x86, the scalar
// reference otherwise; NULL ctx: reference).
LCAPI void lc_matmul(const lc_ctx *ctx, float *y /*(T,O)*/, const float *x /*(T,I)*/,
                     const void *w /*(O,I)*/, lc_dtype dtype, int T, int O, int I);
LCAPI float lc_weight_get(const lc_weight *w, int64_t i);   // element i, widened

#ifndef LOLCATS_NO_FILES   // (BUILD OPTIONS)
// >>api-tokenizer
// SentencePiece-style BPE (llama2.c tokenizer.bin; tokenizer.json "BPE" with
// byte_fallback, Llama 2 / Mistral / TinyLlama) and byte-level BPE (GPT-2 style
// tokenizer.json: Llama 3, SmolLM). Pieces of SentencePiece vocabularies are
// kept with U+2581 replaced by ' ', as llama2.c stores them.
enum { LOLCATS_TOK_SPM = 1, LOLCATS_TOK_BYTELEVEL = 2 };

typedef struct lc_tokenizer {
    int kind;                     // LOLCATS_TOK_*
    int vocab_size;
    char **pieces;                // raw bytes of each piece, NUL-terminated
    int *lens;
    float *scores;                // merge priority (llama2.c: score)
    int max_token_length;
    int bos_id, eos_id, unk_id;   // -1 when absent
    int add_bos;                  // the post-processor prepends BOS
    int add_prefix_space;         // SPM dummy prefix ' '
    int byte_fallback;
    int byte_ids[256];            // <0xXX> pieces (SPM) or byte symbols (byte-level)
    int *special;                 // ids matched verbatim in text (added tokens)
    int n_special;
    void *priv;                   // lookup tables
} lc_tokenizer;

// llama2.c tokenizer.bin: int32 max_token_length, then per token float score,
// int32 len, len bytes. vocab_size 0 reads to the end of the file.
LCAPI lc_status lc_tokenizer_load_llama2c(lc_tokenizer *t, const char *path,
                                          int vocab_size, lc_error *err);
// Hugging Face tokenizer.json (model.type "BPE").
LCAPI lc_status lc_tokenizer_load_hf(lc_tokenizer *t, const char *path, lc_error *err);
// A GGUF file's tokenizer.ggml.* of the "llama" (SentencePiece) or "gpt2"
// (byte-level BPE; pre-tokenizer "qwen2", "llama-bpe", "gpt-2" or "default") kind (>>model-gguf).
LCAPI lc_status lc_tokenizer_load_gguf(lc_tokenizer *t, const char *path, lc_error *err);
LCAPI void lc_tokenizer_free(lc_tokenizer *t);
// Encodes text[0..len): [BOS if bos] + pieces + [EOS if eos] into ids
// (capacity cap; len + 3 always suffices). *n gets the count.
LCAPI lc_status lc_tokenizer_encode(const lc_tokenizer *t, const char *text, size_t len,
                                    int bos, int eos, int *ids, size_t cap, size_t *n,
                                    lc_error *err);
// Bytes of token tok following token prev (-1 at the start): a leading space
// after BOS / at the start is dropped, <0xXX> gives its byte. Returns the
// length written to buf (cap >= 2 * max_token_length + 8 suffices).
LCAPI size_t lc_tokenizer_decode(const lc_tokenizer *t, int prev, int tok, char *buf,
                                 size_t cap);
LCAPI int lc_tokenizer_find(const lc_tokenizer *t, const char *piece, size_t len);

// >>api-sample
typedef struct lc_sampler {
    int vocab_size;
    float temperature;            // 0: greedy (argmax)
    float top_p;                  // in (0,1): nucleus sampling; else full distribution
    uint64_t state;               // xorshift64* state
    float *probs;                 // (V) scratch
    void *order;                  // (V) scratch of (prob, index) pairs
} lc_sampler;

LCAPI lc_status lc_sampler_init(lc_sampler *s, int vocab_size, float temperature,
                                float top_p, uint64_t seed, lc_error *err);
LCAPI void lc_sampler_free(lc_sampler *s);
// Picks the next token from logits (V); logits are not modified.
LCAPI int lc_sampler_sample(lc_sampler *s, const float *logits);
LCAPI int lc_argmax(const float *x, int n);

// >>api-model-export
// Writes m as a Hugging Face directory into the existing directory dir:
// config.json (LlamaForCausalLM) and model.safetensors in F32. Interleaved
// (llama2.c) RoPE is turned into rotate_half by permuting the rows of every
// head of q_proj and k_proj: new row j < D/2 is old row 2j, new row j + D/2 is
// old row 2j + 1 (attention scores are unchanged).
LCAPI lc_status lc_model_export_hf(const lc_model *m, const char *dir, lc_error *err);
#endif // !LOLCATS_NO_FILES
// >>api-model-end

// >>api-train
// Training a (linearized) model: the LoLCATs parameters (feature maps and
// window factors per layer), LoRA adapters on q/k/v/o, and, for the tiny
// models the demo trains from scratch, every weight. One allocation holds
// parameters, gradients and AdamW moments (named views into it, as in llm.c),
// so zeroing the gradients is one memset and the whole state can be dumped.
//
// Stage 1 (lc_train_distill_step): teacher forced, layer by layer: every layer
// gets the teacher's hidden states, its student (hybrid) output is compared to
// the teacher's softmax output before o_proj (MSE x mse_factor, + xent), and
// only that layer's feature maps and window factors get gradient.
// Stage 2 (lc_train_lm_step): next-token cross-entropy through the whole model
// with hybrid attention in every layer (or softmax: attn = LOLCATS_ATTN_SOFTMAX),
// backward to LoRA (and optionally the feature maps / all weights).
enum { LOLCATS_ATTN_SOFTMAX = 0, LOLCATS_ATTN_HYBRID = 1, LOLCATS_ATTN_LINEAR = 2 };
enum {
    LOLCATS_TRAIN_FMAPS = 1,      // feature maps + window factors
    LOLCATS_TRAIN_LORA = 2,       // LoRA A, B on q, k, v, o
    LOLCATS_TRAIN_FULL = 4        // every model weight (fp32 models made by lc_train_init_full)
};
enum { LOLCATS_LORA_Q = 0, LOLCATS_LORA_K = 1, LOLCATS_LORA_V = 2, LOLCATS_LORA_O = 3 };

typedef struct lc_train_cfg {
    int attn;                     // LOLCATS_ATTN_* used by lc_train_lm_step
    int trainable;                // LOLCATS_TRAIN_* bits
    lc_fmap_cfg fmap;
    int feature_dim;              // f (64)
    lc_hybrid_cfg hybrid;         // tk, window 64
    int lora_rank;                // r (8); 0: no LoRA
    float lora_alpha;             // 16
    int lora_targets;             // bits 1 << LOLCATS_LORA_* (default q,k,v,o)
    float mse_factor, xent_factor;  // stage 1 loss (1000, 0)
    int max_tokens;               // T: tokens per step (batch 1)
    uint64_t seed;                // LoRA A init
    int distill_only;             // 1: stage 1 only: activations of ONE layer are kept
    int recompute;                // 1: keep only each layer's input, recompute the layer
                                  //    inside the backward (activation checkpointing)
    int fmap_init;                // 0: identity (every published run), 1: kaiming-uniform
    int fmap_bias;                // 1: one trainable scalar bias per head on each map (T2R)
    int release_pages;            // 1: give back each layer's weight pages after using them
                                  //    (lc_model_release_layer): about one layer resident
    const unsigned char *softmax_layers;  // (n_layers) nonzero: the layer keeps softmax attention
                                  //    (the original's softmax_attentions): no stage-1 loss there
                                  //    (the mean runs over the other layers), softmax in stage 2
                                  //    (its LoRA still trains). NULL: none. Caller-owned, outlives t.
    float kl_factor, kl_temp, ce_factor;  // >>kl stage 2 loss: ce_factor * CE + kl_factor * tau^2 *
                                  //    KL(teacher || student), tau = kl_temp (0, 1, 1: CE alone)
    int gate;                     // >>gate-train 1: gated linear state, w_g (L,H,dim), b_g (L,H) trained
                                  //    with the feature maps (stage 1); hybrid only, not with sinks
    int gate_stage2;              //    1: w_g, b_g also train in lc_train_lm_step (stage 2)
    size_t kl_cache_bytes;        // >>kl 0: the teacher runs at every step; > 0: its logits are
                                  //    kept per distinct token sequence, up to this many bytes
                                  //    (first come, never evicted; results unchanged, bit for bit)
} lc_train_cfg;

LCAPI lc_train_cfg lc_train_cfg_default(void);

typedef struct lc_train {
    lc_ctx ctx;
    lc_model *model;              // frozen weights (or the trainable fp32 model)
    lc_train_cfg cfg;
    int F;                        // feature-map output dim
    size_t n_params;              // floats in each of params, grads, m, v
    float *mem;                   // params | grads | adam m | adam v
    float *params, *grads, *adam_m, *adam_v;
    // views into params (and, at the same offsets, into grads):
    float *fmap_q, *fmap_k;       // (L,H,D,f) each
    float *wf;                    // (L,H) window factor logits
    float *fbq, *fbk;             // (L,H) feature-map biases (cfg.fmap_bias), or NULL
    float *gate_w, *gate_b;       // (L,H,dim) (L,H) gate projection (cfg.gate), or NULL
    float *lora;                  // per layer, per target: A (r,in) then B (out,r)
    size_t (*lora_off)[4];        // (L) [layer][q,k,v,o]: offset of A in params (0: no LoRA on it)
    const float *(*lora_a)[4];    // (L) [layer][q,k,v,o]: views of A and B in params, or NULL
    const float *(*lora_b)[4];    //     (lora_b points into the lora_a allocation)
    float *full;                  // fp32 model weights (LOLCATS_TRAIN_FULL), or NULL
    int64_t step;                 // optimizer steps taken
    void *act;                    // activations and scratch (private)
} lc_train;

// Attaches training state to a loaded model (weights stay frozen and mapped).
// Feature maps start at identity, window factors at logit(0.1), LoRA A
// kaiming-uniform(a=sqrt(5)) and B zero, as in the original.
LCAPI lc_status lc_train_init(lc_train *t, const lc_ctx *ctx, lc_model *m,
                              const lc_train_cfg *cfg, lc_error *err);
// Creates a fresh fp32 model of config mc whose weights live in the trainable
// buffer (for LOLCATS_TRAIN_FULL), seeded normal(0, 0.02) / norms at 1.
// t->model points to a model owned by t.
LCAPI lc_status lc_train_init_full(lc_train *t, const lc_ctx *ctx, const lc_model_config *mc,
                                   const lc_train_cfg *cfg, lc_error *err);
LCAPI void lc_train_free(lc_train *t);
LCAPI void lc_train_zero_grad(lc_train *t);
// Bytes lc_train_init(m, cfg) allocates: the trainable parameters with their
// gradients and AdamW moments, and the activations of one cfg->max_tokens
// sequence (one layer's with distill_only or recompute, else every layer's).
// The model's weights are not counted (they stay in the file mapping).
LCAPI size_t lc_train_memory_bytes(const lc_model *m, const lc_train_cfg *cfg);

// Stage 1 on one sequence of T tokens: accumulates gradients of
// (1/L) sum_layers (mse_factor * mse + xent_factor * xent) into the feature maps
// and window factors; returns that loss; layer_loss (L) gets each layer's.
// Kept softmax layers (cfg.softmax_layers) are skipped (layer_loss 0) and L
// counts only the others.
LCAPI lc_status lc_train_distill_step(lc_train *t, const int *tokens, int T, int backward,
                                      double *loss, double *layer_loss, lc_error *err);
// Block-wise stage 1 (as the paper trained 70B / 405B): x (T,dim) holds the
// teacher's hidden state entering layer l0; layers [l0, l1) are trained as in
// lc_train_distill_step (same per-layer losses, so blocks add up to the whole)
// and x is left holding the state entering l1. students = 0 runs only the
// teacher (to cache the inputs of later blocks). lc_train_embed_tokens gives
// the state entering layer 0.
LCAPI lc_status lc_train_embed_tokens(lc_train *t, const int *tokens, int T, float *x, lc_error *err);
LCAPI lc_status lc_train_distill_block(lc_train *t, float *x, int T, int l0, int l1, int students,
                                       int backward, double *loss, double *layer_loss, lc_error *err);
// Stage 2 / pretraining on one sequence: labels[i] is the target of position i
// (-1: ignored). Accumulates gradients of the mean cross-entropy (when
// backward), returns it in *loss and the number of scored tokens in *n_scored.
// With cfg.kl_factor > 0 the loss is ce_factor * CE + kl_factor * tau^2 * KL(teacher
// || student) over the scored positions: the teacher is the frozen model (softmax
// attention, no LoRA), run forward on the same tokens at every call (one
// sequence's (T,V) logits and an lc_run kept; not with LOLCATS_TRAIN_FULL).
LCAPI lc_status lc_train_lm_step(lc_train *t, const int *tokens, const int *labels, int T,
                                 int backward, double *loss, int *n_scored, lc_error *err);
// The parts of the last lc_train_lm_step's loss: the mean cross-entropy and
// tau^2 * mean KL (0 when kl_factor is 0), both unweighted.
LCAPI void lc_train_loss_parts(const lc_train *t, double *ce, double *kl);
// AdamW over the trainable parameters (grads scaled by grad_scale first, e.g.
// 1/accumulation steps); increments t->step.
LCAPI void lc_train_adamw(lc_train *t, const lc_adamw_cfg *opt, float grad_scale);
// The teacher-logits cache of cfg.kl_cache_bytes: steps answered from it (hits), teacher
// forwards run (misses), sequences kept and the bytes they take. All 0 without KL.
LCAPI void lc_train_kl_cache(const lc_train *t, long *hits, long *misses, int *entries, size_t *bytes);
// After a forward (lc_train_lm_step), the logits (T,V) of that sequence; with
// backward they were overwritten by their gradient.
LCAPI const float *lc_train_logits(const lc_train *t);
// Teacher (softmax) and student (hybrid with the current feature maps) attention
// weights of layer `layer` on one sequence, teacher forced as in stage 1:
// a_teacher, a_student (H,T,T), either may be NULL.
LCAPI lc_status lc_train_attention_maps(lc_train *t, const int *tokens, int T, int layer,
                                        float *a_teacher, float *a_student, lc_error *err);

// The LoLCATs parameters of a converted model, as inference and checkpoints
// see them: views (owned by whoever filled the struct: lc_train_lolcats_view
// points into a trainer; a checkpoint loader owns its copies in priv).
typedef struct lc_lolcats {
    int n_layers, n_heads, head_dim;
    int n_kv_heads, dim;          // the LoRA shapes
    int rope_interleaved;         // the feature maps read llama2.c-ordered head vectors
    lc_fmap_cfg fmap;
    int feature_dim;              // f
    lc_hybrid_cfg hybrid;         // variant, window, affine
    const float *fmap_q, *fmap_k; // (L,H,D,f)
    const float *wf;              // (L,H) window-factor logits
    const float *fbq, *fbk;       // (L,H) feature-map biases (T2R), or NULL
    const float *gate_w, *gate_b; // (L,H,dim) (L,H) gated linear state (>>gate), or NULL: ungated
    int lora_rank;                // 0: none
    float lora_alpha;
    const float *(*lora_a)[4];    // (n_layers) [layer][q,k,v,o]: A (r,in) or NULL; the tables
    const float *(*lora_b)[4];    // (n_layers)                   B (out,r) or NULL;  NULL: no LoRA
    const unsigned char *softmax_layers;  // (n_layers) nonzero: kept softmax layer; NULL: none
    void *priv;
} lc_lolcats;

// Views of a trainer's current parameters (valid while t lives and is unchanged).
LCAPI void lc_train_lolcats_view(const lc_train *t, lc_lolcats *lp);
// >>api-train-end

#ifndef LOLCATS_NO_FILES   // (BUILD OPTIONS)
// >>api-lolcats-io
// Checkpoints of a converted model, in the original implementation's names
// (LOLCATS_MATH.md section 10), as safetensors (F32):
//   model.layers.{i}.self_attn.feature_map_q.mlp.layer   (H,D,f)
//   model.layers.{i}.self_attn.feature_map_k.mlp.layer   (H,D,f)
//   model.layers.{i}.self_attn.window_factors            (1,H,1,1)  logits
//   model.layers.{i}.self_attn.feature_map_{q,k}.mlp.bias (1,H,1,1)  T2R only
//   model.layers.{i}.self_attn.gate_proj_lolcats.weight  (H,dim)    gated state (>>gate) only,
//   model.layers.{i}.self_attn.gate_proj_lolcats.bias    (H)        with metadata gate = "1"
//   base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_{A,B}.default.weight
//                                                        A (r,in), B (out,r)
// __metadata__ (strings): lolcats_format, variant (tk|sw), window, feature_map,
// feature_dim, halfspace, eps, affine, lora_rank, lora_alpha, n_layers,
// n_heads, head_dim, rope ("interleaved" | "rotate_half": the pairing of the
// RoPE'd vectors the feature maps read), then the caller's extras (e.g.
// base_model, base_arch, stage).
// The gated linear state (lp->gate_w) adds "gate": "1"; a checkpoint without
// it is ungated (gate tensors without it are refused).
// Kept softmax layers (lp->softmax_layers) add "softmax_layers": their
// indices, comma-separated ("7,15"); a checkpoint without it has none.
#define LOLCATS_CKPT_FORMAT "1"

// Kept softmax layers as text. parse: list "7,15" (ascending or not; "" or
// "none": no layer) into out (n_layers bytes, 1 = kept softmax); indices out
// of 0..n_layers-1, repeated, or not integers are refused with an error that
// names the entry. format: the list of sl (NULL: none) into buf ("none" when
// empty; truncated to cap); returns the number of kept layers.
LCAPI lc_status lc_softmax_layers_parse(unsigned char *out, const char *list, int n_layers, lc_error *err);
LCAPI int lc_softmax_layers_format(char *buf, size_t cap, const unsigned char *sl, int n_layers);
// `auto:K`: marks in out (n_layers bytes) the k layers of highest score
// (e.g. each layer's validation attention-transfer MSE after stage 1; ties go
// to the lower index; NaN counts as highest). k is clamped to 0..n_layers.
LCAPI void lc_softmax_layers_top(unsigned char *out, const double *score, int n_layers, int k);

// Writes lp to path atomically (lc_st_write: tmp file, fsync, rename). meta:
// n_meta extra key/value pairs (meta[2i], meta[2i+1]), may be NULL.
LCAPI lc_status lc_lolcats_save(const lc_lolcats *lp, const char *path, const char *const *meta,
                                int n_meta, lc_error *err);
// Reads a checkpoint file, or a directory written by lc_lolcats_export_hf
// (its model.safetensors), into lp, which then owns copies of everything
// (free with lc_lolcats_free). When m is not NULL every tensor's shape is
// checked against m's config; every layer must have both feature maps and its
// window factors; LoRA pairs are optional but come complete (A and B). Errors
// name the file and the tensor.
LCAPI lc_status lc_lolcats_load(lc_lolcats *lp, const char *path, const lc_model *m, lc_error *err);
LCAPI void lc_lolcats_free(lc_lolcats *lp);       // NULL or zeroed ok
// Metadata value of a loaded checkpoint (NULL if absent).
LCAPI const char *lc_lolcats_meta(const lc_lolcats *lp, const char *key);
// Copies lp's feature maps, window factors and (where both have them) LoRA
// into the trainer's parameters. Shapes, feature map kind and LoRA rank must
// agree with t's config.
LCAPI lc_status lc_train_set_lolcats(lc_train *t, const lc_lolcats *lp, lc_error *err);

// A standalone Hugging Face directory (dir must exist): config.json and
// model.safetensors (F32) holding the base weights with LoRA merged into
// q/k/v/o (W + (alpha/r) B A), the LoLCATs tensors beside them under their
// section-10 names, and the checkpoint metadata. llama2.c (interleaved RoPE)
// models are written with rotate_half q/k rows (lc_model_export_hf), and the
// feature maps' D rows are permuted the same way, so the function is unchanged.
// lc_lolcats_load(dir) reads the LoLCATs part back (lora_rank 0: merged).
LCAPI lc_status lc_lolcats_export_hf(const lc_model *m, const lc_lolcats *lp, const char *dir,
                                     lc_error *err);

// ReduceLROnPlateau as PyTorch (mode min, threshold 1e-4 relative, cooldown 0):
// after `patience` evaluations without improvement, lr = max(lr * factor, min_lr).
typedef struct lc_plateau {
    float lr, factor, min_lr, threshold;
    int patience, num_bad;
    double best;                  // best metric seen (HUGE_VAL at start)
} lc_plateau;
LCAPI void lc_plateau_init(lc_plateau *p, float lr, float factor, int patience, float min_lr);
// Feeds one validation metric; returns 1 when the learning rate was lowered.
LCAPI int lc_plateau_step(lc_plateau *p, double metric);

// Everything besides the trainer's parameters and moments that a resumed run
// needs to continue exactly where it stopped.
typedef struct lc_train_progress {
    int64_t seq;                  // sequences consumed: the data position
    int64_t tokens;               // tokens consumed
    uint64_t rng[4];              // the caller's RNG state (lc_rng.s)
    lc_plateau sched;             // learning-rate schedule
    double best_val;              // best validation loss (HUGE_VAL: none yet)
    int64_t best_step;            // optimizer step of the best checkpoint
} lc_train_progress;

// Training state file (safetensors): tensors params, adam_m, adam_v (n_params)
// bit-exact, metadata: t->step, progress, a fingerprint of the trainer's shape
// and config (checked by the loader) and the caller's extras. Written
// atomically (tmp + fsync + rename).
LCAPI lc_status lc_train_save_state(const lc_train *t, const lc_train_progress *pr, const char *path,
                                    const char *const *meta, int n_meta, lc_error *err);
// Restores params, adam_m, adam_v, t->step and *pr into a trainer built with
// the same model and config (gradients are zeroed).
LCAPI lc_status lc_train_load_state(lc_train *t, lc_train_progress *pr, const char *path,
                                    lc_error *err);
// >>api-lolcats-io-end

// >>api-lolcats-infer
// Linearized inference: a Llama model whose every attention layer is the
// LoLCATs hybrid (feature maps, window factors, LoRA on q/k/v/o from an
// lc_lolcats). Per sequence it keeps, per layer, one lc_decode_state: the ring
// of the w most recent keys / values / key features and the fp32 linear state
// (S, z) of every key that left the window. That state does not grow with the
// context; the only other memory is scratch for max_tokens tokens per call.
//
//   lc_lolcats_forward(m, lp, r, prompt, n, NULL, &err);   // prefill
//   while (...) { tok = sample(r->logits); lc_lolcats_forward(m, lp, r, &tok, 1, NULL, &err); }
//
// What a call computes, with p0 = r->pos:
//   p0 == 0      prefill: lc_attn_hybrid_fwd over the n tokens with the
//                checkpoint's masks (tk: terraced blocks, the N <= w quirk
//                included; sw: sliding window), as the original computes a
//                prompt and as the trainer computes a sequence. Afterwards the
//                state is what token-by-token decoding would have left: the
//                last w keys in the ring, S, z over the keys before them.
//   p0 > 0       continuation: the decode rule, a plain sliding window of the w
//                most recent keys plus (S, z) (LOLCATS_MATH.md section 6), for
//                both variants. n = 1 is lc_attn_hybrid_decode; n > 1 runs the
//                sw prefill kernel over [the ring's keys, the new keys] with
//                (S, z) carried, so it equals n single-token steps.
// RoPE angles are the model's (rotate_half or interleaved, Llama 3 scaling),
// computed per position: no table of context length.
// Kept softmax layers (lp->softmax_layers) run the model's exact causal softmax
// attention (its sliding window, if any) over a KV cache that grows with the
// context (kv_bytes_per_token; lc_lolcats_forward allocates as it grows).
typedef struct lc_lolcats_run {
    lc_ctx ctx;                   // kernels' code path
    int n_layers, F;              // F: feature-map output dim
    lc_hybrid_cfg hybrid;         // variant / window / affine the run was made for
    int max_tokens;               // tokens per lc_lolcats_forward call
    int64_t pos;                  // tokens consumed so far
    lc_decode_state *layers;      // (L): ring + (S, z) per layer
    float *logits;                // (V) logits of the last token fed
    size_t state_bytes;           // per-sequence state: every layer's ring + S, z
    size_t bytes;                 // total allocated (state + scratch for max_tokens)
    size_t kv_bytes_per_token;    // KV cache of the kept softmax layers (lp->softmax_layers):
                                  //    bytes each token of context adds; 0 without them
    void *priv;                   // scratch (private)
} lc_lolcats_run;

// ctx NULL: the best path of this CPU. max_tokens <= 0: 1. Checks that lp fits
// m (layers, heads, head dim, feature dim <= 1024, LoRA shapes).
LCAPI lc_status lc_lolcats_run_init(lc_lolcats_run *r, const lc_ctx *ctx, const lc_model *m,
                                    const lc_lolcats *lp, int max_tokens, lc_error *err);
LCAPI void lc_lolcats_run_free(lc_lolcats_run *r);
// Empties the state (pos 0, rings and S, z zero) for a new sequence.
LCAPI void lc_lolcats_run_reset(lc_lolcats_run *r);
// Snapshot of the per-sequence state (r->pos and every layer's ring + S, z;
// not r->logits) into a caller buffer of lc_lolcats_run_snapshot_bytes bytes,
// which does not depend on how many tokens were fed (with kept softmax layers
// it also holds their KV cache, 2 Hk D floats per layer and token fed: the size
// grows with r->pos). Restoring it into the
// same run (or one made for the same model and lp) continues bit-identically
// to the run it was taken from: a shared prefix is fed once, then each
// continuation starts from the snapshot.
LCAPI size_t lc_lolcats_run_snapshot_bytes(const lc_lolcats_run *r);
LCAPI void lc_lolcats_run_snapshot(const lc_lolcats_run *r, void *buf);
// Fails (nothing changed) when buf is not a snapshot of a run of this shape.
LCAPI lc_status lc_lolcats_run_restore(lc_lolcats_run *r, const void *buf, size_t bytes,
                                       lc_error *err);
// Feeds tokens[0..n) at positions r->pos.. (see above), advances r->pos,
// writes the last token's logits to r->logits and, when logits_all is set,
// every token's (n,V). n <= r->max_tokens; lp must be the lc_lolcats the run
// was made for (same window).
LCAPI lc_status lc_lolcats_forward(const lc_model *m, const lc_lolcats *lp, lc_lolcats_run *r,
                                   const int *tokens, int n, float *logits_all /*(n,V) or NULL*/,
                                   lc_error *err);
// An lc_lolcats with identity feature maps (f <= head_dim), window factors at
// logit(0.1) and no LoRA: a model linearized without attention transfer. Its
// arrays are cut from mem (lc_lolcats_identity_floats floats), which the
// caller owns.
LCAPI size_t lc_lolcats_identity_floats(const lc_model_config *c, int f);
LCAPI void lc_lolcats_init_identity(lc_lolcats *lp, float *mem, const lc_model_config *c, int f,
                                    const lc_fmap_cfg *fmap, const lc_hybrid_cfg *hybrid);
// >>api-lolcats-infer-end

// >>api-ref
// The reference evaluation behind `lolcats ref`: one attention op with its
// feature maps, forward and (when dy or da is given) backward to every input.
enum {
    LOLCATS_OP_SOFTMAX = 0,       // softmax_attention
    LOLCATS_OP_LINEAR = 1,        // linear_attention
    LOLCATS_OP_HYBRID = 2,        // hybrid_attention
    LOLCATS_OP_MSE = 3,           // mse_loss: pred, target -> loss, d_pred
    LOLCATS_OP_XENT = 4           // xent_loss: a_pred, a_true (.., N) -> loss, d_a_pred
};

typedef struct lc_ref_case {
    int op;
    int B, H, Hk, N, D, f;
    lc_fmap_cfg fmap;
    lc_hybrid_cfg hybrid;
    float linear_eps;             // pure linear denominator eps (1e-12)
    int linear_state;             // 1: run the causal state form instead of _ref
    const float *q, *k, *v;                 // (B,H,N,D), (B,Hk,N,D) x2
    const float *wq, *wk;                   // (H,D,f) feature maps
    const float *bq, *bk;                   // (H) or NULL
    const float *wf;                        // (H) window factor logits
    const float *kv_state, *k_state;        // (B,H,F,D), (B,H,F) or NULL
    const float *dy;                        // (B,H,N,D) or NULL
    const float *da;                        // (B,H,N,N) or NULL
    const float *pred, *target;             // loss ops: n_pred values, rows of cols
    size_t n_pred;
    int cols;
    float factor;                           // loss factor (mse 1000, xent 1)
    int skip_weights;                       // 1: no attention weights a unless da is given
    const float *log_g;                     // (B,H,N) gated linear state (hybrid, >>gate) or NULL
} lc_ref_case;

// Every array is allocated by lc_ref_eval and NULL when it does not apply.
typedef struct lc_ref_out {
    float *y, *a;                           // a: softmax and hybrid only
    float *dq, *dk, *dv, *dwq, *dwk, *dbq, *dbk, *dwf, *dkv_state, *dk_state;
    float *loss, *dpred;                    // loss ops: loss[1], dpred (n_pred)
    float *dlog_g;                          // with log_g: (B,H,N)
} lc_ref_out;

LCAPI lc_ref_case lc_ref_case_default(void);
LCAPI lc_status lc_ref_eval(const lc_ctx *ctx, const lc_ref_case *rc, lc_ref_out *out,
                            lc_error *err);
LCAPI void lc_ref_out_free(lc_ref_out *out);

// The safetensors side of `lolcats ref` (names: see README "Validating a backend").
// Reads a case: tensors q, k, v, feature_map_{q,k}.weight, feature_map_{q,k}.bias,
// window_factors, kv_state, k_state, dy, da (or pred/target, a_pred/a_true) and
// __metadata__ op, variant, window, feature_map, halfspace, eps, affine, factor.
// Float data is converted into *owned (free with lc_free).
LCAPI lc_status lc_ref_case_from_st(const lc_st_file *in, lc_ref_case *rc, float **owned,
                                    lc_error *err);
// The outputs that apply, as named tensors viewing out's arrays; returns count.
#define LOLCATS_REF_MAX_OUT 16
LCAPI int lc_ref_out_tensors(const lc_ref_case *rc, const lc_ref_out *out,
                             lc_tensor list[LOLCATS_REF_MAX_OUT]);

// >>api-ref-run
// One whole `lolcats ref` run: the case read from a safetensors file (or from
// named float32 arrays, lc_ref_run), the run options, lc_ref_eval and the named
// outputs. The command and build/liblolcats.so (the Python module) both go
// through lc_ref_run_st, so they give the same bits. Run options are metadata
// keys of the case, or given in opts (key, value pairs, which win):
//   weights = 0 (default) | 1   compute and return the attention weights a
//                               (also computed when da is given)
//   scalar = 0 | 1              the scalar reference path
//   linear_state = 0 | 1        linear_attention through the causal state form
//   intermediates = 0 | 1       also phi_q, phi_k, window_max, window/linear
//                               numerators and denominators, prefix, final
//                               and decode states (see >>ref-intermediates);
//                               tensors d_final_kv_state / d_final_k_state of
//                               the case are a cotangent on the final state
//   precision = f32 (default) | f64 | bf16
//                               f64: the op in double (forward and backward,
//                               quadratic, one thread), outputs rounded once;
//                               bf16: every input rounded to bfloat16 (nearest
//                               even), then the f32 run
typedef struct lc_ref_result lc_ref_result;            // opaque
LCAPI lc_status lc_ref_run_st(const lc_ctx *ctx /*NULL: best path*/, const lc_st_file *in,
                              const char *const *opts, int n_opts, lc_ref_result **out,
                              lc_error *err);
// The same from n named tensors: names[i], data[i] (float32, contiguous),
// ndim[i], shape[i * LOLCATS_MAX_DIMS ..]; meta: n_meta key/value pairs
// (op, variant, window, ... and the run options above).
LCAPI lc_status lc_ref_run(const lc_ctx *ctx, int n, const char *const *names,
                           const float *const *data, const int *ndim, const int64_t *shape,
                           const char *const *meta, int n_meta, lc_ref_result **out,
                           lc_error *err);
LCAPI int lc_ref_result_count(const lc_ref_result *r);
LCAPI const lc_tensor *lc_ref_result_tensors(const lc_ref_result *r);  // count entries, F32
// Flat accessors (for ctypes): name, rank, one dim and the data of output i.
LCAPI const char *lc_ref_result_name(const lc_ref_result *r, int i);
LCAPI int lc_ref_result_ndim(const lc_ref_result *r, int i);
LCAPI int64_t lc_ref_result_dim(const lc_ref_result *r, int i, int d);
LCAPI const float *lc_ref_result_data(const lc_ref_result *r, int i);
// The output file's metadata (op, simd, lolcats_version): n pairs.
LCAPI const char *const *lc_ref_result_meta(const lc_ref_result *r, int *n);
LCAPI void lc_ref_result_free(lc_ref_result *r);      // NULL ok
// The edge grid (`lolcats ref --grid DIR`): lc_ref_grid_count seeded cases
// (N in {1, 2, 63, 64, 65, 127, 128, 129, 1000} for tk and sw, N < window,
// decode after a prefill at every offset mod 64, GQA 1/4/8, D 60/64/128,
// B > 1, input scales, x8 logits, ties in m_i, each feature map, affine,
// carried state, da; softmax and linear; those past N = 2w, where the
// linear terms start). lc_ref_grid_write writes case i to
// path: its inputs, the expected outputs (default path) under their names and
// the precision=f64 ones as "f64.<name>"; metadata case, seed, note.
LCAPI int lc_ref_grid_count(void);
LCAPI const char *lc_ref_grid_name(int i, char *buf, size_t n);
LCAPI lc_status lc_ref_grid_write(const char *path, int i, lc_error *err);
// >>api-ref-end
#endif // !LOLCATS_NO_FILES

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

// >>includes
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <locale.h>

// lc__map_file maps a whole file read-only. Regular files are mapped
// (mmap / MapViewOfFile); anything else (pipes, /dev/stdin, a failed map) or
// a build with LOLCATS_NO_MMAP is read into an allocated buffer instead.
#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#include <io.h>
#include <process.h>
#include <fcntl.h>
#include <sys/stat.h>
#else
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#ifndef LOLCATS_NO_MMAP
#include <sys/mman.h>
#endif
#endif

// >>config
#ifdef LOLCATS_STATIC
#define LCIMPL LCAPI
#else
#define LCIMPL
#endif

#ifndef LOLCATS_ASSERT
#include <assert.h>
#define LOLCATS_ASSERT(x) assert(x)
#endif

#if defined(LOLCATS_MALLOC) && defined(LOLCATS_REALLOC) && defined(LOLCATS_FREE)
#elif !defined(LOLCATS_MALLOC) && !defined(LOLCATS_REALLOC) && !defined(LOLCATS_FREE)
#define LOLCATS_MALLOC(sz) malloc(sz)
#define LOLCATS_REALLOC(p, sz) realloc(p, sz)
#define LOLCATS_FREE(p) free(p)
#else
#error "define all of LOLCATS_MALLOC, LOLCATS_REALLOC and LOLCATS_FREE, or none"
#endif

// OpenMP stays invisible: parallel loops over independent outputs only, so
// results do not depend on the thread count.
#if defined(_OPENMP)
#include <omp.h>
#define LC__OMP_FOR _Pragma("omp parallel for schedule(dynamic, 1)")
#define LC__OMP_FOR_STATIC _Pragma("omp parallel for schedule(static)")   // many small items
static int lc__threads(void) { return omp_get_max_threads(); }
static int lc__thread(void) { return omp_get_thread_num(); }
#else
#define LC__OMP_FOR
#define LC__OMP_FOR_STATIC
static int lc__threads(void) { return 1; }
static int lc__thread(void) { return 0; }
#endif

// LOLCATS_NO_FAST (or LOLCATS_NO_SIMD, the same build): the reference only,
// no SIMD code and no fast forms compiled; the kernel table's entries are all
// NULL (>>fast-decl).
#if defined(LOLCATS_NO_FAST) && !defined(LOLCATS_NO_SIMD)
#define LOLCATS_NO_SIMD
#endif
#if defined(LOLCATS_NO_SIMD) && !defined(LOLCATS_NO_FAST)
#define LOLCATS_NO_FAST
#endif

// LC__FAST(ctx) marks a fast-path entry: LOLCATS_COUNT_FAST builds count it in
// *ctx->fast_count (tests/test_switch.c: none on the scalar path).
#if defined(LOLCATS_COUNT_FAST) && defined(_OPENMP)
#define LC__FAST(ctx) do { if ((ctx) && (ctx)->fast_count) { _Pragma("omp atomic") (*(ctx)->fast_count)++; } } while (0)
#elif defined(LOLCATS_COUNT_FAST)
#define LC__FAST(ctx) do { if ((ctx) && (ctx)->fast_count) (*(ctx)->fast_count)++; } while (0)
#else
#define LC__FAST(ctx) ((void)0)
#endif

#if !defined(LOLCATS_NO_SIMD) && (defined(__GNUC__) || defined(__clang__)) && \
    (defined(__x86_64__) || defined(__i386__))
#define LC__X86 1
// g++ -O2 flags the intrinsic headers' own "undefined vector" idiom (__m512 __Y
// = __Y;) as (maybe-)uninitialized once inlined; the lines are the header's, so
// the warnings are silenced for the header only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
#define LC__TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define LC__TARGET_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))
#endif
#if !defined(LOLCATS_NO_SIMD) && (defined(__aarch64__) || defined(_M_ARM64))
#define LC__NEON 1
#include <arm_neon.h>
#endif

// Internal helpers of this section are static; LC__FILES_FN keeps compilers
// quiet about the ones a given program does not use.
#if defined(__GNUC__) || defined(__clang__)
#define LC__FILES_FN static __attribute__((unused))
#else
#define LC__FILES_FN static
#endif

// >>platform
LCIMPL void lc_free(void *p) { LOLCATS_FREE(p); }

#if defined(LC__X86)
#include <cpuid.h>
// F16C straight from CPUID leaf 1, ECX bit 29 (clang's __builtin_cpu_supports
// does not know "f16c").
static int lc__cpu_has_f16c(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (int)((c >> 29) & 1u);
}
#endif

// AVX2 means AVX2 + FMA + F16C (every AVX2 CPU has F16C; the matmul widens F16
// weights with it); AVX-512 means AVX-512F on top of that.
LCIMPL int lc_simd_detect(void) {
#if defined(LC__X86)
    int avx2;
    __builtin_cpu_init();
    avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && lc__cpu_has_f16c();
    if (avx2 && __builtin_cpu_supports("avx512f")) return LOLCATS_SIMD_AVX512;
    if (avx2) return LOLCATS_SIMD_AVX2;
    return LOLCATS_SIMD_SCALAR;
#elif defined(LC__NEON)
    return LOLCATS_SIMD_NEON;
#else
    return LOLCATS_SIMD_SCALAR;
#endif
}

LCIMPL void lc_ctx_init(lc_ctx *ctx) {
    memset(ctx, 0, sizeof *ctx);
    ctx->simd = lc_simd_detect();
}

LCIMPL const char *lc_simd_name(int simd) {
    switch (simd) {
    case LOLCATS_SIMD_SCALAR: return "scalar";
    case LOLCATS_SIMD_AVX2: return "avx2";
    case LOLCATS_SIMD_AVX512: return "avx512";
    case LOLCATS_SIMD_NEON: return "neon";
    default: return "unknown";
    }
}

// Random numbers: splitmix64 seeds a xoshiro256** state.
static uint64_t lc__splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

LCIMPL void lc_rng_seed(lc_rng *r, uint64_t seed) {
    int i;
    for (i = 0; i < 4; i++) r->s[i] = lc__splitmix64(&seed);
}

static uint64_t lc__rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

LCIMPL uint64_t lc_rng_u64(lc_rng *r) {
    uint64_t *s = r->s, out = lc__rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t;
    s[3] = lc__rotl(s[3], 45);
    return out;
}

LCIMPL float lc_rng_uniform(lc_rng *r) {
    return (float)(lc_rng_u64(r) >> 40) * (1.0f / 16777216.0f);
}

LCIMPL float lc_rng_normal(lc_rng *r) {
    double u1 = ((double)(lc_rng_u64(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double u2 = (double)(lc_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

// >>prims
// The primitive layer. Every kernel below calls these through a table chosen
// from ctx->simd; the scalar _ref twins are the reference (dot products
// accumulate in double). Vector loops always end in a scalar tail.
typedef struct lc__prims {
    float (*dot)(const float *a, const float *b, int n);
    void (*axpy)(float *y, float a, const float *x, int n);     // y += a x
    void (*scal)(float *x, float a, int n);                      // x *= a
    // y_i = exp(sgn x_i - sub), returns sum_i y_i (y may alias x)
    double (*exp_sum)(float *y, const float *x, float sgn, float sub, int n);
    float (*max)(const float *x, float sgn, int n);  // max_i sgn x_i; -inf when n <= 0
    // Column forms over rows x w (row-major; w a multiple of the vector width,
    // as the GEMM's register tiles are):
    // mx_c = max(mx_c, max_r x_rc);  x_rc = exp(x_rc - sub_c), sum_c += x_rc
    void (*colmax)(const float *x, float *mx, int rows, int w);
    void (*colexp)(float *x, const float *sub, float *sum, int rows, int w);
    void (*colmul)(float *x, const float *a, int rows, int w);  // x_rc *= a_c
    // Optional (NULL: lc__fmap_row composes it from the above). One row of the
    // softmax pair: out[0,f) = softmax(z), out[f,2f) = softmax(-z) when two,
    // each times the float reciprocal of its sum, floored at lo; and its
    // backward with the floor's gate: g = out >= eps ? dphi : 0,
    // dz = out1 (g1 - out1.g1) - out2 (g2 - out2.g2)  (out unfloored)
    void (*smx2)(float *out, const float *z, int f, int two, float lo);
    void (*smx2_bwd)(float *dz, const float *dphi, const float *out, int f, int two, float eps);
    // y_i = exp(x_i - sub) when y is set (y may alias x), returns sum_i in
    // double; 0 below expf's normal range (-inf included), NaN stays NaN
    double (*exp_sumd)(float *y, const float *x, float sub, int n);
} lc__prims;

static float lc__dot_ref(const float *a, const float *b, int n) {
    double s = 0;
    int i;
    for (i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return (float)s;
}

static void lc__axpy_ref(float *y, float a, const float *x, int n) {
    int i;
    for (i = 0; i < n; i++) y[i] += a * x[i];
}

static void lc__scal_ref(float *x, float a, int n) {
    int i;
    for (i = 0; i < n; i++) x[i] *= a;
}

// The maxima carry NaN: one NaN among the x gives NaN (as torch.max does), so
// a NaN input reaches every output it touches on every path (the vector forms
// OR an unordered-compare mask beside their max: x86's max returns its second
// operand when either is NaN).
static float lc__max_ref(const float *x, float sgn, int n) {
    float m = -INFINITY;
    int i;
    for (i = 0; i < n; i++) m = sgn * x[i] > m || x[i] != x[i] ? sgn * x[i] : m;
    return m;
}

static void lc__colmax_ref(const float *x, float *mx, int rows, int w) {
    int r, c;
    for (r = 0; r < rows; r++)
        for (c = 0; c < w; c++) {
            float v = x[(size_t)r * w + c];
            mx[c] = v > mx[c] || v != v ? v : mx[c];
        }
}

static void lc__colexp_ref(float *x, const float *sub, float *sum, int rows, int w) {
    int r, c;
    for (r = 0; r < rows; r++)
        for (c = 0; c < w; c++) {
            float *e = x + (size_t)r * w + c;
            *e = expf(*e - sub[c]);
            sum[c] += *e;
        }
}

static void lc__colmul_ref(float *x, const float *a, int rows, int w) {
    int r, c;
    for (r = 0; r < rows; r++)
        for (c = 0; c < w; c++) x[(size_t)r * w + c] *= a[c];
}

static double lc__exp_sum_ref(float *y, const float *x, float sgn, float sub, int n) {
    double s = 0;
    int i;
    for (i = 0; i < n; i++) {
        y[i] = expf(sgn * x[i] - sub);
        s += (double)y[i];
    }
    return s;
}

static double lc__exp_sumd_ref(float *y, const float *x, float sub, int n) {
    double s = 0;
    int i;
    for (i = 0; i < n; i++) {
        float e = expf(x[i] - sub);
        if (y) y[i] = e;
        s += (double)e;
    }
    return s;
}

// Whether all n floats are finite (NaN and Inf: exponent bits all ones).
// (exponent + 1 carries into the sign bit only from all ones, and never past
// it: so two floats at a time in a uint64, four running ORs in registers; an
// array of accumulators instead was kept in memory by GCC, 5x slower)
static int lc__all_finite(const float *x, size_t n) {
    const uint64_t m = 0x7f8000007f800000u, p = 0x0080000000800000u;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, w0, w1, w2, w3;
    uint32_t u, any = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w0, x + i, 8);
        memcpy(&w1, x + i + 2, 8);
        memcpy(&w2, x + i + 4, 8);
        memcpy(&w3, x + i + 6, 8);
        a0 |= (w0 & m) + p;
        a1 |= (w1 & m) + p;
        a2 |= (w2 & m) + p;
        a3 |= (w3 & m) + p;
    }
    for (; i < n; i++) {
        memcpy(&u, x + i, 4);
        any |= (u & 0x7f800000u) + 0x00800000u;
    }
    a0 |= a1 | a2 | a3;
    return !((any | (uint32_t)a0 | (uint32_t)(a0 >> 32)) & 0x80000000u);
}

// The context an attention kernel runs under: ctx itself, or, when one of the
// `count` inputs (pairs of const float *, size_t floats; NULL skipped) holds a
// NaN or Inf, *tmp set to ctx on the scalar path. The fast forms multiply
// whole tiles, where a masked-out weight 0 meets an Inf or NaN key, value or
// gradient (0 * inf = NaN) that the reference's loops never touch: such
// inputs take the definition, so every path gives the reference's NaN / Inf.
static const lc_ctx *lc__ctx_finite(const lc_ctx *ctx, lc_ctx *tmp, int count, ...) {
    va_list ap;
    int i, ok = 1;
    if (!ctx || ctx->simd == LOLCATS_SIMD_SCALAR) return ctx;
    va_start(ap, count);
    for (i = 0; i < count; i++) {
        const float *x = va_arg(ap, const float *);
        size_t n = va_arg(ap, size_t);
        if (ok && x && !lc__all_finite(x, n)) ok = 0;
    }
    va_end(ap);
    if (ok) return ctx;
    *tmp = *ctx;
    tmp->simd = LOLCATS_SIMD_SCALAR;
    return tmp;
}

// >>fast-decl
// Matrix products inside kernels go through the GEMM (>>gemm):
// C = alpha op(A) op(B) + beta C, F32, one thread, ws of lc__mm_ws_floats.
static size_t lc__mm_ws_floats(int M, int N, int K);
static void lc__mm(const lc_ctx *ctx, float *C, const float *A, const float *B, int M, int N,
                   int K, int ta, int tb, float alpha, float beta, size_t ldc, size_t lda,
                   size_t ldb, float *ws);
static int lc__gemm_bf16(const lc_ctx *ctx, float *C, const float *A, const void *B, lc_dtype bt,
                         int M, int N, int K, int ta, int tb, float alpha, float beta, size_t ldc,
                         size_t lda, size_t ldb);  // >>gemm-bf16

// Kernels that reuse one operand across many products pack it once and call
// the register micro-kernel directly (>>gemm): lc__pk_for gives the
// register tile (mr x nr; 0 for the scalar definition) and the micro-kernel,
// ukr(kc, pa, pb, c, ldc, alpha, beta): c (mr x nr, row stride ldc) = alpha
// pa pb + beta c (beta 0: c is not read). op(A) (rows x kc; ta: A is kc x
// rows) packs into ceil(rows/mr) panels of mr kc floats, op(B) (kc x cols; tb:
// B is cols x kc) into ceil(cols/nr) panels of nr kc, zero-padded; lc__pk_mm
// multiplies such panels (sa, sb: floats from one panel to the next) over
// whole tiles, so C needs ceil(rows/mr) mr rows, ceil(cols/nr) nr columns.
// kc <= LC__PK_KC.
#define LC__PK_KC 256
struct lc__gemm_kind;
typedef struct lc__pk {
    const struct lc__gemm_kind *kd;
    void (*ukr)(int kc, const float *pa, const float *pb, size_t ldb, float *c, size_t ldc,
                float alpha, float beta);
    int mr, nr;
} lc__pk;
#if !defined(LOLCATS_NO_FAST)
static int lc__pk_for(const lc_ctx *ctx, lc__pk *pk);
static void lc__pk_a(const lc__pk *pk, float *dst, const float *A, size_t lda, int ta, int rows,
                     int kc);
static void lc__pk_b(const lc__pk *pk, float *dst, const float *B, size_t ldb, int tb, int cols,
                     int kc);
static void lc__pk_mm(const lc__pk *pk, float *C, size_t ldc, const float *pa, size_t sa,
                      int rows, const float *pb, size_t sb, int cols, int kc, float alpha,
                      float beta);
// lc__pk_fit: C (exactly rows x cols, row stride ldc) = alpha op(A) op(B) +
// beta C, B's panel j at pb + j sb with rows ldb apart (packed: sb = nr kc,
// ldb = nr; a row-major kc x cols matrix read in place: sb = nr and its row
// stride, when cols is a multiple of nr).
static void lc__pk_fit(const lc__pk *pk, float *C, size_t ldc, const float *pa, size_t sa,
                       int rows, const float *pb, size_t sb, size_t ldb, int cols, int kc,
                       float alpha, float beta);
#endif
static int lc__pk_round(int n, int m) { return (n + m - 1) / m * m; }
#if !defined(LOLCATS_NO_FAST)

// Scratch of a product's packed operands: A of up to r rows, B of up to c
// columns, k deep.
static size_t lc__pk_floats(const lc__pk *pk, int r, int c, int k) {
    return ((size_t)lc__pk_round(r, pk->mr) + (size_t)lc__pk_round(c, pk->nr)) * (size_t)k;
}

// op(B) of kc x cols as the micro-kernel reads it: in place (*sb = nr, *ldb
// its row stride) when B is kc x cols row-major (tb 0) with whole panels,
// else packed into buf.
static const float *lc__pk_bop(const lc__pk *pk, float *buf, const float *B, size_t ldb, int tb,
                               int cols, int kc, size_t *sb, size_t *ld) {
    if (!tb && cols % pk->nr == 0) {
        *sb = (size_t)pk->nr;
        *ld = ldb;
        return B;
    }
    lc__pk_b(pk, buf, B, ldb, tb, cols, kc);
    *sb = (size_t)pk->nr * kc;
    *ld = (size_t)pk->nr;
    return buf;
}

// dst[c ldd + r] = src[r lds + c], by the kind's register transposes
static void lc__pk_tpose(const lc__pk *pk, float *dst, size_t ldd, const float *src, size_t lds,
                         int rows, int cols);
#endif

#define LC__FMAP_REP_MAX 64  // query heads per x head for the packed forms
// Fast form: one task per x head, blocks of rb rows (rb <= LC__PK_KC, a
// multiple of mr) of X packed once for its query heads and multiplied by the
// micro-kernel; W_h read in place (or packed once), W_h^T packed once for dX.
// The plan holds a block's scratch; the forms add the per-head parts.
typedef struct lc__fm_plan {
    lc__pk pk;
    int rb, fp, Dp;  // rows per block, f and D padded to whole column panels
    size_t px, z, dz, pxt, dxb;  // offsets (floats)
    size_t floats;
} lc__fm_plan;

// Fast form: flash-style tiles, transposed so that every row statistic is a
// vector over queries. The hs query heads that share a kv head are stacked
// (hs x nr queries, M in all) and packed once per tile as the right operand;
// per block of tk keys (K_c and V_c packed once for all M queries):
//   S^T = K_c Q^T / sqrt(D), written straight into the packed layout of the
//   next product; m = max(m, column max of S^T); Y^T, l rescaled by
//   exp(m_old - m) where m grew; S^T = exp(S^T - m), l += its column sums;
//   Y^T += V_c^T S^T.
// No N x N buffer; each query row is computed by one task in a fixed order,
// so the thread count does not change results.
typedef struct lc__sm_plan {
    lc__pk pk;
    int hs, tq, tk, ntile, ngrp;  // heads stacked, rows per head, keys per block, tiles, groups
    int Mq, tka, Dp;              // padded queries, keys, head width
    size_t bytes;                 // scratch of one task
} lc__sm_plan;

// The student's share of the teacher's tiles (lc_attn_transfer_fwd): tk
// windows of w = tq keys that tile the sequence, so the rows of a tile are one
// window block, whose window keys are the tile's own block and the one before.
// The tile takes those two blocks first (then, with S sinks, the sink keys
// [0, min(S, (c - 1) w)) in blocks of up to tk) and keeps what it has then: the
// window part's sum of exp(s - m) v, m and sum of exp(s - m). The linear state
// S, z of the keys before the window, [S, (c - 1) w) (S = 0 by default), of
// stacked head j and block c: states + ((b H + h0 + j) nch + c) sz
// (lc__xfer_states), or with `local` S^T (D x F), z at states + j sz
// (lc__xfer_mse, which carries them from tile to tile), where the student's
// rows go too: y, m, den at row j tq + i, not at the head's row r0 + i.
typedef struct lc__xfer {
    const lc_ctx *ctx;
    float *y, *m, *den;
    const float *phiq, *wf, *states;
    int F, affine, local;
    int sinks;     // S attention sinks: window keys [0, S) of every row, never in S, z
    size_t bytes;  // the tile's extra scratch
} lc__xfer;

// Chunked form: the prefix-state form with rows taken LC__HYB_ROWS at a time,
// so that every step is a small matrix product (lc__mm) instead of per-row
// dot / axpy loops. For a chunk of rows [r0, r1):
//   keys [kw0, r1) hold every window key of the chunk (kw0 = j0(r0)) and the
//   linear keys not yet in the state, [jA, jB) (jA = jl(r0), jB = jl(r1-1));
//   the state S, z holds keys [0, jA).
//   sc = scale Q_c K_[kw0,r1)^T             scores (masked per row below)
//   lc = phiQ_c phiK_[jA,jB)^T              linear weights inside the chunk
//   wt = gamma exp(sc - m) on window keys + lambda lc on linear keys
//   Y_c = wt V_[kw0,r1) + lambda phiQ_c S,  den = sum wt + lambda phiQ_c z
//   then S += phiK_[jA,jA')^T V_[jA,jA'), z += sum phiK up to the next chunk's jA'.
// Chunk boundaries fall on multiples of LC__HYB_ROWS in the tk block grid, so
// with w = 64 a chunk is one tk block and has no linear keys of its own.
// Cost O(N (w + F) D) like the row form, in blocks that run at GEMM speed.
// Sinks (S > 0): the sink keys before kw0 lead each chunk's block as extra
// columns (lc__hyb_nsc); with them the block must fit LC__HYB_NK columns
// (lc__hyb_sinks_fit: any S <= 192 for w = 64), else the row form.
#define LC__HYB_ROWS 64
#define LC__HYB_WMAX 128  // chunked form for windows up to this; row form above it
#define LC__HYB_NK (LC__HYB_ROWS + 2 * LC__HYB_WMAX)  // keys [kw0, r1) of a chunk
#define LC__HYB_NL (LC__HYB_ROWS + LC__HYB_WMAX)      // linear keys [jA, jB) of a chunk

typedef struct lc__hyb_buf {
    float *S, *z;          // (F,D), (F): state (forward) or its gradient (reverse)
    float *sc, *wt, *d1;   // (ROWS,NK) scores / ds, weights, dy.v
    float *lc;             // (ROWS,NL) linear weights / their gradient
    float *t, *gv;         // (ROWS,F), (ROWS,D)
    float *ws;             // lc__mm workspace
} lc__hyb_buf;

// The MSE step (lc_attn_transfer_mse). Fast form, as lc__xfer_fast: one task
// per batch and group of stacked heads runs its tiles in order, carrying each
// head's linear state (block c - 2's keys join it before tile c), so no state
// is stored. After tile c, per head, with e = y - yt and dy = 2 factor e / n
// (lc_loss_mse's gradient), all of the backward that needs only these rows
// (everything but the keys' gradient; the derivation of lc__xfer_bwd):
//   gv = dy / den, cd = -(gv . y), u = gv S^T + cd z:
//   dphiq = lambda u, dlambda += phiq . u, loss += e . e;
//   P_c = lambda gv^T phiq (D x F), p_c = lambda sum cd phiq  into work.
// Then one reverse sweep per head: G^T += P_(c+2), zg += p_(c+2) (so they hold
// the rows that read block c's keys), dphik_c = V_c G^T + zg.
typedef struct lc__xmse {
    const lc__sm_plan *pl;
    const lc__prims *P;
    lc__xfer xs;  // the tiles' student part; y, m, den, states set per task
    float *yt, *lse, *y, *m, *den, *dphiq, *Pw;
    const float *q, *k, *v, *phik, *kv;
    float *vp;  // V of each kv head as A panels (keys x D) for the sweeps, or NULL
    double *loss, *dlam;  // per batch, head and tile
    size_t kvn;
    int B, H, Hk, N, D, F, nseg;
    float c2;  // 2 factor / n
} lc__xmse;

// THE KERNEL TABLE. Which code computes a kernel is decided here and nowhere
// else: lc__kern_for(ctx) returns one static const table per SIMD level
// (>>kernels, after the fast paths), read from ctx->simd at every call, so a
// caller that sets ctx.simd = LOLCATS_SIMD_SCALAR after lc_ctx_init gets the
// scalar table. In the scalar table (and in every table of a -DLOLCATS_NO_SIMD
// or -DLOLCATS_NO_FAST build) every fast form is NULL, P holds the reference
// primitives and float_sums is 0: exactly the reference forms run. Each
// reference kernel consults its entry at ONE place, at its top:
//     if (K->X && <shape conditions> && K->X(...)) return;   // else the definition
// An int entry returns 0 when it declines (a shape it does not handle, or its
// scratch could not be allocated) before writing any output; the reference
// then runs. LOLCATS_COUNT_FAST builds count each fetch of a non-scalar table.
struct lc__gemm_kind;
typedef struct lc__kern {
    const lc__prims *P;  // primitives; the scalar table holds the _ref twins
    int float_sums;      // 1: row sums in float through P; 0: in double (reference)
    // GEMM (>>gemm): register kind of lc_gemm / lc__mm, and of the packed
    // products inside kernels (lc__pk_for); NULL: the scalar definition
    const struct lc__gemm_kind *gemm, *pk;
    float (*gemv_row)(const void *W, lc_dtype dt, size_t off, const float *x, int n);  // lc_gemv
    // lc_matmul: T < 8 rows of F32 / BF16 / F16 (>>model-matmul); GGUF block types (>>quant-gemm)
    void (*matmul)(float *y, const float *x, const void *w, lc_dtype dt, int T, int O, int I);
    void (*qmm)(float *y, const float *x, const void *w, lc_dtype dt, int T, int O, int I);
    int (*fmap_fwd)(const lc_ctx *ctx, float *phi, const float *x, const float *w,
                    const float *bias, int B, int H, int Hx, int N, int D, int f,
                    const lc_fmap_cfg *cfg);  // the packed forms (>>fmap-fast)
    int (*fmap_bwd)(const lc_ctx *ctx, float *dx, float *dw, float *dbias, const float *dphi,
                    const float *phi, const float *x, const float *w, const float *bias, int B,
                    int H, int Hx, int N, int D, int f, const lc_fmap_cfg *cfg);
    int (*softmax_fwd)(const lc_ctx *ctx, float *y, float *lse, const float *q, const float *k,
                       const float *v, int B, int H, int Hk, int N, int D);  // >>softmax-tiles
    // hybrid with work, no weights out (>>hybrid-chunk): chunked form, or the
    // prefix-state form for windows over LC__HYB_WMAX (or sinks past the blocks' room)
    void (*hybrid_fwd)(const lc_ctx *ctx, float *y, float *m, float *den, float *work,
                       const float *q, const float *k, const float *v, const float *phiq,
                       const float *phik, const float *wf, const float *kv_state,
                       const float *k_state, int B, int H, int Hk, int N, int D, int F,
                       const lc_hybrid_cfg *cfg);
    void (*hybrid_bwd)(const lc_ctx *ctx, float *dq, float *dk, float *dv, float *dphiq,
                       float *dphik, float *dwf, float *dkv_state, float *dk_state, float *work,
                       const float *dy, const float *y, const float *m, const float *den,
                       const float *q, const float *k, const float *v, const float *phiq,
                       const float *phik, const float *wf, const float *kv_state,
                       const float *k_state, int B, int H, int Hk, int N, int D, int F,
                       const lc_hybrid_cfg *cfg);
    // attention transfer (>>transfer-fused): teacher tiles with the student
    // inside, its backward from the stored states, the fused MSE step
    int (*xfer_fwd)(const lc_ctx *ctx, float *yt, float *lse, float *y, float *m, float *den,
                    float *work, const float *q, const float *k, const float *v,
                    const float *phiq, const float *phik, const float *wf, int B, int H, int Hk,
                    int N, int D, int F, const lc_hybrid_cfg *cfg);
    int (*xfer_bwd)(const lc_ctx *ctx, float *dphiq, float *dphik, float *dwf, float *work,
                    const float *dy, const float *y, const float *den, const float *v,
                    const float *phiq, const float *wf, int B, int H, int Hk, int N, int D, int F,
                    const lc_hybrid_cfg *cfg);
    int (*xfer_mse)(const lc_ctx *ctx, double *loss, float *yt, float *lse, float *y, float *m,
                    float *den, float *dphiq, float *dphik, float *dwf, float *work,
                    const float *q, const float *k, const float *v, const float *phiq,
                    const float *phik, const float *wf, int B, int H, int Hk, int N, int D,
                    int F, float factor, const lc_hybrid_cfg *cfg);
    // the model's causal prefill attention, T > 1 (>>prefill-attn)
    int (*prefill_attn)(const lc_ctx *ctx, float *y, const float *qh, const float *kc,
                        const float *vc, int H, int Hk, int T, int D, int n_ctx, int pos0,
                        int window);
    // lc_xent_fwd_bwd through P->exp_sumd (>>xent-fast)
    double (*xent)(const lc_ctx *ctx, float *dlogits, const float *logits, const int *labels, int T,
                   int V, int *n_counted);
    // the LoRA products of lc_linear_fwd / _bwd as GEMMs (>>lora-fast; 0: declined)
    int (*lora_fwd)(const lc_ctx *ctx, float *y, float *xa, const float *x, const float *lora_a,
                    const float *lora_b, float lora_scale, int r, int T, int O, int I);
    int (*lora_bwd)(const lc_ctx *ctx, float *dx, float *dlora_a, float *dlora_b, const float *dy,
                    const float *x, const float *xa, const float *lora_a, const float *lora_b,
                    float lora_scale, int r, int T, int O, int I);
    // >>gemm-bf16: lc_gemm in the bf16 mode (0: declined, float32 runs)
    int (*gemm_bf16)(const lc_ctx *ctx, float *C, const float *A, const void *B, lc_dtype bt,
                     int M, int N, int K, int ta, int tb, float alpha, float beta, size_t ldc,
                     size_t lda, size_t ldb);
} lc__kern;
static const lc__kern *lc__kern_for(const lc_ctx *ctx);
static const lc__prims *lc__prims_for(const lc_ctx *ctx) { return lc__kern_for(ctx)->P; }
static double lc__xent(const lc_ctx *ctx, float *dlogits, const float *logits, const int *labels, int T, int V,
                       int *n_counted);  // >>blocks

// The fast forms behind the table (defined in the fast-path sections after
// the reference implementation; none in a LOLCATS_NO_FAST build).
static size_t lc__hyb_head_floats(int D, int F, lc__hyb_buf *b, float *base);  // sizes work
#if !defined(LOLCATS_NO_FAST)
static int lc__fm_plan_for(const lc_ctx *ctx, lc__fm_plan *p, int D, int f, int bwd, int dx);
static void lc__fmap_fwd_packed(const lc__fm_plan *pl, const lc__prims *P, int fast, float *ws,
                                float *pw, float *phi, const float *x, const float *w,
                                const float *bias, int H, int Hx, int bx, int N, int D, int f,
                                const lc_fmap_cfg *cfg);
static size_t lc__fmap_bwd_floats(const lc__fm_plan *pl, int rep, int D, int f);
static void lc__fmap_bwd_packed(const lc__fm_plan *pl, const lc__prims *P, int fast, float *ws,
                                float *dx, float *dw, float *dbias, const float *dphi,
                                const float *phi, const float *x, const float *w,
                                const float *bias, int B, int H, int Hx, int N, int D, int f,
                                int xh, const lc_fmap_cfg *cfg);
static int lc__sm_plan_for(const lc_ctx *ctx, lc__sm_plan *p, int rep, int N, int D);
static int lc__softmax_tiles(const lc__sm_plan *pl, const lc__prims *P, float *y, float *lse,
                             const float *q, const float *k, const float *v, int B, int H,
                             int Hk, int N, int D, const lc__xfer *xs);
static void lc__hybrid_fwd_chunk(const lc_ctx *ctx, float *y, float *m, float *den, float *work,
                                 const float *q, const float *k, const float *v,
                                 const float *phiq, const float *phik, const float *wf,
                                 const float *kv_state, const float *k_state, int B, int H,
                                 int Hk, int N, int D, int F, const lc_hybrid_cfg *cfg);
static void lc__hybrid_bwd_chunk(const lc_ctx *ctx, float *dq, float *dk, float *dv,
                                 float *dphiq, float *dphik, float *dwf, float *dkv_state,
                                 float *dk_state, float *work, const float *dy, const float *y,
                                 const float *den, const float *q, const float *k,
                                 const float *v, const float *phiq, const float *phik,
                                 const float *wf, const float *kv_state, const float *k_state,
                                 int B, int H, int Hk, int N, int D, int F,
                                 const lc_hybrid_cfg *cfg);
static void lc__gate_fwd_chunk(const lc_ctx *ctx, const lc_hybrid_args *x);  // >>hybrid-chunk
static void lc__gate_bwd_chunk(const lc_ctx *ctx, const lc_hybrid_args *x);
static int lc__hyb_sinks_fit(const lc_hybrid_cfg *cfg, int N);
static int lc__xfer_fast(const lc_ctx *ctx, lc__sm_plan *pl, int H, int Hk, int N, int D,
                         const lc_hybrid_cfg *cfg);
static void lc__xfer_init(lc__xfer *xs, const lc_ctx *ctx, const lc__sm_plan *pl, float *y,
                          float *m, float *den, const float *phiq, const float *wf,
                          const float *states, int D, int F, int local, const lc_hybrid_cfg *cfg);
static void lc__xfer_states(const lc_ctx *ctx, float *states, float *work, const float *phik,
                            const float *v, int B, int H, int Hk, int N, int D, int F, int S0);
static void lc__xfer_bwd(const lc_ctx *ctx, float *dphiq, float *dphik, float *dwf,
                         float *work, const float *states, const float *dy, const float *y,
                         const float *den, const float *v, const float *phiq, const float *wf,
                         int B, int H, int Hk, int N, int D, int F, const lc_hybrid_cfg *cfg);
static int lc__xfer_mse_fast(const lc_ctx *ctx, const lc__sm_plan *pl, double *loss, float *yt,
                             float *lse, float *y, float *m, float *den, float *dphiq,
                             float *dphik, float *dwf, float *work, const float *q,
                             const float *k, const float *v, const float *phiq,
                             const float *phik, const float *wf, int B, int H, int Hk, int N,
                             int D, int F, float factor, const lc_hybrid_cfg *cfg);
static int lc__model_attn_tiled(const lc_ctx *ctx, float *y, const float *qh, const float *kc,
                                const float *vc, int H, int Hk, int T, int D, int n_ctx,
                                int pos0, int window);
#endif

// >>fmap
// phi = clamp_min(act(x W_h + b_h), eps), per query head h; x head h / (H/Hx).
// Mirrors FeatureMap / HedgehogFeatureMap in src/model/feature_map.py.

LCIMPL lc_fmap_cfg lc_fmap_cfg_default(void) {
    lc_fmap_cfg c;
    c.act = LOLCATS_FMAP_SOFTMAX_DIM;
    c.halfspace = 0;
    c.eps = 1e-12f;
    return c;
}

static const char *const lc__fmap_names[] = {"softmax_dim", "exp_dim", "pos_elu", "relu"};

LCIMPL int lc_fmap_act_parse(const char *name) {
    int i;
    for (i = 0; i < 4; i++)
        if (!strcmp(name, lc__fmap_names[i])) return i;
    return -1;
}

LCIMPL const char *lc_fmap_act_name(lc_fmap_act act) {
    return (int)act >= 0 && (int)act < 4 ? lc__fmap_names[act] : "unknown";
}

static int lc__fmap_twohalves(const lc_fmap_cfg *cfg) {
    return !cfg->halfspace &&
           (cfg->act == LOLCATS_FMAP_SOFTMAX_DIM || cfg->act == LOLCATS_FMAP_EXP_DIM);
}

LCIMPL int lc_fmap_out_dim(const lc_fmap_cfg *cfg, int f) {
    return lc__fmap_twohalves(cfg) ? 2 * f : f;
}

LCIMPL void lc_fmap_init_identity(float *w, int H, int D, int f) {
    int h, d;
    memset(w, 0, sizeof(float) * (size_t)H * (size_t)D * (size_t)f);
    for (h = 0; h < H; h++)
        for (d = 0; d < D && d < f; d++) w[((size_t)h * D + d) * f + d] = 1.0f;
}

LCIMPL void lc_fmap_init_kaiming(float *w, float *bias, int H, int D, int f, lc_rng *rng) {
    // nn.init.kaiming_uniform_ with its defaults (a = 0, gain sqrt(2)) on a
    // (H,D,f) tensor: fan_in = D*f, bound = sqrt(2) * sqrt(3 / fan_in).
    size_t i, n = (size_t)H * D * f;
    float bound = (float)sqrt(6.0 / ((double)D * f));
    for (i = 0; i < n; i++) w[i] = (2.0f * lc_rng_uniform(rng) - 1.0f) * bound;
    if (bias) {  // bias (1,H,1,1): fan_in = H
        float bb = (float)sqrt(6.0 / (double)H);
        for (i = 0; i < (size_t)H; i++) bias[i] = (2.0f * lc_rng_uniform(rng) - 1.0f) * bb;
    }
}

// z = x W + b: (D) x (D,f) -> (f)
static void lc__fmap_project(const lc__prims *P, float *z, const float *x, const float *w,
                             float b, int D, int f) {
    int d, c;
    for (c = 0; c < f; c++) z[c] = 0;
    for (d = 0; d < D; d++) P->axpy(z, x[d], w + (size_t)d * f, f);
    for (c = 0; c < f; c++) z[c] += b;
}

// Activation of one row before the clamp: out (F) from z (f). fast: the SIMD
// paths normalise in float (times the reciprocal), the reference in double.
static void lc__fmap_act(const lc__prims *P, int fast, float *out, const float *z, int f,
                         const lc_fmap_cfg *cfg) {
    int c, two = lc__fmap_twohalves(cfg);
    if (cfg->act == LOLCATS_FMAP_SOFTMAX_DIM || cfg->act == LOLCATS_FMAP_EXP_DIM) {
        float mx = P->max(z, 1.0f, f), mn = -P->max(z, -1.0f, f);
        double s1, s2 = 0;
        s1 = P->exp_sum(out, z, 1.0f, mx, f);               // exp(z - max z)
        if (two) s2 = P->exp_sum(out + f, z, -1.0f, -mn, f);  // exp(min z - z)
        if (cfg->act == LOLCATS_FMAP_SOFTMAX_DIM && fast) {
            float r1 = (float)(1.0 / s1), r2 = two ? (float)(1.0 / s2) : 0.0f;
            for (c = 0; c < f; c++) out[c] *= r1;
            if (two)
                for (c = 0; c < f; c++) out[f + c] *= r2;
        } else if (cfg->act == LOLCATS_FMAP_SOFTMAX_DIM) {
            for (c = 0; c < f; c++) {
                out[c] = (float)((double)out[c] / s1);
                if (two) out[f + c] = (float)((double)out[f + c] / s2);
            }
        }
    } else if (cfg->act == LOLCATS_FMAP_POS_ELU) {
        for (c = 0; c < f; c++) out[c] = z[c] > 0 ? 1.0f + z[c] : 1.0f + expm1f(z[c]);
    } else {
        for (c = 0; c < f; c++) out[c] = z[c] > 0 ? z[c] : 0.0f;
    }
}

// phi (F) of one row from z (f): the activation, floored at eps.
static void lc__fmap_row(const lc__prims *P, int fast, float *phi, const float *z, int f,
                         const lc_fmap_cfg *cfg) {
    int c, F = lc_fmap_out_dim(cfg, f);
    if (fast && cfg->act == LOLCATS_FMAP_SOFTMAX_DIM && P->smx2) {
        P->smx2(phi, z, f, F > f, cfg->eps);
        return;
    }
    lc__fmap_act(P, fast, phi, z, f, cfg);
    for (c = 0; c < F; c++)
        if (phi[c] < cfg->eps) phi[c] = cfg->eps;
}

// Rows per block for the blocked projections (Z = X W_h as one small GEMM per
// block), sized so that Z, dZ and the GEMM workspace fit LC__FMAP_STACK floats
// on the stack; 0: too large, row by row.
#define LC__FMAP_STACK 24576
static int lc__fmap_rows(int D, int f) {
    int r;
    for (r = 64; r >= 8; r /= 2) {
        size_t a = lc__mm_ws_floats(r, f, D), b = lc__mm_ws_floats(D, f, r);
        size_t c = lc__mm_ws_floats(r, D, f), ws = a > b ? a : b;
        ws = c > ws ? c : ws;
        if (2 * (size_t)r * f + ws <= LC__FMAP_STACK) return r;
    }
    return 0;
}

LCIMPL void lc_fmap_fwd(const lc_ctx *ctx, float *phi, const float *x, const float *w,
                        const float *bias, int B, int H, int Hx, int N, int D, int f,
                        const lc_fmap_cfg *cfg) {
    const lc__kern *K = lc__kern_for(ctx);
    const lc__prims *P = K->P;
    int F = lc_fmap_out_dim(cfg, f), bx, rb = lc__fmap_rows(D, f), rep = H / Hx;
    int fast = K->float_sums;
    LOLCATS_ASSERT(H % Hx == 0 && f <= 1024);
    if (K->fmap_fwd && N > 1 && rep <= LC__FMAP_REP_MAX &&
        K->fmap_fwd(ctx, phi, x, w, bias, B, H, Hx, N, D, f, cfg))
        return;  // the packed form (>>fmap-fast)
    LC__OMP_FOR
    for (bx = 0; bx < B * Hx; bx++) {  // one task per x head and its query heads
        int b = bx / Hx, xh = bx % Hx, i, c, i0, r;
        const float *x_bh = x + (size_t)bx * N * D;
        float zbuf[1024], stk[LC__FMAP_STACK];
        for (r = 0; r < rep; r++) {
            int h = xh * rep + r;
            const float *w_h = w + (size_t)h * D * f;
            size_t bh = (size_t)b * H + h;
            float bb = bias ? bias[h] : 0.0f;
            for (i0 = 0; i0 < N; i0 += rb ? rb : 1) {
                int nr = rb ? (N - i0 < rb ? N - i0 : rb) : 1;
                float *Z = rb ? stk : zbuf;
                if (rb) {  // Z (nr,f) = X (nr,D) W_h (D,f) + b
                    lc__mm(ctx, Z, x_bh + (size_t)i0 * D, w_h, nr, f, D, 0, 0, 1.0f, 0.0f,
                           (size_t)f, (size_t)D, (size_t)f, stk + (size_t)nr * f);
                    if (bias)
                        for (c = 0; c < nr * f; c++) Z[c] += bb;
                } else {
                    lc__fmap_project(P, Z, x_bh + (size_t)i0 * D, w_h, bb, D, f);
                }
                for (i = i0; i < i0 + nr; i++)
                    lc__fmap_row(P, fast, phi + (bh * N + i) * F, Z + (size_t)(i - i0) * f, f,
                                 cfg);
            }
        }
    }
}

// Backward of one row: dz (f) from dout (F, already gated by the clamp).
// softmax: dz = p * (dp - sum p dp); exp_dim: the max / min subtracted in the
// forward gets gradient too (shared equally among ties, as torch.amax does).
// fast (SIMD paths): the softmax sums are vector dots and the rest is float.
static void lc__fmap_act_bwd(const lc__prims *P, int fast, float *dz, const float *dout,
                             const float *out, const float *z, int f, const lc_fmap_cfg *cfg) {
    int c, two = lc__fmap_twohalves(cfg);
    for (c = 0; c < f; c++) dz[c] = 0;
    if (cfg->act == LOLCATS_FMAP_SOFTMAX_DIM && fast) {
        float s1 = P->dot(out, dout, f), s2 = two ? P->dot(out + f, dout + f, f) : 0.0f;
        for (c = 0; c < f; c++) dz[c] = out[c] * (dout[c] - s1);
        if (two)
            for (c = 0; c < f; c++) dz[c] -= out[f + c] * (dout[f + c] - s2);
    } else if (cfg->act == LOLCATS_FMAP_SOFTMAX_DIM) {
        double s1 = 0, s2 = 0;
        for (c = 0; c < f; c++) {
            s1 += (double)out[c] * (double)dout[c];
            if (two) s2 += (double)out[f + c] * (double)dout[f + c];
        }
        for (c = 0; c < f; c++) {
            dz[c] = (float)((double)out[c] * ((double)dout[c] - s1));
            if (two) dz[c] -= (float)((double)out[f + c] * ((double)dout[f + c] - s2));
        }
    } else if (cfg->act == LOLCATS_FMAP_EXP_DIM) {
        float mx = z[0], mn = z[0];
        double gmx = 0, gmn = 0;
        int nmx = 0, nmn = 0;
        for (c = 1; c < f; c++) {
            if (z[c] > mx) mx = z[c];
            if (z[c] < mn) mn = z[c];
        }
        for (c = 0; c < f; c++) {
            float t = dout[c] * out[c];
            dz[c] += t;
            gmx -= (double)t;
            if (two) {
                float t2 = dout[f + c] * out[f + c];
                dz[c] -= t2;
                gmn += (double)t2;
            }
            nmx += z[c] == mx;
            nmn += z[c] == mn;
        }
        for (c = 0; c < f; c++) {
            if (z[c] == mx) dz[c] += (float)(gmx / nmx);
            if (two && z[c] == mn) dz[c] += (float)(gmn / nmn);
        }
    } else if (cfg->act == LOLCATS_FMAP_POS_ELU) {
        for (c = 0; c < f; c++) dz[c] = z[c] > 0 ? dout[c] : dout[c] * expf(z[c]);
    } else {
        for (c = 0; c < f; c++) dz[c] = z[c] > 0 ? dout[c] : 0.0f;
    }
}

// dz (f) of one row from z (f) and dphi (F): the activation again (into out,
// F floats of scratch), the floor's gate, the activation's backward.
static void lc__fmap_row_bwd(const lc__prims *P, int fast, float *dz, const float *dphi,
                             const float *z, float *out, int f, const lc_fmap_cfg *cfg) {
    float dout[2048];
    int c, F = lc_fmap_out_dim(cfg, f);
    if (fast && cfg->act == LOLCATS_FMAP_SOFTMAX_DIM && P->smx2) {
        P->smx2(out, z, f, F > f, -INFINITY);
        P->smx2_bwd(dz, dphi, out, f, F > f, cfg->eps);
        return;
    }
    lc__fmap_act(P, fast, out, z, f, cfg);
    for (c = 0; c < F; c++) dout[c] = out[c] >= cfg->eps ? dphi[c] : 0.0f;
    lc__fmap_act_bwd(P, fast, dz, dout, out, z, f, cfg);
}

// dz of one softmax_dim row from the forward's phi instead of z: above the
// floor phi is the softmax itself; on it the gradient is gated off and eps
// stands in for the softmax value s < eps under it. That moves dz_c by
// (eps - s) sum_k s_k g_k, at most eps max|g| against terms of about max|g| / f:
// below float rounding when eps f <= 1e-9 (the default 1e-12 with f up to
// 1000), the only case that takes this form (lc__fmap_phi_ok).
static int lc__fmap_phi_ok(const lc_fmap_cfg *cfg, int f) {
    return cfg->act == LOLCATS_FMAP_SOFTMAX_DIM && cfg->eps * (float)f <= 1e-9f;
}

static void lc__fmap_row_bwd_phi(const lc__prims *P, float *dz, const float *dphi,
                                 const float *phi, int f, const lc_fmap_cfg *cfg) {
    float gate = nextafterf(cfg->eps, INFINITY), dout[2048];
    int c, F = lc_fmap_out_dim(cfg, f);
    if (P->smx2_bwd) {
        P->smx2_bwd(dz, dphi, phi, f, F > f, gate);
        return;
    }
    for (c = 0; c < F; c++) dout[c] = phi[c] >= gate ? dphi[c] : 0.0f;
    lc__fmap_act_bwd(P, 1, dz, dout, phi, NULL, f, cfg);
}

static void lc__fmap_bwd(const lc_ctx *ctx, float *dx, float *dw, float *dbias,
                         const float *dphi, const float *phi, const float *x, const float *w,
                         const float *bias, int B, int H, int Hx, int N, int D, int f,
                         const lc_fmap_cfg *cfg) {
    const lc__kern *K = lc__kern_for(ctx);
    const lc__prims *P = K->P;
    int F = lc_fmap_out_dim(cfg, f), xh, rep = H / Hx, rb = lc__fmap_rows(D, f);
    int fast = K->float_sums;
    LOLCATS_ASSERT(H % Hx == 0 && f <= 1024);
    if (K->fmap_bwd && N > 1 && rep <= LC__FMAP_REP_MAX &&
        K->fmap_bwd(ctx, dx, dw, dbias, dphi, lc__fmap_phi_ok(cfg, f) ? phi : NULL, x, w, bias,
                    B, H, Hx, N, D, f, cfg))
        return;  // the packed form (>>fmap-fast)
    // one task per x head: it owns dx of that head and dw of its query heads.
    // Blocks of rb rows: Z = X W_h, then row by row the activation's backward
    // into dZ, then dW_h += X^T dZ and dX += dZ W_h^T as two small GEMMs.
    LC__OMP_FOR
    for (xh = 0; xh < Hx; xh++) {
        float zrow[1024], out[2048], dzrow[1024], stk[LC__FMAP_STACK];
        int b, r, i, c, d, i0;
        for (r = 0; r < rep; r++) {
            int h = xh * rep + r;
            const float *w_h = w + (size_t)h * D * f;
            float bb = bias ? bias[h] : 0.0f;
            for (b = 0; b < B; b++) {
                const float *x_bh = x + ((size_t)b * Hx + xh) * N * D;
                float *dx_bh = dx ? dx + ((size_t)b * Hx + xh) * N * D : NULL;
                for (i0 = 0; i0 < N; i0 += rb ? rb : 1) {
                    int nr = rb ? (N - i0 < rb ? N - i0 : rb) : 1;
                    float *Z = rb ? stk : zrow, *dZ = rb ? stk + (size_t)nr * f : dzrow;
                    float *ws = stk + 2 * (size_t)nr * f;
                    if (rb) {
                        lc__mm(ctx, Z, x_bh + (size_t)i0 * D, w_h, nr, f, D, 0, 0, 1.0f, 0.0f,
                               (size_t)f, (size_t)D, (size_t)f, ws);
                        if (bias)
                            for (c = 0; c < nr * f; c++) Z[c] += bb;
                    } else {
                        lc__fmap_project(P, Z, x_bh + (size_t)i0 * D, w_h, bb, D, f);
                    }
                    for (i = i0; i < i0 + nr; i++) {
                        const float *dphi_bhi = dphi + (((size_t)b * H + h) * N + i) * F;
                        const float *z = Z + (size_t)(i - i0) * f;
                        float *dz = dZ + (size_t)(i - i0) * f;
                        lc__fmap_row_bwd(P, fast, dz, dphi_bhi, z, out, f, cfg);
                        if (dbias) {
                            double sb = 0;
                            for (c = 0; c < f; c++) sb += (double)dz[c];
                            dbias[h] += (float)sb;
                        }
                        if (!rb) {
                            const float *x_bi = x_bh + (size_t)i * D;
                            if (dw)
                                for (d = 0; d < D; d++)
                                    P->axpy(dw + (size_t)h * D * f + (size_t)d * f, x_bi[d], dz, f);
                            if (dx_bh)
                                for (d = 0; d < D; d++)
                                    dx_bh[(size_t)i * D + d] += P->dot(w_h + (size_t)d * f, dz, f);
                        }
                    }
                    if (rb && dw)  // dW_h (D,f) += X^T (D,nr) dZ (nr,f)
                        lc__mm(ctx, dw + (size_t)h * D * f, x_bh + (size_t)i0 * D, dZ, D, f, nr,
                               1, 0, 1.0f, 1.0f, (size_t)f, (size_t)D, (size_t)f, ws);
                    if (rb && dx_bh)  // dX (nr,D) += dZ (nr,f) W_h^T (f,D)
                        lc__mm(ctx, dx_bh + (size_t)i0 * D, dZ, w_h, nr, D, f, 0, 1, 1.0f, 1.0f,
                               (size_t)D, (size_t)f, (size_t)f, ws);
                }
            }
        }
    }
}

LCIMPL void lc_fmap_bwd(const lc_ctx *ctx, float *dx, float *dw, float *dbias,
                        const float *dphi, const float *x, const float *w, const float *bias,
                        int B, int H, int Hx, int N, int D, int f, const lc_fmap_cfg *cfg) {
    lc__fmap_bwd(ctx, dx, dw, dbias, dphi, NULL, x, w, bias, B, H, Hx, N, D, f, cfg);
}

LCIMPL void lc_fmap_bwd_phi(const lc_ctx *ctx, float *dx, float *dw, float *dbias,
                            const float *dphi, const float *phi, const float *x, const float *w,
                            const float *bias, int B, int H, int Hx, int N, int D, int f,
                            const lc_fmap_cfg *cfg) {
    lc__fmap_bwd(ctx, dx, dw, dbias, dphi, phi, x, w, bias, B, H, Hx, N, D, f, cfg);
}

// >>attn-softmax
// Causal softmax attention, the teacher (LolcatsLinearAttention's softmax path):
//   s_ij = q_i . k_j / sqrt(D) (j <= i), a_i = softmax(s_i), y_i = sum_j a_ij v_j
// Saves lse_i = m_i + log sum_j exp(s_ij - m_i). Cost O(B H N^2 D).

static float lc__attn_scale(int D) { return (float)(1.0 / sqrt((double)D)); }

// Row-by-row reference of query rows [i0, i1) of one head.
static void lc__softmax_rows(const lc__prims *P, float *y_bh, float *lse_bh, const float *q_bh,
                             const float *k_bg, const float *v_bg, int i0, int i1, int D,
                             float scale) {
    int i, j, d;
    for (i = i0; i < i1; i++) {
        const float *q_bhi = q_bh + (size_t)i * D;
        float *y_bhi = y_bh + (size_t)i * D, m = -INFINITY;
        double sum = 0;
        for (j = 0; j <= i; j++) {
            float s = P->dot(q_bhi, k_bg + (size_t)j * D, D) * scale;
            if (s > m) m = s;
        }
        for (d = 0; d < D; d++) y_bhi[d] = 0;
        for (j = 0; j <= i; j++) {
            float e = expf(P->dot(q_bhi, k_bg + (size_t)j * D, D) * scale - m);
            sum += (double)e;
            P->axpy(y_bhi, e, v_bg + (size_t)j * D, D);
        }
        for (d = 0; d < D; d++) y_bhi[d] = (float)((double)y_bhi[d] / sum);
        if (lse_bh) lse_bh[i] = m + (float)log(sum);
    }
}

static float lc__sigmoid(float x);

LCIMPL void lc_attn_softmax_fwd(const lc_ctx *ctx, float *y, float *lse, const float *q,
                                const float *k, const float *v, int B, int H, int Hk, int N,
                                int D) {
    lc_ctx ref_;
    const lc__prims *P;
    float scale = lc__attn_scale(D);
    const lc__kern *K;
    int bh;
    ctx = lc__ctx_finite(ctx, &ref_, 3, q, (size_t)B * H * N * D, k, (size_t)B * Hk * N * D, v, (size_t)B * Hk * N * D);
    K = lc__kern_for(ctx);
    P = K->P;
    LOLCATS_ASSERT(H % Hk == 0);
    if (K->softmax_fwd && N > 0 && K->softmax_fwd(ctx, y, lse, q, k, v, B, H, Hk, N, D))
        return;  // flash-style tiles (>>softmax-tiles)
    LC__OMP_FOR
    for (bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H, g = h / (H / Hk);
        lc__softmax_rows(P, y + (size_t)bh * N * D, lse ? lse + (size_t)bh * N : NULL,
                         q + (size_t)bh * N * D, k + ((size_t)b * Hk + g) * N * D,
                         v + ((size_t)b * Hk + g) * N * D, 0, N, D, scale);
    }
}

LCIMPL void lc_attn_softmax_weights(const lc_ctx *ctx, float *a, const float *q, const float *k,
                                    int B, int H, int Hk, int N, int D) {
    const lc__prims *P = lc__prims_for(ctx);
    float scale = lc__attn_scale(D);
    int bh;
    LC__OMP_FOR
    for (bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H, g = h / (H / Hk), i, j;
        const float *k_bg = k + ((size_t)b * Hk + g) * N * D;
        for (i = 0; i < N; i++) {
            const float *q_bhi = q + (((size_t)b * H + h) * N + i) * D;
            float *a_bhi = a + (((size_t)b * H + h) * N + i) * N;
            float m = -INFINITY;
            double sum = 0;
            for (j = 0; j <= i; j++) {
                a_bhi[j] = P->dot(q_bhi, k_bg + (size_t)j * D, D) * scale;
                if (a_bhi[j] > m) m = a_bhi[j];
            }
            for (j = 0; j <= i; j++) {
                a_bhi[j] = expf(a_bhi[j] - m);
                sum += (double)a_bhi[j];
            }
            for (j = 0; j <= i; j++) a_bhi[j] = (float)((double)a_bhi[j] / sum);
            for (j = i + 1; j < N; j++) a_bhi[j] = 0;
        }
    }
}

// Backward: with p_ij = exp(s_ij - lse_i), dp_ij = dy_i . v_j (+ da_ij),
//   ds_ij = p_ij (dp_ij - sum_l p_il dp_il),  sum_l p_il dy_i.v_l = dy_i . y_i
//   dq_i += sum_j ds_ij k_j / sqrt(D); dk_j += ds_ij q_i / sqrt(D); dv_j += p_ij dy_i
// One task per (b, kv head) owns dk, dv of that head (no races under GQA).
LCIMPL void lc_attn_softmax_bwd(const lc_ctx *ctx, float *dq, float *dk, float *dv,
                                const float *dy, const float *da, const float *y,
                                const float *lse, const float *q, const float *k,
                                const float *v, int B, int H, int Hk, int N, int D) {
    lc_ctx ref_;
    const lc__prims *P;
    float scale = lc__attn_scale(D);
    int bg, rep = H / Hk;
    ctx = lc__ctx_finite(ctx, &ref_, 4, q, (size_t)B * H * N * D, k, (size_t)B * Hk * N * D, v, (size_t)B * Hk * N * D, dy, (size_t)B * H * N * D);
    P = lc__prims_for(ctx);
    LC__OMP_FOR
    for (bg = 0; bg < B * Hk; bg++) {
        int b = bg / Hk, g = bg % Hk, r, i, j;
        const float *k_bg = k + ((size_t)b * Hk + g) * N * D;
        const float *v_bg = v + ((size_t)b * Hk + g) * N * D;
        float *dk_bg = dk + ((size_t)b * Hk + g) * N * D;
        float *dv_bg = dv + ((size_t)b * Hk + g) * N * D;
        for (r = 0; r < rep; r++) {
            int h = g * rep + r;
            for (i = 0; i < N; i++) {
                size_t row = ((size_t)b * H + h) * N + i;
                const float *q_bhi = q + row * D, *dy_bhi = dy + row * D;
                const float *da_bhi = da ? da + row * N : NULL;
                float *dq_bhi = dq + row * D;
                float l = lse[row];
                double dsum = (double)P->dot(dy_bhi, y + row * D, D);
                if (da_bhi) {
                    double t = 0;
                    for (j = 0; j <= i; j++)
                        t += (double)expf(P->dot(q_bhi, k_bg + (size_t)j * D, D) * scale - l) * (double)da_bhi[j];
                    dsum += t;
                }
                for (j = 0; j <= i; j++) {
                    const float *k_bgj = k_bg + (size_t)j * D;
                    float p = expf(P->dot(q_bhi, k_bgj, D) * scale - l);
                    float dp = P->dot(dy_bhi, v_bg + (size_t)j * D, D) + (da_bhi ? da_bhi[j] : 0.0f);
                    float ds = (float)((double)p * ((double)dp - dsum)) * scale;
                    P->axpy(dq_bhi, ds, k_bgj, D);
                    P->axpy(dk_bg + (size_t)j * D, ds, q_bhi, D);
                    P->axpy(dv_bg + (size_t)j * D, p, dy_bhi, D);
                }
            }
        }
    }
}

// >>attn-linear
// Pure linear attention (attention_type lolcats_llama), quadratic form:
//   A_ij = phiq_i . phik_j (j <= i), den_i = sum_j A_ij + eps,
//   y_i = sum_j A_ij v_j / den_i                      (no 1/sqrt(D))
// Mirrors quadratic_attention() in linear_attention.py. Saves den.

LCIMPL void lc_attn_linear_fwd(const lc_ctx *ctx, float *y, float *den, const float *phiq,
                               const float *phik, const float *v, int B, int H, int Hk, int N,
                               int F, int D, float eps) {
    const lc__prims *P = lc__prims_for(ctx);
    int bh;
    LC__OMP_FOR
    for (bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H, g = h / (H / Hk), i, j, d;
        const float *v_bg = v + ((size_t)b * Hk + g) * N * D;
        const float *phik_bh = phik + ((size_t)b * H + h) * N * F;
        for (i = 0; i < N; i++) {
            size_t row = ((size_t)b * H + h) * N + i;
            const float *phiq_bhi = phiq + row * F;
            float *y_bhi = y + row * D;
            double sum = 0;
            float dn;
            for (d = 0; d < D; d++) y_bhi[d] = 0;
            for (j = 0; j <= i; j++) {
                float A = P->dot(phiq_bhi, phik_bh + (size_t)j * F, F);
                sum += (double)A;
                P->axpy(y_bhi, A, v_bg + (size_t)j * D, D);
            }
            dn = (float)sum + eps;
            for (d = 0; d < D; d++) y_bhi[d] /= dn;
            if (den) den[row] = dn;
        }
    }
}

// Backward of y_i = num_i / den_i:  g_i = dy_i / den_i, c_i = -(dy_i . y_i) / den_i,
//   dA_ij = g_i . v_j + c_i;  dphiq_i += dA_ij phik_j;  dphik_j += dA_ij phiq_i;
//   dv_j += A_ij g_i.  One task per (b, kv head).
LCIMPL void lc_attn_linear_bwd(const lc_ctx *ctx, float *dphiq, float *dphik, float *dv,
                               const float *dy, const float *y, const float *den,
                               const float *phiq, const float *phik, const float *v, int B,
                               int H, int Hk, int N, int F, int D, float eps) {
    const lc__prims *P = lc__prims_for(ctx);
    int bg, rep = H / Hk;
    (void)eps;
    LC__OMP_FOR
    for (bg = 0; bg < B * Hk; bg++) {
        int b = bg / Hk, g = bg % Hk, r, i, j, d;
        const float *v_bg = v + ((size_t)b * Hk + g) * N * D;
        float *dv_bg = dv + ((size_t)b * Hk + g) * N * D;
        float gbuf[1024];
        LOLCATS_ASSERT(D <= 1024);
        for (r = 0; r < rep; r++) {
            int h = g * rep + r;
            const float *phik_bh = phik + ((size_t)b * H + h) * N * F;
            float *dphik_bh = dphik + ((size_t)b * H + h) * N * F;
            for (i = 0; i < N; i++) {
                size_t row = ((size_t)b * H + h) * N + i;
                const float *phiq_bhi = phiq + row * F, *dy_bhi = dy + row * D;
                float *dphiq_bhi = dphiq + row * F;
                float dyy = P->dot(dy_bhi, y + row * D, D), dn = den[row];
                for (d = 0; d < D; d++) gbuf[d] = dy_bhi[d] / dn;
                for (j = 0; j <= i; j++) {
                    const float *phik_bhj = phik_bh + (size_t)j * F;
                    float A = P->dot(phiq_bhi, phik_bhj, F);
                    // (dy.v_j - dy.y_i) / den: cancel before dividing, as autograd does
                    float dA = (P->dot(dy_bhi, v_bg + (size_t)j * D, D) - dyy) / dn;
                    P->axpy(dphiq_bhi, dA, phik_bhj, F);
                    P->axpy(dphik_bh + (size_t)j * F, dA, phiq_bhi, F);
                    P->axpy(dv_bg + (size_t)j * D, A, gbuf, D);
                }
            }
        }
    }
}

// Causal state form, the same numbers in O(N F D):
//   S_i = S_{i-1} + phik_i v_i^T (F,D), z_i = z_{i-1} + phik_i,
//   y_i = phiq_i S_i / (phiq_i . z_i + eps)
LCIMPL void lc_attn_linear_state_fwd(const lc_ctx *ctx, float *y, float *den, float *kv_state,
                                     float *k_state, const float *phiq, const float *phik,
                                     const float *v, int B, int H, int Hk, int N, int F, int D,
                                     float eps) {
    const lc__prims *P = lc__prims_for(ctx);
    int bh;
    LC__OMP_FOR
    for (bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H, g = h / (H / Hk), i, d, c;
        const float *v_bg = v + ((size_t)b * Hk + g) * N * D;
        float *S = kv_state + (size_t)bh * F * D;
        float *z = k_state ? k_state + (size_t)bh * F : NULL;
        float zloc[2048];
        LOLCATS_ASSERT(F <= 2048);
        if (!z) z = zloc;
        for (c = 0; c < F; c++) z[c] = 0;
        memset(S, 0, sizeof(float) * (size_t)F * D);
        for (i = 0; i < N; i++) {
            size_t row = ((size_t)b * H + h) * N + i;
            const float *phik_bhi = phik + row * F, *phiq_bhi = phiq + row * F;
            const float *v_bgi = v_bg + (size_t)i * D;
            float *y_bhi = y + row * D, dn;
            for (c = 0; c < F; c++) z[c] += phik_bhi[c];
            dn = P->dot(phiq_bhi, z, F) + eps;
            for (c = 0; c < F; c++) P->axpy(S + (size_t)c * D, phik_bhi[c], v_bgi, D);
            for (d = 0; d < D; d++) y_bhi[d] = 0;
            for (c = 0; c < F; c++) P->axpy(y_bhi, phiq_bhi[c], S + (size_t)c * D, D);
            for (d = 0; d < D; d++) y_bhi[d] /= dn;
            if (den) den[row] = dn;
        }
    }
}

LCIMPL size_t lc_attn_linear_state_work_floats(int B, int H, int F, int D) {
    return (size_t)B * H * F * ((size_t)D + 1);
}

// Reverse scan. Forward sweep: dphiq_i += S_i g_i + c_i z_i. Backward sweep
// with suffix sums dS_j = sum_{i>=j} phiq_i g_i^T, dz_j = sum_{i>=j} c_i phiq_i:
//   dphik_j += dS_j v_j + dz_j,  dv_j += dS_j^T phik_j.
LCIMPL void lc_attn_linear_state_bwd(const lc_ctx *ctx, float *dphiq, float *dphik, float *dv,
                                     float *work, const float *dy, const float *y,
                                     const float *den, const float *phiq, const float *phik,
                                     const float *v, int B, int H, int Hk, int N, int F, int D,
                                     float eps) {
    const lc__prims *P = lc__prims_for(ctx);
    int bg, rep = H / Hk;
    (void)eps;
    LC__OMP_FOR
    for (bg = 0; bg < B * Hk; bg++) {
        int b = bg / Hk, g = bg % Hk, r, i, c, d;
        const float *v_bg = v + ((size_t)b * Hk + g) * N * D;
        float *dv_bg = dv + ((size_t)b * Hk + g) * N * D;
        float gbuf[1024];
        LOLCATS_ASSERT(D <= 1024);
        for (r = 0; r < rep; r++) {
            int h = g * rep + r;
            float *S = work + ((size_t)b * H + h) * F * ((size_t)D + 1), *z = S + (size_t)F * D;
            memset(S, 0, sizeof(float) * (size_t)F * ((size_t)D + 1));
            for (i = 0; i < N; i++) {
                size_t row = ((size_t)b * H + h) * N + i;
                const float *phik_bhi = phik + row * F, *dy_bhi = dy + row * D;
                float *dphiq_bhi = dphiq + row * F;
                float cc = -P->dot(dy_bhi, y + row * D, D) / den[row];
                for (d = 0; d < D; d++) gbuf[d] = dy_bhi[d] / den[row];
                for (c = 0; c < F; c++) {
                    P->axpy(S + (size_t)c * D, phik_bhi[c], v_bg + (size_t)i * D, D);
                    z[c] += phik_bhi[c];
                }
                for (c = 0; c < F; c++)
                    dphiq_bhi[c] += P->dot(S + (size_t)c * D, gbuf, D) + cc * z[c];
            }
            memset(S, 0, sizeof(float) * (size_t)F * ((size_t)D + 1));
            for (i = N - 1; i >= 0; i--) {
                size_t row = ((size_t)b * H + h) * N + i;
                const float *phiq_bhi = phiq + row * F, *phik_bhi = phik + row * F;
                const float *dy_bhi = dy + row * D;
                float *dphik_bhi = dphik + row * F;
                float cc = -P->dot(dy_bhi, y + row * D, D) / den[row];
                for (d = 0; d < D; d++) gbuf[d] = dy_bhi[d] / den[row];
                for (c = 0; c < F; c++) {
                    P->axpy(S + (size_t)c * D, phiq_bhi[c], gbuf, D);
                    z[c] += cc * phiq_bhi[c];
                }
                for (c = 0; c < F; c++) {
                    dphik_bhi[c] += P->dot(S + (size_t)c * D, v_bg + (size_t)i * D, D) + z[c];
                    P->axpy(dv_bg + (size_t)i * D, phik_bhi[c], S + (size_t)c * D, D);
                }
            }
        }
    }
}

// >>attn-hybrid
// Sliding-window softmax + linear attention, the LoLCATs layer. Mirrors
// hybrid_attention_quadratic() in linear_window_attention_{tk,sw}.py:
//   s_ij = q_i.k_j / sqrt(D)            gamma = sigmoid(wf_h), lambda = 1 (or 1-gamma)
//   m_i  = max_{j in window(i)} s_ij    (part of the function, not a stabiliser)
//   E_ij = gamma exp(s_ij - m_i)  on window keys
//   L_ij = lambda phiq_i . phik_j on linear keys
//   den0_i = sum_j E_ij + sum_j L_ij
//   den_i  = den0_i + lambda phiq_i . z            (carried state, if any)
//   y_i  = (sum_j (E_ij + L_ij) v_j + lambda phiq_i S) / den_i     (no eps)
//   a_ij = (E_ij + L_ij) / den0_i    (the weights exclude the carried state)
// Saves m and den. Cost O(B H N (w D + N F)) in this quadratic reference form.

LCIMPL lc_hybrid_cfg lc_hybrid_cfg_default(void) {
    lc_hybrid_cfg c;
    c.variant = LOLCATS_WINDOW_TK;
    c.window = 64;
    c.affine = 0;
    c.sinks = 0;
    return c;
}

// Keys of query i: window keys are [*j0, i], linear keys [0, *j0); when *both
// is set (tk with N <= w) every key j <= i is in both.
static void lc__hybrid_range(const lc_hybrid_cfg *cfg, int N, int i, int *j0, int *both) {
    int w = cfg->window;
    *both = 0;
    if (cfg->variant == LOLCATS_WINDOW_SW) {
        *j0 = i - w + 1 > 0 ? i - w + 1 : 0;
    } else if (N <= w) {  // the original's mask arithmetic: both masks all-true
        *j0 = 0;
        *both = 1;
    } else {  // blocks of w aligned to the end of the sequence
        int off = ((N + w - 1) / w) * w - N, blk = (i + off) / w;
        int start = (blk - 1) * w - off;
        *j0 = start > 0 ? start : 0;
    }
}

LCIMPL int lc_hybrid_mask(const lc_hybrid_cfg *cfg, int n, int i, int j) {
    int j0, both;
    if (j > i || j < 0 || i >= n) return 0;
    if (j < cfg->sinks) return 1;  // sinks: window keys of every query
    lc__hybrid_range(cfg, n, i, &j0, &both);
    if (both) return 3;
    return j >= j0 ? 1 : 2;
}

static float lc__sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// >>sinks (attention sinks, cfg->sinks = S): keys [0, S) are window keys of
// every row i >= j and never linear keys. Row i's window is the ns = min(S, j0)
// sink keys before its range, then [j0, i]; its linear keys are [max(S, 0), jl).
// S = 0 leaves every loop as it was (ns = 0, linear keys from 0).
static int lc__hyb_nsink(const lc_hybrid_cfg *cfg, int j0) {
    return cfg->sinks < j0 ? cfg->sinks : j0;
}
// j over [0, ns) then [j0, i], in that order
#define LC__HYB_WIN_FOR(j, ns, j0, i) \
    for ((j) = (ns) > 0 ? 0 : (j0); (j) <= (i); (j) = (j) + 1 == (ns) ? (j0) : (j) + 1)
// >>sinks-end

// Window part of query row i: keys [0, ns) (sinks) and [j0, i]. Sets *mx = m_i,
// adds E_ij v_j to y_row (and E_ij to a_row), returns sum_j E_ij.
static double lc__hyb_win_fwd(const lc__prims *P, float *y_row, float *a_row, float *mx_out,
                              const float *q_bhi, const float *k_bg, const float *v_bg, int ns,
                              int j0, int i, int D, float scale, float gam) {
    float mx = -INFINITY;
    double sum = 0;
    int j;
    LC__HYB_WIN_FOR(j, ns, j0, i) {
        float s = P->dot(q_bhi, k_bg + (size_t)j * D, D) * scale;
        if (s > mx) mx = s;
    }
    LC__HYB_WIN_FOR(j, ns, j0, i) {
        float e = gam * expf(P->dot(q_bhi, k_bg + (size_t)j * D, D) * scale - mx);
        sum += (double)e;
        P->axpy(y_row, e, v_bg + (size_t)j * D, D);
        if (a_row) a_row[j] = e;
    }
    *mx_out = mx;
    return sum;
}

// Backward of the window part of row i (see the formulas above
// lc_attn_hybrid_bwd). dyy = dy_i.y_i; ca, den0 and da_bhi only with da.
static void lc__hyb_win_bwd(const lc__prims *P, float *dq_bhi, float *dk_bg, float *dv_bg,
                            double *dgam, const float *q_bhi, const float *k_bg,
                            const float *v_bg, const float *dy_bhi, const float *gv,
                            const float *da_bhi, float dyy, float dn, float den0, float ca,
                            float mx, int ns, int j0, int i, int D, float scale, float gam) {
    double dm = 0;
    int j, nmax = 0;
    float amax = -INFINITY;  // the arg-max is found again from this function's own scores:
    LC__HYB_WIN_FOR(j, ns, j0, i) {  // the saved m may come from another form (GEMM rounding)
        float s = P->dot(q_bhi, k_bg + (size_t)j * D, D) * scale;
        amax = s > amax ? s : amax;
    }
    LC__HYB_WIN_FOR(j, ns, j0, i) {
        const float *k_bgj = k_bg + (size_t)j * D;
        float s = P->dot(q_bhi, k_bgj, D) * scale, ex = expf(s - mx), e = gam * ex;
        float dW = dy_bhi ? (P->dot(dy_bhi, v_bg + (size_t)j * D, D) - dyy) / dn : 0.0f, t;
        if (da_bhi) dW += da_bhi[j] / den0 + ca;
        t = dW * e;
        dm -= (double)t;
        *dgam += (double)dW * (double)ex;
        if (dq_bhi) P->axpy(dq_bhi, t * scale, k_bgj, D);
        if (dk_bg) P->axpy(dk_bg + (size_t)j * D, t * scale, q_bhi, D);
        if (dy_bhi && dv_bg) P->axpy(dv_bg + (size_t)j * D, e, gv, D);
        nmax += s == amax;
    }
    if (dm != 0 && nmax > 0) {  // m_i = amax over the window: ties share the gradient
        float share = (float)(dm / nmax) * scale;
        LC__HYB_WIN_FOR(j, ns, j0, i) {
            const float *k_bgj = k_bg + (size_t)j * D;
            if (P->dot(q_bhi, k_bgj, D) * scale != amax) continue;
            if (dq_bhi) P->axpy(dq_bhi, share, k_bgj, D);
            if (dk_bg) P->axpy(dk_bg + (size_t)j * D, share, q_bhi, D);
        }
    }
}

// Quadratic reference: linear keys one by one (mirrors the original's N x N
// einsum); the only path that can produce the weights a and take da.
static void lc__hybrid_fwd_quad(const lc_ctx *ctx, float *y, float *a, float *m, float *den,
                                const float *q, const float *k, const float *v,
                                const float *phiq, const float *phik, const float *wf,
                                const float *kv_state, const float *k_state, int B, int H,
                                int Hk, int N, int D, int F, const lc_hybrid_cfg *cfg) {
    const lc__prims *P = lc__prims_for(ctx);
    float scale = lc__attn_scale(D);
    int bh;
    LC__OMP_FOR
    for (bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H, g = h / (H / Hk), i, j, d, c;
        const float *k_bg = k + ((size_t)b * Hk + g) * N * D;
        const float *v_bg = v + ((size_t)b * Hk + g) * N * D;
        const float *phik_bh = phik + (size_t)bh * N * F;
        const float *S = kv_state ? kv_state + (size_t)bh * F * D : NULL;
        const float *z = k_state ? k_state + (size_t)bh * F : NULL;
        float gam = lc__sigmoid(wf[h]), lam = cfg->affine ? 1.0f - gam : 1.0f;
        for (i = 0; i < N; i++) {
            size_t row = (size_t)bh * N + i;
            const float *q_bhi = q + row * D, *phiq_bhi = phiq + row * F;
            float *y_bhi = y + row * D, *a_bhi = a ? a + row * N : NULL;
            float mx, den0, dn;
            double sum;
            int j0, both, jl;
            lc__hybrid_range(cfg, N, i, &j0, &both);
            jl = both ? i + 1 : j0;  // linear keys are [0, jl) (sinks: [S, jl))
            for (d = 0; d < D; d++) y_bhi[d] = 0;
            if (a_bhi)
                for (j = 0; j < N; j++) a_bhi[j] = 0;
            sum = lc__hyb_win_fwd(P, y_bhi, a_bhi, &mx, q_bhi, k_bg, v_bg, lc__hyb_nsink(cfg, j0),
                                  j0, i, D, scale, gam);
            for (j = cfg->sinks; j < jl; j++) {
                float l = lam * P->dot(phiq_bhi, phik_bh + (size_t)j * F, F);
                sum += (double)l;
                P->axpy(y_bhi, l, v_bg + (size_t)j * D, D);
                if (a_bhi) a_bhi[j] += l;
            }
            den0 = (float)sum;
            dn = den0;
            if (S) {
                for (c = 0; c < F; c++) P->axpy(y_bhi, lam * phiq_bhi[c], S + (size_t)c * D, D);
                dn += lam * P->dot(phiq_bhi, z, F);
            }
            for (d = 0; d < D; d++) y_bhi[d] /= dn;
            if (a_bhi)
                for (j = 0; j <= i; j++) a_bhi[j] /= den0;
            m[row] = mx;
            den[row] = dn;
        }
    }
}

// Prefix-state form, O(N (w + F) D) time, O(F D) work per head: the linear
// keys of row i are a prefix [0, jl(i)) with jl nondecreasing in i, so one
// running state S = S0 + sum_{j < jl} phik_j v_j^T (and z) serves every row.
static void lc__hybrid_fwd_state(const lc_ctx *ctx, float *y, float *m, float *den,
                                 float *work, const float *q, const float *k, const float *v,
                                 const float *phiq, const float *phik, const float *wf,
                                 const float *kv_state, const float *k_state, int B, int H,
                                 int Hk, int N, int D, int F, const lc_hybrid_cfg *cfg) {
    const lc__prims *P = lc__prims_for(ctx);
    float scale = lc__attn_scale(D);
    int bh;
    LC__OMP_FOR
    for (bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H, g = h / (H / Hk), i, d, c, jadd = cfg->sinks;
        const float *k_bg = k + ((size_t)b * Hk + g) * N * D;
        const float *v_bg = v + ((size_t)b * Hk + g) * N * D;
        const float *phik_bh = phik + (size_t)bh * N * F;
        float *S = work + (size_t)bh * F * ((size_t)D + 1), *z = S + (size_t)F * D;
        float gam = lc__sigmoid(wf[h]), lam = cfg->affine ? 1.0f - gam : 1.0f;
        if (kv_state) {
            memcpy(S, kv_state + (size_t)bh * F * D, sizeof(float) * (size_t)F * D);
            memcpy(z, k_state + (size_t)bh * F, sizeof(float) * (size_t)F);
        } else {
            memset(S, 0, sizeof(float) * (size_t)F * ((size_t)D + 1));
        }
        for (i = 0; i < N; i++) {
            size_t row = (size_t)bh * N + i;
            const float *q_bhi = q + row * D, *phiq_bhi = phiq + row * F;
            float *y_bhi = y + row * D, mx, dn;
            double sum;
            int j0, both, jl;
            lc__hybrid_range(cfg, N, i, &j0, &both);
            jl = both ? i + 1 : j0;
            for (; jadd < jl; jadd++) {
                const float *phik_j = phik_bh + (size_t)jadd * F;
                for (c = 0; c < F; c++) {
                    P->axpy(S + (size_t)c * D, phik_j[c], v_bg + (size_t)jadd * D, D);
                    z[c] += phik_j[c];
                }
            }
            for (d = 0; d < D; d++) y_bhi[d] = 0;
            sum = lc__hyb_win_fwd(P, y_bhi, NULL, &mx, q_bhi, k_bg, v_bg, lc__hyb_nsink(cfg, j0),
                                  j0, i, D, scale, gam);
            for (c = 0; c < F; c++) P->axpy(y_bhi, lam * phiq_bhi[c], S + (size_t)c * D, D);
            dn = (float)(sum + (double)(lam * P->dot(phiq_bhi, z, F)));
            for (d = 0; d < D; d++) y_bhi[d] /= dn;
            m[row] = mx;
            den[row] = dn;
        }
    }
}

// Per head: the chunked form's state and blocks (the row form, used for windows
// over LC__HYB_WMAX, needs only the first F (D + 1) floats of each head).
LCIMPL size_t lc_attn_hybrid_work_floats(int B, int H, int D, int F) {
    return (size_t)B * H * lc__hyb_head_floats(D, F, NULL, NULL);
}

// Gated forms (>>gate), taken when log_g is set.
static void lc__gate_dec_pre(const lc__prims *P, lc_decode_state *st, float *logg_ring, const float *log_g,
                             size_t ld);
static void lc__gate_hybrid_fwd(const lc_ctx *ctx, const lc_hybrid_args *x);
static void lc__gate_hybrid_bwd(const lc_ctx *ctx, const lc_hybrid_args *x);

LCIMPL lc_hybrid_args lc_hybrid_args_default(void) {
    lc_hybrid_args x;
    memset(&x, 0, sizeof x);
    return x;
}

LCIMPL void lc_attn_hybrid_fwd_args(const lc_ctx *ctx, const lc_hybrid_args *x) {
    lc_ctx ref_;
    int B = x->B, H = x->H, Hk = x->Hk, N = x->N, D = x->D, F = x->F;
    float *work = x->work;
    const lc_hybrid_cfg *cfg = x->cfg;
    LOLCATS_ASSERT(H % Hk == 0 && cfg->window > 0 && cfg->sinks >= 0 && !!x->kv_state == !!x->k_state);
    ctx = lc__ctx_finite(ctx, &ref_, 7, x->q, (size_t)B * H * N * D, x->k, (size_t)B * Hk * N * D, x->v, (size_t)B * Hk * N * D, x->phiq, (size_t)B * H * N * F, x->phik, (size_t)B * H * N * F, x->wf,
                         (size_t)H, x->kv_state, (size_t)B * H * F * D);
    // the scalar table, or non-finite inputs (lc__ctx_finite): the definition itself
    if (!lc__kern_for(ctx)->hybrid_fwd) work = NULL;
    if (x->log_g) {
        lc_hybrid_args xx = *x;
        xx.work = work;
        lc__gate_hybrid_fwd(ctx, &xx);
    } else if (work && !x->a)
        lc__kern_for(ctx)->hybrid_fwd(ctx, x->y, x->m, x->den, work, x->q, x->k, x->v, x->phiq,
                                      x->phik, x->wf, x->kv_state, x->k_state, B, H, Hk, N, D,
                                      F, cfg);  // >>hybrid-chunk
    else
        lc__hybrid_fwd_quad(ctx, x->y, x->a, x->m, x->den, x->q, x->k, x->v, x->phiq, x->phik, x->wf, x->kv_state, x->k_state, B, H,
                            Hk, N, D, F, cfg);
}

LCIMPL void lc_attn_hybrid_fwd(const lc_ctx *ctx, float *y, float *a, float *m, float *den,
                               float *work, const float *q, const float *k, const float *v,
                               const float *phiq, const float *phik, const float *wf,
                               const float *kv_state, const float *k_state, int B, int H,
                               int Hk, int N, int D, int F, const lc_hybrid_cfg *cfg) {
    lc_hybrid_args x = lc_hybrid_args_default();
    x.B = B; x.H = H; x.Hk = Hk; x.N = N; x.D = D; x.F = F; x.cfg = cfg;
    x.q = q; x.k = k; x.v = v; x.phiq = phiq; x.phik = phik; x.wf = wf;
    x.kv_state = kv_state; x.k_state = k_state;
    x.y = y; x.a = a; x.m = m; x.den = den; x.work = work;
    lc_attn_hybrid_fwd_args(ctx, &x);
}

// Backward. Per row, with gv = dy/den (d numerator), cd = -(dy.y)/den (d den),
// and from the weights ca = -sum_j da_ij a_ij / den0:
//   dW_ij = (dy.v_j - dy.y_i)/den + da_ij/den0 + ca   gradient of E_ij and L_ij
//   window: t = dW E; ds_ij += t; dm_i -= t; dgamma += dW exp(s - m)
//           dm_i goes to the arg-max window key(s), shared equally (amax)
//   linear: dphiq_i += lambda dW phik_j; dphik_j += lambda dW phiq_i;
//           dlambda += dW phiq_i.phik_j
//   dv_j += (E+L)_ij gv;  state: dphiq += lambda (S gv + cd z),
//   dS += lambda phiq gv^T, dz += lambda cd phiq, dlambda += phiq.(S gv) + cd phiq.z
//   dwf_h = dgamma gamma (1 - gamma)  (dgamma -= dlambda when affine)
// One task per (b, kv head): it owns dk, dv of that head and everything of its
// query heads, so GQA needs no atomics.
static void lc__hybrid_bwd_quad(const lc_ctx *ctx, float *dq, float *dk, float *dv,
                                float *dphiq, float *dphik, float *dwf, float *dkv_state,
                                float *dk_state, const float *dy, const float *da,
                                const float *y, const float *m, const float *den,
                                const float *q, const float *k, const float *v,
                                const float *phiq, const float *phik, const float *wf,
                                const float *kv_state, const float *k_state, int B, int H,
                                int Hk, int N, int D, int F, const lc_hybrid_cfg *cfg) {
    const lc__prims *P = lc__prims_for(ctx);
    float scale = lc__attn_scale(D);
    int gg, rep = H / Hk;
    LC__OMP_FOR
    // one task per kv head, batches in order inside it: dwf (per query head)
    // is shared by every batch element, so it must not be split across tasks
    for (gg = 0; gg < Hk; gg++) {
        int bb;
        for (bb = 0; bb < B; bb++) {
            int bg = bb * Hk + gg;
        int b = bg / Hk, g = bg % Hk, r, i, j, c, d;
        const float *k_bg = k + ((size_t)b * Hk + g) * N * D;
        const float *v_bg = v + ((size_t)b * Hk + g) * N * D;
        float *dk_bg = dk ? dk + ((size_t)b * Hk + g) * N * D : NULL;
        float *dv_bg = dv ? dv + ((size_t)b * Hk + g) * N * D : NULL;
        float gv[1024], sg[2048];
        for (r = 0; r < rep; r++) {
            int h = g * rep + r, bh = b * H + h;
            const float *phik_bh = phik + (size_t)bh * N * F;
            float *dphik_bh = dphik + (size_t)bh * N * F;
            const float *S = kv_state ? kv_state + (size_t)bh * F * D : NULL;
            const float *z = k_state ? k_state + (size_t)bh * F : NULL;
            float gam = lc__sigmoid(wf[h]), lam = cfg->affine ? 1.0f - gam : 1.0f;
            double dgam = 0, dlam = 0;
            for (i = 0; i < N; i++) {
                size_t row = (size_t)bh * N + i;
                const float *q_bhi = q + row * D, *phiq_bhi = phiq + row * F;
                const float *da_bhi = da ? da + row * N : NULL;
                const float *dy_bhi = dy ? dy + row * D : NULL;
                float *dq_bhi = dq ? dq + row * D : NULL, *dphiq_bhi = dphiq + row * F;
                float mx = m[row], dn = den[row], den0 = dn, cd = 0, ca = 0, qz = 0, dyy = 0;
                int j0, both, jl;
                lc__hybrid_range(cfg, N, i, &j0, &both);
                jl = both ? i + 1 : j0;
                for (d = 0; d < D; d++) gv[d] = dy_bhi ? dy_bhi[d] / dn : 0.0f;
                if (dy_bhi) {
                    dyy = P->dot(dy_bhi, y + row * D, D);
                    cd = -dyy / dn;
                }
                if (S) {
                    qz = P->dot(phiq_bhi, z, F);
                    den0 = dn - lam * qz;
                }
                if (da_bhi) {  // ca = -sum_j da_ij a_ij / den0
                    double t = 0;
                    LC__HYB_WIN_FOR(j, lc__hyb_nsink(cfg, j0), j0, i)
                        t += (double)da_bhi[j] * (double)gam *
                             (double)expf(P->dot(q_bhi, k_bg + (size_t)j * D, D) * scale - mx);
                    for (j = cfg->sinks; j < jl; j++)
                        t += (double)da_bhi[j] * (double)lam * (double)P->dot(phiq_bhi, phik_bh + (size_t)j * F, F);
                    ca = (float)(-t / ((double)den0 * (double)den0));
                }
                lc__hyb_win_bwd(P, dq_bhi, dk_bg, dv_bg, &dgam, q_bhi, k_bg, v_bg, dy_bhi, gv,
                                da_bhi, dyy, dn, den0, ca, mx, lc__hyb_nsink(cfg, j0), j0, i, D,
                                scale, gam);
                for (j = cfg->sinks; j < jl; j++) {  // linear keys
                    const float *phik_bhj = phik_bh + (size_t)j * F;
                    float qk = P->dot(phiq_bhi, phik_bhj, F);
                    float dW = dy_bhi ? (P->dot(dy_bhi, v_bg + (size_t)j * D, D) - dyy) / dn : 0.0f;
                    if (da_bhi) dW += da_bhi[j] / den0 + ca;
                    dlam += (double)dW * (double)qk;
                    P->axpy(dphiq_bhi, lam * dW, phik_bhj, F);
                    P->axpy(dphik_bh + (size_t)j * F, lam * dW, phiq_bhi, F);
                    if (dy_bhi && dv_bg) P->axpy(dv_bg + (size_t)j * D, lam * qk, gv, D);
                }
                if (S) {  // carried state: num += lam phiq S, den += lam phiq.z
                    float *dS = dkv_state ? dkv_state + (size_t)bh * F * D : NULL;
                    float *dz = dk_state ? dk_state + (size_t)bh * F : NULL;
                    double t = 0;
                    for (c = 0; c < F; c++) {
                        sg[c] = P->dot(S + (size_t)c * D, gv, D);
                        t += (double)phiq_bhi[c] * (double)sg[c];
                        dphiq_bhi[c] += lam * (sg[c] + cd * z[c]);
                        if (dS) P->axpy(dS + (size_t)c * D, lam * phiq_bhi[c], gv, D);
                        if (dz) dz[c] += lam * cd * phiq_bhi[c];
                    }
                    dlam += t + (double)cd * (double)qz;
                }
            }
            if (dwf) {
                if (cfg->affine) dgam -= dlam;
                dwf[h] += (float)(dgam * (double)gam * (1.0 - (double)gam));
            }
        }
    }
    }
}

// Prefix-state backward (no da). Forward sweep: the window part as above and
// dphiq_i += lambda (S_i gv_i + cd_i z_i) with S_i the state row i saw.
// Reverse sweep: G = lambda sum_{i: jl(i) > j} phiq_i gv_i^T, c = lambda sum cd_i phiq_i
// give dphik_j += G v_j + c and dv_j += G^T phik_j; what reaches the carried
// state is G and c over all rows.
static void lc__hybrid_bwd_state(const lc_ctx *ctx, float *dq, float *dk, float *dv,
                                 float *dphiq, float *dphik, float *dwf, float *dkv_state,
                                 float *dk_state, float *work, const float *dy, const float *y,
                                 const float *m, const float *den, const float *q,
                                 const float *k, const float *v, const float *phiq,
                                 const float *phik, const float *wf, const float *kv_state,
                                 const float *k_state, int B, int H, int Hk, int N, int D, int F,
                                 const lc_hybrid_cfg *cfg) {
    const lc__prims *P = lc__prims_for(ctx);
    float scale = lc__attn_scale(D);
    int gg, rep = H / Hk;
    LC__OMP_FOR
    // one task per kv head, batches in order inside it: dwf (per query head)
    // is shared by every batch element, so it must not be split across tasks
    for (gg = 0; gg < Hk; gg++) {
        int bb;
        for (bb = 0; bb < B; bb++) {
            int bg = bb * Hk + gg;
        int b = bg / Hk, g = bg % Hk, r, i, j, c, d;
        const float *k_bg = k + ((size_t)b * Hk + g) * N * D;
        const float *v_bg = v + ((size_t)b * Hk + g) * N * D;
        float *dk_bg = dk ? dk + ((size_t)b * Hk + g) * N * D : NULL;
        float *dv_bg = dv ? dv + ((size_t)b * Hk + g) * N * D : NULL;
        float gv[1024];
        for (r = 0; r < rep; r++) {
            int h = g * rep + r, bh = b * H + h, jadd = cfg->sinks, jnext;
            const float *phik_bh = phik + (size_t)bh * N * F;
            float *dphik_bh = dphik + (size_t)bh * N * F;
            float *S = work + (size_t)bh * F * ((size_t)D + 1), *z = S + (size_t)F * D;
            float gam = lc__sigmoid(wf[h]), lam = cfg->affine ? 1.0f - gam : 1.0f;
            double dgam = 0, dlam = 0;
            if (kv_state) {
                memcpy(S, kv_state + (size_t)bh * F * D, sizeof(float) * (size_t)F * D);
                memcpy(z, k_state + (size_t)bh * F, sizeof(float) * (size_t)F);
            } else {
                memset(S, 0, sizeof(float) * (size_t)F * ((size_t)D + 1));
            }
            for (i = 0; i < N; i++) {  // forward sweep
                size_t row = (size_t)bh * N + i;
                const float *q_bhi = q + row * D, *phiq_bhi = phiq + row * F, *dy_bhi = dy + row * D;
                float *dphiq_bhi = dphiq + row * F;
                float dn = den[row], dyy = P->dot(dy_bhi, y + row * D, D), cd = -dyy / dn;
                double t = 0, qz;
                int j0, both, jl;
                lc__hybrid_range(cfg, N, i, &j0, &both);
                jl = both ? i + 1 : j0;
                for (; jadd < jl; jadd++) {
                    const float *phik_j = phik_bh + (size_t)jadd * F;
                    for (c = 0; c < F; c++) {
                        P->axpy(S + (size_t)c * D, phik_j[c], v_bg + (size_t)jadd * D, D);
                        z[c] += phik_j[c];
                    }
                }
                for (d = 0; d < D; d++) gv[d] = dy_bhi[d] / dn;
                lc__hyb_win_bwd(P, dq ? dq + row * D : NULL, dk_bg, dv_bg, &dgam, q_bhi, k_bg, v_bg, dy_bhi, gv,
                                NULL, dyy, dn, dn, 0, m[row], lc__hyb_nsink(cfg, j0), j0, i, D,
                                scale, gam);
                qz = (double)P->dot(phiq_bhi, z, F);
                for (c = 0; c < F; c++) {
                    float sg = P->dot(S + (size_t)c * D, gv, D);
                    t += (double)phiq_bhi[c] * (double)sg;
                    dphiq_bhi[c] += lam * (sg + cd * z[c]);
                }
                dlam += t + (double)cd * qz;
            }
            // reverse sweep: S becomes G, z becomes c
            memset(S, 0, sizeof(float) * (size_t)F * ((size_t)D + 1));
            jnext = N;  // keys >= jl(N-1) receive nothing
            for (i = N - 1; i >= -1; i--) {
                int jlo = 0, j0, both;
                if (i >= 0) {
                    lc__hybrid_range(cfg, N, i, &j0, &both);
                    jlo = both ? i + 1 : j0;
                    if (i == N - 1) jnext = jlo;
                }
                for (j = jlo > cfg->sinks ? jlo : cfg->sinks; j < jnext; j++) {  // keys whose rows are exactly i+1..N-1
                    const float *phik_bhj = phik_bh + (size_t)j * F;
                    float *dphik_bhj = dphik_bh + (size_t)j * F;
                    for (c = 0; c < F; c++) {
                        dphik_bhj[c] += P->dot(S + (size_t)c * D, v_bg + (size_t)j * D, D) + z[c];
                        if (dv_bg) P->axpy(dv_bg + (size_t)j * D, phik_bhj[c], S + (size_t)c * D, D);
                    }
                }
                jnext = jlo;
                if (i >= 0) {
                    size_t row = (size_t)bh * N + i;
                    const float *phiq_bhi = phiq + row * F, *dy_bhi = dy + row * D;
                    float dn = den[row], cd = -P->dot(dy_bhi, y + row * D, D) / dn;
                    for (d = 0; d < D; d++) gv[d] = lam * dy_bhi[d] / dn;
                    for (c = 0; c < F; c++) {
                        P->axpy(S + (size_t)c * D, phiq_bhi[c], gv, D);
                        z[c] += lam * cd * phiq_bhi[c];
                    }
                }
            }
            if (kv_state) {
                if (dkv_state)
                    for (c = 0; c < F * D; c++) dkv_state[(size_t)bh * F * D + c] += S[c];
                if (dk_state)
                    for (c = 0; c < F; c++) dk_state[(size_t)bh * F + c] += z[c];
            }
            if (dwf) {
                if (cfg->affine) dgam -= dlam;
                dwf[h] += (float)(dgam * (double)gam * (1.0 - (double)gam));
            }
        }
    }
    }
}

LCIMPL void lc_attn_hybrid_bwd_args(const lc_ctx *ctx, const lc_hybrid_args *x) {
    lc_ctx ref_;
    int B = x->B, H = x->H, Hk = x->Hk, N = x->N, D = x->D, F = x->F;
    float *work = x->work;
    const lc_hybrid_cfg *cfg = x->cfg;
    const float *dy = x->dy, *da = x->da;
    LOLCATS_ASSERT(H % Hk == 0 && D <= 1024 && F <= 2048 && cfg->sinks >= 0 &&
                   !!x->kv_state == !!x->k_state);
    ctx = lc__ctx_finite(ctx, &ref_, 8, x->q, (size_t)B * H * N * D, x->k, (size_t)B * Hk * N * D, x->v, (size_t)B * Hk * N * D, x->phiq, (size_t)B * H * N * F, x->phik, (size_t)B * H * N * F, x->wf,
                         (size_t)H, x->kv_state, (size_t)B * H * F * D, dy, dy ? (size_t)B * H * N * D : 0);
    // the scalar table, or non-finite inputs (lc__ctx_finite): the definition itself
    if (!lc__kern_for(ctx)->hybrid_bwd) work = NULL;
    if (x->log_g) {
        lc_hybrid_args xx = *x;
        xx.work = work;
        lc__gate_hybrid_bwd(ctx, &xx);
    } else if (work && dy && !da)
        lc__kern_for(ctx)->hybrid_bwd(ctx, x->dq, x->dk, x->dv, x->dphiq, x->dphik, x->dwf,
                                      x->dkv_state, x->dk_state, work, dy, x->y, x->m, x->den,
                                      x->q, x->k, x->v, x->phiq, x->phik, x->wf, x->kv_state,
                                      x->k_state, B, H, Hk, N, D, F, cfg);  // >>hybrid-chunk
    else
        lc__hybrid_bwd_quad(ctx, x->dq, x->dk, x->dv, x->dphiq, x->dphik, x->dwf, x->dkv_state, x->dk_state, dy, da, x->y,
                            x->m, x->den, x->q, x->k, x->v, x->phiq, x->phik, x->wf, x->kv_state, x->k_state, B, H, Hk, N, D,
                            F, cfg);
}

LCIMPL void lc_attn_hybrid_bwd(const lc_ctx *ctx, float *dq, float *dk, float *dv,
                               float *dphiq, float *dphik, float *dwf, float *dkv_state,
                               float *dk_state, float *work, const float *dy, const float *da,
                               const float *y, const float *m, const float *den,
                               const float *q, const float *k, const float *v,
                               const float *phiq, const float *phik, const float *wf,
                               const float *kv_state, const float *k_state, int B, int H,
                               int Hk, int N, int D, int F, const lc_hybrid_cfg *cfg) {
    lc_hybrid_args x = lc_hybrid_args_default();
    x.B = B; x.H = H; x.Hk = Hk; x.N = N; x.D = D; x.F = F; x.cfg = cfg;
    x.q = q; x.k = k; x.v = v; x.phiq = phiq; x.phik = phik; x.wf = wf;
    x.kv_state = kv_state; x.k_state = k_state;
    // bwd only reads y, m, den (the struct holds them writable for fwd)
    x.y = (float *)y; x.m = (float *)m; x.den = (float *)den; x.work = work;
    x.dy = dy; x.da = da;
    x.dq = dq; x.dk = dk; x.dv = dv; x.dphiq = dphiq; x.dphik = dphik; x.dwf = dwf;
    x.dkv_state = dkv_state; x.dk_state = dk_state;
    lc_attn_hybrid_bwd_args(ctx, &x);
}

// >>gate
// Gated linear state (lc_hybrid_args.log_g). Per query head and token a decay
// g_t = exp(log_g_t) in (0, 1]; the linear part's weight of key j for query i
// gains the factor w_ij = prod_{j<t<=i} g_t = exp(sum_{t=j+1..i} log_g_t), the
// carried state the factor prod_{0<=t<=i} g_t; the window part is unchanged:
//   L_ij = lambda w_ij phiq_i . phik_j   on linear keys (j < jl(i))
//   S_i  = g_i S_{i-1} + phik_j v_j^T ..., i.e. S_t = g_t S_{t-1} + phi(k_t) v_t^T
// Decays are sums of log g over the gap (never a ratio of cumulative
// products), so strong decay over long sequences stays exact in fp32.
// Backward: r_ij = dW_ij L_ij is d/d log w_ij, so d log_g_t += sum_{j<t<=i} r_ij
// (and the state's share, for every t <= i).

// Quadratic reference: the ungated lc__hybrid_fwd_quad with w_ij, linear keys
// visited from jl-1 down to 0 so that w_ij accumulates one log g at a time.
static void lc__gate_fwd_quad(const lc_ctx *ctx, const lc_hybrid_args *x) {
    const lc__prims *P = lc__prims_for(ctx);
    const lc_hybrid_cfg *cfg = x->cfg;
    int B = x->B, H = x->H, Hk = x->Hk, N = x->N, D = x->D, F = x->F, bh;
    float scale = lc__attn_scale(D);
    LC__OMP_FOR
    for (bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H, g = h / (H / Hk), i, j, d, c;
        const float *k_bg = x->k + ((size_t)b * Hk + g) * N * D;
        const float *v_bg = x->v + ((size_t)b * Hk + g) * N * D;
        const float *phik_bh = x->phik + (size_t)bh * N * F, *lg = x->log_g + (size_t)bh * N;
        const float *S = x->kv_state ? x->kv_state + (size_t)bh * F * D : NULL;
        const float *z = x->k_state ? x->k_state + (size_t)bh * F : NULL;
        float gam = lc__sigmoid(x->wf[h]), lam = cfg->affine ? 1.0f - gam : 1.0f;
        for (i = 0; i < N; i++) {
            size_t row = (size_t)bh * N + i;
            const float *q_bhi = x->q + row * D, *phiq_bhi = x->phiq + row * F;
            float *y_bhi = x->y + row * D, *a_bhi = x->a ? x->a + row * N : NULL;
            float mx, den0, dn;
            double sum, acc = 0;
            int j0, both, jl;
            lc__hybrid_range(cfg, N, i, &j0, &both);
            jl = both ? i + 1 : j0;
            for (d = 0; d < D; d++) y_bhi[d] = 0;
            if (a_bhi)
                for (j = 0; j < N; j++) a_bhi[j] = 0;
            sum = lc__hyb_win_fwd(P, y_bhi, a_bhi, &mx, q_bhi, k_bg, v_bg, lc__hyb_nsink(cfg, j0), j0, i,
                                  D, scale, gam);
            for (j = i; j >= jl; j--) acc += (double)lg[j];  // log w_{i,jl-1}
            for (j = jl - 1; j >= 0; j--) {
                if (j >= cfg->sinks) {  // sinks: never linear keys
                    float l = lam * (float)exp(acc) * P->dot(phiq_bhi, phik_bh + (size_t)j * F, F);
                    sum += (double)l;
                    P->axpy(y_bhi, l, v_bg + (size_t)j * D, D);
                    if (a_bhi) a_bhi[j] += l;
                }
                acc += (double)lg[j];
            }  // acc = sum_{t<=i} log g_t: the carried state's decay
            den0 = (float)sum;
            dn = den0;
            if (S) {
                float lg_s = lam * (float)exp(acc);
                for (c = 0; c < F; c++) P->axpy(y_bhi, lg_s * phiq_bhi[c], S + (size_t)c * D, D);
                dn += lg_s * P->dot(phiq_bhi, z, F);
            }
            for (d = 0; d < D; d++) y_bhi[d] /= dn;
            if (a_bhi)
                for (j = 0; j <= i; j++) a_bhi[j] /= den0;
            x->m[row] = mx;
            x->den[row] = dn;
        }
    }
}

// The running state (S, z adjacent) from row i-1 to row i: decay by g_i, then
// the keys [*jadd, jl) come in with their own w_ij (a sum of at most 2w log g).
static void lc__gate_state_step(const lc__prims *P, float *S, const float *lg,
                                const float *phik_bh, const float *v_bg, int i, int jl,
                                int *jadd, int D, int F) {
    float gi = (float)exp((double)lg[i]), *z = S + (size_t)F * D;
    double acc = 0;
    int j, c;
    if (gi != 1.0f) P->scal(S, gi, F * (D + 1));
    for (j = i; j >= jl; j--) acc += (double)lg[j];
    for (j = jl - 1; j >= *jadd; j--) {
        const float *phik_j = phik_bh + (size_t)j * F;
        float wj = (float)exp(acc);
        for (c = 0; c < F; c++) {
            P->axpy(S + (size_t)c * D, wj * phik_j[c], v_bg + (size_t)j * D, D);
            z[c] += wj * phik_j[c];
        }
        acc += (double)lg[j];
    }
    if (jl > *jadd) *jadd = jl;
}

// Prefix-state form, O(N (w + F) D): the running state is kept decayed to the
// current row (S <- g_i S before row i), and a key entering it at row i comes
// in with its own w_ij, a sum of at most 2w log g.
static void lc__gate_fwd_state(const lc_ctx *ctx, const lc_hybrid_args *x) {
    const lc__prims *P = lc__prims_for(ctx);
    const lc_hybrid_cfg *cfg = x->cfg;
    int B = x->B, H = x->H, Hk = x->Hk, N = x->N, D = x->D, F = x->F, bh;
    float scale = lc__attn_scale(D);
    size_t hf = lc__hyb_head_floats(D, F, NULL, NULL);
    LC__OMP_FOR
    for (bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H, g = h / (H / Hk), i, d, c, jadd = cfg->sinks;  // sinks: never in S
        const float *k_bg = x->k + ((size_t)b * Hk + g) * N * D;
        const float *v_bg = x->v + ((size_t)b * Hk + g) * N * D;
        const float *phik_bh = x->phik + (size_t)bh * N * F, *lg = x->log_g + (size_t)bh * N;
        float *S = x->work + (size_t)bh * hf, *z = S + (size_t)F * D;
        float gam = lc__sigmoid(x->wf[h]), lam = cfg->affine ? 1.0f - gam : 1.0f;
        if (x->kv_state) {
            memcpy(S, x->kv_state + (size_t)bh * F * D, sizeof(float) * (size_t)F * D);
            memcpy(z, x->k_state + (size_t)bh * F, sizeof(float) * (size_t)F);
        } else {
            memset(S, 0, sizeof(float) * (size_t)F * ((size_t)D + 1));
        }
        for (i = 0; i < N; i++) {
            size_t row = (size_t)bh * N + i;
            const float *q_bhi = x->q + row * D, *phiq_bhi = x->phiq + row * F;
            float *y_bhi = x->y + row * D, mx, dn;
            double sum;
            int j0, both, jl;
            lc__hybrid_range(cfg, N, i, &j0, &both);
            jl = both ? i + 1 : j0;
            lc__gate_state_step(P, S, lg, phik_bh, v_bg, i, jl, &jadd, D, F);
            for (d = 0; d < D; d++) y_bhi[d] = 0;
            sum = lc__hyb_win_fwd(P, y_bhi, NULL, &mx, q_bhi, k_bg, v_bg, lc__hyb_nsink(cfg, j0), j0, i, D,
                                  scale, gam);
            for (c = 0; c < F; c++) P->axpy(y_bhi, lam * phiq_bhi[c], S + (size_t)c * D, D);
            dn = (float)(sum + (double)(lam * P->dot(phiq_bhi, z, F)));
            for (d = 0; d < D; d++) y_bhi[d] /= dn;
            x->m[row] = mx;
            x->den[row] = dn;
        }
    }
}

static void lc__gate_hybrid_fwd(const lc_ctx *ctx, const lc_hybrid_args *x) {
#if !defined(LOLCATS_NO_FAST)
    if (x->work && !x->a && x->cfg->window <= LC__HYB_WMAX && lc__hyb_sinks_fit(x->cfg, x->N)) {  // chunked
        lc__gate_fwd_chunk(ctx, x);
        return;
    }
#endif
    if (x->work && !x->a)
        lc__gate_fwd_state(ctx, x);
    else
        lc__gate_fwd_quad(ctx, x);
}

// Backward, quadratic reference (the only gated form that takes da): the ungated
// lc__hybrid_bwd_quad with L_ij = lambda w_ij phiq_i.phik_j, plus d log_g. In
// the descending sweep over j, suf = sum_{j'>=j} r_ij' gives
// sum_{j'<t} r_ij' = T - suf_t (T the row's total), so per row
// d log_g_t -= suf_t on linear keys and += T (+ the state's share) for t <= i.
static void lc__gate_bwd_quad(const lc_ctx *ctx, const lc_hybrid_args *x) {
    const lc__prims *P = lc__prims_for(ctx);
    const lc_hybrid_cfg *cfg = x->cfg;
    int B = x->B, H = x->H, Hk = x->Hk, N = x->N, D = x->D, F = x->F, gg, rep = H / Hk;
    float scale = lc__attn_scale(D);
    const float *dy = x->dy, *da = x->da;
    LC__OMP_FOR
    for (gg = 0; gg < Hk; gg++) {  // one task per kv head (dwf: batches in order)
        int b;
        for (b = 0; b < B; b++) {
            int g = gg, r, i, j, c, d;
            const float *k_bg = x->k + ((size_t)b * Hk + g) * N * D;
            const float *v_bg = x->v + ((size_t)b * Hk + g) * N * D;
            float *dk_bg = x->dk ? x->dk + ((size_t)b * Hk + g) * N * D : NULL;
            float *dv_bg = x->dv ? x->dv + ((size_t)b * Hk + g) * N * D : NULL;
            float gv[1024];
            for (r = 0; r < rep; r++) {
                int h = g * rep + r, bh = b * H + h;
                const float *phik_bh = x->phik + (size_t)bh * N * F, *lg = x->log_g + (size_t)bh * N;
                float *dphik_bh = x->dphik ? x->dphik + (size_t)bh * N * F : NULL;
                float *dlg = x->dlog_g ? x->dlog_g + (size_t)bh * N : NULL;
                const float *S = x->kv_state ? x->kv_state + (size_t)bh * F * D : NULL;
                const float *z = x->k_state ? x->k_state + (size_t)bh * F : NULL;
                float gam = lc__sigmoid(x->wf[h]), lam = cfg->affine ? 1.0f - gam : 1.0f;
                double dgam = 0, dlam = 0;
                for (i = 0; i < N; i++) {
                    size_t row = (size_t)bh * N + i;
                    const float *q_bhi = x->q + row * D, *phiq_bhi = x->phiq + row * F;
                    const float *da_bhi = da ? da + row * N : NULL;
                    const float *dy_bhi = dy ? dy + row * D : NULL;
                    float *dq_bhi = x->dq ? x->dq + row * D : NULL;
                    float *dphiq_bhi = x->dphiq ? x->dphiq + row * F : NULL;
                    float mx = x->m[row], dn = x->den[row], den0 = dn, cd = 0, ca = 0, qz = 0,
                          dyy = 0, gs = 0;
                    double acc0 = 0, acc, tot = 0, suf = 0;
                    int j0, both, jl;
                    lc__hybrid_range(cfg, N, i, &j0, &both);
                    jl = both ? i + 1 : j0;
                    for (j = i; j >= jl; j--) acc0 += (double)lg[j];
                    for (d = 0; d < D; d++) gv[d] = dy_bhi ? dy_bhi[d] / dn : 0.0f;
                    if (dy_bhi) {
                        dyy = P->dot(dy_bhi, x->y + row * D, D);
                        cd = -dyy / dn;
                    }
                    if (S) {
                        double all = acc0;
                        for (j = jl - 1; j >= 0; j--) all += (double)lg[j];
                        gs = (float)exp(all);  // the carried state's decay
                        qz = P->dot(phiq_bhi, z, F);
                        den0 = dn - lam * gs * qz;
                    }
                    if (da_bhi) {  // ca = -sum_j da_ij a_ij / den0
                        double t = 0;
                        LC__HYB_WIN_FOR(j, lc__hyb_nsink(cfg, j0), j0, i)
                            t += (double)da_bhi[j] * (double)gam *
                                 (double)expf(P->dot(q_bhi, k_bg + (size_t)j * D, D) * scale - mx);
                        acc = acc0;
                        for (j = jl - 1; j >= cfg->sinks; j--) {
                            t += (double)da_bhi[j] * (double)(lam * (float)exp(acc)) *
                                 (double)P->dot(phiq_bhi, phik_bh + (size_t)j * F, F);
                            acc += (double)lg[j];
                        }
                        ca = (float)(-t / ((double)den0 * (double)den0));
                    }
                    lc__hyb_win_bwd(P, dq_bhi, dk_bg, dv_bg, &dgam, q_bhi, k_bg, v_bg, dy_bhi, gv,
                                    da_bhi, dyy, dn, den0, ca, mx, lc__hyb_nsink(cfg, j0), j0, i, D, scale,
                                    gam);
                    acc = acc0;
                    for (j = jl - 1; j >= 0; j--) {  // linear keys, descending
                        const float *phik_bhj = phik_bh + (size_t)j * F;
                        float wij, qk, dW;
                        if (j < cfg->sinks) {  // sinks: no linear weight; the suffix stays the row's
                            if (dlg) dlg[j] -= (float)suf;
                            continue;
                        }
                        wij = (float)exp(acc);
                        qk = P->dot(phiq_bhi, phik_bhj, F);
                        dW = dy_bhi ? (P->dot(dy_bhi, v_bg + (size_t)j * D, D) - dyy) / dn : 0.0f;
                        if (da_bhi) dW += da_bhi[j] / den0 + ca;
                        dlam += (double)dW * (double)qk * (double)wij;
                        if (dphiq_bhi) P->axpy(dphiq_bhi, lam * wij * dW, phik_bhj, F);
                        if (dphik_bh) P->axpy(dphik_bh + (size_t)j * F, lam * wij * dW, phiq_bhi, F);
                        if (dy_bhi && dv_bg) P->axpy(dv_bg + (size_t)j * D, lam * wij * qk, gv, D);
                        suf += (double)dW * (double)lam * (double)wij * (double)qk;
                        if (dlg) dlg[j] -= (float)suf;
                        acc += (double)lg[j];
                    }
                    tot = suf;
                    if (S) {  // carried state: num += lam gs phiq S, den += lam gs phiq.z
                        float *dS = x->dkv_state ? x->dkv_state + (size_t)bh * F * D : NULL;
                        float *dz = x->dk_state ? x->dk_state + (size_t)bh * F : NULL;
                        float ls = lam * gs;
                        double t = 0;
                        for (c = 0; c < F; c++) {
                            float sg = P->dot(S + (size_t)c * D, gv, D);
                            t += (double)phiq_bhi[c] * (double)sg;
                            if (dphiq_bhi) dphiq_bhi[c] += ls * (sg + cd * z[c]);
                            if (dS) P->axpy(dS + (size_t)c * D, ls * phiq_bhi[c], gv, D);
                            if (dz) dz[c] += ls * cd * phiq_bhi[c];
                        }
                        t += (double)cd * (double)qz;
                        dlam += t * (double)gs;
                        tot += t * (double)ls;
                    }
                    if (dlg)
                        for (j = 0; j <= i; j++) dlg[j] += (float)tot;
                }
                if (x->dwf) {
                    if (cfg->affine) dgam -= dlam;
                    x->dwf[h] += (float)(dgam * (double)gam * (1.0 - (double)gam));
                }
            }
        }
    }
}

// Prefix-state backward (dy only): O(N (w + F) D). With b_i = sum_{t<=i} log g_t
// every weight is w_ij = exp(b_i - b_j) (the carried state's exp(b_i)), so
// d b_s = T_s - C_s: T_s = sum_j r_sj, the row's total through its state
// (lambda (phiq_s.(S_s gv_s) + cd_s phiq_s.z_s)), C_j = sum_i r_ij, the key's
// (phik_j . its dphik_j share); d log_g_t = sum_{s>=t} d b_s, taken as
// (sum_all T - sum_{s<t} T_s) in the forward sweep and - sum_{s>=t} C_s in the
// reverse one. The reverse state decays as R_i = lambda phiq_i gv_i^T + g_{i+1} R_{i+1};
// a key first read by row i* gets R_{i*} times exp(sum_{j<t<=i*} log g_t).
static void lc__gate_bwd_state(const lc_ctx *ctx, const lc_hybrid_args *x) {
    const lc__prims *P = lc__prims_for(ctx);
    const lc_hybrid_cfg *cfg = x->cfg;
    int B = x->B, H = x->H, Hk = x->Hk, N = x->N, D = x->D, F = x->F, gg, rep = H / Hk;
    float scale = lc__attn_scale(D);
    size_t hf = lc__hyb_head_floats(D, F, NULL, NULL);
    LC__OMP_FOR
    for (gg = 0; gg < Hk; gg++) {  // one task per kv head (dwf: batches in order)
        int b;
        for (b = 0; b < B; b++) {
            int g = gg, r, i, j, c, d;
            const float *k_bg = x->k + ((size_t)b * Hk + g) * N * D;
            const float *v_bg = x->v + ((size_t)b * Hk + g) * N * D;
            float *dk_bg = x->dk ? x->dk + ((size_t)b * Hk + g) * N * D : NULL;
            float *dv_bg = x->dv ? x->dv + ((size_t)b * Hk + g) * N * D : NULL;
            float gv[1024];
            for (r = 0; r < rep; r++) {
                int h = g * rep + r, bh = b * H + h, jadd = cfg->sinks, jnext;  // sinks: never in S
                const float *phik_bh = x->phik + (size_t)bh * N * F, *lg = x->log_g + (size_t)bh * N;
                float *dphik_bh = x->dphik ? x->dphik + (size_t)bh * N * F : NULL;
                float *dlg = x->dlog_g ? x->dlog_g + (size_t)bh * N : NULL;
                float *S = x->work + (size_t)bh * hf, *z = S + (size_t)F * D;
                float gam = lc__sigmoid(x->wf[h]), lam = cfg->affine ? 1.0f - gam : 1.0f;
                double dgam = 0, dlam = 0, tsum = 0, csum = 0;
                if (x->kv_state) {
                    memcpy(S, x->kv_state + (size_t)bh * F * D, sizeof(float) * (size_t)F * D);
                    memcpy(z, x->k_state + (size_t)bh * F, sizeof(float) * (size_t)F);
                } else {
                    memset(S, 0, sizeof(float) * (size_t)F * ((size_t)D + 1));
                }
                for (i = 0; i < N; i++) {  // forward sweep: the state as the forward built it
                    size_t row = (size_t)bh * N + i;
                    const float *q_bhi = x->q + row * D, *phiq_bhi = x->phiq + row * F;
                    const float *dy_bhi = x->dy + row * D;
                    float dn = x->den[row], dyy = P->dot(dy_bhi, x->y + row * D, D), cd = -dyy / dn;
                    double t = 0, qz;
                    int j0, both, jl;
                    lc__hybrid_range(cfg, N, i, &j0, &both);
                    jl = both ? i + 1 : j0;
                    lc__gate_state_step(P, S, lg, phik_bh, v_bg, i, jl, &jadd, D, F);
                    for (d = 0; d < D; d++) gv[d] = dy_bhi[d] / dn;
                    lc__hyb_win_bwd(P, x->dq ? x->dq + row * D : NULL, dk_bg, dv_bg, &dgam, q_bhi, k_bg,
                                    v_bg, dy_bhi, gv, NULL, dyy, dn, dn, 0, x->m[row], lc__hyb_nsink(cfg, j0),
                                    j0, i, D, scale, gam);
                    qz = (double)P->dot(phiq_bhi, z, F);
                    for (c = 0; c < F; c++) {
                        float sg = P->dot(S + (size_t)c * D, gv, D);
                        t += (double)phiq_bhi[c] * (double)sg;
                        if (x->dphiq) x->dphiq[row * F + c] += lam * (sg + cd * z[c]);
                    }
                    t += (double)cd * qz;
                    dlam += t;
                    if (dlg) dlg[i] -= (float)tsum;  // - sum_{s<i} T_s
                    tsum += (double)lam * t;
                }
                // reverse sweep: S becomes R, z becomes its c
                memset(S, 0, sizeof(float) * (size_t)F * ((size_t)D + 1));
                jnext = N;
                for (i = N - 1; i >= -1; i--) {
                    int jlo = 0, j0, both;
                    double acc = 0;
                    if (i >= 0) {
                        lc__hybrid_range(cfg, N, i, &j0, &both);
                        jlo = both ? i + 1 : j0;
                        if (i == N - 1) jnext = jlo;
                    }
                    if (i + 1 < N)  // keys whose first row is i+1: decay over (j, i+1]
                        for (j = i + 1; j >= jnext; j--) acc += (double)lg[j];
                    for (j = jnext - 1; j >= jlo; j--) {
                        const float *phik_bhj = phik_bh + (size_t)j * F;
                        float u;
                        double cj = 0;
                        if (j < cfg->sinks) {  // sinks: no key share, the suffix still counts
                            if (dlg) dlg[j] -= (float)csum;
                            continue;
                        }
                        u = (float)exp(acc);
                        for (c = 0; c < F; c++) {
                            float dp = u * (P->dot(S + (size_t)c * D, v_bg + (size_t)j * D, D) + z[c]);
                            if (dphik_bh) dphik_bh[(size_t)j * F + c] += dp;
                            cj += (double)dp * (double)phik_bhj[c];
                            if (dv_bg) P->axpy(dv_bg + (size_t)j * D, u * phik_bhj[c], S + (size_t)c * D, D);
                        }
                        csum += cj;
                        if (dlg) dlg[j] -= (float)csum;  // - sum_{s>=j} C_s
                        acc += (double)lg[j];
                    }
                    jnext = jlo;
                    if (i >= 0) {
                        size_t row = (size_t)bh * N + i;
                        const float *phiq_bhi = x->phiq + row * F, *dy_bhi = x->dy + row * D;
                        float dn = x->den[row], cd = -P->dot(dy_bhi, x->y + row * D, D) / dn;
                        if (i + 1 < N) {
                            float gn = (float)exp((double)lg[i + 1]);
                            if (gn != 1.0f) P->scal(S, gn, F * (D + 1));
                        }
                        for (d = 0; d < D; d++) gv[d] = lam * dy_bhi[d] / dn;
                        for (c = 0; c < F; c++) {
                            P->axpy(S + (size_t)c * D, phiq_bhi[c], gv, D);
                            z[c] += lam * cd * phiq_bhi[c];
                        }
                    }
                }
                if (x->kv_state) {  // the carried state reads R_0 decayed by g_0
                    float g0 = (float)exp((double)lg[0]);
                    if (x->dkv_state)
                        for (c = 0; c < F * D; c++) x->dkv_state[(size_t)bh * F * D + c] += g0 * S[c];
                    if (x->dk_state)
                        for (c = 0; c < F; c++) x->dk_state[(size_t)bh * F + c] += g0 * z[c];
                }
                if (dlg)
                    for (i = 0; i < N; i++) dlg[i] += (float)tsum;  // + sum_all T
                if (x->dwf) {
                    if (cfg->affine) dgam -= dlam;
                    x->dwf[h] += (float)(dgam * (double)gam * (1.0 - (double)gam));
                }
            }
        }
    }
}

static void lc__gate_hybrid_bwd(const lc_ctx *ctx, const lc_hybrid_args *x) {
#if !defined(LOLCATS_NO_FAST)
    if (x->work && x->dy && !x->da && x->cfg->window <= LC__HYB_WMAX &&
        lc__hyb_sinks_fit(x->cfg, x->N)) {  // the chunked form
        lc__gate_bwd_chunk(ctx, x);
        return;
    }
#endif
    if (x->work && x->dy && !x->da)
        lc__gate_bwd_state(ctx, x);
    else
        lc__gate_bwd_quad(ctx, x);
}

// Gate projection: log_g[b,h,n] = log sigmoid(x[b,n,:] . w_g[h,:] + b_g[h]),
// computed as -log1p(exp(-u)) (u >= 0) or u - log1p(exp(u)), exact for any u.
// d/du log sigmoid(u) = sigmoid(-u).
LCIMPL void lc_gate_proj_fwd(const lc_ctx *ctx, float *log_g, const float *x, const float *w_g,
                             const float *b_g, int B, int H, int N, int dim) {
    const lc__prims *P = lc__prims_for(ctx);
    int bh;
    LC__OMP_FOR
    for (bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H, n;
        for (n = 0; n < N; n++) {
            double u = (double)P->dot(x + ((size_t)b * N + n) * dim, w_g + (size_t)h * dim, dim) +
                       (double)b_g[h];
            log_g[(size_t)bh * N + n] = (float)(u >= 0 ? -log1p(exp(-u)) : u - log1p(exp(u)));
        }
    }
}

LCIMPL void lc_gate_proj_bwd(const lc_ctx *ctx, float *dx, float *dw_g, float *db_g,
                             const float *dlog_g, const float *x, const float *w_g,
                             const float *b_g, int B, int H, int N, int dim) {
    const lc__prims *P = lc__prims_for(ctx);
    int h, b, n;
    for (h = 0; h < H; h++) {  // dw_g, db_g: heads in order, batches and tokens in order
        double db = 0;
        for (b = 0; b < B; b++)
            for (n = 0; n < N; n++) {
                const float *x_bn = x + ((size_t)b * N + n) * dim;
                double u = (double)P->dot(x_bn, w_g + (size_t)h * dim, dim) + (double)b_g[h];
                float t = (float)((double)dlog_g[((size_t)b * H + h) * N + n] / (1.0 + exp(u)));
                db += (double)t;
                if (dw_g) P->axpy(dw_g + (size_t)h * dim, t, x_bn, dim);
                if (dx) P->axpy(dx + ((size_t)b * N + n) * dim, t, w_g + (size_t)h * dim, dim);
            }
        if (db_g) db_g[h] += (float)db;
    }
}

// Gated decode: before lc_attn_hybrid_decode evicts the key at position
// pos - w, its ring features are scaled by its decay to this token,
// exp(sum of the window's log g) (logg_ring holds the log g of the last w
// tokens per head), and S, z decay by g_pos; then the ungated step.
LCIMPL void lc_attn_hybrid_decode_gated(const lc_ctx *ctx, float *y, lc_decode_state *st,
                                        float *logg_ring, const float *q, const float *k,
                                        const float *v, const float *phiq, const float *phik,
                                        const float *wf, const float *log_g, int affine) {
    lc__gate_dec_pre(lc__prims_for(ctx), st, logg_ring, log_g, 1);
    lc_attn_hybrid_decode(ctx, y, st, q, k, v, phiq, phik, wf, affine);
}

// The gate's part of one decode step (log_g[h * ld] per head), before the
// ungated step (lc_attn_hybrid_decode, or linearized inference's push).
static void lc__gate_dec_pre(const lc__prims *P, lc_decode_state *st, float *logg_ring, const float *log_g,
                             size_t ld) {
    int H = st->H, D = st->D, F = st->F, w = st->window, h, t;
    int slot = (int)(st->pos % w);
    for (h = 0; h < H; h++) {
        float lg = log_g[(size_t)h * ld], gi = (float)exp((double)lg);
        float *lr = logg_ring + (size_t)h * w;
        if (gi != 1.0f) {
            P->scal(st->S + (size_t)h * F * D, gi, F * D);
            P->scal(st->z + (size_t)h * F, gi, F);
        }
        if (st->pos >= w) {
            double acc = (double)lg;
            for (t = 1; t < w; t++) acc += (double)lr[(slot + t) % w];  // positions pos-w+1 .. pos-1
            if (acc != 0) P->scal(st->phik_ring + ((size_t)h * w + slot) * F, (float)exp(acc), F);
        }
        lr[slot] = lg;
    }
}

// >>transfer
LCIMPL size_t lc_attn_transfer_work_floats(int B, int H, int N, int D, int F) {
    size_t nch = (size_t)(N + LC__HYB_ROWS - 1) / LC__HYB_ROWS;
    size_t st = (size_t)B * H * nch * ((size_t)F * D + F), own = 2 * (size_t)B * H * N * (D + 1);
    return lc_attn_hybrid_work_floats(B, H, D, F) + (st > own ? st : own);
}

LCIMPL void lc_attn_transfer_fwd(const lc_ctx *ctx, float *yt, float *lse, float *y, float *m,
                                 float *den, float *work, const float *q, const float *k,
                                 const float *v, const float *phiq, const float *phik,
                                 const float *wf, int B, int H, int Hk, int N, int D, int F,
                                 const lc_hybrid_cfg *cfg) {
    const lc__kern *K;
    lc_ctx ref_;
    LOLCATS_ASSERT(work && H % Hk == 0);
    ctx = lc__ctx_finite(ctx, &ref_, 6, q, (size_t)B * H * N * D, k, (size_t)B * Hk * N * D, v, (size_t)B * Hk * N * D, phiq, (size_t)B * H * N * F, phik, (size_t)B * H * N * F, wf, (size_t)H);
    K = lc__kern_for(ctx);
    if (K->xfer_fwd && K->xfer_fwd(ctx, yt, lse, y, m, den, work, q, k, v, phiq, phik, wf, B, H,
                                   Hk, N, D, F, cfg))
        return;  // the student inside the teacher's tiles (>>transfer-fused)
    lc_attn_softmax_fwd(ctx, yt, lse, q, k, v, B, H, Hk, N, D);
    lc_attn_hybrid_fwd(ctx, y, NULL, m, den, work, q, k, v, phiq, phik, wf, NULL, NULL, B, H, Hk,
                       N, D, F, cfg);
}

LCIMPL void lc_attn_transfer_bwd(const lc_ctx *ctx, float *dphiq, float *dphik, float *dwf,
                                 float *work, const float *dy, const float *y, const float *m,
                                 const float *den, const float *q, const float *k,
                                 const float *v, const float *phiq, const float *phik,
                                 const float *wf, int B, int H, int Hk, int N, int D, int F,
                                 const lc_hybrid_cfg *cfg) {
    const lc__kern *K;
    lc_ctx ref_;
    LOLCATS_ASSERT(work && H % Hk == 0);
    ctx = lc__ctx_finite(ctx, &ref_, 7, q, (size_t)B * H * N * D, k, (size_t)B * Hk * N * D, v, (size_t)B * Hk * N * D, phiq, (size_t)B * H * N * F, phik, (size_t)B * H * N * F, wf, (size_t)H,
                         dy, (size_t)B * H * N * D);
    K = lc__kern_for(ctx);
    if (!(K->xfer_bwd && K->xfer_bwd(ctx, dphiq, dphik, dwf, work, dy, y, den, v, phiq, wf, B, H,
                                     Hk, N, D, F, cfg)))  // from the stored states (>>transfer-fused)
        lc_attn_hybrid_bwd(ctx, NULL, NULL, NULL, dphiq, dphik, dwf, NULL, NULL, work, dy, NULL,
                           y, m, den, q, k, v, phiq, phik, wf, NULL, NULL, B, H, Hk, N, D, F, cfg);
}

LCIMPL double lc_attn_transfer_mse(const lc_ctx *ctx, float *yt, float *lse, float *y, float *m,
                                   float *den, float *dphiq, float *dphik, float *dwf,
                                   float *work, const float *q, const float *k, const float *v,
                                   const float *phiq, const float *phik, const float *wf, int B,
                                   int H, int Hk, int N, int D, int F, float factor,
                                   const lc_hybrid_cfg *cfg) {
    size_t n = (size_t)B * H * N * D, nr = (size_t)B * H * N;
    float *rest = work + lc_attn_hybrid_work_floats(B, H, D, F), *dy = rest + n;
    double loss;
    const lc__kern *K;
    lc_ctx ref_;
    LOLCATS_ASSERT(work && H % Hk == 0);
    ctx = lc__ctx_finite(ctx, &ref_, 6, q, (size_t)B * H * N * D, k, (size_t)B * Hk * N * D, v, (size_t)B * Hk * N * D, phiq, (size_t)B * H * N * F, phik, (size_t)B * H * N * F, wf, (size_t)H);
    K = lc__kern_for(ctx);
    if (K->xfer_mse && K->xfer_mse(ctx, &loss, yt, lse, y, m, den, dphiq, dphik, dwf, work, q, k,
                                   v, phiq, phik, wf, B, H, Hk, N, D, F, factor, cfg))
        return loss;  // the fused step (>>transfer-fused)
    // the two attentions, the loss and the backward by their own calls
    if (!y) y = rest;
    if (!m) m = dy + n;
    if (!den) den = dy + n + nr;
    lc_attn_softmax_fwd(ctx, yt, lse, q, k, v, B, H, Hk, N, D);
    lc_attn_hybrid_fwd(ctx, y, NULL, m, den, work, q, k, v, phiq, phik, wf, NULL, NULL, B, H, Hk,
                       N, D, F, cfg);
    if (dphiq) memset(dy, 0, sizeof(float) * n);
    loss = lc_loss_mse(dphiq ? dy : NULL, y, yt, n, factor);
    if (!dphiq) return loss;
    memset(dphiq, 0, sizeof(float) * (size_t)B * H * N * F);
    memset(dphik, 0, sizeof(float) * (size_t)B * H * N * F);
    lc_attn_hybrid_bwd(ctx, NULL, NULL, NULL, dphiq, dphik, dwf, NULL, NULL, work, dy, NULL, y, m,
                       den, q, k, v, phiq, phik, wf, NULL, NULL, B, H, Hk, N, D, F, cfg);
    return loss;
}

// >>decode
// One token of hybrid attention for one sequence (the original's recurrent
// path, LolcatsWindowAttentionTKGen / sliding window cache). The ring holds
// the w most recent keys, the current one included; a key leaving it goes
// into the linear state: S += phik_old v_old^T, z += phik_old. Then
//   y = (sum_ring gamma exp(s - m) v + lambda phiq S) / (sum_ring gamma exp(s - m) + lambda phiq.z)
// with no eps, exactly the sw prefill. For tk models this differs from the
// terraced prefill, as in the original. Sinks (S > 0): the first S keys are
// also kept beside the ring; once out of it they still join the window sums
// (and m) and never enter S, z.

// >>decode-sinks: the sink keys of a decode state (see lc_decode_state_init_sinks).
// Sink keys that left the ring after this token is added (pos = tokens before it).
static int lc__dec_nsink(const lc_decode_state *st) {
    int64_t left = st->pos + 1 - st->window;  // keys [0, left) are out of the ring
    if (left <= 0 || st->sinks <= 0) return 0;
    return left < st->sinks ? (int)left : st->sinks;
}

// keeps the key / value of position st->pos (< sinks); kv head g at k + g ld
static void lc__dec_keep_sink(lc_decode_state *st, const float *k, const float *v, size_t ld) {
    int g, S = st->sinks, D = st->D;
    for (g = 0; g < st->Hk; g++) {
        memcpy(st->k_sink + ((size_t)g * S + st->pos) * D, k + (size_t)g * ld, sizeof(float) * D);
        memcpy(st->v_sink + ((size_t)g * S + st->pos) * D, v + (size_t)g * ld, sizeof(float) * D);
    }
}

static float lc__dec_sink_max(const lc__prims *P, const lc_decode_state *st, int g,
                              const float *q_h, float scale, int ns, float mx) {
    const float *k_g = st->k_sink + (size_t)g * st->sinks * st->D;
    int t;
    for (t = 0; t < ns; t++) {
        float s = P->dot(q_h, k_g + (size_t)t * st->D, st->D) * scale;
        if (s > mx) mx = s;
    }
    return mx;
}

// adds gamma exp(s - mx) v of the ns sink keys to y_h, returns their sum
static double lc__dec_sink_sum(const lc__prims *P, const lc_decode_state *st, int g, float *y_h,
                               const float *q_h, float scale, int ns, float mx, float gam) {
    const float *k_g = st->k_sink + (size_t)g * st->sinks * st->D;
    const float *v_g = st->v_sink + (size_t)g * st->sinks * st->D;
    double sum = 0;
    int t;
    for (t = 0; t < ns; t++) {
        float e = gam * expf(P->dot(q_h, k_g + (size_t)t * st->D, st->D) * scale - mx);
        sum += (double)e;
        P->axpy(y_h, e, v_g + (size_t)t * st->D, st->D);
    }
    return sum;
}
// >>decode-sinks-end

LCIMPL size_t lc_decode_state_floats(int H, int Hk, int D, int F, int window) {
    return lc_decode_state_floats_sinks(H, Hk, D, F, window, 0);
}

LCIMPL void lc_decode_state_init(lc_decode_state *st, float *mem, int H, int Hk, int D, int F,
                                 int window) {
    lc_decode_state_init_sinks(st, mem, H, Hk, D, F, window, 0);
}

// Layout: k_ring v_ring phik_ring S z, then (sinks) k_sink v_sink.
LCIMPL size_t lc_decode_state_floats_sinks(int H, int Hk, int D, int F, int window, int sinks) {
    LOLCATS_ASSERT(sinks >= 0);
    return (size_t)Hk * window * D * 2 + (size_t)H * window * F + (size_t)H * F * D +
           (size_t)H * F + (size_t)Hk * sinks * D * 2;
}

LCIMPL void lc_decode_state_init_sinks(lc_decode_state *st, float *mem, int H, int Hk, int D,
                                       int F, int window, int sinks) {
    st->H = H; st->Hk = Hk; st->D = D; st->F = F; st->window = window;
    st->pos = 0;
    memset(mem, 0, sizeof(float) * lc_decode_state_floats_sinks(H, Hk, D, F, window, sinks));
    st->k_ring = mem;
    st->v_ring = st->k_ring + (size_t)Hk * window * D;
    st->phik_ring = st->v_ring + (size_t)Hk * window * D;
    st->S = st->phik_ring + (size_t)H * window * F;
    st->z = st->S + (size_t)H * F * D;
    st->sinks = sinks;
    st->k_sink = sinks > 0 ? st->z + (size_t)H * F : NULL;
    st->v_sink = sinks > 0 ? st->k_sink + (size_t)Hk * sinks * D : NULL;
}

LCIMPL void lc_attn_hybrid_decode(const lc_ctx *ctx, float *y, lc_decode_state *st,
                                  const float *q, const float *k, const float *v,
                                  const float *phiq, const float *phik, const float *wf,
                                  int affine) {
    const lc__prims *P = lc__prims_for(ctx);
    int H = st->H, Hk = st->Hk, D = st->D, F = st->F, w = st->window, h, g;
    int slot = (int)(st->pos % w), count = st->pos + 1 < w ? (int)st->pos + 1 : w;
    int ns = lc__dec_nsink(st);  // sink keys that left the ring: window keys still
    float scale = lc__attn_scale(D);
    if (st->pos < st->sinks) lc__dec_keep_sink(st, k, v, (size_t)D);
    if (st->pos >= w && st->pos - w >= st->sinks) {  // evict the oldest key into the linear state
        for (h = 0; h < H; h++) {
            int gg = h / (H / Hk), c;
            const float *phik_old = st->phik_ring + ((size_t)h * w + slot) * F;
            const float *v_old = st->v_ring + ((size_t)gg * w + slot) * D;
            for (c = 0; c < F; c++) {
                P->axpy(st->S + ((size_t)h * F + c) * D, phik_old[c], v_old, D);
                st->z[(size_t)h * F + c] += phik_old[c];
            }
        }
    }
    for (g = 0; g < Hk; g++) {
        memcpy(st->k_ring + ((size_t)g * w + slot) * D, k + (size_t)g * D, sizeof(float) * D);
        memcpy(st->v_ring + ((size_t)g * w + slot) * D, v + (size_t)g * D, sizeof(float) * D);
    }
    for (h = 0; h < H; h++)
        memcpy(st->phik_ring + ((size_t)h * w + slot) * F, phik + (size_t)h * F, sizeof(float) * F);
    st->pos++;
    LC__OMP_FOR
    for (h = 0; h < H; h++) {
        int gg = h / (H / Hk), t, c, d;
        const float *q_h = q + (size_t)h * D, *phiq_h = phiq + (size_t)h * F;
        const float *k_g = st->k_ring + (size_t)gg * w * D, *v_g = st->v_ring + (size_t)gg * w * D;
        float gam = lc__sigmoid(wf[h]), lam = affine ? 1.0f - gam : 1.0f, mx = -INFINITY;
        float *y_h = y + (size_t)h * D;
        double sum = 0;
        for (t = 0; t < count; t++) {
            float s = P->dot(q_h, k_g + (size_t)t * D, D) * scale;
            if (s > mx) mx = s;
        }
        if (ns) mx = lc__dec_sink_max(P, st, gg, q_h, scale, ns, mx);
        for (d = 0; d < D; d++) y_h[d] = 0;
        for (t = 0; t < count; t++) {
            float e = gam * expf(P->dot(q_h, k_g + (size_t)t * D, D) * scale - mx);
            sum += (double)e;
            P->axpy(y_h, e, v_g + (size_t)t * D, D);
        }
        if (ns) sum += lc__dec_sink_sum(P, st, gg, y_h, q_h, scale, ns, mx, gam);
        for (c = 0; c < F; c++) P->axpy(y_h, lam * phiq_h[c], st->S + ((size_t)h * F + c) * D, D);
        sum += (double)(lam * P->dot(phiq_h, st->z + (size_t)h * F, F));
        for (d = 0; d < D; d++) y_h[d] = (float)((double)y_h[d] / sum);
    }
}

// >>loss
// Attention-transfer losses (DistillAttentionXentMSETrainer.compute_loss).

// Summed in 64 fixed parts of four running sums each, added in order: the same
// result for any thread count, and no chain of n dependent additions.
LCIMPL double lc_loss_mse(float *dpred, const float *pred, const float *target, size_t n,
                          float factor) {
    double part[64], s = 0, c = 2.0 * (double)factor / (double)n;
    int p;
    LC__OMP_FOR_STATIC
    for (p = 0; p < 64; p++) {
        size_t i = n / 64 * (size_t)p + (n % 64 < (size_t)p ? n % 64 : (size_t)p);
        size_t e = i + n / 64 + ((size_t)p < n % 64);
        double a[4] = {0, 0, 0, 0};
        for (; i < e; i++) {
            double d = (double)pred[i] - (double)target[i];
            a[i & 3] += d * d;
            if (dpred) dpred[i] += (float)(d * c);
        }
        part[p] = (a[0] + a[1]) + (a[2] + a[3]);
    }
    for (p = 0; p < 64; p++) s += part[p];
    return s / (double)n * (double)factor;
}

// Per row: input x_j = log(max(a_j, 1e-12)), loss = -sum_j t_j log_softmax(x)_j
//   = -sum_j t_j log a~_j + (sum_j t_j) log sum_k a~_k
//   d/da_j = (-t_j / a~_j + (sum t) / (sum a~)) where a_j >= 1e-12, else 0.
LCIMPL double lc_loss_xent(float *da_pred, const float *a_pred, const float *a_true,
                           size_t rows, int cols, float factor) {
    double total = 0;
    size_t r;
    int j;
    for (r = 0; r < rows; r++) {
        const float *p = a_pred + r * cols, *t = a_true + r * cols;
        double sa = 0, st = 0, l = 0;
        for (j = 0; j < cols; j++) {
            float at = p[j] < 1e-12f ? 1e-12f : p[j];
            sa += (double)at;
            st += (double)t[j];
            l -= (double)t[j] * log((double)at);
        }
        l += st * log(sa);
        total += l;
        if (da_pred)
            for (j = 0; j < cols; j++) {
                float at = p[j] < 1e-12f ? 1e-12f : p[j];
                if (p[j] >= 1e-12f)
                    da_pred[r * cols + j] +=
                        (float)((-(double)t[j] / (double)at + st / sa) / (double)rows * (double)factor);
            }
    }
    return total / (double)rows * (double)factor;
}

// >>kl
// Stage-2 distillation to the teacher's next-token distributions (issue 19 item 4,
// `linearize --kl-factor A`). Per scored row t (labels[t] >= 0; every row when
// labels is NULL), with temperature tau:
//   p = softmax(teacher_t / tau)      q = softmax(student_t / tau)
//   kl_t = sum_v p_v (log p_v - log q_v)            (nats; 0 iff p == q)
//   loss = factor * tau^2 * (1/n) sum_t kl_t
//   d loss / d student_tv = factor * tau * (q_v - p_v) / n
// The tau^2 is Hinton et al.'s convention (a deliberate choice, documented in the
// API): it keeps the gradient's size independent of tau, so A means the same
// at every temperature; at tau = 1 it is 1. Both log-sum-exps are taken in
// double after subtracting the row maximum, so any finite logits are safe.
// Rows are cut into 64 fixed parts summed in order: the same result for any
// thread count. dlogits is SET (0 on unscored rows), like lc_xent_fwd_bwd's,
// and may be the same buffer as student or teacher (each element is read
// before it is written).
LCIMPL double lc_loss_kl(float *dlogits, const float *student, const float *teacher, const int *labels, int T,
                         int V, float tau, float factor, int *n_counted) {
    double part[64], total = 0, itau = 1.0 / (double)tau;
    int p, n = 0, t;
    for (t = 0; t < T; t++) n += !labels || labels[t] >= 0;
    LC__OMP_FOR_STATIC
    for (p = 0; p < 64; p++) {
        int r = T / 64 * p + (T % 64 < p ? T % 64 : p), e = r + T / 64 + (p < T % 64), v;
        part[p] = 0;
        for (; r < e; r++) {
            const float *s_r = student + (size_t)r * V, *t_r = teacher + (size_t)r * V;
            float *d_r = dlogits ? dlogits + (size_t)r * V : NULL;
            double ms, mt, ss = 0, st = 0, lq, lp, kl = 0, g;
            if (labels && labels[r] < 0) {
                if (d_r) memset(d_r, 0, sizeof(float) * (size_t)V);
                continue;
            }
            ms = (double)s_r[0] * itau;
            mt = (double)t_r[0] * itau;
            for (v = 1; v < V; v++) {
                double a = (double)s_r[v] * itau, b = (double)t_r[v] * itau;
                if (a > ms) ms = a;
                if (b > mt) mt = b;
            }
            for (v = 0; v < V; v++) {
                ss += exp((double)s_r[v] * itau - ms);
                st += exp((double)t_r[v] * itau - mt);
            }
            lq = ms + log(ss);   // log-sum-exp of student / tau
            lp = mt + log(st);
            g = (double)factor * (double)tau / (double)n;
            for (v = 0; v < V; v++) {
                double a = (double)s_r[v] * itau, b = (double)t_r[v] * itau;
                double lpv = b - lp, pv = exp(lpv);
                if (pv > 0) kl += pv * (lpv - (a - lq));
                if (d_r) d_r[v] = (float)(g * (exp(a - lq) - pv));
            }
            part[p] += kl;
        }
    }
    for (p = 0; p < 64; p++) total += part[p];
    if (n_counted) *n_counted = n;
    return n ? total / (double)n * (double)tau * (double)tau * (double)factor : 0.0;
}

// The trainer's side (hooks in lc_train_lm_step, lc_train_free,
// lc_train_memory_bytes): the frozen model runs forward with softmax
// attention and no LoRA (lc_model_forward, prefill from position 0) into one
// sequence's (T,V) teacher logits, allocated at the first use and kept; with
// cfg.kl_cache_bytes the logits of each distinct sequence are kept too while
// they fit, and a sequence seen again (the next epoch) skips the teacher.
struct lc__kl_entry {             // one token sequence's teacher logits
    uint64_t hash;
    int T;
    int *tokens;                  // (T) compared in full on a hash match
    float *logits;                // (T, V)
};

typedef struct lc__kl_state {
    lc_run run;
    float *logits;                // (max_tokens, V) teacher logits, then the KL gradient
    struct lc__kl_entry *ent;     // cfg.kl_cache_bytes: kept sequences
    int n_ent, cap_ent;
    size_t cache_used;            // bytes of the entries' tokens and logits
    long hits, misses;
} lc__kl_state;

static uint64_t lc__kl_hash(const int *tokens, int T) {
    uint64_t h = 14695981039346656037ull;   // FNV-1a over the token ids
    int i;
    for (i = 0; i < T; i++) h = (h ^ (uint32_t)tokens[i]) * 1099511628211ull;
    return h ^ (uint64_t)T;
}

// The cached teacher logits of tokens, or NULL.
static const float *lc__kl_cached(const lc__kl_state *k, const int *tokens, int T) {
    uint64_t h = lc__kl_hash(tokens, T);
    int i;
    for (i = 0; i < k->n_ent; i++)
        if (k->ent[i].hash == h && k->ent[i].T == T && !memcmp(k->ent[i].tokens, tokens, sizeof(int) * (size_t)T))
            return k->ent[i].logits;
    return NULL;
}

// Keeps a copy of the teacher's logits of tokens while the budget allows (no
// room or no memory: not kept, nothing else changes).
static void lc__kl_keep(lc__kl_state *k, size_t budget, const int *tokens, const float *logits, int T, int V) {
    size_t need = sizeof(int) * (size_t)T + sizeof(float) * (size_t)T * V;
    struct lc__kl_entry *e;
    if (need > budget || k->cache_used > budget - need) return;
    if (k->n_ent == k->cap_ent) {
        int cap = k->cap_ent ? 2 * k->cap_ent : 16;
        void *p = LOLCATS_REALLOC(k->ent, sizeof *k->ent * (size_t)cap);
        if (!p) return;
        k->ent = (struct lc__kl_entry *)p;
        k->cap_ent = cap;
    }
    e = &k->ent[k->n_ent];
    e->tokens = (int *)LOLCATS_MALLOC(sizeof(int) * (size_t)T);
    e->logits = (float *)LOLCATS_MALLOC(sizeof(float) * (size_t)T * V);
    if (!e->tokens || !e->logits) {
        LOLCATS_FREE(e->tokens);
        LOLCATS_FREE(e->logits);
        return;
    }
    memcpy(e->tokens, tokens, sizeof(int) * (size_t)T);
    memcpy(e->logits, logits, sizeof(float) * (size_t)T * V);
    e->hash = lc__kl_hash(tokens, T);
    e->T = T;
    k->n_ent++;
    k->cache_used += need;
}

static int lc__kl_mixed(const lc_train_cfg *c) { return c->kl_factor != 0.0f || c->ce_factor != 1.0f; }

static void lc__kl_free(void **state) {
    lc__kl_state *k = (lc__kl_state *)*state;
    int i;
    if (!k) return;
    lc_run_free(&k->run);
    LOLCATS_FREE(k->logits);
    for (i = 0; i < k->n_ent; i++) {
        LOLCATS_FREE(k->ent[i].tokens);
        LOLCATS_FREE(k->ent[i].logits);
    }
    LOLCATS_FREE(k->ent);
    LOLCATS_FREE(k);
    *state = NULL;
}

// Bytes the teacher state takes (0 when kl_factor is 0): the logits, an
// lc_run of max_tokens (its KV cache and activations), the cache's budget.
static size_t lc__kl_bytes(const lc_model *m, const lc_train_cfg *cfg) {
    const lc_model_config *c = &m->cfg;
    size_t T = (size_t)cfg->max_tokens, kv, qd = (size_t)c->n_heads * c->head_dim;
    size_t xd = qd > (size_t)c->dim ? qd : (size_t)c->dim;
    if (cfg->kl_factor == 0.0f) return 0;
    kv = (size_t)c->n_layers * c->n_kv_heads * T * c->head_dim;
    return sizeof(float) * (T * c->vocab_size + 2 * kv + T * c->head_dim + (size_t)(2 * c->n_layers + 1) * c->dim +
                            T * ((size_t)c->dim + xd + 2 * qd + 2 * (size_t)c->n_kv_heads * c->head_dim +
                                 2 * (size_t)c->hidden_dim) + (size_t)c->n_heads * T + c->vocab_size + 4 * T + 4) +
           cfg->kl_cache_bytes;
}

// The next-token loss of lc_train_lm_step when KL or a CE weight is asked for:
//   loss = ce_factor * CE + kl_factor * tau^2 * KL(teacher || student)
// logits (T,V) become d loss / d logits when backward. *ce and *kl get the
// unweighted parts (CE; tau^2 KL).
static lc_status lc__kl_loss(void **state, const lc_ctx *ctx, const lc_model *m, const lc_train_cfg *cfg,
                             const int *tokens, const int *labels, float *logits, int T, int backward, double *loss,
                             double *ce, double *kl, int *n_scored, lc_error *err) {
    int V = m->cfg.vocab_size, ns = 0;
    size_t i, n = (size_t)T * V;
    float cf = cfg->ce_factor;
    lc__kl_state *k = (lc__kl_state *)*state;
    const float *cached;
    lc_status st;
    if (!(cfg->kl_factor >= 0.0f && cfg->kl_factor <= 1e9f) || !(cfg->kl_temp > 0.0f && cfg->kl_temp <= 1e6f) ||
        !(cfg->ce_factor >= 0.0f && cfg->ce_factor <= 1e9f))
        return lc_error_set(err, LOLCATS_ERR_ARG,
                            "bad stage-2 loss weights: kl_factor %g (0..1e9), kl_temp %g (> 0, <= 1e6), ce_factor %g "
                            "(0..1e9)", (double)cfg->kl_factor, (double)cfg->kl_temp, (double)cfg->ce_factor);
    *kl = 0;
    if (cfg->kl_factor > 0.0f) {
        if (cfg->trainable & LOLCATS_TRAIN_FULL)
            return lc_error_set(err, LOLCATS_ERR_ARG, "kl_factor %g: distillation needs a frozen teacher, and "
                                "full training (LOLCATS_TRAIN_FULL) changes the model itself: set kl_factor 0",
                                (double)cfg->kl_factor);
        if (T > m->cfg.seq_len && m->cfg.seq_len > 0)
            return lc_error_set(err, LOLCATS_ERR_ARG, "kl_factor: the teacher runs %d tokens, beyond the model's "
                                "context %d: lower the sequence length", T, m->cfg.seq_len);
        if (!k) {
            int cap = cfg->max_tokens > T ? cfg->max_tokens : T;
            k = (lc__kl_state *)LOLCATS_MALLOC(sizeof *k);
            if (!k) return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory for the teacher's state");
            memset(k, 0, sizeof *k);
            *state = k;
            k->logits = (float *)LOLCATS_MALLOC(sizeof(float) * (size_t)cap * V);
            if (!k->logits)
                return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory for the teacher's logits (%d x %d floats): "
                                    "lower the sequence length", cap, V);
            if ((st = lc_run_init(&k->run, m, cap, cap, err))) return st;
        }
        if (T > k->run.max_tokens)
            return lc_error_set(err, LOLCATS_ERR_ARG, "kl_factor: %d tokens, the teacher was set up for %d (max_tokens)",
                                T, k->run.max_tokens);
        if (cfg->kl_cache_bytes && (cached = lc__kl_cached(k, tokens, T)) != NULL) {
            memcpy(k->logits, cached, sizeof(float) * n);
            k->hits++;
        } else {
            lc_run_reset(&k->run);
            if ((st = lc_model_forward(ctx, m, &k->run, tokens, T, k->logits, err))) return st;
            k->misses++;
            if (cfg->kl_cache_bytes) lc__kl_keep(k, cfg->kl_cache_bytes, tokens, k->logits, T, V);
        }
        *kl = lc_loss_kl(backward ? k->logits : NULL, logits, k->logits, labels, T, V, cfg->kl_temp, 1.0f, NULL);
    }
    *ce = lc__xent(ctx, backward ? logits : NULL, logits, labels, T, V, &ns);
    if (backward && ns > 0) {
        float kf = cfg->kl_factor;
        if (kf > 0.0f)
            for (i = 0; i < n; i++) logits[i] = cf * logits[i] + kf * k->logits[i];
        else
            for (i = 0; i < n; i++) logits[i] = cf * logits[i];
    }
    *loss = (double)cf * *ce + (double)cfg->kl_factor * *kl;
    if (n_scored) *n_scored = ns;
    return LOLCATS_OK;
}

// >>optim
LCIMPL lc_adamw_cfg lc_adamw_cfg_default(void) {
    lc_adamw_cfg c;
    c.lr = 1e-2f;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    c.weight_decay = 0.0f;
    return c;
}

// torch.optim.AdamW (single-tensor path), same order of operations:
//   p *= 1 - lr wd;  m = lerp(m, g, 1 - b1);  v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
LCIMPL void lc_adamw_step(float *p, const float *g, float *m, float *v, size_t n,
                          const lc_adamw_cfg *cfg, int64_t t) {
    double b1 = (double)cfg->beta1, b2 = (double)cfg->beta2;
    float decay = (float)(1.0 - (double)cfg->lr * (double)cfg->weight_decay);
    float w1 = (float)(1.0 - b1), w2 = (float)(1.0 - b2);
    double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    float step = (float)((double)cfg->lr / bc1), bc2s = (float)sqrt(bc2);
    size_t i;
    for (i = 0; i < n; i++) {
        if (cfg->weight_decay != 0.0f) p[i] *= decay;
        m[i] += w1 * (g[i] - m[i]);
        v[i] = v[i] * cfg->beta2 + w2 * g[i] * g[i];
        p[i] -= step * (m[i] / (sqrtf(v[i]) / bc2s + cfg->eps));
    }
}

// >>blocks
LCIMPL void lc_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int T, int C,
                           float eps) {
    int t, c;
    for (t = 0; t < T; t++) {
        const float *x_t = x + (size_t)t * C;
        float *y_t = y + (size_t)t * C, r;
        double ss = 0;
        for (c = 0; c < C; c++) ss += (double)x_t[c] * (double)x_t[c];
        r = (float)(1.0 / sqrt(ss / C + (double)eps));
        for (c = 0; c < C; c++) y_t[c] = w[c] * (x_t[c] * r);
        if (rstd) rstd[t] = r;
    }
}

// y_c = w_c x_c r, r = (mean x^2 + eps)^(-1/2):
//   dx_c = r (w_c dy_c) - x_c r^3 / C * sum_k w_k dy_k x_k;  dw_c += dy_c x_c r
LCIMPL void lc_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                           const float *rstd, int T, int C) {
    int t, c;
    for (t = 0; t < T; t++) {
        const float *x_t = x + (size_t)t * C, *dy_t = dy + (size_t)t * C;
        float *dx_t = dx + (size_t)t * C, r = rstd[t];
        double s = 0;
        for (c = 0; c < C; c++) s += (double)w[c] * (double)dy_t[c] * (double)x_t[c];
        {
            float k = (float)(s * (double)r * (double)r * (double)r / C);
            for (c = 0; c < C; c++) {
                dx_t[c] += r * w[c] * dy_t[c] - x_t[c] * k;
                if (dw) dw[c] += dy_t[c] * x_t[c] * r;
            }
        }
    }
}

LCIMPL void lc_rope_table(float *cos_t, float *sin_t, int pos0, int T, int D, float theta) {
    int t, i, half = D / 2;
    for (t = 0; t < T; t++)
        for (i = 0; i < half; i++) {
            double freq = pow((double)theta, -2.0 * i / D), ang = (double)(pos0 + t) * freq;
            cos_t[(size_t)t * half + i] = (float)cos(ang);
            sin_t[(size_t)t * half + i] = (float)sin(ang);
        }
}

// pair (a, b) of dims -> (a cos - b sin, a sin + b cos); sign = -1 rotates back
static void lc__rope_pairs(float *out, const float *in, const float *c_t, const float *s_t, int D,
                           int interleaved, float sign) {
    int i, half = D / 2;
    for (i = 0; i < half; i++) {
        int ia = interleaved ? 2 * i : i, ib = interleaved ? 2 * i + 1 : i + half;
        float a = in[ia], b = in[ib], c = c_t[i], s = sign * s_t[i];
        out[ia] = a * c - b * s;
        out[ib] = a * s + b * c;
    }
}

LCIMPL void lc_rope_split_fwd(float *out, const float *in, const float *cos_t, const float *sin_t,
                              int T, int H, int D, int interleaved) {
    int t, h;
    for (t = 0; t < T; t++)
        for (h = 0; h < H; h++) {
            const float *src = in + ((size_t)t * H + h) * D;
            float *dst = out + ((size_t)h * T + t) * D;
            if (cos_t)
                lc__rope_pairs(dst, src, cos_t + (size_t)t * (D / 2), sin_t + (size_t)t * (D / 2), D,
                               interleaved, 1.0f);
            else
                memcpy(dst, src, sizeof(float) * (size_t)D);
        }
}

LCIMPL void lc_rope_split_bwd(float *din, const float *dout, const float *cos_t,
                              const float *sin_t, int T, int H, int D, int interleaved) {
    float tmp[1024];
    int t, h, d;
    LOLCATS_ASSERT(D <= 1024);
    for (t = 0; t < T; t++)
        for (h = 0; h < H; h++) {
            const float *src = dout + ((size_t)h * T + t) * D;
            float *dst = din + ((size_t)t * H + h) * D;
            if (cos_t) {
                lc__rope_pairs(tmp, src, cos_t + (size_t)t * (D / 2), sin_t + (size_t)t * (D / 2), D,
                               interleaved, -1.0f);
                src = tmp;
            }
            for (d = 0; d < D; d++) dst[d] += src[d];
        }
}

LCIMPL void lc_heads_merge(float *out, const float *in, int T, int H, int D) {
    int t, h;
    for (t = 0; t < T; t++)
        for (h = 0; h < H; h++)
            memcpy(out + ((size_t)t * H + h) * D, in + ((size_t)h * T + t) * D, sizeof(float) * (size_t)D);
}

LCIMPL void lc_heads_merge_bwd(float *din, const float *dout, int T, int H, int D) {
    int t, h, d;
    for (t = 0; t < T; t++)
        for (h = 0; h < H; h++) {
            const float *src = dout + ((size_t)t * H + h) * D;
            float *dst = din + ((size_t)h * T + t) * D;
            for (d = 0; d < D; d++) dst[d] += src[d];
        }
}

LCIMPL void lc_swiglu_fwd(float *h, const float *g, const float *u, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) h[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

// silu(g) = g s(g), silu'(g) = s(g) (1 + g (1 - s(g)))
LCIMPL void lc_swiglu_bwd(float *dg, float *du, const float *dh, const float *g, const float *u,
                          size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-g[i]));
        dg[i] += dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
        du[i] += dh[i] * g[i] * s;
    }
}

LCIMPL void lc_linear_fwd(const lc_ctx *ctx, float *y, float *xa, const float *x, const void *w,
                          int w_dtype, const float *lora_a, const float *lora_b, float lora_scale,
                          int r, int T, int O, int I) {
    const lc__kern *K = lc__kern_for(ctx);
    const lc__prims *P = K->P;
    lc_matmul(ctx, y, x, w, (lc_dtype)w_dtype, T, O, I);
    if (lora_a && r > 0 && !(K->lora_fwd && K->lora_fwd(ctx, y, xa, x, lora_a, lora_b, lora_scale, r, T, O, I))) {
        int t, j, o;
        float xa_loc[256];
        LOLCATS_ASSERT(r <= 256);
        for (t = 0; t < T; t++) {
            float *xa_t = xa ? xa + (size_t)t * r : xa_loc;
            for (j = 0; j < r; j++) xa_t[j] = P->dot(x + (size_t)t * I, lora_a + (size_t)j * I, I);
            for (o = 0; o < O; o++)
                y[(size_t)t * O + o] += lora_scale * P->dot(xa_t, lora_b + (size_t)o * r, r);
        }
    }
}

LCIMPL void lc_linear_bwd(const lc_ctx *ctx, float *dx, float *dw, float *dlora_a,
                          float *dlora_b, const float *dy, const float *x, const float *xa,
                          const void *w, int w_dtype, const float *lora_a, const float *lora_b,
                          float lora_scale, int r, int T, int O, int I) {
    const lc__kern *K = lc__kern_for(ctx);
    const lc__prims *P = K->P;
    int t, o;
    if (dx)  // dX += dY W  (+ LoRA below: s (dY B) A)
        lc_gemm(ctx, dx, dy, w, (lc_dtype)w_dtype, T, I, O, 0, 0, 1.0f, 1.0f, (size_t)I, (size_t)O, (size_t)I, NULL);
    if (dw) {  // dW += dY^T x
        LOLCATS_ASSERT(w_dtype == LOLCATS_DTYPE_F32);
        lc_gemm(ctx, dw, dy, x, LOLCATS_DTYPE_F32, O, I, T, 1, 0, 1.0f, 1.0f, (size_t)I, (size_t)O, (size_t)I, NULL);
    }
    if (lora_a && r > 0 && !(K->lora_bwd && K->lora_bwd(ctx, dx, dlora_a, dlora_b, dy, x, xa, lora_a, lora_b,
                                                         lora_scale, r, T, O, I))) {
        float g[256];
        int j;
        for (t = 0; t < T; t++) {
            const float *dy_t = dy + (size_t)t * O, *xa_t = xa + (size_t)t * r;
            for (j = 0; j < r; j++) g[j] = 0;
            for (o = 0; o < O; o++) {  // d(xa)_j = s sum_o dy_o B_oj ; dB_o += s dy_o xa
                P->axpy(g, lora_scale * dy_t[o], lora_b + (size_t)o * r, r);
                if (dlora_b) P->axpy(dlora_b + (size_t)o * r, lora_scale * dy_t[o], xa_t, r);
            }
            for (j = 0; j < r; j++) {
                if (dlora_a) P->axpy(dlora_a + (size_t)j * I, g[j], x + (size_t)t * I, I);
                if (dx) P->axpy(dx + (size_t)t * I, g[j], lora_a + (size_t)j * I, I);
            }
        }
    }
}

LCIMPL double lc_xent_fwd_bwd(float *dlogits, const float *logits, const int *labels, int T,
                              int V, int *n_counted) {
    double total = 0;
    int t, v, n = 0;
    for (t = 0; t < T; t++) n += labels[t] >= 0;
    for (t = 0; t < T; t++) {
        const float *l_t = logits + (size_t)t * V;
        float *d_t = dlogits ? dlogits + (size_t)t * V : NULL;
        float mx = l_t[0];
        double sum = 0, lse;
        if (labels[t] < 0) {
            if (d_t) memset(d_t, 0, sizeof(float) * (size_t)V);
            continue;
        }
        for (v = 1; v < V; v++) if (l_t[v] > mx) mx = l_t[v];
        for (v = 0; v < V; v++) sum += exp((double)(l_t[v] - mx));
        lse = (double)mx + log(sum);
        total += lse - (double)l_t[labels[t]];
        if (d_t) {
            for (v = 0; v < V; v++) d_t[v] = (float)(exp((double)l_t[v] - lse) / n);
            d_t[labels[t]] -= 1.0f / (float)n;
        }
    }
    if (n_counted) *n_counted = n;
    return n ? total / n : 0.0;
}

// lc_xent_fwd_bwd under ctx: the kernel table's fast form (>>xent-fast) or
// the reference above.
static double lc__xent(const lc_ctx *ctx, float *dlogits, const float *logits, const int *labels, int T, int V,
                       int *n_counted) {
    const lc__kern *K = lc__kern_for(ctx);
    if (K->xent) return K->xent(ctx, dlogits, logits, labels, T, V, n_counted);
    return lc_xent_fwd_bwd(dlogits, logits, labels, T, V, n_counted);
}

// >>llama-block
#define LC__ROPE_MAX_HALF 512   // head_dim <= 1024

// What Qwen adds between the q/k/v projections (T rows) and RoPE: the q/k/v
// biases (Qwen2), then an RMSNorm of each head of q and of k (Qwen3). A no-op
// for Llama / Mistral (the weights' data are NULL). rstd_q (T*H) / rstd_k
// (T*Hk), when not NULL, get the norms' reciprocal RMS (for a backward pass).
static void lc__qwen_bias(float *y, const lc_weight *b, int T) {
    int t, i, n = (int)b->cols;
    for (t = 0; t < T; t++)
        for (i = 0; i < n; i++) y[(size_t)t * n + i] += lc_weight_get(b, i);
}

static void lc__qwen_head_norm(float *y, float *rstd, const lc_weight *w, int rows, int D, float eps) {
    float wf[2 * LC__ROPE_MAX_HALF];
    int i;
    for (i = 0; i < D; i++) wf[i] = lc_weight_get(w, i);
    lc_rmsnorm_fwd(y, rstd, y, wf, rows, D, eps);   // in place: each element is read before it is written
}

static void lc__qwen_qkv(const lc_model_config *c, const lc_layer_weights *lw, float *q, float *k, float *v,
                         int T, float *rstd_q, float *rstd_k) {
    if (lw->bq.data) {
        lc__qwen_bias(q, &lw->bq, T);
        lc__qwen_bias(k, &lw->bk, T);
        lc__qwen_bias(v, &lw->bv, T);
    }
    if (lw->q_norm.data) {
        lc__qwen_head_norm(q, rstd_q, &lw->q_norm, T * c->n_heads, c->head_dim, c->norm_eps);
        lc__qwen_head_norm(k, rstd_k, &lw->k_norm, T * c->n_kv_heads, c->head_dim, c->norm_eps);
    }
}

// ONE Llama (Mistral, Qwen) block, shared by the model forward (>>model-forward),
// the trainer (>>train) and linearized inference (>>lolcats-infer):
//   xn = rms(x) w_att;  q, k, v = xn Wq^T, xn Wk^T, xn Wv^T  (+ LoRA: proj)
//   (Qwen: + biases, per-head RMSNorm of q and k);  RoPE q, k; split heads
//   ym = ATTENTION(qh, kh, vh)   (attn: softmax + KV cache, hybrid prefill /
//                                 decode, linear, ... : the caller's kind)
//   h = x + ym Wo^T (+ LoRA);   hn = rms(h) w_ffn
//   x_out = h + W2 (silu(W1 hn) * W3 hn)
// The caller owns every buffer (activations kept for a backward pass in the
// trainer, scratch in the runners) and names them in an lc__block; rstd1 /
// rstd2 / xa may be NULL. Aliasing allowed: vh may be q (q is rotated first),
// qh may be xn, o / hn / mo may be one buffer, h may be x, hh may be g,
// x_out may be h or mo. The steps are named so the trainer can run its own
// attention between them (teacher forcing in stage 1).
typedef struct lc__block lc__block;
struct lc__block {
    const lc_ctx *ctx;
    const lc_model_config *c;
    const lc_layer_weights *lw;
    int l;                                   // layer index (for the callbacks)
    const float *norm_att, *norm_ffn;        // fp32 RMSNorm weights (dim)
    const float *cos_t, *sin_t;              // RoPE rows of the T positions (T, D/2)
    float *xn, *rstd1;                       // (T,dim) (T)
    float *q, *k, *v;                        // projections (T,H*D) (T,Hk*D) x2
    float *xa[4];                            // LoRA x A^T per target, or NULL
    float *qh, *kh, *vh;                     // heads (H,T,D) (Hk,T,D) x2
    float *ym;                               // attention output (T,H*D), from attn
    float *o, *h;                            // o projection (T,dim); stream after attention
    float *hn, *rstd2, *g, *u, *hh, *mo;     // (T,dim) (T) (T,hid) x3 (T,dim)
    // y (T, w->rows) = x w^T (+ LoRA of target tg, 0..3, xa its x A^T rows)
    void (*proj)(const lc__block *b, int tg, float *y, float *xa, const float *x, const lc_weight *w,
                 int T);
    void (*attn)(const lc__block *b, int T);  // qh, kh, vh -> ym
    void *user;
};

static void lc__block_mm(const lc__block *b, float *y, const float *x, const lc_weight *w, int T) {
    lc_matmul(b->ctx, y, x, w->data, w->dtype, T, (int)w->rows, (int)w->cols);
}

// Step 1: x (T,dim) -> qh, kh, vh.
static void lc__block_qkv(const lc__block *b, const float *x, int T) {
    const lc_model_config *c = b->c;
    const lc_layer_weights *lw = b->lw;
    int H = c->n_heads, Hk = c->n_kv_heads, D = c->head_dim;
    lc_rmsnorm_fwd(b->xn, b->rstd1, x, b->norm_att, T, c->dim, c->norm_eps);
    b->proj(b, LOLCATS_LORA_Q, b->q, b->xa[0], b->xn, &lw->wq, T);
    b->proj(b, LOLCATS_LORA_K, b->k, b->xa[1], b->xn, &lw->wk, T);
    b->proj(b, LOLCATS_LORA_V, b->v, b->xa[2], b->xn, &lw->wv, T);
    lc__qwen_qkv(c, lw, b->q, b->k, b->v, T, NULL, NULL);
    lc_rope_split_fwd(b->qh, b->q, b->cos_t, b->sin_t, T, H, D, c->rope_interleaved);
    lc_rope_split_fwd(b->kh, b->k, b->cos_t, b->sin_t, T, Hk, D, c->rope_interleaved);
    lc_rope_split_fwd(b->vh, b->v, NULL, NULL, T, Hk, D, 0);
}

// Step 3: ym -> h = x + ym Wo^T -> x_out = h + MLP(rms(h)).
static void lc__block_post(const lc__block *b, const float *x, float *x_out, int T) {
    const lc_model_config *c = b->c;
    const lc_layer_weights *lw = b->lw;
    size_t i, n = (size_t)T * c->dim;
    b->proj(b, LOLCATS_LORA_O, b->o, b->xa[3], b->ym, &lw->wo, T);
    for (i = 0; i < n; i++) b->h[i] = x[i] + b->o[i];
    lc_rmsnorm_fwd(b->hn, b->rstd2, b->h, b->norm_ffn, T, c->dim, c->norm_eps);
    lc__block_mm(b, b->g, b->hn, &lw->w1, T);
    lc__block_mm(b, b->u, b->hn, &lw->w3, T);
    lc_swiglu_fwd(b->hh, b->g, b->u, (size_t)T * c->hidden_dim);
    lc__block_mm(b, b->mo, b->hh, &lw->w2, T);
    for (i = 0; i < n; i++) x_out[i] = b->h[i] + b->mo[i];
}

// The whole block: x (T,dim) -> x_out (T,dim), which may be x.
static void lc__block_fwd(const lc__block *b, const float *x, float *x_out, int T) {
    lc__block_qkv(b, x, T);
    b->attn(b, T);
    lc__block_post(b, x, x_out, T);
}
// >>model-forward
// (platform, allocator, OpenMP and SIMD macros: see the platform section)
static void *lc__mcalloc(size_t n, size_t size) {
    void *p;
    if (size && n > ((size_t)-1) / size) return NULL;
    p = LOLCATS_MALLOC(n * size > 0 ? n * size : 1);
    if (p) memset(p, 0, n * size);
    return p;
}

// Inverse frequencies of RoPE as Hugging Face computes them (float32), with
// Llama 3.1 "llama3" scaling when the config asks for it
// (transformers' _compute_llama3_parameters):
//   f_i = theta^(-2i/D);  wavelength w_i = 2 pi / f_i
//   w_i > orig/low:   f_i / factor          w_i < orig/high:  f_i
//   in between:       (1 - s) f_i / factor + s f_i,  s = (orig/w_i - low) / (high - low)
LCIMPL void lc_rope_inv_freq(float *inv, const lc_model_config *c) {
    int D = c->head_dim, i;
    for (i = 0; i < D / 2; i++) {
        float f = (float)(1.0 / pow((double)c->rope_theta, (double)(2 * i) / (double)D));
        if (c->rope_llama3) {
            double lff = (double)c->rope_low_freq_factor, hff = (double)c->rope_high_freq_factor;
            double fac = (double)c->rope_factor, fd = (double)f;
            double lo = c->rope_orig_max_pos / lff, hi = c->rope_orig_max_pos / hff;
            double wl = 2.0 * 3.14159265358979323846 / fd;
            if (wl > lo) f = (float)(fd / fac);
            else if (wl >= hi) {
                double sm = (c->rope_orig_max_pos / wl - lff) / (hff - lff);
                f = (float)((1.0 - sm) * fd / fac + sm * fd);
            }
        }
        inv[i] = f;
    }
}

LCIMPL void lc_model_rope_table(float *cos_t, float *sin_t, const lc_model_config *c, int pos0,
                                int T) {
    float inv[LC__ROPE_MAX_HALF];
    int half = c->head_dim / 2, t, i;
    LOLCATS_ASSERT(half <= LC__ROPE_MAX_HALF);
    lc_rope_inv_freq(inv, c);
    for (t = 0; t < T; t++)
        for (i = 0; i < half; i++) {
            float ang = (float)(pos0 + t) * inv[i];      // float32 product, as HF
            cos_t[(size_t)t * half + i] = (float)cos((double)ang);
            sin_t[(size_t)t * half + i] = (float)sin((double)ang);
        }
}

LCIMPL void lc_run_free(lc_run *r) {
    if (!r) return;
    LOLCATS_FREE(r->nll_acc);     // the one allocation starts there
    memset(r, 0, sizeof *r);
}

LCIMPL void lc_run_reset(lc_run *r) { r->pos = 0; }

LCIMPL lc_status lc_run_truncate(lc_run *r, int pos, lc_error *err) {
    if (pos < 0 || pos > r->pos)
        return lc_error_set(err, LOLCATS_ERR_ARG, "lc_run_truncate to position %d, but the cache "
                            "holds %d tokens: give 0..%d", pos, r->pos, r->pos);
    r->pos = pos;
    return LOLCATS_OK;
}

LCIMPL lc_status lc_run_init(lc_run *r, const lc_model *m, int ctx, int max_tokens,
                             lc_error *err) {
    const lc_model_config *c = &m->cfg;
    int D = c->head_dim, H = c->n_heads, Hk = c->n_kv_heads, L = c->n_layers, dim = c->dim, T, l, i;
    size_t kv, n, qd, xd, nw = (size_t)(2 * L + 1) * dim;
    float *mem;
    memset(r, 0, sizeof *r);
    if (ctx <= 0) ctx = c->seq_len;
    if (max_tokens <= 0) max_tokens = 1;
    if (max_tokens > ctx) max_tokens = ctx;
    T = max_tokens;
    kv = (size_t)L * Hk * (size_t)ctx * D;
    qd = (size_t)H * D;
    xd = qd > (size_t)dim ? qd : (size_t)dim;
    n = 2 * kv + (size_t)ctx * D + nw +
        (size_t)T * ((size_t)dim + xd + qd + qd + 2 * (size_t)Hk * D + 2 * (size_t)c->hidden_dim) +
        (size_t)H * ctx + (size_t)c->vocab_size;
    n += 4 * (size_t)T + 4;       // nll_acc: 2T doubles, first (aligned)
    mem = (float *)lc__mcalloc(n, sizeof(float));
    if (!mem)
        return lc_error_set(err, LOLCATS_ERR_NOMEM,
                        "out of memory allocating %zu MiB of KV cache and activations for ctx "
                        "%d; lower --ctx",
                        n * 4 >> 20, ctx);
    r->ctx = ctx; r->max_tokens = T; r->bytes = n * sizeof(float);
    r->nll_acc = (double *)(void *)mem; mem += 4 * (size_t)T + 4;
    r->key_cache = mem; mem += kv;
    r->value_cache = mem; mem += kv;
    r->rope_cos = mem; mem += (size_t)ctx * D / 2;
    r->rope_sin = mem; mem += (size_t)ctx * D / 2;
    r->norm_w = mem; mem += nw;
    r->x = mem; mem += (size_t)T * dim;
    r->xb = mem; mem += (size_t)T * xd;
    r->xb2 = mem; mem += (size_t)T * qd;
    r->q = mem; mem += (size_t)T * qd;
    r->k = mem; mem += (size_t)T * Hk * D;
    r->v = mem; mem += (size_t)T * Hk * D;
    r->hb = mem; mem += (size_t)T * c->hidden_dim;
    r->hb2 = mem; mem += (size_t)T * c->hidden_dim;
    r->att = mem; mem += (size_t)H * ctx;
    r->logits = mem;
    lc_model_rope_table(r->rope_cos, r->rope_sin, c, 0, ctx);
    for (l = 0; l < L; l++)
        for (i = 0; i < dim; i++) {
            r->norm_w[(size_t)(2 * l) * dim + i] = lc_weight_get(&m->layers[l].rms_att, i);
            r->norm_w[(size_t)(2 * l + 1) * dim + i] = lc_weight_get(&m->layers[l].rms_ffn, i);
        }
    for (i = 0; i < dim; i++) r->norm_w[(size_t)2 * L * dim + i] = lc_weight_get(&m->rms_final, i);
    return LOLCATS_OK;
}

static void lc__model_mm(const lc_ctx *ctx, float *y, const float *x, const lc_weight *w, int T) {
    lc_matmul(ctx, y, x, w->data, w->dtype, T, (int)w->rows, (int)w->cols);
}

// Heads (Hk, T, D) into the cache (Hk, ctx, D) at positions pos0 .. pos0+T-1.
static void lc__kv_store(float *cache, const float *heads, int Hk, int T, int D, int ctx, int pos0) {
    int h;
    for (h = 0; h < Hk; h++)
        memcpy(cache + ((size_t)h * ctx + pos0) * D, heads + (size_t)h * T * D,
               sizeof(float) * (size_t)T * D);
}

// Causal softmax attention of T new queries qh (H,T,D) at positions pos0.. over
// the cached keys/values (Hk, ctx, D); y (T, H*D). Query head h reads kv head
// h / (H/Hk); with a sliding window W, position i sees keys j in (i - W, i], as
// Hugging Face's Mistral. att (H, ctx) is scratch.
static void lc__model_attn(const lc_ctx *ctx, float *y, float *att, const float *qh,
                           const float *kc, const float *vc, int H, int Hk, int T, int D,
                           int n_ctx, int pos0, int window) {
    const lc__prims *P = lc__prims_for(ctx);
    float scale = 1.0f / sqrtf((float)D);
    int h;
    if (T > 1 && lc__kern_for(ctx)->prefill_attn &&
        lc__kern_for(ctx)->prefill_attn(ctx, y, qh, kc, vc, H, Hk, T, D, n_ctx, pos0, window))
        return;  // prefill: the blocked form (>>prefill-attn)
    LC__OMP_FOR
    for (h = 0; h < H; h++) {
        const float *k_h = kc + (size_t)(h / (H / Hk)) * n_ctx * D;
        const float *v_h = vc + (size_t)(h / (H / Hk)) * n_ctx * D;
        float *att_h = att + (size_t)h * n_ctx;
        int t, j;
        for (t = 0; t < T; t++) {
            const float *q_hi = qh + ((size_t)h * T + t) * D;
            float *y_hi = y + ((size_t)t * H + h) * D;
            int i = pos0 + t, j0 = window > 0 && i - window + 1 > 0 ? i - window + 1 : 0;
            float mx = -INFINITY, sum = 0.0f, inv;
            for (j = j0; j <= i; j++) {
                att_h[j] = P->dot(q_hi, k_h + (size_t)j * D, D) * scale;
                if (att_h[j] > mx) mx = att_h[j];
            }
            for (j = j0; j <= i; j++) { att_h[j] = expf(att_h[j] - mx); sum += att_h[j]; }
            inv = 1.0f / sum;
            memset(y_hi, 0, sizeof(float) * (size_t)D);
            for (j = j0; j <= i; j++) P->axpy(y_hi, att_h[j] * inv, v_h + (size_t)j * D, D);
        }
    }
}

// The model's side of the one block (>>llama-block): projections without
// LoRA; attention stores k, v into layer l's cache at r->pos and runs causal
// softmax over it. Buffers: xn, qh, o, hn, mo in xb; kh, ym in xb2; vh in q.
static void lc__model_block_proj(const lc__block *b, int tg, float *y, float *xa, const float *x,
                                 const lc_weight *w, int T) {
    (void)tg; (void)xa;
    lc__model_mm(b->ctx, y, x, w, T);
}

static void lc__model_block_attn(const lc__block *b, int T) {
    lc_run *r = (lc_run *)b->user;
    const lc_model_config *c = b->c;
    int Hk = c->n_kv_heads, D = c->head_dim;
    float *kc = r->key_cache + (size_t)b->l * Hk * r->ctx * D;
    float *vc = r->value_cache + (size_t)b->l * Hk * r->ctx * D;
    lc__kv_store(kc, b->kh, Hk, T, D, r->ctx, r->pos);
    lc__kv_store(vc, b->vh, Hk, T, D, r->ctx, r->pos);
    lc__model_attn(b->ctx, b->ym, r->att, b->qh, kc, vc, c->n_heads, Hk, T, D, r->ctx, r->pos,
                   c->sliding_window);
}

static void lc__model_block(lc__block *b, const lc_ctx *ctx, const lc_model *m, lc_run *r, int l) {
    const lc_model_config *c = &m->cfg;
    size_t half = (size_t)(c->head_dim / 2), dim = (size_t)c->dim;
    memset(b, 0, sizeof *b);
    b->ctx = ctx; b->c = c; b->lw = &m->layers[l]; b->l = l;
    b->norm_att = r->norm_w + (size_t)(2 * l) * dim;
    b->norm_ffn = r->norm_w + (size_t)(2 * l + 1) * dim;
    b->cos_t = r->rope_cos + (size_t)r->pos * half;
    b->sin_t = r->rope_sin + (size_t)r->pos * half;
    b->xn = b->qh = b->o = b->hn = b->mo = r->xb;
    b->q = r->q; b->k = r->k; b->v = r->v;
    b->kh = b->ym = r->xb2;
    b->vh = r->q;
    b->h = r->x;
    b->g = b->hh = r->hb; b->u = r->hb2;
    b->proj = lc__model_block_proj;
    b->attn = lc__model_block_attn;
    b->user = r;
}

// The decoder stack: tokens -> r->xb (n, dim) = final RMSNorm of the last
// hidden states (all n rows when all_rows, else only row n-1 into row 0).
static lc_status lc__model_trunk(const lc_ctx *ctx, const lc_model *m, lc_run *r,
                                 const int *tokens, int n, int all_rows, lc_error *err) {
    const lc_model_config *c = &m->cfg;
    int dim = c->dim, L = c->n_layers, V = c->vocab_size, pos0 = r->pos, t, l, i;
    if (n > r->max_tokens)
        return lc_error_set(err, LOLCATS_ERR_ARG, "lc_model_forward: %d tokens, the run holds %d",
                        n, r->max_tokens);
    if (pos0 + n > r->ctx)
        return lc_error_set(err, LOLCATS_ERR_ARG,
                        "lc_model_forward: positions %d..%d exceed the KV cache of %d; "
                        "lc_run_reset or a larger ctx",
                        pos0, pos0 + n - 1, r->ctx);
    for (t = 0; t < n; t++) {
        if (tokens[t] < 0 || tokens[t] >= V)
            return lc_error_set(err, LOLCATS_ERR_ARG, "token %d at index %d is outside the vocab (%d)",
                            tokens[t], t, V);
        for (i = 0; i < dim; i++)
            r->x[(size_t)t * dim + i] = lc_weight_get(&m->tok_emb, (int64_t)tokens[t] * dim + i);
    }
    for (l = 0; l < L; l++) {
        lc__block b;
        lc__model_block(&b, ctx, m, r, l);
        lc__block_fwd(&b, r->x, r->x, n);
    }
    r->pos = pos0 + n;
    if (all_rows)
        lc_rmsnorm_fwd(r->xb, NULL, r->x, r->norm_w + (size_t)2 * L * dim, n, dim, c->norm_eps);
    else
        lc_rmsnorm_fwd(r->xb, NULL, r->x + (size_t)(n - 1) * dim, r->norm_w + (size_t)2 * L * dim,
                       1, dim, c->norm_eps);
    return LOLCATS_OK;
}

LCIMPL lc_status lc_model_forward(const lc_ctx *ctx, const lc_model *m, lc_run *r,
                                  const int *tokens, int n, float *logits_all, lc_error *err) {
    int V = m->cfg.vocab_size;
    lc_status s;
    if (n <= 0) return LOLCATS_OK;
    if ((s = lc__model_trunk(ctx, m, r, tokens, n, logits_all != NULL, err))) return s;
    if (logits_all) {
        lc__model_mm(ctx, logits_all, r->xb, &m->wcls, n);
        memcpy(r->logits, logits_all + (size_t)(n - 1) * V, sizeof(float) * V);
    } else
        lc__model_mm(ctx, r->logits, r->xb, &m->wcls, 1);
    return LOLCATS_OK;
}

// The classifier in blocks of vocabulary rows, with an online log-sum-exp per
// token (double), so no (n, V) logits buffer exists; the block (n, hidden_dim)
// reuses r->hb:
//   nll_t = log sum_v exp(l_tv) - l_t,target   (l = Wcls . xb_t)
LCIMPL lc_status lc_model_forward_nll(const lc_ctx *ctx, const lc_model *m, lc_run *r,
                                      const int *tokens, int n, const int *targets, double *nll,
                                      lc_error *err) {
    int V = m->cfg.vocab_size, dim = m->cfg.dim, VB = m->cfg.hidden_dim, v0, t, j;
    size_t rowb = lc_dtype_row_bytes(m->wcls.dtype, dim);   // block types too
    double *mx = r->nll_acc, *sum = r->nll_acc + r->max_tokens;
    const lc__prims *P = lc__prims_for(ctx);   // the fast path: vector max and exp-sum
    int fast = lc__kern_for(ctx)->float_sums;
    lc_status s;
    if (n <= 0) return LOLCATS_OK;
    if ((s = lc__model_trunk(ctx, m, r, tokens, n, 1, err))) return s;
    for (t = 0; t < n; t++) {
        if (targets[t] >= V)
            return lc_error_set(err, LOLCATS_ERR_ARG, "target %d at index %d is outside the vocab (%d)",
                                targets[t], t, V);
        mx[t] = -(double)INFINITY; sum[t] = 0; nll[t] = 0;
    }
    for (v0 = 0; v0 < V; v0 += VB) {
        int nv = V - v0 < VB ? V - v0 : VB;
        lc_matmul(ctx, r->hb, r->xb, (const char *)m->wcls.data + (size_t)v0 * rowb,
                  m->wcls.dtype, n, nv, dim);
        for (t = 0; t < n; t++) {
            const float *l = r->hb + (size_t)t * nv;
            double bm = (double)l[0], bs = 0;
            if (targets[t] < 0) continue;
            if (targets[t] >= v0 && targets[t] < v0 + nv) nll[t] -= (double)l[targets[t] - v0];
            if (fast) {  // float exps (within 2 ulp of expf), summed in double; l is scratch now
                bm = (double)P->max(l, 1.0f, nv);
                bs = P->exp_sum(r->hb + (size_t)t * nv, l, 1.0f, (float)bm, nv);
            } else {
                for (j = 1; j < nv; j++) if ((double)l[j] > bm) bm = (double)l[j];
                for (j = 0; j < nv; j++) bs += exp((double)l[j] - bm);
            }
            if (bm > mx[t]) { sum[t] = sum[t] * exp(mx[t] - bm) + bs; mx[t] = bm; }
            else sum[t] += bs * exp(bm - mx[t]);
        }
    }
    for (t = 0; t < n; t++)
        if (targets[t] >= 0) nll[t] += mx[t] + log(sum[t]);
    return LOLCATS_OK;
}

// >>train
typedef struct lc__layer_act {
    float *x_in, *xn, *rstd1;         // (T,dim) (T,dim) (T)
    float *qh, *kh, *vh;              // (H,T,D) (Hk,T,D) (Hk,T,D)
    float *xa[4];                     // (T,r) LoRA x A^T per target
    float *phiq, *phik;               // (H,T,F)
    float *yh, *m, *den;              // (H,T,D) (H,T) (H,T)
    float *ym;                        // (T,H*D)
    float *h, *hn, *rstd2;            // (T,dim) (T,dim) (T)
    float *g, *u, *hh;                // (T,hidden) x3
    float *logg;                      // (H,T) gate log g (cfg.gate), else empty
} lc__layer_act;

typedef struct lc__train_act {
    int T, n_slots;                   // layers with their own slot (1 in stage 1)
    lc__layer_act *L;
    float *xf, *xfn, *rstdf, *logits;     // final norm, logits / dlogits (T,V)
    float *rope_cos, *rope_sin;           // (T, D/2)
    float *norm_w;                        // fp32 norm weights: (L,2,dim) + (dim)
    float *tq, *tk, *tv;                  // (T,H*D) (T,Hk*D) x2: projections
    float *dx, *dh, *dxn, *dym, *dyh, *dqh, *dkh, *dvh, *dphiq, *dphik, *dg, *du, *dhh;
    float *work;                          // hybrid prefix-state work
    float *yt, *lse, *at, *as, *ga;       // stage 1 teacher out; weights (H,T,T) when xent
    float *xin_saved;                     // (L,T,dim) layer inputs when recomputing
    void *kl;                             // >>kl teacher state (kl_factor > 0)
    double part_ce, part_kl;              // >>kl the last lm step's loss parts
    float *dlogg;                         // >>gate-train (H,T) d log g, else empty
    int gate_dx;                          // >>gate-train 1: dlogg waits for lc__train_qkv_bwd
} lc__train_act;

// >>gate-train hooks (defined at the end of >>train)
static size_t lc__gate_train_floats(const lc_train *t, size_t fm_n);
static int lc__gate_train_on(const lc_train *t);
static lc_status lc__gate_train_check(const lc_train_cfg *cfg, lc_error *err);
static double lc__gate_train_distill(lc_train *t, int l, lc__layer_act *la, int T, int backward,
                                     float mse_factor, float xent_factor);
static lc_hybrid_args lc__gate_train_args(lc_train *t, int l, lc__layer_act *la, int T);
static void lc__gate_train_proj(lc_train *t, int l, lc__layer_act *la, int T);
static void lc__gate_train_fwd(lc_train *t, int l, lc__layer_act *la, int T);
static void lc__gate_train_bwd(lc_train *t, int l, lc__layer_act *la, int T, int fm_on);
static void lc__gate_train_dx(lc_train *t, int l, lc__layer_act *la, int T);

LCIMPL lc_train_cfg lc_train_cfg_default(void) {
    lc_train_cfg c;
    memset(&c, 0, sizeof c);
    c.attn = LOLCATS_ATTN_HYBRID;
    c.trainable = LOLCATS_TRAIN_FMAPS;
    c.fmap = lc_fmap_cfg_default();
    c.feature_dim = 64;
    c.hybrid = lc_hybrid_cfg_default();
    c.lora_rank = 8;
    c.lora_alpha = 16.0f;
    c.lora_targets = 15;
    c.mse_factor = 1000.0f;
    c.xent_factor = 0.0f;
    c.max_tokens = 1024;
    c.seed = 0;
    c.kl_temp = 1.0f;
    c.ce_factor = 1.0f;
    return c;
}

static int lc__lora_in(const lc_model_config *c, int tg) {
    return tg == LOLCATS_LORA_O ? c->n_heads * c->head_dim : c->dim;
}

static int lc__lora_out(const lc_model_config *c, int tg) {
    return tg == LOLCATS_LORA_Q ? c->n_heads * c->head_dim
           : tg == LOLCATS_LORA_O ? c->dim : c->n_kv_heads * c->head_dim;
}

static size_t lc__full_floats(const lc_model_config *c) {
    size_t D = (size_t)c->head_dim, per = 2 * (size_t)c->dim +
        (size_t)c->dim * (c->n_heads * D + 2 * c->n_kv_heads * D) + c->n_heads * D * c->dim +
        3 * (size_t)c->dim * c->hidden_dim;
    return (size_t)c->vocab_size * c->dim * (c->tied ? 1 : 2) + (size_t)c->dim + per * c->n_layers;
}

// Lays out params: [full model][fmap_q fmap_k wf][LoRA], and the views.
static lc_status lc__train_alloc(lc_train *t, int with_full, lc_error *err) {
    const lc_model_config *c = &t->model->cfg;
    int L = c->n_layers, H = c->n_heads, D = c->head_dim, f = t->cfg.feature_dim, l, tg;
    size_t n = 0, full_n = with_full ? lc__full_floats(c) : 0, fm_n = 0, gate_n;
    n += full_n;
    if (t->cfg.attn != LOLCATS_ATTN_SOFTMAX || (t->cfg.trainable & LOLCATS_TRAIN_FMAPS))
        fm_n = 2 * (size_t)L * H * D * f + (size_t)L * H * (t->cfg.fmap_bias ? 3 : 1);
    n += fm_n;
    gate_n = lc__gate_train_floats(t, fm_n);   // >>gate-train: [full][fmaps][gate][LoRA]
    n += gate_n;
    t->lora_off = (size_t (*)[4])lc__mcalloc((size_t)L, sizeof *t->lora_off);
    t->lora_a = (const float *(*)[4])lc__mcalloc(2 * (size_t)L, sizeof *t->lora_a);
    if (!t->lora_off || !t->lora_a)
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory for the LoRA tables of %d layers", L);
    t->lora_b = t->lora_a + L;
    if (t->cfg.lora_rank > 0)
        for (l = 0; l < L; l++)
            for (tg = 0; tg < 4; tg++) {
                if (!(t->cfg.lora_targets & (1 << tg))) continue;
                t->lora_off[l][tg] = n;
                n += (size_t)t->cfg.lora_rank * (lc__lora_in(c, tg) + lc__lora_out(c, tg));
            }
    t->n_params = n;
    t->mem = (float *)LOLCATS_MALLOC(sizeof(float) * 4 * (n ? n : 1));
    if (!t->mem)
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory for %zu trainable parameters", n);
    memset(t->mem, 0, sizeof(float) * 4 * (n ? n : 1));
    t->params = t->mem;
    t->grads = t->mem + n;
    t->adam_m = t->mem + 2 * n;
    t->adam_v = t->mem + 3 * n;
    t->full = with_full ? t->params : NULL;
    if (fm_n) {
        t->fmap_q = t->params + full_n;
        t->fmap_k = t->fmap_q + (size_t)L * H * D * f;
        t->wf = t->fmap_k + (size_t)L * H * D * f;
        if (t->cfg.fmap_bias) {
            t->fbq = t->wf + (size_t)L * H;
            t->fbk = t->fbq + (size_t)L * H;
        }
    }
    if (gate_n) {
        t->gate_w = t->params + full_n + fm_n;
        t->gate_b = t->gate_w + (size_t)L * H * c->dim;
    }
    t->lora = t->params + full_n + fm_n + gate_n;
    for (l = 0; l < L; l++)
        for (tg = 0; tg < 4; tg++)
            if (t->lora_off[l][tg]) {
                t->lora_a[l][tg] = t->params + t->lora_off[l][tg];
                t->lora_b[l][tg] = t->lora_a[l][tg] + (size_t)t->cfg.lora_rank * lc__lora_in(c, tg);
            }
    return LOLCATS_OK;
}

static float *lc__grad_at(lc_train *t, const float *p) {
    return t->grads + (p - t->params);
}

// count_only: set *count_only to the floats the activations take, allocate nothing.
static lc_status lc__train_act_alloc(lc_train *t, int slots, size_t *count_only, lc_error *err) {
    const lc_model_config *c = &t->model->cfg;
    lc__train_act *a;
    int T = t->cfg.max_tokens, H = c->n_heads, Hk = c->n_kv_heads, D = c->head_dim;
    int dim = c->dim, hid = c->hidden_dim, F = t->F, r = t->cfg.lora_rank, l, pass;
    size_t qd = (size_t)H * D, kd = (size_t)Hk * D, total = 0;
    size_t lm = t->cfg.distill_only ? 0 : 1;  // stage 1 only: no logits, no backward through the MLP
    float *p = NULL;
    a = (lc__train_act *)LOLCATS_MALLOC(sizeof *a);
    if (!a) return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory");
    memset(a, 0, sizeof *a);
    a->T = T;
    a->n_slots = slots;
    a->L = (lc__layer_act *)LOLCATS_MALLOC(sizeof(lc__layer_act) * (size_t)slots);
    if (!a->L) { LOLCATS_FREE(a); return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory"); }
    t->act = a;
    // two passes: count, then cut the views out of one allocation
    for (pass = 0; pass < 2; pass++) {
#define LC__TAKE(dst, count) do { size_t n_ = (size_t)(count); if (pass) { (dst) = p; p += n_; } total += pass ? 0 : n_; } while (0)
        for (l = 0; l < slots; l++) {
            lc__layer_act *la = &a->L[l];
            int tg;
            LC__TAKE(la->x_in, (size_t)T * dim); LC__TAKE(la->xn, (size_t)T * dim); LC__TAKE(la->rstd1, T);
            LC__TAKE(la->qh, (size_t)T * qd); LC__TAKE(la->kh, (size_t)T * kd); LC__TAKE(la->vh, (size_t)T * kd);
            for (tg = 0; tg < 4; tg++) LC__TAKE(la->xa[tg], (size_t)T * (r > 0 ? r : 0));
            LC__TAKE(la->phiq, (size_t)H * T * F); LC__TAKE(la->phik, (size_t)H * T * F);
            LC__TAKE(la->yh, (size_t)T * qd); LC__TAKE(la->m, (size_t)H * T); LC__TAKE(la->den, (size_t)H * T);
            LC__TAKE(la->ym, (size_t)T * qd);
            LC__TAKE(la->h, (size_t)T * dim); LC__TAKE(la->hn, (size_t)T * dim); LC__TAKE(la->rstd2, T);
            LC__TAKE(la->g, (size_t)T * hid); LC__TAKE(la->u, (size_t)T * hid); LC__TAKE(la->hh, (size_t)T * hid);
            LC__TAKE(la->logg, t->cfg.gate ? (size_t)H * T : 0);   // >>gate-train
        }
        LC__TAKE(a->dlogg, t->cfg.gate ? (size_t)H * T : 0);
        LC__TAKE(a->xf, (size_t)T * dim); LC__TAKE(a->xfn, (size_t)T * dim * lm); LC__TAKE(a->rstdf, T * lm);
        LC__TAKE(a->logits, (size_t)T * c->vocab_size * lm);
        LC__TAKE(a->rope_cos, (size_t)T * D / 2); LC__TAKE(a->rope_sin, (size_t)T * D / 2);
        LC__TAKE(a->norm_w, (size_t)(2 * c->n_layers + 1) * dim);
        LC__TAKE(a->tq, (size_t)T * qd); LC__TAKE(a->tk, (size_t)T * kd); LC__TAKE(a->tv, (size_t)T * kd);
        LC__TAKE(a->dx, (size_t)T * dim * lm); LC__TAKE(a->dh, (size_t)T * dim * lm);
        LC__TAKE(a->dxn, (size_t)T * dim * lm);
        LC__TAKE(a->dym, (size_t)T * qd * lm); LC__TAKE(a->dyh, (size_t)T * qd); LC__TAKE(a->dqh, (size_t)T * qd);
        LC__TAKE(a->dkh, (size_t)T * kd); LC__TAKE(a->dvh, (size_t)T * kd);
        LC__TAKE(a->dphiq, (size_t)H * T * F); LC__TAKE(a->dphik, (size_t)H * T * F);
        LC__TAKE(a->dg, (size_t)T * hid * lm); LC__TAKE(a->du, (size_t)T * hid * lm);
        LC__TAKE(a->dhh, (size_t)T * hid * lm);
        LC__TAKE(a->work, lc_attn_transfer_work_floats(1, H, T, D, F));
        LC__TAKE(a->yt, (size_t)T * qd); LC__TAKE(a->lse, (size_t)H * T);
        if (t->cfg.recompute) LC__TAKE(a->xin_saved, (size_t)c->n_layers * T * dim);
        if (t->cfg.xent_factor > 0) {
            LC__TAKE(a->at, (size_t)H * T * T); LC__TAKE(a->as, (size_t)H * T * T); LC__TAKE(a->ga, (size_t)H * T * T);
        }
#undef LC__TAKE
        if (!pass && count_only) {
            *count_only = total;
            LOLCATS_FREE(a->L);
            LOLCATS_FREE(a);
            t->act = NULL;
            return LOLCATS_OK;
        }
        if (!pass) {
            p = (float *)LOLCATS_MALLOC(sizeof(float) * (total ? total : 1));
            if (!p)
                return lc_error_set(err, LOLCATS_ERR_NOMEM,
                                    "out of memory for %zu MiB of activations (T=%d); lower the "
                                    "sequence length", total * 4 >> 20, T);
            lc_advise_hugepages(p, sizeof(float) * total);  // before the first write
            memset(p, 0, sizeof(float) * total);  // L[0].x_in, the first view, is the base
        }
    }
    lc_model_rope_table(a->rope_cos, a->rope_sin, c, 0, T);   // as the model computes it
    return LOLCATS_OK;
}

static void lc__train_norms(lc_train *t) {  // fp32 copies of the norm weights
    lc__train_act *a = (lc__train_act *)t->act;
    const lc_model *m = t->model;
    int l, c, dim = m->cfg.dim;
    for (l = 0; l < m->cfg.n_layers; l++)
        for (c = 0; c < dim; c++) {
            a->norm_w[(size_t)(2 * l) * dim + c] = lc_weight_get(&m->layers[l].rms_att, c);
            a->norm_w[(size_t)(2 * l + 1) * dim + c] = lc_weight_get(&m->layers[l].rms_ffn, c);
        }
    for (c = 0; c < dim; c++) a->norm_w[(size_t)2 * m->cfg.n_layers * dim + c] = lc_weight_get(&m->rms_final, c);
}

static void lc__train_init_params(lc_train *t) {
    const lc_model_config *c = &t->model->cfg;
    int L = c->n_layers, H = c->n_heads, D = c->head_dim, f = t->cfg.feature_dim, l, tg;
    lc_rng rng;
    lc_rng_seed(&rng, t->cfg.seed ^ 0x10c47ULL);
    if (t->fmap_q) {
        size_t per = (size_t)H * D * f;
        float bound = (float)sqrt(6.0 / (double)H);  // bias (1,H,1,1): fan_in = H
        for (l = 0; l < L; l++) {
            if (t->cfg.fmap_init == 1) {
                lc_fmap_init_kaiming(t->fmap_q + per * l, NULL, H, D, f, &rng);
                lc_fmap_init_kaiming(t->fmap_k + per * l, NULL, H, D, f, &rng);
            } else {
                lc_fmap_init_identity(t->fmap_q + per * l, H, D, f);
                lc_fmap_init_identity(t->fmap_k + per * l, H, D, f);
            }
        }
        for (l = 0; l < L * H; l++) t->wf[l] = -2.1972245773362196f;  // logit(0.1)
        for (l = 0; t->fbq && l < L * H; l++) {
            t->fbq[l] = (2.0f * lc_rng_uniform(&rng) - 1.0f) * bound;
            t->fbk[l] = (2.0f * lc_rng_uniform(&rng) - 1.0f) * bound;
        }
    }
    for (l = 0; t->gate_b && l < L * H; l++) t->gate_b[l] = LOLCATS_GATE_BIAS_INIT;  // w_g stays 0
    for (l = 0; l < L; l++)
        for (tg = 0; tg < 4; tg++) {
            size_t off = t->lora_off[l][tg], i, na;
            float bound;
            if (!off) continue;
            na = (size_t)t->cfg.lora_rank * lc__lora_in(c, tg);
            bound = (float)(1.0 / sqrt((double)lc__lora_in(c, tg)));  // kaiming a = sqrt(5)
            for (i = 0; i < na; i++) t->params[off + i] = (2.0f * lc_rng_uniform(&rng) - 1.0f) * bound;
        }
}

static lc_status lc__train_finish_init(lc_train *t, const lc_ctx *ctx, const lc_train_cfg *cfg,
                                       int slots, int with_full, lc_error *err) {
    lc_status st;
    const lc_model_config *c = &t->model->cfg;
    t->ctx = *ctx;
    t->cfg = *cfg;
    t->F = lc_fmap_out_dim(&cfg->fmap, cfg->feature_dim);
    if (cfg->max_tokens <= 0 || cfg->feature_dim <= 0 || cfg->feature_dim > 1024 || cfg->lora_rank < 0 ||
        cfg->lora_rank > 256 || c->head_dim > 1024 || cfg->hybrid.window <= 0)
        return lc_error_set(err, LOLCATS_ERR_ARG,
                            "bad training config: tokens %d, feature dim %d, lora rank %d, window %d",
                            cfg->max_tokens, cfg->feature_dim, cfg->lora_rank, cfg->hybrid.window);
    if ((st = lc__gate_train_check(cfg, err))) return st;   // >>gate-train
    if ((st = lc__train_alloc(t, with_full, err))) return st;
    if ((st = lc__train_act_alloc(t, slots, NULL, err))) return st;
    lc__train_init_params(t);
    return LOLCATS_OK;
}

LCIMPL size_t lc_train_memory_bytes(const lc_model *m, const lc_train_cfg *cfg) {
    lc_train t;
    lc_error err;
    lc_status st;
    size_t acts = 0, params;
    memset(&t, 0, sizeof t);
    t.model = (lc_model *)m;
    t.cfg = *cfg;
    t.F = lc_fmap_out_dim(&cfg->fmap, cfg->feature_dim);
    st = lc__train_alloc(&t, 0, &err);
    params = t.n_params;
    LOLCATS_FREE(t.mem);
    LOLCATS_FREE(t.lora_off);
    LOLCATS_FREE(t.lora_a);
    if (st) return (size_t)-1;
    if (lc__train_act_alloc(&t, cfg->distill_only || cfg->recompute ? 1 : m->cfg.n_layers, &acts, &err))
        return (size_t)-1;
    return sizeof(float) * (4 * params + acts) + lc__kl_bytes(m, cfg);
}

LCIMPL lc_status lc_train_init(lc_train *t, const lc_ctx *ctx, lc_model *m, const lc_train_cfg *cfg,
                               lc_error *err) {
    lc_status st;
    memset(t, 0, sizeof *t);
    t->model = m;
    if ((st = lc__train_finish_init(t, ctx, cfg, cfg->distill_only || cfg->recompute ? 1 : m->cfg.n_layers, 0,
                                    err))) {
        lc_train_free(t);
        return st;
    }
    lc__train_norms(t);
    return LOLCATS_OK;
}

static lc_weight lc__w32(float **p, int64_t rows, int64_t cols) {
    lc_weight w;
    w.data = *p;
    w.dtype = LOLCATS_DTYPE_F32;
    w.rows = rows;
    w.cols = cols;
    *p += rows * cols;
    return w;
}

LCIMPL lc_status lc_train_init_full(lc_train *t, const lc_ctx *ctx, const lc_model_config *mc,
                                    const lc_train_cfg *cfg, lc_error *err) {
    lc_model *m;
    lc_status st;
    float *p;
    int l, dim = mc->dim, hid = mc->hidden_dim, qd = mc->n_heads * mc->head_dim;
    int kd = mc->n_kv_heads * mc->head_dim;
    size_t i, n;
    lc_rng rng;
    memset(t, 0, sizeof *t);
    if (mc->n_layers <= 0 || mc->n_heads <= 0 || mc->n_kv_heads <= 0 || mc->n_heads % mc->n_kv_heads ||
        mc->head_dim <= 0 || mc->head_dim % 2 || dim <= 0 || hid <= 0 || mc->vocab_size <= 0)
        return lc_error_set(err, LOLCATS_ERR_ARG, "bad model config for training from scratch");
    m = (lc_model *)LOLCATS_MALLOC(sizeof *m);
    if (!m) return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory");
    memset(m, 0, sizeof *m);
    m->cfg = *mc;
    m->layers = (lc_layer_weights *)LOLCATS_MALLOC(sizeof(lc_layer_weights) * (size_t)mc->n_layers);
    if (!m->layers) { LOLCATS_FREE(m); return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory"); }
    memset(m->layers, 0, sizeof(lc_layer_weights) * (size_t)mc->n_layers);   // no Qwen biases / q-k norms
    t->model = m;
    if ((st = lc__train_finish_init(t, ctx, cfg, cfg->recompute ? 1 : mc->n_layers, 1, err))) {
        if (!t->full) { LOLCATS_FREE(m->layers); LOLCATS_FREE(m); t->model = NULL; }  // refused early
        lc_train_free(t);
        return st;
    }
    p = t->full;
    m->tok_emb = lc__w32(&p, mc->vocab_size, dim);
    for (l = 0; l < mc->n_layers; l++) {
        lc_layer_weights *lw = &m->layers[l];
        lw->rms_att = lc__w32(&p, 1, dim);
        lw->wq = lc__w32(&p, qd, dim);
        lw->wk = lc__w32(&p, kd, dim);
        lw->wv = lc__w32(&p, kd, dim);
        lw->wo = lc__w32(&p, dim, qd);
        lw->rms_ffn = lc__w32(&p, 1, dim);
        lw->w1 = lc__w32(&p, hid, dim);
        lw->w2 = lc__w32(&p, dim, hid);
        lw->w3 = lc__w32(&p, hid, dim);
    }
    m->rms_final = lc__w32(&p, 1, dim);
    m->wcls = mc->tied ? m->tok_emb : lc__w32(&p, mc->vocab_size, dim);
    n = (size_t)(p - t->full);
    LOLCATS_ASSERT(n == lc__full_floats(mc));
    lc_rng_seed(&rng, cfg->seed);
    for (i = 0; i < n; i++) t->full[i] = 0.02f * lc_rng_normal(&rng);
    for (l = 0; l < mc->n_layers; l++) {
        int c;
        for (c = 0; c < dim; c++) {
            ((float *)m->layers[l].rms_att.data)[c] = 1.0f;
            ((float *)m->layers[l].rms_ffn.data)[c] = 1.0f;
        }
    }
    for (i = 0; i < (size_t)dim; i++) ((float *)m->rms_final.data)[i] = 1.0f;
    m->format = 0;
    return LOLCATS_OK;
}

LCIMPL void lc_train_free(lc_train *t) {
    lc__train_act *a;
    if (!t) return;
    a = (lc__train_act *)t->act;
    if (a) {
        lc__kl_free(&a->kl);
        if (a->n_slots > 0) LOLCATS_FREE(a->L[0].x_in);
        LOLCATS_FREE(a->L);
        LOLCATS_FREE(a);
    }
    if (t->full && t->model) {  // the model was made by lc_train_init_full
        LOLCATS_FREE(t->model->layers);
        LOLCATS_FREE(t->model);
    }
    LOLCATS_FREE(t->mem);
    LOLCATS_FREE(t->lora_off);
    LOLCATS_FREE(t->lora_a);
    memset(t, 0, sizeof *t);
}

LCIMPL void lc_train_zero_grad(lc_train *t) { memset(t->grads, 0, sizeof(float) * t->n_params); }

// LoRA views of layer l, target tg (NULL when absent)
static void lc__lora_of(const lc_train *t, int l, int tg, const float **A, const float **Bm) {
    size_t off = t->lora_off[l][tg];
    const lc_model_config *c = &t->model->cfg;
    *A = off ? t->params + off : NULL;
    *Bm = off ? t->params + off + (size_t)t->cfg.lora_rank * lc__lora_in(c, tg) : NULL;
}

static void lc__train_linear_fwd(lc_train *t, int l, int tg, float *y, float *xa, const float *x,
                                 const lc_weight *w, int T) {
    const float *A, *Bm;
    float s = t->cfg.lora_rank > 0 ? t->cfg.lora_alpha / (float)t->cfg.lora_rank : 0.0f;
    if (tg >= 0) lc__lora_of(t, l, tg, &A, &Bm);
    else A = Bm = NULL;
    lc_linear_fwd(&t->ctx, y, xa, x, w->data, (int)w->dtype, A, Bm, s, A ? t->cfg.lora_rank : 0, T,
                  (int)w->rows, (int)w->cols);
}

static void lc__train_linear_bwd(lc_train *t, int l, int tg, float *dx, const float *dy,
                                 const float *x, const float *xa, const lc_weight *w, int T) {
    const float *A, *Bm;
    float s = t->cfg.lora_rank > 0 ? t->cfg.lora_alpha / (float)t->cfg.lora_rank : 0.0f;
    float *dw = (t->cfg.trainable & LOLCATS_TRAIN_FULL) && t->full ? lc__grad_at(t, (const float *)w->data) : NULL;
    int lora_on = tg >= 0 && (t->cfg.trainable & LOLCATS_TRAIN_LORA);
    if (tg >= 0) lc__lora_of(t, l, tg, &A, &Bm);
    else A = Bm = NULL;
    lc_linear_bwd(&t->ctx, dx, dw, A && lora_on ? lc__grad_at(t, A) : NULL,
                  A && lora_on ? lc__grad_at(t, Bm) : NULL, dy, x, xa, w->data, (int)w->dtype,
                  A, Bm, s, A ? t->cfg.lora_rank : 0, T, (int)w->rows, (int)w->cols);
}

// The trainer's side of the one block (>>llama-block): projections with
// LoRA through lc_linear_fwd, activations kept in the layer's slot la.
typedef struct lc__train_blk {
    lc_train *t;
    lc__layer_act *la;
    int attn;                          // LOLCATS_ATTN_*
} lc__train_blk;

static void lc__train_attn_fwd(lc_train *t, int l, lc__layer_act *la, int T, int attn);

static void lc__train_block_proj(const lc__block *b, int tg, float *y, float *xa, const float *x,
                                 const lc_weight *w, int T) {
    lc__train_linear_fwd(((lc__train_blk *)b->user)->t, b->l, tg, y, xa, x, w, T);
}

static void lc__train_block_attn(const lc__block *b, int T) {
    lc__train_blk *u = (lc__train_blk *)b->user;
    lc__train_attn_fwd(u->t, b->l, u->la, T, u->attn);
    lc_heads_merge(u->la->ym, u->la->yh, T, b->c->n_heads, b->c->head_dim);
}

static void lc__train_block(lc__block *b, lc__train_blk *u, lc_train *t, int l, lc__layer_act *la,
                            int attn) {
    lc__train_act *a = (lc__train_act *)t->act;
    const lc_model_config *c = &t->model->cfg;
    int tg;
    u->t = t; u->la = la; u->attn = attn;
    memset(b, 0, sizeof *b);
    b->ctx = &t->ctx; b->c = c; b->lw = &t->model->layers[l]; b->l = l;
    b->norm_att = a->norm_w + (size_t)(2 * l) * c->dim;
    b->norm_ffn = a->norm_w + (size_t)(2 * l + 1) * c->dim;
    b->cos_t = a->rope_cos; b->sin_t = a->rope_sin;
    b->xn = la->xn; b->rstd1 = la->rstd1;
    b->q = a->tq; b->k = a->tk; b->v = a->tv;
    for (tg = 0; tg < 4; tg++) b->xa[tg] = la->xa[tg];
    b->qh = la->qh; b->kh = la->kh; b->vh = la->vh;
    b->ym = la->ym;
    b->o = b->h = la->h;
    b->hn = la->hn; b->rstd2 = la->rstd2; b->g = la->g; b->u = la->u; b->hh = la->hh;
    b->proj = lc__train_block_proj;
    b->attn = lc__train_block_attn;
    b->user = u;
}

// Attention input side of layer l (the block's first step) into la.
static void lc__train_qkv(lc_train *t, int l, lc__layer_act *la, int T) {
    lc__block b;
    lc__train_blk u;
    lc__train_block(&b, &u, t, l, la, 0);
    lc__block_qkv(&b, la->x_in, T);
}

// Layer l forward with attention of kind attn: la->x_in -> x_out.
static void lc__train_block_fwd(lc_train *t, int l, lc__layer_act *la, int T, int attn, float *x_out) {
    lc__block b;
    lc__train_blk u;
    lc__train_block(&b, &u, t, l, la, attn);
    b.mo = x_out;
    lc__block_fwd(&b, la->x_in, x_out, T);
}

// Back through Qwen3's per-head q/k norms: a->tq / a->tk hold the gradients
// of the normed q / k; they become those of the projections. The projections
// are made again (into dqh / dkh, free here) for the norms' inputs; dym and
// dyh are scratch. The biases (Qwen2) pass gradients through unchanged and
// stay frozen.
static void lc__qwen_norm_bwd(lc_train *t, int l, lc__layer_act *la, int T) {
    lc__train_act *a = (lc__train_act *)t->act;
    const lc_model_config *c = &t->model->cfg;
    const lc_layer_weights *lw = &t->model->layers[l];
    float wf[2 * LC__ROPE_MAX_HALF];
    int D = c->head_dim, pass, i;
    for (pass = 0; pass < 2; pass++) {
        int rows = T * (pass ? c->n_kv_heads : c->n_heads);
        const lc_weight *nw = pass ? &lw->k_norm : &lw->q_norm, *b = pass ? &lw->bk : &lw->bq;
        float *x = pass ? a->dkh : a->dqh, *g = pass ? a->tk : a->tq;
        size_t n = (size_t)rows * D, r;
        lc__train_linear_fwd(t, l, pass ? LOLCATS_LORA_K : LOLCATS_LORA_Q, x, la->xa[pass], la->xn,
                             pass ? &lw->wk : &lw->wq, T);
        if (b->data) lc__qwen_bias(x, b, T);
        for (i = 0; i < D; i++) wf[i] = lc_weight_get(nw, i);
        for (r = 0; r < (size_t)rows; r++) {   // the rstd lc_rmsnorm_fwd computes, into dym
            double ss = 0;
            for (i = 0; i < D; i++) ss += (double)x[r * D + i] * (double)x[r * D + i];
            a->dym[r] = (float)(1.0 / sqrt(ss / D + (double)c->norm_eps));
        }
        memset(a->dyh, 0, sizeof(float) * n);
        lc_rmsnorm_bwd(a->dyh, NULL, g, x, wf, a->dym, rows, D);
        memcpy(g, a->dyh, sizeof(float) * n);
    }
}

static float *lc__fm(const lc_train *t, const float *base, int l) {
    const lc_model_config *c = &t->model->cfg;
    return (float *)base + (size_t)l * c->n_heads * c->head_dim * t->cfg.feature_dim;
}

// Layer l's feature-map biases (H), or NULL without them.
static float *lc__fb(const lc_train *t, const float *base, int l) {
    return base ? (float *)base + (size_t)l * t->model->cfg.n_heads : NULL;
}

// The gradient slot of layer l's biases, or NULL (no biases, or not trained).
static float *lc__fb_grad(lc_train *t, const float *base, int l, int on) {
    return base && on ? lc__grad_at(t, lc__fb(t, base, l)) : NULL;
}

// Layer l's attention kind: the configured one, softmax in a kept softmax
// layer (cfg.softmax_layers).
static int lc__train_layer_attn(const lc_train *t, int l) {
    return t->cfg.softmax_layers && t->cfg.softmax_layers[l] ? LOLCATS_ATTN_SOFTMAX : t->cfg.attn;
}

// Layers that are linearized (the stage-1 loss is their mean); at least 1.
static int lc__train_n_linear(const lc_train *t) {
    int l, n = 0, L = t->model->cfg.n_layers;
    for (l = 0; l < L; l++) n += !(t->cfg.softmax_layers && t->cfg.softmax_layers[l]);
    return n > 0 ? n : 1;
}

// Attention (the configured kind) of layer l into la->yh.
static void lc__train_attn_fwd(lc_train *t, int l, lc__layer_act *la, int T, int attn) {
    lc__train_act *a = (lc__train_act *)t->act;
    const lc_model_config *c = &t->model->cfg;
    int H = c->n_heads, Hk = c->n_kv_heads, D = c->head_dim, f = t->cfg.feature_dim, F = t->F;
    if (attn == LOLCATS_ATTN_SOFTMAX) {
        lc_attn_softmax_fwd(&t->ctx, la->yh, la->m, la->qh, la->kh, la->vh, 1, H, Hk, T, D);
        return;
    }
    lc_fmap_fwd(&t->ctx, la->phiq, la->qh, lc__fm(t, t->fmap_q, l), lc__fb(t, t->fbq, l), 1, H, H, T, D, f, &t->cfg.fmap);
    lc_fmap_fwd(&t->ctx, la->phik, la->kh, lc__fm(t, t->fmap_k, l), lc__fb(t, t->fbk, l), 1, H, Hk, T, D, f, &t->cfg.fmap);
    if (attn == LOLCATS_ATTN_LINEAR)
        lc_attn_linear_fwd(&t->ctx, la->yh, la->den, la->phiq, la->phik, la->vh, 1, H, Hk, T, F, D, 1e-12f);
    else if (t->gate_w)
        lc__gate_train_fwd(t, l, la, T);   // >>gate-train
    else
        lc_attn_hybrid_fwd(&t->ctx, la->yh, NULL, la->m, la->den, a->work, la->qh, la->kh, la->vh,
                           la->phiq, la->phik, t->wf + (size_t)l * H, NULL, NULL, 1, H, Hk, T, D, F,
                           &t->cfg.hybrid);
}

// Output side of layer l (the block's last step): merge la->yh, o_proj +
// residual, MLP + residual -> x_out.
static void lc__train_out_fwd(lc_train *t, int l, lc__layer_act *la, float *x_out, int T) {
    lc__block b;
    lc__train_blk u;
    lc__train_block(&b, &u, t, l, la, 0);
    b.mo = x_out;
    lc_heads_merge(la->ym, la->yh, T, t->model->cfg.n_heads, t->model->cfg.head_dim);
    lc__block_post(&b, la->x_in, x_out, T);
}

static lc_status lc__train_check_tokens(const lc_train *t, const int *tokens, int T, lc_error *err) {
    int i;
    lc__train_act *a = (lc__train_act *)t->act;
    if (T <= 0 || T > a->T)
        return lc_error_set(err, LOLCATS_ERR_ARG, "sequence of %d tokens: the trainer was set up for 1..%d", T, a->T);
    for (i = 0; i < T; i++)
        if (tokens[i] < 0 || tokens[i] >= t->model->cfg.vocab_size)
            return lc_error_set(err, LOLCATS_ERR_ARG, "token %d at position %d is outside the vocabulary (%d)",
                                tokens[i], i, t->model->cfg.vocab_size);
    return LOLCATS_OK;
}

static void lc__train_embed(lc_train *t, float *x, const int *tokens, int T) {
    const lc_model *m = t->model;
    int i, c, dim = m->cfg.dim;
    for (i = 0; i < T; i++)
        for (c = 0; c < dim; c++) x[(size_t)i * dim + c] = lc_weight_get(&m->tok_emb, (int64_t)tokens[i] * dim + c);
}

LCIMPL lc_status lc_train_embed_tokens(lc_train *t, const int *tokens, int T, float *x, lc_error *err) {
    lc_status st;
    if ((st = lc__train_check_tokens(t, tokens, T, err))) return st;
    lc__train_embed(t, x, tokens, T);
    return LOLCATS_OK;
}

LCIMPL lc_status lc_train_distill_block(lc_train *t, float *x, int T, int l0, int l1, int students,
                                        int backward, double *loss, double *layer_loss, lc_error *err) {
    lc__train_act *a = (lc__train_act *)t->act;
    const lc_model_config *c = &t->model->cfg;
    int L = c->n_layers, H = c->n_heads, Hk = c->n_kv_heads, D = c->head_dim, f = t->cfg.feature_dim;
    int F = t->F, l, Ln = lc__train_n_linear(t);   // the loss: mean over the linearized layers
    size_t nq = (size_t)H * T * D;
    lc__layer_act *la = &a->L[0];
    double total = 0;
        if (T <= 0 || T > a->T)
        return lc_error_set(err, LOLCATS_ERR_ARG, "sequence of %d tokens: the trainer was set up for 1..%d", T, a->T);
    if (l0 < 0 || l1 > L || l0 > l1)
        return lc_error_set(err, LOLCATS_ERR_ARG, "layer block %d:%d outside 0:%d", l0, l1, L);
    if (students && !t->fmap_q) return lc_error_set(err, LOLCATS_ERR_ARG, "distill needs feature maps (attn != softmax)");
    if (t->full) lc__train_norms(t);
    memcpy(la->x_in, x, sizeof(float) * (size_t)T * c->dim);
    for (l = l0; l < l1; l++) {
        double ll;
        lc__train_qkv(t, l, la, T);
        if (!students || lc__train_layer_attn(t, l) == LOLCATS_ATTN_SOFTMAX) {  // teacher only
            lc_attn_softmax_fwd(&t->ctx, a->yt, a->lse, la->qh, la->kh, la->vh, 1, H, Hk, T, D);
            if (students && layer_loss) layer_loss[l] = 0;
            goto next_layer;
        }
        lc_fmap_fwd(&t->ctx, la->phiq, la->qh, lc__fm(t, t->fmap_q, l), lc__fb(t, t->fbq, l), 1, H, H, T, D, f, &t->cfg.fmap);
        lc_fmap_fwd(&t->ctx, la->phik, la->kh, lc__fm(t, t->fmap_k, l), lc__fb(t, t->fbk, l), 1, H, Hk, T, D, f, &t->cfg.fmap);
        if (t->gate_w) {  // >>gate-train: teacher, gated student, losses, backward to dphi, w_g, b_g
            ll = lc__gate_train_distill(t, l, la, T, backward, t->cfg.mse_factor / (float)Ln,
                                        t->cfg.xent_factor / (float)Ln);
        } else if (!a->as) {  // teacher, student, MSE and its backward in one call
            ll = lc_attn_transfer_mse(&t->ctx, a->yt, a->lse, NULL, NULL, NULL,
                                      backward ? a->dphiq : NULL, a->dphik,
                                      lc__grad_at(t, t->wf + (size_t)l * H), a->work, la->qh,
                                      la->kh, la->vh, la->phiq, la->phik, t->wf + (size_t)l * H, 1,
                                      H, Hk, T, D, F, t->cfg.mse_factor / (float)Ln,
                                      &t->cfg.hybrid);
        } else {  // the student's attention weights too: the quadratic form
            lc_attn_softmax_fwd(&t->ctx, a->yt, a->lse, la->qh, la->kh, la->vh, 1, H, Hk, T, D);
            lc_attn_hybrid_fwd(&t->ctx, la->yh, a->as, la->m, la->den, NULL, la->qh, la->kh, la->vh,
                               la->phiq, la->phik, t->wf + (size_t)l * H, NULL, NULL, 1, H, Hk, T, D, F,
                               &t->cfg.hybrid);
            if (backward) memset(a->dyh, 0, sizeof(float) * nq);
            ll = lc_loss_mse(backward ? a->dyh : NULL, la->yh, a->yt, nq, t->cfg.mse_factor / (float)Ln);
            // soft-target cross-entropy over the attention weights
            lc_attn_softmax_weights(&t->ctx, a->at, la->qh, la->kh, 1, H, Hk, T, D);
            if (backward) memset(a->ga, 0, sizeof(float) * (size_t)H * T * T);
            ll += lc_loss_xent(backward ? a->ga : NULL, a->as, a->at, (size_t)H * T, T,
                               t->cfg.xent_factor / (float)Ln);
        }
        if (layer_loss) layer_loss[l] = ll * Ln;
        total += ll;
        if (backward) {
            // q, k, v are the frozen teacher's: no gradient flows into them
            if (a->as && !t->gate_w) {
                memset(a->dphiq, 0, sizeof(float) * (size_t)H * T * F);
                memset(a->dphik, 0, sizeof(float) * (size_t)H * T * F);
                lc_attn_hybrid_bwd(&t->ctx, NULL, NULL, NULL, a->dphiq, a->dphik,
                                   lc__grad_at(t, t->wf + (size_t)l * H), NULL, NULL, NULL, a->dyh, a->ga,
                                   la->yh, la->m, la->den, la->qh, la->kh, la->vh, la->phiq, la->phik,
                                   t->wf + (size_t)l * H, NULL, NULL, 1, H, Hk, T, D, F, &t->cfg.hybrid);
            }
            lc_fmap_bwd_phi(&t->ctx, NULL, lc__grad_at(t, lc__fm(t, t->fmap_q, l)), lc__fb_grad(t, t->fbq, l, 1),
                            a->dphiq, la->phiq, la->qh, lc__fm(t, t->fmap_q, l), lc__fb(t, t->fbq, l), 1, H, H, T,
                            D, f, &t->cfg.fmap);
            lc_fmap_bwd_phi(&t->ctx, NULL, lc__grad_at(t, lc__fm(t, t->fmap_k, l)), lc__fb_grad(t, t->fbk, l, 1),
                            a->dphik, la->phik, la->kh, lc__fm(t, t->fmap_k, l), lc__fb(t, t->fbk, l), 1, H, Hk, T,
                            D, f, &t->cfg.fmap);
        }
    next_layer:  // teacher forcing: the next layer gets the softmax output's stream
        memcpy(la->yh, a->yt, sizeof(float) * nq);
        lc__train_out_fwd(t, l, la, a->xf, T);
        memcpy(la->x_in, a->xf, sizeof(float) * (size_t)T * c->dim);
        if (t->cfg.release_pages) lc_model_release_layer(t->model, l);
    }
    memcpy(x, la->x_in, sizeof(float) * (size_t)T * c->dim);
    if (loss) *loss = total;
    return LOLCATS_OK;
}

LCIMPL lc_status lc_train_distill_step(lc_train *t, const int *tokens, int T, int backward,
                                       double *loss, double *layer_loss, lc_error *err) {
    lc__train_act *a = (lc__train_act *)t->act;
    lc_status st;
    if ((st = lc_train_embed_tokens(t, tokens, T, a->xf, err))) return st;
    if (!t->fmap_q) return lc_error_set(err, LOLCATS_ERR_ARG, "distill needs feature maps (attn != softmax)");
    return lc_train_distill_block(t, a->xf, T, 0, t->model->cfg.n_layers, 1, backward, loss, layer_loss, err);
}

// The block's backward (layer l, activations in la): a->dx holds dL/dx_out
// and becomes dL/dx_in; parameter gradients accumulate. Three steps, the
// forward's in reverse: MLP, attention (o projection, kind attn), q/k/v side.
static void lc__train_mlp_bwd(lc_train *t, int l, lc__layer_act *la, int T) {
    lc__train_act *a = (lc__train_act *)t->act;
    const lc_model *m = t->model;
    const lc_model_config *c = &m->cfg;
    const lc_layer_weights *lw = &m->layers[l];
    int dim = c->dim, hid = c->hidden_dim;
    size_t nx = (size_t)T * dim;
    int full = (t->cfg.trainable & LOLCATS_TRAIN_FULL) && t->full;
    // MLP: x_out = h + W2 (silu(W1 hn) * W3 hn)
    memcpy(a->dh, a->dx, sizeof(float) * nx);
    memset(a->dhh, 0, sizeof(float) * (size_t)T * hid);
    lc__train_linear_bwd(t, l, -1, a->dhh, a->dx, la->hh, NULL, &lw->w2, T);
    memset(a->dg, 0, sizeof(float) * (size_t)T * hid);
    memset(a->du, 0, sizeof(float) * (size_t)T * hid);
    lc_swiglu_bwd(a->dg, a->du, a->dhh, la->g, la->u, (size_t)T * hid);
    memset(a->dxn, 0, sizeof(float) * nx);
    lc__train_linear_bwd(t, l, -1, a->dxn, a->dg, la->hn, NULL, &lw->w1, T);
    lc__train_linear_bwd(t, l, -1, a->dxn, a->du, la->hn, NULL, &lw->w3, T);
    lc_rmsnorm_bwd(a->dh, full ? lc__grad_at(t, (const float *)lw->rms_ffn.data) : NULL, a->dxn, la->h,
                   a->norm_w + (size_t)(2 * l + 1) * dim, la->rstd2, T, dim);
}

static void lc__train_attn_bwd(lc_train *t, int l, lc__layer_act *la, int T, int attn) {
    lc__train_act *a = (lc__train_act *)t->act;
    const lc_model *m = t->model;
    const lc_model_config *c = &m->cfg;
    const lc_layer_weights *lw = &m->layers[l];
    int H = c->n_heads, Hk = c->n_kv_heads, D = c->head_dim, f = t->cfg.feature_dim, F = t->F;
    size_t nx = (size_t)T * c->dim, nq = (size_t)H * T * D, nk = (size_t)Hk * T * D;
    int fm_on = (t->cfg.trainable & LOLCATS_TRAIN_FMAPS) && t->fmap_q;
    // attention: h = x_in + Wo merge(yh)
    memcpy(a->dx, a->dh, sizeof(float) * nx);
    memset(a->dym, 0, sizeof(float) * nq);
    lc__train_linear_bwd(t, l, LOLCATS_LORA_O, a->dym, a->dh, la->ym, la->xa[3], &lw->wo, T);
    memset(a->dyh, 0, sizeof(float) * nq);
    lc_heads_merge_bwd(a->dyh, a->dym, T, H, D);
    memset(a->dqh, 0, sizeof(float) * nq);
    memset(a->dkh, 0, sizeof(float) * nk);
    memset(a->dvh, 0, sizeof(float) * nk);
    if (attn == LOLCATS_ATTN_SOFTMAX) {
        lc_attn_softmax_bwd(&t->ctx, a->dqh, a->dkh, a->dvh, a->dyh, NULL, la->yh, la->m, la->qh, la->kh,
                            la->vh, 1, H, Hk, T, D);
    } else {
        float *wfl = t->wf + (size_t)l * H;
        memset(a->dphiq, 0, sizeof(float) * (size_t)H * T * F);
        memset(a->dphik, 0, sizeof(float) * (size_t)H * T * F);
        if (attn == LOLCATS_ATTN_LINEAR)
            lc_attn_linear_bwd(&t->ctx, a->dphiq, a->dphik, a->dvh, a->dyh, la->yh, la->den, la->phiq,
                               la->phik, la->vh, 1, H, Hk, T, F, D, 1e-12f);
        else if (t->gate_w)
            lc__gate_train_bwd(t, l, la, T, fm_on);   // >>gate-train (d x_n waits for the q/k/v side)
        else
            lc_attn_hybrid_bwd(&t->ctx, a->dqh, a->dkh, a->dvh, a->dphiq, a->dphik,
                               fm_on ? lc__grad_at(t, wfl) : NULL, NULL, NULL, a->work, a->dyh, NULL,
                               la->yh, la->m, la->den, la->qh, la->kh, la->vh, la->phiq, la->phik, wfl,
                               NULL, NULL, 1, H, Hk, T, D, F, &t->cfg.hybrid);
        lc_fmap_bwd(&t->ctx, a->dqh, fm_on ? lc__grad_at(t, lc__fm(t, t->fmap_q, l)) : NULL,
                    lc__fb_grad(t, t->fbq, l, fm_on), a->dphiq, la->qh, lc__fm(t, t->fmap_q, l),
                    lc__fb(t, t->fbq, l), 1, H, H, T, D, f, &t->cfg.fmap);
        lc_fmap_bwd(&t->ctx, a->dkh, fm_on ? lc__grad_at(t, lc__fm(t, t->fmap_k, l)) : NULL,
                    lc__fb_grad(t, t->fbk, l, fm_on), a->dphik, la->kh, lc__fm(t, t->fmap_k, l),
                    lc__fb(t, t->fbk, l), 1, H, Hk, T, D, f, &t->cfg.fmap);
    }
}

static void lc__train_qkv_bwd(lc_train *t, int l, lc__layer_act *la, int T) {
    lc__train_act *a = (lc__train_act *)t->act;
    const lc_model *m = t->model;
    const lc_model_config *c = &m->cfg;
    const lc_layer_weights *lw = &m->layers[l];
    int H = c->n_heads, Hk = c->n_kv_heads, D = c->head_dim, dim = c->dim;
    size_t nx = (size_t)T * dim, nq = (size_t)H * T * D, nk = (size_t)Hk * T * D;
    int full = (t->cfg.trainable & LOLCATS_TRAIN_FULL) && t->full;
    // back through RoPE / split and the projections
    memset(a->tq, 0, sizeof(float) * nq);
    memset(a->tk, 0, sizeof(float) * nk);
    memset(a->tv, 0, sizeof(float) * nk);
    lc_rope_split_bwd(a->tq, a->dqh, a->rope_cos, a->rope_sin, T, H, D, c->rope_interleaved);
    lc_rope_split_bwd(a->tk, a->dkh, a->rope_cos, a->rope_sin, T, Hk, D, c->rope_interleaved);
    lc_rope_split_bwd(a->tv, a->dvh, NULL, NULL, T, Hk, D, 0);
    if (lw->q_norm.data) lc__qwen_norm_bwd(t, l, la, T);
    memset(a->dxn, 0, sizeof(float) * nx);
    if (a->gate_dx) lc__gate_train_dx(t, l, la, T);   // >>gate-train: the gate reads x_n too
    lc__train_linear_bwd(t, l, LOLCATS_LORA_Q, a->dxn, a->tq, la->xn, la->xa[0], &lw->wq, T);
    lc__train_linear_bwd(t, l, LOLCATS_LORA_K, a->dxn, a->tk, la->xn, la->xa[1], &lw->wk, T);
    lc__train_linear_bwd(t, l, LOLCATS_LORA_V, a->dxn, a->tv, la->xn, la->xa[2], &lw->wv, T);
    lc_rmsnorm_bwd(a->dx, full ? lc__grad_at(t, (const float *)lw->rms_att.data) : NULL, a->dxn, la->x_in,
                   a->norm_w + (size_t)(2 * l) * dim, la->rstd1, T, dim);
}

static void lc__train_block_bwd(lc_train *t, int l, lc__layer_act *la, int T, int attn) {
    lc__train_mlp_bwd(t, l, la, T);
    lc__train_attn_bwd(t, l, la, T, attn);
    lc__train_qkv_bwd(t, l, la, T);
}

LCIMPL lc_status lc_train_lm_step(lc_train *t, const int *tokens, const int *labels, int T, int backward,
                                  double *loss, int *n_scored, lc_error *err) {
    lc__train_act *a = (lc__train_act *)t->act;
    lc_model *m = t->model;
    const lc_model_config *c = &m->cfg;
    int L = c->n_layers, dim = c->dim, V = c->vocab_size, l, attn = t->cfg.attn, ns;
    size_t nx = (size_t)T * dim, i;
    int full = (t->cfg.trainable & LOLCATS_TRAIN_FULL) && t->full;
    double ce;
    lc_status st;
    if ((st = lc__train_check_tokens(t, tokens, T, err))) return st;
    if ((a->n_slots < L && !a->xin_saved) || t->cfg.distill_only)
        return lc_error_set(err, LOLCATS_ERR_ARG, "trainer set up for distillation only (distill_only)");
    if (attn != LOLCATS_ATTN_SOFTMAX && !t->fmap_q)
        return lc_error_set(err, LOLCATS_ERR_ARG, "hybrid / linear attention needs feature maps");
    if (t->full) lc__train_norms(t);  // the model's norms live in params: refresh the copies
    lc__train_embed(t, a->L[0].x_in, tokens, T);
    for (l = 0; l < L; l++) {
        lc__layer_act *la = &a->L[a->xin_saved ? 0 : l];
        if (a->xin_saved) memcpy(a->xin_saved + (size_t)l * nx, la->x_in, sizeof(float) * nx);
        // (when recomputing, the next input overwrites this slot's x_in: h is already made)
        lc__train_block_fwd(t, l, la, T, lc__train_layer_attn(t, l),
                            l + 1 < L ? a->L[a->xin_saved ? 0 : l + 1].x_in : a->xf);
        if (t->cfg.release_pages) lc_model_release_layer(m, l);
    }
    lc_rmsnorm_fwd(a->xfn, a->rstdf, a->xf, a->norm_w + (size_t)2 * L * dim, T, dim, c->norm_eps);
    lc__train_linear_fwd(t, 0, -1, a->logits, NULL, a->xfn, &m->wcls, T);
    if (lc__kl_mixed(&t->cfg)) {  // >>kl: distillation to the teacher / a CE weight
        double all = 0;
        ce = 0;
        if ((st = lc__kl_loss(&a->kl, &t->ctx, m, &t->cfg, tokens, labels, a->logits, T, backward, &all, &ce,
                              &a->part_kl, &ns, err)))
            return st;
        a->part_ce = ce;
        ce = all;
    } else {
        ce = lc__xent(&t->ctx, backward ? a->logits : NULL, a->logits, labels, T, V, &ns);
        a->part_ce = ce;
        a->part_kl = 0;
    }
    if (loss) *loss = ce;
    if (n_scored) *n_scored = ns;
    if (!backward || ns == 0) return LOLCATS_OK;

    // backward: a->logits now holds dlogits
    memset(a->dxn, 0, sizeof(float) * nx);
    lc__train_linear_bwd(t, 0, -1, a->dxn, a->logits, a->xfn, NULL, &m->wcls, T);
    memset(a->dx, 0, sizeof(float) * nx);
    lc_rmsnorm_bwd(a->dx, full ? lc__grad_at(t, (const float *)m->rms_final.data) : NULL, a->dxn, a->xf,
                   a->norm_w + (size_t)2 * L * dim, a->rstdf, T, dim);
    for (l = L - 1; l >= 0; l--) {
        lc__layer_act *la = &a->L[a->xin_saved ? 0 : l];
        if (a->xin_saved) {  // activation checkpointing: run layer l again from its input
            memcpy(la->x_in, a->xin_saved + (size_t)l * nx, sizeof(float) * nx);
            lc__train_block_fwd(t, l, la, T, lc__train_layer_attn(t, l), a->dh);  // dh: scratch until below
        }
        lc__train_block_bwd(t, l, la, T, lc__train_layer_attn(t, l));
        if (t->cfg.release_pages) lc_model_release_layer(m, l);
    }
    if (full) {  // embedding rows
        float *demb = lc__grad_at(t, (const float *)m->tok_emb.data);
        for (i = 0; i < (size_t)T; i++) {
            int ch;
            for (ch = 0; ch < dim; ch++) demb[(size_t)tokens[i] * dim + ch] += a->dx[i * dim + ch];
        }
    }
    return LOLCATS_OK;
}

LCIMPL void lc_train_adamw(lc_train *t, const lc_adamw_cfg *opt, float grad_scale) {
    const lc_model_config *c = &t->model->cfg;
    size_t full_n = t->full ? lc__full_floats(c) : 0, fm_n = 0, lora_start, i;
    if (t->fmap_q) fm_n = 2 * (size_t)c->n_layers * c->n_heads * c->head_dim * t->cfg.feature_dim +
                          (size_t)c->n_layers * c->n_heads * (t->fbq ? 3 : 1);
    lora_start = full_n + fm_n + lc__gate_train_floats(t, fm_n);
    if (grad_scale != 1.0f)
        for (i = 0; i < t->n_params; i++) t->grads[i] *= grad_scale;
    t->step++;
    if ((t->cfg.trainable & LOLCATS_TRAIN_FULL) && full_n)
        lc_adamw_step(t->params, t->grads, t->adam_m, t->adam_v, full_n, opt, t->step);
    if ((t->cfg.trainable & LOLCATS_TRAIN_FMAPS) && fm_n)
        lc_adamw_step(t->params + full_n, t->grads + full_n, t->adam_m + full_n, t->adam_v + full_n, fm_n, opt,
                      t->step);
    if (t->gate_w && lc__gate_train_on(t))   // >>gate-train
        lc_adamw_step(t->gate_w, lc__grad_at(t, t->gate_w), t->adam_m + (t->gate_w - t->params),
                      t->adam_v + (t->gate_w - t->params), lora_start - full_n - fm_n, opt, t->step);
    if ((t->cfg.trainable & LOLCATS_TRAIN_LORA) && t->n_params > lora_start)
        lc_adamw_step(t->params + lora_start, t->grads + lora_start, t->adam_m + lora_start,
                      t->adam_v + lora_start, t->n_params - lora_start, opt, t->step);
}

LCIMPL void lc_train_lolcats_view(const lc_train *t, lc_lolcats *lp) {
    const lc_model_config *c = &t->model->cfg;
    memset(lp, 0, sizeof *lp);
    lp->n_layers = c->n_layers;
    lp->n_heads = c->n_heads;
    lp->head_dim = c->head_dim;
    lp->n_kv_heads = c->n_kv_heads;
    lp->dim = c->dim;
    lp->rope_interleaved = c->rope_interleaved;
    lp->fmap = t->cfg.fmap;
    lp->feature_dim = t->cfg.feature_dim;
    lp->hybrid = t->cfg.hybrid;
    lp->fmap_q = t->fmap_q;
    lp->fmap_k = t->fmap_k;
    lp->wf = t->wf;
    lp->fbq = t->fbq;
    lp->fbk = t->fbk;
    lp->gate_w = t->gate_w;
    lp->gate_b = t->gate_b;
    lp->lora_rank = t->cfg.lora_rank;
    lp->lora_alpha = t->cfg.lora_alpha;
    lp->lora_a = t->lora_a;
    lp->lora_b = t->lora_b;
    lp->softmax_layers = t->cfg.softmax_layers;
    if (!t->lora_off[0][0] && !t->lora_off[0][1] && !t->lora_off[0][2] && !t->lora_off[0][3]) lp->lora_rank = 0;
}

LCIMPL const float *lc_train_logits(const lc_train *t) {
    return ((const lc__train_act *)t->act)->logits;
}

LCIMPL void lc_train_loss_parts(const lc_train *t, double *ce, double *kl) {  // >>kl
    const lc__train_act *a = (const lc__train_act *)t->act;
    if (ce) *ce = a->part_ce;
    if (kl) *kl = a->part_kl;
}

LCIMPL void lc_train_kl_cache(const lc_train *t, long *hits, long *misses, int *entries, size_t *bytes) {  // >>kl
    const lc__kl_state *k = (const lc__kl_state *)((const lc__train_act *)t->act)->kl;
    if (hits) *hits = k ? k->hits : 0;
    if (misses) *misses = k ? k->misses : 0;
    if (entries) *entries = k ? k->n_ent : 0;
    if (bytes) *bytes = k ? k->cache_used : 0;
}

LCIMPL lc_status lc_train_attention_maps(lc_train *t, const int *tokens, int T, int layer,
                                         float *a_teacher, float *a_student, lc_error *err) {
    lc__train_act *a = (lc__train_act *)t->act;
    const lc_model_config *c = &t->model->cfg;
    int H = c->n_heads, Hk = c->n_kv_heads, D = c->head_dim, F = t->F, l;
    lc__layer_act *la = &a->L[0];
    lc_status st;
    if ((st = lc__train_check_tokens(t, tokens, T, err))) return st;
    if (layer < 0 || layer >= c->n_layers)
        return lc_error_set(err, LOLCATS_ERR_ARG, "layer %d outside 0..%d", layer, c->n_layers - 1);
    if (a_student && !t->fmap_q)
        return lc_error_set(err, LOLCATS_ERR_ARG, "student attention maps need feature maps");
    if (t->full) lc__train_norms(t);
    lc__train_embed(t, la->x_in, tokens, T);
    for (l = 0; l <= layer; l++) {
        lc__train_qkv(t, l, la, T);
        if (l == layer) break;
        lc_attn_softmax_fwd(&t->ctx, la->yh, la->m, la->qh, la->kh, la->vh, 1, H, Hk, T, D);
        lc__train_out_fwd(t, l, la, a->xf, T);
        memcpy(la->x_in, a->xf, sizeof(float) * (size_t)T * c->dim);
    }
    if (a_teacher) lc_attn_softmax_weights(&t->ctx, a_teacher, la->qh, la->kh, 1, H, Hk, T, D);
    if (a_student) {
        int f = t->cfg.feature_dim;
        lc_fmap_fwd(&t->ctx, la->phiq, la->qh, lc__fm(t, t->fmap_q, layer), lc__fb(t, t->fbq, layer), 1, H, H, T, D, f, &t->cfg.fmap);
        lc_fmap_fwd(&t->ctx, la->phik, la->kh, lc__fm(t, t->fmap_k, layer), lc__fb(t, t->fbk, layer), 1, H, Hk, T, D, f, &t->cfg.fmap);
        if (t->gate_w) {   // >>gate-train: the gated student's weights
            lc_hybrid_args x = lc__gate_train_args(t, layer, la, T);
            lc__gate_train_proj(t, layer, la, T);
            x.a = a_student; x.work = NULL;
            lc_attn_hybrid_fwd_args(&t->ctx, &x);
        } else
        lc_attn_hybrid_fwd(&t->ctx, la->yh, a_student, la->m, la->den, NULL, la->qh, la->kh, la->vh, la->phiq,
                           la->phik, t->wf + (size_t)layer * H, NULL, NULL, 1, H, Hk, T, D, F, &t->cfg.hybrid);
    }
    return LOLCATS_OK;
}

// >>gate-train
// The gated linear state (>>gate) in the trainer (cfg.gate). Per layer l and
// head h: log g_t = log sigmoid(x_n[t] . w_g[l,h] + b_g[l,h]), x_n the layer's
// normed input (the one block's xn, kept in la->xn), fed to the hybrid through
// lc_hybrid_args.log_g. w_g starts at 0 and b_g at LOLCATS_GATE_BIAS_INIT, so
// every g starts at sigmoid(4) = 0.982: close to the original's ungated state
// over the first tens of tokens past the window (the first step is near the
// ungated model), yet 1 - g = 0.018 leaves the gate a gradient to learn from
// (at g = 1 - 1e-6 it would hardly move). Stage 1: the teacher, the gated
// student (the quadratic form when xent wants weights, else the prefix-state
// form), the losses and the backward to dphiq, dphik, dwf and through
// lc_gate_proj_bwd to w_g, b_g (the teacher's x_n gets none). Stage 2: the
// same forward; the backward leaves d log g in a->dlogg and lc__train_qkv_bwd
// adds the gate's share to d x_n (and w_g, b_g's gradients when they train).
static size_t lc__gate_train_floats(const lc_train *t, size_t fm_n) {
    const lc_model_config *c = &t->model->cfg;
    return t->cfg.gate && fm_n ? (size_t)c->n_layers * c->n_heads * ((size_t)c->dim + 1) : 0;
}

// w_g, b_g train with the feature maps, and in stage 2 with gate_stage2.
static int lc__gate_train_on(const lc_train *t) {
    return (t->cfg.trainable & LOLCATS_TRAIN_FMAPS) || t->cfg.gate_stage2;
}

static lc_status lc__gate_train_check(const lc_train_cfg *cfg, lc_error *err) {
    if (!cfg->gate) return LOLCATS_OK;
    if (cfg->attn == LOLCATS_ATTN_LINEAR)
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "the gated linear state (gate) applies to hybrid "
                            "attention, not attn = linear");
    return LOLCATS_OK;
}

static lc_hybrid_args lc__gate_train_args(lc_train *t, int l, lc__layer_act *la, int T) {
    const lc_model_config *c = &t->model->cfg;
    lc_hybrid_args x = lc_hybrid_args_default();
    x.B = 1; x.H = c->n_heads; x.Hk = c->n_kv_heads; x.N = T; x.D = c->head_dim; x.F = t->F;
    x.cfg = &t->cfg.hybrid;
    x.q = la->qh; x.k = la->kh; x.v = la->vh; x.phiq = la->phiq; x.phik = la->phik;
    x.wf = t->wf + (size_t)l * c->n_heads;
    x.log_g = la->logg;
    x.y = la->yh; x.m = la->m; x.den = la->den;
    x.work = ((lc__train_act *)t->act)->work;
    return x;
}

static void lc__gate_train_proj(lc_train *t, int l, lc__layer_act *la, int T) {
    const lc_model_config *c = &t->model->cfg;
    size_t o = (size_t)l * c->n_heads;
    lc_gate_proj_fwd(&t->ctx, la->logg, la->xn, t->gate_w + o * c->dim, t->gate_b + o, 1, c->n_heads, T,
                     c->dim);
}

static double lc__gate_train_distill(lc_train *t, int l, lc__layer_act *la, int T, int backward,
                                     float mse_factor, float xent_factor) {
    lc__train_act *a = (lc__train_act *)t->act;
    const lc_model_config *c = &t->model->cfg;
    int H = c->n_heads, Hk = c->n_kv_heads, D = c->head_dim, F = t->F;
    size_t nq = (size_t)H * T * D, o = (size_t)l * H;
    lc_hybrid_args x = lc__gate_train_args(t, l, la, T);
    double ll;
    lc__gate_train_proj(t, l, la, T);
    lc_attn_softmax_fwd(&t->ctx, a->yt, a->lse, la->qh, la->kh, la->vh, 1, H, Hk, T, D);
    if (a->as) { x.a = a->as; x.work = NULL; }   // the student's weights: the quadratic form
    lc_attn_hybrid_fwd_args(&t->ctx, &x);
    if (backward) memset(a->dyh, 0, sizeof(float) * nq);
    ll = lc_loss_mse(backward ? a->dyh : NULL, la->yh, a->yt, nq, mse_factor);
    if (a->as) {
        lc_attn_softmax_weights(&t->ctx, a->at, la->qh, la->kh, 1, H, Hk, T, D);
        if (backward) memset(a->ga, 0, sizeof(float) * (size_t)H * T * T);
        ll += lc_loss_xent(backward ? a->ga : NULL, a->as, a->at, (size_t)H * T, T, xent_factor);
    }
    if (!backward) return ll;
    memset(a->dphiq, 0, sizeof(float) * (size_t)H * T * F);
    memset(a->dphik, 0, sizeof(float) * (size_t)H * T * F);
    memset(a->dlogg, 0, sizeof(float) * (size_t)H * T);
    x.dy = a->dyh; x.da = a->as ? a->ga : NULL;
    x.dphiq = a->dphiq; x.dphik = a->dphik; x.dwf = lc__grad_at(t, x.wf); x.dlog_g = a->dlogg;
    lc_attn_hybrid_bwd_args(&t->ctx, &x);
    lc_gate_proj_bwd(&t->ctx, NULL, lc__grad_at(t, t->gate_w + o * c->dim), lc__grad_at(t, t->gate_b + o),
                     a->dlogg, la->xn, t->gate_w + o * c->dim, t->gate_b + o, 1, H, T, c->dim);
    return ll;
}

static void lc__gate_train_fwd(lc_train *t, int l, lc__layer_act *la, int T) {
    lc_hybrid_args x = lc__gate_train_args(t, l, la, T);
    lc__gate_train_proj(t, l, la, T);
    lc_attn_hybrid_fwd_args(&t->ctx, &x);
}

static void lc__gate_train_bwd(lc_train *t, int l, lc__layer_act *la, int T, int fm_on) {
    lc__train_act *a = (lc__train_act *)t->act;
    lc_hybrid_args x = lc__gate_train_args(t, l, la, T);
    memset(a->dlogg, 0, sizeof(float) * (size_t)t->model->cfg.n_heads * T);
    x.dy = a->dyh;
    x.dq = a->dqh; x.dk = a->dkh; x.dv = a->dvh; x.dphiq = a->dphiq; x.dphik = a->dphik;
    x.dwf = fm_on ? lc__grad_at(t, x.wf) : NULL;
    x.dlog_g = a->dlogg;
    lc_attn_hybrid_bwd_args(&t->ctx, &x);
    a->gate_dx = 1;
}

static void lc__gate_train_dx(lc_train *t, int l, lc__layer_act *la, int T) {
    lc__train_act *a = (lc__train_act *)t->act;
    const lc_model_config *c = &t->model->cfg;
    size_t o = (size_t)l * c->n_heads;
    int on = lc__gate_train_on(t);
    lc_gate_proj_bwd(&t->ctx, a->dxn, on ? lc__grad_at(t, t->gate_w + o * c->dim) : NULL,
                     on ? lc__grad_at(t, t->gate_b + o) : NULL, a->dlogg, la->xn, t->gate_w + o * c->dim,
                     t->gate_b + o, 1, c->n_heads, T, c->dim);
    a->gate_dx = 0;
}
// >>gate-train-end

// >>simd
// Vector exp (Cephes expf): x = k ln2 + r, |r| <= ln2/2, exp(r) by a degree-7
// polynomial, times 2^k. Within 2 ulp of expf for x in [-87.3, 88.7]; below
// that the result flushes to 2^-126 range or 0 (feature maps clamp at 1e-12
// after dividing by a sum >= 1, so those values never survive); above
// LC__EXP_OVF it is +inf as expf's, and NaN stays NaN (the clamps take the
// input as their second operand, which x86 returns when either is NaN).
#define LC__EXP_HI 88.3762626647949f
#define LC__EXP_LO -87.3365447505531f
#define LC__EXP_OVF 88.72283935546875f
#define LC__LOG2E 1.44269504088896341f
#define LC__LN2_HI 0.693359375f
#define LC__LN2_LO -2.12194440e-4f
#define LC__EXP_P0 1.9875691500e-4f
#define LC__EXP_P1 1.3981999507e-3f
#define LC__EXP_P2 8.3334519073e-3f
#define LC__EXP_P3 4.1665795894e-2f
#define LC__EXP_P4 1.6666665459e-1f
#define LC__EXP_P5 5.0000001201e-1f

#if defined(LC__X86)
LC__TARGET_AVX2 static float lc__hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

LC__TARGET_AVX2 static float lc__dot_avx2(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    float s;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s = lc__hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

LC__TARGET_AVX2 static void lc__axpy_avx2(float *y, float a, const float *x, int n) {
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i),
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

LC__TARGET_AVX2 static void lc__scal_avx2(float *x, float a, int n) {
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(va, _mm256_loadu_ps(x + i)));
    for (; i < n; i++) x[i] *= a;
}

LC__TARGET_AVX512 static void lc__scal_avx512(float *x, float a, int n) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(va, _mm512_loadu_ps(x + i)));
    for (; i < n; i++) x[i] *= a;
}

LC__TARGET_AVX2 static float lc__max_avx2(const float *x, float sgn, int n) {
    __m256 vs = _mm256_set1_ps(sgn), m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
    __m256 nan = _mm256_setzero_ps();  // lanes that saw a NaN
    float lanes[8], m;
    int i = 0, l;
    for (; i + 16 <= n; i += 16) {
        __m256 a = _mm256_mul_ps(vs, _mm256_loadu_ps(x + i));
        __m256 b = _mm256_mul_ps(vs, _mm256_loadu_ps(x + i + 8));
        m0 = _mm256_max_ps(m0, a);
        m1 = _mm256_max_ps(m1, b);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
    }
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_mul_ps(vs, _mm256_loadu_ps(x + i));
        m0 = _mm256_max_ps(m0, a);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
    }
    if (_mm256_movemask_ps(nan)) return NAN;
    _mm256_storeu_ps(lanes, _mm256_max_ps(m0, m1));
    m = lanes[0];
    for (l = 1; l < 8; l++) m = lanes[l] > m ? lanes[l] : m;
    for (; i < n; i++) m = sgn * x[i] > m || x[i] != x[i] ? sgn * x[i] : m;
    return m;
}

LC__TARGET_AVX512 static float lc__max_avx512(const float *x, float sgn, int n) {
    __m512 vs = _mm512_set1_ps(sgn), m0 = _mm512_set1_ps(-INFINITY), m1 = m0;
    __mmask16 nan = 0;  // lanes that saw a NaN
    float lanes[16], m;
    int i = 0, l;
    for (; i + 32 <= n; i += 32) {
        __m512 a = _mm512_mul_ps(vs, _mm512_loadu_ps(x + i));
        __m512 b = _mm512_mul_ps(vs, _mm512_loadu_ps(x + i + 16));
        m0 = _mm512_max_ps(m0, a);
        m1 = _mm512_max_ps(m1, b);
        nan = (__mmask16)(nan | _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q));
    }
    for (; i + 16 <= n; i += 16) {
        __m512 a = _mm512_mul_ps(vs, _mm512_loadu_ps(x + i));
        m0 = _mm512_max_ps(m0, a);
        nan = (__mmask16)(nan | _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q));
    }
    if (i < n) {  // masked tail: the other lanes keep -inf
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);
        __m512 a = _mm512_mul_ps(vs, _mm512_maskz_loadu_ps(k, x + i));
        m1 = _mm512_mask_max_ps(m1, k, m1, a);
        nan = (__mmask16)(nan | _mm512_mask_cmp_ps_mask(k, a, a, _CMP_UNORD_Q));
    }
    if (nan) return NAN;
    _mm512_storeu_ps(lanes, _mm512_max_ps(m0, m1));
    m = lanes[0];
    for (l = 1; l < 16; l++) m = lanes[l] > m ? lanes[l] : m;
    return m;
}

LC__TARGET_AVX512 static float lc__dot_avx512(const float *a, const float *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    float s;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {  // masked tail
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i), s1);
    }
    {  // plain horizontal sum (GCC 12's _mm512_reduce_add_ps warns under C++)
        float lanes[16];
        int l;
        _mm512_storeu_ps(lanes, _mm512_add_ps(s0, s1));
        s = 0;
        for (l = 0; l < 16; l++) s += lanes[l];
    }
    return s;
}

LC__TARGET_AVX512 static void lc__axpy_avx512(float *y, float a, const float *x, int n) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i),
                                                _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(k, x + i),
                                                        _mm512_maskz_loadu_ps(k, y + i)));
    }
}

LC__TARGET_AVX2 static __m256 lc__exp256(__m256 x) {
    __m256 k, r, p, r2;
    __m256i e;
    __m256 ovf = _mm256_cmp_ps(x, _mm256_set1_ps(LC__EXP_OVF), _CMP_GT_OQ);
    x = _mm256_min_ps(_mm256_set1_ps(LC__EXP_HI), _mm256_max_ps(_mm256_set1_ps(LC__EXP_LO), x));
    k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LC__LOG2E)),
                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(LC__LN2_HI), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(LC__LN2_LO), r);
    p = _mm256_fmadd_ps(_mm256_set1_ps(LC__EXP_P0), r, _mm256_set1_ps(LC__EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(LC__EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(LC__EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(LC__EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(LC__EXP_P5));
    r2 = _mm256_mul_ps(r, r);
    p = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0f));
    e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_blendv_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), _mm256_set1_ps(INFINITY), ovf);
}

LC__TARGET_AVX2 static double lc__exp_sum_avx2(float *y, const float *x, float sgn, float sub,
                                               int n) {
    __m256 vs = _mm256_set1_ps(sgn), vb = _mm256_set1_ps(sub), acc = _mm256_setzero_ps();
    float s;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = lc__exp256(_mm256_fmsub_ps(vs, _mm256_loadu_ps(x + i), vb));
        _mm256_storeu_ps(y + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    s = lc__hsum256(acc);
    for (; i < n; i++) {
        y[i] = expf(sgn * x[i] - sub);
        s += y[i];
    }
    return (double)s;
}

LC__TARGET_AVX2 static void lc__colmax_avx2(const float *x, float *mx, int rows, int w) {
    int r, c;
    LOLCATS_ASSERT(w % 8 == 0);
    for (c = 0; c + 8 <= w; c += 8) {
        __m256 m = _mm256_loadu_ps(mx + c), nan = _mm256_setzero_ps();
        for (r = 0; r < rows; r++) {
            __m256 v = _mm256_loadu_ps(x + (size_t)r * w + c);
            m = _mm256_max_ps(v, m);  // a NaN already in m stays (second operand)
            nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        }
        _mm256_storeu_ps(mx + c, _mm256_blendv_ps(m, _mm256_set1_ps(NAN), nan));
    }
}

LC__TARGET_AVX2 static void lc__colmul_avx2(float *x, const float *a, int rows, int w) {
    int r, c;
    LOLCATS_ASSERT(w % 8 == 0);
    for (r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * w;
        for (c = 0; c + 8 <= w; c += 8)
            _mm256_storeu_ps(xr + c, _mm256_mul_ps(_mm256_loadu_ps(xr + c), _mm256_loadu_ps(a + c)));
    }
}

// exp_sumd: the exps of 8 lanes converted to double before adding; inputs
// below LC__EXP_LO give 0 (the vector exp would give 2^-126), NaN passes the
// unordered compare and stays NaN.
LC__TARGET_AVX2 static double lc__exp_sumd_avx2(float *y, const float *x, float sub, int n) {
    __m256 vb = _mm256_set1_ps(sub), lo = _mm256_set1_ps(LC__EXP_LO);
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    double lanes[4], s = 0;
    int i = 0, l;
    for (; i + 8 <= n; i += 8) {
        __m256 z = _mm256_sub_ps(_mm256_loadu_ps(x + i), vb);
        __m256 e = _mm256_and_ps(lc__exp256(z), _mm256_cmp_ps(z, lo, _CMP_NLT_UQ));
        if (y) _mm256_storeu_ps(y + i, e);
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    _mm256_storeu_pd(lanes, _mm256_add_pd(a0, a1));
    for (l = 0; l < 4; l++) s += lanes[l];
    return s + lc__exp_sumd_ref(y ? y + i : NULL, x + i, sub, n - i);
}

LC__TARGET_AVX2 static void lc__colexp_avx2(float *x, const float *sub, float *sum, int rows,
                                            int w) {
    int r, c;
    LOLCATS_ASSERT(w % 8 == 0);
    for (c = 0; c + 8 <= w; c += 8) {
        __m256 vb = _mm256_loadu_ps(sub + c), acc = _mm256_loadu_ps(sum + c);
        for (r = 0; r < rows; r++) {
            float *e = x + (size_t)r * w + c;
            __m256 v = lc__exp256(_mm256_sub_ps(_mm256_loadu_ps(e), vb));
            _mm256_storeu_ps(e, v);
            acc = _mm256_add_ps(acc, v);
        }
        _mm256_storeu_ps(sum + c, acc);
    }
}

LC__TARGET_AVX512 static __m512 lc__exp512(__m512 x) {
    __m512 k, r, p, r2;
    // masked forms with an explicit source: GCC 12's C++ build warns about the
    // undefined pass-through of the plain ones
    __mmask16 ovf = _mm512_cmp_ps_mask(x, _mm512_set1_ps(LC__EXP_OVF), _CMP_GT_OQ);
    x = _mm512_mask_max_ps(x, (__mmask16)0xFFFF, _mm512_set1_ps(LC__EXP_LO), x);
    x = _mm512_mask_min_ps(x, (__mmask16)0xFFFF, _mm512_set1_ps(LC__EXP_HI), x);
    k = _mm512_mul_ps(x, _mm512_set1_ps(LC__LOG2E));
    k = _mm512_mask_roundscale_ps(k, (__mmask16)0xFFFF, k,
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(LC__LN2_HI), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(LC__LN2_LO), r);
    p = _mm512_fmadd_ps(_mm512_set1_ps(LC__EXP_P0), r, _mm512_set1_ps(LC__EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(LC__EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(LC__EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(LC__EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(LC__EXP_P5));
    r2 = _mm512_mul_ps(r, r);
    p = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), _mm512_set1_ps(1.0f));
    p = _mm512_mask_scalef_ps(p, (__mmask16)0xFFFF, p, k);
    return _mm512_mask_mov_ps(p, ovf, _mm512_set1_ps(INFINITY));
}

LC__TARGET_AVX512 static double lc__exp_sum_avx512(float *y, const float *x, float sgn,
                                                   float sub, int n) {
    __m512 vs = _mm512_set1_ps(sgn), vb = _mm512_set1_ps(sub), acc = _mm512_setzero_ps();
    float lanes[16], s = 0;
    int i = 0, l;
    for (; i + 16 <= n; i += 16) {
        __m512 e = lc__exp512(_mm512_fmsub_ps(vs, _mm512_loadu_ps(x + i), vb));
        _mm512_storeu_ps(y + i, e);
        acc = _mm512_add_ps(acc, e);
    }
    if (i < n) {  // masked tail
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);
        __m512 e = lc__exp512(_mm512_fmsub_ps(vs, _mm512_maskz_loadu_ps(k, x + i), vb));
        _mm512_mask_storeu_ps(y + i, k, e);
        acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(k, e));
    }
    _mm512_storeu_ps(lanes, acc);
    for (l = 0; l < 16; l++) s += lanes[l];
    return (double)s;
}

// exp_sumd as lc__exp_sumd_avx2's, 16 lanes, the tail masked.
LC__TARGET_AVX512 static double lc__exp_sumd_avx512(float *y, const float *x, float sub, int n) {
    __m512 vb = _mm512_set1_ps(sub), lo = _mm512_set1_ps(LC__EXP_LO);
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    double lanes[8], s = 0;
    int i, l;
    for (i = 0; i < n; i += 16) {
        __mmask16 k = (__mmask16)(n - i >= 16 ? 0xFFFFu : (1u << (n - i)) - 1u);
        __m512 z = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vb);
        __m512 e = _mm512_maskz_mov_ps(_mm512_mask_cmp_ps_mask(k, z, lo, _CMP_NLT_UQ), lc__exp512(z));
        if (y) _mm512_mask_storeu_ps(y + i, k, e);
        a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    _mm512_storeu_pd(lanes, _mm512_add_pd(a0, a1));
    for (l = 0; l < 8; l++) s += lanes[l];
    return s;
}

LC__TARGET_AVX512 static void lc__colmax_avx512(const float *x, float *mx, int rows, int w) {
    int r, c;
    LOLCATS_ASSERT(w % 16 == 0);
    for (c = 0; c + 16 <= w; c += 16) {
        __m512 m = _mm512_loadu_ps(mx + c);
        __mmask16 nan = 0;
        for (r = 0; r < rows; r++) {
            __m512 v = _mm512_loadu_ps(x + (size_t)r * w + c);
            m = _mm512_max_ps(v, m);  // a NaN already in m stays (second operand)
            nan = (__mmask16)(nan | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q));
        }
        _mm512_storeu_ps(mx + c, _mm512_mask_mov_ps(m, nan, _mm512_set1_ps(NAN)));
    }
}

LC__TARGET_AVX512 static void lc__colmul_avx512(float *x, const float *a, int rows, int w) {
    int r, c;
    LOLCATS_ASSERT(w % 16 == 0);
    for (r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * w;
        for (c = 0; c + 16 <= w; c += 16)
            _mm512_storeu_ps(xr + c, _mm512_mul_ps(_mm512_loadu_ps(xr + c), _mm512_loadu_ps(a + c)));
    }
}

LC__TARGET_AVX512 static void lc__colexp_avx512(float *x, const float *sub, float *sum, int rows,
                                                int w) {
    int r, c;
    LOLCATS_ASSERT(w % 16 == 0);
    for (c = 0; c + 16 <= w; c += 16) {
        __m512 vb = _mm512_loadu_ps(sub + c), acc = _mm512_loadu_ps(sum + c);
        for (r = 0; r < rows; r++) {
            float *e = x + (size_t)r * w + c;
            __m512 v = lc__exp512(_mm512_sub_ps(_mm512_loadu_ps(e), vb));
            _mm512_storeu_ps(e, v);
            acc = _mm512_add_ps(acc, v);
        }
        _mm512_storeu_ps(sum + c, acc);
    }
}

// Across the 16 lanes, the result in every lane (op: max, min or add).
#define LC__HRED512(op, v)                                                           \
    v = _mm512_##op##_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));    \
    v = _mm512_##op##_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));    \
    v = _mm512_##op##_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2)));         \
    v = _mm512_##op##_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));

static __mmask16 lc__tail16(int n) { return (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1u); }
// Whole vectors by plain loads and stores (a masked store is not forwarded to
// the load after it, and is slow on some cores); the masked forms for a tail.
LC__TARGET_AVX512 static __m512 lc__ld512(__mmask16 k, const float *p) {
    return k == 0xFFFF ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(k, p);
}
LC__TARGET_AVX512 static void lc__st512(__mmask16 k, float *p, __m512 v) {
    if (k == 0xFFFF)
        _mm512_storeu_ps(p, v);
    else
        _mm512_mask_storeu_ps(p, k, v);
}

LC__TARGET_AVX512 static void lc__smx2_avx512(float *out, const float *z, int f, int two,
                                              float lo) {
    __m512 mx = _mm512_set1_ps(-INFINITY), mn = _mm512_set1_ps(INFINITY);
    __m512 s1 = _mm512_setzero_ps(), s2 = s1, vlo = _mm512_set1_ps(lo);
    __mmask16 nan = 0;
    int i;
    for (i = 0; i < f; i += 16) {
        __mmask16 k = lc__tail16(f - i);
        __m512 v = lc__ld512(k, z + i);
        mx = _mm512_mask_max_ps(mx, k, mx, v);
        mn = _mm512_mask_min_ps(mn, k, mn, v);
        nan = (__mmask16)(nan | _mm512_mask_cmp_ps_mask(k, v, v, _CMP_UNORD_Q));
    }
    LC__HRED512(max, mx)
    LC__HRED512(min, mn)
    if (nan) mx = mn = _mm512_set1_ps(NAN);  // as lc__max_ref
    for (i = 0; i < f; i += 16) {
        __mmask16 k = lc__tail16(f - i);
        __m512 v = lc__ld512(k, z + i), e = lc__exp512(_mm512_sub_ps(v, mx));
        lc__st512(k, out + i, e);
        s1 = _mm512_mask_add_ps(s1, k, s1, e);
        if (two) {
            e = lc__exp512(_mm512_sub_ps(mn, v));
            lc__st512(k, out + f + i, e);
            s2 = _mm512_mask_add_ps(s2, k, s2, e);
        }
    }
    LC__HRED512(add, s1)
    LC__HRED512(add, s2)
    s1 = _mm512_div_ps(_mm512_set1_ps(1.0f), s1);
    s2 = two ? _mm512_div_ps(_mm512_set1_ps(1.0f), s2) : s2;
    for (i = 0; i < f; i += 16) {
        __mmask16 k = lc__tail16(f - i);
        __m512 v = lc__ld512(k, out + i);
        lc__st512(k, out + i, _mm512_max_ps(vlo, _mm512_mul_ps(v, s1)));  // NaN stays
        if (two) {
            v = lc__ld512(k, out + f + i);
            lc__st512(k, out + f + i, _mm512_max_ps(vlo, _mm512_mul_ps(v, s2)));
        }
    }
}

LC__TARGET_AVX512 static void lc__smx2_bwd_avx512(float *dz, const float *dphi, const float *out,
                                                  int f, int two, float eps) {
    __m512 s1 = _mm512_setzero_ps(), s2 = s1, ve = _mm512_set1_ps(eps);
    int i, h;
    for (h = 0; h <= two; h++) {  // s = out . g over each half
        __m512 acc = _mm512_setzero_ps();
        for (i = 0; i < f; i += 16) {
            __mmask16 k = lc__tail16(f - i);
            __m512 o = lc__ld512(k, out + h * f + i);
            __mmask16 g = _mm512_mask_cmp_ps_mask(k, o, ve, _CMP_GE_OQ);
            acc = _mm512_fmadd_ps(o, _mm512_maskz_mov_ps(g, lc__ld512(k, dphi + h * f + i)), acc);
        }
        LC__HRED512(add, acc)
        if (h) s2 = acc; else s1 = acc;
    }
    for (i = 0; i < f; i += 16) {
        __mmask16 k = lc__tail16(f - i);
        __m512 o = lc__ld512(k, out + i);
        __mmask16 g = _mm512_mask_cmp_ps_mask(k, o, ve, _CMP_GE_OQ);
        __m512 d = _mm512_mul_ps(o, _mm512_sub_ps(_mm512_maskz_mov_ps(g, lc__ld512(k, dphi + i)), s1));
        if (two) {
            o = lc__ld512(k, out + f + i);
            g = _mm512_mask_cmp_ps_mask(k, o, ve, _CMP_GE_OQ);
            d = _mm512_fnmadd_ps(o, _mm512_sub_ps(_mm512_maskz_mov_ps(g, lc__ld512(k, dphi + f + i)), s2), d);
        }
        lc__st512(k, dz + i, d);
    }
}
#undef LC__HRED512
#endif

#if defined(LC__NEON)
static float lc__dot_neon(const float *a, const float *b, int n) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    float s;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static void lc__axpy_neon(float *y, float a, const float *x, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++) y[i] += a * x[i];
}

static void lc__colmax_neon(const float *x, float *mx, int rows, int w) {
    int r, c;
    LOLCATS_ASSERT(w % 4 == 0);
    for (c = 0; c + 4 <= w; c += 4) {
        float32x4_t m = vld1q_f32(mx + c);  // vmaxq (FMAX) returns NaN if either is NaN
        for (r = 0; r < rows; r++) m = vmaxq_f32(vld1q_f32(x + (size_t)r * w + c), m);
        vst1q_f32(mx + c, m);
    }
}

static void lc__scal_neon(float *x, float a, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), a));
    for (; i < n; i++) x[i] *= a;
}

static void lc__colmul_neon(float *x, const float *a, int rows, int w) {
    int r, c;
    LOLCATS_ASSERT(w % 4 == 0);
    for (r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * w;
        for (c = 0; c + 4 <= w; c += 4) vst1q_f32(xr + c, vmulq_f32(vld1q_f32(xr + c), vld1q_f32(a + c)));
    }
}

static float lc__max_neon(const float *x, float sgn, int n) {
    float32x4_t m0 = vdupq_n_f32(-INFINITY);
    float m;
    int i = 0;
    for (; i + 4 <= n; i += 4) m0 = vmaxq_f32(m0, vmulq_n_f32(vld1q_f32(x + i), sgn));
    m = vmaxvq_f32(m0);  // FMAX / FMAXV: NaN if any lane is NaN
    for (; i < n; i++) m = sgn * x[i] > m || x[i] != x[i] ? sgn * x[i] : m;
    return m;
}

// The vector exp of >>simd, 4 lanes: as lc__exp256 step for step (FMAX/FMIN
// give NaN when either operand is, so the clamps keep NaN on their own).
static float32x4_t lc__exp_neon(float32x4_t x) {
    uint32x4_t ovf = vcgtq_f32(x, vdupq_n_f32(LC__EXP_OVF));
    float32x4_t k, r, p;
    int32x4_t e;
    x = vminq_f32(vdupq_n_f32(LC__EXP_HI), vmaxq_f32(vdupq_n_f32(LC__EXP_LO), x));
    k = vrndnq_f32(vmulq_n_f32(x, LC__LOG2E));
    r = vfmsq_f32(x, k, vdupq_n_f32(LC__LN2_HI));
    r = vfmsq_f32(r, k, vdupq_n_f32(LC__LN2_LO));
    p = vfmaq_f32(vdupq_n_f32(LC__EXP_P1), vdupq_n_f32(LC__EXP_P0), r);
    p = vfmaq_f32(vdupq_n_f32(LC__EXP_P2), p, r);
    p = vfmaq_f32(vdupq_n_f32(LC__EXP_P3), p, r);
    p = vfmaq_f32(vdupq_n_f32(LC__EXP_P4), p, r);
    p = vfmaq_f32(vdupq_n_f32(LC__EXP_P5), p, r);
    p = vaddq_f32(vfmaq_f32(r, p, vmulq_f32(r, r)), vdupq_n_f32(1.0f));
    e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(k), vdupq_n_s32(127)), 23);
    return vbslq_f32(ovf, vdupq_n_f32(INFINITY), vmulq_f32(p, vreinterpretq_f32_s32(e)));
}

// exp_sum and colexp as lc__exp_sum_avx2 / lc__colexp_avx2, 4 lanes: float
// sums in the vector, the scalar tail through expf.
static double lc__exp_sum_neon(float *y, const float *x, float sgn, float sub, int n) {
    float32x4_t vb = vdupq_n_f32(sub), acc = vdupq_n_f32(0);
    float s;
    int i = 0;
    for (; i + 4 <= n; i += 4) {  // sgn x - sub in one rounding, as _mm256_fmsub_ps
        float32x4_t e = lc__exp_neon(vfmaq_f32(vnegq_f32(vb), vld1q_f32(x + i), vdupq_n_f32(sgn)));
        vst1q_f32(y + i, e);
        acc = vaddq_f32(acc, e);
    }
    s = vaddvq_f32(acc);
    for (; i < n; i++) {
        y[i] = expf(sgn * x[i] - sub);
        s += y[i];
    }
    return (double)s;
}

static void lc__colexp_neon(float *x, const float *sub, float *sum, int rows, int w) {
    int r, c;
    LOLCATS_ASSERT(w % 4 == 0);
    for (c = 0; c + 4 <= w; c += 4) {
        float32x4_t vb = vld1q_f32(sub + c), acc = vld1q_f32(sum + c);
        for (r = 0; r < rows; r++) {
            float *e = x + (size_t)r * w + c;
            float32x4_t v = lc__exp_neon(vsubq_f32(vld1q_f32(e), vb));
            vst1q_f32(e, v);
            acc = vaddq_f32(acc, v);
        }
        vst1q_f32(sum + c, acc);
    }
}

// exp_sumd as lc__exp_sumd_avx2's, 4 lanes: inputs below LC__EXP_LO give 0
// (not less than it: NaN stays), each exp widened to double before adding.
static double lc__exp_sumd_neon(float *y, const float *x, float sub, int n) {
    float32x4_t vb = vdupq_n_f32(sub), lo = vdupq_n_f32(LC__EXP_LO);
    float64x2_t a0 = vdupq_n_f64(0), a1 = a0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t z = vsubq_f32(vld1q_f32(x + i), vb);
        uint32x4_t keep = vmvnq_u32(vcltq_f32(z, lo));
        float32x4_t e = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(lc__exp_neon(z)), keep));
        if (y) vst1q_f32(y + i, e);
        a0 = vaddq_f64(a0, vcvt_f64_f32(vget_low_f32(e)));
        a1 = vaddq_f64(a1, vcvt_high_f64_f32(e));
    }
    a0 = vaddq_f64(a0, a1);
    return vgetq_lane_f64(a0, 0) + vgetq_lane_f64(a0, 1) +
           lc__exp_sumd_ref(y ? y + i : NULL, x + i, sub, n - i);
}
#endif

static const lc__prims lc__prims_ref = {lc__dot_ref,     lc__axpy_ref,   lc__scal_ref,
                                        lc__exp_sum_ref, lc__max_ref,    lc__colmax_ref,
                                        lc__colexp_ref,  lc__colmul_ref, NULL,
                                        NULL,            lc__exp_sumd_ref};
#if defined(LC__X86)
static const lc__prims lc__prims_avx2 = {lc__dot_avx2,     lc__axpy_avx2,   lc__scal_avx2,
                                         lc__exp_sum_avx2, lc__max_avx2,    lc__colmax_avx2,
                                         lc__colexp_avx2,  lc__colmul_avx2, NULL,
                                         NULL,             lc__exp_sumd_avx2};
static const lc__prims lc__prims_avx512 = {lc__dot_avx512,     lc__axpy_avx512,   lc__scal_avx512,
                                           lc__exp_sum_avx512, lc__max_avx512,    lc__colmax_avx512,
                                           lc__colexp_avx512,  lc__colmul_avx512, lc__smx2_avx512,
                                           lc__smx2_bwd_avx512, lc__exp_sumd_avx512};
#endif
#if defined(LC__NEON)
static const lc__prims lc__prims_neon = {lc__dot_neon,     lc__axpy_neon,   lc__scal_neon,
                                         lc__exp_sum_neon, lc__max_neon,    lc__colmax_neon,
                                         lc__colexp_neon,  lc__colmul_neon, NULL,
                                         NULL,            lc__exp_sumd_neon};
#endif


// >>gemm
// GEMM, the classic loop nest of packed GEMMs (Goto & van de Geijn, BLIS):
//   for jc in N by NCH:  for ic in M by MCH:  for pc in K by KC:
//     pack op(A)[ic.., pc..] into MR-row panels (kc,MR) and op(B)[pc.., jc..]
//     into NR-column panels (kc,NR), zero-padded;
//     for each block of C (MC rows x NCI columns), in parallel:
//       for each A panel (stays in L1): for each B panel (streams from L2):
//         micro-kernel: acc (MR,NR) = sum_k a_k b_k^T in registers, then
//         C = alpha acc + (pc == 0 ? beta : 1) C.
// Each C element sums its K blocks in the same order whatever the thread
// count. Cost 2 M N K flops; packing O(M K (N/NCH) + K N (M/MCH)).

#define LC__GEMM_KC 256
#define LC__GEMM_TILE_MAX 512       // largest MR * NR

typedef void (*lc__ukr_fn)(int kc, const float *pa, const float *pb, size_t ldb, float *c,
                           size_t ldc, float alpha, float bc);
typedef void (*lc__widen_fn)(float *dst, const void *src, lc_dtype dt, size_t off, int n);

// dst[c ldd + r] = src[r lds + c] for r < rows, c < cols (a transpose)
typedef void (*lc__tpose_fn)(float *dst, size_t ldd, const float *src, size_t lds, int rows,
                             int cols);

typedef struct lc__gemm_kind {
    int mr, nr, mc, nci, mch, nch;  // register tile, cache blocks, outer chunks
    lc__ukr_fn ukr;
    lc__widen_fn widen;
    lc__tpose_fn tpose;
} lc__gemm_kind;

static void lc__tpose_ref(float *dst, size_t ldd, const float *src, size_t lds, int rows,
                          int cols) {
    int r, c;
    for (r = 0; r < rows; r++)
        for (c = 0; c < cols; c++) dst[(size_t)c * ldd + r] = src[(size_t)r * lds + c];
}

// One element of a weight operand as float32.
static float lc__wload(const void *src, lc_dtype dt, size_t i) {
    if (dt == LOLCATS_DTYPE_BF16) return lc_bf16_to_f32(((const uint16_t *)src)[i]);
    if (dt == LOLCATS_DTYPE_F16) return lc_f16_to_f32(((const uint16_t *)src)[i]);
    return ((const float *)src)[i];
}

// dst[0..n) = float32 of src[off .. off+n)
static void lc__widen_ref(float *dst, const void *src, lc_dtype dt, size_t off, int n) {
    int i;
    if (dt == LOLCATS_DTYPE_F32) {
        memcpy(dst, (const float *)src + off, sizeof(float) * (size_t)n);
    } else if (dt == LOLCATS_DTYPE_BF16) {
        const uint16_t *s = (const uint16_t *)src + off;
        for (i = 0; i < n; i++) {
            uint32_t u = (uint32_t)s[i] << 16;
            memcpy(dst + i, &u, 4);
        }
    } else {
        for (i = 0; i < n; i++) dst[i] = lc__wload(src, dt, off + (size_t)i);
    }
}

// The definition: C = alpha op(A) op(B) + beta C, sums in double.
static void lc__gemm_ref(float *C, const float *A, const void *B, lc_dtype bt, int M, int N,
                         int K, int ta, int tb, float alpha, float beta, size_t ldc, size_t lda,
                         size_t ldb) {
    int i;
    LC__OMP_FOR
    for (i = 0; i < M; i++) {
        int j, k;
        for (j = 0; j < N; j++) {
            double s = 0;
            float *c_ij = C + (size_t)i * ldc + j;
            for (k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = lc__wload(B, bt, tb ? (size_t)j * ldb + k : (size_t)k * ldb + j);
                s += (double)a * (double)b;
            }
            *c_ij = beta == 0.0f ? alpha * (float)s : alpha * (float)s + beta * *c_ij;
        }
    }
}

// One MR-row panel of op(A): dst[k*MR + r] = op(A)(i0 + r, p0 + k), rows >= `rows` zero.
static void lc__pack_a(lc__tpose_fn tpose, float *dst, const float *A, size_t lda, int ta, int i0,
                       int rows, int p0, int kc, int MR) {
    int k, r;
    if (ta && rows == MR && (MR == 14 || MR == 8 || MR == 6)) {  // fixed-size copies
        const float *s = A + (size_t)p0 * lda + i0;
        for (k = 0; k < kc; k++, s += lda, dst += MR) {
            if (MR == 14)
                memcpy(dst, s, 14 * sizeof(float));
            else if (MR == 8)
                memcpy(dst, s, 8 * sizeof(float));
            else
                memcpy(dst, s, 6 * sizeof(float));
        }
    } else if (ta) {  // op(A)(i,k) = A[k lda + i]: contiguous in i
        for (k = 0; k < kc; k++) {
            const float *s = A + (size_t)(p0 + k) * lda + i0;
            float *d = dst + (size_t)k * MR;
            for (r = 0; r < rows; r++) d[r] = s[r];
            for (; r < MR; r++) d[r] = 0;
        }
    } else {
        tpose(dst, (size_t)MR, A + (size_t)i0 * lda + p0, lda, rows, kc);
        for (r = rows; r < MR; r++)
            for (k = 0; k < kc; k++) dst[(size_t)k * MR + r] = 0;
    }
}

// One NR-column panel of op(B): dst[k*NR + n] = op(B)(p0 + k, j0 + n), widened.
// op(B) = B^T (tb, weights (out,in)) in bf16/f16: blocks of LC__PACK_BN rows x
// LC__PACK_BK columns are widened row by row into a small buffer, then
// transposed into the panel, so B is read and the panel written in runs (not
// one scattered float per element); the same floats as element by element.
#define LC__PACK_BN 16
#define LC__PACK_BK 64
static void lc__pack_b(const lc__gemm_kind *kd, float *dst, const void *B, lc_dtype bt,
                       size_t ldb, int tb, int j0, int cols, int p0, int kc) {
    int NR = kd->nr, k, n, k0;
    if (tb && bt == LOLCATS_DTYPE_F32) {  // op(B)(k,n) = B[n ldb + k]: a transpose
        kd->tpose(dst, (size_t)NR, (const float *)B + (size_t)j0 * ldb + p0, ldb, cols, kc);
    } else if (tb) {  // widen a block of rows of B, transpose it into the panel
        float tmp[LC__PACK_BN * LC__PACK_BK];
        for (n = 0; n < cols; n += LC__PACK_BN) {
            int nb = cols - n < LC__PACK_BN ? cols - n : LC__PACK_BN, r;
            for (k0 = 0; k0 < kc; k0 += LC__PACK_BK) {
                int kb = kc - k0 < LC__PACK_BK ? kc - k0 : LC__PACK_BK;
                for (r = 0; r < nb; r++)
                    kd->widen(tmp + (size_t)r * LC__PACK_BK, B, bt, (size_t)(j0 + n + r) * ldb + p0 + k0, kb);
                kd->tpose(dst + (size_t)k0 * NR + n, (size_t)NR, tmp, LC__PACK_BK, nb, kb);
            }
        }
    } else {
        for (k = 0; k < kc; k++)
            kd->widen(dst + (size_t)k * NR, B, bt, (size_t)(p0 + k) * ldb + j0, cols);
    }
    if (cols < NR)  // the panel's columns past op(B)'s: zero, row by row
        for (k = 0; k < kc; k++) memset(dst + (size_t)k * NR + cols, 0, sizeof(float) * (size_t)(NR - cols));
}

#if defined(LC__X86)
// AVX-512 micro-kernel, 14 rows x 32 columns: 28 accumulators, 2 B vectors,
// A broadcast from memory.
#define LC__K512(i)                                   \
    a = _mm512_set1_ps(pa[i]);                        \
    c##i##a = _mm512_fmadd_ps(a, b0, c##i##a);        \
    c##i##b = _mm512_fmadd_ps(a, b1, c##i##b);
#define LC__S512(i)                                                                     \
    if (bc == 0.0f) {                                                                   \
        _mm512_storeu_ps(c + (size_t)i * ldc, _mm512_mul_ps(va, c##i##a));              \
        _mm512_storeu_ps(c + (size_t)i * ldc + 16, _mm512_mul_ps(va, c##i##b));         \
    } else {                                                                            \
        _mm512_storeu_ps(c + (size_t)i * ldc,                                           \
                         _mm512_fmadd_ps(va, c##i##a,                                   \
                                         _mm512_mul_ps(vb, _mm512_loadu_ps(c + (size_t)i * ldc)))); \
        _mm512_storeu_ps(c + (size_t)i * ldc + 16,                                      \
                         _mm512_fmadd_ps(va, c##i##b,                                   \
                                         _mm512_mul_ps(vb, _mm512_loadu_ps(c + (size_t)i * ldc + 16)))); \
    }
LC__TARGET_AVX512 static void lc__ukr_avx512(int kc, const float *pa, const float *pb,
                                             size_t ldb, float *c, size_t ldc, float alpha,
                                             float bc) {
    __m512 c0a = _mm512_setzero_ps(), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a;
    __m512 c3a = c0a, c3b = c0a, c4a = c0a, c4b = c0a, c5a = c0a, c5b = c0a, c6a = c0a;
    __m512 c6b = c0a, c7a = c0a, c7b = c0a, c8a = c0a, c8b = c0a, c9a = c0a, c9b = c0a;
    __m512 c10a = c0a, c10b = c0a, c11a = c0a, c11b = c0a, c12a = c0a, c12b = c0a;
    __m512 c13a = c0a, c13b = c0a, va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(bc);
    int k;
    for (k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(pb), b1 = _mm512_loadu_ps(pb + 16), a;
        // the first 28 steps fetch the C tile (14 rows x 2 lines) that the
        // stores below need: a GEMM's C sits in L3 or DRAM, and a miss per
        // row there costs as much as a tenth of the tile's FMAs
        if (k < 28) _mm_prefetch((const char *)(c + (size_t)(k >> 1) * ldc + (k & 1) * 16), _MM_HINT_T0);
        LC__K512(0) LC__K512(1) LC__K512(2) LC__K512(3) LC__K512(4) LC__K512(5) LC__K512(6)
        LC__K512(7) LC__K512(8) LC__K512(9) LC__K512(10) LC__K512(11) LC__K512(12) LC__K512(13)
        pa += 14;
        pb += ldb;
    }
    LC__S512(0) LC__S512(1) LC__S512(2) LC__S512(3) LC__S512(4) LC__S512(5) LC__S512(6)
    LC__S512(7) LC__S512(8) LC__S512(9) LC__S512(10) LC__S512(11) LC__S512(12) LC__S512(13)
}

// The attention kernels' AVX-512 micro-kernel, 8 rows x 32 columns: 16
// accumulators. Their operands sit in L1, where it runs as fast per FMA as
// the 14-row one, and 8 divides the head widths and 64-row blocks that 14
// leaves a ragged panel of (D = 128: 140 rows).
LC__TARGET_AVX512 static void lc__ukr8_avx512(int kc, const float *pa, const float *pb,
                                              size_t ldb, float *c, size_t ldc, float alpha,
                                              float bc) {
    __m512 c0a = _mm512_setzero_ps(), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a;
    __m512 c3a = c0a, c3b = c0a, c4a = c0a, c4b = c0a, c5a = c0a, c5b = c0a, c6a = c0a;
    __m512 c6b = c0a, c7a = c0a, c7b = c0a, va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(bc);
    int k;
    for (k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(pb), b1 = _mm512_loadu_ps(pb + 16), a;
        LC__K512(0) LC__K512(1) LC__K512(2) LC__K512(3) LC__K512(4) LC__K512(5) LC__K512(6)
        LC__K512(7)
        pa += 8;
        pb += ldb;
    }
    LC__S512(0) LC__S512(1) LC__S512(2) LC__S512(3) LC__S512(4) LC__S512(5) LC__S512(6)
    LC__S512(7)
}
#undef LC__K512
#undef LC__S512

// AVX2 micro-kernel, 6 rows x 16 columns: 12 accumulators.
#define LC__K256(i)                                   \
    a = _mm256_broadcast_ss(pa + i);                  \
    c##i##a = _mm256_fmadd_ps(a, b0, c##i##a);        \
    c##i##b = _mm256_fmadd_ps(a, b1, c##i##b);
#define LC__S256(i)                                                                     \
    if (bc == 0.0f) {                                                                   \
        _mm256_storeu_ps(c + (size_t)i * ldc, _mm256_mul_ps(va, c##i##a));              \
        _mm256_storeu_ps(c + (size_t)i * ldc + 8, _mm256_mul_ps(va, c##i##b));          \
    } else {                                                                            \
        _mm256_storeu_ps(c + (size_t)i * ldc,                                           \
                         _mm256_fmadd_ps(va, c##i##a,                                   \
                                         _mm256_mul_ps(vb, _mm256_loadu_ps(c + (size_t)i * ldc)))); \
        _mm256_storeu_ps(c + (size_t)i * ldc + 8,                                       \
                         _mm256_fmadd_ps(va, c##i##b,                                   \
                                         _mm256_mul_ps(vb, _mm256_loadu_ps(c + (size_t)i * ldc + 8)))); \
    }
LC__TARGET_AVX2 static void lc__ukr_avx2(int kc, const float *pa, const float *pb, size_t ldb,
                                         float *c, size_t ldc, float alpha, float bc) {
    __m256 c0a = _mm256_setzero_ps(), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a;
    __m256 c3a = c0a, c3b = c0a, c4a = c0a, c4b = c0a, c5a = c0a, c5b = c0a;
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(bc);
    int k;
    for (k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(pb), b1 = _mm256_loadu_ps(pb + 8), a;
        if (k < 12) _mm_prefetch((const char *)(c + (size_t)(k >> 1) * ldc + (k & 1) * 8), _MM_HINT_T0);
        LC__K256(0) LC__K256(1) LC__K256(2) LC__K256(3) LC__K256(4) LC__K256(5)
        pa += 6;
        pb += ldb;
    }
    LC__S256(0) LC__S256(1) LC__S256(2) LC__S256(3) LC__S256(4) LC__S256(5)
}
#undef LC__K256
#undef LC__S256

// Widening in registers: bf16 is the top half of a float32; f16 through
// vcvtph2ps (AVX-512F; F16C, which every AVX2+FMA CPU has, for AVX2).
LC__TARGET_AVX512 static void lc__widen_avx512(float *dst, const void *src, lc_dtype dt,
                                               size_t off, int n) {
    int i = 0;
    if (dt == LOLCATS_DTYPE_BF16) {
        const uint16_t *s = (const uint16_t *)src + off;
        for (; i + 16 <= n; i += 16) {
            __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + i)));
            _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(u, 16)));
        }
    } else if (dt == LOLCATS_DTYPE_F16) {
        const uint16_t *s = (const uint16_t *)src + off;
        for (; i + 16 <= n; i += 16)
            _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + i))));
    }
    if (i < n) lc__widen_ref(dst + i, src, dt, off + (size_t)i, n - i);
}

__attribute__((target("avx2,fma,f16c"))) static void lc__widen_avx2(float *dst, const void *src,
                                                                   lc_dtype dt, size_t off,
                                                                   int n) {
    int i = 0;
    if (dt == LOLCATS_DTYPE_BF16) {
        const uint16_t *s = (const uint16_t *)src + off;
        for (; i + 8 <= n; i += 8) {
            __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + i)));
            _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(u, 16)));
        }
    } else if (dt == LOLCATS_DTYPE_F16) {
        const uint16_t *s = (const uint16_t *)src + off;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
    }
    if (i < n) lc__widen_ref(dst + i, src, dt, off + (size_t)i, n - i);
}

#if defined(__GNUC__) && !defined(__clang__)
#define LC__UNROLL16 _Pragma("GCC unroll 16")  // keeps the block in registers
#else
#define LC__UNROLL16
#endif

// Transposes by 16 x 16 (AVX-512) or 8 x 8 (AVX2) blocks in registers:
// unpack pairs of rows, then pairs of pairs, then gather the 128-bit lanes.
LC__TARGET_AVX512 static void lc__tpose_avx512(float *dst, size_t ldd, const float *src,
                                               size_t lds, int rows, int cols) {
    int r0, c0, i;
    for (r0 = 0; r0 < rows; r0 += 16)
        for (c0 = 0; c0 < cols; c0 += 16) {
            int nr = rows - r0 < 16 ? rows - r0 : 16, nc = cols - c0 < 16 ? cols - c0 : 16;
            __mmask16 kc = (__mmask16)((1u << nc) - 1u), kr = (__mmask16)((1u << nr) - 1u);
            __m512 r[16], t[16];
            LC__UNROLL16
            for (i = 0; i < 16; i++)
                r[i] = i < nr ? lc__ld512(kc, src + (size_t)(r0 + i) * lds + c0)
                              : _mm512_setzero_ps();
            LC__UNROLL16
            for (i = 0; i < 16; i += 2) {
                t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
            }
            LC__UNROLL16
            for (i = 0; i < 16; i += 4) {
                __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
                __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
                r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
                r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
                r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
                r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
            }
            // r[4g + j], 128-bit lane l: column 4 l + j of rows 4g .. 4g + 3
            LC__UNROLL16
            for (i = 0; i < 4; i++) {
                __m512 v0 = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x44);
                __m512 v1 = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xEE);
                __m512 w0 = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x44);
                __m512 w1 = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xEE);
                t[i] = _mm512_shuffle_f32x4(v0, w0, 0x88);
                t[4 + i] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
                t[8 + i] = _mm512_shuffle_f32x4(v1, w1, 0x88);
                t[12 + i] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
            }
            LC__UNROLL16
            for (i = 0; i < 16; i++)
                if (i < nc) lc__st512(kr, dst + (size_t)(c0 + i) * ldd + r0, t[i]);
        }
}

LC__TARGET_AVX2 static void lc__tpose_avx2(float *dst, size_t ldd, const float *src, size_t lds,
                                           int rows, int cols) {
    int r0, c0, i;
    for (r0 = 0; r0 + 8 <= rows; r0 += 8)
        for (c0 = 0; c0 + 8 <= cols; c0 += 8) {
            __m256 r[8], t[8];
            LC__UNROLL16
            for (i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + (size_t)(r0 + i) * lds + c0);
            LC__UNROLL16
            for (i = 0; i < 8; i += 2) {
                t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
            }
            LC__UNROLL16
            for (i = 0; i < 8; i += 4) {
                __m256d a = _mm256_castps_pd(t[i]), b = _mm256_castps_pd(t[i + 1]);
                __m256d c = _mm256_castps_pd(t[i + 2]), d = _mm256_castps_pd(t[i + 3]);
                r[i] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, c));
                r[i + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, c));
                r[i + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(b, d));
                r[i + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(b, d));
            }
            LC__UNROLL16
            for (i = 0; i < 4; i++) {
                _mm256_storeu_ps(dst + (size_t)(c0 + i) * ldd + r0,
                                 _mm256_permute2f128_ps(r[i], r[4 + i], 0x20));
                _mm256_storeu_ps(dst + (size_t)(c0 + 4 + i) * ldd + r0,
                                 _mm256_permute2f128_ps(r[i], r[4 + i], 0x31));
            }
        }
    // the edges: rows past the last whole 8, then columns past it
    if (r0 < rows) lc__tpose_ref(dst + r0, ldd, src + (size_t)r0 * lds, lds, rows - r0, cols);
    if (cols % 8 && r0 > 0)
        lc__tpose_ref(dst + (size_t)(cols / 8 * 8) * ldd, ldd, src + cols / 8 * 8, lds, r0,
                      cols % 8);
}
#endif

#if defined(LC__NEON)
// NEON micro-kernel, 8 rows x 12 columns: 24 accumulators, A by lane.
#define LC__KN(i, av, l)                                          \
    c##i##a = vfmaq_laneq_f32(c##i##a, b0, av, l);                \
    c##i##b = vfmaq_laneq_f32(c##i##b, b1, av, l);                \
    c##i##c = vfmaq_laneq_f32(c##i##c, b2, av, l);
#define LC__SN1(p, acc)                                                             \
    vst1q_f32(p, bc == 0.0f ? vmulq_f32(va, acc)                                    \
                            : vfmaq_f32(vmulq_f32(vb, vld1q_f32(p)), va, acc));
#define LC__SN(i)                                    \
    LC__SN1(c + (size_t)i * ldc, c##i##a)            \
    LC__SN1(c + (size_t)i * ldc + 4, c##i##b)        \
    LC__SN1(c + (size_t)i * ldc + 8, c##i##c)
static void lc__ukr_neon(int kc, const float *pa, const float *pb, size_t ldb, float *c,
                         size_t ldc, float alpha, float bc) {
    float32x4_t c0a = vdupq_n_f32(0), c0b = c0a, c0c = c0a, c1a = c0a, c1b = c0a, c1c = c0a;
    float32x4_t c2a = c0a, c2b = c0a, c2c = c0a, c3a = c0a, c3b = c0a, c3c = c0a;
    float32x4_t c4a = c0a, c4b = c0a, c4c = c0a, c5a = c0a, c5b = c0a, c5c = c0a;
    float32x4_t c6a = c0a, c6b = c0a, c6c = c0a, c7a = c0a, c7b = c0a, c7c = c0a;
    float32x4_t va = vdupq_n_f32(alpha), vb = vdupq_n_f32(bc);
    int k;
    for (k = 0; k < kc; k++) {
        float32x4_t b0 = vld1q_f32(pb), b1 = vld1q_f32(pb + 4), b2 = vld1q_f32(pb + 8);
        float32x4_t a0 = vld1q_f32(pa), a1 = vld1q_f32(pa + 4);
        LC__KN(0, a0, 0) LC__KN(1, a0, 1) LC__KN(2, a0, 2) LC__KN(3, a0, 3)
        LC__KN(4, a1, 0) LC__KN(5, a1, 1) LC__KN(6, a1, 2) LC__KN(7, a1, 3)
        pa += 8;
        pb += ldb;
    }
    LC__SN(0) LC__SN(1) LC__SN(2) LC__SN(3) LC__SN(4) LC__SN(5) LC__SN(6) LC__SN(7)
}
#undef LC__KN
#undef LC__SN1
#undef LC__SN
#endif

// The register kinds of the kernel tables (>>kernels): tile mr x nr and
// cache blocks of the blocked GEMM; k512a is the 8-row AVX-512 kernel the
// packed products inside kernels use (lc__pk_for).
#if defined(LC__X86)
static const lc__gemm_kind lc__gk_avx512 = {14, 32, 14 * 10, 32 * 16, 14 * 10 * 8, 32 * 16 * 8,
                                            lc__ukr_avx512, lc__widen_avx512, lc__tpose_avx512};
static const lc__gemm_kind lc__gk_avx2 = {6, 16, 6 * 24, 16 * 32, 6 * 24 * 8, 16 * 32 * 8,
                                          lc__ukr_avx2, lc__widen_avx2, lc__tpose_avx2};
static const lc__gemm_kind lc__gk_avx512a = {8, 32, 8 * 16, 32 * 16, 8 * 16 * 8, 32 * 16 * 8,
                                             lc__ukr8_avx512, lc__widen_avx512, lc__tpose_avx512};
#endif
#if defined(LC__NEON)
static const lc__gemm_kind lc__gk_neon = {8, 12, 8 * 16, 12 * 32, 8 * 16 * 8, 12 * 32 * 8,
                                          lc__ukr_neon, lc__widen_ref, lc__tpose_ref};
#endif

// The blocked path for this context, or NULL for the scalar definition.
static const lc__gemm_kind *lc__gemm_kind_for(const lc_ctx *ctx) {
    (void)lc__widen_ref;  // used through the kinds above (none under LOLCATS_NO_SIMD)
    (void)lc__tpose_ref;
    return lc__kern_for(ctx)->gemm;
}

static size_t lc__gemm_scratch_floats(const lc__gemm_kind *kd, int M, int N, int K) {
    size_t mc = (size_t)(M < kd->mch ? M : kd->mch), nc = (size_t)(N < kd->nch ? N : kd->nch);
    size_t kc = (size_t)(K < LC__GEMM_KC ? K : LC__GEMM_KC);
    mc = (mc + (size_t)kd->mr - 1) / (size_t)kd->mr * (size_t)kd->mr;
    nc = (nc + (size_t)kd->nr - 1) / (size_t)kd->nr * (size_t)kd->nr;
    return (mc + nc) * kc;
}

LCIMPL size_t lc_gemm_scratch_size(const lc_ctx *ctx, int M, int N, int K) {
    const lc__gemm_kind *kd = lc__gemm_kind_for(ctx);
    if (!kd || M <= 0 || N <= 0 || K <= 0) return 0;
    return sizeof(float) * lc__gemm_scratch_floats(kd, M, N, K) + 64;
}

// The two kinds of task of one (jc, ic, pc) step: pack panel t (A panels
// first, then B panels), or compute block t of C.
typedef struct lc__gemm_step {
    const lc__gemm_kind *kd;
    float *C, *pa, *pb;
    const float *A;
    const void *B;
    lc_dtype bt;
    int ta, tb, ic, jc, pc, mc, nc, kc, npa, nnb;
    float alpha, bc;
    size_t ldc, lda, ldb;
} lc__gemm_step;

static void lc__gemm_pack_task(const lc__gemm_step *st, int t) {
    int MR = st->kd->mr, NR = st->kd->nr;
    if (t < st->npa) {
        int r0 = t * MR, rows = st->mc - r0 < MR ? st->mc - r0 : MR;
        lc__pack_a(st->kd->tpose, st->pa + (size_t)t * MR * st->kc, st->A, st->lda, st->ta,
                   st->ic + r0, rows, st->pc, st->kc, MR);
    } else {
        int c0 = (t - st->npa) * NR, cols = st->nc - c0 < NR ? st->nc - c0 : NR;
#if defined(__GNUC__) || defined(__clang__)
        // B^T in bf16/f16 (weights (out,in), read from memory once per pack):
        // each of a panel's rows is a run of kc elements in its own page, too
        // short for the hardware prefetchers; fetch the next panel's runs now.
        if (st->tb && st->bt != LOLCATS_DTYPE_F32 && c0 + NR < st->nc) {
            int r, n1 = st->nc - c0 - NR < NR ? st->nc - c0 - NR : NR;
            size_t k, run = (size_t)st->kc * 2;
            for (r = 0; r < n1; r++) {
                const char *row = (const char *)st->B + 2 * ((size_t)(st->jc + c0 + NR + r) * st->ldb + (size_t)st->pc);
                for (k = 0; k < run; k += 64) __builtin_prefetch(row + k, 0, 2);
            }
        }
#endif
        lc__pack_b(st->kd, st->pb + (size_t)(t - st->npa) * NR * st->kc, st->B, st->bt, st->ldb,
                   st->tb, st->jc + c0, cols, st->pc, st->kc);
    }
}

static void lc__gemm_tile_task(const lc__gemm_step *st, int t) {
    const lc__gemm_kind *kd = st->kd;
    int MR = kd->mr, NR = kd->nr, kc = st->kc, ir, jr;
    int i0 = (t / st->nnb) * kd->mc, j0 = (t % st->nnb) * kd->nci;
    int i1 = i0 + kd->mc < st->mc ? i0 + kd->mc : st->mc;
    int j1 = j0 + kd->nci < st->nc ? j0 + kd->nci : st->nc;
    float tile[LC__GEMM_TILE_MAX], alpha = st->alpha, bc = st->bc;
    // An A panel (MR x kc, 14 KiB on AVX-512) stays in L1 while the block's B
    // panels (kc x NR each) stream past it from L2: a B panel is 32 KiB there,
    // too much of L1 to hold beside the A stream. The order of the tiles
    // changes no sum, so no bit of C.
    for (ir = i0; ir < i1; ir += MR) {
        const float *pa_i = st->pa + (size_t)(ir / MR) * MR * kc;
        int rows = i1 - ir < MR ? i1 - ir : MR;
        for (jr = j0; jr < j1; jr += NR) {
            const float *pb_j = st->pb + (size_t)(jr / NR) * NR * kc;
            int cols = j1 - jr < NR ? j1 - jr : NR, r, n;
            float *c_ij = st->C + (size_t)(st->ic + ir) * st->ldc + (size_t)(st->jc + jr);
            if (rows == MR && cols == NR) {
                kd->ukr(kc, pa_i, pb_j, (size_t)NR, c_ij, st->ldc, alpha, bc);
                continue;
            }
            kd->ukr(kc, pa_i, pb_j, (size_t)NR, tile, (size_t)NR, 1.0f, 0.0f);
            for (r = 0; r < rows; r++)
                for (n = 0; n < cols; n++) {
                    float *cc = c_ij + (size_t)r * st->ldc + n;
                    float acc = tile[r * NR + n];
                    *cc = bc == 0.0f ? alpha * acc : alpha * acc + bc * *cc;
                }
        }
    }
}

// C = alpha op(A) op(B) + beta C for the packed slabs (see the loop nest
// above); par: split each step's tasks across threads.
static void lc__gemm_blocked(const lc__gemm_kind *kd, float *C, const float *A, const void *B,
                             lc_dtype bt, int M, int N, int K, int ta, int tb, float alpha,
                             float beta, size_t ldc, size_t lda, size_t ldb, float *ws, int par) {
    int MR = kd->mr, NR = kd->nr, jc, ic, pc;
    lc__gemm_step st;
    st.kd = kd; st.C = C; st.A = A; st.B = B; st.bt = bt; st.ta = ta; st.tb = tb;
    st.alpha = alpha; st.ldc = ldc; st.lda = lda; st.ldb = ldb;
    for (jc = 0; jc < N; jc += kd->nch) {
        int nc = N - jc < kd->nch ? N - jc : kd->nch, npb = (nc + NR - 1) / NR;
        for (ic = 0; ic < M; ic += kd->mch) {
            int mc = M - ic < kd->mch ? M - ic : kd->mch, npa = (mc + MR - 1) / MR;
            int nmb = (mc + kd->mc - 1) / kd->mc, nnb = (nc + kd->nci - 1) / kd->nci;
            for (pc = 0; pc < K; pc += LC__GEMM_KC) {
                int kc = K - pc < LC__GEMM_KC ? K - pc : LC__GEMM_KC, t;
                st.ic = ic; st.jc = jc; st.pc = pc; st.mc = mc; st.nc = nc; st.kc = kc;
                st.npa = npa; st.nnb = nnb; st.pa = ws; st.pb = ws + (size_t)npa * MR * kc;
                st.bc = pc == 0 ? beta : 1.0f;
                if (par) {
                    LC__OMP_FOR
                    for (t = 0; t < npa + npb; t++) lc__gemm_pack_task(&st, t);
                    LC__OMP_FOR
                    for (t = 0; t < nmb * nnb; t++) lc__gemm_tile_task(&st, t);
                } else {  // inside a kernel's task: no parallel region at all
                    for (t = 0; t < npa + npb; t++) lc__gemm_pack_task(&st, t);
                    for (t = 0; t < nmb * nnb; t++) lc__gemm_tile_task(&st, t);
                }
            }
        }
    }
}

#if !defined(LOLCATS_NO_FAST)  // the packed products of the fast forms
static int lc__pk_for(const lc_ctx *ctx, lc__pk *pk) {
    pk->kd = lc__kern_for(ctx)->pk;
    pk->ukr = pk->kd ? pk->kd->ukr : NULL;
    pk->mr = pk->kd ? pk->kd->mr : 0;
    pk->nr = pk->kd ? pk->kd->nr : 0;
    return pk->kd != NULL;
}

static void lc__pk_a(const lc__pk *pk, float *dst, const float *A, size_t lda, int ta, int rows,
                     int kc) {
    int r0;
    for (r0 = 0; r0 < rows; r0 += pk->mr)
        lc__pack_a(pk->kd->tpose, dst + (size_t)r0 * kc, A, lda, ta, r0,
                   rows - r0 < pk->mr ? rows - r0 : pk->mr, 0, kc, pk->mr);
}

static void lc__pk_b(const lc__pk *pk, float *dst, const float *B, size_t ldb, int tb, int cols,
                     int kc) {
    int c0;
    for (c0 = 0; c0 < cols; c0 += pk->nr)
        lc__pack_b(pk->kd, dst + (size_t)c0 * kc, B, LOLCATS_DTYPE_F32, ldb, tb, c0,
                   cols - c0 < pk->nr ? cols - c0 : pk->nr, 0, kc);
}

static void lc__pk_tpose(const lc__pk *pk, float *dst, size_t ldd, const float *src, size_t lds,
                         int rows, int cols) {
    pk->kd->tpose(dst, ldd, src, lds, rows, cols);
}

static void lc__pk_mm(const lc__pk *pk, float *C, size_t ldc, const float *pa, size_t sa,
                      int rows, const float *pb, size_t sb, int cols, int kc, float alpha,
                      float beta) {
    int i, j;
    for (j = 0; j * pk->nr < cols; j++)
        for (i = 0; i * pk->mr < rows; i++)
            pk->ukr(kc, pa + (size_t)i * sa, pb + (size_t)j * sb, (size_t)pk->nr,
                    C + (size_t)i * pk->mr * ldc + (size_t)j * pk->nr, ldc, alpha, beta);
}

static void lc__pk_fit(const lc__pk *pk, float *C, size_t ldc, const float *pa, size_t sa,
                       int rows, const float *pb, size_t sb, size_t ldb, int cols, int kc,
                       float alpha, float beta) {
    const int MR = pk->mr, NR = pk->nr;
    float tile[LC__GEMM_TILE_MAX];
    int i, j, r, n;
    for (j = 0; j < cols; j += NR)
        for (i = 0; i < rows; i += MR) {
            const float *a = pa + (size_t)(i / MR) * sa, *b = pb + (size_t)(j / NR) * sb;
            float *c = C + (size_t)i * ldc + j;
            int nrow = rows - i < MR ? rows - i : MR, ncol = cols - j < NR ? cols - j : NR;
            if (nrow == MR && ncol == NR) {
                pk->ukr(kc, a, b, ldb, c, ldc, alpha, beta);
                continue;
            }
            pk->ukr(kc, a, b, ldb, tile, (size_t)NR, 1.0f, 0.0f);
            for (r = 0; r < nrow; r++)
                for (n = 0; n < ncol; n++) {
                    float *cc = c + (size_t)r * ldc + n, acc = tile[r * NR + n];
                    *cc = beta == 0.0f ? alpha * acc : alpha * acc + beta * *cc;
                }
        }
}
#endif

// >>quant-gemm
// defined below (>>quant)
LC__FILES_FN void lc__dequant_block(float *y, const unsigned char *b, lc_dtype dt);

// Products with a block-quantized weight (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K; GGUF):
// W stays as stored and each block is dequantized as it streams past.
//   y (T,O) = x (T,I) . W^T, W (O,I), I a whole number of blocks.
// Reference (ctx NULL or scalar): per output a double sum over the row, in
// order. Fast path (decode, T < 8): a row's blocks are dequantized once into a stack tile
// (Q8_0 straight into registers on AVX2) and dotted with every token's x in
// float32 (AVX2 FMA); rows are split across threads, each y element stays in
// one thread, so results do not depend on the thread count.
static void lc__qmm_ref(float *y, const float *x, const void *w, lc_dtype dt, int T, int O, int I) {
    size_t rb = lc_dtype_row_bytes(dt, I), bb = lc_dtype_block_bytes(dt);
    int bs = lc_dtype_block(dt), o;
    LC__OMP_FOR_STATIC
    for (o = 0; o < O; o++) {
        const unsigned char *w_o = (const unsigned char *)w + (size_t)o * rb;
        float tile[256];
        int t, b, l;
        for (t = 0; t < T; t++) {
            const float *x_t = x + (size_t)t * I;
            double acc = 0.0;
            for (b = 0; b < I; b += bs) {
                lc__dequant_block(tile, w_o + (size_t)(b / bs) * bb, dt);
                for (l = 0; l < bs; l++) acc += (double)x_t[b + l] * (double)tile[l];
            }
            y[(size_t)t * O + o] = (float)acc;
        }
    }
}

#ifdef LC__X86
LC__TARGET_AVX2 static float lc__qdot_avx2(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int i;
    for (i = 0; i < n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    return lc__hsum256(_mm256_add_ps(s0, s1));
}

// Q8_0 block . x (32 weights): int8 widened in registers, scaled once.
LC__TARGET_AVX2 static float lc__q8_dot_avx2(const unsigned char *blk, const float *x) {
    __m256 s = _mm256_setzero_ps();
    int i;
    for (i = 0; i < 32; i += 8) {
        __m128i q = _mm_loadl_epi64((const __m128i *)(const void *)(blk + 2 + i));
        s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), _mm256_loadu_ps(x + i), s);
    }
    return lc_f16_to_f32((uint16_t)(blk[0] | ((unsigned)blk[1] << 8))) * lc__hsum256(s);
}

LC__TARGET_AVX2 static void lc__qmm_avx2(float *y, const float *x, const void *w, lc_dtype dt, int T, int O, int I) {
    size_t rb = lc_dtype_row_bytes(dt, I), bb = lc_dtype_block_bytes(dt);
    int bs = lc_dtype_block(dt), o;
    LC__OMP_FOR_STATIC
    for (o = 0; o < O; o++) {
        const unsigned char *w_o = (const unsigned char *)w + (size_t)o * rb;
        float tile[256];
        int t, b;
        for (t = 0; t < T; t++) y[(size_t)t * O + o] = 0.0f;
        for (b = 0; b < I; b += bs) {
            const unsigned char *blk = w_o + (size_t)(b / bs) * bb;
            if (dt == LOLCATS_DTYPE_Q8_0) {
                for (t = 0; t < T; t++) y[(size_t)t * O + o] += lc__q8_dot_avx2(blk, x + (size_t)t * I + b);
                continue;
            }
            lc__dequant_block(tile, blk, dt);
            for (t = 0; t < T; t++) y[(size_t)t * O + o] += lc__qdot_avx2(tile, x + (size_t)t * I + b, bs);
        }
    }
}
#endif

static void lc__qmm(const lc_ctx *ctx, float *y, const float *x, const void *w, lc_dtype dt, int T, int O, int I) {
    const lc__kern *K = lc__kern_for(ctx);
    if (K->qmm) {
        K->qmm(y, x, w, dt, T, O, I);
        return;
    }
    lc__qmm_ref(y, x, w, dt, T, O, I);
}

// Prefill / training (T >= 8) with a block-quantized W: panels of 64 rows
// are dequantized into one F32 buffer and run through the packed GEMM, so the
// matrix is never widened whole. Returns -1 when the buffer cannot be had.
static int lc__qmm_panels(const lc_ctx *ctx, float *y, const float *x, const void *w, lc_dtype dt, int T, int O,
                          int I) {
    enum { CH = 64 };
    size_t rb = lc_dtype_row_bytes(dt, I), sc = lc_gemm_scratch_size(ctx, T, CH, I);
    float *buf = (float *)LOLCATS_MALLOC((size_t)CH * (size_t)I * sizeof(float) + sc + 64);
    int o0, r;
    if (!buf) return -1;
    for (o0 = 0; o0 < O; o0 += CH) {
        int ch = O - o0 < CH ? O - o0 : CH;
        for (r = 0; r < ch; r++)
            lc_dequant_row(buf + (size_t)r * (size_t)I, (const unsigned char *)w + (size_t)(o0 + r) * rb, dt, I);
        lc_gemm(ctx, y + o0, x, buf, LOLCATS_DTYPE_F32, T, ch, I, 0, 1, 1.0f, 0.0f, (size_t)O, (size_t)I, (size_t)I,
                buf + (size_t)CH * (size_t)I);
    }
    LOLCATS_FREE(buf);
    return 0;
}

// lc_gemm with a block-quantized B: B's rows (N,K) with trans_b, else (K,N),
// each a whole number of blocks and ldb == that row length, are dequantized
// into a transient F32 copy, then the F32 product runs (bit-identical to
// lc_gemm on the dequantized matrix). The forward y = x W^T goes through
// lc_matmul's lc__qmm instead, which never widens the whole matrix.
static void lc__gemm_q(const lc_ctx *ctx, float *C, const float *A, const void *B, lc_dtype dt, int M, int N,
                       int K, int trans_a, int trans_b, float alpha, float beta, size_t ldc, size_t lda,
                       size_t ldb, void *scratch) {
    int rows = trans_b ? N : K, len = trans_b ? K : N, r;
    size_t rb = lc_dtype_row_bytes(dt, len);
    float *Bf = (float *)LOLCATS_MALLOC((size_t)rows * (size_t)len * sizeof(float) + 1);
    LOLCATS_ASSERT(rb != 0 && ldb == (size_t)len);
    if (!Bf) {   // no memory: NaN out rather than a silent wrong product
        int i, j;
        for (i = 0; i < M; i++) for (j = 0; j < N; j++) C[(size_t)i * ldc + j] = (float)NAN;
        return;
    }
    for (r = 0; r < rows; r++)
        lc_dequant_row(Bf + (size_t)r * (size_t)len, (const unsigned char *)B + (size_t)r * rb, dt, len);
    lc_gemm(ctx, C, A, Bf, LOLCATS_DTYPE_F32, M, N, K, trans_a, trans_b, alpha, beta, ldc, lda, ldb, scratch);
    LOLCATS_FREE(Bf);
}

LCIMPL void lc_gemm(const lc_ctx *ctx, float *C, const float *A, const void *B, lc_dtype b_dtype,
                    int M, int N, int K, int trans_a, int trans_b, float alpha, float beta,
                    size_t ldc, size_t lda, size_t ldb, void *scratch) {
    const lc__gemm_kind *kd = lc__gemm_kind_for(ctx);
    void *own = NULL;
    if (lc_dtype_block(b_dtype) > 1) {   // GGUF block types (>>quant-gemm)
        lc__gemm_q(ctx, C, A, B, b_dtype, M, N, K, trans_a, trans_b, alpha, beta, ldc, lda, ldb, scratch);
        return;
    }
    LOLCATS_ASSERT(b_dtype == LOLCATS_DTYPE_F32 || b_dtype == LOLCATS_DTYPE_BF16 ||
                   b_dtype == LOLCATS_DTYPE_F16);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {  // empty sum: C = beta C
        int i, j;
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) {
                float *c_ij = C + (size_t)i * ldc + j;
                *c_ij = beta == 0.0f ? 0.0f : beta * *c_ij;
            }
        return;
    }
    if (ctx->compute == LOLCATS_COMPUTE_BF16 && lc__gemm_bf16(ctx, C, A, B, b_dtype, M, N, K,
            trans_a, trans_b, alpha, beta, ldc, lda, ldb)) return;   // >>gemm-bf16
    if (!kd) {
        lc__gemm_ref(C, A, B, b_dtype, M, N, K, trans_a, trans_b, alpha, beta, ldc, lda, ldb);
        return;
    }
    if (!scratch) {
        own = LOLCATS_MALLOC(lc_gemm_scratch_size(ctx, M, N, K));
        LOLCATS_ASSERT(own != NULL);
        scratch = own;
    }
    {
        uintptr_t p = ((uintptr_t)scratch + 63) & ~(uintptr_t)63;  // 64-byte aligned panels
        lc__gemm_blocked(kd, C, A, B, b_dtype, M, N, K, trans_a, trans_b, alpha, beta, ldc, lda,
                         ldb, (float *)p, 1);
    }
    if (own) LOLCATS_FREE(own);
}

// The products inside the attention kernels: all F32, one thread (they run
// inside the kernels' per-head tasks), workspace from the caller. The scalar
// path stays the double-accumulating definition.
static size_t lc__mm_ws_floats(int M, int N, int K) {  // bound for every kind
    size_t kc = (size_t)(K < LC__GEMM_KC ? K : LC__GEMM_KC);
    return ((size_t)M + 14 + (size_t)N + 32) * kc;
}

static void lc__mm(const lc_ctx *ctx, float *C, const float *A, const float *B, int M, int N,
                   int K, int ta, int tb, float alpha, float beta, size_t ldc, size_t lda,
                   size_t ldb, float *ws) {
    const lc__gemm_kind *kd = lc__gemm_kind_for(ctx);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        int i, j;
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) {
                float *c_ij = C + (size_t)i * ldc + j;
                *c_ij = beta == 0.0f ? 0.0f : beta * *c_ij;
            }
    } else if (!kd) {
        int i, j, k;  // serial copy of lc__gemm_ref (no threads inside tasks)
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) {
                double sum = 0;
                float *c_ij = C + (size_t)i * ldc + j;
                for (k = 0; k < K; k++)
                    sum += (double)(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                           (double)(tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                *c_ij = beta == 0.0f ? alpha * (float)sum : alpha * (float)sum + beta * *c_ij;
            }
    } else {
        lc__gemm_blocked(kd, C, A, B, LOLCATS_DTYPE_F32, M, N, K, ta, tb, alpha, beta, ldc, lda,
                         ldb, ws, 0);
    }
}

// GEMV. Each row: y_o = sum_i W[o,i] x_i, 4 vector accumulators, W widened
// in registers; one task per block of rows.
static float lc__gemv_row_ref(const void *W, lc_dtype dt, size_t off, const float *x, int n) {
    double s = 0;
    int i;
    for (i = 0; i < n; i++) s += (double)lc__wload(W, dt, off + (size_t)i) * (double)x[i];
    return (float)s;
}

#if defined(LC__X86)
LC__TARGET_AVX512 static __m512 lc__ld16_avx512(const void *W, lc_dtype dt, size_t i) {
    if (dt == LOLCATS_DTYPE_BF16) {
        __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)W + i)));
        return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
    }
    if (dt == LOLCATS_DTYPE_F16)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)W + i)));
    return _mm512_loadu_ps((const float *)W + i);
}

// The row's tail after its 64-wide main loop: the 16-wide steps on s0, the
// lane sum of (s0+s1)+(s2+s3) and the scalar rest. Shared by the one-row and
// the four-row kernels so that a row's bits never depend on its neighbours.
LC__TARGET_AVX512 static float lc__gemv_fin_avx512(const void *W, lc_dtype dt, size_t off,
                                                   const float *x, int n, int i, __m512 s0,
                                                   __m512 s1, __m512 s2, __m512 s3) {
    float lanes[16], s = 0;
    int l;
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(lc__ld16_avx512(W, dt, off + i), _mm512_loadu_ps(x + i), s0);
    _mm512_storeu_ps(lanes, _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    for (l = 0; l < 16; l++) s += lanes[l];
    for (; i < n; i++) s += lc__wload(W, dt, off + (size_t)i) * x[i];
    return s;
}

LC__TARGET_AVX512 static float lc__gemv_row_avx512(const void *W, lc_dtype dt, size_t off,
                                                   const float *x, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(lc__ld16_avx512(W, dt, off + i), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(lc__ld16_avx512(W, dt, off + i + 16), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(lc__ld16_avx512(W, dt, off + i + 32), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(lc__ld16_avx512(W, dt, off + i + 48), _mm512_loadu_ps(x + i + 48), s3);
    }
    return lc__gemv_fin_avx512(W, dt, off, x, n, i, s0, s1, s2, s3);
}

// >>gemv-rows
// Four rows per pass: each x vector is loaded once for four rows and four
// weight streams are in flight. Every row keeps the one-row kernel's four
// accumulators and order of operations, so y is bit-identical to
// lc__gemv_row_avx512 row by row (and so for any row blocking or thread count).
// A software prefetch keeps more DRAM reads in flight than the hardware
// prefetcher does alone: a cursor runs LC__GV_PF bytes ahead of each of the
// four row streams and carries on into the next four rows (short rows).
// Measured on Zen 5: +10-25% GB/s for F32 and BF16 over no prefetch.
#define LC__GV_PF 2048
#define LC__GV4_STEP(j)                                                                      \
    do {                                                                                       \
        __m512 xv = _mm512_loadu_ps(x + i + 16 * (j));                                         \
        a##j = _mm512_fmadd_ps(lc__ld16_avx512(W, dt, off + i + 16 * (j)), xv, a##j);           \
        b##j = _mm512_fmadd_ps(lc__ld16_avx512(W, dt, off + ldw + i + 16 * (j)), xv, b##j);     \
        c##j = _mm512_fmadd_ps(lc__ld16_avx512(W, dt, off + 2 * ldw + i + 16 * (j)), xv, c##j); \
        d##j = _mm512_fmadd_ps(lc__ld16_avx512(W, dt, off + 3 * ldw + i + 16 * (j)), xv, d##j); \
    } while (0)
// prefetch (into L1) the `bytes` at `at` and at the same column of the next
// rows-1 rows, `rb` bytes apart
static void lc__gemv_pf(const char *at, int rows, size_t rb, size_t bytes) {
    size_t l;
    for (; rows > 0; rows--, at += rb)
        for (l = 0; l < bytes; l += 64) _mm_prefetch(at + l, _MM_HINT_T0);
}
// one step of the prefetch cursor (rows *pr.. of R, column *pc, w elements
// wide, inside rows [0, O) of n columns from element off0), then advance it
static void lc__gemv_pf_step(const void *W, size_t es, size_t off0, size_t ldw, int O, int n,
                             int R, int w, int *pr, int *pc) {
    if (*pr + R <= O && *pc + w <= n)
        lc__gemv_pf((const char *)W + (off0 + (size_t)*pr * ldw + (size_t)*pc) * es, R, ldw * es,
                    (size_t)w * es);
    if ((*pc += w) >= n) { *pc -= n; *pr += R; }
}
// rows [0, O) of W from element `off`: y[o] = W[o,:] . x, one thread
LC__TARGET_AVX512 static void lc__gemv_rows_avx512(float *y, const void *W, lc_dtype dt,
                                                   size_t off0, size_t ldw, const float *x, int O,
                                                   int n) {
    size_t es = lc_dtype_size(dt);
    int o;
    for (o = 0; o + 4 <= O; o += 4) {
        size_t off = off0 + (size_t)o * ldw;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        __m512 c0 = a0, c1 = a0, c2 = a0, c3 = a0, d0 = a0, d1 = a0, d2 = a0, d3 = a0;
        int i = 0, pc = LC__GV_PF / (int)es, pr = o;   // prefetch cursor: rows pr.., column pc
        while (n >= 64 && pc >= n) { pc -= n; pr += 4; }
        for (; i + 64 <= n; i += 64) {
            lc__gemv_pf_step(W, es, off0, ldw, O, n, 4, 64, &pr, &pc);
            LC__GV4_STEP(0);
            LC__GV4_STEP(1);
            LC__GV4_STEP(2);
            LC__GV4_STEP(3);
        }
        y[o] = lc__gemv_fin_avx512(W, dt, off, x, n, i, a0, a1, a2, a3);
        y[o + 1] = lc__gemv_fin_avx512(W, dt, off + ldw, x, n, i, b0, b1, b2, b3);
        y[o + 2] = lc__gemv_fin_avx512(W, dt, off + 2 * ldw, x, n, i, c0, c1, c2, c3);
        y[o + 3] = lc__gemv_fin_avx512(W, dt, off + 3 * ldw, x, n, i, d0, d1, d2, d3);
    }
    for (; o < O; o++) y[o] = lc__gemv_row_avx512(W, dt, off0 + (size_t)o * ldw, x, n);
}
#undef LC__GV4_STEP
// >>gemv-rows-end

__attribute__((target("avx2,fma,f16c"))) static __m256 lc__ld8_avx2(const void *W, lc_dtype dt,
                                                                   size_t i) {
    if (dt == LOLCATS_DTYPE_BF16) {
        __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)W + i)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
    }
    if (dt == LOLCATS_DTYPE_F16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)W + i)));
    return _mm256_loadu_ps((const float *)W + i);
}

// The AVX2 row's tail after its 32-wide loop (shared by the one- and three-row kernels)
LC__TARGET_AVX2 static float lc__gemv_fin_avx2(const void *W, lc_dtype dt, size_t off, const float *x,
                                               int n, int i, __m256 s0, __m256 s1, __m256 s2, __m256 s3) {
    float s;
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(lc__ld8_avx2(W, dt, off + i), _mm256_loadu_ps(x + i), s0);
    s = lc__hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += lc__wload(W, dt, off + (size_t)i) * x[i];
    return s;
}

LC__TARGET_AVX2 static float lc__gemv_row_avx2(const void *W, lc_dtype dt, size_t off, const float *x,
                                               int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(lc__ld8_avx2(W, dt, off + i), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(lc__ld8_avx2(W, dt, off + i + 8), _mm256_loadu_ps(x + i + 8), s1);
        s2 = _mm256_fmadd_ps(lc__ld8_avx2(W, dt, off + i + 16), _mm256_loadu_ps(x + i + 16), s2);
        s3 = _mm256_fmadd_ps(lc__ld8_avx2(W, dt, off + i + 24), _mm256_loadu_ps(x + i + 24), s3);
    }
    return lc__gemv_fin_avx2(W, dt, off, x, n, i, s0, s1, s2, s3);
}

// >>gemv-rows on AVX2: three rows per pass (12 of the 16 registers hold
// accumulators), the one-row kernel's order (same bits), the same prefetch.
// Rows under 4 KiB go one at a time: one linear stream measured faster there
// (Zen 5, AVX2 code: 32000 x 512 -15% with three rows, 4096-wide +25-90%).
#define LC__GV3_STEP(j)                                                                    \
    do {                                                                                     \
        __m256 xv = _mm256_loadu_ps(x + i + 8 * (j));                                        \
        a##j = _mm256_fmadd_ps(lc__ld8_avx2(W, dt, off + i + 8 * (j)), xv, a##j);             \
        b##j = _mm256_fmadd_ps(lc__ld8_avx2(W, dt, off + ldw + i + 8 * (j)), xv, b##j);       \
        c##j = _mm256_fmadd_ps(lc__ld8_avx2(W, dt, off + 2 * ldw + i + 8 * (j)), xv, c##j);   \
    } while (0)
LC__TARGET_AVX2 static void lc__gemv_rows_avx2(float *y, const void *W, lc_dtype dt, size_t off0,
                                               size_t ldw, const float *x, int O, int n) {
    size_t es = lc_dtype_size(dt);
    int o;
    for (o = 0; (size_t)n * es >= 4096 && o + 3 <= O; o += 3) {
        size_t off = off0 + (size_t)o * ldw;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        __m256 c0 = a0, c1 = a0, c2 = a0, c3 = a0;
        int i = 0, pc = LC__GV_PF / (int)es, pr = o;   // prefetch cursor: rows pr.., column pc
        while (n >= 32 && pc >= n) { pc -= n; pr += 3; }
        for (; i + 32 <= n; i += 32) {
            lc__gemv_pf_step(W, es, off0, ldw, O, n, 3, 32, &pr, &pc);
            LC__GV3_STEP(0);
            LC__GV3_STEP(1);
            LC__GV3_STEP(2);
            LC__GV3_STEP(3);
        }
        y[o] = lc__gemv_fin_avx2(W, dt, off, x, n, i, a0, a1, a2, a3);
        y[o + 1] = lc__gemv_fin_avx2(W, dt, off + ldw, x, n, i, b0, b1, b2, b3);
        y[o + 2] = lc__gemv_fin_avx2(W, dt, off + 2 * ldw, x, n, i, c0, c1, c2, c3);
    }
    for (; o < O; o++) y[o] = lc__gemv_row_avx2(W, dt, off0 + (size_t)o * ldw, x, n);
}
#undef LC__GV3_STEP
#endif

#if defined(LC__NEON)
static float32x4_t lc__ld4_neon(const void *W, lc_dtype dt, size_t i) {
    if (dt == LOLCATS_DTYPE_BF16)
        return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)W + i), 16));
    if (dt == LOLCATS_DTYPE_F16)
        return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)W + i)));
    return vld1q_f32((const float *)W + i);
}

static float lc__gemv_row_neon(const void *W, lc_dtype dt, size_t off, const float *x, int n) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
    float s;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, lc__ld4_neon(W, dt, off + i), vld1q_f32(x + i));
        s1 = vfmaq_f32(s1, lc__ld4_neon(W, dt, off + i + 4), vld1q_f32(x + i + 4));
        s2 = vfmaq_f32(s2, lc__ld4_neon(W, dt, off + i + 8), vld1q_f32(x + i + 8));
        s3 = vfmaq_f32(s3, lc__ld4_neon(W, dt, off + i + 12), vld1q_f32(x + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, lc__ld4_neon(W, dt, off + i), vld1q_f32(x + i));
    s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) s += lc__wload(W, dt, off + (size_t)i) * x[i];
    return s;
}
#endif

LCIMPL void lc_gemv(const lc_ctx *ctx, float *y, const void *W, lc_dtype w_dtype, const float *x,
                    int O, int I, size_t ldw) {
    float (*row)(const void *, lc_dtype, size_t, const float *, int) = lc__kern_for(ctx)->gemv_row;
    int blk, rows;
    if (lc_dtype_block(w_dtype) > 1) {   // GGUF block types: rows of ldw == I weights
        LOLCATS_ASSERT(ldw == (size_t)I);
        lc__qmm(ctx, y, x, W, w_dtype, 1, O, I);
        return;
    }
    LOLCATS_ASSERT(w_dtype == LOLCATS_DTYPE_F32 || w_dtype == LOLCATS_DTYPE_BF16 ||
                   w_dtype == LOLCATS_DTYPE_F16);
    if (!row) row = lc__gemv_row_ref;
    // tasks of >= 16 rows (a multiple of 4) and about 256 KiB of W each: long
    // sequential streams
    rows = (int)((256u << 10) / ((size_t)(I > 0 ? I : 1) * lc_dtype_size(w_dtype)));
    rows = rows < 16 ? 16 : (rows + 3) & ~3;
    LC__OMP_FOR
    for (blk = 0; blk < (O + rows - 1) / rows; blk++) {
        int o = blk * rows, o1 = blk * rows + rows < O ? blk * rows + rows : O;
#if defined(LC__X86)
        if (row == lc__gemv_row_avx512) {   // >>gemv-rows: four rows per pass, same bits
            lc__gemv_rows_avx512(y + o, W, w_dtype, (size_t)o * ldw, ldw, x, o1 - o, I);
            continue;
        }
        if (row == lc__gemv_row_avx2) {   // three rows per pass, same bits
            lc__gemv_rows_avx2(y + o, W, w_dtype, (size_t)o * ldw, ldw, x, o1 - o, I);
            continue;
        }
#endif
        for (; o < o1; o++) y[o] = row(W, w_dtype, (size_t)o * ldw, x, I);
    }
}

// >>model-matmul
static float lc__m_at(const void *w, lc_dtype dtype, size_t i) {
    uint16_t h;
    float f;
    if (lc_dtype_block(dtype) > 1) {   // GGUF block types: rows are whole blocks, so i / block is the block
        float tile[256];
        size_t bs = (size_t)lc_dtype_block(dtype);
        lc__dequant_block(tile, (const unsigned char *)w + (i / bs) * lc_dtype_block_bytes(dtype), dtype);
        return tile[i % bs];
    }
    if (dtype == LOLCATS_DTYPE_F32) { memcpy(&f, (const unsigned char *)w + 4 * i, 4); return f; }
    memcpy(&h, (const unsigned char *)w + 2 * i, 2);
    return dtype == LOLCATS_DTYPE_BF16 ? lc_bf16_to_f32(h) : lc_f16_to_f32(h);
}

LCIMPL float lc_weight_get(const lc_weight *w, int64_t i) {
    return lc__m_at(w->data, w->dtype, (size_t)i);
}

// y (T,O) = x (T,I) . W^T, W (O,I) in F32/F16/BF16. Cost 2*T*O*I flops.
// Reference: one dot product per output, in order, accumulated in double (as
// the core's lc__dot_ref); the AVX2 kernel accumulates in float32.
static void lc__matmul_ref(float *y, const float *x, const void *w, lc_dtype dtype, int T, int O,
                           int I) {
    int o;
    LC__OMP_FOR_STATIC
    for (o = 0; o < O; o++) {
        int t, i;
        for (t = 0; t < T; t++) {
            const float *x_t = x + (size_t)t * I;
            double acc = 0.0;
            for (i = 0; i < I; i++) acc += (double)x_t[i] * (double)lc__m_at(w, dtype, (size_t)o * I + i);
            y[(size_t)t * O + o] = (float)acc;
        }
    }
}

#ifdef LC__X86
LC__TARGET_AVX2 static inline __m256 lc__ld8_f32(const void *w, size_t i) {
    return _mm256_loadu_ps((const float *)w + i);
}
LC__TARGET_AVX2 static inline __m256 lc__ld8_bf16(const void *w, size_t i) {
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
LC__TARGET_AVX2 static inline __m256 lc__ld8_f16(const void *w, size_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
}

// Block kernel: rows o0..o0+3 of W against all T tokens, 4 rows x 2 tokens of
// accumulators; missing rows / the odd token repeat a valid one and are not stored.
#define LC__M_GEMM_BLOCK(NAME, LD)                                                        \
    LC__TARGET_AVX2 static void NAME(float *y, const float *x, const void *w, int T, int O,   \
                                  int I, int o0) {                                         \
        size_t r[4];                                                                       \
        int nr = O - o0 < 4 ? O - o0 : 4, a, t;                                            \
        for (a = 0; a < 4; a++) r[a] = (size_t)(o0 + (a < nr ? a : 0)) * (size_t)I;        \
        for (t = 0; t < T; t += 2) {                                                       \
            const float *x0 = x + (size_t)t * I;                                           \
            const float *x1 = t + 1 < T ? x0 + I : x0;                                     \
            __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00,  \
                   c21 = c00, c30 = c00, c31 = c00;                                        \
            float s[4][2];                                                                 \
            int i = 0;                                                                     \
            for (; i + 8 <= I; i += 8) {                                                   \
                __m256 xa = _mm256_loadu_ps(x0 + i), xb = _mm256_loadu_ps(x1 + i), wv;     \
                wv = LD(w, r[0] + i); c00 = _mm256_fmadd_ps(wv, xa, c00);                  \
                c01 = _mm256_fmadd_ps(wv, xb, c01);                                        \
                wv = LD(w, r[1] + i); c10 = _mm256_fmadd_ps(wv, xa, c10);                  \
                c11 = _mm256_fmadd_ps(wv, xb, c11);                                        \
                wv = LD(w, r[2] + i); c20 = _mm256_fmadd_ps(wv, xa, c20);                  \
                c21 = _mm256_fmadd_ps(wv, xb, c21);                                        \
                wv = LD(w, r[3] + i); c30 = _mm256_fmadd_ps(wv, xa, c30);                  \
                c31 = _mm256_fmadd_ps(wv, xb, c31);                                        \
            }                                                                              \
            s[0][0] = lc__hsum256(c00); s[0][1] = lc__hsum256(c01);                            \
            s[1][0] = lc__hsum256(c10); s[1][1] = lc__hsum256(c11);                            \
            s[2][0] = lc__hsum256(c20); s[2][1] = lc__hsum256(c21);                            \
            s[3][0] = lc__hsum256(c30); s[3][1] = lc__hsum256(c31);                            \
            for (; i < I; i++)                                                             \
                for (a = 0; a < 4; a++) {                                                  \
                    float wi = lc__m_at(w, DT_OF_##LD, r[a] + i);                          \
                    s[a][0] += wi * x0[i];                                                 \
                    s[a][1] += wi * x1[i];                                                 \
                }                                                                          \
            for (a = 0; a < nr; a++) {                                                     \
                y[(size_t)t * O + o0 + a] = s[a][0];                                       \
                if (t + 1 < T) y[(size_t)(t + 1) * O + o0 + a] = s[a][1];                  \
            }                                                                              \
        }                                                                                  \
    }
#define DT_OF_lc__ld8_f32 LOLCATS_DTYPE_F32
#define DT_OF_lc__ld8_bf16 LOLCATS_DTYPE_BF16
#define DT_OF_lc__ld8_f16 LOLCATS_DTYPE_F16
LC__M_GEMM_BLOCK(lc__gemm_blk_f32, lc__ld8_f32)
LC__M_GEMM_BLOCK(lc__gemm_blk_bf16, lc__ld8_bf16)
LC__M_GEMM_BLOCK(lc__gemm_blk_f16, lc__ld8_f16)
#undef DT_OF_lc__ld8_f32
#undef DT_OF_lc__ld8_bf16
#undef DT_OF_lc__ld8_f16

typedef void (*lc__gemm_blk_fn)(float *, const float *, const void *, int, int, int, int);

static void lc__matmul_avx2(float *y, const float *x, const void *w, lc_dtype dtype, int T, int O,
                            int I) {
    lc__gemm_blk_fn fn = dtype == LOLCATS_DTYPE_BF16  ? lc__gemm_blk_bf16
                         : dtype == LOLCATS_DTYPE_F16 ? lc__gemm_blk_f16
                                                   : lc__gemm_blk_f32;
    int nb = (O + 3) / 4, b;
    LC__OMP_FOR_STATIC
    for (b = 0; b < nb; b++) fn(y, x, w, T, O, I, 4 * b);
}
#endif

LCIMPL void lc_matmul(const lc_ctx *ctx, float *y, const float *x, const void *w, lc_dtype dtype,
                      int T, int O, int I) {
    const lc__kern *K = lc__kern_for(ctx);
    if (lc_dtype_block(dtype) > 1) {   // GGUF block types, dequantized as they stream (>>quant-gemm)
        if (!(K->gemm && T >= 8 && lc__qmm_panels(ctx, y, x, w, dtype, T, O, I) == 0))
            lc__qmm(ctx, y, x, w, dtype, T, O, I);
        return;
    }
    // prefill / training: the packed GEMM (the bf16 mode: its scalar twin too)
    if (T >= 8 && (K->gemm || (ctx && ctx->compute == LOLCATS_COMPUTE_BF16))) {
        lc_gemm(ctx, y, x, w, dtype, T, O, I, 0, 1, 1.0f, 0.0f, (size_t)O, (size_t)I, (size_t)I, NULL);
        return;
    }
    if (K->matmul) {
        K->matmul(y, x, w, dtype, T, O, I);
        return;
    }
    lc__matmul_ref(y, x, w, dtype, T, O, I);
}

// >>fmap-fast
#if !defined(LOLCATS_NO_FAST)  // to the end of >>softmax-tiles
static int lc__fm_plan_for(const lc_ctx *ctx, lc__fm_plan *p, int D, int f, int bwd, int dx) {
    size_t o = 0;
    if (!lc__pk_for(ctx, &p->pk) || D > LC__PK_KC ||
        f > LC__PK_KC)
        return 0;
    p->rb = LC__PK_KC / p->pk.mr * p->pk.mr;
    p->fp = lc__pk_round(f, p->pk.nr);
    p->Dp = lc__pk_round(D, p->pk.nr);
#define LC__FM_CUT(field, n) p->field = o; o += ((size_t)(n) + 15) / 16 * 16;
    LC__FM_CUT(px, (size_t)p->rb * D)
    LC__FM_CUT(z, (size_t)p->rb * p->fp)
    LC__FM_CUT(dz, bwd ? (size_t)p->rb * p->fp : 0)
    LC__FM_CUT(pxt, bwd ? (size_t)lc__pk_round(D, p->pk.mr) * p->rb : 0)
    LC__FM_CUT(dxb, bwd && dx ? (size_t)p->rb * p->Dp : 0)
#undef LC__FM_CUT
    p->floats = o;
    return 1;
}

// The packed form of lc_fmap_fwd for x head bx = b Hx + xh and its query heads:
// each block of X packed once for all of them, W_h read in place (whole column
// panels) or packed once (pw: rep fp D floats).
static void lc__fmap_fwd_packed(const lc__fm_plan *pl, const lc__prims *P, int fast, float *ws,
                                float *pw, float *phi, const float *x, const float *w,
                                const float *bias, int H, int Hx, int bx, int N, int D, int f,
                                const lc_fmap_cfg *cfg) {
    const lc__pk *pk = &pl->pk;
    int F = lc_fmap_out_dim(cfg, f), rep = H / Hx, b = bx / Hx, r, i, c, i0;
    const float *x_bx = x + (size_t)bx * N * D;
    const float *wop[LC__FMAP_REP_MAX];
    size_t sb = 0, ldb = 0;
    for (r = 0; r < rep; r++)
        wop[r] = lc__pk_bop(pk, pw + (size_t)r * pl->fp * D, w + (size_t)(bx % Hx * rep + r) * D * f,
                            (size_t)f, 0, f, D, &sb, &ldb);
    for (i0 = 0; i0 < N; i0 += pl->rb) {
        int nr = N - i0 < pl->rb ? N - i0 : pl->rb;
        float *Z = ws + pl->z;
        lc__pk_a(pk, ws + pl->px, x_bx + (size_t)i0 * D, (size_t)D, 0, nr, D);
        for (r = 0; r < rep; r++) {  // Z (nr x f, row stride fp) = X W_h + b
            int h = bx % Hx * rep + r;
            lc__pk_fit(pk, Z, (size_t)pl->fp, ws + pl->px, (size_t)pk->mr * D, nr, wop[r], sb, ldb,
                       f, D, 1.0f, 0.0f);
            if (bias)
                for (c = 0; c < nr * pl->fp; c++) Z[c] += bias[h];
            for (i = 0; i < nr; i++)
                lc__fmap_row(P, fast, phi + (((size_t)b * H + h) * N + i0 + i) * F,
                             Z + (size_t)i * pl->fp, f, cfg);
        }
    }
}

// The packed form of lc_fmap_bwd for x head xh and its rep query heads
// (scratch ws of lc__fmap_bwd_floats): each block of X (and X^T) packed once
// for all of them; with phi (softmax_dim only) the projection is not made
// again. Per head, the same sums in the same order as one head at a time.
static size_t lc__fmap_bwd_floats(const lc__fm_plan *pl, int rep, int D, int f) {
    return pl->floats + (size_t)pl->rb * pl->fp +
           (size_t)rep * ((size_t)lc__pk_round(D, pl->pk.mr) * pl->fp + (size_t)pl->fp * D +
                          (size_t)pl->Dp * f);
}

static void lc__fmap_bwd_packed(const lc__fm_plan *pl, const lc__prims *P, int fast, float *ws,
                                float *dx, float *dw, float *dbias, const float *dphi,
                                const float *phi, const float *x, const float *w,
                                const float *bias, int B, int H, int Hx, int N, int D, int f,
                                int xh, const lc_fmap_cfg *cfg) {
    float out[2048];
    int F = lc_fmap_out_dim(cfg, f), rep = H / Hx;
    const lc__pk *pk = &pl->pk;
    int b, r, i, c, d, i0, Dm = lc__pk_round(D, pk->mr);
    float *dwa = ws + pl->floats, *pw = dwa + (size_t)rep * Dm * pl->fp;
    float *pwt = pw + (size_t)rep * pl->fp * D, *pdz = pwt + (size_t)rep * pl->Dp * f;
    float *dZ = ws + pl->dz, *Z = ws + pl->z;
    const float *wop[LC__FMAP_REP_MAX];
    size_t sb = 0, ldb = 0;
    memset(dZ, 0, sizeof(float) * (size_t)pl->rb * pl->fp);  // dZ's padding columns
    memset(dwa, 0, sizeof(float) * (size_t)rep * Dm * pl->fp);
    for (r = 0; r < rep; r++) {
        const float *w_h = w + (size_t)(xh * rep + r) * D * f;
        if (!phi) wop[r] = lc__pk_bop(pk, pw + (size_t)r * pl->fp * D, w_h, (size_t)f, 0, f, D, &sb, &ldb);
        if (dx) lc__pk_b(pk, pwt + (size_t)r * pl->Dp * f, w_h, (size_t)f, 1, D, f);
    }
    for (b = 0; b < B; b++) {
        const float *x_bh = x + ((size_t)b * Hx + xh) * N * D;
        float *dx_bh = dx ? dx + ((size_t)b * Hx + xh) * N * D : NULL;
        for (i0 = 0; i0 < N; i0 += pl->rb) {
            int nr = N - i0 < pl->rb ? N - i0 : pl->rb;
            if (!phi) lc__pk_a(pk, ws + pl->px, x_bh + (size_t)i0 * D, (size_t)D, 0, nr, D);
            if (dw) lc__pk_a(pk, ws + pl->pxt, x_bh + (size_t)i0 * D, (size_t)D, 1, D, nr);
            for (r = 0; r < rep; r++) {
                int h = xh * rep + r;
                if (!phi) {  // Z = X W_h + b
                    lc__pk_fit(pk, Z, (size_t)pl->fp, ws + pl->px, (size_t)pk->mr * D, nr, wop[r],
                               sb, ldb, f, D, 1.0f, 0.0f);
                    if (bias)
                        for (c = 0; c < nr * pl->fp; c++) Z[c] += bias[h];
                }
                for (i = 0; i < nr; i++) {
                    size_t row = ((size_t)b * H + h) * N + i0 + i;
                    float *dz = dZ + (size_t)i * pl->fp;
                    if (phi)
                        lc__fmap_row_bwd_phi(P, dz, dphi + row * F, phi + row * F, f, cfg);
                    else
                        lc__fmap_row_bwd(P, fast, dz, dphi + row * F, Z + (size_t)i * pl->fp, out,
                                         f, cfg);
                    if (dbias) {
                        double sbias = 0;
                        for (c = 0; c < f; c++) sbias += (double)dz[c];
                        dbias[h] += (float)sbias;
                    }
                }
                if (dw)  // dW_h += X^T (D x nr) dZ (nr x f), in dwa; dZ read in place
                    lc__pk_fit(pk, dwa + (size_t)r * Dm * pl->fp, (size_t)pl->fp, ws + pl->pxt,
                               (size_t)pk->mr * nr, D, dZ, (size_t)pk->nr, (size_t)pl->fp, pl->fp,
                               nr, 1.0f, 1.0f);
                if (dx_bh) {  // dX (nr x D) += dZ (nr x f) W_h^T (f x D)
                    float *dxb = ws + pl->dxb;
                    lc__pk_a(pk, pdz, dZ, (size_t)pl->fp, 0, nr, f);
                    lc__pk_mm(pk, dxb, (size_t)pl->Dp, pdz, (size_t)pk->mr * f, nr,
                              pwt + (size_t)r * pl->Dp * f, (size_t)pk->nr * f, D, f, 1.0f, 0.0f);
                    for (i = 0; i < nr; i++)
                        for (d = 0; d < D; d++)
                            dx_bh[(size_t)(i0 + i) * D + d] += dxb[(size_t)i * pl->Dp + d];
                }
            }
        }
    }
    if (dw)
        for (r = 0; r < rep; r++)
            for (d = 0; d < D; d++)
                for (c = 0; c < f; c++)
                    dw[(size_t)(xh * rep + r) * D * f + (size_t)d * f + c] +=
                        dwa[(size_t)r * Dm * pl->fp + (size_t)d * pl->fp + c];
}

// >>softmax-tiles
static int lc__sm_plan_for(const lc_ctx *ctx, lc__sm_plan *p, int rep, int N, int D) {
    int a, b, t, u;
    if (!lc__pk_for(ctx, &p->pk) || D > LC__PK_KC) return 0;
    for (p->hs = rep < 8 ? rep : 8; rep % p->hs; p->hs--) {}  // largest divisor of rep <= 8
    for (a = p->pk.nr, b = p->hs; b; a = b, b = t) t = a % b;  // a = gcd(nr, hs)
    u = p->pk.nr / a;  // tq a multiple of u: hs tq fills whole column panels
    p->tq = u <= 64 ? 64 / u * u : u;
    p->tk = lc__pk_round(64, p->pk.mr);
    p->ntile = (N + p->tq - 1) / p->tq;
    p->ngrp = rep / p->hs;
    p->Mq = lc__pk_round(p->hs * p->tq, p->pk.nr);
    p->tka = lc__pk_round(p->tk, p->pk.mr) + p->pk.mr;  // a block may start inside a panel
    p->Dp = lc__pk_round(D, p->pk.mr);
    p->bytes = sizeof(float) * ((size_t)p->Mq * D + (size_t)p->tka * D +
                                (size_t)p->Mq * p->tka + (size_t)p->Dp * p->tk +
                                (size_t)p->Dp * p->Mq + 4 * (size_t)p->Mq) +
               sizeof(double) * (size_t)p->Mq + 64;
    return 1;
}

// The last row (within the tile) of the queries in column panel j.
static int lc__sm_last(const lc__sm_plan *p, int nr, int M, int j) {
    int lo = j * p->pk.nr, hi = (lo + p->pk.nr < M ? lo + p->pk.nr : M) - 1;
    return hi / nr != lo / nr ? nr - 1 : hi % nr;
}

// Sets the entries of S^T (packed: query n in panel n / nr, lane n % nr) whose
// key c0 + kk comes after query r0 + i of any stacked head to val.
static void lc__sm_mask(const lc__sm_plan *p, float *st, int r0, int nr, int c0, int nc,
                        float val) {
    const int NR = p->pk.nr;
    int kk, j, n, i, len;
    for (kk = r0 + 1 - c0 > 0 ? r0 + 1 - c0 : 0; kk < nc; kk++) {
        int cnt = c0 + kk - r0 < nr ? c0 + kk - r0 : nr;  // queries 0..cnt-1 of each head
        for (j = 0; j < p->hs; j++)
            for (n = j * nr; n < j * nr + cnt; n += len) {  // a run of lanes in one panel
                float *d = st + (size_t)(n / NR) * NR * p->tka + (size_t)kk * NR + n % NR;
                len = NR - n % NR < j * nr + cnt - n ? NR - n % NR : j * nr + cnt - n;
                for (i = 0; i < len; i++) d[i] = val;
            }
    }
}

static size_t lc__xfer_bytes(const lc__sm_plan *p, int D, int F) {
    return sizeof(double) * (size_t)p->Mq +
           sizeof(float) * ((size_t)p->Dp * p->Mq + (size_t)p->Mq + lc__pk_floats(&p->pk, p->tq, D, F));
}

// Key block it of a tile (rows [r0, r0 + nr)): [*c0, *c0 + *nc); 0 past the
// last. The teacher alone goes left to right in blocks of tk; with the student
// the window blocks come first, then (sinks, S > 0) the sink keys before them,
// [0, min(S, r0 - tq)), in blocks of up to tk, then the keys between left to
// right (student: sinks + 1, 0 for the teacher alone).
static int lc__sm_block(const lc__sm_plan *p, int student, int r0, int nr, int it, int *c0,
                        int *nc) {
    int end = r0 + nr, base = 0;
    if (student) {
        int nw = r0 > 0 ? 2 : 1, ns, nsb;
        if (it < nw) {
            *c0 = it == 0 ? r0 : r0 - p->tq;
            *nc = it == 0 ? nr : p->tq;
            return 1;
        }
        it -= nw;
        end = r0 - p->tq;
        ns = student - 1 < end ? student - 1 : end;
        nsb = ns > 0 ? (ns + p->tk - 1) / p->tk : 0;
        if (it < nsb) {
            *c0 = it * p->tk;
            *nc = ns - *c0 < p->tk ? ns - *c0 : p->tk;
            return 1;
        }
        if (ns > 0) {
            it -= nsb;
            base = ns;
        }
    }
    *c0 = base + it * p->tk;
    if (*c0 >= end) return 0;
    *nc = end - *c0 < p->tk ? end - *c0 : p->tk;
    return 1;
}

// The student's rows of a tile, from the window part kept at its point
// (yw: Y^T then, mw, lw) and the linear state of the keys before the window:
//   y = (gamma Yw + lambda phiq S) / (gamma lw + lambda phiq.z)
static void lc__xfer_rows(const lc__sm_plan *p, const lc__prims *P, const lc__xfer *xs,
                          const float *yw, const float *mw, const double *lw, float *ws, int b,
                          int H, int h0, int r0, int nr, int N, int D) {
    const int F = xs->F, c = r0 / p->tq, nch = (N + p->tq - 1) / p->tq;
    const size_t sz = (size_t)F * D + F, hst = xs->local ? sz : (size_t)nch * sz;
    float *pa = ws, *pbuf = ws + (size_t)lc__pk_round(p->tq, p->pk.mr) * F;
    int j, i;
    for (j = 0; j < p->hs; j++) {
        size_t bh = (size_t)b * H + h0 + j, row0 = xs->local ? (size_t)j * p->tq : bh * N + r0;
        float gam = lc__sigmoid(xs->wf[h0 + j]), lam = xs->affine ? 1.0f - gam : 1.0f;
        float *y0 = xs->y + row0 * D;
        const float *phiq0 = xs->phiq + (bh * N + r0) * F;
        const float *S = xs->states + (xs->local ? 0 : ((size_t)b * H + h0) * nch + c) * sz + j * hst;
        const float *z = S + (size_t)F * D;
        lc__pk_tpose(&p->pk, y0, (size_t)D, yw + j * nr, (size_t)p->Mq, D, nr);
        if (c >= 2) {  // y0 = lambda phiq S + gamma y0 (local: S^T kept)
            size_t sb, ldb;
            const float *pb = lc__pk_bop(&p->pk, pbuf, S, xs->local ? (size_t)F : (size_t)D,
                                         xs->local, D, F, &sb, &ldb);
            lc__pk_a(&p->pk, pa, phiq0, (size_t)F, 0, nr, F);
            lc__pk_fit(&p->pk, y0, (size_t)D, pa, (size_t)p->pk.mr * F, nr, pb, sb, ldb, D, F,
                       lam, gam);
        }
        for (i = 0; i < nr; i++) {
            size_t row = row0 + i;
            int n = j * nr + i;
            double sum = (double)gam * lw[n];
            float dn;
            if (c >= 2) sum += (double)(lam * P->dot(phiq0 + (size_t)i * F, z, F));
            dn = (float)sum;
            P->scal(y0 + (size_t)i * D, (c >= 2 ? 1.0f : gam) / dn, D);
            xs->den[row] = dn;
            xs->m[row] = mw[n];
        }
    }
}

// K and V of one kv head packed once for all its tiles (lc__softmax_tiles),
// when all of them take at most LC__SM_KV_MAX floats (a copy of k and v: a
// long prefill keeps packing block by block rather than doubling its cache):
// K as panels of mr keys (kc = D), V^T as panels of mr of its D rows over all
// N keys (kc = N), so a block of keys [c0, c0 + nc) is K's panels from the one
// holding c0 and V^T's columns from c0.
#define LC__SM_KV_MAX ((size_t)16 << 20)
static size_t lc__sm_kv_floats(const lc__sm_plan *p, int N, int D) {
    return (size_t)lc__pk_round(N, p->pk.mr) * D + (size_t)p->Dp * N;
}

// Tile `tile` of heads [h0, h0 + hs) of batch b (kv head g), with the
// student's rows when xs; kv: that head's packed K and V, or NULL (packed here
// block by block); own: its scratch (p->bytes, plus xs->bytes with xs), or
// NULL to allocate it. Returns 0 if that failed.
static int lc__softmax_fwd_tile(const lc__sm_plan *p, const lc__prims *P, float *y, float *lse,
                                const float *q, const float *k_bg, const float *v_bg,
                                const float *kv, int b, int H, int h0, int tile, int N, int D,
                                float scale, const lc__xfer *xs, char *own) {
    const lc__pk *pk = &p->pk;
    const int MR = pk->mr, NR = pk->nr, Mq = p->Mq;
    int r0 = tile * p->tq, nr = N - r0 < p->tq ? N - r0 : p->tq, M = p->hs * nr;
    int c0, nc, it, n, j, kk, nwin = r0 > 0 ? 2 : 1;
    int nsk = xs && r0 > p->tq ? (xs->sinks < r0 - p->tq ? xs->sinks : r0 - p->tq) : 0;
    char *mem = own ? own : (char *)LOLCATS_MALLOC(p->bytes + (xs ? xs->bytes : 0));
    float *pq, *pkc, *st, *pv, *yt, *m, *mn, *al, *bs, *yw = NULL, *mw = NULL, *xws = NULL;
    double *l, *lw = NULL;
    if (!mem) return 0;
    l = (double *)mem;
    if (xs) lw = l + Mq;
    pq = (float *)(l + (xs ? 2 * Mq : Mq));
    pkc = pq + (size_t)Mq * D;
    st = pkc + (size_t)p->tka * D;
    pv = st + (size_t)Mq * p->tka;
    yt = pv + (size_t)p->Dp * p->tk;
    m = yt + (size_t)p->Dp * Mq;
    mn = m + Mq;
    al = mn + Mq;
    bs = al + Mq;
    if (xs) {
        yw = bs + Mq;
        mw = yw + (size_t)p->Dp * Mq;
        xws = mw + Mq;
    }
    if (nr % NR == 0) {  // each head's rows fill whole panels: packed in place
        for (j = 0; j < p->hs; j++)
            lc__pk_b(pk, pq + (size_t)j * nr * D, q + (((size_t)b * H + h0 + j) * N + r0) * D,
                     (size_t)D, 1, nr, D);
    } else {  // the stacked Q rows, through yt as a staging area
        for (j = 0; j < p->hs; j++)
            memcpy(yt + (size_t)j * nr * D, q + (((size_t)b * H + h0 + j) * N + r0) * D,
                   sizeof(float) * (size_t)nr * D);
        lc__pk_b(pk, pq, yt, (size_t)D, 1, M, D);
    }
    memset(yt, 0, sizeof(float) * (size_t)p->Dp * Mq);
    for (n = 0; n < Mq; n++) { m[n] = -INFINITY; l[n] = 0; }
    nwin += (nsk + p->tk - 1) / p->tk;  // the student's window: sink blocks too
    for (it = 0; lc__sm_block(p, xs ? xs->sinks + 1 : 0, r0, nr, it, &c0, &nc); it++) {
        int grew = 0, off = kv ? c0 % MR : 0;  // S^T rows [off, off + nc) are the block's
        const float *ka = pkc, *va = pv;
        size_t vs = (size_t)MR * nc;
        float *sb = st + (size_t)off * NR;
        if (kv) {
            ka = kv + (size_t)(c0 - off) * D;
            va = kv + (size_t)lc__pk_round(N, MR) * D + (size_t)c0 * MR;
            vs = (size_t)MR * N;
        } else {
            lc__pk_a(pk, pkc, k_bg + (size_t)c0 * D, (size_t)D, 0, nc, D);
            lc__pk_a(pk, pv, v_bg + (size_t)c0 * D, (size_t)D, 1, D, nc);
        }
        for (j = 0; j * NR < M; j++)  // S^T: panel j of queries holds off + nc rows of NR
            for (kk = 0; kk < off + nc && c0 - off + kk <= r0 + lc__sm_last(p, nr, M, j); kk += MR)
                pk->ukr(D, ka + (size_t)kk * D, pq + (size_t)j * NR * D, (size_t)NR,
                        st + (size_t)j * NR * p->tka + (size_t)kk * NR, (size_t)NR, scale, 0.0f);
        // (a key panel after every query of panel j is left out: the mask below covers it)
        lc__sm_mask(p, sb, r0, nr, c0, nc, -INFINITY);  // keys after a query
        memcpy(mn, m, sizeof(float) * (size_t)Mq);
        for (j = 0; j * NR < M; j++) P->colmax(sb + (size_t)j * NR * p->tka, mn + j * NR, nc, NR);
        for (n = 0; n < Mq; n++) al[n] = mn[n] > m[n] ? m[n] - mn[n] : 0.0f;
        P->exp_sum(al, al, 1.0f, 0.0f, Mq);  // exp(m - mn): 1 where the maximum held
        for (n = 0; n < Mq; n++) {  // a query's first block: l = 0, nothing to rescale
            grew |= al[n] < 1.0f && l[n] > 0;
            l[n] *= (double)al[n];
            bs[n] = 0.0f;
        }
        memcpy(m, mn, sizeof(float) * (size_t)Mq);
        if (grew) P->colmul(yt, al, D, Mq);
        for (j = 0; j * NR < M; j++)
            P->colexp(sb + (size_t)j * NR * p->tka, m + j * NR, bs + j * NR, nc, NR);
        lc__sm_mask(p, sb, r0, nr, c0, nc, 0.0f);  // the vector exp of -inf is not 0
        for (n = 0; n < M; n++) l[n] += (double)bs[n];
        for (j = 0; j * NR < M; j++) {  // Y^T += V^T P^T, panel j's keys up to its last query
            int kc = r0 + lc__sm_last(p, nr, M, j) + 1 - c0;
            kc = kc < nc ? kc : nc;
            if (kc > 0)
                lc__pk_mm(pk, yt + (size_t)j * NR, (size_t)Mq, va, vs, D,
                          sb + (size_t)j * NR * p->tka, (size_t)NR * p->tka, NR, kc, 1.0f, 1.0f);
        }
        if (xs && it == nwin - 1) {  // the window blocks are done: the student's part
            memcpy(yw, yt, sizeof(float) * (size_t)p->Dp * Mq);
            memcpy(mw, m, sizeof(float) * (size_t)Mq);
            memcpy(lw, l, sizeof(double) * (size_t)Mq);
        }
    }
    if (xs) lc__xfer_rows(p, P, xs, yw, mw, lw, xws, b, H, h0, r0, nr, N, D);
    for (j = 0; j < p->hs; j++)  // Y^T columns of head j to its rows of y
        lc__pk_tpose(pk, y + (((size_t)b * H + h0 + j) * N + r0) * D, (size_t)D, yt + j * nr,
                     (size_t)Mq, D, nr);
    for (n = 0; n < M; n++) {
        int h = h0 + n / nr, i = r0 + n % nr;
        P->scal(y + (((size_t)b * H + h) * N + i) * D, (float)(1.0 / l[n]), D);
        if (lse) lse[((size_t)b * H + h) * N + i] = m[n] + (float)log(l[n]);
    }
    if (!own) LOLCATS_FREE(mem);
    return 1;
}

// Every tile of the fast form, K and V of each kv head packed once for all
// its tiles when there is room (else block by block in each tile); a tile
// without scratch gets the teacher's rows by the reference. Returns the
// number of such tiles.
static float *lc__sm_kv_pack(const lc__sm_plan *pl, const float *k, const float *v, int B, int Hk,
                             int N, int D) {
    size_t kvn = lc__sm_kv_floats(pl, N, D);
    float *kv = kvn * B * Hk <= LC__SM_KV_MAX
                    ? (float *)LOLCATS_MALLOC(sizeof(float) * kvn * (size_t)B * Hk)
                    : NULL;
    if (kv) {
        int bg;
        lc_advise_hugepages(kv, sizeof(float) * kvn * (size_t)B * Hk);
        LC__OMP_FOR
        for (bg = 0; bg < B * Hk; bg++) {
            float *kv_bg = kv + (size_t)bg * kvn;
            lc__pk_a(&pl->pk, kv_bg, k + (size_t)bg * N * D, (size_t)D, 0, N, D);
            lc__pk_a(&pl->pk, kv_bg + (size_t)lc__pk_round(N, pl->pk.mr) * D,
                     v + (size_t)bg * N * D, (size_t)D, 1, D, N);
        }
    }
    return kv;
}

static int lc__softmax_tiles(const lc__sm_plan *pl, const lc__prims *P, float *y, float *lse,
                             const float *q, const float *k, const float *v, int B, int H,
                             int Hk, int N, int D, const lc__xfer *xs) {
    float scale = lc__attn_scale(D);
    int groups = B * Hk * pl->ngrp, t, failed = 0;
    size_t kvn = lc__sm_kv_floats(pl, N, D);
    float *kv = lc__sm_kv_pack(pl, k, v, B, Hk, N, D);
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : failed)
#endif
    for (t = 0; t < groups * pl->ntile; t++) {  // the longest (last) tiles first
        int tile = pl->ntile - 1 - t / groups, gr = t % groups, b = gr / (Hk * pl->ngrp);
        int g = gr / pl->ngrp % Hk, h0 = g * (H / Hk) + gr % pl->ngrp * pl->hs, j;
        const float *k_bg = k + ((size_t)b * Hk + g) * N * D;
        const float *v_bg = v + ((size_t)b * Hk + g) * N * D;
        const float *kv_bg = kv ? kv + ((size_t)b * Hk + g) * kvn : NULL;
        if (lc__softmax_fwd_tile(pl, P, y, lse, q, k_bg, v_bg, kv_bg, b, H, h0, tile, N, D, scale,
                                 xs, NULL))
            continue;
        failed++;
        for (j = 0; j < pl->hs; j++) {  // no scratch: this tile's rows by the reference
            size_t bhj = (size_t)b * H + h0 + j;
            int r0 = tile * pl->tq, r1 = r0 + pl->tq < N ? r0 + pl->tq : N;
            lc__softmax_rows(P, y + bhj * N * D, lse ? lse + bhj * N : NULL, q + bhj * N * D,
                             k_bg, v_bg, r0, r1, D, scale);
        }
    }
    LOLCATS_FREE(kv);
    return failed;
}
#endif  // !LOLCATS_NO_FAST

// >>hybrid-chunk
// Floats of one head's part of work; cuts it into b when base is given.
static size_t lc__hyb_head_floats(int D, int F, lc__hyb_buf *b, float *base) {
    const int R = LC__HYB_ROWS, NK = LC__HYB_NK, NL = LC__HYB_NL;
    const int prod[14][3] = {{R, NK, D}, {R, NL, F}, {R, D, NK}, {R, D, F}, {F, D, 256},
                             {NK, D, R}, {R, F, NL}, {NL, F, R}, {R, F, D}, {NL, F, D},
                             {NL, D, F}, {F, D, R}, {R, D, NL}, {NL, D, R}};
    size_t ws = 0, off = 0;
    int i;
    for (i = 0; i < 14; i++) {
        size_t n = lc__mm_ws_floats(prod[i][0], prod[i][1], prod[i][2]);
        ws = n > ws ? n : ws;
    }
#define LC__HYB_CUT(field, n)                      \
    if (b) b->field = base + off;                  \
    off += ((size_t)(n) + 15) / 16 * 16;
    LC__HYB_CUT(S, (size_t)F * D)
    LC__HYB_CUT(z, F)
    LC__HYB_CUT(sc, R * NK)
    LC__HYB_CUT(wt, R * NK)
    LC__HYB_CUT(d1, R * NK)
    LC__HYB_CUT(lc, R * NL)
    LC__HYB_CUT(t, (size_t)R * F)
    LC__HYB_CUT(gv, (size_t)R * D)
    LC__HYB_CUT(ws, ws)
#undef LC__HYB_CUT
    return off;
}

#if !defined(LOLCATS_NO_FAST)  // to >>kernels

// End of the chunk that starts at row r0 (boundaries on the tk block grid).
static int lc__hyb_chunk_end(const lc_hybrid_cfg *cfg, int N, int r0) {
    int w = cfg->window, off = cfg->variant == LOLCATS_WINDOW_SW ? 0 : ((N + w - 1) / w) * w - N;
    int r1 = r0 + LC__HYB_ROWS - (r0 + off) % LC__HYB_ROWS;
    return r1 < N ? r1 : N;
}

// Start of the chunk that ends at row r1 (the reverse of lc__hyb_chunk_end).
static int lc__hyb_chunk_start(const lc_hybrid_cfg *cfg, int N, int r1) {
    int w = cfg->window, off = cfg->variant == LOLCATS_WINDOW_SW ? 0 : ((N + w - 1) / w) * w - N;
    int r0 = r1 - 1 - (r1 - 1 + off) % LC__HYB_ROWS;
    return r0 > 0 ? r0 : 0;
}

static int lc__hyb_jl(const lc_hybrid_cfg *cfg, int N, int i) {
    int j0, both;
    lc__hybrid_range(cfg, N, i, &j0, &both);
    return both ? i + 1 : j0;
}

// Sinks (cfg->sinks = S > 0, see >>sinks) in the chunked form: a chunk's block
// gains the nsc = min(S, kw0) sink keys before it as leading columns, so the
// block's nc = nsc + nk columns are the keys [0, nsc) then [kw0, r1), key j of
// the second range at column j + off (off = nsc - kw0). Row i's sink keys are
// columns [0, min(S, j0_i)) (when S > kw0, nsc = kw0 and the two ranges meet),
// its window columns [j0_i + off, i + off]. Linear keys (in the state and in
// the chunk) start at S. S = 0: nsc = 0, every product as without sinks.
static int lc__hyb_nsc(const lc_hybrid_cfg *cfg, int kw0) {
    return cfg->sinks < kw0 ? cfg->sinks : kw0;
}

// Does every chunk's block with its sink columns fit the buffers (nc <= NK)?
static int lc__hyb_sinks_fit(const lc_hybrid_cfg *cfg, int N) {
    int r0, r1, kw0, both;
    if (cfg->sinks <= 0) return 1;
    for (r0 = 0; r0 < N; r0 = r1) {
        r1 = lc__hyb_chunk_end(cfg, N, r0);
        lc__hybrid_range(cfg, N, r0, &kw0, &both);
        if (lc__hyb_nsc(cfg, kw0) + r1 - kw0 > LC__HYB_NK) return 0;
    }
    return 1;
}

// The window part's max and exp over a row's columns [0, ns) and [c0, c1)
// (fast: by the vector max / exp; y = gamma exp(s - m) = exp(s - (m - lg))).
static float lc__hyb_win_max(const lc__prims *P, const float *sc_i, int ns, int c0, int c1) {
    float mx = P->max(sc_i + c0, 1.0f, c1 - c0), ms;
    if (ns <= 0) return mx;
    ms = P->max(sc_i, 1.0f, ns);
    return ms > mx ? ms : mx;
}

// S += phiK_[j0,j1)^T V_[j0,j1), z += sum_j phiK_j
static void lc__hyb_advance(const lc_ctx *ctx, const lc__prims *P, lc__hyb_buf *hb,
                            const float *phik_bh, const float *v_bg, int j0, int j1, int D,
                            int F) {
    int j;
    if (j1 <= j0) return;
    lc__mm(ctx, hb->S, phik_bh + (size_t)j0 * F, v_bg + (size_t)j0 * D, F, D, j1 - j0, 1, 0, 1.0f,
           1.0f, (size_t)D, (size_t)F, (size_t)D, hb->ws);
    for (j = j0; j < j1; j++) P->axpy(hb->z, 1.0f, phik_bh + (size_t)j * F, F);
}

// out = a x / dn (fast: times the reciprocal)
static void lc__hyb_scaled(const lc__prims *P, int fast, float *out, const float *x, float a,
                           float dn, int n) {
    int d;
    if (fast) {
        memcpy(out, x, sizeof(float) * (size_t)n);
        P->scal(out, a / dn, n);
    } else {
        for (d = 0; d < n; d++) out[d] = a * x[d] / dn;
    }
}

// >>gate in the chunked form (lg = log_g, else NULL): within a chunk every
// weight is exp(cb_i - cb_j), cb the log-space prefix sums relative to the row
// before the chunk (lc__gate_cum); the state is kept decayed to that row.
#define LC__GATE_CB (LC__HYB_NK + LC__HYB_NL + 2 * LC__HYB_ROWS)  // positions of a chunk's span

// cb[t - lo] = sum_{p<s<=t} lg_s (t > p), -sum_{t<s<=p} lg_s (t < p), t in [lo, hi).
static void lc__gate_cum(const float *lg, int lo, int p, int hi, double *cb) {
    double acc = 0;
    int t;
    LOLCATS_ASSERT(hi - lo <= LC__GATE_CB);
    for (t = p + 1; t < hi; t++) {
        acc += (double)lg[t];
        if (t >= lo) cb[t - lo] = acc;
    }
    if (p >= lo && p < hi) cb[p - lo] = 0;
    for (acc = 0, t = p - 1; t >= lo; t--) {
        acc -= (double)lg[t + 1];
        if (t < hi) cb[t - lo] = acc;
    }
}

// The gated state from the row before chunk p0 to the row before chunk p1
// (S, z scaled by the decay over [p0, p1)), then keys [j0, j1) with their
// weights exp(cb_j) (cb relative to p1 - 1, from position lo), by blocks of
// ROWS through the t buffer.
static void lc__gate_advance(const lc_ctx *ctx, const lc__prims *P, lc__hyb_buf *hb,
                             const float *lg, const float *phik_bh, const float *v_bg, int p0,
                             int p1, int j0, int j1, const double *cb, int lo, int D, int F) {
    double acc = 0;
    int t, j, n, jj;
    for (t = p0; t < p1; t++) acc += (double)lg[t];
    if (acc != 0) {
        float dec = (float)exp(acc);
        P->scal(hb->S, dec, F * D);
        P->scal(hb->z, dec, F);
    }
    for (j = j0; j < j1; j += n) {
        n = j1 - j < LC__HYB_ROWS ? j1 - j : LC__HYB_ROWS;
        for (jj = 0; jj < n; jj++) {
            float *t_j = hb->t + (size_t)jj * F;
            memcpy(t_j, phik_bh + (size_t)(j + jj) * F, sizeof(float) * (size_t)F);
            P->scal(t_j, (float)exp(-cb[j + jj - lo]), F);
            P->axpy(hb->z, 1.0f, t_j, F);
        }
        lc__mm(ctx, hb->S, hb->t, v_bg + (size_t)j * D, F, D, n, 1, 0, 1.0f, 1.0f, (size_t)D,
               (size_t)F, (size_t)D, hb->ws);
    }
}

// One query head of the chunked forms (lc__hyb_fwd_chunk_g, lc__hyb_bwd_chunk_g):
// its rows of the inputs, its factors, and the state the chunk loop carries.
typedef struct lc__hyb_head {
    const lc_ctx *ctx;
    const lc__prims *P;
    const lc_hybrid_args *x;
    lc__hyb_buf hb;
    const float *q_bh, *k_bg, *v_bg;  // (N,D) rows of head bh, its kv head g
    const float *phiq_bh, *phik_bh;   // (N,F)
    const float *lg;                  // (N) >>gate: log g of the head, or NULL
    float gam, lam, scale;
    int bh, h, N, D, F, S0, fast;
    int jst, p0, lo;                  // keys [0, jst) are in the state; >>gate: it is
    double cb[LC__GATE_CB];           // decayed to row p0 - 1, cb[t - lo] (lc__gate_cum)
} lc__hyb_head;

// Head bh of x: row pointers, gamma = sigmoid(wf_h), lambda, its slice of work,
// and the state S, z set to the carried one (kv_state, k_state) or zero.
static void lc__hyb_head_init(lc__hyb_head *hd, const lc_ctx *ctx, const lc_hybrid_args *x,
                              float *work_bh, int bh) {
    int N = x->N, D = x->D, F = x->F, b = bh / x->H, h = bh % x->H, g = h / (x->H / x->Hk);
    hd->ctx = ctx;
    hd->P = lc__prims_for(ctx);
    hd->x = x;
    hd->q_bh = x->q + (size_t)bh * N * D;
    hd->k_bg = x->k + ((size_t)b * x->Hk + g) * N * D;
    hd->v_bg = x->v + ((size_t)b * x->Hk + g) * N * D;
    hd->phiq_bh = x->phiq + (size_t)bh * N * F;
    hd->phik_bh = x->phik + (size_t)bh * N * F;
    hd->lg = x->log_g ? x->log_g + (size_t)bh * N : NULL;
    hd->gam = lc__sigmoid(x->wf[h]);
    hd->lam = x->cfg->affine ? 1.0f - hd->gam : 1.0f;
    hd->scale = lc__attn_scale(D);
    hd->bh = bh;
    hd->h = h;
    hd->N = N;
    hd->D = D;
    hd->F = F;
    hd->S0 = hd->jst = x->cfg->sinks;
    hd->fast = lc__kern_for(ctx)->float_sums;
    hd->p0 = hd->lo = 0;
    lc__hyb_head_floats(D, F, &hd->hb, work_bh);
    if (x->kv_state) {
        memcpy(hd->hb.S, x->kv_state + (size_t)bh * F * D, sizeof(float) * (size_t)F * D);
        memcpy(hd->hb.z, x->k_state + (size_t)bh * F, sizeof(float) * (size_t)F);
    } else {
        memset(hd->hb.S, 0, sizeof(float) * (size_t)F * D);
        memset(hd->hb.z, 0, sizeof(float) * (size_t)F);
    }
}

// A chunk: rows [r0, r1), window keys [kw0, r1) after nsc sink columns (key j
// in column j + off), linear keys [jA, jB) (sinks never are).
typedef struct lc__hyb_chunk {
    int r0, r1, nr, kw0, jA, jB, nk, nl, nsc, nc, off;
} lc__hyb_chunk;

static void lc__hyb_chunk_at(lc__hyb_chunk *c, const lc_hybrid_cfg *cfg, int N, int r0,
                             int sink_cols) {
    int both, S0 = cfg->sinks;
    c->r0 = r0;
    c->r1 = lc__hyb_chunk_end(cfg, N, r0);
    c->nr = c->r1 - r0;
    lc__hybrid_range(cfg, N, r0, &c->kw0, &both);
    c->jA = both ? r0 + 1 : c->kw0;
    c->jB = lc__hyb_jl(cfg, N, c->r1 - 1);
    c->jA = c->jA > S0 ? c->jA : S0;
    c->jB = c->jB > c->jA ? c->jB : c->jA;
    c->nk = c->r1 - c->kw0;
    c->nl = c->jB - c->jA;
    c->nsc = sink_cols ? lc__hyb_nsc(cfg, c->kw0) : 0;
    c->nc = c->nsc + c->nk;
    c->off = c->nsc - c->kw0;
    LOLCATS_ASSERT(c->nc <= LC__HYB_NK && c->nl <= LC__HYB_NL);
}

// The state up to chunk c: keys [jst, jA) join it; >>gate: decayed to row
// r0 - 1, cb relative to that row.
static void lc__hyb_head_advance(lc__hyb_head *hd, const lc__hyb_chunk *c) {
    if (hd->lg) {
        hd->lo = hd->jst < c->jA ? hd->jst : c->jA;
        if (c->r0 < hd->lo) hd->lo = c->r0;  // sinks: the rows before the first linear key
        lc__gate_cum(hd->lg, hd->lo, c->r0 - 1, c->r1, hd->cb);
        lc__gate_advance(hd->ctx, hd->P, &hd->hb, hd->lg, hd->phik_bh, hd->v_bg, hd->p0, c->r0,
                         hd->jst, c->jA, hd->cb, hd->lo, hd->D, hd->F);
        hd->p0 = c->r0;
    } else {
        lc__hyb_advance(hd->ctx, hd->P, &hd->hb, hd->phik_bh, hd->v_bg, hd->jst, c->jA, hd->D,
                        hd->F);
    }
    hd->jst = c->jA > hd->jst ? c->jA : hd->jst;
}

// Whether the rows read the state (keys before jA or a carried state).
static int lc__hyb_head_state(const lc__hyb_head *hd) {
    return hd->jst > hd->S0 || hd->x->kv_state;
}

// sc = scale Q_c K^T over the window keys (the sink keys first), lc = phiQ_c
// phiK_[jA,jB)^T.
static void lc__hyb_chunk_scores(lc__hyb_head *hd, const lc__hyb_chunk *c, int window) {
    lc__hyb_buf *hb = &hd->hb;
    const float *q_c = hd->q_bh + (size_t)c->r0 * hd->D;
    int D = hd->D, F = hd->F;
    if (window)
        lc__mm(hd->ctx, hb->sc + c->nsc, q_c, hd->k_bg + (size_t)c->kw0 * D, c->nr, c->nk, D, 0,
               1, hd->scale, 0.0f, (size_t)c->nc, (size_t)D, (size_t)D, hb->ws);
    if (c->nsc > 0)  // the sink keys before the block
        lc__mm(hd->ctx, hb->sc, q_c, hd->k_bg, c->nr, c->nsc, D, 0, 1, hd->scale, 0.0f,
               (size_t)c->nc, (size_t)D, (size_t)D, hb->ws);
    if (c->nl > 0)
        lc__mm(hd->ctx, hb->lc, hd->phiq_bh + (size_t)c->r0 * F, hd->phik_bh + (size_t)c->jA * F,
               c->nr, c->nl, F, 0, 1, 1.0f, 0.0f, (size_t)c->nl, (size_t)F, (size_t)F, hb->ws);
}

// Row i's weights wt_i: gamma exp(s - m) on its window keys, lambda lc (times
// exp(cb_i - cb_j), >>gate) on its linear keys of the chunk; m_i = the window
// max, returns their sum.
static double lc__hyb_fwd_row(lc__hyb_head *hd, const lc__hyb_chunk *c, int i, float lgam,
                              float *m_i) {
    const lc_hybrid_cfg *cfg = hd->x->cfg;
    const lc__prims *P = hd->P;
    int ii = i - c->r0, j0, jl, ns, c0, c1, j, k, both;  // columns: sinks [0, ns), window [c0, c1)
    const float *sc_i = hd->hb.sc + (size_t)ii * c->nc, *lc_i = hd->hb.lc + (size_t)ii * c->nl;
    float *wt_i = hd->hb.wt + (size_t)ii * c->nc, mx = -INFINITY, gam = hd->gam;
    double sum = 0;
    lc__hybrid_range(cfg, hd->N, i, &j0, &both);
    jl = both ? i + 1 : j0;
    ns = lc__hyb_nsink(cfg, j0);
    c0 = j0 + c->off;
    c1 = i + 1 + c->off;
    for (k = ns; k < c0; k++) wt_i[k] = 0;
    if (hd->fast) {  // gamma exp(s - m) = exp(s - (m - log gamma)), by the vector exp
        mx = lc__hyb_win_max(P, sc_i, ns, c0, c1);
        sum = P->exp_sum(wt_i + c0, sc_i + c0, 1.0f, mx - lgam, c1 - c0);
        if (ns > 0) sum += P->exp_sum(wt_i, sc_i, 1.0f, mx - lgam, ns);
    } else {
        LC__HYB_WIN_FOR(k, ns, c0, c1 - 1) mx = sc_i[k] > mx ? sc_i[k] : mx;
        LC__HYB_WIN_FOR(k, ns, c0, c1 - 1) {
            float e = gam * expf(sc_i[k] - mx);
            wt_i[k] = e;
            sum += (double)e;
        }
    }
    for (k = c1; k < c->nc; k++) wt_i[k] = 0;
    for (j = c->jA; j < jl; j++) {
        float l = hd->lam * lc_i[j - c->jA];
        if (hd->lg) l *= (float)exp(hd->cb[i - hd->lo] - hd->cb[j - hd->lo]);  // >>gate
        wt_i[j + c->off] += l;
        sum += (double)l;
    }
    *m_i = mx;
    return sum;
}

// Y_c = wt V (window keys) + lambda phiQ_c S, den = dsum + lambda phiQ_c.z,
// Y_c /= den; >>gate: phiQ_i times exp(cb_i), the state decayed to row i.
static void lc__hyb_fwd_out(lc__hyb_head *hd, const lc__hyb_chunk *c, const double *dsum) {
    const lc__prims *P = hd->P;
    lc__hyb_buf *hb = &hd->hb;
    int D = hd->D, F = hd->F, i, state = lc__hyb_head_state(hd);
    float *y_c = hd->x->y + ((size_t)hd->bh * hd->N + c->r0) * D;
    lc__mm(hd->ctx, y_c, hb->wt + c->nsc, hd->v_bg + (size_t)c->kw0 * D, c->nr, D, c->nk, 0, 0,
           1.0f, 0.0f, (size_t)D, (size_t)c->nc, (size_t)D, hb->ws);
    if (c->nsc > 0)
        lc__mm(hd->ctx, y_c, hb->wt, hd->v_bg, c->nr, D, c->nsc, 0, 0, 1.0f, 1.0f, (size_t)D,
               (size_t)c->nc, (size_t)D, hb->ws);
    if (hd->lg && state)  // >>gate: rows read the state decayed to them
        for (i = c->r0; i < c->r1; i++) {
            float *t_i = hb->t + (size_t)(i - c->r0) * F;
            memcpy(t_i, hd->phiq_bh + (size_t)i * F, sizeof(float) * (size_t)F);
            P->scal(t_i, (float)exp(hd->cb[i - hd->lo]), F);
        }
    if (state)
        lc__mm(hd->ctx, y_c, hd->lg ? hb->t : hd->phiq_bh + (size_t)c->r0 * F, hb->S, c->nr, D, F,
               0, 0, hd->lam, 1.0f, (size_t)D, (size_t)F, (size_t)D, hb->ws);
    for (i = c->r0; i < c->r1; i++) {
        size_t row = (size_t)hd->bh * hd->N + i;
        float *y_bhi = hd->x->y + row * D, dn;
        int d;
        double sum = dsum[i - c->r0];
        if (state)
            sum += (double)(hd->lam * P->dot(hd->lg ? hb->t + (size_t)(i - c->r0) * F
                                                    : hd->x->phiq + row * F, hb->z, F));
        dn = (float)sum;
        if (hd->fast)  // times the reciprocal
            P->scal(y_bhi, 1.0f / dn, D);
        else
            for (d = 0; d < D; d++) y_bhi[d] /= dn;
        hd->x->den[row] = dn;
    }
}

// The chunked forward (lc__hybrid_fwd_chunk; >>gate with x->log_g): per head,
// chunk by chunk, the state brought up to the chunk, the scores, each row's
// weights, then the rows of y and den.
static void lc__hyb_fwd_chunk_g(const lc_ctx *ctx, const lc_hybrid_args *x) {
    size_t hs = lc__hyb_head_floats(x->D, x->F, NULL, NULL);
    int bh;
    LC__FAST(ctx);
    LC__OMP_FOR
    for (bh = 0; bh < x->B * x->H; bh++) {
        lc__hyb_head hd;
        lc__hyb_chunk c;
        double dsum[LC__HYB_ROWS];
        float lgam;
        int r0, i;
        lc__hyb_head_init(&hd, ctx, x, x->work + (size_t)bh * hs, bh);
        lgam = logf(hd.gam);
        for (r0 = 0; r0 < x->N; r0 = c.r1) {
            lc__hyb_chunk_at(&c, x->cfg, x->N, r0, 1);
            lc__hyb_head_advance(&hd, &c);
            lc__hyb_chunk_scores(&hd, &c, 1);
            for (i = c.r0; i < c.r1; i++)
                dsum[i - c.r0] = lc__hyb_fwd_row(&hd, &c, i, lgam, x->m + (size_t)bh * x->N + i);
            lc__hyb_fwd_out(&hd, &c, dsum);
        }
    }
}

// The positional form of the ungated entries.
static lc_hybrid_args lc__hyb_args(float *work, const float *q, const float *k, const float *v,
                                   const float *phiq, const float *phik, const float *wf,
                                   const float *kv_state, const float *k_state, int B, int H,
                                   int Hk, int N, int D, int F, const lc_hybrid_cfg *cfg) {
    lc_hybrid_args x = lc_hybrid_args_default();
    x.work = work;
    x.q = q; x.k = k; x.v = v; x.phiq = phiq; x.phik = phik; x.wf = wf;
    x.kv_state = kv_state; x.k_state = k_state;
    x.B = B; x.H = H; x.Hk = Hk; x.N = N; x.D = D; x.F = F; x.cfg = cfg;
    return x;
}

static void lc__hybrid_fwd_chunk(const lc_ctx *ctx, float *y, float *m, float *den, float *work,
                                 const float *q, const float *k, const float *v,
                                 const float *phiq, const float *phik, const float *wf,
                                 const float *kv_state, const float *k_state, int B, int H,
                                 int Hk, int N, int D, int F, const lc_hybrid_cfg *cfg) {
    lc_hybrid_args x = lc__hyb_args(work, q, k, v, phiq, phik, wf, kv_state, k_state, B, H, Hk,
                                    N, D, F, cfg);
    x.y = y; x.m = m; x.den = den;
    lc__hyb_fwd_chunk_g(ctx, &x);
}

// Chunked backward (no da), the same chunks as lc__hybrid_fwd_chunk.
// Forward sweep, per chunk with gv = dy/den, cd = -(dy.y)/den:
//   d1 = Gv V_[kw0,r1)^T; dW = d1 + cd on every key of the row
//   window: ds = dW E (+ the amax share of dm = -sum ds on the arg-max keys),
//           dQ += scale ds K, dK += scale ds^T Q, dgamma += dW exp(s - m)
//   linear in chunk: dL = lambda dW, dphiQ += dL phiK, dphiK += dL^T phiQ,
//           dlambda += dW L
//   dV += wt^T Gv;  state: T = Gv S^T, dphiQ += lambda (T + cd z),
//           dlambda += phiQ.T + cd phiQ.z
// Reverse sweep over chunks: G = lambda sum phiQ^T Gv and c = lambda sum cd phiQ
// over the chunks after the keys [jA, jA_next) give dphiK += V G^T + c and
// dV += phiK G; what is left at the start reaches the carried state.
// Without dQ, dK, dV (attention transfer) the window part is skipped: y is
// unchanged when gamma and lambda are scaled together (a ratio of two sums,
// each linear in them), so gamma dL/dgamma + lambda dL/dlambda = 0 and
//   dwf = dL/dgamma gamma (1 - gamma) = -dlambda (1 - gamma)
// (affine: the same, as dL/dgamma gains -dlambda and lambda + gamma = 1).
// d log_g in the chunked form. Every linear weight is exp(b_i - b_j) (b the
// prefix sums of log g; the carried state's b_j = 0), so with r_ij = dW_ij L_ij
// d b_s = T_s - C_s (T_s = sum_j r_sj, a row's total, C_s = sum_i r_is, a
// key's) and d log_g_t = sum_{s>=t} (T_s - C_s). The forward sweep gives T
// and the keys' in-chunk share Cf: per chunk they go into the ring ev by
// position, and positions t < jB (final) get - sum_{s<t} (T_s - Cf_s), at the
// end + the total; the reverse sweep gives the state's share Cr key by key in
// descending order: - sum_{s>=t} Cr_s directly.
static void lc__gate_r(double *tr_i, double *cf_j, double r) {
    *tr_i += r;
    *cf_j += r;
}

static void lc__gate_events(double *ev, const double *tr, int r0, int r1, const double *cf,
                            int jA, int jB, int tc) {
    int t;
    LOLCATS_ASSERT(r1 - tc <= LC__GATE_CB && jA >= tc);
    for (t = r0; t < r1; t++) ev[t % LC__GATE_CB] += tr[t - r0];
    for (t = jA; t < jB; t++) ev[t % LC__GATE_CB] -= cf[t - jA];
}

static void lc__gate_flush(double *ev, float *dlg, int *tc, int upto, double *pre) {
    int t;
    for (t = *tc; t < upto; t++) {
        dlg[t] -= (float)*pre;
        *pre += ev[t % LC__GATE_CB];
        ev[t % LC__GATE_CB] = 0;
    }
    if (upto > *tc) *tc = upto;
}

// Reverse sweep, keys [j0, j1) of the gated state gradient G, c (S, z of hb,
// decayed to the row cb is relative to): key j reads them times
// u_j = exp(-cb_j); dphiK_j += u_j (G v_j + c), dV_j += u_j phiK_j G, and
// its share Cr_j = phiK_j . (its dphiK_j) into d log_g (descending keys).
static void lc__gate_rkeys(const lc_ctx *ctx, const lc__prims *P, lc__hyb_buf *hb,
                           const float *phik_bh, const float *v_bg, float *dphik_bh, float *dv_bg,
                           float *dlg, int j0, int j1, const double *cb, int lo, int D, int F,
                           double *csr) {
    int jh, n, jj;
    for (jh = j1; jh > j0; jh -= n) {
        int j;
        n = jh - j0 < LC__HYB_ROWS ? jh - j0 : LC__HYB_ROWS;
        j = jh - n;
        if (dv_bg) {
            for (jj = 0; jj < n; jj++) {
                float *t_j = hb->t + (size_t)jj * F;
                memcpy(t_j, phik_bh + (size_t)(j + jj) * F, sizeof(float) * (size_t)F);
                P->scal(t_j, (float)exp(-cb[j + jj - lo]), F);
            }
            lc__mm(ctx, dv_bg + (size_t)j * D, hb->t, hb->S, n, D, F, 0, 0, 1.0f, 1.0f, (size_t)D,
                   (size_t)F, (size_t)D, hb->ws);
        }
        lc__mm(ctx, hb->t, v_bg + (size_t)j * D, hb->S, n, F, D, 0, 1, 1.0f, 0.0f, (size_t)F,
               (size_t)D, (size_t)D, hb->ws);
        for (jj = n - 1; jj >= 0; jj--) {
            float *t_j = hb->t + (size_t)jj * F;
            P->axpy(t_j, 1.0f, hb->z, F);
            P->scal(t_j, (float)exp(-cb[j + jj - lo]), F);
            P->axpy(dphik_bh + (size_t)(j + jj) * F, 1.0f, t_j, F);
            *csr += (double)P->dot(phik_bh + (size_t)(j + jj) * F, t_j, F);
            if (dlg) dlg[j + jj] -= (float)*csr;
        }
    }
}

// The backward's head (lc__hyb_bwd_chunk_g): lc__hyb_head, its gradient rows,
// the sums for dwf and the >>gate bookkeeping of d log_g (the note above
// lc__gate_r).
typedef struct lc__hyb_ghead {
    lc__hyb_head hd;
    float *dk_bg, *dv_bg;          // (N,D) or NULL
    float *dphik_bh, *dlg;         // (N,F), (N) or NULL
    int win;                       // the window part is wanted (dq, dk or dv)
    float cd[LC__HYB_ROWS];        // -(dy.y)/den of the chunk's rows
    unsigned char tie[LC__HYB_NK];
    double dgam, dlam;
    double pre, csr, ev[LC__GATE_CB], tr[LC__HYB_ROWS], cf[LC__HYB_NL];
    int tc;
} lc__hyb_ghead;

static void lc__hyb_ghead_init(lc__hyb_ghead *gh, const lc_ctx *ctx, const lc_hybrid_args *x,
                               float *work_bh, int bh) {
    int N = x->N, g = (bh % x->H) / (x->H / x->Hk);
    size_t kv = ((size_t)(bh / x->H) * x->Hk + g) * N * x->D;
    lc__hyb_head_init(&gh->hd, ctx, x, work_bh, bh);
    gh->dk_bg = x->dk ? x->dk + kv : NULL;
    gh->dv_bg = x->dv ? x->dv + kv : NULL;
    gh->dphik_bh = x->dphik + (size_t)bh * N * x->F;
    gh->dlg = x->log_g && x->dlog_g ? x->dlog_g + (size_t)bh * N : NULL;
    gh->win = x->dq || x->dk || x->dv;
    gh->dgam = gh->dlam = gh->pre = gh->csr = 0;
    gh->tc = 0;
    if (gh->dlg) memset(gh->ev, 0, sizeof gh->ev);
}

// Per row of chunk c: cd_i = -(dy_i.y_i)/den_i, gv_i = dy_i/den_i; the scores
// (lc__hyb_chunk_scores), d1 = Gv V^T on the sink and window keys.
static void lc__hyb_bwd_prep(lc__hyb_ghead *gh, const lc__hyb_chunk *c) {
    lc__hyb_head *hd = &gh->hd;
    const lc_hybrid_args *x = hd->x;
    lc__hyb_buf *hb = &hd->hb;
    int D = hd->D, i;
    for (i = c->r0; i < c->r1; i++) {
        size_t row = (size_t)hd->bh * hd->N + i;
        const float *dy_bhi = x->dy + row * D;
        float dn = x->den[row], *gv_i = hb->gv + (size_t)(i - c->r0) * D;
        gh->cd[i - c->r0] = -hd->P->dot(dy_bhi, x->y + row * D, D) / dn;
        lc__hyb_scaled(hd->P, hd->fast, gv_i, dy_bhi, 1.0f, dn, D);
    }
    lc__hyb_chunk_scores(hd, c, gh->win);
    if (c->nsc > 0)
        lc__mm(hd->ctx, hb->d1, hb->gv, hd->v_bg, c->nr, c->nsc, D, 0, 1, 1.0f, 0.0f,
               (size_t)c->nc, (size_t)D, (size_t)D, hb->ws);
    if (gh->win || c->nl > 0)
        lc__mm(hd->ctx, hb->d1 + c->nsc, hb->gv, hd->v_bg + (size_t)c->kw0 * D, c->nr, c->nk, D,
               0, 1, 1.0f, 0.0f, (size_t)c->nc, (size_t)D, (size_t)D, hb->ws);
}

// Row i's linear keys of the chunk, dW = d1 + cd: dlambda += dW L, lc_i
// becomes dL = lambda dW (>>gate: times exp(cb_i - cb_j); r = dW lambda L
// into the row and key totals); with wt_i, lambda L joins the row's weights.
static void lc__hyb_bwd_lin_row(lc__hyb_ghead *gh, const lc__hyb_chunk *c, int i, float *wt_i) {
    lc__hyb_head *hd = &gh->hd;
    int ii = i - c->r0, jl = lc__hyb_jl(hd->x->cfg, hd->N, i), j;
    float *lc_i = hd->hb.lc + (size_t)ii * c->nl, lam = hd->lam;
    const float *d1_i = hd->hb.d1 + (size_t)ii * c->nc;
    for (j = c->jA; j < jl; j++) {
        float dW = d1_i[j + c->off] + gh->cd[ii];
        float e = hd->lg ? (float)exp(hd->cb[i - hd->lo] - hd->cb[j - hd->lo]) : 1.0f;
        float l = lc_i[j - c->jA] * e;
        gh->dlam += (double)dW * (double)l;
        if (wt_i) wt_i[j + c->off] += lam * l;
        lc_i[j - c->jA] = lam * dW * e;
        if (hd->lg) lc__gate_r(gh->tr + ii, gh->cf + (j - c->jA), (double)dW * (double)(lam * l));
    }
    for (j = jl > c->jA ? jl : c->jA; j < c->jB; j++) lc_i[j - c->jA] = 0;
}

// Row i's window keys (columns as in the forward), E = exp(s - m): wt =
// gamma E, sc becomes ds = dW wt (+ the amax share of dm = -sum ds on the
// arg-max keys), dgamma += dW E; then its linear keys.
static void lc__hyb_bwd_win_row(lc__hyb_ghead *gh, const lc__hyb_chunk *c, int i) {
    lc__hyb_head *hd = &gh->hd;
    const lc__prims *P = hd->P;
    int ii = i - c->r0, j0, both, nmax = 0, ns, c0, c1, k;
    float *sc_i = hd->hb.sc + (size_t)ii * c->nc, *wt_i = hd->hb.wt + (size_t)ii * c->nc;
    float mx = -INFINITY;
    const float *d1_i = hd->hb.d1 + (size_t)ii * c->nc;
    double dm = 0;
    lc__hybrid_range(hd->x->cfg, hd->N, i, &j0, &both);
    ns = lc__hyb_nsink(hd->x->cfg, j0);
    c0 = j0 + c->off;
    c1 = i + 1 + c->off;
    if (hd->fast) {  // exp(s - m) by the vector exp, into wt first
        mx = lc__hyb_win_max(P, sc_i, ns, c0, c1);
        P->exp_sum(wt_i + c0, sc_i + c0, 1.0f, mx, c1 - c0);
        if (ns > 0) P->exp_sum(wt_i, sc_i, 1.0f, mx, ns);
    } else {
        LC__HYB_WIN_FOR(k, ns, c0, c1 - 1) mx = sc_i[k] > mx ? sc_i[k] : mx;
    }
    for (k = ns; k < c0; k++) wt_i[k] = sc_i[k] = 0;
    LC__HYB_WIN_FOR(k, ns, c0, c1 - 1) {
        float s = sc_i[k], ex = hd->fast ? wt_i[k] : expf(s - mx), e = hd->gam * ex;
        float dW = d1_i[k] + gh->cd[ii], t = dW * e;
        gh->tie[k] = s == mx;
        nmax += s == mx;
        dm -= (double)t;
        gh->dgam += (double)dW * (double)ex;
        wt_i[k] = e;
        sc_i[k] = t;
    }
    for (k = c1; k < c->nc; k++) wt_i[k] = sc_i[k] = 0;
    if (dm != 0 && nmax > 0) {  // m = amax over the window: ties share dm
        float share = (float)(dm / nmax);
        LC__HYB_WIN_FOR(k, ns, c0, c1 - 1)
            if (gh->tie[k]) sc_i[k] += share;
    }
    lc__hyb_bwd_lin_row(gh, c, i, wt_i);
}

// The chunk's products: dQ += scale ds K, dK += scale ds^T Q, dV += wt^T Gv
// on the window keys, then the sink columns (keys [0, nsc)); dphiQ += dL
// phiK, dphiK += dL^T phiQ on its linear keys.
static void lc__hyb_bwd_chunk_grads(lc__hyb_ghead *gh, const lc__hyb_chunk *c) {
    lc__hyb_head *hd = &gh->hd;
    const lc_ctx *ctx = hd->ctx;
    lc__hyb_buf *hb = &hd->hb;
    int D = hd->D, F = hd->F, nr = c->nr, nk = c->nk, nsc = c->nsc;
    size_t nc = (size_t)c->nc, row0 = (size_t)hd->bh * hd->N + (size_t)c->r0;
    float *dq_c = hd->x->dq ? hd->x->dq + row0 * D : NULL;
    const float *q_c = hd->q_bh + (size_t)c->r0 * D;
    if (dq_c)
        lc__mm(ctx, dq_c, hb->sc + nsc, hd->k_bg + (size_t)c->kw0 * D, nr, D, nk, 0, 0, hd->scale,
               1.0f, (size_t)D, nc, (size_t)D, hb->ws);
    if (gh->dk_bg)
        lc__mm(ctx, gh->dk_bg + (size_t)c->kw0 * D, hb->sc + nsc, q_c, nk, D, nr, 1, 0, hd->scale,
               1.0f, (size_t)D, nc, (size_t)D, hb->ws);
    if (gh->dv_bg)
        lc__mm(ctx, gh->dv_bg + (size_t)c->kw0 * D, hb->wt + nsc, hb->gv, nk, D, nr, 1, 0, 1.0f,
               1.0f, (size_t)D, nc, (size_t)D, hb->ws);
    if (nsc > 0) {  // the sink columns: keys [0, nsc)
        if (dq_c)
            lc__mm(ctx, dq_c, hb->sc, hd->k_bg, nr, D, nsc, 0, 0, hd->scale, 1.0f, (size_t)D, nc,
                   (size_t)D, hb->ws);
        if (gh->dk_bg)
            lc__mm(ctx, gh->dk_bg, hb->sc, q_c, nsc, D, nr, 1, 0, hd->scale, 1.0f, (size_t)D, nc,
                   (size_t)D, hb->ws);
        if (gh->dv_bg)
            lc__mm(ctx, gh->dv_bg, hb->wt, hb->gv, nsc, D, nr, 1, 0, 1.0f, 1.0f, (size_t)D, nc,
                   (size_t)D, hb->ws);
    }
    if (c->nl > 0) {
        lc__mm(ctx, hd->x->dphiq + row0 * F, hb->lc, hd->phik_bh + (size_t)c->jA * F, nr, F,
               c->nl, 0, 0, 1.0f, 1.0f, (size_t)F, (size_t)c->nl, (size_t)F, hb->ws);
        lc__mm(ctx, gh->dphik_bh + (size_t)c->jA * F, hb->lc, hd->phiq_bh + (size_t)c->r0 * F,
               c->nl, F, nr, 1, 0, 1.0f, 1.0f, (size_t)F, (size_t)c->nl, (size_t)F, hb->ws);
    }
}

// The rows read lambda phiQ S and lambda phiQ.z: with T = Gv S^T, dphiQ_i +=
// lambda (T_i + cd_i z), dlambda += phiQ_i.T_i + cd_i phiQ_i.z (>>gate: both
// times exp(cb_i), and lambda exp(cb_i) (...) into the row's total).
static void lc__hyb_bwd_state_rows(lc__hyb_ghead *gh, const lc__hyb_chunk *c) {
    lc__hyb_head *hd = &gh->hd;
    const lc__prims *P = hd->P;
    lc__hyb_buf *hb = &hd->hb;
    int F = hd->F, i;
    lc__mm(hd->ctx, hb->t, hb->gv, hb->S, c->nr, F, hd->D, 0, 1, 1.0f, 0.0f, (size_t)F,
           (size_t)hd->D, (size_t)hd->D, hb->ws);
    for (i = c->r0; i < c->r1; i++) {
        size_t row = (size_t)hd->bh * hd->N + i;
        const float *phiq_bhi = hd->x->phiq + row * F, *t_i = hb->t + (size_t)(i - c->r0) * F;
        float *dphiq_bhi = hd->x->dphiq + row * F, c_i = gh->cd[i - c->r0];
        float e = hd->lg ? (float)exp(hd->cb[i - hd->lo]) : 1.0f, le = hd->lam * e;  // >>gate
        double val = (double)P->dot(phiq_bhi, t_i, F) +
                     (double)c_i * (double)P->dot(phiq_bhi, hb->z, F);
        int k;
        gh->dlam += (double)e * val;
        if (hd->lg) gh->tr[i - c->r0] += (double)le * val;
        if (hd->fast) {
            P->axpy(dphiq_bhi, le, t_i, F);
            P->axpy(dphiq_bhi, le * c_i, hb->z, F);
        } else {
            for (k = 0; k < F; k++) dphiq_bhi[k] += le * (t_i[k] + c_i * hb->z[k]);
        }
    }
}

// The forward sweep: per chunk, the state brought up to it (as in the
// forward), its rows' gradients through its window and linear keys and
// through the state; >>gate: its row and key totals, positions before jB final.
static void lc__hyb_bwd_forward(lc__hyb_ghead *gh) {
    lc__hyb_head *hd = &gh->hd;
    lc__hyb_chunk c;
    int r0, i;
    for (r0 = 0; r0 < hd->N; r0 = c.r1) {
        lc__hyb_chunk_at(&c, hd->x->cfg, hd->N, r0, gh->win);  // sink columns: see lc__hyb_nsc
        lc__hyb_head_advance(hd, &c);
        if (hd->lg) {
            memset(gh->tr, 0, sizeof gh->tr);
            memset(gh->cf, 0, sizeof gh->cf);
        }
        lc__hyb_bwd_prep(gh, &c);
        for (i = c.r0; i < c.r1; i++) {
            if (gh->win)
                lc__hyb_bwd_win_row(gh, &c, i);
            else  // linear keys of the chunk only
                lc__hyb_bwd_lin_row(gh, &c, i, NULL);
        }
        lc__hyb_bwd_chunk_grads(gh, &c);
        if (lc__hyb_head_state(hd)) lc__hyb_bwd_state_rows(gh, &c);
        if (gh->dlg) {
            lc__gate_events(gh->ev, gh->tr, c.r0, c.r1, gh->cf, c.jA, c.jB, gh->tc);
            lc__gate_flush(gh->ev, gh->dlg, &gh->tc, c.jB, &gh->pre);
        }
    }
    if (gh->dlg) lc__gate_flush(gh->ev, gh->dlg, &gh->tc, hd->N, &gh->pre);  // the rest
}

// Keys [j0, j1) read G, c (S, z of hb): dphiK_j += G v_j + c, dV_j += phiK_j G;
// >>gate: G is decayed to row p, the keys' weights exp(-cb_j) with cb over
// [lo, hi) relative to p (lc__gate_rkeys).
static void lc__hyb_bwd_keys(lc__hyb_ghead *gh, int j0, int j1, int lo, int p, int hi) {
    lc__hyb_head *hd = &gh->hd;
    lc__hyb_buf *hb = &hd->hb;
    int D = hd->D, F = hd->F, j;
    if (hd->lg) {
        lc__gate_cum(hd->lg, lo, p, hi, hd->cb);
        lc__gate_rkeys(hd->ctx, hd->P, hb, hd->phik_bh, hd->v_bg, gh->dphik_bh, gh->dv_bg, gh->dlg,
                       j0, j1, hd->cb, lo, D, F, &gh->csr);
        return;
    }
    for (j = j0; j < j1; j += LC__HYB_NL) {
        int n = j1 - j < LC__HYB_NL ? j1 - j : LC__HYB_NL, jj;
        lc__mm(hd->ctx, gh->dphik_bh + (size_t)j * F, hd->v_bg + (size_t)j * D, hb->S, n, F, D, 0,
               1, 1.0f, 1.0f, (size_t)F, (size_t)D, (size_t)D, hb->ws);
        for (jj = j; jj < j + n; jj++) hd->P->axpy(gh->dphik_bh + (size_t)jj * F, 1.0f, hb->z, F);
        if (gh->dv_bg)
            lc__mm(hd->ctx, gh->dv_bg + (size_t)j * D, hd->phik_bh + (size_t)j * F, hb->S, n, D, F,
                   0, 0, 1.0f, 1.0f, (size_t)D, (size_t)F, (size_t)D, hb->ws);
    }
}

// Rows [r0, r1) join G += lambda phiQ^T Gv, c += lambda cd phiQ (>>gate: G,
// c first decayed from row r1 - 1 to row r0 - 1, row i's terms by its decay).
static void lc__hyb_bwd_rows(lc__hyb_ghead *gh, int r0, int r1) {
    lc__hyb_head *hd = &gh->hd;
    const lc_hybrid_args *x = hd->x;
    const lc__prims *P = hd->P;
    lc__hyb_buf *hb = &hd->hb;
    int D = hd->D, F = hd->F, i;
    double acc = 0;
    if (hd->lg) {
        for (i = r0; i < r1; i++) acc += (double)hd->lg[i];
        P->scal(hb->S, (float)exp(acc), F * D);
        P->scal(hb->z, (float)exp(acc), F);
        acc = 0;
    }
    for (i = r0; i < r1; i++) {
        size_t row = (size_t)hd->bh * hd->N + i;
        const float *dy_bhi = x->dy + row * D;
        float dn = x->den[row], *gv_i = hb->gv + (size_t)(i - r0) * D, e = 1.0f;
        float c_i = -P->dot(dy_bhi, x->y + row * D, D) / dn;
        if (hd->lg) e = (float)exp(acc += (double)hd->lg[i]);  // >>gate: row i's decay
        lc__hyb_scaled(P, hd->fast, gv_i, dy_bhi, hd->lam * e, dn, D);
        P->axpy(hb->z, hd->lam * e * c_i, x->phiq + row * F, F);
    }
    lc__mm(hd->ctx, hb->S, hd->phiq_bh + (size_t)r0 * F, hb->gv, F, D, r1 - r0, 1, 0, 1.0f, 1.0f,
           (size_t)D, (size_t)F, (size_t)D, hb->ws);
}

// The reverse sweep, S becoming G and z c: per chunk from the last, the keys
// the later chunks read (from jl of its first row to next) take their share,
// then its rows join G; what is left goes to the keys before the first
// chunk's jl (sinks never are linear keys).
static void lc__hyb_bwd_reverse(lc__hyb_ghead *gh) {
    lc__hyb_head *hd = &gh->hd;
    const lc_hybrid_cfg *cfg = hd->x->cfg;
    int N = hd->N, S0 = hd->S0, next = N, r0, r1;
    memset(hd->hb.S, 0, sizeof(float) * (size_t)hd->F * hd->D);
    memset(hd->hb.z, 0, sizeof(float) * (size_t)hd->F);
    for (r1 = N; r1 > 0; r1 = r0) {
        int jA;
        r0 = lc__hyb_chunk_start(cfg, N, r1);
        jA = lc__hyb_jl(cfg, N, r0);
        if (r1 == N) next = jA;  // keys from jl(first row of the last chunk) on: no state
        lc__hyb_bwd_keys(gh, jA > S0 ? jA : S0, next, jA < r0 ? jA : r0, r1 - 1, r1);
        next = jA < next ? jA : next;
        lc__hyb_bwd_rows(gh, r0, r1);
    }
    lc__hyb_bwd_keys(gh, S0, next, 0, -1, next);  // >>gate: G is decayed to row -1
}

// >>gate: every position's d log_g gains the total; the carried state's
// gradient; dwf from dgamma and dlambda (the note above lc__gate_r).
static void lc__hyb_bwd_finish(lc__hyb_ghead *gh) {
    lc__hyb_head *hd = &gh->hd;
    const lc_hybrid_args *x = hd->x;
    size_t bh = (size_t)hd->bh;
    int t, F = hd->F, D = hd->D;
    float gam = hd->gam;
    if (gh->dlg)
        for (t = 0; t < hd->N; t++) gh->dlg[t] += (float)gh->pre;
    if (x->kv_state) {
        if (x->dkv_state)
            for (t = 0; t < F * D; t++) x->dkv_state[bh * F * D + t] += hd->hb.S[t];
        if (x->dk_state)
            for (t = 0; t < F; t++) x->dk_state[bh * F + t] += hd->hb.z[t];
    }
    if (x->dwf && !gh->win) {
        x->dwf[hd->h] += (float)(-gh->dlam * (1.0 - (double)gam));
    } else if (x->dwf) {
        if (x->cfg->affine) gh->dgam -= gh->dlam;
        x->dwf[hd->h] += (float)(gh->dgam * (double)gam * (1.0 - (double)gam));
    }
}

// The chunked backward (no da): per head, the forward sweep, the reverse
// sweep, the sums. One task per kv head, batches in order inside it: dwf (per
// query head) is shared by every batch element, so it must not be split
// across tasks.
static void lc__hyb_bwd_chunk_g(const lc_ctx *ctx, const lc_hybrid_args *x) {
    size_t hs = lc__hyb_head_floats(x->D, x->F, NULL, NULL);
    int gg;
    LC__FAST(ctx);
    LC__OMP_FOR
    for (gg = 0; gg < x->Hk; gg++) {
        int bb, r, rep = x->H / x->Hk;
        for (bb = 0; bb < x->B; bb++)
            for (r = 0; r < rep; r++) {
                int bh = bb * x->H + gg * rep + r;
                lc__hyb_ghead gh;
                lc__hyb_ghead_init(&gh, ctx, x, x->work + (size_t)bh * hs, bh);
                lc__hyb_bwd_forward(&gh);
                lc__hyb_bwd_reverse(&gh);
                lc__hyb_bwd_finish(&gh);
            }
    }
}

static void lc__hybrid_bwd_chunk(const lc_ctx *ctx, float *dq, float *dk, float *dv,
                                 float *dphiq, float *dphik, float *dwf, float *dkv_state,
                                 float *dk_state, float *work, const float *dy, const float *y,
                                 const float *den, const float *q, const float *k,
                                 const float *v, const float *phiq, const float *phik,
                                 const float *wf, const float *kv_state, const float *k_state,
                                 int B, int H, int Hk, int N, int D, int F,
                                 const lc_hybrid_cfg *cfg) {
    lc_hybrid_args x = lc__hyb_args(work, q, k, v, phiq, phik, wf, kv_state, k_state, B, H, Hk,
                                    N, D, F, cfg);
    x.dq = dq; x.dk = dk; x.dv = dv; x.dphiq = dphiq; x.dphik = dphik; x.dwf = dwf;
    x.dkv_state = dkv_state; x.dk_state = dk_state; x.dy = dy;
    x.y = (float *)y;  // read only here (output fields of the forward)
    x.den = (float *)den;
    lc__hyb_bwd_chunk_g(ctx, &x);
}

// The gated entries (>>gate, lc_hybrid_args with log_g; sinks as in the ungated form).
static void lc__gate_fwd_chunk(const lc_ctx *ctx, const lc_hybrid_args *x) {
    lc__hyb_fwd_chunk_g(ctx, x);
}

static void lc__gate_bwd_chunk(const lc_ctx *ctx, const lc_hybrid_args *x) {
    lc__hyb_bwd_chunk_g(ctx, x);
}

// >>transfer-fused
// Attention transfer's pair of attentions on one q, k, v. Fast form (tk
// windows of w = LC__HYB_ROWS that tile the sequence, the teacher's tiles of
// that many rows): the linear states before each window block, then the
// teacher's tiles, which give the student its window part and rows
// (lc__xfer); the backward reads the stored states instead of recomputing
// them. Otherwise the two calls it stands for.
static int lc__xfer_fast(const lc_ctx *ctx, lc__sm_plan *pl, int H, int Hk, int N, int D,
                         const lc_hybrid_cfg *cfg) {
    return cfg->variant == LOLCATS_WINDOW_TK && cfg->window == LC__HYB_ROWS &&
           N > LC__HYB_ROWS && N % LC__HYB_ROWS == 0 && H % Hk == 0 &&
           lc__sm_plan_for(ctx, pl, H / Hk, N, D) && pl->tq == LC__HYB_ROWS;
}

// The hybrid's per-head part, then the larger of: the states (or the MSE
// step's P_c, p_c) per head and block; the MSE step's own calls' y, dy, m, den.
static void lc__xfer_init(lc__xfer *xs, const lc_ctx *ctx, const lc__sm_plan *pl, float *y,
                          float *m, float *den, const float *phiq, const float *wf,
                          const float *states, int D, int F, int local, const lc_hybrid_cfg *cfg) {
    xs->ctx = ctx;
    xs->y = y;
    xs->m = m;
    xs->den = den;
    xs->phiq = phiq;
    xs->wf = wf;
    xs->states = states;
    xs->F = F;
    xs->affine = cfg->affine;
    xs->local = local;
    xs->sinks = cfg->sinks;
    xs->bytes = lc__xfer_bytes(pl, D, F);
}

// Per head and block c of w rows: S, z of the keys [0, (c - 1) w).
static void lc__xfer_states(const lc_ctx *ctx, float *states, float *work, const float *phik,
                            const float *v, int B, int H, int Hk, int N, int D, int F, int S0) {
    const lc__prims *P = lc__prims_for(ctx);
    const int w = LC__HYB_ROWS, nch = N / w;
    size_t hs = lc__hyb_head_floats(D, F, NULL, NULL), sz = (size_t)F * D + F;
    int bh;
    LC__OMP_FOR
    for (bh = 0; bh < B * H; bh++) {
        int b = bh / H, g = bh % H / (H / Hk), c;
        float *s = states + (size_t)bh * nch * sz;
        lc__hyb_buf hb;
        lc__hyb_head_floats(D, F, &hb, work + (size_t)bh * hs);
        memset(s, 0, sizeof(float) * sz * 2);
        for (c = 2; c < nch; c++) {
            float *s_c = s + (size_t)c * sz;
            memcpy(s_c, s_c - sz, sizeof(float) * sz);
            hb.S = s_c;
            hb.z = s_c + (size_t)F * D;
            lc__hyb_advance(ctx, P, &hb, phik + (size_t)bh * N * F,  // sinks: never in S, z
                            v + ((size_t)b * Hk + g) * N * D, (c - 2) * w > S0 ? (c - 2) * w : S0,
                            (c - 1) * w, D, F);
        }
    }
}

// gv = a dy / den and cd = -(dy.y) / den for the w rows of block c of head bh.
static void lc__xfer_rows_gv(const lc__prims *P, float *gv, float *cd, const float *dy,
                             const float *y, const float *den, size_t bh, int N, int c, int D,
                             float a) {
    int i, w = LC__HYB_ROWS;
    for (i = 0; i < w; i++) {
        size_t row = bh * N + (size_t)c * w + i;
        cd[i] = -P->dot(dy + row * D, y + row * D, D) / den[row];
        lc__hyb_scaled(P, 1, gv + (size_t)i * D, dy + row * D, a, den[row], D);
    }
}

// The fast form's backward: the linear part only (the window-free gradient of
// lc__hybrid_bwd_chunk), the states S_c, z_c of the forward read, one reverse
// sweep per head over blocks c of w rows, with gv = dy/den, cd = -(dy.y)/den:
//   G += lambda phiQ^T Gv, zg += lambda sum cd phiq  over block c + 2's rows
//        (read again two blocks after their first use: still in cache), so G,
//        zg hold the rows of blocks c + 2 on, which read block c's keys;
//   dphiK_c += V_c G^T + zg;
//   T = Gv S_c^T: dphiQ_c += lambda (T + cd z_c), dlambda += phiq.T + cd phiq.z_c
// and dwf = -dlambda (1 - gamma). One task per query head, batches in order.
static void lc__xfer_bwd(const lc_ctx *ctx, float *dphiq, float *dphik, float *dwf,
                         float *work, const float *states, const float *dy, const float *y,
                         const float *den, const float *v, const float *phiq, const float *wf,
                         int B, int H, int Hk, int N, int D, int F, const lc_hybrid_cfg *cfg) {
    const lc__prims *P = lc__prims_for(ctx);
    const int w = LC__HYB_ROWS, nch = N / w;
    size_t hs = lc__hyb_head_floats(D, F, NULL, NULL), sz = (size_t)F * D + F;
    int h;
    LC__OMP_FOR
    for (h = 0; h < H; h++) {
        float gam = lc__sigmoid(wf[h]), lam = cfg->affine ? 1.0f - gam : 1.0f;
        float cd[LC__HYB_ROWS];
        double dlam = 0;
        int b, c, i;
        lc__hyb_buf hb;
        lc__hyb_head_floats(D, F, &hb, work + (size_t)h * hs);
        for (b = 0; b < B; b++) {
            size_t bh = (size_t)b * H + h;
            const float *v_bg = v + ((size_t)b * Hk + h / (H / Hk)) * N * D;
            const float *phiq_bh = phiq + bh * N * F;
            float *dphik_bh = dphik + bh * N * F;
            memset(hb.S, 0, sizeof(float) * (size_t)F * D);
            memset(hb.z, 0, sizeof(float) * (size_t)F);
            for (c = nch - 1; c >= 0; c--) {
                const float *S = states + (bh * nch + c) * sz, *z = S + (size_t)F * D;
                if (c + 2 < nch) {
                    const float *phiq_c2 = phiq_bh + (size_t)(c + 2) * w * F;
                    lc__xfer_rows_gv(P, hb.gv, cd, dy, y, den, bh, N, c + 2, D, lam);
                    lc__mm(ctx, hb.S, phiq_c2, hb.gv, F, D, w, 1, 0, 1.0f, 1.0f, (size_t)D,
                           (size_t)F, (size_t)D, hb.ws);
                    for (i = 0; i < w; i++) P->axpy(hb.z, lam * cd[i], phiq_c2 + (size_t)i * F, F);
                    int lo = cfg->sinks > c * w ? cfg->sinks - c * w : 0;  // sinks: not linear keys
                    if (lo < w)
                        lc__mm(ctx, dphik_bh + ((size_t)c * w + lo) * F,
                               v_bg + ((size_t)c * w + lo) * D, hb.S, w - lo, F, D, 0, 1, 1.0f,
                               1.0f, (size_t)F, (size_t)D, (size_t)D, hb.ws);
                    for (i = lo; i < w; i++)
                        P->axpy(dphik_bh + ((size_t)c * w + i) * F, 1.0f, hb.z, F);
                }
                if (c < 2) continue;  // no keys before the window
                lc__xfer_rows_gv(P, hb.gv, cd, dy, y, den, bh, N, c, D, 1.0f);
                lc__mm(ctx, hb.t, hb.gv, S, w, F, D, 0, 1, 1.0f, 0.0f, (size_t)F, (size_t)D,
                       (size_t)D, hb.ws);
                for (i = 0; i < w; i++) {
                    size_t row = bh * N + (size_t)c * w + i;
                    const float *phiq_i = phiq + row * F, *t_i = hb.t + (size_t)i * F;
                    dlam += (double)P->dot(phiq_i, t_i, F) +
                            (double)cd[i] * (double)P->dot(phiq_i, z, F);
                    P->axpy(dphiq + row * F, lam, t_i, F);
                    P->axpy(dphiq + row * F, lam * cd[i], z, F);
                }
            }
        }
        if (dwf) dwf[h] += (float)(-dlam * (1.0 - (double)gam));
    }
}

// First tile of segment s of nseg of a group's tiles, by their cost: tile c
// about c + 1 key blocks of the teacher's and 2 of the student's, and a
// segment's start the 1/2 block of bringing the state up to it.
static int lc__xmse_seg(int nch, int nseg, int s) {
    double tot = 0, acc = 0;
    int c;
    if (s <= 0) return 0;
    if (s >= nseg) return nch;
    for (c = 0; c < nch; c++) tot += c + 3;
    for (c = 0; c < nch; c++) {
        if (acc + 0.5 * c >= tot * s / nseg) return c;
        acc += c + 3;
    }
    return nch;
}

static size_t lc__xmse_floats(const lc__sm_plan *p, int D, int F) {
    int R = D > F ? D : F;
    R = R > p->tq ? R : p->tq;
    return (size_t)p->hs * ((size_t)F * D + F + (size_t)p->tq * (D + 2)) +
           (size_t)p->tq * ((size_t)D + 1 + F) + lc__pk_floats(&p->pk, R, R, R);
}

// Task t's tiles: segment t % nseg of a group's; 0 if it had no scratch. A
// segment brings the state up to its first tile as the one before it did, so
// the results do not depend on nseg.
static int lc__xmse_task(const lc__xmse *x, int t) {
    const lc__sm_plan *p = x->pl;
    const lc__pk *pk = &p->pk;
    const lc__prims *P = x->P;
    const int H = x->H, Hk = x->Hk, N = x->N, D = x->D, F = x->F, w = p->tq, hs = p->hs;
    const int gr = t / x->nseg, c0 = lc__xmse_seg(N / w, x->nseg, t % x->nseg);
    const int c1 = lc__xmse_seg(N / w, x->nseg, t % x->nseg + 1);
    const int b = gr / (Hk * p->ngrp), g = gr / p->ngrp % Hk, h0 = g * (H / Hk) + gr % p->ngrp * hs;
    const int R = (D > F ? D : F) > w ? (D > F ? D : F) : w, MR = pk->mr;
    const size_t sz = (size_t)F * D + F, tb = p->bytes + x->xs.bytes, bg = (size_t)b * Hk + g;
    const float *k_bg = x->k + bg * N * D, *v_bg = x->v + bg * N * D;
    char *mem = (char *)LOLCATS_MALLOC(tb + sizeof(float) * lc__xmse_floats(p, D, F));
    float *S, *ys, *ms, *dens, *gv, *cd, *ut, *pa, *pb;
    lc__xfer xs = x->xs;
    int c, j, i;
    if (!mem) return 0;
    S = (float *)(mem + tb);
    ys = S + (size_t)hs * sz;
    ms = ys + (size_t)hs * w * D;
    dens = ms + (size_t)hs * w;
    gv = dens + (size_t)hs * w;
    cd = gv + (size_t)w * D;
    ut = cd + w;
    pa = ut + (size_t)w * F;
    pb = pa + (size_t)lc__pk_round(R, MR) * R;
    memset(S, 0, sizeof(float) * (size_t)hs * sz);
    xs.y = ys;
    xs.m = ms;
    xs.den = dens;
    xs.states = S;
    xs.local = 1;
    for (c = 0; c < c1; c++) {
        size_t sb, ldb;
        const float *bop;
        // block c - 2's keys join the state: S^T += V^T phik, z += sum phik
        // (sinks: keys [lo, (c - 1) w), lo = max((c - 2) w, S))
        int lo = c >= 2 && xs.sinks > (c - 2) * w ? xs.sinks : (c - 2) * w, nk = (c - 1) * w - lo;
        if (c >= 2 && nk > 0) {
            const float *va = pa;  // V^T of the block as packed for the teacher, or here
            size_t sa = (size_t)MR * nk;
            if (x->kv) {
                va = x->kv + bg * x->kvn + (size_t)lc__pk_round(N, MR) * D + (size_t)lo * MR;
                sa = (size_t)MR * N;
            } else {
                lc__pk_a(pk, pa, v_bg + (size_t)lo * D, (size_t)D, 1, D, nk);
            }
            for (j = 0; j < hs; j++) {
                const float *phik0 = x->phik + (((size_t)b * H + h0 + j) * N + (size_t)lo) * F;
                bop = lc__pk_bop(pk, pb, phik0, (size_t)F, 0, F, nk, &sb, &ldb);
                lc__pk_fit(pk, S + j * sz, (size_t)F, va, sa, D, bop, sb, ldb, F, nk, 1.0f, 1.0f);
                for (i = 0; i < nk; i++)
                    P->axpy(S + j * sz + (size_t)F * D, 1.0f, phik0 + (size_t)i * F, F);
            }
        }
        if (c < c0) continue;
        lc__softmax_fwd_tile(p, P, x->yt, x->lse, x->q, k_bg, v_bg,
                             x->kv ? x->kv + bg * x->kvn : NULL, b, H, h0, c, N, D,
                             lc__attn_scale(D), &xs, mem);
        for (j = 0; j < hs; j++) {
            size_t bh = (size_t)b * H + h0 + j, row0 = bh * N + (size_t)c * w;
            float gam = lc__sigmoid(xs.wf[h0 + j]), lam = xs.affine ? 1.0f - gam : 1.0f;
            const float *yj = ys + (size_t)j * w * D, *ytj = x->yt + row0 * D;
            const float *phiq0 = xs.phiq + row0 * F, *Sj = S + j * sz, *zj = Sj + (size_t)F * D;
            float *Pc = x->Pw + (bh * (N / w) + c) * sz;
            double dl = 0, loss = 0;
            for (i = 0; i < w; i++) {  // gv = dy / den, cd = -(gv . y)
                float *e = gv + (size_t)i * D;
                memcpy(e, yj + (size_t)i * D, sizeof(float) * (size_t)D);
                P->axpy(e, -1.0f, ytj + (size_t)i * D, D);
                loss += (double)P->dot(e, e, D);
                P->scal(e, x->c2 / dens[j * w + i], D);
                cd[i] = -P->dot(e, yj + (size_t)i * D, D);
            }
            if (x->y) memcpy(x->y + row0 * D, yj, sizeof(float) * (size_t)w * D);
            if (x->m) memcpy(x->m + row0, ms + j * w, sizeof(float) * (size_t)w);
            if (x->den) memcpy(x->den + row0, dens + j * w, sizeof(float) * (size_t)w);
            x->loss[bh * (N / w) + c] = loss;
            if (!x->dphiq) continue;
            if (c < 2) {  // no keys before the window
                memset(x->dphiq + row0 * F, 0, sizeof(float) * (size_t)w * F);
                continue;
            }
            lc__pk_a(pk, pa, gv, (size_t)D, 0, w, D);  // u = gv S^T + cd z
            bop = lc__pk_bop(pk, pb, Sj, (size_t)F, 0, F, D, &sb, &ldb);
            lc__pk_fit(pk, ut, (size_t)F, pa, (size_t)MR * D, w, bop, sb, ldb, F, D, 1.0f, 0.0f);
            for (i = 0; i < w; i++) {
                float *u = ut + (size_t)i * F;
                P->axpy(u, cd[i], zj, F);
                dl += (double)P->dot(phiq0 + (size_t)i * F, u, F);
                P->scal(u, lam, F);
            }
            memcpy(x->dphiq + row0 * F, ut, sizeof(float) * (size_t)w * F);
            x->dlam[bh * (N / w) + c] = dl;
            lc__pk_a(pk, pa, gv, (size_t)D, 1, D, w);  // P_c = lambda gv^T phiq, p_c
            bop = lc__pk_bop(pk, pb, phiq0, (size_t)F, 0, F, w, &sb, &ldb);
            lc__pk_fit(pk, Pc, (size_t)F, pa, (size_t)MR * w, D, bop, sb, ldb, F, w, lam, 0.0f);
            memset(Pc + (size_t)D * F, 0, sizeof(float) * (size_t)F);
            for (i = 0; i < w; i++) P->axpy(Pc + (size_t)D * F, lam * cd[i], phiq0 + (size_t)i * F, F);
        }
    }
    LOLCATS_FREE(mem);
    return 1;
}

// The reverse sweep of head bh over its blocks: dphik (set).
static void lc__xmse_sweep(const lc__xmse *x, float *dphik, float *work, size_t bh) {
    const lc__pk *pk = &x->pl->pk;
    const int N = x->N, D = x->D, F = x->F, w = x->pl->tq, nch = N / w;
    const size_t sz = (size_t)F * D + F;
    const size_t bg = bh / x->H * x->Hk + bh % x->H / (x->H / x->Hk);
    const float *v_bg = x->v + bg * N * D, *va;
    float *G = work, *pa = work + sz, *pb = pa + (size_t)lc__pk_round(w, pk->mr) * D;
    int c, i;
    memset(G, 0, sizeof(float) * sz);
    for (c = nch - 1; c >= 0; c--) {
        float *d = dphik + (bh * N + (size_t)c * w) * F;
        size_t sb, ldb;
        const float *bop;
        if (c + 2 >= nch) {  // no rows after the window's end
            memset(d, 0, sizeof(float) * (size_t)w * F);
            continue;
        }
        va = pa;
        x->P->axpy(G, 1.0f, x->Pw + (bh * nch + c + 2) * sz, (int)sz);  // G^T and zg
        if (x->vp)  // V_c's panels packed once for the kv head
            va = x->vp + (bg * lc__pk_round(N, pk->mr) + (size_t)c * w) * D;
        else
            lc__pk_a(pk, pa, v_bg + (size_t)c * w * D, (size_t)D, 0, w, D);
        bop = lc__pk_bop(pk, pb, G, (size_t)F, 0, F, D, &sb, &ldb);
        lc__pk_fit(pk, d, (size_t)F, va, (size_t)pk->mr * D, w, bop, sb, ldb, F, D, 1.0f, 0.0f);
        for (i = 0; i < w; i++) x->P->axpy(d + (size_t)i * F, 1.0f, G + (size_t)D * F, F);
        for (i = 0; i < w && c * w + i < x->xs.sinks; i++)  // sinks: never linear keys
            memset(d + (size_t)i * F, 0, sizeof(float) * (size_t)F);
    }
}

// The fast form; 0 (nothing usable written) if some task had no scratch.
static int lc__xfer_mse_fast(const lc_ctx *ctx, const lc__sm_plan *pl, double *loss, float *yt,
                             float *lse, float *y, float *m, float *den, float *dphiq,
                             float *dphik, float *dwf, float *work, const float *q,
                             const float *k, const float *v, const float *phiq,
                             const float *phik, const float *wf, int B, int H, int Hk, int N,
                             int D, int F, float factor, const lc_hybrid_cfg *cfg) {
    const int groups = B * Hk * pl->ngrp, nch = N / pl->tq;
    size_t hw = lc__hyb_head_floats(D, F, NULL, NULL), nt = (size_t)B * H * nch, i;
    lc__xmse x;
    int next = 0, failed = 0, h, nseg = (2 * lc__threads() + groups - 1) / groups, per, all;
    double *sums = (double *)LOLCATS_MALLOC(sizeof(double) * 2 * nt + sizeof(int) * (size_t)groups);
    int *done;  // per group, its segments done
    if (!sums) return 0;
    // at least 2 tasks per thread: a group's tiles in up to nch / 4 segments
    x.nseg = nseg < 1 ? 1 : nseg > nch / 4 ? (nch / 4 > 1 ? nch / 4 : 1) : nseg;
    done = (int *)(sums + 2 * nt);
    x.pl = pl;
    x.P = lc__prims_for(ctx);
    lc__xfer_init(&x.xs, ctx, pl, NULL, NULL, NULL, phiq, wf, NULL, D, F, 1, cfg);
    x.yt = yt;
    x.lse = lse;
    x.y = y;
    x.m = m;
    x.den = den;
    x.dphiq = dphiq;
    x.Pw = work + lc_attn_hybrid_work_floats(B, H, D, F);
    x.q = q;
    x.k = k;
    x.v = v;
    x.phik = phik;
    x.kv = lc__sm_kv_pack(pl, k, v, B, Hk, N, D);
    x.vp = NULL;
    // a block of keys starts a panel; a copy of v only up to LC__SM_KV_MAX floats
    if (dphiq && pl->tq % pl->pk.mr == 0 &&
        (size_t)B * Hk * lc__pk_round(N, pl->pk.mr) * D <= LC__SM_KV_MAX)
        x.vp = (float *)LOLCATS_MALLOC(sizeof(float) * (size_t)B * Hk * lc__pk_round(N, pl->pk.mr) * D);
    if (x.vp) {
        int bg;
        lc_advise_hugepages(x.vp, sizeof(float) * (size_t)B * Hk * lc__pk_round(N, pl->pk.mr) * D);
        LC__OMP_FOR
        for (bg = 0; bg < B * Hk; bg++)
            lc__pk_a(&pl->pk, x.vp + (size_t)bg * lc__pk_round(N, pl->pk.mr) * D,
                     v + (size_t)bg * N * D, (size_t)D, 0, N, D);
    }
    x.kvn = lc__sm_kv_floats(pl, N, D);
    x.loss = sums;
    x.dlam = sums + nt;
    x.B = B;
    x.H = H;
    x.Hk = Hk;
    x.N = N;
    x.D = D;
    x.F = F;
    x.c2 = (float)(2.0 * (double)factor / ((double)B * H * N * D));
    memset(sums, 0, sizeof(double) * 2 * nt);
    memset(done, 0, sizeof(int) * (size_t)groups);
    per = x.nseg + (dphiq ? pl->hs : 0);
    all = (groups + 1) * per;
    // Slots of per = nseg + hs: group g's segments, then the sweeps of group
    // g - 1's heads (its P_c still in cache; a thread out of tiles takes them
    // rather than wait at a barrier; one whose group is not done waits for it).
#if defined(_OPENMP)
#pragma omp parallel reduction(+ : failed)
#endif
    for (;;) {
        int t, gr, r, d;
        size_t bh;
#if defined(_OPENMP)
#pragma omp atomic capture
#endif
        t = next++;
        if (t >= all) break;
        gr = t / per;
        r = t % per;
        if (r < x.nseg) {
            if (gr == groups) continue;
            failed += !lc__xmse_task(&x, gr * x.nseg + r);
#if defined(_OPENMP)
#pragma omp flush
#pragma omp atomic update
#endif
            done[gr]++;
            continue;
        }
        if (gr-- == 0) continue;
        do {
#if defined(_OPENMP)
#pragma omp atomic read
#endif
            d = done[gr];
        } while (d < x.nseg);
#if defined(_OPENMP)
#pragma omp flush
#endif
        bh = (size_t)(gr / (Hk * pl->ngrp)) * H + (size_t)(gr / pl->ngrp % Hk) * (H / Hk) +
             (size_t)(gr % pl->ngrp) * pl->hs + (size_t)(r - x.nseg);
        lc__xmse_sweep(&x, dphik, work + bh * hw, bh);
    }
    LOLCATS_FREE((void *)x.kv);
    LOLCATS_FREE(x.vp);
    if (!failed && dphiq) {
        for (h = 0; h < H && dwf; h++) {  // dwf = -dlambda (1 - gamma), in a fixed order
            double dl = 0;
            int b, c;
            for (b = 0; b < B; b++)
                for (c = 0; c < nch; c++) dl += x.dlam[((size_t)b * H + h) * nch + c];
            dwf[h] += (float)(-dl * (1.0 - (double)lc__sigmoid(wf[h])));
        }
    }
    for (i = 0, *loss = 0; i < nt; i++) *loss += sums[i];
    *loss = *loss / ((double)B * H * N * D) * (double)factor;
    LOLCATS_FREE(sums);
    return !failed;
}

// >>prefill-attn
// Fast form of lc__model_attn for a chunk of T > 1 queries (prefill): per
// query head, blocks of LC__PF_TB queries; the block's keys (those the first
// query sees through those the last one sees, at most n_ctx) go through the
// one-thread GEMM: S = Q_b K_b^T / sqrt(D); each row's softmax over its own
// keys (causal, window), the others set to 0; Y_b = (P V_b) / sum. Same sums
// as the scalar loop in another order: equal within fp32 rounding. Each head
// is one task, so the result does not depend on the thread count. Returns 0
// (nothing written) when its scratch cannot be had.
#define LC__PF_TB 64
static int lc__model_attn_tiled(const lc_ctx *ctx, float *y, const float *qh, const float *kc,
                                const float *vc, int H, int Hk, int T, int D, int n_ctx,
                                int pos0, int window) {
    LC__FAST(ctx);
    const lc__prims *P = lc__prims_for(ctx);
    float scale = 1.0f / sqrtf((float)D);
    int tb = T < LC__PF_TB ? T : LC__PF_TB, nkmax = pos0 + T, h;
    size_t ws, a, per;
    float *mem;
    if (window > 0 && nkmax > tb + window - 1) nkmax = tb + window - 1;
    ws = lc__mm_ws_floats(tb, nkmax, D);
    a = lc__mm_ws_floats(tb, D, nkmax);
    ws = a > ws ? a : ws;
    per = ((size_t)tb * nkmax + 15) / 16 * 16 + ws + 16;  // S, then ws (64-byte aligned)
    mem = (float *)LOLCATS_MALLOC(sizeof(float) * per * (size_t)H);
    if (!mem) return 0;
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1)
#endif
    for (h = 0; h < H; h++) {
        const float *k_h = kc + (size_t)(h / (H / Hk)) * n_ctx * D;
        const float *v_h = vc + (size_t)(h / (H / Hk)) * n_ctx * D;
        float *S = mem + per * (size_t)h;
        float *w = (float *)(((uintptr_t)(S + ((size_t)tb * nkmax + 15) / 16 * 16) + 63) &
                             ~(uintptr_t)63);
        int t0, t;
        for (t0 = 0; t0 < T; t0 += tb) {
            int nb = T - t0 < tb ? T - t0 : tb, i1 = pos0 + t0 + nb - 1;
            int j0 = window > 0 && pos0 + t0 - window + 1 > 0 ? pos0 + t0 - window + 1 : 0;
            int nk = i1 + 1 - j0;
            lc__mm(ctx, S, qh + ((size_t)h * T + t0) * D, k_h + (size_t)j0 * D, nb, nk, D, 0, 1,
                   scale, 0.0f, (size_t)nk, (size_t)D, (size_t)D, w);
            for (t = 0; t < nb; t++) {
                int i = pos0 + t0 + t, lo = window > 0 && i - window + 1 > 0 ? i - window + 1 : 0;
                float *s = S + (size_t)t * nk, mx;
                int j;
                lo -= j0;
                for (j = 0; j < lo; j++) s[j] = 0.0f;
                for (j = i + 1 - j0; j < nk; j++) s[j] = 0.0f;
                mx = P->max(s + lo, 1.0f, i + 1 - j0 - lo);
                            P->scal(s + lo, (float)(1.0 / P->exp_sum(s + lo, s + lo, 1.0f, mx, i + 1 - j0 - lo)),
                        i + 1 - j0 - lo);
            }
            lc__mm(ctx, y + ((size_t)t0 * H + h) * D, S, v_h + (size_t)j0 * D, nb, D, nk, 0, 0,
                   1.0f, 0.0f, (size_t)H * D, (size_t)nk, (size_t)D, w);
        }
    }
    LOLCATS_FREE(mem);
    return 1;
}

#endif  // !LOLCATS_NO_FAST

// >>gemm-bf16
// The bf16 compute mode (ctx.compute = LOLCATS_COMPUTE_BF16, opt-in): lc_gemm
// rounds both operands to bf16 and sums the products in float32, the way the
// AVX512_BF16 instructions do. Rounding (vcvtne2ps2bf16): round to nearest
// even, NaN quieted, float32 denormals to a signed zero. Products
// (vdpbf16ps): K is cut into blocks of LC__BF_KC; in a block the sum starts
// at 0 and takes the pairs (k, k+1), k = block start + 2q, adding the
// product of the odd element first, then the even one (each product of two
// bf16 is exact in float32; bf16 denormal inputs count as zero, a denormal
// sum is flushed to zero); an odd K pads its last pair with zeros. Then C =
// alpha sum + (first block ? beta : 1) C (alpha 1 and beta 0 or 1 skip their
// multiply). The scalar twin lc__gemm_bf16_ref follows these steps one by
// one; it runs when ctx.simd is LOLCATS_SIMD_SCALAR. The fast form (AVX-512
// with AVX512_BF16, cpuid leaf 7 subleaf 1 EAX bit 5) gives the same bits
// (tests/test_bf16.c checks it) unless a product of two tiny bf16 values
// falls below 2^-126, where the hardware's fused step and the twin's two
// steps may round differently. Other CPUs decline: lc_gemm runs float32
// (lc_compute_supported says which).
#define LC__BF_KC 512

// bf16 bits of f as vcvtne2ps2bf16 rounds it.
static uint32_t lc__bf16_rne(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return (u >> 16) | 0x40u;
    if ((u & 0x7f800000u) == 0) return (u >> 16) & 0x8000u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

// float32 of bf16 bits h, a denormal read as zero.
static float lc__bf16_daz(uint32_t h) {
    uint32_t u = (h & 0x7f80u) ? h << 16 : (h & 0x8000u) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float lc__bf16_ftz(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if (!(u & 0x7f800000u)) u &= 0x80000000u;
    memcpy(&x, &u, 4);
    return x;
}

// One element of op(B) as bf16 bits (a BF16 weight as it is).
static uint32_t lc__bf16_b(const void *B, lc_dtype bt, size_t i) {
    if (bt == LOLCATS_DTYPE_BF16) return ((const uint16_t *)B)[i];
    return lc__bf16_rne(lc__wload(B, bt, i));
}

static float lc__bf16_out(float acc, float alpha, float bc, float c) {
    float t = alpha == 1.0f ? acc : alpha * acc;
    if (bc == 0.0f) return t;
    return bc == 1.0f ? t + c : t + bc * c;
}

// The scalar twin (the definition of the mode).
static void lc__gemm_bf16_ref(float *C, const float *A, const void *B, lc_dtype bt, int M,
                              int N, int K, int ta, int tb, float alpha, float beta, size_t ldc,
                              size_t lda, size_t ldb) {
    int i, j, k, p0;
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            float *c = C + (size_t)i * ldc + j;
            for (p0 = 0; p0 < K; p0 += LC__BF_KC) {
                int p1 = K - p0 < LC__BF_KC ? K : p0 + LC__BF_KC;
                float acc = 0.0f;
                for (k = p0; k < p1; k += 2) {
                    float a[2] = {0.0f, 0.0f}, b[2] = {0.0f, 0.0f};
                    int e;
                    for (e = 0; e < 2 && k + e < p1; e++) {
                        size_t ia = ta ? (size_t)(k + e) * lda + i : (size_t)i * lda + k + e;
                        size_t ib = tb ? (size_t)j * ldb + k + e : (size_t)(k + e) * ldb + j;
                        a[e] = lc__bf16_daz(lc__bf16_rne(A[ia]));
                        b[e] = lc__bf16_daz(lc__bf16_b(B, bt, ib));
                    }
                    acc = lc__bf16_ftz(acc + a[1] * b[1]);
                    acc = lc__bf16_ftz(acc + a[0] * b[0]);
                }
                *c = lc__bf16_out(acc, alpha, p0 == 0 ? beta : 1.0f, *c);
            }
        }
}

#if defined(LC__X86) && !defined(LOLCATS_NO_FAST)
#define LC__TARGET_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16,avx2,fma,f16c")))
#define LC__BF_MR 14
#define LC__BF_NR 32
#define LC__BF_MSUB 24                      // A panels packed at once (336 rows, in L2)
#define LC__BF_NCB (LC__BF_NR * 128)        // columns of op(B) packed at once (4096)
#define LC__BF_GROUP 16                     // most B panels of one tile task (512 columns)

static int lc__cpu_has_bf16(void) {
    unsigned a, b, c, d;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) return 0;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (int)((a >> 5) & 1u);
}

// dst[q W + w] = bf16(src[2q W + w]) | bf16(src[(2q+1) W + w]) << 16, the
// row kc (odd kc) zero: a float panel (kc, W) as bf16 pairs along k.
LC__TARGET_BF16 static void lc__bf16_pairs(uint32_t *dst, const float *src, int kc, int W) {
    static const uint16_t ix[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                    8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    __m512i perm = _mm512_loadu_si512((const void *)ix);
    int q, w0, kp = (kc + 1) / 2;
    for (q = 0; q < kp; q++)
        for (w0 = 0; w0 < W; w0 += 16) {
            __mmask16 m = (__mmask16)(W - w0 >= 16 ? 0xffffu : (1u << (W - w0)) - 1u);
            __m512 e = _mm512_maskz_loadu_ps(m, src + (size_t)2 * q * W + w0);
            __m512 o = 2 * q + 1 < kc ? _mm512_maskz_loadu_ps(m, src + (size_t)(2 * q + 1) * W + w0)
                                      : _mm512_setzero_ps();
            __m512i h = (__m512i)_mm512_cvtne2ps_pbh(o, e);
            _mm512_mask_storeu_epi32(dst + (size_t)q * W + w0, m, _mm512_permutexvar_epi16(perm, h));
        }
}

LC__TARGET_BF16 static void lc__bf16_st(float *c, __m512 x0, __m512 x1, float alpha, float bc) {
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(bc);
    if (alpha != 1.0f) {
        x0 = _mm512_mul_ps(va, x0);
        x1 = _mm512_mul_ps(va, x1);
    }
    if (bc == 1.0f) {
        x0 = _mm512_add_ps(x0, _mm512_loadu_ps(c));
        x1 = _mm512_add_ps(x1, _mm512_loadu_ps(c + 16));
    } else if (bc != 0.0f) {
        x0 = _mm512_add_ps(x0, _mm512_mul_ps(vb, _mm512_loadu_ps(c)));
        x1 = _mm512_add_ps(x1, _mm512_mul_ps(vb, _mm512_loadu_ps(c + 16)));
    }
    _mm512_storeu_ps(c, x0);
    _mm512_storeu_ps(c + 16, x1);
}

#define LC__BF_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#define LC__BF_DECL(r) __m512 x##r##_0 = _mm512_setzero_ps(), x##r##_1 = _mm512_setzero_ps();
#define LC__BF_STEP(r)                                                     \
    {                                                                      \
        __m512bh a_ = (__m512bh)_mm512_set1_epi32((int)pa[r]);             \
        x##r##_0 = _mm512_dpbf16_ps(x##r##_0, a_, b0);                     \
        x##r##_1 = _mm512_dpbf16_ps(x##r##_1, a_, b1);                     \
    }
#define LC__BF_STORE(r) lc__bf16_st(c + (size_t)(r) * ldc, x##r##_0, x##r##_1, alpha, bc);

// c (14 x 32, row stride ldc) = alpha pa pb + bc c over kp pairs.
LC__TARGET_BF16 static void lc__ukr_bf16(int kp, const uint32_t *pa, const uint32_t *pb,
                                         float *c, size_t ldc, float alpha, float bc) {
    int q;
    LC__BF_ROWS(LC__BF_DECL)
    for (q = 0; q < kp; q++, pa += LC__BF_MR, pb += LC__BF_NR) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)pb);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(pb + 16));
        // the C tile, fetched during the first steps (as lc__ukr_avx512)
        if (q < 28) _mm_prefetch((const char *)(c + (size_t)(q >> 1) * ldc + (q & 1) * 16), _MM_HINT_T0);
        LC__BF_ROWS(LC__BF_STEP)
    }
    LC__BF_ROWS(LC__BF_STORE)
}
#undef LC__BF_ROWS
#undef LC__BF_DECL
#undef LC__BF_STEP
#undef LC__BF_STORE

// dst[q W + r] = the bf16 pair (k = 2q, 2q+1) of row r of a panel whose rows
// run along k: src + r ld, kc values (float, or bf16 bits as they are when bt
// is BF16), an odd kc padded with a zero; rows r >= `rows` zero. The packing
// of A (ta 0) and of weights (tb 1): 32 values of a row to 16 pairs in tmp
// (rows x kp, row stride kp rounded up to 16), then the 16 x 16 transposes of
// lc__tpose_avx512, which move 32-bit patterns without arithmetic.
LC__TARGET_BF16 static void lc__bf16_rows(uint32_t *dst, float *tmp, const void *src, lc_dtype bt,
                                          size_t ld, int rows, int kc, int W) {
    int kp = (kc + 1) / 2, kl = (kp + 15) & ~15, r, q0;
    if (rows < W) memset(dst, 0, sizeof(uint32_t) * (size_t)kp * (size_t)W);
    for (r = 0; r < rows; r++)
        for (q0 = 0; q0 < kp; q0 += 16) {
            int k0 = 2 * q0, n = kc - k0 < 32 ? kc - k0 : 32;
            __m512i h;
            if (bt == LOLCATS_DTYPE_BF16) {
                __mmask32 m = (__mmask32)(n == 32 ? 0xffffffffu : (1u << n) - 1u);
                h = _mm512_maskz_loadu_epi16(m, (const uint16_t *)src + (size_t)r * ld + k0);
            } else {
                const float *f = (const float *)src + (size_t)r * ld + k0;
                __mmask16 m0 = (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1u);
                __mmask16 m1 = (__mmask16)(n >= 32 ? 0xffffu : n > 16 ? (1u << (n - 16)) - 1u : 0u);
                h = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, f + 16), _mm512_maskz_loadu_ps(m0, f));
            }
            _mm512_storeu_si512((void *)(tmp + (size_t)r * kl + q0), h);
        }
    lc__tpose_avx512((float *)(void *)dst, (size_t)W, tmp, (size_t)kl, rows, kp);
}

typedef struct lc__bf_step {   // one (jc, ic, pc) step of lc__gemm_bf16_avx512
    size_t ldc, lda, ldb;
    float alpha, bc;
    int ta, tb, ic, jc, pc, mc, nc, kc, npa, npb, grp;
    lc_dtype bt;
    float *C, *tmp;
    uint32_t *pa, *pb;
    const float *A;
    const void *B;
} lc__bf_step;

// Pack task t: A panel t (t < npa), else B panel t - npa: rows along k
// converted directly (lc__bf16_rows), other layouts via float panels.
static void lc__bf_pack(const lc__bf_step *s, int t) {
    float *f = s->tmp + (size_t)lc__thread() * LC__BF_NR * LC__BF_KC;
    int kp = (s->kc + 1) / 2, p;
    if (t < s->npa) {
        int r0 = t * LC__BF_MR, rows = s->mc - r0 < LC__BF_MR ? s->mc - r0 : LC__BF_MR;
        uint32_t *d = s->pa + (size_t)t * LC__BF_MR * kp;
        if (!s->ta) {
            lc__bf16_rows(d, f, s->A + (size_t)(s->ic + r0) * s->lda + s->pc, LOLCATS_DTYPE_F32, s->lda,
                          rows, s->kc, LC__BF_MR);
            return;
        }
        for (p = 0; p < s->kc; p += LC__GEMM_KC)
            lc__pack_a(lc__gk_avx512.tpose, f + (size_t)p * LC__BF_MR, s->A, s->lda, s->ta,
                       s->ic + r0, rows, s->pc + p,
                       s->kc - p < LC__GEMM_KC ? s->kc - p : LC__GEMM_KC, LC__BF_MR);
        lc__bf16_pairs(d, f, s->kc, LC__BF_MR);
    } else {
        int c0 = (t - s->npa) * LC__BF_NR, cols = s->nc - c0 < LC__BF_NR ? s->nc - c0 : LC__BF_NR;
        uint32_t *d = s->pb + (size_t)(t - s->npa) * LC__BF_NR * kp;
        size_t o = (size_t)(s->jc + c0) * s->ldb + (size_t)s->pc;
        if (s->tb && s->bt == LOLCATS_DTYPE_BF16) {
            lc__bf16_rows(d, f, (const uint16_t *)s->B + o, s->bt, s->ldb, cols, s->kc, LC__BF_NR);
            return;
        }
        if (s->tb && s->bt == LOLCATS_DTYPE_F32) {
            lc__bf16_rows(d, f, (const float *)s->B + o, s->bt, s->ldb, cols, s->kc, LC__BF_NR);
            return;
        }
        for (p = 0; p < s->kc; p += LC__GEMM_KC)
            lc__pack_b(&lc__gk_avx512, f + (size_t)p * LC__BF_NR, s->B, s->bt, s->ldb, s->tb,
                       s->jc + c0, cols, s->pc + p,
                       s->kc - p < LC__GEMM_KC ? s->kc - p : LC__GEMM_KC);
        lc__bf16_pairs(d, f, s->kc, LC__BF_NR);
    }
}

// Tile task g: B panels g G .. g G + G - 1 (G = s->grp, at most LC__BF_GROUP:
// 512 KiB, in L2) against every A panel of the step, each A panel (14 KiB)
// held in L1 while the group's B panels stream past it. The tile order
// changes no sum.
static void lc__bf_tiles(const lc__bf_step *s, int g) {
    int kp = (s->kc + 1) / 2, i, j, r, n;
    int j1 = (g + 1) * s->grp < s->npb ? (g + 1) * s->grp : s->npb;
    float tile[LC__BF_MR * LC__BF_NR];
    for (i = 0; i < s->npa; i++) {
        int rows = s->mc - i * LC__BF_MR < LC__BF_MR ? s->mc - i * LC__BF_MR : LC__BF_MR;
        const uint32_t *pa = s->pa + (size_t)i * LC__BF_MR * kp;
        for (j = g * s->grp; j < j1; j++) {
            int cols = s->nc - j * LC__BF_NR < LC__BF_NR ? s->nc - j * LC__BF_NR : LC__BF_NR;
            const uint32_t *pb = s->pb + (size_t)j * LC__BF_NR * kp;
            float *c = s->C + (size_t)(s->ic + i * LC__BF_MR) * s->ldc + (size_t)(s->jc + j * LC__BF_NR);
            if (rows == LC__BF_MR && cols == LC__BF_NR) {
                lc__ukr_bf16(kp, pa, pb, c, s->ldc, s->alpha, s->bc);
                continue;
            }
            lc__ukr_bf16(kp, pa, pb, tile, LC__BF_NR, 1.0f, 0.0f);
            for (r = 0; r < rows; r++)
                for (n = 0; n < cols; n++)
                    c[(size_t)r * s->ldc + n] =
                        lc__bf16_out(tile[r * LC__BF_NR + n], s->alpha, s->bc, c[(size_t)r * s->ldc + n]);
        }
    }
}

// Blocks: LC__BF_NCB columns of op(B); per K block of LC__BF_KC, op(B)
// packed once (bf16 pairs), then per LC__BF_MSUB row panels of A (packed
// right before, so they stay in L2) the tiles against every B panel.
static int lc__gemm_bf16_avx512(const lc_ctx *ctx, float *C, const float *A, const void *B,
                                lc_dtype bt, int M, int N, int K, int ta, int tb, float alpha,
                                float beta, size_t ldc, size_t lda, size_t ldb) {
    size_t kpm = (size_t)((K < LC__BF_KC ? K : LC__BF_KC) + 1) / 2;
    size_t na = (size_t)LC__BF_MSUB * LC__BF_MR * kpm;
    size_t nb = (size_t)((N < LC__BF_NCB ? N : LC__BF_NCB) + LC__BF_NR - 1) / LC__BF_NR * LC__BF_NR * kpm;
    size_t nt = (size_t)LC__BF_NR * LC__BF_KC * (size_t)lc__threads();
    lc__bf_step s;
    char *mem;
    (void)ctx;
    if (!lc__cpu_has_bf16()) return 0;
    mem = (char *)LOLCATS_MALLOC(4 * (na + nb + nt) + 64);
    if (!mem) return 0;
    s.pa = (uint32_t *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    s.pb = s.pa + na;
    s.tmp = (float *)(s.pb + nb);
    s.C = C; s.A = A; s.B = B; s.bt = bt; s.ta = ta; s.tb = tb; s.alpha = alpha;
    s.ldc = ldc; s.lda = lda; s.ldb = ldb;
    for (s.jc = 0; s.jc < N; s.jc += LC__BF_NCB) {
        s.nc = N - s.jc < LC__BF_NCB ? N - s.jc : LC__BF_NCB;
        s.npb = (s.nc + LC__BF_NR - 1) / LC__BF_NR;
        // groups of B panels: at least two tasks per thread where N allows
        s.grp = s.npb / (2 * lc__threads());
        s.grp = s.grp < 1 ? 1 : s.grp > LC__BF_GROUP ? LC__BF_GROUP : s.grp;
        for (s.pc = 0; s.pc < K; s.pc += LC__BF_KC) {
            int t;
            s.kc = K - s.pc < LC__BF_KC ? K - s.pc : LC__BF_KC;
            s.bc = s.pc == 0 ? beta : 1.0f;
            s.npa = 0;   // pack tasks t >= npa: the B panels
            LC__OMP_FOR
            for (t = 0; t < s.npb; t++) lc__bf_pack(&s, t);
            for (s.ic = 0; s.ic < M; s.ic += LC__BF_MSUB * LC__BF_MR) {
                s.mc = M - s.ic < LC__BF_MSUB * LC__BF_MR ? M - s.ic : LC__BF_MSUB * LC__BF_MR;
                s.npa = (s.mc + LC__BF_MR - 1) / LC__BF_MR;
                LC__OMP_FOR
                for (t = 0; t < s.npa; t++) lc__bf_pack(&s, t);
                LC__OMP_FOR
                for (t = 0; t < (s.npb + s.grp - 1) / s.grp; t++) lc__bf_tiles(&s, t);
            }
        }
    }
    LOLCATS_FREE(mem);
    return 1;
}
#endif  // LC__X86 && !LOLCATS_NO_FAST

// lc_gemm's hook: 1 when the bf16 mode computed C (fast form or, for a
// scalar ctx, the twin); 0: the caller runs float32.
static int lc__gemm_bf16(const lc_ctx *ctx, float *C, const float *A, const void *B, lc_dtype bt,
                         int M, int N, int K, int ta, int tb, float alpha, float beta, size_t ldc,
                         size_t lda, size_t ldb) {
    const lc__kern *Kt = lc__kern_for(ctx);
    if (Kt->gemm_bf16)
        return Kt->gemm_bf16(ctx, C, A, B, bt, M, N, K, ta, tb, alpha, beta, ldc, lda, ldb);
    if (ctx->simd != LOLCATS_SIMD_SCALAR) return 0;
    lc__gemm_bf16_ref(C, A, B, bt, M, N, K, ta, tb, alpha, beta, ldc, lda, ldb);
    return 1;
}

LCIMPL int lc_compute_supported(const lc_ctx *ctx, int compute) {
    const lc__kern *Kt = lc__kern_for(ctx);
    if (compute == LOLCATS_COMPUTE_F32) return 1;
    if (compute != LOLCATS_COMPUTE_BF16) return 0;
    if (ctx->simd == LOLCATS_SIMD_SCALAR) return 1;
#if defined(LC__X86) && !defined(LOLCATS_NO_FAST)
    if (Kt->gemm_bf16 == lc__gemm_bf16_avx512) return lc__cpu_has_bf16();
#endif
    return Kt->gemm_bf16 != NULL;
}
// >>gemm-bf16-end

// >>kernels
// The kernel table (contract in >>fast-decl): the entry points of the fast
// forms above, each with the shape and scratch checks that make it decline,
// and one static const table per SIMD level.
#if !defined(LOLCATS_NO_FAST)
// Scratch of one packed feature-map task, rounded to 64 bytes, for each thread.
static size_t lc__fm_task_floats(size_t n) { return (n + 15) / 16 * 16; }

static int lc__fmap_fwd_fast(const lc_ctx *ctx, float *phi, const float *x, const float *w,
                             const float *bias, int B, int H, int Hx, int N, int D, int f,
                             const lc_fmap_cfg *cfg) {
    const lc__kern *K = lc__kern_for(ctx);
    lc__fm_plan pl;
    size_t per;
    float *ws;
    int bx;
    if (!lc__fm_plan_for(ctx, &pl, D, f, 0, 0)) return 0;
    per = lc__fm_task_floats(pl.floats + (size_t)(H / Hx) * pl.fp * D);
    ws = (float *)LOLCATS_MALLOC(sizeof(float) * per * (size_t)lc__threads());
    if (!ws) return 0;
    LC__OMP_FOR
    for (bx = 0; bx < B * Hx; bx++) {  // one task per x head and its query heads
        float *t = ws + per * (size_t)lc__thread();
        lc__fmap_fwd_packed(&pl, K->P, K->float_sums, t, t + pl.floats, phi, x, w, bias, H, Hx,
                            bx, N, D, f, cfg);
    }
    LOLCATS_FREE(ws);
    return 1;
}

static int lc__fmap_bwd_fast(const lc_ctx *ctx, float *dx, float *dw, float *dbias,
                             const float *dphi, const float *phi, const float *x, const float *w,
                             const float *bias, int B, int H, int Hx, int N, int D, int f,
                             const lc_fmap_cfg *cfg) {
    const lc__kern *K = lc__kern_for(ctx);
    lc__fm_plan pl;
    size_t per;
    float *ws;
    int xh;
    if (!lc__fm_plan_for(ctx, &pl, D, f, 1, dx != NULL)) return 0;
    per = lc__fm_task_floats(lc__fmap_bwd_floats(&pl, H / Hx, D, f));
    ws = (float *)LOLCATS_MALLOC(sizeof(float) * per * (size_t)lc__threads());
    if (!ws) return 0;
    LC__OMP_FOR
    for (xh = 0; xh < Hx; xh++)  // one task per x head: dx of it, dw of its query heads
        lc__fmap_bwd_packed(&pl, K->P, K->float_sums, ws + per * (size_t)lc__thread(), dx, dw,
                            dbias, dphi, phi, x, w, bias, B, H, Hx, N, D, f, xh, cfg);
    LOLCATS_FREE(ws);
    return 1;
}

static int lc__softmax_fwd_fast(const lc_ctx *ctx, float *y, float *lse, const float *q,
                                const float *k, const float *v, int B, int H, int Hk, int N,
                                int D) {
    lc__sm_plan pl;
    if (!lc__sm_plan_for(ctx, &pl, H / Hk, N, D)) return 0;
    lc__softmax_tiles(&pl, lc__prims_for(ctx), y, lse, q, k, v, B, H, Hk, N, D, NULL);
    return 1;
}

static void lc__hybrid_fwd_fast(const lc_ctx *ctx, float *y, float *m, float *den, float *work,
                                const float *q, const float *k, const float *v,
                                const float *phiq, const float *phik, const float *wf,
                                const float *kv_state, const float *k_state, int B, int H,
                                int Hk, int N, int D, int F, const lc_hybrid_cfg *cfg) {
    if (cfg->window <= LC__HYB_WMAX && lc__hyb_sinks_fit(cfg, N))  // sinks: block columns
        lc__hybrid_fwd_chunk(ctx, y, m, den, work, q, k, v, phiq, phik, wf, kv_state, k_state,
                             B, H, Hk, N, D, F, cfg);
    else
        lc__hybrid_fwd_state(ctx, y, m, den, work, q, k, v, phiq, phik, wf, kv_state, k_state,
                             B, H, Hk, N, D, F, cfg);
}

static void lc__hybrid_bwd_fast(const lc_ctx *ctx, float *dq, float *dk, float *dv,
                                float *dphiq, float *dphik, float *dwf, float *dkv_state,
                                float *dk_state, float *work, const float *dy, const float *y,
                                const float *m, const float *den, const float *q,
                                const float *k, const float *v, const float *phiq,
                                const float *phik, const float *wf, const float *kv_state,
                                const float *k_state, int B, int H, int Hk, int N, int D, int F,
                                const lc_hybrid_cfg *cfg) {
    if (cfg->window <= LC__HYB_WMAX && lc__hyb_sinks_fit(cfg, N))  // sinks: block columns
        lc__hybrid_bwd_chunk(ctx, dq, dk, dv, dphiq, dphik, dwf, dkv_state, dk_state, work, dy,
                             y, den, q, k, v, phiq, phik, wf, kv_state, k_state, B, H, Hk, N, D,
                             F, cfg);
    else
        lc__hybrid_bwd_state(ctx, dq, dk, dv, dphiq, dphik, dwf, dkv_state, dk_state, work, dy,
                             y, m, den, q, k, v, phiq, phik, wf, kv_state, k_state, B, H, Hk, N,
                             D, F, cfg);
}

static int lc__xfer_fwd_fast(const lc_ctx *ctx, float *yt, float *lse, float *y, float *m,
                             float *den, float *work, const float *q, const float *k,
                             const float *v, const float *phiq, const float *phik,
                             const float *wf, int B, int H, int Hk, int N, int D, int F,
                             const lc_hybrid_cfg *cfg) {
    float *states = work + lc_attn_hybrid_work_floats(B, H, D, F);
    lc__sm_plan pl;
    lc__xfer xs;
    if (!lc__xfer_fast(ctx, &pl, H, Hk, N, D, cfg)) return 0;
    lc__xfer_init(&xs, ctx, &pl, y, m, den, phiq, wf, states, D, F, 0, cfg);
    lc__xfer_states(ctx, states, work, phik, v, B, H, Hk, N, D, F, cfg->sinks);
    if (lc__softmax_tiles(&pl, lc__prims_for(ctx), yt, lse, q, k, v, B, H, Hk, N, D, &xs))
        lc_attn_hybrid_fwd(ctx, y, NULL, m, den, work, q, k, v, phiq, phik, wf, NULL, NULL, B, H,
                           Hk, N, D, F, cfg);  // some tile had no scratch: the student alone
    return 1;
}

static int lc__xfer_bwd_fast(const lc_ctx *ctx, float *dphiq, float *dphik, float *dwf,
                             float *work, const float *dy, const float *y, const float *den,
                             const float *v, const float *phiq, const float *wf, int B, int H,
                             int Hk, int N, int D, int F, const lc_hybrid_cfg *cfg) {
    lc__sm_plan pl;
    if (!lc__xfer_fast(ctx, &pl, H, Hk, N, D, cfg)) return 0;
    lc__xfer_bwd(ctx, dphiq, dphik, dwf, work, work + lc_attn_hybrid_work_floats(B, H, D, F), dy,
                 y, den, v, phiq, wf, B, H, Hk, N, D, F, cfg);
    return 1;
}

static int lc__xfer_mse_step(const lc_ctx *ctx, double *loss, float *yt, float *lse, float *y,
                              float *m, float *den, float *dphiq, float *dphik, float *dwf,
                              float *work, const float *q, const float *k, const float *v,
                              const float *phiq, const float *phik, const float *wf, int B,
                              int H, int Hk, int N, int D, int F, float factor,
                              const lc_hybrid_cfg *cfg) {
    lc__sm_plan pl;
    return lc__xfer_fast(ctx, &pl, H, Hk, N, D, cfg) &&
           lc__xfer_mse_fast(ctx, &pl, loss, yt, lse, y, m, den, dphiq, dphik, dwf, work, q, k,
                             v, phiq, phik, wf, B, H, Hk, N, D, F, factor, cfg);
}

// >>xent-fast: lc_xent_fwd_bwd with one float exp per logit (the vector exp
// of >>simd through P->exp_sumd, sums in double lanes) instead of the
// reference's two double exps. Per scored row:
//   mx = max_v l_v (NaN if any is)    s = sum_v exp(l_v - mx)
//   loss_t = mx + log s - l_label     d_v = exp(l_v - mx) / (n s) - [v = label] / n
// the exps written into the gradient row, then scaled. Within a few float ulp
// of the reference; -inf logits give 0, a NaN gives NaN as there. Rows in 64
// fixed parts summed in order: the same loss for any thread count. dlogits
// may be logits (the label's logit is read first).
static double lc__xent_fast(const lc_ctx *ctx, float *dlogits, const float *logits, const int *labels,
                            int T, int V, int *n_counted) {
    const lc__prims *P = lc__prims_for(ctx);
    double part[64], total = 0;
    int p, n = 0, t;
    for (t = 0; t < T; t++) n += labels[t] >= 0;
    LC__OMP_FOR_STATIC
    for (p = 0; p < 64; p++) {
        int r = T / 64 * p + (T % 64 < p ? T % 64 : p), e = r + T / 64 + (p < T % 64);
        part[p] = 0;
        for (; r < e; r++) {
            const float *l_r = logits + (size_t)r * V;
            float *d_r = dlogits ? dlogits + (size_t)r * V : NULL, at, mx;
            double s;
            if (labels[r] < 0) {
                if (d_r) memset(d_r, 0, sizeof(float) * (size_t)V);
                continue;
            }
            at = l_r[labels[r]];
            mx = P->max(l_r, 1.0f, V);
            s = P->exp_sumd(d_r, l_r, mx, V);
            part[p] += (double)mx + log(s) - (double)at;
            if (d_r) {
                P->scal(d_r, (float)(1.0 / (s * n)), V);
                d_r[labels[r]] -= 1.0f / (float)n;
            }
        }
    }
    for (p = 0; p < 64; p++) total += part[p];
    if (n_counted) *n_counted = n;
    return n ? total / n : 0.0;
}

// >>lora-fast: the rank-r LoRA products of lc_linear_fwd / _bwd over all T
// tokens as five GEMMs (lc_gemm in float32 whatever ctx->compute, threads
// over output tiles) instead of the reference's per-token dots and axpys:
//   fwd  xa = x A^T (T,r)           y += s xa B^T
//   bwd  g = s dY B (T,r)  dB += s dY^T xa  dA += g^T x  dX += g A
// Float sums in the GEMM's order (a tolerance from the reference loop, not
// bits). Declines (0) below LC__LORA_GEMM_T tokens (decoding: the loop) and
// when the (T,r) scratch cannot be had.
#define LC__LORA_GEMM_T 8
static int lc__lora_fwd_fast(const lc_ctx *ctx, float *y, float *xa, const float *x, const float *lora_a,
                             const float *lora_b, float lora_scale, int r, int T, int O, int I) {
    lc_ctx c = *ctx;
    float *u;
    if (T < LC__LORA_GEMM_T) return 0;
    u = xa ? xa : (float *)LOLCATS_MALLOC(sizeof(float) * (size_t)T * r);
    if (!u) return 0;
    c.compute = LOLCATS_COMPUTE_F32;
    lc_gemm(&c, u, x, lora_a, LOLCATS_DTYPE_F32, T, r, I, 0, 1, 1.0f, 0.0f, (size_t)r, (size_t)I, (size_t)I, NULL);
    lc_gemm(&c, y, u, lora_b, LOLCATS_DTYPE_F32, T, O, r, 0, 1, lora_scale, 1.0f, (size_t)O, (size_t)r, (size_t)r,
            NULL);
    if (!xa) LOLCATS_FREE(u);
    return 1;
}

static int lc__lora_bwd_fast(const lc_ctx *ctx, float *dx, float *dlora_a, float *dlora_b, const float *dy,
                             const float *x, const float *xa, const float *lora_a, const float *lora_b,
                             float lora_scale, int r, int T, int O, int I) {
    lc_ctx c = *ctx;
    float *g;
    if (T < LC__LORA_GEMM_T || !(g = (float *)LOLCATS_MALLOC(sizeof(float) * (size_t)T * r))) return 0;
    c.compute = LOLCATS_COMPUTE_F32;
    lc_gemm(&c, g, dy, lora_b, LOLCATS_DTYPE_F32, T, r, O, 0, 0, lora_scale, 0.0f, (size_t)r, (size_t)O, (size_t)r,
            NULL);
    if (dlora_b)
        lc_gemm(&c, dlora_b, dy, xa, LOLCATS_DTYPE_F32, O, r, T, 1, 0, lora_scale, 1.0f, (size_t)r, (size_t)O,
                (size_t)r, NULL);
    if (dlora_a)
        lc_gemm(&c, dlora_a, g, x, LOLCATS_DTYPE_F32, r, I, T, 1, 0, 1.0f, 1.0f, (size_t)I, (size_t)r, (size_t)I,
                NULL);
    if (dx)
        lc_gemm(&c, dx, g, lora_a, LOLCATS_DTYPE_F32, T, I, r, 0, 0, 1.0f, 1.0f, (size_t)I, (size_t)r, (size_t)I,
                NULL);
    LOLCATS_FREE(g);
    return 1;
}

// The fast forms every SIMD level shares.
#define LC__KERN_FORMS                                                                  \
    lc__fmap_fwd_fast, lc__fmap_bwd_fast, lc__softmax_fwd_fast, lc__hybrid_fwd_fast,     \
        lc__hybrid_bwd_fast, lc__xfer_fwd_fast, lc__xfer_bwd_fast, lc__xfer_mse_step,   \
        lc__model_attn_tiled, lc__xent_fast, lc__lora_fwd_fast, lc__lora_bwd_fast
#if defined(LC__X86)
static const lc__kern lc__kern_avx2 = {&lc__prims_avx2, 1, &lc__gk_avx2, &lc__gk_avx2,
                                       lc__gemv_row_avx2, lc__matmul_avx2, lc__qmm_avx2,
                                       LC__KERN_FORMS, NULL};
static const lc__kern lc__kern_avx512 = {&lc__prims_avx512, 1, &lc__gk_avx512, &lc__gk_avx512a,
                                         lc__gemv_row_avx512, lc__matmul_avx2, lc__qmm_avx2,
                                         LC__KERN_FORMS, lc__gemm_bf16_avx512};
#endif
#if defined(LC__NEON)
static const lc__kern lc__kern_neon = {&lc__prims_neon, 1, &lc__gk_neon, &lc__gk_neon,
                                       lc__gemv_row_neon, NULL, NULL, LC__KERN_FORMS, NULL};
#endif
#undef LC__KERN_FORMS
#endif  // !LOLCATS_NO_FAST

// The reference: every fast form NULL.
static const lc__kern lc__kern_ref = {&lc__prims_ref, 0, NULL, NULL, NULL, NULL, NULL, NULL,
                                      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                                      NULL, NULL};

static const lc__kern *lc__kern_for(const lc_ctx *ctx) {
    int s = ctx ? ctx->simd : LOLCATS_SIMD_SCALAR;
    const lc__kern *K = &lc__kern_ref;
#if defined(LC__X86) && !defined(LOLCATS_NO_FAST)
    if (s == LOLCATS_SIMD_AVX512) K = &lc__kern_avx512;
    if (s == LOLCATS_SIMD_AVX2) K = &lc__kern_avx2;
#endif
#if defined(LC__NEON) && !defined(LOLCATS_NO_FAST)
    if (s == LOLCATS_SIMD_NEON) K = &lc__kern_neon;
#endif
    (void)s;
#if defined(LOLCATS_NO_FAST)
    (void)lc__hybrid_fwd_state;  // reached only through the tables
    (void)lc__hybrid_bwd_state;
    (void)lc__fmap_row_bwd_phi;
    (void)lc__threads;
    (void)lc__thread;
    (void)lc__pk_round;
#endif
    if (K != &lc__kern_ref) LC__FAST(ctx);
    return K;
}

// >>errors
LCAPI const char *lc_status_name(lc_status s) {
    switch (s) {
    case LOLCATS_OK: return "ok";
    case LOLCATS_ERR_ARG: return "bad argument";
    case LOLCATS_ERR_IO: return "i/o error";
    case LOLCATS_ERR_FORMAT: return "malformed file";
    case LOLCATS_ERR_NOMEM: return "out of memory";
    case LOLCATS_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown status";
}

LCAPI lc_status lc_error_set(lc_error *err, lc_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        err->code = code;
        err->msg[0] = 0;
        if (fmt) {
            va_start(ap, fmt);
            vsnprintf(err->msg, sizeof err->msg, fmt, ap);
            va_end(ap);
        }
    }
    return code;
}

#ifndef LOLCATS_NO_FILES // (opt-out: see BUILD OPTIONS)
// >>json
// A strict RFC 8259 parser into a flat array of nodes in document order (a
// node's subtree is nodes[i+1 .. end)), so walking a 60K-entry array is a
// pointer hop per element. Strings (values and keys) are decoded once into one
// arena, NUL-terminated; \uXXXX escapes (surrogate pairs too) become UTF-8.
// Raw bytes must be valid UTF-8; lone surrogates, control characters, leading
// zeros, trailing commas, NaN/Infinity, comments and trailing text are errors.
// Numbers are doubles; integer tokens also give an exact int64 (is_int).
// Duplicate keys are kept (lc__json_get returns the first).
#define LC__JSON_MAX_DEPTH 128

enum {
    LC__JSON_NULL = 0, LC__JSON_FALSE, LC__JSON_TRUE, LC__JSON_NUMBER,
    LC__JSON_STRING, LC__JSON_ARRAY, LC__JSON_OBJECT
};

typedef struct lc__json_node {
    int type;                     // LC__JSON_*
    int is_int;                   // NUMBER written as an integer that fits int64
    uint32_t count;               // ARRAY / OBJECT: number of children
    uint32_t end;                 // index one past this node's subtree
    size_t len;                   // STRING: decoded length in bytes
    size_t key_len;
    const char *key;              // member name when the parent is an OBJECT
    const char *str;              // STRING: decoded, NUL-terminated
    double num;                   // NUMBER
    int64_t i64;                  // NUMBER with is_int
} lc__json_node;

typedef struct lc__json {
    lc__json_node *nodes;         // nodes[0] is the root
    uint32_t n, cap;
    char *strings;                // arena of decoded strings
} lc__json;

typedef struct lc__json_parser {
    const char *s, *p, *e;        // start, cursor, end
    lc__json *doc;
    char *out;                    // arena cursor
    const char *what;
    lc_error *err;
} lc__json_parser;

LC__FILES_FN const char *lc__json_type_name(int type) {
    static const char *names[] = {"null", "false", "true", "number", "string", "array",
                                  "object"};
    return type >= 0 && type <= LC__JSON_OBJECT ? names[type] : "?";
}

LC__FILES_FN lc_status lc__json_fail(lc__json_parser *ps, const char *at, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    size_t line = 1, col = 1;
    const char *q;
    char found[16];
    if (at > ps->e) at = ps->e;
    for (q = ps->s; q < at; q++) {
        if (*q == '\n') { line++; col = 1; }
        else if (((unsigned char)*q & 0xC0) != 0x80) col++;   // count characters
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at >= ps->e) snprintf(found, sizeof found, "end of input");
    else if ((unsigned char)*at >= 0x20 && (unsigned char)*at < 0x7f) snprintf(found, sizeof found, "'%c'", *at);
    else snprintf(found, sizeof found, "byte 0x%02x", (unsigned)(unsigned char)*at);
    return lc_error_set(ps->err, LOLCATS_ERR_FORMAT,
                        "%s: JSON error at line %lu, column %lu (byte %lu): %s, found %s",
                        ps->what ? ps->what : "<json>", (unsigned long)line,
                        (unsigned long)col, (unsigned long)(at - ps->s), msg, found);
}

LC__FILES_FN void lc__json_ws(lc__json_parser *ps) {
    const char *p = ps->p, *e = ps->e;
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    ps->p = p;
}

LC__FILES_FN lc_status lc__json_push(lc__json_parser *ps, int type, uint32_t *idx) {
    lc__json *d = ps->doc;
    if (d->n == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : 64;
        lc__json_node *nn;
        if (d->cap >= 0x7fffffffu / 2 || (size_t)cap * sizeof *nn / sizeof *nn != (size_t)cap)
            return lc__json_fail(ps, ps->p, "too many JSON values");
        nn = (lc__json_node *)LOLCATS_REALLOC(d->nodes, (size_t)cap * sizeof *nn);
        if (!nn)
            return lc_error_set(ps->err, LOLCATS_ERR_NOMEM, "%s: out of memory parsing JSON (%lu values)",
                                ps->what ? ps->what : "<json>", (unsigned long)d->n);
        d->nodes = nn;
        d->cap = cap;
    }
    *idx = d->n++;
    memset(&d->nodes[*idx], 0, sizeof d->nodes[*idx]);
    d->nodes[*idx].type = type;
    d->nodes[*idx].end = d->n;
    return LOLCATS_OK;
}

LC__FILES_FN int lc__json_hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

// Length of the valid UTF-8 sequence at p (1..4), 0 if invalid.
LC__FILES_FN int lc__utf8_len(const unsigned char *p, const unsigned char *e) {
    unsigned c = p[0];
    int n, i;
    unsigned cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; }
    else return 0;
    if (e - p < n) return 0;
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    return n;
}

LC__FILES_FN char *lc__utf8_put(char *o, unsigned cp) {
    if (cp < 0x80) *o++ = (char)cp;
    else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

// Decodes the string at ps->p (on the opening quote) into the arena.
// Every escape is at least as long as its UTF-8, so the arena (input length
// + 1) never overflows.
LC__FILES_FN lc_status lc__json_string(lc__json_parser *ps, const char **str, size_t *len) {
    const char *p = ps->p + 1, *e = ps->e;
    char *o = ps->out, *start = ps->out;
    for (;;) {
        unsigned char c;
        if (p >= e) return lc__json_fail(ps, p, "unterminated string");
        c = (unsigned char)*p;
        if (c == '"') break;
        if (c < 0x20) return lc__json_fail(ps, p, "raw control character in string (write it as \\u%04x)", c);
        if (c == '\\') {
            unsigned cp;
            if (p + 1 >= e) return lc__json_fail(ps, p + 1, "unterminated escape");
            switch (p[1]) {
            case '"': *o++ = '"'; p += 2; continue;
            case '\\': *o++ = '\\'; p += 2; continue;
            case '/': *o++ = '/'; p += 2; continue;
            case 'b': *o++ = '\b'; p += 2; continue;
            case 'f': *o++ = '\f'; p += 2; continue;
            case 'n': *o++ = '\n'; p += 2; continue;
            case 'r': *o++ = '\r'; p += 2; continue;
            case 't': *o++ = '\t'; p += 2; continue;
            case 'u': break;
            default: return lc__json_fail(ps, p, "unknown escape \\%c", p[1]);
            }
            if (e - p < 6 || !lc__json_hex4(p + 2, &cp))
                return lc__json_fail(ps, p, "\\u must be followed by 4 hex digits");
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return lc__json_fail(ps, p, "lone low surrogate \\u%04X", cp);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (e - p < 12 || p[6] != '\\' || p[7] != 'u' || !lc__json_hex4(p + 8, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return lc__json_fail(ps, p, "high surrogate \\u%04X not followed by a low surrogate", cp);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            o = lc__utf8_put(o, cp);
            p += 6;
        } else if (c < 0x80) {
            *o++ = (char)c;
            p++;
        } else {
            int n = lc__utf8_len((const unsigned char *)p, (const unsigned char *)e);
            if (!n) return lc__json_fail(ps, p, "invalid UTF-8 in string");
            memcpy(o, p, (size_t)n);
            o += n;
            p += n;
        }
    }
    *o++ = 0;
    *str = start;
    *len = (size_t)(o - start - 1);
    ps->out = o;
    ps->p = p + 1;
    return LOLCATS_OK;
}

LC__FILES_FN lc_status lc__json_number(lc__json_parser *ps, lc__json_node *nd) {
    const char *p = ps->p, *e = ps->e, *start = p;
    int neg = 0, is_int = 1, overflow = 0;
    uint64_t v = 0;
    if (p < e && *p == '-') { neg = 1; p++; }
    if (p >= e || *p < '0' || *p > '9') return lc__json_fail(ps, p, "expected a digit");
    if (*p == '0') {
        p++;
        if (p < e && *p >= '0' && *p <= '9') return lc__json_fail(ps, p, "leading zero in number");
    } else {
        while (p < e && *p >= '0' && *p <= '9') {
            unsigned dgt = (unsigned)(*p - '0');
            if (v > (UINT64_MAX - dgt) / 10) overflow = 1;
            else v = v * 10 + dgt;
            p++;
        }
    }
    if (p < e && *p == '.') {
        is_int = 0;
        p++;
        if (p >= e || *p < '0' || *p > '9') return lc__json_fail(ps, p, "expected a digit after '.'");
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        is_int = 0;
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return lc__json_fail(ps, p, "expected a digit in exponent");
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (is_int && !overflow && (neg ? v <= (uint64_t)INT64_MAX + 1 : v <= (uint64_t)INT64_MAX)) {
        nd->is_int = 1;
        nd->i64 = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
        nd->num = neg ? -(double)v : (double)v;
    } else {
        // strtod on a NUL-terminated copy; if the C locale's decimal point is
        // not '.', substitute it.
        char buf[128], *tmp = buf, *endp;
        size_t n = (size_t)(p - start);
        double x;
        if (n >= sizeof buf) {
            tmp = (char *)LOLCATS_MALLOC(n + 1);
            if (!tmp) return lc_error_set(ps->err, LOLCATS_ERR_NOMEM, "out of memory parsing a number");
        }
        memcpy(tmp, start, n);
        tmp[n] = 0;
        x = strtod(tmp, &endp);
        if (endp != tmp + n) {
            char *dot = strchr(tmp, '.');
            const char *dp = localeconv()->decimal_point;
            if (dot && dp && dp[0] && !dp[1]) *dot = dp[0];
            x = strtod(tmp, &endp);
        }
        if (tmp != buf) LOLCATS_FREE(tmp);
        if (x > 1.79769313486231570815e308 || x < -1.79769313486231570815e308)
            return lc__json_fail(ps, start, "number out of the range of a double");
        nd->num = x;
    }
    ps->p = p;
    return LOLCATS_OK;
}

LC__FILES_FN lc_status lc__json_value(lc__json_parser *ps, int depth, const char *key, size_t key_len) {
    lc__json *d = ps->doc;
    const char *p;
    uint32_t idx = 0;
    lc_status st;
    int type;
    lc__json_ws(ps);
    p = ps->p;
    if (p >= ps->e) return lc__json_fail(ps, p, "expected a value");
    switch (*p) {
    case '{': type = LC__JSON_OBJECT; break;
    case '[': type = LC__JSON_ARRAY; break;
    case '"': type = LC__JSON_STRING; break;
    case 't': type = LC__JSON_TRUE; break;
    case 'f': type = LC__JSON_FALSE; break;
    case 'n': type = LC__JSON_NULL; break;
    default:
        if (*p == '-' || (*p >= '0' && *p <= '9')) { type = LC__JSON_NUMBER; break; }
        return lc__json_fail(ps, p, "expected a value");
    }
    if ((st = lc__json_push(ps, type, &idx)) != LOLCATS_OK) return st;
    d->nodes[idx].key = key;
    d->nodes[idx].key_len = key_len;
    if (type == LC__JSON_TRUE || type == LC__JSON_FALSE || type == LC__JSON_NULL) {
        const char *word = type == LC__JSON_TRUE ? "true" : type == LC__JSON_FALSE ? "false" : "null";
        size_t n = strlen(word);
        if ((size_t)(ps->e - p) < n || memcmp(p, word, n) != 0)
            return lc__json_fail(ps, p, "expected a value");
        ps->p = p + n;
        return LOLCATS_OK;
    }
    if (type == LC__JSON_NUMBER) return lc__json_number(ps, &d->nodes[idx]);
    if (type == LC__JSON_STRING) {
        const char *s;
        size_t n;
        if ((st = lc__json_string(ps, &s, &n)) != LOLCATS_OK) return st;
        d->nodes[idx].str = s;
        d->nodes[idx].len = n;
        return LOLCATS_OK;
    }
    if (depth >= LC__JSON_MAX_DEPTH)
        return lc__json_fail(ps, p, "nesting deeper than %d levels", LC__JSON_MAX_DEPTH);
    ps->p = p + 1;
    lc__json_ws(ps);
    if (ps->p < ps->e && *ps->p == (type == LC__JSON_OBJECT ? '}' : ']')) {
        ps->p++;
        return LOLCATS_OK;
    }
    for (;;) {
        const char *k = NULL;
        size_t kn = 0;
        if (type == LC__JSON_OBJECT) {
            lc__json_ws(ps);
            if (ps->p >= ps->e || *ps->p != '"') return lc__json_fail(ps, ps->p, "expected a string key");
            if ((st = lc__json_string(ps, &k, &kn)) != LOLCATS_OK) return st;
            lc__json_ws(ps);
            if (ps->p >= ps->e || *ps->p != ':') return lc__json_fail(ps, ps->p, "expected ':' after key");
            ps->p++;
        }
        if ((st = lc__json_value(ps, depth + 1, k, kn)) != LOLCATS_OK) return st;
        d->nodes[idx].count++;
        lc__json_ws(ps);
        if (ps->p < ps->e && *ps->p == ',') { ps->p++; continue; }
        if (ps->p < ps->e && *ps->p == (type == LC__JSON_OBJECT ? '}' : ']')) { ps->p++; break; }
        return lc__json_fail(ps, ps->p, type == LC__JSON_OBJECT ? "expected ',' or '}' in object"
                                                               : "expected ',' or ']' in array");
    }
    d->nodes[idx].end = d->n;
    return LOLCATS_OK;
}

LC__FILES_FN void lc__json_free(lc__json *doc) {
    if (!doc) return;
    LOLCATS_FREE(doc->nodes);
    LOLCATS_FREE(doc->strings);
    memset(doc, 0, sizeof *doc);
}

// Parses text[0..len) (need not be NUL-terminated) into doc. what names the
// source in error messages ("config.json"); errors give line, column, byte.
// On error doc is left empty; lc__json_free is always safe.
LC__FILES_FN lc_status lc__json_parse(lc__json *doc, const char *text, size_t len,
                                      const char *what, lc_error *err) {
    lc__json_parser ps;
    lc_status st;
    memset(doc, 0, sizeof *doc);
    if (!text && len) return lc_error_set(err, LOLCATS_ERR_ARG, "%s: NULL JSON text", what ? what : "<json>");
    if (len >= 0x7fffffffu)
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "%s: JSON text of %lu bytes is over the 2 GB limit",
                            what ? what : "<json>", (unsigned long)len);
    doc->strings = (char *)LOLCATS_MALLOC(len + 1);
    if (!doc->strings) return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory for JSON strings", what ? what : "<json>");
    ps.s = ps.p = text ? text : "";
    ps.e = ps.s + len;
    ps.doc = doc;
    ps.out = doc->strings;
    ps.what = what;
    ps.err = err;
    st = lc__json_value(&ps, 0, NULL, 0);
    if (st == LOLCATS_OK) {
        lc__json_ws(&ps);
        if (ps.p != ps.e) st = lc__json_fail(&ps, ps.p, "trailing characters after the JSON value");
    }
    if (st != LOLCATS_OK) lc__json_free(doc);
    return st;
}

LC__FILES_FN const lc__json_node *lc__json_root(const lc__json *doc) {
    return doc && doc->n ? &doc->nodes[0] : NULL;
}

// First child of an array / object, NULL if none.
LC__FILES_FN const lc__json_node *lc__json_first(const lc__json *doc, const lc__json_node *node) {
    (void)doc;
    if (!node || (node->type != LC__JSON_ARRAY && node->type != LC__JSON_OBJECT) || !node->count) return NULL;
    return node + 1;
}

// Sibling after child inside parent, NULL at the end.
LC__FILES_FN const lc__json_node *lc__json_next(const lc__json *doc, const lc__json_node *parent,
                                                const lc__json_node *child) {
    const lc__json_node *nx;
    if (!doc || !parent || !child) return NULL;
    nx = doc->nodes + child->end;
    return nx < doc->nodes + parent->end ? nx : NULL;
}

// Object member by key (first match), NULL if node is not an object or has no such key.
LC__FILES_FN const lc__json_node *lc__json_get(const lc__json *doc, const lc__json_node *obj, const char *key) {
    const lc__json_node *c;
    size_t kn;
    if (!obj || obj->type != LC__JSON_OBJECT || !key) return NULL;
    kn = strlen(key);
    for (c = lc__json_first(doc, obj); c; c = lc__json_next(doc, obj, c))
        if (c->key_len == kn && memcmp(c->key, key, kn) == 0) return c;
    return NULL;
}

// Array element i (linear), NULL when out of range.
LC__FILES_FN const lc__json_node *lc__json_at(const lc__json *doc, const lc__json_node *arr, uint32_t i) {
    const lc__json_node *c;
    if (!arr || arr->type != LC__JSON_ARRAY || i >= arr->count) return NULL;
    for (c = lc__json_first(doc, arr); c && i; i--) c = lc__json_next(doc, arr, c);
    return c;
}

// Typed getters with defaults, for config files.
LC__FILES_FN double lc__json_num(const lc__json_node *n, double dflt) {
    return n && n->type == LC__JSON_NUMBER ? n->num : dflt;
}
LC__FILES_FN const char *lc__json_str(const lc__json_node *n, const char *dflt) {
    return n && n->type == LC__JSON_STRING ? n->str : dflt;
}

// >>mmap
enum { LC__MAP_NONE = 0, LC__MAP_MAPPED = 1, LC__MAP_HEAP = 2 };

// Every file the library reads must be a regular file: a directory, a FIFO
// (reading it blocks until someone writes), a device (/dev/zero never ends) or
// a socket is refused up front, naming what was found. mode: a stat st_mode.
LC__FILES_FN lc_status lc__regular_mode(unsigned long mode, const char *path, lc_error *err) {
#if defined(_WIN32)
    (void)mode; (void)path; (void)err;
    return LOLCATS_OK;
#else
    const char *kind = S_ISREG(mode) ? NULL : S_ISDIR(mode) ? "a directory" : S_ISFIFO(mode) ? "a FIFO (named pipe)"
                     : S_ISCHR(mode) ? "a character device" : S_ISBLK(mode) ? "a block device" : "not a regular file";
    if (!kind) return LOLCATS_OK;
    return lc_error_set(err, LOLCATS_ERR_IO, "%s: is %s, expected a regular file%s", path, kind,
                        S_ISDIR(mode) ? " (check the path)" : ": reading it could block or never end; save the "
                        "contents to a file and pass that");
#endif
}

// 1 when path exists (without opening it: a FIFO would block)
LC__FILES_FN int lc__exists(const char *path) {
#if defined(_WIN32)
    FILE *fp = fopen(path, "rb");
    if (fp) fclose(fp);
    return fp != NULL;
#else
    struct stat sb;
    return stat(path, &sb) == 0;
#endif
}

// stat + lc__regular_mode, before a file is opened with fopen
LC__FILES_FN lc_status lc__regular(const char *path, lc_error *err) {
#if defined(_WIN32)
    (void)path; (void)err;
    return LOLCATS_OK;
#else
    struct stat sb;
    if (stat(path, &sb) != 0)
        return lc_error_set(err, LOLCATS_ERR_IO, "%s: cannot open: %s (check the path)", path, strerror(errno));
    return lc__regular_mode((unsigned long)sb.st_mode, path, err);
#endif
}

typedef struct lc__map {
    const void *data;
    size_t size;
    int kind;                     // LC__MAP_*
#if defined(_WIN32)
    HANDLE mapping;
#endif
} lc__map;

// Reads all of an opened FILE into a heap buffer.
LC__FILES_FN lc_status lc__map_read(lc__map *m, FILE *fp, const char *path, lc_error *err) {
    size_t cap = 1 << 16, n = 0;
    char *buf = (char *)LOLCATS_MALLOC(cap);
    if (!buf) return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory reading the file", path);
    for (;;) {
        size_t got;
        if (n == cap) {
            char *nb;
            if (cap > (size_t)-1 / 2) { LOLCATS_FREE(buf); return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: file too large to read", path); }
            nb = (char *)LOLCATS_REALLOC(buf, cap * 2);
            if (!nb) {
                LOLCATS_FREE(buf);
                return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory reading the file (%lu bytes so far)",
                                    path, (unsigned long)n);
            }
            buf = nb;
            cap *= 2;
        }
        got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) break;
    }
    if (ferror(fp)) {
        LOLCATS_FREE(buf);
        return lc_error_set(err, LOLCATS_ERR_IO, "%s: read error after %lu bytes: %s", path,
                            (unsigned long)n, strerror(errno));
    }
    m->data = buf;
    m->size = n;
    m->kind = LC__MAP_HEAP;
    return LOLCATS_OK;
}

LC__FILES_FN lc_status lc__map_read_path(lc__map *m, const char *path, lc_error *err) {
    lc_status st;
    FILE *fp;
    if ((st = lc__regular(path, err))) return st;
    fp = fopen(path, "rb");
    if (!fp) return lc_error_set(err, LOLCATS_ERR_IO, "%s: cannot open: %s (check the path)", path, strerror(errno));
    st = lc__map_read(m, fp, path, err);
    fclose(fp);
    return st;
}

LC__FILES_FN lc_status lc__map_file(lc__map *m, const char *path, lc_error *err) {
    memset(m, 0, sizeof *m);
    if (!path) return lc_error_set(err, LOLCATS_ERR_ARG, "lc__map_file: NULL path");
#if defined(LOLCATS_NO_MMAP)
    return lc__map_read_path(m, path, err);
#elif defined(_WIN32)
    {
        HANDLE fh = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                                FILE_ATTRIBUTE_NORMAL, NULL);
        LARGE_INTEGER sz;
        HANDLE mh;
        const void *view;
        if (fh == INVALID_HANDLE_VALUE)
            return lc_error_set(err, LOLCATS_ERR_IO, "%s: cannot open (Windows error %lu; check the path)",
                                path, (unsigned long)GetLastError());
        if (GetFileType(fh) != FILE_TYPE_DISK || !GetFileSizeEx(fh, &sz) || sz.QuadPart <= 0 ||
            (unsigned long long)sz.QuadPart > (unsigned long long)(size_t)-1) {
            CloseHandle(fh);
            return lc__map_read_path(m, path, err);
        }
        mh = CreateFileMappingA(fh, NULL, PAGE_READONLY, 0, 0, NULL);
        CloseHandle(fh);
        if (!mh) return lc__map_read_path(m, path, err);
        view = MapViewOfFile(mh, FILE_MAP_READ, 0, 0, 0);
        if (!view) { CloseHandle(mh); return lc__map_read_path(m, path, err); }
        m->data = view;
        m->size = (size_t)sz.QuadPart;
        m->kind = LC__MAP_MAPPED;
        m->mapping = mh;
        return LOLCATS_OK;
    }
#else
    {
        struct stat sb;
        void *p;
        lc_status st;
        int fd = open(path, O_RDONLY | O_NONBLOCK);   // a FIFO must not block the open
        if (fd < 0) return lc_error_set(err, LOLCATS_ERR_IO, "%s: cannot open: %s (check the path)", path, strerror(errno));
        if (fstat(fd, &sb) == 0 && (st = lc__regular_mode((unsigned long)sb.st_mode, path, err))) {
            close(fd);
            return st;
        }
        if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size <= 0 ||
            (unsigned long long)sb.st_size > (unsigned long long)(size_t)-1) {
            close(fd);
            return lc__map_read_path(m, path, err);
        }
        p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (p == MAP_FAILED) return lc__map_read_path(m, path, err);
        m->data = p;
        m->size = (size_t)sb.st_size;
        m->kind = LC__MAP_MAPPED;
        return LOLCATS_OK;
    }
#endif
}

LC__FILES_FN void lc__map_free(lc__map *m) {
    if (!m) return;
    if (m->kind == LC__MAP_HEAP) LOLCATS_FREE((void *)m->data);
#if !defined(LOLCATS_NO_MMAP)
    else if (m->kind == LC__MAP_MAPPED) {
#if defined(_WIN32)
        UnmapViewOfFile(m->data);
        CloseHandle(m->mapping);
#else
        munmap((void *)m->data, m->size);
#endif
    }
#endif
    memset(m, 0, sizeof *m);
}

// >>safetensors
#define LC__ST_MAX_HEADER 100000000u

#endif // !LOLCATS_NO_FILES (kept: used by the kernels)
static const char *const lc__dtype_names[LOLCATS_DTYPE_COUNT] = {
    "F32", "F16", "BF16", "I32", "I64", "U8", "F64", "I8", "I16", "U16", "U32", "U64",
    "BOOL", "F8_E4M3", "F8_E5M2", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"};
static const unsigned char lc__dtype_sizes[LOLCATS_DTYPE_COUNT] = {4, 2, 2, 4, 8, 1, 8, 1, 2, 2, 4, 8, 1, 1, 1,
                                                                   0, 0, 0, 0, 0};   // block types: lc_dtype_block

LCAPI const char *lc_dtype_name(lc_dtype dt) {
    return (int)dt >= 0 && (int)dt < LOLCATS_DTYPE_COUNT ? lc__dtype_names[dt] : "?";
}

LCAPI size_t lc_dtype_size(lc_dtype dt) {
    return (int)dt >= 0 && (int)dt < LOLCATS_DTYPE_COUNT ? lc__dtype_sizes[dt] : 0;
}

LCAPI int lc_dtype_parse(const char *name) {
    int i;
    if (!name) return -1;
    for (i = 0; i <= LOLCATS_DTYPE_F8_E5M2; i++)   // the safetensors dtypes
        if (!strcmp(name, lc__dtype_names[i])) return i;
    return -1;
}

LCAPI size_t lc_tensor_numel(const lc_tensor *t) {
    size_t n = 1;
    int i;
    for (i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

#ifndef LOLCATS_NO_FILES

struct lc_st_file {
    char *path;
    lc__map map;
    lc__json doc;                 // keeps the decoded names and metadata alive
    lc_tensor *tensors;           // sorted by data offset
    int n;
    uint32_t *hash;               // open addressing: tensor index + 1, 0 empty
    size_t hash_mask;
    const char **meta;            // key, value, key, value...
    int n_meta;
};

LC__FILES_FN uint32_t lc__st_hash_str(const char *s) {
    uint32_t h = 2166136261u;
    while (*s) { h ^= (unsigned char)*s++; h *= 16777619u; }
    return h;
}

// Builds an open-addressing table over names; returns the index of the first
// duplicate name, -1 if none, -2 when out of memory.
LC__FILES_FN int lc__st_hash_build(uint32_t **table, size_t *mask, const lc_tensor *t, int n) {
    size_t cap = 16, i;
    uint32_t *h;
    while (cap < (size_t)n * 2) cap *= 2;
    h = (uint32_t *)LOLCATS_MALLOC(cap * sizeof *h);
    if (!h) return -2;
    memset(h, 0, cap * sizeof *h);
    for (i = 0; i < (size_t)n; i++) {
        size_t j = lc__st_hash_str(t[i].name) & (cap - 1);
        while (h[j]) {
            if (!strcmp(t[h[j] - 1].name, t[i].name)) { LOLCATS_FREE(h); return (int)i; }
            j = (j + 1) & (cap - 1);
        }
        h[j] = (uint32_t)i + 1;
    }
    *table = h;
    *mask = cap - 1;
    return -1;
}

// Short printable rendering of a JSON value for error messages.
LC__FILES_FN const char *lc__json_show(const lc__json_node *v, char *buf, size_t n) {
    if (!v) snprintf(buf, n, "(missing)");
    else if (v->type == LC__JSON_NUMBER) snprintf(buf, n, "%.17g", v->num);
    else if (v->type == LC__JSON_STRING) snprintf(buf, n, "\"%.60s%s\"", v->str, v->len > 60 ? "..." : "");
    else snprintf(buf, n, "%s%s", v->type == LC__JSON_ARRAY || v->type == LC__JSON_OBJECT ? "an " : "",
                  lc__json_type_name(v->type));
    return buf;
}

LC__FILES_FN int lc__st_cmp_offset(const void *pa, const void *pb) {
    const lc_tensor *a = (const lc_tensor *)pa, *b = (const lc_tensor *)pb;
    // data holds the begin offset while sorting; ties broken by end, then name
    uintptr_t ab = (uintptr_t)a->data, bb = (uintptr_t)b->data;
    if (ab != bb) return ab < bb ? -1 : 1;
    if (a->nbytes != b->nbytes) return a->nbytes < b->nbytes ? -1 : 1;
    return strcmp(a->name, b->name);
}

// The 8-byte little-endian header length hlen, checked against the file and the
// limit, and the JSON header parsed into f->doc (a JSON object).
LC__FILES_FN lc_status lc__st_header(lc_st_file *f, const unsigned char *base, size_t size,
                                     uint64_t *hlen_out, lc_error *err) {
    const char *path = f->path;
    char what[300], shown[96];
    uint64_t hlen = 0;
    const lc__json_node *root;
    lc_status st;
    int k;
    if (size < 8)
        return lc_error_set(err, LOLCATS_ERR_FORMAT,
                            "%s: file is %lu bytes, shorter than the 8-byte header length "
                            "(truncated, or not a safetensors file)", path, (unsigned long)size);
    for (k = 7; k >= 0; k--) hlen = (hlen << 8) | base[k];
    if (hlen > size - 8)
        return lc_error_set(err, LOLCATS_ERR_FORMAT,
                            "%s: header length %llu (bytes 0..7) runs past the end of the %lu-byte file "
                            "(truncated download, or not a safetensors file)",
                            path, (unsigned long long)hlen, (unsigned long)size);
    if (hlen > LC__ST_MAX_HEADER)
        return lc_error_set(err, LOLCATS_ERR_FORMAT,
                            "%s: header length %llu exceeds the 100 MB limit (corrupt file?)",
                            path, (unsigned long long)hlen);
    if (hlen < 2 || base[8] != '{')
        return lc_error_set(err, LOLCATS_ERR_FORMAT,
                            "%s: header (offset 8, %llu bytes) does not start with '{' "
                            "(not a safetensors file)", path, (unsigned long long)hlen);
    *hlen_out = hlen;
    snprintf(what, sizeof what, "%s: header", path);
    if ((st = lc__json_parse(&f->doc, (const char *)base + 8, (size_t)hlen, what, err)) != LOLCATS_OK)
        return st;
    root = lc__json_root(&f->doc);
    if (root->type != LC__JSON_OBJECT)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: header is %s, not a JSON object",
                            path, lc__json_show(root, shown, sizeof shown));
    return LOLCATS_OK;
}

// "__metadata__" (null, or an object of strings) into f->meta as key, value pairs.
LC__FILES_FN lc_status lc__st_meta(lc_st_file *f, const lc__json_node *m, lc_error *err) {
    const char *path = f->path;
    const lc__json_node *v;
    char shown[96];
    int nm = 0;
    if (m->type == LC__JSON_NULL) return LOLCATS_OK;
    if (m->type != LC__JSON_OBJECT)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: \"__metadata__\" is %s; it must be an object of strings",
                            path, lc__json_show(m, shown, sizeof shown));
    f->meta = (const char **)LOLCATS_MALLOC((2 * (size_t)m->count + 2) * sizeof *f->meta);
    if (!f->meta) return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory for metadata", path);
    for (v = lc__json_first(&f->doc, m); v; v = lc__json_next(&f->doc, m, v)) {
        if (v->type != LC__JSON_STRING)
            return lc_error_set(err, LOLCATS_ERR_FORMAT,
                                "%s: __metadata__ value of \"%s\" is %s; safetensors metadata values must be "
                                "strings (quote it)", path, v->key, lc__json_show(v, shown, sizeof shown));
        f->meta[2 * nm] = v->key;
        f->meta[2 * nm + 1] = v->str;
        nm++;
    }
    f->n_meta = nm;
    return LOLCATS_OK;
}

// One tensor entry m into t: dtype known, shape of non-negative integers whose
// element count times the dtype size fits 64 bits and equals end - begin of
// data_offsets, which lie inside the data area (data_size bytes after the
// 8 + hlen header bytes of a size-byte file). t->data holds begin for now.
LC__FILES_FN lc_status lc__st_entry(lc_st_file *f, const lc__json_node *m, lc_tensor *t,
                                    size_t data_size, uint64_t hlen, size_t size, lc_error *err) {
    const char *path = f->path;
    const lc__json_node *dt, *sh, *off, *v;
    char shown[96];
    uint64_t b, e, numel = 1;
    int d;
    if (m->type != LC__JSON_OBJECT)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor '%s': entry is %s, expected an object with "
                            "dtype, shape, data_offsets", path, m->key, lc__json_show(m, shown, sizeof shown));
    memset(t, 0, sizeof *t);
    t->name = m->key;
    dt = lc__json_get(&f->doc, m, "dtype");
    sh = lc__json_get(&f->doc, m, "shape");
    off = lc__json_get(&f->doc, m, "data_offsets");
    if (!dt || dt->type != LC__JSON_STRING || (d = lc_dtype_parse(dt->str)) < 0)
        return lc_error_set(err, LOLCATS_ERR_FORMAT,
                            "%s: tensor '%s': dtype %s is not one of F32 F16 BF16 F64 I8 I16 I32 I64 U8 U16 "
                            "U32 U64 BOOL F8_E4M3 F8_E5M2", path, t->name, lc__json_show(dt, shown, sizeof shown));
    t->dtype = (lc_dtype)d;
    if (!sh || sh->type != LC__JSON_ARRAY)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor '%s': shape is %s, expected an array of "
                            "non-negative integers", path, t->name, lc__json_show(sh, shown, sizeof shown));
    if (sh->count > LOLCATS_MAX_DIMS)
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "%s: tensor '%s': %lu dimensions, more than "
                            "LOLCATS_MAX_DIMS (%d)", path, t->name, (unsigned long)sh->count, LOLCATS_MAX_DIMS);
    for (v = lc__json_first(&f->doc, sh); v; v = lc__json_next(&f->doc, sh, v)) {
        if (v->type != LC__JSON_NUMBER || !v->is_int || v->i64 < 0)
            return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor '%s': shape[%d] is %s, expected a "
                                "non-negative integer", path, t->name, t->ndim, lc__json_show(v, shown, sizeof shown));
        if (v->i64 && numel > UINT64_MAX / (uint64_t)v->i64)
            return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor '%s': shape[%d] = %lld makes the element "
                                "count overflow 64 bits", path, t->name, t->ndim, (long long)v->i64);
        numel *= (uint64_t)v->i64;
        t->shape[t->ndim++] = v->i64;
    }
    if (!off || off->type != LC__JSON_ARRAY || off->count != 2)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor '%s': data_offsets is %s%s, expected [begin, end]",
                            path, t->name, lc__json_show(off, shown, sizeof shown),
                            off && off->type == LC__JSON_ARRAY ? (off->count < 2 ? " too short" : " too long") : "");
    v = lc__json_first(&f->doc, off);
    if (v->type != LC__JSON_NUMBER || !v->is_int || v->i64 < 0 ||
        v[1].type != LC__JSON_NUMBER || !v[1].is_int || v[1].i64 < 0)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor '%s': data_offsets [%s, ...] must be two "
                            "non-negative integers", path, t->name, lc__json_show(v, shown, sizeof shown));
    b = (uint64_t)v->i64;
    e = (uint64_t)v[1].i64;
    if (b > e)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] has begin after end",
                            path, t->name, (unsigned long long)b, (unsigned long long)e);
    if (e > data_size)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end past the "
                            "%lu-byte data area (file offset %llu > size %lu: truncated file?)",
                            path, t->name, (unsigned long long)b, (unsigned long long)e, (unsigned long)data_size,
                            (unsigned long long)(8 + hlen + e), (unsigned long)size);
    if (numel > UINT64_MAX / lc_dtype_size(t->dtype))
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor '%s': %s shape of %llu elements overflows a "
                            "64-bit byte count", path, t->name, lc_dtype_name(t->dtype), (unsigned long long)numel);
    if (numel * lc_dtype_size(t->dtype) != e - b)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes "
                            "but %s shape of %llu elements needs %llu (header and shape disagree; re-export)",
                            path, t->name, (unsigned long long)b, (unsigned long long)e,
                            (unsigned long long)(e - b), lc_dtype_name(t->dtype), (unsigned long long)numel,
                            (unsigned long long)(numel * lc_dtype_size(t->dtype)));
    t->nbytes = (size_t)(e - b);
    t->data = (const void *)(uintptr_t)b;  // offset for now, a pointer after sorting
    return LOLCATS_OK;
}

// The f->n tensors in file order, the name table (no duplicates), then the
// ranges must tile the data area (data, data_size bytes at file offset 8 +
// hlen) with no overlap or hole; t->data becomes a pointer.
LC__FILES_FN lc_status lc__st_tile(lc_st_file *f, const unsigned char *data, size_t data_size,
                                   uint64_t hlen, lc_error *err) {
    const char *path = f->path;
    size_t expect = 0, i;
    int n = f->n, dup;
    qsort(f->tensors, (size_t)n, sizeof *f->tensors, lc__st_cmp_offset);
    dup = lc__st_hash_build(&f->hash, &f->hash_mask, f->tensors, n);
    if (dup == -2) return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory for the name table", path);
    if (dup >= 0)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor '%s' appears twice in the header (duplicate name)",
                            path, f->tensors[dup].name);
    for (i = 0; i < (size_t)n; i++) {
        lc_tensor *t = &f->tensors[i];
        size_t b = (size_t)(uintptr_t)t->data;
        if (b < expect)
            return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor '%s': data_offsets [%lu, %lu] overlap tensor '%s' "
                                "which ends at %lu (the header is corrupt; re-export the file)", path, t->name,
                                (unsigned long)b, (unsigned long)(b + t->nbytes), f->tensors[i - 1].name,
                                (unsigned long)expect);
        if (b > expect)
            return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor '%s': data starts at %lu, leaving a hole of %lu "
                                "bytes after offset %lu (safetensors requires the tensors to be contiguous)",
                                path, t->name, (unsigned long)b, (unsigned long)(b - expect), (unsigned long)expect);
        expect = b + t->nbytes;
        t->data = data + b;
    }
    if (expect != data_size)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensors end at data offset %lu but the data area has %lu "
                            "bytes (%lu trailing bytes after file offset %llu)", path, (unsigned long)expect,
                            (unsigned long)data_size, (unsigned long)(data_size - expect),
                            (unsigned long long)(8 + hlen + expect));
    return LOLCATS_OK;
}

// Validates the buffer and fills f (tensors, hash, metadata): the header, its
// entries (the metadata, then each tensor), their ranges.
LC__FILES_FN lc_status lc__st_load(lc_st_file *f, const unsigned char *base, size_t size, lc_error *err) {
    const char *path = f->path;
    uint64_t hlen = 0;
    size_t data_size;
    const lc__json_node *root, *m;
    lc_status st;
    int n = 0, meta_seen = 0;
    if ((st = lc__st_header(f, base, size, &hlen, err)) != LOLCATS_OK) return st;
    data_size = size - 8 - (size_t)hlen;
    root = lc__json_root(&f->doc);
    f->tensors = (lc_tensor *)LOLCATS_MALLOC((root->count ? root->count : 1) * sizeof *f->tensors);
    if (!f->tensors) return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory for %lu tensors", path, (unsigned long)root->count);
    for (m = lc__json_first(&f->doc, root); m; m = lc__json_next(&f->doc, root, m)) {
        if (strlen(m->key) != m->key_len)
            return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: header key \"%s...\" contains a NUL character", path, m->key);
        if (!strcmp(m->key, "__metadata__")) {
            if (meta_seen++)
                return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: \"__metadata__\" appears twice in the header", path);
            if ((st = lc__st_meta(f, m, err)) != LOLCATS_OK) return st;
            continue;
        }
        if ((st = lc__st_entry(f, m, &f->tensors[n], data_size, hlen, size, err)) != LOLCATS_OK) return st;
        n++;
    }
    f->n = n;
    return lc__st_tile(f, base + 8 + hlen, data_size, hlen, err);
}

LC__FILES_FN char *lc__strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = (char *)LOLCATS_MALLOC(n);
    if (d) memcpy(d, s, n);
    return d;
}

LC__FILES_FN lc_st_file *lc__st_new(const char *name, lc_error *err) {
    lc_st_file *f = (lc_st_file *)LOLCATS_MALLOC(sizeof *f);
    if (f) {
        memset(f, 0, sizeof *f);
        f->path = lc__strdup(name);
    }
    if (!f || !f->path) {
        if (f) LOLCATS_FREE(f);
        lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory opening the file", name);
        return NULL;
    }
    return f;
}

LCAPI void lc_st_close(lc_st_file *f) {
    if (!f) return;
    lc__map_free(&f->map);
    lc__json_free(&f->doc);
    LOLCATS_FREE(f->tensors);
    LOLCATS_FREE(f->hash);
    LOLCATS_FREE((void *)f->meta);
    LOLCATS_FREE(f->path);
    LOLCATS_FREE(f);
}

LCAPI lc_status lc_st_open(lc_st_file **out, const char *path, lc_error *err) {
    lc_st_file *f;
    lc_status st;
    if (!out || !path) return lc_error_set(err, LOLCATS_ERR_ARG, "lc_st_open: NULL %s", out ? "path" : "out");
    *out = NULL;
    if (!(f = lc__st_new(path, err))) return LOLCATS_ERR_NOMEM;
    if ((st = lc__map_file(&f->map, path, err)) == LOLCATS_OK)
        st = lc__st_load(f, (const unsigned char *)f->map.data, f->map.size, err);
    if (st != LOLCATS_OK) { lc_st_close(f); return st; }
    *out = f;
    return LOLCATS_OK;
}

LCAPI lc_status lc_st_open_memory(lc_st_file **out, const void *buf, size_t len, const char *name,
                                  lc_error *err) {
    lc_st_file *f;
    lc_status st;
    if (!name) name = "<memory>";
    if (!out || (!buf && len)) return lc_error_set(err, LOLCATS_ERR_ARG, "%s: lc_st_open_memory: NULL %s", name, out ? "buf" : "out");
    *out = NULL;
    if (!(f = lc__st_new(name, err))) return LOLCATS_ERR_NOMEM;
    if ((st = lc__st_load(f, (const unsigned char *)buf, len, err)) != LOLCATS_OK) { lc_st_close(f); return st; }
    *out = f;
    return LOLCATS_OK;
}

LCAPI const char *lc_st_path(const lc_st_file *f) { return f ? f->path : NULL; }
LCAPI int lc_st_count(const lc_st_file *f) { return f ? f->n : 0; }

LCAPI const lc_tensor *lc_st_tensor_at(const lc_st_file *f, int i) {
    return f && i >= 0 && i < f->n ? &f->tensors[i] : NULL;
}

LCAPI const lc_tensor *lc_st_find(const lc_st_file *f, const char *name) {
    size_t j;
    if (!f || !name || !f->hash) return NULL;
    j = lc__st_hash_str(name) & f->hash_mask;
    while (f->hash[j]) {
        const lc_tensor *t = &f->tensors[f->hash[j] - 1];
        if (!strcmp(t->name, name)) return t;
        j = (j + 1) & f->hash_mask;
    }
    return NULL;
}

LCAPI int lc_st_meta_count(const lc_st_file *f) { return f ? f->n_meta : 0; }

LCAPI const char *lc_st_meta(const lc_st_file *f, const char *key) {
    int i;
    if (!f || !key) return NULL;
    for (i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
    return NULL;
}

LCAPI void lc_st_meta_at(const lc_st_file *f, int i, const char **key, const char **val) {
    int ok = f && i >= 0 && i < f->n_meta;
    if (key) *key = ok ? f->meta[2 * i] : NULL;
    if (val) *val = ok ? f->meta[2 * i + 1] : NULL;
}

#endif // !LOLCATS_NO_FILES (kept: used by the kernels)
// ---- conversions
LC__FILES_FN uint32_t lc__f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
LC__FILES_FN float lc__bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

LCAPI float lc_bf16_to_f32(uint16_t h) { return lc__bits_f32((uint32_t)h << 16); }

LCAPI uint16_t lc_f32_to_bf16(float f) {
    uint32_t u = lc__f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x0040u);  // quiet NaN
    u += 0x7FFFu + ((u >> 16) & 1u);                                               // nearest even
    return (uint16_t)(u >> 16);
}

LCAPI float lc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0) {
        if (!m) return lc__bits_f32(sign);
        e = 1;                                   // subnormal: normalize
        while (!(m & 0x400u)) { m <<= 1; e--; }
        m &= 0x3FFu;
        return lc__bits_f32(sign | ((e + 112u) << 23) | (m << 13));
    }
    if (e == 31) return lc__bits_f32(sign | 0x7F800000u | (m << 13));
    return lc__bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

LCAPI uint16_t lc_f32_to_f16(float f) {
    uint32_t u = lc__f32_bits(f), ax = u & 0x7FFFFFFFu, r, rem;
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    if (ax > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((ax >> 13) & 0x3FFu));  // NaN
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);   // >= 65520: inf
    if (ax < 0x38800000u) {                                     // below 2^-14: subnormal
        uint32_t e = ax >> 23, mm = (ax & 0x7FFFFFu) | 0x800000u, shift, half;
        if (ax <= 0x33000000u) return sign;                     // <= 2^-25 rounds to 0
        shift = 126u - e;                                       // value / 2^-24 = mm >> shift
        r = mm >> shift;
        rem = mm & ((1u << shift) - 1u);
        half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (uint16_t)(sign | r);
    }
    r = (ax - 0x38000000u) >> 13;                               // rebias 127 -> 15
    rem = ax & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;
    return (uint16_t)(sign | r);
}

#ifndef LOLCATS_NO_FILES

LC__FILES_FN int lc__little_endian(void) {
    uint32_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

LCAPI const float *lc_tensor_f32(const lc_tensor *t) {
    if (!t || t->dtype != LOLCATS_DTYPE_F32 || ((uintptr_t)t->data & 3u) || !lc__little_endian()) return NULL;
    return (const float *)t->data;
}

LCAPI lc_status lc_tensor_to_f32(const lc_tensor *t, float *dst, lc_error *err) {
    const unsigned char *p;
    size_t n, i;
    if (!t || (!dst && t->nbytes)) return lc_error_set(err, LOLCATS_ERR_ARG, "lc_tensor_to_f32: NULL %s", t ? "dst" : "tensor");
    p = (const unsigned char *)t->data;
    n = lc_tensor_numel(t);
    if (lc_dtype_block(t->dtype) > 1 && t->ndim > 0 && lc_dtype_row_bytes(t->dtype, t->shape[t->ndim - 1]) &&
        (size_t)(n / (size_t)t->shape[t->ndim - 1]) * lc_dtype_row_bytes(t->dtype, t->shape[t->ndim - 1]) == t->nbytes) {
        lc_dequant_row(dst, p, t->dtype, (int64_t)n);   // GGUF blocks (rows are whole blocks)
        return LOLCATS_OK;
    }
    if (lc_dtype_size(t->dtype) == 0 || n * lc_dtype_size(t->dtype) != t->nbytes)
        return lc_error_set(err, LOLCATS_ERR_ARG, "tensor '%s': nbytes %lu does not match %s shape (%lu elements)",
                            t->name ? t->name : "?", (unsigned long)t->nbytes, lc_dtype_name(t->dtype), (unsigned long)n);
#define LC__LE16(q) ((uint16_t)((q)[0] | ((unsigned)(q)[1] << 8)))
#define LC__LE32(q) ((uint32_t)(q)[0] | ((uint32_t)(q)[1] << 8) | ((uint32_t)(q)[2] << 16) | ((uint32_t)(q)[3] << 24))
#define LC__LE64(q) ((uint64_t)LC__LE32(q) | ((uint64_t)LC__LE32((q) + 4) << 32))
    switch (t->dtype) {
    case LOLCATS_DTYPE_F32:
        if (lc__little_endian()) { if (n) memcpy(dst, p, n * 4); }
        else for (i = 0; i < n; i++) dst[i] = lc__bits_f32(LC__LE32(p + 4 * i));
        break;
    case LOLCATS_DTYPE_F16: for (i = 0; i < n; i++) dst[i] = lc_f16_to_f32(LC__LE16(p + 2 * i)); break;
    case LOLCATS_DTYPE_BF16: for (i = 0; i < n; i++) dst[i] = lc_bf16_to_f32(LC__LE16(p + 2 * i)); break;
    case LOLCATS_DTYPE_F64:
        for (i = 0; i < n; i++) {
            uint64_t u = LC__LE64(p + 8 * i);
            double d;
            memcpy(&d, &u, 8);
            dst[i] = (float)d;
            if (isinf(dst[i]) && isfinite(d))  // not a silent inf
                return lc_error_set(err, LOLCATS_ERR_FORMAT, "tensor '%s': F64 element %lu = %g is beyond "
                                    "float range (|x| <= 3.4e38); rescale it or store it as F32",
                                    t->name ? t->name : "?", (unsigned long)i, d);
        }
        break;
    case LOLCATS_DTYPE_I8: for (i = 0; i < n; i++) dst[i] = (float)(signed char)p[i]; break;
    case LOLCATS_DTYPE_U8: for (i = 0; i < n; i++) dst[i] = (float)p[i]; break;
    case LOLCATS_DTYPE_BOOL: for (i = 0; i < n; i++) dst[i] = p[i] ? 1.0f : 0.0f; break;
    case LOLCATS_DTYPE_I16: for (i = 0; i < n; i++) dst[i] = (float)(int16_t)LC__LE16(p + 2 * i); break;
    case LOLCATS_DTYPE_U16: for (i = 0; i < n; i++) dst[i] = (float)LC__LE16(p + 2 * i); break;
    case LOLCATS_DTYPE_I32: for (i = 0; i < n; i++) dst[i] = (float)(int32_t)LC__LE32(p + 4 * i); break;
    case LOLCATS_DTYPE_U32: for (i = 0; i < n; i++) dst[i] = (float)LC__LE32(p + 4 * i); break;
    case LOLCATS_DTYPE_I64: for (i = 0; i < n; i++) dst[i] = (float)(int64_t)LC__LE64(p + 8 * i); break;
    case LOLCATS_DTYPE_U64: for (i = 0; i < n; i++) dst[i] = (float)LC__LE64(p + 8 * i); break;
    default:
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "tensor '%s': converting %s to f32 is not supported "
                            "(cast it to F32/F16/BF16 when exporting)", t->name ? t->name : "?", lc_dtype_name(t->dtype));
    }
#undef LC__LE16
#undef LC__LE32
#undef LC__LE64
    return LOLCATS_OK;
}

// ---- writing
typedef struct lc__buf { char *p; size_t n, cap; int oom; } lc__buf;

LC__FILES_FN void lc__buf_put(lc__buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *np;
        while (cap < b->n + n + 1) cap *= 2;
        np = (char *)LOLCATS_REALLOC(b->p, cap);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

LC__FILES_FN void lc__buf_str(lc__buf *b, const char *s) { lc__buf_put(b, s, strlen(s)); }

LC__FILES_FN void lc__buf_json_str(lc__buf *b, const char *s) {
    lc__buf_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; lc__buf_put(b, esc, 2); }
        else if (c < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", c); lc__buf_put(b, esc, 6); }
        else lc__buf_put(b, s, 1);
    }
    lc__buf_put(b, "\"", 1);
}

#if defined(_WIN32)
#define LC__OPEN_W(p) _open(p, _O_WRONLY | _O_CREAT | _O_TRUNC | _O_BINARY, _S_IREAD | _S_IWRITE)
#define LC__WRITE(fd, p, n) _write(fd, p, (unsigned)(n))
#define LC__FSYNC(fd) _commit(fd)
#define LC__CLOSE(fd) _close(fd)
#define LC__GETPID() _getpid()
#else
#define LC__OPEN_W(p) open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644)
#define LC__WRITE(fd, p, n) write(fd, p, n)
#define LC__FSYNC(fd) fsync(fd)
#define LC__CLOSE(fd) close(fd)
#define LC__GETPID() getpid()
#endif

LC__FILES_FN int lc__write_all(int fd, const void *data, size_t n) {
    const char *p = (const char *)data;
    while (n) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        long w = (long)LC__WRITE(fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return 0;
        p += w;
        n -= (size_t)w;
    }
    return 1;
}

LCAPI lc_status lc_st_write(const char *path, const lc_tensor *tensors, int n,
                            const char *const *meta, int n_meta, lc_error *err) {
    lc__buf h;
    char num[96], *tmp = NULL;
    unsigned char len8[8];
    uint64_t off = 0, hlen;
    uint32_t *hash = NULL;
    size_t mask, tmplen;
    int i, k, fd = -1, dup;
    lc_status st = LOLCATS_OK;

    if (!path) return lc_error_set(err, LOLCATS_ERR_ARG, "lc_st_write: NULL path");
    if (n < 0 || (n && !tensors) || n_meta < 0 || (n_meta && !meta))
        return lc_error_set(err, LOLCATS_ERR_ARG, "%s: lc_st_write: bad tensor list (n=%d) or metadata (n_meta=%d)",
                            path, n, n_meta);
    for (i = 0; i < n; i++) {
        const lc_tensor *t = &tensors[i];
        size_t numel;
        if (!t->name || !strcmp(t->name, "__metadata__"))
            return lc_error_set(err, LOLCATS_ERR_ARG, "%s: tensor #%d has %s name", path, i,
                                t->name ? "the reserved \"__metadata__\"" : "a NULL");
        if (lc_dtype_size(t->dtype) == 0 || t->ndim < 0 || t->ndim > LOLCATS_MAX_DIMS)
            return lc_error_set(err, LOLCATS_ERR_ARG, "%s: tensor '%s': bad dtype %d or ndim %d", path, t->name,
                                (int)t->dtype, t->ndim);
        numel = 1;
        for (k = 0; k < t->ndim; k++) {
            if (t->shape[k] < 0)
                return lc_error_set(err, LOLCATS_ERR_ARG, "%s: tensor '%s': shape[%d] = %lld is negative", path,
                                    t->name, k, (long long)t->shape[k]);
            if (t->shape[k] && numel > (size_t)-1 / 8 / (uint64_t)t->shape[k])
                return lc_error_set(err, LOLCATS_ERR_ARG, "%s: tensor '%s': shape[%d] = %lld overflows the size",
                                    path, t->name, k, (long long)t->shape[k]);
            numel *= (size_t)t->shape[k];
        }
        if (numel * lc_dtype_size(t->dtype) != t->nbytes || (t->nbytes && !t->data))
            return lc_error_set(err, LOLCATS_ERR_ARG, "%s: tensor '%s': nbytes %lu but %s shape holds %lu elements "
                                "(%lu bytes)%s", path, t->name, (unsigned long)t->nbytes, lc_dtype_name(t->dtype),
                                (unsigned long)numel, (unsigned long)(numel * lc_dtype_size(t->dtype)),
                                t->data ? "" : ", or data is NULL");
    }
    for (i = 0; i < 2 * n_meta; i++)
        if (!meta[i]) return lc_error_set(err, LOLCATS_ERR_ARG, "%s: metadata entry %d is NULL", path, i);
    dup = lc__st_hash_build(&hash, &mask, tensors, n);
    if (dup == -2) return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", path);
    LOLCATS_FREE(hash);
    if (dup >= 0) return lc_error_set(err, LOLCATS_ERR_ARG, "%s: tensor name '%s' given twice", path, tensors[dup].name);

    // header
    memset(&h, 0, sizeof h);
    lc__buf_str(&h, "{");
    if (n_meta) {
        lc__buf_str(&h, "\"__metadata__\":{");
        for (i = 0; i < n_meta; i++) {
            if (i) lc__buf_str(&h, ",");
            lc__buf_json_str(&h, meta[2 * i]);
            lc__buf_str(&h, ":");
            lc__buf_json_str(&h, meta[2 * i + 1]);
        }
        lc__buf_str(&h, "}");
    }
    for (i = 0; i < n; i++) {
        const lc_tensor *t = &tensors[i];
        if (i || n_meta) lc__buf_str(&h, ",");
        lc__buf_json_str(&h, t->name);
        lc__buf_str(&h, ":{\"dtype\":\"");
        lc__buf_str(&h, lc_dtype_name(t->dtype));
        lc__buf_str(&h, "\",\"shape\":[");
        for (k = 0; k < t->ndim; k++) {
            snprintf(num, sizeof num, "%s%lld", k ? "," : "", (long long)t->shape[k]);
            lc__buf_str(&h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + t->nbytes));
        lc__buf_str(&h, num);
        off += t->nbytes;
    }
    lc__buf_str(&h, "}");
    while (!h.oom && (8 + h.n) % 8) lc__buf_str(&h, " ");
    if (h.oom) { LOLCATS_FREE(h.p); return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory building the header", path); }
    hlen = h.n;
    for (k = 0; k < 8; k++) len8[k] = (unsigned char)(hlen >> (8 * k));

    // path.tmp.<pid>, fsync, rename
    tmplen = strlen(path) + 32;
    tmp = (char *)LOLCATS_MALLOC(tmplen);
    if (!tmp) { LOLCATS_FREE(h.p); return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", path); }
    snprintf(tmp, tmplen, "%s.tmp.%ld", path, (long)LC__GETPID());
    fd = LC__OPEN_W(tmp);
    if (fd < 0) {
        st = lc_error_set(err, LOLCATS_ERR_IO, "%s: cannot create temporary file %s: %s (is the directory writable?)",
                          path, tmp, strerror(errno));
        LOLCATS_FREE(h.p);
        LOLCATS_FREE(tmp);
        return st;
    }
    if (!lc__write_all(fd, len8, 8) || !lc__write_all(fd, h.p, h.n)) st = LOLCATS_ERR_IO;
    for (i = 0; i < n && st == LOLCATS_OK; i++)
        if (tensors[i].nbytes && !lc__write_all(fd, tensors[i].data, tensors[i].nbytes)) st = LOLCATS_ERR_IO;
    if (st != LOLCATS_OK)
        lc_error_set(err, st, "%s: write to %s failed: %s (disk full?)", path, tmp, strerror(errno));
    else if (LC__FSYNC(fd) != 0)
        st = lc_error_set(err, LOLCATS_ERR_IO, "%s: fsync of %s failed: %s", path, tmp, strerror(errno));
    if (LC__CLOSE(fd) != 0 && st == LOLCATS_OK)
        st = lc_error_set(err, LOLCATS_ERR_IO, "%s: closing %s failed: %s", path, tmp, strerror(errno));
    if (st == LOLCATS_OK) {
#if defined(_WIN32)
        if (!MoveFileExA(tmp, path, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
            st = lc_error_set(err, LOLCATS_ERR_IO, "%s: cannot rename %s over it (Windows error %lu)", path, tmp,
                              (unsigned long)GetLastError());
#else
        if (rename(tmp, path) != 0)
            st = lc_error_set(err, LOLCATS_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
#endif
    }
    if (st != LOLCATS_OK) remove(tmp);
    LOLCATS_FREE(h.p);
    LOLCATS_FREE(tmp);
    return st;
}

#endif // !LOLCATS_NO_FILES (kept: used by the kernels)
// >>quant
// GGUF block quantization: block geometry, dequantization (the definition of
// each type, as ggml lays it out) and the reference quantizers of the writer.
static const unsigned short lc__qblock[5][2] = {   // weights, bytes: Q8_0 Q4_0 Q4_K Q5_K Q6_K
    {32, 34}, {32, 18}, {256, 144}, {256, 176}, {256, 210}};

LCAPI int lc_dtype_block(lc_dtype dt) {
    if ((int)dt >= (int)LOLCATS_DTYPE_Q8_0 && (int)dt < (int)LOLCATS_DTYPE_COUNT) return lc__qblock[dt - LOLCATS_DTYPE_Q8_0][0];
    return lc_dtype_size(dt) ? 1 : 0;
}

LCAPI size_t lc_dtype_block_bytes(lc_dtype dt) {
    if ((int)dt >= (int)LOLCATS_DTYPE_Q8_0 && (int)dt < (int)LOLCATS_DTYPE_COUNT) return lc__qblock[dt - LOLCATS_DTYPE_Q8_0][1];
    return lc_dtype_size(dt);
}

LCAPI size_t lc_dtype_row_bytes(lc_dtype dt, int64_t n) {
    int b = lc_dtype_block(dt);
    if (b <= 0 || n < 0 || n % b || (uint64_t)(n / b) > (uint64_t)(SIZE_MAX / 8) / lc_dtype_block_bytes(dt)) return 0;
    return (size_t)(n / b) * lc_dtype_block_bytes(dt);
}

#define LC__QF16(p) lc_f16_to_f32((uint16_t)((p)[0] | ((unsigned)(p)[1] << 8)))

// Q4_K / Q5_K: sub-block j's 6-bit scale and min out of the 12 packed bytes.
LC__FILES_FN void lc__q_scale_min(int j, const unsigned char *s, int *sc, int *mn) {
    if (j < 4) { *sc = s[j] & 63; *mn = s[j + 4] & 63; }
    else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// One block of 32 or 256 weights.
LC__FILES_FN void lc__dequant_block(float *y, const unsigned char *b, lc_dtype dt) {
    int l, c;
    switch (dt) {
    case LOLCATS_DTYPE_Q8_0: {
        float d = LC__QF16(b);
        for (l = 0; l < 32; l++) y[l] = d * (float)(signed char)b[2 + l];
        break;
    }
    case LOLCATS_DTYPE_Q4_0: {
        float d = LC__QF16(b);
        for (l = 0; l < 16; l++) {
            y[l] = d * (float)((b[2 + l] & 0xF) - 8);
            y[l + 16] = d * (float)((b[2 + l] >> 4) - 8);
        }
        break;
    }
    case LOLCATS_DTYPE_Q4_K:
    case LOLCATS_DTYPE_Q5_K: {
        float d = LC__QF16(b), dmin = LC__QF16(b + 2);
        const unsigned char *sc = b + 4, *qh = b + 16, *q = b + (dt == LOLCATS_DTYPE_Q5_K ? 48 : 16);
        for (c = 0; c < 4; c++, q += 32) {       // 64 weights: sub-blocks 2c (low nibbles), 2c+1 (high)
            int s1, m1, s2, m2;
            float d1, d2, n1, n2;
            lc__q_scale_min(2 * c, sc, &s1, &m1);
            lc__q_scale_min(2 * c + 1, sc, &s2, &m2);
            d1 = d * (float)s1; n1 = dmin * (float)m1;
            d2 = d * (float)s2; n2 = dmin * (float)m2;
            for (l = 0; l < 32; l++) {
                int h1 = 0, h2 = 0;
                if (dt == LOLCATS_DTYPE_Q5_K) {
                    h1 = (qh[l] >> (2 * c)) & 1 ? 16 : 0;
                    h2 = (qh[l] >> (2 * c + 1)) & 1 ? 16 : 0;
                }
                y[64 * c + l] = d1 * (float)((q[l] & 0xF) + h1) - n1;
                y[64 * c + 32 + l] = d2 * (float)((q[l] >> 4) + h2) - n2;
            }
        }
        break;
    }
    case LOLCATS_DTYPE_Q6_K: {
        const unsigned char *ql = b, *qh = b + 128;
        const signed char *sc = (const signed char *)(b + 192);
        float d = LC__QF16(b + 208);
        for (c = 0; c < 2; c++, ql += 64, qh += 32, sc += 8, y += 128) {
            for (l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
        break;
    }
    default: break;
    }
}

LCAPI void lc_dequant_row(float *dst, const void *src, lc_dtype dt, int64_t n) {
    const unsigned char *p = (const unsigned char *)src;
    int64_t i;
    int bs = lc_dtype_block(dt);
    size_t bb = lc_dtype_block_bytes(dt);
    if (bs <= 0 || n <= 0) return;
    switch (dt) {
    case LOLCATS_DTYPE_F32: memcpy(dst, p, (size_t)n * 4); return;   // little-endian hosts (GGUF is LE)
    case LOLCATS_DTYPE_F16: for (i = 0; i < n; i++) dst[i] = lc_f16_to_f32((uint16_t)(p[2 * i] | ((unsigned)p[2 * i + 1] << 8))); return;
    case LOLCATS_DTYPE_BF16: for (i = 0; i < n; i++) dst[i] = lc_bf16_to_f32((uint16_t)(p[2 * i] | ((unsigned)p[2 * i + 1] << 8))); return;
    default: break;
    }
    if (bs == 1) return;
    for (i = 0; i + bs <= n; i += bs, p += bb) lc__dequant_block(dst + i, p, dt);
}

LC__FILES_FN void lc__q_put16(unsigned char *p, uint16_t h) { p[0] = (unsigned char)(h & 0xFF); p[1] = (unsigned char)(h >> 8); }

// Q4_K of one 256-weight block: each 32-weight sub-block s gets scale
// (max - min) / 15 and min min(0, min x); the eight scales and mins are
// rounded to 6 bits against the block's d = max scale / 63, dmin = max min / 63
// (stored as f16), then every weight is rounded against the stored values.
LC__FILES_FN void lc__quant_q4k(unsigned char *b, const float *x) {
    float sc[8], mn[8], msc = 0.0f, mmn = 0.0f, d, dmin;
    int s, l, isc[8], imn[8];
    unsigned char *q = b + 16;
    for (s = 0; s < 8; s++) {
        float lo = x[32 * s], hi = x[32 * s];
        for (l = 1; l < 32; l++) { if (x[32 * s + l] < lo) lo = x[32 * s + l]; if (x[32 * s + l] > hi) hi = x[32 * s + l]; }
        if (lo > 0.0f) lo = 0.0f;
        sc[s] = (hi - lo) / 15.0f;
        mn[s] = -lo;
        if (sc[s] > msc) msc = sc[s];
        if (mn[s] > mmn) mmn = mn[s];
    }
    d = lc_f16_to_f32(lc_f32_to_f16(msc / 63.0f));
    dmin = lc_f16_to_f32(lc_f32_to_f16(mmn / 63.0f));
    for (s = 0; s < 8; s++) {
        isc[s] = d > 0.0f ? (int)floorf(sc[s] / d + 0.5f) : 0;
        imn[s] = dmin > 0.0f ? (int)floorf(mn[s] / dmin + 0.5f) : 0;
        if (isc[s] > 63) isc[s] = 63;
        if (imn[s] > 63) imn[s] = 63;
        if (isc[s] == 0 && sc[s] > 0.0f) isc[s] = 1;
    }
    lc__q_put16(b, lc_f32_to_f16(msc / 63.0f));
    lc__q_put16(b + 2, lc_f32_to_f16(mmn / 63.0f));
    memset(b + 4, 0, 12);
    for (s = 0; s < 4; s++) {
        b[4 + s] = (unsigned char)(isc[s] | ((isc[s + 4] >> 4) << 6));
        b[8 + s] = (unsigned char)(imn[s] | ((imn[s + 4] >> 4) << 6));
        b[12 + s] = (unsigned char)((isc[s + 4] & 0xF) | ((imn[s + 4] & 0xF) << 4));
    }
    memset(q, 0, 128);
    for (s = 0; s < 8; s++) {
        float ds = d * (float)isc[s], ms = dmin * (float)imn[s];
        for (l = 0; l < 32; l++) {
            int v = ds > 0.0f ? (int)floorf((x[32 * s + l] + ms) / ds + 0.5f) : 0;
            v = v < 0 ? 0 : v > 15 ? 15 : v;
            q[32 * (s / 2) + l] |= (unsigned char)(s & 1 ? v << 4 : v);
        }
    }
}

LCAPI int lc_quant_row(void *dst, const float *src, lc_dtype dt, int64_t n) {
    unsigned char *p = (unsigned char *)dst;
    int64_t i;
    int l;
    if (n < 0 || !lc_dtype_row_bytes(dt, n)) return n == 0 ? 0 : -1;
    switch (dt) {
    case LOLCATS_DTYPE_F32: memcpy(p, src, (size_t)n * 4); return 0;
    case LOLCATS_DTYPE_F16: for (i = 0; i < n; i++) lc__q_put16(p + 2 * i, lc_f32_to_f16(src[i])); return 0;
    case LOLCATS_DTYPE_BF16: for (i = 0; i < n; i++) lc__q_put16(p + 2 * i, lc_f32_to_bf16(src[i])); return 0;
    case LOLCATS_DTYPE_Q8_0:        // d = absmax / 127, q = round(x / d) (half away from zero)
        for (i = 0; i < n; i += 32, p += 34) {
            float amax = 0.0f, d, id;
            for (l = 0; l < 32; l++) if (fabsf(src[i + l]) > amax) amax = fabsf(src[i + l]);
            d = amax / 127.0f;
            id = d != 0.0f ? 1.0f / d : 0.0f;
            lc__q_put16(p, lc_f32_to_f16(d));
            for (l = 0; l < 32; l++) p[2 + l] = (unsigned char)(signed char)(int)roundf(src[i + l] * id);
        }
        return 0;
    case LOLCATS_DTYPE_Q4_0:        // d = (signed absmax) / -8, q = min(15, trunc(x / d + 8.5))
        for (i = 0; i < n; i += 32, p += 18) {
            float amax = 0.0f, mx = 0.0f, d, id;
            for (l = 0; l < 32; l++) if (fabsf(src[i + l]) > amax) { amax = fabsf(src[i + l]); mx = src[i + l]; }
            d = mx / -8.0f;
            id = d != 0.0f ? 1.0f / d : 0.0f;
            lc__q_put16(p, lc_f32_to_f16(d));
            for (l = 0; l < 16; l++) {
                int a = (int)(src[i + l] * id + 8.5f), b = (int)(src[i + l + 16] * id + 8.5f);
                a = a > 15 ? 15 : a; b = b > 15 ? 15 : b;
                p[2 + l] = (unsigned char)(a | (b << 4));
            }
        }
        return 0;
    case LOLCATS_DTYPE_Q4_K:
        for (i = 0; i < n; i += 256, p += 144) lc__quant_q4k(p, src + i);
        return 0;
    default: return -1;
    }
}
#undef LC__QF16

#ifndef LOLCATS_NO_FILES
// >>gguf
// GGUF reader: a bounds-checked cursor over the mapping; every read names
// the file and what it was reading when it fails.
#define LC__GGUF_MAX_STR (1u << 30)
struct lc_gguf_file {
    char *path;
    lc__map map;
    int version;
    size_t alignment, data_off;
    lc_gguf_kv *kv;
    int n_kv;
    lc_tensor *tensors;           // file order
    int *ggml_type;
    char *names;                  // tensor and key names, NUL-terminated, back to back
    uint64_t *str_offs;           // offsets of every string array element
    char *strs;                   // NUL-terminated copies of scalar strings
    int n;
    uint32_t *hash;
    size_t hash_mask;
};

typedef struct lc__gg {
    const unsigned char *p;
    size_t size, pos;
    const char *path;
    lc_error *err;
} lc__gg;

LC__FILES_FN lc_status lc__gg_need(lc__gg *g, uint64_t n, const char *what) {
    if (n > g->size - g->pos)
        return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: %s needs %llu bytes at offset %lu, past the end of the "
                            "%lu-byte file (truncated download, or a corrupt file)", g->path, what,
                            (unsigned long long)n, (unsigned long)g->pos, (unsigned long)g->size);
    return LOLCATS_OK;
}

LC__FILES_FN uint64_t lc__gg_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    while (n-- > 0) v = (v << 8) | p[n];
    return v;
}

LC__FILES_FN lc_status lc__gg_u32(lc__gg *g, uint32_t *v, const char *what) {
    lc_status st = lc__gg_need(g, 4, what);
    if (st) return st;
    *v = (uint32_t)lc__gg_le(g->p + g->pos, 4);
    g->pos += 4;
    return LOLCATS_OK;
}

LC__FILES_FN lc_status lc__gg_u64(lc__gg *g, uint64_t *v, const char *what) {
    lc_status st = lc__gg_need(g, 8, what);
    if (st) return st;
    *v = lc__gg_le(g->p + g->pos, 8);
    g->pos += 8;
    return LOLCATS_OK;
}

// A string: its bytes stay in the mapping (*s, *len).
LC__FILES_FN lc_status lc__gg_str(lc__gg *g, const unsigned char **s, uint64_t *len, const char *what) {
    lc_status st;
    if ((st = lc__gg_u64(g, len, what))) return st;
    if (*len > LC__GGUF_MAX_STR)
        return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: %s has length %llu (over 1 GB; corrupt file?)", g->path,
                            what, (unsigned long long)*len);
    if ((st = lc__gg_need(g, *len, what))) return st;
    *s = g->p + g->pos;
    g->pos += (size_t)*len;
    return LOLCATS_OK;
}

static const unsigned char lc__gguf_tsize[LOLCATS_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
static const char *const lc__gguf_tname[LOLCATS_GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};

LCAPI const char *lc_gguf_type_name(int type) {
    return type >= 0 && type < LOLCATS_GGUF_TYPE_COUNT ? lc__gguf_tname[type] : "?";
}

// ggml tensor type ids lolcats reads, and the names of the others (errors).
LCAPI int lc_gguf_dtype_of(uint32_t t) {
    switch (t) {
    case 0: return LOLCATS_DTYPE_F32;
    case 1: return LOLCATS_DTYPE_F16;
    case 2: return LOLCATS_DTYPE_Q4_0;
    case 8: return LOLCATS_DTYPE_Q8_0;
    case 12: return LOLCATS_DTYPE_Q4_K;
    case 13: return LOLCATS_DTYPE_Q5_K;
    case 14: return LOLCATS_DTYPE_Q6_K;
    case 24: return LOLCATS_DTYPE_I8;
    case 25: return LOLCATS_DTYPE_I16;
    case 26: return LOLCATS_DTYPE_I32;
    case 27: return LOLCATS_DTYPE_I64;
    case 28: return LOLCATS_DTYPE_F64;
    case 30: return LOLCATS_DTYPE_BF16;
    default: return -1;
    }
}

LCAPI int lc_gguf_ggml_type_of(lc_dtype dt) {
    uint32_t t;
    for (t = 0; t <= 30; t++)
        if (lc_gguf_dtype_of(t) == (int)dt) return (int)t;
    return -1;
}

LC__FILES_FN const char *lc__ggml_type_name(uint32_t t) {
    static const char *const nm[] = {"F32", "F16", "Q4_0", "Q4_1", "Q4_2 (removed)", "Q4_3 (removed)", "Q5_0",
                                     "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K",
                                     "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S",
                                     "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16"};
    return t < sizeof nm / sizeof nm[0] ? nm[t] : "unknown";
}

// One metadata value of type `type` (an array's elements when type == ARRAY);
// fills kv's data / n / elem_type. n_str counts string-array elements.
LC__FILES_FN lc_status lc__gg_value(lc__gg *g, lc_gguf_kv *kv, const unsigned char *key, uint64_t klen,
                                    uint32_t type, uint64_t *n_str) {
    char what[160];
    uint64_t n = 1, i, len;
    uint32_t et = type;
    const unsigned char *s;
    lc_status st;
    snprintf(what, sizeof what, "metadata '%.*s'", (int)(klen < 100 ? klen : 100), (const char *)key);
    if (type >= LOLCATS_GGUF_TYPE_COUNT)
        return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: %s has value type %lu, not a GGUF type (0..12); "
                            "corrupt file or a newer GGUF version", g->path, what, (unsigned long)type);
    kv->type = (int)type;
    if (type == LOLCATS_GGUF_ARRAY) {
        if ((st = lc__gg_u32(g, &et, what)) || (st = lc__gg_u64(g, &n, what))) return st;
        if (et >= LOLCATS_GGUF_TYPE_COUNT)
            return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: %s is an array of type %lu, not a GGUF type (0..12)",
                                g->path, what, (unsigned long)et);
        if (et == LOLCATS_GGUF_ARRAY)
            return lc_error_set(g->err, LOLCATS_ERR_UNSUPPORTED, "%s: %s is an array of arrays, which lolcats "
                                "does not read (no model metadata uses one)", g->path, what);
    }
    kv->elem_type = (int)et;
    kv->n = n;
    kv->data = g->p + g->pos;
    if (et != LOLCATS_GGUF_STRING) {
        if (n > (g->size - g->pos) / lc__gguf_tsize[et])
            return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: %s holds %llu %s values, more than the %lu bytes "
                                "left in the file (truncated, or a corrupt count)", g->path, what,
                                (unsigned long long)n, lc__gguf_tname[et], (unsigned long)(g->size - g->pos));
        g->pos += (size_t)n * lc__gguf_tsize[et];
        return LOLCATS_OK;
    }
    if (n > (g->size - g->pos) / 8)
        return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: %s holds %llu strings, more than the file can hold "
                            "(truncated, or a corrupt count)", g->path, what, (unsigned long long)n);
    for (i = 0; i < n; i++)
        if ((st = lc__gg_str(g, &s, &len, what))) return st;
    if (type == LOLCATS_GGUF_ARRAY) *n_str += n;
    return LOLCATS_OK;
}

LC__FILES_FN int lc__gg_cmp_key(const void *a, const void *b) {
    return strcmp((*(const lc_gguf_kv *const *)a)->key, (*(const lc_gguf_kv *const *)b)->key);
}

LC__FILES_FN int lc__gg_cmp_off(const void *a, const void *b) {
    const lc_tensor *x = *(const lc_tensor *const *)a, *y = *(const lc_tensor *const *)b;
    uintptr_t u = (uintptr_t)x->data, v = (uintptr_t)y->data;
    return u < v ? -1 : u > v ? 1 : 0;
}

#define LC__GG_SHOW(c) ((c) >= 32 && (c) < 127 ? (int)(c) : '?')
// Header and metadata; leaves g at the first tensor info. klen[i]: key
// lengths (the keys stay in the mapping until lc__gg_load copies them).
LC__FILES_FN lc_status lc__gg_header(lc_gguf_file *f, lc__gg *g, uint64_t *n_t, uint64_t **klen,
                                     uint64_t *n_str) {
    uint32_t ver, type;
    uint64_t n_kv, i, len;
    const unsigned char *s;
    lc_status st;
    size_t bytes;
    if (g->size < 24)
        return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: %lu bytes, shorter than the 24-byte GGUF header "
                            "(truncated, or not a GGUF file)", g->path, (unsigned long)g->size);
    if (memcmp(g->p, "GGUF", 4))
        return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: magic is \"%c%c%c%c\", not \"GGUF\" (not a GGUF file%s)",
                            g->path, LC__GG_SHOW(g->p[0]), LC__GG_SHOW(g->p[1]), LC__GG_SHOW(g->p[2]), LC__GG_SHOW(g->p[3]),
                            memcmp(g->p, "FUGG", 4) ? "" : "; this one is big-endian, which lolcats does not read");
    g->pos = 4;
    (void)lc__gg_u32(g, &ver, "version");
    if (ver != 2 && ver != 3)
        return lc_error_set(g->err, ver == 1 ? LOLCATS_ERR_UNSUPPORTED : LOLCATS_ERR_FORMAT,
                            "%s: GGUF version %lu; lolcats reads versions 2 and 3%s", g->path, (unsigned long)ver,
                            ver == 1 ? " (re-convert the model with a current llama.cpp)" : "");
    f->version = (int)ver;
    (void)lc__gg_u64(g, n_t, "tensor count");
    (void)lc__gg_u64(g, &n_kv, "metadata count");
    if (*n_t > (g->size - g->pos) / 24 || *n_t > 0x3FFFFFFF)
        return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: tensor count %llu does not fit in the %lu-byte file "
                            "(each tensor info takes at least 24 bytes; corrupt header)", g->path,
                            (unsigned long long)*n_t, (unsigned long)g->size);
    if (n_kv > (g->size - g->pos) / 13 || n_kv > 0x3FFFFFFF)
        return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: metadata count %llu does not fit in the %lu-byte "
                            "file (each entry takes at least 13 bytes; corrupt header)", g->path,
                            (unsigned long long)n_kv, (unsigned long)g->size);
    bytes = (size_t)(n_kv ? n_kv : 1);
    f->kv = (lc_gguf_kv *)LOLCATS_MALLOC(bytes * sizeof *f->kv);
    *klen = (uint64_t *)LOLCATS_MALLOC(bytes * sizeof **klen);
    if (!f->kv || !*klen)
        return lc_error_set(g->err, LOLCATS_ERR_NOMEM, "%s: out of memory for %llu metadata entries", g->path,
                            (unsigned long long)n_kv);
    memset(f->kv, 0, bytes * sizeof *f->kv);
    f->n_kv = (int)n_kv;
    for (i = 0; i < n_kv; i++) {
        lc_gguf_kv *kv = &f->kv[i];
        char what[64];
        snprintf(what, sizeof what, "metadata entry %llu's key", (unsigned long long)i);
        if ((st = lc__gg_str(g, &s, &len, what))) return st;
        if (len == 0 || memchr(s, 0, (size_t)len))
            return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: metadata entry %llu has %s key", g->path,
                                (unsigned long long)i, len ? "a NUL byte in its" : "an empty");
        kv->key = (const char *)s;
        (*klen)[i] = len;
        if ((st = lc__gg_u32(g, &type, "metadata value type"))) return st;
        if ((st = lc__gg_value(g, kv, s, len, type, n_str))) return st;
    }
    return LOLCATS_OK;
}

// Tensor infos: name, dims (PyTorch order in t->shape), type; nlen[i] the
// name lengths, toff[i] the offsets in the data area.
LC__FILES_FN lc_status lc__gg_infos(lc_gguf_file *f, lc__gg *g, uint64_t *nlen, uint64_t *toff) {
    int i, d;
    for (i = 0; i < f->n; i++) {
        lc_tensor *t = &f->tensors[i];
        const unsigned char *s;
        uint64_t len, ne[LOLCATS_MAX_DIMS], off, numel = 1, rows;
        uint32_t nd, type;
        char what[160];
        int dt;
        lc_status st;
        snprintf(what, sizeof what, "tensor info %d's name", i);
        if ((st = lc__gg_str(g, &s, &len, what))) return st;
        if (len == 0 || memchr(s, 0, (size_t)len))
            return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: tensor info %d has %s name", g->path, i,
                                len ? "a NUL byte in its" : "an empty");
        t->name = (const char *)s;
        nlen[i] = len;
        snprintf(what, sizeof what, "tensor '%.*s'", (int)(len < 100 ? len : 100), (const char *)s);
        if ((st = lc__gg_u32(g, &nd, what))) return st;
        if (nd < 1 || nd > LOLCATS_MAX_DIMS)
            return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: %s has %lu dimensions; expected 1..%d", g->path,
                                what, (unsigned long)nd, LOLCATS_MAX_DIMS);
        for (d = 0; d < (int)nd; d++) {
            if ((st = lc__gg_u64(g, &ne[d], what))) return st;
            if (ne[d] > (uint64_t)INT64_MAX || (ne[d] && numel > (uint64_t)INT64_MAX / ne[d]))
                return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: %s: dimension %d = %llu makes the element "
                                    "count overflow (corrupt tensor info)", g->path, what, d, (unsigned long long)ne[d]);
            numel *= ne[d];
            t->shape[nd - 1 - d] = (int64_t)ne[d];
        }
        t->ndim = (int)nd;
        if ((st = lc__gg_u32(g, &type, what)) || (st = lc__gg_u64(g, &off, what))) return st;
        if ((dt = lc_gguf_dtype_of(type)) < 0)
            return lc_error_set(g->err, LOLCATS_ERR_UNSUPPORTED, "%s: %s has ggml type %lu (%s), which lolcats does "
                                "not read; it reads F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K (re-quantize "
                                "with llama-quantize to one of those)", g->path, what, (unsigned long)type,
                                lc__ggml_type_name(type));
        f->ggml_type[i] = (int)type;
        t->dtype = (lc_dtype)dt;
        if (ne[0] % (uint64_t)lc_dtype_block(t->dtype))
            return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: %s: row length %llu is not a multiple of %s's "
                                "block of %d weights", g->path, what, (unsigned long long)ne[0],
                                lc_dtype_name(t->dtype), lc_dtype_block(t->dtype));
        rows = ne[0] ? numel / ne[0] : 0;
        if (ne[0] && !lc_dtype_row_bytes(t->dtype, (int64_t)ne[0]))
            return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: %s: row length %llu is too large for this machine's "
                                "address space (corrupt tensor info)", g->path, what, (unsigned long long)ne[0]);
        len = ne[0] / (uint64_t)lc_dtype_block(t->dtype) * lc_dtype_block_bytes(t->dtype);
        if (len && rows > (uint64_t)SIZE_MAX / len)
            return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: %s is too large for this machine's address space",
                                g->path, what);
        t->nbytes = (size_t)(rows * len);
        toff[i] = off;
    }
    return LOLCATS_OK;
}

// Copies keys and names (NUL-terminated), scalar strings, and indexes string arrays.
LC__FILES_FN lc_status lc__gg_strings(lc_gguf_file *f, lc__gg *g, const uint64_t *klen, const uint64_t *nlen,
                                      uint64_t n_str) {
    size_t total = 1, stotal = 1, k = 0, sk = 0;
    uint64_t j, so = 0;
    int i;
    for (i = 0; i < f->n_kv; i++) {
        total += (size_t)klen[i] + 1;
        if (f->kv[i].type == LOLCATS_GGUF_STRING) stotal += (size_t)lc__gg_le(f->kv[i].data, 8) + 1;
    }
    for (i = 0; i < f->n; i++) total += (size_t)nlen[i] + 1;
    f->names = (char *)LOLCATS_MALLOC(total);
    f->strs = (char *)LOLCATS_MALLOC(stotal);
    f->str_offs = (uint64_t *)LOLCATS_MALLOC((size_t)(n_str ? n_str : 1) * sizeof *f->str_offs);
    if (!f->names || !f->strs || !f->str_offs)
        return lc_error_set(g->err, LOLCATS_ERR_NOMEM, "%s: out of memory for the metadata strings", g->path);
    for (i = 0; i < f->n_kv; i++) {
        lc_gguf_kv *kv = &f->kv[i];
        memcpy(f->names + k, kv->key, (size_t)klen[i]);
        kv->key = f->names + k;
        k += (size_t)klen[i];
        f->names[k++] = 0;
        if (kv->type == LOLCATS_GGUF_STRING) {
            size_t len = (size_t)lc__gg_le(kv->data, 8);
            memcpy(f->strs + sk, kv->data + 8, len);
            kv->str = f->strs + sk;
            sk += len;
            f->strs[sk++] = 0;
        } else if (kv->elem_type == LOLCATS_GGUF_STRING) {
            uint64_t at = 0;
            kv->str_off = f->str_offs + so;
            for (j = 0; j < kv->n; j++) {
                f->str_offs[so++] = at;
                at += 8 + lc__gg_le(kv->data + at, 8);
            }
        }
    }
    for (i = 0; i < f->n; i++) {
        memcpy(f->names + k, f->tensors[i].name, (size_t)nlen[i]);
        f->tensors[i].name = f->names + k;
        k += (size_t)nlen[i];
        f->names[k++] = 0;
    }
    return LOLCATS_OK;
}

// Alignment, data area, offsets, overlaps, duplicates.
LC__FILES_FN lc_status lc__gg_layout(lc_gguf_file *f, lc__gg *g, const uint64_t *toff) {
    const lc_gguf_kv *al = lc_gguf_find_kv(f, "general.alignment");
    const lc_gguf_kv **ks = NULL;
    const lc_tensor **ts = NULL;
    size_t nk = (size_t)f->n_kv, nt = (size_t)f->n, i, dsize;
    lc_status st = LOLCATS_OK;
    int dup;
    f->alignment = 32;
    if (al) {
        uint32_t a;
        if (al->type != LOLCATS_GGUF_U32)
            return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: metadata 'general.alignment' is %s, expected u32",
                                g->path, lc_gguf_type_name(al->type));
        a = (uint32_t)lc__gg_le(al->data, 4);
        if (a == 0 || (a & (a - 1)) || a > (1u << 24))
            return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: metadata 'general.alignment' = %lu; it must be a "
                                "power of two (default 32)", g->path, (unsigned long)a);
        f->alignment = a;
    }
    f->data_off = g->pos % f->alignment ? g->pos + (f->alignment - g->pos % f->alignment) : g->pos;
    if (nt && f->data_off > g->size)
        return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: the data area (offset %lu) starts past the end of the "
                            "%lu-byte file (truncated)", g->path, (unsigned long)f->data_off, (unsigned long)g->size);
    dsize = nt ? g->size - f->data_off : 0;
    for (i = 0; i < nt; i++) {
        lc_tensor *t = &f->tensors[i];
        if (toff[i] % f->alignment)
            return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: tensor '%s': offset %llu is not a multiple of the "
                                "alignment %lu", g->path, t->name, (unsigned long long)toff[i], (unsigned long)f->alignment);
        if (toff[i] > dsize || t->nbytes > dsize - (size_t)toff[i])
            return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: tensor '%s': data [%llu, +%lu) runs past the end of "
                                "the %lu-byte data area (truncated download, or a corrupt offset)", g->path, t->name,
                                (unsigned long long)toff[i], (unsigned long)t->nbytes, (unsigned long)dsize);
        t->data = g->p + f->data_off + (size_t)toff[i];
    }
    ks = (const lc_gguf_kv **)LOLCATS_MALLOC((nk ? nk : 1) * sizeof *ks);
    ts = (const lc_tensor **)LOLCATS_MALLOC((nt ? nt : 1) * sizeof *ts);
    if (!ks || !ts) st = lc_error_set(g->err, LOLCATS_ERR_NOMEM, "%s: out of memory checking the layout", g->path);
    for (i = 0; !st && i < nk; i++) ks[i] = &f->kv[i];
    if (!st && nk > 1) qsort((void *)ks, nk, sizeof *ks, lc__gg_cmp_key);
    for (i = 1; !st && i < nk; i++)
        if (!strcmp(ks[i - 1]->key, ks[i]->key))
            st = lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: metadata key '%s' appears twice", g->path, ks[i]->key);
    for (i = 0; !st && i < nt; i++) ts[i] = &f->tensors[i];
    if (!st && nt > 1) qsort((void *)ts, nt, sizeof *ts, lc__gg_cmp_off);
    for (i = 1; !st && i < nt; i++)
        if (ts[i - 1]->nbytes && (const unsigned char *)ts[i - 1]->data + ts[i - 1]->nbytes > (const unsigned char *)ts[i]->data)
            st = lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data area "
                              "(corrupt offsets)", g->path, ts[i - 1]->name, ts[i]->name);
    LOLCATS_FREE((void *)ks);
    LOLCATS_FREE((void *)ts);
    if (st) return st;
    dup = lc__st_hash_build(&f->hash, &f->hash_mask, f->tensors, f->n);
    if (dup == -2) return lc_error_set(g->err, LOLCATS_ERR_NOMEM, "%s: out of memory for the tensor index", g->path);
    if (dup >= 0)
        return lc_error_set(g->err, LOLCATS_ERR_FORMAT, "%s: tensor '%s' appears twice", g->path, f->tensors[dup].name);
    return LOLCATS_OK;
}

LC__FILES_FN lc_status lc__gg_load(lc_gguf_file *f, const unsigned char *base, size_t size, lc_error *err) {
    lc__gg g;
    uint64_t n_t = 0, n_str = 0, *klen = NULL, *nlen = NULL, *toff = NULL;
    lc_status st;
    g.p = base; g.size = size; g.pos = 0; g.path = f->path; g.err = err;
    st = lc__gg_header(f, &g, &n_t, &klen, &n_str);
    if (!st) {
        size_t nt = (size_t)(n_t ? n_t : 1);
        f->n = (int)n_t;
        f->tensors = (lc_tensor *)LOLCATS_MALLOC(nt * sizeof *f->tensors);
        f->ggml_type = (int *)LOLCATS_MALLOC(nt * sizeof *f->ggml_type);
        nlen = (uint64_t *)LOLCATS_MALLOC(nt * sizeof *nlen);
        toff = (uint64_t *)LOLCATS_MALLOC(nt * sizeof *toff);
        if (!f->tensors || !f->ggml_type || !nlen || !toff)
            st = lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory for %llu tensor infos", f->path, (unsigned long long)n_t);
        else memset(f->tensors, 0, nt * sizeof *f->tensors);
    }
    if (!st) st = lc__gg_infos(f, &g, nlen, toff);
    if (!st) st = lc__gg_strings(f, &g, klen, nlen, n_str);
    if (!st) st = lc__gg_layout(f, &g, toff);
    LOLCATS_FREE(klen);
    LOLCATS_FREE(nlen);
    LOLCATS_FREE(toff);
    return st;
}

LCAPI void lc_gguf_close(lc_gguf_file *f) {
    if (!f) return;
    lc__map_free(&f->map);
    LOLCATS_FREE(f->kv);
    LOLCATS_FREE(f->tensors);
    LOLCATS_FREE(f->ggml_type);
    LOLCATS_FREE(f->names);
    LOLCATS_FREE(f->strs);
    LOLCATS_FREE(f->str_offs);
    LOLCATS_FREE(f->hash);
    LOLCATS_FREE(f->path);
    LOLCATS_FREE(f);
}

LC__FILES_FN lc_gguf_file *lc__gg_new(const char *name, lc_error *err) {
    lc_gguf_file *f = (lc_gguf_file *)LOLCATS_MALLOC(sizeof *f);
    if (f) { memset(f, 0, sizeof *f); f->path = lc__strdup(name); }
    if (!f || !f->path) {
        if (f) LOLCATS_FREE(f);
        lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory opening the file", name);
        return NULL;
    }
    return f;
}

LCAPI lc_status lc_gguf_open(lc_gguf_file **out, const char *path, lc_error *err) {
    lc_gguf_file *f;
    lc_status st;
    if (!out || !path) return lc_error_set(err, LOLCATS_ERR_ARG, "lc_gguf_open: NULL %s", out ? "path" : "out");
    *out = NULL;
    if (!(f = lc__gg_new(path, err))) return LOLCATS_ERR_NOMEM;
    if ((st = lc__map_file(&f->map, path, err)) == LOLCATS_OK)
        st = lc__gg_load(f, (const unsigned char *)f->map.data, f->map.size, err);
    if (st != LOLCATS_OK) { lc_gguf_close(f); return st; }
    *out = f;
    return LOLCATS_OK;
}

LCAPI lc_status lc_gguf_open_memory(lc_gguf_file **out, const void *buf, size_t len, const char *name,
                                    lc_error *err) {
    lc_gguf_file *f;
    lc_status st;
    if (!name) name = "<memory>";
    if (!out || (!buf && len))
        return lc_error_set(err, LOLCATS_ERR_ARG, "%s: lc_gguf_open_memory: NULL %s", name, out ? "buf" : "out");
    *out = NULL;
    if (!(f = lc__gg_new(name, err))) return LOLCATS_ERR_NOMEM;
    if ((st = lc__gg_load(f, (const unsigned char *)buf, len, err)) != LOLCATS_OK) { lc_gguf_close(f); return st; }
    *out = f;
    return LOLCATS_OK;
}

LCAPI const char *lc_gguf_path(const lc_gguf_file *f) { return f ? f->path : NULL; }
LCAPI int lc_gguf_version(const lc_gguf_file *f) { return f ? f->version : 0; }
LCAPI size_t lc_gguf_alignment(const lc_gguf_file *f) { return f ? f->alignment : 0; }
LCAPI size_t lc_gguf_data_offset(const lc_gguf_file *f) { return f ? f->data_off : 0; }
LCAPI int lc_gguf_kv_count(const lc_gguf_file *f) { return f ? f->n_kv : 0; }
LCAPI const lc_gguf_kv *lc_gguf_kv_at(const lc_gguf_file *f, int i) {
    return f && i >= 0 && i < f->n_kv ? &f->kv[i] : NULL;
}
LCAPI const lc_gguf_kv *lc_gguf_find_kv(const lc_gguf_file *f, const char *key) {
    int i;
    if (!f || !key) return NULL;
    for (i = 0; i < f->n_kv; i++)
        if (!strcmp(f->kv[i].key, key)) return &f->kv[i];
    return NULL;
}
LCAPI int lc_gguf_tensor_count(const lc_gguf_file *f) { return f ? f->n : 0; }
LCAPI const lc_tensor *lc_gguf_tensor_at(const lc_gguf_file *f, int i) {
    return f && i >= 0 && i < f->n ? &f->tensors[i] : NULL;
}
LCAPI int lc_gguf_tensor_ggml_type(const lc_gguf_file *f, int i) {
    return f && i >= 0 && i < f->n ? f->ggml_type[i] : -1;
}
LCAPI const lc_tensor *lc_gguf_find(const lc_gguf_file *f, const char *name) {
    size_t j;
    if (!f || !name || !f->hash) return NULL;
    j = lc__st_hash_str(name) & f->hash_mask;
    while (f->hash[j]) {
        const lc_tensor *t = &f->tensors[f->hash[j] - 1];
        if (!strcmp(t->name, name)) return t;
        j = (j + 1) & f->hash_mask;
    }
    return NULL;
}

LCAPI int64_t lc_gguf_arr_int(const lc_gguf_kv *kv, uint64_t i) {
    const unsigned char *p;
    int sz;
    if (!kv || i >= kv->n || kv->elem_type < 0 || kv->elem_type >= LOLCATS_GGUF_TYPE_COUNT) return 0;
    sz = lc__gguf_tsize[kv->elem_type];
    p = kv->data + (size_t)i * (size_t)sz;
    switch (kv->elem_type) {
    case LOLCATS_GGUF_U8: case LOLCATS_GGUF_BOOL: return p[0];
    case LOLCATS_GGUF_I8: return (signed char)p[0];
    case LOLCATS_GGUF_U16: return (int64_t)lc__gg_le(p, 2);
    case LOLCATS_GGUF_I16: return (int16_t)(uint16_t)lc__gg_le(p, 2);
    case LOLCATS_GGUF_U32: return (int64_t)lc__gg_le(p, 4);
    case LOLCATS_GGUF_I32: return (int32_t)(uint32_t)lc__gg_le(p, 4);
    case LOLCATS_GGUF_U64: case LOLCATS_GGUF_I64: { uint64_t u = lc__gg_le(p, 8); int64_t v; memcpy(&v, &u, 8); return v; }
    default: return 0;
    }
}

LCAPI double lc_gguf_arr_float(const lc_gguf_kv *kv, uint64_t i) {
    if (!kv || i >= kv->n) return 0.0;
    if (kv->elem_type == LOLCATS_GGUF_F32) {
        uint32_t u = (uint32_t)lc__gg_le(kv->data + 4 * (size_t)i, 4);
        return (double)lc__bits_f32(u);
    }
    if (kv->elem_type == LOLCATS_GGUF_F64) {
        uint64_t u = lc__gg_le(kv->data + 8 * (size_t)i, 8);
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    if (kv->elem_type == LOLCATS_GGUF_U64) return (double)(uint64_t)lc_gguf_arr_int(kv, i);
    return (double)lc_gguf_arr_int(kv, i);
}

LCAPI const char *lc_gguf_arr_str(const lc_gguf_kv *kv, uint64_t i, size_t *len) {
    const unsigned char *p;
    if (len) *len = 0;
    if (!kv || i >= kv->n || kv->elem_type != LOLCATS_GGUF_STRING) return NULL;
    if (kv->type == LOLCATS_GGUF_STRING) { if (len) *len = strlen(kv->str); return kv->str; }
    p = kv->data + (size_t)kv->str_off[i];
    if (len) *len = (size_t)lc__gg_le(p, 8);
    return (const char *)p + 8;
}

LC__FILES_FN lc_status lc__gg_scalar(const lc_gguf_file *f, const char *key, const lc_gguf_kv **kv,
                                     const char *expected, lc_error *err) {
    *kv = lc_gguf_find_kv(f, key);
    if (!*kv)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: metadata '%s' is missing (expected %s)",
                            f ? f->path : "<gguf>", key, expected);
    if ((*kv)->type == LOLCATS_GGUF_ARRAY)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: metadata '%s' is an array of %llu %s, expected %s",
                            f->path, key, (unsigned long long)(*kv)->n, lc_gguf_type_name((*kv)->elem_type), expected);
    return LOLCATS_OK;
}

LCAPI lc_status lc_gguf_get_int(const lc_gguf_file *f, const char *key, int64_t *out, lc_error *err) {
    const lc_gguf_kv *kv;
    lc_status st = lc__gg_scalar(f, key, &kv, "an integer", err);
    if (st) return st;
    switch (kv->type) {
    case LOLCATS_GGUF_F32: case LOLCATS_GGUF_F64: case LOLCATS_GGUF_STRING:
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: metadata '%s' is %s, expected an integer", f->path, key,
                            lc_gguf_type_name(kv->type));
    default: break;
    }
    if (kv->type == LOLCATS_GGUF_U64 && lc__gg_le(kv->data, 8) > (uint64_t)INT64_MAX)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: metadata '%s' = %llu does not fit int64", f->path, key,
                            (unsigned long long)lc__gg_le(kv->data, 8));
    *out = lc_gguf_arr_int(kv, 0);
    return LOLCATS_OK;
}

LCAPI lc_status lc_gguf_get_float(const lc_gguf_file *f, const char *key, double *out, lc_error *err) {
    const lc_gguf_kv *kv;
    lc_status st = lc__gg_scalar(f, key, &kv, "a number", err);
    if (st) return st;
    if (kv->type == LOLCATS_GGUF_STRING || kv->type == LOLCATS_GGUF_BOOL)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: metadata '%s' is %s, expected a number (f32)", f->path, key,
                            lc_gguf_type_name(kv->type));
    *out = lc_gguf_arr_float(kv, 0);
    return LOLCATS_OK;
}

LCAPI lc_status lc_gguf_get_str(const lc_gguf_file *f, const char *key, const char **out, lc_error *err) {
    const lc_gguf_kv *kv;
    lc_status st = lc__gg_scalar(f, key, &kv, "a string", err);
    if (st) return st;
    if (kv->type != LOLCATS_GGUF_STRING)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: metadata '%s' is %s, expected a string", f->path, key,
                            lc_gguf_type_name(kv->type));
    *out = kv->str;
    return LOLCATS_OK;
}

// >>model-load
// Reads a small text/binary file into a NUL-terminated heap buffer.
static lc_status lc__read_all(const char *path, char **out, size_t *n, lc_error *err) {
    FILE *fp;
    long sz;
    lc_status st;
    *out = NULL;
    if (n) *n = 0;
    if (!lc__exists(path)) return lc_error_set(err, LOLCATS_ERR_IO, "%s: cannot open (check the path)", path);
    if ((st = lc__regular(path, err))) return st;
    if (!(fp = fopen(path, "rb"))) return lc_error_set(err, LOLCATS_ERR_IO, "%s: cannot open (check the path)", path);
    if (fseek(fp, 0, SEEK_END) != 0 || (sz = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        return lc_error_set(err, LOLCATS_ERR_IO, "%s: cannot determine the size", path);
    }
    if ((unsigned long)sz > (1ul << 30)) {   // config, index and tokenizer files are megabytes at most
        fclose(fp);
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: %ld bytes is implausibly large for a config or tokenizer "
                            "file (1 GiB at most): wrong file?", path, sz);
    }
    *out = (char *)LOLCATS_MALLOC((size_t)sz + 1);
    if (!*out) { fclose(fp); return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", path); }
    if (fread(*out, 1, (size_t)sz, fp) != (size_t)sz) {
        fclose(fp); LOLCATS_FREE(*out); *out = NULL;
        return lc_error_set(err, LOLCATS_ERR_IO, "%s: read failed", path);
    }
    fclose(fp);
    (*out)[sz] = 0;
    if (n) *n = (size_t)sz;
    return LOLCATS_OK;
}

typedef struct lc__model_priv {
    lc__map *maps;
    int n_maps;
    void *st;                     // safetensors handles (Hugging Face)
    int n_st;
    void *gguf;                   // GGUF file and owned weight copies (>>model-gguf)
} lc__model_priv;

static void lc__model_free_st(lc__model_priv *pv);
static void lc__gguf_model_free(void *p);

static lc_weight lc__w(const void *p, lc_dtype dtype, int64_t rows, int64_t cols) {
    lc_weight w;
    w.data = p; w.dtype = dtype; w.rows = rows; w.cols = cols;
    return w;
}

static lc_status lc__model_check_cfg(const lc_model_config *c, const char *path, lc_error *err) {
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->vocab_size <= 0 || c->seq_len <= 0 || c->head_dim <= 0)
        return lc_error_set(err, LOLCATS_ERR_FORMAT,
                        "%s: config has a non-positive size (dim %d, hidden %d, layers %d, heads "
                        "%d, kv heads %d, head_dim %d, vocab %d, seq_len %d)",
                        path, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                        c->head_dim, c->vocab_size, c->seq_len);
    {
        static const char *const names[7] = {"hidden size (dim)", "intermediate size", "layers", "heads",
                                              "head_dim", "vocab size", "context (seq_len)"};
        const int vals[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->head_dim, c->vocab_size, c->seq_len};
        const int lims[7] = {1 << 20, 1 << 22, 4096, 4096, 4096, 1 << 24, 1 << 24};
        int i;
        for (i = 0; i < 7; i++)
            if (vals[i] > lims[i])
                return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: %s %d is implausibly large (at most %d "
                                    "supported; corrupt header or wrong file?)", path, names[i], vals[i], lims[i]);
    }
    if (c->n_heads % c->n_kv_heads)
        return lc_error_set(err, LOLCATS_ERR_FORMAT,
                        "%s: n_heads %d is not a multiple of n_kv_heads %d", path, c->n_heads,
                        c->n_kv_heads);
    if (c->head_dim % 2)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: head_dim %d is odd; RoPE needs pairs", path,
                        c->head_dim);
    if (c->head_dim > 2 * LC__ROPE_MAX_HALF)
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "%s: head_dim %d is above the %d supported",
                            path, c->head_dim, 2 * LC__ROPE_MAX_HALF);
    if (c->sliding_window < 0)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: sliding_window %d is negative", path,
                            c->sliding_window);
    // the real-valued fields: finite and in their domain (a float cast of a
    // huge JSON number is inf, so the checks come after it)
    if (!(isfinite(c->norm_eps) && c->norm_eps >= 0.0f))
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: rms_norm_eps %g is not a finite number "
                            ">= 0 (Llama uses 1e-5 or 1e-6)", path, (double)c->norm_eps);
    if (!(isfinite(c->rope_theta) && c->rope_theta > 0.0f))
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: rope_theta %g is not a finite number "
                            "> 0 (Llama uses 10000 or 500000)", path, (double)c->rope_theta);
    if (c->rope_llama3) {
        static const char *const names[3] = {"factor", "low_freq_factor", "high_freq_factor"};
        const float vals[3] = {c->rope_factor, c->rope_low_freq_factor, c->rope_high_freq_factor};
        int i;
        for (i = 0; i < 3; i++)
            if (!(isfinite(vals[i]) && vals[i] > 0.0f))
                return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: rope_scaling.%s %g is not a "
                                    "finite number > 0", path, names[i], (double)vals[i]);
        if (c->rope_orig_max_pos <= 0)
            return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: rope_scaling."
                                "original_max_position_embeddings %d is not positive", path,
                                c->rope_orig_max_pos);
    }
    return LOLCATS_OK;
}

static int32_t lc__rd_i32(const unsigned char *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}

// Every weight finite, checked once at load (one read of the file, which the
// first forward makes anyway): a NaN or Inf weight is refused naming the file,
// the tensor (by its Hugging Face name) and the first bad element, instead of
// giving NaN logits or losses much later. LOLCATS_NO_WEIGHT_CHECK turns the
// scan off. Returns the element index, or -1 when all are finite.
static int64_t lc__w_first_nonfinite(const lc_weight *w) {
    size_t n = (size_t)(w->rows > 0 ? w->rows : 1) * (size_t)w->cols, i;
    const unsigned char *p = (const unsigned char *)w->data;
    if (!p) return -1;
    if (lc_dtype_block(w->dtype) > 1) {   // GGUF block types: block by block
        float tile[256];
        size_t bs = (size_t)lc_dtype_block(w->dtype), bb = lc_dtype_block_bytes(w->dtype), b, l;
        for (b = 0; b < n / bs; b++) {
            lc__dequant_block(tile, p + b * bb, w->dtype);
            for (l = 0; l < bs; l++) if (!isfinite(tile[l])) return (int64_t)(b * bs + l);
        }
        return -1;
    }
    if (w->dtype == LOLCATS_DTYPE_F32) {
        uint32_t u;
        if (lc__all_finite((const float *)w->data, n)) return -1;
        for (i = 0; i < n; i++) {
            memcpy(&u, p + 4 * i, 4);
            if ((u & 0x7f800000u) == 0x7f800000u) return (int64_t)i;
        }
    } else {  // the carry test of lc__all_finite on 16 halves at a time
        uint16_t h, mask = w->dtype == LOLCATS_DTYPE_BF16 ? 0x7f80u : 0x7c00u, hs[16], bad = 0;
        uint16_t one = (uint16_t)(mask & (uint16_t)-mask);  // the exponent's lowest bit
        int l;
        for (i = 0; i + 16 <= n; i += 16) {
            memcpy(hs, p + 2 * i, sizeof hs);
            for (l = 0; l < 16; l++) bad |= (uint16_t)((hs[l] & mask) + one);
        }
        for (; i < n; i++) {
            memcpy(&h, p + 2 * i, 2);
            bad |= (uint16_t)((h & mask) + one);
        }
        if (!(bad & 0x8000u)) return -1;
        for (i = 0; i < n; i++) {
            memcpy(&h, p + 2 * i, 2);
            if ((h & mask) == mask) return (int64_t)i;
        }
    }
    return -1;
}

static lc_status lc__model_check_finite(const lc_model *m, const char *path, lc_error *err) {
#if defined(LOLCATS_NO_WEIGHT_CHECK)
    (void)m; (void)path; (void)err;
    return LOLCATS_OK;
#else
    static const char *const names[14] = {
        "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
        "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
        "mlp.gate_proj.weight", "mlp.down_proj.weight", "mlp.up_proj.weight", "self_attn.q_proj.bias",
        "self_attn.k_proj.bias", "self_attn.v_proj.bias", "self_attn.q_norm.weight", "self_attn.k_norm.weight"};
    const lc_weight *top[3];
    static const char *const top_names[3] = {"model.embed_tokens.weight", "model.norm.weight",
                                             "lm_head.weight"};
    int64_t at;
    int i, l;
    top[0] = &m->tok_emb; top[1] = &m->rms_final; top[2] = &m->wcls;
    for (i = 0; i < 3; i++) {
        if (i == 2 && m->wcls.data == m->tok_emb.data) break;
        if ((at = lc__w_first_nonfinite(top[i])) >= 0)
            return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor %s holds %g at element %lld (row %lld): "
                                "the weights are not finite (a diverged or corrupt export?)", path,
                                top_names[i], (double)lc__m_at(top[i]->data, top[i]->dtype, (size_t)at),
                                (long long)at, (long long)(at / top[i]->cols));
    }
    for (l = 0; l < m->cfg.n_layers; l++) {
        const lc_layer_weights *lw = &m->layers[l];
        const lc_weight *ws[14];
        ws[0] = &lw->rms_att; ws[1] = &lw->wq; ws[2] = &lw->wk; ws[3] = &lw->wv; ws[4] = &lw->wo;
        ws[5] = &lw->rms_ffn; ws[6] = &lw->w1; ws[7] = &lw->w2; ws[8] = &lw->w3;
        ws[9] = &lw->bq; ws[10] = &lw->bk; ws[11] = &lw->bv; ws[12] = &lw->q_norm; ws[13] = &lw->k_norm;
        for (i = 0; i < 14; i++)
            if ((at = lc__w_first_nonfinite(ws[i])) >= 0)
                return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor model.layers.%d.%s holds %g at "
                                    "element %lld (row %lld): the weights are not finite (a diverged or "
                                    "corrupt export?)", path, l, names[i],
                                    (double)lc__m_at(ws[i]->data, ws[i]->dtype, (size_t)at), (long long)at,
                                    (long long)(at / ws[i]->cols));
    }
    return LOLCATS_OK;
#endif
}

LCIMPL lc_status lc_model_load_llama2c(lc_model *m, const char *path, lc_error *err) {
    lc__model_priv *pv;
    lc_model_config *c;
    lc__map f;
    lc_status s;
    int32_t h[7];
    int i, shared, L, dim, hd, hid, qd, kvd;
    uint64_t need, V;
    const float *p;
    memset(m, 0, sizeof *m);
    s = lc__map_file(&f, path, err);
    if (s) return s;
    if (f.size < 28) {
        lc__map_free(&f);
        return lc_error_set(err, LOLCATS_ERR_FORMAT,
                        "%s: %zu bytes, shorter than the 28-byte llama2.c header", path, f.size);
    }
    for (i = 0; i < 7; i++) h[i] = lc__rd_i32((const unsigned char *)f.data + 4 * i);
    c = &m->cfg;
    c->dim = h[0]; c->hidden_dim = h[1]; c->n_layers = h[2]; c->n_heads = h[3];
    c->n_kv_heads = h[4]; shared = h[5] > 0;
    c->vocab_size = h[5] == INT32_MIN ? 0 : h[5] < 0 ? -h[5] : h[5];  // INT32_MIN: rejected below
    c->seq_len = h[6];
    c->head_dim = c->n_heads > 0 ? c->dim / c->n_heads : 0;
    c->norm_eps = 1e-5f; c->rope_theta = 10000.0f; c->rope_interleaved = 1;
    c->tied = shared; c->bos_id = 1; c->eos_id = 2;
    strcpy(c->arch, "llama2c");
    if ((s = lc__model_check_cfg(c, path, err))) { lc__map_free(&f); return s; }
    if (c->dim % c->n_heads) {
        lc__map_free(&f);
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: dim %d is not a multiple of n_heads %d",
                        path, c->dim, c->n_heads);
    }
    L = c->n_layers; dim = c->dim; hd = c->head_dim; hid = c->hidden_dim;
    qd = c->n_heads * hd; kvd = c->n_kv_heads * hd; V = (uint64_t)c->vocab_size;
    need = V * dim + (uint64_t)L * dim * 2 + (uint64_t)L * dim * qd * 2 +
           (uint64_t)L * dim * kvd * 2 + (uint64_t)L * dim * hid * 3 + dim +
           (uint64_t)c->seq_len * hd + (shared ? 0 : V * dim);
    if (28 + 4 * need != (uint64_t)f.size) {
        lc__map_free(&f);
        return lc_error_set(err, LOLCATS_ERR_FORMAT,
                        "%s: file is %zu bytes but the llama2.c header (dim %d, hidden %d, layers "
                        "%d, heads %d, kv heads %d, vocab %d%s, seq_len %d) implies %llu; the "
                        "file is truncated, corrupt or not a legacy llama2.c checkpoint",
                        path, f.size, dim, hid, L, c->n_heads, c->n_kv_heads, c->vocab_size,
                        shared ? "" : " untied", c->seq_len,
                        (unsigned long long)(28 + 4 * need));
    }
    pv = (lc__model_priv *)lc__mcalloc(1, sizeof *pv);
    m->layers = (lc_layer_weights *)lc__mcalloc((size_t)L, sizeof *m->layers);
    if (pv) pv->maps = (lc__map *)lc__mcalloc(1, sizeof(lc__map));
    if (!pv || !m->layers || !pv->maps) {
        if (pv) LOLCATS_FREE(pv->maps);
        LOLCATS_FREE(pv); LOLCATS_FREE(m->layers); m->layers = NULL;
        lc__map_free(&f);
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", path);
    }
    pv->maps[0] = f; pv->n_maps = 1;
    m->priv = pv;
    m->format = LOLCATS_MODEL_LLAMA2C;
    p = (const float *)(const void *)((const unsigned char *)f.data + 28);
    m->tok_emb = lc__w(p, LOLCATS_DTYPE_F32, (int64_t)V, dim); p += V * dim;
#define LC__L2C_PER_LAYER(field, rows, cols)                                              \
    for (i = 0; i < L; i++) {                                                             \
        m->layers[i].field = lc__w(p, LOLCATS_DTYPE_F32, rows, cols);                        \
        p += (size_t)(rows) * (size_t)(cols);                                             \
    }
    LC__L2C_PER_LAYER(rms_att, 1, dim)
    LC__L2C_PER_LAYER(wq, qd, dim)
    LC__L2C_PER_LAYER(wk, kvd, dim)
    LC__L2C_PER_LAYER(wv, kvd, dim)
    LC__L2C_PER_LAYER(wo, dim, qd)
    LC__L2C_PER_LAYER(rms_ffn, 1, dim)
    LC__L2C_PER_LAYER(w1, hid, dim)
    LC__L2C_PER_LAYER(w2, dim, hid)
    LC__L2C_PER_LAYER(w3, hid, dim)
#undef LC__L2C_PER_LAYER
    m->rms_final = lc__w(p, LOLCATS_DTYPE_F32, 1, dim); p += dim;
    p += (size_t)c->seq_len * hd;                   // freq_cis_real, freq_cis_imag (unused)
    m->wcls = shared ? m->tok_emb : lc__w(p, LOLCATS_DTYPE_F32, (int64_t)V, dim);
    if ((s = lc__model_check_finite(m, path, err))) lc_model_free(m);
    return s;
}

LCIMPL void lc_model_free(lc_model *m) {
    lc__model_priv *pv;
    int i;
    if (!m) return;
    pv = (lc__model_priv *)m->priv;
    if (pv) {
        for (i = 0; i < pv->n_maps; i++) lc__map_free(&pv->maps[i]);
        LOLCATS_FREE(pv->maps);
        lc__model_free_st(pv);
        lc__gguf_model_free(pv->gguf);
        LOLCATS_FREE(pv);
    }
    LOLCATS_FREE(m->layers);
    memset(m, 0, sizeof *m);
}

LCIMPL int64_t lc_model_param_count(const lc_model *m) {
    int64_t n = m->tok_emb.rows * m->tok_emb.cols + m->rms_final.cols;
    int i;
    if (!m->cfg.tied) n += m->wcls.rows * m->wcls.cols;
    for (i = 0; i < m->cfg.n_layers; i++) {
        const lc_layer_weights *l = &m->layers[i];
        n += l->rms_att.cols + l->rms_ffn.cols + l->wq.rows * l->wq.cols +
             l->wk.rows * l->wk.cols + l->wv.rows * l->wv.cols + l->wo.rows * l->wo.cols +
             l->w1.rows * l->w1.cols + l->w2.rows * l->w2.cols + l->w3.rows * l->w3.cols;
        if (l->bq.data) n += l->bq.cols + l->bk.cols + l->bv.cols;
        if (l->q_norm.data) n += l->q_norm.cols + l->k_norm.cols;
    }
    return n;
}

LCIMPL lc_status lc_model_load(lc_model *m, const char *path, lc_error *err) {
    char buf[4096];
    FILE *fp;
    if (strlen(path) + 16 > sizeof buf)
        return lc_error_set(err, LOLCATS_ERR_ARG, "%s: path too long", path);
    sprintf(buf, "%s/config.json", path);
    if (lc__exists(buf)) return lc_model_load_hf(m, path, err);
#if !defined(_WIN32)
    {   // a directory without config.json: say so (not "read error")
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            return lc_error_set(err, LOLCATS_ERR_IO, "%s: is a directory without config.json: pass a Hugging Face "
                                "model directory or a llama2.c .bin file", path);
    }
#endif
    if (lc__regular(path, err) == LOLCATS_OK && (fp = fopen(path, "rb")) != NULL) {
        char magic[4] = {0, 0, 0, 0};
        size_t got = fread(magic, 1, 4, fp);
        fclose(fp);
        if (got == 4 && !memcmp(magic, "GGUF", 4)) return lc_model_load_gguf(m, path, err);
    }
    return lc_model_load_llama2c(m, path, err);
}

// >>model-hf
typedef struct lc__hf_shards {
    lc_st_file **f;
    int n;
} lc__hf_shards;

static void lc__model_free_st(lc__model_priv *pv) {
    lc__hf_shards *sh = (lc__hf_shards *)pv->st;
    int i;
    if (!sh) return;
    for (i = 0; i < sh->n; i++) lc_st_close(sh->f[i]);
    LOLCATS_FREE(sh->f);
    LOLCATS_FREE(sh);
    pv->st = NULL;
}

// >>model-gguf
// A GGUF model (llama.cpp's llama architecture: Llama 1/2/3, Mistral; qwen2,
// qwen3 with their biases / q-k norms, >>qwen-config) as the
// Hugging Face loader would give it: metadata mapped to the config, tensors
// under llama.cpp's names (token_embd, blk.N.attn_q, ...) to the HF weights,
// the converter's q/k row permutation undone (GGUF row h*D + 2i + j is HF row
// h*D + j*D/2 + i). Weights are read in place in their stored dtype, the
// block-quantized ones too (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K: the matmuls
// dequantize them as they stream, >>quant-gemm); only the permuted q/k
// matrices are copies (same dtype, owned by the model).
typedef struct lc__gguf_model {
    lc_gguf_file *f;
    void **bufs;
    int n_bufs, cap_bufs;
} lc__gguf_model;

static void lc__gguf_model_free(void *p) {
    lc__gguf_model *g = (lc__gguf_model *)p;
    int i;
    if (!g) return;
    for (i = 0; i < g->n_bufs; i++) LOLCATS_FREE(g->bufs[i]);
    LOLCATS_FREE(g->bufs);
    lc_gguf_close(g->f);
    LOLCATS_FREE(g);
}

static void *lc__gguf_model_alloc(lc__gguf_model *g, size_t bytes) {
    void *p;
    if (g->n_bufs == g->cap_bufs) {
        int cap = g->cap_bufs ? 2 * g->cap_bufs : 64;
        void **nb = (void **)LOLCATS_REALLOC(g->bufs, (size_t)cap * sizeof *nb);
        if (!nb) return NULL;
        g->bufs = nb;
        g->cap_bufs = cap;
    }
    if (!(p = LOLCATS_MALLOC(bytes ? bytes : 1))) return NULL;
    g->bufs[g->n_bufs++] = p;
    return p;
}

// Weight `name` of shape (rows, cols) (a vector: rows == 1, stored 1-D);
// heads > 0: q/k rows permuted back to Hugging Face's order.
static lc_status lc__gguf_weight(lc__gguf_model *g, lc_weight *w, const char *name, int64_t rows, int64_t cols,
                                 int heads, lc_error *err) {
    const lc_tensor *t = lc_gguf_find(g->f, name);
    const char *path = lc_gguf_path(g->f);
    size_t rb;
    int64_t r, D;
    if (!t) return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor '%s' is missing", path, name);
    if (rows == 1 ? !(t->ndim == 1 && t->shape[0] == cols) : !(t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols))
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor '%s' has shape [%lld%s%lld], expected [%lld, %lld] "
                            "from the metadata (PyTorch order)", path, name, (long long)t->shape[0],
                            t->ndim > 1 ? ", " : "", t->ndim > 1 ? (long long)t->shape[1] : 0LL,
                            (long long)rows, (long long)cols);
    if (t->dtype != LOLCATS_DTYPE_F32 && t->dtype != LOLCATS_DTYPE_F16 && t->dtype != LOLCATS_DTYPE_BF16 &&
        lc_dtype_block(t->dtype) <= 1)
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "%s: tensor '%s' is %s; weights must be F32, F16, BF16 or "
                            "a block type", path, name, lc_dtype_name(t->dtype));
    *w = lc__w(t->data, t->dtype, rows, cols);
    if (heads <= 0) return LOLCATS_OK;
    {   // q / k: rows back in Hugging Face's order, an owned copy in the stored dtype
        unsigned char *dst;
        rb = lc_dtype_row_bytes(t->dtype, cols);
        if (!(dst = (unsigned char *)lc__gguf_model_alloc(g, (size_t)rows * rb)))
            return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory for tensor '%s'", path, name);
        D = rows / heads;
        for (r = 0; r < rows; r++) {
            int64_t src = (r / D) * D + 2 * (r % D % (D / 2)) + (r % D) / (D / 2);
            memcpy(dst + (size_t)r * rb, (const unsigned char *)t->data + (size_t)src * rb, rb);
        }
        *w = lc__w(dst, t->dtype, rows, cols);
    }
    return LOLCATS_OK;
}

// "{arch}.key" as an integer (def when absent and def >= 0; required otherwise).
static lc_status lc__gguf_cfg_int(const lc_gguf_file *f, const char *arch, const char *key, int def, int *out,
                                  lc_error *err) {
    char k[128];
    int64_t v;
    lc_status st;
    snprintf(k, sizeof k, "%s.%s", arch, key);
    if (!lc_gguf_find_kv(f, k) && def >= 0) { *out = def; return LOLCATS_OK; }
    if ((st = lc_gguf_get_int(f, k, &v, err))) return st;
    if (v < 0 || v > INT32_MAX)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: metadata '%s' = %lld is out of range", lc_gguf_path(f), k,
                            (long long)v);
    *out = (int)v;
    return LOLCATS_OK;
}

static lc_status lc__gguf_config(lc_model_config *c, const lc_gguf_file *f, const char *arch, lc_error *err) {
    const char *path = lc_gguf_path(f);
    const lc_tensor *emb = lc_gguf_find(f, "token_embd.weight");
    char k[128];
    double x;
    int rope_dims;
    lc_status st;
    int64_t v;
    if ((st = lc__gguf_cfg_int(f, arch, "embedding_length", -1, &c->dim, err)) ||
        (st = lc__gguf_cfg_int(f, arch, "feed_forward_length", -1, &c->hidden_dim, err)) ||
        (st = lc__gguf_cfg_int(f, arch, "block_count", -1, &c->n_layers, err)) ||
        (st = lc__gguf_cfg_int(f, arch, "attention.head_count", -1, &c->n_heads, err)))
        return st;
    if ((st = lc__gguf_cfg_int(f, arch, "attention.head_count_kv", c->n_heads, &c->n_kv_heads, err)) ||
        (st = lc__gguf_cfg_int(f, arch, "context_length", 2048, &c->seq_len, err)) ||
        (st = lc__gguf_cfg_int(f, arch, "attention.key_length", c->n_heads > 0 ? c->dim / c->n_heads : 0, &c->head_dim, err)) ||
        (st = lc__gguf_cfg_int(f, arch, "rope.dimension_count", c->head_dim, &rope_dims, err)) ||
        (st = lc__gguf_cfg_int(f, arch, "attention.sliding_window", 0, &c->sliding_window, err)))
        return st;
    snprintf(k, sizeof k, "%s.attention.layer_norm_rms_epsilon", arch);
    if ((st = lc_gguf_get_float(f, k, &x, err))) return st;
    c->norm_eps = (float)x;
    snprintf(k, sizeof k, "%s.rope.freq_base", arch);
    c->rope_theta = 10000.0f;
    if (lc_gguf_find_kv(f, k)) { if ((st = lc_gguf_get_float(f, k, &x, err))) return st; c->rope_theta = (float)x; }
    if (rope_dims != c->head_dim)
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "%s: %s.rope.dimension_count %d differs from the head "
                            "size %d (partial rotary embeddings are not supported)", path, arch, rope_dims, c->head_dim);
    snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
    if (lc_gguf_find_kv(f, "rope_freqs.weight") || lc_gguf_find(f, "rope_freqs.weight") || lc_gguf_find_kv(f, k))
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "%s: RoPE scaling (rope_freqs.weight or %s) is not read "
                            "from GGUF yet; load the model's Hugging Face directory instead", path, k);
    if (!emb || emb->ndim != 2)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor 'token_embd.weight' is %s", path,
                            emb ? "not 2-D" : "missing");
    c->vocab_size = emb->shape[0] <= INT32_MAX ? (int)emb->shape[0] : -1;
    c->tied = lc_gguf_find(f, "output.weight") == NULL;
    c->bos_id = c->eos_id = -1;
    if (lc_gguf_find_kv(f, "tokenizer.ggml.bos_token_id") && !lc_gguf_get_int(f, "tokenizer.ggml.bos_token_id", &v, err)) c->bos_id = (int)v;
    if (lc_gguf_find_kv(f, "tokenizer.ggml.eos_token_id") && !lc_gguf_get_int(f, "tokenizer.ggml.eos_token_id", &v, err)) c->eos_id = (int)v;
    if (!strcmp(arch, "qwen2") || !strcmp(arch, "qwen3")) {   // as >>qwen-config: no window, biases / q-k norms
        c->sliding_window = 0;
        c->qkv_bias = arch[4] == '2';
        c->qk_norm = arch[4] == '3';
    }
    snprintf(c->arch, sizeof c->arch, "gguf:%s", arch);
    return lc__model_check_cfg(c, path, err);
}

// Qwen's extra tensors of layer l, rows as stored (llama.cpp's converter
// permutes q/k only for llama): qwen2's attn_q/k/v.bias -> bq/bk/bv, qwen3's
// attn_q_norm/attn_k_norm -> q_norm/k_norm (head_dim from key_length).
static lc_status lc__gguf_qwen_layer(lc__gguf_model *g, const lc_model_config *c, lc_layer_weights *lw, int l,
                                     lc_error *err) {
    int64_t qd = (int64_t)c->n_heads * c->head_dim, kvd = (int64_t)c->n_kv_heads * c->head_dim;
    char nm[64];
    lc_status st;
#define LC__GQ(field, name, n)                                                 \
    snprintf(nm, sizeof nm, "blk.%d." name, l);                               \
    if ((st = lc__gguf_weight(g, &lw->field, nm, 1, n, 0, err))) return st;
    if (c->qkv_bias) {
        LC__GQ(bq, "attn_q.bias", qd)
        LC__GQ(bk, "attn_k.bias", kvd)
        LC__GQ(bv, "attn_v.bias", kvd)
    }
    if (c->qk_norm) {
        LC__GQ(q_norm, "attn_q_norm.weight", c->head_dim)
        LC__GQ(k_norm, "attn_k_norm.weight", c->head_dim)
    }
#undef LC__GQ
    return LOLCATS_OK;
}

LCIMPL lc_status lc_model_load_gguf(lc_model *m, const char *path, lc_error *err) {
    static const char *const names[9] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm",
                                         "ffn_gate", "ffn_down", "ffn_up"};
    lc__gguf_model *g;
    lc__model_priv *pv;
    lc_model_config *c = &m->cfg;
    const char *arch = NULL;
    lc_status st;
    int l, k;
    memset(m, 0, sizeof *m);
    g = (lc__gguf_model *)lc__mcalloc(1, sizeof *g);
    pv = (lc__model_priv *)lc__mcalloc(1, sizeof *pv);
    if (!g || !pv) { LOLCATS_FREE(g); LOLCATS_FREE(pv); return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", path); }
    pv->gguf = g;
    m->priv = pv;
    m->format = LOLCATS_MODEL_GGUF;
    if ((st = lc_gguf_open(&g->f, path, err))) goto fail;
    if ((st = lc_gguf_get_str(g->f, "general.architecture", &arch, err))) goto fail;
    if (strcmp(arch, "llama") && strcmp(arch, "mistral") && strcmp(arch, "qwen2") && strcmp(arch, "qwen3")) {
        st = lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "%s: general.architecture is \"%s\"; lolcats runs GGUF "
                          "models of the llama (Llama 1/2/3, Mistral), qwen2 (Qwen2/2.5) and qwen3 architectures",
                          path, arch);
        goto fail;
    }
    if ((st = lc__gguf_config(c, g->f, arch, err))) goto fail;
    if (!(m->layers = (lc_layer_weights *)lc__mcalloc((size_t)c->n_layers, sizeof *m->layers))) {
        st = lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    {
        int64_t dim = c->dim, qd = (int64_t)c->n_heads * c->head_dim, kvd = (int64_t)c->n_kv_heads * c->head_dim;
        int64_t hid = c->hidden_dim;
        if ((st = lc__gguf_weight(g, &m->tok_emb, "token_embd.weight", c->vocab_size, dim, 0, err)) ||
            (st = lc__gguf_weight(g, &m->rms_final, "output_norm.weight", 1, dim, 0, err)))
            goto fail;
        if (c->tied) m->wcls = m->tok_emb;
        else if ((st = lc__gguf_weight(g, &m->wcls, "output.weight", c->vocab_size, dim, 0, err))) goto fail;
        for (l = 0; l < c->n_layers; l++) {
            lc_layer_weights *lw = &m->layers[l];
            lc_weight *ws[9];
            const int64_t rows[9] = {1, qd, kvd, kvd, dim, 1, hid, dim, hid};
            const int64_t cols[9] = {dim, dim, dim, dim, qd, dim, dim, hid, dim};
            ws[0] = &lw->rms_att; ws[1] = &lw->wq; ws[2] = &lw->wk; ws[3] = &lw->wv; ws[4] = &lw->wo;
            ws[5] = &lw->rms_ffn; ws[6] = &lw->w1; ws[7] = &lw->w2; ws[8] = &lw->w3;
            for (k = 0; k < 9; k++) {
                char nm[64];
                snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, names[k]);
                if ((st = lc__gguf_weight(g, ws[k], nm, rows[k], cols[k], c->qkv_bias || c->qk_norm ? 0 :
                                          k == 1 ? c->n_heads : k == 2 ? c->n_kv_heads : 0, err)))
                    goto fail;
            }
            if ((st = lc__gguf_qwen_layer(g, c, lw, l, err))) goto fail;
        }
    }
    if ((st = lc__model_check_finite(m, path, err))) goto fail;
    return LOLCATS_OK;
fail:
    lc_model_free(m);
    return st;
}

#endif // !LOLCATS_NO_FILES (kept: used by the kernels)
// >>release
#if !defined(_WIN32) && !defined(LOLCATS_NO_MMAP) && defined(__linux__)
#ifndef MADV_DONTNEED   // strict C modes hide madvise: Linux's value and prototype
#define MADV_DONTNEED 4
extern int madvise(void *addr, size_t len, int advice);
#endif
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
#define LC__HAVE_MADVISE 1
#endif

LCIMPL size_t lc_advise_hugepages(void *p, size_t bytes) {
#ifdef LC__HAVE_MADVISE
    const uintptr_t hp = (uintptr_t)2 << 20;
    uintptr_t a = (uintptr_t)p, lo = (a + hp - 1) / hp * hp, hi = (a + bytes) / hp * hp;
    if (!p || hi <= lo) return 0;
    return madvise((void *)lo, (size_t)(hi - lo), MADV_HUGEPAGE) == 0 ? (size_t)(hi - lo) : 0;
#else
    (void)p;
    (void)bytes;
    return 0;
#endif
}

#ifdef LOLCATS_NO_FILES
// Without files no weight lies in a file mapping: nothing to release.
LCIMPL size_t lc_model_release_layer(const lc_model *m, int l) { (void)m; (void)l; return 0; }
#else

// 1 when [p, p+n) lies inside one of the model's file mappings.
static int lc__in_mapping(const lc__model_priv *pv, const void *p, size_t n) {
    const lc__hf_shards *sh = (const lc__hf_shards *)pv->st;
    const char *c = (const char *)p;
    int i;
    for (i = 0; i < pv->n_maps; i++) {
        const char *b = (const char *)pv->maps[i].data;
        if (pv->maps[i].kind == LC__MAP_MAPPED && c >= b && c + n <= b + pv->maps[i].size) return 1;
    }
    for (i = 0; sh && i < sh->n; i++) {
        const lc__map *mp = &sh->f[i]->map;
        const char *b = (const char *)mp->data;
        if (mp->kind == LC__MAP_MAPPED && c >= b && c + n <= b + mp->size) return 1;
    }
    return 0;
}

static size_t lc__release_weight(const lc__model_priv *pv, const lc_weight *w) {
#ifdef LC__HAVE_MADVISE
    size_t n = (size_t)w->rows * lc_dtype_row_bytes(w->dtype, w->cols), pg = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)w->data, lo = (a + pg - 1) / pg * pg, hi = (a + n) / pg * pg;
    if (!w->data || hi <= lo || !lc__in_mapping(pv, w->data, n)) return 0;
    return madvise((void *)lo, (size_t)(hi - lo), MADV_DONTNEED) == 0 ? (size_t)(hi - lo) : 0;
#else
    (void)pv; (void)w;
    return 0;
#endif
}

LCIMPL size_t lc_model_release_layer(const lc_model *m, int l) {
    const lc__model_priv *pv = (const lc__model_priv *)m->priv;
    const lc_layer_weights *lw;
    if (!pv || l < 0 || l >= m->cfg.n_layers) return 0;
    lw = &m->layers[l];
    return lc__release_weight(pv, &lw->wq) + lc__release_weight(pv, &lw->wk) + lc__release_weight(pv, &lw->wv) +
           lc__release_weight(pv, &lw->wo) + lc__release_weight(pv, &lw->w1) + lc__release_weight(pv, &lw->w2) +
           lc__release_weight(pv, &lw->w3);
}

static int lc__json_int(const lc__json *d, const lc__json_node *o, const char *k, int dflt) {
    const lc__json_node *c = lc__json_get(d, o, k);
    if (c && c->type == LC__JSON_ARRAY) c = lc__json_first(d, c);      // eos_token_id: [..]
    if (!c || c->type != LC__JSON_NUMBER || c->num != c->num) return dflt;
    // out-of-range values saturate (the config checks then name the field)
    return c->num >= 2147483647.0 ? 2147483647 : c->num <= -2147483648.0 ? -2147483647 - 1 : (int)c->num;
}

// Finds name in the shards, checks dtype and shape (rows, cols; rows 0 = 1-D).
static lc_status lc__hf_tensor(lc_weight *w, const lc__hf_shards *sh, const char *dir,
                               const char *name, int64_t rows, int64_t cols, lc_error *err) {
    const lc_tensor *t = NULL;
    int i;
    for (i = 0; i < sh->n && !t; i++) t = lc_st_find(sh->f[i], name);
    if (!t)
        return lc_error_set(err, LOLCATS_ERR_FORMAT,
                            "%s: tensor %s is missing from the safetensors files (incomplete "
                            "download, or not a Llama-family checkpoint)",
                            dir, name);
    if (t->dtype != LOLCATS_DTYPE_F32 && t->dtype != LOLCATS_DTYPE_F16 &&
        t->dtype != LOLCATS_DTYPE_BF16)
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED,
                            "%s: tensor %s has dtype %s; supported are F32, F16, BF16", dir, name,
                            lc_dtype_name(t->dtype));
    if (rows ? (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
             : (t->ndim != 1 || t->shape[0] != cols))
        return lc_error_set(err, LOLCATS_ERR_FORMAT,
                            "%s: tensor %s has shape [%lld%s%lld] (ndim %d), config.json implies "
                            "[%lld%s%lld]",
                            dir, name, (long long)t->shape[0], t->ndim > 1 ? ", " : "",
                            t->ndim > 1 ? (long long)t->shape[1] : 0LL, t->ndim,
                            (long long)(rows ? rows : cols), rows ? ", " : "",
                            rows ? (long long)cols : 0LL);
    *w = lc__w(t->data, t->dtype, rows ? rows : 1, cols);
    return LOLCATS_OK;
}

// dir + "/" + name into out (cap bytes); 0 when it does not fit.
static int lc__join(char *out, size_t cap, const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    if (a + b + 2 > cap) return 0;
    memcpy(out, dir, a);
    out[a] = '/';
    memcpy(out + a + 1, name, b + 1);
    return 1;
}

// The JSON type of every config field the loader reads, checked before any is
// read: "8" (a string), 8.5 or true where an integer is expected are refused,
// never coerced. Kinds: i integer, n number, b bool, s string, a array, o
// object; upper case: null allowed too; t: token id(s) (integer, array of
// integers, or null).
static lc_status lc__hf_config_types(const lc__json *d, const lc__json_node *obj, const char *where,
                                     const char *path, lc_error *err) {
    static const char *const fields[] = {
        "ihidden_size", "iintermediate_size", "inum_hidden_layers", "inum_attention_heads",
        "Inum_key_value_heads", "Ihead_dim", "ivocab_size", "imax_position_embeddings", "Isliding_window",
        "tbos_token_id", "teos_token_id", "tpad_token_id", "nrms_norm_eps", "Nrope_theta",
        "btie_word_embeddings", "Battention_bias", "Bmlp_bias", "Shidden_act", "Smodel_type", "Aarchitectures",
        "Orope_scaling", "Orope_parameters", "Nfactor", "Nlow_freq_factor", "Nhigh_freq_factor",
        "Ioriginal_max_position_embeddings", "Srope_type", "Stype", "Buse_sliding_window", "Imax_window_layers",
        "Alayer_types"};
    static const char *const kinds = "inbsao";
    static const char *const want[] = {"an integer", "a number", "true or false", "a string", "an array",
                                       "an object"};
    const lc__json_node *v, *e;
    size_t i;
    for (i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char k = fields[i][0], lk = (char)(k >= 'A' && k <= 'Z' ? k - 'A' + 'a' : k), shown[48];
        const char *name = fields[i] + 1, *w;
        int ok, ty;
        if (!(v = lc__json_get(d, obj, name))) continue;
        ty = v->type;
        if (lk == 't') {   // a token id, a list of them, or null
            ok = ty == LC__JSON_NULL || (ty == LC__JSON_NUMBER && v->is_int);
            for (e = ty == LC__JSON_ARRAY ? lc__json_first(d, v) : NULL, ok |= ty == LC__JSON_ARRAY; e;
                 e = lc__json_next(d, v, e))
                ok &= e->type == LC__JSON_NUMBER && e->is_int;
            w = "an integer token id (or a list of them, or null)";
        } else {
            ok = (k != lk && ty == LC__JSON_NULL) ||
                 (lk == 'i' && ty == LC__JSON_NUMBER && (v->is_int || v->num >= 9e18 || v->num <= -9e18)) ||
                 (lk == 'n' && ty == LC__JSON_NUMBER) ||
                 (lk == 'b' && (ty == LC__JSON_TRUE || ty == LC__JSON_FALSE)) ||
                 (lk == 's' && ty == LC__JSON_STRING) || (lk == 'a' && ty == LC__JSON_ARRAY) ||
                 (lk == 'o' && ty == LC__JSON_OBJECT);
            w = want[strchr(kinds, lk) - kinds];
        }
        if (ok) continue;
        if (ty == LC__JSON_STRING) snprintf(shown, sizeof shown, "the string \"%.30s\"", v->str);
        else if (ty == LC__JSON_NUMBER) snprintf(shown, sizeof shown, "the number %.17g", v->num);
        else if (ty == LC__JSON_ARRAY && lk == 't') snprintf(shown, sizeof shown, "a list with a non-integer entry");
        else snprintf(shown, sizeof shown, "%s %s", ty == LC__JSON_ARRAY || ty == LC__JSON_OBJECT ? "an" : "",
                      lc__json_type_name(ty));
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: field %s%s\"%s\" is %s, expected %s: fix the field "
                            "(numbers are written without quotes)", path, where, where[0] ? "." : "", name,
                            shown[0] == ' ' ? shown + 1 : shown, w);
    }
    return LOLCATS_OK;
}

// Token ids the config names (bos/eos/pad, an eos list too) must be in the vocabulary.
static lc_status lc__hf_config_ids(const lc__json *d, const lc__json_node *r, int vocab, const char *path,
                                   lc_error *err) {
    static const char *const names[3] = {"bos_token_id", "eos_token_id", "pad_token_id"};
    int i;
    for (i = 0; i < 3; i++) {
        const lc__json_node *v = lc__json_get(d, r, names[i]), *e;
        if (!v || v->type == LC__JSON_NULL) continue;
        for (e = v->type == LC__JSON_ARRAY ? lc__json_first(d, v) : v; e;
             e = v->type == LC__JSON_ARRAY ? lc__json_next(d, v, e) : NULL)
            if ((e->i64 < 0 || e->i64 >= vocab) && !(i == 2 && e->i64 == -1))   // pad -1: none
                return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: %s %lld is outside the vocabulary (vocab_size "
                                    "%d: ids 0..%d): fix the field", path, names[i], (long long)e->i64, vocab,
                                    vocab - 1);
    }
    return LOLCATS_OK;
}

// >>qwen-config
// Qwen2 / Qwen2.5 (Qwen2ForCausalLM) and Qwen3 (Qwen3ForCausalLM) are Llama
// blocks plus: Qwen2 adds biases to the q/k/v projections (o_proj has none);
// Qwen3 has no biases but an RMSNorm over each head of q and k (weights of
// size head_dim, eps rms_norm_eps) before RoPE. Both carry sliding-window
// fields that are off unless use_sliding_window is true (then refused: Qwen's
// window applies only to layers >= max_window_layers).
static int lc__hf_qwen_kind(const char *arch, const char *mt) {
    if (!strcmp(arch, "Qwen2ForCausalLM") || (!arch[0] && !strcmp(mt, "qwen2"))) return 2;
    if (!strcmp(arch, "Qwen3ForCausalLM") || (!arch[0] && !strcmp(mt, "qwen3"))) return 3;
    return 0;
}

static lc_status lc__hf_config_qwen(lc_model_config *c, const lc__json *d, const lc__json_node *r, int qwen,
                                    const char *path, lc_error *err) {
    const lc__json_node *u = lc__json_get(d, r, "use_sliding_window"), *lt = lc__json_get(d, r, "layer_types"), *e;
    if (u && u->type != LC__JSON_TRUE && u->type != LC__JSON_FALSE && u->type != LC__JSON_NULL)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: use_sliding_window must be true or false", path);
    if (u && u->type == LC__JSON_TRUE)
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "%s: use_sliding_window is true (a window of %d on "
                            "layers >= max_window_layers %d): not supported; set it to false (the released "
                            "Qwen2/2.5/3 checkpoints have it off)", path, c->sliding_window,
                            lc__json_int(d, r, "max_window_layers", 0));
    if (lt && lt->type == LC__JSON_ARRAY)
        for (e = lc__json_first(d, lt); e; e = lc__json_next(d, lt, e))
            if (e->type != LC__JSON_STRING || strcmp(e->str, "full_attention"))
                return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "%s: layer_types has an entry other than "
                                    "\"full_attention\" (sliding-window layers are not supported)", path);
    c->sliding_window = 0;
    c->qkv_bias = qwen == 2;
    c->qk_norm = qwen == 3;
    return LOLCATS_OK;
}

static lc_status lc__hf_config(lc_model_config *c, const lc__json *d, const char *path,
                               lc_error *err) {
    const lc__json_node *r = lc__json_root(d), *a, *rs, *rp;
    const char *arch = "", *mt;
    lc_status st;
    int qwen;
    if (!r || r->type != LC__JSON_OBJECT)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: not a JSON object", path);
    if ((st = lc__hf_config_types(d, r, "", path, err)) ||
        (st = lc__hf_config_types(d, lc__json_get(d, r, "rope_scaling"), "rope_scaling", path, err)) ||
        (st = lc__hf_config_types(d, lc__json_get(d, r, "rope_parameters"), "rope_parameters", path, err)))
        return st;
    a = lc__json_get(d, r, "architectures");
    if (a && a->type == LC__JSON_ARRAY && a->count) arch = lc__json_str(lc__json_first(d, a), "");
    mt = lc__json_str(lc__json_get(d, r, "model_type"), "");
    qwen = lc__hf_qwen_kind(arch, mt);
    if (strcmp(arch, "LlamaForCausalLM") && strcmp(arch, "MistralForCausalLM") && !qwen &&
        !(arch[0] == 0 && (!strcmp(mt, "llama") || !strcmp(mt, "mistral"))))
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED,
                            "%s: architecture \"%s\" (model_type \"%s\") is not supported; "
                            "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM and Qwen3ForCausalLM are",
                            path, arch, mt);
    snprintf(c->arch, sizeof c->arch, "%s", arch[0] ? arch : mt);
    if (strcmp(lc__json_str(lc__json_get(d, r, "hidden_act"), "silu"), "silu"))
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "%s: hidden_act must be \"silu\"", path);
    if (qwen != 2 && lc__json_get(d, r, "attention_bias") && lc__json_get(d, r, "attention_bias")->type == LC__JSON_TRUE)
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "%s: attention_bias is not supported", path);
    if (lc__json_get(d, r, "mlp_bias") && lc__json_get(d, r, "mlp_bias")->type == LC__JSON_TRUE)
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "%s: mlp_bias is not supported", path);
    c->dim = lc__json_int(d, r, "hidden_size", 0);
    c->hidden_dim = lc__json_int(d, r, "intermediate_size", 0);
    c->n_layers = lc__json_int(d, r, "num_hidden_layers", 0);
    c->n_heads = lc__json_int(d, r, "num_attention_heads", 0);
    c->n_kv_heads = lc__json_int(d, r, "num_key_value_heads", c->n_heads);
    c->head_dim = lc__json_int(d, r, "head_dim", qwen == 3 ? 128 : c->n_heads > 0 ? c->dim / c->n_heads : 0);
    c->vocab_size = lc__json_int(d, r, "vocab_size", 0);
    c->seq_len = lc__json_int(d, r, "max_position_embeddings", 2048);
    c->norm_eps = (float)lc__json_num(lc__json_get(d, r, "rms_norm_eps"), 1e-6);
    c->sliding_window = lc__json_int(d, r, "sliding_window", 0);          // null: none
    if (qwen && (st = lc__hf_config_qwen(c, d, r, qwen, path, err))) return st;
    rp = lc__json_get(d, r, "rope_parameters");
    c->rope_theta = (float)lc__json_num(lc__json_get(d, r, "rope_theta"),
                                        lc__json_num(lc__json_get(d, rp, "rope_theta"), 10000.0));
    c->tied = lc__json_get(d, r, "tie_word_embeddings") &&
              lc__json_get(d, r, "tie_word_embeddings")->type == LC__JSON_TRUE;
    c->bos_id = lc__json_int(d, r, "bos_token_id", -1);
    c->eos_id = lc__json_int(d, r, "eos_token_id", -1);
    rs = lc__json_get(d, r, "rope_scaling");
    if (!rs || rs->type != LC__JSON_OBJECT) rs = rp;
    if (rs && rs->type == LC__JSON_OBJECT) {
        const char *ty = lc__json_str(lc__json_get(d, rs, "rope_type"),
                                      lc__json_str(lc__json_get(d, rs, "type"), "default"));
        if (!strcmp(ty, "llama3")) {
            c->rope_llama3 = 1;
            c->rope_factor = (float)lc__json_num(lc__json_get(d, rs, "factor"), 8.0);
            c->rope_low_freq_factor = (float)lc__json_num(lc__json_get(d, rs, "low_freq_factor"), 1.0);
            c->rope_high_freq_factor =
                (float)lc__json_num(lc__json_get(d, rs, "high_freq_factor"), 4.0);
            c->rope_orig_max_pos = lc__json_int(d, rs, "original_max_position_embeddings", 8192);
            if (!(c->rope_high_freq_factor > c->rope_low_freq_factor) || c->rope_factor <= 0.0f)
                return lc_error_set(err, LOLCATS_ERR_FORMAT,
                                    "%s: rope_scaling llama3 needs high_freq_factor > "
                                    "low_freq_factor and factor > 0",
                                    path);
        } else if (strcmp(ty, "default"))
            return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED,
                                "%s: rope scaling type \"%s\" is not supported (default, llama3)",
                                path, ty);
    }
    if ((st = lc__model_check_cfg(c, path, err))) return st;
    return lc__hf_config_ids(d, r, c->vocab_size, path, err);
}

// The files must agree with config.json: no tensor of a layer >= num_hidden_layers
// (a config with fewer layers would silently drop them), and no tensor in two
// shards (which one would be read?).
static lc_status lc__hf_check_shards(const lc_model *m, const lc__hf_shards *sh, const char *dir, lc_error *err) {
    int i, j, k;
    for (i = 0; i < sh->n; i++)
        for (k = 0; k < lc_st_count(sh->f[i]); k++) {
            const char *nm = lc_st_tensor_at(sh->f[i], k)->name;
            long l;
            if (!strncmp(nm, "model.layers.", 13) && nm[13] >= '0' && nm[13] <= '9' &&
                (l = strtol(nm + 13, NULL, 10)) >= m->cfg.n_layers)
                return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: config.json says num_hidden_layers = %d, but %s "
                                    "holds %s (layer %ld): the config does not match the weights (fix "
                                    "num_hidden_layers, or use the config that came with these files)", dir,
                                    m->cfg.n_layers, lc_st_path(sh->f[i]), nm, l);
            for (j = i + 1; j < sh->n; j++)
                if (lc_st_find(sh->f[j], nm))
                    return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor %s is in two shards, %s and %s: "
                                        "remove the stale shard (or re-download the model)", dir, nm,
                                        lc_st_path(sh->f[i]), lc_st_path(sh->f[j]));
        }
    return LOLCATS_OK;
}

// The shards of an index (path, model.safetensors.index.json): every file its
// weight_map names (plain file names in dir, each opened once), and every
// mapped tensor must be in the shard the index names.
static lc_status lc__hf_open_index(lc__hf_shards *sh, const char *dir, const char *path,
                                   lc_error *err) {
    const lc__json_node *wm, *c;
    char *text = NULL;
    size_t n;
    lc__json d;
    lc_status s;
    memset(&d, 0, sizeof d);
    if ((s = lc__read_all(path, &text, &n, err))) return s;
    s = lc__json_parse(&d, text, n, path, err);
    LOLCATS_FREE(text);
    if (s) return s;
    wm = lc__json_get(&d, lc__json_root(&d), "weight_map");
    if (!wm || wm->type != LC__JSON_OBJECT || !wm->count) {
        lc__json_free(&d);
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: no weight_map object", path);
    }
    sh->f = (lc_st_file **)lc__mcalloc(wm->count, sizeof(lc_st_file *));
    if (!sh->f) { lc__json_free(&d); return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory"); }
    for (c = lc__json_first(&d, wm); c; c = lc__json_next(&d, wm, c)) {
        int k, seen = 0;
        char fp[4096];
        if (c->type != LC__JSON_STRING || strchr(c->str, '/') ||
            !lc__join(fp, sizeof fp, dir, c->str)) {
            s = lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: weight_map entry %s is not a plain "
                                                      "file name", path, c->key);
            lc__json_free(&d);  // after the message: c->key lives in d
            return s;
        }
        for (k = 0; k < sh->n; k++) seen |= !strcmp(lc_st_path(sh->f[k]), fp);
        if (seen) continue;
        if ((s = lc_st_open(&sh->f[sh->n], fp, err))) { lc__json_free(&d); return s; }
        sh->n++;
    }
    // every mapped tensor must be in the shard the index names
    for (c = lc__json_first(&d, wm); c; c = lc__json_next(&d, wm, c)) {
        int k, ok = 0;
        char fp[4096];
        snprintf(fp, sizeof fp, "%s/%s", dir, c->str);
        for (k = 0; k < sh->n; k++)
            if (!strcmp(lc_st_path(sh->f[k]), fp)) ok = lc_st_find(sh->f[k], c->key) != NULL;
        if (!ok) {
            s = lc_error_set(err, LOLCATS_ERR_FORMAT,
                             "%s: the index puts %s in %s, which does not hold it", path,
                             c->key, c->str);
            lc__json_free(&d);
            return s;
        }
    }
    lc__json_free(&d);
    return LOLCATS_OK;
}

// The weights of m from the shards: embeddings, final norm, classifier (unless
// tied), then each layer's norms, projections and (Qwen) biases, q/k norms,
// each checked for its shape (lc__hf_tensor).
static lc_status lc__hf_weights(lc_model *m, lc__hf_shards *sh, const char *dir, lc_error *err) {
    int i, D = m->cfg.head_dim, qd = m->cfg.n_heads * D, kvd = m->cfg.n_kv_heads * D;
    lc_status s;
#define LC__HF_T(dst, nm, rows, cols)                                                    \
    if ((s = lc__hf_tensor(&(dst), sh, dir, nm, rows, cols, err))) return s;
    LC__HF_T(m->tok_emb, "model.embed_tokens.weight", m->cfg.vocab_size, m->cfg.dim)
    LC__HF_T(m->rms_final, "model.norm.weight", 0, m->cfg.dim)
    if (m->cfg.tied) {
        m->wcls = m->tok_emb;
    } else {
        LC__HF_T(m->wcls, "lm_head.weight", m->cfg.vocab_size, m->cfg.dim)
    }
    for (i = 0; i < m->cfg.n_layers; i++) {
        lc_layer_weights *l = &m->layers[i];
        char nm[160];
        int dim = m->cfg.dim, hid = m->cfg.hidden_dim;
#define LC__HF_L(field, suffix, rows, cols)                                              \
        sprintf(nm, "model.layers.%d.%s", i, suffix);                                    \
        LC__HF_T(l->field, nm, rows, cols)
        LC__HF_L(rms_att, "input_layernorm.weight", 0, dim)
        LC__HF_L(wq, "self_attn.q_proj.weight", qd, dim)
        LC__HF_L(wk, "self_attn.k_proj.weight", kvd, dim)
        LC__HF_L(wv, "self_attn.v_proj.weight", kvd, dim)
        LC__HF_L(wo, "self_attn.o_proj.weight", dim, qd)
        LC__HF_L(rms_ffn, "post_attention_layernorm.weight", 0, dim)
        LC__HF_L(w1, "mlp.gate_proj.weight", hid, dim)
        LC__HF_L(w2, "mlp.down_proj.weight", dim, hid)
        LC__HF_L(w3, "mlp.up_proj.weight", hid, dim)
        if (m->cfg.qkv_bias) {
            LC__HF_L(bq, "self_attn.q_proj.bias", 0, qd)
            LC__HF_L(bk, "self_attn.k_proj.bias", 0, kvd)
            LC__HF_L(bv, "self_attn.v_proj.bias", 0, kvd)
        }
        if (m->cfg.qk_norm) {
            LC__HF_L(q_norm, "self_attn.q_norm.weight", 0, D)
            LC__HF_L(k_norm, "self_attn.k_norm.weight", 0, D)
        }
#undef LC__HF_L
    }
#undef LC__HF_T
    return LOLCATS_OK;
}

// A Hugging Face directory: config.json, the shards (the index's weight_map,
// else model.safetensors), the weights, then the consistency checks.
LCIMPL lc_status lc_model_load_hf(lc_model *m, const char *dir, lc_error *err) {
    char path[4096];
    char *text = NULL;
    size_t n;
    lc__json d;
    lc__model_priv *pv;
    lc__hf_shards *sh;
    lc_status s;
    memset(m, 0, sizeof *m);
    memset(&d, 0, sizeof d);
    if (strlen(dir) + 40 > sizeof path) return lc_error_set(err, LOLCATS_ERR_ARG, "%s: path too long", dir);
    sprintf(path, "%s/config.json", dir);
    if ((s = lc__read_all(path, &text, &n, err))) return s;
    s = lc__json_parse(&d, text, n, path, err);
    LOLCATS_FREE(text);
    if (s) return s;
    s = lc__hf_config(&m->cfg, &d, path, err);
    lc__json_free(&d);
    if (s) return s;
    pv = (lc__model_priv *)lc__mcalloc(1, sizeof *pv);
    sh = (lc__hf_shards *)lc__mcalloc(1, sizeof *sh);
    m->layers = (lc_layer_weights *)lc__mcalloc((size_t)m->cfg.n_layers, sizeof *m->layers);
    if (!pv || !sh || !m->layers) {
        LOLCATS_FREE(pv); LOLCATS_FREE(sh); LOLCATS_FREE(m->layers);
        m->layers = NULL;
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", dir);
    }
    pv->st = sh;
    m->priv = pv;
    m->format = LOLCATS_MODEL_HF;
    // shards: the index's weight_map, else model.safetensors
    sprintf(path, "%s/model.safetensors.index.json", dir);
    if (lc__exists(path)) {
        if ((s = lc__hf_open_index(sh, dir, path, err))) goto fail;
    } else {
        sh->f = (lc_st_file **)lc__mcalloc(1, sizeof(lc_st_file *));
        sprintf(path, "%s/model.safetensors", dir);
        if (!sh->f) { s = lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory"); goto fail; }
        if ((s = lc_st_open(&sh->f[0], path, err))) goto fail;
        sh->n = 1;
    }
    if ((s = lc__hf_weights(m, sh, dir, err))) goto fail;
    if ((s = lc__hf_check_shards(m, sh, dir, err))) goto fail;
    if ((s = lc__model_check_finite(m, dir, err))) goto fail;
    return LOLCATS_OK;
fail:
    lc_model_free(m);
    return s;
}

// >>model-export
static float *lc__export_f32(const lc_weight *w, int permute_heads, int D) {
    size_t n = (size_t)(w->rows * w->cols), r, c;
    float *out = (float *)LOLCATS_MALLOC(n ? n * sizeof(float) : 1);
    if (!out) return NULL;
    for (r = 0; r < (size_t)w->rows; r++) {
        size_t src = r;
        if (permute_heads) {
            size_t h = r / (size_t)D, j = r % (size_t)D, half = (size_t)D / 2;
            src = h * (size_t)D + (j < half ? 2 * j : 2 * (j - half) + 1);
        }
        if (lc_dtype_block(w->dtype) > 1)   // GGUF block types: a row at a time
            lc_dequant_row(out + r * (size_t)w->cols, (const unsigned char *)w->data +
                           src * lc_dtype_row_bytes(w->dtype, w->cols), w->dtype, w->cols);
        else
            for (c = 0; c < (size_t)w->cols; c++)
                out[r * (size_t)w->cols + c] = lc__m_at(w->data, w->dtype, src * (size_t)w->cols + c);
    }
    return out;
}

LCIMPL lc_status lc_model_export_hf(const lc_model *m, const char *dir, lc_error *err) {
    const lc_model_config *c = &m->cfg;
    int L = c->n_layers, nt = 2 + !c->tied + 14 * L, i, k = 0;
    lc_tensor *ts = (lc_tensor *)lc__mcalloc((size_t)nt, sizeof(lc_tensor));
    char *names = (char *)lc__mcalloc((size_t)nt, 96);
    char path[4096];
    FILE *fp;
    lc_status s = LOLCATS_OK;
    if (!ts || !names) { s = lc_error_set(err, LOLCATS_ERR_NOMEM, "export: out of memory"); goto done; }
    if (strlen(dir) + 32 > sizeof path) { s = lc_error_set(err, LOLCATS_ERR_ARG, "%s: path too long", dir); goto done; }
#define LC__EXP(nm, w, perm)                                                                \
    do {                                                                                    \
        lc_tensor *t_ = &ts[k];                                                             \
        char *n_ = names + 96 * (size_t)k++;                                                \
        snprintf(n_, 96, "%s", nm);                                                         \
        t_->name = n_;                                                                      \
        t_->dtype = LOLCATS_DTYPE_F32;                                                      \
        t_->ndim = (w).rows == 1 && (strstr(nm, "norm") || strstr(nm, "bias")) ? 1 : 2;    \
        t_->shape[0] = t_->ndim == 1 ? (w).cols : (w).rows;                                 \
        t_->shape[1] = (w).cols;                                                            \
        t_->nbytes = (size_t)((w).rows * (w).cols) * 4;                                     \
        t_->data = lc__export_f32(&(w), perm, c->head_dim);                                 \
        if (!t_->data) { s = lc_error_set(err, LOLCATS_ERR_NOMEM, "export: out of memory"); goto done; } \
    } while (0)
    LC__EXP("model.embed_tokens.weight", m->tok_emb, 0);
    for (i = 0; i < L; i++) {
        const lc_layer_weights *l = &m->layers[i];
        char nm[96];
        int perm = c->rope_interleaved;
#define LC__EXPL(suffix, w, p)                                                              \
        snprintf(nm, sizeof nm, "model.layers.%d.%s", i, suffix);                           \
        LC__EXP(nm, w, p);
        LC__EXPL("input_layernorm.weight", l->rms_att, 0)
        LC__EXPL("self_attn.q_proj.weight", l->wq, perm)
        LC__EXPL("self_attn.k_proj.weight", l->wk, perm)
        LC__EXPL("self_attn.v_proj.weight", l->wv, 0)
        LC__EXPL("self_attn.o_proj.weight", l->wo, 0)
        LC__EXPL("post_attention_layernorm.weight", l->rms_ffn, 0)
        LC__EXPL("mlp.gate_proj.weight", l->w1, 0)
        LC__EXPL("mlp.down_proj.weight", l->w2, 0)
        LC__EXPL("mlp.up_proj.weight", l->w3, 0)
        if (l->bq.data) {   // Qwen2
            LC__EXPL("self_attn.q_proj.bias", l->bq, 0)
            LC__EXPL("self_attn.k_proj.bias", l->bk, 0)
            LC__EXPL("self_attn.v_proj.bias", l->bv, 0)
        }
        if (l->q_norm.data) {   // Qwen3
            LC__EXPL("self_attn.q_norm.weight", l->q_norm, 0)
            LC__EXPL("self_attn.k_norm.weight", l->k_norm, 0)
        }
#undef LC__EXPL
    }
    LC__EXP("model.norm.weight", m->rms_final, 0);
    if (!c->tied) LC__EXP("lm_head.weight", m->wcls, 0);
#undef LC__EXP
    sprintf(path, "%s/model.safetensors", dir);
    {
        const char *meta[2] = {"format", "pt"};
        if ((s = lc_st_write(path, ts, k, meta, 1, err))) goto done;
    }
    sprintf(path, "%s/config.json", dir);
    fp = fopen(path, "wb");
    if (!fp) { s = lc_error_set(err, LOLCATS_ERR_IO, "%s: cannot create (does the directory exist?)", path); goto done; }
    {   // what a plain Llama config cannot say: a sliding window (Mistral), llama3 rope
        int mis = c->sliding_window > 0, qw = c->qkv_bias ? 2 : c->qk_norm ? 3 : 0;
        fprintf(fp, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n",
                qw == 2 ? "Qwen2ForCausalLM" : qw == 3 ? "Qwen3ForCausalLM" : mis ? "MistralForCausalLM" : "LlamaForCausalLM",
                qw == 2 ? "qwen2" : qw == 3 ? "qwen3" : mis ? "mistral" : "llama");
        if (qw) fprintf(fp, "  \"use_sliding_window\": false,\n  \"max_window_layers\": %d,\n", L);
        if (mis) fprintf(fp, "  \"sliding_window\": %d,\n", c->sliding_window);
        if (c->rope_llama3)
            fprintf(fp,
                    "  \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": %.9g, "
                    "\"low_freq_factor\": %.9g, \"high_freq_factor\": %.9g, "
                    "\"original_max_position_embeddings\": %d},\n",
                    (double)c->rope_factor, (double)c->rope_low_freq_factor,
                    (double)c->rope_high_freq_factor, c->rope_orig_max_pos);
    }
    fprintf(fp,
            "  \"hidden_act\": \"silu\",\n  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n"
            "  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
            "  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n  \"vocab_size\": %d,\n"
            "  \"max_position_embeddings\": %d,\n  \"rms_norm_eps\": %.9g,\n"
            "  \"rope_theta\": %.9g,\n  \"tie_word_embeddings\": %s,\n"
            "  \"attention_bias\": false,\n  \"mlp_bias\": false,\n"
            "  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n  \"torch_dtype\": \"float32\"\n}\n",
            c->dim, c->hidden_dim, L, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size,
            c->seq_len, (double)c->norm_eps, (double)c->rope_theta, c->tied ? "true" : "false",
            c->bos_id, c->eos_id);
    if (fclose(fp) != 0) s = lc_error_set(err, LOLCATS_ERR_IO, "%s: write failed", path);
done:
    if (ts)
        for (i = 0; i < k; i++) LOLCATS_FREE((void *)ts[i].data);
    LOLCATS_FREE(ts);
    LOLCATS_FREE(names);
    return s;
}

// >>tokenizer
// Pieces are raw bytes. Lookups: piece -> id (open addressing, FNV-1a), and
// for tokenizer.json the merge table (left id, right id) -> (rank, merged id).
// Encoding is BPE with a heap of candidate pairs (best priority first, then
// leftmost), so a long text without a pre-tokenizer costs O(n log n):
//   llama2.c tokenizer.bin: any adjacent pair whose concatenation is a piece,
//                           priority = score of that piece (llama2.c's rule);
//   tokenizer.json:         pairs of the merges list, priority = -rank.
typedef struct lc__tok_priv {
    char *blob;
    int *hash;                    // piece -> id, -1 empty
    size_t hmask;
    int16_t *byteval;             // id -> byte of a <0xXX> piece, else -1
    unsigned char *control;       // id -> 1: decodes to nothing (BOS, EOS, specials)
    uint64_t *mkey;               // merges: key (a << 32 | b), ~0 empty
    int *mrank, *mout;
    size_t mmask;
    int n_merges;
    int nl_split;                 // 1: no piece holds the newline's piece inside a longer one
    int qwen_split;               // Split regex pre-tokenizer (lc__tok_pt_next_qwen): 0 none (GPT-2 rule),
                                  // 1 Qwen2/2.5/3 (\p{N}: one digit), 3 Llama 3 (\p{N}{1,3})
} lc__tok_priv;

static uint32_t lc__tok_fnv(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    size_t i;
    for (i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 16777619u; }
    return h;
}

LCIMPL int lc_tokenizer_find(const lc_tokenizer *t, const char *piece, size_t len) {
    const lc__tok_priv *pv = (const lc__tok_priv *)t->priv;
    size_t i = lc__tok_fnv(piece, len) & pv->hmask;
    for (;; i = (i + 1) & pv->hmask) {
        int id = pv->hash[i];
        if (id < 0) return -1;
        if ((size_t)t->lens[id] == len && memcmp(t->pieces[id], piece, len) == 0) return id;
    }
}

static int lc__tok_hex(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// Builds the lookup tables once pieces/lens are set. Duplicate pieces keep the
// lowest id (as a sorted-vocab binary search would find one of them).
// A BPE token spanning a newline would have the newline symbol's piece ("\n",
// or "<0x0A>" by byte fallback) inside a longer piece. When no piece does, no
// merge ever crosses a newline, so lc__tok_segment may encode a long text
// newline-delimited chunk by chunk: the same ids, scratch bounded by the chunk.
static void lc__tok_nl_split(const lc_tokenizer *t, lc__tok_priv *pv) {
    int nl = -1, i;
    size_t k, ln;
    pv->nl_split = 0;
    if (t->kind == LOLCATS_TOK_BYTELEVEL) return;   // pre-tokenized into short segments already
    for (i = 0; i < t->vocab_size && nl < 0; i++)
        if (t->lens[i] == 1 && t->pieces[i][0] == '\n') nl = i;
    if (nl < 0 && t->byte_fallback) nl = t->byte_ids['\n'];
    if (nl < 0) return;
    ln = (size_t)t->lens[nl];
    for (i = 0; i < t->vocab_size; i++)
        for (k = 0; (size_t)t->lens[i] > ln && k + ln <= (size_t)t->lens[i]; k++)
            if (!memcmp(t->pieces[i] + k, t->pieces[nl], ln)) return;
    pv->nl_split = 1;
}

static lc_status lc__tok_index(lc_tokenizer *t, const char *path, lc_error *err) {
    lc__tok_priv *pv = (lc__tok_priv *)t->priv;
    size_t cap = 16;
    int i;
    while (cap < 2 * (size_t)t->vocab_size) cap *= 2;
    pv->hash = (int *)LOLCATS_MALLOC(cap * sizeof(int));
    pv->byteval = (int16_t *)LOLCATS_MALLOC((size_t)t->vocab_size * sizeof(int16_t));
    pv->control = (unsigned char *)lc__mcalloc((size_t)t->vocab_size, 1);
    if (!pv->hash || !pv->byteval || !pv->control)
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", path);
    memset(pv->hash, 0xff, cap * sizeof(int));
    pv->hmask = cap - 1;
    for (i = 0; i < 256; i++) t->byte_ids[i] = -1;
    t->max_token_length = 0;
    for (i = 0; i < t->vocab_size; i++) {
        size_t h = lc__tok_fnv(t->pieces[i], (size_t)t->lens[i]) & pv->hmask;
        const char *p = t->pieces[i];
        int dup = 0;
        if (t->lens[i] > t->max_token_length) t->max_token_length = t->lens[i];
        for (; pv->hash[h] >= 0; h = (h + 1) & pv->hmask) {
            int o = pv->hash[h];
            if (t->lens[o] == t->lens[i] && memcmp(t->pieces[o], p, (size_t)t->lens[i]) == 0) {
                dup = 1;
                break;
            }
        }
        if (!dup) pv->hash[h] = i;
        pv->byteval[i] = -1;
        if (t->kind == LOLCATS_TOK_SPM && t->lens[i] == 6 && p[0] == '<' && p[1] == '0' &&
            p[2] == 'x' && p[5] == '>' && lc__tok_hex(p[3]) >= 0 && lc__tok_hex(p[4]) >= 0) {
            int b = lc__tok_hex(p[3]) * 16 + lc__tok_hex(p[4]);
            pv->byteval[i] = (int16_t)b;
            if (t->byte_ids[b] < 0) t->byte_ids[b] = i;
        }
    }
    if (t->kind == LOLCATS_TOK_BYTELEVEL)
        for (i = 0; i < 256; i++) {
            char c = (char)i;
            t->byte_ids[i] = lc_tokenizer_find(t, &c, 1);
        }
    if (t->bos_id >= t->vocab_size) t->bos_id = -1;
    if (t->eos_id >= t->vocab_size) t->eos_id = -1;
    if (t->unk_id >= t->vocab_size) t->unk_id = -1;
    if (t->bos_id >= 0) pv->control[t->bos_id] = 1;
    if (t->eos_id >= 0) pv->control[t->eos_id] = 1;
    lc__tok_nl_split(t, pv);
    return LOLCATS_OK;
}

LCIMPL void lc_tokenizer_free(lc_tokenizer *t) {
    lc__tok_priv *pv;
    if (!t) return;
    pv = (lc__tok_priv *)t->priv;
    if (pv) {
        LOLCATS_FREE(pv->blob); LOLCATS_FREE(pv->hash); LOLCATS_FREE(pv->byteval);
        LOLCATS_FREE(pv->control); LOLCATS_FREE(pv->mkey); LOLCATS_FREE(pv->mrank);
        LOLCATS_FREE(pv->mout); LOLCATS_FREE(pv);
    }
    LOLCATS_FREE(t->pieces); LOLCATS_FREE(t->lens); LOLCATS_FREE(t->scores);
    LOLCATS_FREE(t->special);
    memset(t, 0, sizeof *t);
}

static lc_status lc__tok_alloc(lc_tokenizer *t, int V, size_t blob, const char *path,
                               lc_error *err) {
    lc__tok_priv *pv = (lc__tok_priv *)lc__mcalloc(1, sizeof *pv);
    t->priv = pv;
    t->vocab_size = V;
    t->pieces = (char **)lc__mcalloc((size_t)V, sizeof(char *));
    t->lens = (int *)lc__mcalloc((size_t)V, sizeof(int));
    t->scores = (float *)lc__mcalloc((size_t)V, sizeof(float));
    if (pv) pv->blob = (char *)LOLCATS_MALLOC(blob + 1);
    if (!pv || !t->pieces || !t->lens || !t->scores || !pv->blob)
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory for %d pieces", path, V);
    return LOLCATS_OK;
}

LCIMPL lc_status lc_tokenizer_load_llama2c(lc_tokenizer *t, const char *path, int vocab_size,
                                           lc_error *err) {
    char *buf;
    size_t n = 0, off, blob = 0;
    int V = 0, i;
    lc_status s;
    memset(t, 0, sizeof *t);
    if ((s = lc__read_all(path, &buf, &n, err))) return s;
    // pass 1: count entries and validate every length against the file size
    for (off = 4; off < n && (vocab_size <= 0 || V < vocab_size); V++) {
        int32_t len;
        if (n - off < 8) break;
        len = lc__rd_i32((const unsigned char *)buf + off + 4);
        if (len < 0 || (size_t)len > n - off - 8) {
            LOLCATS_FREE(buf);
            return lc_error_set(err, LOLCATS_ERR_FORMAT,
                                "%s: token %d at byte %zu has length %d, past the end of the "
                                "%zu-byte file (truncated or not a llama2.c tokenizer.bin)",
                                path, V, off + 4, (int)len, n);
        }
        off += 8 + (size_t)len;
        blob += (size_t)len + 1;
    }
    if (n < 4 || V == 0 || off != n || (vocab_size > 0 && V != vocab_size)) {
        LOLCATS_FREE(buf);
        return lc_error_set(err, LOLCATS_ERR_FORMAT,
                            "%s: %zu bytes hold %d complete tokens%s%s; expected exactly %d "
                            "(the model's vocab_size): pass the tokenizer that belongs to the model",
                            path, n, V, off != n ? " and trailing bytes" : "",
                            "", vocab_size > 0 ? vocab_size : V);
    }
    t->kind = LOLCATS_TOK_SPM;
    if ((s = lc__tok_alloc(t, V, blob, path, err))) { LOLCATS_FREE(buf); lc_tokenizer_free(t); return s; }
    {
        lc__tok_priv *pv = (lc__tok_priv *)t->priv;
        char *b = pv->blob;
        for (off = 4, i = 0; i < V; i++) {
            int32_t len = lc__rd_i32((const unsigned char *)buf + off + 4);
            memcpy(&t->scores[i], buf + off, 4);
            t->pieces[i] = b;
            t->lens[i] = len;
            memcpy(b, buf + off + 8, (size_t)len);
            b[len] = 0;
            b += len + 1;
            off += 8 + (size_t)len;
        }
    }
    LOLCATS_FREE(buf);
    t->bos_id = 1; t->eos_id = 2; t->unk_id = 0;
    t->add_bos = 1; t->add_prefix_space = 1; t->byte_fallback = 1;
    if ((s = lc__tok_index(t, path, err))) { lc_tokenizer_free(t); return s; }
    if (t->unk_id >= 0) ((lc__tok_priv *)t->priv)->control[t->unk_id] = 0;
    return LOLCATS_OK;
}

typedef struct lc__tok_bpe_cand {
    float prio;
    int pos, left, right, lid, rid, merged;
} lc__tok_bpe_cand;

static int lc__tok_bpe_before(const lc__tok_bpe_cand *a, const lc__tok_bpe_cand *b) {
    if (a->prio != b->prio) return a->prio > b->prio;
    return a->pos < b->pos;
}

static void lc__tok_bpe_push(lc__tok_bpe_cand *h, int *n, lc__tok_bpe_cand c) {
    int i = (*n)++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!lc__tok_bpe_before(&c, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static lc__tok_bpe_cand lc__tok_bpe_pop(lc__tok_bpe_cand *h, int *n) {
    lc__tok_bpe_cand top = h[0], last = h[--(*n)];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && lc__tok_bpe_before(&h[c + 1], &h[c])) c++;
        if (!lc__tok_bpe_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = last;
    return top;
}

// Merge candidate of adjacent ids (a, b): the merged id or -1, and its priority.
static int lc__tok_pair(const lc_tokenizer *t, int a, int b, float *prio, char *tmp) {
    const lc__tok_priv *pv = (const lc__tok_priv *)t->priv;
    if (pv->n_merges) {
        uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
        size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & pv->mmask;
        for (;; i = (i + 1) & pv->mmask) {
            if (pv->mkey[i] == ~(uint64_t)0) return -1;
            if (pv->mkey[i] == key) { *prio = -(float)pv->mrank[i]; return pv->mout[i]; }
        }
    } else {
        int id;
        size_t la = (size_t)t->lens[a], lb = (size_t)t->lens[b];
        if (la + lb > (size_t)t->max_token_length) return -1;
        memcpy(tmp, t->pieces[a], la);
        memcpy(tmp + la, t->pieces[b], lb);
        id = lc_tokenizer_find(t, tmp, la + lb);
        if (id >= 0) *prio = t->scores[id];
        return id;
    }
}

// BPE of one segment; appends to ids.
static lc_status lc__tok_bpe(const lc_tokenizer *t, const char *s, size_t len, int prefix,
                             int *ids, size_t cap, size_t *n, lc_error *err) {
    size_t nsym_cap = len + 2, i;
    int *sid, *nxt, *prv, nsym = 0, nh = 0, k;
    lc__tok_bpe_cand *heap;
    char *tmp;
    lc_status st = LOLCATS_OK;
    if (len == 0) return LOLCATS_OK;
    sid = (int *)LOLCATS_MALLOC(nsym_cap * 3 * sizeof(int));
    heap = (lc__tok_bpe_cand *)LOLCATS_MALLOC((3 * nsym_cap + 4) * sizeof *heap);
    tmp = (char *)LOLCATS_MALLOC(2 * (size_t)t->max_token_length + 8);
    if (!sid || !heap || !tmp) {
        LOLCATS_FREE(sid); LOLCATS_FREE(heap); LOLCATS_FREE(tmp);
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "tokenizer: out of memory for %zu bytes", len);
    }
    nxt = sid + nsym_cap;
    prv = nxt + nsym_cap;
    // initial symbols
    if (t->kind == LOLCATS_TOK_BYTELEVEL) {
        for (i = 0; i < len; i++) {
            int id = t->byte_ids[(unsigned char)s[i]];
            sid[nsym++] = id >= 0 ? id : t->unk_id;
        }
    } else {
        if (prefix) {
            int id = lc_tokenizer_find(t, " ", 1);
            if (id >= 0) sid[nsym++] = id;
            else if (t->byte_fallback && t->byte_ids[(unsigned char)' '] >= 0) sid[nsym++] = t->byte_ids[(unsigned char)' '];
        }
        for (i = 0; i < len;) {
            size_t cl = 1;
            int id;
            if (((unsigned char)s[i] & 0xC0) != 0x80)
                while (i + cl < len && cl < 4 && ((unsigned char)s[i + cl] & 0xC0) == 0x80) cl++;
            id = lc_tokenizer_find(t, s + i, cl);
            if (id >= 0) sid[nsym++] = id;
            else if (t->byte_fallback) {
                size_t b;
                for (b = 0; b < cl; b++) {
                    int bid = t->byte_ids[(unsigned char)s[i + b]];
                    if ((size_t)nsym >= nsym_cap) break;
                    sid[nsym++] = bid >= 0 ? bid : t->unk_id;
                }
            } else sid[nsym++] = t->unk_id;
            i += cl;
        }
    }
    for (k = 0; k < nsym; k++) { nxt[k] = k + 1 < nsym ? k + 1 : -1; prv[k] = k - 1; }
    for (k = 0; k + 1 < nsym; k++) {
        lc__tok_bpe_cand c;
        if (sid[k] < 0 || sid[k + 1] < 0) continue;
        c.merged = lc__tok_pair(t, sid[k], sid[k + 1], &c.prio, tmp);
        if (c.merged < 0) continue;
        c.pos = k; c.left = k; c.right = k + 1; c.lid = sid[k]; c.rid = sid[k + 1];
        lc__tok_bpe_push(heap, &nh, c);
    }
    while (nh > 0) {
        lc__tok_bpe_cand c = lc__tok_bpe_pop(heap, &nh), d;
        int L = c.left, R = c.right;
        if (sid[L] != c.lid || nxt[L] != R || sid[R] != c.rid) continue;   // stale
        sid[L] = c.merged;
        sid[R] = -2;
        nxt[L] = nxt[R];
        if (nxt[R] >= 0) prv[nxt[R]] = L;
        if (prv[L] >= 0 && sid[prv[L]] >= 0) {
            d.merged = lc__tok_pair(t, sid[prv[L]], sid[L], &d.prio, tmp);
            if (d.merged >= 0) {
                d.pos = prv[L]; d.left = prv[L]; d.right = L; d.lid = sid[prv[L]];
                d.rid = sid[L];
                lc__tok_bpe_push(heap, &nh, d);
            }
        }
        if (nxt[L] >= 0 && sid[nxt[L]] >= 0) {
            d.merged = lc__tok_pair(t, sid[L], sid[nxt[L]], &d.prio, tmp);
            if (d.merged >= 0) {
                d.pos = L; d.left = L; d.right = nxt[L]; d.lid = sid[L]; d.rid = sid[nxt[L]];
                lc__tok_bpe_push(heap, &nh, d);
            }
        }
    }
    for (k = nsym > 0 ? 0 : -1; k >= 0; k = nxt[k]) {
        if (sid[k] < 0) continue;                    // unknown without an <unk>
        if (*n >= cap) {
            st = lc_error_set(err, LOLCATS_ERR_ARG, "tokenizer: output holds %zu ids, too few",
                              cap);
            break;
        }
        ids[(*n)++] = sid[k];
    }
    LOLCATS_FREE(sid); LOLCATS_FREE(heap); LOLCATS_FREE(tmp);
    return st;
}

static lc_status lc__tok_segment(const lc_tokenizer *t, const char *s, size_t len, int *ids,
                                 size_t cap, size_t *n, lc_error *err);

LCIMPL lc_status lc_tokenizer_encode(const lc_tokenizer *t, const char *text, size_t len, int bos,
                                     int eos, int *ids, size_t cap, size_t *n, lc_error *err) {
    size_t start = 0, i;
    lc_status s;
    *n = 0;
    if (bos && t->bos_id >= 0) {
        if (cap < 1) return lc_error_set(err, LOLCATS_ERR_ARG, "tokenizer: no room for BOS");
        ids[(*n)++] = t->bos_id;
    }
    // split out special tokens written verbatim in the text
    for (i = 0; i < len && t->n_special;) {
        int best = -1, k;
        for (k = 0; k < t->n_special; k++) {
            int id = t->special[k];
            size_t l = (size_t)t->lens[id];
            if (l && l <= len - i && memcmp(text + i, t->pieces[id], l) == 0 &&
                (best < 0 || l > (size_t)t->lens[best]))
                best = id;
        }
        if (best < 0) { i++; continue; }
        if ((s = lc__tok_segment(t, text + start, i - start, ids, cap, n, err))) return s;
        if (*n >= cap) return lc_error_set(err, LOLCATS_ERR_ARG, "tokenizer: output too small");
        ids[(*n)++] = best;
        i += (size_t)t->lens[best];
        start = i;
    }
    if ((s = lc__tok_segment(t, text + start, len - start, ids, cap, n, err))) return s;
    if (eos && t->eos_id >= 0) {
        if (*n >= cap) return lc_error_set(err, LOLCATS_ERR_ARG, "tokenizer: no room for EOS");
        ids[(*n)++] = t->eos_id;
    }
    return LOLCATS_OK;
}

LCIMPL size_t lc_tokenizer_decode(const lc_tokenizer *t, int prev, int tok, char *buf, size_t cap) {
    const lc__tok_priv *pv = (const lc__tok_priv *)t->priv;
    const char *p;
    size_t len;
    if (cap == 0) return 0;
    buf[0] = 0;
    if (tok < 0 || tok >= t->vocab_size || pv->control[tok]) return 0;
    if (pv->byteval[tok] >= 0) {
        buf[0] = (char)pv->byteval[tok];
        if (cap > 1) buf[1] = 0;
        return 1;
    }
    p = t->pieces[tok];
    len = (size_t)t->lens[tok];
    if (t->kind == LOLCATS_TOK_SPM && t->add_prefix_space && len && p[0] == ' ' &&
        (prev < 0 || prev == t->bos_id)) {
        p++;
        len--;
    }
    if (len >= cap) len = cap - 1;
    memcpy(buf, p, len);
    buf[len] = 0;
    return len;
}

// >>tokenizer-hf
// GPT-2 byte <-> unicode map of byte-level BPE: printable bytes map to
// themselves, the others to U+0100 + n in byte order.
static int lc__tok_byte_to_cp(int b) {
    int n = 0, i;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
    for (i = 0; i < b; i++)
        if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255))) n++;
    return 256 + n;
}

static int lc__utf8_dec(const unsigned char *s, size_t n, size_t *used) {
    int c = s[0];
    if (c < 0x80 || n < 2) { *used = 1; return c; }
    if ((c & 0xE0) == 0xC0) { *used = 2; return ((c & 0x1F) << 6) | (s[1] & 0x3F); }
    if ((c & 0xF0) == 0xE0 && n >= 3) {
        *used = 3;
        return ((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    if (n >= 4) {
        *used = 4;
        return ((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    }
    *used = 1;
    return c;
}

// Rewrites a vocabulary string into raw piece bytes (in place; never longer):
// SPM: U+2581 -> ' '; byte-level: each mapped code point -> its byte.
static size_t lc__tok_unmap(char *s, size_t n, int kind, int *inv /*(324) cp -> byte*/) {
    size_t i = 0, o = 0, u;
    while (i < n) {
        if (kind == LOLCATS_TOK_SPM) {
            if (i + 2 < n + 0 && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 &&
                (unsigned char)s[i + 2] == 0x81) {
                s[o++] = ' ';
                i += 3;
            } else s[o++] = s[i++];
        } else {
            int cp = lc__utf8_dec((const unsigned char *)s + i, n - i, &u);
            if (cp >= 0 && cp < 324 && inv[cp] >= 0) s[o++] = (char)inv[cp];
            else { memmove(s + o, s + i, u); o += u; }
            i += u;
        }
    }
    return o;
}

static int lc__json_type_is(const lc__json *d, const lc__json_node *o, const char *type) {
    const lc__json_node *t = lc__json_get(d, o, "type");
    return t && t->type == LC__JSON_STRING && !strcmp(t->str, type);
}

// Whether node (a pre_tokenizer / normalizer / decoder) is or holds `type`.
static const lc__json_node *lc__json_find_type(const lc__json *d, const lc__json_node *o,
                                           const char *type) {
    const lc__json_node *c, *arr;
    static const char *lists[] = {"pretokenizers", "normalizers", "decoders", "processors"};
    int k;
    if (!o || o->type != LC__JSON_OBJECT) return NULL;
    if (lc__json_type_is(d, o, type)) return o;
    for (k = 0; k < 4; k++) {
        arr = lc__json_get(d, o, lists[k]);
        if (!arr || arr->type != LC__JSON_ARRAY) continue;
        for (c = lc__json_first(d, arr); c; c = lc__json_next(d, arr, c))
            if (lc__json_type_is(d, c, type)) return c;
    }
    return NULL;
}

static int lc__tok_is_qwen_split(const lc__json *d, const lc__json_node *pre);

// Validates model.vocab and added_tokens (ids in [0, 2^24), strings) and sums
// what they need: V = the largest id + 1, the bytes of their pieces (blob),
// the number of added tokens.
static lc_status lc__tok_hf_sizes(const lc__json *d, const lc__json_node *vocab,
                                  const lc__json_node *added, const char *path, lc_error *err,
                                  int *V, size_t *blob, int *n_added) {
    const lc__json_node *c;
    for (c = lc__json_first(d, vocab); c; c = lc__json_next(d, vocab, c)) {
        if (c->type != LC__JSON_NUMBER || !c->is_int || c->i64 < 0 || c->i64 >= (1 << 24))
            return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: vocab entry \"%s\" has a bad id",
                                path, c->key);
        if (c->i64 >= *V) *V = (int)c->i64 + 1;
        *blob += c->key_len + 1;
    }
    if (added && added->type == LC__JSON_ARRAY)
        for (c = lc__json_first(d, added); c; c = lc__json_next(d, added, c)) {
            const lc__json_node *id = lc__json_get(d, c, "id"), *ct = lc__json_get(d, c, "content");
            if (!id || !id->is_int || id->i64 < 0 || id->i64 >= (1 << 24) || !ct ||
                ct->type != LC__JSON_STRING)
                return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: added_tokens entry without "
                                                             "an id or content", path);
            if (id->i64 >= *V) *V = (int)id->i64 + 1;
            *blob += ct->len + 1;
            (*n_added)++;
        }
    return LOLCATS_OK;
}

// The pieces into the blob: vocab strings unmapped to raw bytes (lc__tok_unmap),
// added tokens as they are (and listed as special); ids without a piece get "".
static void lc__tok_hf_pieces(lc_tokenizer *t, const lc__json *d, const lc__json_node *vocab,
                              const lc__json_node *added, int *inv) {
    const lc__json_node *c;
    char *b = ((lc__tok_priv *)t->priv)->blob;
    int i;
    for (c = lc__json_first(d, vocab); c; c = lc__json_next(d, vocab, c)) {
        int id = (int)c->i64;
        memcpy(b, c->key, c->key_len);
        t->pieces[id] = b;
        t->lens[id] = (int)lc__tok_unmap(b, c->key_len, t->kind, inv);
        b[t->lens[id]] = 0;
        b += c->key_len + 1;
    }
    if (added && added->type == LC__JSON_ARRAY)
        for (c = lc__json_first(d, added); c; c = lc__json_next(d, added, c)) {
            const lc__json_node *ct = lc__json_get(d, c, "content");
            int id = (int)lc__json_get(d, c, "id")->i64;
            memcpy(b, ct->str, ct->len);
            b[ct->len] = 0;
            t->pieces[id] = b;
            t->lens[id] = (int)ct->len;
            b += ct->len + 1;
            t->special[t->n_special++] = id;
        }
    for (i = 0; i < t->vocab_size; i++)
        if (!t->pieces[i]) { t->pieces[i] = b - 1; t->lens[i] = 0; }   // ids without a piece
}

// unk_token, byte_fallback, the SentencePiece dummy prefix, BOS (from the
// post-processor template, else by name) and EOS (by name).
static void lc__tok_hf_flags(lc_tokenizer *t, const lc__json *d, const lc__json_node *root,
                             const lc__json_node *model, const lc__json_node *vocab) {
    const lc__json_node *c, *pp;
    int i;
    t->unk_id = -1;
    c = lc__json_get(d, model, "unk_token");
    if (c && c->type == LC__JSON_STRING) {
        const lc__json_node *u = lc__json_get(d, vocab, c->str);
        if (u) t->unk_id = (int)u->i64;
    }
    c = lc__json_get(d, model, "byte_fallback");
    t->byte_fallback = c && c->type == LC__JSON_TRUE;
    // SentencePiece dummy prefix: a Prepend("▁") normalizer or a Metaspace pre-tokenizer
    t->add_prefix_space =
        t->kind == LOLCATS_TOK_SPM &&
        (lc__json_find_type(d, lc__json_get(d, root, "normalizer"), "Prepend") ||
         lc__json_find_type(d, lc__json_get(d, root, "pre_tokenizer"), "Metaspace"));
    // BOS from the post-processor template; EOS by the usual names
    t->bos_id = t->eos_id = -1;
    pp = lc__json_find_type(d, lc__json_get(d, root, "post_processor"), "TemplateProcessing");
    if (pp) {
        const lc__json_node *single = lc__json_get(d, pp, "single"), *first, *st, *idn;
        first = single ? lc__json_first(d, single) : NULL;
        st = first ? lc__json_get(d, first, "SpecialToken") : NULL;
        idn = st ? lc__json_get(d, st, "id") : NULL;
        if (idn && idn->type == LC__JSON_STRING) {
            size_t L = strlen(idn->str);
            for (i = 0; i < t->n_special; i++)
                if ((size_t)t->lens[t->special[i]] == L &&
                    !memcmp(t->pieces[t->special[i]], idn->str, L))
                    t->bos_id = t->special[i];
            t->add_bos = t->bos_id >= 0;
        }
    }
    for (i = 0; i < t->n_special; i++) {
        const char *p = t->pieces[t->special[i]];
        if (!strcmp(p, "<s>") && t->bos_id < 0) t->bos_id = t->special[i];
        if (!strcmp(p, "<|begin_of_text|>") && t->bos_id < 0) t->bos_id = t->special[i];
        if (!strcmp(p, "</s>") || !strcmp(p, "<|end_of_text|>") || !strcmp(p, "<|endoftext|>"))
            if (t->eos_id < 0) t->eos_id = t->special[i];
    }
}

// model.merges ("left right" or [left, right], in rank order) into the open
// addressing table (left id, right id) -> (rank, merged id); the first rank of
// a pair wins. Every piece must be in the vocab.
static lc_status lc__tok_hf_merges(lc_tokenizer *t, const lc__json *d,
                                   const lc__json_node *merges, int *inv, const char *path,
                                   lc_error *err) {
    lc__tok_priv *pv = (lc__tok_priv *)t->priv;
    const lc__json_node *c;
    size_t cap = 16;
    char *tmp, *sa, *sb2;
    int rank = 0;
    while (cap < 2 * (size_t)merges->count + 2) cap *= 2;
    pv->mkey = (uint64_t *)LOLCATS_MALLOC(cap * sizeof(uint64_t));
    pv->mrank = (int *)LOLCATS_MALLOC(cap * sizeof(int));
    pv->mout = (int *)LOLCATS_MALLOC(cap * sizeof(int));
    if (!pv->mkey || !pv->mrank || !pv->mout)
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory for merges", path);
    memset(pv->mkey, 0xff, cap * sizeof(uint64_t));
    pv->mmask = cap - 1;
    tmp = (char *)LOLCATS_MALLOC(2 * (size_t)t->max_token_length + 1024);
    if (!tmp) return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", path);
    for (c = lc__json_first(d, merges); c; c = lc__json_next(d, merges, c), rank++) {
        size_t la, lb, h;
        int ia, ib, io;
        uint64_t key;
        if (c->type == LC__JSON_STRING) {
            const char *sp = strchr(c->str, ' ');
            if (!sp || c->len + 1 > 2 * (size_t)t->max_token_length + 1024) goto bad;
            la = (size_t)(sp - c->str);
            lb = c->len - la - 1;
            sa = tmp;
            memcpy(sa, c->str, la);
            sb2 = tmp + la;
            memcpy(sb2, sp + 1, lb);
        } else if (c->type == LC__JSON_ARRAY && c->count == 2) {
            const lc__json_node *x = lc__json_first(d, c), *y = lc__json_next(d, c, x);
            if (x->type != LC__JSON_STRING || y->type != LC__JSON_STRING ||
                x->len + y->len > 2 * (size_t)t->max_token_length + 1000)
                goto bad;
            la = x->len; lb = y->len;
            sa = tmp; memcpy(sa, x->str, la);
            sb2 = tmp + la; memcpy(sb2, y->str, lb);
        } else goto bad;
        la = lc__tok_unmap(sa, la, t->kind, inv);
        memmove(tmp + la, sb2, lb);
        lb = lc__tok_unmap(tmp + la, lb, t->kind, inv);
        ia = lc_tokenizer_find(t, tmp, la);
        ib = lc_tokenizer_find(t, tmp + la, lb);
        io = lc_tokenizer_find(t, tmp, la + lb);
        if (ia < 0 || ib < 0 || io < 0) {
            lc_error_set(err, LOLCATS_ERR_FORMAT,
                         "%s: merge %d (\"%.*s\" + \"%.*s\") names a piece that is not in "
                         "the vocab",
                         path, rank, (int)la, tmp, (int)lb, tmp + la);
            LOLCATS_FREE(tmp);
            return LOLCATS_ERR_FORMAT;
        }
        key = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib;
        h = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & pv->mmask;
        while (pv->mkey[h] != ~(uint64_t)0 && pv->mkey[h] != key) h = (h + 1) & pv->mmask;
        if (pv->mkey[h] == ~(uint64_t)0) {              // first (best) rank wins
            pv->mkey[h] = key;
            pv->mrank[h] = rank;
            pv->mout[h] = io;
        }
        continue;
    bad:
        LOLCATS_FREE(tmp);
        return lc_error_set(err, LOLCATS_ERR_FORMAT,
                            "%s: merge %d is neither \"left right\" nor [left, right]", path,
                            rank);
    }
    LOLCATS_FREE(tmp);
    pv->n_merges = rank;
    if (!pv->n_merges) pv->n_merges = -1;    // empty merges list: no merges, not llama2.c rule
    return LOLCATS_OK;
}

// A tokenizer.json (BPE model): sizes, pieces, flags, the piece index, which
// ids are control tokens, the merges.
static lc_status lc__tok_hf_parse(lc_tokenizer *t, const lc__json *d, const char *path,
                                  lc_error *err) {
    const lc__json_node *root = lc__json_root(d), *model, *vocab, *merges, *added, *c;
    lc__tok_priv *pv;
    int inv[324], i, V = 0, n_added = 0;
    size_t blob = 0;
    lc_status s;
    model = lc__json_get(d, root, "model");
    if (!model || !lc__json_type_is(d, model, "BPE"))
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED,
                            "%s: model.type is not \"BPE\"; only BPE tokenizers (SentencePiece "
                            "BPE with byte fallback, byte-level BPE) are supported",
                            path);
    vocab = lc__json_get(d, model, "vocab");
    merges = lc__json_get(d, model, "merges");
    added = lc__json_get(d, root, "added_tokens");
    if (!vocab || vocab->type != LC__JSON_OBJECT || !merges || merges->type != LC__JSON_ARRAY)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: model.vocab (object) or model.merges "
                                                     "(array) missing", path);
    if ((s = lc__tok_hf_sizes(d, vocab, added, path, err, &V, &blob, &n_added))) return s;
    t->kind = (lc__json_find_type(d, lc__json_get(d, root, "pre_tokenizer"), "ByteLevel") ||
               lc__json_find_type(d, lc__json_get(d, root, "decoder"), "ByteLevel"))
                  ? LOLCATS_TOK_BYTELEVEL
                  : LOLCATS_TOK_SPM;
    if ((s = lc__tok_alloc(t, V, blob, path, err))) return s;
    pv = (lc__tok_priv *)t->priv;
    t->special = (int *)lc__mcalloc((size_t)n_added + 1, sizeof(int));
    if (!t->special) return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", path);
    for (i = 0; i < 324; i++) inv[i] = -1;
    for (i = 0; i < 256; i++) inv[lc__tok_byte_to_cp(i)] = i;
    lc__tok_hf_pieces(t, d, vocab, added, inv);
    lc__tok_hf_flags(t, d, root, model, vocab);
    if ((s = lc__tok_index(t, path, err))) return s;
    pv->qwen_split = t->kind == LOLCATS_TOK_BYTELEVEL && lc__tok_is_qwen_split(d, lc__json_get(d, root, "pre_tokenizer"));
    for (i = 0; i < t->n_special; i++) pv->control[t->special[i]] = 1;
    // special flag false: decodes as text
    if (added && added->type == LC__JSON_ARRAY)
        for (c = lc__json_first(d, added); c; c = lc__json_next(d, added, c)) {
            const lc__json_node *sp = lc__json_get(d, c, "special");
            if (sp && sp->type == LC__JSON_FALSE) pv->control[lc__json_get(d, c, "id")->i64] = 0;
        }
    return lc__tok_hf_merges(t, d, merges, inv, path, err);
}

LCIMPL lc_status lc_tokenizer_load_hf(lc_tokenizer *t, const char *path, lc_error *err) {
    char *text;
    size_t n;
    lc__json d;
    lc_status s;
    memset(t, 0, sizeof *t);
    if ((s = lc__read_all(path, &text, &n, err))) return s;
    s = lc__json_parse(&d, text, n, path, err);
    LOLCATS_FREE(text);
    if (s) return s;
    s = lc__tok_hf_parse(t, &d, path, err);
    lc__json_free(&d);
    if (s) lc_tokenizer_free(t);
    return s;
}

// Byte-level pre-tokenizer (GPT-2 pattern): 's 't 're 've 'm 'll 'd | ?letters |
// ?digits | ?other | spaces not before a non-space | spaces. Letters are ASCII
// letters and every non-ASCII code point (an approximation of \p{L}).
static int lc__tok_pt_class(const unsigned char *s, size_t n, size_t *used) {
    int c = lc__utf8_dec(s, n, used);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) return 1;   // letter
    if (c >= '0' && c <= '9') return 2;                                              // number
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') return 3;
    return 4;                                                                        // other
}

static size_t lc__tok_pt_next(const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, u;
    int k;
    if (s[0] == '\'' && len >= 2) {
        static const char *sfx[] = {"s", "t", "re", "ve", "m", "ll", "d"};
        for (k = 0; k < 7; k++) {
            size_t l = strlen(sfx[k]);
            if (len >= 1 + l && !memcmp(text + 1, sfx[k], l)) return 1 + l;
        }
    }
    if (s[0] == ' ' && len >= 2) {
        k = lc__tok_pt_class(s + 1, len - 1, &u);
        if (k != 3) i = 1;
    }
    k = lc__tok_pt_class(s + i, len - i, &u);
    if (k != 3) {
        i += u;
        while (i < len) {
            int k2 = lc__tok_pt_class(s + i, len - i, &u);
            if (k2 != k) break;
            i += u;
        }
        return i;
    }
    // whitespace run; leave the last space for a following word
    while (i < len && lc__tok_pt_class(s + i, len - i, &u) == 3) i += u;
    if (i < len && i > 1 && s[i - 1] == ' ') i--;
    return i;
}

// >>tokenizer-qwen
// Qwen2 / Qwen2.5 / Qwen3's pre-tokenizer: a Split with the regex
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*
//   |\s*[\r\n]+|\s+(?!\S)|\s+
// matched by hand on UTF-8, alternatives in order (leftmost-first):
//   1 an apostrophe contraction (ASCII case-insensitive);
//   2 one optional char that is not CR, LF, a letter or a number, then letters;
//   3 ONE number (digits are never grouped); Llama 3's otherwise identical
//     regex has \p{N}{1,3} here: up to three numbers (max_digits 3);
//   4 an optional space, a run of punctuation / symbols, then any CR / LF;
//   5 whitespace up to and including the run's last CR / LF;
//   6 a whitespace run at the end of the text, or all of it but its last char
//     (left to start the next word);  7 a single whitespace char.
// \s is Unicode White_Space. \p{N} covers the decimal digits of the common
// scripts, super/subscripts, fractions, Roman, circled and fullwidth numbers;
// \p{L} is every other code point except known punctuation, symbol, mark,
// emoji and private-use ranges (an approximation of the Unicode tables: exact
// for Latin, Greek, Cyrillic, CJK, kana, Hangul, Arabic and Hebrew letters).
// The text is taken as given: Qwen's NFC normalizer is not applied.
static int lc__tok_u_space(int c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static int lc__tok_u_in(int c, const int *r, int n) {   // r: n (lo, hi) pairs, ascending
    int i;
    for (i = 0; i < n && c >= r[2 * i]; i++)
        if (c <= r[2 * i + 1]) return 1;
    return 0;
}

static int lc__tok_u_number(int c) {
    static const int r[] = {
        0x30, 0x39, 0xB2, 0xB3, 0xB9, 0xB9, 0xBC, 0xBE, 0x660, 0x669, 0x6F0, 0x6F9, 0x7C0, 0x7C9,
        0xE50, 0xE59, 0xED0, 0xED9, 0xF20, 0xF33, 0x1040, 0x1049, 0x1090, 0x1099, 0x1369, 0x137C,
        0x16EE, 0x16F0, 0x17E0, 0x17E9, 0x17F0, 0x17F9, 0x1810, 0x1819, 0x2070, 0x2070, 0x2074, 0x2079,
        0x2080, 0x2089, 0x2150, 0x2182, 0x2185, 0x2189, 0x2460, 0x249B, 0x24EA, 0x24FF, 0x2776, 0x2793,
        0x2CFD, 0x2CFD, 0x3007, 0x3007, 0x3021, 0x3029, 0x3038, 0x303A, 0x3192, 0x3195, 0x3220, 0x3229,
        0x3248, 0x324F, 0x3251, 0x325F, 0x3280, 0x3289, 0x32B1, 0x32BF, 0xFF10, 0xFF19, 0x1D7CE, 0x1D7FF,
        0x1F100, 0x1F10C};
    if (c >= 0x966 && c < 0xE00 && (c & 0x7F) >= 0x66 && (c & 0x7F) <= 0x6F) return 1;   // Indic digits
    return lc__tok_u_in(c, r, (int)(sizeof r / sizeof r[0] / 2));
}

static int lc__tok_u_letter(int c) {
    static const int notl[] = {   // punctuation, symbols, marks, emoji, private use (not letters)
        0x80, 0xA9, 0xAB, 0xB4, 0xB6, 0xB9, 0xBB, 0xBF, 0xD7, 0xD7, 0xF7, 0xF7, 0x2C2, 0x2C5, 0x2D2, 0x2DF,
        0x2E5, 0x2EB, 0x2ED, 0x2ED, 0x2EF, 0x36F, 0x375, 0x375, 0x37E, 0x37E, 0x384, 0x385, 0x387, 0x387,
        0x3F6, 0x3F6, 0x482, 0x489, 0x55A, 0x55F, 0x589, 0x58F, 0x591, 0x5CF, 0x5F3, 0x5FF, 0x600, 0x61F,
        0x64B, 0x65F, 0x66A, 0x66D, 0x670, 0x670, 0x6D4, 0x6D4, 0x6D6, 0x6E4, 0x6E7, 0x6ED, 0x6FD, 0x6FE,
        0xE31, 0xE31, 0xE34, 0xE3F, 0xE47, 0xE4F, 0xE5A, 0xE5B, 0x2000, 0x206F, 0x20A0, 0x20FF,
        0x2100, 0x2101, 0x2103, 0x2106, 0x2108, 0x2109, 0x2114, 0x2114, 0x2116, 0x2118, 0x211E, 0x2123,
        0x2125, 0x2125, 0x2127, 0x2127, 0x2129, 0x2129, 0x212E, 0x212E, 0x213A, 0x213B, 0x2140, 0x2144,
        0x214A, 0x214D, 0x214F, 0x214F, 0x2190, 0x2BFF, 0x2CE5, 0x2CEA, 0x2CEF, 0x2CFF, 0x2E00, 0x2E7F,
        0x2E80, 0x2FFF, 0x3001, 0x3004, 0x3008, 0x3020, 0x302A, 0x3030, 0x3036, 0x3037, 0x303D, 0x303F,
        0x3099, 0x309C, 0x30A0, 0x30A0, 0x30FB, 0x30FB, 0x3190, 0x3191, 0x3196, 0x319F, 0x31C0, 0x31EF,
        0x3200, 0x33FF, 0x4DC0, 0x4DFF, 0xA490, 0xA4CF, 0xD800, 0xF8FF, 0xFB29, 0xFB29, 0xFD3E, 0xFD3F,
        0xFDFC, 0xFDFF, 0xFE00, 0xFE6F, 0xFEFF, 0xFEFF, 0xFF01, 0xFF20, 0xFF3B, 0xFF40, 0xFF5B, 0xFF65,
        0xFFE0, 0xFFFF, 0x1D000, 0x1D24F, 0x1D300, 0x1D35F, 0x1F000, 0x1FBFF, 0xE0000, 0x10FFFF};
    if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (lc__tok_u_space(c) || lc__tok_u_number(c)) return 0;
    if (c >= 0x900 && c < 0xE00) {   // Indic blocks share a layout: signs and vowel marks
        int o = c & 0x7F;
        if (o <= 0x03 || (o >= 0x3A && o <= 0x3C) || (o >= 0x3E && o <= 0x4F) || (o >= 0x51 && o <= 0x57) ||
            (o >= 0x62 && o <= 0x65) || o == 0x70)
            return 0;
    }
    return !lc__tok_u_in(c, notl, (int)(sizeof notl / sizeof notl[0] / 2));
}

// class of the char at s: 'L' letter, 'N' number, 'R' CR/LF, 'S' other whitespace, 'O' anything else
static int lc__tok_qcls(const unsigned char *s, size_t n, size_t *used) {
    int c = lc__utf8_dec(s, n, used);
    if (c == '\r' || c == '\n') return 'R';
    if (lc__tok_u_space(c)) return 'S';
    if (lc__tok_u_number(c)) return 'N';
    if (lc__tok_u_letter(c)) return 'L';
    return 'O';
}

static size_t lc__tok_pt_next_qwen(const char *text, size_t len, int max_digits) {
    const unsigned char *s = (const unsigned char *)text;
    size_t u0, u, j, last_r = 0, e;
    int c0 = lc__tok_qcls(s, len, &u0), k, has_r = 0;
    if (s[0] == '\'' && len >= 2) {   // 1
        static const char *sfx[] = {"s", "t", "re", "ve", "m", "ll", "d"};
        for (k = 0; k < 7; k++) {
            size_t l = strlen(sfx[k]), q;
            int same = len >= 1 + l;
            for (q = 0; same && q < l; q++) same = (s[1 + q] | 0x20) == (unsigned char)sfx[k][q];
            if (same) return 1 + l;
        }
    }
    j = c0 != 'L' && c0 != 'N' && c0 != 'R' ? u0 : 0;   // 2
    if (c0 == 'L' || (j < len && lc__tok_qcls(s + j, len - j, &u) == 'L')) {
        while (j < len && lc__tok_qcls(s + j, len - j, &u) == 'L') j += u;
        return j;
    }
    if (c0 == 'N') {   // 3
        for (j = u0, k = 1; k < max_digits && j < len && lc__tok_qcls(s + j, len - j, &u) == 'N'; k++) j += u;
        return j;
    }
    j = s[0] == ' ' ? 1 : 0;   // 4
    if (j < len && lc__tok_qcls(s + j, len - j, &u) == 'O') {
        while (j < len && lc__tok_qcls(s + j, len - j, &u) == 'O') j += u;
        while (j < len && (s[j] == '\r' || s[j] == '\n')) j++;
        return j;
    }
    if (c0 != 'R' && c0 != 'S') return u0;   // (not reached: every class is handled above)
    for (e = 0; e < len;) {   // the whitespace run [0, e)
        k = lc__tok_qcls(s + e, len - e, &u);
        if (k != 'R' && k != 'S') break;
        if (k == 'R') { has_r = 1; last_r = e; }
        e += u;
    }
    if (has_r) return last_r + 1;   // 5
    if (e == len || e == u0) return e;   // 6 at the end / 7: a single char
    for (j = 0; j < e; j += u) {   // 6: all but the last char
        lc__tok_qcls(s + j, len - j, &u);
        if (j + u == e) return j;
    }
    return e;
}

// Whether pre_tokenizer is (or holds) a Split on exactly Qwen's regex (1) or
// Llama 3's, the same with \p{N}{1,3} (3); 0 otherwise.
static int lc__tok_is_qwen_split(const lc__json *d, const lc__json_node *pre) {
    static const char head[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|";
    static const char tail[] = "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    const lc__json_node *sp = lc__json_find_type(d, pre, "Split"), *pat = sp ? lc__json_get(d, sp, "pattern") : NULL;
    const lc__json_node *re = pat ? lc__json_get(d, pat, "Regex") : NULL;
    const char *r, *mid;
    size_t hn = sizeof head - 1, tn = sizeof tail - 1, n;
    if (!re || re->type != LC__JSON_STRING) return 0;
    r = re->str;
    n = strlen(r);
    if (n < hn + tn || memcmp(r, head, hn) || strcmp(r + n - tn, tail)) return 0;
    mid = r + hn;
    if (n - hn - tn == 5 && !memcmp(mid, "\\p{N}", 5)) return 1;
    if (n - hn - tn == 10 && !memcmp(mid, "\\p{N}{1,3}", 10)) return 3;
    return 0;
}

static lc_status lc__tok_segment(const lc_tokenizer *t, const char *s, size_t len, int *ids,
                                 size_t cap, size_t *n, lc_error *err) {
    size_t i = 0;
    lc_status st;
    if (t->kind != LOLCATS_TOK_BYTELEVEL) {   // long texts: newline-ended chunks of 64 KiB or more
        const lc__tok_priv *pv = (const lc__tok_priv *)t->priv;
        const size_t chunk = (size_t)1 << 16;
        while (pv->nl_split && len - i > chunk) {
            const char *nl = (const char *)memchr(s + i + chunk, '\n', len - i - chunk);
            size_t w;
            if (!nl) break;
            w = (size_t)(nl - (s + i)) + 1;
            if ((st = lc__tok_bpe(t, s + i, w, i == 0 ? t->add_prefix_space : 0, ids, cap, n, err))) return st;
            i += w;
        }
        return lc__tok_bpe(t, s + i, len - i, i == 0 ? t->add_prefix_space : 0, ids, cap, n, err);
    }
    while (i < len) {
        int split = ((const lc__tok_priv *)t->priv)->qwen_split;
        size_t w = split ? lc__tok_pt_next_qwen(s + i, len - i, split) : lc__tok_pt_next(s + i, len - i);
        if ((st = lc__tok_bpe(t, s + i, w, 0, ids, cap, n, err))) return st;
        i += w;
    }
    return LOLCATS_OK;
}

// >>tokenizer-gguf
// A GGUF file's own tokenizer: tokenizer.ggml.model "llama" (SentencePiece
// BPE: tokens with U+2581 for spaces, scores as merge priorities, token types,
// <0xXX> byte pieces) read as lc_tokenizer_load_llama2c reads tokenizer.bin.
// "gpt2" (byte-level BPE with merges): lc__tok_load_gguf_bpe.
// tokenizer.ggml.model "gpt2" (byte-level BPE): the tokens, merges and token
// types are written out as the tokenizer.json they came from and read by
// lc__tok_hf_parse, so both give the same tokenizer. Control (3) and
// user-defined (4) tokens become added tokens (special: true / false).
// tokenizer.ggml.pre "qwen2" selects Qwen's Split regex, "llama-bpe" Llama 3's
// (the same with digit runs of up to 3); "gpt-2", "default" or none the GPT-2
// byte-level rule; any other name is refused.
static void lc__gguf_json_str(lc__buf *o, const char *p, size_t n) {
    size_t i;
    lc__buf_put(o, "\"", 1);
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        char esc[8];
        if (ch == '"' || ch == '\\') { esc[0] = '\\'; esc[1] = (char)ch; lc__buf_put(o, esc, 2); }
        else if (ch < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", ch); lc__buf_put(o, esc, 6); }
        else lc__buf_put(o, p + i, 1);
    }
    lc__buf_put(o, "\"", 1);
}

static lc_status lc__tok_load_gguf_bpe(lc_tokenizer *t, const lc_gguf_file *f, const lc_gguf_kv *toks,
                                      const lc_gguf_kv *types, const char *path, lc_error *err) {
    const lc_gguf_kv *merges = lc_gguf_find_kv(f, "tokenizer.ggml.merges");
    const char *pre = "default", *p;
    lc__buf o = {0, 0, 0, 0};
    char num[64];
    lc__json d;
    lc_status s;
    uint64_t i;
    size_t len;
    int64_t v, ty;
    int first;
    if (lc_gguf_find_kv(f, "tokenizer.ggml.pre") && (s = lc_gguf_get_str(f, "tokenizer.ggml.pre", &pre, err))) return s;
    if (strcmp(pre, "qwen2") && strcmp(pre, "llama-bpe") && strcmp(pre, "gpt-2") && strcmp(pre, "default"))
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "%s: tokenizer.ggml.pre is \"%s\"; lolcats reads GGUF "
                            "byte-level tokenizers with the pre-tokenizer \"qwen2\", \"llama-bpe\", \"gpt-2\" or \"default\": "
                            "pass --tokenizer tokenizer.json", path, pre);
    if (!merges || merges->type != LOLCATS_GGUF_ARRAY || merges->elem_type != LOLCATS_GGUF_STRING)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tokenizer.ggml.merges is %s, expected an array of strings "
                            "\"left right\"", path, merges ? lc_gguf_type_name(merges->type) : "missing");
    lc__buf_str(&o, "{\"model\": {\"type\": \"BPE\", \"vocab\": {");
    for (first = 1, i = 0; i < toks->n; i++) {
        ty = types ? lc_gguf_arr_int(types, i) : 1;
        if (ty == 3 || ty == 4) continue;
        p = lc_gguf_arr_str(toks, i, &len);
        if (!first) lc__buf_put(&o, ",", 1);
        first = 0;
        lc__gguf_json_str(&o, p, len);
        snprintf(num, sizeof num, ": %lu", (unsigned long)i);
        lc__buf_str(&o, num);
    }
    lc__buf_str(&o, "}, \"merges\": [");
    for (i = 0; i < merges->n; i++) {
        p = lc_gguf_arr_str(merges, i, &len);
        if (i) lc__buf_put(&o, ",", 1);
        lc__gguf_json_str(&o, p, len);
    }
    lc__buf_str(&o, "]}, \"added_tokens\": [");
    for (first = 1, i = 0; types && i < toks->n; i++) {
        ty = lc_gguf_arr_int(types, i);
        if (ty != 3 && ty != 4) continue;
        p = lc_gguf_arr_str(toks, i, &len);
        snprintf(num, sizeof num, "%s{\"id\": %lu, \"content\": ", first ? "" : ",", (unsigned long)i);
        lc__buf_str(&o, num);
        first = 0;
        lc__gguf_json_str(&o, p, len);
        lc__buf_str(&o, ty == 3 ? ", \"special\": true}" : ", \"special\": false}");
    }
    lc__buf_str(&o, "], \"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"decoder\": {\"type\": \"ByteLevel\"}}");
    if (o.oom) { LOLCATS_FREE(o.p); return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", path); }
    s = lc__json_parse(&d, o.p, o.n, path, err);
    LOLCATS_FREE(o.p);
    if (s) return s;
    s = lc__tok_hf_parse(t, &d, path, err);
    lc__json_free(&d);
    if (s) return s;
    ((lc__tok_priv *)t->priv)->qwen_split = !strcmp(pre, "qwen2") ? 1 : !strcmp(pre, "llama-bpe") ? 3 : 0;
    t->add_bos = 0;
    if (lc_gguf_find_kv(f, "tokenizer.ggml.bos_token_id") && !lc_gguf_get_int(f, "tokenizer.ggml.bos_token_id", &v, err)) t->bos_id = (int)v;
    if (lc_gguf_find_kv(f, "tokenizer.ggml.eos_token_id") && !lc_gguf_get_int(f, "tokenizer.ggml.eos_token_id", &v, err)) t->eos_id = (int)v;
    if (lc_gguf_find_kv(f, "tokenizer.ggml.add_bos_token") && !lc_gguf_get_int(f, "tokenizer.ggml.add_bos_token", &v, err)) t->add_bos = v != 0 && t->bos_id >= 0;
    if (t->bos_id >= t->vocab_size || t->eos_id >= t->vocab_size)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tokenizer.ggml.bos/eos_token_id %d / %d is not below the "
                            "%d tokens", path, t->bos_id, t->eos_id, t->vocab_size);
    return LOLCATS_OK;
}

LCIMPL lc_status lc_tokenizer_load_gguf(lc_tokenizer *t, const char *path, lc_error *err) {
    lc_gguf_file *f = NULL;
    const lc_gguf_kv *toks, *scores, *types;
    const char *model = NULL;
    lc_status s;
    size_t blob = 0, len, k;
    int V, i;
    int64_t v;
    memset(t, 0, sizeof *t);
    if ((s = lc_gguf_open(&f, path, err))) return s;
    if (!lc_gguf_find_kv(f, "tokenizer.ggml.model")) {
        s = lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: no tokenizer in the file (tokenizer.ggml.model is missing): "
                         "pass --tokenizer tokenizer.json", path);
        goto done;
    }
    if ((s = lc_gguf_get_str(f, "tokenizer.ggml.model", &model, err))) goto done;
    if (strcmp(model, "llama") && strcmp(model, "gpt2")) {
        s = lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model is \"%s\"; lolcats reads GGUF "
                         "tokenizers of the \"llama\" (SentencePiece) and \"gpt2\" (byte-level BPE) kinds: pass "
                         "--tokenizer tokenizer.json", path, model);
        goto done;
    }
    toks = lc_gguf_find_kv(f, "tokenizer.ggml.tokens");
    scores = lc_gguf_find_kv(f, "tokenizer.ggml.scores");
    types = lc_gguf_find_kv(f, "tokenizer.ggml.token_type");
    if (!toks || toks->type != LOLCATS_GGUF_ARRAY || toks->elem_type != LOLCATS_GGUF_STRING || toks->n == 0 ||
        toks->n > (1u << 24)) {
        s = lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tokenizer.ggml.tokens is %s, expected a non-empty array of "
                         "strings", path, toks ? lc_gguf_type_name(toks->type == LOLCATS_GGUF_ARRAY ? toks->elem_type : toks->type) : "missing");
        goto done;
    }
    V = (int)toks->n;
    if ((scores && (scores->type != LOLCATS_GGUF_ARRAY || scores->n != toks->n || scores->elem_type != LOLCATS_GGUF_F32)) ||
        (types && (types->type != LOLCATS_GGUF_ARRAY || types->n != toks->n || types->elem_type != LOLCATS_GGUF_I32))) {
        s = lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tokenizer.ggml.%s must be an array of %d %s", path,
                         scores && (scores->type != LOLCATS_GGUF_ARRAY || scores->n != toks->n || scores->elem_type != LOLCATS_GGUF_F32)
                         ? "scores" : "token_type", V, scores && scores->elem_type != LOLCATS_GGUF_F32 ? "f32" : "i32");
        goto done;
    }
    if (!strcmp(model, "gpt2")) { s = lc__tok_load_gguf_bpe(t, f, toks, types, path, err); goto done; }
    for (i = 0; i < V; i++) { (void)lc_gguf_arr_str(toks, (uint64_t)i, &len); blob += len + 1; }
    t->kind = LOLCATS_TOK_SPM;
    if ((s = lc__tok_alloc(t, V, blob, path, err))) goto done;
    {
        char *b = ((lc__tok_priv *)t->priv)->blob;
        for (i = 0; i < V; i++) {
            const char *p = lc_gguf_arr_str(toks, (uint64_t)i, &len);
            int n = 0;
            t->pieces[i] = b;
            for (k = 0; k < len; k++) {   // U+2581 (e2 96 81) -> ' ', as llama2.c stores pieces
                if (k + 2 < len && (unsigned char)p[k] == 0xE2 && (unsigned char)p[k + 1] == 0x96 &&
                    (unsigned char)p[k + 2] == 0x81) { b[n++] = ' '; k += 2; }
                else b[n++] = p[k];
            }
            b[n] = 0;
            t->lens[i] = n;
            b += n + 1;
            t->scores[i] = scores ? (float)lc_gguf_arr_float(scores, (uint64_t)i) : 0.0f;
        }
    }
    t->bos_id = 1; t->eos_id = 2; t->unk_id = 0;
    t->add_bos = 1; t->add_prefix_space = 1; t->byte_fallback = 1;
    if (lc_gguf_find_kv(f, "tokenizer.ggml.bos_token_id") && !lc_gguf_get_int(f, "tokenizer.ggml.bos_token_id", &v, err)) t->bos_id = (int)v;
    if (lc_gguf_find_kv(f, "tokenizer.ggml.eos_token_id") && !lc_gguf_get_int(f, "tokenizer.ggml.eos_token_id", &v, err)) t->eos_id = (int)v;
    if (lc_gguf_find_kv(f, "tokenizer.ggml.unknown_token_id") && !lc_gguf_get_int(f, "tokenizer.ggml.unknown_token_id", &v, err)) t->unk_id = (int)v;
    if (lc_gguf_find_kv(f, "tokenizer.ggml.add_bos_token") && !lc_gguf_get_int(f, "tokenizer.ggml.add_bos_token", &v, err)) t->add_bos = v != 0;
    if (lc_gguf_find_kv(f, "tokenizer.ggml.add_space_prefix") && !lc_gguf_get_int(f, "tokenizer.ggml.add_space_prefix", &v, err)) t->add_prefix_space = v != 0;
    if ((s = lc__tok_index(t, path, err))) goto done;
    if (types)   // control tokens (type 3) decode to nothing, as BOS / EOS do
        for (i = 0; i < V; i++)
            if (lc_gguf_arr_int(types, (uint64_t)i) == 3) ((lc__tok_priv *)t->priv)->control[i] = 1;
    if (t->unk_id >= 0) ((lc__tok_priv *)t->priv)->control[t->unk_id] = 0;
done:
    if (s) lc_tokenizer_free(t);
    lc_gguf_close(f);
    return s;
}

// >>sample
LCIMPL int lc_argmax(const float *x, int n) {
    int i, b = 0;
    for (i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

typedef struct lc__prob_idx { float p; int i; } lc__prob_idx;

LCIMPL lc_status lc_sampler_init(lc_sampler *s, int vocab_size, float temperature,
                                 float top_p, uint64_t seed, lc_error *err) {
    memset(s, 0, sizeof *s);
    if (vocab_size <= 0 || !(temperature >= 0.0f))
        return lc_error_set(err, LOLCATS_ERR_ARG, "sampler: vocab %d, temperature %g (must be >= 0)",
                        vocab_size, (double)temperature);
    s->vocab_size = vocab_size; s->temperature = temperature; s->top_p = top_p;
    s->state = seed ? seed : 0x9E3779B97F4A7C15ull;
    s->probs = (float *)lc__mcalloc((size_t)vocab_size, sizeof(float));
    s->order = lc__mcalloc((size_t)vocab_size, sizeof(lc__prob_idx));
    if (!s->probs || !s->order) {
        lc_sampler_free(s);
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "sampler: out of memory");
    }
    return LOLCATS_OK;
}

LCIMPL void lc_sampler_free(lc_sampler *s) {
    if (!s) return;
    LOLCATS_FREE(s->probs);
    LOLCATS_FREE(s->order);
    s->probs = NULL; s->order = NULL;
}

static float lc__sampler_coin(lc_sampler *s) {          // xorshift64*, [0,1)
    s->state ^= s->state >> 12;
    s->state ^= s->state << 25;
    s->state ^= s->state >> 27;
    return (float)((s->state * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

static int lc__prob_desc(const void *a, const void *b) {
    const lc__prob_idx *x = (const lc__prob_idx *)a, *y = (const lc__prob_idx *)b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->i - y->i;
}

LCIMPL int lc_sampler_sample(lc_sampler *s, const float *logits) {
    int V = s->vocab_size, i, n = 0;
    float mx, coin, cdf = 0.0f;
    double sum = 0;
    lc__prob_idx *o = (lc__prob_idx *)s->order;
    if (s->temperature == 0.0f) return lc_argmax(logits, V);
    mx = logits[lc_argmax(logits, V)];
    for (i = 0; i < V; i++) {
        s->probs[i] = expf((logits[i] - mx) / s->temperature);
        sum += (double)s->probs[i];
    }
    for (i = 0; i < V; i++) s->probs[i] = (float)((double)s->probs[i] / sum);
    coin = lc__sampler_coin(s);
    if (!(s->top_p > 0.0f && s->top_p < 1.0f)) {
        for (i = 0; i < V; i++) {
            cdf += s->probs[i];
            if (coin < cdf) return i;
        }
        return V - 1;
    } else {
        // nucleus: the smallest set of most likely tokens whose mass exceeds top_p
        float cutoff = (1.0f - s->top_p) / (float)(V > 1 ? V - 1 : 1), mass = 0.0f;
        int last;
        for (i = 0; i < V; i++)
            if (s->probs[i] >= cutoff) { o[n].p = s->probs[i]; o[n].i = i; n++; }
        if (n == 0) return lc_argmax(logits, V);
        qsort(o, (size_t)n, sizeof *o, lc__prob_desc);
        last = n - 1;
        for (i = 0; i < n; i++) {
            mass += o[i].p;
            if (mass > s->top_p) { last = i; break; }
        }
        coin *= mass;
        for (i = 0; i <= last; i++) {
            cdf += o[i].p;
            if (coin < cdf) return o[i].i;
        }
        return o[last].i;
    }
}

// >>lolcats-io
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const lc__lora_tg_name[4] = {"q", "k", "v", "o"};

// Tensor names of section 10. kind: 0 fmap q, 1 fmap k, 2 window factors,
// 3 LoRA A, 4 LoRA B (tg: target), 5 fmap q bias, 6 fmap k bias (T2R),
// 7 gate weight w_g (H,dim), 8 gate bias b_g (H) (the gated linear state).
static void lc__ckpt_name(char *buf, size_t cap, int l, int kind, int tg) {
    if (kind == 0) snprintf(buf, cap, "model.layers.%d.self_attn.feature_map_q.mlp.layer", l);
    else if (kind == 1) snprintf(buf, cap, "model.layers.%d.self_attn.feature_map_k.mlp.layer", l);
    else if (kind == 2) snprintf(buf, cap, "model.layers.%d.self_attn.window_factors", l);
    else if (kind == 5) snprintf(buf, cap, "model.layers.%d.self_attn.feature_map_q.mlp.bias", l);
    else if (kind == 6) snprintf(buf, cap, "model.layers.%d.self_attn.feature_map_k.mlp.bias", l);
    else if (kind == 7) snprintf(buf, cap, "model.layers.%d.self_attn.gate_proj_lolcats.weight", l);  // >>gate
    else if (kind == 8) snprintf(buf, cap, "model.layers.%d.self_attn.gate_proj_lolcats.bias", l);
    else
        snprintf(buf, cap, "base_model.model.model.layers.%d.self_attn.%s_proj.lora_%s.default.weight", l,
                 lc__lora_tg_name[tg], kind == 3 ? "A" : "B");
}

static int lc__lp_lora_in(const lc_lolcats *lp, int tg) {
    return tg == LOLCATS_LORA_O ? lp->n_heads * lp->head_dim : lp->dim;
}

static int lc__lp_lora_out(const lc_lolcats *lp, int tg) {
    return tg == LOLCATS_LORA_Q ? lp->n_heads * lp->head_dim
           : tg == LOLCATS_LORA_O ? lp->dim : lp->n_kv_heads * lp->head_dim;
}

// Row j of a rotate_half head vector is row src of the interleaved one.
static int lc__rope_src_row(int j, int D) { return j < D / 2 ? 2 * j : 2 * (j - D / 2) + 1; }

// The checkpoint's tensors as a list of views (permute: feature-map rows from
// interleaved to rotate_half order, into owned copies).
typedef struct lc__ckpt_list {
    lc_tensor *ts;
    char *names;                  // 128 bytes per tensor
    float *perm;                  // permuted feature maps, or NULL
    int n;
} lc__ckpt_list;

static void lc__ckpt_list_free(lc__ckpt_list *cl) {
    LOLCATS_FREE(cl->ts);
    LOLCATS_FREE(cl->names);
    LOLCATS_FREE(cl->perm);
    memset(cl, 0, sizeof *cl);
}

static void lc__tensor_f32(lc_tensor *t, const char *name, const float *data, int ndim, const int64_t *shape) {
    int i;
    memset(t, 0, sizeof *t);
    t->name = name;
    t->dtype = LOLCATS_DTYPE_F32;
    t->ndim = ndim;
    t->nbytes = sizeof(float);
    for (i = 0; i < ndim; i++) { t->shape[i] = shape[i]; t->nbytes *= (size_t)shape[i]; }
    t->data = data;
}

static lc_status lc__ckpt_build(lc__ckpt_list *cl, const lc_lolcats *lp, int with_lora, int permute,
                                lc_error *err) {
    int L = lp->n_layers, H = lp->n_heads, D = lp->head_dim, f = lp->feature_dim, l, tg, cap;
    size_t per = (size_t)H * D * f;
    memset(cl, 0, sizeof *cl);
    if (L <= 0 || H <= 0 || D <= 0 || f <= 0 || !lp->fmap_q || !lp->fmap_k || !lp->wf)
        return lc_error_set(err, LOLCATS_ERR_ARG, "checkpoint: incomplete LoLCATs parameters (layers %d, heads %d, "
                            "head dim %d, feature dim %d)", L, H, D, f);
    if (lp->gate_w && (!lp->gate_b || lp->dim <= 0))
        return lc_error_set(err, LOLCATS_ERR_ARG, "checkpoint: gate weights without their bias or model dim (%d)",
                            lp->dim);
    cap = 5 * L + 8 * L + 2 * L;
    cl->ts = (lc_tensor *)lc__mcalloc((size_t)cap, sizeof(lc_tensor));
    cl->names = (char *)lc__mcalloc((size_t)cap, 128);
    if (permute) cl->perm = (float *)lc__mcalloc(2 * per * (size_t)L, sizeof(float));
    if (!cl->ts || !cl->names || (permute && !cl->perm)) {
        lc__ckpt_list_free(cl);
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "checkpoint: out of memory");
    }
    if (permute) {
        int qk, h, j;
        for (qk = 0; qk < 2; qk++)
            for (l = 0; l < L; l++)
                for (h = 0; h < H; h++)
                    for (j = 0; j < D; j++)
                        memcpy(cl->perm + (size_t)qk * L * per + (size_t)l * per + ((size_t)h * D + j) * f,
                               (qk ? lp->fmap_k : lp->fmap_q) + (size_t)l * per +
                                   ((size_t)h * D + lc__rope_src_row(j, D)) * f,
                               sizeof(float) * (size_t)f);
    }
    for (l = 0; l < L; l++) {
        int64_t sf[3], sw[4];
        int kind;
        sf[0] = H; sf[1] = D; sf[2] = f;
        sw[0] = 1; sw[1] = H; sw[2] = 1; sw[3] = 1;
        for (kind = 0; kind < 3; kind++) {
            char *nm = cl->names + 128 * (size_t)cl->n;
            const float *src = kind == 2 ? lp->wf + (size_t)l * H
                               : permute ? cl->perm + (size_t)kind * L * per + (size_t)l * per
                               : (kind ? lp->fmap_k : lp->fmap_q) + (size_t)l * per;
            lc__ckpt_name(nm, 128, l, kind, 0);
            lc__tensor_f32(&cl->ts[cl->n++], nm, src, kind == 2 ? 4 : 3, kind == 2 ? sw : sf);
        }
        for (kind = 5; kind < 7 && lp->fbq && lp->fbk; kind++) {
            char *nm = cl->names + 128 * (size_t)cl->n;
            lc__ckpt_name(nm, 128, l, kind, 0);
            lc__tensor_f32(&cl->ts[cl->n++], nm, (kind == 5 ? lp->fbq : lp->fbk) + (size_t)l * H, 4, sw);
        }
        for (kind = 7; kind < 9 && lp->gate_w; kind++) {   // >>gate: w_g (H,dim), b_g (H)
            char *nm = cl->names + 128 * (size_t)cl->n;
            int64_t sg[2];
            sg[0] = H; sg[1] = lp->dim;
            lc__ckpt_name(nm, 128, l, kind, 0);
            lc__tensor_f32(&cl->ts[cl->n++], nm, kind == 7 ? lp->gate_w + (size_t)l * H * lp->dim
                                                           : lp->gate_b + (size_t)l * H, kind == 7 ? 2 : 1, sg);
        }
    }
    if (with_lora && lp->lora_rank > 0 && lp->lora_a && lp->lora_b)
        for (l = 0; l < L; l++)
            for (tg = 0; tg < 4; tg++) {
                int64_t sa[2], sb[2];
                char *nm;
                if (!lp->lora_a[l][tg] || !lp->lora_b[l][tg]) continue;
                sa[0] = lp->lora_rank; sa[1] = lc__lp_lora_in(lp, tg);
                sb[0] = lc__lp_lora_out(lp, tg); sb[1] = lp->lora_rank;
                nm = cl->names + 128 * (size_t)cl->n;
                lc__ckpt_name(nm, 128, l, 3, tg);
                lc__tensor_f32(&cl->ts[cl->n++], nm, lp->lora_a[l][tg], 2, sa);
                nm = cl->names + 128 * (size_t)cl->n;
                lc__ckpt_name(nm, 128, l, 4, tg);
                lc__tensor_f32(&cl->ts[cl->n++], nm, lp->lora_b[l][tg], 2, sb);
            }
    return LOLCATS_OK;
}

LCIMPL lc_status lc_softmax_layers_parse(unsigned char *out, const char *list, int n_layers, lc_error *err) {
    const char *p = list;
    memset(out, 0, (size_t)(n_layers > 0 ? n_layers : 0));
    if (!list || !*list || !strcmp(list, "none")) return LOLCATS_OK;
    for (;;) {
        char *end;
        long v;
        if (*p < '0' || *p > '9')
            return lc_error_set(err, LOLCATS_ERR_ARG, "softmax layers '%s': '%s' is not a layer index "
                                "(give comma-separated integers, e.g. 7,15)", list, p);
        v = strtol(p, &end, 10);
        if (*end != ',' && *end != '\0')
            return lc_error_set(err, LOLCATS_ERR_ARG, "softmax layers '%s': '%s' is not a layer index "
                                "(give comma-separated integers, e.g. 7,15)", list, p);
        if (v < 0 || v >= n_layers)
            return lc_error_set(err, LOLCATS_ERR_ARG, "softmax layers '%s': layer %ld is outside the "
                                "model's 0..%d", list, v, n_layers - 1);
        if (out[v])
            return lc_error_set(err, LOLCATS_ERR_ARG, "softmax layers '%s': layer %ld is given twice", list, v);
        out[v] = 1;
        if (!*end) return LOLCATS_OK;
        p = end + 1;
    }
}

LCIMPL int lc_softmax_layers_format(char *buf, size_t cap, const unsigned char *sl, int n_layers) {
    size_t at = 0;
    int l, n = 0;
    if (cap) buf[0] = '\0';
    for (l = 0; sl && l < n_layers; l++) {
        char item[16];
        size_t k;
        if (!sl[l]) continue;
        k = (size_t)snprintf(item, sizeof item, n ? ",%d" : "%d", l);
        if (at + k < cap) { memcpy(buf + at, item, k + 1); at += k; }
        n++;
    }
    if (!n && cap) snprintf(buf, cap, "none");
    return n;
}

LCIMPL void lc_softmax_layers_top(unsigned char *out, const double *score, int n_layers, int k) {
    int i, l;
    memset(out, 0, (size_t)(n_layers > 0 ? n_layers : 0));
    for (i = 0; i < k && i < n_layers; i++) {
        int best = -1;
        for (l = 0; l < n_layers; l++) {
            if (out[l]) continue;
            if (best < 0 || (score[l] != score[l] && score[best] == score[best]) || score[l] > score[best])
                best = l;
        }
        out[best] = 1;
    }
}

// The "softmax_layers" metadata pair appended to kv[2n..] when lp keeps any:
// the value in *val (caller frees); returns the new pair count.
static int lc__ckpt_meta_softmax(const lc_lolcats *lp, const char **kv, int n, char **val) {
    size_t cap = 8 * (size_t)(lp->n_layers > 0 ? lp->n_layers : 1);
    *val = NULL;
    if (!lp->softmax_layers || !(*val = (char *)LOLCATS_MALLOC(cap))) return n;
    if (!lc_softmax_layers_format(*val, cap, lp->softmax_layers, lp->n_layers)) return n;
    kv[2 * n] = "softmax_layers";
    kv[2 * n + 1] = *val;
    return n + 1;
}

#define LC__CKPT_NMETA 18
// The checkpoint's own metadata pairs into kv (2 * LC__CKPT_NMETA entries),
// values formatted into vals; returns the number of pairs.
static int lc__ckpt_meta(const lc_lolcats *lp, const char **kv, char (*vals)[48], int rope_interleaved,
                         int lora_rank) {
    int n = 0;
#define LC__META(key, ...) do { snprintf(vals[n], 48, __VA_ARGS__); kv[2 * n] = key; kv[2 * n + 1] = vals[n]; n++; } while (0)
    LC__META("lolcats_format", "%s", LOLCATS_CKPT_FORMAT);
    LC__META("variant", "%s", lp->hybrid.variant == LOLCATS_WINDOW_SW ? "sw" : "tk");
    LC__META("window", "%d", lp->hybrid.window);
    LC__META("feature_map", "%s", lc_fmap_act_name(lp->fmap.act));
    LC__META("feature_dim", "%d", lp->feature_dim);
    LC__META("halfspace", "%d", lp->fmap.halfspace);
    LC__META("eps", "%.9g", (double)lp->fmap.eps);
    LC__META("affine", "%d", lp->hybrid.affine);
    if (lp->hybrid.sinks > 0) LC__META("sinks", "%d", lp->hybrid.sinks);  // absent: 0
    if (lp->gate_w) LC__META("gate", "1");   // >>gate: absent: ungated
    LC__META("lora_rank", "%d", lora_rank);
    LC__META("lora_alpha", "%.9g", (double)lp->lora_alpha);
    LC__META("n_layers", "%d", lp->n_layers);
    LC__META("n_heads", "%d", lp->n_heads);
    LC__META("n_kv_heads", "%d", lp->n_kv_heads);
    LC__META("head_dim", "%d", lp->head_dim);
    LC__META("dim", "%d", lp->dim);
    LC__META("rope", "%s", rope_interleaved ? "interleaved" : "rotate_half");
#undef LC__META
    return n;
}

// Joins the checkpoint's pairs and the caller's extras (an extra with the same
// key as a checkpoint field is refused: it would make the file ambiguous).
static lc_status lc__meta_join(const char ***out, const char **kv, int n, const char *const *meta, int n_meta,
                               const char *path, lc_error *err) {
    const char **all;
    int i, j;
    if (n_meta < 0 || (n_meta > 0 && !meta)) return lc_error_set(err, LOLCATS_ERR_ARG, "%s: bad metadata list", path);
    all = (const char **)lc__mcalloc((size_t)(2 * (n + n_meta)), sizeof(char *));
    if (!all) return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", path);
    memcpy(all, kv, sizeof(char *) * 2 * (size_t)n);
    for (i = 0; i < n_meta; i++) {
        for (j = 0; j < n; j++)
            if (!strcmp(meta[2 * i], kv[2 * j])) {
                LOLCATS_FREE(all);
                return lc_error_set(err, LOLCATS_ERR_ARG, "%s: extra metadata key '%s' is a checkpoint field",
                                    path, meta[2 * i]);
            }
        all[2 * (n + i)] = meta[2 * i];
        all[2 * (n + i) + 1] = meta[2 * i + 1];
    }
    *out = all;
    return LOLCATS_OK;
}

LCIMPL lc_status lc_lolcats_save(const lc_lolcats *lp, const char *path, const char *const *meta, int n_meta,
                                 lc_error *err) {
    lc__ckpt_list cl;
    const char *kv[2 * LC__CKPT_NMETA + 2], **all = NULL;
    char vals[LC__CKPT_NMETA][48], *slv;
    int n;
    lc_status s;
    if ((s = lc__ckpt_build(&cl, lp, 1, 0, err))) return s;
    n = lc__ckpt_meta(lp, kv, vals, lp->rope_interleaved, lp->lora_rank);
    n = lc__ckpt_meta_softmax(lp, kv, n, &slv);
    if (!(s = lc__meta_join(&all, kv, n, meta, n_meta, path, err)))
        s = lc_st_write(path, cl.ts, cl.n, all, n + n_meta, err);
    LOLCATS_FREE(slv);
    LOLCATS_FREE(all);
    lc__ckpt_list_free(&cl);
    return s;
}

typedef struct lc__lolcats_priv {
    float *buf;
    char **meta;                  // key, value, key, value, ... (one allocation each)
    int n_meta;
    const float *(*lora)[4];      // (2 L): the lora_a then the lora_b table
    unsigned char *softmax;       // (L) kept softmax layers, or NULL
} lc__lolcats_priv;

LCIMPL void lc_lolcats_free(lc_lolcats *lp) {
    lc__lolcats_priv *pv;
    int i;
    if (!lp) return;
    pv = (lc__lolcats_priv *)lp->priv;
    if (pv) {
        LOLCATS_FREE(pv->buf);
        LOLCATS_FREE(pv->lora);
        LOLCATS_FREE(pv->softmax);
        for (i = 0; i < 2 * pv->n_meta; i++) LOLCATS_FREE(pv->meta[i]);
        LOLCATS_FREE(pv->meta);
        LOLCATS_FREE(pv);
    }
    memset(lp, 0, sizeof *lp);
}

LCIMPL const char *lc_lolcats_meta(const lc_lolcats *lp, const char *key) {
    const lc__lolcats_priv *pv = lp ? (const lc__lolcats_priv *)lp->priv : NULL;
    int i;
    if (!pv) return NULL;
    for (i = 0; i < pv->n_meta; i++)
        if (!strcmp(pv->meta[2 * i], key)) return pv->meta[2 * i + 1];
    return NULL;
}

// An integer metadata field: required (def ignored) when req, else def if absent.
static lc_status lc__meta_int(const lc_st_file *f, const char *key, int req, long long def, long long lo,
                              long long hi, long long *out, lc_error *err) {
    const char *v = lc_st_meta(f, key);
    char *end;
    if (!v) {
        if (req) return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: metadata '%s' missing", lc_st_path(f), key);
        *out = def;
        return LOLCATS_OK;
    }
    *out = strtoll(v, &end, 10);
    if (end == v || *end || *out < lo || *out > hi)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: metadata %s = '%s' is not an integer in %lld..%lld",
                            lc_st_path(f), key, v, lo, hi);
    return LOLCATS_OK;
}

// A finite number (req: it must be there); lc__meta_best also takes "inf",
// which a best loss holds before the first validation.
static lc_status lc__meta_num_in(const lc_st_file *f, const char *key, int req, double def,
                                 int inf_ok, double *out, lc_error *err) {
    const char *v = lc_st_meta(f, key);
    char *end;
    if (!v) {
        if (req) return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: metadata '%s' missing", lc_st_path(f), key);
        *out = def;
        return LOLCATS_OK;
    }
    *out = strtod(v, &end);
    if (end == v || *end)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: metadata %s = '%s' is not a number", lc_st_path(f), key, v);
    if (!isfinite(*out) && !(inf_ok && *out == HUGE_VAL))
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: metadata %s = '%s' is not a finite number "
                            "(a run that diverged? keep an earlier checkpoint)", lc_st_path(f), key, v);
    return LOLCATS_OK;
}

static lc_status lc__meta_num(const lc_st_file *f, const char *key, int req, double def, double *out,
                              lc_error *err) {
    return lc__meta_num_in(f, key, req, def, 0, out, err);
}

// Finds tensor name, checks its shape against want (ndim dims), converts it
// into dst. Missing: error when req, else returns LOLCATS_OK with *found = 0.
static lc_status lc__ckpt_get(const lc_st_file *f, const char *name, const int64_t *want, int ndim, float *dst,
                              int req, int *found, const char *hint, lc_error *err) {
    const lc_tensor *t = lc_st_find(f, name);
    int i, ok;
    if (found) *found = t != NULL;
    if (!t) {
        if (!req) return LOLCATS_OK;
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor %s missing %s", lc_st_path(f), name, hint);
    }
    ok = t->ndim == ndim;
    for (i = 0; ok && i < ndim; i++) ok = t->shape[i] == want[i];
    if (!ok) {
        char got[96], exp[96];
        size_t g = 0, e = 0;
        got[0] = exp[0] = 0;
        for (i = 0; i < t->ndim && g < sizeof got - 24; i++)
            g += (size_t)snprintf(got + g, sizeof got - g, "%s%lld", i ? "," : "", (long long)t->shape[i]);
        for (i = 0; i < ndim && e < sizeof exp - 24; i++)
            e += (size_t)snprintf(exp + e, sizeof exp - e, "%s%lld", i ? "," : "", (long long)want[i]);
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor %s has shape (%s), expected (%s) %s",
                            lc_st_path(f), name, got, exp, hint);
    }
    if ((i = lc_tensor_to_f32(t, dst, err)) != LOLCATS_OK) return (lc_status)i;
    {   // a checkpoint or state never carries NaN / Inf into a run
        size_t n = lc_tensor_numel(t), j;
        for (j = 0; j < n; j++)
            if (!isfinite(dst[j]))
                return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor %s holds %g at element %lu: not "
                                    "finite (saved from a diverged run? use an earlier checkpoint)",
                                    lc_st_path(f), name, (double)dst[j], (unsigned long)j);
    }
    return LOLCATS_OK;
}

// Steps of lc_lolcats_load. Each returns LOLCATS_OK or the failing status
// (err filled); the caller frees.
// No feature-map, window, LoRA or gate tensor for a layer beyond the model's.
static lc_status lc__lolcats_load_layers(const lc_st_file *f, const char *file, long long L, lc_error *err) {
    lc_status st;
    int i;
    for (i = 0; i < lc_st_count(f); i++) {   // no layer beyond the model's
        const char *tn = lc_st_tensor_at(f, i)->name;
        int li = -1;
        if (strstr(tn, "feature_map_") || strstr(tn, "window_factors") || strstr(tn, "lora_") ||
            strstr(tn, "gate_proj_lolcats")) {
            if (sscanf(tn, "model.layers.%d.", &li) != 1) sscanf(tn, "base_model.model.model.layers.%d.", &li);
            if (li < 0 || li >= L) {
                st = lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor %s is for a layer outside 0..%lld", file, tn,
                                  L - 1);
                return st;
            }
        }
    }
    return LOLCATS_OK;
}

// Copies the metadata into pv and parses softmax_layers.
static lc_status lc__lolcats_load_meta(lc__lolcats_priv *pv, lc_lolcats *lp, const lc_st_file *f, const char *file,
                                       long long L, lc_error *err) {
    lc_status st;
    const char *s;
    int i;
    for (i = 0; i < lc_st_meta_count(f); i++) {
        const char *k, *val;
        lc_st_meta_at(f, i, &k, &val);
        pv->meta[2 * i] = lc__strdup(k);
        pv->meta[2 * i + 1] = lc__strdup(val ? val : "");
        pv->n_meta++;
        if (!pv->meta[2 * i] || !pv->meta[2 * i + 1]) {
            st = lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", file);
            return st;
        }
    }
    if ((s = lc_st_meta(f, "softmax_layers")) != NULL) {   // absent: none (older checkpoints)
        lc_error why;
        pv->softmax = (unsigned char *)lc__mcalloc((size_t)L, 1);
        if (!pv->softmax) { st = lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", file); return st; }
        if (lc_softmax_layers_parse(pv->softmax, s, (int)L, &why)) {
            st = lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: metadata %s", file, why.msg);
            return st;
        }
        lp->softmax_layers = pv->softmax;
    }
    return LOLCATS_OK;
}

// Feature maps, window factors and the (all or none) T2R biases of every layer.
static lc_status lc__lolcats_load_fmaps(lc_lolcats *lp, const lc_st_file *f, const char *file, size_t per,
                                        lc_error *err) {
    char nm[128], hint[160];
    long long H = lp->n_heads, D = lp->head_dim, fd = lp->feature_dim, v;
    int l, L = lp->n_layers, nb = 0;
    lc_status st;
    snprintf(hint, sizeof hint, "(H=%lld heads, D=%lld head dim, f=%lld features)", H, D, fd);
    for (l = 0; l < L; l++) {
        int64_t sf[3], sw[4];
        sf[0] = H; sf[1] = D; sf[2] = fd;
        sw[0] = 1; sw[1] = H; sw[2] = 1; sw[3] = 1;
        lc__ckpt_name(nm, sizeof nm, l, 0, 0);
        if ((st = lc__ckpt_get(f, nm, sf, 3, (float *)lp->fmap_q + per * l, 1, NULL, hint, err))) return st;
        lc__ckpt_name(nm, sizeof nm, l, 1, 0);
        if ((st = lc__ckpt_get(f, nm, sf, 3, (float *)lp->fmap_k + per * l, 1, NULL, hint, err))) return st;
        lc__ckpt_name(nm, sizeof nm, l, 2, 0);
        if ((st = lc__ckpt_get(f, nm, sw, 4, (float *)lp->wf + (size_t)H * l, 1, NULL, hint, err))) return st;
        for (v = 5; v < 7; v++) {  // T2R biases: in every layer or in none
            int found;
            lc__ckpt_name(nm, sizeof nm, l, (int)v, 0);
            if ((st = lc__ckpt_get(f, nm, sw, 4, (float *)(v == 5 ? lp->fbq : lp->fbk) + (size_t)H * l, 0, &found,
                                   hint, err))) return st;
            if (l == 0 && v == 5) nb = found;
            if (found != nb) {
                if (!found) lc__ckpt_name(nm, sizeof nm, l, (int)v, 0);
                else lc__ckpt_name(nm, sizeof nm, 0, 5, 0);
                st = lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor %s missing (feature-map biases must be "
                                  "given for q and k in every layer, or not at all)", file, nm);
                return st;
            }
        }
    }
    if (!nb) lp->fbq = lp->fbk = NULL;
    return LOLCATS_OK;
}

// >>gate: w_g, b_g required in every layer with metadata gate = 1, else refused.
static lc_status lc__lolcats_load_gate(lc_lolcats *lp, const lc_st_file *f, const char *file, long long gate,
                                       lc_error *err) {
    char nm[128], hint[160];
    long long H = lp->n_heads, dim = lp->dim, v;
    int l, L = lp->n_layers;
    lc_status st;
    for (l = 0; l < L; l++) {   // >>gate: required with metadata gate = 1, else refused
        int64_t sg[2];
        int found;
        sg[0] = H; sg[1] = dim;
        snprintf(hint, sizeof hint, "(the gated linear state: w_g (H=%lld, dim=%lld), b_g (H); metadata gate=%lld)",
                 H, dim, gate);
        for (v = 7; v < 9; v++) {
            lc__ckpt_name(nm, sizeof nm, l, (int)v, 0);
            if (!gate) {
                if (lc_st_find(f, nm)) {
                    st = lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor %s present but metadata 'gate' is not "
                                      "1: a checkpoint of the gated state needs gate=1", file, nm);
                    return st;
                }
                continue;
            }
            if ((st = lc__ckpt_get(f, nm, sg, v == 7 ? 2 : 1, (float *)(v == 7 ? lp->gate_w + (size_t)l * H * dim
                                                                       : lp->gate_b + (size_t)l * H),
                                   1, &found, hint, err))) return st;
        }
    }
    return LOLCATS_OK;
}

// The LoRA factors of every layer and target (both or neither), packed from p.
static lc_status lc__lolcats_load_lora(lc_lolcats *lp, const lc_st_file *f, const char *file, float *p,
                                       lc_error *err) {
    char nm[128], hint[160];
    long long r = lp->lora_rank;
    int l, tg, L = lp->n_layers;
    lc_status st;
    for (l = 0; l < L && r > 0; l++)
        for (tg = 0; tg < 4; tg++) {
            int64_t sa[2], sb[2];
            int fa, fb;
            float *A = p, *Bm = p + (size_t)r * lc__lp_lora_in(lp, tg);
            sa[0] = r; sa[1] = lc__lp_lora_in(lp, tg);
            sb[0] = lc__lp_lora_out(lp, tg); sb[1] = r;
            snprintf(hint, sizeof hint, "(LoRA rank %lld on a %lld x %lld projection)", r, (long long)sb[0],
                     (long long)sa[1]);
            lc__ckpt_name(nm, sizeof nm, l, 3, tg);
            if ((st = lc__ckpt_get(f, nm, sa, 2, A, 0, &fa, hint, err))) return st;
            lc__ckpt_name(nm, sizeof nm, l, 4, tg);
            if ((st = lc__ckpt_get(f, nm, sb, 2, Bm, 0, &fb, hint, err))) return st;
            if (fa != fb) {
                lc__ckpt_name(nm, sizeof nm, l, fa ? 4 : 3, tg);
                st = lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor %s missing (the other LoRA factor is there)",
                                  file, nm);
                return st;
            }
            if (fa) {
                lp->lora_a[l][tg] = A;
                lp->lora_b[l][tg] = Bm;
                p += (size_t)r * (sa[1] + sb[0]);
            }
        }
    return LOLCATS_OK;
}

LCIMPL lc_status lc_lolcats_load(lc_lolcats *lp, const char *path, const lc_model *m, lc_error *err) {
    lc_st_file *f = NULL;
    lc__lolcats_priv *pv;
    char file[4096];
    long long L, H, Hk, D, dim, fd, win, half, aff, snk, r, v, gate;
    double eps, alpha;
    const char *s;
    int l, tg, act, variant, interleaved;
    size_t per, total;
    float *p;
    FILE *fp;
    lc_status st;
    memset(lp, 0, sizeof *lp);
    if (strlen(path) + 24 > sizeof file) return lc_error_set(err, LOLCATS_ERR_ARG, "%s: path too long", path);
    snprintf(file, sizeof file, "%s/model.safetensors", path);   // a merged directory?
    (void)fp;
    if (!lc__exists(file)) snprintf(file, sizeof file, "%s", path);
    if ((st = lc_st_open(&f, file, err))) return st;
    if (!lc_st_meta(f, "lolcats_format")) {
        st = lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: not a LoLCATs checkpoint (no lolcats_format metadata)", file);
        goto fail;
    }
    if (strcmp(lc_st_meta(f, "lolcats_format"), LOLCATS_CKPT_FORMAT) != 0) {
        st = lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "%s: checkpoint format %s, this build reads %s", file,
                          lc_st_meta(f, "lolcats_format"), LOLCATS_CKPT_FORMAT);
        goto fail;
    }
    if ((st = lc__meta_int(f, "n_layers", 1, 0, 1, 4096, &L, err)) ||
        (st = lc__meta_int(f, "n_heads", 1, 0, 1, 1 << 16, &H, err)) ||
        (st = lc__meta_int(f, "n_kv_heads", 1, 0, 1, 1 << 16, &Hk, err)) ||
        (st = lc__meta_int(f, "head_dim", 1, 0, 2, 1024, &D, err)) ||
        (st = lc__meta_int(f, "dim", 1, 0, 1, 1 << 20, &dim, err)) ||
        (st = lc__meta_int(f, "feature_dim", 1, 0, 1, 1024, &fd, err)) ||
        (st = lc__meta_int(f, "window", 1, 0, 1, 1 << 30, &win, err)) ||
        (st = lc__meta_int(f, "halfspace", 0, 0, 0, 1, &half, err)) ||
        (st = lc__meta_int(f, "affine", 0, 0, 0, 1, &aff, err)) ||
        (st = lc__meta_int(f, "sinks", 0, 0, 0, 1 << 30, &snk, err)) ||
        (st = lc__meta_int(f, "gate", 0, 0, 0, 1, &gate, err)) ||
        (st = lc__meta_int(f, "lora_rank", 0, 0, 0, 4096, &r, err)) ||
        (st = lc__meta_num(f, "eps", 0, 1e-12, &eps, err)) ||
        (st = lc__meta_num(f, "lora_alpha", 0, 16, &alpha, err)))
        goto fail;
    if (eps < 0 || (float)eps > 1.0f || !isfinite((float)alpha)) {
        st = lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: metadata eps %g / lora_alpha %g out of range "
                          "(eps in [0, 1], alpha a finite float)", file, eps, alpha);
        goto fail;
    }
    s = lc_st_meta(f, "feature_map");
    act = s ? lc_fmap_act_parse(s) : LOLCATS_FMAP_SOFTMAX_DIM;
    if (act < 0) { st = lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: unknown feature_map '%s'", file, s); goto fail; }
    s = lc_st_meta(f, "variant");
    variant = !s || !strcmp(s, "tk") ? LOLCATS_WINDOW_TK : !strcmp(s, "sw") ? LOLCATS_WINDOW_SW : -1;
    if (variant < 0) { st = lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: variant '%s' (tk or sw)", file, s); goto fail; }
    s = lc_st_meta(f, "rope");
    interleaved = s && !strcmp(s, "interleaved");
    if (m) {
        const lc_model_config *c = &m->cfg;
        if (L != c->n_layers || H != c->n_heads || Hk != c->n_kv_heads || D != c->head_dim || dim != c->dim) {
            st = lc_error_set(err, LOLCATS_ERR_ARG,
                              "%s: checkpoint made for a model with %lld layers, %lld heads (%lld kv) of %lld, "
                              "dim %lld; this model has %d layers, %d heads (%d kv) of %d, dim %d: wrong --model?",
                              file, L, H, Hk, D, dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->dim);
            goto fail;
        }
        if (interleaved != c->rope_interleaved) {
            st = lc_error_set(err, LOLCATS_ERR_ARG,
                              "%s: feature maps trained on %s RoPE, the model uses %s: load the checkpoint with "
                              "the model it was trained on (or its lolcats_export_hf directory)", file,
                              interleaved ? "interleaved" : "rotate_half",
                              c->rope_interleaved ? "interleaved" : "rotate_half");
            goto fail;
        }
    }
    if ((st = lc__lolcats_load_layers(f, file, L, err))) goto fail;
    lp->n_layers = (int)L; lp->n_heads = (int)H; lp->n_kv_heads = (int)Hk; lp->head_dim = (int)D;
    lp->dim = (int)dim; lp->feature_dim = (int)fd; lp->rope_interleaved = interleaved;
    lp->fmap.act = (lc_fmap_act)act; lp->fmap.halfspace = (int)half; lp->fmap.eps = (float)eps;
    lp->hybrid.variant = variant; lp->hybrid.window = (int)win; lp->hybrid.affine = (int)aff;
    lp->hybrid.sinks = (int)snk;
    lp->lora_rank = (int)r; lp->lora_alpha = (float)alpha;
    per = (size_t)H * D * fd;
    total = 2 * per * L + 3 * (size_t)L * H + (gate ? (size_t)L * H * ((size_t)dim + 1) : 0);
    for (tg = 0; tg < 4; tg++) total += (size_t)L * r * (lc__lp_lora_in(lp, tg) + lc__lp_lora_out(lp, tg));
    pv = (lc__lolcats_priv *)lc__mcalloc(1, sizeof *pv);
    if (!pv) { st = lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", file); goto fail; }
    lp->priv = pv;
    pv->buf = (float *)lc__mcalloc(total, sizeof(float));
    pv->meta = (char **)lc__mcalloc(2 * (size_t)lc_st_meta_count(f) + 1, sizeof(char *));
    pv->lora = (const float *(*)[4])lc__mcalloc(2 * (size_t)L, sizeof *pv->lora);
    if (!pv->buf || !pv->meta || !pv->lora) { st = lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", file); goto fail; }
    if ((st = lc__lolcats_load_meta(pv, lp, f, file, L, err))) goto fail;
    p = pv->buf;
    lp->fmap_q = p; p += per * L;
    lp->fmap_k = p; p += per * L;
    lp->wf = p; p += (size_t)L * H;
    lp->fbq = p; p += (size_t)L * H;
    lp->fbk = p; p += (size_t)L * H;
    if (gate) {   // >>gate: metadata gate = 1: w_g, b_g in every layer
        lp->gate_w = p; p += (size_t)L * H * dim;
        lp->gate_b = p; p += (size_t)L * H;
    }
    lp->lora_a = pv->lora;
    lp->lora_b = pv->lora + L;
    if ((st = lc__lolcats_load_fmaps(lp, f, file, per, err))) goto fail;
    if ((st = lc__lolcats_load_gate(lp, f, file, gate, err))) goto fail;
    if ((st = lc__lolcats_load_lora(lp, f, file, p, err))) goto fail;
    v = 0;
    for (l = 0; l < L; l++)
        for (tg = 0; tg < 4; tg++) v += lp->lora_a[l][tg] != NULL;
    if (r > 0 && v == 0) lp->lora_rank = 0;  // merged or stage 1 only
    lc_st_close(f);
    return LOLCATS_OK;
fail:
    lc_st_close(f);
    lc_lolcats_free(lp);
    return st;
}

LCIMPL lc_status lc_train_set_lolcats(lc_train *t, const lc_lolcats *lp, lc_error *err) {
    const lc_model_config *c = &t->model->cfg;
    int L = c->n_layers, H = c->n_heads, D = c->head_dim, f = t->cfg.feature_dim, l, tg;
    size_t per = (size_t)H * D * f;
    if (!t->fmap_q) return lc_error_set(err, LOLCATS_ERR_ARG, "the trainer has no feature maps (softmax attention)");
    if (lp->n_layers != L || lp->n_heads != H || lp->head_dim != D || lp->feature_dim != f ||
        lp->fmap.act != t->cfg.fmap.act || lp->fmap.halfspace != t->cfg.fmap.halfspace)
        return lc_error_set(err, LOLCATS_ERR_ARG,
                            "checkpoint (%d layers, %d heads of %d, %s feature dim %d%s) does not fit the trainer "
                            "(%d layers, %d heads of %d, %s feature dim %d%s)", lp->n_layers, lp->n_heads,
                            lp->head_dim, lc_fmap_act_name(lp->fmap.act), lp->feature_dim,
                            lp->fmap.halfspace ? " halfspace" : "", L, H, D, lc_fmap_act_name(t->cfg.fmap.act), f,
                            t->cfg.fmap.halfspace ? " halfspace" : "");
    if (!lp->fbq != !t->fbq)
        return lc_error_set(err, LOLCATS_ERR_ARG, "the checkpoint %s feature-map biases (T2R) but the trainer %s",
                            lp->fbq ? "has" : "has no", t->fbq ? "has (fmap_bias)" : "has none");
    memcpy(t->fmap_q, lp->fmap_q, sizeof(float) * per * L);
    memcpy(t->fmap_k, lp->fmap_k, sizeof(float) * per * L);
    memcpy(t->wf, lp->wf, sizeof(float) * (size_t)L * H);
    if (lp->fbq) {
        memcpy(t->fbq, lp->fbq, sizeof(float) * (size_t)L * H);
        memcpy(t->fbk, lp->fbk, sizeof(float) * (size_t)L * H);
    }
    if (!lp->gate_w != !t->gate_w)   // >>gate
        return lc_error_set(err, LOLCATS_ERR_ARG, "the checkpoint %s gated linear state (metadata gate) but the "
                            "trainer %s", lp->gate_w ? "has a" : "has no", t->gate_w ? "is gated (cfg.gate)" : "is not");
    if (lp->gate_w) {
        memcpy(t->gate_w, lp->gate_w, sizeof(float) * (size_t)L * H * c->dim);
        memcpy(t->gate_b, lp->gate_b, sizeof(float) * (size_t)L * H);
    }
    if (lp->lora_rank <= 0 || !lp->lora_a || !lp->lora_b) return LOLCATS_OK;
    if (lp->lora_rank != t->cfg.lora_rank)
        return lc_error_set(err, LOLCATS_ERR_ARG, "checkpoint LoRA rank %d, the trainer's %d", lp->lora_rank,
                            t->cfg.lora_rank);
    for (l = 0; l < L; l++)
        for (tg = 0; tg < 4; tg++) {
            size_t off = t->lora_off[l][tg], na = (size_t)lp->lora_rank * lc__lora_in(c, tg);
            if (!off || !lp->lora_a[l][tg]) continue;
            memcpy(t->params + off, lp->lora_a[l][tg], sizeof(float) * na);
            memcpy(t->params + off + na, lp->lora_b[l][tg],
                   sizeof(float) * (size_t)lp->lora_rank * lc__lora_out(c, tg));
        }
    return LOLCATS_OK;
}

LCIMPL lc_status lc_lolcats_export_hf(const lc_model *m, const lc_lolcats *lp, const char *dir, lc_error *err) {
    const lc_model_config *c = &m->cfg;
    lc_model mm = *m;
    lc_layer_weights *lw = NULL;
    float *(*merged)[4] = NULL;   // (L) [layer][q,k,v,o]: merged weights, or NULL
    lc__ckpt_list cl;
    lc_st_file *f = NULL;
    lc_tensor *all = NULL;
    const char *kv[2 * LC__CKPT_NMETA + 6];
    char vals[LC__CKPT_NMETA][48], path[4096], *slv = NULL;
    int l, tg, i, n, nb;
    lc_status st;
    memset(&cl, 0, sizeof cl);
    if (lp->n_layers != c->n_layers || lp->n_heads != c->n_heads || lp->head_dim != c->head_dim ||
        (lp->lora_rank > 0 && (lp->dim != c->dim || lp->n_kv_heads != c->n_kv_heads)) ||
        lp->rope_interleaved != c->rope_interleaved)
        return lc_error_set(err, LOLCATS_ERR_ARG, "export: the LoLCATs parameters do not belong to this model "
                            "(layers %d/%d, heads %d/%d, head dim %d/%d)", lp->n_layers, c->n_layers, lp->n_heads,
                            c->n_heads, lp->head_dim, c->head_dim);
    if (strlen(dir) + 32 > sizeof path) return lc_error_set(err, LOLCATS_ERR_ARG, "%s: path too long", dir);
    lw = (lc_layer_weights *)lc__mcalloc((size_t)c->n_layers, sizeof *lw);
    merged = (float *(*)[4])lc__mcalloc((size_t)c->n_layers, sizeof *merged);
    if (!lw || !merged) {
        LOLCATS_FREE(lw);
        LOLCATS_FREE(merged);
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "export: out of memory");
    }
    memcpy(lw, m->layers, sizeof *lw * (size_t)c->n_layers);
    mm.layers = lw;
    st = LOLCATS_OK;
    for (l = 0; l < c->n_layers && lp->lora_rank > 0 && lp->lora_a && lp->lora_b; l++)
        for (tg = 0; tg < 4; tg++) {   // W' = W + (alpha / r) B A in fp32
            lc_weight *w = tg == 0 ? &lw[l].wq : tg == 1 ? &lw[l].wk : tg == 2 ? &lw[l].wv : &lw[l].wo;
            const float *A = lp->lora_a[l][tg], *Bm = lp->lora_b[l][tg];
            float s = lp->lora_alpha / (float)lp->lora_rank, *out;
            int64_t o, k, rr;
            if (!A || !Bm) continue;
            out = merged[l][tg] = (float *)lc__mcalloc((size_t)(w->rows * w->cols), sizeof(float));
            if (!out) { st = lc_error_set(err, LOLCATS_ERR_NOMEM, "export: out of memory"); goto done; }
            for (o = 0; o < w->rows; o++)
                for (k = 0; k < w->cols; k++) {
                    float acc = 0.0f;
                    for (rr = 0; rr < lp->lora_rank; rr++)
                        acc += Bm[o * lp->lora_rank + rr] * A[rr * w->cols + k];
                    out[o * w->cols + k] = lc_weight_get(w, o * w->cols + k) + s * acc;
                }
            w->data = out;
            w->dtype = LOLCATS_DTYPE_F32;
        }
    if ((st = lc_model_export_hf(&mm, dir, err))) goto done;
    // add the LoLCATs tensors and metadata to model.safetensors
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if ((st = lc_st_open(&f, path, err))) goto done;
    if ((st = lc__ckpt_build(&cl, lp, 0, c->rope_interleaved, err))) goto done;
    nb = lc_st_count(f);
    all = (lc_tensor *)lc__mcalloc((size_t)(nb + cl.n), sizeof *all);
    if (!all) { st = lc_error_set(err, LOLCATS_ERR_NOMEM, "export: out of memory"); goto done; }
    for (i = 0; i < nb; i++) all[i] = *lc_st_tensor_at(f, i);
    for (i = 0; i < cl.n; i++) all[nb + i] = cl.ts[i];
    kv[0] = "format";
    kv[1] = "pt";
    n = lc__ckpt_meta(lp, kv + 2, vals, 0, 0);
    n = lc__ckpt_meta_softmax(lp, kv + 2, n, &slv);
    kv[2 + 2 * n] = "lora_merged";
    kv[3 + 2 * n] = lp->lora_rank > 0 ? "1" : "0";
    st = lc_st_write(path, all, nb + cl.n, kv, n + 2, err);
    LOLCATS_FREE(slv);
done:
    lc_st_close(f);
    LOLCATS_FREE(all);
    lc__ckpt_list_free(&cl);
    for (l = 0; l < c->n_layers; l++)
        for (tg = 0; tg < 4; tg++) LOLCATS_FREE(merged[l][tg]);
    LOLCATS_FREE(merged);
    LOLCATS_FREE(lw);
    return st;
}

LCIMPL void lc_plateau_init(lc_plateau *p, float lr, float factor, int patience, float min_lr) {
    p->lr = lr;
    p->factor = factor;
    p->min_lr = min_lr;
    p->threshold = 1e-4f;
    p->patience = patience;
    p->num_bad = 0;
    p->best = HUGE_VAL;
}

LCIMPL int lc_plateau_step(lc_plateau *p, double metric) {
    // torch.optim.lr_scheduler.ReduceLROnPlateau: rel threshold, mode min
    if (metric < p->best * (1.0 - (double)p->threshold)) {
        p->best = metric;
        p->num_bad = 0;
    } else {
        p->num_bad++;
    }
    if (p->num_bad > p->patience) {
        float nl = p->lr * p->factor;
        p->num_bad = 0;
        if (nl < p->min_lr) nl = p->min_lr;
        if (p->lr - nl > 1e-8f) { p->lr = nl; return 1; }
    }
    return 0;
}

// Shape and config of a trainer, as the state file records it.
static void lc__train_sig(const lc_train *t, char *buf, size_t cap) {
    const lc_model_config *c = &t->model->cfg;
    snprintf(buf, cap, "n_params=%zu L=%d H=%d Hk=%d D=%d dim=%d V=%d f=%d fmap=%s half=%d r=%d train=%d "
             "attn=%d variant=%d window=%d", t->n_params, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim,
             c->dim, c->vocab_size, t->cfg.feature_dim, lc_fmap_act_name(t->cfg.fmap.act), t->cfg.fmap.halfspace,
             t->cfg.lora_rank, t->cfg.trainable, t->cfg.attn, t->cfg.hybrid.variant, t->cfg.hybrid.window);
}

#define LC__STATE_NMETA 20
LCIMPL lc_status lc_train_save_state(const lc_train *t, const lc_train_progress *pr, const char *path,
                                     const char *const *meta, int n_meta, lc_error *err) {
    lc_tensor ts[3];
    int64_t shape[1];
    const char *kv[2 * LC__STATE_NMETA], **all = NULL;
    char vals[LC__STATE_NMETA][48], sig[400];
    int n = 0, i;
    lc_status st;
    shape[0] = (int64_t)t->n_params;
    lc__tensor_f32(&ts[0], "params", t->params, 1, shape);
    lc__tensor_f32(&ts[1], "adam_m", t->adam_m, 1, shape);
    lc__tensor_f32(&ts[2], "adam_v", t->adam_v, 1, shape);
    lc__train_sig(t, sig, sizeof sig);
#define LC__SMETA(key, ...) do { snprintf(vals[n], 48, __VA_ARGS__); kv[2 * n] = key; kv[2 * n + 1] = vals[n]; n++; } while (0)
    LC__SMETA("lolcats_state", "1");
    LC__SMETA("step", "%lld", (long long)t->step);
    LC__SMETA("seq", "%lld", (long long)pr->seq);
    LC__SMETA("tokens", "%lld", (long long)pr->tokens);
    for (i = 0; i < 4; i++) LC__SMETA(i == 0 ? "rng0" : i == 1 ? "rng1" : i == 2 ? "rng2" : "rng3", "%llu",
                                      (unsigned long long)pr->rng[i]);
    LC__SMETA("lr", "%.9g", (double)pr->sched.lr);
    LC__SMETA("lr_factor", "%.9g", (double)pr->sched.factor);
    LC__SMETA("lr_min", "%.9g", (double)pr->sched.min_lr);
    LC__SMETA("lr_threshold", "%.9g", (double)pr->sched.threshold);
    LC__SMETA("patience", "%d", pr->sched.patience);
    LC__SMETA("num_bad", "%d", pr->sched.num_bad);
    LC__SMETA("sched_best", "%.17g", pr->sched.best);
    LC__SMETA("best_val", "%.17g", pr->best_val);
    LC__SMETA("best_step", "%lld", (long long)pr->best_step);
#undef LC__SMETA
    kv[2 * n] = "signature";
    kv[2 * n + 1] = sig;
    n++;
    if ((st = lc__meta_join(&all, kv, n, meta, n_meta, path, err))) return st;
    st = lc_st_write(path, ts, 3, all, n + n_meta, err);
    LOLCATS_FREE(all);
    return st;
}

LCIMPL lc_status lc_train_load_state(lc_train *t, lc_train_progress *pr, const char *path, lc_error *err) {
    lc_st_file *f = NULL;
    char sig[400];
    const char *fs;
    const char *names[3];
    float *dst[3];
    long long v;
    double d;
    int i;
    lc_status st;
    int64_t shape[1];
    if ((st = lc_st_open(&f, path, err))) return st;
    if (!lc_st_meta(f, "lolcats_state")) {
        st = lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: not a training state file (no lolcats_state metadata)", path);
        goto done;
    }
    lc__train_sig(t, sig, sizeof sig);
    fs = lc_st_meta(f, "signature");
    if (!fs || strcmp(fs, sig) != 0) {
        st = lc_error_set(err, LOLCATS_ERR_ARG, "%s: written by a different setup (%s), this run is (%s): resume with "
                          "the same model and options", path, fs ? fs : "?", sig);
        goto done;
    }
    names[0] = "params"; names[1] = "adam_m"; names[2] = "adam_v";
    dst[0] = t->params; dst[1] = t->adam_m; dst[2] = t->adam_v;
    shape[0] = (int64_t)t->n_params;
    for (i = 0; i < 3; i++)
        if ((st = lc__ckpt_get(f, names[i], shape, 1, dst[i], 1, NULL, "(trainer state)", err))) goto done;
    memset(pr, 0, sizeof *pr);
    if ((st = lc__meta_int(f, "step", 1, 0, 0, INT64_MAX, &v, err))) goto done;
    t->step = v;
    if ((st = lc__meta_int(f, "seq", 1, 0, 0, INT64_MAX, &v, err))) goto done;
    pr->seq = v;
    if ((st = lc__meta_int(f, "tokens", 1, 0, 0, INT64_MAX, &v, err))) goto done;
    pr->tokens = v;
    if ((st = lc__meta_int(f, "best_step", 1, 0, 0, INT64_MAX, &v, err))) goto done;
    pr->best_step = v;
    for (i = 0; i < 4; i++) {
        const char *key = i == 0 ? "rng0" : i == 1 ? "rng1" : i == 2 ? "rng2" : "rng3", *s = lc_st_meta(f, key);
        char *end;
        if (!s) { st = lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: metadata '%s' missing", path, key); goto done; }
        pr->rng[i] = (uint64_t)strtoull(s, &end, 10);
        if (end == s || *end) { st = lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: bad %s '%s'", path, key, s); goto done; }
    }
    if ((st = lc__meta_num(f, "lr", 1, 0, &d, err))) goto done;
    pr->sched.lr = (float)d;
    if ((st = lc__meta_num(f, "lr_factor", 1, 0, &d, err))) goto done;
    pr->sched.factor = (float)d;
    if ((st = lc__meta_num(f, "lr_min", 1, 0, &d, err))) goto done;
    pr->sched.min_lr = (float)d;
    if ((st = lc__meta_num(f, "lr_threshold", 1, 0, &d, err))) goto done;
    pr->sched.threshold = (float)d;
    if ((st = lc__meta_int(f, "patience", 1, 0, 0, 1 << 30, &v, err))) goto done;
    pr->sched.patience = (int)v;
    if ((st = lc__meta_int(f, "num_bad", 1, 0, 0, 1 << 30, &v, err))) goto done;
    pr->sched.num_bad = (int)v;
    if ((st = lc__meta_num_in(f, "sched_best", 1, 0, 1, &pr->sched.best, err))) goto done;
    if ((st = lc__meta_num_in(f, "best_val", 1, 0, 1, &pr->best_val, err))) goto done;
    lc_train_zero_grad(t);
done:
    lc_st_close(f);
    return st;
}

// >>lolcats-infer
// Linearized inference (lc_lolcats_run). The model's weights are read through
// its public pieces (lc_weight, lc_matmul); the blocks (lc_rmsnorm_fwd,
// lc_rope_split_fwd, lc_heads_merge, lc_swiglu_fwd) and the kernels
// (lc_fmap_fwd, lc_attn_hybrid_fwd, lc_attn_hybrid_decode) do the math.

typedef struct lc__li_scratch {
    int T, R;                                  // max tokens, ring + chunk rows
    float *x, *xb, *q, *k, *v, *ym, *hb, *hb2; // token-major (T, *)
    float *xa, *lt;                            // LoRA: x A^T (T,r), (x A^T) B^T (T,O)
    float *cos_t, *sin_t, *inv;                // (T,D/2) x2, inverse frequencies (D/2)
    float *qh, *kh, *vh, *phiq, *phik;         // chunk heads (H,T,D) (Hk,T,D) x2 (H,T,F) x2
    float *qc, *kc, *vc, *phiqc, *phikc;       // ring + chunk (H,R,D) (Hk,R,D) x2 (H,R,F) x2
    float *yh, *mrow, *den, *work;             // (H,R,D) (H,R) (H,R), hybrid work
    float *norm_w;                             // (2L+1, dim) fp32 norm weights
    float *state_mem;                          // the L decode states
    unsigned char *soft;                       // (L) kept softmax layers (a copy), or NULL
    float **kv;                                // (L) kept layer: keys then values (2,Hk,cap,D)
    float *att;                                // (H, cap) softmax scores
    int kv_cap;                                // positions the caches hold
    float *logg, *loggc;                       // >>gate: chunk log g (H,T), ring + chunk (H,R)
    size_t gate_floats;                        // >>gate: H*w log g ring after each decode state, or 0
} lc__li_scratch;

// >>gate: layer l's ring of the window's log g (H,w), after its decode state.
static float *lc__li_logg_ring(const lc_lolcats_run *r, int l) {
    const lc__li_scratch *s = (const lc__li_scratch *)r->priv;
    const lc_decode_state *st = &r->layers[0];
    size_t dn = lc_decode_state_floats_sinks(st->H, st->Hk, st->D, st->F, st->window, st->sinks);
    return s->state_mem + (size_t)l * (dn + s->gate_floats) + dn;
}

LCIMPL size_t lc_lolcats_identity_floats(const lc_model_config *c, int f) {
    return 2 * (size_t)c->n_layers * c->n_heads * c->head_dim * f + (size_t)c->n_layers * c->n_heads;
}

LCIMPL void lc_lolcats_init_identity(lc_lolcats *lp, float *mem, const lc_model_config *c, int f,
                                     const lc_fmap_cfg *fmap, const lc_hybrid_cfg *hybrid) {
    int L = c->n_layers, H = c->n_heads, D = c->head_dim, i;
    size_t nf = (size_t)L * H * D * f;
    float *wf = mem + 2 * nf;
    LOLCATS_ASSERT(f > 0 && f <= D);
    memset(lp, 0, sizeof *lp);
    lp->n_layers = L; lp->n_heads = H; lp->head_dim = D;
    lp->fmap = *fmap;
    lp->feature_dim = f;
    lp->hybrid = *hybrid;
    lc_fmap_init_identity(mem, L * H, D, f);
    lc_fmap_init_identity(mem + nf, L * H, D, f);
    for (i = 0; i < L * H; i++) wf[i] = -2.1972245773362196f;  // logit(0.1)
    lp->fmap_q = mem;
    lp->fmap_k = mem + nf;
    lp->wf = wf;
}

static lc_status lc__li_check(const lc_model *m, const lc_lolcats *lp, lc_error *err) {
    const lc_model_config *c = &m->cfg;
    int l, tg;
    if (lp->n_layers != c->n_layers || lp->n_heads != c->n_heads || lp->head_dim != c->head_dim)
        return lc_error_set(err, LOLCATS_ERR_ARG,
                            "LoLCATs parameters for %d layers x %d heads x head dim %d, but the model "
                            "has %d x %d x %d: checkpoint of another model",
                            lp->n_layers, lp->n_heads, lp->head_dim, c->n_layers, c->n_heads,
                            c->head_dim);
    if (c->n_heads % c->n_kv_heads)
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "%d heads / %d kv heads: "
                            "heads must be a multiple of kv heads", c->n_heads, c->n_kv_heads);
    if (!lp->fmap_q || !lp->fmap_k || !lp->wf || lp->feature_dim <= 0 || lp->feature_dim > 1024 ||
        lp->hybrid.window <= 0)
        return lc_error_set(err, LOLCATS_ERR_ARG,
                            "LoLCATs parameters incomplete: feature maps %s, window factors %s, "
                            "feature dim %d (1..1024), window %d (> 0)",
                            lp->fmap_q && lp->fmap_k ? "set" : "missing", lp->wf ? "set" : "missing",
                            lp->feature_dim, lp->hybrid.window);
    if (lp->lora_rank < 0 || lp->lora_rank > 256)
        return lc_error_set(err, LOLCATS_ERR_ARG, "LoRA rank %d: 0..256 supported", lp->lora_rank);
    if (lp->gate_w && (!lp->gate_b || lp->dim != c->dim))   // >>gate
        return lc_error_set(err, LOLCATS_ERR_ARG, "gated linear state: %s", !lp->gate_b ? "gate_b missing"
                            : "dim of the gate weights differs from the model's");
    if (lp->lora_rank > 0 && (!lp->lora_a || !lp->lora_b))
        return lc_error_set(err, LOLCATS_ERR_ARG, "LoRA rank %d but no LoRA tables (lora_a, lora_b): "
                            "set them, or set lora_rank to 0", lp->lora_rank);
    for (l = 0; l < c->n_layers && lp->lora_rank > 0; l++)
        for (tg = 0; tg < 4; tg++)
            if (!lp->lora_a[l][tg] != !lp->lora_b[l][tg])
                return lc_error_set(err, LOLCATS_ERR_ARG, "layer %d LoRA target %d has only one of A, B",
                                    l, tg);
    return LOLCATS_OK;
}

LCIMPL void lc_lolcats_run_free(lc_lolcats_run *r) {
    lc__li_scratch *s;
    if (!r) return;
    s = (lc__li_scratch *)r->priv;
    if (s) {
        int l;
        LOLCATS_FREE(s->x);
        for (l = 0; s->kv && l < r->n_layers; l++) LOLCATS_FREE(s->kv[l]);
        LOLCATS_FREE(s->kv);
        LOLCATS_FREE(s->soft);
        LOLCATS_FREE(s->att);
    }
    LOLCATS_FREE(s);
    LOLCATS_FREE(r->layers);
    memset(r, 0, sizeof *r);
}

LCIMPL void lc_lolcats_run_reset(lc_lolcats_run *r) {
    lc__li_scratch *s = (lc__li_scratch *)r->priv;
    int l;
    for (l = 0; l < r->n_layers; l++) {
        lc_decode_state *st = &r->layers[l];
        lc_decode_state_init_sinks(st, s->state_mem + (size_t)l * (lc_decode_state_floats_sinks(st->H, st->Hk, st->D,
                             st->F, st->window, st->sinks) + s->gate_floats), st->H, st->Hk, st->D, st->F, st->window,
                             st->sinks);
        if (s->gate_floats) memset(lc__li_logg_ring(r, l), 0, sizeof(float) * s->gate_floats);   // >>gate
    }
    r->pos = 0;
}

// Kept softmax layers: each has a KV cache, keys then values (2, Hk, cap, D),
// of cap positions for every layer alike; grown (doubling) by
// lc__li_kv_reserve, which keeps the first r->pos positions.
static lc_status lc__li_kv_reserve(lc_lolcats_run *r, int Hk, int D, int H, int64_t need,
                                   lc_error *err) {
    lc__li_scratch *s = (lc__li_scratch *)r->priv;
    int l, g, ok = 1;
    int64_t cap = s->kv_cap > 0 ? s->kv_cap : 64;
    size_t keep = (size_t)r->pos * D, grow = 0;
    float *att, **nb;
    if (!s->kv || need <= s->kv_cap) return LOLCATS_OK;
    while (cap < need) cap *= 2;
    if (cap > 0x3fffffff)
        return lc_error_set(err, LOLCATS_ERR_ARG, "context of %lld tokens: the kept softmax layers' KV "
                            "cache holds at most %d", (long long)need, 0x3fffffff);
    // every new buffer first, so a refusal leaves the caches as they were
    att = (float *)LOLCATS_MALLOC(sizeof(float) * (size_t)H * (size_t)cap);
    nb = (float **)lc__mcalloc((size_t)r->n_layers, sizeof(float *));
    for (l = 0; att && nb && l < r->n_layers; l++)
        if (s->soft[l] && !(nb[l] = (float *)LOLCATS_MALLOC(sizeof(float) * 2 * (size_t)Hk * (size_t)cap * D)))
            ok = 0;
    if (!att || !nb || !ok) {
        for (l = 0; nb && l < r->n_layers; l++) LOLCATS_FREE(nb[l]);
        LOLCATS_FREE(nb);
        LOLCATS_FREE(att);
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory growing the KV cache of the kept softmax "
                            "layers to %lld positions (%zu bytes a token): a shorter context or fewer "
                            "--softmax-layers", (long long)cap, r->kv_bytes_per_token);
    }
    for (l = 0; l < r->n_layers; l++) {
        if (!s->soft[l]) continue;
        for (g = 0; s->kv[l] && g < 2 * Hk; g++)   // keys then values, head by head
            memcpy(nb[l] + (size_t)g * (size_t)cap * D, s->kv[l] + (size_t)g * (size_t)s->kv_cap * D,
                   sizeof(float) * keep);
        LOLCATS_FREE(s->kv[l]);
        s->kv[l] = nb[l];
        grow += 2 * (size_t)Hk * (size_t)(cap - s->kv_cap) * D;
    }
    LOLCATS_FREE(nb);
    LOLCATS_FREE(s->att);
    s->att = att;
    r->bytes += sizeof(float) * (grow + (size_t)H * (size_t)(cap - s->kv_cap));
    s->kv_cap = (int)cap;
    return LOLCATS_OK;
}

// Copies the kept layers' caches from the run and sets up the first cap.
static lc_status lc__li_kv_init(lc_lolcats_run *r, const lc_lolcats *lp, const lc_model_config *c,
                                lc_error *err) {
    lc__li_scratch *s = (lc__li_scratch *)r->priv;
    int l, n = 0, L = r->n_layers;
    for (l = 0; lp->softmax_layers && l < L; l++) n += lp->softmax_layers[l] != 0;
    if (!n) return LOLCATS_OK;
    s->soft = (unsigned char *)lc__mcalloc((size_t)L, 1);
    s->kv = (float **)lc__mcalloc((size_t)L, sizeof(float *));
    if (!s->soft || !s->kv) return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory");
    for (l = 0; l < L; l++) s->soft[l] = lp->softmax_layers[l] != 0;
    r->kv_bytes_per_token = sizeof(float) * 2 * (size_t)n * c->n_kv_heads * c->head_dim;
    return lc__li_kv_reserve(r, c->n_kv_heads, c->head_dim, c->n_heads, s->T, err);
}

// Floats of the kept layers' caches at pos tokens, as a snapshot holds them.
static size_t lc__li_kv_floats(const lc_lolcats_run *r, int64_t pos) {
    return r->kv_bytes_per_token / sizeof(float) * (size_t)pos;
}

// Snapshot layout: int64 header {magic, layers, floats per layer, r->pos}, then
// per layer its int64 pos, then the L decode states' floats (one block), then
// per kept softmax layer its keys (Hk, pos, D) and values (Hk, pos, D).
#define LC__SNAP_MAGIC 0x6c63736e61703031LL   // "lcsnap01"
static size_t lc__snap_floats(const lc_lolcats_run *r) {
    const lc_decode_state *st = &r->layers[0];
    return lc_decode_state_floats_sinks(st->H, st->Hk, st->D, st->F, st->window, st->sinks) +
           ((const lc__li_scratch *)r->priv)->gate_floats;   // >>gate: the log g ring
}

static size_t lc__snap_bytes_at(const lc_lolcats_run *r, int64_t pos) {
    return sizeof(int64_t) * (4 + (size_t)r->n_layers) +
           sizeof(float) * (lc__snap_floats(r) * (size_t)r->n_layers + lc__li_kv_floats(r, pos));
}

LCIMPL size_t lc_lolcats_run_snapshot_bytes(const lc_lolcats_run *r) {
    return lc__snap_bytes_at(r, r->pos);
}

// Kept layers' caches <-> a snapshot's tail o (dir 1: save, 0: restore), pos positions.
static void lc__snap_kv(const lc_lolcats_run *r, char *o, int64_t pos, int save) {
    const lc__li_scratch *s = (const lc__li_scratch *)r->priv;
    int Hk = r->layers[0].Hk, D = r->layers[0].D, l, i;
    size_t n = sizeof(float) * (size_t)pos * D;
    for (l = 0; s->kv && l < r->n_layers; l++)
        for (i = 0; s->soft[l] && i < 2 * Hk; i++, o += n) {
            float *row = s->kv[l] + (size_t)i * (size_t)s->kv_cap * D;
            if (save) memcpy(o, row, n);
            else memcpy(row, o, n);
        }
}

LCIMPL void lc_lolcats_run_snapshot(const lc_lolcats_run *r, void *buf) {
    const lc__li_scratch *s = (const lc__li_scratch *)r->priv;
    int64_t hd[4];
    int l;
    char *o = (char *)buf;
    hd[0] = LC__SNAP_MAGIC; hd[1] = r->n_layers; hd[2] = (int64_t)lc__snap_floats(r); hd[3] = r->pos;
    memcpy(o, hd, sizeof hd);
    o += sizeof hd;
    for (l = 0; l < r->n_layers; l++, o += sizeof(int64_t)) memcpy(o, &r->layers[l].pos, sizeof(int64_t));
    memcpy(o, s->state_mem, sizeof(float) * lc__snap_floats(r) * (size_t)r->n_layers);
    lc__snap_kv(r, o + sizeof(float) * lc__snap_floats(r) * (size_t)r->n_layers, r->pos, 1);
}

LCIMPL lc_status lc_lolcats_run_restore(lc_lolcats_run *r, const void *buf, size_t bytes,
                                       lc_error *err) {
    lc__li_scratch *s = (lc__li_scratch *)r->priv;
    const char *in = (const char *)buf;
    int64_t hd[4], at = r->pos;   // kept softmax layers: the size follows the snapshot's pos
    int l;
    lc_status st;
    if (s->kv && bytes >= sizeof hd) {
        memcpy(hd, in, sizeof hd);
        if (hd[3] >= 0 && hd[3] <= (int64_t)1 << 40) at = hd[3];
    }
    if (bytes != lc__snap_bytes_at(r, at))
        return lc_error_set(err, LOLCATS_ERR_ARG, "snapshot of %zu bytes, but this run's state takes "
                            "%zu: a snapshot of another model or window", bytes,
                            lc__snap_bytes_at(r, at));
    memcpy(hd, in, sizeof hd);
    if (hd[0] != LC__SNAP_MAGIC || hd[1] != r->n_layers || hd[2] != (int64_t)lc__snap_floats(r) ||
        hd[3] < 0)
        return lc_error_set(err, LOLCATS_ERR_ARG, "not a snapshot of this run (header %lld layers, "
                            "%lld floats per layer; the run has %d, %zu): take it with "
                            "lc_lolcats_run_snapshot", (long long)hd[1], (long long)hd[2],
                            r->n_layers, lc__snap_floats(r));
    if (s->kv && (st = lc__li_kv_reserve(r, r->layers[0].Hk, r->layers[0].D, r->layers[0].H, hd[3], err)))
        return st;
    in += sizeof hd;
    r->pos = hd[3];
    for (l = 0; l < r->n_layers; l++, in += sizeof(int64_t)) memcpy(&r->layers[l].pos, in, sizeof(int64_t));
    memcpy(s->state_mem, in, sizeof(float) * lc__snap_floats(r) * (size_t)r->n_layers);
    lc__snap_kv(r, (char *)(uintptr_t)(in + sizeof(float) * lc__snap_floats(r) * (size_t)r->n_layers), r->pos, 0);
    return LOLCATS_OK;
}

LCIMPL lc_status lc_lolcats_run_init(lc_lolcats_run *r, const lc_ctx *ctx, const lc_model *m,
                                     const lc_lolcats *lp, int max_tokens, lc_error *err) {
    const lc_model_config *c = &m->cfg;
    int L = c->n_layers, H = c->n_heads, Hk = c->n_kv_heads, D = c->head_dim, dim = c->dim;
    int hid = c->hidden_dim, w, F, T, R, pass, l;
    size_t qd = (size_t)H * D, kd = (size_t)Hk * D, xd, total = 0, st_n;
    lc__li_scratch *s;
    float *p = NULL;
    lc_status status;
    memset(r, 0, sizeof *r);
    if ((status = lc__li_check(m, lp, err))) return status;
    if (ctx) r->ctx = *ctx;
    else lc_ctx_init(&r->ctx);
    w = lp->hybrid.window;
    F = lc_fmap_out_dim(&lp->fmap, lp->feature_dim);
    T = max_tokens > 0 ? max_tokens : 1;
    R = w + T + lp->hybrid.sinks;  // sinks: lc__li_continue's rows start with them
    xd = qd > (size_t)dim ? qd : (size_t)dim;
    st_n = lc_decode_state_floats_sinks(H, Hk, D, F, w, lp->hybrid.sinks);
    st_n += lp->gate_w ? (size_t)H * w : 0;   // >>gate: each layer's log g ring
    s = (lc__li_scratch *)LOLCATS_MALLOC(sizeof *s);
    r->layers = (lc_decode_state *)LOLCATS_MALLOC(sizeof(lc_decode_state) * (size_t)L);
    r->priv = s;
    if (!s || !r->layers) {
        lc_lolcats_run_free(r);
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory");
    }
    memset(s, 0, sizeof *s);
    for (pass = 0; pass < 2; pass++) {  // count, then cut the views
#define LC__LI_TAKE(dst, count) do { size_t n_ = (size_t)(count); if (pass) { (dst) = p; p += n_; } else total += n_; } while (0)
        LC__LI_TAKE(s->x, (size_t)T * dim);
        LC__LI_TAKE(s->xb, (size_t)T * xd);
        LC__LI_TAKE(s->q, (size_t)T * qd);
        LC__LI_TAKE(s->k, (size_t)T * kd);
        LC__LI_TAKE(s->v, (size_t)T * kd);
        LC__LI_TAKE(s->ym, (size_t)T * qd);
        LC__LI_TAKE(s->hb, (size_t)T * hid);
        LC__LI_TAKE(s->hb2, (size_t)T * hid);
        LC__LI_TAKE(s->xa, (size_t)T * (lp->lora_rank > 0 ? lp->lora_rank : 1));
        LC__LI_TAKE(s->lt, (size_t)T * xd);
        LC__LI_TAKE(s->cos_t, (size_t)T * (D / 2));
        LC__LI_TAKE(s->sin_t, (size_t)T * (D / 2));
        LC__LI_TAKE(s->inv, D / 2 + 1);
        LC__LI_TAKE(s->qh, (size_t)T * qd);
        LC__LI_TAKE(s->kh, (size_t)T * kd);
        LC__LI_TAKE(s->vh, (size_t)T * kd);
        LC__LI_TAKE(s->phiq, (size_t)H * T * F);
        LC__LI_TAKE(s->phik, (size_t)H * T * F);
        LC__LI_TAKE(s->qc, (size_t)R * qd);
        LC__LI_TAKE(s->kc, (size_t)R * kd);
        LC__LI_TAKE(s->vc, (size_t)R * kd);
        LC__LI_TAKE(s->phiqc, (size_t)H * R * F);
        LC__LI_TAKE(s->phikc, (size_t)H * R * F);
        LC__LI_TAKE(s->yh, (size_t)R * qd);
        LC__LI_TAKE(s->mrow, (size_t)H * R);
        LC__LI_TAKE(s->den, (size_t)H * R);
        LC__LI_TAKE(s->work, lc_attn_hybrid_work_floats(1, H, D, F));
        LC__LI_TAKE(s->norm_w, (size_t)(2 * L + 1) * dim);
        LC__LI_TAKE(r->logits, c->vocab_size);
        LC__LI_TAKE(s->state_mem, st_n * L);
        LC__LI_TAKE(s->logg, lp->gate_w ? (size_t)H * T : 0);    // >>gate
        LC__LI_TAKE(s->loggc, lp->gate_w ? (size_t)H * R : 0);
#undef LC__LI_TAKE
        if (!pass) {
            p = (float *)LOLCATS_MALLOC(sizeof(float) * total);
            if (!p) {
                lc_lolcats_run_free(r);
                return lc_error_set(err, LOLCATS_ERR_NOMEM,
                                    "out of memory for %zu MiB of linearized state and scratch for "
                                    "%d tokens per call; feed fewer tokens per call",
                                    total * 4 >> 20, T);
            }
            memset(p, 0, sizeof(float) * total);
        }
    }
    s->T = T;
    s->R = R;
    s->gate_floats = lp->gate_w ? (size_t)H * w : 0;
    r->n_layers = L;
    r->F = F;
    r->hybrid = lp->hybrid;
    r->max_tokens = T;
    r->state_bytes = sizeof(float) * st_n * L + sizeof(lc_decode_state) * (size_t)L;
    r->bytes = sizeof(float) * total + sizeof *s + sizeof(lc_decode_state) * (size_t)L;
    for (l = 0; l < L; l++) {
        int i;
        lc_decode_state_init_sinks(&r->layers[l], s->state_mem + st_n * l, H, Hk, D, F, w, lp->hybrid.sinks);
        for (i = 0; i < dim; i++) {
            s->norm_w[(size_t)(2 * l) * dim + i] = lc_weight_get(&m->layers[l].rms_att, i);
            s->norm_w[(size_t)(2 * l + 1) * dim + i] = lc_weight_get(&m->layers[l].rms_ffn, i);
        }
    }
    for (l = 0; l < dim; l++) s->norm_w[(size_t)2 * L * dim + l] = lc_weight_get(&m->rms_final, l);
    lc_rope_inv_freq(s->inv, c);
    if ((status = lc__li_kv_init(r, lp, c, err))) {
        lc_lolcats_run_free(r);
        return status;
    }
    return LOLCATS_OK;
}

// y (T,O) = x W^T, the model's matmul on a weight read in place.
static void lc__li_mm(const lc_ctx *cx, float *y, const float *x, const void *w, lc_dtype dt, int T,
                      int O, int I) {
    lc_matmul(cx, y, x, w, dt, T, O, I);
}

// q/k/v/o projection of layer l with its LoRA: y = x W^T + (alpha/r) (x A^T) B^T.
static void lc__li_proj(const lc_ctx *cx, const lc_lolcats *lp, lc__li_scratch *s, int l, int tg,
                        float *y, const float *x, const lc_weight *w, int T) {
    int O = (int)w->rows, I = (int)w->cols, rk = lp->lora_rank;
    const float *A = rk > 0 ? lp->lora_a[l][tg] : NULL, *Bm = rk > 0 ? lp->lora_b[l][tg] : NULL;
    lc__li_mm(cx, y, x, w->data, w->dtype, T, O, I);
    if (A && Bm) {
        float sc = lp->lora_alpha / (float)rk;
        size_t i, n = (size_t)T * O;
        lc__li_mm(cx, s->xa, x, A, LOLCATS_DTYPE_F32, T, rk, I);
        lc__li_mm(cx, s->lt, s->xa, Bm, LOLCATS_DTYPE_F32, T, O, rk);
        for (i = 0; i < n; i++) y[i] += sc * s->lt[i];
    }
}

// Pushes token t of a chunk (heads (Hk,T,D), features (H,T,F)) into the decode
// state exactly as lc_attn_hybrid_decode does: the oldest key leaves the ring
// into S, z, the new one takes its slot.
static void lc__li_push(const lc__prims *P, lc_decode_state *st, const float *kh, const float *vh,
                        const float *phik, int T, int t) {
    int H = st->H, Hk = st->Hk, D = st->D, F = st->F, w = st->window, h, g, c;
    int slot = (int)(st->pos % w);
    if (st->pos < st->sinks) lc__dec_keep_sink(st, kh + (size_t)t * D, vh + (size_t)t * D, (size_t)T * D);
    if (st->pos >= w && st->pos - w >= st->sinks) {  // sinks never enter S, z
        for (h = 0; h < H; h++) {
            const float *phik_old = st->phik_ring + ((size_t)h * w + slot) * F;
            const float *v_old = st->v_ring + ((size_t)(h / (H / Hk)) * w + slot) * D;
            for (c = 0; c < F; c++) {
                P->axpy(st->S + ((size_t)h * F + c) * D, phik_old[c], v_old, D);
                st->z[(size_t)h * F + c] += phik_old[c];
            }
        }
    }
    for (g = 0; g < Hk; g++) {
        memcpy(st->k_ring + ((size_t)g * w + slot) * D, kh + ((size_t)g * T + t) * D, sizeof(float) * D);
        memcpy(st->v_ring + ((size_t)g * w + slot) * D, vh + ((size_t)g * T + t) * D, sizeof(float) * D);
    }
    for (h = 0; h < H; h++)
        memcpy(st->phik_ring + ((size_t)h * w + slot) * F, phik + ((size_t)h * T + t) * F, sizeof(float) * F);
    st->pos++;
}

static void lc__gate_li_continue(const lc_lolcats_run *r, lc__li_scratch *s, const lc_decode_state *st,
                                 const float *wf, int rr, int n, const lc_hybrid_cfg *sw);
// Continuation chunk (n > 1 after earlier tokens): rows [ring keys in time
// order, chunk keys] through the sw prefill with (S, z) carried. Row rr + t
// sees the w most recent keys as window and, as linear keys, the ring keys
// that leave before it plus S, z: exactly the decode rule. The rr leading
// query rows are placeholders whose outputs are dropped. yh gets (H,R,D) with
// the chunk's rows at rr; returns rr.
static int lc__li_continue(const lc_lolcats_run *r, lc__li_scratch *s, const lc_decode_state *st,
                           const float *wf, int n) {
    int H = st->H, Hk = st->Hk, D = st->D, F = st->F, w = st->window;
    int nr = st->pos < w ? (int)st->pos : w, h, g, t;
    // sinks: the ns sink keys out of the ring lead (rows 0..ns-1 then match positions)
    int ns = st->pos - nr < st->sinks ? (int)(st->pos - nr) : st->sinks, rr = ns + nr, N = rr + n;
    lc_hybrid_cfg sw = r->hybrid;
    sw.variant = LOLCATS_WINDOW_SW;
    for (t = 0; t < rr; t++) {  // sink keys, then ring keys, oldest first
        int slot = (int)((st->pos - nr + t - ns) % w);
        const float *kr = t < ns ? st->k_sink + (size_t)t * D : st->k_ring + (size_t)slot * D;
        const float *vr = t < ns ? st->v_sink + (size_t)t * D : st->v_ring + (size_t)slot * D;
        size_t ld = t < ns ? (size_t)st->sinks * D : (size_t)w * D;
        for (g = 0; g < Hk; g++) {
            memcpy(s->kc + ((size_t)g * N + t) * D, kr + (size_t)g * ld, sizeof(float) * D);
            memcpy(s->vc + ((size_t)g * N + t) * D, vr + (size_t)g * ld, sizeof(float) * D);
        }
        for (h = 0; h < H; h++) {
            if (t < ns)  // never linear keys: any features do
                memset(s->phikc + ((size_t)h * N + t) * F, 0, sizeof(float) * F);
            else
                memcpy(s->phikc + ((size_t)h * N + t) * F, st->phik_ring + ((size_t)h * w + slot) * F,
                       sizeof(float) * F);
            memset(s->qc + ((size_t)h * N + t) * D, 0, sizeof(float) * D);
            memset(s->phiqc + ((size_t)h * N + t) * F, 0, sizeof(float) * F);
        }
    }
    for (g = 0; g < Hk; g++) {
        memcpy(s->kc + ((size_t)g * N + rr) * D, s->kh + (size_t)g * n * D, sizeof(float) * n * D);
        memcpy(s->vc + ((size_t)g * N + rr) * D, s->vh + (size_t)g * n * D, sizeof(float) * n * D);
    }
    for (h = 0; h < H; h++) {
        memcpy(s->qc + ((size_t)h * N + rr) * D, s->qh + (size_t)h * n * D, sizeof(float) * n * D);
        memcpy(s->phiqc + ((size_t)h * N + rr) * F, s->phiq + (size_t)h * n * F, sizeof(float) * n * F);
        memcpy(s->phikc + ((size_t)h * N + rr) * F, s->phik + (size_t)h * n * F, sizeof(float) * n * F);
    }
    if (s->gate_floats)   // >>gate
        lc__gate_li_continue(r, s, st, wf, rr, n, &sw);
    else
        lc_attn_hybrid_fwd(&r->ctx, s->yh, NULL, s->mrow, s->den, s->work, s->qc, s->kc, s->vc, s->phiqc,
                           s->phikc, wf, st->S, st->z, 1, H, Hk, N, D, F, &sw);
    return rr;
}

// >>gate: linearized inference with the gated linear state. Prefill: the
// chunk's log g (s->logg, (H,n)) through lc_hybrid_args with the checkpoint's
// masks. Continuation: the rows of lc__li_continue with log g 0 on the ring
// rows and the chunk's on its rows, each ring key's features scaled first by
// its decay from its position to the last token fed (the sum of the ring's
// log g after it): the carried S, z already decayed through that token.
static void lc__gate_li_prefill(const lc_lolcats_run *r, lc__li_scratch *s, const float *wf, int n) {
    const lc_decode_state *st = &r->layers[0];
    lc_hybrid_args x = lc_hybrid_args_default();
    x.B = 1; x.H = st->H; x.Hk = st->Hk; x.N = n; x.D = st->D; x.F = st->F;
    x.cfg = &r->hybrid;
    x.q = s->qh; x.k = s->kh; x.v = s->vh; x.phiq = s->phiq; x.phik = s->phik; x.wf = wf;
    x.log_g = s->logg;
    x.y = s->yh; x.m = s->mrow; x.den = s->den; x.work = s->work;
    lc_attn_hybrid_fwd_args(&r->ctx, &x);
}

static void lc__gate_li_continue(const lc_lolcats_run *r, lc__li_scratch *s, const lc_decode_state *st,
                                 const float *wf, int rr, int n, const lc_hybrid_cfg *sw) {
    const lc__prims *P = lc__prims_for(&r->ctx);
    int H = st->H, F = st->F, w = st->window, N = rr + n, h, t, l = (int)(st - r->layers);
    const float *ring = lc__li_logg_ring(r, l);
    lc_hybrid_args x = lc_hybrid_args_default();
    for (h = 0; h < H; h++) {
        double acc = 0;   // sum of log g over positions p_t + 1 .. pos - 1
        float *lgc = s->loggc + (size_t)h * N;
        for (t = rr - 1; t >= 0; t--) {
            int64_t p = st->pos - rr + t;
            if (t < rr - 1) acc += (double)ring[(size_t)h * w + (size_t)((p + 1) % w)];
            if (acc != 0) P->scal(s->phikc + ((size_t)h * N + t) * F, (float)exp(acc), F);
            lgc[t] = 0.0f;
        }
        memcpy(lgc + rr, s->logg + (size_t)h * n, sizeof(float) * (size_t)n);
    }
    x.B = 1; x.H = H; x.Hk = st->Hk; x.N = N; x.D = st->D; x.F = F;
    x.cfg = sw;
    x.q = s->qc; x.k = s->kc; x.v = s->vc; x.phiq = s->phiqc; x.phik = s->phikc; x.wf = wf;
    x.kv_state = st->S; x.k_state = st->z; x.log_g = s->loggc;
    x.y = s->yh; x.m = s->mrow; x.den = s->den; x.work = s->work;
    lc_attn_hybrid_fwd_args(&r->ctx, &x);
}

// The linearized side of the one block (>>llama-block): projections with
// LoRA (lc__li_proj); attention is the hybrid of layer l against its decode
// state: prefill at position 0, the decode kernel for one token, the carried
// sw prefill (lc__li_continue) for a later chunk; every token then enters the
// state.
typedef struct lc__li_blk {
    lc_lolcats_run *r;
    const lc_lolcats *lp;
} lc__li_blk;

static void lc__li_block_proj(const lc__block *b, int tg, float *y, float *xa, const float *x,
                              const lc_weight *w, int T) {
    const lc__li_blk *u = (const lc__li_blk *)b->user;
    (void)xa;
    lc__li_proj(b->ctx, u->lp, (lc__li_scratch *)u->r->priv, b->l, tg, y, x, w, T);
}

// A kept softmax layer: k, v into its cache at r->pos, the model's causal
// softmax attention over it (as lc_model_forward).
static void lc__li_softmax_attn(const lc__block *b, lc_lolcats_run *r, int n) {
    lc__li_scratch *s = (lc__li_scratch *)r->priv;
    const lc_model_config *c = b->c;
    int Hk = c->n_kv_heads, D = c->head_dim, pos0 = (int)r->pos;
    float *kc = s->kv[b->l], *vc = kc + (size_t)Hk * (size_t)s->kv_cap * D;
    lc__kv_store(kc, b->kh, Hk, n, D, s->kv_cap, pos0);
    lc__kv_store(vc, b->vh, Hk, n, D, s->kv_cap, pos0);
    lc__model_attn(b->ctx, b->ym, s->att, b->qh, kc, vc, c->n_heads, Hk, n, D, s->kv_cap, pos0,
                   c->sliding_window);
    r->layers[b->l].pos += n;   // its (unused) decode state keeps the run's position
}

static void lc__li_block_attn(const lc__block *b, int n) {
    const lc__li_blk *u = (const lc__li_blk *)b->user;
    lc_lolcats_run *r = u->r;
    const lc_lolcats *lp = u->lp;
    lc__li_scratch *s = (lc__li_scratch *)r->priv;
    const lc__prims *P = lc__prims_for(&r->ctx);
    int l = b->l, H = b->c->n_heads, Hk = b->c->n_kv_heads, D = b->c->head_dim, f = lp->feature_dim;
    int F = r->F, rows = n, off = 0, t, h;
    int64_t pos0 = r->pos;
    lc_decode_state *st = &r->layers[l];
    const float *wf = lp->wf + (size_t)l * H, *y = s->yh;
    size_t fo = (size_t)l * H * D * f, qd = (size_t)H * D;
    if (s->soft && s->soft[l]) {
        lc__li_softmax_attn(b, r, n);
        return;
    }
    lc_fmap_fwd(&r->ctx, s->phiq, s->qh, lp->fmap_q + fo, lp->fbq ? lp->fbq + (size_t)l * H : NULL, 1, H, H,
                n, D, f, &lp->fmap);
    lc_fmap_fwd(&r->ctx, s->phik, s->kh, lp->fmap_k + fo, lp->fbk ? lp->fbk + (size_t)l * H : NULL, 1, H, Hk,
                n, D, f, &lp->fmap);
    if (lp->gate_w)   // >>gate: log g (H,n) of the chunk from the layer's normed input
        lc_gate_proj_fwd(&r->ctx, s->logg, b->xn, lp->gate_w + (size_t)l * H * b->c->dim, lp->gate_b + (size_t)l * H,
                         1, H, n, b->c->dim);
    if (pos0 == 0 && lp->gate_w) {
        lc__gate_li_prefill(r, s, wf, n);
    } else if (pos0 > 0 && n == 1 && lp->gate_w) {
        lc_attn_hybrid_decode_gated(&r->ctx, s->yh, st, lc__li_logg_ring(r, l), s->qh, s->kh, s->vh, s->phiq,
                                    s->phik, wf, s->logg, lp->hybrid.affine);
    } else if (pos0 == 0) {  // prefill with the checkpoint's masks
        lc_hybrid_cfg hc = lp->hybrid;
        lc_attn_hybrid_fwd(&r->ctx, s->yh, NULL, s->mrow, s->den, s->work, s->qh, s->kh, s->vh,
                           s->phiq, s->phik, wf, NULL, NULL, 1, H, Hk, n, D, F, &hc);
    } else if (n == 1) {
        lc_attn_hybrid_decode(&r->ctx, s->yh, st, s->qh, s->kh, s->vh, s->phiq, s->phik, wf,
                              lp->hybrid.affine);
    } else {
        off = lc__li_continue(r, s, st, wf, n);
        rows = off + n;
    }
    if (!(pos0 > 0 && n == 1))  // the decode kernel pushed its token itself
        for (t = 0; t < n; t++) {
            if (lp->gate_w) lc__gate_dec_pre(P, st, lc__li_logg_ring(r, l), s->logg + t, (size_t)n);  // >>gate
            lc__li_push(P, st, s->kh, s->vh, s->phik, n, t);
        }
    for (t = 0; t < n; t++)  // heads (H,rows,D), chunk rows from off -> (n, H*D)
        for (h = 0; h < H; h++)
            memcpy(b->ym + (size_t)t * qd + (size_t)h * D, y + ((size_t)h * rows + off + t) * D,
                   sizeof(float) * D);
}

static void lc__li_block(lc__block *b, lc__li_blk *u, const lc_model *m, const lc_lolcats *lp,
                         lc_lolcats_run *r, int l) {
    const lc_model_config *c = &m->cfg;
    lc__li_scratch *s = (lc__li_scratch *)r->priv;
    u->r = r; u->lp = lp;
    memset(b, 0, sizeof *b);
    b->ctx = &r->ctx; b->c = c; b->lw = &m->layers[l]; b->l = l;
    b->norm_att = s->norm_w + (size_t)(2 * l) * c->dim;
    b->norm_ffn = s->norm_w + (size_t)(2 * l + 1) * c->dim;
    b->cos_t = s->cos_t; b->sin_t = s->sin_t;
    b->xn = b->o = b->hn = b->mo = s->xb;
    b->q = s->q; b->k = s->k; b->v = s->v;
    b->qh = s->qh; b->kh = s->kh; b->vh = s->vh;
    b->ym = s->ym;
    b->h = s->x;
    b->g = b->hh = s->hb; b->u = s->hb2;
    b->proj = lc__li_block_proj;
    b->attn = lc__li_block_attn;
    b->user = u;
}

LCIMPL lc_status lc_lolcats_forward(const lc_model *m, const lc_lolcats *lp, lc_lolcats_run *r,
                                    const int *tokens, int n, float *logits_all, lc_error *err) {
    const lc_model_config *c = &m->cfg;
    lc__li_scratch *s = (lc__li_scratch *)r->priv;
    int dim = c->dim, D = c->head_dim, V = c->vocab_size, L = c->n_layers, t, l, i;
    int64_t pos0 = r->pos;
    lc_status st;
    if (n <= 0) return LOLCATS_OK;
    if (n > r->max_tokens)
        return lc_error_set(err, LOLCATS_ERR_ARG, "lc_lolcats_forward: %d tokens, the run holds %d per call",
                            n, r->max_tokens);
    if (lp->hybrid.window != r->hybrid.window || lp->n_layers != L)
        return lc_error_set(err, LOLCATS_ERR_ARG,
                            "lc_lolcats_forward: the run was made for window %d, the parameters say %d",
                            r->hybrid.window, lp->hybrid.window);
    if (lp->hybrid.sinks != r->hybrid.sinks)
        return lc_error_set(err, LOLCATS_ERR_ARG, "lc_lolcats_forward: the run was made for %d attention "
                            "sinks, the parameters say %d: make the run with these parameters",
                            r->hybrid.sinks, lp->hybrid.sinks);
    for (l = 0; l < L; l++)
        if (r->layers[l].pos != pos0)
            return lc_error_set(err, LOLCATS_ERR_ARG, "layer %d state at position %lld, run at %lld: "
                                "set both or lc_lolcats_run_reset", l, (long long)r->layers[l].pos,
                                (long long)pos0);
    for (t = 0; t < n; t++) {
        if (tokens[t] < 0 || tokens[t] >= V)
            return lc_error_set(err, LOLCATS_ERR_ARG, "token %d at index %d is outside the vocab (%d)",
                                tokens[t], t, V);
        for (i = 0; i < dim; i++)
            s->x[(size_t)t * dim + i] = lc_weight_get(&m->tok_emb, (int64_t)tokens[t] * dim + i);
    }
    if (s->kv && (st = lc__li_kv_reserve(r, c->n_kv_heads, D, c->n_heads, pos0 + n, err))) return st;
    for (t = 0; t < n; t++)  // RoPE angles of positions pos0..pos0+n-1, as the model's table
        for (i = 0; i < D / 2; i++) {
            float ang = (float)(pos0 + t) * s->inv[i];
            s->cos_t[(size_t)t * (D / 2) + i] = (float)cos((double)ang);
            s->sin_t[(size_t)t * (D / 2) + i] = (float)sin((double)ang);
        }
    for (l = 0; l < L; l++) {
        lc__block b;
        lc__li_blk u;
        lc__li_block(&b, &u, m, lp, r, l);
        lc__block_fwd(&b, s->x, s->x, n);
    }
    r->pos = pos0 + n;
    if (logits_all) {
        lc_rmsnorm_fwd(s->xb, NULL, s->x, s->norm_w + (size_t)2 * L * dim, n, dim, c->norm_eps);
        lc__li_mm(&r->ctx, logits_all, s->xb, m->wcls.data, m->wcls.dtype, n, V, dim);
        memcpy(r->logits, logits_all + (size_t)(n - 1) * V, sizeof(float) * V);
    } else {
        lc_rmsnorm_fwd(s->xb, NULL, s->x + (size_t)(n - 1) * dim, s->norm_w + (size_t)2 * L * dim, 1, dim,
                       c->norm_eps);
        lc__li_mm(&r->ctx, r->logits, s->xb, m->wcls.data, m->wcls.dtype, 1, V, dim);
    }
    return LOLCATS_OK;
}

// >>ref
LCIMPL lc_ref_case lc_ref_case_default(void) {
    lc_ref_case rc;
    memset(&rc, 0, sizeof rc);
    rc.op = LOLCATS_OP_HYBRID;
    rc.fmap = lc_fmap_cfg_default();
    rc.hybrid = lc_hybrid_cfg_default();
    rc.linear_eps = 1e-12f;
    rc.factor = 1.0f;
    return rc;
}

LCIMPL void lc_ref_out_free(lc_ref_out *out) {
    if (!out) return;
    LOLCATS_FREE(out->y); LOLCATS_FREE(out->a);
    LOLCATS_FREE(out->dq); LOLCATS_FREE(out->dk); LOLCATS_FREE(out->dv);
    LOLCATS_FREE(out->dwq); LOLCATS_FREE(out->dwk); LOLCATS_FREE(out->dbq);
    LOLCATS_FREE(out->dbk); LOLCATS_FREE(out->dwf); LOLCATS_FREE(out->dkv_state);
    LOLCATS_FREE(out->dk_state); LOLCATS_FREE(out->loss); LOLCATS_FREE(out->dpred);
    LOLCATS_FREE(out->dlog_g);
    memset(out, 0, sizeof *out);
}

static float *lc__ref_zalloc(size_t n, int *fail) {
    float *p = (float *)LOLCATS_MALLOC(sizeof(float) * (n ? n : 1));
    if (!p) *fail = 1;
    else memset(p, 0, sizeof(float) * (n ? n : 1));
    return p;
}

// The loss ops (MSE, cross-entropy): out->loss and out->dpred.
static lc_status lc__ref_loss(const lc_ref_case *rc, lc_ref_out *out, lc_error *err) {
    int fail = 0;
    if (!rc->pred || !rc->target || !rc->n_pred ||
        (rc->op == LOLCATS_OP_XENT && (rc->cols <= 0 || rc->n_pred % (size_t)rc->cols)))
        return lc_error_set(err, LOLCATS_ERR_ARG, "loss op needs pred and target of equal size%s",
                            rc->op == LOLCATS_OP_XENT ? " (whole rows)" : "");
    out->loss = lc__ref_zalloc(1, &fail);
    out->dpred = lc__ref_zalloc(rc->n_pred, &fail);
    if (fail) {
        lc_ref_out_free(out);
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory for %zu loss inputs", rc->n_pred);
    }
    out->loss[0] = (float)(rc->op == LOLCATS_OP_MSE
                               ? lc_loss_mse(out->dpred, rc->pred, rc->target, rc->n_pred, rc->factor)
                               : lc_loss_xent(out->dpred, rc->pred, rc->target,
                                              rc->n_pred / (size_t)rc->cols, rc->cols, rc->factor));
    return LOLCATS_OK;
}

// The attention ops' arguments: dims, the inputs each op needs, what combines.
static lc_status lc__ref_check(const lc_ref_case *rc, lc_error *err) {
    int B = rc->B, H = rc->H, Hk = rc->Hk, N = rc->N, D = rc->D, f = rc->f;
    int lin = rc->op != LOLCATS_OP_SOFTMAX;
    if (B <= 0 || H <= 0 || Hk <= 0 || N <= 0 || D <= 0 || H % Hk || (lin && f <= 0))
        return lc_error_set(err, LOLCATS_ERR_ARG,
                            "bad dims B=%d H=%d Hk=%d N=%d D=%d f=%d: all must be positive and "
                            "H a multiple of Hk", B, H, Hk, N, D, f);
    if (rc->op < LOLCATS_OP_SOFTMAX || rc->op > LOLCATS_OP_HYBRID)
        return lc_error_set(err, LOLCATS_ERR_ARG, "unknown op %d", rc->op);
    if (lin && (!rc->wq || !rc->wk))
        return lc_error_set(err, LOLCATS_ERR_ARG, "linear and hybrid ops need both feature maps");
    if (rc->op == LOLCATS_OP_HYBRID && (!rc->wf || rc->hybrid.window <= 0))
        return lc_error_set(err, LOLCATS_ERR_ARG, "hybrid op needs window_factors and window > 0");
    if (rc->op == LOLCATS_OP_LINEAR && rc->da)
        return lc_error_set(err, LOLCATS_ERR_ARG, "linear_attention has no attention-weight output: drop da");
    if (!!rc->kv_state != !!rc->k_state || (rc->kv_state && rc->op != LOLCATS_OP_HYBRID))
        return lc_error_set(err, LOLCATS_ERR_ARG, "kv_state and k_state go together, hybrid op only");
    if (D > 1024 || f > 1024)
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "head dim %d / feature dim %d above 1024", D, f);
    if (rc->log_g && rc->op != LOLCATS_OP_HYBRID)
        return lc_error_set(err, LOLCATS_ERR_ARG, "log_g (the gated linear state) applies to the hybrid op only");
    return LOLCATS_OK;
}

// lc_ref_eval's temporaries: feature maps and their gradients, what the forward
// saves (row max / normalizer), the fast forms' work (state), a zero dy.
typedef struct lc__ref_tmp {
    float *phiq, *phik, *dphiq, *dphik;  // (B,H,N,F)
    float *save1, *save2;                // (B,H,N)
    float *state, *dyz;
    int F, lin, grad;
    size_t nrow;
} lc__ref_tmp;

static void lc__ref_tmp_free(lc__ref_tmp *tp) {
    LOLCATS_FREE(tp->phiq); LOLCATS_FREE(tp->phik); LOLCATS_FREE(tp->dphiq); LOLCATS_FREE(tp->dphik);
    LOLCATS_FREE(tp->save1); LOLCATS_FREE(tp->save2); LOLCATS_FREE(tp->state); LOLCATS_FREE(tp->dyz);
}

// The outputs rc asks for and the temporaries, zeroed; returns 1 when one
// allocation failed.
static int lc__ref_alloc(const lc_ctx *ctx, const lc_ref_case *rc, lc_ref_out *out,
                         lc__ref_tmp *tp) {
    int B = rc->B, H = rc->H, N = rc->N, D = rc->D, F = tp->F, fail = 0, lin = tp->lin;
    size_t nq = (size_t)B * H * N * D, nk = (size_t)B * rc->Hk * N * D, nrow = tp->nrow;
    size_t nphi = nrow * F, nw = (size_t)H * D * rc->f;
    out->y = lc__ref_zalloc(nq, &fail);
    if (rc->op != LOLCATS_OP_LINEAR && (!rc->skip_weights || rc->da)) out->a = lc__ref_zalloc(nrow * N, &fail);
    tp->save1 = lc__ref_zalloc(nrow, &fail);
    tp->save2 = lc__ref_zalloc(nrow, &fail);
    if (lin) {
        tp->phiq = lc__ref_zalloc(nphi, &fail);
        tp->phik = lc__ref_zalloc(nphi, &fail);
    }
    if (tp->grad) {
        out->dq = lc__ref_zalloc(nq, &fail);
        out->dk = lc__ref_zalloc(nk, &fail);
        out->dv = lc__ref_zalloc(nk, &fail);
        if (lin) {
            tp->dphiq = lc__ref_zalloc(nphi, &fail);
            tp->dphik = lc__ref_zalloc(nphi, &fail);
            out->dwq = lc__ref_zalloc(nw, &fail);
            out->dwk = lc__ref_zalloc(nw, &fail);
            if (rc->bq) out->dbq = lc__ref_zalloc((size_t)H, &fail);
            if (rc->bk) out->dbk = lc__ref_zalloc((size_t)H, &fail);
        }
        if (rc->op == LOLCATS_OP_HYBRID) out->dwf = lc__ref_zalloc((size_t)H, &fail);
        if (rc->log_g) out->dlog_g = lc__ref_zalloc(nrow, &fail);
        if (rc->kv_state) {
            out->dkv_state = lc__ref_zalloc((size_t)B * H * F * D, &fail);
            out->dk_state = lc__ref_zalloc((size_t)B * H * F, &fail);
        }
        if (!rc->dy) tp->dyz = lc__ref_zalloc(nq, &fail);
    }
    if (rc->op == LOLCATS_OP_HYBRID && ctx->simd != LOLCATS_SIMD_SCALAR)
        tp->state = lc__ref_zalloc(lc_attn_hybrid_work_floats(B, H, D, F), &fail);
    if (rc->op == LOLCATS_OP_LINEAR && rc->linear_state) {
        tp->state = lc__ref_zalloc(rc->dy ? lc_attn_linear_state_work_floats(B, H, F, D)
                                      : (size_t)B * H * F * D, &fail);
    }
    return fail;
}

// The gated hybrid op (>>gate): the same forms through the args struct.
static void lc__ref_gated(const lc_ctx *ctx, const lc_ref_case *rc, lc_ref_out *out,
                          lc__ref_tmp *tp) {
    lc_hybrid_args x = lc_hybrid_args_default();
    x.B = rc->B; x.H = rc->H; x.Hk = rc->Hk; x.N = rc->N; x.D = rc->D; x.F = tp->F;
    x.cfg = &rc->hybrid;
    x.q = rc->q; x.k = rc->k; x.v = rc->v; x.phiq = tp->phiq; x.phik = tp->phik; x.wf = rc->wf;
    x.kv_state = rc->kv_state; x.k_state = rc->k_state; x.log_g = rc->log_g;
    x.y = out->y; x.a = out->a; x.m = tp->save1; x.den = tp->save2;
    x.work = out->a ? NULL : tp->state;
    lc_attn_hybrid_fwd_args(ctx, &x);
    if (out->a && tp->state) {  // y and the gradients from the O(N) form, as ungated
        x.a = NULL; x.work = tp->state;
        lc_attn_hybrid_fwd_args(ctx, &x);
    }
    x.work = tp->state; x.dy = rc->dy; x.da = rc->da;
    x.dq = out->dq; x.dk = out->dk; x.dv = out->dv; x.dphiq = tp->dphiq; x.dphik = tp->dphik;
    x.dwf = out->dwf; x.dkv_state = out->dkv_state; x.dk_state = out->dk_state;
    x.dlog_g = out->dlog_g;
    if (tp->grad) lc_attn_hybrid_bwd_args(ctx, &x);
}

// The hybrid op: the attention weights need the quadratic form; y and the
// gradients come from the fast form unless this is the scalar reference run
// (without a on a SIMD path only the fast form runs: O(N) memory).
static void lc__ref_hybrid(const lc_ctx *ctx, const lc_ref_case *rc, lc_ref_out *out,
                           lc__ref_tmp *tp) {
    int B = rc->B, H = rc->H, Hk = rc->Hk, N = rc->N, D = rc->D, F = tp->F, fail = 0;
    size_t nrow = tp->nrow;
    if (rc->log_g) {
        lc__ref_gated(ctx, rc, out, tp);
        return;
    }
    if (out->a || !tp->state)
        lc_attn_hybrid_fwd(ctx, out->y, out->a, tp->save1, tp->save2, NULL, rc->q, rc->k, rc->v,
                           tp->phiq, tp->phik, rc->wf, rc->kv_state, rc->k_state, B, H, Hk, N, D,
                           F, &rc->hybrid);
    if (tp->state) {
        float *m2 = lc__ref_zalloc(nrow, &fail), *den2 = lc__ref_zalloc(nrow, &fail);
        if (!fail) {
            lc_attn_hybrid_fwd(ctx, out->y, NULL, m2, den2, tp->state, rc->q, rc->k, rc->v,
                               tp->phiq, tp->phik, rc->wf, rc->kv_state, rc->k_state, B, H, Hk, N,
                               D, F, &rc->hybrid);
            memcpy(tp->save1, m2, sizeof(float) * nrow);
            memcpy(tp->save2, den2, sizeof(float) * nrow);
        }
        LOLCATS_FREE(m2);
        LOLCATS_FREE(den2);
    }
    if (tp->grad)
        lc_attn_hybrid_bwd(ctx, out->dq, out->dk, out->dv, tp->dphiq, tp->dphik, out->dwf,
                           out->dkv_state, out->dk_state, tp->state, rc->dy, rc->da, out->y,
                           tp->save1, tp->save2, rc->q, rc->k, rc->v, tp->phiq, tp->phik, rc->wf,
                           rc->kv_state, rc->k_state, B, H, Hk, N, D, F, &rc->hybrid);
}

// One op of rc on the path ctx selects: the arguments checked, the outputs
// allocated, the feature maps, the op forward (and backward with dy or da),
// the feature maps' backward.
LCIMPL lc_status lc_ref_eval(const lc_ctx *ctx, const lc_ref_case *rc, lc_ref_out *out,
                             lc_error *err) {
    int B = rc->B, H = rc->H, Hk = rc->Hk, N = rc->N, D = rc->D, f = rc->f, F, grad, lin;
    lc__ref_tmp tp;
    lc_status st;
    memset(out, 0, sizeof *out);
    if (rc->op == LOLCATS_OP_MSE || rc->op == LOLCATS_OP_XENT) return lc__ref_loss(rc, out, err);
    if ((st = lc__ref_check(rc, err)) != LOLCATS_OK) return st;
    memset(&tp, 0, sizeof tp);
    tp.F = F = lc_fmap_out_dim(&rc->fmap, f);
    tp.grad = grad = rc->dy || rc->da;
    tp.lin = lin = rc->op != LOLCATS_OP_SOFTMAX;
    tp.nrow = (size_t)B * H * N;
    if (lc__ref_alloc(ctx, rc, out, &tp)) {
        lc__ref_tmp_free(&tp);
        lc_ref_out_free(out);
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory for B=%d H=%d N=%d D=%d", B, H, N, D);
    }
    if (lin) {
        lc_fmap_fwd(ctx, tp.phiq, rc->q, rc->wq, rc->bq, B, H, H, N, D, f, &rc->fmap);
        lc_fmap_fwd(ctx, tp.phik, rc->k, rc->wk, rc->bk, B, H, Hk, N, D, f, &rc->fmap);
    }
    switch (rc->op) {
    case LOLCATS_OP_SOFTMAX:
        lc_attn_softmax_fwd(ctx, out->y, tp.save1, rc->q, rc->k, rc->v, B, H, Hk, N, D);
        if (out->a) lc_attn_softmax_weights(ctx, out->a, rc->q, rc->k, B, H, Hk, N, D);
        if (grad)
            lc_attn_softmax_bwd(ctx, out->dq, out->dk, out->dv, rc->dy ? rc->dy : tp.dyz, rc->da,
                                out->y, tp.save1, rc->q, rc->k, rc->v, B, H, Hk, N, D);
        break;
    case LOLCATS_OP_LINEAR:
        if (rc->linear_state) {
            float *S = tp.state;  // fwd: the final state lands here (overwritten by bwd)
            lc_attn_linear_state_fwd(ctx, out->y, tp.save2, S, NULL, tp.phiq, tp.phik, rc->v, B, H,
                                     Hk, N, F, D, rc->linear_eps);
            if (grad)
                lc_attn_linear_state_bwd(ctx, tp.dphiq, tp.dphik, out->dv, tp.state, rc->dy, out->y,
                                         tp.save2, tp.phiq, tp.phik, rc->v, B, H, Hk, N, F, D,
                                         rc->linear_eps);
        } else {
            lc_attn_linear_fwd(ctx, out->y, tp.save2, tp.phiq, tp.phik, rc->v, B, H, Hk, N, F, D,
                               rc->linear_eps);
            if (grad)
                lc_attn_linear_bwd(ctx, tp.dphiq, tp.dphik, out->dv, rc->dy, out->y, tp.save2,
                                   tp.phiq, tp.phik, rc->v, B, H, Hk, N, F, D, rc->linear_eps);
        }
        break;
    default:
        lc__ref_hybrid(ctx, rc, out, &tp);
        break;
    }
    if (grad && lin) {
        lc_fmap_bwd(ctx, out->dq, out->dwq, out->dbq, tp.dphiq, rc->q, rc->wq, rc->bq, B, H, H, N,
                    D, f, &rc->fmap);
        lc_fmap_bwd(ctx, out->dk, out->dwk, out->dbk, tp.dphik, rc->k, rc->wk, rc->bk, B, H, Hk, N,
                    D, f, &rc->fmap);
    }
    lc__ref_tmp_free(&tp);
    return LOLCATS_OK;
}

// Fetches tensor `name` as float32 into a slice of *pool, checking its shape
// against want[0..nd) (a want of -1 matches anything). Shapes (1,H,1,1) are
// accepted where (H) is expected, as the original stores them.
static lc_status lc__ref_get(const lc_st_file *in, const char *name, int required, int nd,
                             const int64_t *want, float **pool, size_t *used, size_t cap,
                             const float **dst, lc_error *err) {
    const lc_tensor *t = lc_st_find(in, name);
    size_t n, want_n = 1;
    int d, ok = 1;
    *dst = NULL;
    if (!t) {
        if (!required) return LOLCATS_OK;
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: missing tensor '%s' (see README: lolcats ref inputs)",
                            lc_st_path(in), name);
    }
    n = lc_tensor_numel(t);
    for (d = 0; d < nd; d++) want_n *= (size_t)(want[d] < 0 ? 1 : want[d]);
    if (nd == 1 && t->ndim == 4 && t->shape[0] == 1 && t->shape[2] == 1 && t->shape[3] == 1)
        ok = t->shape[1] == want[0];
    else if (t->ndim != nd) ok = 0;
    else
        for (d = 0; d < nd; d++) ok &= want[d] < 0 || t->shape[d] == want[d];
    if (!ok) {
        char got[128], exp[128];
        int p = 0, q = 0;
        for (d = 0; d < t->ndim && p < 100; d++) p += snprintf(got + p, sizeof got - (size_t)p, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        if (!t->ndim) snprintf(got, sizeof got, "scalar");
        for (d = 0; d < nd && q < 100; d++) q += snprintf(exp + q, sizeof exp - (size_t)q, d ? ",%lld" : "%lld", (long long)want[d]);
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor '%s' has shape (%s), expected (%s)",
                            lc_st_path(in), name, got, exp);
    }
    (void)want_n;
    if (*used + n > cap)
        return lc_error_set(err, LOLCATS_ERR_ARG, "%s: internal: tensor pool too small", lc_st_path(in));
    if (lc_tensor_to_f32(t, *pool + *used, err) != LOLCATS_OK) return err ? err->code : LOLCATS_ERR_FORMAT;
    *dst = *pool + *used;
    *used += n;
    return LOLCATS_OK;
}

static lc_status lc__ref_meta_int(const lc_st_file *in, const char *key, int def, int lo, int hi,
                                  int *out, lc_error *err) {
    const char *s = lc_st_meta(in, key);
    char *end;
    long v;
    *out = def;
    if (!s) return LOLCATS_OK;
    v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: metadata %s='%s' must be an integer in [%d, %d]",
                            lc_st_path(in), key, s, lo, hi);
    *out = (int)v;
    return LOLCATS_OK;
}

static lc_status lc__ref_meta_float(const lc_st_file *in, const char *key, float def, float *out,
                                    lc_error *err) {
    const char *s = lc_st_meta(in, key);
    char *end;
    double v;
    *out = def;
    if (!s) return LOLCATS_OK;
    v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || !isfinite((float)v))
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: metadata %s='%s' is not a finite float",
                            lc_st_path(in), key, s);
    *out = (float)v;
    return LOLCATS_OK;
}

LCIMPL lc_status lc_ref_case_from_st(const lc_st_file *in, lc_ref_case *rc, float **owned,
                                     lc_error *err) {
    static const char *const ops[] = {"softmax_attention", "linear_attention", "hybrid_attention",
                                      "mse_loss", "xent_loss"};
    const char *op = lc_st_meta(in, "op"), *s;
    const lc_tensor *tq, *tk;
    size_t cap = 0, used = 0;
    int i, F, e;
    float *pool;
    lc_status st = LOLCATS_OK;
    *rc = lc_ref_case_default();
    *owned = NULL;
    if (!op)
        return lc_error_set(err, LOLCATS_ERR_FORMAT,
                            "%s: no __metadata__ 'op' (one of softmax_attention, linear_attention, "
                            "hybrid_attention, mse_loss, xent_loss)", lc_st_path(in));
    for (i = 0; i < 5 && strcmp(op, ops[i]); i++) {}
    if (i == 5)
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED,
                            "%s: unknown op '%s' (use softmax_attention, linear_attention, "
                            "hybrid_attention, mse_loss or xent_loss)", lc_st_path(in), op);
    rc->op = i;
    for (i = 0; i < lc_st_count(in); i++) cap += lc_tensor_numel(lc_st_tensor_at(in, i));
    pool = (float *)LOLCATS_MALLOC(sizeof(float) * (cap ? cap : 1));
    if (!pool) return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", lc_st_path(in));
    *owned = pool;
    if ((st = lc__ref_meta_float(in, "factor", rc->op == LOLCATS_OP_MSE ? 1000.0f : 1.0f, &rc->factor, err))) return st;
    if (rc->op == LOLCATS_OP_MSE || rc->op == LOLCATS_OP_XENT) {
        const char *pn = rc->op == LOLCATS_OP_MSE ? "pred" : "a_pred";
        const char *tn = rc->op == LOLCATS_OP_MSE ? "target" : "a_true";
        const lc_tensor *tp = lc_st_find(in, pn);
        int64_t shp[LOLCATS_MAX_DIMS];
        if (!tp)
            return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: missing tensor '%s'", lc_st_path(in), pn);
        for (i = 0; i < tp->ndim; i++) shp[i] = tp->shape[i];
        rc->n_pred = lc_tensor_numel(tp);
        rc->cols = tp->ndim ? (int)tp->shape[tp->ndim - 1] : 1;
        if ((st = lc__ref_get(in, pn, 1, tp->ndim, shp, &pool, &used, cap, &rc->pred, err))) return st;
        if ((st = lc__ref_get(in, tn, 1, tp->ndim, shp, &pool, &used, cap, &rc->target, err))) return st;
        return LOLCATS_OK;
    }
    tq = lc_st_find(in, "q");
    tk = lc_st_find(in, "k");
    if (!tq || !tk || tq->ndim != 4 || tk->ndim != 4)
        return lc_error_set(err, LOLCATS_ERR_FORMAT,
                            "%s: need 4-d tensors 'q' (B,H,N,D) and 'k', 'v' (B,Hk,N,D)%s", lc_st_path(in),
                            !tq || !tk ? " (missing)" : " (wrong rank)");
    rc->B = (int)tq->shape[0]; rc->H = (int)tq->shape[1]; rc->N = (int)tq->shape[2]; rc->D = (int)tq->shape[3];
    rc->Hk = (int)tk->shape[1];
    if (rc->B <= 0 || rc->H <= 0 || rc->Hk <= 0 || rc->N <= 0 || rc->D <= 0 || rc->H % rc->Hk)
        return lc_error_set(err, LOLCATS_ERR_FORMAT,
                            "%s: q (B=%d,H=%d,N=%d,D=%d) and k (Hk=%d): sizes must be positive and H a "
                            "multiple of Hk", lc_st_path(in), rc->B, rc->H, rc->N, rc->D, rc->Hk);
    {
        int64_t wq[4], wk[4];
        wq[0] = rc->B; wq[1] = rc->H; wq[2] = rc->N; wq[3] = rc->D;
        wk[0] = rc->B; wk[1] = rc->Hk; wk[2] = rc->N; wk[3] = rc->D;
        if ((st = lc__ref_get(in, "q", 1, 4, wq, &pool, &used, cap, &rc->q, err))) return st;
        if ((st = lc__ref_get(in, "k", 1, 4, wk, &pool, &used, cap, &rc->k, err))) return st;
        if ((st = lc__ref_get(in, "v", 1, 4, wk, &pool, &used, cap, &rc->v, err))) return st;
        if ((st = lc__ref_get(in, "dy", 0, 4, wq, &pool, &used, cap, &rc->dy, err))) return st;
    }
    if (rc->op != LOLCATS_OP_LINEAR) {
        int64_t wa[4];
        wa[0] = rc->B; wa[1] = rc->H; wa[2] = rc->N; wa[3] = rc->N;
        if ((st = lc__ref_get(in, "da", 0, 4, wa, &pool, &used, cap, &rc->da, err))) return st;
    } else if (lc_st_find(in, "da")) {
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: 'da' given but linear_attention has no "
                            "attention-weight output", lc_st_path(in));
    }
    if (rc->op == LOLCATS_OP_SOFTMAX) return LOLCATS_OK;

    s = lc_st_meta(in, "feature_map");
    if (s && (e = lc_fmap_act_parse(s)) < 0)
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED,
                            "%s: unknown feature_map '%s' (softmax_dim, exp_dim, pos_elu or relu)", lc_st_path(in), s);
    if (s) rc->fmap.act = (lc_fmap_act)e;
    if ((st = lc__ref_meta_int(in, "halfspace", 0, 0, 1, &rc->fmap.halfspace, err))) return st;
    if ((st = lc__ref_meta_float(in, "eps", 1e-12f, &rc->fmap.eps, err))) return st;
    if ((st = lc__ref_meta_float(in, "linear_eps", 1e-12f, &rc->linear_eps, err))) return st;
    {
        const lc_tensor *tw = lc_st_find(in, "feature_map_q.weight");
        int64_t ww[3], wb[1], wsz[4], wz[3];
        if (!tw || tw->ndim != 3)
            return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: need 'feature_map_q.weight' of shape (H,D,f)%s",
                                lc_st_path(in), tw ? " (wrong rank)" : " (missing)");
        rc->f = (int)tw->shape[2];
        ww[0] = rc->H; ww[1] = rc->D; ww[2] = rc->f;
        wb[0] = rc->H;
        if (rc->f <= 0 || rc->f > 1024)
            return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: feature dim f=%d out of range [1, 1024]", lc_st_path(in), rc->f);
        if ((st = lc__ref_get(in, "feature_map_q.weight", 1, 3, ww, &pool, &used, cap, &rc->wq, err))) return st;
        if ((st = lc__ref_get(in, "feature_map_k.weight", 1, 3, ww, &pool, &used, cap, &rc->wk, err))) return st;
        if ((st = lc__ref_get(in, "feature_map_q.bias", 0, 1, wb, &pool, &used, cap, &rc->bq, err))) return st;
        if ((st = lc__ref_get(in, "feature_map_k.bias", 0, 1, wb, &pool, &used, cap, &rc->bk, err))) return st;
        if (rc->op == LOLCATS_OP_LINEAR) return LOLCATS_OK;
        F = lc_fmap_out_dim(&rc->fmap, rc->f);
        s = lc_st_meta(in, "variant");
        if (s && strcmp(s, "sw") && strcmp(s, "tk"))
            return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "%s: unknown variant '%s' (sw or tk)", lc_st_path(in), s);
        rc->hybrid.variant = s && !strcmp(s, "sw") ? LOLCATS_WINDOW_SW : LOLCATS_WINDOW_TK;
        if ((st = lc__ref_meta_int(in, "window", 64, 1, 1 << 30, &rc->hybrid.window, err))) return st;
        if ((st = lc__ref_meta_int(in, "affine", 0, 0, 1, &rc->hybrid.affine, err))) return st;
        if ((st = lc__ref_meta_int(in, "sinks", 0, 0, 1 << 30, &rc->hybrid.sinks, err))) return st;
        if ((st = lc__ref_get(in, "window_factors", 1, 1, wb, &pool, &used, cap, &rc->wf, err))) return st;
        wsz[0] = rc->B; wsz[1] = rc->H; wsz[2] = F; wsz[3] = rc->D;
        wz[0] = rc->B; wz[1] = rc->H; wz[2] = F;
        if ((st = lc__ref_get(in, "kv_state", 0, 4, wsz, &pool, &used, cap, &rc->kv_state, err))) return st;
        if ((st = lc__ref_get(in, "k_state", 0, 3, wz, &pool, &used, cap, &rc->k_state, err))) return st;
        if (!!rc->kv_state != !!rc->k_state)
            return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: 'kv_state' and 'k_state' must be given together",
                                lc_st_path(in));
        wz[2] = rc->N;  // the gated linear state's log g (>>gate)
        if ((st = lc__ref_get(in, "log_g", 0, 3, wz, &pool, &used, cap, &rc->log_g, err))) return st;
    }
    return LOLCATS_OK;
}

static void lc__ref_add(lc_tensor *list, int *n, const char *name, const float *data, int nd,
                        int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    lc_tensor *t = &list[*n];
    int i;
    if (!data || *n >= LOLCATS_REF_MAX_OUT) return;
    memset(t, 0, sizeof *t);
    t->name = name;
    t->dtype = LOLCATS_DTYPE_F32;
    t->ndim = nd;
    t->shape[0] = d0; t->shape[1] = d1; t->shape[2] = d2; t->shape[3] = d3;
    t->nbytes = sizeof(float);
    for (i = 0; i < nd; i++) t->nbytes *= (size_t)t->shape[i];
    t->data = data;
    (*n)++;
}

LCIMPL int lc_ref_out_tensors(const lc_ref_case *rc, const lc_ref_out *o,
                              lc_tensor list[LOLCATS_REF_MAX_OUT]) {
    int n = 0, F = lc_fmap_out_dim(&rc->fmap, rc->f);
    int64_t B = rc->B, H = rc->H, Hk = rc->Hk, N = rc->N, D = rc->D, f = rc->f;
    if (rc->op == LOLCATS_OP_MSE || rc->op == LOLCATS_OP_XENT) {
        lc__ref_add(list, &n, "loss", o->loss, 1, 1, 0, 0, 0);
        lc__ref_add(list, &n, rc->op == LOLCATS_OP_MSE ? "d_pred" : "d_a_pred", o->dpred, 1,
                    (int64_t)rc->n_pred, 0, 0, 0);
        return n;
    }
    lc__ref_add(list, &n, "y", o->y, 4, B, H, N, D);
    lc__ref_add(list, &n, "a", o->a, 4, B, H, N, N);
    lc__ref_add(list, &n, "dq", o->dq, 4, B, H, N, D);
    lc__ref_add(list, &n, "dk", o->dk, 4, B, Hk, N, D);
    lc__ref_add(list, &n, "dv", o->dv, 4, B, Hk, N, D);
    lc__ref_add(list, &n, "d_feature_map_q.weight", o->dwq, 3, H, D, f, 0);
    lc__ref_add(list, &n, "d_feature_map_k.weight", o->dwk, 3, H, D, f, 0);
    lc__ref_add(list, &n, "d_feature_map_q.bias", o->dbq, 1, H, 0, 0, 0);
    lc__ref_add(list, &n, "d_feature_map_k.bias", o->dbk, 1, H, 0, 0, 0);
    lc__ref_add(list, &n, "d_window_factors", o->dwf, 1, H, 0, 0, 0);
    lc__ref_add(list, &n, "d_kv_state", o->dkv_state, 4, B, H, F, D);
    lc__ref_add(list, &n, "d_k_state", o->dk_state, 3, B, H, F, 0);
    lc__ref_add(list, &n, "d_log_g", o->dlog_g, 3, B, H, N, 0);
    return n;
}

// >>ref-run
// intermediates=1: what a backend computes on the way, in double (rounded
// once), each named so a mismatch can be localised. Rows (B,H,N): window_max
// (m_i), window_den; (B,H,N,D): window_num, linear_num; linear_den. y =
// (window_num + linear_num) / (window_den + linear_den); the linear parts
// include the carried state (and linear_attention's eps). States, from the
// initial (kv_state, k_state) or zero: prefix_kv_state (B,H,C+1,F,D) and
// prefix_k_state (B,H,C+1,F) at the chunk starts t_0 = 0 < t_1 < ... < t_C = N
// (the mask's blocks of w: tk aligned to the end, sw to the start; 64 for
// linear_attention), final_kv_state / final_k_state (all N keys), and for
// hybrid decode_kv_state / decode_k_state: the state token-by-token decoding
// continues from after this prefill (keys before the last w).
// Cotangents d_final_kv_state (B,H,F,D) / d_final_k_state (B,H,F) on the
// final state add their gradient to dq.. (and d_kv_state, d_k_state).
#define LC__REF_IM_MAX 16
typedef struct {
    float *buf[LC__REF_IM_MAX];
    int n;
    float *dSf, *dzf;                      // cotangents (owned) or NULL
    float *dy0;                            // zero dy when only cotangents are given
} lc__ref_extra;

static void lc__ref_extra_free(lc__ref_extra *x) {
    int i;
    for (i = 0; i < x->n; i++) LOLCATS_FREE(x->buf[i]);
    LOLCATS_FREE(x->dSf); LOLCATS_FREE(x->dzf); LOLCATS_FREE(x->dy0);
    memset(x, 0, sizeof *x);
}

#define LC__REF_RUN_MAX_OUT 48
struct lc_ref_result {
    lc_ref_case rc;
    lc_ref_out out;
    float *owned;
    lc_tensor list[LC__REF_RUN_MAX_OUT];
    int n, n_meta;
    const char *meta[8];
    lc__ref_extra x;                       // intermediates, cotangents
};

// A run option: opts (key, value pairs) first, then the case's metadata.
static const char *lc__ref_opt(const lc_st_file *in, const char *const *opts, int n_opts,
                               const char *key) {
    const char *s = NULL;
    int i;
    for (i = 0; i < n_opts && !s; i++)
        if (opts[2 * i] && !strcmp(opts[2 * i], key)) s = opts[2 * i + 1];
    return s ? s : lc_st_meta(in, key);
}

static lc_status lc__ref_opt01(const lc_st_file *in, const char *const *opts, int n_opts,
                               const char *key, int *out, lc_error *err) {
    const char *s = lc__ref_opt(in, opts, n_opts, key);
    *out = 0;
    if (!s) return LOLCATS_OK;
    if (strcmp(s, "0") && strcmp(s, "1"))
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: option %s='%s' must be 0 or 1", lc_st_path(in),
                            key, s);
    *out = s[0] == '1';
    return LOLCATS_OK;
}

// Reads the cotangents d_final_kv_state (B,H,F,D) / d_final_k_state (B,H,F).
static lc_status lc__ref_cotangents(const lc_st_file *in, lc_ref_case *rc, lc__ref_extra *x,
                                    lc_error *err) {
    const lc_tensor *ts = lc_st_find(in, "d_final_kv_state"), *tz = lc_st_find(in, "d_final_k_state");
    int F = lc_fmap_out_dim(&rc->fmap, rc->f), i;
    int64_t want[4];
    if (!ts && !tz) return LOLCATS_OK;
    if (!ts || (rc->op != LOLCATS_OP_LINEAR && rc->op != LOLCATS_OP_HYBRID))
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: %s", lc_st_path(in),
                            !ts ? "'d_final_k_state' needs 'd_final_kv_state' (zeros if none)"
                                : "d_final_kv_state: only linear_attention and hybrid_attention have a state");
    want[0] = rc->B; want[1] = rc->H; want[2] = F; want[3] = rc->D;
    for (i = 0; i < 2; i++) {
        const lc_tensor *t = i ? tz : ts;
        int nd = i ? 3 : 4, d, ok;
        if (!t) continue;
        ok = t->ndim == nd;
        for (d = 0; ok && d < nd; d++) ok = t->shape[d] == want[d];
        if (!ok)
            return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: '%s' must have shape (B=%d,H=%d,F=%d%s)",
                                lc_st_path(in), t->name, rc->B, rc->H, F, i ? "" : ",D");
        if (!(*(i ? &x->dzf : &x->dSf) = (float *)LOLCATS_MALLOC(sizeof(float) * lc_tensor_numel(t))))
            return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", lc_st_path(in));
        if (lc_tensor_to_f32(t, i ? x->dzf : x->dSf, err) != LOLCATS_OK) return err ? err->code : LOLCATS_ERR_FORMAT;
    }
    if (!rc->dy && !rc->da) {  // gradients from the state alone: dy = 0
        size_t n = (size_t)rc->B * rc->H * rc->N * rc->D;
        if (!(x->dy0 = (float *)LOLCATS_MALLOC(sizeof(float) * (n ? n : 1))))
            return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", lc_st_path(in));
        memset(x->dy0, 0, sizeof(float) * n);
        rc->dy = x->dy0;
    }
    return LOLCATS_OK;
}

LCIMPL void lc_ref_result_free(lc_ref_result *r) {
    if (!r) return;
    lc_ref_out_free(&r->out);
    lc__ref_extra_free(&r->x);
    LOLCATS_FREE(r->owned);
    LOLCATS_FREE(r);
}

// defined below (>>ref-f64, >>ref-intermediates)
static lc_status lc__ref_eval_f64(const lc_ref_case *rc, lc_ref_out *out, lc_error *err);
static void lc__ref_case_bf16(const lc_ref_case *rc);
static int lc__ref_intermediates(const lc_ref_case *rc, lc_ref_out *out, lc__ref_extra *x,
                                 lc_tensor *list, int *nl);

LCIMPL lc_status lc_ref_run_st(const lc_ctx *ctx, const lc_st_file *in, const char *const *opts,
                               int n_opts, lc_ref_result **out, lc_error *err) {
    static const char *const ops[] = {"softmax_attention", "linear_attention", "hybrid_attention",
                                      "mse_loss", "xent_loss"};
    lc_ref_result *r;
    lc_ctx c;
    lc_tensor list[LOLCATS_REF_MAX_OUT];
    int weights, scalar, linear_state, inter, i;
    const char *prec;
    lc_status st;
    if (!out || !in || n_opts < 0 || (n_opts && !opts))
        return lc_error_set(err, LOLCATS_ERR_ARG, "lc_ref_run_st: NULL %s", !out ? "out" : !in ? "in" : "opts");
    *out = NULL;
    for (i = 0; i < 2 * n_opts; i++)
        if (!opts[i]) return lc_error_set(err, LOLCATS_ERR_ARG, "lc_ref_run_st: option entry %d is NULL", i);
    if ((st = lc__ref_opt01(in, opts, n_opts, "weights", &weights, err))) return st;
    if ((st = lc__ref_opt01(in, opts, n_opts, "scalar", &scalar, err))) return st;
    if ((st = lc__ref_opt01(in, opts, n_opts, "linear_state", &linear_state, err))) return st;
    if ((st = lc__ref_opt01(in, opts, n_opts, "intermediates", &inter, err))) return st;
    prec = lc__ref_opt(in, opts, n_opts, "precision");
    if (prec && strcmp(prec, "f32") && strcmp(prec, "f64") && strcmp(prec, "bf16"))
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: option precision='%s': use f64, f32 or bf16",
                            lc_st_path(in), prec);
    if (prec) prec = !strcmp(prec, "f32") ? NULL : !strcmp(prec, "f64") ? "f64" : "bf16";  // static strings
    if (ctx) c = *ctx;
    else lc_ctx_init(&c);
    if (scalar) c.simd = LOLCATS_SIMD_SCALAR;
    r = (lc_ref_result *)LOLCATS_MALLOC(sizeof *r);
    if (!r) return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", lc_st_path(in));
    memset(r, 0, sizeof *r);
    if ((st = lc_ref_case_from_st(in, &r->rc, &r->owned, err)) != LOLCATS_OK) {
        lc_ref_result_free(r);
        return st;
    }
    r->rc.linear_state = linear_state;
    r->rc.skip_weights = !weights;
    if ((st = lc__ref_cotangents(in, &r->rc, &r->x, err)) != LOLCATS_OK) {
        lc_ref_result_free(r);
        return st;
    }
    if (r->rc.log_g && ((prec && prec[1] == '6') || inter || r->x.dSf)) {
        lc_ref_result_free(r);
        return lc_error_set(err, LOLCATS_ERR_UNSUPPORTED, "%s: a case with log_g (gated linear state) runs "
                            "at precision f32 or bf16 without intermediates or final-state cotangents",
                            lc_st_path(in));
    }
    if (prec && prec[0] == 'b') lc__ref_case_bf16(&r->rc);
    st = prec && prec[1] == '6' ? lc__ref_eval_f64(&r->rc, &r->out, err) : lc_ref_eval(&c, &r->rc, &r->out, err);
    if (st != LOLCATS_OK) {
        lc_ref_result_free(r);
        return st;
    }
    r->n = lc_ref_out_tensors(&r->rc, &r->out, list);
    memcpy(r->list, list, sizeof(lc_tensor) * (size_t)r->n);
    if ((inter || r->x.dSf) && r->rc.op <= LOLCATS_OP_HYBRID &&
        !lc__ref_intermediates(&r->rc, &r->out, &r->x, inter ? r->list : NULL, &r->n)) {
        lc_ref_result_free(r);
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory for the intermediates", lc_st_path(in));
    }
    r->meta[0] = "op"; r->meta[1] = ops[r->rc.op];
    r->meta[2] = "simd"; r->meta[3] = lc_simd_name(c.simd);
    r->meta[4] = "lolcats_version"; r->meta[5] = LOLCATS_VERSION_STRING;
    r->n_meta = 3;
    if (prec) { r->meta[6] = "precision"; r->meta[7] = prec; r->n_meta = 4; }
    *out = r;
    return LOLCATS_OK;
}

LCIMPL lc_status lc_ref_run(const lc_ctx *ctx, int n, const char *const *names,
                            const float *const *data, const int *ndim, const int64_t *shape,
                            const char *const *meta, int n_meta, lc_ref_result **out,
                            lc_error *err) {
    lc__buf h;
    char num[96];
    unsigned char *buf;
    uint64_t off = 0, hlen;
    size_t total;
    lc_st_file *f = NULL;
    int i, d;
    lc_status st;
    if (!out) return lc_error_set(err, LOLCATS_ERR_ARG, "lc_ref_run: NULL out");
    *out = NULL;
    if (n < 0 || n_meta < 0 || (n && (!names || !data || !ndim || !shape)) || (n_meta && !meta))
        return lc_error_set(err, LOLCATS_ERR_ARG, "lc_ref_run: bad tensor list (n=%d) or metadata (n_meta=%d)",
                            n, n_meta);
    for (i = 0; i < 2 * n_meta; i++)
        if (!meta[i]) return lc_error_set(err, LOLCATS_ERR_ARG, "lc_ref_run: metadata entry %d is NULL", i);
    memset(&h, 0, sizeof h);
    lc__buf_str(&h, "{");
    if (n_meta) {
        lc__buf_str(&h, "\"__metadata__\":{");
        for (i = 0; i < n_meta; i++) {
            if (i) lc__buf_str(&h, ",");
            lc__buf_json_str(&h, meta[2 * i]);
            lc__buf_str(&h, ":");
            lc__buf_json_str(&h, meta[2 * i + 1]);
        }
        lc__buf_str(&h, "}");
    }
    for (i = 0; i < n; i++) {
        uint64_t numel = 1;
        if (!names[i] || !names[i][0] || ndim[i] < 0 || ndim[i] > LOLCATS_MAX_DIMS) {
            LOLCATS_FREE(h.p);
            return lc_error_set(err, LOLCATS_ERR_ARG, "lc_ref_run: tensor #%d ('%s'): %s", i,
                                names[i] ? names[i] : "(null)",
                                !names[i] || !names[i][0] ? "no name" : "rank outside [0, 8]");
        }
        for (d = 0; d < ndim[i]; d++) {
            int64_t s = shape[(size_t)i * LOLCATS_MAX_DIMS + (size_t)d];
            if (s < 0 || (s && numel > ((uint64_t)1 << 40) / (uint64_t)s)) {
                LOLCATS_FREE(h.p);
                return lc_error_set(err, LOLCATS_ERR_ARG, "lc_ref_run: tensor '%s': dim %d = %lld is negative "
                                    "or too large", names[i], d, (long long)s);
            }
            numel *= (uint64_t)s;
        }
        if (numel && !data[i]) {
            LOLCATS_FREE(h.p);
            return lc_error_set(err, LOLCATS_ERR_ARG, "lc_ref_run: tensor '%s': NULL data", names[i]);
        }
        if (i || n_meta) lc__buf_str(&h, ",");
        lc__buf_json_str(&h, names[i]);
        lc__buf_str(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (d = 0; d < ndim[i]; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)shape[(size_t)i * LOLCATS_MAX_DIMS + (size_t)d]);
            lc__buf_str(&h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + 4 * numel));
        lc__buf_str(&h, num);
        off += 4 * numel;
    }
    lc__buf_str(&h, "}");
    while (!h.oom && (8 + h.n) % 8) lc__buf_str(&h, " ");
    if (h.oom) { LOLCATS_FREE(h.p); return lc_error_set(err, LOLCATS_ERR_NOMEM, "lc_ref_run: out of memory"); }
    hlen = h.n;
    total = (size_t)(8 + hlen + off);
    buf = (unsigned char *)LOLCATS_MALLOC(total);
    if (!buf) { LOLCATS_FREE(h.p); return lc_error_set(err, LOLCATS_ERR_NOMEM, "lc_ref_run: out of memory for %llu bytes", (unsigned long long)total); }
    for (d = 0; d < 8; d++) buf[d] = (unsigned char)(hlen >> (8 * d));
    memcpy(buf + 8, h.p, (size_t)hlen);
    LOLCATS_FREE(h.p);
    off = 0;
    for (i = 0; i < n; i++) {
        size_t nb = 4;
        for (d = 0; d < ndim[i]; d++) nb *= (size_t)shape[(size_t)i * LOLCATS_MAX_DIMS + (size_t)d];
        if (nb) memcpy(buf + 8 + hlen + off, data[i], nb);
        off += nb;
    }
    st = lc_st_open_memory(&f, buf, total, "<arrays>", err);
    if (st == LOLCATS_OK) st = lc_ref_run_st(ctx, f, NULL, 0, out, err);
    lc_st_close(f);
    LOLCATS_FREE(buf);
    return st;
}

LCIMPL int lc_ref_result_count(const lc_ref_result *r) { return r ? r->n : 0; }
LCIMPL const lc_tensor *lc_ref_result_tensors(const lc_ref_result *r) { return r ? r->list : NULL; }
LCIMPL const char *lc_ref_result_name(const lc_ref_result *r, int i) {
    return r && i >= 0 && i < r->n ? r->list[i].name : NULL;
}
LCIMPL int lc_ref_result_ndim(const lc_ref_result *r, int i) {
    return r && i >= 0 && i < r->n ? r->list[i].ndim : -1;
}
LCIMPL int64_t lc_ref_result_dim(const lc_ref_result *r, int i, int d) {
    return r && i >= 0 && i < r->n && d >= 0 && d < r->list[i].ndim ? r->list[i].shape[d] : -1;
}
LCIMPL const float *lc_ref_result_data(const lc_ref_result *r, int i) {
    return r && i >= 0 && i < r->n ? (const float *)r->list[i].data : NULL;
}
LCIMPL const char *const *lc_ref_result_meta(const lc_ref_result *r, int *n) {
    if (n) *n = r ? r->n_meta : 0;
    return r ? r->meta : NULL;
}

// >>ref-f64
// precision=f64: the ref ops again in double, quadratic and single-threaded,
// straight from LOLCATS_MATH.md (feature maps, softmax, linear, hybrid with
// its masks, m_i's arg-max gradient and the carried state); outputs rounded
// to float once at the end. The loss ops already accumulate in double.
static double *lc__f64_dup(const float *x, size_t n, int *fail) {
    double *p;
    size_t i;
    if (!x) return NULL;
    p = (double *)LOLCATS_MALLOC(sizeof(double) * (n ? n : 1));
    if (!p) { *fail = 1; return NULL; }
    for (i = 0; i < n; i++) p[i] = (double)x[i];
    return p;
}

static double *lc__f64_zero(size_t n, int *fail) {
    double *p = (double *)LOLCATS_MALLOC(sizeof(double) * (n ? n : 1));
    if (!p) *fail = 1;
    else memset(p, 0, sizeof(double) * (n ? n : 1));
    return p;
}

static void lc__f64_store(float *dst, const double *src, size_t n) {
    size_t i;
    if (dst && src)
        for (i = 0; i < n; i++) dst[i] = (float)src[i];
}

// The activation of one row before the clamp: out (F) from z (f).
static void lc__f64_act(double *out, const double *z, int f, const lc_fmap_cfg *cfg) {
    int c, two = lc__fmap_twohalves(cfg);
    if (cfg->act == LOLCATS_FMAP_SOFTMAX_DIM || cfg->act == LOLCATS_FMAP_EXP_DIM) {
        double mx = z[0], mn = z[0], s1 = 0, s2 = 0;
        for (c = 1; c < f; c++) {
            if (z[c] > mx) mx = z[c];
            if (z[c] < mn) mn = z[c];
        }
        for (c = 0; c < f; c++) {
            s1 += out[c] = exp(z[c] - mx);
            if (two) s2 += out[f + c] = exp(mn - z[c]);
        }
        if (cfg->act == LOLCATS_FMAP_SOFTMAX_DIM)
            for (c = 0; c < f; c++) {
                out[c] /= s1;
                if (two) out[f + c] /= s2;
            }
    } else if (cfg->act == LOLCATS_FMAP_POS_ELU) {
        for (c = 0; c < f; c++) out[c] = z[c] > 0 ? 1.0 + z[c] : exp(z[c]);
    } else {
        for (c = 0; c < f; c++) out[c] = z[c] > 0 ? z[c] : 0.0;
    }
}

// dz (f) from dout (F, already gated by the clamp), out (F) and z (f).
static void lc__f64_act_bwd(double *dz, const double *dout, const double *out, const double *z,
                            int f, const lc_fmap_cfg *cfg) {
    int c, two = lc__fmap_twohalves(cfg), nmx = 0, nmn = 0;
    double s1 = 0, s2 = 0, mx = z[0], mn = z[0];
    for (c = 0; c < f; c++) dz[c] = 0;
    if (cfg->act == LOLCATS_FMAP_SOFTMAX_DIM) {
        for (c = 0; c < f; c++) {
            s1 += out[c] * dout[c];
            if (two) s2 += out[f + c] * dout[f + c];
        }
        for (c = 0; c < f; c++) {
            dz[c] = out[c] * (dout[c] - s1);
            if (two) dz[c] -= out[f + c] * (dout[f + c] - s2);
        }
    } else if (cfg->act == LOLCATS_FMAP_EXP_DIM) {
        // exp(z - max z): the max's gradient goes to the arg-max (ties share it)
        for (c = 1; c < f; c++) {
            if (z[c] > mx) mx = z[c];
            if (z[c] < mn) mn = z[c];
        }
        for (c = 0; c < f; c++) {
            dz[c] += dout[c] * out[c];
            s1 -= dout[c] * out[c];
            if (two) {
                dz[c] -= dout[f + c] * out[f + c];
                s2 += dout[f + c] * out[f + c];
            }
            nmx += z[c] == mx;
            nmn += z[c] == mn;
        }
        for (c = 0; c < f; c++) {
            if (z[c] == mx) dz[c] += s1 / nmx;
            if (two && z[c] == mn) dz[c] += s2 / nmn;
        }
    } else if (cfg->act == LOLCATS_FMAP_POS_ELU) {
        for (c = 0; c < f; c++) dz[c] = z[c] > 0 ? dout[c] : dout[c] * exp(z[c]);
    } else {
        for (c = 0; c < f; c++) dz[c] = z[c] > 0 ? dout[c] : 0.0;
    }
}

// phi (B,H,N,F) from x (B,Hx,N,D); with dphi: the backward into dx, dw, db.
static void lc__f64_fmap(double *phi, const double *dphi, double *dx, double *dw, double *db,
                         const double *x, const double *w, const double *bias, int B, int H,
                         int Hx, int N, int D, int f, const lc_fmap_cfg *cfg, double *tmp) {
    int F = lc_fmap_out_dim(cfg, f), b, h, n, d, c;
    double *z = tmp, *out = tmp + f, *dout = out + F, *dz = dout + F;
    for (b = 0; b < B; b++)
        for (h = 0; h < H; h++)
            for (n = 0; n < N; n++) {
                const double *xr = x + (((size_t)b * Hx + (size_t)(h / (H / Hx))) * N + n) * D;
                const double *wh = w + (size_t)h * D * f;
                size_t row = ((size_t)b * H + h) * N + n;
                for (c = 0; c < f; c++) z[c] = bias ? bias[h] : 0.0;
                for (d = 0; d < D; d++)
                    for (c = 0; c < f; c++) z[c] += xr[d] * wh[(size_t)d * f + c];
                lc__f64_act(out, z, f, cfg);
                if (!dphi) {
                    for (c = 0; c < F; c++) phi[row * F + c] = out[c] < (double)cfg->eps ? (double)cfg->eps : out[c];
                    continue;
                }
                for (c = 0; c < F; c++) dout[c] = out[c] >= (double)cfg->eps ? dphi[row * F + c] : 0.0;
                lc__f64_act_bwd(dz, dout, out, z, f, cfg);
                for (d = 0; d < D; d++) {
                    double *dxr = dx + (((size_t)b * Hx + (size_t)(h / (H / Hx))) * N + n) * D;
                    for (c = 0; c < f; c++) {
                        dxr[d] += dz[c] * wh[(size_t)d * f + c];
                        dw[((size_t)h * D + d) * f + c] += xr[d] * dz[c];
                    }
                }
                if (db)
                    for (c = 0; c < f; c++) db[h] += dz[c];
            }
}

static double lc__f64_dot(const double *a, const double *b, int n) {
    double s = 0;
    int i;
    for (i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

// One attention op in double over (b, h): y, den/m saved per row, a when
// asked, and with dy/da the backward. kind: LOLCATS_OP_SOFTMAX, _LINEAR, _HYBRID.
typedef struct {
    int kind, B, H, Hk, N, D, F;
    const lc_hybrid_cfg *cfg;
    double leps;
    const double *q, *k, *v, *pq, *pk, *wf, *S, *z, *dy, *da;
    double *y, *a, *dq, *dk, *dv, *dpq, *dpk, *dwf, *dS, *dz;
    double *w;                             // (N) scratch: one row of weights
    double *im_m, *im_wn, *im_wd, *im_ln, *im_ld;  // intermediates (rows) or NULL
} lc__f64_attn;

// One row i of (b, h): the row's locals of lc__f64_attn_run.
typedef struct {
    size_t bh, g;
    int i;
    double m, den, den0, gam, lam, dgam, dlam;
    double *yr;
    const double *Q, *K, *V, *PQ, *PK, *S, *Z;
} lc__f64_row;

// Forward of row i: m_i, the weights w_j (t->w), y_i = num/den, the
// intermediates and a_ij = w_j / den0 (den0: without the carried state).
static void lc__f64_row_fwd(const lc__f64_attn *t, lc__f64_row *r) {
    int N = t->N, D = t->D, F = t->F, i = r->i, j, d, c;
    size_t bh = r->bh;
    double scale = 1.0 / sqrt((double)D), m = -HUGE_VAL, den = 0, den0, *yr = r->yr, gam = r->gam, lam = r->lam;
    const double *Q = r->Q, *K = r->K, *V = r->V, *PQ = r->PQ, *PK = r->PK, *S = r->S, *Z = r->Z;
    for (d = 0; d < D; d++) yr[d] = 0;
    // the row's weights w_j and m
    for (j = 0; j <= i; j++) {
        int mk = t->kind == LOLCATS_OP_HYBRID ? lc_hybrid_mask(t->cfg, N, i, j)
                                              : t->kind == LOLCATS_OP_SOFTMAX ? 1 : 2;
        if (mk & 1) {
            double s = lc__f64_dot(Q + (size_t)i * D, K + (size_t)j * D, D) * scale;
            if (s > m) m = s;
        }
    }
    for (j = 0; j <= i; j++) {
        int mk = t->kind == LOLCATS_OP_HYBRID ? lc_hybrid_mask(t->cfg, N, i, j)
                                              : t->kind == LOLCATS_OP_SOFTMAX ? 1 : 2;
        double wj = 0, we = 0;
        if (mk & 1) wj = we = gam * exp(lc__f64_dot(Q + (size_t)i * D, K + (size_t)j * D, D) * scale - m);
        if (mk & 2) wj += lam * lc__f64_dot(PQ + (size_t)i * F, PK + (size_t)j * F, F);
        t->w[j] = wj;
        if (t->im_wn) {  // the window and linear parts apart
            size_t row = bh * N + i;
            t->im_wd[row] += we;
            t->im_ld[row] += wj - we;
            for (d = 0; d < D; d++) {
                t->im_wn[row * D + d] += we * V[(size_t)j * D + d];
                t->im_ln[row * D + d] += (wj - we) * V[(size_t)j * D + d];
            }
        }
        den += wj;
        for (d = 0; d < D; d++) yr[d] += wj * V[(size_t)j * D + d];
    }
    den0 = den;          // the weights a are normalised without the state
    if (S) {
        for (c = 0; c < F; c++) {
            double p = lam * PQ[(size_t)i * F + c];
            den += p * Z[c];
            for (d = 0; d < D; d++) yr[d] += p * S[(size_t)c * D + d];
        }
    }
    if (t->kind == LOLCATS_OP_LINEAR) den += t->leps;
    if (t->im_wn) {
        size_t row = bh * N + i;
        if (t->im_m) t->im_m[row] = m;
        t->im_ld[row] += den - den0;   // the carried state's part (and linear eps)
        for (d = 0; d < D; d++)
            t->im_ln[row * D + d] = yr[d] - t->im_wn[row * D + d];  // state part added below
    }
    for (d = 0; d < D; d++) yr[d] /= den;
    if (t->a)
        for (j = 0; j <= i; j++) t->a[(bh * N + i) * N + j] = t->w[j] / den0;
    r->m = m;
    r->den = den;
    r->den0 = den0;
}

// Backward of row i, from dy_i / da_i: dW_j for every key, then the window
// (scores, m's arg-max, gamma), linear (features, lambda), v and state parts.
static void lc__f64_row_bwd(const lc__f64_attn *t, lc__f64_row *r) {
    int N = t->N, D = t->D, F = t->F, i = r->i, j, d, c, nmax = 0;
    size_t bh = r->bh, g = r->g;
    double scale = 1.0 / sqrt((double)D), m = r->m, den = r->den, den0 = r->den0, gam = r->gam, lam = r->lam;
    double *yr = r->yr, dyy = 0, sa = 0, cd, ca, dm = 0, *ds = t->w + N;    // ds: (N) scores' gradient
    const double *Q = r->Q, *K = r->K, *V = r->V, *PQ = r->PQ, *PK = r->PK, *S = r->S, *Z = r->Z;
    const double *dyr = t->dy ? t->dy + (bh * N + i) * D : NULL;
    const double *dar = t->da ? t->da + (bh * N + i) * N : NULL;
    double dgam = 0, dlam = 0;
    // backward of the row: dW_j = (dy.v_j - dy.y)/den + (da_j - sum_k da_k a_k)/den0
    if (dyr) dyy = lc__f64_dot(dyr, yr, D);
    if (dar)
        for (j = 0; j <= i; j++) sa += dar[j] * t->w[j] / den0;
    cd = -dyy / den;
    ca = -sa / den0;
    for (j = 0; j <= i; j++) {
        int mk = t->kind == LOLCATS_OP_HYBRID ? lc_hybrid_mask(t->cfg, N, i, j)
                                              : t->kind == LOLCATS_OP_SOFTMAX ? 1 : 2;
        double dW = cd;
        ds[j] = 0;
        if (!mk) continue;
        if (dyr) dW += lc__f64_dot(dyr, V + (size_t)j * D, D) / den;
        if (dar) dW += dar[j] / den0 + ca;
        if (dyr)
            for (d = 0; d < D; d++) t->dv[(g * N + j) * D + d] += t->w[j] * dyr[d] / den;
        if (mk & 1) {
            double s = lc__f64_dot(Q + (size_t)i * D, K + (size_t)j * D, D) * scale;
            double e = exp(s - m), tt = dW * gam * e;
            ds[j] = tt;
            dm -= tt;
            dgam += dW * e;
            nmax += s == m;
        }
        if (mk & 2) {
            const double *pqi = PQ + (size_t)i * F, *pkj = PK + (size_t)j * F;
            for (c = 0; c < F; c++) {
                t->dpq[(bh * N + i) * F + c] += lam * dW * pkj[c];
                t->dpk[(bh * N + j) * F + c] += lam * dW * pqi[c];
            }
            dlam += dW * lc__f64_dot(pqi, pkj, F);
        }
    }
    // softmax: exp(s - m) / sum is unchanged by m; the hybrid's is not
    if (t->kind == LOLCATS_OP_HYBRID && nmax)
        for (j = 0; j <= i; j++)
            if ((lc_hybrid_mask(t->cfg, N, i, j) & 1) &&
                lc__f64_dot(Q + (size_t)i * D, K + (size_t)j * D, D) * scale == m)
                ds[j] += dm / nmax;
    for (j = 0; j <= i; j++) {
        if (ds[j] == 0) continue;
        for (d = 0; d < D; d++) {
            t->dq[(bh * N + i) * D + d] += ds[j] * K[(size_t)j * D + d] * scale;
            t->dk[(g * N + j) * D + d] += ds[j] * Q[(size_t)i * D + d] * scale;
        }
    }
    if (S) {
        const double *pqi = PQ + (size_t)i * F;
        for (c = 0; c < F; c++) {
            double sg = 0;
            if (dyr)
                for (d = 0; d < D; d++) sg += S[(size_t)c * D + d] * dyr[d] / den;
            t->dpq[(bh * N + i) * F + c] += lam * (sg + cd * Z[c]);
            if (dyr)
                for (d = 0; d < D; d++) t->dS[(bh * F + c) * D + d] += lam * pqi[c] * dyr[d] / den;
            t->dz[bh * F + c] += lam * cd * pqi[c];
            dlam += pqi[c] * sg + cd * pqi[c] * Z[c];
        }
    }
    r->dgam += dgam;
    r->dlam += dlam;
}

static void lc__f64_attn_run(const lc__f64_attn *t) {
    int N = t->N, D = t->D, F = t->F, b, h, i;
    for (b = 0; b < t->B; b++)
        for (h = 0; h < t->H; h++) {
            lc__f64_row r;
            memset(&r, 0, sizeof r);
            r.g = (size_t)b * t->Hk + (size_t)(h / (t->H / t->Hk));
            r.bh = (size_t)b * t->H + h;
            r.Q = t->q + r.bh * N * D; r.K = t->k + r.g * N * D; r.V = t->v + r.g * N * D;
            r.PQ = t->pq ? t->pq + r.bh * N * F : NULL; r.PK = t->pk ? t->pk + r.bh * N * F : NULL;
            r.S = t->S ? t->S + r.bh * F * D : NULL; r.Z = t->z ? t->z + r.bh * F : NULL;
            r.gam = r.lam = 1;
            if (t->kind == LOLCATS_OP_HYBRID) {
                r.gam = 1.0 / (1.0 + exp(-t->wf[h]));
                r.lam = t->cfg->affine ? 1.0 - r.gam : 1.0;
            }
            for (i = 0; i < N; i++) {
                r.i = i;
                r.yr = t->y + (r.bh * N + i) * D;
                lc__f64_row_fwd(t, &r);
                if (t->dy || t->da) lc__f64_row_bwd(t, &r);
            }
            if (t->kind == LOLCATS_OP_HYBRID && t->dwf) {
                if (t->cfg->affine) r.dgam -= r.dlam;
                t->dwf[h] += r.dgam * r.gam * (1.0 - r.gam);
            }
        }
}

static lc_status lc__ref_eval_f64(const lc_ref_case *rc, lc_ref_out *out, lc_error *err) {
    int B = rc->B, H = rc->H, Hk = rc->Hk, N = rc->N, D = rc->D, f = rc->f, fail = 0;
    int F = lc_fmap_out_dim(&rc->fmap, f), grad = rc->dy || rc->da, lin = rc->op != LOLCATS_OP_SOFTMAX;
    int want_a = rc->op != LOLCATS_OP_LINEAR && (!rc->skip_weights || rc->da);
    size_t nq = (size_t)B * H * N * D, nk = (size_t)B * Hk * N * D, nphi = (size_t)B * H * N * F;
    size_t nw = (size_t)H * D * f, ns = (size_t)B * H * F * D;
    lc__f64_attn t;
    double *q, *k, *v, *wq, *wk, *bq, *bk, *S, *z, *dy, *da, *tmp;
    double *dwq = NULL, *dwk = NULL, *dbq = NULL, *dbk = NULL;
    lc_status st;
    lc_ctx scalar;
    // shapes, the options and the output arrays: lc_ref_eval's on the scalar
    // path (its float values are then overwritten)
    memset(&scalar, 0, sizeof scalar);
    scalar.simd = LOLCATS_SIMD_SCALAR;
    if ((st = lc_ref_eval(&scalar, rc, out, err)) != LOLCATS_OK) return st;
    if (rc->op == LOLCATS_OP_MSE || rc->op == LOLCATS_OP_XENT) return LOLCATS_OK;
    memset(&t, 0, sizeof t);
    q = lc__f64_dup(rc->q, nq, &fail); k = lc__f64_dup(rc->k, nk, &fail); v = lc__f64_dup(rc->v, nk, &fail);
    wq = lc__f64_dup(rc->wq, nw, &fail); wk = lc__f64_dup(rc->wk, nw, &fail);
    bq = lc__f64_dup(rc->bq, (size_t)H, &fail); bk = lc__f64_dup(rc->bk, (size_t)H, &fail);
    S = lc__f64_dup(rc->kv_state, ns, &fail); z = lc__f64_dup(rc->k_state, (size_t)B * H * F, &fail);
    dy = lc__f64_dup(rc->dy, nq, &fail); da = lc__f64_dup(rc->da, (size_t)B * H * N * N, &fail);
    tmp = lc__f64_zero((size_t)f + 3 * (size_t)F + 2 * (size_t)N, &fail);
    t.kind = rc->op; t.B = B; t.H = H; t.Hk = Hk; t.N = N; t.D = D; t.F = F;
    t.cfg = &rc->hybrid; t.leps = (double)rc->linear_eps;
    t.q = q; t.k = k; t.v = v; t.S = S; t.z = z; t.dy = dy; t.da = da;
    t.y = lc__f64_zero(nq, &fail);
    if (want_a) t.a = lc__f64_zero((size_t)B * H * N * N, &fail);
    t.w = lc__f64_zero(2 * (size_t)N, &fail);
    if (rc->op == LOLCATS_OP_HYBRID) t.wf = lc__f64_dup(rc->wf, (size_t)H, &fail);
    if (lin) {
        double *pq = lc__f64_zero(nphi, &fail), *pk = lc__f64_zero(nphi, &fail);
        t.pq = pq; t.pk = pk;
        if (!fail) {
            lc__f64_fmap(pq, NULL, NULL, NULL, NULL, q, wq, bq, B, H, H, N, D, f, &rc->fmap, tmp);
            lc__f64_fmap(pk, NULL, NULL, NULL, NULL, k, wk, bk, B, H, Hk, N, D, f, &rc->fmap, tmp);
        }
    }
    if (grad) {
        t.dq = lc__f64_zero(nq, &fail); t.dk = lc__f64_zero(nk, &fail); t.dv = lc__f64_zero(nk, &fail);
        if (lin) {
            t.dpq = lc__f64_zero(nphi, &fail); t.dpk = lc__f64_zero(nphi, &fail);
            dwq = lc__f64_zero(nw, &fail); dwk = lc__f64_zero(nw, &fail);
            if (bq) dbq = lc__f64_zero((size_t)H, &fail);
            if (bk) dbk = lc__f64_zero((size_t)H, &fail);
        }
        if (rc->op == LOLCATS_OP_HYBRID) t.dwf = lc__f64_zero((size_t)H, &fail);
        if (S) { t.dS = lc__f64_zero(ns, &fail); t.dz = lc__f64_zero((size_t)B * H * F, &fail); }
    }
    if (!fail) {
        lc__f64_attn_run(&t);
        if (grad && lin) {
            lc__f64_fmap(NULL, t.dpq, t.dq, dwq, dbq, q, wq, bq, B, H, H, N, D, f, &rc->fmap, tmp);
            lc__f64_fmap(NULL, t.dpk, t.dk, dwk, dbk, k, wk, bk, B, H, Hk, N, D, f, &rc->fmap, tmp);
        }
        lc__f64_store(out->y, t.y, nq);
        lc__f64_store(out->a, t.a, (size_t)B * H * N * N);
        lc__f64_store(out->dq, t.dq, nq);
        lc__f64_store(out->dk, t.dk, nk);
        lc__f64_store(out->dv, t.dv, nk);
        lc__f64_store(out->dwq, dwq, nw);
        lc__f64_store(out->dwk, dwk, nw);
        lc__f64_store(out->dbq, dbq, (size_t)H);
        lc__f64_store(out->dbk, dbk, (size_t)H);
        lc__f64_store(out->dwf, t.dwf, (size_t)H);
        lc__f64_store(out->dkv_state, t.dS, ns);
        lc__f64_store(out->dk_state, t.dz, (size_t)B * H * F);
    }
    LOLCATS_FREE(q); LOLCATS_FREE(k); LOLCATS_FREE(v); LOLCATS_FREE(wq); LOLCATS_FREE(wk);
    LOLCATS_FREE(bq); LOLCATS_FREE(bk); LOLCATS_FREE(S); LOLCATS_FREE(z); LOLCATS_FREE(dy);
    LOLCATS_FREE(da); LOLCATS_FREE(tmp); LOLCATS_FREE(t.y); LOLCATS_FREE(t.a); LOLCATS_FREE(t.w);
    LOLCATS_FREE((void *)t.wf); LOLCATS_FREE((void *)t.pq); LOLCATS_FREE((void *)t.pk);
    LOLCATS_FREE(t.dq); LOLCATS_FREE(t.dk); LOLCATS_FREE(t.dv); LOLCATS_FREE(t.dpq);
    LOLCATS_FREE(t.dpk); LOLCATS_FREE(dwq); LOLCATS_FREE(dwk); LOLCATS_FREE(dbq); LOLCATS_FREE(dbk);
    LOLCATS_FREE(t.dwf); LOLCATS_FREE(t.dS); LOLCATS_FREE(t.dz);
    if (fail) {
        lc_ref_out_free(out);
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "precision=f64: out of memory for B=%d H=%d N=%d D=%d",
                            B, H, N, D);
    }
    return LOLCATS_OK;
}

// precision=bf16: every input rounded to bfloat16 (nearest even), then fp32.
static void lc__ref_round_bf16(const float *p, size_t n) {
    float *w = (float *)(uintptr_t)p;   // points into the run's own pool
    size_t i;
    if (!p) return;
    for (i = 0; i < n; i++) w[i] = lc_bf16_to_f32(lc_f32_to_bf16(w[i]));
}

static void lc__ref_case_bf16(const lc_ref_case *rc) {
    size_t nq = (size_t)rc->B * rc->H * rc->N * rc->D, nk = (size_t)rc->B * rc->Hk * rc->N * rc->D;
    int F = lc_fmap_out_dim(&rc->fmap, rc->f);
    if (rc->op == LOLCATS_OP_MSE || rc->op == LOLCATS_OP_XENT) {
        lc__ref_round_bf16(rc->pred, rc->n_pred);
        lc__ref_round_bf16(rc->target, rc->n_pred);
        return;
    }
    lc__ref_round_bf16(rc->q, nq);
    lc__ref_round_bf16(rc->k, nk);
    lc__ref_round_bf16(rc->v, nk);
    lc__ref_round_bf16(rc->dy, nq);
    lc__ref_round_bf16(rc->da, (size_t)rc->B * rc->H * rc->N * rc->N);
    if (rc->op == LOLCATS_OP_SOFTMAX) return;
    lc__ref_round_bf16(rc->wq, (size_t)rc->H * rc->D * rc->f);
    lc__ref_round_bf16(rc->wk, (size_t)rc->H * rc->D * rc->f);
    lc__ref_round_bf16(rc->bq, (size_t)rc->H);
    lc__ref_round_bf16(rc->bk, (size_t)rc->H);
    lc__ref_round_bf16(rc->wf, (size_t)rc->H);
    lc__ref_round_bf16(rc->kv_state, (size_t)rc->B * rc->H * F * rc->D);
    lc__ref_round_bf16(rc->k_state, (size_t)rc->B * rc->H * F);
    lc__ref_round_bf16(rc->log_g, (size_t)rc->B * rc->H * rc->N);
}

// >>ref-intermediates
static int lc__ref_chunk_start(const lc_ref_case *rc, int c, int C) {
    int w = rc->op == LOLCATS_OP_HYBRID ? rc->hybrid.window : 64, N = rc->N;
    int pad = rc->op == LOLCATS_OP_HYBRID && rc->hybrid.variant == LOLCATS_WINDOW_TK ? C * w - N : 0;
    int t = c * w - pad;
    return t < 0 ? 0 : t > N ? N : t;
}

// Adds a float copy of src (n) to list as name, shape d[0..nd).
static int lc__ref_im_add(lc__ref_extra *x, lc_tensor *list, int *nl, const char *name, const double *src,
                          size_t n, int nd, const int64_t *dims) {
    lc_tensor *t;
    float *p;
    int i;
    if (x->n >= LC__REF_IM_MAX) return 0;
    p = (float *)LOLCATS_MALLOC(sizeof(float) * (n ? n : 1));
    if (!p) return 0;
    lc__f64_store(p, src, n);
    x->buf[x->n++] = p;
    t = &list[(*nl)++];
    memset(t, 0, sizeof *t);
    t->name = name; t->dtype = LOLCATS_DTYPE_F32; t->ndim = nd; t->data = p;
    t->nbytes = sizeof(float);
    for (i = 0; i < nd; i++) { t->shape[i] = dims[i]; t->nbytes *= (size_t)dims[i]; }
    return 1;
}

// The states of every (b, h): prefix (C+1 chunk starts), final, decode.
static void lc__ref_scan_states(const lc_ref_case *rc, const double *pk, const double *v, double *pS,
                                double *pz, double *Sf, double *zf, double *dS, double *dz, int F, int C) {
    int B = rc->B, H = rc->H, Hk = rc->Hk, N = rc->N, D = rc->D, b, h, c, j, e, d;
    int jd = N - (rc->op == LOLCATS_OP_HYBRID ? rc->hybrid.window : N);
    for (b = 0; b < B; b++)
        for (h = 0; h < H; h++) {
            size_t bh = (size_t)b * H + h, g = (size_t)b * Hk + (size_t)(h / (H / Hk));
            double *S = Sf + bh * F * D, *z = zf + bh * F;
            if (rc->kv_state)
                for (e = 0; e < F * D; e++) S[e] = (double)rc->kv_state[bh * F * D + (size_t)e];
            if (rc->k_state)
                for (e = 0; e < F; e++) z[e] = (double)rc->k_state[bh * F + (size_t)e];
            for (c = 0, j = 0; c <= C; c++) {
                int tc = lc__ref_chunk_start(rc, c, C);
                for (; j < tc; j++) {
                    if (j == jd) {
                        memcpy(dS + bh * F * D, S, sizeof(double) * (size_t)F * D);
                        memcpy(dz + bh * F, z, sizeof(double) * (size_t)F);
                    }
                    if (rc->op == LOLCATS_OP_HYBRID && j < rc->hybrid.sinks) continue;  // sinks: never in a state
                    for (e = 0; e < F; e++) {
                        double p = pk[(bh * N + (size_t)j) * F + e];
                        z[e] += p;
                        for (d = 0; d < D; d++) S[(size_t)e * D + d] += p * v[(g * N + (size_t)j) * D + d];
                    }
                }
                memcpy(pS + (bh * (C + 1) + c) * F * D, S, sizeof(double) * (size_t)F * D);
                memcpy(pz + (bh * (C + 1) + c) * F, z, sizeof(double) * (size_t)F);
            }
            if (jd <= 0) {  // N <= w: every key still in the ring
                for (e = 0; e < F * D; e++) dS[bh * F * D + (size_t)e] = rc->kv_state ? (double)rc->kv_state[bh * F * D + (size_t)e] : 0.0;
                for (e = 0; e < F; e++) dz[bh * F + (size_t)e] = rc->k_state ? (double)rc->k_state[bh * F + (size_t)e] : 0.0;
            }
        }
}

// The final-state cotangent's gradient, added into out:
// L += sum dSf . S_final + dzf . z_final, S_final = S0 + sum_j phik_j v_j^T.
static int lc__ref_final_grad(const lc_ref_case *rc, lc_ref_out *out, const lc__ref_extra *x,
                              const double *k, const double *v, const double *wk, const double *bk,
                              const double *pk, double *tmp, int F) {
    int B = rc->B, H = rc->H, Hk = rc->Hk, N = rc->N, D = rc->D, f = rc->f, fail = 0, b, h, j, e, d;
    size_t nk = (size_t)B * Hk * N * D, nphi = (size_t)B * H * N * (size_t)F;
    double *dpk = lc__f64_zero(nphi, &fail), *dkk = lc__f64_zero(nk, &fail);
    double *dv = lc__f64_zero(nk, &fail), *dwk = lc__f64_zero((size_t)H * D * f, &fail);
    double *dbk = rc->bk ? lc__f64_zero((size_t)H, &fail) : NULL;
    if (!fail) {
        for (b = 0; b < B; b++)
            for (h = 0; h < H; h++) {
                size_t bh = (size_t)b * H + h, g = (size_t)b * Hk + (size_t)(h / (H / Hk));
                const float *G = x->dSf + bh * F * D, *gz = x->dzf ? x->dzf + bh * F : NULL;
                for (j = rc->op == LOLCATS_OP_HYBRID ? rc->hybrid.sinks : 0; j < N; j++) {  // sinks: not in S_final
                    const double *vj = v + (g * N + (size_t)j) * D, *pj = pk + (bh * N + (size_t)j) * F;
                    for (e = 0; e < F; e++) {
                        double acc = gz ? (double)gz[e] : 0.0;
                        for (d = 0; d < D; d++) {
                            acc += (double)G[(size_t)e * D + d] * vj[d];
                            dv[(g * N + (size_t)j) * D + d] += pj[e] * (double)G[(size_t)e * D + d];
                        }
                        dpk[(bh * N + (size_t)j) * F + e] = acc;
                    }
                }
                if (out->dkv_state)
                    for (e = 0; e < F * D; e++) out->dkv_state[bh * F * D + (size_t)e] += G[e];
                if (out->dk_state && gz)
                    for (e = 0; e < F; e++) out->dk_state[bh * F + (size_t)e] += gz[e];
            }
        lc__f64_fmap(NULL, dpk, dkk, dwk, dbk, k, wk, bk, B, H, Hk, N, D, f, &rc->fmap, tmp);
        {
            size_t i;
            for (i = 0; i < nk; i++) { out->dk[i] += (float)dkk[i]; out->dv[i] += (float)dv[i]; }
            for (i = 0; i < (size_t)H * D * f; i++) out->dwk[i] += (float)dwk[i];
            if (dbk && out->dbk)
                for (i = 0; i < (size_t)H; i++) out->dbk[i] += (float)dbk[i];
        }
    }
    LOLCATS_FREE(dpk); LOLCATS_FREE(dkk); LOLCATS_FREE(dv); LOLCATS_FREE(dwk); LOLCATS_FREE(dbk);
    return !fail;
}

// The intermediates (when list is set) and the cotangents' gradient (when
// x->dSf is set, added into out). Returns 0 when out of memory.
static int lc__ref_intermediates(const lc_ref_case *rc, lc_ref_out *out, lc__ref_extra *x,
                                 lc_tensor *list, int *nl) {
    int B = rc->B, H = rc->H, Hk = rc->Hk, N = rc->N, D = rc->D, f = rc->f, fail = 0, ok = 1;
    int F = rc->op == LOLCATS_OP_SOFTMAX ? 0 : lc_fmap_out_dim(&rc->fmap, f);
    int w = rc->op == LOLCATS_OP_HYBRID ? rc->hybrid.window : 64, C = (N + w - 1) / w;
    size_t nq = (size_t)B * H * N * D, nk = (size_t)B * Hk * N * D, nrow = (size_t)B * H * N;
    size_t nphi = nrow * (size_t)F, ns = (size_t)B * H * F * D;
    double *q = lc__f64_dup(rc->q, nq, &fail), *k = lc__f64_dup(rc->k, nk, &fail), *v = lc__f64_dup(rc->v, nk, &fail);
    double *wq = NULL, *wk = NULL, *bq = NULL, *bk = NULL, *pq = NULL, *pk = NULL, *tmp = NULL;
    double *pS = NULL, *pz = NULL, *dS = NULL, *dz = NULL, *Sf = NULL, *zf = NULL;
    lc__f64_attn t;
    memset(&t, 0, sizeof t);
    if (F) {
        wq = lc__f64_dup(rc->wq, (size_t)H * D * f, &fail); wk = lc__f64_dup(rc->wk, (size_t)H * D * f, &fail);
        bq = lc__f64_dup(rc->bq, (size_t)H, &fail); bk = lc__f64_dup(rc->bk, (size_t)H, &fail);
        pq = lc__f64_zero(nphi, &fail); pk = lc__f64_zero(nphi, &fail);
        tmp = lc__f64_zero((size_t)f + 3 * (size_t)F, &fail);
        if (!fail) {
            lc__f64_fmap(pq, NULL, NULL, NULL, NULL, q, wq, bq, B, H, H, N, D, f, &rc->fmap, tmp);
            lc__f64_fmap(pk, NULL, NULL, NULL, NULL, k, wk, bk, B, H, Hk, N, D, f, &rc->fmap, tmp);
        }
    }
    if (!fail && list) {
        int64_t dq4[4], dr[3], dp[5], df[4];
        dq4[0] = B; dq4[1] = H; dq4[2] = N; dq4[3] = D;
        dr[0] = B; dr[1] = H; dr[2] = N;
        t.kind = rc->op; t.B = B; t.H = H; t.Hk = Hk; t.N = N; t.D = D; t.F = F;
        t.cfg = &rc->hybrid; t.leps = (double)rc->linear_eps;
        t.q = q; t.k = k; t.v = v; t.pq = pq; t.pk = pk;
        t.wf = rc->op == LOLCATS_OP_HYBRID ? lc__f64_dup(rc->wf, (size_t)H, &fail) : NULL;
        t.S = lc__f64_dup(rc->kv_state, ns, &fail); t.z = lc__f64_dup(rc->k_state, (size_t)B * H * F, &fail);
        t.y = lc__f64_zero(nq, &fail); t.w = lc__f64_zero(2 * (size_t)N, &fail);
        if (rc->op != LOLCATS_OP_LINEAR) t.im_m = lc__f64_zero(nrow, &fail);
        t.im_wn = lc__f64_zero(nq, &fail); t.im_ln = lc__f64_zero(nq, &fail);
        t.im_wd = lc__f64_zero(nrow, &fail); t.im_ld = lc__f64_zero(nrow, &fail);
        if (!fail) {
            lc__f64_attn_run(&t);
            if (F) {
                df[0] = B; df[1] = H; df[2] = N; df[3] = F;
                ok &= lc__ref_im_add(x, list, nl, "phi_q", pq, nphi, 4, df);
                ok &= lc__ref_im_add(x, list, nl, "phi_k", pk, nphi, 4, df);
            }
            if (t.im_m) ok &= lc__ref_im_add(x, list, nl, "window_max", t.im_m, nrow, 3, dr);
            if (rc->op != LOLCATS_OP_LINEAR) {
                ok &= lc__ref_im_add(x, list, nl, "window_num", t.im_wn, nq, 4, dq4);
                ok &= lc__ref_im_add(x, list, nl, "window_den", t.im_wd, nrow, 3, dr);
            }
            if (rc->op != LOLCATS_OP_SOFTMAX) {
                ok &= lc__ref_im_add(x, list, nl, "linear_num", t.im_ln, nq, 4, dq4);
                ok &= lc__ref_im_add(x, list, nl, "linear_den", t.im_ld, nrow, 3, dr);
            }
        }
        LOLCATS_FREE((void *)t.wf); LOLCATS_FREE((void *)t.S); LOLCATS_FREE((void *)t.z);
        LOLCATS_FREE(t.y); LOLCATS_FREE(t.w); LOLCATS_FREE(t.im_m); LOLCATS_FREE(t.im_wn);
        LOLCATS_FREE(t.im_ln); LOLCATS_FREE(t.im_wd); LOLCATS_FREE(t.im_ld);
        // the prefix states, the final and the decode state
        if (!fail && F) {
            pS = lc__f64_zero((size_t)B * H * (C + 1) * F * D, &fail);
            pz = lc__f64_zero((size_t)B * H * (C + 1) * F, &fail);
            Sf = lc__f64_zero(ns, &fail); zf = lc__f64_zero((size_t)B * H * F, &fail);
            dS = lc__f64_zero(ns, &fail); dz = lc__f64_zero((size_t)B * H * F, &fail);
        }
        if (!fail && F) {
            lc__ref_scan_states(rc, pk, v, pS, pz, Sf, zf, dS, dz, F, C);
            {
                int64_t d5[5], d4[4];
                dp[0] = B; dp[1] = H; dp[2] = C + 1; dp[3] = F; dp[4] = D;
                d5[0] = B; d5[1] = H; d5[2] = F; d5[3] = D;
                d4[0] = B; d4[1] = H; d4[2] = F;
                ok &= lc__ref_im_add(x, list, nl, "prefix_kv_state", pS, (size_t)B * H * (C + 1) * F * D, 5, dp);
                ok &= lc__ref_im_add(x, list, nl, "prefix_k_state", pz, (size_t)B * H * (C + 1) * F, 4, dp);
                ok &= lc__ref_im_add(x, list, nl, "final_kv_state", Sf, ns, 4, d5);
                ok &= lc__ref_im_add(x, list, nl, "final_k_state", zf, (size_t)B * H * F, 3, d4);
                if (rc->op == LOLCATS_OP_HYBRID) {
                    ok &= lc__ref_im_add(x, list, nl, "decode_kv_state", dS, ns, 4, d5);
                    ok &= lc__ref_im_add(x, list, nl, "decode_k_state", dz, (size_t)B * H * F, 3, d4);
                }
            }
        }
    }
    if (!fail && F && x->dSf && out->dq && !lc__ref_final_grad(rc, out, x, k, v, wk, bk, pk, tmp, F)) fail = 1;
    LOLCATS_FREE(q); LOLCATS_FREE(k); LOLCATS_FREE(v); LOLCATS_FREE(wq); LOLCATS_FREE(wk);
    LOLCATS_FREE(bq); LOLCATS_FREE(bk); LOLCATS_FREE(pq); LOLCATS_FREE(pk); LOLCATS_FREE(tmp);
    LOLCATS_FREE(pS); LOLCATS_FREE(pz); LOLCATS_FREE(dS); LOLCATS_FREE(dz); LOLCATS_FREE(Sf); LOLCATS_FREE(zf);
    return !fail && ok;
}

// >>ref-grid
// The edge grid a backend should pass (`lolcats ref --grid DIR`, `python -m
// lolcats.grid DIR`): seeded cases, each one file holding its inputs (the
// `ref` contract), the expected outputs of the default path under their
// names and the f64 ones as "f64.<name>"; metadata case, seed, note.
typedef struct {
    const char *name;
    int op, variant, window, B, H, Hk, N, D, f, act, half, affine, bias, state, da, ties;
    float scale, qmul;
    const char *note;
} lc__grid_case;

static const lc__grid_case lc__grid[] = {
    // name                 op vr  w  B H Hk  N    D   f act hf af bi st da ti scale qmul
    {"tk_n1",               2, 1, 64, 1, 2, 2, 1,   64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "one token (N <= w quirk)"},
    {"tk_n2",               2, 1, 64, 1, 2, 2, 2,   64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "N <= w quirk: window and linear terms on every key"},
    {"tk_n63",              2, 1, 64, 1, 2, 2, 63,  64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "N < w"},
    {"tk_n64",              2, 1, 64, 1, 2, 2, 64,  64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "N = w"},
    {"tk_n65",              2, 1, 64, 1, 2, 2, 65,  64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "w < N <= 2w: every key in the window"},
    {"tk_n127",             2, 1, 64, 1, 2, 2, 127, 64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "partial first block"},
    {"tk_n128",             2, 1, 64, 1, 2, 2, 128, 64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "2w"},
    {"tk_n129",             2, 1, 64, 1, 2, 2, 129, 64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "first linear terms, one-token first block"},
    {"tk_n1000",            2, 1, 64, 1, 2, 2, 1000, 64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "N not a multiple of 64"},
    {"sw_n1",               2, 0, 64, 1, 2, 2, 1,   64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "one token"},
    {"sw_n2",               2, 0, 64, 1, 2, 2, 2,   64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, ""},
    {"sw_n63",              2, 0, 64, 1, 2, 2, 63,  64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "N < w"},
    {"sw_n64",              2, 0, 64, 1, 2, 2, 64,  64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, ""},
    {"sw_n65",              2, 0, 64, 1, 2, 2, 65,  64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "first linear key"},
    {"sw_n127",             2, 0, 64, 1, 2, 2, 127, 64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, ""},
    {"sw_n128",             2, 0, 64, 1, 2, 2, 128, 64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, ""},
    {"sw_n129",             2, 0, 64, 1, 2, 2, 129, 64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, ""},
    {"sw_n1000",            2, 0, 64, 1, 2, 2, 1000, 64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, ""},
    {"tk_n40_w128",         2, 1, 128, 1, 2, 2, 40, 64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "N < window (quirk)"},
    {"sw_n40_w128",         2, 0, 128, 1, 2, 2, 40, 64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "N < window: no linear terms"},
    {"tk_gqa1",             2, 1, 64, 1, 8, 8, 129, 64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "GQA ratio 1"},
    {"tk_gqa4",             2, 1, 64, 1, 8, 2, 129, 64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "GQA ratio 4"},
    {"tk_gqa8",             2, 1, 64, 1, 8, 1, 129, 64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "GQA ratio 8"},
    {"tk_d60",              2, 1, 64, 1, 2, 1, 200, 60, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "D = 60 (not a vector multiple)"},
    {"tk_d128",             2, 1, 64, 1, 2, 1, 200, 128, 64, 0, 0, 0, 0, 0, 0, 0, 1, 1, "D = 128, f = 64 (Llama 3 8B sizes)"},
    {"tk_b3",               2, 1, 64, 3, 2, 1, 200, 64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "B > 1"},
    {"tk_scale0.01",        2, 1, 64, 1, 2, 2, 200, 64, 16, 0, 0, 0, 0, 0, 0, 0, 0.01f, 1, "inputs x 0.01"},
    {"tk_scale4",           2, 1, 64, 1, 2, 2, 200, 64, 16, 0, 0, 0, 0, 0, 0, 0, 4, 1, "inputs x 4"},
    {"tk_logits8",          2, 1, 64, 1, 2, 2, 200, 64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 8, "q x 8: logits x 8, m_i far from the linear terms"},
    {"tk_ties",             2, 1, 64, 1, 2, 2, 200, 64, 16, 0, 0, 0, 0, 0, 0, 1, 1, 1, "repeated keys: ties in m_i share its gradient"},
    {"tk_affine",           2, 1, 64, 1, 2, 2, 200, 64, 16, 0, 0, 1, 0, 0, 0, 0, 1, 1, "lambda = 1 - gamma"},
    {"tk_halfspace",        2, 1, 64, 1, 2, 2, 200, 64, 16, 0, 1, 0, 0, 0, 0, 0, 1, 1, "softmax_dim halfspace, F = f"},
    {"tk_exp_dim",          2, 1, 64, 1, 2, 2, 200, 64, 16, 1, 0, 0, 0, 0, 0, 0, 1, 1, "exp_dim feature map"},
    {"tk_pos_elu",          2, 1, 64, 1, 2, 2, 200, 64, 16, 2, 0, 0, 0, 0, 0, 0, 1, 1, "pos_elu feature map"},
    {"tk_relu_bias",        2, 1, 64, 1, 2, 2, 200, 64, 16, 3, 0, 0, 1, 0, 0, 0, 1, 1, "T2R: relu with per-head bias"},
    {"tk_state",            2, 1, 64, 1, 2, 2, 200, 64, 16, 0, 0, 0, 0, 1, 0, 0, 1, 1, "carried state (kv_state, k_state)"},
    {"sw_state",            2, 0, 64, 1, 2, 2, 200, 64, 16, 0, 0, 0, 0, 1, 0, 0, 1, 1, "carried state"},
    {"tk_da",               2, 1, 64, 1, 2, 2, 200, 64, 16, 0, 0, 0, 0, 0, 1, 0, 1, 1, "gradient of the attention weights (da)"},
    {"softmax_n129",        0, 0, 0,  1, 4, 2, 129, 64, 0,  0, 0, 0, 0, 0, 0, 0, 1, 1, "teacher softmax, GQA 2"},
    {"softmax_n1",          0, 0, 0,  1, 4, 2, 1,   64, 0,  0, 0, 0, 0, 0, 0, 0, 1, 1, ""},
    {"linear_n129",         1, 0, 0,  1, 4, 2, 129, 64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "pure linear attention"},
    {"linear_n1",           1, 0, 0,  1, 4, 2, 1,   64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, ""},
};
#define LC__GRID_TABLE ((int)(sizeof lc__grid / sizeof lc__grid[0]))

// >>grid-sinks: attention-sink cases, after the decode cases (the indices and
// seeds of the others stay as they were)
static const struct { lc__grid_case g; int sinks; } lc__grid_snk[] = {
    {{"tk_sinks4",          2, 1, 64, 1, 2, 2, 200, 64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "4 attention sinks"}, 4},
    {{"sw_sinks4",          2, 0, 64, 1, 2, 2, 200, 64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "4 attention sinks"}, 4},
    {{"tk_sinks1_n40",      2, 1, 64, 1, 2, 2, 40,  64, 16, 0, 0, 0, 0, 0, 0, 0, 1, 1, "a sink in the N <= w quirk: window only"}, 1},
    {{"sw_sinks4_state",    2, 0, 64, 1, 2, 2, 200, 64, 16, 0, 0, 0, 0, 1, 0, 0, 1, 1, "sinks with a carried state"}, 4},
    {{"tk_sinks4_da",       2, 1, 64, 1, 2, 2, 200, 64, 16, 0, 0, 0, 0, 0, 1, 0, 1, 1, "sinks, gradient of the weights (da)"}, 4},
};
#define LC__GRID_SINKS ((int)(sizeof lc__grid_snk / sizeof lc__grid_snk[0]))
#define LC__GRID_SNK0 (LC__GRID_TABLE + LC__GRID_DECODE)  // index of the first
// >>grid-sinks-end
#define LC__GRID_DECODE 64   // decode after a prefill at every offset mod 64

LCIMPL int lc_ref_grid_count(void) { return LC__GRID_TABLE + LC__GRID_DECODE + LC__GRID_SINKS; }

LCIMPL const char *lc_ref_grid_name(int i, char *buf, size_t n) {
    if (!buf || !n) return NULL;
    if (i < 0 || i >= lc_ref_grid_count()) snprintf(buf, n, "?");
    else if (i < LC__GRID_TABLE) snprintf(buf, n, "%s", lc__grid[i].name);
    else if (i >= LC__GRID_SNK0) snprintf(buf, n, "%s", lc__grid_snk[i - LC__GRID_SNK0].g.name);
    else snprintf(buf, n, "decode_p%d", 64 + (i - LC__GRID_TABLE));
    return buf;
}

// A case's input tensors, drawn in a fixed order from one seeded lc_rng.
typedef struct {
    int nt;
    const char *names[12];
    const float *data[12];
    int ndim[12];
    int64_t shape[12 * LOLCATS_MAX_DIMS];
    float *buf[12];
} lc__grid_in;

// kind 0: normal x mul; 1: |normal|; 2: |normal| + 1. Returns 0 when out of memory.
static int lc__grid_add(lc__grid_in *in, lc_rng *rng, const char *name, int nd, int64_t d0, int64_t d1,
                        int64_t d2, int64_t d3, float mul, int kind) {
    size_t n = (size_t)d0 * (size_t)(nd > 1 ? d1 : 1) * (size_t)(nd > 2 ? d2 : 1) * (size_t)(nd > 3 ? d3 : 1), e;
    float *p = (float *)LOLCATS_MALLOC(sizeof(float) * (n ? n : 1));
    int t = in->nt;
    if (!p) return 0;
    for (e = 0; e < n; e++) {
        float x = lc_rng_normal(rng);
        p[e] = kind == 1 ? fabsf(x) : kind == 2 ? fabsf(x) + 1.0f : x * mul;
    }
    in->buf[t] = p; in->names[t] = name; in->data[t] = p; in->ndim[t] = nd;
    in->shape[t * LOLCATS_MAX_DIMS] = d0; in->shape[t * LOLCATS_MAX_DIMS + 1] = d1;
    in->shape[t * LOLCATS_MAX_DIMS + 2] = d2; in->shape[t * LOLCATS_MAX_DIMS + 3] = d3;
    in->nt++;
    return 1;
}

// The inputs of case g (F: its feature dim): 0 when out of memory.
static int lc__grid_inputs(const lc__grid_case *g, lc_rng *rng, int F, lc__grid_in *in) {
    int ok = 1;
    ok = ok && lc__grid_add(in, rng, "q", 4, g->B, g->H, g->N, g->D, g->scale * g->qmul, 0);
    ok = ok && lc__grid_add(in, rng, "k", 4, g->B, g->Hk, g->N, g->D, g->scale, 0);
    ok = ok && lc__grid_add(in, rng, "v", 4, g->B, g->Hk, g->N, g->D, g->scale, 0);
    if (ok && g->ties) {  // every odd key repeats the one before it
        int b, h, j, d;
        for (b = 0; b < g->B; b++)
            for (h = 0; h < g->Hk; h++)
                for (j = 1; j < g->N; j += 2)
                    for (d = 0; d < g->D; d++) {
                        size_t o = (((size_t)b * g->Hk + h) * g->N + j) * g->D + d;
                        in->buf[1][o] = in->buf[1][o - g->D];
                    }
    }
    ok = ok && lc__grid_add(in, rng, "dy", 4, g->B, g->H, g->N, g->D, 1.0f, 0);
    if (g->op != 0) {
        ok = ok && lc__grid_add(in, rng, "feature_map_q.weight", 3, g->H, g->D, g->f, 0, 0.3f, 0);
        ok = ok && lc__grid_add(in, rng, "feature_map_k.weight", 3, g->H, g->D, g->f, 0, 0.3f, 0);
        if (g->bias) {
            ok = ok && lc__grid_add(in, rng, "feature_map_q.bias", 1, g->H, 0, 0, 0, 0.5f, 0);
            ok = ok && lc__grid_add(in, rng, "feature_map_k.bias", 1, g->H, 0, 0, 0, 0.5f, 0);
        }
    }
    if (g->op == 2) ok = ok && lc__grid_add(in, rng, "window_factors", 1, g->H, 0, 0, 0, 1.0f, 0);
    if (g->state) {
        ok = ok && lc__grid_add(in, rng, "kv_state", 4, g->B, g->H, F, g->D, 1.0f, 1);
        ok = ok && lc__grid_add(in, rng, "k_state", 3, g->B, g->H, F, 0, 1.0f, 2);
    }
    if (g->da) ok = ok && lc__grid_add(in, rng, "da", 4, g->B, g->H, g->N, g->N, 1.0f, 0);
    return ok;
}

LCIMPL lc_status lc_ref_grid_write(const char *path, int i, lc_error *err) {
    static const char *const ops[] = {"softmax_attention", "linear_attention", "hybrid_attention"};
    static const char *const acts[] = {"softmax_dim", "exp_dim", "pos_elu", "relu"};
    lc__grid_case g;
    lc_rng rng;
    const char *meta[2 * 12], *mf[2 * 13];
    lc__grid_in in;
    int nt = 0, F, t, n_out = 0;
    char win[16], snk[16], seed[32], f64n[LOLCATS_REF_MAX_OUT + 8][48], nm[48];
    lc_ref_result *r32 = NULL, *r64 = NULL;
    lc_tensor list[12 + 2 * (LOLCATS_REF_MAX_OUT + 8)];
    lc_status st;
    uint64_t sd;
    if (i < 0 || i >= lc_ref_grid_count())
        return lc_error_set(err, LOLCATS_ERR_ARG, "grid case %d out of range [0, %d)", i, lc_ref_grid_count());
    if (i < LC__GRID_TABLE) {
        g = lc__grid[i];
    } else if (i >= LC__GRID_SNK0) {
        g = lc__grid_snk[i - LC__GRID_SNK0].g;
    } else {  // decode token P after a prefill of P tokens: the last row of sw over P + 1
        memset(&g, 0, sizeof g);
        g.op = 2; g.variant = 0; g.window = 64; g.B = 1; g.H = 2; g.Hk = 1; g.D = 32; g.f = 16;
        g.N = 64 + (i - LC__GRID_TABLE) + 1; g.scale = g.qmul = 1;
        g.note = "decode after a prefill: prefill = the first N-1 tokens, the decode token = the last; its "
                 "output is y[..., -1, :] (the decode rule is the sw prefill's, both variants); "
                 "decode_kv_state / decode_k_state with --intermediates";
    }
    lc_ref_grid_name(i, nm, sizeof nm);
    sd = 0x6c6f6c63617473ull + (uint64_t)i * 7919u;
    lc_rng_seed(&rng, sd);
    memset(&in, 0, sizeof in);
    {
        lc_fmap_cfg fc = lc_fmap_cfg_default();
        fc.act = (lc_fmap_act)g.act;
        fc.halfspace = g.half;
        F = lc_fmap_out_dim(&fc, g.f > 0 ? g.f : 1);
    }
    st = LOLCATS_OK;
    if (!lc__grid_inputs(&g, &rng, F, &in)) {
        st = lc_error_set(err, LOLCATS_ERR_NOMEM, "grid: out of memory");
        goto done;
    }
    nt = in.nt;
    snprintf(win, sizeof win, "%d", g.window);
    snprintf(snk, sizeof snk, "%d", i >= LC__GRID_SNK0 ? lc__grid_snk[i - LC__GRID_SNK0].sinks : 0);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)sd);
    {
        int nm_ = 0;
        meta[nm_++] = "op"; meta[nm_++] = ops[g.op];
        if (g.op != 0) {
            meta[nm_++] = "feature_map"; meta[nm_++] = acts[g.act];
            meta[nm_++] = "halfspace"; meta[nm_++] = g.half ? "1" : "0";
        }
        if (g.op == 2) {
            meta[nm_++] = "variant"; meta[nm_++] = g.variant ? "tk" : "sw";
            meta[nm_++] = "window"; meta[nm_++] = win;
            meta[nm_++] = "affine"; meta[nm_++] = g.affine ? "1" : "0";
            if (i >= LC__GRID_SNK0) { meta[nm_++] = "sinks"; meta[nm_++] = snk; }
        }
        if ((st = lc_ref_run(NULL, nt, in.names, in.data, in.ndim, in.shape, meta, nm_ / 2, &r32, err)) != LOLCATS_OK) goto done;
        meta[nm_++] = "precision"; meta[nm_++] = "f64";
        if ((st = lc_ref_run(NULL, nt, in.names, in.data, in.ndim, in.shape, meta, nm_ / 2, &r64, err)) != LOLCATS_OK) goto done;
        // the file: inputs, expected outputs, f64.<name>; metadata
        for (t = 0; t < nt; t++) {
            lc_tensor *x = &list[n_out++];
            int d;
            memset(x, 0, sizeof *x);
            x->name = in.names[t]; x->dtype = LOLCATS_DTYPE_F32; x->ndim = in.ndim[t]; x->data = in.data[t];
            x->nbytes = sizeof(float);
            for (d = 0; d < in.ndim[t]; d++) { x->shape[d] = in.shape[t * LOLCATS_MAX_DIMS + d]; x->nbytes *= (size_t)x->shape[d]; }
        }
        for (t = 0; t < lc_ref_result_count(r32); t++) list[n_out++] = lc_ref_result_tensors(r32)[t];
        for (t = 0; t < lc_ref_result_count(r64) && t < LOLCATS_REF_MAX_OUT + 8; t++) {
            list[n_out] = lc_ref_result_tensors(r64)[t];
            snprintf(f64n[t], sizeof f64n[t], "f64.%s", list[n_out].name);
            list[n_out++].name = f64n[t];
        }
        for (t = 0; t < nm_ - 2; t++) mf[t] = meta[t];
        t = nm_ - 2;
        mf[t++] = "case"; mf[t++] = nm;
        mf[t++] = "seed"; mf[t++] = seed;
        mf[t++] = "note"; mf[t++] = g.note ? g.note : "";
        mf[t++] = "lolcats_version"; mf[t++] = LOLCATS_VERSION_STRING;
        st = lc_st_write(path, list, n_out, mf, t / 2, err);
    }
done:
    lc_ref_result_free(r32);
    lc_ref_result_free(r64);
    for (t = 0; t < 12; t++) LOLCATS_FREE(in.buf[t]);
    return st;
}

#endif // LOLCATS_NO_FILES

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
