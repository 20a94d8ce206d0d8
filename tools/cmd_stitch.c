/* cmd_stitch.c - `lolcats stitch`: one stage-1 checkpoint from the per-block
   checkpoints of block-wise attention transfer (`distill --layers A:B` run as
   separate jobs, on separate machines or at separate times). Each input
   contributes the layers it trained: its "layers" metadata (written by
   `distill --layers`), or the block given as FILE@A:B. The inputs must agree
   on everything but those layers (shapes, feature map, window, base model);
   every layer must come from exactly one input. */
#include "tools.h"
#include "args.h"
#include "outsafe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *stitch_usage =
    "lolcats stitch --out CKPT IN1[@A:B] IN2[@A:B] ...\n"
    "Joins the per-block stage-1 checkpoints of `distill --layers A:B` into one.\n"
    "  --out CKPT      the joined checkpoint (written atomically)\n"
    "  IN[@A:B]        a block's checkpoint; A:B (layers A..B-1) defaults to its\n"
    "                  \"layers\" metadata, which distill --layers writes\n"
    "  --allow-gaps    accept layers no input trained (they keep the first\n"
    "                  input's values, i.e. their initial feature maps)\n";

typedef struct {
    const char *path;
    char *cut;                    /* path cut at '@' (owned), or NULL */
    int a, b;
    lc_lolcats lp;
} stitch_in;

static int parse_block(const char *s, int *a, int *b) {
    char *e;
    long x = strtol(s, &e, 10), y;
    if (e == s || *e != ':') return -1;
    s = e + 1;
    y = strtol(s, &e, 10);
    if (e == s || *e || x < 0 || y <= x || y > 4096) return -1;
    *a = (int)x;
    *b = (int)y;
    return 0;
}

/* the settings every input must share with the first, or a message naming the one that differs */
static const char *stitch_mismatch(const lc_lolcats *p, const lc_lolcats *q) {
    const char *mp = lc_lolcats_meta(p, "model"), *mq = lc_lolcats_meta(q, "model");
    if (p->n_layers != q->n_layers) return "number of layers";
    if (p->n_heads != q->n_heads || p->head_dim != q->head_dim) return "heads or head size";
    if (p->feature_dim != q->feature_dim) return "feature dim";
    if (p->fmap.act != q->fmap.act || p->fmap.halfspace != q->fmap.halfspace) return "feature map";
    if (p->hybrid.variant != q->hybrid.variant || p->hybrid.window != q->hybrid.window ||
        p->hybrid.affine != q->hybrid.affine)
        return "window variant or size";
    if (!p->fbq != !q->fbq) return "feature-map biases (one has them, one not)";
    if (p->rope_interleaved != q->rope_interleaved) return "RoPE pairing (base model kind)";
    if (p->lora_rank || q->lora_rank) return "LoRA (stitch joins stage-1 checkpoints, without LoRA)";
    if (mp && mq && strcmp(mp, mq)) return "base model";
    return NULL;
}

