"""The ``Lookup`` form with its key tables split over tiles (XSBench's full-size tables).

The tables the key indexes (``egrid``, ``xs``) are cut into pieces, one per tile: K groups of
neighbouring keys (nuclides) and, where the kernel allows energy banding (``Lookup.site``), D
bands of the grid dimension of the tables other than the searched one (``kernelc.forms.bands``:
the subtrees of ``search``'s probe tree, each widened by a point on each side, here widened
further to one common width so that one codelet indexes every piece). The searched table
(``egrid``) keeps each of the piece's keys' whole row, so every piece runs the interpreter's
own search and finds the interpreter's bracket ``lo``; a band owns the brackets
``lo`` in [``oBegin``, ``oEnd``) (a partition of 0 .. NG - 2 along the bands) and its stored
points hold ``lo`` and ``lo + 1`` for each of them.

Where tiles are to spare, the pieces are copied (one on-device ``Copy`` per table and group,
before the first batch) to more groups of tiles, and each group takes a near-equal share of
every batch's items (the csl lowering's rows of PEs), so a piece runs a fraction of the items.
Items go in batches small enough that a piece's partial sums fit beside its tables; each
batch runs two compute sets:

1. partial sums: every piece's MultiVertex runs the item loop over its group's share of the
   batch (its six workers take the items in turn) with the item's energy and material brought
   by the exchange; right
   after the key is known (``let n = mat_nucs[m, j]``, clamped like every gather) it keeps only
   the keys it holds (``kBegin <= n < kEnd``) and, with bands, after the search only the
   brackets its band owns; it adds into its own partial-sum rows (a temporary per output,
   piece-major), so each item's additions for the piece's keys are made in the kernel's order;
2. reduction: one MultiVertex per piece tile takes a share of its group's items and adds, per
   output element, the pieces' partial sums in piece order (keys ascending, then bands), into
   the output rows (which live spread over all tiles; the exchange moves them).

Each item's result is the sum of its terms grouped by piece: the same terms as the interpreter's
(which adds them in the order j of the material's list), added in another order, so results
agree within rounding, not bit for bit (docs/POPLAR.md gives the bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from kernelc import ir
from kernelc.backends.poplar.cost import instructions
from kernelc.backends.poplar.items import (
    ItemVertex,
    TripCounter,
    assumed,
    assumptions,
    item_loop_refusal,
    item_tensors,
)
from kernelc.backends.poplar.lowered import (
    Codelet,
    CodeletField,
    Edge,
    Instance,
    LoweredTask,
    Temp,
    TileMap,
    region_box,
    spread,
)
from kernelc.backends.poplar.machine import GC200, WORKERS
from kernelc.backends.poplar.names import Names
from kernelc.forms.bands import cut
from kernelc.forms.blocks import Split
from kernelc.forms.lookup import Lookup, slowest_trips
from kernelc.graph import Region, Task, TaskGraph
from kernelc.types import DType

# IR names of the piece's vertex state the guards read
K_BEGIN, K_END, G_BEGIN, O_BEGIN, O_END = "kc_k0", "kc_k1", "kc_g0", "kc_o0", "kc_o1"
STATE = (  # IR name, C++ field, what it holds
    (K_BEGIN, "kBegin", "this piece's first key"),
    (K_END, "kEnd", "this piece's last key + 1"),
    (G_BEGIN, "gBegin", "the first grid point of this piece's band"),
    (O_BEGIN, "oBegin", "the first bracket this band adds for"),
    (O_END, "oEnd", "the last bracket this band adds for + 1"),
)
SKEW = 3.5  # the busiest key's use over the mean key's (XSBench's materials; see _odds)
MARGIN = 8 * 1024
# vertices a split may make (two per piece per batch): main.cpp lists each, and planning and
# the IPU model's checks take time in proportion; past this, fewer pieces or no split
MAX_VERTICES = 32768  # tile bytes kept free when sizing batches (vertex state estimates err)
BAND_DEPTHS = range(0, 7)  # 1 .. 64 bands


@dataclass(frozen=True)
class Piece:
    """One tile's share of the key tables."""

    keys: tuple[int, int]  # keys first .. last + 1
    stored: tuple[int, int]  # grid points of the banded tables it stores, [first, last + 1)
    owned: tuple[int, int]  # the brackets lo it adds for, [first, last + 1)


