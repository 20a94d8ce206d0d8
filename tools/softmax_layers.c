/* softmax_layers.c - see softmax_layers.h. */
#include "softmax_layers.h"
#include "args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SL_MAX_LAYERS 65536

int tool_softmax_layers_arg(const char *cmd, const char *v) {
    unsigned char *tmp;
    lc_error err;
    int bad;
    if (!strncmp(v, "auto:", 5)) return tool_arg_int("--softmax-layers auto:K", v + 5, 1, SL_MAX_LAYERS);
    tmp = (unsigned char *)malloc(SL_MAX_LAYERS);
    if (!tmp) tool_arg_fail(cmd, "--softmax-layers: out of memory");
    bad = lc_softmax_layers_parse(tmp, v, SL_MAX_LAYERS, &err) != LOLCATS_OK;
    free(tmp);
    if (bad) tool_arg_fail(cmd, "--softmax-layers: %s; or auto:K", err.msg);
    return 0;
}

void tool_softmax_layers_resolve(const char *cmd, const char *v, int n_layers, unsigned char *out) {
    lc_error err;
    if (lc_softmax_layers_parse(out, v, n_layers, &err) != LOLCATS_OK)
        tool_arg_fail(cmd, "--softmax-layers: %s", err.msg);
}

void tool_softmax_layers_auto(unsigned char *out, const double *layer_mse, int n_layers, int k) {
    char list[512];
    int l, next = -1;
    if (k > n_layers) k = n_layers;
    lc_softmax_layers_top(out, layer_mse, n_layers, k);
    lc_softmax_layers_format(list, sizeof list, out, n_layers);
    for (l = 0; l < n_layers; l++)   /* the best of the layers left linearized */
        if (!out[l] && (next < 0 || layer_mse[l] > layer_mse[next])) next = l;
    fprintf(stderr, "lolcats: --softmax-layers auto:%d: keeping layers %s softmax: the %d highest validation "
                    "attention-transfer losses after stage 1 (", k, list, k);
    for (l = 0; l < n_layers; l++)
        if (out[l]) fprintf(stderr, "layer %d: %.6g, ", l, layer_mse[l]);
    if (next >= 0) fprintf(stderr, "highest left linearized: layer %d: %.6g)\n", next, layer_mse[next]);
    else fprintf(stderr, "every layer)\n");
}

void tool_softmax_layers_memory(const char *who, const lc_model_config *c, const unsigned char *sl) {
    char list[512];
    int n = lc_softmax_layers_format(list, sizeof list, sl, c->n_layers);
    size_t per = sizeof(float) * 2 * (size_t)c->n_kv_heads * (size_t)c->head_dim;
    if (!n) return;
    fprintf(stderr, "%s: kept softmax layers %s: decode KV cache %zu bytes per token of context (%d layer%s x "
                    "keys and values x %d kv heads x head dim %d x 4 bytes); the %d linearized layers keep a "
                    "constant state\n", who, list, per * (size_t)n, n, n > 1 ? "s" : "", c->n_kv_heads,
            c->head_dim, c->n_layers - n);
}
