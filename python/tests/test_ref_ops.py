"""Every op of the `lolcats ref` contract through the Python module against the
command-line tool (LOLCATS_BIN, default build/lolcats), bit for bit, and the
Python API's refusal of malformed inputs."""
import os
import subprocess

import numpy as np
import pytest

import lolcats
from conftest import ROOT

BIN = os.environ.get("LOLCATS_BIN") or os.path.join(ROOT, "build", "lolcats")
if not os.path.isabs(BIN):
    BIN = os.path.join(ROOT, BIN)


def cli(tmp_path, tensors, meta, *flags):
    """The same case through `lolcats ref`, files included."""
    if not os.path.exists(BIN):
        pytest.skip("no %s (make build/lolcats)" % BIN)
    src, dst = str(tmp_path / "case.safetensors"), str(tmp_path / "out.safetensors")
    lolcats.write_case(src, tensors, meta)
    p = subprocess.run([BIN, "ref", src, dst] + list(flags), capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    out, m = lolcats.read_case(dst)
    assert m["op"] == meta["op"]
    return out


def same_bits(py, ref):
    assert list(py) == list(ref), "outputs differ: python %s vs cli %s" % (list(py), list(ref))
    for k in ref:
        a = np.ascontiguousarray(py[k], dtype=np.float32).ravel()
        b = ref[k].ravel()
        assert a.shape == b.shape, k
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32)), \
            "%s: %d elements differ in bits" % (k, int((a.view(np.uint32) != b.view(np.uint32)).sum()))


def rnd(rng, *shape, s=1.0):
    return (rng.standard_normal(shape) * s).astype(np.float32)


def qkv(rng, B=2, H=4, Hk=2, N=70, D=8):
    return rnd(rng, B, H, N, D), rnd(rng, B, Hk, N, D), rnd(rng, B, Hk, N, D)


@pytest.mark.parametrize("grad,da,weights,scalar", [(0, 0, 0, 0), (1, 0, 0, 0), (1, 1, 0, 0),
                                                    (0, 0, 1, 0), (1, 0, 1, 1)])
def test_softmax(tmp_path, grad, da, weights, scalar):
    rng = np.random.default_rng(1)
    q, k, v = qkv(rng)
    t = {"q": q, "k": k, "v": v}
    kw = {}
    if grad:
        t["dy"] = kw["grads"] = rnd(rng, *q.shape)
    if da:
        t["da"] = kw["da"] = rnd(rng, 2, 4, 70, 70)
    py = lolcats.softmax_attention(q, k, v, weights=bool(weights), scalar=bool(scalar), **kw)
    flags = (["--weights"] if weights else []) + (["--scalar"] if scalar else [])
    ref = cli(tmp_path, t, {"op": "softmax_attention"}, *flags)
    same_bits(py, ref)
    assert ("a" in py) == bool(weights or da)


@pytest.mark.parametrize("fmap,bias,state,grad", [("softmax_dim", 0, 0, 1), ("exp_dim", 1, 0, 1),
                                                  ("pos_elu", 0, 1, 1), ("relu", 1, 1, 0)])
def test_linear(tmp_path, fmap, bias, state, grad):
    rng = np.random.default_rng(2)
    q, k, v = qkv(rng)
    wq, wk = rnd(rng, 4, 8, 5, s=0.3), rnd(rng, 4, 8, 5, s=0.3)
    t = {"q": q, "k": k, "v": v, "feature_map_q.weight": wq, "feature_map_k.weight": wk}
    kw = {}
    if bias:
        t["feature_map_q.bias"] = kw["fmap_q_bias"] = rnd(rng, 4)
        t["feature_map_k.bias"] = kw["fmap_k_bias"] = rnd(rng, 4)
    if grad:
        t["dy"] = kw["grads"] = rnd(rng, *q.shape)
    py = lolcats.linear_attention(q, k, v, wq, wk, feature_map=fmap, linear_state=bool(state), **kw)
    ref = cli(tmp_path, t, {"op": "linear_attention", "feature_map": fmap},
              *(["--linear-state"] if state else []))
    same_bits(py, ref)


