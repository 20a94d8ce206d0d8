/* test_mpi.c - block-wise attention transfer over MPI: `mpirun -np 2 lolcats
   distill --mpi` (the two ranks split the layers) must write exactly the
   checkpoint and training state of one process, bit for bit; so must a block
   (--layers 1:2) split over 2 ranks, a run whose rank 1 reads its input from
   `cache-inputs` (--inputs), and an MPI run stopped and resumed. Stage 2 over
   2 ranks (data parallel, gradients all-reduced) matches one process within
   floating-point reassociation.
   Skipped (visibly) without mpirun or in a build without MPI. No ../shared. */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "tiny_files.h"

#include <sys/stat.h>

static char tmp[256];
static const char *bin;

#define sh tiny_sh

static int same_file(const char *a, const char *b) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return sh(cmd) == 0;
}

/* distill on the tiny model; ranks 0: one process; extra: more options */
static int distill(int ranks, const char *out, const char *extra) {
    char cmd[2048], pre[200];
    if (ranks) snprintf(pre, sizeof pre, "mpirun -np %d --oversubscribe ", ranks);
    else pre[0] = 0;
    snprintf(cmd, sizeof cmd, "%s%s distill --model %s/m.bin --tokenizer %s/tok.bin --data %s/d.txt --out %s/%s "
             "--seq-len 32 --grad-accum 2 --tokens 1280 --val-every 3 --val-seqs 2 --feature-dim 4 --window 8 "
             "--seed 5 %s %s >>%s/log.txt 2>&1", pre, bin, tmp, tmp, tmp, tmp, out, ranks ? "--mpi" : "", extra, tmp);
    return sh(cmd);
}

static void same_outputs(const char *what, const char *a, const char *b) {
    char pa[400], pb[400];
    snprintf(pa, sizeof pa, "%s/%s", tmp, a);
    snprintf(pb, sizeof pb, "%s/%s", tmp, b);
    CHECK(same_file(pa, pb), "%s: checkpoint %s differs from %s", what, b, a);
    strcat(pa, ".state");
    strcat(pb, ".state");
    CHECK(same_file(pa, pb), "%s: training state %s differs from %s", what, pb, pa);
    printf("  %-52s %s\n", what, check_fail_ ? "" : "identical");
}

