"""Which PE rectangle a graph runs on: the placement policies behind ``--grid``.

``auto`` (the default) wants the plan with the fewest modelled cycles that fits the wafer,
preferring fewer PEs when they model within ``NEAR`` of the fastest: a wafer is there for speed,
and PEs beyond the knee of the curve only lengthen the launch across the rectangle. ``min`` is
the smallest PE count whose memory plan fits (squarest blocks first), and ``WxH`` a given grid.

The search lowers candidate grids and asks the cost model for their cycles. Lowering a grid
takes milliseconds, so it tries a bounded set: per axis, powers of two, the divisors of the
principal tensor's extent and the PE counts that give power-of-two blocks; first paired to keep
blocks square, then every pairing around the fastest few.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
from kernelc.backends.csl.lowered import Lowered
from kernelc.csl import machine
from kernelc.diagnostics import KernelcError, Unsupported
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


def given(graph: TaskGraph, arch: machine.Arch, width: int, height: int, scalar: bool) -> Placement:
    """The plan on a grid the user gave; a plan over the PE memory is an error."""
    low = lower(graph, arch, width, height, scalar)
    check_memory(graph, low, scalar)
    return Placement("given", low, candidate(low), None)


def smallest(graph: TaskGraph, arch: machine.Arch, refusal: str | None = None) -> Placement:
    """The smallest PE count whose plan fits; among its shapes the squarest blocks.
    ``refusal``: why the data-parallel lowerings refused the graph (then scalar tasks)."""
    if scalar_culprit(graph) is not None or refusal is not None:
        low = scalar_tasks(graph, arch, refusal)
        return Placement("min", low, candidate(low), None)
    with progress.phase("csl: choosing the PE grid") as shown:
        low = _smallest(graph, arch, shown)
    return Placement("min", low, candidate(low), None)


def fastest(graph: TaskGraph, arch: machine.Arch, refusal: str | None = None) -> Placement:
    """The fewest modelled cycles that fit the wafer; fewer PEs when within ``NEAR``."""
    if scalar_culprit(graph) is not None or refusal is not None:
        low = scalar_tasks(graph, arch, refusal)  # one PE per task instance: nothing to choose
        return Placement("auto", low, candidate(low), None)
    with progress.phase("csl: choosing the PE grid") as shown:
        least = _smallest(graph, arch, shown)
        search = _Search(graph, arch, least)
        xs, ys = search.axis_sizes()
        aspect = search.aspect()
        coarse = {(w, _nearest(ys, w * aspect)) for w in xs} | {
            (_nearest(xs, h / aspect), h) for h in ys
        }
        for w, h in sorted(coarse):
            shown.update(search.describe)
            search.try_grid(w, h)
        for best in sorted(search.found.values(), key=lambda c: (c.cycles, c.pes))[:FINALISTS]:
            i, j = xs.index(best.width), ys.index(best.height)
            for w in xs[max(0, i - REACH) : i + REACH + 1]:
                for h in ys[max(0, j - REACH) : j + REACH + 1]:
                    shown.update(search.describe)
                    search.try_grid(w, h)
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

    def try_grid(self, w: int, h: int) -> None:
        if (w, h) in self.tried or w * h < self.fewest:
            return
        self.tried.add((w, h))
        estimate = _estimate(self.graph, w, h)
        if estimate is None or estimate + machine.CODE_BASE_BYTES > self.arch.pe_memory:
            return
        try:
            low = lower(self.graph, self.arch, w, h)
        except Unsupported:
            raise
        except KernelcError:
            return  # this grid cannot take the plan; another may
        if low.memory_bytes <= self.arch.pe_memory:
            self.lowered[(w, h)] = low
            self.found[(w, h)] = candidate(low)


def _sizes(extent: int, limit: int) -> list[int]:
    """Grid sizes along one axis worth trying for a tensor extent."""
    top = min(extent, limit)
    sizes = {1 << k for k in range(top.bit_length())}
    sizes |= {d for d in range(1, top + 1) if extent % d == 0}
    sizes |= {-(-extent // (1 << k)) for k in range(extent.bit_length())}
    return sorted(s for s in sizes if 1 <= s <= top)


def scalar_tasks(graph: TaskGraph, arch: machine.Arch, refusal: str | None) -> Lowered:
    """Scalar tasks: a PE per task of the widest step, every tensor whole on each PE."""
    mw, mh = arch.max_program
    count = min(tasks.widest_step(graph), mw * mh)
    w = min(count, mw)
    low = lower(graph, arch, w, -(-count // w), scalar=True)
    if low.memory_bytes > arch.pe_memory:
        reason = (
            f"the data-parallel lowerings refused it: {refusal}"
            if refusal is not None
            else scalar_reason(graph)
        )
        culprit = scalar_culprit(graph) or graph.tasks[0]
        raise tasks.too_big(graph, arch, culprit, low.memory_bytes, reason)
    return low


def _estimate(graph: TaskGraph, w: int, h: int) -> int | None:
    try:
        layouts = plan(graph, w, h)
    except Unsupported:
        raise
    except KernelcError:
        return None
    return sum(lay.local_bytes for lay in layouts.values())


def _squareness(graph: TaskGraph, w: int, h: int) -> float:
    t = graph.outputs[0] if graph.outputs else graph.tensors[0]
    if len(t.shape) < 2:
        return abs(math.log(w / h))
    bh, bw = t.shape[-2] / h, t.shape[-1] / w
    return abs(math.log(max(bh, 1e-9) / max(bw, 1e-9)))


def _smallest(
    graph: TaskGraph, arch: machine.Arch, shown: progress.Phase | progress.Silent = progress.SILENT
) -> Lowered:
    """The smallest PE count whose data-parallel plan fits; among its shapes the squarest."""
    mw, mh = arch.max_program
    total = sum(t.nbytes for t in graph.tensors)
    room = arch.pe_memory - machine.CODE_BASE_BYTES
    first = max(1, total // room)
    planner = GraphPlanner()
    for task in graph.tasks:
        first = max(first, lowering_of(task).fewest_pes(task, task.form, graph, arch, planner))
    refused: KernelcError | None = None
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
            if estimate is None or estimate + machine.CODE_BASE_BYTES > arch.pe_memory:
                continue
            try:
                low = lower(graph, arch, w, h)
            except Unsupported:
                raise  # no other grid would help: say what cannot be lowered
            except KernelcError as err:
                refused = err  # this grid cannot take the plan; another may
                continue
            if low.memory_bytes <= arch.pe_memory:
                return low
    notes = [] if refused is None else [(refused.span, f"the last grid tried: {refused.message}")]
    raise KernelcError(
        f"no PE grid of up to {min(first + GRID_SEARCH_LIMIT, mw * mh):,} PEs holds "
        f"'{graph.name}' in {arch.pe_memory:,} bytes per PE ({total:,} bytes of tensors); "
        "reduce the sizes or give --grid",
        graph.span,
        notes,
    )


def check_memory(graph: TaskGraph, low: Lowered, scalar: bool = False) -> None:
    """A plan over 48 KB per PE is a user error naming the biggest tensor and the numbers."""
    limit = low.arch.pe_memory
    if low.memory_bytes <= limit:
        return
    biggest = max(low.layouts.values(), key=lambda lay: lay.local_bytes)
    decl = graph.tensor(biggest.tensor)
    block = " x ".join(str(n) for n in biggest.local_shape)
    try:
        if scalar or scalar_culprit(graph) is not None:
            better = scalar_tasks(graph, low.arch, None)
        else:
            better = _smallest(graph, low.arch)
        hint = f"; a {better.width} x {better.height} grid fits (omit --grid to choose a grid)"
    except KernelcError:
        hint = "; no grid of this machine fits: reduce the sizes"
    raise KernelcError(
        f"the csl plan for a {low.width} x {low.height} grid needs {low.memory_bytes:,} bytes per "
        f"PE (data {low.data_bytes:,} + modelled code {low.code_bytes:,}), more than the "
        f"{limit:,} bytes of a {low.arch.name.upper()} PE; the largest piece is '{decl.name}' "
        f"({decl.role} {decl.dtype}{list(decl.shape)}): a {block} block of "
        f"{biggest.local_bytes:,} bytes on every PE{hint}",
        decl.span,
    )
