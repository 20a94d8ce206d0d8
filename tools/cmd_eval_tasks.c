/* cmd_eval_tasks.c - `lolcats eval --task NAME[,NAME...]`: lm-evaluation-
   harness-style tasks on the base model (softmax, KV cache) or the linearized
   model (--lolcats), scored by tools/evaltask.c's rules.

   Speed: a context shared by several continuations is fed once. The teacher
   keeps its KV cache after the context and truncates back to it before each
   continuation (lc_run_truncate); the linearized model snapshots its decode
   state after the context (lc_lolcats_run_snapshot: window ring + S, z per
   layer, constant size) and restores it. MMLU's few-shot header is fed once per
   subject (a snapshot after the header, then each question). Contexts are fed
   in chunks through the model's prefill.

   What the linearized model computes: a sequence is fed as segments - the
   shared header (MMLU) or the context as the first call (prefill with the
   checkpoint's masks), the rest of the context, then the continuation (the
   decode rule: sliding window + S, z). --naive feeds the same segments from an
   empty state for every continuation, so it gives the same numbers, slower. */
#define _POSIX_C_SOURCE 200809L
#include "tools.h"
#include "args.h"
#include "evaltask.h"
#include "outsafe.h"
#include "standalone.h"
#include "demo_report.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char *tasks_usage =
    "lolcats eval --task NAME[,NAME...] --model PATH [--tokenizer PATH] [--lolcats CKPT\n"
    "             [--window W] [--variant tk|sw] [--sinks S]] [--data-dir DIR] [--limit N] [--num-fewshot K]\n"
    "             [--subjects N] [-s|--seed S] [-t|--threads N] [--bos] [--naive] [--json FILE]\n"
    "             [--prefill segments|whole]\n"
    "             [--dump FILE] [--quiet]\n"
    "             [--lengths 1024,2048,...] [--depths 0,0.5,1]\n"
    "  tasks: piqa arc_easy arc_challenge hellaswag winogrande lambada copa openbookqa\n"
    "         mmlu passkey, or all (every task but passkey)\n"
    "  --data-dir DIR    the evaluation data (default $LOLCATS_EVAL_DATA); layout of\n"
    "                    ../shared/data/eval (README: Evaluating like the paper)\n"
    "  --limit N         the first N items of each task (MMLU: of each subject;\n"
    "                    passkey: trials per length and depth, default 3)\n"
    "  --num-fewshot K   MMLU shots, the first K rows of dev (default 5)\n"
    "  --subjects N      MMLU: only the first N subjects (in name order)\n"
    "  --bos             prepend BOS to every encoding (the harness's default is off)\n"
    "  --naive           feed every continuation's whole sequence from an empty state\n"
    "  --prefill MODE    linearized model: segments (default: the first segment, the\n"
    "                    MMLU header or the context, is a prefill with the checkpoint's\n"
    "                    masks, later tokens follow the decode rule) or whole (each\n"
    "                    context + continuation is ONE prefill with those masks, as the\n"
    "                    original's harness computes it; slower, no reuse)\n"
    "  --seed S          passkey: the filler's order and the keys (1234)\n"
    "  --threads N       OpenMP threads (default: all)\n"
    "  --json FILE       every figure as JSON (written whole, then renamed)\n"
    "  --softmax         a LoLCATs directory (--merge) is scored linearized by default;\n"
    "                    this scores its weights with softmax attention instead\n"
    "  --dump FILE       one JSON line per item, written as the items are scored\n"
    "  --lengths / --depths  passkey haystack lengths (tokens) and key depths (0..1)";

#define EV_ROWS 64         /* continuation tokens per forward call with logits */

typedef struct {
    tool_lm lm;
    const lc_model *m;
    const lc_tokenizer *tok;
    int V, maxlen, bos, naive;
    int whole;                      /* --prefill whole (linearized model only) */
    float *whole_lg;                /* (whole_rows, V) logits of a whole prefill */
    int *whole_ids, whole_rows;
    float *lg;                      /* (EV_ROWS, V) */
    float *ctx_logits;              /* (V) logits of the cached context's last token */
    int *hdr, nhdr, hdr_valid;      /* cached header tokens (teacher: positions 0..nhdr) */
    void *hdr_snap;
    int *ctx, nctx, ctx_valid;      /* cached context tokens */
    void *ctx_snap;
    size_t snap_bytes;
    char *hdr_text;                 /* the header string hdr encodes */
    long long fed;                  /* tokens fed (work) */
} ev_engine;

static int eng_feed(ev_engine *e, const int *t, int n, float *logits_all, lc_error *err) {
    int cap = tool_lm_max_tokens(&e->lm), s;
    if (logits_all && cap > EV_ROWS) cap = EV_ROWS;
    for (s = 0; s < n; s += cap) {
        int k = n - s < cap ? n - s : cap;
        if (!e->lm.linear && e->lm.run.pos + k > e->lm.run.ctx)
            return lc_error_set(err, LOLCATS_ERR_ARG, "sequence of %d tokens past the KV cache (%d)",
                                e->lm.run.pos + k, e->lm.run.ctx), tool_report(err);
        if (tool_lm_forward(&e->lm, t + s, k, logits_all ? logits_all + (size_t)s * e->V : NULL, err)) return 1;
        e->fed += k;
    }
    return 0;
}

