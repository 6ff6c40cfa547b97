"""Property tests: the reference interpreter runs the four examples as their NumPy references say.

Sizes are drawn (1-wide, non-square and empty reductions included), values are drawn, and each
result is held to the float32 tolerance of shared/reference/kernels.md for that kernel. Sizes
come from the input shapes, as `kernelc run --in` binds them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from references import (
    gemm_reference,
    gemm_tolerance,
    pca_reference,
    pca_tolerance,
    sobel_reference,
    sobel_tolerance,
    xs_extrapolation,
)
from xs_reference import float32_tolerance, macro_xs_reference

import kernelc as kc
from kernelc import xsbench

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SMALLEST = 2.0**-20
"""Drawn magnitudes below this are flushed to 0, so no float32 product or square underflows:
the tolerances are relative bounds and say nothing about subnormal results."""


@pytest.fixture(scope="module")
def programs() -> dict[str, kc.Program]:
    return {name: kc.load(EXAMPLES / f"{name}.k") for name in ("sobel", "gemm", "pca", "xs_lookup")}


def f32_arrays(shape: tuple[int, ...], bound: float = 1e4) -> st.SearchStrategy[np.ndarray]:
    """float32 arrays with finite values in [-bound, bound], tiny magnitudes flushed to 0."""
    elements = st.floats(-bound, bound, width=32, allow_subnormal=False)
    return arrays(np.float32, shape, elements=elements).map(
        lambda a: np.where(np.abs(a) < SMALLEST, np.float32(0), a)
    )


def assert_within(got: np.ndarray, want: np.ndarray, tol: np.ndarray) -> None:
    err = np.abs(got.astype(np.float64) - want)
    worst = np.unravel_index(int(np.argmax(err - tol)), err.shape) if err.size else ()
    assert np.all(err <= tol), f"at {worst}: got {got[worst]}, want {want[worst]}, tol {tol[worst]}"


# ------------------------------------------------------------------------------------- Sobel


@given(data=st.data(), h=st.integers(1, 20), w=st.integers(1, 20))
def test_sobel_matches_reference(programs, data, h: int, w: int) -> None:
    img = data.draw(f32_arrays((h, w)))
    out = kc.interpret(programs["sobel"], {"img": img})["mag"]
    assert out.dtype == np.float32 and out.shape == (h, w)
    ref = sobel_reference(img)
    assert_within(out, ref, sobel_tolerance(img, ref))
    assert not out[0].any() and not out[-1].any() and not out[:, 0].any() and not out[:, -1].any()


def test_sobel_on_ramps_is_exact(programs) -> None:
    """A unit ramp along the columns gives gx = 8 and gy = 0 inside; along the rows, the reverse."""
    cols = np.tile(np.arange(9, dtype=np.float32), (6, 1))
    out = kc.interpret(programs["sobel"], {"img": cols})["mag"]
    expected = np.zeros((6, 9), np.float32)
    expected[1:-1, 1:-1] = 8
    np.testing.assert_array_equal(out, expected)
    rows = np.ascontiguousarray(cols.T * 0.5)
    out = kc.interpret(programs["sobel"], {"img": rows})["mag"]
    np.testing.assert_array_equal(out, np.ascontiguousarray(expected.T) * 0.5)


def test_sobel_single_interior_pixel(programs) -> None:
    img = np.array([[1, 2, 4], [0, 9, 3], [5, 1, 7]], np.float32)
    gx = (4 + 2 * 3 + 7) - (1 + 2 * 0 + 5)
    gy = (5 + 2 * 1 + 7) - (1 + 2 * 2 + 4)
    out = kc.interpret(programs["sobel"], {"img": img})["mag"]
    assert out[1, 1] == np.float32(np.sqrt(np.float32(gx * gx + gy * gy)))
    assert np.count_nonzero(out) == 1


# -------------------------------------------------------------------------------------- GEMM


@given(data=st.data(), m=st.integers(1, 9), n=st.integers(1, 9), k=st.integers(0, 12))
def test_gemm_matches_reference(programs, data, m: int, n: int, k: int) -> None:
    a = data.draw(f32_arrays((m, k)))
    b = data.draw(f32_arrays((k, n)))
    out = kc.interpret(programs["gemm"], {"a": a, "b": b})["c"]
    assert out.dtype == np.float32 and out.shape == (m, n)
    ref = gemm_reference(a, b)
    assert_within(out, ref, gemm_tolerance(a, b, ref))


def test_gemm_with_k_zero_is_zero(programs) -> None:
    a = np.zeros((3, 0), np.float32)
    b = np.zeros((0, 2), np.float32)
    out = kc.interpret(programs["gemm"], {"a": a, "b": b})["c"]
    np.testing.assert_array_equal(out, np.zeros((3, 2), np.float32))


def test_gemm_sums_left_to_right(programs) -> None:
    """(1e8 + 1) - 1e8 in float32 is 0, but 1e8 - 1e8 + 1 is 1: the order is the source's."""
    a = np.array([[1e8, 1, -1e8]], np.float32)
    b = np.ones((3, 1), np.float32)
    assert kc.interpret(programs["gemm"], {"a": a, "b": b})["c"][0, 0] == 0
    a = np.array([[1e8, -1e8, 1]], np.float32)
    assert kc.interpret(programs["gemm"], {"a": a, "b": b})["c"][0, 0] == 1


