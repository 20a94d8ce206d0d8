#!/usr/bin/env python3
"""orig_recipe.py - an independent PyTorch run of the ORIGINAL LoLCATs recipe
(HazyResearch/lolcats @ 375df84, as /work/shared/docs/LOLCATS_MATH.md specifies it)
on the same data splits as `lolcats linearize`, scored the way `lolcats eval` scores.

    python3 tools/orig_recipe.py --model DIR --train FILE --held FILE \\
        [--seq-len 1024] [--distill-tokens 1000000] [--finetune-tokens 1000000] \\
        [--seed 0] [--no-attention-transfer] --out DIR

What it does (fp32 throughout; CUDA when available with TF32 off, else CPU):
  * its own Llama forward in plain torch (no transformers): RMSNorm, rotate-half RoPE,
    GQA, SwiGLU, tied or untied classifier; weights from the safetensors shards;
  * the original's LoLCATs layer: Hedgehog feature maps (softmax_dim, f = 64, identity
    init, one map per query head, after RoPE and GQA, clamp 1e-12), window factors
    (sigmoid, init logit(0.1)), the hybrid `tk` sliding-window softmax + linear attention
    in the original's quadratic form (masks from the original's get_masks, window max
    over the window keys only, no eps in the denominator);
  * stage 1, attention transfer: teacher forced (every layer gets the teacher's hidden
    states), loss = 1000 * mean over layers of MSE(y_student, y_teacher) over (B,H,N,D)
    before o_proj; AdamW lr 1e-2 (0.9, 0.999, 1e-8, wd 0), batch 1 x 8 accumulated
    sequences (loss / 8), ReduceLROnPlateau(factor 0.1, patience 10, min 1e-5) stepped
    on the validation loss, best checkpoint by validation loss, loaded at the end;
  * stage 2, LoRA r 8, alpha 16, dropout 0 on q/k/v/o (A kaiming-uniform(a=sqrt5), B 0),
    feature maps and window factors frozen, next-token cross-entropy through the
    whole hybrid model, AdamW lr 1e-4, same loop;
  * the original trainer's loop (src/trainer/default_lm.py, --trainer original, the
    default): optimizer step when (micro_step + 1) % 8 == 0 with micro_step counted
    across epochs; model.zero_grad() at the start of every epoch (a partial
    accumulation at an epoch's end is dropped); evaluation every K optimizer steps and
    at the last sequence of every epoch (the scheduler steps at every evaluation, the
    best checkpoint is only taken at multiples of K); stops at max_steps = budget /
    (seq_len * 8) with no final evaluation unless K divides it. --trainer c runs our
    C's loop instead (a continuous stream, evaluation every K steps and at the last step);
  * data exactly as tools/data.c: [BOS] + text tokenized once, packed into seq_len
    chunks, validation = the last 8 chunks; Alpaca JSONL: section 9 template, prompt
    with BOS, response + EOS without, labels on response tokens, the first 200 records
    packed for validation (at most --val-seqs chunks); the training chunks visited in
    the C's seeded order (tool_data_pick: xoshiro256** Fisher-Yates per epoch;
    --order torch: torch.randperm per epoch instead);
  * held-out scoring as tools/cmd_eval.c: text as [BOS] + text in consecutive windows of
    --ctx tokens from an empty state (each token after BOS predicted once, the
    linearized model runs one tk prefill per window); Alpaca records one by one,
    response + EOS tokens counted;
  * checkpoints as safetensors with the original's tensor names (spec section 10) and
    the metadata `lolcats eval --lolcats` reads, so our C can score them.

The summary JSON (stdout and OUT/summary.json) has the teacher / stage 1 / stage 2
held-out NLL, the ratios exp(NLL - teacher NLL), validation losses, per-layer stage 1
validation loss before / after, and wall times.

Other modes: --eval-only CKPT scores a checkpoint (ours or the C's, or 'identity') on
--held; --stage1-from CKPT skips stage 1 and starts stage 2 from that checkpoint.

README's comparison ("The original recipe on the same splits") was made with this
script on the project's GPU machine (an H100, torch 2.11, about 95 s per two-stage run),
with the split files of README's recipe copied beside the model in an ignored folder:
    python3 tools/orig_recipe.py --model M --train ts_train.txt --held ts_held.txt \
        --seq-len 1024 --ctx 1024 --distill-tokens 1000000 --finetune-tokens 1000000 \
        --seed 0 --out res/ts_s0          # also wt_*.txt, al_*.jsonl; --no-attention-transfer
Checked here first on the CPU (Debian's torch 1.13): the teacher's held-out NLL and the
stage 1 initial validation loss equal the C's (1.9867272 vs 1.986727; 124.284787 vs
124.284791), the first stage 1 step losses agree to 1e-8 relative, stage 2 from the C's
stage 1 checkpoint tracks the C's losses within 1e-5, and each side's evaluation scores
the other side's checkpoints to 1e-7.
"""
import argparse
import json
import math
import os
import re
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_model_ref import load_weights, read_safetensors, SpmBpe  # noqa: E402  (the repo's reader and BPE)
from gen_golden import masks_sw, masks_tk  # noqa: E402  (the original's masks)

LOGIT_01 = -2.1972245773362196   # logit(0.1): window-factor init
HYBRID_MASK_VALUE = -1e8         # the original's masked_fill value in the window branch
FMAP_EPS = 1e-12
M64 = (1 << 64) - 1


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# The C's random numbers (lolcats.h lc_rng: splitmix64 seeds xoshiro256**)
# ---------------------------------------------------------------------------
def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


