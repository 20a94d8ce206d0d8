/* test_softmax_layers.c - kept softmax layers (issue 19 item 2) on a 4-layer
   synthetic model (GQA 4/2 heads, head dim 8) with layer 1 kept softmax:
   (a) stage 2 (lc_train_lm_step): the loss equals a manual composition from the
       public blocks (layer 1 lc_attn_softmax_fwd, the others feature maps +
       lc_attn_hybrid_fwd), and layer 1's LoRA gets gradients;
   (b) stage 1 (lc_train_distill_step): layer 1 has no loss and no feature-map
       gradient, the loss is the mean of the other layers' losses;
   (c) linearized inference: token-by-token decode and chunks == prefill; with
       every layer kept softmax and no LoRA it is the softmax model
       (lc_model_forward); the KV cache grows past its first capacity;
       snapshot / restore continues bit-identically;
   (d) checkpoint round trip of the list (and a checkpoint without it: none);
   (e) lc_softmax_layers_parse refuses out-of-range, repeated and garbage
       entries with a named error; lc_softmax_layers_top picks the top scores;
   (f) the CLI ($LOLCATS_BIN) on a synth model: linearize --softmax-layers 1
       (checkpoint list, the decode KV line, inspect), auto:2 keeps the two
       layers of highest stage-1 validation loss (from --report's summary.json),
       bad lists exit 2 naming the entry. */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include <string.h>
#include <sys/wait.h>

#define L_ 4
#define T_ 24
#define V_ 40

static lc_model_config synth_cfg(void) {
    lc_model_config mc;
    memset(&mc, 0, sizeof mc);
    mc.dim = 32; mc.hidden_dim = 48; mc.n_layers = L_; mc.n_heads = 4; mc.n_kv_heads = 2; mc.head_dim = 8;
    mc.vocab_size = V_; mc.seq_len = 256; mc.norm_eps = 1e-5f; mc.rope_theta = 10000.0f;
    mc.bos_id = mc.eos_id = -1;
    return mc;
}

static int make_trainer(lc_train *t, const lc_ctx *ctx, const unsigned char *soft, int lora_rank, int window) {
    lc_model_config mc = synth_cfg();
    lc_train_cfg tc = lc_train_cfg_default();
    lc_error err;
    tc.trainable = LOLCATS_TRAIN_FMAPS | LOLCATS_TRAIN_LORA;
    tc.feature_dim = 4; tc.hybrid.window = window; tc.max_tokens = T_; tc.lora_rank = lora_rank;
    tc.softmax_layers = soft;
    if (lc_train_init_full(t, ctx, &mc, &tc, &err)) { printf("init: %s\n", err.msg); return 1; }
    return 0;
}

/* random-ish LoRA B and feature maps so every path matters */
static void perturb(lc_train *t) {
    lc_rng rng;
    size_t i;
    lc_rng_seed(&rng, 7);
    for (i = 0; i < t->n_params; i++) t->params[i] += 0.05f * lc_rng_normal(&rng);
}

/* (a) the manual composition: embed, per layer rms -> q,k,v (+LoRA) -> RoPE ->
   softmax (kept) or hybrid -> o (+LoRA) -> residual -> MLP -> residual; CE. */
