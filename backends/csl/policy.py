"""Which PE rectangle a graph runs on: the placement policies behind ``--grid``.

``auto`` (the default) wants the plan with the fewest modelled cycles that fits the wafer,
preferring fewer PEs when they model within ``NEAR`` of the fastest: a wafer is there for speed,
and PEs beyond the knee of the curve only lengthen the launch across the rectangle. ``min`` is
the smallest PE count whose memory plan fits (squarest blocks first), and ``WxH`` a given grid.

The search lowers candidate grids and asks the cost model for their cycles. Lowering a grid
takes milliseconds, so it tries a bounded set: per axis, powers of two, the divisors of the
principal tensor's extent and the PE counts that give power-of-two blocks; first paired to keep
blocks square, then every pairing around the fastest few.

A grid whose plan does not fit (a ``Misfit``) is skipped; a lowering's ``Refusal`` ends the
search and is returned, so the caller can run the graph as scalar tasks instead (``scalar``,
whose errors name the refusal too). Only what no option can do is raised, once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from kernelc import progress
from kernelc.backends.csl import tasks
from kernelc.backends.csl.cost import model
from kernelc.backends.csl.lower import (
    GraphPlanner,
    lower,
    lowering_of,
    plan,
    scalar_culprit,
    scalar_reason,
)
from kernelc.backends.csl.lowered import Lowered, Misfit, Refusal
from kernelc.csl import machine
from kernelc.diagnostics import KernelcError
from kernelc.graph import TaskGraph

NEAR = 0.05  # fewer PEs win when they model within this fraction of the fastest plan
GRID_SEARCH_LIMIT = 4000  # PE counts the smallest-grid search examines beyond the lower bound
FINALISTS = 3  # fastest coarse candidates whose neighbourhoods the search refines
REACH = 2  # neighbouring axis sizes (each way) tried around a finalist


@dataclass(frozen=True)
class Candidate:
    """A grid the policy considered, with what the cost model said about it."""

    width: int
    height: int
    cycles: int
    memory_bytes: int

    @property
    def pes(self) -> int:
        return self.width * self.height

    def describe(self) -> str:
        return (
            f"{self.width} x {self.height} PEs, modelled {self.cycles:,} cycles, "
            f"{self.memory_bytes:,} bytes per PE"
        )

    def manifest(self) -> dict:
        return {
            "grid": [self.width, self.height],
            "modelled_cycles": self.cycles,
            "per_pe_bytes": self.memory_bytes,
        }


@dataclass(frozen=True)
class Placement:
    """The lowered program on the chosen grid, the policy that chose it and the runner-up."""

    policy: str  # "auto", "min" or "given"
    lowered: Lowered
    chosen: Candidate
    runner_up: Candidate | None

    def report(self) -> list[str]:
        why = {
            "auto": "fewest modelled cycles, fewer PEs within 5 %",
            "min": "smallest grid that fits",
            "given": "--grid",
        }[self.policy]
        lines = [f"csl: placement {self.policy} ({why}): {self.chosen.describe()}"]
        if self.runner_up is not None:
            lines.append(f"csl: runner-up: {self.runner_up.describe()}")
        return lines

    def manifest(self) -> dict:
        return {
            "policy": self.policy,
            "chosen": self.chosen.manifest(),
            "runner_up": None if self.runner_up is None else self.runner_up.manifest(),
        }


def candidate(low: Lowered) -> Candidate:
    return Candidate(low.width, low.height, model(low).cycles, low.memory_bytes)


def data_parallel(
    graph: TaskGraph, arch: machine.Arch, grid: str | tuple[int, int]
) -> Placement | Refusal:
    """Every task by its form's lowering, on the grid ``--grid`` asks for; or the refusal."""
    if grid == "auto":
        return fastest(graph, arch)
    if grid == "min":
        return smallest(graph, arch)
    return given(graph, arch, *grid)


def scalar(
    graph: TaskGraph, arch: machine.Arch, grid: str | tuple[int, int], refusal: Refusal | None
) -> Placement:
    """Every task as scalar code (``refusal``: why the data-parallel lowerings did not take the
    graph, named in the errors of this last option)."""
    if isinstance(grid, tuple):
        low = lower(graph, arch, *grid, scalar=True)
        if not isinstance(low, Lowered):
            raise _failed(low.error(), refusal)
        check_memory(graph, low, True, refusal)
        return Placement("given", low, candidate(low), None)
    low = scalar_tasks(graph, arch, refusal)  # one PE per task instance: nothing to choose
    return Placement(grid, low, candidate(low), None)


