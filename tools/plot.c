/* plot.c - labelled pictures (see plot.h). The one stb_truetype implementation
   of the tools lives here. */
#define _POSIX_C_SOURCE 200809L
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include) && !defined(PLOT_NO_TRUETYPE)   /* -DPLOT_NO_TRUETYPE: build as if absent */
#if __has_include(<stb/stb_truetype.h>)
#define PLOT_HAVE_TT 1
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#endif
#define STB_TRUETYPE_IMPLEMENTATION
#define STBTT_STATIC
#include <stb/stb_truetype.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif
#endif

/* ---- the font ---------------------------------------------------------- */

static int font_state;            /* 0 not tried, 1 loaded, -1 absent */
static int font_noticed;
#ifdef PLOT_HAVE_TT
static unsigned char *font_data;
static stbtt_fontinfo font_info;
#endif

void plot_font_unload(void) {
#ifdef PLOT_HAVE_TT
    free(font_data);
    font_data = NULL;
#endif
    font_state = -1;
    font_noticed = 1;
}

#ifdef PLOT_HAVE_TT
static unsigned char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    unsigned char *b = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && n < (64L << 20) && fseek(f, 0, SEEK_SET) == 0 &&
        (b = (unsigned char *)malloc((size_t)n)) != NULL && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}
#endif

int plot_font_load(const char *path) {
#ifdef PLOT_HAVE_TT
    static const char *const places[] = {
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
        "/usr/local/share/fonts/DejaVuSans.ttf"};
    const char *env = getenv("LOLCATS_FONT");
    size_t i;
    free(font_data);
    font_data = NULL;
    font_state = -1;
    if (!path && env && env[0]) path = env;
    for (i = 0; i < (path ? 1 : sizeof places / sizeof places[0]); i++) {
        const char *p = path ? path : places[i];
        unsigned char *b = slurp(p);
        if (!b) continue;
        if (stbtt_InitFont(&font_info, b, stbtt_GetFontOffsetForIndex(b, 0))) {
            font_data = b;
            font_state = 1;
            return 0;
        }
        free(b);
    }
    return 1;
#else
    (void)path;
    font_state = -1;
    return 1;
#endif
}

int plot_font_available(void) {
    if (font_state == 0) plot_font_load(NULL);
    if (font_state < 0 && !font_noticed) {
        font_noticed = 1;
#ifdef PLOT_HAVE_TT
        fprintf(stderr, "lolcats: note: no font found (DejaVuSans.ttf under /usr/share/fonts, or LOLCATS_FONT=FILE.ttf): "
                        "pictures are drawn without text (apt-get install fonts-dejavu-core)\n");
#else
        fprintf(stderr, "lolcats: note: built without stb_truetype: pictures are drawn without text "
                        "(apt-get install libstb-dev fonts-dejavu-core, then rebuild)\n");
#endif
    }
    return font_state > 0;
}

static unsigned blend(unsigned rgb, unsigned bg, double a) {   /* a of rgb over bg */
    unsigned r = 0, k;
    for (k = 0; k < 24; k += 8) {
        double v = a * (double)((rgb >> k) & 255) + (1 - a) * (double)((bg >> k) & 255);
        r |= (unsigned)(v + 0.5) << k;
    }
    return r;
}

#ifdef PLOT_HAVE_TT
static unsigned get(const tool_canvas *c, int x, int y) {
    const unsigned char *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    return (unsigned)p[0] << 16 | (unsigned)p[1] << 8 | p[2];
}

static void put_a(tool_canvas *c, int x, int y, unsigned rgb, double a) {
    if (x < 0 || y < 0 || x >= c->w || y >= c->h || a <= 0) return;
    tool_canvas_rect(c, x, y, x, y, blend(rgb, get(c, x, y), a > 1 ? 1 : a));
}

/* next code point of UTF-8 text (a stray byte reads as itself) */
static int next_cp(const unsigned char **s) {
    const unsigned char *p = *s;
    int cp = *p++, extra = cp >= 0xf0 ? 3 : cp >= 0xe0 ? 2 : cp >= 0xc0 ? 1 : 0, k;
    if (extra) {
        int v = cp & (0x3f >> extra);
        for (k = 0; k < extra && (p[k] & 0xc0) == 0x80; k++) v = v << 6 | (p[k] & 0x3f);
        if (k == extra) { cp = v; p += extra; }
    }
    *s = p;
    return cp;
}

