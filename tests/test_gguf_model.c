/* test_gguf_model.c - GGUF models end to end through the command-line tool
   ($LOLCATS_BIN, default build/lolcats): `convert --to-gguf` at every type,
   `inspect`, and loading the GGUF back (lc_model_load) against the model it
   was written from: logits of a tiny llama2.c model (no ../shared), and the
   mean NLL of alpaca-llama-25m (../shared; F32/F16 within 1e-5 relative,
   Q8_0 within 0.005 nats, Q4_K within 0.05). Scratch: build/tests/gguf/. */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "tiny_files.h"
#include "gguf_build.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DIR "build/tests/gguf"
static const char *bin;

/* llama2.c model with GGUF-friendly widths: dim 64 (two Q8_0 blocks),
   hidden 256 (one Q4_K block), 2 layers, 4 heads, 2 kv heads, vocab 259 */
static int write_model(const char *path) {
    int32_t hdr[7] = {64, 256, 2, 4, 2, 259, 64};
    int dim = 64, hid = 256, L = 2, hd = 16, kvd = 32, V = 259, S = 64;
    size_t n = (size_t)V * dim + (size_t)L * dim + (size_t)L * dim * dim + 2 * (size_t)L * dim * kvd +
               (size_t)L * dim * dim + (size_t)L * dim + 3 * (size_t)L * dim * hid + (size_t)dim + (size_t)S * hd, i;
    size_t norm0 = (size_t)V * dim, norm1 = norm0 + (size_t)L * dim + (size_t)L * dim * dim +
                   2 * (size_t)L * dim * kvd + (size_t)L * dim * dim;
    size_t normf = norm1 + (size_t)L * dim + 3 * (size_t)L * dim * hid;
    float *w = (float *)malloc(n * sizeof(float));
    FILE *f = fopen(path, "wb");
    lc_rng r;
    int ok;
    if (!w || !f) { free(w); if (f) fclose(f); return 0; }
    lc_rng_seed(&r, 9);
    for (i = 0; i < n; i++) w[i] = 0.05f * lc_rng_normal(&r);
    for (i = 0; i < (size_t)(L * dim); i++) { w[norm0 + i] = 1.0f + 0.1f * lc_rng_normal(&r); w[norm1 + i] = 1.0f; }
    for (i = 0; i < (size_t)dim; i++) w[normf + i] = 1.0f;
    ok = fwrite(hdr, sizeof hdr, 1, f) == 1 && fwrite(w, sizeof(float), n, f) == n;
    ok = (fclose(f) == 0) && ok;
    free(w);
    return ok;
}

/* logits of 24 tokens, all positions (24, V) */
static float *logits_of(const char *path, int *V) {
    lc_model m;
    lc_run r;
    lc_error err;
    lc_ctx cx;
    int toks[24], i;
    float *out = NULL;
    memset(&err, 0, sizeof err);
    if (!CHECK(lc_model_load(&m, path, &err) == LOLCATS_OK, "%s loads: %s", path, err.msg)) return NULL;
    lc_ctx_init(&cx);
    *V = m.cfg.vocab_size;
    for (i = 0; i < 24; i++) toks[i] = (i * 37 + 5) % *V;
    if (lc_run_init(&r, &m, 32, 24, &err) == LOLCATS_OK) {
        out = (float *)malloc(sizeof(float) * 24 * (size_t)*V);
        if (out && lc_model_forward(&cx, &m, &r, toks, 24, out, &err)) { free(out); out = NULL; }
        lc_run_free(&r);
    }
    CHECK(out != NULL, "%s: forward: %s", path, err.msg);
    lc_model_free(&m);
    return out;
}

