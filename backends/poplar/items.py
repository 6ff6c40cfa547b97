"""What the poplar Lookup lowerings (tables replicated, lookup.py; tables split, split.py) share:
the item loop's body as codelet C++ (an item-indexed tensor reached through its block's rows)
and the model of an item's accesses, with the stated assumptions for data-dependent trip
counts: a loop whose bound is read from a table runs counts uniform over 0 .. the extent of
the table dimension its variable indexes, and a ``search`` of n elements makes
floor(log2 n) + 1 probes (the most its bisection can make; it makes one fewer for some keys).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from kernelc import ir
from kernelc.affine import evaluate
from kernelc.backends.poplar.codelet import CPP_TYPE, ScalarCodelet, literal
from kernelc.backends.poplar.cost import AccessCounter
from kernelc.backends.poplar.lowered import CodeletField
from kernelc.backends.poplar.names import Names
from kernelc.diagnostics import KernelcError
from kernelc.forms.lookup import Lookup
from kernelc.graph import Region, Task
from kernelc.types import DType


@dataclass
class ItemCodelet(ScalarCodelet):
    """The item loop's body: an item-indexed tensor is reached through its block's rows."""

    item_rows: dict[str, str] | None = None  # item-indexed param -> the block's first item

    def element(self, tensor: str, idx: list[str]) -> str:
        assert self.item_rows is not None
        if tensor not in self.item_rows:
            return super().element(tensor, idx)
        shape = self.shapes[tensor]
        row = f"{idx[0]} - {self.item_rows[tensor]}"
        flat, pitch = [], 1
        for index, extent in zip(reversed([row, *idx[1:]]), reversed(shape), strict=True):
            plain = index.isidentifier() or index.isdigit()
            flat.append(index if pitch == 1 else f"{index if plain else f'({index})'} * {pitch}")
            pitch *= extent
        return f"{self.values[tensor]}[{' + '.join(reversed(flat))}]"


@dataclass(frozen=True)
class ItemVertex:
    """An item codelet as both lookups set it up: a field per tensor or scalar parameter (a
    constant one a C++ constant), the vertex's items as state, the item loop's body without
    unused locals (g++ -Werror rejects an unused variable) and its generator."""

    names: Names
    fields: tuple[CodeletField, ...]
    prologue: tuple[str, ...]  # the constant parameters
    source: tuple[ir.Stmt, ...]  # the item loop's body, unused locals left out
    gen: ItemCodelet
    var: str  # the item variable in C++
    first: str  # the state fields of the vertex's first item and its last + 1
    last: str

    @staticmethod
    def of(
        task: Task,
        form: Lookup,
        edge: Callable[[str, Region], tuple[str, str]],
        shapes: Mapping[str, tuple[int, ...]],
        unit: str,
        item_params: Iterable[str],
        body: tuple[ir.Stmt, ...],
        state: tuple[tuple[str, str, str], ...] = (),
    ) -> ItemVertex:
        """``edge`` gives a tensor parameter's direction and note, ``shapes`` the shapes that
        differ from its region's, ``unit`` names what a vertex's items are (a block, a batch),
        ``body`` is the item loop's body (a constant it does not name is not declared), ``state``
        adds i32 fields (IR name, C++ member, note) the body reads."""
        source = ir.without_unused_locals(body)
        used = {n.name for n in ir.walk_body(source) if isinstance(n, ir.Name)}
        names = Names()
        fields: list[CodeletField] = []
        values: dict[str, str] = {}
        shape_of: dict[str, tuple[int, ...]] = {}
        dtypes: dict[str, DType] = {}
        prologue: list[str] = []
        for p in task.kernel.all_params:
            b = task.binding(p.name)
            name = names(p.name)
            if b.region is not None:
                direction, note = edge(p.name, b.region)
                fields.append(CodeletField(name, "vector", direction, p.dtype, note))
                values[p.name] = name
                shape_of[p.name] = shapes.get(p.name, b.region.view_shape)
                dtypes[p.name] = p.dtype
            elif b.scalar is not None:
                fields.append(CodeletField(name, "scalar", "Input", p.dtype))
                values[p.name] = f"(*{name})"
            elif p.name in used:
                prologue.append(
                    f"const {CPP_TYPE[p.dtype]} {name} = {literal(b.constant, p.dtype)};"
                )
                values[p.name] = name
        var = form.loop.var
        first, last = names.derived(f"{var}Begin"), names.derived(f"{var}End")
        fields += [
            CodeletField(first, "state", "", DType.I32, f"the {unit}'s first '{var}'"),
            CodeletField(last, "state", "", DType.I32, f"the {unit}'s last '{var}' + 1"),
        ]
        for ir_name, member, note in state:
            values[ir_name] = names.derived(member)
            fields.append(CodeletField(values[ir_name], "state", "", DType.I32, note))
        gen = ItemCodelet(task.size_env, shape_of, dtypes, names, values)
        gen.item_rows = {p: first for p in item_params}
        v = names(var)
        gen.values[var] = v
        gen.ranges[var] = (form.first, form.end - 1)
        return ItemVertex(names, tuple(fields), tuple(prologue), source, gen, v, first, last)

    def body(self, before: Iterable[str] = ()) -> tuple[str, ...]:
        """The codelet's body: the constants, then for each of this worker's items ``before``
        (lines indented for the loop) and the item loop's body."""
        v = self.var
        return (
            *self.prologue,
            f"for (int {v} = {self.first} + int(workerId); {v} < {self.last}; "
            f"{v} += int(numWorkers())) {{",
            *before,
            *self.gen.block(self.source, "  "),
            "}",
        )


