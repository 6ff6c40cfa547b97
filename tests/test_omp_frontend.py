"""The lowering of C with OpenMP pragmas to the IR: sizes, kernels, regions and captures."""

import textwrap
from pathlib import Path

import numpy as np
import pytest

import kernelc as kc
from kernelc.cli import main
from kernelc.dot import graph_dot
from kernelc.printer import graph_text, kernel_text

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "omp"


def _load(text: str, **params) -> kc.Program:
    return kc.loads(textwrap.dedent(text).lstrip("\n"), "t.c", params=params)


def test_thread_count_is_fixed_and_slice_length_is_a_size():
    program = kc.load(EXAMPLES / "pipeline.c")
    assert [s.name for s in program.module.sizes] == ["CH"]
    graph = program.graph(params={"CH": 3})
    assert {t.name: t.shape for t in graph.tensors} == {"v1": (12,), "sums": (4,), "peaks": (4,)}
    with pytest.raises(kc.KernelcError, match="has no size or scalar parameter 'NT'"):
        program.graph(params={"NT": 8})


def test_kernel_uses_a_size_that_no_parameter_shape_names():
    graph = kc.load(EXAMPLES / "pipeline.c").graph(params={"CH": 5})
    task = graph.tasks[0]
    assert "CH" in task.kernel.sizes
    assert task.size_env["CH"] == 5 and task.size_env["v1_n0"] == 5


def test_depend_sections_rebase_the_task_indices():
    graph = kc.load(EXAMPLES / "pipeline.c").graph()
    text = kernel_text(graph.tasks[0].kernel)
    assert text.splitlines() == [
        "kernel pipeline_task1(v1: f32[v1_n0]) -> (sums: f32[sums_n0]) {",
        "  sums[0] = sum(i in 0 .. CH) v1[i];",  # the accumulator loop, normalised to a sum
        "}",
    ]


