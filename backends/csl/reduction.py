"""Reductions along a dimension (softmax, norms, row sums) on csl: kept index over all PEs.

The kept index is split in blocks over all PEs (row-major), the folded dimension stays whole on
each PE, so every fold is local and needs no fabric traffic. A fold runs column by column: its
body is first evaluated over the PE's whole block into a scratch block (DSD operations, vector.py),
then one ``@fadds``/``@fmaxs`` per column adds it into a vector of accumulators, one per kept
index. That is the kernel's own left-to-right order for every kept index, so sums are bit for bit
the reference interpreter's (no reordering tolerance is needed), and max/min keep ``max=``'s
NaN-ignoring semantics (``@fmaxs`` is IEEE maxNum; min is max of the negations, negated).
Per-index values (lets) and stores are then DSD operations over the block.

The other plan (rowsplit.py) cuts the folded dimension over the PE columns as well: each PE
folds its part of its rows, and the partials are combined along the PE row over the fabric
between phases of the compute. The plan takes whichever of the two models fewer cycles on the
grid it is given (both are lowered and modelled, the task alone, into scratch programs).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from kernelc import ir
from kernelc.affine import affine, evaluate, is_static
from kernelc.backends.csl.builder import Builder
from kernelc.backends.csl.cost import ops_cycles
from kernelc.backends.csl.lowered import Lowered, Misfit, Rect, Refusal
from kernelc.backends.csl.placement import (
    Shared,
    check_whole,
    collectives,
    merge_layout,
    split_params,
    tensor_of,
)
from kernelc.backends.csl.rowsplit import (
    Combine,
    fold_dims,
    gather,
    reduce,
    split_layouts,
    window_counts,
)
from kernelc.backends.csl.scalar import Place, ScalarGen
from kernelc.backends.csl.vector import Access, Space, VectorGen
from kernelc.csl import machine
from kernelc.csl import model as m
from kernelc.forms.blocks import DimMap, Layout, Split
from kernelc.forms.reduction import Fold, Reduction, RowLet
from kernelc.graph import Task, TaskGraph
from kernelc.types import DType

PASS_OVERHEAD = 6  # modelled scalar work around one pass of DSD operations (loop step, offsets)


class StridedSpace(Space):
    """A space over the kept index whose operands step a whole row per element: mem4d DSDs,
    since a mem1d stride is an i8 (csl.md, pitfall 9)."""

    def kind(self) -> str:
        return "mem4d_dsd"


@dataclass(frozen=True)
class Segment:
    """A list of DSD operations run ``passes`` times over ``elements`` elements each."""

    ops: tuple[tuple[str, int], ...]
    passes: int
    elements: int


@dataclass
class ReductionCode:
    launch: str
    segments: list[Segment]
    describe: str = ""
    output_rects: dict[str, Rect] = field(default_factory=dict)  # outputs cover the rectangle
    combines: list[Combine] = field(default_factory=list)  # folds combined along PE rows


def _whole_rows(task: Task, form: Reduction, graph: TaskGraph, w: int, h: int) -> list[Layout]:
    """Every tensor split along the dimension the kept index names, over all PEs."""
    out = []
    for param, dim in form.kept_dims:
        decl = graph.tensor(tensor_of(task, param))
        dims = [DimMap(n) for n in decl.shape]
        dims[dim] = DimMap(decl.shape[dim], "xy", Split(decl.shape[dim], w * h))
        out.append(Layout(decl.name, decl.dtype, tuple(dims)))
    return out


def _fits(layouts: dict[str, Layout], plan: list[Layout]) -> bool:
    """Whether a plan agrees with the placements the consumers planned before it."""
    return all(lay.tensor not in layouts or layouts[lay.tensor].same_placement(lay) for lay in plan)


def _modelled(
    task: Task, form: Reduction, graph: TaskGraph, plan: list[Layout], w: int, h: int
) -> int | None:
    """The modelled cycles of the task alone lowered with these placements (a scratch program);
    None when the lowering refuses it."""
    b = Builder(machine.WSE2, w, h, "scratch.csl")
    lays = {lay.tensor: lay for lay in plan}
    for lay in plan:
        b.tensor_arrays[lay.tensor] = b.array(lay.tensor, lay.dtype, lay.local_size)
    code = lower_reduction(task, form, graph, lays, b, Shared())
    if not isinstance(code, ReductionCode):
        return None
    return sum(REDUCTION.cycles(code, None).values())


def plan_reduction(
    task: Task, form: Reduction, graph: TaskGraph, layouts: dict[str, Layout], w: int, h: int
) -> Refusal | None:
    """Whole rows per PE, or the folded dimension cut over the PE columns (rowsplit.py),
    whichever models fewer cycles here and agrees with the placements already planned."""
    refused = check_whole(task, graph)
    if refused is not None:
        return refused
    plans = [_whole_rows(task, form, graph, w, h)]
    folded = fold_dims(task, form, graph, w)
    if folded is not None:
        plans.append(split_layouts(task, form, graph, folded, w, h))
    fitting = [p for p in plans if _fits(layouts, p)]
    if len(fitting) == 2:
        cycles = [_modelled(task, form, graph, p, w, h) for p in fitting]
        if cycles[1] is not None and (cycles[0] is None or cycles[1] < cycles[0]):
            fitting = fitting[1:]
    for lay in (fitting or plans)[0]:
        refused = merge_layout(layouts, lay, task.span)
        if refused is not None:
            return refused
    return None


def _subst(e, names: dict[str, ir.Expr]):
    """``e`` with the named locals replaced (folds and lets become loads of their vectors)."""
    if isinstance(e, ir.Name) and e.name in names:
        return names[e.name]
    changes = {}
    for f in fields(e):
        value = getattr(e, f.name)
        if isinstance(value, tuple) and value and hasattr(value[0], "span"):
            changes[f.name] = tuple(_subst(v, names) for v in value)
        elif hasattr(value, "span") and f.name != "span":
            changes[f.name] = _subst(value, names)
    return replace(e, **changes) if changes else e


def _index_used_as_value(e: ir.Expr, indices: set[str]) -> bool:
    if isinstance(e, ir.Name):
        return e.name in indices
    if isinstance(e, ir.Load):
        return False
    return any(_index_used_as_value(c, indices) for c in ir.children(e) if c is not None)


@dataclass(frozen=True)
class Window:
    """Where a loop over the folded dimension runs on a PE: its iteration count (a literal, or
    a per-PE parameter when the dimension is cut over the PE columns), the local index of its
    first iteration, and the fewest and most iterations a PE has."""

    count: m.Expr
    first: m.Expr
    smallest: int
    largest: int


def lower_reduction(
    task: Task,
    form: Reduction,
    graph: TaskGraph,
    layouts: dict[str, Layout],
    b: Builder,
    shared: Shared,
) -> ReductionCode | Refusal | Misfit:
    kname = task.kernel.name
    sizes = task.size_env
    kept = form.kept
    dims = dict(form.kept_dims)
    tensor = {p: tensor_of(task, p) for p in dims}
    dtypes = {n.dtype for n in ir.walk_body(form.loop.body) if isinstance(n, ir.Load)}
    dtypes |= {layouts[t].dtype for t in tensor.values()}
    if dtypes != {DType.F32}:
        return b.refuse(
            f"the csl reduction lowering of '{kname}' handles f32 tensors only", task.span
        )
    kept_split = {layouts[t].dims[dims[p]] for p, t in tensor.items()}
    extents = {dm.extent for dm in kept_split}
    if len(extents) != 1:
        return b.refuse(
            f"'{kname}' indexes dimensions of different lengths with '{kept}'", form.loop.span
        )
    dm = next(iter(kept_split))
    split = dm.axis == "y"  # the folded dimension cut over the PE columns (rowsplit.py)
    folded = (  # the folded dimension's placement, when it is cut
        next(layouts[t].dims[1 - dims[p]] for p, t in sorted(tensor.items())) if split else None
    )
    lo, hi = evaluate(form.loop.lo, sizes), evaluate(form.loop.hi, sizes)
    sp = split_params(b, shared, dm)
    cnt = b.pe_param(
        f"n_{kept}",
        "i16",
        m.call("window_count", m.lit(lo), m.lit(hi), m.Name(sp.start), m.Name(sp.size)),
        f"iterations of '{kept}' ({lo} .. {hi}) in this PE's block, and the first one's place",
    )
    off = b.pe_param(f"o_{kept}", "i16", m.call("window_offset", m.lit(lo), m.Name(sp.start)))
    rows = max(min(hi - lo, dm.split.largest), 1)
    kept_csl = b.fresh(kept)
    vectors: dict[str, tuple[str, tuple[int, ...]]] = {}  # "%name" -> its array and pitches
    replaced: dict[str, ir.Expr] = {}
    segments: list[Segment] = []
    phases: list[list[m.Stmt]] = [[]]  # the compute, cut where partials are combined
    tails: list[tuple[m.Stmt, ...]] = []  # what ends each phase but the last (a combine's start)
    resumes: list[str] = []  # the task ID of each phase after the first
    combines: list[Combine] = []
    windows: dict[tuple[int, int], Window] = {}
    pe_flags: dict[str, str] = {}

    def flag(base: str, type_: str, value: m.Expr, comment: str) -> str:
        if base not in pe_flags:
            pe_flags[base] = b.pe_param(base, type_, value, comment)
        return pe_flags[base]

    def window(flo: int, fhi: int, var: str) -> Window:
        if not split:
            n = max(fhi - flo, 0)
            return Window(m.lit(n), m.lit(flo), n, n)
        if (flo, fhi) not in windows:
            fsp = split_params(b, shared, folded)
            few, most = window_counts(folded.split, flo, fhi)
            count = b.pe_param(
                f"n_{var}",
                "i16",
                m.call("window_count", m.lit(flo), m.lit(fhi), m.Name(fsp.start), m.Name(fsp.size)),
                f"iterations of '{var}' ({flo} .. {fhi}) in this PE's columns, and the first "
                "one's place",
            )
            first = b.pe_param(
                f"o_{var}", "i16", m.call("window_offset", m.lit(flo), m.Name(fsp.start))
            )
            windows[(flo, fhi)] = Window(m.Name(count), m.Name(first), few, most)
        return windows[(flo, fhi)]

    def extent_of(lo_e: ir.Expr, hi_e: ir.Expr, span) -> tuple[int, int]:
        if not (is_static(lo_e, sizes.keys()) and is_static(hi_e, sizes.keys())):
            b.refuse("a fold whose range depends on the kept index", span)
            return 0, 0
        return evaluate(lo_e, sizes), evaluate(hi_e, sizes)

    def access_for(inner: str | None, inner_csl: str | None, win: Window | None, outer: bool):
        """Operands over (kept[, inner]); ``outer``: ``inner`` is a scalar loop around the ops."""

        def access(tname: str, indices: tuple[ir.Expr, ...], node) -> Access:
            local = tname in vectors  # a fold's vector or terms: indexed from 0 locally
            if local:
                array, pitches = vectors[tname]
            else:
                array = b.tensor_arrays[tensor[tname]]
                pitches = layouts[tensor[tname]].pitches
            static: m.Expr = m.Int(0)
            runtime: m.Expr | None = None
            for k, idx in enumerate(indices):
                form_ = affine(idx)
                if form_ is None:
                    b.refuse("a data-dependent index in a reduction", idx.span)
                    continue
                pitch = pitches[k]
                term: m.Expr = m.lit(form_.const)
                start = m.Int(0) if local or win is None else win.first
                for name, coef in form_.terms:
                    if name == kept:
                        at = m.Name(kept_csl) if local else m.add(m.Name(kept_csl), m.Name(off))
                        term = m.add(term, m.mul(m.lit(coef), at))
                    elif name == inner and not outer:
                        term = m.add(term, m.mul(m.lit(coef), m.add(m.Name(inner_csl), start)))
                    elif name == inner:
                        term = m.add(term, m.mul(m.lit(coef), start))
                        piece = m.mul(m.mul(m.lit(coef), m.Name(inner_csl)), m.Int(pitch))
                        runtime = piece if runtime is None else m.add(runtime, piece)
                    else:
                        b.refuse(f"'{name}' in an index of a reduction", idx.span)
                static = m.add(static, m.mul(term, m.Int(pitch)))
            return Access(array, static, runtime)

        return access

    def place(tname, indices, proven, node) -> Place:
        b.refuse("a tensor read that does not vary with the kept index", node.span)
        return Place(tname, m.Int(0))

    def run(
        body: tuple[ir.Stmt, ...], inner: str | None, win: Window | None, outer: bool
    ) -> list[m.Stmt]:
        """DSD code for ``body`` over (kept, inner) (one pass) or kept in a loop over inner."""
        inner_csl = b.fresh(inner) if inner is not None else None
        vec_inner = inner is not None and not outer
        most = win.largest if win is not None else 0
        space = (Space if vec_inner else StridedSpace)(
            (kept, inner) if vec_inner else (kept,),
            (kept_csl, inner_csl) if vec_inner else (kept_csl,),
            (m.Name(cnt), win.count) if vec_inner else (m.Name(cnt),),
            (rows, max(most, 1)) if vec_inner else (rows,),
        )
        sgen = ScalarGen(b, place, shapes={p: graph.tensor(t).shape for p, t in tensor.items()})
        for name, value in sizes.items():
            sgen.names.setdefault(name, m.lit(value))
        gen = VectorGen(b, space, DType.F32, access_for(inner, inner_csl, win, outer), sgen)
        subst = tuple(_subst(s, replaced) for s in body)
        idx = {kept} | ({inner} if inner else set())
        for s in subst:
            values = [s.value] if isinstance(s, ir.Let | ir.Store) else []
            if any(_index_used_as_value(v, idx) for v in values):
                b.refuse("a loop index used as a value in a reduction", s.span)
        code = gen.body(subst)
        if outer:
            code = [m.For(m.builtin("range", m.Name("i16"), win.count), inner_csl, tuple(code))]
        elif vec_inner and win.smallest == 0:
            code = [m.If(m.Binary(">", win.count, m.Int(0)), tuple(code))]
        passes, elements = (
            (most, rows) if outer else (1, rows * max(most, 1) if vec_inner else rows)
        )
        segments.append(Segment(tuple(gen.ops), passes, elements))
        return code

    def vector(name: str, shape: tuple[int, ...], what: str) -> str:
        """A per-PE array for a fold's accumulators or terms, named where no tensor can be."""
        key = f"%{name}"
        size = 1
        for extent in shape:
            size *= extent
        pitches = (shape[1], 1) if len(shape) == 2 else (1,)
        vectors[key] = (b.array(f"{name}_v", DType.F32, size, what), pitches)
        return key

    def row(key: str, span) -> ir.Load:
        return ir.Load(
            tensor=key,
            indices=(ir.Name(name=kept, span=span, dtype=DType.I32),),
            span=span,
            dtype=DType.F32,
        )

    def set_row(key: str, acc: ir.Load, value: ir.Expr, span) -> tuple[ir.Store]:
        return (ir.Store(tensor=key, indices=acc.indices, op="=", value=value, span=span),)

    for step in form.steps:
        out = phases[-1]
        if isinstance(step, Fold):
            span = step.body.span
            flo, fhi = extent_of(step.lo, step.hi, span)
            win = window(flo, fhi, step.var)
            key = vector(
                step.name, (rows,), f"'{step.name}' ({step.op} over '{step.var}') per '{kept}'"
            )
            acc = row(key, span)
            neg = step.op == "min"

            def negate(e: ir.Expr, neg: bool = neg) -> ir.Expr:
                return ir.Unary(op="-", operand=e, span=e.span, dtype=DType.F32) if neg else e

            init = (
                step.init
                if step.init is not None
                else ir.Const(value=0.0, span=span, dtype=DType.F32)
            )
            if split and step.init is not None:
                # column 0 holds what the init reads; the others start from the identity
                first = flag(
                    "first_column",
                    "bool",
                    m.Binary("==", m.Name("x"), m.Int(0)),
                    "whether this PE is in column 0, where a fold's init is evaluated",
                )
                identity = ir.Const(
                    value=-0.0 if step.op == "sum" else float("nan"), span=span, dtype=DType.F32
                )
                own = run(set_row(key, acc, negate(init), span), None, None, False)
                other = run(set_row(key, acc, identity, span), None, None, False)
                segments.pop()  # one of the two runs, at the same cost
                out.append(m.If(m.Name(first), tuple(own), tuple(other)))
            else:
                out.extend(run(set_row(key, acc, negate(init), span), None, None, False))
            body = step.body
            if win.largest and (neg or not isinstance(_subst(body, replaced), ir.Load)):
                scratch = vector(
                    f"{step.name}_terms",
                    (rows, win.largest),
                    f"the terms of '{step.name}', per '{kept}' and '{step.var}'",
                )
                var = ir.Name(name=step.var, span=span, dtype=DType.I32)
                body = ir.Load(
                    tensor=scratch, indices=(acc.indices[0], var), span=span, dtype=DType.F32
                )
                terms = (
                    ir.Store(
                        tensor=scratch,
                        indices=body.indices,
                        op="=",
                        value=negate(step.body),
                        span=span,
                    ),
                )
                out.extend(run(terms, step.var, win, False))
            if win.largest:
                combined = (
                    ir.Binary(op="+", lhs=acc, rhs=body, span=span, dtype=DType.F32)
                    if step.op == "sum"
                    else ir.Intrinsic(fn="max", args=(acc, body), span=span, dtype=DType.F32)
                )
                out.extend(run(set_row(key, acc, combined, span), step.var, win, True))
            if split:
                resume = b.task_id(
                    f"{kname}_phase{len(phases)}",
                    f"{task.name} goes on with '{step.name}' combined",
                )
                if step.op == "sum":
                    total = vector(f"{step.name}_all", (rows,), f"'{step.name}' of the whole row")
                    emitted = reduce(b, step.name, vectors[key][0], vectors[total][0], rows, resume)
                    replaced[step.name] = row(total, span)
                else:
                    column = flag(
                        "column", "i16", m.Name("x"), "this PE's column: its partials' slot"
                    )
                    emitted = gather(b, step.name, vectors[key][0], rows, cnt, column, resume, neg)
                    replaced[step.name] = acc
                tails.append(emitted.tail)
                resumes.append(resume)
                combines.append(emitted.combine)
                phases.append(list(emitted.head))
                continue
            if neg:
                out.extend(run(set_row(key, acc, negate(acc), span), None, None, False))
            replaced[step.name] = acc
        elif isinstance(step, RowLet):
            span = step.value.span
            key = vector(step.name, (rows,), f"'{step.name}' per '{kept}'")
            acc = row(key, span)
            out.extend(run(set_row(key, acc, step.value, span), None, None, False))
            replaced[step.name] = acc
        elif step.loop is None:
            out.extend(run(step.body, None, None, False))
        else:
            jlo, jhi = extent_of(step.loop.lo, step.loop.hi, step.loop.span)
            out.extend(run(step.body, step.loop.var, window(jlo, jhi, step.loop.var), False))
    compute_id = b.task_id(f"{kname}_compute", f"compute of task {task.name}")
    unblock = m.ExprStmt(m.call(m.member("sys_mod", "unblock_cmd_stream")))
    if split:
        collectives(b, shared)
    for k, (code, task_id) in enumerate(zip(phases, [compute_id, *resumes], strict=True)):
        name = b.fresh(f"{kname}_compute" if k == 0 else f"{kname}_phase{k}")
        if not split:
            what = "folds column by column, then element-wise, over this PE's rows"
        elif k == 0:
            what = "this PE's part of the first fold, column by column"
        else:
            what = f"phase {k}, once '{combines[k - 1].fold}' is combined along the PE row"
        body: list[m.Stmt] = [m.Comment(f"{kname}: {what}")]
        if code:
            body.append(m.If(m.Binary(">", m.Name(cnt), m.Int(0)), tuple(code)))
        body.extend(tails[k] if k < len(tails) else (unblock,))
        b.code(m.TaskDecl(name, (), tuple(body)))
        b.bind(name, task_id)
    launch = b.fresh(f"f_{task.name}")
    start = (m.ExprStmt(m.call(m.member("mpi_x", "init"))),) if split else ()
    b.code(
        m.FnDecl(
            launch,
            (),
            m.Named("void"),
            (
                m.Comment(f"launched by the host: task {task.name} ({kname})"),
                *start,
                m.ExprStmt(m.builtin("activate", m.Name(compute_id))),
            ),
        )
    )
    b.launch(launch)
    folds = ", ".join(f"{f.op} '{f.name}'" for f in form.folds)
    ops = sum(len(s.ops) for s in segments)
    if split:
        describe = (
            f"'{kept}' in blocks over the PE rows, the folded dimension over the PE columns; "
            f"folds ({folds}) column by column on each PE's part, {ops} DSD operation(s), the "
            "partials combined along each PE row with <collectives_2d> (sums: reduce_fadds and "
            "a broadcast; max/min: a broadcast per column, folded in order)"
        )
    else:
        describe = (
            f"'{kept}' in blocks over all PEs, the folded dimension whole on each PE; "
            f"folds ({folds}) column by column, {ops} DSD operation(s) in all, no fabric traffic"
        )
    code = ReductionCode(launch, segments, describe, combines=combines)
    return code if b.refused is None else b.refused


class ReductionLowering:
    """Reductions along a dimension: whole rows per PE, or rows cut over the PE columns with the
    partial folds combined over the fabric, whichever models faster on the grid."""

    def plan(self, task, form: Reduction, graph, layouts, width, height) -> Refusal | None:
        return plan_reduction(task, form, graph, layouts, width, height)

    def lower(
        self, task, index, form: Reduction, graph, layouts, b, shared
    ) -> ReductionCode | Refusal | Misfit:
        return lower_reduction(task, form, graph, layouts, b, shared)

    def cycles(self, code: ReductionCode, low: Lowered | None) -> dict[str, int]:
        compute = sum(
            s.passes * (ops_cycles(list(s.ops), s.elements) + PASS_OVERHEAD) for s in code.segments
        )
        parts = {"compute": compute + 8}
        if code.combines:
            parts["combine"] = sum(c.cycles() for c in code.combines)
        return parts

    def fewest_pes(self, task, form, graph, arch: machine.Arch, planner) -> int:
        return 1


REDUCTION = ReductionLowering()