def item_tensors(
    task: Task, form: Lookup, outputs: Collection[str]
) -> tuple[dict[str, Region], dict[str, Region]] | str:
    """The item-indexed tensor parameters and the tables (every other one), or why the items
    cannot be cut into blocks of rows: each ``outputs`` parameter must be item-indexed."""
    items: dict[str, Region] = {}
    tables: dict[str, Region] = {}
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
    return items, tables


def item_loop_refusal(form: Lookup, items: dict[str, Region]) -> str | None:
    """Why the item loop cannot be cut into blocks of the item tensors' rows, or None."""
    if form.end - form.first <= 0:
        return "its item loop is empty"
    for name, region in items.items():
        if region.view_shape[0] < form.end:
            return f"item-indexed '{name}' has fewer rows than the item loop's range"
    return None


class TripCounter(AccessCounter):
    """Accesses per item, with the lowering's assumptions for data-dependent trip counts:
    ``assumed`` gives each such loop variable's mean trips."""

    def __init__(self, task: Task, assumed: dict[str, float]) -> None:
        scalars = {b.param for b in task.bindings if b.scalar is not None}
        super().__init__(task.size_env, scalars)
        self.assumed = assumed
        self.shapes = {p.name: view_shape(task, p.name) for p in task.kernel.all_params}
        self.loop: str | None = None

    def trips(self, lo: ir.Expr, hi: ir.Expr) -> float:  # type: ignore[override]
        try:
            return max(0, evaluate(hi, self.env) - evaluate(lo, self.env))
        except KernelcError:
            if self.loop in self.assumed:
                return self.assumed[self.loop]
            self.guessed = True
            return 1

    def stmt(self, s: ir.Stmt) -> float:
        if isinstance(s, ir.For):
            self.loop = s.var
        return super().stmt(s)

    def expr(self, e: ir.Expr) -> float:
        if isinstance(e, ir.Search):
            axis = next(d for d, i in enumerate(e.indices) if isinstance(i, ir.Slice))
            fixed = sum(self.expr(i) for i in e.indices if not isinstance(i, ir.Slice))
            return probes(self.shapes[e.tensor][axis]) + fixed + self.expr(e.value)
        return super().expr(e)


def view_shape(task: Task, param: str) -> tuple[int, ...]:
    region = task.binding(param).region
    return () if region is None else region.view_shape


def probes(n: int) -> int:
    """A bisection over n elements probes floor(log2 n) + 1 times at most (one fewer for some
    keys); the model takes the most."""
    return max(n, 1).bit_length()


def assumed(task: Task, form: Lookup, share: float) -> dict[str, float]:
    """Each data-dependent loop's assumed trips: ``share`` of the extent of the tensor dimension
    its variable indexes."""
    out: dict[str, float] = {}
    sizes = task.size_env
    for loop in (n for n in ir.walk_body(form.loop.body) if isinstance(n, ir.For)):
        try:
            evaluate(loop.hi, sizes)
            evaluate(loop.lo, sizes)
            continue
        except KernelcError:
            pass
        extents = [
            view_shape(task, n.tensor)[d]
            for n in ir.walk_body(loop.body)
            if isinstance(n, ir.Load)
            for d, i in enumerate(n.indices)
            if isinstance(i, ir.Name) and i.name == loop.var
        ]
        if extents:
            out[loop.var] = share * min(extents)
    return out


def per_item(task: Task, form: Lookup, share: float) -> float:
    """An item's accesses, its data-dependent loops taking ``share`` of their extent."""
    counter = TripCounter(task, assumed(task, form, share))
    return counter.block(form.loop.body)


def assumptions(task: Task, form: Lookup) -> str:
    loops = assumed(task, form, 1.0)
    said = [
        f"loop '{v}' as counts uniform over 0 .. {t:g}, the busiest worker's sum at its "
        "expected maximum"
        for v, t in loops.items()
    ]
    said.append("each search as floor(log2 n) + 1 probes")
    return "modelled with " + ", ".join(said)