static double manual_loss(const lc_ctx *ctx, lc_train *t, const unsigned char *soft, const int *tok,
                          const int *lab) {
    const lc_model *m = t->model;
    const lc_model_config *c = &m->cfg;
    int H = c->n_heads, Hk = c->n_kv_heads, D = c->head_dim, dim = c->dim, hid = c->hidden_dim, f = 4;
    int F = lc_fmap_out_dim(&t->cfg.fmap, f), l, i, tg;
    static float x[T_ * 32], xn[T_ * 32], q[T_ * 32], k[T_ * 16], v[T_ * 16], qh[T_ * 32], kh[T_ * 16],
        vh[T_ * 16], yh[T_ * 32], ym[T_ * 32], o[T_ * 32], g[T_ * 48], u[T_ * 48], hh[T_ * 48],
        cs[T_ * 4], sn[T_ * 4], phiq[4 * T_ * 8], phik[4 * T_ * 8], mrow[4 * T_], den[4 * T_],
        logits[T_ * V_], nw[32];
    float sc = t->cfg.lora_alpha / (float)t->cfg.lora_rank;
    double loss;
    lc_model_rope_table(cs, sn, c, 0, T_);
    for (i = 0; i < T_ * dim; i++) x[i] = ((const float *)m->tok_emb.data)[(size_t)tok[i / dim] * dim + i % dim];
    for (l = 0; l < L_; l++) {
        const lc_layer_weights *lw = &m->layers[l];
        const lc_weight *w4[4];
        float *y4[4];
        w4[0] = &lw->wq; w4[1] = &lw->wk; w4[2] = &lw->wv; w4[3] = &lw->wo;
        y4[0] = q; y4[1] = k; y4[2] = v; y4[3] = o;
        memcpy(nw, lw->rms_att.data, sizeof(float) * dim);
        lc_rmsnorm_fwd(xn, NULL, x, nw, T_, dim, c->norm_eps);
        for (tg = 0; tg < 3; tg++)
            lc_linear_fwd(ctx, y4[tg], NULL, xn, w4[tg]->data, w4[tg]->dtype, t->lora_a[l][tg], t->lora_b[l][tg], sc,
                          t->cfg.lora_rank, T_, (int)w4[tg]->rows, (int)w4[tg]->cols);
        lc_rope_split_fwd(qh, q, cs, sn, T_, H, D, 0);
        lc_rope_split_fwd(kh, k, cs, sn, T_, Hk, D, 0);
        lc_rope_split_fwd(vh, v, NULL, NULL, T_, Hk, D, 0);
        if (soft[l]) {
            lc_attn_softmax_fwd(ctx, yh, mrow, qh, kh, vh, 1, H, Hk, T_, D);
        } else {
            size_t fo = (size_t)l * H * D * f;
            lc_fmap_fwd(ctx, phiq, qh, t->fmap_q + fo, NULL, 1, H, H, T_, D, f, &t->cfg.fmap);
            lc_fmap_fwd(ctx, phik, kh, t->fmap_k + fo, NULL, 1, H, Hk, T_, D, f, &t->cfg.fmap);
            lc_attn_hybrid_fwd(ctx, yh, NULL, mrow, den, NULL, qh, kh, vh, phiq, phik, t->wf + (size_t)l * H, NULL,
                               NULL, 1, H, Hk, T_, D, F, &t->cfg.hybrid);
        }
        lc_heads_merge(ym, yh, T_, H, D);
        lc_linear_fwd(ctx, o, NULL, ym, lw->wo.data, lw->wo.dtype, t->lora_a[l][3], t->lora_b[l][3], sc,
                      t->cfg.lora_rank, T_, dim, H * D);
        for (i = 0; i < T_ * dim; i++) x[i] += o[i];
        memcpy(nw, lw->rms_ffn.data, sizeof(float) * dim);
        lc_rmsnorm_fwd(xn, NULL, x, nw, T_, dim, c->norm_eps);
        lc_linear_fwd(ctx, g, NULL, xn, lw->w1.data, lw->w1.dtype, NULL, NULL, 0, 0, T_, hid, dim);
        lc_linear_fwd(ctx, u, NULL, xn, lw->w3.data, lw->w3.dtype, NULL, NULL, 0, 0, T_, hid, dim);
        lc_swiglu_fwd(hh, g, u, (size_t)T_ * hid);
        lc_linear_fwd(ctx, o, NULL, hh, lw->w2.data, lw->w2.dtype, NULL, NULL, 0, 0, T_, dim, hid);
        for (i = 0; i < T_ * dim; i++) x[i] += o[i];
        (void)y4;
    }
    memcpy(nw, m->rms_final.data, sizeof(float) * dim);
    lc_rmsnorm_fwd(xn, NULL, x, nw, T_, dim, c->norm_eps);
    lc_linear_fwd(ctx, logits, NULL, xn, m->wcls.data, m->wcls.dtype, NULL, NULL, 0, 0, T_, V_, dim);
    loss = lc_xent_fwd_bwd(NULL, logits, lab, T_, V_, NULL);
    return loss;
}

