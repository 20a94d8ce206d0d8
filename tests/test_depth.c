/* test_depth.c - no fixed layer limit (Llama 3.1 405B has 126 layers):
   - library: trainer, LoRA tables, checkpoint round trip, merged export and
     linearized decoding of tiny-width models of 126 and 200 layers;
   - command line ($LOLCATS_BIN, default build/lolcats) on a 126-layer
     llama2.c model written here (dim 16): `distill --layers 117:126` and
     108:117, `stitch` of the two blocks, `finetune --merge` from the stitched
     checkpoint, a whole-model `linearize`, then `eval --lolcats` and
     `generate --lolcats` on its result and on the merged directory; each
     checkpoint holds every layer's tensors and reads back. */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "tiny_files.h"

#include <sys/stat.h>

#define DIR "build/tests/depth"
#define DEEP 126

static const char *bin;
static lc_ctx ctx;

static lc_model_config deep_cfg(int L) {
    lc_model_config c;
    memset(&c, 0, sizeof c);
    c.dim = 16; c.hidden_dim = 24; c.n_layers = L; c.n_heads = 2; c.n_kv_heads = 1; c.head_dim = 8;
    c.vocab_size = 19; c.seq_len = 64; c.norm_eps = 1e-5f; c.rope_theta = 10000.0f;
    c.tied = 1; c.bos_id = 1; c.eos_id = 2;
    snprintf(c.arch, sizeof c.arch, "tiny-deep");
    return c;
}

/* Library level: every per-layer table is sized from the config. */
static void test_library(int L) {
    lc_model_config mc = deep_cfg(L);
    lc_train_cfg tc = lc_train_cfg_default();
    lc_train t;
    lc_lolcats view, back;
    lc_lolcats_run run;
    lc_error err;
    char path[256];
    int toks[8] = {1, 5, 7, 3, 9, 11, 4, 6}, labels[8], l, tg, ns, ok;
    double loss, *ll = (double *)calloc((size_t)L, sizeof(double));
    size_t k;
    for (k = 0; k < 8; k++) labels[k] = toks[(k + 1) % 8];
    tc.attn = LOLCATS_ATTN_HYBRID; tc.trainable = LOLCATS_TRAIN_FMAPS | LOLCATS_TRAIN_LORA;
    tc.feature_dim = 4; tc.lora_rank = 2; tc.lora_alpha = 4; tc.hybrid.window = 4; tc.max_tokens = 8; tc.seed = 2;
    if (!CHECK(lc_train_init_full(&t, &ctx, &mc, &tc, &err) == LOLCATS_OK, "%d layers: init: %s", L, err.msg)) {
        free(ll);
        return;
    }
    /* every layer and target has its own LoRA, in order, and the views agree */
    ok = 1;
    for (l = 0; l < L; l++)
        for (tg = 0; tg < 4; tg++) {
            size_t off = t.lora_off[l][tg], prev = tg ? t.lora_off[l][tg - 1] : l ? t.lora_off[l - 1][3] : 0;
            ok = ok && off > prev && off < t.n_params && t.lora_a[l][tg] == t.params + off &&
                 t.lora_b[l][tg] == t.lora_a[l][tg] + (size_t)2 * (tg == 3 ? mc.n_heads * mc.head_dim : mc.dim);
        }
    CHECK(ok, "%d layers: LoRA offsets and views of every layer", L);
    for (k = 0; k < (size_t)(t.n_params - (size_t)(t.lora - t.params)); k++) t.lora[k] += 0.01f * (float)(k % 7);
    CHECK(lc_train_distill_step(&t, toks, 8, 1, &loss, ll, &err) == LOLCATS_OK && loss >= 0 && ll[L - 1] >= 0,
          "%d layers: distill step: %s", L, err.msg);
    CHECK(lc_train_lm_step(&t, toks, labels, 8, 1, &loss, &ns, &err) == LOLCATS_OK && loss > 0,
          "%d layers: lm step: %s", L, err.msg);
    lc_train_lolcats_view(&t, &view);
    CHECK(view.n_layers == L && view.lora_rank == 2 && view.lora_a[L - 1][3] == t.lora_a[L - 1][3] &&
          view.lora_b[L - 1][0] == t.lora_b[L - 1][0], "%d layers: lc_train_lolcats_view", L);
    /* checkpoint round trip, bit for bit, last layer included */
    snprintf(path, sizeof path, DIR "/lib%d.safetensors", L);
    if (CHECK(lc_lolcats_save(&view, path, NULL, 0, &err) == LOLCATS_OK, "%d layers: save: %s", L, err.msg) &&
        CHECK(lc_lolcats_load(&back, path, t.model, &err) == LOLCATS_OK, "%d layers: load: %s", L, err.msg)) {
        size_t per = (size_t)L * mc.n_heads * mc.head_dim * 4;
        ok = back.n_layers == L && !memcmp(back.fmap_q, view.fmap_q, per * 4) &&
             !memcmp(back.wf, view.wf, (size_t)L * mc.n_heads * 4);
        for (l = 0; l < L; l++)
            for (tg = 0; tg < 4; tg++)
                ok = ok && back.lora_a[l][tg] && !memcmp(back.lora_a[l][tg], view.lora_a[l][tg], 2 * 16 * 4) &&
                     !memcmp(back.lora_b[l][tg], view.lora_b[l][tg], 2 * (tg == 1 || tg == 2 ? 8 : 16) * 4);
        CHECK(ok, "%d layers: checkpoint values of every layer read back", L);
        lc_lolcats_free(&back);
    }
    /* linearized decoding: prefill then one token, as many layers */
    if (CHECK(lc_lolcats_run_init(&run, &ctx, t.model, &view, 8, &err) == LOLCATS_OK, "%d layers: run init: %s",
              L, err.msg)) {
        float f0;
        CHECK(run.n_layers == L && lc_lolcats_forward(t.model, &view, &run, toks, 8, NULL, &err) == LOLCATS_OK &&
              lc_lolcats_forward(t.model, &view, &run, toks, 1, NULL, &err) == LOLCATS_OK, "%d layers: decode: %s",
              L, err.msg);
        f0 = run.logits[0];
        CHECK(f0 == f0 && run.pos == 9, "%d layers: finite logits after 9 tokens", L);
        lc_lolcats_run_free(&run);
    }
    /* merged export: config and LoLCATs tensors of the last layer */
    snprintf(path, sizeof path, DIR "/lib%d_merged", L);
    mkdir(path, 0755);
    if (CHECK(lc_lolcats_export_hf(t.model, &view, path, &err) == LOLCATS_OK, "%d layers: export: %s", L, err.msg)) {
        lc_model mm;
        if (CHECK(lc_model_load(&mm, path, &err) == LOLCATS_OK, "%d layers: merged load: %s", L, err.msg)) {
            CHECK(mm.cfg.n_layers == L, "%d layers: merged config has %d layers", L, mm.cfg.n_layers);
            CHECK(lc_lolcats_load(&back, path, &mm, &err) == LOLCATS_OK && back.n_layers == L && back.lora_rank == 0,
                  "%d layers: LoLCATs tensors of the merged directory: %s", L, err.msg);
            lc_lolcats_free(&back);
            lc_model_free(&mm);
        }
    }
    lc_train_free(&t);
    free(ll);
}

