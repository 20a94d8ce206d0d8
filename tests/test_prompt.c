/* test_prompt.c - prompting in `lolcats generate` (tools/prompt.c) and the
   progress of `eval --task` without a terminal, from the outside: the binary
   in $LOLCATS_BIN (default build/lolcats) on a tiny model and tokenizers the
   test writes itself (no ../shared).
   - -f FILE, -f -, -p - (stdin) give the same text as -p TEXT at temperature 0;
   - --chat: the ids of the Llama 3 and ChatML templates (system turn included)
     exactly, markers as their single special ids, for tokenizer.json files
     with those specials; Alpaca's template for a tokenizer without them;
   - -i: two turns give the reply of one prompt holding both turns and the
     first reply (base model and --lolcats identity); --chat -i: the second
     turn closes the first reply with the end-of-turn id;
   - bad inputs (both -p and -f, a missing or empty file, -i with stdin, a
     template without its tokens, --system without a system role) are refused
     naming the flag;
   - eval --task piped with LOLCATS_PROGRESS_SECONDS=0: the plain progress
     line (done/total, rate, ETA) and the final tokens/s line. */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "tiny_files.h"

#include <string.h>

#define TMP "build/tests/prompt"
#define MODEL TMP "/m.bin"
#define TOKB TMP "/tok.bin"
#define GEN_ARGS "generate -m " MODEL " --temperature 0 -n 8 "

static const char *bin;
static char out_buf[4096], err_buf[1 << 16];

#include "slurp.h"

/* `[stdin_from |] lolcats ARGS`: stdout, stderr in out_buf, err_buf; exit code */
static int run(const char *pre, const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s OMP_NUM_THREADS=1 %s %s >" TMP "/out.txt 2>" TMP "/err.txt", pre ? pre : "", bin, args);
    {
        int rc = tiny_sh(cmd);
        slurp(TMP "/out.txt", out_buf, sizeof out_buf);
        slurp(TMP "/err.txt", err_buf, sizeof err_buf);
        return rc;
    }
}

static void put(const char *path, const char *text, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { CHECK(0, "cannot write %s", path); return; }
    fwrite(text, 1, n, f);
    fclose(f);
}

/* ---- a byte-level tokenizer.json: ids 0..95 the bytes ' '..'~' and '\n',
   then the specials from 96 ---- */
static int bid(int c) { return c == '\n' ? 95 : c - 32; }

static void write_json_tok(const char *path, const char *const *specials, int ns) {
    char buf[16384];
    size_t n = 0;
    int c, k;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\\u0120\": 0, ");
    for (c = 33; c < 127; c++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, c == '"' ? "\"\\\"\": %d, " : c == '\\' ? "\"\\\\\": %d, " : "\"%c\": %d, ",
                              c == '"' || c == '\\' ? bid(c) : c, bid(c));
    n += (size_t)snprintf(buf + n, sizeof buf - n, "\"\\u010a\": 95}, \"merges\": []}, \"added_tokens\": [");
    for (k = 0; k < ns; k++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s{\"id\": %d, \"content\": \"%s\", \"special\": true}", k ? ", " : "",
                              96 + k, specials[k]);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "], \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false},"
                                                   " \"decoder\": {\"type\": \"ByteLevel\"}}\n");
    put(path, buf, n);
}

/* expected ids: a spec string where "{N}" is special id N and bytes are bid() */
static size_t expect_ids(const char *spec, int *ids) {
    size_t n = 0;
    while (*spec) {
        if (*spec == '{') { ids[n++] = atoi(spec + 1); spec = strchr(spec, '}') + 1; }
        else ids[n++] = bid((unsigned char)*spec++);
    }
    return n;
}

/* the ids of the k-th "prompt: N tokens: ..." line of err_buf */
static size_t got_ids(int k, int *ids) {
    const char *p = err_buf;
    size_t n = 0;
    char *end;
    while (k-- >= 0) {
        p = strstr(p, "prompt: ");
        if (!p) return 0;
        p += 8;
    }
    p = strstr(p, "tokens:");
    if (!p) return 0;
    p += 7;
    while (*p == ' ') {
        ids[n++] = (int)strtol(p, &end, 10);
        p = end;
    }
    return n;
}

