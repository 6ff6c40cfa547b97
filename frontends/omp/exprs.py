"""Lowering of C expressions to typed IR expressions.

What a name means depends on where the expression is: inside a kernel body it is a local, a
captured value or an array; in the code that creates tasks it is a compile-time value. A
:class:`Resolver` answers that question; :class:`ExprLowerer` does the rest (macros, C's
conversions, math functions, inlined helper functions) the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from kernelc import ir
from kernelc.diagnostics import KernelcError, Span
from kernelc.frontends.omp import c_types
from kernelc.frontends.omp import ctree as c
from kernelc.frontends.omp.macros import Macro
from kernelc.types import DType

# C math functions of the subset: name -> (IR intrinsic, arity, float arguments?)
MATH = {
    "sqrtf": ("sqrt", 1, True),
    "expf": ("exp", 1, True),
    "logf": ("log", 1, True),
    "fabsf": ("abs", 1, True),
    "fminf": ("min", 2, True),
    "fmaxf": ("max", 2, True),
    "floorf": ("floor", 1, True),
    "fmaf": ("fma", 3, True),
    "abs": ("abs", 1, False),
}
DOUBLE_MATH = {"sqrt", "exp", "log", "fabs", "fmin", "fmax", "floor", "fma", "pow", "powf"}
ALLOCATION = {"malloc", "calloc", "realloc", "aligned_alloc", "free", "alloca", "posix_memalign"}
OMP_QUERIES = {"omp_get_thread_num", "omp_get_num_threads"}


class Resolver(Protocol):
    """What names and array elements mean where an expression is lowered."""

    def name(self, node: c.Name) -> ir.Expr: ...

    def load(self, array: str, indices: list[ir.Expr], node: c.Index) -> ir.Expr: ...

    def omp_query(self, fn: str, node: c.Call) -> ir.Expr: ...


@dataclass
class Context:
    """Module-wide facts every lowering needs: macros, which sizes are fixed, helpers."""

    macros: dict[str, Macro]
    fixed: frozenset[str]
    helpers: dict[str, c.Function]
    fixed_used: set[str]


class ExprLowerer:
    def __init__(self, ctx: Context, resolver: Resolver, inlining: tuple[str, ...] = ()) -> None:
        self.ctx = ctx
        self.resolver = resolver
        self.inlining = inlining
        self.expanding: tuple[str, ...] = ()

    # ------------------------------------------------------------------------------ entry
    def lower(self, e: c.Expr) -> ir.Expr:
        match e:
            case c.Name():
                return self.name(e)
            case c.IntLit():
                return self.int_literal(e)
            case c.FloatLit():
                return self.float_literal(e)
            case c.Unary():
                return self.unary(e)
            case c.Binary():
                return self.binary(e)
            case c.Ternary():
                cond = c_types.truth(self.lower(e.cond))
                a, b = self.lower(e.if_true), self.lower(e.if_false)
                dtype = (
                    DType.BOOL
                    if a.dtype == b.dtype == DType.BOOL
                    else c_types.common(a.dtype, b.dtype)
                )
                a, b = c_types.convert(a, dtype), c_types.convert(b, dtype)
                return ir.Select(cond=cond, if_true=a, if_false=b, span=e.span, dtype=dtype)
            case c.Cast():
                if e.to.stars:
                    raise KernelcError("pointer casts are not supported", e.span)
                to = c_types.scalar_type(e.to.words, e.to.span)
                return c_types.convert(self.lower(e.operand), to)
            case c.Index():
                return self.index(e)
            case c.Call():
                return self.call(e)
            case c.Assign() | c.IncDec():
                raise KernelcError(
                    "assignments inside expressions are not supported; assign in a statement "
                    "of its own",
                    e.span,
                )
            case c.Comma():
                raise KernelcError("the comma operator is not supported", e.span)
            case c.Other():
                raise KernelcError(_other_message(e.what), e.span)
            case c.Section():
                raise KernelcError("array sections are only allowed in OpenMP clauses", e.span)
        raise KernelcError("this expression is not supported", e.span)

    def index_value(self, e: c.Expr, what: str = "an array index") -> ir.Expr:
        """An expression used as an index or bound: an integer, converted to int."""
        value = self.lower(e)
        if value.dtype.is_float:
            raise KernelcError(f"{what} must be an integer, not float", e.span)
        return c_types.convert(value, DType.I32)

    # ---------------------------------------------------------------------------- leaves
    def name(self, e: c.Name) -> ir.Expr:
        macro = self.ctx.macros.get(e.name)
        if macro is not None:
            return self.macro(macro, e)
        return self.resolver.name(e)

    def macro(self, macro: Macro, use: c.Name) -> ir.Expr:
        if macro.body is None:
            raise KernelcError(f"macro '{macro.name}' has no value", use.span)
        if macro.size is not None:
            if macro.name in self.ctx.fixed:
                self.ctx.fixed_used.add(macro.name)
                return ir.Const(value=macro.size, span=use.span, dtype=DType.I32)
            return ir.Name(name=macro.name, span=use.span, dtype=DType.I32)
        if macro.name in self.expanding:
            raise KernelcError(f"macro '{macro.name}' expands to itself", use.span)
        self.expanding += (macro.name,)
        try:
            return self.lower(macro.body)
        finally:
            self.expanding = self.expanding[:-1]

    def int_literal(self, e: c.IntLit) -> ir.Expr:
        if "l" in e.suffix:
            raise KernelcError("long integer constants are not supported", e.span)
        if "u" in e.suffix:
            if e.value >= 2**32:
                raise KernelcError(f"constant {e.value} does not fit in unsigned", e.span)
            return c_types.const(e.value, DType.U32, e.span)
        if e.value >= 2**31:
            raise KernelcError(
                f"constant {e.value} does not fit in int (C would make it long)", e.span
            )
        return c_types.const(e.value, DType.I32, e.span)

    def float_literal(self, e: c.FloatLit) -> ir.Expr:
        if e.suffix != "f":
            kind = "long double" if e.suffix == "l" else "double"
            raise KernelcError(
                f"'{e.text}' is a {kind} constant, and C would compute this expression in "
                f"{kind}; write '{e.text.rstrip('lL')}f' (kernelc computes in float)",
                e.span,
            )
        return c_types.const(float(np.float32(e.value)), DType.F32, e.span)

    # ----------------------------------------------------------------------- operators
    def unary(self, e: c.Unary) -> ir.Expr:
        if e.op in ("*", "&"):
            what = "dereference" if e.op == "*" else "address-of"
            raise KernelcError(
                f"pointer {what} ('{e.op}') is not supported: kernelc arrays are indexed, "
                "never accessed through pointers (pointer arithmetic would make the regions "
                "a task touches unknowable)",
                e.span,
            )
        operand = self.lower(e.operand)
        if e.op == "!":
            return ir.Unary(op="!", operand=c_types.truth(operand), span=e.span, dtype=DType.BOOL)
        dtype = c_types.promoted(operand.dtype)
        operand = c_types.convert(operand, dtype)
        if e.op == "+":
            return operand
        if e.op == "~":
            if dtype.is_float:
                raise KernelcError("operator '~' needs an integer, not float", e.span)
            return ir.Unary(op="~", operand=operand, span=e.span, dtype=dtype)
        if isinstance(operand, ir.Const):
            return ir.Const(value=_wrap(-operand.value, dtype), span=e.span, dtype=dtype)
        if dtype == DType.U32:
            zero = c_types.const(0, DType.U32, e.span)
            return ir.Binary(op="-", lhs=zero, rhs=operand, span=e.span, dtype=dtype)
        return ir.Unary(op="-", operand=operand, span=e.span, dtype=dtype)

    def binary(self, e: c.Binary) -> ir.Expr:
        lhs, rhs = self.lower(e.lhs), self.lower(e.rhs)
        op = e.op
        if op in ("&&", "||"):
            lhs, rhs = c_types.truth(lhs), c_types.truth(rhs)
            return ir.Binary(op=op, lhs=lhs, rhs=rhs, span=e.span, dtype=DType.BOOL)
        if op in ("<<", ">>"):
            dtype = c_types.promoted(lhs.dtype)
            if dtype.is_float or rhs.dtype.is_float:
                raise KernelcError(f"operator '{op}' needs integers", e.span)
            lhs, rhs = c_types.convert(lhs, dtype), c_types.convert(rhs, dtype)
            return ir.Binary(op=op, lhs=lhs, rhs=rhs, span=e.span, dtype=dtype)
        dtype = c_types.common(lhs.dtype, rhs.dtype)
        if op in ("%", "&", "|", "^") and dtype.is_float:
            hint = "; use fmodf... which kernelc does not support either" if op == "%" else ""
            raise KernelcError(f"operator '{op}' needs integers, not float{hint}", e.span)
        lhs, rhs = c_types.convert(lhs, dtype), c_types.convert(rhs, dtype)
        if op in ("==", "!=", "<", "<=", ">", ">="):
            return ir.Binary(op=op, lhs=lhs, rhs=rhs, span=e.span, dtype=DType.BOOL)
        folded = _fold(op, lhs, rhs, dtype)
        if folded is not None:
            return ir.Const(value=folded, span=e.span, dtype=dtype)
        return ir.Binary(op=op, lhs=lhs, rhs=rhs, span=e.span, dtype=dtype)

    # -------------------------------------------------------------------- arrays, calls
    def index(self, e: c.Index) -> ir.Expr:
        base, parts = flatten_index(e)
        for part in parts:
            if isinstance(part, c.Section):
                raise KernelcError("array sections are only allowed in OpenMP clauses", part.span)
        if not isinstance(base, c.Name):
            self.lower(base)  # an array in arithmetic reports the pointer arithmetic
            raise KernelcError("only named arrays can be indexed", e.span)
        indices = [self.index_value(p) for p in parts]
        return self.resolver.load(base.name, indices, e)

    def call(self, e: c.Call) -> ir.Expr:
        if not isinstance(e.fn, c.Name):
            raise KernelcError("only named functions can be called", e.span)
        fn = e.fn.name
        if fn in ALLOCATION:
            self.allocation_error(fn, e.span)
        if fn in OMP_QUERIES:
            if e.args:
                raise KernelcError(f"{fn}() takes no arguments", e.span)
            return self.resolver.omp_query(fn, e)
        if fn in MATH:
            return self.math(fn, e)
        if fn in DOUBLE_MATH:
            raise KernelcError(
                f"'{fn}' computes in double; use the float function '{fn}f'"
                + (" (not supported either)" if fn in ("pow", "powf") else ""),
                e.span,
            )
        helper = self.ctx.helpers.get(fn)
        if helper is not None:
            return self.inline(helper, e)
        raise KernelcError(
            f"call to '{fn}' is not supported; kernelc knows "
            f"{', '.join(sorted(MATH))}, omp_get_thread_num, omp_get_num_threads and the "
            "functions of this file",
            e.fn.span,
        )

    @staticmethod
    def allocation_error(fn: str, span: Span) -> None:
        raise KernelcError(
            f"dynamic allocation ('{fn}') is not supported: every tensor of a static task graph "
            "has a size fixed at compile time; declare a statically sized array",
            span,
        )

    def math(self, fn: str, e: c.Call) -> ir.Expr:
        intrinsic, arity, is_float = MATH[fn]
        if len(e.args) != arity:
            raise KernelcError(f"{fn} takes {arity} argument{'s' if arity > 1 else ''}", e.span)
        args = [self.lower(a) for a in e.args]
        if is_float:
            args = [c_types.convert(a, DType.F32) for a in args]
        else:
            if any(a.dtype.is_float for a in args):
                raise KernelcError("abs takes an int; use fabsf for float", e.span)
            args = [c_types.convert(a, DType.I32) for a in args]
        return ir.Intrinsic(fn=intrinsic, args=tuple(args), span=e.span, dtype=args[0].dtype)

    def inline(self, helper: c.Function, e: c.Call) -> ir.Expr:
        if helper.name in self.inlining:
            raise KernelcError(
                f"recursive call to '{helper.name}': recursion is not supported, because a "
                "static task graph cannot grow while it runs",
                e.span,
            )
        if helper.body is None:
            raise KernelcError(f"function '{helper.name}' is declared but not defined", e.span)
        if len(e.args) != len(helper.params):
            raise KernelcError(
                f"'{helper.name}' takes {len(helper.params)} argument(s), got {len(e.args)}",
                e.span,
            )
        args = {}
        for param, arg in zip(helper.params, e.args, strict=True):
            if param.stars or param.dims:
                raise KernelcError(
                    f"helper function '{helper.name}' may only take scalars ('{param.name}' is "
                    "an array or pointer)",
                    param.span,
                )
            dtype = c_types.scalar_type(param.words, param.span)
            args[param.name] = c_types.convert(self.lower(arg), dtype)
        returns = c_types.scalar_type(helper.words, helper.span, allow_void=True)
        if returns is None or helper.stars:
            raise KernelcError(
                f"helper function '{helper.name}' must return a scalar value", helper.span
            )
        scope = _HelperScope(args, helper, self)
        return c_types.convert(scope.evaluate(), returns)


def flatten_index(e: c.Index) -> tuple[c.Expr, list[c.Expr | c.Section]]:
    """``a[i][j]`` as (a, [i, j])."""
    parts: list[c.Expr | c.Section] = []
    node: c.Expr = e
    while isinstance(node, c.Index):
        parts.append(node.index)
        node = node.base
    return node, parts[::-1]


class _HelperScope:
    """Inlines a helper function: scalar declarations, then one return statement."""

    def __init__(self, args: dict[str, ir.Expr], helper: c.Function, caller: ExprLowerer):
        self.values = dict(args)
        self.helper = helper
        self.lowerer = ExprLowerer(caller.ctx, self, caller.inlining + (helper.name,))

    def evaluate(self) -> ir.Expr:
        items = self.helper.body.items
        for stmt in items[:-1]:
            if not isinstance(stmt, c.Decl):
                raise KernelcError(
                    f"helper function '{self.helper.name}' may only declare scalars and then "
                    "return a value",
                    stmt.span,
                )
            dtype = c_types.scalar_type(stmt.words, stmt.span)
            for d in stmt.declarators:
                if d.stars or d.dims or d.init is None or isinstance(d.init, c.InitList):
                    raise KernelcError("expected an initialised scalar", d.span)
                self.values[d.name] = c_types.convert(self.lowerer.lower(d.init), dtype)
        last = items[-1] if items else None
        if not isinstance(last, c.Return) or last.value is None:
            raise KernelcError(
                f"helper function '{self.helper.name}' must end with 'return value;'",
                last.span if last is not None else self.helper.span,
            )
        return self.lowerer.lower(last.value)

    def name(self, node: c.Name) -> ir.Expr:
        if node.name in self.values:
            return self.values[node.name]
        raise KernelcError(
            f"'{node.name}' is not a parameter or local of '{self.helper.name}'", node.span
        )

    def load(self, array: str, indices: list[ir.Expr], node: c.Index) -> ir.Expr:
        raise KernelcError(
            f"helper function '{self.helper.name}' cannot read arrays; pass values", node.span
        )

    def omp_query(self, fn: str, node: c.Call) -> ir.Expr:
        raise KernelcError(f"{fn}() is not supported inside helper functions", node.span)


def _wrap(value: int | float, dtype: DType) -> int | float:
    if dtype == DType.I32:
        return (int(value) + 2**31) % 2**32 - 2**31
    if dtype == DType.U32:
        return int(value) % 2**32
    return value


def _fold(op: str, a: ir.Expr, b: ir.Expr, dtype: DType) -> int | float | None:
    """Fold integer arithmetic on two constants with C's semantics (wrap, truncation)."""
    if not (isinstance(a, ir.Const) and isinstance(b, ir.Const)) or dtype.is_float:
        return None
    x, y = int(a.value), int(b.value)
    ops: dict[str, Callable[[int, int], int | None]] = {
        "+": lambda p, q: p + q,
        "-": lambda p, q: p - q,
        "*": lambda p, q: p * q,
        "/": lambda p, q: _truncating(p, q) if q else None,
        "%": lambda p, q: p - q * _truncating(p, q) if q else None,
        "&": lambda p, q: p & q,
        "|": lambda p, q: p | q,
        "^": lambda p, q: p ^ q,
    }
    if op not in ops:
        return None
    result = ops[op](x, y)
    return None if result is None else _wrap(result, dtype)


def _truncating(p: int, q: int) -> int:
    """C's integer division: the quotient rounded towards zero."""
    return abs(p) // abs(q) * (1 if (p >= 0) == (q >= 0) else -1)


def _other_message(what: str) -> str:
    return {
        "sizeof": "sizeof is not supported (it is only needed for pointer arithmetic and "
        "allocation, which kernelc does not support)",
        "a string": "strings are not supported",
        "a character constant": "character constants are not supported",
        "a member access": "structs are not supported",
    }.get(what, f"{what} is not supported")
