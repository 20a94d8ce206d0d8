/* gguf_build.h - builds GGUF files byte by byte for the tests (valid ones and
   every kind of malformed one). Little-endian, as the format is. */
#ifndef GGUF_BUILD_H
#define GGUF_BUILD_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define GB_FN static __attribute__((unused))
#else
#define GB_FN static
#endif

typedef struct gb_buf { unsigned char *p; size_t n, cap; } gb_buf;

GB_FN void gb_bytes(gb_buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->p = (unsigned char *)realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}
GB_FN void gb_le(gb_buf *b, uint64_t v, int n) {
    unsigned char t[8];
    int i;
    for (i = 0; i < n; i++) t[i] = (unsigned char)(v >> (8 * i));
    gb_bytes(b, t, (size_t)n);
}
GB_FN void gb_u8(gb_buf *b, unsigned v) { gb_le(b, v, 1); }
GB_FN void gb_u32(gb_buf *b, uint32_t v) { gb_le(b, v, 4); }
GB_FN void gb_u64(gb_buf *b, uint64_t v) { gb_le(b, v, 8); }
GB_FN void gb_f32(gb_buf *b, float f) { uint32_t u; memcpy(&u, &f, 4); gb_u32(b, u); }
GB_FN void gb_str(gb_buf *b, const char *s) { gb_u64(b, strlen(s)); gb_bytes(b, s, strlen(s)); }
GB_FN void gb_header(gb_buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    gb_bytes(b, "GGUF", 4); gb_u32(b, version); gb_u64(b, n_tensors); gb_u64(b, n_kv);
}
/* key + type (value follows) */
GB_FN void gb_key(gb_buf *b, const char *key, uint32_t type) { gb_str(b, key); gb_u32(b, type); }
GB_FN void gb_kv_u32(gb_buf *b, const char *key, uint32_t v) { gb_key(b, key, 4); gb_u32(b, v); }
GB_FN void gb_kv_f32(gb_buf *b, const char *key, float v) { gb_key(b, key, 6); gb_f32(b, v); }
GB_FN void gb_kv_str(gb_buf *b, const char *key, const char *v) { gb_key(b, key, 8); gb_str(b, v); }
/* tensor info with dims given in GGUF order (ne[0] fastest) */
GB_FN void gb_tinfo(gb_buf *b, const char *name, int nd, const uint64_t *ne, uint32_t type, uint64_t off) {
    int i;
    gb_str(b, name); gb_u32(b, (uint32_t)nd);
    for (i = 0; i < nd; i++) gb_u64(b, ne[i]);
    gb_u32(b, type); gb_u64(b, off);
}
GB_FN void gb_align(gb_buf *b, size_t a) { while (b->n % a) gb_u8(b, 0); }
#endif
