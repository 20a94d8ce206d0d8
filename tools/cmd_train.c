/* cmd_train.c - `lolcats distill` (stage 1, attention transfer), `lolcats
   finetune` (stage 2, LoRA) and `lolcats linearize` (both), following
   LOLCATS_MATH.md sections 7-9: AdamW, gradient accumulation over packed
   sequences, ReduceLROnPlateau on the validation loss, best checkpoint kept.

   Files: --out CKPT is the best checkpoint by validation loss; CKPT.state the
   resumable training state (parameters, AdamW moments, step, data position,
   schedule, best loss), both written atomically. --resume continues from
   CKPT.state and ends with exactly the parameters of an uninterrupted run. */
#define _POSIX_C_SOURCE 200809L
#include "tools.h"
#include "args.h"
#include "data.h"
#include "fileguard.h"
#include "fingerprint.h"
#include "report.h"
#include "plot.h"
#include "report_index.h"
#include "demo_report.h"
#include "tool_mpi.h"
#include "outsafe.h"
#include "standalone.h"
#include "softmax_layers.h"
#include "compute.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *common_usage =
    "  --model PATH         llama2.c .bin or Hugging Face directory\n"
    "  --tokenizer PATH     tokenizer (required for llama2.c models, as in generate)\n"
    "  --data FILE          text file, or .jsonl of Alpaca records (section 9 template,\n"
    "                       response-only labels), or \"random\": seeded token ids (models\n"
    "                       without a tokenizer, e.g. from synth)\n"
    "  --seq-len N          tokens per packed sequence (1024; at most the model's context)\n"
    "  --tokens N           training budget in tokens (default: one pass over the data)\n"
    "  --grad-accum N       sequences per optimizer step (8)\n"
    "  --val-every K        validate every K optimizer steps (10); 0: only at the end\n"
    "  --val-seqs N         validation sequences (8): text: the last chunks; Alpaca:\n"
    "                       packed from the first --val-records records\n"
    "  --val-records N      Alpaca records held out for validation (200)\n"
    "  --max-records N      read only the first N Alpaca records (0: all)\n"
    "  --seed S             data order and LoRA init (0)\n"
    "  --resume             continue from OUT.state if it exists\n"
    "  --force              start over although OUT.state exists (it is overwritten);\n"
    "                       replace a non-empty --merge directory whole\n"
    "  --stop-after N       stop after optimizer step N, state saved (as if killed)\n"
    "  --json-log FILE      one JSON line per step: stage, step, tokens, loss, lr, val_loss\n"
    "  --max-memory MIB     stay under this memory: activation checkpointing and\n"
    "                       per-layer release of weight pages as needed, or refuse\n"
    "  --report DIR         PNG pictures and summary.json into DIR\n"
    "  -t, --threads N      OpenMP threads (OMP_NUM_THREADS or all cores)\n"
    TOOL_COMPUTE_USAGE
    "  --strict             runs that cannot learn (window covering the sequence, a budget\n"
    "                       below one step, a state larger than the KV cache) are errors\n"
    "  -m = --model, -s = --seed\n";

static const char *distill_usage =
    "lolcats distill --model M [--tokenizer TOK] --data D --out CKPT [options]\n"
    "Stage 1, attention transfer: trains feature maps and window factors so that each\n"
    "layer's hybrid attention reproduces its softmax attention (teacher forced).\n"
    "  --out CKPT           best checkpoint (safetensors); CKPT.state beside it\n"
    "  --variant tk|sw      window masks (tk)\n"
    "  --window W           window size (64)\n"
    "  --sinks S            attention sinks: the first S positions stay in every query's\n"
    "                       softmax window part, never in the linear part (0)\n"
    "  --feature-map NAME   softmax_dim | exp_dim | pos_elu | relu (softmax_dim)\n"
    "  --feature-dim F      feature-map width f (64)\n"
    "  --halfspace          only the first half of softmax_dim / exp_dim\n"
    "  --init identity|kaiming  feature-map initialisation (identity)\n"
    "  --fmap-bias, --no-fmap-bias  a trainable scalar bias per head on each map\n"
    "                       (default: on for relu, the T2R map; off otherwise)\n"
    "  --lr LR              AdamW learning rate (1e-2)\n"
    "  --mse-factor X       (1000)    --xent-factor X   (0)\n"
    "  --layers A:B         train only layers A..B-1 (the paper's block-wise transfer;\n"
    "                       the others keep their initial maps); the checkpoint records\n"
    "                       the block, and `lolcats stitch` joins the blocks' checkpoints\n"
    "  --inputs DIR         read the state entering layer A from `lolcats cache-inputs`\n"
    "                       (DIR/layer-A) instead of running the teacher's layers 0..A-1\n"
    "  --mpi                under mpirun -np K: the ranks split the layers, rank 0\n"
    "                       writes the files; the result equals one process's, bit for bit\n"
    "                       (with --inputs, each rank reads DIR/layer-<its first layer>)\n"
    "  --softmax-layers LIST  layers kept softmax (e.g. 7,15): no transfer loss there, the\n"
    "                       loss is the mean over the others; the checkpoint records them\n"
    "  --gate               gated linear state: per head and token a decay g = sigmoid(x_n . w_g\n"
    "                       + b_g) of the linear part's state (S = g S + phi(k) v^T), w_g, b_g\n"
    "                       trained with the feature maps (start: w_g 0, b_g 4, g = 0.982); the\n"
    "                       checkpoint records it (metadata gate); with --sinks the sink keys\n"
    "                       stay in the window part, outside the decaying state\n";

static const char *cache_usage =
    "lolcats cache-inputs --model M [--tokenizer TOK] --data D --layers A:B[,C:D...] --out DIR [options]\n"
    "Runs the teacher once over the sequences a `distill --layers` run with the same data\n"
    "options (--data, --seq-len, --tokens, --grad-accum, --seed, --val-seqs, ...) visits, and\n"
    "writes the hidden state entering each block's first layer to DIR/layer-A/shard-*.safetensors\n"
    "(F32, exact: `distill --layers A:B --inputs DIR` then equals the run without a cache,\n"
    "bit for bit, without running layers 0..A-1). Shards are atomic: rerun to resume.\n"
    "  --layers LIST        blocks, e.g. 0:8,8:16,16:24,24:32 (layer 0's input is the\n"
    "                       embedding: nothing to cache)\n"
    "  --out DIR            cache directory (created)\n"
    "  --shard-mb N         size of a shard file (512)\n";

static const char *finetune_usage =
    "lolcats finetune --model M [--tokenizer TOK] --lolcats CKPT --data D --out CKPT2 [options]\n"
    "   or: lolcats finetune --softmax --model M [--tokenizer TOK] --data D --out CKPT2 [options]\n"
    "Stage 2: LoRA on q/k/v/o trained with next-token cross-entropy (Alpaca: response\n"
    "tokens only) through the whole hybrid model.\n"
    "  --lolcats CKPT       stage 1 checkpoint (feature maps, window factors)\n"
    "  --softmax            no --lolcats: LoRA trained through the TEACHER (softmax\n"
    "                       attention in every layer), e.g. to teach it a task before\n"
    "                       linearizing; CKPT2 holds the LoRA (beside identity feature\n"
    "                       maps, unused); --merge DIR writes a plain Hugging Face model\n"
    "                       (no LoLCATs tensors, no \"lolcats\" object: a softmax model);\n"
    "                       --peft and --train-feature-maps are refused with it\n"
    "  --out CKPT2          best checkpoint (feature maps, window factors, LoRA)\n"
    "  --lora-rank R        (8)       --lora-alpha A   (16)\n"
    "  --train-feature-maps also train feature maps and window factors (and a gated\n"
    "                       state's w_g, b_g)\n"
    "  --gate-stage2        a gated checkpoint (distill --gate; the gate comes from the\n"
    "                       checkpoint): also train its gate w_g, b_g in this stage\n"
    "  --lr LR              AdamW learning rate (1e-4)\n"
    "  --kl-factor A        distill to the teacher's logits: adds A * tau^2 * KL(teacher ||\n"
    "                       student) of the next-token distributions (0: off); the teacher\n"
    "                       is the frozen model (softmax, no LoRA), run on each sequence\n"
    "  --kl-temp TAU        temperature of both distributions (1); the tau^2 factor keeps the\n"
    "                       gradient's size the same at every TAU\n"
    "  --ce-factor C        weight of the next-token cross-entropy (1; 0 with --kl-factor:\n"
    "                       KL alone). Validation (best checkpoint, schedule) stays the\n"
    "                       plain cross-entropy; --json-log lines get \"ce\" and \"kl\"\n"
    "  --kl-cache MIB       keep the teacher's logits of each distinct training sequence\n"
    "                       while they fit in MIB (0: none, the teacher runs every step);\n"
    "                       a sequence seen again skips the teacher; same results\n"
    "  --merge DIR          also write a Hugging Face directory with LoRA merged: the\n"
    "                       LoLCATs tensors beside, config.json's \"lolcats\" object, the\n"
    "                       model's tokenizer files (a llama2.c tokenizer.bin is copied\n"
    "                       as is: it has no tokenizer.json form); generate/eval run it\n"
    "                       linearized\n"
    "  --peft DIR           also write the LoRA as a PEFT adapter (adapter_config.json,\n"
    "                       adapter_model.safetensors) for the teacher in Hugging Face\n"
    "                       layout; feature maps and window factors stay in CKPT2\n"
    "  --mpi                under mpirun -np K: data parallel, each rank takes every K-th\n"
    "                       sequence of a step (and of validation), gradients are summed\n"
    "                       over the ranks before each AdamW step; rank 0 writes the files\n"
    "  --softmax-layers LIST  layers kept softmax (exact softmax attention, LoRA still\n"
    "                       trained); default: the --lolcats checkpoint's list (none)\n";

static const char *linearize_usage =
    "lolcats linearize --model M [--tokenizer TOK] --data D --out CKPT [options]\n"
    "Both stages: distill into CKPT's .stage1 file, then finetune into CKPT.\n"
    "  --distill-tokens N   stage 1 budget (default: --tokens)\n"
    "  --finetune-tokens N  stage 2 budget (default: --tokens)\n"
    "  --no-attention-transfer  skip stage 1 (identity-initialised feature maps)\n"
    "  --distill-lr LR (1e-2)  --finetune-lr LR (1e-4); --lr is refused: it would be\n"
    "                       ambiguous between the stages\n"
    "  plus the options of distill and finetune (--variant, --window, --sinks, --feature-map,\n"
    "  --feature-dim, --lora-rank, --lora-alpha, --train-feature-maps, --merge, --peft,\n"
    "  --kl-factor, --kl-temp, --ce-factor: stage 2's loss, --gate, --gate-stage2)\n"
    "  --mpi                under mpirun: stage 1 splits the layers, stage 2 is data parallel\n"
    "  --softmax-layers LIST|auto:K  keep these layers' softmax attention (e.g. 7,15; the\n"
    "                       original's softmax_attentions): stage 1 skips them, stage 2 and\n"
    "                       inference run exact softmax with a KV cache there; auto:K keeps\n"
    "                       the K layers with the highest validation loss after stage 1\n";

typedef struct {
    const char *model_path, *tok_path, *data, *out, *json_log, *report, *lolcats_in, *merge, *peft;
    lc_train_cfg tc;
    int seq_len, grad_accum, val_every, val_seqs, val_records, resume, train_fmaps, no_at;
    int force;                    /* --force: see outsafe.h */
    int fmap_bias;                /* 0: by feature map (relu: on), 1: on, 2: off */
    int mpi;                      /* distill: ranks split the layers */
    int lay0, lay1;               /* distill --layers A:B (lay1 0: every layer) */
    const char *layers_arg;       /* --layers as given (cache-inputs: a list of blocks) */
    const char *inputs;           /* distill --inputs DIR: cached block inputs */
    double shard_mb;              /* cache-inputs --shard-mb */
    long max_records, stop_after;
    double max_mem_mb;            /* --max-memory (MiB), 0: no budget */
    long long tokens, tokens1, tokens2;
    float lr, lr1, lr2;
    int lr_set;
    uint64_t seed;
    int strict;                   /* --strict: the can-not-learn warnings are errors */
    const char *softmax_arg;      /* --softmax-layers LIST|auto:K (softmax_layers.c) */
    int softmax_auto;             /* K of auto:K, 0: a list */
    unsigned char *softmax;       /* (L) the kept softmax layers, NULL: none */
    int teacher_lora;             /* finetune --softmax: LoRA through the teacher (>>teacher-lora) */
} train_opts;

/* what a stage leaves for the report */
typedef struct {
    int stage, steps;
    double *train_loss, *val_loss;   /* per step (NaN when not validated) */
    int n_curve;
    double *layer_before, *layer_after;   /* (L) stage 1 per-layer loss on a validation sequence */
    double val_first, val_best, tok_per_s, seconds, peak_rss_mib;
    long long tokens;
    int L;
    char ckpt[1024];
} stage_result;

