/* softmax_layers.h - `--softmax-layers LIST|auto:K` of distill / finetune /
   linearize (issue 19: kept softmax layers, the original's softmax_attentions):
   the flag's checks, the auto:K choice after stage 1, the decode memory line. */
#ifndef LOLCATS_TOOL_SOFTMAX_LAYERS_H
#define LOLCATS_TOOL_SOFTMAX_LAYERS_H
#include "lolcats.h"

/* At parse time: "auto:K" (K 1..65536: returns K) or a list (syntax and
   repeats checked: returns 0); dies (exit 2) naming the flag otherwise. */
int tool_softmax_layers_arg(const char *cmd, const char *v);
/* Once the model is loaded: the list into out (n_layers bytes); an index
   outside the model dies (exit 2) naming it. */
void tool_softmax_layers_resolve(const char *cmd, const char *v, int n_layers, unsigned char *out);
/* auto:K after stage 1: the k layers of highest validation attention-transfer
   loss (layer_mse, per layer) into out; prints them and why on stderr. */
void tool_softmax_layers_auto(unsigned char *out, const double *layer_mse, int n_layers, int k);
/* "kept softmax layers 7,15: decode KV cache N bytes per token ..." on stderr
   (nothing when sl keeps none). */
void tool_softmax_layers_memory(const char *who, const lc_model_config *c, const unsigned char *sl);
#endif