static double max_abs_grad(const lc_train *t, const float *p, size_t n) {
    const float *g = t->grads + (p - t->params);
    double mx = 0;
    size_t i;
    for (i = 0; i < n; i++) if (fabs((double)g[i]) > mx) mx = fabs((double)g[i]);
    return mx;
}

static void test_training(const lc_ctx *ctx, const int *tok, const int *lab) {
    static const unsigned char soft[L_] = {0, 1, 0, 0}, none[L_] = {0, 0, 0, 0};
    lc_train t, t0;
    lc_error err;
    double loss, loss_none, man, man_none, ll[L_], ll0[L_];
    size_t per = 4 * 8 * 4;   /* H * D * f */
    int ns, l;
    printf("(a) stage 2 with layer 1 kept softmax\n");
    if (make_trainer(&t, ctx, soft, 2, 4) || make_trainer(&t0, ctx, NULL, 2, 4)) { CHECK(0, "trainers"); return; }
    perturb(&t);
    perturb(&t0);
    lc_train_zero_grad(&t);
    CHECK(lc_train_lm_step(&t, tok, lab, T_, 1, &loss, &ns, &err) == LOLCATS_OK, "lm_step");
    CHECK(lc_train_lm_step(&t0, tok, lab, T_, 0, &loss_none, &ns, &err) == LOLCATS_OK, "lm_step none");
    man = manual_loss(ctx, &t, soft, tok, lab);
    man_none = manual_loss(ctx, &t0, none, tok, lab);
    printf("  loss %.9f manual %.9f | no kept layer %.9f manual %.9f\n", loss, man, loss_none, man_none);
    CHECK(fabs(loss - man) <= 1e-6 * fabs(man), "stage 2 loss %.9g != manual composition %.9g", loss, man);
    CHECK(fabs(loss_none - man_none) <= 1e-6 * fabs(man_none), "no-softmax loss %.9g != manual %.9g", loss_none,
          man_none);
    CHECK(fabs(loss - loss_none) > 1e-4, "keeping layer 1 softmax changed nothing (%.9g)", loss);
    CHECK(max_abs_grad(&t, t.lora_a[1][0], 2 * 32) > 0 && max_abs_grad(&t, t.lora_b[1][3], 32 * 2) > 0,
          "layer 1's LoRA gets no gradient");
    CHECK(max_abs_grad(&t, t.fmap_q + per * 1, per) == 0 && max_abs_grad(&t, t.wf + 4, 4) == 0,
          "layer 1's feature maps / window factors got a stage-2 gradient");
    CHECK(max_abs_grad(&t, t.fmap_q + per * 2, per) > 0, "layer 2's feature maps got no gradient");

    printf("(b) stage 1: layer 1 skipped, the mean over the others\n");
    lc_train_zero_grad(&t);
    lc_train_zero_grad(&t0);
    CHECK(lc_train_distill_step(&t, tok, T_, 1, &loss, ll, &err) == LOLCATS_OK, "distill");
    CHECK(lc_train_distill_step(&t0, tok, T_, 1, &loss_none, ll0, &err) == LOLCATS_OK, "distill none");
    printf("  loss %.9g  layers %.6g %.6g %.6g %.6g | none %.6g %.6g %.6g %.6g\n", loss, ll[0], ll[1], ll[2],
           ll[3], ll0[0], ll0[1], ll0[2], ll0[3]);
    CHECK(ll[1] == 0, "kept layer 1 has a stage-1 loss %g", ll[1]);
    for (l = 0; l < L_; l++)
        if (l != 1) CHECK(fabs(ll[l] - ll0[l]) <= 1e-5 * fabs(ll0[l]), "layer %d loss %g != %g", l, ll[l], ll0[l]);
    CHECK(fabs(loss - (ll0[0] + ll0[2] + ll0[3]) / 3) <= 1e-5 * loss, "stage-1 loss %g is not the mean of the "
          "other layers' %g", loss, (ll0[0] + ll0[2] + ll0[3]) / 3);
    CHECK(max_abs_grad(&t, t.fmap_q + per, per) == 0 && max_abs_grad(&t, t.wf + 4, 4) == 0,
          "kept layer 1's maps got a stage-1 gradient");
    CHECK(max_abs_grad(&t, t.fmap_q, per) > 0, "layer 0's maps got no stage-1 gradient");
    lc_train_free(&t);
    lc_train_free(&t0);
}

