"""The ``Contraction`` form on the IPU: blocked vertex products over tiles.

C is cut into a grid of row x column blocks, one per tile; each tile's MultiVertex is connected
to its C block, the row panel of A (the block's rows, all of k) and the column panel of B (all
of k, the block's columns), and its six workers take the block's elements in turn, each summed
in f32 in the order of k (as the language's ``sum`` is, so the result is bit-exact). A and B
are stored cut the same way (A by its rows and k, B by k and its columns), so each tile holds a
share of every operand and the exchange assembles the panels (poplar.md §6.2). The k split with
a reduction compute set (tut6, poplin) would add partial sums in another order; it is not done.
``poplin::matMul`` is not used: the IPU model cannot run PopLibs' codelets.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from kernelc.backends.poplar.cost import ACCESS_COST, instructions
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
from kernelc.backends.poplar.machine import WORKERS
from kernelc.backends.poplar.names import Names
from kernelc.forms.blocks import Split
from kernelc.forms.contraction import Contraction
from kernelc.graph import Region, Task, TaskGraph
from kernelc.types import DType


@dataclass(frozen=True)
class ContractionBlocks:
    rows: Split  # C's rows over the grid's rows
    cols: Split  # C's columns over the grid's columns
    first: int
    regions: tuple[Region, Region, Region]  # a, b, c
    mappings: dict[str, TileMap]

    @property
    def tiles_used(self) -> int:
        return self.rows.parts * self.cols.parts

    def tile(self, bi: int, bj: int) -> int:
        return self.first + bi * self.cols.parts + bj


def grid(m: int, n: int, k: int, tiles: int) -> tuple[int, int]:
    """Blocks of C: the fewest modelled cycles of the busiest tile (its worker's products,
    then the panels it receives)."""
    best: tuple[float, tuple[int, int]] | None = None
    for tm in range(1, min(m, tiles) + 1):
        tn = min(n, tiles // tm)
        rows, cols = -(-m // tm), -(-n // tn)
        work = WORKERS * ACCESS_COST * (4 * k + 2) * -(-(rows * cols) // WORKERS)
        exchange = (rows * k + k * cols) * 4 / 4
        key = work + exchange
        if best is None or key < best[0]:
            best = (key, (tm, tn))
    assert best is not None
    return best[1]


class ContractionLowering:
    def plan(
        self, task: Task, form: Contraction, graph: TaskGraph, tiles: range
    ) -> ContractionBlocks | str:
        if not form.plain:
            return "a prologue or epilogue around the product (bare products are lowered)"
        regions = tuple(task.binding(p).region for p in (form.a, form.b, form.c))
        if not all(r is not None and all(r.keep) for r in regions):
            return "an operand is not a whole 2-D view of a tensor"
        tm, tn = grid(form.m, form.n, form.k, len(tiles))
        rows, cols = Split(form.m, tm), Split(form.n, tn)
        a, b, c = regions
        blocks = ContractionBlocks(rows, cols, tiles[0], (a, b, c), {})
        shapes = {t.name: t.shape for t in graph.tensors}
        ks, kt = Split(form.k, tn), Split(form.k, tm)  # k cut for A (by columns), for B (rows)
        for region, first, second in ((a, rows, ks), (b, kt, cols), (c, rows, cols)):
            placed = spread(region, shapes[region.tensor], (first.bounds, second.bounds))
            tiles_ = tuple(
                blocks.tile(x, y)
                for x, y in itertools.product(range(first.parts), range(second.parts))
            )
            blocks.mappings[region.tensor] = TileMap(placed, tiles_)
        return blocks

    def lower(
        self, task: Task, form: Contraction, blocks: ContractionBlocks, cls: str, step: int
    ) -> LoweredTask:
        names = Names()
        a, b, c = (names(p) for p in (form.a, form.b, form.c))
        cols = names.derived("cols")
        ra, rb, rc = blocks.regions
        fields = (
            CodeletField(a, "list", "Input", DType.F32, f"row panel of {ra}: the block's rows"),
            CodeletField(b, "list", "Input", DType.F32, f"column panel of {rb}: its columns"),
            CodeletField(c, "list", "Output", DType.F32, f"the block of {rc}"),
            CodeletField(cols, "state", "", DType.I32, "columns of the block"),
        )
        count, i, j, k = (names(v) for v in ("elements", form.row, form.col, form.red))
        e, acc, prod = names("e"), names("sum"), names("product")
        body = (
            f"const int {count} = int({c}.size()) * {cols};",
            f"for (int {e} = int(workerId); {e} < {count}; {e} += int(numWorkers())) {{",
            f"  const int {i} = {e} / {cols};",
            f"  const int {j} = {e} % {cols};",
            f"  float {acc} = 0.0f;",
            f"  for (int {k} = 0; {k} < {form.k}; ++{k}) {{",
            f"    const float {prod} = {a}[{i}][{k}] * {b}[{k}][{j}];  // rounded: no fma",
            f"    {acc} = {acc} + {prod};",
            "  }",
            f"  {c}[{i}][{j}] = {acc};",
            "}",
        )
        instances = []
        for bi, bj in itertools.product(range(blocks.rows.parts), range(blocks.cols.parts)):
            r0, c0 = blocks.rows.start(bi), blocks.cols.start(bj)
            r1, c1 = r0 + blocks.rows.size(bi), c0 + blocks.cols.size(bj)
            edges = (
                Edge(ra.tensor, region_box(ra, ((r0, r1), (0, form.k)))),
                Edge(rb.tensor, region_box(rb, ((0, form.k), (c0, c1)))),
                Edge(rc.tensor, region_box(rc, ((r0, r1), (c0, c1)))),
            )
            instances.append(Instance(blocks.tile(bi, bj), edges, (c1 - c0,)))
        last = blocks.first + blocks.tiles_used - 1
        describe = (
            f"form Contraction: {blocks.rows.parts} x {blocks.cols.parts} blocks of "
            f"'{form.c}', one MultiVertex per tile (tiles {blocks.first}..{last}) with its A "
            "row panel and B column panel connected"
        )
        codelet = Codelet(cls, True, fields, body, "form Contraction, one block of C per tile")
        return LoweredTask(task, step, codelet, tuple(instances), describe, frozenset())

    def cycles(self, lowered: LoweredTask) -> tuple[tuple[int, ...], ...]:
        form = lowered.task.form
        out = []
        for inst in lowered.instances:
            rows = inst.edges[2].box[0][1] - inst.edges[2].box[0][0]
            elements = rows * inst.state[0]
            out.append(
                tuple(
                    instructions(len(range(w, elements, WORKERS)) * (4 * form.k + 2))
                    for w in range(WORKERS)
                )
            )
        return tuple(out)
