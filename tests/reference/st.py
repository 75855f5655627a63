"""Minimal safetensors reader/writer plus exact storage-dtype conversions.

Independent of the `safetensors` package so the same bytes come out on every
machine (torch 1.13 CPU locally, torch 2.x on the GPU machine).

File layout (https://github.com/huggingface/safetensors, "Format"):
  8 bytes   little-endian u64 N = length of the JSON header
  N bytes   JSON: {"name": {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, ...,
                   "__metadata__": {"key": "string value", ...}}
            (we pad the header with spaces so that 8 + N is a multiple of 8)
  data      tensors packed back to back; offsets are relative to the start of data

Tensors are handled as numpy arrays.  Storage dtypes that numpy lacks (BF16,
F8_E4M3, F8_E5M2) are carried as `Raw` objects holding the encoded bytes (as a
uint8/uint16 numpy array) plus the dtype name; `decode()` turns any stored
tensor into float32/float64/int numpy data.
"""
import json
import struct

import numpy as np

# dtype name -> (numpy dtype used for the raw storage, bytes per element)
_NP = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("u1"),
    "F8_E4M3": np.dtype("u1"),
    "F8_E5M2": np.dtype("u1"),
}
_FROM_NP = {
    np.dtype("float64"): "F64",
    np.dtype("float32"): "F32",
    np.dtype("float16"): "F16",
    np.dtype("int64"): "I64",
    np.dtype("int32"): "I32",
    np.dtype("int16"): "I16",
    np.dtype("int8"): "I8",
    np.dtype("uint8"): "U8",
}


class Raw:
    """An encoded tensor whose dtype numpy does not have (BF16, F8_*)."""

    def __init__(self, dtype, bits, shape):
        assert dtype in ("BF16", "F8_E4M3", "F8_E5M2"), dtype
        self.dtype = dtype
        self.bits = np.ascontiguousarray(bits, dtype=_NP[dtype]).reshape(shape)
        self.shape = tuple(shape)

    def tobytes(self):
        return self.bits.tobytes()


# ----------------------------------------------------------------------------
# bfloat16: round to nearest even from float32 (what torch's .to(bfloat16) does)
# ----------------------------------------------------------------------------
def bf16_encode(x):
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    nan = np.isnan(x)
    rounding = ((u >> 16) & 1) + 0x7FFF
    out = ((u + rounding) >> 16).astype(np.uint16)
    out[nan] = 0x7FC0
    return Raw("BF16", out, x.shape)


def bf16_decode(bits):
    b = np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16
    return b.view(np.float32)


# ----------------------------------------------------------------------------
# fp8.  Both formats are decoded by formula; encoding is round-to-nearest-even
# by looking the value up among all finite codes (ties go to the even code,
# i.e. the code with mantissa LSB 0, which is how IEEE RNE and torch behave).
#   e4m3fn: 1-4-3, bias 7, no infinities, S.1111.111 = NaN, max 448.
#   e5m2  : 1-5-2, bias 15, IEEE-like (inf 0x7C, NaN 0x7D..0x7F), max 57344.
# Values beyond the largest finite value are saturated to it (torch would give
# NaN for e4m3fn at |x| >= 464 and inf for e5m2); the goldens never hit that.
# ----------------------------------------------------------------------------
def _fp8_table(ebits, mbits, bias):
    vals = []
    for code in range(1 << (ebits + mbits)):  # non-negative codes
        e = code >> mbits
        m = code & ((1 << mbits) - 1)
        if e == 0:
            v = (m / (1 << mbits)) * 2.0 ** (1 - bias)
        else:
            v = (1 + m / (1 << mbits)) * 2.0 ** (e - bias)
        vals.append(v)
    return np.array(vals, dtype=np.float64)


