"""A league of teams: ``teams num_teams(T)`` with a ``distribute`` loop is replicated into T
tasks, each running one block of the outer iterations (the study's graph replication).

Each team's task reads what it reads whole, and writes its block of each written array: the
block is cut along the dimension the outer loop variable indexes (``y[i + c][...]``). When the
writes do not allow such a cut (or the loop has a reduction), the loop stays one task and the
target spreads it.
"""

from __future__ import annotations

from kernelc import ir
from kernelc.affine import evaluate
from kernelc.diagnostics import KernelcError
from kernelc.frontends.omp import ctree as c
from kernelc.frontends.omp import loops
from kernelc.frontends.omp.constructs import Block, loop, loop_kernel
from kernelc.frontends.omp.directives import Directive
from kernelc.frontends.omp.evaluate import creation_lowerer, i32, substitute
from kernelc.frontends.omp.items import Works
from kernelc.frontends.omp.sharing import section_value
from kernelc.frontends.omp.state import ArrayVar, Exec
from kernelc.types import DType


def distribute(works: Works, d: Directive, body: c.Stmt, ex: Exec, teams: int) -> None:
    whole = loop_kernel(works, d, body, ex)
    cuts = _cuts(whole.kernel)
    bounds = _outer_bounds(works, body, ex)
    if teams == 1 or d.clause("reduction") or cuts is None or bounds is None:
        loop(works, d, body, ex, None)
        return
    param = works.memory.names.fresh("omp_team")
    sizes = {n: m.size for n, m in works.ctx.macros.items() if m.size is not None}
    blocks = []
    for team in range(teams):
        slices = {}
        for name, (dim, offset) in cuts.items():
            var: ArrayVar = ex.lookup(name)
            slices[name] = _region(var, dim, offset, bounds, team, teams)
            if not _inside(slices[name], var, sizes):
                loop(works, d, body, ex, None)
                return
        blocks.append(Block(team, teams, param, cuts, slices))
    nodes = []
    for block in blocks:
        built = loop_kernel(works, d, body, ex, block)
        nodes.append(works.emit(("loop", d.span), built, "loop", frozenset(), d.span).node)
    works.order.league(ex.thread, nodes)


def _cuts(kernel: ir.Kernel) -> dict[str, tuple[int, int]] | None:
    """For each written array, the dimension indexed by the outer loop variable plus a fixed
    offset in every access (reads of it included); None when some array has none."""
    outer = next(s for s in kernel.body if isinstance(s, ir.For))
    cuts: dict[str, tuple[int, int]] = {}
    for out in kernel.outputs:
        accesses = [
            n.indices
            for n in ir.walk_body(kernel.body)
            if isinstance(n, ir.Load | ir.Store) and n.tensor == out.name
        ]
        found = None
        for dim in range(len(out.shape)):
            offsets = {_offset(index[dim], outer.var) for index in accesses}
            if len(offsets) == 1 and None not in offsets:
                found = (dim, offsets.pop())
                break
        if found is None:
            return None
        cuts[out.name] = found
    return cuts


def _offset(index: ir.Expr, var: str) -> int | None:
    match index:
        case ir.Name(name=n) if n == var:
            return 0
        case ir.Binary(op="+" | "-", lhs=ir.Name(name=n), rhs=ir.Const(value=k)) if n == var:
            return k if index.op == "+" else -k
    return None


def _outer_bounds(works: Works, body: c.For, ex: Exec) -> tuple[ir.Expr, ir.Expr] | None:
    """The outer loop's [start, bound) as size expressions, when it counts up by one."""
    canon = loops.canonical(body)
    if not (canon.increasing and canon.step == 1):
        return None
    lowerer = creation_lowerer(works.ctx, ex)
    try:
        start = section_value(works.ctx, lowerer.index_value(canon.start), ex, canon.span)
        bound = section_value(works.ctx, lowerer.index_value(canon.bound), ex, canon.span)
    except KernelcError:
        return None  # bounds from data or run-time scalars: not known when building the graph
    if canon.op == "<=":
        bound = i32("+", bound, ir.Const(value=1, span=canon.span, dtype=DType.I32), canon.span)
    return start, bound


def _region(var: ArrayVar, dim: int, offset: int, bounds, team: int, teams: int):
    """The block of ``var`` team ``team`` writes: its share of the iterations, shifted."""
    start, bound = bounds
    span = var.span
    n = i32("-", bound, start, span)

    def at(k: int) -> ir.Expr:
        share = i32("/", i32("*", ir.Const(value=k, span=span, dtype=DType.I32), n, span),
                    ir.Const(value=teams, span=span, dtype=DType.I32), span)  # fmt: skip
        return substitute(i32("+", i32("+", start, share, span), _const(offset, span), span), {})

    slices = []
    for k, extent in enumerate(var.dims):
        if k == dim:
            slices.append(ir.Slice(lo=at(team), hi=at(team + 1), span=span))
        else:
            slices.append(ir.Slice(lo=_const(0, span), hi=extent, span=span))
    return tuple(slices)


def _inside(slices: tuple[ir.Slice, ...], var: ArrayVar, sizes: dict[str, int]) -> bool:
    for s, extent in zip(slices, var.dims, strict=True):
        lo, hi, n = evaluate(s.lo, sizes), evaluate(s.hi, sizes), evaluate(extent, sizes)
        if not 0 <= lo <= hi <= n:
            return False
    return True


def _const(k: int, span) -> ir.Const:
    return ir.Const(value=k, span=span, dtype=DType.I32)
