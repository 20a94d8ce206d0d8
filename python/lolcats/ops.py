"""The ops of the `lolcats ref` contract as NumPy functions. Each builds the
case (named float32 tensors + metadata) and runs it through liblolcats.so's
lc_ref_run, the same C path `lolcats ref` takes: the results are its bits."""
import numpy as np

from ._lib import run_case


class Result(dict):
    """{name: array} with the names `lolcats ref` writes (y, a, dq, dk, dv,
    d_feature_map_q.weight, ...); also readable as attributes with '.' -> '_'
    (r.y, r.d_feature_map_q_weight)."""

    def __getattr__(self, key):
        for k in self:
            if k.replace(".", "_") == key:
                return self[k]
        raise AttributeError("no output '%s' (outputs: %s)" % (key, ", ".join(self)))


def as_f32(fn, name, x, ndim=None):
    """x as a C-contiguous float32 ndarray; torch tensors (any device) and DLPack
    objects accepted. Wrong dtype, non-contiguous data or a wrong rank raise,
    naming the argument."""
    if x is None:
        raise TypeError("%s: argument '%s' is required" % (fn, name))
    if not isinstance(x, np.ndarray):
        if hasattr(x, "detach") and hasattr(x, "cpu"):          # torch.Tensor
            try:
                x = x.detach().cpu().numpy()
            except TypeError as e:
                raise TypeError("%s: argument '%s' (torch %s) has no NumPy form (%s); pass "
                                "%s.float()" % (fn, name, getattr(x, "dtype", "?"), e, name))
        elif hasattr(x, "__dlpack__"):
            x = np.from_dlpack(x)
        else:
            raise TypeError("%s: argument '%s' must be a numpy array or torch tensor, got %s"
                            % (fn, name, type(x).__name__))
    if x.dtype != np.float32:
        raise TypeError("%s: argument '%s' has dtype %s; pass float32 (%s.astype(numpy.float32))"
                        % (fn, name, x.dtype, name))
    if not x.flags.c_contiguous:
        raise ValueError("%s: argument '%s' is not C-contiguous (strides %s); pass "
                         "numpy.ascontiguousarray(%s)" % (fn, name, x.strides, name))
    if ndim is not None and x.ndim != ndim:
        raise ValueError("%s: argument '%s' must have %d dims, got shape %s" % (fn, name, ndim, x.shape))
    return x


def _check(fn, cond, msg):
    if not cond:
        raise ValueError("%s: %s" % (fn, msg))


def _qkv(fn, q, k, v):
    q = as_f32(fn, "q", q, 4)
    k = as_f32(fn, "k", k, 4)
    v = as_f32(fn, "v", v, 4)
    B, H, N, D = q.shape
    _check(fn, min(q.shape) > 0, "argument 'q' has an empty dim: shape %s" % (q.shape,))
    _check(fn, k.shape[0] == B and k.shape[2] == N and k.shape[3] == D and k.shape[1] > 0,
           "argument 'k' has shape %s, expected (%d, Hk, %d, %d) to match q %s" % (k.shape, B, N, D, q.shape))
    _check(fn, H % k.shape[1] == 0,
           "argument 'k' has Hk=%d heads, which does not divide q's H=%d (GQA needs H a multiple of Hk)"
           % (k.shape[1], H))
    _check(fn, v.shape == k.shape, "argument 'v' has shape %s, expected k's %s" % (v.shape, k.shape))
    return q, k, v


def _grads(fn, t, grads, da, q, quad):
    if grads is not None:
        g = as_f32(fn, "grads", grads, 4)
        _check(fn, g.shape == q.shape, "argument 'grads' (dy) has shape %s, expected q's %s" % (g.shape, q.shape))
        t["dy"] = g
    if da is not None:
        _check(fn, quad, "argument 'da': this op has no attention weights")
        a = as_f32(fn, "da", da, 4)
        B, H, N, _ = q.shape
        _check(fn, a.shape == (B, H, N, N), "argument 'da' has shape %s, expected %s" % (a.shape, (B, H, N, N)))
        t["da"] = a


