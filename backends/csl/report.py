"""What the build report shows of a csl artifact: the PE rectangle coloured by task, the per-PE
memory plan, the modelled cycles per launch and phase, and the grids the policy weighed.

``places`` writes into the manifest which PEs each launched task runs on; ``view`` reads the
manifest back (so ``kernelc report DIR`` needs nothing else) and ``simulated`` turns the fabric
simulator's statistics of a run into the report's simulated figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernelc.backends.csl.lowered import Lowered
from kernelc.backends.csl.tasks import StepCode
from kernelc.graph import TaskGraph
from kernelc.report.data import SIMULATED, Cell, Cycles, Placement, Plan, Simulated, View

MAX_CELLS = 48  # per axis: larger rectangles are drawn in blocks of PEs


def places(graph: TaskGraph, low: Lowered) -> dict[str, dict[str, list[list[int]]]]:
    """Per launched function, per task: the PE rectangles ``[x, y, w, h]`` it runs on.

    A data-parallel task runs on every PE; the k-th task of a scalar step on PE slot k (row-
    major, wrapping when a step has more tasks than the grid has PEs)."""
    whole = [0, 0, low.width, low.height]
    pes = low.width * low.height
    out: dict[str, dict[str, list[list[int]]]] = {}
    for index, code in enumerate(low.codes):
        if isinstance(code, StepCode):
            runs: dict[str, list[list[int]]] = {}
            for k, name in enumerate(code.tasks):
                where = k % pes
                runs.setdefault(name, []).append([where % low.width, where // low.width, 1, 1])
            out[code.launch] = runs
        else:
            out[code.launch] = {graph.tasks[index].name: [whole]}
    return out


def view(manifest: Mapping[str, Any]) -> View:
    width, height = manifest["grid"]
    memory = manifest["memory"]
    launches = manifest["launch_tasks"]
    batches = manifest.get("batches", 1)
    cycles = tuple(
        Cycles(
            launch,
            tuple(launches[launch]),
            tuple((phase, cycles) for phase, cycles in manifest["modelled_phases"][launch]),
            repeat=batches,
        )
        for launch in manifest["launches"]
    )
    placement = manifest["placement"]

    def plan(doc: Mapping[str, Any] | None) -> Plan | None:
        if doc is None:
            return None
        w, h = doc["grid"]
        return Plan(f"{w} x {h} PEs", doc["modelled_cycles"], doc["per_pe_bytes"])

    why = {
        "auto": "--grid auto: the fewest modelled cycles, fewer PEs when within 5 %",
        "min": "--grid min: the smallest grid whose memory plan fits",
        "given": "--grid WxH: the grid given",
    }[placement["policy"]]
    arrays = ", ".join(f"{name} {n:,} B" for name, n in memory["arrays"].items())
    notes = [
        "Every PE holds the same arrays (CSL arrays are sized for the largest block), so the "
        f"memory plan is the same on each PE: {arrays}; data {memory['data_bytes']:,} B + "
        f"modelled code {memory['modelled_code_bytes']:,} B.",
        "Modelled cycles are the busiest PE's, kernel only: host transfers are not modelled.",
    ]
    if batches > 1:
        notes.append(f"Items go through the program in {batches:,} batches: phases are per batch.")
    return View(
        arch=manifest["arch"].upper(),
        placement=_rectangle(width, height, launches, memory),
        cycles=cycles,
        total_cycles=manifest["modelled_cycles"],
        clock_hz=manifest["clock_hz"],
        policy=why,
        chosen=plan(placement["chosen"]),
        runner_up=plan(placement["runner_up"]),
        notes=tuple(notes),
    )


def _rectangle(
    width: int,
    height: int,
    launches: Mapping[str, Mapping[str, list[list[int]]]],
    memory: Mapping[str, Any],
) -> Placement:
    bx, by = -(-width // MAX_CELLS), -(-height // MAX_CELLS)
    cells = []
    for row, y0 in enumerate(range(0, height, by)):
        for column, x0 in enumerate(range(0, width, bx)):
            x1, y1 = min(x0 + bx, width), min(y0 + by, height)
            tasks = tuple(
                task
                for runs in launches.values()
                for task, rects in runs.items()
                if any(x < x1 and x0 < x + w and y < y1 and y0 < y + h for x, y, w, h in rects)
            )
            label = (
                f"PE ({x0}, {y0})"
                if (x1 - x0, y1 - y0) == (1, 1)
                else f"PEs ({x0}..{x1 - 1}, {y0}..{y1 - 1})"
            )
            cells.append(
                Cell(
                    column,
                    row,
                    label,
                    tuple(dict.fromkeys(tasks)),
                    memory["per_pe_bytes"],
                    (x1 - x0) * (y1 - y0),
                )
            )
    note = "" if (bx, by) == (1, 1) else f"each cell is a block of up to {bx} x {by} PEs"
    return Placement(
        title=f"PE rectangle {width} x {height}",
        unit="PE",
        columns=-(-width // bx),
        rows=-(-height // by),
        processors=width * height,
        limit_bytes=memory["limit_bytes"],
        cells=tuple(cells),
        note=note,
    )


def simulated(manifest: Mapping[str, Any], stats: Mapping[str, Any]) -> Simulated:
    """The fabric simulator's cycles per launched function (summed over batches) and in all."""
    launches = manifest["launch_tasks"]
    per_launch = stats["simulated_launch_cycles"]
    return Simulated(
        "kernelc's fabric simulator",
        tuple(
            Cycles(name, tuple(launches[name]), (("kernel", per_launch[name]),), SIMULATED)
            for name in manifest["launches"]
            if name in per_launch
        ),
        (
            ("kernel", stats["simulated_kernel_cycles"]),
            ("host transfer", stats["simulated_memcpy_cycles"]),
        ),
        "per launch the simulator counts the launch's cycles, not its phases",
        ("host transfer",),
    )
