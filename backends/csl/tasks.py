"""Task-parallel graphs: each task instance as scalar CSL on a PE of its own.

A graph with a task that is no data-parallel loop nest, matrix product or lookup (the OpenMP
pipeline's per-thread sums and maxima, a sequential recurrence), or one those lowerings refuse,
runs every task as scalar code:

- each kernel becomes one CSL function, called with the offsets of the regions an instance is
  given (instances that differ only in their regions share the function);
- each step of the graph (tasks with no dependences among them: one compute set) is one
  launched function; the k-th task of a step runs on the PE with ``slot`` k (row-major, wrapping
  when the step has more tasks than the grid has PEs), so the tasks of a step run at once;
- every tensor is held whole on every PE. After a step the host (run.py) reads back each task's
  write regions from the PE that ran it and, when a later step uses the tensor, copies the
  assembled tensor to every PE again. That host round trip is the price of the simple
  placement: the report says so, and the modelled cycles count the PEs' work only.

Loads clamp into the region a task was given and out-of-range stores are dropped, the
language's rules, so results equal the reference interpreter's bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kernelc import ir
from kernelc.affine import affine, evaluate
from kernelc.backends.csl.builder import Builder, csl_type
from kernelc.backends.csl.constants import scalar_value
from kernelc.backends.csl.lowered import Lowered, Rect
from kernelc.backends.csl.scalar import Place, ScalarGen, fconst
from kernelc.csl import charges, machine
from kernelc.csl import model as m
from kernelc.dot import steps as step_names
from kernelc.forms.blocks import DimMap, Layout
from kernelc.graph import Task, TaskGraph
from kernelc.types import DType


def steps(graph: TaskGraph) -> list[list[Task]]:
    """The graph's tasks in steps (each depends only on earlier steps), in source order."""
    by_name = {t.name: t for t in graph.tasks}
    return [[by_name[n] for n in step] for step in step_names(graph)]


def widest_step(graph: TaskGraph) -> int:
    return max((len(s) for s in steps(graph)), default=1)


def plan(graph: TaskGraph) -> dict[str, Layout]:
    """Every tensor whole on every PE."""
    return {
        t.name: Layout(t.name, t.dtype, tuple(DimMap(n) for n in t.shape)) for t in graph.tensors
    }


@dataclass(frozen=True)
class Gather:
    """A region a task wrote, to be read back from the PE that ran it."""

    tensor: str
    x: int
    y: int
    box: tuple[tuple[int, int], ...]


@dataclass
class StepCode:
    launch: str
    tasks: list[str]
    cycles: int  # modelled cycles of the busiest PE
    gathers: list[Gather] = field(default_factory=list)
    resend: list[str] = field(default_factory=list)  # tensors later steps use, sent back to all
    describe: str = ""
    output_rects: dict[str, Rect] = field(default_factory=dict)  # run.py gathers the outputs


@dataclass(frozen=True)
class _Signature:
    """What instances sharing one CSL function have in common."""

    kernel: str
    sizes: tuple[tuple[str, int], ...]
    tensors: tuple[tuple[str, str], ...]  # kernel parameter -> graph tensor
    views: tuple[tuple[str, tuple[int, ...]], ...]  # kernel parameter -> region view shape
    kept: tuple[tuple[str, tuple[bool, ...]], ...]  # kernel parameter -> dimensions the view has


def _signature(task: Task) -> _Signature:
    regions = [b for b in task.bindings if b.region is not None]
    return _Signature(
        task.kernel.name,
        task.sizes,
        tuple((b.param, b.region.tensor) for b in regions),
        tuple((b.param, b.region.view_shape) for b in regions),
        tuple((b.param, b.region.keep) for b in regions),
    )


