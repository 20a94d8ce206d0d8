/* test_qwen.c - Qwen2 / Qwen2.5 (q/k/v biases) and Qwen3 (per-head q/k RMSNorm,
   explicit head_dim) checkpoints:
   - tiny models written by `lolcats synth --like qwen2.5-7b|qwen3-8b|qwen3-0.6b`
     (real architectures' structure, small widths) load, and their logits at
     every position match tests/data/qwen_*_ref.safetensors (made by the
     independent PyTorch forward tools/qwen_reference.py) within 1e-4; the
     greedy continuation (KV-cached decoding) equals the reference's; without
     the biases / q-k norms the logits are far off (the check can fail);
   - config.json: the sliding-window fields present but disabled load (window
     off); use_sliding_window true and Qwen3's attention_bias true are refused.
   - training: the gradients of stage 2 (LoRA through the biases and through
     Qwen3's q/k norms, hybrid attention) and of stage 1 (feature maps) agree
     with central differences;
   - the pipeline on a tiny Qwen2 and Qwen3 (byte tokenizer, vocab 259):
     `distill`, `finetune --merge`, `linearize --merge`, `eval --lolcats` and
     `generate --lolcats` on the checkpoint and on the merged directory; the
     merged directory is a Qwen2/Qwen3 directory (config, untouched biases and
     q/k norms, merged q/k/v/o) whose linearized logits equal those of the
     base model with the checkpoint.
   - tokenizer: a hand-made byte-level BPE tokenizer.json with Qwen's
     pre-tokenizer regex and chat markers (tests/data/qwen_tokenizer.json)
     encodes every text of tests/data/qwen_tok_ref.json as the independent
     Python implementation tools/qwen_tokenizer_ref.py did (contractions,
     single digits, punctuation runs, newlines, whitespace rules, non-ASCII
     letters, <|im_start|> / <|im_end|> / <|endoftext|> as special tokens);
     decoding gives the text back; the GPT-2 rule instead differs.
   Scratch files live under build/tests/qwen. */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "tiny_files.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DIR "build/tests/qwen"
#define TINY "--layers 2 --dim 32 --hidden 48 --heads 4 --kv-heads 2 --vocab 97 --dtype f32"

static const char *bin;

typedef struct { const char *name, *like, *extra; int seed, qwen; } qcase;

static const qcase cases[] = {
    {"q2", "qwen2.5-7b", "", 7, 2},                 /* untied, biases */
    {"q3", "qwen3-8b", "--head-dim 16", 8, 3},      /* untied, q/k norms, head_dim != dim / heads */
    {"q3t", "qwen3-0.6b", "--head-dim 16", 9, 3},   /* tied */
};

static int run(const char *cmd) {
    int rc = system(cmd);
    if (rc) printf("  (command failed: %s)\n", cmd);
    return rc;
}

static int synth(const qcase *c, const char *out, const char *more) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s synth --like %s " TINY " %s --seed %d %s --out %s --force >/dev/null 2>&1", bin,
             c->like, c->extra, c->seed, more, out);
    return run(cmd);
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    size_t i;
    for (i = 0; i < n; i++)
        if (fabs((double)a[i] - (double)b[i]) > m) m = fabs((double)a[i] - (double)b[i]);
    return m;
}

