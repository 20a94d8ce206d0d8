#!/usr/bin/python3
"""convert_original_pt.py - a checkpoint trained by the original LoLCATs code
(HazyResearch/lolcats: the .pt files its trainers save, stage 1 "distill" and
stage 2 "LoRA" finetune) into the safetensors checkpoint that
`lolcats eval / generate / finetune --lolcats` read. Needs Debian's
python3-torch (torch.load only; no transformers, no peft):

    /usr/bin/python3 tools/convert_original_pt.py --model MODEL_DIR \\
        --distill distill.pt [--lora finetune.pt] --out ckpt.safetensors \\
        [--window 64] [--variant tk|sw] [--feature-map softmax_dim] \\
        [--lora-alpha 16] [--halfspace] [--affine] [--eps 1e-12] [--force]

MODEL_DIR is the Hugging Face directory of the base model the checkpoint was
trained on (its config.json gives layers, heads, kv heads, head_dim, hidden
size). The .pt files may hold {'model_state_dict': {...}, ...} (what the
original's trainers save) or a flat state dict. Names read (LOLCATS_MATH.md
section 10), with any leading "module." / "base_model.model." stripped first:
    model.layers.{i}.self_attn.feature_map_{q,k}.mlp.layer   (H, D, f)
    model.layers.{i}.self_attn.feature_map_{q,k}.mlp.bias    (1, H, 1, 1) T2R only
    model.layers.{i}.self_attn.window_factors                (1, H, 1, 1)
    model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_{A,B}[.default].weight
Feature maps / window factors found in the LoRA file (trained in stage 2 with
train_attention) replace those of the distill file. Everything is written as
F32 with the checkpoint metadata (lolcats_format 1, the model's shapes, the
window / variant / feature map given here: the original keeps those in its
YAML configs, so pass the values of the config you trained with).
"""
import argparse, json, os, re, struct, sys

import torch

LAYER_RE = re.compile(r'^model\.layers\.(\d+)\.self_attn\.(.+)$')


def fail(msg):
    sys.stderr.write('convert_original_pt: error: %s\n' % msg)
    sys.exit(1)


def load_state(path):
    try:
        obj = torch.load(path, map_location='cpu')
    except Exception as e:  # noqa: BLE001 - report any unreadable file the same way
        fail('%s: cannot read as a PyTorch checkpoint (%s)' % (path, e))
    if isinstance(obj, dict) and isinstance(obj.get('model_state_dict'), dict):
        obj = obj['model_state_dict']
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        fail('%s: neither a state dict of tensors nor a {"model_state_dict": ...} checkpoint' % path)
    out = {}
    for k, v in obj.items():
        n = k
        for pre in ('module.', 'base_model.model.'):
            if n.startswith(pre):
                n = n[len(pre):]
        out[n] = v
    return out


