"""Raise hand-written bracket searches to ``search``.

C has no ``search``, so a C kernel (examples/omp/xs_lookup.c) spells the XSBench bracket search
out as a fixed-step binary search followed by clamps::

    int lo = 0;
    int hi = NG;                            // the length of the searched row
    for (int step = 0; step < 32; step++) { // at least bit_length(NG) steps
      if (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (egrid[n][mid] <= e) lo = mid + 1; else hi = mid;
      }
    }
    int k = lo - 1;
    k = k < NG - 2 ? k : NG - 2;
    k = k > 0 ? k : 0;

That is probe for probe the binary search that defines ``search`` (docs/LANGUAGE.md), so the
statements are replaced by ``let k = search(egrid[n, :], e)`` and the result is bit for bit the
same on any data, sorted or not, NaN included. Backends then see the idiom they lower natively
(CSL's energy-banded search splits the table over PEs only for a ``search``).

The rewrite is exact only when every condition below holds; anything else is left as written:
``hi`` starts at the row's length, the loop runs at least ``bit_length(length)`` steps (after
that the ``lo < hi`` guard makes further steps no-ops), the probe is ``row[mid] <= v`` (or
``v >= row[mid]``: the other comparisons differ on NaN), ``v`` and the row do not depend on the
search's variables, the clamps bound ``lo - 1`` to ``[0, length - 2]``, and ``lo``, ``hi``,
``mid`` and the step are used nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from kernelc import ir
from kernelc.affine import affine
from kernelc.types import DType


def raise_searches(kernel: ir.Kernel, sizes: Mapping[str, int]) -> ir.Kernel:
    """The kernel with every canonical hand-written bracket search turned into ``search``."""
    rows = {}
    for p in kernel.all_params:
        extents = [_size(d, sizes) for d in p.shape]
        if not p.is_scalar and None not in extents:
            rows[p.name] = tuple(extents)
    context = _Context(kernel.body, rows, sizes)

    def rewrite(body: tuple[ir.Stmt, ...], i: int):
        found = _search_at(body, i, context)
        return None if found is None else ((found[0],), found[1])

    body = ir.rewrite_blocks(kernel.body, rewrite)
    return kernel if body == kernel.body else replace(kernel, body=body)


@dataclass(frozen=True)
class _Context:
    whole: tuple[ir.Stmt, ...]  # the kernel body, to count uses of names
    extents: Mapping[str, tuple[int, ...]]  # tensor parameter -> shape
    sizes: Mapping[str, int]


def _search_at(body, i: int, context: _Context) -> tuple[ir.Stmt, int] | None:
    """The ``search`` that ``body[i:]`` spells out, with the number of statements it replaces."""
    if i + 4 > len(body):
        return None
    first, second, loop, result = body[i : i + 4]
    if not (isinstance(first, ir.VarDecl) and isinstance(second, ir.VarDecl)):
        return None
    if _size(first.value, {}) == 0:
        lo, hi = first, second
    elif _size(second.value, {}) == 0:
        lo, hi = second, first
    else:
        return None
    if not (_is_i32(lo) and _is_i32(hi) and isinstance(loop, ir.For)):
        return None
    probe = _probe_loop(loop, lo.name, hi.name)
    if probe is None:
        return None
    load, value, axis, mid = probe
    extent = context.extents.get(load.tensor, ())
    if axis >= len(extent):
        return None
    length = extent[axis]
    steps = _size(loop.hi, context.sizes)
    start = _size(loop.lo, context.sizes)
    if _size(hi.value, context.sizes) != length or start is None or steps is None:
        return None
    if steps - start < length.bit_length():
        return None
    if not (isinstance(result, ir.VarDecl) and _is_i32(result)):
        return None
    if affine(result.value) != affine(_minus_one(lo.name, result.span)):
        return None
    used = _clamps(body[i + 4 :], result.name, length, context.sizes)
    if used is None:
        return None
    replaced = body[i : i + 4 + used]
    for name in (lo.name, hi.name, mid, loop.var):
        if _mentions(context.whole, name) != _mentions(replaced, name):
            return None
    indices = tuple(
        ir.Slice(lo=None, hi=None, span=index.span) if d == axis else index
        for d, index in enumerate(load.indices)
    )
    search = ir.Search(
        tensor=load.tensor, indices=indices, value=value, span=loop.span, dtype=DType.I32
    )
    reassigned = ir.assignments(context.whole, result.name) > ir.assignments(replaced, result.name)
    kind = ir.VarDecl if reassigned else ir.Let
    return kind(name=result.name, value=search, span=result.span, declared=DType.I32), 4 + used


def _probe_loop(loop: ir.For, lo: str, hi: str) -> tuple[ir.Load, ir.Expr, int, str] | None:
    """(probed load, searched value, probed axis, mid's name) of the guarded probe loop."""
    if len(loop.body) != 1 or not isinstance(guard := loop.body[0], ir.If) or guard.orelse:
        return None
    if not (_compares(guard.cond, "<", lo, hi) and len(guard.then) == 2):
        return None
    half, step = guard.then
    if not (isinstance(half, ir.Let) and _is_midpoint(half.value, lo, hi)):
        return None
    mid = half.name
    if not (isinstance(step, ir.If) and len(step.then) == 1 and len(step.orelse) == 1):
        return None
    raised, lowered = step.then[0], step.orelse[0]
    if not (isinstance(raised, ir.Assign) and raised.name == lo and raised.op == "="):
        return None
    if affine(raised.value) != affine(ir.Binary(op="+", lhs=_name(mid), rhs=_one(), span=None)):
        return None
    if not (isinstance(lowered, ir.Assign) and lowered.name == hi and lowered.op == "="):
        return None
    if not (isinstance(lowered.value, ir.Name) and lowered.value.name == mid):
        return None
    match step.cond:
        case ir.Binary(op="<=", lhs=ir.Load() as load, rhs=value):
            pass
        case ir.Binary(op=">=", lhs=value, rhs=ir.Load() as load):
            pass
        case _:
            return None
    if load.dtype is None or value.dtype != load.dtype:
        return None
    axes = [d for d, x in enumerate(load.indices) if isinstance(x, ir.Name) and x.name == mid]
    if len(axes) != 1:
        return None
    local = {lo, hi, mid, loop.var}
    others = [x for d, x in enumerate(load.indices) if d != axes[0]]
    if any(_reads(x, local) for x in (*others, value)):
        return None
    return load, value, axes[0], mid


def _is_midpoint(expr: ir.Expr, lo: str, hi: str) -> bool:
    """``lo + (hi - lo) / 2`` (or ``>> 1``), the midpoint that never overflows."""
    match expr:
        case (
            ir.Binary(op="+", lhs=ir.Name(name=a), rhs=half)
            | ir.Binary(op="+", lhs=half, rhs=ir.Name(name=a))
        ) if a == lo:
            pass
        case _:
            return False
    match half:
        case (
            ir.Binary(op="/", lhs=width, rhs=ir.Const(value=2))
            | ir.Binary(op=">>", lhs=width, rhs=ir.Const(value=1))
        ):
            pass
        case _:
            return False
    return affine(width) == affine(
        ir.Binary(op="-", lhs=_name(hi), rhs=_name(lo), span=None)
    ) and not isinstance(width, ir.Const)


def _clamps(rest, var: str, length: int, sizes: Mapping[str, int]) -> int | None:
    """How many statements of ``rest`` clamp ``var`` exactly as ``search`` clamps its result
    (to ``[0, length - 2]``, and to 0 when ``length < 2``), or None."""
    bounds: list[tuple[str, int]] = []
    for stmt in rest[:2]:
        bound = _clamp(stmt, var, sizes)
        if bound is None:
            break
        bounds.append(bound)
    if len(bounds) != 2:
        return None
    if bounds == [("min", length - 2), ("max", 0)]:
        return 2
    if bounds == [("max", 0), ("min", length - 2)] and length >= 2:
        return 2
    return None


def _clamp(stmt: ir.Stmt, var: str, sizes: Mapping[str, int]) -> tuple[str, int] | None:
    """``("min", b)`` for ``var = min(var, b)`` in any of its C spellings, ``("max", b)`` for
    ``var = max(var, b)``; None otherwise."""
    match stmt:
        case ir.Assign(name=name, op="=", value=value) if name == var:
            pass
        case ir.If(cond=cond, then=(ir.Assign(name=name, op="=", value=bound),), orelse=()) if (
            name == var
        ):
            for kind, op in (("min", ">"), ("max", "<")):
                limit = _bound_of(cond, op, var, sizes)
                if limit is not None and _size(bound, sizes) == limit:
                    return kind, limit
            return None
        case _:
            return None
    match value:
        case ir.Intrinsic(fn="min" | "max" as fn, args=(a, b)):
            for x, y in ((a, b), (b, a)):
                limit = _size(y, sizes)
                if _is(x, var) and limit is not None:
                    return fn, limit
            return None
        case ir.Select(cond=cond, if_true=a, if_false=b):
            for kind, keep in (("min", "<"), ("max", ">")):
                drop = ">" if keep == "<" else "<"
                limit = _bound_of(cond, keep, var, sizes)
                if limit is not None and _is(a, var) and _size(b, sizes) == limit:
                    return kind, limit
                limit = _bound_of(cond, drop, var, sizes)
                if limit is not None and _is(b, var) and _size(a, sizes) == limit:
                    return kind, limit
    return None


def _bound_of(cond: ir.Expr, op: str, var: str, sizes: Mapping[str, int]) -> int | None:
    """``b`` when ``cond`` says ``var op b`` (strictly or not: for integers clamping with either
    gives the same value), in either operand order."""
    flipped = {"<": ">", ">": "<"}[op]
    if not isinstance(cond, ir.Binary):
        return None
    if cond.op in (op, op + "=") and _is(cond.lhs, var):
        return _size(cond.rhs, sizes)
    if cond.op in (flipped, flipped + "=") and _is(cond.rhs, var):
        return _size(cond.lhs, sizes)
    return None


def _compares(cond: ir.Expr, op: str, lhs: str, rhs: str) -> bool:
    """``lhs < rhs``, also spelled ``rhs > lhs``."""
    flipped = {"<": ">"}[op]
    return isinstance(cond, ir.Binary) and (
        (cond.op == op and _is(cond.lhs, lhs) and _is(cond.rhs, rhs))
        or (cond.op == flipped and _is(cond.lhs, rhs) and _is(cond.rhs, lhs))
    )


def _size(expr: ir.Expr, sizes: Mapping[str, int]) -> int | None:
    """The value of an integer expression of literals and sizes, or None."""
    form = affine(expr)
    if form is None or any(n not in sizes for n in form.names):
        return None
    return form.const + sum(c * sizes[n] for n, c in form.terms)


def _is(expr: ir.Expr, name: str) -> bool:
    return isinstance(expr, ir.Name) and expr.name == name


def _is_i32(decl: ir.VarDecl) -> bool:
    return decl.declared == DType.I32


def _reads(expr: ir.Expr, names: set[str]) -> bool:
    return any(isinstance(n, ir.Name) and n.name in names for n in ir.walk(expr))


def _mentions(body: tuple[ir.Stmt, ...], name: str) -> int:
    """Reads and writes of a local (its declaration, assignments, uses, a loop over it)."""
    count = 0
    for node in ir.walk_body(body):
        if isinstance(node, ir.Name) and node.name == name:
            count += 1
        elif isinstance(node, ir.VarDecl | ir.Let | ir.Assign | ir.For) and _names(node) == name:
            count += 1
    return count


def _names(node) -> str:
    return node.var if isinstance(node, ir.For) else node.name


def _name(name: str) -> ir.Name:
    return ir.Name(name=name, span=None, dtype=DType.I32)


def _one() -> ir.Const:
    return ir.Const(value=1, span=None, dtype=DType.I32)


def _minus_one(name: str, span) -> ir.Binary:
    return ir.Binary(op="-", lhs=_name(name), rhs=_one(), span=span)
