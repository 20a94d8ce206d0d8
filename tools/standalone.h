/* standalone.h - outputs that stand alone (issue 20): what a merged or
   converted Hugging Face directory carries besides config.json and
   model.safetensors, the LoRA of a stage 2 checkpoint as a PEFT adapter, and
   the detection of a LoLCATs directory by generate / eval. */
#ifndef LOLCATS_STANDALONE_H
#define LOLCATS_STANDALONE_H
#include "tools.h"

/* Copies the tokenizer files (tokenizer.json, tokenizer_config.json,
   special_tokens_map.json, tokenizer.model, generation_config.json) that the
   model directory model_path has into dir; then the --tokenizer file the run
   used (tok_path, may be NULL): a .json one becomes dir/tokenizer.json, a
   llama2.c tokenizer.bin is copied as dir/tokenizer.bin with one stderr line
   (it has no tokenizer.json form). cmd names the command in that line.
   Returns 0, or 1 after printing the error. */
int tool_hf_tokenizer_files(const char *dir, const char *model_path, const char *tok_path, const char *cmd);

/* DIR/tokenizer.json, or DIR/tokenizer.bin when only that one is there (a
   llama2.c tokenizer copied in by convert --tokenizer or --merge); into buf. */
const char *tool_hf_tokenizer_path(const char *dir, char *buf, size_t cap);

/* Adds a "lolcats" object to dir/config.json (written by lc_lolcats_export_hf
   for teacher m from checkpoint ckpt, whose parameters are lp) and a second
   "architectures" entry naming the linearized model. Returns 0 or 1. */
int tool_hf_mark_lolcats(const char *dir, const lc_model *m, const lc_lolcats *lp, const char *ckpt,
                         const char *model_path);

/* The LoRA of lp as a PEFT adapter for teacher m (Hugging Face layout: q/k
   rows of a llama2.c model permuted to rotate_half) into dir:
   adapter_config.json, adapter_model.safetensors, README.md. Returns 0 or 1. */
int tool_peft_write(const char *dir, const lc_model *m, const lc_lolcats *lp, const char *ckpt,
                    const char *model_path);

/* `inspect DIR`: when DIR's model.safetensors holds LoLCATs tensors, prints
   "  LoLCATs linearized (tk, window 64, ...)"; else nothing. */
void tool_inspect_lolcats(const char *path);

/* generate / eval: a model directory with LoLCATs tensors runs linearized
   (lo->lolcats = model_path, one stderr line) unless softmax (--softmax) or
   lo->lolcats is already set. Returns 0, or 2 after a usage error. */
int tool_lm_auto(const char *model_path, tool_lm_opts *lo, int softmax, const char *cmd);
#endif
