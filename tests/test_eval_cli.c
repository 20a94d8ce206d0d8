/* test_eval_cli.c - `lolcats eval` scoring rules from the outside (binary in
   $LOLCATS_BIN, default build/lolcats), on stories260K + tok512:
   - a text is [BOS] + text scored in windows of --ctx C tokens from an empty
     cache: every token after BOS is predicted exactly once, and the NLL is
     the one computed here window by window;
   - Alpaca JSONL: [BOS] + prompt + response + EOS per record, counting the
     response and EOS (--all-tokens: every token after BOS). */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"

#include <string.h>
#include <sys/wait.h>

#define MODEL "../shared/models/stories260K/stories260K.bin"
#define TOK "../shared/models/stories260K/tok512.bin"

static const char *bin;
static lc_ctx cx;
static lc_model m;
static lc_tokenizer tok;

/* Runs `lolcats eval ... --json`, reads "nll" and "tokens" from its output. */
static int run_eval(const char *data, const char *extra, double *nll, long *tokens) {
    char cmd[1024], out[2048];
    const char *p;
    FILE *f;
    size_t n;
    int st;
    snprintf(cmd, sizeof cmd, "%s eval --model %s --tokenizer %s --data %s --json %s "
             ">build/tests/eval_out.txt 2>&1", bin, MODEL, TOK, data, extra);
    st = system(cmd);
    f = fopen("build/tests/eval_out.txt", "r");
    n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = 0;
    if (f) fclose(f);
    if (!CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "`%s` failed: %s", cmd, out)) return 0;
    p = strstr(out, "\"nll\":");
    *nll = p ? atof(p + 6) : -1;
    p = strstr(out, "\"tokens\":");
    *tokens = p ? atol(p + 9) : -1;
    return CHECK(*tokens >= 0 && *nll >= 0, "no nll/tokens in: %s", out);
}

/* NLL sum of predicting ids[j], j >= first, feeding windows of C tokens. */
static double windowed_nll(const int *ids, int n, int C, int first, long *count) {
    lc_run r;
    lc_error e;
    int V = m.cfg.vocab_size, w, t;
    double sum = 0;
    *count = 0;
    if (lc_run_init(&r, &m, C, C, &e)) { CHECK(0, "%s", e.msg); return 0; }
    for (w = 0; w + 1 < n; w += C) {
        int k = w + C < n - 1 ? C : n - 1 - w;
        static float lg[512 * 512];
        lc_run_reset(&r);
        lc_model_forward(&cx, &m, &r, ids + w, k, lg, &e);
        for (t = 0; t < k; t++) {
            const float *l = lg + (size_t)t * V;
            double mx = (double)l[lc_argmax(l, V)], z = 0;
            int j;
            if (w + t + 1 < first) continue;
            for (j = 0; j < V; j++) z += exp((double)l[j] - mx);
            sum += mx + log(z) - (double)l[ids[w + t + 1]];
            (*count)++;
        }
    }
    lc_run_free(&r);
    return sum;
}

static size_t encode(const char *s, int bos, int *ids) {
    size_t n = 0;
    lc_error e;
    lc_tokenizer_encode(&tok, s, strlen(s), bos, 0, ids, strlen(s) + 3, &n, &e);
    return n;
}

static void test_text_windows(void) {
    const char *text = "Once upon a time, there was a little girl named Lily. She loved to play "
                       "outside in the park with her big red ball.";
    const char *path = "build/tests/eval_text.txt";
    static int ids[512];
    static const int ctxs[] = {1, 5, 7, 512};
    FILE *f = fopen(path, "wb");
    int n, c;
    fputs(text, f);
    fclose(f);
    n = (int)encode(text, 1, ids);
    printf("  text: %d tokens with BOS\n", n);
    for (c = 0; c < 4; c++) {
        double nll, want;
        long tokens, count;
        char extra[32];
        snprintf(extra, sizeof extra, "--ctx %d", ctxs[c]);
        if (!run_eval(path, extra, &nll, &tokens)) continue;
        want = windowed_nll(ids, n, ctxs[c], 1, &count) / (double)count;
        CHECK(tokens == n - 1 && count == n - 1,
              "ctx %d: %ld tokens scored, %ld counted here; every token after BOS once = %d",
              ctxs[c], tokens, count, n - 1);
        CHECK(fabs(nll - want) <= 2e-6, "ctx %d: nll %.6f, windows computed here %.6f", ctxs[c],
              nll, want);
        printf("  ctx %3d: %ld tokens, nll %.6f (here %.6f)\n", ctxs[c], tokens, nll, want);
    }
    {   /* a window boundary loses the context: ctx 5 scores worse than one window */
        long count;
        double w5 = windowed_nll(ids, n, 5, 1, &count), w512 = windowed_nll(ids, n, 512, 1, &count);
        CHECK(w5 > w512, "short windows lose context (%.3f vs %.3f)", w5, w512);
    }
}

