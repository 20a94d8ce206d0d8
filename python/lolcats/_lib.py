"""ctypes binding of build/liblolcats.so: one call, lc_ref_run, the path
`lolcats ref` takes after reading its file (so results are the CLI's bits)."""
import ctypes
import os

import numpy as np

MAX_DIMS = 8


class LolcatsError(RuntimeError):
    """An error reported by the C library (its lc_error message)."""


class _Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("msg", ctypes.c_char * 512)]


_lib = None
_lib_path = None


def _candidates():
    env = os.environ.get("LOLCATS_LIB")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    return [os.path.join(here, "liblolcats.so"),
            os.path.normpath(os.path.join(here, "..", "..", "build", "liblolcats.so"))]


def library_path():
    """The shared library this module loads (LOLCATS_LIB, else next to the
    module, else the repository's build/liblolcats.so)."""
    for p in _candidates():
        if os.path.isfile(p):
            return p
    raise LolcatsError("liblolcats.so not found (looked in: %s): run `make shared` in the "
                       "repository or set LOLCATS_LIB to its path" % ", ".join(_candidates()))


def lib():
    global _lib, _lib_path
    if _lib is None:
        path = library_path()
        L = ctypes.CDLL(path)
        vp, cp, i64 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64
        L.lc_ref_run.restype = ctypes.c_int
        L.lc_ref_run.argtypes = [vp, ctypes.c_int, ctypes.POINTER(cp), ctypes.POINTER(vp),
                                 ctypes.POINTER(ctypes.c_int), ctypes.POINTER(i64),
                                 ctypes.POINTER(cp), ctypes.c_int, ctypes.POINTER(vp),
                                 ctypes.POINTER(_Error)]
        L.lc_ref_result_count.restype = ctypes.c_int
        L.lc_ref_result_count.argtypes = [vp]
        L.lc_ref_result_name.restype = cp
        L.lc_ref_result_name.argtypes = [vp, ctypes.c_int]
        L.lc_ref_result_ndim.restype = ctypes.c_int
        L.lc_ref_result_ndim.argtypes = [vp, ctypes.c_int]
        L.lc_ref_result_dim.restype = i64
        L.lc_ref_result_dim.argtypes = [vp, ctypes.c_int, ctypes.c_int]
        L.lc_ref_result_data.restype = ctypes.POINTER(ctypes.c_float)
        L.lc_ref_result_data.argtypes = [vp, ctypes.c_int]
        L.lc_ref_result_free.restype = None
        L.lc_ref_result_free.argtypes = [vp]
        _lib, _lib_path = L, path
    return _lib


def run_case(tensors, metadata):
    """Runs one `lolcats ref` case in process: tensors maps names to C-contiguous
    float32 arrays, metadata maps keys to strings (op, variant, window, ... and the
    run options weights, scalar, linear_state). Returns {name: float32 array} in
    the order `lolcats ref` writes them. Raises LolcatsError with the C message."""
    L = lib()
    names = list(tensors)
    n = len(names)
    arrs = []
    for nm in names:
        a = tensors[nm]
        if not isinstance(a, np.ndarray) or a.dtype != np.float32 or not a.flags.c_contiguous:
            raise TypeError("run_case: tensor '%s' must be a C-contiguous float32 numpy array" % nm)
        if a.ndim > MAX_DIMS:
            raise ValueError("run_case: tensor '%s' has %d dims (at most %d)" % (nm, a.ndim, MAX_DIMS))
        arrs.append(a)
    c_names = (ctypes.c_char_p * max(n, 1))(*[s.encode() for s in names])
    c_data = (ctypes.c_void_p * max(n, 1))(*[a.ctypes.data for a in arrs])
    c_ndim = (ctypes.c_int * max(n, 1))(*[a.ndim for a in arrs])
    shp = []
    for a in arrs:
        shp += list(a.shape) + [0] * (MAX_DIMS - a.ndim)
    c_shape = (ctypes.c_int64 * max(len(shp), 1))(*shp)
    kv = []
    for k, v in metadata.items():
        kv += [str(k).encode(), str(v).encode()]
    c_meta = (ctypes.c_char_p * max(len(kv), 1))(*kv)
    res = ctypes.c_void_p()
    err = _Error()
    st = L.lc_ref_run(None, n, c_names, c_data, c_ndim, c_shape, c_meta, len(kv) // 2,
                      ctypes.byref(res), ctypes.byref(err))
    if st != 0:
        raise LolcatsError(err.msg.decode("utf-8", "replace"))
    try:
        out = {}
        for i in range(L.lc_ref_result_count(res)):
            nm = L.lc_ref_result_name(res, i).decode()
            shape = tuple(L.lc_ref_result_dim(res, i, d) for d in range(L.lc_ref_result_ndim(res, i)))
            size = int(np.prod(shape, dtype=np.int64)) if shape else 1
            p = L.lc_ref_result_data(res, i)
            out[nm] = np.ctypeslib.as_array(p, shape=(size,)).copy().reshape(shape) if size else \
                np.zeros(shape, np.float32)
        return out
    finally:
        L.lc_ref_result_free(res)
