"""The ``Reduction`` form on csl: softmax, row norms, column sums and mins over several PEs.

The folds run in the kernel's own order on each PE, so results equal the reference interpreter
bit for bit (sums included); the model must agree with the simulator within MODEL_BOUND, and a
reduction must model at least 4x fewer cycles than the same graph as scalar tasks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kernelc as kc
from kernelc import inputs
from kernelc.backends.csl import cost, lower
from kernelc.backends.csl.cost import MODEL_BOUND
from kernelc.csl import machine
from kernelc.forms import Reduction

SOFTMAX = Path(__file__).resolve().parent / "conformance" / "softmax.k"

ROW_NORM = SOFTMAX.parent / "row_norm.k"
COLUMN_STATS = SOFTMAX.parent / "column_stats.k"


def _check(program, params: dict, grid) -> dict:
    prog = kc.load(program, params=params)
    graph = prog.graph()
    assert all(isinstance(t.form, Reduction) for t in graph.tasks)
    given = inputs.random_inputs(graph, 3)
    result = kc.run_with_stats(prog, "csl", given, grid=grid)
    expected = kc.run(prog, "interp", given)
    for name, value in expected.items():
        np.testing.assert_array_equal(result.outputs[name], value)
    modelled = result.stats["modelled_cycles"]
    simulated = result.stats["simulated_kernel_cycles"]
    assert abs(modelled - simulated) / simulated <= MODEL_BOUND
    return result.stats


@pytest.mark.parametrize(
    ("params", "grid"),
    [
        ({"R": 64, "C": 256}, (4, 4)),
        ({"R": 37, "C": 100}, (4, 4)),
        ({"R": 37, "C": 100}, (3, 5)),
        ({"R": 5, "C": 9}, (2, 2)),
    ],
)
def test_softmax_matches_the_interpreter_bit_for_bit(params: dict, grid) -> None:
    _check(SOFTMAX, params, grid)


def test_row_norm_and_column_folds() -> None:
    _check(ROW_NORM, {"R": 37, "C": 50}, (4, 4))
    _check(COLUMN_STATS, {"R": 20, "C": 45}, (3, 5))


def test_max_ignores_nan_and_keeps_signed_zeros_like_the_interpreter() -> None:
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
    got = kc.run(prog, "csl", {"x": x}, grid=(2, 2))["y"]
    want = kc.run(prog, "interp", {"x": x})["y"]
    np.testing.assert_array_equal(got, want)


def test_at_least_four_times_fewer_cycles_than_scalar_tasks() -> None:
    graph = kc.load(SOFTMAX, params={"R": 32, "C": 64}).graph()
    reduced = cost.model(lower.lower(graph, machine.WSE2, 4, 4)).cycles
    scalar = cost.model(lower.lower(graph, machine.WSE2, 1, 1, scalar=True)).cycles
    assert reduced * 4 <= scalar
