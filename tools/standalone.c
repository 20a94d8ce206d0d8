/* standalone.c - see standalone.h. */
#define _POSIX_C_SOURCE 200809L
#include "standalone.h"
#include "outsafe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

static int sa_is_dir(const char *p) {
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int sa_is_file(const char *p) {
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int sa_ends(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* copies src to dst byte for byte; prints the error and returns 1 on failure */
static int sa_copy(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb"), *out;
    char buf[1 << 16];
    size_t n;
    int ok = 1;
    if (!in) { fprintf(stderr, "lolcats: error: cannot read %s\n", src); return 1; }
    outsafe_tmp(dst);   /* inside a staging directory: removed if a signal lands */
    if (!(out = fopen(dst, "wb"))) {
        fprintf(stderr, "lolcats: error: cannot create %s\n", dst);
        fclose(in);
        return 1;
    }
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) { ok = 0; break; }
    if (ferror(in)) ok = 0;
    fclose(in);
    if (fclose(out) != 0) ok = 0;
    if (!ok) fprintf(stderr, "lolcats: error: copying %s to %s failed (disk full?)\n", src, dst);
    return !ok;
}

int tool_hf_tokenizer_files(const char *dir, const char *model_path, const char *tok_path, const char *cmd) {
    static const char *const names[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "tokenizer.model", "generation_config.json"};
    char src[4096], dst[4096];
    size_t i;
    if (sa_is_dir(model_path))
        for (i = 0; i < sizeof names / sizeof names[0]; i++) {
            snprintf(src, sizeof src, "%s/%s", model_path, names[i]);
            snprintf(dst, sizeof dst, "%s/%s", dir, names[i]);
            if (sa_is_file(src) && sa_copy(src, dst)) return 1;
        }
    if (!tok_path) return 0;
    snprintf(src, sizeof src, "%s/tokenizer.json", model_path ? model_path : "");
    if (sa_is_dir(model_path) && !strcmp(src, tok_path)) return 0;   /* already there */
    if (sa_ends(tok_path, ".json")) {
        snprintf(dst, sizeof dst, "%s/tokenizer.json", dir);
        return sa_copy(tok_path, dst);
    }
    snprintf(dst, sizeof dst, "%s/tokenizer.bin", dir);
    if (sa_copy(tok_path, dst)) return 1;
    fprintf(stderr, "lolcats: %s: the llama2.c tokenizer %s has no tokenizer.json form: copied as tokenizer.bin "
                    "(generate/eval find it there; Hugging Face tools do not)\n", cmd, tok_path);
    return 0;
}

const char *tool_hf_tokenizer_path(const char *dir, char *buf, size_t cap) {
    char bin[4096];
    snprintf(buf, cap, "%s/tokenizer.json", dir);
    snprintf(bin, sizeof bin, "%s/tokenizer.bin", dir);
    if (!sa_is_file(buf) && sa_is_file(bin)) snprintf(buf, cap, "%s", bin);
    return buf;
}

/* s as a JSON string (quotes included) */
static void sa_json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* the whole file, NUL-terminated (NULL: unreadable) */
static char *sa_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = (char *)malloc((size_t)n + 1)) != NULL) {
        *len = fread(buf, 1, (size_t)n, f);
        buf[*len] = 0;
    }
    fclose(f);
    return buf;
}

static const char *sa_variant(const lc_lolcats *lp) { return lp->hybrid.variant == LOLCATS_WINDOW_SW ? "sw" : "tk"; }

/* "LlamaForCausalLM" -> "LolcatsLlamaForCausalLM" (llama2.c: Llama) */
static void sa_lolcats_arch(const lc_model *m, char *buf, size_t cap) {
    const char *a = m->cfg.arch;
    if (!strcmp(a, "llama2c") || !a[0] || strncmp(a, "gguf:", 5) == 0 || !strstr(a, "ForCausalLM"))
        a = "LlamaForCausalLM";
    snprintf(buf, cap, "Lolcats%s", a);
}

