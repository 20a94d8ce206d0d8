/* test_examples.c - the teaching track runs: every examples/NN_*.c is built
   alone with the plain command its comment gives (`$CC -O2 examples/X.c -lm`,
   CC default cc) and run (OMP_NUM_THREADS=1, in a scratch directory); it must
   exit 0 and print a "verdict: OK" line. examples/NN_*.py run with
   /usr/bin/python3 when it has NumPy (else a SKIPPED line), against the tool
   in $LOLCATS_BIN (default build/lolcats). Each example's own checks are what
   fail it (an example exits 1 when the property it demonstrates does not
   hold). Scratch: build/tests/examples-<pid>, removed at the end. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <dirent.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[128];

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int sh(const char *cmd) {
    int st = system(cmd);
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* the example's output file: prints its verdict line, returns 1 if "verdict: OK" */
static int verdict_ok(const char *out_path, const char *name) {
    char line[2048];
    int ok = 0, seen = 0;
    FILE *f = fopen(out_path, "r");
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "verdict:", 8)) {
            printf("  %s: %s", name, line);
            seen = 1;
            ok = !strncmp(line, "verdict: OK", 11);
        }
    fclose(f);
    if (!seen) printf("  %s: no verdict line\n", name);
    return ok;
}

static void dump(const char *path) {
    char line[2048];
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) printf("    | %s", line);
    fclose(f);
}

static void run_c(const char *cc, const char *file) {
    char name[256], cmd[2048], out[512];
    double t0, t1, t2;
    int rc;
    snprintf(name, sizeof name, "%.*s", (int)(strlen(file) - 2), file);
    snprintf(out, sizeof out, "%s/%s.out", dir, name);
    snprintf(cmd, sizeof cmd, "%s -O2 examples/%s -o %s/%s -lm > %s 2>&1", cc, file, dir, name, out);
    t0 = now_s();
    rc = sh(cmd);
    t1 = now_s();
    if (!CHECK(rc == 0, "%s: `%s -O2 examples/%s -lm` failed (exit %d)", file, cc, file, rc)) {
        dump(out);
        return;
    }
    snprintf(cmd, sizeof cmd, "cd %s && OMP_NUM_THREADS=1 ./%s > %s.out 2>&1", dir, name, name);
    rc = sh(cmd);
    t2 = now_s();
    printf("  %s: built in %.1f s, ran in %.2f s, exit %d\n", file, t1 - t0, t2 - t1, rc);
    if (!CHECK(rc == 0 && verdict_ok(out, name), "%s: exit %d, or no 'verdict: OK' line", file, rc)) dump(out);
    CHECK(t2 - t1 < 30, "%s: ran %.1f s (the track promises seconds)", file, t2 - t1);
}

static void run_py(const char *bin, const char *file) {
    char cmd[2048], out[512];
    int rc;
    if (sh("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        printf("SKIPPED: examples/%s (needs /usr/bin/python3 with numpy: tools/setup.sh)\n", file);
        return;
    }
    snprintf(out, sizeof out, "%s/%s.out", dir, file);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 examples/%s --bin %s --dir %s/py > %s 2>&1", file, bin, dir, out);
    rc = sh(cmd);
    printf("  %s: exit %d\n", file, rc);
    if (!CHECK(rc == 0 && verdict_ok(out, file), "%s: exit %d, or no 'verdict: OK' line", file, rc)) dump(out);
}

int main(void) {
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    const char *bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    char *names[64], cmd[300];
    int n = 0, i, n_c = 0;
    DIR *d = opendir("examples");
    struct dirent *e;
    if (!CHECK(d != NULL, "examples/ not found (run from the repository root)")) return check_done();
    while ((e = readdir(d)) != NULL && n < 64) {
        size_t len = strlen(e->d_name);
        if (len > 5 && e->d_name[0] >= '0' && e->d_name[0] <= '9' && e->d_name[1] >= '0' && e->d_name[1] <= '9' &&
            e->d_name[2] == '_' && (!strcmp(e->d_name + len - 2, ".c") || !strcmp(e->d_name + len - 3, ".py"))) {
            names[n] = (char *)malloc(len + 1);
            memcpy(names[n++], e->d_name, len + 1);
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_names);
    snprintf(dir, sizeof dir, "build/tests/examples-%ld", (long)getpid());
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    CHECK(sh(cmd) == 0, "cannot make %s", dir);
    for (i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (!strcmp(names[i] + len - 2, ".c")) {
            run_c(cc, names[i]);
            n_c++;
        } else {
            run_py(bin, names[i]);
        }
        free(names[i]);
    }
    CHECK(n_c >= 6, "only %d numbered C examples found in examples/", n_c);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    sh(cmd);
    return check_done();
}
