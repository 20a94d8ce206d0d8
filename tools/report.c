/* report.c - progress display and PNG reports (stb_image_write from Debian's
   libstb-dev when present at build time; without it the pictures are skipped
   with a note and everything else still works). */
#define _POSIX_C_SOURCE 200809L
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<stb/stb_image_write.h>)
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wpedantic"
#endif
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#define TOOL_HAVE_PNG 1
#endif
#endif

static int progress_shown;

void tool_progress(const char *what, long done, long total, double rate, const char *unit, double loss) {
    double eta;
    if (!isatty(2)) return;
    eta = rate > 0 && total > done ? (double)(total - done) / (rate / 1.0) : 0;
    (void)eta;
    fprintf(stderr, "\r%-20s %6ld/%-6ld  %9.0f %s  loss %8.4f ", what, done, total, rate, unit, loss);
    progress_shown = 1;
}

void tool_progress_done(void) {
    if (progress_shown) fprintf(stderr, "\n");
    progress_shown = 0;
}

int tool_png_available(void) {
#ifdef TOOL_HAVE_PNG
    return 1;
#else
    return 0;
#endif
}

static int ensure_dir(const char *dir) {
    struct stat st;
    if (stat(dir, &st) == 0) return S_ISDIR(st.st_mode) ? 0 : -1;
    return mkdir(dir, 0755);
}

int tool_write_gray_png(const char *path, const float *img, int w, int h, int zoom) {
#ifdef TOOL_HAVE_PNG
    unsigned char *px = (unsigned char *)malloc((size_t)w * zoom * h * zoom * 3);
    int x, y, ok;
    if (!px) return -1;
    for (y = 0; y < h * zoom; y++)
        for (x = 0; x < w * zoom; x++) {
            float v = img[(size_t)(y / zoom) * w + x / zoom];
            unsigned char *p = px + ((size_t)y * w * zoom + x) * 3;
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            p[0] = (unsigned char)(255 * (1 - v));  /* white -> dark blue */
            p[1] = (unsigned char)(255 * (1 - 0.8f * v));
            p[2] = (unsigned char)(255 * (1 - 0.3f * v));
        }
    ok = stbi_write_png(path, w * zoom, h * zoom, 3, px, w * zoom * 3);
    free(px);
    return ok ? 0 : -1;
#else
    (void)path; (void)img; (void)w; (void)h; (void)zoom;
    return -1;
#endif
}

void tool_report_attention(const char *dir, const char *tag, lc_train *t, const int *tokens, int T, int layer) {
    int H = t->model->cfg.n_heads, i, j;
    float *at = (float *)malloc(sizeof(float) * (size_t)H * T * T), *as = (float *)malloc(sizeof(float) * (size_t)H * T * T);
    float *img = (float *)calloc((size_t)T * (2 * T + 4), sizeof(float));
    char path[1024];
    lc_error err;
    if (!at || !as || !img || ensure_dir(dir) != 0) goto out;
    if (lc_train_attention_maps(t, tokens, T, layer, at, as, &err)) { fprintf(stderr, "report: %s\n", err.msg); goto out; }
    for (i = 0; i < T; i++)  /* head 0; sqrt so the small weights show */
        for (j = 0; j < T; j++) {
            img[(size_t)i * (2 * T + 4) + j] = sqrtf(at[(size_t)i * T + j]);
            img[(size_t)i * (2 * T + 4) + T + 4 + j] = sqrtf(as[(size_t)i * T + j]);
        }
    snprintf(path, sizeof path, "%s/attention_%s.png", dir, tag);
    if (tool_write_gray_png(path, img, 2 * T + 4, T, 4) == 0)
        printf("   wrote %s (layer %d head 0: teacher | student)\n", path, layer);
out:
    free(at); free(as); free(img);
}

/* three curves stacked in one picture, each panel scaled to its own range */
void tool_report_curves(const char *dir, const float *a, int na, const float *b, int nb, const float *c, int nc) {
    enum { W = 300, PH = 100 };
    const float *cv[3];
    int n[3], p, x, y;
    float *img = (float *)calloc((size_t)W * PH * 3, sizeof(float));
    char path[1024];
    cv[0] = a; cv[1] = b; cv[2] = c; n[0] = na; n[1] = nb; n[2] = nc;
    if (!img || ensure_dir(dir) != 0) { free(img); return; }
    for (p = 0; p < 3; p++) {
        float lo = 1e30f, hi = -1e30f;
        int i;
        for (i = 0; i < n[p]; i++) { if (cv[p][i] < lo) lo = cv[p][i]; if (cv[p][i] > hi) hi = cv[p][i]; }
        if (!(hi > lo)) hi = lo + 1;
        for (x = 0; x < W; x++) {
            int i0 = (int)((long)x * n[p] / W), i1 = (int)((long)(x + 1) * n[p] / W), k;
            float s = 0;
            if (i1 <= i0) i1 = i0 + 1;
            if (i1 > n[p]) i1 = n[p];
            for (k = i0; k < i1; k++) s += cv[p][k];
            if (i1 > i0) {
                y = (int)((1 - (s / (float)(i1 - i0) - lo) / (hi - lo)) * (PH - 8)) + 4;
                img[((size_t)p * PH + y) * W + x] = 1;
                if (y + 1 < PH) img[((size_t)p * PH + y + 1) * W + x] = 1;
            }
            img[((size_t)p * PH + PH - 1) * W + x] = 0.3f;  /* panel separator */
        }
    }
    snprintf(path, sizeof path, "%s/loss_curves.png", dir);
    if (tool_write_gray_png(path, img, W, 3 * PH, 2) == 0)
        printf("   wrote %s (teacher CE | attention-transfer MSE | LoRA CE)\n", path);
    free(img);
}

void tool_report_summary(const char *dir, double l0, double a0, double l1, double a1, double l2, double a2,
                         double l3, double a3, double l4, double a4, double l5, double a5) {
    char path[1024], tmp[1100];
    FILE *f;
    if (ensure_dir(dir) != 0) return;
    snprintf(path, sizeof path, "%s/summary.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "{\"teacher\": {\"loss\": %.6f, \"acc\": %.4f}, \"linear_no_at\": {\"loss\": %.6f, \"acc\": %.4f}, "
               "\"hybrid_no_at\": {\"loss\": %.6f, \"acc\": %.4f}, \"hybrid_at\": {\"loss\": %.6f, \"acc\": %.4f}, "
               "\"hybrid_at_lora\": {\"loss\": %.6f, \"acc\": %.4f}, \"hybrid_lora_only\": {\"loss\": %.6f, \"acc\": %.4f}}\n",
            l0, a0, l1, a1, l2, a2, l3, a3, l4, a4, l5, a5);
    if (fclose(f) == 0 && rename(tmp, path) == 0) printf("   wrote %s\n", path);
    if (!tool_png_available()) printf("   (no PNGs: stb_image_write not found at build time; apt-get install libstb-dev)\n");
}
