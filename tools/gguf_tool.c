/* gguf_tool.c - the GGUF side of the `lolcats` command: `inspect FILE.gguf`
   (header, metadata, tensor table) and `convert --to-gguf` (a Hugging Face
   directory or llama2.c checkpoint written as a GGUF file). */
#define _POSIX_C_SOURCE 200809L
#include "tools.h"

#include <stdio.h>
#include <string.h>

/* one metadata value, short: strings quoted and cut, arrays as [n x type] and their first elements */
static void gguf_show_value(const lc_gguf_kv *kv) {
    uint64_t j, show = kv->n < 6 ? kv->n : 6;
    if (kv->type == LOLCATS_GGUF_ARRAY) printf("[%llu x %s]", (unsigned long long)kv->n, lc_gguf_type_name(kv->elem_type));
    for (j = 0; j < show; j++) {
        printf(kv->type == LOLCATS_GGUF_ARRAY ? (j ? ", " : " ") : "");
        if (kv->elem_type == LOLCATS_GGUF_STRING) {
            size_t len, k;
            const char *s = lc_gguf_arr_str(kv, j, &len);
            putchar('"');
            for (k = 0; k < len && k < 60; k++) {
                unsigned char c = (unsigned char)s[k];
                if (c < 32 || c == 127) printf("\\x%02x", c); else putchar(c);
            }
            printf("%s\"", len > 60 ? "..." : "");
        } else if (kv->elem_type == LOLCATS_GGUF_F32 || kv->elem_type == LOLCATS_GGUF_F64) {
            printf("%g", lc_gguf_arr_float(kv, j));
        } else if (kv->elem_type == LOLCATS_GGUF_U64) {
            printf("%llu", (unsigned long long)lc_gguf_arr_int(kv, j));
        } else if (kv->elem_type == LOLCATS_GGUF_BOOL) {
            printf("%s", lc_gguf_arr_int(kv, j) ? "true" : "false");
        } else {
            printf("%lld", (long long)lc_gguf_arr_int(kv, j));
        }
    }
    if (show < kv->n) printf(", ...");
    putchar('\n');
}

int tool_inspect_gguf(const char *path) {
    lc_gguf_file *f = NULL;
    lc_error err;
    long long params = 0;
    size_t bytes = 0;
    int i, d;
    memset(&err, 0, sizeof err);
    if (lc_gguf_open(&f, path, &err)) return tool_report(&err);
    printf("%s (GGUF v%d, %d metadata entries, %d tensors, alignment %lu, data at byte %lu)\n", path,
           lc_gguf_version(f), lc_gguf_kv_count(f), lc_gguf_tensor_count(f), (unsigned long)lc_gguf_alignment(f),
           (unsigned long)lc_gguf_data_offset(f));
    if (lc_gguf_kv_count(f) > 0) printf("metadata:\n");
    for (i = 0; i < lc_gguf_kv_count(f); i++) {
        const lc_gguf_kv *kv = lc_gguf_kv_at(f, i);
        printf("  %-40s %-6s ", kv->key, lc_gguf_type_name(kv->type));
        gguf_show_value(kv);
    }
    printf("tensors (shape in PyTorch order):\n");
    for (i = 0; i < lc_gguf_tensor_count(f); i++) {
        const lc_tensor *t = lc_gguf_tensor_at(f, i);
        char shape[160];
        size_t n = 0;
        shape[0] = 0;
        for (d = 0; d < t->ndim && n < sizeof shape - 24; d++)
            n += (size_t)snprintf(shape + n, sizeof shape - n, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        params += (long long)lc_tensor_numel(t);
        bytes += t->nbytes;
        printf("  %-40s %-5s [%s] %zu bytes\n", t->name, lc_dtype_name(t->dtype), shape, t->nbytes);
    }
    printf("elements: %lld (%.3g bits each)\n", params, params ? 8.0 * (double)bytes / (double)params : 0.0);
    lc_gguf_close(f);
    return 0;
}