static void test_reference(const qcase *c) {
    char dir[256], ref[256];
    lc_model m;
    lc_st_file *rf = NULL;
    lc_error err;
    const lc_tensor *tids, *tlog, *tgr;
    snprintf(dir, sizeof dir, DIR "/%s", c->name);
    snprintf(ref, sizeof ref, "tests/data/qwen_%s_ref.safetensors", c->name);
    if (!CHECK(synth(c, dir, "") == 0, "%s: synth", c->name)) return;
    if (!CHECK(lc_st_open(&rf, ref, &err) == LOLCATS_OK, "%s: %s", ref, err.msg)) return;
    tids = lc_st_find(rf, "ids"); tlog = lc_st_find(rf, "logits"); tgr = lc_st_find(rf, "greedy");
    if (!CHECK(tids && tlog && tgr, "%s: ids / logits / greedy missing", ref)) { lc_st_close(rf); return; }
    if (CHECK(lc_model_load_hf(&m, dir, &err) == LOLCATS_OK, "%s: load: %s", c->name, err.msg)) {
        int T = (int)tids->shape[0], V = m.cfg.vocab_size, G = (int)tgr->shape[0], i, l, ok = 1, seq[64];
        const int32_t *ids = (const int32_t *)tids->data, *gr = (const int32_t *)tgr->data;
        float *lg = (float *)malloc(sizeof(float) * (size_t)T * V);
        lc_run r;
        CHECK(m.cfg.qkv_bias == (c->qwen == 2) && m.cfg.qk_norm == (c->qwen == 3) && m.cfg.sliding_window == 0 &&
                  m.cfg.head_dim == (c->qwen == 3 ? 16 : 8) && m.cfg.rope_theta == 1e6f &&
                  m.cfg.tied == !strcmp(c->name, "q3t"),
              "%s: config: bias %d qk_norm %d window %d head_dim %d theta %g tied %d", c->name, m.cfg.qkv_bias,
              m.cfg.qk_norm, m.cfg.sliding_window, m.cfg.head_dim, (double)m.cfg.rope_theta, m.cfg.tied);
        CHECK(lc_model_param_count(&m) > 0 && (c->qwen == 2 ? m.layers[1].bv.data != NULL : m.layers[1].k_norm.data != NULL),
              "%s: the Qwen weights are loaded", c->name);
        CHECK(V == 97 && tlog->shape[0] == T && tlog->shape[1] == V && T + G <= 64, "%s: reference shapes", c->name);
        for (i = 0; i < T; i++) seq[i] = ids[i];
        if (lg && CHECK(lc_run_init(&r, &m, 64, T, &err) == LOLCATS_OK, "%s", err.msg)) {
            char what[96];
            double *nll = (double *)malloc(sizeof(double) * (size_t)T);
            int tg[64];
            snprintf(what, sizeof what, "%s logits vs PyTorch", c->name);
            CHECK(lc_model_forward(NULL, &m, &r, seq, T, lg, &err) == LOLCATS_OK, "%s: forward: %s", c->name, err.msg);
            check_close(what, lg, (const float *)tlog->data, (size_t)T * V, 1e-4, 0);
            /* greedy continuation through the KV cache, one token at a time */
            for (i = 0; i < G && ok; i++) {
                int nx = lc_argmax(r.logits, V);
                ok = nx == gr[i];
                if (!CHECK(ok, "%s: greedy token %d is %d, PyTorch %d", c->name, i, nx, gr[i])) break;
                seq[T + i] = nx;
                if (lc_model_forward(NULL, &m, &r, &nx, 1, NULL, &err)) { ok = CHECK(0, "%s", err.msg); break; }
            }
            if (ok) CHECK(1, "%s: %d greedy tokens equal", c->name, G);
            /* eval's path: the streamed NLL agrees with the logits */
            for (i = 0; i < T; i++) tg[i] = i + 1 < T ? seq[i + 1] : -1;
            lc_run_reset(&r);
            if (nll && CHECK(lc_model_forward_nll(NULL, &m, &r, seq, T, tg, nll, &err) == LOLCATS_OK, "nll: %s", err.msg)) {
                double mx = -1e30, s = 0, d;
                for (i = 0; i < V; i++) if ((double)lg[i] > mx) mx = (double)lg[i];
                for (i = 0; i < V; i++) s += exp((double)lg[i] - mx);
                d = fabs(nll[0] - (mx + log(s) - (double)lg[seq[1]]));
                CHECK(d < 1e-5, "%s: forward_nll vs logits differ by %g", c->name, d);
            }
            /* the check can fail: without the Qwen parts the logits are far off */
            for (l = 0; l < m.cfg.n_layers; l++) {
                m.layers[l].bq.data = m.layers[l].bk.data = m.layers[l].bv.data = NULL;
                m.layers[l].q_norm.data = m.layers[l].k_norm.data = NULL;
            }
            lc_run_reset(&r);
            if (lc_model_forward(NULL, &m, &r, seq, T, lg, &err) == LOLCATS_OK)
                CHECK(max_diff(lg, (const float *)tlog->data, (size_t)T * V) > 1e-3,
                      "%s: logits without biases / q-k norms still match (%g): the reference checks nothing",
                      c->name, max_diff(lg, (const float *)tlog->data, (size_t)T * V));
            free(nll);
            lc_run_free(&r);
        }
        free(lg);
        lc_model_free(&m);
    }
    lc_st_close(rf);
}

