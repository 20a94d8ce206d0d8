/* test_plot.c - the labelled pictures of tools/plot.c and the index.html of
   tools/report_index.c:
   - with the font (LOLCATS_FONT, else DejaVuSans.ttf under /usr/share/fonts)
     a chart's title band, its tick labels and a colour bar's labels carry
     drawn (non-white) pixels, and the PNG is written; without it (font
     unloaded) the same chart leaves the title band white but still draws its
     data; the colour bar runs light (0) to dark (vmax);
   - tool_report_index names every PNG of a directory, with a caption, and
     leaves no temporary file;
   - `lolcats demo --scale 0.05 --report DIR` (LOLCATS_BIN) writes index.html
     naming every picture it wrote, and through a pipe prints plain progress
     lines (LOLCATS_PROGRESS_SECONDS=0), never a carriage return.
   Needs stb_image_write / stb_truetype and the font: SKIPPED lines otherwise. */
#define _POSIX_C_SOURCE 200809L
#include "tests/check.h"
#include "tools/plot.h"
#include "tools/report.h"
#include "tools/report_index.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DIRT "build/tests/plot"

static long ink(const tool_canvas *c, int x0, int y0, int x1, int y1) {   /* non-white pixels in the box */
    long n = 0;
    int x, y;
    for (y = y0; y <= y1 && y < c->h; y++)
        for (x = x0; x <= x1 && x < c->w; x++) {
            const unsigned char *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
            if (p[0] < 250 || p[1] < 250 || p[2] < 250) n++;
        }
    return n;
}

