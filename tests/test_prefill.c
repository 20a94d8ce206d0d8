/* test_prefill.c - the teacher's prefill (lc_model_forward over a chunk of T
   tokens) on the fast path against the scalar reference (ctx.simd scalar):
   random in-memory models with odd sizes, grouped-query attention, Mistral's
   sliding window, chunks at positions pos0 > 0 (KV cache offset) of lengths
   that cross the query block; lc_model_forward_nll fast vs scalar (within
   1e-6 relative) and results that do not depend on the thread count. */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static lc_rng rng;

static float *rnd(size_t n, float s) {
    float *p = (float *)malloc(sizeof(float) * n);
    size_t i;
    for (i = 0; i < n; i++) p[i] = s * (2.0f * lc_rng_uniform(&rng) - 1.0f);
    return p;
}

static lc_weight wt(float *p, int64_t r, int64_t c) {
    lc_weight w;
    w.data = p; w.dtype = LOLCATS_DTYPE_F32; w.rows = r; w.cols = c;
    return w;
}

static void ones(float *p, int n) {
    int i;
    for (i = 0; i < n; i++) p[i] = 1.0f + 0.1f * (float)(i % 7) / 7.0f;
}

/* dim, hidden, layers, heads, kv heads, head_dim, vocab, sliding window */
static void make_model(lc_model *m, int dim, int hid, int L, int H, int Hk, int D, int V, int W) {
    int l;
    memset(m, 0, sizeof *m);
    m->cfg.dim = dim; m->cfg.hidden_dim = hid; m->cfg.n_layers = L; m->cfg.n_heads = H;
    m->cfg.n_kv_heads = Hk; m->cfg.head_dim = D; m->cfg.vocab_size = V; m->cfg.seq_len = 512;
    m->cfg.norm_eps = 1e-5f; m->cfg.rope_theta = 10000.0f; m->cfg.sliding_window = W;
    m->cfg.bos_id = 1; m->cfg.eos_id = 2;
    m->tok_emb = wt(rnd((size_t)V * dim, 1.0f), V, dim);
    m->rms_final = wt(rnd((size_t)dim, 1.0f), 1, dim);
    ones((float *)m->rms_final.data, dim);
    m->wcls = wt(rnd((size_t)V * dim, 0.5f), V, dim);
    m->layers = (lc_layer_weights *)calloc((size_t)L, sizeof *m->layers);
    for (l = 0; l < L; l++) {
        lc_layer_weights *w = &m->layers[l];
        float s = 1.5f / sqrtf((float)dim);   /* sharp enough attention to matter */
        w->rms_att = wt(rnd((size_t)dim, 1.0f), 1, dim);
        ones((float *)w->rms_att.data, dim);
        w->rms_ffn = wt(rnd((size_t)dim, 1.0f), 1, dim);
        ones((float *)w->rms_ffn.data, dim);
        w->wq = wt(rnd((size_t)H * D * dim, 3 * s), H * D, dim);
        w->wk = wt(rnd((size_t)Hk * D * dim, 3 * s), Hk * D, dim);
        w->wv = wt(rnd((size_t)Hk * D * dim, s), Hk * D, dim);
        w->wo = wt(rnd((size_t)dim * H * D, s), dim, H * D);
        w->w1 = wt(rnd((size_t)hid * dim, s), hid, dim);
        w->w3 = wt(rnd((size_t)hid * dim, s), hid, dim);
        w->w2 = wt(rnd((size_t)dim * hid, s), dim, hid);
    }
}

static void free_model(lc_model *m) {
    int l;
    for (l = 0; l < m->cfg.n_layers; l++) {
        lc_layer_weights *w = &m->layers[l];
        free((void *)w->rms_att.data); free((void *)w->rms_ffn.data); free((void *)w->wq.data);
        free((void *)w->wk.data); free((void *)w->wv.data); free((void *)w->wo.data);
        free((void *)w->w1.data); free((void *)w->w2.data); free((void *)w->w3.data);
    }
    free(m->layers);
    free((void *)m->tok_emb.data); free((void *)m->rms_final.data); free((void *)m->wcls.data);
}

/* logits (n, V) of ids fed in chunks of the given lengths (0-terminated) */
static int run_chunks(const lc_ctx *cx, const lc_model *m, const int *ids, const int *chunks,
                      float *out) {
    lc_run r;
    lc_error e;
    int s = 0, c, V = m->cfg.vocab_size;
    if (!CHECK(lc_run_init(&r, m, 256, 200, &e) == LOLCATS_OK, "run init: %s", e.msg)) return 0;
    for (c = 0; chunks[c]; c++) {
        if (!CHECK(lc_model_forward(cx, m, &r, ids + s, chunks[c], out + (size_t)s * V, &e) ==
                       LOLCATS_OK, "forward: %s", e.msg))
            break;
        s += chunks[c];
    }
    lc_run_free(&r);
    return s;
}

