"""Wavelets' 32-bit words and the values they carry: host words read as a data type, the words
a D2H writes for wavelet values, and a data task's arguments from one wavelet. The PEs, the
router's range filter and memcpy's streams all read wavelets this way."""

from __future__ import annotations

import numpy as np

from kernelc.runtime.fabric.evaluate import FnValue


def as_bits(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Host words (u32: a wavelet's raw 32 bits) read as ``dtype``: f32 is the whole word, a
    16-bit type its low half; other values are converted by value."""
    if values.dtype != np.uint32 or dtype == np.uint32:
        return values
    if dtype.itemsize == 4:
        return values.view(dtype)
    return (values & 0xFFFF).astype(np.uint16).view(dtype)


def wavelet_args(fn: FnValue, payload: object) -> tuple:
    """A data task's arguments from one wavelet: the payload, or, for two 16-bit params, its
    low half then its high half (the SDK's data task convention for sparse tensors)."""
    dtypes = [getattr(t, "dtype", None) for _, t in fn.params]
    if len(dtypes) == 2:
        word = int(words_of(np.array([payload]), 32)[0])
        halves = np.array([word & 0xFFFF, word >> 16], dtype=np.uint32)
        return tuple(
            as_bits(halves[k : k + 1], d)[0] if d is not None else halves[k]
            for k, d in enumerate(dtypes)
        )
    if len(dtypes) == 1 and dtypes[0] is not None and getattr(payload, "dtype", None) != dtypes[0]:
        # a wavelet carries bits: a param of another type reads them, not a converted value
        return (as_bits(np.array([words_of(np.array([payload]), 32)[0]]), dtypes[0])[0],)
    return (payload,)


def words_of(values: np.ndarray, bits: int) -> np.ndarray:
    """Wavelet values as the u32 words a D2H writes: floats by their bits, integers wrapped;
    16-bit data in the low half, zero-extended."""
    v = np.asarray(values)
    if v.dtype == np.float16:  # a 16-bit wavelet: its bits in the low half
        v = v.view(np.uint16)
    elif v.dtype.kind == "f":
        v = v.astype(np.float32 if bits == 32 else np.float16)
        v = v.view(np.uint32 if bits == 32 else np.uint16)
    mask = 0xFFFFFFFF if bits == 32 else 0xFFFF
    return (v.astype(np.int64) & mask).astype(np.uint32)
