/* test_pipeline.c - checkpoints, training state and data, end to end:
   - a LoLCATs checkpoint round trip (section-10 names, shapes, metadata,
     values bit for bit) and its load errors (missing tensor, wrong shape,
     wrong model, not a checkpoint);
   - the merged Hugging Face export (LoRA folded into q/k/v/o, interleaved RoPE
     rows and feature-map rows permuted) gives the same loss as the unmerged
     model with LoRA;
   - resume exactness: 2K optimizer steps == K steps + save + load into a fresh
     trainer + K steps, parameters and moments bitwise, in both stages;
   - ReduceLROnPlateau against PyTorch's rule;
   - data packing: Alpaca labels (-1 on prompts, response + EOS targets),
     chunking, validation split, seeded shuffle, errors (file:line, empty);
   - `lolcats distill` + `finetune` (+ --stop-after / --resume giving the same
     checkpoint bytes) on ../shared/models/stories260K (SKIPPED when absent). */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "../tools/data.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp[256];
static lc_ctx ctx;

static lc_model_config tiny_cfg(int interleaved, int heads) {
    lc_model_config c;
    memset(&c, 0, sizeof c);
    c.dim = 16; c.hidden_dim = 24; c.n_layers = 2; c.n_heads = heads; c.n_kv_heads = 2; c.head_dim = 4;
    c.vocab_size = 11; c.seq_len = 64; c.norm_eps = 1e-5f; c.rope_theta = 10000.0f;
    c.rope_interleaved = interleaved; c.tied = 1; c.bos_id = 1; c.eos_id = 2;
    snprintf(c.arch, sizeof c.arch, "tiny");
    return c;
}

enum { T = 12 };
static int toks[4][T], lbl[4][T];

static int make_trainer(lc_train *t, const lc_model_config *mc, int stage) {
    lc_train_cfg tc = lc_train_cfg_default();
    lc_error err;
    size_t i;
    lc_rng r;
    tc.attn = LOLCATS_ATTN_HYBRID;
    tc.trainable = stage == 1 ? LOLCATS_TRAIN_FMAPS : LOLCATS_TRAIN_LORA;
    tc.feature_dim = 3; tc.lora_rank = stage == 1 ? 0 : 2; tc.lora_alpha = 4;
    tc.hybrid.window = 4; tc.max_tokens = T; tc.seed = 5;
    if (!CHECK(lc_train_init_full(t, &ctx, mc, &tc, &err) == LOLCATS_OK, "init: %s", err.msg)) return 1;
    lc_rng_seed(&r, 3);   /* weights larger than the 0.02 init; norms stay 1 */
    for (i = 0; i < (size_t)(t->fmap_q - t->params); i++)
        if (t->params[i] != 1.0f) t->params[i] *= 10.0f;
    (void)r;
    return 0;
}

/* K optimizer steps of 2 accumulated sequences; a plateau scheduler fed the
   loss of sequence 3 after each step. */
static void train_steps(lc_train *t, lc_train_progress *pr, int stage, int K) {
    lc_adamw_cfg opt = lc_adamw_cfg_default();
    lc_error err;
    int k, a, ns;
    double loss;
    for (k = 0; k < K; k++) {
        lc_train_zero_grad(t);
        for (a = 0; a < 2; a++) {
            int s = (int)(pr->seq % 3);
            if (stage == 1) lc_train_distill_step(t, toks[s], T, 1, &loss, NULL, &err);
            else lc_train_lm_step(t, toks[s], lbl[s], T, 1, &loss, &ns, &err);
            pr->seq++;
            pr->tokens += T;
        }
        opt.lr = pr->sched.lr;
        lc_train_adamw(t, &opt, 0.5f);
        if (stage == 1) lc_train_distill_step(t, toks[3], T, 0, &loss, NULL, &err);
        else lc_train_lm_step(t, toks[3], lbl[3], T, 0, &loss, &ns, &err);
        lc_plateau_step(&pr->sched, loss);
        if (loss < pr->best_val) { pr->best_val = loss; pr->best_step = t->step; }
    }
}

static void progress_init(lc_train_progress *pr, float lr) {
    memset(pr, 0, sizeof *pr);
    lc_plateau_init(&pr->sched, lr, 0.5f, 1, 1e-4f);
    pr->sched.threshold = 0.2f;   /* demanding: the schedule moves within a few steps */
    pr->best_val = HUGE_VAL;
}

