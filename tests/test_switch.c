/* test_switch.c - the one switch: with ctx.simd = LOLCATS_SIMD_SCALAR (and in
   a -DLOLCATS_NO_SIMD / -DLOLCATS_NO_FAST build) only the reference forms run.
   Built with LOLCATS_COUNT_FAST, every fetch of a non-scalar kernel table
   (lc__kern_for: primitives, GEMM kinds, packed / tiled / chunked forms, the
   fused transfer step, the tiled prefill) adds one to *ctx.fast_count. Every
   kernel family, a stage-1 (distill) and a stage-2 (lm) training step, prefill
   and decode of a tiny model and of its linearized form run twice, ctx.simd set
   after lc_ctx_init: on the scalar path each must count 0; on the default path
   of a SIMD machine more than 0 (the counter works). */
#define LOLCATS_COUNT_FAST
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"

enum { B = 1, H = 4, HK = 2, N = 128, D = 16, FM = 8, TT = 16 };
enum { FAM_FMAP, FAM_SOFTMAX, FAM_LINEAR, FAM_HYBRID, FAM_TRANSFER, FAM_DECODE, FAM_GEMM,
       FAM_BLOCKS, FAM_STAGE1, FAM_STAGE2, FAM_PREFILL, FAM_MDECODE, FAM_N };
static const char *fam_name[FAM_N] = {"feature maps", "softmax attention", "linear attention",
                                      "hybrid attention (with work)", "attention transfer",
                                      "decode", "gemm / matmul / gemv", "linear layer (LoRA)",
                                      "stage 1: attention-transfer (distill) step",
                                      "stage 2: LoRA lm step",
                                      "prefill: model and linearized model",
                                      "decode: model and linearized model"};

static float *fill(lc_rng *r, size_t n, float scale) {
    float *p = (float *)malloc(sizeof(float) * (n ? n : 1));
    size_t i;
    for (i = 0; i < n; i++) p[i] = scale * lc_rng_normal(r);
    return p;
}