int tool_hf_mark_lolcats(const char *dir, const lc_model *m, const lc_lolcats *lp, const char *ckpt,
                         const char *model_path) {
    static const char *const extras[] = {"stage", "model", "data", "seq_len", "grad_accum", "lr0", "layers"};
    char path[4096], arch[160];
    char *txt, *end, *a;
    size_t len = 0, i;
    FILE *f;
    int ok;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!(txt = sa_slurp(path, &len)) || !(end = strrchr(txt, '}'))) {
        fprintf(stderr, "lolcats: error: %s: cannot read the config just written\n", path);
        free(txt);
        return 1;
    }
    while (end > txt && (end[-1] == '\n' || end[-1] == ' ')) end--;
    *end = 0;
    sa_lolcats_arch(m, arch, sizeof arch);
    if (!(f = fopen(path, "wb"))) {
        fprintf(stderr, "lolcats: error: cannot rewrite %s\n", path);
        free(txt);
        return 1;
    }
    /* the loaders (ours, transformers) read the first architecture: the teacher's
       layout of the weights; the second one names what the directory holds */
    a = strstr(txt, "ForCausalLM\"]");
    if (a) {
        a += strlen("ForCausalLM\"");
        fwrite(txt, 1, (size_t)(a - txt), f);
        fprintf(f, ", \"%s\"", arch);
        fputs(a, f);
    } else {
        fputs(txt, f);
    }
    fprintf(f, ",\n  \"lolcats\": {\n    \"linearized\": true,\n    \"architecture\": \"%s\",\n", arch);
    fprintf(f, "    \"note\": \"LoLCATs linearized attention (github.com/HazyResearch/lolcats): run it with "
               "`lolcats generate/eval --model DIR` (linearized by default). The q/k/v/o weights have the LoRA "
               "merged in; the feature maps and window factors are the model.layers.*.self_attn.feature_map_* "
               "and window_factors tensors. A plain %s loader ignores them and runs softmax attention.\",\n",
            arch + strlen("Lolcats"));
    fprintf(f, "    \"variant\": \"%s\",\n    \"window\": %d,\n    \"feature_map\": \"%s\",\n"
               "    \"feature_dim\": %d,\n    \"halfspace\": %s,\n    \"affine\": %s,\n"
               "    \"lora_rank\": %d,\n    \"lora_alpha\": %.9g,\n    \"lora_merged\": %s,\n",
            sa_variant(lp), lp->hybrid.window, lc_fmap_act_name(lp->fmap.act), lp->feature_dim,
            lp->fmap.halfspace ? "true" : "false", lp->hybrid.affine ? "true" : "false", lp->lora_rank,
            (double)lp->lora_alpha, lp->lora_rank > 0 && lp->lora_a && lp->lora_b ? "true" : "false");
    if (lp->gate_w) fputs("    \"gate\": true,\n", f);   /* the gated linear state (gate_proj_lolcats tensors) */
    fputs("    \"teacher_architecture\": ", f);
    sa_json_str(f, m->cfg.arch);
    fputs(",\n    \"teacher\": ", f);
    sa_json_str(f, model_path);
    fputs(",\n    \"checkpoint\": ", f);
    sa_json_str(f, ckpt);
    fputs(",\n    \"training\": {", f);
    for (i = 0, ok = 0; i < sizeof extras / sizeof extras[0]; i++) {
        const char *v = lc_lolcats_meta(lp, extras[i]);
        if (!v) continue;
        fprintf(f, "%s\"%s\": ", ok++ ? ", " : "", extras[i]);
        sa_json_str(f, v);
    }
    fputs("}\n  }\n}\n", f);
    ok = fclose(f) == 0;
    free(txt);
    if (!ok) fprintf(stderr, "lolcats: error: writing %s failed (disk full?)\n", path);
    return !ok;
}

/* B (out, r) with the rows of each head of q/k permuted as lc_model_export_hf
   permutes the weights (llama2.c: interleaved to rotate_half) */
static void sa_permute_rows(float *dst, const float *src, int rows, int cols, int D, int permute) {
    int r;
    for (r = 0; r < rows; r++) {
        int h = r / D, j = r % D, half = D / 2;
        int s = permute ? h * D + (j < half ? 2 * j : 2 * (j - half) + 1) : r;
        memcpy(dst + (size_t)r * cols, src + (size_t)s * cols, sizeof(float) * (size_t)cols);
    }
}

