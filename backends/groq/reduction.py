"""``Reduction`` over rows (each row one vector, folded across its lanes by SXM shifts), or
with no kept index (one row); ``reduction_stage`` chooses between them and the columns."""

from __future__ import annotations

import math

from kernelc import ir
from kernelc.backends.groq import machine
from kernelc.backends.groq.builder import ProgramBuilder
from kernelc.backends.groq.columns import ColumnStage
from kernelc.backends.groq.folding import FoldingStage
from kernelc.backends.groq.model import (
    SHIFT_LANES,
    FormStage,
    Stage,
    StageCost,
    program_shape,
    refuse,
)
from kernelc.backends.groq.vector import TABLES, VXM_OPS, VectorStage, row_window
from kernelc.diagnostics import Span
from kernelc.forms import Reduction
from kernelc.forms.reduction import Fold, RowLet, RowStores
from kernelc.graph import Task


class ReductionStage(FoldingStage):
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

    def __init__(self, low: ProgramBuilder, task: Task, form: Reduction) -> None:
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
        window = row_window(var, lo, hi, rows)
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


class WholeStage(ReductionStage):
    """A ``Reduction`` without a kept index (an OpenMP task folding its slice: ``s += v[i]``,
    ``m = fmaxf(m, v[i])``) as one row of rank-1 tensors: a task's slice starts at its
    region's first lane, each fold is the row fold above over the lanes of its range, an
    element read on its own (``v[0]``) is shifted to lane 0 and broadcast, and each store
    writes its element's lane of the output's new version, the other lanes kept."""

    def __init__(self, low: ProgramBuilder, task: Task, form: Reduction) -> None:
        FoldingStage.__init__(self, low, task)  # one row, set here: no kept index to read
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
        out = Elements(self, f"{self.task.name}_{tensor}", width)
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


class Elements(VectorStage):
    """The stores of a ``WholeStage``: one row as wide as the stored tensor, its masks the
    first lanes of rows of the stage's own tables (every table costs whole MEM slices)."""

    def __init__(self, stage: WholeStage, prefix: str, width: int) -> None:
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


def reduction_stage(low: ProgramBuilder, task: Task, form: Reduction) -> FormStage:
    """Rows or columns: the kept index names the rows of rank-2 tensors (a row is one vector,
    folded across its lanes) or their columns (each column a lane, folded down the rows); a
    fold with no kept index is one row."""
    if form.loop is None:
        return WholeStage(low, task, form)
    columns = all(
        dim == len(low.graph.tensor(task.binding(p).region.tensor).shape) - 1
        for p, dim in form.kept_dims
    ) and any(dim == 1 for _, dim in form.kept_dims)
    return ColumnStage(low, task, form) if columns else ReductionStage(low, task, form)
