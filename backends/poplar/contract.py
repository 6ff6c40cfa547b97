"""The ``Contraction`` form on the IPU: blocked vertex products over tiles.

C is cut into a grid of row x column blocks, one per tile; each tile's MultiVertex is connected
to its C block, the row panel of A (the block's rows, all of k) and the column panel of B (all
of k, the block's columns), and its six workers take the block's elements in turn, each summed
in f32 in the order of k (as the language's ``sum`` is, so the result is bit-exact). A and B
are stored cut the same way (A by its rows and k, B by k and its columns), so each tile holds a
share of every operand and the exchange assembles the panels (poplar.md §6.2). The k split with
a reduction compute set (tut6, poplin) would add partial sums in another order; it is not done.
``poplin::matMul`` is not used: the IPU model cannot run PopLibs' codelets.

A product's prologues (element-wise work on an operand as the product reads it: an f16
operand widened to f32, centring by a vector over k) and its epilogue (bias, scale, ReLU, casts
of the accumulated sum) run inside the same vertex, element by element where the interpreter
applies them, so the rounding is the interpreter's. The vectors and matrices they read are
connected as the block's share: a dimension indexed by the row follows the block's rows, by
the column its columns, by k all of k.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from kernelc import ir
from kernelc.backends.poplar.codelet import CPP_TYPE, ScalarCodelet, literal
from kernelc.backends.poplar.cost import ACCESS_COST, AccessCounter, instructions
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
from kernelc.diagnostics import Span
from kernelc.forms.blocks import Split
from kernelc.forms.contraction import OPERAND, PRODUCT, Contraction
from kernelc.graph import Region, Task, TaskGraph
from kernelc.types import DType


@dataclass(frozen=True)
class Extra:
    """A tensor the prologues or the epilogue read, each dimension indexed by one of the
    product's loop indices (the row, the column or k)."""

    param: str
    region: Region
    dims: tuple[str, ...]  # per dimension of its view: the loop variable indexing it


@dataclass(frozen=True)
class ContractionBlocks:
    rows: Split  # C's rows over the grid's rows
    cols: Split  # C's columns over the grid's columns
    first: int
    regions: tuple[Region, Region, Region]  # a, b, c
    mappings: dict[str, TileMap]
    extras: tuple[Extra, ...] = ()

    @property
    def tiles_used(self) -> int:
        return self.rows.parts * self.cols.parts

    def tile(self, bi: int, bj: int) -> int:
        return self.first + bi * self.cols.parts + bj


