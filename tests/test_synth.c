/* test_synth.c - `lolcats synth` writes a loadable Hugging Face directory with
   the architecture's shapes: SmolLM-135M shapes, one layer, small shards so the
   index path is exercised; the model loads, runs a token, and has the expected
   parameter count. */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"

#include <sys/wait.h>

#include <stdlib.h>

int main(void) {
    const char *bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    char cmd[512];
    lc_model m;
    lc_error err;
    snprintf(cmd, sizeof cmd, "%s synth --like smollm-135m --layers 1 --shard-mb 20 --out build/tmp_synth --force >/dev/null 2>&1", bin);
    if (!CHECK(system(cmd) == 0, "%s failed", cmd)) return check_done();
    if (CHECK(lc_model_load(&m, "build/tmp_synth", &err) == LOLCATS_OK, "load: %s", err.msg)) {
        lc_run r;
        int tok = 5;
        CHECK(m.cfg.dim == 576 && m.cfg.n_layers == 1 && m.cfg.n_heads == 9 && m.cfg.n_kv_heads == 3 &&
                  m.cfg.vocab_size == 49152 && m.cfg.tied,
              "config: dim %d layers %d heads %d/%d vocab %d tied %d", m.cfg.dim, m.cfg.n_layers, m.cfg.n_heads,
              m.cfg.n_kv_heads, m.cfg.vocab_size, m.cfg.tied);
        CHECK(lc_model_param_count(&m) == 49152LL * 576 + 576 * 2 + 576LL * 576 * 2 + 576LL * 192 * 2 + 3LL * 576 * 1536 + 576,
              "parameter count %lld", (long long)lc_model_param_count(&m));
        CHECK(m.tok_emb.dtype == LOLCATS_DTYPE_BF16, "weights are BF16");
        {   /* releasing a layer's pages keeps the weights readable: same logits after */
            lc_run r0;
            int tk = 7;
            float first = 0;
            if (CHECK(lc_run_init(&r0, &m, 8, 1, &err) == LOLCATS_OK, "%s", err.msg)) {
                lc_model_forward(NULL, &m, &r0, &tk, 1, NULL, &err);
                first = r0.logits[3];
                CHECK(lc_model_release_layer(&m, 0) > 0, "lc_model_release_layer advised no pages of a mapped model");
                lc_run_reset(&r0);
                lc_model_forward(NULL, &m, &r0, &tk, 1, NULL, &err);
                CHECK(r0.logits[3] == first, "logits changed after releasing the pages (%g vs %g)",
                      (double)r0.logits[3], (double)first);
                lc_run_free(&r0);
            }
        }
        if (CHECK(lc_run_init(&r, &m, 8, 1, &err) == LOLCATS_OK, "%s", err.msg)) {
            CHECK(lc_model_forward(NULL, &m, &r, &tok, 1, NULL, &err) == LOLCATS_OK, "forward: %s", err.msg);
            CHECK(r.logits[0] == r.logits[0], "finite logits");
            lc_run_free(&r);
        }
        lc_model_free(&m);
    }
    /* the training commands run on it with --data random (no tokenizer) */
    snprintf(cmd, sizeof cmd, "%s linearize --model build/tmp_synth --data random --out build/tmp_synth/l.safetensors "
             "--seq-len 32 --distill-tokens 64 --finetune-tokens 32 --grad-accum 1 --val-seqs 1 --feature-dim 8 "
             ">/dev/null 2>&1", bin);
    CHECK(system(cmd) == 0, "%s failed", cmd);
    if (CHECK(lc_model_load(&m, "build/tmp_synth", &err) == LOLCATS_OK, "load: %s", err.msg)) {
        lc_lolcats lp;
        if (CHECK(lc_lolcats_load(&lp, "build/tmp_synth/l.safetensors", &m, &err) == LOLCATS_OK,
                  "linearize --data random wrote no checkpoint: %s", err.msg)) {
            CHECK(lp.lora_rank == 8 && lp.feature_dim == 8, "checkpoint: LoRA rank %d, feature dim %d", lp.lora_rank,
                  lp.feature_dim);
            lc_lolcats_free(&lp);
        }
        lc_model_free(&m);
    }
    /* --max-memory: a budget that needs page release and checkpointing gives the same
       checkpoint; one that cannot be met is refused (exit 2) before any training */
    snprintf(cmd, sizeof cmd, "%s distill --model build/tmp_synth --data random --out build/tmp_synth/a.safetensors "
             "--seq-len 32 --tokens 64 --grad-accum 1 --val-seqs 1 --feature-dim 8 >/dev/null 2>&1", bin);
    CHECK(system(cmd) == 0, "%s failed", cmd);
    snprintf(cmd, sizeof cmd, "%s distill --model build/tmp_synth --data random --out build/tmp_synth/b.safetensors "
             "--seq-len 32 --tokens 64 --grad-accum 1 --val-seqs 1 --feature-dim 8 --max-memory 100 "
             ">build/tmp_synth/plan.txt 2>&1", bin);
    CHECK(system(cmd) == 0, "%s failed", cmd);
    CHECK(system("grep -q 'one layer at a time' build/tmp_synth/plan.txt") == 0, "--max-memory 100 did not plan "
          "per-layer page release for a model of 140 MiB");
    CHECK(system("cmp -s build/tmp_synth/a.safetensors build/tmp_synth/b.safetensors") == 0,
          "--max-memory changed the trained checkpoint");
    snprintf(cmd, sizeof cmd, "%s distill --model build/tmp_synth --data random --out build/tmp_synth/c.safetensors "
             "--seq-len 32 --tokens 64 --grad-accum 1 --val-seqs 1 --feature-dim 8 --max-memory 10 "
             ">build/tmp_synth/refuse.txt 2>&1", bin);
    {
        int st = system(cmd);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2 &&
                  system("grep -q 'too small for this run' build/tmp_synth/refuse.txt") == 0,
              "--max-memory 10 must be refused with a message");
    }
    snprintf(cmd, sizeof cmd, "%s synth --like no-such-model --out build/tmp_synth2 >/dev/null 2>&1", bin);
    CHECK(system(cmd) != 0, "unknown --like must fail");
    return check_done();
}
