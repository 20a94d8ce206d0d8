/* fingerprint.c - run records and the teacher's fingerprint (see fingerprint.h). */
#define _POSIX_C_SOURCE 200809L
#include "fingerprint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FP_CHUNK 65536

/* FNV-1a, 64 bit */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}
#define FNV0 14695981039346656037ull

void tool_fp_add(tool_fp *r, const char *key, const char *label, const char *fmt, ...) {
    va_list ap;
    tool_fp_item *it;
    if (r->n >= TOOL_FP_MAX) return;
    it = &r->it[r->n++];
    snprintf(it->key, sizeof it->key, "fp.%s", key);
    snprintf(it->label, sizeof it->label, "%s", label);
    va_start(ap, fmt);
    vsnprintf(it->val, sizeof it->val, fmt, ap);
    va_end(ap);
}

int tool_fp_meta(const tool_fp *r, const char *const *extra, int n_extra, const char **kv) {
    int i, n = 0;
    for (i = 0; i < n_extra; i++, n++) { kv[2 * n] = extra[2 * i]; kv[2 * n + 1] = extra[2 * i + 1]; }
    kv[2 * n] = TOOL_FP_KEY;
    kv[2 * n + 1] = "1";
    n++;
    for (i = 0; i < r->n; i++, n++) { kv[2 * n] = r->it[i].key; kv[2 * n + 1] = r->it[i].val; }
    return n;
}

int tool_fp_check(const tool_fp *r, const lc_st_file *f, const char *path) {
    int i, bad = 0;
    if (!lc_st_meta(f, TOOL_FP_KEY)) return -1;
    for (i = 0; i < r->n; i++) {
        const char *v = lc_st_meta(f, r->it[i].key);
        if (v && !strcmp(v, r->it[i].val)) continue;
        fprintf(stderr, "lolcats: %s: %s has %s, this run %s\n", r->it[i].label, path, v ? v : "(not recorded)",
                r->it[i].val);
        bad++;
    }
    return bad;
}

/* Opens path for reading, refusing what is not a regular file (a FIFO would
   block, a device never ends). -1 after printing why. */
static int fp_open(const char *path, struct stat *st) {
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) { fprintf(stderr, "lolcats: error: %s: cannot open: %s\n", path, strerror(errno)); return -1; }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        fprintf(stderr, "lolcats: error: %s: not a regular file\n", path);
        close(fd);
        return -1;
    }
    return fd;
}

/* hash of bytes [off, off + n) of fd (fewer at the end of the file) */
static uint64_t fp_hash_range(int fd, long long off, long long n, uint64_t h) {
    static const size_t cap = FP_CHUNK;
    char *buf = (char *)malloc(cap);
    if (!buf) return h ^ 1;
    while (n > 0) {
        ssize_t got = pread(fd, buf, (size_t)(n < (long long)cap ? n : (long long)cap), (off_t)off);
        if (got <= 0) break;
        h = fnv(h, buf, (size_t)got);
        off += got;
        n -= got;
    }
    free(buf);
    return h;
}

int tool_fp_data(char *buf, size_t cap, const char *path) {
    struct stat st;
    int fd = fp_open(path, &st);
    long long size;
    uint64_t head, tail;
    if (fd < 0) return 1;
    size = (long long)st.st_size;
    head = fp_hash_range(fd, 0, FP_CHUNK, FNV0);
    tail = fp_hash_range(fd, size > FP_CHUNK ? size - FP_CHUNK : 0, FP_CHUNK, FNV0);
    close(fd);
    snprintf(buf, cap, "bytes=%lld head=%016llx tail=%016llx", size, (unsigned long long)head,
             (unsigned long long)tail);
    return 0;
}

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && !strcmp(s + n - k, tail);
}

/* the header of a file: a safetensors' length prefix and JSON header, a JSON
   file whole (up to 64 MiB), else the first 64 KiB */
static uint64_t fp_head(int fd, const char *path, long long size) {
    long long n = FP_CHUNK;
    if (ends_with(path, ".safetensors") && size >= 8) {
        unsigned char b[8];
        uint64_t len = 0;
        int i;
        if (pread(fd, b, 8, 0) == 8)
            for (i = 7; i >= 0; i--) len = len << 8 | b[i];
        n = 8 + (long long)(len < (uint64_t)size ? len : (uint64_t)size);
    } else if (ends_with(path, ".json") && size <= (64ll << 20)) {
        n = size;
    }
    return fp_hash_range(fd, 0, n, FNV0);
}

static int fp_stat_file(tool_teacher_fp *t, const char *path) {
    struct stat st;
    int fd, k = t->n;
    if (k >= TOOL_FP_FILES) return 0;
    if ((fd = fp_open(path, &st)) < 0) return 1;
    snprintf(t->f[k].path, sizeof t->f[k].path, "%s", path);
    t->f[k].size = (long long)st.st_size;
    t->f[k].mtime_s = (long long)st.st_mtim.tv_sec;
    t->f[k].mtime_ns = (long long)st.st_mtim.tv_nsec;
    t->f[k].ino = (long long)st.st_ino;
    t->f[k].dev = (long long)st.st_dev;
    t->f[k].head = fp_head(fd, path, t->f[k].size);
    close(fd);
    t->n++;
    return 0;
}