static void test_inference(const lc_ctx *ctx, const int *tok) {
    static const unsigned char soft[L_] = {0, 1, 0, 0}, all[L_] = {1, 1, 1, 1};
    static float pre[T_ * V_], one[T_ * V_], ref[T_ * V_];
    static int seq[100];
    lc_train t, ta;
    lc_lolcats lp;
    lc_lolcats_run r;
    lc_run mr;
    lc_error err;
    int i, ok = 1;
    unsigned char *snap;
    size_t sb;
    float cont[5 * V_], cont2[5 * V_];
    printf("(c) linearized inference with layer 1 kept softmax\n");
    if (make_trainer(&t, ctx, soft, 2, 4)) { CHECK(0, "trainer"); return; }
    perturb(&t);
    lc_train_lolcats_view(&t, &lp);
    CHECK(lc_lolcats_run_init(&r, ctx, t.model, &lp, T_, &err) == LOLCATS_OK, "run init: %s", err.msg);
    printf("  KV cache bytes per token %zu (1 layer x 2 x Hk 2 x D 8 x 4)\n", r.kv_bytes_per_token);
    CHECK(r.kv_bytes_per_token == 1 * 2 * 2 * 8 * 4, "kv bytes per token %zu", r.kv_bytes_per_token);
    lc_lolcats_run_free(&r);
    lc_train_free(&t);

    /* sw: prefill, decode and chunks agree */
    {
        lc_train ts;
        lc_model_config mc = synth_cfg();
        lc_train_cfg tc = lc_train_cfg_default();
        tc.trainable = LOLCATS_TRAIN_FMAPS | LOLCATS_TRAIN_LORA; tc.feature_dim = 4; tc.hybrid.window = 4;
        tc.hybrid.variant = LOLCATS_WINDOW_SW; tc.max_tokens = T_; tc.lora_rank = 2; tc.softmax_layers = soft;
        CHECK(lc_train_init_full(&ts, ctx, &mc, &tc, &err) == LOLCATS_OK, "sw trainer");
        perturb(&ts);
        lc_train_lolcats_view(&ts, &lp);
        CHECK(lc_lolcats_run_init(&r, ctx, ts.model, &lp, T_, &err) == LOLCATS_OK, "sw run");
        lc_lolcats_forward(ts.model, &lp, &r, tok, T_, pre, &err);
        lc_lolcats_run_reset(&r);
        for (i = 0; i < T_; i++) {
            lc_lolcats_forward(ts.model, &lp, &r, tok + i, 1, NULL, &err);
            memcpy(one + (size_t)i * V_, r.logits, sizeof(float) * V_);
        }
        check_close("sw decode token by token vs prefill", one, pre, (size_t)T_ * V_, 1e-5, 1e-4);
        lc_lolcats_run_reset(&r);
        lc_lolcats_forward(ts.model, &lp, &r, tok, 5, one, &err);
        lc_lolcats_forward(ts.model, &lp, &r, tok + 5, 7, one + 5 * V_, &err);
        lc_lolcats_forward(ts.model, &lp, &r, tok + 12, 12, one + 12 * V_, &err);
        check_close("sw chunks 5+7+12 vs prefill", one, pre, (size_t)T_ * V_, 1e-5, 1e-4);
        /* grow the cache past its first 64 positions, then snapshot / restore */
        for (i = 0; i < 100; i++) seq[i] = (i * 13 + 5) % V_;
        lc_lolcats_run_reset(&r);
        ok = 1;
        for (i = 0; i < 90; i += 10) ok &= lc_lolcats_forward(ts.model, &lp, &r, seq + i, 10, NULL, &err) == 0;
        CHECK(ok && r.pos == 90, "90 tokens in chunks of 10 (cache growth): %s", err.msg);
        sb = lc_lolcats_run_snapshot_bytes(&r);
        snap = (unsigned char *)malloc(sb);
        lc_lolcats_run_snapshot(&r, snap);
        printf("  snapshot at pos 90: %zu bytes\n", sb);
        lc_lolcats_forward(ts.model, &lp, &r, seq + 90, 5, cont, &err);
        lc_lolcats_forward(ts.model, &lp, &r, seq + 90, 5, cont2, &err);  /* moves on: differs */
        CHECK(lc_lolcats_run_restore(&r, snap, sb, &err) == LOLCATS_OK, "restore: %s", err.msg);
        lc_lolcats_forward(ts.model, &lp, &r, seq + 90, 5, cont2, &err);
        CHECK(!memcmp(cont, cont2, sizeof cont), "restored run does not continue bit-identically");
        CHECK(lc_lolcats_run_restore(&r, snap, sb - 4, &err) != LOLCATS_OK, "a short snapshot is accepted");
        free(snap);
        /* the 90-token context through one run vs token by token of a fresh one */
        lc_lolcats_run_free(&r);
        lc_train_free(&ts);
    }

    /* every layer softmax, no LoRA: the softmax model */
    if (make_trainer(&ta, ctx, all, 0, 4)) { CHECK(0, "trainer"); return; }
    lc_train_lolcats_view(&ta, &lp);
    CHECK(lc_lolcats_run_init(&r, ctx, ta.model, &lp, T_, &err) == LOLCATS_OK, "run all");
    lc_lolcats_forward(ta.model, &lp, &r, tok, T_, pre, &err);
    CHECK(lc_run_init(&mr, ta.model, 64, T_, &err) == LOLCATS_OK, "lc_run");
    lc_model_forward(ctx, ta.model, &mr, tok, T_, ref, &err);
    check_close("all layers kept softmax vs lc_model_forward", pre, ref, (size_t)T_ * V_, 1e-6, 1e-5);
    lc_run_free(&mr);
    lc_lolcats_run_free(&r);
    lc_train_free(&ta);
}

