"""examples/torch_lolcats.py, PyTorch's own float32 autograd on the original's
quadratic formulation, checked on the CPU against the reference over the edge
grid: the three-line pattern of README "Validating your backend"."""
import os
import sys

import numpy as np
import pytest

import lolcats
import lolcats.grid
from conftest import ROOT

torch = pytest.importorskip("torch", reason="SKIPPED: no PyTorch for examples/torch_lolcats.py")
sys.path.insert(0, os.path.join(ROOT, "examples"))
import torch_lolcats  # noqa: E402

GRID = None


def grid_cases(tmp_path_factory):
    global GRID
    if GRID is None:
        d = str(tmp_path_factory.mktemp("grid_torch"))
        lolcats.grid.write(d)
        GRID = lolcats.grid.cases(d)
    return GRID


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return grid_cases(tmp_path_factory)


def test_torch_quadratic_over_grid(cases):
    torch.set_num_threads(1)
    worst = {}
    for c in cases:
        got = {k: v.numpy() for k, v in torch_lolcats.run_case(c).items()}
        ref = {k: c.expected_f64[k] for k in got}
        for k, m in lolcats.compare(ref, got).items():
            if np.sqrt(np.mean(np.square(ref[k].astype(np.float64)))) < 1e-6:
                assert m["max_abs"] <= 1e-3, (c.name, k, m)       # a mathematical zero
                continue
            lim = 2e-3 if k == "d_window_factors" else 5e-5
            assert m["rms_ratio"] <= lim and m["nan_test"] == 0, (c.name, k, m)
            worst[k] = max(worst.get(k, 0), m["rms_ratio"])
    print("worst rms ratio of PyTorch float32 vs the f64 reference over the grid:", worst)
