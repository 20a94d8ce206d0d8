/* fuzz_common.h - shared by the harnesses whose parser reads a path: the
   input goes to a per-process temporary file first. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* writes data to /tmp/lolcats-fuzz-<pid>/<name>, returns the path (static) */
static const char *fuzz_file(const char *name, const uint8_t *data, size_t size) {
    static char path[256];
    char dir[128];
    FILE *f;
    snprintf(dir, sizeof dir, "/tmp/lolcats-fuzz-%ld", (long)getpid());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}

/* every error message must name the file it is about */
static void fuzz_check_names(const char *msg, const char *name) {
    if (!strstr(msg, name)) {
        fprintf(stderr, "error message does not name %s: %s\n", name, msg);
        abort();
    }
}
#endif
