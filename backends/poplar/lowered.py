"""What lowering a graph for the IPU produces, and what each form's lowering provides.

Every form the poplar backend spreads over tiles has one lowering object (``FormLowering``): it
plans the task's decomposition over the tiles it may use (and where the tensors it touches
should live), lowers the task to one codelet and its vertex instances, and models each
instance's work per worker context. ``lower.py`` picks the object by the type of the task's
form; a task no lowering takes runs as one single-worker vertex (``ScalarLowering``).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from kernelc.backends.poplar.codelet import CPP_TYPE
from kernelc.backends.poplar.machine import Arch
from kernelc.graph import Region, Task, TaskGraph
from kernelc.types import DType

Box = tuple[tuple[int, int], ...]  # per dimension of a graph tensor: [lo, hi)


@dataclass(frozen=True)
class TileMap:
    """Where a tensor's elements live: per dimension the cut points (0 .. extent) of a grid of
    rectangular blocks, and each block's tile, row-major (``setTileMapping`` per block)."""

    cuts: tuple[tuple[int, ...], ...]
    tiles: tuple[int, ...]
    # the box the proposer cut for itself, per dimension [lo, hi); the first and last blocks
    # stretch beyond it to the tensor's ends (None: the whole tensor)
    core: tuple[tuple[int, int], ...] | None = None

    @staticmethod
    def whole(shape: tuple[int, ...], tile: int) -> TileMap:
        return TileMap(tuple((0, n) for n in shape), (tile,))

    def blocks(self) -> Iterator[tuple[Box, int]]:
        """The non-empty blocks and their tiles."""
        spans = [list(zip(c, c[1:], strict=False)) for c in self.cuts]
        for box, tile in zip(itertools.product(*spans), self.tiles, strict=True):
            if all(hi > lo for lo, hi in box):
                yield tuple(box), tile

    def _block(self, at: tuple[int, ...]) -> tuple[int, tuple[tuple[int, int], ...]]:
        """The row-major number and the box of the block holding element ``at``."""
        flat, box = 0, []
        for c, x in zip(self.cuts, at, strict=True):
            k = bisect.bisect_right(c, x) - 1
            flat = flat * (len(c) - 1) + k
            box.append((c[k], c[k + 1]))
        return flat, tuple(box)

    def tile_of(self, at: tuple[int, ...]) -> int:
        """The tile of element ``at``."""
        return self.tiles[self._block(at)[0]]

    def box(self, d: int) -> tuple[int, int]:
        """Dimension ``d`` of the box the proposer cut for itself."""
        return self.core[d] if self.core is not None else (0, self.cuts[d][-1])

    def holds(self, at: tuple[int, ...]) -> bool:
        """True when element ``at`` lies in the box the proposer cut for itself."""
        return all(lo <= x < hi for d, x in enumerate(at) for lo, hi in (self.box(d),))

    def block_size(self, at: tuple[int, ...]) -> int:
        """The number of elements of the block holding element ``at``."""
        return math.prod(hi - lo for lo, hi in self._block(at)[1])

    def array(self) -> np.ndarray:
        """The tile of every element."""
        shape = tuple(c[-1] for c in self.cuts)
        out = np.empty(shape, dtype=np.int32)
        for box, tile in self.blocks():
            out[tuple(slice(lo, hi) for lo, hi in box)] = tile
        return out


@dataclass(frozen=True)
class CodeletField:
    """A field of a codelet: an edge connected to tensors, or integer vertex state."""

    name: str  # the C++ member
    kind: str  # "vector" (Input<Vector<T>>), "list" (Vector<Input<Vector<T>>>), "scalar", "state"
    direction: str  # "Input", "Output" or "InOut"; "" for vertex state
    dtype: DType
    note: str = ""
    origin: tuple[str, int] | None = None  # state: the first index of an edge's box, in a dim

    @property
    def declaration(self) -> str:
        if self.kind == "state":
            return f"int {self.name};"
        ctype = CPP_TYPE[self.dtype]
        kind = {
            "vector": f"{self.direction}<Vector<{ctype}>>",
            "list": f"Vector<{self.direction}<Vector<{ctype}>>>",
            "scalar": f"{self.direction}<{ctype}>",
        }[self.kind]
        return f"{kind} {self.name};"

    def state_bytes(self, edge: Box) -> int:
        """Vertex state in tile memory: pointer and size per vector, a word per scalar."""
        if self.kind == "list":
            return 8 + 8 * (edge[0][1] - edge[0][0])
        return 8 if self.kind == "vector" else 4


@dataclass(frozen=True)
class Codelet:
    cls: str
    multi: bool  # a MultiVertex whose six workers split the work
    fields: tuple[CodeletField, ...]
    body: tuple[str, ...]  # compute() statements
    about: str  # one line for the class comment


@dataclass(frozen=True)
class Edge:
    """What one edge field of one vertex is connected to: a box of a graph tensor (``()`` for a
    graph scalar)."""

    tensor: str
    box: Box


