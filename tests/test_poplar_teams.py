"""OpenMP ``teams num_teams(T)`` on poplar as replication on one IPU: the C frontend gives T
tasks of one step (team t a copy of the kernel with ``omp_team = t``); with the constant
substituted each team's nest is a ``Map``, and the T teams divide the tiles into equal ranges,
each a virtual graph in main.cpp (``graph.createVirtualGraph``) spread over its own range, all
vertices in one compute set. Replication over several IPUs (``replication_factor``) is not done.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import kernelc as kc
from kernelc.backends.poplar.lower import lower
from kernelc.backends.poplar.machine import GC200
from kernelc.diagnostics import KernelcError
from kernelc.forms import Map
from kernelc.interpreter import interpret
from kernelc.passes.constants import specialise
from kernelc.printer import kernel_text

SOURCE = """\
#define N 64
void scale(const float a[N][N], float b[N][N]) {
#pragma omp target teams distribute num_teams(4) map(to: a[0:N]) map(from: b[0:N])
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++)
      b[i][j] = 2.0f * a[i][j];
}
"""
needs_gxx = pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++")) is None,
    reason="the IPU model compiles the emitted C++ with g++, which is not installed",
)


@pytest.fixture()
def program(tmp_path: Path) -> Path:
    path = tmp_path / "teams.c"
    path.write_text(SOURCE)
    return path


def test_a_team_with_its_constant_substituted_is_a_map(program: Path) -> None:
    graph = kc.load(program).graph(None, {})
    assert [t.name for t in graph.tasks] == [f"scale_loop1_{t}" for t in range(4)]
    assert all(isinstance(t.form, Map) for t in graph.tasks)
    team = graph.tasks[1]
    assert "omp_team * N / 4" in kernel_text(team.kernel)  # the task keeps its kernel
    text = kernel_text(specialise(team).kernel)
    assert "for i in 0 .. 16 {  // parallel" in text
    assert "b[i, j] = 2.0 * a[i + 16, j];" in text
    assert specialise(graph.tasks[0]).kernel.body[0].hi.value == 16  # team 0: i - 0 is i


def test_a_task_without_constants_is_not_specialised() -> None:
    source = "kernel k(x: f32[N]) -> y: f32[N] { for i in 0 .. N { y[i] = x[i]; } }"
    task = kc.loads(source, params={"N": 8}).graph(None, {}).tasks[0]
    assert specialise(task) is task


def test_folding_keeps_division_by_zero_and_wrapping_to_the_kernel() -> None:
    source = """