/* llama2.c model of L layers: dim 16, hidden 24, 2 heads, 1 kv head, vocab 259 */
static int write_deep_model(const char *path, int L) {
    int32_t hdr[7];
    int dim = 16, hid = 24, hd = 8, kvd = 8, V = 259, S = 64;
    size_t n = (size_t)V * dim + (size_t)L * dim + (size_t)L * dim * dim + 2 * (size_t)L * dim * kvd +
               (size_t)L * dim * dim + (size_t)L * dim + 3 * (size_t)L * dim * hid + (size_t)dim +
               (size_t)S * hd;
    size_t norm0 = (size_t)V * dim, norm1 = norm0 + (size_t)L * dim + (size_t)L * dim * dim +
                   2 * (size_t)L * dim * kvd + (size_t)L * dim * dim;
    size_t normf = norm1 + (size_t)L * dim + 3 * (size_t)L * dim * hid, i;
    float *w = (float *)malloc(n * sizeof(float));
    FILE *f = fopen(path, "wb");
    lc_rng r;
    int ok;
    hdr[0] = dim; hdr[1] = hid; hdr[2] = L; hdr[3] = 2; hdr[4] = 1; hdr[5] = V; hdr[6] = S;
    if (!w || !f) { free(w); if (f) fclose(f); return 0; }
    lc_rng_seed(&r, 9);
    for (i = 0; i < n; i++) w[i] = 0.1f * lc_rng_normal(&r);
    for (i = 0; i < (size_t)L * dim; i++) { w[norm0 + i] = 1.0f; w[norm1 + i] = 1.0f; }
    for (i = 0; i < (size_t)dim; i++) w[normf + i] = 1.0f;
    ok = fwrite(hdr, sizeof hdr, 1, f) == 1 && fwrite(w, sizeof(float), n, f) == n;
    ok = (fclose(f) == 0) && ok;
    free(w);
    return ok;
}

