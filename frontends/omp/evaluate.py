"""Compile-time values: what the code that creates tasks computes, and how kernelc evaluates it.

That code may use constants, sizes, thread numbers and counters of unrolled loops; a size it
needs as a number (a trip count, a thread count) becomes fixed at its ``#define`` value. It may
never read array data: the task graph would then depend on the data.
"""

from __future__ import annotations

from dataclasses import replace

from kernelc import ir
from kernelc.affine import evaluate as evaluate_size
from kernelc.diagnostics import KernelcError, Span
from kernelc.frontends.omp import ctree as c
from kernelc.frontends.omp.exprs import Context, ExprLowerer
from kernelc.frontends.omp.kernels import poly, sub
from kernelc.frontends.omp.state import DeviceScalar, Exec, GraphScalar, Val
from kernelc.types import DType


def creation_lowerer(ctx: Context, ex: Exec, clause: bool = False) -> ExprLowerer:
    """A lowerer for expressions of the task-creating code (``clause``: a depend or map item)."""
    return ExprLowerer(ctx, CreationResolver(ex, clause))


def thread_query(fn: str, ex: Exec, span: Span) -> ir.Expr:
    """``omp_get_num_threads()`` or ``omp_get_thread_num()`` where the execution is."""
    if fn == "omp_get_num_threads":
        if ex.size is None:
            raise KernelcError(
                "omp_get_num_threads() depends on the number of threads; give the parallel "
                "region num_threads(N)",
                span,
            )
        return ir.Const(value=ex.size, span=span, dtype=DType.I32)
    if not ex.in_parallel:
        return ir.Const(value=0, span=span, dtype=DType.I32)
    if not ex.thread_known:
        raise KernelcError(
            "omp_get_thread_num() is not known here: single and worksharing loops run on "
            "whichever thread the runtime chooses",
            span,
        )
    return ir.Name(name=ex.thread_var, span=span, dtype=DType.I32)


class CreationResolver:
    """Names in the code that creates tasks: compile-time values, never array data."""

    def __init__(self, ex: Exec, clause: bool) -> None:
        self.ex = ex
        self.clause = clause

    def name(self, node: c.Name) -> ir.Expr:
        binding = self.ex.lookup(node.name)
        if binding is None:
            raise KernelcError(f"unknown name '{node.name}'", node.span)
        if isinstance(binding, Val):
            return binding.expr
        if isinstance(binding, GraphScalar):
            return ir.Name(name=node.name, span=node.span, dtype=binding.dtype)
        if isinstance(binding, DeviceScalar):
            raise KernelcError(
                f"'{node.name}' is computed on the device; the code that creates tasks can "
                "only use compile-time values",
                node.span,
            )
        raise KernelcError(
            f"'{node.name}' is an array; using it without an index would be pointer arithmetic",
            node.span,
        )

    def load(self, array: str, indices: list[ir.Expr], node: c.Index) -> ir.Expr:
        what = "this depend section" if self.clause else "this value"
        raise KernelcError(
            f"{what} reads array '{array}', so it is not a compile-time value: the task graph "
            "would depend on data (it must be affine in the sizes and thread numbers)",
            node.span,
        )

    def omp_query(self, fn: str, node: c.Call) -> ir.Expr:
        return thread_query(fn, self.ex, node.span)


class SizeResolver:
    """Array sizes may only use literals and ``#define``s."""

    def __init__(self, array: str) -> None:
        self.array = array

    def name(self, node: c.Name) -> ir.Expr:
        raise KernelcError(
            f"'{self.array}' would be a variable-length array: its size uses '{node.name}', "
            "which is not a compile-time constant; use a literal or a #define",
            node.span,
        )

    def load(self, array: str, indices: list[ir.Expr], node: c.Index) -> ir.Expr:
        raise KernelcError(f"the size of '{self.array}' cannot read an array", node.span)

    def omp_query(self, fn: str, node: c.Call) -> ir.Expr:
        raise KernelcError(f"the size of '{self.array}' cannot call {fn}()", node.span)


def concrete(e: ir.Expr, env: dict[str, int], ctx: Context) -> int | float | bool:
    """Evaluate a compile-time value with C's semantics; the sizes it needs become fixed."""
    match e:
        case ir.Const(value=v):
            return v
        case ir.Name(name=n):
            if n in env:
                return env[n]
            macro = ctx.macros.get(n)
            if macro is not None and macro.size is not None:
                ctx.fixed_used.add(n)
                return macro.size
            raise KernelcError(
                f"this depends on the run-time value of '{n}', but the task graph must be "
                "decided at compile time",
                e.span,
            )
        case ir.Cast(to=to, operand=a):
            v = concrete(a, env, ctx)
            return bool(v) if to == DType.BOOL else (float(v) if to.is_float else int(v))
        case ir.Unary(op=op, operand=a):
            v = concrete(a, env, ctx)
            return {"-": lambda: -v, "!": lambda: not v, "~": lambda: ~v}[op]()
        case ir.Binary(op=op, lhs=a, rhs=b):
            return binary(op, concrete(a, env, ctx), concrete(b, env, ctx))
        case ir.Select(cond=cond, if_true=a, if_false=b):
            return concrete(a if concrete(cond, env, ctx) else b, env, ctx)
        case ir.Intrinsic(fn="min" | "max", args=(a, b)):
            x, y = concrete(a, env, ctx), concrete(b, env, ctx)
            return min(x, y) if e.fn == "min" else max(x, y)
    raise KernelcError("this must be a compile-time value", e.span)