HYB = [dict(variant="tk"), dict(variant="sw"), dict(variant="tk", affine=1, window=16),
       dict(variant="sw", window=100, halfspace=1), dict(variant="tk", bias=1, state=1),
       dict(variant="tk", da=1), dict(variant="sw", weights=1, scalar=1),
       dict(variant="tk", Hk=1, feature_map="relu"), dict(variant="tk", nograd=1, N=1),
       dict(variant="sw", N=129, Hk=4, window=64, state=1, scalar=1)]


@pytest.mark.parametrize("c", HYB, ids=[",".join("%s=%s" % kv for kv in c.items()) for c in HYB])
def test_hybrid(tmp_path, c):
    rng = np.random.default_rng(3)
    B, H, Hk, N, D, f = 2, 4, c.get("Hk", 2), c.get("N", 70), 8, 5
    q, k, v = qkv(rng, B, H, Hk, N, D)
    wq, wk, wf = rnd(rng, H, D, f, s=0.3), rnd(rng, H, D, f, s=0.3), rnd(rng, H)
    fm = c.get("feature_map", "softmax_dim")
    F = 2 * f if fm in ("softmax_dim", "exp_dim") and not c.get("halfspace") else f
    if c.get("halfspace"):
        F = f
    t = {"q": q, "k": k, "v": v, "feature_map_q.weight": wq, "feature_map_k.weight": wk,
         "window_factors": wf}
    kw = dict(variant=c["variant"], window=c.get("window", 64), feature_map=fm,
              affine=bool(c.get("affine")), halfspace=bool(c.get("halfspace")))
    meta = {"op": "hybrid_attention", "variant": c["variant"], "window": str(kw["window"]),
            "feature_map": fm, "affine": str(c.get("affine", 0)), "halfspace": str(c.get("halfspace", 0))}
    if c.get("bias"):
        t["feature_map_q.bias"] = kw["fmap_q_bias"] = rnd(rng, H)
        t["feature_map_k.bias"] = kw["fmap_k_bias"] = rnd(rng, H)
    if c.get("state"):
        t["kv_state"] = kw["kv_state"] = np.abs(rnd(rng, B, H, F, D))
        t["k_state"] = kw["k_state"] = np.abs(rnd(rng, B, H, F)) + 1
    if not c.get("nograd"):
        t["dy"] = kw["grads"] = rnd(rng, *q.shape)
    if c.get("da"):
        t["da"] = kw["da"] = rnd(rng, B, H, N, N)
    flags = []
    if c.get("weights"):
        kw["weights"] = True
        flags.append("--weights")
    if c.get("scalar"):
        kw["scalar"] = True
        flags.append("--scalar")
    py = lolcats.hybrid_attention(q, k, v, wq, wk, wf, **kw)
    ref = cli(tmp_path, t, meta, *flags)
    same_bits(py, ref)
    assert ("a" in py) == bool(c.get("weights") or c.get("da"))
    if not c.get("nograd"):
        assert "d_window_factors" in py and py.dq.shape == q.shape


def test_losses(tmp_path):
    rng = np.random.default_rng(4)
    p, t = rnd(rng, 3, 5, 7), rnd(rng, 3, 5, 7)
    py = lolcats.mse_loss(p, t, factor=250.0)
    same_bits(py, cli(tmp_path, {"pred": p, "target": t}, {"op": "mse_loss", "factor": "250.0"}))
    a = np.exp(rnd(rng, 2, 3, 6, 6))
    a /= a.sum(-1, keepdims=True)
    b = np.exp(rnd(rng, 2, 3, 6, 6))
    b /= b.sum(-1, keepdims=True)
    py = lolcats.xent_loss(a, b)
    same_bits(py, cli(tmp_path, {"a_pred": a, "a_true": b}, {"op": "xent_loss"}))
    assert py.d_a_pred.shape == a.shape


def test_case_roundtrip(tmp_path):
    rng = np.random.default_rng(5)
    t = {"x": rnd(rng, 3, 4), "i": np.arange(5, dtype=np.int64), "d": rnd(rng, 2).astype(np.float64)}
    p = str(tmp_path / "c.safetensors")
    lolcats.write_case(p, t, {"op": "x", "n": 3})
    back, meta = lolcats.read_case(p)
    assert meta == {"op": "x", "n": "3"}
    for k in t:
        assert back[k].dtype == t[k].dtype and np.array_equal(back[k], t[k])
    with open(p, "rb") as f:
        hlen = int.from_bytes(f.read(8), "little")
    assert (8 + hlen) % 8 == 0


