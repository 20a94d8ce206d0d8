/* test_evaltask.c - `lolcats eval --task`: the harness's scoring rules on tiny
   hand-made items (ties, acc_norm by code points, whitespace moving, the token
   tail split, Winogrande partial scoring, LAMBADA greedy, the MMLU prompt byte
   for byte, macro vs micro), every malformed data file class with file and
   line in the message, the run-state snapshot / truncate API (bit-identical to
   a fresh prefill, teacher and linearized), and a CLI run of every task with
   --limit 3 on the real data (skipped visibly without ../shared). */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "tiny_files.h"
#include "../tools/evaltask.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>

#define TMP "build/tests/evaltask"
#define SHARED_EVAL "../shared/data/eval"
#define TOK512 "../shared/models/stories260K/tok512.bin"
#define ST260K "../shared/models/stories260K/stories260K.bin"

static const char *bin;

static int have(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static void put(const char *rel, const char *text) {
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", TMP, rel);
    f = fopen(path, "wb");
    if (!f) { CHECK(0, "cannot write %s", path); return; }
    fputs(text, f);
    fclose(f);
}

static ev_item mc_item(int n, const char *const *choice, int gold) {
    ev_item it;
    int i;
    memset(&it, 0, sizeof it);
    it.nreq = n;
    it.gold = gold;
    it.req = (ev_req *)calloc((size_t)n, sizeof(ev_req));
    for (i = 0; i < n; i++) it.req[i].norm_len = ev_utf8_len(choice[i]);
    return it;
}

static void test_choose(void) {
    static const char *const ch[] = {"\xc3\xa9", "ab", "xyz"};   /* "é": 1 code point, 2 bytes */
    ev_item it = mc_item(3, ch, 1);
    ev_score s[3];
    int p, pn;
    memset(s, 0, sizeof s);
    /* ties: the first maximum */
    s[0].ll = -2; s[1].ll = -2; s[2].ll = -3;
    ev_choose(&it, s, &p, &pn);
    CHECK(p == 0, "tie: argmax takes the first maximum, got %d", p);
    /* acc_norm divides by code points: -1/1 = -1, -1.5/2 = -0.75, -3/3 = -1 -> 1
       (by bytes it would be -0.5 for "é": choice 0) */
    s[0].ll = -1; s[1].ll = -1.5; s[2].ll = -3;
    ev_choose(&it, s, &p, &pn);
    CHECK(p == 0 && pn == 1, "acc picks %d (want 0), acc_norm picks %d (want 1: code points)", p, pn);
    CHECK(ev_utf8_len("\xe2\x82\xac" "1 \xf0\x9f\x98\x80") == 4, "code points of a 4-byte mix");
    /* acc_norm tie: -2/2 = -1 = -1/1 -> first */
    s[0].ll = -1; s[1].ll = -2; s[2].ll = -30;
    ev_choose(&it, s, &p, &pn);
    CHECK(pn == 0, "acc_norm tie takes the first, got %d", pn);
    free(it.req);
}

static void test_logprob_stats(void) {
    float l[3] = {1.0f, 2.0f, 3.0f};
    double z = exp(1.0) + exp(2.0) + exp(3.0), want = 2.0 - log(z);
    ev_mean m;
    double sub_agg[4];
    ev_mean sub[3];
    int i;
    CHECK(fabs(ev_logprob(l, 3, 1) - want) < 1e-12, "log softmax %g vs %g", ev_logprob(l, 3, 1), want);
    /* mean_stderr of 0/1: sqrt(p(1-p)/(n-1)): 3 of 4 -> sqrt(.75*.25/3) = 0.25 */
    memset(&m, 0, sizeof m);
    ev_mean_add(&m, 1); ev_mean_add(&m, 1); ev_mean_add(&m, 1); ev_mean_add(&m, 0);
    CHECK(fabs(ev_mean_value(&m) - 0.75) < 1e-12 && fabs(ev_mean_stderr(&m) - 0.25) < 1e-12,
          "mean %g stderr %g (0.75, 0.25)", ev_mean_value(&m), ev_mean_stderr(&m));
    /* macro vs micro: subject A 1 of 1... A: 2/2, B: 1/4, C empty */
    memset(sub, 0, sizeof sub);
    ev_mean_add(&sub[0], 1); ev_mean_add(&sub[0], 1);
    for (i = 0; i < 4; i++) ev_mean_add(&sub[1], i == 0 ? 1 : 0);
    ev_mmlu_agg(sub, 3, sub_agg);
    CHECK(fabs(sub_agg[0] - 0.5) < 1e-12, "micro = 3/6 = 0.5, got %g", sub_agg[0]);
    CHECK(fabs(sub_agg[2] - 0.625) < 1e-12, "macro = (1 + 0.25)/2 = 0.625, got %g", sub_agg[2]);
    /* pooled: ((2-1)*0*2 + (4-1)*se_B^2*4) / (6-2) / 6, se_B^2 = .25*.75/3 */
    CHECK(fabs(sub_agg[1] - sqrt(3 * (0.0625) * 4 / 4.0 / 6.0)) < 1e-12, "pooled stderr %g", sub_agg[1]);
}

static void test_mmlu_prompt(void) {
    char *shots[12] = {"  What is 1+1? ", "1", "2", "3", " 4", "1",
                       "Pick B.", "a", "b", "c", "d", "1"};
    char *row[6] = {"Last\nquestion?", "w", "x", "y", "z", "3"};
    const char *want =
        "The following are multiple choice questions (with answers) about high school math.\n\n"
        "What is 1+1?\nA. 1\nB. 2\nC. 3\nD.  4\nAnswer: B\n\n"
        "Pick B.\nA. a\nB. b\nC. c\nD. d\nAnswer: B\n\n"
        "Last\nquestion?\nA. w\nB. x\nC. y\nD. z\nAnswer:";
    char *got = ev_mmlu_prompt("high_school_math", shots, 2, row);
    CHECK(got && !strcmp(got, want), "MMLU 2-shot prompt:\n[%s]\nwant\n[%s]", got ? got : "(null)", want);
    free(got);
}

static void test_hellaswag_pre(void) {
    char *a = ev_hellaswag_pre("  Roof [header] shingle [title] removal:  a  man [step] sits.   ");
    CHECK(a && !strcmp(a, "Roof shingle. removal: a man sits."), "preprocess: [%s]", a ? a : "");
    free(a);
}

static void test_csv(void) {
    const char *t = "question,a\r\n\"multi\nline, \"\"quoted\"\"\",\"x\r\ny\"\nplain,2\n";
    ev_csv c;
    lc_error e;
    memset(&e, 0, sizeof e);
    if (!CHECK(ev_csv_parse(&c, t, strlen(t), "t.csv", &e) == 0, "csv: %s", e.msg)) return;
    CHECK(c.n == 3 && c.nf[1] == 2 && !strcmp(c.f[1][0], "multi\nline, \"quoted\"") &&
          !strcmp(c.f[1][1], "x\r\ny") && c.line[2] == 5 && !strcmp(c.f[2][1], "2"),
          "csv fields / lines (rows %ld)", c.n);
    ev_csv_free(&c);
}

/* The harness's pair encoding on a real SentencePiece vocabulary. */
static void test_pair(void) {
    lc_tokenizer tok;
    lc_error e;
    ev_pair p;
    int whole[256], ctx[256], i, ok = 1;
    size_t nw, nc;
    const char *c = "Question: is it hot?\nAnswer:  ", *k = "yes, it is";
    if (!have(TOK512)) { printf("SKIPPED: pair tokenization (no %s)\n", TOK512); return; }
    memset(&e, 0, sizeof e);
    if (!CHECK(lc_tokenizer_load_llama2c(&tok, TOK512, 0, &e) == 0, "%s", e.msg)) return;
    CHECK(ev_encode_pair(&tok, c, k, 0, &p, &e) == 0, "%s", e.msg);
    lc_tokenizer_encode(&tok, "Question: is it hot?\nAnswer:  yes, it is", 40, 0, 0, whole, 256, &nw, &e);
    lc_tokenizer_encode(&tok, "Question: is it hot?\nAnswer:", 28, 0, 0, ctx, 256, &nc, &e);
    CHECK(p.nctx == (int)nc, "context without its trailing spaces: %d tokens, want %zu", p.nctx, nc);
    CHECK(p.nctx + p.ncont == (int)nw, "context + continuation = the whole encoding");
    for (i = 0; i < p.ncont && ok; i++) ok = p.cont[i] == whole[nc + i];
    CHECK(ok, "continuation = the tail of the whole encoding");
    for (i = 0; i < p.nctx && ok; i++) ok = p.ctx[i] == ctx[i] && ctx[i] != tok.bos_id;
    CHECK(ok && p.ctx[0] != tok.bos_id, "no BOS by default");
    ev_pair_free(&p);
    CHECK(ev_encode_pair(&tok, c, k, 1, &p, &e) == 0 && p.ctx[0] == tok.bos_id, "--bos: BOS first");
    ev_pair_free(&p);
    CHECK(ev_encode_pair(&tok, "", " hi", 0, &p, &e) == 0 && p.nctx == 1 && p.ctx[0] == tok.bos_id,
          "empty context: the prefix token");
    ev_pair_free(&p);
    lc_tokenizer_free(&tok);
}

/* Loads task name from the scratch dir; want_err: a substring the error must hold. */
static void load_expect(const char *name, const char *want_err, long want_n) {
    ev_task t;
    ev_opts o;
    lc_error e;
    int rc;
    memset(&o, 0, sizeof o);
    memset(&e, 0, sizeof e);
    o.dir = TMP;
    o.dir_from = "--data-dir";
    o.num_fewshot = 1;
    rc = ev_task_load(&t, name, &o, &e);
    if (want_err) {
        CHECK(rc != 0 && strstr(e.msg, want_err), "%s: want an error with \"%s\", got rc %d: %s", name,
              want_err, rc, e.msg);
    } else {
        CHECK(rc == 0 && t.n == want_n, "%s: %s (items %ld, want %ld)", name, e.msg, rc ? 0 : t.n, want_n);
        if (!rc) ev_task_free(&t);
    }
}

static void test_readers_malformed(void) {
    ev_task t;
    ev_opts o;
    lc_error e;
    tiny_sh("rm -rf " TMP " && mkdir -p " TMP "/piqa " TMP "/arc " TMP "/llm-foundry " TMP "/mmlu/dev "
            TMP "/mmlu/test " TMP "/hellaswag");
    /* good files first */
    put("piqa/valid.jsonl", "{\"goal\": \"g1\", \"sol1\": \"a \", \"sol2\": \"b\"}\n"
                            "{\"goal\": \"g2\", \"sol1\": \"c\", \"sol2\": \"d\"}\n");
    put("piqa/valid-labels.lst", "1\n0\n");
    load_expect("piqa", NULL, 2);
    /* whitespace kept, context as the harness builds it */
    {
        memset(&o, 0, sizeof o);
        o.dir = TMP; o.dir_from = "--data-dir";
        if (CHECK(ev_task_load(&t, "piqa", &o, &e) == 0, "piqa: %s", e.msg)) {
            CHECK(!strcmp(t.items[0].req[0].ctx, "Question: g1\nAnswer:") &&
                  !strcmp(t.items[0].req[0].cont, " a ") && t.items[0].gold == 1 &&
                  t.items[0].req[0].norm_len == 2, "piqa item 0");
            ev_task_free(&t);
        }
    }
    put("llm-foundry/winogrande.jsonl",
        "{\"context_options\": [\"Sarah was better than Maria so Sarah\", \"Sarah was better than Maria so Maria\"], "
        "\"continuation\": \"always won.\", \"gold\": 1}\n");
    memset(&o, 0, sizeof o);
    o.dir = TMP; o.dir_from = "--data-dir";
    if (CHECK(ev_task_load(&t, "winogrande", &o, &e) == 0, "winogrande: %s", e.msg)) {
        /* partial scoring: the one continuation under each option's context */
        CHECK(t.kind == EV_WINO && t.items[0].nreq == 2 &&
              !strcmp(t.items[0].req[0].ctx, "Sarah was better than Maria so Sarah") &&
              !strcmp(t.items[0].req[1].ctx, "Sarah was better than Maria so Maria") &&
              !strcmp(t.items[0].req[0].cont, " always won.") && !strcmp(t.items[0].req[1].cont, " always won.") &&
              t.items[0].gold == 1, "winogrande partial scoring requests");
        ev_task_free(&t);
    }
    put("llm-foundry/copa.jsonl", "{\"query\": \"The man turned on the faucet, therefore\", \"gold\": 1, "
                                  "\"choices\": [\"the toilet filled.\", \"water flowed.\"]}\n");
    memset(&o, 0, sizeof o);
    o.dir = TMP; o.dir_from = "--data-dir";
    if (CHECK(ev_task_load(&t, "copa", &o, &e) == 0, "copa: %s", e.msg)) {
        CHECK(!strcmp(t.items[0].req[1].ctx, "The man turned on the faucet therefore") &&
              !strcmp(t.items[0].req[1].cont, "  water flowed."), "copa: no comma, two spaces");
        ev_task_free(&t);
    }
    put("mmlu/dev/astro_dev.csv", "question,choice0,choice1,choice2,choice3,answer\n\"Q1\",a,b,c,d,0\n");
    put("mmlu/test/astro_test.csv", "question,choice0,choice1,choice2,choice3,answer\nQ2,a,b,c,d,3\n");
    load_expect("mmlu", NULL, 1);

    /* malformed: each class names the file and the line */
    put("piqa/valid.jsonl", "{\"goal\": \"g1\", \"sol1\": \"a\", \"sol2\": \"b\"}\n{\"goal\": \"g2\", \"sol1\": \"c\" \"sol2\": \"d\"}\n");
    load_expect("piqa", "piqa/valid.jsonl:2: bad JSON", 0);
    put("piqa/valid.jsonl", "{\"goal\": \"g1\", \"sol1\": \"a\", \"sol2\": 7}\n");
    load_expect("piqa", "piqa/valid.jsonl:1: field \"sol2\" is a number, a string expected", 0);
    put("piqa/valid.jsonl", "{\"goal\": \"g1\", \"sol1\": \"a\", \"sol2\": \"b\"}\n{\"goal\": \"g2\", \"sol1\": \"c\", \"sol2\": \"d\"}\n");
    put("piqa/valid-labels.lst", "1\n");
    load_expect("piqa", "valid-labels.lst:1: 1 labels for the 2 items", 0);
    put("piqa/valid-labels.lst", "1\n0\n1\n");
    load_expect("piqa", "valid-labels.lst:3: more labels than the 2 items", 0);
    put("piqa/valid-labels.lst", "1\n2\n");
    load_expect("piqa", "valid-labels.lst:2: gold index 2 out of range", 0);
    put("llm-foundry/openbook_qa.jsonl", "{\"query\": \"q\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n"
                                         "{\"query\": \"q\", \"choices\": [\"a\", \"b\"], \"gold\": 2}\n");
    load_expect("openbookqa", "openbook_qa.jsonl:2: gold index 2 out of range for 2 choices", 0);
    put("llm-foundry/openbook_qa.jsonl", "{\"query\": \"q\", \"choices\": [], \"gold\": 0}\n");
    load_expect("openbookqa", "openbook_qa.jsonl:1: field \"choices\" is an empty list", 0);
    put("llm-foundry/openbook_qa.jsonl", "{\"query\": \"q\", \"choices\": [\"a\"]}\n");
    load_expect("openbookqa", "openbook_qa.jsonl:1: missing field \"gold\"", 0);
    put("llm-foundry/openbook_qa.jsonl", "{\"query\": \"q\", \"choices\": [\"a\"], \"gold\": \"0\"}\n");
    load_expect("openbookqa", "openbook_qa.jsonl:1: field \"gold\" is a string, a number expected", 0);
    put("arc/arc_easy.test.json", "[\n  {\"question\": \"q\", \"choices\": {\"text\": [\"a\", \"b\"], \"label\": [\"A\", \"B\"]},\n"
                                  "   \"answerKey\": \"B\"},\n  {\"question\": \"q2\",\n   \"choices\": {\"text\": [\"a\"], "
                                  "\"label\": [\"A\"]}, \"answerKey\": \"C\"}\n]\n");
    load_expect("arc_easy", "arc_easy.test.json:4: answerKey \"C\" is not one of the choice labels", 0);
    put("arc/arc_easy.test.json", "[\n  {\"question\": \"q\", \"choices\": {\"text\": [\"a\"], \"label\": [\"A\"]},\n"
                                  "   \"answerKey\": \"A\"},\n  {\"question\": \"q2\" \"x\"}\n]\n");
    load_expect("arc_easy", "arc_easy.test.json:4: bad JSON", 0);
    put("arc/arc_challenge.test.jsonl", "{\"question\": \"q\", \"choices\": {\"text\": [], \"label\": []}, \"answerKey\": \"A\"}\n");
    load_expect("arc_challenge", "arc_challenge.test.jsonl:1: field \"text\" is an empty list", 0);
    put("hellaswag/hellaswag_val.txt", "ctx one\n0\na\nb\nc\nd\nctx two\n4\na\nb\nc\nd\n");
    load_expect("hellaswag", "hellaswag_val.txt:8: gold index 4 out of range", 0);
    put("hellaswag/hellaswag_val.txt", "ctx one\n0\na\nb\nc\nd\nctx two\n1\na\n");
    load_expect("hellaswag", "hellaswag_val.txt:10: the file ends inside a task", 0);
    put("hellaswag/hellaswag_val.txt", "ctx one\n0\na\n\nc\nd\n");
    load_expect("hellaswag", "hellaswag_val.txt:4: empty ending", 0);
    put("llm-foundry/winogrande.jsonl", "{\"context_options\": [\"a\", \"b\"], \"continuation\": \"c\", \"gold\": 2}\n");
    load_expect("winogrande", "winogrande.jsonl:1: gold index 2 out of range", 0);
    put("llm-foundry/lambada_openai.jsonl", "{\"context\": \"a b\", \"continuation\": \"c\"}\n[1]\n");
    load_expect("lambada", "lambada_openai.jsonl:2: the line is an array, a JSON object expected", 0);
    put("mmlu/test/astro_test.csv", "question,choice0,choice1,choice2,choice3,answer\nQ2,a,b,c,d,3\n\"Q3\nstill,a,b,c,d,1\n");
    load_expect("mmlu", "astro_test.csv:3: unterminated quoted field", 0);
    put("mmlu/test/astro_test.csv", "question,choice0,choice1,choice2,choice3,answer\nQ2,a,b,c,d,3\nQ3,a,b,c,d,4\n");
    load_expect("mmlu", "astro_test.csv:3: answer \"4\": gold index out of range", 0);
    put("mmlu/test/astro_test.csv", "question,choice0,choice1,choice2,choice3,answer\nQ2,a,b,c,3\n");
    load_expect("mmlu", "astro_test.csv:2: 5 fields, 6 expected", 0);
    /* missing file / directory: the flag and the file expected */
    tiny_sh("rm -f " TMP "/llm-foundry/copa.jsonl");
    load_expect("copa", "--data-dir " TMP ": " TMP "/llm-foundry/copa.jsonl not found", 0);
    memset(&o, 0, sizeof o);
    o.dir = TMP "/nope";
    o.dir_from = "LOLCATS_EVAL_DATA";
    CHECK(ev_task_load(&t, "piqa", &o, &e) != 0 && strstr(e.msg, "LOLCATS_EVAL_DATA " TMP "/nope: no such directory"),
          "missing dir: %s", e.msg);
    o.dir = NULL;
    CHECK(ev_task_load(&t, "piqa", &o, &e) != 0 && strstr(e.msg, "--data-dir DIR or set LOLCATS_EVAL_DATA"),
          "no dir: %s", e.msg);
}

/* lc_run_truncate and lc_lolcats_run snapshot / restore: a continuation fed after
   restoring gives the same logits, bit for bit, as after a fresh prefill. */
static void test_snapshot(void) {
    lc_model m;
    lc_error e;
    lc_run r;
    lc_lolcats_run lr;
    lc_lolcats lp;
    lc_fmap_cfg fm = lc_fmap_cfg_default();
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    lc_ctx cx;
    float *ident, *a, *b, *c;
    int ctx[40], k1[5] = {7, 8, 9, 10, 11}, k2[3] = {100, 101, 102}, i, V;
    void *snap;
    size_t sb;
    tiny_sh("mkdir -p " TMP);
    if (!CHECK(tiny_write_model(TMP "/tiny.bin"), "tiny model")) return;
    memset(&e, 0, sizeof e);
    if (!CHECK(lc_model_load(&m, TMP "/tiny.bin", &e) == 0, "%s", e.msg)) return;
    V = m.cfg.vocab_size;
    for (i = 0; i < 40; i++) ctx[i] = 3 + (i * 37) % 250;
    a = (float *)malloc(sizeof(float) * 5 * (size_t)V);
    b = (float *)malloc(sizeof(float) * 5 * (size_t)V);
    c = (float *)malloc(sizeof(float) * 5 * (size_t)V);
    lc_ctx_init(&cx);
    /* teacher: context, k1 | truncate, k2 | truncate, k1 == fresh context, k1 */
    CHECK(lc_run_init(&r, &m, 64, 40, &e) == 0, "%s", e.msg);
    lc_model_forward(&cx, &m, &r, ctx, 40, NULL, &e);
    lc_model_forward(&cx, &m, &r, k1, 5, a, &e);
    CHECK(lc_run_truncate(&r, 40, &e) == 0 && r.pos == 40, "truncate to the context");
    lc_model_forward(&cx, &m, &r, k2, 3, c, &e);
    lc_run_truncate(&r, 40, &e);
    lc_model_forward(&cx, &m, &r, k1, 5, b, &e);
    CHECK(!memcmp(a, b, sizeof(float) * 5 * (size_t)V), "teacher: after truncate, bit-identical logits");
    lc_run_reset(&r);
    lc_model_forward(&cx, &m, &r, ctx, 40, NULL, &e);
    lc_model_forward(&cx, &m, &r, k1, 5, c, &e);
    CHECK(!memcmp(a, c, sizeof(float) * 5 * (size_t)V), "teacher: same as a fresh prefill");
    CHECK(lc_run_truncate(&r, 46, &e) != 0 && strstr(e.msg, "0..45"), "truncate past pos: %s", e.msg);
    lc_run_free(&r);
    /* linearized (identity maps, window 8 < context): snapshot after the context */
    hc.window = 8;
    ident = (float *)malloc(sizeof(float) * lc_lolcats_identity_floats(&m.cfg, m.cfg.head_dim));
    lc_lolcats_init_identity(&lp, ident, &m.cfg, m.cfg.head_dim, &fm, &hc);
    CHECK(lc_lolcats_run_init(&lr, NULL, &m, &lp, 40, &e) == 0, "%s", e.msg);
    sb = lc_lolcats_run_snapshot_bytes(&lr);
    snap = malloc(sb);
    lc_lolcats_forward(&m, &lp, &lr, ctx, 40, NULL, &e);
    lc_lolcats_run_snapshot(&lr, snap);
    lc_lolcats_forward(&m, &lp, &lr, k1, 5, a, &e);
    CHECK(lc_lolcats_run_restore(&lr, snap, sb, &e) == 0 && lr.pos == 40, "restore: %s", e.msg);
    lc_lolcats_forward(&m, &lp, &lr, k2, 3, c, &e);
    lc_lolcats_run_restore(&lr, snap, sb, &e);
    lc_lolcats_forward(&m, &lp, &lr, k1, 5, b, &e);
    CHECK(!memcmp(a, b, sizeof(float) * 5 * (size_t)V), "linearized: after restore, bit-identical logits");
    lc_lolcats_run_reset(&lr);
    lc_lolcats_forward(&m, &lp, &lr, ctx, 40, NULL, &e);
    lc_lolcats_forward(&m, &lp, &lr, k1, 5, c, &e);
    CHECK(!memcmp(a, c, sizeof(float) * 5 * (size_t)V), "linearized: same as a fresh prefill");
    CHECK(lc_lolcats_run_restore(&lr, snap, sb - 4, &e) != 0 && strstr(e.msg, "snapshot of"),
          "restore with a wrong size: %s", e.msg);
    ((char *)snap)[0] ^= 1;
    CHECK(lc_lolcats_run_restore(&lr, snap, sb, &e) != 0 && strstr(e.msg, "not a snapshot"),
          "restore of garbage: %s", e.msg);
    {   /* the snapshot's size does not grow with the context */
        size_t s0 = sb;
        lc_lolcats_run_reset(&lr);
        CHECK(lc_lolcats_run_snapshot_bytes(&lr) == s0, "snapshot size constant");
    }
    lc_lolcats_run_free(&lr);
    free(snap);
    free(ident);
    free(a);
    free(b);
    free(c);
    lc_model_free(&m);
}

/* LAMBADA: greedy acc and perplexity of a continuation whose answer is known:
   stories260K's own greedy next word (acc 1) and another word (acc 0); the
   perplexity of one document is exp(-its log-likelihood), computed here. */
static void test_lambada_greedy(void) {
    const char *ctx = "Once upon a time, there was a little girl named Lily. She loved to play outside in the";
    lc_model m;
    lc_tokenizer tok;
    lc_run r;
    lc_ctx cx;
    lc_error e;
    int ids[256], nt, pass;
    size_t n = 0;
    char piece[256], word[256], line[1024], cmd[1024], out[4096];
    if (!have(ST260K) || !have(TOK512)) { printf("SKIPPED: LAMBADA greedy (no %s)\n", ST260K); return; }
    memset(&e, 0, sizeof e);
    if (!CHECK(lc_model_load(&m, ST260K, &e) == 0 && lc_tokenizer_load_llama2c(&tok, TOK512, 0, &e) == 0, "%s", e.msg)) return;
    lc_ctx_init(&cx);
    lc_tokenizer_encode(&tok, ctx, strlen(ctx), 0, 0, ids, 256, &n, &e);
    lc_run_init(&r, &m, 256, 256, &e);
    lc_model_forward(&cx, &m, &r, ids, (int)n, NULL, &e);
    nt = lc_argmax(r.logits, m.cfg.vocab_size);
    piece[lc_tokenizer_decode(&tok, ids[n - 1], nt, piece, sizeof piece)] = 0;
    snprintf(word, sizeof word, "%s", piece[0] == ' ' ? piece + 1 : piece);
    for (pass = 0; pass < 2; pass++) {
        const char *w = pass ? "zebra" : word, *p;
        double ll, want;
        int ids2[256];
        size_t n2 = 0, k;
        tiny_sh("mkdir -p " TMP "/lam/llm-foundry");
        snprintf(line, sizeof line, "{\"context\": \"%s\", \"continuation\": \"%s\"}\n", ctx, w);
        put("lam/llm-foundry/lambada_openai.jsonl", line);
        snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s eval --task lambada --model %s --tokenizer %s --data-dir %s/lam "
                 "--json %s/lam.json --quiet >/dev/null 2>&1", bin, ST260K, TOK512, TMP, TMP);
        if (!CHECK(tiny_sh(cmd) == 0, "`%s` failed", cmd)) break;
        {
            FILE *f = fopen(TMP "/lam.json", "r");
            size_t got = f ? fread(out, 1, sizeof out - 1, f) : 0;
            out[got] = 0;
            if (f) fclose(f);
        }
        p = strstr(out, "\"acc\": ");
        CHECK(p && atof(p + 7) == (pass ? 0.0 : 1.0), "greedy acc for \"%s\" (%s): %s", w, pass ? "not the argmax" : "the argmax", out);
        /* ll of " w" after the context, here */
        snprintf(line, sizeof line, "%s %s", ctx, w);
        lc_tokenizer_encode(&tok, line, strlen(line), 0, 0, ids2, 256, &n2, &e);
        lc_run_reset(&r);
        ll = 0;
        {
            static float lg[256 * 512];
            lc_model_forward(&cx, &m, &r, ids2, (int)n2 - 1, lg, &e);
            for (k = n; k < n2; k++) ll += ev_logprob(lg + (k - 1) * (size_t)m.cfg.vocab_size, m.cfg.vocab_size, ids2[k]);
        }
        want = exp(-ll);
        p = strstr(out, "\"perplexity\": ");
        CHECK(p && fabs(atof(p + 14) - want) <= 1e-4 * want, "perplexity %s, want %g", p ? p + 14 : "?", want);
    }
    lc_run_free(&r);
    lc_tokenizer_free(&tok);
    lc_model_free(&m);
}