/* Runs `$LOLCATS_BIN ARGS`, output into DIR/out.txt; its exit status. */
static int cli(const char *args) {
    char cmd[2048];
    int rc;
    snprintf(cmd, sizeof cmd, "%s %s >" DIR "/out.txt 2>&1", bin, args);
    rc = tiny_sh(cmd);
    if (rc) {
        char out[4096];
        FILE *f = fopen(DIR "/out.txt", "r");
        size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
        out[n] = 0;
        if (f) fclose(f);
        fprintf(stderr, "`%s` exited %d:\n%s\n", cmd, rc, out);
    }
    return rc;
}

/* The checkpoint at PATH: read back against the model, every layer's maps and
   window factors in the file (and LoRA when lora); returns the load's status. */
static int check_ckpt(const char *path, const lc_model *m, int lora, const char *layers, lc_lolcats *lp) {
    lc_st_file *f;
    lc_error err;
    char nm[160];
    int l, tg, ok = 1;
    if (!CHECK(lc_st_open(&f, path, &err) == LOLCATS_OK, "%s: %s", path, err.msg)) return 0;
    for (l = 0; l < DEEP; l++) {
        snprintf(nm, sizeof nm, "model.layers.%d.self_attn.feature_map_q.mlp.layer", l);
        ok = ok && lc_st_find(f, nm);
        snprintf(nm, sizeof nm, "model.layers.%d.self_attn.feature_map_k.mlp.layer", l);
        ok = ok && lc_st_find(f, nm);
        snprintf(nm, sizeof nm, "model.layers.%d.self_attn.window_factors", l);
        ok = ok && lc_st_find(f, nm);
        for (tg = 0; lora && tg < 4; tg++) {
            snprintf(nm, sizeof nm, "base_model.model.model.layers.%d.self_attn.%c_proj.lora_A.default.weight", l,
                     "qkvo"[tg]);
            ok = ok && lc_st_find(f, nm);
        }
    }
    CHECK(ok, "%s: feature maps, window factors%s of all %d layers", path, lora ? ", LoRA" : "", DEEP);
    if (layers)
        CHECK(lc_st_meta(f, "layers") && !strcmp(lc_st_meta(f, "layers"), layers), "%s: layers metadata %s (want %s)",
              path, lc_st_meta(f, "layers") ? lc_st_meta(f, "layers") : "(none)", layers);
    lc_st_close(f);
    if (!CHECK(lc_lolcats_load(lp, path, m, &err) == LOLCATS_OK, "%s: load: %s", path, err.msg)) return 0;
    return CHECK(lp->n_layers == DEEP && (!lora || (lp->lora_rank == 2 && lp->lora_a[DEEP - 1][3])),
                 "%s: %d layers, LoRA rank %d", path, lp->n_layers, lp->lora_rank);
}

/* layers [a, b) of x and y have the same feature maps */
static int same_maps(const lc_lolcats *x, const lc_lolcats *y, int a, int b) {
    size_t per = (size_t)x->n_heads * x->head_dim * x->feature_dim;
    return !memcmp(x->fmap_q + per * a, y->fmap_q + per * a, sizeof(float) * per * (size_t)(b - a)) &&
           !memcmp(x->fmap_k + per * a, y->fmap_k + per * a, sizeof(float) * per * (size_t)(b - a)) &&
           !memcmp(x->wf + (size_t)x->n_heads * a, y->wf + (size_t)x->n_heads * a,
                   sizeof(float) * (size_t)x->n_heads * (size_t)(b - a));
}

