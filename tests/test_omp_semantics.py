"""OpenMP semantics the frontend models, each checked against the C compiler's OpenMP over drawn
sizes and values, on every target: task ordering (depend in/out/inout, taskwait, barriers,
single, masked), data sharing, reductions, device scalars, maps across target regions, loop
forms, C's conversions and helper functions."""

import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omp_gcc import compiler, run_c, run_on_targets

import kernelc as kc
from kernelc.dot import steps
from kernelc.inputs import random_inputs

needs_cc = pytest.mark.skipif(compiler() is None, reason="no C compiler with OpenMP")

PROGRAMS = {
    # Tasks created by the initial thread of a bare target region: arrays passed as parameters
    # are pointers, so the tasks share their elements. inout chains, out after out on one
    # section (ordered by the depend clauses), a taskwait, and a task reading a tofrom copy.
    "bare_tasks": """
        #ifndef N
        #define N 8
        #endif
        void bare_tasks(const float x[N], float y[N], float z[2 * N]) {
        #pragma omp target map(to: x[0:N]) map(from: y[0:N]) map(tofrom: z[0:2 * N])
          {
        #pragma omp task depend(in: x[0:N]) depend(out: y[0:N])
            for (int i = 0; i < N; i++) y[i] = x[i] * 2.0f;
        #pragma omp task depend(inout: y[0:N])
            for (int i = 0; i < N; i++) y[i] += 1.0f;
        #pragma omp task depend(out: z[0:N])
            for (int i = 0; i < N; i++) z[i] = 3.0f;
        #pragma omp task depend(out: z[0:N])
            for (int i = 0; i < N; i++) z[i] = z[i] * 0.5f + x[i];
        #pragma omp taskwait
        #pragma omp task depend(in: y[0:N]) depend(out: z[N:N])
            for (int i = 0; i < N; i++) z[N + i] -= y[i];
          }
        }
    """,
    # Reductions into scalars of the target region (kept on the device), private, a scalar
    # parameter, and a second target region that maps the array again.
    "reductions": """
        #ifndef N
        #define N 10
        #endif
        void reductions(float a[N], float out[3], int scale) {
        #pragma omp target map(tofrom: a[0:N]) map(from: out[0:3])
          {
            float s = 0.0f;
            float lo = 1000.0f;
            float hi = -1000.0f;
        #pragma omp parallel for reduction(+: s) reduction(min: lo) reduction(max: hi)
            for (int i = 0; i < N; i++) {
              s += a[i];
              lo = fminf(lo, a[i]);
              hi = a[i] > hi ? a[i] : hi;
            }
            out[0] = s;
            out[1] = lo;
            out[2] = hi;
            float t;
        #pragma omp parallel for private(t)
            for (int i = 0; i < N; i++) {
              t = a[i] * scale;
              a[i] = t - hi;
            }
          }
        #pragma omp target map(tofrom: a[0:N])
        #pragma omp parallel for
          for (int i = 0; i < N; i++) a[i] = a[i] * a[i];
        }
    """,
    # One thread creates tasks in loops (unrolled at compile time), each on its own block; a
    # masked thread adds a task after the single's barrier.
    "blocks": """
        #ifndef BS
        #define BS 4
        #endif
        #define NB 3
        void blocks(const int x[NB * BS], int y[NB * BS], int w[NB]) {
        #pragma omp target map(to: x[0:NB * BS]) map(from: y[0:NB * BS], w[0:NB])
        #pragma omp parallel num_threads(3)
          {
        #pragma omp single
            {
              for (int b = 0; b < NB; b++) {
        #pragma omp task depend(in: x[b * BS:BS]) depend(out: y[b * BS:BS])
                for (int i = 0; i < BS; i++) y[b * BS + i] = x[b * BS + i] * (b + 1);
              }
              for (int b = NB - 1; b >= 0; b--) {
        #pragma omp task depend(in: y[b * BS:BS]) depend(out: w[b])
                {
                  int acc = 0;
                  for (int i = 0; i < BS; i++) acc += y[b * BS + i];
                  w[b] = acc;
                }
              }
            }
        #pragma omp masked
            {
        #pragma omp task depend(inout: w[0:NB])
              for (int i = 0; i < NB; i++) w[i] = w[i] - i;
            }
          }
        }
    """,
    # A worksharing loop inside a parallel region, then one task per thread on the thread's
    # part, a barrier, and a loop that reads every thread's result.
    "threads": """
        #ifndef N
        #define N 12
        #endif
        #define T 3
        void threads(const float x[N], float y[N], float part[T]) {
          float tmp[N];
        #pragma omp target map(to: x[0:N]) map(from: y[0:N], part[0:T]) map(alloc: tmp)
        #pragma omp parallel num_threads(T)
          {
        #pragma omp for
            for (int i = 0; i < N; i++) tmp[i] = x[i] + 1.0f;
            int t = omp_get_thread_num();
            int per = N / T;
        #pragma omp task depend(in: tmp[t * per:per]) depend(out: part[t])
            {
              float s = 0.0f;
              for (int i = 0; i < per; i++) s += tmp[t * per + i];
              part[t] = s;
            }
        #pragma omp barrier
        #pragma omp for
            for (int i = 0; i < N; i++) y[i] = tmp[i] * (i / per < T ? part[i / per] : 0.0f);
          }
        }
    """,
    # teams distribute over a collapsed nest with a decreasing, strided inner loop, a helper
    # function, C's int/unsigned/float conversions, division and shifts.
    "arithmetic": """
        #ifndef N
        #define N 6
        #endif
        static inline float sq(float v) { return v * v; }
        static int mix(int a, int b) {
          const int q = a / (b == 0 ? 1 : b);
          return q * 3 - a % 4;
        }
        void arithmetic(const float a[N][N], const int k[N], float b[N][N], unsigned u[N],
                        float alpha) {
        #pragma omp target teams num_teams(2) map(to: a[0:N][0:N], k[0:N]) \\
            map(from: b[0:N][0:N], u[0:N])
        #pragma omp distribute parallel for collapse(2)
          for (int i = 0; i < N; i++)
            for (int j = N - 1; j >= 0; j -= 2) {
              int m = mix(k[i] - 7, j - 2);
              b[i][j] = sq(a[i][j]) * alpha + (i > j) + m / 2;
              b[i][j > 0 ? j - 1 : 0] = (float)(i * j % 3) - (unsigned)k[j] / 3u;
              u[i] = (unsigned)(k[i] << 2) ^ (unsigned)(i >> 1) | 1u;
            }
        }
    """,
    # uint16_t and bool arrays, C's promotions and compound assignments with other types.
    "types": """
        #ifndef N
        #define N 9
        #endif
        void types(const uint16_t h[N], const bool f[N], const int k[N], uint16_t out[N],
                   bool flag[N], int r[N]) {
        #pragma omp target map(to: h[0:N], f[0:N], k[0:N]) map(from: out[0:N], flag[0:N], r[0:N])
        #pragma omp parallel for
          for (int i = 0; i < N; i++) {
            out[i] = h[i] * 3 + (f[i] ? 1 : 70000);
            out[i] -= f[i];
            flag[i] = h[i] > 8 && !f[i];
            r[i] = (k[i] - 8) % 3 + (k[i] - 8) / 3 + (f[i] + f[i]) - (int)(h[i] >> 1);
            r[i] += -k[i] * 2u > 5u;
            r[i] *= 2.5f;
          }
        }
    """,
    # A league of teams: each of num_teams(3) teams runs a block of the distributed rows and
    # writes its block of b and s; the halo row it reads may belong to another team's block.
    "league": """
        #ifndef M
        #define M 7
        #endif
        #ifndef N
        #define N 5
        #endif
        void league(const float a[M][N], float b[M][N], float s[M]) {
        #pragma omp target teams num_teams(3) map(to: a[0:M][0:N]) map(from: b[0:M][0:N], s[0:M])
        #pragma omp distribute parallel for
          for (int i = 0; i < M; i++) {
            float acc = 0.0f;
            for (int j = 0; j < N; j++) {
              b[i][j] = a[i][j] * 2.0f + (i > 0 ? a[i - 1][j] : 0.0f);
              acc += b[i][j];
            }
            s[i] = acc;
          }
        }
    """,
    # A result mapped back (from) by one target region and mapped in (to) by the next, and a
    # boundary guarded with == as C kernels write it (the else branch reads i - 1).
    "from_then_to": """
        #ifndef N
        #define N 8
        #endif
        void from_then_to(const float x[N], float t[N], float y[N]) {
        #pragma omp target teams distribute parallel for map(to: x[0:N]) map(from: t[0:N])
          for (int i = 0; i < N; i++) t[i] = 2.0f * x[i];
        #pragma omp target teams distribute parallel for map(to: t[0:N]) map(from: y[0:N])
          for (int i = 0; i < N; i++) y[i] = i == 0 ? t[i] : t[i] + t[i - 1];
        }
    """,
    # Tasks created in a loop whose depend sections use a local computed from the loop counter
    # with ?: (each block reads the previous block; the first reads itself).
    "neighbour_tasks": """
        #define NBLK 4
        #ifndef BS
        #define BS 3
        #endif
        void neighbour_tasks(const float u[NBLK * BS], float v[NBLK * BS]) {
        #pragma omp target map(to: u[0:NBLK * BS]) map(from: v[0:NBLK * BS])
        #pragma omp parallel num_threads(2)
        #pragma omp single
          {
            for (int b = 0; b < NBLK; b++) {
              int lb = b > 0 ? b - 1 : b;
        #pragma omp task depend(in: u[lb * BS:BS]) depend(out: v[b * BS:BS])
              for (int i = 0; i < BS; i++) v[b * BS + i] = u[lb * BS + i] * 2.0f;
            }
          }
        }
    """,
}


