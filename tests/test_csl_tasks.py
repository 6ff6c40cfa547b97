"""Task-parallel graphs on the csl target (backends/csl/tasks.py): every task instance as scalar
CSL on a PE of its own, one launch per step, the host gathering what each PE wrote."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernelc as kc
from kernelc.backends.csl.cost import SCALAR_BOUND
from kernelc.cli import main

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = ROOT / "examples" / "omp" / "pipeline.c"

# Two steps whose second step reads, on other PEs, what the first wrote: t's halves are written
# by two PEs, then each half is read by the PE that did not write it. The second step also writes
# only part of its region (odd elements), so the gathered tensor must keep the rest.
CHAIN = """
size N = 7;

kernel scale(v: f32[N], k: f32) -> w: f32[N] {
  var acc: f32 = 0.0;
  for i in 0 .. N {
    acc = acc * 0.5 + v[i] * k;
    w[i] = acc;
  }
}

kernel odd_prefix(v: f32[N]) -> s: f32[N] {
  var acc: f32 = 0.0;
  for i in 0 .. N {
    acc += v[(i + 3) % N];
    if i % 2 == 1 {
      s[i] = acc;
    }
  }
}

graph chain(x: f32[2 * N]) -> y: f32[2 * N] {
  let t: f32[2 * N];
  t[0:N] = scale(x[0:N], 2.0);
  t[N:2 * N] = scale(x[N:2 * N], 3.0);
  y[0:N] = odd_prefix(t[N:2 * N]);
  y[N:2 * N] = odd_prefix(t[0:N]);
}
"""


def _pipeline_inputs(seed: int = 1) -> dict[str, np.ndarray]:
    return {"v1": np.random.default_rng(seed).standard_normal(64).astype(np.float32)}


def test_pipeline_runs_one_step_of_eight_instances_on_eight_pes() -> None:
    program = kc.load(PIPELINE)
    art = kc.build(program, "csl")
    pe = art.files["pe_pipeline.csl"]
    assert art.manifest["grid"] == [8, 1]
    # two kernels, one function each, called by eight instances from one launched step
    assert pe.count("fn t_pipeline_task") == 2
    assert pe.count("t_pipeline_task1(") == 1 + 4 and pe.count("t_pipeline_task2(") == 1 + 4
    assert "fn f_step0()" in pe and "fn f_step1()" not in pe
    assert "if (slot == 7)" in pe
    result = kc.run_with_stats(program, "csl", _pipeline_inputs())
    want = kc.interpret(program, _pipeline_inputs())
    for name, value in want.items():
        np.testing.assert_array_equal(result.outputs[name], value, err_msg=name)
    assert result.stats["grid"] == "8x1"


def test_emitted_run_py_gathers_and_checks_against_numpy(tmp_path: Path) -> None:
    art = kc.build(kc.load(PIPELINE), "csl")
    folder = art.write(tmp_path / "pipeline")
    run_py = (folder / "run.py").read_text()
    assert "GATHER = {" in run_py and '"f_step0"' in run_py
    env_path = f"{Path(sys.executable).parent}"
    done = subprocess.run(
        ["bash", str(folder / "commands.sh")],
        capture_output=True,
        text=True,
        env={"PATH": env_path + ":/usr/bin:/bin"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "SUCCESS: outputs match the NumPy reference" in done.stdout


@settings(deadline=None, max_examples=10)
@given(
    n=st.integers(1, 9),
    grid=st.sampled_from([None, (1, 1), (2, 1), (1, 3)]),
    seed=st.integers(0, 2**16),
)
def test_steps_that_read_other_pes_writes_match_the_interpreter(n, grid, seed) -> None:
    program = kc.loads(CHAIN, "chain.k", params={"N": n})
    x = np.random.default_rng(seed).uniform(-1, 1, 2 * n).astype(np.float32)
    options = {} if grid is None else {"grid": grid}
    got = kc.run(program, "csl", {"x": x}, **options)["y"]
    np.testing.assert_array_equal(got, kc.interpret(program, {"x": x})["y"])


def test_a_tensor_a_later_step_reads_is_sent_back_to_every_pe() -> None:
    art = kc.build(kc.loads(CHAIN, "chain.k"), "csl")
    run_py = art.files["run.py"]
    assert 'RESEND = {\n "f_step0": [\n  "t"\n ]\n}' in run_py
    assert art.manifest["grid"] == [2, 1]


def test_more_tasks_than_pes_take_turns() -> None:
    program = kc.load(PIPELINE)
    pe = kc.build(program, "csl", grid=(3, 1)).files["pe_pipeline.csl"]
    assert "if (slot == 2)" in pe and "if (slot == 3)" not in pe
    got = kc.run(program, "csl", _pipeline_inputs(5), grid=(3, 1))
    want = kc.interpret(program, _pipeline_inputs(5))
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_scalar_parameters_are_build_time_values(capsys) -> None:
    program = kc.loads(CHAIN, "chain.k", params={"N": 4})
    x = np.linspace(-1, 1, 8, dtype=np.float32)
    pe = kc.build(program, "csl").files["pe_chain.csl"]
    # each instance passes its regions' offsets and its k to the kernel's one function
    assert "t_scale(0, 2.0, 0);" in pe and "t_scale(4, 3.0, 4);" in pe
    np.testing.assert_array_equal(
        kc.run(program, "csl", {"x": x})["y"], kc.interpret(program, {"x": x})["y"]
    )


def test_modelled_cycles_are_near_the_simulated_ones() -> None:
    for program, inputs in (
        (kc.load(PIPELINE), _pipeline_inputs()),
        (kc.loads(CHAIN, "chain.k"), {"x": np.ones(14, np.float32)}),
    ):
        stats = kc.run_with_stats(program, "csl", inputs).stats
        simulated = stats["simulated_kernel_cycles"]
        assert abs(stats["modelled_cycles"] - simulated) <= SCALAR_BOUND * simulated, stats


def test_tensors_too_big_for_one_pe_are_a_located_error(tmp_path: Path, capsys) -> None:
    source = tmp_path / "big.k"
    source.write_text(CHAIN.replace("size N = 7;", "size N = 9000;"))
    assert main(["build", str(source), "--target", "csl", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "runs on csl as scalar tasks ('scale' is no data-parallel loop nest" in err
    assert "bytes per PE (216,000 of tensors, the rest modelled code), more than the 49,152" in err
    assert err.startswith(f"{source}:") and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["pipeline_task1", "pipeline_task2"])
def test_each_instance_is_commented_with_its_regions(name: str) -> None:
    pe = kc.build(kc.load(PIPELINE), "csl").files["pe_pipeline.csl"]
    assert f"// task {name}_0: reads v1[0:16]; writes " in pe or name == "pipeline_task2"
    assert "// task pipeline_task2_7: reads v1[48:64]; writes peaks[3:4]" in pe


SCALED = (
    "kernel k(a: f32[N], s: f32{default}) -> b: f32[N] {{ for i in 0 .. N {{ b[i] = a[i] * s; }} }}"
)


def test_data_parallel_kernels_take_scalar_parameters_as_build_time_values() -> None:
    program = kc.loads(SCALED.format(default=" = 2.0"), "t.k", params={"N": 10, "s": 3.0})
    a = np.arange(10, dtype=np.float32)
    art = kc.build(program, "csl", grid=(2, 1))
    assert "@fmuls" in art.files["pe_k.csl"]  # still a vectorised map, the constant folded in
    np.testing.assert_array_equal(kc.run(program, "csl", {"a": a}, grid=(2, 1))["b"], a * 3)


def test_a_run_builds_for_the_scalar_values_it_is_given() -> None:
    program = kc.loads(SCALED.format(default=""), "t.k", params={"N": 4})
    a = np.arange(4, dtype=np.float32)
    with pytest.raises(
        kc.Unsupported, match="scalar parameters at build time; give 's' a value"
    ) as refused:
        kc.build(program, "csl")  # no value at build time
    assert refused.value.notes == []  # the scalar-task retry refused for the same reason: no echo
    for s in (2.0, -0.5):
        got = kc.run(program, "csl", {"a": a, "s": np.float32(s)})["b"]
        np.testing.assert_array_equal(got, a * np.float32(s))


KEPT = """
size N = 3;
kernel rec(v: f32[N]) -> w: f32[N] {
  var acc: f32 = 0.0;
  for i in 0 .. N { acc = acc * 0.5 + v[i]; w[i] = acc; }
}
graph g(x: f32[N, N]) -> y: f32[2, N] {
  y[0, :] = rec(x[0, :]);
  y[1, :] = rec(x[:, 1]);
}
"""


def test_a_row_and_a_column_of_one_shape_get_their_own_strides() -> None:
    program = kc.loads(KEPT, "t.k")
    x = np.arange(9, dtype=np.float32).reshape(3, 3)
    got = kc.run(program, "csl", {"x": x})["y"]
    np.testing.assert_array_equal(got, kc.interpret(program, {"x": x})["y"])
    assert kc.build(program, "csl").files["pe_g.csl"].count("fn t_rec") == 2


def test_a_gather_from_an_empty_region_reads_zero(tmp_path: Path) -> None:
    text = """
    kernel k(v: f32[M], ix: i32[1]) -> w: f32[1] {
      var a: f32 = 1.0;
      for r in 0 .. 2 { a = a * 0.5 + v[ix[0]]; }
      w[0] = a;
    }
    graph g(x: f32[4], ix: i32[1]) -> y: f32[1] { y = k(x[2:2], ix); }
    """
    program = kc.loads(text, "t.k")
    inputs = {"x": np.arange(1, 5, dtype=np.float32), "ix": np.zeros(1, np.int32)}
    assert kc.run(program, "csl", inputs)["y"].tolist() == [0.25]
    folder = kc.build(program, "csl").write(tmp_path / "g")
    done = subprocess.run(
        ["bash", str(folder / "commands.sh")],
        capture_output=True,
        text=True,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"},
        timeout=120,
    )
    assert "SUCCESS" in done.stdout, done.stdout + done.stderr


def test_local_names_that_are_csl_words_are_renamed() -> None:
    text = """
    kernel rec(v: f32[N]) -> w: f32[N] {
      var type: f32 = 0.0;
      for task in 0 .. N { let fn = v[task]; type = type * 0.5 + fn; w[task] = type; }
    }
    graph g(x: f32[N]) -> nullity: f32[N] { nullity = rec(x); }
    """
    program = kc.loads(text, "t.k", params={"N": 4})
    pe = kc.build(program, "csl").files["pe_g.csl"]
    assert "const fn:" not in pe and "var type:" not in pe and "|task|" not in pe
    x = np.arange(4, dtype=np.float32)
    # an output whose name holds 'null' keeps it in run.py's tables
    got = kc.run(program, "csl", {"x": x})["nullity"]
    np.testing.assert_array_equal(got, kc.interpret(program, {"x": x})["nullity"])


def test_a_data_dependent_sum_is_modelled_from_the_extent_it_walks() -> None:
    text = """
    kernel k1(v: f32[N], n: i32[1]) -> w: f32[1] {
      var a: f32 = 0.0;
      for r in 0 .. 4 { a = a * 0.5 + sum(k in 0 .. n[0]) v[k]; }
      w[0] = a;
    }
    """
    program = kc.loads(text, "t.k", params={"N": 256})
    inputs = {"v": np.ones(256, np.float32), "n": np.array([128], np.int32)}
    stats = kc.run_with_stats(program, "csl", inputs).stats
    simulated = stats["simulated_kernel_cycles"]
    assert abs(stats["modelled_cycles"] - simulated) <= SCALAR_BOUND * simulated, stats


FALLBACKS = {
    # a loop index used as a value: no DSD form holds it
    "index as value": (
        "kernel k(a: f32[N]) -> b: f32[N] {\n  for i in 0 .. N { b[i] = a[i] + f32(i); }\n}"
    ),
    # a 1-D stencil: its halo would run along the all-PE axis
    "1-D stencil": (
        "kernel k(a: f32[N]) -> b: f32[N] {\n"
        "  for i in 1 .. N - 1 { b[i] = a[i - 1] + a[i + 1]; }\n}"
    ),
    # one task reading a matrix and its transpose: two placements of one tensor
    "transpose": (
        "kernel k(a: f32[N, N]) -> b: f32[N, N] {\n"
        "  for i in 0 .. N, j in 0 .. N { b[i, j] = a[i, j] - a[j, i]; }\n}"
    ),
}


@pytest.mark.parametrize("name", sorted(FALLBACKS))
def test_what_the_data_parallel_lowerings_refuse_runs_as_scalar_tasks(name: str) -> None:
    program = kc.loads(FALLBACKS[name], "t.k", params={"N": 6})
    (param,) = [p for p in program.graph().tensors if p.role == "input"]
    a = np.random.default_rng(2).uniform(-1, 1, param.shape).astype(np.float32)
    pe = kc.build(program, "csl").files["pe_k.csl"]
    assert "fn f_step0()" in pe  # the scalar task form
    got = kc.run(program, "csl", {"a": a})["b"]
    np.testing.assert_array_equal(got, kc.interpret(program, {"a": a})["b"])


def test_a_refused_graph_too_big_for_scalar_tasks_says_both_reasons(tmp_path: Path, capsys) -> None:
    source = tmp_path / "big.k"
    source.write_text(FALLBACKS["index as value"])
    assert main(["build", str(source), "--target", "csl", "-D", "N=20000"]) == 2
    err = capsys.readouterr().err
    assert "runs on csl as scalar tasks (the data-parallel lowerings refused it:" in err
    assert "note: the data-parallel lowering: the csl data-parallel lowering has no value" in err


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_a_non_finite_build_time_scalar_is_passed_as_its_bit_pattern(tmp_path, value) -> None:
    """A task instance's scalar argument of inf or NaN (-D s=inf): CSL has no literal for it, so
    it is bitcast from its bits; it was a Python ValueError from the printer."""
    source = tmp_path / "fill.k"
    source.write_text(
        "size N = 8;\nkernel fill(a: f32[N], s: f32) -> o: f32[N] {\n"
        "  for i in 0 .. N { o[i] = s; }\n}\n"
    )
    out = tmp_path / "fill"
    assert main(["build", str(source), "--target", "csl", "-D", f"s={value}", "-o", str(out)]) == 0
    assert "@bitcast(f32, @as(u32, " in "".join(p.read_text() for p in out.glob("*.csl"))
    program = kc.load(source, params={"s": float(value)})
    got = kc.run(program, "csl", {"a": np.zeros(8, np.float32)})["o"]
    np.testing.assert_array_equal(got, np.full(8, float(value), np.float32))


def test_integer_arithmetic_on_literals_wraps_as_the_kernel_does(tmp_path) -> None:
    """``1 << 31`` on literals (or ``1 + 2147483647`` once a loop index is substituted): CSL
    evaluates them at compile time in unbounded precision, so the emitter folds them with i32
    wrapping (found by the DSL fuzzer: "expected type 'i32', found 'comptime_int'")."""
    source = tmp_path / "wrap.k"
    source.write_text(
        "size N = 4;\nkernel k(a: i32[N]) -> o: i32[N] {\n  var acc: i32 = 0;\n"
        "  for i in 0 .. N {\n    acc = acc + a[i];\n"
        "    o[i] = acc + (2147483647 + i) + (1 << 31);\n  }\n}\n"
    )
    program = kc.load(source)
    a = np.array([5, -7, 2147483647, 3], np.int32)
    want = kc.run(program, "interp", {"a": a})["o"]
    np.testing.assert_array_equal(kc.run(program, "csl", {"a": a})["o"], want)
    text = "".join(
        p.read_text() for p in kc.build(program, "csl").write(tmp_path / "o").glob("*.csl")
    )
    assert "(1 << (31 & 31))" not in text and "-2147483648" in text


FUZZ_FOUND = {
    # a literal branch of a select on a literal condition: CSL types it comptime_int, so
    # 1 + 2147483647 did not fit i32; the emitter now takes the branch the condition picks
    "literal_select": """
