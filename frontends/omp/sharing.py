"""Task clauses: OpenMP's data-sharing rules for the arrays a task touches, and depend items.

A task sees an array parameter's elements as shared (the pointer is copied, the data is not). A
true array (declared in the function) is shared when the task is created inside a parallel
region, and firstprivate in a target region without one, where the array is not shared by a
team: the task then works on a copy made when it was created, and its writes are lost.

Depend sections must be compile-time: sizes, constants, thread numbers and unrolled loop
counters. Sibling tasks (created by the same thread) are ordered when their sections are the
same storage and one of them writes it; partially overlapping sections are not allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from kernelc import ir
from kernelc.diagnostics import KernelcError, Span
from kernelc.frontends.omp import ctree as c
from kernelc.frontends.omp.directives import Directive
from kernelc.frontends.omp.evaluate import creation_lowerer, i32, relation, substitute
from kernelc.frontends.omp.exprs import Context, flatten_index
from kernelc.frontends.omp.order import Thread
from kernelc.frontends.omp.state import ArrayVar, DeviceScalar, Exec
from kernelc.printer import expr_text
from kernelc.types import DType


@dataclass(frozen=True)
class Depend:
    """One depend item: the array, the dependence type, the section's start in C per dimension
    (for rebasing indices in the kernel) and the region it names in this task instance."""

    array: str
    kind: str  # "in", "out", "inout"
    starts: tuple[c.Expr | None, ...]
    tensor: str
    slices: tuple[ir.Slice, ...]
    span: Span


def listed(d: Directive) -> dict[str, str]:
    """Variables named in shared/private/firstprivate clauses, with the clause."""
    found: dict[str, str] = {}
    for kind in ("shared", "private", "firstprivate"):
        for clause in d.all(kind):
            for item in clause.args:
                if not isinstance(item, c.Name):
                    raise KernelcError(f"{kind} takes variable names", item.span)
                found[item.name] = kind
    return found


def default_clause(d: Directive) -> str | None:
    clause = d.clause("default")
    if clause is None:
        return None
    if len(clause.args) != 1 or not isinstance(clause.args[0], c.Name):
        raise KernelcError(
            "expected default(shared), default(none) or default(firstprivate)", clause.span
        )
    value = clause.args[0].name
    if value not in ("shared", "none", "firstprivate"):
        raise KernelcError(f"default({value}) is not supported", clause.span)
    return value


def check_clauses(d: Directive, ex: Exec) -> None:
    default_clause(d)
    for kind in ("shared", "private", "firstprivate"):
        for clause in d.all(kind):
            for item in clause.args:
                if not isinstance(item, c.Name) or ex.lookup(item.name) is None:
                    raise KernelcError(f"{kind} takes names of variables in scope", item.span)


def array_attribute(var: ArrayVar, d: Directive, ex: Exec, first: c.Expr) -> str:
    """ "shared" or "firstprivate": how a task sees an array, by OpenMP's rules."""
    explicit = listed(d).get(var.name)
    if explicit == "private":
        raise KernelcError(
            f"private({var.name}): private copies of arrays are not supported", d.span
        )
    if var.pointer:
        return "shared"  # the pointer is copied; the elements it points to are shared
    if explicit is not None:
        return explicit
    default = default_clause(d)
    if default == "none":
        raise KernelcError(
            f"'{var.name}' is not listed in a data-sharing clause of the task, which has "
            "default(none)",
            first.span,
        )
    if default in ("shared", "firstprivate"):
        return default
    return "shared" if ex.in_parallel else "firstprivate"


def lost_write(var: ArrayVar, d: Directive, ex: Exec, where: c.Expr) -> KernelcError:
    if listed(d).get(var.name) == "firstprivate":
        reason = "it is listed in firstprivate"
    elif default_clause(d) == "firstprivate":
        reason = "the task has default(firstprivate)"
    else:
        reason = (
            "in a target region without a parallel region, an array mapped into it is not "
            "shared by a team, and OpenMP makes it firstprivate in a task"
        )
    return KernelcError(
        f"this task writes '{var.name}', which is firstprivate in the task: {reason}, so OpenMP "
        "gives the task a copy and discards the write when the task ends. Add "
        f"shared({var.name}) to the task, or create the tasks inside '#pragma omp parallel' + "
        "'#pragma omp single'",
        where.span,
    )


# ---------------------------------------------------------------------------- depend items


