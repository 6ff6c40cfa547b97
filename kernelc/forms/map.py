"""The ``Map`` form: a nest of parallel loops of element-wise work (maps and stencils).

``out[i, j] = f(in[i + a, j + b], ...)``: every iteration stores to the element its loop
indices name, in every output, and reads inputs at affine offsets (a stencil's reach, whose
halo widths come from the access analysis). Reductions and searches inside the body belong to
other forms.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernelc import ir
from kernelc.graph import Task


@dataclass(frozen=True)
class Map:
    loops: tuple[ir.For, ...]  # outermost first
    body: tuple[ir.Stmt, ...]  # lets and stores only
    stores: tuple[ir.Store, ...]

    @property
    def output_indices(self) -> tuple[str, ...]:
        """The loop variables indexing every output, in dimension order."""
        return tuple(i.name for i in self.stores[0].indices)


def parallel_nest(body: tuple[ir.Stmt, ...]) -> tuple[tuple[ir.For, ...], tuple[ir.Stmt, ...]]:
    """The perfectly nested parallel loops at the top of a body, and the innermost body."""
    loops: list[ir.For] = []
    while len(body) == 1 and isinstance(body[0], ir.For) and body[0].parallel:
        loops.append(body[0])
        body = body[0].body
    return tuple(loops), body


def recognise_map(task: Task) -> Map | None:
    loops, body = parallel_nest(task.kernel.body)
    if not loops or not all(isinstance(s, ir.Let | ir.Store) for s in body):
        return None
    if any(isinstance(n, ir.Reduce | ir.Search) for n in ir.walk_body(body)):
        return None
    stores = tuple(s for s in body if isinstance(s, ir.Store))
    if not stores:
        return None
    names = {lp.var for lp in loops}
    first = stores[0].indices
    for s in stores:
        if not all(isinstance(i, ir.Name) and i.name in names for i in s.indices):
            return None
        if tuple(i.name for i in s.indices) != tuple(i.name for i in first):
            return None
    if {i.name for i in first} != names:
        return None
    return Map(loops, body, stores)
