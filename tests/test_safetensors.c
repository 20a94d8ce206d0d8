/* test_safetensors.c - JSON parser, safetensors read / write / validation,
   bf16 and f16 conversions. Runs from the repository root; scratch files go
   under build/. */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"

#include <string.h>
#include <time.h>

#define TMPDIR "build/"

static int write_file(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    int ok;
    if (!f) return 0;
    ok = fwrite(buf, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* ------------------------------------------------------------------ JSON */

static lc_status parse(lc__json *doc, const char *text, lc_error *err) {
    return lc__json_parse(doc, text, strlen(text), "test.json", err);
}

static void test_json_ok(void) {
    lc__json doc;
    lc_error err;
    const lc__json_node *r, *a, *c, *x;
    const char *text = "{\"a\": [1, 2, {\"b\": null}], \"c\": \"x\\u00e9\\ud83d\\ude00\\n\\t\\\"\\\\\\/\","
                       " \"t\": true, \"f\": false, \"e\": {}, \"ea\": [], \"utf\": \"\xc3\xa9\xe2\x82\xac\"}";
    lc_status st = parse(&doc, text, &err);
    CHECK(st == LOLCATS_OK, "json parse ok: %s", err.msg);
    if (st) return;
    r = lc__json_root(&doc);
    CHECK(r->type == LC__JSON_OBJECT && r->count == 7, "root object of 7 members (count %u)", r->count);
    a = lc__json_get(&doc, r, "a");
    CHECK(a && a->type == LC__JSON_ARRAY && a->count == 3, "a is an array of 3");
    x = lc__json_at(&doc, a, 1);
    CHECK(x && x->type == LC__JSON_NUMBER && x->is_int && x->i64 == 2, "a[1] == 2");
    x = lc__json_at(&doc, a, 2);
    CHECK(x && x->type == LC__JSON_OBJECT && lc__json_get(&doc, x, "b") &&
          lc__json_get(&doc, x, "b")->type == LC__JSON_NULL, "a[2].b is null");
    CHECK(lc__json_at(&doc, a, 3) == NULL, "a[3] out of range");
    c = lc__json_get(&doc, r, "c");
    CHECK(c && c->type == LC__JSON_STRING &&
          !strcmp(c->str, "x\xc3\xa9\xf0\x9f\x98\x80\n\t\"\\/") && c->len == 12,
          "escapes and surrogate pair decoded to UTF-8 (got len %lu)", c ? (unsigned long)c->len : 0ul);
    CHECK(lc__json_get(&doc, r, "t")->type == LC__JSON_TRUE && lc__json_get(&doc, r, "f")->type == LC__JSON_FALSE,
          "true/false");
    CHECK(lc__json_get(&doc, r, "e")->count == 0 && lc__json_first(&doc, lc__json_get(&doc, r, "e")) == NULL,
          "empty object");
    CHECK(lc__json_get(&doc, r, "ea")->type == LC__JSON_ARRAY && lc__json_get(&doc, r, "ea")->count == 0, "empty array");
    CHECK(!strcmp(lc__json_str(lc__json_get(&doc, r, "utf"), ""), "\xc3\xa9\xe2\x82\xac"), "raw UTF-8 kept");
    CHECK(lc__json_get(&doc, r, "zz") == NULL && lc__json_get(&doc, a, "a") == NULL, "missing key / not an object");
    /* iteration visits members in order */
    {
        const char *keys[] = {"a", "c", "t", "f", "e", "ea", "utf"};
        int i = 0, ok = 1;
        for (x = lc__json_first(&doc, r); x; x = lc__json_next(&doc, r, x), i++)
            if (i < 7 && strcmp(x->key, keys[i])) ok = 0;
        CHECK(ok && i == 7, "iteration order, %d members", i);
    }
    lc__json_free(&doc);

    st = parse(&doc, " [0, -0, 1.5, -2.25e-3, 1E2, 123456789012345678, -9223372036854775808, "
                     "18446744073709551616, 1e-400] ", &err);
    CHECK(st == LOLCATS_OK, "numbers parse: %s", err.msg);
    if (!st) {
        const lc__json_node *arr = lc__json_root(&doc);
        const lc__json_node *n0 = lc__json_at(&doc, arr, 0), *n1 = lc__json_at(&doc, arr, 1);
        CHECK(n0->is_int && n0->i64 == 0 && n1->is_int && n1->num == 0.0, "0 and -0");
        CHECK(lc__json_at(&doc, arr, 2)->num == 1.5 && !lc__json_at(&doc, arr, 2)->is_int, "1.5");
        CHECK(lc__json_at(&doc, arr, 3)->num == -2.25e-3, "-2.25e-3");
        CHECK(lc__json_at(&doc, arr, 4)->num == 100.0 && !lc__json_at(&doc, arr, 4)->is_int, "1E2 is a double");
        CHECK(lc__json_at(&doc, arr, 5)->is_int && lc__json_at(&doc, arr, 5)->i64 == 123456789012345678LL,
              "exact int64");
        CHECK(lc__json_at(&doc, arr, 6)->is_int && lc__json_at(&doc, arr, 6)->i64 == INT64_MIN, "INT64_MIN");
        CHECK(!lc__json_at(&doc, arr, 7)->is_int && lc__json_at(&doc, arr, 7)->num == 18446744073709551616.0,
              "2^64 falls back to double");
        CHECK(lc__json_at(&doc, arr, 8)->num == 0.0, "underflow to 0");
    }
    lc__json_free(&doc);

    {   /* nesting up to the limit */
        char deep[2 * LC__JSON_MAX_DEPTH + 1];
        int i;
        for (i = 0; i < LC__JSON_MAX_DEPTH; i++) { deep[i] = '['; deep[2 * LC__JSON_MAX_DEPTH - 1 - i] = ']'; }
        deep[2 * LC__JSON_MAX_DEPTH] = 0;
        st = parse(&doc, deep, &err);
        CHECK(st == LOLCATS_OK && doc.n == LC__JSON_MAX_DEPTH, "nesting %d deep ok", LC__JSON_MAX_DEPTH);
        lc__json_free(&doc);
    }
}

static void json_bad(const char *text, size_t len, const char *expect) {
    lc__json doc;
    lc_error err;
    lc_status st;
    memset(&err, 0, sizeof err);
    st = lc__json_parse(&doc, text, len, "test.json", &err);
    CHECK(st == LOLCATS_ERR_FORMAT && strstr(err.msg, "test.json") && strstr(err.msg, expect),
          "bad JSON %.40s: expected error with \"%s\", got %d \"%s\"", text, expect, (int)st, err.msg);
    CHECK(doc.nodes == NULL && doc.strings == NULL, "doc empty after error");
    lc__json_free(&doc);
}

static void test_json_errors(void) {
    char deep[2 * LC__JSON_MAX_DEPTH + 3];
    int i;
#define JB(s, e) json_bad(s, sizeof(s) - 1, e)
    JB("{\n  \"a\": 1,\n}", "line 3, column 1");
    JB("[1,\n 2,\n   x]", "line 3, column 4");
    JB("", "line 1, column 1");
    JB("[01]", "leading zero");
    JB("[1.]", "digit");
    JB("[-]", "digit");
    JB("[1e]", "exponent");
    JB("[\"\\ud800\"]", "surrogate");
    JB("[\"\\ud800\\u0041\"]", "surrogate");
    JB("[\"\\udc00\"]", "surrogate");
    JB("[\"\\u12g4\"]", "hex");
    JB("[\"\\x\"]", "escape");
    JB("[\"a\nb\"]", "control");
    JB("[\"\xff\"]", "UTF-8");
    JB("[\"\xc0\xaf\"]", "UTF-8");           /* overlong */
    JB("[\"\xed\xa0\x80\"]", "UTF-8");       /* encoded surrogate */
    JB("[\"abc", "unterminated");
    JB("[1] x", "trailing");
    JB("nul", "value");
    JB("[NaN]", "value");
    JB("{\"a\" 1}", "':'");
    JB("{1:2}", "key");
    JB("[1 2]", "','");
    JB("[1e999]", "range");
    JB("\xef\xbb\xbf{}", "value");             /* BOM */
    json_bad("[1,\0 2]", 7, "byte 0x00");
#undef JB
    for (i = 0; i <= LC__JSON_MAX_DEPTH; i++) { deep[i] = '['; deep[2 * LC__JSON_MAX_DEPTH + 1 - i] = ']'; }
    deep[2 * LC__JSON_MAX_DEPTH + 2] = 0;
    json_bad(deep, strlen(deep), "nesting");
}

static void test_json_tokenizer(void) {
    const char *path = "../shared/models/alpaca-llama-25m/tokenizer.json";
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    lc__json doc;
    lc_error err;
    clock_t t0;
    if (!f) { printf("SKIPPED: %s absent (tokenizer.json parse)\n", path); return; }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (char *)malloc((size_t)n);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { fclose(f); free(buf); CHECK(0, "read %s", path); return; }
    fclose(f);
    t0 = clock();
    if (CHECK(lc__json_parse(&doc, buf, (size_t)n, path, &err) == LOLCATS_OK, "parse tokenizer.json: %s", err.msg)) {
        double ms = 1000.0 * (double)(clock() - t0) / CLOCKS_PER_SEC;
        const lc__json_node *model = lc__json_get(&doc, lc__json_root(&doc), "model");
        const lc__json_node *vocab = lc__json_get(&doc, model, "vocab");
        const lc__json_node *merges = lc__json_get(&doc, model, "merges");
        printf("  tokenizer.json: %ld bytes, %u nodes, vocab %u, merges %u, %.1f ms\n", n, doc.n,
               vocab ? vocab->count : 0, merges ? merges->count : 0, ms);
        CHECK(vocab && vocab->type == LC__JSON_OBJECT && vocab->count == 32000, "vocab has 32000 entries");
        CHECK(merges && merges->type == LC__JSON_ARRAY && merges->count > 1000, "merges present");
        lc__json_free(&doc);
    }
    free(buf);
}

/* ------------------------------------------------------------ conversions */

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static int isnan_f(float f) { return f != f; }

/* nearest f16 (ties to even) by binary search over the positive finite halves */
static uint16_t f16_ref(float x) {
    uint16_t sign = (uint16_t)(f2u(x) >> 31 << 15);
    double a = fabs((double)x);
    unsigned lo = 0, hi = 0x7BFF, mid;
    double dl, dh;
    if (a >= 65520.0) return (uint16_t)(sign | 0x7C00);
    while (hi - lo > 1) {                    /* value(lo) <= a < value(hi) */
        mid = (lo + hi) / 2;
        if ((double)lc_f16_to_f32((uint16_t)mid) <= a) lo = mid; else hi = mid;
    }
    if ((double)lc_f16_to_f32((uint16_t)hi) <= a) return (uint16_t)(sign | hi);
    dl = a - (double)lc_f16_to_f32((uint16_t)lo);
    dh = (double)lc_f16_to_f32((uint16_t)hi) - a;
    if (dl < dh || (dl == dh && !(lo & 1))) return (uint16_t)(sign | lo);
    return (uint16_t)(sign | hi);
}

static void test_conversions(void) {
    unsigned i;
    int bad_bf = 0, bad_f16 = 0, bad_ref = 0;
    {
        uint64_t s = 12345;
        /* every bf16 / f16 survives f32 and back (NaNs stay NaNs) */
        for (i = 0; i < 65536; i++) {
            float f = lc_bf16_to_f32((uint16_t)i);
            uint16_t back = lc_f32_to_bf16(f);
            if (isnan_f(f) ? !isnan_f(lc_bf16_to_f32(back)) : back != i) bad_bf++;
            f = lc_f16_to_f32((uint16_t)i);
            back = lc_f32_to_f16(f);
            if (isnan_f(f) ? !isnan_f(lc_f16_to_f32(back)) || (back & 0x8000) != (i & 0x8000) : back != i) bad_f16++;
        }
        CHECK(bad_bf == 0, "bf16 -> f32 -> bf16 identity (%d bad)", bad_bf);
        CHECK(bad_f16 == 0, "f16 -> f32 -> f16 identity (%d bad)", bad_f16);
        /* random floats in f16 range against a nearest-even search */
        for (i = 0; i < 200000; i++) {
            uint32_t u;
            float x;
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            u = (uint32_t)(s >> 32);
            u = (u & 0x80000000u) | (0x32000000u + (u & 0x7FFFFFFu) % (0x47900000u - 0x32000000u));
            x = u2f(u);
            if (lc_f32_to_f16(x) != f16_ref(x)) {
                if (bad_ref < 3) printf("  f16 mismatch x=%.9g (0x%08x): got 0x%04x want 0x%04x\n", (double)x, u,
                                        lc_f32_to_f16(x), f16_ref(x));
                bad_ref++;
            }
        }
        CHECK(bad_ref == 0, "f32 -> f16 matches nearest-even reference on 200000 values (%d bad)", bad_ref);
    }
    /* bf16 edges */
    CHECK(lc_f32_to_bf16(1.0f) == 0x3F80, "bf16(1)");
    CHECK(lc_f32_to_bf16(u2f(0x3F808000u)) == 0x3F80, "bf16 tie to even (down)");
    CHECK(lc_f32_to_bf16(u2f(0x3F818000u)) == 0x3F82, "bf16 tie to even (up)");
    CHECK(lc_f32_to_bf16(u2f(0x3F808001u)) == 0x3F81, "bf16 above half rounds up");
    CHECK(lc_f32_to_bf16(u2f(0x3F807FFFu)) == 0x3F80, "bf16 below half rounds down");
    CHECK(lc_f32_to_bf16(u2f(0x7F7FFFFFu)) == 0x7F80, "bf16 FLT_MAX rounds to inf");
    CHECK(lc_f32_to_bf16(u2f(0xFF800000u)) == 0xFF80, "bf16 -inf");
    CHECK(lc_f32_to_bf16(-0.0f) == 0x8000, "bf16 -0");
    CHECK(isnan_f(lc_bf16_to_f32(lc_f32_to_bf16(u2f(0x7F800001u)))), "bf16 signaling NaN stays NaN");
    CHECK(isnan_f(lc_bf16_to_f32(lc_f32_to_bf16(u2f(0xFFC00000u)))) && (lc_f32_to_bf16(u2f(0xFFC00000u)) & 0x8000),
          "bf16 -NaN keeps sign");
    CHECK(lc_f32_to_bf16(u2f(0x00000001u)) == 0x0000, "bf16 smallest subnormal rounds to 0");
    CHECK(lc_f32_to_bf16(u2f(0x00008000u)) == 0x0000 && lc_f32_to_bf16(u2f(0x00018000u)) == 0x0002,
          "bf16 subnormal ties to even");
    /* f16 edges */
    CHECK(lc_f32_to_f16(1.0f) == 0x3C00 && lc_f16_to_f32(0x3C00) == 1.0f, "f16(1)");
    CHECK(lc_f32_to_f16(65504.0f) == 0x7BFF && lc_f32_to_f16(65519.0f) == 0x7BFF, "f16 max");
    CHECK(lc_f32_to_f16(65520.0f) == 0x7C00 && lc_f32_to_f16(-1e10f) == 0xFC00, "f16 overflow to inf");
    CHECK(lc_f16_to_f32(0x0001) == u2f(0x33800000u) && lc_f32_to_f16(u2f(0x33800000u)) == 0x0001, "f16 2^-24");
    CHECK(lc_f32_to_f16(u2f(0x33000000u)) == 0x0000, "f16 2^-25 ties to 0");
    CHECK(lc_f32_to_f16(u2f(0x33000001u)) == 0x0001, "f16 just above 2^-25 rounds up");
    CHECK(lc_f32_to_f16(u2f(0x33C00000u)) == 0x0002, "f16 1.5 * 2^-24 ties to 2");
    CHECK(lc_f32_to_f16(u2f(0x34200000u)) == 0x0002, "f16 2.5 * 2^-24 ties to 2");
    CHECK(lc_f16_to_f32(0x03FF) == u2f(0x387FC000u), "f16 largest subnormal");
    CHECK(lc_f32_to_f16(u2f(0x387FF000u)) == 0x0400, "f16 rounds up into the smallest normal");
    CHECK(lc_f32_to_f16(1.0f + 1.0f / 2048) == 0x3C00 && lc_f32_to_f16(1.0f + 3.0f / 2048) == 0x3C02,
          "f16 ties to even at 1");
    CHECK(lc_f32_to_f16(-0.0f) == 0x8000 && lc_f32_to_f16(u2f(0x00000001u)) == 0x0000, "f16 -0, f32 subnormal");
    CHECK(isnan_f(lc_f16_to_f32(lc_f32_to_f16(u2f(0x7F800001u)))), "f16 signaling NaN stays NaN");
    CHECK(lc_f16_to_f32(0x7C00) > 3e38f && lc_f16_to_f32(0xFC00) < -3e38f, "f16 inf");
}

/* ------------------------------------------------------- write and read */

static lc_tensor mk(const char *name, lc_dtype dt, int ndim, const int64_t *shape, const void *data) {
    lc_tensor t;
    int i;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.dtype = dt;
    t.ndim = ndim;
    for (i = 0; i < ndim; i++) t.shape[i] = shape[i];
    t.nbytes = lc_tensor_numel(&t) * lc_dtype_size(dt);
    t.data = data;
    return t;
}

static void test_roundtrip(void) {
    const char *path = TMPDIR "test_st_roundtrip.safetensors";
    float a[6] = {1.0f, -2.5f, 3.25f, 0.0f, -0.0f, 1e-8f}, scalar = 42.0f, back[8];
    uint16_t h[4], bf[6];
    unsigned char u8[3] = {7, 0, 255};
    const int64_t sa[2] = {2, 3}, sh[1] = {4}, sbf[3] = {3, 1, 2}, s0[2] = {0, 5}, su8[1] = {3};
    lc_tensor ts[6];
    const char *meta[] = {"format", "pt", "quote\"key", "va\\l\n\x01 \xc3\xa9"};
    lc_st_file *f = NULL;
    lc_error err;
    const lc_tensor *t;
    lc_status st;
    int i;
    for (i = 0; i < 4; i++) h[i] = lc_f32_to_f16(a[i] * 3.0f);
    for (i = 0; i < 6; i++) bf[i] = lc_f32_to_bf16(a[i] + 0.125f);
    ts[0] = mk("alpha.weight", LOLCATS_DTYPE_F32, 2, sa, a);
    ts[1] = mk("half", LOLCATS_DTYPE_F16, 1, sh, h);
    ts[2] = mk("bytes", LOLCATS_DTYPE_U8, 1, su8, u8);     /* misaligns what follows */
    ts[3] = mk("brain \"float\"", LOLCATS_DTYPE_BF16, 3, sbf, bf);
    ts[4] = mk("scalar", LOLCATS_DTYPE_F32, 0, NULL, &scalar);
    ts[5] = mk("empty", LOLCATS_DTYPE_F32, 2, s0, NULL);

    st = lc_st_write(path, ts, 6, meta, 2, &err);
    CHECK(st == LOLCATS_OK, "write: %s", err.msg);
    {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
        CHECK(!file_exists(tmp), "temporary file renamed away");
    }
    st = lc_st_open(&f, path, &err);
    CHECK(st == LOLCATS_OK, "open written file: %s", err.msg);
    if (st) return;
    CHECK(lc_st_count(f) == 6, "6 tensors (%d)", lc_st_count(f));
    CHECK(!strcmp(lc_st_path(f), path), "path kept");
    for (i = 0; i < 6; i++) {
        t = lc_st_tensor_at(f, i);
        CHECK(t && !strcmp(t->name, ts[i].name), "file order [%d] %s", i, t ? t->name : "NULL");
        t = lc_st_find(f, ts[i].name);
        CHECK(t && t->dtype == ts[i].dtype && t->ndim == ts[i].ndim && t->nbytes == ts[i].nbytes &&
              (t->nbytes == 0 || !memcmp(t->data, ts[i].data, t->nbytes)) &&
              !memcmp(t->shape, ts[i].shape, sizeof t->shape), "find %s: same dtype, shape, bytes", ts[i].name);
    }
    CHECK(lc_st_tensor_at(f, 6) == NULL && lc_st_tensor_at(f, -1) == NULL, "tensor_at out of range");
    CHECK(lc_st_find(f, "nope") == NULL && lc_st_find(f, "alpha") == NULL, "find missing");
    CHECK(((uintptr_t)lc_st_find(f, "alpha.weight")->data & 7) == 0, "data area 8-byte aligned (mmap)");
    CHECK(lc_tensor_f32(lc_st_find(f, "alpha.weight")) == lc_st_find(f, "alpha.weight")->data, "f32 zero-copy view");
    CHECK(lc_tensor_f32(lc_st_find(f, "half")) == NULL, "no f32 view of f16");
    CHECK(lc_tensor_numel(lc_st_find(f, "scalar")) == 1 && lc_tensor_numel(lc_st_find(f, "empty")) == 0, "numel");
    CHECK(lc_tensor_f32(lc_st_find(f, "scalar")) == NULL, "no view of a misaligned f32");
    CHECK(lc_tensor_to_f32(lc_st_find(f, "scalar"), back, &err) == LOLCATS_OK && back[0] == 42.0f,
          "misaligned f32 converts");
    CHECK(lc_tensor_to_f32(lc_st_find(f, "half"), back, &err) == LOLCATS_OK && back[0] == 3.0f &&
          back[1] == -7.5f && back[2] == 9.75f, "f16 to f32");
    CHECK(lc_tensor_to_f32(lc_st_find(f, "brain \"float\""), back, &err) == LOLCATS_OK && back[0] == 1.125f &&
          back[1] == -2.375f && back[5] == lc_bf16_to_f32(lc_f32_to_bf16(1e-8f + 0.125f)), "bf16 to f32");
    CHECK(lc_tensor_to_f32(lc_st_find(f, "bytes"), back, &err) == LOLCATS_OK && back[2] == 255.0f, "u8 to f32");
    CHECK(lc_st_meta_count(f) == 2, "2 metadata entries");
    CHECK(lc_st_meta(f, "format") && !strcmp(lc_st_meta(f, "format"), "pt"), "meta format");
    CHECK(lc_st_meta(f, "quote\"key") && !strcmp(lc_st_meta(f, "quote\"key"), meta[3]), "meta escapes round trip");
    CHECK(lc_st_meta(f, "missing") == NULL, "meta missing");
    {
        const char *k, *v;
        lc_st_meta_at(f, 1, &k, &v);
        CHECK(k && v && !strcmp(k, meta[2]) && !strcmp(v, meta[3]), "meta_at(1)");
        lc_st_meta_at(f, 2, &k, &v);
        CHECK(!k && !v, "meta_at out of range");
    }
    /* the same bytes through the in-memory opener */
    {
        FILE *fp = fopen(path, "rb");
        static unsigned char buf[4096];
        size_t n = fp ? fread(buf, 1, sizeof buf, fp) : 0;
        lc_st_file *g = NULL;
        if (fp) fclose(fp);
        CHECK(n > 8 && (8 + (buf[0] | buf[1] << 8)) % 8 == 0, "header padded to 8 bytes");
        st = lc_st_open_memory(&g, buf, n, "mem", &err);
        CHECK(st == LOLCATS_OK && lc_st_count(g) == 6 && !strcmp(lc_st_path(g), "mem"), "open_memory: %s", err.msg);
        lc_st_close(g);
    }
    lc_st_close(f);
    lc_st_close(NULL);

    /* overwrite in place, and refusals that must leave the old file alone */
    st = lc_st_write(path, ts, 2, NULL, 0, &err);
    CHECK(st == LOLCATS_OK, "overwrite: %s", err.msg);
    {
        lc_tensor dup[2];
        dup[0] = ts[0];
        dup[1] = ts[1];
        dup[1].name = ts[0].name;
        st = lc_st_write(path, dup, 2, NULL, 0, &err);
        CHECK(st == LOLCATS_ERR_ARG && strstr(err.msg, "alpha.weight"), "write refuses duplicate names: %s", err.msg);
        dup[1] = ts[1];
        dup[1].nbytes = 6;
        st = lc_st_write(path, dup, 2, NULL, 0, &err);
        CHECK(st == LOLCATS_ERR_ARG && strstr(err.msg, "half"), "write refuses nbytes mismatch: %s", err.msg);
        st = lc_st_write("build/no/such/dir/x.safetensors", ts, 1, NULL, 0, &err);
        CHECK(st == LOLCATS_ERR_IO && strstr(err.msg, "x.safetensors"), "write into a missing directory: %s", err.msg);
    }
    st = lc_st_open(&f, path, &err);
    CHECK(st == LOLCATS_OK && lc_st_count(f) == 2 && lc_st_meta_count(f) == 0, "overwritten file has 2 tensors");
    lc_st_close(f);
    /* zero tensors */
    st = lc_st_write(path, NULL, 0, NULL, 0, &err);
    CHECK(st == LOLCATS_OK, "write empty: %s", err.msg);
    st = lc_st_open(&f, path, &err);
    CHECK(st == LOLCATS_OK && lc_st_count(f) == 0, "open empty: %s", err.msg);
    lc_st_close(f);
    remove(path);
}

/* ---------------------------------------------------------- bad files */

/* header JSON + ndata bytes of data; hlen_fix != 0 overrides the length field */
static lc_status open_case(const char *path, const char *header, size_t ndata, uint64_t hlen_fix,
                           size_t truncate_to, lc_error *err) {
    static unsigned char buf[1 << 16];
    size_t hl = strlen(header), n = 8 + hl + ndata, i;
    uint64_t L = hlen_fix ? hlen_fix : hl;
    lc_st_file *f = NULL;
    lc_status st;
    for (i = 0; i < 8; i++) buf[i] = (unsigned char)(L >> (8 * i));
    memcpy(buf + 8, header, hl);
    for (i = 0; i < ndata; i++) buf[8 + hl + i] = (unsigned char)i;
    if (truncate_to == (size_t)-2) n -= 2;
    else if (truncate_to) n = truncate_to;
    if (!write_file(path, buf, n)) return lc_error_set(err, LOLCATS_ERR_IO, "test could not write %s", path);
    memset(err, 0, sizeof *err);
    st = lc_st_open(&f, path, err);
    lc_st_close(f);
    /* the in-memory opener must agree */
    {
        lc_st_file *g = NULL;
        lc_error e2;
        lc_status st2 = lc_st_open_memory(&g, buf, n, path, &e2);
        CHECK(st2 == st && (st == LOLCATS_OK || !strcmp(e2.msg, err->msg)), "open_memory agrees on %s", path);
        lc_st_close(g);
    }
    return st;
}

static void bad_case(const char *label, const char *header, size_t ndata, uint64_t hlen_fix,
                     size_t truncate_to, const char *expect) {
    char path[128];
    lc_error err;
    lc_status st;
    snprintf(path, sizeof path, TMPDIR "test_st_bad_%s.safetensors", label);
    st = open_case(path, header, ndata, hlen_fix, truncate_to, &err);
    CHECK(st != LOLCATS_OK && strstr(err.msg, path) && strstr(err.msg, expect),
          "%s: want an error naming the file and \"%s\", got %d: %s", label, expect, (int)st, err.msg);
    printf("  %-16s %s\n", label, err.msg);
    remove(path);
}

#define T4 "\"dtype\":\"F32\",\"shape\":[1]"

static void test_bad_files(void) {
    lc_error err;
    lc_status st;
    lc_st_file *f = NULL;
    char path[128];

    bad_case("truncated", "{}", 0, 0, 5, "shorter than the 8-byte");
    bad_case("hlen_past_eof", "{}", 0, 1000, 0, "1000");
    bad_case("hlen_huge", "{}", 0, 0xFFFFFFFFFFFFFFF0ull, 0, "runs past the end");
    bad_case("not_object", "[1,2]   ", 0, 0, 0, "'{'");
    bad_case("bad_json", "{\"a\":{" T4 ",\"data_offsets\":[0,4]}", 4, 0, 0, "line 1, column");
    bad_case("trunc_header", "{\"a\":{" T4 ",\"data_offsets\":[0,4]}}", 4, 0, 20, "runs past the end");
    bad_case("trunc_data", "{\"a\":{" T4 ",\"data_offsets\":[0,4]}}", 4, 0, (size_t)-2, "past the");
    bad_case("unknown_dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0, 0, "\"F33\"");
    bad_case("dtype_number", "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0, 0, "dtype 4");
    bad_case("negative_shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, 0, 0, "-1");
    bad_case("float_shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,4]}}", 4, 0, 0, "2.5");
    bad_case("overflow_shape",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}",
             4, 0, 0, "overflow");
    bad_case("overflow_bytes",
             "{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]}}", 4, 0, 0, "overflow");
    bad_case("too_many_dims",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, 0, 0, "9 dim");
    bad_case("offsets_range", "{\"a\":{" T4 ",\"data_offsets\":[0,1000]}}", 4, 0, 0, "1000");
    bad_case("offsets_neg", "{\"a\":{" T4 ",\"data_offsets\":[-4,0]}}", 4, 0, 0, "-4");
    bad_case("offsets_order", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, 0, 0, "begin after end");
    bad_case("offsets_one", "{\"a\":{" T4 ",\"data_offsets\":[0]}}", 4, 0, 0, "[begin, end]");
    bad_case("no_offsets", "{\"a\":{" T4 "}}", 4, 0, 0, "(missing)");
    bad_case("no_shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, 0, 0, "shape");
    bad_case("entry_string", "{\"a\":\"F32\"}", 0, 0, 0, "'a'");
    bad_case("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, 0, 0, "overlap");
    bad_case("same_range", "{\"a\":{" T4 ",\"data_offsets\":[0,4]},\"b\":{" T4 ",\"data_offsets\":[0,4]}}", 4, 0, 0,
             "overlap");
    bad_case("length_mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0, 0, "needs 12");
    bad_case("duplicate", "{\"a\":{" T4 ",\"data_offsets\":[0,4]},\"a\":{" T4 ",\"data_offsets\":[4,8]}}", 8, 0, 0,
             "twice");
    bad_case("hole", "{\"a\":{" T4 ",\"data_offsets\":[0,4]},\"b\":{" T4 ",\"data_offsets\":[8,12]}}", 12, 0, 0, "hole");
    bad_case("trailing", "{\"a\":{" T4 ",\"data_offsets\":[0,4]}}", 8, 0, 0, "trailing");
    bad_case("meta_number", "{\"__metadata__\":{\"format\":\"pt\",\"step\":1}}", 0, 0, 0, "\"step\"");
    bad_case("meta_array", "{\"__metadata__\":[\"pt\"]}", 0, 0, 0, "an array");
    bad_case("meta_twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, 0, 0, "twice");
    bad_case("nul_name", "{\"a\\u0000b\":{" T4 ",\"data_offsets\":[0,4]}}", 4, 0, 0, "NUL");

    snprintf(path, sizeof path, TMPDIR "test_st_no_such_file.safetensors");
    st = lc_st_open(&f, path, &err);
    CHECK(st == LOLCATS_ERR_IO && f == NULL && strstr(err.msg, path), "missing file: %s", err.msg);
    st = lc_st_open_memory(&f, NULL, 0, "empty-mem", &err);
    CHECK(st == LOLCATS_ERR_FORMAT && strstr(err.msg, "empty-mem"), "empty buffer: %s", err.msg);

    /* accepted edge cases */
    snprintf(path, sizeof path, TMPDIR "test_st_edge.safetensors");
    st = open_case(path, "{}      ", 0, 0, 0, &err);
    CHECK(st == LOLCATS_OK, "empty header with padding: %s", err.msg);
    st = open_case(path, "{\"__metadata__\":null, \"z\":{\"dtype\":\"BF16\",\"shape\":[0,3],\"data_offsets\":[0,0]},"
                         "\"a\":{" T4 ",\"data_offsets\":[0,4]},\"x\":{" T4 ",\"data_offsets\":[4,8],\"extra\":1}}",
                   8, 0, 0, &err);
    CHECK(st == LOLCATS_OK, "null metadata, empty tensor, unknown key ignored: %s", err.msg);
    remove(path);
}

/* ------------------------------------------------------------ real model */

static void test_model(void) {
    const char *dir = "../shared/models/alpaca-llama-25m";
    char path[256];
    lc_st_file *f[3] = {NULL, NULL, NULL};
    lc_error err;
    int i, total = 0;
    snprintf(path, sizeof path, "%s/model-00001-of-00003.safetensors", dir);
    if (!file_exists(path)) { printf("SKIPPED: %s absent (real shards)\n", dir); return; }
    for (i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/model-%05d-of-00003.safetensors", dir, i + 1);
        if (!CHECK(lc_st_open(&f[i], path, &err) == LOLCATS_OK, "open shard %d: %s", i + 1, err.msg)) goto done;
        total += lc_st_count(f[i]);
        CHECK(lc_st_meta(f[i], "format") && !strcmp(lc_st_meta(f[i], "format"), "pt"), "shard %d format pt", i + 1);
    }
    {
        const lc_tensor *t = lc_st_find(f[0], "model.embed_tokens.weight");
        CHECK(t && t->dtype == LOLCATS_DTYPE_BF16 && t->ndim == 2 && t->shape[0] == 32000 && t->shape[1] == 384,
              "embed_tokens BF16 (32000,384)");
        t = lc_st_find(f[1], "model.layers.0.mlp.down_proj.weight");
        CHECK(t && t->dtype == LOLCATS_DTYPE_BF16 && t->shape[0] == 384 && t->shape[1] == 1024,
              "layers.0.mlp.down_proj (384,1024)");
        t = lc_st_find(f[1], "model.layers.0.input_layernorm.weight");
        if (CHECK(t && t->ndim == 1 && t->shape[0] == 384, "layers.0.input_layernorm (384)")) {
            float w[384];
            int j, finite = 1;
            double s = 0;
            CHECK(lc_tensor_to_f32(t, w, &err) == LOLCATS_OK, "convert layernorm");
            for (j = 0; j < 384; j++) { finite &= w[j] == w[j] && fabs((double)w[j]) < 1e3; s += fabs((double)w[j]); }
            CHECK(finite && s > 1.0, "layernorm weights finite, not zero (sum |w| %.2f)", s);
        }
        t = lc_st_find(f[1], "model.layers.0.self_attn.k_proj.weight");
        CHECK(t && t->shape[0] == 128 && t->shape[1] == 384, "k_proj (128,384): 2 kv heads of 64");
    }
    /* every entry of the index is in the shard it names */
    {
        FILE *fp;
        static char buf[1 << 16];
        size_t n;
        lc__json doc;
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        fp = fopen(path, "rb");
        n = fp ? fread(buf, 1, sizeof buf, fp) : 0;
        if (fp) fclose(fp);
        if (CHECK(lc__json_parse(&doc, buf, n, path, &err) == LOLCATS_OK, "index.json: %s", err.msg)) {
            const lc__json_node *wm = lc__json_get(&doc, lc__json_root(&doc), "weight_map"), *e;
            int found = 0, entries = 0;
            for (e = lc__json_first(&doc, wm); e; e = lc__json_next(&doc, wm, e)) {
                int s = e->type == LC__JSON_STRING && strstr(e->str, "model-0000") ? e->str[10] - '1' : -1;
                entries++;
                if (s >= 0 && s < 3 && lc_st_find(f[s], e->key)) found++;
            }
            CHECK(entries == total && found == entries, "index: %d entries, %d found, %d tensors in shards",
                  entries, found, total);
            lc__json_free(&doc);
        }
    }
done:
    for (i = 0; i < 3; i++) lc_st_close(f[i]);
}

int main(void) {
    (void)check_close;
    test_json_ok();
    test_json_errors();
    test_json_tokenizer();
    test_conversions();
    test_roundtrip();
    test_bad_files();
    test_model();
    return check_done();
}