static void case_(const lc_ctx *fast, const char *what, int dim, int hid, int H, int Hk, int D,
                  int V, int W, const int *chunks) {
    static const lc_ctx ref = {LOLCATS_SIMD_SCALAR, LOLCATS_COMPUTE_F32};
    lc_model m;
    int ids[256] = {0}, n = 0, i;
    float *a, *b;
    char w2[200];
    for (i = 0; chunks[i]; i++) n += chunks[i];
    make_model(&m, dim, hid, 2, H, Hk, D, V, W);
    for (i = 0; i < n; i++) ids[i] = (int)(lc_rng_uniform(&rng) * (float)V) % V;
    a = (float *)malloc(sizeof(float) * (size_t)n * V);
    b = (float *)malloc(sizeof(float) * (size_t)n * V);
    run_chunks(fast, &m, ids, chunks, a);
    run_chunks(&ref, &m, ids, chunks, b);
    snprintf(w2, sizeof w2, "%s: logits fast vs scalar", what);
    check_close(w2, a, b, (size_t)n * V, 2e-4, 2e-4);
#ifdef _OPENMP
    {   /* the thread count does not change a bit */
        float *c = (float *)malloc(sizeof(float) * (size_t)n * V);
        int nt = omp_get_max_threads();
        omp_set_num_threads(3);
        run_chunks(fast, &m, ids, chunks, c);
        omp_set_num_threads(nt);
        CHECK(!memcmp(a, c, sizeof(float) * (size_t)n * V), "%s: 3 threads bit-identical", what);
        free(c);
    }
#endif
    free(a); free(b);
    free_model(&m);
}

/* lc_model_forward_nll: the vector log-sum-exp against the double one over the
   same fast path's logits (within 1e-6 relative), and fast vs scalar */
static void case_nll(const lc_ctx *fast) {
    static const lc_ctx ref = {LOLCATS_SIMD_SCALAR, LOLCATS_COMPUTE_F32};
    lc_model m;
    lc_run r;
    lc_error e;
    int ids[101] = {0}, i, j, k, V = 1003;
    double nf[100], ns[100], worst = 0, wref = 0;
    float *lg = (float *)malloc(sizeof(float) * 100 * (size_t)V);
    make_model(&m, 48, 80, 2, 4, 2, 12, V, 0);   /* NLL blocks of hidden_dim = 80 rows */
    for (i = 0; i < 101; i++) ids[i] = (int)(lc_rng_uniform(&rng) * (float)V) % V;
    for (k = 0; k < 2; k++) {
        lc_run_init(&r, &m, 128, 100, &e);
        CHECK(lc_model_forward_nll(k ? &ref : fast, &m, &r, ids, 100, ids + 1, k ? ns : nf, &e) ==
                  LOLCATS_OK, "nll: %s", e.msg);
        lc_run_free(&r);
    }
    lc_run_init(&r, &m, 128, 100, &e);
    lc_model_forward(fast, &m, &r, ids, 100, lg, &e);
    lc_run_free(&r);
    for (i = 0; i < 100; i++) {
        const float *l = lg + (size_t)i * V;
        double mx = (double)l[0], s = 0, d;
        for (j = 1; j < V; j++) mx = (double)l[j] > mx ? (double)l[j] : mx;
        for (j = 0; j < V; j++) s += exp((double)l[j] - mx);
        d = fabs(nf[i] - (mx + log(s) - (double)l[ids[i + 1]])) / fabs(nf[i]);
        worst = d > worst ? d : worst;
        d = fabs(nf[i] - ns[i]) / fabs(ns[i]);
        wref = d > wref ? d : wref;
    }
    printf("nll: fast vs double log-sum-exp of its logits %.2e, fast vs scalar %.2e (relative)\n",
           worst, wref);
    CHECK(worst < 1e-6, "nll vector log-sum-exp within 1e-6 relative (%.2e)", worst);
    CHECK(wref < 1e-5, "nll fast vs scalar within 1e-5 relative (%.2e)", wref);
    free(lg);
    free_model(&m);
}

int main(void) {
    lc_ctx ctx;
    static const int c1[] = {37, 0}, c2[] = {13, 70, 1, 66, 3, 0}, c3[] = {5, 129, 31, 0};
    static const int c4[] = {64, 64, 65, 0};
    lc_rng_seed(&rng, 23);
    lc_ctx_init(&ctx);
    printf("fast path: %s\n", lc_simd_name(ctx.simd));
    case_(&ctx, "MHA, one chunk of 37", 40, 72, 4, 4, 10, 101, 0, c1);
    case_(&ctx, "GQA 6/2, chunks at pos0 > 0", 48, 64, 6, 2, 16, 97, 0, c2);
    case_(&ctx, "GQA 4/1, window 7, chunks", 32, 56, 4, 1, 8, 89, 7, c3);
    case_(&ctx, "GQA 4/2, window 50, block edges", 64, 96, 4, 2, 16, 83, 50, c4);
    case_(&ctx, "MQA, D 64, window 100", 64, 96, 2, 1, 64, 77, 100, c3);
    case_nll(&ctx);
    return check_done();
}
