/* test_gate_pipeline.c - the gated linear state through the pipeline (issue 19
   item 3) on a 4-layer synthetic model (GQA 4/2 heads, head dim 8, dim 32):
   (a) stage 1 (lc_train_distill_step): the analytic gradients of w_g and b_g
       equal central finite differences of the returned loss (tk and sw, MSE;
       and with xent, the quadratic form);
   (b) stage 2 (lc_train_lm_step, gate_stage2): w_g, b_g gradients and layer 0's
       LoRA A gradient (which carries the gate's d x_n of the layers above) vs
       finite differences; without gate_stage2 w_g, b_g get none;
   (c) a gate held at g = 1 (b_g = 200: log g = -0) gives the ungated model's
       loss; a gate off trainer has no gate parameters (n_params unchanged);
   (d) linearized inference: trainer forward == prefill (tk and sw), and on sw
       token-by-token decode == chunks 5+7+12 == prefill, snapshot / restore
       continues bit-identically;
   (e) checkpoint round trip (tensors bit-exact, metadata gate = 1), an old
       (ungated) checkpoint loads ungated, a gated trainer refuses it; gate with
       attention sinks round-trips both (sinks_ below: (a), (c) and (d) run again
       with 2 sinks);
   (f) the CLI ($LOLCATS_BIN) on a synth model: linearize --gate --gate-stage2
       writes gated stage-1 and final checkpoints (decode == prefill on them);
       finetune --merge carries the gate (the directory runs as the checkpoint);
       linearize --gate --sinks 2 writes a gated checkpoint with sinks (decode ==
       prefill on it); bad flag combinations exit 2 with a named error. */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include <string.h>
#include <sys/wait.h>

#define L_ 4
#define T_ 24
#define V_ 40
#define GD "build/tests/gate_pipeline"

static int sinks_;   /* attention sinks of every trainer make_trainer builds */

static lc_model_config synth_cfg(void) {
    lc_model_config mc;
    memset(&mc, 0, sizeof mc);
    mc.dim = 32; mc.hidden_dim = 48; mc.n_layers = L_; mc.n_heads = 4; mc.n_kv_heads = 2; mc.head_dim = 8;
    mc.vocab_size = V_; mc.seq_len = 256; mc.norm_eps = 1e-5f; mc.rope_theta = 10000.0f;
    mc.bos_id = mc.eos_id = -1;
    return mc;
}

static int make_trainer(lc_train *t, const lc_ctx *ctx, int gate, int variant, int trainable, int lora_rank,
                        float xent) {
    lc_model_config mc = synth_cfg();
    lc_train_cfg tc = lc_train_cfg_default();
    lc_error err;
    tc.trainable = trainable;
    tc.feature_dim = 4; tc.hybrid.window = 4; tc.hybrid.variant = variant; tc.max_tokens = T_;
    tc.lora_rank = lora_rank; tc.gate = gate; tc.xent_factor = xent; tc.hybrid.sinks = sinks_;
    if (lc_train_init_full(t, ctx, &mc, &tc, &err)) { printf("init: %s\n", err.msg); return 1; }
    return 0;
}

/* every parameter moved a little (LoRA B, maps, window factors), and the
   gate to g of about 0.5..0.9 varying with the token, so that it matters */
static void perturb(lc_train *t) {
    lc_rng rng;
    size_t i, nw = (size_t)L_ * 4 * 32;
    lc_rng_seed(&rng, 7);
    for (i = 0; i < t->n_params; i++) t->params[i] += 0.05f * lc_rng_normal(&rng);
    if (!t->gate_w) return;
    for (i = 0; i < nw; i++) t->gate_w[i] = 0.3f * lc_rng_normal(&rng);
    for (i = 0; i < (size_t)L_ * 4; i++) t->gate_b[i] = 1.0f + 0.5f * lc_rng_normal(&rng);
}

static double loss_of(lc_train *t, int stage, const int *tok, const int *lab) {
    double loss = 0;
    lc_error err;
    lc_status st = stage == 1 ? lc_train_distill_step(t, tok, T_, 0, &loss, NULL, &err)
                              : lc_train_lm_step(t, tok, lab, T_, 0, &loss, NULL, &err);
    if (st) printf("step: %s\n", err.msg);
    return loss;
}

