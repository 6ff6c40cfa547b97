"""The task graph as Graphviz DOT, so users can see the static graph their source produced.

Tasks are boxes grouped by step (a step is a set of tasks with no dependencies among them: the
tasks of one compute set), tensors are ellipses, solid edges are reads and writes labelled with
the region, dashed edges are the task order (flow, anti and explicit order dependences).
"""

from __future__ import annotations

import networkx as nx

from kernelc.graph import TaskGraph


def steps(graph: TaskGraph) -> list[list[str]]:
    """The tasks in steps: each step's tasks depend only on tasks of earlier steps."""
    position = {t.name: i for i, t in enumerate(graph.tasks)}
    return [
        sorted(generation, key=position.__getitem__)
        for generation in nx.topological_generations(graph.dependencies)
    ]


def graph_dot(graph: TaskGraph) -> str:
    """DOT text of a bound task graph (deterministic: the same graph gives the same text)."""
    lines = [
        f"digraph {_quote(graph.name)} {{",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for t in graph.tensors:
        shape = "x".join(str(n) for n in t.shape)
        label = _label(t.name, f"{t.dtype}[{shape}]", t.role)
        style = ', style=filled, fillcolor="#eeeeee"' if t.role == "temp" else ""
        lines.append(f"  {_tensor_id(t.name)} [shape=ellipse, label={label}{style}];")
    tasks = {t.name: t for t in graph.tasks}
    for number, step in enumerate(steps(graph)):
        lines.append(f"  subgraph cluster_step{number} {{")
        lines.append(
            f'    label="step {number} ({len(step)} task{"s" if len(step) != 1 else ""})";'
        )
        lines.append('    style=dashed; color="#888888";')
        for name in step:
            task = tasks[name]
            constants = [
                f"{b.param} = {b.constant!r}" for b in task.bindings if b.constant is not None
            ]
            label = _label(name, f"kernel {task.kernel.name}", *constants)
            lines.append(f"    {_task_id(name)} [shape=box, label={label}];")
        lines.append("  }")
    for task in graph.tasks:
        for region in task.reads:
            lines.append(
                f"  {_tensor_id(region.tensor)} -> {_task_id(task.name)} "
                f"[label={_quote(str(region))}];"
            )
        for region in task.writes:
            lines.append(
                f"  {_task_id(task.name)} -> {_tensor_id(region.tensor)} "
                f"[label={_quote(str(region))}];"
            )
    deps = graph.dependencies
    for a, b in sorted(deps.edges, key=lambda e: (_order(graph, e[0]), _order(graph, e[1]))):
        kind = deps.edges[a, b]["kind"]
        lines.append(
            f"  {_task_id(a)} -> {_task_id(b)} "
            f'[style=dashed, color="#1f5fbf", fontcolor="#1f5fbf", label={_quote(kind)}];'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _order(graph: TaskGraph, name: str) -> int:
    return next(i for i, t in enumerate(graph.tasks) if t.name == name)


def _tensor_id(name: str) -> str:
    return _quote(f"tensor:{name}")


def _task_id(name: str) -> str:
    return _quote(f"task:{name}")


def _quote(text: str) -> str:
    """A DOT string: double-quoted, with backslashes and quotes escaped."""
    return '"' + _escape(text) + '"'


def _label(*lines: str) -> str:
    """A multi-line DOT label."""
    return '"' + "\\n".join(_escape(line) for line in lines) + '"'


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