static void same_ids(const char *what, const int *a, size_t na, const int *b, size_t nb) {
    size_t i;
    int ok = na == nb;
    for (i = 0; ok && i < na; i++) ok = a[i] == b[i];
    CHECK(ok, "%s: %zu ids, expected %zu (first difference at %zu)", what, na, nb, i ? i - 1 : 0);
}

static void test_files(void) {
    char ref[4096];
    CHECK(run(NULL, GEN_ARGS "--tokenizer " TOKB " -p 'the cat sat'") == 0, "-p: %s", err_buf);
    snprintf(ref, sizeof ref, "%s", out_buf);
    CHECK(strstr(ref, "the cat sat") && strlen(ref) > 13, "-p output: '%s'", ref);
    put(TMP "/p.txt", "the cat sat\n", 12);
    CHECK(run(NULL, GEN_ARGS "--tokenizer " TOKB " -f " TMP "/p.txt") == 0 && !strcmp(out_buf, ref),
          "-f FILE: '%s' vs -p: '%s' (%s)", out_buf, ref, err_buf);
    CHECK(run(NULL, GEN_ARGS "--tokenizer " TOKB " --prompt-file " TMP "/p.txt") == 0 && !strcmp(out_buf, ref),
          "--prompt-file FILE: '%s' vs -p: '%s'", out_buf, ref);
    CHECK(run("cat " TMP "/p.txt |", GEN_ARGS "--tokenizer " TOKB " -f -") == 0 && !strcmp(out_buf, ref),
          "-f - (stdin): '%s' vs -p: '%s' (%s)", out_buf, ref, err_buf);
    CHECK(run("printf 'the cat sat' |", GEN_ARGS "--tokenizer " TOKB " -p -") == 0 && !strcmp(out_buf, ref),
          "-p - (stdin): '%s' vs -p: '%s' (%s)", out_buf, ref, err_buf);
}

