"""The ``Lookup`` form: item-wise gathers through a data-dependent key, a ``search`` and a
reduction (the XS lookup).

A parallel loop over items ``l`` whose body gathers from tables through a key bound by a let
(``let n = mat_nucs[m, j]; ... egrid[n, ...] ... xs[n, ...]``) and only adds into outputs
indexed by the item (``macro[l, c] += ...``) once the key is known; it may zero them
(``macro[l, c] = 0``) before its first addition, as C kernels do. The key-indexed tables are
what a backend splits (by key and by energy band); the items are what it spreads; the
additions are what it reduces across the pieces.

The items are either given as inputs (``energy[l]``, ``material[l]``) or generated on the device
from the item index (``rand(seed, u32(l) * 2)``, then ``search`` over a distribution): then no
input is indexed by the item (``generated``) and a backend spreads, or batches, item ranges
only. The loop's range ``first .. end`` need not start at 0; items outside it are never added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from statistics import NormalDist

from kernelc import ir
from kernelc.affine import affine, evaluate
from kernelc.graph import Task


@dataclass(frozen=True)
class BandSite:
    """The search that energy banding replays: on ``table``, bound to the let ``var``."""

    table: str
    var: str
    extent: int  # grid points along dimension 1 of every table


@dataclass(frozen=True)
class Lookup:
    loop: ir.For
    key: str | None  # the let whose value indexes the tables
    tables: frozenset[str]  # kernel parameters split over columns
    items: frozenset[str]  # kernel parameters split over rows (first index is the item)
    outputs: frozenset[str]
    first: int  # the item loop's range: items first .. end - 1 are looked up
    end: int
    generated: bool  # no input is indexed by the item: items are drawn from the item index
    site: BandSite | None = None  # the search energy banding replays, where it applies


def accesses(body: tuple[ir.Stmt, ...]) -> list[ir.Load | ir.Store | ir.Search]:
    return [n for s in body for n in ir.walk(s) if isinstance(n, ir.Load | ir.Store | ir.Search)]


def recognise_lookup(task: Task) -> Lookup | None:
    body = task.kernel.body
    if len(body) != 1 or not isinstance(body[0], ir.For) or not body[0].parallel:
        return None
    loop = body[0]
    item = loop.var
    bounds = _item_range(loop, task.size_env)
    if bounds is None:
        return None
    found = accesses(loop.body)
    stores = [a for a in found if isinstance(a, ir.Store)]
    if not any(s.op == "+=" for s in stores) or not all(s.op == "+=" or _zeroes(s) for s in stores):
        return None
    if not _zeroes_first(loop.body):
        return None
    for s in stores:
        if not (isinstance(s.indices[0], ir.Name) and s.indices[0].name == item):
            return None
    if any(isinstance(n, ir.Assign) for s in loop.body for n in ir.walk(s)):
        return None
    outputs = frozenset(s.tensor for s in stores if s.op == "+=")
    if any(s.tensor not in outputs for s in stores):
        return None  # a zeroed tensor nothing adds to would be a second, unreduced output
    first: dict[str, set[str | None]] = {}
    for a in found:
        index = a.indices[0]
        name = index.name if isinstance(index, ir.Name) else None
        first.setdefault(a.tensor, set()).add(name)
    lets = {n.name for s in loop.body for n in ir.walk(s) if isinstance(n, ir.Let)}
    items = frozenset(t for t, names in first.items() if names == {item})
    groups: dict[str, set[str]] = {}
    for t, names in first.items():
        if len(names) == 1 and (key := next(iter(names))) in lets and t not in outputs:
            groups.setdefault(key, set()).add(t)
    sizes = task.size_env
    params = {p.name: p for p in task.kernel.params}

    def nbytes(t: str) -> int:
        shape = [evaluate(d, sizes) for d in params[t].shape]
        total = params[t].dtype.numpy.itemsize
        for n in shape:
            total *= n
        return total

    def adds_where_known(key: str) -> bool:
        """Every addition runs only where the key is known: on the PE holding the key's rows."""
        owned = {id(n) for n in ir.walk_body(_key_block(loop.body, key) or ())}
        return all(id(s) in owned for s in stores if s.op == "+=")

    candidates = [k for k in groups if adds_where_known(k)]
    key = max(candidates, key=lambda k: (sum(nbytes(t) for t in groups[k]), k), default=None)
    tables = frozenset(groups.get(key, ()))
    if key is not None:
        extents = {evaluate(params[t].shape[0], sizes) for t in tables}
        if len(extents) != 1:
            return None
    generated = not (items - outputs)
    shape = Lookup(loop, key, tables, items, outputs, *bounds, generated)
    return replace(shape, site=_band_site(shape, task))


