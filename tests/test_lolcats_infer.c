/* test_lolcats_infer.c - linearized inference (lc_lolcats_run, lc_lolcats_forward)
   against the trainer's forward and the softmax model:
   (a) sw: token-by-token decoding gives the trainer's logits (decode == sw prefill);
   (b) sw: prefill then decode, and prefill split into chunks, equal token-by-token
       decoding, state included; tk: the prefill equals the trainer's tk forward
       (N <= w quirk, w < N <= 2w, N > 2w), and a continuation chunk after it
       equals single decode steps;
   (c) the run's memory (counted by the allocator hooks) is the same after 1k and
       32k tokens, while the softmax KV cache grows with the context;
   (d) stories260K (when ../shared/models is present): with a window longer than
       the sequence the linearized model is the softmax model (lc_model_forward).
   Rule: |a - r| <= atol + rtol |r| (float32 rounding: window sums run in ring
   order in decode, in time order in the prefill). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* counting allocator: live bytes and peak of everything the library allocates
   (the kernels allocate scratch inside their OpenMP loops: the counts are
   updated one thread at a time, or a lost update wraps g_live around) */
static size_t g_live, g_peak;
static void count(size_t add, size_t sub) {
#ifdef _OPENMP
#pragma omp critical(lc_test_count)
#endif
    {
        g_live = g_live + add - sub;
        if (g_live > g_peak) g_peak = g_live;
    }
}
static void *cnt_malloc(size_t n) {
    size_t *p = (size_t *)malloc(n + sizeof(size_t) * 2);
    if (!p) return NULL;
    p[0] = n;
    count(n, 0);
    return p + 2;
}
static void cnt_free(void *q) {
    size_t *p;
    if (!q) return;
    p = (size_t *)q - 2;
    count(0, p[0]);
    free(p);
}
static void *cnt_realloc(void *q, size_t n) {
    void *r = cnt_malloc(n);
    if (r && q) {
        size_t old = ((size_t *)q - 2)[0];
        memcpy(r, q, old < n ? old : n);
        cnt_free(q);
    }
    return r;
}
#define LOLCATS_MALLOC(sz) cnt_malloc(sz)
#define LOLCATS_REALLOC(p, sz) cnt_realloc(p, sz)
#define LOLCATS_FREE(p) cnt_free(p)
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define V 11
#define TMAX 40

static lc_model_config tiny_cfg(int interleaved, int tied) {
    lc_model_config c;
    memset(&c, 0, sizeof c);
    c.dim = 16; c.hidden_dim = 24; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.head_dim = 4;
    c.vocab_size = V; c.seq_len = 64; c.norm_eps = 1e-5f; c.rope_theta = 10000.0f;
    c.rope_interleaved = interleaved; c.tied = tied; c.bos_id = 1; c.eos_id = 2;
    snprintf(c.arch, sizeof c.arch, "tiny");
    return c;
}

static int tokens[TMAX + 16];
static int g_t2r;  /* make_model: relu feature maps with per-head biases (T2R) */
static int g_sinks;  /* make_model: attention sinks (lc_hybrid_cfg.sinks) */

