/* bench_lolcats_decode.c - decode speed and memory at a long context: the
   linearized model (lc_lolcats_run: window ring + fp32 state per layer) against
   the softmax model (lc_run: KV cache), one token at a time.

   usage: bench_lolcats_decode [MODEL [CTX...]]   (default ../shared/models/
   alpaca-llama-25m, contexts 1024 and 32768; SKIPPED when the model is absent)

   The position is set directly (the KV cache / state holds zeros): the cost of
   a decode step depends on where it is, not on what the earlier tokens were,
   and filling 32k positions through the softmax model would take most of the
   run. Identity feature maps (f = 64), tk window 64, no LoRA (LoRA adds two
   rank-r products per projection). */
#define _POSIX_C_SOURCE 199309L  /* clock_gettime */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    lc_ctx ctx;
    const char *path = argc > 1 ? argv[1] : "../shared/models/alpaca-llama-25m";
    int ctxs[8] = {1024, 32768}, nctx = 2, steps = 64, i, k;
    lc_model m;
    lc_error err;
    lc_lolcats lp;
    lc_fmap_cfg fm = lc_fmap_cfg_default();
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    float *mem;
    FILE *f;
    char probe[1200];
    snprintf(probe, sizeof probe, "%s/config.json", path);
    f = fopen(probe, "rb");
    if (!f) f = fopen(path, "rb");
    if (!f) { printf("SKIPPED: %s not found\n", path); return 0; }
    fclose(f);
    if (argc > 2) {
        for (nctx = 0; nctx < 8 && nctx + 2 < argc; nctx++) ctxs[nctx] = atoi(argv[nctx + 2]);
    }
    lc_ctx_init(&ctx);
    if (lc_model_load(&m, path, &err)) { printf("error: %s\n", err.msg); return 1; }
    {
        int fd = m.cfg.head_dim < 64 ? m.cfg.head_dim : 64;
        mem = (float *)malloc(sizeof(float) * lc_lolcats_identity_floats(&m.cfg, fd));
        lc_lolcats_init_identity(&lp, mem, &m.cfg, fd, &fm, &hc);
    }
    printf("%s: %d layers, %d heads (%d kv), head dim %d, %s weights; %d decode steps per point\n", path,
           m.cfg.n_layers, m.cfg.n_heads, m.cfg.n_kv_heads, m.cfg.head_dim,
           lc_dtype_name(m.tok_emb.dtype), steps);
    printf("%-10s %8s %12s %16s\n", "model", "context", "tokens/s", "state bytes");
    for (k = 0; k < nctx; k++) {
        int P = ctxs[k], tok = 1;
        lc_run r;
        lc_lolcats_run lr;
        double t0, dt;
        /* softmax, KV cache of P + steps positions */
        if (lc_run_init(&r, &m, P + steps, 1, &err)) { printf("error: %s\n", err.msg); return 1; }
        r.pos = P;
        t0 = now();
        for (i = 0; i < steps; i++) {
            if (lc_model_forward(&ctx, &m, &r, &tok, 1, NULL, &err)) { printf("error: %s\n", err.msg); return 1; }
            tok = 1 + lc_argmax(r.logits, m.cfg.vocab_size) % 100;
        }
        dt = now() - t0;
        printf("%-10s %8d %12.1f %16zu   (KV cache + RoPE table + activations: lc_run.bytes)\n", "softmax", P,
               steps / dt, r.bytes);
        lc_run_free(&r);
        /* linearized, state at position P (ring full, S and z in use) */
        if (lc_lolcats_run_init(&lr, NULL, &m, &lp, 1, &err)) { printf("error: %s\n", err.msg); return 1; }
        lr.pos = P;
        for (i = 0; i < lr.n_layers; i++) lr.layers[i].pos = P;
        tok = 1;
        t0 = now();
        for (i = 0; i < steps; i++) {
            if (lc_lolcats_forward(&m, &lp, &lr, &tok, 1, NULL, &err)) { printf("error: %s\n", err.msg); return 1; }
            tok = 1 + lc_argmax(lr.logits, m.cfg.vocab_size) % 100;
        }
        dt = now() - t0;
        printf("%-10s %8d %12.1f %16zu   (rings + S, z; run total with scratch %zu)\n", "linearized", P,
               steps / dt, lr.state_bytes, lr.bytes);
        lc_lolcats_run_free(&lr);
    }
    free(mem);
    lc_model_free(&m);
    return 0;
}