class XoRng:
    def __init__(self, seed):
        x = seed & M64
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            self.s.append(z ^ (z >> 31))

    def u64(self):
        s = self.s
        out = (_rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return out

    def uniform_f32(self):
        return np.float32(self.u64() >> 40) * np.float32(1.0 / 16777216.0)


def c_epoch_perm(n, seed, epoch):
    """tools/data.c tool_data_pick: the order of epoch `epoch`."""
    r = XoRng((seed * 0x9E3779B97F4A7C15 + epoch + 1) & M64)
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = r.u64() % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


# ---------------------------------------------------------------------------
# Tokenizer: sentencepiece when importable (checked against the BPE below), else
# the repo's SpmBpe (tokenizer.json merges, byte fallback), run word by word with
# a cache (SentencePiece never merges across the words it splits at U+2581 runs).
# ---------------------------------------------------------------------------
_WORD_RE = re.compile('\u2581+[^\u2581]*|[^\u2581]+')


class Tokenizer:
    def __init__(self, model_dir, force_bpe=False):
        self.bpe = SpmBpe(os.path.join(model_dir, 'tokenizer.json'))
        self.bos = self.bpe.bos
        self.cache = {}
        self.sp = None
        self.kind = 'SpmBpe (tools/gen_model_ref.py, pure Python)'
        if not force_bpe:
            try:
                import sentencepiece as spm
                p = os.path.join(model_dir, 'tokenizer.model')
                if os.path.exists(p):
                    self.sp = spm.SentencePieceProcessor(model_file=p)
                    self.kind = 'sentencepiece %s' % getattr(spm, '__version__', '?')
            except Exception:  # noqa: BLE001
                self.sp = None

    def _word(self, w):
        return self.bpe.pieces(w)

    def encode_bpe(self, text):
        if not text:
            return []
        out = []
        for w in _WORD_RE.findall('\u2581' + text.replace(' ', '\u2581')):
            ids = self.cache.get(w)
            if ids is None:
                ids = self._word(w)
                if len(w) < 64:
                    self.cache[w] = ids
            out.extend(ids)
        return out

    def encode(self, text, bos):
        ids = (list(self.sp.encode(text)) if text else []) if self.sp is not None else self.encode_bpe(text)
        return ([self.bos] if bos else []) + ids

    def self_check(self, texts):
        """sentencepiece vs the BPE on a few texts; falls back to the BPE on a mismatch."""
        if self.sp is None:
            return True
        for t in texts:
            a, b = list(self.sp.encode(t)) if t else [], self.encode_bpe(t)
            if a != b:
                k = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
                log('tokenizer: sentencepiece and SpmBpe differ (at token %d of a %d-char sample): using SpmBpe '
                    'for the whole run' % (k, len(t)))
                self.sp = None
                self.kind = 'SpmBpe (sentencepiece disagreed)'
                return False
        return True


# ---------------------------------------------------------------------------
# Data (tools/data.c)
# ---------------------------------------------------------------------------
PROMPT_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further "
                "context. Write a response that appropriately completes the request.\n\n### Instruction:\n%s\n\n"
                "### Input:\n%s\n\n### Response:\n")
PROMPT_NO_INPUT = ("Below is an instruction that describes a task. Write a response that appropriately completes "
                   "the request.\n\n### Instruction:\n%s\n\n### Response:\n")


def read_text(path):
    with open(path, 'rb') as fh:
        return fh.read().decode('utf-8')


def read_alpaca(path):
    recs = []
    for line in read_text(path).split('\n'):
        if not line.strip(' \t\r'):
            continue
        r = json.loads(line)
        recs.append(r)
    return recs


def alpaca_prompt(r):
    inp = r.get('input') or ''
    return PROMPT_INPUT % (r['instruction'], inp) if inp else PROMPT_NO_INPUT % r['instruction']


def alpaca_encode(tok, eos, r):
    p = tok.encode(alpaca_prompt(r), bos=True)
    resp = tok.encode(r['output'], bos=False) + [eos]
    return p + resp, len(p)


def is_jsonl(path):
    return path.endswith('.jsonl')


