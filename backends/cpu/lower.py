"""A task graph to one LLVM module, in three steps: declarations, globals, bodies.

The module's interface (what the runtime and a C host call) is uniform. Every task becomes

    void kernelc_task_<name>(void **buffers, int64_t lo, int64_t hi);

where ``buffers`` holds the base address of every graph tensor (in ``graph.tensors`` order) and
then of every graph scalar (``graph.scalars`` order), and ``[lo, hi)`` limits the iterations of the
task's split loop (its outermost parallel loop), so threads can share it. The exported function
loads its pointers and calls an internal body whose tensor arguments are ``noalias`` (distinct
graph tensors never overlap), which LLVM turns into alias facts when it inlines the body.

Globals describe the module to a host: ``kernelc_num_tasks``, ``kernelc_tasks`` (the entry points
in graph order) and ``kernelc_split`` (per task the static range of the split loop, or 0, 0).

Each task also gets a worker loop, ``kernelc_task_<name>_shares(buffers, next, ranges, count)``:
it takes share numbers from the shared counter ``*next`` (an atomic increment) and runs the task
on ``[ranges[2n], ranges[2n + 1])`` until all ``count`` shares are taken. One call per thread
keeps the dispatch in native code (one GIL release per thread, not one per share).
"""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir as ll

from kernelc import ir
from kernelc.affine import evaluate, is_static
from kernelc.backends.cpu import gemm, ops
from kernelc.backends.cpu.kernel import BodyLowering, Local, View
from kernelc.backends.cpu.machine import Machine
from kernelc.backends.cpu.ops import I8, I32, I64
from kernelc.graph import Task, TaskGraph
from kernelc.types import DType

PTR = ll.PointerType()
ENTRY_TYPE = ll.FunctionType(ll.VoidType(), [PTR, I64, I64])
SYMBOL_PREFIX = "kernelc_task_"
SHARES_SUFFIX = "_shares"
SHARES_TYPE = ll.FunctionType(ll.VoidType(), [PTR, PTR, PTR, I64])


@dataclass(frozen=True)
class TaskPlan:
    """What the lowering decided about one task before emitting it."""

    task: Task
    symbol: str
    views: dict[str, View]
    tensors: tuple[str, ...]  # graph tensors the task touches, in buffer order
    split: ir.For | None
    split_range: tuple[int, int] | None  # static [lo, hi) of the split loop
    gemm: gemm.GemmPlan | None


@dataclass(frozen=True)
class LoweredModule:
    module: ll.Module
    buffers: tuple[str, ...]  # tensor then scalar names: the order of the buffer table
    plans: tuple[TaskPlan, ...]


def lower(graph: TaskGraph, machine: Machine) -> LoweredModule:
    """Build the (unoptimised) LLVM module of a bound task graph."""
    module = ll.Module(name=graph.name)
    module.triple = machine.triple
    buffers = tuple(t.name for t in graph.tensors) + tuple(s.name for s in graph.scalars)
    plans = tuple(_plan(task, graph, machine) for task in graph.tasks)
    entries, bodies = declare(module, plans, graph)
    define_globals(module, plans, entries)
    for plan, entry, body in zip(plans, entries, bodies, strict=True):
        define_body(plan, body, graph, machine)
        define_entry(plan, entry, body, buffers, graph)
        define_share_runner(ll.Function(module, SHARES_TYPE, plan.symbol + SHARES_SUFFIX), entry)
    return LoweredModule(module, buffers, plans)


# ------------------------------------------------------------------------------------ plans