static void run_all(int simd, unsigned long *count) {
    lc_ctx ctx;
    lc_rng r;
    lc_fmap_cfg fm = lc_fmap_cfg_default();
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    int F = lc_fmap_out_dim(&fm, FM), i;
    size_t nq = (size_t)B * H * N * D, nk = (size_t)B * HK * N * D, nf = (size_t)B * H * N * F;
    float *q, *k, *v, *wq, *phiq, *phik, *y, *yt, *m, *den, *lse, *dy, *dq, *dk, *dv, *dphiq,
        *dphik, *dwf, *dwq, *wf, *work, *twork, *C, *A, *Bm, *x, *dx;
    lc_ctx_init(&ctx);
    ctx.simd = simd;
    lc_rng_seed(&r, 5);
    q = fill(&r, nq, 1.0f); k = fill(&r, nk, 1.0f); v = fill(&r, nk, 1.0f);
    wq = fill(&r, (size_t)H * D * FM, 0.3f); wf = fill(&r, H, 1.0f);
    phiq = fill(&r, nf, 0); phik = fill(&r, nf, 0); y = fill(&r, nq, 0); yt = fill(&r, nq, 0);
    m = fill(&r, (size_t)B * H * N, 0); den = fill(&r, (size_t)B * H * N, 0);
    lse = fill(&r, (size_t)B * H * N, 0); dy = fill(&r, nq, 1.0f);
    dq = fill(&r, nq, 0); dk = fill(&r, nk, 0); dv = fill(&r, nk, 0);
    dphiq = fill(&r, nf, 0); dphik = fill(&r, nf, 0); dwf = fill(&r, H, 0);
    dwq = fill(&r, (size_t)H * D * FM, 0);
    work = fill(&r, lc_attn_hybrid_work_floats(B, H, D, F), 0);
    twork = fill(&r, lc_attn_transfer_work_floats(B, H, N, D, F), 0);

    ctx.fast_count = &count[FAM_FMAP];
    lc_fmap_fwd(&ctx, phiq, q, wq, NULL, B, H, H, N, D, FM, &fm);
    lc_fmap_fwd(&ctx, phik, k, wq, NULL, B, H, HK, N, D, FM, &fm);
    lc_fmap_bwd(&ctx, dq, dwq, NULL, phiq, q, wq, NULL, B, H, H, N, D, FM, &fm);

    ctx.fast_count = &count[FAM_SOFTMAX];
    lc_attn_softmax_fwd(&ctx, yt, lse, q, k, v, B, H, HK, N, D);
    lc_attn_softmax_bwd(&ctx, dq, dk, dv, dy, NULL, yt, lse, q, k, v, B, H, HK, N, D);

    ctx.fast_count = &count[FAM_LINEAR];
    lc_attn_linear_fwd(&ctx, y, den, phiq, phik, v, B, H, HK, N, F, D, 1e-6f);
    lc_attn_linear_bwd(&ctx, dphiq, dphik, dv, dy, y, den, phiq, phik, v, B, H, HK, N, F, D, 1e-6f);

    ctx.fast_count = &count[FAM_HYBRID];
    lc_attn_hybrid_fwd(&ctx, y, NULL, m, den, work, q, k, v, phiq, phik, wf, NULL, NULL, B, H, HK,
                       N, D, F, &hc);
    lc_attn_hybrid_bwd(&ctx, dq, dk, dv, dphiq, dphik, dwf, NULL, NULL, work, dy, NULL, y, m, den,
                       q, k, v, phiq, phik, wf, NULL, NULL, B, H, HK, N, D, F, &hc);

    ctx.fast_count = &count[FAM_TRANSFER];
    lc_attn_transfer_fwd(&ctx, yt, lse, y, m, den, twork, q, k, v, phiq, phik, wf, B, H, HK, N, D,
                         F, &hc);
    lc_attn_transfer_bwd(&ctx, dphiq, dphik, dwf, twork, dy, y, m, den, q, k, v, phiq, phik, wf,
                         B, H, HK, N, D, F, &hc);
    (void)lc_attn_transfer_mse(&ctx, yt, lse, y, m, den, dphiq, dphik, dwf, twork, q, k, v, phiq,
                               phik, wf, B, H, HK, N, D, F, 1.0f, &hc);

    ctx.fast_count = &count[FAM_DECODE];
    {
        lc_decode_state st;
        float *mem = fill(&r, lc_decode_state_floats(H, HK, D, F, 8), 0);
        lc_decode_state_init(&st, mem, H, HK, D, F, 8);
        for (i = 0; i < 12; i++)
            lc_attn_hybrid_decode(&ctx, y, &st, q + (size_t)i * H * D, k + (size_t)i * HK * D,
                                  v + (size_t)i * HK * D, phiq + (size_t)i * H * F,
                                  phik + (size_t)i * H * F, wf, 0);
        free(mem);
    }

    ctx.fast_count = &count[FAM_GEMM];
    A = fill(&r, 64 * 64, 1.0f); Bm = fill(&r, 64 * 64, 1.0f); C = fill(&r, 64 * 64, 0);
    lc_gemm(&ctx, C, A, Bm, LOLCATS_DTYPE_F32, 64, 64, 64, 0, 0, 1.0f, 0.0f, 64, 64, 64, NULL);
    lc_matmul(&ctx, C, A, Bm, LOLCATS_DTYPE_F32, TT, 64, 64);
    lc_matmul(&ctx, C, A, Bm, LOLCATS_DTYPE_F32, 1, 64, 64);
    lc_gemv(&ctx, C, Bm, LOLCATS_DTYPE_F32, A, 64, 64, 64);

    ctx.fast_count = &count[FAM_BLOCKS];
    x = fill(&r, TT * 64, 1.0f); dx = fill(&r, TT * 64, 0);
    {
        float *la = fill(&r, 2 * 64, 0.1f), *lb = fill(&r, 64 * 2, 0.1f), *xa = fill(&r, TT * 2, 0);
        float *dla = fill(&r, 2 * 64, 0), *dlb = fill(&r, 64 * 2, 0), *dw = fill(&r, 64 * 64, 0);
        lc_linear_fwd(&ctx, C, xa, x, Bm, LOLCATS_DTYPE_F32, la, lb, 2.0f, 2, TT, 64, 64);
        lc_linear_bwd(&ctx, dx, dw, dla, dlb, C, x, xa, Bm, LOLCATS_DTYPE_F32, la, lb, 2.0f, 2, TT,
                      64, 64);
        free(la); free(lb); free(xa); free(dla); free(dlb); free(dw);
    }

    {
        lc_model_config mc;
        lc_train_cfg tc = lc_train_cfg_default();
        lc_train t;
        lc_run run;
        lc_error err;
        int tok[TT], lab[TT], n;
        double L = 0;
        memset(&mc, 0, sizeof mc);
        mc.dim = 32; mc.hidden_dim = 48; mc.n_layers = 2; mc.n_heads = 4; mc.n_kv_heads = 2;
        mc.head_dim = 8; mc.vocab_size = 11; mc.seq_len = 64; mc.norm_eps = 1e-5f;
        mc.rope_theta = 10000.0f; mc.tied = 1; mc.bos_id = 1; mc.eos_id = 2;
        snprintf(mc.arch, sizeof mc.arch, "tiny");
        tc.attn = LOLCATS_ATTN_HYBRID; tc.trainable = LOLCATS_TRAIN_FMAPS | LOLCATS_TRAIN_LORA;
        tc.feature_dim = 4; tc.lora_rank = 2; tc.hybrid.window = 4; tc.max_tokens = TT; tc.seed = 3;
        for (i = 0; i < TT; i++) { tok[i] = 3 + i % 7; lab[i] = 3 + (i + 1) % 7; }
        ctx.fast_count = &count[FAM_STAGE1];
        if (CHECK(lc_train_init_full(&t, &ctx, &mc, &tc, &err) == LOLCATS_OK, "init: %s", err.msg)) {
            lc_lolcats lp;
            lc_lolcats_run lr;
            CHECK(lc_train_distill_step(&t, tok, TT, 1, &L, NULL, &err) == LOLCATS_OK, "distill: %s", err.msg);
            ctx.fast_count = t.ctx.fast_count = &count[FAM_STAGE2];  /* t keeps a copy */
            CHECK(lc_train_lm_step(&t, tok, lab, TT, 1, &L, &n, &err) == LOLCATS_OK, "lm step: %s", err.msg);
            ctx.fast_count = &count[FAM_PREFILL];
            if (CHECK(lc_run_init(&run, t.model, 64, TT, &err) == LOLCATS_OK, "run: %s", err.msg)) {
                CHECK(lc_model_forward(&ctx, t.model, &run, tok, TT, NULL, &err) == LOLCATS_OK,
                      "forward: %s", err.msg);
                ctx.fast_count = &count[FAM_MDECODE];
                CHECK(lc_model_forward(&ctx, t.model, &run, tok, 1, NULL, &err) == LOLCATS_OK,
                      "one token: %s", err.msg);
                lc_run_free(&run);
            }
            lc_train_lolcats_view(&t, &lp);
            ctx.fast_count = &count[FAM_PREFILL];
            if (CHECK(lc_lolcats_run_init(&lr, &ctx, t.model, &lp, TT, &err) == LOLCATS_OK,
                      "linearized run: %s", err.msg)) {
                CHECK(lc_lolcats_forward(t.model, &lp, &lr, tok, TT, NULL, &err) == LOLCATS_OK,
                      "linearized prefill: %s", err.msg);
                lr.ctx.fast_count = &count[FAM_MDECODE];
                for (i = 0; i < 3; i++)
                    CHECK(lc_lolcats_forward(t.model, &lp, &lr, tok + i, 1, NULL, &err) == LOLCATS_OK,
                          "linearized decode: %s", err.msg);
                lc_lolcats_run_free(&lr);
            }
            lc_train_free(&t);
        }
    }
    free(q); free(k); free(v); free(wq); free(wf); free(phiq); free(phik); free(y); free(yt);
    free(m); free(den); free(lse); free(dy); free(dq); free(dk); free(dv); free(dphiq);
    free(dphik); free(dwf); free(dwq); free(work); free(twork); free(A); free(Bm); free(C);
    free(x); free(dx);
}

