"""Placement pictures: the processors of a plan (PEs, tiles, memory slices) as a grid of
cells, once coloured by the tasks on each cell and once as a heat map of each cell's modelled
memory against the per-processor limit, with every figure in the cell's tooltip; and the
legends that go with them."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from kernelc.report import svg
from kernelc.report.data import Cell, Placement

WIDTH = 520.0  # of a grid picture (two side by side on the page)
HEIGHT = 480.0  # most a grid picture is tall
ROW_WIDTH = 900.0  # of a one-row picture (a floorplan)
MAX_CELL = 28.0
MIN_CELL = 4.0
ROW_HEIGHT = 72.0  # cell height of a one-row picture (a floorplan)
LABEL_ROOM = 18.0


def _cell_size(p: Placement) -> tuple[float, float]:
    if p.rows == 1:
        return min(MAX_CELL, max(MIN_CELL, ROW_WIDTH / p.columns)), ROW_HEIGHT
    w = min(MAX_CELL, max(MIN_CELL, min(WIDTH / p.columns, HEIGHT / p.rows)))
    return w, w


def _memory_text(c: Cell, limit: int) -> str:
    if c.memory_bytes is None:
        return "holds no memory"
    share = 100 * c.memory_bytes / limit
    return f"memory {c.memory_bytes:,} of {limit:,} bytes ({share:.1f} %, modelled)"


def _tooltip(c: Cell, p: Placement, what: str) -> str:
    parts = [c.label]
    if c.count > 1:
        parts[0] += f" ({c.count:,} {p.unit}s)"
    if what == "tasks":
        parts.append("tasks: " + (", ".join(c.tasks) if c.tasks else "none"))
    parts.append(_memory_text(c, p.limit_bytes) + (f" per {p.unit}" if c.count > 1 else ""))
    if c.detail:
        parts.append(c.detail)
    return "\n".join(parts)


def tasks_svg(p: Placement, colours: dict[str, str]) -> ET.Element:
    """Each cell in its tasks' colours (stripes when several tasks share it)."""
    w, h = _cell_size(p)
    gap = 1.0 if w >= 6 else 0.0
    root = svg.svg(p.columns * w, p.rows * h + _labels_room(p), f"{p.title}: tasks", "placement")
    for c in p.cells:
        x, y = c.column * w, c.row * h
        g = svg.element(
            root,
            "g",
            _tooltip(c, p, "tasks"),
            class_="cell",
            data_tasks=" ".join(c.tasks),
            data_count=c.count,
        )
        fills = [colours[t] for t in c.tasks] or [svg.EMPTY]
        svg.stripes(g, x, y, w - gap, h - gap, fills)
    _column_labels(root, p, w, h)
    return root


def memory_svg(p: Placement) -> ET.Element:
    """Each cell's modelled memory as a share of the per-processor limit."""
    w, h = _cell_size(p)
    gap = 1.0 if w >= 6 else 0.0
    root = svg.svg(p.columns * w, p.rows * h + _labels_room(p), f"{p.title}: memory", "memory")
    for c in p.cells:
        fill = "#ffffff" if c.memory_bytes is None else svg.heat(c.memory_bytes / p.limit_bytes)
        svg.element(
            root,
            "rect",
            _tooltip(c, p, "memory"),
            class_="mem",
            x=float(c.column * w),
            y=float(c.row * h),
            width=w - gap,
            height=h - gap,
            fill=fill,
            stroke="#d1d5db" if c.memory_bytes is None else None,
            data_bytes=c.memory_bytes if c.memory_bytes is not None else None,
            data_limit=p.limit_bytes,
        )
    _column_labels(root, p, w, h)
    return root


def _labels_room(p: Placement) -> float:
    return LABEL_ROOM if p.column_labels else 0.0


def _column_labels(root: ET.Element, p: Placement, w: float, h: float) -> None:
    for first, last, label in p.column_labels:
        x = (first + last + 1) * w / 2
        svg.text(root, x, p.rows * h + 13, label, class_="axis-label", text_anchor="middle")


def legend_svg(tasks: list[str], colours: dict[str, str]) -> ET.Element:
    """A swatch and the name of every task, in graph order."""
    per_row = 4
    width, row_h = 200.0, 22.0
    rows = -(-max(len(tasks), 1) // per_row)
    root = svg.svg(per_row * width, rows * row_h, "task colours", "legend")
    for k, name in enumerate(tasks):
        x, y = (k % per_row) * width, (k // per_row) * row_h
        g = svg.element(root, "g", f"task {name}", class_="legend-item", data_task=name)
        svg.element(
            g,
            "rect",
            class_="swatch",
            x=x,
            y=y + 4,
            width="14",
            height="14",
            rx="2",
            fill=colours[name],
            data_task=name,
        )
        svg.text(g, x + 20, y + 16, name, class_="legend-label")
    return root


def heat_legend_svg(limit: int, unit: str) -> ET.Element:
    """The heat ramp from 0 to the limit of one processor."""
    root = svg.svg(360, 40, "memory scale", "heat-legend")
    steps = 40
    for k in range(steps):
        svg.element(
            root,
            "rect",
            x=10 + k * 8.0,
            y="4",
            width="8.5",
            height="14",
            fill=svg.heat(k / (steps - 1)),
        )
    svg.text(root, 10, 34, "0", class_="axis-label")
    svg.text(root, 330, 34, f"{limit:,} B per {unit}", class_="axis-label", text_anchor="end")
    return root
