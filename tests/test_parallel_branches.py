"""Parallel-loop marking with several stores to one tensor: every store, in whatever branch, is
checked against every other store and load of that tensor (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest

import kernelc as kc
from kernelc import ir
from kernelc.passes.access import mark_parallel

SHIFTED_IN_ONE_BRANCH = """
kernel k(u: f32[N, M]) -> v: f32[N, M] {
  for i in 0 .. N, j in 0 .. M {
    if i > 0 && i < N - 1 && j > 0 && j < M - 1 {
      v[i - 1, j] = u[i, j] * 2.0;
    } else {
      v[i, j] = u[i, j];
    }
  }
}
"""


def loops(text: str) -> dict[str, bool | None]:
    marked = mark_parallel(kc.loads(text, filename="t.k").module.kernels[0])
    return {n.var: n.parallel for n in ir.walk_body(marked.body) if isinstance(n, ir.For)}


def test_stores_in_different_branches_are_checked_together() -> None:
    assert loops(SHIFTED_IN_ONE_BRANCH) == {"i": False, "j": True}


@pytest.mark.parametrize("threads", [1, 2])
def test_shifted_store_in_one_branch_matches_the_interpreter_on_cpu(threads: int) -> None:
    prog = kc.loads(SHIFTED_IN_ONE_BRANCH, filename="t.k")
    u = np.random.default_rng(0).random((40, 56), dtype=np.float32)
    got = kc.run(prog, "cpu", {"u": u}, threads=threads)["v"]
    want = kc.interpret(prog, {"u": u})["v"]
    np.testing.assert_array_equal(got, want)


def test_load_of_what_another_store_writes_is_sequential() -> None:
    assert loops(
        """
        kernel k(a: f32[N]) -> b: f32[N] {
          for i in 1 .. N {
            b[i] = a[i];
            b[i - 1] = b[i] + 1.0;
          }
        }
        """
    ) == {"i": False}


def test_stores_that_interleave_stay_parallel() -> None:
    assert loops(
        """
        kernel k(a: f32[N]) -> b: f32[N, 2] {
          for i in 0 .. N {
            if a[i] > 0.0 { b[i, 0] = a[i]; } else { b[i, 1] = a[i]; }
          }
        }
        """
    ) == {"i": True}
    assert loops(
        """
        kernel k(a: f32[N]) -> b: f32[N2] {
          for i in 0 .. N / 2 { b[2 * i] = a[i]; b[2 * i + 1] = b[2 * i] * 2.0; }
        }
        """
    ) == {"i": True}
