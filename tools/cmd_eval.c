/* cmd_eval.c - `lolcats eval`: mean next-token NLL and perplexity.

   Scoring rules (issue 3), so figures compare with other tools:
   - a text file is tokenized once as [BOS] + text and scored in consecutive
     windows: window k feeds tokens kC .. (k+1)C-1 (C = context or --ctx) from
     an empty cache and predicts each following token, so every token after BOS
     is predicted exactly once;
   - a .jsonl of Alpaca records is scored record by record: [BOS] + prompt
     (LOLCATS_MATH.md section 9 template) + response (encoded separately, no
     BOS) + EOS; the response tokens and EOS are counted (--all-tokens: every
     token after BOS). Records longer than C are scored in windows as above.
   --lolcats scores the linearized model on exactly the same windows and
   tokens; each window is one prefill (the checkpoint's tk/sw masks over the
   whole window, as in training), where the base model feeds chunks of 32
   (the KV cache makes that exact). */
#include "tools.h"
#include "args.h"
#include "outsafe.h"
#include "compute.h"
#include "standalone.h"
#include "data.h"
#include "walltime.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *eval_usage =
    "lolcats eval --model PATH --data FILE [--tokenizer PATH] [--json] [--ctx C]\n"
    "             [--all-tokens] [--limit N] [--lolcats CKPT [--window W] [--variant tk|sw] [--sinks S]]\n"
    "Mean NLL / perplexity of a model on a text or Alpaca JSONL file.\n"
    "  -m, --model PATH  llama2.c .bin checkpoint or Hugging Face directory\n"
    "  --tokenizer PATH  tokenizer (default: the Hugging Face directory's)\n"
    "  --data FILE     a text file, or a .jsonl of Alpaca records\n"
    "                  (instruction, input, output)\n"
    "  --ctx C         window / context length (default and most: the model's)\n"
    "  --all-tokens    Alpaca: count every token after BOS, not only response + EOS\n"
    "  --limit N       Alpaca: only the first N records (0: all)\n"
    "  -t, --threads N OpenMP threads (OMP_NUM_THREADS or all cores)\n"
    "  --compute f32|bf16  the model's GEMMs in float32 (default) or bf16 (AVX512_BF16)\n"
    "  --json          one JSON object: nll, ppl, tokens, ...\n"
    "  --lolcats CKPT  score the linearized model (checkpoint, merged directory or\n"
    "                  'identity'); --window / --variant / --sinks override its masks;\n"
    "                  'window-only': the model's softmax in a sliding window (plus\n"
    "                  --sinks S attention sinks), no linear part\n"
    "  --softmax       a LoLCATs directory (--merge) is scored linearized by default;\n"
    "                  this scores its weights with softmax attention instead\n"
    "lolcats eval --task NAME[,NAME...] ...: lm-evaluation-harness tasks (eval --task all --help)";

#define EVAL_CHUNK 32

typedef struct {
    const lc_model *m;
    tool_lm lm;
    int C, chunk;        /* window, tokens per forward call */
    float *logits;       /* (chunk, V) */
    double nll_sum;
    long long tokens;
} eval_state;

/* Scores ids[0..n): predictions of ids[j] for j >= first (j >= 1) are counted. */
static int eval_score(eval_state *st, const int *ids, int n, int first, lc_error *err) {
    int C = st->C, V = st->m->cfg.vocab_size, w, s, t;
    if (first < 1) first = 1;
    for (w = 0; w + 1 < n; w += C) {                 /* window feeds ids[w .. w+C) */
        int end = w + C < n - 1 ? w + C : n - 1;     /* last fed index + 1 */
        tool_lm_reset(&st->lm);
        for (s = w; s < end; s += st->chunk) {
            int k = end - s < st->chunk ? end - s : st->chunk;
            if (!st->lm.linear) {  /* base model: classifier in vocabulary blocks, no logits buffer */
                int tg[EVAL_CHUNK];
                double nll[EVAL_CHUNK];
                for (t = 0; t < k; t++) tg[t] = s + t + 1 >= first ? ids[s + t + 1] : -1;
                if (lc_model_forward_nll(&st->lm.cx, st->m, &st->lm.run, ids + s, k, tg, nll, err))
                    return tool_report(err);
                for (t = 0; t < k; t++)
                    if (tg[t] >= 0) { st->nll_sum += nll[t]; st->tokens++; }
                continue;
            }
            if (tool_lm_forward(&st->lm, ids + s, k, st->logits, err)) return 1;
            for (t = 0; t < k; t++) {
                int tgt = s + t + 1, j;
                const float *l = st->logits + (size_t)t * V;
                double mx, z = 0;
                if (tgt < first) continue;
                mx = (double)l[lc_argmax(l, V)];
                for (j = 0; j < V; j++) z += exp((double)l[j] - mx);
                st->nll_sum += mx + log(z) - (double)l[ids[tgt]];
                st->tokens++;
            }
        }
    }
    return 0;
}

