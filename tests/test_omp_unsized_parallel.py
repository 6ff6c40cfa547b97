"""``#pragma omp parallel`` without num_threads around ``single`` (issue 14): the textbook shape
of an OpenMP task graph, whose tasks do not depend on the number of threads, is accepted and
matches gcc -fopenmp; a region whose work does depend on it still needs num_threads(N)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from omp_gcc import compiler, run_c, run_on_targets

import kernelc as kc
from kernelc.inputs import random_inputs

TEXTBOOK = """
#ifndef BS
#define BS 4
#endif
#define NB 3
void chain(const float x[NB * BS], float y[NB * BS], float z[NB]) {
#pragma omp target map(to: x[0:NB * BS]) map(from: y[0:NB * BS], z[0:NB])
#pragma omp parallel
  {
#pragma omp single
    {
      for (int b = 0; b < NB; b++) {
#pragma omp task depend(in: x[b * BS:BS]) depend(out: y[b * BS:BS])
        for (int i = 0; i < BS; i++) y[b * BS + i] = x[b * BS + i] * 2.0f;
#pragma omp task depend(in: y[b * BS:BS]) depend(out: z[b])
        {
          float s = 0.0f;
          for (int i = 0; i < BS; i++) s += y[b * BS + i];
          z[b] = s;
        }
      }
    }
  }
}
"""


def _write(tmp: Path, text: str) -> Path:
    path = tmp / "chain.c"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_single_creating_tasks_needs_no_thread_count(tmp_path: Path) -> None:
    graph = kc.load(_write(tmp_path, TEXTBOOK)).graph()
    assert len(graph.tasks) == 6
    assert graph.dependencies.edges["chain_task1_0", "chain_task2_1"]["kind"] == "flow"


@pytest.mark.skipif(compiler() is None, reason="no C compiler with OpenMP")
@pytest.mark.parametrize("bs", [1, 4])
def test_it_matches_openmp(tmp_path: Path, bs: int) -> None:
    source = _write(tmp_path, TEXTBOOK)
    program = kc.load(source, params={"BS": bs})
    graph = program.graph()
    inputs = random_inputs(graph, 7)
    reference = run_c(source, graph, inputs, {"BS": bs}, tmp_path / "gcc")
    assert set(reference) == {"y", "z"}
    for target, outputs in run_on_targets(program, inputs).items():
        for name, want in reference.items():
            np.testing.assert_allclose(outputs[name], want, rtol=1e-5, err_msg=f"{name} {target}")


@pytest.mark.parametrize(
    ("change", "message", "where"),
    [
        (
            ("#pragma omp single\n", ""),
            "give the parallel region num_threads(N): every thread runs this statement, so what "
            "it creates depends on the number of threads",
            (7, 13),
        ),
        (
            ("z[b] = s;", "z[b] = s + omp_get_num_threads();"),
            "omp_get_num_threads() depends on the number of threads; give the parallel region "
            "num_threads(N)",
            (18, 22),
        ),
    ],
)
def test_work_that_depends_on_the_thread_count_is_refused(
    tmp_path: Path, change: tuple[str, str], message: str, where: tuple[int, int]
) -> None:
    with pytest.raises(kc.KernelcError) as info:
        kc.load(_write(tmp_path, TEXTBOOK.replace(*change))).graph()
    assert info.value.message == message
    assert (info.value.span.line, info.value.span.col) == where
