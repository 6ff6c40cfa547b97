"""Energy banding of the XS lookup on the csl target (backends/csl/lookup.py, banding.py).

At XSBench "small" size one nuclide's grid (11,303 points x 6 values) is far larger than a PE's
48 KB, so the tables are cut into energy bands. These tests run the full-size grid on the
fabric simulator against the independent NumPy reference, drawn reduced sizes over band counts
(sorted XSBench grids against the reference, unsorted random grids against the reference
interpreter, whose exact probe sequence the banded search must reproduce), and the band cut
itself against a plain binary search written here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from xs_reference import float32_tolerance, macro_xs_reference

import kernelc as kc
from kernelc import xsbench
from kernelc.cli import compare
from kernelc.forms.bands import cut

XS = kc.load(Path(__file__).resolve().parent.parent / "examples" / "xs_lookup.k")
NAMES = ("egrid", "xs", "mat_nucs", "mat_conc", "mat_count", "energy", "material")


def _bracket(grid: np.ndarray, value: float) -> int:
    """The last point <= value, clamped into [0, n - 2], by the probes of a binary search."""
    lo, hi = 0, len(grid)
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if grid[mid] <= value:
            lo = mid + 1
        else:
            hi = mid
    return min(max(lo - 1, 0), len(grid) - 2)


def _agrees_with_reference(inputs: dict, got: np.ndarray) -> None:
    want = macro_xs_reference(*(inputs[n] for n in NAMES))
    tol = float32_tolerance(inputs["mat_conc"], inputs["mat_count"], inputs["material"])
    # extrapolated terms (energies outside a nuclide's grid) can exceed the concentrations
    # that bound tol: allow f32 rounding relative to the result there too
    assert np.all(np.abs(got - want) <= np.maximum(tol, 1e-5 * np.abs(want)))


def _bands_of(params: dict, grid: tuple[int, int]) -> int:
    art = kc.build(XS, "csl", params=params, grid=grid)
    dims = art.manifest["placements"]["egrid"]
    return dims[1]["parts"] if "band_depth" in dims[1] else 1


def test_full_grid_runs_in_bands_against_the_reference() -> None:
    problem = xsbench.generate("small", lookups=12)
    inputs = problem.kernel_inputs()
    assert inputs["egrid"].shape == (68, 11303)
    result = kc.run_with_stats(XS, "csl", inputs)
    width, height = (int(n) for n in result.stats["grid"].split("x"))
    params = {"L": 12}
    assert _bands_of(params, (width, height)) > 1
    assert result.stats["max_pe_memory_bytes"] <= 49_152
    _agrees_with_reference(inputs, result.outputs["macro"])


def test_full_grid_on_a_grid_that_does_not_divide_the_problem() -> None:
    problem = xsbench.generate("small", lookups=5)
    inputs = problem.kernel_inputs()
    grid = (700, 1)  # 68 key groups of 8 band columns: 156 columns hold no table data
    assert _bands_of({"L": 5}, grid) == 8
    got = kc.run(XS, "csl", inputs, grid=grid)["macro"]
    _agrees_with_reference(inputs, got)


@settings(max_examples=40)
@given(st.integers(3, 200), st.integers(1, 5))
def test_band_cut_replays_the_search_exactly(points: int, depth: int) -> None:
    bands = cut(points, depth)
    assume(bands is not None)
    rng = np.random.default_rng(points * 7 + depth)
    for trial in range(40):
        grid = rng.uniform(-1, 1, points).astype(np.float32)
        if trial % 2:
            grid.sort()
        value = grid[rng.integers(points)] if trial % 3 == 0 else np.float32(rng.uniform(-1.2, 1.2))
        owners = []
        for band, (first, end) in enumerate(bands.stored):
            held = set(bands.tree) | set(range(first, end))
            lo, hi, node = 0, points, 0
            for _ in range(depth):
                mid = lo + (hi - lo) // 2
                assert mid in held
                lo, hi, node = (
                    (mid + 1, hi, 2 * node + 2) if grid[mid] <= value else (lo, mid, 2 * node + 1)
                )
            if node - len(bands.tree) != band:
                continue
            while lo < hi:
                mid = lo + (hi - lo) // 2
                assert mid in held
                lo, hi = (mid + 1, hi) if grid[mid] <= value else (lo, mid)
            found = min(max(lo - 1, 0), points - 2)
            assert found in held and found + 1 in held
            owners.append(found)
        assert owners == [_bracket(grid, value)]


grids = st.tuples(st.integers(2, 12), st.integers(1, 3))


@settings(max_examples=12)
@given(st.integers(1, 12), st.integers(1, 5), st.integers(3, 60), grids)
def test_xsbench_problems_over_band_counts(
    lookups: int, nuclides: int, points: int, grid: tuple[int, int]
) -> None:
    inputs = xsbench.generate("small", lookups, nuclides, points).kernel_inputs()
    got = kc.run(XS, "csl", inputs, grid=grid)["macro"]
    _agrees_with_reference(inputs, got)


@settings(max_examples=12)
@given(st.integers(1, 10), st.integers(1, 5), st.integers(3, 50), grids, st.integers(0, 2**32 - 1))
def test_unsorted_grids_match_the_interpreter(
    lookups: int, nuclides: int, points: int, grid: tuple[int, int], seed: int
) -> None:
    params = {"NI": nuclides, "NG": points, "NM": 3, "MAXN": 4, "L": lookups}
    rng = np.random.default_rng(seed)
    inputs = {
        "egrid": rng.uniform(-1, 1, (nuclides, points)).astype(np.float32),
        "xs": rng.uniform(-1, 1, (nuclides, points, 5)).astype(np.float32),
        "mat_nucs": rng.integers(0, nuclides + 1, (3, 4)).astype(np.int32),
        "mat_conc": rng.uniform(0, 1, (3, 4)).astype(np.float32),
        "mat_count": rng.integers(0, 5, 3).astype(np.int32),
        "energy": rng.uniform(-1.1, 1.1, lookups).astype(np.float32),
        "material": rng.integers(0, 4, lookups).astype(np.int32),
    }
    got = kc.run(XS, "csl", inputs, params=params, grid=grid)["macro"]
    want = kc.interpret(XS, inputs, params=params)["macro"]
    verdict = compare(got, want, 1e-4)
    assert verdict.bad is None, verdict.bad


def test_band_counts_are_drawn_from_the_grid() -> None:
    params = {"NI": 4, "NG": 40, "NM": 3, "MAXN": 4, "L": 6}
    counts = {_bands_of(params, (w, 1)) for w in range(1, 17)}
    assert counts >= {1, 2, 4}
