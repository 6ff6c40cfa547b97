"""The language's corner cases as NumPy functions, defined once (docs/LANGUAGE.md).

The reference interpreter calls these functions, and emitted host programs embed this module's
source verbatim as the helpers of their NumPy reference (kernelc.embed), so the oracle and the
references that ship with artifacts cannot drift apart. Hence the constraints: the module imports
only NumPy, and its source must run where the host program runs (kernelc not installed, possibly
an older Python: no ``zip(strict=)``, annotations never evaluated). Every value may be a NumPy
scalar or an array of lanes; arguments broadcast together.
"""

from __future__ import annotations

import numpy as np


def scalar_if_0d(x: np.ndarray | np.generic) -> np.ndarray | np.generic:
    """A 0-d result as a NumPy scalar, so that a uniform value stays a typed scalar."""
    return x[()] if isinstance(x, np.ndarray) and x.ndim == 0 else x


def int_div(a: np.ndarray | np.generic, b: np.ndarray | np.generic) -> np.ndarray | np.generic:
    """C division: truncates toward zero; ``x / 0`` is 0 rather than a trap."""
    return _int_divide("/", a, b)


def int_rem(a: np.ndarray | np.generic, b: np.ndarray | np.generic) -> np.ndarray | np.generic:
    """C remainder ``a - b * (a / b)`` (the sign of ``a``); ``x % 0`` is 0 rather than a trap."""
    return _int_divide("%", a, b)


def _int_divide(
    op: str, a: np.ndarray | np.generic, b: np.ndarray | np.generic
) -> np.ndarray | np.generic:
    """Both in int64, where every quotient and remainder of 32-bit operands is exact; the
    result wraps to the operands' type (``INT_MIN / -1`` is ``INT_MIN``)."""
    dtype = np.result_type(a)
    a64, b64 = np.int64(a) if np.ndim(a) == 0 else a.astype(np.int64), np.asarray(b, np.int64)
    safe = np.where(b64 == 0, 1, b64)
    quotient = np.abs(a64) // np.abs(safe) * np.sign(a64) * np.sign(safe)
    result = quotient if op == "/" else a64 - safe * quotient
    result = np.where(b64 == 0, 0, result)
    return scalar_if_0d(np.asarray(result).astype(dtype))


def saturate(x: np.ndarray | np.generic, dtype: np.dtype | type) -> np.ndarray | np.generic:
    """Float to integer: truncate, clamp to the type's range, NaN gives 0. C leaves the last two
    undefined; the language fixes them so that every target agrees."""
    info = np.iinfo(dtype)
    v = np.asarray(x, np.float64)
    v = np.where(np.isnan(v), 0.0, np.trunc(v))
    return scalar_if_0d(np.clip(v, info.min, info.max).astype(dtype))


def load(array: np.ndarray, *index: np.ndarray | np.generic) -> np.ndarray | np.generic:
    """``array[index]`` with every index clamped into its dimension (0 from an empty array): a
    load never faults, so indirect indices need no bounds proof."""
    if array.size == 0:
        shape = np.broadcast(*index).shape if index else ()
        return scalar_if_0d(np.zeros(shape, dtype=array.dtype))
    return array[tuple(np.clip(i, 0, array.shape[d] - 1) for d, i in enumerate(index))]


def inside(shape: tuple[int, ...], index: list[np.ndarray]) -> np.ndarray | np.generic:
    """Where every index lies in its dimension: a store anywhere else is dropped (a scatter
    never clamps, so it cannot overwrite an element some other lane owns)."""
    keep = np.bool_(True)
    for d, i in enumerate(index):
        keep = keep & (i >= 0) & (i < shape[d])
    return keep


