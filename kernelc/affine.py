"""Affine forms of integer expressions, interval bounds, and evaluation of size expressions.

Access analysis, the bounds checker and the partitioners all ask the same questions of an index:
is it ``sum(coef * name) + const``, and over which range can it vary? This module answers them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kernelc import ir
from kernelc.diagnostics import KernelcError, Span


@dataclass(frozen=True)
class Affine:
    """``const + sum(coef * name)`` with integer coefficients (no zero coefficients stored)."""

    terms: tuple[tuple[str, int], ...]
    const: int

    @staticmethod
    def of(terms: Mapping[str, int], const: int) -> Affine:
        return Affine(tuple(sorted((n, c) for n, c in terms.items() if c != 0)), const)

    def coef(self, name: str) -> int:
        return dict(self.terms).get(name, 0)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(n for n, _ in self.terms)

    def add(self, other: Affine, sign: int = 1) -> Affine:
        terms = dict(self.terms)
        for n, c in other.terms:
            terms[n] = terms.get(n, 0) + sign * c
        return Affine.of(terms, self.const + sign * other.const)

    def scale(self, k: int) -> Affine:
        return Affine.of({n: c * k for n, c in self.terms}, self.const * k)

    def substitute(self, name: str, value: Affine) -> Affine:
        c = self.coef(name)
        if c == 0:
            return self
        rest = Affine.of({n: k for n, k in self.terms if n != name}, self.const)
        return rest.add(value.scale(c))


def affine(expr: ir.Expr, aliases: Mapping[str, Affine] | None = None) -> Affine | None:
    """The affine form of an integer expression, or None when it is not affine (e.g. a gather).

    ``aliases`` maps ``let`` names to the affine forms of their values so that
    ``let r = i + 1; a[r]`` is recognised as affine in ``i``.
    """
    aliases = aliases or {}
    match expr:
        case ir.Const(value=v) if isinstance(v, int) and not isinstance(v, bool):
            return Affine.of({}, v)
        case ir.Name(name=n):
            return aliases.get(n, Affine.of({n: 1}, 0))
        case ir.Cast(operand=inner, to=to) if to.is_int and to.bits == 32:
            # i32 <-> u32 keeps the value modulo 2^32, as index arithmetic does; a cast to or
            # from u16 wraps modulo 2^16, which the affine form cannot follow
            known = inner.dtype is not None and inner.dtype.is_int and inner.dtype.bits == 32
            return affine(inner, aliases) if known else None
        case ir.Unary(op="-", operand=inner):
            a = affine(inner, aliases)
            return a.scale(-1) if a else None
        case ir.Binary(op="+" | "-", lhs=lhs, rhs=rhs):
            a, b = affine(lhs, aliases), affine(rhs, aliases)
            if a is None or b is None:
                return None
            return a.add(b, 1 if expr.op == "+" else -1)
        case ir.Binary(op="*", lhs=lhs, rhs=rhs):
            a, b = affine(lhs, aliases), affine(rhs, aliases)
            if a is None or b is None:
                return None
            if not a.terms:
                return b.scale(a.const)
            if not b.terms:
                return a.scale(b.const)
            return None
    return None


Interval = tuple[int, int]


def bounds(form: Affine, ranges: Mapping[str, Interval]) -> tuple[Interval, dict, dict] | None:
    """The closed interval an affine form spans, with the name values reaching each end.

    Returns None when some name has no known range.
    """
    lo = hi = form.const
    at_lo: dict[str, int] = {}
    at_hi: dict[str, int] = {}
    for name, coef in form.terms:
        if name not in ranges:
            return None
        a, b = ranges[name]
        small, large = (a, b) if coef > 0 else (b, a)
        lo += coef * small
        hi += coef * large
        at_lo[name], at_hi[name] = small, large
    return (lo, hi), at_lo, at_hi


def exact_in_i32(form: Affine, ranges: Mapping[str, Interval]) -> bool:
    """Whether no partial sum of the form's constant and terms can leave i32 over ``ranges``
    (which must give every name of the form): then i32 arithmetic that wraps computes the
    form's exact value, in any order of its terms."""
    reach = abs(form.const) + sum(
        abs(coef) * max(abs(ranges[name][0]), abs(ranges[name][1])) for name, coef in form.terms
    )
    return reach < 2**31


def truncating_div(a: int, b: int) -> int:
    """The language's integer division (rounds toward zero), exact for any Python ints.

    ``int(a / b)`` would go through a float and lose digits once a product of sizes passes 2**53.
    """
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def evaluate(expr: ir.Expr, env: Mapping[str, int]) -> int:
    """Evaluate an integer size expression (shapes, slice bounds) with known sizes."""
    result = _value(expr, env)
    if isinstance(result, _NoValue):
        raise KernelcError(result.reason, result.span)
    return result


def value_of(expr: ir.Expr, env: Mapping[str, int]) -> int | None:
    """``evaluate``'s value, or None where it has none (an unknown name, a division by zero, a
    load): for passes that only fold what can be folded."""
    result = _value(expr, env)
    return None if isinstance(result, _NoValue) else result


@dataclass(frozen=True)
class _NoValue:
    """Why a size expression has no value, and where."""

    reason: str
    span: Span


def _value(expr: ir.Expr, env: Mapping[str, int]) -> int | _NoValue:
    match expr:
        case ir.Const(value=v):
            return int(v)
        case ir.Name(name=n):
            return env[n] if n in env else _NoValue(f"size '{n}' has no value here", expr.span)
        case ir.Unary(op="-", operand=inner):
            value = _value(inner, env)
            return value if isinstance(value, _NoValue) else -value
        case ir.Cast(operand=inner):
            return _value(inner, env)
        case ir.Binary(op=op, lhs=lhs, rhs=rhs) if op in ("+", "-", "*", "/", "%"):
            a, b = _value(lhs, env), _value(rhs, env)
            if isinstance(a, _NoValue):
                return a
            if isinstance(b, _NoValue):
                return b
            if op in ("/", "%") and b == 0:
                return _NoValue("division by zero in a size expression", expr.span)
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            if op == "/":
                return truncating_div(a, b)
            return a - b * truncating_div(a, b)
    return _NoValue("this expression must be computable from the sizes alone", expr.span)


def is_static(expr: ir.Expr, static_names: frozenset[str] | set[str]) -> bool:
    """True when an expression only involves the given names and constants (no loads)."""
    for node in ir.walk(expr):
        if isinstance(node, ir.Name) and node.name not in static_names:
            return False
        if isinstance(node, ir.Load | ir.Search | ir.Rand | ir.Reduce):
            return False
    return True


def render(form: Affine) -> str:
    """Readable text of an affine form, for diagnostics."""
    parts = []
    for name, coef in form.terms:
        term = name if abs(coef) == 1 else f"{abs(coef)}*{name}"
        parts.append(("- " if coef < 0 else "+ ") + term)
    if form.const or not parts:
        parts.append(("- " if form.const < 0 else "+ ") + str(abs(form.const)))
    text = " ".join(parts)
    return text[2:] if text.startswith("+ ") else "-" + text[2:]
