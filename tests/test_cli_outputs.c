/* test_cli_outputs.c - the output-safety layer (tools/outsafe.c) from the
   outside, through the real binary ($LOLCATS_BIN) on stories260K:
   - every output that is an input (--out = the model or the data, --json-log =
     the mmap'd model, --merge = the model's own directory, --out a file inside
     --model DIR, `ref IN IN`) is refused, exit != 0, the input byte-identical;
   - preflight before any work: a directory or a FIFO as data, a report under
     a missing directory, an existing state without --resume (--force allowed);
   - Hugging Face directories: convert into a non-empty directory refused, with
     --force replaced whole (no stale index or shard left);
   - two runs with the same --out: the second refused at once;
   - SIGINT during training: state saved, exit 130, the resume command printed,
     no temporary or lock file left; --resume ends with the bytes of an
     uninterrupted run; SIGKILL mid-run leaves only whole files;
   - as root: a full tmpfs (clean error, no partial file) and a read-only one
     (refused before training). */
#define _POSIX_C_SOURCE 200809L
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHARED "../shared/models/stories260K/"
#define T "build/tests/cli_outputs"

static const char *bin;
static char base[1024];          /* the options of a small distill run */

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static uint64_t file_hash(const char *p) {   /* FNV-1a of the bytes; 0 when unreadable */
    FILE *f = fopen(p, "rb");
    uint64_t h = 1469598103934665603ULL;
    int c;
    if (!f) return 0;
    while ((c = fgetc(f)) != EOF) h = (h ^ (uint64_t)c) * 1099511628211ULL;
    fclose(f);
    return h;
}

static int exit_code(int st) {
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* runs `lolcats ARGS`, stderr into T/err.txt; returns the exit code */
static int run(const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "timeout 120 %s %s >" T "/out.txt 2>" T "/err.txt", bin, args);   /* a hang fails */
    return exit_code(system(cmd));
}

static int err_has(const char *what) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "grep -qF -- '%s' " T "/err.txt", what);
    return system(cmd) == 0;
}