def search(
    array: np.ndarray,
    index: list,
    lo: np.ndarray | np.generic | int,
    hi: np.ndarray | np.generic | int | None,
    value: np.ndarray | np.generic,
) -> np.ndarray | np.generic:
    """``search``: in the row of ``array`` along the dimension marked None in ``index``, between
    ``lo`` and ``hi`` (None: the extent), both clamped into the row, the index of the last
    element <= value, clamped to [0, count - 2] so that it and the next bracket ``value`` (an
    interpolation stays in the row). A fixed-step binary search, probing where every target
    probes, so unsorted rows give the same answer everywhere."""
    axis = next(d for d, i in enumerate(index) if i is None)
    extent = array.shape[axis]
    start = np.clip(np.int64(lo), 0, extent)
    stop = np.clip(np.int64(extent if hi is None else hi), start, extent)
    count = stop - start
    fixed = [i for i in index if i is not None]
    below_lo = np.zeros(np.broadcast(count, value, *fixed).shape, np.int64)
    above_hi = np.broadcast_to(count, below_lo.shape).copy()
    for _ in range(int(np.max(count, initial=0)).bit_length() + 1):
        open_ = below_lo < above_hi
        mid = below_lo + (above_hi - below_lo) // 2
        at = start + np.clip(mid, 0, np.maximum(count - 1, 0))
        below = load(array, *(at if i is None else i for i in index)) <= value
        below_lo = np.where(open_ & below, mid + 1, below_lo)
        above_hi = np.where(open_ & ~below, mid, above_hi)
    return scalar_if_0d(np.clip(below_lo - 1, 0, np.maximum(count - 2, 0)).astype(np.int32))


def fma(
    a: np.ndarray | np.generic, b: np.ndarray | np.generic, c: np.ndarray | np.generic
) -> np.ndarray | np.generic:
    """a * b + c with a single rounding, for f16 and f32 operands.

    The product is exact in float64; the sum is computed with its exact error (TwoSum), and the
    error breaks the tie when the float64 sum lies exactly halfway between two results.
    """
    target = np.result_type(a)
    p = np.multiply(np.float64(a), np.float64(b))
    c64 = np.float64(c)
    r = p + c64
    z = r - p
    err = (p - (r - z)) + (c64 - z)
    rounded = np.asarray(r).astype(target)
    rt = rounded.astype(np.float64)
    away = np.nextafter(rounded, np.where(r > rt, np.inf, -np.inf).astype(target)).astype(
        np.float64
    )
    tie = (rt != r) & ((r - rt) == (away - r)) & (err != 0) & np.isfinite(r)
    nudged = np.where(tie, np.nextafter(r, np.copysign(np.inf, err)), r)
    return scalar_if_0d(np.asarray(nudged).astype(target))


def exp(x: np.ndarray | np.generic) -> np.ndarray | np.generic:
    """e^x for f16 and f32 operands, correctly rounded (see ``_via_float``)."""
    return _via_float(np.exp, x)


def log(x: np.ndarray | np.generic) -> np.ndarray | np.generic:
    """The natural logarithm for f16 and f32 operands, correctly rounded."""
    return _via_float(np.log, x)


def _via_float(fn, x: np.ndarray | np.generic) -> np.ndarray | np.generic:
    """``fn`` computed in float64 and rounded to float32 (correctly rounded unless the result
    lies within 2^-52 of a rounding boundary), then to the operand's type: an f16 operand gets
    the f32 result rounded to half, as the targets compute it. NumPy's own f32 ``exp`` and
    ``log`` depend on the host's SIMD units and can be one unit in the last place off."""
    target = np.result_type(x)
    wide = fn(np.asarray(x, dtype=np.float64)).astype(np.float32)
    return scalar_if_0d(wide.astype(target))


def _mix(x: np.ndarray) -> np.ndarray:
    """The lowbias32 integer hash (C. Wellons): an invertible mixing of 32 bits."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def randbits(
    key: np.ndarray | np.generic, counter: np.ndarray | np.generic
) -> np.ndarray | np.generic:
    """``randbits(key, counter) = mix(counter ^ mix(key ^ 0x9E3779B9))`` on u32: counter-based,
    so any lane on any target draws its number without shared state."""
    with np.errstate(over="ignore"):
        k = _mix(np.asarray(key, np.uint32) ^ np.uint32(0x9E3779B9))
        return scalar_if_0d(_mix(np.asarray(counter, np.uint32) ^ k))


def bits_to_unit_float(bits: np.ndarray | np.generic) -> np.ndarray | np.generic:
    """``rand``: the top 24 bits scaled by 2**-24, an exact f32 in [0, 1)."""
    return scalar_if_0d((np.asarray(bits) >> np.uint32(8)).astype(np.float32) * np.float32(2**-24))
