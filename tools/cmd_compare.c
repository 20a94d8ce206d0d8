/* cmd_compare.c - `lolcats compare A.safetensors B.safetensors`: per-tensor
   error table between a reference file A and a candidate B. */
#include "tools.h"
#include "args.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char compare_usage[] =
    "lolcats compare A.safetensors B.safetensors [--rtol R] [--atol A] [--only name,name] [--json]\n"
    "Compares every tensor of A (the reference) with the tensor of the same name in B,\n"
    "both converted to float32, and prints one row per tensor: shape, max abs error,\n"
    "max rel error (over elements with |a| > atol), the worst element as a multi-index,\n"
    "the limit at that element and PASS/FAIL. An element passes when\n"
    "\n"
    "    |b - a| <= atol + rtol * |a|        (defaults: rtol 1e-4, atol 1e-5)\n"
    "\n"
    "A tensor FAILs when an element is outside the limit, when either side holds a NaN,\n"
    "when it is missing in B, or when the shapes differ. Tensors only in B are listed as\n"
    "\"extra (ignored)\".\n"
    "\n"
    "  --rtol R        relative tolerance (default 1e-4)\n"
    "  --atol A        absolute tolerance (default 1e-5)\n"
    "  --only a,b,c    compare only these tensors (a name absent from A FAILs)\n"
    "  --json          print the table as one JSON object instead\n"
    "\n"
    "Exit status: 0 all PASS, 1 some FAIL, 2 usage or file error.\n";

typedef struct {
    const char *name;
    const lc_tensor *ta;                 /* NULL: missing in A (--only) */
    int pass;
    char note[600];
    double max_abs, max_rel, limit;
    size_t worst;
    int has_worst;
} cmp_row;

