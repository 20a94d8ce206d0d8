/* fuzz_tokenizer_bin.c - libFuzzer harness for llama2.c tokenizer.bin: load,
   then encode a fixed text and decode every token. */
#include "fuzz_common.h"
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lc_tokenizer t;
    lc_error err;
    const char *p = fuzz_file("tokenizer.bin", data, size), *text = "Once upon a time, \xc3\xa9t\xc3\xa9 <0x41>!";
    int ids[64], i;
    size_t n;
    char buf[4096];
    memset(&err, 0, sizeof err);
    if (lc_tokenizer_load_llama2c(&t, p, 0, &err) != LOLCATS_OK) {
        fuzz_check_names(err.msg, "tokenizer.bin");
        return 0;
    }
    if (lc_tokenizer_encode(&t, text, strlen(text), 1, 1, ids, 64, &n, &err) == LOLCATS_OK)
        for (i = 0; i < (int)n; i++) (void)lc_tokenizer_decode(&t, i ? ids[i - 1] : -1, ids[i], buf, sizeof buf);
    for (i = 0; i < t.vocab_size && i < 4096; i++) (void)lc_tokenizer_decode(&t, -1, i, buf, sizeof buf);
    lc_tokenizer_free(&t);
    return 0;
}