int tool_peft_write(const char *dir, const lc_model *m, const lc_lolcats *lp, const char *ckpt,
                    const char *model_path) {
    static const char *const tg_name[4] = {"q_proj", "k_proj", "v_proj", "o_proj"};
    const lc_model_config *c = &m->cfg;
    int L = c->n_layers, r = lp->lora_rank, l, tg, k = 0, rc = 1;
    lc_tensor *ts = NULL;
    char *names = NULL, path[4096];
    float **bufs = NULL;
    lc_error err;
    FILE *f;
    memset(&err, 0, sizeof err);
    if (r <= 0 || !lp->lora_a || !lp->lora_b) {
        fprintf(stderr, "lolcats: error: --peft: %s has no LoRA (a stage 1 checkpoint?): nothing to write\n", ckpt);
        return 1;
    }
    ts = (lc_tensor *)calloc((size_t)L * 8, sizeof *ts);
    names = (char *)calloc((size_t)L * 8, 96);
    bufs = (float **)calloc((size_t)L * 8, sizeof *bufs);
    if (!ts || !names || !bufs) { fprintf(stderr, "lolcats: out of memory\n"); goto done; }
    for (l = 0; l < L; l++)
        for (tg = 0; tg < 4; tg++) {
            const lc_weight *w = tg == 0 ? &m->layers[l].wq : tg == 1 ? &m->layers[l].wk
                               : tg == 2 ? &m->layers[l].wv : &m->layers[l].wo;
            int in = (int)w->cols, out = (int)w->rows, ab;
            for (ab = 0; ab < 2; ab++) {
                lc_tensor *t = &ts[k];
                const float *src = ab == 0 ? lp->lora_a[l][tg] : lp->lora_b[l][tg];
                int rows = ab == 0 ? r : out, cols = ab == 0 ? in : r;
                float *d = (float *)calloc((size_t)rows * (size_t)cols, sizeof(float));
                if (!d) { fprintf(stderr, "lolcats: out of memory\n"); goto done; }
                bufs[k] = d;
                /* a target without LoRA: zeros (B A = 0, as PEFT's own initialisation) */
                if (src) sa_permute_rows(d, src, rows, cols, c->head_dim, ab == 1 && tg < 2 && c->rope_interleaved);
                snprintf(names + 96 * (size_t)k, 96, "base_model.model.model.layers.%d.self_attn.%s.lora_%c.weight",
                         l, tg_name[tg], ab == 0 ? 'A' : 'B');
                t->name = names + 96 * (size_t)k;
                t->dtype = LOLCATS_DTYPE_F32;
                t->ndim = 2;
                t->shape[0] = rows;
                t->shape[1] = cols;
                t->nbytes = sizeof(float) * (size_t)rows * (size_t)cols;
                t->data = d;
                k++;
            }
        }
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    outsafe_tmp(path);
    outsafe_st_tmp(-1, path);
    {
        const char *meta[2] = {"format", "pt"};
        if (lc_st_write(path, ts, k, meta, 1, &err)) { tool_report(&err); goto done; }
    }
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    outsafe_tmp(path);
    if (!(f = fopen(path, "wb"))) { fprintf(stderr, "lolcats: error: cannot create %s\n", path); goto done; }
    fputs("{\n  \"peft_type\": \"LORA\",\n  \"task_type\": \"CAUSAL_LM\",\n  \"base_model_name_or_path\": ", f);
    sa_json_str(f, model_path);
    fprintf(f, ",\n  \"r\": %d,\n  \"lora_alpha\": %.9g,\n  \"lora_dropout\": 0.0,\n"
               "  \"target_modules\": [\"q_proj\", \"k_proj\", \"v_proj\", \"o_proj\"],\n"
               "  \"bias\": \"none\",\n  \"fan_in_fan_out\": false,\n  \"inference_mode\": true,\n"
               "  \"init_lora_weights\": true,\n  \"use_rslora\": false,\n  \"use_dora\": false,\n"
               "  \"modules_to_save\": null,\n  \"layers_to_transform\": null,\n  \"layers_pattern\": null,\n"
               "  \"rank_pattern\": {},\n  \"alpha_pattern\": {},\n  \"revision\": null\n}\n",
            r, (double)lp->lora_alpha);
    if (fclose(f) != 0) { fprintf(stderr, "lolcats: error: writing %s failed\n", path); goto done; }
    snprintf(path, sizeof path, "%s/README.md", dir);
    outsafe_tmp(path);
    if (!(f = fopen(path, "wb"))) { fprintf(stderr, "lolcats: error: cannot create %s\n", path); goto done; }
    fprintf(f, "# LoRA of a LoLCATs linearized model, as a PEFT adapter\n\n"
               "Rank %d, alpha %g (scale alpha/r = %g) on q_proj, k_proj, v_proj, o_proj of every layer,\n"
               "for the teacher `%s` in Hugging Face layout%s.\n\n"
               "PEFT cannot express the rest of the linearized model: the feature maps\n"
               "(`model.layers.*.self_attn.feature_map_{q,k}`) and the window factors\n"
               "(`window_factors`, %s window %d) stay in the LoLCATs checkpoint `%s`.\n"
               "Loaded with PEFT on the teacher, this adapter gives the teacher's SOFTMAX attention\n"
               "plus the LoRA, not the linearized model; `lolcats generate --model TEACHER --lolcats CKPT`\n"
               "(or a `--merge` directory) runs the linearized one.\n",
            r, (double)lp->lora_alpha, (double)(lp->lora_alpha / (float)r), model_path,
            c->rope_interleaved ? " (a llama2.c model: q/k rows as `lolcats convert --from-llama2c` writes them)"
                                : "",
            sa_variant(lp), lp->hybrid.window, ckpt);
    if (fclose(f) != 0) { fprintf(stderr, "lolcats: error: writing %s failed\n", path); goto done; }
    rc = 0;
done:
    if (bufs)
        for (l = 0; l < k; l++) free(bufs[l]);
    free(bufs);
    free(ts);
    free(names);
    return rc;
}