/* --prefill whole on the linearized model (identity maps, window 8): a
   LAMBADA item's log-likelihood equals lc_lolcats_forward over the whole
   context + continuation as ONE prefill, computed here; the default
   (segments: the context a prefill, the continuation by the decode rule)
   differs, so the check can tell the two apart. */
static double dump_ll(const char *path) {
    char buf[4096];
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    const char *p;
    buf[got] = 0;
    if (f) fclose(f);
    p = strstr(buf, "\"ll\": [");
    return p ? atof(p + 7) : 1.0;
}

static void test_prefill_whole(void) {
    const char *ctx = "Once upon a time, there was a little girl named Lily. She loved to play outside in the";
    const char *line = "{\"context\": \"Once upon a time, there was a little girl named Lily. She loved to play "
                       "outside in the\", \"continuation\": \"big green park with her dog\"}\n";
    lc_model m;
    lc_tokenizer tok;
    lc_lolcats lp;
    lc_lolcats_run r;
    lc_fmap_cfg fm = lc_fmap_cfg_default();
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    lc_error e;
    float *mem, *lg;
    int ids[256], ids2[256], f;
    size_t n = 0, n2 = 0, k;
    double want = 0, whole, seg;
    char whole_txt[300], cmd[1024];
    if (!have(ST260K) || !have(TOK512)) { printf("SKIPPED: --prefill whole (no %s)\n", ST260K); return; }
    memset(&e, 0, sizeof e);
    if (!CHECK(lc_model_load(&m, ST260K, &e) == 0 && lc_tokenizer_load_llama2c(&tok, TOK512, 0, &e) == 0, "%s", e.msg)) return;
    f = m.cfg.head_dim < 64 ? m.cfg.head_dim : 64;
    mem = (float *)malloc(sizeof(float) * lc_lolcats_identity_floats(&m.cfg, f));
    lg = (float *)malloc(sizeof(float) * 256 * (size_t)m.cfg.vocab_size);
    lc_lolcats_init_identity(&lp, mem, &m.cfg, f, &fm, &hc);
    lp.hybrid.window = 8;
    lc_tokenizer_encode(&tok, ctx, strlen(ctx), 0, 0, ids, 256, &n, &e);
    snprintf(whole_txt, sizeof whole_txt, "%s big green park with her dog", ctx);
    lc_tokenizer_encode(&tok, whole_txt, strlen(whole_txt), 0, 0, ids2, 256, &n2, &e);
    CHECK(n > 8 && n2 > n + 2, "context %d tokens, whole %d: past the window of 8", (int)n, (int)n2);
    if (CHECK(lc_lolcats_run_init(&r, NULL, &m, &lp, 256, &e) == 0, "%s", e.msg)) {
        CHECK(lc_lolcats_forward(&m, &lp, &r, ids2, (int)n2 - 1, lg, &e) == 0, "%s", e.msg);
        for (k = n; k < n2; k++) want += ev_logprob(lg + (k - 1) * (size_t)m.cfg.vocab_size, m.cfg.vocab_size, ids2[k]);
        lc_lolcats_run_free(&r);
    }
    tiny_sh("mkdir -p " TMP "/pw/llm-foundry");
    put("pw/llm-foundry/lambada_openai.jsonl", line);
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s eval --task lambada --model %s --tokenizer %s --data-dir %s/pw "
             "--lolcats identity --window 8 --prefill whole --dump %s/pw_whole.jsonl --quiet >/dev/null 2>&1",
             bin, ST260K, TOK512, TMP, TMP);
    CHECK(tiny_sh(cmd) == 0, "`%s` failed", cmd);
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s eval --task lambada --model %s --tokenizer %s --data-dir %s/pw "
             "--lolcats identity --window 8 --dump %s/pw_seg.jsonl --quiet >/dev/null 2>&1",
             bin, ST260K, TOK512, TMP, TMP);
    CHECK(tiny_sh(cmd) == 0, "`%s` failed", cmd);
    whole = dump_ll(TMP "/pw_whole.jsonl");
    seg = dump_ll(TMP "/pw_seg.jsonl");
    CHECK(want < 0 && fabs(whole - want) <= 1e-6 * fabs(want), "--prefill whole ll %.9g, one prefill here %.9g", whole, want);
    CHECK(seg < 0 && fabs(seg - want) > 1e-6 * fabs(want), "segments ll %.9g should differ from one prefill %.9g", seg, want);
    snprintf(cmd, sizeof cmd, "%s eval --task lambada --model %s --prefill all >/dev/null 2>&1", bin, ST260K);
    CHECK(tiny_sh(cmd) == 2, "--prefill all is a usage error");
    free(mem);
    free(lg);
    lc_tokenizer_free(&tok);
    lc_model_free(&m);
}