/* A tiny random model with non-trivial LoRA, feature maps and window factors. */
static int make_model(lc_train *t, int variant, int window, int interleaved, int tied, int T) {
    lc_model_config mc = tiny_cfg(interleaved, tied);
    lc_train_cfg tc = lc_train_cfg_default();
    lc_error err;
    lc_ctx ctx;
    lc_rng r;
    size_t k;
    int l, tg;
    lc_ctx_init(&ctx);
    tc.attn = LOLCATS_ATTN_HYBRID; tc.trainable = LOLCATS_TRAIN_FULL | LOLCATS_TRAIN_LORA;
    tc.feature_dim = 3; tc.lora_rank = 2; tc.lora_alpha = 4;
    tc.hybrid.variant = variant; tc.hybrid.window = window; tc.max_tokens = T; tc.seed = 3;
    if (g_t2r) { tc.fmap.act = LOLCATS_FMAP_RELU; tc.fmap_bias = 1; }
    tc.hybrid.sinks = g_sinks;
    if (!CHECK(lc_train_init_full(t, &ctx, &mc, &tc, &err) == LOLCATS_OK, "init: %s", err.msg)) return 0;
    lc_rng_seed(&r, 77);
    for (l = 0; l < mc.n_layers; l++)
        for (tg = 0; tg < 4; tg++) {
            size_t off = t->lora_off[l][tg], nb;
            if (!off) continue;
            off += (size_t)tc.lora_rank * (tg == 3 ? mc.n_heads * mc.head_dim : mc.dim);
            nb = (size_t)tc.lora_rank * (tg == 0 ? mc.n_heads * mc.head_dim : tg == 3 ? mc.dim : mc.n_kv_heads * mc.head_dim);
            for (k = 0; k < nb; k++) t->params[off + k] = 0.3f * lc_rng_normal(&r);
        }
    for (k = 0; k < (size_t)2 * mc.n_layers * mc.n_heads * mc.head_dim * tc.feature_dim; k++)
        t->fmap_q[k] += 0.3f * lc_rng_normal(&r);
    for (k = 0; k < (size_t)(t->lora - t->params); k++) t->params[k] *= 10.0f;  /* sharper attention */
    for (l = 0; l < mc.n_layers; l++) {
        int c;
        for (c = 0; c < mc.dim; c++) {
            ((float *)t->model->layers[l].rms_att.data)[c] = 1.0f + 0.1f * lc_rng_normal(&r);
            ((float *)t->model->layers[l].rms_ffn.data)[c] = 1.0f + 0.1f * lc_rng_normal(&r);
        }
    }
    for (k = 0; k < (size_t)mc.dim; k++) ((float *)t->model->rms_final.data)[k] = 1.0f;
    for (k = 0; k < (size_t)mc.n_layers * mc.n_heads; k++) t->wf[k] = lc_rng_normal(&r);
    return 1;
}

/* The trainer's forward logits (T,V) of tokens[0..T). */
static int trainer_logits(lc_train *t, float *out, int T) {
    int labels[TMAX + 16], i, n;
    double loss;
    lc_error err;
    for (i = 0; i < T; i++) labels[i] = tokens[(i + 1) % T];
    if (!CHECK(lc_train_lm_step(t, tokens, labels, T, 0, &loss, &n, &err) == LOLCATS_OK, "lm_step: %s", err.msg))
        return 0;
    memcpy(out, lc_train_logits(t), sizeof(float) * (size_t)T * V);
    return 1;
}

/* Feeds tokens[from..to) in chunks of `chunk` (1: token by token), logits into out rows from.. */
static int feed(const lc_model *m, const lc_lolcats *lp, lc_lolcats_run *r, int from, int to, int chunk,
                float *out) {
    lc_error err;
    int s;
    for (s = from; s < to; s += chunk) {
        int k = to - s < chunk ? to - s : chunk;
        if (!CHECK(lc_lolcats_forward(m, lp, r, tokens + s, k, out + (size_t)s * V, &err) == LOLCATS_OK,
                   "forward: %s", err.msg))
            return 0;
        if (!CHECK(memcmp(r->logits, out + (size_t)(s + k - 1) * V, sizeof(float) * V) == 0,
                   "r->logits is not the last row of logits_all"))
            return 0;
    }
    return 1;
}

/* Decode states of two runs agree (rings in slot order, S, z). */
static void check_states(const char *what, const lc_lolcats_run *a, const lc_lolcats_run *b) {
    int l;
    char name[160];
    for (l = 0; l < a->n_layers; l++) {
        const lc_decode_state *x = &a->layers[l], *y = &b->layers[l];
        size_t n = lc_decode_state_floats_sinks(x->H, x->Hk, x->D, x->F, x->window, x->sinks);
        CHECK(x->pos == y->pos, "%s: layer %d pos %lld vs %lld", what, l, (long long)x->pos, (long long)y->pos);
        snprintf(name, sizeof name, "%s, layer %d ring + S, z", what, l);
        check_close(name, x->k_ring, y->k_ring, n, 1e-4, 1e-4);
    }
}

