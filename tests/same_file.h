/* same_file.h - same_file(a, b): 1 when both files open and hold the same bytes. */
#ifndef SAME_FILE_H
#define SAME_FILE_H
#include <stdio.h>

static int same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int ca, cb, same = fa && fb;
    while (same) {
        ca = fgetc(fa);
        cb = fgetc(fb);
        if (ca != cb) same = 0;
        if (ca == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}
#endif