static void test_tiny(void) {
    static const char *types[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k"};
    static const double tol[] = {1e-5, 3e-3, 3e-2, 3e-2, 0.3, 0.3};   /* max |dlogit| / max |logit| */
    char cmd[1024], path[256];
    float *ref;
    int V = 0, k;
    size_t i;
    if (!CHECK(write_model(DIR "/tiny.bin"), "tiny model written")) return;
    ref = logits_of(DIR "/tiny.bin", &V);
    if (!ref) return;
    for (k = 0; k < 6; k++) {
        float *y;
        int V2 = 0;
        double mx = 0, d = 0;
        snprintf(path, sizeof path, DIR "/tiny_%s.gguf", types[k]);
        snprintf(cmd, sizeof cmd, "%s convert --to-gguf %s --model " DIR "/tiny.bin --type %s --force >/dev/null",
                 bin, path, types[k]);
        if (!CHECK(tiny_sh(cmd) == 0, "%s", cmd)) continue;
        if (!(y = logits_of(path, &V2)) || !CHECK(V2 == V, "vocab")) { free(y); continue; }
        for (i = 0; i < 24 * (size_t)V; i++) {
            if (fabs((double)ref[i]) > mx) mx = fabs((double)ref[i]);
            if (fabs((double)(y[i] - ref[i])) > d) d = fabs((double)(y[i] - ref[i]));
        }
        printf("  tiny llama2.c -> GGUF %-5s max |dlogit| / max |logit| = %.2e (bound %.0e)\n", types[k], d / mx, tol[k]);
        CHECK(d <= tol[k] * mx, "%s logits off by %.3e of %.3e", types[k], d, mx);
        free(y);
    }
    free(ref);
    /* inspect, refusals */
    snprintf(cmd, sizeof cmd, "%s inspect " DIR "/tiny_q8_0.gguf | grep -q 'blk.1.attn_q.weight  *Q8_0  *\\[64, 64\\]'", bin);
    CHECK(tiny_sh(cmd) == 0, "inspect lists blk.1.attn_q.weight as Q8_0 [64, 64]");
    snprintf(cmd, sizeof cmd, "%s convert --to-gguf " DIR "/tiny_f32.gguf --model " DIR "/tiny.bin 2>/dev/null", bin);
    CHECK(tiny_sh(cmd) == 1, "an existing output is refused without --force");
    snprintf(cmd, sizeof cmd, "%s convert --to-gguf " DIR "/x.gguf --model " DIR "/tiny.bin --type q5_k 2>/dev/null", bin);
    CHECK(tiny_sh(cmd) == 2, "an unknown --type is a usage error");
    snprintf(cmd, sizeof cmd, "head -c 3000 " DIR "/tiny_f32.gguf > " DIR "/cut.gguf && %s inspect " DIR "/cut.gguf 2>&1 "
             "| grep -q 'lolcats: error: " DIR "/cut.gguf: tensor .* runs past the end'", bin);
    CHECK(tiny_sh(cmd) == 0, "inspect of a truncated GGUF names the file and the tensor");
    snprintf(cmd, sizeof cmd, "%s eval -m " DIR "/cut.gguf --data " DIR "/tiny.bin 2>&1 | grep -q 'cut.gguf: tensor'", bin);
    CHECK(tiny_sh(cmd) == 0, "eval of a truncated GGUF names the file and the tensor");
}

/* GGUF -> Hugging Face directory: the tiny Q8_0 model's logits survive (the
   directory holds the dequantized weights), and stage 1 runs from a Q8_0 teacher. */
static void test_to_hf(void) {
    char cmd[1024];
    float *a, *b;
    int V = 0, V2 = 0;
    size_t i;
    double d = 0, mx = 0;
    snprintf(cmd, sizeof cmd, "%s convert " DIR "/tiny_q8_0.gguf --out " DIR "/tiny_hf --force >/dev/null", bin);
    if (!CHECK(tiny_sh(cmd) == 0, "%s", cmd)) return;
    a = logits_of(DIR "/tiny_q8_0.gguf", &V);
    b = logits_of(DIR "/tiny_hf", &V2);
    if (a && b && CHECK(V == V2, "vocab")) {
        for (i = 0; i < 24 * (size_t)V; i++) {
            if (fabs((double)a[i]) > mx) mx = fabs((double)a[i]);
            if (fabs((double)(a[i] - b[i])) > d) d = fabs((double)(a[i] - b[i]));
        }
        printf("  GGUF q8_0 -> Hugging Face dir: max |dlogit| / max |logit| = %.2e\n", d / mx);
        CHECK(d <= 1e-5 * mx, "GGUF -> HF logits off by %.3e of %.3e", d, mx);
    }
    free(a);
    free(b);
    snprintf(cmd, sizeof cmd, "grep -q '\"architectures\": \\[\"LlamaForCausalLM\"\\]' " DIR "/tiny_hf/config.json");
    CHECK(tiny_sh(cmd) == 0, "config.json names LlamaForCausalLM");
    snprintf(cmd, sizeof cmd, "%s distill --model " DIR "/tiny_q8_0.gguf --data random --out " DIR "/s1q8.safetensors "
             "--force --seq-len 32 --tokens 256 --grad-accum 2 --val-seqs 2 --window 8 --feature-dim 8 >/dev/null 2>&1", bin);
    CHECK(tiny_sh(cmd) == 0, "stage 1 (distill) from a Q8_0 GGUF teacher runs");
}

/* A hand-built Qwen2 / Qwen3 GGUF (F32, dim 32, 2 heads of 16, 1 kv head,
   vocab 8, one layer) through `convert FILE.gguf --out DIR`: Hugging Face
   names (biases, q/k norms), rows as stored (no llama permutation), config. */
/* element j of the data area: a ramp plus a pattern, so rows differ in more than an offset */
/* a byte-level ("gpt2") GGUF tokenizer carrying the vocab / merges / added
   tokens of tests/data/qwen_tokenizer.json encodes every text of
   tests/data/qwen_tok_ref.json (and chat markers) as that tokenizer.json does;
   pre "gpt-2" (not Qwen's split) gives other ids somewhere */
static void gb_arr_hdr(gb_buf *b, const char *key, uint32_t et, uint64_t n) { gb_key(b, key, 9); gb_u32(b, et); gb_u64(b, n); }

static int write_bpe_gguf(const char *path, const lc__json *d, const char *pre) {
    const lc__json_node *r = lc__json_root(d), *model = lc__json_get(d, r, "model"), *vocab = lc__json_get(d, model, "vocab"),
                        *merges = lc__json_get(d, model, "merges"), *added = lc__json_get(d, r, "added_tokens"), *c;
    const char *tok[1024];
    size_t tlen[1024];
    int typ[1024], V = 0, i, ok;
    gb_buf b = {0, 0, 0};
    FILE *f;
    memset(tok, 0, sizeof tok);
    for (c = lc__json_first(d, vocab); c; c = lc__json_next(d, vocab, c)) {
        i = (int)c->i64; tok[i] = c->key; tlen[i] = c->key_len; typ[i] = 1; if (i >= V) V = i + 1;
    }
    for (c = lc__json_first(d, added); c; c = lc__json_next(d, added, c)) {
        const lc__json_node *ct = lc__json_get(d, c, "content");
        i = (int)lc__json_get(d, c, "id")->i64; tok[i] = ct->str; tlen[i] = ct->len; typ[i] = 3; if (i >= V) V = i + 1;
    }
    for (i = 0; i < V; i++) if (!tok[i]) return 0;
    gb_header(&b, 3, 0, 6);
    gb_kv_str(&b, "tokenizer.ggml.model", "gpt2");
    gb_kv_str(&b, "tokenizer.ggml.pre", pre);
    gb_kv_u32(&b, "tokenizer.ggml.eos_token_id", 456);
    gb_arr_hdr(&b, "tokenizer.ggml.tokens", 8, (uint64_t)V);
    for (i = 0; i < V; i++) { gb_u64(&b, tlen[i]); gb_bytes(&b, tok[i], tlen[i]); }
    gb_arr_hdr(&b, "tokenizer.ggml.token_type", 5, (uint64_t)V);
    for (i = 0; i < V; i++) gb_u32(&b, (uint32_t)typ[i]);
    gb_arr_hdr(&b, "tokenizer.ggml.merges", 8, (uint64_t)merges->count);
    for (c = lc__json_first(d, merges); c; c = lc__json_next(d, merges, c)) { gb_u64(&b, c->len); gb_bytes(&b, c->str, c->len); }
    f = fopen(path, "wb");
    ok = f && fwrite(b.p, 1, b.n, f) == b.n;
    if (f) ok = (fclose(f) == 0) && ok;
    free(b.p);
    return ok;
}

static void test_bpe_tokenizer(void) {
    static const char *tj = "tests/data/qwen_tokenizer.json", *rj = "tests/data/qwen_tok_ref.json";
    static const char *extra[] = {"<|im_start|>user\nHello, world!<|im_end|>\n<|im_start|>assistant\n",
                                  "<|endoftext|>  tabs\tand\r\nnewlines\n\n  don't 123 4567"};
    lc_tokenizer th, tg;
    lc_error err;
    lc__json dt, dr;
    char *text = NULL, *text2 = NULL;
    size_t n;
    int pass, n_cases = 0, n_ok = 0, differs = 0;
    memset(&err, 0, sizeof err);
    if (!CHECK(lc__read_all(tj, &text, &n, &err) == LOLCATS_OK && lc__json_parse(&dt, text, n, tj, &err) == LOLCATS_OK,
               "%s: %s", tj, err.msg)) { free(text); return; }
    if (!CHECK(lc__read_all(rj, &text2, &n, &err) == LOLCATS_OK && lc__json_parse(&dr, text2, n, rj, &err) == LOLCATS_OK,
               "%s: %s", rj, err.msg)) { free(text2); lc__json_free(&dt); free(text); return; }
    for (pass = 0; pass < 2; pass++) {
        const char *path = pass ? DIR "/qwen_tok_gpt2pre.gguf" : DIR "/qwen_tok.gguf";
        const lc__json_node *cs = lc__json_get(&dr, lc__json_root(&dr), "cases"), *c;
        int k;
        if (!CHECK(write_bpe_gguf(path, &dt, pass ? "gpt-2" : "qwen2"), "write %s", path)) break;
        if (!CHECK(lc_tokenizer_load_hf(&th, tj, &err) == LOLCATS_OK, "%s: %s", tj, err.msg)) break;
        if (!CHECK(lc_tokenizer_load_gguf(&tg, path, &err) == LOLCATS_OK, "%s: %s", path, err.msg)) { lc_tokenizer_free(&th); break; }
        if (!pass)
            CHECK(tg.kind == LOLCATS_TOK_BYTELEVEL && ((lc__tok_priv *)tg.priv)->qwen_split && tg.vocab_size == th.vocab_size &&
                  tg.eos_id == 456 && tg.bos_id < 0 && !tg.add_bos && tg.n_special == 3 &&
                  lc_tokenizer_find(&tg, "<|im_start|>", 12) == 457,
                  "GGUF gpt2 tokenizer: byte-level, Qwen split, vocab %d, eos %d, %d specials", tg.vocab_size, tg.eos_id,
                  tg.n_special);
        for (c = cs ? lc__json_first(&dr, cs) : NULL, k = 0; c || k < 2; k += !c, c = c ? lc__json_next(&dr, cs, c) : NULL) {
            const lc__json_node *tx = c ? lc__json_get(&dr, c, "text") : NULL;
            const char *s = tx ? tx->str : extra[k];
            size_t len = tx ? tx->len : strlen(extra[k]), gh = 0, gg = 0, q;
            int oh[512], og[512], same;
            if (lc_tokenizer_encode(&th, s, len, 0, 0, oh, 512, &gh, &err) ||
                lc_tokenizer_encode(&tg, s, len, 0, 0, og, 512, &gg, &err)) { CHECK(0, "encode: %s", err.msg); continue; }
            same = gh == gg;
            for (q = 0; same && q < gh; q++) same = oh[q] == og[q];
            if (pass) { differs |= !same; continue; }
            n_cases++;
            n_ok += same;
            if (!same) printf("  GGUF tokenizer differs on \"%s\"\n", s);
        }
        lc_tokenizer_free(&th);
        lc_tokenizer_free(&tg);
    }
    printf("  GGUF gpt2 tokenizer (qwen2 pre): %d of %d texts encode as tokenizer.json\n", n_ok, n_cases);
    CHECK(n_cases > 2 && n_ok == n_cases, "GGUF byte-level tokenizer: %d of %d texts as tokenizer.json", n_ok, n_cases);
    CHECK(differs, "pre \"gpt-2\" (GPT-2 rule) gives other ids on some text");
    {   /* an unknown pre-tokenizer is refused by name */
        int rc = write_bpe_gguf(DIR "/qwen_tok_bad.gguf", &dt, "deepseek-llm");
        CHECK(rc && lc_tokenizer_load_gguf(&tg, DIR "/qwen_tok_bad.gguf", &err) == LOLCATS_ERR_UNSUPPORTED &&
              strstr(err.msg, "deepseek-llm"), "unknown pre refused: %s", err.msg);
    }
    {   /* Llama 3's "llama-bpe": Qwen's split with digit runs of up to 3 */
        int rc = write_bpe_gguf(DIR "/llama3_tok.gguf", &dt, "llama-bpe");
        int ok = rc && lc_tokenizer_load_gguf(&tg, DIR "/llama3_tok.gguf", &err) == LOLCATS_OK;
        CHECK(ok && ((const lc__tok_priv *)tg.priv)->qwen_split == 3, "pre \"llama-bpe\" selects Llama 3's split: %s",
              ok ? "" : err.msg);
        if (ok) lc_tokenizer_free(&tg);
    }
    CHECK(lc__tok_pt_next_qwen("12345 x", 7, 3) == 3 && lc__tok_pt_next_qwen("45 x", 4, 3) == 2 &&
          lc__tok_pt_next_qwen("12345 x", 7, 1) == 1 && lc__tok_pt_next_qwen("ab12", 4, 3) == 2,
          "digit runs: groups of up to 3 (Llama 3), single digits (Qwen)");
    lc__json_free(&dr);
    lc__json_free(&dt);
    free(text);
    free(text2);
}

static float qwen_val(int j) { return 0.0001f * (float)j + 0.05f * (float)((j * 7919) % 13 - 6); }

static void test_qwen(const char *arch) {
    static const char *const base[] = {"token_embd.weight", "output_norm.weight", "output.weight",
                                       "blk.0.attn_norm.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight",
                                       "blk.0.attn_v.weight", "blk.0.attn_output.weight", "blk.0.ffn_norm.weight",
                                       "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight", "blk.0.ffn_down.weight"};
    static const uint64_t ne[][2] = {{32, 8}, {32, 1}, {32, 8}, {32, 1}, {32, 32}, {32, 16}, {32, 16}, {32, 32},
                                     {32, 1}, {32, 64}, {32, 64}, {64, 32}};
    const char *extra[3];
    uint64_t xne[3];
    int nx = 0, qw3 = !strcmp(arch, "qwen3"), nt, i, j, qoff = 0;
    gb_buf b = {0, 0, 0};
    uint64_t off = 0;
    char key[96], cmd[1024], path[256];
    lc_st_file *st = NULL;
    lc_error err;
    if (qw3) { extra[0] = "blk.0.attn_q_norm.weight"; extra[1] = "blk.0.attn_k_norm.weight"; xne[0] = xne[1] = 16; nx = 2; }
    else { extra[0] = "blk.0.attn_q.bias"; extra[1] = "blk.0.attn_k.bias"; extra[2] = "blk.0.attn_v.bias";
           xne[0] = 32; xne[1] = xne[2] = 16; nx = 3; }
    nt = 12 + nx;
    gb_header(&b, 3, (uint64_t)nt, 8);
    gb_kv_str(&b, "general.architecture", arch);
#define KVU(k, v) (snprintf(key, sizeof key, "%s." k, arch), gb_kv_u32(&b, key, v))
    KVU("embedding_length", 32); KVU("feed_forward_length", 64); KVU("block_count", 1);
    KVU("attention.head_count", 2); KVU("attention.head_count_kv", 1); KVU("attention.key_length", 16);
#undef KVU
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    gb_kv_f32(&b, key, 1e-6f);
    for (i = 0; i < nt; i++) {
        uint64_t e[2];
        int nd = 2;
        if (i == 4) qoff = (int)(off / 4);
        if (i < 12) { e[0] = ne[i][0]; e[1] = ne[i][1]; if (e[1] == 1) nd = 1; }
        else { e[0] = xne[i - 12]; nd = 1; }
        gb_tinfo(&b, i < 12 ? base[i] : extra[i - 12], nd, e, 0, off);
        off += 4 * e[0] * (nd == 2 ? e[1] : 1);
        off = (off + 31) / 32 * 32;
    }
    gb_align(&b, 32);
    for (j = 0; j < (int)(off / 4); j++) gb_f32(&b, qwen_val(j));
    snprintf(path, sizeof path, DIR "/tiny_%s.gguf", arch);
    {
        FILE *f = fopen(path, "wb");
        if (!CHECK(f && fwrite(b.p, 1, b.n, f) == b.n, "write %s", path)) { if (f) fclose(f); free(b.p); return; }
        fclose(f);
    }
    free(b.p);
    snprintf(cmd, sizeof cmd, "%s convert %s --out " DIR "/%s_hf --force >/dev/null", bin, path, arch);
    if (!CHECK(tiny_sh(cmd) == 0, "%s", cmd)) return;
    snprintf(path, sizeof path, DIR "/%s_hf/model.safetensors", arch);
    memset(&err, 0, sizeof err);
    if (!CHECK(lc_st_open(&st, path, &err) == LOLCATS_OK, "%s: %s", path, err.msg)) return;
    CHECK(lc_st_count(st) == nt, "%s: %d tensors", arch, nt);
    if (qw3) CHECK(lc_st_find(st, "model.layers.0.self_attn.q_norm.weight") && lc_st_find(st, "model.layers.0.self_attn.k_norm.weight"),
                   "qwen3: q_norm / k_norm");
    else CHECK(lc_st_find(st, "model.layers.0.self_attn.q_proj.bias") && lc_st_find(st, "model.layers.0.self_attn.v_proj.bias"),
               "qwen2: q/k/v biases");
    {   /* q_proj rows as stored: element (1, 0) is the stored row 1 (no llama permutation) */
        const lc_tensor *q = lc_st_find(st, "model.layers.0.self_attn.q_proj.weight");
        const lc_tensor *e = lc_st_find(st, "model.embed_tokens.weight");
        const float *qv = q ? lc_tensor_f32(q) : NULL, *ev = e ? lc_tensor_f32(e) : NULL;
        CHECK(qv && ev && q->shape[0] == 32 && q->shape[1] == 32 && qv[32] == qwen_val(qoff + 32) && qv[33] == qwen_val(qoff + 33),
              "%s: q_proj (32, 32), rows in stored order", arch);
        CHECK(ev && lc_st_find(st, "lm_head.weight") && lc_st_find(st, "model.layers.0.mlp.down_proj.weight"), "%s: names", arch);
    }
    lc_st_close(st);
    snprintf(cmd, sizeof cmd, "grep -q '%s' " DIR "/%s_hf/config.json && grep -q '\"head_dim\": 16' " DIR "/%s_hf/config.json",
             qw3 ? "Qwen3ForCausalLM" : "Qwen2ForCausalLM", arch, arch);
    CHECK(tiny_sh(cmd) == 0, "%s config.json", arch);
    {   /* the GGUF loaded directly gives the logits of the HF directory convert wrote from it */
        float *lg, *lh;
        int Vg = 0, Vh = 0;
        double mx = 0.0, dmax = 0.0;
        snprintf(path, sizeof path, DIR "/tiny_%s.gguf", arch);
        lg = logits_of(path, &Vg);
        snprintf(path, sizeof path, DIR "/%s_hf", arch);
        lh = logits_of(path, &Vh);
        if (lg && lh && CHECK(Vg == 8 && Vh == 8, "%s: vocab %d / %d", arch, Vg, Vh)) {
            for (i = 0; i < 24 * 8; i++) {
                if (fabs((double)lh[i]) > mx) mx = fabs((double)lh[i]);
                if (fabs((double)lg[i] - (double)lh[i]) > dmax) dmax = fabs((double)lg[i] - (double)lh[i]);
            }
            printf("  tiny %s GGUF loaded directly vs its HF directory: max |dlogit| %.3g (max |logit| %.3g)\n", arch,
                   dmax, mx);
            CHECK(mx > 0.0 && dmax <= 1e-6 * mx,
                  "%s: GGUF logits vs HF directory: max |d| %.3g (max |logit| %.3g)", arch, dmax, mx);
        }
        free(lg);
        free(lh);
    }
}

static double nll_of(const char *model, const char *tok, const char *data, int ctx) {
    char cmd[1024], line[2048];
    FILE *p;
    double nll = (double)NAN;
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=2 %s eval -m %s %s%s --data %s --ctx %d --json", bin, model,
             tok ? "--tokenizer " : "", tok ? tok : "", data, ctx);
    if (!(p = popen(cmd, "r"))) return (double)NAN;
    while (fgets(line, sizeof line, p))
        if (!strncmp(line, "{\"nll\": ", 8)) nll = atof(line + 8);
    pclose(p);
    return nll;
}