static int train_report_maps(lc_train *t, const tool_data *d, const char *dir, int stage);

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Stage 1's feature maps get per-head biases: asked for, or T2R (relu) by default. */
/* stage 2's loss is not plain cross-entropy (--kl-factor, --ce-factor) */
static int kl_on(const lc_train_cfg *tc) { return tc->kl_factor != 0.0f || tc->ce_factor != 1.0f; }

static int stage1_bias(const train_opts *o) {
    return o->fmap_bias == 1 || (o->fmap_bias == 0 && o->tc.fmap.act == LOLCATS_FMAP_RELU);
}

static int opt_common(train_opts *o, int argc, char **argv, int *i) {
    const char *a = tool_arg_alias(argv[*i]), *v;
    if (!strcmp(a, "--resume")) { o->resume = 1; return 1; }
    if (!strcmp(a, "--force")) { o->force = 1; return 1; }
    if (!strcmp(a, "--halfspace")) { o->tc.fmap.halfspace = 1; return 1; }
    if (!strcmp(a, "--fmap-bias")) { o->fmap_bias = 1; return 1; }
    if (!strcmp(a, "--mpi")) { o->mpi = 1; return 1; }
    if (!strcmp(a, "--no-fmap-bias")) { o->fmap_bias = 2; return 1; }
    if (!strcmp(a, "--train-feature-maps")) { o->train_fmaps = 1; return 1; }
    if (!strcmp(a, "--no-attention-transfer")) { o->no_at = 1; return 1; }
    if (!strcmp(a, "--strict")) { o->strict = 1; return 1; }
    if (!strcmp(a, "--softmax")) { o->teacher_lora = 1; return 1; }
    if (!strcmp(a, "--gate")) { o->tc.gate = 1; return 1; }                /* >>gate-train */
    if (!strcmp(a, "--gate-stage2")) { o->tc.gate_stage2 = 1; return 1; }
#define ARG(name) (!strcmp(a, name) && (tool_arg_need(a, argc, argv, *i), v = argv[++*i], 1))
    if (ARG("--model")) o->model_path = argv[*i];
    else if (ARG("--tokenizer")) o->tok_path = argv[*i];
    else if (ARG("--data")) o->data = argv[*i];
    else if (ARG("--out")) o->out = argv[*i];
    else if (ARG("--lolcats")) o->lolcats_in = argv[*i];
    else if (ARG("--merge")) o->merge = argv[*i];
    else if (ARG("--peft")) o->peft = argv[*i];
    else if (ARG("--json-log")) o->json_log = argv[*i];
    else if (ARG("--report")) o->report = argv[*i];
    else if (ARG("--threads")) tool_arg_threads(a, v);
    else if (ARG("--compute")) tool_arg_compute(a, v);
    else if (ARG("--seq-len")) o->seq_len = tool_arg_int(a, v, 2, 1 << 20);
    else if (ARG("--tokens")) o->tokens = tool_arg_ll(a, v, 0, 1LL << 50);
    else if (ARG("--distill-tokens")) o->tokens1 = tool_arg_ll(a, v, 0, 1LL << 50);
    else if (ARG("--finetune-tokens")) o->tokens2 = tool_arg_ll(a, v, 0, 1LL << 50);
    else if (ARG("--grad-accum")) o->grad_accum = tool_arg_int(a, v, 1, 1 << 20);
    else if (ARG("--val-every")) o->val_every = tool_arg_int(a, v, 0, INT_MAX);
    else if (ARG("--val-seqs")) o->val_seqs = tool_arg_int(a, v, 0, 1 << 20);
    else if (ARG("--val-records")) o->val_records = tool_arg_int(a, v, 0, INT_MAX);
    else if (ARG("--max-records")) o->max_records = (long)tool_arg_ll(a, v, 0, INT_MAX);
    else if (ARG("--stop-after")) o->stop_after = (long)tool_arg_ll(a, v, 0, INT_MAX);
    else if (ARG("--max-memory")) o->max_mem_mb = tool_arg_num(a, v, 0, 1 << 30, 0);
    else if (ARG("--seed")) o->seed = tool_arg_u64(a, v);
    else if (ARG("--lr")) { o->lr = tool_arg_float(a, v, 0, 10, 1); o->lr_set = 1; }
    else if (ARG("--distill-lr")) o->lr1 = tool_arg_float(a, v, 0, 10, 1);
    else if (ARG("--finetune-lr")) o->lr2 = tool_arg_float(a, v, 0, 10, 1);
    else if (ARG("--variant"))
        o->tc.hybrid.variant = tool_arg_choice(a, v, "tk|sw") ? LOLCATS_WINDOW_SW : LOLCATS_WINDOW_TK;
    else if (ARG("--window")) o->tc.hybrid.window = tool_arg_int(a, v, 1, 1 << 20);
    else if (ARG("--sinks")) o->tc.hybrid.sinks = tool_arg_int(a, v, 0, 1 << 20);
    else if (ARG("--inputs")) o->inputs = v;
    else if (ARG("--softmax-layers")) { o->softmax_arg = v; o->softmax_auto = tool_softmax_layers_arg(argv[0], v); }
    else if (ARG("--shard-mb")) o->shard_mb = tool_arg_num(a, v, 0, 1 << 20, 1);
    else if (ARG("--layers")) {
        o->layers_arg = v;
        if (strchr(v, ',')) { tool_arg_layer_list(a, v); return 1; }   /* a list: cache-inputs */
        tool_arg_layers(a, v, &o->lay0, &o->lay1);
    } else if (ARG("--init")) o->tc.fmap_init = tool_arg_choice(a, v, "identity|kaiming");
    else if (ARG("--feature-map")) {
        int act = lc_fmap_act_parse(v);
        if (act < 0) tool_arg_choice(a, v, "softmax_dim|exp_dim|pos_elu|relu");
        o->tc.fmap.act = (lc_fmap_act)act;
    } else if (ARG("--feature-dim")) o->tc.feature_dim = tool_arg_int(a, v, 1, 1024);
    else if (ARG("--lora-rank")) o->tc.lora_rank = tool_arg_int(a, v, 1, 256);
    else if (ARG("--lora-alpha")) o->tc.lora_alpha = tool_arg_float(a, v, 0, 1e6, 1);
    else if (ARG("--mse-factor")) o->tc.mse_factor = tool_arg_float(a, v, 0, 1e9, 0);
    else if (ARG("--xent-factor")) o->tc.xent_factor = tool_arg_float(a, v, 0, 1e9, 0);
    else if (ARG("--kl-factor")) o->tc.kl_factor = tool_arg_float(a, v, 0, 1e9, 0);   /* stage 2 (>>kl) */
    else if (ARG("--kl-temp")) o->tc.kl_temp = tool_arg_float(a, v, 0, 1e6, 1);
    else if (ARG("--ce-factor")) o->tc.ce_factor = tool_arg_float(a, v, 0, 1e9, 0);
    else if (ARG("--kl-cache")) o->tc.kl_cache_bytes = (size_t)(tool_arg_num(a, v, 0, 1 << 30, 0) * 1048576.0);
    else return 0;
#undef ARG
    return 1;
}

static void opts_default(train_opts *o) {
    memset(o, 0, sizeof *o);
    o->tc = lc_train_cfg_default();
    o->seq_len = 1024;
    o->grad_accum = 8;
    o->val_every = 10;
    o->val_seqs = 8;
    o->val_records = 200;
    o->lr1 = 1e-2f;
    o->lr2 = 1e-4f;
    o->shard_mb = 512;
}

static void stage_free(stage_result *r) {
    free(r->train_loss);
    free(r->val_loss);
    free(r->layer_before);
    free(r->layer_after);
    memset(r, 0, sizeof *r);
}

/* stage 1: mean distillation loss over the validation chunks (layer: per layer);
   stage 2: token-weighted cross-entropy */
/* Stage 1's layers: the block [b0, b1) trained (--layers), this process's share
   [my0, my1) of it (--mpi), and x, the hidden state carried between blocks. */
typedef struct s1_cache s1_cache;
typedef struct {
    int b0, b1, my0, my1;
    float *x;
    s1_cache *cache;              /* distill --inputs: the states entering my0, read from disk */
} s1_block;

/* ---- cached block inputs: `cache-inputs` writes them, `distill --inputs` reads them ----
   DIR/layer-A/shard-NNNNN.safetensors hold the teacher's hidden state entering
   layer A, one F32 tensor (T, dim) per sequence: "val.I" for validation
   sequence I, "train.I" for training chunk I (only the chunks the run's
   --tokens / --seed / --grad-accum visit). Each shard is written atomically, so
   an interrupted cache-inputs resumes where it stopped. */
struct s1_cache {
    char dir[1100];
    int layer, n_shards;
    int *train_shard, *val_shard; /* shard of each sequence, -1: not cached */
};

static void cache_layer_dir(char *buf, size_t cap, const char *dir, int layer) {
    snprintf(buf, cap, "%s/layer-%d", dir, layer);
}

static void cache_shard_path(char *buf, size_t cap, const char *layer_dir, long s) {
    snprintf(buf, cap, "%s/shard-%05ld.safetensors", layer_dir, s);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void cache_free(s1_cache *c) {
    if (!c) return;
    free(c->train_shard);
    free(c->val_shard);
    free(c);
}

/* Indexes DIR/layer-A: which shard holds which sequence; the shards must have
   been written for this model's width and this sequence length and data. */
static s1_cache *cache_open(const char *dir, int layer, const tool_data *d, const char *data, int dim,
                            const tool_fp *fp) {
    s1_cache *c = (s1_cache *)calloc(1, sizeof *c);
    char path[1200], want[32];
    long i;
    if (!c) return fprintf(stderr, "lolcats: out of memory\n"), NULL;
    cache_layer_dir(c->dir, sizeof c->dir, dir, layer);
    c->layer = layer;
    c->train_shard = (int *)malloc(sizeof(int) * (size_t)(d->n > 0 ? d->n : 1));
    c->val_shard = (int *)malloc(sizeof(int) * (size_t)(d->n_val > 0 ? d->n_val : 1));
    if (!c->train_shard || !c->val_shard) { cache_free(c); fprintf(stderr, "lolcats: out of memory\n"); return NULL; }
    for (i = 0; i < d->n; i++) c->train_shard[i] = -1;
    for (i = 0; i < d->n_val; i++) c->val_shard[i] = -1;
    for (;; c->n_shards++) {
        lc_st_file *f = NULL;
        lc_error err;
        const char *v;
        int k;
        cache_shard_path(path, sizeof path, c->dir, c->n_shards);
        if (!file_exists(path)) break;
        if (lc_st_open(&f, path, &err)) { tool_report(&err); cache_free(c); return NULL; }
        if ((k = tool_fp_check(fp, f, path)) > 0) {
            fprintf(stderr, "lolcats: error: --inputs %s: %s was cached from another teacher or data (%d "
                    "difference%s above): run cache-inputs with this run's model and data options\n", dir,
                    path, k, k > 1 ? "s" : "");
            lc_st_close(f); cache_free(c); return NULL;
        }
        snprintf(want, sizeof want, "%d", d->seq_len);
        if (!(v = lc_st_meta(f, "seq_len")) || strcmp(v, want) || !(v = lc_st_meta(f, "data")) || strcmp(v, data)) {
            fprintf(stderr, "lolcats: %s was cached for --data %s --seq-len %s, this run has --data %s --seq-len %d: "
                    "run cache-inputs with this run's data options\n", path, lc_st_meta(f, "data") ? lc_st_meta(f, "data") : "?",
                    lc_st_meta(f, "seq_len") ? lc_st_meta(f, "seq_len") : "?", data, d->seq_len);
            lc_st_close(f); cache_free(c); return NULL;
        }
        for (k = 0; k < lc_st_count(f); k++) {
            const lc_tensor *t = lc_st_tensor_at(f, k);
            char *e;
            long idx;
            int val = !strncmp(t->name, "val.", 4);
            if (!val && strncmp(t->name, "train.", 6)) continue;
            idx = strtol(t->name + (val ? 4 : 6), &e, 10);
            if (*e || idx < 0 || idx >= (val ? d->n_val : d->n) || t->ndim != 2 || t->shape[0] != d->seq_len ||
                t->shape[1] != dim || t->dtype != LOLCATS_DTYPE_F32) {
                fprintf(stderr, "lolcats: %s: tensor %s does not fit this run (%ld validation and %ld training "
                        "sequences of %d x %d floats): was the cache made with other data options?\n", path, t->name,
                        d->n_val, d->n, d->seq_len, dim);
                lc_st_close(f); cache_free(c); return NULL;
            }
            (val ? c->val_shard : c->train_shard)[idx] = c->n_shards;
        }
        lc_st_close(f);
    }
    if (c->n_shards == 0) {
        fprintf(stderr, "lolcats: --inputs %s: no cached inputs of layer %d (%s/shard-00000.safetensors): run "
                "`lolcats cache-inputs --layers %d:...` with this run's data options first\n", dir, layer, c->dir, layer);
        cache_free(c);
        return NULL;
    }
    return c;
}

/* x (T, dim) = the cached state of one sequence (val: validation sequence idx) */
static int cache_read(const s1_cache *c, int val, long idx, float *x, lc_error *err) {
    int s = (val ? c->val_shard : c->train_shard)[idx];
    char path[1200], name[40];
    lc_st_file *f = NULL;
    const lc_tensor *t;
    int rc;
    if (s < 0) {
        lc_error_set(err, LOLCATS_ERR_ARG, "%s: %s sequence %ld is not cached (cache-inputs was run with other "
                     "--tokens, --seed or --grad-accum): run it again with this run's options", c->dir,
                     val ? "validation" : "training", idx);
        return 1;
    }
    cache_shard_path(path, sizeof path, c->dir, s);
    snprintf(name, sizeof name, "%s.%ld", val ? "val" : "train", idx);
    if (lc_st_open(&f, path, err)) return 1;
    t = lc_st_find(f, name);
    rc = !t ? (lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: tensor %s is gone (the cache changed under this run)", path,
                            name), 1)
            : lc_tensor_to_f32(t, x, err) != LOLCATS_OK;
    lc_st_close(f);
    return rc;
}