static void test_sw(int interleaved, int tied, int simd) {
    enum { T = 29, W = 5 };
    lc_train t;
    lc_lolcats lp;
    lc_lolcats_run a, b, c;
    lc_ctx ctx;
    lc_error err;
    static float ref[TMAX * V], la[TMAX * V], lb[TMAX * V], lcc[TMAX * V];
    char name[160];
    const char *tag = simd ? "" : " scalar";
    if (!make_model(&t, LOLCATS_WINDOW_SW, W, interleaved, tied, T)) return;
    lc_train_lolcats_view(&t, &lp);
    lc_ctx_init(&ctx);
    if (!simd) ctx.simd = LOLCATS_SIMD_SCALAR;
    printf("sw, window %d, %s RoPE, %s%s, %d sinks\n", W, interleaved ? "interleaved" : "rotate-half",
           tied ? "tied" : "untied", tag, g_sinks);
    CHECK(trainer_logits(&t, ref, T), "trainer");
    CHECK(lc_lolcats_run_init(&a, &ctx, t.model, &lp, 1, &err) == LOLCATS_OK, "init: %s", err.msg);
    CHECK(lc_lolcats_run_init(&b, &ctx, t.model, &lp, T, &err) == LOLCATS_OK, "init: %s", err.msg);
    CHECK(lc_lolcats_run_init(&c, &ctx, t.model, &lp, 8, &err) == LOLCATS_OK, "init: %s", err.msg);
    /* (a) token by token == the trainer's sw forward */
    feed(t.model, &lp, &a, 0, T, 1, la);
    snprintf(name, sizeof name, "(a) decode 1 by 1 vs trainer (%d tok)", T);
    check_close(name, la, ref, (size_t)T * V, 2e-4, 2e-4);
    /* (b) prefill 20, then decode 9 == token by token */
    feed(t.model, &lp, &b, 0, 20, 20, lb);
    feed(t.model, &lp, &b, 20, T, 1, lb);
    check_close("(b) prefill 20 + decode 9 vs 1 by 1", lb, la, (size_t)T * V, 2e-4, 2e-4);
    check_close("(b) prefill 20 vs trainer", lb, ref, (size_t)20 * V, 2e-4, 2e-4);
    check_states("(b) state after prefill + decode vs 1 by 1", &b, &a);
    /* prefill split into chunks of 3 (ring partly full at the second chunk), then 8 */
    feed(t.model, &lp, &c, 0, 3, 3, lcc);
    feed(t.model, &lp, &c, 3, T, 8, lcc);
    check_close("(b) chunks 3, 8, 8, 8, 2 vs 1 by 1", lcc, la, (size_t)T * V, 2e-4, 2e-4);
    check_states("(b) state after chunks vs 1 by 1", &c, &a);
    /* reset starts a new sequence */
    lc_lolcats_run_reset(&c);
    feed(t.model, &lp, &c, 0, 8, 8, lcc);
    check_close("(b) after reset: prefill 8 vs trainer", lcc, ref, (size_t)8 * V, 2e-4, 2e-4);
    lc_lolcats_run_free(&a);
    /* errors */
    CHECK(lc_lolcats_forward(t.model, &lp, &c, tokens, 9, NULL, &err) == LOLCATS_ERR_ARG, "9 > max_tokens accepted");
    {
        int bad = V;
        CHECK(lc_lolcats_forward(t.model, &lp, &c, &bad, 1, NULL, &err) == LOLCATS_ERR_ARG, "token %d accepted", bad);
    }
    {
        lc_lolcats lp2 = lp;
        lp2.hybrid.window = W + 1;
        CHECK(lc_lolcats_forward(t.model, &lp2, &c, tokens, 1, NULL, &err) == LOLCATS_ERR_ARG, "other window accepted");
        lp2 = lp;
        lp2.hybrid.sinks = g_sinks + 1;
        CHECK(lc_lolcats_forward(t.model, &lp2, &c, tokens, 1, NULL, &err) == LOLCATS_ERR_ARG, "other sinks accepted");
        lp2 = lp;
        lp2.n_heads = 3;
        CHECK(lc_lolcats_run_init(&a, NULL, t.model, &lp2, 1, &err) == LOLCATS_ERR_ARG, "wrong heads accepted");
    }
    lc_lolcats_run_free(&b);
    lc_lolcats_run_free(&c);
    lc_train_free(&t);
}

