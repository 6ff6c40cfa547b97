"""The modelled cycles of a plan, by the IPU model's own rules (docs/POPLAR.md, "Cycle model").

A vertex costs VERTEX_OVERHEAD + ACCESS_COST x (element accesses through its fields) worker
instructions; a worker issues one instruction every ``workers`` cycles, so a tile's compute is
``workers`` x the busiest context. Accesses are counted from the kernel body with the loop trip
counts the bound sizes give (a data-dependent trip count is taken as 1: an underestimate the
report names). Exchange is the bytes a tile receives / 4 per cycle, before and after compute;
each compute set costs one sync.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kernelc import ir
from kernelc.affine import evaluate
from kernelc.backends.poplar.lower import Plan
from kernelc.diagnostics import KernelcError

VERTEX_OVERHEAD = 20
ACCESS_COST = 3


@dataclass(frozen=True)
class Cost:
    compute: int
    exchange: int
    sync: int
    estimated_trips: bool  # some trip count was data-dependent

    @property
    def total(self) -> int:
        return self.compute + self.exchange + self.sync


class _Counter:
    def __init__(self, sizes: dict[str, int], fields: set[str]) -> None:
        self.env = dict(sizes)
        self.fields = fields  # names read through scalar fields
        self.guessed = False

    def trips(self, lo: ir.Expr, hi: ir.Expr) -> int:
        try:
            return max(0, evaluate(hi, self.env) - evaluate(lo, self.env))
        except KernelcError:
            self.guessed = True
            return 1

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
                return own + (1 if s.op == "=" else 2)
            case ir.If():
                return own + max(self.block(s.then), self.block(s.orelse))
        return own

    def expr(self, e: ir.Expr) -> float:
        match e:
            case ir.Load():
                return 1 + sum(self.expr(i) for i in e.indices)
            case ir.Name() if e.name in self.fields:
                return 1
            case ir.Reduce():
                return (
                    self.expr(e.lo) + self.expr(e.hi) + self.trips(e.lo, e.hi) * self.expr(e.body)
                )
            case ir.Search():
                return 2 * math.log2(64) + self.expr(e.value)
        return sum(self.expr(c) for c in ir.children(e) if not isinstance(c, ir.Slice))


def vertex_instructions(vertex) -> tuple[int, bool]:
    scalars = {f.param for f, _, s in vertex.fields if s is not None}
    counter = _Counter(vertex.task.size_env, scalars)
    accesses = counter.block(vertex.task.kernel.body)
    return VERTEX_OVERHEAD + ACCESS_COST * int(accesses), counter.guessed


def model(plan: Plan) -> Cost:
    workers = plan.arch.workers
    compute = exchange = 0
    guessed = False
    tile_of = {t.name: t.tile for t in plan.tensors}
    size_of = {t.name: t.dtype.numpy.itemsize for t in plan.tensors}
    for step in range(plan.steps):
        members = [v for v in plan.vertices if v.step == step]
        busiest = 0
        inbound: dict[int, int] = {}
        outbound: dict[int, int] = {}
        for v in members:
            n, g = vertex_instructions(v)
            guessed |= g
            busiest = max(busiest, workers * n)
            for f, region, scalar in v.fields:
                name = region.tensor if region is not None else scalar
                if tile_of[name] == v.tile:
                    continue
                count = 1 if region is None else math.prod(region.view_shape)
                nbytes = count * size_of[name]
                inbound[v.tile] = inbound.get(v.tile, 0) + nbytes
                if f.direction != "Input":
                    outbound[tile_of[name]] = outbound.get(tile_of[name], 0) + nbytes
        compute += busiest
        bpc = plan.arch.exchange_bytes_per_cycle
        exchange += -(-max(inbound.values(), default=0) // bpc)
        exchange += -(-max(outbound.values(), default=0) // bpc)
    return Cost(compute, exchange, plan.steps * plan.arch.sync_cycles, guessed)


def tile_bytes(plan: Plan) -> dict[int, int]:
    """Tensor bytes per tile (the model adds vertex state and exchange buffers)."""
    out: dict[int, int] = {}
    for t in plan.tensors:
        out[t.tile] = out.get(t.tile, 0) + t.nbytes
    return out


def report_lines(plan: Plan, cost: Cost) -> list[str]:
    per_tile = tile_bytes(plan)
    tile, most = max(per_tile.items(), key=lambda kv: (kv[1], -kv[0]))
    seconds = cost.total / plan.arch.clock_hz
    lines = [
        f"poplar: {plan.arch.name.upper()} IPU, {plan.tiles_used} of {plan.arch.tiles} tiles "
        f"used, {len(plan.vertices)} vertices in {plan.steps} compute set(s)",
        f"  largest tile: tile {tile}, {most:,} bytes of tensors (of {plan.arch.tile_memory:,})",
        f"  modelled cycles: {cost.total:,} (compute {cost.compute:,} / exchange "
        f"{cost.exchange:,} / sync {cost.sync:,}) = {seconds * 1e6:.2f} us at "
        f"{plan.arch.clock_hz / 1e9:.2f} GHz",
        "  every task runs as a single-worker scalar vertex (no data-parallel lowering yet)",
    ]
    if cost.estimated_trips:
        lines.append("  some loop trip counts depend on data: taken as 1 (an underestimate)")
    return lines
