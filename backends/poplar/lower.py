"""Task graph -> IPU plan: each task lowered by its form's lowering, one compute set per step,
every tensor mapped to tiles; the number of tiles chosen by the cost model.

``LOWERINGS`` holds the lowering of each form that spreads over tiles (``Map``: blocks of the
iteration space with halos; ``Contraction``: blocked products; ``Reduction``: blocks of the
kept index, each fold whole on one worker). A task whose form has none, or
that its lowering does not take, runs as one single-worker vertex (``ScalarLowering``); the
tasks of one step of the graph (kernelc.dot.steps: no dependencies among them) form one compute
set. A tensor lives where the first task writing it wants it (inputs: the first reading it), so
compute follows data and the exchange brings the rest. Without ``--tiles`` the plan is made for
a ladder of tile counts up to the IPU's and the one with the fewest modelled cycles that fits
every tile's memory is kept (ties: fewer tiles).
"""

from __future__ import annotations

import dataclasses
import itertools

from kernelc import progress
from kernelc.backends.poplar.codelet import HELPERS
from kernelc.backends.poplar.contract import ContractionLowering
from kernelc.backends.poplar.cost import model, tensor_bytes, tile_bytes, traffic
from kernelc.backends.poplar.lookup import LookupLowering
from kernelc.backends.poplar.lowered import FormLowering, Plan, TensorPlan, TileMap
from kernelc.backends.poplar.machine import Arch
from kernelc.backends.poplar.map import MapLowering, ReductionLowering
from kernelc.backends.poplar.names import Names, class_name
from kernelc.backends.poplar.scalar import ScalarLowering
from kernelc.diagnostics import KernelcError, Span, Unsupported
from kernelc.dot import steps
from kernelc.forms import Contraction, Lookup, Map, Reduction, Scalar
from kernelc.graph import Task, TaskGraph

LOWERINGS: dict[type, FormLowering] = {
    Map: MapLowering(),
    Contraction: ContractionLowering(),
    Reduction: ReductionLowering(),
    Lookup: LookupLowering(),
}
SCALAR = ScalarLowering()

# tile counts the planner tries (then the IPU's own count)
LADDER = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)

HOST_RESERVED = {
    *("argc", "argv", "device", "graph", "prog", "engine", "v", "failed", "target", "inputs"),
    *("outputs", "reference", "hardware", "profile", "arg", "i", "b", "m", "rows", "sub"),
}


def lower(graph: TaskGraph, arch: Arch, tiles: int | None = None, span: Span | None = None) -> Plan:
    """The plan on ``tiles`` tiles, or on the tile count with the fewest modelled cycles."""
    if tiles is not None:
        plan, _ = _build(graph, arch, tiles)
        overfull = _overfull(plan)
        if overfull is not None:
            whole = [t for t in plan.tasks if not t.codelet.multi]
            why = f": task '{whole[0].task.name}' runs as {whole[0].describe}" if whole else ""
            raise KernelcError(f"{overfull}{why}", span or graph.span)
        return plan
    best: tuple[int, Plan] | None = None
    refusal, last = None, None
    before = 0
    weighed: list[tuple[int, int]] = []
    with progress.phase("poplar: choosing the tile count") as shown:
        for count in (*(n for n in LADDER if n < arch.tiles), arch.tiles):
            shown.update(f"planning {count:,} of {arch.tiles:,} tiles")
            plan, useful = _build(graph, arch, count)
            overfull = _overfull(plan)
            if overfull is None:
                total = model(plan).total
                weighed.append((count, total))
                if best is None or total < best[0]:
                    best = (total, plan)
            else:
                refusal, last = overfull, plan
            if overfull is None and useful < count and useful == before:
                break  # the lowerings use no more tiles when given more
            before = useful
    if best is None:
        assert last is not None
        whole = [t for t in last.tasks if not t.codelet.multi]
        if whole:  # the scalar fallback holds tensors whole: the target cannot place them
            raise Unsupported(
                f"{refusal}: task '{whole[0].task.name}' runs as {whole[0].describe}, which "
                "holds its tensors whole on one tile",
                whole[0].task.span,
            )
        raise KernelcError(f"{refusal}", span or graph.span)
    return dataclasses.replace(best[1], weighed=tuple(weighed))


