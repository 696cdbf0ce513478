"""Float formats NumPy has no dtype for (bfloat16, float8), kept as raw bits and widened exactly.

A tensor stored as ``BF16``, ``F8_E4M3`` (the finite-only ``e4m3fn``) or
``F8_E5M2`` is held as an :class:`EncodedArray`: its bits (usually a read-only
memory map) and the name of its encoding. Slicing it slices the bits, so a
streaming loop can take a block of rows and widen just that block::

    block = tensor[i0:i1]                         # an EncodedArray, no copy
    x = widen(block, np.float64, out=buffer)      # exact float64 values

:func:`widen` accepts plain arrays too (``float16`` memory maps and the like),
so a caller need not care which kind it got. Every value widens exactly:

* bfloat16 is the upper half of a float32: ``f32_bits = bf16_bits << 16``;
* float8 e5m2 is the upper half of a float16: ``f16_bits = e5m2_bits << 8``;
* float8 e4m3fn (bias 7, no infinities, ``S.1111.111`` is NaN) goes through a
  256-entry table, each entry ``(-1)^s · 2^(e-7) · (1 + m/8)`` (``2^-6 · m/8`` for
  ``e = 0``), every one exact in float16 and wider.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: encoding name -> (bits dtype, the narrowest NumPy float holding every value exactly)
ENCODINGS = {
    "bfloat16": (np.dtype("<u2"), np.dtype(np.float32)),
    "float8_e4m3fn": (np.dtype("u1"), np.dtype(np.float32)),
    "float8_e5m2": (np.dtype("u1"), np.dtype(np.float32)),
}

_CHUNK = 1 << 20  # elements widened at a time when the target is wider than the natural dtype


def _e4m3fn_table() -> np.ndarray:
    codes = np.arange(256)
    sign = np.where(codes & 0x80, -1.0, 1.0)
    exponent = (codes >> 3) & 0xF
    mantissa = codes & 0x7
    value = np.where(exponent == 0, mantissa / 8.0 * 2.0 ** -6, (1.0 + mantissa / 8.0) * 2.0 ** (exponent - 7.0))
    value = sign * value  # S.1111.111 is NaN (keeping its sign bit, as torch and ml_dtypes do)
    value[(codes & 0x7F) == 0x7F] = np.copysign(np.nan, sign[(codes & 0x7F) == 0x7F])
    return value


_TABLES: dict[tuple[str, np.dtype], np.ndarray] = {}


def _table(encoding: str, dtype: np.dtype) -> np.ndarray:
    key = (encoding, dtype)
    table = _TABLES.get(key)
    if table is None:
        table = _TABLES[key] = _e4m3fn_table().astype(dtype)
    return table


def _decode_natural(bits: np.ndarray, encoding: str) -> np.ndarray:
    """``bits`` widened to the encoding's natural dtype (a new array)."""
    if encoding == "bfloat16":
        return decode(bits, encoding, np.float32)
    if encoding == "float8_e5m2":
        with np.errstate(invalid="ignore"):
            return (bits.astype(np.uint16) << 8).view(np.float16).astype(np.float32)
    if encoding == "float8_e4m3fn":
        return _table(encoding, np.dtype(np.float32))[bits]
    raise ValueError(f"unknown encoding {encoding!r}")


