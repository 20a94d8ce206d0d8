/* fingerprint.h - what a training run's arithmetic depends on, recorded in its
   state file (OUT.state) and in cached block inputs, and checked when a run
   resumes or reads them: every option that enters the numbers, the identity of
   the data file and a fingerprint of the teacher model (its files' sizes, the
   hash of their headers and of a few KB sampled from every tensor). */
#ifndef LOLCATS_TOOLS_FINGERPRINT_H
#define LOLCATS_TOOLS_FINGERPRINT_H
#include "lolcats.h"

#define TOOL_FP_MAX 48
#define TOOL_FP_KEY "fingerprint"   /* metadata key that marks a recorded fingerprint */

/* key: metadata key ("fp.seed"); label: how a message names it ("--seed") */
typedef struct {
    char key[40], label[48], val[160];
} tool_fp_item;

typedef struct {
    int n;
    tool_fp_item it[TOOL_FP_MAX];
} tool_fp;

/* one entry (printf-style value); silently ignores entries beyond TOOL_FP_MAX */
void tool_fp_add(tool_fp *r, const char *key, const char *label, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* kv (2 * (n_extra + r->n + 1) pointers) = the caller's n_extra key/value pairs,
   then the marker, then the record's; returns the number of pairs. */
int tool_fp_meta(const tool_fp *r, const char *const *extra, int n_extra, const char **kv);
/* Compares r with the record in f (a state file or a cache shard, named by
   path): prints one line per difference ("--seed: PATH has 0, this run 7")
   and returns their number. A file without a record (written before
   fingerprints) returns -1 and prints nothing. */
int tool_fp_check(const tool_fp *r, const lc_st_file *f, const char *path);

/* The identity of a data file: "bytes=N head=H tail=H" (FNV-1a of its first
   and last 64 KiB). 1 (after printing why) when it cannot be read. */
int tool_fp_data(char *buf, size_t cap, const char *path);

/* The teacher: the files the loader reads (a llama2.c .bin; or config.json,
   the safetensors index and model*.safetensors of a Hugging Face directory)
   with their size, modification time and the hash of their header, plus the
   hash of a few KB sampled from every weight of the loaded model. */
#define TOOL_FP_FILES 64
typedef struct {
    int n;
    struct {
        char path[1100];
        long long size, mtime_s, mtime_ns, ino, dev;
        uint64_t head;            /* hash of the header (safetensors) / config / first 64 KiB */
    } f[TOOL_FP_FILES];
    long long bytes;              /* total size */
    uint64_t heads, tensors;
} tool_teacher_fp;

/* 1 (after printing why) when a file cannot be read */
int tool_teacher_fp_init(tool_teacher_fp *t, const char *model_path, const lc_model *m);
/* "bytes=N header=H tensors=H" */
void tool_teacher_fp_str(const tool_teacher_fp *t, char *buf, size_t cap);
/* The cheap re-check (size, mtime, inode, header hash of every file): 0 when
   unchanged, else 1 with why (the file and what changed). */
int tool_teacher_fp_verify(const tool_teacher_fp *t, char *why, size_t cap);
/* hash of a LoLCATs checkpoint's feature maps, window factors and biases (the
   starting point of stage 2) */
uint64_t tool_fp_lolcats(const lc_lolcats *lp);
#endif
