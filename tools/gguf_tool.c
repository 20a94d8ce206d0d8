/* gguf_tool.c - the GGUF side of the `lolcats` command: `inspect FILE.gguf`
   (header, metadata, tensor table) and `convert --to-gguf` (a Hugging Face
   directory or llama2.c checkpoint written as a GGUF file). */
#define _POSIX_C_SOURCE 200809L
#include "tools.h"

#include <stdio.h>
#include <string.h>

/* one metadata value, short: strings quoted and cut, arrays as [n x type] and their first elements */
static void gguf_show_value(const lc_gguf_kv *kv) {
    uint64_t j, show = kv->n < 6 ? kv->n : 6;
    if (kv->type == LOLCATS_GGUF_ARRAY) printf("[%llu x %s]", (unsigned long long)kv->n, lc_gguf_type_name(kv->elem_type));
    for (j = 0; j < show; j++) {
        printf(kv->type == LOLCATS_GGUF_ARRAY ? (j ? ", " : " ") : "");
        if (kv->elem_type == LOLCATS_GGUF_STRING) {
            size_t len, k;
            const char *s = lc_gguf_arr_str(kv, j, &len);
            putchar('"');
            for (k = 0; k < len && k < 60; k++) {
                unsigned char c = (unsigned char)s[k];
                if (c < 32 || c == 127) printf("\\x%02x", c); else putchar(c);
            }
            printf("%s\"", len > 60 ? "..." : "");
        } else if (kv->elem_type == LOLCATS_GGUF_F32 || kv->elem_type == LOLCATS_GGUF_F64) {
            printf("%g", lc_gguf_arr_float(kv, j));
        } else if (kv->elem_type == LOLCATS_GGUF_U64) {
            printf("%llu", (unsigned long long)lc_gguf_arr_int(kv, j));
        } else if (kv->elem_type == LOLCATS_GGUF_BOOL) {
            printf("%s", lc_gguf_arr_int(kv, j) ? "true" : "false");
        } else {
            printf("%lld", (long long)lc_gguf_arr_int(kv, j));
        }
    }
    if (show < kv->n) printf(", ...");
    putchar('\n');
}