static void test_tk(int interleaved) {
    enum { W = 4 };
    static const int Ns[] = {3, 4, 6, 8, 13, 16, 21};
    lc_train t;
    lc_lolcats lp;
    lc_error err;
    static float ref[TMAX * V], la[(TMAX + 8) * V], lb[(TMAX + 8) * V];
    char name[160];
    size_t i;
    if (!make_model(&t, LOLCATS_WINDOW_TK, W, interleaved, 1, TMAX)) return;
    lc_train_lolcats_view(&t, &lp);
    printf("tk, window %d, %s RoPE\n", W, interleaved ? "interleaved" : "rotate-half");
    for (i = 0; i < sizeof Ns / sizeof Ns[0]; i++) {
        int N = Ns[i];
        lc_lolcats_run a, b;
        CHECK(trainer_logits(&t, ref, N), "trainer");
        CHECK(lc_lolcats_run_init(&a, NULL, t.model, &lp, N > 7 ? N : 7, &err) == LOLCATS_OK, "init: %s", err.msg);
        CHECK(lc_lolcats_run_init(&b, NULL, t.model, &lp, N > 7 ? N : 7, &err) == LOLCATS_OK, "init: %s", err.msg);
        feed(t.model, &lp, &a, 0, N, N, la);
        snprintf(name, sizeof name, "(b) tk prefill N=%d vs trainer tk", N);
        check_close(name, la, ref, (size_t)N * V, 2e-4, 2e-4);
        /* after the prefill: a chunk of 7 == 7 decode steps */
        feed(t.model, &lp, &b, 0, N, N, lb);
        feed(t.model, &lp, &a, N, N + 7, 7, la);
        feed(t.model, &lp, &b, N, N + 7, 1, lb);
        snprintf(name, sizeof name, "(b) tk prefill %d, chunk 7 vs 7 decodes", N);
        check_close(name, la + (size_t)N * V, lb + (size_t)N * V, (size_t)7 * V, 2e-4, 2e-4);
        check_states(name, &a, &b);
        lc_lolcats_run_free(&a);
        lc_lolcats_run_free(&b);
    }
    {   /* the prefill differs from sw decoding when N > 2w (the terraced masks) */
        lc_lolcats_run a, b;
        double d = 0;
        int N = 13;
        lc_lolcats_run_init(&a, NULL, t.model, &lp, N, &err);
        lc_lolcats_run_init(&b, NULL, t.model, &lp, N, &err);
        feed(t.model, &lp, &a, 0, N, N, la);
        feed(t.model, &lp, &b, 0, N, 1, lb);
        for (i = 0; i < (size_t)N * V; i++) d = fabs((double)la[i] - (double)lb[i]) > d ? fabs((double)la[i] - (double)lb[i]) : d;
        printf("  tk prefill vs sw-rule decoding, N=13: max abs diff %.3e (expected > 0)\n", d);
        CHECK(d > 1e-3, "tk prefill equals decoding: masks not terraced?");
        lc_lolcats_run_free(&a);
        lc_lolcats_run_free(&b);
    }
    lc_train_free(&t);
}

/* A checkpoint written by lc_lolcats_save and read by lc_lolcats_load runs the
   same linearized model as the trainer's views (LoRA included). */
