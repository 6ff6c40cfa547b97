"""The static task graph: tasks applying kernels to concrete regions of named tensors.

A graph is what every backend consumes. It is immutable; :meth:`TaskGraph.to_networkx` gives the
bipartite task/tensor view with the region read or written on each edge, and
:meth:`TaskGraph.dependencies` the task-to-task order that the verifier and schedulers use.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

from kernelc import ir
from kernelc.diagnostics import KernelcError, Span
from kernelc.types import DType

if TYPE_CHECKING:  # the forms describe tasks, so they import this module at run time
    from kernelc.forms import Form


Box = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Region:
    """A box of a tensor: per dimension a half-open range; ``keep`` says which dims the view has."""

    tensor: str
    box: Box
    keep: tuple[bool, ...]

    @staticmethod
    def whole(tensor: str, shape: tuple[int, ...]) -> Region:
        return Region(tensor, tuple((0, n) for n in shape), (True,) * len(shape))

    @property
    def view_shape(self) -> tuple[int, ...]:
        return tuple(hi - lo for (lo, hi), k in zip(self.box, self.keep, strict=True) if k)

    @property
    def is_empty(self) -> bool:
        return any(hi <= lo for lo, hi in self.box)

    def index(self) -> tuple[slice | int, ...]:
        """A NumPy index giving this region's view of the full tensor."""
        return tuple(
            slice(lo, hi) if k else lo for (lo, hi), k in zip(self.box, self.keep, strict=True)
        )

    def overlaps(self, other: Region) -> bool:
        if self.tensor != other.tensor or self.is_empty or other.is_empty:
            return False
        return all(
            a_lo < b_hi and b_lo < a_hi
            for (a_lo, a_hi), (b_lo, b_hi) in zip(self.box, other.box, strict=True)
        )

    def __str__(self) -> str:
        parts = [
            f"{lo}:{hi}" if k else str(lo) for (lo, hi), k in zip(self.box, self.keep, strict=True)
        ]
        return f"{self.tensor}[{', '.join(parts)}]"


@dataclass(frozen=True)
class TensorDecl:
    name: str
    dtype: DType
    shape: tuple[int, ...]
    role: str  # "input", "output" or "temp"
    span: Span

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.numpy.itemsize


@dataclass(frozen=True)
class Binding:
    """What a task passes for one kernel parameter: a region, a graph scalar, or a constant."""

    param: str
    region: Region | None = None
    scalar: str | None = None
    constant: int | float | bool | None = None


@dataclass(frozen=True)
class Task:
    """A kernel applied to regions; ``after`` names earlier tasks it is ordered after explicitly."""

    name: str
    kernel: ir.Kernel
    sizes: tuple[tuple[str, int], ...]
    bindings: tuple[Binding, ...]
    span: Span
    after: tuple[str, ...] = ()
    form: Form | None = None  # what the task is (kernelc.forms), recognised once after binding

    def binding(self, param: str) -> Binding:
        return next(b for b in self.bindings if b.param == param)

    @property
    def reads(self) -> tuple[Region, ...]:
        inputs = {p.name for p in self.kernel.params}
        return tuple(b.region for b in self.bindings if b.region and b.param in inputs)

    @property
    def writes(self) -> tuple[Region, ...]:
        outputs = {p.name for p in self.kernel.outputs}
        return tuple(b.region for b in self.bindings if b.region and b.param in outputs)

    @property
    def size_env(self) -> dict[str, int]:
        return dict(self.sizes)


