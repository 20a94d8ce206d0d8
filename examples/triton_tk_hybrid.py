"""triton_tk_hybrid.py - a small Triton forward kernel for the LoLCATs `tk`
hybrid (terraced sliding window + linear attention), written to show how a
kernel author checks a backend against lolcats.h's reference with the Python
module, over the edge grid (`lolcats ref --grid` / `python -m lolcats.grid`).

The feature maps run in PyTorch (examples/torch_lolcats.py); the kernel takes
q, k, v, phi(q), phi(k), the window factors and an optional carried state and
computes y. One program per (query block, b*h): pass 1 takes m_i, the max of
the window scores; pass 2 sums gamma exp(s - m_i) over the window keys and
lambda phi(q).phi(k) over the linear keys (and the state), then divides. It
is quadratic and unoptimised on purpose: the point is the check.

    python3 examples/triton_tk_hybrid.py [--grid DIR] [--note FILE] [--tf32]

--tf32 runs the products as TF32 (tl.dot's default on this GPU) to show how a
precision mismatch is localised with the reference's intermediates.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import triton
import triton.language as tl

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, HERE)
import lolcats  # noqa: E402
import lolcats.grid  # noqa: E402
import torch_lolcats  # noqa: E402


@triton.jit
def _tk_hybrid_fwd(Q, K, V, PQ, PK, WF, S0, Z0, Y, N, H, HK, pad, window, scale,
                   AFFINE: tl.constexpr, HAS_STATE: tl.constexpr, QUIRK: tl.constexpr, PREC: tl.constexpr,
                   D: tl.constexpr, F: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                   BD: tl.constexpr, BF: tl.constexpr):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    g = b * HK + h // (H // HK)
    rows = pid_m * BM + tl.arange(0, BM)
    od = tl.arange(0, BD)
    of = tl.arange(0, BF)
    rm, dm, fm = rows < N, od < D, of < F
    q = tl.load(Q + (bh * N + rows[:, None]) * D + od[None, :], mask=rm[:, None] & dm[None, :], other=0.0)
    pq = tl.load(PQ + (bh * N + rows[:, None]) * F + of[None, :], mask=rm[:, None] & fm[None, :], other=0.0)
    wf = tl.load(WF + h)
    gam = 1.0 / (1.0 + tl.exp(-wf))
    if AFFINE:
        lam = 1.0 - gam
    else:
        lam = 1.0
    bi = (rows + pad) // window
    hi = tl.minimum((pid_m + 1) * BM, N)
    m = tl.full([BM], -float("inf"), tl.float32)
    for j0 in range(0, hi, BN):                      # pass 1: m_i over the window keys
        cols = j0 + tl.arange(0, BN)
        cm = cols < N
        k = tl.load(K + (g * N + cols[:, None]) * D + od[None, :], mask=cm[:, None] & dm[None, :], other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=PREC) * scale
        causal = (cols[None, :] <= rows[:, None]) & cm[None, :]
        bj = (cols + pad) // window
        if QUIRK:
            win = causal
        else:
            win = causal & (bj[None, :] >= bi[:, None] - 1)
        m = tl.maximum(m, tl.max(tl.where(win, s, -float("inf")), 1))
    acc = tl.zeros([BM, BD], tl.float32)
    den = tl.zeros([BM], tl.float32)
    for j0 in range(0, hi, BN):                      # pass 2: numerator and denominator
        cols = j0 + tl.arange(0, BN)
        cm = cols < N
        k = tl.load(K + (g * N + cols[:, None]) * D + od[None, :], mask=cm[:, None] & dm[None, :], other=0.0)
        v = tl.load(V + (g * N + cols[:, None]) * D + od[None, :], mask=cm[:, None] & dm[None, :], other=0.0)
        pk = tl.load(PK + (bh * N + cols[:, None]) * F + of[None, :], mask=cm[:, None] & fm[None, :], other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=PREC) * scale
        causal = (cols[None, :] <= rows[:, None]) & cm[None, :]
        bj = (cols + pad) // window
        if QUIRK:
            win = causal
            lin = causal
        else:
            win = causal & (bj[None, :] >= bi[:, None] - 1)
            lin = causal & (bj[None, :] < bi[:, None] - 1)
        e = tl.where(win, gam * tl.exp(s - m[:, None]), 0.0)
        a = tl.where(lin, lam * tl.dot(pq, tl.trans(pk), input_precision=PREC), 0.0)
        w = e + a
        den += tl.sum(w, 1)
        acc += tl.dot(w, v, input_precision=PREC)
    if HAS_STATE:
        S = tl.load(S0 + (bh * F + of[:, None]) * D + od[None, :], mask=fm[:, None] & dm[None, :], other=0.0)
        z = tl.load(Z0 + bh * F + of, mask=fm, other=0.0)
        acc += lam * tl.dot(pq, S, input_precision=PREC)
        den += lam * tl.sum(pq * z[None, :], 1)
    y = acc / den[:, None]
    tl.store(Y + (bh * N + rows[:, None]) * D + od[None, :], y, mask=rm[:, None] & dm[None, :])


def tk_hybrid(q, k, v, phiq, phik, wf, window=64, affine=False, kv_state=None, k_state=None, tf32=False):
    """y (B,H,N,D) of the tk hybrid on CUDA tensors (float32, contiguous)."""
    B, H, N, D = q.shape
    F = phiq.shape[-1]
    y = torch.empty_like(q)
    BM = BN = 32
    pad = window * math.ceil(N / window) - N
    S = kv_state if kv_state is not None else q.new_zeros(1)
    z = k_state if k_state is not None else q.new_zeros(1)
    grid = (triton.cdiv(N, BM), B * H)
    _tk_hybrid_fwd[grid](q, k, v, phiq, phik, wf, S, z, y, N, H, k.shape[1], pad, window, 1.0 / math.sqrt(D),
                         AFFINE=bool(affine), HAS_STATE=kv_state is not None, QUIRK=N <= window,
                         PREC="tf32" if tf32 else "ieee", D=D, F=F, BM=BM, BN=BN,
                         BD=max(16, triton.next_power_of_2(D)), BF=max(16, triton.next_power_of_2(F)))
    return y


def backend(case, tf32=False):
    """The backend under test: PyTorch feature maps on the GPU + the kernel."""
    a = {k: (torch.tensor(v, device="cuda") if isinstance(v, np.ndarray) else v) for k, v in case.args.items()}
    fm = dict(act=a["feature_map"], halfspace=a["halfspace"])
    phiq = torch_lolcats.feature_map(a["q"], a["fmap_q"], a.get("fmap_q_bias"), **fm).contiguous()
    phik = torch_lolcats.feature_map(a["k"], a["fmap_k"], a.get("fmap_k_bias"), **fm).contiguous()
    y = tk_hybrid(a["q"], a["k"], a["v"], phiq, phik, a["window_factors"], a["window"], a["affine"],
                  a.get("kv_state"), a.get("k_state"), tf32)
    return {"y": y.cpu().numpy(), "phi_q": phiq.cpu().numpy(), "phi_k": phik.cpu().numpy()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", default="/tmp/lolcats_grid")
    ap.add_argument("--note", default=None)
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--ratio", type=float, default=5e-6)
    o = ap.parse_args()
    if not os.path.isdir(o.grid) or not os.listdir(o.grid):
        lolcats.grid.write(o.grid)
    lines = ["%s, torch %s, triton %s, %s products" % (torch.cuda.get_device_name(), torch.__version__,
                                                       triton.__version__, "TF32" if o.tf32 else "IEEE fp32")]
    ok = bad = 0
    t0 = time.time()
    for c in lolcats.grid.cases(o.grid):
        if c.op != "hybrid_attention" or c.args["variant"] != "tk" or c.args.get("sinks", 0):
            continue   # this kernel is the original's tk hybrid: no attention sinks
        got = backend(c, o.tf32)
        m = lolcats.metrics(c.expected_f64["y"], got["y"])
        passed = m["rms_ratio"] <= o.ratio and m["nan_test"] == 0
        ok += passed
        bad += not passed
        line = "%-16s N=%-5d y rms_ratio %.2e max_abs %.2e  %s" % (c.name, c.args["q"].shape[2], m["rms_ratio"],
                                                                  m["max_abs"], "PASS" if passed else "FAIL")
        if not passed:   # localise with the intermediates: feature maps, or the attention?
            ref = lolcats.hybrid_attention(**dict(c.args, grads=None, da=None), intermediates=True, precision="f64")
            for k in ("phi_q", "phi_k"):
                line += "\n    %-6s rms_ratio %.2e" % (k, lolcats.metrics(ref[k], got[k])["rms_ratio"])
        lines.append(line)
    lines.append("%d PASS, %d FAIL (tk hybrid cases of the grid, y vs the f64 reference, rms ratio <= %g) in %.1f s"
                 % (ok, bad, o.ratio, time.time() - t0))
    text = "\n".join(lines)
    print(text)
    if o.note:
        with open(o.note, "w") as f:
            f.write(text + "\n")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