def depends(ctx: Context, d: Directive, ex: Exec) -> list[Depend]:
    out: list[Depend] = []
    seen: dict[str, Span] = {}
    for clause in d.all("depend"):
        kind = clause.modifier
        if kind not in ("in", "out", "inout"):
            raise KernelcError(
                f"dependence type '{kind}' is not supported; use in, out or inout", clause.span
            )
        for item in clause.args:
            dep = _depend(ctx, kind, item, ex)
            if dep.array in seen:
                raise KernelcError(
                    f"'{dep.array}' appears in several depend items of this task; kernelc needs "
                    "one section per array (use inout for read and write)",
                    item.span,
                    [(seen[dep.array], "first named here")],
                )
            seen[dep.array] = item.span
            out.append(dep)
    return out


def _depend(ctx: Context, kind: str, item: c.Expr, ex: Exec) -> Depend:
    base, parts = flatten_index(item) if isinstance(item, c.Index) else (item, [])
    var = ex.lookup(base.name) if isinstance(base, c.Name) else None
    if not isinstance(var, ArrayVar):
        if isinstance(var, DeviceScalar):
            raise KernelcError("depend on scalars is not supported", item.span)
        raise KernelcError("a depend item must be an array or an array section", item.span)
    if not parts:
        if var.pointer:
            raise KernelcError(
                f"depend({var.name}) names the pointer parameter '{var.name}' itself, not the "
                f"elements it points to; write a section, like "
                f"{var.name}[0:{expr_text(var.dims[0])}]",
                item.span,
            )
        parts = [c.Section(None, None, item.span) for _ in var.dims]
    if len(parts) != len(var.dims):
        raise KernelcError(
            f"'{var.name}' has {len(var.dims)} dimension(s); the depend item names {len(parts)}",
            item.span,
        )
    lowerer = creation_lowerer(ctx, ex, clause=True)
    starts: list[c.Expr | None] = []
    slices: list[ir.Slice] = []
    for dim, part in enumerate(parts):
        zero = ir.Const(value=0, span=part.span, dtype=DType.I32)
        if isinstance(part, c.Section):
            starts.append(part.lo)
            lo = lowerer.index_value(part.lo, "a section start") if part.lo else zero
            if part.length is not None:
                length = lowerer.index_value(part.length, "a section length")
            else:
                length = i32("-", var.dims[dim], lo, part.span)
        else:
            starts.append(part)
            lo = lowerer.index_value(part, "an index")
            length = ir.Const(value=1, span=part.span, dtype=DType.I32)
        lo_v = section_value(ctx, lo, ex, part.span)
        hi_v = i32("+", lo_v, section_value(ctx, length, ex, part.span), part.span)
        slices.append(ir.Slice(lo=lo_v, hi=hi_v, span=part.span))
    tensor = ex.region.device.get(var.name, var.name)
    return Depend(var.name, kind, tuple(starts), tensor, tuple(slices), item.span)


def section_value(ctx: Context, e: ir.Expr, ex: Exec, span: Span) -> ir.Expr:
    """A section bound for this task instance: only sizes may remain."""
    value = substitute(e, ex.instance)
    for node in ir.walk(value):
        if isinstance(node, ir.Name) and node.name not in ctx.macros:
            raise KernelcError(
                f"this depend section is not compile-time affine: it depends on the run-time "
                f"value of '{node.name}', so the task graph could not be built before the "
                "program runs",
                span,
            )
    return value


@dataclass
class Siblings:
    """Depend items of the tasks each thread created, to order later sibling tasks by."""

    created: dict[Thread, list[tuple[str, Depend]]] = field(default_factory=dict)

    def match(
        self, node: str, deps: list[Depend], ex: Exec, order: nx.DiGraph, sizes: dict[str, int]
    ) -> list[str]:
        """The earlier sibling tasks that ``deps`` make the new task wait for."""
        siblings = self.created.setdefault(ex.thread, [])
        after = []
        for dep in deps:
            for earlier_node, earlier in siblings:
                if earlier.tensor != dep.tensor or dep.kind == earlier.kind == "in":
                    continue
                found = relation(earlier.slices, dep.slices, sizes)
                if found == "same":
                    after.append(earlier_node)
                elif found == "overlap" and not nx.has_path(order, earlier_node, ex.thread.pos):
                    raise KernelcError(
                        "the depend sections of this task and an earlier sibling task overlap "
                        "without being identical; OpenMP requires identical or disjoint sections",
                        dep.span,
                        [(earlier.span, "the earlier section")],
                    )
        siblings.extend((node, dep) for dep in deps)
        return after