static void test_resume(int stage) {
    lc_model_config mc = tiny_cfg(0, 4);
    lc_train a, b, c;
    lc_train_progress pa, pb, pc;
    lc_error err;
    char path[300];
    const char *ex[2] = {"note", "test"};
    float lr = stage == 1 ? 1e-2f : 1e-3f;
    snprintf(path, sizeof path, "%s/state%d.safetensors", tmp, stage);
    if (make_trainer(&a, &mc, stage) || make_trainer(&b, &mc, stage) || make_trainer(&c, &mc, stage)) return;
    progress_init(&pa, lr); progress_init(&pb, lr); progress_init(&pc, lr);
    train_steps(&a, &pa, stage, 8);
    train_steps(&b, &pb, stage, 4);
    CHECK(lc_train_save_state(&b, &pb, path, ex, 1, &err) == LOLCATS_OK, "save state: %s", err.msg);
    CHECK(lc_train_load_state(&c, &pc, path, &err) == LOLCATS_OK, "load state: %s", err.msg);
    CHECK(c.step == 4 && pc.seq == 8 && pc.tokens == 8 * T && pc.sched.lr == pb.sched.lr &&
          pc.sched.num_bad == pb.sched.num_bad && pc.sched.best == pb.sched.best && pc.best_val == pb.best_val,
          "stage %d: progress restored (step %lld seq %lld lr %g)", stage, (long long)c.step, (long long)pc.seq,
          (double)pc.sched.lr);
    train_steps(&c, &pc, stage, 4);
    printf("  stage %d resume: lr %.3g after 8 steps (schedule moved: %s)\n", stage, (double)pa.sched.lr,
           pa.sched.lr < lr ? "yes" : "no");
    CHECK(a.n_params == c.n_params && !memcmp(a.params, c.params, sizeof(float) * a.n_params),
          "stage %d: 8 steps != 4 + resume + 4 (params differ)", stage);
    CHECK(!memcmp(a.adam_m, c.adam_m, sizeof(float) * a.n_params) &&
          !memcmp(a.adam_v, c.adam_v, sizeof(float) * a.n_params), "stage %d: moments differ after resume", stage);
    CHECK(a.step == c.step && pa.sched.lr == pc.sched.lr && pa.best_val == pc.best_val,
          "stage %d: schedule differs after resume", stage);
    {   /* a state from a different setup is refused */
        lc_model_config m2 = tiny_cfg(0, 2);
        lc_train d;
        lc_train_progress pd;
        if (!make_trainer(&d, &m2, stage)) {
            CHECK(lc_train_load_state(&d, &pd, path, &err) != LOLCATS_OK && strstr(err.msg, "different setup"),
                  "state of another setup accepted (%s)", err.msg);
            lc_train_free(&d);
        }
    }
    lc_train_free(&a); lc_train_free(&b); lc_train_free(&c);
}

static void test_plateau(void) {
    lc_plateau p;
    int i, cut = -1;
    double v[] = {1.0, 0.9, 0.95, 0.9, 0.9, 0.91, 0.899995};
    lc_plateau_init(&p, 1e-2f, 0.1f, 2, 1e-5f);
    for (i = 0; i < 7; i++)
        if (lc_plateau_step(&p, v[i]) && cut < 0) cut = i;
    /* 0.9 improves; 0.95, 0.9 (equal), 0.9 are 3 bad > patience 2 -> cut at i = 4;
       0.899995 is not below 0.9 * (1 - 1e-4): still bad */
    CHECK(cut == 4 && fabsf(p.lr - 1e-3f) < 1e-9f && p.num_bad == 2, "plateau: cut at %d, lr %g, bad %d", cut,
          (double)p.lr, p.num_bad);
    lc_plateau_init(&p, 2e-5f, 0.1f, 0, 1e-5f);
    lc_plateau_step(&p, 1.0);
    lc_plateau_step(&p, 1.0);
    CHECK(p.lr == 1e-5f, "plateau: min lr respected (%g)", (double)p.lr);
}