def _final(fn, t, q, dS, dz):
    """The cotangent on the final state (B,H,F,D) and (B,H,F)."""
    if dS is None and dz is None:
        return
    if dS is None:
        raise ValueError("%s: argument 'd_final_k_state' needs 'd_final_kv_state' (zeros if none)" % fn)
    B, H, _, D = q.shape
    f = t["feature_map_q.weight"].shape[2]
    S = as_f32(fn, "d_final_kv_state", dS, 4)
    _check(fn, S.shape[:2] == (B, H) and S.shape[3] == D and S.shape[2] in (f, 2 * f),
           "argument 'd_final_kv_state' has shape %s, expected (%d, %d, F, %d)" % (S.shape, B, H, D))
    t["d_final_kv_state"] = S
    if dz is not None:
        z = as_f32(fn, "d_final_k_state", dz, 3)
        _check(fn, z.shape == S.shape[:3], "argument 'd_final_k_state' has shape %s, expected %s" % (z.shape, S.shape[:3]))
        t["d_final_k_state"] = z


def _fmaps(fn, t, meta, q, fmap_q, fmap_k, fmap_q_bias, fmap_k_bias, feature_map, halfspace, eps):
    H, D = q.shape[1], q.shape[3]
    wq = as_f32(fn, "fmap_q", fmap_q, 3)
    wk = as_f32(fn, "fmap_k", fmap_k, 3)
    _check(fn, wq.shape[0] == H and wq.shape[1] == D and wq.shape[2] > 0,
           "argument 'fmap_q' has shape %s, expected (H=%d, D=%d, f)" % (wq.shape, H, D))
    _check(fn, wk.shape == wq.shape, "argument 'fmap_k' has shape %s, expected fmap_q's %s" % (wk.shape, wq.shape))
    t["feature_map_q.weight"] = wq
    t["feature_map_k.weight"] = wk
    for nm, b, key in (("fmap_q_bias", fmap_q_bias, "feature_map_q.bias"),
                       ("fmap_k_bias", fmap_k_bias, "feature_map_k.bias")):
        if b is not None:
            b = as_f32(fn, nm, b, 1)
            _check(fn, b.shape == (H,), "argument '%s' has shape %s, expected (%d,)" % (nm, b.shape, H))
            t[key] = b
    meta["feature_map"] = feature_map
    meta["halfspace"] = "1" if halfspace else "0"
    meta["eps"] = repr(float(eps))


PRECISIONS = ("f32", "f64", "bf16")


def _opts(meta, weights=False, scalar=False, linear_state=False, precision="f32", fn="", intermediates=False):
    if intermediates:
        meta["intermediates"] = "1"
    if precision not in PRECISIONS:
        raise ValueError("%s: argument 'precision' is %r (use 'f32', 'f64' or 'bf16')" % (fn, precision))
    if precision != "f32":
        meta["precision"] = precision
    if weights:
        meta["weights"] = "1"
    if scalar:
        meta["scalar"] = "1"
    if linear_state:
        meta["linear_state"] = "1"


def softmax_attention(q, k, v, grads=None, da=None, weights=False, scalar=False, precision="f32",
                      intermediates=False):
    """Causal softmax attention (B,H,N,D) x (B,Hk,N,D): y, a (weights=True or da)
    and with grads (dy) / da: dq, dk, dv."""
    fn = "softmax_attention"
    q, k, v = _qkv(fn, q, k, v)
    t = {"q": q, "k": k, "v": v}
    meta = {"op": "softmax_attention"}
    _grads(fn, t, grads, da, q, True)
    _opts(meta, weights, scalar, False, precision, fn, intermediates)
    return Result(run_case(t, meta))


def linear_attention(q, k, v, fmap_q, fmap_k, fmap_q_bias=None, fmap_k_bias=None,
                     feature_map="softmax_dim", halfspace=False, eps=1e-12, linear_eps=1e-12,
                     grads=None, linear_state=False, scalar=False, precision="f32",
                     intermediates=False, d_final_kv_state=None, d_final_k_state=None):
    """Pure linear attention with the feature maps: y and with grads: dq, dk, dv,
    d_feature_map_{q,k}.weight (and .bias)."""
    fn = "linear_attention"
    q, k, v = _qkv(fn, q, k, v)
    t = {"q": q, "k": k, "v": v}
    meta = {"op": "linear_attention"}
    _fmaps(fn, t, meta, q, fmap_q, fmap_k, fmap_q_bias, fmap_k_bias, feature_map, halfspace, eps)
    meta["linear_eps"] = repr(float(linear_eps))
    _grads(fn, t, grads, None, q, False)
    _final(fn, t, q, d_final_kv_state, d_final_k_state)
    _opts(meta, False, scalar, linear_state, precision, fn, intermediates)
    return Result(run_case(t, meta))


