"""--intermediates: the parts of y, the states, and a cotangent on the final
state, checked against NumPy restatements of LOLCATS_MATH.md."""
import numpy as np
import pytest

import lolcats
from test_ref_ops import cli, same_bits, rnd


def masks(N, w, variant):
    """(window, linear) boolean masks of section 6, written from the spec."""
    i, j = np.arange(N)[:, None], np.arange(N)[None, :]
    causal = j <= i
    if variant == "sw":
        return causal & (j > i - w), causal & (j <= i - w)
    if N <= w:
        return causal, causal
    n = w * -(-N // w)
    bi, bj = (i + n - N) // w, (j + n - N) // w
    return causal & ((bj == bi) | (bj == bi - 1)), causal & (bj < bi - 1)


def case(rng, N, w, variant, state):
    B, H, Hk, D, f = 1, 4, 2, 8, 4
    q, k, v = rnd(rng, B, H, N, D), rnd(rng, B, Hk, N, D), rnd(rng, B, Hk, N, D)
    kw = dict(fmap_q=rnd(rng, H, D, f, s=0.3), fmap_k=rnd(rng, H, D, f, s=0.3), window_factors=rnd(rng, H),
              variant=variant, window=w)
    if state:
        kw["kv_state"] = np.abs(rnd(rng, B, H, 2 * f, D))
        kw["k_state"] = np.abs(rnd(rng, B, H, 2 * f)) + 1
    return (q, k, v), kw


@pytest.mark.parametrize("N,w,variant,state", [(37, 8, "tk", False), (37, 8, "sw", True), (5, 8, "tk", True),
                                               (64, 16, "tk", True), (1, 4, "sw", False)])
def test_hybrid_parts_and_states(N, w, variant, state):
    rng = np.random.default_rng(20)
    (q, k, v), kw = case(rng, N, w, variant, state)
    r = lolcats.hybrid_attention(q, k, v, intermediates=True, precision="f64", **kw)
    r32 = lolcats.hybrid_attention(q, k, v, **kw)
    y = (r.window_num + r.linear_num) / (r.window_den + r.linear_den)[..., None]
    np.testing.assert_allclose(y, r.y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r.y, r32.y, rtol=1e-4, atol=1e-5)
    B, H, _, D = q.shape
    rep = H // k.shape[1]
    kk, vv = np.repeat(k, rep, 1).astype(np.float64), np.repeat(v, rep, 1).astype(np.float64)
    W, L = masks(N, w, variant)
    s = np.einsum("bhid,bhjd->bhij", q.astype(np.float64), kk) / np.sqrt(D)
    m = np.where(W, s, -np.inf).max(-1)
    np.testing.assert_allclose(r.window_max, m, rtol=1e-6, atol=1e-6)
    gam = 1 / (1 + np.exp(-kw["window_factors"].astype(np.float64)))[None, :, None, None]
    E = np.where(W, gam * np.exp(s - m[..., None]), 0)
    np.testing.assert_allclose(r.window_den, E.sum(-1), rtol=1e-6)
    np.testing.assert_allclose(r.window_num, E @ vv, rtol=1e-5, atol=1e-6)
    pq, pk = r.phi_q.astype(np.float64), r.phi_k.astype(np.float64)
    Lam = np.where(L, pq @ pk.transpose(0, 1, 3, 2), 0)
    S0 = kw.get("kv_state", np.zeros((B, H, pk.shape[-1], D), np.float32)).astype(np.float64)
    z0 = kw.get("k_state", np.zeros((B, H, pk.shape[-1]), np.float32)).astype(np.float64)
    np.testing.assert_allclose(r.linear_den, Lam.sum(-1) + np.einsum("bhif,bhf->bhi", pq, z0), rtol=1e-5)
    np.testing.assert_allclose(r.linear_num, Lam @ vv + pq @ S0, rtol=1e-5, atol=1e-6)
    # states: final = S0 + sum_j phik_j v_j^T; decode = keys before the last w
    fin = S0 + np.einsum("bhjf,bhjd->bhfd", pk, vv)
    np.testing.assert_allclose(r.final_kv_state, fin, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r.final_k_state, z0 + pk.sum(2), rtol=1e-5)
    np.testing.assert_allclose(r.prefix_kv_state[:, :, -1], r.final_kv_state, rtol=1e-6)
    np.testing.assert_allclose(r.prefix_kv_state[:, :, 0], S0, rtol=1e-6)
    C = -(-N // w)
    assert r.prefix_kv_state.shape == (B, H, C + 1) + S0.shape[2:]
    nd = max(N - w, 0)
    dec = S0 + np.einsum("bhjf,bhjd->bhfd", pk[:, :, :nd], vv[:, :, :nd])
    np.testing.assert_allclose(r.decode_kv_state, dec, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r.decode_k_state, z0 + pk[:, :, :nd].sum(2), rtol=1e-5)
    # chunk starts: the blocks of the mask (tk: aligned to the end)
    pad = C * w - N if variant == "tk" else 0
    for c in range(C + 1):
        t = min(max(c * w - pad, 0), N)
        np.testing.assert_allclose(r.prefix_k_state[:, :, c], z0 + pk[:, :, :t].sum(2), rtol=1e-5, atol=1e-6)


def test_softmax_and_linear_parts():
    rng = np.random.default_rng(21)
    (q, k, v), kw = case(rng, 30, 8, "tk", False)
    r = lolcats.softmax_attention(q, k, v, intermediates=True)
    np.testing.assert_allclose(r.window_num / r.window_den[..., None], r.y, rtol=1e-5, atol=1e-6)
    assert "phi_q" not in r and "final_kv_state" not in r
    r = lolcats.linear_attention(q, k, v, kw["fmap_q"], kw["fmap_k"], intermediates=True)
    np.testing.assert_allclose(r.linear_num / r.linear_den[..., None], r.y, rtol=1e-5, atol=1e-6)
    assert r.prefix_kv_state.shape[2] == 2 and "decode_kv_state" not in r   # chunks of 64


def test_cli_intermediates(tmp_path):
    rng = np.random.default_rng(22)
    (q, k, v), kw = case(rng, 20, 8, "sw", True)
    t = {"q": q, "k": k, "v": v, "feature_map_q.weight": kw["fmap_q"], "feature_map_k.weight": kw["fmap_k"],
         "window_factors": kw["window_factors"], "kv_state": kw["kv_state"], "k_state": kw["k_state"]}
    py = lolcats.hybrid_attention(q, k, v, intermediates=True, **kw)
    same_bits(py, cli(tmp_path, t, {"op": "hybrid_attention", "variant": "sw", "window": "8"}, "--intermediates"))


@pytest.mark.parametrize("op", ["hybrid", "linear"])
def test_final_state_cotangent(op):
    """L = <G, S_final> + <g, z_final>: dv exactly phi_k^T G summed over the
    query heads; dk, d_feature_map_k against central differences in f64."""
    rng = np.random.default_rng(23)
    (q, k, v), kw = case(rng, 19, 8, "tk", op == "hybrid")
    B, H, N, D = q.shape
    F = 2 * kw["fmap_k"].shape[2]
    G, g = rnd(rng, B, H, F, D), rnd(rng, B, H, F)

    def run(k_, wk_, **x):
        if op == "hybrid":
            return lolcats.hybrid_attention(q, k_, v, **dict(kw, fmap_k=wk_, **x))
        return lolcats.linear_attention(q, k_, v, kw["fmap_q"], wk_, **x)

    r = run(k, kw["fmap_k"], d_final_kv_state=G, d_final_k_state=g, precision="f64", intermediates=True)
    assert np.abs(r.dq).max() == 0                        # the final state does not read q
    pk = r.phi_k.astype(np.float64).reshape(B, 2, 2, N, F)  # (b, kv head, rep, j, F)
    dv = np.einsum("bgrjf,bgrfd->bgjd", pk, G.astype(np.float64).reshape(B, 2, 2, F, D))
    np.testing.assert_allclose(r.dv, dv, rtol=1e-5, atol=1e-6)
    if op == "hybrid":
        np.testing.assert_allclose(r.d_kv_state, G, rtol=1e-6)
        np.testing.assert_allclose(r.d_k_state, g, rtol=1e-6)

    def L(k_, wk_):
        o = run(k_, wk_, intermediates=True, precision="f64")
        return float((o.final_kv_state.astype(np.float64) * G).sum() + (o.final_k_state.astype(np.float64) * g).sum())

    h = 1e-2
    for name, x, grad in (("k", k, r.dk), ("fmap_k", kw["fmap_k"], r["d_feature_map_k.weight"])):
        dirn = rnd(rng, *x.shape)
        xp, xm = (x + h * dirn).astype(np.float32), (x - h * dirn).astype(np.float32)
        fd = (L(xp, kw["fmap_k"]) - L(xm, kw["fmap_k"])) if name == "k" else (L(k, xp) - L(k, xm))
        fd /= 2 * h
        an = float((grad.astype(np.float64) * dirn).sum())
        assert abs(fd - an) <= 2e-3 * max(abs(an), 1.0), (name, fd, an)
    # f32 path: the same cotangent gradient on top of dy's
    r32 = run(k, kw["fmap_k"], d_final_kv_state=G, d_final_k_state=g)
    lolcats.assert_close(r, {n: r32[n] for n in r32}, rtol=1e-4, atol=1e-5)


def test_cotangent_errors():
    rng = np.random.default_rng(24)
    (q, k, v), kw = case(rng, 10, 8, "tk", False)
    with pytest.raises(ValueError, match="'d_final_kv_state'"):
        lolcats.hybrid_attention(q, k, v, d_final_kv_state=np.zeros((1, 4, 7, 8), np.float32), **kw)
    with pytest.raises(ValueError, match="'d_final_k_state' needs"):
        lolcats.hybrid_attention(q, k, v, d_final_k_state=np.zeros((1, 4, 8), np.float32), **kw)
    t = {"q": q, "k": k, "v": v, "d_final_kv_state": np.zeros((1, 4, 8, 8), np.float32)}
    with pytest.raises(lolcats.LolcatsError, match="only linear_attention and hybrid_attention"):
        lolcats.run_case(t, {"op": "softmax_attention"})
    t.update({"feature_map_q.weight": kw["fmap_q"], "feature_map_k.weight": kw["fmap_k"],
              "window_factors": kw["window_factors"], "d_final_k_state": np.zeros((1, 4, 9), np.float32)})
    with pytest.raises(lolcats.LolcatsError, match="'d_final_k_state' must have shape"):
        lolcats.run_case(t, {"op": "hybrid_attention"})
    with pytest.raises(lolcats.LolcatsError, match="intermediates='yes'"):
        lolcats.run_case({"q": q, "k": k, "v": v}, {"op": "softmax_attention", "intermediates": "yes"})
