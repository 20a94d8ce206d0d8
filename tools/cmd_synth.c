/* cmd_synth.c - `lolcats synth --like ARCH --out DIR`: a Hugging Face
   directory with a real architecture's shapes (optionally fewer layers) and
   seeded random weights, sharded like the originals, for testing scale
   without downloads. Weights are uniform with std 0.02 (norms 1), BF16 by
   default; shards are written one at a time (each atomically), so memory
   stays at one shard. */
#define _POSIX_C_SOURCE 200809L
#include "tools.h"
#include "args.h"
#include "outsafe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const char *name, *arch;
    int dim, hidden, layers, heads, kv_heads, vocab, max_pos, tied, sliding_window;
    double theta;
    int llama3_scaling;  /* Llama 3.1 rope_scaling */
    int bos, eos;
    int qwen, head_dim;  /* Qwen2 (q/k/v biases) or Qwen3 (q_norm/k_norm, explicit head_dim); 0: Llama */
} synth_arch;

static const synth_arch synth_archs[] = {
    {"llama3-8b", "LlamaForCausalLM", 4096, 14336, 32, 32, 8, 128256, 8192, 0, 0, 500000, 0, 128000, 128001, 0, 0},
    {"llama3.1-8b", "LlamaForCausalLM", 4096, 14336, 32, 32, 8, 128256, 131072, 0, 0, 500000, 1, 128000, 128001, 0, 0},
    {"llama3-70b", "LlamaForCausalLM", 8192, 28672, 80, 64, 8, 128256, 8192, 0, 0, 500000, 0, 128000, 128001, 0, 0},
    {"llama3.1-70b", "LlamaForCausalLM", 8192, 28672, 80, 64, 8, 128256, 131072, 0, 0, 500000, 1, 128000, 128001, 0, 0},
    {"llama3.1-405b", "LlamaForCausalLM", 16384, 53248, 126, 128, 8, 128256, 131072, 0, 0, 500000, 1, 128000, 128001, 0, 0},
    {"mistral-7b", "MistralForCausalLM", 4096, 14336, 32, 32, 8, 32000, 32768, 0, 4096, 10000, 0, 1, 2, 0, 0},
    {"llama2-7b", "LlamaForCausalLM", 4096, 11008, 32, 32, 32, 32000, 4096, 0, 0, 10000, 0, 1, 2, 0, 0},
    {"tinyllama-1.1b", "LlamaForCausalLM", 2048, 5632, 22, 32, 4, 32000, 2048, 0, 0, 10000, 0, 1, 2, 0, 0},
    {"smollm-135m", "LlamaForCausalLM", 576, 1536, 30, 9, 3, 49152, 2048, 1, 0, 10000, 0, 0, 0, 0, 0},
    /* Qwen: sliding_window present but use_sliding_window false, as released */
    {"qwen2-0.5b", "Qwen2ForCausalLM", 896, 4864, 24, 14, 2, 151936, 131072, 1, 131072, 1000000, 0, 151643, 151643, 2, 0},
    {"qwen2.5-0.5b", "Qwen2ForCausalLM", 896, 4864, 24, 14, 2, 151936, 32768, 1, 32768, 1000000, 0, 151643, 151643, 2, 0},
    {"qwen2.5-1.5b", "Qwen2ForCausalLM", 1536, 8960, 28, 12, 2, 151936, 131072, 1, 131072, 1000000, 0, 151643, 151643, 2, 0},
    {"qwen2.5-7b", "Qwen2ForCausalLM", 3584, 18944, 28, 28, 4, 152064, 131072, 0, 131072, 1000000, 0, 151643, 151643, 2, 0},
    {"qwen3-0.6b", "Qwen3ForCausalLM", 1024, 3072, 28, 16, 8, 151936, 40960, 1, 0, 1000000, 0, 151643, 151645, 3, 128},
    {"qwen3-8b", "Qwen3ForCausalLM", 4096, 12288, 36, 32, 8, 151936, 40960, 0, 0, 1000000, 0, 151643, 151645, 3, 128},
};