/* directional derivative of the loss along a seeded direction over n params at
   off, against central differences */
static double qloss(lc_train *t, const int *tok, const int *lab, int T, int distill) {
    double L = 0;
    int n;
    lc_error err;
    if (distill) lc_train_distill_step(t, tok, T, 0, &L, NULL, &err);
    else lc_train_lm_step(t, tok, lab, T, 0, &L, &n, &err);
    return L;
}

static void fd_dir(const char *what, lc_train *t, size_t off, size_t n, const int *tok, const int *lab, int T,
                   int distill) {
    float *u = (float *)malloc(sizeof(float) * n), *save = (float *)malloc(sizeof(float) * n);
    double g = 0, fd, eps = 3e-4, d;
    lc_rng r;
    size_t i;
    if (!u || !save) { free(u); free(save); CHECK(0, "oom"); return; }
    lc_rng_seed(&r, 77 + off);
    memcpy(save, t->params + off, sizeof(float) * n);
    for (i = 0; i < n; i++) { u[i] = lc_rng_normal(&r); g += (double)u[i] * (double)t->grads[off + i]; }
    for (i = 0; i < n; i++) t->params[off + i] = save[i] + (float)eps * u[i];
    fd = qloss(t, tok, lab, T, distill);
    for (i = 0; i < n; i++) t->params[off + i] = save[i] - (float)eps * u[i];
    fd = (fd - qloss(t, tok, lab, T, distill)) / (2 * eps);
    memcpy(t->params + off, save, sizeof(float) * n);
    d = fabs(fd - g) / (fabs(fd) + 1e-6);
    printf("  %-44s analytic %+.6e  central %+.6e  rel %.2e\n", what, g, fd, d);
    CHECK(d < 2e-2 && fabs(g) > 1e-5, "%s: gradient %g vs central difference %g", what, g, fd);
    free(u);
    free(save);
}

