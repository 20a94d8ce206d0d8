/* fuzz_llama2c.c - libFuzzer harness for the llama2.c checkpoint loader: the
   input is a .bin; when it loads, one forward step must run (small models). */
#include "fuzz_common.h"
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lc_model m;
    lc_error err;
    const char *p = fuzz_file("model.bin", data, size);
    memset(&err, 0, sizeof err);
    if (lc_model_load_llama2c(&m, p, &err) != LOLCATS_OK) {
        fuzz_check_names(err.msg, "model.bin");
        return 0;
    }
    if (lc_model_param_count(&m) < 200000 && m.cfg.seq_len > 0) {
        lc_run r;
        int tok = 0;
        if (lc_run_init(&r, &m, m.cfg.seq_len < 8 ? m.cfg.seq_len : 8, 1, &err) == LOLCATS_OK) {
            (void)lc_model_forward(&m, &r, &tok, 1, NULL, &err);
            lc_run_free(&r);
        }
    }
    lc_model_free(&m);
    return 0;
}
