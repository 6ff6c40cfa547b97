"""What the csl lowerings of every form share: which tensor a parameter names, the tensors'
placements (merged across the tasks that use them), the per-PE block parameters, and the
``<collectives_2d>`` import that row and column broadcasts and reductions use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kernelc.backends.csl.builder import Builder
from kernelc.backends.csl.lowered import Refusal
from kernelc.csl import model as m
from kernelc.diagnostics import KernelcError, Span
from kernelc.forms.blocks import DimMap, Layout, Split
from kernelc.graph import Task, TaskGraph
from kernelc.types import DType


def tensor_of(task: Task, param: str) -> str:
    b = task.binding(param)
    if b.region is None:
        raise KernelcError(f"'{param}' of '{task.kernel.name}' is not a tensor", task.span)
    return b.region.tensor


def check_whole(task: Task, graph: TaskGraph) -> Refusal | None:
    """Why the data-parallel lowerings do not take a task given part of a tensor; or None."""
    for b in task.bindings:
        if b.region is not None:
            decl = graph.tensor(b.region.tensor)
            if b.region.box != tuple((0, n) for n in decl.shape) or not all(b.region.keep):
                return Refusal(
                    f"the csl backend passes whole tensors between tasks; '{b.param}' of "
                    f"'{task.kernel.name}' gets the slice {b.region}",
                    task.span,
                )
    return None


def default_layout(name: str, dtype: DType, shape: tuple[int, ...], w: int, h: int) -> Layout:
    """Blocks over the grid: rank 1 over all PEs, otherwise the last two dimensions."""
    dims = [DimMap(n) for n in shape]
    if len(shape) == 1:
        dims[0] = DimMap(shape[0], "xy", Split(shape[0], w * h))
    elif shape:
        dims[-2] = DimMap(shape[-2], "y", Split(shape[-2], h))
        dims[-1] = DimMap(shape[-1], "x", Split(shape[-1], w))
    return Layout(name, dtype, tuple(dims))


def merge_layout(layouts: dict[str, Layout], new: Layout, span: Span) -> Refusal | None:
    """Add a placement to ``layouts`` (halos widen); a tensor wanted in two placements is a
    refusal."""
    old = layouts.get(new.tensor)
    if old is None:
        layouts[new.tensor] = new
        return None
    if not old.same_placement(new):
        return Refusal(
            f"tensor '{new.tensor}' is needed in two different placements (by two tasks of this "
            "graph, or by two accesses of one task); the csl data-parallel lowerings do not "
            "redistribute tensors",
            span,
        )
    merged = old
    for d, dm in enumerate(new.dims):
        merged = merged.with_halo(d, dm.halo)
    layouts[new.tensor] = merged
    return None


@dataclass
class SplitParams:
    """Per-PE parameters of one block split: where the block starts and how long it is."""

    start: str
    size: str


@dataclass
class Shared:
    """Program-wide pieces that several tasks reuse (created on first need)."""

    splits: dict[tuple[str, int], SplitParams] = field(default_factory=dict)
    exchange: ExchangeResources | None = None
    dispatch: list[tuple[int, str]] = field(default_factory=list)  # (task index, exchange fn)


@dataclass
class ExchangeResources:
    neighbours: dict[str, str]  # "west" -> param name of a bool
    colors: dict[str, str]  # "tx_east" -> param name of a color
    queues: dict[str, str]  # "tx_east" -> const name of its queue
    events: dict[str, str]  # "tx_lo" -> task ID name
    stage: str
    pending: str
    running: str


def axis_index(axis: str) -> m.Expr:
    if axis == "x":
        return m.Name("x")
    if axis == "y":
        return m.Name("y")
    return m.Binary("+", m.Binary("*", m.Name("y"), m.Name("width")), m.Name("x"))


def axis_parts_expr(axis: str) -> m.Expr:
    if axis == "x":
        return m.Name("width")
    if axis == "y":
        return m.Name("height")
    return m.Binary("*", m.Name("width"), m.Name("height"))


def split_params(b: Builder, shared: Shared, dm: DimMap) -> SplitParams:
    key = (dm.axis, dm.extent)
    if key not in shared.splits:
        n = m.lit(dm.extent)
        idx = axis_index(dm.axis)
        parts = axis_parts_expr(dm.axis)
        word = {"x": "cols", "y": "rows", "xy": "items"}[dm.axis]
        size = b.pe_param(
            word,
            "i16",
            m.call("block_size", n, parts, idx),
            f"block of {dm.extent} split over {dm.axis}: its length and start",
        )
        start = b.pe_param(f"{word}_start", "i32", m.call("block_start", n, parts, idx))
        shared.splits[key] = SplitParams(start, size)
    return shared.splits[key]


def collectives(b: Builder, shared: Shared) -> None:
    if b.c2d:
        return
    b.c2d = True
    colors = {}
    tasks = {}
    for axis in ("x", "y"):
        colors[axis] = [b.color(f"c2d_{axis}_{k}", f"collectives_2d along {axis}") for k in (0, 1)]
        tasks[axis] = [
            b.layout_task_id(f"c2d_{axis}_entry_{k}", f"collectives_2d along {axis} (library task)")
            for k in (0, 1)
        ]
    b.layout_consts.append(
        m.VarDecl("c2d", None, m.builtin("import_module", m.Str("<collectives_2d/params>")), True)
    )
    cfg = m.struct(
        x_colors=m.Tuple(tuple(m.Name(n) for n in colors["x"])),
        x_entrypoints=m.Tuple(tuple(m.Name(n) for n in tasks["x"])),
        y_colors=m.Tuple(tuple(m.Name(n) for n in colors["y"])),
        y_entrypoints=m.Tuple(tuple(m.Name(n) for n in tasks["y"])),
    )
    b.pe_param(
        "c2d_params",
        "comptime_struct",
        m.call(m.member("c2d", "get_params"), m.Name("x"), m.Name("y"), cfg),
        "row (x) and column (y) collectives: colors and library tasks",
    )

    # The row and column collectives run at once (SUMMA broadcasts both panels of a step), so
    # each import takes its own queues and DSRs, interleaved as the SDK's gemm example does:
    # x on queues 2 and 4 with DSR 1, y on 3 and 5 with DSR 2.
    def ids(*values: int) -> m.ArrayLit:
        n = len(values)
        return m.ArrayLit(m.ArrayT((m.Int(n),), m.Named("u16")), tuple(map(m.Int, values)))

    qs = [b.queue() for _ in range(4)]
    for k, (axis, var) in enumerate((("x", "mpi_x"), ("y", "mpi_y"))):
        fields = (
            ("dim_params", m.Field(m.Name("c2d_params"), axis)),
            ("queues", ids(qs[k], qs[k + 2])),
            ("dest_dsr_ids", ids(k + 1)),
            ("src0_dsr_ids", ids(k + 1)),
            ("src1_dsr_ids", ids(k + 1)),
        )
        b.const(var, m.builtin("import_module", m.Str("<collectives_2d/pe>"), m.Struct(fields)))