def test_thread_numbers_a_task_keeps_are_constant_arguments():
    program = _load(
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
        #pragma omp parallel num_threads(2)
          {
            int t = omp_get_thread_num();
        #pragma omp task depend(in: x[4 * t:4]) depend(out: y[4 * t:4])
            for (int i = 0; i < 4; i++) y[4 * t + i] = x[4 * t + i] * (t + 1);
          }
        }
        """
    )
    graph = program.graph()
    assert [t.binding("omp_thread").constant for t in graph.tasks] == [0, 1]
    x = np.arange(8, dtype=np.float32)
    want = np.concatenate([x[:4], 2 * x[4:]])
    np.testing.assert_array_equal(kc.interpret(program, {"x": x})["y"], want)


def test_compile_time_branches_choose_each_threads_tasks():
    program = _load(
        """
        #define N 4
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
        #pragma omp parallel num_threads(4)
          {
            int t = omp_get_thread_num();
            if (t % 2 == 0) {
        #pragma omp task depend(in: x[t]) depend(out: y[t])
              y[t] = x[t] + 1.0f;
            } else {
        #pragma omp task depend(in: x[t]) depend(out: y[t])
              y[t] = -x[t];
            }
          }
        }
        """
    )
    graph = program.graph()
    assert [t.kernel.name for t in graph.tasks] == ["f_task1", "f_task2", "f_task1", "f_task2"]
    x = np.array([1, 2, 3, 4], dtype=np.float32)
    np.testing.assert_array_equal(kc.interpret(program, {"x": x})["y"], [2, -2, 4, -4])


def test_loop_forms_iterate_like_c():
    program = _load(
        """
        #define N 10
        void f(int y[N]) {
        #pragma omp target map(from: y[0:N])
          {
            for (int i = 0; i < N; i++) y[i] = 0;
            for (int i = N - 1; i >= 0; i -= 3) y[i] += i;
            for (int i = 1; i <= N / 2; i = i + 2) y[i] += 100;
            for (int i = N; i > 7; --i) y[i - 1] += 1000;
          }
        }
        """
    )
    want = np.zeros(10, dtype=np.int32)
    want[9::-3] += np.arange(9, -1, -3)
    want[1:6:2] += 100
    want[7:10] += 1000
    np.testing.assert_array_equal(kc.interpret(program, {})["y"], want)


def test_helper_functions_are_inlined():
    program = _load(
        """
        static inline float cube(float v) { const float sq = v * v; return sq * v; }
        void f(const float x[3], float y[3]) {
        #pragma omp target map(to: x[0:3]) map(from: y[0:3])
        #pragma omp parallel for
          for (int i = 0; i < 3; i++) y[i] = cube(x[i]);
        }
        """
    )
    assert "y[i] = x[i] * x[i] * x[i];" in graph_text(program.graph())
    x = np.array([1, -2, 3], dtype=np.float32)
    np.testing.assert_array_equal(kc.interpret(program, {"x": x})["y"], x**3)


def test_c_conversions_are_explicit_in_the_ir():
    program = _load(
        """
        void f(const int k[4], const float x[4], float y[4], unsigned u[4]) {
        #pragma omp target map(to: k[0:4], x[0:4]) map(from: y[0:4], u[0:4])
        #pragma omp parallel for
          for (int i = 0; i < 4; i++) {
            y[i] = k[i] / 2 + x[i];
            u[i] = k[i] - 1u;
          }
        }
        """
    )
    text = graph_text(program.graph())
    assert "y[i] = f32(k[i] / 2) + x[i];" in text
    assert "u[i] = u32(k[i]) - u32(1);" in text
    k = np.array([-3, -1, 0, 7], dtype=np.int32)
    out = kc.interpret(program, {"k": k, "x": np.zeros(4, np.float32)})
    np.testing.assert_array_equal(out["y"], [-1, 0, 0, 3])  # C truncates towards zero
    np.testing.assert_array_equal(out["u"], (k.astype(np.int64) - 1) % 2**32)


def test_scalar_parameters_are_graph_scalars():
    program = _load(
        """
        void scale(const float x[4], float y[4], float alpha, int shift) {
        #pragma omp target map(to: x[0:4]) map(from: y[0:4])
        #pragma omp parallel for
          for (int i = 0; i < 4; i++) y[i] = alpha * x[(i + shift) % 4];
        }
        """
    )
    graph = program.graph()
    assert [(s.name, str(s.dtype)) for s in graph.scalars] == [("alpha", "f32"), ("shift", "i32")]
    x = np.arange(4, dtype=np.float32)
    inputs = {"x": x, "alpha": np.float32(2), "shift": np.int32(1)}
    np.testing.assert_array_equal(kc.interpret(program, inputs)["y"], 2 * np.roll(x, -1))


def test_two_target_regions_pass_data_through_the_host_copy():
    program = _load(
        """
        void f(float a[4], float b[4]) {
        #pragma omp target map(tofrom: a[0:4])
        #pragma omp parallel for
          for (int i = 0; i < 4; i++) a[i] = a[i] + 1.0f;
        #pragma omp target map(to: a[0:4]) map(from: b[0:4])
        #pragma omp parallel for
          for (int i = 0; i < 4; i++) b[i] = 2.0f * a[i];
        }
        """
    )
    graph = program.graph()
    assert [t.name for t in graph.inputs] == ["a"] and [t.name for t in graph.outputs] == [
        "a_out",
        "b",
    ]
    a = np.arange(4, dtype=np.float32)
    out = kc.interpret(program, {"a": a})
    np.testing.assert_array_equal(out["a_out"], a + 1)
    np.testing.assert_array_equal(out["b"], 2 * (a + 1))


def test_shared_clause_makes_a_bare_target_task_write_visible():
    program = _load(
        """
        void f(const float x[4], float y[4]) {
          float w[4];
        #pragma omp target map(to: x[0:4]) map(from: y[0:4]) map(alloc: w)
          {
        #pragma omp task shared(w) depend(out: w)
            for (int i = 0; i < 4; i++) w[i] = x[i] * 2.0f;
        #pragma omp task shared(w) depend(in: w) depend(out: y[0:4])
            for (int i = 0; i < 4; i++) y[i] = w[i] + 1.0f;
          }
        }
        """
    )
    x = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(kc.interpret(program, {"x": x})["y"], 2 * x + 1)


def test_output_is_deterministic():
    texts = {(graph_text(g := kc.load(EXAMPLES / "pca.c").graph()), graph_dot(g)) for _ in range(2)}
    assert len(texts) == 1


def test_warnings_for_ignored_pragmas_and_functions(capsys):
    _load(
        """
        #pragma once
        int unused(int v) { return v; }
        void f(float y[2]) {
        #pragma omp target map(from: y[0:2])
        #pragma GCC ivdep
          for (int i = 0; i < 2; i++) y[i] = 1.0f;
        }
        """
    )
    err = capsys.readouterr().err
    assert "t.c:2:5: warning: function 'unused' has no target region" in err
    assert "t.c:5:1: warning: '#pragma GCC' is not an OpenMP pragma; kernelc ignores it" in err


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('#include "sizes.h"', "kernelc does not read included files"),
        ("#if N > 2", "preprocessor directive '#if' is not supported"),
        ("#define N 4\n#define N 5", "macro 'N' is defined twice"),
    ],
)
def test_preprocessor_rejections(line, message):
    with pytest.raises(kc.KernelcError, match=message):
        _load(line + "\nvoid f(float y[2]) {}\n")


def test_run_command_on_a_c_file(capsys):
    assert main(["run", str(EXAMPLES / "gemm.c"), "-t", "interp", "-D", "M=3", "-D", "N=2",
                 "-D", "K=4", "--random-inputs", "1"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.startswith("gemm on interp: 1 task(s)")  # teams without num_teams: one task
    assert "c       (3, 2)" in out