def given(graph: TaskGraph, arch: machine.Arch, width: int, height: int) -> Placement | Refusal:
    """The plan on a grid the user gave; a plan that does not fit it is an error, and one whose
    lowering cannot use a grid of this shape is a refusal (scalar tasks on that grid)."""
    low = lower(graph, arch, width, height)
    if isinstance(low, Refusal):
        return low
    if isinstance(low, Misfit):
        if low.shape:
            return Refusal(low.reason, low.span)
        raise low.error()
    check_memory(graph, low, False, None)
    return Placement("given", low, candidate(low), None)


def smallest(graph: TaskGraph, arch: machine.Arch) -> Placement | Refusal:
    """The smallest PE count whose plan fits; among its shapes the squarest blocks."""
    with progress.phase("csl: choosing the PE grid") as shown:
        low = _smallest(graph, arch, shown)
    if isinstance(low, Refusal):
        return low
    return Placement("min", low, candidate(low), None)


def fastest(graph: TaskGraph, arch: machine.Arch) -> Placement | Refusal:
    """The fewest modelled cycles that fit the wafer; fewer PEs when within ``NEAR``."""
    with progress.phase("csl: choosing the PE grid") as shown:
        least = _smallest(graph, arch, shown)
        if isinstance(least, Refusal):
            return least
        search = _Search(graph, arch, least)
        xs, ys = search.axis_sizes()
        aspect = search.aspect()
        coarse = {(w, _nearest(ys, w * aspect)) for w in xs} | {
            (_nearest(xs, h / aspect), h) for h in ys
        }
        for w, h in sorted(coarse):
            shown.update(search.describe)
            refused = search.try_grid(w, h)
            if refused is not None:
                return refused
        for best in sorted(search.found.values(), key=lambda c: (c.cycles, c.pes))[:FINALISTS]:
            i, j = xs.index(best.width), ys.index(best.height)
            for w in xs[max(0, i - REACH) : i + REACH + 1]:
                for h in ys[max(0, j - REACH) : j + REACH + 1]:
                    shown.update(search.describe)
                    refused = search.try_grid(w, h)
                    if refused is not None:
                        return refused
    chosen, runner_up = pick(list(search.found.values()))
    low = search.lowered[(chosen.width, chosen.height)]
    return Placement("auto", low, chosen, runner_up)


def pick(found: list[Candidate]) -> tuple[Candidate, Candidate | None]:
    """The ``auto`` choice among evaluated grids and the best of the others (by cycles)."""
    fastest_cycles = min(c.cycles for c in found)
    near = [c for c in found if c.cycles <= fastest_cycles * (1 + NEAR)]
    chosen = min(near, key=lambda c: (c.pes, c.cycles, abs(math.log(c.width / c.height))))
    others = [c for c in found if c != chosen]
    runner_up = min(others, key=lambda c: (c.cycles, c.pes), default=None)
    return chosen, runner_up


def _nearest(sizes: list[int], value: float) -> int:
    return min(sizes, key=lambda s: abs(math.log(s / max(value, 1e-9))))


