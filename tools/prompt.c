/* prompt.c - prompt files, chat templates and the interactive mode of
   `lolcats generate` (see prompt.h). */
#define _POSIX_C_SOURCE 200809L
#include "prompt.h"
#include "data.h"
#include "walltime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *tool_prompt_read(const char *flag, const char *path) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    const char *what = strcmp(path, "-") ? path : "- (stdin)";
    char *buf = NULL, *g;
    size_t n = 0, cap = 0, r;
    if (!f) {
        fprintf(stderr, "lolcats: error: %s %s: cannot open the file: %s\n", flag, path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (cap - n < 4096) {
            cap = cap ? 2 * cap : 65536;
            if (!(g = (char *)realloc(buf, cap + 1))) {
                fprintf(stderr, "lolcats: error: %s %s: out of memory\n", flag, what);
                free(buf);
                if (f != stdin) fclose(f);
                return NULL;
            }
            buf = g;
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (ferror(f)) {
        fprintf(stderr, "lolcats: error: %s %s: read failed\n", flag, what);
        free(buf);
        if (f != stdin) fclose(f);
        return NULL;
    }
    if (f != stdin) fclose(f);
    buf[n] = 0;
    if (memchr(buf, 0, n)) {
        fprintf(stderr, "lolcats: error: %s %s: holds a NUL byte at offset %ld; a prompt is text\n", flag, what,
                (long)((char *)memchr(buf, 0, n) - buf));
        free(buf);
        return NULL;
    }
    if (n && buf[n - 1] == '\n') buf[--n] = 0;   /* as llama.cpp's -f */
    if (n && buf[n - 1] == '\r') buf[--n] = 0;
    if (n == 0) {
        fprintf(stderr, "lolcats: error: %s %s: the prompt is empty; write the prompt into it, or leave the "
                        "flag out to start from BOS\n", flag, what);
        free(buf);
        return NULL;
    }
    return buf;
}

const char *tool_chat_name(int tpl) {
    return tpl == TOOL_CHAT_ALPACA ? "alpaca" : tpl == TOOL_CHAT_LLAMA3 ? "llama3"
         : tpl == TOOL_CHAT_CHATML ? "chatml" : "none";
}

static int has_piece(const lc_tokenizer *tok, const char *p) { return lc_tokenizer_find(tok, p, strlen(p)) >= 0; }

int tool_prompt_setup(tool_prompt_opts *po, const lc_tokenizer *tok) {
    static const char *need[4][3] = {{NULL}, {NULL}, {"<|begin_of_text|>", "<|start_header_id|>", "<|eot_id|>"},
                                     {"<|im_start|>", "<|im_end|>", NULL}};
    int k;
    po->tpl = TOOL_CHAT_NONE;
    if (!po->chat) {
        if (po->tpl_name || po->system) {
            fprintf(stderr, "lolcats: error: %s needs --chat\n", po->tpl_name ? "--chat-template" : "--system");
            return 1;
        }
        return 0;
    }
    if (po->tpl_name) po->tpl = !strcmp(po->tpl_name, "alpaca") ? TOOL_CHAT_ALPACA
                              : !strcmp(po->tpl_name, "llama3") ? TOOL_CHAT_LLAMA3 : TOOL_CHAT_CHATML;
    else if (has_piece(tok, "<|start_header_id|>") && has_piece(tok, "<|eot_id|>")) po->tpl = TOOL_CHAT_LLAMA3;
    else if (has_piece(tok, "<|im_start|>") && has_piece(tok, "<|im_end|>")) po->tpl = TOOL_CHAT_CHATML;
    else po->tpl = TOOL_CHAT_ALPACA;   /* no chat tokens: the template of the Alpaca training data */
    for (k = 0; k < 3 && need[po->tpl][k]; k++)
        if (!has_piece(tok, need[po->tpl][k])) {
            fprintf(stderr, "lolcats: error: --chat-template %s: the tokenizer has no %s token; pick the "
                            "model's own template (alpaca|llama3|chatml) or leave --chat-template out\n",
                    tool_chat_name(po->tpl), need[po->tpl][k]);
            return 1;
        }
    if (po->tpl == TOOL_CHAT_ALPACA && tok->eos_id < 0) {
        fprintf(stderr, "lolcats: error: --chat: the alpaca template ends a reply with EOS but the tokenizer "
                        "has none\n");
        return 1;
    }
    if (po->system && po->tpl == TOOL_CHAT_ALPACA) {
        fprintf(stderr, "lolcats: error: --system: the alpaca template has no system role; leave --system out "
                        "or use --chat-template llama3|chatml\n");
        return 1;
    }
    return 0;
}

int tool_chat_end_id(const lc_tokenizer *tok, int tpl) {
    if (tpl == TOOL_CHAT_LLAMA3) return lc_tokenizer_find(tok, "<|eot_id|>", 10);
    if (tpl == TOOL_CHAT_CHATML) return lc_tokenizer_find(tok, "<|im_end|>", 10);
    if (tpl == TOOL_CHAT_ALPACA) return tok->eos_id;
    return -1;
}

static int ids_reserve(int **ids, size_t *cap, size_t need) {
    int *g;
    size_t c = *cap ? *cap : 64;
    if (need <= *cap) return 0;
    while (c < need) c *= 2;
    if (!(g = (int *)realloc(*ids, c * sizeof(int)))) { fprintf(stderr, "lolcats: error: out of memory\n"); return 1; }
    *ids = g;
    *cap = c;
    return 0;
}

/* a template marker: its one special id, spliced (never split as text) */
static int push_special(const lc_tokenizer *tok, const char *piece, int **ids, size_t *n, size_t *cap) {
    int id = lc_tokenizer_find(tok, piece, strlen(piece));
    if (id < 0) { fprintf(stderr, "lolcats: error: --chat: the tokenizer has no %s token\n", piece); return 1; }
    if (ids_reserve(ids, cap, *n + 1)) return 1;
    (*ids)[(*n)++] = id;
    return 0;
}

static int push_special_id(int id, int **ids, size_t *n, size_t *cap) {
    if (ids_reserve(ids, cap, *n + 1)) return 1;
    (*ids)[(*n)++] = id;
    return 0;
}

/* text; bos: BOS first; cont: no SentencePiece dummy prefix (text that
   continues a sequence) */
static int push_text(const lc_tokenizer *tok, const char *s, int bos, int cont, int **ids, size_t *n, size_t *cap) {
    lc_tokenizer t = *tok;   /* a shallow copy: only the prefix flag differs */
    lc_error err;
    size_t len = strlen(s), got = 0;
    memset(&err, 0, sizeof err);
    if (cont) t.add_prefix_space = 0;
    if (ids_reserve(ids, cap, *n + len + 3)) return 1;
    if (lc_tokenizer_encode(&t, s, len, bos, 0, *ids + *n, *cap - *n, &got, &err)) return tool_report(&err);
    *n += got;
    return 0;
}

int tool_chat_turn(const lc_tokenizer *tok, int tpl, int first, const char *system, const char *user,
                   int **ids, size_t *n, size_t *cap) {
    int rc = 0;
    if (tpl == TOOL_CHAT_NONE) return push_text(tok, user, first, !first, ids, n, cap);
    if (tpl == TOOL_CHAT_ALPACA) {   /* each turn a record as in training: BOS + the section-9 prompt */
        tool_alpaca_rec r;
        char *p;
        memset(&r, 0, sizeof r);
        r.instruction = (char *)(size_t)user;
        r.input = NULL;
        if (!(p = tool_alpaca_prompt(&r))) { fprintf(stderr, "lolcats: error: out of memory\n"); return 1; }
        rc = push_text(tok, p, 1, 0, ids, n, cap);
        free(p);
        return rc;
    }
    if (tpl == TOOL_CHAT_LLAMA3) {
        if (first) {
            rc |= push_special(tok, "<|begin_of_text|>", ids, n, cap);
            if (system && !rc) {
                rc |= push_special(tok, "<|start_header_id|>", ids, n, cap) || push_text(tok, "system", 0, 1, ids, n, cap) ||
                      push_special(tok, "<|end_header_id|>", ids, n, cap) || push_text(tok, "\n\n", 0, 1, ids, n, cap) ||
                      push_text(tok, system, 0, 1, ids, n, cap) || push_special(tok, "<|eot_id|>", ids, n, cap);
            }
        }
        return rc || push_special(tok, "<|start_header_id|>", ids, n, cap) || push_text(tok, "user", 0, 1, ids, n, cap) ||
               push_special(tok, "<|end_header_id|>", ids, n, cap) || push_text(tok, "\n\n", 0, 1, ids, n, cap) ||
               push_text(tok, user, 0, 1, ids, n, cap) || push_special(tok, "<|eot_id|>", ids, n, cap) ||
               push_special(tok, "<|start_header_id|>", ids, n, cap) || push_text(tok, "assistant", 0, 1, ids, n, cap) ||
               push_special(tok, "<|end_header_id|>", ids, n, cap) || push_text(tok, "\n\n", 0, 1, ids, n, cap);
    }
    /* ChatML: "<|im_start|>role\ncontent<|im_end|>\n" per message, then "<|im_start|>assistant\n" */
    if (!first) rc = push_text(tok, "\n", 0, 1, ids, n, cap);   /* after the reply's <|im_end|> */
    if (first && system && !rc)
        rc = push_special(tok, "<|im_start|>", ids, n, cap) || push_text(tok, "system\n", 0, 1, ids, n, cap) ||
             push_text(tok, system, 0, 1, ids, n, cap) || push_special(tok, "<|im_end|>", ids, n, cap) ||
             push_text(tok, "\n", 0, 1, ids, n, cap);
    return rc || push_special(tok, "<|im_start|>", ids, n, cap) || push_text(tok, "user\n", 0, 1, ids, n, cap) ||
           push_text(tok, user, 0, 1, ids, n, cap) || push_special(tok, "<|im_end|>", ids, n, cap) ||
           push_text(tok, "\n", 0, 1, ids, n, cap) || push_special(tok, "<|im_start|>", ids, n, cap) ||
           push_text(tok, "assistant\n", 0, 1, ids, n, cap);
}

void tool_prompt_print_ids(const int *ids, size_t n) {
    size_t i;
    fprintf(stderr, "prompt: %zu tokens:", n);
    for (i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

/* a piece on stdout; lone unprintable control bytes are skipped */
static void out_piece(const char *p, size_t n) {
    if (n == 1 && (unsigned char)p[0] < 32 && p[0] != '\n' && p[0] != '\t' && p[0] != '\r') return;
    fwrite(p, 1, n, stdout);
    fflush(stdout);
}

/* one line of stdin without its newline; NULL at EOF */
static char *read_line(int tty) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    if (tty) { fprintf(stderr, "> "); fflush(stderr); }
    got = getline(&line, &cap, stdin);
    if (got < 0) { free(line); return NULL; }
    while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
    return line;
}

int tool_prompt_interactive(const lc_model *m, const lc_tokenizer *tok, const tool_lm_opts *lo,
                            const tool_prompt_opts *po, const tool_gen_params *gp, const char *prompt) {
    tool_lm lm;
    lc_sampler smp;
    lc_error err;
    int *ids = NULL, rc = 1, turn, pending = -1, closed = 1, tty = isatty(0), chunk;
    int end_id = tool_chat_end_id(tok, po->tpl);
    size_t n = 0, cap = 0, off;
    long long n_fed = 0, n_dec = 0;
    double t_fed = 0, t_dec = 0, t;
    char *line = NULL, piece[1024];
    memset(&err, 0, sizeof err);
    memset(&lm, 0, sizeof lm);
    memset(&smp, 0, sizeof smp);
    if (tool_lm_init(&lm, m, lo, gp->ctx > 0 ? gp->ctx : m->cfg.seq_len, 64, &err)) return 1;
    if (lc_sampler_init(&smp, m->cfg.vocab_size, gp->temperature, gp->top_p, gp->seed, &err)) {
        tool_report(&err);
        goto done;
    }
    chunk = tool_lm_max_tokens(&lm);
    for (turn = 0;; turn++) {
        int prev, next, count = 0;
        if (turn == 0 && prompt && prompt[0]) line = NULL;
        else if (!(line = read_line(tty)) || !strcmp(line, "/exit")) break;
        n = 0;
        if (pending >= 0) {   /* the last token of the reply (printed, not yet fed) */
            if (ids_reserve(&ids, &cap, 1)) goto done;
            ids[n++] = pending;
        }
        if (!closed && end_id >= 0 && push_special_id(end_id, &ids, &n, &cap)) goto done;
        if (tool_chat_turn(tok, po->tpl, turn == 0, po->system, line ? line : prompt, &ids, &n, &cap)) goto done;
        if (turn == 0 && n == 0) {   /* as generate: an empty prompt starts from BOS */
            if (ids_reserve(&ids, &cap, 1)) goto done;
            ids[n++] = m->cfg.bos_id >= 0 ? m->cfg.bos_id : 0;
        }
        free(line);
        line = NULL;
        if (n == 0) continue;   /* an empty line without a template: nothing to feed */
        if (po->verbose) tool_prompt_print_ids(ids, n);
        if (!lm.linear && tool_lm_pos(&lm) + (long long)n >= lm.ctx) {
            fprintf(stderr, "lolcats: error: the conversation needs more than the %d positions of the KV cache; "
                            "start again with a larger --ctx (at most the model's %d) or run it linearized "
                            "(--lolcats: constant memory)\n", lm.ctx, m->cfg.seq_len);
            goto done;
        }
        t = tool_wall_seconds();
        for (off = 0; off < n; off += (size_t)chunk) {
            int k = n - off < (size_t)chunk ? (int)(n - off) : chunk;
            if (tool_lm_forward(&lm, ids + off, k, NULL, &err)) goto done;
        }
        t_fed += tool_wall_seconds() - t;
        n_fed += (long long)n;
        t = tool_wall_seconds();
        prev = ids[n - 1];
        pending = -1;
        closed = 0;
        for (;;) {
            next = lc_sampler_sample(&smp, lm.logits);
            if (next == end_id || next == m->cfg.eos_id || next == m->cfg.bos_id || next == tok->eos_id) {
                if (po->tpl != TOOL_CHAT_NONE) {   /* the turn's end goes into the history */
                    pending = end_id >= 0 ? end_id : next;
                    closed = 1;
                }
                break;
            }
            out_piece(piece, lc_tokenizer_decode(tok, prev, next, piece, sizeof piece));
            prev = next;
            if (++count >= gp->n_new && gp->n_new > 0) { pending = next; break; }
            if (!lm.linear && tool_lm_pos(&lm) + 1 >= lm.ctx) { pending = next; break; }
            if (tool_lm_forward(&lm, &next, 1, NULL, &err)) goto done;
            n_dec++;
        }
        t_dec += tool_wall_seconds() - t;
        printf("\n");
        fflush(stdout);
    }
    tool_report_rate("generate: turns fed", n_fed, t_fed);
    tool_report_rate("generate: decode", n_dec, t_dec);
    if (lm.linear) {
        char desc[256];
        tool_lm_describe(&lm, desc, sizeof desc);
        fprintf(stderr, "%s: state %zu bytes after %lld tokens of conversation (constant across turns)\n", desc,
                lm.lrun.state_bytes, tool_lm_pos(&lm));
    }
    rc = 0;
done:
    free(line);
    free(ids);
    lc_sampler_free(&smp);
    tool_lm_free(&lm);
    return rc;
}