static void test_checkpoint(const lc_ctx *ctx) {
    static const unsigned char soft[L_] = {0, 1, 0, 1};
    lc_train t;
    lc_lolcats lp, back;
    lc_error err;
    const char *path = "build/tests/softmax_layers/ckpt.safetensors";
    const char *path0 = "build/tests/softmax_layers/ckpt_none.safetensors";
    printf("(d) checkpoint round trip\n");
    if (system("mkdir -p build/tests/softmax_layers") != 0) { CHECK(0, "mkdir"); return; }
    if (make_trainer(&t, ctx, soft, 2, 4)) { CHECK(0, "trainer"); return; }
    lc_train_lolcats_view(&t, &lp);
    CHECK(lc_lolcats_save(&lp, path, NULL, 0, &err) == LOLCATS_OK, "save: %s", err.msg);
    CHECK(lc_lolcats_load(&back, path, t.model, &err) == LOLCATS_OK, "load: %s", err.msg);
    CHECK(back.softmax_layers && !back.softmax_layers[0] && back.softmax_layers[1] && !back.softmax_layers[2] &&
          back.softmax_layers[3], "softmax layers not restored");
    CHECK(lc_lolcats_meta(&back, "softmax_layers") && !strcmp(lc_lolcats_meta(&back, "softmax_layers"), "1,3"),
          "metadata softmax_layers = %s", lc_lolcats_meta(&back, "softmax_layers"));
    lc_lolcats_free(&back);
    lp.softmax_layers = NULL;
    CHECK(lc_lolcats_save(&lp, path0, NULL, 0, &err) == LOLCATS_OK, "save none");
    CHECK(lc_lolcats_load(&back, path0, t.model, &err) == LOLCATS_OK && !back.softmax_layers &&
          !lc_lolcats_meta(&back, "softmax_layers"), "a checkpoint without the list loads as none");
    lc_lolcats_free(&back);
    lc_train_free(&t);
}

