/* test_crash.c - crash-safe training: `lolcats linearize` (both stages) is
   killed with SIGKILL at several moments, resumed with --resume each time, and
   must end with exactly the files of an uninterrupted run (bit for bit:
   checkpoints and training states). After every kill, each output file that
   exists must be complete (it opens as a valid safetensors file): outputs are
   written to a temporary file and renamed, never in place.
   Needs no ../shared: the test writes a tiny llama2.c model, a byte tokenizer
   and a text file of its own. POSIX (fork, exec, kill). */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "tiny_files.h"
#include "same_file.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmp[256];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* the run's argument vector; out names the final checkpoint */
static void make_args(char **argv, char (*buf)[320], const char *bin, const char *out, int resume) {
    int n = 0;
#define A(s) (argv[n++] = (s))
#define P(...) (snprintf(buf[n], 320, __VA_ARGS__), argv[n] = buf[n], n++)
    A((char *)bin); A("linearize");
    P("--model"); P("%s/m.bin", tmp); P("--tokenizer"); P("%s/tok.bin", tmp);
    P("--data"); P("%s/d.txt", tmp); P("--out"); P("%s", out);
    A("--seq-len"); A("32"); A("--grad-accum"); A("2"); A("--val-every"); A("1"); A("--val-seqs"); A("2");
    A("--distill-tokens"); A("3840"); A("--finetune-tokens"); A("3840"); A("--seed"); A("7");
    A("--lora-rank"); A("2"); A("--feature-dim"); A("4"); A("--window"); A("8");
    if (resume) A("--resume");
    argv[n] = NULL;
#undef A
#undef P
}

/* starts the run; returns its pid (stderr to tmp/log.txt) */
static pid_t spawn(const char *bin, const char *out, int resume) {
    char *argv[48], buf[48][320], log[300];
    pid_t pid;
    make_args(argv, buf, bin, out, resume);
    snprintf(log, sizeof log, "%s/log.txt", tmp);
    pid = fork();
    if (pid == 0) {
        if (!freopen(log, "ab", stderr)) _exit(126);
        execv(bin, argv);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid) {
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static const char *suffix[4] = {".stage1.safetensors", ".stage1.safetensors.state", ".safetensors",
                                ".safetensors.state"};

int main(void) {
    const char *bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    const char *td = getenv("TMPDIR");
    char p[400], ref[300], out[300], a[400], b[400];
    double t0, dt, fracs[6] = {0.1, 0.17, 0.12, 0.2, 0.14, 0.18};
    int k, i, rc, killed = 0;
    if (!file_exists(bin)) {
        printf("SKIPPED: %s not built\n0 passed, 0 failed\n", bin);
        return 0;
    }
    snprintf(tmp, sizeof tmp, "%s/lolcats_crash_XXXXXX", td ? td : "/tmp");
    if (!mkdtemp(tmp)) { printf("cannot create a temporary directory\n0 passed, 1 failed\n"); return 1; }
    snprintf(p, sizeof p, "%s/m.bin", tmp); CHECK(tiny_write_model(p), "write %s", p);
    snprintf(p, sizeof p, "%s/tok.bin", tmp); CHECK(tiny_write_tokenizer(p), "write %s", p);
    snprintf(p, sizeof p, "%s/d.txt", tmp); CHECK(tiny_write_text(p), "write %s", p);
    snprintf(ref, sizeof ref, "%s/ref.safetensors", tmp);
    snprintf(out, sizeof out, "%s/run.safetensors", tmp);

    t0 = now_s();
    rc = wait_exit(spawn(bin, ref, 0));
    dt = now_s() - t0;
    if (!CHECK(rc == 0, "uninterrupted run exited %d (see %s/log.txt)", rc, tmp)) return check_done();
    printf("uninterrupted linearize (2 x 60 steps): %.2f s\n", dt);

    /* kill after a slice of the uninterrupted run's time, resuming each time: the
       run advances a little further before each kill */
    for (k = 0; k < 6; k++) {
        pid_t pid = spawn(bin, out, k > 0);
        struct timespec ts;
        double d = fracs[k] * dt;
        ts.tv_sec = (time_t)d;
        ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        rc = wait_exit(pid);
        killed += rc == 128 + SIGKILL;
        for (i = 0; i < 4; i++) {  /* whatever exists is whole */
            lc_st_file *f = NULL;
            lc_error err;
            char fp[400];
            snprintf(fp, sizeof fp, "%s/run%s", tmp, suffix[i]);
            if (!file_exists(fp)) continue;
            CHECK(lc_st_open(&f, fp, &err) == LOLCATS_OK, "after kill %d: %s is not a whole file: %s", k + 1, fp,
                  err.msg);
            if (f) lc_st_close(f);
        }
    }
    printf("killed %d of 6 times mid-run\n", killed);
    CHECK(killed >= 3, "only %d of 6 kills landed mid-run (machine too fast or too slow?)", killed);
    rc = wait_exit(spawn(bin, out, 1));
    CHECK(rc == 0, "final --resume exited %d (see %s/log.txt)", rc, tmp);
    for (i = 0; i < 4; i++) {
        snprintf(a, sizeof a, "%s/ref%s", tmp, suffix[i]);
        snprintf(b, sizeof b, "%s/run%s", tmp, suffix[i]);
        CHECK(same_file(a, b), "%s differs from the uninterrupted run's %s", b, a);
    }
    {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (check_fail_ == 0 && system(cmd) != 0) printf("note: could not remove %s\n", tmp);
    }
    return check_done();
}
