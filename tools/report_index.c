/* report_index.c - see report_index.h. */
#define _POSIX_C_SOURCE 200809L
#include "report_index.h"
#include "outsafe.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tool_report_caption(const char *name, char *buf, int n) {
    int a, b, c;
    char tail[8];
    if (!strcmp(name, "attention_before.png") || !strcmp(name, "attention_after.png"))
        snprintf(buf, (size_t)n, "Attention weights of the last layer, head 0, on a held-out sequence, %s attention "
                 "transfer: the teacher's softmax attention (left) and the student's hybrid attention (sliding window "
                 "of 8 plus linear attention, right); darker is more weight (colour bar).",
                 name[10] == 'b' ? "before" : "after");
    else if (!strcmp(name, "loss_curves.png"))
        snprintf(buf, (size_t)n, "Training loss per optimizer step of the three demo stages, each on its own log "
                 "scale: the teacher's next-word cross-entropy, the attention-transfer MSE of stage 1 and the LoRA "
                 "cross-entropy of stage 2 (faint: each step; line: moving average).");
    else if (!strcmp(name, "lora_update.png"))
        snprintf(buf, (size_t)n, "Magnitude of the weight change that LoRA (stage 2) makes to the last layer's "
                 "q, k, v and o projections, |(alpha/r) B A| per weight (rows: output units, columns: input units).");
    else if (!strcmp(name, "stage1_layer_mse.png"))
        snprintf(buf, (size_t)n, "Stage 1 attention-transfer loss (MSE between teacher and student attention outputs) "
                 "per layer on the validation sequences, before and after stage 1, log scale.");
    else if (sscanf(name, "stage%d_attn_layer%d_head%d%7s", &a, &b, &c, tail) == 4 && !strcmp(tail, ".png"))
        snprintf(buf, (size_t)n, "Attention weights after stage %d of layer %d, head %d, on a validation sequence: "
                 "teacher softmax (left) and linearized student (right), colour bar shared.", a, b, c);
    else if (sscanf(name, "stage%d_loss%7s", &a, tail) == 2 && !strcmp(tail, ".png"))
        snprintf(buf, (size_t)n, "Stage %d loss per optimizer step: training loss (faint: each step; line: moving "
                 "average) and validation loss where measured, log scale.", a);
    else snprintf(buf, (size_t)n, "%s", name);
}

static int by_name(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }

static void html(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

int tool_report_index(const char *dir, const char *heading) {
    static int slot = -1;         /* one slot serves every index, one at a time */
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL, path[1200], tmp[1260], cap[600];
    int n = 0, cap_n = 0, i, ok;
    FILE *f;
    if (!d) { fprintf(stderr, "lolcats: error: cannot list %s: %s\n", dir, strerror(errno)); return 1; }
    while ((e = readdir(d)) != NULL) {
        size_t L = strlen(e->d_name);
        if (L < 5 || strcmp(e->d_name + L - 4, ".png") || strchr(e->d_name, '/')) continue;
        if (n == cap_n) {
            char **g = (char **)realloc(names, sizeof *names * (size_t)(cap_n = cap_n ? 2 * cap_n : 16));
            if (!g) break;
            names = g;
        }
        if ((names[n] = (char *)malloc(L + 1)) == NULL) break;
        memcpy(names[n++], e->d_name, L + 1);
    }
    closedir(d);
    if (n == 0) { free(names); return 0; }
    qsort(names, (size_t)n, sizeof *names, by_name);
    snprintf(path, sizeof path, "%s/index.html", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (slot < 0) slot = outsafe_tmp(tmp);   /* removed if a signal lands in the write */
    else outsafe_tmp_set(slot, tmp);
    f = fopen(tmp, "w");
    ok = f != NULL;
    if (f) {
        fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", f);
        html(f, heading);
        fputs("</title>\n<style>body{font-family:sans-serif;max-width:1150px;margin:2em auto}"
              "figure{margin:2em 0}img{max-width:100%;border:1px solid #ddd}figcaption{color:#333}</style>"
              "</head>\n<body>\n<h1>", f);
        html(f, heading);
        fputs("</h1>\n<p>Figures in this directory; the numbers behind them are in "
              "<a href=\"summary.json\">summary.json</a>.</p>\n", f);
        for (i = 0; i < n; i++) {
            tool_report_caption(names[i], cap, (int)sizeof cap);
            fputs("<figure>\n<img src=\"", f);
            html(f, names[i]);
            fputs("\" alt=\"", f);
            html(f, names[i]);
            fputs("\">\n<figcaption><b>", f);
            html(f, names[i]);
            fputs("</b>: ", f);
            html(f, cap);
            fputs("</figcaption>\n</figure>\n", f);
        }
        fputs("</body></html>\n", f);
        ok = !ferror(f);
        ok = (fclose(f) == 0) && ok;
    }
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        fprintf(stderr, "lolcats: error: cannot write %s: %s\n", path, strerror(errno));
        remove(tmp);
    } else printf("   wrote %s (%d pictures with captions)\n", path, n);
    for (i = 0; i < n; i++) free(names[i]);
    free(names);
    return ok ? 0 : 1;
}
