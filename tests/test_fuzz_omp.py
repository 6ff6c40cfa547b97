"""Differential fuzzing of the C frontend (issue 14, item 3): random OpenMP C programs
(tests/fuzz/omp.py) compiled by gcc -fopenmp and run are the reference; the interpreter and every
registered target must give the same outputs (bit for bit, except float outputs of programs whose
float products OpenMP may reorder or that call expf/logf, held to kernelc/tolerance.py's rule).
A target may refuse a program with kc.Unsupported; it may not raise anything else or differ, and
the C frontend may not reject the program. A failure prints the shrunk program as a complete C
file (the kernel, and a main() that fills the inputs and prints the outputs).

CI runs a fixed (derandomized) sample of 40 programs on the interpreter and the fast targets
and 4 on csl (with its variants), about 20 s; KERNELC_SLOW=1 runs five times as many and
poplar's share (g++ per program); ``KERNELC_HYPOTHESIS=thorough`` twelve times as many again.
benchmarks/fuzz.py --c N runs more.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from fuzz import differential, known_bugs
from fuzz.omp import Array, Generated, programs
from hypothesis import HealthCheck, given, settings
from omp_gcc import compiler, run_c

import kernelc as kc

needs_cc = pytest.mark.skipif(compiler() is None, reason="no C compiler with OpenMP")

SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
SCALE = 5 if os.environ.get("KERNELC_SLOW") == "1" else 1
FAST_COUNT = settings.default.max_examples * 8 // 5 * SCALE
SIMULATED_COUNT = max(settings.default.max_examples // 6, 3) * SCALE
FAST = differential.configurations(simulated=False)
SIMULATED = sorted({target for _, target, _ in differential.configurations(simulated=True)})


def _assert_agrees(generated: Generated, configs) -> None:
    outcome = differential.check(generated, configs, "fuzz.c", generated.run_gcc())
    if outcome.findings:
        pytest.fail(differential.report(generated, outcome), pytrace=False)


@needs_cc
@settings(max_examples=FAST_COUNT, suppress_health_check=SUPPRESS)
@given(programs(avoid=known_bugs.avoid_c(label for label, _, _ in FAST)))
def test_random_c_programs_agree_with_gcc_on_the_fast_targets(generated: Generated) -> None:
    _assert_agrees(generated, FAST)


@needs_cc
@pytest.mark.parametrize(
    "target", [pytest.param(t, marks=pytest.mark.slow) if t == "poplar" else t for t in SIMULATED]
)
def test_random_c_programs_agree_with_gcc_on_the_simulated_targets(target: str) -> None:
    configs = [c for c in differential.configurations(simulated=True) if c[1] == target]

    @settings(max_examples=SIMULATED_COUNT, suppress_health_check=SUPPRESS)
    @given(programs(avoid=known_bugs.avoid_c(label for label, _, _ in configs)))
    def run(generated: Generated) -> None:
        _assert_agrees(generated, configs)

    run()


TINY = Generated(
    source="""#define N 3
void tiny(const float a[N], int b[N], float r[1], float x[N]) {
#pragma omp target map(to: a[0:N]) map(from: b[0:N], r[0:1]) map(tofrom: x[0:N])
  {
    float s = 0.0f;
#pragma omp parallel for reduction(+: s)
    for (int i = 0; i < N; i++) {
      b[i] = (int)fminf(fmaxf(a[i] * 4.0f, -100.0f), 100.0f);
      s += a[i];
    }
    r[0] = s;
#pragma omp parallel for
    for (int i = 0; i < N; i++) x[i] *= 2.0f;
  }
}
""",
    entry="tiny",
    order=("a", "b", "r", "x"),
    sizes=(("N", 3),),
    arrays=(
        Array("a", "float", ("N",), "in"),
        Array("b", "int", ("N",), "out"),
        Array("r", "float", ("1",), "out"),
        Array("x", "float", ("N",), "inout", dyadic=False),
    ),
    scalars=(),
    seed=7,
    reordered=False,
)


@needs_cc
def test_the_harness_feeds_gcc_the_inputs_kernelc_gets() -> None:
    """The harness's main() holds the drawn inputs as initialisers (NaN and infinities among
    them) and prints the outputs exactly: gcc's outputs follow from the same arrays."""
    inputs = TINY.draw_inputs()
    assert set(inputs) == {"a", "x"}
    got = TINY.run_gcc()
    a, x = inputs["a"], inputs["x"]
    with np.errstate(invalid="ignore"):
        clamped = np.fmin(np.fmax(a * np.float32(4), np.float32(-100)), np.float32(100))
    np.testing.assert_array_equal(got["b"], np.trunc(clamped).astype(np.int32))
    np.testing.assert_array_equal(got["x_out"], x * np.float32(2))
    assert got["r"].dtype == np.float32 and got["r"].shape == (1,)
    np.testing.assert_array_equal(got["r"], [np.sum(a, dtype=np.float32)])


@needs_cc
def test_a_disagreement_is_reported_with_the_c_program() -> None:
    """The check finds a wrong reference value and reports it with the complete C program."""
    reference = TINY.run_gcc()
    reference["b"] = reference["b"] + 1
    outcome = differential.check(TINY, [], "fuzz.c", reference)
    assert [(f.kind, f.target) for f in outcome.findings] == [("disagreement", "interp")]
    assert "gcc -fopenmp gives" in outcome.findings[0].message
    text = differential.report(TINY, outcome)
    assert "int main(void) {" in text and "tiny(a, b, r, x);" in text


