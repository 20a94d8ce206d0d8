/* ref_grid.c - `lolcats ref --grid DIR`: the edge grid of lc_ref_grid_* as
   files, through the output-safety layer. */
#define _POSIX_C_SOURCE 200809L
#include "ref_grid.h"
#include "outsafe.h"
#include "tools.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int ref_grid_write_dir(int argc, char **argv, const char *dir) {
    lc_error err;
    char name[64], path[4096];
    int i, n = lc_ref_grid_count(), slot = -1;
    memset(&err, 0, sizeof err);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "lolcats: error: --grid %s: cannot create the directory: %s\n", dir, strerror(errno));
        return 1;
    }
    outsafe_output("--grid", dir, OUTSAFE_OUT_DIR);
    if (outsafe_begin(argc, argv, 0, 1)) return 1;
    for (i = 0; i < n; i++) {
        lc_ref_grid_name(i, name, sizeof name);
        if (snprintf(path, sizeof path, "%s/%s.safetensors", dir, name) >= (int)sizeof path) {
            fprintf(stderr, "lolcats: error: --grid %s: path too long\n", dir);
            return 1;
        }
        slot = outsafe_st_tmp(slot, path);
        if (lc_ref_grid_write(path, i, &err) != LOLCATS_OK) return tool_report(&err);
    }
    fprintf(stderr, "lolcats ref: --grid %s: %d cases (inputs, expected outputs, f64.<name>)\n", dir, n);
    return 0;
}
