/* fuzz_hf_config.c - libFuzzer harness for a Hugging Face directory's
   config.json (and, after a NUL byte in the input, model.safetensors.index.json):
   loading must fail cleanly (there are no weights) or succeed, never crash. */
#include "fuzz_common.h"
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lc_model m;
    lc_error err;
    const uint8_t *nul = (const uint8_t *)memchr(data, 0, size);
    size_t n1 = nul ? (size_t)(nul - data) : size;
    char dir[256];
    const char *p = fuzz_file("config.json", data, n1);
    snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(p, '/') - p), p);
    if (nul) {
        fuzz_file("model.safetensors.index.json", nul + 1, size - n1 - 1);
    } else {
        char idx[300];
        snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
        remove(idx);
    }
    memset(&err, 0, sizeof err);
    if (lc_model_load_hf(&m, dir, &err) == LOLCATS_OK) lc_model_free(&m);
    else if (!strstr(err.msg, dir)) fuzz_check_names(err.msg, ".json");
    return 0;
}
