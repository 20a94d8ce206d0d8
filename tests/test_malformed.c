/* test_malformed.c - the malformed-input table: every kind of bad file the
   command-line tool can be handed (safetensors headers and tables, Hugging Face
   configs and weights, tokenizers, data files, `ref` cases) is written here,
   the command is run on it, and it must exit non-zero with a message that
   names the file and says what is wrong (the listed words). No ../shared.
   POSIX (system, mkdtemp). */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp[256];
static const char *bin;

static char *path_of(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp, name);
    return buf[k];
}

static void write_bytes(const char *name, const void *p, size_t n) {
    FILE *f = fopen(path_of(name), "wb");
    if (!f) return;
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

static void write_str(const char *name, const char *s) { write_bytes(name, s, strlen(s)); }

/* a raw safetensors file: 8-byte length, header text, then ndata bytes of data */
static void write_st(const char *name, const char *header, size_t ndata, uint64_t hlen_override) {
    size_t hl = strlen(header), i;
    uint64_t len = hlen_override ? hlen_override : (uint64_t)hl;
    unsigned char *b = (unsigned char *)calloc(8 + hl + ndata + 1, 1);
    if (!b) return;
    for (i = 0; i < 8; i++) b[i] = (unsigned char)(len >> (8 * i));
    memcpy(b + 8, header, hl);
    for (i = 0; i < ndata; i++) b[8 + hl + i] = (unsigned char)(i * 7);
    write_bytes(name, b, 8 + hl + ndata);
    free(b);
}

/* ---- a tiny Hugging Face model: dim 8, 2 heads of 4, 1 kv head, 1 layer, vocab 16 ---- */
static const char *good_config =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 8, \"intermediate_size\": 12, "
    "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"vocab_size\": 16, "
    "\"rms_norm_eps\": 1e-5, \"rope_theta\": 10000.0, \"max_position_embeddings\": 64, "
    "\"tie_word_embeddings\": true}";

static const char *tokenizer_json =
    "{\"model\": {\"type\": \"BPE\", \"byte_fallback\": false, \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2, "
    "\"\\u2581\": 3, \"a\": 4, \"b\": 5, \"\\u2581a\": 6, \"ab\": 7, \"c\": 8, \"d\": 9, \"e\": 10, \"f\": 11, "
    "\"g\": 12, \"h\": 13, \"i\": 14, \"j\": 15%s}, \"merges\": [\"\\u2581 a\", \"a b\"]}, \"added_tokens\": "
    "[{\"id\": 1, \"content\": \"<s>\", \"special\": true}, {\"id\": 2, \"content\": \"</s>\", \"special\": true}], "
    "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"\\u2581\"}, "
    "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\\u2581\"}]}}";

/* writes dir/{config.json, model.safetensors, tokenizer.json}; bad_q: q_proj
   of the wrong shape; drop_down: no down_proj; extra_vocab: the tokenizer has
   an id beyond the model's vocabulary */
static void write_model(const char *dir, const char *config, int bad_q, int drop_down, int extra_vocab) {
    static float data[4096];
    static const struct { const char *name; int r, c; } w[] = {
        {"model.embed_tokens.weight", 16, 8}, {"model.layers.0.input_layernorm.weight", 0, 8},
        {"model.layers.0.self_attn.q_proj.weight", 8, 8}, {"model.layers.0.self_attn.k_proj.weight", 4, 8},
        {"model.layers.0.self_attn.v_proj.weight", 4, 8}, {"model.layers.0.self_attn.o_proj.weight", 8, 8},
        {"model.layers.0.post_attention_layernorm.weight", 0, 8}, {"model.layers.0.mlp.gate_proj.weight", 12, 8},
        {"model.layers.0.mlp.up_proj.weight", 12, 8}, {"model.layers.0.mlp.down_proj.weight", 8, 12},
        {"model.norm.weight", 0, 8}};
    lc_tensor ts[11];
    lc_error err;
    char sub[300], tj[2048];
    int i, n = 0;
    for (i = 0; i < 4096; i++) data[i] = 0.01f * (float)(i % 13);
    snprintf(sub, sizeof sub, "%s", path_of(dir));
    mkdir(sub, 0700);
    for (i = 0; i < 11; i++) {
        lc_tensor *t = &ts[n];
        if (drop_down && strstr(w[i].name, "down_proj")) continue;
        memset(t, 0, sizeof *t);
        t->name = w[i].name;
        t->dtype = LOLCATS_DTYPE_F32;
        t->ndim = w[i].r ? 2 : 1;
        t->shape[0] = w[i].r ? w[i].r : w[i].c;
        t->shape[1] = w[i].c;
        if (bad_q && strstr(w[i].name, "q_proj")) t->shape[0] = 7;
        t->nbytes = sizeof(float) * (size_t)(w[i].r ? w[i].r : 1) * (size_t)w[i].c;
        if (bad_q && strstr(w[i].name, "q_proj")) t->nbytes = sizeof(float) * 7 * 8;
        t->data = data;
        n++;
    }
    snprintf(sub, sizeof sub, "%s/%s/model.safetensors", tmp, dir);
    if (lc_st_write(sub, ts, n, NULL, 0, &err)) printf("note: %s\n", err.msg);
    snprintf(sub, sizeof sub, "%s/config.json", dir);
    write_str(sub, config);
    snprintf(tj, sizeof tj, tokenizer_json, extra_vocab ? ", \"k\": 40" : "");
    snprintf(sub, sizeof sub, "%s/tokenizer.json", dir);
    write_str(sub, tj);
}

/* config.json with one field replaced: key's value text becomes val */
static void write_config_with(const char *dir, const char *key, const char *val) {
    char cfg[1024], pat[64], *p, *e;
    snprintf(cfg, sizeof cfg, "%s", good_config);
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    p = strstr(cfg, pat);
    if (p) {
        char tail[1024];
        p += strlen(pat);
        e = p + strcspn(p, ",}");
        snprintf(tail, sizeof tail, "%s", e);
        snprintf(p, sizeof cfg - (size_t)(p - cfg), "%s%s", val, tail);
    }
    write_model(dir, cfg, 0, 0, 0);
}

/* dir as write_model writes it, with the weights split into two shards listed
   in model.safetensors.index.json: shard 1 holds every tensor, shard 2 only
   extra (a tensor of shard 1 again, or one of a layer beyond the config);
   moved (or NULL): a tensor of shard 1 the index puts in shard 2 */
static void write_sharded(const char *dir, const char *extra, const char *moved) {
    static float data[64];
    char p1[512], p2[512], idx[8192];
    lc_st_file *f = NULL;
    lc_tensor t;
    lc_error err;
    size_t n;
    int i;
    write_model(dir, good_config, 0, 0, 0);
    snprintf(p1, sizeof p1, "%s/%s/model.safetensors", tmp, dir);
    snprintf(p2, sizeof p2, "%s/%s/model-00001-of-00002.safetensors", tmp, dir);
    if (rename(p1, p2) != 0 || lc_st_open(&f, p2, &err)) { printf("note: cannot shard %s\n", dir); return; }
    n = (size_t)snprintf(idx, sizeof idx, "{\"metadata\": {}, \"weight_map\": {");
    for (i = 0; i < lc_st_count(f); i++)
        if (strcmp(lc_st_tensor_at(f, i)->name, extra))
            n += (size_t)snprintf(idx + n, sizeof idx - n, "\"%s\": \"model-0000%d-of-00002.safetensors\", ",
                                  lc_st_tensor_at(f, i)->name,
                                  moved && !strcmp(lc_st_tensor_at(f, i)->name, moved) ? 2 : 1);
    snprintf(idx + n, sizeof idx - n, "\"%s\": \"model-00002-of-00002.safetensors\"}}", extra);
    lc_st_close(f);
    snprintf(p1, sizeof p1, "%s/model.safetensors.index.json", dir);
    write_str(p1, idx);
    memset(&t, 0, sizeof t);
    t.name = extra;
    t.dtype = LOLCATS_DTYPE_F32;
    t.ndim = 1;
    t.shape[0] = 8;
    t.nbytes = 8 * sizeof(float);
    t.data = data;
    snprintf(p2, sizeof p2, "%s/%s/model-00002-of-00002.safetensors", tmp, dir);
    if (lc_st_write(p2, &t, 1, NULL, 0, &err)) printf("note: %s\n", err.msg);
}

/* the good config with one more field */
static void write_config_plus(const char *dir, const char *field) {
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%.*s, %s}", (int)strlen(good_config) - 1, good_config, field);
    write_model(dir, cfg, 0, 0, 0);
}