static void test_grad(const qcase *c) {
    char dir[256], what[96];
    lc_model m;
    lc_train t;
    lc_train_cfg tc = lc_train_cfg_default();
    lc_error err;
    lc_rng r;
    lc_ctx ctx;
    int tok[12] = {3, 17, 42, 5, 88, 61, 9, 23, 70, 1, 54, 33}, lab[12], i, l, tg, distill;
    size_t k;
    snprintf(dir, sizeof dir, DIR "/%s", c->name);
    for (i = 0; i < 12; i++) lab[i] = tok[(i + 1) % 12];
    if (!CHECK(lc_model_load_hf(&m, dir, &err) == LOLCATS_OK, "%s: load: %s", c->name, err.msg)) return;
    tc.attn = LOLCATS_ATTN_HYBRID; tc.trainable = LOLCATS_TRAIN_FMAPS | LOLCATS_TRAIN_LORA;
    tc.feature_dim = 4; tc.lora_rank = 2; tc.lora_alpha = 4; tc.hybrid.window = 4; tc.max_tokens = 12; tc.seed = 3;
    if (CHECK((lc_ctx_init(&ctx), lc_train_init(&t, &ctx, &m, &tc, &err)) == LOLCATS_OK, "%s: train init: %s", c->name, err.msg)) {
        lc_rng_seed(&r, 5);
        for (k = 0; k < t.n_params - (size_t)(t.lora - t.params); k++) t.lora[k] = 0.3f * lc_rng_normal(&r);
        for (k = 0; k < (size_t)(t.wf - t.fmap_q); k++) t.fmap_q[k] += 0.3f * lc_rng_normal(&r);
        for (distill = 0; distill < 2; distill++) {
            double L;
            int n;
            lc_train_zero_grad(&t);
            if (distill) CHECK(lc_train_distill_step(&t, tok, 12, 1, &L, NULL, &err) == LOLCATS_OK, "%s", err.msg);
            else CHECK(lc_train_lm_step(&t, tok, lab, 12, 1, &L, &n, &err) == LOLCATS_OK, "%s", err.msg);
            if (distill) {
                size_t per = (size_t)m.cfg.n_layers * m.cfg.n_heads * m.cfg.head_dim * tc.feature_dim;
                snprintf(what, sizeof what, "%s stage 1: feature maps q", c->name);
                fd_dir(what, &t, (size_t)(t.fmap_q - t.params), per, tok, lab, 12, 1);
                snprintf(what, sizeof what, "%s stage 1: feature maps k", c->name);
                fd_dir(what, &t, (size_t)(t.fmap_k - t.params), per, tok, lab, 12, 1);
                continue;
            }
            for (l = 0; l < m.cfg.n_layers; l++)
                for (tg = 0; tg < 4; tg++) {
                    size_t n_ab = (size_t)tc.lora_rank * ((tg == 3 ? (size_t)m.cfg.n_heads * m.cfg.head_dim : (size_t)m.cfg.dim) +
                                  (tg == 0 ? (size_t)m.cfg.n_heads * m.cfg.head_dim : tg == 3 ? (size_t)m.cfg.dim
                                                                                    : (size_t)m.cfg.n_kv_heads * m.cfg.head_dim));
                    snprintf(what, sizeof what, "%s stage 2: LoRA layer %d %c", c->name, l, "qkvo"[tg]);
                    fd_dir(what, &t, t.lora_off[l][tg], n_ab, tok, lab, 12, 0);
                }
        }
        lc_train_free(&t);
    }
    lc_model_free(&m);
}

static int cli(const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s %s >" DIR "/cli.log 2>&1", bin, args);
    if (tiny_sh(cmd) == 0) return 0;
    printf("  (failed: %s)\n", cmd);
    tiny_sh("cat " DIR "/cli.log");
    return 1;
}

static int same_weight(const lc_weight *a, const lc_weight *b) {
    int64_t i;
    if (!a->data || !b->data || a->rows * a->cols != b->rows * b->cols) return 0;
    for (i = 0; i < a->rows * a->cols; i++)
        if (lc_weight_get(a, i) != lc_weight_get(b, i)) return 0;
    return 1;
}

