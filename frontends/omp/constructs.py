"""The three kinds of work item: a worksharing loop (``parallel for``, ``for``, ``teams
distribute``...), an explicit ``task``, and a step (a run of plain statements one thread runs).

Loops and steps bind whole arrays; tasks bind their depend sections. A loop's reduction
variables are device scalars: the kernel accumulates into a local and stores the result.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from kernelc import ir
from kernelc.diagnostics import KernelcError
from kernelc.frontends.omp import c_types, loops
from kernelc.frontends.omp import ctree as c
from kernelc.frontends.omp.directives import Directive
from kernelc.frontends.omp.evaluate import concrete, creation_lowerer, i32
from kernelc.frontends.omp.items import Works
from kernelc.frontends.omp.kernels import Local
from kernelc.frontends.omp.order import Team
from kernelc.frontends.omp.sharing import (
    array_attribute,
    check_clauses,
    depends,
    listed,
    lost_write,
)
from kernelc.frontends.omp.state import (
    ArrayVar,
    DeviceScalar,
    Exec,
    Val,
    arrays_in,
    written_in,
)
from kernelc.types import DType


def clause_int(works: Works, clause: c.Clause, ex: Exec) -> int:
    """The compile-time integer argument of a clause such as num_threads(N) or collapse(2)."""
    if len(clause.args) != 1:
        raise KernelcError(f"{clause.name} takes one value", clause.span)
    value = creation_lowerer(works.ctx, ex).index_value(clause.args[0], clause.name)
    return int(concrete(value, ex.instance, works.ctx))


# ------------------------------------------------------------------------------------ loops


def loop(works: Works, d: Directive, body: c.Stmt, ex: Exec, team: Team | None) -> None:
    """A worksharing loop; with ``team``, shared by the threads of a parallel region."""
    loop_ex = replace(ex, thread_known=False) if team is not None else ex
    item = works.emit(
        ("loop", d.span), loop_kernel(works, d, body, loop_ex), "loop", frozenset(), d.span
    )
    if team is not None:
        works.order.collective(team, item.node)
    else:
        works.order.step(ex.thread, item.node)


@dataclass(frozen=True)
class Block:
    """One team's share of a distribute loop: its outer iterations, and the regions (one
    dimension cut to the block) of the arrays it writes."""

    team: int
    teams: int
    param: str  # the kernel's scalar parameter holding the team number
    cuts: dict[str, tuple[int, int]]  # written array -> (cut dimension, index offset)
    slices: dict[str, tuple[ir.Slice, ...]]  # written array -> its region in this block


def loop_kernel(works: Works, d: Directive, body: c.Stmt, ex: Exec, block: Block | None = None):
    """The kernel of a worksharing loop (of one block of it, for a team of a league)."""
    if not isinstance(body, c.For):
        raise KernelcError(f"'#pragma omp {d.name}' must be followed by a for loop", d.span)
    depth = clause_int(works, d.clause("collapse"), ex) if d.clause("collapse") else 1
    loops.perfectly_nested(body, depth, f"#pragma omp {d.name}", d.span)
    canon = loops.canonical(body)
    check_clauses(d, ex)
    sums = _reductions(d, ex)
    privates = _privates(d, ex)
    written = {n: w for n, w in written_in(body, ex, scalars=True).items() if n not in privates}
    for name, where in written.items():
        if isinstance(ex.lookup(name), DeviceScalar) and name not in sums:
            raise KernelcError(
                f"'{name}' is shared by the loop's iterations; assigning it is a race "
                f"(use reduction(+: {name}))",
                where.span,
            )
    uses = {n: u for n, u in works.whole_uses(body, ex, written).items() if n not in privates}
    for name in sums:
        uses[name] = works.scalar_use(ex.lookup(name), written=True)
    if block is not None:
        for name, region in block.slices.items():
            var = ex.lookup(name)
            uses[name] = works.block_use(var, ex.region.device[name], region, block.cuts[name][0])
    builder = works.builder("loop", uses, ex, d.span, body, d)
    prelude: list[ir.Stmt] = []
    post: list[ir.Stmt] = []
    zero = ir.Const(value=0, span=d.span, dtype=DType.I32)
    for name in sums:
        dtype = ex.lookup(name).dtype
        acc = builder.names.fresh(f"{name}_acc")
        load = ir.Load(tensor=name, indices=(zero,), span=d.span, dtype=dtype)
        prelude.append(ir.VarDecl(name=acc, value=load, span=d.span, declared=dtype))
        builder.scopes[0][name] = Local(acc, dtype, True)
        value = ir.Name(name=acc, span=d.span, dtype=dtype)
        post.append(ir.Store(tensor=name, indices=(zero,), op="=", value=value, span=d.span))
    bounds = _block_bounds(builder, canon, block, d.span) if block is not None else None
    (lowered,) = builder.stmt(_with_privates(body, privates) if privates else body)
    if bounds is not None:
        lowered = replace(lowered, lo=bounds[0], hi=bounds[1])
    return builder.finish((*prelude, lowered, *post), tuple(sums))


def _block_bounds(builder, canon: loops.Canonical, block: Block, span) -> tuple[ir.Expr, ir.Expr]:
    """The block's outer iterations: [lo + t*n/T, lo + (t+1)*n/T) for team t of T, n = hi - lo.
    Arrays cut to the block are rebased to its first iteration (plus their index offset)."""
    lo = builder.lowerer.index_value(canon.start, "a loop start")
    hi = builder.lowerer.index_value(canon.bound, "a loop bound")
    team = ir.Name(name=block.param, span=span, dtype=DType.I32)
    builder.scalar_params[block.param] = (
        DType.I32,
        ir.Const(value=block.team, span=span, dtype=DType.I32),
    )
    builder.names.taken.add(block.param)
    n = i32("-", hi, lo, span)
    teams = ir.Const(value=block.teams, span=span, dtype=DType.I32)
    first = i32("+", lo, i32("/", i32("*", team, n, span), teams, span), span)
    after = i32("+", team, ir.Const(value=1, span=span, dtype=DType.I32), span)
    last = i32("+", lo, i32("/", i32("*", after, n, span), teams, span), span)
    for name, (dim, offset) in block.cuts.items():
        start = i32("+", first, ir.Const(value=offset, span=span, dtype=DType.I32), span)
        rank = len(builder.uses[name].shape)
        builder.rebases[name] = tuple(start if k == dim else None for k in range(rank))
    return first, last


def _with_privates(body: c.For, privates: dict[str, DType]) -> c.For:
    """private(x): a fresh x in each iteration of the loop."""
    decls = tuple(
        c.Decl((c_types.c_name(dtype),), (c.Declarator(name, 0, (), None, body.span),), body.span)
        for name, dtype in privates.items()
    )
    return replace(body, body=c.Block((*decls, body.body), body.span))


def _reductions(d: Directive, ex: Exec) -> dict[str, str]:
    found: dict[str, str] = {}
    for clause in d.all("reduction"):
        if clause.modifier is None:
            raise KernelcError(
                "reduction needs an operator and a colon before its variables, e.g. "
                "reduction(+: s)",
                clause.span,
            )
        if clause.modifier not in ("+", "*", "max", "min", "-"):
            raise KernelcError(
                f"reduction operator '{clause.modifier}' is not supported; use +, *, max or min",
                clause.span,
            )
        for item in clause.args:
            if not isinstance(item, c.Name) or not isinstance(ex.lookup(item.name), DeviceScalar):
                raise KernelcError(
                    "a reduction variable must be a scalar declared in the target region (and "
                    "used after the loop)",
                    item.span,
                )
            found[item.name] = clause.modifier
    return found


def _privates(d: Directive, ex: Exec) -> dict[str, DType]:
    found: dict[str, DType] = {}
    for clause in d.all("private"):
        for item in clause.args:
            binding = ex.lookup(item.name) if isinstance(item, c.Name) else None
            if isinstance(binding, ArrayVar):
                raise KernelcError("private arrays are not supported", item.span)
            if isinstance(binding, Val):
                found[item.name] = binding.expr.dtype
            elif isinstance(binding, DeviceScalar):
                found[item.name] = binding.dtype
            else:
                raise KernelcError("expected a scalar declared before the loop", item.span)
    return found


# ------------------------------------------------------------------------------------ tasks


def task(works: Works, d: Directive, body: c.Stmt, ex: Exec) -> None:
    """An explicit task: its depend sections are its regions; it runs when OpenMP allows."""
    check_clauses(d, ex)
    deps = depends(works.ctx, d, ex)
    written = written_in(body, ex, scalars=True)
    uses = {}
    firstprivate: set[str] = set()
    for name, first in arrays_in(body, ex).items():
        binding = ex.lookup(name)
        if isinstance(binding, DeviceScalar):
            if name in written:
                raise KernelcError(
                    f"a task may not assign '{name}', a scalar of the code that created it; "
                    "write an array element",
                    written[name].span,
                )
            uses[name] = works.scalar_use(binding, written=False)
            if listed(d).get(name) != "shared" and not ex.in_parallel:
                firstprivate.add(binding.tensor)
            continue
        if array_attribute(binding, d, ex, first) == "firstprivate":
            if name in written:
                raise lost_write(binding, d, ex, written[name])
            firstprivate.add(ex.region.device[name])
            uses[name] = works.whole_use(binding, ex, False)
            continue
        dep = next((dp for dp in deps if dp.array == name), None)
        if dep is None:
            uses[name] = works.whole_use(binding, ex, name in written)
        else:
            uses[name] = works.section_use(binding, dep, name in written)
    builder = works.builder("task", uses, ex, d.span, body, d)
    built = builder.finish(builder.block((body,)))
    item = works.emit(("task", d.span), built, "task", frozenset(firstprivate), d.span)
    defaults = {n: m.size for n, m in works.ctx.macros.items() if m.size is not None}
    after = works.siblings.match(item.node, deps, ex, works.order.graph, defaults)
    works.order.task(ex.team, ex.thread, item.node, after)


# ------------------------------------------------------------------------------------ steps


def step(works: Works, run: list[c.Stmt], ex: Exec) -> None:
    """Plain statements run by one thread: one sequential kernel, if they write anything."""
    body = c.Block(tuple(run), run[0].span)
    written = written_in(body, ex, scalars=True)
    uses = works.whole_uses(body, ex, written)
    builder = works.builder("step", uses, ex, run[0].span, body, None)
    lowered = builder.block(tuple(run))
    if not written:
        return  # only locals: nothing outlives the statements
    span = run[0].span
    item = works.emit(("step", span), builder.finish(lowered), "step", frozenset(), span)
    works.order.step(ex.thread, item.node)