static int s1_owner(const s1_block *b, int l) {  /* the rank that trains layer l (tool_mpi_share's split) */
    int n = b->b1 - b->b0, s = tool_mpi_size(), r;
    for (r = 0; r < s; r++)
        if (l - b->b0 < (int)((long)n * (r + 1) / s)) return r;
    return s - 1;
}

/* One sequence of stage 1 on this process's layers: loss (the sum of their
   terms) and ll (per layer, 0 elsewhere). The whole model in one process is
   lc_train_distill_step; otherwise the teacher runs up to my0 and the block
   [my0, my1) trains -- the same per-layer arithmetic, bit for bit. */
static int s1_seq(lc_train *t, const s1_block *b, const int *tok, int val, long idx, int T, int backward,
                  double *loss, double *ll, lc_error *err) {
    int L = t->model->cfg.n_layers, l;
    *loss = 0;
    if (b->b0 == 0 && b->b1 == L && tool_mpi_size() == 1)
        return lc_train_distill_step(t, tok, T, backward, loss, ll, err) != LOLCATS_OK;
    for (l = 0; ll && l < L; l++) ll[l] = 0;
    if (b->cache && b->my0 > 0) {   /* the teacher's state entering my0, from disk */
        if (cache_read(b->cache, val, idx, b->x, err)) return 1;
    } else {
        if (lc_train_embed_tokens(t, tok, T, b->x, err)) return 1;
        if (b->my0 > 0 && lc_train_distill_block(t, b->x, T, 0, b->my0, 0, 0, NULL, NULL, err)) return 1;
    }
    if (b->my1 > b->my0 && lc_train_distill_block(t, b->x, T, b->my0, b->my1, 1, backward, loss, ll, err)) return 1;
    return 0;
}

/* Every rank gets the owners' feature maps, window factors and biases (and
   their AdamW moments) of the block, so that rank 0 writes the whole model. */
static void s1_sync(lc_train *t, const s1_block *b) {
    const lc_model_config *c = &t->model->cfg;
    size_t per = (size_t)c->n_heads * c->head_dim * t->cfg.feature_dim, H = (size_t)c->n_heads;
    float *base[3];
    int l, k;
    if (tool_mpi_size() == 1) return;
    base[0] = t->params; base[1] = t->adam_m; base[2] = t->adam_v;
    for (l = b->b0; l < b->b1; l++) {
        int owner = s1_owner(b, l);
        for (k = 0; k < 3; k++) {
            float *p = base[k];
            tool_mpi_bcast(p + (t->fmap_q - t->params) + (size_t)l * per, per * sizeof(float), owner);
            tool_mpi_bcast(p + (t->fmap_k - t->params) + (size_t)l * per, per * sizeof(float), owner);
            tool_mpi_bcast(p + (t->wf - t->params) + (size_t)l * H, H * sizeof(float), owner);
            if (t->fbq) {
                tool_mpi_bcast(p + (t->fbq - t->params) + (size_t)l * H, H * sizeof(float), owner);
                tool_mpi_bcast(p + (t->fbk - t->params) + (size_t)l * H, H * sizeof(float), owner);
            }
        }
    }
}

/* Validation loss: stage 1, the mean per-layer loss over the block's layers
   and the validation sequences (summed over ranks in one fixed order, so any
   number of processes gets the same value); stage 2, the mean next-token loss. */
static int validate(lc_train *t, const s1_block *b, const tool_data *d, int stage, double *val, double *layer,
                    lc_error *err) {
    long i;
    int T = d->seq_len, L = t->model->cfg.n_layers, l;
    double sum = 0, *ll = NULL, *acc = NULL;
    long long cnt = 0;
    if (stage == 1) {
        ll = (double *)calloc(2 * (size_t)L, sizeof(double));
        if (!ll) return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory"), 1;
        acc = ll + L;
    }
    for (i = 0; i < d->n_val; i++) {
        double loss;
        int ns;
        if (stage == 2 && i % tool_mpi_size() != tool_mpi_rank()) continue;   /* data parallel */
        if (stage == 1) {
            if (s1_seq(t, b, d->val_tokens + (size_t)i * T, 1, i, T, 0, &loss, ll, err)) { free(ll); return 1; }
            for (l = 0; l < L; l++) acc[l] += ll[l];
        } else {
            float kf = t->cfg.kl_factor, cf = t->cfg.ce_factor;
            lc_status st;
            t->cfg.kl_factor = 0.0f;   /* validation is the plain next-token loss, whatever stage 2 trains on */
            t->cfg.ce_factor = 1.0f;
            st = lc_train_lm_step(t, d->val_tokens + (size_t)i * T, d->val_labels + (size_t)i * T, T, 0, &loss, &ns,
                                  err);
            t->cfg.kl_factor = kf;
            t->cfg.ce_factor = cf;
            if (st) { free(ll); return 1; }
            sum += loss * ns;
            cnt += ns;
        }
    }
    if (stage == 2 && tool_mpi_size() > 1) {   /* every rank gets the whole sum */
        double sc[2];
        sc[0] = sum;
        sc[1] = (double)cnt;
        tool_mpi_sum_f64(sc, 2);
        sum = sc[0];
        cnt = (long long)sc[1];
    }
    if (stage == 1 && d->n_val > 0) {
        tool_mpi_sum_f64(acc, (size_t)L);
        for (l = b->b0; l < b->b1; l++) {   /* kept softmax layers have no loss */
            sum += acc[l];
            cnt += !(t->cfg.softmax_layers && t->cfg.softmax_layers[l]);
        }
        cnt *= (long long)d->n_val;
        for (l = 0; layer && l < L; l++) layer[l] = acc[l] / (double)d->n_val;
    }
    free(ll);
    *val = cnt ? sum / (double)cnt : (double)NAN;
    return 0;
}

/* The trainer's resident memory now, in MiB: /proc/self/statm's second field
   (resident pages); -1 where that file cannot be read (not Linux). */
static long resident_mib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size, res;
    long page = sysconf(_SC_PAGESIZE);
    int ok;
    if (!f) return -1;
    ok = fscanf(f, "%lu %lu", &size, &res) == 2;
    fclose(f);
    return ok && page > 0 ? (long)((double)res * (double)page / 1048576.0 + 0.5) : -1;
}

static void progress(int stage, long long done, long long total, double t0, double loss, float lr, int tty) {
    double el = now_s() - t0, rate = el > 0 ? (double)done / el : 0, eta = rate > 0 ? (double)(total - done) / rate : 0;
    long mib = resident_mib();
    char mem[32] = "";
    if (mib >= 0) snprintf(mem, sizeof mem, "  mem %ld MiB", mib);
    fprintf(stderr, "%s[stage %d] %lld/%lld tokens  %.0f tok/s  ETA %d:%02d  loss %.5f  lr %.2g%s%s", tty ? "\r" : "",
            stage, done, total, rate, (int)(eta / 60), (int)eta % 60, loss, (double)lr, mem, tty ? "   " : "\n");
    fflush(stderr);
}

static void state_path(char *buf, size_t cap, const char *ckpt) { snprintf(buf, cap, "%s.state", ckpt); }

/* What cached block inputs depend on: the teacher and the data options. */
static int cache_record(tool_fp *r, const train_opts *o, const tool_teacher_fp *tfp) {
    char buf[160];
    memset(r, 0, sizeof *r);
    tool_teacher_fp_str(tfp, buf, sizeof buf);
    tool_fp_add(r, "teacher", "teacher (--model)", "%s", buf);
    if (strcmp(o->data, "random") && tool_fp_data(buf, sizeof buf, o->data)) return 1;
    tool_fp_add(r, "data", "--data", "%s", strcmp(o->data, "random") ? buf : "random");
    tool_fp_add(r, "seq_len", "--seq-len", "%d", o->seq_len);
    tool_fp_add(r, "val_seqs", "--val-seqs", "%d", o->val_seqs);
    tool_fp_add(r, "val_records", "--val-records", "%d", o->val_records);
    tool_fp_add(r, "max_records", "--max-records", "%ld", o->max_records);
    if (!strcmp(o->data, "random")) tool_fp_add(r, "data_seed", "--seed (of --data random)", "%llu",
                                                (unsigned long long)o->seed);
    return 0;
}

/* What a stage's arithmetic depends on (tc: the stage's effective config),
   recorded in its state: a resumed run must agree on every entry. */
static int stage_record(tool_fp *r, const train_opts *o, int stage, const lc_train_cfg *tc, const s1_block *b,
                        long long budget, float lr, const lc_lolcats *lp_in, const tool_teacher_fp *tfp) {
    if (cache_record(r, o, tfp)) return 1;
    tool_fp_add(r, "stage", "stage", "%d", stage);
    tool_fp_add(r, "seed", "--seed", "%llu", (unsigned long long)o->seed);
    tool_fp_add(r, "grad_accum", "--grad-accum", "%d", o->grad_accum);
    tool_fp_add(r, "tokens", "--tokens (this stage's budget)", "%lld", budget);
    tool_fp_add(r, "lr", stage == 1 ? "--lr / --distill-lr" : "--lr / --finetune-lr", "%.9g", (double)lr);
    tool_fp_add(r, "val_every", "--val-every", "%d", o->val_every);
    tool_fp_add(r, "mse_factor", "--mse-factor", "%.9g", (double)tc->mse_factor);
    tool_fp_add(r, "xent_factor", "--xent-factor", "%.9g", (double)tc->xent_factor);
    tool_fp_add(r, "variant", "--variant", "%s", tc->hybrid.variant == LOLCATS_WINDOW_TK ? "tk" : "sw");
    tool_fp_add(r, "window", "--window", "%d", tc->hybrid.window);
    if (tc->hybrid.sinks) tool_fp_add(r, "sinks", "--sinks", "%d", tc->hybrid.sinks);
    if (tc->gate) tool_fp_add(r, "gate", "--gate", "%d", tc->gate);   /* only when on: older states resume */
    if (tool_compute_name()) tool_fp_add(r, "compute", "--compute", "%s", tool_compute_name());   /* likewise */
    if (stage == 2 && tc->gate_stage2) tool_fp_add(r, "gate_stage2", "--gate-stage2", "%d", tc->gate_stage2);
    tool_fp_add(r, "feature_map", "--feature-map", "%s", lc_fmap_act_name(tc->fmap.act));
    tool_fp_add(r, "feature_dim", "--feature-dim", "%d", tc->feature_dim);
    tool_fp_add(r, "halfspace", "--halfspace", "%d", tc->fmap.halfspace);
    tool_fp_add(r, "fmap_bias", "--fmap-bias", "%d", tc->fmap_bias);
    if (stage == 1) tool_fp_add(r, "init", "--init", "%s", tc->fmap_init ? "kaiming" : "identity");
    if (stage == 2) tool_fp_add(r, "lora_rank", "--lora-rank", "%d", tc->lora_rank);
    if (stage == 2) tool_fp_add(r, "lora_alpha", "--lora-alpha", "%.9g", (double)tc->lora_alpha);
    if (stage == 2 && kl_on(tc)) {   /* recorded only when asked for: older states still resume */
        tool_fp_add(r, "kl_factor", "--kl-factor", "%.9g", (double)tc->kl_factor);
        tool_fp_add(r, "kl_temp", "--kl-temp", "%.9g", (double)tc->kl_temp);
        tool_fp_add(r, "ce_factor", "--ce-factor", "%.9g", (double)tc->ce_factor);
    }
    tool_fp_add(r, "train_fmaps", "--train-feature-maps", "%d", o->train_fmaps);
    tool_fp_add(r, "layers", "--layers", "%d:%d", b->b0, b->b1);
    if (o->softmax_arg) tool_fp_add(r, "softmax_layers", "--softmax-layers", "%s", o->softmax_arg);
    else if (tc->softmax_layers && lp_in) {   /* only when kept: older state files stay valid */
        char sl[160];
        lc_softmax_layers_format(sl, sizeof sl, tc->softmax_layers, lp_in->n_layers);
        tool_fp_add(r, "softmax_layers", "the --lolcats checkpoint's softmax_layers", "%s", sl);
    }
    if (lp_in) tool_fp_add(r, "lolcats_in", "the stage 1 checkpoint (--lolcats)", "%016llx",
                           (unsigned long long)tool_fp_lolcats(lp_in));
    if (o->teacher_lora) tool_fp_add(r, "attention", "--softmax", "%s", "softmax");
    return 0;
}