static void test_pipeline(const qcase *c) {
    char d[256], a[2048];
    const char *tr = "--seq-len 16 --grad-accum 1 --val-seqs 1 --val-every 0 --feature-dim 4 --window 4 --lora-rank 2";
    lc_model m, mm;
    lc_lolcats lp, lpm;
    lc_error err;
    int ok = 1;
    snprintf(d, sizeof d, DIR "/p%s", c->name);
    if (!CHECK(synth(c, d, "--vocab 259") == 0, "%s: synth (vocab 259)", c->name)) return;
#define RUN(...) (snprintf(a, sizeof a, __VA_ARGS__), cli(a) == 0)
    ok = CHECK(RUN("distill --model %s --tokenizer " DIR "/tok.bin --data " DIR "/text.txt --out %s.s1.safetensors "
                   "--tokens 64 %s", d, d, tr), "%s: distill", c->name) &&
         CHECK(RUN("finetune --model %s --tokenizer " DIR "/tok.bin --data " DIR "/text.txt --lolcats %s.s1.safetensors "
                   "--out %s.ft.safetensors --tokens 32 --merge %s.ftmerged %s", d, d, d, d, tr),
               "%s: finetune --merge", c->name);
    ok = CHECK(RUN("linearize --model %s --tokenizer " DIR "/tok.bin --data " DIR "/text.txt --out %s.lin.safetensors "
                   "--distill-tokens 64 --finetune-tokens 32 --merge %s.merged %s", d, d, d, tr),
               "%s: linearize --merge", c->name) && ok;
    if (!ok) return;
    CHECK(RUN("eval --model %s --tokenizer " DIR "/tok.bin --data " DIR "/text.txt --ctx 16 --lolcats %s.lin.safetensors",
              d, d), "%s: eval --lolcats", c->name);
    CHECK(RUN("eval --model %s.merged --tokenizer " DIR "/tok.bin --data " DIR "/text.txt --ctx 16 --lolcats %s.merged",
              d, d), "%s: eval --lolcats on the merged directory", c->name);
    CHECK(RUN("generate --model %s --tokenizer " DIR "/tok.bin --prompt cat --steps 12 --temperature 0 --lolcats "
              "%s.lin.safetensors", d, d), "%s: generate --lolcats", c->name);
    CHECK(RUN("generate --model %s.merged --tokenizer " DIR "/tok.bin --prompt cat --steps 12 --temperature 0 --softmax", d),
          "%s: generate on the merged directory (softmax)", c->name);
#undef RUN
    /* the merged directory: a Qwen directory with the base's biases / norms, LoRA merged */
    snprintf(a, sizeof a, "%s.merged", d);
    if (!CHECK(lc_model_load_hf(&m, d, &err) == LOLCATS_OK, "%s", err.msg)) return;
    if (CHECK(lc_model_load_hf(&mm, a, &err) == LOLCATS_OK, "%s: merged: %s", c->name, err.msg)) {
        int l, sb = 1, differ = 0;
        CHECK(!strcmp(mm.cfg.arch, c->qwen == 2 ? "Qwen2ForCausalLM" : "Qwen3ForCausalLM") &&
                  mm.cfg.qkv_bias == m.cfg.qkv_bias && mm.cfg.qk_norm == m.cfg.qk_norm && mm.cfg.head_dim == m.cfg.head_dim &&
                  mm.cfg.tied == m.cfg.tied && mm.cfg.rope_theta == m.cfg.rope_theta && mm.cfg.sliding_window == 0,
              "%s: merged config: %s bias %d qk_norm %d head_dim %d", c->name, mm.cfg.arch, mm.cfg.qkv_bias,
              mm.cfg.qk_norm, mm.cfg.head_dim);
        for (l = 0; l < m.cfg.n_layers; l++) {
            if (c->qwen == 2)
                sb &= same_weight(&m.layers[l].bq, &mm.layers[l].bq) && same_weight(&m.layers[l].bk, &mm.layers[l].bk) &&
                      same_weight(&m.layers[l].bv, &mm.layers[l].bv);
            else
                sb &= same_weight(&m.layers[l].q_norm, &mm.layers[l].q_norm) &&
                      same_weight(&m.layers[l].k_norm, &mm.layers[l].k_norm);
            differ |= !same_weight(&m.layers[l].wq, &mm.layers[l].wq);
        }
        CHECK(sb, "%s: the merged directory's %s are the base model's (frozen)", c->name,
              c->qwen == 2 ? "q/k/v biases" : "q/k norms");
        CHECK(differ, "%s: the merged q_proj differs from the base (LoRA merged in)", c->name);
        /* base + checkpoint == merged + its own LoLCATs tensors */
        snprintf(a, sizeof a, "%s.lin.safetensors", d);
        if (CHECK(lc_lolcats_load(&lp, a, &m, &err) == LOLCATS_OK, "%s", err.msg)) {
            snprintf(a, sizeof a, "%s.merged/model.safetensors", d);
            if (CHECK(lc_lolcats_load(&lpm, a, &mm, &err) == LOLCATS_OK, "%s: merged tensors: %s", c->name, err.msg)) {
                lc_lolcats_run r1, r2;
                int toks[10] = {1, 70, 100, 117, 35, 104, 105, 35, 120, 3}, V = m.cfg.vocab_size;
                float *l1 = (float *)malloc(sizeof(float) * 10 * (size_t)V), *l2 = (float *)malloc(sizeof(float) * 10 * (size_t)V);
                if (l1 && l2 && CHECK(lc_lolcats_run_init(&r1, NULL, &m, &lp, 10, &err) == LOLCATS_OK, "%s", err.msg)) {
                    if (CHECK(lc_lolcats_run_init(&r2, NULL, &mm, &lpm, 10, &err) == LOLCATS_OK, "%s", err.msg)) {
                        char what[96];
                        snprintf(what, sizeof what, "%s linearized: base+LoRA vs merged", c->name);
                        CHECK(lc_lolcats_forward(&m, &lp, &r1, toks, 10, l1, &err) == LOLCATS_OK &&
                                  lc_lolcats_forward(&mm, &lpm, &r2, toks, 10, l2, &err) == LOLCATS_OK,
                              "%s", err.msg);
                        check_close(what, l1, l2, 10 * (size_t)V, 1e-4, 1e-4);
                        lc_lolcats_run_free(&r2);
                    }
                    lc_lolcats_run_free(&r1);
                }
                free(l1);
                free(l2);
                lc_lolcats_free(&lpm);
            }
            lc_lolcats_free(&lp);
        }
        lc_model_free(&mm);
    }
    lc_model_free(&m);
}

