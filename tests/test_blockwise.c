/* test_blockwise.c - block-wise attention transfer through the command line,
   as the paper trained its largest models: `cache-inputs` writes the teacher's
   state entering a block, `distill --layers A:B --inputs DIR` trains the block
   from it (bit-identical to the run that recomputes layers 0..A-1), and
   `stitch` joins the blocks' checkpoints into the checkpoint a whole-model run
   writes (same tensors, bit for bit). Also: a rerun of cache-inputs resumes
   (keeps finished shards), and the errors for a cache made with other options,
   overlapping blocks, a missing block and a checkpoint without its block. */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "tiny_files.h"

#include <sys/stat.h>

static char tmp[256];
static const char *bin;

#define sh tiny_sh

/* the shared data options of every run here (what the cache must match) */
#define DATA_OPTS "--seq-len 32 --grad-accum 2 --tokens 1280 --val-seqs 2 --seed 5"

static int run(const char *what, const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s --model %s/m.bin --tokenizer %s/tok.bin --data %s/d.txt %s >>%s/log.txt 2>&1",
             bin, what, tmp, tmp, tmp, args, tmp);
    return sh(cmd);
}

static int log_has(const char *text) {
    char cmd[800];
    snprintf(cmd, sizeof cmd, "tail -n 3 %s/log.txt | grep -q -- '%s'", tmp, text);
    return sh(cmd) == 0;
}

static int same_file(const char *a, const char *b) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cmp -s '%s/%s' '%s/%s'", tmp, a, tmp, b);
    return sh(cmd) == 0;
}

/* every tensor of a equals b's tensor of the same name, bit for bit */
static int same_tensors(const char *a, const char *b) {
    char pa[400], pb[400];
    lc_st_file *fa = NULL, *fb = NULL;
    lc_error err;
    int i, ok = 1;
    snprintf(pa, sizeof pa, "%s/%s", tmp, a);
    snprintf(pb, sizeof pb, "%s/%s", tmp, b);
    if (lc_st_open(&fa, pa, &err) || lc_st_open(&fb, pb, &err)) {
        lc_st_close(fa);
        return 0;
    }
    ok = lc_st_count(fa) == lc_st_count(fb) && lc_st_count(fa) > 0;
    for (i = 0; ok && i < lc_st_count(fa); i++) {
        const lc_tensor *ta = lc_st_tensor_at(fa, i), *tb = lc_st_find(fb, ta->name);
        ok = tb && ta->nbytes == tb->nbytes && !memcmp(ta->data, tb->data, ta->nbytes);
        if (!ok) printf("  tensor %s differs\n", ta->name);
    }
    lc_st_close(fa);
    lc_st_close(fb);
    return ok;
}