/* analytic gradient of params[idx[i]] vs (loss(p + e) - loss(p - e)) / 2e */
static void fd_check(const char *what, lc_train *t, int stage, const int *tok, const int *lab, const size_t *idx,
                     int n, float e) {
    double mx = 0, worst = 0;
    int i, bad = 0;
    double an[64], fd[64];
    lc_error err;
    lc_train_zero_grad(t);
    if (stage == 1) lc_train_distill_step(t, tok, T_, 1, NULL, NULL, &err);
    else lc_train_lm_step(t, tok, lab, T_, 1, NULL, NULL, &err);
    for (i = 0; i < n; i++) {
        float p0 = t->params[idx[i]];
        double lp, lm;
        an[i] = (double)t->grads[idx[i]];
        t->params[idx[i]] = p0 + e; lp = loss_of(t, stage, tok, lab);
        t->params[idx[i]] = p0 - e; lm = loss_of(t, stage, tok, lab);
        t->params[idx[i]] = p0;
        fd[i] = (lp - lm) / (2.0 * (double)e);
        if (fabs(an[i]) > mx) mx = fabs(an[i]);
    }
    for (i = 0; i < n; i++) {
        double d = fabs(an[i] - fd[i]);
        if (d > worst) worst = d;
        if (d > 0.03 * mx + 0.03 * fabs(fd[i])) {
            if (!bad) printf("  %s [%d]: analytic %.6g, finite difference %.6g\n", what, i, an[i], fd[i]);
            bad++;
        }
    }
    printf("  %-52s n=%-3d max |g| %.3e worst |diff| %.3e %s\n", what, n, mx, worst, bad ? "FAIL" : "PASS");
    CHECK(!bad && mx > 0, "%s: %d of %d gradients off (max |g| %g)", what, bad, n, mx);
}

static void gate_indices(const lc_train *t, size_t *idx, int *n) {
    int i;
    *n = 0;
    for (i = 0; i < L_ * 4; i++) idx[(*n)++] = (size_t)(t->gate_b - t->params) + (size_t)i;
    for (i = 0; i < 12; i++) idx[(*n)++] = (size_t)(t->gate_w - t->params) + (size_t)(i * 41 + 3) % (L_ * 4 * 32);
}

static void test_grads(const lc_ctx *ctx, const int *tok, const int *lab) {
    lc_train t;
    size_t idx[64];
    int n, v;
    printf("(a) stage 1 gradients of w_g, b_g (sinks %d)\n", sinks_);
    for (v = 0; v < 3; v++) {
        char what[96];
        if (make_trainer(&t, ctx, 1, v == 1 ? LOLCATS_WINDOW_SW : LOLCATS_WINDOW_TK, LOLCATS_TRAIN_FMAPS, 0,
                         v == 2 ? 0.5f : 0.0f)) { CHECK(0, "trainer"); return; }
        perturb(&t);
        gate_indices(&t, idx, &n);
        snprintf(what, sizeof what, "stage 1 %s w_g, b_g vs finite differences", v == 0 ? "tk" : v == 1 ? "sw" : "tk+xent");
        fd_check(what, &t, 1, tok, lab, idx, n, 1e-2f);
        lc_train_free(&t);
    }
    printf("(b) stage 2 gradients (gate_stage2)\n");
    if (make_trainer(&t, ctx, 1, LOLCATS_WINDOW_TK, LOLCATS_TRAIN_LORA, 2, 0)) { CHECK(0, "trainer"); return; }
    t.cfg.gate_stage2 = 1;
    perturb(&t);
    gate_indices(&t, idx, &n);
    fd_check("stage 2 w_g, b_g vs finite differences", &t, 2, tok, lab, idx, n, 1e-2f);
    {
        size_t a0 = (size_t)(t.lora_a[0][0] - t.params), i;
        for (i = 0; i < 16; i++) idx[i] = a0 + i * 5;
        fd_check("stage 2 layer 0 LoRA A (gate's d x_n above)", &t, 2, tok, lab, idx, 16, 1e-2f);
    }
    {   /* without gate_stage2 (LoRA only): the gate gets no gradient */
        size_t nw = (size_t)L_ * 4 * 33, i;
        float mx = 0;
        lc_error err;
        t.cfg.gate_stage2 = 0;
        lc_train_zero_grad(&t);
        lc_train_lm_step(&t, tok, lab, T_, 1, NULL, NULL, &err);
        for (i = 0; i < nw; i++) mx = fabsf(t.grads[(t.gate_w - t.params) + i]) > mx ? fabsf(t.grads[(t.gate_w - t.params) + i]) : mx;
        CHECK(mx == 0.0f, "gate_stage2 0: w_g, b_g got gradient %g", (double)mx);
    }
    lc_train_free(&t);
}

