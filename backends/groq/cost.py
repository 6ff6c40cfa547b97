"""The cost model: modelled cycles per stage and per unit, from the lowered program alone.

A closed form of the machine the emulator schedules (runtime/tsp/schedule.py), per stage: the
busiest unit's streaming time (VXM ops share 16 ALUs, shifts 2 permutors, matmuls on one plane
set run one after another: warm-up, then per 320 x 320 weight block an install and the
activation rows) plus the pipeline's depth (memory read and hops, the SXM, one ALU per level of
the expression, the MXM and its accumulation, the write). Stages start when the stages they
depend on end. Time is cycles at the 900 MHz clock; host I/O is groqflow's estimate (24 GB/s
and 10 us each way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kernelc.backends.groq import machine
from kernelc.backends.groq.model import GroqProgram, Stage

chip = machine.chip


@dataclass(frozen=True)
class Cost:
    cycles: int
    stages: dict[str, int]  # stage -> modelled end cycle
    starts: dict[str, int]  # stage -> modelled start cycle
    phases: dict[str, dict[str, int]]  # stage -> its cycles: mxm, streaming, pipeline depth
    units: dict[str, int]  # unit kind -> busy cycles
    host_bytes: int

    @property
    def seconds(self) -> float:
        return self.cycles / machine.CLOCK_HZ

    @property
    def host_seconds(self) -> float:
        return 2 * chip.HOST_LATENCY_S + self.host_bytes / chip.HOST_BYTES_PER_S


def _matmul_cycles(n: int, k: int, m: int, dtype: str) -> int:
    blocks = math.ceil(k / machine.MXM_BLOCK) * math.ceil(m / machine.MXM_BLOCK)
    install = chip.MXM_INSTALL_FP16 if dtype == "float16" else chip.MXM_INSTALL_INT8
    return chip.MXM_WARMUP + blocks * (install + n * chip.MXM_ROW_CYCLES[dtype])


def stage_cycles(st: Stage) -> tuple[dict[str, int], dict[str, int]]:
    """A stage's cycles by phase (MXM products, streaming, pipeline depth) and each unit's
    busy cycles."""
    c = st.cost
    vxm = math.ceil(c.vxm_ops / chip.VXM_ALUS) * c.vectors if c.vxm_ops else 0
    sxm_vectors = c.sxm_rows or c.vectors
    sxm = math.ceil(c.sxm_ops / chip.SXM_PERMUTORS) * sxm_vectors if c.sxm_ops else 0
    planes: dict[str, int] = {}
    for p, n, k, m, dtype in c.matmuls:
        planes[p] = planes.get(p, 0) + _matmul_cycles(n, k, m, dtype)
    mxm = max(planes.values(), default=0)
    depth = chip.MEM_LATENCY + chip.STREAM_HOP_LATENCY + c.depth * chip.VXM_LATENCY
    depth += chip.MEM_WRITE_LATENCY
    if c.sxm_ops and not c.chained:
        depth += chip.SXM_LATENCY
    if c.matmuls:
        passes = max(math.ceil(k / machine.MXM_BLOCK) for _, _, k, _, _ in c.matmuls)
        depth += chip.MXM_LATENCY + (chip.MXM_ACCUMULATE_LATENCY if passes > 1 else 0)
        depth += chip.MEM_LATENCY + chip.STREAM_HOP_LATENCY  # reading the products back
    # an operand's prologue streams through the VXM and is written before the MXM reads it
    fixed = chip.MEM_LATENCY + chip.STREAM_HOP_LATENCY + chip.MEM_WRITE_LATENCY
    before = max(
        (
            fixed + math.ceil(ops / chip.VXM_ALUS) * vectors + levels * chip.VXM_LATENCY
            for ops, vectors, levels in c.prologue
        ),
        default=0,
    )
    units = {
        "vxm": c.vxm_ops * c.vectors + sum(ops * vectors for ops, vectors, _ in c.prologue),
        "sxm": c.sxm_ops * sxm_vectors,
        "mxm": sum(planes.values()),
    }
    if c.span:  # ops streaming fewer rows down a chain (a column fold's halving)
        return {"mxm": 0, "stream": max(vxm, sxm, c.span), "pipeline": fixed}, units
    if c.chained:  # a chain (of shifts, of search rounds): its latency, or the units' throughput
        stream = max(vxm, sxm, c.vectors + depth - fixed)
        return {"mxm": 0, "stream": stream, "pipeline": fixed}, units
    # shifts across inner splits: a row is whole once its last split has moved, so the work on
    # whole rows streams after the permutors' last pass has started
    stream = max(vxm, sxm + c.vectors - c.sxm_rows if c.sxm_rows else sxm, c.vectors)
    phases = {"mxm": mxm, "stream": stream, "pipeline": depth}
    return ({"prologue": before} if before else {}) | phases, units


def model(prog: GroqProgram) -> Cost:
    ends: dict[str, int] = {}
    starts: dict[str, int] = {}
    phases: dict[str, dict[str, int]] = {}
    units = {"mem": 0, "mxm": 0, "sxm": 0, "vxm": 0}
    for st in prog.stages:
        start = max((ends[p] for p in st.predecessors), default=0)
        phases[st.name], used = stage_cycles(st)
        starts[st.name] = start
        ends[st.name] = start + sum(phases[st.name].values())
        for k, v in used.items():
            units[k] += v
        units["mem"] += st.cost.writes
    host = sum(
        math.prod(d.shape) * machine.DTYPE_BYTES[d.dtype]
        for d in prog.declared
        if d.host != "constant"
    ) + sum(math.prod(o.shape) * 4 for o in prog.outputs)
    return Cost(max(ends.values(), default=0), ends, starts, phases, units, host)


def report_lines(prog: GroqProgram, cost: Cost) -> list[str]:
    used = ", ".join(
        f"{h} {n} of {len(machine.usable_slices(h))}" for h, n in sorted(prog.slices.items())
    )
    per_unit = ", ".join(f"{k} {v:,}" for k, v in cost.units.items())
    lines = [
        f"groq: {machine.CHIP}, precision {prog.precision}, {len(prog.stages)} resource scope(s)",
        f"memory: MEM slices used {used} (slice-exclusive, {machine.SLICE_BYTES:,} bytes each)",
        f"modelled busy cycles per unit: {per_unit}",
    ]
    for st in prog.stages:
        lines.append(f"  scope {st.name}: ends at cycle {cost.stages[st.name]:,} (modelled)")
    lines.append(
        f"modelled cycles: {cost.cycles:,} = {cost.seconds * 1e6:.3f} us at "
        f"{machine.CLOCK_HZ / 1e6:.0f} MHz (+ host I/O {cost.host_seconds * 1e6:.1f} us, "
        "groqflow's estimate)"
    )
    return lines