int cmd_stitch(int argc, char **argv) {
    stitch_in *in;
    const char *out = NULL;
    int n = 0, i, l, rc = 1, gaps = 0, L, H, Df;
    int *owner = NULL;
    float *fq = NULL, *fk = NULL, *wf = NULL, *bq = NULL, *bk = NULL;
    lc_lolcats view;
    lc_error err;
    char layers[32];
    const char *meta[4];
    in = (stitch_in *)calloc((size_t)(argc > 0 ? argc : 1), sizeof *in);
    if (!in) return fprintf(stderr, "lolcats: out of memory\n"), 1;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            free(in);
            return tool_arg_help(stitch_usage, NULL);
        } else if (!strcmp(argv[i], "--out")) {
            out = tool_arg_value(argc, argv, &i);
        } else if (!strcmp(argv[i], "--allow-gaps")) {
            gaps = 1;
        } else if (argv[i][0] == '-') {
            free(in);
            tool_arg_unknown(argv[0], argv[i], stitch_usage, NULL);
            return 2;
        } else {
            in[n].path = argv[i];
            in[n].a = in[n].b = -1;
            n++;
        }
    }
    if (!out || n < 1) {
        free(in);
        tool_arg_fail(argv[0], "stitch needs --out and at least one input");
        return 2;
    }
    for (i = 0; i < n; i++) {  /* FILE@A:B: the block from the command line */
        char *at = strrchr(in[i].path, '@');
        if (at && parse_block(at + 1, &in[i].a, &in[i].b) == 0) {
            size_t len = (size_t)(at - in[i].path);
            char *p = (char *)malloc(len + 1);
            if (!p) { fprintf(stderr, "lolcats: out of memory\n"); goto done; }
            memcpy(p, in[i].path, len);
            p[len] = 0;
            in[i].path = in[i].cut = p;
        } else {
            in[i].a = -2;  /* from the metadata */
        }
    }
    for (i = 0; i < n; i++) outsafe_input("input", in[i].path, OUTSAFE_IN_FILE);
    outsafe_output("--out", out, OUTSAFE_OUT_FILE);
    if (outsafe_begin(argc, argv, 0, 1)) goto done;
    for (i = 0; i < n; i++) {
        const char *why;
        if (lc_lolcats_load(&in[i].lp, in[i].path, NULL, &err)) { tool_report(&err); goto done; }
        if (in[i].a == -2) {
            const char *ms = lc_lolcats_meta(&in[i].lp, "layers");
            if (!ms || parse_block(ms, &in[i].a, &in[i].b)) {
                fprintf(stderr, "lolcats stitch: %s has no \"layers\" metadata (it was not written by distill "
                                "--layers): give its block as %s@A:B\n", in[i].path, in[i].path);
                goto done;
            }
        }
        if (in[i].b > in[i].lp.n_layers) {
            fprintf(stderr, "lolcats stitch: %s: block %d:%d is outside its %d layers\n", in[i].path, in[i].a,
                    in[i].b, in[i].lp.n_layers);
            goto done;
        }
        if (i && (why = stitch_mismatch(&in[0].lp, &in[i].lp))) {
            fprintf(stderr, "lolcats stitch: %s and %s differ in %s: they are not blocks of one run\n",
                    in[0].path, in[i].path, why);
            goto done;
        }
    }
    L = in[0].lp.n_layers;
    H = in[0].lp.n_heads;
    Df = in[0].lp.head_dim * in[0].lp.feature_dim;
    owner = (int *)malloc(sizeof(int) * (size_t)L);
    fq = (float *)malloc(sizeof(float) * (size_t)L * H * Df);
    fk = (float *)malloc(sizeof(float) * (size_t)L * H * Df);
    wf = (float *)malloc(sizeof(float) * (size_t)L * H);
    bq = (float *)malloc(sizeof(float) * (size_t)L * H);
    bk = (float *)malloc(sizeof(float) * (size_t)L * H);
    if (!owner || !fq || !fk || !wf || !bq || !bk) { fprintf(stderr, "lolcats: out of memory\n"); goto done; }
    for (l = 0; l < L; l++) owner[l] = -1;
    for (i = 0; i < n; i++)
        for (l = in[i].a; l < in[i].b; l++) {
            if (owner[l] >= 0) {
                fprintf(stderr, "lolcats stitch: layer %d is in two inputs' blocks: %s (%d:%d) and %s (%d:%d)\n", l,
                        in[owner[l]].path, in[owner[l]].a, in[owner[l]].b, in[i].path, in[i].a, in[i].b);
                goto done;
            }
            owner[l] = i;
        }
    for (l = 0; l < L; l++)
        if (owner[l] < 0 && !gaps) {
            int e = l;
            while (e + 1 < L && owner[e + 1] < 0) e++;
            fprintf(stderr, "lolcats stitch: no input trained layers %d..%d (of 0..%d): add that block's "
                            "checkpoint, or pass --allow-gaps to keep the first input's values there\n",
                    l, e, L - 1);
            goto done;
        }
    for (l = 0; l < L; l++) {
        const lc_lolcats *s = &in[owner[l] >= 0 ? owner[l] : 0].lp;
        size_t o = (size_t)l * H * Df, oh = (size_t)l * H;
        memcpy(fq + o, s->fmap_q + o, sizeof(float) * (size_t)H * Df);
        memcpy(fk + o, s->fmap_k + o, sizeof(float) * (size_t)H * Df);
        memcpy(wf + oh, s->wf + oh, sizeof(float) * (size_t)H);
        if (s->fbq) {
            memcpy(bq + oh, s->fbq + oh, sizeof(float) * (size_t)H);
            memcpy(bk + oh, s->fbk + oh, sizeof(float) * (size_t)H);
        }
    }
    view = in[0].lp;
    view.fmap_q = fq;
    view.fmap_k = fk;
    view.wf = wf;
    view.fbq = in[0].lp.fbq ? bq : NULL;
    view.fbk = in[0].lp.fbq ? bk : NULL;
    snprintf(layers, sizeof layers, "0:%d", L);
    meta[0] = "layers";
    meta[1] = layers;
    meta[2] = "model";
    meta[3] = lc_lolcats_meta(&in[0].lp, "model");
    if (lc_lolcats_save(&view, out, meta, meta[3] ? 2 : 1, &err)) { tool_report(&err); goto done; }
    for (i = 0; i < n; i++) fprintf(stderr, "  layers %d..%d from %s\n", in[i].a, in[i].b - 1, in[i].path);
    fprintf(stderr, "lolcats stitch: wrote %s (%d layers)\n", out, L);
    rc = 0;
done:
    for (i = 0; i < n; i++) {
        lc_lolcats_free(&in[i].lp);
        free(in[i].cut);
    }
    free(in); free(owner); free(fq); free(fk); free(wf); free(bq); free(bk);
    return rc;
}