static void test_parse(void) {
    static const char *bad[] = {"4", "1,1", "a", "1,", ",1", "1;2", "-1", " 1", "1 ", "2,x", "99999999999999"};
    static const char *why[] = {"outside", "twice", "not a layer", "not a layer", "not a layer", "not a layer",
                                "not a layer", "not a layer", "not a layer", "not a layer", "outside"};
    unsigned char sl[L_];
    double mse[L_] = {0.5, 2.0, 0.1, 1.5};
    char buf[64];
    lc_error err;
    size_t i;
    printf("(e) lists\n");
    CHECK(lc_softmax_layers_parse(sl, "3,1", L_, &err) == LOLCATS_OK && sl[1] && sl[3] && !sl[0] && !sl[2], "3,1");
    CHECK(lc_softmax_layers_format(buf, sizeof buf, sl, L_) == 2 && !strcmp(buf, "1,3"), "format %s", buf);
    CHECK(lc_softmax_layers_parse(sl, "none", L_, &err) == LOLCATS_OK && !sl[0] && !sl[1] && !sl[2] && !sl[3], "none");
    CHECK(lc_softmax_layers_format(buf, sizeof buf, sl, L_) == 0 && !strcmp(buf, "none"), "format none %s", buf);
    for (i = 0; i < sizeof bad / sizeof *bad; i++) {
        lc_status st = lc_softmax_layers_parse(sl, bad[i], L_, &err);
        CHECK(st != LOLCATS_OK && strstr(err.msg, why[i]) && strstr(err.msg, bad[i]),
              "list '%s' not refused with '%s' (%s)", bad[i], why[i], st ? err.msg : "accepted");
        if (st) printf("  '%s': %s\n", bad[i], err.msg);
    }
    lc_softmax_layers_top(sl, mse, L_, 2);
    CHECK(sl[1] && sl[3] && !sl[0] && !sl[2], "top 2 of {0.5, 2, 0.1, 1.5} are layers 1, 3");
    lc_softmax_layers_top(sl, mse, L_, 1);
    CHECK(sl[1] && !sl[0] && !sl[2] && !sl[3], "top 1 is layer 1");
    lc_softmax_layers_top(sl, mse, L_, 9);
    CHECK(sl[0] && sl[1] && sl[2] && sl[3], "top 9 of 4 is all");
}

#define SLD "build/tests/softmax_layers"
static char out_buf[1 << 16], err_buf[1 << 16];

#include "cli_run.h"

static int run(const char *bin, const char *args) {
    return cli_run(SLD, bin, args, out_buf, sizeof out_buf, err_buf, sizeof err_buf);
}

