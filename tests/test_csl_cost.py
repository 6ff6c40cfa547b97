"""The cost model (backends/csl/cost.py) against the fabric simulator's cycle counts.

For maps, stencils and matrix products the model and the simulator use the same per-operation
costs, so they must agree within MODEL_BOUND; the lookup's trip counts depend on the data (the
model assumes how many nuclides the slowest row walks and how its keys and energies fall on the
columns), so it is held to the looser LOOKUP_BOUND on XSBench data.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import kernelc as kc
from kernelc import inputs, xsbench
from kernelc.backends.csl.cost import LOOKUP_BOUND, MODEL_BOUND

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

CASES = [
    ("sobel", {"H": 64, "W": 48}, (4, 4)),
    ("sobel", {"H": 100, "W": 70}, (3, 5)),
    ("sobel", {"H": 40, "W": 40}, (1, 1)),
    ("gemm", {"M": 48, "N": 40, "K": 36}, (4, 3)),
    ("gemm", {"M": 64, "N": 64, "K": 64}, (2, 2)),
    ("gemm", {"M": 12, "N": 10, "K": 8}, (2, 2)),
    ("pca", {"B": 8, "P": 512, "K": 8}, (4, 4)),
    ("pca", {"B": 6, "P": 40, "K": 5}, (3, 3)),
]


def _relative_error(result) -> float:
    modelled = result.stats["modelled_cycles"]
    simulated = result.stats["simulated_kernel_cycles"]
    return abs(modelled - simulated) / simulated


@pytest.mark.parametrize(("example", "params", "grid"), CASES)
def test_model_agrees_with_the_simulator(example: str, params: dict, grid) -> None:
    program = kc.load(EXAMPLES / f"{example}.k", params=params)
    given = inputs.random_inputs(program.graph(), 1)
    result = kc.run_with_stats(program, "csl", given, grid=grid)
    assert _relative_error(result) <= MODEL_BOUND


LOOKUPS = [  # (lookups, nuclides, grid points, grid): the error measured on 2026-12-04
    (120, 12, 200, (4, 3)),  # -0.3 %: 40 items a row
    (60, 6, 40, (2, 2)),  # +11.7 %
    pytest.param(500, 12, 200, (3, 4), marks=pytest.mark.slow),  # +7.5 %
    pytest.param(120, 12, 200, None, marks=pytest.mark.slow),  # 4x120, one item a row: -12.5 %
    pytest.param(200, 68, 400, None, marks=pytest.mark.slow),  # 28x200, energy bands: -22.7 %
]


@pytest.mark.parametrize(("lookups", "nuclides", "points", "grid"), LOOKUPS)
def test_lookup_model_is_within_its_looser_bound(lookups, nuclides, points, grid) -> None:
    given = xsbench.generate("small", lookups, nuclides, points).kernel_inputs()
    options = {} if grid is None else {"grid": grid}
    result = kc.run_with_stats(EXAMPLES / "xs_lookup.k", "csl", given, **options)
    assert _relative_error(result) <= LOOKUP_BOUND


def test_build_report_labels_modelled_figures() -> None:
    art = kc.build(EXAMPLES / "sobel.k", "csl", params={"H": 64, "W": 64}, grid=(2, 2))
    assert any("modelled" in line and "cycles" in line for line in art.summary)
    assert art.manifest["modelled_cycles"] == sum(art.manifest["modelled_tasks"].values())
