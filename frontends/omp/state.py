"""What the compile-time execution of a function knows: the meaning of each C name, where the
execution is (thread, team, target region), and the work items it has produced so far."""

from __future__ import annotations

from dataclasses import dataclass, replace

from kernelc import ir
from kernelc.diagnostics import Span
from kernelc.frontends.omp import ctree as c
from kernelc.frontends.omp.directives import Directive
from kernelc.frontends.omp.exprs import flatten_index
from kernelc.frontends.omp.loops import walk
from kernelc.frontends.omp.order import Team, Thread
from kernelc.types import DType


@dataclass(frozen=True)
class ArrayVar:
    """A C array of the function: a parameter (a pointer in C) or a local array."""

    name: str
    dtype: DType
    dims: tuple[ir.Expr, ...]
    pointer: bool
    const: bool
    span: Span


@dataclass(frozen=True)
class Val:
    """A compile-time value: an IR expression over sizes, instance variables (thread numbers,
    unrolled loop counters) and the function's scalar parameters."""

    expr: ir.Expr


@dataclass(frozen=True)
class GraphScalar:
    """A scalar parameter of the function: a scalar input of the graph."""

    name: str
    dtype: DType


@dataclass(frozen=True)
class DeviceScalar:
    """A scalar computed on the device and read by later constructs: a tensor of shape [1]."""

    name: str
    tensor: str
    dtype: DType


Binding = ArrayVar | Val | GraphScalar | DeviceScalar


@dataclass
class Region:
    """One target region: the device tensor each mapped array lives in, and its map type."""

    device: dict[str, str]
    maps: dict[str, str]
    live: bool = False  # False for the host code around target regions


@dataclass
class Exec:
    """Where the compile-time execution is: one thread of one team, in one target region."""

    scopes: list[dict[str, Binding]]
    thread: Thread
    team: Team
    size: int | None  # threads in the team; None where nothing may depend on it
    thread_var: str | None  # the instance variable holding this team's thread number
    instance: dict[str, int]  # values of the instance variables for this thread
    in_parallel: bool
    region: Region
    thread_known: bool = True  # False in single and worksharing loops

    def lookup(self, name: str) -> Binding | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def child(self) -> Exec:
        return replace(self, scopes=[*self.scopes, {}])


@dataclass(frozen=True)
class Event:
    """Where a thread stops so that its team acts together (a barrier, a worksharing loop,
    single)."""

    kind: str  # "barrier", "loop", "single"
    span: Span
    directive: Directive | None = None
    stmt: c.Stmt | None = None
    ex: Exec | None = None


@dataclass
class Item:
    """A work item: one call of one kernel, and the happens-before node it is."""

    node: str
    call: ir.TaskCall
    kernel: ir.Kernel
    kind: str  # "task", "loop", "step" or "copy"
    firstprivate: frozenset[str]  # tensors the item reads as copies made when it was created
    tensors: dict[str, str]  # kernel tensor parameter -> the graph tensor bound to it


@dataclass
class Tensor:
    """A graph tensor and the C array (or device scalar) it holds a version of."""

    name: str
    dtype: DType
    shape: tuple[ir.Expr, ...]
    c_name: str
    span: Span


@dataclass
class Names:
    """Fresh names that clash with nothing in the file."""

    taken: set[str]

    def fresh(self, base: str) -> str:
        name, n = base, 0
        while name in self.taken:
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        return name


def arrays_in(node: object, ex: Exec) -> dict[str, c.Expr]:
    """Arrays (and device scalars) a statement touches, each with its first occurrence."""
    found: dict[str, c.Expr] = {}
    for n in walk(node):
        if isinstance(n, c.Name) and isinstance(ex.lookup(n.name), ArrayVar | DeviceScalar):
            found.setdefault(n.name, n)
        if isinstance(n, c.Declarator) and isinstance(ex.lookup(n.name), DeviceScalar):
            found.setdefault(n.name, c.Name(n.name, n.span))
    return found


def written_in(node: object, ex: Exec, scalars: bool = False) -> dict[str, c.Expr]:
    """Arrays (and, with ``scalars``, device scalars) a statement writes: first write each."""
    found: dict[str, c.Expr] = {}
    for n in walk(node):
        if isinstance(n, c.Assign | c.IncDec):
            target = n.target if isinstance(n, c.Assign) else n.operand
            base = flatten_index(target)[0] if isinstance(target, c.Index) else target
            if isinstance(base, c.Name):
                binding = ex.lookup(base.name)
                if isinstance(binding, ArrayVar) or (scalars and isinstance(binding, DeviceScalar)):
                    found.setdefault(base.name, target)
        if isinstance(n, c.Decl) and scalars:
            for decl in n.declarators:
                if isinstance(ex.lookup(decl.name), DeviceScalar) and decl.init is not None:
                    found.setdefault(decl.name, c.Name(decl.name, decl.span))
    return found
