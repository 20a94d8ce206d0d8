/* fuzz_json.c - libFuzzer harness for the internal JSON parser: parse, then
   walk the whole tree through the accessors and check its invariants.
   Build: make fuzz   Run: build/fuzz/fuzz_json fuzz/corpus_json */
#define LOLCATS_IMPLEMENTATION
#include "lolcats.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t walk(const lc__json *doc, const lc__json_node *n, int depth) {
    const lc__json_node *c;
    size_t seen = 1, kids = 0;
    if (depth > LC__JSON_MAX_DEPTH + 1) abort();
    if (n->type == LC__JSON_STRING && (strlen(n->str) > n->len || n->str[n->len] != 0)) abort();
    for (c = lc__json_first(doc, n); c; c = lc__json_next(doc, n, c)) {
        if (n->type == LC__JSON_OBJECT) {
            if (!c->key) abort();
            if (c->key_len == strlen(c->key) && !lc__json_get(doc, n, c->key)) abort();
        } else if (c->key) abort();
        seen += walk(doc, c, depth + 1);
        kids++;
    }
    if (kids != ((n->type == LC__JSON_ARRAY || n->type == LC__JSON_OBJECT) ? n->count : 0)) abort();
    if (seen != (size_t)(n->end - (uint32_t)(n - doc->nodes))) abort();
    return seen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lc__json doc;
    lc_error err;
    if (lc__json_parse(&doc, (const char *)data, size, "fuzz.json", &err) == LOLCATS_OK) {
        if (walk(&doc, lc__json_root(&doc), 0) != doc.n) abort();
    } else if (!strstr(err.msg, "fuzz.json")) {
        abort();
    }
    lc__json_free(&doc);
    return 0;
}