static double peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_maxrss / 1024.0;  /* kilobytes on Linux */
}

static double weight_bytes(const lc_weight *w) {
    return (double)w->rows * (double)lc_dtype_row_bytes(w->dtype, w->cols);
}

/* --max-memory: the fastest of (all weights resident | one layer's pages at a
   time) x (stage 2: keep every layer's activations | recompute them) that fits
   the budget with the data and a fixed overhead; 1 (after saying why) when
   none does. */
static int plan_memory(const train_opts *o, int stage, const lc_model *m, const tool_data *d, lc_train_cfg *tc) {
    const double MiB = 1048576.0, overhead = 48 * MiB;
    double budget = o->max_mem_mb * MiB, all_w = 0, layer_w = 0, emb_w, data, need = 0, acts = 0, w = 0;
    int l, k;
    for (l = 0; l < m->cfg.n_layers; l++) {
        const lc_layer_weights *lw = &m->layers[l];
        double b = weight_bytes(&lw->wq) + weight_bytes(&lw->wk) + weight_bytes(&lw->wv) + weight_bytes(&lw->wo) +
                   weight_bytes(&lw->w1) + weight_bytes(&lw->w2) + weight_bytes(&lw->w3);
        all_w += b;
        if (b > layer_w) layer_w = b;
    }
    all_w += weight_bytes(&m->tok_emb) + (m->cfg.tied ? 0 : weight_bytes(&m->wcls));
    emb_w = weight_bytes(&m->wcls);  /* the classifier is read whole; of the embedding only the rows used */
    data = (double)(d->n + d->n_val) * d->seq_len * 2 * sizeof(int);
    for (k = 0; k < 4; k++) {
        tc->recompute = stage == 2 && (k & 1);
        tc->release_pages = k >> 1;
        if (stage == 1 && (k & 1)) continue;
        acts = (double)lc_train_memory_bytes(m, tc);
        w = tc->release_pages ? 2 * layer_w + (stage == 2 ? emb_w : 0) : all_w;
        need = overhead + data + acts + w;
        if (need <= budget) break;
    }
    if (tool_mpi_rank() == 0)
        fprintf(stderr, "memory plan (stage %d): training state + activations %.0f MiB, weights resident %.0f MiB%s, "
                        "data %.0f MiB: about %.0f MiB of --max-memory %.0f MiB%s\n", stage, acts / MiB, w / MiB,
                tc->release_pages ? " (one layer at a time)" : "", data / MiB, need / MiB, o->max_mem_mb,
                tc->recompute ? "; activation checkpointing on" : "");
    if (need > budget) {
        fprintf(stderr, "lolcats: --max-memory %.0f MiB is too small for this run even with activation checkpointing "
                        "and per-layer page release (about %.0f MiB needed at --seq-len %d): raise --max-memory or "
                        "lower --seq-len\n", o->max_mem_mb, need / MiB, d->seq_len);
        return 1;
    }
    return 0;
}

/* a SIGINT/SIGTERM arrived (outsafe.h); under MPI on any rank, so that all stop at the same step */
static int stop_signal(void) {
    double s = outsafe_stop() != 0;
    if (tool_mpi_size() > 1) tool_mpi_sum_f64(&s, 1);
    return s > 0;
}

