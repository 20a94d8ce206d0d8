/* demo_report.c - see demo_report.h. */
#define _POSIX_C_SOURCE 200809L
#include "demo_report.h"
#include "report.h"
#include "plot.h"
#include "report_index.h"
#include "outsafe.h"
#include "tools.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

static int progress_shown;
static double progress_last;

int tool_progress_plain_due(double *last) {
    static int warned;
    const char *e = getenv("LOLCATS_PROGRESS_SECONDS");
    double every = 10.0, now;
    struct timespec ts;
    if (e && e[0]) {   /* a number of seconds >= 0; anything else is named once and ignored */
        char *end;
        double v = strtod(e, &end);
        if (*end || !(v >= 0 && v <= 1e9)) {
            if (!warned) fprintf(stderr, "lolcats: warning: LOLCATS_PROGRESS_SECONDS='%s' is not a number of seconds "
                                         ">= 0; using 10\n", e);
            warned = 1;
        } else {
            every = v;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    if (*last <= 0) { *last = now; return every <= 0; }
    if (now - *last < every) return 0;
    *last = now;
    return 1;
}

void tool_progress(const char *what, long done, long total, double rate, const char *unit, double loss) {
    if (!isatty(2)) {   /* a pipe or a file: a plain line now and then, never \r */
        if (tool_progress_plain_due(&progress_last))
            fprintf(stderr, "%s: %ld/%ld, %.0f %s, loss %.4f\n", what, done, total, rate, unit, loss);
        return;
    }
    fprintf(stderr, "\r%-20s %6ld/%-6ld  %9.0f %s  loss %8.4f ", what, done, total, rate, unit, loss);
    fflush(stderr);
    progress_shown = 1;
}

void tool_progress_done(void) {
    if (progress_shown) fprintf(stderr, "\n");
    progress_shown = 0;
    progress_last = 0;
}

static int ensure_dir(const char *dir) {
    struct stat st;
    if (stat(dir, &st) == 0) return S_ISDIR(st.st_mode) ? 0 : -1;
    return mkdir(dir, 0755);
}

void tool_report_attention(const char *dir, const char *tag, lc_train *t, const int *tokens, int T, int layer) {
    int H = t->model->cfg.n_heads, sc = 4, hx = PLOT_HEAT_L + 8, hy = 28 + PLOT_HEAT_T, side = T * sc;
    float *at = (float *)malloc(sizeof(float) * (size_t)H * T * T), *as = (float *)malloc(sizeof(float) * (size_t)H * T * T);
    char path[1024], title[160];
    lc_error err;
    tool_canvas c;
    if (!at || !as || ensure_dir(dir) != 0) goto out;
    if (lc_train_attention_maps(t, tokens, T, layer, at, as, &err)) { fprintf(stderr, "report: %s\n", err.msg); goto out; }
    if (tool_canvas_init(&c, 2 * (side + PLOT_HEAT_L + 8) + PLOT_BAR_W + 24, hy + side + PLOT_HEAT_B + 4) != 0) goto out;
    snprintf(title, sizeof title, "Attention weights, layer %d head 0, %s attention transfer", layer,
             strcmp(tag, "before") ? "after" : "before");
    plot_text(&c, c.w / 2, 5, title, 15.0f, 0x202020, PLOT_CENTRE, 0);
    plot_heat(&c, hx, hy, at, T, T, sc, 1.0f, "teacher (softmax)", "key position", "query position");
    plot_heat(&c, 2 * hx + side, hy, as, T, T, sc, 1.0f, "student (hybrid tk, window 8)", "key position",
              "query position");
    plot_colorbar(&c, 2 * (hx + side) + 12, hy, side, 1.0f, "attention weight");
    snprintf(path, sizeof path, "%s/attention_%s.png", dir, tag);
    if (tool_png_write(&c, path) == 0) printf("   wrote %s (layer %d head 0: teacher | student)\n", path, layer);
    tool_canvas_free(&c);
out:
    free(at);
    free(as);
}

void tool_report_curves(const char *dir, const float *a, int na, const float *b, int nb, const float *c3, int nc) {
    static const char *const titles[3] = {"1. teacher: next-word CE", "2. attention transfer: MSE",
                                          "3. LoRA: next-word CE"};
    static const unsigned col[3] = {0x1f4e9a, 0xc0392b, 0x27ae60};
    const float *cv[3];
    int n[3], p, i;
    char path[1024];
    tool_canvas c;
    cv[0] = a; cv[1] = b; cv[2] = c3; n[0] = na; n[1] = nb; n[2] = nc;
    if (ensure_dir(dir) != 0 || tool_canvas_init(&c, 1080, 330) != 0) return;
    plot_text(&c, 540, 5, "Training loss of the three demo stages (faint: per step; line: moving average)", 15.0f,
              0x202020, PLOT_CENTRE, 0);
    for (p = 0; p < 3; p++) {  /* three panels side by side, each on its own scale */
        double *ys = (double *)malloc(sizeof(double) * (size_t)(n[p] ? n[p] : 1));
        const double *yp = ys;
        plot_spec sp;
        if (!ys) continue;
        for (i = 0; i < n[p]; i++) ys[i] = (double)cv[p][i];
        memset(&sp, 0, sizeof sp);
        sp.title = titles[p]; sp.xlabel = "optimizer step"; sp.ylabel = "loss (log scale)";
        sp.logy = 1; sp.smooth = 1; sp.x0 = 1; sp.dx = 1;
        plot_chart(&c, p * 360, 26, 360, 304, &sp, &yp, &n[p], &col[p], 1);
        free(ys);
    }
    snprintf(path, sizeof path, "%s/loss_curves.png", dir);
    if (tool_png_write(&c, path) == 0) printf("   wrote %s (teacher CE | attention-transfer MSE | LoRA CE, log scale)\n", path);
    tool_canvas_free(&c);
}

void tool_report_lora(const char *dir, lc_train *t, int layer) {
    const lc_model_config *mc = &t->model->cfg;
    static const char *const names[4] = {"q_proj", "k_proj", "v_proj", "o_proj"};
    int r = t->cfg.lora_rank, tg, x, sc = 3, top = 28 + PLOT_HEAT_T, hmax = 0;
    float s = r > 0 ? t->cfg.lora_alpha / (float)r : 0.0f, vmax = 0;
    float *dw[4] = {NULL, NULL, NULL, NULL};
    int in[4], out[4];
    char path[1024], title[200];
    tool_canvas c;
    if (r <= 0 || !t->lora_a || ensure_dir(dir) != 0) return;
    for (tg = 0; tg < 4; tg++) {   /* |scale * B A|, (out, in) */
        const float *A = t->lora_a[layer][tg], *B = t->lora_b[layer][tg];
        int o, i, j;
        in[tg] = tg == LOLCATS_LORA_O ? mc->n_heads * mc->head_dim : mc->dim;
        out[tg] = tg == LOLCATS_LORA_Q ? mc->n_heads * mc->head_dim : tg == LOLCATS_LORA_O ? mc->dim
                                                                                            : mc->n_kv_heads * mc->head_dim;
        if (!A || !B) continue;
        dw[tg] = (float *)malloc(sizeof(float) * (size_t)out[tg] * (size_t)in[tg]);
        if (!dw[tg]) goto out;
        for (o = 0; o < out[tg]; o++)
            for (i = 0; i < in[tg]; i++) {
                double acc = 0;
                for (j = 0; j < r; j++) acc += (double)B[(size_t)o * r + j] * (double)A[(size_t)j * in[tg] + i];
                acc = fabs((double)s * acc);
                dw[tg][(size_t)o * in[tg] + i] = (float)acc;
                if ((float)acc > vmax) vmax = (float)acc;
            }
        if (out[tg] * sc > hmax) hmax = out[tg] * sc;
    }
    if (hmax == 0) goto out;
    x = PLOT_HEAT_L + 8;
    for (tg = 0; tg < 4; tg++) if (dw[tg]) x += in[tg] * sc + PLOT_HEAT_L + 8;
    if (tool_canvas_init(&c, x + PLOT_BAR_W + 12, top + hmax + PLOT_HEAT_B + 4) != 0) goto out;
    snprintf(title, sizeof title, "LoRA update |(alpha/r) B A| of layer %d after stage 2 (r %d, alpha %g)", layer, r,
             (double)t->cfg.lora_alpha);
    plot_text(&c, c.w / 2, 5, title, 15.0f, 0x202020, PLOT_CENTRE, 0);
    x = PLOT_HEAT_L + 8;
    for (tg = 0; tg < 4; tg++) {
        if (!dw[tg]) continue;
        plot_heat(&c, x, top, dw[tg], out[tg], in[tg], sc, vmax, names[tg], "input unit", "output unit");
        x += in[tg] * sc + PLOT_HEAT_L + 8;
    }
    plot_colorbar(&c, x - PLOT_HEAT_L + 4, top, hmax, vmax, "|weight change|");
    snprintf(path, sizeof path, "%s/lora_update.png", dir);
    if (tool_png_write(&c, path) == 0) printf("   wrote %s (layer %d LoRA weight change, q k v o)\n", path, layer);
    tool_canvas_free(&c);
out:
    for (tg = 0; tg < 4; tg++) free(dw[tg]);
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
    if (tool_png_available()) tool_report_index(dir, "lolcats demo");
    else printf("   (no PNGs: stb_image_write not found at build time; apt-get install libstb-dev)\n");
}