def binary(op: str, x, y):
    """A binary operator on compile-time numbers (C's truncating integer division)."""
    if op in ("/", "%") and isinstance(x, int) and isinstance(y, int):
        if y == 0:
            return 0
        q = abs(x) // abs(y) * (1 if (x >= 0) == (y >= 0) else -1)
        return q if op == "/" else x - y * q
    ops = {
        "+": lambda: x + y,
        "-": lambda: x - y,
        "*": lambda: x * y,
        "/": lambda: x / y,
        "<": lambda: x < y,
        "<=": lambda: x <= y,
        ">": lambda: x > y,
        ">=": lambda: x >= y,
        "==": lambda: x == y,
        "!=": lambda: x != y,
        "&&": lambda: bool(x) and bool(y),
        "||": lambda: bool(x) or bool(y),
        "&": lambda: x & y,
        "|": lambda: x | y,
        "^": lambda: x ^ y,
        "<<": lambda: x << y,
        ">>": lambda: x >> y,
    }
    return ops[op]()


def substitute(e: ir.Expr, values: dict[str, int]) -> ir.Expr:
    """Replace instance variables by their constants, folding what becomes constant (so that
    ``b > 0 ? b - 1 : b`` of a task-creating loop's ``b`` is a number for each task)."""
    match e:
        case ir.Name(name=n) if n in values:
            return ir.Const(value=values[n], span=e.span, dtype=DType.I32)
        case ir.Binary(op=op, lhs=a, rhs=b):
            a, b = substitute(a, values), substitute(b, values)
            if isinstance(a, ir.Const) and isinstance(b, ir.Const):
                return ir.Const(value=binary(op, a.value, b.value), span=e.span, dtype=e.dtype)
            return replace(e, lhs=a, rhs=b)
        case ir.Unary(op=op, operand=a):
            a = substitute(a, values)
            if isinstance(a, ir.Const) and op in ("-", "!"):
                value = -a.value if op == "-" else not a.value
                return ir.Const(value=value, span=e.span, dtype=e.dtype)
            return replace(e, operand=a)
        case ir.Cast(to=to, operand=a):
            a = substitute(a, values)
            if isinstance(a, ir.Const) and not to.is_float:
                value = bool(a.value) if to == DType.BOOL else int(a.value)
                return ir.Const(value=value, span=e.span, dtype=to)
            return replace(e, operand=a)
        case ir.Select(cond=cond, if_true=a, if_false=b):
            cond = substitute(cond, values)
            if isinstance(cond, ir.Const):
                return substitute(a if cond.value else b, values)
            return replace(
                e, cond=cond, if_true=substitute(a, values), if_false=substitute(b, values)
            )
    return e


def relation(a, b, sizes: dict[str, int]) -> str:
    """Whether two regions are the "same", "overlap" partially or are "disjoint" (at sizes)."""
    if a is None or b is None:
        return "same" if a is b else "overlap"
    box_a = [(evaluate_size(s.lo, sizes), evaluate_size(s.hi, sizes)) for s in a]
    box_b = [(evaluate_size(s.lo, sizes), evaluate_size(s.hi, sizes)) for s in b]
    if box_a == box_b:
        return "same"
    if all(lo1 < hi2 and lo2 < hi1 for (lo1, hi1), (lo2, hi2) in zip(box_a, box_b, strict=True)):
        return "overlap"
    return "disjoint"


def spans_whole(lo: ir.Expr | None, length: ir.Expr | None, extent: ir.Expr) -> bool:
    """Whether ``lo:length`` provably covers a whole dimension of extent ``extent``."""
    if lo is not None and poly(lo, {}) != {}:
        return False
    if length is None:
        return True
    a, b = poly(length, {}), poly(extent, {})
    return a is not None and b is not None and sub(a, b) == {}


def i32(op: str, a: ir.Expr, b: ir.Expr, span: Span) -> ir.Expr:
    """An i32 operation, folded when both sides are constants."""
    if isinstance(a, ir.Const) and isinstance(b, ir.Const):
        return ir.Const(value=binary(op, a.value, b.value), span=span, dtype=DType.I32)
    if op == "+" and isinstance(a, ir.Const) and a.value == 0:
        return b
    if op in ("+", "-") and isinstance(b, ir.Const) and b.value == 0:
        return a
    return ir.Binary(op=op, lhs=a, rhs=b, span=span, dtype=DType.I32)
