/* plot.h - labelled pictures on the canvas of report.h: text through
   stb_truetype (Debian libstb-dev, detected at build time) with a system font
   found at run time (LOLCATS_FONT, else DejaVuSans.ttf under /usr/share/fonts;
   Debian fonts-dejavu-core); titles, axes with ticks and values, legends,
   colour bars, smoothed curves over their faint raw values. Without the font
   (or stb_truetype) the pictures are drawn unlabelled and a one-line notice
   goes to stderr once. */
#ifndef LOLCATS_TOOLS_PLOT_H
#define LOLCATS_TOOLS_PLOT_H
#include "report.h"

/* Loads the font at PATH (NULL: LOLCATS_FONT, then the usual DejaVuSans.ttf
   places); 0 loaded, 1 not. Called on first use of text by itself. */
int plot_font_load(const char *path);
void plot_font_unload(void);      /* text is no longer drawn (and no notice given) */
int plot_font_available(void);    /* loads on first call; notice on stderr when absent */

enum { PLOT_LEFT = -1, PLOT_CENTRE = 0, PLOT_RIGHT = 1 };
/* Text of pixel height SIZE whose top-left (align LEFT) / top-centre / top-right
   is (x, y); up != 0: rotated 90 degrees counter-clockwise, (x, y) the bottom-left
   (align along the text). Returns the width in pixels (0 without a font). */
int plot_text(tool_canvas *c, int x, int y, const char *s, float size, unsigned rgb, int align, int up);
int plot_text_width(const char *s, float size);

typedef struct {
    const char *title, *xlabel, *ylabel;
    const char *const *names;     /* legend entries, one a series (NULL: no legend) */
    int logy;                     /* log10 value axis */
    int smooth;                   /* bit k set: series k drawn as a moving average over its faint raw values */
    double x0, dx;                /* x of point i is x0 + i * dx (dx 0: 1) */
} plot_spec;

/* Line chart in the rectangle (x, y, w, h) of the canvas, frame and labels included. */
void plot_chart(tool_canvas *c, int x, int y, int w, int h, const plot_spec *s, const double *const *ys,
                const int *ns, const unsigned *rgb, int nser);
/* Grouped bars (values[g * nser + s]); group g is labelled first_label + g. */
void plot_bars(tool_canvas *c, int x, int y, int w, int h, const plot_spec *s, const double *values, int groups,
               int nser, const unsigned *rgb, int first_label);
/* Heat map of (rows, cols) with its cells' top-left at (x, y), scale pixels a
   cell, colours of tool_canvas_heat over [0, vmax]; the title above, tick values
   and the axis labels left and below: leave PLOT_HEAT_L / _T / _B pixels free. */
enum { PLOT_HEAT_L = 44, PLOT_HEAT_T = 22, PLOT_HEAT_B = 36, PLOT_BAR_W = 64 };
void plot_heat(tool_canvas *c, int x, int y, const float *a, int rows, int cols, int scale, float vmax,
               const char *title, const char *xlabel, const char *ylabel);
/* Vertical colour bar (x, y, 14 wide, h high) for [0, vmax], ticks and LABEL to
   its right: PLOT_BAR_W pixels in all. */
void plot_colorbar(tool_canvas *c, int x, int y, int h, float vmax, const char *label);
#endif
