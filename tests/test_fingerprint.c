/* test_fingerprint.c - a training state and cached block inputs remember what
   their numbers depend on: `--resume` with another option that enters the
   arithmetic (seed, loss factor, init, validation size, LoRA alpha) or with
   another teacher of the same shapes is refused, naming each difference, and
   so is `distill --inputs` on hidden states cached from another teacher; the
   unchanged resume still continues. A teacher whose file changes during a
   run stops it at the next step with a message naming the file. Also: the
   memory text data costs (peak RSS per input byte of `distill --data`). */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"
#include "tiny_files.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

static char tmp[256];
static const char *bin;

#define BASE "--tokenizer %s/tok.bin --data %s/d.txt --seq-len 32 --grad-accum 2 --tokens 640 --val-seqs 2 " \
             "--seed 5 --feature-dim 4 --window 8 --val-every 2"

/* `lolcats WHAT --model TMP/MODEL BASE ARGS`, output appended to log.txt */
static int run(const char *what, const char *model, const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s --model %s/%s " BASE " %s >>%s/log.txt 2>&1", bin, what, tmp, model, tmp, tmp,
             args, tmp);
    return tiny_sh(cmd);
}

static int log_has(const char *text) {
    char cmd[800];
    snprintf(cmd, sizeof cmd, "tail -n 30 %s/log.txt | grep -q -- '%s'", tmp, text);
    return tiny_sh(cmd) == 0;
}

static void log_mark(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "echo ---- >>%s/log.txt", tmp);
    (void)tiny_sh(cmd);
}

/* dst = src with one float of the embedding changed (same shapes, another teacher) */
static int write_other_teacher(const char *src, const char *dst) {
    char cmd[4200];
    FILE *f;
    float x = 0.125f;
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", src, dst);
    if (tiny_sh(cmd) != 0 || !(f = fopen(dst, "r+b"))) return 0;
    if (fseek(f, 28 + 4 * 17, SEEK_SET) != 0 || fwrite(&x, sizeof x, 1, f) != 1) { fclose(f); return 0; }
    return fclose(f) == 0;
}

static void refused(const char *what, const char *model, const char *args, const char *diff, const char *name) {
    log_mark();
    CHECK(run(what, model, args) == 1 && log_has(diff), "%s: a resume with %s was not refused naming '%s' (see %s/log.txt)",
          name, args, diff, tmp);
    printf("  %-60s refused\n", name);
}

/* Starts `lolcats distill` on TMP/MODEL with a long budget, waits for its
   first step, stops it, applies what (1: truncate the model, 2: touch it,
   3: send SIGBUS without changing anything), continues it and collects its
   stderr into log. Returns the exit status (128 + signal when killed). */