/* ---- ref cases ---- */
static void write_ref(const char *name, int Nk, const char *op, size_t pad) {
    static float q[2 * 5 * 4], k[6 * 4], v[6 * 4];
    lc_tensor ts[3];
    const char *meta[2];
    lc_error err;
    int i;
    for (i = 0; i < 40; i++) q[i] = 0.1f * (float)(i % 7) - 0.3f;
    for (i = 0; i < 24; i++) { k[i] = 0.05f * (float)(i % 5); v[i] = 0.2f * (float)(i % 3) - 0.1f; }
    memset(ts, 0, sizeof ts);
    ts[0].name = "q"; ts[0].ndim = 4; ts[0].shape[0] = 1; ts[0].shape[1] = 2; ts[0].shape[2] = 5; ts[0].shape[3] = 4;
    ts[1].name = "k"; ts[1].ndim = 4; ts[1].shape[0] = 1; ts[1].shape[1] = 1; ts[1].shape[2] = Nk; ts[1].shape[3] = 4;
    ts[2] = ts[1]; ts[2].name = "v"; ts[2].shape[2] = 5;
    ts[0].data = q; ts[1].data = k; ts[2].data = v;
    for (i = 0; i < 3; i++) {
        ts[i].dtype = LOLCATS_DTYPE_F32;
        ts[i].nbytes = sizeof(float) * lc_tensor_numel(&ts[i]);
    }
    meta[0] = "op"; meta[1] = op;
    if (lc_st_write(path_of(name), ts, 3, meta, 1, &err)) { printf("note: %s\n", err.msg); return; }
    if (pad) {  /* the same file with its data area moved by pad bytes (header padded with spaces) */
        FILE *f = fopen(path_of(name), "rb");
        unsigned char *b, *o;
        long n;
        uint64_t hl = 0;
        int j;
        if (!f) return;
        fseek(f, 0, SEEK_END); n = ftell(f); fseek(f, 0, SEEK_SET);
        b = (unsigned char *)malloc((size_t)n);
        o = (unsigned char *)malloc((size_t)n + pad);
        if (b && o && fread(b, 1, (size_t)n, f) == (size_t)n) {
            for (j = 0; j < 8; j++) hl |= (uint64_t)b[j] << (8 * j);
            memcpy(o, b, 8 + hl);
            memset(o + 8 + hl, ' ', pad);
            memcpy(o + 8 + hl + pad, b + 8 + hl, (size_t)n - 8 - hl);
            hl += pad;
            for (j = 0; j < 8; j++) o[j] = (unsigned char)(hl >> (8 * j));
            fclose(f);
            f = NULL;
            write_bytes(name, o, (size_t)n + pad);
        }
        if (f) fclose(f);
        free(b);
        free(o);
    }
}

