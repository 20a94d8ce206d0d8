"""Error metrics between a reference and a candidate, as `lolcats compare`
reports them, plus fla's RMS ratio rms(ref - test) / rms(ref)."""
import numpy as np


def _np(x):
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        return x.detach().cpu().float().numpy() if str(getattr(x, "dtype", "")) == "torch.bfloat16" \
            else x.detach().cpu().numpy()
    return np.asarray(x)


def metrics(ref, test, rtol=1e-4, atol=1e-5, equal_nan=False):
    """Per-tensor metrics in float64: max_abs, max_rel (over |ref| > atol), worst
    (multi-index of the largest violation of |t - r| <= atol + rtol |r|, else of
    the largest abs error), nan/inf counts of each side, rms_ratio (fla's
    get_err_ratio: rms(ref - test) / rms(ref) over finite pairs; 0 when both
    vanish) and fails (elements outside the isclose rule, numpy's treatment of
    non-finite values)."""
    r = _np(ref).astype(np.float64)
    t = _np(test).astype(np.float64)
    m = {"shape": tuple(r.shape), "nan_ref": int(np.isnan(r).sum()), "nan_test": int(np.isnan(t).sum()),
         "inf_ref": int(np.isinf(r).sum()), "inf_test": int(np.isinf(t).sum())}
    if r.shape != t.shape:
        m.update(shape_test=tuple(t.shape), max_abs=float("inf"), max_rel=float("inf"), worst=None,
                 rms_ratio=float("inf"), fails=int(max(r.size, t.size, 1)))
        return m
    both = np.isfinite(r) & np.isfinite(t)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(both, np.abs(t - r), 0.0)
        big = both & (np.abs(r) > atol)
        rel = np.where(big, diff / np.where(big, np.abs(r), 1.0), 0.0)
        ok = np.isclose(t, r, rtol=rtol, atol=atol, equal_nan=equal_nan)
    m["max_abs"] = float(diff.max()) if diff.size else 0.0
    m["max_rel"] = float(rel.max()) if rel.size else 0.0
    m["fails"] = int((~ok).sum())
    if r.size:
        with np.errstate(invalid="ignore", over="ignore"):
            excess = np.where(both, diff - (atol + rtol * np.abs(r)), np.inf)
        excess = np.where(ok & ~both, -np.inf, excess)
        flat = int(np.argmax(excess)) if m["fails"] else int(np.argmax(diff))
        m["worst"] = tuple(int(i) for i in np.unravel_index(flat, r.shape))
        m["worst_ref"], m["worst_test"] = float(r.flat[flat]), float(t.flat[flat])
    else:
        m["worst"] = None
    d = r[both] - t[both]
    base = np.sqrt(np.mean(np.square(r[both]))) if d.size else 0.0
    err = np.sqrt(np.mean(np.square(d))) if d.size else 0.0
    m["rms_ratio"] = float(err / base) if base > 0 else (0.0 if err == 0 else float("inf"))
    return m


def _row(name, m):
    return ("%-26s max_abs %.3e  max_rel %.3e  rms_ratio %.3e  worst %s (ref %s, test %s)  "
            "nan %d/%d  inf %d/%d  fails %d" %
            (name, m["max_abs"], m["max_rel"], m["rms_ratio"], m.get("worst"), m.get("worst_ref"),
             m.get("worst_test"), m["nan_ref"], m["nan_test"], m["inf_ref"], m["inf_test"], m["fails"]))


def compare(ref, test, rtol=1e-4, atol=1e-5, equal_nan=False):
    """{name: metrics} for every name of test (dicts), or {"": metrics} (arrays)."""
    if isinstance(ref, dict) or isinstance(test, dict):
        if not (isinstance(ref, dict) and isinstance(test, dict)):
            raise TypeError("compare: pass two dicts or two arrays")
        out = {}
        for k in test:
            if k not in ref:
                raise KeyError("compare: '%s' is not an output of the reference (it has: %s)" % (k, ", ".join(ref)))
            out[k] = metrics(ref[k], test[k], rtol, atol, equal_nan)
        return out
    return {"": metrics(ref, test, rtol, atol, equal_nan)}


def assert_close(ref, test, rtol=1e-4, atol=1e-5, ratio=None, equal_nan=False, name=None):
    """Asserts test matches ref. Without ratio: every element within
    |t - r| <= atol + rtol |r| (numpy.isclose, ref as reference; NaN/Inf must
    match, NaN only with equal_nan). With ratio: fla's rule, rms(ref - test) /
    rms(ref) <= ratio and the same NaN/Inf pattern. Dicts compare every name of
    test. The AssertionError lists max abs, max rel, worst index, NaN/Inf counts
    and the RMS ratio of each tensor that failed."""
    res = compare(ref, test, rtol, atol, equal_nan)
    bad = []
    for k, m in res.items():
        if "shape_test" in m:
            bad.append("%-26s shape %s vs %s" % (k or name or "tensor", m["shape"], m["shape_test"]))
            continue
        if ratio is None:
            failed = m["fails"] > 0
        else:
            failed = not (m["rms_ratio"] <= ratio) or m["nan_ref"] != m["nan_test"] or m["inf_ref"] != m["inf_test"]
        if failed:
            bad.append(_row(k or name or "tensor", m))
    if bad:
        rule = "rms_ratio <= %g" % ratio if ratio is not None else "|t - r| <= %g + %g |r|" % (atol, rtol)
        raise AssertionError("not close (%s):\n  " % rule + "\n  ".join(bad))
    return res
