/* evaltask.c - task readers, requests, the harness's pair tokenization and
   scoring rules (see evaltask.h; the conventions are the ones README.md's
   "Evaluating like the paper" lists, read from lm-evaluation-harness). */
#define _POSIX_C_SOURCE 200809L
#include "evaltask.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>

const char *const ev_task_names[] = {"piqa", "arc_easy", "arc_challenge", "hellaswag", "winogrande",
                                     "lambada", "copa", "openbookqa", "mmlu", NULL};

int ev_task_known(const char *name) {
    int i;
    for (i = 0; ev_task_names[i]; i++)
        if (!strcmp(name, ev_task_names[i])) return 1;
    return !strcmp(name, "passkey");
}

static char *ev_strdup(const char *s) {
    size_t n = strlen(s);
    char *o = (char *)malloc(n + 1);
    if (o) memcpy(o, s, n + 1);
    return o;
}

static char *ev_cat(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *o = (char *)malloc(na + nb + 1);
    if (!o) return NULL;
    memcpy(o, a, na);
    memcpy(o + na, b, nb + 1);
    return o;
}

long ev_utf8_len(const char *s) {
    long n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

/* ---- files ---- */
static char *ev_read(const char *path, size_t *n, lc_error *err) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long sz;
    if (!f) {
        lc_error_set(err, LOLCATS_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        lc_error_set(err, LOLCATS_ERR_IO, "cannot read %s", path);
        return NULL;
    }
    buf = (char *)malloc((size_t)sz + 1);
    if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) { free(buf); buf = NULL; }
    fclose(f);
    if (!buf) { lc_error_set(err, LOLCATS_ERR_IO, "cannot read %s", path); return NULL; }
    buf[sz] = 0;
    *n = (size_t)sz;
    return buf;
}

/* ---- a small strict JSON reader (values as a tree) ---- */
enum { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ };
typedef struct ev_jv {
    int type, n;
    double num;
    char *s;
    char **keys;          /* JV_OBJ: n keys */
    struct ev_jv *kids;   /* JV_ARR / JV_OBJ: n values */
} ev_jv;

typedef struct {
    const char *p, *start;
    const char *why;
    int depth;
} ev_jp;

static void jv_free(ev_jv *v) {
    int i;
    if (!v) return;
    for (i = 0; i < v->n; i++) {
        if (v->keys) free(v->keys[i]);
        if (v->kids) jv_free(&v->kids[i]);
    }
    free(v->keys);
    free(v->kids);
    free(v->s);
    memset(v, 0, sizeof *v);
}

static void jp_ws(ev_jp *j) {
    while (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n') j->p++;
}

static int jp_hex4(const char *s, unsigned *out) {
    int i;
    *out = 0;
    for (i = 0; i < 4; i++) {
        int c = s[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return 0;
        *out = *out * 16 + (unsigned)d;
    }
    return 1;
}

static char *jp_put_utf8(char *w, unsigned cp) {
    if (cp < 0x80) *w++ = (char)cp;
    else if (cp < 0x800) { *w++ = (char)(0xC0 | (cp >> 6)); *w++ = (char)(0x80 | (cp & 63)); }
    else if (cp < 0x10000) {
        *w++ = (char)(0xE0 | (cp >> 12)); *w++ = (char)(0x80 | ((cp >> 6) & 63));
        *w++ = (char)(0x80 | (cp & 63));
    } else {
        *w++ = (char)(0xF0 | (cp >> 18)); *w++ = (char)(0x80 | ((cp >> 12) & 63));
        *w++ = (char)(0x80 | ((cp >> 6) & 63)); *w++ = (char)(0x80 | (cp & 63));
    }
    return w;
}

static int jp_string(ev_jp *j, char **out) {
    const char *s = j->p + 1;
    size_t n = 0;
    char *o, *w;
    while (s[n] && s[n] != '"' && s[n] != '\n') { if (s[n] == '\\' && s[n + 1]) n++; n++; }
    if (s[n] != '"') { j->why = "unterminated string"; return 0; }
    o = w = (char *)malloc(n + 1);
    if (!o) { j->why = "out of memory"; return 0; }
    while (*s != '"') {
        unsigned char c = (unsigned char)*s++;
        if (c < 0x20) { free(o); j->p = s - 1; j->why = "control character in a string"; return 0; }
        if (c != '\\') { *w++ = (char)c; continue; }
        c = (unsigned char)*s++;
        switch (c) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '/': *w++ = '/'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (!jp_hex4(s, &cp)) { free(o); j->p = s; j->why = "bad \\u escape"; return 0; }
            s += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && s[0] == '\\' && s[1] == 'u' && jp_hex4(s + 2, &lo) &&
                lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                s += 6;
            }
            w = jp_put_utf8(w, cp);
            break;
        }
        default: free(o); j->p = s - 1; j->why = "bad escape"; return 0;
        }
    }
    *w = 0;
    j->p = s + 1;
    *out = o;
    return 1;
}

static int jp_value(ev_jp *j, ev_jv *v);

static int jp_push(ev_jv *v, int *cap) {
    if (v->n == *cap) {
        int nc = *cap ? 2 * *cap : 4;
        ev_jv *k = (ev_jv *)realloc(v->kids, sizeof(ev_jv) * (size_t)nc);
        if (!k) return 0;
        v->kids = k;
        if (v->type == JV_OBJ) {
            char **ks = (char **)realloc(v->keys, sizeof(char *) * (size_t)nc);
            if (!ks) return 0;
            v->keys = ks;
        }
        *cap = nc;
    }
    memset(&v->kids[v->n], 0, sizeof(ev_jv));
    if (v->type == JV_OBJ) v->keys[v->n] = NULL;
    return 1;
}

