/* lm.c - one forward interface over the base model (softmax KV cache, lc_run)
   and the linearized model (--lolcats: lc_lolcats_run, constant-memory state),
   shared by `generate` and `eval`. */
#include "tools.h"
#include "compute.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *lm_variant_name(int v) { return v == LOLCATS_WINDOW_SW ? "sw" : "tk"; }

/* --lolcats identity: identity feature maps (f = head dim, at most 64), window
   factors at logit(0.1), no LoRA: the model linearized without attention
   transfer. --lolcats window-only: the same with affine windows and window
   factors at logit 100 (gamma = 1, lambda = 1 - gamma = 0 exactly in float): the
   teacher with a sliding window (plus --sinks) and no linear part. Anything
   else is a checkpoint file or merged directory. */
static int lm_load_lolcats(tool_lm *lm, const char *path, lc_error *err) {
    const lc_model_config *c = &lm->m->cfg;
    if (!strcmp(path, "identity") || !strcmp(path, "window-only")) {
        lc_fmap_cfg fm = lc_fmap_cfg_default();
        lc_hybrid_cfg hc = lc_hybrid_cfg_default();
        int f = c->head_dim < 64 ? c->head_dim : 64;
        lm->identity_mem = (float *)malloc(sizeof(float) * lc_lolcats_identity_floats(c, f));
        if (!lm->identity_mem) { fprintf(stderr, "lolcats: out of memory\n"); return 1; }
        lc_lolcats_init_identity(&lm->lp, lm->identity_mem, c, f, &fm, &hc);
        if (!strcmp(path, "window-only")) {
            int i;
            lm->lp.hybrid.affine = 1;
            for (i = 0; i < c->n_layers * c->n_heads; i++)  /* wf points into identity_mem */
                ((float *)lm->identity_mem)[lm->lp.wf - lm->identity_mem + i] = 100.0f;
        }
        return 0;
    }
#ifdef LOLCATS_CKPT_FORMAT
    if (lc_lolcats_load(&lm->lp, path, lm->m, err)) return tool_report(err);
    lm->loaded = 1;
    return 0;
#else
    (void)err;
    fprintf(stderr, "lolcats: %s: this build cannot read LoLCATs checkpoints yet "
                    "(lc_lolcats_load); use --lolcats identity\n", path);
    return 1;
#endif
}

int tool_lm_init(tool_lm *lm, const lc_model *m, const tool_lm_opts *o, int ctx, int max_tokens,
                 lc_error *err) {
    memset(lm, 0, sizeof *lm);
    lc_ctx_init(&lm->cx);
    tool_compute_apply(&lm->cx);   /* --compute */
    lm->m = m;
    if (!o->lolcats) {
        if (lc_run_init(&lm->run, m, ctx, max_tokens, err)) return tool_report(err);
        lm->logits = lm->run.logits;
        lm->ctx = lm->run.ctx;
        return 0;
    }
    lm->linear = 1;
    if (o->variant && strcmp(o->variant, "tk") && strcmp(o->variant, "sw")) {
        fprintf(stderr, "lolcats: --variant %s: tk or sw\n", o->variant);
        return 1;
    }
    if (lm_load_lolcats(lm, o->lolcats, err)) return 1;
    if (o->window > 0) lm->lp.hybrid.window = o->window;
    if (o->variant) lm->lp.hybrid.variant = !strcmp(o->variant, "sw") ? LOLCATS_WINDOW_SW : LOLCATS_WINDOW_TK;
    if (o->sinks > 0) lm->lp.hybrid.sinks = o->sinks;
    /* the tool's ctx: --compute reaches the linearized model's GEMMs too */
    if (lc_lolcats_run_init(&lm->lrun, &lm->cx, m, &lm->lp, max_tokens, err)) return tool_report(err);
    lm->logits = lm->lrun.logits;
    lm->ctx = ctx > 0 ? ctx : m->cfg.seq_len;
    return 0;
}

int tool_lm_forward(tool_lm *lm, const int *tokens, int n, float *logits_all, lc_error *err) {
    lc_status s = lm->linear ? lc_lolcats_forward(lm->m, &lm->lp, &lm->lrun, tokens, n, logits_all, err)
                             : lc_model_forward(&lm->cx, lm->m, &lm->run, tokens, n, logits_all, err);
    return s ? tool_report(err) : 0;
}

void tool_lm_reset(tool_lm *lm) {
    if (lm->linear) lc_lolcats_run_reset(&lm->lrun);
    else lc_run_reset(&lm->run);
}

long long tool_lm_pos(const tool_lm *lm) { return lm->linear ? (long long)lm->lrun.pos : lm->run.pos; }

int tool_lm_max_tokens(const tool_lm *lm) { return lm->linear ? lm->lrun.max_tokens : lm->run.max_tokens; }

void tool_lm_describe(const tool_lm *lm, char *buf, size_t cap) {
    const lc_lolcats *lp = &lm->lp;
    if (!lm->linear) { snprintf(buf, cap, "softmax attention"); return; }
    snprintf(buf, cap, "linearized (%s, window %d, %s f=%d, LoRA rank %d)", lm_variant_name(lp->hybrid.variant),
             lp->hybrid.window, lc_fmap_act_name(lp->fmap.act), lp->feature_dim, lp->lora_rank);
    if (lp->hybrid.sinks > 0 && strlen(buf) + 1 < cap)  /* "..., 4 sinks)" */
        snprintf(buf + strlen(buf) - 1, cap - strlen(buf) + 1, ", %d sinks)", lp->hybrid.sinks);
    if (lp->gate_w && strlen(buf) + 1 < cap)   /* "..., gated)": the gated linear state */
        snprintf(buf + strlen(buf) - 1, cap - strlen(buf) + 1, ", gated)");
}

void tool_lm_free(tool_lm *lm) {
    if (lm->linear) {
        lc_lolcats_run_free(&lm->lrun);
#ifdef LOLCATS_CKPT_FORMAT
        if (lm->loaded) lc_lolcats_free(&lm->lp);
#endif
        free(lm->identity_mem);
    } else {
        lc_run_free(&lm->run);
    }
    memset(lm, 0, sizeof *lm);
}
