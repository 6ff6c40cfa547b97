"""When a target's output matches the reference: one rule for ``kernelc check``, the tests and
the emitted host programs (which embed this module's source; see kernelc.embed). The rule is
``excess``'s; docs/ARCHITECTURE.md says why it has this form.
"""

from __future__ import annotations

import numpy as np


def default_rtol(dtype: np.dtype) -> float:
    """The relative tolerance for outputs of ``dtype``: 1e-2 for f16, 1e-5 otherwise."""
    return 1e-2 if dtype == np.float16 else 1e-5


def excess(
    got: np.ndarray, want: np.ndarray, rtol: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per element, (the difference as a multiple of the allowed difference, the allowed
    difference); an element matches where the first is at most 1. Integers and bools must be
    equal. Floats may differ by ``rtol * (|want| + max|want|)`` (the maximum over the finite
    elements of ``want``); where ``want`` is NaN or infinite, ``got`` must be the same. Arrays of
    one shape."""
    if got.dtype.kind != "f" or want.dtype.kind != "f":
        differ = np.asarray(got != want)
        return np.where(differ, np.inf, 0.0), np.zeros(differ.shape)
    rtol = rtol if rtol is not None else default_rtol(got.dtype)
    g, w = got.astype(np.float64), want.astype(np.float64)
    finite = np.isfinite(w)
    scale = float(np.max(np.abs(w[finite]), initial=0.0))
    allowed = rtol * (np.where(finite, np.abs(w), 0.0) + scale) + np.finfo(np.float64).tiny
    same_special = (np.isnan(g) & np.isnan(w)) | (~finite & (g == w))
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where(same_special, 0.0, np.abs(g - w))
        err = np.where(np.isnan(err), np.inf, err)
        return err / allowed, allowed


def close_enough(got: np.ndarray, want: np.ndarray, rtol: float | None = None) -> bool:
    """Whether ``got`` has the shape of ``want`` and matches it everywhere (see ``excess``)."""
    return got.shape == want.shape and bool(np.all(excess(got, want, rtol)[0] <= 1))