static void test_cli(void) {
    const char *common = "--model " DIR "/m.bin --tokenizer " DIR "/tok.bin --data random --seq-len 16 "
                         "--grad-accum 1 --val-seqs 1 --val-every 0 --feature-dim 4 --window 4";
    char args[1024];
    lc_model m;
    lc_lolcats b1, b2, st, lin;
    lc_error err;
    int loaded_b1 = 0, loaded_b2 = 0;
    FILE *tf = fopen(DIR "/text.txt", "wb");   /* a short text: eval's cost is per token and layer */
    if (tf) { fputs("the cat sat on a mat and the dog ran far away.\n", tf); fclose(tf); }
    if (!CHECK(tf && write_deep_model(DIR "/m.bin", DEEP) && tiny_write_tokenizer(DIR "/tok.bin"),
               "writing the %d-layer model", DEEP))
        return;
    if (!CHECK(lc_model_load(&m, DIR "/m.bin", &err) == LOLCATS_OK && m.cfg.n_layers == DEEP, "load: %s", err.msg))
        return;
    memset(&b1, 0, sizeof b1); memset(&b2, 0, sizeof b2); memset(&st, 0, sizeof st); memset(&lin, 0, sizeof lin);
    /* block-wise stage 1: the last block of 9 layers (as the paper's 405B), and the one before */
    snprintf(args, sizeof args, "distill %s --tokens 32 --layers 117:126 --out " DIR "/b2.safetensors", common);
    if (CHECK(cli(args) == 0, "distill --layers 117:126 on %d layers", DEEP))
        loaded_b2 = check_ckpt(DIR "/b2.safetensors", &m, 0, "117:126", &b2);
    snprintf(args, sizeof args, "distill %s --tokens 32 --layers 108:117 --out " DIR "/b1.safetensors", common);
    if (CHECK(cli(args) == 0, "distill --layers 108:117 on %d layers", DEEP))
        loaded_b1 = check_ckpt(DIR "/b1.safetensors", &m, 0, "108:117", &b1);
    if (loaded_b2) CHECK(!same_maps(&b2, &b1, 117, 126) && same_maps(&b2, &b1, 0, 108),
                         "layers 117..125 trained by their block only");
    /* stitch the two blocks (layers 0..107: the first input's initial maps) */
    if (loaded_b1 && loaded_b2 &&
        CHECK(cli("stitch --allow-gaps --out " DIR "/st.safetensors " DIR "/b1.safetensors " DIR "/b2.safetensors")
              == 0, "stitch of two blocks of a %d-layer model", DEEP) &&
        check_ckpt(DIR "/st.safetensors", &m, 0, NULL, &st)) {
        CHECK(same_maps(&st, &b1, 0, 117) && same_maps(&st, &b2, 117, 126), "stitched layers come from their blocks");
        /* stage 2 from the stitched checkpoint, merged export */
        snprintf(args, sizeof args, "finetune %s --tokens 16 --lora-rank 2 --lolcats " DIR "/st.safetensors --out "
                 DIR "/ft.safetensors --merge " DIR "/merged", common);
        if (CHECK(cli(args) == 0, "finetune --merge on %d layers", DEEP)) {
            lc_lolcats ft;
            lc_model mm;
            if (check_ckpt(DIR "/ft.safetensors", &m, 1, NULL, &ft)) lc_lolcats_free(&ft);
            if (CHECK(lc_model_load(&mm, DIR "/merged", &err) == LOLCATS_OK && mm.cfg.n_layers == DEEP,
                      "merged directory loads with %d layers: %s", DEEP, err.msg)) {
                CHECK(lc_lolcats_load(&ft, DIR "/merged", &mm, &err) == LOLCATS_OK && ft.n_layers == DEEP,
                      "merged directory's LoLCATs tensors: %s", err.msg);
                lc_lolcats_free(&ft);
                lc_model_free(&mm);
            }
            CHECK(cli("eval --model " DIR "/merged --tokenizer " DIR "/tok.bin --data " DIR "/text.txt --ctx 16 "
                      "--lolcats " DIR "/merged") == 0, "eval --lolcats on the merged directory");
        }
    }
    /* whole-model linearize, then inference on its checkpoint */
    snprintf(args, sizeof args, "linearize %s --distill-tokens 16 --finetune-tokens 16 --lora-rank 2 --out "
             DIR "/lin.safetensors", common);
    if (CHECK(cli(args) == 0, "whole-model linearize on %d layers", DEEP) &&
        check_ckpt(DIR "/lin.safetensors", &m, 1, NULL, &lin)) {
        CHECK(cli("eval --model " DIR "/m.bin --tokenizer " DIR "/tok.bin --data " DIR "/text.txt --ctx 16 --lolcats "
                  DIR "/lin.safetensors") == 0, "eval --lolcats on %d layers", DEEP);
        CHECK(cli("generate --model " DIR "/m.bin --tokenizer " DIR "/tok.bin --prompt cat --steps 12 --temperature 0 "
                  "--lolcats " DIR "/lin.safetensors") == 0, "generate --lolcats on %d layers", DEEP);
    }
    lc_lolcats_free(&b1); lc_lolcats_free(&b2); lc_lolcats_free(&st); lc_lolcats_free(&lin);
    lc_model_free(&m);
}

int main(void) {
    bin = getenv("LOLCATS_BIN");
    if (!bin || !*bin) bin = "build/lolcats";
    setenv("OMP_NUM_THREADS", "1", 1);   /* tiny widths: threads would only contend on shared cores */
    lc_ctx_init(&ctx);
    mkdir("build", 0755);
    mkdir("build/tests", 0755);
    tiny_sh("rm -rf " DIR);   /* no outputs of an earlier run (the commands refuse to overwrite them) */
    mkdir(DIR, 0755);
    test_library(DEEP);
    test_library(200);
    test_cli();
    return check_done();
}
