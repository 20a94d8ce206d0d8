/* test_train.c - whole-model training: the gradients of lc_train_lm_step
   (cross-entropy through embedding, RMSNorm, RoPE, softmax / hybrid / linear
   attention, SwiGLU, residuals, final norm, tied classifier) and of
   lc_train_distill_step (stage 1, teacher forced) against central finite
   differences of the same model's loss, for every trainable set (all weights,
   LoRA, feature maps + window factors); then a few AdamW steps must lower the
   loss. Model-level finite differences run in float32 (the per-kernel checks
   in double live in test_grad and test_blocks), so the rule here is a norm:
   ||analytic - fd|| <= 3e-2 ||fd||. */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "fd_train.h"

static lc_model_config tiny_cfg(int interleaved, int tied) {
    lc_model_config c;
    memset(&c, 0, sizeof c);
    c.dim = 16; c.hidden_dim = 24; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.head_dim = 4;
    c.vocab_size = 11; c.seq_len = 64; c.norm_eps = 1e-5f; c.rope_theta = 10000.0f;
    c.rope_interleaved = interleaved; c.tied = tied; c.bos_id = 1; c.eos_id = 2;
    snprintf(c.arch, sizeof c.arch, "tiny");
    return c;
}

enum { T = 13 };
static int tokens[T], labels[T];
static float g_xent;  /* stage 1 xent_factor of the next run */
static int g_recompute;
static int g_relu_bias;  /* feature maps with per-head biases in the next run: 1 relu (T2R),
                            2 pos_elu (smooth: finite differences never straddle a kink) */

static double loss_of(lc_train *t, int distill) {
    double L = 0;
    int n;
    lc_error err;
    if (distill) lc_train_distill_step(t, tokens, T, 0, &L, NULL, &err);
    else lc_train_lm_step(t, tokens, labels, T, 0, &L, &n, &err);
    return L;
}

