/* test_cli.c - the argument layer of every command (tools/args.c), from the
   outside: the binary in $LOLCATS_BIN (default build/lolcats).
   - every class of bad value (garbage, trailing junk, nan, inf, out of range,
     negative where unsigned, overflow, below float, blanks, missing value,
     a flag taken as a value, bad choices, bad --layers) exits 2 with a
     "lolcats: error:" line that names the flag and the value;
   - an unknown flag is named in every command, with a suggestion when close;
   - `lolcats help CMD` = `lolcats CMD --help`: stdout, exit 0, one format;
   - the aliases -m -p -n -t -s, and --threads, are accepted (generate -n is new
     tokens after the prompt, --steps positions as in llama2.c);
   - --strict turns the warnings for runs that cannot learn (a window covering
     the sequence, a budget below one step, a state larger than the KV cache)
     into exit 2; without it they are warnings and the run goes on.
   The model cases use ../shared/models/stories260K (skipped visibly when
   absent); the others fail at parse time and need no file. */
#include "check.h"

#include <string.h>
#include <sys/wait.h>

#define MODEL "../shared/models/stories260K/stories260K.bin"
#define TOK "../shared/models/stories260K/tok512.bin"
#define OUT_F "build/tests/cli_stdout.txt"
#define ERR_F "build/tests/cli_stderr.txt"

static const char *bin;
static char out_buf[1 << 16], err_buf[1 << 16];

#include "slurp.h"

