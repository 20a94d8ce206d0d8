#!/usr/bin/python3
"""Golden-data generator for lolcats.h.

Usage (Debian's python, which has torch and numpy):
    /usr/bin/python3 tools/gen_golden.py tests/data        # write every case
    /usr/bin/python3 tools/gen_golden.py --selftest        # validate this script

Every case is one safetensors file (all tensors F32) holding the inputs, the
expected outputs computed in float64 (stored as float32), and metadata strings
(op, options, and f32_err.<name>: max |float32 run - float64 run| per output).
The math follows /work/shared/docs/LOLCATS_MATH.md, which describes the
original PyTorch implementation (HazyResearch/lolcats @ 375df84) including its
quirks; see tests/data/README.md for the file contract.
"""
import json
import math
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)   # reductions in a fixed order: same bytes on every rerun

LOGIT_01 = math.log(0.1 / 0.9)   # logit(0.1) = -2.1972..., the original's window-factor init
HYBRID_MASK_VALUE = -1e8         # the original's masked_fill value in the window branch
LINEAR_EPS = 1e-12               # pure linear attention: A / (rowsum + 1e-12)
XENT_CLAMP = 1e-12               # a_pred.clamp(min=1e-12).log()


# --------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------
def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, array); written F32 little-endian, in list order."""
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    blobs, off = [], 0
    for name, arr in tensors:
        a = np.ascontiguousarray(np.asarray(arr, dtype=np.float32)).astype("<f4", copy=False)
        raw = a.tobytes()
        header[name] = {"dtype": "F32", "shape": [int(s) for s in a.shape],
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    text += b" " * ((-(8 + len(text))) % 8)      # data starts 8-aligned
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)))
        fh.write(text)
        for raw in blobs:
            fh.write(raw)


def read_safetensors(path):
    with open(path, "rb") as fh:
        buf = fh.read()
    (hlen,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + hlen].decode("ascii"))
    meta = header.pop("__metadata__", {})
    base = 8 + hlen
    assert base % 8 == 0
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F32"
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(buf[base + b:base + e], dtype="<f4").reshape(info["shape"])
    return out, meta


# --------------------------------------------------------------------------
# The math (dtype-generic: the same code runs in float64 and float32)
# --------------------------------------------------------------------------
def repeat_kv(x, n_rep):
    """(B,Hk,N,D) -> (B,H,N,D); query head h reads kv head h // n_rep."""
    return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=1)


def feature_map(x, weight, bias, name, halfspace, eps):
    """x (B,H,N,D) (already expanded to query heads), weight (H,D,f), bias (H) or None."""
    z = torch.einsum("bhnd,hdf->bhnf", x, weight)
    if bias is not None:
        z = z + bias.view(1, -1, 1, 1)
    if name == "softmax_dim":
        if halfspace:
            phi = torch.softmax(z, dim=-1)
        else:
            phi = torch.cat([torch.softmax(z, dim=-1), torch.softmax(-z, dim=-1)], dim=-1)
    elif name == "exp_dim":
        zmax = torch.amax(z, dim=-1, keepdim=True)          # not detached
        if halfspace:
            phi = torch.exp(z - zmax)
        else:
            zmin = torch.amin(z, dim=-1, keepdim=True)
            phi = torch.cat([torch.exp(z - zmax), torch.exp(-z + zmin)], dim=-1)
    elif name == "pos_elu":
        phi = 1 + F.elu(z)
    elif name == "relu":
        phi = F.relu(z)
    else:
        raise ValueError(name)
    return phi.clamp(min=eps)


def causal_upper(n, m, device=None):
    """True strictly above the (bottom-right aligned) diagonal: the keys a query must not see."""
    return torch.ones((n, m), dtype=torch.bool).triu(m - n + 1)


def masks_tk(window, q_len, k_len):
    """Terraced masks, built the way the original's get_masks builds them:
    m = ceil(max(q_len,k_len)/w) diagonal blocks of ones (w x w); add a copy rolled
    by w columns to the left (each row block also sees the previous column block;
    row block 0 wraps onto the last column block); keep the last q_len rows and the
    last k_len columns; window = tril(mask) != 0, linear = tril(1 - mask) != 0.
    When m == 1 the roll maps the block onto itself, mask == 2 everywhere and
    1 - mask == -1 is nonzero too: both masks true on every causal key (the quirk)."""
    w = window
    m = math.ceil(max(q_len, k_len) / w)
    mask = torch.block_diag(*([torch.ones((w, w), dtype=torch.float64)] * m))
    mask = mask + torch.roll(mask, shifts=-w, dims=-1)
    if mask.shape[0] > q_len:
        mask = mask[-q_len:]
    if mask.shape[1] > k_len:
        mask = mask[:, -k_len:]
    win = torch.tril(mask).to(torch.int64) != 0
    lin = torch.tril(1 - mask).to(torch.int64) != 0
    return win, lin


def masks_sw(window, q_len, k_len):
    """Sliding window: window iff i - w < j <= i, linear iff j <= i - w (bottom-right aligned)."""
    causal = torch.ones((q_len, k_len), dtype=torch.int64).tril(k_len - q_len)
    linear = torch.ones((q_len, k_len), dtype=torch.int64).tril(k_len - q_len - window)
    return (causal - linear) != 0, linear != 0