@dataclass(frozen=True)
class Instance:
    """One vertex of a codelet: its tile, its edges and state values in field order."""

    tile: int
    edges: tuple[Edge, ...]  # the edge fields', in order
    state: tuple[int, ...]  # the state fields', in order


@dataclass(frozen=True)
class Temp:
    """A device-only tensor a lowering adds (partial sums between two compute sets): mapped
    where the lowering says, zeroed at the start like every temporary."""

    name: str
    dtype: DType
    shape: tuple[int, ...]
    mapping: TileMap


@dataclass(frozen=True)
class LoweredTask:
    """One compute set's share of a task: a task lowers to one, or to several run in turn
    (``phase`` 0, 1, ...: the steps after the task's own step, e.g. partial sums then their
    reduction), with the temporaries they share and the copies made before it (tables copied
    to more tiles) listed on phase 0."""

    task: Task
    step: int
    codelet: Codelet
    instances: tuple[Instance, ...]
    describe: str  # how the task maps, for the report and main.cpp
    helpers: frozenset[str]  # codelet helper functions the body uses
    guessed: bool = False  # some trip count was data-dependent (taken as 1)
    workers: tuple[tuple[int, ...], ...] = ()  # modelled instructions per worker, per instance
    phase: int = 0  # the compute set's place among the task's, after its step
    temps: tuple[Temp, ...] = ()
    copies: tuple[tuple[str, str], ...] = ()  # on-device copies (source, destination) before
    share: range | None = None  # a league member's tile range: its virtual graph in main.cpp

    @property
    def edge_fields(self) -> tuple[CodeletField, ...]:
        return tuple(f for f in self.codelet.fields if f.kind != "state")

    @property
    def state_fields(self) -> tuple[CodeletField, ...]:
        return tuple(f for f in self.codelet.fields if f.kind == "state")


class Blocks(Protocol):
    """A task's decomposition: where it wants the tensors it touches, and how many tiles it uses."""

    mappings: dict[str, TileMap]  # graph tensor -> proposed tile mapping

    @property
    def tiles_used(self) -> int: ...


class FormLowering(Protocol):
    """The poplar lowering of one kernel form."""

    def plan(self, task: Task, form: object, graph: TaskGraph, tiles: range) -> Blocks | str:
        """The task's decomposition over ``tiles``, or why this lowering does not take it."""

    def lower(
        self, task: Task, form: object, blocks: Blocks, cls: str, step: int
    ) -> LoweredTask | tuple[LoweredTask, ...]:
        """The task's codelet and its vertex instances (cycles filled in by ``cycles``); a task
        that needs several compute sets in turn gives one per phase."""

    def cycles(self, lowered: LoweredTask) -> tuple[tuple[int, ...], ...]:
        """Modelled worker instructions of each instance (one entry per worker it runs on)."""


@dataclass(frozen=True)
class TensorPlan:
    name: str  # the graph's name (stream handle, file name)
    var: str  # the C++ variable in main.cpp
    dtype: DType
    shape: tuple[int, ...]  # () for a graph scalar
    role: str  # "input", "output", "temp" or "scalar"
    mapping: TileMap
    stream: str  # the C++ names of its host stream and host buffer in main.cpp
    host: str

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.numpy.itemsize


@dataclass(frozen=True)
class Plan:
    graph: TaskGraph
    arch: Arch
    tiles: int  # the tiles the block lowerings were given
    tensors: tuple[TensorPlan, ...]
    tasks: tuple[LoweredTask, ...]
    steps: int
    helpers: tuple[str, ...]  # helper functions codelets.cpp needs, in HELPERS order
    weighed: tuple[tuple[int, int], ...] = ()  # (tiles, modelled cycles) of the plans that fit

    def tensor(self, name: str) -> TensorPlan:
        return next(t for t in self.tensors if t.name == name)

    @property
    def vertices(self) -> int:
        return sum(len(t.instances) for t in self.tasks)

    @property
    def tiles_used(self) -> int:
        tiles = {i.tile for t in self.tasks for i in t.instances}
        tiles |= {tile for t in self.tensors for _, tile in t.mapping.blocks()}
        return len(tiles)


def region_box(region: Region, view: Box) -> Box:
    """A box of a region's view in the coordinates of the whole tensor."""
    out, k = [], 0
    for (lo, _), keep in zip(region.box, region.keep, strict=True):
        if keep:
            out.append((lo + view[k][0], lo + view[k][1]))
            k += 1
        else:
            out.append((lo, lo + 1))
    return tuple(out)


def spread(region: Region, shape: tuple[int, ...], cuts: tuple[tuple[int, ...], ...]) -> tuple:
    """Cut points of a region's view placed in the whole tensor: the first and last blocks
    stretch to the tensor's ends, so the whole tensor is mapped."""
    out = []
    for (lo, _), extent, c in zip(region.box, shape, cuts, strict=True):
        inner = tuple(lo + x for x in c[1:-1])
        out.append((0, *inner, extent))
    return tuple(out)
