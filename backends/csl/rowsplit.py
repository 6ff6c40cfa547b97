"""A reduction's folded dimension cut over the PE columns, the partial folds combined over the
fabric (the ``Reduction`` lowering's second plan, next to whole rows per PE).

The kept index is split over the PE rows and the folded dimension over the PE columns, so a PE
holds a rectangle of the tensors. Each PE folds its part of every row, in the kernel's order;
the PEs of a PE row then combine their partials with ``<collectives_2d>`` along x, and every PE
gets the combined value back for the element-wise work that follows:

- a ``sum`` by ``mpi_x.reduce_fadds`` into column 0, then ``mpi_x.broadcast`` from it. The
  partial sums are added in another order than the interpreter's left-to-right one, so sums are
  not bit for bit (docs/CSL.md gives the bound);
- a ``max=``/``min=`` by gathering every column's partial on every PE, one ``mpi_x.broadcast``
  per column (the library has no max reduction), then folding the partials left to right. With
  NaN, the identity of the NaN-ignoring maximum, where a column starts, that is exactly the
  kernel's fold: bit for bit, NaN included (which sign a tie of +0 and -0 keeps aside: see
  docs/CSL.md).

A fold's init is evaluated on column 0 only (which holds the elements it may read); the other
columns start from the identity. ``fold_dims`` says whether a task can be cut this way.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernelc import ir
from kernelc.affine import evaluate, is_static
from kernelc.backends.csl.builder import Builder
from kernelc.backends.csl.placement import tensor_of
from kernelc.csl import machine
from kernelc.csl import model as m
from kernelc.forms.blocks import DimMap, Layout, Split
from kernelc.forms.reduction import Fold, Reduction, RowLet
from kernelc.graph import Task, TaskGraph
from kernelc.types import DType

# modelled cycles around one collective call as the simulator charges the emitted statements:
# the call and its arguments, the callback task's switch and statements
GATHER_ROUND_CYCLES = 13  # one broadcast of the gather and the task that issues the next
REDUCE_CYCLES = 14  # reduce_fadds, its callback task, the broadcast call
BROADCAST_CYCLES = 10  # the broadcast back and the next phase's task switch
FOLD_PASS_CYCLES = 6  # a pass of the loop folding the gathered partials (offset, loop step)


@dataclass(frozen=True)
class Gather:
    """A max or min fold's partials gathered on every PE of a row (a broadcast per column) and
    folded in column order."""

    fold: str  # the fold's name
    rows: int  # values per PE (the largest block of the kept index)
    width: int  # PEs along the row
    negated: bool  # a min: the partials are negated maxima, negated back after the fold

    def cycles(self) -> int:
        """Modelled cycles on the slowest PE, from the first call to the next phase's end of
        the fold: the broadcasts, each issued by the callback of the one before, overlap the
        words' travel, so the row's ``w - 1`` hops count once; then one ``@fmovs``, ``w - 1``
        passes of ``@fmaxs`` (and a ``@fnegs`` for a min)."""
        setup, w = machine.DSD_SETUP_CYCLES, self.width
        rounds = w * (setup + self.rows + GATHER_ROUND_CYCLES) + w - 1
        return rounds + (w + self.negated) * (setup + self.rows) + (w - 1) * FOLD_PASS_CYCLES


@dataclass(frozen=True)
class SumReduce:
    """A sum's partials added into column 0 (``reduce_fadds``), which broadcasts the total."""

    fold: str
    rows: int
    width: int

    def cycles(self) -> int:
        """The reduction flows to column 0 (``w - 1`` hops, adding on the way) and the
        broadcast comes back, each with its call and callback task."""
        hops = self.width - 1
        return 2 * (machine.DSD_SETUP_CYCLES + self.rows + hops) + REDUCE_CYCLES + BROADCAST_CYCLES


Combine = Gather | SumReduce