typedef struct {
    char name[160];
    int64_t rows, cols;  /* cols 0: a vector of rows */
    int is_norm;
} synth_tensor;

static const char synth_usage[] =
    "lolcats synth --like ARCH --out DIR [--layers K] [--seed S] [--dtype bf16|f32] [--shard-mb M] [--force]\n"
    "              [--dim N] [--hidden N] [--heads N] [--kv-heads N] [--head-dim N] [--vocab N]\n"
    "Writes a Hugging Face directory (config.json, sharded safetensors, index) with the\n"
    "shapes of ARCH and seeded random weights (uniform, std 0.02; norms 1).\n"
    "  ARCH: llama3-8b llama3.1-8b llama3-70b llama3.1-70b llama3.1-405b mistral-7b\n"
    "        llama2-7b tinyllama-1.1b smollm-135m qwen2-0.5b qwen2.5-0.5b qwen2.5-1.5b\n"
    "        qwen2.5-7b qwen3-0.6b qwen3-8b\n"
    "  --layers K     keep only the first K layers (default: all)\n"
    "  --dim, --hidden, --heads, --kv-heads, --head-dim, --vocab N\n"
    "                 replace one size (a tiny model with the architecture's structure:\n"
    "                 biases, q/k norms, tying, RoPE and config fields kept)\n"
    "  -s, --seed S   seed of the weights (1)\n"
    "  --dtype T      bf16 or f32 (bf16)\n"
    "  --shard-mb M   target shard size in MiB (default 2000)\n"
    "  --force        replace a non-empty DIR whole (default: DIR must be absent or empty)\n";

static uint64_t synth_next(uint64_t *s) {  /* splitmix64: fast and seedable per tensor */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void synth_fill(void *dst, int bf16, size_t n, int is_norm, uint64_t seed) {
    const float scale = 0.02f * 1.7320508f * 2.0f / 16777216.0f;  /* uniform(-a,a), std 0.02 */
    size_t i;
    for (i = 0; i < n; i++) {
        float v = is_norm == 1 ? 1.0f : ((float)(synth_next(&seed) >> 40) - 8388608.0f) * scale;
        if (is_norm == 2) v = 1.0f + 10.0f * v;   /* a q/k norm: 1 +- 0.35 */
        if (bf16) ((uint16_t *)dst)[i] = lc_f32_to_bf16(v);
        else ((float *)dst)[i] = v;
    }
}

static int synth_write_text(const char *path, const char *text) {
    char tmp[1200];
    FILE *f;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f) return -1;
    fputs(text, f);
    if (fclose(f) != 0) return -1;
    return rename(tmp, path);
}