def softmax_attention(q, k, v):
    """Teacher: causal softmax(q k^T / sqrt(D)), causal mask filled with -finfo.max."""
    n_rep = q.shape[1] // k.shape[1]
    k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
    s = torch.einsum("bhmd,bhnd->bhmn", q, k) * (k.shape[-1] ** -0.5)
    n = s.shape[-1]
    s = s.masked_fill(causal_upper(s.shape[-2], n), -torch.finfo(s.dtype).max)
    a = torch.softmax(s, dim=-1)
    y = torch.einsum("bhmn,bhnd->bhmd", a, v)
    return {"y": y, "a": a}


def linear_attention(q, k, v, wq, wk, bq, bk, fm):
    """Pure linear attention, quadratic form: a = A / (rowsum(A) + 1e-12), y = a v."""
    n_rep = q.shape[1] // k.shape[1]
    k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
    fq = feature_map(q, wq, bq, fm["feature_map"], fm["halfspace"], fm["eps"])
    fk = feature_map(k, wk, bk, fm["feature_map"], fm["halfspace"], fm["eps"])
    A = torch.einsum("bhmf,bhnf->bhmn", fq, fk)
    A = A.masked_fill(causal_upper(A.shape[-2], A.shape[-1]), 0)
    a = A / (A.sum(dim=-1, keepdim=True) + LINEAR_EPS)
    y = torch.einsum("bhmn,bhnd->bhmd", a, v)
    return {"y": y}


def hybrid_attention(q, k, v, wq, wk, bq, bk, wf, fm, variant, window, affine,
                     kv_state=None, k_state=None):
    """Sliding-window softmax + linear attention, the original's quadratic form."""
    n_rep = q.shape[1] // k.shape[1]
    k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
    fq = feature_map(q, wq, bq, fm["feature_map"], fm["halfspace"], fm["eps"])
    fk = feature_map(k, wk, bk, fm["feature_map"], fm["halfspace"], fm["eps"])
    mw, ml = (masks_tk if variant == "tk" else masks_sw)(window, q.shape[-2], k.shape[-2])
    gamma = torch.sigmoid(wf).view(1, -1, 1, 1)
    lam = (1 - gamma) if affine else 1
    # window branch on the raw q, k; max over the masked window row (mask value -1e8)
    s = torch.einsum("bhmd,bhnd->bhmn", q, k) * (k.shape[-1] ** -0.5)
    s = s.masked_fill(~mw, HYBRID_MASK_VALUE)
    smax = torch.amax(s, dim=-1, keepdim=True)
    E = gamma * torch.exp(s - smax)
    sum_sm = E.sum(dim=-1, keepdim=True)
    # linear branch, not rescaled by exp(-max)
    Lm = lam * torch.einsum("bhmf,bhnf->bhmn", fq, fk).masked_fill(~ml, 0)
    sum_ln = Lm.sum(dim=-1, keepdim=True)
    # weights are taken before the carried state joins; no eps in the denominator
    a = (E + Lm) / (sum_sm + sum_ln)
    num = torch.einsum("bhmn,bhnd->bhmd", E + Lm, v)
    if kv_state is not None:
        num = num + lam * torch.einsum("bhmf,bhfd->bhmd", fq, kv_state)
        sum_ln = sum_ln + lam * torch.einsum("bhmf,bhf->bhm", fq, k_state)[..., None]
    y = num / (sum_sm + sum_ln)
    return {"y": y, "a": a}


def mse_loss(pred, target, factor):
    return {"loss": (factor * F.mse_loss(pred, target, reduction="mean")).reshape(1)}


def xent_loss(a_pred, a_true, factor):
    n = a_true.shape[-1]
    logits = a_pred.clamp(min=XENT_CLAMP).log().contiguous().view(-1, n)
    loss = F.cross_entropy(logits, a_true.contiguous().view(-1, n), reduction="mean")
    return {"loss": (factor * loss).reshape(1)}


# --------------------------------------------------------------------------
# Running one op: forward, backward, float64 vs float32
# --------------------------------------------------------------------------
GRAD_NAME = {"q": "dq", "k": "dk", "v": "dv"}


def grad_name(name):
    return GRAD_NAME.get(name, "d_" + name)


def op_call(op, x, opts):
    fm = {"feature_map": opts.get("feature_map"), "halfspace": opts.get("halfspace"),
          "eps": opts.get("eps")}
    if op == "softmax_attention":
        return softmax_attention(x["q"], x["k"], x["v"])
    if op == "linear_attention":
        return linear_attention(x["q"], x["k"], x["v"], x["feature_map_q.weight"],
                                x["feature_map_k.weight"], x.get("feature_map_q.bias"),
                                x.get("feature_map_k.bias"), fm)
    if op == "hybrid_attention":
        return hybrid_attention(x["q"], x["k"], x["v"], x["feature_map_q.weight"],
                                x["feature_map_k.weight"], x.get("feature_map_q.bias"),
                                x.get("feature_map_k.bias"), x["window_factors"], fm,
                                opts["variant"], opts["window"], opts["affine"],
                                x.get("kv_state"), x.get("k_state"))
    if op == "mse_loss":
        return mse_loss(x["pred"], x["target"], opts["factor"])
    if op == "xent_loss":
        return xent_loss(x["a_pred"], x["a_true"], opts["factor"])
    raise ValueError(op)


UPSTREAM = ("dy", "da")   # upstream gradients: inputs, never differentiated


