/* test_two_tu.c - the implementation in one translation unit (two_tu_b.c),
   declarations only here: catches missing `static`s and duplicate symbols. */
#include "lolcats.h"
#include "check.h"

float two_tu_hybrid_first(void); /* from two_tu_b.c */

int main(void) {
    lc_ctx ctx;
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    lc_ctx_init(&ctx);
    CHECK(hc.window == 64 && hc.variant == LOLCATS_WINDOW_TK, "hybrid defaults: tk, w=64");
    CHECK(lc_hybrid_mask(&hc, 10, 9, 0) == 3, "tk N<=w quirk visible through the API");
    CHECK(two_tu_hybrid_first() == 1.0f, "a one-token hybrid returns v");
    CHECK(lc_simd_name(ctx.simd)[0] != 0, "simd name");
    return check_done();
}
