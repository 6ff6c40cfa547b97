"""Figures of the Cerebras wafer-scale engines, shared by the planner, cost model and simulator.

Sources are the ones collected in shared/reference/csl.md (section 12). Numbers marked
"modelled" are our assumptions where no source states a figure; the cost model and the fabric
simulator use the same table, so every cycle count they print is a modelled figure, never a
measurement.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from kernelc.diagnostics import KernelcError, Span

KIB = 1024


@dataclass(frozen=True)
class Arch:
    name: str
    pe_memory: int  # bytes of SRAM per PE, code and data together
    fabric: tuple[int, int]  # SDK fabric of one CS system (columns, rows)
    max_program: tuple[int, int]  # largest program rectangle with memcpy
    clock_hz: float  # clock assumed by the SDK examples' timing code
    routable_colors: int
    reserved_ids: frozenset[int]  # colors / task IDs that memcpy and the runtime hold
    memcpy_queues: frozenset[int]
    queue_ids: int  # input queues, output queues (and WSE-3 microthreads) per PE: 0 .. n-1
    local_task_ids: tuple[int, int]  # inclusive range usable for local tasks
    io_channels: int  # most --channels the SDK accepts


WSE2 = Arch(
    name="wse2",
    pe_memory=48 * KIB,
    fabric=(757, 996),
    max_program=(750, 994),
    clock_hz=850e6,
    routable_colors=24,
    reserved_ids=frozenset({21, 22, 23, 27, 28, 29, 30, 31}),
    memcpy_queues=frozenset({0}),
    queue_ids=8,
    local_task_ids=(8, 30),
    io_channels=16,
)

# WSE-3: WSE-2 with a second memcpy queue. It keeps 48 KB per PE; the program rectangle is kept
# at the CS-2 figure because no source gives the CS-3 SDK fabric size (csl.md section 12 lists
# only ~900,000 PEs).
WSE3 = replace(WSE2, name="wse3", memcpy_queues=frozenset({0, 1}))

ARCHS = {"wse2": WSE2, "wse3": WSE3}

# ---------------------------------------------------------------- memcpy geometry (csl.md 2.3)
MEMCPY_WEST_COLUMNS = 3  # demux adaptor, demux, cmd fan
MEMCPY_EAST_COLUMNS = 2  # mux, mux adaptor
HALO = 1


def fabric_offsets() -> tuple[int, int]:
    """``--fabric-offsets`` for a program with memcpy and no I/O buffer columns."""
    return (HALO + MEMCPY_WEST_COLUMNS, HALO)


def fabric_dims(width: int, height: int) -> tuple[int, int]:
    """The smallest ``--fabric-dims`` for a ``width`` x ``height`` program with memcpy."""
    x0, y0 = fabric_offsets()
    return (x0 + width + MEMCPY_EAST_COLUMNS + HALO, y0 + height + HALO)


# --------------------------------------------------------------------- costs (all modelled)
DSD_SETUP_CYCLES = 4  # modelled: issuing a DSD op (DSR loads, options) before the first element
CYCLES_PER_ELEMENT = {  # modelled: one f32 element per cycle through the SRAM ports
    "f32": 1,
    "f16": 1,
}
MAP_CALL_CYCLES = 2  # modelled: per-element overhead of @map around its function body
MATH_CYCLES = {  # modelled: per-element cost of <math> routines (software on the PE)
    "sqrt_f32": 12,
    "exp_f32": 20,
    "log_f32": 20,
}
TASK_SWITCH_CYCLES = 3  # modelled: picking and entering a task
HOP_CYCLES = 1  # one wavelet advances one link per cycle (csl.md section 12)
# modelled: wavelets of one color a PE holds before anything reads them (its input queue and
# the router buffers in front of it); a sender stalls beyond. No source gives the depth of a
# queue; the SDK's pipeline-01 README says its single-PE stream stalls beyond 14 wavelets.
INPUT_QUEUE_WAVELETS = 14
LAUNCH_CYCLES = 16  # modelled: memcpy RPC dispatch before a launched function starts
HOST_CYCLES_PER_WAVELET = 4  # modelled: ~7 Gb/s per I/O channel at 850 MHz is ~4 cycles/word

# Code allowance: the SDK does not state how much of the 48 KB the memcpy runtime and a PE
# program's code take, so the plan reserves this much (modelled) and the simulator charges the
# same: a fixed part for memcpy, task tables and start-up code, plus a part per statement.
CODE_BASE_BYTES = 6 * KIB
CODE_BYTES_PER_STATEMENT = 12


def arch(name: str | None, span: Span | None = None) -> Arch:
    key = (name or "wse2").lower()
    if key not in ARCHS:
        raise KernelcError(
            f"unknown CSL architecture '{name}'; choose wse2 or wse3",
            span or Span("<command line>", 1, 1),
        )
    return ARCHS[key]


def seconds(cycles: float, a: Arch = WSE2) -> float:
    return cycles / a.clock_hz


def code_statements(decls: tuple) -> int:
    """Statements and declarations in a CSL file: the basis of the modelled code allowance."""
    from kernelc.csl import model as m

    count = 0
    stack = list(decls)
    while stack:
        node = stack.pop()
        if isinstance(node, m.Comment):
            continue
        count += 1
        for attr in ("body", "then", "orelse"):
            stack.extend(getattr(node, attr, ()) or ())
    return count


def code_bytes(decls: tuple) -> int:
    """Modelled bytes of code (with the memcpy runtime) that a PE program takes."""
    return CODE_BASE_BYTES + CODE_BYTES_PER_STATEMENT * code_statements(decls)


def place_in_line(index: int, count: int) -> str:
    """Where a PE lies along a row or column: what an edge-aware library (memcpy's and
    collectives_2d's params as the simulator models them) needs to know, so the backend's role
    count and the simulator agree."""
    if count == 1:
        return "only"
    return "first" if index == 0 else "last" if index == count - 1 else "inner"
