/* cmd_generate.c - `lolcats generate`: sample text from a model. */
#include "walltime.h"
#include "tools.h"
#include "args.h"
#include "standalone.h"
#include "prompt.h"
#include "compute.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *gen_usage =
    "lolcats generate --model PATH [--tokenizer PATH] --prompt TEXT --steps N\n"
    "                 [--temperature T] [--top-p P] [--seed S] [--ctx C]\n"
    "                 [--lolcats CKPT [--window W] [--variant tk|sw] [--sinks S]]\n"
    "Generate text with a llama2.c or Hugging Face model.\n"
    "  -m, --model PATH   llama2.c .bin checkpoint or Hugging Face directory\n"
    "  --tokenizer PATH   llama2.c tokenizer.bin or tokenizer.json (a Hugging Face\n"
    "                     directory's own tokenizer.json is the default)\n"
    "  -p, --prompt TEXT  prompt (default: empty, generation starts from BOS; '-': stdin)\n"
    "  -f, --prompt-file FILE  the whole file as the prompt ('-': stdin; one final\n"
    "                     newline dropped, as llama.cpp's -f)\n"
    "  --chat             wrap the prompt in the model's chat template: Llama 3 or\n"
    "                     ChatML (Qwen) when the tokenizer has their special tokens,\n"
    "                     else Alpaca's (the training data's); the reply ends at the\n"
    "                     end-of-turn token (<|eot_id|>, <|im_end|>, EOS)\n"
    "  --chat-template alpaca|llama3|chatml   force a template (with --chat)\n"
    "  --system TEXT      system message (llama3, chatml; with --chat)\n"
    "  -i, --interactive  then one line of stdin per turn, a reply to each; the\n"
    "                     state (KV cache or linearized state) is kept across\n"
    "                     turns; /exit or end of input stops. With --chat: a\n"
    "                     multi-turn chat. -n: tokens per reply\n"
    "  --verbose-prompt   print the prompt's token ids on stderr\n"
    "  --steps N          positions fed, prompt included, as llama2.c's -n (256)\n"
    "  -n, --n-predict N  new tokens to generate after the prompt, as llama.cpp's -n\n"
    "                     (replaces --steps; note: llama2.c's -n is --steps)\n"
    "  --temperature T    0 = greedy, at most 100 (1.0)\n"
    "  --top-p P          nucleus sampling, in [0, 1]; 0 or 1 = off (0.9)\n"
    "  -s, --seed S       RNG seed (default: time)\n"
    "  -t, --threads N    OpenMP threads (OMP_NUM_THREADS or all cores)\n"
    "  --compute f32|bf16 the model's GEMMs in float32 (default) or bf16 (AVX512_BF16)\n"
    "  --ctx C            KV cache positions (default: --steps)\n"
    "  --lolcats CKPT     run the linearized model: LoLCATs checkpoint (or merged\n"
    "                     directory; 'identity' = identity feature maps, no LoRA;\n"
    "                     'window-only' = softmax in the sliding window, no linear part).\n"
    "                     Prefill with the checkpoint's masks, then constant-memory\n"
    "                     decoding; the state size is reported on stderr\n"
    "  --window W, --variant tk|sw   override the checkpoint's window / masks\n"
    "  --sinks S            override the checkpoint's attention sinks\n"
    "  --softmax          a LoLCATs directory (--merge) runs linearized by default;\n"
    "                     this runs its weights with softmax attention instead\n"
    "Text is printed as it is generated; stops at EOS/BOS or after --steps.";

/* Loads the tokenizer that belongs to the model: explicit path, else the HF
   directory's tokenizer.json. */
