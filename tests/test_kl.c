/* test_kl.c - stage-2 distillation to the teacher's logits (issue 19 item 4):
   lc_loss_kl against a naive double implementation and central finite
   differences (double loss of float inputs), KL(p || p) = 0, the tau^2 scaling
   (tau = KL of logits / tau at tau 1, times tau^2), masked rows, in-place use;
   then lc_train_lm_step with kl_factor on a tiny frozen model: the loss equals
   ce_factor * CE + A * KL computed separately from the student's logits and the
   teacher's (lc_model_forward of the frozen model), the whole step's gradient
   against finite differences on LoRA and feature-map entries, kl_factor 0 is
   bit-identical to plain cross-entropy, and bad weights are refused by name;
   then the command line ($LOLCATS_BIN, default build/lolcats): bad --kl-factor /
   --kl-temp / --ce-factor values and misplaced flags exit 2 naming them, and a
   tiny linearize on ../shared's stories260K (SKIPPED when absent) with
   --kl-factor writes "ce" and "kl" into --json-log and the loss weights into
   the checkpoint's metadata, while a default run's lines stay as they were. */
#define _POSIX_C_SOURCE 200809L  /* setenv */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "fd_train.h"

#include <string.h>
#include <sys/wait.h>

/* ---- the kernel ---- */

/* tau^2 * mean KL(softmax(t/tau) || softmax(s/tau)) over rows with labels >= 0, in double */
static double naive_kl(const float *s, const float *t, const int *labels, int T, int V, double tau) {
    double total = 0;
    int r, v, n = 0;
    for (r = 0; r < T; r++) {
        double zs = 0, zt = 0, kl = 0;
        if (labels && labels[r] < 0) continue;
        n++;
        for (v = 0; v < V; v++) {
            zs += exp((double)s[r * V + v] / tau);
            zt += exp((double)t[r * V + v] / tau);
        }
        for (v = 0; v < V; v++) {
            double p = exp((double)t[r * V + v] / tau) / zt, q = exp((double)s[r * V + v] / tau) / zs;
            kl += p * log(p / q);
        }
        total += kl;
    }
    return n ? total / n * tau * tau : 0;
}

