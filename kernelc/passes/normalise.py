"""Normalisation: rewrite equivalent forms into the one that backends recognise.

C kernels (and some DSL kernels) accumulate with a mutable local::

    var acc: f32 = 0;
    for k in lo .. hi { acc += e; }
    c[i, j] = acc;

which is, operation for operation, ``c[i, j] = sum(k in lo .. hi) e`` (a left-to-right fold from
0 in the same type). Backends map ``sum`` to their native idioms (the packed GEMM kernel, CSL's
matrix products), so the rewrite turns the loop into a ``sum`` and, when the accumulator only
feeds the next store, folds it into that store. The result is bit-for-bit the same.
"""

from __future__ import annotations

from dataclasses import replace

from kernelc import ir


def raise_accumulators(kernel: ir.Kernel) -> ir.Kernel:
    """The kernel with every zero-initialised accumulator loop turned into a ``sum``."""
    whole = kernel.body

    def rewrite(body: tuple[ir.Stmt, ...], i: int):
        reduction = _accumulation(body, i, whole)
        if reduction is None:
            return None
        decl, total = reduction
        following = body[i + 2] if i + 2 < len(body) else None
        if _stores_only(following, decl.name) and _uses(whole, decl.name) == 1:
            return (replace(following, value=total),), 3
        return (ir.Let(name=decl.name, value=total, span=decl.span, declared=decl.declared),), 2

    return replace(kernel, body=ir.rewrite_blocks(whole, rewrite))


def _accumulation(body, i: int, whole) -> tuple[ir.VarDecl, ir.Reduce] | None:
    """``var acc = 0; for k in lo .. hi { acc += e; }`` at ``body[i]``, as (decl, sum)."""
    if i + 1 >= len(body):
        return None
    decl, loop = body[i], body[i + 1]
    if not (isinstance(decl, ir.VarDecl) and isinstance(loop, ir.For)):
        return None
    start = decl.value
    if not (isinstance(start, ir.Const) and start.value == 0 and decl.declared is not None):
        return None
    if not decl.declared.is_numeric or len(loop.body) != 1:
        return None
    (update,) = loop.body
    if not (isinstance(update, ir.Assign) and update.name == decl.name and update.op == "+="):
        return None
    if _mentions(update.value, decl.name) or ir.assignments(whole, decl.name) != 1:
        return None
    total = ir.Reduce(
        op="sum",
        var=loop.var,
        lo=loop.lo,
        hi=loop.hi,
        body=update.value,
        span=loop.span,
        dtype=decl.declared,
    )
    return decl, total


def _stores_only(stmt: ir.Stmt | None, name: str) -> bool:
    """A plain store of exactly the accumulator, whose indices do not read it."""
    return (
        isinstance(stmt, ir.Store)
        and stmt.op == "="
        and isinstance(stmt.value, ir.Name)
        and stmt.value.name == name
        and not any(_mentions(i, name) for i in stmt.indices)
    )


def _mentions(expr: ir.Expr, name: str) -> bool:
    return any(isinstance(n, ir.Name) and n.name == name for n in ir.walk(expr))


def _uses(body: tuple[ir.Stmt, ...], name: str) -> int:
    return sum(1 for n in ir.walk_body(body) if isinstance(n, ir.Name) and n.name == name)