def _plan(task: Task, graph: TaskGraph, machine: Machine) -> TaskPlan:
    views: dict[str, View] = {}
    tensors: list[str] = []
    for binding in task.bindings:
        if binding.region is None:
            continue
        region = binding.region
        decl = graph.tensor(region.tensor)
        full = [1] * len(decl.shape)
        for d in range(len(decl.shape) - 2, -1, -1):
            full[d] = full[d + 1] * decl.shape[d + 1]
        offset = sum(lo * s for (lo, _hi), s in zip(region.box, full, strict=True))
        strides = tuple(s for s, keep in zip(full, region.keep, strict=True) if keep)
        views[binding.param] = View(decl.dtype, region.view_shape, strides, offset)
        if region.tensor not in tensors:
            tensors.append(region.tensor)
    split, split_range = _split_loop(task)
    plan = gemm.match(task, views)
    if plan is not None:
        split_range = plan.split_range
    return TaskPlan(
        task=task,
        symbol=SYMBOL_PREFIX + task.name,
        views=views,
        tensors=tuple(tensors),
        split=split,
        split_range=split_range,
        gemm=plan,
    )


def _split_loop(task: Task) -> tuple[ir.For | None, tuple[int, int] | None]:
    """The loop whose iterations threads share, with its static range, if the task has one.

    It is the outermost parallel loop when the body is only ``let``/``var`` declarations that read
    nothing the task writes, followed by that loop: then each thread can compute the
    declarations itself and run its own share of the iterations.
    """
    body = task.kernel.body
    if not body or not isinstance(body[-1], ir.For) or not body[-1].parallel:
        return None, None
    written = {p.name for p in task.kernel.outputs}
    for stmt in body[:-1]:
        if not isinstance(stmt, ir.Let | ir.VarDecl):
            return None, None
        for node in ir.walk(stmt.value):
            if isinstance(node, ir.Load | ir.Search) and node.tensor in written:
                return None, None
    loop = body[-1]
    static = set(task.kernel.sizes)
    if not (is_static(loop.lo, static) and is_static(loop.hi, static)):
        return None, None
    sizes = task.size_env
    lo, hi = evaluate(loop.lo, sizes), evaluate(loop.hi, sizes)
    return loop, (lo, max(lo, hi))


# ----------------------------------------------------------------------------- declarations


def declare(
    module: ll.Module, plans: tuple[TaskPlan, ...], graph: TaskGraph
) -> tuple[list[ll.Function], list[ll.Function]]:
    """Declare every task's exported entry and internal body."""
    entries, bodies = [], []
    for plan in plans:
        entry = ll.Function(module, ENTRY_TYPE, plan.symbol)
        entry.attributes.add("nounwind")
        args = [PTR] * (len(plan.tensors) + len(_scalar_params(plan))) + [I64, I64]
        body = ll.Function(module, ll.FunctionType(ll.VoidType(), args), plan.symbol + "_body")
        body.linkage = "internal"
        body.attributes.add("alwaysinline")
        body.attributes.add("nounwind")
        for arg in body.args[: len(plan.tensors)]:
            arg.add_attribute("noalias")
        entries.append(entry)
        bodies.append(body)
    return entries, bodies


def _scalar_params(plan: TaskPlan) -> list[tuple[ir.Param, str]]:
    """Kernel scalar parameters bound to graph scalars, with the graph scalar's name."""
    result = []
    for param in plan.task.kernel.params:
        binding = plan.task.binding(param.name)
        if param.is_scalar and binding.scalar is not None:
            result.append((param, binding.scalar))
    return result


# ---------------------------------------------------------------------------------- globals


def define_globals(
    module: ll.Module, plans: tuple[TaskPlan, ...], entries: list[ll.Function]
) -> None:
    count = ll.GlobalVariable(module, I32, "kernelc_num_tasks")
    count.initializer = ll.Constant(I32, len(plans))
    count.global_constant = True
    table_type = ll.ArrayType(PTR, len(plans))
    table = ll.GlobalVariable(module, table_type, "kernelc_tasks")
    table.initializer = ll.Constant(table_type, entries)
    table.global_constant = True
    pair = ll.ArrayType(I64, 2)
    split_type = ll.ArrayType(pair, len(plans))
    ranges = [p.split_range or (0, 0) for p in plans]
    split = ll.GlobalVariable(module, split_type, "kernelc_split")
    split.initializer = ll.Constant(
        split_type, [ll.Constant(pair, [ll.Constant(I64, v) for v in r]) for r in ranges]
    )
    split.global_constant = True


