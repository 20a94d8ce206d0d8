/* test_gguf.c - the GGUF reader (header, metadata of every type, tensor
   infos, alignment; every malformed file refused with a message naming the
   file and the field) and the block types (dequantization of hand-built
   blocks with known values, quantization round trips). */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "gguf_build.h"

#include <string.h>

#define NAME "t.gguf"

static lc_status open_buf(lc_gguf_file **f, const gb_buf *b, lc_error *err) {
    memset(err, 0, sizeof *err);
    return lc_gguf_open_memory(f, b->p, b->n, NAME, err);
}

/* A valid file: one metadata entry of each type, arrays, two tensors. */
static void build_valid(gb_buf *b, uint32_t version, int with_align) {
    uint64_t ne1[2] = {32, 3}, ne2[1] = {4};
    size_t i;
    gb_header(b, version, 2, 15 + (with_align ? 1 : 0));
    gb_kv_str(b, "general.architecture", "llama");
    gb_key(b, "k.u8", 0); gb_u8(b, 200);
    gb_key(b, "k.i8", 1); gb_u8(b, 0xF6);          /* -10 */
    gb_key(b, "k.u16", 2); gb_le(b, 60000, 2);
    gb_key(b, "k.i16", 3); gb_le(b, 0xFFFE, 2);    /* -2 */
    gb_kv_u32(b, "llama.block_count", 7);
    gb_key(b, "k.i32", 5); gb_u32(b, 0xFFFFFFFFu);  /* -1 */
    gb_kv_f32(b, "llama.rope.freq_base", 10000.0f);
    gb_key(b, "k.bool", 7); gb_u8(b, 1);
    gb_key(b, "k.u64", 10); gb_u64(b, 1ull << 40);
    gb_key(b, "k.i64", 11); gb_u64(b, (uint64_t)-5);
    gb_key(b, "k.f64", 12); { double d = 0.125; uint64_t u; memcpy(&u, &d, 8); gb_u64(b, u); }
    gb_key(b, "tokenizer.ggml.tokens", 9); gb_u32(b, 8); gb_u64(b, 3);
    gb_str(b, "<s>"); gb_str(b, ""); gb_str(b, "hello");
    gb_key(b, "tokenizer.ggml.scores", 9); gb_u32(b, 6); gb_u64(b, 3);
    gb_f32(b, 0.0f); gb_f32(b, -1.5f); gb_f32(b, 2.0f);
    gb_key(b, "tokenizer.ggml.token_type", 9); gb_u32(b, 5); gb_u64(b, 3);
    gb_u32(b, 3); gb_u32(b, 1); gb_u32(b, 6);
    if (with_align) gb_kv_u32(b, "general.alignment", 64);
    gb_tinfo(b, "blk.0.attn_q.weight", 2, ne1, 8, 0);     /* Q8_0 (3, 32): 3 x 34 bytes */
    gb_tinfo(b, "output_norm.weight", 1, ne2, 0, 128);
    gb_align(b, with_align ? 64 : 32);
    for (i = 0; i < 3; i++) {
        int l;
        gb_le(b, 0x3800, 2);                               /* d = 0.5 */
        for (l = 0; l < 32; l++) gb_u8(b, (unsigned)(signed char)(l - 16 + (int)i) & 0xFF);
    }
}