int tool_load_tokenizer(lc_tokenizer *tok, const lc_model *m, const char *model_path,
                        const char *tok_path, lc_error *err) {
    char buf[4096];
    size_t n;
    lc_status s;
    if (!tok_path) {
        if (m->format == LOLCATS_MODEL_GGUF) {   /* the file's own tokenizer.ggml.* */
            if (lc_tokenizer_load_gguf(tok, model_path, err)) return tool_report(err);
            if (tok->vocab_size > m->cfg.vocab_size) {
                fprintf(stderr, "lolcats: %s has %d tokens but the model only %d\n", model_path, tok->vocab_size,
                        m->cfg.vocab_size);
                return 1;
            }
            return 0;
        }
        if (m->format != LOLCATS_MODEL_HF) {
            fprintf(stderr, "lolcats: a llama2.c checkpoint needs --tokenizer "
                            "(its tokenizer.bin, e.g. tok512.bin)\n");
            return 1;
        }
        tok_path = tool_hf_tokenizer_path(model_path, buf, sizeof buf);   /* tools/standalone.c */
    }
    n = strlen(tok_path);
    if (n >= 5 && !strcmp(tok_path + n - 5, ".json"))
        s = lc_tokenizer_load_hf(tok, tok_path, err);
    else
        s = lc_tokenizer_load_llama2c(tok, tok_path, m->cfg.vocab_size, err);
    if (s) return tool_report(err);
    if (tok->vocab_size > m->cfg.vocab_size) {
        fprintf(stderr, "lolcats: %s has %d tokens but the model only %d: wrong tokenizer\n",
                tok_path, tok->vocab_size, m->cfg.vocab_size);
        return 1;
    }
    return 0;
}

/* Prints a piece, skipping lone unprintable control bytes as llama2.c does. */
static void gen_print(const char *p, size_t n) {
    if (n == 1 && (unsigned char)p[0] < 32 && p[0] != '\n' && p[0] != '\t' && p[0] != '\r')
        return;
    fwrite(p, 1, n, stdout);
    fflush(stdout);
}