static void test_tokenizer(void) {
    static const char *tj = "tests/data/qwen_tokenizer.json", *rj = "tests/data/qwen_tok_ref.json";
    lc_tokenizer tk;
    lc_error err;
    lc__json d;
    char *text = NULL;
    size_t n;
    const lc__json_node *cs, *c;
    int n_ok = 0, n_cases = 0, rt_ok = 1, differs = 0, pass;
    if (!CHECK(lc_tokenizer_load_hf(&tk, tj, &err) == LOLCATS_OK, "%s: %s", tj, err.msg)) return;
    if (!CHECK(lc__read_all(rj, &text, &n, &err) == LOLCATS_OK && lc__json_parse(&d, text, n, rj, &err) == LOLCATS_OK,
               "%s: %s", rj, err.msg)) {
        free(text);
        lc_tokenizer_free(&tk);
        return;
    }
    CHECK(((lc__tok_priv *)tk.priv)->qwen_split && tk.kind == LOLCATS_TOK_BYTELEVEL,
          "Qwen's Split regex recognised (byte-level, qwen_split)");
    CHECK(tk.eos_id == 456 && tk.n_special == 3 && tk.bos_id < 0 && !tk.add_bos &&
              lc_tokenizer_find(&tk, "<|im_start|>", 12) == 457 && lc_tokenizer_find(&tk, "<|im_end|>", 10) == 458,
          "special tokens: eos %d (<|endoftext|>), %d specials, bos %d", tk.eos_id, tk.n_special, tk.bos_id);
    CHECK(lc__json_int(&d, lc__json_root(&d), "vocab_size", 0) == tk.vocab_size, "vocab size %d", tk.vocab_size);
    cs = lc__json_get(&d, lc__json_root(&d), "cases");
    for (pass = 0; pass < 2; pass++)   /* pass 1: the GPT-2 rule must give other ids somewhere */
        for (c = cs ? lc__json_first(&d, cs) : NULL; c; c = lc__json_next(&d, cs, c)) {
            const lc__json_node *tx = lc__json_get(&d, c, "text"), *ids = lc__json_get(&d, c, "ids"), *e;
            int out[512], k = 0, same;
            size_t got = 0;
            ((lc__tok_priv *)tk.priv)->qwen_split = !pass;
            if (lc_tokenizer_encode(&tk, tx->str, tx->len, 0, 0, out, 512, &got, &err)) {
                CHECK(0, "encode \"%s\": %s", tx->str, err.msg);
                continue;
            }
            same = got == (size_t)ids->count;
            for (e = lc__json_first(&d, ids); e && same; e = lc__json_next(&d, ids, e), k++) same = out[k] == (int)e->i64;
            if (pass) { differs |= !same; continue; }
            n_cases++;
            n_ok += same;
            if (!same) {
                size_t q;
                printf("  text \"%s\": got", tx->str);
                for (q = 0; q < got; q++) printf(" %d", out[q]);
                printf(", Python:");
                for (e = lc__json_first(&d, ids); e; e = lc__json_next(&d, ids, e)) printf(" %d", (int)e->i64);
                printf("\n");
            }
            if (!strstr(tx->str, "<|")) {   /* decoding gives the text back (specials decode to nothing) */
                char buf[4096], piece[512];
                size_t bl = 0, q;
                int prev = -1;
                for (q = 0; q < got; q++) {
                    size_t pl = lc_tokenizer_decode(&tk, prev, out[q], piece, sizeof piece);
                    if (bl + pl < sizeof buf) { memcpy(buf + bl, piece, pl); bl += pl; }
                    prev = out[q];
                }
                if (bl != tx->len || memcmp(buf, tx->str, bl)) {
                    rt_ok = 0;
                    printf("  decode of \"%s\" gave \"%.*s\"\n", tx->str, (int)bl, buf);
                }
            }
        }
    ((lc__tok_priv *)tk.priv)->qwen_split = 1;
    CHECK(n_cases >= 20 && n_ok == n_cases, "Qwen tokenizer: %d of %d texts encode as the Python reference", n_ok, n_cases);
    CHECK(rt_ok, "decode(encode(text)) == text");
    CHECK(differs, "the GPT-2 pre-tokenizer gives the same ids on every text: the cs check nothing");
    lc__json_free(&d);
    free(text);
    lc_tokenizer_free(&tk);
}