static int lum(const tool_canvas *c, int x, int y) {
    const unsigned char *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    return p[0] + p[1] + p[2];
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    char *b;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = (char *)calloc((size_t)n + 1, 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    return b;
}

static int is_png(const char *path) {
    unsigned char h[8] = {0};
    FILE *f = fopen(path, "rb");
    int ok;
    if (!f) return 0;
    ok = fread(h, 1, 8, f) == 8 && h[0] == 0x89 && h[1] == 'P' && h[2] == 'N' && h[3] == 'G';
    fclose(f);
    return ok;
}

static void chart(tool_canvas *c) {
    static const char *const names[2] = {"training", "validation"};
    static const unsigned rgb[2] = {0x1f5fbf, 0xd04020};
    double a[100], b[100];
    const double *ys[2];
    int ns[2] = {100, 100}, i;
    plot_spec sp;
    for (i = 0; i < 100; i++) { a[i] = 5.0 / (1 + i) + 0.3 * (i % 3); b[i] = 4.0 / (1 + i) + 0.5; }
    ys[0] = a; ys[1] = b;
    memset(&sp, 0, sizeof sp);
    sp.title = "Loss per step"; sp.xlabel = "step"; sp.ylabel = "loss"; sp.names = names;
    sp.logy = 1; sp.smooth = 1; sp.x0 = 1; sp.dx = 1;
    plot_chart(c, 0, 0, c->w, c->h, &sp, ys, ns, rgb, 2);
}

/* every *.png of dir is named in dir/index.html; returns how many pictures */
static int index_names_all(const char *dir, int *missing) {
    char path[600], *html;
    DIR *d;
    struct dirent *e;
    int n = 0;
    *missing = 0;
    snprintf(path, sizeof path, "%s/index.html", dir);
    html = slurp(path);
    if (!html) { *missing = -1; return 0; }
    d = opendir(dir);
    while (d && (e = readdir(d)) != NULL) {
        size_t L = strlen(e->d_name);
        char needle[400];
        if (L < 5 || strcmp(e->d_name + L - 4, ".png")) continue;
        n++;
        snprintf(needle, sizeof needle, "<img src=\"%s\"", e->d_name);
        if (!strstr(html, needle)) { printf("  index.html misses %s\n", e->d_name); (*missing)++; }
    }
    if (d) closedir(d);
    free(html);
    return n;
}

static int access_ok(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int leftovers(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL) n += strstr(e->d_name, ".tmp") != NULL;
    if (d) closedir(d);
    return n;
}

int main(void) {
    tool_canvas c;
    const char *bin = getenv("LOLCATS_BIN");
    int have_font;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (system("rm -rf " DIRT " && mkdir -p " DIRT "/idx") != 0) { printf("FAIL: cannot set up " DIRT "\n0 passed, 1 failed\n"); return 1; }
    if (!tool_png_available()) {
        printf("SKIPPED: pictures (stb_image_write not found at build time: apt-get install libstb-dev)\n");
        return check_done();
    }
    have_font = plot_font_load(NULL) == 0;

    /* with the font: text in the title band, at the ticks, in the legend */
    if (!have_font) printf("SKIPPED: text in pictures (no stb_truetype or no DejaVuSans.ttf: apt-get install libstb-dev "
                           "fonts-dejavu-core, or set LOLCATS_FONT)\n");
    else if (CHECK(tool_canvas_init(&c, 480, 300) == 0, "canvas")) {
        chart(&c);
        CHECK(ink(&c, 0, 0, c.w - 1, 20) > 40, "title band has %ld drawn pixels with a font (want > 40)", ink(&c, 0, 0, c.w - 1, 20));
        CHECK(ink(&c, 0, 30, 50, 250) > 40, "y tick labels / axis label: %ld drawn pixels (want > 40)", ink(&c, 0, 30, 50, 250));
        CHECK(ink(&c, 60, c.h - 20, c.w - 1, c.h - 1) > 20, "x axis label: %ld drawn pixels", ink(&c, 60, c.h - 20, c.w - 1, c.h - 1));
        CHECK(plot_text_width("Loss per step", 15.0f) > 40, "text width %d", plot_text_width("Loss per step", 15.0f));
        CHECK(tool_png_write(&c, DIRT "/idx/stage1_loss.png") == 0 && is_png(DIRT "/idx/stage1_loss.png"),
              "labelled chart written as a PNG");
        tool_canvas_free(&c);
    }
    /* colour bar: light at 0 (bottom), dark at vmax (top), labelled with a font */
    if (CHECK(tool_canvas_init(&c, 200, 220) == 0, "canvas")) {
        plot_colorbar(&c, 20, 10, 200, 0.5f, "weight");
        CHECK(lum(&c, 27, 11) + 200 < lum(&c, 27, 208), "colour bar dark at the top (%d) and light at the bottom (%d)",
              lum(&c, 27, 11), lum(&c, 27, 208));
        if (have_font) CHECK(ink(&c, 40, 0, 199, 219) > 60, "colour bar tick values / label drawn: %ld pixels", ink(&c, 40, 0, 199, 219));
        tool_canvas_free(&c);
    }

    /* without a font: same chart, title band blank, data still drawn */
    plot_font_unload();
    if (CHECK(tool_canvas_init(&c, 480, 300) == 0, "canvas")) {
        chart(&c);
        CHECK(ink(&c, 0, 0, c.w - 1, 20) == 0, "title band drawn on without a font (%ld pixels)", ink(&c, 0, 0, c.w - 1, 20));
        CHECK(ink(&c, 60, 30, c.w - 20, c.h - 40) > 200, "no data drawn without a font (%ld pixels)", ink(&c, 60, 30, c.w - 20, c.h - 40));
        CHECK(plot_text_width("Loss", 15.0f) == 0, "text width without a font");
        CHECK(tool_png_write(&c, DIRT "/idx/stage1_attn_layer0_head0.png") == 0, "unlabelled chart written");
        tool_canvas_free(&c);
    }

    /* index.html beside the pictures */
    {
        int missing, n;
        char *html;
        if (!have_font) {   /* the first picture above was skipped: write one */
            tool_canvas_init(&c, 8, 8);
            tool_png_write(&c, DIRT "/idx/stage1_loss.png");
            tool_canvas_free(&c);
        }
        CHECK(tool_report_index(DIRT "/idx", "test <pictures>") == 0, "tool_report_index failed");
        n = index_names_all(DIRT "/idx", &missing);
        CHECK(n == 2 && missing == 0, "index.html names %d of %d pictures", n - missing, n);
        html = slurp(DIRT "/idx/index.html");
        CHECK(html && strstr(html, "Stage 1 loss per optimizer step") && strstr(html, "layer 0, head 0") &&
              strstr(html, "test &lt;pictures&gt;"), "captions / escaped heading in index.html");
        free(html);
        CHECK(leftovers(DIRT "/idx") == 0, "temporary file left beside index.html");
    }

    /* the demo end to end */
    if (!bin || access_ok(bin) == 0) printf("SKIPPED: demo --report (LOLCATS_BIN not set or not built)\n");
    else {
        char cmd[1200], *err, *out;
        int missing, n, rc;
        snprintf(cmd, sizeof cmd, "LOLCATS_PROGRESS_SECONDS=0 OMP_NUM_THREADS=1 %s demo --scale 0.05 --report " DIRT
                 "/demo >" DIRT "/out.txt 2>" DIRT "/err.txt", bin);
        rc = system(cmd);
        CHECK(rc == 0, "%s exited %d", cmd, rc);
        n = index_names_all(DIRT "/demo", &missing);
        CHECK(n >= 4 && missing == 0, "demo: index.html names %d of %d pictures (want 4+)", n - missing, n);
        err = slurp(DIRT "/err.txt");
        out = slurp(DIRT "/out.txt");
        CHECK(err && strstr(err, "teacher: ") && strstr(err, " tok/s, loss ") && !strchr(err, '\r'),
              "demo through a pipe: plain progress lines without \\r on stderr");
        CHECK(out && strstr(out, "index.html"), "demo names index.html on stdout");
        CHECK(leftovers(DIRT "/demo") == 0, "temporary files left in the demo's report");
        free(err);
        free(out);
    }
    return check_done();
}