@dataclass(frozen=True)
class SplitBlocks:
    pieces: tuple[Piece, ...]  # piece p on tile first + p
    bands: int  # bands per key group (1: none)
    batches: tuple[tuple[int, int], ...]  # items first .. last + 1 of each batch
    chunk: int  # the largest batch
    first: int  # the first tile
    item_tiles: int  # tiles the item-indexed tensors are spread over
    item_regions: dict[str, Region]
    keyed: dict[str, Region]  # the key tables
    tables: dict[str, Region]  # every other tensor parameter: connected whole
    widths: dict[str, int]  # per output: elements of an item's row
    shapes: dict[str, tuple[int, ...]]  # per key table: the shape a piece's vertex sees
    temps: dict[str, str]  # per output: the partial-sum temporary's name
    mappings: dict[str, TileMap]
    groups: int = 1  # groups of tiles, each with its own copy of the pieces
    replicas: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key table -> copies

    @property
    def tiles_used(self) -> int:
        return max(self.groups * len(self.pieces), self.item_tiles)

    def tile(self, group: int, piece: int) -> int:
        return self.first + group * len(self.pieces) + piece

    def shares(self, lo: int, hi: int) -> tuple[tuple[int, int], ...]:
        """Each group's items of the batch lo .. hi - 1 (near-equal; some may be empty)."""
        cut = Split(hi - lo, self.groups)
        return tuple(
            (lo + cut.start(r), lo + cut.start(r) + cut.size(r)) for r in range(self.groups)
        )


def _key_extent(task: Task, form: Lookup) -> int:
    return task.binding(next(iter(sorted(form.tables)))).region.view_shape[0]


def _param_bytes(task: Task, param: str, shape: tuple[int, ...]) -> int:
    dtype = next(p.dtype for p in task.kernel.all_params if p.name == param)
    return math.prod(shape) * dtype.numpy.itemsize


def refusal(task: Task, form: Lookup) -> str | None:
    """Why the tables cannot be split for this task, or None."""
    if form.key is None or not form.tables:
        return "no key indexes its tables"
    dtypes = {p.name: p.dtype for p in task.kernel.all_params}
    for out in sorted(form.outputs):
        if dtypes[out] != DType.F32:
            return f"output '{out}' is {dtypes[out].value}: partial sums are kept in f32 only"
    regions = {p.name: task.binding(p.name).region for p in task.kernel.all_params}
    for name, region in regions.items():
        if region is not None and name in form.tables and not all(region.keep):
            return f"key table '{name}' is a view that drops dimensions"
    for out in sorted(form.outputs):
        for name, region in regions.items():
            if name != out and region is not None and regions[out].overlaps(region):
                return f"it reads '{name}' and writes '{out}', views of one tensor"
    return None