int tool_inspect_gguf(const char *path) {
    lc_gguf_file *f = NULL;
    lc_error err;
    long long params = 0;
    size_t bytes = 0;
    int i, d;
    memset(&err, 0, sizeof err);
    if (lc_gguf_open(&f, path, &err)) return tool_report(&err);
    printf("%s (GGUF v%d, %d metadata entries, %d tensors, alignment %lu, data at byte %lu)\n", path,
           lc_gguf_version(f), lc_gguf_kv_count(f), lc_gguf_tensor_count(f), (unsigned long)lc_gguf_alignment(f),
           (unsigned long)lc_gguf_data_offset(f));
    if (lc_gguf_kv_count(f) > 0) printf("metadata:\n");
    for (i = 0; i < lc_gguf_kv_count(f); i++) {
        const lc_gguf_kv *kv = lc_gguf_kv_at(f, i);
        printf("  %-40s %-6s ", kv->key, lc_gguf_type_name(kv->type));
        gguf_show_value(kv);
    }
    printf("tensors (shape in PyTorch order):\n");
    for (i = 0; i < lc_gguf_tensor_count(f); i++) {
        const lc_tensor *t = lc_gguf_tensor_at(f, i);
        char shape[160];
        size_t n = 0;
        shape[0] = 0;
        for (d = 0; d < t->ndim && n < sizeof shape - 24; d++)
            n += (size_t)snprintf(shape + n, sizeof shape - n, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        params += (long long)lc_tensor_numel(t);
        bytes += t->nbytes;
        printf("  %-40s %-5s [%s] %zu bytes\n", t->name, lc_dtype_name(t->dtype), shape, t->nbytes);
    }
    printf("elements: %lld (%.3g bits each)\n", params, params ? 8.0 * (double)bytes / (double)params : 0.0);
    lc_gguf_close(f);
    return 0;
}

/* ---- convert --to-gguf ------------------------------------------------- */
#include "args.h"
#include "outsafe.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct gw_buf { unsigned char *p; size_t n, cap; int oom; } gw_buf;

static void gw_bytes(gw_buf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        unsigned char *q;
        while (cap < b->n + n) cap *= 2;
        if (!(q = (unsigned char *)realloc(b->p, cap))) { b->oom = 1; return; }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void gw_le(gw_buf *b, uint64_t v, int n) {
    unsigned char t[8];
    int i;
    for (i = 0; i < n; i++) t[i] = (unsigned char)(v >> (8 * i));
    gw_bytes(b, t, (size_t)n);
}
static void gw_strn(gw_buf *b, const char *s, size_t n) { gw_le(b, n, 8); gw_bytes(b, s, n); }
static void gw_str(gw_buf *b, const char *s) { gw_strn(b, s, strlen(s)); }
static void gw_kv_u32(gw_buf *b, int *n, const char *k, uint32_t v) { gw_str(b, k); gw_le(b, LOLCATS_GGUF_U32, 4); gw_le(b, v, 4); (*n)++; }
static void gw_kv_f32(gw_buf *b, int *n, const char *k, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    gw_str(b, k); gw_le(b, LOLCATS_GGUF_F32, 4); gw_le(b, u, 4); (*n)++;
}
static void gw_kv_str(gw_buf *b, int *n, const char *k, const char *v) { gw_str(b, k); gw_le(b, LOLCATS_GGUF_STRING, 4); gw_str(b, v); (*n)++; }

/* One tensor to write: a model weight (rows, cols) under its GGUF name. */
typedef struct gw_tensor {
    char name[64];
    const lc_weight *w;
    int permute_heads;            /* > 0: q/k rows to llama.cpp's interleaved order (heads) */
    lc_dtype dt;                  /* stored dtype */
    uint64_t off;
} gw_tensor;

/* row r of w (HF order) in float32 */
static void gw_row(float *dst, const lc_weight *w, int64_t r) {
    const unsigned char *p = (const unsigned char *)w->data;
    size_t rb = lc_dtype_row_bytes(w->dtype, w->cols);
    lc_dequant_row(dst, p + (size_t)r * rb, w->dtype, w->cols);
}

/* llama.cpp's converter stores q/k rows of each head as (2i, 2i+1) pairs:
   GGUF row h*D + 2i + j holds HF row h*D + j*D/2 + i. */
static int64_t gw_src_row(const gw_tensor *t, int64_t r) {
    int64_t D, h, k;
    if (t->permute_heads <= 0) return r;
    D = t->w->rows / t->permute_heads;
    h = r / D; k = r % D;
    return h * D + (k % 2) * (D / 2) + k / 2;
}

static lc_dtype gw_pick(lc_dtype want, const lc_weight *w) {
    if (w->rows <= 1) return LOLCATS_DTYPE_F32;                  /* norms stay F32, as llama.cpp keeps them */
    if (lc_dtype_row_bytes(want, w->cols)) return want;
    if (want == LOLCATS_DTYPE_Q4_K) return LOLCATS_DTYPE_Q4_0;  /* rows not a multiple of 256 */
    return LOLCATS_DTYPE_F16;
}

static const char *gguf_to_usage =
    "lolcats convert --to-gguf OUT.gguf --model PATH [--type TYPE] [--tokenizer TOK] [--force]\n"
    "Writes a model as a GGUF file (llama architecture, llama.cpp's names).\n"
    "  --model PATH   Hugging Face directory or llama2.c .bin checkpoint\n"
    "  --type TYPE    f32 (default), f16, bf16, q8_0, q4_0 or q4_k. Norm weights stay\n"
    "                 f32; with q4_k, matrices whose rows are not a multiple of 256\n"
    "                 weights are stored q4_0. q/k rows are permuted to llama.cpp's\n"
    "                 interleaved RoPE order, as its converter does. With q4_k and\n"
    "                 q4_0 the classifier (output.weight, or token_embd.weight when\n"
    "                 tied) is stored q8_0, as llama.cpp's Q4_K_M keeps it at 6 bits.\n"
    "  --tokenizer TOK  a llama2.c tokenizer.bin written into the file (tokenizer.ggml.*,\n"
    "                 SentencePiece with scores), read back when the GGUF runs\n"
    "  --force        replace an existing OUT.gguf";

int tool_convert_to_gguf(int argc, char **argv) {
    const char *out = NULL, *model = NULL, *type = "f32", *tok_path = NULL;
    lc_tokenizer tok;
    int have_tok = 0;
    static const lc_dtype dts[] = {LOLCATS_DTYPE_F32, LOLCATS_DTYPE_F16, LOLCATS_DTYPE_BF16, LOLCATS_DTYPE_Q8_0,
                                   LOLCATS_DTYPE_Q4_0, LOLCATS_DTYPE_Q4_K};
    static const char *const lnames[9] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm",
                                          "ffn_gate", "ffn_down", "ffn_up"};
    lc_model m;
    lc_error err;
    const lc_model_config *c;
    gw_buf h = {0, 0, 0, 0};
    gw_tensor *ts = NULL;
    int i, l, k, nt = 0, nkv = 0, force = 0, ti, rc = 1;
    lc_dtype want;
    uint64_t off = 0;
    size_t pad;
    float *row = NULL;
    unsigned char *qrow = NULL;
    char *tmp = NULL;
    FILE *fp = NULL;
    memset(&err, 0, sizeof err);
    for (i = 1; i < argc; i++) {
        if (tool_arg_is_help(argv[i])) return tool_arg_help(gguf_to_usage, NULL);
        if (!strcmp(argv[i], "--force")) force = 1;
        else if (!strcmp(argv[i], "--to-gguf")) out = tool_arg_value(argc, argv, &i);
        else if (!strcmp(argv[i], "--model") || !strcmp(argv[i], "-m")) model = tool_arg_value(argc, argv, &i);
        else if (!strcmp(argv[i], "--type")) type = tool_arg_value(argc, argv, &i);
        else if (!strcmp(argv[i], "--tokenizer")) tok_path = tool_arg_value(argc, argv, &i);
        else tool_arg_unknown(argv[0], argv[i], gguf_to_usage, NULL);
    }
    if (!out || !model) tool_arg_fail(argv[0], "convert --to-gguf needs OUT.gguf and --model PATH");
    ti = tool_arg_choice("--type", type, "f32|f16|bf16|q8_0|q4_0|q4_k");
    want = dts[ti];
    outsafe_input("--model", model, OUTSAFE_IN_MODEL);
    outsafe_input("--tokenizer", tok_path, OUTSAFE_IN_FILE);
    outsafe_output("--to-gguf", out, OUTSAFE_OUT_FILE);
    if (outsafe_begin(argc, argv, force, 1)) return 1;
    if (access(out, F_OK) == 0 && !force) {
        fprintf(stderr, "lolcats: error: %s exists; pass --force to replace it\n", out);
        return 1;
    }
    memset(&tok, 0, sizeof tok);
    if (lc_model_load(&m, model, &err)) return tool_report(&err);
    c = &m.cfg;
    if (tok_path) {   /* a SentencePiece tokenizer with scores (llama2.c tokenizer.bin) goes into the file */
        size_t tl = strlen(tok_path);
        if (tool_load_tokenizer(&tok, &m, model, tok_path, &err)) goto done;
        have_tok = 1;
        if (tok.kind != LOLCATS_TOK_SPM || (tl >= 5 && !strcmp(tok_path + tl - 5, ".json"))) {   /* merges, not scores */
            fprintf(stderr, "lolcats: error: %s: only SentencePiece tokenizers with scores (llama2.c tokenizer.bin) "
                    "are written into GGUF files; run the GGUF with --tokenizer %s instead\n", tok_path, tok_path);
            goto done;
        }
    }
    if (c->rope_llama3 || c->sliding_window > 0) {
        fprintf(stderr, "lolcats: error: %s uses %s, which the GGUF writer does not write yet (llama.cpp keeps it "
                "as a rope_freqs tensor / model-specific keys)\n", model, c->rope_llama3 ? "llama3 RoPE scaling" : "a sliding window");
        goto done;
    }
    /* metadata */
    gw_kv_str(&h, &nkv, "general.architecture", "llama");
    gw_kv_str(&h, &nkv, "general.name", "lolcats convert");
    gw_kv_u32(&h, &nkv, "general.alignment", 32);
    gw_kv_u32(&h, &nkv, "llama.context_length", (uint32_t)c->seq_len);
    gw_kv_u32(&h, &nkv, "llama.embedding_length", (uint32_t)c->dim);
    gw_kv_u32(&h, &nkv, "llama.feed_forward_length", (uint32_t)c->hidden_dim);
    gw_kv_u32(&h, &nkv, "llama.block_count", (uint32_t)c->n_layers);
    gw_kv_u32(&h, &nkv, "llama.attention.head_count", (uint32_t)c->n_heads);
    gw_kv_u32(&h, &nkv, "llama.attention.head_count_kv", (uint32_t)c->n_kv_heads);
    gw_kv_u32(&h, &nkv, "llama.attention.key_length", (uint32_t)c->head_dim);
    gw_kv_u32(&h, &nkv, "llama.attention.value_length", (uint32_t)c->head_dim);
    gw_kv_u32(&h, &nkv, "llama.rope.dimension_count", (uint32_t)c->head_dim);
    gw_kv_u32(&h, &nkv, "llama.vocab_size", (uint32_t)c->vocab_size);
    gw_kv_f32(&h, &nkv, "llama.attention.layer_norm_rms_epsilon", c->norm_eps);
    gw_kv_f32(&h, &nkv, "llama.rope.freq_base", c->rope_theta);
    if (c->bos_id >= 0) gw_kv_u32(&h, &nkv, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos_id);
    if (c->eos_id >= 0) gw_kv_u32(&h, &nkv, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_id);
    if (have_tok) {   /* pieces with ' ' back to U+2581, scores, types (2 unknown, 3 control, 6 byte, 1 normal) */
        int k2;
        gw_kv_str(&h, &nkv, "tokenizer.ggml.model", "llama");
        gw_str(&h, "tokenizer.ggml.tokens"); gw_le(&h, LOLCATS_GGUF_ARRAY, 4); gw_le(&h, LOLCATS_GGUF_STRING, 4);
        gw_le(&h, (uint64_t)tok.vocab_size, 8);
        for (k2 = 0; k2 < tok.vocab_size; k2++) {
            size_t n2 = 0, j;
            for (j = 0; j < (size_t)tok.lens[k2]; j++) n2 += tok.pieces[k2][j] == ' ' ? 3 : 1;
            gw_le(&h, n2, 8);
            for (j = 0; j < (size_t)tok.lens[k2]; j++)
                if (tok.pieces[k2][j] == ' ') gw_bytes(&h, "\xE2\x96\x81", 3); else gw_bytes(&h, tok.pieces[k2] + j, 1);
        }
        gw_str(&h, "tokenizer.ggml.scores"); gw_le(&h, LOLCATS_GGUF_ARRAY, 4); gw_le(&h, LOLCATS_GGUF_F32, 4);
        gw_le(&h, (uint64_t)tok.vocab_size, 8);
        for (k2 = 0; k2 < tok.vocab_size; k2++) { uint32_t u; memcpy(&u, &tok.scores[k2], 4); gw_le(&h, u, 4); }
        gw_str(&h, "tokenizer.ggml.token_type"); gw_le(&h, LOLCATS_GGUF_ARRAY, 4); gw_le(&h, LOLCATS_GGUF_I32, 4);
        gw_le(&h, (uint64_t)tok.vocab_size, 8);
        for (k2 = 0; k2 < tok.vocab_size; k2++) {
            const char *p = tok.pieces[k2];
            int ty = k2 == tok.unk_id ? 2 : (k2 == tok.bos_id || k2 == tok.eos_id) ? 3
                   : (tok.lens[k2] == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && p[5] == '>') ? 6 : 1;
            gw_le(&h, (uint32_t)ty, 4);
        }
        nkv += 3;
        if (tok.unk_id >= 0) gw_kv_u32(&h, &nkv, "tokenizer.ggml.unknown_token_id", (uint32_t)tok.unk_id);
    }
    /* tensors */
    ts = (gw_tensor *)calloc((size_t)(3 + 9 * c->n_layers), sizeof *ts);
    if (!ts) { fprintf(stderr, "lolcats: error: out of memory\n"); goto done; }
#define GW_T(nm, wp, perm) do { snprintf(ts[nt].name, sizeof ts[nt].name, "%s", nm); ts[nt].w = (wp); \
        ts[nt].permute_heads = c->rope_interleaved ? 0 : (perm); ts[nt].dt = gw_pick(want, wp); nt++; } while (0)
    GW_T("token_embd.weight", &m.tok_emb, 0);
    if (c->tied && (want == LOLCATS_DTYPE_Q4_K || want == LOLCATS_DTYPE_Q4_0))
        ts[0].dt = LOLCATS_DTYPE_Q8_0;   /* the classifier too: kept at 8 bits, as llama.cpp's Q4_K_M keeps it at 6 */
    for (l = 0; l < c->n_layers; l++) {
        const lc_layer_weights *lw = &m.layers[l];
        const lc_weight *ws[9];
        char nm[64];
        ws[0] = &lw->rms_att; ws[1] = &lw->wq; ws[2] = &lw->wk; ws[3] = &lw->wv; ws[4] = &lw->wo;
        ws[5] = &lw->rms_ffn; ws[6] = &lw->w1; ws[7] = &lw->w2; ws[8] = &lw->w3;
        for (k = 0; k < 9; k++) {
            snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, lnames[k]);
            GW_T(nm, ws[k], k == 1 ? c->n_heads : k == 2 ? c->n_kv_heads : 0);
        }
    }
    GW_T("output_norm.weight", &m.rms_final, 0);
    if (!c->tied) {
        GW_T("output.weight", &m.wcls, 0);
        if (want == LOLCATS_DTYPE_Q4_K || want == LOLCATS_DTYPE_Q4_0) ts[nt - 1].dt = LOLCATS_DTYPE_Q8_0;
    }