static void run(const char *name, int attn, int trainable, int variant, int interleaved, int tied, int distill) {
    lc_model_config mc = tiny_cfg(interleaved, tied);
    lc_train_cfg tc = lc_train_cfg_default();
    lc_train t;
    lc_error err;
    lc_ctx ctx;
    double L0, L1 = 0;
    int n, s, i;
    char what[128];
    lc_adamw_cfg opt = lc_adamw_cfg_default();
    lc_ctx_init(&ctx);
    tc.attn = attn; tc.trainable = trainable; tc.feature_dim = 3; tc.lora_rank = 2; tc.lora_alpha = 4;
    tc.hybrid.variant = variant; tc.hybrid.window = 4; tc.max_tokens = T; tc.seed = 3;
    tc.xent_factor = g_xent;
    tc.distill_only = distill && g_xent > 0;  /* one layer of activations suffices */
    tc.recompute = g_recompute;
    if (g_relu_bias) { tc.fmap.act = g_relu_bias == 1 ? LOLCATS_FMAP_RELU : LOLCATS_FMAP_POS_ELU; tc.fmap_bias = 1; }
    if (!CHECK(lc_train_init_full(&t, &ctx, &mc, &tc, &err) == LOLCATS_OK, "%s: init: %s", name, err.msg)) return;
    {   /* make LoRA B, feature maps and window factors non-trivial so every path carries gradient */
        lc_rng r;
        int l, tg;
        size_t k;
        lc_rng_seed(&r, 77);
        for (l = 0; l < mc.n_layers; l++)
            for (tg = 0; tg < 4; tg++) {
                size_t off = t.lora_off[l][tg], nb;
                if (!off) continue;
                off += (size_t)tc.lora_rank * (tg == 3 ? mc.n_heads * mc.head_dim : mc.dim);
                nb = (size_t)tc.lora_rank * (tg == 0 ? mc.n_heads * mc.head_dim : tg == 3 ? mc.dim : mc.n_kv_heads * mc.head_dim);
                for (k = 0; k < nb; k++) t.params[off + k] = 0.3f * lc_rng_normal(&r);
            }
        if (t.fmap_q)
            for (k = 0; k < (size_t)2 * mc.n_layers * mc.n_heads * mc.head_dim * tc.feature_dim; k++)
                t.fmap_q[k] += 0.3f * lc_rng_normal(&r);
        /* larger weights than the 0.02 init so attention is not uniform */
        for (k = 0; k < (size_t)(t.lora - t.params) && t.full; k++) t.params[k] *= 10.0f;
        for (l = 0; l < mc.n_layers; l++) { /* norms back near one */
            int c;
            for (c = 0; c < mc.dim; c++) {
                ((float *)t.model->layers[l].rms_att.data)[c] = 1.0f + 0.1f * lc_rng_normal(&r);
                ((float *)t.model->layers[l].rms_ffn.data)[c] = 1.0f + 0.1f * lc_rng_normal(&r);
            }
        }
        for (i = 0; i < mc.dim; i++) ((float *)t.model->rms_final.data)[i] = 1.0f;
        if (t.fmap_q) for (k = 0; k < (size_t)mc.n_layers * mc.n_heads; k++) t.wf[k] = lc_rng_normal(&r);
    }
    printf("%s\n", name);
    lc_train_zero_grad(&t);
    if (distill) CHECK(lc_train_distill_step(&t, tokens, T, 1, &L0, NULL, &err) == LOLCATS_OK, "%s", err.msg);
    else CHECK(lc_train_lm_step(&t, tokens, labels, T, 1, &L0, &n, &err) == LOLCATS_OK, "%s", err.msg);
    if (trainable & LOLCATS_TRAIN_FULL) {
        lc_model *m = t.model;
        fd_params("embedding", &t, 0, (size_t)mc.vocab_size * mc.dim, 60, loss_of, distill);
        snprintf(what, sizeof what, "layer 0 wq"); fd_params(what, &t, (size_t)((const float *)m->layers[0].wq.data - t.params), (size_t)m->layers[0].wq.rows * m->layers[0].wq.cols, 60, loss_of, distill);
        fd_params("layer 1 wk", &t, (size_t)((const float *)m->layers[1].wk.data - t.params), (size_t)m->layers[1].wk.rows * m->layers[1].wk.cols, 60, loss_of, distill);
        fd_params("layer 0 wo", &t, (size_t)((const float *)m->layers[0].wo.data - t.params), (size_t)m->layers[0].wo.rows * m->layers[0].wo.cols, 60, loss_of, distill);
        fd_params("layer 1 w1 (gate)", &t, (size_t)((const float *)m->layers[1].w1.data - t.params), (size_t)m->layers[1].w1.rows * m->layers[1].w1.cols, 60, loss_of, distill);
        fd_params("layer 0 rms_att", &t, (size_t)((const float *)m->layers[0].rms_att.data - t.params), (size_t)mc.dim, 60, loss_of, distill);
        fd_params("final norm", &t, (size_t)((const float *)m->rms_final.data - t.params), (size_t)mc.dim, 60, loss_of, distill);
    }
    if (trainable & LOLCATS_TRAIN_LORA) {
        fd_params("LoRA layer 0 q (A then B)", &t, t.lora_off[0][0], (size_t)tc.lora_rank * (mc.dim + mc.n_heads * mc.head_dim), 60, loss_of, distill);
        fd_params("LoRA layer 1 v (A then B)", &t, t.lora_off[1][2], (size_t)tc.lora_rank * (mc.dim + mc.n_kv_heads * mc.head_dim), 60, loss_of, distill);
        fd_params("LoRA layer 1 o (A then B)", &t, t.lora_off[1][3], (size_t)tc.lora_rank * (mc.dim + mc.n_heads * mc.head_dim), 60, loss_of, distill);
    }
    if (trainable & LOLCATS_TRAIN_FMAPS) {
        size_t per = (size_t)mc.n_layers * mc.n_heads * mc.head_dim * tc.feature_dim;
        fd_params("feature maps q", &t, (size_t)(t.fmap_q - t.params), per, 60, loss_of, distill);
        fd_params("feature maps k", &t, (size_t)(t.fmap_k - t.params), per, 60, loss_of, distill);
        if (attn == LOLCATS_ATTN_HYBRID)
            fd_params("window factors", &t, (size_t)(t.wf - t.params), (size_t)mc.n_layers * mc.n_heads, 60, loss_of, distill);
        if (CHECK(!g_relu_bias == !t.fbq, "%s: biases %s", name, t.fbq ? "present" : "missing") && t.fbq) {
            fd_params("feature-map biases q", &t, (size_t)(t.fbq - t.params), (size_t)mc.n_layers * mc.n_heads, 60, loss_of, distill);
            fd_params("feature-map biases k", &t, (size_t)(t.fbk - t.params), (size_t)mc.n_layers * mc.n_heads, 60, loss_of, distill);
        }
    }
    for (s = 0; s < 8; s++) { /* training lowers the loss */
        lc_train_zero_grad(&t);
        if (distill) lc_train_distill_step(&t, tokens, T, 1, &L1, NULL, &err);
        else lc_train_lm_step(&t, tokens, labels, T, 1, &L1, &n, &err);
        lc_train_adamw(&t, &opt, 1.0f);
    }
    L1 = loss_of(&t, distill);
    printf("  loss %.5f -> %.5f after 8 AdamW steps\n", L0, L1);
    CHECK(L1 < L0, "%s: 8 AdamW steps did not lower the loss (%g -> %g)", name, L0, L1);
    lc_train_free(&t);
}