static void test_identity(const lc_ctx *ctx, const int *tok, const int *lab) {
    lc_train t0, t1;
    double l0, l1, d0, d1;
    int i;
    printf("(c) g = 1 is the ungated model; gate off adds nothing (sinks %d)\n", sinks_);
    if (make_trainer(&t0, ctx, 0, LOLCATS_WINDOW_TK, LOLCATS_TRAIN_LORA, 2, 0) ||
        make_trainer(&t1, ctx, 1, LOLCATS_WINDOW_TK, LOLCATS_TRAIN_LORA, 2, 0)) { CHECK(0, "trainers"); return; }
    CHECK(t0.gate_w == NULL && t0.gate_b == NULL, "gate off trainer has gate views");
    CHECK(t1.n_params == t0.n_params + (size_t)L_ * 4 * 33, "gate params %zu vs %zu", t1.n_params, t0.n_params);
    CHECK(t1.gate_b[0] == LOLCATS_GATE_BIAS_INIT && t1.gate_w[5] == 0.0f, "gate init b_g %g w_g %g",
          (double)t1.gate_b[0], (double)t1.gate_w[5]);
    perturb(&t0);
    for (i = 0; i < L_ * 4; i++) t1.gate_b[i] = 200.0f;   /* log sigmoid(200) = -0 in float */
    {   /* the same other parameters: copy t0's into t1 around the gate block */
        size_t gs = (size_t)(t1.gate_w - t1.params), gn = (size_t)L_ * 4 * 33;
        memcpy(t1.params, t0.params, sizeof(float) * gs);
        memcpy(t1.params + gs + gn, t0.params + gs, sizeof(float) * (t0.n_params - gs));
    }
    l0 = loss_of(&t0, 2, tok, lab); l1 = loss_of(&t1, 2, tok, lab);
    d0 = loss_of(&t0, 1, tok, lab); d1 = loss_of(&t1, 1, tok, lab);
    printf("  stage 2 loss ungated %.9f, g = 1 %.9f; stage 1 %.9f, %.9f\n", l0, l1, d0, d1);
    CHECK(fabs(l0 - l1) <= 1e-6 * fabs(l0), "stage 2 with g = 1 differs: %.9g vs %.9g", l1, l0);
    CHECK(fabs(d0 - d1) <= 1e-5 * fabs(d0), "stage 1 with g = 1 differs: %.9g vs %.9g", d1, d0);
    lc_train_free(&t0);
    lc_train_free(&t1);
}