def _item_range(loop: ir.For, sizes: dict[str, int]) -> tuple[int, int] | None:
    """The item loop's bounds when sizes alone fix them (``0 + 1 .. L``), else None."""
    forms = (affine(loop.lo), affine(loop.hi))
    if any(f is None or any(n not in sizes for n, _c in f.terms) for f in forms):
        return None
    return evaluate(loop.lo, sizes), evaluate(loop.hi, sizes)


def _zeroes_first(body: tuple[ir.Stmt, ...]) -> bool:
    """Whether an item's zeroing stores all run before its first addition. The partial sums
    start at zero, so such a store changes no partial sum whichever PEs run it, and the sum of
    the partials is exactly the item's additions, as the kernel's result is."""
    last_zeroing = max(
        (
            k
            for k, s in enumerate(body)
            for n in ir.walk(s)
            if isinstance(n, ir.Store) and n.op == "="
        ),
        default=-1,
    )
    first_addition = min(
        (
            k
            for k, s in enumerate(body)
            for n in ir.walk(s)
            if isinstance(n, ir.Store) and n.op == "+="
        ),
        default=len(body),
    )
    return last_zeroing < first_addition


def _zeroes(store: ir.Store) -> bool:
    """``t[...] = 0`` (+0: the partial sums start at +0): allowed before an item's additions
    (see _zeroes_first)."""
    value = store.value
    return (
        store.op == "="
        and isinstance(value, ir.Const)
        and not isinstance(value.value, bool)
        and value.value == 0
        and math.copysign(1.0, value.value) > 0
    )


def _key_block(body: tuple[ir.Stmt, ...], key: str) -> tuple[ir.Stmt, ...] | None:
    """The statements after ``let key`` in the block that binds it."""
    for k, s in enumerate(body):
        if isinstance(s, ir.Let) and s.name == key:
            return body[k + 1 :]
        for inner in _blocks(s):
            found = _key_block(inner, key)
            if found is not None:
                return found
    return None


def _blocks(s: ir.Stmt) -> tuple[tuple[ir.Stmt, ...], ...]:
    if isinstance(s, ir.For):
        return (s.body,)
    if isinstance(s, ir.If):
        return (s.then, s.orelse)
    return ()


def _band_site(shape: Lookup, task: Task) -> BandSite | None:
    """Where energy banding applies, or None: one whole-row ``search`` of a table bound by a let
    in the key's block with no store before it (those would be added once per band), and every
    other table access reading dimension 1 at the bracket (the result, or the result + 1).
    Searches of other tensors (a material distribution, replicated on every PE) do not matter."""
    if shape.key is None:
        return None
    searches = [
        n
        for n in ir.walk_body(shape.loop.body)
        if isinstance(n, ir.Search) and n.tensor in shape.tables
    ]
    if len(searches) != 1:
        return None
    found = searches[0]
    if len(found.indices) != 2:
        return None
    first, piece = found.indices
    if not (
        isinstance(first, ir.Name)
        and first.name == shape.key
        and isinstance(piece, ir.Slice)
        and piece.lo is None
        and piece.hi is None
    ):
        return None
    block = _key_block(shape.loop.body, shape.key) or ()
    var = None
    for stmt in block:
        if isinstance(stmt, ir.Let) and stmt.value is found:
            var = stmt.name
            break
        if any(isinstance(n, ir.Store) for n in ir.walk(stmt)):
            return None
    if var is None:
        return None
    sizes = task.size_env
    params = {p.name: p for p in task.kernel.params}
    extents = set()
    for t in shape.tables:
        if len(params[t].shape) < 2:
            return None
        extents.add(evaluate(params[t].shape[1], sizes))
    if len(extents) != 1:
        return None
    for node in accesses(shape.loop.body):
        if node is found or node.tensor not in shape.tables:
            continue
        form = affine(node.indices[1])
        if form is None or form.terms != ((var, 1),) or form.const not in (0, 1):
            return None
    return BandSite(found.tensor, var, extents.pop())


def slowest_trips(items: int, extent: float, parallel: int) -> float:
    """The data-dependent trips of the slowest of ``parallel`` units (PE rows, IPU workers)
    that each run ``items`` items side by side, every item's trip count taken as uniform over
    0 .. extent: the time is the slowest unit's, not the mean one's. The expected largest of
    ``parallel`` normal sums (Blom's approximation), at most every item's every trip."""
    if items == 0:
        return 0.0
    mean, spread = items * extent / 2, extent * math.sqrt(items / 12)
    return min(items * extent, mean + largest_normal(parallel) * spread)


def largest_normal(count: int) -> float:
    """The expected largest of ``count`` standard normal draws (Blom's approximation)."""
    return NormalDist().inv_cdf((count - 0.375) / (count + 0.25)) if count > 1 else 0.0
