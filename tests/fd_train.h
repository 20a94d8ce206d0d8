/* fd_train.h - the trainer tests' gradient check: fd_params(what, t, off, count, samples, loss, arg)
   compares t->grads[off .. off+count) (sampled at about `samples` places) with central differences
   of loss(t, arg) in double, h = 1e-2 * max(|p|, 0.1), and CHECKs the relative error <= 3e-2.
   The caller has filled t->grads by one step at the current parameters. */
#ifndef FD_TRAIN_H
#define FD_TRAIN_H
#include <math.h>
#include <stdio.h>
#include "check.h"

static void fd_params(const char *what, lc_train *t, size_t off, size_t count, size_t samples,
                      double (*loss)(lc_train *, int), int arg) {
    double num = 0, den = 0, rel;
    size_t stride = count > samples ? count / samples : 1, i, used = 0;
    for (i = 0; i < count; i += stride) {
        float *p = t->params + off + i, keep = *p;
        float h = 1e-2f * (fabsf(keep) > 0.1f ? fabsf(keep) : 0.1f);
        double lp, lm, fd, an = (double)t->grads[off + i];
        *p = keep + h;
        lp = loss(t, arg);
        *p = keep - h;
        lm = loss(t, arg);
        *p = keep;
        fd = (lp - lm) / (double)((keep + h) - (keep - h));
        num += (an - fd) * (an - fd);
        den += fd * fd;
        used++;
    }
    rel = sqrt(num / (den + 1e-30));
    printf("  %-52s %3zu params  rel err %.2e\n", what, used, rel);
    CHECK(rel <= 3e-2 && den > 0, "%s: gradient rel err %.3e (fd norm %.3e)", what, rel, sqrt(den));
}
#endif