/* One training stage. stage 1: distill into out; stage 2: LoRA from lp_in. */
static int run_stage(const train_opts *o, int stage, lc_model *m, const tool_data *d, const lc_lolcats *lp_in,
                     long long budget, float lr, const char *out, stage_result *res) {
    lc_train t;
    lc_train_cfg tc = o->tc;
    lc_train_progress pr;
    lc_adamw_cfg opt = lc_adamw_cfg_default();
    lc_error err;
    lc_ctx ctx;
    lc_rng rng;
    lc_lolcats view;
    FILE *jl = NULL;
    char spath[1100], seqs[32], accs[32], lrs[32], stages[8], lays[32], klm[64];
    const char *extras[16], *skv[2 * (8 + TOOL_FP_MAX)];
    int n_save_meta = 1, n_skv = 0;
    tool_fp cache_fp, fp;             /* what the cached inputs and this stage depend on */
    tool_teacher_fp *tfp = (tool_teacher_fp *)malloc(sizeof *tfp);
    char why[1300];
    int T = d->seq_len, L = m->cfg.n_layers, rc = 1, resumed = 0, wrote_ckpt = 0, stop = 0;
    int rank0 = tool_mpi_rank() == 0, tty = rank0 && isatty(2);
    double plain_last = 0;
    s1_block blk;
    long long total_steps, start_step;
    double t0, loss = 0;
    memset(&err, 0, sizeof err);
    memset(&pr, 0, sizeof pr);
    memset(&t, 0, sizeof t);
    memset(&blk, 0, sizeof blk);
    blk.b0 = o->lay1 && stage == 1 ? o->lay0 : 0;
    blk.b1 = o->lay1 && stage == 1 ? o->lay1 : L;
    if (blk.b1 > L) {
        fprintf(stderr, "lolcats: --layers %d:%d: the model has %d layers (0:%d)\n", o->lay0, o->lay1, L, L);
        return 2;
    }
    if (!tfp || tool_teacher_fp_init(tfp, o->model_path, m) || cache_record(&cache_fp, o, tfp)) { free(tfp); return 1; }
    blk.my0 = blk.b0 + (int)((long)(blk.b1 - blk.b0) * tool_mpi_rank() / tool_mpi_size());
    blk.my1 = blk.b0 + (int)((long)(blk.b1 - blk.b0) * (tool_mpi_rank() + 1) / tool_mpi_size());
    if (stage == 1 && !(blk.b0 == 0 && blk.b1 == L && tool_mpi_size() == 1)) {
        blk.x = (float *)malloc(sizeof(float) * (size_t)T * m->cfg.dim);
        if (!blk.x) { fprintf(stderr, "lolcats: out of memory\n"); free(tfp); return 1; }
        if (o->inputs && blk.my0 > 0 &&
            !(blk.cache = cache_open(o->inputs, blk.my0, d, o->data, m->cfg.dim, &cache_fp))) {
            free(blk.x);
            free(tfp);
            return 1;
        }
    }
    lc_ctx_init(&ctx);
    tool_compute_apply(&ctx);   /* --compute */
    tc.max_tokens = T;
    tc.seed = o->seed;
    tc.attn = LOLCATS_ATTN_HYBRID;
    tc.softmax_layers = o->softmax ? o->softmax : stage == 2 ? lp_in->softmax_layers : NULL;
    if (stage == 1) {
        tc.trainable = LOLCATS_TRAIN_FMAPS;
        tc.lora_rank = 0;
        tc.fmap_bias = stage1_bias(o);
        tc.distill_only = 1;   /* teacher forced: one layer's activations at a time */
        tc.kl_factor = 0;      /* stage 2's loss weights */
        tc.ce_factor = 1;
    } else {
        tc.fmap_bias = lp_in->fbq != NULL;
        tc.trainable = LOLCATS_TRAIN_LORA | (o->train_fmaps ? LOLCATS_TRAIN_FMAPS : 0);
        tc.fmap = lp_in->fmap;
        tc.feature_dim = lp_in->feature_dim;
        tc.hybrid = lp_in->hybrid;
        tc.xent_factor = 0;
        tc.gate = lp_in->gate_w != NULL;   /* >>gate-train: from the checkpoint */
    }
    res->stage = stage;
    res->L = L;
    snprintf(res->ckpt, sizeof res->ckpt, "%s", out);
    if (o->max_mem_mb > 0 && plan_memory(o, stage, m, d, &tc)) { free(blk.x); cache_free(blk.cache); free(tfp); return 2; }
    if (lc_train_init(&t, &ctx, m, &tc, &err)) { free(blk.x); cache_free(blk.cache); free(tfp); return tool_report(&err); }
    if (o->teacher_lora) t.cfg.attn = LOLCATS_ATTN_SOFTMAX;   /* >>teacher-lora: the maps stay, unused */
    if (lp_in && lc_train_set_lolcats(&t, lp_in, &err)) { tool_report(&err); goto done; }
    total_steps = budget / ((long long)T * o->grad_accum);
    if (total_steps < 1) total_steps = 1;
    res->train_loss = (double *)malloc(sizeof(double) * (size_t)total_steps);
    res->val_loss = (double *)malloc(sizeof(double) * (size_t)total_steps);
    res->layer_before = (double *)calloc((size_t)L, sizeof(double));
    res->layer_after = (double *)calloc((size_t)L, sizeof(double));
    if (!res->train_loss || !res->val_loss || !res->layer_before || !res->layer_after) {
        fprintf(stderr, "lolcats: out of memory\n");
        goto done;
    }
    {
        long long k;
        for (k = 0; k < total_steps; k++) res->train_loss[k] = res->val_loss[k] = (double)NAN;
    }
    res->val_first = res->val_best = (double)NAN;
    /* the starting point, before any state is loaded (the report's "before") */
    if (d->n_val > 0 && validate(&t, &blk, d, stage, &res->val_first, stage == 1 ? res->layer_before : NULL, &err)) {
        tool_report(&err);
        goto done;
    }
    lc_plateau_init(&pr.sched, lr, 0.1f, 10, 1e-5f);
    pr.best_val = HUGE_VAL;
    lc_rng_seed(&rng, o->seed);
    memcpy(pr.rng, rng.s, sizeof pr.rng);
    state_path(spath, sizeof spath, out);
    /* what a resumed run must share with the first one */
    snprintf(seqs, sizeof seqs, "%d", T);
    snprintf(accs, sizeof accs, "%d", o->grad_accum);
    snprintf(lrs, sizeof lrs, "%.9g", (double)lr);
    snprintf(stages, sizeof stages, "%d", stage);
    extras[0] = "data"; extras[1] = o->data;
    extras[2] = "seq_len"; extras[3] = seqs;
    extras[4] = "grad_accum"; extras[5] = accs;
    extras[6] = "lr0"; extras[7] = lrs;
    extras[8] = "stage"; extras[9] = stages;
    extras[10] = "model"; extras[11] = o->model_path;
    if (stage == 1 && o->lay1) {   /* the block this checkpoint trained, for `lolcats stitch` */
        snprintf(lays, sizeof lays, "%d:%d", blk.b0, blk.b1);
        extras[12] = "layers"; extras[13] = lays;
        n_save_meta = 2;
    }
    if (stage == 2 && kl_on(&tc)) {   /* how stage 2 was trained, in the checkpoint */
        snprintf(klm, sizeof klm, "%.6g,%.6g,%.6g", (double)tc.ce_factor, (double)tc.kl_factor, (double)tc.kl_temp);
        extras[12] = "stage2_loss_ce_kl_temp"; extras[13] = klm;
        n_save_meta = 2;
    }
    if (tool_compute_name()) {   /* --compute bf16, in the checkpoint */
        extras[10 + 2 * n_save_meta] = "compute"; extras[11 + 2 * n_save_meta] = tool_compute_name();
        n_save_meta++;
    }
    if (stage_record(&fp, o, stage, &tc, &blk, budget, lr, lp_in, tfp)) goto done;
    n_skv = tool_fp_meta(&fp, extras, 6, skv);
    if (o->resume) {
        if (file_exists(spath)) {   /* not fopen: a FIFO would block (lc_st_open refuses it) */
            lc_st_file *sf = NULL;
            int i, nd;
            if (lc_st_open(&sf, spath, &err)) { tool_report(&err); goto done; }
            if ((nd = tool_fp_check(&fp, sf, spath)) > 0) {
                fprintf(stderr, "lolcats: error: --resume: %s was written by another setup (%d difference%s above): "
                        "resume with the same teacher, data and options, or start again without --resume\n", spath,
                        nd, nd > 1 ? "s" : "");
                lc_st_close(sf);
                goto done;
            }
            if (nd < 0)
                fprintf(stderr, "lolcats: warning: %s predates option fingerprints: only the data, --seq-len, "
                        "--grad-accum, --lr and the stage are checked\n", spath);
            for (i = 0; i < 12; i += 2) {
                const char *v = lc_st_meta(sf, extras[i]);
                if (strcmp(extras[i], "model") && (!v || strcmp(v, extras[i + 1]))) {
                    fprintf(stderr, "lolcats: %s was written with %s = %s, this run has %s: resume with the same "
                                    "options\n", spath, extras[i], v ? v : "?", extras[i + 1]);
                    lc_st_close(sf);
                    goto done;
                }
            }
            lc_st_close(sf);
            if (lc_train_load_state(&t, &pr, spath, &err)) { tool_report(&err); goto done; }
            memcpy(rng.s, pr.rng, sizeof pr.rng);
            resumed = 1;
            wrote_ckpt = pr.best_step > 0;
            fprintf(stderr, "lolcats: resuming stage %d from %s at step %lld (%lld tokens)\n", stage, spath,
                    (long long)t.step, (long long)pr.tokens);
        } else {
            fprintf(stderr, "lolcats: --resume: no %s yet, starting from the beginning\n", spath);
        }
    }
    if (o->json_log && rank0) {
        jl = fopen(o->json_log, resumed || stage == 2 ? "ab" : "wb");
        if (!jl) { fprintf(stderr, "lolcats: cannot write %s: %s\n", o->json_log, strerror(errno)); goto done; }
    }
    start_step = t.step;
    if (start_step >= total_steps)
        fprintf(stderr, "lolcats: stage %d already finished (%lld steps)\n", stage, (long long)t.step);
    t0 = now_s();
    while (t.step < total_steps) {
        double sum = 0, val = (double)NAN, parts[2] = {0, 0};   /* parts: ce, kl (--kl-factor) */
        int a, validated = 0;
        lc_train_zero_grad(&t);
        for (a = 0; a < o->grad_accum; a++) {
            long idx = tool_data_pick((tool_data *)d, o->seed, pr.seq);
            const int *tok = d->tokens + (size_t)idx * T;
            int ns;
            if (stage == 2 && a % tool_mpi_size() != tool_mpi_rank()) {   /* another rank's sequence */
                pr.seq++;
                pr.tokens += T;
                continue;
            }
            if (stage == 1) {
                if (s1_seq(&t, &blk, tok, 0, idx, T, 1, &loss, NULL, &err)) { tool_report(&err); goto done; }
            } else if (lc_train_lm_step(&t, tok, d->labels + (size_t)idx * T, T, 1, &loss, &ns, &err)) {
                tool_report(&err);
                goto done;
            }
            sum += loss;
            if (stage == 2 && kl_on(&tc)) {
                double pc, pk;
                lc_train_loss_parts(&t, &pc, &pk);
                parts[0] += pc;
                parts[1] += pk;
            }
            pr.seq++;
            pr.tokens += T;
        }
        tool_mpi_sum_f64(&sum, 1);  /* every rank sees the whole step's loss */
        if (stage == 2 && kl_on(&tc)) tool_mpi_sum_f64(parts, 2);
        /* stage 2 data parallel: the sequences' gradients summed over the ranks */
        if (stage == 2) tool_mpi_sum_f32(t.grads, t.n_params);
        loss = sum / o->grad_accum;
        if (!isfinite(loss) || !tool_all_finite(t.grads, t.n_params)) {   /* never carried into the state */
            if (tty) fputc('\n', stderr);
            tool_nonfinite_stop(stage, (long long)t.step + 1, isfinite(loss) ? "a gradient (the loss is finite)"
                                : stage == 1 ? "the distillation (attention output MSE) loss" : "the LM loss",
                                isfinite(loss) ? (double)NAN : loss,
                                t.step == start_step ? TOOL_NF_START : TOOL_NF_LATER, (double)pr.sched.lr, out, spath);
            goto done;
        }
        opt.lr = pr.sched.lr;
        if (tool_teacher_fp_verify(tfp, why, sizeof why)) {   /* before this step's checkpoint or state */
            if (tty) fputc('\n', stderr);
            fprintf(stderr, "lolcats: error: the teacher changed during the run: %s: stopping at step %lld; the "
                    "files saved so far (%s, %s) are kept: restore the model, then continue with --resume\n", why,
                    (long long)t.step + 1, out, spath);
            goto done;
        }
        lc_train_adamw(&t, &opt, 1.0f / (float)o->grad_accum);
        if (!tool_all_finite(t.params, t.n_params)) {
            if (tty) fputc('\n', stderr);
            tool_nonfinite_stop(stage, (long long)t.step, "a parameter after the update", (double)NAN,
                                TOOL_NF_UPDATE, (double)opt.lr, out, spath);
            goto done;
        }
        if (t.step - 1 < total_steps) res->train_loss[t.step - 1] = loss;
        if (d->n_val > 0 && ((o->val_every > 0 && t.step % o->val_every == 0) || t.step == total_steps)) {
            if (validate(&t, &blk, d, stage, &val, NULL, &err)) { tool_report(&err); goto done; }
            validated = 1;
            res->val_loss[t.step - 1] = val;
            if (!isfinite(val)) {
                if (tty) fputc('\n', stderr);
                tool_nonfinite_stop(stage, (long long)t.step, "the validation loss", val, TOOL_NF_LATER,
                                    (double)opt.lr, out, spath);
                goto done;
            }
            lc_plateau_step(&pr.sched, val);
            if (val < pr.best_val) {   /* the best checkpoint, then the state that records it */
                pr.best_val = val;
                pr.best_step = t.step;
                if (stage == 1) s1_sync(&t, &blk);
                lc_train_lolcats_view(&t, &view);
                if (rank0 && lc_lolcats_save(&view, out, extras + 10, n_save_meta, &err)) { tool_report(&err); goto done; }
                wrote_ckpt = 1;
            }
        }
        if (d->n_val == 0 && t.step == total_steps) {
            if (stage == 1) s1_sync(&t, &blk);
            lc_train_lolcats_view(&t, &view);
            if (rank0 && lc_lolcats_save(&view, out, extras + 10, n_save_meta, &err)) { tool_report(&err); goto done; }
            pr.best_step = t.step;
            wrote_ckpt = 1;
        }
        stop = stop_signal();
        if (validated || t.step == total_steps || (o->stop_after > 0 && t.step >= o->stop_after) || stop) {
            memcpy(pr.rng, rng.s, sizeof pr.rng);
            if (stage == 1) s1_sync(&t, &blk);
            if (rank0 && lc_train_save_state(&t, &pr, spath, skv, n_skv, &err)) { tool_report(&err); goto done; }
        }
        if (jl) {
            fprintf(jl, "{\"stage\": %d, \"step\": %lld, \"tokens\": %lld, \"loss\": ", stage,
                    (long long)t.step, (long long)pr.tokens);
            tool_json_num(jl, "%.9g", loss);
            fprintf(jl, ", \"lr\": ");
            tool_json_num(jl, "%.6g", (double)opt.lr);
            if (validated) { fprintf(jl, ", \"val_loss\": "); tool_json_num(jl, "%.9g", val); }
            {   /* the trainer's resident memory (omitted where /proc/self/statm is absent) */
                long mib = resident_mib();
                if (mib >= 0) fprintf(jl, ", \"train_mib\": %ld", mib);
            }
            if (stage == 2 && kl_on(&tc)) {   /* the parts of the loss, unweighted */
                fprintf(jl, ", \"ce\": ");
                tool_json_num(jl, "%.9g", parts[0] / o->grad_accum);
                fprintf(jl, ", \"kl\": ");
                tool_json_num(jl, "%.9g", parts[1] / o->grad_accum);
            }
            fprintf(jl, "}\n");
            fflush(jl);
        }
        if (tty || (rank0 && tool_progress_plain_due(&plain_last)))   /* no terminal: a plain line now and then */
            progress(stage, (long long)(t.step - start_step) * T * o->grad_accum,
                     (long long)(total_steps - start_step) * T * o->grad_accum, t0, loss, opt.lr, tty);
        if (validated && rank0) {
            if (tty) fputc('\n', stderr);
            fprintf(stderr, "stage %d step %lld/%lld: tokens %lld, loss %.6f, val %.6f (best %.6f), lr %.3g\n", stage,
                    (long long)t.step, total_steps, (long long)pr.tokens, loss, val, pr.best_val,
                    (double)pr.sched.lr);
        }
        if (o->stop_after > 0 && t.step >= o->stop_after && t.step < total_steps) {
            if (tty) fputc('\n', stderr);
            fprintf(stderr, "lolcats: stopped after step %lld (--stop-after); continue with --resume\n",
                    (long long)t.step);
            rc = 3;
            goto done;
        }
        if (stop && t.step < total_steps) {   /* SIGINT/SIGTERM: the state of this step is saved */
            char what[1300];
            if (tty) fputc('\n', stderr);
            snprintf(what, sizeof what, "stage %d's training state after step %lld is saved in %s", stage,
                     (long long)t.step, spath);
            if (rank0) outsafe_resume_hint(what);
            rc = outsafe_exit_code();
            goto done;
        }
    }
    if (tty) fputc('\n', stderr);
    res->seconds = now_s() - t0;
    res->steps = (int)total_steps;
    res->tokens = pr.tokens;
    res->tok_per_s = res->seconds > 0 ? (double)(t.step - start_step) * T * o->grad_accum / res->seconds : 0;
    res->val_best = pr.best_val;
    if (!wrote_ckpt) {   /* nothing validated better (or no validation): the final parameters */
        if (stage == 1) s1_sync(&t, &blk);
        lc_train_lolcats_view(&t, &view);
        if (rank0 && lc_lolcats_save(&view, out, extras + 10, n_save_meta, &err)) { tool_report(&err); goto done; }
    }
    tool_mpi_barrier();  /* rank 0's files are complete */
    {   /* the best checkpoint must load; its per-layer losses for the report */
        lc_lolcats best;
        if (lc_lolcats_load(&best, out, m, &err)) { tool_report(&err); goto done; }
        if (lc_train_set_lolcats(&t, &best, &err)) { lc_lolcats_free(&best); tool_report(&err); goto done; }
        lc_lolcats_free(&best);
        if (d->n_val > 0 && stage == 1) {
            double v;
            if (validate(&t, &blk, d, 1, &v, res->layer_after, &err)) { tool_report(&err); goto done; }
        }
    }
    res->peak_rss_mib = peak_rss_mib();
    if (rank0) {
        char vl[96];
        if (d->n_val > 0) snprintf(vl, sizeof vl, "val loss %.6f -> best %.6f", res->val_first, res->val_best);
        else snprintf(vl, sizeof vl, "no validation sequences");
        fprintf(stderr, "stage %d done: %lld tokens, %.0f tokens/s, %s, peak RSS %.0f MiB; wrote %s\n", stage,
                (long long)pr.tokens, res->tok_per_s, vl, res->peak_rss_mib, out);
        if (stage == 2 && t.cfg.kl_factor > 0.0f && t.cfg.kl_cache_bytes) {
            long hits, misses;
            int n;
            size_t bytes;
            lc_train_kl_cache(&t, &hits, &misses, &n, &bytes);
            fprintf(stderr, "teacher logits cache: %ld of %ld teacher passes from the cache, %d sequences kept, "
                            "%.0f of %.0f MiB\n", hits, hits + misses, n, (double)bytes / 1048576.0,
                    (double)t.cfg.kl_cache_bytes / 1048576.0);
        }
    }
    if (o->report && rank0) {   /* attention maps of the sample sequence */
        if (train_report_maps(&t, d, o->report, stage)) goto done;
    }
    rc = 0;
done:
    if (jl) fclose(jl);
    lc_train_free(&t);
    free(blk.x);
    cache_free(blk.cache);
    free(tfp);
    return rc;
}

/* ---- reports ---- */
static const unsigned TEACHER_RGB = 0x808080, STUDENT_RGB = 0x1f5fbf, VAL_RGB = 0xd04020;

static int make_dir(const char *dir) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "lolcats: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    return 0;
}

/* ---- labelled --report pictures (tools/plot.h) ---- */
static int train_report_heat_pair(tool_canvas *cv, const float *a0, const float *a1, int T, int scale, float vmax,
                                  int stage, int layer, int head) {
    int side = T * scale, hx = PLOT_HEAT_L + 8, hy = 28 + PLOT_HEAT_T;
    char title[160];
    if (tool_canvas_init(cv, 2 * (side + hx) + PLOT_BAR_W + 24, hy + side + PLOT_HEAT_B + 4)) return 1;
    snprintf(title, sizeof title, "Attention weights after stage %d, layer %d head %d", stage, layer, head);
    plot_text(cv, cv->w / 2, 5, title, 15.0f, 0x202020, PLOT_CENTRE, 0);
    plot_heat(cv, hx, hy, a0, T, T, scale, vmax, "teacher (softmax)", "key position", "query position");
    plot_heat(cv, 2 * hx + side, hy, a1, T, T, scale, vmax, "student (linearized)", "key position", "query position");
    plot_colorbar(cv, 2 * (hx + side) + 12, hy, side, vmax, "attention weight");
    return 0;
}