static void eng_reset(ev_engine *e) {
    tool_lm_reset(&e->lm);
    if (!e->lm.linear) e->hdr_valid = 0;   /* the teacher's header lives in the cache */
    e->ctx_valid = 0;
}

static int eng_snap(ev_engine *e, void *buf) {
    if (e->lm.linear) lc_lolcats_run_snapshot(&e->lm.lrun, buf);
    return 0;
}

static int eng_restore(ev_engine *e, void *buf, int pos, lc_error *err) {
    lc_status s = e->lm.linear ? lc_lolcats_run_restore(&e->lm.lrun, buf, e->snap_bytes, err)
                               : lc_run_truncate(&e->lm.run, pos, err);
    return s ? tool_report(err) : 0;
}

static int *ev_dup_ids(const int *t, int n) {
    int *o = (int *)malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (o && n) memcpy(o, t, sizeof(int) * (size_t)n);
    return o;
}

/* The header's tokens (encoded alone), when they are a proper prefix of C. */
static int eng_header(ev_engine *e, const char *ctx, size_t hbytes, const int *C, int n, int *use,
                      lc_error *err) {
    *use = 0;
    if (!hbytes) return 0;
    if (!e->hdr_text || strlen(e->hdr_text) != hbytes || memcmp(e->hdr_text, ctx, hbytes)) {
        size_t got = 0;
        free(e->hdr_text);
        free(e->hdr);
        e->hdr_valid = 0;
        e->hdr_text = (char *)malloc(hbytes + 1);
        e->hdr = (int *)malloc(sizeof(int) * (hbytes + 3));
        if (!e->hdr_text || !e->hdr) return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory"), tool_report(err);
        memcpy(e->hdr_text, ctx, hbytes);
        e->hdr_text[hbytes] = 0;
        if (lc_tokenizer_encode(e->tok, ctx, hbytes, e->bos, 0, e->hdr, hbytes + 3, &got, err))
            return tool_report(err);
        e->nhdr = (int)got;
    }
    *use = e->nhdr > 0 && e->nhdr < n && !memcmp(e->hdr, C, sizeof(int) * (size_t)e->nhdr);
    return 0;
}

/* --prefill whole: context + continuation (but its last token) as ONE prefill
   of the linearized model from an empty state, every row's logits kept. */
static int eng_score_whole(ev_engine *e, const ev_pair *p, const int *C, int nC, ev_score *out, lc_error *err) {
    int n = nC + p->ncont - 1, j;
    if (n > e->whole_rows) {
        free(e->whole_lg);
        free(e->whole_ids);
        e->whole_lg = (float *)malloc(sizeof(float) * (size_t)n * (size_t)e->V);
        e->whole_ids = (int *)malloc(sizeof(int) * (size_t)n);
        e->whole_rows = e->whole_lg && e->whole_ids ? n : 0;
        if (!e->whole_rows)
            return lc_error_set(err, LOLCATS_ERR_NOMEM, "--prefill whole: out of memory for %d x %d logits",
                                n, e->V), tool_report(err);
    }
    memcpy(e->whole_ids, C, sizeof(int) * (size_t)nC);
    memcpy(e->whole_ids + nC, p->cont, sizeof(int) * (size_t)(p->ncont - 1));
    tool_lm_reset(&e->lm);
    e->ctx_valid = 0;
    if (tool_lm_forward(&e->lm, e->whole_ids, n, e->whole_lg, err)) return 1;
    e->fed += n;
    out->ntok = p->ncont;
    out->greedy = 1;
    for (j = 0; j < p->ncont; j++) {   /* row nC - 1 + j predicts cont[j] */
        const float *row = e->whole_lg + (size_t)(nC - 1 + j) * (size_t)e->V;
        out->ll += ev_logprob(row, e->V, p->cont[j]);
        if (lc_argmax(row, e->V) != p->cont[j]) out->greedy = 0;
    }
    return 0;
}

/* Scores one pair: the context (cached, or fed after the cached header), then
   the continuation's tokens. */
