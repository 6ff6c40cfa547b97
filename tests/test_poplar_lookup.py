"""The poplar lowering of the ``Lookup`` form (backends/poplar/lookup.py): items spread over
tiles and workers, tables replicated; its modelled cycles against the IPU model's simulated
ones on XSBench-style data; and the refusal (scalar-vertex fallback) when the tables do not
fit a tile. Where the planner would take the split tables (tests/test_poplar_split.py) because
they model fewer cycles, the ``replicated`` fixture turns the split off."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import kernelc as kc
from kernelc import xsbench
from kernelc.backends.poplar import lookup as poplar_lookup
from kernelc.backends.poplar import lower as poplar_lower
from kernelc.backends.poplar.lookup import LookupLowering
from kernelc.forms import Lookup

ROOT = Path(__file__).resolve().parent.parent
XS = ROOT / "examples" / "xs_lookup.k"
MC = ROOT / "tests" / "conformance" / "mc_xs.k"
SMALL = {"NI": 6, "NG": 40}  # small tables: 6 nuclides x 40 grid points
needs_gxx = pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++")) is None,
    reason="the IPU model compiles the emitted C++ with g++, which is not installed",
)


@pytest.fixture
def replicated(monkeypatch: pytest.MonkeyPatch) -> None:
    """The replicated plan only: the split tables refused."""
    monkeypatch.setattr(poplar_lookup, "plan_split", lambda *args: "turned off by the test")


def _xs_inputs(lookups: int) -> dict[str, np.ndarray]:
    return xsbench.generate("small", lookups, SMALL["NI"], SMALL["NG"]).kernel_inputs()


def test_items_spread_over_tiles_as_one_multivertex(replicated: None) -> None:
    params = {**SMALL, "L": 256}
    artifact = kc.build(XS, "poplar", params=params)
    assert artifact.files == kc.build(XS, "poplar", params=params).files
    codelets = artifact.files["codelets.cpp"]
    assert "class XsLookup0Vertex : public MultiVertex" in codelets
    assert "bool compute(unsigned workerId)" in codelets
    assert "for (int l = lBegin + int(workerId); l < lEnd; l += int(numWorkers()))" in codelets
    assert "Input<Vector<float>> xs;  // xs[0:6, 0:40, 0:5], whole" in codelets
    assert "InOut<Vector<float>> macro;  // the block's rows of macro[0:256, 0:5]" in codelets
    assert "macro[(l - lBegin) * 5 + c]" in codelets
    report = "\n".join(artifact.summary)
    assert "48 of 1472 tiles used" in report
    assert "form Lookup: 48 blocks of its 256 items" in report
    assert "tables 'egrid', 'mat_conc', 'mat_count', 'mat_nucs', 'xs' replicated" in report
    main = artifact.files["main.cpp"]
    assert "xs.slice({std::size_t(b[" in main  # a 3-D table connected whole, flattened


def test_tables_that_fit_neither_replicated_nor_split_are_refused() -> None:
    params = {"NI": 68, "NG": 1000, "L": 64}  # egrid and xs: 68 x 1000 x 24 bytes
    graph = kc.load(XS, params=params).graph(None, params)
    task = graph.tasks[0]
    assert isinstance(task.form, Lookup)
    why = LookupLowering().plan(task, task.form, graph, range(2))  # 2 tiles: no split fits
    assert isinstance(why, str)
    assert "its tables (1,635,312 bytes)" in why
    assert "do not fit one tile's 638,976 bytes replicated" in why
    assert "split: its key tables cut into at most 2 pieces" in why
    with pytest.raises(kc.KernelcError, match="needs .* bytes on tile 0") as raised:
        kc.build(XS, "poplar", params=params, tiles=2)
    assert "task 'xs_lookup' runs as form Lookup: one single-worker vertex" in str(raised.value)
    assert "split: its key tables cut into at most 2 pieces" in str(raised.value)


@needs_gxx
@pytest.mark.parametrize(
    ("lookups", "tiles", "used"),
    [(256, None, 48), (256, 4, 4), (4096, 64, 64)],
)
def test_modelled_cycles_match_the_simulated_ones(
    lookups: int, tiles: int | None, used, replicated: None
) -> None:
    params = {**SMALL, "L": lookups}
    inputs = _xs_inputs(lookups)
    options = {} if tiles is None else {"tiles": tiles}
    result = kc.run_with_stats(XS, "poplar", inputs, params=params, **options)
    stats = result.stats
    assert stats["tiles_used"] == used
    modelled, simulated = stats["modelled_cycles"], stats["simulated_cycles"]
    assert abs(modelled - simulated) <= 0.15 * simulated, (modelled, simulated)
    want = kc.interpret(XS, inputs, params=params)["macro"]
    np.testing.assert_array_equal(result.outputs["macro"], want)  # each item's order kept


@needs_gxx
def test_lookup_beats_the_scalar_vertex(monkeypatch: pytest.MonkeyPatch, replicated: None) -> None:
    params = {**SMALL, "L": 256}
    inputs = _xs_inputs(256)
    spread = kc.run_with_stats(XS, "poplar", inputs, params=params).stats
    monkeypatch.delitem(poplar_lower.LOWERINGS, Lookup)
    scalar = kc.run_with_stats(XS, "poplar", inputs, params=params)
    assert scalar.stats["tiles_used"] == 1
    assert spread["simulated_cycles"] * 50 < scalar.stats["simulated_cycles"]
    np.testing.assert_array_equal(
        scalar.outputs["macro"], kc.interpret(XS, inputs, params=params)["macro"]
    )


@needs_gxx
def test_monte_carlo_lookup_draws_its_items_on_the_tiles(replicated: None) -> None:
    params = {"NI": 6, "NG": 40, "L": 48}
    problem = _xs_inputs(8)
    keys = ("egrid", "xs", "mat_nucs", "mat_conc", "mat_count")
    cdf = np.concatenate(([0.0], np.cumsum(np.full(12, 1 / 12))), dtype=np.float32)
    cdf[-1] = 1.0
    inputs = {**{k: problem[k] for k in keys}, "cdf": cdf}
    result = kc.run_with_stats(MC, "poplar", inputs, params=params)
    stats = result.stats
    assert stats["tiles_used"] > 1
    assert (
        abs(stats["modelled_cycles"] - stats["simulated_cycles"])
        <= 0.15 * stats["simulated_cycles"]
    )
    np.testing.assert_array_equal(
        result.outputs["macro"], kc.interpret(MC, inputs, params=params)["macro"]
    )
