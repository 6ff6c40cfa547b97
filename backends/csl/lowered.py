"""What lowering a graph for the wafer produces, and what each form's lowering provides.

Every form the csl backend spreads over PEs has one lowering object (``FormLowering``): it
plans the placements of the tensors its task touches, lowers the task into the program being
built, and models the cycles of what it lowered. ``lower.py`` picks the object by the type of
the task's form; the cost model asks the same object for the cycles.

A lowering that does not take a task says so with a ``Refusal`` (the construct and where it
is), and a plan that does not fit the grid it was asked for with a ``Misfit``: both are values,
so the placement policy tries the next grid or the scalar tasks and reports why, and only what
no option can do becomes a located error, once, at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from kernelc.csl import machine
from kernelc.csl import model as m
from kernelc.diagnostics import KernelcError, Span, Unsupported
from kernelc.forms.blocks import Layout
from kernelc.graph import Task, TaskGraph

if TYPE_CHECKING:  # the builder and the placement helpers are what lowerings are built from
    from kernelc.backends.csl.builder import Builder
    from kernelc.backends.csl.placement import Shared

Rect = tuple[int, int, int, int]  # x0, y0, w, h


@dataclass(frozen=True)
class Refusal:
    """A lowering does not take the task: the construct it cannot lower, and where. The caller
    tries the next option (scalar tasks) and names this reason if that fails too."""

    reason: str
    span: Span

    def error(self) -> Unsupported:
        return Unsupported(self.reason, self.span)


@dataclass(frozen=True)
class Misfit:
    """A plan that does not fit the grid it was made for (thin blocks, too many queues, too
    much memory): another grid may take it, so the policy tries the next one. ``shape``: no
    grid of this shape takes it whatever the sizes (the lowering cannot use the grid's
    columns), so on a grid the user gave the graph runs as scalar tasks, as after a refusal."""

    reason: str
    span: Span
    shape: bool = False

    def error(self) -> KernelcError:
        return KernelcError(self.reason, self.span)


class TaskCode(Protocol):
    """What one lowered task tells the host program, the report and the cost model."""

    launch: str  # the exported function run.py launches
    output_rects: dict[str, Rect]  # outputs held on part of the rectangle only

    @property
    def describe(self) -> str: ...


class Planner(Protocol):
    """Whole-graph planning, for lowerings whose PE count depends on the other tasks too."""

    def plan(
        self, graph: TaskGraph, width: int, height: int
    ) -> dict[str, Layout] | Refusal | Misfit: ...

    def code_bytes(
        self, graph: TaskGraph, arch: machine.Arch, width: int, height: int
    ) -> int | Refusal | Misfit: ...


class CycleModel(Protocol):
    def cycles(self, code: TaskCode, low: Lowered) -> dict[str, int]:
        """Modelled cycles of the lowered task on the busiest PE, by phase (launch excluded)."""


class FormLowering(CycleModel, Protocol):
    """The csl lowering of one kernel form."""

    def plan(
        self,
        task: Task,
        form: object,
        graph: TaskGraph,
        layouts: dict[str, Layout],
        width: int,
        height: int,
    ) -> Refusal | Misfit | None:
        """Add the placements this task needs to ``layouts`` (called consumers first); or why
        this lowering does not take the task, or why the plan does not fit this grid."""

    def lower(
        self,
        task: Task,
        index: int,
        form: object,
        graph: TaskGraph,
        layouts: dict[str, Layout],
        b: Builder,
        shared: Shared,
    ) -> TaskCode | Refusal | Misfit:
        """Emit the task's launch function, tasks and data into the program being built; or
        what code generation found that this lowering cannot express (``b.refused``)."""

    def fewest_pes(
        self, task: Task, form: object, graph: TaskGraph, arch: machine.Arch, planner: Planner
    ) -> int | Refusal | Misfit:
        """A lower bound on the PEs a plan of this task needs (1 when memory decides alone);
        a ``Misfit`` when no grid of the machine can hold the task."""


@dataclass(frozen=True)
class Transfer:
    """One host transfer: a tensor's symbol, its placement and the PE rectangle it uses."""

    tensor: str
    symbol: str
    layout: Layout
    rect: Rect


@dataclass(frozen=True)
class Batches:
    """Items that go through the program in batches (lookups whose items do not all fit beside
    their resident tables): the PE program holds ``size`` items; the host sends each batch's
    rows of the ``items`` tensors, launches with the batch's first item as the argument, and
    reads the batch's rows of the outputs. Batch k covers items ``first + k * size`` onwards."""

    size: int
    count: int
    first: int
    end: int
    items: tuple[str, ...]  # tensors cut into batches along their first dimension


@dataclass(frozen=True)
class LoweredTask:
    """A lowered task (or step of scalar tasks) with the lowering that made it."""

    code: TaskCode
    lowering: CycleModel


@dataclass
class Lowered:
    program: m.Program
    width: int
    height: int
    arch: machine.Arch
    layouts: dict[str, Layout]
    inputs: list[Transfer]
    outputs: list[Transfer]
    tasks: list[LoweredTask]
    data_bytes: int
    code_bytes: int
    builder: Builder  # what built the program (its per-PE params: the roles are counted there)
    arrays: dict[str, int] = field(default_factory=dict)
    symbols: dict[str, str] = field(default_factory=dict)  # tensor -> its array on every PE
    batches: Batches | None = None
    coords_cycles: int = 0  # reading the coordinates and computing offsets, per launch

    @property
    def memory_bytes(self) -> int:
        return self.data_bytes + self.code_bytes

    @property
    def codes(self) -> list[TaskCode]:
        return [t.code for t in self.tasks]

    @property
    def launches(self) -> list[str]:
        return [t.code.launch for t in self.tasks]
