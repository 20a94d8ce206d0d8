/* fuzz_safetensors.c - libFuzzer harness for the safetensors reader:
   lc_st_open_memory on the input, then every accessor and conversion.
   Build: make fuzz   Run: build/fuzz/fuzz_safetensors fuzz/corpus_safetensors */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lc_st_file *f = NULL;
    lc_error err;
    int i;
    if (lc_st_open_memory(&f, data, size, "fuzz.safetensors", &err) != LOLCATS_OK) {
        if (!strstr(err.msg, "fuzz.safetensors")) abort();   /* every message names the file */
        return 0;
    }
    for (i = 0; i < lc_st_count(f); i++) {
        const lc_tensor *t = lc_st_tensor_at(f, i);
        size_t n = lc_tensor_numel(t);
        if (lc_st_find(f, t->name) != t) abort();
        if (n * lc_dtype_size(t->dtype) != t->nbytes) abort();
        if ((const uint8_t *)t->data < data || (const uint8_t *)t->data + t->nbytes > data + size) abort();
        if (n <= (1u << 20)) {
            float *dst = (float *)malloc(n ? n * sizeof(float) : 1);
            if (dst) {
                (void)lc_tensor_to_f32(t, dst, &err);
                free(dst);
            }
        }
        (void)lc_tensor_f32(t);
    }
    for (i = 0; i < lc_st_meta_count(f); i++) {
        const char *k, *v;
        lc_st_meta_at(f, i, &k, &v);
        if (!k || !v || !lc_st_meta(f, k)) abort();
    }
    lc_st_close(f);
    return 0;
}
