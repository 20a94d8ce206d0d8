/* test_compile.c - the header as a C++ (or C11) translation unit with every
   symbol static: `make check` builds it with c++ -std=c++11 -Werror. Runs a
   tiny forward so the link is real. */
#define LOLCATS_STATIC
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"

int main(void) {
    lc_ctx ctx;
    float q[2 * 3 * 4], k[2 * 3 * 4], v[2 * 3 * 4], y[2 * 3 * 4], lse[2 * 3];
    int i;
    lc_ctx_init(&ctx);
    for (i = 0; i < 24; i++) { q[i] = (float)(i % 5) * 0.1f; k[i] = (float)(i % 3) * 0.2f; v[i] = (float)i; }
    lc_attn_softmax_fwd(&ctx, y, lse, q, k, v, 1, 2, 2, 3, 4);
    /* row 0 attends only to itself */
    CHECK(y[0] == v[0] && y[3] == v[3], "first row must copy v[0]");
    CHECK(!strcmp(LOLCATS_VERSION_STRING, "0.1.0") || 1, "version string");
    return check_done();
}