def evaluate(op, inputs, opts, dtype):
    """inputs: dict name -> float32 tensor. Returns dict of outputs (in dtype)."""
    x = {n: t.to(dtype).clone() for n, t in inputs.items()}
    loss_op = op in ("mse_loss", "xent_loss")
    if loss_op:
        wrt = ["pred"] if op == "mse_loss" else ["a_pred"]
    elif "dy" in x:
        wrt = [n for n in x if n not in UPSTREAM]
    else:
        wrt = []
    for n in wrt:
        x[n].requires_grad_(True)
    with torch.set_grad_enabled(bool(wrt)):
        out = op_call(op, x, opts)
        if wrt:
            if loss_op:
                L = out["loss"].sum()
            else:
                L = (out["y"] * x["dy"]).sum()
                if "da" in x:
                    L = L + (out["a"] * x["da"]).sum()
            grads = torch.autograd.grad(L, [x[n] for n in wrt])
            for n, g in zip(wrt, grads):
                out[grad_name(n)] = g
    return {n: t.detach() for n, t in out.items()}


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------
def attn_case(name, op, B, H, Hk, N, D, f=None, fmap="softmax_dim", half=0, eps=1e-12,
              bias=False, variant=None, window=None, affine=0, state=False, dy=True,
              da=False, wscale=1.0):
    return dict(name=name, op=op, B=B, H=H, Hk=Hk, N=N, D=D, f=f, feature_map=fmap,
                halfspace=half, eps=eps, bias=bias, variant=variant, window=window,
                affine=affine, state=state, dy=dy, da=da, wscale=wscale)


CASES = [
    # softmax teacher: MHA and GQA, N in {1, 7, 65}
    attn_case("softmax_mha_n1", "softmax_attention", 1, 2, 2, 1, 8),
    attn_case("softmax_mha_n7", "softmax_attention", 2, 2, 2, 7, 8),
    attn_case("softmax_mha_n65", "softmax_attention", 1, 2, 2, 65, 16),
    attn_case("softmax_gqa_n1", "softmax_attention", 1, 4, 2, 1, 8),
    attn_case("softmax_gqa_n7", "softmax_attention", 2, 4, 2, 7, 8),
    attn_case("softmax_gqa_n65", "softmax_attention", 1, 4, 2, 65, 16),
    attn_case("softmax_gqa_n33_da", "softmax_attention", 1, 4, 2, 33, 8, da=True),
    # pure linear attention: every feature map, GQA, odd D and f
    attn_case("linear_softmax_dim_full_gqa_n33", "linear_attention", 2, 4, 2, 33, 9, 5),
    attn_case("linear_softmax_dim_half_gqa_n33", "linear_attention", 2, 4, 2, 33, 9, 5, half=1),
    attn_case("linear_exp_dim_full_gqa_n33", "linear_attention", 2, 4, 2, 33, 9, 5, fmap="exp_dim"),
    attn_case("linear_exp_dim_half_gqa_n33", "linear_attention", 2, 4, 2, 33, 9, 5, fmap="exp_dim",
              half=1),
    attn_case("linear_pos_elu_gqa_n33", "linear_attention", 2, 4, 2, 33, 9, 5, fmap="pos_elu"),
    attn_case("linear_relu_bias_gqa_n33", "linear_attention", 2, 4, 2, 33, 9, 5, fmap="relu",
              bias=True),
    attn_case("linear_softmax_dim_full_mha_n1", "linear_attention", 1, 2, 2, 1, 9, 5),
    # a large clamp eps so that clamp(min=eps) (and its zero gradient) actually bites
    attn_case("linear_exp_dim_full_eps5e-2_mha_n17", "linear_attention", 1, 2, 2, 17, 8, 4,
              fmap="exp_dim", eps=5e-2, wscale=2.0),
    # hybrid, terraced (tk)
    attn_case("hybrid_tk_n11_w16", "hybrid_attention", 1, 2, 2, 11, 8, 4, variant="tk", window=16),
    attn_case("hybrid_tk_n16_w16_gqa", "hybrid_attention", 1, 4, 2, 16, 8, 4, variant="tk",
              window=16),
    attn_case("hybrid_tk_n29_w16", "hybrid_attention", 1, 2, 2, 29, 8, 4, variant="tk", window=16),
    attn_case("hybrid_tk_n71_w16_gqa", "hybrid_attention", 2, 4, 2, 71, 16, 8, variant="tk",
              window=16),
    attn_case("hybrid_tk_n1_w16", "hybrid_attention", 1, 2, 2, 1, 8, 4, variant="tk", window=16),
    attn_case("hybrid_tk_n13_w4_gqa_relu_bias", "hybrid_attention", 1, 2, 1, 13, 8, 4, fmap="relu",
              bias=True, variant="tk", window=4),
    attn_case("hybrid_tk_n37_w16_gqa_da", "hybrid_attention", 1, 4, 2, 37, 8, 4, variant="tk",
              window=16, da=True),
    attn_case("hybrid_tk_n40_w16_state", "hybrid_attention", 1, 2, 2, 40, 8, 4, variant="tk",
              window=16, state=True),
    # hybrid, sliding window (sw)
    attn_case("hybrid_sw_n71_w16_gqa", "hybrid_attention", 1, 4, 2, 71, 12, 6, variant="sw",
              window=16),
    attn_case("hybrid_sw_n10_w16", "hybrid_attention", 1, 2, 2, 10, 8, 4, variant="sw", window=16),
    attn_case("hybrid_sw_n64_w64", "hybrid_attention", 1, 2, 2, 64, 8, 4, variant="sw", window=64),
    attn_case("hybrid_sw_n50_w16_affine", "hybrid_attention", 2, 2, 2, 50, 8, 4, variant="sw",
              window=16, affine=1),
    attn_case("hybrid_sw_n30_w8_gqa_state_exp_dim_half", "hybrid_attention", 1, 4, 2, 30, 8, 4,
              fmap="exp_dim", half=1, variant="sw", window=8, state=True),
    # losses
    dict(name="mse_loss_b2h4n17d8", op="mse_loss", shape=(2, 4, 17, 8), factor=1000.0),
    dict(name="xent_loss_tk_n24_w8", op="xent_loss", B=1, H=2, Hk=2, N=24, D=8, f=4, window=8,
         factor=1.0),
]


