"""The ``Reduction`` form on csl: softmax, row norms, row ranges, column sums and mins over
several PEs, on both plans: whole rows per PE, and the folded dimension cut over the PE columns
(backends/csl/rowsplit.py).

With whole rows the folds run in the kernel's own order on each PE, so results equal the
reference interpreter bit for bit (sums included). Cut over the columns, max and min folds stay
bit for bit and sums are added in another order: within the bound docs/CSL.md states
(``split_bound``). The model must agree with the simulator within REDUCTION_BOUND, and a
reduction must model at least 4x fewer cycles than the same graph as scalar tasks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kernelc as kc
from kernelc import inputs
from kernelc.backends.csl import cost, lower
from kernelc.backends.csl.cost import REDUCTION_BOUND
from kernelc.csl import machine
from kernelc.forms import Reduction

SOFTMAX = Path(__file__).resolve().parent / "conformance" / "softmax.k"

ROW_NORM = SOFTMAX.parent / "row_norm.k"
ROW_RANGE = SOFTMAX.parent / "row_range.k"
SOFTMAX_SCALED = SOFTMAX.parent / "softmax_scaled.k"
COLUMN_STATS = SOFTMAX.parent / "column_stats.k"
U = 2.0**-24  # f32's unit roundoff


def _plan(graph, grid) -> str:
    """Which plan the lowering took on the grid: "rows" (whole rows per PE) or "split"."""
    low = lower.lower(graph, machine.WSE2, *grid)
    axes = {dm.axis for lay in low.layouts.values() for dm in lay.dims}
    return "split" if axes == {"x", "y"} else "rows"


def split_bound(columns: int, grid) -> float:
    """docs/CSL.md: a sum of ``columns`` terms cut over ``w`` PE columns differs from the
    interpreter's left-to-right sum by at most (n - 1 + m + w - 1) u times the sum of the
    terms' magnitudes (m: the largest block of a column); a softmax or norm element, computed
    from it by one more rounding, by that relative amount and two more units."""
    w = grid[0]
    m = -(-columns // w)
    return (columns - 1 + m + w - 1) * U + 2 * U


def _check(program, params: dict, grid, plan: str, exact: bool = True) -> dict:
    prog = kc.load(program, params=params)
    graph = prog.graph()
    assert all(isinstance(t.form, Reduction) for t in graph.tasks)
    assert _plan(graph, grid) == plan
    given = inputs.random_inputs(graph, 3)
    result = kc.run_with_stats(prog, "csl", given, grid=grid)
    expected = kc.run(prog, "interp", given)
    for name, value in expected.items():
        if exact:
            np.testing.assert_array_equal(result.outputs[name], value)
        else:
            bound = split_bound(params["C"], grid)
            np.testing.assert_allclose(result.outputs[name], value, rtol=bound, atol=0)
    modelled = result.stats["modelled_cycles"]
    simulated = result.stats["simulated_kernel_cycles"]
    assert abs(modelled - simulated) / simulated <= REDUCTION_BOUND
    return result.stats


@pytest.mark.parametrize(
    ("params", "grid"),
    [({"R": 37, "C": 100}, (1, 4)), ({"R": 4, "C": 6}, (2, 2)), ({"R": 5, "C": 9}, (1, 3))],
)
def test_softmax_on_whole_rows_matches_the_interpreter_bit_for_bit(params: dict, grid) -> None:
    _check(SOFTMAX, params, grid, "rows")


@pytest.mark.parametrize(
    ("params", "grid"),
    [
        ({"R": 64, "C": 256}, (4, 4)),
        ({"R": 37, "C": 100}, (4, 4)),
        ({"R": 37, "C": 100}, (3, 5)),
        ({"R": 5, "C": 9}, (2, 2)),
        ({"R": 5, "C": 9}, (3, 5)),
    ],
)
def test_softmax_cut_over_columns_is_within_the_stated_bound(params: dict, grid) -> None:
    _check(SOFTMAX, params, grid, "split", exact=False)


def test_row_norm_and_column_folds() -> None:
    _check(ROW_NORM, {"R": 37, "C": 50}, (4, 4), "split", exact=False)
    _check(COLUMN_STATS, {"R": 20, "C": 45}, (3, 5), "rows")


@pytest.mark.parametrize(
    ("params", "grid"), [({"R": 6, "C": 30}, (3, 3)), ({"R": 37, "C": 50}, (4, 4))]
)
def test_max_and_min_cut_over_columns_match_the_interpreter_bit_for_bit(params, grid) -> None:
    _check(ROW_RANGE, params, grid, "split")


def test_split_max_and_min_ignore_nan_like_the_interpreter() -> None:
    """NaN is where a column's partial starts (the identity of the NaN-ignoring maximum), and
    the partials are folded in column order: a row of NaN stays NaN, NaN elsewhere is ignored,
    a column whose part is all NaN changes nothing. (Zeros compare equal; which sign a tie of
    +0 and -0 keeps is not asserted: NumPy's fmax, under the interpreter and the simulator
    alike, keeps either depending on the length of the arrays.)"""
    prog = kc.load(ROW_RANGE, params={"R": 5, "C": 12})
    nan = np.nan
    x = np.array(
        [
            [nan, 1.0, nan, 2.0, -1.0, 0.5, nan, 3.0, nan, nan, 0.0, -2.0],
            [-0.0, 0.0, -3.0, -0.0, -5.0, -1.0, 0.0, -0.0, -0.0, 0.0, -7.0, -0.0],
            [nan] * 12,
            [1.0, 2.0, 3.0, 4.0] + [nan] * 8,
            [0.0, -0.0, 0.0, 7.0, -0.0, 0.0, 7.0, -0.0, 0.0, 0.0, -0.0, -0.0],
        ],
        dtype=np.float32,
    )
    assert _plan(prog.graph(), (3, 5)) == "split"
    got = kc.run(prog, "csl", {"x": x}, grid=(3, 5))["y"]
    want = kc.run(prog, "interp", {"x": x})["y"]
    np.testing.assert_array_equal(got, want)


def test_the_plan_with_fewer_modelled_cycles_is_taken() -> None:
    """Cut over the columns where the folds are long (softmax 64 x 256 on 4 x 4: each PE folds
    64 columns instead of 256), whole rows where a PE row would only add combine steps."""
    long = kc.load(SOFTMAX, params={"R": 64, "C": 256}).graph()
    assert _plan(long, (4, 4)) == "split"
    short = kc.load(SOFTMAX, params={"R": 4, "C": 6}).graph()
    assert _plan(short, (2, 2)) == "rows"


def test_whole_rows_max_ignores_nan_and_keeps_signed_zeros_like_the_interpreter() -> None:
    prog = kc.load(SOFTMAX, params={"R": 4, "C": 6})
    x = np.array(
        [
            [np.nan, 1.0, np.nan, 2.0, -1.0, 0.5],
            [-0.0, 0.0, -3.0, -0.0, -5.0, -1.0],
            [np.nan] * 6,
            [3.0, np.inf, 1.0, -np.inf, 2.0, 0.0],
        ],
        dtype=np.float32,
    )
    assert _plan(prog.graph(), (2, 2)) == "rows"
    got = kc.run(prog, "csl", {"x": x}, grid=(2, 2))["y"]
    want = kc.run(prog, "interp", {"x": x})["y"]
    np.testing.assert_array_equal(got, want)


def test_at_least_four_times_fewer_cycles_than_scalar_tasks() -> None:
    graph = kc.load(SOFTMAX, params={"R": 32, "C": 64}).graph()
    reduced = cost.model(lower.lower(graph, machine.WSE2, 4, 4)).cycles
    scalar = cost.model(lower.lower(graph, machine.WSE2, 1, 1, scalar=True)).cycles
    assert reduced * 4 <= scalar


def test_a_reduction_whose_output_a_map_consumes_runs_on_the_grid() -> None:
    """The map's blocks (rows over the PE rows, columns over the PE columns) are the cut plan's
    placement, so the graph runs data-parallel, even on one PE, instead of as scalar tasks."""
    prog = kc.load(SOFTMAX_SCALED, params={"R": 12, "C": 40})
    graph = prog.graph()
    assert [type(t.form).__name__ for t in graph.tasks] == ["Reduction", "Map"]
    assert _plan(graph, (1, 1)) == "split"
    given = inputs.random_inputs(graph, 5)
    result = kc.run_with_stats(prog, "csl", given)
    w, h = (int(n) for n in result.stats["grid"].split("x"))
    assert w > 1 and h > 1
    want = kc.run(prog, "interp", given)["z"]
    np.testing.assert_allclose(result.outputs["z"], want, rtol=split_bound(40, (w, h)), atol=0)
    scalar = cost.model(lower.lower(graph, machine.WSE2, 1, 1, scalar=True)).cycles
    assert result.stats["modelled_cycles"] * 4 <= scalar
    simulated = result.stats["simulated_kernel_cycles"]
    assert abs(result.stats["modelled_cycles"] - simulated) / simulated <= REDUCTION_BOUND
