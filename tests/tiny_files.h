/* tiny_files.h - small inputs the command-line tests write for themselves (no
   ../shared): a llama2.c model, a byte tokenizer and a text file. Include
   lolcats.h (lc_rng) and check.h (CHECK_FN) first. */
#ifndef TINY_FILES_H
#define TINY_FILES_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* exit status of a shell command (128 when it did not exit normally) */
CHECK_FN int tiny_sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* llama2.c model: dim 16, hidden 24, 2 layers, 2 heads, 1 kv head, vocab 259 */
CHECK_FN int tiny_write_model(const char *path) {
    int32_t hdr[7] = {16, 24, 2, 2, 1, 259, 64};
    int dim = 16, hid = 24, L = 2, hd = 8, kvd = 8, V = 259, S = 64, i;
    size_t n = (size_t)V * dim + (size_t)L * dim + (size_t)L * dim * dim + 2 * (size_t)L * dim * kvd +
               (size_t)L * dim * dim + (size_t)L * dim + 3 * (size_t)L * dim * hid + (size_t)dim +
               (size_t)S * hd;
    size_t norm0 = (size_t)V * dim, norm1 = norm0 + (size_t)L * dim + (size_t)L * dim * dim +
                   2 * (size_t)L * dim * kvd + (size_t)L * dim * dim;
    size_t normf = norm1 + (size_t)L * dim + 3 * (size_t)L * dim * hid;
    float *w = (float *)malloc(n * sizeof(float));
    FILE *f = fopen(path, "wb");
    lc_rng r;
    int ok;
    if (!w || !f) { free(w); if (f) fclose(f); return 0; }
    lc_rng_seed(&r, 5);
    for (i = 0; i < (int)n; i++) w[i] = 0.3f * lc_rng_normal(&r);
    for (i = 0; i < L * dim; i++) { w[norm0 + (size_t)i] = 1.0f; w[norm1 + (size_t)i] = 1.0f; }
    for (i = 0; i < dim; i++) w[normf + (size_t)i] = 1.0f;
    ok = fwrite(hdr, sizeof hdr, 1, f) == 1 && fwrite(w, sizeof(float), n, f) == n;
    ok = (fclose(f) == 0) && ok;
    free(w);
    return ok;
}

/* <unk> <s> </s> then the 256 byte pieces */
CHECK_FN int tiny_write_tokenizer(const char *path) {
    FILE *f = fopen(path, "wb");
    int32_t mx = 6, len, i;
    float sc = 0;
    char piece[8];
    if (!f) return 0;
    fwrite(&mx, 4, 1, f);
    for (i = 0; i < 259; i++) {
        if (i < 3) snprintf(piece, sizeof piece, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        else snprintf(piece, sizeof piece, "<0x%02X>", i - 3);
        len = (int32_t)strlen(piece);
        fwrite(&sc, 4, 1, f);
        fwrite(&len, 4, 1, f);
        fwrite(piece, 1, (size_t)len, f);
    }
    return fclose(f) == 0;
}

CHECK_FN int tiny_write_text(const char *path) {
    static const char *words[] = {"the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far", "away"};
    FILE *f = fopen(path, "wb");
    lc_rng r;
    int i;
    if (!f) return 0;
    lc_rng_seed(&r, 11);
    for (i = 0; i < 3000; i++)
        fprintf(f, "%s%s", words[lc_rng_u64(&r) % 11], i % 12 == 11 ? ".\n" : " ");
    return fclose(f) == 0;
}

#endif