def _source(name: str, tmp: Path) -> Path:
    path = tmp / f"{name}.c"
    path.write_text(textwrap.dedent(PROGRAMS[name]).lstrip("\n"))
    return path


SIZES = {
    "bare_tasks": {"N": st.integers(1, 12)},
    "reductions": {"N": st.integers(1, 16)},
    "blocks": {"BS": st.integers(1, 6)},
    "threads": {"N": st.integers(3, 15)},
    "arithmetic": {"N": st.integers(1, 7)},
    "league": {"M": st.integers(1, 9), "N": st.integers(1, 4)},
    "types": {"N": st.integers(1, 12)},
    "from_then_to": {"N": st.integers(1, 12)},
    "neighbour_tasks": {"BS": st.integers(1, 5)},
}


@needs_cc
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_matches_openmp(name, tmp_path_factory):
    source = _source(name, tmp_path_factory.mktemp(name))

    @settings(deadline=None, max_examples=max(5, settings.default.max_examples // 5))
    @given(sizes=st.fixed_dictionaries(SIZES[name]), seed=st.integers(0, 2**16))
    def check(sizes, seed):
        tmp = tmp_path_factory.mktemp(name)
        program = kc.load(source, params=sizes)
        graph = program.graph()
        inputs = random_inputs(graph, seed)
        reference = run_c(source, graph, inputs, sizes, tmp)
        assert set(reference) == {t.name for t in graph.outputs}
        for target, outputs in run_on_targets(program, inputs).items():
            for out, want in reference.items():
                np.testing.assert_allclose(
                    outputs[out], want, rtol=1e-5, atol=1e-5, err_msg=f"{out} on {target}"
                )

    check()


def test_tofrom_array_is_an_input_and_an_output(tmp_path):
    graph = kc.load(_source("bare_tasks", tmp_path), params={"N": 4}).graph()
    assert [t.name for t in graph.inputs] == ["x", "z"]
    assert [t.name for t in graph.outputs] == ["y", "z_out"]
    copy = graph.tasks[0]
    assert copy.kernel.name == "bare_tasks_copy_z"
    assert (str(copy.reads[0]), str(copy.writes[0])) == ("z[0:8]", "z_out[0:8]")


def test_out_after_out_on_one_section_is_ordered(tmp_path):
    graph = kc.load(_source("bare_tasks", tmp_path), params={"N": 4}).graph()
    deps = graph.dependencies
    assert deps.edges["bare_tasks_task3_3", "bare_tasks_task4_4"]["kind"] == "order"
    assert deps.edges["bare_tasks_task1_1", "bare_tasks_task2_2"]["kind"] == "order"


def test_reduction_scalars_live_on_the_device(tmp_path):
    graph = kc.load(_source("reductions", tmp_path), params={"N": 5}).graph()
    temps = {t.name: t.shape for t in graph.tensors if t.role == "temp"}
    assert temps == {"s": (1,), "lo": (1,), "hi": (1,)}
    a = np.array([3, -1, 4, 1, -5], dtype=np.float32)
    out = kc.interpret(
        kc.load(_source("reductions", tmp_path), params={"N": 5}), {"a": a, "scale": np.int32(2)}
    )
    np.testing.assert_array_equal(out["out"], [2.0, -5.0, 4.0])
    np.testing.assert_array_equal(out["a_out"], (a * 2 - 4) ** 2)


def test_unrolled_task_loops_make_one_task_per_iteration(tmp_path):
    graph = kc.load(_source("blocks", tmp_path), params={"BS": 2}).graph()
    names = [t.kernel.name for t in graph.tasks]
    assert names == ["blocks_task1"] * 3 + ["blocks_task2"] * 3 + ["blocks_task3"]
    sums = graph.tasks[3:6]
    assert [str(t.writes[0]) for t in sums] == ["w[2:3]", "w[1:2]", "w[0:1]"]


def test_a_league_of_teams_is_one_step_of_one_task_per_team(tmp_path):
    graph = kc.load(_source("league", tmp_path), params={"M": 7, "N": 2}).graph()
    assert [len(step) for step in steps(graph)] == [3]
    assert {t.kernel.name for t in graph.tasks} == {"league_loop1"}
    assert [str(t.writes[0]) for t in graph.tasks] == ["b[0:2, 0:2]", "b[2:4, 0:2]", "b[4:7, 0:2]"]
    assert [str(t.reads[0]) for t in graph.tasks] == ["a[0:7, 0:2]"] * 3


def test_a_league_whose_writes_cannot_be_cut_stays_one_task():
    program = kc.loads(
        textwrap.dedent(
            """
            void pairs(const float a[4], float b[8]) {
            #pragma omp target teams num_teams(2) map(to: a[0:4]) map(from: b[0:8])
            #pragma omp distribute parallel for
              for (int i = 0; i < 4; i++) {
                b[2 * i] = a[i];
                b[2 * i + 1] = -a[i];
              }
            }
            """
        ),
        "pairs.c",
    )
    (task,) = program.graph().tasks
    a = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(
        kc.interpret(program, {"a": a})["b"], np.stack([a, -a], 1).ravel()
    )
