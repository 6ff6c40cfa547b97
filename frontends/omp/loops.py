"""Canonical C ``for`` loops, the only loops the subset has (OpenMP requires the same form).

``for (int i = start; i < bound; i += step)`` and its variants (``<=``, ``>``, ``>=``, ``!=``,
``i++``, ``--i``, ``i = i + c``) become an IR ``For`` over ``0 .. trips`` or, for the common
``i++`` with ``<``, directly over ``start .. bound``.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernelc import ir
from kernelc.diagnostics import KernelcError, Span
from kernelc.frontends.omp import c_types
from kernelc.frontends.omp import ctree as c
from kernelc.frontends.omp.exprs import ExprLowerer
from kernelc.types import DType


@dataclass(frozen=True)
class Canonical:
    var: str
    var_span: Span
    start: c.Expr
    bound: c.Expr
    op: str  # "<", "<=", ">", ">="
    step: int  # positive; the direction follows from op
    span: Span

    @property
    def increasing(self) -> bool:
        return self.op in ("<", "<=")


def canonical(s: c.For) -> Canonical:
    """Check that a loop has the canonical form and return its parts."""
    init = s.init
    if not (isinstance(init, c.Decl) and len(init.declarators) == 1):
        raise KernelcError(
            "a loop must declare its variable in the for statement, as in "
            "'for (int i = 0; i < n; i++)'",
            _span_of(init, s.span),
        )
    decl = init.declarators[0]
    if c_types.scalar_type(init.words, init.span) != DType.I32 or decl.dims or decl.stars:
        raise KernelcError("a loop variable must be an int", decl.span)
    if decl.init is None or isinstance(decl.init, c.InitList):
        raise KernelcError(f"loop variable '{decl.name}' needs a start value", decl.span)
    var = decl.name
    op, bound = _condition(s.cond, var, s.span)
    step = _step(s.step, var, s.span)
    if (step > 0) != (op in ("<", "<=", "!=")):
        raise KernelcError(
            f"the loop condition and the step of '{var}' go in opposite directions", s.span
        )
    if op == "!=":
        op = "<" if step > 0 else ">"
        if abs(step) != 1:
            raise KernelcError("a loop with '!=' must step by 1", s.span)
    assigned = assigned_names(s.body)
    if var in assigned:
        raise KernelcError(
            f"the loop variable '{var}' is modified in the loop body; a canonical loop only "
            "changes it in its increment",
            s.span,
        )
    changed = names_in(bound) & assigned
    if changed:
        raise KernelcError(
            f"the loop bound uses '{sorted(changed)[0]}', which the loop body modifies",
            bound.span,
        )
    return Canonical(var, decl.span, decl.init, bound, op, abs(step), s.span)


def ir_loop(
    loop: Canonical,
    lowerer: ExprLowerer,
    var_name: str,
    trip_name: str,
    body: tuple[ir.Stmt, ...],
) -> ir.For:
    """The IR loop, with ``var_name`` as the IR name of the C variable."""
    start = lowerer.index_value(loop.start, "a loop start")
    bound = lowerer.index_value(loop.bound, "a loop bound")
    span = loop.var_span
    if loop.step == 1 and loop.increasing:
        hi = bound if loop.op == "<" else _add(bound, 1, span)
        return ir.For(var=var_name, lo=start, hi=hi, body=body, span=span)
    distance = _sub(bound, start, span) if loop.increasing else _sub(start, bound, span)
    extra = loop.step - 1 if loop.op in ("<", ">") else loop.step
    trips = _div(_add(distance, extra, span), loop.step, span)
    t = ir.Name(name=trip_name, span=span, dtype=DType.I32)
    offset = _mul(t, loop.step, span)
    value = (
        ir.Binary(op="+", lhs=start, rhs=offset, span=span, dtype=DType.I32)
        if loop.increasing
        else ir.Binary(op="-", lhs=start, rhs=offset, span=span, dtype=DType.I32)
    )
    let = ir.Let(name=var_name, value=value, span=span, declared=DType.I32)
    zero = ir.Const(value=0, span=span, dtype=DType.I32)
    return ir.For(var=trip_name, lo=zero, hi=trips, body=(let, *body), span=span)


def iterations(loop: Canonical, start: int, bound: int) -> range:
    """The values the loop variable takes, for a loop unrolled at compile time."""
    if loop.increasing:
        return range(start, bound + (1 if loop.op == "<=" else 0), loop.step)
    return range(start, bound - (1 if loop.op == ">=" else 0), -loop.step)


def perfectly_nested(s: c.For, depth: int, directive: str, span: Span) -> list[c.For]:
    """The ``depth`` loops of a ``collapse(depth)`` nest."""
    loops = [s]
    while len(loops) < depth:
        body = loops[-1].body
        while isinstance(body, c.Block) and len(body.items) == 1:
            body = body.items[0]
        if not isinstance(body, c.For):
            raise KernelcError(
                f"'{directive}' with collapse({depth}) needs {depth} perfectly nested loops; "
                f"loop {len(loops) + 1} is missing",
                _span_of(body, span),
            )
        loops.append(body)
    return loops


def _condition(cond: c.Expr | None, var: str, span: Span) -> tuple[str, c.Expr]:
    flip = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "!=": "!="}
    if isinstance(cond, c.Binary) and cond.op in flip:
        if isinstance(cond.lhs, c.Name) and cond.lhs.name == var:
            return cond.op, cond.rhs
        if isinstance(cond.rhs, c.Name) and cond.rhs.name == var:
            return flip[cond.op], cond.lhs
    raise KernelcError(
        f"the loop condition must compare '{var}' with a bound (<, <=, >, >= or !=)",
        _span_of(cond, span),
    )


def _step(step: c.Expr | None, var: str, span: Span) -> int:
    message = (
        f"the loop increment must be {var}++, {var}--, {var} += c or {var} -= c with a constant c"
    )
    match step:
        case c.IncDec(operand=c.Name(name=n), op=op) if n == var:
            return 1 if op == "++" else -1
        case c.Assign(target=c.Name(name=n), op="+=" | "-=", value=c.IntLit(value=k)) if (
            n == var and k > 0
        ):
            return k if step.op == "+=" else -k
        case c.Assign(
            target=c.Name(name=n),
            op="=",
            value=c.Binary(op="+" | "-", lhs=c.Name(name=m), rhs=c.IntLit(value=k)),
        ) if n == var and m == var and k > 0:
            return k if step.value.op == "+" else -k
    raise KernelcError(message, _span_of(step, span))


def assigned_names(node: object) -> set[str]:
    """Names assigned (=, op=, ++, --) anywhere inside a statement or expression."""
    found: set[str] = set()
    for n in walk(node):
        if isinstance(n, c.Assign | c.IncDec):
            target = n.target if isinstance(n, c.Assign) else n.operand
            if isinstance(target, c.Name):
                found.add(target.name)
    return found


def names_in(node: object) -> set[str]:
    return {n.name for n in walk(node) if isinstance(n, c.Name)}


def walk(node: object):
    """Every syntax node under ``node`` (statements, expressions, declarators), depth first."""
    if node is None:
        return
    yield node
    if isinstance(node, tuple | list):
        for item in node:
            yield from walk(item)
        return
    fields = getattr(node, "__dataclass_fields__", None)
    if not fields:
        return
    for name in fields:
        if name in ("span", "words_span"):
            continue
        value = getattr(node, name)
        if isinstance(value, tuple | list) or hasattr(value, "__dataclass_fields__"):
            yield from walk(value)


def _span_of(node: object, fallback: Span) -> Span:
    return getattr(node, "span", fallback) if node is not None else fallback


def _add(e: ir.Expr, k: int, span: Span) -> ir.Expr:
    if isinstance(e, ir.Const):
        return ir.Const(value=e.value + k, span=span, dtype=DType.I32)
    return ir.Binary(
        op="+", lhs=e, rhs=ir.Const(value=k, span=span, dtype=DType.I32), span=span, dtype=e.dtype
    )


def _sub(a: ir.Expr, b: ir.Expr, span: Span) -> ir.Expr:
    if isinstance(a, ir.Const) and isinstance(b, ir.Const):
        return ir.Const(value=a.value - b.value, span=span, dtype=DType.I32)
    return ir.Binary(op="-", lhs=a, rhs=b, span=span, dtype=DType.I32)


def _mul(e: ir.Expr, k: int, span: Span) -> ir.Expr:
    if k == 1:
        return e
    return ir.Binary(
        op="*", lhs=e, rhs=ir.Const(value=k, span=span, dtype=DType.I32), span=span, dtype=e.dtype
    )


def _div(e: ir.Expr, k: int, span: Span) -> ir.Expr:
    if k == 1:
        return e
    return ir.Binary(
        op="/", lhs=e, rhs=ir.Const(value=k, span=span, dtype=DType.I32), span=span, dtype=e.dtype
    )