static void test_checkpoint(int t2r) {
#ifdef LOLCATS_CKPT_FORMAT
    const char *path = "build/tmp_lolcats_infer_ckpt.safetensors";
    lc_train t;
    lc_lolcats lp, ld;
    lc_lolcats_run a, b;
    lc_error err;
    static float la[TMAX * V], lb[TMAX * V], ref[TMAX * V];
    int N = 21, ok;
    g_t2r = t2r;
    ok = make_model(&t, LOLCATS_WINDOW_TK, 4, 0, 1, N);
    g_t2r = 0;
    if (!ok) return;
    lc_train_lolcats_view(&t, &lp);
    printf("checkpoint round trip%s\n", t2r ? ", T2R maps (relu + per-head biases)" : "");
    memset(&ld, 0, sizeof ld);
    if (CHECK(lc_lolcats_save(&lp, path, NULL, 0, &err) == LOLCATS_OK, "save: %s", err.msg) &&
        CHECK(lc_lolcats_load(&ld, path, t.model, &err) == LOLCATS_OK, "load: %s", err.msg)) {
        CHECK(ld.lora_rank == lp.lora_rank && ld.hybrid.window == 4 && ld.hybrid.variant == LOLCATS_WINDOW_TK,
              "loaded config: rank %d window %d variant %d", ld.lora_rank, ld.hybrid.window, ld.hybrid.variant);
        lc_lolcats_run_init(&a, NULL, t.model, &lp, N, &err);
        lc_lolcats_run_init(&b, NULL, t.model, &ld, N, &err);
        feed(t.model, &lp, &a, 0, N, N, la);
        feed(t.model, &ld, &b, 0, N, 5, lb);  /* prefill 5, then continuation chunks */
        lc_lolcats_run_reset(&b);
        feed(t.model, &ld, &b, 0, N, N, lb);
        CHECK(memcmp(la, lb, sizeof(float) * (size_t)N * V) == 0, "loaded checkpoint gives other logits");
        CHECK(!ld.fbq == !t2r && !ld.fbk == !t2r, "biases %s after loading", ld.fbq ? "present" : "absent");
        if (t2r && ld.fbq)
            CHECK(memcmp(ld.fbq, t.fbq, sizeof(float) * 2 * 4) == 0 && memcmp(ld.fbk, t.fbk, sizeof(float) * 2 * 4) == 0 &&
                  t.fbq[0] != 0.0f, "biases differ after the round trip");
        if (trainer_logits(&t, ref, N)) check_close("loaded checkpoint vs trainer", la, ref, (size_t)N * V, 2e-4, 2e-4);
        lc_lolcats_run_free(&a);
        lc_lolcats_run_free(&b);
    }
    lc_lolcats_free(&ld);
    remove(path);
    lc_train_free(&t);
#else
    printf("SKIPPED: checkpoint round trip (no lc_lolcats_load in this header)\n");
#endif
}

/* (c) memory: constant in the context length. */
static void test_memory(void) {
    lc_train t;
    lc_lolcats lp;
    lc_error err;
    lc_run sr;
    size_t base, peak1k = 0, peak32k = 0, sb = 0, kv1k, kv32k;
    int ctxs[2] = {1024, 32768}, k, i;
    if (!make_model(&t, LOLCATS_WINDOW_TK, 8, 0, 1, 16)) return;
    lc_train_lolcats_view(&t, &lp);
    printf("memory\n");
#ifdef _OPENMP
    omp_set_num_threads(1);  /* 33k single-token steps of a tiny model: fork/join would dominate */
#endif
    for (k = 0; k < 2; k++) {
        lc_lolcats_run r;
        int tok = 3, ok = 1;
        base = g_live;
        g_peak = g_live;
        if (!CHECK(lc_lolcats_run_init(&r, NULL, t.model, &lp, 16, &err) == LOLCATS_OK, "init: %s", err.msg)) return;
        ok &= lc_lolcats_forward(t.model, &lp, &r, tokens, 16, NULL, &err) == LOLCATS_OK;
        for (i = 16; i < ctxs[k]; i++) {
            ok &= lc_lolcats_forward(t.model, &lp, &r, &tok, 1, NULL, &err) == LOLCATS_OK;
            tok = lc_argmax(r.logits, V);
        }
        CHECK(ok && r.pos == ctxs[k] && r.logits[0] == r.logits[0], "decode to %d failed", ctxs[k]);
        if (k == 0) peak1k = g_peak - base; else peak32k = g_peak - base;
        sb = r.state_bytes;
        printf("  context %5d: heap peak %zu bytes (state per sequence %zu bytes, run total %zu)\n",
               ctxs[k], g_peak - base, r.state_bytes, r.bytes);
        lc_lolcats_run_free(&r);
        CHECK(g_live == base, "lc_lolcats_run_free left %zu bytes", g_live - base);
    }
    CHECK(peak1k == peak32k && peak1k > 0, "(c) memory at 1k %zu vs 32k %zu", peak1k, peak32k);
    CHECK(sb > 0 && sb < peak1k, "(c) state bytes %zu", sb);
    lc_run_init(&sr, t.model, 1024, 1, &err); kv1k = sr.bytes; lc_run_free(&sr);
    lc_run_init(&sr, t.model, 32768, 1, &err); kv32k = sr.bytes; lc_run_free(&sr);
    printf("  softmax KV cache run (lc_run): ctx 1024 %zu bytes, ctx 32768 %zu bytes\n", kv1k, kv32k);
    CHECK(kv32k > 16 * kv1k / 2, "softmax run did not grow with ctx?");
    lc_train_free(&t);
#ifdef _OPENMP
    omp_set_num_threads(omp_get_num_procs());
#endif
}

