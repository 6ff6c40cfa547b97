"""Task graph -> PE-grid program: plan placements, lower every task, assemble the files.

The plan runs consumers first, so a tensor that one task produces and another consumes is
placed the way its consumer needs it (a matrix product fixes the placement of its operands; a
stencil adds halos). Each task then lowers to a launched function plus the tasks and data it
needs on every PE. All PEs run one PE program (one role); what differs between PEs (block
sizes, iteration windows, neighbours, colors) are parameters the layout computes from the PE's
coordinates, so sizes that do not divide the grid cost no extra code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from kernelc import ir
from kernelc.backends.csl import machine
from kernelc.backends.csl import model as m
from kernelc.backends.csl.builder import Builder, layout_helpers
from kernelc.backends.csl.partition import Layout
from kernelc.backends.csl.stencil import (
    Shared,
    finish_exchange,
    lower_map,
    map_shape,
    plan_map,
)
from kernelc.diagnostics import Unsupported
from kernelc.graph import Binding, Task, TaskGraph


@dataclass(frozen=True)
class Transfer:
    """One host transfer: a tensor's symbol, its placement and the PE rectangle it uses."""

    tensor: str
    symbol: str
    layout: Layout
    rect: tuple[int, int, int, int]  # x0, y0, w, h


@dataclass
class Lowered:
    program: m.Program
    width: int
    height: int
    arch: machine.Arch
    layouts: dict[str, Layout]
    inputs: list[Transfer]
    outputs: list[Transfer]
    launches: list[str]
    task_codes: list[object]
    data_bytes: int
    code_bytes: int
    arrays: dict[str, int] = field(default_factory=dict)
    symbols: dict[str, str] = field(default_factory=dict)  # tensor -> its array on every PE

    @property
    def memory_bytes(self) -> int:
        return self.data_bytes + self.code_bytes


def _kind(task: Task) -> str | None:
    """The data-parallel lowering a task fits: map, contraction or lookup; None for none."""
    from kernelc.backends.csl.contract import contraction_shape
    from kernelc.backends.csl.lookup import lookup_shape

    if map_shape(task) is not None:
        return "map"
    if contraction_shape(task) is not None:
        return "contraction"
    if lookup_shape(task) is not None:
        return "lookup"
    return None


SCALAR_TASKS = "scalar_tasks"  # option: why every task runs as scalar code (a refusal's text)


def scalar_culprit(graph: TaskGraph, options: Mapping | None = None) -> Task | None:
    """The first task no data-parallel lowering fits (then the graph runs as scalar tasks), or
    the first task when the options ask for scalar tasks."""
    if options and options.get(SCALAR_TASKS) and graph.tasks:
        return graph.tasks[0]
    return next((t for t in graph.tasks if _kind(t) is None), None)


def scalar_reason(graph: TaskGraph, options: Mapping | None = None) -> str:
    """Why the graph runs as scalar tasks, for messages."""
    if options and options.get(SCALAR_TASKS):
        return f"the data-parallel lowerings refused it: {options[SCALAR_TASKS]}"
    culprit = scalar_culprit(graph)
    return f"'{culprit.kernel.name}' is no data-parallel loop nest, matrix product or lookup"


def scalar_value(graph: TaskGraph, binding: Binding) -> int | float | bool:
    """What a task passes for a scalar parameter; the CSL program takes it at build time."""
    if binding.scalar is None:
        return binding.constant
    scalar = next(s for s in graph.scalars if s.name == binding.scalar)
    if scalar.default is None:
        raise Unsupported(
            f"the csl backend takes scalar parameters at build time; give '{scalar.name}' a "
            f"value with -D {scalar.name}=VALUE",
            scalar.span,
        )
    return scalar.default.value


def constant_scalars(graph: TaskGraph) -> TaskGraph:
    """The graph with each task's scalar parameters replaced by their values: the CSL program
    takes no scalars at run time, so the data-parallel lowerings see constants."""
    tasks = []
    for task in graph.tasks:
        values: dict[str, ir.Const] = {}
        for binding in task.bindings:
            if binding.region is not None:
                continue
            param = task.kernel.param(binding.param)
            value = scalar_value(graph, binding)
            values[param.name] = ir.Const(value=value, span=param.span, dtype=param.dtype)
        if not values:
            tasks.append(task)
            continue

        def constant(node, values=values):
            if isinstance(node, ir.Name) and node.name in values:
                return replace(values[node.name], span=node.span)
            return node

        kernel = replace(task.kernel, body=ir.transform(task.kernel.body, constant))
        tasks.append(replace(task, kernel=kernel))
    return replace(graph, tasks=tuple(tasks))