_E4M3_ALL = _fp8_table(4, 3, 7)
_E4M3_ALL[0x7F] = np.nan            # S.1111.111 is NaN in e4m3fn
_E4M3_FINITE = _E4M3_ALL[:0x7F]     # codes 0..126, max 448
_E5M2_ALL = _fp8_table(5, 2, 15)
_E5M2_ALL[0x7C] = np.inf
_E5M2_ALL[0x7D:] = np.nan
_E5M2_FINITE = _E5M2_ALL[:0x7C]     # codes 0..123, max 57344


def _fp8_encode(x, finite, name):
    x = np.ascontiguousarray(x, dtype=np.float32)
    a = np.abs(x.astype(np.float64)).ravel()
    if np.isnan(a).any():
        raise ValueError("NaN in fp8 encode input")
    a = np.minimum(a, finite[-1])  # saturate
    hi = np.searchsorted(finite, a, side="left")  # finite[hi] >= a
    hi = np.minimum(hi, len(finite) - 1)
    lo = np.maximum(hi - 1, 0)
    dlo = a - finite[lo]
    dhi = finite[hi] - a
    pick_hi = (dhi < dlo) | ((dhi == dlo) & (hi % 2 == 0))
    code = np.where(pick_hi, hi, lo)
    code = np.where(finite[hi] == a, hi, code)  # exact hits
    sign = (np.signbit(x.ravel())).astype(np.uint8) << 7
    out = (code.astype(np.uint8) | sign).reshape(x.shape)
    return Raw(name, out, x.shape)


def e4m3_encode(x):
    return _fp8_encode(x, _E4M3_FINITE, "F8_E4M3")


def e5m2_encode(x):
    return _fp8_encode(x, _E5M2_FINITE, "F8_E5M2")


def _fp8_decode(bits, table):
    b = np.asarray(bits, dtype=np.uint8)
    mag = table[b & 0x7F]
    return np.where(b & 0x80, -mag, mag).astype(np.float32)


def e4m3_decode(bits):
    return _fp8_decode(bits, _E4M3_ALL)


def e5m2_decode(bits):
    return _fp8_decode(bits, _E5M2_ALL)


def decode(t):
    """Stored tensor (numpy array or Raw) -> numpy array (float32 for BF16/F8)."""
    if isinstance(t, Raw):
        if t.dtype == "BF16":
            return bf16_decode(t.bits).reshape(t.shape)
        if t.dtype == "F8_E4M3":
            return e4m3_decode(t.bits).reshape(t.shape)
        if t.dtype == "F8_E5M2":
            return e5m2_decode(t.bits).reshape(t.shape)
    return np.asarray(t)


def dtype_of(t):
    if isinstance(t, Raw):
        return t.dtype
    return _FROM_NP[np.asarray(t).dtype]


# ----------------------------------------------------------------------------
# file I/O
# ----------------------------------------------------------------------------
def save(path, tensors, metadata=None):
    """tensors: dict name -> numpy array or Raw (insertion order is kept)."""
    header = {}
    blobs = []
    off = 0
    for name, t in tensors.items():
        if isinstance(t, Raw):
            data = t.tobytes()
            shape = list(t.shape)
            dt = t.dtype
        else:
            a = np.ascontiguousarray(t)
            dt = _FROM_NP[a.dtype]
            a = a.astype(_NP[dt], copy=False)  # force little-endian
            data = a.tobytes()
            shape = list(a.shape)
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - (8 + len(hj)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)


def load(path):
    """-> (dict name -> numpy array or Raw, metadata dict)."""
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, e = info["data_offsets"]
        dt = info["dtype"]
        shape = tuple(info["shape"])
        a = np.frombuffer(buf[base + b:base + e], dtype=_NP[dt]).reshape(shape).copy()
        if dt in ("BF16", "F8_E4M3", "F8_E5M2"):
            out[name] = Raw(dt, a, shape)
        else:
            out[name] = a
    return out, meta


def load_f32(path):
    """Load and decode every floating tensor to float32 numpy (ints stay ints)."""
    tensors, meta = load(path)
    out = {}
    for k, v in tensors.items():
        d = decode(v)
        if d.dtype in (np.float16, np.float64):
            d = d.astype(np.float32)
        out[k] = d
    return out, meta