/* (d) window >= sequence: the linearized model is the softmax model. */
static void test_stories260k(void) {
    const char *mp = "../shared/models/stories260K/stories260K.bin";
    FILE *f = fopen(mp, "rb");
    lc_model m;
    lc_error err;
    lc_lolcats lp;
    lc_fmap_cfg fm = lc_fmap_cfg_default();
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    lc_lolcats_run r, r1;
    lc_run sr;
    float *mem, *soft, *lin, *lin1;
    int N = 48, i, k;
    if (!f) { printf("SKIPPED: %s not found (linearized == softmax on stories260K)\n", mp); return; }
    fclose(f);
    if (!CHECK(lc_model_load(&m, mp, &err) == LOLCATS_OK, "load: %s", err.msg)) return;
    printf("stories260K: identity maps, window >= sequence\n");
    for (i = 0; i < N; i++) tokens[i] = (int)((i * 37 + 11) % m.cfg.vocab_size);
    tokens[0] = 1;
    mem = (float *)malloc(sizeof(float) * lc_lolcats_identity_floats(&m.cfg, m.cfg.head_dim));
    soft = (float *)malloc(sizeof(float) * (size_t)N * m.cfg.vocab_size);
    lin = (float *)malloc(sizeof(float) * (size_t)N * m.cfg.vocab_size);
    lin1 = (float *)malloc(sizeof(float) * (size_t)N * m.cfg.vocab_size);
    CHECK(lc_run_init(&sr, &m, N, N, &err) == LOLCATS_OK, "run: %s", err.msg);
    lc_model_forward(NULL, &m, &sr, tokens, N, soft, &err);
    for (k = 0; k < 2; k++) {
        char name[128];
        hc.variant = k ? LOLCATS_WINDOW_TK : LOLCATS_WINDOW_SW;
        hc.window = k ? 32 : 64;  /* tk with w < N <= 2w: every key in the window */
        lc_lolcats_init_identity(&lp, mem, &m.cfg, m.cfg.head_dim, &fm, &hc);
        CHECK(lc_lolcats_run_init(&r, NULL, &m, &lp, N, &err) == LOLCATS_OK, "init: %s", err.msg);
        CHECK(lc_lolcats_forward(&m, &lp, &r, tokens, N, lin, &err) == LOLCATS_OK, "fwd: %s", err.msg);
        snprintf(name, sizeof name, "(d) %s w=%d prefill %d vs softmax", k ? "tk" : "sw", hc.window, N);
        check_close(name, lin, soft, (size_t)N * m.cfg.vocab_size, 1e-4, 1e-4);
        lc_lolcats_run_free(&r);
    }
    /* decoding with the window >= everything seen is softmax decoding too */
    hc.variant = LOLCATS_WINDOW_SW; hc.window = 64;
    lc_lolcats_init_identity(&lp, mem, &m.cfg, m.cfg.head_dim, &fm, &hc);
    lc_lolcats_run_init(&r1, NULL, &m, &lp, 8, &err);
    lc_lolcats_forward(&m, &lp, &r1, tokens, 8, lin1, &err);
    for (i = 8; i < N; i++) lc_lolcats_forward(&m, &lp, &r1, tokens + i, 1, lin1 + (size_t)i * m.cfg.vocab_size, &err);
    check_close("(d) sw prefill 8 + 40 decode steps vs softmax", lin1, soft, (size_t)N * m.cfg.vocab_size, 1e-4, 1e-4);
    lc_lolcats_run_free(&r1);
    lc_run_free(&sr);
    free(mem); free(soft); free(lin); free(lin1);
    lc_model_free(&m);
}

/* (e) the command line: eval --lolcats scores the same windows and tokens as the
   base model (equal NLL when the window covers the context); generate --lolcats
   reports the state size. Needs $LOLCATS_BIN and stories260K. */
