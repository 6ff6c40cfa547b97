"""The scalar lowering: a task as one single-worker ``poplar::Vertex`` on one tile, running the
kernel body as plain C++ over whole regions. Every task can run this way (the fallback for
forms without a tile-spreading lowering, and for the tasks those lowerings do not take); the
tensors it writes live whole on its tile."""

from __future__ import annotations

from dataclasses import dataclass

from kernelc import ir
from kernelc.backends.poplar.codelet import CPP_TYPE, ScalarCodelet, literal
from kernelc.backends.poplar.cost import AccessCounter, instructions
from kernelc.backends.poplar.lowered import (
    Codelet,
    CodeletField,
    Edge,
    Instance,
    LoweredTask,
    TileMap,
)
from kernelc.backends.poplar.names import Names
from kernelc.graph import Task, TaskGraph
from kernelc.types import DType


@dataclass(frozen=True)
class OneTile:
    tile: int
    mappings: dict[str, TileMap]

    @property
    def tiles_used(self) -> int:
        return 1


class ScalarLowering:
    def plan(self, task: Task, form: object, graph: TaskGraph, tiles: range) -> OneTile:
        shapes = {t.name: t.shape for t in graph.tensors}
        shapes.update({s.name: () for s in graph.scalars})
        touched = {b.region.tensor for b in task.bindings if b.region is not None}
        touched |= {b.scalar for b in task.bindings if b.scalar is not None}
        tile = tiles[0]
        return OneTile(tile, {t: TileMap.whole(shapes[t], tile) for t in sorted(touched)})

    def lower(self, task: Task, form: object, blocks: OneTile, cls: str, step: int) -> LoweredTask:
        kernel = task.kernel
        names = Names()
        fields: list[CodeletField] = []
        edges: list[Edge] = []
        values: dict[str, str] = {}
        shapes: dict[str, tuple[int, ...]] = {}
        dtypes: dict[str, DType] = {}
        prologue: list[str] = []
        outputs = {p.name for p in kernel.outputs}
        source = ir.without_unused_locals(kernel.body)
        used = {n.name for n in ir.walk_body(source) if isinstance(n, ir.Name)}
        for p in kernel.all_params:
            b = task.binding(p.name)
            name = names(p.name)
            if b.region is not None:
                direction = "InOut" if p.name in outputs else "Input"
                fields.append(CodeletField(name, "vector", direction, p.dtype, str(b.region)))
                edges.append(Edge(b.region.tensor, b.region.box))
                values[p.name] = name
                shapes[p.name] = b.region.view_shape
                dtypes[p.name] = p.dtype
            elif b.scalar is not None:
                fields.append(CodeletField(name, "scalar", "Input", p.dtype))
                edges.append(Edge(b.scalar, ()))
                values[p.name] = f"(*{name})"
            elif p.name in used:  # a constant it does not name would be an unused variable
                prologue.append(
                    f"const {CPP_TYPE[p.dtype]} {name} = {literal(b.constant, p.dtype)};"
                )
                values[p.name] = name
        gen = ScalarCodelet(task.size_env, shapes, dtypes, names, values)
        body = (*prologue, *gen.block(source, ""))
        form_name = type(form).__name__
        codelet = Codelet(cls, False, tuple(fields), body, f"form {form_name}, one worker")
        return LoweredTask(
            task,
            step,
            codelet,
            (Instance(blocks.tile, tuple(edges), ()),),
            f"form {form_name}: one single-worker vertex on tile {blocks.tile}",
            frozenset(gen.helpers),
            _counter(task)[1],
        )

    def cycles(self, lowered: LoweredTask) -> tuple[tuple[int, ...], ...]:
        return ((_counter(lowered.task)[0],),)


def _counter(task: Task) -> tuple[int, bool]:
    """The vertex's modelled instructions, and whether a trip count was guessed."""
    scalars = {b.param for b in task.bindings if b.scalar is not None}
    counter = AccessCounter(task.size_env, scalars)
    accesses = counter.block(ir.without_unused_locals(task.kernel.body))
    return instructions(accesses), counter.guessed