static void kernel_checks(void) {
    enum { T = 6, V = 9 };
    float s[T * V], t[T * V], d[T * V], d2[T * V], buf[T * V];
    int labels[T] = {3, -1, 0, 8, -1, 2}, n, i;
    double taus[3] = {1.0, 0.5, 2.5};
    int k;
    lc_rng r;
    lc_rng_seed(&r, 5);
    for (i = 0; i < T * V; i++) {
        s[i] = 2.0f * lc_rng_normal(&r);
        t[i] = 2.0f * lc_rng_normal(&r);
    }
    t[4] = 80.0f;   /* large logits: the log-sum-exp must stay finite */
    s[5] = -90.0f;
    for (k = 0; k < 3; k++) {
        float tau = (float)taus[k], fac = 0.7f;
        double L, ref, num = 0, den = 0, worst = 0;
        memset(d, 0x7f, sizeof d);   /* SET semantics: every element written */
        L = lc_loss_kl(d, s, t, labels, T, V, tau, fac, &n);
        ref = naive_kl(s, t, labels, T, V, (double)tau) * (double)fac;
        printf("tau %.2f: loss %.9f naive %.9f\n", (double)tau, L, ref);
        CHECK(fabs(L - ref) <= 1e-12 * (1 + fabs(ref)), "tau %g: kl %.15g vs naive %.15g", (double)tau, L, ref);
        CHECK(n == 4, "tau %g: %d scored rows, expected 4", (double)tau, n);
        for (i = 0; i < T * V; i++) {
            float keep = s[i], h = 1e-3f;
            double lp, lm, fd;
            s[i] = keep + h; lp = lc_loss_kl(NULL, s, t, labels, T, V, tau, fac, NULL);
            s[i] = keep - h; lm = lc_loss_kl(NULL, s, t, labels, T, V, tau, fac, NULL);
            s[i] = keep;
            fd = (lp - lm) / (double)((keep + h) - (keep - h));
            num += ((double)d[i] - fd) * ((double)d[i] - fd);
            den += fd * fd;
            if (fabs((double)d[i] - fd) > worst) worst = fabs((double)d[i] - fd);
            if (labels[i / V] < 0) CHECK(d[i] == 0.0f, "tau %g: unscored row %d has gradient %g", (double)tau, i / V, (double)d[i]);
        }
        printf("  gradient vs central FD: rel err %.2e, max abs %.2e\n", sqrt(num / den), worst);
        CHECK(sqrt(num / den) < 1e-5 && worst < 1e-6, "tau %g: gradient rel err %.3e max abs %.3e", (double)tau,
              sqrt(num / den), worst);
        {   /* tau^2 scaling: the loss at tau equals tau^2 times the loss of logits / tau at tau = 1 */
            float s2[T * V], t2[T * V];
            double L1;
            for (i = 0; i < T * V; i++) { s2[i] = (float)((double)s[i] / (double)tau); t2[i] = (float)((double)t[i] / (double)tau); }
            L1 = lc_loss_kl(NULL, s2, t2, labels, T, V, 1.0f, fac, NULL) * (double)tau * (double)tau;
            CHECK(fabs(L1 - L) <= 1e-5 * fabs(L), "tau %g: tau^2 KL(./tau) %.9g vs %.9g", (double)tau, L1, L);
        }
        /* in place: the gradient may overwrite the teacher or the student */
        memcpy(buf, t, sizeof buf);
        lc_loss_kl(buf, s, buf, labels, T, V, tau, fac, NULL);
        CHECK(!memcmp(buf, d, sizeof d), "tau %g: gradient written over the teacher differs", (double)tau);
        memcpy(buf, s, sizeof buf);
        lc_loss_kl(buf, buf, t, labels, T, V, tau, fac, NULL);
        CHECK(!memcmp(buf, d, sizeof d), "tau %g: gradient written over the student differs", (double)tau);
    }
    /* KL(p || p) = 0, gradient 0, exactly; every row scored when labels is NULL */
    {
        double L = lc_loss_kl(d2, s, s, NULL, T, V, 1.7f, 3.0f, &n);
        int nz = 0;
        for (i = 0; i < T * V; i++) nz += d2[i] != 0.0f;
        CHECK(L == 0.0 && nz == 0, "KL(p||p) = %g with %d non-zero gradient entries", L, nz);
        CHECK(n == T, "labels NULL: %d rows scored, expected %d", n, T);
    }
    /* KL >= 0, and a shift of a row's logits changes nothing */
    {
        float s3[T * V];
        double L0 = lc_loss_kl(NULL, s, t, NULL, T, V, 1.0f, 1.0f, NULL), L1;
        for (i = 0; i < T * V; i++) s3[i] = s[i] + (float)(i / V) * 4.0f;
        L1 = lc_loss_kl(NULL, s3, t, NULL, T, V, 1.0f, 1.0f, NULL);
        CHECK(L0 > 0 && fabs(L1 - L0) < 1e-5 * L0, "KL %g, shifted rows %g", L0, L1);
    }
    /* no scored row: 0 and a zero gradient */
    {
        int none[T] = {-1, -1, -1, -1, -1, -1}, nz = 0;
        double L = lc_loss_kl(d2, s, t, none, T, V, 1.0f, 1.0f, &n);
        for (i = 0; i < T * V; i++) nz += d2[i] != 0.0f;
        CHECK(L == 0.0 && n == 0 && nz == 0, "no scored rows: loss %g, n %d, %d non-zero", L, n, nz);
    }
}

/* ---- the trainer ---- */

enum { NT = 13 };
static int tokens[NT], labels[NT];

static lc_model_config tiny_cfg(void) {
    lc_model_config c;
    memset(&c, 0, sizeof c);
    c.dim = 16; c.hidden_dim = 24; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.head_dim = 4;
    c.vocab_size = 11; c.seq_len = 64; c.norm_eps = 1e-5f; c.rope_theta = 10000.0f;
    c.tied = 0; c.bos_id = 1; c.eos_id = 2;
    snprintf(c.arch, sizeof c.arch, "tiny");
    return c;
}

static double step_loss(lc_train *t, int unused) {
    (void)unused;
    double L = 0;
    int n;
    lc_error err;
    if (lc_train_lm_step(t, tokens, labels, NT, 0, &L, &n, &err)) return (double)NAN;
    return L;
}