int cmd_generate(int argc, char **argv) {
    const char *model_path = NULL, *tok_path = NULL, *prompt = "";
    int steps = 256, ctx = 0, i, rc = 1, n_new = 0, softmax = 0, n_prompt_flags = 0;
    float temperature = 1.0f, top_p = 0.9f;
    unsigned long long seed = (unsigned long long)time(NULL);
    lc_model m;
    lc_tokenizer tok;
    tool_lm lm;
    tool_lm_opts lo;
    lc_sampler smp;
    lc_error err;
    int *ids = NULL, next, tokpos;
    size_t n_ids = 0;
    double wall = 0, t_prefill = 0;   /* wall clock: the tokens/s lines */
    long long n_dec = 0;
    char piece[1024], *prompt_mem = NULL;
    tool_prompt_opts po;
    int end_id = -1;
    memset(&po, 0, sizeof po);
    memset(&err, 0, sizeof err);
    memset(&tok, 0, sizeof tok);
    memset(&lm, 0, sizeof lm);
    memset(&lo, 0, sizeof lo);
    memset(&smp, 0, sizeof smp);
    for (i = 1; i < argc; i++) {
        const char *a = tool_arg_alias(argv[i]), *v;
        if (!strcmp(a, "-f")) a = "--prompt-file";
        if (!strcmp(a, "-i")) a = "--interactive";
        if (!strcmp(a, "--chat")) { po.chat = 1; continue; }
        if (!strcmp(a, "--interactive")) { po.interactive = 1; continue; }
        if (!strcmp(a, "--verbose-prompt")) { po.verbose = 1; continue; }
        if (tool_arg_is_help(a)) return tool_arg_help(gen_usage, NULL);
        if (!strcmp(a, "--softmax")) { softmax = 1; continue; }
        if (!tool_arg_known(a, gen_usage)) tool_arg_unknown(argv[0], argv[i], gen_usage, NULL);
        tool_arg_need(argv[i], argc, argv, i);
        v = argv[++i];
        if (!strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "--tokenizer")) tok_path = v;
        else if (!strcmp(a, "--prompt")) prompt = v, n_prompt_flags |= 1;
        else if (!strcmp(a, "--prompt-file")) po.file = v, n_prompt_flags |= 2;
        else if (!strcmp(a, "--chat-template")) po.tpl_name = (tool_arg_choice(a, v, "alpaca|llama3|chatml"), v);
        else if (!strcmp(a, "--system")) po.system = v;
        else if (!strcmp(a, "--steps")) steps = tool_arg_int(a, v, 1, 1 << 30);
        else if (!strcmp(a, "--n-predict")) n_new = tool_arg_int(a, v, 1, 1 << 30);
        else if (!strcmp(a, "--ctx")) ctx = tool_arg_int(a, v, 1, 1 << 24);
        else if (!strcmp(a, "--temperature")) temperature = tool_arg_float(a, v, 0, 100, 0);
        else if (!strcmp(a, "--top-p")) top_p = tool_arg_float(a, v, 0, 1, 0);
        else if (!strcmp(a, "--seed")) seed = tool_arg_u64(a, v);
        else if (!strcmp(a, "--threads")) tool_arg_threads(a, v);
        else if (!strcmp(a, "--compute")) tool_arg_compute(a, v);
        else if (!strcmp(a, "--lolcats")) lo.lolcats = v;
        else if (!strcmp(a, "--window")) lo.window = tool_arg_int(a, v, 1, 1 << 20);
        else if (!strcmp(a, "--variant")) lo.variant = (tool_arg_choice(a, v, "tk|sw"), v);
        else if (!strcmp(a, "--sinks")) lo.sinks = tool_arg_int(a, v, 0, 1 << 20);
        else tool_arg_unknown(argv[0], argv[i - 1], gen_usage, NULL);
    }
    if (!model_path) tool_arg_fail(argv[0], "generate needs --model (-m)");
    if (n_prompt_flags == 3) tool_arg_fail(argv[0], "--prompt (-p) and --prompt-file (-f) both given; pick one");
    if (n_prompt_flags == 1 && !strcmp(prompt, "-")) po.file = "-";
    if (!po.chat && (po.tpl_name || po.system))
        tool_arg_fail(argv[0], "%s works with --chat only; add --chat", po.tpl_name ? "--chat-template" : "--system");
    if (po.interactive && po.file && !strcmp(po.file, "-"))
        tool_arg_fail(argv[0], "--interactive reads the turns from stdin: give the prompt with -p TEXT or -f FILE, not stdin");
    if (po.file) {
        if (!(prompt_mem = tool_prompt_read(n_prompt_flags == 1 ? "--prompt" : "--prompt-file", po.file))) return 1;
        prompt = prompt_mem;
    }
    if (tool_lm_auto(model_path, &lo, softmax, "generate")) return 2;   /* a --merge directory: linearized */
    if (lc_model_load(&m, model_path, &err)) return tool_report(&err);
    if (tool_load_tokenizer(&tok, &m, model_path, tok_path, &err)) goto done;
    if (tool_prompt_setup(&po, &tok)) goto done;
    if (po.interactive) {
        tool_gen_params gp;
        gp.temperature = temperature; gp.top_p = top_p; gp.seed = seed; gp.n_new = n_new; gp.ctx = ctx;
        rc = tool_prompt_interactive(&m, &tok, &lo, &po, &gp, prompt);
        goto done;
    }
    if (steps > m.cfg.seq_len && !lo.lolcats) steps = m.cfg.seq_len;  /* linearized: no KV cache */
    ids = (int *)malloc((strlen(prompt) + 3) * sizeof(int));
    if (!ids) { fprintf(stderr, "lolcats: out of memory\n"); goto done; }
    if (po.tpl) {   /* --chat: the template's ids, markers spliced as their special ids */
        size_t cap_ids = strlen(prompt) + 3;
        if (tool_chat_turn(&tok, po.tpl, 1, po.system, prompt, &ids, &n_ids, &cap_ids)) goto done;
        end_id = tool_chat_end_id(&tok, po.tpl);
    } else if (lc_tokenizer_encode(&tok, prompt, strlen(prompt), 1, 0, ids, strlen(prompt) + 3, &n_ids,
                            &err)) {
        tool_report(&err);
        goto done;
    }
    if (n_ids == 0) ids[n_ids++] = m.cfg.bos_id >= 0 ? m.cfg.bos_id : 0;
    if (po.verbose) tool_prompt_print_ids(ids, n_ids);
    if ((int)n_ids >= steps) steps = (int)n_ids + 1;
    if (n_new > 0) {   /* -n: n_new tokens after the prompt (positions n_ids .. n_ids+n_new-2 fed) */
        steps = (int)n_ids + n_new - 1 > (int)n_ids ? (int)n_ids + n_new - 1 : (int)n_ids;
        if (steps > m.cfg.seq_len && !lo.lolcats) steps = m.cfg.seq_len;
    }
    if (tool_lm_init(&lm, &m, &lo, ctx > 0 ? ctx : steps, (int)n_ids, &err)) goto done;
    if (lc_sampler_init(&smp, m.cfg.vocab_size, temperature, top_p, seed, &err)) {
        tool_report(&err);
        goto done;
    }
    if (!lm.linear && lm.ctx < steps) steps = lm.ctx;
    /* the prompt as it was given */
    for (i = 1; i < (int)n_ids; i++)
        gen_print(piece, lc_tokenizer_decode(&tok, ids[i - 1], ids[i], piece, sizeof piece));
    wall = tool_wall_seconds();
    if (tool_lm_forward(&lm, ids, (int)n_ids, NULL, &err)) goto done;
    t_prefill = tool_wall_seconds() - wall;
    wall = tool_wall_seconds();
    tokpos = ids[n_ids - 1];
    for (;;) { /* as llama2.c: positions 0..steps-1 are fed, each feed yields a token */
        next = lc_sampler_sample(&smp, lm.logits);
        if (next == m.cfg.eos_id || next == m.cfg.bos_id || (end_id >= 0 && (next == end_id || next == tok.eos_id))) break;
        gen_print(piece, lc_tokenizer_decode(&tok, tokpos, next, piece, sizeof piece));
        tokpos = next;
        if (tool_lm_pos(&lm) >= steps) break;
        if (tool_lm_forward(&lm, &next, 1, NULL, &err)) goto done;
        n_dec++;
    }
    printf("\n");
    fflush(stdout);
    tool_report_rate("generate: prompt prefill", (long long)n_ids, t_prefill);
    tool_report_rate("generate: decode", n_dec, tool_wall_seconds() - wall);
    if (lm.linear) { /* the memory check: the state does not grow with the context */
        const lc_model_config *c = &m.cfg;
        double kv = 2.0 * c->n_layers * c->n_kv_heads * (double)c->head_dim * 4.0 * (double)tool_lm_pos(&lm);
        char desc[256];
        tool_lm_describe(&lm, desc, sizeof desc);
        fprintf(stderr, "%s: state %zu bytes per sequence after %lld tokens (constant in the context; "
                        "run total with scratch %zu bytes); a softmax KV cache would hold %.0f bytes\n",
                desc, lm.lrun.state_bytes, tool_lm_pos(&lm), lm.lrun.bytes, kv);
        if (lm.lrun.kv_bytes_per_token)   /* kept softmax layers (softmax_layers metadata) */
            fprintf(stderr, "%s: kept softmax layers %s: their KV cache holds %zu bytes per token (%.0f bytes "
                            "after %lld tokens), grows with the context\n", desc,
                    lc_lolcats_meta(&lm.lp, "softmax_layers") ? lc_lolcats_meta(&lm.lp, "softmax_layers") : "?",
                    lm.lrun.kv_bytes_per_token, (double)lm.lrun.kv_bytes_per_token * (double)tool_lm_pos(&lm),
                    tool_lm_pos(&lm));
    }
    rc = 0;
done:
    free(prompt_mem);
    free(ids);
    lc_sampler_free(&smp);
    tool_lm_free(&lm);
    lc_tokenizer_free(&tok);
    lc_model_free(&m);
    return rc;
}
