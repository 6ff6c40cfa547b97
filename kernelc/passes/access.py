"""Access analysis: which loops are parallel, how far stencils reach, what each task touches.

Three results, each used by later stages:
- :func:`mark_parallel` marks a loop parallel when its iterations write disjoint elements and read
  nothing another iteration writes. Backends split parallel loops across threads, lanes and PEs.
- :func:`check_bounds` proves affine indices stay inside their arrays for the bound sizes and
  reports the first index that can leave them, with the loop values that take it there.
- :func:`summarise` gives per-tensor footprints, halo widths and reductions for partitioners.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from kernelc import ir
from kernelc.affine import Affine, Interval, affine, bounds, evaluate, exact_in_i32, render
from kernelc.diagnostics import KernelcError
from kernelc.types import DType

# ---------------------------------------------------------------------------- parallel loops


def mark_parallel(kernel: ir.Kernel) -> ir.Kernel:
    """Return the kernel with ``parallel`` decided on every ``for``."""
    return replace(kernel, body=_mark_block(kernel.body, {}))


def _mark_block(body: tuple[ir.Stmt, ...], aliases: dict[str, Affine]) -> tuple[ir.Stmt, ...]:
    out = []
    aliases = dict(aliases)
    for stmt in body:
        if isinstance(stmt, ir.Let) and (form := affine(stmt.value, aliases)) is not None:
            aliases[stmt.name] = form
        out.append(_mark_stmt(stmt, aliases))
    return tuple(out)


def _mark_stmt(stmt: ir.Stmt, aliases: dict[str, Affine]) -> ir.Stmt:
    match stmt:
        case ir.For():
            body = _mark_block(stmt.body, aliases)
            return replace(stmt, body=body, parallel=_is_parallel(stmt.var, body, aliases))
        case ir.If():
            return replace(
                stmt, then=_mark_block(stmt.then, aliases), orelse=_mark_block(stmt.orelse, aliases)
            )
    return stmt


def _defined_inside(body: tuple[ir.Stmt, ...]) -> set[str]:
    names = set()
    for node in ir.walk_body(body):
        if isinstance(node, ir.For):
            names.add(node.var)
        elif isinstance(node, ir.Let | ir.VarDecl):
            names.add(node.name)
        elif isinstance(node, ir.Reduce):
            names.add(node.var)
    return names


def _is_parallel(var: str, body: tuple[ir.Stmt, ...], outer: dict[str, Affine]) -> bool:
    """Every store to a tensor, in whatever branch, is checked against every other store and
    every load of that tensor: no iteration may touch an element another iteration writes."""
    inside = _defined_inside(body)
    aliases = dict(outer)
    for node in ir.walk_body(body):
        if isinstance(node, ir.Let) and (form := affine(node.value, aliases)) is not None:
            aliases[node.name] = form
    for node in ir.walk_body(body):
        if isinstance(node, ir.Assign) and node.name not in inside:
            return False  # a variable carried from one iteration to the next
    stores: dict[str, list[tuple[Affine | None, ...]]] = {}
    for node in ir.walk_body(body):
        if isinstance(node, ir.Store):
            forms = tuple(affine(i, aliases) for i in node.indices)
            stores.setdefault(node.tensor, []).append(forms)
    for node in ir.walk_body(body):
        if isinstance(node, ir.Search) and node.tensor in stores:
            return False
        if isinstance(node, ir.Load | ir.Store) and node.tensor in stores:
            forms = tuple(affine(i, aliases) for i in node.indices)
            for written in stores[node.tensor]:
                if not _separated(var, forms, written, inside):
                    return False
    return True


def _separated(
    var: str, a: tuple[Affine | None, ...], b: tuple[Affine | None, ...], inside: set[str]
) -> bool:
    """Iteration ``var = x`` at index ``a`` and iteration ``var = y != x`` at index ``b`` never
    meet: in some dimension both are ``c*var + r`` with the same c != 0, terms fixed during the
    loop, and ``r_b - r_a`` a constant that is 0 or not a multiple of c."""
    for fa, fb in zip(a, b, strict=True):
        if fa is None or fb is None:
            continue
        c = fa.coef(var)
        if c == 0 or fb.coef(var) != c or (fa.names | fb.names) & inside:
            continue
        delta = fb.add(fa, -1)
        if not delta.terms and (delta.const == 0 or delta.const % c != 0):
            return True
    return False


# ------------------------------------------------------------------------------ bounds check


def check_bounds(
    kernel: ir.Kernel, sizes: Mapping[str, int], shapes: Mapping[str, tuple[int, ...]]
) -> None:
    """Raise a located error for the first affine index that can leave its array."""
    ranges: dict[str, Interval] = {name: (v, v) for name, v in sizes.items()}
    _check_block(kernel.body, ranges, {}, shapes, sizes)


def loop_ranges(
    ranges: Mapping[str, Interval], var: str, lo: Interval | None, hi: Interval | None
) -> dict[str, Interval] | None:
    """The ranges inside ``for var in lo .. hi`` given the ranges of its bounds, or None when the
    loop never runs. A bound with no known range leaves ``var`` without one."""
    inner = dict(ranges)
    if lo is not None and hi is not None:
        if hi[1] <= lo[0]:
            return None
        inner[var] = (lo[0], hi[1] - 1)
    else:
        inner.pop(var, None)
    return inner


def _range_of(expr: ir.Expr, ranges: Mapping[str, Interval], aliases) -> Interval | None:
    form = affine(expr, aliases)
    if form is None:
        return None
    result = bounds(form, ranges)
    return result[0] if result else None


def _check_block(body, ranges, aliases, shapes, sizes) -> None:
    aliases = dict(aliases)
    for stmt in body:
        for node in ir.own_exprs(stmt):
            _check_expr(node, ranges, aliases, shapes, sizes)
        match stmt:
            case ir.For():
                lo = _range_of(stmt.lo, ranges, aliases)
                hi = _range_of(stmt.hi, ranges, aliases)
                inner = loop_ranges(ranges, stmt.var, lo, hi)
                if inner is not None:  # None: the loop never runs at these sizes
                    _check_block(stmt.body, inner, aliases, shapes, sizes)
            case ir.Let():
                form = affine(stmt.value, aliases)
                if form is not None:
                    aliases[stmt.name] = form
            case ir.Store():
                _check_index(stmt.tensor, stmt.indices, ranges, aliases, shapes, sizes)
            case ir.If():
                for branch, negated in ((stmt.then, False), (stmt.orelse, True)):
                    where = narrow(stmt.cond, ranges, aliases, negated)
                    if where is not None:
                        _check_block(branch, where, aliases, shapes, sizes)


def _check_expr(expr, ranges, aliases, shapes, sizes) -> None:
    match expr:
        case ir.Load():
            _check_index(expr.tensor, expr.indices, ranges, aliases, shapes, sizes)
        case ir.Search():
            _check_search(expr, ranges, aliases, shapes, sizes)
        case ir.Reduce():
            for part in (expr.lo, expr.hi):
                _check_expr(part, ranges, aliases, shapes, sizes)
            lo = _range_of(expr.lo, ranges, aliases)
            hi = _range_of(expr.hi, ranges, aliases)
            inner = loop_ranges(ranges, expr.var, lo, hi)
            if inner is not None:
                _check_expr(expr.body, inner, aliases, shapes, sizes)
            return
        case ir.Select():
            _check_expr(expr.cond, ranges, aliases, shapes, sizes)
            for branch, negated in ((expr.if_true, False), (expr.if_false, True)):
                where = narrow(expr.cond, ranges, aliases, negated)
                if where is not None:
                    _check_expr(branch, where, aliases, shapes, sizes)
            return
    for child in ir.children(expr):
        _check_expr(child, ranges, aliases, shapes, sizes)


def _check_index(tensor, indices, ranges, aliases, shapes, sizes) -> None:
    shape = shapes[tensor]
    for dim, (index, extent) in enumerate(zip(indices, shape, strict=True)):
        form = affine(index, aliases)
        if form is None:
            continue  # data-dependent: clamped (loads) or dropped (stores) at run time
        result = bounds(form, ranges)
        if result is None:
            continue
        (lo, hi), at_lo, at_hi = result
        if lo < 0 or hi >= extent:
            value, where = (lo, at_lo) if lo < 0 else (hi, at_hi)
            loop_values = ", ".join(f"{n} = {v}" for n, v in where.items() if n not in sizes)
            size_values = ", ".join(f"{n} = {v}" for n, v in sizes.items() if n in form.names)
            when = f" when {loop_values}" if loop_values else ""
            given = f" ({size_values})" if size_values else ""
            raise KernelcError(
                f"index {render(form)} of '{tensor}' (dimension {dim}) reaches {value}{when}, "
                f"outside 0 .. {extent - 1}{given}; tighten the loop bounds or guard the access",
                ir.extent(index),
            )


def _check_search(expr: ir.Search, ranges, aliases, shapes, sizes) -> None:
    plain = [i for i in expr.indices if not isinstance(i, ir.Slice)]
    for index in plain:
        _check_expr(index, ranges, aliases, shapes, sizes)
    shape = shapes[expr.tensor]
    for dim, index in enumerate(expr.indices):
        if isinstance(index, ir.Slice):
            for bound in (index.lo, index.hi):
                if bound is None:
                    continue
                reach = _range_of(bound, ranges, aliases)
                if reach is not None and (reach[0] < 0 or reach[1] > shape[dim]):
                    raise KernelcError(
                        f"slice bound of '{expr.tensor}' (dimension {dim}) can be "
                        f"{reach[0] if reach[0] < 0 else reach[1]}, outside 0 .. {shape[dim]}",
                        bound.span,
                    )
        else:
            _check_index(
                expr.tensor, (index,), ranges, aliases, {expr.tensor: (shape[dim],)}, sizes
            )


NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


def narrow(cond: ir.Expr, ranges, aliases, negated: bool = False) -> dict[str, Interval] | None:
    """Tighten loop ranges where ``cond`` holds (or, ``negated``, where it does not), with
    guards like ``i > 0 && i < H - 1``, ``i == 0 ? ... : ...``, ``!(i == N - 1)`` or, on one
    index through a ``let`` or arithmetic, ``k > 0`` where ``let k = 7 - t`` (a reversed C
    loop) and ``2 * j + 1 < N``; other guards are ignored. None when the guard cannot hold
    at all: that branch never runs."""
    narrowed = dict(ranges)
    for op, lhs, rhs in _atoms(cond, negated):
        for side, other, rel in ((lhs, rhs, op), (rhs, lhs, _flip(op))):
            term = _one_index(side, narrowed, aliases)
            reach = _range_of(other, narrowed, aliases) if term is not None else None
            if term is None or reach is None:
                continue
            name, coef, const = term
            # the values coef * name may take: coef * name + const rel reach
            low, high = reach[0] - const, reach[1] - const
            if rel == "<":
                allowed = (None, high - 1)
            elif rel == "<=":
                allowed = (None, high)
            elif rel == ">":
                allowed = (low + 1, None)
            elif rel == ">=":
                allowed = (low, None)
            elif rel == "==":
                allowed = (low, high)
            else:
                allowed = None
            lo, hi = narrowed[name]
            if allowed is not None:
                lo, hi = _within(lo, hi, coef, *allowed)
            elif low == high and low % coef == 0:  # != one value: it can only trim an end
                value = low // coef
                lo, hi = lo + (lo == value), hi - (hi == value)
            if lo > hi:
                return None
            narrowed[name] = (lo, hi)
    return narrowed


def _one_index(side: ir.Expr, ranges, aliases) -> tuple[str, int, int] | None:
    """``side`` as ``coef * name + const`` over one name of known range (the others it names
    have one value), where its i32 value is the exact one (no value leaves i32)."""
    if side.dtype != DType.I32:
        return None
    form = affine(side, aliases)
    if form is None or not form.terms or any(n not in ranges for n in form.names):
        return None
    free = [(n, c) for n, c in form.terms if ranges[n][0] != ranges[n][1]] or list(form.terms)
    if len(free) != 1:
        return None
    if not exact_in_i32(form, ranges):
        return None
    name, coef = free[0]
    const = form.const + sum(c * ranges[n][0] for n, c in form.terms if n != name)
    return name, coef, const


def _within(lo: int, hi: int, coef: int, low: int | None, high: int | None) -> Interval:
    """``lo .. hi`` narrowed to the values ``v`` with ``low <= coef * v <= high`` (None: no
    limit on that side)."""
    if coef < 0:
        coef, low, high = -coef, None if high is None else -high, None if low is None else -low
    if low is not None:
        lo = max(lo, -(-low // coef))
    if high is not None:
        hi = min(hi, high // coef)
    return lo, hi


def _atoms(cond: ir.Expr, negated: bool) -> list[tuple[str, ir.Expr, ir.Expr]]:
    """The comparisons that all hold where ``cond`` (or its negation) holds."""
    match cond:
        case ir.Unary(op="!", operand=inner):
            return _atoms(inner, not negated)
        case ir.Binary(op="&&" | "||" as op, lhs=a, rhs=b) if (op == "&&") != negated:
            return _atoms(a, negated) + _atoms(b, negated)
        case ir.Binary(op=op, lhs=a, rhs=b) if op in NEGATED:
            return [(NEGATED[op] if negated else op, a, b)]
    return []


def _flip(op: str) -> str:
    return {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}[op]


# ---------------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class TensorAccess:
    """How one kernel touches one tensor."""

    tensor: str
    reads: int
    writes: int
    reduction: bool  # written with a compound operator (+=, max=, ...)
    indirect: bool  # some index is data-dependent (a gather or scatter)
    halo: tuple[tuple[int, int], ...]  # per dimension: how far below / above the loop index


def summarise(kernel: ir.Kernel) -> tuple[TensorAccess, ...]:
    """Per-tensor access facts used by partitioners and shown by ``--emit ir``."""
    loops = {n.var for n in ir.walk_body(kernel.body) if isinstance(n, ir.For | ir.Reduce)}
    static = loops | set(kernel.sizes) | {p.name for p in kernel.params if p.is_scalar}
    aliases: dict[str, Affine] = {}
    for node in ir.walk_body(kernel.body):
        if isinstance(node, ir.Let) and (form := affine(node.value, aliases)) is not None:
            aliases[node.name] = form
    result = []
    for param in kernel.all_params:
        if param.is_scalar:
            continue
        rank = len(param.shape)
        halo = [[0, 0] for _ in range(rank)]
        reads = writes = 0
        reduction = indirect = False
        for node in ir.walk_body(kernel.body):
            if isinstance(node, ir.Load | ir.Store | ir.Search) and node.tensor == param.name:
                if isinstance(node, ir.Store):
                    writes += 1
                    reduction |= node.op != "="
                else:
                    reads += 1
                for dim, index in enumerate(node.indices):
                    if isinstance(index, ir.Slice):
                        continue
                    form = affine(index, aliases)
                    if form is None or not form.names <= static:
                        indirect = True
                        continue
                    loop_terms = [n for n in form.names if n in loops]
                    if len(loop_terms) == 1 and form.coef(loop_terms[0]) == 1:
                        halo[dim][0] = max(halo[dim][0], -form.const)
                        halo[dim][1] = max(halo[dim][1], form.const)
        result.append(
            TensorAccess(
                tensor=param.name,
                reads=reads,
                writes=writes,
                reduction=reduction,
                indirect=indirect,
                halo=tuple((lo, hi) for lo, hi in halo),
            )
        )
    return tuple(result)


def shape_of(param: ir.Param, sizes: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(evaluate(d, sizes) for d in param.shape)
