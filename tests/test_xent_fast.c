/* test_xent_fast.c - the fast form of the next-token cross-entropy
   (>>xent-fast: vector float exp, sums in double lanes) against the reference
   lc_xent_fwd_bwd at odd V (1, 7, 33, 1000, 32000) with extreme logits
   (+-80, -inf entries, a row with one NaN), an ignored row, in place
   (dlogits = logits) and loss-only. Rule: loss |a - r| <= 1e-6 |r|; gradient
   |a - r| <= 1e-5 |r| + atol, atol 1e-35 off the label and 4 float ulp of 1/n
   at the label (where the reference itself subtracts 1/n in float). Each SIMD
   level the CPU has is checked, the fast form counted as taken
   (LOLCATS_COUNT_FAST), and LOLCATS_SIMD_SCALAR gives the reference bit for
   bit with no fast entry (a reference-only build: no fast entry at all).
   The primitive P->exp_sumd of each SIMD level is also checked on its own
   against lc__exp_sumd_ref (case_exp_sumd). */
#define LOLCATS_COUNT_FAST
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"

#include <string.h>

#define T_ 6

static float *logits_for(int V, lc_rng *g, int *labels) {
    float *l = (float *)malloc(sizeof(float) * (size_t)T_ * (size_t)V);
    int t, v;
    for (t = 0; t < T_ * V; t++) l[t] = 3.0f * lc_rng_normal(g);
    for (t = 0; t < T_; t++) labels[t] = (int)(lc_rng_u64(g) % (uint64_t)V);
    labels[2] = -1;  // ignored row
    for (v = 0; v < V; v++) {
        if (v % 5 == 1) l[(size_t)1 * V + v] = 80.0f;      // row 1: large logits
        if (v % 3 == 2) l[(size_t)3 * V + v] = -80.0f;     // row 3: large negative
        if (v % 4 == 3) l[(size_t)4 * V + v] = -INFINITY;  // row 4: masked entries
    }
    if (V > 1 && labels[4] % 4 == 3) labels[4]--;  // the label itself is not masked
    return l;
}

/* loss and gradient of one form compared with the reference */
static void compare(const char *what, double loss, const float *d, double rloss, const float *rd,
                    const int *labels, int V, int n) {
    double inv = 1.0 / n, worst = 0;
    size_t i, bad = 0, wi = 0;
    CHECK(fabs(loss - rloss) <= 1e-6 * fabs(rloss), "%s V=%d: loss %.9g vs reference %.9g", what, V, loss,
          rloss);
    if (!d) return;
    for (i = 0; i < (size_t)T_ * V; i++) {
        int lab = (int)(i % (size_t)V) == labels[i / (size_t)V];
        double a = (double)d[i], r = (double)rd[i], err = fabs(a - r);
        double lim = 1e-5 * fabs(r) + (lab ? 4 * 1.2e-7 * inv : 1e-35);
        if (!(err <= lim)) bad++;
        if (err / (lim > 0 ? lim : 1) > worst || err != err) { worst = err / lim; wi = i; }
    }
    printf("  %-28s V=%-6d loss %.9g (ref %.9g) grad worst err/limit %.3f at %zu %s\n", what, V, loss,
           rloss, worst, wi, bad ? "FAIL" : "PASS");
    CHECK(bad == 0, "%s V=%d: %zu gradient entries outside the limit", what, V, bad);
}

static void case_v(int V, int simd, lc_rng *g) {
    int labels[T_], n = 0, nr = 0, t, k;
    float *l = logits_for(V, g, labels);
    size_t nf = (size_t)T_ * V;
    float *rd = (float *)malloc(sizeof(float) * nf), *d = (float *)malloc(sizeof(float) * nf);
    float *ip = (float *)malloc(sizeof(float) * nf);
    double rl, fl;
    unsigned long cnt = 0;
    lc_ctx ctx;
    char what[64];
    lc_ctx_init(&ctx);
    ctx.simd = simd;
    ctx.fast_count = &cnt;
    snprintf(what, sizeof what, "%s", lc_simd_name(simd));
    rl = lc_xent_fwd_bwd(rd, l, labels, T_, V, &nr);
    memset(d, 0x7f, sizeof(float) * nf);
    fl = lc__xent(&ctx, d, l, labels, T_, V, &n);
    for (t = 0, k = 0; t < T_; t++) {  // ignored rows: gradient set to 0
        size_t v;
        for (v = 0; v < (size_t)V && labels[t] < 0; v++) k += d[(size_t)t * V + v] != 0.0f;
    }
    CHECK(k == 0, "%s V=%d: %d nonzero gradient entries in the ignored row", what, V, k);
    CHECK(n == nr && n == T_ - 1, "%s V=%d: %d scored rows (reference %d)", what, V, n, nr);
    if (simd == LOLCATS_SIMD_SCALAR) {
        CHECK(cnt == 0, "scalar V=%d: no fast entry (%lu)", V, cnt);
        CHECK(fl == rl && !memcmp(d, rd, sizeof(float) * nf), "scalar V=%d: bit-identical to the reference", V);
    } else {
        CHECK(cnt > 0, "%s V=%d: the fast form is taken (%lu entries)", what, V, cnt);
        compare(what, fl, d, rl, rd, labels, V, n);
        memcpy(ip, l, sizeof(float) * nf);
        fl = lc__xent(&ctx, ip, ip, labels, T_, V, NULL);
        compare("  in place", fl, ip, rl, rd, labels, V, n);
        fl = lc__xent(&ctx, NULL, l, labels, T_, V, NULL);
        compare("  loss only", fl, NULL, rl, NULL, labels, V, n);
    }
    /* a NaN among the logits: NaN loss and a NaN row, as the reference's */
    l[(size_t)5 * V + (size_t)(V / 2)] = NAN;
    rl = lc_xent_fwd_bwd(rd, l, labels, T_, V, NULL);
    fl = lc__xent(&ctx, d, l, labels, T_, V, NULL);
    CHECK(rl != rl && fl != fl, "%s V=%d: NaN logit gives NaN loss (%g, reference %g)", what, V, fl, rl);
    {
        size_t v, nan_f = 0, nan_r = 0;
        for (v = 0; v < (size_t)V; v++) {
            nan_f += d[(size_t)5 * V + v] != d[(size_t)5 * V + v];
            nan_r += rd[(size_t)5 * V + v] != rd[(size_t)5 * V + v];
        }
        CHECK(nan_f == nan_r && nan_f == (size_t)V, "%s V=%d: NaN row gradient (%zu NaN, reference %zu)", what,
              V, nan_f, nan_r);
    }
    free(l); free(rd); free(d); free(ip);
}