def lower(graph: TaskGraph, layouts: dict[str, Layout], b: Builder) -> list[StepCode]:
    slot = b.pe_param(
        "slot",
        "i32",
        m.add(m.Name("x"), m.mul(m.Name("y"), m.Name("width"))),
        "this PE's place in row-major order: the k-th task of a step runs where slot = k % PEs",
    )
    pes = b.width * b.height
    functions: dict[_Signature, tuple[str, list[str], int]] = {}
    codes: list[StepCode] = []
    plan_steps = steps(graph)
    for number, step in enumerate(plan_steps):
        per_slot: dict[int, list[m.Stmt]] = {}
        busy: dict[int, int] = {}
        code = StepCode("", [t.name for t in step], 0)
        for k, task in enumerate(step):
            key = _signature(task)
            if key not in functions:
                functions[key] = _function(task, graph, layouts, b)
            fn, order, cycles = functions[key]
            where = k % pes
            args = [_argument(task, name, graph, layouts) for name in order]
            per_slot.setdefault(where, []).extend(
                [
                    m.Comment(f"task {task.name}: " + _regions(task)),
                    m.ExprStmt(m.call(fn, *args)),
                ]
            )
            busy[where] = busy.get(where, 0) + cycles + 8
            for region in (r for r in task.writes if not r.is_empty):
                code.gathers.append(
                    Gather(region.tensor, where % b.width, where // b.width, region.box)
                )
        later = {
            r.tensor for s in plan_steps[number + 1 :] for t in s for r in (*t.reads, *t.writes)
        }
        code.resend = sorted({g.tensor for g in code.gathers} & later)
        launch = b.fresh(f"f_step{number}")
        body: list[m.Stmt] = [
            m.Comment(
                f"step {number}: {len(step)} task instance(s); the k-th runs on the PE whose slot "
                f"is k % {pes}"
            )
        ]
        for where in sorted(per_slot):
            body.append(m.If(m.Binary("==", m.Name(slot), m.lit(where)), tuple(per_slot[where])))
        body.append(m.ExprStmt(m.call(m.member("sys_mod", "unblock_cmd_stream"))))
        b.code(m.FnDecl(launch, (), m.Named("void"), tuple(body)))
        b.launch(launch)
        code.launch = launch
        code.cycles = max(busy.values(), default=0) + 10
        kernels = sorted({t.kernel.name for t in step})
        code.describe = (
            f"step {number} of the task graph, {len(step)} task instance(s) of "
            + ", ".join(f"'{k}'" for k in kernels)
            + f" as scalar code on {min(len(step), pes)} PE(s) at once; the host then reads "
            f"back the {len(code.gathers)} region(s) they wrote"
            + (f" and sends {', '.join(code.resend)} to every PE again" if code.resend else "")
            + " (host transfers, not in the modelled cycles)"
        )
        codes.append(code)
    return codes


def _regions(task: Task) -> str:
    reads = ", ".join(str(r) for r in task.reads) or "nothing"
    writes = ", ".join(str(r) for r in task.writes) or "nothing"
    return f"reads {reads}; writes {writes}"


def _argument(task: Task, name: str, graph: TaskGraph, layouts: dict[str, Layout]) -> m.Expr:
    """The value an instance passes for one parameter of its kernel's function."""
    binding = task.binding(name)
    if binding.region is not None:
        pitches = layouts[binding.region.tensor].pitches
        return m.lit(sum(lo * p for (lo, _hi), p in zip(binding.region.box, pitches, strict=True)))
    param = task.kernel.param(name)
    value = scalar_value(graph, binding)
    return fconst(value, param.dtype)


def _function(
    task: Task, graph: TaskGraph, layouts: dict[str, Layout], b: Builder
) -> tuple[str, list[str], int]:
    """(CSL function, the kernel parameters it takes in order, modelled cycles of one call)."""
    kernel = task.kernel
    tensors = {bd.param: bd.region for bd in task.bindings if bd.region is not None}
    order: list[str] = []
    params: list[tuple[str, m.Type]] = []
    offsets: dict[str, m.Expr] = {}
    names: dict[str, m.Expr] = {}
    for p in kernel.all_params:
        arg = b.fresh(f"{p.name}_at" if not p.is_scalar else p.name)
        order.append(p.name)
        if p.is_scalar:
            params.append((arg, m.Named(csl_type(p.dtype))))
            names[p.name] = m.Name(arg)
        else:
            params.append((arg, m.Named("i32")))
            offsets[p.name] = m.Name(arg)

    def place(param: str, indices, proven, node) -> Place:
        region = tensors[param]
        pitches = layouts[region.tensor].pitches
        kept = [d for d, k in enumerate(region.keep) if k]
        extents = region.view_shape
        if 0 in extents and not isinstance(node, ir.Store):
            return Place(_zero(b, layouts[region.tensor].dtype), m.Int(0))  # gathers 0
        flat: m.Expr = offsets[param]
        guard = None
        for j, (idx, ok) in enumerate(zip(indices, proven, strict=True)):
            if not ok:
                if isinstance(node, ir.Store):
                    inside = m.Binary(
                        "and", m.Binary(">=", idx, m.Int(0)), m.Binary("<", idx, m.lit(extents[j]))
                    )
                    guard = inside if guard is None else m.Binary("and", guard, inside)
                else:
                    idx = sgen.clamped(idx, extents[j])
            flat = m.add(flat, m.mul(idx, m.lit(pitches[kept[j]])))
        return Place(b.tensor_arrays[region.tensor], flat, guard)

    sgen = ScalarGen(b, place, shapes={p: r.view_shape for p, r in tensors.items()})
    for n, v in task.size_env.items():
        sgen.names[n] = m.lit(v)
        sgen.ranges[n] = (v, v)
    sgen.names.update(names)
    body = sgen.block(kernel.body)
    fn = b.fresh(f"t_{kernel.name}")
    doc = m.Comment(
        f"kernel {kernel.name}: its tensors are the regions at the given element offsets of "
        "the whole tensors every PE holds"
    )
    b.code(m.FnDecl(fn, tuple(params), m.Named("void"), (doc, *body)))
    return fn, order, _Model(task.size_env, dict(sgen.shapes)).block(kernel.body)


def _zero(b: Builder, dtype: DType) -> str:
    """A one-element array holding 0: what a gather from an empty region reads."""
    name = f"kc_zero_{csl_type(dtype)}"
    if name not in b.arrays:
        b.array(name, dtype, 1, "what a gather from an empty region reads")
    return name


# ------------------------------------------------------------------------------ cost model


HELPER_CYCLES = 8  # a call of a semantics helper (clamp, min/max/abs, C division, float to int)


@dataclass
class _Model:
    """Modelled cycles of scalar code as the simulator charges it: one per operator, load and
    call, two per loop iteration, a helper call per gather whose index no static loop bounds;
    a data-dependent trip count is taken as half the extent of the dimension its index walks
    (1 when it walks none), and ``if`` as its longer branch."""

    sizes: dict[str, int]
    shapes: dict[str, tuple[int, ...]]
    bounded: set[str] = field(default_factory=set)  # loop indices with static bounds

    def block(self, body: tuple[ir.Stmt, ...]) -> int:
        total = 0
        for s in body:
            total += 1 + sum(self.expr(e) for e in ir.own_exprs(s))
            match s:
                case ir.For(var=v, lo=lo, hi=hi, body=inner):
                    trips = self._loop(lo, hi, v, inner)
                    total += trips * (2 + self.block(inner))
                case ir.If(then=then, orelse=orelse):
                    total += max(self.block(then), self.block(orelse))
        return total

    def expr(self, e: ir.Expr) -> int:
        match e:
            case ir.Const() | ir.Name() | ir.Slice():
                return 0
            case ir.Reduce():
                trips = self._loop(e.lo, e.hi, e.var, (e.body,))
                return 2 + trips * (4 + self.expr(e.body))
            case ir.Search():
                axis = next(d for d, i in enumerate(e.indices) if isinstance(i, ir.Slice))
                return 16 * (self.shapes[e.tensor][axis].bit_length() + 1)
            case ir.Load():
                # the element, the region offset, per dimension a stride and a sum, and a
                # clamp per index that no static loop bounds
                own = 2 + 2 * len(e.indices)
                own += HELPER_CYCLES * sum(1 for i in e.indices if not self._bounded(i))
            case ir.Intrinsic(fn="min" | "max" | "abs") | ir.Binary(op="/" | "%") if e.dtype.is_int:
                own = HELPER_CYCLES
            case ir.Intrinsic(fn="min" | "max" | "abs" | "floor"):
                own = HELPER_CYCLES
            case ir.Cast(to=to) if to.is_int and e.operand.dtype.is_float:
                own = HELPER_CYCLES
            case ir.Intrinsic(fn="sqrt" | "exp" | "log" as fn):
                own = 1 + charges.routine_cycles(f"{fn}_f32")  # the call and the routine
            case _:
                own = 1
        return own + sum(self.expr(c) for c in ir.children(e))

    def _bounded(self, index: ir.Expr) -> bool:
        form = affine(index)
        return form is not None and form.names <= self.bounded | self.sizes.keys()

    def _loop(self, lo, hi, var: str, inner) -> int:
        a, b = affine(lo), affine(hi)
        if a is not None and b is not None and (a.names | b.names) <= self.sizes.keys():
            self.bounded.add(var)
            return max(evaluate(hi, self.sizes) - evaluate(lo, self.sizes), 0)
        self.bounded.discard(var)
        walked = [
            self.shapes[n.tensor][d] // 2
            for n in (x for node in inner for x in ir.walk(node))
            if isinstance(n, ir.Load | ir.Store)
            for d, i in enumerate(n.indices)
            if isinstance(i, ir.Name) and i.name == var
        ]
        return max(walked, default=1)


def too_big(graph: TaskGraph, arch: machine.Arch, culprit: Task, needed: int, reason: str):
    """The user error when a scalar task graph's tensors and code do not fit one PE."""
    from kernelc.diagnostics import KernelcError

    total = sum(t.nbytes for t in graph.tensors)
    return KernelcError(
        f"'{graph.name}' runs on csl as scalar tasks ({reason}), which hold every tensor whole "
        "on each PE: "
        f"{needed:,} bytes per PE ({total:,} of tensors, the rest modelled code), more than the "
        f"{arch.pe_memory:,} bytes of a PE; reduce the sizes",
        culprit.span,
    )


class StepsLowering:
    """The cycle model of scalar task steps: the busiest PE's modelled work per step."""

    def cycles(self, code: StepCode, low: Lowered) -> dict[str, int]:
        return {"tasks": code.cycles}


STEPS = StepsLowering()
