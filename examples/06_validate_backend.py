#!/usr/bin/python3
"""06_validate_backend.py - checking another implementation against lolcats.h.

    make build/lolcats && /usr/bin/python3 examples/06_validate_backend.py

A backend (PyTorch, Triton, CUDA, another C library) is validated by running
the same case through it and through `lolcats ref`, then `lolcats compare`.
This script plays the backend: the LoLCATs hybrid attention (tk window,
Hedgehog softmax_dim feature maps, GQA) written naively in NumPy from
LOLCATS_MATH.md sections 2, 5 and 6 - no lolcats code. It

1. makes a seeded case (B=1, H=2 query heads sharing Hk=1 kv head, N=40, D=8,
   f=8, window 16: the tk blocks are aligned to the END of the sequence, so the
   first block is partial) and writes it as safetensors with NumPy alone
   (8-byte header length, JSON header, raw little-endian data);
2. runs `lolcats ref case.safetensors ref.safetensors` (the reference output y);
3. writes its own y and runs `lolcats compare ref.safetensors ours.safetensors`,
   printing compare's table and verdict;
4. does the same with a deliberately wrong variant - the linear terms rescaled
   by exp(-m_i) like the window terms (a "numerically nicer" log-sum-exp form
   that LOLCATS_MATH.md section 5 says is a different model) - which compare
   must reject.

Exits 0 when the naive backend passes and the wrong one fails. Options:
--bin PATH (default $LOLCATS_BIN or build/lolcats), --dir DIR for the files
(default: a temporary directory, removed afterwards).
Needs /usr/bin/python3 with NumPy only.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

B, H, HK, N, D, FD, W = 1, 2, 1, 40, 8, 8, 16


def st_write(path, tensors, meta):
    """safetensors: u64 header length, JSON header (padded to 8), raw data."""
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def st_read(path):
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack("<Q", buf[:8])[0]
    header, out = json.loads(buf[8:8 + n]), {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        b0, b1 = info["data_offsets"]
        out[name] = np.frombuffer(buf[8 + n + b0:8 + n + b1], dtype="<f4").reshape(info["shape"])
    return out


def softmax_dim(x, w):
    """Hedgehog: z = x W_h; [softmax(z) (+) softmax(-z)], clamped at 1e-12."""
    z = np.einsum("bhnd,hdf->bhnf", x, w)
    def sm(t):
        e = np.exp(t - t.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    return np.maximum(np.concatenate([sm(z), sm(-z)], -1), np.float32(1e-12)).astype(np.float32)


def tk_masks(n, w):
    """Section 6: blocks of w aligned to the end; window = own block (causal) + previous one."""
    pad = w * -(-n // w) - n
    blk = (np.arange(n) + pad) // w
    causal = np.tril(np.ones((n, n), bool))
    bi, bj = blk[:, None], blk[None, :]
    win = causal & ((bj == bi) | (bj == bi - 1))
    lin = causal & (bj < bi - 1)
    if n <= w:  # the original's quirk: both masks on every causal key
        win, lin = causal, causal
    return win, lin


def hybrid(q, k, v, wq, wk, wf, wrong=False):
    """Section 5, naively: y_i = sum_j (E_ij + L_ij) v_j / sum_j (E_ij + L_ij)."""
    rep = H // HK
    k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)  # GQA: head h reads kv head h // rep
    pq, pk = softmax_dim(q, wq), softmax_dim(k, wk)              # maps after the GQA mapping
    win, lin = tk_masks(N, W)
    s = np.einsum("bhid,bhjd->bhij", q, k) / np.float32(np.sqrt(D))
    m = np.where(win, s, -np.inf).max(-1, keepdims=True)         # max over the WINDOW keys only
    gamma = (1 / (1 + np.exp(-wf))).reshape(1, H, 1, 1)
    e = np.where(win, gamma * np.exp(s - m), 0)
    lam = np.einsum("bhif,bhjf->bhij", pq, pk)
    if wrong:
        lam = lam * np.exp(-m)                                    # the plausible, wrong rescaling
    lam = np.where(lin, lam, 0)
    num = np.einsum("bhij,bhjd->bhid", e + lam, v)
    return (num / (e + lam).sum(-1, keepdims=True)).astype(np.float32)


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    return r.returncode, r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("LOLCATS_BIN", "build/lolcats"))
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    if not os.access(a.bin, os.X_OK):
        print("06_validate_backend: error: no lolcats binary at %s (make build/lolcats, or --bin PATH)" % a.bin)
        return 2
    d = a.dir or tempfile.mkdtemp(prefix="lolcats-validate-")
    os.makedirs(d, exist_ok=True)
    try:
        rng = np.random.default_rng(2026)
        q = rng.standard_normal((B, H, N, D)).astype(np.float32)
        k = rng.standard_normal((B, HK, N, D)).astype(np.float32)
        v = rng.standard_normal((B, HK, N, D)).astype(np.float32)
        wq = (np.tile(np.eye(D, FD), (H, 1, 1)) + 0.3 * rng.standard_normal((H, D, FD))).astype(np.float32)
        wk = (np.tile(np.eye(D, FD), (H, 1, 1)) + 0.3 * rng.standard_normal((H, D, FD))).astype(np.float32)
        wf = np.array([-2.1972246, 0.5], np.float32)              # gamma 0.1 and 0.62
        case = os.path.join(d, "case.safetensors")
        ref = os.path.join(d, "ref.safetensors")
        st_write(case, {"q": q, "k": k, "v": v, "feature_map_q.weight": wq, "feature_map_k.weight": wk,
                        "window_factors": wf},
                 {"op": "hybrid_attention", "variant": "tk", "window": str(W), "feature_map": "softmax_dim"})
        print("case: hybrid_attention tk, window %d, B=%d H=%d Hk=%d N=%d D=%d f=%d (F=%d), softmax_dim maps"
              % (W, B, H, HK, N, D, FD, 2 * FD))
        rc, out = run([a.bin, "ref", case, ref])
        if rc != 0:
            print(out)
            print("06_validate_backend: error: lolcats ref failed (exit %d)" % rc)
            return 1
        y_ref = st_read(ref)["y"]
        verdicts = {}
        for label, wrong in (("naive NumPy backend", False), ("wrong variant: linear terms * exp(-m_i)", True)):
            y = hybrid(q, k, v, wq, wk, wf, wrong)
            path = os.path.join(d, "wrong.safetensors" if wrong else "ours.safetensors")
            st_write(path, {"y": y}, {})
            rc, out = run([a.bin, "compare", ref, path, "--only", "y"])
            print("\n== %s: lolcats compare ref.safetensors %s --only y (exit %d)" % (label, os.path.basename(path), rc))
            print(out.rstrip())
            print("   max |y - y_ref| = %.2e, max |y_ref| = %.3f" % (float(np.abs(y - y_ref).max()), float(np.abs(y_ref).max())))
            verdicts[wrong] = rc
        ok = verdicts[False] == 0 and verdicts[True] == 1
        if ok:
            print("\nverdict: OK - the naive NumPy hybrid passes compare against lolcats ref; the exp(-m_i)-rescaled "
                  "variant is rejected")
        else:
            print("\nverdict: UNEXPECTED - compare exit %d for the naive backend (want 0), %d for the wrong one "
                  "(want 1)" % (verdicts[False], verdicts[True]))
        return 0 if ok else 1
    finally:
        if a.dir is None:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
