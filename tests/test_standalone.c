/* test_standalone.c - outputs that stand alone (issue 20), through the real
   binary ($LOLCATS_BIN) on a tiny model written here (tests/tiny_files.h):
   - `convert --from-llama2c --tokenizer` copies the tokenizer into the
     directory (a .json as tokenizer.json; a tokenizer.bin as is, with the
     stderr line saying it has no tokenizer.json form);
   - `linearize --merge DIR --peft DIR2`, once from the llama2.c file and once
     from its Hugging Face conversion (with tokenizer_config.json,
     special_tokens_map.json, tokenizer.model, generation_config.json beside):
     DIR carries those files byte for byte and a config.json with a "lolcats"
     object and a LolcatsLlamaForCausalLM architecture that our loader still
     reads; `inspect DIR` names it LoLCATs linearized;
   - `eval DIR` with no other flag scores the linearized model: the NLL equals
     `eval --lolcats CKPT` on the teacher and `eval DIR --lolcats DIR`, and
     differs from `eval DIR --softmax`; `--softmax --lolcats` is a usage error;
     `generate DIR` runs without --tokenizer;
   - the PEFT adapter: adapter_config.json's fields, the tensor names and
     shapes PEFT expects for the teacher (lora_A (r,in), lora_B (out,r)), and
     W + (alpha/r) B A == the merged directory's weight for every target of
     every layer (1e-5 relative), W the teacher in Hugging Face layout (for the
     llama2.c run: q/k rows permuted to rotate_half);
   - with ../shared (else SKIPPED): alpaca-llama-25m's five tokenizer files in
     its --merge directory, generate / eval on it linearized. */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "tiny_files.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define T "build/tests/standalone"

static const char *bin;
static const char *eval_data = T "/text.txt";   /* what eval_nll scores */

/* runs `lolcats ARGS`, stdout into T/out.txt, stderr into T/err.txt; the exit code */
static int run(const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 timeout 120 %s %s >" T "/out.txt 2>" T "/err.txt", bin, args);
    return tiny_sh(cmd);
}

static int file_has(const char *file, const char *what) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "grep -qF -- '%s' %s", what, file);
    return tiny_sh(cmd) == 0;
}

static int same_bytes(const char *a, const char *b) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", a, b);
    return tiny_sh(cmd) == 0;
}

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fputs(text, f);
    return fclose(f) == 0;
}

/* the "nll" of `eval ... --json` (in T/out.txt) as printed; "" when absent */
static void eval_nll(const char *args, char *nll, size_t cap) {
    char a[2048], line[4096], *p;
    FILE *f;
    nll[0] = 0;
    snprintf(a, sizeof a, "eval %s --data %s --ctx 16 --json", args, eval_data);
    if (run(a) != 0 || !(f = fopen(T "/out.txt", "rb"))) return;
    if (fgets(line, sizeof line, f) && (p = strstr(line, "\"nll\": ")) != NULL)
        snprintf(nll, cap, "%.*s", (int)strcspn(p + 7, ","), p + 7);
    fclose(f);
}

static void test_convert(void) {
    CHECK(run("convert --from-llama2c " T "/m.bin --out " T "/base --tokenizer " T "/tok.bin --force") == 0,
          "convert --tokenizer tok.bin");
    CHECK(same_bytes(T "/tok.bin", T "/base/tokenizer.bin"), "convert: tokenizer.bin copied into the directory");
    CHECK(file_has(T "/err.txt", "has no tokenizer.json form"), "convert: the tokenizer.bin notice on stderr");
    CHECK(write_text(T "/fake.json", "{\"model\": {\"type\": \"BPE\"}}\n") &&
          run("convert --from-llama2c " T "/m.bin --out " T "/c2 --tokenizer " T "/fake.json --force") == 0 &&
          same_bytes(T "/fake.json", T "/c2/tokenizer.json"), "convert --tokenizer X.json: DIR/tokenizer.json");
    CHECK(run("convert --from-llama2c " T "/m.bin --out " T "/c3 --force") == 0 &&
          file_has(T "/err.txt", "no --tokenizer"), "convert without --tokenizer says the directory has none");
}

static float *tensor_f32(lc_st_file *f, const char *name, int64_t rows, int64_t cols) {
    const lc_tensor *t = lc_st_find(f, name);
    float *d;
    lc_error err;
    if (!CHECK(t != NULL, "adapter: tensor %s missing", name)) return NULL;
    if (!CHECK(t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols,
               "adapter: %s has shape [%lld, %lld], PEFT expects [%lld, %lld]", name, (long long)t->shape[0],
               (long long)(t->ndim > 1 ? t->shape[1] : 0), (long long)rows, (long long)cols))
        return NULL;
    d = (float *)malloc(sizeof(float) * (size_t)(rows * cols));
    if (d && lc_tensor_to_f32(t, d, &err) != LOLCATS_OK) { free(d); d = NULL; }
    return d;
}