static void test_checkpoint(void) {
    lc_model_config mc = tiny_cfg(1, 4);
    lc_train t;
    lc_lolcats view, lp;
    lc_error err;
    lc_st_file *f = NULL;
    char path[300], bad[300], dir[300];
    const char *ex[4] = {"base_model", "tiny.bin", "stage", "2"};
    int l, tg, i;
    lc_rng r;
    snprintf(path, sizeof path, "%s/ckpt.safetensors", tmp);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", tmp);
    if (make_trainer(&t, &mc, 2)) return;
    lc_rng_seed(&r, 11);   /* every LoLCATs value non-trivial */
    for (i = (int)(t.fmap_q - t.params); i < (int)t.n_params; i++) t.params[i] += 0.3f * lc_rng_normal(&r);
    lc_train_lolcats_view(&t, &view);
    CHECK(lc_lolcats_save(&view, path, ex, 2, &err) == LOLCATS_OK, "save: %s", err.msg);
    if (CHECK(lc_st_open(&f, path, &err) == LOLCATS_OK, "open: %s", err.msg)) {
        const lc_tensor *a = lc_st_find(f, "model.layers.1.self_attn.feature_map_q.mlp.layer");
        const lc_tensor *w = lc_st_find(f, "model.layers.0.self_attn.window_factors");
        const lc_tensor *la = lc_st_find(f, "base_model.model.model.layers.1.self_attn.o_proj.lora_A.default.weight");
        const lc_tensor *lb = lc_st_find(f, "base_model.model.model.layers.0.self_attn.k_proj.lora_B.default.weight");
        CHECK(lc_st_count(f) == 2 * 3 + 2 * 8, "tensor count %d", lc_st_count(f));
        CHECK(a && a->ndim == 3 && a->shape[0] == 4 && a->shape[1] == 4 && a->shape[2] == 3, "feature map shape");
        CHECK(w && w->ndim == 4 && w->shape[0] == 1 && w->shape[1] == 4 && w->shape[2] == 1 && w->shape[3] == 1,
              "window factors shape");
        CHECK(la && la->shape[0] == 2 && la->shape[1] == 16, "o_proj lora_A shape (r, H*D)");
        CHECK(lb && lb->shape[0] == 8 && lb->shape[1] == 2, "k_proj lora_B shape (Hk*D, r)");
        CHECK(lc_st_meta(f, "variant") && !strcmp(lc_st_meta(f, "variant"), "tk") &&
              !strcmp(lc_st_meta(f, "feature_map"), "softmax_dim") && !strcmp(lc_st_meta(f, "window"), "4") &&
              !strcmp(lc_st_meta(f, "feature_dim"), "3") && !strcmp(lc_st_meta(f, "lora_rank"), "2") &&
              !strcmp(lc_st_meta(f, "lora_alpha"), "4") && !strcmp(lc_st_meta(f, "rope"), "interleaved") &&
              !strcmp(lc_st_meta(f, "base_model"), "tiny.bin") && lc_st_meta(f, "lolcats_format") &&
              lc_st_meta(f, "eps") && lc_st_meta(f, "halfspace") && lc_st_meta(f, "affine"), "metadata");
    }
    if (CHECK(lc_lolcats_load(&lp, path, t.model, &err) == LOLCATS_OK, "load: %s", err.msg)) {
        size_t per = (size_t)mc.n_layers * mc.n_heads * mc.head_dim * 3;
        int same = !memcmp(lp.fmap_q, view.fmap_q, per * 4) && !memcmp(lp.fmap_k, view.fmap_k, per * 4) &&
                   !memcmp(lp.wf, view.wf, (size_t)mc.n_layers * mc.n_heads * 4);
        for (l = 0; l < mc.n_layers; l++)
            for (tg = 0; tg < 4; tg++) {
                size_t na = 2 * (size_t)(tg == 3 ? 16 : 16), nb = 2 * (size_t)(tg == 0 ? 16 : tg == 3 ? 16 : 8);
                same = same && lp.lora_a[l][tg] && !memcmp(lp.lora_a[l][tg], view.lora_a[l][tg], na * 4) &&
                       !memcmp(lp.lora_b[l][tg], view.lora_b[l][tg], nb * 4);
            }
        CHECK(same, "values round trip bit for bit");
        CHECK(lp.lora_rank == 2 && lp.lora_alpha == 4.0f && lp.feature_dim == 3 && lp.hybrid.window == 4 &&
              lp.hybrid.variant == LOLCATS_WINDOW_TK && lp.rope_interleaved == 1 &&
              !strcmp(lc_lolcats_meta(&lp, "stage"), "2"), "config round trip");
        lc_lolcats_free(&lp);
    }
    /* errors: missing tensor, wrong shape, wrong model, not a checkpoint */
    if (f) {
        int n = lc_st_count(f), k = 0;
        lc_tensor *ts = (lc_tensor *)calloc((size_t)n, sizeof(lc_tensor));
        const char *meta[64];
        int nm = lc_st_meta_count(f);
        float junk[4 * 4 * 2];
        memset(junk, 0, sizeof junk);
        for (i = 0; i < nm && i < 32; i++) lc_st_meta_at(f, i, &meta[2 * i], &meta[2 * i + 1]);
        for (i = 0; i < n; i++) {
            const lc_tensor *x = lc_st_tensor_at(f, i);
            if (!strcmp(x->name, "model.layers.1.self_attn.feature_map_k.mlp.layer")) continue;
            ts[k++] = *x;
        }
        lc_st_write(bad, ts, k, meta, nm, &err);
        CHECK(lc_lolcats_load(&lp, bad, t.model, &err) != LOLCATS_OK &&
              strstr(err.msg, "model.layers.1.self_attn.feature_map_k.mlp.layer") && strstr(err.msg, "missing") &&
              strstr(err.msg, "bad.safetensors"), "missing tensor error: %s", err.msg);
        printf("  missing tensor: %s\n", err.msg);
        for (i = 0, k = 0; i < n; i++) {
            ts[k] = *lc_st_tensor_at(f, i);
            if (!strcmp(ts[k].name, "model.layers.0.self_attn.feature_map_q.mlp.layer")) {
                ts[k].shape[2] = 2;
                ts[k].nbytes = 4 * 4 * 2 * 4;
                ts[k].data = junk;
            }
            k++;
        }
        lc_st_write(bad, ts, k, meta, nm, &err);
        CHECK(lc_lolcats_load(&lp, bad, t.model, &err) != LOLCATS_OK &&
              strstr(err.msg, "model.layers.0.self_attn.feature_map_q.mlp.layer") && strstr(err.msg, "(4,4,2)") &&
              strstr(err.msg, "(4,4,3)"), "wrong shape error: %s", err.msg);
        printf("  wrong shape: %s\n", err.msg);
        for (i = 0, k = 0; i < n; i++) {
            ts[k] = *lc_st_tensor_at(f, i);
            if (strstr(ts[k].name, "layers.1.self_attn.v_proj.lora_B")) continue;
            k++;
        }
        lc_st_write(bad, ts, k, meta, nm, &err);
        CHECK(lc_lolcats_load(&lp, bad, t.model, &err) != LOLCATS_OK && strstr(err.msg, "v_proj.lora_B"),
              "half a LoRA pair error: %s", err.msg);
        free(ts);
        lc_st_close(f);
    }
    {
        lc_model_config m2 = tiny_cfg(1, 2);
        lc_train t2;
        if (!make_trainer(&t2, &m2, 1)) {
            CHECK(lc_lolcats_load(&lp, path, t2.model, &err) != LOLCATS_OK && strstr(err.msg, "wrong --model"),
                  "wrong model error: %s", err.msg);
            printf("  wrong model: %s\n", err.msg);
            lc_train_free(&t2);
        }
        m2 = tiny_cfg(0, 4);
        if (!make_trainer(&t2, &m2, 1)) {
            CHECK(lc_lolcats_load(&lp, path, t2.model, &err) != LOLCATS_OK && strstr(err.msg, "RoPE"),
                  "RoPE pairing mismatch error: %s", err.msg);
            lc_train_free(&t2);
        }
    }
    {
        char st[300];
        snprintf(st, sizeof st, "%s/state1.safetensors", tmp);
        CHECK(lc_lolcats_load(&lp, st, NULL, &err) != LOLCATS_OK && strstr(err.msg, "not a LoLCATs checkpoint"),
              "non-checkpoint error: %s", err.msg);
    }
    /* merged export: same loss as the unmerged model with LoRA */
    snprintf(dir, sizeof dir, "%s/merged", tmp);
    mkdir(dir, 0755);
    if (CHECK(lc_lolcats_export_hf(t.model, &view, dir, &err) == LOLCATS_OK, "export: %s", err.msg)) {
        lc_model hm;
        lc_lolcats mp;
        double l0 = 0, l1 = 0;
        int ns;
        lc_train_lm_step(&t, toks[0], lbl[0], T, 0, &l0, &ns, &err);
        if (CHECK(lc_model_load(&hm, dir, &err) == LOLCATS_OK, "merged dir loads: %s", err.msg)) {
            CHECK(hm.cfg.rope_interleaved == 0, "merged model uses rotate_half");
            if (CHECK(lc_lolcats_load(&mp, dir, &hm, &err) == LOLCATS_OK, "merged LoLCATs tensors load: %s",
                      err.msg)) {
                lc_train t3;
                lc_train_cfg tc = t.cfg;
                CHECK(mp.lora_rank == 0 && mp.rope_interleaved == 0, "merged: no LoRA, rotate_half maps");
                tc.lora_rank = 0;
                tc.trainable = LOLCATS_TRAIN_FMAPS;
                if (CHECK(lc_train_init(&t3, &ctx, &hm, &tc, &err) == LOLCATS_OK, "%s", err.msg)) {
                    lc_train_set_lolcats(&t3, &mp, &err);
                    lc_train_lm_step(&t3, toks[0], lbl[0], T, 0, &l1, &ns, &err);
                    printf("  merged export: loss %.7f vs unmerged with LoRA %.7f\n", l1, l0);
                    CHECK(fabs(l1 - l0) <= 1e-4 * fabs(l0), "merged loss %g != %g", l1, l0);
                    lc_train_free(&t3);
                }
                lc_lolcats_free(&mp);
            }
            lc_model_free(&hm);
        }
    }
    lc_train_free(&t);
}