static void test_valid(void) {
    gb_buf b = {0, 0, 0};
    lc_gguf_file *f = NULL;
    lc_error err;
    const lc_gguf_kv *kv;
    const lc_tensor *t;
    int64_t iv;
    double fv;
    const char *sv;
    size_t len, off;
    int align;
    for (align = 0; align < 2; align++) {
        b.n = 0;
        build_valid(&b, align ? 2 : 3, align);
        /* open once with a long tail to learn where the data area starts, then
           put the F32 tensor at data + 128 and cut the file right after it */
        off = b.n;
        while (b.n < off + 512) gb_u8(&b, 0);
        CHECK(open_buf(&f, &b, &err) == LOLCATS_OK, "valid file with a tail opens: %s", err.msg);
        if (f) {
            size_t d0 = lc_gguf_data_offset(f);
            float v[4] = {1.0f, -2.0f, 0.5f, 3.0f};
            memcpy(b.p + d0 + 128, v, sizeof v);
            b.n = d0 + 128 + sizeof v;
            lc_gguf_close(f);
            f = NULL;
        }
        if (!CHECK(open_buf(&f, &b, &err) == LOLCATS_OK, "valid file (v%d) opens: %s", align ? 2 : 3, err.msg)) continue;
        CHECK(lc_gguf_version(f) == (align ? 2 : 3), "version");
        CHECK(lc_gguf_alignment(f) == (size_t)(align ? 64 : 32), "alignment %lu", (unsigned long)lc_gguf_alignment(f));
        CHECK(lc_gguf_data_offset(f) % lc_gguf_alignment(f) == 0, "data area aligned");
        CHECK(lc_gguf_kv_count(f) == 15 + align, "kv count");
        CHECK(lc_gguf_get_str(f, "general.architecture", &sv, &err) == LOLCATS_OK && !strcmp(sv, "llama"), "arch string");
        CHECK(lc_gguf_get_int(f, "llama.block_count", &iv, &err) == LOLCATS_OK && iv == 7, "u32");
        CHECK(lc_gguf_get_int(f, "k.u8", &iv, &err) == LOLCATS_OK && iv == 200, "u8");
        CHECK(lc_gguf_get_int(f, "k.i8", &iv, &err) == LOLCATS_OK && iv == -10, "i8");
        CHECK(lc_gguf_get_int(f, "k.u16", &iv, &err) == LOLCATS_OK && iv == 60000, "u16");
        CHECK(lc_gguf_get_int(f, "k.i16", &iv, &err) == LOLCATS_OK && iv == -2, "i16");
        CHECK(lc_gguf_get_int(f, "k.i32", &iv, &err) == LOLCATS_OK && iv == -1, "i32");
        CHECK(lc_gguf_get_int(f, "k.bool", &iv, &err) == LOLCATS_OK && iv == 1, "bool");
        CHECK(lc_gguf_get_int(f, "k.u64", &iv, &err) == LOLCATS_OK && iv == (1ll << 40), "u64");
        CHECK(lc_gguf_get_int(f, "k.i64", &iv, &err) == LOLCATS_OK && iv == -5, "i64");
        CHECK(lc_gguf_get_float(f, "k.f64", &fv, &err) == LOLCATS_OK && fv == 0.125, "f64");
        CHECK(lc_gguf_get_float(f, "llama.rope.freq_base", &fv, &err) == LOLCATS_OK && fv == 10000.0, "f32");
        kv = lc_gguf_find_kv(f, "tokenizer.ggml.tokens");
        CHECK(kv && kv->type == LOLCATS_GGUF_ARRAY && kv->elem_type == LOLCATS_GGUF_STRING && kv->n == 3, "string array");
        if (kv) {
            sv = lc_gguf_arr_str(kv, 2, &len);
            CHECK(sv && len == 5 && !memcmp(sv, "hello", 5), "string array element 2");
            sv = lc_gguf_arr_str(kv, 1, &len);
            CHECK(sv && len == 0, "empty string element");
            CHECK(lc_gguf_arr_str(kv, 3, &len) == NULL, "element past the end is NULL");
        }
        kv = lc_gguf_find_kv(f, "tokenizer.ggml.scores");
        CHECK(kv && lc_gguf_arr_float(kv, 1) == -1.5 && lc_gguf_arr_float(kv, 2) == 2.0, "f32 array");
        kv = lc_gguf_find_kv(f, "tokenizer.ggml.token_type");
        CHECK(kv && lc_gguf_arr_int(kv, 2) == 6, "i32 array");
        /* metadata of the wrong type: a clear error naming file and key */
        CHECK(lc_gguf_get_int(f, "general.architecture", &iv, &err) == LOLCATS_ERR_FORMAT &&
              strstr(err.msg, NAME) && strstr(err.msg, "general.architecture") && strstr(err.msg, "string"),
              "string read as int refused: %s", err.msg);
        CHECK(lc_gguf_get_str(f, "llama.block_count", &sv, &err) == LOLCATS_ERR_FORMAT && strstr(err.msg, "u32"),
              "u32 read as string refused: %s", err.msg);
        CHECK(lc_gguf_get_float(f, "tokenizer.ggml.scores", &fv, &err) == LOLCATS_ERR_FORMAT && strstr(err.msg, "array"),
              "array read as a scalar refused: %s", err.msg);
        CHECK(lc_gguf_get_int(f, "llama.nope", &iv, &err) == LOLCATS_ERR_FORMAT && strstr(err.msg, "missing"),
              "missing key: %s", err.msg);
        CHECK(lc_gguf_tensor_count(f) == 2, "tensor count");
        t = lc_gguf_find(f, "blk.0.attn_q.weight");
        CHECK(t && t->dtype == LOLCATS_DTYPE_Q8_0 && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 32 &&
              t->nbytes == 3 * 34, "Q8_0 tensor: PyTorch shape (3, 32), 102 bytes");
        if (t) {
            float y[96];
            CHECK(lc_tensor_to_f32(t, y, &err) == LOLCATS_OK, "to_f32 of Q8_0: %s", err.msg);
            CHECK(y[0] == -8.0f && y[31] == 7.5f && y[32] == -7.5f && y[95] == 8.5f, "Q8_0 values %g %g %g %g",
                  (double)y[0], (double)y[31], (double)y[32], (double)y[95]);
        }
        t = lc_gguf_find(f, "output_norm.weight");
        CHECK(t && t->dtype == LOLCATS_DTYPE_F32 && t->ndim == 1 && t->shape[0] == 4, "F32 vector");
        if (t) {
            const float *v = lc_tensor_f32(t);
            CHECK(v && v[1] == -2.0f && v[3] == 3.0f, "F32 data at its offset");
        }
        CHECK(lc_gguf_find(f, "nope") == NULL, "absent tensor");
        lc_gguf_close(f);
        f = NULL;
    }
    free(b.p);
}

