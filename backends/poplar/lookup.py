"""The ``Lookup`` form on the IPU (XS lookups): items spread over tiles, tables replicated (or,
where that does not fit or is slower, split: split.py).

The item range is cut into near-equal blocks, one per tile; each tile holds its block of every
item-indexed tensor (``energy``, ``material``, the output rows) and runs one MultiVertex whose
six workers take the block's items in turn, each item's additions in the kernel's order (so the
result is bit-exact). The tables the key indexes (and the small per-material tables) are
connected whole to every vertex: a vertex indexes them with data-dependent keys, and Poplar's
exchange is static, so every tile that runs items receives a copy before the compute set
(poplar.md §6.2, "Monte Carlo lookups"). The tables are stored cut by their first dimension over
the item tiles. ``LookupLowering`` weighs this plan against the split one (split.py) by
modelled cycles and keeps the faster of those that fit.

The model counts each item's accesses as the emitted code makes them, with two data-dependent
trip counts taken from stated assumptions: a loop whose bound is read from a table runs half the
extent of the table dimension its variable indexes (the mean of counts spread evenly over
0 .. extent), and a ``search`` of n elements makes floor(log2 n) + 1 probes (the most its
bisection can make; it makes one fewer for some keys).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kernelc import ir
from kernelc.backends.poplar.codelet import CPP_TYPE, literal
from kernelc.backends.poplar.cost import instructions
from kernelc.backends.poplar.items import (
    ItemCodelet,
    TripCounter,
    assumed,
    assumptions,
    per_item,
    view_shape,
)
from kernelc.backends.poplar.lowered import (
    Codelet,
    CodeletField,
    Edge,
    Instance,
    LoweredTask,
    TileMap,
    region_box,
    spread,
)
from kernelc.backends.poplar.machine import GC200, WORKERS
from kernelc.backends.poplar.names import Names
from kernelc.backends.poplar.split import SplitBlocks, SplitLowering, estimate, plan_split
from kernelc.forms.blocks import Split
from kernelc.forms.lookup import Lookup, slowest_trips
from kernelc.graph import Region, Task, TaskGraph
from kernelc.types import DType

SPLIT = SplitLowering()


@dataclass(frozen=True)
class LookupBlocks:
    items: Split  # the item range first .. end over the tiles
    first_item: int  # the item loop's first item
    first: int  # the first tile
    item_regions: dict[str, Region]  # item-indexed parameters (outputs included)
    tables: dict[str, Region]  # every other tensor parameter: connected whole
    mappings: dict[str, TileMap]

    @property
    def tiles_used(self) -> int:
        return self.items.parts

    def rows(self, k: int) -> tuple[int, int]:
        """Items of block ``k``: first, last + 1."""
        lo = self.first_item + self.items.start(k)
        return lo, lo + self.items.size(k)


def _nbytes(task: Task, param: str) -> int:
    """Bytes of a tensor parameter's view."""
    dtype = next(p.dtype for p in task.kernel.all_params if p.name == param)
    return math.prod(view_shape(task, param)) * dtype.numpy.itemsize