/* The primitive itself at odd n (vector body and scalar tail): y and the
   double sum of P->exp_sumd against lc__exp_sumd_ref, with -inf, inputs
   below expf's normal range (0 in a vector, subnormal in expf), large ones
   and a NaN (the NaN and an overflowing input, a copy each). Rule: |a - r| <=
   4 float ulp |r|, sum likewise; sum without y bit-identical to with y. */
static void case_exp_sumd(int simd, lc_rng *g) {
    static const int ns[15] = {1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 63, 64, 65, 130, 257};
    const float sub = 1.5f;
    const double rtol = 4.8e-7;
    float x[257], y[257], r[257];
    lc_ctx ctx;
    const lc__prims *P;
    int k, i;
    char what[64];
    lc_ctx_init(&ctx);
    ctx.simd = simd;
    P = lc__prims_for(&ctx);
    CHECK(P->exp_sumd != lc__exp_sumd_ref, "%s: exp_sumd has a vector form", lc_simd_name(simd));
    for (k = 0; k < 15; k++) {
        int n = ns[k], bad;
        double s, s0, rs;
        for (i = 0; i < n; i++) {
            x[i] = 3.0f * lc_rng_normal(g);
            if (i % 7 == 3) x[i] = -INFINITY;
            if (i % 11 == 5) x[i] = sub - 95.0f;  // below LC__EXP_LO: 0
            if (i % 13 == 6) x[i] = sub + 80.0f;
        }
        rs = lc__exp_sumd_ref(r, x, sub, n);
        s = P->exp_sumd(y, x, sub, n);
        s0 = P->exp_sumd(NULL, x, sub, n);
        for (i = 0, bad = 0; i < n; i++)  // 0, or expf's subnormal in a scalar tail
            if (x[i] - sub < LC__EXP_LO) {
                bad += y[i] != 0.0f && y[i] != r[i];
                y[i] = r[i];
            }
        CHECK(bad == 0, "%s exp_sumd n=%d: %d inputs below expf's normal range not 0", lc_simd_name(simd), n,
              bad);
        snprintf(what, sizeof what, "%s exp_sumd y", lc_simd_name(simd));
        check_close(what, y, r, (size_t)n, 0.0, rtol);
        CHECK(fabs(s - rs) <= rtol * rs, "%s exp_sumd n=%d: sum %.17g vs reference %.17g",
              lc_simd_name(simd), n, s, rs);
        CHECK(s0 == s, "%s exp_sumd n=%d: sum without y %.17g, with y %.17g", lc_simd_name(simd), n, s0, s);
        x[n / 2] = sub + 89.0f;  // past expf's range: +inf
        s = P->exp_sumd(y, x, sub, n);
        CHECK(s == (double)INFINITY && y[n / 2] == INFINITY, "%s exp_sumd n=%d: overflow gives inf (%g)",
              lc_simd_name(simd), n, s);
        x[n / 2] = NAN;
        s = P->exp_sumd(y, x, sub, n);
        for (i = 0, bad = 0; i < n; i++) bad += i == n / 2 ? y[i] == y[i] : y[i] != y[i];
        CHECK(s != s && bad == 0, "%s exp_sumd n=%d: NaN gives NaN sum (%g), NaN only there (%d off)",
              lc_simd_name(simd), n, s, bad);
    }
}

int main(void) {
    static const int Vs[5] = {1, 7, 33, 1000, 32000};
    lc_ctx dflt;
    lc_rng g;
    int i, levels[3], nl = 0, k;
    lc_ctx_init(&dflt);
    lc_rng_seed(&g, 23);
    levels[nl++] = LOLCATS_SIMD_SCALAR;
    if (dflt.simd != LOLCATS_SIMD_SCALAR) levels[nl++] = dflt.simd;
    if (dflt.simd == LOLCATS_SIMD_AVX512) levels[nl++] = LOLCATS_SIMD_AVX2;
    printf("test_xent_fast: default path %s\n", lc_simd_name(dflt.simd));
    for (k = 0; k < nl; k++)
        for (i = 0; i < 5; i++) case_v(Vs[i], levels[k], &g);
    for (k = 1; k < nl; k++) case_exp_sumd(levels[k], &g);
    return check_done();
}