/* runs `lolcats ARGS`; stdout and stderr in out_buf / err_buf; the exit code */
static int run(const char *args) {
    char cmd[4096];
    int st;
    snprintf(cmd, sizeof cmd, "%s %s >" OUT_F " 2>" ERR_F, bin, args);
    st = system(cmd);
    slurp(OUT_F, out_buf, sizeof out_buf);
    slurp(ERR_F, err_buf, sizeof err_buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* `lolcats ARGS` is a usage error (exit 2) whose message contains each of
   want1, want2 (NULL: not checked) */
static void bad(const char *args, const char *want1, const char *want2) {
    int rc = run(args);
    CHECK(rc == 2, "`lolcats %s`: exit %d, expected 2 (stderr: %s)", args, rc, err_buf);
    CHECK(strstr(err_buf, "lolcats: error: ") != NULL, "`lolcats %s`: no 'lolcats: error:' in: %s", args, err_buf);
    if (want1) CHECK(strstr(err_buf, want1) != NULL, "`lolcats %s`: stderr does not name %s: %s", args, want1, err_buf);
    if (want2) CHECK(strstr(err_buf, want2) != NULL, "`lolcats %s`: stderr does not name %s: %s", args, want2, err_buf);
}

/* every class of bad number, parse time (no file is opened) */
static void test_values(void) {
    const char *D = "distill --model x --data y --out build/tests/cli_never.safetensors";
    char a[512];
#define BAD(extra, w1, w2) (snprintf(a, sizeof a, "%s %s", D, extra), bad(a, w1, w2))
    BAD("--lr abc", "--lr 'abc'", "(0, 10]");                          /* garbage: was lr 0 */
    BAD("--seq-len 3x", "--seq-len '3x'", "integer");                  /* trailing junk: was 3 */
    BAD("--lr nan", "--lr 'nan'", "finite");
    BAD("--mse-factor inf", "--mse-factor 'inf'", "finite");
    BAD("--lr -inf", "--lr '-inf'", NULL);
    BAD("--window 1e30", "--window '1e30'", "[1, 1048576]");           /* was 1 */
    BAD("--window 2000000", "--window '2000000'", "[1, 1048576]");     /* the loader's limit, up front */
    BAD("--feature-dim 2048", "--feature-dim '2048'", "[1, 1024]");
    BAD("--lora-rank 0", "--lora-rank '0'", "[1, 256]");
    BAD("--lr 20", "--lr '20'", "(0, 10]");
    BAD("--lr 0", "--lr '0'", "(0, 10]");
    BAD("--lr 1e-50", "--lr '1e-50'", "32-bit float");                 /* 0 as a float */
    BAD("--seed -1", "--seed '-1'", "unsigned");                       /* was 2^64-1 */
    BAD("--seed 18446744073709551616", "--seed '18446744073709551616'", "unsigned");
    BAD("--grad-accum -2147483649", "--grad-accum '-2147483649'", "[1, 1048576]");   /* wrapped */
    BAD("--tokens 99999999999999999999", "--tokens '99999999999999999999'", "integer");
    BAD("--seq-len ' 5'", "--seq-len ' 5'", NULL);
    BAD("--seq-len ''", "--seq-len ''", NULL);
    BAD("--val-every 0x10", "--val-every '0x10'", NULL);
    BAD("--max-memory -5", "--max-memory '-5'", NULL);
    BAD("--layers 0:1:2", "--layers '0:1:2'", "A:B");
    BAD("--layers 3:1", "--layers '3:1'", "A:B");
    BAD("--layers 0:x", "--layers '0:x'", NULL);
    BAD("--layers :4", "--layers ':4'", NULL);
    BAD("--layers 0:8,", "--layers '0:8,'", "A:B,C:D");
    BAD("--layers 0:8,8:x", "--layers '8:x'", NULL);
    BAD("--variant xx", "--variant 'xx'", "tk|sw");
    BAD("--feature-map cosine", "--feature-map 'cosine'", "relu");
    BAD("--init zeros", "--init 'zeros'", "identity|kaiming");
    BAD("--lr", "--lr needs a value", NULL);                           /* missing value, last */
    snprintf(a, sizeof a, "distill --model x --data y --out --resume");
    bad(a, "--out needs a value", "--resume");                         /* a flag taken as a value */
#undef BAD
    bad("generate --model x --top-p 5", "--top-p '5'", "[0, 1]");      /* was "off" */
    bad("generate --model x --temperature -1", "--temperature '-1'", NULL);
    bad("generate --model x --steps 0", "--steps '0'", NULL);
    bad("generate --model x -n -3", "--n-predict '-3'", NULL);
    bad("generate --model x -s -1", "--seed '-1'", "unsigned");
    bad("generate -m", "-m needs a value", NULL);
    bad("eval --model x --data y --ctx 12abc", "--ctx '12abc'", NULL);
    bad("eval --task piqa --model x --limit 3x", "--limit '3x'", NULL);
    bad("eval --task piqa --model x --num-fewshot -1", "--num-fewshot '-1'", NULL);
    bad("eval --task piqa --model x --lengths 1024,nan", "--lengths '1024,nan'", NULL);
    bad("eval --task piqa --model x --depths 0.5,2", "--depths '0.5,2'", NULL);
    bad("eval --task piqa --model x --limt 3", "unknown flag '--limt'", "--limit");
    bad("eval --model x --data y --limit -1", "--limit '-1'", NULL);
    bad("eval --model x --data y --window nan", "--window 'nan'", NULL);
    bad("eval --model x --data y --variant TK", "--variant 'TK'", "tk|sw");
    bad("synth --like smollm-135m --out build/tests/cli_never --layers 1.5", "--layers '1.5'", NULL);
    bad("synth --like smollm-135m --out build/tests/cli_never --dtype f16", "--dtype 'f16'", "bf16|f32");
    bad("synth --like smollm-135m --out build/tests/cli_never --shard-mb 0", "--shard-mb '0'", NULL);
    bad("demo --scale nan", "--scale 'nan'", NULL);
    bad("demo --seed 1x", "--seed '1x'", NULL);
    bad("compare a b --rtol inf", "--rtol 'inf'", NULL);
    bad("compare a b --atol", "--atol needs a value", NULL);
    bad("cache-inputs --model x --data y --out z --shard-mb -1", "--shard-mb '-1'", NULL);
    bad("linearize --model x --data y --out z --distill-lr nan", "--distill-lr 'nan'", NULL);
    /* linearize --lr was silently ignored: refused, naming the flags to use */
    bad("linearize --model x --data y --out z --lr 1e-3", "--distill-lr", "--finetune-lr");
}

/* an unknown flag is named in every command */
static void test_unknown(void) {
    static const char *cmds[] = {"ref", "demo", "synth", "compare", "generate", "eval", "inspect", "convert",
                                 "distill", "finetune", "linearize", "cache-inputs", "stitch"};
    char a[256], want[64];
    size_t k;
    for (k = 0; k < sizeof cmds / sizeof cmds[0]; k++) {
        snprintf(a, sizeof a, "%s --bogus-flag 1", cmds[k]);
        snprintf(want, sizeof want, "'%s'", cmds[k]);
        bad(a, "unknown flag '--bogus-flag'", want);
    }
    bad("generate --model x --stpes 3", "'--stpes'", "did you mean --steps?");
    bad("eval --model x --data y --lolcat c", "'--lolcat'", "did you mean --lolcats?");
    bad("distill --model x --data y --out z --fature-dim 8", "'--fature-dim'", "did you mean --feature-dim?");
    bad("finetune --lora-rnk 4", "'--lora-rnk'", "did you mean --lora-rank?");
    bad("ref --scaler a b", "'--scaler'", "did you mean --scalar?");
    bad("generate --model x --prompt hi stray", "'stray'", NULL);
    bad("generate --model x --n", "unknown flag '--n'", NULL);   /* a prefix of --n-predict is not it */
    bad("eval --model x --data y --js", "unknown flag '--js'", "--json");
    bad("ref a b c", "'c'", NULL);
}

/* `lolcats help CMD` = `lolcats CMD --help`: stdout, exit 0, "usage: lolcats CMD" */
static void test_help(void) {
    static const char *cmds[] = {"ref", "demo", "synth", "compare", "generate", "eval", "inspect", "convert",
                                 "distill", "finetune", "linearize", "cache-inputs", "stitch"};
    static char first[1 << 16];
    char a[256], want[64];
    size_t k;
    int rc;
    for (k = 0; k < sizeof cmds / sizeof cmds[0]; k++) {
        snprintf(a, sizeof a, "help %s", cmds[k]);
        rc = run(a);
        snprintf(want, sizeof want, "usage: lolcats %s ", cmds[k]);
        CHECK(rc == 0 && !strncmp(out_buf, want, strlen(want)) && !err_buf[0],
              "`lolcats help %s`: exit %d, stdout starts '%.40s', stderr '%s'", cmds[k], rc, out_buf, err_buf);
        memcpy(first, out_buf, sizeof first);
        snprintf(a, sizeof a, "%s --help", cmds[k]);
        rc = run(a);
        CHECK(rc == 0 && !strcmp(first, out_buf), "`lolcats %s --help` differs from `lolcats help %s`", cmds[k],
              cmds[k]);
    }
    rc = run("help nosuch");
    CHECK(rc == 2 && strstr(err_buf, "'nosuch'"), "`lolcats help nosuch`: exit %d, stderr %s", rc, err_buf);
    rc = run("help");
    CHECK(rc == 0 && strstr(out_buf, "usage: lolcats"), "`lolcats help`: exit %d", rc);
    run("help generate");
    CHECK(strstr(out_buf, "-n, --n-predict") && strstr(out_buf, "-t, --threads") && strstr(out_buf, "llama2.c"),
          "generate's help documents -n (new tokens) against --steps (llama2.c): %s", out_buf);
}

/* --strict: the warnings for runs that cannot learn are errors, found once the
   model and data have set the sequence length, before any training */
static void test_strict(void) {
    char D[512], a[1024];
    snprintf(D, sizeof D, "-m %s --tokenizer %s --data build/tests/cli_data.txt --out build/tests/cli_never.safetensors "
             "--strict --feature-dim 4", MODEL, TOK);
    snprintf(a, sizeof a, "distill %s --seq-len 64 --window 64", D);
    bad(a, "--window 64", "--strict");
    snprintf(a, sizeof a, "distill %s --seq-len 64 --window 32", D);   /* tk: the last query's keys reach back 2w */
    bad(a, "--window 32", "linear attention");
    snprintf(a, sizeof a, "distill %s --seq-len 64 --window 200 --variant sw", D);
    bad(a, "--window 200", "linear attention");
    snprintf(a, sizeof a, "distill %s --seq-len 64 --window 16 --tokens 100 --grad-accum 8", D);
    bad(a, "--tokens 100", "one optimizer step");
    /* the model's context (512) caps --seq-len: the checks see the length the run uses */
    snprintf(a, sizeof a, "distill %s --seq-len 4096 --window 16 --tokens 2048 --grad-accum 8", D);
    bad(a, "--tokens 2048", "--seq-len 512 x --grad-accum 8 = 4096 tokens");
    snprintf(a, sizeof a, "linearize %s --seq-len 64 --window 16 --tokens 512 --finetune-tokens 10 --grad-accum 1", D);
    bad(a, "--finetune-tokens 10", "--strict");
    {
        FILE *f = fopen("build/tests/cli_never.safetensors", "rb");
        CHECK(!f, "--strict refusals wrote no checkpoint");
        if (f) fclose(f);
    }
}

/* the model cases: aliases, --threads, warnings without --strict, state check */
static void test_model(void) {
    static char ref[sizeof out_buf];
    char a[1024];
    int rc;
    FILE *f = fopen(MODEL, "rb");
    if (!f) { printf("SKIPPED: alias, --threads and model warning cases (%s absent)\n", MODEL); return; }
    fclose(f);
    remove("build/tests/cli_never.safetensors");
    f = fopen("build/tests/cli_data.txt", "w");
    if (!f) { CHECK(0, "cannot write build/tests/cli_data.txt"); return; }
    {
        int k;
        for (k = 0; k < 12; k++)
            fputs("Once upon a time, there was a little girl named Lily. She loved to play outside in the sun. "
                  "One day, she saw a big red ball in the park and ran to get it. ", f);
    }
    fclose(f);
    /* generate: --steps as llama2.c, -n new tokens, greedy: -n's text is a prefix of the long one */
    snprintf(a, sizeof a, "generate --model %s --tokenizer %s --prompt 'Once upon' --steps 40 --temperature 0", MODEL, TOK);
    rc = run(a);
    CHECK(rc == 0, "generate --steps: exit %d: %s", rc, err_buf);
    memcpy(ref, out_buf, sizeof ref);
    snprintf(a, sizeof a, "generate -m %s --tokenizer %s -p 'Once upon' -n 3 -t 1 -s 7 --temperature 0", MODEL, TOK);
    rc = run(a);
    CHECK(rc == 0, "generate -m -p -n -t -s: exit %d: %s", rc, err_buf);
    {
        size_t n = strlen(out_buf);
        while (n && out_buf[n - 1] == '\n') n--;
        CHECK(n > strlen("Once upon") && n + 10 < strlen(ref) && !strncmp(out_buf, ref, n),
              "-n 3 gives a few new tokens, a prefix of the --steps 40 text: '%s' vs '%s'", out_buf, ref);
    }
    snprintf(a, sizeof a, "generate -m %s --tokenizer %s -p 'Once upon' -n 1 --temperature 0", MODEL, TOK);
    run(a);
    {
        static char one[sizeof out_buf];
        memcpy(one, out_buf, sizeof one);
        snprintf(a, sizeof a, "generate -m %s --tokenizer %s -p 'Once upon' -n 2 --temperature 0", MODEL, TOK);
        run(a);
        CHECK(strlen(one) < strlen(out_buf) && !strncmp(one, out_buf, strlen(one) - 1),
              "-n 2 adds a token to -n 1: '%s' vs '%s'", one, out_buf);
    }
    /* eval: -m, --threads / -t */
    snprintf(a, sizeof a, "eval -m %s --tokenizer %s --data build/tests/cli_data.txt --ctx 64 --threads 2", MODEL, TOK);
    rc = run(a);
    CHECK(rc == 0 && strstr(out_buf, "mean NLL"), "eval --threads 2: exit %d: %s", rc, err_buf);
    snprintf(a, sizeof a, "eval -m %s --tokenizer %s --data build/tests/cli_data.txt --ctx 64 -t 1", MODEL, TOK);
    rc = run(a);
    CHECK(rc == 0, "eval -t 1: exit %d: %s", rc, err_buf);
    snprintf(a, sizeof a, "eval -m %s --tokenizer %s --data build/tests/cli_data.txt -t 0", MODEL, TOK);
    bad(a, "--threads '0'", NULL);
    snprintf(a, sizeof a, "eval --task piqa -m %s --tokenizer %s --json %s", MODEL, TOK, MODEL);
    rc = run(a);
    CHECK(rc != 0 && strstr(err_buf, "the same file as --model"), "eval --task --json equal to the model: exit %d: %s",
          rc, err_buf);
    snprintf(a, sizeof a, "eval -m %s --tokenizer %s --data build/tests/cli_data.txt --ctx 513", MODEL, TOK);
    bad(a, "--ctx 513 is longer than the model's context (512", NULL);
    /* a window covering the sequence: a warning, the run goes on */
    snprintf(a, sizeof a, "distill -m %s --tokenizer %s --data build/tests/cli_data.txt --out "
             "build/tests/cli_w.safetensors --force --seq-len 32 --window 32 --tokens 32 --grad-accum 1 --feature-dim 4 "
             "--val-seqs 1 -t 1", MODEL, TOK);
    rc = run(a);
    CHECK(rc == 0 && strstr(err_buf, "lolcats: warning: --window 32"), "window warning without --strict: exit %d: %s",
          rc, err_buf);
    /* a decode state larger than the KV cache (stories260K: 8 heads, 4 kv heads, D 8, context 512):
       F = 2 x 256 gives 8 x (512 x 8 + 512) + 4 x 2 x 8 x 8 = 37376 floats against 4 x 2 x 512 x 8 = 32768 */
    snprintf(a, sizeof a, "distill -m %s --tokenizer %s --data build/tests/cli_data.txt --out "
             "build/tests/cli_s.safetensors --force --seq-len 32 --window 8 --tokens 32 --grad-accum 1 --feature-dim 256 "
             "--val-seqs 1 --strict", MODEL, TOK);
    bad(a, "KV cache", "37376 floats");
    CHECK(strstr(err_buf, "32768 floats") != NULL, "the state message states the KV arithmetic: %s", err_buf);
    /* one pass over the data below one step (default budget) */
    snprintf(a, sizeof a, "distill -m %s --tokenizer %s --data build/tests/cli_data.txt --out "
             "build/tests/cli_s.safetensors --force --seq-len 32 --window 8 --grad-accum 1000 --feature-dim 4 "
             "--val-seqs 1 --strict", MODEL, TOK);
    bad(a, "--data (one pass", "one optimizer step");
    test_strict();
}

int main(void) {
    bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    if (system("mkdir -p build/tests") != 0 || run("--version") != 0) {
        printf("FAIL: %s does not run (build it with make)\n0 passed, 1 failed\n", bin);
        return 1;
    }
    test_values();
    test_unknown();
    test_help();
    test_model();
    return check_done();
}
