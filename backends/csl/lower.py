"""Task graph -> PE-grid program: plan placements, lower every task, assemble the files.

The plan runs consumers first, so a tensor that one task produces and another consumes is
placed the way its consumer needs it (a matrix product fixes the placement of its operands; a
stencil adds halos). Each task then lowers to a launched function plus the tasks and data it
needs on every PE. All PEs run one PE program (one role); what differs between PEs (block
sizes, iteration windows, neighbours, colors) are parameters the layout computes from the PE's
coordinates, so sizes that do not divide the grid cost no extra code.
"""

from __future__ import annotations

from kernelc.backends.csl import tasks
from kernelc.backends.csl.builder import COORDS_FN, Builder, layout_helpers, nodes_in
from kernelc.backends.csl.contract import CONTRACTION
from kernelc.backends.csl.lookup import LOOKUP
from kernelc.backends.csl.lowered import (
    FormLowering,
    Lowered,
    LoweredTask,
    Misfit,
    Rect,
    Refusal,
    TaskCode,
    Transfer,
)
from kernelc.backends.csl.placement import Shared
from kernelc.backends.csl.reduction import REDUCTION
from kernelc.backends.csl.stencil import MAP, finish_exchange
from kernelc.backends.csl.tasks import StepCode
from kernelc.csl import charges, machine
from kernelc.csl import model as m
from kernelc.forms import Contraction, Lookup, Map, Reduction, Scalar
from kernelc.forms.blocks import Layout
from kernelc.graph import Task, TaskGraph
from kernelc.version import VERSION

LOWERINGS: dict[type, FormLowering] = {
    Map: MAP,
    Contraction: CONTRACTION,
    Reduction: REDUCTION,
    Lookup: LOOKUP,
}


def lowering_of(task: Task) -> FormLowering | None:
    """The data-parallel lowering of the task's form; None for scalar code (a Reduction
    without a kept index has nothing to spread over PEs)."""
    if isinstance(task.form, Reduction) and task.form.loop is None:
        return None
    return LOWERINGS.get(type(task.form))


def scalar_culprit(graph: TaskGraph) -> Task | None:
    """The first task no data-parallel lowering takes (then the graph runs as scalar tasks)."""
    return next((t for t in graph.tasks if lowering_of(t) is None), None)


def scalar_reason(graph: TaskGraph) -> str | None:
    """Why the graph runs as scalar tasks, for messages; None when every task has a lowering."""
    culprit = scalar_culprit(graph)
    if culprit is None:
        return None
    if isinstance(culprit.form, Scalar):
        return culprit.form.reason
    if isinstance(culprit.form, Reduction):
        return f"'{culprit.kernel.name}' folds with no kept index (nothing to spread over PEs)"
    return culprit.kernel.name


def plan(
    graph: TaskGraph, width: int, height: int, scalar: bool = False
) -> dict[str, Layout] | Refusal | Misfit:
    """Placements of every tensor, decided consumers first; every tensor whole on each PE when
    the graph runs as scalar tasks. Or the first task's refusal, or why this grid does not fit."""
    if scalar:
        return tasks.plan(graph)
    layouts: dict[str, Layout] = {}
    for task in reversed(graph.tasks):
        refused = lowering_of(task).plan(task, task.form, graph, layouts, width, height)
        if refused is not None:
            return refused
    return layouts


class GraphPlanner:
    """Whole-graph planning for the lowerings that size their grid from it (lookups)."""

    def plan(
        self, graph: TaskGraph, width: int, height: int
    ) -> dict[str, Layout] | Refusal | Misfit:
        return plan(graph, width, height)

    def code_bytes(
        self, graph: TaskGraph, arch: machine.Arch, width: int, height: int
    ) -> int | Refusal | Misfit:
        low = lower(graph, arch, width, height)
        return low.code_bytes if isinstance(low, Lowered) else low