static int jp_container(ev_jp *j, ev_jv *v, int obj) {
    int cap = 0;
    char close = obj ? '}' : ']';
    v->type = obj ? JV_OBJ : JV_ARR;
    if (++j->depth > 64) { j->why = "nested too deep"; return 0; }
    j->p++;
    jp_ws(j);
    if (*j->p == close) { j->p++; j->depth--; return 1; }
    for (;;) {
        if (!jp_push(v, &cap)) { j->why = "out of memory"; return 0; }
        v->n++;
        if (obj) {
            jp_ws(j);
            if (*j->p != '"') { j->why = "expected a key string"; return 0; }
            if (!jp_string(j, &v->keys[v->n - 1])) return 0;
            jp_ws(j);
            if (*j->p != ':') { j->why = "expected ':'"; return 0; }
            j->p++;
        }
        if (!jp_value(j, &v->kids[v->n - 1])) return 0;
        jp_ws(j);
        if (*j->p == ',') { j->p++; continue; }
        if (*j->p == close) { j->p++; j->depth--; return 1; }
        j->why = obj ? "expected ',' or '}'" : "expected ',' or ']'";
        return 0;
    }
}

static int jp_value(ev_jp *j, ev_jv *v) {
    jp_ws(j);
    switch (*j->p) {
    case '{': return jp_container(j, v, 1);
    case '[': return jp_container(j, v, 0);
    case '"': v->type = JV_STR; return jp_string(j, &v->s);
    case 't': if (!strncmp(j->p, "true", 4)) { v->type = JV_BOOL; v->num = 1; j->p += 4; return 1; } break;
    case 'f': if (!strncmp(j->p, "false", 5)) { v->type = JV_BOOL; j->p += 5; return 1; } break;
    case 'n': if (!strncmp(j->p, "null", 4)) { v->type = JV_NULL; j->p += 4; return 1; } break;
    default:
        if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) {
            char *end;
            v->type = JV_NUM;
            v->num = strtod(j->p, &end);
            if (end == j->p) break;
            j->p = end;
            return 1;
        }
    }
    j->why = *j->p ? "unexpected character" : "unexpected end of input";
    return 0;
}

static long ev_line_of(const char *start, const char *at, long line0) {
    for (; start < at; start++)
        if (*start == '\n') line0++;
    return line0;
}

/* Parses text as one JSON value (text starts at line line0 of path); errors
   name path, the line and the column. */
static int jv_parse(ev_jv *v, const char *text, const char *path, long line0, int jsonl,
                    lc_error *err) {
    ev_jp j;
    const char *bol;
    memset(v, 0, sizeof *v);
    memset(&j, 0, sizeof j);
    j.p = j.start = text;
    if (jp_value(&j, v)) {
        jp_ws(&j);
        if (!*j.p) return 0;
        j.why = "trailing characters after the JSON value";
    }
    jv_free(v);
    for (bol = j.p; bol > j.start && bol[-1] != '\n'; bol--) {}
    lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: bad JSON (%s at column %ld): the file must be %s",
                 path, ev_line_of(j.start, j.p, line0), j.why, (long)(j.p - bol) + 1,
                 jsonl ? "one JSON object per line" : "one JSON value");
    return 1;
}

static const ev_jv *jv_get(const ev_jv *o, const char *key) {
    int i;
    if (o->type != JV_OBJ) return NULL;
    for (i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key)) return &o->kids[i];
    return NULL;
}

static const char *jv_typename(int t) {
    static const char *const nm[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
    return nm[t];
}

/* Field key of o with type t, else an error naming file, line and field. */
static const ev_jv *jv_need(const ev_jv *o, const char *key, int t, const char *path, long line,
                            lc_error *err) {
    const ev_jv *v = jv_get(o, key);
    if (!v) {
        lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: missing field \"%s\" (%s expected)", path, line,
                     key, jv_typename(t));
        return NULL;
    }
    if (v->type != t) {
        lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: field \"%s\" is %s, %s expected", path, line,
                     key, jv_typename(v->type), jv_typename(t));
        return NULL;
    }
    return v;
}

/* Array of n >= 1 strings. */
static const ev_jv *jv_need_strs(const ev_jv *o, const char *key, const char *path, long line,
                                 lc_error *err) {
    const ev_jv *a = jv_need(o, key, JV_ARR, path, line, err);
    int i;
    if (!a) return NULL;
    if (a->n == 0) {
        lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: field \"%s\" is an empty list: an item needs "
                     "at least one choice", path, line, key);
        return NULL;
    }
    for (i = 0; i < a->n; i++)
        if (a->kids[i].type != JV_STR) {
            lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: \"%s\"[%d] is %s, a string expected", path,
                         line, key, i, jv_typename(a->kids[i].type));
            return NULL;
        }
    return a;
}

static int jv_need_int(const ev_jv *o, const char *key, const char *path, long line, int *out,
                       lc_error *err) {
    const ev_jv *v = jv_need(o, key, JV_NUM, path, line, err);
    if (!v) return 1;
    if (v->num != floor(v->num) || fabs(v->num) > 1e9) {
        lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: field \"%s\" is %g, an integer expected", path,
                     line, key, v->num);
        return 1;
    }
    *out = (int)v->num;
    return 0;
}

/* ---- building items ---- */
static int ev_gold_check(int gold, int n, const char *path, long line, lc_error *err) {
    if (gold >= 0 && gold < n) return 0;
    lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: gold index %d out of range for %d choices "
                 "(0..%d)", path, line, gold, n, n - 1);
    return 1;
}

static ev_item *ev_add(ev_task *t, long *cap) {
    if (t->n == *cap) {
        long nc = *cap ? 2 * *cap : 256;
        ev_item *p = (ev_item *)realloc(t->items, sizeof(ev_item) * (size_t)nc);
        if (!p) return NULL;
        t->items = p;
        *cap = nc;
    }
    memset(&t->items[t->n], 0, sizeof(ev_item));
    t->items[t->n].subject = -1;
    return &t->items[t->n++];
}

/* An item of nreq requests: context ctx[i] (or ctx[0] when one), continuation
   delim + choice[i]; norm_len the choice's code points. Copies everything. */
