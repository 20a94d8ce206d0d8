/* test_gguf_model.c - GGUF models end to end through the command-line tool
   ($LOLCATS_BIN, default build/lolcats): `convert --to-gguf` at every type,
   `inspect`, and loading the GGUF back (lc_model_load) against the model it
   was written from: logits of a tiny llama2.c model (no ../shared), and the
   mean NLL of alpaca-llama-25m (../shared; F32/F16 within 1e-5 relative,
   Q8_0 within 0.005 nats, Q4_K within 0.05). Scratch: build/tests/gguf/. */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "tiny_files.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DIR "build/tests/gguf"
static const char *bin;

/* llama2.c model with GGUF-friendly widths: dim 64 (two Q8_0 blocks),
   hidden 256 (one Q4_K block), 2 layers, 4 heads, 2 kv heads, vocab 259 */
static int write_model(const char *path) {
    int32_t hdr[7] = {64, 256, 2, 4, 2, 259, 64};
    int dim = 64, hid = 256, L = 2, hd = 16, kvd = 32, V = 259, S = 64;
    size_t n = (size_t)V * dim + (size_t)L * dim + (size_t)L * dim * dim + 2 * (size_t)L * dim * kvd +
               (size_t)L * dim * dim + (size_t)L * dim + 3 * (size_t)L * dim * hid + (size_t)dim + (size_t)S * hd, i;
    size_t norm0 = (size_t)V * dim, norm1 = norm0 + (size_t)L * dim + (size_t)L * dim * dim +
                   2 * (size_t)L * dim * kvd + (size_t)L * dim * dim;
    size_t normf = norm1 + (size_t)L * dim + 3 * (size_t)L * dim * hid;
    float *w = (float *)malloc(n * sizeof(float));
    FILE *f = fopen(path, "wb");
    lc_rng r;
    int ok;
    if (!w || !f) { free(w); if (f) fclose(f); return 0; }
    lc_rng_seed(&r, 9);
    for (i = 0; i < n; i++) w[i] = 0.05f * lc_rng_normal(&r);
    for (i = 0; i < (size_t)(L * dim); i++) { w[norm0 + i] = 1.0f + 0.1f * lc_rng_normal(&r); w[norm1 + i] = 1.0f; }
    for (i = 0; i < (size_t)dim; i++) w[normf + i] = 1.0f;
    ok = fwrite(hdr, sizeof hdr, 1, f) == 1 && fwrite(w, sizeof(float), n, f) == n;
    ok = (fclose(f) == 0) && ok;
    free(w);
    return ok;
}

/* logits of 24 tokens, all positions (24, V) */
static float *logits_of(const char *path, int *V) {
    lc_model m;
    lc_run r;
    lc_error err;
    lc_ctx cx;
    int toks[24], i;
    float *out = NULL;
    memset(&err, 0, sizeof err);
    if (!CHECK(lc_model_load(&m, path, &err) == LOLCATS_OK, "%s loads: %s", path, err.msg)) return NULL;
    lc_ctx_init(&cx);
    *V = m.cfg.vocab_size;
    for (i = 0; i < 24; i++) toks[i] = (i * 37 + 5) % *V;
    if (lc_run_init(&r, &m, 32, 24, &err) == LOLCATS_OK) {
        out = (float *)malloc(sizeof(float) * 24 * (size_t)*V);
        if (out && lc_model_forward(&cx, &m, &r, toks, 24, out, &err)) { free(out); out = NULL; }
        lc_run_free(&r);
    }
    CHECK(out != NULL, "%s: forward: %s", path, err.msg);
    lc_model_free(&m);
    return out;
}

