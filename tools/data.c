/* data.c - text and Alpaca JSONL data: reading, the prompt template, packing
   into chunks, validation split and shuffled order (see data.h). */
#define _POSIX_C_SOURCE 200809L
#include "data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* NULL (errno set) for what is not a regular file: a FIFO would block, a
   device never ends, a directory reads as nothing */
static FILE *open_regular(const char *path, struct stat *sb) {
    FILE *f;
    if (stat(path, sb) != 0) return NULL;
    if (!S_ISREG(sb->st_mode)) { errno = S_ISDIR(sb->st_mode) ? EISDIR : EINVAL; return NULL; }
    f = fopen(path, "rb");
    return f;
}

char *tool_read_file(const char *path, size_t *n) {
    struct stat sb;
    FILE *f = open_regular(path, &sb);
    char *buf;
    long sz;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = (char *)malloc((size_t)sz + 1);
    if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) { buf[sz] = 0; *n = (size_t)sz; }
    return buf;
}

char *tool_read_text(const char *path, size_t *n, lc_error *err) {
    struct stat sb;
    const unsigned char *u;
    char *text;
    size_t i, k, nul = 0;
    int bom16, bom32;
    if (stat(path, &sb) != 0)
        return lc_error_set(err, LOLCATS_ERR_IO, "%s: cannot open: %s (check the path)", path, strerror(errno)), NULL;
    if (!S_ISREG(sb.st_mode))
        return lc_error_set(err, LOLCATS_ERR_IO, "%s: is %s, expected a regular file%s", path,
                            S_ISDIR(sb.st_mode) ? "a directory" : S_ISFIFO(sb.st_mode) ? "a FIFO (named pipe)" :
                            S_ISCHR(sb.st_mode) ? "a character device" : "not a regular file",
                            S_ISDIR(sb.st_mode) ? " (check the path)" : ": reading it could block or never end; "
                            "save the data to a file and pass that"), NULL;
    if (!(text = tool_read_file(path, n)))
        return lc_error_set(err, LOLCATS_ERR_IO, "%s: cannot read: %s", path, strerror(errno)), NULL;
    u = (const unsigned char *)text;
    k = *n < 4096 ? *n : 4096;
    for (i = 0; i < k; i++) nul += u[i] == 0;
    bom16 = *n >= 2 && ((u[0] == 0xFF && u[1] == 0xFE) || (u[0] == 0xFE && u[1] == 0xFF));
    bom32 = *n >= 4 && ((u[0] == 0xFF && u[1] == 0xFE && !u[2] && !u[3]) || (!u[0] && !u[1] && u[2] == 0xFE && u[3] == 0xFF));
    if (bom16 || bom32 || (k >= 4 && nul * 8 >= k)) {   /* UTF-8 text has no NUL bytes */
        const char *enc = bom32 || (!bom16 && nul * 8 >= 5 * k) ? "UTF-32" : "UTF-16";
        lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: looks like %s text (%s), not UTF-8: convert it to UTF-8 first "
                     "(e.g. iconv -f %s -t UTF-8 %s > %s.utf8)", path, enc, bom16 || bom32 ? "a byte-order mark" :
                     "NUL bytes between the characters", enc, path, path);
        free(text);
        return NULL;
    }
    return text;
}

int tool_is_jsonl(const char *path) {
    size_t n = strlen(path);
    return n >= 6 && !strcmp(path + n - 6, ".jsonl");
}

/* ---- a strict JSON reader for one object per line ---- */
typedef struct {
    const char *p, *start;
    const char *why;
} jl_parser;

static void jl_ws(jl_parser *j) {
    while (*j->p == ' ' || *j->p == '\t' || *j->p == '\r') j->p++;
}

static int jl_hex4(const char *s, unsigned *out) {
    int i;
    *out = 0;
    for (i = 0; i < 4; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                   : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16u;
        if (d > 15) return 0;
        *out = *out * 16 + d;
    }
    return 1;
}

