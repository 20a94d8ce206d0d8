/* lolcats.c - the `lolcats` command: a dispatcher over tools/cmd_*.c.
   This translation unit holds the one copy of the lolcats.h implementation. */
#define LOLCATS_IMPLEMENTATION
#include "tools.h"
#include "args.h"
#include "fileguard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} tool_cmd;

static const tool_cmd tool_cmds[] = {
    {"ref", cmd_ref, "run the reference kernels on a safetensors case"},
    {"demo", cmd_demo, "the whole pipeline on an embedded toy language (no downloads)"},
    {"synth", cmd_synth, "a Hugging Face directory with a real architecture's shapes and random weights"},
    {"compare", cmd_compare, "per-tensor error table between two safetensors files"},
    {"generate", cmd_generate, "generate text with a llama2.c or Hugging Face model"},
    {"eval", cmd_eval, "mean NLL / perplexity of a model on a text or Alpaca JSONL file"},
    {"inspect", cmd_inspect, "config, tensors and parameter count of a model"},
    {"convert", cmd_convert, "convert a llama2.c checkpoint to a Hugging Face directory"},
    {"distill", cmd_distill, "stage 1: attention transfer into feature maps and window factors"},
    {"finetune", cmd_finetune, "stage 2: LoRA through the linearized model"},
    {"linearize", cmd_linearize, "both stages (or LoRA only: --no-attention-transfer)"},
    {"cache-inputs", cmd_cache_inputs, "write the teacher's hidden states entering blocks, for distill --inputs"},
    {"stitch", cmd_stitch, "join the per-block checkpoints of distill --layers into one"},
};

static void usage(FILE *f) {
    size_t i;
    fprintf(f, "lolcats %s - LoLCATs linearized attention\n\nusage: lolcats <command> [args]\n\n",
            LOLCATS_VERSION_STRING);
    for (i = 0; i < sizeof tool_cmds / sizeof tool_cmds[0]; i++)
        fprintf(f, "  %-10s %s\n", tool_cmds[i].name, tool_cmds[i].help);
    fprintf(f, "\n`lolcats help <command>` (or `lolcats <command> --help`) shows a command's options.\n"
               "Numbers are checked whole and in range; -m -p -n -t -s are --model --prompt\n"
               "--n-predict --threads --seed (as in llama.cpp).\n");
}

int main(int argc, char **argv) {
    size_t i;
    setvbuf(stdout, NULL, _IOLBF, 0);   /* live through a pipe (`make demo | tee`); stderr is unbuffered */
    tool_omp_passive(argv);   /* OMP_WAIT_POLICY=passive unless set: re-executes once */
    if (argc >= 3 && !strcmp(argv[1], "help")) {   /* `lolcats help CMD` = `lolcats CMD --help` */
        static char help_flag[] = "--help";
        char *hv[3];
        hv[0] = argv[2];
        hv[1] = help_flag;
        hv[2] = NULL;
        for (i = 0; i < sizeof tool_cmds / sizeof tool_cmds[0]; i++)
            if (!strcmp(argv[2], tool_cmds[i].name)) return tool_cmds[i].run(2, hv);
        fprintf(stderr, "lolcats: error: unknown command '%s' (`lolcats --help` lists them)\n", argv[2]);
        return 2;
    }
    if (argc == 2 && !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        lc_ctx ctx;
        lc_ctx_init(&ctx);
        printf("lolcats %s (%s)\n", LOLCATS_VERSION_STRING, lc_simd_name(ctx.simd));
        return 0;
    }
    tool_fileguard_install(argc, argv);   /* SIGBUS on a mapped input: name the file */
    for (i = 0; i < sizeof tool_cmds / sizeof tool_cmds[0]; i++)
        if (!strcmp(argv[1], tool_cmds[i].name)) return tool_cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "lolcats: error: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
