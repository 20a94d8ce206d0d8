"""The edge grid a backend should pass, from liblolcats.so's lc_ref_grid_*
(the same files as `lolcats ref --grid DIR`): seeded, regenerable, each case
one safetensors file with its inputs, the expected outputs of the default
path under their names and the f64 ones as "f64.<name>".

    python -m lolcats.grid DIR          # writes DIR/<case>.safetensors
    for c in lolcats.grid.cases(DIR): ...   # c.name, c.op, c.args, c.expected
"""
import ctypes
import glob
import os
import sys

from ._lib import LolcatsError, _Error, lib
from .st import read_case

OUTPUTS = ("y", "a", "dq", "dk", "dv", "d_feature_map_q.weight", "d_feature_map_k.weight",
           "d_feature_map_q.bias", "d_feature_map_k.bias", "d_window_factors", "d_kv_state", "d_k_state")
_ARG = {"feature_map_q.weight": "fmap_q", "feature_map_k.weight": "fmap_k",
        "feature_map_q.bias": "fmap_q_bias", "feature_map_k.bias": "fmap_k_bias", "dy": "grads"}


def _L():
    L = lib()
    L.lc_ref_grid_count.restype = ctypes.c_int
    L.lc_ref_grid_count.argtypes = []
    L.lc_ref_grid_name.restype = ctypes.c_char_p
    L.lc_ref_grid_name.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
    L.lc_ref_grid_write.restype = ctypes.c_int
    L.lc_ref_grid_write.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(_Error)]
    return L


def names():
    L = _L()
    buf = ctypes.create_string_buffer(64)
    return [L.lc_ref_grid_name(i, buf, 64).decode() for i in range(L.lc_ref_grid_count())]


def write(outdir):
    """Writes every grid case to outdir (created); returns the paths."""
    L = _L()
    os.makedirs(outdir, exist_ok=True)
    paths = []
    for i, nm in enumerate(names()):
        p = os.path.join(outdir, nm + ".safetensors")
        err = _Error()
        if L.lc_ref_grid_write(p.encode(), i, ctypes.byref(err)) != 0:
            raise LolcatsError(err.msg.decode("utf-8", "replace"))
        paths.append(p)
    return paths


class Case:
    """One grid case: name, note, op ('hybrid_attention', ...), inputs (the ref
    contract's tensors), meta, expected / expected_f64 ({output: array}) and
    args: keyword arguments of the module's op function (q, k, v, fmap_q, ...)."""

    def __init__(self, path):
        t, m = read_case(path)
        self.path, self.meta = path, m
        self.name, self.note, self.op = m.get("case", ""), m.get("note", ""), m["op"]
        self.expected = {k: v for k, v in t.items() if k in OUTPUTS}
        self.expected_f64 = {k[4:]: v for k, v in t.items() if k.startswith("f64.")}
        self.inputs = {k: v for k, v in t.items() if k not in OUTPUTS and not k.startswith("f64.")}
        a = {_ARG.get(k, k): v for k, v in self.inputs.items()}
        if self.op != "softmax_attention":
            a["feature_map"] = m.get("feature_map", "softmax_dim")
            a["halfspace"] = m.get("halfspace") == "1"
        if self.op == "hybrid_attention":
            a["variant"], a["window"], a["affine"] = m["variant"], int(m["window"]), m.get("affine") == "1"
            a["sinks"] = int(m.get("sinks", "0"))
        self.args = a

    def __repr__(self):
        return "Case(%s)" % self.name


def cases(outdir):
    """The grid cases written in outdir, by name."""
    return [Case(p) for p in sorted(glob.glob(os.path.join(outdir, "*.safetensors")))]


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.stderr.write("usage: python -m lolcats.grid OUTDIR\n")
        sys.exit(2)
    ps = write(sys.argv[1])
    sys.stderr.write("lolcats.grid: %s: %d cases\n" % (sys.argv[1], len(ps)))
