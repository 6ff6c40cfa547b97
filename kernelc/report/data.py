"""The report as data: a frozen ``Report`` built from an artifact's manifest (kernelc.json).

Everything here comes from the manifest, so ``kernelc report DIR`` rebuilds the very report a
build wrote. What is target-specific (the placement picture's cells, the cycles by task and
phase, the plans considered) each backend reads from its own manifest into a ``View``; the
simulated figures of a run come as ``Simulated``. Every figure carries its kind: ``modelled``
(a cost model's estimate) or ``simulated`` (a simulator's count), never a hardware measurement.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

MODELLED = "modelled"
SIMULATED = "simulated"


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    role: str  # "input", "output" or "temp"
    nbytes: int


@dataclass(frozen=True)
class Task:
    name: str
    kernel: str
    reads: tuple[str, ...]  # regions, e.g. "img[0:20, 0:18]"
    writes: tuple[str, ...]
    step: int  # tasks of one step have no dependences among them


@dataclass(frozen=True)
class Dependency:
    before: str
    after: str
    kind: str  # "flow", "anti" or "order"
    tensor: str


@dataclass(frozen=True)
class Cell:
    """One cell of a placement picture: a PE, a tile or a memory slice (or a block of them)."""

    column: int
    row: int
    label: str  # e.g. "PE (3, 2)", "tile 17", "W slice 5"
    tasks: tuple[str, ...]  # the tasks that run on it (or whose tensors it holds)
    memory_bytes: int | None  # modelled bytes used; None where the cell holds no memory
    count: int = 1  # processors this cell stands for (large grids are drawn in blocks)
    detail: str = ""  # what else the tooltip says (the tensors held, ...)


@dataclass(frozen=True)
class Placement:
    """Where the tasks run, as a grid of cells, with the memory limit of one processor."""

    title: str  # e.g. "PE rectangle 3 x 2 (WSE2)"
    unit: str  # what one processor is: "PE", "tile", "MEM slice"
    columns: int
    rows: int
    processors: int  # PEs, tiles or slices in the plan (cells may stand for several)
    limit_bytes: int  # memory of one processor
    cells: tuple[Cell, ...]
    note: str = ""
    column_labels: tuple[tuple[int, int, str], ...] = ()  # (first, last column, label) below


@dataclass(frozen=True)
class Cycles:
    """Cycles of one scheduled piece (a launch, a compute set, a resource scope) by phase."""

    name: str
    tasks: tuple[str, ...]
    phases: tuple[tuple[str, int], ...]
    kind: str = MODELLED
    repeat: int = 1  # e.g. batches of a lookup: the phases are per repetition

    @property
    def total(self) -> int:
        return sum(c for _, c in self.phases) * self.repeat


@dataclass(frozen=True)
class Plan:
    """A plan the placement policy considered."""

    summary: str  # e.g. "200 x 200 PEs"
    cycles: int  # modelled
    memory_bytes: int | None  # modelled, per processor (None: not modelled per plan)


@dataclass(frozen=True)
class View:
    """What a backend reads from its manifest for the report."""

    arch: str
    placement: Placement | None
    cycles: tuple[Cycles, ...]  # modelled, in schedule order
    total_cycles: int | None  # modelled, of the whole program
    clock_hz: float | None
    policy: str = ""  # how the plan was chosen
    chosen: Plan | None = None
    runner_up: Plan | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Simulated:
    """A simulator's figures from one run: per piece where the simulator counts them."""

    simulator: str  # e.g. "kernelc's fabric simulator"
    cycles: tuple[Cycles, ...]  # per scheduled piece, named as in View.cycles; may be empty
    totals: tuple[tuple[str, int], ...]  # by phase over the whole run
    note: str = ""
    unmodelled: tuple[str, ...] = ()  # phases of ``totals`` the cost model does not count

    @property
    def total(self) -> int:
        """The simulated cycles of what the cost model counts (comparable with it)."""
        return sum(c for name, c in self.totals if name not in self.unmodelled)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @staticmethod
    def from_json(text: str) -> Simulated:
        doc = json.loads(text)
        return Simulated(
            doc["simulator"],
            tuple(_cycles(c) for c in doc["cycles"]),
            tuple((str(k), int(v)) for k, v in doc["totals"]),
            doc.get("note", ""),
            tuple(doc.get("unmodelled", ())),
        )


@dataclass(frozen=True)
class Report:
    target: str
    entry: str
    source: str
    kernelc: str
    params: tuple[tuple[str, int], ...]
    tensors: tuple[Tensor, ...]
    tasks: tuple[Task, ...]
    dependencies: tuple[Dependency, ...]
    files: tuple[str, ...]
    view: View | None
    simulated: Simulated | None = None

    @property
    def steps(self) -> tuple[tuple[str, ...], ...]:
        count = 1 + max((t.step for t in self.tasks), default=-1)
        return tuple(tuple(t.name for t in self.tasks if t.step == s) for s in range(count))

    def with_simulated(self, simulated: Simulated | None) -> Report:
        return replace(self, simulated=simulated)


def _cycles(doc: Mapping[str, Any]) -> Cycles:
    return Cycles(
        doc["name"],
        tuple(doc["tasks"]),
        tuple((str(k), int(v)) for k, v in doc["phases"]),
        doc["kind"],
        int(doc.get("repeat", 1)),
    )


def report(
    manifest: Mapping[str, Any], view: View | None, simulated: Simulated | None = None
) -> Report:
    """The report of an artifact from its manifest and its backend's view of it.

    The view is read from the manifest as kernelc.json holds it (keys sorted), so a build's
    report and ``kernelc report DIR``'s are the same; phases are lists, to keep their order.
    """
    tensors, tasks, dependencies = graph_parts(manifest["graph"])
    return Report(
        target=manifest["target"],
        entry=manifest["entry"],
        source=manifest["source"],
        kernelc=manifest["kernelc"],
        params=tuple(sorted((str(k), v) for k, v in manifest["params"].items())),
        tensors=tensors,
        tasks=tasks,
        dependencies=dependencies,
        files=tuple(manifest["files"]),
        view=view,
        simulated=simulated,
    )


def graph_parts(
    doc: Mapping[str, Any],
) -> tuple[tuple[Tensor, ...], tuple[Task, ...], tuple[Dependency, ...]]:
    """The tensors, tasks and dependences of a manifest's ``graph`` entry."""
    return (
        tuple(
            Tensor(t["name"], t["dtype"], tuple(t["shape"]), t["role"], t["bytes"])
            for t in doc["tensors"]
        ),
        tuple(
            Task(t["name"], t["kernel"], tuple(t["reads"]), tuple(t["writes"]), t["step"])
            for t in doc["tasks"]
        ),
        tuple(
            Dependency(d["before"], d["after"], d["kind"], d["tensor"]) for d in doc["dependencies"]
        ),
    )
