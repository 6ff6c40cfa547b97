"""Parser fuzzing (issue 14): mutants of every example, in both frontends, are either compiled
for ``interp`` or refused with a KernelcError, never answered with another exception.

CI draws 100 mutants per example (a few seconds); ``KERNELC_HYPOTHESIS=thorough`` draws 1,200.
"""

from __future__ import annotations

import traceback

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutants import SOURCES, compile_mutant, mutate

import kernelc as kc


@pytest.mark.parametrize("name", SOURCES)
@settings(
    max_examples=settings.default.max_examples * 4,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutants_compile_or_raise_a_located_error(name: str, data: st.DataObject) -> None:
    edits = data.draw(st.integers(1, 3), label="edits")
    text = mutate(SOURCES[name], lambda lo, hi: data.draw(st.integers(lo, hi)), edits)
    try:
        compile_mutant(name, text)
    except Exception:
        pytest.fail(f"mutant of {name} raised:\n{traceback.format_exc()}\n--- mutant ---\n{text}")


@pytest.mark.parametrize("name", SOURCES)
def test_the_examples_themselves_compile(name: str) -> None:
    compile_mutant(name, SOURCES[name])
    assert kc.loads(SOURCES[name], filename="fuzz.c" if name.endswith(".c") else "fuzz.k")