static int ev_item_set(ev_item *it, int nreq, const char *const *ctx, int nctx, const char *delim,
                       const char *const *choice, int gold, long line) {
    int i;
    it->req = (ev_req *)calloc((size_t)nreq, sizeof(ev_req));
    if (!it->req) return 1;
    it->nreq = nreq;
    it->gold = gold;
    it->line = line;
    for (i = 0; i < nreq; i++) {
        it->req[i].ctx = ev_strdup(ctx[nctx > 1 ? i : 0]);
        it->req[i].cont = ev_cat(delim, choice[i]);
        it->req[i].norm_len = ev_utf8_len(choice[i]);
        if (!it->req[i].ctx || !it->req[i].cont) return 1;
    }
    return 0;
}

static int ev_oom(lc_error *err) { return lc_error_set(err, LOLCATS_ERR_NOMEM, "out of memory"), 1; }

/* Calls fn on each non-blank line of a JSONL file as a parsed object. */
typedef int (*ev_line_fn)(ev_task *t, long *cap, const ev_jv *o, const char *path, long line,
                          void *user, lc_error *err);
static int ev_jsonl(ev_task *t, const char *path, ev_line_fn fn, void *user, lc_error *err) {
    size_t n;
    char *text = ev_read(path, &n, err), *p, *nl;
    long line = 0, cap = 0;
    int rc = 0;
    if (!text) return 1;
    for (p = text; *p && !rc; p = nl ? nl + 1 : p + strlen(p)) {
        ev_jv o;
        nl = strchr(p, '\n');
        if (nl) *nl = 0;
        line++;
        if (!p[strspn(p, " \t\r")]) continue;
        if (jv_parse(&o, p, path, line, 1, err)) { rc = 1; break; }
        if (o.type != JV_OBJ) {
            lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: the line is %s, a JSON object expected",
                         path, line, jv_typename(o.type));
            rc = 1;
        } else {
            rc = fn(t, &cap, &o, path, line, user, err);
        }
        jv_free(&o);
        if (!nl) break;
    }
    free(text);
    return rc;
}

/* ARC (Hugging Face ai2_arc form): Question: q \nAnswer:, " " + text, gold = answerKey's index. */
static int ev_arc_obj(ev_task *t, long *cap, const ev_jv *o, const char *path, long line,
                      void *user, lc_error *err) {
    const ev_jv *q = jv_need(o, "question", JV_STR, path, line, err), *ch, *tx, *lb, *ak;
    const char *choice[16];
    char *ctx;
    int i, gold = -1, rc;
    ev_item *it;
    (void)user;
    if (!q || !(ch = jv_need(o, "choices", JV_OBJ, path, line, err)) ||
        !(tx = jv_need_strs(ch, "text", path, line, err)) ||
        !(lb = jv_need_strs(ch, "label", path, line, err)) ||
        !(ak = jv_need(o, "answerKey", JV_STR, path, line, err)))
        return 1;
    if (tx->n != lb->n || tx->n > 16)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: %d choice texts but %d labels (at most "
                            "16)", path, line, tx->n, lb->n), 1;
    for (i = 0; i < lb->n; i++) {
        if (gold < 0 && !strcmp(lb->kids[i].s, ak->s)) gold = i;
        choice[i] = tx->kids[i].s;
    }
    if (gold < 0)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: answerKey \"%s\" is not one of the "
                            "choice labels: gold index out of range", path, line, ak->s), 1;
    if (!(it = ev_add(t, cap))) return ev_oom(err);
    ctx = (char *)malloc(strlen(q->s) + 32);
    if (!ctx) return ev_oom(err);
    sprintf(ctx, "Question: %s\nAnswer:", q->s);
    rc = ev_item_set(it, tx->n, (const char *const *)&ctx, 1, " ", choice, gold, line);
    free(ctx);
    return rc ? ev_oom(err) : 0;
}

static int ev_load_arc_easy(ev_task *t, const char *path, lc_error *err) {
    size_t n;
    char *text = ev_read(path, &n, err);
    ev_jv a;
    long cap = 0;
    int i, rc = 0;
    if (!text) return 1;
    if (jv_parse(&a, text, path, 1, 0, err)) { free(text); return 1; }
    if (a.type != JV_ARR) {
        rc = 1;
        lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:1: %s, a JSON array of ARC records expected", path,
                     jv_typename(a.type));
    }
    /* line of each element: count newlines up to its opening brace */
    {
        const char *p = text;
        long line = 1;
        for (i = 0; i < a.n && !rc; i++) {
            while (*p && *p != '{') { if (*p == '\n') line++; p++; }
            if (a.kids[i].type != JV_OBJ) {
                rc = 1;
                lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: element %d is %s, an object expected",
                             path, line, i, jv_typename(a.kids[i].type));
                break;
            }
            rc = ev_arc_obj(t, &cap, &a.kids[i], path, line, NULL, err);
            /* skip this object: to the matching brace, outside strings */
            {
                int d = 0, instr = 0;
                for (; *p; p++) {
                    if (*p == '\n') line++;
                    if (instr) { if (*p == '\\' && p[1]) p++; else if (*p == '"') instr = 0; continue; }
                    if (*p == '"') instr = 1;
                    else if (*p == '{') d++;
                    else if (*p == '}' && --d == 0) { p++; break; }
                }
            }
        }
    }
    jv_free(&a);
    free(text);
    return rc;
}