#undef GW_T
    {   /* header + tensor infos (header counts patched in after) */
        gw_buf a = {0, 0, 0, 0};
        gw_bytes(&a, "GGUF", 4);
        gw_le(&a, 3, 4);
        gw_le(&a, (uint64_t)nt, 8);
        gw_le(&a, (uint64_t)nkv, 8);
        gw_bytes(&a, h.p, h.n);
        for (i = 0; i < nt; i++) {
            const lc_weight *w = ts[i].w;
            gw_str(&a, ts[i].name);
            if (w->rows <= 1) { gw_le(&a, 1, 4); gw_le(&a, (uint64_t)w->cols, 8); }
            else { gw_le(&a, 2, 4); gw_le(&a, (uint64_t)w->cols, 8); gw_le(&a, (uint64_t)w->rows, 8); }
            gw_le(&a, (uint64_t)lc_gguf_ggml_type_of(ts[i].dt), 4);
            gw_le(&a, off, 8);
            ts[i].off = off;
            off += (uint64_t)lc_dtype_row_bytes(ts[i].dt, w->cols) * (uint64_t)(w->rows > 1 ? w->rows : 1);
            off = (off + 31) / 32 * 32;
        }
        while (a.n % 32) gw_le(&a, 0, 1);
        free(h.p);
        h = a;
    }
    if (h.oom) { fprintf(stderr, "lolcats: error: out of memory for the GGUF header\n"); goto done; }
    tmp = (char *)malloc(strlen(out) + 32);
    row = (float *)malloc(sizeof(float) * (size_t)(c->dim > c->hidden_dim ? c->dim : c->hidden_dim) * 2 + 1024);
    qrow = (unsigned char *)malloc(sizeof(float) * (size_t)(c->dim > c->hidden_dim ? c->dim : c->hidden_dim) * 2 + 1024);
    if (!tmp || !row || !qrow) { fprintf(stderr, "lolcats: error: out of memory\n"); goto done; }
    sprintf(tmp, "%s.tmp.%ld", out, (long)getpid());
    outsafe_tmp(tmp);
    if (!(fp = fopen(tmp, "wb"))) { fprintf(stderr, "lolcats: error: %s: cannot create: %s\n", tmp, strerror(errno)); goto done; }
    if (fwrite(h.p, 1, h.n, fp) != h.n) goto wfail;
    for (i = 0; i < nt; i++) {
        const lc_weight *w = ts[i].w;
        int64_t r, rows = w->rows > 1 ? w->rows : 1;
        size_t rb = lc_dtype_row_bytes(ts[i].dt, w->cols);
        for (r = 0; r < rows; r++) {
            gw_row(row, w, gw_src_row(&ts[i], r));
            if (lc_quant_row(qrow, row, ts[i].dt, w->cols) || fwrite(qrow, 1, rb, fp) != rb) goto wfail;
        }
        pad = (size_t)(rows * (int64_t)rb) % 32;
        if (pad) { static const unsigned char z[32]; if (fwrite(z, 1, 32 - pad, fp) != 32 - pad) goto wfail; }
    }
    if (fflush(fp) || fsync(fileno(fp))) goto wfail;
    fclose(fp);
    fp = NULL;
    if (rename(tmp, out)) { fprintf(stderr, "lolcats: error: cannot rename %s to %s: %s\n", tmp, out, strerror(errno)); goto done; }
    {
        int counts[LOLCATS_DTYPE_COUNT] = {0}, d;
        printf("wrote %s (GGUF v3, %d tensors, %.1f MB;", out, nt, (double)(h.n + off) / 1e6);
        for (i = 0; i < nt; i++) counts[ts[i].dt]++;
        for (d = 0; d < LOLCATS_DTYPE_COUNT; d++)
            if (counts[d]) printf(" %d %s", counts[d], lc_dtype_name((lc_dtype)d));
        printf(")\n");
    }
    rc = 0;
    goto done;
