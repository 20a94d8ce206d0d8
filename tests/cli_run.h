/* cli_run.h - runs the command-line tool for the CLI tests.
   cli_run(dir, bin, args, out, oc, err, ec) runs `OMP_NUM_THREADS=1 BIN ARGS` with stdout in
   DIR/out.txt and stderr in DIR/err.txt, reads them back into out and err (at most oc - 1 and
   ec - 1 bytes; either may be NULL) and returns the exit code (128 when it did not exit). */
#ifndef CLI_RUN_H
#define CLI_RUN_H
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include "slurp.h"

static int cli_run(const char *dir, const char *bin, const char *args, char *out, size_t oc, char *err,
                   size_t ec) {
    char cmd[4096], o[1024], e[1024];
    int st;
    snprintf(o, sizeof o, "%s/out.txt", dir);
    snprintf(e, sizeof e, "%s/err.txt", dir);
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s %s >%s 2>%s", bin, args, o, e);
    st = system(cmd);
    if (out) slurp(o, out, oc);
    if (err) slurp(e, err, ec);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}
#endif