static void shape_str(char *buf, size_t n, const lc_tensor *t) {
    size_t o = 0;
    int i;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (i = 0; i < t->ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? "," : "", (long long)t->shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

static void index_str(char *buf, size_t n, const lc_tensor *t, size_t flat) {
    int64_t idx[LOLCATS_MAX_DIMS];
    size_t o = 0;
    int i;
    for (i = t->ndim - 1; i >= 0; i--) {
        idx[i] = t->shape[i] ? (int64_t)(flat % (size_t)t->shape[i]) : 0;
        if (t->shape[i]) flat /= (size_t)t->shape[i];
    }
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (i = 0; i < t->ndim && o < n; i++) o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? "," : "", (long long)idx[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

static int same_shape(const lc_tensor *a, const lc_tensor *b) {
    int i;
    if (a->ndim != b->ndim) return 0;
    for (i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

/* Fills r from tensors a, b (same shape). Returns 0 when out of memory. */
static int compare_tensor(cmp_row *r, const lc_tensor *a, const lc_tensor *b, double atol, double rtol) {
    size_t n = lc_tensor_numel(a), i;
    float *fa = (float *)malloc(n ? n * sizeof(float) : 1), *fb = (float *)malloc(n ? n * sizeof(float) : 1);
    double worst_ratio = -1;
    lc_error err;
    size_t first_nan = (size_t)-1, nan_count = 0, bad = 0;
    if (!fa || !fb) { free(fa); free(fb); return 0; }
    if (lc_tensor_to_f32(a, fa, &err) != LOLCATS_OK || lc_tensor_to_f32(b, fb, &err) != LOLCATS_OK) {
        r->pass = 0;
        snprintf(r->note, sizeof r->note, "%s", err.msg);
        free(fa);
        free(fb);
        return 1;
    }
    for (i = 0; i < n; i++) {
        double x = (double)fa[i], y = (double)fb[i], d, lim, ratio;
        if (x != x || y != y) {
            if (first_nan == (size_t)-1) first_nan = i;
            nan_count++;
            continue;
        }
        d = x == y ? 0.0 : fabs(y - x);
        lim = atol + rtol * fabs(x);
        if (!(d <= lim)) bad++;
        ratio = d == 0 ? 0 : lim > 0 ? d / lim : HUGE_VAL;
        if (d > r->max_abs) r->max_abs = d;
        if (fabs(x) > atol && fabs(x) > 0 && d / fabs(x) > r->max_rel) r->max_rel = d / fabs(x);
        if (ratio > worst_ratio) { worst_ratio = ratio; r->worst = i; r->limit = lim; r->has_worst = 1; }
    }
    if (nan_count) {
        r->worst = first_nan;
        r->has_worst = 1;
        r->limit = atol + rtol * fabs((double)fa[first_nan]);
        snprintf(r->note, sizeof r->note, "%lu NaN element%s (first in %s)", (unsigned long)nan_count,
                 nan_count > 1 ? "s" : "", fa[first_nan] != fa[first_nan] ? "A" : "B");
    } else if (bad) {
        snprintf(r->note, sizeof r->note, "%lu of %lu elements outside the limit", (unsigned long)bad, (unsigned long)n);
    }
    r->pass = nan_count == 0 && bad == 0;
    free(fa);
    free(fb);
    return 1;
}

static void json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void json_number(double v) {
    if (v != v || v > 1.7e308 || v < -1.7e308) printf("null");
    else printf("%.6g", v);
}

int cmd_compare(int argc, char **argv) {
    const char *pa = NULL, *pb = NULL, *only = NULL;
    double rtol = 1e-4, atol = 1e-5;
    int json = 0, i, nrows = 0, failed = 0, n_extra = 0, rc = 2, name_w = 6;
    lc_st_file *fa = NULL, *fb = NULL;
    lc_error err;
    cmp_row *rows = NULL;
    char *only_buf = NULL;

    for (i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) return tool_arg_help(compare_usage, NULL);
        else if (!strcmp(s, "--json")) json = 1;
        else if (!strcmp(s, "--rtol") || !strcmp(s, "--atol") || !strcmp(s, "--only")) {
            const char *v = tool_arg_value(argc, argv, &i);
            if (!strcmp(s, "--only")) only = v;
            else *(!strcmp(s, "--rtol") ? &rtol : &atol) = tool_arg_num(s, v, 0, 1e300, 0);
        } else if (s[0] == '-' && s[1]) {
            tool_arg_unknown(argv[0], s, compare_usage, NULL);
        } else if (!pa) pa = s;
        else if (!pb) pb = s;
        else { fprintf(stderr, "lolcats compare: too many files ('%s')\n\n%s", s, compare_usage); return 2; }
    }
    if (!pa || !pb) { fprintf(stderr, "lolcats compare: need two files\n\n%s", compare_usage); return 2; }
    if (lc_st_open(&fa, pa, &err) != LOLCATS_OK || lc_st_open(&fb, pb, &err) != LOLCATS_OK) {
        fprintf(stderr, "lolcats compare: %s\n", err.msg);
        goto done;
    }

    /* the rows: --only names in order, else every tensor of A in file order */
    if (only) {
        char *p, *tok;
        size_t len = strlen(only);
        int cap = 1;
        for (p = (char *)only; *p; p++) cap += *p == ',';
        only_buf = (char *)malloc(len + 1);
        rows = (cmp_row *)calloc((size_t)cap, sizeof *rows);
        if (!only_buf || !rows) { fprintf(stderr, "lolcats compare: out of memory\n"); goto done; }
        memcpy(only_buf, only, len + 1);
        for (tok = only_buf; tok; tok = p) {
            p = strchr(tok, ',');
            if (p) *p++ = 0;
            if (!*tok) continue;
            rows[nrows].name = tok;
            rows[nrows].ta = lc_st_find(fa, tok);
            nrows++;
        }
    } else {
        int n = lc_st_count(fa);
        rows = (cmp_row *)calloc((size_t)(n ? n : 1), sizeof *rows);
        if (!rows) { fprintf(stderr, "lolcats compare: out of memory\n"); goto done; }
        for (i = 0; i < n; i++) {
            rows[nrows].ta = lc_st_tensor_at(fa, i);
            rows[nrows].name = rows[nrows].ta->name;
            nrows++;
        }
    }

    for (i = 0; i < nrows; i++) {
        cmp_row *r = &rows[i];
        const lc_tensor *tb = lc_st_find(fb, r->name);
        int w = (int)strlen(r->name);
        if (w > name_w) name_w = w > 60 ? 60 : w;
        if (!r->ta) { r->pass = 0; snprintf(r->note, sizeof r->note, "missing in A"); }
        else if (!tb) { r->pass = 0; snprintf(r->note, sizeof r->note, "missing in B"); }
        else if (!same_shape(r->ta, tb)) {
            char sa[128], sb[128];
            shape_str(sa, sizeof sa, r->ta);
            shape_str(sb, sizeof sb, tb);
            r->pass = 0;
            snprintf(r->note, sizeof r->note, "shape mismatch: A %s, B %s", sa, sb);
        } else if (!compare_tensor(r, r->ta, tb, atol, rtol)) {
            fprintf(stderr, "lolcats compare: out of memory comparing '%s'\n", r->name);
            goto done;
        }
        failed += !r->pass;
    }
    if (!only)
        for (i = 0; i < lc_st_count(fb); i++)
            if (!lc_st_find(fa, lc_st_tensor_at(fb, i)->name)) n_extra++;

    if (json) {
        int first = 1;
        printf("{\"a\":");
        json_string(pa);
        printf(",\"b\":");
        json_string(pb);
        printf(",\"rtol\":%g,\"atol\":%g,\"tensors\":[", rtol, atol);
        for (i = 0; i < nrows; i++) {
            const cmp_row *r = &rows[i];
            char buf[256];
            printf("%s\n{\"name\":", i ? "," : "");
            json_string(r->name);
            printf(",\"shape\":");
            if (r->ta) { shape_str(buf, sizeof buf, r->ta); printf("%s", buf); } else printf("null");
            printf(",\"max_abs\":");
            json_number(r->max_abs);
            printf(",\"max_rel\":");
            json_number(r->max_rel);
            printf(",\"worst\":");
            if (r->has_worst) { index_str(buf, sizeof buf, r->ta, r->worst); printf("%s", buf); } else printf("null");
            printf(",\"limit\":");
            if (r->has_worst) json_number(r->limit); else printf("null");
            printf(",\"status\":\"%s\",\"note\":", r->pass ? "PASS" : "FAIL");
            json_string(r->note);
            printf("}");
        }
        printf("],\"extra\":[");
        if (!only)
            for (i = 0; i < lc_st_count(fb); i++) {
                const char *nm = lc_st_tensor_at(fb, i)->name;
                if (lc_st_find(fa, nm)) continue;
                printf("%s", first ? "" : ",");
                json_string(nm);
                first = 0;
            }
        printf("],\"passed\":%d,\"failed\":%d}\n", nrows - failed, failed);
    } else {
        printf("compare %s (A, reference) vs %s (B)\nrule |b-a| <= atol + rtol*|a|, atol %g, rtol %g\n\n", pa, pb,
               atol, rtol);
        printf("%-*s %-16s %10s %10s %-16s %10s  %s\n", name_w, "tensor", "shape", "max abs", "max rel", "worst",
               "limit", "result");
        for (i = 0; i < nrows; i++) {
            const cmp_row *r = &rows[i];
            char sh[128] = "-", wi[128] = "-", lim[32] = "-", ab[32] = "-", rl[32] = "-";
            if (r->ta) shape_str(sh, sizeof sh, r->ta);
            if (r->has_worst) {
                index_str(wi, sizeof wi, r->ta, r->worst);
                snprintf(lim, sizeof lim, "%.3e", r->limit);
                snprintf(ab, sizeof ab, "%.3e", r->max_abs);
                snprintf(rl, sizeof rl, "%.3e", r->max_rel);
            }
            printf("%-*s %-16s %10s %10s %-16s %10s  %s%s%s\n", name_w, r->name, sh, ab, rl, wi,
                   lim, r->pass ? "PASS" : "FAIL", r->note[0] ? "  " : "", r->note);
        }
        if (!only)
            for (i = 0; i < lc_st_count(fb); i++) {
                const lc_tensor *t = lc_st_tensor_at(fb, i);
                char sh[128];
                if (lc_st_find(fa, t->name)) continue;
                shape_str(sh, sizeof sh, t);
                printf("%-*s %-16s %10s %10s %-16s %10s  extra (ignored)\n", name_w, t->name, sh, "-", "-", "-", "-");
            }
        printf("\n%d compared: %d PASS, %d FAIL; %d extra in B (ignored)\n", nrows, nrows - failed, failed, n_extra);
    }
    rc = failed ? 1 : 0;
done:
    free(rows);
    free(only_buf);
    lc_st_close(fa);
    lc_st_close(fb);
    return rc;
}