def piece_tables(
    task: Task, form: Lookup, keys: int, bands: int
) -> tuple[tuple[Piece, ...], dict[str, tuple[int, ...]]] | None:
    """The pieces of ``keys`` keys per group and ``bands`` bands, and each key table's shape
    per piece (the largest); None where the grid has too few points for the bands."""
    extent = _key_extent(task, form)
    groups = Split(extent, -(-extent // keys))
    site = form.site
    if bands == 1:
        spans = [((0, 0), (0, 0))]
        width = 0
    else:
        assert site is not None
        found = cut(site.extent, bands.bit_length() - 1)
        if found is None:
            return None
        width = max(b - a for a, b in found.stored)
        spans = []
        for k, (a, _) in enumerate(found.stored):
            first = min(a, site.extent - width)
            own_first = 0 if k == 0 else found.stored[k - 1][1] - 1
            own_end = site.extent - 1 if k == found.count - 1 else found.stored[k][1] - 1
            spans.append(((first, first + width), (own_first, own_end)))
    pieces = tuple(
        Piece((groups.start(g), groups.start(g) + groups.size(g)), stored, owned)
        for g in range(groups.parts)
        for stored, owned in spans
    )
    shapes = {}
    for t in form.tables:
        view = task.binding(t).region.view_shape
        banded = bands > 1 and t != site.table
        shapes[t] = (groups.largest, *((width,) if banded else view[1:2]), *view[2:])
    return pieces, shapes


def _guarded(
    body: tuple[ir.Stmt, ...], form: Lookup, banded: bool, extent: int
) -> tuple[tuple[ir.Stmt, ...], list[tuple[ir.If, str]]]:
    """The item body for a piece: after ``let key``, the key clamped like a gather and the rest
    of the block kept for the piece's keys (and, banded, after the search for its brackets),
    table accesses indexing the piece's rows (and band). The guards, tagged "key" or "band"."""
    guards: list[tuple[ir.If, str]] = []
    taken = {n.name for n in ir.walk_body(body) if isinstance(n, ir.Let | ir.VarDecl)}
    taken |= {n.var for n in ir.walk_body(body) if isinstance(n, ir.For | ir.Reduce)}
    taken |= {n.name for n in ir.walk_body(body) if isinstance(n, ir.Name)}
    key = ir.fresh_name(f"{form.key}_key", taken)  # the clamped key
    local_row = ir.fresh_name(f"{form.key}_row", taken)  # its row in the piece

    def name(n: str, span) -> ir.Name:
        return ir.Name(name=n, span=span, dtype=DType.I32)

    def binary(op: str, a: ir.Expr, b: ir.Expr, span, dtype: DType = DType.I32) -> ir.Binary:
        return ir.Binary(op=op, lhs=a, rhs=b, span=span, dtype=dtype)

    def within(value: ir.Expr, lo: str, hi: str, span) -> ir.Expr:
        return binary(
            "&&",
            binary(">=", value, name(lo, span), span, DType.BOOL),
            binary("<", value, name(hi, span), span, DType.BOOL),
            span,
            DType.BOOL,
        )

    def local(n):
        if isinstance(n, ir.Load | ir.Search) and n.tensor in form.tables:
            rest = n.indices[1:]
            if banded and n.tensor != form.site.table:
                rest = (binary("-", rest[0], name(G_BEGIN, n.span), n.span), *rest[1:])
            return replace(n, indices=(name(local_row, n.indices[0].span), *rest))
        return n

    def owned(block: tuple[ir.Stmt, ...]) -> tuple[ir.Stmt, ...]:
        for k, s in enumerate(block):
            if isinstance(s, ir.Let) and s.name == form.site.var:
                cond = within(name(s.name, s.span), O_BEGIN, O_END, s.span)
                guard = ir.If(cond=cond, then=block[k + 1 :], orelse=(), span=s.span)
                guards.append((guard, "band"))
                return (*block[: k + 1], guard)
        raise AssertionError(form.site.var)

    def walk(block: tuple[ir.Stmt, ...]) -> tuple[ir.Stmt, ...]:
        out: list[ir.Stmt] = []
        for k, s in enumerate(block):
            if isinstance(s, ir.Let) and s.name == form.key:
                span = s.span
                clamped = ir.Intrinsic(
                    fn="max",
                    args=(
                        ir.Intrinsic(
                            fn="min",
                            args=(
                                name(s.name, span),
                                ir.Const(value=extent - 1, span=span, dtype=DType.I32),
                            ),
                            span=span,
                            dtype=DType.I32,
                        ),
                        ir.Const(value=0, span=span, dtype=DType.I32),
                    ),
                    span=span,
                    dtype=DType.I32,
                )
                rest = ir.transform(tuple(block[k + 1 :]), local)
                if banded:
                    rest = owned(rest)
                row = binary("-", name(key, span), name(K_BEGIN, span), span)
                guard = ir.If(
                    cond=within(name(key, span), K_BEGIN, K_END, span),
                    then=(ir.Let(name=local_row, value=row, span=span, declared=DType.I32), *rest),
                    orelse=(),
                    span=span,
                )
                guards.append((guard, "key"))
                return (
                    *out,
                    s,
                    ir.Let(name=key, value=clamped, span=span, declared=DType.I32),
                    guard,
                )
            if isinstance(s, ir.For):
                s = replace(s, body=walk(s.body))
            elif isinstance(s, ir.If):
                s = replace(s, then=walk(s.then), orelse=walk(s.orelse))
            out.append(s)
        return tuple(out)

    return walk(body), guards


class GuardCounter(TripCounter):
    """An item's accesses on one piece: the statements a guard keeps count with the share of
    keys (brackets) the piece holds, keys and brackets taken as evenly used."""

    def __init__(
        self, task: Task, share: float, guards: list[tuple[ir.If, str]], odds: dict[str, float]
    ) -> None:
        form = task.form
        assert isinstance(form, Lookup)
        super().__init__(task, assumed(task, form, share))
        self.guards = guards
        self.odds = odds

    def stmt(self, s: ir.Stmt) -> float:
        for guard, kind in self.guards:
            if s is guard:
                own = sum(self.expr(e) for e in ir.own_exprs(s))
                return own + self.odds[kind] * self.block(s.then)
        return super().stmt(s)


def _odds(task: Task, form: Lookup, piece: Piece) -> dict[str, float]:
    """The share of an item's keys (of the brackets of its searches) that a piece adds for.
    Brackets are taken as evenly used. Keys are not: the busiest piece is taken to hold keys
    used ``SKEW / sqrt(keys it holds)`` times as often as the average key (at least as
    often): XSBench's commonest nuclide is in 3.5x the mean nuclide's share of the lookups,
    and a group of g neighbouring nuclides' busiest sum is 2.9x (g = 2), 1.8x (4), 1.2x (17)
    the mean group's; a piece's excess evens out over the keys it holds."""
    keys = _key_extent(task, form)
    held = piece.keys[1] - piece.keys[0]
    brackets = form.site.extent - 1 if form.site is not None else 1
    return {
        "key": min(1.0, held / keys * max(1.0, SKEW / math.sqrt(held))),
        "band": (piece.owned[1] - piece.owned[0]) / max(brackets, 1),
    }


def item_accesses(
    task: Task, form: Lookup, body: tuple[ir.Stmt, ...], guards, odds: dict[str, float]
) -> tuple[float, float]:
    """An item's accesses on a piece: those made whatever the data-dependent loops' trips,
    and those per extent of the loops."""
    fixed = GuardCounter(task, 0.0, guards, odds).block(body)
    return fixed, GuardCounter(task, 1.0, guards, odds).block(body) - fixed


def partial_work(accesses: tuple[float, float], count: int, zero: int) -> tuple[int, ...]:
    """Modelled instructions of each worker of a piece's partial-sum vertex over ``count``
    items: per item ``zero`` stores clearing its partial rows, then the body's accesses."""
    fixed, per_trip = accesses
    share = [len(range(w, count, WORKERS)) for w in range(WORKERS)]
    spread_over = max(1, min(count, WORKERS))
    return tuple(
        instructions(n * (fixed + zero) + per_trip * slowest_trips(n, 1.0, spread_over)) if n else 0
        for n in share
    )


def reduce_work(elements: int, pieces: int) -> tuple[int, ...]:
    """Modelled instructions of each worker of a reduction vertex over ``elements`` output
    elements: per element one read of every piece's partial sum and the output's read and
    write."""
    return tuple(
        instructions(len(range(w, elements, WORKERS)) * (pieces + 2)) for w in range(WORKERS)
    )


def _table_bytes(task: Task, form: Lookup, shapes: dict[str, tuple[int, ...]]) -> int:
    return sum(_param_bytes(task, t, s) for t, s in shapes.items())


def plan_split(task: Task, form: Lookup, graph: TaskGraph, tiles: range) -> SplitBlocks | str:
    """The split with the fewest modelled cycles on ``tiles``, or why there is none."""
    why = refusal(task, form)
    if why is not None:
        return why
    found = item_tensors(task, form, form.outputs)
    if isinstance(found, str):
        return found
    items, others = found
    keyed = {name: region for name, region in others.items() if name in form.tables}
    tables = {name: region for name, region in others.items() if name not in form.tables}
    why = item_loop_refusal(form, items)
    if why is not None:
        return why
    count = form.end - form.first
    widths = {o: math.prod(items[o].view_shape[1:]) for o in sorted(form.outputs)}
    per_item = sum(_param_bytes(task, t, r.view_shape[1:]) for t, r in items.items())
    inbound = per_item - 4 * sum(widths.values())  # the item inputs a piece receives
    small = sum(_param_bytes(task, t, r.view_shape) for t, r in tables.items())
    extent = _key_extent(task, form)
    item_tiles = min(len(tiles), count)
    held_items = per_item * -(-count // item_tiles)
    best: tuple[float, SplitBlocks] | None = None
    smallest = None
    depths = BAND_DEPTHS if form.site is not None else range(1)
    for depth in depths:
        bands = 1 << depth
        for keys in sorted({-(-extent // k) for k in range(1, extent + 1)}):
            made = piece_tables(task, form, keys, bands)
            if made is None:
                continue
            pieces, shapes = made
            if len(pieces) > len(tiles):
                continue
            table = _table_bytes(task, form, shapes)
            smallest = table if smallest is None else min(smallest, table)
            if table + 2 * small + held_items + MARGIN >= GC200.tile_memory:
                continue
            per = 4 * sum(widths.values())
            # vertex state per batch on a piece tile: the partial-sum vertex's fields (8 bytes
            # per vector, 4 per state word) and the reduction vertex's two vectors per output
            state = 8 * (len(items) + len(tables) + len(keyed)) + 4 * 7 + 16 * len(widths)
            room = GC200.tile_memory - table - 2 * small - held_items - MARGIN
            most = len(tiles) // len(pieces)
            for groups in sorted({*(1 << k for k in range(most.bit_length())), most}):
                share = -(-count // groups)  # a group's items
                chunk = 0
                batches = 1
                for _ in range(3):  # vertex state grows with the batches, batches with it
                    free = room - batches * (2 * state + 64)
                    # a piece holds its partial sums and receives the batch's item inputs,
                    # then (its share of the reduction) every piece's partial sums of its items
                    chunk = free // (per + max(inbound, int(per * (1 + 1 / len(pieces))) + 1))
                    if chunk <= 0:
                        break
                    batches = -(-share // chunk)
                if chunk <= 0 or 2 * batches * len(pieces) * groups > MAX_VERTICES:
                    continue
                found = _finish(
                    task, form, graph, tiles, pieces, bands, count, batches, item_tiles, groups
                )
                found = replace(
                    found,
                    item_regions=items,
                    keyed=keyed,
                    tables=tables,
                    widths=widths,
                    shapes=shapes,
                )
                cycles = estimate(task, form, found)
                if best is None or cycles < best[0]:
                    best = (cycles, found)
    if best is None:
        if smallest is not None and smallest > GC200.tile_memory:
            return (
                f"its key tables cut into at most {len(tiles)} pieces (one per tile) leave "
                f"{smallest:,} bytes on a tile, more than its {GC200.tile_memory:,}"
            )
        return (
            f"its key tables cut into at most {len(tiles)} pieces leave no room on a tile for "
            "a batch of items"
        )
    return _mapped(task, form, graph, best[1])


def _finish(
    task: Task,
    form: Lookup,
    graph: TaskGraph,
    tiles: range,
    pieces: tuple[Piece, ...],
    bands: int,
    count: int,
    batches: int,
    item_tiles: int,
    groups: int,
) -> SplitBlocks:
    cuts = Split(count, batches)
    spans = tuple(
        (form.first + cuts.start(b), form.first + cuts.start(b) + cuts.size(b))
        for b in range(batches)
    )
    names = {t.name for t in graph.tensors} | {s.name for s in graph.scalars}
    temps = {}
    for out in sorted(form.outputs):
        temp, k = f"{task.name}_{out}_partial", 1
        while temp in names:
            k += 1
            temp = f"{task.name}_{out}_partial{k}"
        temps[out] = temp
        names.add(temp)
    replicas = {}
    for param in sorted(form.tables):
        tensor = task.binding(param).region.tensor
        made = []
        for r in range(1, groups):
            copy, k = f"{tensor}_replica{r}", 1
            while copy in names:
                k += 1
                copy = f"{tensor}_replica{r}_{k}"
            names.add(copy)
            made.append(copy)
        replicas[param] = tuple(made)
    chunk = -(-cuts.largest // groups)
    return SplitBlocks(
        pieces,
        bands,
        spans,
        chunk,
        tiles[0],
        item_tiles,
        {},
        {},
        {},
        {},
        {},
        temps,
        {},
        groups,
        replicas,
    )


def _mapped(task: Task, form: Lookup, graph: TaskGraph, blocks: SplitBlocks) -> SplitBlocks:
    """Where the tensors live: item-indexed ones spread over the item tiles, each key table's
    pieces on their tiles, the small tables cut over the piece tiles."""
    shapes = {t.name: t.shape for t in graph.tensors}
    mappings: dict[str, TileMap] = {}
    count = form.end - form.first
    split = Split(count, blocks.item_tiles)
    for region in blocks.item_regions.values():
        view = region.view_shape
        inner = tuple(form.first + x for x in split.bounds[1:-1])
        cuts = ((0, *inner, view[0]), *((0, n) for n in view[1:]))
        placed = spread(region, shapes[region.tensor], cuts)
        tile_of = tuple(blocks.first + k for k in range(len(placed[0]) - 1))
        mappings[region.tensor] = TileMap(placed, tile_of)
    site = form.site
    for name, region in blocks.keyed.items():
        if region.tensor in mappings:
            continue
        keys = sorted({p.keys for p in blocks.pieces})
        view = region.view_shape
        dim0 = (0, *(k[0] for k in keys[1:]), view[0])
        if blocks.bands > 1 and name != site.table:
            bands = [p.owned for p in blocks.pieces[: blocks.bands]]
            dim1 = (0, *(b[0] + 1 for b in bands[1:]), view[1])
            tile_of = tuple(blocks.first + p for p in range(len(blocks.pieces)))
            cuts = (dim0, dim1, *((0, n) for n in view[2:]))
        else:
            tile_of = tuple(
                blocks.first + g * blocks.bands for g in range(len(blocks.pieces) // blocks.bands)
            )
            cuts = (dim0, *((0, n) for n in view[1:]))
        placed = spread(region, shapes[region.tensor], cuts)
        mappings[region.tensor] = TileMap(placed, tile_of)
        q = len(blocks.pieces)
        for r, copy in enumerate(blocks.replicas[name], start=1):
            mappings[copy] = TileMap(placed, tuple(t + r * q for t in tile_of))
    for region in blocks.tables.values():
        if region.tensor in mappings:
            continue
        if not region.box:
            mappings[region.tensor] = TileMap.whole((), blocks.first)
            continue
        rows = region.box[0][1] - region.box[0][0]
        cut_rows = Split(rows, max(1, min(len(blocks.pieces), rows)))
        cuts = (cut_rows.bounds, *((0, hi - lo) for lo, hi in region.box[1:]))
        placed = spread(region, shapes[region.tensor], cuts)
        tile_of = tuple(blocks.first + k for k in range(cut_rows.parts))
        mappings[region.tensor] = TileMap(placed, tile_of)
    for b in task.bindings:
        if b.scalar is not None:
            mappings[b.scalar] = TileMap.whole((), blocks.first)
    for out, temp in blocks.temps.items():
        rows = blocks.groups * len(blocks.pieces)
        cuts = (tuple(range(rows + 1)), (0, blocks.chunk * blocks.widths[out]))
        mappings[temp] = TileMap(cuts, tuple(blocks.first + p for p in range(rows)))
    return replace(blocks, mappings=mappings)


def _body(task: Task, form: Lookup, blocks: SplitBlocks):
    extent = _key_extent(task, form)
    return _guarded(form.loop.body, form, blocks.bands > 1, extent)


def estimate(task: Task, form: Lookup, blocks: SplitBlocks) -> float:
    """Modelled cycles of the split (compute, exchange and sync of its compute sets), to weigh
    it against other splits and against replicated tables."""
    body, guards = _body(task, form, blocks)
    zero = sum(blocks.widths.values())
    busiest = max(blocks.pieces, key=lambda p: tuple(_odds(task, form, p).values()))
    odds = _odds(task, form, busiest)
    q = len(blocks.pieces)
    width = sum(blocks.widths.values())
    inbound = sum(
        _param_bytes(task, t, r.view_shape[1:])
        for t, r in blocks.item_regions.items()
        if t not in form.outputs
    )
    accesses = item_accesses(task, form, body, guards, odds)
    total = 0.0
    for t in blocks.keyed:  # a Copy per table and replica: each tile receives its piece
        piece = _param_bytes(task, t, blocks.shapes[t])
        total += (blocks.groups - 1) * (piece / 4 + 90)
    for lo, hi in blocks.batches:
        n = -(-(hi - lo) // blocks.groups)
        work = partial_work(accesses, n, zero)
        total += WORKERS * max(work)
        total += n * inbound / 4 + 2 * 90
        share = -(-n // q)
        total += WORKERS * max(reduce_work(share * width, q)) + 2 * share * width * q
    return total


class SplitLowering:
    """Lowers a task planned by ``plan_split``: per batch, the partial-sum compute set and the
    reduction compute set (phases 2b and 2b + 1)."""

    def lower(
        self, task: Task, form: Lookup, blocks: SplitBlocks, cls: str, step: int
    ) -> tuple[LoweredTask, ...]:
        partial = self._partial(task, form, blocks, cls)
        combine = self._combine(task, blocks, f"{cls}_reduce")
        q = len(blocks.pieces)
        rows = blocks.groups * q
        temps = tuple(
            Temp(t, DType.F32, (rows, blocks.chunk * blocks.widths[o]), blocks.mappings[t])
            for o, t in blocks.temps.items()
        )
        dtypes = {p.name: p.dtype for p in task.kernel.all_params}
        copies = []
        for param, made in blocks.replicas.items():
            for copy in made:
                mapping = blocks.mappings[copy]
                shape = tuple(c[-1] for c in mapping.cuts)
                temps += (Temp(copy, dtypes[param], shape, mapping),)
                copies.append((blocks.keyed[param].tensor, copy))
        keys = sorted({p.keys for p in blocks.pieces})
        bands = f" x {blocks.bands} energy bands" if blocks.bands > 1 else ""
        replicated = (
            f", copied on the device to {blocks.groups - 1} more groups of {q} tiles "
            "before the first batch, each group taking a share of every batch's items"
            if blocks.groups > 1
            else ""
        )
        describe = (
            f"form Lookup, tables split: the key tables {', '.join(sorted(blocks.keyed))} cut "
            f"into {len(keys)} key groups{bands}, one piece per tile (tiles {blocks.first}.."
            f"{blocks.first + q - 1}){replicated}; the {form.end - form.first} items in "
            f"{len(blocks.batches)} batch(es) (a piece's share: up to {blocks.chunk} items), "
            "each one compute set of "
            "partial sums per piece and one that adds the pieces' partial sums per item in "
            f"piece order; {assumptions(task, form)}, brackets evenly used, the busiest "
            f"piece's keys {SKEW:g} / sqrt(keys held) times as used as the mean key"
        )
        out = []
        for b, (lo, hi) in enumerate(blocks.batches):
            out.append(
                LoweredTask(
                    task,
                    step,
                    partial[0],
                    self._partials(task, blocks, lo, hi),
                    describe if b == 0 else f"batch {b}: items {lo}..{hi - 1}, partial sums",
                    partial[1],
                    partial[2],
                    phase=2 * b,
                    temps=temps if b == 0 else (),
                    copies=tuple(copies) if b == 0 else (),
                )
            )
            out.append(
                LoweredTask(
                    task,
                    step,
                    combine,
                    self._reductions(blocks, lo, hi),
                    f"batch {b}: items {lo}..{hi - 1}, partial sums added in piece order",
                    frozenset(),
                    phase=2 * b + 1,
                )
            )
        return tuple(replace(low, workers=self.cycles(low)) for low in out)

    def _partial(self, task: Task, form: Lookup, blocks: SplitBlocks, cls: str):

        def edge(param: str, region: Region) -> tuple[str, str]:
            if param in form.outputs:
                return "InOut", f"the batch's partial sums of {region} for this piece's keys"
            if param in blocks.item_regions:
                return "Input", f"the batch's rows of {region}"
            if param in blocks.keyed:
                return "Input", f"this piece's keys (and band) of {region}"
            return "Input", f"{region}"

        state = STATE[: 5 if blocks.bands > 1 else 2]
        body, _ = _body(task, form, blocks)
        items = blocks.item_regions
        vertex = ItemVertex.of(task, form, edge, blocks.shapes, "batch", items, body, state)
        names, v, first = vertex.names, vertex.var, vertex.first
        clear = []
        for out, width in blocks.widths.items():
            k = names.fresh("k")
            clear += [
                f"for (int {k} = 0; {k} < {width}; ++{k}) {{",
                f"  {vertex.gen.values[out]}[({v} - {first}) * {width} + {k}] = 0.0f;",
                "}",
            ]
        lines = vertex.body(f"  {line}" for line in clear)
        about = "form Lookup, one piece of the key tables per tile: partial sums of a batch"
        guessed = TripCounter(task, assumed(task, form, 1.0))
        guessed.block(form.loop.body)
        return (
            Codelet(cls, True, vertex.fields, lines, about),
            frozenset(vertex.gen.helpers),
            guessed.guessed,
        )

    def _partials(self, task: Task, blocks: SplitBlocks, lo: int, hi: int) -> tuple[Instance, ...]:
        form = task.form
        assert isinstance(form, Lookup)
        bound = [task.binding(q.name) for q in task.kernel.all_params]
        out = []
        for r, (first, end) in enumerate(blocks.shares(lo, hi)):
            if end == first:
                continue
            fixed = {}  # the group's edges every piece shares: its items, small tables whole
            for b in bound:
                if b.region is not None and b.param in blocks.item_regions:
                    view = ((first, end), *((0, n) for n in b.region.view_shape[1:]))
                    fixed[b.param] = Edge(b.region.tensor, region_box(b.region, view))
                elif b.region is not None and b.param in blocks.tables:
                    fixed[b.param] = Edge(b.region.tensor, b.region.box)
            for p, piece in enumerate(blocks.pieces):
                row = r * len(blocks.pieces) + p
                edges = []
                for b in bound:
                    if b.param in blocks.temps:  # the output: this piece's partial sums
                        box = ((row, row + 1), (0, (end - first) * blocks.widths[b.param]))
                        edges.append(Edge(blocks.temps[b.param], box))
                    elif b.param in fixed:
                        edges.append(fixed[b.param])
                    elif b.region is not None:  # a key table: the piece's keys (and band)
                        rest = tuple((0, n) for n in b.region.view_shape[1:])
                        if blocks.bands > 1 and b.param != form.site.table:
                            rest = (piece.stored, *rest[1:])
                        box = region_box(b.region, (piece.keys, *rest))
                        tensor = blocks.replicas[b.param][r - 1] if r else b.region.tensor
                        edges.append(Edge(tensor, box))
                    elif b.scalar is not None:
                        edges.append(Edge(b.scalar, ()))
                state = [first, end, *piece.keys]
                if blocks.bands > 1:
                    state += [piece.stored[0], *piece.owned]
                out.append(Instance(blocks.tile(r, p), tuple(edges), tuple(state)))
        return tuple(out)

    def _combine(self, task: Task, blocks: SplitBlocks, cls: str) -> Codelet:
        names = Names()
        fields = []
        body = []
        for out in blocks.widths:
            parts = names.derived(f"{names(out)}Parts")
            fields += [
                CodeletField(
                    parts, "vector", "Input", DType.F32, "the pieces' partial sums, piece-major"
                ),
                CodeletField(names(out), "vector", "InOut", DType.F32, "the items' output rows"),
            ]
            n, i = names.fresh("n"), names.fresh("i")
            p, s = names.fresh("p"), names.fresh("sum")
            body += [
                f"const unsigned {n} = {names(out)}.size();",
                f"for (unsigned {i} = workerId; {i} < {n}; {i} += numWorkers()) {{",
                f"  float {s} = 0.0f;",
                f"  for (unsigned {p} = {i}; {p} < {parts}.size(); {p} += {n}) {{",
                f"    {s} += {parts}[{p}];",
                "  }",
                f"  {names(out)}[{i}] += {s};",
                "}",
            ]
        about = "form Lookup, tables split: the pieces' partial sums added in piece order"
        return Codelet(cls, True, tuple(fields), tuple(body), about)

    def _reductions(self, blocks: SplitBlocks, lo: int, hi: int) -> tuple[Instance, ...]:
        q = len(blocks.pieces)
        out = []
        for r, (first, end) in enumerate(blocks.shares(lo, hi)):
            if end == first:
                continue
            share = Split(end - first, min(q, end - first))
            for k in range(share.parts):
                a = share.start(k)
                b = a + share.size(k)
                edges = []
                for o, width in blocks.widths.items():
                    region = blocks.item_regions[o]
                    rows = (r * q, r * q + q)
                    edges.append(Edge(blocks.temps[o], (rows, (a * width, b * width))))
                    view = ((first + a, first + b), *((0, n) for n in region.view_shape[1:]))
                    edges.append(Edge(region.tensor, region_box(region, view)))
                out.append(Instance(blocks.tile(r, k), tuple(edges), ()))
        return tuple(out)

    def cycles(self, lowered: LoweredTask) -> tuple[tuple[int, ...], ...]:
        task = lowered.task
        form = task.form
        assert isinstance(form, Lookup)
        if lowered.phase % 2:
            rows = lowered.instances[0].edges[0].box[0]
            q = rows[1] - rows[0]
            return tuple(
                reduce_work(
                    sum(e.box[1][1] - e.box[1][0] for e in inst.edges[::2]),
                    q,
                )
                for inst in lowered.instances
            )
        banded = len(lowered.state_fields) > 4
        keys = _key_extent(task, form)
        brackets = form.site.extent - 1 if form.site is not None else 1
        body, guards = _guarded(form.loop.body, form, banded, keys)
        zero = sum(math.prod(task.binding(o).region.view_shape[1:]) for o in form.outputs)
        out = []
        known: dict[tuple[float, float], tuple[float, float]] = {}
        for inst in lowered.instances:
            count = inst.state[1] - inst.state[0]
            stored = (0, 0)
            owned = (0, brackets)
            if banded:
                stored, owned = (inst.state[4], 0), (inst.state[5], inst.state[6])
            piece = Piece((inst.state[2], inst.state[3]), stored, owned)
            odds = _odds(task, form, piece)
            share = (odds["key"], odds["band"])
            if share not in known:
                known[share] = item_accesses(task, form, body, guards, odds)
            out.append(partial_work(known[share], count, zero))
        return tuple(out)
