/* slurp.h - the CLI tests' file reader: slurp(path, buf, cap) reads at most
   cap - 1 bytes of path into buf and NUL-terminates it (empty when unreadable). */
#ifndef SLURP_H
#define SLURP_H
#include <stdio.h>

static void slurp(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
}
#endif
