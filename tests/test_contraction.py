"""Matrix products with a prologue or an epilogue (kernelc/forms/contraction.py) on csl and cpu.

cpu runs an epilogue after its packed GEMM, over the rows or columns each thread computed.

The dense layer of tests/conformance/dense.k, ``y = max(x @ w + b, 0)``, is one ``Contraction``
whose epilogue (bias, ReLU) csl applies on the PE holding each C block; it must match NumPy on
grids of several PEs (sizes that do not divide them included), model at least 4x fewer cycles
than the scalar fallback, and agree with the simulator within the cost model's bound.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kernelc as kc
from kernelc import inputs, ir
from kernelc.backends.cpu import machine as cpu_machine
from kernelc.backends.cpu.lower import lower as cpu_lower
from kernelc.backends.csl.cost import MODEL_BOUND, model
from kernelc.backends.csl.lower import lower
from kernelc.cli import compare
from kernelc.csl import machine
from kernelc.forms import Contraction
from kernelc.forms.contraction import OPERAND, PRODUCT

DENSE = Path(__file__).resolve().parent / "conformance" / "dense.k"
SUMS = 1e-5


def _dense_reference(x: dict) -> np.ndarray:
    y = x["x"].astype(np.float64) @ x["w"].astype(np.float64) + x["b"].astype(np.float64)
    return np.maximum(y, 0.0).astype(np.float32)


def _assert_close(got: np.ndarray, want: np.ndarray) -> None:
    verdict = compare(got, want, SUMS)
    assert verdict.bad is None, f"{verdict.count} elements differ, the worst {verdict.bad}"


def _form(source: str, **params) -> object:
    return kc.loads(source, params=params).graph().tasks[0].form


def test_dense_layer_is_one_contraction_with_an_epilogue() -> None:
    form = kc.load(DENSE).graph().tasks[0].form
    assert isinstance(form, Contraction)
    assert (form.a, form.b, form.c, form.m, form.n, form.k) == ("x", "w", "y", 6, 7, 10)
    assert form.prologue_a is None and form.prologue_b is None and not form.plain
    names = {n.name for n in ir.walk(form.epilogue) if isinstance(n, ir.Name)}
    loads = {n.tensor for n in ir.walk(form.epilogue) if isinstance(n, ir.Load)}
    assert PRODUCT in names and loads == {"b"}


def test_prologues_are_the_element_wise_work_on_each_operand() -> None:
    form = _form(
        """
        kernel pca(x: f32[4, 6], mean: f32[6], w: f16[6, 3]) -> z: f32[4, 3] {
          for r in 0 .. 4, c in 0 .. 3 {
            z[r, c] = sum(k in 0 .. 6) (x[r, k] - mean[k]) * f32(w[k, c]);
          }
        }
        """
    )
    assert isinstance(form, Contraction) and form.epilogue is None
    assert isinstance(form.prologue_a, ir.Binary) and form.prologue_a.op == "-"
    assert isinstance(form.prologue_b, ir.Cast) and form.prologue_b.operand.dtype.name == "F16"
    for prologue in (form.prologue_a, form.prologue_b):
        assert any(isinstance(n, ir.Name) and n.name == OPERAND for n in ir.walk(prologue))


@pytest.mark.parametrize(
    "value",
    [
        "(sum(k in 0 .. 6) x[r, k] * w[k, c]) + f32(r)",  # a loop index used as a value
        "(sum(k in 0 .. 6) x[r, k] * w[k, c]) + (sum(k in 0 .. 6) x[r, k])",  # two sums
        "sum(k in 0 .. 6) x[r, k] * w[k, c] * x[r, k]",  # not a product of two operands
    ],
)
def test_what_is_no_contraction(value: str) -> None:
    form = _form(
        f"""
        kernel k(x: f32[4, 6], w: f32[6, 4]) -> y: f32[4, 4] {{
          for r in 0 .. 4, c in 0 .. 4 {{ y[r, c] = {value}; }}
        }}
        """
    )
    assert not isinstance(form, Contraction)


CASES = [
    ({"R": 24, "I": 36, "O": 40}, (4, 4)),
    ({"R": 64, "I": 50, "O": 70}, (4, 4)),
    ({"R": 24, "I": 36, "O": 40}, (3, 5)),
    ({"R": 13, "I": 29, "O": 11}, (3, 2)),
    ({"R": 4, "I": 3000, "O": 5}, (4, 4)),  # tall-skinny: split-K, the epilogue on the corner
]


@pytest.mark.parametrize(("params", "grid"), CASES)
def test_dense_layer_runs_spread_over_the_grid(params: dict, grid) -> None:
    program = kc.load(DENSE, params=params)
    given = inputs.random_inputs(program.graph(), 3)
    result = kc.run_with_stats(program, "csl", given, grid=grid)
    _assert_close(result.outputs["y"], _dense_reference(given))
    modelled = result.stats["modelled_cycles"]
    simulated = result.stats["simulated_kernel_cycles"]
    assert abs(modelled - simulated) / simulated <= MODEL_BOUND
    art = kc.build(program, "csl", grid=grid)
    assert art.manifest["modelled_tasks"]["f_dense"] == modelled
    assert any("epilogue" in line for line in art.summary)


def test_dense_layer_models_far_fewer_cycles_than_the_scalar_fallback() -> None:
    program = kc.load(DENSE, params={"R": 24, "I": 36, "O": 40})
    graph = program.graph()
    spread = model(lower(graph, machine.WSE2, 4, 4)).cycles
    scalar = model(lower(graph, machine.WSE2, 1, 1, scalar=True)).cycles
    assert 4 * spread <= scalar


def test_epilogue_with_row_vectors_scales_and_min() -> None:
    source = """
    kernel k(x: f32[10, 7], w: f32[7, 9], s: f32[10], d: f32[10, 9]) -> y: f32[10, 9] {
      for r in 0 .. 10, c in 0 .. 9 {
        y[r, c] = min(2.0 - s[r] * (sum(k in 0 .. 7) x[r, k] * w[k, c]), 1.5) + d[r, c];
      }
    }
    """
    program = kc.loads(source)
    given = inputs.random_inputs(program.graph(), 5)
    x, w, s, d = (given[k].astype(np.float64) for k in ("x", "w", "s", "d"))
    want = (np.minimum(2.0 - s[:, None] * (x @ w), 1.5) + d).astype(np.float32)
    for target, options in (("csl", {"grid": (3, 2)}), ("cpu", {}), ("interp", {})):
        _assert_close(kc.run(program, target, given, **options)["y"], want)
    art = kc.build(program, "csl", grid=(3, 2))
    assert "@fnegs" in art.files["pe_k.csl"] and "@fsubs" in art.files["pe_k.csl"]


def test_centring_is_a_prologue_of_the_product_on_every_target() -> None:
    source = """
    kernel k(x: f32[9, 60], mean: f32[60], w: f32[60, 5]) -> z: f32[9, 5] {
      for r in 0 .. 9, c in 0 .. 5 { z[r, c] = sum(k in 0 .. 60) (x[r, k] - mean[k]) * w[k, c]; }
    }
    """
    program = kc.loads(source)
    given = inputs.random_inputs(program.graph(), 2)
    want = (given["x"].astype(np.float64) - given["mean"]) @ given["w"].astype(np.float64)
    for target, options in (("csl", {"grid": (4, 2)}), ("csl", {"grid": (2, 3)}), ("cpu", {})):
        _assert_close(kc.run(program, target, given, **options)["z"], want.astype(np.float32))
    art = kc.build(program, "csl", grid=(4, 2))
    assert "prologue of A" in art.files["pe_k.csl"] and "@fsubs" in art.files["pe_k.csl"]
    assert art.manifest["modelled_tasks"].keys() == {"f_k"}  # one spread task, no scalar steps


F16_CAST = DENSE.parent / "dense_f16_cast.k"


@pytest.mark.parametrize(("params", "grid"), CASES[:4])
def test_f16_operands_accumulate_in_f32_over_the_grid(params: dict, grid) -> None:
    program = kc.load(F16_CAST, params=params)
    given = inputs.random_inputs(program.graph(), 4)
    result = kc.run_with_stats(program, "csl", given, grid=grid)
    halves = {k: given[k].astype(np.float16) for k in ("x", "w")}
    _assert_close(result.outputs["y"], _dense_reference({**given, **halves}))
    modelled = result.stats["modelled_cycles"]
    simulated = result.stats["simulated_kernel_cycles"]
    assert abs(modelled - simulated) / simulated <= MODEL_BOUND
    pe = kc.build(program, "csl", grid=grid).files["pe_dense.csl"]
    assert "@fs2h" in pe and "@fh2s" in pe


def test_f16_operands_model_far_fewer_cycles_than_the_scalar_fallback() -> None:
    graph = kc.load(F16_CAST, params={"R": 24, "I": 36, "O": 40}).graph()
    spread = model(lower(graph, machine.WSE2, 4, 4)).cycles
    scalar = model(lower(graph, machine.WSE2, 1, 1, scalar=True)).cycles
    assert 4 * spread <= scalar


@pytest.mark.parametrize(
    ("params", "threads"),
    [
        ({"R": 24, "I": 36, "O": 40}, None),
        ({"R": 64, "I": 50, "O": 70}, 1),
        ({"R": 3, "I": 17, "O": 90}, 2),
    ],
)
def test_cpu_runs_the_epilogue_after_its_packed_gemm(params: dict, threads) -> None:
    program = kc.load(DENSE, params=params)
    graph = program.graph()
    plan = cpu_lower(graph, cpu_machine.host()).plans[0]
    assert plan.gemm is not None and plan.gemm.epilogue is not None
    given = inputs.random_inputs(graph, 6)
    options = {} if threads is None else {"threads": threads}
    _assert_close(kc.run(program, "cpu", given, **options)["y"], _dense_reference(given))
    _assert_close(kc.run(program, "interp", given)["y"], _dense_reference(given))


def test_cpu_takes_products_with_a_prologue_through_its_loop_lowering() -> None:
    graph = kc.load(F16_CAST, params={"R": 8, "I": 9, "O": 10}).graph()
    assert cpu_lower(graph, cpu_machine.host()).plans[0].gemm is None


MIXED = """
size M = 40, N = 48, K = 30;

