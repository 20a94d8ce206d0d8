/* test_lora_fast.c - the LoRA products of lc_linear_fwd / lc_linear_bwd as
   GEMMs (>>lora-fast) against the reference per-token loops
   (LOLCATS_SIMD_SCALAR) at odd sizes: T in {1, 7, 8, 13, 130} (below 8 the
   fast form declines and the loop runs), O, I not multiples of the vector
   width, r in {1, 3, 8}; y, xa, dx, dA, dB accumulate into nonzero buffers.
   Rule |a - r| <= 1e-5 max(1, max |r|) + 1e-4 |r| (float sums of T or O
   terms in another order). The default
   table installs the form and it runs (returns 1) from T = 8; the scalar
   table has none (a reference-only build: none anywhere). */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"

#include <string.h>

static lc_rng g_rng;

/* n floats: a copy of src, or s times N(0,1) draws when src is NULL */
static float *mk(const float *src, size_t n, float s) {
    float *p = (float *)malloc(sizeof(float) * (n ? n : 1));
    size_t i;
    for (i = 0; i < n; i++) p[i] = src ? src[i] : s * lc_rng_normal(&g_rng);
    return p;
}
#define randn(n, s) mk(NULL, (n), (s))
#define dupf(x, n) mk((x), (n), 1.0f)

static void one_case(const lc_ctx *fast, int T, int O, int I, int r) {
    lc_ctx ref;
    float *x = randn((size_t)T * I, 1), *w = randn((size_t)O * I, 0.3f), *A = randn((size_t)r * I, 0.3f);
    float *B = randn((size_t)O * r, 0.3f), *dy = randn((size_t)T * O, 1);
    float *o[2][5];  // y, xa, dx, dA, dB of the fast and the reference path
    size_t n[5] = {(size_t)T * O, (size_t)T * r, (size_t)T * I, (size_t)r * I, (size_t)O * r};
    static const char *nm[5] = {"y", "xa", "dx", "dA", "dB"};
    char what[96];
    int p, j;
    float *init[5];
    for (j = 0; j < 5; j++) init[j] = randn(n[j], j == 1 ? 0.0f : 0.5f);
    ref = *fast;
    ref.simd = LOLCATS_SIMD_SCALAR;
    for (p = 0; p < 2; p++) {
        const lc_ctx *c = p ? &ref : fast;
        for (j = 0; j < 5; j++) o[p][j] = dupf(init[j], n[j]);
        lc_linear_fwd(c, o[p][0], o[p][1], x, w, LOLCATS_DTYPE_F32, A, B, 2.0f, r, T, O, I);
        lc_linear_bwd(c, o[p][2], NULL, o[p][3], o[p][4], dy, x, o[p][1], w, LOLCATS_DTYPE_F32, A, B, 2.0f, r, T,
                      O, I);
    }
    for (j = 0; j < 5; j++) {  // atol 1e-5 of the tensor's largest entry: sums of T or O terms cancel
        double mx = 0;
        size_t i;
        for (i = 0; i < n[j]; i++) mx = fabs((double)o[1][j][i]) > mx ? fabs((double)o[1][j][i]) : mx;
        snprintf(what, sizeof what, "T=%d O=%d I=%d r=%d %s", T, O, I, r, nm[j]);
        check_close(what, o[0][j], o[1][j], n[j], 1e-5 * (mx > 1 ? mx : 1), 1e-4);
    }
    {   /* the table's form itself: taken from LC__LORA_GEMM_T tokens, absent on the scalar table */
        const lc__kern *Kf = lc__kern_for(fast), *Kr = lc__kern_for(&ref);
        float *y = dupf(init[0], n[0]), *xa = dupf(init[1], n[1]);
        int took = Kf->lora_fwd ? Kf->lora_fwd(fast, y, xa, x, A, B, 2.0f, r, T, O, I) : 0;
        CHECK(Kr->lora_fwd == NULL && Kr->lora_bwd == NULL, "the scalar table has no LoRA form");
        if (fast->simd == LOLCATS_SIMD_SCALAR)
            CHECK(!took, "a reference-only build: no LoRA form");
        else
            CHECK(took == (T >= 8 /* LC__LORA_GEMM_T */) && Kf->lora_bwd != NULL,
                  "T=%d: the default table's LoRA form %s", T, took ? "ran" : "declined");
        free(y); free(xa);
    }
    for (p = 0; p < 2; p++)
        for (j = 0; j < 5; j++) free(o[p][j]);
    for (j = 0; j < 5; j++) free(init[j]);
    free(x); free(w); free(A); free(B); free(dy);
}

int main(void) {
    static const int Ts[5] = {1, 7, 8, 13, 130}, rs[3] = {1, 3, 8};
    lc_ctx ctx;
    int a, b;
    lc_ctx_init(&ctx);
    lc_rng_seed(&g_rng, 23);
    printf("test_lora_fast: default path %s\n", lc_simd_name(ctx.simd));
    for (a = 0; a < 5; a++)
        for (b = 0; b < 3; b++) one_case(&ctx, Ts[a], a % 2 ? 33 : 7, a % 2 ? 65 : 11, rs[b]);
    one_case(&ctx, 257, 130, 63, 8);
    return check_done();
}
