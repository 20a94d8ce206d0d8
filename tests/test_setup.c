/* test_setup.c - tools/setup.sh and `make demo` for a user without root and
   without the test toolchain. setup.sh runs with a PATH of its own
   (build/tests/setup/bin): a fake `id` that says uid 1000, a fake `apt-get`
   that records its arguments, no `make`, no `cc`; with and without a fake
   password-less `sudo`. Nothing is ever installed: the fake apt-get only
   writes a file. Then `make -n demo` must build nothing but the tool. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR "build/tests/setup"

static char out[65536];

static int run(const char *cmd) {
    char full[2048];
    FILE *f;
    size_t n;
    int rc;
    snprintf(full, sizeof full, "%s >" DIR "/out.txt 2>&1", cmd);
    rc = system(full);
    f = fopen(DIR "/out.txt", "rb");
    n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    if (f) fclose(f);
    out[n] = 0;
    return rc == -1 ? -1 : (rc >> 8) & 255;
}

static int exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

static void script(const char *path, const char *body) {
    FILE *f = fopen(path, "w");
    if (!f) { printf("FAIL: cannot write %s\n", path); exit(1); }
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    chmod(path, 0755);
}

int main(void) {
    const char *tools[] = {"sh", "ls", "sed", "cat"};
    char cmd[1024];
    size_t i;
    int rc;
    if (!exists("tools/setup.sh")) {
        printf("SKIPPED: run from the repository root (tools/setup.sh not found)\n");
        return check_done();
    }
    if (system("rm -rf " DIR " && mkdir -p " DIR "/bin") != 0) { printf("FAIL: cannot make " DIR "\n"); return 1; }
    for (i = 0; i < sizeof tools / sizeof *tools; i++) {
        snprintf(cmd, sizeof cmd, "ln -s \"$(command -v %s)\" " DIR "/bin/%s", tools[i], tools[i]);
        CHECK(run(cmd) == 0, "link %s into the fake PATH", tools[i]);
    }
    script(DIR "/bin/id", "echo 1000");
    script(DIR "/bin/apt-get", "echo \"$*\" >> " DIR "/apt.log; exit 0");

    /* 1. not root, no sudo: the exact apt line, exit 0, apt-get never run */
    rc = run("PATH=" DIR "/bin sh tools/setup.sh");
    CHECK(rc == 0, "setup.sh without root/sudo exits 0 (got %d): %s", rc, out);
    CHECK(strstr(out, "sudo apt-get install -y --no-install-recommends gcc libc6-dev make") != NULL,
          "the apt line names the compiler and make: %s", out);
    CHECK(strstr(out, "g++") == NULL && strstr(out, "valgrind") == NULL && strstr(out, "qemu") == NULL,
          "the demo's setup asks for no test toolchain: %s", out);
    CHECK(!exists(DIR "/apt.log"), "apt-get is not run without root or sudo");

    /* 2. --test: the toolchain too, still exit 0 without root */
    rc = run("PATH=" DIR "/bin sh tools/setup.sh --test");
    CHECK(rc == 0, "setup.sh --test without root/sudo exits 0 (got %d): %s", rc, out);
    CHECK(strstr(out, "sudo apt-get install") && strstr(out, " g++") && strstr(out, " valgrind") &&
          strstr(out, " qemu-user") && strstr(out, " clang"),
          "setup.sh --test names the test toolchain: %s", out);
    CHECK(!exists(DIR "/apt.log"), "apt-get is not run without root or sudo (--test)");

    /* 3. an unknown option is a usage error */
    rc = run("PATH=" DIR "/bin sh tools/setup.sh --bogus");
    CHECK(rc == 2 && strstr(out, "--bogus"), "setup.sh --bogus exits 2 naming it (got %d): %s", rc, out);

    /* 4. password-less sudo: apt-get runs through it with only the demo's packages */
    script(DIR "/bin/sudo", "[ \"$1\" = -n ] && shift; [ \"$1\" = true ] && exit 0; \"$@\"");
    rc = run("PATH=" DIR "/bin sh tools/setup.sh");
    CHECK(rc == 0, "setup.sh with sudo exits 0 (got %d): %s", rc, out);
    run("cat " DIR "/apt.log");
    CHECK(strstr(out, "update") && strstr(out, "install") && strstr(out, " make") && !strstr(out, "g++"),
          "apt-get ran through sudo with the demo's packages only: %s", out);

    /* 5. make demo builds nothing but the tool: no C++, clang, cross compiler or python */
    rc = run("make -n -B NO_MPI=1 B=" DIR "/b demo");
    CHECK(rc == 0, "make -n demo (got %d): %s", rc, out);
    CHECK(strstr(out, "tools/lolcats.c") && strstr(out, "demo --report"), "make demo builds the tool and runs it: %s", out);
    CHECK(!strstr(out, "c++") && !strstr(out, "clang") && !strstr(out, "aarch64") && !strstr(out, "python") &&
          !strstr(out, "tests/test_"), "make demo needs nothing of the test toolchain: %s", out);
    return check_done();
}
