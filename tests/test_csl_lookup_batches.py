"""Lookups whose items are generated on the device, item ranges that do not start at 0, and
items that go through the PE program in batches (backends/csl/lookup.py, host.py).

The in-kernel Monte Carlo lookup (tests/conformance/mc_xs.k) draws its energies and materials
from the item index: it has no item input, is energy-banded at XSBench's table sizes like
examples/xs_lookup.k, and its batches differ only in the first item the host launches with.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from xs_reference import macro_xs_reference

import kernelc as kc
from kernelc import xsbench
from kernelc.forms import Lookup

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conformance.cases import XS_SIZES, _xs_problem, rand_ref, search_ref  # noqa: E402

MC = kc.load(ROOT / "tests" / "conformance" / "mc_xs.k")
XS = ROOT / "examples" / "xs_lookup.k"
TABLES = ("egrid", "xs", "mat_nucs", "mat_conc", "mat_count")
SMALL = {"NI": 68, "NG": 11303}


def _cdf() -> np.ndarray:
    weights = np.random.default_rng(0).uniform(0.2, 1.0, 12)
    cdf = np.concatenate([[0.0], np.cumsum(weights) / weights.sum()]).astype(np.float32)
    cdf[-1] = 1.0
    return cdf


def _mc_reference(inputs: dict, lookups: int, seed: int = 7) -> np.ndarray:
    """mc_xs.k in NumPy: the draws of the language's rand, the material by search."""
    counters = np.arange(lookups, dtype=np.uint64) * 2
    energy = rand_ref(seed, counters)
    material = np.array(
        [search_ref(inputs["cdf"], u) for u in rand_ref(seed, counters + 1)], np.int32
    )
    return macro_xs_reference(*(inputs[k] for k in TABLES), energy, material)


def _close(got: np.ndarray, want: np.ndarray) -> None:
    scale = np.max(np.abs(want))
    assert np.all(np.abs(got - want) <= 1e-4 * (np.abs(want) + scale))


def test_generated_items_are_a_banded_lookup_without_item_inputs() -> None:
    form = MC.graph(None, {"L": 512, **SMALL}).tasks[0].form
    assert isinstance(form, Lookup)
    assert form.generated and form.key == "n" and form.site is not None
    assert form.site.table == "egrid"
    assert not any(p in form.items for p in ("energy", "material", "cdf"))


def test_generated_items_at_xsbench_table_sizes_on_many_pes() -> None:
    problem = xsbench.generate("small", lookups=1).kernel_inputs()
    inputs = {k: problem[k] for k in TABLES} | {"cdf": _cdf()}
    params = {"L": 6, **SMALL}
    result = kc.run_with_stats(MC, "csl", inputs, params=params, grid=(544, 2))
    assert result.stats["max_pe_memory_bytes"] <= 49_152
    _close(result.outputs["macro"], _mc_reference(inputs, 6))


def test_generated_items_in_batches_match_numpy() -> None:
    inputs = {k: v for k, v in _xs_problem(8).items() if k in TABLES} | {"cdf": _cdf()}
    params = {**XS_SIZES, "L": 900}
    art = kc.build(MC, "csl", params=params, grid=(1, 1))
    assert "2 batches of" in "\n".join(art.summary)
    assert "np.int32(first)" in art.files["run.py"]
    got = kc.run(MC, "csl", inputs, params=params, grid=(1, 1))["macro"]
    _close(got, _mc_reference(inputs, 900))


@pytest.mark.parametrize("grid", [(1, 1), (2, 3), (3, 5)])
def test_item_loop_that_does_not_start_at_zero(tmp_path: Path, grid: tuple[int, int]) -> None:
    """Issue 14: ``for l in 0 + 1 .. L - 2``: rows 0 and L - 2, L - 1 stay zero."""
    source = XS.read_text().replace("for l in 0 .. L", "for l in 0 + 1 .. L - 2")
    assert source != XS.read_text()
    path = tmp_path / "xs_start.k"
    path.write_text(source)
    params = {**XS_SIZES, "L": 12}
    inputs = dict(_xs_problem(12))
    want = kc.interpret(path, inputs, params=params)["macro"]
    assert np.all(want[0] == 0) and np.all(want[-2:] == 0) and np.any(want[1] != 0)
    got = kc.run(path, "csl", inputs, params=params, grid=grid)["macro"]
    assert np.all(got[0] == 0) and np.all(got[-2:] == 0)
    _close(got, want)


@pytest.mark.slow
def test_item_inputs_in_batches_with_a_range_offset(tmp_path: Path) -> None:
    source = XS.read_text().replace("for l in 0 .. L", "for l in 0 + 1 .. L - 2")
    path = tmp_path / "xs_start.k"
    path.write_text(source)
    params = {**XS_SIZES, "L": 1700}
    inputs = dict(_xs_problem(1700))
    assert "3 batches of" in "\n".join(kc.build(path, "csl", params=params, grid=(1, 1)).summary)
    want = kc.interpret(path, inputs, params=params)["macro"]
    got = kc.run(path, "csl", inputs, params=params, grid=(1, 1))["macro"]
    _close(got, want)


@pytest.mark.parametrize("lookups", [1_000_000, 17_000_000])
def test_xsbench_lookup_counts_build_in_batches(lookups: int) -> None:
    art = kc.build(XS, "csl", params={"L": lookups})
    report = "\n".join(art.summary)
    assert "batches of" in report and "per batch" in report and "host transfers" in report
    assert art.manifest["memory"]["per_pe_bytes"] <= 49_152
    assert art.manifest["launches"] == ["f_xs_lookup"]