def fold_dims(task: Task, form: Reduction, graph: TaskGraph, width: int) -> dict[str, int] | None:
    """The folded dimension of every tensor parameter, when the folds can be cut over ``width``
    PE columns: every tensor 2-D with folded dimensions of one length (at least ``width``),
    indexed there by the fold's or the store loop's own variable; a fold's init may read
    constant indices of column 0's block. None when the task cannot be cut."""
    sizes = task.size_env
    folded: dict[str, int] = {}
    extents = set()
    for param, dim in form.kept_dims:
        decl = graph.tensor(tensor_of(task, param))
        if len(decl.shape) != 2:
            return None
        folded[param] = 1 - dim
        extents.add(decl.shape[1 - dim])
    if len(extents) != 1:
        return None
    (extent,) = extents
    if extent < width:
        return None
    first = Split(extent, width).size(0)

    def reads_ok(node: ir.Expr | ir.Stmt, var: str | None, constants: bool) -> bool:
        for n in ir.walk(node):
            if not isinstance(n, ir.Load | ir.Store) or n.tensor not in folded:
                continue
            index = n.indices[folded[n.tensor]]
            if isinstance(index, ir.Name) and index.name == var:
                continue
            if constants and isinstance(index, ir.Const) and 0 <= int(index.value) < first:
                continue
            return False
        return True

    def within(lo: ir.Expr, hi: ir.Expr) -> bool:
        if not (is_static(lo, sizes.keys()) and is_static(hi, sizes.keys())):
            return False
        return 0 <= evaluate(lo, sizes) and evaluate(hi, sizes) <= extent

    for step in form.steps:
        if isinstance(step, Fold):
            if not within(step.lo, step.hi) or not reads_ok(step.body, step.var, False):
                return None
            if step.init is not None and not reads_ok(step.init, None, True):
                return None
        elif isinstance(step, RowLet):
            if not reads_ok(step.value, None, False):
                return None
        elif step.loop is None or not within(step.loop.lo, step.loop.hi):
            return None
        elif not all(reads_ok(s, step.loop.var, False) for s in step.body):
            return None
    return folded


def split_layouts(
    task: Task, form: Reduction, graph: TaskGraph, folded: dict[str, int], w: int, h: int
) -> list[Layout]:
    """The kept dimension over the PE rows, the folded one over the PE columns."""
    out = []
    for param, dim in form.kept_dims:
        decl = graph.tensor(tensor_of(task, param))
        dims = [DimMap(n) for n in decl.shape]
        dims[dim] = DimMap(decl.shape[dim], "y", Split(decl.shape[dim], h))
        other = folded[param]
        dims[other] = DimMap(decl.shape[other], "x", Split(decl.shape[other], w))
        out.append(Layout(decl.name, decl.dtype, tuple(dims)))
    return out


def window_counts(split: Split, lo: int, hi: int) -> tuple[int, int]:
    """The fewest and the most iterations of ``lo .. hi`` a PE column's block holds."""
    counts = [
        max(0, min(hi, split.start(i) + split.size(i)) - max(lo, split.start(i)))
        for i in range(split.parts)
    ]
    return min(counts), max(counts)


def ptr_u32(array: str, at: m.Expr) -> m.Expr:
    """``@ptrcast([*]u32, &array[at])``: the collectives move 32-bit words."""
    target = m.Unary("&", m.Index(m.Name(array), (at,)) if at != m.Int(0) else m.Name(array))
    return m.builtin("ptrcast", m.TypeExpr(m.ManyPtrT(m.Named("u32"))), target)


def dsd(b: Builder, array: str, extent: m.Expr, offset: m.Expr) -> str:
    """A 1-D DSD over ``extent`` elements of ``array`` from ``offset``."""
    name = b.fresh(f"{array}_dsd")
    i = b.fresh("i")
    access = m.TensorAccess((i,), (extent,), m.Index(m.Name(array), (m.add(m.Name(i), offset),)))
    b.const(name, m.builtin("get_dsd", m.Name("mem1d_dsd"), m.struct(tensor_access=access)))
    return name


@dataclass(frozen=True)
class Emitted:
    """A combine's code: the end of the phase before it, its tasks, and the start of the
    phase after it (which runs when the combined values are in)."""

    tail: tuple[m.Stmt, ...]
    head: tuple[m.Stmt, ...]
    combine: Combine


