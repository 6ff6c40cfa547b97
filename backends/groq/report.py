"""What the build report shows of a groq artifact: the chip's floorplan west to east (MXM, SXM,
the 44 MEM slices of each hemisphere, the VXM between them) with each slice coloured by the
tasks that use the tensor it holds and its fill against the slice's 2.5 MiB, the modelled cycles
per resource scope and phase, and the emulator's schedule after a run.

``memory_plan`` writes the slice of every memory tensor into the manifest (the emulator's
slice-exclusive allocation in program order, as the Groq compiler does for ``-1`` layouts);
``view`` reads it back, so ``kernelc report DIR`` needs nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kernelc.backends.groq import machine
from kernelc.backends.groq.cost import Cost
from kernelc.backends.groq.model import GroqProgram
from kernelc.report.data import SIMULATED, Cell, Cycles, Placement, Simulated, View
from kernelc.runtime.tsp.memory import allocate, parse_layout

# what creates a memory tensor in a scope: a write, or a buffered MXM product
CREATE = re.compile(r'\.write\(name="(\w+)"|self\.(mm_\w+)\(')


def memory_plan(prog: GroqProgram) -> list[dict[str, Any]]:
    """Every memory tensor in program order (module-level declarations, then what each scope
    writes and its buffered MXM products) with its slices, its bytes and the scopes that use
    it."""
    products = {m.attr: m.name for m in prog.matmuls}
    order = [d.name for d in prog.declared]
    order += [
        name or products[attr]
        for st in prog.stages
        for line in st.lines
        for name, attr in CREATE.findall(line)
    ]
    placed = allocate([(name, parse_layout(prog.memory[name][0]), name) for name in order])
    out = []
    for name in order:
        layout, nbytes, per_slice = prog.memory[name]
        hemisphere, slices = placed[name]
        use = re.compile(rf"\b{name}_mt\b")
        out.append(
            {
                "name": name,
                "layout": layout,
                "bytes": nbytes,
                "bytes_per_slice": per_slice,
                "hemisphere": hemisphere,
                "slices": list(slices),
                "tasks": [st.name for st in prog.stages if any(use.search(x) for x in st.lines)],
            }
        )
    return out


def stage_figures(prog: GroqProgram, cost: Cost) -> list[dict[str, Any]]:
    """Per resource scope in program order: when it starts and ends, its phases and the units
    it uses."""
    out = []
    for st in prog.stages:
        units = []
        planes = {int(p) for mm in st.cost.matmuls for p in mm[0].split(",")}
        units += [f"MXM {machine.chip.MXM_PLANES[p]}" for p in sorted(planes)]
        units += ["SXM"] if st.cost.sxm_ops else []
        units += ["VXM"] if st.cost.vxm_ops or st.cost.vectors else []
        out.append(
            {
                "name": st.name,
                "start": cost.starts[st.name],
                "end": cost.stages[st.name],
                "phases": list(cost.phases[st.name].items()),
                "units": sorted(set(units)),
            }
        )
    return out


def view(manifest: Mapping[str, Any]) -> View:
    stages = manifest["modelled_stages"]
    memory = manifest["memory"]
    slice_bytes = memory["slice_bytes"]
    holder = {(t["hemisphere"], s): t for t in memory["tensors"] for s in t["slices"]}
    reserved = {h: set(r) for h, r in memory["reserved_slices"].items()}
    count = machine.chip.SLICES_PER_HEMISPHERE

    def unit(name: str, what: str) -> Cell:
        tasks = tuple(f["name"] for f in stages if any(u.startswith(name) for u in f["units"]))
        return Cell(0, 0, what, tasks, None)

    def mem(h: str, s: int) -> Cell:
        t = holder.get((h, s))
        if t is None:
            note = "reserved" if s in reserved[h] else "free"
            return Cell(0, 0, f"MEM {h} slice {s} ({note})", (), 0)
        return Cell(
            0,
            0,
            f"MEM {h} slice {s}",
            tuple(t["tasks"]),
            t["bytes_per_slice"],
            detail=f"tensor {t['name']} ({t['bytes']:,} B over {len(t['slices'])} slices)",
        )

    west = [unit("MXM W", "MXM West (planes 0-1)"), unit("SXM", "SXM (2 permutors in all)")]
    west += [mem("W", s) for s in reversed(range(count))]
    east = [mem("E", s) for s in range(count)]
    east += [unit("SXM", "SXM (2 permutors in all)"), unit("MXM E", "MXM East (planes 2-3)")]
    row = [*west, unit("VXM", "VXM (16 ALUs per lane)"), *east]
    cells = tuple(
        Cell(i, 0, c.label, c.tasks, c.memory_bytes, 1, c.detail) for i, c in enumerate(row)
    )
    n = len(west)
    labels = ((2, n - 1, "MEM West: slices 43 .. 0"), (n, n, "VXM"))
    labels += ((n + 1, n + count, "MEM East: slices 0 .. 43"),)
    placement = Placement(
        title=f"GroqChip floorplan, west to east ({len(holder)} MEM slices used)",
        unit="MEM slice",
        columns=len(row),
        rows=1,
        processors=2 * count,
        limit_bytes=slice_bytes,
        cells=cells,
        note="each cell is a MEM slice, except the two at each end (the MXM and the SXM) and "
        "the one in the middle (the VXM); each tensor has MEM slices of its own "
        "(slice-exclusive), reserved slices stay free",
        column_labels=labels,
    )
    cycles = tuple(
        Cycles(f["name"], (f["name"],), tuple((p, c) for p, c in f["phases"])) for f in stages
    )
    host = manifest["host_io"]
    return View(
        arch=manifest["arch"],
        placement=placement,
        cycles=cycles,
        total_cycles=manifest["modelled_cycles"],
        clock_hz=manifest["clock_hz"],
        policy=f"one resource scope per task, matrix products in {manifest['precision']}",
        notes=(
            "Scopes run after the scopes they depend on: the program's cycles are the latest "
            "end, not the sum of the scopes.",
            f"Host transfer: {host['bytes']:,} bytes, about {host['seconds'] * 1e6:.1f} us "
            "(groqflow's estimate, not in the modelled cycles).",
            *(
                f"scope {f['name']}: modelled cycles {f['start']:,} .. {f['end']:,} on "
                + ", ".join(f["units"])
                for f in stages
            ),
        ),
    )


def simulated(manifest: Mapping[str, Any], stats: Mapping[str, Any]) -> Simulated:
    """The emulator's schedule: each scope's cycles (end - start) and the program's."""
    scopes = stats["emulated_scopes"]
    return Simulated(
        "kernelc's tsp emulator (its static schedule)",
        tuple(
            Cycles(name, (name,), (("scope", end - start),), SIMULATED)
            for name, (start, end) in scopes.items()
        ),
        (("program", stats["emulated_cycles"]),),
        "per scope the emulator's schedule gives its span (end - start), not its phases",
    )
