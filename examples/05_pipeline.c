/* 05_pipeline.c - the whole LoLCATs pipeline on a model this file makes:
   teacher -> stage 1 (attention transfer) -> stage 2 (LoRA) -> generate.

     cc -O2 examples/05_pipeline.c -lm && ./a.out

   The task: count modulo 16 by a step of 1, 2 or 3. A sequence is BOS, the
   step's token, then numbers; each number is the previous plus the step with
   probability 0.8, otherwise random. The best guess of the next number needs
   the previous number (local) and the step: read from the token at position 1
   (long range: outside the hybrid's window of 4 for most positions) or pieced
   together from the noisy recent pairs.
   1. teacher: a 2-layer Llama (dim 32, 2 heads sharing 1 kv head), softmax
      attention, every weight trained from a seed (lc_train_init_full);
   2. the converted model: every attention layer becomes the hybrid (tk window
      4 + Hedgehog feature maps at identity, LoRA r 4 on q, k, v, o);
      stage 1 trains the feature maps and window factors so each layer's
      output matches the teacher's (lc_train_distill_step);
   3. stage 2 trains LoRA on next-token cross-entropy (lc_train_lm_step);
   4. generates greedily with the linearized model from its constant-size
      decode state (lc_lolcats_run_init / lc_lolcats_forward).
   Prints each stage's held-out loss and accuracy and the generated numbers.
   Exits 1 if attention transfer does not lower the converted model's loss or
   the generated numbers do not follow the rule. */
#define LOLCATS_IMPLEMENTATION
#include "../lolcats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { M = 16, BOS = 1, STEP0 = 2, NUM0 = 5, VOCAB = NUM0 + M, SEQ = 32, N_EVAL = 32, GEN = 24 };

static void sample_seq(lc_rng *r, int *tok) {
    int step = 1 + (int)(lc_rng_u64(r) % 3), x = (int)(lc_rng_u64(r) % M), i;
    tok[0] = BOS;
    tok[1] = STEP0 + step - 1;
    tok[2] = NUM0 + x;
    for (i = 3; i < SEQ; i++) {
        x = lc_rng_uniform(r) < 0.8f ? (x + step) % M : (int)(lc_rng_u64(r) % M);
        tok[i] = NUM0 + x;
    }
}

static void labels_of(const int *tok, int *lab) {
    int i;
    for (i = 0; i < SEQ; i++) lab[i] = i >= 2 && i + 1 < SEQ ? tok[i + 1] : -1;  /* score the numbers */
}

static void die(const lc_error *err) {
    fprintf(stderr, "05_pipeline: %s\n", err->msg);
    exit(1);
}

/* held-out next-number loss and accuracy with attention kind attn */
static void evaluate(lc_train *t, int attn, int ev[N_EVAL][SEQ], double *loss, double *acc) {
    int e, i, n, correct = 0, total = 0, saved = t->cfg.attn, lab[SEQ];
    double L, sum = 0;
    lc_error err;
    t->cfg.attn = attn;
    for (e = 0; e < N_EVAL; e++) {
        const float *lg;
        labels_of(ev[e], lab);
        if (lc_train_lm_step(t, ev[e], lab, SEQ, 0, &L, &n, &err)) die(&err);
        sum += L * n;
        lg = lc_train_logits(t);
        for (i = 0; i < SEQ; i++)
            if (lab[i] >= 0) {
                correct += lc_argmax(lg + (size_t)i * VOCAB, VOCAB) == lab[i];
                total++;
            }
    }
    t->cfg.attn = saved;
    *loss = sum / total;
    *acc = (double)correct / total;
}

/* steps of AdamW, each on `accum` fresh sequences; stage 1 (distill) or LM loss */
static double train(lc_train *t, lc_rng *r, int steps, int accum, float lr, int distill) {
    lc_adamw_cfg opt = lc_adamw_cfg_default();
    int s, a, n, tok[SEQ], lab[SEQ];
    double L = 0, l1;
    lc_error err;
    opt.lr = lr;
    for (s = 0; s < steps; s++) {
        lc_train_zero_grad(t);
        for (a = 0, L = 0; a < accum; a++) {
            sample_seq(r, tok);
            labels_of(tok, lab);
            if (distill ? lc_train_distill_step(t, tok, SEQ, 1, &l1, NULL, &err)
                        : lc_train_lm_step(t, tok, lab, SEQ, 1, &l1, &n, &err))
                die(&err);
            L += l1 / accum;
        }
        lc_train_adamw(t, &opt, 1.0f / (float)accum);
    }
    return L;  /* the last step's training loss */
}

