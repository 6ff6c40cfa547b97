"""Modelled cycles of a lowered program (the figure ``kernelc build`` prints).

The model adds, per launched task on the busiest PE: the launch dispatch across the rectangle,
the halo exchange stages (the longer of issuing the moves and the wavelets on the links), and
the DSD operations (setup plus cycles per element from machine.py, times the number of passes,
per guarded piece of a map on the PE where they add up to most); matrix products
add their broadcast steps and reductions their chain along the row. It uses the same per-
operation costs as the fabric simulator, so the two agree closely; tests/test_csl_cost.py pins
the bounds on the examples (MODEL_BOUND, and LOOKUP_BOUND for lookups: their scalar code is
counted statement by statement with the simulator's own charges (kernelc/csl/charges.py), but
how often it runs depends on the data, which the model takes from assumptions: see
lookup.lookup_cycles; scalar task steps take half the width of the table a data-dependent loop
walks, SCALAR_BOUND, and their host round trips are not modelled).
"""

from __future__ import annotations

from dataclasses import dataclass

from kernelc.backends.csl.lowered import Lowered
from kernelc.csl import machine

MODEL_BOUND = 0.10  # |model - simulated| / simulated for maps, stencils and matrix products
REDUCTION_BOUND = 0.05  # the same for reductions (tests/test_csl_reduction.py): element
# functions are counted from the emitted code, with the simulator's charges
LOOKUP_BOUND = 0.25  # the same for lookups, whose trip counts depend on the data
SCALAR_BOUND = 0.5  # the same for scalar tasks, whose trips are taken as half a table's width


@dataclass(frozen=True)
class TaskCost:
    name: str
    cycles: int  # over all batches
    parts: dict[str, int]  # of one batch
    batches: int = 1


@dataclass(frozen=True)
class Cost:
    tasks: tuple[TaskCost, ...]

    @property
    def cycles(self) -> int:
        return sum(t.cycles for t in self.tasks)


def ops_cycles(ops: list[tuple[str, int]], elements: int) -> int:
    return sum(machine.DSD_SETUP_CYCLES + per * elements for _op, per in ops)


def model(low: Lowered) -> Cost:
    launch = machine.LAUNCH_CYCLES + (low.width - 1) + (low.height - 1)
    batches = low.batches.count if low.batches is not None else 1
    tasks = []
    for lowered in low.tasks:
        parts = {"launch": launch, **lowered.lowering.cycles(lowered.code, low)}
        if low.coords_cycles:
            parts["coordinates"] = low.coords_cycles
        tasks.append(TaskCost(lowered.code.launch, sum(parts.values()) * batches, parts, batches))
    return Cost(tuple(tasks))


def report_lines(low: Lowered, cost: Cost) -> list[str]:
    seconds = machine.seconds(cost.cycles, low.arch)
    lines = [
        f"csl: {low.arch.name} grid {low.width} x {low.height} PEs "
        f"(fabric {machine.fabric_dims(low.width, low.height)[0]} x "
        f"{machine.fabric_dims(low.width, low.height)[1]} with memcpy)",
        f"csl: per-PE memory {low.memory_bytes:,} of {low.arch.pe_memory:,} bytes "
        f"(data {low.data_bytes:,} + modelled code {low.code_bytes:,})",
        f"csl: modelled {cost.cycles:,} cycles ({seconds * 1e6:.1f} us at "
        f"{low.arch.clock_hz / 1e6:.0f} MHz), kernel only, host transfers excluded",
    ]
    for t in cost.tasks:
        detail = ", ".join(f"{k} {v:,}" for k, v in t.parts.items())
        if t.batches == 1:
            lines.append(f"csl:   {t.name}: modelled {t.cycles:,} cycles ({detail})")
        else:
            lines.append(
                f"csl:   {t.name}: modelled {t.cycles // t.batches:,} cycles per batch ({detail}) "
                f"x {t.batches:,} batches = {t.cycles:,}"
            )
    if low.batches is not None:
        lines.extend(_transfer_lines(low))
    return lines


def _transfer_lines(low: Lowered) -> list[str]:
    """The host transfers of a batched program, which the modelled cycles exclude."""
    bt = low.batches

    def moved(transfers) -> tuple[int, int]:
        sizes = [
            (t.tensor in bt.items, t.layout.local_bytes * t.rect[2] * t.rect[3]) for t in transfers
        ]
        return sum(n for b, n in sizes if not b), sum(n for b, n in sizes if b)

    once_in, batch_in = moved(low.inputs)
    _, batch_out = moved(low.outputs)
    return [
        f"csl: {bt.count:,} batches of {bt.size:,} items (items {bt.first:,} .. {bt.end:,}); "
        "host transfers (not modelled above):",
        f"csl:   resident inputs sent once: {once_in:,} bytes",
        f"csl:   per batch: {batch_in:,} bytes of item inputs in, {batch_out:,} bytes of "
        f"outputs out ({bt.count * (batch_in + batch_out):,} bytes in all)",
    ]
