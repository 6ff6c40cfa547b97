"""``Reduction`` whose kept index names columns: each column a lane, folded down the rows by
halving."""

from __future__ import annotations

import math

from kernelc import ir
from kernelc.backends.groq import machine
from kernelc.backends.groq.builder import ProgramBuilder
from kernelc.backends.groq.folding import FoldingStage
from kernelc.backends.groq.model import Stage, StageCost, refuse
from kernelc.backends.groq.vector import row_window
from kernelc.forms import Reduction
from kernelc.forms.reduction import Fold, RowLet, RowStores
from kernelc.graph import Task

SPREAD_LEVELS = -(  # a value written to memory and read back, in ALU levels
    -(machine.chip.MEM_WRITE_LATENCY + machine.chip.MEM_LATENCY + machine.chip.STREAM_HOP_LATENCY)
    // machine.chip.VXM_LATENCY
)


class ColumnStage(FoldingStage):
    """One ``Reduction`` whose kept index names columns (column sums, minima, means).

    The kept index runs along the lanes and a fold runs down the rows: its body streams as the
    rows of its range, and the rows are folded by halving, each step one VXM op combining the
    first half of the rows with the second (ceil(log2 n) steps: a sum is a tree, max and min
    are exact and ignore NaN as ``max=`` does). A per-column value is one row; where later work
    needs it on several rows it is written to memory once and read as that many rows.
    """

    def __init__(self, low: ProgramBuilder, task: Task, form: Reduction) -> None:
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
        window = row_window(var, row, row + 1, rows)
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
