/* evaltask.h - lm-evaluation-harness-style tasks for `lolcats eval --task`:
   the task readers (files of ../shared/data/eval, layout in README.md), the
   requests (context, continuation) each item makes, the harness's tokenization
   of a pair, the scoring rules (acc, acc_norm, Winogrande partial scoring,
   LAMBADA greedy + perplexity, MMLU macro / micro) and their standard errors.
   Nothing here runs a model: tools/cmd_eval_tasks.c feeds the requests. */
#ifndef LOLCATS_TOOLS_EVALTASK_H
#define LOLCATS_TOOLS_EVALTASK_H
#include "lolcats.h"

enum { EV_MC = 0,        /* multiple choice: acc (+ acc_norm) */
       EV_WINO = 1,      /* one continuation under several contexts: acc */
       EV_LAMBADA = 2,   /* one continuation: greedy acc + perplexity */
       EV_PASSKEY = 3 }; /* generated haystack, greedy digits */

/* One scored pair. ctx is the text the model reads, cont the text scored;
   norm_len is the choice's length in Unicode code points (acc_norm). */
typedef struct {
    char *ctx, *cont;
    long norm_len;
} ev_req;

typedef struct {
    int nreq;
    ev_req *req;
    int gold;
    int subject;           /* MMLU: index into ev_task.subjects; else -1 */
    size_t header;         /* bytes of ctx shared by every item of the subject (MMLU few-shot) */
    long line;             /* 1-based line of the item in its file */
} ev_item;

typedef struct {
    char name[32];
    int kind, has_norm;
    ev_item *items;
    long n;
    char **subjects;       /* MMLU: subject names (file order); else NULL */
    int n_subjects;
} ev_task;

typedef struct {
    const char *dir;       /* data directory (--data-dir / LOLCATS_EVAL_DATA) */
    const char *dir_from;  /* what named it, for errors: "--data-dir" or "LOLCATS_EVAL_DATA" */
    int num_fewshot;       /* MMLU shots from dev (first K rows); < 0: 5 */
    long limit;            /* > 0: only the first N items (MMLU: per subject) */
    int subjects;          /* MMLU: > 0: only the first N subjects (sorted names) */
} ev_opts;

/* Names of the log-likelihood tasks, in `all` order. */
extern const char *const ev_task_names[];
int ev_task_known(const char *name);   /* also "passkey" */

/* Reads a task (not passkey). Errors "FILE:LINE: ..." in err. */
int ev_task_load(ev_task *t, const char *name, const ev_opts *o, lc_error *err);
void ev_task_free(ev_task *t);

/* ---- pieces the readers are made of (exported for the tests) ---- */
/* RFC-4180 CSV: rows of fields (quoted fields may hold commas, quotes "" and
   newlines / CRLF). *rows gets nrows arrays of nf[i] malloc'd strings; line[i]
   the 1-based line where row i starts. */
typedef struct {
    long n;
    int *nf;
    char ***f;
    long *line;
} ev_csv;
int ev_csv_parse(ev_csv *c, const char *text, size_t n, const char *path, lc_error *err);
void ev_csv_free(ev_csv *c);
/* MMLU texts: the description line, a row's question block, the prompt. */
char *ev_mmlu_prompt(const char *subject, char *const *shots /*(k,6)*/, int k, char *const *row);
/* HellaSwag's preprocess (strip, " [title]" -> ". ", drop [...], "  " -> " "). */
char *ev_hellaswag_pre(const char *s);
long ev_utf8_len(const char *s);       /* code points (Python len) */

/* ---- the harness's tokenization of a pair ---- */
typedef struct {
    int *ctx, *cont;       /* malloc'd */
    int nctx, ncont;
} ev_pair;
/* Trailing whitespace of ctx moves onto cont; ctx + cont is encoded whole and
   ctx alone, cont's tokens are the tail beyond ctx's count. bos: prepend BOS to
   both encodings (off by default, as the harness for causal models); an empty
   ctx becomes [BOS] and cont is encoded alone. */
int ev_encode_pair(const lc_tokenizer *tok, const char *ctx, const char *cont, int bos, ev_pair *p,
                   lc_error *err);
void ev_pair_free(ev_pair *p);

/* ---- scoring ---- */
typedef struct {
    double ll;             /* summed log-likelihood of the continuation's tokens */
    int ntok;
    int greedy;            /* every continuation token is the argmax at its position */
} ev_score;

/* log softmax(logits)[tok] in double. */
double ev_logprob(const float *logits, int V, int tok);
/* index of the first maximum of x[0..n) (harness argmax). */
int ev_argmax_d(const double *x, int n);
/* Chosen index for acc and acc_norm (ll / norm_len) of an item. */
void ev_choose(const ev_item *it, const ev_score *s, int *pick, int *pick_norm);

/* Per-task metric accumulation. */
typedef struct {
    double sum, sumsq;
    long n;
} ev_mean;
void ev_mean_add(ev_mean *m, double x);
double ev_mean_value(const ev_mean *m);
double ev_mean_stderr(const ev_mean *m);   /* sample stddev / sqrt(n), as mean_stderr */
/* MMLU over subjects (empty ones skipped): micro = over questions (the harness's
   weight_by_size; stderr pooled as its pooled_sample_stderr), macro = mean of
   subject means (stderr sqrt(sum se^2) / k). out: micro, micro_se, macro, macro_se. */
void ev_mmlu_agg(const ev_mean *sub, int n, double out[4]);
#endif