/* llm-foundry {query, choices, gold}: user = task name */
static int ev_foundry_obj(ev_task *t, long *cap, const ev_jv *o, const char *path, long line,
                          void *user, lc_error *err) {
    const char *name = (const char *)user;
    const ev_jv *q = jv_need(o, "query", JV_STR, path, line, err), *ch;
    const char *choice[16];
    char *ctx;
    int i, gold, copa = !strcmp(name, "copa"), rc;
    ev_item *it;
    if (!q || !(ch = jv_need_strs(o, "choices", path, line, err)) ||
        jv_need_int(o, "gold", path, line, &gold, err))
        return 1;
    if (ch->n > 16) return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: %d choices (at most 16)", path,
                                        line, ch->n), 1;
    if (ev_gold_check(gold, ch->n, path, line, err)) return 1;
    for (i = 0; i < ch->n; i++) choice[i] = ch->kids[i].s;
    if (!(ctx = ev_strdup(q->s))) return ev_oom(err);
    if (copa) {  /* "..., because" -> "... because" (the harness has no comma) */
        size_t n = strlen(ctx);
        const char *tail = n >= 9 && !strcmp(ctx + n - 9, ", because") ? ", because"
                         : n >= 11 && !strcmp(ctx + n - 11, ", therefore") ? ", therefore" : NULL;
        if (!tail) {
            free(ctx);
            return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: a COPA query must end with \", "
                                "because\" or \", therefore\"", path, line), 1;
        }
        memmove(ctx + n - strlen(tail), tail + 1, strlen(tail));
    }
    if (!(it = ev_add(t, cap))) { free(ctx); return ev_oom(err); }
    rc = ev_item_set(it, ch->n, (const char *const *)&ctx, 1, copa ? "  " : " ", choice, gold, line);
    free(ctx);
    return rc ? ev_oom(err) : 0;
}

static int ev_wino_obj(ev_task *t, long *cap, const ev_jv *o, const char *path, long line,
                       void *user, lc_error *err) {
    const ev_jv *ctx = jv_need_strs(o, "context_options", path, line, err), *c;
    const char *ctxs[16], *conts[16];
    int i, gold;
    ev_item *it;
    (void)user;
    if (!ctx || !(c = jv_need(o, "continuation", JV_STR, path, line, err)) ||
        jv_need_int(o, "gold", path, line, &gold, err))
        return 1;
    if (ctx->n > 16) return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: %d options (at most 16)",
                                         path, line, ctx->n), 1;
    if (ev_gold_check(gold, ctx->n, path, line, err)) return 1;
    for (i = 0; i < ctx->n; i++) { ctxs[i] = ctx->kids[i].s; conts[i] = c->s; }
    if (!(it = ev_add(t, cap))) return ev_oom(err);
    return ev_item_set(it, ctx->n, ctxs, ctx->n, " ", conts, gold, line) ? ev_oom(err) : 0;
}

static int ev_lambada_obj(ev_task *t, long *cap, const ev_jv *o, const char *path, long line,
                          void *user, lc_error *err) {
    const ev_jv *ctx = jv_need(o, "context", JV_STR, path, line, err), *c;
    const char *cont;
    ev_item *it;
    (void)user;
    if (!ctx || !(c = jv_need(o, "continuation", JV_STR, path, line, err))) return 1;
    cont = c->s;
    if (!(it = ev_add(t, cap))) return ev_oom(err);
    return ev_item_set(it, 1, (const char *const *)&ctx->s, 1, " ", &cont, 0, line) ? ev_oom(err) : 0;
}

/* PIQA: valid.jsonl {goal, sol1, sol2} + valid-labels.lst, line i of both the same item. */
static int ev_piqa_obj(ev_task *t, long *cap, const ev_jv *o, const char *path, long line,
                       void *user, lc_error *err) {
    const ev_jv *g = jv_need(o, "goal", JV_STR, path, line, err), *s1, *s2;
    const char *choice[2];
    char *ctx;
    ev_item *it;
    int rc;
    (void)user;
    if (!g || !(s1 = jv_need(o, "sol1", JV_STR, path, line, err)) ||
        !(s2 = jv_need(o, "sol2", JV_STR, path, line, err)))
        return 1;
    choice[0] = s1->s;
    choice[1] = s2->s;
    if (!(it = ev_add(t, cap))) return ev_oom(err);
    ctx = (char *)malloc(strlen(g->s) + 32);
    if (!ctx) return ev_oom(err);
    sprintf(ctx, "Question: %s\nAnswer:", g->s);
    rc = ev_item_set(it, 2, (const char *const *)&ctx, 1, " ", choice, -1, line);
    free(ctx);
    return rc ? ev_oom(err) : 0;
}

static int ev_load_piqa(ev_task *t, const char *path, const char *labels, lc_error *err) {
    size_t n;
    char *text, *p, *nl;
    long i = 0, line = 0;
    if (ev_jsonl(t, path, ev_piqa_obj, NULL, err)) return 1;
    if (!(text = ev_read(labels, &n, err))) return 1;
    for (p = text; *p; p = nl + 1) {
        char *end;
        long v;
        nl = strchr(p, '\n');
        if (!nl) nl = p + strlen(p) - 1;
        line++;
        v = strtol(p, &end, 10);
        if (end == p || (*end && *end != '\n' && *end != '\r')) {
            free(text);
            return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: a label line must be 0 or 1",
                                labels, line), 1;
        }
        if (i >= t->n) {
            free(text);
            return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: more labels than the %ld items of "
                                "%s: the label line count must match", labels, line, t->n, path), 1;
        }
        if (ev_gold_check((int)v, 2, labels, line, err)) { free(text); return 1; }
        t->items[i++].gold = (int)v;
        if (!nl[1]) break;
    }
    free(text);
    if (i != t->n)
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: %ld labels for the %ld items of %s: "
                            "missing labels (one line per item)", labels, line, i, t->n, path), 1;
    return 0;
}

/* HellaSwag's preprocess, as the harness's utils.py:
   strip; " [title]" -> ". "; re.sub("\\[.*?\\]", ""); "  " -> " " (one pass). */