static void test_tiny(void) {
    static const char *types[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k"};
    static const double tol[] = {1e-5, 3e-3, 3e-2, 3e-2, 0.3, 0.3};   /* max |dlogit| / max |logit| */
    char cmd[1024], path[256];
    float *ref;
    int V = 0, k;
    size_t i;
    if (!CHECK(write_model(DIR "/tiny.bin"), "tiny model written")) return;
    ref = logits_of(DIR "/tiny.bin", &V);
    if (!ref) return;
    for (k = 0; k < 6; k++) {
        float *y;
        int V2 = 0;
        double mx = 0, d = 0;
        snprintf(path, sizeof path, DIR "/tiny_%s.gguf", types[k]);
        snprintf(cmd, sizeof cmd, "%s convert --to-gguf %s --model " DIR "/tiny.bin --type %s --force >/dev/null",
                 bin, path, types[k]);
        if (!CHECK(tiny_sh(cmd) == 0, "%s", cmd)) continue;
        if (!(y = logits_of(path, &V2)) || !CHECK(V2 == V, "vocab")) { free(y); continue; }
        for (i = 0; i < 24 * (size_t)V; i++) {
            if (fabs((double)ref[i]) > mx) mx = fabs((double)ref[i]);
            if (fabs((double)(y[i] - ref[i])) > d) d = fabs((double)(y[i] - ref[i]));
        }
        printf("  tiny llama2.c -> GGUF %-5s max |dlogit| / max |logit| = %.2e (bound %.0e)\n", types[k], d / mx, tol[k]);
        CHECK(d <= tol[k] * mx, "%s logits off by %.3e of %.3e", types[k], d, mx);
        free(y);
    }
    free(ref);
    /* inspect, refusals */
    snprintf(cmd, sizeof cmd, "%s inspect " DIR "/tiny_q8_0.gguf | grep -q 'blk.1.attn_q.weight  *Q8_0  *\\[64, 64\\]'", bin);
    CHECK(tiny_sh(cmd) == 0, "inspect lists blk.1.attn_q.weight as Q8_0 [64, 64]");
    snprintf(cmd, sizeof cmd, "%s convert --to-gguf " DIR "/tiny_f32.gguf --model " DIR "/tiny.bin 2>/dev/null", bin);
    CHECK(tiny_sh(cmd) == 1, "an existing output is refused without --force");
    snprintf(cmd, sizeof cmd, "%s convert --to-gguf " DIR "/x.gguf --model " DIR "/tiny.bin --type q5_k 2>/dev/null", bin);
    CHECK(tiny_sh(cmd) == 2, "an unknown --type is a usage error");
    snprintf(cmd, sizeof cmd, "head -c 3000 " DIR "/tiny_f32.gguf > " DIR "/cut.gguf && %s inspect " DIR "/cut.gguf 2>&1 "
             "| grep -q 'lolcats: error: " DIR "/cut.gguf: tensor .* runs past the end'", bin);
    CHECK(tiny_sh(cmd) == 0, "inspect of a truncated GGUF names the file and the tensor");
    snprintf(cmd, sizeof cmd, "%s eval -m " DIR "/cut.gguf --data " DIR "/tiny.bin 2>&1 | grep -q 'cut.gguf: tensor'", bin);
    CHECK(tiny_sh(cmd) == 0, "eval of a truncated GGUF names the file and the tensor");
}

static double nll_of(const char *model, const char *tok, const char *data) {
    char cmd[1024], line[2048];
    FILE *p;
    double nll = NAN;
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=2 %s eval -m %s --tokenizer %s --data %s --ctx 512 --json", bin, model,
             tok, data);
    if (!(p = popen(cmd, "r"))) return NAN;
    while (fgets(line, sizeof line, p))
        if (!strncmp(line, "{\"nll\": ", 8)) nll = atof(line + 8);
    pclose(p);
    return nll;
}

static void test_alpaca(void) {
    const char *M = "../shared/models/alpaca-llama-25m";
    static const char *types[] = {"f32", "f16", "q8_0", "q4_k"};
    char cmd[1024], path[256];
    double base, nll;
    int k;
    if (access(M, F_OK) != 0 || access("../shared/data/wikitext-2-raw.test-head.txt", F_OK) != 0) {
        printf("SKIPPED: alpaca-llama-25m GGUF NLL (../shared absent)\n");
        return;
    }
    CHECK(tiny_sh("head -c 8000 ../shared/data/wikitext-2-raw.test-head.txt > " DIR "/wt.txt") == 0, "text");
    base = nll_of(M, "../shared/models/alpaca-llama-25m/tokenizer.json", DIR "/wt.txt");
    CHECK(isfinite(base), "safetensors NLL");
    for (k = 0; k < 4; k++) {
        snprintf(path, sizeof path, DIR "/alpaca_%s.gguf", types[k]);
        snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s convert --to-gguf %s --model %s --type %s --force >/dev/null",
                 bin, path, M, types[k]);
        if (!CHECK(tiny_sh(cmd) == 0, "%s", cmd)) continue;
        nll = nll_of(path, "../shared/models/alpaca-llama-25m/tokenizer.json", DIR "/wt.txt");
        printf("  alpaca-llama-25m NLL: safetensors %.6f, GGUF %-5s %.6f (%+.6f nats, %.1e relative)\n", base,
               types[k], nll, nll - base, fabs(nll - base) / base);
        if (k < 2) CHECK(fabs(nll - base) <= 1e-5 * base, "%s NLL %.6f vs %.6f", types[k], nll, base);
        else CHECK(fabs(nll - base) <= (k == 2 ? 0.005 : 0.05), "%s NLL %.6f vs %.6f", types[k], nll, base);
        remove(path);
    }
}

int main(void) {
    bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    if (tiny_sh("mkdir -p " DIR) != 0) { printf("cannot create " DIR "\n"); return 1; }
    test_tiny();
    test_alpaca();
    return check_done();
}
