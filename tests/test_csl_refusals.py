"""The csl lowerings say "not this task" (``Refusal``) and "not this grid" (``Misfit``) as values:
the placement policy tries the next grid or the scalar tasks, and only what no option can do is
raised, once, with the message users see."""

from __future__ import annotations

import numpy as np
import pytest

import kernelc as kc
from kernelc import ir
from kernelc.backends.csl import lower, policy
from kernelc.backends.csl.builder import Builder
from kernelc.backends.csl.constants import constant_scalars
from kernelc.backends.csl.lowered import Lowered, Misfit, Refusal
from kernelc.backends.csl.pointwise import element_ops
from kernelc.csl import machine
from kernelc.diagnostics import Span
from kernelc.types import DType

STENCIL = (
    "kernel k(a: f32[N, N]) -> b: f32[N, N] {\n"
    "  for i in 2 .. N - 2, j in 2 .. N - 2 { b[i, j] = a[i - 2, j] + a[i + 2, j]; }\n}"
)
TRANSPOSE = (
    "kernel k(a: f32[N, N]) -> b: f32[N, N] {\n"
    "  for i in 0 .. N, j in 0 .. N { b[i, j] = a[i, j] - a[j, i]; }\n}"
)
INTEGER = (
    "kernel k(a: i32[N, N]) -> b: i32[N, N] {\n"
    "  for i in 0 .. N, j in 0 .. N { b[i, j] = a[i, j] * 3; }\n}"
)
UNSET = "kernel k(a: f32[N], s: f32) -> b: f32[N] { for i in 0 .. N { b[i] = a[i] * s; } }"


def _graph(source: str, n: int = 8):
    return kc.loads(source, "t.k", params={"N": n}).graph()


def test_a_tensor_wanted_in_two_placements_is_a_refusal_of_the_plan() -> None:
    got = lower.plan(_graph(TRANSPOSE), 2, 2)
    assert isinstance(got, Refusal)
    assert "'a' is needed in two different placements" in got.reason
    assert got.span.line == 2


def test_what_code_generation_cannot_express_comes_back_from_lower() -> None:
    got = lower.lower(_graph(INTEGER), machine.WSE2, 2, 2)
    assert isinstance(got, Refusal)
    assert got.reason == "the csl backend vectorises k over f32/f16 only; its outputs are i32"


def test_a_refused_graph_runs_as_scalar_tasks_and_keeps_the_reason() -> None:
    program = kc.loads(INTEGER, "t.k", params={"N": 8})
    artifact = kc.build(program, "csl", grid="min")
    assert "fn f_step0()" in artifact.files["pe_k.csl"]
    assert artifact.manifest["grid"] == [1, 1]


def test_blocks_thinner_than_the_halo_are_a_misfit_another_grid_avoids() -> None:
    graph = _graph(STENCIL, n=12)
    got = lower.lower(graph, machine.WSE2, 1, 12)
    assert isinstance(got, Misfit)
    assert (
        got.reason
        == "'a' blocks of 1 along y are thinner than its halo of 2; use fewer PEs along y"
    )
    assert isinstance(lower.lower(graph, machine.WSE2, 1, 4), Lowered)
    placed = policy.fastest(graph, machine.WSE2)
    assert isinstance(placed, policy.Placement)
    assert 12 // placed.lowered.height >= 2  # every block at least as tall as the halo


def test_a_misfit_on_the_grid_the_user_gave_is_the_error() -> None:
    program = kc.loads(STENCIL, "t.k", params={"N": 12})
    with pytest.raises(kc.KernelcError, match="thinner than its halo of 2; use fewer PEs along y"):
        kc.build(program, "csl", grid="1x12")


KEYLESS_LOOKUP = (
    "kernel k(a: f32[8]) -> o: f32[8] {\n"
    "  for i in 0 .. 8 { var v: bool = true; o[i] += f32(i32(!(!(v)))) + a[i]; }\n}"
)


@pytest.mark.parametrize("grid", ["2x2", "3x5"])
def test_a_grid_whose_columns_the_lowering_cannot_use_runs_scalar_tasks(grid: str) -> None:
    """A lookup without a key table has nothing to split over columns: whatever the sizes, a
    grid of two or more columns is a Misfit of its shape. The searches skip it; on a grid the
    user gave, the graph runs as scalar tasks on that grid (the fuzzer's csl@2x2 and csl@3x5
    got the error "no table indexed by a key to split over 2 columns" instead)."""
    graph = kc.loads(KEYLESS_LOOKUP, "t.k").graph()
    width, height = map(int, grid.split("x"))
    got = lower.lower(graph, machine.WSE2, width, height)
    assert isinstance(got, Misfit) and got.shape
    assert got.reason.startswith("'k' has no table indexed by a key to split over")
    assert isinstance(lower.lower(graph, machine.WSE2, 1, height), Lowered)
    program = kc.loads(KEYLESS_LOOKUP, "t.k")
    artifact = kc.build(program, "csl", grid=grid)
    assert artifact.manifest["grid"] == [width, height]
    assert "fn f_step0()" in artifact.files["pe_k.csl"]
    a = np.linspace(-2.0, 2.0, 8, dtype=np.float32)
    got_o = kc.run(program, "csl", {"a": a}, grid=grid)["o"]
    np.testing.assert_array_equal(got_o, kc.run(program, "interp", {"a": a})["o"])
    assert np.array_equal(got_o, a + np.float32(1.0))


def test_a_scalar_without_a_value_is_a_refusal_then_the_error() -> None:
    graph = _graph(UNSET)
    got = constant_scalars(graph)
    assert isinstance(got, Refusal)
    assert got.reason == (
        "the csl backend takes scalar parameters at build time; give 's' a value with -D s=VALUE"
    )
    with pytest.raises(kc.Unsupported, match="give 's' a value with -D s=VALUE") as err:
        kc.build(kc.loads(UNSET, "t.k", params={"N": 8}), "csl")
    assert err.value.notes == []  # both options refuse for one reason: said once


def test_epilogue_work_without_a_dsd_operation_is_a_refusal() -> None:
    span = Span("t.k", 3, 5)
    x = ir.Name(name="%p", span=span, dtype=DType.F32)
    c = ir.Load(
        tensor="c",
        indices=(ir.Name(name="i", span=span, dtype=DType.I32),),
        span=span,
        dtype=DType.F32,
    )
    e = ir.Intrinsic(fn="min", args=(x, c), span=span, dtype=DType.F32)
    got = element_ops(e, "%p", {"i": 0, "j": 1}, "epilogue", "mm")
    assert got == Refusal(
        "'mm': the csl backend does not lower min with a tensor in a matrix product's epilogue",
        span,
    )
    e = ir.Intrinsic(fn="max", args=(x, c), span=span, dtype=DType.F32)
    (op,) = element_ops(e, "%p", {"i": 0, "j": 1}, "epilogue", "mm")
    assert op.builtin == "fmaxs" and op.operand.param == "c"


def test_the_builder_keeps_the_first_verdict() -> None:
    b = Builder(machine.WSE2, 1, 1, "pe.csl")
    first = Span("t.k", 1, 1)
    assert b.refuse("first", first) == Refusal("first", first)
    assert b.misfit("second", Span("t.k", 2, 1)) == Refusal("first", first)
    assert b.refused == Refusal("first", first)