@dataclass(frozen=True)
class TaskGraph:
    name: str
    filename: str
    tensors: tuple[TensorDecl, ...]
    scalars: tuple[ir.Param, ...]
    tasks: tuple[Task, ...]
    sizes: tuple[tuple[str, int], ...]
    span: Span

    def tensor(self, name: str) -> TensorDecl:
        return next(t for t in self.tensors if t.name == name)

    @property
    def inputs(self) -> tuple[TensorDecl, ...]:
        return tuple(t for t in self.tensors if t.role == "input")

    @property
    def outputs(self) -> tuple[TensorDecl, ...]:
        return tuple(t for t in self.tensors if t.role == "output")

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the whole bound graph (kernel IR, sizes, regions, forms): equal graphs have
        equal digests. Computed once per graph: compile caches key on it."""
        return hashlib.sha256(repr(self).encode()).hexdigest()

    @cached_property
    def dependencies(self) -> nx.DiGraph:
        """Task order: an edge A -> B when B reads what A wrote or overwrites what A read, or when
        B is explicitly ordered after A (``Task.after``)."""
        g = nx.DiGraph()
        for task in self.tasks:
            g.add_node(task.name)
        for task in self.tasks:
            for before in task.after:
                region = ", ".join(str(w) for w in task.writes)
                g.add_edge(before, task.name, kind="order", tensor="", region=region)
        for i, j in sorted(self.conflicting_pairs):
            a, b = self.tasks[i], self.tasks[j]
            for w in a.writes:
                for r in b.reads:
                    if w.overlaps(r):
                        g.add_edge(a.name, b.name, kind="flow", tensor=w.tensor, region=str(r))
            for r in a.reads:
                for w in b.writes:
                    if w.overlaps(r) and not g.has_edge(a.name, b.name):
                        g.add_edge(a.name, b.name, kind="anti", tensor=w.tensor, region=str(w))
        return g

    @cached_property
    def conflicting_pairs(self) -> set[tuple[int, int]]:
        """Pairs of task positions whose regions of one tensor overlap, one of them written: the
        only pairs that can be ordered or conflict."""
        return overlapping_pairs(
            (i, region.tensor, region.box, write)
            for i, task in enumerate(self.tasks)
            for regions, write in ((task.reads, False), (task.writes, True))
            for region in regions
        )

    def to_networkx(self) -> nx.DiGraph:
        """Bipartite view: tensor -> task edges are reads, task -> tensor edges are writes."""
        g = nx.DiGraph()
        for t in self.tensors:
            g.add_node(t.name, kind="tensor", role=t.role, dtype=str(t.dtype), shape=t.shape)
        for task in self.tasks:
            g.add_node(task.name, kind="task", kernel=task.kernel.name)
            for r in task.reads:
                g.add_edge(r.tensor, task.name, access="read", region=r)
            for w in task.writes:
                g.add_edge(task.name, w.tensor, access="write", region=w)
        return g


def verify(graph: TaskGraph) -> None:
    """Check the static-graph rules; violations are user errors located at the task call."""
    deps = graph.dependencies
    if not nx.is_directed_acyclic_graph(deps):
        cycle = nx.find_cycle(deps)
        raise AssertionError(f"task graph has a cycle: {cycle}")
    reach = {t.name: nx.descendants(deps, t.name) for t in graph.tasks}
    for task in graph.tasks:
        for region in (*task.reads, *task.writes):
            decl = graph.tensor(region.tensor)
            for dim, ((lo, hi), n) in enumerate(zip(region.box, decl.shape, strict=True)):
                if lo < 0 or hi > n or lo > hi:
                    raise KernelcError(
                        f"region {region} is outside '{decl.name}' (dimension {dim} has {n})",
                        task.span,
                    )
    for i, j in sorted(graph.conflicting_pairs):
        a, b = graph.tasks[i], graph.tasks[j]
        concurrent = b.name not in reach[a.name] and a.name not in reach[b.name]
        if not concurrent:
            continue
        for wa in a.writes:
            for wb in b.writes:
                if wa.overlaps(wb):
                    raise KernelcError(
                        f"write conflict: '{b.kernel.name}' writes {wb}, which overlaps {wa} "
                        f"written by '{a.kernel.name}', and neither task depends on the other",
                        b.span,
                        [(a.span, "the other write is here")],
                    )
    written: dict[str, list[Region]] = defaultdict(list)
    for task in graph.tasks:
        for region in task.reads:
            decl = graph.tensor(region.tensor)
            if decl.role == "input" or region.is_empty:
                continue
            if not covered(region, written[region.tensor]):
                raise KernelcError(
                    f"'{task.kernel.name}' reads {region}, but no earlier task writes all of it",
                    task.span,
                )
        for region in task.writes:
            written[region.tensor].append(region)


def covered(region: Region, writes: list[Region]) -> bool:
    """Whether the union of ``writes`` covers ``region`` (coordinate compression on the boxes)."""
    rank = len(region.box)
    cuts = []
    for d in range(rank):
        points = {region.box[d][0], region.box[d][1]}
        for w in writes:
            for p in w.box[d]:
                if region.box[d][0] < p < region.box[d][1]:
                    points.add(p)
        cuts.append(sorted(points))
    cells = itertools.product(*(zip(c[:-1], c[1:], strict=False) for c in cuts))
    for cell in cells:
        if not any(
            all(w.box[d][0] <= cell[d][0] and cell[d][1] <= w.box[d][1] for d in range(rank))
            for w in writes
        ):
            return False
    return True


def overlapping_pairs(accesses: Iterable[tuple[int, str, Box, bool]]) -> set[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, of owners with overlapping non-empty boxes of one tensor, at
    least one of the two accesses a write; from ``(owner, tensor, box, is_write)`` accesses.

    Why: graphs of thousands of task instances (an OpenMP region of many threads) make checking
    every pair of tasks quadratic. Per tensor, the boxes are swept in the order of their start
    along the dimension that tells them apart best, so only boxes overlapping there are compared.
    """
    by_tensor: dict[str, list[tuple[int, Box, bool]]] = defaultdict(list)
    for owner, tensor, box, write in accesses:
        if all(hi > lo for lo, hi in box):
            by_tensor[tensor].append((owner, box, write))
    pairs: set[tuple[int, int]] = set()
    for entries in by_tensor.values():
        if not any(write for _, _, write in entries):
            continue
        rank = len(entries[0][1])
        dim = max(range(rank), key=lambda d: len({box[d] for _, box, _ in entries}), default=None)
        if dim is not None:
            entries.sort(key=lambda e: e[1][dim][0])
        active: list[tuple[int, Box, bool]] = []
        for owner, box, write in entries:
            if dim is not None:
                active = [a for a in active if a[1][dim][1] > box[dim][0]]
            for other, other_box, other_write in active:
                if other != owner and (write or other_write) and _boxes_overlap(box, other_box):
                    pairs.add((min(owner, other), max(owner, other)))
            active.append((owner, box, write))
    return pairs


def _boxes_overlap(a: Box, b: Box) -> bool:
    return all(a_lo < b_hi and b_lo < a_hi for (a_lo, a_hi), (b_lo, b_hi) in zip(a, b, strict=True))