static int text_run(tool_canvas *c, int x, int y, const char *s, float size, unsigned rgb, int up) {
    float sc = stbtt_ScaleForPixelHeight(&font_info, size), pen = 0;
    int asc, desc, gap, prev = 0;
    const unsigned char *p = (const unsigned char *)s;
    stbtt_GetFontVMetrics(&font_info, &asc, &desc, &gap);
    while (*p) {
        int cp = next_cp(&p), adv, lsb, x0, y0, x1, y1;
        if (prev) pen += sc * (float)stbtt_GetCodepointKernAdvance(&font_info, prev, cp);
        stbtt_GetCodepointHMetrics(&font_info, cp, &adv, &lsb);
        stbtt_GetCodepointBitmapBox(&font_info, cp, sc, sc, &x0, &y0, &x1, &y1);
        if (c && x1 > x0 && y1 > y0) {
            int w = x1 - x0, h = y1 - y0, i, j;
            unsigned char *g = (unsigned char *)malloc((size_t)w * (size_t)h);
            if (g) {
                stbtt_MakeCodepointBitmap(&font_info, g, w, h, w, sc, sc, cp);
                for (j = 0; j < h; j++)
                    for (i = 0; i < w; i++) {
                        int gx = (int)floorf(pen) + x0 + i, gy = (int)floorf(sc * (float)asc) + y0 + j;
                        double a = g[(size_t)j * (size_t)w + (size_t)i] / 255.0;
                        if (up) put_a(c, x + gy, y - gx, rgb, a);
                        else put_a(c, x + gx, y + gy, rgb, a);
                    }
                free(g);
            }
        }
        pen += sc * (float)adv;
        prev = cp;
    }
    return (int)ceilf(pen);
}
#endif

int plot_text_width(const char *s, float size) {
#ifdef PLOT_HAVE_TT
    if (!plot_font_available()) return 0;
    return text_run(NULL, 0, 0, s, size, 0, 0);
#else
    (void)s;
    (void)size;
    return 0;
#endif
}

int plot_text(tool_canvas *c, int x, int y, const char *s, float size, unsigned rgb, int align, int up) {
#ifdef PLOT_HAVE_TT
    int w;
    if (!s || !plot_font_available()) return 0;
    w = text_run(NULL, 0, 0, s, size, 0, 0);
    if (align == PLOT_CENTRE) w /= 2;
    else if (align == PLOT_LEFT) w = 0;
    if (up) text_run(c, x, y + w, s, size, rgb, 1);
    else text_run(c, x - w, y, s, size, rgb, 0);
    return w;
#else
    (void)c; (void)x; (void)y; (void)s; (void)size; (void)rgb; (void)align; (void)up;
    plot_font_available();
    return 0;
#endif
}

/* ---- axes --------------------------------------------------------------- */

enum { TICKS_MAX = 24 };
static const float TITLE = 15.0f, LABEL = 12.0f, TICK = 11.0f;
static const unsigned INK = 0x202020, AXIS = 0x404040, GRID = 0xe6e6e6;

