"""The cycles chart: per scheduled piece (a launch, a compute set, a resource scope) a bar of
its modelled cycles stacked by phase and, after a run, a bar of its simulated cycles beside
it; when the simulator counts only the whole run, one pair of bars for the totals."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from kernelc.report import svg
from kernelc.report.data import Cycles, Simulated, View

PHASE_COLOURS = ("#4e79a7", "#f28e2b", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f")
SIMULATED_COLOUR = "#374151"
LABEL_W = 170.0
BAR_W = 470.0
BAR_H = 16.0
ROW_GAP = 12.0


def phase_colours(cycles: tuple[Cycles, ...]) -> dict[str, str]:
    """A colour per phase name, in order of first appearance (deterministic)."""
    names: dict[str, None] = {}
    for c in cycles:
        names.update(dict.fromkeys(name for name, _ in c.phases))
    return {n: PHASE_COLOURS[k % len(PHASE_COLOURS)] for k, n in enumerate(names)}


def cycles_svg(view: View, simulated: Simulated | None) -> ET.Element:
    colours = phase_colours(view.cycles)
    per_piece = {c.name: c for c in simulated.cycles} if simulated is not None else {}
    rows: list[tuple[str, Cycles | None, int | None]] = [
        (c.name, c, per_piece[c.name].total if c.name in per_piece else None) for c in view.cycles
    ]
    if simulated is not None and not simulated.cycles and view.total_cycles is not None:
        rows.append(("whole program", None, simulated.total))
    top = max(
        [c.total for _, c, _ in rows if c is not None]
        + [s for _, _, s in rows if s is not None]
        + [view.total_cycles or 0, 1]
    )
    scale = BAR_W / top
    per_row = BAR_H * (2 if simulated is not None else 1) + ROW_GAP
    height = len(rows) * per_row + 6
    root = svg.svg(LABEL_W + BAR_W + 90, height, "cycles per piece and phase", "cycles")
    for k, (name, modelled, sim) in enumerate(rows):
        y = 4 + k * per_row
        svg.text(root, LABEL_W - 8, y + 12, name, text_anchor="end", class_="bar-label")
        x = LABEL_W
        if modelled is not None:
            for phase, cycles in modelled.phases:
                w = cycles * modelled.repeat * scale
                svg.element(
                    root,
                    "rect",
                    f"{name}: {phase} {cycles * modelled.repeat:,} cycles (modelled)",
                    class_="bar modelled",
                    x=x,
                    y=float(y),
                    width=w,
                    height=BAR_H,
                    fill=colours[phase],
                    data_phase=phase,
                    data_cycles=cycles * modelled.repeat,
                )
                x += w
            svg.text(root, x + 4, y + 12, f"{modelled.total:,} modelled", class_="bar-value")
        elif view.total_cycles is not None:
            w = view.total_cycles * scale
            svg.element(
                root,
                "rect",
                f"whole program: {view.total_cycles:,} cycles (modelled)",
                class_="bar modelled",
                x=x,
                y=float(y),
                width=w,
                height=BAR_H,
                fill=PHASE_COLOURS[0],
                data_cycles=view.total_cycles,
            )
            svg.text(root, x + w + 4, y + 12, f"{view.total_cycles:,} modelled", class_="bar-value")
        if sim is not None:
            w = sim * scale
            sy = y + BAR_H
            svg.element(
                root,
                "rect",
                f"{name}: {sim:,} cycles (simulated)",
                class_="bar simulated",
                x=LABEL_W,
                y=float(sy),
                width=w,
                height=BAR_H - 3,
                fill=SIMULATED_COLOUR,
                data_cycles=sim,
            )
            svg.text(root, LABEL_W + w + 4, sy + 11, f"{sim:,} simulated", class_="bar-value")
    return root


def phase_legend(view: View) -> list[tuple[str, str]]:
    return list(phase_colours(view.cycles).items())