static void train_report_chart(tool_canvas *cv, const double *const *ys, const int *ns, const unsigned *rgb,
                               int stage) {
    static const char *const names[2] = {"training loss", "validation loss"};
    char title[96];
    plot_spec sp;
    memset(&sp, 0, sizeof sp);
    snprintf(title, sizeof title, "Stage %d loss per optimizer step", stage);
    sp.title = title; sp.xlabel = "optimizer step (faint: per step; line: moving average)";
    sp.ylabel = "loss (log scale)"; sp.names = names; sp.logy = 1; sp.smooth = 1; sp.x0 = 1; sp.dx = 1;
    plot_chart(cv, 0, 0, cv->w, cv->h, &sp, ys, ns, rgb, 2);
}

static void train_report_bars(tool_canvas *cv, const double *bars, int L, const unsigned *rgb) {
    static const char *const names[2] = {"before stage 1", "after stage 1"};
    plot_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.title = "Attention-transfer loss per layer (validation)"; sp.xlabel = "layer";
    sp.ylabel = "MSE (log scale)"; sp.names = names; sp.logy = 1;
    plot_bars(cv, 0, 0, cv->w, cv->h, &sp, bars, L, 2, rgb, 0);
}

static int train_report_maps(lc_train *t, const tool_data *d, const char *dir, int stage) {
    const lc_model_config *c = &t->model->cfg;
    int T = d->seq_len < 128 ? d->seq_len : 128, H = c->n_heads, L = c->n_layers, layers[3], li, hi, scale;
    const int *tok = d->n_val > 0 ? d->val_tokens : d->tokens;
    float *at, *as;
    lc_error err;
    char path[1200];
    if (make_dir(dir)) return 1;
    if (!tool_png_available()) return 0;
    at = (float *)malloc(sizeof(float) * (size_t)H * T * T);
    as = (float *)malloc(sizeof(float) * (size_t)H * T * T);
    if (!at || !as) { free(at); free(as); fprintf(stderr, "lolcats: out of memory\n"); return 1; }
    layers[0] = 0; layers[1] = L / 2; layers[2] = L - 1;
    scale = T <= 64 ? 4 : 2;
    for (li = 0; li < 3; li++) {
        if (li && layers[li] == layers[li - 1]) continue;
        if (lc_train_attention_maps(t, tok, T, layers[li], at, as, &err)) {
            free(at); free(as);
            return tool_report(&err);
        }
        for (hi = 0; hi < H; hi += (H > 1 ? H - 1 : 1)) {
            tool_canvas cv;
            const float *a0 = at + (size_t)hi * T * T, *a1 = as + (size_t)hi * T * T;
            float vmax = 0;
            size_t k;
            for (k = 0; k < (size_t)T * T; k++) {
                if (a0[k] > vmax) vmax = a0[k];
                if (a1[k] > vmax) vmax = a1[k];
            }
            if (train_report_heat_pair(&cv, a0, a1, T, scale, vmax, stage, layers[li], hi)) break;
            snprintf(path, sizeof path, "%s/stage%d_attn_layer%d_head%d.png", dir, stage, layers[li], hi);
            if (tool_png_write(&cv, path) > 0) fprintf(stderr, "lolcats: cannot write %s\n", path);
            tool_canvas_free(&cv);
            if (H == 1) break;
        }
    }
    free(at);
    free(as);
    return 0;
}

static void json_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fprintf(f, "null");
}

static int write_report(const char *dir, const train_opts *o, const stage_result *rs, int n) {
    FILE *f;
    char path[1200], tmp[1240];
    int s, l;
    if (make_dir(dir)) return 1;
    for (s = 0; s < n && tool_png_available(); s++) {
        const stage_result *r = &rs[s];
        tool_canvas cv;
        const double *ys[2];
        int ns[2];
        unsigned rgb[2];
        double *vv;
        if (!r->train_loss) continue;
        /* loss curve: training loss per step, validation loss where measured */
        vv = (double *)malloc(sizeof(double) * (size_t)(r->steps ? r->steps : 1));
        if (!vv) return 1;
        for (l = 0; l < r->steps; l++) vv[l] = r->val_loss[l];
        ys[0] = r->train_loss; ys[1] = vv; ns[0] = ns[1] = r->steps;
        rgb[0] = STUDENT_RGB; rgb[1] = VAL_RGB;
        {   /* validation points joined: fill gaps by holding the last value */
            double last = (double)NAN;
            for (l = 0; l < r->steps; l++) { if (vv[l] == vv[l]) last = vv[l]; else vv[l] = last; }
        }
        if (!tool_canvas_init(&cv, 560, 320)) {
            train_report_chart(&cv, ys, ns, rgb, r->stage);
            snprintf(path, sizeof path, "%s/stage%d_loss.png", dir, r->stage);
            tool_png_write(&cv, path);
            tool_canvas_free(&cv);
        }
        free(vv);
        if (r->stage == 1 && r->L > 0 && isfinite(r->layer_before[0])) {   /* per-layer loss, before / after */
            double *bars = (double *)malloc(sizeof(double) * 2 * (size_t)r->L);
            if (!bars) return 1;
            for (l = 0; l < r->L; l++) { bars[2 * l] = r->layer_before[l]; bars[2 * l + 1] = r->layer_after[l]; }
            rgb[0] = TEACHER_RGB; rgb[1] = STUDENT_RGB;
            if (!tool_canvas_init(&cv, 300 + 40 * r->L, 320)) {
                train_report_bars(&cv, bars, r->L, rgb);
                snprintf(path, sizeof path, "%s/stage1_layer_mse.png", dir);
                tool_png_write(&cv, path);
                tool_canvas_free(&cv);
            }
            free(bars);
        }
    }
    snprintf(path, sizeof path, "%s/summary.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());   /* written whole, then renamed */
    outsafe_tmp(tmp);
    f = fopen(tmp, "wb");
    if (!f) { fprintf(stderr, "lolcats: cannot write %s: %s\n", tmp, strerror(errno)); return 1; }
    fprintf(f, "{\n  \"model\": \"%s\",\n  \"data\": \"%s\",\n  \"seq_len\": %d,\n  \"grad_accum\": %d,\n"
               "  \"png\": %s,\n  \"pictures\": \"stageN_loss.png: training loss (blue) and validation loss "
               "(red) per optimizer step, log scale; stage1_layer_mse.png: per-layer stage 1 loss on the "
               "validation sequences before (grey) and after (blue), log scale; stageN_attn_layerL_headH.png: "
               "teacher (left) and student (right) attention weights on a sample sequence\",\n  \"stages\": [",
            o->model_path, o->data, o->seq_len, o->grad_accum, tool_png_available() ? "true" : "false");
    for (s = 0; s < n; s++) {
        const stage_result *r = &rs[s];
        fprintf(f, "%s\n    {\"stage\": %d, \"checkpoint\": \"%s\", \"steps\": %d, \"tokens\": %lld, "
                   "\"tokens_per_s\": %.1f, \"seconds\": %.2f, \"peak_rss_mib\": %.1f, \"val_loss_before\": ",
                s ? "," : "", r->stage, r->ckpt, r->steps, r->tokens, r->tok_per_s, r->seconds, r->peak_rss_mib);
        json_num(f, r->val_first);
        fprintf(f, ", \"val_loss_best\": ");
        json_num(f, r->val_best);
        if (r->stage == 1 && r->layer_before) {
            fprintf(f, ",\n     \"layer_loss_before\": [");
            for (l = 0; l < r->L; l++) { if (l) fprintf(f, ", "); json_num(f, r->layer_before[l]); }
            fprintf(f, "],\n     \"layer_loss_after\": [");
            for (l = 0; l < r->L; l++) { if (l) fprintf(f, ", "); json_num(f, r->layer_after[l]); }
            fprintf(f, "]");
        }
        fprintf(f, "}");
    }
    fprintf(f, "\n  ]\n}\n");
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "lolcats: cannot write %s: %s\n", path, strerror(errno));
        remove(tmp);
        return 1;
    }
    return tool_png_available() ? tool_report_index(dir, "lolcats --report") : 0;
}

/* ---- the commands ---- */
typedef struct {
    lc_model m;
    lc_tokenizer tok;
    tool_data d;
    int loaded;
} train_env;

static int env_open(train_env *e, train_opts *o) {
    lc_error err;
    tool_data_cfg dc;
    memset(e, 0, sizeof *e);
    memset(&err, 0, sizeof err);
    if (lc_model_load(&e->m, o->model_path, &err)) return tool_report(&err);
    e->loaded = 1;
    tool_fileguard_add_model(o->model_path, &e->m);
    if (!strcmp(o->data, "random")) {   /* seeded token ids: no tokenizer needed */
        long n = o->tokens > 0 ? (long)((o->tokens + o->seq_len - 1) / o->seq_len) : 64;
        if (o->seq_len > e->m.cfg.seq_len && e->m.cfg.seq_len > 0) o->seq_len = e->m.cfg.seq_len;
        if (n > 4096) n = 4096;   /* epochs repeat beyond */
        if (tool_data_random(&e->d, o->seq_len, n, o->val_seqs, e->m.cfg.vocab_size, o->seed, &err))
            return tool_report(&err);
        fprintf(stderr, "data random: %ld training and %ld validation sequences of %d seeded token ids\n", e->d.n,
                e->d.n_val, o->seq_len);
        return 0;
    }
    if (tool_load_tokenizer(&e->tok, &e->m, o->model_path, o->tok_path, &err)) return 1;
    if (o->seq_len > e->m.cfg.seq_len && e->m.cfg.seq_len > 0) {
        fprintf(stderr, "lolcats: --seq-len %d is longer than the model's context %d: using %d\n", o->seq_len,
                e->m.cfg.seq_len, e->m.cfg.seq_len);
        o->seq_len = e->m.cfg.seq_len;
    }
    dc.seq_len = o->seq_len;
    dc.val_records = o->val_records;
    dc.val_seqs = o->val_seqs;
    dc.max_records = o->max_records;
    dc.eos_id = e->m.cfg.eos_id >= 0 ? e->m.cfg.eos_id : e->tok.eos_id;
    if (tool_data_load(&e->d, o->data, &e->tok, &dc, &err)) return tool_report(&err);
    fprintf(stderr, "data %s: %lld tokens, %ld training and %ld validation sequences of %d%s\n", o->data,
            e->d.stream_tokens, e->d.n, e->d.n_val, o->seq_len, e->d.is_jsonl ? " (Alpaca, response labels)" : "");
    return 0;
}

static void env_close(train_env *e) {
    tool_data_free(&e->d);
    lc_tokenizer_free(&e->tok);
    if (e->loaded) lc_model_free(&e->m);
}

static long long default_budget(const train_opts *o, const train_env *e, long long b) {
    return b > 0 ? b : o->tokens > 0 ? o->tokens : (long long)e->d.n * o->seq_len;
}

/* stage 1 output path for linearize: OUT minus .safetensors, plus .stage1.safetensors */
static void stage1_path(char *buf, size_t cap, const char *out) {
    size_t n = strlen(out);
    if (n > 12 && !strcmp(out + n - 12, ".safetensors")) snprintf(buf, cap, "%.*s.stage1.safetensors", (int)(n - 12), out);
    else snprintf(buf, cap, "%s.stage1", out);
}

/* ---- >>teacher-lora: finetune --softmax, LoRA trained through the teacher ----
   The trainer is set up as for stage 2 from identity feature maps (so that its
   checkpoints, states and reports work unchanged), then runs softmax attention
   in every layer (lc_train_cfg.attn); the maps are never read nor trained.
   --merge writes the teacher with LoRA merged as a plain Hugging Face model. */
static void teacher_lora_check(const train_opts *o, int which, const char *cmd) {
    if (!o->teacher_lora) return;
    if (which != 2)
        tool_arg_fail(cmd, "--softmax is an option of finetune (LoRA through the teacher); %s trains the "
                      "linearized model: run `lolcats finetune --softmax` instead", cmd);
    if (o->lolcats_in)
        tool_arg_fail(cmd, "--softmax with --lolcats %s: --softmax trains LoRA on the teacher itself (softmax "
                      "attention), --lolcats on a linearized model: give one of them", o->lolcats_in);
    if (o->train_fmaps)
        tool_arg_fail(cmd, "--softmax with --train-feature-maps: softmax attention has no feature maps to train; "
                      "drop --train-feature-maps");
    if (o->peft)
        tool_arg_fail(cmd, "--softmax with --peft %s: not supported; use --merge DIR (the teacher with LoRA "
                      "merged)", o->peft);
}

static int teacher_lora_identity(lc_lolcats *lp, float **mem, const lc_model *m) {
    lc_fmap_cfg fm = lc_fmap_cfg_default();
    lc_hybrid_cfg hc = lc_hybrid_cfg_default();
    int f = m->cfg.head_dim < 64 ? m->cfg.head_dim : 64;
    *mem = (float *)malloc(sizeof(float) * lc_lolcats_identity_floats(&m->cfg, f));
    if (!*mem) { fprintf(stderr, "lolcats: error: out of memory\n"); return 1; }
    lc_lolcats_init_identity(lp, *mem, &m->cfg, f, &fm, &hc);
    return 0;
}

