/* test_teacher_lora.c - `lolcats finetune --softmax`: LoRA on q/k/v/o trained
   through the teacher (softmax attention in every layer), on a tiny llama2.c
   model written here (tests/tiny_files.h, no ../shared):
   - training lowers the validation loss, and the merged model scores better
     than the original on the training text (`eval`);
   - --merge writes a plain Hugging Face model: no LoLCATs tensors, no
     "lolcats" metadata or config object, so eval runs it with softmax attention;
   - the merged directory computes what base + LoRA computes: the loss of one
     sequence through the trainer (base weights, LoRA unmerged, softmax) equals
     the merged model's loss within float rounding;
   - the combinations that make no sense are refused with exit 2 and a message
     naming both options: --softmax with --lolcats, --train-feature-maps,
     --peft, and with distill / linearize;
   - --resume of a finished --softmax run is a no-op ("already finished"). */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "tiny_files.h"

#include <sys/stat.h>

static char tmp[256];
static const char *bin;

#define TRAIN "--model %s/m.bin --tokenizer %s/tok.bin --data %s/d.txt --seq-len 32 --grad-accum 2 " \
              "--tokens 2560 --val-seqs 2 --val-every 5 --lr 1e-2"

static int run(const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s >%s/log.txt 2>&1", bin, args, tmp);
    return tiny_sh(cmd);
}

static int log_has(const char *text) {
    char cmd[800];
    snprintf(cmd, sizeof cmd, "grep -q -- '%s' %s/log.txt", text, tmp);
    return tiny_sh(cmd) == 0;
}

/* "val loss A -> best B" of the stage's last line */
static int val_losses(double *first, double *best) {
    char p[400], line[1024];
    FILE *f;
    int ok = 0;
    snprintf(p, sizeof p, "%s/log.txt", tmp);
    if (!(f = fopen(p, "r"))) return 0;
    while (fgets(line, sizeof line, f)) {
        const char *v = strstr(line, "val loss ");
        if (strstr(line, "stage 2 done") && v && sscanf(v, "val loss %lf -> best %lf", first, best) == 2) ok = 1;
    }
    fclose(f);
    return ok;
}

static double eval_nll(const char *model, int tokenizer) {
    char cmd[2048], p[400];
    double v = (double)NAN;
    FILE *f;
    snprintf(p, sizeof p, "%s/nll.json", tmp);
    snprintf(cmd, sizeof cmd, "%s eval --model %s %s%s%s --data %s/d.txt --json >%s 2>/dev/null", bin, model,
             tokenizer ? "--tokenizer " : "", tokenizer ? tmp : "", tokenizer ? "/tok.bin" : "", tmp, p);
    if (tiny_sh(cmd) != 0 || !(f = fopen(p, "r"))) return v;
    if (fscanf(f, "{\"nll\": %lf", &v) != 1) v = (double)NAN;
    fclose(f);
    return v;
}

/* loss of one sequence through a trainer on m with softmax attention: lp's
   LoRA unmerged (lp: a --softmax checkpoint), or none (lp NULL) */
static double seq_loss(lc_model *m, const lc_lolcats *lp, const int *tok, const int *lab, int T) {
    lc_train t;
    lc_train_cfg tc = lc_train_cfg_default();
    lc_ctx ctx;
    lc_error err;
    double loss = (double)NAN;
    int ns;
    lc_ctx_init(&ctx);
    tc.max_tokens = T;
    tc.trainable = LOLCATS_TRAIN_LORA;
    tc.attn = lp ? LOLCATS_ATTN_HYBRID : LOLCATS_ATTN_SOFTMAX;   /* feature maps to load the checkpoint into */
    if (lp) {
        tc.fmap = lp->fmap;
        tc.feature_dim = lp->feature_dim;
        tc.hybrid = lp->hybrid;
        tc.lora_rank = lp->lora_rank;
        tc.lora_alpha = lp->lora_alpha;
    }
    if (lc_train_init(&t, &ctx, m, &tc, &err)) { printf("  lc_train_init: %s\n", err.msg); return loss; }
    if (lp && lc_train_set_lolcats(&t, lp, &err)) printf("  lc_train_set_lolcats: %s\n", err.msg);
    else {
        t.cfg.attn = LOLCATS_ATTN_SOFTMAX;
        if (lc_train_lm_step(&t, tok, lab, T, 0, &loss, &ns, &err)) printf("  lc_train_lm_step: %s\n", err.msg);
    }
    lc_train_free(&t);
    return loss;
}