def plan(graph: TaskGraph, width: int, height: int, options: dict) -> dict[str, Layout]:
    """Placements of every tensor, decided consumers first."""
    from kernelc.backends.csl import contract, lookup, tasks

    if scalar_culprit(graph, options) is not None:
        return tasks.plan(graph)
    layouts: dict[str, Layout] = {}
    for task in reversed(graph.tasks):
        kind = _kind(task)
        if kind == "map":
            plan_map(task, map_shape(task), graph, layouts, width, height)
        elif kind == "contraction":
            contract.plan(task, graph, layouts, width, height, options)
        else:
            lookup.plan(task, graph, layouts, width, height)
    return layouts


def lower(
    graph: TaskGraph, arch: machine.Arch, width: int, height: int, options: dict | None = None
) -> Lowered:
    """The CSL program of a task graph on a ``width`` x ``height`` rectangle."""
    from kernelc.backends.csl import contract, lookup, tasks

    options = dict(options or {})
    layouts = plan(graph, width, height, options)
    scalar = scalar_culprit(graph, options) is not None
    b = Builder(arch, width, height, f"pe_{graph.name}.csl")
    b.names.update({"sys_mod", "math", "memcpy_params"})
    b.layout_param("width", "i16", width, "program rectangle (columns x rows of PEs)")
    b.layout_param("height", "i16", height)
    b.layout_fns.extend(layout_helpers())
    for t in graph.tensors:
        lay = layouts.get(t.name)
        if lay is None:
            raise Unsupported(f"tensor '{t.name}' is not used by any task", t.span)
        shape = "x".join(str(n) for n in lay.local_shape)
        b.tensor_arrays[t.name] = b.array(
            t.name,
            t.dtype,
            lay.local_size,
            f"{t.role} '{t.name}' {t.dtype}{list(t.shape)}: local block {shape} "
            f"(the largest block, with halo)",
            export=scalar or t.role in ("input", "output"),
        )
    shared = Shared()
    codes: list[object] = []
    if scalar:
        codes.extend(tasks.lower(graph, layouts, b))
    for index, task in enumerate(() if scalar else graph.tasks):
        kind = _kind(task)
        if kind == "map":
            codes.append(lower_map(task, index, map_shape(task), graph, layouts, b, shared))
        elif kind == "contraction":
            codes.append(contract.lower(task, index, graph, layouts, b, shared, options))
        else:
            codes.append(lookup.lower(task, index, graph, layouts, b, shared))
    finish_exchange(b, shared)
    intro = _intro(graph, b, "PE program", codes)
    pe = b.pe_program(intro)
    layout = b.layout(_intro(graph, b, "layout", codes))
    program = m.Program(layout, (pe,))
    code = machine.code_bytes(pe.decls)
    rects: dict[str, tuple[int, int, int, int]] = {}
    for task_code in codes:
        rects.update(getattr(task_code, "output_rects", {}))
    outputs = []
    for t in graph.outputs:
        rect = rects.get(t.name, (0, 0, width, height))
        outputs.append(Transfer(t.name, b.tensor_arrays[t.name], layouts[t.name], rect))
    inputs = [
        Transfer(t.name, b.tensor_arrays[t.name], layouts[t.name], (0, 0, width, height))
        for t in graph.inputs
    ]
    launches = [c.launch for c in codes]
    return Lowered(
        program,
        width,
        height,
        arch,
        layouts,
        inputs,
        outputs,
        launches,
        codes,
        b.data_bytes,
        code,
        dict(b.arrays),
        dict(b.tensor_arrays),
    )


def _intro(graph: TaskGraph, b: Builder, what: str, codes: list[object]) -> list[str]:
    from kernelc import __version__
    from kernelc.backends.csl.tasks import StepCode

    steps = [c for c in codes if isinstance(c, StepCode)]
    if steps:
        launched = "Steps of task instances, launched by run.py in this order: " + "; ".join(
            f"{c.launch} ({', '.join(c.tasks)})" for c in steps
        )
    else:
        tasks = ", ".join(f"{t.name} ({t.kernel.name})" for t in graph.tasks)
        launched = f"Tasks, launched by run.py in this order: {tasks}"
    return [
        f"Generated by kernelc {__version__} from {graph.filename.rsplit('/', 1)[-1]}, entry "
        f"'{graph.name}': the {what}.",
        f"Target: Cerebras {b.arch.name.upper()}, program rectangle {b.width} x {b.height} PEs "
        "(PE (x, y) is column x, row y).",
        f"{launched}.",
    ]