/* LoRA merged (lc_lolcats_export_hf), then the LoLCATs tensors and metadata
   taken out of model.safetensors again: what is left is the teacher's layout. */
static int teacher_lora_merge(const train_opts *o, const lc_model *m, const char *ckpt) {
    static const char *const meta[2] = {"format", "pt"};
    lc_lolcats lp;
    lc_error err;
    lc_st_file *f = NULL;
    lc_tensor *keep = NULL;
    const char *dir;
    char path[4200];
    int i, n = 0, rc = 1;
    if (!o->merge) return 0;
    memset(&err, 0, sizeof err);
    if (lc_lolcats_load(&lp, ckpt, m, &err)) return tool_report(&err);
    if (!(dir = outsafe_hf_dir(o->merge))) goto done;
    if (lc_lolcats_export_hf(m, &lp, dir, &err)) { tool_report(&err); goto done; }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (lc_st_open(&f, path, &err)) { tool_report(&err); goto done; }
    if (!(keep = (lc_tensor *)malloc(sizeof *keep * (size_t)(lc_st_count(f) + 1)))) {
        fprintf(stderr, "lolcats: error: out of memory\n");
        goto done;
    }
    for (i = 0; i < lc_st_count(f); i++) {
        const lc_tensor *t = lc_st_tensor_at(f, i);
        if (!strstr(t->name, "feature_map_") && !strstr(t->name, "window_factors") && !strstr(t->name, "lora_"))
            keep[n++] = *t;
    }
    if (lc_st_write(path, keep, n, meta, 1, &err)) { tool_report(&err); goto done; }
    lc_st_close(f);
    f = NULL;
    if (tool_hf_tokenizer_files(dir, o->model_path, o->tok_path, "--merge") || outsafe_hf_commit(o->merge)) goto done;
    fprintf(stderr, "wrote %s (config.json, model.safetensors: the teacher with LoRA merged, softmax attention)\n",
            o->merge);
    rc = 0;
done:
    lc_st_close(f);
    free(keep);
    lc_lolcats_free(&lp);
    return rc;
}
/* ---- >>teacher-lora end ---- */

static int finish_stage2(const train_opts *o, train_env *e, const char *ckpt) {
    lc_lolcats lp;
    lc_error err;
    const char *dir;
    if ((!o->merge && !o->peft) || tool_mpi_rank() != 0) return 0;
    if (o->teacher_lora) return teacher_lora_merge(o, &e->m, ckpt);
    if (lc_lolcats_load(&lp, ckpt, &e->m, &err)) return tool_report(&err);
    if (o->merge) {   /* written whole, then moved into place; tokenizer and config: tools/standalone.c */
        if (!(dir = outsafe_hf_dir(o->merge))) { lc_lolcats_free(&lp); return 1; }
        if (lc_lolcats_export_hf(&e->m, &lp, dir, &err)) { lc_lolcats_free(&lp); return tool_report(&err); }
        if (tool_hf_tokenizer_files(dir, o->model_path, o->tok_path, "--merge") ||
            tool_hf_mark_lolcats(dir, &e->m, &lp, ckpt, o->model_path) || outsafe_hf_commit(o->merge)) {
            lc_lolcats_free(&lp);
            return 1;
        }
        fprintf(stderr, "wrote %s (config.json, model.safetensors: LoRA merged, LoLCATs tensors beside)\n", o->merge);
    }
    if (o->peft) {
        if (!(dir = outsafe_hf_dir(o->peft)) || tool_peft_write(dir, &e->m, &lp, ckpt, o->model_path) ||
            outsafe_hf_commit(o->peft)) {
            lc_lolcats_free(&lp);
            return 1;
        }
        fprintf(stderr, "wrote %s (adapter_config.json, adapter_model.safetensors: the LoRA as a PEFT adapter)\n",
                o->peft);
    }
    lc_lolcats_free(&lp);
    return 0;
}

/* The starts (> 0) of the blocks in LIST ("A:B,C:D,..."), ascending and distinct. */
static int cache_layers(const char *list, int L, int *starts, int *n) {
    const char *p = list;
    *n = 0;
    while (*p) {
        int a, b, k, j, len = 0;
        if (sscanf(p, "%d:%d%n", &a, &b, &len) != 2 || a < 0 || b <= a || b > L) {
            fprintf(stderr, "lolcats: --layers %s: expected blocks A:B,C:D,... with 0 <= A < B <= %d\n", list, L);
            return 1;
        }
        p += len;
        if (*p == ',') p++;
        else if (*p) {
            fprintf(stderr, "lolcats: --layers %s: blocks are separated by commas\n", list);
            return 1;
        }
        if (a == 0) continue;
        for (k = 0; k < *n && starts[k] < a; k++) {}
        if (k < *n && starts[k] == a) continue;
        for (j = *n; j > k; j--) starts[j] = starts[j - 1];
        starts[k] = a;
        (*n)++;
    }
    return 0;
}

static int cache_inputs(train_opts *o, train_env *e) {
    const lc_model_config *c = &e->m.cfg;
    tool_data *d = &e->d;
    int T = d->seq_len, dim = c->dim, L = c->n_layers, nb = 0, rc = 1, b, tty = isatty(2), tmp_slot = -1;
    double plain_last = 0;   /* no terminal: a plain progress line now and then */
    int *starts = (int *)malloc(sizeof(int) * (size_t)(L + 1));
    unsigned char *used = (unsigned char *)calloc((size_t)(d->n > 0 ? d->n : 1), 1);
    long *order = NULL, n_order = 0, i, per, n_shards, s, done_seqs = 0;
    long long total_steps, k;
    float *buf = NULL, *x = NULL;
    char (*names)[40] = NULL, (*ldir)[1100] = NULL, path[1200], seqs[32], lay[32];
    lc_tensor *ts = NULL;
    lc_train t;
    lc_train_cfg tc = o->tc;
    lc_ctx ctx;
    lc_error err;
    double t0 = now_s();
    tool_teacher_fp *tfp = (tool_teacher_fp *)malloc(sizeof *tfp);
    tool_fp fp;                   /* the teacher and data options, recorded in every shard */
    const char *fkv[2 * (6 + TOOL_FP_MAX)];
    memset(&t, 0, sizeof t);
    if (!starts || !used || !tfp) { fprintf(stderr, "lolcats: out of memory\n"); goto done; }
    if (tool_teacher_fp_init(tfp, o->model_path, &e->m) || cache_record(&fp, o, tfp)) goto done;
    if (!o->layers_arg) { fprintf(stderr, "lolcats: cache-inputs needs --layers\n%s", cache_usage); rc = 2; goto done; }
    if (cache_layers(o->layers_arg, L, starts, &nb)) { rc = 2; goto done; }
    if (nb == 0) {
        fprintf(stderr, "lolcats: --layers %s: every block starts at layer 0, whose input is the embedding: "
                "nothing to cache\n", o->layers_arg);
        rc = 0;
        goto done;
    }
    /* the sequences a distill run with these options visits: validation, then training chunks */
    total_steps = default_budget(o, e, 0) / ((long long)T * o->grad_accum);
    if (total_steps < 1) total_steps = 1;
    for (k = 0; k < total_steps * o->grad_accum; k++) used[tool_data_pick(d, o->seed, k)] = 1;
    order = (long *)malloc(sizeof(long) * (size_t)(d->n + d->n_val + 1));
    if (!order) { fprintf(stderr, "lolcats: out of memory\n"); goto done; }
    for (i = 0; i < d->n_val; i++) order[n_order++] = -1 - i;   /* negative: validation */
    for (i = 0; i < d->n; i++)
        if (used[i]) order[n_order++] = i;
    per = (long)(o->shard_mb * 1048576.0 / ((double)T * dim * sizeof(float)));
    if (per < 1) per = 1;
    n_shards = (n_order + per - 1) / per;
    buf = (float *)malloc(sizeof(float) * (size_t)nb * per * T * dim);
    x = (float *)malloc(sizeof(float) * (size_t)T * dim);
    names = (char (*)[40])malloc(sizeof *names * (size_t)per);
    ts = (lc_tensor *)calloc((size_t)per, sizeof *ts);
    if (!buf || !x || !names || !ts) {
        fprintf(stderr, "lolcats: out of memory (a shard of %ld sequences x %d blocks: lower --shard-mb)\n", per, nb);
        goto done;
    }
    if (make_dir(o->out)) goto done;
    ldir = (char (*)[1100])malloc(sizeof *ldir * (size_t)nb);
    if (!ldir) { fprintf(stderr, "lolcats: out of memory\n"); goto done; }
    for (b = 0; b < nb; b++) {
        cache_layer_dir(ldir[b], sizeof ldir[b], o->out, starts[b]);
        if (make_dir(ldir[b])) goto done;
    }
    lc_ctx_init(&ctx);
    tool_compute_apply(&ctx);   /* --compute */
    tc.max_tokens = T;
    tc.attn = LOLCATS_ATTN_HYBRID;
    tc.trainable = LOLCATS_TRAIN_FMAPS;
    tc.lora_rank = 0;
    tc.distill_only = 1;
    if (lc_train_init(&t, &ctx, &e->m, &tc, &err)) { tool_report(&err); goto done; }
    snprintf(seqs, sizeof seqs, "%d", T);
    fprintf(stderr, "cache-inputs: %ld sequences (%ld validation, %ld training) x %d blocks, %ld per shard, %ld "
            "shards each, %.1f MB per block\n", n_order, (long)d->n_val, n_order - (long)d->n_val, nb, per, n_shards,
            (double)n_order * T * dim * sizeof(float) / 1e6);
    for (s = 0; s < n_shards; s++) {
        long j0 = s * per, j1 = j0 + per < n_order ? j0 + per : n_order, j;
        int have = 1;
        for (b = 0; b < nb && have; b++) {
            cache_shard_path(path, sizeof path, ldir[b], s);
            have = file_exists(path);
        }
        if (have) { done_seqs += j1 - j0; continue; }   /* written by an earlier run */
        for (j = j0; j < j1; j++) {
            long id = order[j];
            const int *tok = id < 0 ? d->val_tokens + (size_t)(-1 - id) * T : d->tokens + (size_t)id * T;
            int prev = 0;
            if (lc_train_embed_tokens(&t, tok, T, x, &err)) { tool_report(&err); goto done; }
            for (b = 0; b < nb; b++) {
                if (lc_train_distill_block(&t, x, T, prev, starts[b], 0, 0, NULL, NULL, &err)) {
                    tool_report(&err);
                    goto done;
                }
                prev = starts[b];
                memcpy(buf + (((size_t)b * per) + (size_t)(j - j0)) * T * dim, x, sizeof(float) * (size_t)T * dim);
            }
            if (id < 0) snprintf(names[j - j0], sizeof names[0], "val.%ld", -1 - id);
            else snprintf(names[j - j0], sizeof names[0], "train.%ld", id);
            done_seqs++;
            if (tty || tool_progress_plain_due(&plain_last)) {
                double el = now_s() - t0, rate = el > 0 ? (double)done_seqs / el : 0;
                double eta = rate > 0 ? (double)(n_order - done_seqs) / rate : 0;
                fprintf(stderr, "%s[cache-inputs] %ld/%ld sequences  %.1f seq/s  ETA %d:%02d%s", tty ? "\r" : "", done_seqs,
                        n_order, rate, (int)(eta / 60), (int)eta % 60, tty ? "   " : "\n");
            }
        }
        for (b = 0; b < nb; b++) {
            const char *meta[10];
            for (j = j0; j < j1; j++) {
                lc_tensor *tt = &ts[j - j0];
                tt->name = names[j - j0];
                tt->dtype = LOLCATS_DTYPE_F32;
                tt->ndim = 2;
                tt->shape[0] = T;
                tt->shape[1] = dim;
                tt->nbytes = sizeof(float) * (size_t)T * dim;
                tt->data = buf + (((size_t)b * per) + (size_t)(j - j0)) * T * dim;
            }
            snprintf(lay, sizeof lay, "%d", starts[b]);
            meta[0] = "lolcats_cache"; meta[1] = "1";
            meta[2] = "layer"; meta[3] = lay;
            meta[4] = "seq_len"; meta[5] = seqs;
            meta[6] = "data"; meta[7] = o->data;
            meta[8] = "model"; meta[9] = o->model_path;
            cache_shard_path(path, sizeof path, ldir[b], s);
            tmp_slot = outsafe_st_tmp(tmp_slot, path);   /* removed if a signal lands in the write */
            if (lc_st_write(path, ts, (int)(j1 - j0), fkv, tool_fp_meta(&fp, meta, 5, fkv), &err)) {
                tool_report(&err);
                goto done;
            }
        }
    }
    if (tty) fputc('\n', stderr);
    fprintf(stderr, "cache-inputs: wrote %s (layers", o->out);
    for (b = 0; b < nb; b++) fprintf(stderr, " %d", starts[b]);
    fprintf(stderr, "), %.1f s, peak RSS %.0f MiB\n", now_s() - t0, peak_rss_mib());
    rc = 0;
done:
    lc_train_free(&t);
    free(starts); free(used); free(order); free(buf); free(x); free(names); free(ts); free(ldir); free(tfp);
    return rc;
}

