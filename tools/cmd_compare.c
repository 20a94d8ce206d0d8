/* cmd_compare.c - `lolcats compare A.safetensors B.safetensors`: per-tensor
   error table between a reference file A and a candidate B. */
#include "tools.h"
#include "args.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char compare_usage[] =
    "lolcats compare A.safetensors B.safetensors [--rtol R] [--atol A] [--only name,name]\n"
    "                [--equal-nan] [--ignore-extra] [--json] [--metric isclose|fla] [--ratio R]\n"
    "Compares every tensor of A (the reference) with the tensor of the same name in B,\n"
    "and prints one row per tensor: shape, max abs error, max rel error (over elements\n"
    "with |a| > atol), the worst element as a multi-index, the limit at that element and\n"
    "PASS/FAIL. Values are compared in double (F64 as stored, other dtypes through\n"
    "float32). An element passes as in numpy.isclose with A as the reference:\n"
    "\n"
    "    |b - a| <= atol + rtol * |a|        (defaults: rtol 1e-4, atol 1e-5)\n"
    "\n"
    "for finite values; an infinity matches only the same infinity (+inf vs -inf and\n"
    "inf vs any number FAIL); a NaN never passes, unless --equal-nan, where a NaN matches\n"
    "a NaN (and still nothing else). A tensor FAILs when an element does not pass, when\n"
    "the shapes differ, or when it is missing in B; a tensor only in B FAILs too (it is\n"
    "missing in A), unless --ignore-extra. Nothing to compare (A without tensors) is a\n"
    "failure. The NaN and Inf counts of each side are reported, and the RMS ratio\n"
    "rms(a - b) / rms(a) over the pairs of finite values (flash-linear-attention's\n"
    "get_err_ratio; 0 when both sides are 0).\n"
    "\n"
    "  --rtol R        relative tolerance (default 1e-4)\n"
    "  --atol A        absolute tolerance (default 1e-5)\n"
    "  --only a,b,c    compare only these tensors (a name absent from A FAILs; tensors\n"
    "                  not named are not looked at)\n"
    "  --equal-nan     a NaN in B where A has a NaN passes\n"
    "  --ignore-extra  tensors only in B are listed as \"extra (ignored)\" and do not FAIL\n"
    "  --json          print the table as one JSON object instead\n"
    "  --metric fla    pass/fail by the RMS ratio instead: a tensor passes when\n"
    "                  rms(a - b) / rms(a) <= --ratio (default 0.005) and no non-finite\n"
    "                  element mismatches (the rule above for NaN/Inf); --metric isclose\n"
    "                  is the default element rule\n"
    "  --ratio R       the RMS ratio limit of --metric fla\n"
    "\n"
    "Exit status: 0 all PASS, 1 some FAIL or nothing compared, 2 usage or file error.\n";

