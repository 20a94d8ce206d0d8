/* demo_report.c - see demo_report.h. */
#define _POSIX_C_SOURCE 200809L
#include "demo_report.h"
#include "report.h"
#include "outsafe.h"
#include "tools.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int progress_shown;

void tool_progress(const char *what, long done, long total, double rate, const char *unit, double loss) {
    if (!isatty(2)) return;
    fprintf(stderr, "\r%-20s %6ld/%-6ld  %9.0f %s  loss %8.4f ", what, done, total, rate, unit, loss);
    progress_shown = 1;
}

void tool_progress_done(void) {
    if (progress_shown) fprintf(stderr, "\n");
    progress_shown = 0;
}

static int ensure_dir(const char *dir) {
    struct stat st;
    if (stat(dir, &st) == 0) return S_ISDIR(st.st_mode) ? 0 : -1;
    return mkdir(dir, 0755);
}

void tool_report_attention(const char *dir, const char *tag, lc_train *t, const int *tokens, int T, int layer) {
    int H = t->model->cfg.n_heads;
    float *at = (float *)malloc(sizeof(float) * (size_t)H * T * T), *as = (float *)malloc(sizeof(float) * (size_t)H * T * T);
    char path[1024];
    lc_error err;
    tool_canvas c;
    if (!at || !as || ensure_dir(dir) != 0) goto out;
    if (lc_train_attention_maps(t, tokens, T, layer, at, as, &err)) { fprintf(stderr, "report: %s\n", err.msg); goto out; }
    if (tool_canvas_init(&c, 2 * T * 4 + 16, T * 4) != 0) goto out;
    tool_canvas_heat(&c, 0, 0, at, T, T, 4, 1.0f);          /* head 0: teacher | student */
    tool_canvas_heat(&c, T * 4 + 16, 0, as, T, T, 4, 1.0f);
    snprintf(path, sizeof path, "%s/attention_%s.png", dir, tag);
    if (tool_png_write(&c, path) == 0) printf("   wrote %s (layer %d head 0: teacher | student)\n", path, layer);
    tool_canvas_free(&c);
out:
    free(at);
    free(as);
}

void tool_report_curves(const char *dir, const float *a, int na, const float *b, int nb, const float *c3, int nc) {
    const float *cv[3];
    int n[3], p, i;
    char path[1024];
    tool_canvas c;
    cv[0] = a; cv[1] = b; cv[2] = c3; n[0] = na; n[1] = nb; n[2] = nc;
    if (ensure_dir(dir) != 0 || tool_canvas_init(&c, 900, 240) != 0) return;
    for (p = 0; p < 3; p++) {  /* three panels side by side, each on its own scale */
        tool_canvas sub;
        double *ys = (double *)malloc(sizeof(double) * (size_t)(n[p] ? n[p] : 1));
        const double *yp = ys;
        static const unsigned col[3] = {0x1f4e9a, 0xc0392b, 0x27ae60};
        int y;
        if (!ys || tool_canvas_init(&sub, 290, 240) != 0) { free(ys); continue; }
        for (i = 0; i < n[p]; i++) ys[i] = (double)cv[p][i];
        tool_canvas_chart(&sub, &yp, &n[p], &col[p], 1, 1);
        for (y = 0; y < 240; y++) memcpy(c.px + ((size_t)y * 900 + (size_t)p * 305) * 3, sub.px + (size_t)y * 290 * 3, 290 * 3);
        tool_canvas_free(&sub);
        free(ys);
    }
    snprintf(path, sizeof path, "%s/loss_curves.png", dir);
    if (tool_png_write(&c, path) == 0) printf("   wrote %s (teacher CE | attention-transfer MSE | LoRA CE, log scale)\n", path);
    tool_canvas_free(&c);
}

void tool_report_summary(const char *dir, double l0, double a0, double l1, double a1, double l2, double a2,
                         double l3, double a3, double l4, double a4, double l5, double a5) {
    char path[1024], tmp[1100];
    FILE *f;
    if (ensure_dir(dir) != 0) return;
    snprintf(path, sizeof path, "%s/summary.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    outsafe_tmp(tmp);   /* removed if a signal lands in the write */
    f = fopen(tmp, "w");
    if (!f) return;
    {   /* null for a non-finite value, never a bare nan */
        static const char *const names[6] = {"teacher", "linear_no_at", "hybrid_no_at", "hybrid_at",
                                             "hybrid_at_lora", "hybrid_lora_only"};
        const double ls[6] = {l0, l1, l2, l3, l4, l5}, as[6] = {a0, a1, a2, a3, a4, a5};
        int i;
        for (i = 0; i < 6; i++) {
            fprintf(f, "%s\"%s\": {\"loss\": ", i ? ", " : "{", names[i]);
            tool_json_num(f, "%.6f", ls[i]);
            fprintf(f, ", \"acc\": ");
            tool_json_num(f, "%.4f", as[i]);
            fprintf(f, "}");
        }
        fprintf(f, "}\n");
    }
    if (fclose(f) == 0 && rename(tmp, path) == 0) printf("   wrote %s\n", path);
    if (!tool_png_available()) printf("   (no PNGs: stb_image_write not found at build time; apt-get install libstb-dev)\n");
}