/* Parses a string at j->p ('"'); returns a malloc'd UTF-8 copy when keep. */
static int jl_string(jl_parser *j, char **out) {
    const char *s = j->p + 1;
    char *o = NULL, *w;
    size_t n = 0;
    if (*j->p != '"') { j->why = "expected a string"; return 0; }
    while (s[n] && s[n] != '"') { if (s[n] == '\\' && s[n + 1]) n++; n++; }
    if (!s[n]) { j->why = "unterminated string"; return 0; }
    if (out) { o = (char *)malloc(n + 1); if (!o) { j->why = "out of memory"; return 0; } }
    w = o;
    while (*s != '"') {
        unsigned cp;
        if ((unsigned char)*s < 0x20) { j->why = "control character in a string"; free(o); return 0; }
        if (*s != '\\') { if (w) *w++ = *s; s++; continue; }
        s++;
        switch (*s) {
        case '"': case '\\': case '/': cp = (unsigned char)*s; break;
        case 'n': cp = '\n'; break;
        case 't': cp = '\t'; break;
        case 'r': cp = '\r'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'u':
            if (!jl_hex4(s + 1, &cp)) { j->why = "bad \\u escape"; free(o); return 0; }
            s += 4;
            if (cp >= 0xD800 && cp < 0xDC00) {
                unsigned lo;
                if (s[1] != '\\' || s[2] != 'u' || !jl_hex4(s + 3, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                    j->why = "lone surrogate in \\u escape"; free(o); return 0;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                s += 6;
            } else if (cp >= 0xDC00 && cp < 0xE000) { j->why = "lone surrogate in \\u escape"; free(o); return 0; }
            break;
        default: j->why = "bad escape"; free(o); return 0;
        }
        s++;
        if (!w) continue;
        if (cp < 0x80) *w++ = (char)cp;
        else if (cp < 0x800) { *w++ = (char)(0xC0 | cp >> 6); *w++ = (char)(0x80 | (cp & 63)); }
        else if (cp < 0x10000) {
            *w++ = (char)(0xE0 | cp >> 12); *w++ = (char)(0x80 | ((cp >> 6) & 63)); *w++ = (char)(0x80 | (cp & 63));
        } else {
            *w++ = (char)(0xF0 | cp >> 18); *w++ = (char)(0x80 | ((cp >> 12) & 63));
            *w++ = (char)(0x80 | ((cp >> 6) & 63)); *w++ = (char)(0x80 | (cp & 63));
        }
    }
    if (w) *w = 0;
    if (out) *out = o;
    j->p = s + 1;
    return 1;
}

static int jl_value(jl_parser *j, int depth);

static int jl_container(jl_parser *j, int depth, char close) {
    int first = 1;
    j->p++;
    for (;;) {
        jl_ws(j);
        if (*j->p == close && first) { j->p++; return 1; }
        if (close == '}') {
            if (!jl_string(j, NULL)) return 0;
            jl_ws(j);
            if (*j->p != ':') { j->why = "expected ':'"; return 0; }
            j->p++;
        }
        if (!jl_value(j, depth + 1)) return 0;
        jl_ws(j);
        if (*j->p == ',') { j->p++; first = 0; continue; }
        if (*j->p == close) { j->p++; return 1; }
        j->why = close == '}' ? "expected ',' or '}'" : "expected ',' or ']'";
        return 0;
    }
}

static int jl_value(jl_parser *j, int depth) {
    const char *p;
    jl_ws(j);
    p = j->p;
    if (depth > 64) { j->why = "nested too deeply"; return 0; }
    if (*p == '"') return jl_string(j, NULL);
    if (*p == '{') return jl_container(j, depth, '}');
    if (*p == '[') return jl_container(j, depth, ']');
    if (!strncmp(p, "true", 4)) { j->p += 4; return 1; }
    if (!strncmp(p, "false", 5)) { j->p += 5; return 1; }
    if (!strncmp(p, "null", 4)) { j->p += 4; return 1; }
    if (*p == '-' || (*p >= '0' && *p <= '9')) {
        char *end;
        (void)strtod(p, &end);
        if (end == p) { j->why = "bad number"; return 0; }
        j->p = end;
        return 1;
    }
    j->why = "unexpected character";
    return 0;
}

/* Parses one line as an Alpaca record. */
static int jl_record(const char *line, tool_alpaca_rec *r, const char **why, long *col) {
    jl_parser j;
    int first = 1;
    j.p = j.start = line;
    j.why = NULL;
    jl_ws(&j);
    if (*j.p != '{') { j.why = "expected a JSON object"; goto bad; }
    j.p++;
    for (;;) {
        char *key = NULL, **dst = NULL;
        jl_ws(&j);
        if (*j.p == '}' && first) { j.p++; break; }
        if (!jl_string(&j, &key)) goto bad;
        if (!strcmp(key, "instruction")) dst = &r->instruction;
        else if (!strcmp(key, "input")) dst = &r->input;
        else if (!strcmp(key, "output")) dst = &r->output;
        free(key);
        jl_ws(&j);
        if (*j.p != ':') { j.why = "expected ':'"; goto bad; }
        j.p++;
        jl_ws(&j);
        if (dst) {
            if (*j.p != '"') { j.why = "instruction / input / output must be strings"; goto bad; }
            free(*dst);
            *dst = NULL;
            if (!jl_string(&j, dst)) goto bad;
        } else if (!jl_value(&j, 1)) goto bad;
        jl_ws(&j);
        first = 0;
        if (*j.p == ',') { j.p++; continue; }
        if (*j.p == '}') { j.p++; break; }
        j.why = "expected ',' or '}'";
        goto bad;
    }
    jl_ws(&j);
    if (*j.p) { j.why = "text after the object"; goto bad; }
    if (!r->instruction || !r->output) { j.why = "record lacks \"instruction\" or \"output\""; *col = 0; *why = j.why; return 0; }
    return 1;
bad:
    *why = j.why ? j.why : "malformed JSON";
    *col = (long)(j.p - j.start) + 1;
    return 0;
}

void tool_alpaca_free(tool_alpaca_rec *recs, long n) {
    long i;
    for (i = 0; recs && i < n; i++) {
        free(recs[i].instruction);
        free(recs[i].input);
        free(recs[i].output);
    }
    free(recs);
}

int tool_alpaca_read(const char *path, tool_alpaca_rec **recs, long *n, lc_error *err) {
    size_t sz = 0, cap = 0;
    char *text = tool_read_text(path, &sz, err), *line, *nl;
    long lineno = 0;
    tool_alpaca_rec *rs = NULL;
    *recs = NULL;
    *n = 0;
    if (!text) return 1;
    for (line = text; line && *line; line = nl ? nl + 1 : NULL) {
        const char *why;
        long col;
        tool_alpaca_rec r;
        nl = strchr(line, '\n');
        if (nl) *nl = 0;
        lineno++;
        if (line[strspn(line, " \t\r")] == 0) continue;
        memset(&r, 0, sizeof r);
        r.line = lineno;
        if (!jl_record(line, &r, &why, &col)) {
            free(r.instruction); free(r.input); free(r.output);
            tool_alpaca_free(rs, (long)*n);
            free(text);
            if (col > 0) lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: column %ld: %s", path, lineno, col, why);
            else lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: %s", path, lineno, why);
            return 1;
        }
        if ((size_t)*n == cap) {
            tool_alpaca_rec *g;
            cap = cap ? 2 * cap : 1024;
            g = (tool_alpaca_rec *)realloc(rs, cap * sizeof *rs);
            if (!g) {
                free(r.instruction); free(r.input); free(r.output);
                tool_alpaca_free(rs, *n); free(text);
                return lc_error_set(err, LOLCATS_ERR_NOMEM, "%s: out of memory", path), 1;
            }
            rs = g;
        }
        rs[(*n)++] = r;
    }
    free(text);
    if (*n == 0) return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: no records (empty file?)", path), 1;
    *recs = rs;
    return 0;
}

char *tool_alpaca_prompt(const tool_alpaca_rec *r) {
    static const char *with_input =
        "Below is an instruction that describes a task, paired with an input that provides further "
        "context. Write a response that appropriately completes the request.\n\n### Instruction:\n%s\n\n"
        "### Input:\n%s\n\n### Response:\n";
    static const char *no_input =
        "Below is an instruction that describes a task. Write a response that appropriately completes "
        "the request.\n\n### Instruction:\n%s\n\n### Response:\n";
    int has_input = r->input && r->input[0];
    size_t n = strlen(r->instruction) + (has_input ? strlen(r->input) : 0) + strlen(with_input) + 1;
    char *p = (char *)malloc(n);
    if (!p) return NULL;
    if (has_input) snprintf(p, n, with_input, r->instruction, r->input);
    else snprintf(p, n, no_input, r->instruction);
    return p;
}

int tool_alpaca_encode(const lc_tokenizer *tok, int eos_id, const tool_alpaca_rec *r, int **ids, size_t *cap,
                       size_t *n, size_t *n_prompt, lc_error *err) {
    char *prompt = tool_alpaca_prompt(r);
    size_t need, np = 0, nr = 0;
    int rc;
    if (!prompt) return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory"), 1;
    need = strlen(prompt) + strlen(r->output) + 8;
    if (need > *cap) {
        int *g = (int *)realloc(*ids, need * sizeof(int));
        if (!g) { free(prompt); return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory"), 1; }
        *ids = g;
        *cap = need;
    }
    rc = lc_tokenizer_encode(tok, prompt, strlen(prompt), 1, 0, *ids, *cap, &np, err) ||
         lc_tokenizer_encode(tok, r->output, strlen(r->output), 0, 0, *ids + np, *cap - np, &nr, err);
    free(prompt);
    if (rc) return 1;
    (*ids)[np + nr] = eos_id;
    *n = np + nr + 1;
    *n_prompt = np;
    return 0;
}

/* ---- packing ---- */
typedef struct {
    int *tok, *lab;      /* lab[i]: tok[i] when it is a target, else -1; lab NULL: every token is */
    size_t n, cap;
} stream;

static int stream_push(stream *s, const int *ids, size_t n, size_t first_target) {
    size_t i;
    if (s->n + n > s->cap) {
        size_t c = s->cap ? s->cap : 4096;
        int *a, *b;
        while (c < s->n + n) c *= 2;
        a = (int *)realloc(s->tok, c * sizeof(int));
        if (!a) return 1;
        s->tok = a;
        b = (int *)realloc(s->lab, c * sizeof(int));
        if (!b) return 1;
        s->lab = b;
        s->cap = c;
    }
    for (i = 0; i < n; i++) {
        s->tok[s->n + i] = ids[i];
        s->lab[s->n + i] = i >= first_target ? ids[i] : -1;
    }
    s->n += n;
    return 0;
}

/* Chunks [c0, c0 + count) of s into tokens / labels. */
/* chunks c0 .. c0+count-1 of T tokens: their tokens (unless tokens is NULL)
   and labels (the next token's target; -1 at a chunk's end) */
static int stream_chunks(const stream *s, long c0, long count, int T, int **tokens, int **labels) {
    long c;
    int i;
    if (tokens && !(*tokens = (int *)malloc(sizeof(int) * (size_t)(count ? count : 1) * (size_t)T))) return 1;
    *labels = (int *)malloc(sizeof(int) * (size_t)(count ? count : 1) * (size_t)T);
    if (!*labels) return 1;
    for (c = 0; c < count; c++) {
        size_t base = (size_t)(c0 + c) * (size_t)T;
        for (i = 0; i < T; i++) {
            if (tokens) (*tokens)[(size_t)c * T + i] = s->tok[base + (size_t)i];
            (*labels)[(size_t)c * T + i] = i + 1 >= T ? -1 : s->lab ? s->lab[base + (size_t)i + 1]
                                                                     : s->tok[base + (size_t)i + 1];
        }
    }
    return 0;
}

void tool_data_free(tool_data *d) {
    if (!d) return;
    free(d->tokens); free(d->labels); free(d->val_tokens); free(d->val_labels); free(d->perm);
    memset(d, 0, sizeof *d);
}

int tool_data_random(tool_data *d, int seq_len, long n, long n_val, int vocab, uint64_t seed, lc_error *err) {
    size_t per = (size_t)seq_len, i;
    long c;
    lc_rng r;
    memset(d, 0, sizeof *d);
    if (seq_len < 2 || n < 1 || n_val < 0 || vocab < 4)
        return lc_error_set(err, LOLCATS_ERR_ARG, "random data: seq_len %d, %ld chunks, vocab %d", seq_len, n, vocab), 1;
    d->seq_len = seq_len;
    d->n = n;
    d->n_val = n_val;
    d->tokens = (int *)malloc(sizeof(int) * per * (size_t)(n + n_val));
    d->labels = (int *)malloc(sizeof(int) * per * (size_t)(n + n_val));
    if (!d->tokens || !d->labels) {
        tool_data_free(d);
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "random data: out of memory"), 1;
    }
    lc_rng_seed(&r, seed ^ 0x5eedULL);
    for (c = 0; c < n + n_val; c++) {
        int *t = d->tokens + per * (size_t)c, *l = d->labels + per * (size_t)c;
        t[0] = 1;
        for (i = 1; i < per; i++) t[i] = 3 + (int)(lc_rng_u64(&r) % (uint64_t)(vocab - 3));
        for (i = 0; i + 1 < per; i++) l[i] = t[i + 1];
        l[per - 1] = -1;
    }
    if (n_val > 0) {  /* views into the same buffers */
        d->val_tokens = (int *)malloc(sizeof(int) * per * (size_t)n_val);
        d->val_labels = (int *)malloc(sizeof(int) * per * (size_t)n_val);
        if (!d->val_tokens || !d->val_labels) {
            tool_data_free(d);
            return lc_error_set(err, LOLCATS_ERR_NOMEM, "random data: out of memory"), 1;
        }
        memcpy(d->val_tokens, d->tokens + per * (size_t)n, sizeof(int) * per * (size_t)n_val);
        memcpy(d->val_labels, d->labels + per * (size_t)n, sizeof(int) * per * (size_t)n_val);
    }
    d->stream_tokens = (long long)(n + n_val) * seq_len;
    d->perm = (long *)malloc(sizeof(long) * (size_t)n);
    if (!d->perm) {
        tool_data_free(d);
        return lc_error_set(err, LOLCATS_ERR_NOMEM, "random data: out of memory"), 1;
    }
    d->perm_epoch = -1;
    return 0;
}

int tool_data_load(tool_data *d, const char *path, const lc_tokenizer *tok, const tool_data_cfg *cfg,
                   lc_error *err) {
    stream tr, va;
    int T = cfg->seq_len, rc = 1;
    long n_chunks, val_from_train = 0;
    memset(d, 0, sizeof *d);
    memset(&tr, 0, sizeof tr);
    memset(&va, 0, sizeof va);
    d->seq_len = T;
    d->perm_epoch = -1;
    if (T < 2) return lc_error_set(err, LOLCATS_ERR_ARG, "--seq-len %d: at least 2", T), 1;
    d->is_jsonl = tool_is_jsonl(path);
    if (d->is_jsonl) {
        tool_alpaca_rec *recs;
        long n, i;
        int *ids = NULL;
        size_t cap = 0;
        if (tool_alpaca_read(path, &recs, &n, err)) return 1;
        if (cfg->max_records > 0 && n > cfg->max_records) n = cfg->max_records;
        for (i = 0; i < n; i++) {
            size_t nt, np;
            int val = i < cfg->val_records;
            if (tool_alpaca_encode(tok, cfg->eos_id, &recs[i], &ids, &cap, &nt, &np, err)) {
                char m[sizeof err->msg];
                snprintf(m, sizeof m, "%s", err->msg);
                lc_error_set(err, err->code, "%s:%ld: %s", path, recs[i].line, m);
                free(ids); tool_alpaca_free(recs, n);
                goto done;
            }
            if (stream_push(val ? &va : &tr, ids, nt, np)) {
                free(ids); tool_alpaca_free(recs, n);
                lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory packing %s", path);
                goto done;
            }
            if (val) d->val_records++;
            else d->records++;
        }
        free(ids);
        tool_alpaca_free(recs, n);
    } else {
        size_t sz = 0, nid = 0;
        char *text = tool_read_text(path, &sz, err);
        int *ids;
        if (!text) goto done;
        if (sz == 0 || text[strspn(text, " \t\r\n")] == 0) {
            free(text);
            lc_error_set(err, LOLCATS_ERR_FORMAT, "%s: empty file", path);
            goto done;
        }
        /* the ids become the stream itself (every token a target: no labels, no
           copy; the training chunks below are its head, in place): about 4 bytes
           per input byte at the peak, not 26 */
        ids = (int *)malloc((sz + 3) * sizeof(int));
        if (!ids || lc_tokenizer_encode(tok, text, sz, 1, 0, ids, sz + 3, &nid, err)) {
            if (!ids || !err->msg[0]) lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory reading %s", path);
            free(ids); free(text);
            goto done;
        }
        free(text);
        tr.tok = (int *)realloc(ids, (nid ? nid : 1) * sizeof(int));
        if (!tr.tok) tr.tok = ids;
        tr.n = tr.cap = nid;
    }
    d->stream_tokens = (long long)(tr.n + va.n);
    n_chunks = (long)(tr.n / (size_t)T);
    if (va.n == 0) {      /* text (or no validation records): the last chunks */
        val_from_train = cfg->val_seqs < n_chunks ? cfg->val_seqs : 0;
        if (cfg->val_seqs > 0 && n_chunks - cfg->val_seqs < 1) val_from_train = n_chunks > 1 ? 1 : 0;
        d->n_val = val_from_train;
        if (stream_chunks(&tr, n_chunks - val_from_train, val_from_train, T, &d->val_tokens, &d->val_labels)) goto oom;
    } else {
        d->n_val = (long)(va.n / (size_t)T);
        if (d->n_val > cfg->val_seqs) d->n_val = cfg->val_seqs;
        if (stream_chunks(&va, 0, d->n_val, T, &d->val_tokens, &d->val_labels)) goto oom;
    }
    d->n = n_chunks - val_from_train;
    if (d->n < 1) {
        lc_error_set(err, LOLCATS_ERR_ARG, "%s: %zu tokens make no training sequence of %d tokens%s: more data or "
                     "a smaller --seq-len", path, tr.n, T, d->is_jsonl ? " after the validation records" : "");
        goto done;
    }
    if (stream_chunks(&tr, 0, d->n, T, tr.lab ? &d->tokens : NULL, &d->labels)) goto oom;
    if (!tr.lab) {   /* text: the training chunks are the stream's head */
        d->tokens = tr.tok;
        tr.tok = NULL;
    }
    d->perm = (long *)malloc(sizeof(long) * (size_t)d->n);
    if (!d->perm) goto oom;
    rc = 0;
    goto done;
oom:
    lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory packing %s", path);
done:
    free(tr.tok); free(tr.lab); free(va.tok); free(va.lab);
    if (rc) tool_data_free(d);
    return rc;
}

long tool_data_pick(tool_data *d, uint64_t seed, int64_t k) {
    long epoch = (long)(k / d->n), i;
    if (epoch != d->perm_epoch || seed != d->perm_seed) {   /* Fisher-Yates with a per-epoch seed */
        lc_rng r;
        lc_rng_seed(&r, seed * 0x9E3779B97F4A7C15ULL + (uint64_t)epoch + 1);
        for (i = 0; i < d->n; i++) d->perm[i] = i;
        for (i = d->n - 1; i > 0; i--) {
            long j = (long)(lc_rng_u64(&r) % (uint64_t)(i + 1)), t = d->perm[i];
            d->perm[i] = d->perm[j];
            d->perm[j] = t;
        }
        d->perm_epoch = epoch;
        d->perm_seed = seed;
    }
    return d->perm[k % d->n];
}