typedef struct {
    const char *name;
    const lc_tensor *ta;                 /* NULL: missing in A (--only) */
    int pass;
    char note[600];
    double max_abs, max_rel, limit;
    size_t worst;
    int has_worst;
    unsigned long nan_a, nan_b, inf_a, inf_b;   /* non-finite elements of each side */
    double rms_ratio;                    /* rms(a - b) / rms(a) over finite pairs */
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

/* The tensor's elements as doubles (F64 read as it is, so values beyond float
   range stay what they are; every other dtype through lc_tensor_to_f32). */
static double *tensor_f64(const lc_tensor *t, lc_error *err) {
    size_t n = lc_tensor_numel(t), i;
    double *d = (double *)malloc(n ? n * sizeof(double) : 1);
    float *f;
    if (!d) return NULL;
    if (t->dtype == LOLCATS_DTYPE_F64) {
        memcpy(d, t->data, n * sizeof(double));
        return d;
    }
    f = (float *)malloc(n ? n * sizeof(float) : 1);
    if (!f || lc_tensor_to_f32(t, f, err) != LOLCATS_OK) {
        if (!f) snprintf(err->msg, sizeof err->msg, "out of memory converting '%s'", t->name);
        free(f);
        free(d);
        return NULL;
    }
    for (i = 0; i < n; i++) d[i] = (double)f[i];
    free(f);
    return d;
}

/* a value for messages: "nan" whatever its sign bit, "inf" / "-inf", else %g */
static void value_str(char *buf, size_t n, double v) {
    if (v != v) snprintf(buf, n, "nan");
    else if (isinf(v)) snprintf(buf, n, "%sinf", v < 0 ? "-" : "");
    else snprintf(buf, n, "%g", v);
}

/* numpy.isclose with a as the reference: a NaN matches only a NaN, and only
   with --equal-nan; an infinity matches only the same infinity; finite values
   pass when |b - a| <= atol + rtol * |a|. */
static int element_close(double x, double y, double atol, double rtol, int equal_nan) {
    if (x != x || y != y) return equal_nan && x != x && y != y;
    if (isinf(x) || isinf(y)) return x == y;
    return fabs(y - x) <= atol + rtol * fabs(x);
}

/* Fills r from tensors a, b (same shape): the error statistics over the pairs
   of finite values, the non-finite counts of each side, and the worst element
   (the first failing non-finite pair if any, else the largest error relative to
   its limit). Returns 0 when out of memory. */
static int compare_tensor(cmp_row *r, const lc_tensor *a, const lc_tensor *b, double atol, double rtol,
                          int equal_nan, double fla_ratio) {
    size_t n = lc_tensor_numel(a), i, bad = 0, bad_nonfinite = 0, first_nonfinite = (size_t)-1;
    double worst_ratio = -1, sdd = 0, saa = 0;
    lc_error err;
    double *fa, *fb;
    err.msg[0] = 0;
    fa = tensor_f64(a, &err);
    fb = fa ? tensor_f64(b, &err) : NULL;
    if (!fa || !fb) {
        free(fa);
        if (!err.msg[0]) return 0;
        r->pass = 0;
        snprintf(r->note, sizeof r->note, "%s", err.msg);
        return 1;
    }
    for (i = 0; i < n; i++) {
        double x = fa[i], y = fb[i], d, lim, ratio;
        int ok = element_close(x, y, atol, rtol, equal_nan);
        r->nan_a += x != x;
        r->nan_b += y != y;
        r->inf_a += isinf(x) != 0;
        r->inf_b += isinf(y) != 0;
        if (!isfinite(x) || !isfinite(y)) {
            if (!ok) {
                bad_nonfinite++;
                if (first_nonfinite == (size_t)-1) first_nonfinite = i;
            }
            continue;
        }
        d = x == y ? 0.0 : fabs(y - x);
        sdd += d * d;
        saa += x * x;
        lim = atol + rtol * fabs(x);
        if (!ok) bad++;
        ratio = d == 0 ? 0 : lim > 0 ? d / lim : HUGE_VAL;
        if (d > r->max_abs) r->max_abs = d;
        if (fabs(x) > atol && fabs(x) > 0 && d / fabs(x) > r->max_rel) r->max_rel = d / fabs(x);
        if (ratio > worst_ratio) { worst_ratio = ratio; r->worst = i; r->limit = lim; r->has_worst = 1; }
    }
    if (bad_nonfinite) {
        char va[32], vb[32];
        r->worst = first_nonfinite;
        r->has_worst = 1;
        r->limit = isfinite(fa[first_nonfinite]) ? atol + rtol * fabs(fa[first_nonfinite]) : 0;
        value_str(va, sizeof va, fa[first_nonfinite]);
        value_str(vb, sizeof vb, fb[first_nonfinite]);
        snprintf(r->note, sizeof r->note, "%lu non-finite mismatch%s (first: A %s, B %s); NaN A %lu B %lu, Inf A %lu B %lu",
                 (unsigned long)bad_nonfinite, bad_nonfinite > 1 ? "es" : "", va, vb, (unsigned long)r->nan_a, (unsigned long)r->nan_b, (unsigned long)r->inf_a,
                 (unsigned long)r->inf_b);
        if (bad)
            snprintf(r->note + strlen(r->note), sizeof r->note - strlen(r->note), "; %lu finite element%s outside the limit",
                     (unsigned long)bad, bad > 1 ? "s" : "");
    } else if (bad) {
        snprintf(r->note, sizeof r->note, "%lu of %lu elements outside the limit", (unsigned long)bad, (unsigned long)n);
    }
    r->rms_ratio = saa > 0 ? sqrt(sdd / saa) : sdd > 0 ? HUGE_VAL : 0.0;
    r->pass = bad_nonfinite == 0 && bad == 0;
    if (fla_ratio >= 0) {            /* --metric fla: the RMS ratio decides */
        r->pass = bad_nonfinite == 0 && r->rms_ratio <= fla_ratio;
        if (!bad_nonfinite)
            snprintf(r->note, sizeof r->note, "%s", r->pass ? "" : "rms ratio above the limit");
    }
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
    double rtol = 1e-4, atol = 1e-5, ratio = 0.005;
    int fla = 0;
    int extra_fail = 0;
    int json = 0, equal_nan = 0, ignore_extra = 0, i, nrows = 0, failed = 0, n_extra = 0, rc = 2, name_w = 6;
    lc_st_file *fa = NULL, *fb = NULL;
    lc_error err;
    cmp_row *rows = NULL;
    char *only_buf = NULL;

    for (i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) return tool_arg_help(compare_usage, NULL);
        else if (!strcmp(s, "--json")) json = 1;
        else if (!strcmp(s, "--equal-nan")) equal_nan = 1;
        else if (!strcmp(s, "--ignore-extra")) ignore_extra = 1;
        else if (!strcmp(s, "--metric")) {
            const char *v = tool_arg_value(argc, argv, &i);
            if (!strcmp(v, "fla")) fla = 1;
            else if (!strcmp(v, "isclose")) fla = 0;
            else tool_arg_fail(argv[0], "--metric '%s': use isclose or fla", v);
        } else if (!strcmp(s, "--ratio")) {
            ratio = tool_arg_num(s, tool_arg_value(argc, argv, &i), 0, 1e300, 0);
        } else if (!strcmp(s, "--rtol") || !strcmp(s, "--atol") || !strcmp(s, "--only")) {
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
        } else if (!compare_tensor(r, r->ta, tb, atol, rtol, equal_nan, fla ? ratio : -1.0)) {
            fprintf(stderr, "lolcats compare: out of memory comparing '%s'\n", r->name);
            goto done;
        }
        failed += !r->pass;
    }
    if (!only)
        for (i = 0; i < lc_st_count(fb); i++)
            if (!lc_st_find(fa, lc_st_tensor_at(fb, i)->name)) n_extra++;
    extra_fail = n_extra > 0 && !ignore_extra;

    if (json) {
        int first = 1;
        printf("{\"a\":");
        json_string(pa);
        printf(",\"b\":");
        json_string(pb);
        printf(",\"rtol\":%g,\"atol\":%g,\"equal_nan\":%s,\"metric\":\"%s\",\"ratio\":%g,\"tensors\":[", rtol, atol,
               equal_nan ? "true" : "false", fla ? "fla" : "isclose", ratio);
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
            printf(",\"rms_ratio\":");
            json_number(r->rms_ratio);
            printf(",\"worst\":");
            if (r->has_worst) { index_str(buf, sizeof buf, r->ta, r->worst); printf("%s", buf); } else printf("null");
            printf(",\"limit\":");
            if (r->has_worst) json_number(r->limit); else printf("null");
            printf(",\"nan_a\":%lu,\"nan_b\":%lu,\"inf_a\":%lu,\"inf_b\":%lu", r->nan_a, r->nan_b, r->inf_a, r->inf_b);
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
        printf("],\"extra_fail\":%s,\"passed\":%d,\"failed\":%d}\n", extra_fail ? "true" : "false",
               nrows - failed, failed);
    } else {
        if (fla)
            printf("compare %s (A, reference) vs %s (B)\nrule rms(a-b)/rms(a) <= %g (--metric fla)\n\n", pa, pb, ratio);
        else
            printf("compare %s (A, reference) vs %s (B)\nrule |b-a| <= atol + rtol*|a|, atol %g, rtol %g\n\n", pa, pb,
                   atol, rtol);
        printf("%-*s %-16s %10s %10s %10s %-16s %10s  %s\n", name_w, "tensor", "shape", "max abs", "max rel",
               "rms ratio", "worst", "limit", "result");
        for (i = 0; i < nrows; i++) {
            const cmp_row *r = &rows[i];
            char sh[128] = "-", wi[128] = "-", lim[32] = "-", ab[32] = "-", rl[32] = "-", rr[32] = "-";
            if (r->ta) shape_str(sh, sizeof sh, r->ta);
            if (r->has_worst) {
                index_str(wi, sizeof wi, r->ta, r->worst);
                snprintf(lim, sizeof lim, "%.3e", r->limit);
                snprintf(ab, sizeof ab, "%.3e", r->max_abs);
                snprintf(rl, sizeof rl, "%.3e", r->max_rel);
                snprintf(rr, sizeof rr, "%.3e", r->rms_ratio);
            }
            printf("%-*s %-16s %10s %10s %10s %-16s %10s  %s%s%s\n", name_w, r->name, sh, ab, rl, rr, wi,
                   lim, r->pass ? "PASS" : "FAIL", r->note[0] ? "  " : "", r->note);
        }
        if (!only)
            for (i = 0; i < lc_st_count(fb); i++) {
                const lc_tensor *t = lc_st_tensor_at(fb, i);
                char sh[128];
                if (lc_st_find(fa, t->name)) continue;
                shape_str(sh, sizeof sh, t);
                printf("%-*s %-16s %10s %10s %10s %-16s %10s  %s\n", name_w, t->name, sh, "-", "-", "-", "-", "-",
                       extra_fail ? "FAIL  missing in A (--ignore-extra to allow)" : "extra (ignored)");
            }
        printf("\n%d compared: %d PASS, %d FAIL; %d only in B%s\n", nrows, nrows - failed, failed, n_extra,
               !n_extra ? "" : extra_fail ? " (FAIL)" : " (ignored)");
    }
    if (nrows == 0) fprintf(stderr, "lolcats compare: nothing compared: %s holds no tensor%s\n", pa, only ? " named by --only" : "");
    rc = failed || extra_fail || nrows == 0 ? 1 : 0;
done:
    free(rows);
    free(only_buf);
    lc_st_close(fa);
    lc_st_close(fb);
    return rc;
}
