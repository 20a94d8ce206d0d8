/* test_readme.c - the README's C snippets compile and run as printed.
   Every ```c block of README.md that follows a line `<!-- snippet -->` is
   written to build/tests/readme/snippet_<line>.c, compiled as C99 with the
   Makefile's warnings and -Werror (cc, or $CC), and run; when the next block
   after it is a ```text block preceded by `<!-- snippet-output -->`, the
   program's stdout must equal that block exactly. Also checks that the
   README keeps the CI line (`<!-- ci-test-command -->` then the command). */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include <string.h>

#define DIR "build/tests/readme"

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *b;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = (char *)malloc((size_t)n + 1);
    if (!b) { fclose(f); return NULL; }
    *len = fread(b, 1, (size_t)n, f);
    b[*len] = 0;
    fclose(f);
    return b;
}

/* the lines of a fenced block starting after line p (at "```lang\n"): returns
   the text (malloc'd) and sets *end past the closing fence */
static char *block(const char *p, const char **end) {
    const char *s = strchr(p, '\n'), *e;
    char *out;
    if (!s) return NULL;
    s++;
    e = s;
    while (*e && strncmp(e, "```", 3) != 0) {
        const char *nl = strchr(e, '\n');
        if (!nl) return NULL;
        e = nl + 1;
    }
    if (!*e) return NULL;
    out = (char *)malloc((size_t)(e - s) + 1);
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = 0;
    *end = strchr(e, '\n') ? strchr(e, '\n') + 1 : e + strlen(e);
    return out;
}

static int line_of(const char *text, const char *p) {
    int n = 1;
    for (; text < p; text++) n += *text == '\n';
    return n;
}

int main(void) {
    size_t len = 0, olen = 0;
    char *readme = slurp("README.md", &len), *p, *code, *want, *got;
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc", *end;
    char path[256], cmd[1024];
    int snippets = 0;
    if (!readme) {
        printf("SKIPPED: README.md not found (run from the repository root)\n");
        return check_done();
    }
    if (system("mkdir -p " DIR) != 0) { printf("FAIL: mkdir " DIR "\n"); return 1; }
    p = strstr(readme, "<!-- ci-test-command -->\n```\n");
    CHECK(p != NULL, "README.md keeps the <!-- ci-test-command --> line and its code block");
    if (p) {
        p += strlen("<!-- ci-test-command -->\n```\n");
        CHECK(!strncmp(p, "sh tools/setup.sh --test && make check\n", 39),
              "the CI command installs the test toolchain and runs make check (README line %d)",
              line_of(readme, p));
    }
    for (p = strstr(readme, "<!-- snippet -->\n"); p; p = strstr(p + 1, "<!-- snippet -->\n")) {
        const char *fence = p + strlen("<!-- snippet -->\n");
        int line = line_of(readme, p), rc;
        FILE *f;
        if (strncmp(fence, "```c\n", 5) != 0) {
            CHECK(0, "README.md line %d: <!-- snippet --> is not followed by a ```c block", line);
            continue;
        }
        code = block(fence, &end);
        if (!CHECK(code != NULL, "README.md line %d: the snippet's block is not closed", line)) continue;
        snippets++;
        snprintf(path, sizeof path, DIR "/snippet_%d.c", line);
        f = fopen(path, "w");
        if (!f) { CHECK(0, "cannot write %s", path); free(code); continue; }
        fputs(code, f);
        fclose(f);
        snprintf(cmd, sizeof cmd,
                 "%s -std=c99 -O1 -Wall -Wextra -Wpedantic -Wshadow -Wdouble-promotion -Wstrict-prototypes "
                 "-Wmissing-prototypes -Wvla -Werror -I. -o " DIR "/snippet_%d %s -lm 2>&1", cc, line, path);
        rc = system(cmd);
        if (!CHECK(rc == 0, "README.md line %d: the snippet compiles warning-free (%s)", line, path)) {
            free(code);
            continue;
        }
        snprintf(cmd, sizeof cmd, DIR "/snippet_%d > " DIR "/snippet_%d.out", line, line);
        rc = system(cmd);
        CHECK(rc == 0, "README.md line %d: the snippet runs and exits 0 (got %d)", line, rc);
        /* the printed output, when the README shows it */
        while (*end == '\n') end++;
        if (!strncmp(end, "<!-- snippet-output -->\n```text\n", 32)) {
            const char *e2;
            want = block(end + strlen("<!-- snippet-output -->\n"), &e2);
            snprintf(path, sizeof path, DIR "/snippet_%d.out", line);
            got = slurp(path, &olen);
            CHECK(want && got && !strcmp(want, got),
                  "README.md line %d: the snippet prints what the README shows below it\n--- README:\n%s--- printed:\n%s",
                  line, want ? want : "", got ? got : "");
            free(want);
            free(got);
        }
        free(code);
    }
    CHECK(snippets >= 1, "README.md has at least one <!-- snippet --> (found %d)", snippets);
    printf("%d README snippet(s) compiled and run\n", snippets);
    free(readme);
    return check_done();
}
