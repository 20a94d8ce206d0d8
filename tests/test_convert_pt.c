/* test_convert_pt.c - tools/convert_original_pt.py turns the original LoLCATs
   code's .pt checkpoints into the safetensors checkpoint `--lolcats` reads:
   fake .pt files are built with torch (a stage 1 file in the trainers'
   {'model_state_dict': ...} wrapper, a stage 2 LoRA file as a flat state dict
   with PEFT's base_model.model. names, BF16 and F32 tensors) for a tiny Qwen2
   model from `lolcats synth`; the converted file loads with lc_lolcats_load,
   holds exactly the values put in, and runs linearized; a file for a deeper
   model and a LoRA without its B are refused. Skipped (visibly) without
   /usr/bin/python3 and its torch. Scratch: build/tests/convert_pt. */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "tiny_files.h"

#include <sys/stat.h>

#define DIR "build/tests/convert_pt"
#define PY "/usr/bin/python3"

/* the fake checkpoints: value(l, kind, i) = ((l * 7 + kind * 3 + i) % 23 - 11) / 16 (exact in BF16) */
static const char *maker =
    "import sys, torch\n"
    "L, H, D, F, dim, Hk, r = 2, 4, 8, 4, 32, 2, 2\n"
    "def val(l, kind, n, dt):\n"
    "    return torch.tensor([((l * 7 + kind * 3 + i) % 23 - 11) / 16.0 for i in range(n)], dtype=dt)\n"
    "sd, lora = {}, {}\n"
    "for l in range(int(sys.argv[2])):\n"
    "    p = 'model.layers.%d.self_attn.' % l\n"
    "    sd[p + 'feature_map_q.mlp.layer'] = val(l, 0, H * D * F, torch.float32).reshape(H, D, F)\n"
    "    sd[p + 'feature_map_k.mlp.layer'] = val(l, 1, H * D * F, torch.bfloat16).reshape(H, D, F)\n"
    "    sd[p + 'window_factors'] = val(l, 2, H, torch.float32).reshape(1, H, 1, 1)\n"
    "    for t, (i, o) in enumerate([(dim, H * D), (dim, Hk * D), (dim, Hk * D), (H * D, dim)]):\n"
    "        q = 'base_model.model.model.layers.%d.self_attn.%s_proj.' % (l, 'qkvo'[t])\n"
    "        lora[q + 'lora_A.default.weight'] = val(l, 4 + 2 * t, r * i, torch.bfloat16).reshape(r, i)\n"
    "        if sys.argv[3] == 'full' or t < 3:\n"
    "            lora[q + 'lora_B.default.weight'] = val(l, 5 + 2 * t, o * r, torch.float32).reshape(o, r)\n"
    "torch.save({'model_state_dict': sd, 'step': 10, 'eval/loss': 0.5}, sys.argv[1] + '.distill.pt')\n"
    "torch.save(lora, sys.argv[1] + '.lora.pt')\n";

static float val(int l, int kind, int i) { return (float)((l * 7 + kind * 3 + i) % 23 - 11) / 16.0f; }

static int sh(const char *fmt, const char *a, const char *b) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    return tiny_sh(cmd);
}

