"""The cycle model of a program's static schedule, as the Groq compiler fixes it at build time.

Scopes start at their ``time`` (relative to the enclosing scope) or, with ``time=None``, when
their buffered predecessors end. Inside a scope, nodes are list-scheduled in program order: a
node starts when its inputs arrive and a unit of its kind is free, streams ``vectors`` cycles
(one 320-lane vector per cycle per stream; an MXM matmul streams its warm-up, weight installs
and activation rows) and its last vector leaves ``latency`` cycles later. A consumer of a stream
sees the first vector ``latency`` cycles after the producer starts (pipelining); a consumer of a
memory tensor waits until it is written and then pays a read and the hops to the unit. Units:
16 VXM ALUs, 2 SXM permutors, the MXM plane sets (one matmul at a time each); memory slices
are not shared between tensors, so reads and writes never wait for one another.
"""

from __future__ import annotations

from collections import defaultdict

from . import chip
from .errors import fail

UNITS = {"vxm": chip.VXM_ALUS, "sxm": chip.SXM_PERMUTORS}


def schedule(program) -> dict:
    """``{"cycles", "units": busy cycles per unit kind, "scopes": {name: [start, end]}}``."""
    ready: dict[int, int] = {}  # tensor id -> cycle its first vector can reach a consumer
    written: dict[int, int] = {}  # memory tensor id -> cycle it is complete in memory
    free: dict[str, list[int]] = defaultdict(list)
    busy: dict[str, int] = defaultdict(int)
    resolved: set[int] = set()
    for t in program.tensors:
        if getattr(t, "kind", None) in ("input", "constant"):
            written[t.id] = 0

    def start_of(scope) -> int:
        if id(scope) not in resolved:
            if scope.time is not None:
                parent = start_of(scope.parent) if scope.parent is not None else 0
                scope.start = parent + scope.time
            else:
                scope.start = max(p.end for p in scope.predecessors)
            scope.end = scope.start
            resolved.add(id(scope))
        return scope.start

    origin: dict[int, object] = {}  # memory tensor id -> the scope that wrote it (latest part)
    for node in program.nodes:
        begin = start_of(node.scope)
        arrive = begin
        for t in node.inputs:
            writer = origin.get(t.id)
            if node.unit != "view" and writer not in (None, node.scope) and written[t.id] > begin:
                raise fail(
                    f"scope '{node.scope.name}' starts at cycle {begin} and reads tensor "
                    f"'{t.name}', which scope '{writer.name}' writes until cycle {written[t.id]}: "
                    "order the scopes (predecessors=[...])",
                    node.where,
                )
            if t.id in written:
                hop = 0 if node.unit in ("view", "mem") else chip.STREAM_HOP_LATENCY
                arrive = max(
                    arrive, written[t.id] + (0 if node.unit == "view" else chip.MEM_LATENCY) + hop
                )
            else:
                arrive = max(arrive, ready[t.id])
        kind = node.unit.split(":")[0]
        start = arrive
        if node.unit in UNITS or kind == "mxm":
            pool = free[node.unit]
            count = UNITS.get(node.unit, 1)
            if len(pool) < count:
                pool.extend([0] * (count - len(pool)))
            slot = min(range(count), key=lambda k: pool[k])
            start = max(start, pool[slot])
            pool[slot] = start + node.vectors
        end = start + node.vectors + node.latency
        busy[kind] += node.vectors
        for out in node.outputs:
            if out.is_memory_tensor():
                if node.unit == "view":
                    written[out.id] = arrive
                    parts = [t for t in node.inputs if t.id in origin]
                    if parts:
                        origin[out.id] = origin[max(parts, key=lambda t: written[t.id]).id]
                else:
                    written[out.id] = end
                    origin[out.id] = node.scope
            else:
                ready[out.id] = start + node.latency
        scope = node.scope
        while scope is not None:
            scope.end = max(scope.end, end)
            scope = scope.parent
    total = max((s.end for s in program.scopes), default=0)
    return {
        "cycles": total,
        "units": {k: busy[k] for k in sorted(busy) if k != "view"},
        "scopes": {s.name: [s.start, s.end] for s in program.scopes[1:]},
    }