int main(void) {
    const char *td = getenv("TMPDIR");
    char p[2048];
    struct stat st0, st1;
    bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    snprintf(tmp, sizeof tmp, "%s/lolcats_blk_XXXXXX", td ? td : "/tmp");
    if (!mkdtemp(tmp)) { printf("cannot create a temporary directory\n0 passed, 1 failed\n"); return 1; }
    setenv("OMP_NUM_THREADS", "1", 1);
    snprintf(p, sizeof p, "%s/m.bin", tmp); CHECK(tiny_write_model(p), "write %s", p);
    snprintf(p, sizeof p, "%s/tok.bin", tmp); CHECK(tiny_write_tokenizer(p), "write %s", p);
    snprintf(p, sizeof p, "%s/d.txt", tmp); CHECK(tiny_write_text(p), "write %s", p);

    printf("cache-inputs, distill --inputs, stitch (tiny model, 2 layers)\n");
    snprintf(p, sizeof p, DATA_OPTS " --layers 0:1,1:2 --shard-mb 0.01 --out %s/cache", tmp);
    CHECK(run("cache-inputs", p) == 0, "cache-inputs failed (see %s/log.txt)", tmp);
    snprintf(p, sizeof p, "%s/cache/layer-1/shard-00001.safetensors", tmp);
    CHECK(stat(p, &st0) == 0, "cache-inputs wrote no second shard (%s): --shard-mb is not honoured", p);
    snprintf(p, sizeof p, "%s/cache/layer-0", tmp);
    CHECK(stat(p, &st1) != 0, "cache-inputs cached layer 0 (its input is the embedding)");

    /* a rerun keeps finished shards (resume): the file is not rewritten */
    snprintf(p, sizeof p, DATA_OPTS " --layers 1:2 --shard-mb 0.01 --out %s/cache", tmp);
    CHECK(run("cache-inputs", p) == 0, "cache-inputs rerun failed");
    snprintf(p, sizeof p, "%s/cache/layer-1/shard-00001.safetensors", tmp);
    CHECK(stat(p, &st1) == 0 && st1.st_ino == st0.st_ino && st1.st_mtime == st0.st_mtime,
          "cache-inputs rerun rewrote a finished shard");

    /* block 1:2 from the cache == block 1:2 recomputing layer 0 */
    snprintf(p, sizeof p, DATA_OPTS " --feature-dim 4 --window 8 --val-every 0 --layers 1:2 --out %s/b1.safetensors",
             tmp);
    CHECK(run("distill", p) == 0, "distill --layers 1:2 failed");
    snprintf(p, sizeof p, DATA_OPTS " --feature-dim 4 --window 8 --val-every 0 --layers 1:2 --inputs %s/cache "
             "--out %s/b1c.safetensors", tmp, tmp);
    CHECK(run("distill", p) == 0, "distill --layers 1:2 --inputs failed");
    CHECK(same_file("b1.safetensors", "b1c.safetensors") && same_file("b1.safetensors.state", "b1c.safetensors.state"),
          "distill --inputs: checkpoint or state differs from the run without a cache");
    printf("  %-58s %s\n", "block 1:2 from cached inputs vs recomputed", "identical");

    /* stitch block 0:1 and block 1:2 == the whole model in one run */
    snprintf(p, sizeof p, DATA_OPTS " --feature-dim 4 --window 8 --val-every 0 --layers 0:1 --out %s/b0.safetensors",
             tmp);
    CHECK(run("distill", p) == 0, "distill --layers 0:1 failed");
    snprintf(p, sizeof p, DATA_OPTS " --feature-dim 4 --window 8 --val-every 0 --out %s/all.safetensors", tmp);
    CHECK(run("distill", p) == 0, "whole-model distill failed");
    snprintf(p, sizeof p, "%s stitch --out %s/s.safetensors %s/b1c.safetensors %s/b0.safetensors >>%s/log.txt 2>&1",
             bin, tmp, tmp, tmp, tmp);
    CHECK(sh(p) == 0, "stitch failed");
    CHECK(same_tensors("all.safetensors", "s.safetensors"), "stitched blocks differ from the whole-model run");
    printf("  %-58s %s\n", "stitch(0:1, 1:2) vs whole model", "identical tensors");
    snprintf(p, sizeof p, "%s eval --model %s/m.bin --tokenizer %s/tok.bin --data %s/d.txt --lolcats %s/s.safetensors "
             "--ctx 32 >>%s/log.txt 2>&1", bin, tmp, tmp, tmp, tmp, tmp);
    CHECK(sh(p) == 0, "eval of the stitched checkpoint failed");

    printf("  errors\n");
    snprintf(p, sizeof p, "%s stitch --out %s/x.safetensors %s/b0.safetensors %s/all.safetensors@0:2 >>%s/log.txt 2>&1",
             bin, tmp, tmp, tmp, tmp);
    CHECK(sh(p) != 0 && log_has("layer 0 is in two inputs"), "overlapping blocks accepted or unexplained");
    snprintf(p, sizeof p, "%s stitch --out %s/x.safetensors %s/b0.safetensors >>%s/log.txt 2>&1", bin, tmp, tmp, tmp);
    CHECK(sh(p) != 0 && log_has("no input trained layers 1..1"), "a missing block accepted or unexplained");
    snprintf(p, sizeof p, "%s stitch --out %s/x.safetensors %s/all.safetensors >>%s/log.txt 2>&1", bin, tmp, tmp, tmp);
    CHECK(sh(p) != 0 && log_has("has no \"layers\" metadata"), "a checkpoint without its block accepted");
    snprintf(p, sizeof p, "%s/x.safetensors", tmp);
    CHECK(stat(p, &st1) != 0, "a failed stitch left %s behind", p);
    snprintf(p, sizeof p, "--seq-len 16 --grad-accum 2 --tokens 1280 --val-seqs 2 --seed 5 --feature-dim 4 --window 8 "
             "--layers 1:2 --inputs %s/cache --out %s/x.safetensors", tmp, tmp);
    CHECK(run("distill", p) != 0 && log_has("run cache-inputs with this run"), "a cache of another --seq-len accepted");
    snprintf(p, sizeof p, "--seq-len 32 --grad-accum 2 --tokens 2560 --val-seqs 2 --seed 9 --feature-dim 4 --window 8 "
             "--layers 1:2 --inputs %s/cache --out %s/x.safetensors", tmp, tmp);
    CHECK(run("distill", p) != 0 && log_has("is not cached"), "a run visiting uncached sequences was not refused");

    if (check_fail_ == 0) {
        snprintf(p, sizeof p, "rm -rf '%s'", tmp);
        if (system(p) != 0) printf("note: could not remove %s\n", tmp);
    }
    return check_done();
}
