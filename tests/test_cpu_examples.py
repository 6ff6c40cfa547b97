"""Property tests: the cpu target runs the four examples like the interpreter and the NumPy
references, over drawn sizes (1-wide, non-square, uneven thread splits, sizes that cross the GEMM
blocking), drawn values and 1 or all threads.

Sizes are drawn from short lists so that the compile cache is reused across examples.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from references import (
    gemm_reference,
    gemm_tolerance,
    pca_reference,
    pca_tolerance,
    sobel_reference,
    sobel_tolerance,
    xs_extrapolation,
)
from test_examples_interp import assert_within, f32_arrays
from xs_reference import float32_tolerance, macro_xs_reference

import kernelc as kc
from kernelc import xsbench

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ALL = len(os.sched_getaffinity(0))
THREADS = st.sampled_from(sorted({1, ALL, 3}))


@pytest.fixture(scope="module")
def programs() -> dict[str, kc.Program]:
    return {name: kc.load(EXAMPLES / f"{name}.k") for name in ("sobel", "gemm", "pca", "xs_lookup")}


@given(
    data=st.data(),
    h=st.sampled_from([1, 2, 3, 4, 17, 33]),
    w=st.sampled_from([1, 3, 5, 40]),
    threads=THREADS,
)
def test_sobel_matches_interpreter_and_reference(programs, data, h, w, threads) -> None:
    img = data.draw(f32_arrays((h, w)))
    out = kc.run(programs["sobel"], "cpu", {"img": img}, threads=threads)["mag"]
    assert out.dtype == np.float32 and out.shape == (h, w)
    np.testing.assert_array_equal(out, kc.interpret(programs["sobel"], {"img": img})["mag"])
    ref = sobel_reference(img)
    assert_within(out, ref, sobel_tolerance(img, ref))


GEMM_SIZES = st.tuples(
    st.sampled_from([1, 2, 7, 9, 17, 130, 261]),
    st.sampled_from([1, 5, 31, 33, 70, 530]),
    st.sampled_from([1, 3, 16, 257, 300]),
).filter(lambda s: s[0] * s[1] * s[2] <= 400_000)


@given(data=st.data(), size=GEMM_SIZES, threads=THREADS)
def test_gemm_matches_interpreter_and_reference(programs, data, size, threads) -> None:
    """Sizes cross the micro-tile edges, the k blocking (256), the column panels (512) and the
    row blocks (128), with row counts that split unevenly between threads."""
    m, n, k = size
    a = data.draw(f32_arrays((m, k), bound=100.0))
    b = data.draw(f32_arrays((k, n), bound=100.0))
    out = kc.run(programs["gemm"], "cpu", {"a": a, "b": b}, threads=threads)["c"]
    assert out.dtype == np.float32 and out.shape == (m, n)
    ref = gemm_reference(a, b)
    tol = gemm_tolerance(a, b, ref)
    assert_within(out, ref, tol)
    if m * n * k <= 20_000:
        want = kc.interpret(programs["gemm"], {"a": a, "b": b})["c"]
        assert_within(out, want.astype(np.float64), 2 * tol)


def test_gemm_still_sums_left_to_right(programs) -> None:
    b = np.ones((3, 1), np.float32)
    for row, expected in (([1e8, 1, -1e8], 0), ([1e8, -1e8, 1], 1)):
        a = np.array([row], np.float32)
        assert kc.run(programs["gemm"], "cpu", {"a": a, "b": b})["c"][0, 0] == expected


def test_gemm_with_k_zero_is_zero(programs) -> None:
    out = kc.run(
        programs["gemm"],
        "cpu",
        {"a": np.zeros((3, 0), np.float32), "b": np.zeros((0, 2), np.float32)},
    )["c"]
    np.testing.assert_array_equal(out, np.zeros((3, 2), np.float32))


@given(
    data=st.data(),
    b=st.sampled_from([1, 2, 5]),
    p=st.sampled_from([1, 3, 40, 300]),
    k=st.sampled_from([1, 6, 33]),
    threads=THREADS,
)
def test_pca_matches_interpreter_and_reference(programs, data, b, p, k, threads) -> None:
    frames = data.draw(f32_arrays((b, p)))
    mean = data.draw(f32_arrays((p,)))
    basis = data.draw(f32_arrays((p, k), bound=1.0))
    inputs = {"frames": frames, "mean": mean, "basis": basis}
    out = kc.run(programs["pca"], "cpu", inputs, threads=threads)["codes"]
    assert out.dtype == np.float32 and out.shape == (b, k)
    tol = pca_tolerance(frames, mean, basis)
    assert_within(out, pca_reference(frames, mean, basis), tol)
    want = kc.interpret(programs["pca"], inputs)["codes"]
    assert_within(out, want.astype(np.float64), 2 * tol)


@given(
    nuclides=st.sampled_from([1, 12, 68]),
    gridpoints=st.sampled_from([2, 3, 50]),
    lookups=st.sampled_from([1, 7, 300]),
    size=st.sampled_from(["small", "large"]),
    threads=THREADS,
)
def test_xs_lookup_matches_interpreter_and_reference(
    programs, nuclides, gridpoints, lookups, size, threads
) -> None:
    inputs = xsbench.generate(size, lookups, nuclides, gridpoints).kernel_inputs()
    out = kc.run(programs["xs_lookup"], "cpu", inputs, threads=threads)["macro"]
    want = kc.interpret(programs["xs_lookup"], inputs)["macro"]
    np.testing.assert_array_equal(out, want)
    ref = macro_xs_reference(**inputs)
    tol = float32_tolerance(inputs["mat_conc"], inputs["mat_count"], inputs["material"])
    tol = tol * xs_extrapolation(inputs)[:, None]
    assert_within(out, ref, np.broadcast_to(tol, ref.shape))


def test_xs_lookup_on_the_full_small_grid(programs) -> None:
    inputs = xsbench.generate("small", 3000).kernel_inputs()
    out = kc.run(programs["xs_lookup"], "cpu", inputs)["macro"]
    np.testing.assert_array_equal(out, kc.interpret(programs["xs_lookup"], inputs)["macro"])