/* block-wise stage 1 == the whole: layers 0:1 then 1:2 from the cached input */
static void blockwise(void) {
    lc_model_config mc = tiny_cfg(0, 1);
    lc_train_cfg tc = lc_train_cfg_default();
    lc_train t;
    lc_error err;
    lc_ctx ctx;
    double Lw, L1, L2;
    float *g_whole, *x;
    int ok;
    lc_ctx_init(&ctx);
    tc.feature_dim = 3; tc.lora_rank = 0; tc.hybrid.window = 4; tc.max_tokens = T;
    if (!CHECK(lc_train_init_full(&t, &ctx, &mc, &tc, &err) == LOLCATS_OK, "%s", err.msg)) return;
    lc_train_zero_grad(&t);
    lc_train_distill_step(&t, tokens, T, 1, &Lw, NULL, &err);
    g_whole = (float *)malloc(sizeof(float) * t.n_params);
    memcpy(g_whole, t.grads, sizeof(float) * t.n_params);
    lc_train_zero_grad(&t);
    x = (float *)malloc(sizeof(float) * T * mc.dim);
    lc_train_embed_tokens(&t, tokens, T, x, &err);
    lc_train_distill_block(&t, x, T, 0, 0, 0, 0, NULL, NULL, &err);  /* empty block: no-op */
    ok = lc_train_distill_block(&t, x, T, 0, 1, 1, 1, &L1, NULL, &err) == LOLCATS_OK;
    ok &= lc_train_distill_block(&t, x, T, 1, 2, 1, 1, &L2, NULL, &err) == LOLCATS_OK;
    CHECK(ok, "block-wise distill: %s", err.msg);
    CHECK(fabs(L1 + L2 - Lw) <= 1e-9 * fabs(Lw), "block losses %g + %g != whole %g", L1, L2, Lw);
    CHECK(!memcmp(g_whole, t.grads, sizeof(float) * t.n_params), "block-wise gradients differ from the whole-model step");
    CHECK(lc_train_distill_block(&t, x, T, 1, 3, 1, 1, NULL, NULL, &err) != LOLCATS_OK, "block past the last layer must fail");
    free(g_whole); free(x);
    lc_train_free(&t);
}

int main(void) {
    int i;
    lc_rng r;
    lc_rng_seed(&r, 9);
    for (i = 0; i < T; i++) {
        tokens[i] = (int)(lc_rng_u64(&r) % 11);
        labels[i] = i < 4 ? -1 : (int)(lc_rng_u64(&r) % 11);  /* prompt positions ignored */
    }
    run("pretraining, softmax attention, all weights (rotate-half, tied)", LOLCATS_ATTN_SOFTMAX, LOLCATS_TRAIN_FULL, 1, 0, 1, 0);
    run("pretraining, softmax attention, all weights (interleaved, untied)", LOLCATS_ATTN_SOFTMAX, LOLCATS_TRAIN_FULL, 1, 1, 0, 0);
    run("stage 2, hybrid tk, LoRA", LOLCATS_ATTN_HYBRID, LOLCATS_TRAIN_LORA, 1, 0, 1, 0);
    run("stage 2, hybrid sw, LoRA + feature maps", LOLCATS_ATTN_HYBRID, LOLCATS_TRAIN_LORA | LOLCATS_TRAIN_FMAPS, 0, 0, 1, 0);
    run("linear attention, feature maps", LOLCATS_ATTN_LINEAR, LOLCATS_TRAIN_FMAPS, 1, 0, 1, 0);
    g_recompute = 1;
    run("stage 2 with activation checkpointing, hybrid tk, LoRA + maps", LOLCATS_ATTN_HYBRID,
        LOLCATS_TRAIN_LORA | LOLCATS_TRAIN_FMAPS, 1, 0, 1, 0);
    run("pretraining with activation checkpointing, all weights", LOLCATS_ATTN_SOFTMAX, LOLCATS_TRAIN_FULL, 1, 0, 0, 0);
    g_recompute = 0;
    run("stage 1, attention transfer (tk)", LOLCATS_ATTN_HYBRID, LOLCATS_TRAIN_FMAPS, 1, 0, 1, 1);
    run("stage 1, attention transfer (sw)", LOLCATS_ATTN_HYBRID, LOLCATS_TRAIN_FMAPS, 0, 1, 1, 1);
    g_relu_bias = 1;
    run("stage 1, T2R maps (relu + per-head bias), tk", LOLCATS_ATTN_HYBRID, LOLCATS_TRAIN_FMAPS, 1, 0, 1, 1);
    g_relu_bias = 2;
    run("stage 2, pos_elu maps with biases, LoRA + maps + biases", LOLCATS_ATTN_HYBRID, LOLCATS_TRAIN_LORA | LOLCATS_TRAIN_FMAPS,
        1, 0, 1, 0);
    g_relu_bias = 0;
    g_xent = 1.0f;
    run("stage 1, attention transfer (tk) with xent_factor 1", LOLCATS_ATTN_HYBRID, LOLCATS_TRAIN_FMAPS, 1, 0, 1, 1);
    blockwise();
    return check_done();
}