/* The teacher: an fp32 model with random weights (made by a full trainer, whose
   buffer holds them); students train LoRA + maps on a frozen view of it. */
static lc_train teacher_owner;
static lc_model frozen;

static int make_teacher(void) {
    lc_model_config mc = tiny_cfg();
    lc_train_cfg tc = lc_train_cfg_default();
    lc_ctx ctx;
    lc_error err;
    lc_rng r;
    size_t k;
    int l, c;
    lc_ctx_init(&ctx);
    tc.attn = LOLCATS_ATTN_SOFTMAX; tc.trainable = LOLCATS_TRAIN_FULL; tc.lora_rank = 0; tc.max_tokens = NT;
    if (!CHECK(lc_train_init_full(&teacher_owner, &ctx, &mc, &tc, &err) == LOLCATS_OK, "teacher: %s", err.msg)) return 1;
    lc_rng_seed(&r, 21);
    for (k = 0; k < teacher_owner.n_params; k++) teacher_owner.params[k] *= 10.0f;   /* attention not uniform */
    for (l = 0; l < mc.n_layers; l++)
        for (c = 0; c < mc.dim; c++) {
            ((float *)teacher_owner.model->layers[l].rms_att.data)[c] = 1.0f + 0.1f * lc_rng_normal(&r);
            ((float *)teacher_owner.model->layers[l].rms_ffn.data)[c] = 1.0f + 0.1f * lc_rng_normal(&r);
        }
    for (c = 0; c < mc.dim; c++) ((float *)teacher_owner.model->rms_final.data)[c] = 1.0f;
    frozen = *teacher_owner.model;   /* the same weights, seen as a loaded (frozen) model */
    return 0;
}

static int make_student(lc_train *t, float kl, float tau, float ce) {
    lc_train_cfg tc = lc_train_cfg_default();
    lc_ctx ctx;
    lc_error err;
    lc_rng r;
    int l, tg;
    size_t k;
    const lc_model_config *mc = &frozen.cfg;
    lc_ctx_init(&ctx);
    tc.attn = LOLCATS_ATTN_HYBRID; tc.trainable = LOLCATS_TRAIN_LORA | LOLCATS_TRAIN_FMAPS;
    tc.feature_dim = 3; tc.lora_rank = 2; tc.lora_alpha = 4; tc.hybrid.window = 4; tc.max_tokens = NT; tc.seed = 3;
    tc.kl_factor = kl; tc.kl_temp = tau; tc.ce_factor = ce;
    if (!CHECK(lc_train_init(t, &ctx, &frozen, &tc, &err) == LOLCATS_OK, "student: %s", err.msg)) return 1;
    lc_rng_seed(&r, 77);   /* LoRA B, maps and window factors non-trivial */
    for (l = 0; l < mc->n_layers; l++)
        for (tg = 0; tg < 4; tg++) {
            size_t off = t->lora_off[l][tg], nb;
            if (!off) continue;
            off += (size_t)tc.lora_rank * (tg == 3 ? mc->n_heads * mc->head_dim : mc->dim);
            nb = (size_t)tc.lora_rank * (tg == 0 ? mc->n_heads * mc->head_dim : tg == 3 ? mc->dim : mc->n_kv_heads * mc->head_dim);
            for (k = 0; k < nb; k++) t->params[off + k] = 0.3f * lc_rng_normal(&r);
        }
    for (k = 0; k < (size_t)2 * mc->n_layers * mc->n_heads * mc->head_dim * tc.feature_dim; k++)
        t->fmap_q[k] += 0.3f * lc_rng_normal(&r);
    for (k = 0; k < (size_t)mc->n_layers * mc->n_heads; k++) t->wf[k] = lc_rng_normal(&r);
    return 0;
}

/* cfg.kl_cache_bytes: steps on sequences A, B, A, B, A with AdamW between them give the same
   losses and parameters as without the cache, bit for bit; the second A and B come from it */