class Data:
    """Packed chunks: tokens (n, T), labels (n, T) (labels[i] = target of position i,
    -1 where ignored: Alpaca prompts and the last position of every chunk)."""

    def __init__(self, path, tok, eos, T, val_seqs=8, val_records=200, max_records=0):
        self.T = T
        self.is_jsonl = is_jsonl(path)
        tr_t, tr_l, va_t, va_l = [], [], [], []
        if self.is_jsonl:
            recs = read_alpaca(path)
            if max_records > 0:
                recs = recs[:max_records]
            if tok.sp is not None:
                tok.self_check([alpaca_prompt(r) for r in recs[:30]] + [r['output'] for r in recs[:60]])
            self.records = 0
            self.val_records = 0
            for i, r in enumerate(recs):
                ids, n_p = alpaca_encode(tok, eos, r)
                lab = [-1] * n_p + ids[n_p:]
                if i < val_records:
                    va_t += ids
                    va_l += lab
                    self.val_records += 1
                else:
                    tr_t += ids
                    tr_l += lab
                    self.records += 1
        else:
            text = read_text(path)
            if tok.sp is not None:
                tok.self_check([text[:30000], text[len(text) // 2:len(text) // 2 + 30000]])
            tr_t = tok.encode(text, bos=True)
            tr_l = list(tr_t)
        self.stream_tokens = len(tr_t) + len(va_t)
        n_chunks = len(tr_t) // T
        tr_t = torch.tensor(tr_t[:n_chunks * T], dtype=torch.long).view(n_chunks, T)
        tr_l = torch.tensor(tr_l[:n_chunks * T], dtype=torch.long).view(n_chunks, T)
        if not va_t:   # text: the last chunks
            nv = val_seqs if val_seqs < n_chunks else 0
            if val_seqs > 0 and n_chunks - val_seqs < 1:
                nv = 1 if n_chunks > 1 else 0
            self.val_tokens = tr_t[n_chunks - nv:]
            self.val_labels = self.shift(tr_l[n_chunks - nv:])
            self.n = n_chunks - nv
        else:
            nv_all = len(va_t) // T
            nv = min(nv_all, val_seqs) if val_seqs > 0 else nv_all
            vt = torch.tensor(va_t[:nv_all * T], dtype=torch.long).view(nv_all, T)
            vl = torch.tensor(va_l[:nv_all * T], dtype=torch.long).view(nv_all, T)
            self.val_tokens = vt[:nv]
            self.val_labels = self.shift(vl[:nv])
            self.n = n_chunks
        self.tokens = tr_t[:self.n]
        self.labels = self.shift(tr_l[:self.n])
        self.n_val = self.val_tokens.shape[0]

    @staticmethod
    def shift(lab):
        # within a chunk: label of position i is the stream label of i + 1; the last is -1
        out = torch.full_like(lab, -1)
        out[:, :-1] = lab[:, 1:]
        return out


class Order:
    """Index of the k-th training chunk: the C's seeded stream of shuffled epochs, or torch's."""

    def __init__(self, n, seed, kind):
        self.n, self.seed, self.kind = n, seed, kind
        self.epoch, self.perm = -1, None

    def epoch_perm(self, e):
        if e != self.epoch:
            if self.kind == 'c':
                self.perm = c_epoch_perm(self.n, self.seed, e)
            else:
                g = torch.Generator()
                g.manual_seed(self.seed * 1000003 + e)
                self.perm = torch.randperm(self.n, generator=g).tolist()
            self.epoch = e
        return self.perm

    def pick(self, k):
        return self.epoch_perm(k // self.n)[k % self.n]


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------
class Llama:
    def __init__(self, model_dir, device, cfg=None, w=None):
        """from a Hugging Face directory, or (model_dir None) from a config dict and
        a dict of weight tensors already in memory (bench_stage's synthetic model)."""
        if cfg is None:
            cfg = json.load(open(os.path.join(model_dir, 'config.json')))
        self.cfg = cfg
        self.dim = cfg['hidden_size']
        self.L = cfg['num_hidden_layers']
        self.H = cfg['num_attention_heads']
        self.Hk = cfg.get('num_key_value_heads') or self.H
        self.D = cfg.get('head_dim') or self.dim // self.H
        self.eps = cfg.get('rms_norm_eps', 1e-5)
        rp = cfg.get('rope_parameters') or {}
        self.theta = cfg.get('rope_theta', rp.get('rope_theta', 10000.0))
        rs = cfg.get('rope_scaling')
        if rs and rs.get('rope_type', rs.get('type')) not in (None, 'default'):
            raise SystemExit('orig_recipe.py: rope_scaling %r is not implemented' % rs)
        self.max_pos = cfg.get('max_position_embeddings', 2048)
        self.vocab = cfg['vocab_size']
        eos = cfg.get('eos_token_id', 2)
        self.eos = eos[0] if isinstance(eos, list) else eos
        self.bos = cfg.get('bos_token_id', 1)
        self.device = device
        if w is None:
            w = load_weights(model_dir)
        self.w = {k: v.to(device=device, dtype=torch.float32).contiguous() for k, v in w.items()}
        self.emb = self.w['model.embed_tokens.weight']
        self.cls = self.w.get('lm_head.weight', self.emb)
        if cfg.get('tie_word_embeddings', False):
            self.cls = self.emb
        # RoPE as Hugging Face computes it (float32)
        D = self.D
        inv = 1.0 / (self.theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
        ang = torch.arange(self.max_pos, dtype=torch.float32)[:, None] * inv[None, :]
        emb = torch.cat([ang, ang], dim=-1)
        self.cos = emb.cos().to(device)
        self.sin = emb.sin().to(device)
        self.n_rep = self.H // self.Hk

    def p(self, l, name):
        return self.w['model.layers.%d.%s' % (l, name)]

    def rms(self, x, g):
        return g * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def rope(self, x):  # (h, T, D)
        T, D = x.shape[1], self.D
        cos, sin = self.cos[:T], self.sin[:T]
        x1, x2 = x[..., :D // 2], x[..., D // 2:]
        return x * cos + torch.cat([-x2, x1], dim=-1) * sin

    def qkv(self, l, x, lora=None, scale=0.0):
        """x (T, dim) -> q (H,T,D), k, v (H,T,D) after RoPE and GQA (repeat_kv)."""
        T = x.shape[0]
        h = self.rms(x, self.p(l, 'input_layernorm.weight'))
        q = lin(h, self.p(l, 'self_attn.q_proj.weight'), lora_of(lora, l, 0), scale)
        k = lin(h, self.p(l, 'self_attn.k_proj.weight'), lora_of(lora, l, 1), scale)
        v = lin(h, self.p(l, 'self_attn.v_proj.weight'), lora_of(lora, l, 2), scale)
        q = self.rope(q.view(T, self.H, self.D).transpose(0, 1))
        k = self.rope(k.view(T, self.Hk, self.D).transpose(0, 1))
        v = v.view(T, self.Hk, self.D).transpose(0, 1)
        if self.n_rep > 1:
            k = k.repeat_interleave(self.n_rep, dim=0)
            v = v.repeat_interleave(self.n_rep, dim=0)
        return q, k, v

    def out(self, l, x, y, lora=None, scale=0.0):
        """residual after attention (y (H,T,D) per-head outputs) and the MLP."""
        T = x.shape[0]
        o = lin(y.transpose(0, 1).reshape(T, self.H * self.D), self.p(l, 'self_attn.o_proj.weight'),
                lora_of(lora, l, 3), scale)
        x = x + o
        h = self.rms(x, self.p(l, 'post_attention_layernorm.weight'))
        g = h @ self.p(l, 'mlp.gate_proj.weight').t()
        u = h @ self.p(l, 'mlp.up_proj.weight').t()
        return x + (F.silu(g) * u) @ self.p(l, 'mlp.down_proj.weight').t()

    def logits(self, x):
        return self.rms(x, self.w['model.norm.weight']) @ self.cls.t()

    def embed(self, ids):
        return self.emb[ids]


def lin(x, W, ab=None, scale=0.0):
    y = x @ W.t()
    if ab is not None:
        A, B = ab
        y = y + ((x @ A.t()) @ B.t()) * scale
    return y


def lora_of(lora, l, tg):
    return None if lora is None else lora[l][tg]


# ---------------------------------------------------------------------------
# Attention (the original's quadratic forms)
# ---------------------------------------------------------------------------
_MASKS = {}


def get_masks(variant, window, q_len, k_len, device):
    key = (variant, window, q_len, k_len, str(device))
    if key in _MASKS:
        return _MASKS[key]
    # the original's get_masks of linear_window_attention_tk / _sw, as gen_golden builds them
    win, lin_ = (masks_tk if variant == 'tk' else masks_sw)(window, q_len, k_len)
    _MASKS[key] = (win.to(device), lin_.to(device))
    return _MASKS[key]


def causal_upper(n, device):
    key = ('causal', n, str(device))
    if key not in _MASKS:
        _MASKS[key] = torch.ones((n, n), dtype=torch.bool).triu(1).to(device)
    return _MASKS[key]


def softmax_attention(q, k, v):
    """teacher: causal softmax(q k^T / sqrt(D)) v, fp32."""
    s = (q @ k.transpose(-1, -2)) * (k.shape[-1] ** -0.5)
    s = s.masked_fill(causal_upper(s.shape[-1], s.device), -torch.finfo(s.dtype).max)
    return torch.softmax(s, dim=-1) @ v


def feature_map(x, W):
    """Hedgehog softmax_dim, fullspace: x (H,T,D), W (H,D,f) -> (H,T,2f), clamped at 1e-12."""
    z = torch.einsum('hdf,hld->hlf', W, x)
    return torch.cat([torch.softmax(z, dim=-1), torch.softmax(-z, dim=-1)], dim=-1).clamp(min=FMAP_EPS)


def hybrid_attention(q, k, v, Wq, Wk, wf, variant, window):
    """sliding-window softmax + linear attention (hybrid_attention_quadratic), q k v (H,T,D)."""
    fq, fk = feature_map(q, Wq), feature_map(k, Wk)
    mw, ml = get_masks(variant, window, q.shape[-2], k.shape[-2], q.device)
    gamma = torch.sigmoid(wf).view(-1, 1, 1)
    s = (q @ k.transpose(-1, -2)) * (k.shape[-1] ** -0.5)
    s = s.masked_fill(~mw, HYBRID_MASK_VALUE)
    smax = torch.amax(s, dim=-1, keepdim=True)
    a_sm = gamma * torch.exp(s - smax)
    sum_sm = a_sm.sum(dim=-1, keepdim=True)
    a_ln = (fq @ fk.transpose(-1, -2)).masked_fill(~ml, 0)   # linear_factor 1
    sum_ln = a_ln.sum(dim=-1, keepdim=True)
    y = (a_sm + a_ln) @ v
    return y / (sum_sm + sum_ln)


# ---------------------------------------------------------------------------
# LoLCATs parameters
# ---------------------------------------------------------------------------
class LolcatsParams:
    def __init__(self, m, f=64, variant='tk', window=64):
        self.f, self.variant, self.window = f, variant, window
        eye = torch.zeros(m.H, m.D, f)
        for i in range(min(m.D, f)):
            eye[:, i, i] = 1.0
        self.fq = [eye.clone().to(m.device).requires_grad_(True) for _ in range(m.L)]
        self.fk = [eye.clone().to(m.device).requires_grad_(True) for _ in range(m.L)]
        self.wf = [torch.full((m.H,), LOGIT_01, device=m.device).requires_grad_(True) for _ in range(m.L)]
        self.lora = None
        self.rank, self.alpha = 0, 16.0

    def scale(self):
        return self.alpha / self.rank if self.rank else 0.0

    def fmap_params(self):
        return self.fq + self.fk + self.wf

    def lora_params(self):
        return [t for l in self.lora for ab in l for t in ab] if self.lora else []

    def snapshot(self):
        return [t.detach().clone() for t in self.fmap_params() + self.lora_params()]

    def restore(self, snap):
        with torch.no_grad():
            for t, s in zip(self.fmap_params() + self.lora_params(), snap):
                t.copy_(s)

    def add_lora(self, m, rank, alpha, seed, init):
        self.rank, self.alpha = rank, alpha
        ins = [m.dim, m.dim, m.dim, m.H * m.D]
        outs = [m.H * m.D, m.Hk * m.D, m.Hk * m.D, m.dim]
        rng = XoRng(seed ^ 0x10C47) if init == 'c' else None
        self.lora = []
        for _l in range(m.L):
            row = []
            for tg in range(4):
                if init == 'c':   # lolcats.h lc__train_init_params: same distribution, the C's stream
                    bound = np.float32(1.0 / math.sqrt(ins[tg]))
                    u = np.array([rng.uniform_f32() for _ in range(rank * ins[tg])], dtype=np.float32)
                    A = torch.from_numpy(((np.float32(2.0) * u - np.float32(1.0)) * bound).reshape(rank, ins[tg]))
                else:             # PEFT: kaiming_uniform_(a=sqrt(5)) on torch's generator
                    A = torch.empty(rank, ins[tg])
                    torch.nn.init.kaiming_uniform_(A, a=math.sqrt(5))
                B = torch.zeros(outs[tg], rank)
                row.append((A.to(m.device).requires_grad_(True), B.to(m.device).requires_grad_(True)))
            self.lora.append(row)

    def freeze_fmaps(self):
        for t in self.fmap_params():
            t.requires_grad_(False)

    # --- safetensors, the C's checkpoint layout (lolcats.h lc_lolcats_save) ---
    def save(self, path, m, extra=None):
        ts = []
        for l in range(m.L):
            p = 'model.layers.%d.self_attn.' % l
            ts.append((p + 'feature_map_q.mlp.layer', self.fq[l]))
            ts.append((p + 'feature_map_k.mlp.layer', self.fk[l]))
            ts.append((p + 'window_factors', self.wf[l].view(1, -1, 1, 1)))
        if self.lora:
            for l in range(m.L):
                for tg, nm in enumerate('qkvo'):
                    p = 'base_model.model.model.layers.%d.self_attn.%s_proj.lora_' % (l, nm)
                    ts.append((p + 'A.default.weight', self.lora[l][tg][0]))
                    ts.append((p + 'B.default.weight', self.lora[l][tg][1]))
        meta = {'lolcats_format': '1', 'variant': self.variant, 'window': str(self.window),
                'feature_map': 'softmax_dim', 'feature_dim': str(self.f), 'halfspace': '0',
                'eps': '9.99999996e-13', 'affine': '0', 'lora_rank': str(self.rank if self.lora else 0),
                'lora_alpha': '%.9g' % self.alpha, 'n_layers': str(m.L), 'n_heads': str(m.H),
                'n_kv_heads': str(m.Hk), 'head_dim': str(m.D), 'dim': str(m.dim), 'rope': 'rotate_half',
                'source': 'tools/orig_recipe.py'}
        meta.update(extra or {})
        write_safetensors(path, [(n, t.detach().float().cpu().numpy()) for n, t in ts], meta)

    @staticmethod
    def load(path, m):
        hdr, tens = read_st(path)
        meta = hdr.get('__metadata__', {})
        lp = LolcatsParams(m, f=int(meta.get('feature_dim', 64)), variant=meta.get('variant', 'tk'),
                           window=int(meta.get('window', 64)))
        with torch.no_grad():
            for l in range(m.L):
                p = 'model.layers.%d.self_attn.' % l
                lp.fq[l].copy_(torch.from_numpy(tens[p + 'feature_map_q.mlp.layer']))
                lp.fk[l].copy_(torch.from_numpy(tens[p + 'feature_map_k.mlp.layer']))
                lp.wf[l].copy_(torch.from_numpy(tens[p + 'window_factors']).view(-1))
        r = int(meta.get('lora_rank', 0))
        if r > 0 and any('lora_A' in k for k in tens):
            lp.rank, lp.alpha = r, float(meta.get('lora_alpha', 16))
            lp.lora = []
            for l in range(m.L):
                row = []
                for nm in 'qkvo':
                    p = 'base_model.model.model.layers.%d.self_attn.%s_proj.lora_' % (l, nm)
                    row.append((torch.from_numpy(tens[p + 'A.default.weight']).to(m.device),
                                torch.from_numpy(tens[p + 'B.default.weight']).to(m.device)))
                lp.lora.append(row)
        lp.freeze_fmaps()
        return lp


def write_safetensors(path, tensors, meta):
    hdr, off, blobs = {}, 0, []
    for name, a in tensors:
        a = np.ascontiguousarray(a, dtype='<f4')
        b = a.tobytes()
        hdr[name] = {'dtype': 'F32', 'shape': list(a.shape), 'data_offsets': [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    hdr['__metadata__'] = {k: str(v) for k, v in meta.items()}
    h = json.dumps(hdr, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))
    os.replace(tmp, path)


def read_st(path):
    """(header, {name: float32 array}) of a safetensors file."""
    with open(path, 'rb') as f:
        hdr = json.loads(f.read(struct.unpack('<Q', f.read(8))[0]))
    return hdr, {k: v.numpy() for k, v in read_safetensors(path).items()}


# ---------------------------------------------------------------------------
# Forward passes
# ---------------------------------------------------------------------------
def forward_lm(m, ids, lp=None):
    """logits (T, V); lp None: softmax (teacher), else the hybrid model (with LoRA if any)."""
    x = m.embed(ids)
    for l in range(m.L):
        if lp is None:
            q, k, v = m.qkv(l, x)
            y = softmax_attention(q, k, v)
            x = m.out(l, x, y)
        else:
            q, k, v = m.qkv(l, x, lp.lora, lp.scale())
            y = hybrid_attention(q, k, v, lp.fq[l], lp.fk[l], lp.wf[l], lp.variant, lp.window)
            x = m.out(l, x, y, lp.lora, lp.scale())
    return m.logits(x)


def distill_seq(m, lp, ids, mse_factor, backward, scale):
    """stage 1 on one sequence, teacher forced; returns (loss, per-layer losses).
    loss = mse_factor * mean over layers of MSE; backward of loss * scale, layer by layer
    (the layers' graphs are independent: the same gradients as one backward of the sum)."""
    L = m.L
    per = []
    with torch.no_grad():
        x = m.embed(ids)
    for l in range(L):
        with torch.no_grad():
            q, k, v = m.qkv(l, x)
            y_true = softmax_attention(q, k, v)
        with torch.set_grad_enabled(backward):
            y_pred = hybrid_attention(q, k, v, lp.fq[l], lp.fk[l], lp.wf[l], lp.variant, lp.window)
            mse = F.mse_loss(y_pred, y_true, reduction='mean')
            if backward:
                (mse * (mse_factor / L) * scale).backward()
        per.append(mse_factor * mse.item())
        with torch.no_grad():
            x = m.out(l, x, y_true)   # teacher forcing: the teacher's output goes downstream
    return sum(per) / L, per


def lm_seq(m, lp, ids, labels, backward, scale):
    """stage 2 on one sequence: mean CE over the labelled positions; (loss, n scored)."""
    n = int((labels >= 0).sum())
    if n == 0:
        return float('nan'), 0
    with torch.set_grad_enabled(backward):
        logits = forward_lm(m, ids, lp)
        loss = F.cross_entropy(logits, labels, ignore_index=-1, reduction='mean')
        if backward:
            (loss * scale).backward()
    return loss.item(), n


# ---------------------------------------------------------------------------
# Validation and held-out scoring
# ---------------------------------------------------------------------------
def validate(m, lp, data, stage, mse_factor, weighting):
    dev = m.device
    if data.n_val == 0:
        return float('nan'), None
    if stage == 1:
        tot, layers = 0.0, [0.0] * m.L
        for i in range(data.n_val):
            loss, per = distill_seq(m, lp, data.val_tokens[i].to(dev), mse_factor, False, 1.0)
            tot += loss
            layers = [a + b for a, b in zip(layers, per)]
        return tot / data.n_val, [a / data.n_val for a in layers]
    s, cnt, per_seq = 0.0, 0, []
    with torch.no_grad():
        for i in range(data.n_val):
            loss, n = lm_seq(m, lp, data.val_tokens[i].to(dev), data.val_labels[i].to(dev), False, 1.0)
            if n == 0:
                continue
            s += loss * n
            cnt += n
            per_seq.append(loss)
    if weighting == 'tokens':
        return (s / cnt if cnt else float('nan')), None
    return (sum(per_seq) / len(per_seq) if per_seq else float('nan')), None


def score_held(m, lp, tok, path, ctx):
    """tools/cmd_eval.c: mean NLL (nats / token) and the number of tokens."""
    dev = m.device
    nll, cnt = 0.0, 0

    def score(ids, first):
        nonlocal nll, cnt
        n = len(ids)
        first = max(first, 1)
        w = 0
        while w + 1 < n:
            end = min(w + ctx, n - 1)
            inp = torch.tensor(ids[w:end], dtype=torch.long, device=dev)
            tgt = torch.tensor(ids[w + 1:end + 1], dtype=torch.long, device=dev)
            with torch.no_grad():
                lg = forward_lm(m, inp, lp).double()
                lse = torch.logsumexp(lg, dim=-1)
                tok_nll = lse - lg.gather(1, tgt[:, None]).squeeze(1)
                keep = torch.arange(w + 1, end + 1, device=dev) >= first
                nll += float(tok_nll[keep].sum())
                cnt += int(keep.sum())
            w += ctx

    if is_jsonl(path):
        for r in read_alpaca(path):
            ids, n_p = alpaca_encode(tok, m.eos, r)
            score(ids, n_p)
    else:
        score(tok.encode(read_text(path), bos=True), 1)
    return nll / max(cnt, 1), cnt


# ---------------------------------------------------------------------------
# Training loop
# ---------------------------------------------------------------------------
def run_stage(stage, m, lp, data, order, args, lr, budget, jlog):
    T, accum, K = data.T, args.grad_accum, args.val_every
    dev = m.device
    params = lp.fmap_params() if stage == 1 else lp.lora_params()
    kw = {}
    if dev.type == 'cuda' and int(torch.__version__.split('.')[0]) >= 2:
        kw['fused'] = True   # the original's optim: adamw_torch_fused
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, **kw)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode='min', factor=0.1, patience=10, min_lr=1e-5)
    max_steps = max(1, budget // (T * accum))
    res = {'stage': stage, 'steps': max_steps, 'lr0': lr, 'train_loss': [], 'evals': []}
    t0 = time.time()
    v0, layers0 = validate(m, lp, data, stage, args.mse_factor, args.val_weighting)
    res['val_loss_before'] = v0
    if layers0:
        res['layer_loss_before'] = layers0
    log('stage %d: %d optimizer steps of %d x %d tokens, lr %g; validation loss before %.6f' %
        (stage, max_steps, accum, T, lr, v0))
    best = {'val': 1e10 if args.trainer == 'original' else float('inf'), 'step': 0, 'snap': None}
    state = {'grad_step': 0, 'tokens': 0}

    def cur_lr():
        return opt.param_groups[0]['lr']

    def evaluate(save_ok):
        v, _ = validate(m, lp, data, stage, args.mse_factor, args.val_weighting)
        gs = state['grad_step']
        res['evals'].append({'step': gs, 'val_loss': v})
        if save_ok and v < best['val']:
            best.update(val=v, step=gs, snap=lp.snapshot())
        sched.step(v)
        return v

    def seq_step(idx, scale):
        ids = data.tokens[idx].to(dev)
        if stage == 1:
            loss, _ = distill_seq(m, lp, ids, args.mse_factor, True, scale)
        else:
            loss, _ = lm_seq(m, lp, ids, data.labels[idx].to(dev), True, scale)
        state['tokens'] += T
        return loss

    def log_step(losses, lr_used, val):
        gs = state['grad_step']
        ok = [x for x in losses if x == x]   # a chunk without labelled tokens gives NaN (no gradient)
        loss = sum(ok) / len(ok) if ok else float('nan')
        res['train_loss'].append(loss)
        rec = {'stage': stage, 'step': gs, 'tokens': state['tokens'], 'loss': loss, 'lr': lr_used}
        if val is not None:
            rec['val_loss'] = val
        jlog.write(json.dumps(rec) + '\n')
        jlog.flush()
        msg = 'stage %d step %d/%d: loss %.6f lr %.3g' % (stage, gs, max_steps, loss, lr_used)
        if val is not None:
            msg += ', val %.6f (best %.6f)' % (val, best['val'])
        log(msg)

    if args.trainer == 'c':   # tools/cmd_train.c run_stage
        k = 0
        while state['grad_step'] < max_steps:
            opt.zero_grad(set_to_none=False)
            losses = []
            for _a in range(accum):
                losses.append(seq_step(order.pick(k), 1.0 / accum))
                k += 1
            lr_used = cur_lr()
            opt.step()
            state['grad_step'] += 1
            gs, val = state['grad_step'], None
            if data.n_val > 0 and ((K > 0 and gs % K == 0) or gs == max_steps):
                val = evaluate(True)
            log_step(losses, lr_used, val)
    else:                     # src/trainer/default_lm.py OurTrainer.train / train_step
        micro, epoch, done = 0, 0, False
        while not done:
            perm = order.epoch_perm(epoch)
            opt.zero_grad(set_to_none=False)   # model.zero_grad(): a partial accumulation is dropped
            losses = []
            eval_for_step = False
            for ix in range(data.n):
                losses.append(seq_step(perm[ix], 1.0 / accum))
                stepped, lr_used = False, cur_lr()
                if (micro + 1) % accum == 0:
                    opt.step()
                    opt.zero_grad(set_to_none=False)
                    state['grad_step'] += 1
                    stepped = True
                micro += 1
                gs, val = state['grad_step'], None
                at_k = K > 0 and gs % K == 0 and gs > 0
                if (at_k and not eval_for_step) or ix == data.n - 1:
                    if data.n_val > 0:
                        val = evaluate(at_k)   # eval_step saves only at multiples of eval_steps
                    eval_for_step = True
                elif at_k and eval_for_step:
                    pass
                else:
                    eval_for_step = False
                if stepped:
                    log_step(losses, lr_used, val)
                    losses = []
                elif val is not None:
                    log('stage %d: evaluation without an optimizer step (epoch %d, sequence %d of %d) at step %d: '
                        'val %.6f (scheduler stepped%s)' % (stage, epoch, ix + 1, data.n, gs, val,
                                                            ', checkpoint if best' if at_k else ''))
                if gs == max_steps:
                    done = True
                    break
            epoch += 1
        res['epochs_started'] = epoch
    res['seconds'] = time.time() - t0
    res['tokens'] = state['tokens']
    if best['snap'] is not None:
        lp.restore(best['snap'])
    else:
        log('stage %d: no checkpoint was taken (no validation at a multiple of K): the final parameters' % stage)
    res['val_loss_best'] = best['val'] if best['snap'] is not None else None
    res['best_step'] = best['step']
    res['lr_final'] = cur_lr()
    if stage == 1 and data.n_val > 0:
        v, layers = validate(m, lp, data, 1, args.mse_factor, args.val_weighting)
        res['layer_loss_after'] = layers
        res['val_loss_after'] = v
    log('stage %d done: %.1f s, %d tokens, val %.6f -> best %s (step %d)' %
        (stage, res['seconds'], res['tokens'], v0, res['val_loss_best'], best['step']))
    return res


# ---------------------------------------------------------------------------
# ---------------------------------------------------------------------------
# Step timing for bench/bench.c (section (f)): --bench-stage 1|2
# ---------------------------------------------------------------------------
def synth_llama(spec, device):
    """a Llama of spec 'dim,hidden,layers,heads,kv_heads,head_dim,vocab' with uniform
    random weights of std 0.02 (norms 1), untied, made in memory as `lolcats synth`
    shapes them (no files, no tokenizer)."""
    dim, hid, L, H, Hk, D, V = [int(t) for t in spec.split(',')]
    cfg = {'hidden_size': dim, 'intermediate_size': hid, 'num_hidden_layers': L, 'num_attention_heads': H,
           'num_key_value_heads': Hk, 'head_dim': D, 'vocab_size': V, 'rope_theta': 500000.0,
           'rms_norm_eps': 1e-5, 'max_position_embeddings': 8192, 'tie_word_embeddings': False}
    a = 0.02 * math.sqrt(3.0)
    shapes = {'model.embed_tokens.weight': (V, dim), 'lm_head.weight': (V, dim), 'model.norm.weight': (dim,)}
    for l in range(L):
        pre = 'model.layers.%d.' % l
        shapes.update({pre + 'input_layernorm.weight': (dim,), pre + 'post_attention_layernorm.weight': (dim,),
                       pre + 'self_attn.q_proj.weight': (H * D, dim), pre + 'self_attn.k_proj.weight': (Hk * D, dim),
                       pre + 'self_attn.v_proj.weight': (Hk * D, dim), pre + 'self_attn.o_proj.weight': (dim, H * D),
                       pre + 'mlp.gate_proj.weight': (hid, dim), pre + 'mlp.up_proj.weight': (hid, dim),
                       pre + 'mlp.down_proj.weight': (dim, hid)})
    w = {k: (torch.ones(s) if len(s) == 1 else torch.empty(s).uniform_(-a, a)) for k, s in shapes.items()}
    return Llama(None, device, cfg=cfg, w=w)


def bench_stage(args, dev):
    """seconds of one optimizer step of stage 1 (attention transfer, teacher forced) or
    stage 2 (LoRA r 8, CE through the hybrid model) on one sequence of --bench-n random
    tokens, as run_stage does it (zero_grad, the sequence's forward + backward, AdamW):
    the best of --bench-reps after one untimed step (--bench-reps 1: one timed step,
    none untimed). Prints one JSON line: time_s, cpu_s (the process's CPU time of its
    best step: with one thread, the time it computed on a shared machine), peak_mb
    (ru_maxrss minus the RSS once the model exists: activations, gradients,
    temporaries), note."""
    import resource
    torch.manual_seed(args.seed)
    m = synth_llama(args.synth, dev) if args.synth else Llama(args.model, dev)
    lp = LolcatsParams(m, args.feature_dim, args.variant, args.window)
    if args.bench_stage == 2:
        lp.freeze_fmaps()
        lp.add_lora(m, args.lora_rank, args.lora_alpha, args.seed, 'torch')
    params = lp.fmap_params() if args.bench_stage == 1 else lp.lora_params()
    opt = torch.optim.AdamW(params, lr=args.distill_lr if args.bench_stage == 1 else args.finetune_lr,
                            betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    N = args.bench_n
    ids = torch.randint(0, m.vocab, (N + 1,), device=dev)
    with open('/proc/self/statm') as f:   # resident pages once the model exists
        base = int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 1048576.0
    best, cpu, warm = float('inf'), float('inf'), 1 if args.bench_reps > 1 else 0
    for r in range(args.bench_reps + warm):
        t0, c0 = time.time(), time.process_time()
        opt.zero_grad()
        if args.bench_stage == 1:
            distill_seq(m, lp, ids[:N], args.mse_factor, True, 1.0)
        else:
            lm_seq(m, lp, ids[:N], ids[1:], True, 1.0)
        opt.step()
        t, c = time.time() - t0, time.process_time() - c0
        if r >= warm:
            best, cpu = min(best, t), min(cpu, c)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 - base
    try:  # the BLAS library torch ran on (Debian: the libblas.so.3 alternative)
        blas = sorted({os.path.basename(os.path.realpath(ln.split()[-1])) for ln in open('/proc/self/maps')
                       if 'blas' in ln.split()[-1]})
    except OSError:
        blas = []
    print(json.dumps({'time_s': best, 'cpu_s': cpu, 'peak_mb': peak,
                      'note': 'torch %s on %s, %d threads, stage %d, N %d, %d reps%s' %
                      (torch.__version__, ' '.join(blas) or 'no BLAS found', torch.get_num_threads(),
                       args.bench_stage, N, args.bench_reps, ' after one untimed' if warm else '')}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', help='Hugging Face model directory')
    ap.add_argument('--synth', help="with --bench-stage: a random model 'dim,hidden,layers,heads,kv,head_dim,vocab'")
    ap.add_argument('--bench-stage', type=int, choices=[1, 2], help='time one step of stage 1 or 2 and exit')
    ap.add_argument('--bench-n', type=int, default=1024, help='tokens per --bench-stage step (1024)')
    ap.add_argument('--bench-reps', type=int, default=3, help='timed --bench-stage steps (3)')
    ap.add_argument('--train', help='training data: text or Alpaca .jsonl')
    ap.add_argument('--held', help='held-out data scored at the end (text or .jsonl)')
    ap.add_argument('--out', help='output directory')
    ap.add_argument('--seq-len', type=int, default=1024)
    ap.add_argument('--distill-tokens', type=int, default=1000000)
    ap.add_argument('--finetune-tokens', type=int, default=1000000)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--no-attention-transfer', action='store_true')
    ap.add_argument('--grad-accum', type=int, default=8)
    ap.add_argument('--val-every', type=int, default=10, help='K: validate every K optimizer steps (10)')
    ap.add_argument('--val-seqs', type=int, default=8, help='validation chunks (8; 0: every chunk of '
                    'the Alpaca validation records, as the original)')
    ap.add_argument('--val-records', type=int, default=200)
    ap.add_argument('--max-records', type=int, default=0)
    ap.add_argument('--val-weighting', choices=['seqs', 'tokens'], default='seqs',
                    help='stage 2 validation: mean of per-sequence means (original) or token weighted (C)')
    ap.add_argument('--distill-lr', type=float, default=1e-2)
    ap.add_argument('--finetune-lr', type=float, default=1e-4)
    ap.add_argument('--mse-factor', type=float, default=1000.0)
    ap.add_argument('--lora-rank', type=int, default=8)
    ap.add_argument('--lora-alpha', type=float, default=16.0)
    ap.add_argument('--lora-init', choices=['c', 'torch'], default='c',
                    help="LoRA A: kaiming-uniform(a=sqrt5) from the C's random stream (c) or torch's")
    ap.add_argument('--feature-dim', type=int, default=64)
    ap.add_argument('--window', type=int, default=64)
    ap.add_argument('--variant', choices=['tk', 'sw'], default='tk')
    ap.add_argument('--order', choices=['c', 'torch'], default='c', help='training-chunk order')
    ap.add_argument('--trainer', choices=['original', 'c'], default='original', help='training loop')
    ap.add_argument('--ctx', type=int, default=1024, help='held-out scoring window')
    ap.add_argument('--stage1-from', help='skip stage 1: start stage 2 from this checkpoint')
    ap.add_argument('--eval-only', help="score this checkpoint ('identity', 'teacher') on --held and exit")
    ap.add_argument('--skip-stage2', action='store_true')
    ap.add_argument('--no-held-stage1', action='store_true', help='do not score the stage 1 model')
    ap.add_argument('--skip-held', action='store_true', help='no held-out scoring at all (quick checks)')
    ap.add_argument('--threads', type=int, default=2, help='CPU threads (CPU runs)')
    ap.add_argument('--cpu', action='store_true')
    ap.add_argument('--bpe', action='store_true', help='use the pure-Python BPE even if sentencepiece exists')
    args = ap.parse_args()

    wall0 = time.time()
    if torch.cuda.is_available() and not args.cpu:
        dev = torch.device('cuda')
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    else:
        dev = torch.device('cpu')
        torch.set_num_threads(args.threads)
    if args.bench_stage:
        if not (args.model or args.synth):
            ap.error('--bench-stage needs --model or --synth')
        return bench_stage(args, dev)
    if not args.model:
        ap.error('--model is needed')
    torch.manual_seed(args.seed)
    m = Llama(args.model, dev)
    tok = Tokenizer(args.model, force_bpe=args.bpe)
    T = min(args.seq_len, m.max_pos)
    ctx = min(args.ctx, m.max_pos)
    log('orig_recipe: torch %s on %s, tokenizer %s; model %s: %d layers, dim %d, %d heads (%d kv) of %d' %
        (torch.__version__, dev, tok.kind, args.model, m.L, m.dim, m.H, m.Hk, m.D))

    if args.eval_only:
        if args.eval_only == 'teacher':
            lp = None
        elif args.eval_only == 'identity':
            lp = LolcatsParams(m, args.feature_dim, args.variant, args.window)
            lp.freeze_fmaps()
        else:
            lp = LolcatsParams.load(args.eval_only, m)
        if tok.sp is not None:
            tok.self_check([read_text(args.held)[:30000]] if not is_jsonl(args.held) else
                           [alpaca_prompt(r) for r in read_alpaca(args.held)[:20]])
        nll, n = score_held(m, lp, tok, args.held, ctx)
        print(json.dumps({'checkpoint': args.eval_only, 'held': args.held, 'nll': nll, 'ppl': math.exp(nll),
                          'tokens': n, 'ctx': ctx, 'seconds': time.time() - wall0}))
        return

    if not (args.train and args.held and args.out):
        ap.error('--train, --held and --out are needed (or --eval-only)')
    os.makedirs(args.out, exist_ok=True)
    if tok.sp is not None:   # the held-out file (Data checks the training file)
        tok.self_check([read_text(args.held)[:30000]] if not is_jsonl(args.held) else
                       [alpaca_prompt(r) for r in read_alpaca(args.held)[:20]] +
                       [r['output'] for r in read_alpaca(args.held)[:40]])
    t_data = time.time()
    data = Data(args.train, tok, m.eos, T, args.val_seqs, args.val_records, args.max_records)
    log('data %s: %d tokens, %d training and %d validation sequences of %d%s (%.1f s)' %
        (args.train, data.stream_tokens, data.n, data.n_val, T, ' (Alpaca, response labels)' if data.is_jsonl
         else '', time.time() - t_data))
    summary = {'model': args.model, 'train': args.train, 'held': args.held, 'seed': args.seed,
               'seq_len': T, 'ctx': ctx, 'grad_accum': args.grad_accum, 'val_every': args.val_every,
               'trainer': args.trainer, 'order': args.order, 'lora_init': args.lora_init,
               'attention_transfer': not args.no_attention_transfer and not args.stage1_from,
               'stage1_from': args.stage1_from, 'device': str(dev), 'torch': torch.__version__,
               'tokenizer': tok.kind, 'train_sequences': data.n, 'val_sequences': data.n_val,
               'train_stream_tokens': data.stream_tokens}
    jlog = open(os.path.join(args.out, 'log.jsonl'), 'w')

    if args.skip_held:
        args.no_held_stage1 = True
    else:
        t = time.time()
        teacher_nll, held_tokens = score_held(m, None, tok, args.held, ctx)
        summary.update(teacher_nll=teacher_nll, held_tokens=held_tokens, teacher_eval_seconds=time.time() - t)
        log('teacher held-out NLL %.6f over %d tokens (%.1f s)' % (teacher_nll, held_tokens, time.time() - t))

    # stage 1
    if args.stage1_from:
        lp = LolcatsParams.load(args.stage1_from, m)
    else:
        lp = LolcatsParams(m, args.feature_dim, args.variant, args.window)
        if not args.no_attention_transfer:
            order = Order(data.n, args.seed, args.order)
            r1 = run_stage(1, m, lp, data, order, args, args.distill_lr, args.distill_tokens, jlog)
            summary['stage1'] = r1
        lp.freeze_fmaps()
        lp.save(os.path.join(args.out, 'stage1.safetensors'), m,
                {'model': args.model, 'attention_transfer': 'none' if args.no_attention_transfer else 'orig_recipe'})
    if not args.no_held_stage1:
        t = time.time()
        s1, _ = score_held(m, lp, tok, args.held, ctx)
        summary.update(stage1_nll=s1, stage1_ratio=math.exp(s1 - teacher_nll), stage1_eval_seconds=time.time() - t)
        log('stage 1 held-out NLL %.6f (x%.4f) (%.1f s)' % (s1, math.exp(s1 - teacher_nll), time.time() - t))

    # stage 2
    if not args.skip_stage2:
        lp.freeze_fmaps()
        lp.add_lora(m, args.lora_rank, args.lora_alpha, args.seed, args.lora_init)
        order = Order(data.n, args.seed, args.order)
        r2 = run_stage(2, m, lp, data, order, args, args.finetune_lr, args.finetune_tokens, jlog)
        summary['stage2'] = r2
        lp.save(os.path.join(args.out, 'stage2.safetensors'), m, {'model': args.model})
        if not args.skip_held:
            t = time.time()
            s2, _ = score_held(m, lp, tok, args.held, ctx)
            summary.update(stage2_nll=s2, stage2_ratio=math.exp(s2 - teacher_nll),
                           stage2_eval_seconds=time.time() - t)
            log('stage 2 held-out NLL %.6f (x%.4f) (%.1f s)' % (s2, math.exp(s2 - teacher_nll), time.time() - t))
    jlog.close()
    summary['wall_seconds'] = time.time() - wall0
    with open(os.path.join(args.out, 'summary.json'), 'w') as fh:
        json.dump(summary, fh, indent=1)
    brief = {k: summary.get(k) for k in ('train', 'held', 'seed', 'attention_transfer', 'teacher_nll', 'stage1_nll',
                                         'stage1_ratio', 'stage2_nll', 'stage2_ratio', 'held_tokens', 'wall_seconds')}
    for s in ('stage1', 'stage2'):
        if s in summary:
            brief[s + '_val'] = {k: summary[s].get(k) for k in ('val_loss_before', 'val_loss_best', 'best_step',
                                                                 'steps', 'lr_final', 'seconds')}
    if 'stage1' in summary:
        brief['stage1_layer_val_before'] = summary['stage1'].get('layer_loss_before')
        brief['stage1_layer_val_after'] = summary['stage1'].get('layer_loss_after')
    print(json.dumps(brief, indent=1))


if __name__ == '__main__':
    main()