static double nice_step(double span, int n) {
    double raw = span / n, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

/* tick values (not mapped) of the axis [lo, hi] (log10 units when logy) */
static int ticks(double lo, double hi, int logy, int want, double *t) {
    int n = 0;
    double a, b, st, v;
    if (logy && hi - lo >= 2.5) {   /* decades */
        int k, step = (int)ceil((hi - lo) / want);
        for (k = (int)ceil(lo - 1e-9); k <= (int)floor(hi + 1e-9) && n < TICKS_MAX; k += step) t[n++] = pow(10, k);
        return n;
    }
    if (logy && hi - lo >= 0.6) {   /* 1, 2, 5 times the powers of ten */
        int k, m;
        static const double mult[3] = {1, 2, 5};
        for (k = (int)floor(lo) ; k <= (int)ceil(hi) && n < TICKS_MAX; k++)
            for (m = 0; m < 3 && n < TICKS_MAX; m++) {
                double u = mult[m] * pow(10, k);
                if (log10(u) >= lo - 1e-9 && log10(u) <= hi + 1e-9) t[n++] = u;
            }
        if (n >= 3) return n;
        n = 0;
    }
    a = logy ? pow(10, lo) : lo;
    b = logy ? pow(10, hi) : hi;
    if (!(b > a)) return 0;
    st = nice_step(b - a, want);
    for (v = ceil(a / st - 1e-9) * st; v <= b + st * 1e-9 && n < TICKS_MAX; v += st) t[n++] = fabs(v) < st * 1e-9 ? 0 : v;
    return n;
}

static double ymap(double v, int logy) { return logy ? log10(v > 1e-30 ? v : 1e-30) : v; }

static void fmt(char *b, size_t n, double v) { snprintf(b, n, "%.3g", v); }

typedef struct { int x0, y0, x1, y1; double lo, hi, xlo, xhi; int logy; } frame;

static int fy(const frame *f, double v) {
    return f->y1 - (int)lround((ymap(v, f->logy) - f->lo) / (f->hi - f->lo) * (f->y1 - f->y0));
}
static int fx(const frame *f, double x) {
    return f->x0 + (int)lround((x - f->xlo) / (f->xhi - f->xlo) * (f->x1 - f->x0));
}

/* title, axis labels, grid, y ticks (x ticks when xticks) */
static void draw_frame(tool_canvas *c, int x, int y, int w, int h, const plot_spec *s, frame *f, int xticks) {
    double t[TICKS_MAX];
    char b[32];
    int n, i;
    f->x0 = x + 58; f->x1 = x + w - 12; f->y0 = y + 26; f->y1 = y + h - 38;
    plot_text(c, x + w / 2, y + 4, s->title, TITLE, INK, PLOT_CENTRE, 0);
    plot_text(c, (f->x0 + f->x1) / 2, f->y1 + 20, s->xlabel, LABEL, INK, PLOT_CENTRE, 0);
    plot_text(c, x + 2, (f->y0 + f->y1) / 2, s->ylabel, LABEL, INK, PLOT_CENTRE, 1);
    n = ticks(f->lo, f->hi, f->logy, 5, t);
    for (i = 0; i < n; i++) {
        int yy = fy(f, t[i]);
        if (yy < f->y0 || yy > f->y1) continue;
        tool_canvas_line(c, f->x0 + 1, yy, f->x1, yy, GRID);
        tool_canvas_line(c, f->x0 - 4, yy, f->x0, yy, AXIS);
        fmt(b, sizeof b, t[i]);
        plot_text(c, f->x0 - 6, yy - 7, b, TICK, INK, PLOT_RIGHT, 0);
    }
    if (xticks) {
        n = ticks(f->xlo, f->xhi, 0, 6, t);
        for (i = 0; i < n; i++) {
            int xx = fx(f, t[i]);
            tool_canvas_line(c, xx, f->y1, xx, f->y1 + 4, AXIS);
            fmt(b, sizeof b, t[i]);
            plot_text(c, xx, f->y1 + 5, b, TICK, INK, PLOT_CENTRE, 0);
        }
    }
    tool_canvas_line(c, f->x0, f->y0, f->x0, f->y1, AXIS);
    tool_canvas_line(c, f->x0, f->y1, f->x1, f->y1, AXIS);
}

static void legend(tool_canvas *c, const frame *f, const plot_spec *s, const unsigned *rgb, int nser) {
    int i, w = 0, x, y;
    if (!s->names || !plot_font_available()) return;
    for (i = 0; i < nser; i++) {
        int tw = plot_text_width(s->names[i] ? s->names[i] : "", TICK);
        if (tw > w) w = tw;
    }
    x = f->x1 - w - 34;
    y = f->y0 + 4;
    tool_canvas_rect(c, x, y, f->x1 - 4, y + 16 * nser + 6, 0xffffff);
    tool_canvas_line(c, x, y, f->x1 - 4, y, 0xb0b0b0);
    tool_canvas_line(c, x, y + 16 * nser + 6, f->x1 - 4, y + 16 * nser + 6, 0xb0b0b0);
    tool_canvas_line(c, x, y, x, y + 16 * nser + 6, 0xb0b0b0);
    tool_canvas_line(c, f->x1 - 4, y, f->x1 - 4, y + 16 * nser + 6, 0xb0b0b0);
    for (i = 0; i < nser; i++) {
        int yy = y + 4 + 16 * i;
        tool_canvas_rect(c, x + 5, yy + 6, x + 21, yy + 8, rgb[i]);
        plot_text(c, x + 26, yy, s->names[i] ? s->names[i] : "", TICK, INK, PLOT_LEFT, 0);
    }
}

static void range(const double *v, int n, int logy, double *lo, double *hi) {
    int i;
    for (i = 0; i < n; i++) {
        double yv;
        if (v[i] != v[i] || (logy && v[i] <= 0) || isinf(v[i])) continue;
        yv = ymap(v[i], logy);
        if (yv < *lo) *lo = yv;
        if (yv > *hi) *hi = yv;
    }
}

static void series(tool_canvas *c, const frame *f, const plot_spec *s, const double *v, int n, unsigned rgb) {
    int i, px = 0, py = 0, have = 0;
    double dx = s->dx != 0 ? s->dx : 1;
    for (i = 0; i < n; i++) {
        int x, y;
        if (v[i] != v[i] || isinf(v[i]) || (f->logy && v[i] <= 0)) { have = 0; continue; }
        x = fx(f, s->x0 + i * dx);
        y = fy(f, v[i]);
        if (have) tool_canvas_line(c, px, py, x, y, rgb);
        else tool_canvas_rect(c, x - 1, y - 1, x + 1, y + 1, rgb);
        px = x; py = y; have = 1;
    }
}

void plot_chart(tool_canvas *c, int x, int y, int w, int h, const plot_spec *s, const double *const *ys,
                const int *ns, const unsigned *rgb, int nser) {
    frame f;
    int k, i, nmax = 1;
    double dx = s->dx != 0 ? s->dx : 1;
    f.lo = HUGE_VAL; f.hi = -HUGE_VAL; f.logy = s->logy;
    for (k = 0; k < nser; k++) {
        range(ys[k], ns[k], s->logy, &f.lo, &f.hi);
        if (ns[k] > nmax) nmax = ns[k];
    }
    if (!(f.lo <= f.hi)) { f.lo = 0; f.hi = 1; }
    if (f.hi - f.lo < 1e-12) { f.hi += 0.5; f.lo -= 0.5; }
    { double pad = 0.05 * (f.hi - f.lo); f.lo -= pad; f.hi += pad; }
    f.xlo = s->x0; f.xhi = s->x0 + (nmax > 1 ? (nmax - 1) * dx : 1);
    draw_frame(c, x, y, w, h, s, &f, 1);
    for (k = 0; k < nser; k++) {
        int smooth = k < 30 && (s->smooth >> k & 1) && ns[k] >= 20;
        double *e = smooth ? (double *)malloc(sizeof(double) * (size_t)ns[k]) : NULL;
        if (e) {   /* raw faint, then the moving average (window about n/20) strong */
            double a = 2.0 / (ns[k] / 20.0 + 1), m = 0;
            int started = 0;
            if (a > 1) a = 1;
            series(c, &f, s, ys[k], ns[k], blend(rgb[k], 0xffffff, 0.28));
            for (i = 0; i < ns[k]; i++) {
                double v = ys[k][i];
                if (v == v && !isinf(v)) { m = started ? m + a * (v - m) : v; started = 1; }
                e[i] = started ? m : (double)NAN;
            }
            series(c, &f, s, e, ns[k], rgb[k]);
            free(e);
        } else series(c, &f, s, ys[k], ns[k], rgb[k]);
    }
    legend(c, &f, s, rgb, nser);
}

void plot_bars(tool_canvas *c, int x, int y, int w, int h, const plot_spec *s, const double *values, int groups,
               int nser, const unsigned *rgb, int first_label) {
    frame f;
    int g, k, gw;
    char b[32];
    f.lo = HUGE_VAL; f.hi = -HUGE_VAL; f.logy = s->logy; f.xlo = 0; f.xhi = 1;
    range(values, groups * nser, s->logy, &f.lo, &f.hi);
    if (!(f.lo <= f.hi) || groups <= 0) { f.lo = 0; f.hi = 1; }
    if (s->logy) { double pad = 0.1 * (f.hi - f.lo) + 0.05; f.lo -= pad; f.hi += pad; }
    if (s->names) f.hi += 0.25 * (f.hi - f.lo);   /* room for the legend above the bars */
    else { if (f.lo > 0) f.lo = 0; f.hi += 0.05 * (f.hi - f.lo); }
    if (f.hi - f.lo < 1e-12) f.hi = f.lo + 1;
    draw_frame(c, x, y, w, h, s, &f, 0);
    if (groups <= 0) return;
    gw = (f.x1 - f.x0) / groups;
    for (g = 0; g < groups; g++) {
        int bw = (gw - 6) / (nser > 0 ? nser : 1);
        snprintf(b, sizeof b, "%d", first_label + g);
        plot_text(c, f.x0 + g * gw + gw / 2, f.y1 + 5, b, TICK, INK, PLOT_CENTRE, 0);
        for (k = 0; k < nser; k++) {
            double v = values[g * nser + k];
            int x0 = f.x0 + 1 + g * gw + 3 + k * bw, top;
            if (v != v || isinf(v) || (s->logy && v <= 0) || bw < 2) continue;
            top = fy(&f, v);
            if (top < f.y0) top = f.y0;
            tool_canvas_rect(c, x0, top, x0 + bw - 2, f.y1 - 1, rgb[k]);
        }
    }
    legend(c, &f, s, rgb, nser);
}

void plot_colorbar(tool_canvas *c, int x, int y, int h, float vmax, const char *label) {
    float *a = (float *)malloc(sizeof(float) * (size_t)h * 14);
    double t[TICKS_MAX];
    char b[32];
    int i, j, n;
    if (!a || h < 2) { free(a); return; }
    for (i = 0; i < h; i++)
        for (j = 0; j < 14; j++) a[(size_t)i * 14 + (size_t)j] = vmax * (float)(h - 1 - i) / (float)(h - 1);
    tool_canvas_heat(c, x, y, a, h, 14, 1, vmax);
    free(a);
    tool_canvas_line(c, x - 1, y - 1, x + 14, y - 1, AXIS);
    tool_canvas_line(c, x - 1, y + h, x + 14, y + h, AXIS);
    tool_canvas_line(c, x - 1, y - 1, x - 1, y + h, AXIS);
    tool_canvas_line(c, x + 14, y - 1, x + 14, y + h, AXIS);
    n = vmax > 0 ? ticks(0, (double)vmax, 0, 4, t) : 0;
    for (i = 0; i < n; i++) {
        int yy = y + h - 1 - (int)lround(t[i] / (double)vmax * (h - 1));
        tool_canvas_line(c, x + 14, yy, x + 18, yy, AXIS);
        fmt(b, sizeof b, t[i]);
        plot_text(c, x + 20, yy - 7, b, TICK, INK, PLOT_LEFT, 0);
    }
    plot_text(c, x + PLOT_BAR_W - 12, y + h / 2, label, LABEL, INK, PLOT_CENTRE, 1);
}

void plot_heat(tool_canvas *c, int x, int y, const float *a, int rows, int cols, int scale, float vmax,
               const char *title, const char *xlabel, const char *ylabel) {
    double t[TICKS_MAX];
    char b[32];
    int i, n;
    tool_canvas_heat(c, x, y, a, rows, cols, scale, vmax);
    plot_text(c, x + cols * scale / 2, y - PLOT_HEAT_T + 3, title, 13.0f, INK, PLOT_CENTRE, 0);
    n = ticks(0, cols - 1, 0, 4, t);
    for (i = 0; i < n; i++) {
        int xx = x + (int)t[i] * scale + scale / 2;
        tool_canvas_line(c, xx, y + rows * scale, xx, y + rows * scale + 3, AXIS);
        fmt(b, sizeof b, t[i]);
        plot_text(c, xx, y + rows * scale + 4, b, TICK, INK, PLOT_CENTRE, 0);
    }
    n = ticks(0, rows - 1, 0, 4, t);
    for (i = 0; i < n; i++) {
        int yy = y + (int)t[i] * scale + scale / 2;
        tool_canvas_line(c, x - 4, yy, x - 1, yy, AXIS);
        fmt(b, sizeof b, t[i]);
        plot_text(c, x - 6, yy - 7, b, TICK, INK, PLOT_RIGHT, 0);
    }
    plot_text(c, x + cols * scale / 2, y + rows * scale + 19, xlabel, LABEL, INK, PLOT_CENTRE, 0);
    plot_text(c, x - PLOT_HEAT_L + 2, y + rows * scale / 2, ylabel, LABEL, INK, PLOT_CENTRE, 1);
}
