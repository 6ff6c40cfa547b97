"""Lowering a task graph to a Groq API program model (``GroqProgram``), one stage per task.

Each task becomes one buffered resource scope of the top-level component, ordered after the
scopes whose tensors it reads, lowered by its form's entry in ``LOWERINGS``. A ``Map`` streams
its rows as 320-lane vectors through the VXM: a load at a row offset reads another window of
the tensor's rows, a load at a lane offset goes through an SXM shift, constants are rows of a
per-task constant table; guarded pieces are bands of rows whose lanes are chosen through their
bits. A ``Contraction`` runs on the MXM (``nn.MatMul``, which tiles to the 320 x 320 weight
blocks), in the chosen precision: ``f32`` (fp16 high and low parts of each operand, three
products with fp32 accumulation), ``fp16`` (one product) or ``int8`` (host-quantised operands
with per-row and per-column scales, int32 accumulation, rescaled on the VXM), its prologue and
epilogue on the VXM. A ``Reduction`` folds across the lanes of each row, or down the rows of
each column; a ``Lookup`` runs branch-free. A task of any other form is refused with
``Unsupported`` naming it: the chip has no data-dependent control flow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kernelc import ir
from kernelc.affine import affine
from kernelc.backends.groq import machine
from kernelc.diagnostics import Span, Unsupported
from kernelc.forms import Contraction, Lookup, Map, Reduction
from kernelc.forms.contraction import OPERAND, PRODUCT
from kernelc.forms.map import Piece
from kernelc.forms.reduction import Fold, RowLet, RowStores
from kernelc.graph import Task, TaskGraph
from kernelc.types import DType

PRECISIONS = ("f32", "fp16", "int8")
TINY = 2.0**-126  # added under rsqrt so that sqrt(0) = 0 * rsqrt(TINY) = 0 exactly
SHIFT_LANES = "shift_lanes("  # program.py's helper: one VXM op joins each split's edge lanes
VXM_OPS = ("add", "sub", "mul", "neg", "rsqrt", "cast", "exp2", "maximum", "minimum", "bitwise_and")
LOG2E = 1.4426950408889634  # exp(x) = exp2(x log2(e)): the VXM has exp2 only
TABLES = {  # placeholder sigil -> (variable suffix, table name, dtype) of a stage's tables
    "@": ("k", "constants", "float32"),
    "&": ("h", "halves", "float16"),
    "%": ("b", "bits", "int32"),
    "~": ("m", "masks", "int16"),
}
SIGN_BIT = -(2**31)
SPREAD_LEVELS = -(  # a value written to memory and read back, in ALU levels
    -(machine.chip.MEM_WRITE_LATENCY + machine.chip.MEM_LATENCY + machine.chip.STREAM_HOP_LATENCY)
    // machine.chip.VXM_LATENCY
)  # int32 bits of an f32 sign
MAGNITUDE_BITS = 2**31 - 1


@dataclass(frozen=True)
class Declared:
    """A memory tensor the program declares at module level: an input or a constant table."""

    var: str
    name: str
    shape: tuple[int, ...]
    dtype: str
    layout: str
    source: str  # the graph tensor it carries ("" for a constant table)
    host: str  # how run.py prepares it: plain, high, low, fp16, int8_rows, int8_cols, scale
    transposed: bool = False
    rows: tuple[tuple, ...] = ()  # a constant table's rows: ("fill", v) or ("lanes", lo, hi)
    items: tuple[int, int] = (0, 0)  # a lookup's item range (host "superlanes")
    listed: bool = False  # a table of "fill" rows whose values program.py lists as NAME


@dataclass(frozen=True)
class MatMulDecl:
    attr: str
    name: str
    planes: tuple[int, ...]


@dataclass(frozen=True)
class StageCost:
    """What the cost model needs of a stage: per unit the streamed vectors, and the depth."""

    vxm_ops: int
    sxm_ops: int
    vectors: int  # vectors per VXM/SXM op (rows x inner splits)
    depth: int  # longest VXM chain
    matmuls: tuple[tuple[str, int, int, int, str], ...]  # (planes, n, k, m, dtype)
    writes: int  # vectors written
    gathers: int = 0  # g.mem_gather vectors per vector of items
    sxm_rows: int = 0  # when set, each SXM op streams this many vectors (one inner split's rows)
    chained: bool = False  # its time: the longer of the units' throughput and its chain (depth)
    prologue: tuple[tuple[int, int, int], ...] = ()  # (VXM ops, vectors, depth) before the MXM
    span: int = 0  # when set: its ops' rows and chains overlap, the last one ends this late


@dataclass(frozen=True)
class Stage:
    name: str
    comment: str
    predecessors: tuple[str, ...]
    lines: tuple[str, ...]
    cost: StageCost


@dataclass(frozen=True)
class Output:
    name: str
    var: str
    shape: tuple[int, ...]  # the graph's shape (the program's is 2-D)
    items: tuple[int, int] | None = None  # a lookup's output: items first .. end by superlane


@dataclass(frozen=True)
class GroqProgram:
    name: str
    class_name: str
    source: str
    precision: str
    declared: tuple[Declared, ...]
    matmuls: tuple[MatMulDecl, ...]
    stages: tuple[Stage, ...]
    outputs: tuple[Output, ...]
    slices: dict[str, int]  # slices used per hemisphere
    memory: dict[str, tuple[str, int, int]]  # memory tensor -> (layout, bytes, per slice)
    limits: tuple[tuple[str, int], ...] = ()  # (input, largest value a padded loop allows)


class _FormStage(Protocol):
    """A task's lowering: built for one task, ``lower`` gives its resource scope."""

    def lower(self) -> Stage: ...


def refuse(construct: str, span: Span) -> Unsupported:
    return Unsupported(f"groq: {construct}", span)


def program_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """Tensors are (rows, lanes) on the chip; a 1-D tensor is one row."""
    return (1, shape[0]) if len(shape) == 1 else (shape[0], shape[1])


@dataclass
class _Budget:
    """The slice-exclusive memory plan: slices left per hemisphere."""

    free: dict[str, int] = field(
        default_factory=lambda: {h: len(machine.usable_slices(h)) for h in ("W", "E")}
    )
    # name -> (layout, bytes, bytes used in each of its slices)
    taken: dict[str, tuple[str, int, int]] = field(default_factory=dict)

    def take(
        self,
        name: str,
        shape,
        dtype: str,
        span: Span,
        least: int = 1,
        hemi: str = "",
        slices: int | None = None,
    ) -> str:
        """Slices for a memory tensor (``slices``: exactly that many, where the hardware fixes
        them), in the emptier hemisphere unless ``hemi`` is given."""
        n = machine.slices_for(shape, dtype, least) if slices is None else slices
        nbytes = math.prod(shape) * machine.DTYPE_BYTES[dtype]
        choices = [hemi] if hemi else sorted(self.free, key=lambda h: (-self.free[h], h))
        for h in choices:
            if self.free[h] >= n:
                self.free[h] -= n
                return self.record(name, f"H1({h}), -1, S{n}", shape, dtype)
        left = ", ".join(f"{h} {self.free[h]}" for h in sorted(self.free))
        raise Unsupported(  # a valid program, too big for this chip
            f"groq: tensor '{name}' ({dtype}{list(shape)}, {nbytes:,} bytes) does not fit the "
            f"GroqChip's memory: it needs {n} MEM slices of {machine.SLICE_BYTES:,} bytes "
            f"{'in hemisphere ' + hemi if hemi else 'in one hemisphere'} and {left} are free "
            f"(220 MiB in all, slice-exclusive tensors)",
            span,
        )

    def record(self, name: str, layout: str, shape, dtype: str) -> str:
        """Note a memory tensor's layout, bytes and bytes per slice (for the report)."""
        n = int(layout.rsplit("S", 1)[1])
        rows = math.prod(shape[:-1]) if len(shape) > 1 else 1
        planes = rows * math.ceil(shape[-1] / machine.LANES) * machine.DTYPE_BYTES[dtype]
        nbytes = math.prod(shape) * machine.DTYPE_BYTES[dtype]
        self.taken[name] = (layout, nbytes, math.ceil(planes / n) * machine.chip.VECTOR_BYTES)
        return layout


class _Lowering:
    def __init__(self, graph: TaskGraph, precision: str) -> None:
        self.graph = graph
        self.precision = precision
        self.budget = _Budget()
        self.declared: list[Declared] = []
        self.matmuls: list[MatMulDecl] = []
        self.stages: list[Stage] = []
        self.names: set[str] = set()
        self.current: dict[str, str] = {}  # graph tensor -> variable of its latest version
        self.writer: dict[str, str] = {}  # graph tensor -> stage that wrote its latest version
        self.last_writer = {w.tensor: t.name for t in graph.tasks for w in t.writes}
        self.lookup_outputs: dict[str, tuple[int, int]] = {}  # tensor -> its items
        self.limits: list[tuple[str, int]] = []
        self.kinds: dict[str, str] = {}  # memory tensor variable -> its dtype, if not float32
        for t in graph.tensors:
            if not t.name.isidentifier() or not t.name.isascii():
                raise refuse(f"tensor name '{t.name}' is no ASCII identifier", t.span)

    def unique(self, name: str) -> str:
        """A program-wide unique Groq tensor name (user names first, generated ones after)."""
        candidate, k = name, 1
        while candidate in self.names or candidate in {t.name for t in self.graph.tensors}:
            k += 1
            candidate = f"{name}_{k}"
        self.names.add(candidate)
        return candidate

    def declare_input(
        self,
        source: str,
        host: str,
        dtype: str,
        transposed: bool = False,
        hemi: str = "",
        least: int = 1,
    ) -> str:
        decl = self.graph.tensor(source)
        shape = program_shape(decl.shape)
        if transposed:
            shape = (shape[1], shape[0])
        suffix = {
            "plain": "",
            "high": "_hi",
            "low": "_lo",
            "fp16": "_16",
            "int8_rows": "_q",
            "int8_cols": "_q",
            "scale": "_scale",
        }[host]
        plain = host == "plain" and not transposed
        name = source if plain else self.unique(f"{source}{suffix}{'_t' if transposed else ''}")
        if plain:
            self.names.add(name)
        layout = self.budget.take(name, shape, dtype, decl.span, least, hemi)
        var = f"{name}_mt"
        if dtype != "float32":
            self.kinds[var] = dtype
        self.declared.append(Declared(var, name, shape, dtype, layout, source, host, transposed))
        return var

    # ------------------------------------------------------------------------------- graph

    def lower(self) -> GroqProgram:
        for task in self.graph.tasks:
            drawn = next(
                (n for n in ir.walk_body(task.kernel.body) if isinstance(n, ir.Rand)), None
            )
            if drawn is not None:
                raise refuse(
                    f"'{'randbits' if drawn.bits else 'rand'}' in '{task.kernel.name}': the "
                    "counter-based generator (lowbias32) needs wrapping u32 multiplies and xor, "
                    "and the VXM's integer arithmetic saturates and the public API shows no xor, "
                    "so the chip has no exact equivalent",
                    drawn.span,
                )
            if type(task.form) not in LOWERINGS:
                raise refuse(
                    f"'{task.kernel.name}' is sequential or data-dependent code (no Map, "
                    "Contraction, Reduction or Lookup): the GroqChip runs one fixed schedule "
                    "without data-dependent branches or loops",
                    task.span,
                )
        for s in self.graph.scalars:
            raise refuse(f"scalar parameter '{s.name}' (runtime scalars are not lowered)", s.span)
        for task in self.graph.tasks:
            self._check_regions(task)
            self.stages.append(LOWERINGS[type(task.form)](self, task, task.form).lower())
        outputs = []
        for t in self.graph.outputs:
            if t.name not in self.current:
                raise refuse(f"output '{t.name}' is never written by a task", t.span)
            items = self.lookup_outputs.get(t.name)
            outputs.append(Output(t.name, self.current[t.name], t.shape, items))
        used = {h: len(machine.usable_slices(h)) - n for h, n in self.budget.free.items()}
        return GroqProgram(
            self.graph.name,
            _class_name(self.graph.name),
            self.graph.filename.rsplit("/", 1)[-1],
            self.precision,
            tuple(self.declared),
            tuple(self.matmuls),
            tuple(self.stages),
            tuple(outputs),
            used,
            dict(self.budget.taken),
            tuple(self.limits),
        )

    def _check_regions(self, task: Task) -> None:
        for b in task.bindings:
            if b.scalar is not None:
                raise refuse(f"scalar argument '{b.scalar}' of '{task.kernel.name}'", task.span)
            if b.region is None:
                continue
            decl = self.graph.tensor(b.region.tensor)
            sliced = len(decl.shape) == 1 and b.region.keep == (True,)
            whole_fold = isinstance(task.form, Reduction) and task.form.loop is None
            if b.region.view_shape != decl.shape and not (whole_fold and sliced):
                raise refuse(
                    f"the region {b.region} of '{decl.name}' passed to '{task.kernel.name}' "
                    "(tasks take whole tensors on groq)",
                    task.span,
                )
            if isinstance(task.form, Lookup):
                continue  # tables of any rank, f32 and i32 (_LookupStage.param)
            if len(decl.shape) > 2:
                raise refuse(f"the rank-{len(decl.shape)} tensor '{decl.name}'", decl.span)
            streamed = (DType.F32, DType.F16) if isinstance(task.form, Map | Contraction) else ()
            if decl.dtype != DType.F32 and decl.dtype not in streamed:
                raise refuse(
                    f"'{decl.name}' is {decl.dtype}; the groq lowering streams f32 tensors",
                    decl.span,
                )

    def tensor_var(self, task: Task, param: str) -> tuple[str, str]:
        """(graph tensor, variable of its current version) of a kernel parameter; an input
        read for the first time is declared."""
        name = task.binding(param).region.tensor
        if name not in self.current:
            decl = self.graph.tensor(name)
            if decl.role != "input":
                raise refuse(f"'{name}' is read before any task writes it", task.span)
            self.current[name] = self.declare_input(name, "plain", _groq_dtype(decl.dtype))
            self.writer[name] = ""
        return name, self.current[name]

    def output_name(self, task: Task, tensor: str) -> tuple[str, bool]:
        """The Groq name of the version a task writes, and whether it is a program output."""
        final = self.last_writer[tensor] == task.name
        if final:
            self.names.add(tensor)
            return tensor, self.graph.tensor(tensor).role == "output"
        return self.unique(f"{tensor}_{task.name}"), False

    def predecessors(self, tensors: list[str]) -> tuple[str, ...]:
        return tuple(sorted({self.writer[t] for t in tensors if self.writer.get(t)}))


