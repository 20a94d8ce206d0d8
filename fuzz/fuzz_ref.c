/* fuzz_ref.c - libFuzzer harness for the `lolcats ref` input: a safetensors
   case is read (lc_ref_case_from_st) and, when small, evaluated on both paths. */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lc_st_file *f = NULL;
    lc_error err;
    lc_ref_case rc;
    lc_ref_out out;
    float *owned = NULL;
    memset(&err, 0, sizeof err);
    if (lc_st_open_memory(&f, data, size, "case.safetensors", &err) != LOLCATS_OK) return 0;
    if (lc_ref_case_from_st(f, &rc, &owned, &err) == LOLCATS_OK) {
        double work = (double)rc.B * rc.H * rc.N * rc.N * (rc.D + rc.f + 1);
        if (rc.op >= LOLCATS_OP_MSE || work < 2e6) {
            lc_ctx ctx;
            int pass;
            lc_ctx_init(&ctx);
            for (pass = 0; pass < 2; pass++) {
                if (pass) ctx.simd = LOLCATS_SIMD_SCALAR;
                if (lc_ref_eval(&ctx, &rc, &out, &err) == LOLCATS_OK) lc_ref_out_free(&out);
            }
        }
    } else if (!strstr(err.msg, "case.safetensors") && err.code == LOLCATS_ERR_FORMAT) {
        abort();
    }
    lc_free(owned);
    lc_st_close(f);
    return 0;
}