def grid(
    m: int, n: int, k: int, tiles: int, element: int, panel: tuple[int, int]
) -> tuple[int, int]:
    """Blocks of C: the fewest modelled cycles of the busiest tile (its worker's products,
    then the panels it receives). ``element``: the accesses of one element of C; ``panel``:
    the bytes of an element of A and of B."""
    best: tuple[float, tuple[int, int]] | None = None
    for tm in range(1, min(m, tiles) + 1):
        tn = min(n, tiles // tm)
        rows, cols = -(-m // tm), -(-n // tn)
        work = WORKERS * ACCESS_COST * element * -(-(rows * cols) // WORKERS)
        exchange = (rows * k * panel[0] + k * cols * panel[1]) / 4  # 4 bytes a cycle
        key = work + exchange
        if best is None or key < best[0]:
            best = (key, (tm, tn))
    assert best is not None
    return best[1]


class ContractionLowering:
    def plan(
        self, task: Task, form: Contraction, graph: TaskGraph, tiles: range
    ) -> ContractionBlocks | str:
        regions = tuple(task.binding(p).region for p in (form.a, form.b, form.c))
        if not all(r is not None and all(r.keep) for r in regions):
            return "an operand is not a whole 2-D view of a tensor"
        a, b, c = regions
        extras = _extras(task, form)
        if isinstance(extras, str):
            return extras
        dtypes = {p.name: p.dtype for p in task.kernel.all_params}
        element = _element_accesses(task, form)
        panel = (dtypes[form.a].numpy.itemsize, dtypes[form.b].numpy.itemsize)
        tm, tn = grid(form.m, form.n, form.k, len(tiles), element, panel)
        rows, cols = Split(form.m, tm), Split(form.n, tn)
        blocks = ContractionBlocks(rows, cols, tiles[0], (a, b, c), {}, extras)
        shapes = {t.name: t.shape for t in graph.tensors}
        ks, kt = Split(form.k, tn), Split(form.k, tm)  # k cut for A (by columns), for B (rows)
        for region, first, second in ((a, rows, ks), (b, kt, cols), (c, rows, cols)):
            placed = spread(region, shapes[region.tensor], (first.bounds, second.bounds))
            tiles_ = tuple(
                blocks.tile(x, y)
                for x, y in itertools.product(range(first.parts), range(second.parts))
            )
            blocks.mappings[region.tensor] = TileMap(placed, tiles_)
        for extra in extras:
            splits = {form.row: rows, form.col: cols}
            cuts = tuple(splits[v].bounds if v in splits else (0, form.k) for v in extra.dims)
            placed = spread(extra.region, shapes[extra.region.tensor], cuts)
            tiles_ = []
            for block in itertools.product(*(range(len(cut) - 1) for cut in cuts)):
                at = {v: x for v, x in zip(extra.dims, block, strict=True)}
                tiles_.append(blocks.tile(at.get(form.row, 0), at.get(form.col, 0)))
            blocks.mappings.setdefault(extra.region.tensor, TileMap(placed, tuple(tiles_)))
        return blocks

    def lower(
        self, task: Task, form: Contraction, blocks: ContractionBlocks, cls: str, step: int
    ) -> LoweredTask:
        names = Names()
        dtypes = {p.name: p.dtype for p in task.kernel.all_params}
        a, b, c = (names(p) for p in (form.a, form.b, form.c))
        ra, rb, rc = blocks.regions
        fields = [
            CodeletField(
                a, "list", "Input", dtypes[form.a], f"row panel of {ra}: the block's rows"
            ),
            CodeletField(b, "list", "Input", dtypes[form.b], f"column panel of {rb}: its columns"),
            CodeletField(c, "list", "Output", dtypes[form.c], f"the block of {rc}"),
        ]
        values = {form.a: a, form.b: b, form.c: c}
        shapes = {form.a: (form.m, form.k), form.b: (form.k, form.n), form.c: (form.m, form.n)}
        what = {form.row: "the block's rows", form.col: "the block's columns", form.red: "all of k"}
        for extra in blocks.extras:
            name = names(extra.param)
            kind = "list" if len(extra.dims) == 2 else "vector"
            note = f"{extra.region}: " + ", ".join(what[v] for v in extra.dims)
            fields.append(CodeletField(name, kind, "Input", dtypes[extra.param], note))
            values[extra.param] = name
            shapes[extra.param] = extra.region.view_shape
        constants = []
        for param in _scalar_params(task, form):
            binding = task.binding(param)
            name = names(param)
            if binding.scalar is not None:
                fields.append(CodeletField(name, "scalar", "Input", dtypes[param]))
                values[param] = f"(*{name})"
            else:
                ctype, value = CPP_TYPE[dtypes[param]], literal(binding.constant, dtypes[param])
                constants.append(f"const {ctype} {name} = {value};")
                values[param] = name
        cols = names.derived("cols")
        fields.append(CodeletField(cols, "state", "", DType.I32, "columns of the block"))
        i, j, k = (names(v) for v in (form.row, form.col, form.red))
        count, e = names.derived("elements"), names.derived("e")
        acc, prod = names.derived("sum"), names.derived("product")
        values.update({form.row: i, form.col: j, form.red: k, PRODUCT: acc})
        gen = ContractionCodelet(task.size_env, shapes, dtypes, names, values)
        gen.ranges.update({form.row: (0, form.m - 1), form.col: (0, form.n - 1)})
        gen.ranges[form.red] = (0, form.k - 1)
        product = gen.value(_product(form, task.span))
        (store,) = gen.stmt(_store(form, task.span), "  ")
        body = (
            *constants,
            f"const int {count} = int({c}.size()) * {cols};",
            f"for (int {e} = int(workerId); {e} < {count}; {e} += int(numWorkers())) {{",
            f"  const int {i} = {e} / {cols};",
            f"  const int {j} = {e} % {cols};",
            f"  float {acc} = 0.0f;",
            f"  for (int {k} = 0; {k} < {form.k}; ++{k}) {{",
            f"    const float {prod} = {product};  // rounded: no fma",
            f"    {acc} = {acc} + {prod};",
            "  }",
            store,
            "}",
        )
        instances = []
        graph_scalars = [
            Edge(scalar, ())
            for scalar in (task.binding(p).scalar for p in _scalar_params(task, form))
            if scalar is not None
        ]
        for bi, bj in itertools.product(range(blocks.rows.parts), range(blocks.cols.parts)):
            r0, c0 = blocks.rows.start(bi), blocks.cols.start(bj)
            r1, c1 = r0 + blocks.rows.size(bi), c0 + blocks.cols.size(bj)
            spans = {form.row: (r0, r1), form.col: (c0, c1), form.red: (0, form.k)}
            edges = [
                Edge(ra.tensor, region_box(ra, ((r0, r1), (0, form.k)))),
                Edge(rb.tensor, region_box(rb, ((0, form.k), (c0, c1)))),
                Edge(rc.tensor, region_box(rc, ((r0, r1), (c0, c1)))),
            ]
            for extra in blocks.extras:
                view = tuple(spans[v] for v in extra.dims)
                edges.append(Edge(extra.region.tensor, region_box(extra.region, view)))
            edges += graph_scalars
            instances.append(Instance(blocks.tile(bi, bj), tuple(edges), (c1 - c0,)))
        last = blocks.first + blocks.tiles_used - 1
        around = "" if form.plain else ", its prologue and epilogue applied in the vertex"
        describe = (
            f"form Contraction: {blocks.rows.parts} x {blocks.cols.parts} blocks of "
            f"'{form.c}', one MultiVertex per tile (tiles {blocks.first}..{last}) with its A "
            f"row panel and B column panel connected{around}"
        )
        codelet = Codelet(
            cls, True, tuple(fields), body, "form Contraction, one block of C per tile"
        )
        return LoweredTask(task, step, codelet, tuple(instances), describe, frozenset(gen.helpers))

    def cycles(self, lowered: LoweredTask) -> tuple[tuple[int, ...], ...]:
        task = lowered.task
        element = _element_accesses(task, task.form)
        out = []
        for inst in lowered.instances:
            rows = inst.edges[2].box[0][1] - inst.edges[2].box[0][0]
            elements = rows * inst.state[0]
            out.append(
                tuple(
                    instructions(len(range(w, elements, WORKERS)) * element) for w in range(WORKERS)
                )
            )
        return tuple(out)


class ContractionCodelet(ScalarCodelet):
    """The prologues and epilogue of a block's product: every field is indexed by the block's
    own rows, columns and k (the boxes start at the block)."""

    def index(self, e: ir.Expr) -> str:
        """A loop index as its variable, also where its range is one value (the block's own
        index is not the whole tensor's)."""
        if isinstance(e, ir.Name) and e.name in self.ranges:
            return self.values[e.name]
        return super().index(e)

    def element(self, tensor: str, idx: list[str]) -> str:
        return self.values[tensor] + "".join(f"[{i}]" for i in idx)


def _product(form: Contraction, span: Span) -> ir.Expr:
    """``prologue_a(a[row, k]) * prologue_b(b[k, col])``, as the vertex computes it."""
    rows, cols, red = (_index(v, span) for v in (form.row, form.col, form.red))
    a = ir.Load(tensor=form.a, indices=(rows, red), span=span, dtype=_dtype(form.prologue_a))
    b = ir.Load(tensor=form.b, indices=(red, cols), span=span, dtype=_dtype(form.prologue_b))
    lhs, rhs = _around(form.prologue_a, a), _around(form.prologue_b, b)
    return ir.Binary(op="*", lhs=lhs, rhs=rhs, span=span, dtype=DType.F32)


def _store(form: Contraction, span: Span) -> ir.Store:
    """``c[row, col] = epilogue(sum)``."""
    total = ir.Name(name=PRODUCT, span=span, dtype=DType.F32)
    value = total if form.epilogue is None else form.epilogue
    indices = (_index(form.row, span), _index(form.col, span))
    return ir.Store(tensor=form.c, indices=indices, op="=", value=value, span=span)


def _index(name: str, span: Span) -> ir.Name:
    return ir.Name(name=name, span=span, dtype=DType.I32)


def _dtype(prologue: ir.Expr | None) -> DType:
    """The element type of an operand: its placeholder's in the prologue (f32 without one)."""
    if prologue is None:
        return DType.F32
    found = next(n for n in ir.walk(prologue) if isinstance(n, ir.Name) and n.name == OPERAND)
    assert found.dtype is not None
    return found.dtype


def _around(prologue: ir.Expr | None, load: ir.Load) -> ir.Expr:
    """The prologue applied to the operand's load."""
    if prologue is None:
        return load
    return ir.transform(
        prologue, lambda n: load if isinstance(n, ir.Name) and n.name == OPERAND else n
    )


def _sides(form: Contraction) -> tuple[ir.Expr, ...]:
    """The prologues and the epilogue the product has."""
    return tuple(e for e in (form.prologue_a, form.prologue_b, form.epilogue) if e is not None)


def _extras(task: Task, form: Contraction) -> tuple[Extra, ...] | str:
    """The tensors the prologues and the epilogue read, or why the lowering does not take
    them (the scalar vertex runs the task then). Their loads are in range: the bounds proof
    of binding holds every plain index inside its dimension."""
    c = task.binding(form.c).region
    found: dict[str, Extra] = {}
    for expr in _sides(form):
        for load in (n for n in ir.walk(expr) if isinstance(n, ir.Load)):
            if load.tensor in (form.a, form.b):
                return f"its prologue or epilogue reads '{load.tensor}', an operand of the product"
            dims = tuple(i.name for i in load.indices if isinstance(i, ir.Name))
            region = task.binding(load.tensor).region
            if load.tensor in found and found[load.tensor].dims != dims:
                return f"its prologue or epilogue reads '{load.tensor}' with other indices"
            if region is None or not all(region.keep):
                return f"'{load.tensor}' is not a whole view of a tensor"
            if c is not None and region.overlaps(c):
                return f"it reads '{load.tensor}', a view of the tensor it writes"
            found[load.tensor] = Extra(load.tensor, region, dims)
    order = [p.name for p in task.kernel.all_params]
    return tuple(sorted(found.values(), key=lambda x: order.index(x.param)))


def _scalar_params(task: Task, form: Contraction) -> tuple[str, ...]:
    """The scalar parameters (graph scalars or constants) the prologues and epilogue use."""
    used = {n.name for e in _sides(form) for n in ir.walk(e) if isinstance(n, ir.Name)}
    return tuple(
        p.name
        for p in task.kernel.all_params
        if p.name in used and task.binding(p.name).region is None
    )


def _element_accesses(task: Task, form: Contraction) -> int:
    """Field accesses of one element of C: k products (with their prologues) and the store
    (with the epilogue), as the vertex makes them."""
    weights = {form.a: 2, form.b: 2, form.c: 2}
    for p in task.kernel.all_params:
        region = task.binding(p.name).region
        if region is not None and p.name not in weights:
            weights[p.name] = 2 if len(region.view_shape) == 2 else 1
    scalars = {p for p in _scalar_params(task, form) if task.binding(p).scalar is not None}
    counter = AccessCounter(task.size_env, scalars, weights)
    product = counter.expr(_product(form, task.span))
    return int(form.k * product + counter.stmt(_store(form, task.span)))
