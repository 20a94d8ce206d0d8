"""The edge grid: the same bytes from `lolcats ref --grid` and `python -m
lolcats.grid` (seeded: regenerable), every case's expected outputs reproduced
by the module's op functions from the case's args, bit for bit."""
import os
import subprocess
import sys

import numpy as np
import pytest

import lolcats
import lolcats.grid
from conftest import ROOT
from test_ref_ops import BIN, same_bits


@pytest.fixture(scope="module")
def grid_dir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("grid") / "py")
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "lolcats.grid", d], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    return d


def test_grid_contents(grid_dir):
    names = lolcats.grid.names()
    assert len(names) == len(set(names)) == len(os.listdir(grid_dir))
    for n in (1, 2, 63, 64, 65, 127, 128, 129, 1000):
        assert "tk_n%d" % n in names and "sw_n%d" % n in names
    assert sum(n.startswith("decode_p") for n in names) == 64
    for n in ("tk_gqa1", "tk_gqa4", "tk_gqa8", "tk_d60", "tk_d128", "tk_b3", "tk_logits8", "tk_ties",
              "tk_n40_w128", "tk_sinks4", "sw_sinks4", "tk_sinks1_n40", "sw_sinks4_state", "tk_sinks4_da"):
        assert n in names


def test_cli_grid_same_bytes(grid_dir, tmp_path):
    if not os.path.exists(BIN):
        pytest.skip("no %s" % BIN)
    d = str(tmp_path / "cli")
    p = subprocess.run([BIN, "ref", "--grid", d], capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(d)) == sorted(os.listdir(grid_dir))
    for f in os.listdir(d):
        with open(os.path.join(d, f), "rb") as a, open(os.path.join(grid_dir, f), "rb") as b:
            assert a.read() == b.read(), f


OPS = {"hybrid_attention": lolcats.hybrid_attention, "softmax_attention": lolcats.softmax_attention,
       "linear_attention": lolcats.linear_attention}


def test_grid_expected_reproduced(grid_dir):
    cs = lolcats.grid.cases(grid_dir)
    assert len(cs) == len(lolcats.grid.names())
    for c in cs:
        got = OPS[c.op](**c.args)
        same_bits(got, c.expected)
        assert list(c.expected_f64) == list(c.expected)
        for k, m in lolcats.compare(c.expected_f64, got).items():
            # mathematically zero outputs (N = 1 gradients, d_window_factors of
            # sw with N <= w) have no meaningful RMS ratio: absolute there
            zero = np.sqrt(np.mean(np.square(c.expected_f64[k].astype(np.float64)))) < 1e-6
            assert (m["max_abs"] <= 1e-3) if zero else (m["rms_ratio"] <= (1e-3 if k == "d_window_factors" else 1e-5)), (c.name, k, m)
        if c.name == "tk_ties":                        # the ties are there
            k = c.inputs["k"]
            assert np.array_equal(k[:, :, 1::2], k[:, :, 0:-1:2][:, :, :k[:, :, 1::2].shape[2]])


def test_cli_grid_errors(tmp_path):
    if not os.path.exists(BIN):
        pytest.skip("no %s" % BIN)
    f = tmp_path / "file"
    f.write_text("x")
    for args, code, msg in ((["--grid", str(f)], 1, "expected a directory"),
                            (["--grid", str(tmp_path / "no" / "dir")], 1, "cannot create the directory"),
                            (["a", "b", "--grid", str(tmp_path / "g")], 2, "takes no IN/OUT"),
                            (["--grid"], 2, "--grid needs a value")):
        p = subprocess.run([BIN, "ref"] + args, capture_output=True, text=True)
        assert p.returncode == code and msg in p.stderr, (args, p.returncode, p.stderr)