SCALED = """#define N 5
void scaled(const float a[N], float o[N], float s) {
#pragma omp target map(to: a[0:N]) map(from: o[0:N])
#pragma omp parallel for
  for (int i = 0; i < N; i++) o[i] = a[i] * s;
}
"""


@pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++")) is None, reason="the IPU model needs g++"
)
@pytest.mark.parametrize("tiles", [None, 3])
def test_a_scalar_parameter_of_a_data_parallel_loop_runs_on_poplar(tiles) -> None:
    """Found by the C fuzzer: poplar's lowering looked a scalar read by a Map task up in the
    task's tile mappings (tensors only) and crashed with KeyError; the scalar now stays on its
    tile and Poplar's exchange brings it to the vertices' tiles."""
    program = kc.loads(SCALED, "scaled.c")
    a = np.array([1.5, -2.0, 0.25, 3.0, -0.5], dtype=np.float32)
    options = {} if tiles is None else {"tiles": tiles}
    got = kc.run(program, "poplar", {"a": a, "s": np.float32(-2.5)}, **options)
    np.testing.assert_array_equal(got["o"], a * np.float32(-2.5))


BRANCHES = """#define N 5
void branches(const float a[N], float o[N]) {
#pragma omp target map(to: a[0:N]) map(from: o[0:N])
#pragma omp parallel for
  for (int i = 0; i < N; i++) {
    if (a[i] > 0.0f) o[i] = a[i]; else WRITE
    o[i] += 1.0f;
  }
}
"""


@needs_cc
def test_an_element_written_in_both_branches_may_be_read_after_them(tmp_path) -> None:
    """Found while writing the C generator: the check for reads of undefined data forgot what
    an if/else wrote in both branches, and refused this valid program."""
    source = tmp_path / "branches.c"
    source.write_text(BRANCHES.replace("WRITE", "o[i] = -a[i];"))
    program = kc.load(source)
    a = np.array([1.5, -2.0, 0.0, -0.5, np.nan], dtype=np.float32)
    want = np.where(a > 0, a, -a) + np.float32(1)
    graph = program.graph()
    np.testing.assert_array_equal(run_c(source, graph, {"a": a}, {}, tmp_path / "c")["o"], want)
    for target in ("interp", "cpu"):
        np.testing.assert_array_equal(kc.run(program, target, {"a": a})["o"], want)


def test_an_element_written_in_one_branch_is_still_undefined_after_it() -> None:
    with pytest.raises(kc.KernelcError, match="no earlier task writes all of it") as err:
        kc.loads(BRANCHES.replace("WRITE", "{}"), "branches.c").graph()
    assert err.value.span.line == 7


REVERSED_GUARD = """#define N 4
void k(const int a[N], int o[N]) {
#pragma omp target map(to: a[0:N]) map(from: o[0:N])
#pragma omp parallel for
  for (int i = 0; i < N; i++) {
    o[i] = 0;
    for (int k = N - 1; k >= 0; k--) {
      if (k > 0) {
        o[i] += a[k - 1];
      }
    }
    for (int k = 1; k < N + 1; k += 3) {
      if (k + 2 < N) {
        o[i] -= a[k + 2] * 2;
      }
    }
  }
}
"""
GUARDED_TASKS = """#define NB 3
#define BS 5
void k(int x[NB * BS]) {
#pragma omp target map(tofrom: x[0:NB * BS])
#pragma omp parallel num_threads(2)
#pragma omp single
  {
    for (int b = 0; b < NB; b++) {
#pragma omp task depend(inout: x[b * BS:BS])
      {
        for (int k = BS - 1; k >= 0; k--)
          if (k > 0)
            x[b * BS + k - 1] += x[b * BS + k];
        for (int k = 0; k < BS; k += 2)
          if (k < BS - 1)
            x[b * BS + k + 1] *= 3;
      }
    }
  }
}
"""


@needs_cc
@pytest.mark.parametrize("source", [REVERSED_GUARD, GUARDED_TASKS], ids=["loop", "tasks"])
def test_a_guard_on_a_reversed_or_strided_loop_index_narrows_what_it_guards(
    source: str, tmp_path
) -> None:
    """Found by the C fuzzer (7 of 979 random programs on csl, 2026-12-05): such a loop is
    counted by trips (``k = N - 1 - k_trip``), and a guard on ``k`` did not narrow the trip
    count, so these valid programs were refused as reaching outside an array (``a[-1]``) or a
    depend section. The generator draws these guards again (tests/fuzz/omp.py, ``_Body._if``)."""
    path = tmp_path / "guard.c"
    path.write_text(source)
    program = kc.load(path)
    graph = program.graph()
    rng = np.random.default_rng(3)
    inputs = {t.name: rng.integers(-9, 9, t.shape).astype(np.int32) for t in graph.inputs}
    want = run_c(path, graph, inputs, {}, tmp_path / "c")
    for target in ("interp", "cpu"):
        got = kc.run(program, target, inputs)
        for name, value in want.items():
            np.testing.assert_array_equal(got[name], value, err_msg=f"{target}: {name}")


def test_a_guard_too_weak_for_a_reversed_loop_access_is_still_refused() -> None:
    source = REVERSED_GUARD.replace("if (k > 0)", "if (k >= 0)")
    with pytest.raises(kc.KernelcError) as err:
        kc.loads(source, "fuzz.c").graph()
    assert "index N - k_trip - 2 of 'a' (dimension 0) reaches -1 when k_trip = 3" in str(err.value)
    assert err.value.span.line == 9
