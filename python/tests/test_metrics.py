"""assert_close / compare: max abs, max rel, worst index, NaN/Inf counts and
fla's RMS ratio; the same numbers as `lolcats compare --json`."""
import json
import os
import subprocess

import numpy as np
import pytest

import lolcats
from test_ref_ops import BIN


def test_rms_ratio_and_worst():
    a = np.array([3.0, 4.0, 0.0], np.float32)
    b = np.array([3.0, 4.0, 0.5], np.float32)
    m = lolcats.metrics(a, b)
    assert m["rms_ratio"] == pytest.approx(0.1, rel=1e-12)
    assert m["max_abs"] == 0.5 and m["worst"] == (2,) and m["fails"] == 1
    lolcats.assert_close(a, b, ratio=0.11)
    with pytest.raises(AssertionError, match=r"rms_ratio 1\.000e-01.*worst \(2,\)"):
        lolcats.assert_close(a, b, ratio=0.09)
    with pytest.raises(AssertionError, match=r"max_abs 5\.000e-01"):
        lolcats.assert_close(a, b)


def test_nonfinite_counts():
    a = np.array([np.nan, 1.0, np.inf, 2.0], np.float32)
    b = np.array([np.nan, 1.0, np.inf, np.inf], np.float32)
    m = lolcats.metrics(a, b)
    assert (m["nan_ref"], m["nan_test"], m["inf_ref"], m["inf_test"]) == (1, 1, 1, 2)
    assert m["worst"] == (0,)                 # NaN vs NaN fails first without equal_nan
    m = lolcats.metrics(a, b, equal_nan=True)
    assert m["worst"] == (3,) and m["fails"] == 1
    with pytest.raises(AssertionError, match="inf 1/2"):
        lolcats.assert_close(a, b, equal_nan=True, ratio=1.0)


def test_dicts_and_shapes():
    rng = np.random.default_rng(0)
    ref = {"y": rng.standard_normal((2, 3)).astype(np.float32), "dq": np.ones(4, np.float32)}
    test = {"y": ref["y"] * (1 + 1e-6)}
    lolcats.assert_close(ref, test)                          # a subset of names is fine
    with pytest.raises(KeyError, match="'dz'"):
        lolcats.assert_close(ref, {"dz": ref["dq"]})
    with pytest.raises(AssertionError, match=r"dq .*shape \(4,\) vs \(5,\)"):
        lolcats.assert_close(ref, {"dq": np.ones(5, np.float32)})
    bad = ref["y"].copy()
    bad[1, 2] += 1
    with pytest.raises(AssertionError, match=r"y .*worst \(1, 2\)"):
        lolcats.assert_close(ref, {"y": bad})


def test_same_numbers_as_cli(tmp_path):
    if not os.path.exists(BIN):
        pytest.skip("no %s" % BIN)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 5, 7)).astype(np.float32)
    b = (a + rng.standard_normal(a.shape).astype(np.float32) * 1e-3).astype(np.float32)
    b[1, 2, 3] = np.inf
    pa, pb = str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")
    lolcats.write_case(pa, {"y": a})
    lolcats.write_case(pb, {"y": b})
    p = subprocess.run([BIN, "compare", pa, pb, "--json", "--metric", "fla", "--ratio", "0.01"],
                       capture_output=True, text=True)
    row = json.loads(p.stdout)["tensors"][0]
    m = lolcats.metrics(a, b)
    assert row["max_abs"] == pytest.approx(m["max_abs"], rel=1e-5)
    assert row["max_rel"] == pytest.approx(m["max_rel"], rel=1e-5)
    assert row["rms_ratio"] == pytest.approx(m["rms_ratio"], rel=1e-5)
    assert (row["inf_a"], row["inf_b"]) == (m["inf_ref"], m["inf_test"])
    assert tuple(row["worst"]) == m["worst"] == (1, 2, 3)
    assert p.returncode == 1 and row["status"] == "FAIL"     # the inf mismatch fails fla too