/* A small valid file, then mutations: each must fail cleanly, naming the file and the field. */
static void expect_fail(const gb_buf *b, const char *needle, const char *what) {
    lc_gguf_file *f = NULL;
    lc_error err;
    lc_status st = open_buf(&f, b, &err);
    printf("  %-40s -> %s\n", what, err.msg);
    CHECK(st != LOLCATS_OK && f == NULL && strstr(err.msg, NAME) && (!needle || strstr(err.msg, needle)),
          "%s refused naming '%s': got %d: %s", what, needle ? needle : NAME, (int)st, err.msg);
    lc_gguf_close(f);
}

static void tiny(gb_buf *b, uint32_t ttype, uint64_t ne0, uint64_t off, const char *name2, uint64_t off2) {
    uint64_t ne[2] = {ne0, 2};
    b->n = 0;
    gb_header(b, 3, name2 ? 2 : 1, 1);
    gb_kv_str(b, "general.architecture", "llama");
    gb_tinfo(b, "w", 2, ne, ttype, off);
    if (name2) gb_tinfo(b, name2, 2, ne, ttype, off2);
    gb_align(b, 32);
    while (b->n < 1024) gb_u8(b, 0);
}

static void test_malformed(void) {
    gb_buf b = {0, 0, 0}, v = {0, 0, 0};
    size_t cut;
    lc_gguf_file *f = NULL;
    lc_error err;
    int bad_trunc = 0;
    uint64_t ne9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};   /* 9 dimensions: one past the limit */

    tiny(&b, 0, 32, 0, NULL, 0);
    CHECK(open_buf(&f, &b, &err) == LOLCATS_OK, "tiny file opens: %s", err.msg);
    lc_gguf_close(f); f = NULL;

    tiny(&b, 0, 32, 0, NULL, 0); memcpy(b.p, "GGML", 4); expect_fail(&b, "magic", "bad magic");
    tiny(&b, 0, 32, 0, NULL, 0); b.p[4] = 1; expect_fail(&b, "version 1", "version 1");
    tiny(&b, 0, 32, 0, NULL, 0); b.p[4] = 4; expect_fail(&b, "version 4", "version 4");
    tiny(&b, 0, 32, 0, NULL, 0); b.p[15] = 0x10; expect_fail(&b, "tensor count", "tensor count overflowing the file");
    tiny(&b, 0, 32, 0, NULL, 0); b.p[23] = 0x7F; expect_fail(&b, "metadata count", "metadata count overflowing the file");
    tiny(&b, 0, 32, 0, NULL, 0); b.p[24 + 8 + 20] = 13; expect_fail(&b, "general.architecture", "unknown value type");
    tiny(&b, 0, 32, 0, NULL, 0); b.p[24 + 8 + 20 + 4 + 7] = 0x40; expect_fail(&b, "general.architecture", "string length past the end");
    tiny(&b, 3, 32, 0, NULL, 0); expect_fail(&b, "Q4_1", "an unsupported tensor type (Q4_1)");
    tiny(&b, 99, 32, 0, NULL, 0); expect_fail(&b, "'w'", "an unknown tensor type");
    tiny(&b, 8, 48, 0, NULL, 0); expect_fail(&b, "block", "a Q8_0 row that is not whole blocks");
    tiny(&b, 0, 32, 16, NULL, 0); expect_fail(&b, "alignment", "an unaligned offset");
    tiny(&b, 0, 32, (uint64_t)-32, NULL, 0); expect_fail(&b, "'w'", "an overflowing offset");
    tiny(&b, 0, 32, 0, NULL, 0); b.n -= 1024 - 200; expect_fail(&b, "'w'", "truncated data");
    tiny(&b, 0, 32, 0, "w2", 128); expect_fail(&b, "overlap", "overlapping tensors");
    tiny(&b, 0, 32, 0, "w", 256); expect_fail(&b, "twice", "a duplicate tensor name");
    tiny(&b, 0, (uint64_t)1 << 62, 0, NULL, 0); expect_fail(&b, "'w'", "a huge dimension");
    {   /* a row too long for the address space in an empty tensor (found by fuzz_gguf) */
        uint64_t ne0[2] = {(uint64_t)1 << 62, 0};
        b.n = 0; gb_header(&b, 3, 1, 0); gb_tinfo(&b, "w", 2, ne0, 0, 0);
        while (b.n < 512) gb_u8(&b, 0);
        expect_fail(&b, "row length", "an overflowing row in an empty tensor");
    }
    /* duplicate key, alignment of the wrong type / not a power of two, arrays of arrays */
    b.n = 0; gb_header(&b, 3, 0, 2); gb_kv_str(&b, "a", "x"); gb_kv_str(&b, "a", "y");
    expect_fail(&b, "appears twice", "a duplicate key");
    b.n = 0; gb_header(&b, 3, 0, 1); gb_key(&b, "general.alignment", 10); gb_u64(&b, 32);
    expect_fail(&b, "general.alignment", "alignment of the wrong type");
    b.n = 0; gb_header(&b, 3, 0, 1); gb_kv_u32(&b, "general.alignment", 48);
    expect_fail(&b, "power of two", "alignment 48");
    b.n = 0; gb_header(&b, 3, 0, 1); gb_key(&b, "a", 9); gb_u32(&b, 9); gb_u64(&b, 1);
    gb_u32(&b, 4); gb_u64(&b, 1); gb_u32(&b, 0);
    expect_fail(&b, "array of arrays", "an array of arrays");
    b.n = 0; gb_header(&b, 3, 0, 1); gb_key(&b, "a", 9); gb_u32(&b, 6); gb_u64(&b, (uint64_t)1 << 61);
    expect_fail(&b, "'a'", "an array count past the end");
    b.n = 0; gb_header(&b, 3, 1, 0); gb_tinfo(&b, "w", 9, ne9, 0, 0);
    while (b.n < 512) gb_u8(&b, 0);
    expect_fail(&b, "dimensions", "9 dimensions");
    /* every truncation of a valid file fails cleanly (or, cut inside the
       padding after the last tensor, still describes a whole file) */
    build_valid(&v, 3, 1);
    while (v.n < 2048) gb_u8(&v, 0);
    for (cut = 0; cut < v.n; cut += 1) {
        gb_buf c = {v.p, cut, cut};
        lc_status st = open_buf(&f, &c, &err);
        if (st == LOLCATS_OK) {
            size_t end = 0;
            int i;
            for (i = 0; i < lc_gguf_tensor_count(f); i++) {
                const lc_tensor *t = lc_gguf_tensor_at(f, i);
                size_t e = (size_t)((const unsigned char *)t->data - v.p) + t->nbytes;
                if (e > end) end = e;
            }
            if (end > cut) bad_trunc++;
            lc_gguf_close(f); f = NULL;
        } else if (!strstr(err.msg, NAME)) bad_trunc++;
    }
    CHECK(bad_trunc == 0, "every truncation refused naming the file (%d bad)", bad_trunc);
    free(b.p);
    free(v.p);
}

