"""torch_lolcats.py - LoLCATs attention in plain PyTorch, written the way the
original computes it (quadratic: the full score matrix, boolean masks, the max
over the window scores, autograd for the backward), from LOLCATS_MATH.md.
It is the worked example of checking an implementation against lolcats.h's
reference with the Python module: python/tests/test_torch_example.py runs it
on the CPU over the edge grid, and examples/triton_tk_hybrid.py uses its
feature maps in front of a Triton kernel.

    from torch_lolcats import run_case
    out = run_case(case)        # case: lolcats.grid.Case; out: {name: tensor}
"""
import math

import torch


def feature_map(x, w, b=None, act="softmax_dim", halfspace=False, eps=1e-12):
    """x (B,Hx,N,D) with one map per query head: w (H,D,f) -> (B,H,N,F). x is
    repeated to H heads first (GQA), as the original maps keys per query head."""
    H = w.shape[0]
    if x.shape[1] != H:
        x = x.repeat_interleave(H // x.shape[1], dim=1)
    z = torch.einsum("bhnd,hdf->bhnf", x, w)
    if b is not None:
        z = z + b.reshape(1, H, 1, 1)
    if act == "softmax_dim":
        parts = [torch.softmax(z, -1)] + ([] if halfspace else [torch.softmax(-z, -1)])
    elif act == "exp_dim":
        parts = [torch.exp(z - torch.amax(z, -1, keepdim=True))]
        if not halfspace:
            parts.append(torch.exp(-z + torch.amin(z, -1, keepdim=True)))
    elif act == "pos_elu":
        parts = [1 + torch.nn.functional.elu(z)]
    else:
        parts = [torch.relu(z)]
    return torch.clamp(torch.cat(parts, -1), min=eps)


def masks(N, window, variant, device=None, sinks=0):
    """(window mask, linear mask), (N, N) booleans of section 6; with sinks S the
    first S keys are window keys of every later query and never linear keys."""
    i = torch.arange(N, device=device)[:, None]
    j = torch.arange(N, device=device)[None, :]
    causal = j <= i
    sink = causal & (j < sinks)
    if variant == "sw":
        W, L = causal & (j > i - window), causal & (j <= i - window)
    elif N <= window:                    # the original's quirk: both on every causal key
        return causal, causal & ~sink
    else:
        pad = window * math.ceil(N / window) - N
        bi, bj = (i + pad) // window, (j + pad) // window
        W, L = causal & (bj >= bi - 1), causal & (bj < bi - 1)
    return W | sink, L & ~sink


def hybrid(q, k, v, phiq, phik, wf, variant="tk", window=64, affine=False, kv_state=None, k_state=None,
           sinks=0):
    """y (B,H,N,D) and the weights a (B,H,N,N)."""
    B, H, N, D = q.shape
    rep = H // k.shape[1]
    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    W, L = masks(N, window, variant, q.device, sinks)
    s = torch.einsum("bhid,bhjd->bhij", q, k) / math.sqrt(D)
    s = s.masked_fill(~W, -float("inf"))
    m = torch.amax(s, -1, keepdim=True)          # over the window keys only
    gam = torch.sigmoid(wf.reshape(1, H, 1, 1))
    lam = 1 - gam if affine else torch.ones_like(gam)
    e = gam * torch.exp(s - m)                   # not rescaled below: m is part of the function
    lin = lam * torch.einsum("bhif,bhjf->bhij", phiq, phik).masked_fill(~L, 0.0)
    w = e + lin
    num, den = w @ v, w.sum(-1, keepdim=True)
    a = w / den
    if kv_state is not None:
        num = num + lam * torch.einsum("bhif,bhfd->bhid", phiq, kv_state)
        den = den + lam * torch.einsum("bhif,bhf->bhi", phiq, k_state)[..., None]
    return num / den, a


def softmax(q, k, v):
    B, H, N, D = q.shape
    rep = H // k.shape[1]
    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    s = torch.einsum("bhid,bhjd->bhij", q, k) / math.sqrt(D)
    causal = torch.ones(N, N, dtype=torch.bool, device=q.device).tril()
    a = torch.softmax(s.masked_fill(~causal, -float("inf")), -1)
    return a @ v, a


def linear(q, k, v, phiq, phik, eps=1e-12):
    N = q.shape[2]
    v = v.repeat_interleave(q.shape[1] // v.shape[1], 1)
    A = torch.einsum("bhif,bhjf->bhij", phiq, phik).tril()
    return (A @ v) / (A.sum(-1, keepdim=True) + eps), None


_NAMES = {"q": "dq", "k": "dk", "v": "dv", "fmap_q": "d_feature_map_q.weight",
          "fmap_k": "d_feature_map_k.weight", "fmap_q_bias": "d_feature_map_q.bias",
          "fmap_k_bias": "d_feature_map_k.bias", "window_factors": "d_window_factors",
          "kv_state": "d_kv_state", "k_state": "d_k_state"}


def run_case(case, dtype=torch.float32, device="cpu"):
    """Forward and (with the case's dy / da) backward of a lolcats.grid.Case
    through autograd: {output name: tensor}, the names `lolcats ref` writes."""
    a = case.args
    t = {k: torch.tensor(v, dtype=dtype, device=device, requires_grad=True)
         for k, v in a.items() if k in _NAMES}
    if case.op == "softmax_attention":
        y, w = softmax(t["q"], t["k"], t["v"])
    else:
        fm = dict(act=a["feature_map"], halfspace=a["halfspace"])
        phiq = feature_map(t["q"], t["fmap_q"], t.get("fmap_q_bias"), **fm)
        phik = feature_map(t["k"], t["fmap_k"], t.get("fmap_k_bias"), **fm)
        if case.op == "linear_attention":
            y, w = linear(t["q"], t["k"], t["v"], phiq, phik)
        else:
            y, w = hybrid(t["q"], t["k"], t["v"], phiq, phik, t["window_factors"], a["variant"], a["window"],
                          a["affine"], t.get("kv_state"), t.get("k_state"), a.get("sinks", 0))
    out = {"y": y}
    loss = 0
    if "grads" in a:
        loss = loss + (y * torch.tensor(a["grads"], dtype=dtype, device=device)).sum()
    if "da" in a:
        out["a"] = w
        loss = loss + (w * torch.tensor(a["da"], dtype=dtype, device=device)).sum()
    if torch.is_tensor(loss):
        loss.backward()
        for k, x in t.items():
            if case.op == "softmax_attention" and k not in ("q", "k", "v"):
                continue
            out[_NAMES[k]] = x.grad if x.grad is not None else torch.zeros_like(x)
    return {k: v.detach() for k, v in out.items()}
