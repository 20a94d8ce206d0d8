/* data.h - training / evaluation data for the `lolcats` command: plain text
   and Alpaca JSONL records (LOLCATS_MATH.md section 9), tokenized, packed into
   fixed-length chunks with next-token labels, split into train / validation,
   and visited in a seeded shuffled order. */
#ifndef LOLCATS_TOOLS_DATA_H
#define LOLCATS_TOOLS_DATA_H
#include "lolcats.h"

/* Whole file into a NUL-terminated buffer (NULL on failure; *n its size).
   NULL also for what is not a regular file (a FIFO, a device, a directory). */
char *tool_read_file(const char *path, size_t *n);
/* tool_read_file for text data, with the reason in err: not a regular file,
   unreadable, or UTF-16 / UTF-32 (a byte-order mark or NUL bytes between the
   characters: convert to UTF-8). */
char *tool_read_text(const char *path, size_t *n, lc_error *err);

/* One Alpaca record; line is its 1-based line in the file. */
typedef struct {
    char *instruction, *input, *output;
    long line;
} tool_alpaca_rec;

/* Reads every record of a JSONL file (blank lines skipped). Each line must be
   a JSON object with string fields "instruction" and "output" ("input"
   optional); other keys are ignored. Errors ("FILE:LINE: ...") go to err. */
int tool_alpaca_read(const char *path, tool_alpaca_rec **recs, long *n, lc_error *err);
void tool_alpaca_free(tool_alpaca_rec *recs, long n);
/* The section 9 prompt of a record (malloc'd). */
char *tool_alpaca_prompt(const tool_alpaca_rec *r);
/* [BOS] + prompt, then response + EOS (no specials): *ids (grown as needed,
   capacity *cap), *n tokens of which the first *n_prompt are the prompt. */
int tool_alpaca_encode(const lc_tokenizer *tok, int eos_id, const tool_alpaca_rec *r, int **ids,
                       size_t *cap, size_t *n, size_t *n_prompt, lc_error *err);
/* 1 when the path names a JSONL file (".jsonl"). */
int tool_is_jsonl(const char *path);

/* Packed chunks. tokens / labels (n, seq_len): labels[i] is the target of
   position i (the next token of the stream), -1 where ignored: Alpaca prompt
   tokens, and the last position of every chunk (as Hugging Face's shifted
   labels do). */
typedef struct {
    int seq_len;
    long n, n_val;                 /* training / validation chunks */
    int *tokens, *labels;          /* (n, seq_len) */
    int *val_tokens, *val_labels;  /* (n_val, seq_len) */
    long records, val_records;     /* Alpaca records in each part */
    long long stream_tokens;       /* tokens before chunking (both parts) */
    int is_jsonl;
    long *perm;                    /* shuffled order of the current epoch */
    long perm_epoch;               /* the epoch and seed perm belongs to */
    uint64_t perm_seed;
} tool_data;

typedef struct {
    int seq_len;
    int val_records;     /* JSONL: the first N records form the validation part */
    int val_seqs;        /* at most this many validation chunks (text: the last ones) */
    long max_records;    /* JSONL: read at most this many records (0: all) */
    int eos_id;          /* end of a response */
} tool_data_cfg;

int tool_data_load(tool_data *d, const char *path, const lc_tokenizer *tok, const tool_data_cfg *cfg,
                   lc_error *err);
void tool_data_free(tool_data *d);
/* `--data random`: n training and n_val validation chunks of seeded uniform
   token ids in [3, vocab) after a BOS (1), for models without a tokenizer
   (e.g. `lolcats synth` ones): the cost of training, not its quality. */
int tool_data_random(tool_data *d, int seq_len, long n, long n_val, int vocab, uint64_t seed, lc_error *err);
/* Index of the k-th training chunk in a seeded stream of shuffled epochs. */
long tool_data_pick(tool_data *d, uint64_t seed, int64_t k);
#endif