wfail:
    fprintf(stderr, "lolcats: error: %s: write failed: %s (disk full?)\n", tmp, strerror(errno));
done:
    if (fp) fclose(fp);
    if (rc && tmp) remove(tmp);
    free(tmp); free(row); free(qrow); free(ts); free(h.p);
    if (have_tok) lc_tokenizer_free(&tok);
    lc_model_free(&m);
    return rc;
}

/* ---- convert FILE.gguf --out DIR ---------------------------------------- */
/* llama.cpp tensor names -> Hugging Face names (llama, mistral, qwen2, qwen3) */
static int gguf_hf_name(const char *g, char *out, size_t cap) {
    static const char *const map[][2] = {
        {"attn_norm.weight", "input_layernorm.weight"}, {"attn_q.weight", "self_attn.q_proj.weight"},
        {"attn_k.weight", "self_attn.k_proj.weight"}, {"attn_v.weight", "self_attn.v_proj.weight"},
        {"attn_q.bias", "self_attn.q_proj.bias"}, {"attn_k.bias", "self_attn.k_proj.bias"},
        {"attn_v.bias", "self_attn.v_proj.bias"}, {"attn_output.weight", "self_attn.o_proj.weight"},
        {"attn_q_norm.weight", "self_attn.q_norm.weight"}, {"attn_k_norm.weight", "self_attn.k_norm.weight"},
        {"ffn_norm.weight", "post_attention_layernorm.weight"}, {"ffn_gate.weight", "mlp.gate_proj.weight"},
        {"ffn_up.weight", "mlp.up_proj.weight"}, {"ffn_down.weight", "mlp.down_proj.weight"}};
    int l, n = 0;
    size_t k;
    if (!strcmp(g, "token_embd.weight")) return snprintf(out, cap, "model.embed_tokens.weight") > 0;
    if (!strcmp(g, "output_norm.weight")) return snprintf(out, cap, "model.norm.weight") > 0;
    if (!strcmp(g, "output.weight")) return snprintf(out, cap, "lm_head.weight") > 0;
    if (sscanf(g, "blk.%d.%n", &l, &n) != 1 || n <= 0) return 0;
    for (k = 0; k < sizeof map / sizeof map[0]; k++)
        if (!strcmp(g + n, map[k][0])) return snprintf(out, cap, "model.layers.%d.%s", l, map[k][1]) > 0;
    return 0;
}