static void test_cli(void) {
    const char *bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    const char *common = "--model " SLD "/model --data random --seq-len 32 --window 4 --feature-dim 4 --lora-rank 2 "
                         "--tokens 128 --grad-accum 1 --val-seqs 2 --val-every 0 --force";
    static const char *bad[][2] = {{"4", "layer 4 is outside"}, {"1,1", "layer 1 is given twice"},
                                   {"1,x", "'x' is not a layer index"}, {"auto:0", "auto:K"}, {"auto:x", "auto:K"}};
    char a[2048];
    lc_lolcats lp;
    lc_error err;
    double after[L_];
    unsigned char top[L_];
    const char *s;
    int rc, l, i;
    FILE *f = fopen(bin, "rb");
    printf("(f) the CLI: %s\n", bin);
    if (!f) { printf("SKIPPED: CLI cases (%s absent)\n", bin); return; }
    fclose(f);
    rc = run(bin, "synth --like smollm-135m --layers 4 --dim 32 --hidden 48 --heads 4 --kv-heads 2 --head-dim 8 "
                  "--vocab 64 --dtype f32 --force --out " SLD "/model");
    if (!CHECK(rc == 0, "synth: exit %d: %s", rc, err_buf)) return;
    snprintf(a, sizeof a, "linearize %s --softmax-layers 1 --out " SLD "/lin.safetensors", common);
    rc = run(bin, a);
    CHECK(rc == 0, "linearize --softmax-layers 1: exit %d: %s", rc, err_buf);
    CHECK(strstr(err_buf, "kept softmax layers 1: decode KV cache 128 bytes per token") != NULL,
          "no decode KV line: %s", err_buf);
    if (CHECK(lc_lolcats_load(&lp, SLD "/lin.safetensors", NULL, &err) == LOLCATS_OK, "load: %s", err.msg)) {
        CHECK(lp.softmax_layers && lp.softmax_layers[1] && !lp.softmax_layers[0] && !lp.softmax_layers[2] &&
              !lp.softmax_layers[3], "checkpoint's list is not {1}");
        lc_lolcats_free(&lp);
    }
    rc = run(bin, "inspect " SLD "/lin.safetensors");
    CHECK(rc == 0 && strstr(out_buf, "softmax_layers") && strstr(out_buf, "128 bytes per token"),
          "inspect does not show the list and its cost: %s", out_buf);
    /* auto:2: the two highest stage-1 validation losses, as --report records them */
    snprintf(a, sizeof a, "linearize %s --softmax-layers auto:2 --report " SLD "/rep --out " SLD "/auto.safetensors",
             common);
    rc = run(bin, a);
    CHECK(rc == 0 && strstr(err_buf, "auto:2: keeping layers"), "linearize auto:2: exit %d: %s", rc, err_buf);
    slurp(SLD "/rep/summary.json", out_buf, sizeof out_buf);
    s = strstr(out_buf, "\"layer_loss_after\": [");
    if (!CHECK(s != NULL, "no layer_loss_after in summary.json")) return;
    s += strlen("\"layer_loss_after\": [");
    for (l = 0; l < L_; l++) {
        char *e;
        after[l] = strtod(s, &e);
        s = e + (*e == ',' ? 2 : 0);
    }
    for (l = 0; l < L_; l++) {   /* rank of layer l: how many are higher */
        int higher = 0;
        for (i = 0; i < L_; i++) higher += after[i] > after[l] || (after[i] == after[l] && i < l);
        top[l] = higher < 2;
    }
    printf("  stage-1 validation losses %.6g %.6g %.6g %.6g -> top 2: %d%d%d%d\n", after[0], after[1], after[2],
           after[3], top[0], top[1], top[2], top[3]);
    if (CHECK(lc_lolcats_load(&lp, SLD "/auto.safetensors", NULL, &err) == LOLCATS_OK, "load auto: %s", err.msg)) {
        int same = lp.softmax_layers != NULL;
        for (l = 0; same && l < L_; l++) same = !lp.softmax_layers[l] == !top[l];
        CHECK(same, "auto:2 kept %s, not the top-2 loss layers", lc_lolcats_meta(&lp, "softmax_layers"));
        lc_lolcats_free(&lp);
    }
    remove(SLD "/never.safetensors");
    for (i = 0; i < (int)(sizeof bad / sizeof *bad); i++) {
        snprintf(a, sizeof a, "linearize %s --softmax-layers %s --out " SLD "/never.safetensors", common, bad[i][0]);
        rc = run(bin, a);
        CHECK(rc == 2 && strstr(err_buf, "lolcats: error:") && strstr(err_buf, bad[i][1]),
              "--softmax-layers %s: exit %d, stderr %s", bad[i][0], rc, err_buf);
    }
    snprintf(a, sizeof a, "distill %s --softmax-layers auto:1 --out " SLD "/never.safetensors", common);
    rc = run(bin, a);
    CHECK(rc == 2 && strstr(err_buf, "after stage 1 of linearize"), "distill auto:1: exit %d: %s", rc, err_buf);
    f = fopen(SLD "/never.safetensors", "rb");
    CHECK(!f, "a refused run wrote a checkpoint");
    if (f) fclose(f);
}

int main(void) {
    lc_ctx ctx;
    int tok[T_], lab[T_], i;
    lc_ctx_init(&ctx);
    ctx.simd = LOLCATS_SIMD_SCALAR;   /* the reference forms: the manual composition matches exactly */
    for (i = 0; i < T_; i++) { tok[i] = (i * 7 + 3) % V_; lab[i] = (i * 11 + 1) % V_; }
    test_training(&ctx, tok, lab);
    test_inference(&ctx, tok);
    lc_ctx_init(&ctx);                /* and the fast forms (tiled prefill attention) */
    printf("fast path (ctx.simd %d)\n", (int)ctx.simd);
    test_inference(&ctx, tok);
    test_checkpoint(&ctx);
    test_parse();
    test_cli();
    return check_done();
}