/* f16 bits of a few exact values */
#define H_1 0x3C00u
#define H_HALF 0x3800u
#define H_2 0x4000u
#define H_QUARTER 0x3400u

static void put16(unsigned char *p, unsigned h) { p[0] = (unsigned char)(h & 0xFF); p[1] = (unsigned char)(h >> 8); }

/* The 12 scale bytes of Q4_K / Q5_K written from the format's description:
   bytes 0-3: scales 0-3 (low 6 bits) + top 2 bits of scales 4-7; bytes 4-7:
   mins 0-3 + top 2 bits of mins 4-7; bytes 8-11: low 4 bits of scale 4-7
   (low nibble) and of min 4-7 (high nibble). */
static void pack_k_scales(unsigned char *s, const int *sc, const int *mn) {
    int j;
    for (j = 0; j < 4; j++) {
        s[j] = (unsigned char)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = (unsigned char)((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
        s[j + 8] = (unsigned char)((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
    }
}

static void test_dequant(void) {
    unsigned char blk[256];
    float y[256], r[256];
    int i, s;
    static const int sc[8] = {1, 17, 33, 49, 63, 5, 60, 34}, mn[8] = {0, 20, 40, 63, 7, 50, 16, 48};

    CHECK(lc_dtype_block(LOLCATS_DTYPE_Q8_0) == 32 && lc_dtype_block_bytes(LOLCATS_DTYPE_Q8_0) == 34, "Q8_0 geometry");
    CHECK(lc_dtype_block(LOLCATS_DTYPE_Q4_0) == 32 && lc_dtype_block_bytes(LOLCATS_DTYPE_Q4_0) == 18, "Q4_0 geometry");
    CHECK(lc_dtype_block(LOLCATS_DTYPE_Q4_K) == 256 && lc_dtype_block_bytes(LOLCATS_DTYPE_Q4_K) == 144, "Q4_K geometry");
    CHECK(lc_dtype_block(LOLCATS_DTYPE_Q5_K) == 256 && lc_dtype_block_bytes(LOLCATS_DTYPE_Q5_K) == 176, "Q5_K geometry");
    CHECK(lc_dtype_block(LOLCATS_DTYPE_Q6_K) == 256 && lc_dtype_block_bytes(LOLCATS_DTYPE_Q6_K) == 210, "Q6_K geometry");
    CHECK(lc_dtype_block(LOLCATS_DTYPE_F32) == 1 && lc_dtype_row_bytes(LOLCATS_DTYPE_BF16, 10) == 20, "plain geometry");
    CHECK(lc_dtype_row_bytes(LOLCATS_DTYPE_Q4_K, 300) == 0 && lc_dtype_row_bytes(LOLCATS_DTYPE_Q4_K, 512) == 288, "row bytes");
    CHECK(lc_dtype_parse("Q8_0") == -1, "block types are not safetensors dtypes");

    /* Q8_0: d = 0.5, q = i - 16 */
    put16(blk, H_HALF);
    for (i = 0; i < 32; i++) { blk[2 + i] = (unsigned char)(signed char)(i - 16); r[i] = 0.5f * (float)(i - 16); }
    lc_dequant_row(y, blk, LOLCATS_DTYPE_Q8_0, 32);
    check_close("Q8_0 hand-built block", y, r, 32, 0, 0);
    /* Q4_0: d = 2, byte j = nibble j (weight j) | nibble 15-j (weight j+16) */
    put16(blk, H_2);
    for (i = 0; i < 16; i++) {
        blk[2 + i] = (unsigned char)(i | ((15 - i) << 4));
        r[i] = 2.0f * (float)(i - 8);
        r[i + 16] = 2.0f * (float)(15 - i - 8);
    }
    lc_dequant_row(y, blk, LOLCATS_DTYPE_Q4_0, 32);
    check_close("Q4_0 hand-built block", y, r, 32, 0, 0);
    /* Q4_K: d = 1, dmin = 0.5; weight 64c + l is the low nibble of byte 32c + l
       (sub-block 2c), weight 64c + 32 + l its high nibble (sub-block 2c + 1) */
    put16(blk, H_1); put16(blk + 2, H_HALF);
    pack_k_scales(blk + 4, sc, mn);
    for (i = 0; i < 128; i++) blk[16 + i] = (unsigned char)(((i * 7) & 15) | (((i * 3 + 5) & 15) << 4));
    for (i = 0; i < 256; i++) {
        int c = i / 64, l = i % 64, byte = 16 + 32 * c + (l % 32);
        int q = l < 32 ? blk[byte] & 15 : blk[byte] >> 4;
        s = i / 32;
        r[i] = 1.0f * (float)sc[s] * (float)q - 0.5f * (float)mn[s];
    }
    lc_dequant_row(y, blk, LOLCATS_DTYPE_Q4_K, 256);
    check_close("Q4_K hand-built block", y, r, 256, 0, 0);
    /* Q5_K: as Q4_K with qh[32] before the nibbles: bit s of qh[l] is the 5th bit of weight 32s + l */
    put16(blk, H_1); put16(blk + 2, H_QUARTER);
    pack_k_scales(blk + 4, sc, mn);
    for (i = 0; i < 32; i++) blk[16 + i] = (unsigned char)((i * 37 + 11) & 255);
    for (i = 0; i < 128; i++) blk[48 + i] = (unsigned char)(((i * 5) & 15) | (((i * 11 + 3) & 15) << 4));
    for (i = 0; i < 256; i++) {
        int c = i / 64, l = i % 64, byte = 48 + 32 * c + (l % 32);
        int q = l < 32 ? blk[byte] & 15 : blk[byte] >> 4;
        s = i / 32;
        q += ((blk[16 + i % 32] >> s) & 1) << 4;
        r[i] = (float)sc[s] * (float)q - 0.25f * (float)mn[s];
    }
    lc_dequant_row(y, blk, LOLCATS_DTYPE_Q5_K, 256);
    check_close("Q5_K hand-built block", y, r, 256, 0, 0);
    /* Q6_K: ql[128], qh[64], scales[16] (int8), d. Weight i = 128h + 32k + l
       (h half, k quarter, l < 32): low 4 bits from ql[64h + l + 32(k&1)]
       (low nibble for k < 2, high for k >= 2), high 2 bits from
       qh[32h + l] >> 2k, scale scales[8h + 2k + l/16]; x = d sc (q - 32). */
    for (i = 0; i < 128; i++) blk[i] = (unsigned char)((i * 29 + 7) & 255);
    for (i = 0; i < 64; i++) blk[128 + i] = (unsigned char)((i * 53 + 1) & 255);
    for (i = 0; i < 16; i++) blk[192 + i] = (unsigned char)(signed char)(i * 9 - 70);
    put16(blk + 208, H_QUARTER);
    for (i = 0; i < 256; i++) {
        int h = i / 128, k = (i % 128) / 32, l = i % 32;
        int lo = blk[64 * h + l + 32 * (k & 1)], q;
        q = (k < 2 ? lo & 15 : lo >> 4) | (((blk[128 + 32 * h + l] >> (2 * k)) & 3) << 4);
        r[i] = 0.25f * (float)(signed char)blk[192 + 8 * h + 2 * k + l / 16] * (float)(q - 32);
    }
    lc_dequant_row(y, blk, LOLCATS_DTYPE_Q6_K, 256);
    check_close("Q6_K hand-built block", y, r, 256, 0, 0);
}

/* Quantize random rows and read them back: errors within each type's step. */
static void test_roundtrip(void) {
    enum { N = 1024 };
    static float x[N], y[N];
    static unsigned char q[N * 4];
    lc_rng rng;
    int i, k;
    static const lc_dtype dts[] = {LOLCATS_DTYPE_F32, LOLCATS_DTYPE_F16, LOLCATS_DTYPE_BF16, LOLCATS_DTYPE_Q8_0,
                                   LOLCATS_DTYPE_Q4_0, LOLCATS_DTYPE_Q4_K};
    static const double tol[] = {0, 1e-3, 8e-3, 1.0 / 127, 1.0 / 7, 1.0 / 12};   /* of the block's absmax */
    lc_rng_seed(&rng, 7);
    for (i = 0; i < N; i++) x[i] = lc_rng_normal(&rng) * (i < 256 ? 0.01f : 1.0f) + (i >= 512 && i < 768 ? 0.5f : 0.0f);
    for (k = 0; k < 6; k++) {
        double worst = 0;
        int bs = lc_dtype_block(dts[k]) > 1 ? lc_dtype_block(dts[k]) : 32;
        CHECK(lc_quant_row(q, x, dts[k], N) == 0, "quantize %s", lc_dtype_name(dts[k]));
        lc_dequant_row(y, q, dts[k], N);
        for (i = 0; i < N; i += bs) {
            double amax = 0, e = 0;
            int l;
            for (l = 0; l < bs; l++) {
                if (fabs((double)x[i + l]) > amax) amax = fabs((double)x[i + l]);
                if (fabs((double)(y[i + l] - x[i + l])) > e) e = fabs((double)(y[i + l] - x[i + l]));
            }
            if (amax > 0 && e / amax > worst) worst = e / amax;
        }
        printf("  round trip %-5s worst error / block absmax %.4f (bound %.4f)\n", lc_dtype_name(dts[k]), worst, tol[k]);
        CHECK(worst <= tol[k] + 1e-6, "%s round trip error %.4f over %.4f", lc_dtype_name(dts[k]), worst, tol[k]);
    }
    CHECK(lc_quant_row(q, x, LOLCATS_DTYPE_Q6_K, N) == -1, "no Q6_K quantizer: -1");
    CHECK(lc_quant_row(q, x, LOLCATS_DTYPE_Q8_0, 33) == -1, "partial block refused");
}

/* Products with block-quantized weights (kept quantized) against the same
   products on the dequantized F32 matrix: lc_matmul (reference and SIMD),
   lc_gemv, lc_gemm forward (trans_b) and input-gradient (no trans_b). */
static void test_kernels(void) {
    enum { T = 9, O = 70, I = 512 };   /* T >= 8: lc_matmul's panel path; gemv: the streaming one */
    static const lc_dtype dts[] = {LOLCATS_DTYPE_Q8_0, LOLCATS_DTYPE_Q4_0, LOLCATS_DTYPE_Q4_K, LOLCATS_DTYPE_Q5_K,
                                   LOLCATS_DTYPE_Q6_K};
    static unsigned char wq[O * I * 2];
    static float wf[O * I], x[T * I], y[T * O], r[T * O], dx[T * I], rdx[T * I];
    lc_rng rng;
    lc_ctx cs, cf;
    int k, i, o, p;
    double amax, at;
    char what[96];
    lc_ctx_init(&cs);
    cs.simd = LOLCATS_SIMD_SCALAR;
    lc_ctx_init(&cf);
    lc_rng_seed(&rng, 3);
    for (i = 0; i < T * I; i++) x[i] = lc_rng_normal(&rng);
    for (k = 0; k < 5; k++) {
        size_t rb = lc_dtype_row_bytes(dts[k], I), bb = lc_dtype_block_bytes(dts[k]), b;
        for (i = 0; i < (int)(O * rb); i++) wq[i] = (unsigned char)(lc_rng_u64(&rng) & 255);
        /* sane f16 scales (random bytes would hold inf / NaN): 2^-8 .. 2^-5 */
        for (b = 0; b < O * rb / bb; b++) {
            unsigned char *blk = wq + b * bb;
            unsigned h = 0x1C00u + (unsigned)(lc_rng_u64(&rng) % 0x0C00u);
            if (dts[k] == LOLCATS_DTYPE_Q6_K) put16(blk + 208, h);
            else put16(blk, h);
            if (dts[k] == LOLCATS_DTYPE_Q4_K || dts[k] == LOLCATS_DTYPE_Q5_K) put16(blk + 2, h);
        }
        for (o = 0; o < O; o++) lc_dequant_row(wf + (size_t)o * I, wq + (size_t)o * rb, dts[k], I);
        lc_matmul(&cs, r, x, wf, LOLCATS_DTYPE_F32, T, O, I);            /* reference: F32 weights */
        amax = 0;   /* float32 sums of 512 products: error relative to the largest output */
        for (i = 0; i < T * O; i++) if (fabs((double)r[i]) > amax) amax = fabs((double)r[i]);
        at = 2e-6 * amax;
        for (p = 0; p < 2; p++) {
            memset(y, 0, sizeof y);
            lc_matmul(p ? &cf : &cs, y, x, wq, dts[k], T, O, I);
            snprintf(what, sizeof what, "matmul %s %s", lc_dtype_name(dts[k]), p ? lc_simd_name(cf.simd) : "scalar");
            check_close(what, y, r, T * O, p ? at : 1e-6 * amax, p ? 1e-5 : 1e-6);
        }
        for (o = 0; o < O; o++) y[o] = 0;
        lc_gemv(&cf, y, wq, dts[k], x, O, I, I);
        snprintf(what, sizeof what, "gemv %s", lc_dtype_name(dts[k]));
        check_close(what, y, r, O, at, 1e-5);
        lc_gemm(&cf, y, x, wq, dts[k], T, O, I, 0, 1, 1.0f, 0.0f, O, I, I, NULL);
        snprintf(what, sizeof what, "gemm x W^T %s", lc_dtype_name(dts[k]));
        check_close(what, y, r, T * O, at, 1e-5);
        /* dX = dY W with W (O,I) read as (K,N) = (O,I) rows */
        lc_gemm(&cf, rdx, r, wf, LOLCATS_DTYPE_F32, T, I, O, 0, 0, 1.0f, 0.0f, I, O, I, NULL);
        lc_gemm(&cf, dx, r, wq, dts[k], T, I, O, 0, 0, 1.0f, 0.0f, I, O, I, NULL);
        snprintf(what, sizeof what, "gemm dY W %s", lc_dtype_name(dts[k]));
        check_close(what, dx, rdx, T * I, 0, 0);
    }
}

int main(void) {
    test_valid();
    test_malformed();
    test_dequant();
    test_roundtrip();
    test_kernels();
    return check_done();
}
