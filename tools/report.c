/* report.c - a tiny rasterizer for `--report` pictures (see report.h). The one
   stb_image_write implementation of the tools lives here. */
#define _POSIX_C_SOURCE 200809L
#include "report.h"
#include "outsafe.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<stb/stb_image_write.h>)
#define TOOL_HAVE_STB 1
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wpedantic"
#endif
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif
#endif

int tool_canvas_init(tool_canvas *c, int w, int h) {
    c->w = w;
    c->h = h;
    c->px = (unsigned char *)malloc((size_t)w * (size_t)h * 3);
    if (!c->px) return 1;
    memset(c->px, 255, (size_t)w * (size_t)h * 3);
    return 0;
}

void tool_canvas_free(tool_canvas *c) {
    free(c->px);
    c->px = NULL;
}

static void put(tool_canvas *c, int x, int y, unsigned rgb) {
    unsigned char *p;
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    p[0] = (unsigned char)(rgb >> 16);
    p[1] = (unsigned char)(rgb >> 8);
    p[2] = (unsigned char)rgb;
}

void tool_canvas_line(tool_canvas *c, int x0, int y0, int x1, int y1, unsigned rgb) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;
    for (;;) {   /* Bresenham */
        int e2;
        put(c, x0, y0, rgb);
        if (x0 == x1 && y0 == y1) break;
        e2 = 2 * e;
        if (e2 >= dy) { e += dy; x0 += sx; }
        if (e2 <= dx) { e += dx; y0 += sy; }
    }
}

void tool_canvas_rect(tool_canvas *c, int x0, int y0, int x1, int y1, unsigned rgb) {
    int x, y;
    for (y = y0; y <= y1; y++)
        for (x = x0; x <= x1; x++) put(c, x, y, rgb);
}

void tool_canvas_heat(tool_canvas *c, int x, int y, const float *a, int rows, int cols, int scale, float vmax) {
    int i, j;
    for (i = 0; i < rows; i++)
        for (j = 0; j < cols; j++) {
            double v = vmax > 0 ? (double)a[(size_t)i * (size_t)cols + (size_t)j] / (double)vmax : 0;
            unsigned r, g, b;
            v = v < 0 ? 0 : v > 1 ? 1 : sqrt(v);
            r = (unsigned)(255 - v * 247);
            g = (unsigned)(255 - v * 207);
            b = (unsigned)(255 - v * 148);
            tool_canvas_rect(c, x + j * scale, y + i * scale, x + (j + 1) * scale - 1, y + (i + 1) * scale - 1,
                             r << 16 | g << 8 | b);
        }
}

int tool_png_available(void) {
#ifdef TOOL_HAVE_STB
    return 1;
#else
    return 0;
#endif
}

/* Written to PATH.tmp.<pid> (removed if a signal lands in the write), then
   renamed over PATH: a picture is either the old one or the whole new one. */
int tool_png_write(const tool_canvas *c, const char *path) {
#ifdef TOOL_HAVE_STB
    static int slot = -1;         /* one slot serves every picture, one at a time */
    char tmp[1200];
    int ok;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (slot < 0) slot = outsafe_tmp(tmp);
    else outsafe_tmp_set(slot, tmp);
    ok = stbi_write_png(tmp, c->w, c->h, 3, c->px, c->w * 3) && rename(tmp, path) == 0;
    if (!ok) remove(tmp);
    return ok ? 0 : 1;
#else
    (void)c;
    (void)path;
    return -1;
#endif
}
