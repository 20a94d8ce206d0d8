#!/usr/bin/python3
"""gen_gguf_seeds.py - writes the seed inputs of fuzz/fuzz_gguf.c: small GGUF
files (v3 and v2) with metadata of every value type, string / number arrays
and tensors of the block types lolcats reads. Written from the GGUF
specification with struct only. Run from the repository root:
/usr/bin/python3 tools/gen_gguf_seeds.py"""
import os, random, struct

random.seed(3)


def s(x):
    b = x.encode()
    return struct.pack('<Q', len(b)) + b


def kv(key, typ, payload):
    return s(key) + struct.pack('<I', typ) + payload


def gguf(version, kvs, tensors, align=32):
    """tensors: (name, ne list, ggml type, raw bytes)"""
    head = b'GGUF' + struct.pack('<IQQ', version, len(tensors), len(kvs)) + b''.join(kvs)
    infos, data = b'', b''
    for name, ne, typ, raw in tensors:
        while len(data) % align:
            data += b'\0'
        infos += s(name) + struct.pack('<I', len(ne)) + b''.join(struct.pack('<Q', n) for n in ne)
        infos += struct.pack('<IQ', typ, len(data))
        data += raw
    out = head + infos
    while len(out) % align:
        out += b'\0'
    return out + data


def rnd(n):
    return bytes(random.randrange(256) for _ in range(n))


kvs = [kv('general.architecture', 8, s('llama')),
       kv('llama.block_count', 4, struct.pack('<I', 1)),
       kv('llama.embedding_length', 4, struct.pack('<I', 32)),
       kv('llama.rope.freq_base', 6, struct.pack('<f', 10000.0)),
       kv('k.u8', 0, b'\x07'), kv('k.i8', 1, b'\xf9'), kv('k.u16', 2, struct.pack('<H', 9)),
       kv('k.i16', 3, struct.pack('<h', -9)), kv('k.i32', 5, struct.pack('<i', -3)), kv('k.bool', 7, b'\x01'),
       kv('k.u64', 10, struct.pack('<Q', 1 << 40)), kv('k.i64', 11, struct.pack('<q', -4)),
       kv('k.f64', 12, struct.pack('<d', 0.5)),
       kv('tokenizer.ggml.tokens', 9, struct.pack('<IQ', 8, 3) + s('<s>') + s('a') + s('ab')),
       kv('tokenizer.ggml.scores', 9, struct.pack('<IQ', 6, 3) + struct.pack('<3f', 0, -1, -2)),
       kv('tokenizer.ggml.token_type', 9, struct.pack('<IQ', 5, 3) + struct.pack('<3i', 3, 1, 1))]
f16_one = struct.pack('<H', 0x3C00)
tensors = [('token_embd.weight', [32, 3], 0, struct.pack('<96f', *[random.uniform(-1, 1) for _ in range(96)])),
           ('blk.0.attn_q.weight', [32, 2], 8, b''.join(f16_one + rnd(32) for _ in range(2))),
           ('blk.0.attn_k.weight', [32, 1], 2, f16_one + rnd(16)),
           ('blk.0.ffn_up.weight', [256, 1], 12, f16_one + f16_one + rnd(140)),
           ('blk.0.ffn_gate.weight', [256, 1], 13, f16_one + f16_one + rnd(172)),
           ('blk.0.ffn_down.weight', [256, 1], 14, rnd(208) + f16_one),
           ('output_norm.weight', [32], 1, struct.pack('<32H', *([0x3C00] * 32))),
           ('blk.0.attn_norm.weight', [32], 30, struct.pack('<32H', *([0x3F80] * 32)))]
os.makedirs('fuzz/corpus_gguf', exist_ok=True)
with open('fuzz/corpus_gguf/all_types_v3.gguf', 'wb') as f:
    f.write(gguf(3, kvs, tensors))
with open('fuzz/corpus_gguf/aligned64_v2.gguf', 'wb') as f:
    f.write(gguf(2, kvs[:4] + [kv('general.alignment', 4, struct.pack('<I', 64))], tensors[:3], 64))
with open('fuzz/corpus_gguf/empty.gguf', 'wb') as f:
    f.write(gguf(3, [], []))