static void kl_cache_run(size_t budget, double *losses, float *params, long *hits, long *misses, int *ent,
                         size_t *bytes) {
    int tok2[NT], s, n;
    lc_train t;
    lc_error err;
    lc_adamw_cfg opt = lc_adamw_cfg_default();
    opt.lr = 1e-2f;
    for (s = 0; s < NT; s++) tok2[s] = (tokens[s] + 5) % 11;
    if (make_student(&t, 0.7f, 1.3f, 1.0f)) return;
    t.cfg.kl_cache_bytes = budget;
    for (s = 0; s < 5; s++) {
        lc_train_zero_grad(&t);
        CHECK(lc_train_lm_step(&t, s % 2 ? tok2 : tokens, labels, NT, 1, &losses[s], &n, &err) == LOLCATS_OK, "%s",
              err.msg);
        lc_train_adamw(&t, &opt, 1.0f);
    }
    memcpy(params, t.params, sizeof(float) * t.n_params);
    lc_train_kl_cache(&t, hits, misses, ent, bytes);
    lc_train_free(&t);
}

static void kl_cache_checks(void) {
    enum { V = 11 };
    static float p0[1 << 16], p1[1 << 16];
    double l0[5], l1[5];
    long h, m;
    int e, i;
    size_t b, one = sizeof(int) * NT + sizeof(float) * NT * V;
    lc_train t;
    if (make_student(&t, 0.7f, 1.3f, 1.0f)) return;
    if (!CHECK(t.n_params <= (size_t)(1 << 16), "test buffers too small for %zu parameters", t.n_params)) return;
    b = lc_train_memory_bytes(&frozen, &t.cfg);
    t.cfg.kl_cache_bytes = 12345;
    CHECK(lc_train_memory_bytes(&frozen, &t.cfg) == b + 12345, "kl_cache_bytes is not counted by lc_train_memory_bytes");
    lc_train_free(&t);
    kl_cache_run(0, l0, p0, &h, &m, &e, &b);
    CHECK(h == 0 && m == 5 && e == 0 && b == 0, "no cache: hits %ld misses %ld entries %d bytes %zu", h, m, e, b);
    for (i = 0; i < 3; i++) {
        size_t budget = i == 0 ? (size_t)1 << 20 : i == 1 ? one : one - 1;
        long want_h = i == 0 ? 3 : i == 1 ? 2 : 0;
        kl_cache_run(budget, l1, p1, &h, &m, &e, &b);
        CHECK(!memcmp(l0, l1, sizeof l0) && !memcmp(p0, p1, sizeof(float) * (size_t)(1 << 16)),
              "kl cache of %zu bytes: losses or parameters differ from the run without it", budget);
        CHECK(h == want_h && m == 5 - want_h && e == (i == 0 ? 2 : i == 1 ? 1 : 0) && b == (size_t)e * one,
              "kl cache of %zu bytes: hits %ld (want %ld) misses %ld entries %d bytes %zu", budget, h, want_h, m, e, b);
    }
    printf("kl cache: 5 steps over 2 sequences, the same losses and parameters with 0, 2, 1 and 0 sequences kept\n");
}