def hybrid_attention(q, k, v, fmap_q, fmap_k, window_factors, variant="tk", window=64,
                     fmap_q_bias=None, fmap_k_bias=None, feature_map="softmax_dim",
                     halfspace=False, eps=1e-12, affine=False, kv_state=None, k_state=None,
                     grads=None, da=None, weights=False, scalar=False, precision="f32",
                     intermediates=False, d_final_kv_state=None, d_final_k_state=None, sinks=0):
    """LoLCATs hybrid (sliding window + linear) attention: y, a (weights=True or da)
    and with grads (dy) / da every gradient: dq, dk, dv, d_feature_map_*,
    d_window_factors, d_kv_state, d_k_state."""
    fn = "hybrid_attention"
    q, k, v = _qkv(fn, q, k, v)
    B, H, N, D = q.shape
    t = {"q": q, "k": k, "v": v}
    meta = {"op": "hybrid_attention"}
    _check(fn, variant in ("tk", "sw"), "argument 'variant' is %r (use 'tk' or 'sw')" % (variant,))
    _check(fn, int(window) >= 1, "argument 'window' is %r (must be >= 1)" % (window,))
    _check(fn, int(sinks) >= 0, "argument 'sinks' is %r (must be >= 0)" % (sinks,))
    _fmaps(fn, t, meta, q, fmap_q, fmap_k, fmap_q_bias, fmap_k_bias, feature_map, halfspace, eps)
    wf = as_f32(fn, "window_factors", window_factors)
    _check(fn, wf.size == H and (wf.ndim == 1 or wf.shape == (1, H, 1, 1)),
           "argument 'window_factors' has shape %s, expected (%d,) or (1,%d,1,1)" % (wf.shape, H, H))
    t["window_factors"] = wf
    if (kv_state is None) != (k_state is None):
        raise ValueError("%s: arguments 'kv_state' and 'k_state' go together" % fn)
    if kv_state is not None:
        S = as_f32(fn, "kv_state", kv_state, 4)
        z = as_f32(fn, "k_state", k_state, 3)
        _check(fn, S.shape[:2] == (B, H) and S.shape[3] == D,
               "argument 'kv_state' has shape %s, expected (%d, %d, F, %d)" % (S.shape, B, H, D))
        _check(fn, z.shape == S.shape[:3], "argument 'k_state' has shape %s, expected %s" % (z.shape, S.shape[:3]))
        t["kv_state"] = S
        t["k_state"] = z
    meta["variant"] = variant
    meta["window"] = str(int(window))
    meta["affine"] = "1" if affine else "0"
    if int(sinks):  # attention sinks: the first `sinks` keys are window keys of every query
        meta["sinks"] = str(int(sinks))
    _grads(fn, t, grads, da, q, True)
    _final(fn, t, q, d_final_kv_state, d_final_k_state)
    _opts(meta, weights, scalar, False, precision, fn, intermediates)
    return Result(run_case(t, meta))


def mse_loss(pred, target, factor=1000.0, precision="f32"):
    """The attention-transfer MSE loss: loss (1,), d_pred (shaped as pred)."""
    fn = "mse_loss"
    p = as_f32(fn, "pred", pred)
    t = as_f32(fn, "target", target)
    _check(fn, p.shape == t.shape and p.size > 0, "argument 'target' has shape %s, expected pred's %s" % (t.shape, p.shape))
    meta = {"op": "mse_loss", "factor": repr(float(factor))}
    _opts(meta, precision=precision, fn=fn)
    r = run_case({"pred": p, "target": t}, meta)
    r["d_pred"] = r["d_pred"].reshape(p.shape)
    return Result(r)


def xent_loss(a_pred, a_true, factor=1.0, precision="f32"):
    """The attention-transfer cross-entropy over the last axis: loss, d_a_pred."""
    fn = "xent_loss"
    p = as_f32(fn, "a_pred", a_pred)
    t = as_f32(fn, "a_true", a_true)
    _check(fn, p.ndim >= 1 and p.shape == t.shape and p.size > 0,
           "argument 'a_true' has shape %s, expected a_pred's %s" % (t.shape, p.shape))
    meta = {"op": "xent_loss", "factor": repr(float(factor))}
    _opts(meta, precision=precision, fn=fn)
    r = run_case({"a_pred": p, "a_true": t}, meta)
    r["d_a_pred"] = r["d_a_pred"].reshape(p.shape)
    return Result(r)