/* W + (alpha/r) B A of the adapter in dir == the merged directory's weights */
static void check_peft(const char *dir, const char *merged, const lc_model *base) {
    static const char *const tg_name[4] = {"q_proj", "k_proj", "v_proj", "o_proj"};
    char path[512], nm[160];
    lc_st_file *f = NULL;
    lc_model mm;
    lc_error err;
    int l, tg, r = 2, n_ok = 0, n_names = 0;
    double worst = 0;
    float s = 16.0f / 2.0f;
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    CHECK(file_has(path, "\"peft_type\": \"LORA\"") && file_has(path, "\"task_type\": \"CAUSAL_LM\"") &&
          file_has(path, "\"r\": 2,") && file_has(path, "\"lora_alpha\": 16,") &&
          file_has(path, "\"lora_dropout\": 0.0") && file_has(path, "\"bias\": \"none\"") &&
          file_has(path, "\"fan_in_fan_out\": false") && file_has(path, "\"base_model_name_or_path\": ") &&
          file_has(path, "\"target_modules\": [\"q_proj\", \"k_proj\", \"v_proj\", \"o_proj\"]"),
          "%s: adapter_config.json fields", dir);
    snprintf(path, sizeof path, "%s/README.md", dir);
    CHECK(file_has(path, "feature maps") && file_has(path, "window factors"),
          "%s/README.md says what PEFT cannot express", dir);
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    if (!CHECK(lc_st_open(&f, path, &err) == LOLCATS_OK, "%s: %s", path, err.msg)) return;
    if (!CHECK(lc_model_load(&mm, merged, &err) == LOLCATS_OK, "%s: %s", merged, err.msg)) {
        lc_st_close(f);
        return;
    }
    for (l = 0; l < base->cfg.n_layers; l++)
        for (tg = 0; tg < 4; tg++) {
            const lc_layer_weights *bl = &base->layers[l], *ml = &mm.layers[l];
            const lc_weight *w = tg == 0 ? &bl->wq : tg == 1 ? &bl->wk : tg == 2 ? &bl->wv : &bl->wo;
            const lc_weight *wm = tg == 0 ? &ml->wq : tg == 1 ? &ml->wk : tg == 2 ? &ml->wv : &ml->wo;
            int64_t out = w->rows, in = w->cols, o, k, j;
            float *A, *B;
            double wmax = 0, dmax = 0;
            snprintf(nm, sizeof nm, "base_model.model.model.layers.%d.self_attn.%s.lora_A.weight", l, tg_name[tg]);
            A = tensor_f32(f, nm, r, in);
            snprintf(nm, sizeof nm, "base_model.model.model.layers.%d.self_attn.%s.lora_B.weight", l, tg_name[tg]);
            B = tensor_f32(f, nm, out, r);
            n_names += A != NULL && B != NULL;
            if (A && B) {
                for (o = 0; o < out; o++)
                    for (k = 0; k < in; k++) {
                        double acc = 0, v;
                        for (j = 0; j < r; j++) acc += (double)B[o * r + j] * (double)A[j * in + k];
                        v = (double)lc_weight_get(w, o * in + k) + (double)s * acc;
                        if (fabs(v) > wmax) wmax = fabs(v);
                        if (fabs(v - (double)lc_weight_get(wm, o * in + k)) > dmax)
                            dmax = fabs(v - (double)lc_weight_get(wm, o * in + k));
                    }
                if (dmax / (wmax > 0 ? wmax : 1) > worst) worst = dmax / (wmax > 0 ? wmax : 1);
                n_ok += dmax <= 1e-5 * wmax;
            }
            free(A);
            free(B);
        }
    CHECK(n_names == 4 * base->cfg.n_layers && lc_st_count(f) == 8 * base->cfg.n_layers,
          "%s: %d of %d targets with PEFT's names and shapes, %d tensors", dir, n_names, 4 * base->cfg.n_layers,
          lc_st_count(f));
    CHECK(n_ok == 4 * base->cfg.n_layers, "%s: W + (alpha/r) B A == merged weight for %d of %d targets "
          "(worst relative difference %.3g)", dir, n_ok, 4 * base->cfg.n_layers, worst);
    printf("%s: W + (alpha/r) B A vs the merged weights: worst relative difference %.3g\n", dir, worst);
    lc_model_free(&mm);
    lc_st_close(f);
}

