/* outsafe.c - see outsafe.h. The paths a signal handler removes are formatted
   in advance into fixed slots, so that the handler only calls unlink, rmdir,
   write and _exit (async-signal-safe). */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700   /* realpath */
#include "outsafe.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define OS_PATH 1100
#define OS_MAX 48                 /* registered inputs and outputs */
#define OS_SLOTS 512              /* temporary files */
#define OS_DIRS 8                 /* staging directories */

typedef struct {
    char flag[64], path[OS_PATH];
    int kind;
    int role;                     /* 0 input, 1 output, 2 derived output, 3 training state */
    int resume;
    char stage[OS_PATH];          /* OUTSAFE_OUT_HF: DIR.tmp.<pid> once created */
} os_entry;

/* what a path resolves to: the file (when it exists) and the directory entry */
typedef struct {
    int exists, pok;
    dev_t dev, pdev;
    ino_t ino, pino;
    char base[256];
} os_id;

typedef struct {
    char flag[64], path[OS_PATH];
    os_id id;
} os_input_id;

static os_entry os_ent[OS_MAX];
static int os_n, os_force, os_argc, os_registered;
static char **os_argv;

static char os_slot[OS_SLOTS][OS_PATH];
static volatile sig_atomic_t os_slot_ok[OS_SLOTS], os_nslots;
static char os_dir[OS_DIRS][OS_PATH];
static volatile sig_atomic_t os_dir_ok[OS_DIRS];
static char os_lock[OS_MAX][OS_PATH + 8];
static int os_lockfd[OS_MAX];
static volatile sig_atomic_t os_nlocks;
static volatile sig_atomic_t os_sig, os_train;