int cmd_synth(int argc, char **argv) {
    const char *like = NULL, *out = NULL, *dtype = "bf16", *dir;
    int layers = -1, i, l, n_t = 0, bf16, n_shards, shard, force = 0;
    uint64_t seed = 1;
    double shard_mb = 2000;
    const synth_arch *A = NULL;
    synth_arch shrunk;
    int o_dim = 0, o_hidden = 0, o_heads = 0, o_kv = 0, o_hd = 0, o_vocab = 0;
    synth_tensor *ts;
    int *shard_of;
    size_t esz, total = 0, budget;
    char path[1024], *buf;
    lc_error err;
    for (i = 1; i < argc; i++) {
        const char *a = tool_arg_alias(argv[i]);
        if (tool_arg_is_help(a)) return tool_arg_help(synth_usage, NULL);
        else if (!strcmp(a, "--force")) force = 1;
        else if (!strcmp(a, "--like")) like = tool_arg_value(argc, argv, &i);
        else if (!strcmp(a, "--out")) out = tool_arg_value(argc, argv, &i);
        else if (!strcmp(a, "--layers")) layers = tool_arg_int(a, tool_arg_value(argc, argv, &i), 1, 1 << 16);
        else if (!strcmp(a, "--seed")) seed = tool_arg_u64(a, tool_arg_value(argc, argv, &i));
        else if (!strcmp(a, "--dtype")) dtype = tool_arg_choice(a, tool_arg_value(argc, argv, &i), "bf16|f32") ? "f32" : "bf16";
        else if (!strcmp(a, "--dim")) o_dim = tool_arg_int(a, tool_arg_value(argc, argv, &i), 1, 1 << 20);
        else if (!strcmp(a, "--hidden")) o_hidden = tool_arg_int(a, tool_arg_value(argc, argv, &i), 1, 1 << 22);
        else if (!strcmp(a, "--heads")) o_heads = tool_arg_int(a, tool_arg_value(argc, argv, &i), 1, 4096);
        else if (!strcmp(a, "--kv-heads")) o_kv = tool_arg_int(a, tool_arg_value(argc, argv, &i), 1, 4096);
        else if (!strcmp(a, "--head-dim")) o_hd = tool_arg_int(a, tool_arg_value(argc, argv, &i), 2, 4096);
        else if (!strcmp(a, "--vocab")) o_vocab = tool_arg_int(a, tool_arg_value(argc, argv, &i), 1, 1 << 24);
        else if (!strcmp(a, "--shard-mb")) shard_mb = tool_arg_num(a, tool_arg_value(argc, argv, &i), 0, 1 << 20, 1);
        else tool_arg_unknown(argv[0], argv[i], synth_usage, NULL);
    }
    if (!like || !out) tool_arg_fail(argv[0], "synth needs --like ARCH and --out DIR");
    for (i = 0; i < (int)(sizeof synth_archs / sizeof synth_archs[0]); i++)
        if (!strcmp(like, synth_archs[i].name)) A = &synth_archs[i];
    if (!A) { fprintf(stderr, "lolcats synth: unknown --like '%s' (see --help for the list)\n", like); return 2; }
    shrunk = *A;
    if (o_dim) shrunk.dim = o_dim;
    if (o_hidden) shrunk.hidden = o_hidden;
    if (o_heads) shrunk.heads = o_heads;
    if (o_kv) shrunk.kv_heads = o_kv;
    if (o_vocab) shrunk.vocab = o_vocab;
    if (o_hd) shrunk.head_dim = o_hd;
    else if (!shrunk.head_dim || o_dim || o_heads) shrunk.head_dim = shrunk.dim / shrunk.heads;
    if (shrunk.heads % shrunk.kv_heads || shrunk.head_dim % 2 || (!o_hd && shrunk.dim % shrunk.heads)) {
        fprintf(stderr, "lolcats: error: synth: --heads %d must be a multiple of --kv-heads %d, and head_dim %d even "
                "(give --head-dim when --dim is not a multiple of --heads)\n", shrunk.heads, shrunk.kv_heads,
                shrunk.head_dim);
        return 2;
    }
    if (shrunk.bos >= shrunk.vocab || shrunk.eos >= shrunk.vocab) shrunk.bos = shrunk.eos = 0;
    A = &shrunk;
    if (strcmp(dtype, "bf16") && strcmp(dtype, "f32")) { fprintf(stderr, "lolcats synth: --dtype must be bf16 or f32\n"); return 2; }
    if (layers < 0 || layers > A->layers) layers = A->layers;
    if (layers == 0 || !(shard_mb > 0)) { fprintf(stderr, "lolcats synth: --layers and --shard-mb must be positive\n"); return 2; }
    bf16 = !strcmp(dtype, "bf16");
    esz = bf16 ? 2 : 4;
    outsafe_output("--out", out, OUTSAFE_OUT_HF);   /* written whole into DIR.tmp.<pid>, then moved */
    if (outsafe_begin(argc, argv, force, 1) || !(dir = outsafe_hf_dir(out))) return 1;

    ts = (synth_tensor *)calloc((size_t)layers * 12 + 3, sizeof *ts);
    shard_of = (int *)calloc((size_t)layers * 12 + 3, sizeof(int));
    if (!ts || !shard_of) { fprintf(stderr, "lolcats synth: out of memory\n"); return 1; }
#define ADD(nm, r, c, nrm) do { snprintf(ts[n_t].name, sizeof ts[n_t].name, "%s", nm); ts[n_t].rows = (r); ts[n_t].cols = (c); ts[n_t].is_norm = (nrm); n_t++; } while (0)
    ADD("model.embed_tokens.weight", A->vocab, A->dim, 0);
    for (l = 0; l < layers; l++) {
        int hd = A->head_dim;
        char nm[160];
#define LADD(suffix, r, c, nrm) do { snprintf(nm, sizeof nm, "model.layers.%d.%s", l, suffix); ADD(nm, r, c, nrm); } while (0)
        LADD("input_layernorm.weight", A->dim, 0, 1);
        LADD("self_attn.q_proj.weight", (int64_t)A->heads * hd, A->dim, 0);
        LADD("self_attn.k_proj.weight", (int64_t)A->kv_heads * hd, A->dim, 0);
        LADD("self_attn.v_proj.weight", (int64_t)A->kv_heads * hd, A->dim, 0);
        LADD("self_attn.o_proj.weight", A->dim, (int64_t)A->heads * hd, 0);
        LADD("post_attention_layernorm.weight", A->dim, 0, 1);
        LADD("mlp.gate_proj.weight", A->hidden, A->dim, 0);
        LADD("mlp.up_proj.weight", A->hidden, A->dim, 0);
        LADD("mlp.down_proj.weight", A->dim, A->hidden, 0);
        if (A->qwen == 2) {  /* random biases (not 0) so a test sees them used */
            LADD("self_attn.q_proj.bias", (int64_t)A->heads * hd, 0, 0);
            LADD("self_attn.k_proj.bias", (int64_t)A->kv_heads * hd, 0, 0);
            LADD("self_attn.v_proj.bias", (int64_t)A->kv_heads * hd, 0, 0);
        } else if (A->qwen == 3) {  /* norms 1 + noise, so a swapped q/k norm shows */
            LADD("self_attn.q_norm.weight", hd, 0, 2);
            LADD("self_attn.k_norm.weight", hd, 0, 2);
        }
#undef LADD
    }
    ADD("model.norm.weight", A->dim, 0, 1);
    if (!A->tied) ADD("lm_head.weight", A->vocab, A->dim, 0);
#undef ADD
    /* assign shards greedily in order */
    budget = (size_t)(shard_mb * 1048576.0);
    n_shards = 1;
    {
        size_t cur = 0;
        for (i = 0; i < n_t; i++) {
            size_t b = (size_t)ts[i].rows * (size_t)(ts[i].cols ? ts[i].cols : 1) * esz;
            if (cur > 0 && cur + b > budget) { n_shards++; cur = 0; }
            shard_of[i] = n_shards;
            cur += b;
            total += b;
        }
    }
    printf("lolcats synth: %s, %d of %d layers, %.2f GB of %s in %d shard(s) -> %s\n", A->name, layers, A->layers,
           (double)total / 1e9, dtype, n_shards, out);
    for (shard = 1; shard <= n_shards; shard++) {
        lc_tensor list[1024];
        int n = 0;
        size_t bytes = 0, off = 0;
        for (i = 0; i < n_t; i++)
            if (shard_of[i] == shard) bytes += (size_t)ts[i].rows * (size_t)(ts[i].cols ? ts[i].cols : 1) * esz;
        buf = (char *)malloc(bytes ? bytes : 1);
        if (!buf) { fprintf(stderr, "lolcats synth: out of memory for a %.1f MiB shard; lower --shard-mb\n", bytes / 1048576.0); return 1; }
        for (i = 0; i < n_t && n < 1024; i++) {
            size_t cnt;
            if (shard_of[i] != shard) continue;
            cnt = (size_t)ts[i].rows * (size_t)(ts[i].cols ? ts[i].cols : 1);
            synth_fill(buf + off, bf16, cnt, ts[i].is_norm, seed * 1000003ULL + (uint64_t)i);
            memset(&list[n], 0, sizeof list[n]);
            list[n].name = ts[i].name;
            list[n].dtype = bf16 ? LOLCATS_DTYPE_BF16 : LOLCATS_DTYPE_F32;
            list[n].ndim = ts[i].cols ? 2 : 1;
            list[n].shape[0] = ts[i].rows;
            list[n].shape[1] = ts[i].cols;
            list[n].nbytes = cnt * esz;
            list[n].data = buf + off;
            off += cnt * esz;
            n++;
        }
        if (n_shards == 1) snprintf(path, sizeof path, "%s/model.safetensors", dir);
        else snprintf(path, sizeof path, "%s/model-%05d-of-%05d.safetensors", dir, shard, n_shards);
        outsafe_tmp(path);   /* a signal removes the unfinished directory */
        outsafe_st_tmp(-1, path);
        if (lc_st_write(path, list, n, NULL, 0, &err) != LOLCATS_OK) { free(buf); return tool_report(&err); }
        free(buf);
        fprintf(stderr, "  wrote %s (%d tensors)\n", path, n);
    }
    {   /* config.json and the index */
        char *text = (char *)malloc((size_t)n_t * 220 + 4096);
        int p = 0;
        if (!text) return 1;
        p += sprintf(text + p,
                     "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n  \"hidden_size\": %d,\n"
                     "  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
                     "  \"num_key_value_heads\": %d,\n  \"vocab_size\": %d,\n  \"max_position_embeddings\": %d,\n"
                     "  \"rms_norm_eps\": %s,\n  \"rope_theta\": %.1f,\n  \"tie_word_embeddings\": %s,\n"
                     "  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n  \"torch_dtype\": \"%s\",\n"
                     "  \"hidden_act\": \"silu\"",
                     A->arch, strstr(A->arch, "Mistral") ? "mistral" : A->qwen == 2 ? "qwen2" : A->qwen == 3 ? "qwen3" : "llama", A->dim, A->hidden, layers, A->heads,
                     A->kv_heads, A->vocab, A->max_pos, A->qwen ? "1e-06" : "1e-05", A->theta, A->tied ? "true" : "false", A->bos, A->eos,
                     bf16 ? "bfloat16" : "float32");
        if (A->qwen) {
            p += sprintf(text + p, ",\n  \"head_dim\": %d,\n  \"use_sliding_window\": false,\n  \"sliding_window\": ",
                         A->head_dim);
            p += A->sliding_window ? sprintf(text + p, "%d", A->sliding_window) : sprintf(text + p, "null");
            p += sprintf(text + p, ",\n  \"max_window_layers\": %d", layers);
            if (A->qwen == 3) p += sprintf(text + p, ",\n  \"attention_bias\": false");
        } else if (A->sliding_window) p += sprintf(text + p, ",\n  \"sliding_window\": %d", A->sliding_window);
        if (A->llama3_scaling)
            p += sprintf(text + p, ",\n  \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
                                   "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                                   "\"original_max_position_embeddings\": 8192}");
        p += sprintf(text + p, ",\n  \"lolcats_synth\": {\"like\": \"%s\", \"seed\": %llu}\n}\n", A->name,
                     (unsigned long long)seed);
        snprintf(path, sizeof path, "%s/config.json", dir);
        if (synth_write_text(path, text) != 0) { fprintf(stderr, "lolcats synth: cannot write %s\n", path); return 1; }
        if (n_shards > 1) {
            p = sprintf(text, "{\n  \"metadata\": {\"total_size\": %zu},\n  \"weight_map\": {\n", total);
            for (i = 0; i < n_t; i++)
                p += sprintf(text + p, "    \"%s\": \"model-%05d-of-%05d.safetensors\"%s\n", ts[i].name, shard_of[i],
                             n_shards, i + 1 < n_t ? "," : "");
            sprintf(text + p, "  }\n}\n");
            snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
            if (synth_write_text(path, text) != 0) { fprintf(stderr, "lolcats synth: cannot write %s\n", path); return 1; }
        }
        free(text);
    }
    free(ts);
    free(shard_of);
    return outsafe_hf_commit(out);
}