kernel k(s: i32, x: i32[N]) -> y: i32[N] {
  for i in s .. N { y[i] = x[i] + N / (s - 2) + s * 2147483647 + (s + 1) * N; }
}
graph g(x: i32[N]) -> y: i32[N] { y = k(2, x); }
"""
    program = kc.loads(source, params={"N": 6})
    text = kernel_text(specialise(program.graph(None, {}).tasks[0]).kernel)
    assert "for i in 0 .. 4 {  // parallel" in text
    assert "y[i + 2] = x[i + 2] + N / 0 + 2 * 2147483647 + 18;" in text
    x = np.arange(6, dtype=np.int32)
    got = kc.run(program, "interp", {"x": x})["y"]
    np.testing.assert_array_equal(got[2:], x[2:] + np.int32(-2) + 18)


def test_the_teams_divide_the_tiles_into_equal_ranges(program: Path) -> None:
    graph = kc.load(program).graph(None, {})
    plan = lower(graph, GC200, tiles=64)
    assert plan.steps == 1
    assert [t.share for t in plan.tasks] == [range(16 * k, 16 * k + 16) for k in range(4)]
    for k, low in enumerate(plan.tasks):
        assert {i.tile for i in low.instances} == set(range(16 * k, 16 * k + 16))
    writes = [t.task.writes[0].box for t in plan.tasks]
    assert writes == [((16 * t, 16 * t + 16), (0, 64)) for t in range(4)]
    # each team's block of 'a' and 'b' lives on its own tiles: no exchange between teams
    for name in ("a", "b"):
        owner = plan.tensor(name).mapping.array()
        for k in range(4):
            rows = owner[16 * k : 16 * k + 16]
            assert rows.min() >= 16 * k and rows.max() < 16 * k + 16, name


def test_main_cpp_builds_one_virtual_graph_per_team(program: Path) -> None:
    files = kc.build(program, "poplar", tiles=64).files
    main = files["main.cpp"]
    for k in range(4):
        assert f"Graph sub = graph.createVirtualGraph({16 * k}, {16 * k + 16});" in main
    assert main.count('graph.addComputeSet("step') == 1
    assert "sub.setTileMapping(v, static_cast<unsigned>(b[0]));" in main
    assert "omp_team" not in files["codelets.cpp"]  # the constant is folded into the nest
    assert files == kc.build(program, "poplar", tiles=64).files


@needs_gxx
def test_teams_run_bit_exact_and_as_modelled(program: Path) -> None:
    a = np.random.default_rng(3).random((64, 64), dtype=np.float32)
    graph = kc.load(program).graph(None, {})
    want = interpret(graph, {"a": a})["b"]
    result = kc.run_with_stats(program, "poplar", {"a": a})
    np.testing.assert_array_equal(result.outputs["b"], want)
    np.testing.assert_array_equal(want, 2.0 * a)
    stats = result.stats
    modelled, simulated = stats["modelled_cycles"], stats["simulated_cycles"]
    assert abs(modelled - simulated) <= 0.15 * simulated, (modelled, simulated)
    assert stats["tiles_used"] > 64  # the planner's choice: 768 tiles, 192 per team
    assert stats["simulated_exchange_cycles"] == 0  # each team's rows live on its tiles
    # one single-worker vertex per team (the plan before teams were Maps) simulated 45,266
    # cycles on this kernel; the teams spread over their tile ranges take a fraction of that
    assert simulated < 1_000


@needs_gxx
def test_a_vertex_outside_its_virtual_graph_is_refused(program: Path, tmp_path: Path) -> None:
    from kernelc.runtime.ipu import runner

    artifact = tmp_path / "artifact"
    kc.build(program, "poplar", tiles=8).write(artifact)
    main = (artifact / "main.cpp").read_text()
    old = "Graph sub = graph.createVirtualGraph(2, 4);"
    assert old in main
    main = main.replace(old, "Graph sub = graph.createVirtualGraph(2, 3);")
    (artifact / "main.cpp").write_text(main)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "a.bin").write_bytes(np.zeros((64, 64), dtype=np.float32).tobytes())
    (tmp_path / "outputs").mkdir()
    with pytest.raises(KernelcError) as err:
        binary = runner.build(artifact)
        runner.run(binary, ["--inputs", str(inputs), "--outputs", "outputs"], tmp_path)
    assert "tile 1 is outside the virtual graph's 1 tiles (device tiles 2..2)" in err.value.message


UNEVEN = """\
#define N 34
#define M 20
void g(const float a[N][M], float b[N][M]) {
#pragma omp target teams distribute num_teams(4) map(to: a[0:N]) map(from: b[0:N])
  for (int i = 1; i < N - 1; i++)
    for (int j = 0; j < M; j++)
      b[i][j] = a[i - 1][j] + a[i + 1][j] - 2.0f * a[i][j];
}
"""


@pytest.mark.parametrize("target", ["interp", "cpu", "csl", "poplar"])
def test_uneven_stencil_teams_run_on_every_target(target: str, tmp_path: Path) -> None:
    """Teams of 9, 8, 8 and 8 rows of a stencil with halos: a Map per team where the target
    spreads it (poplar), scalar tasks where it does not (csl); never a crash."""
    if target == "poplar" and shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip("the IPU model compiles the emitted C++ with g++, which is not installed")
    path = tmp_path / "uneven.c"
    path.write_text(UNEVEN)
    graph = kc.load(path).graph(None, {})
    assert all(isinstance(t.form, Map) for t in graph.tasks)
    a = np.random.default_rng(5).random((34, 20), dtype=np.float32)
    want = interpret(graph, {"a": a})["b"]
    np.testing.assert_allclose(want[1:-1], a[:-2] + a[2:] - 2.0 * a[1:-1], rtol=1e-6)
    result = kc.run_with_stats(path, target, {"a": a})
    np.testing.assert_array_equal(result.outputs["b"], want)
    if target == "poplar":
        stats = result.stats
        modelled, simulated = stats["modelled_cycles"], stats["simulated_cycles"]
        assert abs(modelled - simulated) <= 0.15 * simulated, (modelled, simulated)


def test_groq_refuses_teams_naming_the_region(tmp_path: Path) -> None:
    path = tmp_path / "uneven.c"
    path.write_text(UNEVEN)
    with pytest.raises(kc.Unsupported) as err:
        kc.build(path, "groq")
    assert "the region b[1:9, 0:20] of 'b' passed to 'g_loop1'" in err.value.message