def write_safetensors(path, tensors, meta):
    hdr, blobs, off = {'__metadata__': meta}, [], 0
    for name in sorted(tensors):
        b = tensors[name].detach().to(torch.float32).contiguous().numpy().astype('<f4').tobytes()
        hdr[name] = {'dtype': 'F32', 'shape': list(tensors[name].shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    tmp = path + '.tmp.%d' % os.getpid()
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', required=True, help='Hugging Face directory of the base model')
    ap.add_argument('--distill', required=True, help='stage 1 .pt (feature maps, window factors)')
    ap.add_argument('--lora', help='stage 2 .pt (LoRA A/B on q/k/v/o)')
    ap.add_argument('--out', required=True)
    ap.add_argument('--window', type=int, default=64)
    ap.add_argument('--variant', choices=['tk', 'sw'], default='tk')
    ap.add_argument('--feature-map', choices=['softmax_dim', 'exp_dim', 'pos_elu', 'relu'], default='softmax_dim')
    ap.add_argument('--lora-alpha', type=float, default=16.0)
    ap.add_argument('--halfspace', action='store_true')
    ap.add_argument('--affine', action='store_true')
    ap.add_argument('--eps', type=float, default=1e-12)
    ap.add_argument('--force', action='store_true', help='replace an existing --out')
    a = ap.parse_args()
    if os.path.exists(a.out) and not a.force:
        fail('%s exists: pass --force to replace it' % a.out)
    try:
        cfg = json.load(open(os.path.join(a.model, 'config.json')))
    except (OSError, ValueError) as e:
        fail('%s/config.json: %s' % (a.model, e))
    L, H = cfg['num_hidden_layers'], cfg['num_attention_heads']
    Hk = cfg.get('num_key_value_heads') or H
    dim = cfg['hidden_size']
    D = cfg.get('head_dim') or dim // H
    out, fdim, rank = {}, None, 0
    for src in [a.distill] + ([a.lora] if a.lora else []):
        for name, t in load_state(src).items():
            m = LAYER_RE.match(name)
            if not m:
                continue  # other trainable weights are not part of a LoLCATs checkpoint
            l, rest = int(m.group(1)), m.group(2)
            if l >= L:
                fail('%s: tensor %s is for layer %d; the model has %d layers (wrong --model?)' % (src, name, l, L))
            pm = re.match(r'^([qkvo])_proj\.lora_([AB])(?:\.default)?\.weight$', rest)
            if pm:
                tg, ab = pm.group(1), pm.group(2)
                n_in = H * D if tg == 'o' else dim
                n_out = {'q': H * D, 'k': Hk * D, 'v': Hk * D, 'o': dim}[tg]
                r = t.shape[0] if ab == 'A' else t.shape[1]
                want = (r, n_in) if ab == 'A' else (n_out, r)
                if tuple(t.shape) != want or (rank and r != rank):
                    fail('%s: %s has shape %s, expected %s (rank %d)' % (src, name, list(t.shape), list(want), rank or r))
                rank = r
                out['base_model.model.model.layers.%d.self_attn.%s_proj.lora_%s.default.weight' % (l, tg, ab)] = t
            elif rest in ('feature_map_q.mlp.layer', 'feature_map_k.mlp.layer'):
                if t.dim() != 3 or t.shape[0] != H or t.shape[1] != D or (fdim and t.shape[2] != fdim):
                    fail('%s: %s has shape %s, expected [%d, %d, f]' % (src, name, list(t.shape), H, D))
                fdim = t.shape[2]
                out['model.layers.%d.self_attn.%s' % (l, rest)] = t
            elif rest in ('window_factors', 'feature_map_q.mlp.bias', 'feature_map_k.mlp.bias'):
                if t.numel() != H:
                    fail('%s: %s has %d elements, expected %d (one per head)' % (src, name, t.numel(), H))
                out['model.layers.%d.self_attn.%s' % (l, rest)] = t.reshape(1, H, 1, 1)
    for l in range(L):
        for part in ('feature_map_q.mlp.layer', 'feature_map_k.mlp.layer', 'window_factors'):
            if 'model.layers.%d.self_attn.%s' % (l, part) not in out:
                fail('layer %d has no %s in %s%s' % (l, part, a.distill, ' or ' + a.lora if a.lora else ''))
        for tg in 'qkvo':
            has = ['base_model.model.model.layers.%d.self_attn.%s_proj.lora_%s.default.weight' % (l, tg, ab) in out
                   for ab in 'AB']
            if has[0] != has[1]:
                fail('layer %d %s_proj: LoRA A and B must come together' % (l, tg))
    meta = {'lolcats_format': '1', 'variant': a.variant, 'window': str(a.window), 'feature_map': a.feature_map,
            'feature_dim': str(fdim), 'halfspace': str(int(a.halfspace)), 'eps': repr(a.eps),
            'affine': str(int(a.affine)), 'lora_rank': str(rank), 'lora_alpha': repr(a.lora_alpha),
            'n_layers': str(L), 'n_heads': str(H), 'n_kv_heads': str(Hk), 'head_dim': str(D), 'dim': str(dim),
            'rope': 'rotate_half', 'stage': 'converted from the original implementation',
            'source': os.path.basename(a.distill) + (' + ' + os.path.basename(a.lora) if a.lora else '')}
    write_safetensors(a.out, out, meta)
    print('%s: %d tensors (%d layers, feature dim %d, LoRA rank %d)' % (a.out, len(out), L, fdim, rank))


if __name__ == '__main__':
    main()