static void trainer_checks(void) {
    enum { V = 11 };
    float student[NT * V], teacher[NT * V];
    lc_train t0, t1;
    lc_run run;
    lc_ctx ctx;
    lc_error err;
    double L, L0, ce, kl, ce_ref, kl_ref;
    int n;
    const float A = 0.8f, TAU = 1.5f, CF = 0.6f;
    lc_ctx_init(&ctx);
    if (make_teacher()) return;
    /* the student's logits (plain CE, forward only) and the teacher's, separately */
    if (make_student(&t0, 0.0f, 1.0f, 1.0f)) return;
    CHECK(lc_train_lm_step(&t0, tokens, labels, NT, 0, &L0, &n, &err) == LOLCATS_OK, "%s", err.msg);
    memcpy(student, lc_train_logits(&t0), sizeof student);
    CHECK(lc_run_init(&run, &frozen, NT, NT, &err) == LOLCATS_OK, "run: %s", err.msg);
    CHECK(lc_model_forward(&ctx, &frozen, &run, tokens, NT, teacher, &err) == LOLCATS_OK, "teacher: %s", err.msg);
    lc_run_free(&run);
    ce_ref = lc__xent(&ctx, NULL, student, labels, NT, V, NULL);  // the trainer's path (>>xent-fast)
    kl_ref = lc_loss_kl(NULL, student, teacher, labels, NT, V, TAU, 1.0f, NULL);
    /* kl_factor 0: today's loss, bit for bit */
    CHECK(L0 == ce_ref, "kl_factor 0: loss %.17g, plain cross-entropy %.17g", L0, ce_ref);
    lc_train_loss_parts(&t0, &ce, &kl);
    CHECK(ce == L0 && kl == 0, "kl_factor 0: parts ce %g kl %g", ce, kl);
    CHECK(kl_ref > 1e-3, "the student differs from the teacher (KL %g)", kl_ref);

    /* with kl_factor: loss == CF * CE + A * tau^2 KL of the separately computed logits */
    if (make_student(&t1, A, TAU, CF)) return;
    lc_train_zero_grad(&t1);
    CHECK(lc_train_lm_step(&t1, tokens, labels, NT, 1, &L, &n, &err) == LOLCATS_OK, "%s", err.msg);
    lc_train_loss_parts(&t1, &ce, &kl);
    printf("kl_factor %.2f tau %.2f ce_factor %.2f: loss %.9f = %.2f x ce %.9f + %.2f x kl %.9f (separately: %.9f, %.9f)\n",
           (double)A, (double)TAU, (double)CF, L, (double)CF, ce, (double)A, kl, ce_ref, kl_ref);
    CHECK(ce == ce_ref, "ce part %.17g vs %.17g", ce, ce_ref);
    CHECK(fabs(kl - kl_ref) <= 1e-6 * kl_ref, "kl part %.17g vs teacher from lc_model_forward %.17g", kl, kl_ref);
    CHECK(fabs(L - ((double)CF * ce_ref + (double)A * kl_ref)) <= 1e-6 * L, "loss %.17g vs %.17g", L,
          (double)CF * ce_ref + (double)A * kl_ref);
    CHECK(n == 9, "scored %d tokens, expected 9", n);
    /* the whole step's gradient against finite differences */
    fd_params("LoRA layer 0 q (A then B)", &t1, t1.lora_off[0][0], (size_t)2 * (16 + 16), 40, step_loss, 0);
    fd_params("LoRA layer 1 v (A then B)", &t1, t1.lora_off[1][2], (size_t)2 * (16 + 8), 40, step_loss, 0);
    fd_params("LoRA layer 1 o (A then B)", &t1, t1.lora_off[1][3], (size_t)2 * (16 + 16), 40, step_loss, 0);
    fd_params("feature maps q", &t1, (size_t)(t1.fmap_q - t1.params), (size_t)2 * 4 * 4 * 3, 40, step_loss, 0);
    fd_params("window factors", &t1, (size_t)(t1.wf - t1.params), 8, 40, step_loss, 0);
    lc_train_free(&t1);
    /* KL alone (ce_factor 0): the same gradient check */
    if (make_student(&t1, 1.0f, 1.0f, 0.0f)) return;
    lc_train_zero_grad(&t1);
    CHECK(lc_train_lm_step(&t1, tokens, labels, NT, 1, &L, &n, &err) == LOLCATS_OK, "%s", err.msg);
    kl_ref = lc_loss_kl(NULL, student, teacher, labels, NT, V, 1.0f, 1.0f, NULL);
    CHECK(fabs(L - kl_ref) <= 1e-6 * kl_ref, "KL alone: loss %.17g vs %.17g", L, kl_ref);
    fd_params("KL alone: LoRA layer 0 k (A then B)", &t1, t1.lora_off[0][1], (size_t)2 * (16 + 8), 40, step_loss, 0);
    {   /* training on the KL alone brings the student towards the teacher */
        lc_adamw_cfg opt = lc_adamw_cfg_default();
        double L1 = 0;
        int s;
        opt.lr = 1e-2f;
        for (s = 0; s < 10; s++) {
            lc_train_zero_grad(&t1);
            lc_train_lm_step(&t1, tokens, labels, NT, 1, &L1, &n, &err);
            lc_train_adamw(&t1, &opt, 1.0f);
        }
        L1 = step_loss(&t1, 0);
        printf("  KL alone: %.6f -> %.6f after 10 AdamW steps\n", L, L1);
        CHECK(L1 < L, "10 AdamW steps on the KL did not lower it (%g -> %g)", L, L1);
    }
    lc_train_free(&t1);
    /* kl_factor 0 with other kl_temp: the same path, the same gradients */
    {
        lc_train t2;
        double La, Lb;
        if (make_student(&t2, 0.0f, 4.0f, 1.0f)) return;
        lc_train_zero_grad(&t0);
        lc_train_zero_grad(&t2);
        lc_train_lm_step(&t0, tokens, labels, NT, 1, &La, &n, &err);
        lc_train_lm_step(&t2, tokens, labels, NT, 1, &Lb, &n, &err);
        CHECK(La == Lb && !memcmp(t0.grads, t2.grads, sizeof(float) * t0.n_params),
              "kl_factor 0: kl_temp changed the loss or the gradients");
        CHECK(lc_train_memory_bytes(&frozen, &t2.cfg) == lc_train_memory_bytes(&frozen, &t0.cfg),
              "kl_factor 0 costs memory");
        t2.cfg.kl_factor = 1.0f;
        CHECK(lc_train_memory_bytes(&frozen, &t2.cfg) >= lc_train_memory_bytes(&frozen, &t0.cfg) + sizeof(float) * NT * V,
              "kl_factor 1: the teacher's logits are not counted");
        lc_train_free(&t2);
    }
    kl_cache_checks();
    /* bad values are refused by name */
    {
        lc_train t3;
        if (!make_student(&t3, 1.0f, 0.0f, 1.0f)) {
            lc_status st = lc_train_lm_step(&t3, tokens, labels, NT, 0, &L, &n, &err);
            CHECK(st == LOLCATS_ERR_ARG && strstr(err.msg, "kl_temp 0"), "kl_temp 0: status %d, '%s'", (int)st, err.msg);
            t3.cfg.kl_temp = 1.0f;
            t3.cfg.ce_factor = -1.0f;
            st = lc_train_lm_step(&t3, tokens, labels, NT, 0, &L, &n, &err);
            CHECK(st == LOLCATS_ERR_ARG && strstr(err.msg, "ce_factor -1"), "ce_factor -1: status %d, '%s'", (int)st, err.msg);
            lc_train_free(&t3);
        }
        teacher_owner.cfg.kl_factor = 1.0f;   /* full training: no frozen teacher */
        {
            lc_status st = lc_train_lm_step(&teacher_owner, tokens, labels, NT, 0, &L, &n, &err);
            CHECK(st == LOLCATS_ERR_ARG && strstr(err.msg, "frozen teacher"), "full training + kl: status %d, '%s'",
                  (int)st, err.msg);
        }
        teacher_owner.cfg.kl_factor = 0.0f;
    }
    lc_train_free(&t0);
    lc_train_free(&teacher_owner);
}

