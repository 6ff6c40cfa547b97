"""OpenMP ``teams num_teams(T)`` on poplar, as the C frontend gives it: T tasks of one step
(team t a copy of the kernel with ``omp_team = t``), one compute set of T vertices. Replication
over groups of tiles is not done (docs/POPLAR.md says what the IR lacks for it)."""

from __future__ import annotations

from pathlib import Path

import kernelc as kc
from kernelc.backends.poplar.lower import lower
from kernelc.backends.poplar.machine import GC200
from kernelc.forms import Scalar

SOURCE = """\
#define N 64
void scale(const float a[N][N], float b[N][N]) {
#pragma omp target teams distribute num_teams(4) map(to: a[0:N]) map(from: b[0:N])
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++)
      b[i][j] = 2.0f * a[i][j];
}
"""


def test_a_league_of_teams_is_one_compute_set_of_one_vertex_per_team(tmp_path: Path) -> None:
    path = tmp_path / "teams.c"
    path.write_text(SOURCE)
    graph = kc.load(path).graph(None, {})
    assert [t.name for t in graph.tasks] == [f"scale_loop1_{t}" for t in range(4)]
    assert all(isinstance(t.form, Scalar) for t in graph.tasks)  # bounds use omp_team
    plan = lower(graph, GC200)
    assert plan.steps == 1
    assert sorted(i.tile for t in plan.tasks for i in t.instances) == [0, 1, 2, 3]
    writes = [t.task.writes[0].box for t in plan.tasks]
    assert writes == [((16 * t, 16 * t + 16), (0, 64)) for t in range(4)]
