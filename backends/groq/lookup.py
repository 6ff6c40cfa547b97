"""``Lookup`` branch-free on the VXM: items by superlane, tables one element per row for
``g.mem_gather``, searches as fixed gather rounds, data-dependent loops padded and masked."""

from __future__ import annotations

import math
from dataclasses import dataclass

from kernelc import ir
from kernelc.affine import affine
from kernelc.backends.groq import machine
from kernelc.backends.groq.builder import ProgramBuilder, size_value
from kernelc.backends.groq.model import Declared, Stage, StageCost, refuse
from kernelc.diagnostics import Span
from kernelc.forms import Lookup
from kernelc.graph import Task
from kernelc.types import DType

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


class LookupStage:
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

    def __init__(self, low: ProgramBuilder, task: Task, form: Lookup) -> None:
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
        return size_value(form, self.sizes, e.span)

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
            end = size_value(form, self.sizes, span)
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