static int eng_score(ev_engine *e, const ev_req *rq, size_t hbytes, ev_score *out, lc_error *err) {
    ev_pair p;
    const int *C;
    int nC, i, use_hdr = 0, trunc = 0;
    memset(out, 0, sizeof *out);
    if (ev_encode_pair(e->tok, rq->ctx, rq->cont, e->bos, &p, err)) return tool_report(err);
    C = p.ctx;
    nC = p.nctx;
    if (p.ncont == 0) { ev_pair_free(&p); return 0; }
    if (p.ncont >= e->maxlen) {
        ev_pair_free(&p);
        return lc_error_set(err, LOLCATS_ERR_ARG, "a continuation of %d tokens: longer than the "
                            "context (%d)", p.ncont, e->maxlen), tool_report(err);
    }
    if (nC + p.ncont > e->maxlen + 1) {   /* the harness's left truncation to max_length */
        trunc = nC + p.ncont - (e->maxlen + 1);
        C += trunc;
        nC -= trunc;
    }
    if (e->whole && e->lm.linear) {
        int r = eng_score_whole(e, &p, C, nC, out, err);
        ev_pair_free(&p);
        return r;
    }
    if (!e->naive && e->ctx_valid && nC == e->nctx && !memcmp(C, e->ctx, sizeof(int) * (size_t)nC)) {
        if (eng_restore(e, e->ctx_snap, nC, err)) goto fail;
    } else {
        if (!trunc && eng_header(e, rq->ctx, hbytes, C, nC, &use_hdr, err)) goto fail;
        if (use_hdr) {
            if (!e->naive && e->hdr_valid) {
                if (eng_restore(e, e->hdr_snap, e->nhdr, err)) goto fail;
            } else {
                eng_reset(e);
                if (eng_feed(e, e->hdr, e->nhdr, NULL, err)) goto fail;
                if (!e->naive) { eng_snap(e, e->hdr_snap); e->hdr_valid = 1; }
            }
            e->ctx_valid = 0;
            if (eng_feed(e, C + e->nhdr, nC - e->nhdr, NULL, err)) goto fail;
        } else {
            eng_reset(e);
            if (eng_feed(e, C, nC, NULL, err)) goto fail;
        }
        memcpy(e->ctx_logits, e->lm.logits, sizeof(float) * (size_t)e->V);
        if (!e->naive) {
            free(e->ctx);
            e->ctx = ev_dup_ids(C, nC);
            e->nctx = nC;
            eng_snap(e, e->ctx_snap);
            e->ctx_valid = e->ctx != NULL;
        }
    }
    out->ntok = p.ncont;
    out->ll = ev_logprob(e->ctx_logits, e->V, p.cont[0]);
    out->greedy = lc_argmax(e->ctx_logits, e->V) == p.cont[0];
    for (i = 0; i < p.ncont - 1; i += EV_ROWS) {  /* row j of a block predicts cont[i + j + 1] */
        int k = p.ncont - 1 - i < EV_ROWS ? p.ncont - 1 - i : EV_ROWS, j;
        if (eng_feed(e, p.cont + i, k, e->lg, err)) goto fail;
        for (j = 0; j < k; j++) {
            const float *row = e->lg + (size_t)j * e->V;
            out->ll += ev_logprob(row, e->V, p.cont[i + j + 1]);
            if (lc_argmax(row, e->V) != p.cont[i + j + 1]) out->greedy = 0;
        }
    }
    ev_pair_free(&p);
    return 0;
fail:
    ev_pair_free(&p);
    return 1;
}

/* ---- output: a growing text buffer, the results table, JSON ---- */
typedef struct { char *p; size_t n, cap; } ev_str;
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void es_printf(ev_str *b, const char *fmt, ...) {
    va_list ap;
    int k;
    va_start(ap, fmt);
    k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if (b->n + (size_t)k + 1 > b->cap) {
        size_t nc = (b->n + (size_t)k + 1) * 2;
        char *q = (char *)realloc(b->p, nc);
        if (!q) return;
        b->p = q;
        b->cap = nc;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

static void es_num(ev_str *b, double x) {   /* JSON number, non-finite -> null */
    if (isfinite(x)) es_printf(b, "%.10g", x);
    else es_printf(b, "null");
}

static void es_jstr(ev_str *b, const char *s) {
    es_printf(b, "\"");
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') es_printf(b, "\\%c", c);
        else if (c < 0x20) es_printf(b, "\\u%04x", c);
        else es_printf(b, "%c", c);
    }
    es_printf(b, "\"");
}

typedef struct {
    char task[64], metric[24];
    double value, se;
    long n;
} ev_row;

typedef struct {
    ev_row *rows;
    int n, cap;
    ev_str json;           /* "task": {...} fragments, comma separated */
} ev_results;

static void res_add(ev_results *r, const char *task, const char *metric, double v, double se, long n) {
    ev_row *w;
    if (r->n == r->cap) {
        ev_row *g = (ev_row *)realloc(r->rows, sizeof(ev_row) * (size_t)(r->cap = r->cap ? 2 * r->cap : 32));
        if (!g) return;
        r->rows = g;
    }
    w = &r->rows[r->n++];
    snprintf(w->task, sizeof w->task, "%s", task);
    snprintf(w->metric, sizeof w->metric, "%s", metric);
    w->value = v;
    w->se = se;
    w->n = n;
}

static void json_metric(ev_str *b, const char *name, double v, double se) {
    es_printf(b, ", \"%s\": ", name);
    es_num(b, v);
    es_printf(b, ", \"%s_stderr\": ", name);
    es_num(b, se);
}

/* ---- progress on stderr ---- */
typedef struct {
    int tty, quiet;
    double t0, last, plain_last;  /* plain_last: no TTY, tool_progress_plain_due */
    const char *what;
    const long long *fed;         /* tokens fed so far (the final line's tokens/s); NULL: none */
    long long fed0;
} ev_progress;

static double ev_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void prog_start(ev_progress *p, const char *what) {
    p->t0 = p->last = ev_now();
    p->plain_last = 0;
    p->what = what;
    p->fed0 = p->fed ? *p->fed : 0;
}

static void prog_tick(ev_progress *p, long done, long total, int final) {
    double now = ev_now(), el = now - p->t0, rate = el > 0 ? (double)done / el : 0;
    long long tokens = p->fed ? *p->fed - p->fed0 : 0;
    if (p->quiet) return;
    if (!final && (p->tty ? now - p->last < 0.5 : !tool_progress_plain_due(&p->plain_last))) return;   /* no TTY: LOLCATS_PROGRESS_SECONDS */
    p->last = now;
    fprintf(stderr, "%s%s: %ld/%ld items, %.2f items/s, %s %.0f s", p->tty ? "\r" : "", p->what, done,
            total, rate, final ? "took" : "ETA", final ? el : (rate > 0 ? (double)(total - done) / rate : 0));
    if (final && tokens > 0)
        fprintf(stderr, ", %lld tokens fed, %.1f tokens/s", tokens, el > 0 ? (double)tokens / el : 0.0);
    fputs(p->tty && !final ? "   " : "\n", stderr);
    fflush(stderr);
}

/* FNV-1a 64 of a context, for --dump. */
static unsigned long long ev_hash(const char *s) {
    unsigned long long h = 1469598103934665603ULL;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ULL; }
    return h;
}