static const char *os_kind(mode_t m) {
    if (S_ISREG(m)) return "a regular file";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

/* ---- removal on every exit path ---- */
static void os_remove_async(void) {   /* async-signal-safe */
    int i, n = os_nslots;
    for (i = 0; i < n && i < OS_SLOTS; i++)
        if (os_slot_ok[i]) unlink(os_slot[i]);
    for (i = 0; i < OS_DIRS; i++)
        if (os_dir_ok[i]) rmdir(os_dir[i]);
    for (i = 0; i < os_nlocks; i++)
        if (os_lockfd[i] >= 0) unlink(os_lock[i]);
}

static void os_rm_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        char sub[OS_PATH + 300];
        while (d && (e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            os_rm_tree(sub);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void os_at_exit(void) {
    int i;
    struct stat a, b;
    for (i = 0; i < os_nslots && i < OS_SLOTS; i++)
        if (os_slot_ok[i]) unlink(os_slot[i]);
    for (i = 0; i < OS_DIRS; i++)
        if (os_dir_ok[i]) { os_dir_ok[i] = 0; os_rm_tree(os_dir[i]); }
    for (i = 0; i < os_nlocks; i++) {   /* only our own lock file, not a later run's */
        if (os_lockfd[i] < 0) continue;
        if (fstat(os_lockfd[i], &a) == 0 && stat(os_lock[i], &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            unlink(os_lock[i]);
        close(os_lockfd[i]);
        os_lockfd[i] = -1;
    }
}

static void os_write2(const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(2, s, n);
        if (w <= 0) break;
        s += w;
        n -= (size_t)w;
    }
}

static const char *os_signame(int sig) {
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "a signal";
}

static void os_handler(int sig) {
    if (os_train && !os_sig) {   /* the training loop finishes its step and saves */
        os_sig = sig;
        os_write2("\nlolcats: ");
        os_write2(os_signame(sig));
        os_write2(": finishing the current step and saving the training state (send it again to stop at once)\n");
        return;
    }
    os_remove_async();
    os_write2("\nlolcats: ");
    os_write2(os_signame(sig));
    os_write2(os_train ? ": stopped at once; temporary files removed (the last saved state is kept)\n"
                       : ": stopped; temporary files removed, no output was left half-written\n");
    _exit(128 + sig);
}

static void os_register_exit(void) {
    if (os_registered) return;
    os_registered = 1;
    atexit(os_at_exit);
}

int outsafe_tmp(const char *path) {
    int i = os_nslots;
    if (i >= OS_SLOTS || strlen(path) >= OS_PATH) return -1;
    os_register_exit();
    os_slot_ok[i] = 0;
    snprintf(os_slot[i], OS_PATH, "%s", path);
    os_slot_ok[i] = 1;
    os_nslots = i + 1;
    return i;
}

void outsafe_tmp_set(int slot, const char *path) {
    if (slot < 0 || slot >= os_nslots || strlen(path) >= OS_PATH) return;
    os_slot_ok[slot] = 0;
    snprintf(os_slot[slot], OS_PATH, "%s", path);
    os_slot_ok[slot] = 1;
}

int outsafe_st_tmp(int slot, const char *path) {   /* lc_st_write's PATH.tmp.<pid> */
    char t[OS_PATH + 40];
    if (snprintf(t, sizeof t, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof t) return -1;
    if (slot < 0) return outsafe_tmp(t);
    outsafe_tmp_set(slot, t);
    return slot;
}

/* ---- registration ---- */
static void os_add(const char *flag, const char *path, int kind, int role, int resume) {
    os_entry *e;
    size_t n;
    if (!path || os_n >= OS_MAX) return;
    e = &os_ent[os_n++];
    memset(e, 0, sizeof *e);
    snprintf(e->flag, sizeof e->flag, "%s", flag);
    snprintf(e->path, sizeof e->path, "%s", path);
    n = strlen(e->path);
    while (n > 1 && e->path[n - 1] == '/') e->path[--n] = 0;   /* "dir/" names dir */
    e->kind = kind;
    e->role = role;
    e->resume = resume;
    if (role && kind != OUTSAFE_OUT_DIR && kind != OUTSAFE_OUT_HF && kind != OUTSAFE_OUT_LOG) outsafe_st_tmp(-1, e->path);
}

void outsafe_input(const char *flag, const char *path, int kind) { os_add(flag, path, kind, 0, 0); }
void outsafe_output(const char *flag, const char *path, int kind) { os_add(flag, path, kind, 1, 0); }
void outsafe_derived(const char *flag, const char *path) { os_add(flag, path, OUTSAFE_OUT_FILE, 2, 0); }
void outsafe_state(const char *flag, const char *path, int resume) { os_add(flag, path, OUTSAFE_OUT_FILE, 3, resume); }

/* ---- checks ---- */
static void os_parent(const char *path, char *buf, size_t cap, const char **base) {
    const char *s = strrchr(path, '/');
    if (!s) { snprintf(buf, cap, "."); *base = path; }
    else if (s == path) { snprintf(buf, cap, "/"); *base = s + 1; }
    else { snprintf(buf, cap, "%.*s", (int)(s - path), path); *base = s + 1; }
}

static void os_ident(const char *path, os_id *id) {
    struct stat st;
    char dir[OS_PATH];
    const char *base;
    memset(id, 0, sizeof *id);
    if (stat(path, &st) == 0) { id->exists = 1; id->dev = st.st_dev; id->ino = st.st_ino; }
    os_parent(path, dir, sizeof dir, &base);
    if (strcmp(base, ".") && strcmp(base, "..") && *base && stat(dir, &st) == 0) {
        id->pok = 1;
        id->pdev = st.st_dev;
        id->pino = st.st_ino;
        snprintf(id->base, sizeof id->base, "%s", base);
    }
}

static int os_same(const os_id *a, const os_id *b) {
    if (a->exists && b->exists) return a->dev == b->dev && a->ino == b->ino;
    return a->pok && b->pok && a->pdev == b->pdev && a->pino == b->pino && !strcmp(a->base, b->base);
}

static int os_err(const char *fmt, const char *a, const char *b, const char *c, const char *d) {
    fprintf(stderr, "lolcats: error: ");
    fprintf(stderr, fmt, a, b, c, d);
    fputc('\n', stderr);
    return 1;
}

/* an input exists and is of its kind; its identities (a directory's files too) appended */
static int os_check_input(const os_entry *e, os_input_id **ids, int *n, int *cap) {
    struct stat st;
    int want_dir = e->kind == OUTSAFE_IN_DIR, is_dir;
    if (stat(e->path, &st) != 0)
        return os_err("%s %s: %s", e->flag, e->path, strerror(errno), NULL);
    is_dir = S_ISDIR(st.st_mode);
    if ((want_dir && !is_dir) || (!want_dir && !S_ISREG(st.st_mode) && !(is_dir && e->kind == OUTSAFE_IN_MODEL))) {
        fprintf(stderr, "lolcats: error: %s %s is %s: expected %s\n", e->flag, e->path, os_kind(st.st_mode),
                want_dir ? "a directory" : e->kind == OUTSAFE_IN_MODEL ? "a model file or a directory"
                                                                       : "a regular file");
        return 1;
    }
    {   /* the path itself, then the files of a directory */
        DIR *d = is_dir ? opendir(e->path) : NULL;
        struct dirent *de = NULL;
        int first = 1;
        while (first || (d && (de = readdir(d)) != NULL)) {
            os_input_id *x;
            if (!first && (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))) continue;
            if (*n == *cap) {
                os_input_id *g = (os_input_id *)realloc(*ids, sizeof **ids * (size_t)(*cap * 2 + 16));
                if (!g) { if (d) closedir(d); return os_err("%s%s%s%s out of memory", "", "", "", ""); }
                *ids = g;
                *cap = *cap * 2 + 16;
            }
            x = &(*ids)[(*n)++];
            memcpy(x->flag, e->flag, sizeof x->flag);   /* both char[64] */
            if (first) snprintf(x->path, sizeof x->path, "%s", e->path);
            else snprintf(x->path, sizeof x->path, "%s/%.200s", e->path, de->d_name);
            os_ident(x->path, &x->id);
            first = 0;
        }
        if (d) closedir(d);
    }
    return 0;
}

/* the names in a directory (up to 3, for the message); -1 if it cannot be read */
static int os_dir_entries(const char *path, char *list, size_t cap) {
    DIR *d = opendir(path);
    struct dirent *de;
    int n = 0;
    list[0] = 0;
    if (!d) return -1;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(list);
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (n < 3) snprintf(list + len, cap - len, "%s%s", n ? ", " : "", de->d_name);
        else if (n == 3) snprintf(list + len, cap - len, ", ...");
        n++;
    }
    closedir(d);
    return n;
}

/* an output's kind, directory and writability (a probe file created and removed) */
static int os_check_output(const os_entry *e) {
    struct stat st;
    char dir[OS_PATH], probe[OS_PATH + 64], names[300];
    const char *base;
    int is_dir_out = e->kind == OUTSAFE_OUT_DIR || e->kind == OUTSAFE_OUT_HF, exists = stat(e->path, &st) == 0, fd;
    int slot;
    if (exists && is_dir_out && !S_ISDIR(st.st_mode))
        return os_err("%s %s is %s: expected a directory (or a path that does not exist yet)", e->flag, e->path,
                      os_kind(st.st_mode), NULL);
    if (exists && !is_dir_out && !S_ISREG(st.st_mode))
        return os_err("%s %s is %s: expected a regular file to write", e->flag, e->path, os_kind(st.st_mode), NULL);
    if (e->kind == OUTSAFE_OUT_HF && exists) {
        int n = os_dir_entries(e->path, names, sizeof names);
        if (n < 0) return os_err("%s %s: cannot read the directory: %s%s", e->flag, e->path, strerror(errno), "");
        if (n > 0 && !os_force)
            return os_err("%s %s is not empty (%s): a Hugging Face directory is written only into an absent or "
                          "empty directory (stale shards or an old index would be loaded with it); choose another "
                          "path, remove it, or add --force to replace it whole", e->flag, e->path, names, NULL);
    }
    /* where the files are created: the directory itself, or the parent */
    if (is_dir_out && exists && e->kind == OUTSAFE_OUT_DIR) snprintf(dir, sizeof dir, "%s", e->path);
    else os_parent(e->path, dir, sizeof dir, &base);
    if (stat(dir, &st) != 0)
        return os_err("%s %s: its directory %s does not exist: %s", e->flag, e->path, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return os_err("%s %s: %s is %s, not a directory", e->flag, e->path, dir, os_kind(st.st_mode));
    snprintf(probe, sizeof probe, "%s/.lolcats-probe.%ld", dir, (long)getpid());
    slot = outsafe_tmp(probe);
    fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0 || write(fd, "x", 1) != 1) {
        int en = errno;
        if (fd >= 0) { close(fd); unlink(probe); }
        return os_err("%s %s: cannot write in %s: %s (checked before any work)", e->flag, e->path, dir, strerror(en));
    }
    close(fd);
    unlink(probe);
    if (slot >= 0) os_slot_ok[slot] = 0;
    return 0;
}

/* out lies inside the (existing) directory dir */
static int os_inside(const char *path, const char *dir) {
    char rp[PATH_MAX], rd[PATH_MAX], pdir[OS_PATH];
    const char *base;
    size_t n;
    if (!realpath(dir, rd)) return 0;
    if (!realpath(path, rp)) {   /* not there yet: its directory */
        os_parent(path, pdir, sizeof pdir, &base);
        if (!realpath(pdir, rp)) return 0;
    }
    n = strlen(rd);
    return !strncmp(rp, rd, n) && (rp[n] == '/' || rp[n] == 0);
}

static int os_lock_output(const os_entry *e) {
    int tries, i = os_nlocks;
    char pidbuf[32];
    for (tries = 0; tries < 5; tries++) {
        struct stat a, b;
        int fd;
        snprintf(os_lock[i], sizeof os_lock[i], "%s.lock", e->path);
        fd = open(os_lock[i], O_RDWR | O_CREAT, 0644);
        if (fd < 0) return os_err("%s %s: cannot create the lock file %s: %s", e->flag, e->path, os_lock[i],
                                  strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            ssize_t r;
            if (errno != EWOULDBLOCK && errno != EAGAIN) {   /* no locks on this file system: go on */
                fprintf(stderr, "lolcats: warning: %s %s: cannot lock %s (%s): concurrent runs are not detected\n",
                        e->flag, e->path, os_lock[i], strerror(errno));
                close(fd);
                return 0;
            }
            r = read(fd, pidbuf, sizeof pidbuf - 1);
            pidbuf[r > 0 ? r : 0] = 0;
            pidbuf[strcspn(pidbuf, "\n")] = 0;
            close(fd);
            fprintf(stderr, "lolcats: error: %s %s is being written by another lolcats run (pid %s holds %s): wait "
                    "for it to finish or choose another %s\n", e->flag, e->path, pidbuf[0] ? pidbuf : "?", os_lock[i],
                    e->flag);
            return 1;
        }
        /* the file may have been removed by the run that just released it: retry on a fresh one */
        if (fstat(fd, &a) != 0 || stat(os_lock[i], &b) != 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
            close(fd);
            continue;
        }
        snprintf(pidbuf, sizeof pidbuf, "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) != 0 || write(fd, pidbuf, strlen(pidbuf)) < 0) {}
        os_lockfd[i] = fd;
        os_nlocks = i + 1;
        return 0;
    }
    return os_err("%s %s: the lock file %s keeps changing: another run is starting on it%s", e->flag, e->path,
                  os_lock[i], "");
}

/* Temporary files a killed run left beside an output (SIGKILL cannot be
   caught): PATH.tmp.<pid> (a file, or a Hugging Face staging directory) whose
   process no longer exists. Called with the output's lock held, so no live run
   is writing them. */
static void os_remove_stale(const os_entry *e) {
    char dir[OS_PATH], full[OS_PATH + 300];
    const char *base;
    size_t nb;
    DIR *d;
    struct dirent *de;
    os_parent(e->path, dir, sizeof dir, &base);
    nb = strlen(base);
    if (!nb || !(d = opendir(dir))) return;
    while ((de = readdir(d)) != NULL) {
        const char *t = de->d_name;
        char *end;
        long pid;
        if (strncmp(t, base, nb) || strncmp(t + nb, ".tmp.", 5)) continue;
        errno = 0;
        pid = strtol(t + nb + 5, &end, 10);
        if (errno || *end || end == t + nb + 5 || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;   /* still running (or not ours to judge) */
        snprintf(full, sizeof full, "%s/%s", dir, t);
        os_rm_tree(full);
        fprintf(stderr, "lolcats: removed %s, left by an interrupted run (pid %ld)\n", full, pid);
    }
    closedir(d);
}

static int os_conflicts(const os_input_id *in, int nin) {
    int i, j, k;
    os_id ids[OS_MAX];
    for (i = 0; i < os_n; i++) os_ident(os_ent[i].path, &ids[i]);
    for (i = 0; i < os_n; i++) {
        const os_entry *o = &os_ent[i];
        if (!o->role) continue;
        for (k = 0; k < nin; k++)
            if (os_same(&ids[i], &in[k].id)) {
                fprintf(stderr, "lolcats: error: %s %s is the same file as %s %s: the run would overwrite its own "
                        "input; choose another %s\n", o->flag, o->path, in[k].flag, in[k].path, o->flag);
                return 1;
            }
        if (o->kind == OUTSAFE_OUT_HF && ids[i].exists)   /* replaced whole: nothing read may live inside */
            for (k = 0; k < nin; k++)
                if (os_inside(in[k].path, o->path)) {
                    fprintf(stderr, "lolcats: error: %s %s lies inside %s %s, which is written as a whole "
                            "directory; choose another %s\n", in[k].flag, in[k].path, o->flag, o->path, o->flag);
                    return 1;
                }
        for (j = i + 1; j < os_n; j++) {
            const os_entry *p = &os_ent[j];
            if (!p->role) continue;
            if (os_same(&ids[i], &ids[j])) {
                fprintf(stderr, "lolcats: error: %s %s and %s %s are the same file: one output would overwrite "
                        "the other; choose different paths\n", o->flag, o->path, p->flag, p->path);
                return 1;
            }
            if ((o->kind == OUTSAFE_OUT_HF && os_inside(p->path, o->path)) ||
                (p->kind == OUTSAFE_OUT_HF && os_inside(o->path, p->path))) {
                const os_entry *hf = o->kind == OUTSAFE_OUT_HF ? o : p, *f = hf == o ? p : o;
                fprintf(stderr, "lolcats: error: %s %s lies inside %s %s, which is written as a whole directory; "
                        "choose another %s\n", f->flag, f->path, hf->flag, hf->path, f->flag);
                return 1;
            }
        }
    }
    return 0;
}

int outsafe_begin(int argc, char **argv, int force, int lock) {
    os_input_id *in = NULL;
    int nin = 0, cap = 0, i, rc = 0;
    struct sigaction sa;
    os_force = force;
    os_argc = argc;
    os_argv = argv;
    os_register_exit();
    for (i = 0; i < os_n && !rc; i++)
        if (!os_ent[i].role) rc = os_check_input(&os_ent[i], &in, &nin, &cap);
    if (!rc) rc = os_conflicts(in, nin);
    for (i = 0; i < os_n && !rc; i++) {
        const os_entry *e = &os_ent[i];
        struct stat st;
        if (e->role == 1 && lock) rc = os_check_output(e);
        else if (e->role > 1 && stat(e->path, &st) == 0 && !S_ISREG(st.st_mode))   /* beside a checked output */
            rc = os_err("%s %s is %s: expected a regular file to write", e->flag, e->path, os_kind(st.st_mode), NULL);
    }
    for (i = 0; i < os_n && !rc && lock; i++)
        if (os_ent[i].role == 1) rc = os_lock_output(&os_ent[i]);
    for (i = 0; i < os_n && !rc && lock; i++)   /* locks held: what a killed run left is stale */
        if (os_ent[i].role) os_remove_stale(&os_ent[i]);
    for (i = 0; i < os_n && !rc; i++) {   /* after the locks: a running run's state is reported as running */
        const os_entry *e = &os_ent[i];
        if (e->role == 3 && !e->resume && !os_force && access(e->path, F_OK) == 0)
            rc = os_err("%s %s exists (the training state of an earlier run): add --resume to continue that run, "
                        "or --force to start over and overwrite it%s%s", e->flag, e->path, "", "");
    }
    free(in);
    if (rc) return rc;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = os_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    return 0;
}

/* ---- Hugging Face directories ---- */
static os_entry *os_find(const char *path) {
    int i;
    for (i = 0; i < os_n; i++)
        if (os_ent[i].role == 1 && os_ent[i].kind == OUTSAFE_OUT_HF && !strncmp(os_ent[i].path, path, OS_PATH - 1))
            return &os_ent[i];
    return NULL;
}

const char *outsafe_hf_dir(const char *path) {
    static const char *known[] = {"config.json", "config.json.tmp", "model.safetensors",
                                  "model.safetensors.index.json", "model.safetensors.index.json.tmp"};
    char p[OS_PATH + 64];
    os_entry *e = os_find(path);
    size_t k;
    int d;
    if (!e) { fprintf(stderr, "lolcats: internal error: %s was not registered as an output\n", path); return NULL; }
    if (snprintf(e->stage, sizeof e->stage, "%s.tmp.%ld", e->path, (long)getpid()) >= (int)sizeof e->stage) {
        fprintf(stderr, "lolcats: error: %s %s: path too long\n", e->flag, e->path);
        return NULL;
    }
    os_rm_tree(e->stage);   /* a leftover of a killed run with our pid */
    for (k = 0; k < sizeof known / sizeof known[0]; k++) {   /* what a signal handler removes */
        snprintf(p, sizeof p, "%s/%s", e->stage, known[k]);
        outsafe_tmp(p);
        if (k == 2) outsafe_st_tmp(-1, p);
    }
    for (d = 0; d < OS_DIRS && os_dir_ok[d]; d++) {}
    if (d < OS_DIRS) {
        snprintf(os_dir[d], OS_PATH, "%s", e->stage);
        os_dir_ok[d] = 1;
    }
    if (mkdir(e->stage, 0755) != 0) {
        fprintf(stderr, "lolcats: error: %s %s: cannot create %s: %s\n", e->flag, e->path, e->stage, strerror(errno));
        return NULL;
    }
    return e->stage;
}

int outsafe_hf_commit(const char *path) {
    os_entry *e = os_find(path);
    char old[OS_PATH + 40];
    struct stat st;
    sigset_t all, prev;
    int moved = 0, rc = 0, d;
    if (!e || !e->stage[0]) return 0;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &prev);   /* no signal between the two renames */
    snprintf(old, sizeof old, "%s.old.%ld", e->path, (long)getpid());
    if (stat(e->path, &st) == 0) {
        if (rmdir(e->path) != 0) {   /* not empty: --force, checked by outsafe_begin */
            if (rename(e->path, old) != 0) {
                fprintf(stderr, "lolcats: error: %s %s: cannot move the old directory away: %s\n", e->flag, e->path,
                        strerror(errno));
                rc = 1;
            } else {
                moved = 1;
            }
        }
    }
    if (!rc && rename(e->stage, e->path) != 0) {
        fprintf(stderr, "lolcats: error: %s %s: cannot move %s into place: %s\n", e->flag, e->path, e->stage,
                strerror(errno));
        if (moved && rename(old, e->path) == 0) moved = 0;
        rc = 1;
    }
    if (!rc)
        for (d = 0; d < OS_DIRS; d++)
            if (os_dir_ok[d] && !strcmp(os_dir[d], e->stage)) os_dir_ok[d] = 0;
    sigprocmask(SIG_SETMASK, &prev, NULL);
    if (!rc && moved) os_rm_tree(old);
    return rc;
}

/* ---- signals during training ---- */
void outsafe_training(void) { os_train = 1; }
int outsafe_stop(void) { return os_sig; }
int outsafe_exit_code(void) { return os_sig ? 128 + os_sig : 1; }

void outsafe_resume_hint(const char *what) {
    int i, has = 0;
    fprintf(stderr, "lolcats: stopped by %s; %s\nlolcats: to continue, run the same command with --resume:\n  lolcats",
            os_signame(os_sig), what);
    for (i = 0; i < os_argc; i++) {
        const char *a = os_argv[i];
        has |= !strcmp(a, "--resume");
        if (a[strcspn(a, " \t'\"\\$`*?;&|<>()")]) {   /* quoted for the shell */
            const char *c;
            fputs(" '", stderr);
            for (c = a; *c; c++) {
                if (*c == '\'') fputs("'\\''", stderr);
                else fputc(*c, stderr);
            }
            fputc('\'', stderr);
        } else {
            fprintf(stderr, " %s", a);
        }
    }
    fprintf(stderr, "%s\n", has ? "" : " --resume");
}