size N = 4;
kernel k(a: i32[N]) -> o: i32[N] {
  for i in 0 .. N { o[i] = a[min(1 + select(true, 2147483647, a[0]), 3)] + select(false, 1, 2); }
}
""",
    # an item-wise accumulation into an i32 output: the lookup lowering adds partial sums with
    # reduce_fadds (f32 only) and passed it an i32 array; it now declines (scalar tasks)
    "i32_accumulation": """
size M = 3;
kernel k(a: i32[M]) -> o: i32[M] {
  for i in 0 .. M {
    var v: bool = true;
    o[i] += i32(!(!(v))) + a[i];
  }
}
""",
    # negation and complement of literals: -(~2147483647) is 2147483648 in CSL's unbounded
    # literal arithmetic ("incompatible types: 'i32' and 'comptime_int'"; 2,300 random programs
    # on csl, 2026-12-05), and ~ of a u32 literal is negative; both now fold with wrapping
    "literal_negation": """
size N = 4;
kernel k(a: i32[N]) -> o: i32[N] {
  var v: i32 = a[0];
  v += -(~(0x7fffffff));
  for i in 0 .. N { o[i] = v + a[i] + -(-(3)) + i32(~(u32(1)) >> 28); }
}
""",
}


@pytest.mark.parametrize("grid", [None, (2, 2)])
@pytest.mark.parametrize("name", sorted(FUZZ_FOUND))
def test_fuzz_found_programs_run_as_the_interpreter_does(tmp_path, name, grid) -> None:
    source = tmp_path / f"{name}.k"
    source.write_text(FUZZ_FOUND[name])
    program = kc.load(source)
    inputs = {"a": np.array([5, -7, 2147483647, 3][: program.graph().inputs[0].shape[0]], np.int32)}
    options = {} if grid is None else {"grid": grid}
    want = kc.run(program, "interp", inputs)["o"]
    np.testing.assert_array_equal(kc.run(program, "csl", inputs, **options)["o"], want)