/* ---- one log-likelihood task ---- */
static int run_task(ev_engine *e, ev_task *t, ev_results *res, FILE *dump, ev_progress *pg,
                    lc_error *err) {
    ev_mean acc, accn, ll;
    ev_mean *sub = NULL;
    ev_score sc[64];
    long i;
    int k;
    double t0 = ev_now(), secs;
    long long fed0 = e->fed;
    memset(&acc, 0, sizeof acc);
    memset(&accn, 0, sizeof accn);
    memset(&ll, 0, sizeof ll);
    if (t->n_subjects) {
        sub = (ev_mean *)calloc((size_t)t->n_subjects, sizeof(ev_mean));
        if (!sub) return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory"), tool_report(err);
    }
    prog_start(pg, t->name);
    for (i = 0; i < t->n; i++) {
        const ev_item *it = &t->items[i];
        int pick = 0, pickn = 0, n = it->nreq < 64 ? it->nreq : 64;
        for (k = 0; k < n; k++)
            if (eng_score(e, &it->req[k], it->header, &sc[k], err)) { free(sub); return 1; }
        if (t->kind == EV_LAMBADA) {
            ev_mean_add(&acc, sc[0].greedy ? 1.0 : 0.0);
            ev_mean_add(&ll, sc[0].ll);
        } else {
            ev_choose(it, sc, &pick, &pickn);
            ev_mean_add(&acc, pick == it->gold ? 1.0 : 0.0);
            ev_mean_add(&accn, pickn == it->gold ? 1.0 : 0.0);
            if (sub) ev_mean_add(&sub[it->subject], pick == it->gold ? 1.0 : 0.0);
        }
        if (dump) {
            fprintf(dump, "{\"task\": \"%s\", \"item\": %ld, \"line\": %ld, \"ctx_hash\": \"%016llx\"",
                    t->name, i, it->line, ev_hash(it->req[0].ctx));
            if (sub) fprintf(dump, ", \"subject\": \"%s\"", t->subjects[it->subject]);
            fprintf(dump, ", \"ll\": [");
            for (k = 0; k < n; k++) fprintf(dump, "%s%.17g", k ? ", " : "", sc[k].ll);
            fprintf(dump, "], \"ntok\": [");
            for (k = 0; k < n; k++) fprintf(dump, "%s%d", k ? ", " : "", sc[k].ntok);
            if (t->kind == EV_LAMBADA)
                fprintf(dump, "], \"greedy\": %d}\n", sc[0].greedy);
            else
                fprintf(dump, "], \"pick\": %d, \"pick_norm\": %d, \"gold\": %d}\n", pick, pickn, it->gold);
        }
        prog_tick(pg, i + 1, t->n, 0);
    }
    prog_tick(pg, t->n, t->n, 1);
    secs = ev_now() - t0;
    es_printf(&res->json, "%s\"%s\": {\"items\": %ld, \"seconds\": %.3f, \"items_per_s\": ", res->json.n ? ", " : "",
              t->name, t->n, secs);
    es_num(&res->json, secs > 0 ? (double)t->n / secs : (double)NAN);
    es_printf(&res->json, ", \"tokens_fed\": %lld", e->fed - fed0);
    if (t->kind == EV_LAMBADA) {
        double m = ev_mean_value(&ll), ppl = exp(-m);
        res_add(res, t->name, "acc", ev_mean_value(&acc), ev_mean_stderr(&acc), t->n);
        res_add(res, t->name, "perplexity", ppl, ppl * ev_mean_stderr(&ll), t->n);
        json_metric(&res->json, "acc", ev_mean_value(&acc), ev_mean_stderr(&acc));
        json_metric(&res->json, "perplexity", ppl, ppl * ev_mean_stderr(&ll));
    } else if (sub) {
        /* micro (the harness's mmlu figure) and macro: ev_mmlu_agg */
        double ag[4];
        int ns, s;
        ev_mmlu_agg(sub, t->n_subjects, ag);
        res_add(res, t->name, "acc", ag[0], ag[1], t->n);
        res_add(res, t->name, "acc_macro", ag[2], ag[3], t->n);
        json_metric(&res->json, "acc", ag[0], ag[1]);
        json_metric(&res->json, "acc_macro", ag[2], ag[3]);
        es_printf(&res->json, ", \"subjects\": {");
        for (s = 0, ns = 0; s < t->n_subjects; s++) {
            if (!sub[s].n) continue;
            es_printf(&res->json, "%s\"%s\": {\"acc\": ", ns++ ? ", " : "", t->subjects[s]);
            es_num(&res->json, ev_mean_value(&sub[s]));
            es_printf(&res->json, ", \"acc_stderr\": ");
            es_num(&res->json, ev_mean_stderr(&sub[s]));
            es_printf(&res->json, ", \"items\": %ld}", sub[s].n);
        }
        es_printf(&res->json, "}");
    } else {
        res_add(res, t->name, "acc", ev_mean_value(&acc), ev_mean_stderr(&acc), t->n);
        json_metric(&res->json, "acc", ev_mean_value(&acc), ev_mean_stderr(&acc));
        if (t->has_norm) {
            res_add(res, t->name, "acc_norm", ev_mean_value(&accn), ev_mean_stderr(&accn), t->n);
            json_metric(&res->json, "acc_norm", ev_mean_value(&accn), ev_mean_stderr(&accn));
        }
    }
    es_printf(&res->json, "}");
    free(sub);
    return 0;
}

