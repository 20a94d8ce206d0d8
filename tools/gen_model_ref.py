#!/usr/bin/python3
"""gen_model_ref.py - an independent float32 PyTorch forward of a Llama checkpoint
(Hugging Face directory, safetensors shards), written from the architecture,
and a small reference file for tests/test_model_hf.c.

    /usr/bin/python3 tools/gen_model_ref.py ../shared/models/alpaca-llama-25m \
        tests/data/alpaca25m_ref.safetensors

Needs only torch and numpy (no transformers, safetensors or sentencepiece):
safetensors are parsed by hand and the SentencePiece-style BPE of tokenizer.json
is re-implemented here (lowest merge rank first, leftmost on ties, byte fallback).
Stores, per prompt k: ids_k (I32), nll_k (F32, next-token NLL at every position,
computed in float64 from the float32 logits), lse_k (logsumexp of the last
position), logits_sub_k (last-position logits, every 4th entry), and the
prompt texts in the metadata.
"""
import json, math, os, struct, sys
import numpy as np
import torch

def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in hdr.items():
        if name == '__metadata__':
            continue
        b, end = e['data_offsets']
        raw = data[b:end]
        if e['dtype'] == 'BF16':
            a = np.frombuffer(raw, dtype='<u2').astype(np.uint32) << 16
            a = a.view(np.float32)
        elif e['dtype'] == 'F16':
            a = np.frombuffer(raw, dtype='<f2').astype(np.float32)
        elif e['dtype'] == 'F32':
            a = np.frombuffer(raw, dtype='<f4').copy()
        else:
            raise SystemExit('dtype ' + e['dtype'])
        out[name] = torch.from_numpy(a.reshape(e['shape']).copy())
    return out

def load_weights(d):
    idx = os.path.join(d, 'model.safetensors.index.json')
    w = {}
    if os.path.exists(idx):
        files = sorted(set(json.load(open(idx))['weight_map'].values()))
    else:
        files = ['model.safetensors']
    for f in files:
        w.update(read_safetensors(os.path.join(d, f)))
    return w

class SpmBpe:
    """tokenizer.json BPE with byte fallback and the Prepend/Replace normalizer."""
    def __init__(self, path):
        tj = json.load(open(path, encoding='utf-8'))
        m = tj['model']
        self.vocab = m['vocab']
        self.rank = {}
        for i, mg in enumerate(m['merges']):
            a, b = mg.split(' ', 1) if isinstance(mg, str) else mg
            self.rank.setdefault((a, b), i)
        self.bos = self.vocab['<s>']

    def pieces(self, s):
        """ids of the normalized string s: byte fallback, then the ranked merges."""
        sym = []
        for ch in s:
            if ch in self.vocab:
                sym.append(ch)
            else:
                sym.extend('<0x%02X>' % b for b in ch.encode('utf-8'))
        while True:
            best = None
            for i in range(len(sym) - 1):
                r = self.rank.get((sym[i], sym[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            sym[i:i + 2] = [sym[i] + sym[i + 1]]
        return [self.vocab[p] for p in sym]

    def encode(self, text, bos=True):
        ids = [self.bos] if bos else []
        if not text:
            return ids
        return ids + self.pieces('\u2581' + text.replace(' ', '\u2581'))

def forward(w, cfg, ids):
    """float32 logits (T, V) of the token ids, causal, from position 0."""
    dim = cfg['hidden_size']; L = cfg['num_hidden_layers']; H = cfg['num_attention_heads']
    Hk = cfg.get('num_key_value_heads', H); D = cfg.get('head_dim') or dim // H
    eps = cfg['rms_norm_eps']; theta = cfg.get('rope_theta', 10000.0)
    T = len(ids)
    def rms(x, g):
        return g * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))
    inv = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
    emb = torch.cat([ang, ang], dim=-1)
    cos, sin = emb.cos(), emb.sin()
    def rot(x):  # x (heads, T, D), rotate_half
        x1, x2 = x[..., :D // 2], x[..., D // 2:]
        return x * cos + torch.cat([-x2, x1], dim=-1) * sin
    x = w['model.embed_tokens.weight'][torch.tensor(ids)]
    mask = torch.full((T, T), float('-inf')).triu(1)
    for l in range(L):
        p = 'model.layers.%d.' % l
        h = rms(x, w[p + 'input_layernorm.weight'])
        q = (h @ w[p + 'self_attn.q_proj.weight'].T).view(T, H, D).transpose(0, 1)
        k = (h @ w[p + 'self_attn.k_proj.weight'].T).view(T, Hk, D).transpose(0, 1)
        v = (h @ w[p + 'self_attn.v_proj.weight'].T).view(T, Hk, D).transpose(0, 1)
        q, k = rot(q), rot(k)
        k = k.repeat_interleave(H // Hk, dim=0)
        v = v.repeat_interleave(H // Hk, dim=0)
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(D) + mask, dim=-1)
        o = (a @ v).transpose(0, 1).reshape(T, H * D)
        x = x + o @ w[p + 'self_attn.o_proj.weight'].T
        h = rms(x, w[p + 'post_attention_layernorm.weight'])
        g = h @ w[p + 'mlp.gate_proj.weight'].T
        u = h @ w[p + 'mlp.up_proj.weight'].T
        x = x + (torch.nn.functional.silu(g) * u) @ w[p + 'mlp.down_proj.weight'].T
    x = rms(x, w['model.norm.weight'])
    cls = w.get('lm_head.weight', w['model.embed_tokens.weight'])
    return x @ cls.T

def write_safetensors(path, tensors, meta):
    hdr, off, blobs = {}, 0, []
    for name, a in tensors:
        b = a.tobytes()
        dt = {np.dtype('float32'): 'F32', np.dtype('int32'): 'I32'}[a.dtype]
        hdr[name] = {'dtype': dt, 'shape': list(a.shape), 'data_offsets': [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    hdr['__metadata__'] = meta
    h = json.dumps(hdr, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))

def main():
    d, out = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(d, 'config.json')))
    w = load_weights(d)
    tok = SpmBpe(os.path.join(d, 'tokenizer.json'))
    tail = open(os.path.join(d, '../../data/tinystories.valid-head.txt'), encoding='utf-8').read()
    start = tail.index('Once upon a time', int(len(tail) * 0.95))
    prompts = [
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nGive three tips for staying healthy.\n\n"
        "### Response:\n",
        "Once upon a time, there was a little dog named Max. He liked to",
        tail[start:start + 2600],
    ]
    tensors, meta = [], {'source': 'tools/gen_model_ref.py', 'model': os.path.basename(d.rstrip('/')),
                         'count': str(len(prompts))}
    torch.set_num_threads(2)
    with torch.no_grad():
        for i, p in enumerate(prompts):
            ids = tok.encode(p)
            logits = forward(w, cfg, ids)
            lg = logits.double()
            lse = torch.logsumexp(lg, dim=-1)
            nll = (lse[:-1] - lg[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]).float()
            tensors += [('ids_%d' % i, np.array(ids, dtype=np.int32)),
                        ('nll_%d' % i, nll.numpy().astype(np.float32)),
                        ('lse_%d' % i, np.array([lse[-1].item()], dtype=np.float32)),
                        ('logits_sub_%d' % i, logits[-1, ::4].numpy().astype(np.float32))]
            meta['prompt_%d' % i] = p
            print('prompt %d: %d tokens, mean NLL %.6f, argmax last %d' %
                  (i, len(ids), nll.double().mean().item(), int(logits[-1].argmax())))
    write_safetensors(out, tensors, meta)

if __name__ == '__main__':
    main()
