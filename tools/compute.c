/* compute.c - see compute.h. */
#include <stdio.h>
#include "args.h"
#include "compute.h"

static int compute_asked;    /* LOLCATS_COMPUTE_* from --compute */
static int compute_ran = -1; /* the mode the last applied ctx runs; -1: none yet */

void tool_arg_compute(const char *flag, const char *s) {
    compute_asked = tool_arg_choice(flag, s, "f32|bf16") ? LOLCATS_COMPUTE_BF16 : LOLCATS_COMPUTE_F32;
}

int tool_compute_apply(lc_ctx *ctx) {
    int mode = compute_asked;
    if (mode == LOLCATS_COMPUTE_BF16 && !lc_compute_supported(ctx, mode)) {
        if (compute_ran != LOLCATS_COMPUTE_F32)
            fprintf(stderr, "lolcats: note: --compute bf16: this CPU has no AVX512_BF16 (%s); computing in f32\n",
                    lc_simd_name(ctx->simd));
        mode = LOLCATS_COMPUTE_F32;
    }
    ctx->compute = mode;
    compute_ran = mode;
    return mode;
}

const char *tool_compute_name(void) {
    lc_ctx c;
    if (compute_asked != LOLCATS_COMPUTE_BF16) return NULL;
    lc_ctx_init(&c);
    return lc_compute_supported(&c, LOLCATS_COMPUTE_BF16) ? "bf16" : NULL;
}
