/* compute.h - the --compute f32|bf16 flag of distill, finetune, linearize,
   cache-inputs, eval and generate (lc_ctx.compute, >>gemm-bf16). */
#ifndef TOOL_COMPUTE_H
#define TOOL_COMPUTE_H
#include "lolcats.h"

#define TOOL_COMPUTE_USAGE \
    "  --compute f32|bf16   products of the big GEMMs (projections, MLP, LM head, their\n" \
    "                       backward): float32 (default) or bf16 operands summed in float32\n" \
    "                       (AVX512_BF16; other CPUs: float32, with a note)\n"

/* Parses the flag's value (strict: f32 or bf16, else a usage error). */
void tool_arg_compute(const char *flag, const char *s);
/* Sets ctx->compute to the mode asked for when this ctx runs it; else keeps
   float32 and prints a one-line note (once). Returns the mode set. */
int tool_compute_apply(lc_ctx *ctx);
/* "bf16" when bf16 was asked for and runs here, else NULL (the default). */
const char *tool_compute_name(void);
#endif
