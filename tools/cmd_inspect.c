/* cmd_inspect.c - `lolcats inspect PATH`: config, tensors, parameter count. */
#include "tools.h"
#include "args.h"
#include "standalone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *inspect_usage =
    "lolcats inspect PATH\n"
    "Config, tensors and parameter count of a model or a safetensors file.\n"
    "  PATH: a llama2.c .bin checkpoint or a Hugging Face directory: prints the\n"
    "  config, every weight (Hugging Face names) with dtype and shape, and the\n"
    "  parameter count. A .safetensors file (a LoLCATs checkpoint, a `ref` case):\n"
    "  its metadata and every tensor with dtype, shape and byte size, validated.\n"
    "  A .gguf file: version, alignment, every metadata entry and every tensor\n"
    "  (dtype, shape in PyTorch order, bytes), validated.";

static void inspect_w(const char *name, const lc_weight *w, int vec) {
    if (vec)
        printf("  %-48s %-5s [%lld]\n", name, lc_dtype_name(w->dtype), (long long)w->cols);
    else
        printf("  %-48s %-5s [%lld, %lld]\n", name, lc_dtype_name(w->dtype), (long long)w->rows,
               (long long)w->cols);
}

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && !strcmp(s + n - k, tail);
}

/* One safetensors file: metadata, then the tensor table (opening validates it). */
static int inspect_st(const char *path) {
    lc_st_file *f = NULL;
    lc_error err;
    long long params = 0;
    int i, d;
    if (lc_st_open(&f, path, &err)) return tool_report(&err);
    printf("%s (safetensors, %d tensors)\n", path, lc_st_count(f));
    if (lc_st_meta_count(f) > 0) printf("metadata:\n");
    for (i = 0; i < lc_st_meta_count(f); i++) {
        const char *k, *v;
        lc_st_meta_at(f, i, &k, &v);
        printf("  %-24s %s\n", k, v ? v : "");
    }
    if (lc_st_meta(f, "softmax_layers") && lc_st_meta(f, "n_kv_heads") && lc_st_meta(f, "head_dim")) {
        const char *s = lc_st_meta(f, "softmax_layers");   /* kept softmax layers: their decode cost */
        long n = *s ? 1 : 0, per = 2L * atol(lc_st_meta(f, "n_kv_heads")) * atol(lc_st_meta(f, "head_dim")) * 4;
        for (; *s; s++) n += *s == ',';
        printf("decode KV cache of the %ld kept softmax layer%s: %ld bytes per token of context\n", n,
               n == 1 ? "" : "s", n * per);
    }
    printf("tensors:\n");
    for (i = 0; i < lc_st_count(f); i++) {
        const lc_tensor *t = lc_st_tensor_at(f, i);
        char shape[160];
        size_t n = 0;
        long long el = 1;
        shape[0] = 0;
        for (d = 0; d < t->ndim && n < sizeof shape - 24; d++) {
            n += (size_t)snprintf(shape + n, sizeof shape - n, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
            el *= (long long)t->shape[d];
        }
        params += el;
        printf("  %-64s %-5s [%s] %zu bytes\n", t->name, lc_dtype_name(t->dtype), shape, t->nbytes);
    }
    printf("elements: %lld\n", params);
    lc_st_close(f);
    return 0;
}

int cmd_inspect(int argc, char **argv) {
    lc_model m;
    lc_error err;
    const lc_model_config *c;
    int i;
    char nm[128];
    memset(&err, 0, sizeof err);
    for (i = 1; i < argc; i++) {
        if (tool_arg_is_help(argv[i])) return tool_arg_help(inspect_usage, NULL);
        if (argv[i][0] == '-' && argv[i][1]) tool_arg_unknown(argv[0], argv[i], inspect_usage, NULL);
    }
    if (argc != 2) tool_arg_fail(argv[0], "inspect takes one PATH, got %d arguments", argc - 1);
    if (ends_with(argv[1], ".safetensors") || ends_with(argv[1], ".state")) return inspect_st(argv[1]);
    if (ends_with(argv[1], ".gguf")) return tool_inspect_gguf(argv[1]);
    if (lc_model_load(&m, argv[1], &err)) return tool_report(&err);
    c = &m.cfg;
    printf("%s (%s)\n", argv[1], m.format == LOLCATS_MODEL_HF ? "Hugging Face" : "llama2.c");
    tool_inspect_lolcats(argv[1]);   /* a --merge directory: tools/standalone.c */
    printf("  architecture       %s\n", c->arch);
    printf("  hidden_size        %d\n  intermediate_size  %d\n  layers             %d\n",
           c->dim, c->hidden_dim, c->n_layers);
    printf("  heads / kv heads   %d / %d (head_dim %d)\n", c->n_heads, c->n_kv_heads, c->head_dim);
    printf("  vocab_size         %d\n  context            %d\n", c->vocab_size, c->seq_len);
    printf("  rms_norm_eps       %g\n  rope_theta         %g (%s%s)\n", (double)c->norm_eps,
           (double)c->rope_theta, c->rope_interleaved ? "interleaved pairs" : "rotate_half",
           c->rope_llama3 ? ", llama3 scaling" : "");
    if (c->rope_llama3)
        printf("  rope_scaling       factor %g low %g high %g original %d\n",
               (double)c->rope_factor, (double)c->rope_low_freq_factor,
               (double)c->rope_high_freq_factor, c->rope_orig_max_pos);
    printf("  embeddings         %s\n  bos / eos          %d / %d\n",
           c->tied ? "tied (classifier = embedding)" : "untied", c->bos_id, c->eos_id);
    printf("tensors:\n");
    inspect_w("model.embed_tokens.weight", &m.tok_emb, 0);
    for (i = 0; i < c->n_layers; i++) {
        const lc_layer_weights *l = &m.layers[i];
#define INSPECT_L(suffix, w, vec) snprintf(nm, sizeof nm, "model.layers.%d.%s", i, suffix); inspect_w(nm, &l->w, vec)
        INSPECT_L("input_layernorm.weight", rms_att, 1);
        INSPECT_L("self_attn.q_proj.weight", wq, 0);
        INSPECT_L("self_attn.k_proj.weight", wk, 0);
        INSPECT_L("self_attn.v_proj.weight", wv, 0);
        INSPECT_L("self_attn.o_proj.weight", wo, 0);
        INSPECT_L("post_attention_layernorm.weight", rms_ffn, 1);
        INSPECT_L("mlp.gate_proj.weight", w1, 0);
        INSPECT_L("mlp.up_proj.weight", w3, 0);
        INSPECT_L("mlp.down_proj.weight", w2, 0);
#undef INSPECT_L
    }
    inspect_w("model.norm.weight", &m.rms_final, 1);
    if (!c->tied) inspect_w("lm_head.weight", &m.wcls, 0);
    printf("parameters: %lld\n", (long long)lc_model_param_count(&m));
    lc_model_free(&m);
    return 0;
}