/* the files of a Hugging Face directory the loader reads */
static int fp_hf_file(const struct dirent *e) {
    const char *s = e->d_name;
    return !strcmp(s, "config.json") || !strcmp(s, "model.safetensors.index.json") ||
           (!strncmp(s, "model", 5) && ends_with(s, ".safetensors"));
}

static uint64_t fp_weight(uint64_t h, const lc_weight *w) {
    size_t bytes, pick = 1024, offs[3];
    int i;
    if (!w->data) return h;
    bytes = (size_t)w->rows * lc_dtype_row_bytes(w->dtype, w->cols);   /* GGUF block types too */
    if (pick > bytes) pick = bytes;
    offs[0] = 0;
    offs[1] = (bytes - pick) / 2;
    offs[2] = bytes - pick;
    for (i = 0; i < 3; i++) h = fnv(h, (const char *)w->data + offs[i], pick);
    return h;
}

int tool_teacher_fp_init(tool_teacher_fp *t, const char *model_path, const lc_model *m) {
    struct stat st;
    int i, l;
    memset(t, 0, sizeof *t);
    if (stat(model_path, &st) == 0 && S_ISDIR(st.st_mode)) {
        struct dirent **ents = NULL;
        int n = scandir(model_path, &ents, fp_hf_file, alphasort), bad = 0;
        char path[1100];
        if (n < 0) { fprintf(stderr, "lolcats: error: %s: cannot list: %s\n", model_path, strerror(errno)); return 1; }
        for (i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/%s", model_path, ents[i]->d_name);
            if (!bad) bad = fp_stat_file(t, path);
            free(ents[i]);
        }
        free(ents);
        if (bad) return 1;
    } else if (fp_stat_file(t, model_path)) {
        return 1;
    }
    t->heads = FNV0;
    for (i = 0; i < t->n; i++) {
        t->bytes += t->f[i].size;
        t->heads = fnv(t->heads, &t->f[i].head, sizeof t->f[i].head);
    }
    t->tensors = fp_weight(fp_weight(fp_weight(FNV0, &m->tok_emb), &m->rms_final), &m->wcls);
    for (l = 0; l < m->cfg.n_layers; l++) {
        const lc_layer_weights *w = &m->layers[l];
        const lc_weight *ws[9];
        ws[0] = &w->rms_att; ws[1] = &w->wq; ws[2] = &w->wk; ws[3] = &w->wv; ws[4] = &w->wo;
        ws[5] = &w->rms_ffn; ws[6] = &w->w1; ws[7] = &w->w2; ws[8] = &w->w3;
        for (i = 0; i < 9; i++) t->tensors = fp_weight(t->tensors, ws[i]);
        /* Qwen's biases / q-k norms (no data for Llama: its fingerprint is unchanged) */
        t->tensors = fp_weight(fp_weight(fp_weight(t->tensors, &w->bq), &w->bk), &w->bv);
        t->tensors = fp_weight(fp_weight(t->tensors, &w->q_norm), &w->k_norm);
    }
    return 0;
}

void tool_teacher_fp_str(const tool_teacher_fp *t, char *buf, size_t cap) {
    snprintf(buf, cap, "bytes=%lld header=%016llx tensors=%016llx", t->bytes, (unsigned long long)t->heads,
             (unsigned long long)t->tensors);
}

int tool_teacher_fp_verify(const tool_teacher_fp *t, char *why, size_t cap) {
    int i;
    for (i = 0; i < t->n; i++) {
        struct stat st;
        int fd = open(t->f[i].path, O_RDONLY | O_NONBLOCK);
        uint64_t h;
        if (fd < 0) { snprintf(why, cap, "%s is gone (%s)", t->f[i].path, strerror(errno)); return 1; }
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            snprintf(why, cap, "%s is no longer a regular file", t->f[i].path);
            return 1;
        }
        if ((long long)st.st_ino != t->f[i].ino || (long long)st.st_dev != t->f[i].dev) {
            close(fd);
            snprintf(why, cap, "%s was replaced by another file", t->f[i].path);
            return 1;
        }
        if ((long long)st.st_size != t->f[i].size) {
            close(fd);
            snprintf(why, cap, "%s changed size from %lld to %lld bytes", t->f[i].path, t->f[i].size,
                     (long long)st.st_size);
            return 1;
        }
        if ((long long)st.st_mtim.tv_sec != t->f[i].mtime_s || (long long)st.st_mtim.tv_nsec != t->f[i].mtime_ns) {
            close(fd);
            snprintf(why, cap, "%s was modified (its modification time changed)", t->f[i].path);
            return 1;
        }
        h = fp_head(fd, t->f[i].path, t->f[i].size);
        close(fd);
        if (h != t->f[i].head) { snprintf(why, cap, "%s has another header", t->f[i].path); return 1; }
    }
    return 0;
}

uint64_t tool_fp_lolcats(const lc_lolcats *lp) {
    size_t fm = (size_t)lp->n_layers * lp->n_heads * lp->head_dim * lp->feature_dim, lh = (size_t)lp->n_layers * lp->n_heads;
    uint64_t h = FNV0;
    if (lp->fmap_q) h = fnv(h, lp->fmap_q, fm * sizeof(float));
    if (lp->fmap_k) h = fnv(h, lp->fmap_k, fm * sizeof(float));
    if (lp->wf) h = fnv(h, lp->wf, lh * sizeof(float));
    if (lp->fbq) h = fnv(h, lp->fbq, lh * sizeof(float));
    if (lp->fbk) h = fnv(h, lp->fbk, lh * sizeof(float));
    return h;
}