static int eval_alpaca(eval_state *st, const lc_tokenizer *tok, const char *path, int all_tokens,
                       long limit, long *records, lc_error *err) {
    tool_alpaca_rec *recs;
    long n, i;
    int *ids = NULL, eos = st->m->cfg.eos_id >= 0 ? st->m->cfg.eos_id : tok->eos_id;
    size_t cap = 0, nt, np;
    *records = 0;
    if (tool_alpaca_read(path, &recs, &n, err)) return 1;
    for (i = 0; i < n && (limit <= 0 || i < limit); i++) {
        if (tool_alpaca_encode(tok, eos, &recs[i], &ids, &cap, &nt, &np, err) ||
            eval_score(st, ids, (int)nt, all_tokens ? 1 : (int)np, err)) {
            free(ids);
            tool_alpaca_free(recs, n);
            return 1;
        }
        (*records)++;
    }
    free(ids);
    tool_alpaca_free(recs, n);
    return 0;
}

int cmd_eval(int argc, char **argv) {
    const char *model_path = NULL, *data = NULL, *tok_path = NULL;
    int json = 0, ctx = 0, all_tokens = 0, i, rc = 1, is_jsonl, softmax = 0;
    long limit = 0, records = 0;
    lc_model m;
    lc_tokenizer tok;
    lc_error err;
    eval_state st;
    tool_lm_opts lo;
    char desc[256];
    char *text = NULL;
    size_t n = 0;
    clock_t t0;
    double secs, nll, wall0 = 0;
    memset(&err, 0, sizeof err);
    memset(&tok, 0, sizeof tok);
    memset(&st, 0, sizeof st);
    memset(&lo, 0, sizeof lo);
    for (i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--task")) return cmd_eval_tasks(argc, argv);   /* tools/cmd_eval_tasks.c */
    for (i = 1; i < argc; i++) {
        const char *a = tool_arg_alias(argv[i]), *v;
        if (tool_arg_is_help(a)) return tool_arg_help(eval_usage, NULL);
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (!strcmp(a, "--all-tokens")) { all_tokens = 1; continue; }
        if (!strcmp(a, "--softmax")) { softmax = 1; continue; }
        if (!tool_arg_known(a, eval_usage)) tool_arg_unknown(argv[0], argv[i], eval_usage, NULL);
        tool_arg_need(argv[i], argc, argv, i);
        v = argv[++i];
        if (!strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--tokenizer")) tok_path = v;
        else if (!strcmp(a, "--ctx")) ctx = tool_arg_int(a, v, 1, 1 << 24);
        else if (!strcmp(a, "--limit")) limit = (long)tool_arg_ll(a, v, 0, INT_MAX);
        else if (!strcmp(a, "--threads")) tool_arg_threads(a, v);
        else if (!strcmp(a, "--compute")) tool_arg_compute(a, v);
        else if (!strcmp(a, "--lolcats")) lo.lolcats = v;
        else if (!strcmp(a, "--window")) lo.window = tool_arg_int(a, v, 1, 1 << 20);
        else if (!strcmp(a, "--variant")) lo.variant = (tool_arg_choice(a, v, "tk|sw"), v);
        else if (!strcmp(a, "--sinks")) lo.sinks = tool_arg_int(a, v, 0, 1 << 20);
        else tool_arg_unknown(argv[0], argv[i - 1], eval_usage, NULL);
    }
    if (!model_path || !data) tool_arg_fail(argv[0], "eval needs --model (-m) and --data");
    if (tool_lm_auto(model_path, &lo, softmax, "eval")) return 2;   /* a --merge directory: linearized */
    outsafe_input("--model", model_path, OUTSAFE_IN_MODEL);   /* kinds checked before loading */
    outsafe_input("--data", data, OUTSAFE_IN_FILE);
    outsafe_input("--tokenizer", tok_path, OUTSAFE_IN_FILE);
    if (lo.lolcats && strcmp(lo.lolcats, "identity") && strcmp(lo.lolcats, "window-only")) outsafe_input("--lolcats", lo.lolcats, OUTSAFE_IN_MODEL);
    if (outsafe_begin(argc, argv, 0, 0)) return 1;
    if (lc_model_load(&m, model_path, &err)) return tool_report(&err);
    if (tool_load_tokenizer(&tok, &m, model_path, tok_path, &err)) goto done;
    if (ctx > m.cfg.seq_len) {
        fprintf(stderr, "lolcats: error: --ctx %d is longer than the model's context (%d positions, %s): use "
                "--ctx %d or less\n", ctx, m.cfg.seq_len, model_path, m.cfg.seq_len);
        rc = 2;
        goto done;
    }
    if (ctx <= 0) ctx = m.cfg.seq_len;
    st.m = &m;
    st.C = ctx;
    st.chunk = lo.lolcats ? ctx : EVAL_CHUNK;
    if (tool_lm_init(&st.lm, &m, &lo, ctx, st.chunk, &err)) goto done;
    tool_lm_describe(&st.lm, desc, sizeof desc);
    if (lo.lolcats) st.logits = (float *)malloc(sizeof(float) * (size_t)st.chunk * (size_t)m.cfg.vocab_size);
    is_jsonl = tool_is_jsonl(data);
    text = is_jsonl ? NULL : tool_read_text(data, &n, &err);
    if (!is_jsonl && !text) { tool_report(&err); goto done; }
    if (lo.lolcats && !st.logits) {
        fprintf(stderr, "lolcats: cannot read %s\n", data);
        goto done;
    }
    if (text && text[strspn(text, " \t\r\n")] == 0) {
        fprintf(stderr, "lolcats: %s is empty (%s): give a text file to score\n", data,
                n ? "whitespace only" : "0 bytes");
        goto done;
    }
    t0 = clock();
    wall0 = tool_wall_seconds();
    if (is_jsonl) {
        if (eval_alpaca(&st, &tok, data, all_tokens, limit, &records, &err)) {
            if (err.msg[0]) tool_report(&err);
            goto done;
        }
    } else {
        int *ids = (int *)malloc((n + 3) * sizeof(int));
        size_t nid = 0;
        if (!ids) { fprintf(stderr, "lolcats: out of memory\n"); goto done; }
        if (lc_tokenizer_encode(&tok, text, n, 1, 0, ids, n + 3, &nid, &err) ||
            eval_score(&st, ids, (int)nid, 1, &err)) {
            free(ids);
            tool_report(&err);
            goto done;
        }
        free(ids);
    }
    secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    if (st.tokens == 0) {
        fprintf(stderr, "lolcats: %s: no tokens scored (no records%s?)\n", data,
                is_jsonl ? " with a response" : " longer than one token");
        goto done;
    }
    nll = st.nll_sum / (double)st.tokens;
    tool_report_rate("eval", st.tokens, tool_wall_seconds() - wall0);   /* wall clock, stderr */
    if (json) {   /* null, never a bare nan / inf */
        printf("{\"nll\": ");
        tool_json_num(stdout, "%.6f", nll);
        printf(", \"ppl\": ");
        tool_json_num(stdout, "%.4f", exp(nll));
        printf(", \"tokens\": %lld, \"records\": %ld, \"ctx\": %d, "
               "\"model\": \"%s\", \"lolcats\": \"%s\", \"attention\": \"%s\", \"data\": \"%s\", "
               "\"cpu_seconds\": %.2f}\n",
               st.tokens, records, ctx, model_path, lo.lolcats ? lo.lolcats : "", desc, data, secs);
    } else if (!isfinite(nll))
        printf("%s on %s: mean NLL is not finite (%g) over %lld tokens (ctx %d, %s)\n", model_path, data, nll,
               st.tokens, ctx, desc);
    else
        printf("%s on %s: mean NLL %.6f nats/token, perplexity %.4f over %lld tokens%s "
               "(ctx %d, %s, %.1f s CPU)\n",
               model_path, data, nll, exp(nll), st.tokens,
               is_jsonl ? (all_tokens ? " (all tokens after BOS)" : " (response + EOS)") : "",
               ctx, desc, secs);
    rc = 0;
    if (!isfinite(nll)) {
        fprintf(stderr, "lolcats: error: the mean NLL is %g: the forward gave non-finite logits (the weights "
                        "were finite at load, so an overflow: outsized weights, or a diverged LoLCATs "
                        "checkpoint)\n", nll);
        rc = 1;
    }
done:
    free(text);
    free(st.logits);
    tool_lm_free(&st.lm);
    lc_tokenizer_free(&tok);
    lc_model_free(&m);
    return rc;
}
