"""Property tests: the four examples on the fabric simulator against NumPy references written
independently of kernelc, over drawn sizes, values and grid shapes (including sizes that do
not divide the grid and grids with more PEs than rows or columns)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st
from xs_reference import float32_tolerance, macro_xs_reference

import kernelc as kc
from kernelc import xsbench
from kernelc.tolerance import close_enough

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SOBEL = kc.load(EXAMPLES / "sobel.k")
GEMM = kc.load(EXAMPLES / "gemm.k")
PCA = kc.load(EXAMPLES / "pca.k")
XS = kc.load(EXAMPLES / "xs_lookup.k")

grids = st.tuples(st.integers(1, 4), st.integers(1, 4))
seeds = st.integers(0, 2**32 - 1)


def sobel_numpy(img: np.ndarray) -> np.ndarray:
    """Gradient magnitude with the 3x3 Sobel kernels; the border stays zero."""
    out = np.zeros_like(img)
    if img.shape[0] < 3 or img.shape[1] < 3:
        return out
    up, mid, down = img[:-2], img[1:-1], img[2:]
    two = np.float32(2)
    gx = (up[:, 2:] + two * mid[:, 2:] + down[:, 2:]) - (
        up[:, :-2] + two * mid[:, :-2] + down[:, :-2]
    )
    gy = (down[:, :-2] + two * down[:, 1:-1] + down[:, 2:]) - (
        up[:, :-2] + two * up[:, 1:-1] + up[:, 2:]
    )
    out[1:-1, 1:-1] = np.sqrt(gx * gx + gy * gy)
    return out


@given(st.integers(1, 18), st.integers(1, 18), grids, seeds)
def test_sobel(h: int, w: int, grid: tuple[int, int], seed: int) -> None:
    assume(h >= grid[1] and w >= grid[0])  # blocks at least as thick as the halo
    img = np.random.default_rng(seed).uniform(-4, 4, (h, w)).astype(np.float32)
    got = kc.run(SOBEL, "csl", {"img": img}, params={"H": h, "W": w}, grid=grid)["mag"]
    assert close_enough(got, sobel_numpy(img), rtol=1e-6)


@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 12), grids, seeds)
def test_gemm(m: int, n: int, k: int, grid: tuple[int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    got = kc.run(GEMM, "csl", {"a": a, "b": b}, params={"M": m, "N": n, "K": k}, grid=grid)["c"]
    assert close_enough(got, a.astype(np.float64) @ b.astype(np.float64))


@given(st.integers(1, 6), st.integers(1, 48), st.integers(1, 6), grids, seeds)
def test_pca(frames: int, pixels: int, comps: int, grid: tuple[int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (frames, pixels)).astype(np.float32)
    mean = x.mean(axis=0).astype(np.float32)
    basis = rng.uniform(-1, 1, (pixels, comps)).astype(np.float32)
    params = {"B": frames, "P": pixels, "K": comps}
    got = kc.run(PCA, "csl", {"frames": x, "mean": mean, "basis": basis}, params=params, grid=grid)[
        "codes"
    ]
    centred = x.astype(np.float64) - mean.astype(np.float64)
    assert close_enough(got, centred @ basis.astype(np.float64), rtol=1e-4)


@given(st.integers(1, 30), st.integers(1, 7), st.integers(2, 40), grids)
def test_xs_lookup(lookups: int, nuclides: int, points: int, grid: tuple[int, int]) -> None:
    problem = xsbench.generate("small", lookups, nuclides, points)
    inputs = problem.kernel_inputs()
    got = kc.run(XS, "csl", inputs, grid=grid)["macro"]
    names = ("egrid", "xs", "mat_nucs", "mat_conc", "mat_count", "energy", "material")
    want = macro_xs_reference(*(inputs[n] for n in names))
    tol = float32_tolerance(inputs["mat_conc"], inputs["mat_count"], inputs["material"])
    # With few grid points many energies fall outside a nuclide's grid and are extrapolated,
    # so terms can be far larger than the concentrations that bound tol; allow f32 rounding
    # relative to the result there too.
    assert np.all(np.abs(got - want) <= np.maximum(tol, 1e-5 * np.abs(want)))