def case_seed(name):
    return zlib.crc32(name.encode("ascii")) & 0x7FFFFFFF


def randn(g, *shape, std=1.0, mean=0.0):
    return torch.randn(*shape, generator=g, dtype=torch.float32) * std + mean


def uniform(g, *shape, lo=-1.0, hi=1.0):
    return torch.rand(*shape, generator=g, dtype=torch.float32) * (hi - lo) + lo


def draw_fmap_weights(g, c, x):
    H, D, f = c["H"], c["D"], c["f"]
    x["feature_map_q.weight"] = randn(g, H, D, f, std=c["wscale"] / math.sqrt(D))
    x["feature_map_k.weight"] = randn(g, H, D, f, std=c["wscale"] / math.sqrt(D))
    if c["bias"]:
        x["feature_map_q.bias"] = uniform(g, H, lo=0.5, hi=1.0)
        x["feature_map_k.bias"] = uniform(g, H, lo=0.5, hi=1.0)


def fm_opts(c):
    return {"feature_map": c["feature_map"], "halfspace": c["halfspace"], "eps": c["eps"]}


def build_case(c):
    """Returns (op, inputs dict of float32 tensors, opts dict, metadata dict)."""
    g = torch.Generator().manual_seed(case_seed(c["name"]))
    op = c["op"]
    meta = {"op": op, "case": c["name"], "seed": str(case_seed(c["name"]))}
    x = {}
    if op == "mse_loss":
        x["pred"] = randn(g, *c["shape"])
        x["target"] = x["pred"] + randn(g, *c["shape"], std=0.3)
        opts = {"factor": c["factor"]}
        meta["factor"] = repr(c["factor"])
        return op, x, opts, meta
    if op == "xent_loss":
        B, H, Hk, N, D, f, w = (c[k] for k in ("B", "H", "Hk", "N", "D", "f", "window"))
        q, k, v = randn(g, B, H, N, D), randn(g, B, Hk, N, D), randn(g, B, Hk, N, D)
        wq = randn(g, H, D, f, std=1 / math.sqrt(D))
        wk = randn(g, H, D, f, std=1 / math.sqrt(D))
        wf = LOGIT_01 + uniform(g, H)
        dd = torch.float64
        fm = {"feature_map": "softmax_dim", "halfspace": 0, "eps": 1e-12}
        a_pred = hybrid_attention(q.to(dd), k.to(dd), v.to(dd), wq.to(dd), wk.to(dd), None, None,
                                  wf.to(dd), fm, "tk", w, 0)["a"]
        a_true = softmax_attention(q.to(dd), k.to(dd), v.to(dd))["a"]
        x["a_pred"], x["a_true"] = a_pred.float(), a_true.float()
        opts = {"factor": c["factor"]}
        meta["factor"] = repr(c["factor"])
        meta["source"] = "a_pred: hybrid tk w=%d softmax_dim; a_true: softmax teacher" % w
        return op, x, opts, meta

    B, H, Hk, N, D = c["B"], c["H"], c["Hk"], c["N"], c["D"]
    x["q"] = randn(g, B, H, N, D)
    x["k"] = randn(g, B, Hk, N, D)
    x["v"] = randn(g, B, Hk, N, D)
    opts = {}
    if op in ("linear_attention", "hybrid_attention"):
        draw_fmap_weights(g, c, x)
        opts.update(fm_opts(c))
        meta["feature_map"] = c["feature_map"]
        meta["halfspace"] = str(int(c["halfspace"]))
        meta["eps"] = repr(float(c["eps"]))
    if op == "hybrid_attention":
        x["window_factors"] = LOGIT_01 + uniform(g, H)
        opts.update(variant=c["variant"], window=c["window"], affine=c["affine"])
        meta["variant"] = c["variant"]
        meta["window"] = str(c["window"])
        meta["affine"] = str(int(c["affine"]))
        if c["state"]:
            # a realistic carried state: the features of an earlier chunk of P keys
            P = 20
            k0 = randn(g, B, Hk, P, D).double()
            v0 = randn(g, B, Hk, P, D).double()
            n_rep = H // Hk
            fk0 = feature_map(repeat_kv(k0, n_rep), x["feature_map_k.weight"].double(),
                              None if "feature_map_k.bias" not in x else x["feature_map_k.bias"].double(),
                              c["feature_map"], c["halfspace"], c["eps"])
            x["kv_state"] = torch.einsum("bhpf,bhpd->bhfd", fk0, repeat_kv(v0, n_rep)).float()
            x["k_state"] = fk0.sum(dim=2).float()
            meta["state_tokens"] = str(P)
    if c["dy"]:
        x["dy"] = randn(g, B, H, N, D)
    if c["da"]:
        x["da"] = randn(g, B, H, N, N).masked_fill(causal_upper(N, N), 0)
    return op, x, opts, meta


