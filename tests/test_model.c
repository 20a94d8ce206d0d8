/* test_model.c - llama2.c checkpoints and tokenizers, the float32 forward,
   the matmul paths, sampling. Uses ../shared/models when present. */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#define SHARED "../shared/models/"

static lc_ctx g_ctx;          /* best SIMD path of this CPU (lc_ctx_init in main) */
static const lc_ctx g_ref = {LOLCATS_SIMD_SCALAR, LOLCATS_COMPUTE_F32};

static int file_exists(const char *p) {
    FILE *f = fopen(p, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* llama2.c test_all.py: `run stories260K.bin -z tok512.bin -t 0.0 -n 200`. */
static const char *stories_expected =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
    "park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n"
    "Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. "
    "She said, \"I want to play with your ball, but I can't find it.\"\nLily was sad and "
    "didn't know what to do. She said, \"I'm sorry, Lily. I didn't know what to do.\"\nLily "
    "didn't want to help her mom, so she";

/* Greedy from BOS exactly as llama2.c's run loop: positions 0..steps-1. */
static void greedy_text(const lc_model *m, const lc_tokenizer *t, int steps, char *out,
                        size_t cap, int *ids) {
    lc_run r;
    lc_error e;
    int tok = 1, pos;
    size_t n = 0;
    out[0] = 0;
    if (lc_run_init(&r, m, steps, 1, &e)) { CHECK(0, "run init: %s", e.msg); return; }
    for (pos = 0; pos < steps; pos++) {
        int nx;
        char buf[256];
        size_t k;
        if (lc_model_forward(&g_ctx, m, &r, &tok, 1, NULL, &e)) { CHECK(0, "forward: %s", e.msg); break; }
        nx = lc_argmax(r.logits, m->cfg.vocab_size);
        if (ids) ids[pos] = nx;
        if (nx == 1) break;
        k = lc_tokenizer_decode(t, tok, nx, buf, sizeof buf);
        if (n + k + 1 < cap) { memcpy(out + n, buf, k); n += k; out[n] = 0; }
        tok = nx;
    }
    lc_run_free(&r);
}

static void test_stories260k(void) {
    lc_model m;
    lc_tokenizer t;
    lc_error e;
    static char text[8192], text2[8192];
    lc_run r1, r2;
    static float all[16 * 512];
    int prompt[16], i;
    const char *mp = SHARED "stories260K/stories260K.bin", *tp = SHARED "stories260K/tok512.bin";
    if (!file_exists(mp) || !file_exists(tp)) {
        printf("SKIPPED: %s not found (stories260K tests)\n", mp);
        return;
    }
    if (!CHECK(lc_model_load(&m, mp, &e) == LOLCATS_OK, "load: %s", e.msg)) return;
    if (!CHECK(lc_tokenizer_load_llama2c(&t, tp, m.cfg.vocab_size, &e) == LOLCATS_OK, "tok: %s",
               e.msg)) return;
    CHECK(m.cfg.dim == 64 && m.cfg.n_layers == 5 && m.cfg.n_heads == 8 && m.cfg.n_kv_heads == 4 &&
              m.cfg.hidden_dim == 172 && m.cfg.vocab_size == 512 && m.cfg.seq_len == 512 &&
              m.cfg.tied && m.cfg.rope_interleaved,
          "stories260K config");
    CHECK(lc_model_param_count(&m) == 260032, "param count %lld",
          (long long)lc_model_param_count(&m));
    /* the published 200-step sample, then 256 steps agree with it as far as it goes */
    greedy_text(&m, &t, 200, text, sizeof text, NULL);
    CHECK(strcmp(text, stories_expected) == 0, "stories260K 200 greedy steps differ:\n%s", text);
    greedy_text(&m, &t, 256, text2, sizeof text2, NULL);
    CHECK(strncmp(text2, stories_expected, strlen(stories_expected)) == 0 &&
              strlen(text2) > strlen(stories_expected),
          "stories260K 256 greedy steps do not extend the published sample");
    printf("  stories260K greedy: %zu bytes, published sample reproduced\n", strlen(text2));
    /* prefill (matrix-matrix) == token-by-token decode */
    for (i = 0; i < 16; i++) prompt[i] = (i * 37 + 1) % 512;
    lc_run_init(&r1, &m, 64, 16, &e);
    lc_run_init(&r2, &m, 64, 1, &e);
    lc_model_forward(&g_ctx, &m, &r1, prompt, 16, all, &e);
    for (i = 0; i < 16; i++) lc_model_forward(&g_ctx, &m, &r2, &prompt[i], 1, NULL, &e);
    check_close("prefill(16) vs decode, last logits", r1.logits, r2.logits, 512, 1e-5, 1e-5);
    check_close("prefill logits_all last row", all + 15 * 512, r1.logits, 512, 0, 0);
    /* both matmul paths */
    lc_run_reset(&r2);
    for (i = 0; i < 16; i++) lc_model_forward(&g_ref, &m, &r2, &prompt[i], 1, NULL, &e);
    check_close("scalar path vs default path, logits", r2.logits, r1.logits, 512, 1e-4, 1e-4);
    /* errors: past the context, bad token */
    CHECK(lc_model_forward(&g_ctx, &m, &r2, prompt, 2, NULL, &e) == LOLCATS_ERR_ARG, "n > max_tokens");
    prompt[0] = 512;
    CHECK(lc_model_forward(&g_ctx, &m, &r1, prompt, 1, NULL, &e) == LOLCATS_ERR_ARG &&
              strstr(e.msg, "512"), "token outside vocab: %s", e.msg);
    lc_run_free(&r1);
    lc_run_free(&r2);
    lc_tokenizer_free(&t);
    lc_model_free(&m);
}

/* Truncated, padded and garbage copies of the checkpoint fail cleanly. */
static void test_corrupt_bin(void) {
    const char *mp = SHARED "stories260K/stories260K.bin";
    const char *tmp = "build/tests/corrupt.bin";
    FILE *f = fopen(mp, "rb"), *o;
    static unsigned char buf[1100000];
    size_t n;
    lc_model m;
    lc_tokenizer t;
    lc_error e;
    int32_t bad = -7;
    if (!f) { printf("SKIPPED: %s not found (corrupt-file tests)\n", mp); return; }
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    o = fopen(tmp, "wb"); fwrite(buf, 1, n - 4, o); fclose(o);
    CHECK(lc_model_load_llama2c(&m, tmp, &e) == LOLCATS_ERR_FORMAT && strstr(e.msg, "implies"),
          "truncated .bin: %s", e.msg);
    o = fopen(tmp, "wb"); fwrite(buf, 1, n, o); fwrite(buf, 1, 8, o); fclose(o);
    CHECK(lc_model_load_llama2c(&m, tmp, &e) == LOLCATS_ERR_FORMAT, "padded .bin: %s", e.msg);
    memcpy(buf + 12, &bad, 4);
    o = fopen(tmp, "wb"); fwrite(buf, 1, n, o); fclose(o);
    CHECK(lc_model_load_llama2c(&m, tmp, &e) == LOLCATS_ERR_FORMAT && strstr(e.msg, "heads"),
          "negative heads: %s", e.msg);
    o = fopen(tmp, "wb"); fwrite(buf, 1, 10, o); fclose(o);
    CHECK(lc_model_load_llama2c(&m, tmp, &e) == LOLCATS_ERR_FORMAT, "10-byte file: %s", e.msg);
    CHECK(lc_model_load_llama2c(&m, "build/tests/does-not-exist.bin", &e) == LOLCATS_ERR_IO,
          "missing file: %s", e.msg);
    CHECK(lc_tokenizer_load_llama2c(&t, tmp, 512, &e) == LOLCATS_ERR_FORMAT,
          "garbage tokenizer: %s", e.msg);
    remove(tmp);
}

static void check_ids(const lc_tokenizer *t, const char *text, const int *want, size_t nw,
                      const char *what) {
    int ids[256];
    size_t n = 0, i;
    lc_error e;
    int ok = lc_tokenizer_encode(t, text, strlen(text), 1, 0, ids, 256, &n, &e) == LOLCATS_OK &&
             n == nw;
    for (i = 0; ok && i < n; i++) ok = ids[i] == want[i];
    if (!CHECK(ok, "%s: encoding of \"%.40s\" differs (%zu ids, want %zu)", what, text, n, nw)) {
        for (i = 0; i < n; i++) printf(" %d", ids[i]);
        printf("\n");
    }
}

/* Decode(encode(text)) == text. */
static void check_roundtrip(const lc_tokenizer *t, const char *text, const char *what) {
    int ids[1024];
    char out[4096], buf[256];
    size_t n = 0, i, k, o = 0;
    lc_error e;
    lc_tokenizer_encode(t, text, strlen(text), 1, 0, ids, 1024, &n, &e);
    for (i = 1; i < n; i++) {
        k = lc_tokenizer_decode(t, ids[i - 1], ids[i], buf, sizeof buf);
        memcpy(out + o, buf, k);
        o += k;
    }
    out[o] = 0;
    CHECK(strcmp(out, text) == 0, "%s: round trip of \"%s\" gave \"%s\"", what, text, out);
}

/* Published expectations of llama2.c's test.c (Meta's Llama 2 examples). */
static const char *llama_p1 = "I believe the meaning of life is";
static const int llama_e1[] = {1, 306, 4658, 278, 6593, 310, 2834, 338};
static const char *llama_p2 = "Simply put, the theory of relativity states that ";
static const int llama_e2[] = {1, 3439, 17632, 1925, 29892, 278, 6368, 310, 14215, 537, 5922, 393, 29871};
static const char *llama_p3 =
    "A brief message congratulating the team on the launch:\n\n        Hi everyone,\n\n        I just ";
static const int llama_e3[] = {1, 319, 11473, 2643, 378, 629, 271, 18099, 278, 3815, 373, 278,
                               6826, 29901, 13, 13, 4706, 6324, 14332, 29892, 13, 13, 4706,
                               306, 925, 29871};
static const char *llama_p4 =
    "Translate English to French:\n\n        sea otter => loutre de mer\n        peppermint => "
    "menthe poivr\xc3\xa9" "e\n        plush girafe => girafe peluche\n        cheese =>";
static const int llama_e4[] = {1, 4103, 9632, 4223, 304, 5176, 29901, 13, 13, 4706, 7205, 4932,
                               357, 1149, 301, 449, 276, 316, 2778, 13, 4706, 1236, 407, 837,
                               524, 1149, 6042, 354, 772, 440, 29878, 1318, 13, 4706, 715,
                               1878, 330, 3055, 1725, 1149, 330, 3055, 1725, 4639, 28754, 13,
                               4706, 923, 968, 1149};

static void check_llama_tok(const lc_tokenizer *t, const char *what) {
    int one = 1;
    check_ids(t, "", &one, 1, what);
    check_ids(t, llama_p1, llama_e1, sizeof llama_e1 / sizeof(int), what);
    check_ids(t, llama_p2, llama_e2, sizeof llama_e2 / sizeof(int), what);
    check_ids(t, llama_p3, llama_e3, sizeof llama_e3 / sizeof(int), what);
    check_ids(t, llama_p4, llama_e4, sizeof llama_e4 / sizeof(int), what);
    check_roundtrip(t, llama_p3, what);
    check_roundtrip(t, llama_p4, what);
    check_roundtrip(t, "Emoji \xf0\x9f\x98\xba and CJK \xe7\x8c\xab, tabs\tand  two spaces.", what);
}

static void test_tokenizers(void) {
    lc_tokenizer t;
    lc_error e;
    const char *tp = SHARED "llama2-tokenizer/tokenizer.bin";
    if (!file_exists(tp)) { printf("SKIPPED: %s not found (Llama 2 tokenizer tests)\n", tp); return; }
    if (!CHECK(lc_tokenizer_load_llama2c(&t, tp, 32000, &e) == LOLCATS_OK, "%s", e.msg)) return;
    check_llama_tok(&t, "llama2c tokenizer.bin");
    lc_tokenizer_free(&t);
    tp = SHARED "stories260K/tok512.bin";
    if (file_exists(tp) && lc_tokenizer_load_llama2c(&t, tp, 512, &e) == LOLCATS_OK) {
        check_roundtrip(&t, "Once upon a time, Lily said \"hi\" to a caf\xc3\xa9.", "tok512");
        lc_tokenizer_free(&t);
    }
}

/* GPT-2 bytes_to_unicode: printable bytes map to themselves, the rest to
   U+0100 + n in byte order. */
static int gpt2_cp(int b) {
    int n = 0, i;
#define PRINTABLE(x) (((x) >= 33 && (x) <= 126) || ((x) >= 161 && (x) <= 172) || ((x) >= 174 && (x) <= 255))
    if (PRINTABLE(b)) return b;
    for (i = 0; i < b; i++) if (!PRINTABLE(i)) n++;
#undef PRINTABLE
    return 256 + n;
}

/* A byte-level BPE tokenizer.json written here: ids 0..255 are the bytes
   (as GPT-2 unicode symbols), 7 merges, BOS/EOS added tokens, a
   TemplateProcessing post-processor that prepends BOS. */
static void test_bytelevel(void) {
    static const char *merges[] = {"\\u0120 t", "h e", "\\u0120t he", "i n", "\\u0120 a", "l l",
                                   "\\u0120 w"};
    static const char *merged[] = {"\\u0120t", "he", "\\u0120the", "in", "\\u0120a", "ll",
                                   "\\u0120w"};
    const char *path = "build/tests/bytelevel_tokenizer.json";
    static char js[16384];
    size_t o = 0;
    int b, i;
    FILE *f;
    lc_tokenizer t;
    lc_error e;
    o += (size_t)sprintf(js + o, "{\"version\": \"1.0\", \"added_tokens\": ["
                         "{\"id\": 263, \"content\": \"<|begin_of_text|>\", \"special\": true},"
                         "{\"id\": 264, \"content\": \"<|end_of_text|>\", \"special\": true}],\n"
                         "\"normalizer\": null,\n"
                         "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
                         "\"trim_offsets\": true, \"use_regex\": true},\n"
                         "\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": ["
                         "{\"SpecialToken\": {\"id\": \"<|begin_of_text|>\", \"type_id\": 0}},"
                         "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}]},\n"
                         "\"decoder\": {\"type\": \"ByteLevel\"},\n"
                         "\"model\": {\"type\": \"BPE\", \"byte_fallback\": false, \"vocab\": {");
    for (b = 0; b < 256; b++) o += (size_t)sprintf(js + o, "\"\\u%04x\": %d, ", gpt2_cp(b), b);
    for (i = 0; i < 7; i++) o += (size_t)sprintf(js + o, "\"%s\": %d%s", merged[i], 256 + i, i < 6 ? ", " : "");
    o += (size_t)sprintf(js + o, "},\n\"merges\": [");
    for (i = 0; i < 7; i++) o += (size_t)sprintf(js + o, "\"%s\"%s", merges[i], i < 6 ? ", " : "");
    sprintf(js + o, "]}}\n");
    f = fopen(path, "wb");
    if (!CHECK(f != NULL, "cannot write %s", path)) return;
    fputs(js, f);
    fclose(f);
    if (!CHECK(lc_tokenizer_load_hf(&t, path, &e) == LOLCATS_OK, "byte-level tokenizer.json: %s", e.msg))
        return;
    CHECK(t.kind == LOLCATS_TOK_BYTELEVEL && t.vocab_size == 265 && t.bos_id == 263 &&
              t.eos_id == 264 && t.add_bos && !t.add_prefix_space,
          "byte-level settings (kind %d, V %d, bos %d, eos %d)", t.kind, t.vocab_size, t.bos_id,
          t.eos_id);
    {   /* "the" -> t + he (Ġt needs the space); " theater" -> Ġ t, h e, Ġt he */
        int want[] = {263, 116, 257, 258, 97, 116, 101, 114};
        check_ids(&t, "the theater", want, 8, "byte-level merges in rank order");
    }
    {   /* GPT-2 pre-tokens: "a", " wall", " in", "\n"; "Ġ in" is no merge */
        int want[] = {263, 97, 262, 97, 261, 32, 259, 10};
        check_ids(&t, "a wall in\n", want, 8, "byte-level pre-tokenizer and merges");
    }
    {   /* bytes >= 0x80 are their own symbols; added tokens match verbatim */
        int want[] = {263, 99, 97, 102, 195, 169, 264};
        check_ids(&t, "caf\xc3\xa9<|end_of_text|>", want, 7, "byte-level UTF-8 bytes + special");
    }
    check_roundtrip(&t, "the theater", "byte-level");
    check_roundtrip(&t, "  Two spaces, tabs\tand\nnew lines; 'quotes' don't matter.", "byte-level");
    check_roundtrip(&t, "caf\xc3\xa9 \xe2\x82\xac 100 \xf0\x9f\x98\x80!", "byte-level");
    {
        char buf[64];
        CHECK(lc_tokenizer_decode(&t, -1, 258, buf, sizeof buf) == 4 && !strcmp(buf, " the"),
              "byte-level decode keeps the leading space (\"%s\")", buf);
        CHECK(lc_tokenizer_decode(&t, 116, 264, buf, sizeof buf) == 0, "EOS decodes to nothing");
    }
    lc_tokenizer_free(&t);
}

/* SIMD matmul against the reference for F32/BF16/F16 at odd sizes. */
static void test_matmul(void) {
    static const int Ts[] = {1, 2, 3, 7}, Os[] = {1, 5, 9, 33}, Is[] = {1, 7, 8, 63, 130};
    static float x[7 * 130], y0[7 * 33], y1[7 * 33], w32[33 * 130];
    static uint16_t w16[33 * 130], wb16[33 * 130];
    size_t i;
    int a, b, c;
    for (i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = (float)((i * 7919) % 97) / 97.0f - 0.5f;
    for (i = 0; i < 33 * 130; i++) {
        float v = (float)((i * 104729) % 89) / 89.0f - 0.5f;
        wb16[i] = lc_f32_to_bf16(v);
        w16[i] = lc_f32_to_f16(v);
        w32[i] = v;
    }
    if (g_ctx.simd == LOLCATS_SIMD_SCALAR) printf("  (no SIMD on this CPU: ref vs ref)\n");
    for (a = 0; a < 4; a++)
        for (b = 0; b < 4; b++)
            for (c = 0; c < 5; c++) {
                int T = Ts[a], O = Os[b], I = Is[c], bad = 0, dt;
                for (dt = 0; dt < 3; dt++) {
                    const void *w = dt == 0 ? (const void *)w32 : dt == 1 ? (const void *)w16 : (const void *)wb16;
                    lc_dtype d = dt == 0 ? LOLCATS_DTYPE_F32 : dt == 1 ? LOLCATS_DTYPE_F16 : LOLCATS_DTYPE_BF16;
                    lc_matmul(&g_ref, y0, x, w, d, T, O, I);
                    lc_matmul(&g_ctx, y1, x, w, d, T, O, I);
                    for (i = 0; i < (size_t)(T * O); i++)
                        if (fabsf(y0[i] - y1[i]) > 1e-5f * (1.0f + fabsf(y0[i]))) bad++;
                    /* the widened weights are exactly the converted ones */
                    if (dt > 0) {
                        float wi = lc_weight_get(&(lc_weight){w, d, O, I}, I - 1);
                        float ref = dt == 1 ? lc_f16_to_f32(w16[I - 1]) : lc_bf16_to_f32(wb16[I - 1]);
                        if (wi != ref) bad++;
                    }
                }
                CHECK(bad == 0, "matmul T=%d O=%d I=%d: %d mismatches", T, O, I, bad);
            }
}

static void test_sampler(void) {
    lc_sampler s;
    lc_error e;
    float logits[5] = {0.1f, 2.0f, -1.0f, 1.9f, 0.0f};
    int i, cnt[5] = {0, 0, 0, 0, 0}, first[20];
    lc_sampler_init(&s, 5, 0.0f, 0.9f, 1, &e);
    CHECK(lc_sampler_sample(&s, logits) == 1, "greedy picks the argmax");
    lc_sampler_free(&s);
    lc_sampler_init(&s, 5, 1.0f, 0.5f, 7, &e);
    for (i = 0; i < 2000; i++) cnt[lc_sampler_sample(&s, logits)]++;
    CHECK(cnt[0] == 0 && cnt[2] == 0 && cnt[4] == 0 && cnt[1] > 0 && cnt[3] > 0,
          "top-p 0.5 keeps only the two best tokens (%d %d %d %d %d)", cnt[0], cnt[1], cnt[2],
          cnt[3], cnt[4]);
    lc_sampler_free(&s);
    lc_sampler_init(&s, 5, 1.0f, 0.0f, 123, &e);
    for (i = 0; i < 20; i++) first[i] = lc_sampler_sample(&s, logits);
    lc_sampler_free(&s);
    lc_sampler_init(&s, 5, 1.0f, 0.0f, 123, &e);
    for (i = 0; i < 20; i++)
        if (lc_sampler_sample(&s, logits) != first[i]) break;
    CHECK(i == 20, "same seed, same samples");
    lc_sampler_free(&s);
    CHECK(lc_sampler_init(&s, 5, -1.0f, 0.0f, 1, &e) == LOLCATS_ERR_ARG, "negative temperature");
}

/* Scores ids with the model in chunks of `chunk` tokens: per-token NLL (n-1). */
static void score_ids(const lc_model *m, const int *ids, int n, int chunk, double *nll,
                      float *last_logits) {
    lc_run r;
    lc_error e;
    int V = m->cfg.vocab_size, s, t;
    float *lg = (float *)malloc(sizeof(float) * (size_t)chunk * V);
    if (lc_run_init(&r, m, n, chunk, &e)) { CHECK(0, "run: %s", e.msg); free(lg); return; }
    for (s = 0; s < n; s += chunk) {
        int k = n - s < chunk ? n - s : chunk;
        if (lc_model_forward(&g_ctx, m, &r, ids + s, k, lg, &e)) { CHECK(0, "fwd: %s", e.msg); break; }
        for (t = 0; t < k && s + t + 1 < n; t++) {
            const float *l = lg + (size_t)t * V;
            double mx = (double)l[0], z = 0;
            int j;
            for (j = 1; j < V; j++) if ((double)l[j] > mx) mx = (double)l[j];
            for (j = 0; j < V; j++) z += exp((double)l[j] - mx);
            nll[s + t] = mx + log(z) - (double)l[ids[s + t + 1]];
        }
    }
    memcpy(last_logits, r.logits, sizeof(float) * V);
    lc_run_free(&r);
    free(lg);
}

/* alpaca-llama-25m (bf16, sharded, GQA) against tools/gen_model_ref.py. */
static void test_alpaca25m(void) {
    const char *dir = SHARED "alpaca-llama-25m", *ref = "tests/data/alpaca25m_ref.safetensors";
    lc_model m;
    lc_tokenizer t;
    lc_error e;
    lc_st_file *rf;
    int k, count;
    char tp[512];
    if (!file_exists(SHARED "alpaca-llama-25m/config.json")) {
        printf("SKIPPED: %s not found (Hugging Face model tests)\n", dir);
        return;
    }
    if (!CHECK(lc_model_load(&m, dir, &e) == LOLCATS_OK, "load: %s", e.msg)) return;
    CHECK(m.format == LOLCATS_MODEL_HF && m.cfg.dim == 384 && m.cfg.n_layers == 8 &&
              m.cfg.n_heads == 6 && m.cfg.n_kv_heads == 2 && m.cfg.head_dim == 64 &&
              m.cfg.hidden_dim == 1024 && m.cfg.tied && !m.cfg.rope_interleaved &&
              m.tok_emb.dtype == LOLCATS_DTYPE_BF16 && m.cfg.bos_id == 1 && m.cfg.eos_id == 2,
          "alpaca-llama-25m config");
    CHECK(lc_model_param_count(&m) == 24877440, "param count %lld",
          (long long)lc_model_param_count(&m));
    snprintf(tp, sizeof tp, "%s/tokenizer.json", dir);
    if (!CHECK(lc_tokenizer_load_hf(&t, tp, &e) == LOLCATS_OK, "tokenizer.json: %s", e.msg)) {
        lc_model_free(&m);
        return;
    }
    CHECK(t.kind == LOLCATS_TOK_SPM && t.vocab_size == 32000 && t.bos_id == 1 && t.eos_id == 2 &&
              t.add_bos && t.add_prefix_space && t.byte_fallback, "tokenizer.json settings");
    check_llama_tok(&t, "tokenizer.json");
    {   /* specials written in the text are matched, each segment gets the prefix */
        int want[] = {1, 1, 15043, 2};   /* BOS, <s>, "\u2581Hello", </s> */
        check_ids(&t, "<s>Hello</s>", want, 4, "special tokens in text");
    }
    if (lc_st_open(&rf, ref, &e)) {
        CHECK(0, "%s: %s (run tools/gen_model_ref.py)", ref, e.msg);
        lc_tokenizer_free(&t);
        lc_model_free(&m);
        return;
    }
    count = atoi(lc_st_meta(rf, "count"));
    for (k = 0; k < count; k++) {
        char name[64], what[96];
        const char *prompt;
        const lc_tensor *tid, *tnll, *tlse, *tsub;
        int *ids, *mine, V = m.cfg.vocab_size, i, n;
        size_t nm = 0;
        double *nll, sum_ref = 0, sum = 0, lse = 0, mx;
        float *last, *sub, *refsub, *refnll;
        snprintf(name, sizeof name, "prompt_%d", k); prompt = lc_st_meta(rf, name);
        snprintf(name, sizeof name, "ids_%d", k); tid = lc_st_find(rf, name);
        snprintf(name, sizeof name, "nll_%d", k); tnll = lc_st_find(rf, name);
        snprintf(name, sizeof name, "lse_%d", k); tlse = lc_st_find(rf, name);
        snprintf(name, sizeof name, "logits_sub_%d", k); tsub = lc_st_find(rf, name);
        if (!CHECK(prompt && tid && tnll && tlse && tsub, "reference entry %d incomplete", k)) break;
        n = (int)tid->shape[0];
        ids = (int *)malloc(sizeof(int) * n);
        memcpy(ids, tid->data, sizeof(int) * n);
        mine = (int *)malloc(sizeof(int) * (strlen(prompt) + 3));
        lc_tokenizer_encode(&t, prompt, strlen(prompt), 1, 0, mine, strlen(prompt) + 3, &nm, &e);
        for (i = 0; i < n && (size_t)n == nm; i++) if (mine[i] != ids[i]) break;
        CHECK((size_t)n == nm && i == n, "prompt %d: token ids differ from the Python BPE "
              "(%zu vs %d ids, first difference at %d)", k, nm, n, i);
        nll = (double *)calloc((size_t)n, sizeof(double));
        last = (float *)malloc(sizeof(float) * V);
        sub = (float *)malloc(sizeof(float) * V);
        refsub = (float *)malloc(sizeof(float) * V);
        refnll = (float *)malloc(sizeof(float) * n);
        score_ids(&m, ids, n, 64, nll, last);
        lc_tensor_to_f32(tsub, refsub, &e);
        lc_tensor_to_f32(tnll, refnll, &e);
        for (i = 0; i < (V + 3) / 4; i++) sub[i] = last[4 * i];
        snprintf(what, sizeof what, "prompt %d last logits (every 4th)", k);
        check_close(what, sub, refsub, (size_t)(V + 3) / 4, 1e-3, 0);
        for (i = 0; i + 1 < n; i++) { sum += nll[i]; sum_ref += (double)refnll[i]; sub[i] = (float)nll[i]; }
        snprintf(what, sizeof what, "prompt %d per-token NLL (%d)", k, n - 1);
        check_close(what, sub, refnll, (size_t)n - 1, 1e-3, 0);
        mx = (double)last[lc_argmax(last, V)];
        for (i = 0; i < V; i++) lse += exp((double)last[i] - mx);
        lse = mx + log(lse);
        CHECK(fabs(lse - (double)((const float *)tlse->data)[0]) < 1e-3, "prompt %d lse %f vs %f", k,
              lse, (double)((const float *)tlse->data)[0]);
        printf("  prompt %d: mean NLL %.6f ref %.6f rel %.2e\n", k, sum / (n - 1),
               sum_ref / (n - 1), fabs(sum - sum_ref) / sum_ref);
        CHECK(fabs(sum - sum_ref) <= 1e-4 * sum_ref, "prompt %d mean NLL rel error", k);
        free(ids); free(mine); free(nll); free(last); free(sub); free(refsub); free(refnll);
    }
    lc_st_close(rf);
    lc_tokenizer_free(&t);
    lc_model_free(&m);
}

/* stories260K .bin -> Hugging Face directory (q/k permuted) -> same logits. */
static void test_convert(void) {
    const char *mp = SHARED "stories260K/stories260K.bin", *dir = "build/tests/stories260K_hf";
    lc_model a, b;
    lc_run ra, rb;
    lc_error e;
    int ids[40], i;
    if (!file_exists(mp)) { printf("SKIPPED: %s not found (convert test)\n", mp); return; }
    if (!CHECK(lc_model_load(&a, mp, &e) == LOLCATS_OK, "%s", e.msg)) return;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) { CHECK(0, "mkdir %s", dir); return; }
    if (!CHECK(lc_model_export_hf(&a, dir, &e) == LOLCATS_OK, "export: %s", e.msg)) return;
    if (!CHECK(lc_model_load(&b, dir, &e) == LOLCATS_OK, "load converted: %s", e.msg)) return;
    CHECK(b.format == LOLCATS_MODEL_HF && !b.cfg.rope_interleaved && b.cfg.tied &&
              b.cfg.n_kv_heads == 4 && lc_model_param_count(&b) == lc_model_param_count(&a),
          "converted config");
    for (i = 0; i < 40; i++) ids[i] = i == 0 ? 1 : (i * 131 + 7) % 512;
    lc_run_init(&ra, &a, 64, 40, &e);
    lc_run_init(&rb, &b, 64, 40, &e);
    lc_model_forward(&g_ctx, &a, &ra, ids, 40, NULL, &e);
    lc_model_forward(&g_ctx, &b, &rb, ids, 40, NULL, &e);
    check_close("stories260K .bin vs converted HF, logits", rb.logits, ra.logits, 512, 1e-5, 1e-5);
    /* the converted directory read with the wrong RoPE pairing must differ */
    b.cfg.rope_interleaved = 1;
    lc_run_reset(&rb);
    lc_model_forward(&g_ctx, &b, &rb, ids, 40, NULL, &e);
    for (i = 0; i < 512; i++) if (fabsf(rb.logits[i] - ra.logits[i]) > 1e-3f) break;
    CHECK(i < 512, "RoPE pairing matters (interleaved on permuted rows must differ)");
    lc_run_free(&ra);
    lc_run_free(&rb);
    lc_model_free(&a);
    lc_model_free(&b);
}

/* ---- Hugging Face transformers references (tools/hf_reference.py, run on the
   GPU machine in float32 on the CPU): tests/data/hf_ref.safetensors. */
#define HF_REF "tests/data/hf_ref.safetensors"

/* a named tensor of the reference as a new array of n int32 / float32 (NULL if absent) */
static int *ref_ids(const lc_st_file *f, const char *name, int *n) {
    const lc_tensor *t = lc_st_find(f, name);
    int *v;
    if (!t || t->dtype != LOLCATS_DTYPE_I32) { CHECK(0, "%s: no I32 tensor %s", HF_REF, name); return NULL; }
    *n = (int)lc_tensor_numel(t);
    v = (int *)malloc(sizeof(int) * (size_t)*n + 1);
    memcpy(v, t->data, sizeof(int) * (size_t)*n);
    return v;
}

static float *ref_f32(const lc_st_file *f, const char *name, size_t *n) {
    const lc_tensor *t = lc_st_find(f, name);
    lc_error e;
    float *v;
    if (!t) { CHECK(0, "%s: no tensor %s", HF_REF, name); return NULL; }
    *n = lc_tensor_numel(t);
    v = (float *)malloc(sizeof(float) * *n + 1);
    lc_tensor_to_f32(t, v, &e);
    return v;
}

/* alpaca-llama-25m: tokenizer ids, last-position logits, per-token NLL and
   greedy continuations against transformers. */
static void test_hf_alpaca(const lc_model *m, const lc_tokenizer *t, const lc_st_file *rf) {
    int V = m->cfg.vocab_size, k, count = atoi(lc_st_meta(rf, "nll_count"));
    lc_error e;
    char name[64], what[96];
    for (k = 0; k < count; k++) {
        const char *text;
        int n, i, *ids, *mine;
        size_t nm = 0, nr;
        double *nll, sum = 0, sum_ref = 0;
        float *last, *ref_last, *ref_nll, *mine_nll;
        snprintf(name, sizeof name, "nll_text_%d", k); text = lc_st_meta(rf, name);
        snprintf(name, sizeof name, "nll_ids_%d", k);
        if (!text || !(ids = ref_ids(rf, name, &n))) return;
        mine = (int *)malloc(sizeof(int) * (strlen(text) + 3));
        lc_tokenizer_encode(t, text, strlen(text), 1, 0, mine, strlen(text) + 3, &nm, &e);
        for (i = 0; i < n && (size_t)n == nm; i++) if (mine[i] != ids[i]) break;
        CHECK((size_t)n == nm && i == n, "text %d: ids differ from transformers' tokenizer "
              "(%zu vs %d ids, first difference at %d)", k, nm, n, i);
        nll = (double *)calloc((size_t)n, sizeof(double));
        last = (float *)malloc(sizeof(float) * V);
        mine_nll = (float *)malloc(sizeof(float) * n);
        score_ids(m, ids, n, 64, nll, last);
        {   /* the blockwise classifier (no logits buffer) gives the same NLL */
            lc_run r;
            double *nb = (double *)calloc((size_t)n, sizeof(double)), worst = 0;
            int s0;
            lc_run_init(&r, m, n, 64, &e);
            for (s0 = 0; s0 + 1 < n; s0 += 64) {
                int kk = n - 1 - s0 < 64 ? n - 1 - s0 : 64;
                lc_model_forward_nll(&g_ctx, m, &r, ids + s0, kk, ids + s0 + 1, nb + s0, &e);
            }
            for (i = 0; i + 1 < n; i++) if (fabs(nb[i] - nll[i]) > worst) worst = fabs(nb[i] - nll[i]);
            CHECK(worst < 1e-5, "text %d: lc_model_forward_nll vs logits, max diff %.2e", k, worst);
            lc_run_free(&r);
            free(nb);
        }
        snprintf(name, sizeof name, "nll_logits_%d", k); ref_last = ref_f32(rf, name, &nr);
        snprintf(name, sizeof name, "nll_%d", k); ref_nll = ref_f32(rf, name, &nr);
        if (ref_last && ref_nll && CHECK(nr == (size_t)n - 1, "nll_%d length", k)) {
            snprintf(what, sizeof what, "HF text %d last logits (%d tokens)", k, n);
            check_close(what, last, ref_last, (size_t)V, 1e-3, 0);
            for (i = 0; i + 1 < n; i++) {
                sum += nll[i]; sum_ref += (double)ref_nll[i]; mine_nll[i] = (float)nll[i];
            }
            snprintf(what, sizeof what, "HF text %d per-token NLL", k);
            check_close(what, mine_nll, ref_nll, (size_t)n - 1, 1e-3, 0);
            printf("  HF text %d: mean NLL %.6f transformers %.6f rel %.2e\n", k, sum / (n - 1),
                   sum_ref / (n - 1), fabs(sum - sum_ref) / sum_ref);
            CHECK(fabs(sum - sum_ref) <= 1e-4 * sum_ref, "text %d mean NLL rel error %.2e", k,
                  fabs(sum - sum_ref) / sum_ref);
        }
        free(ids); free(mine); free(nll); free(last); free(mine_nll); free(ref_last); free(ref_nll);
    }
    count = atoi(lc_st_meta(rf, "gen_count"));
    for (k = 0; k < count; k++) {   /* greedy, 40 tokens, through EOS (no stop) */
        const char *text;
        int n, ng, i, *ids, *gen, *mine, same;
        size_t nm = 0, nmar;
        float *margin;
        lc_run r;
        snprintf(name, sizeof name, "gen_text_%d", k); text = lc_st_meta(rf, name);
        snprintf(name, sizeof name, "gen_prompt_%d", k);
        if (!text || !(ids = ref_ids(rf, name, &n))) return;
        snprintf(name, sizeof name, "gen_%d", k); gen = ref_ids(rf, name, &ng);
        snprintf(name, sizeof name, "gen_margin_%d", k); margin = ref_f32(rf, name, &nmar);
        mine = (int *)malloc(sizeof(int) * (strlen(text) + 3 + (size_t)ng));
        lc_tokenizer_encode(t, text, strlen(text), 1, 0, mine, strlen(text) + 3, &nm, &e);
        for (i = 0; i < n && (size_t)n == nm; i++) if (mine[i] != ids[i]) break;
        CHECK((size_t)n == nm && i == n, "greedy prompt %d: ids differ from transformers'", k);
        if (!gen || !margin || lc_run_init(&r, m, n + ng, n, &e)) { CHECK(0, "greedy %d setup", k); return; }
        lc_model_forward(&g_ctx, m, &r, ids, n, NULL, &e);
        for (i = 0, same = 0; i < ng; i++) {
            int nx = lc_argmax(r.logits, V);
            mine[i] = nx;
            same += nx == gen[i];
            if (i + 1 < ng) lc_model_forward(&g_ctx, m, &r, &nx, 1, NULL, &e);
        }
        {
            float mn = margin[0];
            for (i = 1; i < ng; i++) if (margin[i] < mn) mn = margin[i];
            printf("  HF greedy %d: %d of %d tokens identical (smallest top-2 margin %.4f)\n", k,
                   same, ng, (double)mn);
        }
        CHECK(same == ng, "greedy %d: %d of %d tokens match transformers", k, same, ng);
        lc_run_free(&r);
        free(ids); free(gen); free(mine); free(margin);
    }
}

/* Copies the converted directory to dst with config.json edited: every `from`
   replaced by `to` (NULL: none), and `extra` JSON members added. */
static int make_variant(const char *src, const char *dst, const char *from, const char *to,
                        const char *extra) {
    char p[512], *cfg, *out, *q;
    FILE *f;
    size_t n, cap;
    if (mkdir(dst, 0755) != 0 && errno != EEXIST) return 0;
    snprintf(p, sizeof p, "%s/model.safetensors", src);
    if (!(f = fopen(p, "rb"))) return 0;
    fseek(f, 0, SEEK_END); n = (size_t)ftell(f); fseek(f, 0, SEEK_SET);
    cfg = (char *)malloc(n);
    if (fread(cfg, 1, n, f) != n) { fclose(f); free(cfg); return 0; }
    fclose(f);
    snprintf(p, sizeof p, "%s/model.safetensors", dst);
    f = fopen(p, "wb"); fwrite(cfg, 1, n, f); fclose(f);
    free(cfg);
    snprintf(p, sizeof p, "%s/config.json", src);
    f = fopen(p, "rb"); cfg = (char *)calloc(1, 8192);
    n = fread(cfg, 1, 8191, f); fclose(f);
    cap = n + 8192;
    out = (char *)calloc(1, cap);
    for (q = cfg; *q;) {
        if (from && !strncmp(q, from, strlen(from))) { strcat(out, to); q += strlen(from); }
        else { size_t l = strlen(out); out[l] = *q++; }
    }
    q = strrchr(out, '}');
    if (q) snprintf(q, cap - (size_t)(q - out), ",\n  %s\n}\n", extra);
    snprintf(p, sizeof p, "%s/config.json", dst);
    f = fopen(p, "wb"); fputs(out, f); fclose(f);
    free(cfg); free(out);
    return 1;
}

/* logits (T,V) of ids through a directory, prefill and token by token */
static void check_dir_logits(const char *dir, const int *ids, int T, const float *ref,
                             const char *what, lc_model *keep) {
    lc_model m;
    lc_run r, r1;
    lc_error e;
    int V, i;
    float *all, *dec;
    char w2[128];
    if (!CHECK(lc_model_load(&m, dir, &e) == LOLCATS_OK, "%s: %s", dir, e.msg)) return;
    V = m.cfg.vocab_size;
    all = (float *)malloc(sizeof(float) * (size_t)T * V);
    dec = (float *)malloc(sizeof(float) * (size_t)T * V);
    lc_run_init(&r, &m, T, T, &e);
    lc_run_init(&r1, &m, T, 1, &e);
    lc_model_forward(&g_ctx, &m, &r, ids, T, all, &e);
    for (i = 0; i < T; i++) {
        lc_model_forward(&g_ctx, &m, &r1, ids + i, 1, NULL, &e);
        memcpy(dec + (size_t)i * V, r1.logits, sizeof(float) * V);
    }
    check_close(what, all, ref, (size_t)T * V, 1e-3, 0);
    snprintf(w2, sizeof w2, "%s, decode", what);
    check_close(w2, dec, ref, (size_t)T * V, 1e-3, 0);
    lc_run_free(&r); lc_run_free(&r1);
    free(all); free(dec);
    if (keep) *keep = m; else lc_model_free(&m);
}

/* The converted stories260K directory read by transformers, as converted, with
   llama3 rope scaling and as a Mistral with a sliding window of 8. */
static void test_hf_stories(const lc_st_file *rf) {
    const char *dir = "build/tests/stories260K_hf";
    int n, i, *ids;
    size_t nr, ni;
    float *ref, *inv_ref, inv[64], *full;
    lc_model m;
    char p[256];
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (!file_exists(p)) { printf("SKIPPED: %s not written (HF stories260K tests)\n", dir); return; }
    if (!(ids = ref_ids(rf, "st_ids", &n))) return;
    full = ref_f32(rf, "st_logits", &nr);
    check_dir_logits(dir, ids, n, full, "HF stories260K converted, logits (100,512)", NULL);
    /* llama3 rope scaling: wavelengths 6.3, 63 (smoothed), 628, 6283 (scaled) */
    make_variant(dir, "build/tests/stories260K_llama3", NULL, NULL,
                 "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
                 "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                 "\"original_max_position_embeddings\": 128}");
    ref = ref_f32(rf, "st_llama3_logits", &nr);
    check_dir_logits("build/tests/stories260K_llama3", ids, n, ref,
                     "HF stories260K llama3 rope, logits", &m);
    inv_ref = ref_f32(rf, "st_llama3_inv_freq", &ni);
    if (CHECK(m.cfg.rope_llama3 && ni == 4, "llama3 variant config")) {
        lc_rope_inv_freq(inv, &m.cfg);
        check_close("HF stories260K llama3 inv_freq", inv, inv_ref, 4, 0, 1e-6);
    }
    lc_model_free(&m);
    free(ref); free(inv_ref);
    /* Mistral with sliding_window 8 (eager attention in transformers) */
    make_variant(dir, "build/tests/stories260K_mistral", "LlamaForCausalLM", "MistralForCausalLM",
                 "\"sliding_window\": 8");
    ref = ref_f32(rf, "st_mistral_logits", &nr);
    check_dir_logits("build/tests/stories260K_mistral", ids, n, ref,
                     "HF stories260K Mistral window 8, logits", &m);
    CHECK(m.cfg.sliding_window == 8 && !strcmp(m.cfg.arch, "MistralForCausalLM"), "Mistral config");
    {   /* export keeps the window (as Mistral) */
        lc_model m2;
        lc_error e;
        const char *d2 = "build/tests/stories260K_mistral_export";
        if (mkdir(d2, 0755) == 0 || errno == EEXIST) {
            CHECK(lc_model_export_hf(&m, d2, &e) == LOLCATS_OK, "export: %s", e.msg);
            if (CHECK(lc_model_load(&m2, d2, &e) == LOLCATS_OK, "reload: %s", e.msg)) {
                CHECK(m2.cfg.sliding_window == 8 && !strcmp(m2.cfg.arch, "MistralForCausalLM"),
                      "exported Mistral config keeps sliding_window 8");
                lc_model_free(&m2);
            }
        }
    }
    for (i = 0; i < n * 512; i++) if (fabsf(ref[i] - full[i]) > 1e-2f) break;
    CHECK(i < n * 512 && i >= 8 * 512, "the window changes logits from position 8 on (first at %d)",
          i / 512);
    lc_model_free(&m);
    free(ref); free(full); free(ids);
}

/* Llama 3.1 8B's frequencies (head_dim 128, theta 5e5, factor 8, low 1, high 4,
   original 8192) as transformers computes them, and by hand at three indices. */
static void test_llama31_rope(const lc_st_file *rf) {
    lc_model_config c;
    float inv[64], *ref;
    size_t n;
    double f;
    memset(&c, 0, sizeof c);
    c.head_dim = 128; c.rope_theta = 500000.0f; c.rope_llama3 = 1; c.rope_factor = 8.0f;
    c.rope_low_freq_factor = 1.0f; c.rope_high_freq_factor = 4.0f; c.rope_orig_max_pos = 8192;
    lc_rope_inv_freq(inv, &c);
    if ((ref = ref_f32(rf, "llama31_inv_freq", &n)) && CHECK(n == 64, "llama31_inv_freq size"))
        check_close("Llama 3.1 rope inv_freq vs transformers", inv, ref, 64, 0, 2e-6);
    free(ref);
    /* i = 10: wavelength 2 pi 5e5^(20/128) = 49.6 < 8192/4: unchanged */
    f = pow(500000.0, -20.0 / 128.0);
    CHECK(fabs((double)inv[10] - f) <= 1e-6 * f, "i=10 high frequency kept: %g vs %g", (double)inv[10], f);
    /* i = 50: wavelength 3.2e5 > 8192: divided by 8 */
    f = pow(500000.0, -100.0 / 128.0) / 8.0;
    CHECK(fabs((double)inv[50] - f) <= 1e-6 * f, "i=50 low frequency / 8: %g vs %g", (double)inv[50], f);
    /* the band between: wavelengths in [8192/4, 8192] are smoothed */
    {
        int i, hit = 0;
        for (i = 0; i < 64; i++) {
            double fi = pow(500000.0, -2.0 * i / 128.0), wl = 2 * 3.141592653589793 / fi;
            if (wl >= 2048 && wl <= 8192) {
                double sm = (8192 / wl - 1) / (4 - 1), want = (1 - sm) * fi / 8 + sm * fi;
                hit++;
                CHECK(fabs((double)inv[i] - want) <= 1e-6 * want, "i=%d smoothed: %g vs %g", i,
                      (double)inv[i], want);
            }
        }
        CHECK(hit > 0, "some frequencies are in the smoothed band");
    }
}

static void test_hf_reference(void) {
    const char *dir = SHARED "alpaca-llama-25m";
    lc_st_file *rf;
    lc_error e;
    if (!CHECK(lc_st_open(&rf, HF_REF, &e) == LOLCATS_OK, "%s: %s (tools/hf_reference.py)", HF_REF,
               e.msg))
        return;
    printf("  transformers %s, torch %s\n", lc_st_meta(rf, "transformers"), lc_st_meta(rf, "torch"));
    test_llama31_rope(rf);
    if (file_exists(SHARED "alpaca-llama-25m/config.json")) {
        lc_model m;
        lc_tokenizer t;
        char tp[512];
        snprintf(tp, sizeof tp, "%s/tokenizer.json", dir);
        if (CHECK(lc_model_load(&m, dir, &e) == LOLCATS_OK, "load: %s", e.msg)) {
            if (CHECK(lc_tokenizer_load_hf(&t, tp, &e) == LOLCATS_OK, "%s", e.msg)) {
                test_hf_alpaca(&m, &t, rf);
                lc_tokenizer_free(&t);
            }
            lc_model_free(&m);
        }
    } else
        printf("SKIPPED: %s not found (transformers comparison)\n", dir);
    test_hf_stories(rf);
    lc_st_close(rf);
}

int main(void) {
    lc_ctx_init(&g_ctx);
    test_matmul();
    test_sampler();
    test_tokenizers();
    test_bytelevel();
    test_stories260k();
    test_corrupt_bin();
    test_convert();
    test_alpaca25m();
    test_hf_reference();
    return check_done();
}
