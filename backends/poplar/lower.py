"""Task graph -> IPU plan: one vertex per task, one compute set per step, tensors on tiles.

Every form runs as the ``Scalar`` lowering for now: each task becomes one single-worker
``poplar::Vertex`` running the kernel body as plain C++ on one tile. The tasks of one step of
the graph (kernelc.dot.steps: no dependencies among them, e.g. the tasks of an OpenMP
``parallel num_threads(N)`` region) form one compute set and go to tiles 0, 1, ... of it. A
tensor lives whole on the tile of its first writer (inputs: of their first reader), so the
exchange brings it to the other vertices that use it. Data-parallel lowerings of ``Map`` and
``Contraction`` (vertices over blocks on many tiles) are not done yet (docs/POPLAR.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from kernelc.backends.poplar.codelet import CPP_TYPE, HELPERS, Field, ScalarCodelet, literal
from kernelc.backends.poplar.machine import Arch
from kernelc.backends.poplar.names import Names, class_name
from kernelc.diagnostics import KernelcError
from kernelc.dot import steps
from kernelc.graph import Region, Task, TaskGraph
from kernelc.types import DType


@dataclass(frozen=True)
class VertexPlan:
    cls: str  # the codelet class
    task: Task
    tile: int
    step: int
    fields: tuple[tuple[Field, Region | None, str | None], ...]  # field, region or graph scalar
    body: tuple[str, ...]  # compute() statements


@dataclass(frozen=True)
class TensorPlan:
    name: str  # the graph's name (stream handle, file name)
    var: str  # the C++ variable in main.cpp
    dtype: DType
    shape: tuple[int, ...]  # () for a graph scalar
    role: str  # "input", "output", "temp" or "scalar"
    tile: int
    stream: str  # the C++ names of its host stream and host buffer in main.cpp
    host: str

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.numpy.itemsize


@dataclass(frozen=True)
class Plan:
    graph: TaskGraph
    arch: Arch
    tensors: tuple[TensorPlan, ...]
    vertices: tuple[VertexPlan, ...]
    steps: int
    helpers: tuple[str, ...]  # helper functions codelets.cpp needs, in HELPERS order

    def tensor(self, name: str) -> TensorPlan:
        return next(t for t in self.tensors if t.name == name)

    @property
    def tiles_used(self) -> int:
        return len({v.tile for v in self.vertices} | {t.tile for t in self.tensors})


HOST_RESERVED = {
    *("argc", "argv", "device", "graph", "prog", "engine", "v", "failed", "target", "inputs"),
    *("outputs", "reference", "hardware", "profile", "arg", "i"),
}


def lower(graph: TaskGraph, arch: Arch) -> Plan:
    order = steps(graph)
    step_of = {name: k for k, names in enumerate(order) for name in names}
    tile_of = {name: names.index(name) for names in order for name in names}
    widest = max((len(s) for s in order), default=1)
    if widest > arch.tiles:
        raise KernelcError(
            f"a step of '{graph.name}' has {widest} tasks, more than the {arch.tiles} tiles of "
            f"a {arch.name.upper()} IPU",
            graph.span,
        )
    host = Names(HOST_RESERVED)
    tensors = []
    for t in graph.tensors:
        users = [task for task in graph.tasks if any(r.tensor == t.name for r in task.writes)]
        if not users:
            users = [task for task in graph.tasks if any(r.tensor == t.name for r in task.reads)]
        tile = tile_of[users[0].name] if users else 0
        tensors.append(
            TensorPlan(t.name, host(t.name), t.dtype, t.shape, t.role, tile, *_io(host, t.name))
        )
    for s in graph.scalars:
        readers = [task for task in graph.tasks if any(b.scalar == s.name for b in task.bindings)]
        tile = tile_of[readers[0].name] if readers else 0
        tensors.append(
            TensorPlan(s.name, host(s.name), s.dtype, (), "scalar", tile, *_io(host, s.name))
        )
    vertices = []
    helpers: set[str] = set()
    for index, task in enumerate(graph.tasks):
        vertex, used = scalar_vertex(task, class_name(task.kernel.name, index))
        helpers |= used
        vertices.append(
            VertexPlan(
                vertex[0], task, tile_of[task.name], step_of[task.name], vertex[1], vertex[2]
            )
        )
    return Plan(
        graph,
        arch,
        tuple(tensors),
        tuple(vertices),
        len(order),
        tuple(h for h in HELPERS if h in helpers),
    )


def _io(host: Names, name: str) -> tuple[str, str]:
    return host.derived(f"{host(name)}_stream"), host.derived(f"{host(name)}_host")


def scalar_vertex(task: Task, cls: str):
    """The ``Scalar`` lowering of a task: fields, compute() body, helpers used."""
    kernel = task.kernel
    names = Names()
    fields = []
    values: dict[str, str] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, DType] = {}
    prologue: list[str] = []
    outputs = {p.name for p in kernel.outputs}
    for p in kernel.all_params:
        b = task.binding(p.name)
        name = names(p.name)
        if b.region is not None:
            direction = "InOut" if p.name in outputs else "Input"
            shape = b.region.view_shape
            fields.append((Field(name, p.name, direction, p.dtype, True, shape), b.region, None))
            values[p.name] = name
            shapes[p.name] = shape
            dtypes[p.name] = p.dtype
        elif b.scalar is not None:
            fields.append((Field(name, p.name, "Input", p.dtype, False, ()), None, b.scalar))
            values[p.name] = f"(*{name})"
        else:
            prologue.append(f"const {CPP_TYPE[p.dtype]} {name} = {literal(b.constant, p.dtype)};")
            values[p.name] = name
    gen = ScalarCodelet(task.size_env, shapes, dtypes, names, values)
    body = [*prologue, *gen.block(kernel.body, "")]
    return (cls, tuple(fields), tuple(body)), gen.helpers
