"""What every VXM lowering shares (``VectorStage``): values as named streams of vectors,
constant and bit-mask tables, and stores that keep the lanes and rows outside their range."""

from __future__ import annotations

import math
import re

from kernelc import ir
from kernelc.affine import affine
from kernelc.backends.groq import machine
from kernelc.backends.groq.builder import ProgramBuilder, groq_dtype
from kernelc.backends.groq.model import SHIFT_LANES, TINY, Declared, program_shape, refuse
from kernelc.graph import Task
from kernelc.types import DType

VXM_OPS = ("add", "sub", "mul", "neg", "rsqrt", "cast", "exp2", "maximum", "minimum", "bitwise_and")


TABLES = {  # placeholder sigil -> (variable suffix, table name, dtype) of a stage's tables
    "@": ("k", "constants", "float32"),
    "&": ("h", "halves", "float16"),
    "%": ("b", "bits", "int32"),
    "~": ("m", "masks", "int16"),
}


class VectorStage:
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

    def __init__(self, low: ProgramBuilder, task: Task, prefix: str = "") -> None:
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
        self.work += vxm_ops(text) * max(self.nrows, 1)
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
            window = row_window(var, lo, hi, shape[0])
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
        dtype = groq_dtype(decl.dtype)
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
            old = self._outside(prev, self.r0, self.r1, rows, width, dtype)
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
        dtype = groq_dtype(decl.dtype)
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
            view = row_window(prev, lo, hi, rows)
            return self.emit(f"{view}.read(streams=g.{group})", 0, dtype=dtype)
        zero = self.constant(("fill", 0.0), dtype, one=True)
        n = hi - lo
        rows_of = zero if n == 1 else f"g.concat_vectors([{zero}] * {n}, ({n}, {width}))"
        return self.emit(f"{rows_of}.read(streams=g.{group})", 0, dtype=dtype)


def vxm_ops(text: str) -> int:
    """VXM ops in one emitted statement (a shift_lanes call joins each split on the VXM)."""
    return sum(text.count(f"g.{op}(") for op in VXM_OPS) + text.count(SHIFT_LANES)


def row_window(var: str, lo: int, hi: int, total: int) -> str:
    """Rows lo..hi of a rank-2 memory tensor as a view (g.split_vectors)."""
    if lo == 0 and hi == total:
        return var
    sizes = [n for n in (lo, hi - lo, total - hi) if n > 0]
    index = 1 if lo > 0 else 0
    return f"g.split_vectors({var}, {sizes})[{index}]"