/* runs `bin args` (args use %T for the temporary directory); returns the exit
   status; the command's stderr is in *msg (static) */
static int run(const char *args, const char **msg) {
    static char out[8192];
    char cmd[4096], a[2048], *p;
    size_t n;
    FILE *f;
    int st;
    a[0] = 0;
    for (p = (char *)args, n = 0; *p && n < sizeof a - 300; p++) {
        if (p[0] == '%' && p[1] == 'T') { n += (size_t)snprintf(a + n, sizeof a - n, "%s", tmp); p++; }
        else a[n++] = *p, a[n] = 0;
    }
    snprintf(cmd, sizeof cmd, "%s %s >%s/out.txt 2>%s/err.txt", bin, a, tmp, tmp);
    st = system(cmd);
    snprintf(cmd, sizeof cmd, "%s/err.txt", tmp);
    out[0] = 0;
    f = fopen(cmd, "rb");
    if (f) {
        n = fread(out, 1, sizeof out - 1, f);
        out[n] = 0;
        fclose(f);
    }
    *msg = out;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int contains_ci(const char *s, const char *w) {
    size_t n = strlen(w), i;
    for (; *s; s++) {
        for (i = 0; i < n && s[i] && (s[i] | 32) == (w[i] | 32); i++) {}
        if (i == n) return 1;
    }
    return 0;
}

/* one row of the table: the command fails (not a crash) and its message holds
   every word of `expect` ('|'-separated) */
static void row(const char *what, const char *args, const char *expect) {
    const char *msg = "";
    char words[256], *w, *save = NULL;
    int rc = run(args, &msg), ok = rc != 0 && rc < 128, all = 1;
    snprintf(words, sizeof words, "%s", expect);
    for (w = strtok_r(words, "|", &save); w; w = strtok_r(NULL, "|", &save)) all &= contains_ci(msg, w);
    printf("  %-44s exit %-3d %s\n", what, rc, ok && all ? "ok" : "FAIL");
    if (!(ok && all)) printf("    command: lolcats %s\n    message: %s\n    expected words: %s\n", args, msg, expect);
    CHECK(ok && all, "%s", what);
}

int main(void) {
    const char *td = getenv("TMPDIR"), *msg = "";
    struct stat sb;
    bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    if (stat(bin, &sb) != 0) { printf("SKIPPED: %s not built\n0 passed, 0 failed\n", bin); return 0; }
    snprintf(tmp, sizeof tmp, "%s/lolcats_malformed_XXXXXX", td ? td : "/tmp");
    if (!mkdtemp(tmp)) { printf("cannot create a temporary directory\n0 passed, 1 failed\n"); return 1; }

    printf("safetensors files (lolcats inspect FILE)\n");
    write_st("trunc.safetensors", "{\"a\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [0, 32]}}", 12, 0);
    row("truncated data", "inspect %T/trunc.safetensors", "trunc.safetensors|a");
    write_st("hlen.safetensors", "{}", 0, 1000000);
    row("header length beyond the file", "inspect %T/hlen.safetensors", "hlen.safetensors|header");
    write_bytes("short.safetensors", "\x05\0\0", 3);
    row("file shorter than the length field", "inspect %T/short.safetensors", "short.safetensors");
    write_st("overlap.safetensors", "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}, "
             "\"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [8, 24]}}", 24, 0);
    row("overlapping offsets", "inspect %T/overlap.safetensors", "overlap.safetensors|overlap");
    write_st("oob.safetensors", "{\"a\": {\"dtype\": \"F32\", \"shape\": [250], \"data_offsets\": [0, 1000]}}", 16, 0);
    row("offsets out of bounds", "inspect %T/oob.safetensors", "oob.safetensors|a");
    write_st("dtype.safetensors", "{\"a\": {\"dtype\": \"F13\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 16, 0);
    row("unknown dtype", "inspect %T/dtype.safetensors", "dtype.safetensors|F13");
    write_st("ovf.safetensors", "{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 16], "
             "\"data_offsets\": [0, 16]}}", 16, 0);
    row("shape product overflows size_t", "inspect %T/ovf.safetensors", "ovf.safetensors|a");
    write_st("nbytes.safetensors", "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 8]}}", 8, 0);
    row("shape disagrees with the byte range", "inspect %T/nbytes.safetensors", "nbytes.safetensors|a");
    write_st("dup.safetensors", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
             "\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8, 0);
    row("duplicate tensor names", "inspect %T/dup.safetensors", "dup.safetensors|duplicate");
    write_st("json.safetensors", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1,], \"data_offsets\": [0, 4]}}", 4, 0);
    row("invalid JSON header", "inspect %T/json.safetensors", "json.safetensors");
    write_st("utf8.safetensors", "{\"a\xff\xfe\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, 0);
    row("non-UTF-8 header", "inspect %T/utf8.safetensors", "utf8.safetensors|utf");
    write_st("hole.safetensors", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 12, 0);
    row("data beyond the last tensor", "inspect %T/hole.safetensors", "hole.safetensors");

    printf("Hugging Face model directories (lolcats inspect DIR)\n");
    write_config_with("m_heads0", "num_attention_heads", "0");
    row("zero heads", "inspect %T/m_heads0", "config.json|heads");
    write_config_with("m_heads3", "num_attention_heads", "3");
    row("heads do not divide the hidden size", "inspect %T/m_heads3", "config.json|heads");
    write_config_with("m_kv3", "num_key_value_heads", "3");
    row("kv heads do not divide the heads", "inspect %T/m_kv3", "config.json|kv");
    write_config_with("m_huge", "num_hidden_layers", "100000000");
    row("absurd size (1e8 layers)", "inspect %T/m_huge", "config.json|layers|100000000");
    write_config_with("m_big", "hidden_size", "333333333333333333338");
    row("size beyond int (3e20)", "inspect %T/m_big", "config.json|hidden size");
    write_config_with("m_vocab", "vocab_size", "-5");
    row("negative vocab size", "inspect %T/m_vocab", "config.json|vocab");
    write_config_with("m_json", "hidden_size", "8,,");
    row("invalid JSON config", "inspect %T/m_json", "config.json");
    write_config_with("m_utf8", "architectures", "[\"Llama\xc3\x28\"]");
    row("non-UTF-8 config", "inspect %T/m_utf8", "config.json|utf");
    write_model("m_badq", good_config, 1, 0, 0);
    row("tensor shape disagrees with config", "inspect %T/m_badq", "q_proj|7");
    write_model("m_nodown", good_config, 0, 1, 0);
    row("missing tensor", "inspect %T/m_nodown", "down_proj|missing");
    write_model("m_ok", good_config, 0, 0, 0);
    CHECK(run("inspect %T/m_ok", &msg) == 0, "the well-formed tiny model loads: %s", msg);

    printf("config fields of the wrong type, ids outside the vocabulary, files that disagree with the config\n");
    write_config_with("m_lstr", "num_hidden_layers", "\"1\"");
    row("num_hidden_layers as a string", "inspect %T/m_lstr", "config.json|num_hidden_layers|string|integer");
    write_config_with("m_lflt", "num_hidden_layers", "1.5");
    row("num_hidden_layers 1.5", "inspect %T/m_lflt", "config.json|num_hidden_layers|1.5|integer");
    write_config_with("m_lbool", "num_hidden_layers", "true");
    row("num_hidden_layers true", "inspect %T/m_lbool", "config.json|num_hidden_layers|true|integer");
    write_config_with("m_epsstr", "rms_norm_eps", "\"1e-5\"");
    row("rms_norm_eps as a string", "inspect %T/m_epsstr", "config.json|rms_norm_eps|string|number");
    write_config_with("m_tiestr", "tie_word_embeddings", "1");
    row("tie_word_embeddings 1", "inspect %T/m_tiestr", "config.json|tie_word_embeddings|true or false");
    write_config_plus("m_eos", "\"eos_token_id\": 16");
    row("eos_token_id = vocab_size", "inspect %T/m_eos", "config.json|eos_token_id|16|vocab");
    write_config_plus("m_eosl", "\"eos_token_id\": [2, 99]");
    row("eos_token_id list with 99", "inspect %T/m_eosl", "config.json|eos_token_id|99|vocab");
    write_config_plus("m_bos", "\"bos_token_id\": -3");
    row("bos_token_id -3", "inspect %T/m_bos", "config.json|bos_token_id|-3");
    write_config_plus("m_eoss", "\"eos_token_id\": \"2\"");
    row("eos_token_id as a string", "inspect %T/m_eoss", "config.json|eos_token_id|string");
    write_config_plus("m_rs", "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": \"8\"}");
    row("rope_scaling.factor as a string", "inspect %T/m_rs", "config.json|rope_scaling.|factor|number");
    write_config_plus("m_eosok", "\"eos_token_id\": [2, 1], \"pad_token_id\": -1, \"sliding_window\": null");
    CHECK(run("inspect %T/m_eosok", &msg) == 0, "a config with an eos list, pad -1 and null window loads: %s", msg);
    write_sharded("m_layer", "model.layers.1.input_layernorm.weight", NULL);
    row("files hold a layer beyond num_hidden_layers", "inspect %T/m_layer",
        "num_hidden_layers = 1|model.layers.1.input_layernorm.weight|model-00002-of-00002");
    write_sharded("m_dup", "model.norm.weight", NULL);
    row("a tensor in two shards", "inspect %T/m_dup", "model.norm.weight|two shards|model-00001-of-00002|model-00002");
    write_sharded("m_idx", "lm_head.extra", "model.norm.weight");
    row("the index puts a tensor in a shard without it", "inspect %T/m_idx",
        "model.norm.weight|model-00002-of-00002.safetensors|does not hold it");
    write_sharded("m_shok", "lm_head.extra", NULL);
    CHECK(run("inspect %T/m_shok", &msg) == 0, "a model in two shards (an unused extra tensor) loads: %s", msg);

    printf("tokenizers and data\n");
    write_model("m_tok", good_config, 0, 0, 1);
    row("tokenizer id beyond the model's vocab", "generate --model %T/m_tok --prompt ab --steps 2", "tokenizer.json|41 tokens|16");
    write_str("bad_tok.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": -3}, \"merges\": []}}");
    row("negative tokenizer id", "generate --model %T/m_ok --tokenizer %T/bad_tok.json --prompt a --steps 1",
        "bad_tok.json");
    write_bytes("tok_trunc.bin", "\x10\0\0\0\0\0\0\0\x09\0\0\0ab", 14);
    row("truncated tokenizer.bin", "generate --model %T/m_ok --tokenizer %T/tok_trunc.bin --prompt a --steps 1",
        "tok_trunc.bin");
    write_str("empty.txt", "");
    row("empty data file", "eval --model %T/m_ok --data %T/empty.txt", "empty.txt|empty");
    write_str("ws.txt", " \n\n\t \n");
    row("whitespace-only data file", "eval --model %T/m_ok --data %T/ws.txt", "ws.txt|whitespace");
    write_str("bad.jsonl", "{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": 3, \"output\": \"b\"}\n");
    row("Alpaca record with a non-string field", "eval --model %T/m_ok --data %T/bad.jsonl", "bad.jsonl:2|instruction");
    write_str("bad2.jsonl", "{\"instruction\": \"a\", \"output\": \"b\"\n");
    row("Alpaca line that is not JSON", "eval --model %T/m_ok --data %T/bad2.jsonl", "bad2.jsonl:1");
    row("data file that does not exist", "eval --model %T/m_ok --data %T/nope.txt", "nope.txt");

    printf("files that are not what they seem (a FIFO, /dev/zero, a directory, UTF-16 text)\n");
    alarm(120);   /* a FIFO that blocks must fail the test, not hang it */
    CHECK(mkfifo(path_of("fifo"), 0600) == 0 && mkfifo(path_of("fifo.jsonl"), 0600) == 0, "mkfifo %s",
          path_of("fifo"));
    mkdir(path_of("adir"), 0700);
    row("FIFO as safetensors", "inspect %T/fifo", "fifo|FIFO");
    row("FIFO as the model", "eval --model %T/fifo --data %T/fifo", "fifo|FIFO");
    row("/dev/zero as the model", "eval --model /dev/zero --data %T/fifo", "/dev/zero|character device");
    row("directory without config.json as the model", "eval --model %T/adir --data %T/ws.txt", "adir|directory");
    row("FIFO as the data", "eval --model %T/m_ok --data %T/fifo", "fifo|FIFO");
    row("FIFO as Alpaca data", "eval --model %T/m_ok --data %T/fifo.jsonl", "fifo.jsonl|FIFO");
    row("/dev/zero as the data", "eval --model %T/m_ok --data /dev/zero", "/dev/zero|character device");
    row("directory as the data", "eval --model %T/m_ok --data %T/adir", "adir|is a directory");
    row("directory as training data", "distill --model %T/m_ok --data %T/adir --out %T/x.safetensors",
        "adir|is a directory");
    row("FIFO as the tokenizer", "generate --model %T/m_ok --tokenizer %T/fifo --prompt a --steps 1", "fifo|FIFO");
    row("/dev/zero as the tokenizer", "generate --model %T/m_ok --tokenizer /dev/zero --prompt a --steps 1",
        "/dev/zero|character device");
    row("directory as the tokenizer", "generate --model %T/m_ok --tokenizer %T/adir --prompt a --steps 1",
        "adir|directory");
    row("FIFO as a LoLCATs checkpoint", "eval --model %T/m_ok --data %T/ws.txt --lolcats %T/fifo", "fifo|FIFO");
    write_model("m_fifocfg", good_config, 0, 0, 0);
    remove(path_of("m_fifocfg/config.json"));
    CHECK(mkfifo(path_of("m_fifocfg/config.json"), 0600) == 0, "mkfifo config.json");
    row("FIFO as config.json", "inspect %T/m_fifocfg", "config.json|FIFO");
    write_model("m_fifoidx", good_config, 0, 0, 0);
    CHECK(mkfifo(path_of("m_fifoidx/model.safetensors.index.json"), 0600) == 0, "mkfifo index");
    row("FIFO as the shard index", "inspect %T/m_fifoidx", "index.json|FIFO");
    write_model("m_dirst", good_config, 0, 0, 0);
    remove(path_of("m_dirst/model.safetensors"));
    mkdir(path_of("m_dirst/model.safetensors"), 0700);
    row("directory as model.safetensors", "inspect %T/m_dirst", "model.safetensors|is a directory");
    CHECK(mkfifo(path_of("x.safetensors.state"), 0600) == 0, "mkfifo state");
    write_str("words.txt", "a b a b ab ab a b ab a b a b ab ab a b ab a b a b ab ab a b ab a b a b ab ab a b ab\n");
    row("FIFO as the training state (--resume)", "distill --model %T/m_ok --data %T/words.txt --seq-len 4 --out "
        "%T/x.safetensors --resume", "x.safetensors.state|FIFO");
    write_bytes("u16.txt", "\xff\xfeh\0e\0l\0l\0o\0 \0w\0o\0r\0l\0d\0\n\0", 26);
    row("UTF-16 text with a byte-order mark", "eval --model %T/m_ok --data %T/u16.txt", "u16.txt|UTF-16|UTF-8");
    write_bytes("u16be.txt", "\0h\0e\0l\0l\0o\0 \0w\0o\0r\0l\0d\0\n", 24);
    row("UTF-16 text without a byte-order mark", "distill --model %T/m_ok --data %T/u16be.txt --out %T/u.safetensors",
        "u16be.txt|UTF-16|convert");
    write_bytes("u32.txt", "\xff\xfe\0\0h\0\0\0i\0\0\0", 12);
    row("UTF-32 text", "eval --model %T/m_ok --data %T/u32.txt", "u32.txt|UTF-32");
    write_bytes("u16.jsonl", "\xff\xfe{\0}\0\n\0", 8);
    row("UTF-16 Alpaca data", "eval --model %T/m_ok --data %T/u16.jsonl", "u16.jsonl|UTF-16");
    alarm(0);

    printf("ref cases (lolcats ref IN OUT)\n");
    write_ref("ref_dims.safetensors", 6, "softmax_attention", 0);
    row("k and v of different lengths", "ref %T/ref_dims.safetensors %T/o.safetensors", "ref_dims.safetensors|k");
    write_ref("ref_op.safetensors", 5, "fancy_attention", 0);
    row("unknown op", "ref %T/ref_op.safetensors %T/o.safetensors", "ref_op.safetensors|fancy_attention");
    write_ref("ref_lin.safetensors", 5, "linear_attention", 0);
    row("linear op without feature maps", "ref %T/ref_lin.safetensors %T/o.safetensors",
        "ref_lin.safetensors|feature_map_q.weight");
    CHECK(stat(path_of("o.safetensors"), &sb) != 0, "no output file after the failed ref runs");

    printf("unaligned data is read correctly (not an error)\n");
    write_ref("ref_a.safetensors", 5, "softmax_attention", 0);
    write_ref("ref_u.safetensors", 5, "softmax_attention", 3);
    CHECK(run("ref %T/ref_a.safetensors %T/ya.safetensors", &msg) == 0, "aligned ref: %s", msg);
    CHECK(run("ref %T/ref_u.safetensors %T/yu.safetensors", &msg) == 0, "unaligned ref (data at 8 + header + 3): %s",
          msg);
    CHECK(run("compare %T/ya.safetensors %T/yu.safetensors --atol 0 --rtol 0", &msg) == 0,
          "unaligned input gives other outputs: %s", msg);
    {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (check_fail_ == 0 && system(cmd) != 0) printf("note: could not remove %s\n", tmp);
    }
    return check_done();
}
