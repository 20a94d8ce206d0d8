/* cmd_convert.c - `lolcats convert --from-llama2c FILE --out DIR`. */
#include "tools.h"
#include "args.h"
#include "outsafe.h"
#include "standalone.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

static const char *convert_usage =
    "lolcats convert --from-llama2c FILE --out DIR [--tokenizer TOK] [--force]\n"
    "Converts a llama2.c checkpoint to a Hugging Face directory.\n"
    "  Writes a llama2.c checkpoint as a Hugging Face directory: config.json\n"
    "  (LlamaForCausalLM) and model.safetensors (F32), q/k rows permuted from\n"
    "  interleaved to rotate_half RoPE. DIR must be absent or empty; --force\n"
    "  replaces a non-empty DIR whole (atomically).\n"
    "  --tokenizer TOK  copy the tokenizer into DIR: a tokenizer.json as is; a\n"
    "                   llama2.c tokenizer.bin as DIR/tokenizer.bin (it has no\n"
    "                   tokenizer.json form: generate/eval find it, Hugging Face\n"
    "                   tools do not)\n"
    "lolcats convert --to-gguf OUT.gguf --model PATH [--type TYPE]: a GGUF file\n"
    "  (see `lolcats convert --to-gguf x --help`).\n"
    "lolcats convert FILE.gguf --out DIR: a Hugging Face directory from a GGUF file\n"
    "  (see `lolcats convert x.gguf --help`).";

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *tok = NULL;
    lc_model m;
    lc_error err;
    const char *dir;
    int i, force = 0;
    memset(&err, 0, sizeof err);
    for (i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--to-gguf")) return tool_convert_to_gguf(argc, argv);   /* tools/gguf_tool.c */
    for (i = 1; i < argc; i++)
        if (argv[i][0] != '-' && strlen(argv[i]) > 5 && !strcmp(argv[i] + strlen(argv[i]) - 5, ".gguf") &&
            (i == 1 || argv[i - 1][0] != '-' || !strcmp(argv[i - 1], "--force")))
            return tool_convert_from_gguf(argc, argv);

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            return tool_arg_help(convert_usage, NULL);
        }
        if (!strcmp(argv[i], "--force")) { force = 1; continue; }
        if (!strcmp(argv[i], "--from-llama2c")) in = tool_arg_value(argc, argv, &i);
        else if (!strcmp(argv[i], "--out")) out = tool_arg_value(argc, argv, &i);
        else if (!strcmp(argv[i], "--tokenizer")) tok = tool_arg_value(argc, argv, &i);
        else tool_arg_unknown(argv[0], argv[i], convert_usage, NULL);
    }
    if (!in || !out) tool_arg_fail(argv[0], "convert needs --from-llama2c FILE and --out DIR");
    outsafe_input("--from-llama2c", in, OUTSAFE_IN_FILE);
    outsafe_input("--tokenizer", tok, OUTSAFE_IN_FILE);
    outsafe_output("--out", out, OUTSAFE_OUT_HF);
    if (outsafe_begin(argc, argv, force, 1)) return 1;
    if (lc_model_load_llama2c(&m, in, &err)) return tool_report(&err);
    if (!(dir = outsafe_hf_dir(out))) {   /* DIR.tmp.<pid>, moved into place when whole */
        lc_model_free(&m);
        return 1;
    }
    if (lc_model_export_hf(&m, dir, &err)) {
        lc_model_free(&m);
        return tool_report(&err);
    }
    if (!tok) fprintf(stderr, "lolcats: convert: no --tokenizer: %s has no tokenizer (a llama2.c tokenizer.bin has "
                              "no tokenizer.json form; --tokenizer copies it in)\n", out);
    if ((tok && tool_hf_tokenizer_files(dir, NULL, tok, "convert")) || outsafe_hf_commit(out)) {
        lc_model_free(&m);
        return 1;
    }
    printf("wrote %s/config.json and %s/model.safetensors (%lld parameters, F32)\n", out, out,
           (long long)lc_model_param_count(&m));
    lc_model_free(&m);
    return 0;
}