class _Search:
    """Candidate grids lowered and modelled once each."""

    def __init__(self, graph: TaskGraph, arch: machine.Arch, least: Lowered) -> None:
        self.graph, self.arch = graph, arch
        self.fewest = least.width * least.height
        self.lowered: dict[tuple[int, int], Lowered] = {(least.width, least.height): least}
        self.found: dict[tuple[int, int], Candidate] = {
            (least.width, least.height): candidate(least)
        }
        self.tried: set[tuple[int, int]] = set(self.found)

    def extents(self) -> tuple[int, int]:
        """Rows and columns of the principal tensor (the first output)."""
        t = self.graph.outputs[0] if self.graph.outputs else self.graph.tensors[0]
        if len(t.shape) < 2:
            side = math.isqrt(max(math.prod(t.shape), 1))
            return side, side
        return t.shape[-2], t.shape[-1]

    def aspect(self) -> float:
        """Rows of PEs per column that keep blocks square."""
        rows, cols = self.extents()
        return rows / cols

    def axis_sizes(self) -> tuple[list[int], list[int]]:
        rows, cols = self.extents()
        mw, mh = self.arch.max_program
        (least,) = self.lowered.values()  # the smallest grid that fits, tried first
        xs = sorted({*_sizes(cols, mw), least.width})
        ys = sorted({*_sizes(rows, mh), least.height})
        return xs, ys

    def describe(self) -> str:
        return f"{len(self.tried):,} grids tried, {len(self.found):,} fit"

    def try_grid(self, w: int, h: int) -> Refusal | None:
        """Lower and model one grid if its plan fits; a lowering's refusal ends the search."""
        if (w, h) in self.tried or w * h < self.fewest:
            return None
        self.tried.add((w, h))
        estimate = _estimate(self.graph, w, h)
        if isinstance(estimate, Refusal):
            return estimate
        if isinstance(estimate, Misfit) or estimate + machine.CODE_BASE_BYTES > self.arch.pe_memory:
            return None
        low = lower(self.graph, self.arch, w, h)
        if isinstance(low, Refusal):
            return low
        if isinstance(low, Lowered) and low.memory_bytes <= self.arch.pe_memory:
            self.lowered[(w, h)] = low
            self.found[(w, h)] = candidate(low)
        return None  # a Misfit, or over the PE memory: another grid may take the plan