# ----------------------------------------------------------------------------------- bodies


def define_share_runner(runner: ll.Function, entry: ll.Function) -> None:
    runner.attributes.add("nounwind")
    table, counter, ranges, count = runner.args
    b = ll.IRBuilder(runner.append_basic_block("entry"))
    take = b.append_basic_block("take")
    work = b.append_basic_block("work")
    done = b.append_basic_block("done")
    b.branch(take)
    b.position_at_end(take)
    n = b.atomic_rmw("add", counter, ll.Constant(I64, 1), "monotonic")
    b.cbranch(b.icmp_signed("<", n, count), work, done)
    b.position_at_end(work)
    pair = b.mul(n, ll.Constant(I64, 2))
    lo = b.load(b.gep(ranges, [pair], source_etype=I64), typ=I64)
    hi = b.load(b.gep(ranges, [b.add(pair, ll.Constant(I64, 1))], source_etype=I64), typ=I64)
    b.call(entry, [table, lo, hi])
    b.branch(take)
    b.position_at_end(done)
    b.ret_void()


def define_entry(
    plan: TaskPlan,
    entry: ll.Function,
    body: ll.Function,
    buffers: tuple[str, ...],
    graph: TaskGraph,
) -> None:
    """The exported entry: fetch the task's pointers from the buffer table, call the body."""
    b = ll.IRBuilder(entry.append_basic_block("entry"))
    table, lo, hi = entry.args
    args = []
    names = list(plan.tensors) + [scalar for _param, scalar in _scalar_params(plan)]
    for name in names:
        slot = b.gep(table, [ll.Constant(I64, buffers.index(name))], source_etype=PTR)
        args.append(b.load(slot, typ=PTR))
    b.call(body, [*args, lo, hi])
    b.ret_void()


def define_body(plan: TaskPlan, body: ll.Function, graph: TaskGraph, machine: Machine) -> None:
    b = ll.IRBuilder(body.append_basic_block("entry"))
    task = plan.task
    n_tensors = len(plan.tensors)
    by_tensor = dict(zip(plan.tensors, body.args[:n_tensors], strict=True))
    pointers = {
        bnd.param: by_tensor[bnd.region.tensor] for bnd in task.bindings if bnd.region is not None
    }
    names: dict[str, Local] = {}
    for name, value in task.sizes:
        names[name] = Local(
            DType.I32, ll.Constant(I32, value), wide=ll.Constant(I64, value), range=(value, value)
        )
    scalar_args = body.args[n_tensors:-2]
    for (param, _scalar), arg in zip(_scalar_params(plan), scalar_args, strict=True):
        value = b.load(arg, typ=ops.storage_type(param.dtype))
        if param.dtype == DType.BOOL:
            value = b.icmp_unsigned("!=", value, ll.Constant(I8, 0))
        names[param.name] = Local(param.dtype, value)
    for param in task.kernel.params:
        constant = task.binding(param.name).constant
        if param.is_scalar and constant is not None:
            exact = int(constant) if param.dtype.is_int else None
            names[param.name] = Local(
                param.dtype,
                ops.const(param.dtype, constant),
                range=(exact, exact) if exact is not None else None,
            )
    lo, hi = body.args[-2:]
    if plan.gemm is not None:
        gemm.emit(b, plan.gemm, pointers, lo, hi, machine)
        nest = plan.gemm.epilogue
        if nest is not None:
            BodyLowering(b, plan.views, pointers, names, nest, (lo, hi)).block((nest,))
    else:
        lowering = BodyLowering(b, plan.views, pointers, names, plan.split, (lo, hi))
        lowering.block(task.kernel.body)
    b.ret_void()