char *ev_hellaswag_pre(const char *s) {
    size_t n, i;
    char *a, *b, *w;
    while (*s && isspace((unsigned char)*s)) s++;
    n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) n--;
    a = (char *)malloc(n + 1);
    b = (char *)malloc(n + 1);
    if (!a || !b) { free(a); free(b); return NULL; }
    for (i = 0, w = a; i < n;) {               /* " [title]" -> ". " */
        if (n - i >= 8 && !memcmp(s + i, " [title]", 8)) { *w++ = '.'; *w++ = ' '; i += 8; }
        else *w++ = s[i++];
    }
    *w = 0;
    for (i = 0, w = b; a[i];) {                /* drop [...] (no newline inside) */
        if (a[i] == '[') {
            size_t j = i + 1;
            while (a[j] && a[j] != ']' && a[j] != '\n') j++;
            if (a[j] == ']') { i = j + 1; continue; }
        }
        *w++ = a[i++];
    }
    *w = 0;
    for (i = 0, w = a; b[i];) {                /* "  " -> " ", non-overlapping */
        if (b[i] == ' ' && b[i + 1] == ' ') { *w++ = ' '; i += 2; }
        else *w++ = b[i++];
    }
    *w = 0;
    free(b);
    return a;
}

static int ev_load_hellaswag(ev_task *t, const char *path, lc_error *err) {
    size_t n;
    char *text = ev_read(path, &n, err), *p, *lines[6];
    long line = 0, cap = 0;
    int k, rc = 0;
    if (!text) return 1;
    for (p = text; *p && !rc;) {
        long first = line + 1;
        char *ctx, *end[4];
        const char *endc[4];
        int gold;
        ev_item *it;
        for (k = 0; k < 6; k++) {
            char *nl = strchr(p, '\n');
            if (!*p) {
                free(text);
                return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: the file ends inside a task "
                                    "(6 lines each: context, gold, 4 endings)", path, line + 1), 1;
            }
            lines[k] = p;
            line++;
            if (nl) { *nl = 0; p = nl + 1; } else p += strlen(p);
        }
        {
            char *e;
            long g = strtol(lines[1], &e, 10);
            if (e == lines[1] || *e) {
                free(text);
                return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: gold line \"%.20s\" is not an "
                                    "integer 0-3", path, first + 1, lines[1]), 1;
            }
            if (ev_gold_check((int)g, 4, path, first + 1, err)) { free(text); return 1; }
            gold = (int)g;
        }
        for (k = 0; k < 4; k++)
            if (!lines[2 + k][0]) {
                free(text);
                return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: empty ending (empty choices)",
                                    path, first + 2 + k), 1;
            }
        ctx = ev_hellaswag_pre(lines[0]);
        for (k = 0; k < 4; k++) endc[k] = end[k] = ev_hellaswag_pre(lines[2 + k]);
        it = ev_add(t, &cap);
        rc = !it || !ctx || !end[0] || !end[1] || !end[2] || !end[3] ||
             ev_item_set(it, 4, (const char *const *)&ctx, 1, " ", endc, gold, first);
        free(ctx);
        for (k = 0; k < 4; k++) free(end[k]);
        if (rc) ev_oom(err);
    }
    free(text);
    return rc;
}

/* ---- CSV (RFC 4180) ---- */
void ev_csv_free(ev_csv *c) {
    long i;
    int k;
    for (i = 0; i < c->n; i++) {
        for (k = 0; k < c->nf[i]; k++) free(c->f[i][k]);
        free(c->f[i]);
    }
    free(c->nf);
    free(c->f);
    free(c->line);
    memset(c, 0, sizeof *c);
}

int ev_csv_parse(ev_csv *c, const char *s, size_t n, const char *path, lc_error *err) {
    size_t i = 0;
    long line = 1, cap = 0;
    memset(c, 0, sizeof *c);
    while (i < n) {
        char **fields = NULL;
        int nf = 0, fcap = 0;
        long row_line = line;
        for (;;) {                           /* one field */
            size_t o = 0, fc = 64;
            char *f = (char *)malloc(fc);
            if (!f) goto oom;
            if (i < n && s[i] == '"') {
                long qline = line;
                i++;
                for (;;) {
                    if (i >= n) {
                        free(f);
                        while (nf) free(fields[--nf]);
                        free(fields);
                        ev_csv_free(c);
                        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: unterminated quoted "
                                            "field (opened here, no closing quote before the end of "
                                            "the file)", path, qline), 1;
                    }
                    if (s[i] == '"') {
                        if (i + 1 < n && s[i + 1] == '"') i++;
                        else { i++; break; }
                    }
                    if (s[i] == '\n') line++;
                    if (o + 2 > fc) { char *g = (char *)realloc(f, fc *= 2); if (!g) { free(f); goto oom; } f = g; }
                    f[o++] = s[i++];
                }
                if (i < n && s[i] != ',' && s[i] != '\n' && s[i] != '\r') {
                    free(f);
                    while (nf) free(fields[--nf]);
                    free(fields);
                    ev_csv_free(c);
                    return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: text after a closing quote "
                                        "(a quote inside a quoted field is written \"\")", path, line), 1;
                }
            } else {
                while (i < n && s[i] != ',' && s[i] != '\n' && !(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')) {
                    if (o + 2 > fc) { char *g = (char *)realloc(f, fc *= 2); if (!g) { free(f); goto oom; } f = g; }
                    f[o++] = s[i++];
                }
            }
            f[o] = 0;
            if (nf == fcap) {
                char **g = (char **)realloc(fields, sizeof(char *) * (size_t)(fcap = fcap ? 2 * fcap : 8));
                if (!g) { free(f); goto oom; }
                fields = g;
            }
            fields[nf++] = f;
            if (i < n && s[i] == ',') { i++; continue; }
            if (i < n && s[i] == '\r') i++;
            if (i < n && s[i] == '\n') { i++; line++; }
            break;
        }
        if (c->n == cap) {
            long nc = cap ? 2 * cap : 64;
            int *nfp = (int *)realloc(c->nf, sizeof(int) * (size_t)nc);
            char ***fp;
            long *lp;
            if (nfp) c->nf = nfp;
            fp = (char ***)realloc(c->f, sizeof(char **) * (size_t)nc);
            if (fp) c->f = fp;
            lp = (long *)realloc(c->line, sizeof(long) * (size_t)nc);
            if (lp) c->line = lp;
            if (!nfp || !fp || !lp) { while (nf) free(fields[--nf]); free(fields); goto oom; }
            cap = nc;
        }
        c->nf[c->n] = nf;
        c->f[c->n] = fields;
        c->line[c->n++] = row_line;
    }
    return 0;
