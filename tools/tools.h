/* tools.h - shared declarations of the `lolcats` command's subcommands and
   helpers. Each subcommand lives in tools/cmd_<name>.c. */
#ifndef LOLCATS_TOOLS_H
#define LOLCATS_TOOLS_H
#include "lolcats.h"

/* subcommands: argv[0] is the subcommand name */
int cmd_ref(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_eval_tasks(int argc, char **argv);   /* eval --task: tools/cmd_eval_tasks.c */
int cmd_inspect(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_distill(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
int cmd_linearize(int argc, char **argv);
int cmd_stitch(int argc, char **argv);
int cmd_cache_inputs(int argc, char **argv);

/* tools/util.c */
void tool_die_usage(const char *usage);
int tool_report(const lc_error *err);   /* prints "lolcats: <msg>", returns 1 */

/* tools/gguf_tool.c: `inspect FILE.gguf`, `convert --to-gguf` */
int tool_inspect_gguf(const char *path);
int tool_convert_to_gguf(int argc, char **argv);
int tool_convert_from_gguf(int argc, char **argv);

/* tools/finite.c: non-finite values. tool_json_num prints v with fmt, or
   null when v is NaN / Inf (never a bare nan in JSON); tool_nonfinite_stop
   explains a training stop at a non-finite value (kind: where it showed) and
   names only the files that exist. */
#include <stdio.h>
void tool_json_num(FILE *f, const char *fmt, double v);
int tool_all_finite(const float *x, size_t n);
enum { TOOL_NF_START = 0, TOOL_NF_UPDATE = 1, TOOL_NF_LATER = 2 };
void tool_nonfinite_stop(int stage, long long step, const char *what, double value, int kind, double lr,
                         const char *ckpt, const char *state);

/* tools/cmd_generate.c: the model's tokenizer (explicit path, else the HF
   directory's tokenizer.json); prints the error and returns 1 on failure. */
int tool_load_tokenizer(lc_tokenizer *tok, const lc_model *m, const char *model_path,
                        const char *tok_path, lc_error *err);

/* tools/lm.c: the base model (KV cache) or, with --lolcats, the linearized
   model (constant-memory state) behind one forward call. */
typedef struct {
    const char *lolcats;          /* checkpoint, merged directory or "identity"; NULL: base model */
    int window;                   /* > 0: override the checkpoint's window */
    const char *variant;          /* "tk" / "sw": override, or NULL */
    int sinks;                    /* > 0: override the checkpoint's attention sinks */
} tool_lm_opts;

typedef struct {
    lc_ctx cx;                    /* code path of the base model's forward */
    const lc_model *m;
    int linear;                   /* 1: lc_lolcats_forward */
    int ctx;                      /* positions (base: the KV cache) */
    lc_run run;
    lc_lolcats lp;
    lc_lolcats_run lrun;
    float *identity_mem;
    int loaded;
    float *logits;                /* (V) of the last token fed */
} tool_lm;

int tool_lm_init(tool_lm *lm, const lc_model *m, const tool_lm_opts *o, int ctx, int max_tokens,
                 lc_error *err);
int tool_lm_forward(tool_lm *lm, const int *tokens, int n, float *logits_all, lc_error *err);
void tool_lm_reset(tool_lm *lm);
long long tool_lm_pos(const tool_lm *lm);
int tool_lm_max_tokens(const tool_lm *lm);
void tool_lm_describe(const tool_lm *lm, char *buf, size_t cap);
void tool_lm_free(tool_lm *lm);
#endif
