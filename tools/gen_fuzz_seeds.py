#!/usr/bin/python3
"""gen_fuzz_seeds.py - writes the small seed inputs of the fuzz harnesses that
are not copies of tests/data: a tiny llama2.c checkpoint, a tiny tokenizer.bin,
a tiny SentencePiece-style tokenizer.json and HF config.json files.
Run from the repository root: /usr/bin/python3 tools/gen_fuzz_seeds.py"""
import json, random, struct

random.seed(1)
dim, hid, L, H, Hk, V, S = 8, 12, 1, 2, 1, 6, 4
hd = dim // H
n = (V * dim + L * dim + L * dim * H * hd + 2 * L * dim * Hk * hd + L * H * hd * dim + L * dim
     + 3 * L * dim * hid + dim + S * hd // 2 * 2)
w = [random.uniform(-0.1, 0.1) for _ in range(n)]
with open('fuzz/corpus_llama2c/tiny.bin', 'wb') as f:
    f.write(struct.pack('<7i', dim, hid, L, H, Hk, V, S) + struct.pack('<%df' % n, *w))

toks = [b'<unk>', b'<s>', b'</s>'] + [bytes([i]) for i in range(97, 103)] + [b' a', b'ab', b' ab']
out = struct.pack('<i', 3)
for i, t in enumerate(toks):
    out += struct.pack('<fi', -float(i), len(t)) + t
with open('fuzz/corpus_tokenizer_bin/tiny.bin', 'wb') as f:
    f.write(out)

tj = {"model": {"type": "BPE", "byte_fallback": True,
                "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "\u2581": 3, "a": 4, "b": 5, "\u2581a": 6, "ab": 7, "<0x41>": 8},
                "merges": ["\u2581 a", "a b"]},
      "added_tokens": [{"id": 1, "content": "<s>", "special": True}, {"id": 2, "content": "</s>", "special": True}],
      "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                         {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}}
with open('fuzz/corpus_tokenizer_json/tiny_spm.json', 'w') as f:
    f.write(json.dumps(tj))

# byte-level BPE (GPT-2 / Llama 3 style): bytes mapped to printable code points, 'G' with a dot
# (U+0120) standing for a space
bl = {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "\u0120": 2, "\u0120a": 3, "ab": 4, "\u0120ab": 5,
                                         "<|begin_of_text|>": 6, "<|end_of_text|>": 7},
                "merges": ["\u0120 a", "a b", "\u0120a b"]},
      "added_tokens": [{"id": 6, "content": "<|begin_of_text|>", "special": True},
                       {"id": 7, "content": "<|end_of_text|>", "special": True}],
      "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "ByteLevel", "add_prefix_space": False}]},
      "decoder": {"type": "ByteLevel"}}
with open('fuzz/corpus_tokenizer_json/tiny_bytelevel.json', 'w') as f:
    f.write(json.dumps(bl))

cfg = {"architectures": ["LlamaForCausalLM"], "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 1,
       "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 6, "rms_norm_eps": 1e-5,
       "rope_theta": 10000.0, "max_position_embeddings": 4, "tie_word_embeddings": True}
with open('fuzz/corpus_hf_config/config.json', 'w') as f:
    f.write(json.dumps(cfg))
with open('fuzz/corpus_hf_config/with_index', 'wb') as f:
    f.write(json.dumps(cfg).encode() + b'\0' +
            json.dumps({"weight_map": {"model.embed_tokens.weight": "model-00001-of-00001.safetensors"}}).encode())