/* The tokenizer inside the file: a llama2.c tokenizer.bin written with
   --tokenizer and read back (tokenizer.ggml.*) scores the text as the
   original model with its tokenizer.bin does; without one, eval says so. */
static void test_tokenizer(void) {
    char cmd[1024];
    double a, b;
    int k;
    static const char *const models[2][3] = {
        {DIR "/tiny.bin", DIR "/tiny_tok.bin", DIR "/text.txt"},
        {"../shared/models/stories260K/stories260K.bin", "../shared/models/stories260K/tok512.bin", DIR "/ts.txt"}};
    if (!CHECK(tiny_write_tokenizer(DIR "/tiny_tok.bin") && tiny_write_text(DIR "/text.txt"), "tiny tokenizer and text")) return;
    for (k = 0; k < 2; k++) {
        if (k == 1) {
            if (access(models[1][0], F_OK) != 0) { printf("SKIPPED: stories260K GGUF tokenizer (../shared absent)\n"); break; }
            if (!CHECK(tiny_sh("head -c 20000 ../shared/data/tinystories.valid-head.txt > " DIR "/ts.txt") == 0, "text")) break;
        }
        snprintf(cmd, sizeof cmd, "%s convert --to-gguf " DIR "/tok%d.gguf --model %s --tokenizer %s --type q8_0 --force "
                 ">/dev/null", bin, k, models[k][0], models[k][1]);
        if (!CHECK(tiny_sh(cmd) == 0, "%s", cmd)) continue;
        snprintf(cmd, sizeof cmd, DIR "/tok%d.gguf", k);
        a = nll_of(cmd, NULL, models[k][2], k ? 256 : 64);
        b = nll_of(models[k][0], models[k][1], models[k][2], k ? 256 : 64);
        printf("  %s: NLL %.6f with the GGUF's own tokenizer (Q8_0), %.6f original\n", models[k][0], a, b);
        CHECK(isfinite(a) && fabs(a - b) < 0.05 * b, "GGUF tokenizer NLL %.6f vs %.6f", a, b);
        snprintf(cmd, sizeof cmd, "%s eval -m " DIR "/tok%d.gguf --data %s --ctx 64 | grep -q ' over [0-9]* tokens'", bin, k,
                 models[k][2]);
        CHECK(tiny_sh(cmd) == 0, "eval with the GGUF's tokenizer");
    }
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s eval -m " DIR "/tiny_f32.gguf --data " DIR "/text.txt 2>&1 | grep -q 'no tokenizer in the file'", bin);
    CHECK(tiny_sh(cmd) == 0, "a GGUF without a tokenizer: eval asks for --tokenizer");
    /* the same token count as the original: equal NLL at F32 */
    snprintf(cmd, sizeof cmd, "%s convert --to-gguf " DIR "/tokf.gguf --model " DIR "/tiny.bin --tokenizer " DIR "/tiny_tok.bin "
             "--force >/dev/null", bin);
    if (CHECK(tiny_sh(cmd) == 0, "%s", cmd)) {
        a = nll_of(DIR "/tokf.gguf", NULL, DIR "/text.txt", 64);
        b = nll_of(DIR "/tiny.bin", DIR "/tiny_tok.bin", DIR "/text.txt", 64);
        CHECK(fabs(a - b) <= 1e-5 * b, "F32 GGUF with its tokenizer: NLL %.6f vs %.6f", a, b);
    }
}

