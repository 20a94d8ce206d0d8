"""The safetensors file contract of `lolcats ref` in pure Python + NumPy."""
import json
import struct

import numpy as np

_DT = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
       "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
_NAME = {np.dtype(v).str: k for k, v in _DT.items()}


def write_case(path, tensors, metadata=None):
    """Writes {name: array} (float32 / float64 / float16 / ints / bool, C order) and
    metadata {key: str} as a safetensors file, data 8-byte aligned."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, a in tensors.items():
        a = np.asarray(a)
        key = _NAME.get(a.dtype.newbyteorder("<").str if a.dtype.byteorder == ">" else a.dtype.str)
        if key is None:
            raise TypeError("write_case: tensor '%s' has dtype %s (use float32)" % (name, a.dtype))
        b = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": key, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-(8 + len(h))) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_case(path):
    """Reads a safetensors file: returns ({name: array}, {metadata}). BF16 is
    widened to float32; other dtypes are kept."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("%s: too short for a safetensors file" % path)
    (hlen,) = struct.unpack("<Q", data[:8])
    if 8 + hlen > len(data):
        raise ValueError("%s: header length %d beyond the file" % (path, hlen))
    header = json.loads(data[8:8 + hlen].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + hlen
    out = {}
    for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        a, b = t["data_offsets"]
        raw = data[base + a:base + b]
        if t["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        elif t["dtype"] in _DT:
            arr = np.frombuffer(raw, dtype=np.dtype(_DT[t["dtype"]]).newbyteorder("<")).copy()
        else:
            raise ValueError("%s: tensor '%s' has unsupported dtype %s" % (path, name, t["dtype"]))
        out[name] = arr.reshape(t["shape"])
    return out, meta