static long gguf_meta_int(const lc_gguf_file *f, const char *arch, const char *key, long def) {
    char k[128];
    int64_t v;
    lc_error e;
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return lc_gguf_find_kv(f, k) && !lc_gguf_get_int(f, k, &v, &e) ? (long)v : def;
}

static double gguf_meta_num(const lc_gguf_file *f, const char *arch, const char *key, double def) {
    char k[128];
    double v;
    lc_error e;
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return lc_gguf_find_kv(f, k) && !lc_gguf_get_float(f, k, &v, &e) ? v : def;
}

static const char *gguf_hf_usage =
    "lolcats convert FILE.gguf --out DIR [--force]\n"
    "Writes a GGUF model (llama, mistral, qwen2, qwen3) as a Hugging Face directory:\n"
    "  config.json from the metadata and model.safetensors with Hugging Face names;\n"
    "  F32/F16/BF16 tensors keep their dtype, block-quantized ones are written F32\n"
    "  (dequantized); llama's q/k rows go back to rotate_half order. The tokenizer\n"
    "  is not converted: copy the model's tokenizer.json beside it. DIR must be\n"
    "  absent or empty (--force replaces it whole).";

int tool_convert_from_gguf(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *arch = NULL, *dir;
    lc_gguf_file *f = NULL;
    lc_error err;
    lc_tensor *ts = NULL;
    char (*names)[96] = NULL, path[4096];
    void **bufs = NULL;
    int i, n, force = 0, rc = 1, llama, heads, kv_heads, is_q;
    FILE *fp;
    memset(&err, 0, sizeof err);
    for (i = 1; i < argc; i++) {
        if (tool_arg_is_help(argv[i])) return tool_arg_help(gguf_hf_usage, NULL);
        if (!strcmp(argv[i], "--force")) force = 1;
        else if (!strcmp(argv[i], "--out")) out = tool_arg_value(argc, argv, &i);
        else if (argv[i][0] != '-' && !in) in = argv[i];
        else tool_arg_unknown(argv[0], argv[i], gguf_hf_usage, NULL);
    }
    if (!in || !out) tool_arg_fail(argv[0], "convert FILE.gguf needs --out DIR");
    outsafe_input("FILE.gguf", in, OUTSAFE_IN_FILE);
    outsafe_output("--out", out, OUTSAFE_OUT_HF);
    if (outsafe_begin(argc, argv, force, 1)) return 1;
    if (lc_gguf_open(&f, in, &err) || lc_gguf_get_str(f, "general.architecture", &arch, &err)) {
        lc_gguf_close(f);
        return tool_report(&err);
    }
    llama = !strcmp(arch, "llama") || !strcmp(arch, "mistral");
    if (!llama && strcmp(arch, "qwen2") && strcmp(arch, "qwen3")) {
        fprintf(stderr, "lolcats: error: %s: general.architecture \"%s\": convert writes llama, mistral, qwen2 and "
                "qwen3 models\n", in, arch);
        goto done;
    }
    heads = (int)gguf_meta_int(f, arch, "attention.head_count", 0);
    kv_heads = (int)gguf_meta_int(f, arch, "attention.head_count_kv", heads);
    n = lc_gguf_tensor_count(f);
    ts = (lc_tensor *)calloc((size_t)(n ? n : 1), sizeof *ts);
    names = (char (*)[96])calloc((size_t)(n ? n : 1), sizeof *names);
    bufs = (void **)calloc((size_t)(n ? n : 1), sizeof *bufs);
    if (!ts || !names || !bufs) { fprintf(stderr, "lolcats: error: out of memory\n"); goto done; }
    for (i = 0; i < n; i++) {
        const lc_tensor *t = lc_gguf_tensor_at(f, i);
        int64_t rows = t->ndim > 1 ? (int64_t)(lc_tensor_numel(t) / (size_t)t->shape[t->ndim - 1]) : 1, r;
        int64_t cols = t->shape[t->ndim - 1], D = 0;
        size_t rb = lc_dtype_row_bytes(t->dtype, cols), eb;
        int plain = t->dtype == LOLCATS_DTYPE_F32 || t->dtype == LOLCATS_DTYPE_F16 || t->dtype == LOLCATS_DTYPE_BF16;
        if (!strcmp(t->name, "rope_freqs.weight")) {
            fprintf(stderr, "lolcats: error: %s: rope_freqs.weight (RoPE scaling factors) has no Hugging Face "
                    "tensor; this converter does not write rope_scaling yet\n", in);
            goto done;
        }
        if (!gguf_hf_name(t->name, names[i], sizeof names[i])) {
            fprintf(stderr, "lolcats: error: %s: tensor '%s' has no Hugging Face name in the %s mapping\n", in,
                    t->name, arch);
            goto done;
        }
        ts[i] = *t;
        ts[i].name = names[i];
        is_q = strstr(t->name, ".attn_q.weight") != NULL;
        if (llama && (is_q || strstr(t->name, ".attn_k.weight")) && (is_q ? heads : kv_heads) > 0)
            D = rows / (is_q ? heads : kv_heads);
        if (plain && !D) continue;   /* written as it is stored */
        eb = plain ? lc_dtype_size(t->dtype) * (size_t)cols : (size_t)cols * sizeof(float);
        if (!(bufs[i] = malloc((size_t)rows * eb + 1))) { fprintf(stderr, "lolcats: error: out of memory\n"); goto done; }
        for (r = 0; r < rows; r++) {   /* llama: GGUF row h*D + 2i + j -> HF row h*D + j*D/2 + i */
            int64_t src = D ? (r / D) * D + 2 * (r % D % (D / 2)) + (r % D) / (D / 2) : r;
            const unsigned char *s = (const unsigned char *)t->data + (size_t)src * rb;
            if (plain) memcpy((unsigned char *)bufs[i] + (size_t)r * eb, s, eb);
            else lc_dequant_row((float *)bufs[i] + (size_t)r * (size_t)cols, s, t->dtype, cols);
        }
        if (!plain) { ts[i].dtype = LOLCATS_DTYPE_F32; ts[i].nbytes = (size_t)rows * eb; }
        ts[i].data = bufs[i];
    }
    if (!(dir = outsafe_hf_dir(out))) goto done;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    outsafe_st_tmp(-1, path);
    if (lc_st_write(path, ts, n, NULL, 0, &err)) { tool_report(&err); goto done; }
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!(fp = fopen(path, "w"))) { fprintf(stderr, "lolcats: error: %s: cannot create\n", path); goto done; }
    {
        const lc_tensor *emb = lc_gguf_find(f, "token_embd.weight");
        long dim = gguf_meta_int(f, arch, "embedding_length", 0);
        int64_t bos = -1, eos = -1;
        lc_error e;
        if (lc_gguf_find_kv(f, "tokenizer.ggml.bos_token_id")) (void)lc_gguf_get_int(f, "tokenizer.ggml.bos_token_id", &bos, &e);
        if (lc_gguf_find_kv(f, "tokenizer.ggml.eos_token_id")) (void)lc_gguf_get_int(f, "tokenizer.ggml.eos_token_id", &eos, &e);
        fprintf(fp, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n",
                llama ? "LlamaForCausalLM" : !strcmp(arch, "qwen2") ? "Qwen2ForCausalLM" : "Qwen3ForCausalLM",
                llama ? "llama" : arch);
        fprintf(fp, "  \"hidden_size\": %ld,\n  \"intermediate_size\": %ld,\n  \"num_hidden_layers\": %ld,\n", dim,
                gguf_meta_int(f, arch, "feed_forward_length", 0), gguf_meta_int(f, arch, "block_count", 0));
        fprintf(fp, "  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n  \"head_dim\": %ld,\n", heads,
                kv_heads, gguf_meta_int(f, arch, "attention.key_length", heads ? dim / heads : 0));
        fprintf(fp, "  \"max_position_embeddings\": %ld,\n  \"rms_norm_eps\": %.9g,\n  \"rope_theta\": %.9g,\n",
                gguf_meta_int(f, arch, "context_length", 2048),
                gguf_meta_num(f, arch, "attention.layer_norm_rms_epsilon", 1e-6),
                gguf_meta_num(f, arch, "rope.freq_base", 10000.0));
        fprintf(fp, "  \"vocab_size\": %lld,\n  \"tie_word_embeddings\": %s,\n", emb ? (long long)emb->shape[0] : 0LL,
                lc_gguf_find(f, "output.weight") ? "false" : "true");
        if (bos >= 0) fprintf(fp, "  \"bos_token_id\": %lld,\n", (long long)bos);
        if (eos >= 0) fprintf(fp, "  \"eos_token_id\": %lld,\n", (long long)eos);
        if (!strcmp(arch, "qwen2")) fprintf(fp, "  \"use_sliding_window\": false,\n");
        if (!strcmp(arch, "qwen3")) fprintf(fp, "  \"attention_bias\": false,\n");
        fprintf(fp, "  \"hidden_act\": \"silu\",\n  \"torch_dtype\": \"float32\"\n}\n");
    }
    if (fclose(fp)) { fprintf(stderr, "lolcats: error: %s: write failed\n", path); goto done; }
    if (outsafe_hf_commit(out)) goto done;
    printf("wrote %s/config.json and %s/model.safetensors (%s, %d tensors)\n", out, out, arch, n);
    rc = 0;
done:
    for (i = 0; bufs && i < n; i++) free(bufs[i]);
    free(bufs); free(ts); free(names);
    lc_gguf_close(f);
    return rc;
}
