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
   Scratch files live under build/tests/qwen. */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"

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
        snprintf(cmd, sizeof cmd, "cp %s/%s/model.safetensors %s/", DIR, v[i].mt[4] == '2' ? "q2" : "q3", path);
        if (run(cmd)) { CHECK(0, "copy weights"); continue; }
        snprintf(path, sizeof path, DIR "/cfg%zu/config.json", i);
        f = fopen(path, "w");
        if (!f) { CHECK(0, "cannot write %s", path); continue; }
        fprintf(f, "{\"architectures\": [%s%s%s], \"model_type\": \"%s\", \"hidden_size\": 32, \"intermediate_size\": 48, "
                "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"head_dim\": %d, "
                "\"vocab_size\": 97, \"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000.0, \"tie_word_embeddings\": false, %s}\n",
                v[i].arch[0] ? "\"" : "", v[i].arch, v[i].arch[0] ? "\"" : "", v[i].mt, v[i].mt[4] == '2' ? 8 : 16,
                v[i].extra);
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
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) test_reference(&cases[i]);
    test_config();
    return check_done();
}
