/* cmd_demo.c - `lolcats demo`: the whole LoLCATs pipeline on an embedded
   default, no downloads. It
     1. generates a language: 4 topics, each a sparse bigram chain over the
        same 43 words; a sequence is BOS, its topic token, then 62 words. The
        next word depends on the previous word (local) AND on the topic token
        at position 1 (long range: far outside an 8-token window);
     2. trains a tiny Llama (2 layers, GQA 4/2 heads, softmax attention) on it
        from a fixed seed: the teacher;
     3. linearizes it: stage 1 attention transfer (feature maps + window
        factors, hybrid tk window 8), stage 2 LoRA (r 8, alpha 16);
     4. prints a table - teacher, linear-only and hybrid without attention
        transfer, hybrid after attention transfer, after LoRA, and the LoRA-only
        ablation - with held-out loss, perplexity and next-word accuracy, and
        (with --report DIR) writes PNGs of attention maps and loss curves. */
#define _POSIX_C_SOURCE 200809L
#include "tools.h"
#include "args.h"
#include "demo_report.h"
#include "outsafe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { N_TOPIC = 4, N_WORD = 43, VOCAB = 50, SEQ = 64, BOS = 1, TOPIC0 = 3, WORD0 = 7, N_EVAL = 48 };

typedef struct {
    int next[N_TOPIC][N_WORD][3];     /* the likely successors of each word, per topic */
} demo_lang;

static void lang_init(demo_lang *g, uint64_t seed) {
    lc_rng r;
    int t, w, k;
    lc_rng_seed(&r, seed);
    for (t = 0; t < N_TOPIC; t++)
        for (w = 0; w < N_WORD; w++)
            for (k = 0; k < 3; k++) g->next[t][w][k] = (int)(lc_rng_u64(&r) % N_WORD);
}

/* BOS, topic, then words: 70% / 20% / 5% to the three successors, 5% anywhere */
static void lang_sample(const demo_lang *g, lc_rng *r, int *tok) {
    int t = (int)(lc_rng_u64(r) % N_TOPIC), w = (int)(lc_rng_u64(r) % N_WORD), i;
    tok[0] = BOS;
    tok[1] = TOPIC0 + t;
    tok[2] = WORD0 + w;
    for (i = 3; i < SEQ; i++) {
        float u = lc_rng_uniform(r);
        w = u < 0.70f ? g->next[t][w][0] : u < 0.90f ? g->next[t][w][1] : u < 0.95f ? g->next[t][w][2]
                                                                                     : (int)(lc_rng_u64(r) % N_WORD);
        tok[i] = WORD0 + w;
    }
}

static void labels_of(const int *tok, int *lab) {
    int i;
    for (i = 0; i < SEQ - 1; i++) lab[i] = i >= 2 ? tok[i + 1] : -1;  /* score the words */
    lab[SEQ - 1] = -1;
}

typedef struct { double loss, acc; } demo_score;