static void test_inference(const lc_ctx *ctx, const int *tok, const int *lab) {
    static float pre[T_ * V_], one[T_ * V_], tr[T_ * V_], cont[5 * V_], cont2[5 * V_];
    int v, i, seq[100], ok;
    lc_error err;
    printf("(d) linearized inference with the gate (ctx.simd %d, sinks %d)\n", (int)ctx->simd, sinks_);
    for (v = 0; v < 2; v++) {
        lc_train t;
        lc_lolcats lp;
        lc_lolcats_run r;
        if (make_trainer(&t, ctx, 1, v ? LOLCATS_WINDOW_SW : LOLCATS_WINDOW_TK, LOLCATS_TRAIN_LORA, 2, 0)) {
            CHECK(0, "trainer");
            return;
        }
        perturb(&t);
        lc_train_lm_step(&t, tok, lab, T_, 0, NULL, NULL, &err);
        memcpy(tr, lc_train_logits(&t), sizeof tr);
        lc_train_lolcats_view(&t, &lp);
        CHECK(lp.gate_w == t.gate_w && lp.gate_b == t.gate_b, "view has no gate");
        if (!CHECK(lc_lolcats_run_init(&r, ctx, t.model, &lp, T_, &err) == LOLCATS_OK, "run init: %s", err.msg)) {
            lc_train_free(&t);
            return;
        }
        lc_lolcats_forward(t.model, &lp, &r, tok, T_, pre, &err);
        check_close(v ? "sw prefill vs trainer forward" : "tk prefill vs trainer forward", pre, tr, (size_t)T_ * V_,
                    1e-5, 1e-4);
        if (v) {
            lc_lolcats_run_reset(&r);
            for (i = 0; i < T_; i++) {
                lc_lolcats_forward(t.model, &lp, &r, tok + i, 1, NULL, &err);
                memcpy(one + (size_t)i * V_, r.logits, sizeof(float) * V_);
            }
            check_close("sw decode token by token vs prefill", one, pre, (size_t)T_ * V_, 1e-5, 1e-4);
            lc_lolcats_run_reset(&r);
            lc_lolcats_forward(t.model, &lp, &r, tok, 5, one, &err);
            lc_lolcats_forward(t.model, &lp, &r, tok + 5, 7, one + 5 * V_, &err);
            lc_lolcats_forward(t.model, &lp, &r, tok + 12, 12, one + 12 * V_, &err);
            check_close("sw chunks 5+7+12 vs prefill", one, pre, (size_t)T_ * V_, 1e-5, 1e-4);
            /* snapshots carry the log g ring */
            for (i = 0; i < 100; i++) seq[i] = (i * 13 + 5) % V_;
            {
                lc_lolcats_run r2;
                size_t sb;
                unsigned char *snap;
                lc_lolcats_run_free(&r);
                CHECK(lc_lolcats_run_init(&r, ctx, t.model, &lp, 10, &err) == LOLCATS_OK, "run 10");
                CHECK(lc_lolcats_run_init(&r2, ctx, t.model, &lp, 1, &err) == LOLCATS_OK, "run 1");
                ok = 1;
                for (i = 0; i < 90; i += 10) ok &= lc_lolcats_forward(t.model, &lp, &r, seq + i, 10, NULL, &err) == 0;
                CHECK(ok && r.pos == 90, "90 tokens in chunks of 10: %s", err.msg);
                sb = lc_lolcats_run_snapshot_bytes(&r);
                snap = (unsigned char *)malloc(sb);
                lc_lolcats_run_snapshot(&r, snap);
                lc_lolcats_forward(t.model, &lp, &r, seq + 90, 5, cont, &err);
                CHECK(lc_lolcats_run_restore(&r, snap, sb, &err) == LOLCATS_OK, "restore: %s", err.msg);
                lc_lolcats_forward(t.model, &lp, &r, seq + 90, 5, cont2, &err);
                CHECK(!memcmp(cont, cont2, sizeof cont), "restored gated run does not continue bit-identically");
                for (i = 0; i < 95; i++) lc_lolcats_forward(t.model, &lp, &r2, seq + i, 1, NULL, &err);
                check_close("95 tokens: chunks of 10 + 5 vs one by one", cont + 4 * V_, r2.logits, V_, 1e-5, 1e-4);
                free(snap);
                lc_lolcats_run_free(&r2);
            }
        }
        lc_lolcats_run_free(&r);
        lc_train_free(&t);
    }
}

