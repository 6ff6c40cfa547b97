"""The task graph as SVG: tensors (rounded boxes) and tasks (boxes in their task's colour) in
layers of the networkx graph (inputs, then each step's tasks and the tensors they write, each
tensor under the tasks that write it),
reads and writes as arrows with the region in their tooltip, and order and anti dependences
between tasks as dashed arrows."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree as ET

import networkx as nx

from kernelc.artifact import graph_doc
from kernelc.graph import TaskGraph
from kernelc.report import svg
from kernelc.report.data import Dependency, Task, Tensor, graph_parts

CHAR = 7.0  # width of a character at the node font size
NODE_H = 34.0
LAYER_GAP = 64.0
NODE_GAP = 24.0
MARGIN = 16.0


def layers(tensors: Sequence[Tensor], tasks: Sequence[Task]) -> nx.DiGraph:
    """The bipartite graph with each node's layer: 2 x step + 1 for a task, 2 x (step of its
    first writer) + 2 for a written tensor, 0 for one no task writes."""
    g = nx.DiGraph()
    writer_step: dict[str, int] = {}
    for task in tasks:
        for region in task.writes:
            name = region.split("[", 1)[0]
            writer_step.setdefault(name, task.step)
    for t in tensors:
        layer = 2 * writer_step[t.name] + 2 if t.name in writer_step else 0
        g.add_node(f"tensor:{t.name}", layer=layer)
    for task in tasks:
        g.add_node(f"task:{task.name}", layer=2 * task.step + 1)
    for task in tasks:
        for region in task.reads:
            g.add_edge(f"tensor:{region.split('[', 1)[0]}", f"task:{task.name}", region=region)
        for region in task.writes:
            g.add_edge(f"task:{task.name}", f"tensor:{region.split('[', 1)[0]}", region=region)
    return g


def graph_svg(
    tensors: Sequence[Tensor],
    tasks: Sequence[Task],
    dependencies: Sequence[Dependency],
    colours: dict[str, str],
) -> ET.Element:
    g = layers(tensors, tasks)
    by_layer: dict[int, list[str]] = {}
    for node in g.nodes:  # graph order within a layer
        by_layer.setdefault(g.nodes[node]["layer"], []).append(node)
    rows = sorted(by_layer)
    for r in rows[1:]:  # a tensor under the tasks that write it (barycentre of its writers)
        rank = {n: k for k, n in enumerate(by_layer[r - 1])}
        by_layer[r].sort(
            key=lambda n: (
                sum(rank.get(p, 0) for p in g.predecessors(n))
                / max(1, sum(1 for p in g.predecessors(n) if p in rank))
            )
        )
    labels = {**{f"tensor:{t.name}": _tensor_label(t) for t in tensors}}
    labels.update({f"task:{t.name}": t.name for t in tasks})
    width = {n: max(CHAR * len(labels[n]) + 20, 60.0) for n in g.nodes}
    span = max(sum(width[n] + NODE_GAP for n in by_layer[r]) for r in rows) - NODE_GAP
    room = max((len(r) for *_, r in g.edges(data="region")), default=0) * CHAR
    total_w = span + 2 * MARGIN + room
    total_h = 2 * MARGIN + len(rows) * NODE_H + (len(rows) - 1) * LAYER_GAP
    centre: dict[str, tuple[float, float]] = {}
    for k, r in enumerate(rows):
        row_w = sum(width[n] + NODE_GAP for n in by_layer[r]) - NODE_GAP
        x = MARGIN + (span - row_w) / 2
        y = MARGIN + k * (NODE_H + LAYER_GAP) + NODE_H / 2
        for n in by_layer[r]:
            centre[n] = (x + width[n] / 2, y)
            x += width[n] + NODE_GAP
    root = svg.svg(total_w, total_h, "task graph", "graph")
    svg.arrow_marker(root, "arrow", "#666666")
    svg.arrow_marker(root, "arrow-dep", "#1f5fbf")
    edges = svg.element(root, "g", class_="edges")
    for a, b in g.edges:
        (x1, y1), (x2, y2) = centre[a], centre[b]
        region = g.edges[a, b]["region"]
        path = _curve(x1, y1 + NODE_H / 2, x2, y2 - NODE_H / 2)
        read = a.startswith("tensor:")
        task = (b if read else a).split(":", 1)[1]
        tooltip = f"{task} {'reads' if read else 'writes'} {region}"
        colour = "#8a8f98" if read else colours.get(task, "#666666")
        e = svg.element(edges, "g", tooltip, class_="edge read" if read else "edge write")
        svg.element(
            e,
            "path",
            d=path,
            fill="none",
            stroke=colour,
            stroke_width="1.4",
            marker_end="url(#arrow)",
        )
        at = _label_at(g, a, b, (x1, y1), (x2, y2))
        if at is not None:
            svg.text(e, *at, region, class_="edge-label")
    for d in dependencies:
        if d.kind == "flow":
            continue  # flow dependences are the tensors between the tasks
        (x1, y1), (x2, y2) = centre[f"task:{d.before}"], centre[f"task:{d.after}"]
        e = svg.element(
            edges,
            "g",
            f"{d.after} after {d.before} ({d.kind} dependence"
            + (f" on {d.tensor})" if d.tensor else ")"),
            class_="edge dependency",
        )
        svg.element(
            e,
            "path",
            d=_curve(x1 + 8, y1 + NODE_H / 2, x2 + 8, y2 - NODE_H / 2),
            fill="none",
            stroke="#1f5fbf",
            stroke_width="1.2",
            stroke_dasharray="5 3",
            marker_end="url(#arrow-dep)",
        )
    nodes = svg.element(root, "g", class_="nodes")
    for t in tensors:
        n = f"tensor:{t.name}"
        x, y = centre[n]
        fill = {"input": "#ffffff", "output": "#ffffff"}.get(t.role, "#f3f4f6")
        node = svg.element(
            nodes,
            "g",
            f"{t.role} tensor {t.name}: {t.dtype}{list(t.shape)}",
            class_="tensor",
            data_tensor=t.name,
        )
        svg.element(
            node,
            "rect",
            x=x - width[n] / 2,
            y=y - NODE_H / 2,
            width=width[n],
            height=NODE_H,
            rx="14",
            fill=fill,
            stroke="#4b5563",
            stroke_width="2" if t.role == "output" else "1",
        )
        svg.text(node, x, y + 4, labels[n], text_anchor="middle", class_="node-label")
    for task in tasks:
        n = f"task:{task.name}"
        x, y = centre[n]
        reads = ", ".join(task.reads) or "nothing"
        writes = ", ".join(task.writes) or "nothing"
        node = svg.element(
            nodes,
            "g",
            f"task {task.name} (kernel {task.kernel}, step {task.step}): reads {reads}; "
            f"writes {writes}",
            class_="task",
            data_task=task.name,
        )
        svg.element(
            node,
            "rect",
            x=x - width[n] / 2,
            y=y - NODE_H / 2,
            width=width[n],
            height=NODE_H,
            rx="3",
            fill=colours[task.name],
            stroke="#1f2937",
        )
        svg.text(node, x, y + 4, labels[n], text_anchor="middle", class_="node-label task-label")
    return root


STYLE = (
    "text { font: 12px Helvetica, Arial, sans-serif; fill: #111827; } "
    ".edge-label { font-size: 10px; fill: #6b7280; } "
    ".task-label { fill: #ffffff; font-weight: 600; }"
)


def standalone(graph: TaskGraph) -> str:
    """The task graph of a bound graph as an SVG file (``kernelc graph --format svg``)."""
    tensors, tasks, dependencies = graph_parts(graph_doc(graph))
    colours = {t.name: svg.task_colour(k) for k, t in enumerate(tasks)}
    root = graph_svg(tensors, tasks, dependencies, colours)
    style = ET.Element("style")
    style.text = STYLE
    root.insert(0, style)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + svg.tostring(root) + "\n"


def _label_at(
    g: nx.DiGraph, a: str, b: str, start: tuple[float, float], end: tuple[float, float]
) -> tuple[float, float] | None:
    """Where an arrow's region label goes: next to the end whose node has no other arrow on
    that side (so labels never pile up), or nowhere (the tooltip still has it)."""
    if g.out_degree(a) == 1:
        return start[0] + 5, start[1] + NODE_H / 2 + 13
    if g.in_degree(b) == 1:
        return end[0] + 5, end[1] - NODE_H / 2 - 7
    return None


def _tensor_label(t: Tensor) -> str:
    return f"{t.name} {t.dtype}[{'x'.join(str(n) for n in t.shape)}]"


def _curve(x1: float, y1: float, x2: float, y2: float) -> str:
    mid = (y1 + y2) / 2
    n = svg.num
    return f"M {n(x1)} {n(y1)} C {n(x1)} {n(mid)}, {n(x2)} {n(mid)}, {n(x2)} {n(y2 - 2)}"