/* starts `lolcats ARGS` in the background (its own pid: exec), stderr to errfile */
static pid_t spawn(const char *args, const char *errfile) {
    char cmd[4096];
    pid_t pid;
    snprintf(cmd, sizeof cmd, "exec %s %s >/dev/null 2>%s", bin, args, errfile);
    pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int wait_pid(pid_t pid) {
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return exit_code(st);
}

static int lines(const char *p) {
    FILE *f = fopen(p, "rb");
    int c, n = 0;
    if (!f) return 0;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

/* waits (up to 120 s) until the json log has n lines or the process ended; 1 if the log got there */
static int wait_lines(const char *log, int n, pid_t pid) {
    int i, st;
    struct timespec ts = {0, 5000000};
    for (i = 0; i < 24000; i++) {
        if (lines(log) >= n) return 1;
        if (waitpid(pid, &st, WNOHANG) == pid) return 0;
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* names in dir containing one of the fragments (temporary and lock files); prints them */
static int leftovers(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp") || strstr(e->d_name, ".lock") || strstr(e->d_name, ".lolcats-probe")) {
            printf("  left behind: %s/%s\n", dir, e->d_name);
            n++;
        }
    if (d) closedir(d);
    return n;
}

static int whole_st(const char *p) {   /* absent, or a safetensors file that opens */
    lc_st_file *f = NULL;
    lc_error err;
    if (!file_exists(p)) return 1;
    if (lc_st_open(&f, p, &err) != LOLCATS_OK) { printf("  %s: %s\n", p, err.msg); return 0; }
    lc_st_close(f);
    return 1;
}

/* --out, --json-log, --merge, ref: an output equal to an input is refused, the input untouched */
static void test_same_as_input(void) {
    char a[2048];
    uint64_t hm = file_hash(T "/m.bin"), hd = file_hash(T "/d.txt"), hh = file_hash(T "/hf/model.safetensors");
    uint64_t hc = file_hash(T "/ck.safetensors");
    snprintf(a, sizeof a, "distill %s --out " T "/m.bin", base);
    CHECK(run(a) != 0 && err_has("is the same file as --model"), "--out = the model not refused");
    snprintf(a, sizeof a, "distill %s --out " T "/x.safetensors --json-log ./" T "/../cli_outputs/m.bin", base);
    CHECK(run(a) != 0 && err_has("--json-log"), "--json-log = the model not refused");
    snprintf(a, sizeof a, "distill %s --out " T "/d.txt", base);
    CHECK(run(a) != 0 && err_has("--data"), "--out = the data not refused");
    snprintf(a, sizeof a, "distill %s --out " T "/x.safetensors --json-log " T "/x.safetensors.state", base);
    CHECK(run(a) != 0 && err_has("are the same file"), "--json-log = --out's state file not refused");
    snprintf(a, sizeof a, "finetune --model " T "/hf --data " T "/d.txt --seq-len 32 --grad-accum 2 --tokens 64 "
             "--val-seqs 2 --lora-rank 2 --lolcats " T "/ck.safetensors --out " T "/ft.safetensors --merge " T "/hf");
    CHECK(run(a) != 0 && err_has("--merge"), "--merge into the model's own directory not refused");
    snprintf(a, sizeof a, "finetune --model " T "/hf --data " T "/d.txt --seq-len 32 --grad-accum 2 --tokens 64 "
             "--val-seqs 2 --lora-rank 2 --lolcats " T "/ck.safetensors --out " T "/hf/model.safetensors");
    CHECK(run(a) != 0 && err_has("hf/model.safetensors"), "--out = a file inside --model DIR not refused");
    snprintf(a, sizeof a, "finetune --model " T "/m.bin --tokenizer " T "/tok.bin --data " T "/d.txt --seq-len 32 "
             "--grad-accum 2 --tokens 64 --val-seqs 2 --lora-rank 2 --lolcats " T "/ck.safetensors --out "
             T "/ck.safetensors");
    CHECK(run(a) != 0 && err_has("--lolcats"), "finetune --out = --lolcats not refused");
    CHECK(run("ref " T "/ck.safetensors " T "/ck.safetensors") != 0 && err_has("is the same file as IN"),
          "ref IN IN not refused");
    CHECK(file_hash(T "/m.bin") == hm && file_hash(T "/d.txt") == hd && file_hash(T "/hf/model.safetensors") == hh &&
              file_hash(T "/ck.safetensors") == hc, "an input changed although its run was refused");
    CHECK(!file_exists(T "/x.safetensors") && !file_exists(T "/ft.safetensors"), "a refused run wrote an output");
}

/* inputs of the wrong kind, outputs that cannot be written, a stale state: refused before any work */
static void test_preflight(void) {
    char a[2048];
    time_t t0;
    snprintf(a, sizeof a, "distill --model " T "/m.bin --tokenizer " T "/tok.bin --data " T " --out " T "/x.safetensors");
    CHECK(run(a) != 0 && err_has("is a directory"), "a directory as --data not named");
    if (mkfifo(T "/fifo", 0644) == 0 || errno == EEXIST) {
        snprintf(a, sizeof a, "distill --model " T "/m.bin --tokenizer " T "/tok.bin --data " T "/fifo --out "
                 T "/x.safetensors");
        CHECK(run(a) != 0 && err_has("is a FIFO"), "a FIFO as --data not refused (or hung)");
        snprintf(a, sizeof a, "eval --model " T "/m.bin --tokenizer " T "/tok.bin --data " T "/fifo");
        CHECK(run(a) != 0 && err_has("is a FIFO"), "eval: a FIFO as --model not refused");
    }
    t0 = time(NULL);
    snprintf(a, sizeof a, "distill %s --tokens 20000 --out " T "/x.safetensors --report " T "/no/such/dir", base);
    CHECK(run(a) != 0 && err_has("does not exist") && time(NULL) - t0 < 20, "--report in a missing directory not "
          "refused before training");
    CHECK(!file_exists(T "/x.safetensors"), "the refused run wrote its checkpoint");
    /* a state from an earlier run: --resume or --force */
    snprintf(a, sizeof a, "distill %s --tokens 128 --out " T "/s.safetensors --report " T "/rep", base);
    CHECK(run(a) == 0 && file_exists(T "/rep/summary.json"), "a small distill with --report into a new directory "
          "failed");
    CHECK(run(a) != 0 && err_has("add --resume"), "an existing state without --resume not refused");
    snprintf(a, sizeof a, "distill %s --tokens 128 --out " T "/s.safetensors --force", base);
    CHECK(run(a) == 0, "--force did not start over");
    CHECK(leftovers(T) == 0, "temporary or lock files left in " T);
}

/* convert into a non-empty directory: refused; --force replaces it whole */
static void test_hf_dir(void) {
    FILE *f;
    lc_model m;
    lc_error err;
    mkdir(T "/hf2", 0755);
    f = fopen(T "/hf2/model.safetensors.index.json", "wb");
    if (f) { fputs("{\"weight_map\": {}}\n", f); fclose(f); }
    f = fopen(T "/hf2/model-00001-of-00002.safetensors", "wb");
    if (f) { fputs("stale", f); fclose(f); }
    CHECK(run("convert --from-llama2c " T "/m.bin --out " T "/hf2") != 0 && err_has("is not empty"),
          "convert into a non-empty directory not refused");
    CHECK(file_exists(T "/hf2/model.safetensors.index.json") && !file_exists(T "/hf2/model.safetensors"),
          "the refused convert touched the directory");
    CHECK(run("convert --from-llama2c " T "/m.bin --out " T "/hf2 --force") == 0, "convert --force failed");
    CHECK(!file_exists(T "/hf2/model.safetensors.index.json") && !file_exists(T "/hf2/model-00001-of-00002.safetensors"),
          "convert --force left a stale index or shard");
    if (CHECK(lc_model_load(&m, T "/hf2", &err) == LOLCATS_OK, "the replaced directory does not load: %s", err.msg))
        lc_model_free(&m);
    mkdir(T "/hf3", 0755);
    CHECK(run("convert --from-llama2c " T "/m.bin --out " T "/hf3") == 0, "convert into an empty directory failed");
    CHECK(leftovers(T) == 0, "temporary or lock files left in " T);
}

/* concurrent writers, SIGINT + --resume, SIGKILL */
static void test_signals(void) {
    char a[2048], b[2048];
    pid_t pid;
    int rc, landed;
    snprintf(a, sizeof a, "distill %s --tokens 3840 --out " T "/r.safetensors --json-log " T "/r.log", base);
    pid = spawn(a, T "/r_err.txt");
    landed = wait_lines(T "/r.log", 2, pid);
    /* a second run with the same --out */
    snprintf(b, sizeof b, "distill %s --tokens 3840 --out " T "/r.safetensors --resume", base);
    if (landed) CHECK(run(b) != 0 && err_has("is being written by another lolcats run"),
                      "a second run with the same --out was not refused");
    kill(pid, SIGINT);
    rc = wait_pid(pid);
    if (rc == 0) {
        printf("SKIPPED: SIGINT landed after the run ended (machine too fast?)\n");
        return;
    }
    if (!CHECK(landed, "the run ended (exit %d) before its second step (see " T "/r_err.txt)", rc)) return;
    CHECK(rc == 130, "SIGINT during training: exit %d, expected 130", rc);
    printf("  SIGINT after step %d of 60: exit %d\n", lines(T "/r.log"), rc);
    snprintf(b, sizeof b, "grep -q -- '--resume' " T "/r_err.txt && grep -q 'is saved in' " T "/r_err.txt");
    CHECK(system(b) == 0, "SIGINT: no resume hint (see " T "/r_err.txt)");
    CHECK(file_exists(T "/r.safetensors.state") && whole_st(T "/r.safetensors.state"), "SIGINT: no whole state saved");
    CHECK(leftovers(T) == 0, "SIGINT left temporary or lock files");
    snprintf(a, sizeof a, "distill %s --tokens 3840 --out " T "/r.safetensors --json-log " T "/r.log --resume", base);
    CHECK(run(a) == 0, "--resume after SIGINT failed");
    snprintf(a, sizeof a, "distill %s --tokens 3840 --out " T "/u.safetensors", base);
    CHECK(run(a) == 0, "the uninterrupted run failed");
    CHECK(file_hash(T "/r.safetensors") == file_hash(T "/u.safetensors") &&
              file_hash(T "/r.safetensors.state") == file_hash(T "/u.safetensors.state"),
          "interrupted + --resume differs from the uninterrupted run");
    /* SIGTERM twice: the second stops at once, leaving no temporary file */
    snprintf(a, sizeof a, "distill %s --tokens 3840 --out " T "/t.safetensors --json-log " T "/t.log", base);
    pid = spawn(a, T "/t_err.txt");
    if (wait_lines(T "/t.log", 2, pid)) {
        struct timespec ts = {0, 2000000};
        kill(pid, SIGTERM);
        nanosleep(&ts, NULL);
        kill(pid, SIGTERM);
        rc = wait_pid(pid);
        CHECK(rc == 143, "SIGTERM twice during training: exit %d, expected 143", rc);
        CHECK(leftovers(T) == 0, "SIGTERM twice left temporary or lock files");
    } else {
        CHECK(0, "the SIGTERM run ended before its second step (see " T "/t_err.txt)");
    }
    /* a command that is not training: SIGINT removes its unfinished output */
    pid = spawn("synth --like smollm-135m --layers 1 --out " T "/syn", T "/syn_err.txt");
    {
        char stage[300];
        int i;
        struct timespec ts = {0, 2000000};
        snprintf(stage, sizeof stage, T "/syn.tmp.%ld", (long)pid);   /* created before the first shard */
        for (i = 0; i < 20000 && !file_exists(stage); i++) nanosleep(&ts, NULL);
        kill(pid, SIGINT);
        rc = wait_pid(pid);
        if (rc == 0) printf("SKIPPED: SIGINT landed after synth ended\n");
        else {
            CHECK(rc == 130 && !file_exists(stage) && !file_exists(T "/syn"), "SIGINT during synth: exit %d, "
                  "its unfinished directory %s", rc, file_exists(stage) ? "left behind" : "removed");
            CHECK(leftovers(T) == 0, "SIGINT during synth left temporary or lock files");
        }
    }
    /* SIGKILL: nothing to clean up, but only whole files */
    snprintf(a, sizeof a, "distill %s --tokens 3840 --out " T "/k.safetensors --json-log " T "/k.log", base);
    pid = spawn(a, T "/k_err.txt");
    wait_lines(T "/k.log", 3, pid);
    kill(pid, SIGKILL);
    wait_pid(pid);
    CHECK(whole_st(T "/k.safetensors") && whole_st(T "/k.safetensors.state"), "SIGKILL left a corrupt checkpoint");
    {   /* what a killed run leaves (its pid is gone) is removed by the next run on that output; a live
           run's temporary file is not touched */
        char stale[256], stale_state[256], live[256];
        FILE *f;
        snprintf(stale, sizeof stale, T "/k.safetensors.tmp.%ld", (long)pid);
        snprintf(stale_state, sizeof stale_state, T "/k.safetensors.state.tmp.%ld", (long)pid);
        snprintf(live, sizeof live, T "/k.safetensors.tmp.%ld", (long)getpid());
        if ((f = fopen(stale, "w"))) fclose(f);
        if ((f = fopen(stale_state, "w"))) fclose(f);
        if ((f = fopen(live, "w"))) fclose(f);
        snprintf(a, sizeof a, "distill %s --tokens 3840 --out " T "/k.safetensors --resume", base);
        CHECK(run(a) == 0, "--resume after SIGKILL failed (a stale lock?)");
        CHECK(!file_exists(stale) && !file_exists(stale_state), "a killed run's temporary files were not removed");
        CHECK(file_exists(live), "a live process's temporary file was removed");
        remove(live);
    }
}

/* a full and a read-only file system (tmpfs, as root) */
static void test_disks(void) {
    char a[2048];
    time_t t0;
    if (geteuid() != 0) {
        printf("SKIPPED: full and read-only disks (needs root for tmpfs mounts)\n");
        return;
    }
    mkdir(T "/full", 0755);
    if (system("mount -t tmpfs -o size=64k none " T "/full 2>/dev/null") != 0) {
        printf("SKIPPED: full and read-only disks (mount -t tmpfs refused)\n");
        return;
    }
    snprintf(a, sizeof a, "distill %s --feature-dim 64 --tokens 128 --out " T "/full/x.safetensors", base);
    CHECK(run(a) != 0 && (err_has("No space left") || err_has("disk full")), "a full disk: no clean error");
    CHECK(!file_exists(T "/full/x.safetensors") && leftovers(T "/full") == 0, "a full disk left a partial file");
    if (system("umount " T "/full") != 0) printf("note: umount " T "/full failed\n");
    if (system("mount -t tmpfs -o ro,size=64k none " T "/full 2>/dev/null") == 0) {
        t0 = time(NULL);
        snprintf(a, sizeof a, "distill %s --tokens 20000 --out " T "/full/x.safetensors", base);
        CHECK(run(a) != 0 && err_has("Read-only file system") && time(NULL) - t0 < 20,
              "a read-only disk not refused before training");
        CHECK(run("convert --from-llama2c " T "/m.bin --out " T "/full/hf") != 0 && err_has("cannot write"),
              "convert onto a read-only disk not refused");
        if (system("umount " T "/full") != 0) printf("note: umount " T "/full failed\n");
    }
    rmdir(T "/full");
}

int main(void) {
    char a[2048];
    bin = getenv("LOLCATS_BIN") ? getenv("LOLCATS_BIN") : "build/lolcats";
    if (!file_exists(SHARED "stories260K.bin") || !file_exists(SHARED "tok512.bin")) {
        printf("SKIPPED: output safety (needs ../shared/models/stories260K)\n0 passed, 0 failed\n");
        return 0;
    }
    if (!file_exists(bin)) {
        printf("SKIPPED: %s not built\n0 passed, 0 failed\n", bin);
        return 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    setenv("OMP_NUM_THREADS", "1", 1);
    if (system("umount " T "/full 2>/dev/null; rm -rf " T " && mkdir -p " T " && cp " SHARED "stories260K.bin " T
               "/m.bin && cp " SHARED "tok512.bin " T "/tok.bin && head -c 30000 "
               "../shared/data/tinystories.valid-head.txt > " T "/d.txt") != 0 ||
        !file_exists(T "/d.txt")) {
        printf("FAIL: cannot set up " T "\n0 passed, 1 failed\n");
        return 1;
    }
    snprintf(base, sizeof base, "--model " T "/m.bin --tokenizer " T "/tok.bin --data " T "/d.txt --seq-len 32 "
             "--grad-accum 2 --val-seqs 2 --val-every 2 --feature-dim 8 --window 8");
    snprintf(a, sizeof a, "distill %s --tokens 128 --out " T "/ck.safetensors", base);
    if (!CHECK(run(a) == 0, "the stage 1 checkpoint for the tests failed") ||
        !CHECK(run("convert --from-llama2c " T "/m.bin --out " T "/hf") == 0, "convert into an absent directory failed"))
        return check_done();
    printf("%s\n", "outputs equal to inputs");
    test_same_as_input();
    printf("%s\n", "preflight");
    test_preflight();
    printf("%s\n", "Hugging Face directories");
    test_hf_dir();
    printf("%s\n", "concurrent runs, SIGINT + --resume, SIGKILL");
    test_signals();
    printf("%s\n", "full and read-only disks");
    test_disks();
    if (check_fail_ == 0 && system("rm -rf " T) != 0) printf("note: could not remove " T "\n");
    return check_done();
}