static void test_checkpoint(const lc_ctx *ctx) {
    lc_train t, t0;
    lc_lolcats lp, back;
    lc_error err;
    lc_train_cfg tc;
    lc_model_config mc = synth_cfg();
    const char *path = GD "/gate.safetensors", *path0 = GD "/old.safetensors";
    printf("(e) checkpoints\n");
    if (make_trainer(&t, ctx, 1, LOLCATS_WINDOW_TK, LOLCATS_TRAIN_LORA, 2, 0) ||
        make_trainer(&t0, ctx, 0, LOLCATS_WINDOW_TK, LOLCATS_TRAIN_LORA, 2, 0)) { CHECK(0, "trainers"); return; }
    perturb(&t);
    lc_train_lolcats_view(&t, &lp);
    CHECK(lc_lolcats_save(&lp, path, NULL, 0, &err) == LOLCATS_OK, "save: %s", err.msg);
    if (CHECK(lc_lolcats_load(&back, path, t.model, &err) == LOLCATS_OK, "load: %s", err.msg)) {
        CHECK(back.gate_w && back.gate_b && !memcmp(back.gate_w, t.gate_w, sizeof(float) * L_ * 4 * 32) &&
              !memcmp(back.gate_b, t.gate_b, sizeof(float) * L_ * 4), "gate tensors not restored bit-exactly");
        CHECK(lc_lolcats_meta(&back, "gate") && !strcmp(lc_lolcats_meta(&back, "gate"), "1"), "metadata gate");
        CHECK(lc_train_set_lolcats(&t0, &back, &err) != LOLCATS_OK && strstr(err.msg, "gated"),
              "an ungated trainer takes a gated checkpoint: %s", err.msg);
        lc_lolcats_free(&back);
    }
    lc_train_lolcats_view(&t0, &lp);
    CHECK(lc_lolcats_save(&lp, path0, NULL, 0, &err) == LOLCATS_OK, "save old");
    if (CHECK(lc_lolcats_load(&back, path0, t0.model, &err) == LOLCATS_OK, "load old: %s", err.msg)) {
        CHECK(!back.gate_w && !back.gate_b && !lc_lolcats_meta(&back, "gate"), "old checkpoint loads gated");
        CHECK(lc_train_set_lolcats(&t, &back, &err) != LOLCATS_OK && strstr(err.msg, "gated"),
              "a gated trainer takes an ungated checkpoint: %s", err.msg);
        printf("  %s\n", err.msg);
        lc_lolcats_free(&back);
    }
    tc = t.cfg;
    tc.hybrid.sinks = 2;
    {   /* gate with sinks: both survive the round trip */
        lc_train ts;
        if (CHECK(lc_train_init_full(&ts, ctx, &mc, &tc, &err) == LOLCATS_OK, "gate + sinks trainer: %s", err.msg)) {
            perturb(&ts);
            lc_train_lolcats_view(&ts, &lp);
            CHECK(lc_lolcats_save(&lp, path, NULL, 0, &err) == LOLCATS_OK, "save gate + sinks: %s", err.msg);
            if (CHECK(lc_lolcats_load(&back, path, ts.model, &err) == LOLCATS_OK, "load gate + sinks: %s", err.msg)) {
                CHECK(back.gate_w && !memcmp(back.gate_w, ts.gate_w, sizeof(float) * L_ * 4 * 32) &&
                      back.hybrid.sinks == 2, "gate + sinks: gate %s, sinks %d", back.gate_w ? "kept" : "lost",
                      back.hybrid.sinks);
                lc_lolcats_free(&back);
            }
            lc_train_free(&ts);
        }
    }
    lc_train_free(&t);
    lc_train_free(&t0);
}

static char out_buf[1 << 16], err_buf[1 << 16];

#include "cli_run.h"

static int run(const char *bin, const char *args) {
    return cli_run(GD, bin, args, out_buf, sizeof out_buf, err_buf, sizeof err_buf);
}

/* a CLI-written gated checkpoint (with `sinks` attention sinks) on the CLI's model:
   n tokens token by token == their prefill (sw masks) */