oom:
    ev_csv_free(c);
    return ev_oom(err);
}

/* ---- MMLU ---- */
static char *ev_strip(const char *s) {
    size_t n;
    char *o;
    while (*s && isspace((unsigned char)*s)) s++;
    n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) n--;
    o = (char *)malloc(n + 1);
    if (o) { memcpy(o, s, n); o[n] = 0; }
    return o;
}

typedef struct { char *p; size_t n, cap; int oom; } ev_buf;
static void eb_put(ev_buf *b, const char *s) {
    size_t k = strlen(s);
    if (b->oom) return;
    if (b->n + k + 1 > b->cap) {
        size_t nc = (b->n + k + 1) * 2;
        char *q = (char *)realloc(b->p, nc);
        if (!q) { b->oom = 1; return; }
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, k + 1);
    b->n += k;
}

static void ev_mmlu_question(ev_buf *b, char *const *row) {
    char *q = ev_strip(row[0]);
    static const char *const L[] = {"\nA. ", "\nB. ", "\nC. ", "\nD. "};
    int k;
    if (!q) { b->oom = 1; return; }
    eb_put(b, q);
    free(q);
    for (k = 0; k < 4; k++) { eb_put(b, L[k]); eb_put(b, row[1 + k]); }
    eb_put(b, "\nAnswer:");
}

/* description + k shots (question + " " + letter + "\n\n") + the row's question. */
char *ev_mmlu_prompt(const char *subject, char *const *shots, int k, char *const *row) {
    ev_buf b;
    char *sub = ev_strdup(subject), *c;
    int i;
    memset(&b, 0, sizeof b);
    if (!sub) return NULL;
    for (c = sub; *c; c++) if (*c == '_') *c = ' ';
    eb_put(&b, "The following are multiple choice questions (with answers) about ");
    eb_put(&b, sub);
    eb_put(&b, ".\n\n");
    free(sub);
    for (i = 0; i < k; i++) {
        char letter[4] = {' ', 'A', 0, 0};
        letter[1] = (char)('A' + atoi(shots[6 * i + 5]));
        ev_mmlu_question(&b, shots + 6 * i);
        eb_put(&b, letter);
        eb_put(&b, "\n\n");
    }
    if (row) ev_mmlu_question(&b, row);
    if (b.oom) { free(b.p); return NULL; }
    return b.p ? b.p : ev_strdup("");
}

static int ev_mmlu_rows(ev_csv *c, const char *path, lc_error *err) {
    size_t n;
    char *text = ev_read(path, &n, err);
    long i;
    if (!text) return 1;
    if (ev_csv_parse(c, text, n, path, err)) { free(text); return 1; }
    free(text);
    if (c->n == 0 || c->nf[0] != 6 || strcmp(c->f[0][0], "question") || strcmp(c->f[0][5], "answer")) {
        ev_csv_free(c);
        return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:1: the header must be "
                            "question,choice0,choice1,choice2,choice3,answer", path), 1;
    }
    for (i = 1; i < c->n; i++) {
        const char *a = c->f[i][c->nf[i] - 1];
        if (c->nf[i] != 6) {
            long ln = c->line[i];
            int nf = c->nf[i];
            ev_csv_free(c);
            return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: %d fields, 6 expected "
                                "(question, 4 choices, answer)", path, ln, nf), 1;
        }
        if (strlen(a) != 1 || a[0] < '0' || a[0] > '3') {
            long ln = c->line[i];
            char bad[24];
            snprintf(bad, sizeof bad, "%s", a);
            ev_csv_free(c);
            return lc_error_set(err, LOLCATS_ERR_FORMAT, "%s:%ld: answer \"%s\": gold index out of "
                                "range (0-3, meaning A-D)", path, ln, bad), 1;
        }
    }
    return 0;
}