static double cli_nll(const char *args, long long *ntok) {
    char cmd[1024], buf[2048];
    const char *bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    const char *p;
    FILE *f;
    size_t n;
    double nll = -1;
    snprintf(cmd, sizeof cmd, "%s %s > build/tmp_lolcats_infer_out.txt 2>&1", bin, args);
    if (system(cmd) != 0) { remove("build/tmp_lolcats_infer_out.txt"); return -1; }
    f = fopen("build/tmp_lolcats_infer_out.txt", "r");
    n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
    remove("build/tmp_lolcats_infer_out.txt");
    if ((p = strstr(buf, "\"nll\": ")) != NULL) nll = atof(p + 7);
    if (ntok && (p = strstr(buf, "\"tokens\": ")) != NULL) *ntok = atoll(p + 10);
    if (strstr(args, "generate")) nll = strstr(buf, "bytes per sequence") ? 0 : -1;
    return nll;
}

static void test_cli(void) {
    const char *mp = "../shared/models/stories260K/stories260K.bin", *src = "../shared/data/tinystories.valid-head.txt";
    const char *data = "build/tmp_lolcats_infer_data.txt";
    char base[600], args[900], text[6000];
    FILE *f = fopen(mp, "rb"), *g = fopen(src, "rb");
    double b, l, t;
    long long nb = 0, nl = 0, nt = 0;
    size_t n = 0;
    if (f) fclose(f);
    if (g) { n = fread(text, 1, sizeof text, g); fclose(g); }
    if (!f || !g) { printf("SKIPPED: %s or %s not found (eval --lolcats)\n", mp, src); return; }
    {
        char cmd[600];
        const char *bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
        snprintf(cmd, sizeof cmd, "%s --version > build/tmp_lolcats_infer_out.txt 2>&1", bin);
        if (system(cmd) != 0) { printf("SKIPPED: %s does not run (eval --lolcats; make builds it)\n", bin); return; }
    }
    g = fopen(data, "wb");  /* the first 6000 bytes: a few thousand tokens */
    if (!CHECK(g && fwrite(text, 1, n, g) == n, "cannot write %s", data)) { if (g) fclose(g); return; }
    fclose(g);
    printf("command line\n");
    snprintf(base, sizeof base, "--model %s --tokenizer ../shared/models/stories260K/tok512.bin", mp);
    snprintf(args, sizeof args, "eval %s --data %s --ctx 128 --json", base, data);
    b = cli_nll(args, &nb);
    snprintf(args, sizeof args, "eval %s --data %s --ctx 128 --json --lolcats identity --window 128 --variant sw", base, data);
    l = cli_nll(args, &nl);
    snprintf(args, sizeof args, "eval %s --data %s --ctx 128 --json --lolcats identity --window 16", base, data);
    t = cli_nll(args, &nt);
    printf("  eval ctx 128: base NLL %.6f (%lld tok), linearized w=128 sw %.6f (%lld tok), identity tk w=16 %.6f\n",
           b, nb, l, nl, t);
    CHECK(b > 0 && nb > 0 && nb == nl && nb == nt, "eval --lolcats scores other tokens (%lld, %lld, %lld)", nb, nl, nt);
    CHECK(fabs(b - l) < 1e-4, "eval --lolcats, window >= ctx: NLL %.6f vs base %.6f", l, b);
    CHECK(t > b + 0.05, "identity maps with a short window should lose to softmax (%.4f vs %.4f)", t, b);
    snprintf(args, sizeof args, "generate %s --prompt Once --steps 300 --temperature 0 --lolcats identity --window 16", base);
    CHECK(cli_nll(args, NULL) == 0, "generate --lolcats does not report the state size");
    snprintf(args, sizeof args, "eval %s --data %s --lolcats identity --variant xx", base, data);
    CHECK(cli_nll(args, NULL) < 0, "--variant xx accepted");
    remove(data);
}

int main(void) {
    lc_rng r;
    int i;
    lc_rng_seed(&r, 9);
    for (i = 0; i < TMAX + 16; i++) tokens[i] = (int)(lc_rng_u64(&r) % V);
    test_sw(0, 1, 1);
    test_sw(1, 0, 1);
    test_sw(0, 0, 0);
    g_sinks = 2;  /* attention sinks: decode, chunks and prefill == the trainer with sinks */
    test_sw(0, 1, 1);
    test_sw(1, 0, 0);
    g_sinks = 0;
    test_tk(0);
    test_tk(1);
    test_checkpoint(0);
    test_checkpoint(1);
    test_memory();
    test_stories260k();
    test_cli();
    return check_done();
}