def _overfull(plan: Plan) -> str | None:
    """Why a plan does not fit its tiles, naming the tile and its largest tensor; or None."""
    flows = traffic(plan)
    for tile, nbytes in sorted(tile_bytes(plan, flows).items()):
        if nbytes > plan.arch.tile_memory:
            held = tensor_bytes(plan, tile)
            name, most = max(held.items(), key=lambda kv: (kv[1], kv[0]), default=("", 0))
            largest = f"; the largest tensor there is '{name}' ({most:,} bytes)" if name else ""
            return (
                f"the poplar plan on {plan.tiles} tile(s) needs {nbytes:,} bytes on tile {tile}, "
                f"more than the {plan.arch.tile_memory:,} bytes of an IPU tile (tensors, vertex "
                f"state and exchange buffers){largest}; reduce the sizes or use more tiles"
            )
    return None


def _build(graph: TaskGraph, arch: Arch, tiles: int) -> tuple[Plan, int]:
    """The plan with ``tiles`` tiles for the block lowerings, and the most any of them used."""
    order = steps(graph)
    step_of = {name: k for k, names in enumerate(order) for name in names}
    widest = max((len(s) for s in order), default=1)
    if widest > arch.tiles:
        raise KernelcError(
            f"a step of '{graph.name}' has {widest} tasks, more than the {arch.tiles} tiles of "
            f"a {arch.name.upper()} IPU",
            graph.span,
        )
    scalar_tiles = {k: 0 for k in range(len(order))}
    chosen = []
    reasons: dict[str, str] = {}
    useful = 1
    shares = _league_shares(graph, order, tiles)
    for task in graph.tasks:
        lowering = LOWERINGS.get(type(task.form))
        share = shares.get(task.name, range(tiles))
        blocks = None if lowering is None else lowering.plan(task, task.form, graph, share)
        if lowering is None or isinstance(blocks, str):
            reasons[task.name] = blocks if isinstance(blocks, str) else _why(task)
            step = step_of[task.name]
            tile = scalar_tiles[step]
            scalar_tiles[step] += 1
            lowering, blocks = SCALAR, SCALAR.plan(task, task.form, graph, range(tile, tile + 1))
        else:
            useful = max(useful, share.start + blocks.tiles_used)
        chosen.append((task, lowering, blocks))
    wanted: dict[str, TileMap] = {}
    for reading in (False, True):  # writers choose first, then the first reader
        for task, _, blocks in chosen:
            regions = task.writes if not reading else task.reads
            for r in regions:
                if r.tensor not in wanted and r.tensor in blocks.mappings:
                    wanted[r.tensor] = _league_mapping(
                        task, r.tensor, chosen, shares, step_of, reading
                    )
            if reading:
                for b in task.bindings:
                    if b.scalar in blocks.mappings and b.scalar not in wanted:
                        wanted[b.scalar] = blocks.mappings[b.scalar]
    host = Names(HOST_RESERVED)
    tensors = []
    for t in graph.tensors:
        mapping = wanted.get(t.name, TileMap.whole(t.shape, 0))
        tensors.append(
            TensorPlan(t.name, host(t.name), t.dtype, t.shape, t.role, mapping, *_io(host, t.name))
        )
    for s in graph.scalars:
        mapping = wanted.get(s.name, TileMap.whole((), 0))
        tensors.append(
            TensorPlan(s.name, host(s.name), s.dtype, (), "scalar", mapping, *_io(host, s.name))
        )
    phased = []
    for index, (task, lowering, blocks) in enumerate(chosen):
        cls = class_name(task.kernel.name, index)
        made = lowering.lower(task, task.form, blocks, cls, step_of[task.name])
        share = shares.get(task.name) if lowering is not SCALAR else None
        for low in made if isinstance(made, tuple) else (made,):
            low = dataclasses.replace(low, workers=lowering.cycles(low), share=share)
            if task.name in reasons:
                low = dataclasses.replace(low, describe=f"{low.describe}: {reasons[task.name]}")
            phased.append(low)
    # a task of several phases delays the later steps: step k starts after every phase of k - 1
    phases = [
        1 + max((t.phase for t in phased if t.step == k), default=0) for k in range(len(order))
    ]
    starts = [sum(phases[:k]) for k in range(len(order))]
    lowered = [dataclasses.replace(t, step=starts[t.step] + t.phase) for t in phased]
    for temp in (temp for t in lowered for temp in t.temps):
        tensors.append(
            TensorPlan(
                temp.name, host(temp.name), temp.dtype, temp.shape, "temp", temp.mapping, "", ""
            )
        )
    helpers = set().union(*(t.helpers for t in lowered)) if lowered else set()
    plan = Plan(
        graph,
        arch,
        tiles,
        tuple(tensors),
        tuple(lowered),
        sum(phases),
        tuple(h for h in HELPERS if h in helpers),
    )
    return plan, useful