int main(void) {
    char p[2048], q[1024];
    double first = 0, best = 0, base_nll, merged_nll;
    struct stat st;
    mkdir("build", 0777);
    mkdir("build/tests", 0777);
    bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    snprintf(tmp, sizeof tmp, "build/tests/teacher_lora_XXXXXX");
    if (!mkdtemp(tmp)) { printf("cannot create a directory under build/tests\n0 passed, 1 failed\n"); return 1; }
    setenv("OMP_NUM_THREADS", "1", 1);
    snprintf(p, sizeof p, "%s/m.bin", tmp); CHECK(tiny_write_model(p), "write %s", p);
    snprintf(p, sizeof p, "%s/tok.bin", tmp); CHECK(tiny_write_tokenizer(p), "write %s", p);
    snprintf(p, sizeof p, "%s/d.txt", tmp); CHECK(tiny_write_text(p), "write %s", p);

    printf("finetune --softmax: training, merge\n");
    snprintf(p, sizeof p, "finetune --softmax " TRAIN " --out %s/ck.safetensors --merge %s/merged", tmp, tmp, tmp,
             tmp, tmp);
    CHECK(run(p) == 0, "finetune --softmax failed (see %s/log.txt)", tmp);
    CHECK(val_losses(&first, &best), "no 'stage 2 done ... val loss A -> best B' line");
    printf("  validation loss %.4f -> %.4f\n", first, best);
    CHECK(best < first - 0.2, "--softmax LoRA training did not lower the loss: %.4f -> %.4f", first, best);
    snprintf(p, sizeof p, "%s/merged/model.safetensors", tmp);
    CHECK(stat(p, &st) == 0, "no %s", p);
    {   /* a plain model: no LoLCATs tensors nor metadata, config without "lolcats" */
        lc_st_file *f = NULL;
        lc_error err;
        int i, n_lc = 0;
        if (lc_st_open(&f, p, &err) == LOLCATS_OK) {
            for (i = 0; i < lc_st_count(f); i++) {
                const char *nm = lc_st_tensor_at(f, i)->name;
                n_lc += strstr(nm, "feature_map") || strstr(nm, "window_factors") || strstr(nm, "lora_");
            }
            CHECK(n_lc == 0, "%d LoLCATs tensors left in the merged model", n_lc);
            CHECK(!lc_st_meta(f, "lolcats_format"), "the merged model still has lolcats_format metadata");
            CHECK(lc_st_count(f) > 0, "the merged model has no tensors");
            lc_st_close(f);
        } else CHECK(0, "%s: %s", p, err.msg);
        snprintf(q, sizeof q, "grep -q lolcats %s/merged/config.json", tmp);
        CHECK(tiny_sh(q) != 0, "merged/config.json mentions lolcats");
    }
    snprintf(p, sizeof p, "%s/m.bin", tmp);
    base_nll = eval_nll(p, 1);
    snprintf(p, sizeof p, "%s/merged", tmp);
    merged_nll = eval_nll(p, 0);
    printf("  eval NLL on the training text: original %.4f, merged %.4f\n", base_nll, merged_nll);
    CHECK(isfinite(base_nll) && isfinite(merged_nll) && merged_nll < base_nll - 0.2,
          "eval of the merged model (%.4f) is not better than the original's (%.4f)", merged_nll, base_nll);
    {   /* eval runs it as a softmax model, not a linearized one */
        snprintf(q, sizeof q, "%s eval --model %s/merged --data %s/d.txt >%s/log.txt 2>&1", bin, tmp, tmp, tmp);
        CHECK(tiny_sh(q) == 0 && log_has("softmax attention") && !log_has("linearized"),
              "eval does not see the merged directory as a softmax model");
    }

    printf("merged weights = base + LoRA (one sequence through the trainer)\n");
    {
        lc_model base, merged;
        lc_lolcats lp;
        lc_error err;
        int tok[32], lab[32], i;
        lc_rng r;
        lc_rng_seed(&r, 3);
        for (i = 0; i < 32; i++) tok[i] = 3 + (int)(lc_rng_u64(&r) % 256);
        for (i = 0; i < 32; i++) lab[i] = i + 1 < 32 ? tok[i + 1] : -1;
        snprintf(p, sizeof p, "%s/m.bin", tmp);
        snprintf(q, sizeof q, "%s/merged", tmp);
        if (lc_model_load(&base, p, &err) == LOLCATS_OK) {
            if (lc_model_load(&merged, q, &err) == LOLCATS_OK) {
                snprintf(q, sizeof q, "%s/ck.safetensors", tmp);
                if (lc_lolcats_load(&lp, q, &base, &err) == LOLCATS_OK) {
                    double a = seq_loss(&base, &lp, tok, lab, 32), b = seq_loss(&merged, NULL, tok, lab, 32),
                           o = seq_loss(&base, NULL, tok, lab, 32);
                    printf("  base + LoRA %.6f, merged %.6f, base alone %.6f\n", a, b, o);
                    CHECK(lp.lora_rank > 0, "the checkpoint has no LoRA");
                    CHECK(fabs(a - b) <= 1e-4 * fabs(a) + 1e-5, "merged %.7f != base + LoRA %.7f", b, a);
                    CHECK(fabs(a - o) > 1e-3, "the LoRA changes nothing (%.6f vs %.6f)", a, o);
                    lc_lolcats_free(&lp);
                } else CHECK(0, "%s", err.msg);
                lc_model_free(&merged);
            } else CHECK(0, "%s", err.msg);
            lc_model_free(&base);
        } else CHECK(0, "%s", err.msg);
    }

    printf("resume of the finished run\n");
    snprintf(p, sizeof p, "finetune --softmax " TRAIN " --out %s/ck.safetensors --resume", tmp, tmp, tmp, tmp);
    CHECK(run(p) == 0 && log_has("already finished"), "--resume of a finished --softmax run");

    printf("refused combinations\n");
    {
        static const struct { const char *cmd, *extra, *msg; } bad[] = {
            {"finetune --softmax", "--lolcats identity", "--softmax with --lolcats"},
            {"finetune --softmax", "--train-feature-maps", "--softmax with --train-feature-maps"},
            {"finetune --softmax", "--peft PEFTDIR", "--softmax with --peft"},
            {"linearize --softmax", "", "--softmax is an option of finetune"},
            {"distill --softmax", "", "--softmax is an option of finetune"},
            {"finetune", "", "needs --model, --data and --out and --lolcats"},
        };
        int i;
        for (i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
            int rc;
            snprintf(p, sizeof p, "%s " TRAIN " --out %s/bad.safetensors %s", bad[i].cmd, tmp, tmp, tmp, tmp,
                     bad[i].extra);
            rc = run(p);
            CHECK(rc == 2 && log_has(bad[i].msg), "`%s ... %s`: exit %d, want 2 and '%s'", bad[i].cmd, bad[i].extra,
                  rc, bad[i].msg);
            snprintf(q, sizeof q, "%s/bad.safetensors", tmp);
            CHECK(stat(q, &st) != 0, "`%s %s` wrote %s", bad[i].cmd, bad[i].extra, q);
        }
    }
    if (check_fail_ == 0) {
        snprintf(p, sizeof p, "rm -rf '%s'", tmp);
        if (tiny_sh(p) != 0) printf("note: could not remove %s\n", tmp);
    }
    return check_done();
}
