/* two_tu_b.c - second translation unit of test_two_tu: holds the implementation. */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"

float two_tu_hybrid_first(void);

float two_tu_hybrid_first(void) {
    lc_ctx ctx;
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    float q[2] = {1, 0}, k[2] = {0, 1}, v[2] = {1, 1}, phi[2] = {0.5f, 0.5f}, wf = 0;
    float y[2], m, den;
    lc_ctx_init(&ctx);
    lc_attn_hybrid_fwd(&ctx, y, NULL, &m, &den, NULL, q, k, v, phi, phi, &wf, NULL, NULL, 1, 1, 1, 1, 2, 2, &hc);
    return y[0];
}
