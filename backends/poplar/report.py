"""What the build report shows of a poplar artifact: the IPU's tiles coloured by the tasks whose
vertices they run, each tile's modelled memory against its SRAM, the modelled cycles per
compute set and phase (compute, exchange, sync), and the IPU model's totals after a run.

Everything is read from the manifest (``view``), so ``kernelc report DIR`` needs nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernelc.report.data import SIMULATED, Cell, Cycles, Placement, Plan, Simulated, View

COLUMNS = 64  # tiles per row of the picture (1,472 tiles: 23 rows)


def view(manifest: Mapping[str, Any]) -> View:
    tasks = manifest["tasks"]
    policy = manifest["placement"]
    per_tile = manifest["memory"]["per_tile_bytes"]
    runs: dict[int, list[str]] = {}
    for t in tasks:
        for tile in t["tiles"]:
            runs.setdefault(tile, []).append(t["task"])
    held: dict[int, list[str]] = {}
    for name, t in manifest["tensors"].items():
        for tile in t["tiles"]:
            held.setdefault(tile, []).append(name)
    cells = tuple(
        Cell(
            tile % COLUMNS,
            tile // COLUMNS,
            f"tile {tile}",
            tuple(runs.get(tile, ())),
            per_tile[tile],
            detail="tensors: " + ", ".join(held[tile]) if tile in held else "",
        )
        for tile in range(len(per_tile))
    )
    placement = Placement(
        title=f"{len(per_tile):,} tiles ({manifest['tiles_used']:,} used)",
        unit="tile",
        columns=COLUMNS,
        rows=-(-len(per_tile) // COLUMNS),
        processors=len(per_tile),
        limit_bytes=manifest["memory"]["limit_bytes"],
        cells=cells,
        note="each cell is a tile; tiles in index order, 64 to a row (not the chip's floorplan)",
    )
    cycles = tuple(
        Cycles(
            f"compute set {number}",
            tuple(t["task"] for t in tasks if t["compute_set"] == number),
            tuple((phase, cycles) for phase, cycles in phases),
        )
        for number, phases in enumerate(manifest["modelled_compute_sets"])
    )
    return View(
        arch=f"{manifest['arch'].upper()} IPU",
        placement=placement,
        cycles=cycles,
        total_cycles=manifest["modelled_cycles"]["total"],
        clock_hz=manifest["clock_hz"],
        policy=(
            f"--tiles {manifest['tiles']}: each task in blocks over the tiles given"
            if policy["policy"] == "given"
            else f"the tile count with the fewest modelled cycles among the "
            f"{policy['tried']} that fit (each task in blocks over at most that many tiles)"
        ),
        chosen=_plan(policy["chosen"], max(per_tile)),
        runner_up=_plan(policy["runner_up"], None),
        notes=(
            "Tile memory: tensor elements mapped there, vertex state and the largest compute "
            "set's exchange buffers.",
            "Host transfers (stream copies) are not modelled.",
            *(
                f"task {t['task']}: {t['vertices']:,} vertices of {t['class']}; {t['lowering']}"
                for t in tasks
            ),
        ),
    )


def _plan(doc: Mapping[str, Any] | None, memory: int | None) -> Plan | None:
    """A plan weighed; the memory of the fullest tile is known for the chosen one only."""
    if doc is None:
        return None
    return Plan(f"{doc['tiles']:,} tiles", doc["modelled_cycles"], memory)


def simulated(manifest: Mapping[str, Any], stats: Mapping[str, Any]) -> Simulated:
    """The IPU model's cycles per compute set (the emitted ``stepN``) by phase."""
    tasks = manifest["tasks"]
    pieces = []
    for name, (compute, exchange, sync) in stats["simulated_compute_sets"].items():
        number = int(name.removeprefix("step"))
        pieces.append(
            Cycles(
                f"compute set {number}",
                tuple(t["task"] for t in tasks if t["compute_set"] == number),
                (("compute", compute), ("exchange", exchange), ("sync", sync)),
                SIMULATED,
            )
        )
    return Simulated(
        "kernelc's IPU model",
        tuple(pieces),
        (
            ("compute", stats["simulated_compute_cycles"]),
            ("exchange", stats["simulated_exchange_cycles"]),
            ("sync", stats["simulated_sync_cycles"]),
        ),
    )