def decode(bits: np.ndarray, encoding: str, dtype: Any = None, out: np.ndarray | None = None) -> np.ndarray:
    """The exact values of ``bits`` (raw ``encoding`` bits) as ``dtype`` (default: float32).

    ``out``: a float array of ``bits``' shape to write into (no allocation of the
    result; a wider ``out`` is filled a chunk at a time through a float32 buffer).
    """
    target = np.dtype(out.dtype if out is not None else (dtype or np.float32))
    if target.kind != "f" or target.itemsize < 4:
        raise ValueError(f"{encoding} widens exactly to float32 or float64, not {target}")
    bits = np.asarray(bits)
    if out is None:
        out = np.empty(bits.shape, dtype=target)
    elif out.shape != bits.shape:
        raise ValueError(f"out has shape {out.shape}, expected {bits.shape}")
    if encoding == "float8_e4m3fn":
        np.take(_table(encoding, target), bits, out=out)
        return out
    if encoding == "bfloat16" and target == np.float32:
        # widen in place: the 16 bits go to the low half, then move up (faster than a shift into a new array)
        u = out.view(np.uint32)
        np.copyto(u, bits, casting="safe")
        np.left_shift(u, np.uint32(16), out=u)
        return out
    # Signalling NaNs raise "invalid" as they are widened; they stay NaN, which is exact.
    with np.errstate(invalid="ignore"):
        if not out.flags.c_contiguous or bits.size <= _CHUNK:
            out[...] = _decode_natural(bits, encoding)
            return out
        flat_out = out.reshape(-1)
        flat_bits = bits.reshape(-1)
        buf = np.empty(_CHUNK, dtype=np.float32)
        for i in range(0, flat_bits.size, _CHUNK):
            part = flat_bits[i:i + _CHUNK]
            decode(part, encoding, out=buf[:part.size])
            flat_out[i:i + part.size] = buf[:part.size]
    return out


class EncodedArray:
    """An array in a float format NumPy lacks: its raw bits and the encoding's name.

    Behaves enough like an array for shape checks and slicing (``shape``, ``ndim``,
    ``size``, ``len``, ``a[i0:i1]``, ``reshape``); ``dtype`` is the dtype it widens
    to (float32, exact); ``nbytes`` is what it occupies as stored. ``np.asarray(a)``
    or :meth:`widen` gives the values.
    """

    __slots__ = ("bits", "encoding")

    def __init__(self, bits: np.ndarray, encoding: str):
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r}")
        self.bits = bits
        self.encoding = encoding

    @property
    def shape(self) -> tuple[int, ...]:
        return self.bits.shape

    @property
    def ndim(self) -> int:
        return self.bits.ndim

    @property
    def size(self) -> int:
        return self.bits.size

    @property
    def nbytes(self) -> int:
        return self.bits.nbytes

    @property
    def dtype(self) -> np.dtype:
        return ENCODINGS[self.encoding][1]

    def __len__(self) -> int:
        return len(self.bits)

    def __getitem__(self, index) -> "EncodedArray":
        part = self.bits[index]
        if isinstance(part, np.ndarray):
            return EncodedArray(part, self.encoding)
        return decode(np.asarray(part), self.encoding)[()]

    def reshape(self, *shape) -> "EncodedArray":
        return EncodedArray(self.bits.reshape(*shape), self.encoding)

    def widen(self, dtype: Any = None, out: np.ndarray | None = None) -> np.ndarray:
        """The exact values as ``dtype`` (default float32), optionally into ``out``."""
        return decode(self.bits, self.encoding, dtype, out)

    def __array__(self, dtype=None, copy=None):
        target = np.dtype(dtype) if dtype is not None else self.dtype
        if target.kind == "f" and target.itemsize >= 4:
            return self.widen(target)
        with np.errstate(invalid="ignore"):
            return self.widen().astype(target)

    def __repr__(self) -> str:
        return f"EncodedArray(shape={self.shape}, encoding={self.encoding!r})"


def widen(a: Any, dtype: Any = None, out: np.ndarray | None = None) -> np.ndarray:
    """Any array (plain, memory-mapped or :class:`EncodedArray`) as exact floating values.

    ``dtype`` defaults to the array's own float dtype (float32 for an encoded one,
    float64 for integers); with ``out`` the values are written there.
    """
    if isinstance(a, EncodedArray):
        return a.widen(dtype, out)
    a = np.asarray(a)
    if out is not None:
        np.copyto(out, a, casting="unsafe")
        return out
    if dtype is None:
        dtype = a.dtype if a.dtype.kind == "f" else np.float64
    return a.astype(dtype)
