"""What the poplar Lookup lowerings (tables replicated, lookup.py; tables split, split.py) share:
the item loop's body as codelet C++ (an item-indexed tensor reached through its block's rows)
and the model of an item's accesses, with the stated assumptions for data-dependent trip
counts: a loop whose bound is read from a table runs counts uniform over 0 .. the extent of
the table dimension its variable indexes, and a ``search`` of n elements makes
floor(log2 n) + 1 probes (the most its bisection can make; it makes one fewer for some keys).
"""

from __future__ import annotations

from dataclasses import dataclass

from kernelc import ir
from kernelc.affine import evaluate
from kernelc.backends.poplar.codelet import ScalarCodelet
from kernelc.backends.poplar.cost import AccessCounter
from kernelc.diagnostics import KernelcError
from kernelc.forms.lookup import Lookup
from kernelc.graph import Task


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