def _sizes(extent: int, limit: int) -> list[int]:
    """Grid sizes along one axis worth trying for a tensor extent."""
    top = min(extent, limit)
    sizes = {1 << k for k in range(top.bit_length())}
    sizes |= {d for d in range(1, top + 1) if extent % d == 0}
    sizes |= {-(-extent // (1 << k)) for k in range(extent.bit_length())}
    return sorted(s for s in sizes if 1 <= s <= top)


def _scalar_grid(graph: TaskGraph, arch: machine.Arch) -> tuple[int, int]:
    """A PE per task of the widest step."""
    mw, mh = arch.max_program
    count = min(tasks.widest_step(graph), mw * mh)
    w = min(count, mw)
    return w, -(-count // w)


def scalar_tasks(graph: TaskGraph, arch: machine.Arch, refusal: Refusal | None) -> Lowered:
    """Scalar tasks: a PE per task of the widest step, every tensor whole on each PE; the
    error when they do not fit either."""
    low = lower(graph, arch, *_scalar_grid(graph, arch), scalar=True)
    if not isinstance(low, Lowered):
        raise _failed(low.error(), refusal)
    if low.memory_bytes > arch.pe_memory:
        reason = (
            f"the data-parallel lowerings refused it: {refusal.reason}"
            if refusal is not None
            else scalar_reason(graph)
        )
        culprit = scalar_culprit(graph) or graph.tasks[0]
        raise _failed(tasks.too_big(graph, arch, culprit, low.memory_bytes, reason), refusal)
    return low


def _failed(err: KernelcError, refusal: Refusal | None) -> KernelcError:
    """The last option's error, noting why the data-parallel lowerings refused the graph
    (unless both refused for one reason)."""
    if refusal is None or err.message == refusal.reason:
        return err
    note = (refusal.span, f"the data-parallel lowering: {refusal.reason}")
    return replace(err, notes=[*err.notes, note])


def _estimate(graph: TaskGraph, w: int, h: int) -> int | Refusal | Misfit:
    """The bytes of the planned blocks per PE, before lowering."""
    layouts = plan(graph, w, h)
    if not isinstance(layouts, dict):
        return layouts
    return sum(lay.local_bytes for lay in layouts.values())


def _squareness(graph: TaskGraph, w: int, h: int) -> float:
    t = graph.outputs[0] if graph.outputs else graph.tensors[0]
    if len(t.shape) < 2:
        return abs(math.log(w / h))
    bh, bw = t.shape[-2] / h, t.shape[-1] / w
    return abs(math.log(max(bh, 1e-9) / max(bw, 1e-9)))


@dataclass(frozen=True)
class NoGrid:
    """No grid of up to ``limit`` PEs holds the data-parallel plan (``last``: why the last
    grid lowered did not take it)."""

    limit: int
    last: Misfit | None

    def error(self, graph: TaskGraph, arch: machine.Arch) -> KernelcError:
        total = sum(t.nbytes for t in graph.tensors)
        last = self.last
        notes = [] if last is None else [(last.span, f"the last grid tried: {last.reason}")]
        return KernelcError(
            f"no PE grid of up to {self.limit:,} PEs holds "
            f"'{graph.name}' in {arch.pe_memory:,} bytes per PE ({total:,} bytes of tensors); "
            "reduce the sizes or give --grid",
            graph.span,
            notes,
        )


def _smallest(
    graph: TaskGraph, arch: machine.Arch, shown: progress.Phase | progress.Silent = progress.SILENT
) -> Lowered | Refusal:
    """The smallest PE count whose data-parallel plan fits, or a lowering's refusal; the error
    when no grid of the machine holds the plan."""
    low = _least(graph, arch, shown)
    if isinstance(low, Misfit):
        raise low.error()
    if isinstance(low, NoGrid):
        raise low.error(graph, arch)
    return low


def _least(
    graph: TaskGraph, arch: machine.Arch, shown: progress.Phase | progress.Silent = progress.SILENT
) -> Lowered | Refusal | Misfit | NoGrid:
    """The smallest PE count whose data-parallel plan fits; among its shapes the squarest. A
    ``Misfit`` when a task says no grid can hold it, ``NoGrid`` when none of those tried did."""
    mw, mh = arch.max_program
    total = sum(t.nbytes for t in graph.tensors)
    room = arch.pe_memory - machine.CODE_BASE_BYTES
    first = max(1, total // room)
    planner = GraphPlanner()
    for task in graph.tasks:
        fewest = lowering_of(task).fewest_pes(task, task.form, graph, arch, planner)
        if not isinstance(fewest, int):
            return fewest
        first = max(first, fewest)
    refused: Misfit | None = None
    for count in range(first, min(first + GRID_SEARCH_LIMIT, mw * mh) + 1):
        shown.update(f"the smallest grid that fits: trying {count:,} PEs")
        shapes = [
            (w, count // w)
            for w in range(1, min(count, mw) + 1)
            if count % w == 0 and count // w <= mh
        ]
        shapes.sort(key=lambda s: (round(_squareness(graph, *s), 9), -s[0]))
        for w, h in shapes:
            estimate = _estimate(graph, w, h)
            if isinstance(estimate, Refusal):
                return estimate
            if isinstance(estimate, Misfit) or estimate + machine.CODE_BASE_BYTES > arch.pe_memory:
                continue
            low = lower(graph, arch, w, h)
            if isinstance(low, Refusal):
                return low  # no other grid would help: say what cannot be lowered
            if isinstance(low, Misfit):
                refused = low  # this grid cannot take the plan; another may
                continue
            if low.memory_bytes <= arch.pe_memory:
                return low
    return NoGrid(min(first + GRID_SEARCH_LIMIT, mw * mh), refused)


def check_memory(graph: TaskGraph, low: Lowered, scalar: bool, refusal: Refusal | None) -> None:
    """A plan over 48 KB per PE is a user error naming the biggest tensor and the numbers
    (``refusal``: why the data-parallel lowerings refused the graph, for scalar tasks)."""
    limit = low.arch.pe_memory
    if low.memory_bytes <= limit:
        return
    biggest = max(low.layouts.values(), key=lambda lay: lay.local_bytes)
    decl = graph.tensor(biggest.tensor)
    block = " x ".join(str(n) for n in biggest.local_shape)
    if scalar or scalar_culprit(graph) is not None:
        better = lower(graph, low.arch, *_scalar_grid(graph, low.arch), scalar=True)
        fits = isinstance(better, Lowered) and better.memory_bytes <= low.arch.pe_memory
    else:
        better = _least(graph, low.arch)
        fits = isinstance(better, Lowered)
    if fits:
        hint = f"; a {better.width} x {better.height} grid fits (omit --grid to choose a grid)"
    else:
        hint = "; no grid of this machine fits: reduce the sizes"
    error = KernelcError(
        f"the csl plan for a {low.width} x {low.height} grid needs {low.memory_bytes:,} bytes per "
        f"PE (data {low.data_bytes:,} + modelled code {low.code_bytes:,}), more than the "
        f"{limit:,} bytes of a {low.arch.name.upper()} PE; the largest piece is '{decl.name}' "
        f"({decl.role} {decl.dtype}{list(decl.shape)}): a {block} block of "
        f"{biggest.local_bytes:,} bytes on every PE{hint}",
        decl.span,
    )
    raise _failed(error, refusal)