static void test_templates(void) {
    static const char *l3[] = {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"};
    static const char *cm[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    int want[512], got[512];
    size_t nw, ng;
    write_json_tok(TMP "/l3.json", l3, 5);
    write_json_tok(TMP "/cm.json", cm, 3);
    /* Llama 3 */
    CHECK(run(NULL, GEN_ARGS "--tokenizer " TMP "/l3.json --chat -p 'Hi \"you\"' --verbose-prompt") == 0, "llama3: %s", err_buf);
    nw = expect_ids("{96}{98}user{99}\n\nHi \"you\"{100}{98}assistant{99}\n\n", want);
    ng = got_ids(0, got);
    same_ids("llama3 template", got, ng, want, nw);
    CHECK(run(NULL, GEN_ARGS "--tokenizer " TMP "/l3.json --chat --system 'Be brief.' -p 'Hi' --verbose-prompt") == 0,
          "llama3 --system: %s", err_buf);
    nw = expect_ids("{96}{98}system{99}\n\nBe brief.{100}{98}user{99}\n\nHi{100}{98}assistant{99}\n\n", want);
    ng = got_ids(0, got);
    same_ids("llama3 template with --system", got, ng, want, nw);
    /* ChatML */
    CHECK(run(NULL, GEN_ARGS "--tokenizer " TMP "/cm.json --chat --system S -p 'a b' --verbose-prompt") == 0, "chatml: %s", err_buf);
    nw = expect_ids("{97}system\nS{98}\n{97}user\na b{98}\n{97}assistant\n", want);
    ng = got_ids(0, got);
    same_ids("chatml template", got, ng, want, nw);
    /* forced: the same ids through --chat-template chatml */
    CHECK(run(NULL, GEN_ARGS "--tokenizer " TMP "/cm.json --chat --chat-template chatml --system S -p 'a b' --verbose-prompt") == 0,
          "--chat-template chatml: %s", err_buf);
    ng = got_ids(0, got);
    same_ids("--chat-template chatml", got, ng, want, nw);
    /* Alpaca for a tokenizer without chat tokens: BOS, ' ' (dummy prefix), the template's bytes (+3) */
    CHECK(run(NULL, GEN_ARGS "--tokenizer " TOKB " --chat -p 'Add 1 and 2.' --verbose-prompt --lolcats identity") == 0, "alpaca: %s", err_buf);
    {
        const char *t = "Below is an instruction that describes a task. Write a response that appropriately completes "
                        "the request.\n\n### Instruction:\nAdd 1 and 2.\n\n### Response:\n";
        size_t i;
        nw = 0;
        want[nw++] = 1;
        want[nw++] = ' ' + 3;
        for (i = 0; t[i]; i++) want[nw++] = (unsigned char)t[i] + 3;
        ng = got_ids(0, got);
        same_ids("alpaca template", got, ng, want, nw);
    }
    /* --chat -i: turn 2 = [the reply's last token] <|eot_id|> user turn (the reply cut by -n 2) or, when
       the reply ended at <|eot_id|>, that id and the user turn */
    CHECK(run("printf 'ok\\n' |", "generate -m " MODEL " --temperature 0 -n 2 --tokenizer " TMP "/l3.json --chat -i -p Hi "
                                  "--verbose-prompt") == 0, "--chat -i: %s", err_buf);
    nw = expect_ids("{100}{98}user{99}\n\nok{100}{98}assistant{99}\n\n", want);
    ng = got_ids(1, got);
    CHECK(ng == nw || ng == nw + 1, "--chat -i turn 2: %zu ids, expected %zu or %zu", ng, nw, nw + 1);
    if (ng == nw + 1) same_ids("--chat -i turn 2 after the reply's last token", got + 1, ng - 1, want, nw);
    else same_ids("--chat -i turn 2 after <|eot_id|>", got, ng, want, nw);
}

/* -i: the second reply equals the reply to one prompt holding turn 1, the
   first reply and turn 2. The byte tokenizer makes text and ids one to one
   as long as every reply token is visible (not <unk> or a control byte), so
   the first prompt whose 4-token reply is 4 visible bytes is used. */
static void test_interactive(const char *extra) {
    static const char *cands[] = {"the cat", "a dog ran", "on a mat", "far away", "the dog", "cat and",
                                  "sat on", "mat and dog", "ran far", "away the", "dog sat", "a cat"};
    char args[1024], r1[4096], both[4096], file[8192];
    size_t l1 = 0, c;
    for (c = 0; c < sizeof cands / sizeof cands[0]; c++) {
        snprintf(args, sizeof args, "generate -m " MODEL " --temperature 0 -n 4 --tokenizer " TOKB " -i -p '%s' %s",
                 cands[c], extra);
        if (!CHECK(run("printf '' |", args) == 0, "-i one turn: %s", err_buf)) return;
        snprintf(r1, sizeof r1, "%s", out_buf);
        l1 = strlen(r1);
        if (l1 != 5) continue;
        if (!CHECK(run("printf ' sat on\\n/exit\\nnever\\n' |", args) == 0, "-i two turns: %s", err_buf)) return;
        snprintf(both, sizeof both, "%s", out_buf);
        if (!CHECK(strncmp(both, r1, l1) == 0, "-i %s: turn 1 '%s' then '%s'", extra, r1, both)) return;
        if (strlen(both) > l1 + 1) break;
    }
    if (!CHECK(c < sizeof cands / sizeof cands[0], "-i %s: no prompt with a visible first reply and a second one", extra))
        return;
    CHECK(strchr(both + l1, '\n') == both + strlen(both) - 1, "-i %s: /exit did not end it: '%s'", extra, both);
    snprintf(file, sizeof file, "%s%.*s sat on", cands[c], (int)(l1 - 1), r1);
    put(TMP "/both.txt", file, strlen(file));
    snprintf(args, sizeof args, "generate -m " MODEL " --temperature 0 -n 4 --tokenizer " TOKB " -f " TMP "/both.txt %s", extra);
    if (!CHECK(run(NULL, args) == 0, "one prompt: %s", err_buf)) return;
    CHECK(strlen(out_buf) >= strlen(both + l1) && !strcmp(out_buf + strlen(out_buf) - strlen(both + l1), both + l1),
          "-i %s ('%s'): turn 2 replied '%s', one prompt holding both turns '%s'", extra, cands[c], both + l1, out_buf);
}

static void refused(const char *pre, const char *args, int want_rc, const char *w1, const char *w2) {
    int rc = run(pre, args);
    CHECK(rc == want_rc && strstr(err_buf, "lolcats: error: ") && strstr(err_buf, w1) && (!w2 || strstr(err_buf, w2)),
          "`%s`: exit %d (want %d), stderr lacks '%s'/'%s': %s", args, rc, want_rc, w1, w2 ? w2 : "", err_buf);
}

static void test_bad(void) {
    put(TMP "/empty.txt", "\n", 1);
    refused(NULL, GEN_ARGS "--tokenizer " TOKB " -p x -f " TMP "/p.txt", 2, "--prompt-file", "--prompt");
    refused(NULL, GEN_ARGS "--tokenizer " TOKB " -f " TMP "/nowhere.txt", 1, "--prompt-file", TMP "/nowhere.txt");
    refused(NULL, GEN_ARGS "--tokenizer " TOKB " -f " TMP "/empty.txt", 1, TMP "/empty.txt", "empty");
    refused("printf '' |", GEN_ARGS "--tokenizer " TOKB " -p -", 1, "--prompt", "empty");
    refused(NULL, GEN_ARGS "--tokenizer " TOKB " -i -f -", 2, "--interactive", "stdin");
    refused(NULL, GEN_ARGS "--tokenizer " TOKB " --chat --chat-template mistral", 2, "--chat-template", "mistral");
    refused(NULL, GEN_ARGS "--tokenizer " TOKB " --chat --chat-template llama3", 1, "--chat-template llama3", "<|begin_of_text|>");
    refused(NULL, GEN_ARGS "--tokenizer " TMP "/l3.json --chat --chat-template chatml", 1, "--chat-template chatml", "<|im_start|>");
    refused(NULL, GEN_ARGS "--tokenizer " TOKB " --chat --system S", 1, "--system", "alpaca");
    refused(NULL, GEN_ARGS "--tokenizer " TOKB " --system S", 2, "--system", "--chat");
}

static void test_eval_progress(void) {
    char line[256], cmd[1024];
    int i;
    FILE *f;
    tiny_sh("mkdir -p " TMP "/ev/llm-foundry");
    f = fopen(TMP "/ev/llm-foundry/lambada_openai.jsonl", "wb");
    if (!CHECK(f != NULL, "cannot write the lambada file")) return;
    for (i = 0; i < 4; i++) {
        snprintf(line, sizeof line, "{\"context\": \"the cat sat on the mat %d and the dog\", \"continuation\": \"ran\"}\n", i);
        fputs(line, f);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "eval --task lambada --model " MODEL " --tokenizer " TOKB " --data-dir " TMP "/ev");
    CHECK(run("LOLCATS_PROGRESS_SECONDS=0", cmd) == 0, "eval --task: %s", err_buf);
    CHECK(strstr(err_buf, "1/4 items") && strstr(err_buf, "items/s") && strstr(err_buf, "ETA") && !strchr(err_buf, '\r'),
          "eval --task piped, LOLCATS_PROGRESS_SECONDS=0: no plain progress line per item: %s", err_buf);
    CHECK(strstr(err_buf, "4/4 items") && strstr(err_buf, "tokens/s"), "eval --task: no final line with tokens/s: %s", err_buf);
    CHECK(run("LOLCATS_PROGRESS_SECONDS=1000", cmd) == 0 && !strstr(err_buf, "ETA"),
          "eval --task, LOLCATS_PROGRESS_SECONDS=1000: a progress line before 1000 s: %s", err_buf);
}

int main(void) {
    bin = getenv("LOLCATS_BIN");
    if (!bin || !bin[0]) bin = "build/lolcats";
    tiny_sh("mkdir -p " TMP);
    if (!CHECK(tiny_write_model(MODEL) && tiny_write_tokenizer(TOKB), "cannot write the tiny model")) return check_done();
    test_files();
    test_templates();
    test_interactive("");
    test_interactive("--lolcats identity --variant sw");   /* tk prefills a whole prompt with its terraced masks: only sw equals prefill + decode */
    test_bad();
    test_eval_progress();
    return check_done();
}