/* ---- passkey: a key hidden in seeded filler, greedy digits ---- */
static uint64_t ev_mix(uint64_t *s) {   /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static const char *pk_intro = "There is an important info hidden inside a lot of irrelevant text. "
                              "Find it and memorize it. I will quiz you about the important "
                              "information there.\n";
static const char *pk_question = "\nWhat is the pass key? The pass key is";

typedef struct {
    char **para;          /* filler paragraphs (LAMBADA passages) */
    int *ntok;            /* their token counts (encoded alone) */
    long n;
} pk_filler;

/* The prompt of one trial: filler paragraphs in a seeded order until about L
   tokens, the needle at the paragraph boundary nearest to depth. */
static char *pk_prompt(const pk_filler *f, int L, double depth, int key, uint64_t seed) {
    ev_str b;
    long total = 60, i, cut, np = 0, *pick = NULL, cap = 0;
    char needle[128];
    memset(&b, 0, sizeof b);
    while (total < L) {
        long j = (long)(ev_mix(&seed) % (uint64_t)f->n);
        if (np == cap) {
            long *g = (long *)realloc(pick, sizeof(long) * (size_t)(cap = cap ? 2 * cap : 64));
            if (!g) { free(pick); return NULL; }
            pick = g;
        }
        pick[np++] = j;
        total += f->ntok[j] + 1;
    }
    cut = (long)(depth * (double)np + 0.5);
    snprintf(needle, sizeof needle, " The pass key is %05d. Remember it. %05d is the pass key.", key, key);
    es_printf(&b, "%s", pk_intro);
    for (i = 0; i <= np; i++) {
        if (i == cut) es_printf(&b, "%s", needle);
        if (i < np) es_printf(&b, " %s", f->para[pick[i]]);
    }
    es_printf(&b, "%s", pk_question);
    free(pick);
    return b.p;
}

static int pk_load_filler(pk_filler *f, const ev_opts *o, const lc_tokenizer *tok, lc_error *err) {
    ev_task t;
    ev_opts oo = *o;
    long i;
    oo.limit = 0;
    memset(f, 0, sizeof *f);
    if (ev_task_load(&t, "lambada", &oo, err)) return tool_report(err);
    f->para = (char **)calloc((size_t)t.n, sizeof(char *));
    f->ntok = (int *)calloc((size_t)t.n, sizeof(int));
    if (!f->para || !f->ntok) { ev_task_free(&t); return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory"), tool_report(err); }
    for (i = 0; i < t.n; i++) {
        const char *c = t.items[i].req[0].ctx;
        size_t n = strlen(c), got = 0;
        int *ids = (int *)malloc(sizeof(int) * (n + 3));
        char *nl;
        if (!ids || lc_tokenizer_encode(tok, c, n, 0, 0, ids, n + 3, &got, err)) { free(ids); ev_task_free(&t); return tool_report(err); }
        free(ids);
        f->para[i] = t.items[i].req[0].ctx;
        t.items[i].req[0].ctx = NULL;
        while ((nl = strchr(f->para[i], '\n')) != NULL) *nl = ' ';
        f->ntok[i] = (int)got;
    }
    f->n = t.n;
    ev_task_free(&t);
    return 0;
}

static void pk_free(pk_filler *f) {
    long i;
    for (i = 0; i < f->n; i++) free(f->para[i]);
    free(f->para);
    free(f->ntok);
}

static int parse_list(const char *s, double *out, int cap, const char *flag) {
    int n = 0;
    char *end;
    while (*s) {
        if (n == cap) {
            fprintf(stderr, "lolcats: error: %s: at most %d values\n", flag, cap);
            exit(2);
        }
        out[n++] = strtod(s, &end);
        if (end == s || (*end && *end != ',')) {
            fprintf(stderr, "lolcats: error: %s %s: a comma-separated list of numbers\n", flag, s);
            exit(2);
        }
        s = *end ? end + 1 : end;
    }
    return n;
}

static int run_passkey(const lc_model *m, const lc_tokenizer *tok, const tool_lm_opts *lo,
                       const ev_opts *o, const double *lens, int nl, const double *deps, int nd,
                       int trials, uint64_t seed, int bos, ev_results *res, ev_progress *pg,
                       lc_error *err) {
    pk_filler f;
    int a, d, tr, hits_all = 0, n_all = 0, rc = 1;
    double t0 = ev_now();
    if (pk_load_filler(&f, o, tok, err)) return 1;
    es_printf(&res->json, "%s\"passkey\": {\"cells\": [", res->json.n ? ", " : "");
    prog_start(pg, "passkey");
    for (a = 0; a < nl; a++) {
        int L = (int)lens[a];
        tool_lm lm;
        struct rusage ru;
        size_t run_bytes;
        if (tool_lm_init(&lm, m, lo, L + 256, lo->lolcats ? 1024 : 128, err)) goto done;
        run_bytes = lm.linear ? lm.lrun.bytes : lm.run.bytes;
        for (d = 0; d < nd; d++) {
            int hits = 0;
            long long ntok = 0;
            for (tr = 0; tr < trials; tr++) {
                uint64_t s = seed * 1000003ULL + (uint64_t)(a * 7919 + d * 104729 + tr);
                int key = 10000 + (int)(ev_mix(&s) % 90000), g, prev, ndig = 0, cap;
                char *prompt = pk_prompt(&f, L, deps[d], key, s), got[16], keys[16];
                size_t n = prompt ? strlen(prompt) : 0, nid = 0;
                int *ids = (int *)malloc(sizeof(int) * (n + 3));
                if (!prompt || !ids) { free(prompt); free(ids); tool_lm_free(&lm); goto done; }
                if (lc_tokenizer_encode(tok, prompt, n, bos, 0, ids, n + 3, &nid, err)) {
                    free(prompt); free(ids); tool_lm_free(&lm); tool_report(err); goto done;
                }
                free(prompt);
                tool_lm_reset(&lm);
                cap = tool_lm_max_tokens(&lm);
                for (g = 0; g < (int)nid; g += cap) {
                    int k = (int)nid - g < cap ? (int)nid - g : cap;
                    if (tool_lm_forward(&lm, ids + g, k, NULL, err)) { free(ids); tool_lm_free(&lm); goto done; }
                }
                ntok = (long long)nid;
                prev = ids[nid - 1];
                free(ids);
                for (g = 0; g < 10 && ndig < 5; g++) {   /* greedy: the first 5 digits generated */
                    int nt = lc_argmax(lm.logits, m->cfg.vocab_size), j;
                    char piece[512];
                    size_t pl = lc_tokenizer_decode(tok, prev, nt, piece, sizeof piece);
                    for (j = 0; j < (int)pl && ndig < 5; j++)
                        if (piece[j] >= '0' && piece[j] <= '9') got[ndig++] = piece[j];
                        else if (ndig > 0 || (piece[j] != ' ' && piece[j] != ':')) g = 99;
                    if (g >= 99 || ndig >= 5) break;
                    prev = nt;
                    if (tool_lm_forward(&lm, &nt, 1, NULL, err)) { tool_lm_free(&lm); goto done; }
                }
                got[ndig] = 0;
                snprintf(keys, sizeof keys, "%05d", key);
                hits += !strcmp(got, keys);
                prog_tick(pg, (long)((a * nd + d) * trials + tr + 1), (long)nl * nd * trials, 0);
            }
            {
                char nm[64], met[24];
                snprintf(nm, sizeof nm, "passkey@%d", L);
                snprintf(met, sizeof met, "acc@depth%.2f", deps[d]);
                res_add(res, nm, met, (double)hits / trials, (double)NAN, trials);
            }
            getrusage(RUSAGE_SELF, &ru);
            es_printf(&res->json, "%s{\"length\": %d, \"depth\": %g, \"tokens\": %lld, \"trials\": %d, "
                      "\"acc\": %g, \"run_bytes\": %zu, \"peak_rss_kb\": %ld}", n_all ? ", " : "", L, deps[d],
                      ntok, trials, (double)hits / trials, run_bytes, (long)ru.ru_maxrss);
            hits_all += hits;
            n_all += trials;
        }
        tool_lm_free(&lm);
    }
    prog_tick(pg, (long)n_all, (long)n_all, 1);
    es_printf(&res->json, "], \"acc\": ");
    es_num(&res->json, n_all ? (double)hits_all / n_all : (double)NAN);
    es_printf(&res->json, ", \"seconds\": %.3f}", ev_now() - t0);
    rc = 0;
done:
    pk_free(&f);
    return rc;
}

/* ---- the command ---- */
int cmd_eval_tasks(int argc, char **argv) {
    const char *model_path = NULL, *tok_path = NULL, *task_arg = NULL, *json_path = NULL;
    const char *dump_path = NULL, *lens_arg = "1024,2048,4096", *deps_arg = "0,0.25,0.5,0.75,1";
    int i, rc = 1, nt = 0, quiet = 0, softmax = 0, ti, nl, nd;
    unsigned long long seed = 1234;
    char names[32][32], desc[256];
    double lens[64], deps[64];
    ev_opts o;
    ev_engine e;
    ev_results res;
    ev_progress pg;
    tool_lm_opts lo;
    lc_model m;
    lc_tokenizer tok;
    lc_error err;
    FILE *dump = NULL;
    memset(&o, 0, sizeof o);
    memset(&e, 0, sizeof e);
    memset(&res, 0, sizeof res);
    memset(&pg, 0, sizeof pg);
    memset(&lo, 0, sizeof lo);
    memset(&tok, 0, sizeof tok);
    memset(&err, 0, sizeof err);
    o.num_fewshot = -1;
    o.dir = getenv("LOLCATS_EVAL_DATA");
    o.dir_from = "LOLCATS_EVAL_DATA";
    for (i = 1; i < argc; i++) {
        const char *a = tool_arg_alias(argv[i]), *v;
        if (tool_arg_is_help(a)) return tool_arg_help(tasks_usage, NULL);
        if (!strcmp(a, "--bos")) { e.bos = 1; continue; }
        if (!strcmp(a, "--naive")) { e.naive = 1; continue; }
        if (!strcmp(a, "--quiet")) { quiet = 1; continue; }
        if (!strcmp(a, "--softmax")) { softmax = 1; continue; }
        if (!tool_arg_known(a, tasks_usage)) tool_arg_unknown(argv[0], argv[i], tasks_usage, NULL);
        v = tool_arg_value(argc, argv, &i);
        if (!strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "--tokenizer")) tok_path = v;
        else if (!strcmp(a, "--task")) task_arg = v;
        else if (!strcmp(a, "--data-dir")) { o.dir = v; o.dir_from = "--data-dir"; }
        else if (!strcmp(a, "--limit")) o.limit = (long)tool_arg_ll(a, v, 0, INT_MAX);
        else if (!strcmp(a, "--num-fewshot")) o.num_fewshot = tool_arg_int(a, v, 0, 100);
        else if (!strcmp(a, "--subjects")) o.subjects = tool_arg_int(a, v, 1, 1000);
        else if (!strcmp(a, "--seed")) seed = tool_arg_u64(a, v);
        else if (!strcmp(a, "--threads")) tool_arg_threads(a, v);
        else if (!strcmp(a, "--json")) json_path = v;
        else if (!strcmp(a, "--dump")) dump_path = v;
        else if (!strcmp(a, "--lengths")) lens_arg = v;
        else if (!strcmp(a, "--depths")) deps_arg = v;
        else if (!strcmp(a, "--lolcats")) lo.lolcats = v;
        else if (!strcmp(a, "--window")) lo.window = tool_arg_int(a, v, 1, 1 << 20);
        else if (!strcmp(a, "--variant")) lo.variant = (tool_arg_choice(a, v, "tk|sw"), v);
        else if (!strcmp(a, "--sinks")) lo.sinks = tool_arg_int(a, v, 0, 1 << 20);
        else if (!strcmp(a, "--prefill")) e.whole = tool_arg_choice(a, v, "segments|whole");
        else tool_arg_unknown(argv[0], argv[i - 1], tasks_usage, NULL);
    }
    if (!model_path || !task_arg) tool_arg_fail(argv[0], "eval --task needs --task NAME[,NAME...] and --model (-m)");
    if (tool_lm_auto(model_path, &lo, softmax, "eval")) return 2;   /* a --merge directory: linearized */

    {   /* task list */
        const char *p = task_arg;
        while (*p && nt < 32) {
            size_t k = strcspn(p, ",");
            if (k == 0 || k >= sizeof names[0]) tool_arg_fail(argv[0], "--task '%s': expected task names separated by commas", task_arg);
            memcpy(names[nt], p, k);
            names[nt][k] = 0;
            if (!strcmp(names[nt], "all")) {
                int j;
                for (j = 0; ev_task_names[j] && nt < 32; j++) snprintf(names[nt++], sizeof names[0], "%s", ev_task_names[j]);
            } else if (!ev_task_known(names[nt])) {
                fprintf(stderr, "lolcats: error: --task %s: unknown task (piqa, arc_easy, arc_challenge, "
                        "hellaswag, winogrande, lambada, copa, openbookqa, mmlu, passkey, all)\n", names[nt]);
                return 2;
            } else {
                nt++;
            }
            p += k + (p[k] == ',');
        }
    }
    nl = parse_list(lens_arg, lens, 64, "--lengths");
    nd = parse_list(deps_arg, deps, 64, "--depths");
    for (i = 0; i < nl; i++)
        if (!(lens[i] >= 64 && lens[i] <= 1e7) || lens[i] != floor(lens[i])) {
            fprintf(stderr, "lolcats: error: --lengths '%s': whole numbers of tokens in 64..10000000\n", lens_arg);
            return 2;
        }
    for (i = 0; i < nd; i++)
        if (!(deps[i] >= 0 && deps[i] <= 1)) { fprintf(stderr, "lolcats: error: --depths '%s': values in 0..1\n", deps_arg); return 2; }
    outsafe_input("--model", model_path, OUTSAFE_IN_MODEL);   /* kinds and outputs checked before loading */
    outsafe_input("--tokenizer", tok_path, OUTSAFE_IN_FILE);
    if (lo.lolcats && strcmp(lo.lolcats, "identity") && strcmp(lo.lolcats, "window-only")) outsafe_input("--lolcats", lo.lolcats, OUTSAFE_IN_MODEL);
    outsafe_input("--data-dir", o.dir, OUTSAFE_IN_DIR);
    outsafe_output("--json", json_path, OUTSAFE_OUT_FILE);
    outsafe_output("--dump", dump_path, OUTSAFE_OUT_LOG);
    if (outsafe_begin(argc, argv, 0, 1)) return 1;
    if (lc_model_load(&m, model_path, &err)) return tool_report(&err);
    if (tool_load_tokenizer(&tok, &m, model_path, tok_path, &err)) goto done;
    e.m = &m;
    e.tok = &tok;
    e.V = m.cfg.vocab_size;
    e.maxlen = m.cfg.seq_len;
    if (tool_lm_init(&e.lm, &m, &lo, e.maxlen, lo.lolcats ? e.maxlen : 128, &err)) goto done;
    tool_lm_describe(&e.lm, desc, sizeof desc);
    e.snap_bytes = e.lm.linear ? lc_lolcats_run_snapshot_bytes(&e.lm.lrun) : 0;
    e.lg = (float *)malloc(sizeof(float) * EV_ROWS * (size_t)e.V);
    e.ctx_logits = (float *)malloc(sizeof(float) * (size_t)e.V);
    e.hdr_snap = malloc(e.snap_bytes + 1);
    e.ctx_snap = malloc(e.snap_bytes + 1);
    if (!e.lg || !e.ctx_logits || !e.hdr_snap || !e.ctx_snap) { fprintf(stderr, "lolcats: error: out of memory\n"); goto done; }
    if (dump_path && !(dump = fopen(dump_path, "w"))) {
        fprintf(stderr, "lolcats: error: --dump %s: cannot create the file\n", dump_path);
        goto done;
    }
    pg.tty = isatty(2);
    pg.quiet = quiet;
    pg.fed = &e.fed;
    for (ti = 0; ti < nt; ti++) {
        ev_task t;
        if (!strcmp(names[ti], "passkey")) {
            if (run_passkey(&m, &tok, &lo, &o, lens, nl, deps, nd, o.limit > 0 ? (int)o.limit : 3, seed,
                            e.bos, &res, &pg, &err))
                goto done;
            continue;
        }
        if (ev_task_load(&t, names[ti], &o, &err)) { tool_report(&err); goto done; }
        if (run_task(&e, &t, &res, dump, &pg, &err)) { ev_task_free(&t); goto done; }
        ev_task_free(&t);
    }
    printf("%s (%s)%s%s\n", model_path, desc, e.naive ? " [naive]" : "",
           e.whole && e.lm.linear ? " [prefill whole]" : "");
    printf("%-22s %-16s %10s %10s %8s\n", "task", "metric", "value", "stderr", "items");
    for (i = 0; i < res.n; i++)
        printf("%-22s %-16s %10.4f %10.4f %8ld\n", res.rows[i].task, res.rows[i].metric, res.rows[i].value,
               res.rows[i].se, res.rows[i].n);
    if (json_path) {
        char jtmp[1200];
        FILE *f;
        ev_str h;
        memset(&h, 0, sizeof h);
        snprintf(jtmp, sizeof jtmp, "%s.tmp.%ld", json_path, (long)getpid());   /* whole, then renamed */
        outsafe_tmp(jtmp);
        if (!(f = fopen(jtmp, "w"))) { fprintf(stderr, "lolcats: error: --json %s: cannot create the file\n", json_path); goto done; }
        es_printf(&h, "{\"model\": ");
        es_jstr(&h, model_path);
        es_printf(&h, ", \"lolcats\": ");
        es_jstr(&h, lo.lolcats ? lo.lolcats : "");
        es_printf(&h, ", \"attention\": ");
        es_jstr(&h, desc);
        es_printf(&h, ", \"bos\": %d, \"naive\": %d, \"num_fewshot\": %d, \"limit\": %ld, \"seed\": %llu, "
                  "\"max_length\": %d, \"tasks\": {%s}}\n", e.bos, e.naive, o.num_fewshot < 0 ? 5 : o.num_fewshot,
                  o.limit, seed, e.maxlen, res.json.p ? res.json.p : "");
        fputs(h.p ? h.p : "{}\n", f);
        free(h.p);
        if (fclose(f) || rename(jtmp, json_path)) {
            fprintf(stderr, "lolcats: error: --json %s: write failed\n", json_path);
            remove(jtmp);
            goto done;
        }
    }
    rc = 0;
done:
    if (dump && fclose(dump) && !rc) { fprintf(stderr, "lolcats: error: --dump: write failed\n"); rc = 1; }
    free(res.rows);
    free(res.json.p);
    free(e.lg);
    free(e.ctx_logits);
    free(e.hdr_snap);
    free(e.ctx_snap);
    free(e.hdr);
    free(e.ctx);
    free(e.hdr_text);
    free(e.whole_lg);
    free(e.whole_ids);
    tool_lm_free(&e.lm);
    lc_tokenizer_free(&tok);
    lc_model_free(&m);
    return rc;
}
