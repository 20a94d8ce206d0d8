/* fuzz_tokenizer_json.c - libFuzzer harness for Hugging Face tokenizer.json
   (BPE with byte fallback, byte-level BPE): load, encode, decode. */
#include "fuzz_common.h"
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lc_tokenizer t;
    lc_error err;
    const char *p = fuzz_file("tokenizer.json", data, size), *text = "Hello world, \xe4\xbd\xa0\xe5\xa5\xbd 123 <s>";
    int ids[64], i;
    size_t n;
    char buf[4096];
    memset(&err, 0, sizeof err);
    if (lc_tokenizer_load_hf(&t, p, &err) != LOLCATS_OK) {
        fuzz_check_names(err.msg, "tokenizer.json");
        return 0;
    }
    if (lc_tokenizer_encode(&t, text, strlen(text), 1, 0, ids, 64, &n, &err) == LOLCATS_OK)
        for (i = 0; i < (int)n; i++) (void)lc_tokenizer_decode(&t, i ? ids[i - 1] : -1, ids[i], buf, sizeof buf);
    for (i = 0; i < t.vocab_size && i < 4096; i++) (void)lc_tokenizer_decode(&t, -1, i, buf, sizeof buf);
    lc_tokenizer_free(&t);
    return 0;
}
