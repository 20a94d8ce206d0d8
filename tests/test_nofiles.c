/* test_nofiles.c - the kernel-only build: LOLCATS_NO_FILES (every section after
   the kernels that reads or writes files: safetensors, GGUF, models, tokenizers,
   sampler, checkpoints, lolcats-infer, the reference runner) with
   LOLCATS_NO_FAST. The declarations of what it drops must be gone too: this
   file defines functions under their names with other signatures, which is a
   compile error while the header still declares them. What the kernels use
   stays: dtype conversions, block dequantization, lc_gemm on a Q8_0 block. */
#define LOLCATS_NO_FILES
#define LOLCATS_NO_FAST
#define LOLCATS_STATIC
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"

/* each clashes with the header's declaration unless LOLCATS_NO_FILES removed it */
static int lc_st_open(void) { return 1; }
static int lc_gguf_open(void) { return 2; }
static int lc_model_load(void) { return 3; }
static int lc_tokenizer_free(void) { return 4; }
static int lc_sampler_free(void) { return 5; }
static int lc_model_export_hf(void) { return 6; }
static int lc_tensor_to_f32(void) { return 7; }

int main(void) {
    lc_ctx ctx;
    float q[2 * 3 * 4], k[2 * 3 * 4], v[2 * 3 * 4], y[2 * 3 * 4], lse[2 * 3];
    float w[32], back[32];
    unsigned char blk[34];
    int i;
    lc_ctx_init(&ctx);
    for (i = 0; i < 24; i++) { q[i] = (float)(i % 5) * 0.1f; k[i] = (float)(i % 3) * 0.2f; v[i] = (float)i; }
    lc_attn_softmax_fwd(&ctx, y, lse, q, k, v, 1, 2, 2, 3, 4);
    CHECK(y[0] == v[0] && y[3] == v[3], "softmax attention: the first row must copy v[0]");
    CHECK(lc_st_open() + lc_gguf_open() + lc_model_load() + lc_tokenizer_free() + lc_sampler_free() +
          lc_model_export_hf() + lc_tensor_to_f32() == 28, "the clashing stand-ins compiled and ran");
    CHECK(lc_bf16_to_f32(lc_f32_to_bf16(1.5f)) == 1.5f, "bf16 round trip kept");
    CHECK(lc_f16_to_f32(lc_f32_to_f16(-0.25f)) == -0.25f, "f16 round trip kept");
    CHECK(lc_dtype_size(LOLCATS_DTYPE_BF16) == 2 && lc_dtype_block(LOLCATS_DTYPE_Q8_0) == 32, "dtype geometry kept");
    for (i = 0; i < 32; i++) w[i] = (float)(i - 16) / 8.0f;
    CHECK(lc_quant_row(blk, w, LOLCATS_DTYPE_Q8_0, 32) == 0, "Q8_0 quantizer kept");
    lc_dequant_row(back, blk, LOLCATS_DTYPE_Q8_0, 32);
    for (i = 0; i < 32; i++)
        if (fabsf(back[i] - w[i]) > 0.02f) break;
    CHECK(i == 32, "Q8_0 dequantization within one step (element %d)", i);
    CHECK(lc_model_release_layer(NULL, 0) == 0, "release_layer: nothing mapped, nothing released");
    return check_done();
}