int main(void) {
    const char *td = getenv("TMPDIR");
    char p[400];
    int rc;
    bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    if (sh("command -v mpirun >/dev/null 2>&1") != 0) {
        printf("SKIPPED: MPI distillation (no mpirun; tools/setup.sh installs Open MPI)\n0 passed, 0 failed\n");
        return 0;
    }
    snprintf(tmp, sizeof tmp, "%s/lolcats_mpi_XXXXXX", td ? td : "/tmp");
    if (!mkdtemp(tmp)) { printf("cannot create a temporary directory\n0 passed, 1 failed\n"); return 1; }
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);  /* CI runs as root */
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    snprintf(p, sizeof p, "%s/m.bin", tmp); CHECK(tiny_write_model(p), "write %s", p);
    snprintf(p, sizeof p, "%s/tok.bin", tmp); CHECK(tiny_write_tokenizer(p), "write %s", p);
    snprintf(p, sizeof p, "%s/d.txt", tmp); CHECK(tiny_write_text(p), "write %s", p);
    CHECK(distill(0, "one.safetensors", "") == 0, "single-process distill failed (see %s/log.txt)", tmp);
    rc = distill(2, "two.safetensors", "");
    if (rc != 0) {
        snprintf(p, sizeof p, "grep -q 'this build has no MPI' %s/log.txt", tmp);
        if (sh(p) == 0) {
            printf("SKIPPED: MPI distillation (%s was built without MPI)\n", bin);
            return check_done();
        }
    }
    printf("stage 1, tiny model (2 layers), 1 process vs mpirun -np 2\n");
    if (CHECK(rc == 0, "mpirun -np 2 distill --mpi failed (exit %d, see %s/log.txt)", rc, tmp))
        same_outputs("whole model, 2 ranks", "one.safetensors", "two.safetensors");
    CHECK(distill(0, "b1.safetensors", "--layers 1:2") == 0, "distill --layers 1:2 failed");
    if (CHECK(distill(2, "b2.safetensors", "--layers 1:2") == 0, "mpirun distill --layers 1:2 failed"))
        same_outputs("block 1:2, 2 ranks (one idle)", "b1.safetensors", "b2.safetensors");
    {   /* rank 1 reads the state entering its layer from cache-inputs instead of running layer 0 */
        char cmd[2048], opt[600];
        snprintf(cmd, sizeof cmd, "%s cache-inputs --model %s/m.bin --tokenizer %s/tok.bin --data %s/d.txt "
                 "--seq-len 32 --grad-accum 2 --tokens 1280 --val-seqs 2 --seed 5 --layers 1:2 --out %s/cache "
                 ">>%s/log.txt 2>&1", bin, tmp, tmp, tmp, tmp, tmp);
        CHECK(sh(cmd) == 0, "cache-inputs failed (see %s/log.txt)", tmp);
        snprintf(opt, sizeof opt, "--inputs %s/cache", tmp);
        if (CHECK(distill(2, "c2.safetensors", opt) == 0, "mpirun distill --inputs failed"))
            same_outputs("whole model, 2 ranks, rank 1 from cached inputs", "one.safetensors", "c2.safetensors");
    }
    {   /* stage 2 data parallel: the same LoRA within floating-point reassociation */
        char cmd[2400], fo[2400];
        int k;
        printf("stage 2 (LoRA), data parallel: 1 process vs mpirun -np 2 --mpi\n");
        for (k = 0; k < 2; k++) {
            snprintf(fo, sizeof fo, "%s%s finetune --model %s/m.bin --tokenizer %s/tok.bin --data %s/d.txt "
                     "--lolcats %s/one.safetensors --out %s/ft%d.safetensors --seq-len 32 --grad-accum 4 --tokens 1280 "
                     "--val-every 3 --val-seqs 3 --seed 5 --lr 1e-3 %s >>%s/log.txt 2>&1",
                     k ? "mpirun -np 2 --oversubscribe " : "", bin, tmp, tmp, tmp, tmp, tmp, k, k ? "--mpi" : "", tmp);
            CHECK(sh(fo) == 0, "finetune%s failed (see %s/log.txt)", k ? " --mpi" : "", tmp);
        }
        snprintf(cmd, sizeof cmd, "%s compare %s/ft0.safetensors %s/ft1.safetensors --rtol 1e-4 --atol 1e-6 "
                 ">>%s/log.txt 2>&1", bin, tmp, tmp, tmp);
        CHECK(sh(cmd) == 0, "finetune --mpi: LoRA differs from one process's beyond 1e-4 relative (see %s/log.txt)",
              tmp);
        snprintf(cmd, sizeof cmd, "cmp -s %s/ft0.safetensors %s/ft1.safetensors", tmp, tmp);
        printf("  %-52s %s\n", "LoRA after 10 steps, 2 ranks vs 1",
               sh(cmd) == 0 ? "identical" : "equal within 1e-4 (summation order)");
    }
    CHECK(distill(2, "r.safetensors", "--stop-after 4") == 3, "mpirun distill --stop-after 4 exits 3");
    if (CHECK(distill(2, "r.safetensors", "--resume") == 0, "mpirun distill --resume failed"))
        same_outputs("2 ranks stopped at step 4 and resumed", "one.safetensors", "r.safetensors");
    if (check_fail_ == 0) {
        snprintf(p, sizeof p, "rm -rf '%s'", tmp);
        if (system(p) != 0) printf("note: could not remove %s\n", tmp);
    }
    return check_done();
}
