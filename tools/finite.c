/* finite.c - non-finite values in the tools: JSON numbers that are null when
   not finite, and the training loop's stop at the first NaN / Inf with its
   cause and the files that really exist. */
#define _POSIX_C_SOURCE 200809L
#include "tools.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

void tool_json_num(FILE *f, const char *fmt, double v) {
    if (isfinite(v)) fprintf(f, fmt, v);
    else fputs("null", f);
}

int tool_all_finite(const float *x, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static int is_file(const char *path) {
    struct stat sb;
    return path && path[0] && stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

void tool_nonfinite_stop(int stage, long long step, const char *what, double value, int kind, double lr,
                         const char *ckpt, const char *state) {
    int has_ckpt = is_file(ckpt), has_state = is_file(state);
    fprintf(stderr, "lolcats: error: stage %d step %lld: %s is %g: stopping, nothing of this step is saved\n",
            stage, step, what, value);
    if (kind == TOOL_NF_START)
        fprintf(stderr, "lolcats:   it is non-finite at the starting parameters, before any update: the teacher "
                        "model, the data or the loaded checkpoint holds NaN / Inf (not the learning rate)\n");
    else if (kind == TOOL_NF_UPDATE)
        fprintf(stderr, "lolcats:   the loss and gradients of this step were finite; the AdamW update with "
                        "learning rate %g made the parameters non-finite: check --lr\n", lr);
    else
        fprintf(stderr, "lolcats:   the parameters were finite after the last update (learning rate %g): "
                        "either the inputs / teacher of this step hold NaN / Inf, or the parameters grew "
                        "until it overflowed (then a lower --lr helps)\n", lr);
    if (has_ckpt || has_state)
        fprintf(stderr, "lolcats:   kept from before: %s%s%s (--resume continues from the state)\n",
                has_ckpt ? ckpt : "", has_ckpt && has_state ? " and " : "", has_state ? state : "");
    else
        fprintf(stderr, "lolcats:   no checkpoint was written\n");
}
