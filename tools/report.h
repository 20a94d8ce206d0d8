/* report.h - `--report DIR` pictures: a tiny RGB canvas with lines, bars and
   heat maps, written as PNG through stb_image_write when the system has it
   (Debian: libstb-dev); without it tool_png_write returns -1 and writes nothing. */
#ifndef LOLCATS_TOOLS_REPORT_H
#define LOLCATS_TOOLS_REPORT_H

typedef struct {
    int w, h;
    unsigned char *px;   /* (h, w, 3) */
} tool_canvas;

int tool_canvas_init(tool_canvas *c, int w, int h);   /* white; 0 on success */
void tool_canvas_free(tool_canvas *c);
void tool_canvas_line(tool_canvas *c, int x0, int y0, int x1, int y1, unsigned rgb);
void tool_canvas_rect(tool_canvas *c, int x0, int y0, int x1, int y1, unsigned rgb);  /* filled, inclusive */
/* Heat map of a (rows, cols) array at (x, y), each cell scale x scale pixels,
   value v -> colour of sqrt(v / vmax) (white 0 .. dark blue vmax). */
void tool_canvas_heat(tool_canvas *c, int x, int y, const float *a, int rows, int cols, int scale, float vmax);
/* 0 written, 1 error, -1 PNG support not compiled in. */
int tool_png_write(const tool_canvas *c, const char *path);
int tool_png_available(void);
#endif
