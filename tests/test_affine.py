"""Size expressions: ``/`` and ``%`` round toward zero exactly, whatever the magnitude."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernelc import ir
from kernelc.affine import evaluate, value_of
from kernelc.diagnostics import KernelcError, Span

AT = Span("sizes.k", 1, 1)
BIG = st.integers(min_value=-(2**62), max_value=2**62)


def _binary(op: str) -> ir.Binary:
    return ir.Binary(op=op, lhs=ir.Name(name="A", span=AT), rhs=ir.Name(name="B", span=AT), span=AT)


def _truncated(a: int, b: int) -> int:
    """Division toward zero, written apart from the implementation: floor division fixed up."""
    q = a // b
    if q < 0 and q * b != a:
        q += 1
    return q


@given(BIG, BIG.filter(lambda b: b != 0))
def test_division_and_remainder_are_exact_for_large_products(a: int, b: int) -> None:
    env = {"A": a, "B": b}
    q = evaluate(_binary("/"), env)
    r = evaluate(_binary("%"), env)
    assert q == _truncated(a, b)
    assert q * b + r == a
    assert abs(r) < abs(b) and (r == 0 or (r < 0) == (a < 0))


def test_a_quotient_past_two_to_the_53_is_exact() -> None:
    """Through a float, 3 * 2**55 + 3 divided by 3 would give 2**55 (2**55 + 1 is not a double)."""
    assert evaluate(_binary("/"), {"A": 3 * 2**55 + 3, "B": 3}) == 2**55 + 1
    assert evaluate(_binary("/"), {"A": -(3 * 2**55 + 3), "B": 3}) == -(2**55 + 1)
    assert evaluate(_binary("%"), {"A": 2**60 + 1, "B": 2**59}) == 1


def test_value_of_is_none_where_evaluate_reports_an_error() -> None:
    """Passes that fold what they can ask ``value_of``; ``evaluate`` says why there is no value."""
    env = {"A": 7, "B": 0}
    assert value_of(_binary("/"), env) is None
    assert value_of(_binary("%"), {"A": 7}) is None
    assert value_of(_binary("-"), {"A": 7, "B": 9}) == -2
    with pytest.raises(KernelcError, match="division by zero in a size expression"):
        evaluate(_binary("/"), env)
    with pytest.raises(KernelcError, match="size 'B' has no value here"):
        evaluate(_binary("%"), {"A": 7})