def _league_shares(graph: TaskGraph, order: list, tiles: int) -> dict[str, range]:
    """The tile range of each task of a league: the tasks of one step that run one kernel,
    each binding one of its scalar parameters to another constant (OpenMP ``teams``: team t
    with ``omp_team = t``). Replicas of one program, they divide the tiles into equal ranges,
    each spread over its own (a virtual graph in main.cpp); with more replicas than tiles,
    each takes every tile as other tasks of a step do."""
    by_name = {t.name: t for t in graph.tasks}
    shares: dict[str, range] = {}
    for names in order:
        kernels: dict[str, list[Task]] = {}
        for name in names:
            task = by_name[name]
            kernels.setdefault(task.kernel.name, []).append(task)
        for members in kernels.values():
            if not 1 < len(members) <= tiles or not _replicas(members):
                continue
            n = len(members)
            for k, task in enumerate(members):
                shares[task.name] = range(k * tiles // n, (k + 1) * tiles // n)
    return shares


def _replicas(members: list[Task]) -> bool:
    """True when some scalar parameter is bound to a different constant in each task."""
    for binding in members[0].bindings:
        values = [m.binding(binding.param).constant for m in members]
        if None not in values and len(set(values)) == len(values):
            return True
    return False


def _league_mapping(
    task: Task, tensor: str, chosen: list, shares: dict[str, range], step_of: dict, reading: bool
) -> TileMap:
    """Where the tensor lives: the mapping ``task`` proposes, or where ``task`` is one of a
    league, each element where the members that cut it for themselves propose (a replica's
    own rows are cut over its tiles, the rest of the tensor stretched to its ends; of several,
    the smallest block, then the first), so every team's block lives on that team's tiles."""
    own = next(b for t, _, b in chosen if t is task).mappings[tensor]
    proposals = [
        b.mappings[tensor]
        for t, lowering, b in chosen
        if t.name in shares
        and lowering is not SCALAR
        and step_of[t.name] == step_of[task.name]
        and t.kernel.name == task.kernel.name
        and tensor in b.mappings
        and any(r.tensor == tensor for r in (t.reads if reading else t.writes))
    ]
    if not any(m is own for m in proposals):
        return own  # no league member, or one that runs as a scalar vertex
    cuts = tuple(
        tuple(sorted({c for m in proposals for c in (*m.cuts[d], *m.box(d))}))
        for d in range(len(own.cuts))
    )
    tiles = []
    for cell in itertools.product(*(range(len(c) - 1) for c in cuts)):
        at = tuple(cuts[d][k] for d, k in enumerate(cell))
        holding = [m for m in proposals if m.holds(at)] or proposals
        best = min(holding, key=lambda m, at=at: m.block_size(at))
        tiles.append(best.tile_of(at))
    return TileMap(cuts, tuple(tiles))


def _why(task: Task) -> str:
    if isinstance(task.form, Scalar):
        return task.form.reason
    return f"the poplar backend has no tile lowering of form {type(task.form).__name__}"


def _io(host: Names, name: str) -> tuple[str, str]:
    return host.derived(f"{host(name)}_stream"), host.derived(f"{host(name)}_host")