/* dir/model.safetensors when it holds LoLCATs metadata (caller closes), else NULL */
static lc_st_file *sa_lolcats_st(const char *path) {
    char file[4096];
    lc_st_file *f = NULL;
    lc_error err;
    if (!sa_is_dir(path)) return NULL;
    snprintf(file, sizeof file, "%s/model.safetensors", path);
    if (!sa_is_file(file) || lc_st_open(&f, file, &err)) return NULL;
    if (!lc_st_meta(f, "lolcats_format")) { lc_st_close(f); return NULL; }
    return f;
}

static void sa_describe(const lc_st_file *f, char *buf, size_t cap) {
    const char *v = lc_st_meta(f, "variant"), *w = lc_st_meta(f, "window"), *fm = lc_st_meta(f, "feature_map"),
               *fd = lc_st_meta(f, "feature_dim"), *mg = lc_st_meta(f, "lora_merged"), *g = lc_st_meta(f, "gate");
    snprintf(buf, cap, "%s, window %s, %s f=%s%s%s", v ? v : "tk", w ? w : "?", fm ? fm : "softmax_dim",
             fd ? fd : "?", mg && !strcmp(mg, "1") ? ", LoRA merged" : "", g && !strcmp(g, "1") ? ", gated" : "");
}

void tool_inspect_lolcats(const char *path) {
    lc_st_file *f = sa_lolcats_st(path);
    char d[256];
    if (!f) return;
    sa_describe(f, d, sizeof d);
    printf("  LoLCATs linearized (%s): generate/eval run it linearized; --softmax runs its weights with softmax attention\n", d);
    lc_st_close(f);
}

int tool_lm_auto(const char *model_path, tool_lm_opts *lo, int softmax, const char *cmd) {
    lc_st_file *f;
    char d[256];
    if (softmax && lo->lolcats) {
        fprintf(stderr, "lolcats: error: %s: --softmax and --lolcats contradict each other: give one\n", cmd);
        return 2;
    }
    if (lo->lolcats || !(f = sa_lolcats_st(model_path))) return 0;
    sa_describe(f, d, sizeof d);
    lc_st_close(f);
    if (softmax) {
        fprintf(stderr, "lolcats: %s: %s is a LoLCATs linearized model (%s): running softmax attention (--softmax)\n",
                cmd, model_path, d);
        return 0;
    }
    fprintf(stderr, "lolcats: %s: %s is a LoLCATs linearized model (%s): running it linearized "
                    "(--softmax runs softmax attention)\n", cmd, model_path, d);
    lo->lolcats = model_path;
    return 0;
}