/* A Qwen directory with its own tokenizer.json (the hand-made one): the CLI
   reads it, chat markers in the prompt included. */
static void test_cli_tokenizer(void) {
    static const qcase c = {"tk", "qwen3-0.6b", "--head-dim 16", 4, 3};
    char a[1024];
    if (!CHECK(synth(&c, DIR "/ptk", "--vocab 459") == 0, "synth (vocab 459)")) return;
    if (!CHECK(tiny_sh("cp tests/data/qwen_tokenizer.json " DIR "/ptk/tokenizer.json") == 0, "copy tokenizer.json")) return;
    snprintf(a, sizeof a, "generate --model " DIR "/ptk --prompt '<|im_start|>user\nHi there!<|im_end|>\n"
             "<|im_start|>assistant\n' -n 4 --temperature 0");
    CHECK(cli(a) == 0, "generate with the directory's Qwen tokenizer.json and chat markers");
    CHECK(cli("eval --model " DIR "/ptk --data " DIR "/text.txt --ctx 16") == 0, "eval with the Qwen tokenizer.json");
    CHECK(cli("distill --model " DIR "/ptk --data " DIR "/text.txt --out " DIR "/ptk.s1.safetensors --tokens 32 "
              "--seq-len 16 --grad-accum 1 --val-seqs 1 --val-every 0 --feature-dim 4 --window 4") == 0,
          "distill on text through the Qwen tokenizer.json");
}