/* ---- data ---- */
static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    if (f) { fputs(s, f); fclose(f); }
}

/* a byte tokenizer in llama2.c format: <unk> <s> </s> then <0x00>..<0xFF> */
static void write_byte_tokenizer(const char *path) {
    FILE *f = fopen(path, "wb");
    int32_t mx = 6, len, i;
    float sc = 0;
    char piece[8];
    if (!f) return;
    fwrite(&mx, 4, 1, f);
    for (i = 0; i < 259; i++) {
        if (i == 0) snprintf(piece, sizeof piece, "<unk>");
        else if (i == 1) snprintf(piece, sizeof piece, "<s>");
        else if (i == 2) snprintf(piece, sizeof piece, "</s>");
        else snprintf(piece, sizeof piece, "<0x%02X>", i - 3);
        len = (int32_t)strlen(piece);
        fwrite(&sc, 4, 1, f);
        fwrite(&len, 4, 1, f);
        fwrite(piece, 1, (size_t)len, f);
    }
    fclose(f);
}

static void test_data(void) {
    char tp[300], jp[300], xp[300];
    lc_tokenizer tok;
    lc_error err;
    tool_data d;
    tool_data_cfg dc;
    int rc, i, bad = 0;
    long c;
    snprintf(tp, sizeof tp, "%s/tok.bin", tmp);
    snprintf(jp, sizeof jp, "%s/a.jsonl", tmp);
    snprintf(xp, sizeof xp, "%s/t.txt", tmp);
    write_byte_tokenizer(tp);
    if (!CHECK(lc_tokenizer_load_llama2c(&tok, tp, 259, &err) == LOLCATS_OK, "byte tokenizer: %s", err.msg)) return;
    write_text(jp, "{\"instruction\": \"Say hi\", \"input\": \"\", \"output\": \"hi\"}\n"
                   "\n"
                   "{\"instruction\": \"Add\", \"input\": \"1 2\", \"output\": \"3\\u00e9\", \"extra\": [1, {\"x\": null}]}\n"
                   "{\"output\": \"ok\", \"instruction\": \"Echo\"}\n");
    memset(&dc, 0, sizeof dc);
    dc.seq_len = 16; dc.val_records = 1; dc.val_seqs = 4; dc.eos_id = 2;
    rc = tool_data_load(&d, jp, &tok, &dc, &err);
    if (CHECK(rc == 0, "alpaca load: %s", err.msg)) {
        /* the stream of records 2..3: [BOS] prompt response EOS, each; labels only on response + EOS */
        tool_alpaca_rec r;
        int *ids = NULL;
        size_t cap = 0, n2, np2, n3, np3;
        long long expect;
        memset(&r, 0, sizeof r);
        r.instruction = (char *)"Add"; r.input = (char *)"1 2"; r.output = (char *)"3\xc3\xa9";
        tool_alpaca_encode(&tok, 2, &r, &ids, &cap, &n2, &np2, &err);
        r.instruction = (char *)"Echo"; r.input = NULL; r.output = (char *)"ok";
        tool_alpaca_encode(&tok, 2, &r, &ids, &cap, &n3, &np3, &err);
        /* the response is encoded without specials but, like SentencePiece, with its dummy prefix space */
        CHECK(ids[0] == 1 && ids[n3 - 1] == 2 && n3 - np3 == 4 && ids[np3] == ' ' + 3 && ids[np3 + 1] == 'o' + 3,
              "record encoding: BOS + prompt, response + EOS (%d %d)", ids[np3], ids[n3 - 1]);
        expect = (long long)(n2 + n3) / 16;
        CHECK(d.records == 2 && d.val_records == 1 && d.n == expect, "chunks %ld (expect %lld), records %ld/%ld",
              d.n, expect, d.records, d.val_records);
        for (c = 0; c < d.n; c++)
            for (i = 0; i < 16; i++) {
                int lab = d.labels[c * 16 + i];
                if (i == 15) { bad += lab != -1; continue; }
                bad += lab != -1 && lab != d.tokens[c * 16 + i + 1];
            }
        CHECK(bad == 0, "labels are next tokens or -1 (%d bad)", bad);
        {   /* position of the first response token of record 2 (its "3") predicts from the prompt's end */
            long pos = (long)np2;   /* the label of position np2 is the response's first real piece */
            CHECK(d.labels[pos] == '3' + 3 && d.labels[pos - 1] == ' ' + 3 && d.labels[pos - 2] == -1 && d.tokens[0] == 1,
                  "prompt ignored, response scored (%d %d)", d.labels[pos], d.labels[pos - 1]);
        }
        CHECK(d.n_val == 4 && d.val_tokens[0] == 1, "validation: chunks of the first record, capped at --val-seqs (%ld)",
              (long)d.n_val);
        free(ids);
        tool_data_free(&d);
    }
    write_text(jp, "{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": \"a\" \"output\": \"b\"}\n");
    CHECK(tool_data_load(&d, jp, &tok, &dc, &err) != 0 && strstr(err.msg, "a.jsonl:2: column") &&
          strstr(err.msg, "expected"), "bad JSON names file:line (%s)", err.msg);
    printf("  bad JSON: %s\n", err.msg);
    write_text(jp, "{\"instruction\": \"a\"}\n");
    CHECK(tool_data_load(&d, jp, &tok, &dc, &err) != 0 && strstr(err.msg, ":1:") && strstr(err.msg, "output"),
          "record without output (%s)", err.msg);
    write_text(jp, "");
    CHECK(tool_data_load(&d, jp, &tok, &dc, &err) != 0 && strstr(err.msg, "no records"), "empty jsonl (%s)", err.msg);
    write_text(xp, " \n");
    CHECK(tool_data_load(&d, xp, &tok, &dc, &err) != 0 && strstr(err.msg, "empty file"), "empty text (%s)", err.msg);
    {   /* text: [BOS] + text, chunks, the last val_seqs chunks held out, every label the next token */
        char text[1000];
        for (i = 0; i < 999; i++) text[i] = (char)('a' + i % 26);
        text[999] = 0;
        write_text(xp, text);
        dc.seq_len = 100; dc.val_seqs = 2;
        if (CHECK(tool_data_load(&d, xp, &tok, &dc, &err) == 0, "text load: %s", err.msg)) {
            long k;
            int seen[8] = {0}, ok = 1;
            CHECK(d.stream_tokens == 1001 && d.n == 8 && d.n_val == 2, "text: %lld tokens, %ld + %ld chunks",
                  d.stream_tokens, d.n, d.n_val);
            CHECK(d.tokens[0] == 1 && d.tokens[1] == ' ' + 3 && d.labels[0] == ' ' + 3 && d.labels[99] == -1 &&
                  d.val_tokens[0] == 'a' + (8 * 100 - 2) % 26 + 3 &&
                  d.labels[150] == d.tokens[151], "text labels");
            for (k = 0; k < 16; k++) {   /* two epochs: each a permutation, seeded */
                long idx = tool_data_pick(&d, 7, k);
                if (idx < 0 || idx >= 8) ok = 0;
                else seen[idx]++;
            }
            for (i = 0; i < 8; i++) ok = ok && seen[i] == 2;
            CHECK(ok, "shuffled epochs are permutations");
            {
                long a0 = tool_data_pick(&d, 7, 3), a1 = tool_data_pick(&d, 7, 12), b0, b1;
                tool_data_pick(&d, 9, 0);
                b0 = tool_data_pick(&d, 7, 3);
                b1 = tool_data_pick(&d, 7, 12);
                CHECK(a0 == b0 && a1 == b1, "the order depends on seed and position only");
            }
            tool_data_free(&d);
        }
    }
    lc_tokenizer_free(&tok);
}

