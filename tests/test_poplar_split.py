"""The poplar Lookup lowering with its key tables split over tiles (backends/poplar/split.py):
pieces by key and energy band, items in batches, partial sums reduced by a second compute set;
run in the IPU model against the interpreter, and its modelled cycles against the simulated
ones."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import kernelc as kc
from kernelc import xsbench
from kernelc.backends.poplar import lookup
from kernelc.backends.poplar.cost import model, tile_bytes
from kernelc.backends.poplar.lookup import LookupLowering
from kernelc.backends.poplar.lower import lower
from kernelc.backends.poplar.machine import GC200
from kernelc.backends.poplar.split import SplitBlocks, plan_split
from kernelc.forms import Lookup

ROOT = Path(__file__).resolve().parent.parent
XS = ROOT / "examples" / "xs_lookup.k"
needs_gxx = pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++")) is None,
    reason="the IPU model compiles the emitted C++ with g++, which is not installed",
)
# tables too big to replicate (1.6 MB), a nuclide's grid fits a tile: split by key
KEYED = {"NI": 68, "NG": 1000, "L": 64}
# one nuclide's grid (30,000 points x 24 bytes) does not fit a tile: split by energy band too
BANDED = {"NI": 2, "NG": 30000, "L": 64}
# enough items that copies of the pieces for more groups of tiles pay
REPLICATED = {"NI": 68, "NG": 1000, "L": 1024}


def _inputs(params: dict[str, int]) -> dict[str, np.ndarray]:
    return xsbench.generate("small", params["L"], params["NI"], params["NG"]).kernel_inputs()


def _graph(params: dict[str, int]):
    return kc.load(XS, params=params).graph(None, params)


def test_tables_that_do_not_fit_a_tile_are_split_by_key() -> None:
    graph = _graph(KEYED)
    task = graph.tasks[0]
    assert isinstance(task.form, Lookup)
    blocks = LookupLowering().plan(task, task.form, graph, range(1472))
    assert isinstance(blocks, SplitBlocks)
    plan = lower(graph, GC200)
    assert max(tile_bytes(plan).values()) <= GC200.tile_memory
    report = "\n".join(kc.build(XS, "poplar", params=KEYED).summary)
    assert "tables split: the key tables egrid, xs cut into" in report
    assert "partial sums per piece and one that adds the pieces' partial sums" in report
    assert "partial sums added in piece order" not in report  # later phases stay out


def test_too_few_tiles_for_the_pieces_is_said() -> None:
    graph = _graph(KEYED)
    task = graph.tasks[0]
    why = plan_split(task, task.form, graph, range(2))
    assert isinstance(why, str)
    assert "cut into at most 2 pieces (one per tile) leave 816,000 bytes on a tile" in why
    replicated = LookupLowering().plan(task, task.form, graph, range(2))
    assert "do not fit one tile's 638,976 bytes replicated; split:" in replicated


def test_a_grid_too_long_for_a_tile_is_cut_into_energy_bands() -> None:
    graph = _graph(BANDED)
    task = graph.tasks[0]
    blocks = plan_split(task, task.form, graph, range(1472))
    assert isinstance(blocks, SplitBlocks)
    assert blocks.bands > 1
    owned = [p.owned for p in blocks.pieces[: blocks.bands]]
    assert owned[0][0] == 0 and owned[-1][1] == BANDED["NG"] - 1  # every bracket owned once
    assert all(a[1] == b[0] for a, b in zip(owned, owned[1:], strict=False))
    for p in blocks.pieces:  # the stored points hold lo and lo + 1 for every owned lo
        assert p.stored[0] <= p.owned[0] and p.owned[1] < p.stored[1]
    artifact = kc.build(XS, "poplar", params=BANDED)
    assert artifact.files == kc.build(XS, "poplar", params=BANDED).files
    codelets = artifact.files["codelets.cpp"]
    assert "int oBegin;  // the first bracket this band adds for" in codelets
    assert "if ((lo >= oBegin) && (lo < oEnd)) {" in codelets


def _fits_in_batches(lookups: int) -> None:
    plan = lower(_graph({"L": lookups}), GC200)
    assert max(tile_bytes(plan).values()) <= GC200.tile_memory
    assert model(plan).total > 0
    phases = [t for t in plan.tasks if t.phase % 2 == 0]
    shares = {(i.state[0], i.state[1]) for t in phases for i in t.instances}
    assert sum(hi - lo for lo, hi in shares) == lookups  # every item in one batch and group


def test_full_size_tables_fit_every_tile_at_the_default_item_count() -> None:
    _fits_in_batches(100_000)


@pytest.mark.slow
def test_full_size_tables_fit_every_tile_at_a_million_items() -> None:
    _fits_in_batches(1_000_000)


def test_more_items_copy_the_pieces_to_more_groups_of_tiles() -> None:
    graph = _graph(REPLICATED)
    task = graph.tasks[0]
    blocks = LookupLowering().plan(task, task.form, graph, range(1472))
    assert isinstance(blocks, SplitBlocks)
    assert blocks.groups > 1
    assert len(blocks.replicas["xs"]) == blocks.groups - 1
    main = kc.build(XS, "poplar", params=REPLICATED).files["main.cpp"]
    assert "prog.add(Copy(xs, xs_replica1));  // a copy for more tiles" in main
    assert main.index("prog.add(Copy(xs, xs_replica1))") < main.index("prog.add(Execute(step0))")


@needs_gxx
@pytest.mark.parametrize("params", [KEYED, BANDED, REPLICATED], ids=["keys", "bands", "replicas"])
def test_split_runs_in_the_ipu_model(params: dict[str, int]) -> None:
    inputs = _inputs(params)
    result = kc.run_with_stats(XS, "poplar", inputs, params=params)
    want = kc.interpret(XS, inputs, params=params)["macro"]
    got = result.outputs["macro"]
    # each item's terms are added per piece, then the pieces: rounding differs, bounded by
    # (terms - 1) x eps x sum |terms| per element (docs/POPLAR.md)
    np.testing.assert_allclose(got, want, rtol=34 * 2**-23, atol=0)
    stats = result.stats
    assert stats["simulated_compute_sets"]["step1"][0] > 0  # the reduction compute set ran
    modelled, simulated = stats["modelled_cycles"], stats["simulated_cycles"]
    assert abs(modelled - simulated) <= 0.15 * simulated, (modelled, simulated)


@needs_gxx
def test_full_size_tables_check_in_the_ipu_model() -> None:
    params = {"L": 64}
    inputs = xsbench.generate("small", 64).kernel_inputs()
    result = kc.run_with_stats(XS, "poplar", inputs, params=params)
    want = kc.interpret(XS, inputs, params=params)["macro"]
    np.testing.assert_allclose(result.outputs["macro"], want, rtol=34 * 2**-23, atol=0)
    stats = result.stats
    assert (
        abs(stats["modelled_cycles"] - stats["simulated_cycles"])
        <= 0.15 * stats["simulated_cycles"]
    )


@needs_gxx
def test_monte_carlo_lookup_with_split_tables_draws_its_items_on_the_tiles() -> None:
    params = {**KEYED, "L": 48}
    problem = _inputs(params)
    keys = ("egrid", "xs", "mat_nucs", "mat_conc", "mat_count")
    cdf = np.concatenate(([0.0], np.cumsum(np.full(12, 1 / 12))), dtype=np.float32)
    cdf[-1] = 1.0
    inputs = {**{k: problem[k] for k in keys}, "cdf": cdf}
    mc = ROOT / "tests" / "conformance" / "mc_xs.k"
    result = kc.run_with_stats(mc, "poplar", inputs, params=params)
    assert "step1" in result.stats["simulated_compute_sets"]  # split: a reduction ran
    want = kc.interpret(mc, inputs, params=params)["macro"]
    np.testing.assert_allclose(result.outputs["macro"], want, rtol=34 * 2**-23, atol=0)


def test_the_planner_takes_the_split_where_it_models_fewer_cycles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    params = {"NI": 6, "NG": 40, "L": 256}  # small tables: replicated fits
    graph = _graph(params)
    chosen = lower(graph, GC200)
    assert chosen.tasks[0].phase == 0 and len(chosen.tasks) == 2  # split: two compute sets
    monkeypatch.setattr(lookup, "plan_split", lambda *args: "turned off by the test")
    whole = lower(graph, GC200)
    assert len(whole.tasks) == 1
    assert model(chosen).total < model(whole).total  # 18,612 against 24,564
