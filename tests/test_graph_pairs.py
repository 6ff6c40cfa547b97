"""The pair index behind the task-order and race checks agrees with checking every pair.

Why: `kernelc.graph.overlapping_pairs` replaced an all-pairs loop (quadratic in task instances)
in TaskGraph.dependencies, graph.verify and the OpenMP frontend's race and order checks; a pair it
missed would drop an ordering edge or a race error silently.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import kernelc as kc
from kernelc.graph import overlapping_pairs

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _box(draw, rank: int) -> tuple[tuple[int, int], ...]:
    out = []
    for _ in range(rank):
        lo = draw(st.integers(0, 6))
        out.append((lo, lo + draw(st.integers(0, 4))))
    return tuple(out)


@st.composite
def accesses(draw):
    rank = {"a": draw(st.integers(0, 3)), "b": draw(st.integers(0, 3))}
    n = draw(st.integers(0, 14))
    return [
        (draw(st.integers(0, 6)), tensor, _box(draw, rank[tensor]), draw(st.booleans()))
        for tensor in (draw(st.sampled_from("ab")) for _ in range(n))
    ]


def _brute_force(items) -> set[tuple[int, int]]:
    pairs = set()
    for (o1, t1, b1, w1), (o2, t2, b2, w2) in itertools.combinations(items, 2):
        if t1 != t2:
            continue
        nonempty = all(hi > lo for lo, hi in b1) and all(hi > lo for lo, hi in b2)
        overlap = all(l1 < h2 and l2 < h1 for (l1, h1), (l2, h2) in zip(b1, b2, strict=True))
        if o1 != o2 and (w1 or w2) and nonempty and overlap:
            pairs.add((min(o1, o2), max(o1, o2)))
    return pairs


@settings(max_examples=400, deadline=None)
@given(accesses())
def test_pair_index_equals_checking_every_pair(items) -> None:
    assert overlapping_pairs(items) == _brute_force(items)


def test_reads_alone_make_no_pair() -> None:
    box = ((0, 4),)
    assert overlapping_pairs([(0, "a", box, False), (1, "a", box, False)]) == set()
    assert overlapping_pairs([(0, "a", box, False), (1, "a", box, True)]) == {(0, 1)}
    assert overlapping_pairs([(0, "s", (), True), (1, "s", (), False)]) == {(0, 1)}


def test_a_thousand_thread_region_builds_and_runs(tmp_path) -> None:
    """1,024 threads of examples/omp/pipeline.c: 2,048 task instances (the pair checks used to
    take most of the 26 s this build took)."""
    source = (EXAMPLES / "omp" / "pipeline.c").read_text()
    assert "#define NT 4\n" in source
    path = tmp_path / "pipeline.c"
    path.write_text(source.replace("#define NT 4\n", "#define NT 1024\n"))
    program = kc.load(path, params={"CH": 3})
    v1 = np.random.default_rng(1).uniform(-1, 1, 1024 * 3).astype(np.float32)
    out = kc.run(program, "interp", {"v1": v1})
    rows = v1.reshape(1024, 3)
    np.testing.assert_array_equal(out["peaks"], rows.max(axis=1))
    np.testing.assert_allclose(out["sums"], rows.sum(axis=1, dtype=np.float32), rtol=1e-6)
    graph = program.graph()
    assert len(graph.tasks) == 2048
    assert graph.dependencies.number_of_edges() == 0


def test_racing_threads_are_still_reported(tmp_path) -> None:
    source = (EXAMPLES / "omp" / "pipeline.c").read_text()
    racy = source.replace("depend(out: peaks[tid])", "depend(out: sums[tid])").replace(
        "peaks[tid] = m;", "sums[tid] = m;"
    )
    path = tmp_path / "racy.c"
    path.write_text(racy)
    proc = subprocess.run(
        [sys.executable, "-P", "-m", "kernelc", "build", str(path), "--target", "interp",
         "-o", str(tmp_path / "out")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr
