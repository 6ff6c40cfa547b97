"""Independent NumPy reference of the XSBench macroscopic cross-section lookup.

Written from the algorithm description only (reference kernels, section 4.1 / 4.8) and sharing
no code with kernelc, so a kernelc kernel and this reference can only agree by both being right.
All arithmetic is float64, whatever dtype the inputs come in: to check a float32 kernel, pass the
float32 inputs it saw and compare within float32_tolerance.
"""

from __future__ import annotations

import numpy as np

_CHUNK = 1 << 20
_U32 = 2.0**-24


def _accumulate(
    egrid: np.ndarray, xs: np.ndarray, nucs: np.ndarray, conc: np.ndarray, energy: np.ndarray
) -> np.ndarray:
    """Sigma for lookups that share one material: sum_j conc_j * sigma_{nucs_j}(E), in j order."""
    last = egrid.shape[1] - 2
    sigma = np.zeros((energy.shape[0], 5))
    for nuc, c in zip(nucs, conc, strict=True):
        grid = egrid[nuc]
        lo = np.clip(np.searchsorted(grid, energy, side="right") - 1, 0, last)
        e_lo, e_hi = grid[lo], grid[lo + 1]
        xs_lo, xs_hi = xs[nuc, lo], xs[nuc, lo + 1]
        f = (e_hi - energy) / (e_hi - e_lo)
        sigma += (xs_hi - f[:, None] * (xs_hi - xs_lo)) * c
    return sigma


def macro_xs_reference(
    egrid: np.ndarray,
    xs: np.ndarray,
    mat_nucs: np.ndarray,
    mat_conc: np.ndarray,
    mat_count: np.ndarray,
    energy: np.ndarray,
    material: np.ndarray,
) -> np.ndarray:
    """Macroscopic cross sections (L, 5), float64, of every (energy, material) lookup.

    Lookups are grouped by material and, within a group, visited in ascending energy so that
    searchsorted and the gathers walk each nuclide grid in order; results return in input order.
    """
    egrid = np.asarray(egrid, dtype=np.float64)
    xs = np.asarray(xs, dtype=np.float64)
    conc = np.asarray(mat_conc, dtype=np.float64)
    energy = np.asarray(energy, dtype=np.float64)
    material = np.asarray(material)
    macro = np.empty((energy.shape[0], 5))
    for start in range(0, energy.shape[0], _CHUNK):
        e_chunk = energy[start : start + _CHUNK]
        m_chunk = material[start : start + _CHUNK]
        order = np.lexsort((e_chunk, m_chunk))
        bounds = np.searchsorted(m_chunk[order], np.arange(mat_count.shape[0] + 1))
        for m in range(mat_count.shape[0]):
            rows = order[bounds[m] : bounds[m + 1]]
            if rows.size == 0:
                continue
            count = int(mat_count[m])
            macro[start + rows] = _accumulate(
                egrid, xs, mat_nucs[m, :count], conc[m, :count], e_chunk[rows]
            )
    return macro


def float32_tolerance(
    mat_conc: np.ndarray, mat_count: np.ndarray, material: np.ndarray
) -> np.ndarray:
    """Per-lookup absolute bound (L, 1) for a float32 kernel against the float64 reference.

    8 * num_nucs[mat] * 2**-24 * sum_j conc[mat, j] (section 4.8, step 3): each of the num_nucs
    float32 interpolate-and-accumulate steps errs by a few ulps of a term bounded by conc_j.
    """
    conc = np.asarray(mat_conc, dtype=np.float64)
    counts = np.asarray(mat_count, dtype=np.int64)
    valid = np.arange(conc.shape[1])[None, :] < counts[:, None]
    per_material = 8.0 * counts * _U32 * np.where(valid, conc, 0.0).sum(axis=1)
    return per_material[np.asarray(material)][:, None]