def _class_name(name: str) -> str:
    words = [w for w in name.replace("-", "_").split("_") if w]
    text = "".join(w[:1].upper() + w[1:] for w in words) or "Program"
    return text if text.isidentifier() else "Program"


class _VectorStage:
    """What every VXM lowering shares: values as named streams of (rows x lanes) vectors, their
    ALU depths, the constant and bit-mask tables, and the stores that keep the lanes and rows
    outside their range. Subclasses set the row and lane loops (``row``, ``r0``, ``r1``,
    ``lane``, ``c0``, ``c1``), ``width`` and ``nrows``."""

    row: str
    lane: str
    r0: int
    r1: int
    c0: int
    c1: int
    width: int
    nrows: int

    def __init__(self, low: _Lowering, task: Task, prefix: str = "") -> None:
        self.low = low
        self.task = task
        self.prefix = prefix or task.name  # of the stage's variables and tables
        self.lines: list[str] = []
        self.count = 0
        self.lets: dict[str, str] = {}
        self.loads: dict[tuple, str] = {}
        self.tabled: dict[str, list[tuple]] = {sigil: [] for sigil in TABLES}
        self.sxm = 0
        self.split_shifts = 0  # SXM passes over one inner split's rows (rows wider than 320)
        self.depths: dict[str, int] = {}
        self.dtypes: dict[str, str] = {}  # variables that are not float32
        self.memory: set[str] = set()  # variables holding memory views, not streams
        self.reads: dict[str, str] = {}  # memory view or constant -> the stream reading it
        self.after: set[str] = set()  # stages whose tensors this one reads or overwrites
        self.sizes = task.size_env
        self.work = 0  # VXM ops times the rows each streams
        self.height = 0  # the rows constants are broadcast to by default

    def name(self) -> str:
        self.count += 1
        return f"{self.prefix}_{self.count}"

    def emit(self, text: str, depth: int, memory: bool = False, dtype: str = "float32") -> str:
        var = self.name()
        self.lines.append(f"{var} = {text}")
        self.depths[var] = depth
        self.work += _vxm_ops(text) * max(self.nrows, 1)
        if dtype != "float32":
            self.dtypes[var] = dtype
        if memory:
            self.memory.add(var)
        return var

    def kind(self, value: str) -> str:
        """The Groq dtype of a value: a variable, a memory tensor or a table placeholder."""
        if value[:1] in TABLES:
            return TABLES[value[0]][2]
        return self.dtypes.get(value) or self.low.kinds.get(value, "float32")

    def stream(self, value: str) -> str:
        """A value as a stream: memory views and constants are read."""
        if value[:1] in TABLES or value in self.memory or value.endswith("_mt"):
            if value not in self.reads:
                dtype = self.kind(value)
                group = "SG2" if dtype == "float16" else "SG4"
                self.reads[value] = self.emit(f"{value}.read(streams=g.{group})", 0, dtype=dtype)
            return self.reads[value]
        return value

    def constant(self, row: tuple, dtype: str = "float32", one: bool = False) -> str:
        """A constant row broadcast to the current rows (``one``: a single row), patched to a
        view of the stage's table once the table is known."""
        return self.tabled_row("&" if dtype == "float16" else "@", row, one)

    def bitmask(self, row: tuple, dtype: str = "int32") -> str:
        """An integer row: ("fill", bits), ("lanes", lo, hi) (all bits set on lanes lo..hi-1)
        or ("gap", lo, hi) (all bits set elsewhere)."""
        return self.tabled_row("~" if dtype == "int16" else "%", row)

    def tabled_row(self, sigil: str, row: tuple, one: bool = False) -> str:
        rows = self.tabled[sigil]
        if row not in rows:
            rows.append(row)
        return f"{sigil}{rows.index(row)}" + ("!" if one else f"x{max(self.nrows, 1)}")

    # ---------------------------------------------------------------------------- values

    def value(self, e: ir.Expr) -> str:
        kernel = self.task.kernel.name
        if e.dtype not in (None, DType.F32, DType.F16) and not isinstance(e, ir.Cast):
            raise refuse(
                f"{e.dtype} arithmetic in '{kernel}' (the groq Map lowering streams f32 and f16)",
                e.span,
            )
        dtype = "float16" if e.dtype == DType.F16 else "float32"
        match e:
            case ir.Const(value=v):
                return self.constant(("fill", float(v)), dtype)
            case ir.Name(name=n) if n in self.lets:
                return self.lets[n]
            case ir.Name(name=n):
                binding = next((b for b in self.task.bindings if b.param == n), None)
                if binding is not None and binding.constant is not None:
                    return self.constant(("fill", float(binding.constant)), dtype)
                raise refuse(
                    f"the loop index or scalar '{n}' used as a value in '{kernel}'", e.span
                )
            case ir.Load():
                return self.load(e)
            case ir.Binary(op="+" | "-" | "*" as op, lhs=lhs, rhs=rhs):
                a, b = self.value(lhs), self.value(rhs)
                fn = {"+": "add", "-": "sub", "*": "mul"}[op]
                depth = 1 + max(self.depth(a), self.depth(b))
                return self.emit(f"g.{fn}({a}, {b})", depth, dtype=dtype)
            case ir.Binary(op="/"):
                raise refuse(f"division in '{kernel}' (the VXM has no divide instruction)", e.span)
            case ir.Unary(op="-", operand=x):
                a = self.value(x)
                return self.emit(f"g.neg({a})", 1 + self.depth(a), dtype=dtype)
            case ir.Intrinsic(fn="sqrt", args=(x,)) if e.dtype == DType.F32:
                a = self.value(x)
                tiny = self.constant(("fill", TINY))
                d = self.depth(a)
                r = self.emit(f"g.rsqrt(g.add({a}, {tiny}))  # sqrt(x) = x * rsqrt(x)", d + 2)
                return self.emit(f"g.mul({a}, {r})", d + 3)
            case ir.Cast(to=DType.F32 | DType.F16 as to, operand=x) if x.dtype in (
                DType.F32,
                DType.F16,
            ):
                a = self.value(x)
                if x.dtype == to:
                    return a
                # f16 -> f32 is exact; f32 -> f16 rounds to nearest even, as the language does
                return self.emit(f"g.cast({a}, dtype=g.{dtype})", 1 + self.depth(a), dtype=dtype)
            case ir.Intrinsic(fn="min" | "max" as fn, args=(x, y)):
                a, b = self.value(x), self.value(y)
                op = "maximum" if fn == "max" else "minimum"  # a NaN operand gives the other
                depth = 1 + max(self.depth(a), self.depth(b))
                return self.emit(f"g.{op}({a}, {b})", depth, dtype=dtype)
            case ir.Intrinsic(fn=fn):
                raise refuse(f"'{fn}' on {e.dtype} in '{kernel}' (no VXM lowering)", e.span)
            case ir.Cast(to=to):
                raise refuse(f"the cast to {to} in '{kernel}'", e.span)
            case ir.Select():
                raise refuse(f"'select' in '{kernel}' (no VXM lowering)", e.span)
            case ir.Rand():
                raise refuse(f"'rand' in '{kernel}' (no VXM lowering)", e.span)
            case _:
                what = e.op if isinstance(e, ir.Binary | ir.Unary) else type(e).__name__
                raise refuse(f"'{what}' in '{kernel}' (no VXM lowering)", e.span)

    def depth(self, var: str) -> int:
        return self.depths.get(var, 0)

    def offset(self, idx: ir.Expr, var: str) -> int | None:
        form = affine(idx)
        if form is None:
            return None
        sizes = {n: c for n, c in form.terms if n in self.sizes}
        rest = tuple((n, c) for n, c in form.terms if n not in self.sizes)
        if rest != ((var, 1),):
            return None
        return form.const + sum(self.sizes[n] * c for n, c in sizes.items())

    def load(self, e: ir.Load) -> str:
        kernel = self.task.kernel.name
        tensor, var = self.low.tensor_var(self.task, e.tensor)
        self.after.add(self.low.writer.get(tensor, ""))
        shape = program_shape(self.low.graph.tensor(tensor).shape)
        dtype = self.kind(var)
        if len(e.indices) == 1 and self.row and self.offset(e.indices[0], self.row) is not None:
            raise refuse(
                f"the load {e.tensor}[{self.row}] in '{kernel}' (a vector along the rows: on "
                "groq a row is one vector and a rank-1 operand runs along its lanes)",
                e.span,
            )
        if shape[1] != self.width:
            raise refuse(
                f"the load of '{tensor}' in '{kernel}' ({shape[1]} lanes into {self.width})", e.span
            )
        if len(e.indices) == 2:
            da = self.offset(e.indices[0], self.row) if self.row else None
            db = self.offset(e.indices[1], self.lane)
        else:
            da, db = 0, self.offset(e.indices[0], self.lane)
        if da is None or db is None:
            raise refuse(
                f"the load {e.tensor}[...] in '{kernel}' (only loads at fixed offsets from the "
                "loop indices, rows then lanes, stream through the VXM)",
                e.span,
            )
        key = (tensor, da if len(e.indices) == 2 else None, db, self.r0, self.r1)
        if key in self.loads:
            return self.loads[key]
        if len(e.indices) == 2:
            lo, hi = self.r0 + da, self.r1 + da
            if lo < 0 or hi > shape[0]:
                raise refuse(f"the load of '{tensor}' in '{kernel}' outside its rows", e.span)
            window = _rows(var, lo, hi, shape[0])
        else:
            window = (
                var
                if self.nrows == 1
                else f"g.concat_vectors([{var}] * {self.nrows}, ({self.nrows}, {self.width}))"
            )
        if db and self.width > machine.LANES:  # each inner split, and the lanes crossing its edge
            self.sxm += 1
            splits = math.ceil(self.width / machine.LANES)
            self.split_shifts += 2 * splits - 1
            text = f"shift_lanes({window}, {-db}, permutor={self.sxm % 2})  # lanes j{db:+d}"
            # the join of the edge lanes; the SXM's latency aside
            result = self.emit(text, 1, dtype=dtype)
        elif db:
            self.sxm += 1
            text = f"g.shift({window}, {-db}, permutor_id={self.sxm % 2})  # lanes j{db:+d}"
            result = self.emit(text, 0, dtype=dtype)  # no ALU: the cost adds the SXM's latency
        elif window == var:
            result = var
        else:
            result = self.emit(window, 0, memory=True, dtype=dtype)
        self.loads[key] = result
        return result

    # ---------------------------------------------------------------------------- tables

    def tables(self) -> list[str]:
        """The stage's lines with its constant tables declared and their placeholders patched:
        one table of constant rows per float dtype, one of bit masks per integer dtype."""
        lines = self.lines
        for sigil, (suffix, kind, dtype) in TABLES.items():
            if self.tabled[sigil]:
                lines = self._table(lines, sigil, f"{self.prefix}_{suffix}", kind, dtype)
        return lines

    def _table(self, lines: list[str], sigil: str, table: str, kind: str, dtype: str):
        low, task = self.low, self.task
        rows = self.tabled[sigil]
        name = low.unique(f"{self.prefix}_{kind}")
        layout = low.budget.take(name, (len(rows), self.width), dtype, task.span)
        low.declared.append(
            Declared(
                f"{name}_mt",
                name,
                (len(rows), self.width),
                dtype,
                layout,
                "",
                "constant",
                False,
                tuple(rows),
            )
        )
        count = len(rows)
        head = (
            f"{table} = g.split_vectors({name}_mt, {[1] * count})"
            if count > 1
            else f"{table} = [{name}_mt]"
        )
        pattern = re.compile(rf"{re.escape(sigil)}([0-9]+)(!|x([0-9]+))")
        used = sorted(
            {(int(m[1]), int(m[3])) for line in lines for m in pattern.finditer(line) if m[3]}
        )
        broadcast = []
        for k, n in used:
            view = f"{table}{k}_rows" + ("" if n == self.height else str(n))
            broadcast.append(
                f"{view} = g.concat_vectors([{table}[{k}]] * {n}, ({n}, {self.width}))"
                if n > 1
                else f"{view} = {table}[{k}]"
            )

        def patch(m: re.Match) -> str:
            if m[2] == "!":
                return f"{table}[{m[1]}]"
            return f"{table}{m[1]}_rows" + ("" if int(m[3]) == self.height else m[3])

        return [head, *broadcast] + [pattern.sub(patch, line) for line in lines]

    # ---------------------------------------------------------------------------- stores

    def store(self, tensor: str, bands: list[tuple[int, int, list[tuple[int, int, str]]]]) -> int:
        """Write the tensor's new version: per band of rows (r0, r1), the values of the pieces
        that cover it, each on its lanes (c0, c1); lanes and rows no piece covers keep the
        previous version (zeros for a first write). Returns the vectors written."""
        low, task = self.low, self.task
        decl = low.graph.tensor(tensor)
        rows, width = program_shape(decl.shape)
        dtype = _groq_dtype(decl.dtype)
        prev = low.current.get(tensor)
        self.after.add(low.writer.get(tensor, ""))
        written = []
        for r0, r1, parts in bands:
            self.r0, self.r1, self.nrows = r0, r1, r1 - r0
            written.append((r0, r1, self.lanes(prev, rows, width, parts, dtype)))
        pieces: list[str] = []
        at = 0
        for r0, r1, value in [*written, (rows, rows, "")]:
            if r0 > at:
                pieces.append(self._outside(prev, at, r0, rows, width, dtype))
            if value:
                pieces.append(value)
            at = r1
        value = pieces[0]
        if len(pieces) > 1:
            depth = max(self.depth(p) for p in pieces)
            text = f"g.concat_vectors([{', '.join(pieces)}], ({rows}, {width}))"
            value = self.emit(text, depth, dtype=dtype)
        name, is_output = low.output_name(task, tensor)
        layout = low.budget.take(name, (rows, width), dtype, task.span)
        var = f"{name}_mt"
        flag = ", program_output=True" if is_output else ""
        self.lines.append(f'{var} = {value}.write(name="{name}", layout="{layout}"{flag})')
        low.current[tensor] = var
        low.writer[tensor] = task.name
        if dtype != "float32":
            low.kinds[var] = dtype
        return rows * math.ceil(width / machine.LANES)

    def lanes(
        self, prev: str | None, rows: int, width: int, parts: list[tuple[int, int, str]], dtype: str
    ) -> str:
        """One band's rows: each value on its lanes, chosen through their bits (a 0/1 multiply
        would turn inf into NaN); the terms are 0 outside their lanes, so their integer sum is
        the bits of the one that covers each lane."""
        if len(parts) == 1 and parts[0][:2] == (0, width):
            return self.stream(parts[0][2])
        bits = "int16" if dtype == "float16" else "int32"
        spans: dict[str, tuple[int, ...]] = {}  # a value and its lanes (pieces copying alike)
        for c0, c1, value in parts:
            value = self.stream(value)
            spans[value] = (*spans.get(value, ()), c0, c1)
        kept = ""
        for value, lanes in spans.items():
            raw = self.emit(f"g.reinterpret({value}, g.{bits})", self.depth(value), dtype=bits)
            mask = self.bitmask(("lanes", *lanes), bits)
            term = self.emit(f"g.bitwise_and({raw}, {mask})", self.depth(value) + 1, dtype=bits)
            if kept:
                depth = 1 + max(self.depth(kept), self.depth(term))
                term = self.emit(f"g.add({kept}, {term})", depth, dtype=bits)
            kept = term
        covered = sorted((c0, c1) for c0, c1, _ in parts)
        starts = [0] + [c1 for _, c1 in covered]
        ends = [c0 for c0, _ in covered] + [width]
        gaps = [(lo, hi) for lo, hi in zip(starts, ends, strict=True) if lo < hi]
        if prev is not None and gaps:
            group = "SG2" if dtype == "float16" else "SG4"
            old = self.emit(
                f"{_rows(prev, self.r0, self.r1, rows)}.read(streams=g.{group})", 0, dtype=dtype
            )
            old_bits = self.emit(f"g.reinterpret({old}, g.{bits})", 0, dtype=bits)
            masks = (
                [("gap", *covered[0])]
                if len(covered) == 1
                else [("lanes", lo, hi) for lo, hi in gaps]
            )
            for row in masks:
                back = self.emit(
                    f"g.bitwise_and({old_bits}, {self.bitmask(row, bits)})", 1, dtype=bits
                )
                kept = self.emit(f"g.add({kept}, {back})", self.depth(kept) + 1, dtype=bits)
        return self.emit(f"g.reinterpret({kept}, g.{dtype})", self.depth(kept), dtype=dtype)

    def unchanged(self, tensor: str) -> int:
        """An empty loop range writes nothing: the new version is the previous one (or zeros)."""
        low = self.low
        decl = low.graph.tensor(tensor)
        rows, width = program_shape(decl.shape)
        dtype = _groq_dtype(decl.dtype)
        prev = low.current.get(tensor)
        if prev is not None:
            self.after.add(low.writer.get(tensor, ""))
        value = self._outside(prev, 0, rows, rows, width, dtype)
        name, is_output = low.output_name(self.task, tensor)
        layout = low.budget.take(name, (rows, width), dtype, self.task.span)
        flag = ", program_output=True" if is_output else ""
        self.lines.append(f'{name}_mt = {value}.write(name="{name}", layout="{layout}"{flag})')
        low.current[tensor] = f"{name}_mt"
        low.writer[tensor] = self.task.name
        if dtype != "float32":
            low.kinds[f"{name}_mt"] = dtype
        return rows * math.ceil(width / machine.LANES)

    def _outside(
        self, prev: str | None, lo: int, hi: int, rows: int, width: int, dtype: str = "float32"
    ) -> str:
        """Rows lo..hi of the previous version (or zeros), as a stream."""
        group = "SG2" if dtype == "float16" else "SG4"
        if prev is not None:
            return self.emit(f"{_rows(prev, lo, hi, rows)}.read(streams=g.{group})", 0, dtype=dtype)
        zero = self.constant(("fill", 0.0), dtype, one=True)
        n = hi - lo
        rows_of = zero if n == 1 else f"g.concat_vectors([{zero}] * {n}, ({n}, {width}))"
        return self.emit(f"{rows_of}.read(streams=g.{group})", 0, dtype=dtype)


