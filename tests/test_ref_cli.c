/* test_ref_cli.c - the `lolcats ref` / `lolcats compare` contract from the
   outside: a case written with lc_st_write goes through the binary (path in
   $LOLCATS_BIN, default build/lolcats), its output matches lc_ref_eval
   in-process, `compare` passes on equal files and fails on perturbed ones,
   and bad input (unknown op, missing or mis-shaped tensors, bad metadata,
   a missing file) gives a clear error and a non-zero exit, never a crash. */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"

#include <stdlib.h>
#include <sys/wait.h>

static const char *bin;
static char tmpdir[256];

static int run(const char *args, const char *expect_in_stderr) {
    char cmd[1024], errf[300], buf[4096];
    FILE *f;
    int st, code;
    size_t n;
    snprintf(errf, sizeof errf, "%s/stderr.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "%s %s >%s/stdout.txt 2>%s", bin, args, tmpdir, errf);
    st = system(cmd);
    code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    f = fopen(errf, "r");
    n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
    if (expect_in_stderr)
        CHECK(strstr(buf, expect_in_stderr) != NULL, "`lolcats %s`: stderr lacks '%s' (got: %s)", args,
              expect_in_stderr, buf);
    return code;
}

static lc_rng rng;

static float *randn(size_t n) {
    float *p = (float *)malloc(sizeof(float) * n);
    size_t i;
    for (i = 0; i < n; i++) p[i] = lc_rng_normal(&rng);
    return p;
}

static void tensor(lc_tensor *t, const char *name, const float *d, int nd, int64_t a, int64_t b,
                   int64_t c, int64_t e) {
    int i;
    memset(t, 0, sizeof *t);
    t->name = name; t->dtype = LOLCATS_DTYPE_F32; t->ndim = nd; t->data = d;
    t->shape[0] = a; t->shape[1] = b; t->shape[2] = c; t->shape[3] = e;
    t->nbytes = 4;
    for (i = 0; i < nd; i++) t->nbytes *= (size_t)t->shape[i];
}

enum { B = 1, H = 4, HK = 2, N = 21, D = 6, FD = 3 };

static float *q, *k, *v, *wq, *wk, *wf, *dy;

static void write_case(const char *path, const char *op, int drop, int bad_shape, const char *extra_k,
                       const char *extra_v) {
    lc_tensor t[8];
    lc_error err;
    const char *meta[8];
    int n = 0, nm = 0;
    tensor(&t[n++], "q", q, 4, B, H, N, D);
    tensor(&t[n++], "k", k, 4, B, HK, N, D);
    if (drop != 2) tensor(&t[n++], "v", v, 4, B, HK, N, D);
    tensor(&t[n++], "feature_map_q.weight", wq, 3, H, D, FD, 0);
    tensor(&t[n++], "feature_map_k.weight", wk, 3, bad_shape ? H - 1 : H, D, FD, 0);
    tensor(&t[n++], "window_factors", wf, 1, H, 0, 0, 0);
    tensor(&t[n++], "dy", dy, 4, B, H, N, D);
    meta[nm++] = "op"; meta[nm++] = op;
    meta[nm++] = "window"; meta[nm++] = "8";
    if (extra_k) { meta[nm++] = extra_k; meta[nm++] = extra_v; }
    CHECK(lc_st_write(path, t, n, meta, nm / 2, &err) == LOLCATS_OK, "write %s: %s", path, err.msg);
}

/* a file of up to two F32 (or F64) vectors: name1 = v1[0..n1), name2 = v2[0..n2) */
static void write_vec(const char *path, int f64, const char *name1, const double *v1, int n1, const char *name2,
                      const double *v2, int n2) {
    lc_tensor t[2];
    lc_error err;
    float f[2][8];
    int i, n = 0;
    const char *names[2];
    const double *vals[2];
    int lens[2];
    names[0] = name1; vals[0] = v1; lens[0] = n1;
    names[1] = name2; vals[1] = v2; lens[1] = n2;
    for (i = 0; i < 2; i++) {
        int j;
        if (!names[i]) continue;
        memset(&t[n], 0, sizeof t[n]);
        t[n].name = names[i];
        t[n].ndim = 1;
        t[n].shape[0] = lens[i];
        if (f64) {
            t[n].dtype = LOLCATS_DTYPE_F64;
            t[n].data = vals[i];
            t[n].nbytes = 8 * (size_t)lens[i];
        } else {
            for (j = 0; j < lens[i]; j++) f[n][j] = (float)vals[i][j];
            t[n].dtype = LOLCATS_DTYPE_F32;
            t[n].data = f[n];
            t[n].nbytes = 4 * (size_t)lens[i];
        }
        n++;
    }
    CHECK(lc_st_write(path, t, n, NULL, 0, &err) == LOLCATS_OK, "write %s: %s", path, err.msg);
}

/* compare follows numpy.isclose: an infinity matches only the same infinity, a
   NaN only a NaN and only with --equal-nan; nothing compared and tensors
   missing on either side fail. */
static void compare_semantics(void) {
    char a[300], b[300], args[800];
    const double inf = HUGE_VAL, nan = HUGE_VAL - HUGE_VAL;
    double one[3] = {1, 2, 3}, x[3], y[3];
    struct { double a, b; int extra_flag, expect; const char *what; } cases[] = {
        {0, 0, 0, 0, "equal finite values pass"},
        {HUGE_VAL, 0, 0, 1, "+inf against 0 fails"},
        {0, HUGE_VAL, 0, 1, "0 against +inf fails"},
        {HUGE_VAL, -HUGE_VAL, 0, 1, "+inf against -inf fails"},
        {HUGE_VAL, HUGE_VAL, 0, 0, "+inf against +inf passes"},
        {-HUGE_VAL, -HUGE_VAL, 0, 0, "-inf against -inf passes"},
        {0, 0, 1, 1, "NaN against NaN fails without --equal-nan"},
        {0, 0, 2, 0, "NaN against NaN passes with --equal-nan"},
        {0, 0, 3, 1, "NaN against a number fails even with --equal-nan"},
        {0, 0, 4, 1, "a number against NaN fails even with --equal-nan"},
        {1e30, 1e30 * (1 + 1e-3), 0, 1, "a large relative error fails"},
    };
    size_t c;
    snprintf(a, sizeof a, "%s/cmp_a.safetensors", tmpdir);
    snprintf(b, sizeof b, "%s/cmp_b.safetensors", tmpdir);
    for (c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memcpy(x, one, sizeof x);
        memcpy(y, one, sizeof y);
        x[1] = cases[c].a;
        y[1] = cases[c].b;
        if (cases[c].extra_flag == 1 || cases[c].extra_flag == 2) x[1] = y[1] = nan;
        if (cases[c].extra_flag == 3) x[1] = nan;
        if (cases[c].extra_flag == 4) y[1] = nan;
        (void)inf;
        write_vec(a, 0, "y", x, 3, NULL, NULL, 0);
        write_vec(b, 0, "y", y, 3, NULL, NULL, 0);
        snprintf(args, sizeof args, "compare %s %s%s", a, b, cases[c].extra_flag == 2 || cases[c].extra_flag >= 3 ? " --equal-nan" : "");
        CHECK(run(args, NULL) == cases[c].expect, "compare: %s", cases[c].what);
        snprintf(args, sizeof args, "compare %s %s --json%s", a, b, cases[c].extra_flag == 2 || cases[c].extra_flag >= 3 ? " --equal-nan" : "");
        CHECK(run(args, NULL) == cases[c].expect, "compare --json: %s", cases[c].what);
    }
    /* F64 values beyond float range are compared as they are */
    memcpy(x, one, sizeof x);
    memcpy(y, one, sizeof y);
    x[0] = 1e300; y[0] = 2e300;
    write_vec(a, 1, "y", x, 3, NULL, NULL, 0);
    write_vec(b, 1, "y", y, 3, NULL, NULL, 0);
    snprintf(args, sizeof args, "compare %s %s", a, b);
    CHECK(run(args, NULL) == 1, "compare: F64 1e300 against 2e300 fails (not inf == inf)");
    y[0] = 1e300;
    write_vec(b, 1, "y", y, 3, NULL, NULL, 0);
    CHECK(run(args, NULL) == 0, "compare: F64 1e300 against itself passes");
    /* the JSON reports the non-finite counts and stays valid JSON (no bare inf/nan) */
    memcpy(x, one, sizeof x);
    memcpy(y, one, sizeof y);
    x[0] = nan; y[2] = inf;
    write_vec(a, 0, "y", x, 3, NULL, NULL, 0);
    write_vec(b, 0, "y", y, 3, NULL, NULL, 0);
    snprintf(args, sizeof args, "compare %s %s --json", a, b);
    CHECK(run(args, NULL) == 1, "compare --json with NaN and Inf fails");
    {
        char path[400], buf[4096];
        FILE *f;
        size_t n;
        snprintf(path, sizeof path, "%s/stdout.txt", tmpdir);
        f = fopen(path, "r");
        n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        buf[n] = 0;
        if (f) fclose(f);
        CHECK(strstr(buf, "\"nan_a\":1") && strstr(buf, "\"inf_b\":1"), "compare --json counts NaN and Inf: %s", buf);
        CHECK(!strstr(buf, ":nan") && !strstr(buf, ":-nan") && !strstr(buf, ":inf") && !strstr(buf, ":-inf"),
              "compare --json writes no bare nan/inf: %s", buf);
    }
    /* --metric fla: rms(a - b) / rms(a); a = (3, 4, 0), b = (3, 4, 0.5): 0.5 / 5 = 0.1 */
    {
        char path[400], buf[4096];
        FILE *f;
        size_t n;
        x[0] = 3; x[1] = 4; x[2] = 0;
        y[0] = 3; y[1] = 4; y[2] = 0.5;
        write_vec(a, 0, "y", x, 3, NULL, NULL, 0);
        write_vec(b, 0, "y", y, 3, NULL, NULL, 0);
        snprintf(args, sizeof args, "compare %s %s --metric fla --ratio 0.11", a, b);
        CHECK(run(args, NULL) == 0, "compare --metric fla: ratio 0.1 passes under 0.11 (elements would fail)");
        snprintf(args, sizeof args, "compare %s %s --metric fla --ratio 0.09", a, b);
        CHECK(run(args, NULL) == 1, "compare --metric fla: ratio 0.1 fails under 0.09");
        snprintf(args, sizeof args, "compare %s %s --metric fla --ratio 0.5 --json", a, b);
        CHECK(run(args, NULL) == 0, "compare --metric fla --json");
        snprintf(path, sizeof path, "%s/stdout.txt", tmpdir);
        f = fopen(path, "r");
        n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        buf[n] = 0;
        if (f) fclose(f);
        CHECK(strstr(buf, "\"rms_ratio\":0.1,") && strstr(buf, "\"metric\":\"fla\""), "rms ratio in the JSON: %s", buf);
        snprintf(args, sizeof args, "compare %s %s --metric l2", a, b);
        CHECK(run(args, "--metric 'l2'") == 2, "compare --metric with an unknown name is a usage error");
        x[1] = nan; y[1] = nan;
        write_vec(a, 0, "y", x, 3, NULL, NULL, 0);
        write_vec(b, 0, "y", y, 3, NULL, NULL, 0);
        snprintf(args, sizeof args, "compare %s %s --metric fla --ratio 1", a, b);
        CHECK(run(args, NULL) == 1, "compare --metric fla: NaN against NaN still fails without --equal-nan");
    }
    /* missing on either side, nothing compared */
    write_vec(a, 0, "y", one, 3, NULL, NULL, 0);
    write_vec(b, 0, "y", one, 3, "extra", one, 2);
    snprintf(args, sizeof args, "compare %s %s", a, b);
    CHECK(run(args, NULL) == 1, "compare: a tensor only in B fails");
    snprintf(args, sizeof args, "compare %s %s --ignore-extra", a, b);
    CHECK(run(args, NULL) == 0, "compare: a tensor only in B passes with --ignore-extra");
    snprintf(args, sizeof args, "compare %s %s", b, a);
    CHECK(run(args, NULL) == 1, "compare: a tensor missing in B fails");
    write_vec(a, 0, NULL, NULL, 0, NULL, NULL, 0);
    snprintf(args, sizeof args, "compare %s %s", a, a);
    CHECK(run(args, "nothing compared") == 1, "compare: nothing compared fails");
    snprintf(args, sizeof args, "compare %s %s --only ''", b, b);
    CHECK(run(args, "nothing compared") == 1, "compare: an empty --only list compares nothing and fails");
}

int main(void) {
    char a[300], b[300], c[300], args[1200];
    lc_st_file *f;
    lc_error err;
    bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    snprintf(tmpdir, sizeof tmpdir, "%s", "build/tmp_ref_cli");
    {
        char mk[300];
        snprintf(mk, sizeof mk, "mkdir -p %s", tmpdir);
        if (system(mk) != 0) { printf("FAIL: cannot create %s\n0 passed, 1 failed\n", tmpdir); return 1; }
    }
    if (run("--version", NULL) != 0) {
        printf("FAIL: %s does not run (build it with make)\n0 passed, 1 failed\n", bin);
        return 1;
    }
    lc_rng_seed(&rng, 99);
    q = randn((size_t)B * H * N * D); k = randn((size_t)B * HK * N * D); v = randn((size_t)B * HK * N * D);
    wq = randn((size_t)H * D * FD); wk = randn((size_t)H * D * FD); wf = randn(H); dy = randn((size_t)B * H * N * D);

    snprintf(a, sizeof a, "%s/case.safetensors", tmpdir);
    snprintf(b, sizeof b, "%s/out.safetensors", tmpdir);
    snprintf(c, sizeof c, "%s/out_scalar.safetensors", tmpdir);
    write_case(a, "hybrid_attention", 0, 0, "variant", "sw");
    snprintf(args, sizeof args, "ref %s %s --weights", a, b);
    CHECK(run(args, NULL) == 0, "ref on a good hybrid case exits 0");
    snprintf(args, sizeof args, "ref %s %s --scalar --weights", a, c);
    CHECK(run(args, NULL) == 0, "ref --scalar exits 0");
    /* without --weights: no attention weights, every other output the same bits */
    {
        char d[300];
        lc_st_file *fw, *fn;
        snprintf(d, sizeof d, "%s/out_noweights.safetensors", tmpdir);
        snprintf(args, sizeof args, "ref %s %s", a, d);
        CHECK(run(args, NULL) == 0, "ref without --weights exits 0");
        if (CHECK(lc_st_open(&fw, b, &err) == LOLCATS_OK, "%s", err.msg)) {
            if (CHECK(lc_st_open(&fn, d, &err) == LOLCATS_OK, "%s", err.msg)) {
                int i, same = 1;
                CHECK(lc_st_find(fn, "a") == NULL, "ref without --weights writes no 'a'");
                CHECK(lc_st_count(fn) + 1 == lc_st_count(fw), "--weights adds exactly 'a' (%d vs %d tensors)",
                      lc_st_count(fn), lc_st_count(fw));
                for (i = 0; i < lc_st_count(fn); i++) {
                    const lc_tensor *x = lc_st_tensor_at(fn, i), *y = lc_st_find(fw, x->name);
                    same &= y && y->nbytes == x->nbytes && !memcmp(x->data, y->data, x->nbytes);
                }
                CHECK(same, "outputs with and without --weights are bit-identical");
                lc_st_close(fn);
            }
            lc_st_close(fw);
        }
    }
    /* output names and values match the in-process evaluation */
    if (CHECK(lc_st_open(&f, b, &err) == LOLCATS_OK, "open %s: %s", b, err.msg)) {
        static const char *want[] = {"y", "a", "dq", "dk", "dv", "d_feature_map_q.weight",
                                     "d_feature_map_k.weight", "d_window_factors"};
        lc_st_file *in;
        lc_ref_case rc;
        lc_ref_out o;
        lc_ctx ctx;
        float *owned, *got;
        int i;
        for (i = 0; i < 8; i++) CHECK(lc_st_find(f, want[i]) != NULL, "ref output lacks %s", want[i]);
        CHECK(lc_st_find(f, "d_kv_state") == NULL, "no state gradient without a state");
        lc_ctx_init(&ctx);
        if (lc_st_open(&in, a, &err) == LOLCATS_OK && lc_ref_case_from_st(in, &rc, &owned, &err) == LOLCATS_OK &&
            lc_ref_eval(&ctx, &rc, &o, &err) == LOLCATS_OK) {
            const lc_tensor *t = lc_st_find(f, "dq");
            got = (float *)malloc(t->nbytes);
            lc_tensor_to_f32(t, got, &err);
            check_close("binary dq == in-process dq", got, o.dq, (size_t)B * H * N * D, 0, 0);
            free(got);
            CHECK(rc.hybrid.variant == LOLCATS_WINDOW_SW && rc.hybrid.window == 8, "metadata parsed");
            lc_ref_out_free(&o);
            lc_free(owned);
            lc_st_close(in);
        } else {
            CHECK(0, "in-process ref: %s", err.msg);
        }
        lc_st_close(f);
    }
    /* compare: SIMD vs scalar passes at the documented tolerance; a file vs itself passes */
    snprintf(args, sizeof args, "compare %s %s --rtol 1e-4 --atol 1e-5", c, b);
    CHECK(run(args, NULL) == 0, "compare SIMD vs scalar output passes");
    snprintf(args, sizeof args, "compare %s %s", a, a);
    CHECK(run(args, NULL) == 0, "compare a file with itself passes");
    /* a perturbed tensor fails */
    {
        char p[300];
        snprintf(p, sizeof p, "%s/perturbed.safetensors", tmpdir);
        dy[5] += 0.5f;
        write_case(p, "hybrid_attention", 0, 0, "variant", "sw");
        dy[5] -= 0.5f;
        snprintf(args, sizeof args, "compare %s %s", a, p);
        CHECK(run(args, NULL) == 1, "compare fails (exit 1) on a perturbed tensor");
    }
    /* bad inputs */
    write_case(a, "flash_attention", 0, 0, NULL, NULL);
    snprintf(args, sizeof args, "ref %s %s", a, b);
    CHECK(run(args, "unknown op 'flash_attention'") != 0, "unknown op exits non-zero");
    write_case(a, "hybrid_attention", 2, 0, NULL, NULL);
    CHECK(run(args, "missing tensor 'v'") != 0, "missing tensor exits non-zero");
    write_case(a, "hybrid_attention", 0, 1, NULL, NULL);
    CHECK(run(args, "feature_map_k.weight") != 0, "mis-shaped tensor exits non-zero");
    write_case(a, "hybrid_attention", 0, 0, "feature_map", "cosine");
    CHECK(run(args, "unknown feature_map 'cosine'") != 0, "unknown feature map exits non-zero");
    write_case(a, "hybrid_attention", 0, 0, "variant", "xl");
    CHECK(run(args, "unknown variant") != 0, "unknown variant exits non-zero");
    write_case(a, "hybrid_attention", 0, 0, "halfspace", "maybe");
    CHECK(run(args, "halfspace") != 0, "bad integer metadata exits non-zero");
    snprintf(args, sizeof args, "ref %s/does_not_exist.safetensors %s", tmpdir, b);
    CHECK(run(args, "does_not_exist") != 0, "missing input file exits non-zero");
    CHECK(run("ref", "usage") == 2, "no arguments: usage, exit 2");
    CHECK(run("ref --help", NULL) == 0, "--help exits 0");
    compare_semantics();
    free(q); free(k); free(v); free(wq); free(wk); free(wf); free(dy);
    return check_done();
}
