/* fuzz_gguf.c - libFuzzer harness for the GGUF reader: lc_gguf_open_memory on
   the input, then every accessor, typed getter and dequantization.
   Build: make fuzz   Run: build/fuzz/fuzz_gguf fuzz/corpus_gguf
   Seeds: /usr/bin/python3 tools/gen_gguf_seeds.py */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lc_gguf_file *f = NULL;
    lc_error err;
    int i;
    if (lc_gguf_open_memory(&f, data, size, "fuzz.gguf", &err) != LOLCATS_OK) {
        if (!strstr(err.msg, "fuzz.gguf")) abort();   /* every message names the file */
        return 0;
    }
    for (i = 0; i < lc_gguf_kv_count(f); i++) {
        const lc_gguf_kv *kv = lc_gguf_kv_at(f, i);
        int64_t iv;
        double dv;
        const char *s;
        uint64_t j;
        size_t len;
        if (!kv || !kv->key || lc_gguf_find_kv(f, kv->key) != kv) abort();
        (void)lc_gguf_get_int(f, kv->key, &iv, &err);
        (void)lc_gguf_get_float(f, kv->key, &dv, &err);
        if (lc_gguf_get_str(f, kv->key, &s, &err) == LOLCATS_OK && !s) abort();
        for (j = 0; j < kv->n && j < 64; j++) {
            (void)lc_gguf_arr_int(kv, j);
            (void)lc_gguf_arr_float(kv, j);
            s = lc_gguf_arr_str(kv, j, &len);
            if (s && ((const uint8_t *)s < data || (const uint8_t *)s + len > data + size) && kv->type == LOLCATS_GGUF_ARRAY) abort();
        }
    }
    for (i = 0; i < lc_gguf_tensor_count(f); i++) {
        const lc_tensor *t = lc_gguf_tensor_at(f, i);
        size_t n = lc_tensor_numel(t);
        if (lc_gguf_find(f, t->name) != t) abort();
        if ((const uint8_t *)t->data < data || (const uint8_t *)t->data + t->nbytes > data + size) abort();
        if (t->ndim < 1 || (lc_dtype_row_bytes(t->dtype, t->shape[t->ndim - 1]) == 0 && t->shape[t->ndim - 1] != 0)) abort();
        if (n <= (1u << 20)) {
            float *dst = (float *)malloc(n ? n * sizeof(float) : 1);
            if (dst) {
                (void)lc_tensor_to_f32(t, dst, &err);
                free(dst);
            }
        }
    }
    lc_gguf_close(f);
    return 0;
}