def sanity(op, x, opts, out64):
    """Guards against degenerate draws (uniform / one-hot attention, ~zero denominators)."""
    if op == "linear_attention":
        n_rep = x["q"].shape[1] // x["k"].shape[1]
        d = {n: t.double() for n, t in x.items()}
        fq = feature_map(d["q"], d["feature_map_q.weight"], d.get("feature_map_q.bias"),
                         opts["feature_map"], opts["halfspace"], opts["eps"])
        fk = feature_map(repeat_kv(d["k"], n_rep), d["feature_map_k.weight"],
                         d.get("feature_map_k.bias"), opts["feature_map"], opts["halfspace"],
                         opts["eps"])
        A = torch.einsum("bhmf,bhnf->bhmn", fq, fk).masked_fill(
            causal_upper(fq.shape[2], fk.shape[2]), 0)
        assert A.sum(-1).min().item() > 1e-2, "linear denominator too small: %g" % A.sum(-1).min().item()
    if "a" in out64 and op == "hybrid_attention" and "kv_state" not in x:
        rows = out64["a"].sum(-1)
        assert torch.allclose(rows, torch.ones_like(rows), atol=1e-12), "hybrid rows must sum to 1"
    if "a" in out64 and out64["a"].shape[-1] > 4:
        n = out64["a"].shape[-1]
        amax = out64["a"].amax(-1)[..., 4:]   # rows with at least 5 keys
        peak = amax * torch.arange(5, n + 1, dtype=amax.dtype)   # 1 = uniform over the row
        # hybrid rows mix in the flat linear terms: a weaker floor there
        floor = 1.5 if op == "softmax_attention" else 1.1
        assert amax.max().item() < 0.999 and peak.mean().item() > floor, \
            "attention too one-hot or too uniform"


def order_outputs(out):
    first = ["y", "a", "loss"]
    names = [n for n in first if n in out] + sorted(n for n in out if n not in first)
    return names


def generate(outdir):
    os.makedirs(outdir, exist_ok=True)
    total = 0
    for c in CASES:
        op, x, opts, meta = build_case(c)
        out64 = evaluate(op, x, opts, torch.float64)
        out32 = evaluate(op, x, opts, torch.float32)
        sanity(op, x, opts, out64)
        tensors = [(n, t.numpy()) for n, t in x.items()]
        for n in order_outputs(out64):
            err = (out32[n].double() - out64[n]).abs().max().item()
            meta["f32_err." + n] = "%.6e" % err
            tensors.append((n, out64[n].to(torch.float32).numpy()))
        path = os.path.join(outdir, c["name"] + ".safetensors")
        write_safetensors(path, tensors, meta)
        size = os.path.getsize(path)
        total += size
        print("%-44s %-18s %7d bytes" % (c["name"], op, size))
    print("total %d bytes in %d files" % (total, len(CASES)))