static int change_under_run(const char *model, int what, char *log, size_t cap) {
    char cmd[4096], line[1024], path[600];
    int fd[2], st = 0, seen = 0;
    size_t n = 0;
    pid_t pid;
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", tmp, model);
    snprintf(cmd, sizeof cmd, "exec %s distill --model %s " BASE " --tokens 300000 --val-every 1 --force --out %s/g.safetensors",
             bin, path, tmp, tmp, tmp);
    log[0] = 0;
    if (pipe(fd) != 0) return -1;
    if ((pid = fork()) == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        close(fd[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    f = fdopen(fd[0], "r");
    while (f && fgets(line, sizeof line, f)) {
        size_t k = strlen(line);
        if (n + k < cap) { memcpy(log + n, line, k + 1); n += k; }
        if (!seen && strstr(line, "stage 1 step ")) {
            seen = 1;
            if (what == 3) { kill(pid, SIGBUS); continue; }
            kill(pid, SIGSTOP);
            if (what == 1 && truncate(path, 100) != 0) printf("note: cannot truncate %s\n", path);
            if (what == 2) {
                snprintf(cmd, sizeof cmd, "sleep 0.05; touch '%s'", path);
                (void)tiny_sh(cmd);
            }
            kill(pid, SIGCONT);
        }
    }
    if (f) fclose(f);
    if (waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int main(void) {
    char p[2048], a[2048];
    bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    snprintf(tmp, sizeof tmp, "build/tests/fp_XXXXXX");
    if (!mkdtemp(tmp)) { printf("cannot create a temporary directory\n0 passed, 1 failed\n"); return 1; }
    setenv("OMP_NUM_THREADS", "1", 1);
    snprintf(p, sizeof p, "%s/m.bin", tmp); CHECK(tiny_write_model(p), "write %s", p);
    snprintf(a, sizeof a, "%s/m2.bin", tmp); CHECK(write_other_teacher(p, a), "write %s", a);
    snprintf(p, sizeof p, "%s/tok.bin", tmp); CHECK(tiny_write_tokenizer(p), "write %s", p);
    snprintf(p, sizeof p, "%s/d.txt", tmp); CHECK(tiny_write_text(p), "write %s", p);

    printf("--resume with another setup (tiny model)\n");
    snprintf(p, sizeof p, "--out %s/a.safetensors --stop-after 2", tmp);
    CHECK(run("distill", "m.bin", p) == 3, "distill --stop-after 2 did not stop with 3 (see %s/log.txt)", tmp);
    snprintf(p, sizeof p, "--out %s/a.safetensors --resume --seed 7", tmp);
    refused("distill", "m.bin", p, "--seed: .* has 5, this run 7", "distill --resume --seed 7");
    snprintf(p, sizeof p, "--out %s/a.safetensors --resume --mse-factor 0.5 --init kaiming", tmp);
    refused("distill", "m.bin", p, "--mse-factor: .* has 1000, this run 0.5", "distill --resume --mse-factor 0.5 (1st diff)");
    CHECK(log_has("--init: .* has identity, this run kaiming") && log_has("2 differences"),
          "the second difference (--init) was not named");
    snprintf(p, sizeof p, "--out %s/a.safetensors --resume --val-seqs 3", tmp);
    refused("distill", "m.bin", p, "--val-seqs: .* has 2, this run 3", "distill --resume --val-seqs 3");
    snprintf(p, sizeof p, "--out %s/a.safetensors --resume", tmp);
    refused("distill", "m2.bin", p, "teacher (--model): .* has bytes=", "distill --resume, another teacher (same shapes)");

    printf("finetune --resume with another LoRA alpha\n");
    snprintf(p, sizeof p, "--lolcats %s/a.safetensors --out %s/f.safetensors --stop-after 1", tmp, tmp);
    CHECK(run("finetune", "m.bin", p) == 3, "finetune --stop-after 1 did not stop with 3 (see %s/log.txt)", tmp);
    snprintf(p, sizeof p, "--lolcats %s/a.safetensors --out %s/f.safetensors --resume --lora-alpha 3", tmp, tmp);
    refused("finetune", "m.bin", p, "--lora-alpha: .* has 16, this run 3", "finetune --resume --lora-alpha 3");

    printf("the same setup resumes\n");
    snprintf(p, sizeof p, "--out %s/a.safetensors --resume", tmp);
    log_mark();
    CHECK(run("distill", "m.bin", p) == 0, "an unchanged distill --resume failed (see %s/log.txt)", tmp);

    printf("distill --inputs cached from another teacher\n");
    snprintf(p, sizeof p, "--layers 1:2 --out %s/cache", tmp);
    log_mark();
    CHECK(run("cache-inputs", "m.bin", p) == 0, "cache-inputs failed (see %s/log.txt)", tmp);
    snprintf(p, sizeof p, "--layers 1:2 --inputs %s/cache --out %s/b.safetensors", tmp, tmp);
    refused("distill", "m2.bin", p, "teacher (--model): .*shard-00000.safetensors has bytes=",
            "distill --inputs from another teacher");
    log_mark();
    CHECK(run("distill", "m.bin", p) == 0, "distill --inputs from the same teacher failed (see %s/log.txt)", tmp);

    printf("the teacher changes under a running distill\n");
    alarm(300);   /* a run that does not notice must fail the test, not hang it */
    {
        static char log[65536];
        int rc, i;
        const char *names[3] = {"tm1.bin", "tm2.bin", "tm3.bin"};
        for (i = 0; i < 3; i++) {
            snprintf(p, sizeof p, "%s/%s", tmp, names[i]);
            CHECK(tiny_write_model(p), "write %s", p);
        }
        rc = change_under_run("tm1.bin", 1, log, sizeof log);
        CHECK(rc == 1 && strstr(log, "tm1.bin") && (strstr(log, "SIGBUS: a memory-mapped input file was truncated") ||
              strstr(log, "changed size")), "truncating the model under distill: exit %d, message:\n%s", rc, log);
        printf("  %-60s exit %d\n", "model truncated during the run", rc);
        rc = change_under_run("tm2.bin", 2, log, sizeof log);
        CHECK(rc == 1 && strstr(log, "the teacher changed during the run") && strstr(log, "tm2.bin was modified"),
              "touching the model under distill: exit %d, message:\n%s", rc, log);
        printf("  %-60s exit %d\n", "model rewritten (mtime) during the run", rc);
        rc = change_under_run("tm3.bin", 3, log, sizeof log);
        CHECK(rc == 1 && strstr(log, "SIGBUS") && strstr(log, "the model") && strstr(log, "tm3.bin"),
              "SIGBUS under distill: exit %d, message:\n%s", rc, log);
        printf("  %-60s exit %d\n", "SIGBUS (as a truncated mapping raises it)", rc);
    }
    alarm(0);

    printf("text data memory\n");
    {   /* peak RSS of distill on 4 MB of text minus on 15 KB, per added byte (byte tokenizer: a token a byte) */
        struct rusage ru;
        double small, big, per;
        long sz0 = 0, sz1 = 0;
        FILE *f;
        snprintf(p, sizeof p, "for i in $(seq 1 270); do cat %s/d.txt; done > %s/big.txt", tmp, tmp);
        CHECK(tiny_sh(p) == 0, "write big.txt");
        snprintf(p, sizeof p, "%s/d.txt", tmp);
        if ((f = fopen(p, "rb"))) { fseek(f, 0, SEEK_END); sz0 = ftell(f); fclose(f); }
        snprintf(p, sizeof p, "%s/big.txt", tmp);
        if ((f = fopen(p, "rb"))) { fseek(f, 0, SEEK_END); sz1 = ftell(f); fclose(f); }
        snprintf(p, sizeof p, "%s distill --model %s/m.bin --tokenizer %s/tok.bin --data %s/d.txt --seq-len 32 "
                 "--grad-accum 1 --tokens 64 --val-seqs 2 --force --out %s/mem.safetensors >>%s/log.txt 2>&1", bin, tmp, tmp,
                 tmp, tmp, tmp);
        CHECK(tiny_sh(p) == 0, "distill on d.txt failed");
        getrusage(RUSAGE_CHILDREN, &ru);
        small = (double)ru.ru_maxrss * 1024.0;
        snprintf(p, sizeof p, "%s distill --model %s/m.bin --tokenizer %s/tok.bin --data %s/big.txt --seq-len 32 "
                 "--grad-accum 1 --tokens 64 --val-seqs 2 --force --out %s/mem.safetensors >>%s/log.txt 2>&1", bin, tmp, tmp,
                 tmp, tmp, tmp);
        CHECK(tiny_sh(p) == 0, "distill on big.txt failed");
        getrusage(RUSAGE_CHILDREN, &ru);
        big = (double)ru.ru_maxrss * 1024.0;
        per = (big - small) / (double)(sz1 - sz0);
        printf("  peak RSS %.1f MB on %ld bytes of text, %.1f MB on %ld: %.1f bytes per input byte\n", small / 1e6,
               sz0, big / 1e6, sz1, per);
#if defined(__SANITIZE_ADDRESS__)   /* the shadow memory and quarantine inflate RSS */
        printf("SKIPPED: the RSS bound under AddressSanitizer\n");
        per = 0;
#endif
        CHECK(sz1 > 2000000 && per < 12, "text data costs %.1f bytes of RSS per input byte (at most 12: one int "
              "token and one int label per byte, plus the text while it is tokenized)", per);
    }

    if (check_fail_ == 0) {
        snprintf(p, sizeof p, "rm -rf '%s'", tmp);
        if (system(p) != 0) printf("note: could not remove %s\n", tmp);
    }
    return check_done();
}
