#!/usr/bin/python3
"""qwen_reference.py - an independent float32 PyTorch forward of Qwen2 / Qwen2.5
(Qwen2ForCausalLM) and Qwen3 (Qwen3ForCausalLM) checkpoints, written from the
published model definitions (Hugging Face transformers' modeling_qwen2.py and
modeling_qwen3.py), and the golden file tests/test_qwen.c checks. Run by hand,
never in CI (Debian's python3-torch; no transformers needed):

    build/lolcats synth --like qwen2-0.5b --layers 2 --dim 32 --hidden 48 --heads 4 \\
        --kv-heads 2 --vocab 97 --dtype f32 --seed 7 --out build/qwen2-tiny
    /usr/bin/python3 tools/qwen_reference.py build/qwen2-tiny tests/data/qwen2_tiny_ref.safetensors
    (Qwen3: --like qwen3-0.6b ... --head-dim 16 --seed 8 --out build/qwen3-tiny)

The architecture, as the definitions give it (x: hidden states, float32):
    h = rms(x) * input_layernorm;  q = h Wq^T (+ bq);  k = h Wk^T (+ bk);  v = h Wv^T (+ bv)
        Qwen2: q/k/v_proj have biases, o_proj none.
        Qwen3: no biases (attention_bias false); q and k viewed as heads of
               head_dim and RMS-normed per head (q_norm / k_norm, eps
               rms_norm_eps) BEFORE RoPE.
    RoPE rotate_half, inv_freq = theta^(-2i/D); causal softmax attention with
    GQA (kv head = h // (H/Hk)), scale D^-1/2; x += o_proj(attn)
    x += down(silu(gate(rms(x) * post_attention_layernorm)) * up(...))
    logits = lm_head(rms(x) * norm)   (lm_head = embed_tokens when tied)
use_sliding_window must be false (the released models): no window then.

Stores: ids (I32, the prompt), logits (F32, every position), greedy (I32, the
next 8 greedy tokens, full recompute each step) and the config in metadata.
"""
import json, os, struct, sys
import numpy as np
import torch

PROMPT = [3, 17, 42, 5, 88, 61, 9, 23, 70, 1, 54, 33]
STEPS = 8


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
            a = (np.frombuffer(raw, dtype='<u2').astype(np.uint32) << 16).view(np.float32)
        elif e['dtype'] == 'F16':
            a = np.frombuffer(raw, dtype='<f2').astype(np.float32)
        elif e['dtype'] == 'F32':
            a = np.frombuffer(raw, dtype='<f4').copy()
        else:
            raise SystemExit('unsupported dtype ' + e['dtype'])
        out[name] = torch.from_numpy(a.reshape(e['shape']).copy())
    return out


def load(d):
    cfg = json.load(open(os.path.join(d, 'config.json')))
    idx = os.path.join(d, 'model.safetensors.index.json')
    w = {}
    if os.path.exists(idx):
        for f in sorted(set(json.load(open(idx))['weight_map'].values())):
            w.update(read_safetensors(os.path.join(d, f)))
    else:
        w = read_safetensors(os.path.join(d, 'model.safetensors'))
    return cfg, w


def rms(x, wt, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return wt * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward(cfg, w, ids):
    arch = cfg['architectures'][0]
    assert arch in ('Qwen2ForCausalLM', 'Qwen3ForCausalLM'), arch
    assert not cfg.get('use_sliding_window', False)
    qwen3 = arch == 'Qwen3ForCausalLM'
    H, Hk = cfg['num_attention_heads'], cfg['num_key_value_heads']
    D = cfg.get('head_dim') or cfg['hidden_size'] // H
    eps, theta = cfg['rms_norm_eps'], cfg.get('rope_theta', 10000.0)
    T = len(ids)
    x = w['model.embed_tokens.weight'][torch.tensor(ids)]
    inv = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
    emb = torch.cat((ang, ang), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((T, T), float('-inf')).triu(1)
    for l in range(cfg['num_hidden_layers']):
        p = 'model.layers.%d.' % l
        h = rms(x, w[p + 'input_layernorm.weight'], eps)
        q = h @ w[p + 'self_attn.q_proj.weight'].T
        k = h @ w[p + 'self_attn.k_proj.weight'].T
        v = h @ w[p + 'self_attn.v_proj.weight'].T
        if not qwen3:
            q = q + w[p + 'self_attn.q_proj.bias']
            k = k + w[p + 'self_attn.k_proj.bias']
            v = v + w[p + 'self_attn.v_proj.bias']
        q = q.view(T, H, D)
        k = k.view(T, Hk, D)
        v = v.view(T, Hk, D)
        if qwen3:
            q = rms(q, w[p + 'self_attn.q_norm.weight'], eps)
            k = rms(k, w[p + 'self_attn.k_norm.weight'], eps)
        q = q.transpose(0, 1)  # (H, T, D)
        k = k.transpose(0, 1)
        v = v.transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // Hk, dim=0)
        v = v.repeat_interleave(H // Hk, dim=0)
        a = (q @ k.transpose(1, 2)) * (D ** -0.5) + mask
        a = torch.softmax(a, dim=-1)
        y = (a @ v).transpose(0, 1).reshape(T, H * D)
        x = x + y @ w[p + 'self_attn.o_proj.weight'].T
        h = rms(x, w[p + 'post_attention_layernorm.weight'], eps)
        g = h @ w[p + 'mlp.gate_proj.weight'].T
        u = h @ w[p + 'mlp.up_proj.weight'].T
        x = x + (torch.nn.functional.silu(g) * u) @ w[p + 'mlp.down_proj.weight'].T
    x = rms(x, w['model.norm.weight'], eps)
    cls = w['model.embed_tokens.weight'] if cfg.get('tie_word_embeddings') else w['lm_head.weight']
    return x @ cls.T


def write_safetensors(path, tensors, meta):
    hdr, blobs, off = {'__metadata__': meta}, [], 0
    for name, (dt, arr) in tensors.items():
        b = arr.astype('<f4' if dt == 'F32' else '<i4').tobytes()
        hdr[name] = {'dtype': dt, 'shape': list(arr.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    torch.set_grad_enabled(False)
    cfg, w = load(sys.argv[1])
    logits = forward(cfg, w, PROMPT)
    ids, greedy = list(PROMPT), []
    for _ in range(STEPS):
        t = int(forward(cfg, w, ids)[-1].argmax())
        greedy.append(t)
        ids.append(t)
    write_safetensors(sys.argv[2], {
        'ids': ('I32', np.array(PROMPT, dtype=np.int32)),
        'logits': ('F32', logits.numpy()),
        'greedy': ('I32', np.array(greedy, dtype=np.int32)),
    }, {'architecture': cfg['architectures'][0], 'synth': json.dumps(cfg.get('lolcats_synth', {}))})
    print('%s: %s, %d logits, greedy %s' % (sys.argv[2], cfg['architectures'][0], logits.numel(), greedy))


if __name__ == '__main__':
    main()