static int ev_name_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ev_load_mmlu(ev_task *t, const char *dir, const ev_opts *o, lc_error *err) {
    char path[4096], **names = NULL;
    int nn = 0, cap = 0, s, k = o->num_fewshot < 0 ? 5 : o->num_fewshot;
    long icap = 0;
    DIR *dh;
    /* subjects: the *_test.csv names of mmlu/test, sorted */
    snprintf(path, sizeof path, "%s/mmlu/test", dir);
    if ((dh = opendir(path)) != NULL) {
        struct dirent *de;
        while ((de = readdir(dh)) != NULL) {
            size_t l = strlen(de->d_name);
            char **g;
            if (l <= 9 || strcmp(de->d_name + l - 9, "_test.csv")) continue;
            if (nn == cap) {
                g = (char **)realloc(names, sizeof(char *) * (size_t)(cap = cap ? 2 * cap : 64));
                if (!g) break;
                names = g;
            }
            if ((names[nn] = ev_strdup(de->d_name)) != NULL) names[nn++][l - 9] = 0;
        }
        closedir(dh);
    }
    if (!nn) {
        free(names);
        return lc_error_set(err, LOLCATS_ERR_IO, "%s/mmlu/test/ has no <subject>_test.csv files "
                            "(and mmlu/dev/<subject>_dev.csv): see README \"Evaluating like the "
                            "paper\" for the layout", dir), 1;
    }
    qsort(names, (size_t)nn, sizeof(char *), ev_name_cmp);
    while (o->subjects > 0 && nn > o->subjects) free(names[--nn]);
    t->subjects = names;
    t->n_subjects = nn;
    for (s = 0; s < nn; s++) {
        ev_csv dev, test;
        long i;
        char **shots;
        int kk, oom;
        snprintf(path, sizeof path, "%s/mmlu/dev/%s_dev.csv", dir, names[s]);
        if (ev_mmlu_rows(&dev, path, err)) return 1;
        snprintf(path, sizeof path, "%s/mmlu/test/%s_test.csv", dir, names[s]);
        if (ev_mmlu_rows(&test, path, err)) { ev_csv_free(&dev); return 1; }
        kk = k < dev.n - 1 ? k : (int)dev.n - 1;
        if (kk < k) {
            ev_csv_free(&dev);
            ev_csv_free(&test);
            return lc_error_set(err, LOLCATS_ERR_ARG, "--num-fewshot %d: %s/mmlu/dev/%s_dev.csv has "
                                "only %ld rows", k, dir, names[s], dev.n - 1), 1;
        }
        shots = (char **)malloc(sizeof(char *) * 6 * (size_t)(kk + 1));
        oom = !shots;
        for (i = 0; !oom && i < kk; i++) memcpy(shots + 6 * i, dev.f[1 + i], 6 * sizeof(char *));
        for (i = 1; !oom && i < test.n && (o->limit <= 0 || i <= o->limit); i++) {
            static const char *const ch[] = {"A", "B", "C", "D"};
            char *ctx = ev_mmlu_prompt(names[s], shots, kk, test.f[i]);
            char *hdr = ev_mmlu_prompt(names[s], shots, kk, NULL);
            ev_item *it = ev_add(t, &icap);
            oom = !ctx || !hdr || !it ||
                  ev_item_set(it, 4, (const char *const *)&ctx, 1, " ", ch, test.f[i][5][0] - '0',
                              test.line[i]);
            if (!oom) { it->subject = s; it->header = strlen(hdr); }
            free(ctx);
            free(hdr);
        }
        free(shots);
        ev_csv_free(&dev);
        ev_csv_free(&test);
        if (oom) return ev_oom(err);
    }
    return 0;
}

/* ---- the dispatcher ---- */
static int ev_path(char *out, size_t cap, const ev_opts *o, const char *rel, lc_error *err) {
    struct stat sb;
    snprintf(out, cap, "%s/%s", o->dir, rel);
    if (stat(out, &sb) == 0) return 0;
    return lc_error_set(err, LOLCATS_ERR_IO, "%s %s: %s not found (the task expects %s under the "
                        "data directory; layout and downloads: README \"Evaluating like the paper\")",
                        o->dir_from, o->dir, out, rel), 1;
}