int main(void) {
    unsigned long scal[FAM_N], dflt[FAM_N], total = 0;
    lc_ctx c;
    int f;
    lc_ctx_init(&c);
    memset(scal, 0, sizeof scal);
    memset(dflt, 0, sizeof dflt);
    run_all(LOLCATS_SIMD_SCALAR, scal);
    run_all(c.simd, dflt);
    printf("fast-path entries         scalar   default (%s)\n", lc_simd_name(c.simd));
    for (f = 0; f < FAM_N; f++) {
        printf("  %-42s %6lu %9lu\n", fam_name[f], scal[f], dflt[f]);
        CHECK(scal[f] == 0, "%s: %lu fast-path entries with ctx.simd = LOLCATS_SIMD_SCALAR",
              fam_name[f], scal[f]);
        total += dflt[f];
    }
    if (c.simd == LOLCATS_SIMD_SCALAR) {
        printf("  (this build or CPU has no SIMD path: the default is the scalar path)\n");
        CHECK(total == 0, "default scalar path: %lu fast-path entries", total);
    } else {
        for (f = 0; f < FAM_N; f++)
            CHECK(dflt[f] > 0, "%s: no fast-path entry on the %s path (is the counter wired?)",
                  fam_name[f], lc_simd_name(c.simd));
    }
    return check_done();
}