static demo_score evaluate(lc_train *t, int attn, int eval_set[N_EVAL][SEQ]) {
    demo_score s = {0, 0};
    int e, i, n, correct = 0, total = 0, saved = t->cfg.attn;
    lc_error err;
    t->cfg.attn = attn;
    for (e = 0; e < N_EVAL; e++) {
        int lab[SEQ];
        double L;
        const float *lg;
        labels_of(eval_set[e], lab);
        if (lc_train_lm_step(t, eval_set[e], lab, SEQ, 0, &L, &n, &err)) {
            fprintf(stderr, "lolcats demo: %s\n", err.msg);
            exit(1);
        }
        s.loss += L * n;
        lg = lc_train_logits(t);
        for (i = 0; i < SEQ; i++)
            if (lab[i] >= 0) {
                correct += lc_argmax(lg + (size_t)i * VOCAB, VOCAB) == lab[i];
                total++;
            }
    }
    t->cfg.attn = saved;
    s.loss /= total;
    s.acc = (double)correct / total;
    return s;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* one stage of training on fresh sequences; curve gets the running loss */
static void train_stage(lc_train *t, const demo_lang *g, lc_rng *r, int steps, int accum, float lr, int distill,
                        float *curve, const char *what) {
    lc_adamw_cfg opt = lc_adamw_cfg_default();
    int s, a, tok[SEQ], lab[SEQ], n;
    double ema = 0, t0 = now_s();
    lc_error err;
    opt.lr = lr;
    for (s = 0; s < steps; s++) {
        double L = 0, l1;
        lc_train_zero_grad(t);
        for (a = 0; a < accum; a++) {
            lang_sample(g, r, tok);
            if (distill) {
                if (lc_train_distill_step(t, tok, SEQ, 1, &l1, NULL, &err)) { fprintf(stderr, "lolcats demo: %s\n", err.msg); exit(1); }
            } else {
                labels_of(tok, lab);
                if (lc_train_lm_step(t, tok, lab, SEQ, 1, &l1, &n, &err)) { fprintf(stderr, "lolcats demo: %s\n", err.msg); exit(1); }
            }
            L += l1 / accum;
        }
        lc_train_adamw(t, &opt, 1.0f / (float)accum);
        ema = s ? 0.95 * ema + 0.05 * L : L;
        if (curve) curve[s] = (float)L;
        tool_progress(what, s + 1, steps, (double)(s + 1) * accum * SEQ / (now_s() - t0), "tok/s", ema);
    }
    tool_progress_done();
}

static const char demo_usage[] =
    "lolcats demo [--report DIR] [--seed S] [--scale X]\n"
    "Runs the whole LoLCATs pipeline on a language it generates (4 topics x bigram\n"
    "chains; the topic token sits far outside the 8-token window): trains a tiny\n"
    "Llama teacher, then attention transfer and LoRA, and prints held-out loss,\n"
    "perplexity and accuracy for each model. About a minute on 2 cores.\n"
    "  --report DIR  write attention maps and loss curves (PNG) and summary.json\n"
    "  -s, --seed S  seed of the language, the data and the inits (default 1)\n"
    "  --scale X     multiply every training budget by X, in (0, 1000] (default 1)\n"
    "  -t, --threads N  OpenMP threads (OMP_NUM_THREADS or all cores)\n";

int cmd_demo(int argc, char **argv) {
    static int eval_set[N_EVAL][SEQ];
    const char *report = NULL;
    uint64_t seed = 1;
    double scale = 1.0, t_start = now_s();
    int i, steps_teacher, steps_s1, steps_s2;
    lc_ctx ctx;
    lc_error err;
    lc_model_config mc;
    lc_train_cfg tc;
    lc_train teacher, lol, abl;
    demo_lang g;
    lc_rng r;
    demo_score s_teacher, s_lin, s_hyb0, s_at, s_lora, s_abl;
    float *curve_t, *curve_s1, *curve_s2;
    for (i = 1; i < argc; i++) {
        const char *a = tool_arg_alias(argv[i]);
        if (tool_arg_is_help(a)) return tool_arg_help(demo_usage, NULL);
        else if (!strcmp(a, "--report")) report = tool_arg_value(argc, argv, &i);
        else if (!strcmp(a, "--seed")) seed = tool_arg_u64(a, tool_arg_value(argc, argv, &i));
        else if (!strcmp(a, "--scale")) scale = tool_arg_num(a, tool_arg_value(argc, argv, &i), 0, 1000, 1);
        else if (!strcmp(a, "--threads")) tool_arg_threads(a, tool_arg_value(argc, argv, &i));
        else tool_arg_unknown(argv[0], argv[i], demo_usage, NULL);
    }
    if (!(scale > 0)) { fprintf(stderr, "lolcats demo: --scale must be positive\n"); return 2; }
    outsafe_output("--report", report, OUTSAFE_OUT_DIR);   /* writable before a minute of training */
    if (outsafe_begin(argc, argv, 0, 1)) return 1;
    steps_teacher = (int)(600 * scale);
    steps_s1 = (int)(150 * scale);
    steps_s2 = (int)(200 * scale);
    if (steps_teacher < 1) steps_teacher = 1;
    if (steps_s1 < 1) steps_s1 = 1;
    if (steps_s2 < 1) steps_s2 = 1;
    curve_t = (float *)calloc((size_t)steps_teacher, sizeof(float));
    curve_s1 = (float *)calloc((size_t)steps_s1, sizeof(float));
    curve_s2 = (float *)calloc((size_t)steps_s2, sizeof(float));
    lc_ctx_init(&ctx);
    lang_init(&g, seed);
    lc_rng_seed(&r, seed * 7919 + 17);
    for (i = 0; i < N_EVAL; i++) lang_sample(&g, &r, eval_set[i]);

    memset(&mc, 0, sizeof mc);
    mc.dim = 64; mc.hidden_dim = 160; mc.n_layers = 2; mc.n_heads = 4; mc.n_kv_heads = 2; mc.head_dim = 16;
    mc.vocab_size = VOCAB; mc.seq_len = SEQ; mc.norm_eps = 1e-5f; mc.rope_theta = 10000.0f; mc.tied = 1;
    mc.bos_id = BOS; mc.eos_id = 2;
    snprintf(mc.arch, sizeof mc.arch, "lolcats-demo");

    tc = lc_train_cfg_default();
    tc.attn = LOLCATS_ATTN_SOFTMAX; tc.trainable = LOLCATS_TRAIN_FULL; tc.lora_rank = 0;
    tc.max_tokens = SEQ; tc.seed = seed;
    printf("lolcats demo: topic-bigram language, vocab %d, sequences of %d, simd %s\n", VOCAB, SEQ, lc_simd_name(ctx.simd));
    printf("1. teacher: a %d-layer Llama (dim %d, %d heads / %d kv heads), softmax attention, trained from scratch\n",
           mc.n_layers, mc.dim, mc.n_heads, mc.n_kv_heads);
    if (lc_train_init_full(&teacher, &ctx, &mc, &tc, &err)) return tool_report(&err);
    train_stage(&teacher, &g, &r, steps_teacher, 4, 3e-3f, 0, curve_t, "teacher");
    s_teacher = evaluate(&teacher, LOLCATS_ATTN_SOFTMAX, eval_set);

    /* the converted model: hybrid tk, window 8, Hedgehog maps at identity */
    tc = lc_train_cfg_default();
    tc.attn = LOLCATS_ATTN_HYBRID; tc.trainable = LOLCATS_TRAIN_FMAPS; tc.feature_dim = 16;
    tc.hybrid.window = 8; tc.lora_rank = 8; tc.lora_alpha = 16; tc.max_tokens = SEQ; tc.seed = seed;
    if (lc_train_init(&lol, &ctx, teacher.model, &tc, &err)) return tool_report(&err);
    if (lc_train_init(&abl, &ctx, teacher.model, &tc, &err)) return tool_report(&err);
    s_lin = evaluate(&lol, LOLCATS_ATTN_LINEAR, eval_set);
    s_hyb0 = evaluate(&lol, LOLCATS_ATTN_HYBRID, eval_set);
    if (report) tool_report_attention(report, "before", &lol, eval_set[0], SEQ, mc.n_layers - 1);

    printf("2. stage 1, attention transfer: feature maps + window factors, MSE x 1000, lr 1e-2\n");
    train_stage(&lol, &g, &r, steps_s1, 2, 1e-2f, 1, curve_s1, "attention transfer");
    s_at = evaluate(&lol, LOLCATS_ATTN_HYBRID, eval_set);
    if (report) tool_report_attention(report, "after", &lol, eval_set[0], SEQ, mc.n_layers - 1);

    printf("3. stage 2, LoRA r=8 alpha=16 on q,k,v,o: next-word cross-entropy, lr 1e-3\n");
    lol.cfg.trainable = LOLCATS_TRAIN_LORA;
    train_stage(&lol, &g, &r, steps_s2, 2, 1e-3f, 0, curve_s2, "LoRA");
    s_lora = evaluate(&lol, LOLCATS_ATTN_HYBRID, eval_set);
    if (report) tool_report_lora(report, &lol, mc.n_layers - 1);

    printf("4. ablation: LoRA on the identity maps, no attention transfer (same budget)\n");
    abl.cfg.trainable = LOLCATS_TRAIN_LORA;
    train_stage(&abl, &g, &r, steps_s2, 2, 1e-3f, 0, NULL, "LoRA only");
    s_abl = evaluate(&abl, LOLCATS_ATTN_HYBRID, eval_set);

    printf("\nheld-out: %d sequences, %d scored words each (the topic is %d+ tokens back for most)\n", N_EVAL, SEQ - 3, 8);
    printf("  %-52s %8s %8s %8s\n", "model", "loss", "ppl", "acc");
#define ROW(name, s) printf("  %-52s %8.4f %8.3f %7.1f%%\n", name, (s).loss, exp((s).loss), 100 * (s).acc)
    ROW("teacher (softmax attention)", s_teacher);
    ROW("linear attention, no attention transfer", s_lin);
    ROW("hybrid tk w=8, no attention transfer", s_hyb0);
    ROW("hybrid tk w=8, after attention transfer", s_at);
    ROW("hybrid tk w=8, after attention transfer + LoRA", s_lora);
    ROW("hybrid tk w=8, LoRA only (ablation)", s_abl);
#undef ROW
    if (report) {
        tool_report_curves(report, curve_t, steps_teacher, curve_s1, steps_s1, curve_s2, steps_s2);
        tool_report_summary(report, s_teacher.loss, s_teacher.acc, s_lin.loss, s_lin.acc, s_hyb0.loss, s_hyb0.acc,
                            s_at.loss, s_at.acc, s_lora.loss, s_lora.acc, s_abl.loss, s_abl.acc);
    }
    printf("verdict: %s - attention transfer %s the hybrid's held-out loss (%.3f -> %.3f), LoRA %s it (%.3f); teacher %.3f; %.0f s\n",
           s_at.loss < s_hyb0.loss && s_lora.loss <= s_at.loss + 1e-3 ? "OK" : "UNEXPECTED",
           s_at.loss < s_hyb0.loss ? "lowered" : "did not lower", s_hyb0.loss, s_at.loss,
           s_lora.loss <= s_at.loss ? "lowered" : "raised", s_lora.loss, s_teacher.loss, now_s() - t_start);
    lc_train_free(&abl);
    lc_train_free(&lol);
    lc_train_free(&teacher);
    free(curve_t); free(curve_s1); free(curve_s2);
    return 0;
}