static void cli_decode_eq(const char *ckpt, int sinks, int n, const char *what) {
    lc_model m;
    lc_lolcats lp;
    lc_lolcats_run r;
    lc_error err;
    static float pre[32 * 64], one[32 * 64];
    int tk[32], i;
    for (i = 0; i < n; i++) tk[i] = (i * 5 + 1 + sinks) % 64;
    if (!CHECK(lc_model_load(&m, GD "/model", &err) == LOLCATS_OK, "model: %s", err.msg)) return;
    if (CHECK(lc_lolcats_load(&lp, ckpt, &m, &err) == LOLCATS_OK, "load %s: %s", ckpt, err.msg)) {
        CHECK(lp.gate_w && lp.hybrid.sinks == sinks, "%s: gate %s, sinks %d (want %d)", ckpt,
              lp.gate_w ? "yes" : "no", lp.hybrid.sinks, sinks);
        lp.hybrid.variant = LOLCATS_WINDOW_SW;
        if (CHECK(lc_lolcats_run_init(&r, NULL, &m, &lp, n, &err) == LOLCATS_OK, "run: %s", err.msg)) {
            CHECK(lc_lolcats_forward(&m, &lp, &r, tk, n, pre, &err) == LOLCATS_OK, "prefill: %s", err.msg);
            lc_lolcats_run_reset(&r);
            for (i = 0; i < n; i++) {
                lc_lolcats_forward(&m, &lp, &r, tk + i, 1, NULL, &err);
                memcpy(one + i * 64, r.logits, sizeof(float) * 64);
            }
            check_close(what, one, pre, (size_t)n * 64, 1e-5, 1e-4);
            lc_lolcats_run_free(&r);
        }
        lc_lolcats_free(&lp);
    }
    lc_model_free(&m);
}

