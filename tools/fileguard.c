/* fileguard.c - SIGBUS on a mapped file: name it and exit (see fileguard.h). */
#define _POSIX_C_SOURCE 200809L
#include "fileguard.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define FG_MAX 8

/* messages are prepared outside the handler; the handler only compares
   addresses and calls write() */
static struct {
    uintptr_t lo, hi;             /* the weights' address range */
    char msg[1400];
} fg_model[FG_MAX];
static volatile sig_atomic_t fg_n;
static char fg_args[2048];        /* the file arguments, for a fault outside every range */

static void fg_write(const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(2, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static void fg_handler(int sig, siginfo_t *si, void *uc) {
    uintptr_t a = si ? (uintptr_t)si->si_addr : 0;
    int i, n = fg_n, hit = 0;
    (void)sig;
    (void)uc;
    fg_write("\nlolcats: error: SIGBUS: a memory-mapped input file was truncated or replaced while this run read it: ");
    for (i = 0; i < n; i++)
        if (a >= fg_model[i].lo && a < fg_model[i].hi) { fg_write(fg_model[i].msg); hit = 1; break; }
    if (!hit) {
        for (i = 0; i < n; i++) { fg_write(fg_model[i].msg); fg_write("; "); }
        fg_write(fg_args[0] ? fg_args : "(no input file known)");
    }
    fg_write(". Do not change a model or checkpoint while lolcats uses it; files already saved are kept "
             "(a training run continues with --resume)\n");
    _exit(1);
}

void tool_fileguard_install(int argc, char **argv) {
    struct sigaction sa;
    size_t n = 0;
    int i;
    for (i = 1; i + 1 < argc && n + 8 < sizeof fg_args; i++)
        if (!strcmp(argv[i], "--model") || !strcmp(argv[i], "-m") || !strcmp(argv[i], "--lolcats") ||
            !strcmp(argv[i], "--inputs")) {
            int k = snprintf(fg_args + n, sizeof fg_args - n, "%s%s %s", n ? ", " : "", argv[i], argv[i + 1]);
            if (k > 0) n += (size_t)k;
            i++;
        }
    if (n >= sizeof fg_args) fg_args[sizeof fg_args - 1] = 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fg_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

static void fg_span(uintptr_t *lo, uintptr_t *hi, const lc_weight *w) {
    uintptr_t a = (uintptr_t)w->data, b;
    if (!w->data) return;
    b = a + (uintptr_t)((size_t)w->rows * lc_dtype_row_bytes(w->dtype, w->cols));
    if (a < *lo) *lo = a;
    if (b > *hi) *hi = b;
}

void tool_fileguard_add_model(const char *path, const lc_model *m) {
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    int l, k = fg_n;
    if (k >= FG_MAX) return;
    fg_span(&lo, &hi, &m->tok_emb);
    fg_span(&lo, &hi, &m->rms_final);
    fg_span(&lo, &hi, &m->wcls);
    for (l = 0; l < m->cfg.n_layers; l++) {
        const lc_layer_weights *w = &m->layers[l];
        fg_span(&lo, &hi, &w->wq); fg_span(&lo, &hi, &w->wk); fg_span(&lo, &hi, &w->wv);
        fg_span(&lo, &hi, &w->wo); fg_span(&lo, &hi, &w->w1); fg_span(&lo, &hi, &w->w2);
        fg_span(&lo, &hi, &w->w3); fg_span(&lo, &hi, &w->rms_att); fg_span(&lo, &hi, &w->rms_ffn);
        fg_span(&lo, &hi, &w->bq); fg_span(&lo, &hi, &w->bk); fg_span(&lo, &hi, &w->bv);   /* Qwen; NULL: none */
        fg_span(&lo, &hi, &w->q_norm); fg_span(&lo, &hi, &w->k_norm);
    }
    fg_model[k].lo = lo;
    fg_model[k].hi = hi;
    snprintf(fg_model[k].msg, sizeof fg_model[k].msg, "the model %s (the fault is in its weights)", path);
    fg_n = k + 1;
}