/* ---- the commands on stories260K ---- */
static int sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = tool_read_file(a, &na), *y = tool_read_file(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

static double json_last(const char *path, const char *key, int first) {
    size_t n = 0;
    char *s = tool_read_file(path, &n), *p;
    double v = (double)NAN;
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    if (!s) return v;
    for (p = strstr(s, pat); p; p = strstr(p + 1, pat)) {
        v = atof(p + strlen(pat));
        if (first) break;
    }
    free(s);
    return v;
}

static void test_cli(void) {
    const char *bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    const char *S = "../shared/models/stories260K";
    char cmd[4096], base[2048], data[300], c1[300], c2[300], c3[300], log[300];
    FILE *f;
    size_t n = 0;
    char *text;
    lc_model m;
    lc_lolcats lp;
    lc_error err;
    f = fopen("../shared/models/stories260K/stories260K.bin", "rb");
    if (!f) { printf("SKIPPED: lolcats distill/finetune on stories260K (../shared/models/stories260K absent)\n"); return; }
    fclose(f);
    text = tool_read_file("../shared/data/tinystories.valid-head.txt", &n);
    if (!text) { printf("SKIPPED: ../shared/data/tinystories.valid-head.txt absent\n"); return; }
    snprintf(data, sizeof data, "%s/stories.txt", tmp);
    if (n > 12000) text[12000] = 0;
    write_text(data, text);
    free(text);
    snprintf(c1, sizeof c1, "%s/d1.safetensors", tmp);
    snprintf(c2, sizeof c2, "%s/d2.safetensors", tmp);
    snprintf(c3, sizeof c3, "%s/f.safetensors", tmp);
    snprintf(log, sizeof log, "%s/log.jsonl", tmp);
    snprintf(base, sizeof base, "%s distill --model %s/stories260K.bin --tokenizer %s/tok512.bin --data %s "
             "--seq-len 32 --grad-accum 2 --tokens 512 --val-every 2 --val-seqs 2 --lr 2e-2 --seed 4", bin, S, S, data);
    snprintf(cmd, sizeof cmd, "%s --out %s --json-log %s --report %s/rep 2>%s/err1.txt", base, c1, log, tmp, tmp);
    CHECK(sh(cmd) == 0, "`%s` failed", cmd);
    {
        double v0 = json_last(log, "val_loss", 1), v1 = json_last(log, "val_loss", 0);
        printf("  distill: val loss %.4f -> %.4f (8 steps of 2 x 32 tokens)\n", v0, v1);
        CHECK(v1 < v0, "distill val loss did not fall (%g -> %g)", v0, v1);
    }
    snprintf(cmd, sizeof cmd, "%s --out %s --stop-after 3 2>%s/err2.txt", base, c2, tmp);
    CHECK(sh(cmd) == 3, "--stop-after 3 exits 3");
    snprintf(cmd, sizeof cmd, "%s --out %s --resume 2>%s/err3.txt", base, c2, tmp);
    CHECK(sh(cmd) == 0, "--resume failed");
    CHECK(same_file(c1, c2), "resumed run's checkpoint differs from the uninterrupted one");
    snprintf(cmd, sizeof cmd, "%s.state", c1);
    snprintf(base, sizeof base, "%s.state", c2);
    CHECK(same_file(cmd, base), "resumed run's state differs from the uninterrupted one");
    snprintf(cmd, sizeof cmd, "%s/rep/summary.json", tmp);
    f = fopen(cmd, "rb");
    CHECK(f != NULL, "report summary.json written");
    if (f) fclose(f);
    snprintf(cmd, sizeof cmd, "%s finetune --model %s/stories260K.bin --tokenizer %s/tok512.bin --data %s "
             "--lolcats %s --out %s --seq-len 32 --grad-accum 2 --tokens 256 --val-every 2 --val-seqs 2 --lr 3e-3 "
             "--json-log %s2 --merge %s/mergedcli 2>%s/err4.txt", bin, S, S, data, c1, c3, log, tmp, tmp);
    CHECK(sh(cmd) == 0, "`%s` failed", cmd);
    {
        char log2[310];
        double v0, v1;
        snprintf(log2, sizeof log2, "%s2", log);
        v0 = json_last(log2, "val_loss", 1);
        v1 = json_last(log2, "val_loss", 0);
        printf("  finetune: val loss %.4f -> %.4f (4 steps)\n", v0, v1);
        CHECK(v1 < v0, "finetune val loss did not fall (%g -> %g)", v0, v1);
    }
    if (CHECK(lc_model_load(&m, "../shared/models/stories260K/stories260K.bin", &err) == LOLCATS_OK, "%s", err.msg)) {
        CHECK(lc_lolcats_load(&lp, c1, &m, &err) == LOLCATS_OK && lp.lora_rank == 0, "distill output loads: %s",
              err.msg);
        lc_lolcats_free(&lp);
        CHECK(lc_lolcats_load(&lp, c3, &m, &err) == LOLCATS_OK && lp.lora_rank == 8 && lp.lora_a[4][3],
              "finetune output loads with LoRA: %s", err.msg);
        lc_lolcats_free(&lp);
        lc_model_free(&m);
    }
    snprintf(cmd, sizeof cmd, "%s finetune --model %s/stories260K.bin --tokenizer %s/tok512.bin --data %s "
             "--lolcats %s/state1.safetensors --out %s/x.safetensors 2>%s/err5.txt", bin, S, S, data, tmp, tmp, tmp);
    CHECK(sh(cmd) == 1, "finetune from a non-checkpoint fails cleanly");
    /* T2R: relu maps carry a trained scalar bias per head into the checkpoint and on through stage 2 */
    snprintf(c2, sizeof c2, "%s/t2r1.safetensors", tmp);
    snprintf(cmd, sizeof cmd, "%s distill --model %s/stories260K.bin --tokenizer %s/tok512.bin --data %s --seq-len 32 "
             "--grad-accum 2 --tokens 128 --val-every 0 --val-seqs 2 --feature-map relu --feature-dim 8 --out %s "
             "2>%s/err6.txt", bin, S, S, data, c2, tmp);
    CHECK(sh(cmd) == 0, "`%s` failed", cmd);
    snprintf(cmd, sizeof cmd, "%s finetune --model %s/stories260K.bin --tokenizer %s/tok512.bin --data %s --seq-len 32 "
             "--grad-accum 2 --tokens 64 --val-every 0 --val-seqs 2 --lolcats %s --out %s/t2r2.safetensors "
             "2>%s/err7.txt", bin, S, S, data, c2, tmp, tmp);
    CHECK(sh(cmd) == 0, "`%s` failed", cmd);
    if (CHECK(lc_model_load(&m, "../shared/models/stories260K/stories260K.bin", &err) == LOLCATS_OK, "%s", err.msg)) {
        snprintf(c3, sizeof c3, "%s/t2r2.safetensors", tmp);
        if (CHECK(lc_lolcats_load(&lp, c3, &m, &err) == LOLCATS_OK, "T2R checkpoint loads: %s", err.msg)) {
            CHECK(lp.fmap.act == LOLCATS_FMAP_RELU && lp.fbq && lp.fbk && lp.lora_rank == 8,
                  "T2R stage 2 checkpoint: relu %d, biases %s, LoRA rank %d", lp.fmap.act == LOLCATS_FMAP_RELU,
                  lp.fbq ? "present" : "missing", lp.lora_rank);
            lc_lolcats_free(&lp);
        }
        lc_model_free(&m);
    }
}

int main(void) {
    int i, s;
    lc_rng r;
    const char *td = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/lolcats_pipeline_XXXXXX", td ? td : "/tmp");
    if (!mkdtemp(tmp)) { printf("cannot create a temporary directory\n0 passed, 1 failed\n"); return 1; }
    lc_ctx_init(&ctx);
    lc_rng_seed(&r, 9);
    for (s = 0; s < 4; s++)
        for (i = 0; i < T; i++) {
            toks[s][i] = (int)(lc_rng_u64(&r) % 11);
            lbl[s][i] = i < 3 ? -1 : (int)(lc_rng_u64(&r) % 11);
        }
    printf("resume exactness\n");
    test_resume(1);
    test_resume(2);
    test_plateau();
    printf("checkpoints\n");
    test_checkpoint();
    printf("data\n");
    test_data();
    printf("commands\n");
    test_cli();
    {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0) printf("note: could not remove %s\n", tmp);
    }
    return check_done();
}