static void test_alpaca(void) {
    const char *M = "../shared/models/alpaca-llama-25m";
    static const char *types[] = {"f32", "f16", "q8_0", "q4_k"};
    char cmd[1024], path[256];
    double base, nll;
    int k;
    if (access(M, F_OK) != 0 || access("../shared/data/wikitext-2-raw.test-head.txt", F_OK) != 0) {
        printf("SKIPPED: alpaca-llama-25m GGUF NLL (../shared absent)\n");
        return;
    }
    CHECK(tiny_sh("head -c 8000 ../shared/data/wikitext-2-raw.test-head.txt > " DIR "/wt.txt") == 0, "text");
    base = nll_of(M, "../shared/models/alpaca-llama-25m/tokenizer.json", DIR "/wt.txt", 512);
    CHECK(isfinite(base), "safetensors NLL");
    for (k = 0; k < 4; k++) {
        snprintf(path, sizeof path, DIR "/alpaca_%s.gguf", types[k]);
        snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s convert --to-gguf %s --model %s --type %s --force >/dev/null",
                 bin, path, M, types[k]);
        if (!CHECK(tiny_sh(cmd) == 0, "%s", cmd)) continue;
        nll = nll_of(path, "../shared/models/alpaca-llama-25m/tokenizer.json", DIR "/wt.txt", 512);
        printf("  alpaca-llama-25m NLL: safetensors %.6f, GGUF %-5s %.6f (%+.6f nats, %.1e relative)\n", base,
               types[k], nll, nll - base, fabs(nll - base) / base);
        if (k < 2) CHECK(fabs(nll - base) <= 1e-5 * base, "%s NLL %.6f vs %.6f", types[k], nll, base);
        else CHECK(fabs(nll - base) <= (k == 2 ? 0.005 : 0.05), "%s NLL %.6f vs %.6f", types[k], nll, base);
        remove(path);
    }
}

int main(void) {
    bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    if (tiny_sh("mkdir -p " DIR) != 0) { printf("cannot create " DIR "\n"); return 1; }
    test_tiny();
    test_to_hf();
    test_qwen("qwen2");
    test_qwen("qwen3");
    test_bpe_tokenizer();
    test_tokenizer();
    test_alpaca();
    return check_done();
}
