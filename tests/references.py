"""Independent NumPy references for the example kernels, with their float32 tolerances.

Written from the definitions in shared/reference/kernels.md (sections 1-3), not from the IR or the
interpreter: each reference computes in float64 from the float32 inputs, and each tolerance is a
worst-case bound on what a float32 kernel may differ from it. The XS lookup reference and its
section 4.8 tolerance live in tests/xs_reference.py; `xs_extrapolation` here widens that tolerance
for lookups outside a nuclide's grid.
"""

from __future__ import annotations

import numpy as np

U32 = 2.0**-24
"""Unit roundoff of float32 (round to nearest)."""


def gamma(n: int) -> float:
    """The classical bound n*u / (1 - n*u) on the relative error of n float32 roundings."""
    return n * U32 / (1.0 - n * U32)


# ------------------------------------------------------------------------------------- Sobel


def sobel_reference(x: np.ndarray) -> np.ndarray:
    """Sobel magnitude with zero border pixels (kernels.md section 2), float64.

    The image is padded by one pixel and gx, gy are formed from the eight shifted slices of the
    padded image; the output keeps only the interior (1 .. H-2, 1 .. W-2) and is 0 on the border,
    which is what examples/sobel.k writes.
    """
    x64 = np.asarray(x, dtype=np.float64)
    h, w = x64.shape
    out = np.zeros((h, w))
    if h < 3 or w < 3:
        return out
    p = np.pad(x64, 1, mode="constant")

    def shifted(dr: int, dc: int) -> np.ndarray:
        """p[i + dr, j + dc] for every pixel (i, j) of the image (dr, dc in -1 .. 1)."""
        return p[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]

    gx = (shifted(-1, 1) + 2 * shifted(0, 1) + shifted(1, 1)) - (
        shifted(-1, -1) + 2 * shifted(0, -1) + shifted(1, -1)
    )
    gy = (shifted(1, -1) + 2 * shifted(1, 0) + shifted(1, 1)) - (
        shifted(-1, -1) + 2 * shifted(-1, 0) + shifted(-1, 1)
    )
    out[1:-1, 1:-1] = np.hypot(gx, gy)[1:-1, 1:-1]
    return out


def sobel_tolerance(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per-pixel bound for a float32 Sobel: the section-2 comparison with a proven atol.

    Section 2 suggests rtol = 1e-6 and atol = 1e-6 * max|x|. Each 3-term sum in float32 errs by at
    most (3 + 4) * u * max|x|, so gx and gy err by 14 * u * max|x| + u * |g|, and the magnitude by
    sqrt(2) times that plus a few roundings of |mag|: at most 20 * u * max|x| + 4 * u * |mag|.
    That worst case is slightly above 1e-6 * max|x|, so the atol used is 24 * u * max|x|.
    """
    scale = float(np.max(np.abs(x), initial=0.0))
    return 1e-6 * np.abs(ref) + 24 * U32 * scale


# -------------------------------------------------------------------------------------- GEMM


def gemm_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C = A @ B in float64 (kernels.md section 1 with alpha = 1, beta = 0)."""
    return np.asarray(a, np.float64) @ np.asarray(b, np.float64)


def gemm_tolerance(a: np.ndarray, b: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Section 1: g_K * (|A| @ |B|) + u * |C_ref|, valid for any summation order."""
    k = a.shape[1]
    magnitude = np.abs(np.asarray(a, np.float64)) @ np.abs(np.asarray(b, np.float64))
    return gamma(k) * magnitude + U32 * np.abs(ref)


# --------------------------------------------------------------------------------------- PCA


def pca_reference(x: np.ndarray, mu: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Y = (X - mu) @ W in float64 (kernels.md section 3)."""
    x64, mu64, w64 = (np.asarray(v, np.float64) for v in (x, mu, w))
    return (x64 - mu64) @ w64


def pca_tolerance(x: np.ndarray, mu: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Section 3's bound g * (|X - mu| @ |W|), with g = g_{D+1} instead of g_D.

    The example centres in a separate float32 task, so each term carries one rounding more
    (of X - mu) than the D of the dot product; the bound counts it.
    """
    x64, mu64, w64 = (np.asarray(v, np.float64) for v in (x, mu, w))
    d = x64.shape[1]
    return gamma(d + 1) * (np.abs(x64 - mu64) @ np.abs(w64))


# ----------------------------------------------------------------------------------- XS lookup


def xs_extrapolation(inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Per lookup, max(1, |f|) over the nuclides of its material, f the interpolation weight.

    Inside a bracket 0 <= f <= 1 and each term is bounded by its concentration, which is what the
    section 4.8 bound assumes. Outside the grid the clamped bracket extrapolates with |f| > 1 and
    the float32 error of a term grows with |f|; with reduced grids (few, wide brackets) such
    lookups are common, so the bound is scaled by this factor (1 for interpolating lookups).
    """
    egrid = inputs["egrid"].astype(np.float64)
    energy = inputs["energy"].astype(np.float64)
    factor = np.ones(energy.shape[0])
    for lookup, (e, m) in enumerate(zip(energy, inputs["material"], strict=True)):
        for n in inputs["mat_nucs"][m, : inputs["mat_count"][m]]:
            grid = egrid[n]
            lo = int(np.clip(np.searchsorted(grid, e, side="right") - 1, 0, grid.size - 2))
            f = (grid[lo + 1] - e) / (grid[lo + 1] - grid[lo])
            factor[lookup] = max(factor[lookup], abs(f))
    return factor