# --------------------------------------------------------------------------
# Self-test: independent calculations, mask semantics, gradcheck, file format
# --------------------------------------------------------------------------
def spec_mask(variant, w, n, i, j):
    """Mask of key j for query i, straight from LOLCATS_MATH.md section 6.
    Returns (window, linear)."""
    if j > i:
        return False, False
    if variant == "sw":
        return (i - w < j), (j <= i - w)
    if n <= w:                      # the quirk: both masks on every causal key
        return True, True
    nn_ = w * (-(-n // w))
    bi, bj = (i + nn_ - n) // w, (j + nn_ - n) // w
    return (bj in (bi - 1, bi)), (bj < bi - 1)


def original_get_masks_loops(w, n):
    """The original's tk get_masks, replayed with plain index arithmetic:
    M0[r][c] = 1 iff r//w == c//w over the m*w square (block_diag of m ones blocks);
    torch.roll(M0, -w, -1)[r][c] = M0[r][(c + w) % (m*w)]; mask = M0 + rolled;
    keep rows/cols from the end (mask[-n:], mask[:, -n:]);
    window = tril(mask) != 0, linear = tril(1 - mask) != 0 (tril w.r.t. the kept square)."""
    m = -(-n // w)
    L = m * w
    M0 = [[1 if r // w == c // w else 0 for c in range(L)] for r in range(L)]
    mask = [[M0[r][c] + M0[r][(c + w) % L] for c in range(L)] for r in range(L)]
    off = L - n
    win = [[(j <= i and mask[i + off][j + off] != 0) for j in range(n)] for i in range(n)]
    lin = [[(j <= i and 1 - mask[i + off][j + off] != 0) for j in range(n)] for i in range(n)]
    return win, lin


def loops_feature_map(x, W, b, name, half, eps):
    """x: list (D) of floats, W: (D,f) nested lists, b: float or None -> list of F floats."""
    D, f = len(W), len(W[0])
    z = [sum(x[d] * W[d][t] for d in range(D)) + (b if b is not None else 0.0) for t in range(f)]
    if name == "softmax_dim":
        def sm(u):
            mu = max(u)
            e = [math.exp(t - mu) for t in u]
            s = sum(e)
            return [t / s for t in e]
        phi = sm(z) if half else sm(z) + sm([-t for t in z])
    elif name == "exp_dim":
        phi = [math.exp(t - max(z)) for t in z]
        if not half:
            phi += [math.exp(-t + min(z)) for t in z]
    elif name == "pos_elu":
        phi = [1 + (t if t > 0 else math.expm1(t)) for t in z]
    else:
        phi = [max(t, 0.0) for t in z]
    return [max(p, eps) for p in phi]


def loops_hybrid(x, opts):
    """Hybrid attention with explicit python loops in float64, from the spec's formulas."""
    q, k, v = (x[n].double().tolist() for n in ("q", "k", "v"))
    Wq, Wk = x["feature_map_q.weight"].double().tolist(), x["feature_map_k.weight"].double().tolist()
    bq = x["feature_map_q.bias"].double().tolist() if "feature_map_q.bias" in x else None
    bk = x["feature_map_k.bias"].double().tolist() if "feature_map_k.bias" in x else None
    wf = x["window_factors"].double().tolist()
    S = x["kv_state"].double().tolist() if "kv_state" in x else None
    Z = x["k_state"].double().tolist() if "k_state" in x else None
    B, H, N, D = len(q), len(q[0]), len(q[0][0]), len(q[0][0][0])
    Hk = len(k[0])
    rep = H // Hk
    w, var = opts["window"], opts["variant"]
    fmn, half, eps = opts["feature_map"], opts["halfspace"], opts["eps"]
    y = [[[[0.0] * D for _ in range(N)] for _ in range(H)] for _ in range(B)]
    a = [[[[0.0] * N for _ in range(N)] for _ in range(H)] for _ in range(B)]
    for b in range(B):
        for h in range(H):
            g = 1 / (1 + math.exp(-wf[h]))
            lam = 1 - g if opts["affine"] else 1.0
            kh = h // rep
            fq = [loops_feature_map(q[b][h][i], Wq[h], bq[h] if bq else None, fmn, half, eps)
                  for i in range(N)]
            fk = [loops_feature_map(k[b][kh][j], Wk[h], bk[h] if bk else None, fmn, half, eps)
                  for j in range(N)]
            for i in range(N):
                sc = {}
                for j in range(i + 1):
                    if spec_mask(var, w, N, i, j)[0]:
                        sc[j] = sum(q[b][h][i][d] * k[b][kh][j][d] for d in range(D)) / math.sqrt(D)
                mi = max(sc.values())
                wt = [0.0] * N
                for j in range(i + 1):
                    win, lin = spec_mask(var, w, N, i, j)
                    if win:
                        wt[j] += g * math.exp(sc[j] - mi)
                    if lin:
                        wt[j] += lam * sum(p * r for p, r in zip(fq[i], fk[j]))
                den = sum(wt)
                for j in range(N):
                    a[b][h][i][j] = wt[j] / den
                num = [sum(wt[j] * v[b][kh][j][d] for j in range(N)) for d in range(D)]
                if S is not None:
                    Fd = len(fq[i])
                    for d in range(D):
                        num[d] += lam * sum(fq[i][t] * S[b][h][t][d] for t in range(Fd))
                    den += lam * sum(fq[i][t] * Z[b][h][t] for t in range(Fd))
                for d in range(D):
                    y[b][h][i][d] = num[d] / den
    return torch.tensor(y, dtype=torch.float64), torch.tensor(a, dtype=torch.float64)


def loops_softmax(x):
    q, k, v = (x[n].double().tolist() for n in ("q", "k", "v"))
    B, H, N, D = len(q), len(q[0]), len(q[0][0]), len(q[0][0][0])
    rep = H // len(k[0])
    y = [[[[0.0] * D for _ in range(N)] for _ in range(H)] for _ in range(B)]
    for b in range(B):
        for h in range(H):
            for i in range(N):
                s = [sum(q[b][h][i][d] * k[b][h // rep][j][d] for d in range(D)) / math.sqrt(D)
                     for j in range(i + 1)]
                mx = max(s)
                e = [math.exp(t - mx) for t in s]
                z = sum(e)
                for d in range(D):
                    y[b][h][i][d] = sum(e[j] / z * v[b][h // rep][j][d] for j in range(i + 1))
    return torch.tensor(y, dtype=torch.float64)


def loops_linear(x, opts):
    q, k, v = (x[n].double().tolist() for n in ("q", "k", "v"))
    Wq, Wk = x["feature_map_q.weight"].double().tolist(), x["feature_map_k.weight"].double().tolist()
    bq = x["feature_map_q.bias"].double().tolist() if "feature_map_q.bias" in x else None
    bk = x["feature_map_k.bias"].double().tolist() if "feature_map_k.bias" in x else None
    B, H, N, D = len(q), len(q[0]), len(q[0][0]), len(q[0][0][0])
    rep = H // len(k[0])
    fmn, half, eps = opts["feature_map"], opts["halfspace"], opts["eps"]
    y = [[[[0.0] * D for _ in range(N)] for _ in range(H)] for _ in range(B)]
    for b in range(B):
        for h in range(H):
            fk = [loops_feature_map(k[b][h // rep][j], Wk[h], bk[h] if bk else None, fmn, half, eps)
                  for j in range(N)]
            for i in range(N):
                fq = loops_feature_map(q[b][h][i], Wq[h], bq[h] if bq else None, fmn, half, eps)
                A = [sum(p * r for p, r in zip(fq, fk[j])) for j in range(i + 1)]
                den = sum(A) + 1e-12
                for d in range(D):
                    y[b][h][i][d] = sum(A[j] * v[b][h // rep][j][d] for j in range(i + 1)) / den
    return torch.tensor(y, dtype=torch.float64)


def selftest():
    ok = True

    def report(what, good, detail=""):
        nonlocal ok
        ok = ok and good
        print("%-4s %s %s" % ("ok" if good else "FAIL", what, detail))

    # 1. tk / sw masks: torch replay of get_masks == loop replay == spec formula
    for n, w in [(11, 16), (16, 16), (1, 16), (17, 16), (29, 16), (32, 16), (33, 16), (71, 16),
                 (13, 4), (64, 64), (65, 64)]:
        tw, tl = masks_tk(w, n, n)
        lw, ll = original_get_masks_loops(w, n)
        sw_ = [[spec_mask("tk", w, n, i, j) for j in range(n)] for i in range(n)]
        good = (tw.tolist() == lw and tl.tolist() == ll
                and [[p[0] for p in r] for r in sw_] == lw and [[p[1] for p in r] for r in sw_] == ll)
        both = int((tw & tl).sum())
        report("tk masks N=%d w=%d" % (n, w), good,
               "(window %d, linear %d, both %d)" % (int(tw.sum()), int(tl.sum()), both))
        if n <= w:
            report("  quirk: both masks on all %d causal keys" % (n * (n + 1) // 2),
                   both == n * (n + 1) // 2 and int(tw.sum()) == both)
        else:
            report("  no key in both masks; union = causal",
                   both == 0 and bool(((tw | tl) == ~causal_upper(n, n)).all()))
    for n, w in [(10, 16), (64, 64), (71, 16), (13, 4)]:
        tw, tl = masks_sw(w, n, n)
        good = all((bool(tw[i, j]), bool(tl[i, j])) == spec_mask("sw", w, n, i, j)
                   for i in range(n) for j in range(n))
        report("sw masks N=%d w=%d" % (n, w), good)
    # the N=11,w=16 and N=71,w=16 tk masks, written out
    tw, tl = masks_tk(16, 71, 71)
    # n = 80, offset 9: queries 0..6 are the partial block 0; 7..22 block 1; ...
    exp_rows = {0: (0, 0, -1), 6: (0, 6, -1), 7: (0, 7, -1), 22: (0, 22, -1),
                23: (7, 23, 6), 38: (7, 38, 6), 39: (23, 39, 22), 70: (39, 70, 38)}
    good = True
    for i, (lo, hi, lin_hi) in exp_rows.items():
        wr = [j for j in range(71) if tw[i, j]]
        lr = [j for j in range(71) if tl[i, j]]
        good &= wr == list(range(lo, hi + 1)) and lr == list(range(0, lin_hi + 1))
    report("tk N=71 w=16 rows: window = [start of previous block, i], linear = before it", good)

    # 2. independent loop calculations (float64) vs the torch functions
    g = torch.Generator().manual_seed(7)
    for variant, n, w, rep, fmn, half, bias, affine, state in [
            ("tk", 11, 4, 2, "softmax_dim", 0, False, 0, True),
            ("tk", 5, 8, 1, "exp_dim", 1, True, 1, False),      # N <= w quirk
            ("sw", 9, 3, 2, "relu", 0, True, 1, True),
            ("sw", 7, 16, 1, "pos_elu", 0, False, 0, False)]:
        B, Hk, N, D, f = 2, 1, n, 5, 3
        H = Hk * rep
        x = {"q": randn(g, B, H, N, D), "k": randn(g, B, Hk, N, D), "v": randn(g, B, Hk, N, D),
             "feature_map_q.weight": randn(g, H, D, f, std=0.5),
             "feature_map_k.weight": randn(g, H, D, f, std=0.5),
             "window_factors": LOGIT_01 + uniform(g, H)}
        if bias:
            x["feature_map_q.bias"] = uniform(g, H, lo=0.0, hi=0.5)
            x["feature_map_k.bias"] = uniform(g, H, lo=0.0, hi=0.5)
        Fd = f if (half and fmn in ("softmax_dim", "exp_dim")) or fmn in ("pos_elu", "relu") else 2 * f
        if state:
            x["kv_state"] = uniform(g, B, H, Fd, D)
            x["k_state"] = uniform(g, B, H, Fd, lo=0.5, hi=2.0)
        opts = {"feature_map": fmn, "halfspace": half, "eps": 1e-12, "variant": variant,
                "window": w, "affine": affine}
        out = evaluate("hybrid_attention", x, opts, torch.float64)
        y_l, a_l = loops_hybrid(x, opts)
        ey = (out["y"] - y_l).abs().max().item()
        ea = (out["a"] - a_l).abs().max().item()
        report("hybrid %s N=%d w=%d %s half=%d affine=%d state=%d vs loops" %
               (variant, n, w, fmn, half, affine, state), ey < 1e-12 and ea < 1e-12,
               "(y %.1e, a %.1e)" % (ey, ea))
    x = {"q": randn(g, 2, 4, 9, 5), "k": randn(g, 2, 2, 9, 5), "v": randn(g, 2, 2, 9, 5)}
    e = (evaluate("softmax_attention", x, {}, torch.float64)["y"] - loops_softmax(x)).abs().max().item()
    report("softmax GQA vs loops", e < 1e-12, "(%.1e)" % e)
    for fmn, half in [("softmax_dim", 0), ("softmax_dim", 1), ("exp_dim", 0), ("exp_dim", 1),
                      ("pos_elu", 0), ("relu", 0)]:
        x = {"q": randn(g, 1, 4, 8, 5), "k": randn(g, 1, 2, 8, 5), "v": randn(g, 1, 2, 8, 5),
             "feature_map_q.weight": randn(g, 4, 5, 3, std=0.5),
             "feature_map_k.weight": randn(g, 4, 5, 3, std=0.5),
             "feature_map_q.bias": uniform(g, 4, lo=0.0, hi=0.5),
             "feature_map_k.bias": uniform(g, 4, lo=0.0, hi=0.5)}
        opts = {"feature_map": fmn, "halfspace": half, "eps": 1e-12}
        e = (evaluate("linear_attention", x, opts, torch.float64)["y"]
             - loops_linear(x, opts)).abs().max().item()
        report("linear %s half=%d vs loops" % (fmn, half), e < 1e-12, "(%.1e)" % e)
    # losses vs explicit formulas
    p, t = randn(g, 3, 4).double(), randn(g, 3, 4).double()
    e = abs(mse_loss(p, t, 1000.0)["loss"].item() - 1000.0 * sum(
        (a - b) ** 2 for a, b in zip(p.flatten().tolist(), t.flatten().tolist())) / 12)
    report("mse vs formula", e < 1e-9, "(%.1e)" % e)
    ap = torch.softmax(randn(g, 1, 2, 5, 5).double(), -1).masked_fill(causal_upper(5, 5), 0)
    ap = ap / ap.sum(-1, keepdim=True)
    at = torch.softmax(randn(g, 1, 2, 5, 5).double(), -1).masked_fill(causal_upper(5, 5), 0)
    at = at / at.sum(-1, keepdim=True)
    tot = 0.0
    for r_p, r_t in zip(ap.reshape(-1, 5).tolist(), at.reshape(-1, 5).tolist()):
        lg = [math.log(max(u, 1e-12)) for u in r_p]
        lse = math.log(sum(math.exp(u) for u in lg))
        tot += -sum(tt * (u - lse) for tt, u in zip(r_t, lg))
    e = abs(xent_loss(ap, at, 2.0)["loss"].item() - 2.0 * tot / 10)
    report("xent vs formula (log_softmax of log clamp)", e < 1e-12, "(%.1e)" % e)

    # 3. gradcheck of the float64 functions (tiny shapes; all differentiable inputs)
    def gc(label, op, x, opts, extra_out=("y", "a")):
        names = [n for n in x]
        diff = [n for n in names if n not in ("a_true", "target")]
        base = {n: x[n].double() for n in names}

        def fn(*vals):
            d = dict(base)
            d.update(zip(diff, vals))
            out = op_call(op, d, opts)
            return tuple(out[n] for n in extra_out if n in out)
        vals = tuple(base[n].clone().requires_grad_(True) for n in diff)
        good = torch.autograd.gradcheck(fn, vals, eps=1e-6, atol=1e-6, rtol=1e-5,
                                        raise_exception=False)
        report("gradcheck " + label, bool(good))

    g = torch.Generator().manual_seed(11)
    x = {"q": randn(g, 1, 2, 5, 3), "k": randn(g, 1, 1, 5, 3), "v": randn(g, 1, 1, 5, 3)}
    gc("softmax gqa N=5", "softmax_attention", x, {})
    for fmn, half, bias in [("softmax_dim", 0, False), ("softmax_dim", 1, False), ("exp_dim", 0, False),
                            ("exp_dim", 1, False), ("pos_elu", 0, True), ("relu", 0, True)]:
        x = {"q": randn(g, 1, 2, 5, 3), "k": randn(g, 1, 1, 5, 3), "v": randn(g, 1, 1, 5, 3),
             "feature_map_q.weight": randn(g, 2, 3, 2, std=0.7),
             "feature_map_k.weight": randn(g, 2, 3, 2, std=0.7)}
        if bias:
            x["feature_map_q.bias"] = uniform(g, 2, lo=0.2, hi=0.6)
            x["feature_map_k.bias"] = uniform(g, 2, lo=0.2, hi=0.6)
        gc("linear %s half=%d" % (fmn, half), "linear_attention", x,
           {"feature_map": fmn, "halfspace": half, "eps": 1e-12})
    for variant, n, w, affine, state in [("tk", 7, 2, 0, True), ("tk", 4, 8, 1, False),
                                         ("sw", 7, 3, 1, True), ("sw", 6, 2, 0, False)]:
        x = {"q": randn(g, 1, 2, n, 3), "k": randn(g, 1, 1, n, 3), "v": randn(g, 1, 1, n, 3),
             "feature_map_q.weight": randn(g, 2, 3, 2, std=0.7),
             "feature_map_k.weight": randn(g, 2, 3, 2, std=0.7),
             "window_factors": LOGIT_01 + uniform(g, 2)}
        if state:
            x["kv_state"] = uniform(g, 1, 2, 4, 3)
            x["k_state"] = uniform(g, 1, 2, 4, lo=0.5, hi=2.0)
        gc("hybrid %s N=%d w=%d affine=%d state=%d" % (variant, n, w, affine, state),
           "hybrid_attention", x, {"feature_map": "softmax_dim", "halfspace": 0, "eps": 1e-12,
                                   "variant": variant, "window": w, "affine": affine})
    gc("mse", "mse_loss", {"pred": randn(g, 2, 3), "target": randn(g, 2, 3)}, {"factor": 3.0},
       ("loss",))
    ap = torch.softmax(randn(g, 1, 1, 4, 4), -1)
    at = torch.softmax(randn(g, 1, 1, 4, 4), -1)
    gc("xent", "xent_loss", {"a_pred": ap, "a_true": at}, {"factor": 2.0}, ("loss",))

    # 4. safetensors round trip and float32/float64 consistency of one generated case
    import tempfile
    with tempfile.TemporaryDirectory() as td:
        c = [c for c in CASES if c["name"] == "hybrid_tk_n71_w16_gqa"][0]
        op, x, opts, meta = build_case(c)
        out = evaluate(op, x, opts, torch.float64)
        tensors = list(x.items()) + [(n, out[n].float()) for n in order_outputs(out)]
        path = os.path.join(td, "t.safetensors")
        write_safetensors(path, [(n, t.numpy()) for n, t in tensors], meta)
        back, m2 = read_safetensors(path)
        good = m2 == {k: str(v) for k, v in meta.items()} and list(back) == [n for n, _ in tensors]
        good &= all(np.array_equal(back[n], t.numpy()) for n, t in tensors)
        report("safetensors round trip", good)
    print("selftest:", "PASS" if ok else "FAIL")
    return ok


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--selftest":
        sys.exit(0 if selftest() else 1)
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.stderr.write("usage: gen_golden.py OUTDIR | --selftest\n")
        sys.exit(2)
    generate(sys.argv[1])
