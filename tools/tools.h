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
int cmd_inspect(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_distill(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
int cmd_linearize(int argc, char **argv);

/* tools/util.c */
void tool_die_usage(const char *usage);
int tool_report(const lc_error *err);   /* prints "lolcats: <msg>", returns 1 */

/* tools/cmd_generate.c: the model's tokenizer (explicit path, else the HF
   directory's tokenizer.json); prints the error and returns 1 on failure. */
int tool_load_tokenizer(lc_tokenizer *tok, const lc_model *m, const char *model_path,
                        const char *tok_path, lc_error *err);
#endif