int main(void) {
    const char *bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    const char *conv = PY " tools/convert_original_pt.py --model " DIR "/m --distill " DIR "/%s.distill.pt --lora "
                       DIR "/%s.lora.pt --out " DIR "/out.safetensors --window 4 --force >" DIR "/conv.log 2>&1";
    FILE *f;
    lc_model m;
    lc_lolcats lp;
    lc_error err;
    if (tiny_sh(PY " -c 'import torch' >/dev/null 2>&1") != 0) {
        printf("SKIPPED: convert_original_pt (no torch for " PY "; apt-get install python3-torch)\n");
        return check_done();
    }
    tiny_sh("rm -rf " DIR);
    mkdir("build", 0755);
    mkdir("build/tests", 0755);
    mkdir(DIR, 0755);
    if (!CHECK(sh("%s synth --like qwen2.5-7b --layers 2 --dim 32 --hidden 48 --heads 4 --kv-heads 2 --vocab 97 "
                  "--dtype f32 --out " DIR "/m >/dev/null 2>&1%s", bin, "") == 0, "synth a tiny Qwen2"))
        return check_done();
    f = fopen(DIR "/make.py", "w");
    if (!CHECK(f != NULL, "write make.py")) return check_done();
    fputs(maker, f);
    fclose(f);
    CHECK(sh(PY " " DIR "/make.py " DIR "/good 2 full%s%s", "", "") == 0 &&
              sh(PY " " DIR "/make.py " DIR "/deep 3 full%s%s", "", "") == 0 &&
              sh(PY " " DIR "/make.py " DIR "/noB 2 partial%s%s", "", "") == 0, "torch.save the fake checkpoints");
    if (!CHECK(sh(conv, "good", "good") == 0, "convert_original_pt on the good files")) tiny_sh("cat " DIR "/conv.log");
    if (CHECK(lc_model_load_hf(&m, DIR "/m", &err) == LOLCATS_OK, "%s", err.msg)) {
        if (CHECK(lc_lolcats_load(&lp, DIR "/out.safetensors", &m, &err) == LOLCATS_OK, "load converted: %s", err.msg)) {
            int l, i, tg, ok = 1;
            const int ins[4] = {32, 32, 32, 32}, outs[4] = {32, 16, 16, 32};
            CHECK(lp.n_layers == 2 && lp.feature_dim == 4 && lp.lora_rank == 2 && lp.hybrid.window == 4 &&
                      lp.lora_alpha == 16.0f, "shapes / metadata: layers %d f %d rank %d window %d alpha %g",
                  lp.n_layers, lp.feature_dim, lp.lora_rank, lp.hybrid.window, (double)lp.lora_alpha);
            for (l = 0; l < 2; l++) {
                for (i = 0; i < 4 * 8 * 4; i++)
                    ok &= lp.fmap_q[l * 128 + i] == val(l, 0, i) && lp.fmap_k[l * 128 + i] == val(l, 1, i);
                for (i = 0; i < 4; i++) ok &= lp.wf[l * 4 + i] == val(l, 2, i);
                for (tg = 0; tg < 4; tg++) {
                    for (i = 0; i < 2 * ins[tg]; i++) ok &= lp.lora_a[l][tg][i] == val(l, 4 + 2 * tg, i);
                    for (i = 0; i < outs[tg] * 2; i++) ok &= lp.lora_b[l][tg][i] == val(l, 5 + 2 * tg, i);
                }
            }
            CHECK(ok, "the converted tensors hold the values of the .pt files (wrapper and flat, BF16 and F32)");
            {
                lc_lolcats_run r;
                int toks[6] = {1, 5, 9, 2, 7, 3};
                if (CHECK(lc_lolcats_run_init(&r, NULL, &m, &lp, 6, &err) == LOLCATS_OK, "%s", err.msg)) {
                    CHECK(lc_lolcats_forward(&m, &lp, &r, toks, 6, NULL, &err) == LOLCATS_OK && r.logits[0] == r.logits[0],
                          "linearized forward with the converted checkpoint: %s", err.msg);
                    lc_lolcats_run_free(&r);
                }
            }
            lc_lolcats_free(&lp);
        }
        lc_model_free(&m);
    }
    CHECK(sh(conv, "deep", "deep") == 1 && sh("grep -q 'layer 2' " DIR "/conv.log%s%s", "", "") == 0,
          "a checkpoint of a deeper model is refused naming the layer");
    CHECK(sh(conv, "noB", "noB") == 1 && sh("grep -q 'A and B' " DIR "/conv.log%s%s", "", "") == 0,
          "a LoRA A without its B is refused");
    return check_done();
}
