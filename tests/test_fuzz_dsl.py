"""Differential fuzzing of the DSL (issue 14): random well-typed programs (tests/fuzz/dsl.py) on
every registered target against the reference interpreter (tests/fuzz/differential.py). A
target may refuse a program with kc.Unsupported; it may not raise anything else or differ. A
failure prints the shrunk program as `.k` source with its inputs.

CI runs 50 programs on the fast targets and 5 per simulated target (csl, poplar: a simulator or
g++ per program); ``KERNELC_HYPOTHESIS=thorough`` runs 600 and 60. benchmarks/fuzz.py runs more.
Constructs that trigger known bugs of targets under rewrite are left out for those targets
(tests/fuzz/known_bugs.py, docs/TESTING.md).
"""

from __future__ import annotations

import numpy as np
import pytest
from fuzz import differential, known_bugs
from fuzz.dsl import programs
from hypothesis import HealthCheck, given, settings

import kernelc as kc
from kernelc import affine, ir

SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
FAST = differential.configurations(simulated=False)
SIMULATED = sorted({target for _, target, _ in differential.configurations(simulated=True)})


def _assert_agrees(generated, configs) -> None:
    outcome = differential.check(generated, configs)
    if outcome.findings:
        pytest.fail(differential.report(generated, outcome), pytrace=False)


@settings(max_examples=settings.default.max_examples * 2, suppress_health_check=SUPPRESS)
@given(programs(avoid=known_bugs.avoid(label for label, _, _ in FAST)))
def test_random_programs_agree_on_the_fast_targets(generated) -> None:
    _assert_agrees(generated, FAST)


@pytest.mark.parametrize("target", SIMULATED)
def test_random_programs_agree_on_the_simulated_targets(target: str) -> None:
    configs = [c for c in differential.configurations(simulated=True) if c[1] == target]

    @settings(
        max_examples=max(settings.default.max_examples // 5, 5), suppress_health_check=SUPPRESS
    )
    @given(programs(max_size=3, avoid=known_bugs.avoid(label for label, _, _ in configs)))
    def run(generated) -> None:
        _assert_agrees(generated, configs)

    run()


def test_a_u16_round_trip_is_not_affine() -> None:
    """Found by the fuzzer: i32(u16(i + 65536)) - 65536 wraps modulo 2^16, so the access
    analysis must treat it as indirect (clamped, dropped) rather than as the affine i."""
    source = """
kernel k(a: f32[4]) -> o: f32[4] {
  for i in 0 .. 4 {
    o[i32(u16(i - 3 + 65536)) - 65536 + 3] = a[i32(u16(i - 3 + 65536)) - 65536 + 3] + 1.0;
  }
}
"""
    program = kc.loads(source, "wrap.k")
    store = program.graph().tasks[0].kernel.body[0].body[0]
    assert affine.affine(store.indices[0]) is None
    assert isinstance(store, ir.Store)
    a = np.arange(4, dtype=np.float32) + 5
    for target in ("interp", "cpu"):
        # i = 3 reaches -65533: the gather clamps to a[0], the scatter is dropped
        np.testing.assert_array_equal(kc.run(program, target, {"a": a})["o"], [6, 7, 8, 0])
