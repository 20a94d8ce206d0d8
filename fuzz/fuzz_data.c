/* fuzz_data.c - libFuzzer harness for the training-data reader (tools/data.c):
   Alpaca JSONL records and plain text, tokenized, packed and split. The first
   input byte picks the format and the packing parameters; the rest is the file.
   Build: make fuzz   Run: build/fuzz/fuzz_data fuzz/corpus_data */
#include "fuzz_common.h"
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"
#include "../tools/data.h"

/* A byte-level llama2.c tokenizer (3 specials, 256 byte pieces, a few merges),
   written once and loaded once per process. */
static lc_tokenizer *tokenizer(void) {
    static lc_tokenizer tok;
    static int loaded;
    static const char *merges[] = {"a", "b", " ", " a", "ab", "e", "th", "the", " the"};
    unsigned char buf[8192];
    size_t n = 0;
    int i, len, one = 1;
    float score;
    lc_error err;
    if (loaded) return &tok;
#define PUT(p, k) do { memcpy(buf + n, (p), (k)); n += (k); } while (0)
    PUT(&one, 4);  /* max token length, rewritten by the loader's own scan */
    for (i = 0; i < 3 + 256 + 9; i++) {
        char piece[16];
        if (i < 3) snprintf(piece, sizeof piece, "%s", i == 0 ? "<unk>" : i == 1 ? "\n<s>\n" : "\n</s>\n");
        else if (i < 259) snprintf(piece, sizeof piece, "<0x%02X>", i - 3);
        else snprintf(piece, sizeof piece, "%s", merges[i - 259]);
        score = -(float)i;
        len = (int)strlen(piece);
        PUT(&score, 4); PUT(&len, 4); PUT(piece, (size_t)len);
    }
#undef PUT
    if (lc_tokenizer_load_llama2c(&tok, fuzz_file("tokenizer.bin", buf, n), 0, &err) != LOLCATS_OK) {
        fprintf(stderr, "harness tokenizer: %s\n", err.msg);
        abort();
    }
    loaded = 1;
    return &tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lc_tokenizer *tok = tokenizer();
    tool_data d;
    tool_data_cfg cfg;
    lc_error err;
    const char *name;
    long i, k;
    if (size < 1) return 0;
    name = data[0] & 1 ? "d.jsonl" : "d.txt";
    memset(&cfg, 0, sizeof cfg);
    cfg.seq_len = 2 + (data[0] >> 1 & 15);
    cfg.val_records = data[0] >> 5 & 3;
    cfg.val_seqs = 1 + (data[0] >> 6);
    cfg.max_records = data[0] & 0x80 ? 3 : 0;
    cfg.eos_id = 2;
    memset(&err, 0, sizeof err);
    if (tool_data_load(&d, fuzz_file(name, data + 1, size - 1), tok, &cfg, &err)) {
        fuzz_check_names(err.msg, name);
        return 0;
    }
    if (d.seq_len != cfg.seq_len || d.n < 1 || d.n_val < 0) abort();
    for (i = 0; i < (d.n + d.n_val) * d.seq_len; i++) {
        const int *t = i < d.n * d.seq_len ? d.tokens + i : d.val_tokens + (i - d.n * d.seq_len);
        const int *l = i < d.n * d.seq_len ? d.labels + i : d.val_labels + (i - d.n * d.seq_len);
        if (*t < 0 || *t >= tok->vocab_size || *l < -1 || *l >= tok->vocab_size) abort();
    }
    for (k = 0; k < 2 * d.n + 1; k++) {
        long c = tool_data_pick(&d, 7, k);
        if (c < 0 || c >= d.n) abort();
    }
    tool_data_free(&d);
    return 0;
}
