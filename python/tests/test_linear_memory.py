"""O(N) reference runs: `lolcats ref` on a hybrid tk case with gradients and
without --weights keeps its peak RSS (whole process, files included) within 3x
the bytes of its input and output tensors; the (B,H,N,N) weights alone would
be 4x that here."""
import os
import subprocess
import sys

import numpy as np
import pytest

import lolcats
from test_ref_ops import BIN

PROBE = ("import resource, subprocess, sys\n"
         "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
         "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")


def test_hybrid_tk_linear_memory(tmp_path):
    if not os.path.exists(BIN):
        pytest.skip("no %s" % BIN)
    rng = np.random.default_rng(0)
    B, H, N, D, f = 1, 8, 2048, 64, 64
    g = lambda *s: rng.standard_normal(s).astype(np.float32)
    src, dst = str(tmp_path / "big.safetensors"), str(tmp_path / "big_out.safetensors")
    lolcats.write_case(src, {"q": g(B, H, N, D), "k": g(B, H, N, D), "v": g(B, H, N, D),
                             "feature_map_q.weight": g(H, D, f) * 0.1, "feature_map_k.weight": g(H, D, f) * 0.1,
                             "window_factors": g(H), "dy": g(B, H, N, D)},
                       {"op": "hybrid_attention", "variant": "tk"})
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-c", PROBE, BIN, "ref", src, dst], capture_output=True, text=True, env=env)
    rc, kib = map(int, p.stdout.split())
    assert rc == 0
    out, _ = lolcats.read_case(dst)
    assert "a" not in out and "dq" in out
    io = os.path.getsize(src) + os.path.getsize(dst)
    weights = 4 * B * H * N * N
    assert weights > 3 * io
    assert kib * 1024 <= 3 * io, "peak RSS %.1f MB > 3 x %.1f MB of input + output" % (kib / 1024, io / 1e6)