/* config.json variants of a Qwen model: what loads, what is refused, and why */
static void test_config(void) {
    static const struct { const char *arch, *mt, *extra; int ok; const char *says; } v[] = {
        {"Qwen2ForCausalLM", "qwen2", "\"use_sliding_window\": false, \"sliding_window\": 4, \"max_window_layers\": 1", 1, ""},
        {"Qwen2ForCausalLM", "qwen2", "\"use_sliding_window\": true, \"sliding_window\": 4, \"max_window_layers\": 1", 0,
         "use_sliding_window"},
        {"Qwen3ForCausalLM", "qwen3", "\"attention_bias\": true", 0, "attention_bias"},
        {"Qwen3ForCausalLM", "qwen3", "\"layer_types\": [\"full_attention\", \"sliding_attention\"]", 0, "layer_types"},
        {"Qwen3ForCausalLM", "qwen3", "\"use_sliding_window\": \"no\"", 0, "use_sliding_window"},
        {"", "qwen3", "\"attention_bias\": false", 1, ""},
        {"Qwen2ForCausalLM", "qwen2", "\"head_dim\": 16", 0, "self_attn.q_proj.bias"},   /* Qwen3 weights: no biases */
        {"Qwen3ForCausalLM", "qwen3", "\"head_dim\": 8", 0, "self_attn.q_norm.weight"},  /* Qwen2 weights: no norms */
    };
    char path[256], cmd[512];
    size_t i;
    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        lc_model m;
        lc_error err;
        lc_status s;
        FILE *f;
        snprintf(path, sizeof path, DIR "/cfg%zu", i);
        mkdir(path, 0755);
        /* the weights of the config's family, or (an explicit head_dim) of the other one */
        snprintf(cmd, sizeof cmd, "cp %s/%s/model.safetensors %s/", DIR,
                 (v[i].mt[4] == '2') == !strstr(v[i].extra, "head_dim") ? "q2" : "q3", path);
        if (run(cmd)) { CHECK(0, "copy weights"); continue; }
        snprintf(path, sizeof path, DIR "/cfg%zu/config.json", i);
        f = fopen(path, "w");
        if (!f) { CHECK(0, "cannot write %s", path); continue; }
        fprintf(f, "{\"architectures\": [%s%s%s], \"model_type\": \"%s\", \"hidden_size\": 32, \"intermediate_size\": 48, "
                "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, ",
                v[i].arch[0] ? "\"" : "", v[i].arch, v[i].arch[0] ? "\"" : "", v[i].mt);
        if (!strstr(v[i].extra, "head_dim")) fprintf(f, "\"head_dim\": %d, ", v[i].mt[4] == '2' ? 8 : 16);
        fprintf(f, "\"vocab_size\": 97, \"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000.0, "
                "\"tie_word_embeddings\": false, %s}\n", v[i].extra);
        fclose(f);
        snprintf(path, sizeof path, DIR "/cfg%zu", i);
        s = lc_model_load_hf(&m, path, &err);
        if (v[i].ok) {
            if (CHECK(s == LOLCATS_OK, "config %zu (%s) should load: %s", i, v[i].extra, err.msg)) {
                CHECK(m.cfg.sliding_window == 0, "config %zu: the disabled window is off (%d)", i, m.cfg.sliding_window);
                lc_model_free(&m);
            }
        } else {
            CHECK(s != LOLCATS_OK && strstr(err.msg, v[i].says) != NULL, "config %zu (%s) must be refused naming %s: %s",
                  i, v[i].extra, v[i].says, s ? err.msg : "(loaded)");
            if (s == LOLCATS_OK) lc_model_free(&m);
        }
    }
}

int main(void) {
    size_t i;
    bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    mkdir("build", 0755);
    mkdir("build/tests", 0755);
    mkdir(DIR, 0755);
    tiny_sh("rm -rf " DIR "/p*");   /* the commands refuse to overwrite an earlier run's outputs */
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) test_reference(&cases[i]);
    test_config();
    test_tokenizer();
    for (i = 0; i < 2; i++) test_grad(&cases[i]);
    if (CHECK(tiny_write_tokenizer(DIR "/tok.bin") && tiny_write_text(DIR "/text.txt"), "tokenizer and text"))
    {
        for (i = 0; i < 2; i++) test_pipeline(&cases[i]);
        test_cli_tokenizer();
    }
    return check_done();
}