kernel k(x: f32[M, K], w: f32[K, N], s: f32[K], v: f32[M], t: f32[N, K]) -> y: f32[M, N] {
  for r in 0 .. M, c in 0 .. N {
    y[r, c] = abs(-(v[r] * (sum(k in 0 .. K)
                              (x[r, k] * s[k] + 1.0) * f32(f16(w[k, c] - t[c, k])))));
  }
}
"""


@pytest.mark.parametrize(
    ("params", "grid"),
    [({}, (4, 2)), ({"M": 37, "N": 41, "K": 29}, (2, 3)), ({"M": 3, "N": 4, "K": 400}, (4, 4))],
)
def test_prologues_on_both_operands_and_an_epilogue(params: dict, grid) -> None:
    """Vectors along k on both operands (B's held in SUMMA's slots), a transposed matrix, an
    f16 rounding, a row vector and negation in the epilogue: SUMMA and split-K."""
    program = kc.loads(MIXED, params=params)
    given = inputs.random_inputs(program.graph(), 7)
    x, w, s, v, t = (given[n].astype(np.float64) for n in "xwsvt")
    b16 = (given["w"] - given["t"].T).astype(np.float16).astype(np.float64)
    want = np.abs(v[:, None] * ((x * s + 1.0) @ b16)).astype(np.float32)
    result = kc.run_with_stats(program, "csl", given, grid=grid)
    _assert_close(result.outputs["y"], want)
    modelled = result.stats["modelled_cycles"]
    simulated = result.stats["simulated_kernel_cycles"]
    assert abs(modelled - simulated) / simulated <= MODEL_BOUND
    _assert_close(kc.run(program, "cpu", given)["y"], want)