static const char *tmpl_in =
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n### Instruction:\n"
    "%s\n\n### Input:\n%s\n\n### Response:\n";
static const char *tmpl_no =
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n%s\n\n### Response:\n";

static void test_alpaca_jsonl(void) {
    const char *path = "build/tests/eval_alpaca.jsonl";
    static const char *ins[] = {"Name a color.", "Add the numbers."};
    static const char *inp[] = {"", "2 and 3"};
    static const char *outj[] = {"Red is a color.", "The sum is 5.\\nIt is odd."};
    static const char *outs[] = {"Red is a color.", "The sum is 5.\nIt is odd."};
    FILE *f = fopen(path, "wb");
    long want_resp = 0, want_all = 0, cnt, tokens;
    double sum_resp = 0, sum_all = 0, nll;
    int k;
    for (k = 0; k < 2; k++)
        fprintf(f, "{\"instruction\": \"%s\", \"input\": \"%s\", \"output\": \"%s\"}\n", ins[k],
                inp[k], outj[k]);
    fclose(f);
    for (k = 0; k < 2; k++) {
        static char prompt[2048];
        static int ids[2048];
        size_t np, nr;
        if (inp[k][0]) snprintf(prompt, sizeof prompt, tmpl_in, ins[k], inp[k]);
        else snprintf(prompt, sizeof prompt, tmpl_no, ins[k]);
        np = encode(prompt, 1, ids);
        nr = encode(outs[k], 0, ids + np);
        ids[np + nr] = m.cfg.eos_id;
        sum_resp += windowed_nll(ids, (int)(np + nr + 1), 512, (int)np, &cnt);
        CHECK(cnt == (long)nr + 1, "record %d: response %zu tokens + EOS, counted %ld", k, nr, cnt);
        want_resp += cnt;
        sum_all += windowed_nll(ids, (int)(np + nr + 1), 512, 1, &cnt);
        CHECK(cnt == (long)(np + nr), "record %d: all tokens after BOS %zu, counted %ld", k,
              np + nr, cnt);
        want_all += cnt;
    }
    if (run_eval(path, "", &nll, &tokens)) {
        CHECK(tokens == want_resp, "Alpaca: %ld tokens scored, response + EOS = %ld", tokens,
              want_resp);
        CHECK(fabs(nll - sum_resp / want_resp) <= 2e-6, "Alpaca nll %.6f vs %.6f", nll,
              sum_resp / want_resp);
        printf("  alpaca: %ld response+EOS tokens, nll %.6f\n", tokens, nll);
    }
    if (run_eval(path, "--all-tokens", &nll, &tokens)) {
        CHECK(tokens == want_all, "Alpaca --all-tokens: %ld scored, want %ld", tokens, want_all);
        CHECK(fabs(nll - sum_all / want_all) <= 2e-6, "Alpaca --all-tokens nll %.6f vs %.6f", nll,
              sum_all / want_all);
        printf("  alpaca --all-tokens: %ld tokens, nll %.6f\n", tokens, nll);
    }
    if (run_eval(path, "--limit 1", &nll, &tokens)) {
        size_t nr;
        static int ids[256];
        nr = encode(outs[0], 0, ids);
        CHECK(tokens == (long)nr + 1, "--limit 1: %ld tokens, want %zu", tokens, nr + 1);
    }
}

int main(void) {
    lc_error e;
    FILE *f = fopen(MODEL, "rb");
    bin = getenv("LOLCATS_BIN");
    if (!bin) bin = "build/lolcats";
    if (!f) {
        printf("SKIPPED: %s not found (eval CLI tests)\n", MODEL);
        return check_done();
    }
    fclose(f);
    lc_ctx_init(&cx);
    if (!CHECK(lc_model_load(&m, MODEL, &e) == LOLCATS_OK, "%s", e.msg) ||
        !CHECK(lc_tokenizer_load_llama2c(&tok, TOK, m.cfg.vocab_size, &e) == LOLCATS_OK, "%s", e.msg))
        return check_done();
    test_text_windows();
    test_alpaca_jsonl();
    lc_tokenizer_free(&tok);
    lc_model_free(&m);
    return check_done();
}
