"""``cerebras.sdk.sdk_utils`` as the SDK examples' run.py use it, for runs on the simulator.

memcpy moves 32-bit words in both data types (csl.md 3.1): 16-bit host data is widened to
words before an H2D and the low halves are read back after a D2H.
"""

from __future__ import annotations

import numpy as np


def input_array_to_u32(np_arr: np.ndarray, sentinel: int | None, fast_dim_sz: int) -> np.ndarray:
    """16-bit elements in the low half of u32 words; the high half is zero (``sentinel`` None)
    or the element's index along the fastest dimension of ``fast_dim_sz`` elements."""
    flat = np.asarray(np_arr).reshape(-1)
    if flat.dtype.itemsize != 2:
        raise ValueError(f"input_array_to_u32 widens 16-bit arrays, got {flat.dtype}")
    words = flat.view(np.uint16).astype(np.uint32)
    if sentinel is not None:
        index = np.arange(flat.size, dtype=np.uint32) % np.uint32(fast_dim_sz)
        words |= index << np.uint32(16)
    return words.reshape(np.shape(np_arr))


def memcpy_view(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A view of u32 words as ``dtype``: the whole word, or its low half for 16-bit types."""
    words = np.asarray(arr)
    if words.dtype.itemsize != 4:
        raise ValueError(f"memcpy_view reads 32-bit host buffers, got {words.dtype}")
    dtype = np.dtype(dtype)
    if dtype.itemsize == 4:
        return words.view(dtype)
    if dtype.itemsize == 2:
        return words.view(dtype).reshape(*words.shape, 2)[..., 0]
    raise ValueError(f"memcpy_view gives 16- or 32-bit elements, not {dtype}")
