"""Rejections of the OpenMP frontend: each names the construct at fault with its line and column,
and the command line exits 2 without a traceback."""

import textwrap

import numpy as np
import pytest

import kernelc as kc
from kernelc.cli import main


def _source(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


CASES = {
    "reduction without an operator": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
          {
            float s = 0.0f;
        #pragma omp parallel for reduction(+ s)
            for (int i = 0; i < N; i++) s += x[i];
            y[0] = s;
          }
        }
        """,
        "reduction needs an operator and a colon before its variables, e.g. reduction(+: s)",
        6,
        26,
    ),
    "depend section reads data": (
        """
        #define N 8
        void f(const int idx[4], const float x[N], float y[N]) {
        #pragma omp target map(to: idx[0:4], x[0:N]) map(from: y[0:N])
        #pragma omp parallel num_threads(4)
          {
            int t = omp_get_thread_num();
        #pragma omp task depend(in: x[idx[t]:2]) depend(out: y[2 * t:2])
            { y[2 * t] = x[2 * t]; y[2 * t + 1] = 0.0f; }
          }
        }
        """,
        "this depend section reads array 'idx', so it is not a compile-time value",
        7,
        31,
    ),
    "a team too large to unroll (a parser fuzzer's mutant: it took 23 GB)": (
        """
        #define NT 44294967296
        void f(const float x[NT], float y[NT]) {
        #pragma omp target map(to: x[0:NT]) map(from: y[0:NT])
        #pragma omp parallel num_threads(NT)
          {
            int t = omp_get_thread_num();
        #pragma omp task depend(in: x[t:1]) depend(out: y[t:1])
            y[t] = x[t];
          }
        }
        """,
        "num_threads(44,294,967,296) is more threads than kernelc unrolls into a static task "
        "graph (at most 8,832",
        4,
        22,
    ),
    "depend section uses a run-time scalar": (
        """
        #define N 8
        void f(const float x[N], float y[N], int k) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
          {
        #pragma omp task depend(in: x[k:2]) depend(out: y[0:N])
            for (int i = 0; i < N; i++) y[i] = 1.0f;
          }
        }
        """,
        "this depend section is not compile-time affine: it depends on the run-time value of 'k'",
        5,
        31,
    ),
    "pointer arithmetic": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
        #pragma omp parallel for
          for (int i = 0; i < N; i++) y[i] = *(x + i);
        }
        """,
        "pointer dereference ('*') is not supported",
        5,
        38,
    ),
    "array used as a pointer": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
        #pragma omp parallel for
          for (int i = 0; i < N; i++) y[i] = (x + i)[0];
        }
        """,
        "'x' is an array; using it without an index would be pointer arithmetic",
        5,
        39,
    ),
    "malloc": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
          {
            float *tmp = malloc(N * sizeof(float));
          }
        }
        """,
        "dynamic allocation ('malloc') is not supported",
        5,
        18,
    ),
    "recursion": (
        """
        #define N 8
        static float fact(float v) { return v <= 1.0f ? 1.0f : v * fact(v - 1.0f); }
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
        #pragma omp parallel for
          for (int i = 0; i < N; i++) y[i] = fact(x[i]);
        }
        """,
        "recursive call to 'fact': recursion is not supported",
        2,
        60,
    ),
    "goto": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
        #pragma omp parallel for
          for (int i = 0; i < N; i++) {
            y[i] = x[i];
            if (y[i] < 0.0f) goto done;
            y[i] = 1.0f;
          done:;
          }
        }
        """,
        "goto is not supported",
        7,
        22,
    ),
    "unsupported pragma": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
        #pragma omp parallel num_threads(2)
          {
        #pragma omp critical
            y[0] = x[0];
          }
        }
        """,
        "'#pragma omp critical' is not supported",
        6,
        13,
    ),
    "unsupported clause": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
        #pragma omp parallel num_threads(2)
          {
        #pragma omp for nowait
            for (int i = 0; i < N; i++) y[i] = x[i];
          }
        }
        """,
        "clause 'nowait' is not supported on '#pragma omp for'",
        6,
        17,
    ),
    "variable-length array": (
        """
        #define N 8
        void f(const float x[N], float y[N], int n) {
          float tmp[n];
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
        #pragma omp parallel for
          for (int i = 0; i < N; i++) y[i] = x[i];
        }
        """,
        "'tmp' would be a variable-length array: its size uses 'n'",
        3,
        13,
    ),
    "variable-length parameter": (
        """
        void f(int n, const float x[n], float y[8]) {
        #pragma omp target map(to: x[0:n]) map(from: y[0:8])
        #pragma omp parallel for
          for (int i = 0; i < 8; i++) y[i] = x[i];
        }
        """,
        "'x' would be a variable-length array: its size uses 'n'",
        1,
        29,
    ),
    "task reads data nothing produced": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
          float tmp[N];
        #pragma omp target map(to: x[0:N]) map(from: y[0:N]) map(alloc: tmp)
        #pragma omp parallel num_threads(2)
        #pragma omp single
          {
        #pragma omp task depend(in: tmp[0:N]) depend(out: y[0:N])
            for (int i = 0; i < N; i++) y[i] = tmp[i] + x[i];
          }
        }
        """,
        "this reads tmp[0:8], but no earlier task writes all of it",
        9,
        40,
    ),
    "task writes a firstprivate array": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
          float w[N];
        #pragma omp target map(to: x[0:N]) map(from: y[0:N]) map(alloc: w)
          {
        #pragma omp task depend(out: w)
            for (int i = 0; i < N; i++) w[i] = x[i] * 2.0f;
        #pragma omp task depend(in: w) depend(out: y[0:N])
            for (int i = 0; i < N; i++) y[i] = w[i];
          }
        }
        """,
        "this task writes 'w', which is firstprivate in the task",
        7,
        33,
    ),
    "thread number inside a task": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
        #pragma omp parallel num_threads(4)
          {
            int t = omp_get_thread_num();
        #pragma omp task depend(in: x[2 * t:2]) depend(out: y[2 * t:2])
            {
              int me = omp_get_thread_num();
              y[2 * me] = x[2 * me];
              y[2 * me + 1] = x[2 * me + 1];
            }
          }
        }
        """,
        "omp_get_thread_num() is not supported here: inside a task it is the number of whichever",
        9,
        16,
    ),
    "race between threads' tasks": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(tofrom: y[0:N])
        #pragma omp parallel num_threads(2)
          {
            int t = omp_get_thread_num();
        #pragma omp task depend(inout: y[0:N])
            for (int i = 0; i < N; i++) y[i] += x[i] * t;
          }
        }
        """,
        "race: this task and the task at 7:13 may run at the same time",
        8,
        38,
    ),
    "double constant": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
        #pragma omp parallel for
          for (int i = 0; i < N; i++) y[i] = x[i] * 0.5;
        }
        """,
        "'0.5' is a double constant",
        5,
        45,
    ),
    "while loop": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
        #pragma omp parallel for
          for (int i = 0; i < N; i++) {
            float v = x[i];
            while (v > 1.0f) v = v * 0.5f;
            y[i] = v;
          }
        }
        """,
        "while loops are not supported",
        7,
        5,
    ),
    "access outside the depend section": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
        #pragma omp parallel num_threads(2)
          {
            int t = omp_get_thread_num();
        #pragma omp task depend(in: x[4 * t:4]) depend(out: y[4 * t:4])
            for (int i = 0; i < 4; i++) y[4 * t + i] = x[4 * t + i + 1];
          }
        }
        """,
        "this access to 'x' (dimension 0) reaches 4, outside the task's depend section 0:4",
        8,
        48,
    ),
    "data-dependent index in a partial section": (
        """
        #define N 8
        void f(const int idx[N], const float x[N], float y[N]) {
        #pragma omp target map(to: idx[0:N], x[0:N]) map(from: y[0:N])
        #pragma omp parallel num_threads(2)
          {
            int t = omp_get_thread_num();
        #pragma omp task depend(in: x[4 * t:4]) depend(out: y[4 * t:4])
            for (int i = 0; i < 4; i++) y[4 * t + i] = x[idx[4 * t + i]];
          }
        }
        """,
        "this index of 'x' is data-dependent, but the task's depend section covers only part",
        8,
        50,
    ),
    "unmapped pointer parameter": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(from: y[0:N])
        #pragma omp parallel for
          for (int i = 0; i < N; i++) y[i] = x[i];
        }
        """,
        "'x' is used in the target region but not mapped; add map(to: x[0:N])",
        5,
        38,
    ),
    "default(none) without the array": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
          float w[N];
        #pragma omp target map(to: x[0:N]) map(from: y[0:N]) map(alloc: w)
        #pragma omp parallel num_threads(2)
        #pragma omp single
          {
        #pragma omp task default(none) shared(x) depend(out: w)
            for (int i = 0; i < N; i++) w[i] = x[i];
          }
        }
        """,
        "'w' is not listed in a data-sharing clause of the task, which has default(none)",
        9,
        33,
    ),
    "depend on a pointer parameter": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
          {
        #pragma omp task depend(in: x) depend(out: y[0:N])
            for (int i = 0; i < N; i++) y[i] = x[i];
          }
        }
        """,
        "depend(x) names the pointer parameter 'x' itself",
        5,
        29,
    ),
    "parallel region without num_threads": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
        #pragma omp parallel
          {
        #pragma omp for
            for (int i = 0; i < N; i++) y[i] = x[i];
          }
        }
        """,
        "give the parallel region num_threads(N)",
        4,
        13,
    ),
    "overlapping sibling sections": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
        #pragma omp parallel num_threads(2)
        #pragma omp single
          {
        #pragma omp task depend(out: y[0:6])
            for (int i = 0; i < 6; i++) y[i] = x[i];
        #pragma omp task depend(out: y[4:4])
            for (int i = 4; i < 8; i++) y[i] = x[i];
          }
        }
        """,
        "the depend sections of this task and an earlier sibling task overlap",
        9,
        30,
    ),
    "code outside a target region": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
          y[0] = x[0];
        }
        """,
        "no function has a '#pragma omp target' region",
        1,
        1,
    ),
    "host statement beside a target region": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
        #pragma omp parallel for
          for (int i = 0; i < N; i++) y[i] = x[i];
          y[0] = 1.0f;
        }
        """,
        "code outside a target region is host code",
        6,
        3,
    ),
    "task writes what it declares as in": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
        #pragma omp parallel num_threads(2)
        #pragma omp single
          {
        #pragma omp task depend(in: y[0:N])
            for (int i = 0; i < N; i++) y[i] = x[i];
          }
        }
        """,
        "this task writes 'y', but its depend clause names it as in",
        7,
        29,
    ),
    "function-like macro": (
        """
        #define SQ(v) ((v) * (v))
        void f(const float x[8], float y[8]) {
        #pragma omp target map(to: x[0:8]) map(from: y[0:8])
        #pragma omp parallel for
          for (int i = 0; i < 8; i++) y[i] = x[i];
        }
        """,
        "function-like macro 'SQ' is not supported",
        1,
        1,
    ),
    "teams beside other code": (
        """
        #define N 8
        void f(const float x[N], float y[N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N])
          {
            y[0] = 0.0f;
        #pragma omp teams distribute parallel for
            for (int i = 1; i < N; i++) y[i] = x[i];
          }
        }
        """,
        "a target region that contains a teams construct may contain nothing else",
        6,
        13,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rejection_is_located(name):
    source, message, line, col = CASES[name]
    with pytest.raises(kc.KernelcError) as info:
        kc.loads(_source(source), "case.c").graph()
    err = info.value
    assert message in err.message
    assert (err.span.file, err.span.line, err.span.col) == ("case.c", line, col)


def test_at_least_ten_distinct_rejections():
    assert len({message for _, message, _, _ in CASES.values()}) >= 10


def test_cli_exits_2_with_the_located_error(tmp_path, capsys):
    source, message, line, col = CASES["task writes a firstprivate array"]
    path = tmp_path / "bad.c"
    path.write_text(_source(source))
    assert main(["build", str(path), "--target", "interp"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:{line}:{col}: error: {message}")
    assert "Traceback" not in err
    assert "^~" in err


def test_write_to_a_map_to_array_is_accepted_with_a_located_warning(capsys):
    source = """
    #define N 4
    void f(float x[N], float y[N]) {
    #pragma omp target map(to: x[0:N]) map(from: y[0:N])
    #pragma omp parallel for
      for (int i = 0; i < N; i++) { x[i] = x[i] + 1.0f; y[i] = x[i]; }
    }
    """
    program = kc.loads(_source(source), "warn.c")
    err = capsys.readouterr().err
    assert err.startswith(
        "warn.c:5:33: warning: 'x' is mapped with map(to:), so this write stays on the device"
    )
    out = kc.interpret(program, {"x": np.arange(4, dtype=np.float32)})
    assert [t.name for t in program.graph().outputs] == ["y"]  # x is not copied back
    assert out["y"].tolist() == [1.0, 2.0, 3.0, 4.0]