class _MapStage(_VectorStage):
    """One ``Map`` task as VXM work over (rows x lanes) vectors.

    Its guarded pieces are static boxes of the loop indices: the rows are cut into bands at
    every piece's row bounds, each piece is evaluated over the rows of each band it covers, and
    its stores keep only its lanes (through their bits, as any store outside its lane range);
    the bands are joined row-wise, so no element tests a condition.
    """

    def __init__(self, low: _Lowering, task: Task, form: Map) -> None:
        super().__init__(low, task)
        self.form = form
        sizes = task.size_env
        if len(form.loops) > 2:
            raise refuse(f"the {len(form.loops)}-deep loop nest of '{task.kernel.name}'", task.span)
        bounds = []
        for lp in form.loops:
            lo, hi = affine(lp.lo), affine(lp.hi)
            if lo is None or hi is None:
                raise refuse(f"the bounds of loop '{lp.var}'", lp.span)
            bounds.append((lp.var, _value(lo, sizes, lp.span), _value(hi, sizes, lp.span)))
        if len(bounds) == 1:
            self.row, self.r0, self.r1 = "", 0, 1
            self.lane, self.c0, self.c1 = bounds[0]
        else:
            (self.row, self.r0, self.r1), (self.lane, self.c0, self.c1) = bounds
            if form.output_indices != (self.row, self.lane):
                raise refuse(
                    f"the store of '{task.kernel.name}' indexed [{', '.join(form.output_indices)}]"
                    " (a transposed store)",
                    form.stores[0].span,
                )
        out = task.binding(form.stores[0].tensor).region.tensor
        self.width = program_shape(low.graph.tensor(out).shape)[1]
        self.nrows = self.r1 - self.r0
        self.height, self.top = self.nrows, self.r0  # the loop's rows (bands cut them)
        self.lanes_loop = (self.lane, self.c0, self.c1)

    # ----------------------------------------------------------------------------- stage

    def lower(self) -> Stage:
        task = self.task
        empty = self.nrows <= 0 or self.c1 <= self.c0
        order: list[str] = []
        values: dict[str, dict[tuple[int, int], list[tuple[int, int, str]]]] = {}
        for s in self.form.pieces[0].stores:
            tensor = task.binding(s.tensor).region.tensor
            if tensor not in order:
                order.append(tensor)
        for r0, r1, parts in [] if empty else self.bands():
            self.r0, self.r1, self.nrows = r0, r1, r1 - r0
            for piece, c0, c1 in parts:
                self.c0, self.c1 = c0, c1
                self.lets = {}
                for s in piece.body:
                    if isinstance(s, ir.Let):
                        self.lets[s.name] = self.value(s.value)
                for s in piece.stores:
                    if s.op != "=":
                        raise refuse(f"the compound store '{s.op}' in '{task.kernel.name}'", s.span)
                    tensor = task.binding(s.tensor).region.tensor
                    band = values.setdefault(tensor, {}).setdefault((r0, r1), [])
                    band.append((c0, c1, self.value(s.value)))
        writes = 0
        for tensor in order:
            if empty:
                writes += self.unchanged(tensor)
            else:
                bands = [(r0, r1, parts) for (r0, r1), parts in values[tensor].items()]
                writes += self.store(tensor, sorted(bands))
        self.nrows = self.height
        lines = self.tables()
        ops = -(-self.work // max(self.height, 1))
        depth = max(self.depths.values(), default=0)
        vectors = self.height * math.ceil(self.width / machine.LANES)
        if self.split_shifts:  # shifts of one inner split's rows each
            cost = StageCost(
                ops, self.split_shifts, vectors, depth, (), writes, sxm_rows=self.height
            )
        else:
            cost = StageCost(ops, self.sxm, vectors, depth, (), writes)
        loops = " x ".join(
            f"{n} in {a}..{b}"
            for n, a, b in ((self.row, self.top, self.top + self.height), self.lanes_loop)
            if n
        )
        guarded = len(self.form.pieces) > 1
        pieces = f" in {len(self.form.pieces)} guarded pieces (bands of rows, lanes by bit masks)"
        return Stage(
            task.name,
            f"Task '{task.name}' ({task.kernel.name}): element-wise on the VXM over {loops}"
            f"{pieces if guarded else ''}, {self.height} row(s) of {self.width} lanes; lane "
            "offsets through SXM shifts.",
            tuple(sorted(self.after - {"", task.name})),
            tuple(lines),
            cost,
        )

    def bands(self) -> list[tuple[int, int, list[tuple[Piece, int, int]]]]:
        """The rows cut at every piece's row bounds; per band, the pieces covering it and their
        lanes, by lane."""
        boxes = []
        for p in self.form.pieces:
            bounds = p.bounds(self.sizes)
            (r0, r1), (c0, c1) = bounds if len(bounds) == 2 else ((0, 1), bounds[0])
            if r0 < r1 and c0 < c1:
                boxes.append((p, r0, r1, c0, c1))
        cuts = sorted({r for _, r0, r1, _, _ in boxes for r in (r0, r1)})
        out = []
        for lo, hi in zip(cuts, cuts[1:], strict=False):
            parts = sorted(
                ((p, c0, c1) for p, r0, r1, c0, c1 in boxes if r0 <= lo and hi <= r1),
                key=lambda part: part[1],
            )
            if parts:
                out.append((lo, hi, parts))
        return out


def _vxm_ops(text: str) -> int:
    """VXM ops in one emitted statement (a shift_lanes call joins each split on the VXM)."""
    return sum(text.count(f"g.{op}(") for op in VXM_OPS) + text.count(SHIFT_LANES)


def _groq_dtype(dtype: DType) -> str:
    return {DType.F32: "float32", DType.F16: "float16", DType.I32: "int32"}[dtype]


def _rows(var: str, lo: int, hi: int, total: int) -> str:
    """Rows lo..hi of a rank-2 memory tensor as a view (g.split_vectors)."""
    if lo == 0 and hi == total:
        return var
    sizes = [n for n in (lo, hi - lo, total - hi) if n > 0]
    index = 1 if lo > 0 else 0
    return f"g.split_vectors({var}, {sizes})[{index}]"


def _value(form, sizes: dict[str, int], span: Span) -> int:
    if any(n not in sizes for n, _ in form.terms):
        raise refuse("a loop bound that is not a compile-time size", span)
    return form.const + sum(sizes[n] * c for n, c in form.terms)


def lower(graph: TaskGraph, precision: str) -> GroqProgram:
    return _Lowering(graph, precision).lower()


class _FoldingStage(_VectorStage):
    """What the Reduction lowerings share: identical operations emitted once, ``exp`` as
    ``exp2`` of ``x log2(e)`` and division as a multiplication by ``rsqrt(|b|)^2`` with ``b``'s
    sign put back through its bits (the VXM has neither ``exp`` nor a divide)."""

    def __init__(self, low: _Lowering, task: Task) -> None:
        super().__init__(low, task)
        self.emitted: dict[str, str] = {}
        self.narrow: set[str] = set()  # variables one 320-lane vector wide (folded rows)

    def emit(self, text: str, depth: int, memory: bool = False, dtype: str = "float32") -> str:
        """The same operation on the same operands is computed once (``exp(x[r, j] - top)`` in
        both the sum and the stores of softmax)."""
        if text not in self.emitted:
            self.emitted[text] = super().emit(text, depth, memory, dtype)
        return self.emitted[text]

    def bound(self, e: ir.Expr) -> int:
        form = affine(e)
        if form is None:
            raise refuse("a loop bound that is not a compile-time size", e.span)
        return _value(form, self.sizes, e.span)

    # ---------------------------------------------------------------------------- values

    def value(self, e: ir.Expr) -> str:
        if e.dtype is not None and e.dtype != DType.F32 and not isinstance(e, ir.Cast):
            return super().value(e)
        match e:
            case ir.Intrinsic(fn="exp", args=(x,)):
                a = self.value(x)
                scaled = self.emit(
                    f"g.mul({a}, {self.constant(('fill', LOG2E))})", 1 + self.depth(a)
                )
                return self.emit(
                    f"g.exp2({scaled})  # exp(x) = exp2(x log2(e))", 1 + self.depth(scaled)
                )
            case ir.Binary(op="/", lhs=lhs, rhs=rhs):
                return self.divide(self.value(lhs), self.value(rhs))
        return super().value(e)

    def fixed_index(self, idx: ir.Expr) -> int | None:
        """The value of an index that names no loop variable (``x[r, 0]``), else None."""
        form = affine(idx)
        if form is None or any(n not in self.sizes for n, _ in form.terms):
            return None
        return form.const + sum(self.sizes[n] * c for n, c in form.terms)

    def alu(self, fn: str, a: str, b: str) -> str:
        result = self.emit(f"g.{fn}({a}, {b})", 1 + max(self.depth(a), self.depth(b)))
        if a in self.narrow or b in self.narrow:
            self.narrow.add(result)
        return result

    def divide(self, a: str, b: str) -> str:
        """``a / b`` as ``a * rsqrt(|b|)^2`` with the sign of ``b`` added back to the bits."""
        b = self.stream(b)
        bits = self.emit(f"g.reinterpret({b}, g.int32)", self.depth(b))
        mag = self.alu("bitwise_and", bits, self.bitmask(("fill", MAGNITUDE_BITS)))
        r = self.emit(f"g.rsqrt(g.reinterpret({mag}, g.float32))", 1 + self.depth(mag))
        inv = self.alu("mul", r, r)
        sign = self.alu("bitwise_and", bits, self.bitmask(("fill", SIGN_BIT)))
        signed = self.alu("add", self.emit(f"g.reinterpret({inv}, g.int32)", self.depth(inv)), sign)
        recip = self.emit(f"g.reinterpret({signed}, g.float32)  # 1 / b", self.depth(signed))
        return self.alu("mul", a, recip)


class _ReductionStage(_FoldingStage):
    """One ``Reduction`` task (softmax, row sums, maxima) over rows of vectors.

    The kept index is the row: every row is one vector on the VXM and the folded dimension runs
    along its lanes. A fold evaluates its body on all lanes at once, shifts the range's first
    lane to lane 0 and folds across lanes as a Groq engineer does, with SXM shifts and VXM ops:
    sums as a tree (lane k adds lane k + s for s = 1, 2, 4, ..., lanes past the range cleared
    with a bit mask first), maxima and minima by halving with overlap (no neutral value needed,
    NaN ignored as ``max=`` does); the SXM's lane-0 broadcast then gives every lane the row's
    value, so per-row values combine with lane values as plain VXM streams. ``exp`` is ``exp2``
    of ``x log2(e)``; division is a multiplication by ``rsqrt(|b|)^2`` with ``b``'s sign put back
    through its bits (the VXM has neither ``exp`` nor a divide).
    """

    def __init__(self, low: _Lowering, task: Task, form: Reduction) -> None:
        super().__init__(low, task)
        self.form = form
        kernel = task.kernel.name
        widths = set()
        self.columns: set[str] = set()  # rank-1 outputs, one value per row: (rows, 1) on chip
        loaded = {n.tensor for n in ir.walk_body(form.loop.body) if isinstance(n, ir.Load)}
        for param, dim in form.kept_dims:
            decl = low.graph.tensor(task.binding(param).region.tensor)
            if len(decl.shape) == 1 and param not in loaded and not self.read_later(decl.name):
                self.columns.add(decl.name)
                continue
            if dim != 0 or len(decl.shape) != 2:
                raise refuse(
                    f"the reduction '{kernel}' keeps dimension {dim} of the rank-"
                    f"{len(decl.shape)} tensor '{decl.name}' (on groq the kept index names the "
                    "rows of rank-2 tensors: a row is one vector, folded across its lanes)",
                    form.loop.span,
                )
            widths.add(decl.shape[1])
        if len(widths) != 1:
            raise refuse(f"the reduction '{kernel}' over rows of different widths", form.loop.span)
        self.width = widths.pop()
        self.splits = math.ceil(self.width / machine.LANES)
        self.passes = 0  # SXM passes over one inner split's rows
        self.row = form.kept
        self.r0 = self.bound(form.loop.lo)
        self.r1 = self.bound(form.loop.hi)
        self.nrows = self.height = self.r1 - self.r0
        self.lane, self.c0, self.c1 = "", 0, self.width
        # An SXM op on the fold's chain, in ALU levels (its latency); the permutors' throughput
        # is the cost model's other bound (cost.stage_cycles).
        self.sxm_levels = -(-machine.chip.SXM_LATENCY // machine.chip.VXM_LATENCY)

    def read_later(self, tensor: str) -> bool:
        tasks = self.low.graph.tasks
        later = tasks[tasks.index(self.task) + 1 :]
        return any(r.tensor == tensor for t in later for r in t.reads)

    # ---------------------------------------------------------------------------- values

    def value(self, e: ir.Expr) -> str:
        match e:
            case ir.Load(indices=(_, lane)) if self.fixed_index(lane) is not None:
                return self.row_value(e, self.fixed_index(lane))
        return super().value(e)

    def row_value(self, e: ir.Load, lane: int) -> str:
        """A load at a fixed lane as a per-row value: that lane shifted to lane 0, broadcast."""
        tensor, var = self.low.tensor_var(self.task, e.tensor)
        self.after.add(self.low.writer.get(tensor, ""))
        rows = program_shape(self.low.graph.tensor(tensor).shape)[0]
        da = self.offset(e.indices[0], self.row)
        if da is None or not 0 <= lane < self.width:
            raise refuse(f"the load {e.tensor}[...] in '{self.task.kernel.name}'", e.span)
        key = (tensor, da, "lane", lane)
        if key in self.loads:
            return self.loads[key]
        lo, hi = self.r0 + da, self.r1 + da
        if lo < 0 or hi > rows:
            raise refuse(
                f"the load of '{tensor}' in '{self.task.kernel.name}' outside its rows", e.span
            )
        window = _rows(var, lo, hi, rows)
        split, lane = divmod(lane, machine.LANES)
        if self.splits > 1:  # the inner split that holds the lane
            window = f"g.split_inner_splits({window})[{split}]"
        value = self.stream(window if window == var else self.emit(window, 0, memory=True))
        if self.splits > 1:
            self.narrow.add(value)
        if lane:
            value = self.shift(value, -lane, f"lane {lane} to lane 0")
        self.loads[key] = self.widen(self.broadcast(value))
        return self.loads[key]

    def shift(self, value: str, n: int, note: str) -> str:
        self.sxm += 1
        depth = self.depth(value) + self.sxm_levels
        if self.splits > 1 and value not in self.narrow:
            self.passes += 2 * self.splits - 1
            text = f"shift_lanes({value}, {n}, permutor={self.sxm % 2})  # {note}"
            return self.emit(text, depth)
        self.passes += 1
        text = f"g.shift({value}, {n}, permutor_id={self.sxm % 2})  # {note}"
        return self.keep_narrow(value, self.emit(text, depth))

    def keep_narrow(self, source: str, result: str) -> str:
        if source in self.narrow:
            self.narrow.add(result)
        return result

    def broadcast(self, value: str) -> str:
        self.sxm += 1
        self.passes += 1
        depth = self.depth(value) + self.sxm_levels
        text = f"g.broadcast_lane_0({value}, permutor_req={self.sxm % 2})"
        return self.keep_narrow(value, self.emit(text, depth))

    def widen(self, value: str) -> str:
        """A folded row's broadcast value, one vector, on every inner split of the row."""
        if value not in self.narrow:
            return value
        lanes = machine.LANES * self.splits
        whole = f"g.concat_inner_splits([{value}] * {self.splits})"
        if lanes != self.width:
            whole = f"g.split({whole}, dim=1, splits=[{self.width}, {lanes - self.width}])[0]"
        return self.emit(whole, self.depth(value))

    def fold_splits(self, v: str, op: str, w: int) -> str:
        """A row of several inner splits folded into one vector, lane by lane; for max and min
        the last split's lanes past the range keep the vector's own values (through bits)."""
        pieces = self.emit(f"g.split_inner_splits({v})", self.depth(v))
        acc = f"{pieces}[0]"
        self.depths[acc] = self.depth(v)
        for k in range(1, self.splits):
            valid = min(machine.LANES, w - machine.LANES * k)
            if valid <= 0:
                break
            piece = f"{pieces}[{k}]"
            self.depths[piece] = self.depth(v)
            if op == "sum":
                acc = self.alu("add", acc, piece)
            else:
                if valid < machine.LANES:
                    mine = self.emit(f"g.reinterpret({piece}, g.int32)", self.depth(v))
                    mask = self.bitmask(("lanes", 0, valid))
                    mine = self.alu("bitwise_and", mine, f"g.split_inner_splits({mask})[0]")
                    theirs = self.emit(f"g.reinterpret({acc}, g.int32)", self.depth(acc))
                    gap = self.bitmask(("gap", 0, valid))
                    theirs = self.alu("bitwise_and", theirs, f"g.split_inner_splits({gap})[0]")
                    joined = self.alu("add", mine, theirs)
                    piece = self.emit(f"g.reinterpret({joined}, g.float32)", self.depth(joined))
                acc = self.alu("maximum" if op == "max" else "minimum", acc, piece)
        if acc == f"{pieces}[0]":
            acc = self.emit(acc, self.depth(v))
        self.narrow.add(acc)
        return acc

    # ----------------------------------------------------------------------------- folds

    def first_lane(self, f: Fold, lo: int) -> str:
        """The fold's body on every lane, its range's first lane (``var = lo``) on lane 0."""
        v = self.stream(self.value(f.body))
        return self.shift(v, -lo, f"{f.var} = {lo} to lane 0") if lo else v

    def fold(self, f: Fold) -> str:
        lo, hi = self.bound(f.lo), self.bound(f.hi)
        kernel = self.task.kernel.name
        if lo < 0 or hi > self.width:
            raise refuse(
                f"the fold over {f.var} in {lo}..{hi} in '{kernel}' (the lanes of a "
                f"{self.width}-lane row)",
                f.lo.span,
            )
        init = None
        if f.init is not None:
            self.lane = ""
            init = self.stream(self.value(f.init))
        if hi <= lo:
            return init if init is not None else self.stream(self.constant(("fill", 0.0)))
        self.lane, w = f.var, hi - lo
        v = self.first_lane(f, lo)
        self.lane = ""
        if f.op == "sum" and hi < self.width:  # lanes past the range: clear their bits
            bits = self.emit(f"g.reinterpret({v}, g.int32)", self.depth(v))
            kept = self.alu("bitwise_and", bits, self.bitmask(("lanes", 0, w)))
            v = self.emit(f"g.reinterpret({kept}, g.float32)", self.depth(kept))
        if self.splits > 1:
            v = self.fold_splits(v, f.op, w)
            w = min(w, machine.LANES)
        if f.op == "sum":
            step = 1
            while step < w:
                v = self.alu("add", v, self.shift(v, -step, f"lane k + {step} to lane k"))
                step *= 2
        else:
            fn = "maximum" if f.op == "max" else "minimum"
            while w > 1:
                half = (w + 1) // 2
                v = self.alu(fn, v, self.shift(v, half - w, f"lane k + {w - half} to lane k"))
                w = half
        total = self.widen(self.broadcast(v))
        if init is None:
            return total
        fn = {"sum": "add", "max": "maximum", "min": "minimum"}[f.op]
        return self.alu(fn, init, total)

    # ----------------------------------------------------------------------------- stage

    def lower(self) -> Stage:
        task = self.task
        writes = 0
        for step in self.form.steps:
            match step:
                case Fold():
                    self.lets[step.name] = self.fold(step)
                case RowLet(name=name, value=value):
                    self.lane = ""
                    self.lets[name] = self.value(value)
                case RowStores(loop=loop, body=body):
                    writes += self.row_stores(loop, body)
        writes += self.finish()
        lines = self.tables()
        ops = sum(line.count(f"g.{op}(") for line in lines for op in VXM_OPS)
        ops += sum(line.count(SHIFT_LANES) for line in lines)
        depth = max(self.depths.values(), default=0) + 2
        vectors = self.nrows * self.splits
        return Stage(
            task.name,
            self.describe(),
            tuple(sorted(self.after - {"", task.name})),
            tuple(lines),
            StageCost(
                ops, self.passes, vectors, depth, (), writes, sxm_rows=self.nrows, chained=True
            ),
        )

    def finish(self) -> int:
        """Vectors written after the steps (the stores write as they come)."""
        return 0

    def describe(self) -> str:
        folds = ", ".join(f"{f.op} over {f.var}" for f in self.form.folds)
        return (
            f"Task '{self.task.name}' ({self.task.kernel.name}): a reduction over {self.nrows} "
            f"row(s) of {self.width} lanes ({folds}): each row one vector, folded across its "
            "lanes by SXM shifts and VXM ops, its value broadcast from lane 0."
        )

    def column_store(self, tensor: str, value: str, span: Span) -> int:
        """One value per row into a rank-1 output: lane 0 of each row, a (rows, 1) tensor on
        the chip (run.py reshapes it), every element written once by this task."""
        low = self.low
        rows = low.graph.tensor(tensor).shape[0]
        if (self.r0, self.r1) != (0, rows) or tensor in low.current:
            raise refuse(
                f"the store of '{tensor}' in '{self.task.kernel.name}' (a per-row output is "
                "written whole by one task on groq)",
                span,
            )
        value = self.stream(value)
        if self.width > 1:
            parts = f"[1, {self.width - 1}]"
            value = self.emit(
                f"g.split({value}, dim=1, splits={parts})[0]  # lane 0", self.depth(value)
            )
        name, is_output = low.output_name(self.task, tensor)
        layout = low.budget.take(name, (rows, 1), "float32", self.task.span)
        flag = ", program_output=True" if is_output else ""
        self.lines.append(f'{name}_mt = {value}.write(name="{name}", layout="{layout}"{flag})')
        low.current[tensor] = f"{name}_mt"
        low.writer[tensor] = self.task.name
        return rows

    def row_stores(self, loop: ir.For | None, body: tuple[ir.Stmt, ...]) -> int:
        kernel = self.task.kernel.name
        if loop is None:
            self.lane, self.c0, self.c1 = "", 0, self.width
        else:
            self.lane, self.c0, self.c1 = loop.var, self.bound(loop.lo), self.bound(loop.hi)
        writes = 0
        for s in body:
            if isinstance(s, ir.Let):
                self.lets[s.name] = self.value(s.value)
                continue
            tensor = self.task.binding(s.tensor).region.tensor
            if tensor in self.columns:
                if loop is not None:
                    raise refuse(
                        f"the store of '{tensor}' in '{kernel}' inside the loop over {loop.var}",
                        s.span,
                    )
                writes += self.column_store(tensor, self.value(s.value), s.span)
                continue
            if loop is None:
                lane = self.fixed_index(s.indices[1])
                if lane is None or not 0 <= lane < self.width:
                    raise refuse(f"the store of '{tensor}' in '{kernel}'", s.span)
                self.c0, self.c1 = lane, lane + 1
            elif self.offset(s.indices[1], self.lane) != 0:
                raise refuse(
                    f"the store of '{tensor}' in '{kernel}' (stores take lane {self.lane})", s.span
                )
            if self.offset(s.indices[0], self.row) != 0:
                raise refuse(f"the store of '{tensor}' in '{kernel}' at another row", s.span)
            if self.c1 > self.c0 and self.nrows > 0:
                band = (self.r0, self.r1, [(self.c0, self.c1, self.value(s.value))])
                writes += self.store(tensor, [band])
        self.lane = ""
        return writes


class _ColumnStage(_FoldingStage):
    """One ``Reduction`` whose kept index names columns (column sums, minima, means).

    The kept index runs along the lanes and a fold runs down the rows: its body streams as the
    rows of its range, and the rows are folded by halving, each step one VXM op combining the
    first half of the rows with the second (ceil(log2 n) steps: a sum is a tree, max and min
    are exact and ignore NaN as ``max=`` does). A per-column value is one row; where later work
    needs it on several rows it is written to memory once and read as that many rows.
    """

    def __init__(self, low: _Lowering, task: Task, form: Reduction) -> None:
        super().__init__(low, task)
        self.form = form
        widths = {
            low.graph.tensor(task.binding(param).region.tensor).shape[-1]
            for param, _ in form.kept_dims
        }
        if len(widths) != 1:
            raise refuse(
                f"the reduction '{task.kernel.name}' over columns of different heights",
                form.loop.span,
            )
        self.width = widths.pop()
        self.lane, self.c0, self.c1 = form.kept, self.bound(form.loop.lo), self.bound(form.loop.hi)
        self.longest = self.height = 1  # the most rows one op streams; constants' default rows
        self.span = 0  # cycles from the first vector to the last op's last (cost.stage_cycles)
        self.at_rows("", 0, 1)
        self.per_column: set[str] = set()  # lets and folds holding one row
        self.spreads: dict[tuple[str, int], str] = {}  # (let, rows) -> its rows, from memory

    def emit(self, text: str, depth: int, memory: bool = False, dtype: str = "float32") -> str:
        """As any stage emits; the span notes when the op's rows have all streamed, its chain's
        latency first."""
        var = super().emit(text, depth, memory, dtype)
        rows = self.nrows * math.ceil(self.width / machine.LANES)
        self.span = max(self.span, self.depth(var) * machine.chip.VXM_LATENCY + rows)
        return var

    def at_rows(self, row: str, r0: int, r1: int) -> None:
        self.row, self.r0, self.r1, self.nrows = row, r0, r1, r1 - r0
        self.longest = max(self.longest, self.nrows)

    def value(self, e: ir.Expr) -> str:
        match e:
            case ir.Name(name=n) if n in self.per_column and self.nrows > 1:
                return self.spread(n)
            case ir.Load(indices=(first, _)) if self.fixed_index(first) is not None:
                return self.row_load(e, self.fixed_index(first))
        return super().value(e)

    def spread(self, name: str) -> str:
        """A per-column value on the current rows: written once, read as that many rows."""
        low, task = self.low, self.task
        if (name, 1) not in self.spreads:
            tensor = low.unique(f"{task.name}_{name}")
            layout = low.budget.take(tensor, (1, self.width), "float32", task.span)
            value = self.lets[name]
            self.lines.append(f'{tensor}_mt = {value}.write(name="{tensor}", layout="{layout}")')
            self.spreads[name, 1] = f"{tensor}_mt"
        n = self.nrows
        if (name, n) not in self.spreads:
            text = f"g.concat_vectors([{self.spreads[name, 1]}] * {n}, ({n}, {self.width}))"
            # on the chain: the write, then a read and the hops to the VXM
            depth = self.depth(self.lets[name]) + SPREAD_LEVELS
            self.spreads[name, n] = self.emit(text, depth, memory=True)
        return self.spreads[name, n]

    def row_load(self, e: ir.Load, row: int) -> str:
        """``x[0, c]``: one row of a rank-2 tensor, on every current row."""
        tensor, var = self.low.tensor_var(self.task, e.tensor)
        self.after.add(self.low.writer.get(tensor, ""))
        rows = self.low.graph.tensor(tensor).shape[0]
        if self.offset(e.indices[1], self.lane) != 0 or not 0 <= row < rows:
            raise refuse(f"the load {e.tensor}[...] in '{self.task.kernel.name}'", e.span)
        n = self.nrows
        window = _rows(var, row, row + 1, rows)
        if n > 1:
            window = f"g.concat_vectors([{window}] * {n}, ({n}, {self.width}))"
        return self.emit(window, 0, memory=True)

    def fold(self, f: Fold) -> str:
        lo, hi = self.bound(f.lo), self.bound(f.hi)
        fn = {"sum": "add", "max": "maximum", "min": "minimum"}[f.op]
        self.at_rows("", 0, 1)
        init = None if f.init is None else self.stream(self.value(f.init))
        if hi <= lo:
            return init if init is not None else self.stream(self.constant(("fill", 0.0)))
        self.at_rows(f.var, lo, hi)
        v = self.stream(self.value(f.body))
        n = hi - lo
        while n > 1:
            half = n // 2
            sizes = [half, half] + ([n - 2 * half] if n > 2 * half else [])
            self.nrows = half
            parts = self.emit(f"g.split_vectors({v}, {sizes})", self.depth(v))
            for k in range(len(sizes)):
                self.depths[f"{parts}[{k}]"] = self.depth(v)
            v = self.alu(fn, f"{parts}[0]", f"{parts}[1]")
            if len(sizes) == 3:
                text = f"g.concat_vectors([{v}, {parts}[2]], ({half + 1}, {self.width}))"
                v = self.emit(text, self.depth(v))
            n -= half
        self.at_rows("", 0, 1)
        if init is not None:
            return self.alu(fn, init, v)
        if f.op == "sum":  # the language's sum starts at +0: a column of -0 sums to +0
            return self.alu("add", v, self.stream(self.constant(("fill", 0.0))))
        return v

    def lower(self) -> Stage:
        task, kernel = self.task, self.task.kernel.name
        writes = 0
        for step in self.form.steps:
            match step:
                case Fold():
                    self.lets[step.name] = self.fold(step)
                    self.per_column.add(step.name)
                case RowLet(name=name, value=value):
                    self.at_rows("", 0, 1)
                    self.lets[name] = self.value(value)
                    self.per_column.add(name)
                case RowStores(loop=loop, body=body):
                    writes += self.stores(loop, body)
        self.at_rows("", 0, 1)
        lines = self.tables()
        vectors = self.longest * math.ceil(self.width / machine.LANES)
        ops = -(-self.work // self.longest)
        depth = max(self.depths.values(), default=0)
        folds = ", ".join(f"{f.op} over {f.var}" for f in self.form.folds)
        return Stage(
            task.name,
            f"Task '{task.name}' ({kernel}): a reduction down {self.width} column(s) ({folds}): "
            "each column a lane, its rows folded by halving with VXM ops.",
            tuple(sorted(self.after - {"", task.name})),
            tuple(lines),
            StageCost(ops, 0, vectors, depth, (), writes, span=self.span),
        )

    def stores(self, loop: ir.For | None, body: tuple[ir.Stmt, ...]) -> int:
        kernel = self.task.kernel.name
        if loop is None:
            self.at_rows("", 0, 1)
        else:
            self.at_rows(loop.var, self.bound(loop.lo), self.bound(loop.hi))
        writes = 0
        for s in body:
            if isinstance(s, ir.Let):
                self.lets[s.name] = self.value(s.value)
                self.per_column.discard(s.name)
                continue
            tensor = self.task.binding(s.tensor).region.tensor
            rank = len(self.low.graph.tensor(tensor).shape)
            at_row = rank == 1 or self.offset(s.indices[0], self.row) == 0
            if s.op != "=" or rank != len(s.indices) or not at_row:
                raise refuse(f"the store of '{tensor}' in '{kernel}'", s.span)
            if (rank == 1) != (loop is None):
                raise refuse(
                    f"the store of '{tensor}' in '{kernel}' (per-column values go to rank-1 "
                    "tensors, the loop's rows to rank-2 ones)",
                    s.span,
                )
            if self.offset(s.indices[-1], self.lane) != 0:
                raise refuse(
                    f"the store of '{tensor}' in '{kernel}' (stores take lane {self.lane})", s.span
                )
            if self.c1 > self.c0 and self.nrows > 0:
                band = (self.r0, self.r1, [(self.c0, self.c1, self.value(s.value))])
                writes += self.store(tensor, [band])
        return writes


class _WholeStage(_ReductionStage):
    """A ``Reduction`` without a kept index (an OpenMP task folding its slice: ``s += v[i]``,
    ``m = fmaxf(m, v[i])``) as one row of rank-1 tensors: a task's slice starts at its
    region's first lane, each fold is the row fold above over the lanes of its range, an
    element read on its own (``v[0]``) is shifted to lane 0 and broadcast, and each store
    writes its element's lane of the output's new version, the other lanes kept."""

    def __init__(self, low: _Lowering, task: Task, form: Reduction) -> None:
        _FoldingStage.__init__(self, low, task)  # one row, set here: no kept index to read
        self.form = form
        self.columns = set()
        kernel = task.kernel.name
        loaded = {n.tensor for n in ir.walk_body(task.kernel.body) if isinstance(n, ir.Load)}
        widths = {low.graph.tensor(task.binding(p).region.tensor).shape[-1] for p in loaded}
        if len(widths) != 1:
            raise refuse(
                f"the folds of '{kernel}' over {len(widths)} tensor widths (one row of lanes)",
                task.span,
            )
        self.width = widths.pop()
        self.splits = math.ceil(self.width / machine.LANES)
        self.passes = 0
        self.row, self.r0, self.r1 = "", 0, 1
        self.nrows = self.height = 1
        self.lane, self.c0, self.c1 = "", 0, self.width
        self.sxm_levels = -(-machine.chip.SXM_LATENCY // machine.chip.VXM_LATENCY)
        self.base = 0  # the lane a load's index 0 is on: its region's first, or past it
        self.skip = 0  # the first lane of the fold being lowered
        self.pending: dict[str, dict[int, tuple[str, Span]]] = {}  # tensor -> lane -> value

    def start(self, param: str) -> int:
        """The first lane of a rank-1 parameter's region in its tensor."""
        return self.task.binding(param).region.box[-1][0]

    def offset(self, idx: ir.Expr, var: str) -> int | None:
        found = super().offset(idx, var)
        return None if found is None else found + self.base

    def load(self, e: ir.Load) -> str:
        self.reading(self.task.binding(e.tensor).region.tensor, e.span)
        self.base = self.start(e.tensor) + self.skip
        if self.splits > 1 and self.base >= machine.LANES:
            raise refuse(
                f"the load {e.tensor}[...] in '{self.task.kernel.name}' from lane {self.base} "
                f"of a row of {self.width} (a shift across a row's {machine.LANES}-lane inner "
                "splits reaches the next split only)",
                e.span,
            )
        shifts = self.sxm
        value = super().load(e)
        self.base = 0
        if self.sxm > shifts:  # on the fold's chain: the SXM's latency, in ALU levels
            self.depths[value] += self.sxm_levels
        return value

    def first_lane(self, f: Fold, lo: int) -> str:
        """The body's loads read from the range's first lane of the task's slice on, so each
        is one shift (the region's start and ``lo`` together)."""
        self.skip = lo
        v = self.stream(self.value(f.body))
        self.skip = 0
        return v

    def value(self, e: ir.Expr) -> str:
        match e:
            case ir.Load(indices=(idx,)) if self.fixed_index(idx) is not None:
                return self.element(e, self.start(e.tensor) + self.fixed_index(idx))
        return super().value(e)

    def element(self, e: ir.Load, lane: int) -> str:
        """One element as a value on every lane: shifted to lane 0 and broadcast."""
        self.reading(self.task.binding(e.tensor).region.tensor, e.span)
        tensor, var = self.low.tensor_var(self.task, e.tensor)
        self.after.add(self.low.writer.get(tensor, ""))
        key = (tensor, "element", lane)
        if key in self.loads:
            return self.loads[key]
        if not 0 <= lane < self.width:
            raise refuse(f"the load {e.tensor}[...] in '{self.task.kernel.name}'", e.span)
        split, at = divmod(lane, machine.LANES)
        value = self.stream(var)
        if self.splits > 1:  # the inner split that holds the lane
            value = self.emit(f"g.split_inner_splits({value})[{split}]", self.depth(value))
            self.narrow.add(value)
        if at:
            value = self.shift(value, -at, f"lane {at} to lane 0")
        self.loads[key] = self.widen(self.broadcast(value))
        return self.loads[key]

    def reading(self, tensor: str, span: Span) -> None:
        """A tensor this task reads must not have been stored to before (stores write last)."""
        if tensor in self.pending:
            raise refuse(
                f"the load of '{tensor}' in '{self.task.kernel.name}' after a store to it", span
            )

    def row_stores(self, loop: ir.For | None, body: tuple[ir.Stmt, ...]) -> int:
        """Each store's value on its lane; a tensor's new version is written once, by
        ``finish``, with every lane the task stores."""
        kernel = self.task.kernel.name
        for s in body:
            if isinstance(s, ir.Let):
                self.lets[s.name] = self.value(s.value)
                continue
            tensor = self.task.binding(s.tensor).region.tensor
            if len(self.low.graph.tensor(tensor).shape) != 1:
                raise refuse(
                    f"the store of '{tensor}' in '{kernel}' (a fold's value goes to an element "
                    "of a rank-1 tensor on groq)",
                    s.span,
                )
            lane = self.start(s.tensor) + self.fixed_index(s.indices[0])
            value = self.stream(self.value(s.value))
            self.pending.setdefault(tensor, {})[lane] = (value, s.span)
        return 0

    def finish(self) -> int:
        return sum(self.element_store(t, lanes) for t, lanes in self.pending.items())

    def element_store(self, tensor: str, lanes: dict[int, tuple[str, Span]]) -> int:
        """The values (every lane alike) on their lanes of the tensor's new version, through
        a stage as wide as the tensor (its masks are rows of its width)."""
        width = self.low.graph.tensor(tensor).shape[0]
        if width > self.width:
            raise refuse(
                f"the store of '{tensor}' in '{self.task.kernel.name}' ({self.width} lanes "
                f"into {width})",
                next(iter(lanes.values()))[1],  # the task's first store to it
            )
        out = _Elements(self, f"{self.task.name}_{tensor}", width)
        parts = []
        for lane, (value, _) in sorted(lanes.items()):
            if width < self.width:
                splits = f"[{width}, {self.width - width}]"
                text = f"g.split({value}, dim=1, splits={splits})[0]  # {width} lanes"
                value = self.emit(text, self.depth(value))
            out.depths[value] = self.depth(value)
            parts.append((lane, lane + 1, value))
        writes = out.store(tensor, [(0, 1, parts)])
        self.lines.extend(out.tables())
        self.after |= out.after
        self.depths.update(out.depths)
        return writes

    def describe(self) -> str:
        folds = ", ".join(f"{f.op} over {f.var}" for f in self.form.folds)
        return (
            f"Task '{self.task.name}' ({self.task.kernel.name}): folds of its slice ({folds}) "
            f"in one row of {self.width} lanes, each by SXM shifts and VXM ops, its value "
            "broadcast from lane 0 and stored on its element's lane."
        )


class _Elements(_VectorStage):
    """The stores of a ``_WholeStage``: one row as wide as the stored tensor, its masks the
    first lanes of rows of the stage's own tables (every table costs whole MEM slices)."""

    def __init__(self, stage: _WholeStage, prefix: str, width: int) -> None:
        super().__init__(stage.low, stage.task, prefix)
        self.stage = stage
        self.row, self.lane = "", ""
        self.r0, self.r1, self.c0, self.c1 = 0, 1, 0, width
        self.nrows = self.height = 1
        self.width = width

    def tabled_row(self, sigil: str, row: tuple, one: bool = False) -> str:
        whole = self.stage.tabled_row(sigil, row, one=True)
        if self.width == self.stage.width:
            return whole
        key = ("table", whole)
        if key not in self.loads:
            splits = f"[{self.width}, {self.stage.width - self.width}]"
            text = f"g.split({whole}, dim=1, splits={splits})[0]"
            self.loads[key] = self.emit(text, 0, memory=True, dtype=TABLES[sigil][2])
        return self.loads[key]


def _reduction(low: _Lowering, task: Task, form: Reduction) -> _FormStage:
    """Rows or columns: the kept index names the rows of rank-2 tensors (a row is one vector,
    folded across its lanes) or their columns (each column a lane, folded down the rows); a
    fold with no kept index is one row."""
    if form.loop is None:
        return _WholeStage(low, task, form)
    columns = all(
        dim == len(low.graph.tensor(task.binding(p).region.tensor).shape) - 1
        for p, dim in form.kept_dims
    ) and any(dim == 1 for _, dim in form.kept_dims)
    return _ColumnStage(low, task, form) if columns else _ReductionStage(low, task, form)


class _Pointwise(_VectorStage):
    """Element-wise work around a matrix product over one (rows x lanes) tensor: an operand's
    prologue (the rows of A, or of B's transpose, along K) or the epilogue (the rows of C)."""

    def __init__(
        self,
        low: _Lowering,
        task: Task,
        prefix: str,
        loops: tuple[str, str],
        shape: tuple[int, int],
        placeholder: str,
        source: str,
    ) -> None:
        super().__init__(low, task, prefix)
        self.row, self.lane = loops
        self.r0, self.r1, self.c0, self.c1 = 0, shape[0], 0, shape[1]
        self.nrows = self.height = shape[0]
        self.width = shape[1]
        self.lets[placeholder] = source

    def lower(self, e: ir.Expr) -> tuple[str, list[str]]:
        """The stream of ``e`` and the lines that compute it, its constant tables first."""
        value = self.stream(self.value(e))
        return value, self.tables()

    @property
    def ops(self) -> int:
        return -(-self.work // max(self.height, 1))


class _ContractionStage(_VectorStage):
    """One ``Contraction`` on the MXM (``nn.MatMul``, which tiles to the 320 x 320 weight
    blocks) in the chosen precision, with its element-wise work on the VXM: an operand's
    prologue before the products (then its fp16 parts are cast and written; a prologue that
    ends in ``f32(f16(...))`` gives the fp16 operand itself, one part), the epilogue (bias,
    scale, ReLU, casts) on the product's rows after them."""

    def __init__(self, low: _Lowering, task: Task, form: Contraction) -> None:
        super().__init__(low, task)
        self.form = form
        self.a_name = task.binding(form.a).region.tensor
        self.b_name = task.binding(form.b).region.tensor
        self.c_name = task.binding(form.c).region.tensor
        self.matmuls: list[tuple[str, int, int, int, str]] = []
        self.prologues: list[tuple[int, int, int]] = []  # (VXM ops, vectors, depth) per operand

    def lower(self) -> Stage:
        low, task, form = self.low, self.task, self.form
        kernel = task.kernel.name
        if self.from_chip(self.b_name):
            raise refuse(
                f"the matrix product '{kernel}' takes '{self.b_name}' from another task; the "
                "MXM's stationary operand comes transposed from the host",
                task.span,
            )
        p = low.precision
        out_name, is_output = low.output_name(task, self.c_name)
        c_layout = low.budget.take(out_name, (form.m, form.n), "float32", task.span)
        product = f"{task.name}_c"
        if p == "int8":
            self.int8(product)
        else:
            a_parts = self.parts("a")
            b_parts = self.parts("b")
            if p == "fp16":
                prod = self.matmul("16", (0, 1), a_parts[0], b_parts[0])
                self.lines.append(f"{product} = {prod}.read(streams=g.SG4)")
            else:
                self.f32_products(product, a_parts, b_parts)
        value, epilogue = product, None
        if form.epilogue is not None:
            epilogue = self.phase("epi", (form.row, form.col), (form.m, form.n), PRODUCT, product)
            value, lines = epilogue.lower(form.epilogue)
            self.after |= epilogue.after
            self.lines += lines
        var = f"{out_name}_mt"
        flag = ", program_output=True" if is_output else ""
        self.lines.append(f'{var} = {value}.write(name="{out_name}", layout="{c_layout}"{flag})')
        low.current[self.c_name] = var
        low.writer[self.c_name] = task.name
        comment = {
            "f32": {
                3: "fp16 high and low parts, three MXM products accumulated in fp32",
                2: "one operand's fp16 high and low parts with the other's fp16 value, two MXM "
                "products accumulated in fp32",
                1: "fp16 operands (exact in fp16), one MXM product accumulated in fp32",
            }.get(len(self.matmuls), ""),
            "fp16": "fp16 operands, one MXM product accumulated in fp32 (--precision fp16)",
            "int8": "host-quantised int8, int32 accumulation, rescaled (--precision int8)",
        }[p]
        around = [
            what
            for what, there in (
                ("a prologue on the VXM before", form.prologue_a or form.prologue_b),
                ("the epilogue on the VXM after", form.epilogue),
            )
            if there is not None
        ]
        vectors = form.m * math.ceil(form.n / machine.LANES)
        sums = {"f32": max(len(self.matmuls) - 1, 0), "fp16": 0, "int8": 2}[p]
        ops = sums + (epilogue.ops if epilogue else 0)
        after = max(epilogue.depths.values(), default=0) if epilogue else 0
        depth = (1 if sums else 0) + 1 + after
        cost = StageCost(
            ops, 0, vectors, depth, tuple(self.matmuls), vectors, prologue=tuple(self.prologues)
        )
        return Stage(
            task.name,
            f"Task '{task.name}' ({kernel}): {self.c_name} = {self.a_name} @ {self.b_name} "
            f"({form.m} x {form.k} x {form.n}) on the MXM: {comment}"
            f"{'; ' + ' and '.join(around) + ' it' if around else ''}.",
            tuple(sorted(self.after - {"", task.name})),
            tuple(self.lines),
            cost,
        )

    def from_chip(self, tensor: str) -> bool:
        return self.low.graph.tensor(tensor).role != "input" or tensor in self.low.writer

    def phase(
        self, kind: str, loops: tuple[str, str], shape: tuple[int, int], placeholder: str, source
    ) -> _Pointwise:
        return _Pointwise(
            self.low, self.task, f"{self.task.name}_{kind}", loops, shape, placeholder, source
        )

    def matmul(self, suffix: str, planes: tuple[int, ...], a: str, b: str) -> str:
        low, task, form = self.low, self.task, self.form
        attr = f"mm_{task.name}_{suffix}"
        name = low.unique(f"{self.c_name}_{suffix}")
        low.matmuls.append(MatMulDecl(attr, name, planes))
        # nn.MatMul(buffer_output=True) writes its product to S4 of its planes' hemisphere
        hemi = machine.chip.MXM_PLANES[planes[0]]
        low.budget.take(name, (form.m, form.n), "float32", task.span, hemi=hemi, slices=4)
        self.lines.append(f"{name}_mt = self.{attr}({a}, {b}, time=0)")
        dtype = "int8" if suffix == "q" else "float16"
        self.matmuls.append((",".join(map(str, planes)), form.m, form.k, form.n, dtype))
        return f"{name}_mt"

    def f32_products(self, product: str, a_parts: tuple[str, ...], b_parts: tuple[str, ...]):
        """The products of the operands' parts but the two low ones, small parts first."""
        (a_hi, *a_lo), (b_hi, *b_lo) = a_parts, b_parts
        hh = self.matmul("hh", (0, 1), a_hi, b_hi)
        hl = self.matmul("hl", (2, 3), a_hi, b_lo[0]) if b_lo else ""
        lh = self.matmul("lh", (0, 1), a_lo[0], b_hi) if a_lo else ""
        small = [x for x in (lh, hl) if x]
        if len(small) == 2:
            self.lines.append(f"{product} = g.add(g.add({lh}, {hl}), {hh})  # small parts first")
        elif small:
            self.lines.append(f"{product} = g.add({small[0]}, {hh})  # the small part first")
        else:
            self.lines.append(f"{product} = {hh}.read(streams=g.SG4)  # both operands are fp16")

    def int8(self, product: str) -> None:
        low, task, form = self.low, self.task, self.form
        kernel = task.kernel.name
        if form.prologue_a is not None or form.prologue_b is not None:
            raise refuse(
                f"--precision int8 for '{kernel}' with a prologue (int8 scales are chosen on the "
                "host, from the operands as given)",
                task.span,
            )
        if self.from_chip(self.a_name):
            raise refuse(
                f"--precision int8 for '{kernel}': '{self.a_name}' is computed on the chip and "
                "int8 scales are chosen on the host",
                task.span,
            )
        a_q = low.declare_input(self.a_name, "int8_rows", "int8")
        b_q = low.declare_input(self.b_name, "int8_cols", "int8", True, "W", machine.WEIGHT_SLICES)
        scale = low.declare_input(self.c_name, "scale", "float32")
        prod = self.matmul("q", (0,), a_q, b_q)
        self.lines.append(f"{product} = g.mul(g.cast({prod}, dtype=g.float32), {scale})")

    def parts(self, side: str) -> tuple[str, ...]:
        """The fp16 parts of an operand as the MXM takes it: ``(high, low)`` in f32 precision,
        one part in fp16 precision or where the operand is an fp16 value."""
        low, task, form = self.low, self.task, self.form
        name = self.a_name if side == "a" else self.b_name
        prologue = form.prologue_a if side == "a" else form.prologue_b
        decl = low.graph.tensor(name)
        weights = side == "b"
        place = (True, "W", machine.WEIGHT_SLICES) if weights else (False, "", 1)
        halves = low.precision == "f32"
        exact = (
            isinstance(prologue, ir.Cast)
            and prologue.to == DType.F32
            and prologue.operand.dtype == DType.F16
        )
        bare = isinstance(prologue, ir.Cast) and isinstance(prologue.operand, ir.Name)
        if exact and bare and prologue.operand.name == OPERAND:  # an f16 tensor: the part itself
            if not self.from_chip(name):
                return (low.declare_input(name, "plain", "float16", *place),)
            self.after.add(low.writer[name])
            return (low.current[name],)
        if prologue is None:
            if not self.from_chip(name):
                if not halves:
                    return (low.declare_input(name, "fp16", "float16", *place),)
                hi = low.declare_input(name, "high", "float16", *place)
                lo_place = (True, "E", machine.WEIGHT_SLICES) if weights else place
                return hi, low.declare_input(name, "low", "float16", *lo_place)
            self.after.add(low.writer[name])
            source = low.current[name]
            rows, width = program_shape(decl.shape)
            value = source
            phase = None
        else:
            if weights:  # B's transpose from the host, rows along j, lanes along k
                source = low.declare_input(name, "plain", _groq_dtype(decl.dtype), True)
                rows, width = form.n, form.k
                loops = (form.col, form.red)
            else:
                _, source = low.tensor_var(task, form.a)
                self.after.add(low.writer.get(name, ""))
                rows, width = form.m, form.k
                loops = (form.row, form.red)
            phase = self.phase(f"pro_{side}", loops, (rows, width), OPERAND, source)
            value, lines = phase.lower(prologue.operand if exact else prologue)
            self.after |= phase.after
            self.lines += lines
            halves = halves and not exact
        parts = self.cast_parts(name, value, (rows, width), halves, weights, exact)
        ops = (phase.ops if phase else 0) + (0 if exact else 4 if halves else 1)
        depth = (max(phase.depths.values(), default=0) if phase else 0) + (3 if halves else 1)
        self.prologues.append((ops, rows * math.ceil(width / machine.LANES), depth))
        return parts

    def cast_parts(
        self,
        name: str,
        value: str,
        shape: tuple[int, int],
        halves: bool,
        weights: bool,
        exact: bool,
    ) -> tuple[str, ...]:
        """An operand computed on the VXM as fp16 parts written to memory (weights in S16 of
        the planes' hemispheres: high West, low East)."""
        low, span = self.low, self.task.span
        least = machine.WEIGHT_SLICES if weights else 1
        hi = low.unique(f"{name}_hi" if halves else f"{name}_16")
        hi_layout = low.budget.take(hi, shape, "float16", span, least, "W" if weights else "")
        if exact:  # the prologue's value is the fp16 part
            self.lines.append(f'{hi}_mt = {value}.write(name="{hi}", layout="{hi_layout}")')
        else:
            self.lines.append(f"{hi}_st = g.cast({value}, dtype=g.float16)")
            self.lines.append(f'{hi}_mt = {hi}_st.write(name="{hi}", layout="{hi_layout}")')
        if not halves:
            return (f"{hi}_mt",)
        lo = low.unique(f"{name}_lo")
        lo_layout = low.budget.take(lo, shape, "float16", span, least, "E" if weights else "")
        self.lines.append(f"{lo}_st = g.sub({value}, g.cast({hi}_mt, dtype=g.float32))")
        self.lines.append(f"{lo}_st = g.cast({lo}_st, dtype=g.float16)")
        self.lines.append(f'{lo}_mt = {lo}_st.write(name="{lo}", layout="{lo_layout}")')
        return f"{hi}_mt", f"{lo}_mt"


# ------------------------------------------------------------------------------- lookups

ITEMS_PER_VECTOR = machine.chip.SUPERLANES  # a gather addresses each superlane on its own
MASKS = (-1, 0, 1, 0x7FFFFFFF, 0x7F800000, -(2**31))  # the Items helper's own int constants
MAX_INT_ROWS = 4096  # int constants of one lookup (one 320-lane row each)
# VXM ops of the Items helper's calls (program.py), for the cost model; tests hold them equal
# to the emulator's count.
OPS_LT, OPS_SELECT, OPS_CLAMP = 2, 4, 2
OPS_LE = 2 * (1 + 1 + 1 + OPS_SELECT + OPS_LT) + 2 + 1 + OPS_LT + 1 + 1
OPS_DIV = 6
ROUND_LEVELS = 21  # a search round's dependent ALU levels, its gather's latency included
BODY_LEVELS = 30  # the rest of an iteration: the material gathers, interpolation, addition


@dataclass(frozen=True)
class _Int:
    """An i32 value in the emitted build code: a Python int when the build knows it (its range
    ``lo .. hi``), else a stream (``lo`` None)."""

    code: str
    lo: int | None = None
    hi: int | None = None

    @property
    def known(self) -> bool:
        return self.lo is not None


class _LookupStage:
    """One ``Lookup`` task (the XS lookup) branch-free on the VXM, 20 items per vector.

    Item k of a vector lives in superlane k (its 16 lanes), so one ``g.mem_gather`` serves 20
    independently addressed lookups. Each table is held one element per 320-lane row (the row
    replicated over the superlanes), addressed by the element's flat index with every index
    clamped as the language's gathers clamp. A loop whose trip count is data-dependent
    (``for j in 0 .. mat_count[m]``) runs to the extent of the dimension it indexes, its
    iterations masked (an int32 mask per item); ``search`` is the language's exact binary search
    as floor(log2 n) + 1 rounds of one gather each; additions go into one accumulator per output
    column, kept only where every enclosing mask holds. The build code is Python loops over
    the ``Items`` helper in program.py, as a Groq user unrolls loops when the program is built.
    """

    def __init__(self, low: _Lowering, task: Task, form: Lookup) -> None:
        self.low, self.task, self.form = low, task, form
        self.kernel = task.kernel.name
        self.sizes = task.size_env
        self.rows = max(1, math.ceil((form.end - form.first) / ITEMS_PER_VECTOR))
        self.lines: list[str] = []
        self.ints: set[int] = set(MASKS)
        self.floats: set[float] = {0.0}
        self.env: dict[str, str | _Int] = {}  # let / loop variable -> code (floats: str)
        self.vars: dict[str, str] = {}  # kernel parameter -> program variable
        self.accumulators: dict[str, int] = {}  # output parameter -> columns
        self.limits: list[tuple[str, int]] = []  # (input, largest value the padding allows)
        self.memo: list[dict[str, str]] = [{}]  # per open block: gather code -> its variable
        self.pad = ""
        self.temps = 0
        self.ops = 0  # VXM ops, counted as the build code runs them
        self.gathers = 0
        self.rounds = 0  # the longest chain of dependent gathers in one iteration
        self.iterations = 1  # iterations of the padded loops, one after another
        self.multiplier = 1  # iterations of the loops around the current statement
        self.live: list[str] = []  # masks of the enclosing padded loops
        self.after: set[str] = set()

    # ------------------------------------------------------------------------- tensors

    def param(self, name: str, span: Span) -> str:
        """The program variable of a kernel parameter, declared on first use."""
        if name in self.vars:
            return self.vars[name]
        low, task = self.low, self.task
        tensor = task.binding(name).region.tensor
        decl = low.graph.tensor(tensor)
        if decl.role != "input" or tensor in low.writer:
            raise refuse(
                f"'{tensor}' in the lookup '{self.kernel}' comes from another task (a lookup's "
                "tables and items come from the host)",
                span,
            )
        if decl.dtype not in (DType.F32, DType.I32):
            raise refuse(f"'{tensor}' is {decl.dtype}; the groq lookup takes f32 and i32", span)
        dtype = "float32" if decl.dtype == DType.F32 else "int32"
        if name in self.form.items:
            if len(decl.shape) != 1:
                raise refuse(f"the rank-{len(decl.shape)} item input '{tensor}'", span)
            shape, host = (self.rows, machine.LANES), "superlanes"
        else:
            shape, host = (max(1, math.prod(decl.shape)), machine.LANES), "table"
        layout = low.budget.take(tensor, shape, dtype, decl.span)
        var = f"{tensor}_mt"
        low.names.add(tensor)
        low.declared.append(
            Declared(var, tensor, shape, dtype, layout, tensor, host, items=self.items_range)
        )
        self.vars[name] = var
        return var

    @property
    def items_range(self) -> tuple[int, int]:
        return (self.form.first, self.form.end)

    def dims(self, name: str) -> tuple[int, ...]:
        return self.low.graph.tensor(self.task.binding(name).region.tensor).shape

    # ---------------------------------------------------------------------------- values

    def need(self, v: _Int) -> str:
        """The code of an int used as a stream: a known int's values become constant rows."""
        if v.known:
            values = range(v.lo, v.hi + 1)
            if len(self.ints | set(values)) > MAX_INT_ROWS:
                raise refuse(
                    f"the int constants of the lookup '{self.kernel}' (more than {MAX_INT_ROWS})",
                    self.task.span,
                )
            self.ints.update(values)
        return v.code

    def integer(self, e: ir.Expr) -> _Int:
        match e:
            case ir.Const(value=v) if isinstance(v, int) and not isinstance(v, bool):
                return _Int(str(v), v, v)
            case ir.Name(name=n) if n == self.form.loop.var:
                raise refuse(
                    f"the item index '{n}' used as a value in the lookup '{self.kernel}'", e.span
                )
            case ir.Name(name=n) if isinstance(self.env.get(n), _Int):
                return self.env[n]
            case ir.Name(name=n) if n in self.sizes:
                return _Int(str(self.sizes[n]), self.sizes[n], self.sizes[n])
            case ir.Binary(op="+" | "-" | "*" as op, lhs=lhs, rhs=rhs):
                a, b = self.integer(lhs), self.integer(rhs)
                fn = {"+": "add", "-": "sub", "*": "mul"}[op]
                code = f"items.{fn}({a.code}, {b.code})"
                if a.known and b.known:
                    ends = [
                        {"+": x + y, "-": x - y, "*": x * y}[op]
                        for x in (a.lo, a.hi)
                        for y in (b.lo, b.hi)
                    ]
                    return _Int(code, min(ends), max(ends))
                self.need(a), self.need(b)
                self.ops += self.multiplier
                return _Int(code)
            case ir.Load() if e.dtype == DType.I32:
                return _Int(self.load(e))
            case ir.Search():
                return _Int(self.search(e))
        raise refuse(f"the i32 value {type(e).__name__} in the lookup '{self.kernel}'", e.span)

    def value(self, e: ir.Expr) -> str:
        """The code of an f32 value (a stream)."""
        if e.dtype == DType.I32:
            raise refuse(f"i32 arithmetic as a value in the lookup '{self.kernel}'", e.span)
        match e:
            case ir.Const(value=v) if isinstance(v, float):
                self.floats.add(float(v))
                return f"items.f({float(v)!r})"
            case ir.Name(name=n) if isinstance(self.env.get(n), str):
                return self.env[n]
            case ir.Load():
                return self.load(e)
            case ir.Binary(op="+" | "-" | "*" as op, lhs=lhs, rhs=rhs):
                fn = {"+": "add", "-": "sub", "*": "mul"}[op]
                a, b = self.value(lhs), self.value(rhs)
                self.ops += self.multiplier
                return f"g.{fn}({a}, {b})"
            case ir.Binary(op="/", lhs=lhs, rhs=rhs):
                a, b = self.value(lhs), self.value(rhs)
                self.ops += OPS_DIV * self.multiplier
                return f"items.div({a}, {b})"
            case ir.Unary(op="-", operand=x):
                self.ops += self.multiplier
                return f"g.neg({self.value(x)})"
        what = e.op if isinstance(e, ir.Binary | ir.Unary) else type(e).__name__
        raise refuse(f"'{what}' in the lookup '{self.kernel}' (no VXM lowering)", e.span)

    def load(self, e: ir.Load) -> str:
        var = self.param(e.tensor, e.span)
        if e.tensor in self.form.items:
            if len(e.indices) != 1 or not (
                isinstance(e.indices[0], ir.Name) and e.indices[0].name == self.form.loop.var
            ):
                raise refuse(
                    f"the load {e.tensor}[...] in '{self.kernel}' (item inputs take the item "
                    "index)",
                    e.span,
                )
            return var
        dims = self.dims(e.tensor)
        if 0 in dims:
            raise refuse(f"the load of the empty tensor '{e.tensor}' in '{self.kernel}'", e.span)
        counted = self.ops
        index = [self.integer(i) for i in e.indices]
        codes = [i.code for i in index]
        where = f"({codes[0]},)" if len(codes) == 1 else f"({', '.join(codes)})"
        code = f"items.gather({var}, {where}, {dims!r})"
        if self.known(code):
            self.ops = counted
        else:
            self.gather_ops(index, dims)
        return self.once(code)

    def rename(self, var: str) -> None:
        """``v_n = t_2`` right after ``t_2 = gather``: the let names the gather itself."""
        last = self.lines[-1].strip()
        temp = last.partition(" = ")[2]
        if len(self.lines) < 2 or not temp.startswith("t_") or not temp[2:].isdigit():
            return
        previous = self.lines[-2]
        if previous.strip().startswith(f"{temp} = "):
            code = previous.strip().partition(" = ")[2]
            self.lines[-2:] = [f"{self.pad}{var} = {code}"]
            for memo in self.memo:
                for key, value in memo.items():
                    if value == temp:
                        memo[key] = var

    def known(self, code: str) -> bool:
        return any(code in memo for memo in self.memo)

    def once(self, code: str) -> str:
        """A gather or search is computed once per block that can see it."""
        for memo in self.memo:
            if code in memo:
                return memo[code]
        self.temps += 1
        var = f"t_{self.temps}"
        self.memo[-1][code] = var
        self.lines.append(f"{self.pad}{var} = {code}")
        return var

    def gather_ops(self, index: list[_Int], dims: tuple[int, ...]) -> None:
        """What Items.gather costs and the constants it reads, as its code folds them."""
        stride = math.prod(dims)
        address: _Int = _Int("0", 0, 0)
        for x, d in zip(index, dims, strict=True):
            stride //= d
            if x.known:
                term = _Int("", max(min(x.lo, d - 1), 0), max(min(x.hi, d - 1), 0))
            else:
                self.ints.update((d - 1, 0))
                self.ops += OPS_CLAMP * self.multiplier
                term = _Int("")
            if stride != 1:
                if term.known:
                    term = _Int("", term.lo * stride, term.hi * stride)
                else:
                    self.ints.add(stride)
                    self.ops += self.multiplier
            if address.known and address.lo == address.hi == 0:
                address = term
            elif address.known and term.known:
                address = _Int("", address.lo + term.lo, address.hi + term.hi)
            else:
                for part in (address, term):
                    if part.known:
                        self.need(part)
                self.ops += self.multiplier
                address = _Int("")
        if address.known:
            self.need(address)
        self.gathers += self.multiplier

    def search(self, e: ir.Search) -> str:
        var = self.param(e.tensor, e.span)
        dims = self.dims(e.tensor)
        if len(dims) != 2 or not isinstance(e.indices[1], ir.Slice) or 0 in dims:
            raise refuse(
                f"the search of '{e.tensor}' in '{self.kernel}' (groq searches the rows of a "
                "rank-2 table)",
                e.span,
            )
        piece = e.indices[1]
        lo = 0 if piece.lo is None else self.known_int(piece.lo)
        hi = dims[1] if piece.hi is None else self.known_int(piece.hi)
        lo, hi = min(max(lo, 0), dims[1]), min(max(hi, 0), dims[1])
        n = max(hi - lo, 0)
        counted = self.ops
        row = self.integer(e.indices[0])
        v = self.value(e.value)
        if row.known:
            base = _Int(
                "",
                max(min(row.lo, dims[0] - 1), 0) * dims[1] + lo,
                max(min(row.hi, dims[0] - 1), 0) * dims[1] + lo,
            )
            base_code = f"items.clamp({row.code}, {dims[0]}) * {dims[1]} + {lo}"
            extra = 0 if base.lo == base.hi == 0 else 1
            if extra:
                self.need(base)
        else:
            self.ints.update((dims[0] - 1, 0, dims[1], lo))
            base_code = f"items.mul(items.clamp({row.code}, {dims[0]}), {dims[1]})"
            if lo:
                base_code = f"items.add({base_code}, {lo})"
            self.ops += (OPS_CLAMP + 1 + (1 if lo else 0)) * self.multiplier
            extra = 1
        rounds = n.bit_length()
        self.ints.update((0, n, n - 1, 1, max(n - 1, 1) - 1))
        per_round = OPS_LT + 3 + 1 + extra + OPS_LE + 3 + 1 + 2 * OPS_SELECT
        self.ops += (rounds * per_round + 1 + OPS_CLAMP) * self.multiplier
        self.gathers += rounds * self.multiplier
        self.rounds = max(self.rounds, rounds)
        code = f"items.bracket({var}, {base_code}, {n}, {v})"
        if self.known(code):
            self.ops, self.gathers = counted, self.gathers - rounds * self.multiplier
        return self.once(code)

    def known_int(self, e: ir.Expr) -> int:
        form = affine(e)
        if form is None:
            raise refuse(f"a slice bound in the lookup '{self.kernel}' that is not a size", e.span)
        return _value(form, self.sizes, e.span)

    # ------------------------------------------------------------------------ statements

    def block(self, body: tuple[ir.Stmt, ...], depth: int) -> None:
        pad = "    " * depth
        outer = self.pad
        self.pad = pad
        self.memo.append({})
        for s in body:
            match s:
                case ir.Let(name=name, value=value):
                    code = f"v_{name}"
                    if value.dtype == DType.I32:
                        v = self.integer(value)
                        self.env[name] = _Int(code, v.lo, v.hi) if v.known else _Int(code)
                        self.lines.append(f"{pad}{code} = {v.code}")
                    else:
                        self.lines.append(f"{pad}{code} = {self.value(value)}")
                        self.env[name] = code
                    self.rename(code)
                case ir.For(var=var, lo=lo, hi=hi, body=inner):
                    self.loop(var, lo, hi, inner, depth, s.span)
                case ir.Store(op="=") if isinstance(s.value, ir.Const):
                    continue  # zeroing before the additions: the accumulators start at +0
                case ir.Store(op="+="):
                    self.add_into(s, pad)
                case _:
                    raise refuse(
                        f"the statement {type(s).__name__} in the lookup '{self.kernel}' (the "
                        "branch-free lowering takes lets, loops and additions)",
                        s.span,
                    )
        self.memo.pop()
        self.pad = outer

    def loop(self, var: str, lo: ir.Expr, hi: ir.Expr, body, depth: int, span: Span) -> None:
        pad = "    " * depth
        start = self.known_int(lo)
        form = affine(hi)
        counter = f"i_{var}"
        if form is not None and all(n in self.sizes for n, _ in form.terms):
            end = _value(form, self.sizes, span)
            self.lines.append(f"{pad}for {counter} in range({start}, {end}):")
            self.env[var] = _Int(counter, start, max(start, end - 1))
            outer = self.multiplier
            self.multiplier *= max(end - start, 0)
            opened = len(self.lines)
            self.block(body, depth + 1)
            self.multiplier = outer
            if len(self.lines) == opened:  # only zeroing stores: nothing to run
                self.lines.pop()
            return
        extent = self.padding(var, body, span)
        bound = self.integer(hi)
        if not isinstance(hi, ir.Load) or hi.tensor in self.form.items:
            raise refuse(
                f"the trip count of the loop over {var} in '{self.kernel}' (a padded loop's "
                "bound is a table entry the host can check)",
                span,
            )
        self.limits.append((self.task.binding(hi.tensor).region.tensor, extent))
        self.iterations *= max(extent - start, 1)
        self.lines.append(f"{pad}for {counter} in range({start}, {extent}):")
        self.env[var] = _Int(counter, start, max(start, extent - 1))
        outer = self.multiplier
        self.multiplier *= max(extent - start, 0)
        mask = f"live_{var}"
        self.need(self.env[var])
        test = f"items.lt({counter}, {bound.code})"
        self.ops += OPS_LT * self.multiplier
        if self.live:
            test = f"items.both({self.live[-1]}, {test})"
            self.ops += self.multiplier
        self.lines.append(f"{pad}    {mask} = {test}  # the iterations this item runs")
        self.live.append(mask)
        self.block(body, depth + 1)
        self.live.pop()
        self.multiplier = outer

    def padding(self, var: str, body, span: Span) -> int:
        """A data-dependent loop runs to the extent of the dimensions its variable indexes."""
        extents = [
            self.dims(n.tensor)[d]
            for n in ir.walk_body(body)
            if isinstance(n, ir.Load)
            for d, i in enumerate(n.indices)
            if isinstance(i, ir.Name) and i.name == var
        ]
        if not extents:
            raise refuse(
                f"the loop over {var} in '{self.kernel}' (its trip count depends on the data "
                "and it indexes no table that bounds it)",
                span,
            )
        return min(extents)

    def add_into(self, s: ir.Store, pad: str) -> None:
        tensor = self.task.binding(s.tensor).region.tensor
        shape = self.low.graph.tensor(tensor).shape
        first = s.indices[0]
        if len(shape) > 2 or not (isinstance(first, ir.Name) and first.name == self.form.loop.var):
            raise refuse(f"the addition into '{tensor}' in '{self.kernel}'", s.span)
        column = self.integer(s.indices[1]) if len(shape) == 2 else _Int("0", 0, 0)
        columns = shape[1] if len(shape) == 2 else 1
        if not column.known or column.lo < 0 or column.hi >= columns:
            raise refuse(
                f"the addition into '{tensor}' in '{self.kernel}' (its column must be known "
                "when the program is built and inside the tensor)",
                s.span,
            )
        self.accumulators[s.tensor] = columns
        value = self.value(s.value)
        if self.live:
            value = f"items.keep({value}, {self.live[-1]})"
            self.ops += self.multiplier
        acc = f"acc_{s.tensor}[{column.code}]"
        self.ops += self.multiplier
        self.lines.append(f"{pad}{acc} = g.add({acc}, {value})")

    # ----------------------------------------------------------------------------- stage

    def lower(self) -> Stage:
        low, task, form = self.low, self.task, self.form
        for name in sorted(form.outputs):
            self.accumulators[name] = 0
        body: list[str] = []
        self.lines = body
        self.block(form.loop.body, 0)
        low.limits += self.limits
        head: list[str] = []
        ints, floats = sorted(self.ints), sorted(self.floats)
        tables = []
        for kind, values, dtype in (("ints", ints, "int32"), ("floats", floats, "float32")):
            name = low.unique(f"{task.name}_{kind}")
            layout = low.budget.take(name, (len(values), machine.LANES), dtype, task.span)
            rows = tuple(("fill", v) for v in values)
            low.declared.append(
                Declared(
                    f"{name}_mt",
                    name,
                    (len(values), machine.LANES),
                    dtype,
                    layout,
                    "",
                    "constant",
                    False,
                    rows,
                    listed=True,
                )
            )
            tables.append(f"{name}_mt, {name.upper()}")
        head.append(f"items = Items({self.rows}, {tables[0]}, {tables[1]})")

        for name, columns in sorted(self.accumulators.items()):
            head.append(f"acc_{name} = [items.f(0.0)] * {columns}")
        lines = head + body
        writes = 0
        for name, columns in sorted(self.accumulators.items()):
            tensor = task.binding(name).region.tensor
            out, is_output = low.output_name(task, tensor)
            shape = (columns * self.rows, machine.LANES)
            layout = low.budget.take(out, shape, "float32", task.span)
            flag = ", program_output=True" if is_output else ""
            if columns > 1:
                lines.append(f"acc_{name} = g.concat_vectors(acc_{name}, {shape!r})")
            else:
                lines.append(f"acc_{name} = acc_{name}[0]")
            lines.append(f'{out}_mt = acc_{name}.write(name="{out}", layout="{layout}"{flag})')
            low.current[tensor] = f"{out}_mt"
            low.writer[tensor] = task.name
            low.lookup_outputs[tensor] = self.items_range
            writes += columns * self.rows
        # In program order the list schedule runs a padded loop's iterations one after another
        # along their dependent chain: a search round's ALU levels and gather, then the body.
        chain = self.iterations * (self.rounds * ROUND_LEVELS + BODY_LEVELS)
        cost = StageCost(
            self.ops, 0, self.rows, chain, (), writes, gathers=self.gathers, chained=True
        )
        return Stage(
            task.name,
            f"Task '{task.name}' ({task.kernel.name}): the lookup branch-free on the VXM, "
            f"{form.end - form.first} items as {self.rows} vector(s) of 20 (one per superlane), "
            "tables one element per row for g.mem_gather, searches as fixed gather rounds, "
            "data-dependent loops padded and masked.",
            (),
            tuple(lines),
            cost,
        )


LOWERINGS: dict[type, Callable[[_Lowering, Task, Any], _FormStage]] = {
    Map: _MapStage,
    Contraction: _ContractionStage,
    Reduction: _reduction,
    Lookup: _LookupStage,
}
"""The lowering of each form the chip runs, keyed by the form's type; any other task is
refused (no data-dependent control flow)."""
