"""Data-parallel loop bodies -> DSD operations over a 1- to 4-dimensional iteration space.

Each expression node that varies over the vectorised loops becomes one DSD builtin writing a
temporary buffer (or the store's destination directly): ``a + b*s`` with a loop-invariant ``s``
fuses into ``@fmacs``, ``+ - *`` map to ``@fadds/@fsubs/@fmuls`` (DSD or scalar operands),
negation, abs and max to ``@fnegs/@fabss/@fmaxs``, ``sqrt/exp/log`` to ``@map`` over the
``<math>`` routine, and anything else to ``@map`` over a small generated element function.
Loop-invariant subexpressions stay scalar CSL. Temporaries are recycled as soon as their value
is consumed, and ``let`` values live exactly until their last use.

Rounding matches the reference interpreter: every operation rounds to the element type, and the
simulator's ``@fmacs`` rounds the product before the sum (two roundings, like ``a + b*s``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from kernelc import ir
from kernelc.backends.csl.builder import Builder, csl_type
from kernelc.backends.csl.scalar import ScalarGen, cannot
from kernelc.csl import charges, machine
from kernelc.csl import model as m
from kernelc.types import DType


@dataclass(frozen=True)
class Access:
    """A vector operand in memory: array, flat index over the space, and a run-time offset."""

    array: str
    flat: m.Expr  # uses the space's variables and compile-time parameters only
    runtime: m.Expr | None = None  # added with @increment_dsd_offset inside scalar loops


@dataclass
class Space:
    vars: tuple[str, ...]  # IR loop variables, outermost first
    names: tuple[str, ...]  # CSL names used in tensor_access lambdas
    extents: tuple[m.Expr, ...]  # per-PE extents (compile-time parameters or literals)
    largest: tuple[int, ...]  # largest extent over all PEs (sizes the temporaries)

    @property
    def capacity(self) -> int:
        size = 1
        for n in self.largest:
            size *= n
        return size

    def kind(self) -> str:
        return "mem1d_dsd" if len(self.vars) == 1 else "mem4d_dsd"


@dataclass
class TempPool:
    """Temporary arrays shared by the vector code of several pieces (one runs at a time)."""

    size: int  # elements of each array: the largest space of the pieces sharing them
    arrays: list[str] = field(default_factory=list)


@dataclass
class _Val:
    dsd: m.Expr | None = None  # a DSD-valued CSL expression
    scalar: m.Expr | None = None
    temp: int | None = None  # index of the temporary holding it


@dataclass
class VectorGen:
    builder: Builder
    space: Space
    dtype: DType
    access: Callable[[str, tuple[ir.Expr, ...], object], Access]
    scalar: ScalarGen
    pool: TempPool | None = None  # shared with other pieces' code; else this code's own
    temps: list[str] = field(default_factory=list)  # temp array names
    temp_dsds: list[str] = field(default_factory=list)
    free: list[int] = field(default_factory=list)
    dsds: dict[tuple[str, m.Expr], str] = field(default_factory=dict)
    lets: dict[str, _Val] = field(default_factory=dict)
    uses: Counter = field(default_factory=Counter)
    out: list[m.Stmt] = field(default_factory=list)
    moved: dict[tuple[str, m.Expr], str] = field(default_factory=dict)
    ops: list[tuple[str, int]] = field(default_factory=list)  # (op, cycles per element) issued
    max_temps: int = 0
    held: Counter = field(default_factory=Counter)  # temps operands of an unfinished operation

    def __post_init__(self) -> None:
        if self.pool is None:
            self.pool = TempPool(self.space.capacity)

    @property
    def suffix(self) -> str:
        if self.dtype == DType.F32:
            return "s"
        if self.dtype == DType.F16:
            return "h"
        raise AssertionError(self.dtype)

    # ----------------------------------------------------------------- operands
    def _varies(self, e: ir.Expr) -> bool:
        names = set(self.space.vars) | {n for n, v in self.lets.items() if v.dsd is not None}
        return any(isinstance(n, ir.Name) and n.name in names for n in ir.walk(e))

    def _dsd_of(self, acc: Access) -> m.Expr:
        key = (acc.array, acc.flat)
        if key not in self.dsds:
            name = self.builder.fresh(f"{acc.array}_dsd")
            target = m.Index(m.Name(acc.array), (acc.flat,))
            access = m.TensorAccess(self.space.names, self.space.extents, target)
            value = m.builtin("get_dsd", m.Name(self.space.kind()), m.struct(tensor_access=access))
            self.builder.const(name, value)
            self.dsds[key] = name
        base = m.Name(self.dsds[key])
        if acc.runtime is None:
            return base
        moved = (self.dsds[key], acc.runtime)
        if moved not in self.moved:
            local = self.builder.fresh(f"{self.dsds[key]}_at")
            inc = m.builtin("increment_dsd_offset", base, acc.runtime, m.Name(csl_type(self.dtype)))
            self.out.append(m.VarDecl(local, None, inc, const=True))
            self.moved[moved] = local
        return m.Name(self.moved[moved])

    def _new_temp(self) -> int:
        if self.free:
            return self.free.pop()
        k = len(self.temps)
        if k == len(self.pool.arrays):
            size = max(self.pool.size, self.space.capacity)
            comment = "vector temporary" if k == 0 else ""
            self.pool.arrays.append(self.builder.array(f"t{k}", self.dtype, size, comment))
        name = self.pool.arrays[k]
        flat = m.Int(0)
        stride = 1
        for var, size in zip(reversed(self.space.names), reversed(self.space.largest), strict=True):
            flat = m.add(m.mul(m.Name(var), m.Int(stride)), flat)
            stride *= size
        target = m.Index(m.Name(name), (flat,))
        access = m.TensorAccess(self.space.names, self.space.extents, target)
        dsd = self.builder.fresh(f"{name}_dsd")
        self.builder.const(
            dsd, m.builtin("get_dsd", m.Name(self.space.kind()), m.struct(tensor_access=access))
        )
        self.temps.append(name)
        self.temp_dsds.append(dsd)
        self.max_temps = len(self.temps)
        return k

    def _dead(self, v: _Val) -> bool:
        """A temporary whose value nobody needs after the current operation."""
        if v.temp is None or self.held[v.temp] > 0:
            return False
        return not any(lv.temp == v.temp and self.uses[name] > 0 for name, lv in self.lets.items())

    def _dest(self, sources: list[_Val], dst: m.Expr | None) -> tuple[m.Expr, int | None]:
        if dst is not None:
            return dst, None
        for s in sources:
            if self._dead(s):
                return m.Name(self.temp_dsds[s.temp]), s.temp
        k = self._new_temp()
        return m.Name(self.temp_dsds[k]), k

    def _release(self, sources: list[_Val], keep: int | None) -> None:
        for s in sources:
            if s.temp is not None and s.temp != keep and self._dead(s) and s.temp not in self.free:
                self.free.append(s.temp)

    def _emit(self, op: str, dst: m.Expr, *args: m.Expr, cycles: int = 1) -> None:
        self.out.append(m.ExprStmt(m.builtin(op, dst, *args)))
        self.ops.append((op, cycles))

    def _operand(self, v: _Val) -> m.Expr:
        return v.dsd if v.dsd is not None else v.scalar

    # --------------------------------------------------------------- expressions
    def value(self, e: ir.Expr, dst: m.Expr | None = None) -> _Val:
        if not self._varies(e):
            scalar = self.scalar.expr(e)
            self.out.extend(self.scalar.prelude)
            self.scalar.prelude = []
            if dst is None:
                return _Val(scalar=scalar)
            self._emit(f"fmov{self.suffix}", dst, scalar)
            return _Val(dsd=dst)
        match e:
            case ir.Load(tensor=t, indices=idx):
                dsd = self._dsd_of(self.access(t, idx, e))
                if dst is None:
                    return _Val(dsd=dsd)
                self._emit(f"fmov{self.suffix}", dst, dsd)
                return _Val(dsd=dst)
            case ir.Name(name=n) if n in self.lets:
                self.uses[n] -= 1
                v = self.lets[n]
                if dst is None:
                    return v
                self._emit(f"fmov{self.suffix}", dst, self._operand(v))
                self._release([v], None)
                return _Val(dsd=dst)
            case ir.Binary(op="+" | "-"):
                fused = self._fma(e, dst)
                if fused is not None:
                    return fused
                return self._simple(
                    f"f{'add' if e.op == '+' else 'sub'}{self.suffix}", [e.lhs, e.rhs], dst
                )
            case ir.Binary(op="*"):
                return self._simple(f"fmul{self.suffix}", [e.lhs, e.rhs], dst)
            case ir.Unary(op="-", operand=a):
                return self._simple(f"fneg{self.suffix}", [a], dst)
            case ir.Intrinsic(fn="abs", args=args):
                return self._simple(f"fabs{self.suffix}", list(args), dst)
            case ir.Intrinsic(fn="max", args=args) if self.dtype == DType.F32:
                return self._simple(f"fmax{self.suffix}", list(args), dst)
            case ir.Intrinsic(fn="sqrt" | "exp" | "log", args=(arg,)) if self.dtype == DType.F32:
                return self._math(e.fn, arg, dst)
        return self._map(e, dst)

    def _operands(self, args: list[ir.Expr]) -> list[_Val]:
        """The values of an operation's operands: each one computed stays untouched while the
        next are (``x * -x`` must not negate ``x`` in place before the product reads it)."""
        vals: list[_Val] = []
        for a in args:
            v = self.value(a)
            vals.append(v)
            if v.temp is not None:
                self.held[v.temp] += 1
        for v in vals:
            if v.temp is not None:
                self.held[v.temp] -= 1
        return vals

    def _simple(self, op: str, args: list[ir.Expr], dst: m.Expr | None) -> _Val:
        vals = self._operands(args)
        target, temp = self._dest(vals, dst)
        self._emit(op, target, *(self._operand(v) for v in vals))
        self._release(vals, temp)
        return _Val(dsd=target, temp=temp)

    def _fma(self, e: ir.Binary, dst: m.Expr | None) -> _Val | None:
        """``a + b*s`` / ``a - b*s`` / ``b*s + a`` with loop-invariant ``s`` -> @fmacs."""
        candidates = [(e.lhs, e.rhs, False)]
        if e.op == "+":
            candidates.append((e.rhs, e.lhs, False))
        for addend, product, _ in candidates:
            if not (isinstance(product, ir.Binary) and product.op == "*"):
                continue
            for vec, sc in ((product.lhs, product.rhs), (product.rhs, product.lhs)):
                if self._varies(sc) or not self._varies(vec) or not self._varies(addend):
                    continue
                a, b = self._operands([addend, vec])
                s = self.scalar.expr(sc)
                self.out.extend(self.scalar.prelude)
                self.scalar.prelude = []
                if e.op == "-":
                    s = m.Unary("-", s) if not isinstance(s, m.Unary) else s.operand
                target, temp = self._dest([a, b], dst)
                self._emit(f"fmac{self.suffix}", target, self._operand(a), self._operand(b), s)
                self._release([a, b], temp)
                return _Val(dsd=target, temp=temp)
        return None

    def _math(self, fn: str, arg: ir.Expr, dst: m.Expr | None) -> _Val:
        v = self.value(arg)
        target, temp = self._dest([v], dst)
        self.builder.uses_math = True
        fn_name = f"{fn}_f32"
        self.out.append(
            m.ExprStmt(
                m.builtin("map", m.member(charges.MATH_MODULE, fn_name), self._operand(v), target)
            )
        )
        self.ops.append(("map", charges.routine_cycles(fn_name) + machine.MAP_CALL_CYCLES))
        self._release([v], temp)
        return _Val(dsd=target, temp=temp)

    def _map(self, e: ir.Expr, dst: m.Expr | None) -> _Val:
        """Fallback: an element function over the varying leaves of ``e``, applied by @map."""
        leaves: list[ir.Expr] = []
        params: dict[int, str] = {}

        def collect(x: ir.Expr) -> None:
            if not self._varies(x):
                return
            if isinstance(x, ir.Load) or (isinstance(x, ir.Name) and x.name in self.lets):
                if id(x) not in params:
                    params[id(x)] = f"a{len(leaves)}"
                    leaves.append(x)
                return
            if isinstance(x, ir.Reduce | ir.Search):
                cannot(self.builder, "a reduction or search inside a vectorised loop", x)
                return
            for child in ir.children(x):
                collect(child)

        collect(e)
        vals = self._operands(leaves)
        fn = self.builder.fresh("elem")
        inner = ScalarGen(self.builder, self.scalar.place, dict(self.scalar.names), {}, {})
        for leaf in leaves:
            inner.names[f"__leaf{id(leaf)}"] = m.Name(params[id(leaf)])
        body_expr = inner.expr(_substitute(e, {id(x): params[id(x)] for x in leaves}))
        if inner.prelude:
            cannot(self.builder, "this expression inside a vectorised loop", e)
        decl = m.FnDecl(
            fn,
            tuple((params[id(x)], m.Named(csl_type(x.dtype))) for x in leaves),
            m.Named(csl_type(e.dtype)),
            (m.Return(body_expr),),
        )
        self.builder.code(decl)
        target, temp = self._dest(vals, dst)
        self.out.append(
            m.ExprStmt(m.builtin("map", m.Name(fn), *(self._operand(v) for v in vals), target))
        )
        self.ops.append(("map", _element_cycles(decl, self.builder) + machine.MAP_CALL_CYCLES))
        self._release(vals, temp)
        return _Val(dsd=target, temp=temp)

    # -------------------------------------------------------------------- statements
    def body(self, stmts: tuple[ir.Stmt, ...]) -> list[m.Stmt]:
        """DSD code for one execution of the loop body over the whole space."""
        for s in stmts:
            for node in ir.walk(s):
                if isinstance(node, ir.Name):
                    self.uses[node.name] += 1
        for s in stmts:
            match s:
                case ir.Let(name=n, value=v):
                    if self._varies(v):
                        self.lets[n] = self.value(v)
                        if self.lets[n].temp is None and self.lets[n].dsd is not None:
                            self.lets[n] = self.lets[n]
                    else:
                        self.out.extend(self.scalar.stmt(s))
                case ir.Store(tensor=t, indices=idx, op=op, value=v):
                    dst = self._dsd_of(self.access(t, idx, s))
                    expr = v
                    if op != "=":
                        if op[:-1] not in ("+", "-", "*"):
                            cannot(self.builder, f"'{op}' stores in a vectorised loop", s)
                            continue
                        load = ir.Load(tensor=t, indices=idx, span=s.span, dtype=v.dtype)
                        expr = ir.Binary(op=op[:-1], lhs=load, rhs=v, span=s.span, dtype=v.dtype)
                    self.value(expr, dst)
                case _:
                    cannot(self.builder, f"a {type(s).__name__.lower()} in a vectorised loop", s)
        return self.out


def _substitute(e: ir.Expr, leaves: dict[int, str]) -> ir.Expr:
    """Replace leaf nodes (by identity) with names of the element function's parameters."""
    from dataclasses import fields, replace

    if id(e) in leaves:
        return ir.Name(name=f"__leaf{id(e)}", span=e.span, dtype=e.dtype)
    changes = {}
    for f in fields(e):
        value = getattr(e, f.name)
        if isinstance(value, tuple) and value and hasattr(value[0], "span"):
            changes[f.name] = tuple(_substitute(v, leaves) for v in value)
        elif hasattr(value, "span") and f.name != "span":
            changes[f.name] = _substitute(value, leaves)
    return replace(e, **changes) if changes else e


def _element_cycles(fn: m.FnDecl, builder: Builder) -> int:
    """One element of an ``@map`` element function as the simulator charges it, counted from
    the emitted function itself (its ``return``, operators and loads, the ``<math>`` routines and
    semantics helpers it calls), so that the model cannot drift from the simulator. Where the
    code cannot say (modelled): a helper's guard (NaN, a zero divisor, saturation) is not taken,
    and a loop whose trips depend on the value runs once."""
    functions = {d.name: d for d in builder.pe_code if isinstance(d, m.FnDecl)}

    def trips(loop: m.For | m.While) -> float | None:
        return 1.0 if isinstance(loop, m.While) else None

    counter = charges.Counter(functions, {}, trips, lambda _: 0.0)
    return round(counter.block(fn.body))