/* `lolcats eval --task T --limit 3` on the real data, every task. */
static void test_cli(void) {
    static const char *const tasks[] = {"piqa", "arc_easy", "arc_challenge", "hellaswag", "winogrande",
                                        "lambada", "copa", "openbookqa", "mmlu", "passkey"};
    char cmd[1024], out[8192];
    size_t i, n;
    FILE *f;
    if (!have(SHARED_EVAL) || !have(ST260K)) { printf("SKIPPED: CLI tasks (no %s or %s)\n", SHARED_EVAL, ST260K); return; }
    for (i = 0; i < sizeof tasks / sizeof *tasks; i++) {
        int rc;
        snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s eval --task %s --model %s --tokenizer %s --data-dir %s "
                 "--limit 3 --subjects 2 --lengths 256 --depths 0.5 --json %s/r.json --dump %s/d.jsonl "
                 ">%s/out.txt 2>&1", bin, tasks[i], ST260K, TOK512, SHARED_EVAL, TMP, TMP, TMP);
        rc = tiny_sh(cmd);
        f = fopen(TMP "/out.txt", "r");
        n = f ? fread(out, 1, sizeof out - 1, f) : 0;
        out[n] = 0;
        if (f) fclose(f);
        if (!CHECK(rc == 0 && strstr(out, tasks[i]) && strstr(out, "acc"), "`%s`: rc %d\n%s", cmd, rc, out)) continue;
        f = fopen(TMP "/r.json", "r");
        n = f ? fread(out, 1, sizeof out - 1, f) : 0;
        out[n] = 0;
        if (f) fclose(f);
        CHECK(strstr(out, "\"tasks\": {\"") && !strstr(out, "nan") && !strstr(out, "inf"), "%s: JSON %s", tasks[i], out);
    }
    snprintf(cmd, sizeof cmd, "%s eval --task piqa --model %s --tokenizer %s --data-dir %s/nowhere >%s/out.txt 2>&1",
             bin, ST260K, TOK512, TMP, TMP);
    CHECK(tiny_sh(cmd) == 1, "a missing data dir fails");
    snprintf(cmd, sizeof cmd, "%s eval --task nope --model %s >/dev/null 2>&1", bin, ST260K);
    CHECK(tiny_sh(cmd) == 2, "an unknown task is a usage error");
}

int main(void) {
    bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    test_choose();
    test_logprob_stats();
    test_mmlu_prompt();
    test_hellaswag_pre();
    test_csv();
    test_pair();
    test_readers_malformed();
    test_snapshot();
    test_lambada_greedy();
    test_prefill_whole();
    test_cli();
    return check_done();
}
