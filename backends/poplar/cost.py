"""The modelled cycles and tile memory of a plan, by the IPU model's own rules (docs/POPLAR.md,
"Cycle model").

A vertex costs VERTEX_OVERHEAD + ACCESS_COST x (element accesses through its fields) worker
instructions per worker it runs on (each lowering counts them, ``FormLowering.cycles``); a
worker issues one instruction every ``workers`` cycles, so a tile's compute is ``workers`` x
its busiest context. Exchange is the most bytes a tile receives / 4 per cycle, before and after
compute; each compute set costs one sync. Tile memory is the tensor elements mapped there, the
vertex state, and the exchange buffers of the compute set that needs most.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kernelc import ir
from kernelc.affine import evaluate
from kernelc.backends.poplar.lowered import Plan
from kernelc.diagnostics import KernelcError

VERTEX_OVERHEAD = 20
ACCESS_COST = 3


@dataclass(frozen=True)
class Cost:
    compute: int
    exchange: int
    sync: int
    estimated_trips: bool  # some trip count was data-dependent
    steps: tuple[dict[str, int], ...] = ()  # per compute set: compute, exchange and sync

    @property
    def total(self) -> int:
        return self.compute + self.exchange + self.sync


class AccessCounter:
    """Element accesses through vertex fields of a kernel body, as the emitted C++ makes them.

    ``weights`` gives the accesses of one element access per tensor parameter (2 for a list
    field: the block, then the element); ``fields`` are the parameters read through scalar
    fields. A data-dependent trip count is taken as 1 (``guessed``)."""

    def __init__(
        self, sizes: dict[str, int], fields: set[str], weights: dict[str, int] | None = None
    ) -> None:
        self.env = dict(sizes)
        self.fields = fields
        self.weights = weights or {}
        self.guessed = False

    def trips(self, lo: ir.Expr, hi: ir.Expr) -> int:
        try:
            first, end = evaluate(lo, self.env), evaluate(hi, self.env)
        except KernelcError:
            self.guessed = True
            return 1
        if not all(-(2**31) <= v < 2**31 for v in (first, end)):
            self.guessed = True  # a bound that wraps in i32 (evaluate's arithmetic is exact)
            return 1
        return max(0, end - first)

    def block(self, body: tuple[ir.Stmt, ...]) -> float:
        return sum(self.stmt(s) for s in body)

    def stmt(self, s: ir.Stmt) -> float:
        own = sum(self.expr(e) for e in ir.own_exprs(s))
        match s:
            case ir.For():
                n = self.trips(s.lo, s.hi)
                try:
                    self.env[s.var] = evaluate(s.lo, self.env) + n // 2
                except KernelcError:
                    self.env[s.var] = 0
                return own + n * self.block(s.body)
            case ir.Store():
                return own + self.weights.get(s.tensor, 1) * (1 if s.op == "=" else 2)
            case ir.If():
                return own + max(self.block(s.then), self.block(s.orelse))
        return own

    def expr(self, e: ir.Expr) -> float:
        match e:
            case ir.Load():
                return self.weights.get(e.tensor, 1) + sum(self.expr(i) for i in e.indices)
            case ir.Name() if e.name in self.fields:
                return 1
            case ir.Reduce():
                return (
                    self.expr(e.lo) + self.expr(e.hi) + self.trips(e.lo, e.hi) * self.expr(e.body)
                )
            case ir.Search():
                return 2 * math.log2(64) + self.expr(e.value)
        return sum(self.expr(c) for c in ir.children(e) if not isinstance(c, ir.Slice))


def instructions(accesses: float) -> int:
    return VERTEX_OVERHEAD + ACCESS_COST * int(accesses)


@dataclass(frozen=True)
class Traffic:
    """Per compute set: bytes each tile receives before compute (in) and after (out)."""

    inbound: tuple[dict[int, int], ...]
    outbound: tuple[dict[int, int], ...]
    buffers: tuple[dict[int, int], ...]  # every remote element a vertex's fields touch


def traffic(plan: Plan) -> Traffic:
    tiles = {t.name: t.mapping.array() for t in plan.tensors}
    size = {t.name: t.dtype.numpy.itemsize for t in plan.tensors}
    ins, outs, bufs = [], [], []
    for step in range(plan.steps):
        inbound: dict[int, int] = {}
        outbound: dict[int, int] = {}
        buffers: dict[int, int] = {}
        for low in (t for t in plan.tasks if t.step == step):
            for inst in low.instances:
                for f, edge in zip(low.edge_fields, inst.edges, strict=True):
                    where = tiles[edge.tensor][tuple(slice(lo, hi) for lo, hi in edge.box)]
                    remote = where[where != inst.tile]
                    nbytes = remote.size * size[edge.tensor]
                    buffers[inst.tile] = buffers.get(inst.tile, 0) + nbytes
                    if f.direction != "Output":
                        inbound[inst.tile] = inbound.get(inst.tile, 0) + nbytes
                    if f.direction != "Input" and remote.size:
                        owners, counts = np.unique(remote, return_counts=True)
                        for owner, n in zip(owners.tolist(), counts.tolist(), strict=True):
                            outbound[owner] = outbound.get(owner, 0) + n * size[edge.tensor]
        ins.append(inbound)
        outs.append(outbound)
        bufs.append(buffers)
    return Traffic(tuple(ins), tuple(outs), tuple(bufs))


def model(plan: Plan, flows: Traffic | None = None) -> Cost:
    workers = plan.arch.workers
    flows = flows or traffic(plan)
    bpc = plan.arch.exchange_bytes_per_cycle
    steps = []
    for step in range(plan.steps):
        contexts: dict[int, list[int]] = {}
        placed: dict[int, int] = {}
        for low in (t for t in plan.tasks if t.step == step):
            for inst, work in zip(low.instances, low.workers, strict=True):
                ctx = contexts.setdefault(inst.tile, [0] * workers)
                if low.codelet.multi:
                    for w, n in enumerate(work):
                        ctx[w] += n
                else:
                    ctx[placed.get(inst.tile, 0) % workers] += work[0]
                    placed[inst.tile] = placed.get(inst.tile, 0) + 1
        exchange = -(-max(flows.inbound[step].values(), default=0) // bpc)
        exchange += -(-max(flows.outbound[step].values(), default=0) // bpc)
        steps.append(
            {
                "compute": workers * max((max(c) for c in contexts.values()), default=0),
                "exchange": exchange,
                "sync": plan.arch.sync_cycles,
            }
        )
    guessed = any(t.guessed for t in plan.tasks)
    copies = [c for t in plan.tasks for c in t.copies]
    return Cost(
        sum(s["compute"] for s in steps),
        sum(s["exchange"] for s in steps) + sum(_copy_cycles(plan, *c) for c in copies),
        (plan.steps + len(copies)) * plan.arch.sync_cycles,
        guessed,
        tuple(steps),
    )


def _copy_cycles(plan: Plan, src: str, dst: str) -> int:
    """An on-device Copy: a superstep whose exchange is the most bytes a tile receives."""
    source, target = plan.tensor(src), plan.tensor(dst)
    here, there = source.mapping.array(), target.mapping.array()
    moved = there[here != there]
    most = int(np.bincount(moved.ravel()).max()) if moved.size else 0
    return -(-most * target.dtype.numpy.itemsize // plan.arch.exchange_bytes_per_cycle)


def tile_bytes(plan: Plan, flows: Traffic | None = None) -> dict[int, int]:
    """Bytes per tile: tensor elements, vertex state and the largest compute set's exchange
    buffers (what the IPU model checks against the tile's memory)."""
    flows = flows or traffic(plan)
    out: dict[int, int] = {}
    for t in plan.tensors:
        item = t.dtype.numpy.itemsize
        for box, tile in t.mapping.blocks():
            out[tile] = out.get(tile, 0) + item * math.prod(hi - lo for lo, hi in box)
    for low in plan.tasks:
        for inst in low.instances:
            state = sum(
                f.state_bytes(e.box) for f, e in zip(low.edge_fields, inst.edges, strict=True)
            )
            out[inst.tile] = out.get(inst.tile, 0) + state + 4 * len(inst.state)
    for tile in list(out):
        out[tile] += max((b.get(tile, 0) for b in flows.buffers), default=0)
    return out


def tensor_bytes(plan: Plan, tile: int) -> dict[str, int]:
    """Bytes of each tensor on one tile."""
    out: dict[str, int] = {}
    for t in plan.tensors:
        for box, where in t.mapping.blocks():
            if where == tile:
                n = t.dtype.numpy.itemsize * math.prod(hi - lo for lo, hi in box)
                out[t.name] = out.get(t.name, 0) + n
    return out


def report_lines(plan: Plan, cost: Cost) -> list[str]:
    per_tile = tile_bytes(plan)
    tile, most = max(per_tile.items(), key=lambda kv: (kv[1], -kv[0]))
    seconds = cost.total / plan.arch.clock_hz
    lines = [
        f"poplar: {plan.arch.name.upper()} IPU, {plan.tiles_used} of {plan.arch.tiles} tiles "
        f"used, {plan.vertices} vertices in {plan.steps} compute set(s)",
        f"  largest tile: tile {tile}, {most:,} bytes (of {plan.arch.tile_memory:,}: tensors, "
        "vertex state, exchange buffers)",
        f"  modelled cycles: {cost.total:,} (compute {cost.compute:,} / exchange "
        f"{cost.exchange:,} / sync {cost.sync:,}) = {seconds * 1e6:.2f} us at "
        f"{plan.arch.clock_hz / 1e9:.2f} GHz",
    ]
    lines += [f"  task '{t.task.name}': {t.describe}" for t in plan.tasks if t.phase == 0]
    if cost.estimated_trips:
        lines.append("  some loop trip counts depend on data: taken as 1 (an underestimate)")
    return lines