# --------------------------------------------------------------------------------------- PCA


@given(data=st.data(), b=st.integers(1, 5), p=st.integers(0, 40), k=st.integers(1, 6))
def test_pca_matches_reference(programs, data, b: int, p: int, k: int) -> None:
    frames = data.draw(f32_arrays((b, p)))
    mean = data.draw(f32_arrays((p,)))
    basis = data.draw(f32_arrays((p, k), bound=1.0))
    inputs = {"frames": frames, "mean": mean, "basis": basis}
    out = kc.interpret(programs["pca"], inputs)["codes"]
    assert out.dtype == np.float32 and out.shape == (b, k)
    assert_within(out, pca_reference(frames, mean, basis), pca_tolerance(frames, mean, basis))


def test_pca_centres_before_projecting(programs) -> None:
    """Frames far from the origin but close to the mean: the folded form X@W - mu@W would cancel
    catastrophically in float32; centring first keeps the small codes exact here."""
    mean = np.full(4, 1e6, np.float32)
    frames = (mean + np.array([[1, -2, 0.5, 0.25]], np.float32)).astype(np.float32)
    basis = np.eye(4, 2, dtype=np.float32)
    out = kc.interpret(programs["pca"], {"frames": frames, "mean": mean, "basis": basis})
    np.testing.assert_array_equal(out["codes"], np.array([[1, -2]], np.float32))


# ----------------------------------------------------------------------------------- XS lookup


def check_xs(program: kc.Program, inputs: dict[str, np.ndarray]) -> None:
    """The float32 kernel against the float64 reference on the same float32-rounded data (4.8)."""
    out = kc.interpret(program, inputs)["macro"]
    assert out.dtype == np.float32 and out.shape == (inputs["energy"].shape[0], 5)
    ref = macro_xs_reference(**inputs)
    tol = float32_tolerance(inputs["mat_conc"], inputs["mat_count"], inputs["material"])
    tol = tol * xs_extrapolation(inputs)[:, None]
    assert_within(out, ref, np.broadcast_to(tol, ref.shape))


@given(
    nuclides=st.integers(1, 68),
    gridpoints=st.integers(2, 120),
    lookups=st.integers(1, 300),
    size=st.sampled_from(["small", "large"]),
)
def test_xs_lookup_matches_reference(programs, nuclides, gridpoints, lookups, size) -> None:
    problem = xsbench.generate(size, lookups, nuclides, gridpoints)
    check_xs(programs["xs_lookup"], problem.kernel_inputs())


@given(data=st.data(), gridpoints=st.integers(2, 40))
def test_xs_lookup_energies_on_and_outside_the_grid(programs, data, gridpoints: int) -> None:
    """Energies exactly on grid points (ties go to the upper bracket), below the first point and
    above the last (the clamped bracket extrapolates)."""
    problem = xsbench.generate("small", 64, 12, gridpoints)
    inputs = problem.kernel_inputs()
    grid = inputs["egrid"]
    picks = st.one_of(
        st.sampled_from(sorted(set(grid.ravel().tolist()))),
        st.floats(0.0, float(grid[:, 0].max()), width=32),
        st.floats(float(grid[:, -1].min()), 1.5, width=32),
    )
    energy = data.draw(arrays(np.float32, 64, elements=picks))
    check_xs(programs["xs_lookup"], {**inputs, "energy": energy})


def test_xs_lookup_on_the_full_small_grid(programs) -> None:
    """68 nuclides x 11303 points: brackets down to 1e-11 wide in float64, some of them collapsed
    by float32 rounding; the section 4.8 bound still holds per lookup."""
    check_xs(programs["xs_lookup"], xsbench.generate("small", 3000).kernel_inputs())


def test_xs_lookup_single_nuclide_by_hand(programs) -> None:
    """One material of one nuclide with three points: interpolation, tie and extrapolation."""
    egrid = np.array([[0.25, 0.5, 1.0]], np.float32)
    xs = np.array([[[1, 2, 3, 4, 5], [3, 2, 1, 0, 5], [7, 2, -1, 4, 1]]], np.float32)
    inputs = {
        "egrid": egrid,
        "xs": xs,
        "mat_nucs": np.zeros((1, 1), np.int32),
        "mat_conc": np.array([[2.0]], np.float32),
        "mat_count": np.array([1], np.int32),
        "energy": np.array([0.375, 0.5, 0.0, 1.25], np.float32),
        "material": np.zeros(4, np.int32),
    }
    out = kc.interpret(programs["xs_lookup"], inputs)["macro"]
    lo, mid, hi = xs[0].astype(np.float64)
    expected = 2 * np.array(
        [
            (lo + mid) / 2,  # halfway between 0.25 and 0.5
            mid,  # exactly on the second point: bracket [0.5, 1.0], f = 1
            lo - (mid - lo),  # 0.0 is one bracket width below 0.25: f = 2 on [0.25, 0.5]
            hi + (hi - mid) / 2,  # 1.25 is half a bracket above 1.0: f = -0.5 on [0.5, 1.0]
        ]
    )
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
