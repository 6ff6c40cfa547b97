"""Scalar parameters bound to constants, substituted so that the form recognisers see them.

A task that binds a scalar parameter to a constant (an OpenMP team's ``omp_team``, a literal
argument of a graph call, a value a target takes at build time) runs a loop nest whose bounds
are static once the constant is known: ``for i in omp_team * N / 4 .. (omp_team + 1) * N / 4``
is ``for i in 16 .. 32`` for team 1. ``specialise`` gives the task with that kernel: the
constants substituted, the integer expressions they make static folded, the outer loops that
no longer start at 0 rebased to 0 (``b[i - 16]`` becomes ``b[i]``, ``a[i]`` becomes
``a[i + 16]``) and the loops marked parallel again, so a team's nest is a ``Map`` like the
loop it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from kernelc import ir
from kernelc.affine import Affine, affine, evaluate, is_static, value_of
from kernelc.graph import Task
from kernelc.passes.access import mark_parallel
from kernelc.types import DType


def substitute(kernel: ir.Kernel, values: Mapping[str, ir.Const]) -> ir.Kernel:
    """The kernel with each named scalar replaced by its constant in the body."""

    def constant(node):
        if isinstance(node, ir.Name) and node.name in values:
            return replace(values[node.name], span=node.span)
        return node

    return replace(kernel, body=ir.transform(kernel.body, constant))


def specialise(task: Task) -> Task:
    """The task with its constant scalar parameters substituted into its kernel (see above);
    the task itself when it binds none."""
    values = {
        b.param: ir.Const(value=b.constant, span=p.span, dtype=p.dtype)
        for b in task.bindings
        if b.constant is not None
        for p in (task.kernel.param(b.param),)
    }
    if not values:
        return task
    sizes = task.size_env
    kernel = substitute(task.kernel, values)
    body = ir.transform(kernel.body, lambda node: _folded(node, sizes))
    return replace(task, kernel=mark_parallel(replace(kernel, body=_rebased(body, sizes))))


def _folded(node, sizes: dict[str, int]):
    """An i32 operation on a constant, static at these sizes, as its value (not where the
    value would wrap or divide by zero: the kernel keeps the language's semantics there)."""
    if not isinstance(node, ir.Binary | ir.Unary) or node.dtype != DType.I32:
        return node
    if node.op not in ("+", "-", "*", "/", "%"):
        return node
    operands = (node.lhs, node.rhs) if isinstance(node, ir.Binary) else (node.operand,)
    if not any(isinstance(o, ir.Const) for o in operands):
        return node
    if not is_static(node, frozenset(sizes)):
        return node
    value = value_of(node, sizes)
    if value is None or not -(2**31) <= value < 2**31:  # a division by zero, or a wrap
        return node
    return ir.Const(value=value, span=node.span, dtype=node.dtype)


def _rebased(body: tuple[ir.Stmt, ...], sizes: dict[str, int]) -> tuple[ir.Stmt, ...]:
    """The perfectly nested outer loops of ``body`` made to start at 0 where they start at
    another static value; the indices that use them rewritten in the new variable and brought
    to one form (``i - 0`` is ``i``)."""
    if len(body) != 1 or not isinstance(body[0], ir.For):
        return body
    loop = body[0]
    inner = _rebased(loop.body, sizes)
    static = frozenset(sizes)
    if not (is_static(loop.lo, static) and is_static(loop.hi, static)):
        return (replace(loop, body=inner),)
    start = evaluate(loop.lo, sizes)
    span = loop.span
    shifted = ir.Binary(
        op="+",
        lhs=ir.Name(name=loop.var, span=span, dtype=DType.I32),
        rhs=ir.Const(value=start, span=span, dtype=DType.I32),
        span=span,
        dtype=DType.I32,
    )

    def shift(node):
        if isinstance(node, ir.Name) and node.name == loop.var and start:
            return replace(shifted, span=node.span)
        if isinstance(node, ir.Load | ir.Store):
            return replace(node, indices=tuple(_canonical(i, loop.var) for i in node.indices))
        return node

    if not start:
        return (replace(loop, body=ir.transform(inner, shift)),)
    return (
        replace(
            loop,
            lo=ir.Const(value=0, span=loop.lo.span, dtype=DType.I32),
            hi=ir.Const(value=evaluate(loop.hi, sizes) - start, span=loop.hi.span, dtype=DType.I32),
            body=ir.transform(inner, shift),
        ),
    )


def _canonical(index: ir.Expr, var: str) -> ir.Expr:
    """An affine index in ``var`` as ``c1 * n1 + ... + k`` (``i + 16 - 16`` is ``i``); others
    unchanged."""
    form = affine(index)
    if form is None or var not in form.names:
        return index
    return _expr(form, index.span)


def _expr(form: Affine, span) -> ir.Expr:
    def const(value: int) -> ir.Const:
        return ir.Const(value=value, span=span, dtype=DType.I32)

    def binary(op: str, lhs: ir.Expr, rhs: ir.Expr) -> ir.Binary:
        return ir.Binary(op=op, lhs=lhs, rhs=rhs, span=span, dtype=DType.I32)

    result: ir.Expr | None = None
    for name, coef in form.terms:
        term: ir.Expr = ir.Name(name=name, span=span, dtype=DType.I32)
        if abs(coef) != 1:
            term = binary("*", const(abs(coef)), term)
        if result is None and coef < 0:
            result = ir.Unary(op="-", operand=term, span=span, dtype=DType.I32)
        elif result is None:
            result = term
        else:
            result = binary("+" if coef > 0 else "-", result, term)
    if result is None:
        return const(form.const)
    if form.const:
        result = binary("+" if form.const > 0 else "-", result, const(abs(form.const)))
    return result