int main(void) {
    static int ev[N_EVAL][SEQ];
    int prompt[3], tok, i, follow = 0, step;
    double l_t, a_t, l_lin, a_lin, l_h0, a_h0, l_at, a_at, l_lora, a_lora, s1_first, s1_last;
    lc_model_config mc;
    lc_train_cfg tc;
    lc_train teacher, lol;
    lc_lolcats lp;
    lc_lolcats_run run;
    lc_ctx ctx;
    lc_rng rng;
    lc_error err;

    lc_ctx_init(&ctx);
    lc_rng_seed(&rng, 42);
    for (i = 0; i < N_EVAL; i++) sample_seq(&rng, ev[i]);
    memset(&mc, 0, sizeof mc);
    mc.dim = 32; mc.hidden_dim = 64; mc.n_layers = 2; mc.n_heads = 2; mc.n_kv_heads = 1; mc.head_dim = 16;
    mc.vocab_size = VOCAB; mc.seq_len = SEQ; mc.norm_eps = 1e-5f; mc.rope_theta = 10000.0f; mc.tied = 1;
    mc.bos_id = BOS; mc.eos_id = 0;
    snprintf(mc.arch, sizeof mc.arch, "05-pipeline");
    printf("counting mod %d by a step of 1-3 (given at position 1), 20%% noise; sequences of %d, simd=%s\n", M, SEQ,
           lc_simd_name(ctx.simd));
    printf("held-out: %d sequences, next-number loss (nats) and accuracy; the best possible accuracy is ~%.0f%%\n\n",
           N_EVAL, 100 * (0.8 + 0.2 / M));

    /* 1. the teacher */
    tc = lc_train_cfg_default();
    tc.attn = LOLCATS_ATTN_SOFTMAX; tc.trainable = LOLCATS_TRAIN_FULL; tc.lora_rank = 0;
    tc.max_tokens = SEQ; tc.seed = 42;
    if (lc_train_init_full(&teacher, &ctx, &mc, &tc, &err)) die(&err);
    evaluate(&teacher, LOLCATS_ATTN_SOFTMAX, ev, &l_t, &a_t);
    printf("1. teacher: %d-layer Llama, dim %d, %d heads / %d kv head, %lld weights, from a seed\n", mc.n_layers,
           mc.dim, mc.n_heads, mc.n_kv_heads, (long long)lc_model_param_count(teacher.model));
    printf("   untrained          loss %.4f  acc %5.1f%%\n", l_t, 100 * a_t);
    train(&teacher, &rng, 300, 4, 1e-2f, 0);
    evaluate(&teacher, LOLCATS_ATTN_SOFTMAX, ev, &l_t, &a_t);
    printf("   300 steps x 4 seq  loss %.4f  acc %5.1f%%   <- the model to linearize\n\n", l_t, 100 * a_t);

    /* 2. convert: hybrid tk window 4, identity feature maps; stage 1 */
    tc = lc_train_cfg_default();
    tc.attn = LOLCATS_ATTN_HYBRID; tc.trainable = LOLCATS_TRAIN_FMAPS; tc.feature_dim = 16;
    tc.hybrid.window = 4; tc.lora_rank = 4; tc.lora_alpha = 8; tc.max_tokens = SEQ; tc.seed = 42;
    if (lc_train_init(&lol, &ctx, teacher.model, &tc, &err)) die(&err);
    evaluate(&lol, LOLCATS_ATTN_LINEAR, ev, &l_lin, &a_lin);
    evaluate(&lol, LOLCATS_ATTN_HYBRID, ev, &l_h0, &a_h0);
    printf("2. converted (no training yet): linear attention   loss %.4f  acc %5.1f%%\n", l_lin, 100 * a_lin);
    printf("                                hybrid tk w=4      loss %.4f  acc %5.1f%%\n", l_h0, 100 * a_h0);
    s1_first = train(&lol, &rng, 1, 1, 0.0f, 1);  /* lr 0: the stage-1 loss before training */
    s1_last = train(&lol, &rng, 150, 2, 1e-2f, 1);
    evaluate(&lol, LOLCATS_ATTN_HYBRID, ev, &l_at, &a_at);
    printf("   stage 1, attention transfer (feature maps + window factors, MSE x 1000, lr 1e-2, 150 steps):\n");
    printf("     per-layer attention MSE x 1000: %.4f -> %.4f\n", s1_first, s1_last);
    printf("     hybrid after stage 1          loss %.4f  acc %5.1f%%\n\n", l_at, 100 * a_at);

    /* 3. stage 2: LoRA */
    lol.cfg.trainable = LOLCATS_TRAIN_LORA;
    train(&lol, &rng, 150, 2, 3e-3f, 0);
    evaluate(&lol, LOLCATS_ATTN_HYBRID, ev, &l_lora, &a_lora);
    printf("3. stage 2, LoRA r=4 alpha=8 on q,k,v,o (next-number cross-entropy, lr 3e-3, 150 steps):\n");
    printf("     hybrid after stage 2          loss %.4f  acc %5.1f%%   (teacher %.4f, %.1f%%)\n\n", l_lora,
           100 * a_lora, l_t, 100 * a_t);

    /* 4. generate with the linearized model, token by token */
    lc_train_lolcats_view(&lol, &lp);
    if (lc_lolcats_run_init(&run, &ctx, lol.model, &lp, 3, &err)) die(&err);
    step = 3;
    prompt[0] = BOS; prompt[1] = STEP0 + step - 1; prompt[2] = NUM0 + 7;
    if (lc_lolcats_forward(lol.model, &lp, &run, prompt, 3, NULL, &err)) die(&err);
    printf("4. greedy generation, prompt: BOS, step %d, 7 (decode state %zu bytes, the same at any length)\n   7",
           step, run.state_bytes);
    for (i = 0, tok = prompt[2]; i < GEN; i++) {
        int next = lc_argmax(run.logits, VOCAB);
        printf(" %d", next - NUM0);
        follow += next == NUM0 + (tok - NUM0 + step) % M;
        tok = next;
        if (lc_lolcats_forward(lol.model, &lp, &run, &tok, 1, NULL, &err)) die(&err);
    }
    printf("\n   %d of %d generated numbers follow the rule (+%d mod %d)\n", follow, GEN, step, M);
    lc_lolcats_run_free(&run);
    lc_train_free(&lol);
    lc_train_free(&teacher);
    if (l_at < l_h0 && follow >= GEN * 9 / 10) {
        printf("verdict: OK - attention transfer lowered the converted model's loss %.3f -> %.3f, LoRA to %.3f "
               "(teacher %.3f); the linearized model generates the sequence\n", l_h0, l_at, l_lora, l_t);
        return 0;
    }
    printf("verdict: UNEXPECTED - hybrid loss %.3f -> %.3f after stage 1, %d of %d generated numbers right\n", l_h0,
           l_at, follow, GEN);
    return 1;
}