static void test_cli(void) {
    const char *bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    const char *common = "--model " GD "/model --data random --seq-len 32 --window 4 --feature-dim 4 --lora-rank 2 "
                         "--tokens 128 --grad-accum 1 --val-seqs 2 --val-every 0 --force";
    static const char *bad[][2] = {
        {"finetune --lolcats " GD "/lin.safetensors --gate", "takes the gate from the --lolcats checkpoint"},
        {"distill --gate --gate-stage2", "an option of finetune and linearize"},
        {"linearize --gate-stage2", "give --gate too"},
        {"finetune --lolcats " GD "/plain.safetensors --gate-stage2", "has no gated linear state"}};
    char a[2048];
    lc_lolcats lp;
    lc_error err;
    int rc, i;
    FILE *f = fopen(bin, "rb");
    printf("(f) the CLI: %s\n", bin);
    if (!f) { printf("SKIPPED: CLI cases (%s absent)\n", bin); return; }
    fclose(f);
    rc = run(bin, "synth --like smollm-135m --layers 4 --dim 32 --hidden 48 --heads 4 --kv-heads 2 --head-dim 8 "
                  "--vocab 64 --dtype f32 --force --out " GD "/model");
    if (!CHECK(rc == 0, "synth: exit %d: %s", rc, err_buf)) return;
    snprintf(a, sizeof a, "linearize %s --gate --gate-stage2 --out " GD "/lin.safetensors", common);
    rc = run(bin, a);
    CHECK(rc == 0, "linearize --gate --gate-stage2: exit %d: %s", rc, err_buf);
    if (CHECK(lc_lolcats_load(&lp, GD "/lin.safetensors", NULL, &err) == LOLCATS_OK, "load: %s", err.msg)) {
        CHECK(lp.gate_w && lp.gate_b && lc_lolcats_meta(&lp, "gate"), "linearize --gate wrote no gate");
        lc_lolcats_free(&lp);
    }
    if (CHECK(lc_lolcats_load(&lp, GD "/lin.safetensors.stage1", NULL, &err) == LOLCATS_OK ||
              lc_lolcats_load(&lp, GD "/lin.stage1.safetensors", NULL, &err) == LOLCATS_OK, "load stage 1: %s",
              err.msg)) {
        CHECK(lp.gate_w != NULL, "stage 1 checkpoint has no gate");
        lc_lolcats_free(&lp);
    }
    cli_decode_eq(GD "/lin.safetensors", 0, 16, "CLI checkpoint: decode vs prefill");
    /* --merge carries the gate: the merged directory runs as the checkpoint on its model */
    snprintf(a, sizeof a, "finetune %s --lolcats " GD "/lin.stage1.safetensors --out " GD "/m2.safetensors "
             "--merge " GD "/merged", common);
    rc = run(bin, a);
    if (CHECK(rc == 0, "finetune --merge of a gated checkpoint: exit %d: %s", rc, err_buf)) {
        lc_model m, mm;
        lc_lolcats lm, lmm;
        lc_lolcats_run r, rm;
        static float y1[12 * 64], y2[12 * 64];
        int tk[12];
        for (i = 0; i < 12; i++) tk[i] = (i * 3 + 2) % 64;
        if (CHECK(lc_model_load(&m, GD "/model", &err) == LOLCATS_OK && lc_model_load(&mm, GD "/merged", &err) ==
                  LOLCATS_OK, "models: %s", err.msg)) {
            if (CHECK(lc_lolcats_load(&lm, GD "/m2.safetensors", &m, &err) == LOLCATS_OK &&
                      lc_lolcats_load(&lmm, GD "/merged", &mm, &err) == LOLCATS_OK, "merged load: %s", err.msg)) {
                CHECK(lmm.gate_w && !memcmp(lmm.gate_w, lm.gate_w, sizeof(float) * L_ * 4 * 32), "merged gate");
                if (CHECK(lc_lolcats_run_init(&r, NULL, &m, &lm, 12, &err) == LOLCATS_OK &&
                          lc_lolcats_run_init(&rm, NULL, &mm, &lmm, 12, &err) == LOLCATS_OK, "runs: %s", err.msg)) {
                    lc_lolcats_forward(&m, &lm, &r, tk, 12, y1, &err);
                    lc_lolcats_forward(&mm, &lmm, &rm, tk, 12, y2, &err);
                    check_close("merged directory vs checkpoint (gated)", y2, y1, 12 * 64, 1e-4, 1e-3);
                    lc_lolcats_run_free(&r);
                    lc_lolcats_run_free(&rm);
                }
                lc_lolcats_free(&lm);
                lc_lolcats_free(&lmm);
            }
            lc_model_free(&m);
            lc_model_free(&mm);
        }
    }
    /* gate with sinks from the CLI: both in the checkpoint, decode == prefill (sw masks) */
    snprintf(a, sizeof a, "linearize %s --gate --sinks 2 --out " GD "/gs.safetensors", common);
    rc = run(bin, a);
    if (CHECK(rc == 0, "linearize --gate --sinks 2: exit %d: %s", rc, err_buf))
        cli_decode_eq(GD "/gs.safetensors", 2, 20, "CLI gate + sinks checkpoint: decode vs prefill");
    snprintf(a, sizeof a, "distill %s --out " GD "/plain.safetensors", common);
    rc = run(bin, a);
    CHECK(rc == 0, "distill (ungated): exit %d: %s", rc, err_buf);
    remove(GD "/never.safetensors");
    for (i = 0; i < (int)(sizeof bad / sizeof *bad); i++) {
        snprintf(a, sizeof a, "%s %s --out " GD "/never.safetensors", bad[i][0], common);
        rc = run(bin, a);
        CHECK(rc == 2 && strstr(err_buf, "lolcats: error:") && strstr(err_buf, bad[i][1]),
              "'%s': exit %d, stderr %s", bad[i][0], rc, err_buf);
        if (rc == 2) printf("  %-40.40s -> %.*s", bad[i][0], (int)strcspn(err_buf, "\n") + 1, err_buf);
    }
    f = fopen(GD "/never.safetensors", "rb");
    CHECK(!f, "a refused run wrote a checkpoint");
    if (f) fclose(f);
}

int main(void) {
    lc_ctx ctx;
    int tok[T_], lab[T_], i;
    if (system("mkdir -p " GD) != 0) { printf("mkdir failed\n"); return 1; }
    for (i = 0; i < T_; i++) { tok[i] = (i * 7 + 3) % V_; lab[i] = (i * 11 + 1) % V_; }
    for (sinks_ = 0; sinks_ <= 2; sinks_ += 2) {   /* without and with attention sinks */
        lc_ctx_init(&ctx);
        ctx.simd = LOLCATS_SIMD_SCALAR;
        test_grads(&ctx, tok, lab);
        test_identity(&ctx, tok, lab);
        test_inference(&ctx, tok, lab);
        lc_ctx_init(&ctx);
        test_inference(&ctx, tok, lab);
    }
    sinks_ = 0;
    test_checkpoint(&ctx);
    test_cli();
    return check_done();
}