/* one linearize run with --merge and --peft; model: the teacher as trained on */
static void test_merge(const char *tag, const char *model, const lc_model *base_hf) {
    char a[2048], merged[256], peft[256], ckpt[256], p[512], nll_dir[64], nll_ck[64], nll_self[64], nll_sm[64];
    lc_model mm;
    lc_error err;
    snprintf(merged, sizeof merged, T "/%s_merged", tag);
    snprintf(peft, sizeof peft, T "/%s_peft", tag);
    snprintf(ckpt, sizeof ckpt, T "/%s.safetensors", tag);
    snprintf(a, sizeof a, "linearize --model %s --tokenizer " T "/tok.bin --data " T "/text.txt --seq-len 16 "
             "--grad-accum 1 --val-seqs 1 --val-every 0 --feature-dim 4 --window 4 --distill-tokens 32 "
             "--finetune-tokens 48 --lora-rank 2 --lora-alpha 16 --finetune-lr 0.01 --out %s --merge %s "
             "--peft %s --force", model, ckpt, merged, peft);
    if (!CHECK(run(a) == 0, "%s: linearize --merge --peft", tag)) return;
    /* tokenizer files */
    snprintf(p, sizeof p, "%s/tokenizer.bin", merged);
    CHECK(same_bytes(T "/tok.bin", p), "%s: the run's tokenizer.bin copied into --merge", tag);
    CHECK(file_has(T "/err.txt", "has no tokenizer.json form"), "%s: the tokenizer.bin notice", tag);
    if (!strcmp(tag, "hf")) {
        static const char *const side[] = {"tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                                           "generation_config.json"};
        int i, ok = 1;
        for (i = 0; i < 4; i++) {
            char s1[512], s2[512];
            snprintf(s1, sizeof s1, T "/base/%s", side[i]);
            snprintf(s2, sizeof s2, "%s/%s", merged, side[i]);
            ok &= same_bytes(s1, s2);
        }
        CHECK(ok, "%s: tokenizer_config.json, special_tokens_map.json, tokenizer.model, generation_config.json "
              "copied from the model directory", tag);
    }
    /* config */
    snprintf(p, sizeof p, "%s/config.json", merged);
    CHECK(file_has(p, "\"lolcats\": {") && file_has(p, "\"LolcatsLlamaForCausalLM\"") &&
          file_has(p, "\"variant\": \"tk\"") && file_has(p, "\"window\": 4,") && file_has(p, "\"lora_rank\": 2,") &&
          file_has(p, "\"feature_dim\": 4,") && file_has(p, "\"teacher_architecture\""),
          "%s: config.json says it is a LoLCATs linearized model", tag);
    if (CHECK(lc_model_load(&mm, merged, &err) == LOLCATS_OK, "%s: the merged config still loads: %s", tag, err.msg))
        lc_model_free(&mm);
    snprintf(a, sizeof a, "inspect %s", merged);
    CHECK(run(a) == 0 && file_has(T "/out.txt", "LoLCATs linearized (tk, window 4"), "%s: inspect names it", tag);
    /* eval: linearized without flags */
    snprintf(a, sizeof a, "--model %s", merged);
    eval_nll(a, nll_dir, sizeof nll_dir);
    CHECK(file_has(T "/err.txt", "running it linearized"), "%s: eval DIR says it runs linearized", tag);
    snprintf(a, sizeof a, "--model %s --tokenizer " T "/tok.bin --lolcats %s", model, ckpt);
    eval_nll(a, nll_ck, sizeof nll_ck);
    snprintf(a, sizeof a, "--model %s --lolcats %s", merged, merged);
    eval_nll(a, nll_self, sizeof nll_self);
    snprintf(a, sizeof a, "--model %s --softmax", merged);
    eval_nll(a, nll_sm, sizeof nll_sm);
    printf("%s: eval NLL: merged dir %s, teacher --lolcats ckpt %s, dir --lolcats dir %s, dir --softmax %s\n", tag,
           nll_dir, nll_ck, nll_self, nll_sm);
    CHECK(nll_dir[0] && !strcmp(nll_dir, nll_ck), "%s: eval DIR (%s) == eval --lolcats CKPT on the teacher (%s)", tag,
          nll_dir, nll_ck);
    CHECK(nll_dir[0] && !strcmp(nll_dir, nll_self), "%s: eval DIR (%s) == eval DIR --lolcats DIR (%s)", tag, nll_dir,
          nll_self);
    CHECK(nll_sm[0] && strcmp(nll_dir, nll_sm), "%s: eval DIR --softmax (%s) differs from linearized (%s)", tag,
          nll_sm, nll_dir);
    snprintf(a, sizeof a, "eval --model %s --data " T "/text.txt --softmax --lolcats %s", merged, merged);
    CHECK(run(a) == 2, "%s: --softmax with --lolcats is a usage error", tag);
    snprintf(a, sizeof a, "generate --model %s --prompt cat --steps 10 --temperature 0", merged);
    CHECK(run(a) == 0 && file_has(T "/err.txt", "running it linearized") && file_has(T "/err.txt", "state "),
          "%s: generate DIR runs linearized with the directory's own tokenizer", tag);
    check_peft(peft, merged, base_hf);
}

/* a real Hugging Face teacher (../shared, sharded, with tokenizer.json): its
   tokenizer files land in --merge byte for byte, and generate / eval run the
   merged directory linearized with its own tokenizer.json */
#define SHARED "../shared/models/alpaca-llama-25m"
static void test_shared(void) {
    static const char *const files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "tokenizer.model", "generation_config.json"};
    char nll_dir[64], nll_ck[64], p1[256], p2[256];
    struct stat st;
    int i, ok = 1;
    if (stat(SHARED "/tokenizer.json", &st) != 0) {
        printf("SKIPPED: the alpaca-llama-25m run (no " SHARED ")\n");
        return;
    }
    if (!CHECK(run("linearize --model " SHARED " --data " T "/text.txt --seq-len 16 --grad-accum 1 --val-seqs 1 "
                   "--val-every 0 --feature-dim 4 --window 4 --distill-tokens 16 --finetune-tokens 16 --lora-rank 2 "
                   "--out " T "/a.safetensors --merge " T "/a_merged --force") == 0, "alpaca-llama-25m: linearize --merge"))
        return;
    for (i = 0; i < 5; i++) {
        snprintf(p1, sizeof p1, SHARED "/%s", files[i]);
        snprintf(p2, sizeof p2, T "/a_merged/%s", files[i]);
        ok &= same_bytes(p1, p2);
    }
    CHECK(ok, "alpaca-llama-25m: the five tokenizer files copied into --merge");
    CHECK(run("generate --model " T "/a_merged --prompt 'Once upon a time' -n 6 --temperature 0") == 0 &&
          file_has(T "/out.txt", "Once upon a time") && file_has(T "/err.txt", "running it linearized"),
          "alpaca-llama-25m: generate on the merged directory, its own tokenizer.json, linearized");
    eval_data = T "/short.txt";   /* 25M parameters: a few hundred tokens */
    CHECK(write_text(eval_data, "Once upon a time, there was a little cat. The cat liked to sit on a mat in the sun. "
                                "One day a dog came and sat on the mat too. They became friends.\n"), "short text");
    eval_nll("--model " T "/a_merged", nll_dir, sizeof nll_dir);
    eval_nll("--model " SHARED " --lolcats " T "/a.safetensors", nll_ck, sizeof nll_ck);
    printf("alpaca-llama-25m: eval NLL merged dir %s, teacher --lolcats ckpt %s\n", nll_dir, nll_ck);
    CHECK(nll_dir[0] && !strcmp(nll_dir, nll_ck), "alpaca-llama-25m: eval DIR (%s) == --lolcats CKPT (%s)", nll_dir,
          nll_ck);
}

int main(void) {
    lc_model base;
    lc_error err;
    bin = getenv("LOLCATS_BIN");
    if (!bin || !*bin) bin = "build/lolcats";
    tiny_sh("mkdir -p " T);
    if (!CHECK(tiny_write_model(T "/m.bin") && tiny_write_tokenizer(T "/tok.bin") && tiny_write_text(T "/text.txt"),
               "writing the tiny model"))
        return check_done();
    test_convert();
    if (CHECK(lc_model_load(&base, T "/base", &err) == LOLCATS_OK, "teacher in HF layout: %s", err.msg)) {
        CHECK(write_text(T "/base/tokenizer_config.json", "{\"model_max_length\": 64}\n") &&
              write_text(T "/base/special_tokens_map.json", "{\"bos_token\": \"<s>\"}\n") &&
              write_text(T "/base/tokenizer.model", "not a real sentencepiece model\n") &&
              write_text(T "/base/generation_config.json", "{\"bos_token_id\": 1}\n"), "side files");
        test_merge("l2c", T "/m.bin", &base);   /* llama2.c teacher: q/k rows permuted */
        test_merge("hf", T "/base", &base);
        lc_model_free(&base);
    }
    test_shared();
    return check_done();
}