class LookupLowering:
    """Tables replicated to every tile that runs items, or split by key (and energy band) over
    tiles (split.py): the plan with fewer modelled cycles among those that fit."""

    def plan(
        self, task: Task, form: Lookup, graph: TaskGraph, tiles: range
    ) -> LookupBlocks | SplitBlocks | str:
        whole = self._replicated(task, form, graph, tiles)
        if isinstance(whole, str) and not form.tables:
            return whole
        parts = plan_split(task, form, graph, tiles)
        if isinstance(parts, str):
            if isinstance(whole, str):
                return f"{whole}; split: {parts}"
            return whole
        if isinstance(whole, str) or estimate(task, form, parts) < _estimate(task, form, whole):
            return parts
        return whole

    def _replicated(
        self, task: Task, form: Lookup, graph: TaskGraph, tiles: range
    ) -> LookupBlocks | str:
        items: dict[str, Region] = {}
        tables: dict[str, Region] = {}
        outputs = {p.name for p in task.kernel.outputs}
        for p in task.kernel.all_params:
            region = task.binding(p.name).region
            if region is None:
                continue
            if p.name in form.items:
                if not all(region.keep):
                    return f"item-indexed '{p.name}' is a view that drops dimensions"
                items[p.name] = region
            elif p.name in outputs:
                return f"output '{p.name}' is not indexed by the item"
            else:
                tables[p.name] = region
        for out in outputs:
            for name, region in (*items.items(), *tables.items()):
                if name != out and items[out].overlaps(region):
                    return f"it reads '{name}' and writes '{out}', views of one tensor"
        count = form.end - form.first
        if count <= 0:
            return "its item loop is empty"
        for name, region in items.items():
            if region.view_shape[0] < form.end:
                return f"item-indexed '{name}' has fewer rows than the item loop's range"
        parts = min(len(tiles), count)
        split = Split(count, parts)
        replicated = sum(_nbytes(task, t) for t in tables)
        per_item = sum(_nbytes(task, t) // max(1, r.view_shape[0]) for t, r in items.items())
        held = replicated + per_item * split.largest
        if held > GC200.tile_memory:  # GC200 and Bow tiles hold the same
            return (
                f"its tables ({replicated:,} bytes) and a tile's items "
                f"({per_item * split.largest:,} bytes) do not fit one tile's "
                f"{GC200.tile_memory:,} bytes replicated"
            )
        blocks = LookupBlocks(split, form.first, tiles[0], items, tables, {})
        shapes = {t.name: t.shape for t in graph.tensors}
        for region in items.values():
            view = region.view_shape
            inner = tuple(form.first + x for x in split.bounds[1:-1])
            cuts = ((0, *inner, view[0]), *((0, n) for n in view[1:]))
            placed = spread(region, shapes[region.tensor], cuts)
            tile_of = tuple(blocks.first + k for k in range(len(placed[0]) - 1))
            blocks.mappings[region.tensor] = TileMap(placed, tile_of)
        for region in tables.values():
            if region.tensor in blocks.mappings:
                continue
            if not region.box:
                blocks.mappings[region.tensor] = TileMap.whole((), blocks.first)
                continue
            rows = region.box[0][1] - region.box[0][0]
            cut = Split(rows, max(1, min(parts, rows)))
            cuts = (cut.bounds, *((0, hi - lo) for lo, hi in region.box[1:]))
            placed = spread(region, shapes[region.tensor], cuts)
            tile_of = tuple(blocks.first + k for k in range(cut.parts))
            blocks.mappings[region.tensor] = TileMap(placed, tile_of)
        for b in task.bindings:
            if b.scalar is not None:
                blocks.mappings[b.scalar] = TileMap.whole((), blocks.first)
        return blocks

    def lower(
        self, task: Task, form: Lookup, blocks: LookupBlocks | SplitBlocks, cls: str, step: int
    ) -> LoweredTask | tuple[LoweredTask, ...]:
        if isinstance(blocks, SplitBlocks):
            return SPLIT.lower(task, form, blocks, cls, step)
        names = Names()
        kernel = task.kernel
        outputs = {p.name for p in kernel.outputs}
        fields: list[CodeletField] = []
        values: dict[str, str] = {}
        shapes: dict[str, tuple[int, ...]] = {}
        dtypes: dict[str, DType] = {}
        prologue: list[str] = []
        edges_of: list[str] = []  # per edge field: a parameter (tensor) or a graph scalar
        for p in kernel.all_params:
            b = task.binding(p.name)
            name = names(p.name)
            if b.region is not None:
                item = p.name in blocks.item_regions
                direction = "InOut" if p.name in outputs else "Input"
                note = f"the block's rows of {b.region}" if item else f"{b.region}, whole"
                fields.append(CodeletField(name, "vector", direction, p.dtype, note))
                edges_of.append(p.name)
                values[p.name] = name
                shapes[p.name] = b.region.view_shape
                dtypes[p.name] = p.dtype
            elif b.scalar is not None:
                fields.append(CodeletField(name, "scalar", "Input", p.dtype))
                edges_of.append(b.scalar)
                values[p.name] = f"(*{name})"
            else:
                prologue.append(
                    f"const {CPP_TYPE[p.dtype]} {name} = {literal(b.constant, p.dtype)};"
                )
                values[p.name] = name
        var = form.loop.var
        first, last = names.derived(f"{var}Begin"), names.derived(f"{var}End")
        fields += [
            CodeletField(first, "state", "", DType.I32, f"the block's first '{var}'"),
            CodeletField(last, "state", "", DType.I32, f"the block's last '{var}' + 1"),
        ]
        gen = ItemCodelet(task.size_env, shapes, dtypes, names, values)
        gen.item_rows = {p: first for p in blocks.item_regions}
        v = names(var)
        gen.values[var] = v
        gen.ranges[var] = (form.first, form.end - 1)
        body = [
            *prologue,
            f"for (int {v} = {first} + int(workerId); {v} < {last}; {v} += int(numWorkers())) {{",
            *gen.block(ir.without_unused_locals(form.loop.body), "  "),  # g++ -Werror
            "}",
        ]
        instances = []
        for k in range(blocks.items.parts):
            lo, hi = blocks.rows(k)
            edges = []
            for e in edges_of:
                if e in blocks.item_regions:
                    region = blocks.item_regions[e]
                    view = ((lo, hi), *((0, n) for n in region.view_shape[1:]))
                    edges.append(Edge(region.tensor, region_box(region, view)))
                elif e in blocks.tables:
                    edges.append(Edge(blocks.tables[e].tensor, blocks.tables[e].box))
                else:
                    edges.append(Edge(e, ()))
            instances.append(Instance(blocks.first + k, tuple(edges), (lo, hi)))
        end = blocks.first + blocks.tiles_used - 1
        table_names = ", ".join(f"'{t}'" for t in sorted(blocks.tables)) or "none"
        describe = (
            f"form Lookup: {blocks.items.parts} blocks of its {form.end - form.first} items, one "
            f"MultiVertex per tile (tiles {blocks.first}..{end}), tables {table_names} "
            f"replicated to every tile by the exchange; {assumptions(task, form)}"
        )
        about = "form Lookup, one block of items per tile"
        codelet = Codelet(cls, True, tuple(fields), tuple(body), about)
        guessed = TripCounter(task, assumed(task, form, 1.0))
        guessed.block(form.loop.body)  # a data-dependent loop no assumption covers: taken as 1
        return LoweredTask(
            task,
            step,
            codelet,
            tuple(instances),
            describe,
            frozenset(gen.helpers),
            guessed.guessed,
        )

    def cycles(self, lowered: LoweredTask) -> tuple[tuple[int, ...], ...]:
        if lowered.workers:  # the split lowering models its phases as it lowers them
            return lowered.workers
        task = lowered.task
        form = task.form
        assert isinstance(form, Lookup)
        busy = sum(inst.state[1] - inst.state[0] > 0 for inst in lowered.instances)
        workers = max(1, min(form.end - form.first, busy * WORKERS))
        return tuple(
            _work(task, form, inst.state[1] - inst.state[0], workers) for inst in lowered.instances
        )


def _work(task: Task, form: Lookup, count: int, workers: int) -> tuple[int, ...]:
    """Modelled instructions of each worker of a vertex running ``count`` items, with
    ``workers`` workers running items in all."""
    fixed = per_item(task, form, 0.0)
    per_trip = per_item(task, form, 1.0) - fixed  # accesses per extent of the loops
    share = [len(range(w, count, WORKERS)) for w in range(WORKERS)]
    return tuple(
        instructions(n * fixed + per_trip * slowest_trips(n, 1.0, workers) if n else 0)
        for n in share
    )


def _estimate(task: Task, form: Lookup, blocks: LookupBlocks) -> float:
    """Modelled cycles with replicated tables: the busiest tile's compute, every tile receiving
    (nearly) all of the tables, one sync."""
    workers = max(1, min(form.end - form.first, blocks.items.parts * WORKERS))
    compute = WORKERS * max(_work(task, form, blocks.items.largest, workers))
    parts = blocks.items.parts
    tables = sum(_nbytes(task, t) for t in blocks.tables) * (parts - 1) / parts
    return compute + tables / 4 + 90