/* Runs that cannot learn, once the model and data have set the sequence
   length: warnings, errors under --strict (tools/args.c). */
static void stage_checks(const train_opts *o, const train_env *e, int which) {
    const lc_model_config *c = &e->m.cfg;
    if (which == 1 || which == 3) {
        tool_check_window(o->strict, o->tc.hybrid.variant, o->tc.hybrid.window, o->seq_len);
        tool_check_state(o->strict, c->n_heads, c->n_kv_heads, c->head_dim,
                         lc_fmap_out_dim(&o->tc.fmap, o->tc.feature_dim), o->tc.hybrid.window, c->seq_len);
    }
    tool_check_budget(o->strict, "--tokens", o->tokens, o->seq_len, o->grad_accum);
    tool_check_budget(o->strict, "--distill-tokens", o->tokens1, o->seq_len, o->grad_accum);
    tool_check_budget(o->strict, "--finetune-tokens", o->tokens2, o->seq_len, o->grad_accum);
    if (!o->tokens && (which != 3 || !o->tokens1 || !o->tokens2))
        tool_check_budget(o->strict, "--data (one pass, in tokens)", (long long)e->d.n * o->seq_len, o->seq_len,
                          o->grad_accum);
}

/* Every path the run reads and writes, checked before any work (outsafe.h). */
static int train_preflight(const train_opts *o, int which, int argc, char **argv) {
    char p[1200], s1[1100];
    outsafe_input("--model", o->model_path, OUTSAFE_IN_MODEL);
    outsafe_input("--tokenizer", o->tok_path, OUTSAFE_IN_FILE);
    if (strcmp(o->data, "random")) outsafe_input("--data", o->data, OUTSAFE_IN_FILE);
    if (o->lolcats_in && strcmp(o->lolcats_in, "identity")) outsafe_input("--lolcats", o->lolcats_in, OUTSAFE_IN_MODEL);
    outsafe_input("--inputs", o->inputs, OUTSAFE_IN_DIR);
    if (which == 4) return outsafe_begin(argc, argv, o->force, tool_mpi_rank() == 0) ? 1 : 0;
    outsafe_output("--out", o->out, OUTSAFE_OUT_FILE);
    state_path(p, sizeof p, o->out);
    outsafe_state("--out's state", p, o->resume);
    if (which == 3) {
        stage1_path(s1, sizeof s1, o->out);
        outsafe_derived("--out's stage 1 checkpoint", s1);
        state_path(p, sizeof p, s1);
        outsafe_state("--out's stage 1 state", p, o->resume);
    }
    outsafe_output("--json-log", o->json_log, OUTSAFE_OUT_LOG);
    if (which != 1) outsafe_output("--merge", o->merge, OUTSAFE_OUT_HF);
    if (which != 1) outsafe_output("--peft", o->peft, OUTSAFE_OUT_HF);
    outsafe_output("--report", o->report, OUTSAFE_OUT_DIR);
    if (o->report) {
        snprintf(p, sizeof p, "%s/summary.json", o->report);
        outsafe_derived("--report's summary", p);
    }
    if (outsafe_begin(argc, argv, o->force, tool_mpi_rank() == 0)) return 1;
    outsafe_training();
    return 0;
}

static int cmd_stage(int argc, char **argv, int which) {
    const char *usage = which == 1 ? distill_usage : which == 2 ? finetune_usage : which == 4 ? cache_usage
                                                                                            : linearize_usage;
    train_opts o;
    train_env e;
    stage_result rs[2];
    int i, rc = 1, nres = 0;
    lc_error err;
    opts_default(&o);
    memset(rs, 0, sizeof rs);
    memset(&err, 0, sizeof err);
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            return tool_arg_help(usage, common_usage);
        }
        if (!opt_common(&o, argc, argv, &i)) tool_arg_unknown(argv[0], argv[i], usage, common_usage);
    }
    teacher_lora_check(&o, which, argv[0]);
    if (!o.model_path || !o.data || !o.out || (which == 2 && !o.lolcats_in && !o.teacher_lora))
        tool_arg_fail(argv[0], "%s needs --model, --data and --out%s", argv[0], which == 2 ? " and --lolcats" : "");
    if (which == 3 && o.lr_set)
        tool_arg_fail(argv[0], "linearize --lr: linearize trains two stages with two learning rates; use "
                      "--distill-lr (stage 1, default 1e-2) and --finetune-lr (stage 2, default 1e-4)");
    if (o.grad_accum < 1 || o.seq_len < 2 || o.tc.feature_dim < 1 || o.tc.hybrid.window < 1 ||
        (which != 1 && o.tc.lora_rank < 1)) {
        fprintf(stderr, "lolcats: --grad-accum, --seq-len, --feature-dim, --window%s must be positive\n",
                which != 1 ? ", --lora-rank" : "");
        return 2;
    }
    if (o.softmax_arg && which == 4)
        tool_arg_fail(argv[0], "--softmax-layers is an option of distill, finetune and linearize");
    if (o.softmax_auto && (which != 3 || o.no_at))
        tool_arg_fail(argv[0], "--softmax-layers auto:%d chooses after stage 1 of linearize: give a list here%s",
                      o.softmax_auto, o.no_at ? " (or drop --no-attention-transfer)" : "");
    if (which == 4) {
        if (!o.model_path || !o.data || !o.out) tool_die_usage(usage);
        if (train_preflight(&o, which, argc, argv)) return 1;
        if (env_open(&e, &o)) { env_close(&e); return 1; }
        stage_checks(&o, &e, which);
        rc = cache_inputs(&o, &e);
        env_close(&e);
        return rc;
    }
    if ((which == 1 || which == 4) && kl_on(&o.tc))
        tool_arg_fail(argv[0], "--kl-factor and --ce-factor set stage 2's loss: options of finetune and linearize");
    if (o.tc.gate && (which == 2 || o.teacher_lora))
        tool_arg_fail(argv[0], "--gate: %s", o.teacher_lora ? "not with --softmax (no linear state to gate)"
                      : "finetune takes the gate from the --lolcats checkpoint (distill --gate)");
    if (o.tc.gate_stage2 && (which == 1 || (which == 3 && !o.tc.gate)))
        tool_arg_fail(argv[0], "--gate-stage2 trains the gate in stage 2: %s", which == 1 ?
                      "an option of finetune and linearize" : "give --gate too");
    if (o.tc.kl_factor == 0.0f && o.tc.ce_factor == 0.0f)
        tool_arg_fail(argv[0], "--ce-factor 0 without --kl-factor leaves stage 2 no loss: give --kl-factor A > 0");
    if (o.tc.kl_cache_bytes && o.tc.kl_factor == 0.0f)
        tool_arg_fail(argv[0], "--kl-cache keeps the teacher's logits of --kl-factor: give --kl-factor A > 0 too");
    if ((o.lay1 || o.inputs) && which != 1) {
        fprintf(stderr, "lolcats: --layers and --inputs are options of distill (stage 1)\n");
        return 2;
    }
    if (o.layers_arg && !o.lay1) {
        fprintf(stderr, "lolcats: --layers %s: distill trains one block A:B (lists are for cache-inputs)\n",
                o.layers_arg);
        return 2;
    }
    if (tool_mpi_init(o.mpi, &argc, &argv)) return 2;
    if (train_preflight(&o, which, argc, argv)) { tool_mpi_finalize(); return 1; }
    if (env_open(&e, &o)) { env_close(&e); tool_mpi_finalize(); return 1; }
    stage_checks(&o, &e, which);
    if (o.softmax_arg && !o.softmax_auto) {   /* a list: every stage keeps those layers softmax */
        if (!(o.softmax = (unsigned char *)calloc((size_t)e.m.cfg.n_layers, 1))) { rc = 1; goto done; }
        tool_softmax_layers_resolve(argv[0], o.softmax_arg, e.m.cfg.n_layers, o.softmax);
    }
    if (o.softmax_auto && e.d.n_val <= 0)
        tool_arg_fail(argv[0], "--softmax-layers auto:%d ranks the layers by their validation loss: give "
                      "validation sequences (--val-seqs > 0)", o.softmax_auto);
    if (which == 1) {
        rc = run_stage(&o, 1, &e.m, &e.d, NULL, default_budget(&o, &e, 0), o.lr_set ? o.lr : o.lr1, o.out, &rs[0]);
        nres = 1;
    } else if (which == 2) {
        lc_lolcats lp;
        float *idm = NULL;
        if (o.teacher_lora ? teacher_lora_identity(&lp, &idm, &e.m)
                      : lc_lolcats_load(&lp, o.lolcats_in, &e.m, &err) ? tool_report(&err) : 0)
            goto done;
        if (o.tc.gate_stage2 && !lp.gate_w) {   /* >>gate-train */
            fprintf(stderr, "lolcats: error: --gate-stage2: the --lolcats checkpoint %s has no gated linear state "
                    "(metadata gate); make it with distill --gate\n", o.lolcats_in ? o.lolcats_in : "?");
            if (idm) free(idm);
            else lc_lolcats_free(&lp);
            rc = 2;
            goto done;
        }
        rc = run_stage(&o, 2, &e.m, &e.d, &lp, default_budget(&o, &e, 0), o.lr_set ? o.lr : o.lr2, o.out, &rs[0]);
        if (!rc && !o.teacher_lora)
            tool_softmax_layers_memory("finetune", &e.m.cfg, o.softmax ? o.softmax : lp.softmax_layers);
        if (idm) free(idm);
        else lc_lolcats_free(&lp);
        nres = 1;
        if (!rc) rc = finish_stage2(&o, &e, o.out);
    } else {
        char s1[1100];
        lc_lolcats lp;
        stage1_path(s1, sizeof s1, o.out);
        if (o.no_at) {   /* identity-initialised maps, no training */
            lc_train t;
            lc_train_cfg tc = o.tc;
            lc_ctx ctx;
            lc_lolcats view;
            const char *ex[4];
            lc_ctx_init(&ctx);
            tc.lora_rank = 0;
            tc.max_tokens = 2;
            tc.fmap_bias = stage1_bias(&o);
            ex[0] = "model"; ex[1] = o.model_path; ex[2] = "attention_transfer"; ex[3] = "none";
            if (lc_train_init(&t, &ctx, &e.m, &tc, &err)) { tool_report(&err); goto done; }
            lc_train_lolcats_view(&t, &view);
            rc = lc_lolcats_save(&view, s1, ex, 2, &err) ? tool_report(&err) : 0;
            lc_train_free(&t);
            if (rc) goto done;
            fprintf(stderr, "stage 1 skipped (--no-attention-transfer): identity feature maps in %s\n", s1);
        } else {
            rc = run_stage(&o, 1, &e.m, &e.d, NULL, default_budget(&o, &e, o.tokens1), o.lr1, s1, &rs[nres++]);
            if (rc) goto done;
            if (o.softmax_auto) {   /* the K layers stage 1 linearized worst stay softmax */
                if (!(o.softmax = (unsigned char *)calloc((size_t)e.m.cfg.n_layers, 1))) { rc = 1; goto done; }
                tool_softmax_layers_auto(o.softmax, rs[0].layer_after, e.m.cfg.n_layers, o.softmax_auto);
            }
        }
        if (lc_lolcats_load(&lp, s1, &e.m, &err)) { rc = tool_report(&err); goto done; }
        rc = run_stage(&o, 2, &e.m, &e.d, &lp, default_budget(&o, &e, o.tokens2), o.lr2, o.out, &rs[nres++]);
        if (!rc) tool_softmax_layers_memory("linearize", &e.m.cfg, o.softmax ? o.softmax : lp.softmax_layers);
        lc_lolcats_free(&lp);
        if (!rc) rc = finish_stage2(&o, &e, o.out);
    }
    if (!rc && o.report && tool_mpi_rank() == 0) rc = write_report(o.report, &o, rs, nres);
done:
    for (i = 0; i < 2; i++) stage_free(&rs[i]);
    free(o.softmax);
    env_close(&e);
    tool_mpi_finalize();
    return rc;
}

int cmd_distill(int argc, char **argv) { return cmd_stage(argc, argv, 1); }
int cmd_finetune(int argc, char **argv) { return cmd_stage(argc, argv, 2); }
int cmd_linearize(int argc, char **argv) { return cmd_stage(argc, argv, 3); }
int cmd_cache_inputs(int argc, char **argv) { return cmd_stage(argc, argv, 4); }
