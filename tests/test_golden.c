/* test_golden.c - lolcats.h against PyTorch autograd on the original's math.
   Every .safetensors case under tests/data (written by tools/gen_golden.py, see
   tests/data/README.md) holds the inputs of one `lolcats ref` case plus the
   expected outputs computed in float64. For each, lc_ref_eval runs on the
   SIMD path and on the scalar reference; every output must be within
       max(2e-5 * scale, 10 * f32_err)   (scale = max |expected|)
   where f32_err is the original float32 code's own error against float64
   (metadata f32_err.<name>). */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"

#include <dirent.h>

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void run_file(const char *path) {
    lc_st_file *f = NULL;
    lc_error err;
    lc_ref_case rc;
    float *owned = NULL;
    int path_i;
    memset(&err, 0, sizeof err);
    if (!CHECK(lc_st_open(&f, path, &err) == LOLCATS_OK, "%s", err.msg)) return;
    if (!lc_st_meta(f, "case")) { /* e.g. the model reference of test_model */
        printf("%s: not a gen_golden.py case (no 'case' metadata), left to its own test\n", path);
        lc_st_close(f);
        return;
    }
    if (!CHECK(lc_ref_case_from_st(f, &rc, &owned, &err) == LOLCATS_OK, "%s", err.msg)) {
        lc_st_close(f);
        return;
    }
    printf("%s (op %s)\n", path, lc_st_meta(f, "op"));
    for (path_i = 0; path_i < 2; path_i++) {
        lc_ctx ctx;
        lc_ref_out out;
        lc_tensor list[LOLCATS_REF_MAX_OUT];
        int n, t, compared = 0;
        lc_ctx_init(&ctx);
        if (path_i) ctx.simd = LOLCATS_SIMD_SCALAR;
        if (!CHECK(lc_ref_eval(&ctx, &rc, &out, &err) == LOLCATS_OK, "%s: %s", path, err.msg)) continue;
        n = lc_ref_out_tensors(&rc, &out, list);
        for (t = 0; t < n; t++) {
            const lc_tensor *e = lc_st_find(f, list[t].name);
            size_t cnt = lc_tensor_numel(&list[t]), i;
            float *exp_v;
            double scale = 0, f32e = 0, tol;
            char key[96], what[160];
            const char *s;
            if (!e) continue; /* the generator left this output out */
            if (!CHECK(lc_tensor_numel(e) == cnt, "%s: %s has %zu values, expected %zu", path,
                       list[t].name, cnt, lc_tensor_numel(e)))
                continue;
            exp_v = (float *)malloc(sizeof(float) * (cnt ? cnt : 1));
            lc_tensor_to_f32(e, exp_v, &err);
            for (i = 0; i < cnt; i++)
                if (fabs((double)exp_v[i]) > scale) scale = fabs((double)exp_v[i]);
            snprintf(key, sizeof key, "f32_err.%s", list[t].name);
            if ((s = lc_st_meta(f, key)) != NULL) f32e = atof(s);
            tol = 2e-5 * (scale > 0 ? scale : 1);
            if (10 * f32e > tol) tol = 10 * f32e;
            snprintf(what, sizeof what, "  [%s] %s", lc_simd_name(ctx.simd), list[t].name);
            check_close(what, (const float *)list[t].data, exp_v, cnt, tol, 0);
            free(exp_v);
            compared++;
        }
        CHECK(compared > 0, "%s: no expected outputs found in the file", path);
        lc_ref_out_free(&out);
    }
    lc_free(owned);
    lc_st_close(f);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "tests/data";
    DIR *d = opendir(dir);
    struct dirent *de;
    char *names[512];
    int n = 0, i;
    if (!d) {
        printf("FAIL: cannot open %s (run from the repository root)\n", dir);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    while ((de = readdir(d)) != NULL && n < 512) {
        size_t len = strlen(de->d_name);
        if (len > 12 && !strcmp(de->d_name + len - 12, ".safetensors")) {
            names[n] = (char *)malloc(strlen(dir) + len + 2);
            sprintf(names[n], "%s/%s", dir, de->d_name);
            n++;
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_names);
    CHECK(n >= 10, "expected the golden cases under %s, found %d files", dir, n);
    for (i = 0; i < n; i++) {
        run_file(names[i]);
        free(names[i]);
    }
    return check_done();
}