/* ---- the command line ---- */

#define KL_DIR "build/tests/kl"
static char out_buf[1 << 16];

#include "cli_run.h"
#include "same_file.h"

/* runs `lolcats ARGS`, stderr into out_buf; the exit code */
static int run_cli(const char *bin, const char *args) {
    return cli_run(KL_DIR, bin, args, NULL, 0, out_buf, sizeof out_buf);
}

static void cli_bad(const char *bin, const char *args, const char *want) {
    int rc = run_cli(bin, args);
    CHECK(rc == 2 && strstr(out_buf, "lolcats: error: ") && strstr(out_buf, want),
          "`lolcats %s`: exit %d, expected 2 naming %s: %s", args, rc, want, out_buf);
}

static void cli_checks(void) {
    const char *bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    const char *F = "finetune --model x --data y --lolcats z --out " KL_DIR "/never.safetensors";
    char a[2048], base[1024];
    FILE *f;
    if (system("mkdir -p " KL_DIR) != 0 || !(f = fopen(bin, "rb"))) {
        printf("SKIPPED: command-line checks (no %s)\n", bin);
        return;
    }
    fclose(f);
    snprintf(a, sizeof a, "%s --kl-temp 0", F); cli_bad(bin, a, "--kl-temp '0'");
    snprintf(a, sizeof a, "%s --kl-factor -1", F); cli_bad(bin, a, "--kl-factor '-1'");
    snprintf(a, sizeof a, "%s --kl-factor abc", F); cli_bad(bin, a, "--kl-factor 'abc'");
    snprintf(a, sizeof a, "%s --ce-factor nan", F); cli_bad(bin, a, "--ce-factor 'nan'");
    snprintf(a, sizeof a, "%s --ce-factor 0", F); cli_bad(bin, a, "--ce-factor 0 without --kl-factor");
    snprintf(a, sizeof a, "%s --kl-cache 64", F); cli_bad(bin, a, "--kl-cache keeps the teacher's logits of --kl-factor");
    snprintf(a, sizeof a, "%s --kl-factor 1 --kl-cache -3", F); cli_bad(bin, a, "--kl-cache '-3'");
    cli_bad(bin, "distill --model x --data y --out " KL_DIR "/never.safetensors --kl-factor 1", "finetune and linearize");
    CHECK(run_cli(bin, "help finetune") == 0 && (slurp(KL_DIR "/out.txt", out_buf, sizeof out_buf),
          strstr(out_buf, "--kl-factor A") && strstr(out_buf, "--kl-temp") && strstr(out_buf, "--ce-factor")),
          "help finetune does not document --kl-factor / --kl-temp / --ce-factor");
    if (!(f = fopen("../shared/models/stories260K/stories260K.bin", "rb"))) {
        printf("SKIPPED: linearize --kl-factor on stories260K (../shared/models/stories260K absent)\n");
        return;
    }
    fclose(f);
    if (system("head -n 200 ../shared/data/tinystories.valid-head.txt > " KL_DIR "/text.txt") != 0) {
        printf("SKIPPED: linearize --kl-factor (no ../shared/data/tinystories.valid-head.txt)\n");
        return;
    }
    snprintf(base, sizeof base, "linearize --model ../shared/models/stories260K/stories260K.bin --tokenizer "
             "../shared/models/stories260K/tok512.bin --data " KL_DIR "/text.txt --seq-len 64 --tokens 1024 "
             "--grad-accum 2 --val-seqs 2 --force");
    snprintf(a, sizeof a, "%s --out " KL_DIR "/kl.safetensors --json-log " KL_DIR "/kl.jsonl --kl-factor 0.5 "
             "--kl-temp 2 --ce-factor 0.25", base);
    if (CHECK(run_cli(bin, a) == 0, "`lolcats %s` failed: %s", a, out_buf)) {
        char *last;
        double loss = 0, ce = 0, kl = 0;
        slurp(KL_DIR "/kl.jsonl", out_buf, sizeof out_buf);
        last = strstr(out_buf, "\"stage\": 2");
        CHECK(last && strstr(last, "\"ce\": ") && strstr(last, "\"kl\": "), "stage 2 json lines lack ce / kl: %s", out_buf);
        if (last) {
            char *p = strstr(last, "\"loss\": "), *q = strstr(last, "\"ce\": "), *r = strstr(last, "\"kl\": ");
            if (p && q && r) {
                loss = atof(p + 8); ce = atof(q + 6); kl = atof(r + 6);
                CHECK(fabs(loss - (0.25 * ce + 0.5 * kl)) <= 1e-6 * loss && kl > 0,
                      "json: loss %.9g != 0.25 ce %.9g + 0.5 kl %.9g", loss, ce, kl);
            }
        }
        slurp(KL_DIR "/kl.safetensors", out_buf, sizeof out_buf);
        /* the JSON header follows the 8-byte length (its NUL bytes end a C string) */
        CHECK(strstr(out_buf + 8, "\"stage2_loss_ce_kl_temp\":\"0.25,0.5,2\"") != NULL ||
              strstr(out_buf + 8, "\"stage2_loss_ce_kl_temp\": \"0.25,0.5,2\"") != NULL,
              "checkpoint metadata lacks stage2_loss_ce_kl_temp 0.25,0.5,2");
    }
    {   /* --kl-cache: the same checkpoint, the repeated sequences' teacher passes from the cache */
        const char *line;
        char kb[1200];
        snprintf(kb, sizeof kb, "linearize --model ../shared/models/stories260K/stories260K.bin --tokenizer "
                 "../shared/models/stories260K/tok512.bin --data " KL_DIR "/short.txt --seq-len 64 --tokens 1024 "
                 "--val-seqs 1 --force --kl-factor 1");
        CHECK(system("head -n 12 " KL_DIR "/text.txt > " KL_DIR "/short.txt") == 0, "head failed");
        snprintf(a, sizeof a, "%s --out " KL_DIR "/kc0.safetensors", kb);
        CHECK(run_cli(bin, a) == 0 && !strstr(out_buf, "teacher logits cache"), "`lolcats %s`: %s", a, out_buf);
        snprintf(a, sizeof a, "%s --out " KL_DIR "/kc1.safetensors --kl-cache 64", kb);
        if (CHECK(run_cli(bin, a) == 0, "`lolcats %s` failed: %s", a, out_buf)) {
            long h = -1, n = -1;
            line = strstr(out_buf, "teacher logits cache: ");
            if (line) sscanf(line, "teacher logits cache: %ld of %ld", &h, &n);
            CHECK(line && h > 0 && n > h, "--kl-cache: no cache hits reported: %s", out_buf);
            CHECK(same_file(KL_DIR "/kc0.safetensors", KL_DIR "/kc1.safetensors"), "--kl-cache changed the checkpoint");
            printf("--kl-cache 64: %ld of %ld teacher passes from the cache, the same checkpoint\n", h, n);
        }
    }
    snprintf(a, sizeof a, "%s --out " KL_DIR "/plain.safetensors --json-log " KL_DIR "/plain.jsonl", base);
    setenv("LOLCATS_PROGRESS_SECONDS", "0", 1);  // a plain progress line at every step
    if (CHECK(run_cli(bin, a) == 0, "`lolcats %s` failed: %s", a, out_buf)) {
        /* the trainer's resident memory where /proc/self/statm exists: "mem N MiB" on the
           progress lines of both stages, "train_mib": N on every json line */
        FILE *sm = fopen("/proc/self/statm", "r");
        const char *s1 = strstr(out_buf, "[stage 1]"), *s2 = strstr(out_buf, "[stage 2]"), *mj;
        if (sm) {
            int prog_n = 0, mem_n = 0;
            fclose(sm);
            for (mj = out_buf; (mj = strstr(mj, "[stage ")) != NULL; mj++) {
                const char *eol = strchr(mj, '\n'), *mm = strstr(mj, "  mem ");
                prog_n++;
                mem_n += mm && (!eol || mm < eol) && atoi(mm + 6) > 0 && strstr(mm, " MiB") < eol;
            }
            CHECK(s1 && s2 && mem_n == prog_n, "%d of %d progress lines (stages 1 and 2) show \"mem N MiB\": %s",
                  mem_n, prog_n, out_buf);
        }
        slurp(KL_DIR "/plain.jsonl", out_buf, sizeof out_buf);
        CHECK(strstr(out_buf, "\"stage\": 2") && !strstr(out_buf, "\"kl\"") && !strstr(out_buf, "\"ce\""),
              "a default run's json lines changed: %s", out_buf);
        if (sm) {
            int lines_n = 0, mib_n = 0;
            for (mj = out_buf; (mj = strchr(mj, '\n')) != NULL; mj++) lines_n++;
            for (mj = out_buf; (mj = strstr(mj, "\"train_mib\": ")) != NULL; mj++) mib_n += atoi(mj + 13) > 0;
            CHECK(lines_n > 0 && mib_n == lines_n, "%d of %d json lines carry \"train_mib\": N > 0: %s", mib_n,
                  lines_n, out_buf);
        }
        slurp(KL_DIR "/plain.safetensors", out_buf, sizeof out_buf);
        CHECK(strstr(out_buf + 8, "\"lora_rank\"") && !strstr(out_buf + 8, "stage2_loss"),
              "a default checkpoint records a stage-2 loss (or its header was not read)");
    }
}

int main(void) {
    int i;
    lc_rng r;
    lc_rng_seed(&r, 9);
    for (i = 0; i < NT; i++) {
        tokens[i] = (int)(lc_rng_u64(&r) % 11);
        labels[i] = i < 4 ? -1 : (int)(lc_rng_u64(&r) % 11);   /* prompt positions ignored */
    }
    kernel_checks();
    trainer_checks();
    cli_checks();
    return check_done();
}
