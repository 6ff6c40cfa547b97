"""Guarded maps: conditions on the loop indices split a ``Map`` into rectangular pieces
(kernelc/forms/map.py), and csl runs each piece as DSD operations over its window of every PE's
block (backends/csl/stencil.py) instead of falling back to scalar tasks on one PE."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import kernelc as kc
from kernelc import inputs, ir
from kernelc.affine import evaluate
from kernelc.backends.csl import lower
from kernelc.backends.csl.cost import MODEL_BOUND, model
from kernelc.csl import machine
from kernelc.forms import Map, Scalar

CONFORMANCE = Path(__file__).resolve().parent / "conformance"


def _form(source: str, **params: int):
    graph = kc.loads(source, params=params).graph()
    return graph.tasks[0].form, graph.tasks[0].size_env


def _covers_once(form: Map, env: dict[str, int]) -> bool:
    """Every iteration of the nest lies in exactly one piece."""
    ranges = [range(evaluate(lp.lo, env), evaluate(lp.hi, env)) for lp in form.loops]
    boxes = [p.bounds(env) for p in form.pieces]
    for point in itertools.product(*ranges):
        inside = sum(all(lo <= v < hi for v, (lo, hi) in zip(point, b, strict=True)) for b in boxes)
        if inside != 1:
            return False
    return True


HEAT = (CONFORMANCE / "heat.k").read_text()
ONE_SIDED = (CONFORMANCE / "heat_one_sided.k").read_text()

SELECT = """
size N = 9, M = 7;
kernel edge(u: f32[N, M]) -> v: f32[N, M] {
  for i in 0 .. N, j in 0 .. M {
    let left = select(j == 0, u[i, j], u[i, j - 1]);
    v[i, j] = select(i < N - 1 || j != 3, 0.5 * (left + u[i, j]), -u[i, j]);
  }
}
"""

NESTED = """
size N = 9, M = 7;
kernel nest(u: f32[N, M]) -> v: f32[N, M] {
  for i in 0 .. N, j in 0 .. M {
    if i >= 2 {
      if !(j < M - 2) {
        v[i, j] = u[i - 2, j] * 2.0;
      } else {
        v[i, j] = u[i - 1, j] + u[i, j + 1];
      }
    } else {
      v[i, j] = u[i, j];
    }
  }
}
"""


def test_heat_splits_into_interior_and_four_borders() -> None:
    form, env = _form(HEAT, N=12, M=10)
    assert isinstance(form, Map)
    assert len(form.pieces) == 5
    assert sorted(p.bounds(env) for p in form.pieces)[0] == ((0, 1), (0, 10))
    assert ((1, 11), (1, 9)) in [p.bounds(env) for p in form.pieces]
    assert _covers_once(form, env)


@pytest.mark.parametrize("source", [ONE_SIDED, SELECT, NESTED])
def test_pieces_are_disjoint_and_cover_the_domain(source: str) -> None:
    form, env = _form(source)
    assert isinstance(form, Map) and len(form.pieces) > 1
    assert _covers_once(form, env)
    assert all(not isinstance(n, ir.Select) for p in form.pieces for n in ir.walk_body(p.body))


def test_pieces_empty_at_the_bound_sizes_are_dropped() -> None:
    form, _ = _form(ONE_SIDED, N=1, M=4)
    assert isinstance(form, Map) and len(form.pieces) == 1


@pytest.mark.parametrize(
    "guard",
    ["u[i, j] > 0.0", "i * 2 > N", "i > j", "k > 0"],
)
def test_guards_that_are_no_index_bounds_leave_no_map(guard: str) -> None:
    source = f"""
    size N = 6, M = 5;
    kernel g(u: f32[N, M], k: i32) -> v: f32[N, M] {{
      for i in 0 .. N, j in 0 .. M {{
        if {guard} {{ v[i, j] = u[i, j]; }} else {{ v[i, j] = 1.0; }}
      }}
    }}
    """
    form, _ = _form(source)
    assert isinstance(form, Scalar)


def test_a_region_that_writes_no_output_is_no_map() -> None:
    source = """
    size N = 6;
    kernel g(u: f32[N]) -> v: f32[N] {
      for i in 0 .. N { if i > 0 { v[i] = u[i]; } }
    }
    """
    form, _ = _form(source)
    assert isinstance(form, Scalar)


def _run(program, grid):
    given = inputs.random_inputs(program.graph(), 1)
    result = kc.run_with_stats(program, "csl", given, grid=grid)
    expected = kc.run(program, "interp", given)
    return result, expected


RUNS = [
    ("heat", 64, 64, (4, 4)),
    ("heat", 100, 37, (4, 4)),
    ("heat", 100, 37, (3, 5)),
    ("heat", 37, 23, (2, 2)),
    ("heat", 32, 32, (8, 8)),
    ("heat", 50, 50, (1, 4)),
    ("heat_one_sided", 64, 64, (4, 4)),
    ("heat_one_sided", 100, 37, (4, 4)),
    ("heat_one_sided", 41, 29, (3, 5)),
]


@pytest.mark.parametrize(("name", "n", "m", "grid"), RUNS)
def test_guarded_stencils_run_data_parallel_bit_for_bit(name, n, m, grid) -> None:
    program = kc.load(CONFORMANCE / f"{name}.k", params={"N": n, "M": m})
    result, expected = _run(program, grid)
    for key, want in expected.items():
        assert np.array_equal(result.outputs[key], want), key
    modelled = result.stats["modelled_cycles"]
    simulated = result.stats["simulated_kernel_cycles"]
    assert abs(modelled - simulated) / simulated <= MODEL_BOUND
    graph = program.graph()
    scalar = model(lower.lower(graph, machine.WSE2, 1, 1, scalar=True)).cycles
    assert 4 * modelled <= scalar


@pytest.mark.parametrize("source", [SELECT, NESTED])
def test_select_and_nested_guards_run_on_csl(source: str) -> None:
    program = kc.loads(source)
    result, expected = _run(program, (2, 2))
    for key, want in expected.items():
        assert np.array_equal(result.outputs[key], want), key
    build = kc.build(program, "csl", grid=(2, 2))
    assert "guarded pieces" in build.files["README.md"]


def test_f16_heat_moves_16_bit_words_and_runs_on_many_pes() -> None:
    program = kc.load(CONFORMANCE / "heat_f16.k", params={"N": 40, "M": 23})
    result, expected = _run(program, (4, 4))
    assert result.outputs["w"].dtype == np.float16
    assert np.array_equal(result.outputs["w"], expected["w"])
    run_py = kc.build(program, "csl", grid=(4, 4)).files["run.py"]
    assert "data_type=data_type(spec)" in run_py and "MEMCPY_16BIT" in run_py


def test_run_py_moves_f16_with_16_bit_memcpy_and_the_shim_is_strict(tmp_path, capsys) -> None:
    from kernelc.runtime.fabric import sdk
    from kernelc.runtime.fabric.runner import compile_program, run_host_script
    from kernelc.runtime.fabric.values import FabricError

    art = kc.build(CONFORMANCE / "heat_f16.k", "csl", grid=(2, 2))
    src = art.write(tmp_path / "artifact")
    mf = art.manifest
    compile_program(
        src / "layout.csl",
        arch=mf["arch"],
        fabric_dims=tuple(mf["fabric_dims"]),
        fabric_offsets=tuple(mf["fabric_offsets"]),
        params=mf["cslc_params"],
        channels=1,
        memcpy=True,
        out_dir=tmp_path / "out",
    )
    run_host_script(src / "run.py", ["--name", str(tmp_path / "out"), "--check"])
    assert "SUCCESS: outputs match the NumPy reference" in capsys.readouterr().out
    runner = sdk.SdkRuntime(str(tmp_path / "out"))
    symbol = runner.get_id("u")
    runner.load()
    runner.run()
    halves = np.zeros(4 * 10, dtype=np.float16)
    with pytest.raises(FabricError, match="host buffers hold 32-bit elements"):
        runner.memcpy_h2d(symbol, halves, 0, 0, 2, 2, 10, data_type=sdk.MemcpyDataType.MEMCPY_16BIT)
    words = np.zeros(4 * 10, dtype=np.uint32)
    with pytest.raises(FabricError, match="32-bit memcpy of 'u', whose elements are 16-bit"):
        runner.memcpy_h2d(symbol, words, 0, 0, 2, 2, 10)