def gather(
    b: Builder, name: str, acc: str, rows: int, count: str, column: str, resume: str, neg: bool
) -> Emitted:
    """Every column's partial ``acc`` onto every PE of the row (a broadcast per column), then
    folded left to right with ``@fmaxs`` (negated back for a min)."""
    w = b.width
    parts = b.array(
        f"{name}_parts", DType.F32, w * rows, f"'{name}': every column's partial, in order"
    )
    step = b.scalar(f"{name}_round", "u16", m.Int(0), f"'{name}': the column broadcasting now")
    round_id = b.task_id(f"{name}_gathered", f"a column's partial of '{name}' is in")
    mine = dsd(b, parts, m.lit(rows), m.mul(m.Name(column), m.Int(rows)))
    own = dsd(b, acc, m.lit(rows), m.Int(0))
    first = dsd(b, parts, m.Name(count), m.Int(0))
    later = dsd(b, parts, m.Name(count), m.Int(rows))
    accd = dsd(b, acc, m.Name(count), m.Int(0))
    rnd = m.Name(step)
    send = m.call(
        m.member("mpi_x", "broadcast"),
        rnd,
        ptr_u32(parts, m.mul(rnd, m.Int(rows))),
        m.lit(rows),
        m.Name(round_id),
    )
    task = b.fresh(f"{name}_gathered")
    b.code(
        m.TaskDecl(
            task,
            (),
            (
                m.Comment(f"a column's partial of '{name}' is in: the next column's, or go on"),
                m.Assign(rnd, "+=", m.Int(1)),
                m.If(
                    m.Binary("<", rnd, m.lit(w)),
                    (m.ExprStmt(send),),
                    (m.ExprStmt(m.builtin("activate", m.Name(resume))),),
                ),
            ),
        )
    )
    b.bind(task, round_id)
    k = b.fresh("k")
    later_at = b.fresh(f"{later}_at")
    head: list[m.Stmt] = [
        m.Comment(f"'{name}': the partials of columns 0 .. {w - 1}, folded in order"),
        m.ExprStmt(m.builtin("fmovs", m.Name(accd), m.Name(first))),
        m.For(
            m.builtin("range", m.Name("i16"), m.lit(w - 1)),
            k,
            (
                m.VarDecl(
                    later_at,
                    None,
                    m.builtin(
                        "increment_dsd_offset",
                        m.Name(later),
                        m.mul(m.Name(k), m.Int(rows)),
                        m.Name("f32"),
                    ),
                    const=True,
                ),
                m.ExprStmt(m.builtin("fmaxs", m.Name(accd), m.Name(accd), m.Name(later_at))),
            ),
        ),
    ]
    if neg:
        head.append(m.ExprStmt(m.builtin("fnegs", m.Name(accd), m.Name(accd))))
    tail = (
        m.Comment(f"'{name}': this column's partial into its slot, then column 0 broadcasts"),
        m.ExprStmt(m.builtin("fmovs", m.Name(mine), m.Name(own))),
        m.Assign(rnd, "=", m.Int(0)),
        m.ExprStmt(send),
    )
    return Emitted(tail, tuple(head), Gather(name, rows, w, neg))


def reduce(b: Builder, name: str, acc: str, total: str, rows: int, resume: str) -> Emitted:
    """The partial sums ``acc`` added into column 0's ``total``, which it broadcasts back."""
    reduced_id = b.task_id(f"{name}_reduced", f"the partial sums of '{name}' are added")
    task = b.fresh(f"{name}_reduced")
    b.code(
        m.TaskDecl(
            task,
            (),
            (
                m.Comment(f"column 0 holds the sum of '{name}': it sends it along the row"),
                m.ExprStmt(
                    m.call(
                        m.member("mpi_x", "broadcast"),
                        m.Int(0),
                        ptr_u32(total, m.Int(0)),
                        m.lit(rows),
                        m.Name(resume),
                    )
                ),
            ),
        )
    )
    b.bind(task, reduced_id)
    tail = (
        m.Comment(f"'{name}': the row's partial sums added into column 0"),
        m.ExprStmt(
            m.call(
                m.member("mpi_x", "reduce_fadds"),
                m.Int(0),
                m.Unary("&", m.Name(acc)),
                m.Unary("&", m.Name(total)),
                m.lit(rows),
                m.Name(reduced_id),
            )
        ),
    )
    return Emitted(tail, (), SumReduce(name, rows, b.width))