def lower(
    graph: TaskGraph, arch: machine.Arch, width: int, height: int, scalar: bool = False
) -> Lowered | Refusal | Misfit:
    """The CSL program of a task graph on a ``width`` x ``height`` rectangle: every task by the
    lowering of its form, or (``scalar``, or a task without one) every task as scalar code. Or
    the first refusal of a lowering, or why the plan does not fit this grid."""
    scalar = scalar or scalar_culprit(graph) is not None
    layouts = plan(graph, width, height, scalar)
    if not isinstance(layouts, dict):
        return layouts
    b = Builder(arch, width, height, f"pe_{graph.name}.csl")
    b.names.update({"sys_mod", "math", "memcpy_params"})
    b.layout_param("width", "i16", width, "program rectangle (columns x rows of PEs)")
    b.layout_param("height", "i16", height)
    b.layout_fns.extend(layout_helpers())
    for t in graph.tensors:
        lay = layouts.get(t.name)
        if lay is None:
            return Refusal(f"tensor '{t.name}' is not used by any task", t.span)
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
    lowered: list[LoweredTask] = []
    if scalar:
        lowered.extend(LoweredTask(code, tasks.STEPS) for code in tasks.lower(graph, layouts, b))
        if b.refused is not None:
            return b.refused
    for index, task in enumerate(() if scalar else graph.tasks):
        lowering = lowering_of(task)
        code = lowering.lower(task, index, task.form, graph, layouts, b, shared)
        if isinstance(code, Refusal | Misfit):
            return code
        lowered.append(LoweredTask(code, lowering))
    finish_exchange(b, shared)
    codes = [t.code for t in lowered]
    intro = _intro(graph, b, "PE program", codes)
    pe = b.pe_program(intro)
    layout = b.layout(_intro(graph, b, "layout", codes))
    program = m.Program(layout, (pe,))
    code_size = machine.code_bytes(pe.decls)
    rects: dict[str, Rect] = {}
    for task_code in codes:
        rects.update(task_code.output_rects)
    outputs = []
    for t in graph.outputs:
        rect = rects.get(t.name, (0, 0, width, height))
        outputs.append(Transfer(t.name, b.tensor_arrays[t.name], layouts[t.name], rect))
    inputs = [
        Transfer(t.name, b.tensor_arrays[t.name], layouts[t.name], (0, 0, width, height))
        for t in graph.inputs
    ]
    return Lowered(
        program,
        width,
        height,
        arch,
        layouts,
        inputs,
        outputs,
        lowered,
        b.data_bytes,
        code_size,
        b,
        dict(b.arrays),
        dict(b.tensor_arrays),
        b.batches,
        _coords_cycles(pe),
    )


def _coords_cycles(pe: m.CslFile) -> int:
    """What a launch's call of ``read_coords`` costs, counted with the simulator's charges; a
    helper's loop over one of its parameters (the lookup's band walk) takes the literal that
    ``read_coords`` passes for it."""
    fns = {d.name: d for d in pe.decls if isinstance(d, m.FnDecl)}
    if COORDS_FN not in fns:
        return 0
    passed: dict[str, int] = {}  # helper parameter -> the literal read_coords gives it
    for node in nodes_in(fns[COORDS_FN].body):
        if isinstance(node, m.Call) and isinstance(node.fn, m.Name) and node.fn.id in fns:
            for (name, _t), arg in zip(fns[node.fn.id].params, node.args, strict=True):
                if isinstance(arg, m.Int):
                    passed[name] = arg.value

    def trips(loop: m.For | m.While) -> float | None:
        match loop:
            case m.For(iter=m.Builtin(name="range", args=(_, m.Name(id=n)))):
                return passed[n]
        return None

    counter = charges.Counter(fns, {}, trips, lambda _s: 0.5)
    return round(counter.stmt(m.ExprStmt(m.call(COORDS_FN))))


def _intro(graph: TaskGraph, b: Builder, what: str, codes: list[TaskCode]) -> list[str]:
    steps = [c for c in codes if isinstance(c, StepCode)]
    if steps:
        launched = "Steps of task instances, launched by run.py in this order: " + "; ".join(
            f"{c.launch} ({', '.join(c.tasks)})" for c in steps
        )
    else:
        tasks = ", ".join(f"{t.name} ({t.kernel.name})" for t in graph.tasks)
        launched = f"Tasks, launched by run.py in this order: {tasks}"
    return [
        f"Generated by kernelc {VERSION} from {graph.filename.rsplit('/', 1)[-1]}, entry "
        f"'{graph.name}': the {what}.",
        f"Target: Cerebras {b.arch.name.upper()}, program rectangle {b.width} x {b.height} PEs "
        "(PE (x, y) is column x, row y).",
        f"{launched}.",
    ]