int ev_task_load(ev_task *t, const char *name, const ev_opts *o, lc_error *err) {
    char p1[4096], p2[4096];
    struct stat sb;
    int rc;
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = EV_MC;
    if (!o->dir)
        return lc_error_set(err, LOLCATS_ERR_ARG, "task %s needs the evaluation data: give --data-dir "
                            "DIR or set LOLCATS_EVAL_DATA (the layout of ../shared/data/eval; see "
                            "README \"Evaluating like the paper\")", name), 1;
    if (stat(o->dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return lc_error_set(err, LOLCATS_ERR_IO, "%s %s: no such directory (it should hold piqa/, "
                            "arc/, hellaswag/, llm-foundry/, mmlu/)", o->dir_from, o->dir), 1;
    if (!strcmp(name, "piqa")) {
        t->has_norm = 1;
        rc = ev_path(p1, sizeof p1, o, "piqa/valid.jsonl", err) ||
             ev_path(p2, sizeof p2, o, "piqa/valid-labels.lst", err) || ev_load_piqa(t, p1, p2, err);
    } else if (!strcmp(name, "arc_easy")) {
        t->has_norm = 1;
        rc = ev_path(p1, sizeof p1, o, "arc/arc_easy.test.json", err) || ev_load_arc_easy(t, p1, err);
    } else if (!strcmp(name, "arc_challenge")) {
        t->has_norm = 1;
        rc = ev_path(p1, sizeof p1, o, "arc/arc_challenge.test.jsonl", err) ||
             ev_jsonl(t, p1, ev_arc_obj, NULL, err);
    } else if (!strcmp(name, "hellaswag")) {
        t->has_norm = 1;
        rc = ev_path(p1, sizeof p1, o, "hellaswag/hellaswag_val.txt", err) ||
             ev_load_hellaswag(t, p1, err);
    } else if (!strcmp(name, "winogrande")) {
        t->kind = EV_WINO;
        rc = ev_path(p1, sizeof p1, o, "llm-foundry/winogrande.jsonl", err) ||
             ev_jsonl(t, p1, ev_wino_obj, NULL, err);
    } else if (!strcmp(name, "lambada")) {
        t->kind = EV_LAMBADA;
        rc = ev_path(p1, sizeof p1, o, "llm-foundry/lambada_openai.jsonl", err) ||
             ev_jsonl(t, p1, ev_lambada_obj, NULL, err);
    } else if (!strcmp(name, "copa")) {
        rc = ev_path(p1, sizeof p1, o, "llm-foundry/copa.jsonl", err) ||
             ev_jsonl(t, p1, ev_foundry_obj, (void *)"copa", err);
    } else if (!strcmp(name, "openbookqa")) {
        t->has_norm = 1;
        rc = ev_path(p1, sizeof p1, o, "llm-foundry/openbook_qa.jsonl", err) ||
             ev_jsonl(t, p1, ev_foundry_obj, (void *)"openbookqa", err);
    } else if (!strcmp(name, "mmlu")) {
        rc = ev_path(p1, sizeof p1, o, "mmlu/dev", err) || ev_path(p1, sizeof p1, o, "mmlu/test", err) ||
             ev_load_mmlu(t, o->dir, o, err);
    } else {
        return lc_error_set(err, LOLCATS_ERR_ARG, "unknown task %s", name), 1;
    }
    if (rc) { ev_task_free(t); return 1; }
    if (o->limit > 0 && t->n > o->limit && t->kind != EV_PASSKEY && strcmp(name, "mmlu")) {
        long i;
        int k;
        for (i = o->limit; i < t->n; i++) {
            for (k = 0; k < t->items[i].nreq; k++) { free(t->items[i].req[k].ctx); free(t->items[i].req[k].cont); }
            free(t->items[i].req);
        }
        t->n = o->limit;
    }
    return 0;
}

void ev_task_free(ev_task *t) {
    long i;
    int k;
    for (i = 0; i < t->n; i++) {
        for (k = 0; k < t->items[i].nreq; k++) { free(t->items[i].req[k].ctx); free(t->items[i].req[k].cont); }
        free(t->items[i].req);
    }
    free(t->items);
    for (k = 0; k < t->n_subjects; k++) free(t->subjects[k]);
    free(t->subjects);
    memset(t, 0, sizeof *t);
}

/* ---- tokenization of a pair (lm_eval/api/model.py _encode_pair) ---- */
void ev_pair_free(ev_pair *p) {
    free(p->ctx);
    free(p->cont);
    memset(p, 0, sizeof *p);
}

static int ev_enc(const lc_tokenizer *tok, const char *s, size_t n, int bos, int **ids, int *nid,
                  lc_error *err) {
    size_t got = 0;
    *ids = (int *)malloc(sizeof(int) * (n + 3));
    if (!*ids) return ev_oom(err);
    if (lc_tokenizer_encode(tok, s, n, bos, 0, *ids, n + 3, &got, err)) { free(*ids); *ids = NULL; return 1; }
    *nid = (int)got;
    return 0;
}

int ev_encode_pair(const lc_tokenizer *tok, const char *ctx, const char *cont, int bos, ev_pair *p,
                   lc_error *err) {
    size_t nc = strlen(ctx), nk = strlen(cont), keep = nc;
    char *whole;
    int *w = NULL, nw = 0, i;
    memset(p, 0, sizeof *p);
    if (nc == 0) {  /* empty context: the prefix token, the continuation encoded alone */
        int pre = tok->bos_id >= 0 ? tok->bos_id : tok->eos_id;
        p->ctx = (int *)malloc(sizeof(int));
        if (!p->ctx) return ev_oom(err);
        p->ctx[0] = pre;
        p->nctx = 1;
        return ev_enc(tok, cont, nk, bos, &p->cont, &p->ncont, err);
    }
    while (keep && isspace((unsigned char)ctx[keep - 1])) keep--;
    whole = (char *)malloc(nc + nk + 1);
    if (!whole) return ev_oom(err);
    memcpy(whole, ctx, nc);
    memcpy(whole + nc, cont, nk + 1);
    /* whole = ctx + cont whatever moves; the context alone is ctx without its trailing spaces */
    if (ev_enc(tok, whole, nc + nk, bos, &w, &nw, err) ||
        ev_enc(tok, ctx, keep, bos, &p->ctx, &p->nctx, err)) {
        free(whole);
        free(w);
        return 1;
    }
    free(whole);
    p->ncont = nw > p->nctx ? nw - p->nctx : 0;
    p->cont = (int *)malloc(sizeof(int) * (size_t)(p->ncont + 1));
    if (!p->cont) { free(w); return ev_oom(err); }
    for (i = 0; i < p->ncont; i++) p->cont[i] = w[p->nctx + i];
    free(w);
    return 0;
}

/* ---- scoring ---- */
double ev_logprob(const float *l, int V, int tok) {
    double mx = (double)l[0], z = 0;
    int j;
    for (j = 1; j < V; j++) if ((double)l[j] > mx) mx = (double)l[j];
    for (j = 0; j < V; j++) z += exp((double)l[j] - mx);
    return (double)l[tok] - mx - log(z);
}

int ev_argmax_d(const double *x, int n) {
    int i, b = 0;
    for (i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return b;
}

void ev_choose(const ev_item *it, const ev_score *s, int *pick, int *pick_norm) {
    double ll[64], nl[64];
    int i, n = it->nreq < 64 ? it->nreq : 64;
    for (i = 0; i < n; i++) {
        ll[i] = s[i].ll;
        nl[i] = s[i].ll / (double)(it->req[i].norm_len > 0 ? it->req[i].norm_len : 1);
    }
    *pick = ev_argmax_d(ll, n);
    *pick_norm = ev_argmax_d(nl, n);
}

void ev_mean_add(ev_mean *m, double x) {
    m->sum += x;
    m->sumsq += x * x;
    m->n++;
}

double ev_mean_value(const ev_mean *m) { return m->n ? m->sum / (double)m->n : (double)NAN; }

double ev_mean_stderr(const ev_mean *m) {
    double mu, var;
    if (m->n < 2) return (double)NAN;
    mu = m->sum / (double)m->n;
    var = (m->sumsq - (double)m->n * mu * mu) / (double)(m->n - 1);
    return sqrt(var > 0 ? var : 0) / sqrt((double)m->n);
}

void ev_mmlu_agg(const ev_mean *sub, int n, double out[4]) {
    double macro = 0, se2 = 0, pooled = 0, hits = 0;
    long tot = 0;
    int ns = 0, s;
    for (s = 0; s < n; s++) {
        double se;
        if (!sub[s].n) continue;
        se = ev_mean_stderr(&sub[s]);
        macro += ev_mean_value(&sub[s]);
        hits += sub[s].sum;
        if (isfinite(se)) {
            se2 += se * se;
            pooled += (double)(sub[s].n - 1) * se * se * (double)sub[s].n;
        }
        tot += sub[s].n;
        ns++;
    }
    out[0] = tot ? hits / (double)tot : (double)NAN;
    out[1] = tot > ns ? sqrt(pooled / (double)(tot - ns) / (double)tot) : (double)NAN;
    out[2] = ns ? macro / ns : (double)NAN;
    out[3] = ns ? sqrt(se2) / ns : (double)NAN;
}