def _hyb_args(rng, H=4, Hk=2):
    q, k, v = qkv(rng, 1, H, Hk, 10, 8)
    return [q, k, v, rnd(rng, H, 8, 3), rnd(rng, H, 8, 3), rnd(rng, H)]


@pytest.mark.parametrize("idx,name,bad,exc", [
    (0, "q", lambda a: a.astype(np.float64), TypeError),
    (1, "k", lambda a: a.astype(np.float16), TypeError),
    (2, "v", lambda a: np.swapaxes(a, 2, 3), ValueError),          # not contiguous (and shape)
    (0, "q", lambda a: a[:, :, ::2], ValueError),                  # strided view
    (1, "k", lambda a: a[:, :, :5].copy(), ValueError),            # N mismatch
    (2, "v", lambda a: a[..., :4].copy(), ValueError),
    (3, "fmap_q", lambda a: a[:2].copy(), ValueError),
    (4, "fmap_k", lambda a: a[..., :2].copy(), ValueError),
    (5, "window_factors", lambda a: a[:3].copy(), ValueError),
    (0, "q", lambda a: a[0], ValueError),                          # rank
    (0, "q", lambda a: [1.0, 2.0], TypeError),
])
def test_malformed_named(idx, name, bad, exc):
    args = _hyb_args(np.random.default_rng(6))
    args[idx] = bad(args[idx])
    with pytest.raises(exc, match="'%s'" % name):
        lolcats.hybrid_attention(*args)


def test_gqa_not_dividing():
    args = _hyb_args(np.random.default_rng(7), H=4, Hk=3)
    with pytest.raises(ValueError, match="'k'.*divide"):
        lolcats.hybrid_attention(*args)
    with pytest.raises(ValueError, match="'k'.*divide"):
        lolcats.softmax_attention(*args[:3])


def test_grads_shape_named():
    args = _hyb_args(np.random.default_rng(8))
    with pytest.raises(ValueError, match="'grads'"):
        lolcats.hybrid_attention(*args, grads=np.zeros((1, 4, 9, 8), np.float32))
    with pytest.raises(ValueError, match="'da'"):
        lolcats.hybrid_attention(*args, da=np.zeros((1, 4, 10, 9), np.float32))
    with pytest.raises(ValueError, match="'kv_state'"):
        lolcats.hybrid_attention(*args, kv_state=np.zeros((1, 4, 6, 8), np.float32))


def test_c_side_validates():
    """run_case goes straight to lc_ref_run: the C side names the problem."""
    rng = np.random.default_rng(9)
    q, k, v = qkv(rng, 1, 4, 3, 10, 8)
    with pytest.raises(lolcats.LolcatsError, match="multiple of Hk"):
        lolcats.run_case({"q": q, "k": k, "v": v}, {"op": "softmax_attention"})
    q, k, v = qkv(rng, 1, 4, 2, 10, 8)
    with pytest.raises(lolcats.LolcatsError, match="'v'"):
        lolcats.run_case({"q": q, "k": k, "v": v[:, :, :4].copy()}, {"op": "softmax_attention"})
    with pytest.raises(lolcats.LolcatsError, match="unknown op 'fancy'"):
        lolcats.run_case({"q": q, "k": k, "v": v}, {"op": "fancy"})
    with pytest.raises(lolcats.LolcatsError, match="weights='2'"):
        lolcats.run_case({"q": q, "k": k, "v": v}, {"op": "softmax_attention", "weights": "2"})
    with pytest.raises(lolcats.LolcatsError, match="feature_map_q.weight"):
        lolcats.run_case({"q": q, "k": k, "v": v}, {"op": "hybrid_attention"})
    with pytest.raises(TypeError, match="'q'"):
        lolcats.run_case({"q": q.astype(np.float64)}, {"op": "softmax_attention"})


def test_torch_inputs():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    args = _hyb_args(rng)
    ref = lolcats.hybrid_attention(*args)
    targs = [torch.from_numpy(a) for a in args]
    same_bits(lolcats.hybrid_attention(*targs), ref)
    targs[0] = targs[0].to(torch.bfloat16)
    with pytest.raises(TypeError, match="'q'"):
        lolcats.hybrid_attention(*targs)
    targs[0] = torch.from_numpy(args[0]).transpose(2, 3)
    with pytest.raises(ValueError, match="'q'"):
        lolcats.hybrid_attention(*targs)
