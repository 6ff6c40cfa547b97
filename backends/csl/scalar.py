"""Kernel IR -> scalar CSL: expressions and statements with the language's exact semantics.

Used where a loop cannot become DSD operations (data-dependent trip counts, gathers, ``search``)
and for the element functions of ``@map``. The language rules (docs/LANGUAGE.md) are kept with
small helper functions emitted into the PE program on first use: C division with x/0 = 0,
saturating float-to-int casts with NaN -> 0, NaN-ignoring min/max, clamped gathers, dropped
out-of-range scatters and the exact probe sequence of ``search``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from kernelc import ir
from kernelc.backends.csl.builder import RESERVED, Builder, csl_type
from kernelc.csl import charges
from kernelc.csl import model as m
from kernelc.types import DType


def cannot(b: Builder, what: str, node) -> None:
    """Record in the program being built that ``what`` has no CSL lowering here (the lowering
    then returns the refusal instead of its code)."""
    b.refuse(f"the csl backend cannot lower {what} yet", node.span)


BITS = {DType.F32: "u32", DType.F16: "u16"}  # the unsigned type of a float's bit pattern


def fconst(value: float | int, dtype: DType) -> m.Expr:
    """A constant of ``dtype``. CSL has no literal for infinity or NaN, so a value that is not
    finite in ``dtype`` (1e39 in f32 included) is its bit pattern, bitcast:
    ``@bitcast(f32, @as(u32, 2139095040))`` is +inf."""
    if dtype.is_float:
        with np.errstate(over="ignore", invalid="ignore"):
            rounded = dtype.numpy.type(value)
        if np.isfinite(rounded) or dtype not in BITS:
            return m.lit(float(value))
        pattern = int(np.asarray(rounded).view(f"uint{dtype.numpy.itemsize * 8}"))
        return m.builtin(
            "bitcast",
            m.Name(csl_type(dtype)),
            m.builtin("as", m.Name(BITS[dtype]), m.Int(pattern)),
        )
    if dtype == DType.BOOL:
        return m.Bool(bool(value))
    return m.lit(int(value))


def folded(e: ir.Expr) -> np.floating | None:
    """The value of a float expression of constants, rounded per operation as the language
    rounds it (``1.0 / 0.0`` is +inf, not a division CSL would refuse at compile time)."""
    match e:
        case ir.Const(value=v) if e.dtype is not None and e.dtype.is_float:
            with np.errstate(over="ignore"):
                return e.dtype.numpy.type(v)
        case ir.Unary(op="-", operand=a):
            inner = folded(a)
            return None if inner is None else -inner
        case ir.Binary(op="+" | "-" | "*" | "/", lhs=a, rhs=b) if e.dtype is not None:
            x, y = folded(a), folded(b)
            if x is None or y is None or not e.dtype.is_float:
                return None
            with np.errstate(all="ignore"):
                out = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}[e.op](x, y)
            return e.dtype.numpy.type(out)
    return None


def int_literal(e: m.Expr) -> int | None:
    """The value of an integer literal (a negative one is a negation of a literal)."""
    match e:
        case m.Int(value=v):
            return v
        case m.Unary(op="-", operand=m.Int(value=v)):
            return -v
    return None


WRAPPING = {
    "+": lambda x, y, _bits: x + y,
    "-": lambda x, y, _bits: x - y,
    "*": lambda x, y, _bits: x * y,
    "&": lambda x, y, _bits: x & y,
    "|": lambda x, y, _bits: x | y,
    "^": lambda x, y, _bits: x ^ y,
    "<<": lambda x, y, bits: x << (y & (bits - 1)),
    ">>": lambda x, y, bits: x >> (y & (bits - 1)),
}


def wrapped(op: str, a: m.Expr, b: m.Expr, t: DType) -> int | None:
    """The language's wrapping value of an integer operation on two literals; None otherwise.

    Why: CSL evaluates literal operands at compile time in unbounded precision, so
    ``1 + 2147483647`` is 2147483648, which no ``i32`` holds (a compile error), where the
    kernel's i32 arithmetic wraps to -2147483648."""
    x, y = int_literal(a), int_literal(b)
    if x is None or y is None or not t.is_int or op not in WRAPPING:
        return None
    return _wrap(WRAPPING[op](x, y, t.bits), t)


def wrapped_unary(op: str, a: m.Expr, t: DType) -> int | None:
    """The language's wrapping value of ``-`` or ``~`` on an integer literal; None otherwise.

    Why: as for ``wrapped``, ``-(~2147483647)`` is 2147483648 in CSL's unbounded literal
    arithmetic (a compile error in an i32 expression), and ``~1`` on a u32 is negative."""
    x = int_literal(a)
    if x is None or not t.is_int:
        return None
    return _wrap(-x if op == "-" else ~x, t)


def _wrap(value: int, t: DType) -> int:
    value &= (1 << t.bits) - 1
    if t.is_signed and value >= 1 << (t.bits - 1):
        value -= 1 << t.bits
    return value


@dataclass
class Place:
    """Where a tensor element lives on this PE: the local array and the flat local index."""

    array: str
    index: m.Expr
    guard: m.Expr | None = None  # for stores: keep only when true (out-of-range is dropped)


LoadFn = Callable[[str, tuple[m.Expr, ...], tuple[bool, ...], object], Place]


@dataclass
class ScalarGen:
    """Translates IR to CSL for one PE program; ``place`` maps tensor indices to local storage."""

    builder: Builder
    place: LoadFn
    names: dict[str, m.Expr] = field(default_factory=dict)
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)  # loop var value ranges
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    prelude: list[m.Stmt] = field(default_factory=list)
    counter: int = 0
    vectorise: Callable[[ir.For], list[m.Stmt] | None] | None = None
    # names bound once per block (lets, loop indices): a clamp of one is computed once
    fixed_names: set[str] = field(default_factory=set)
    clamps: list[dict[tuple[str, int], m.Name]] = field(default_factory=lambda: [{}])

    def _tmp(self, base: str) -> str:
        self.counter += 1
        return f"{base}{self.counter}"

    def _local(self, name: str) -> str:
        """The CSL name of a kernel local: its own unless taken or a CSL word."""
        if name in self.builder.names or name in RESERVED:
            return self._tmp(name + "_")
        return name

    # ---------------------------------------------------------------- expressions
    def expr(self, e: ir.Expr) -> m.Expr:
        match e:
            case ir.Const(value=v):
                return fconst(v, e.dtype)
            case ir.Name(name=n):
                if n not in self.names:
                    self.builder.refuse(
                        f"the csl data-parallel lowering has no value for '{n}' on the PE "
                        "(a loop index used as a value, not only as an index)",
                        e.span,
                    )
                    return m.Name(n)
                return self.names[n]
            case ir.Load(tensor=t, indices=idx):
                p = self.place(t, tuple(self.expr(i) for i in idx), self._proven(t, idx), e)
                return m.Index(m.Name(p.array), (p.index,))
            case ir.Unary(op="-" | "~" as op, operand=a):
                operand = self.expr(a)
                constant = wrapped_unary(op, operand, e.dtype)
                return m.Unary(op, operand) if constant is None else m.lit(constant)
            case ir.Unary(op="!", operand=a):
                return m.Unary("!", self.expr(a))
            case ir.Binary():
                return self._binary(e)
            case ir.Select(cond=c, if_true=a, if_false=b):
                cond = self.expr(c)
                if isinstance(cond, m.Bool):  # CSL would type a literal branch comptime_int
                    return self.expr(a) if cond.value else self.expr(b)
                return m.IfExpr(cond, self.expr(a), self.expr(b))
            case ir.Cast(to=to, operand=a):
                return self._cast(self.expr(a), a.dtype, to, e)
            case ir.Intrinsic(fn=fn, args=args):
                return self._intrinsic(fn, [self.expr(a) for a in args], e)
            case ir.Reduce():
                return self._reduce(e)
            case ir.Search():
                return self._search(e)
            case ir.Rand(key=key, counter=counter, bits=bits):
                for helper in ("kc_mulwrap_u32", "kc_mix_u32", "kc_randbits_u32"):
                    self.helper(helper, DType.U32)
                drawn = m.call("kc_randbits_u32", self.expr(key), self.expr(counter))
                if bits:
                    return drawn
                # the top 24 bits scaled by 2^-24: exact in f32
                top = m.builtin("as", m.Name("f32"), m.Binary(">>", drawn, m.Int(8)))
                return m.Binary("*", top, m.Float(2.0**-24))
        cannot(self.builder, type(e).__name__.lower(), e)
        return m.Int(0)

    def clamped(self, index: m.Expr, extent: int) -> m.Expr:
        """``index`` clamped into ``[0, extent - 1]``, a gather's semantics. A let or loop index
        is clamped once in its block and the result reused, as one would write it by hand."""
        call = m.call(self.helper("kc_clamp_i32", DType.I32), index, m.Int(0), m.lit(extent - 1))
        if not (isinstance(index, m.Name) and index.id in self.fixed_names):
            return call
        key = (index.id, extent)
        for layer in reversed(self.clamps):
            if key in layer:
                return layer[key]
        name = self._tmp(f"{index.id}_c")
        self.builder.names.add(name)
        self.prelude.append(m.VarDecl(name, m.Named("i32"), call, const=True))
        self.clamps[-1][key] = m.Name(name)
        return m.Name(name)

    def _proven(self, tensor: str, indices: tuple[ir.Expr, ...]) -> tuple[bool, ...]:
        """Per index: True when the loop ranges prove it inside the tensor (no clamp needed)."""
        return tuple(self._proven_at(tensor, d, index) for d, index in enumerate(indices))

    def _proven_at(self, tensor: str, dim: int, index: ir.Expr) -> bool:
        from kernelc.affine import affine, bounds

        shape = self.shapes.get(tensor, ())
        form = affine(index)
        if form is None or dim >= len(shape):
            return False
        reach = bounds(form, self.ranges)
        return reach is not None and reach[0][0] >= 0 and reach[0][1] < shape[dim]

    def _binary(self, e: ir.Binary) -> m.Expr:
        value = folded(e)
        if value is not None:
            return fconst(float(value), e.dtype)
        a, b = self.expr(e.lhs), self.expr(e.rhs)
        t = e.lhs.dtype
        op = e.op
        constant = wrapped(op, a, b, t)
        if constant is not None:
            return m.lit(constant)
        if op in ("&&", "||"):
            return m.Binary("and" if op == "&&" else "or", a, b)
        if op in ("/", "%") and t.is_int:
            fn = self.helper(f"kc_{'div' if op == '/' else 'rem'}_{csl_type(t)}", t)
            return m.call(fn, a, b)
        if op in ("<<", ">>"):
            return m.Binary(op, a, m.Binary("&", b, m.lit(t.bits - 1)))
        if op == "%" and t.is_float:
            if t != DType.F32:
                cannot(self.builder, f"a float remainder on {t}", e)
                return m.Binary(op, a, b)
            return m.call(self.helper("kc_fmod_f32", t), a, b)
        return m.Binary(op, a, b)

    def _cast(self, value: m.Expr, source: DType, to: DType, node) -> m.Expr:
        if source == to:
            return value
        if to == DType.BOOL:
            zero = m.Float(0.0) if source.is_float else m.Int(0)
            return m.Binary("!=", value, zero)
        if source.is_float and to.is_int:  # f16 widens to f32 exactly, then saturates
            wide = value if source == DType.F32 else m.builtin("as", m.Name("f32"), value)
            return m.call(self.helper(f"kc_f32_to_{csl_type(to)}", to), wide)
        if source == DType.BOOL:
            return m.IfExpr(value, fconst(1, to), fconst(0, to))
        return m.builtin("as", m.Name(csl_type(to)), value)

    def _intrinsic(self, fn: str, args: list[m.Expr], e: ir.Intrinsic) -> m.Expr:
        t = e.dtype
        if fn in ("sqrt", "exp", "log"):
            if t != DType.F32:
                cannot(self.builder, f"{fn} on {t}", e)
            self.builder.uses_math = True
            return m.call(m.member(charges.MATH_MODULE, f"{fn}_f32"), args[0])
        if fn in ("min", "max", "abs"):
            return m.call(self.helper(f"kc_{fn}_{csl_type(t)}", t), *args)
        if fn == "floor" and t == DType.F32:
            return m.call(self.helper("kc_floor_f32", t), args[0])
        cannot(self.builder, f"the intrinsic {fn}", e)
        return m.Int(0)

    def _reduce(self, e: ir.Reduce) -> m.Expr:
        acc = self._tmp("acc")
        var = self._tmp(e.var + "_")
        self.prelude.append(m.VarDecl(acc, m.Named(csl_type(e.dtype)), fconst(0, e.dtype)))
        saved = self.names.get(e.var)
        self.names[e.var] = m.Name(var)
        self.fixed_names.add(var)
        known = self._loop_range(e.lo, e.hi)
        if known is not None:
            self.ranges[e.var] = known
        outer = self.prelude
        self.prelude = []
        self.clamps.append({})
        body = self.expr(e.body)
        self.clamps.pop()
        self.ranges.pop(e.var, None)
        inner = [*self.prelude, m.Assign(m.Name(acc), "=", m.Binary("+", m.Name(acc), body))]
        self.prelude = outer
        if saved is None:
            self.names.pop(e.var)
        else:
            self.names[e.var] = saved
        rng = m.builtin("range", m.Name("i32"), self.expr(e.lo), self.expr(e.hi), m.Int(1))
        self.prelude.append(m.For(rng, var, tuple(inner)))
        return m.Name(acc)

    def _search(self, e: ir.Search) -> m.Expr:
        """Lower-bound binary search with the interpreter's probe order and clamping."""
        axis = next(d for d, i in enumerate(e.indices) if isinstance(i, ir.Slice))
        extent = self.shapes[e.tensor][axis]
        piece = e.indices[axis]
        start = self._tmp("s_start")
        count = self._tmp("s_count")
        lo, hi, mid, res = (self._tmp(n) for n in ("s_lo", "s_hi", "s_mid", "s_idx"))
        i32 = m.Named("i32")
        clamp = self.helper("kc_clamp_i32", DType.I32)
        value = self.expr(e.value)
        fixed = [None if d == axis else self.expr(i) for d, i in enumerate(e.indices)]
        pre = self.prelude
        if not isinstance(value, m.Name | m.Int | m.Float):  # evaluated once, not per probe
            key = self._tmp("s_key")
            pre.append(m.VarDecl(key, m.Named(csl_type(e.value.dtype)), value, True))
            value = m.Name(key)
        if piece.lo is None and piece.hi is None:
            start_v: m.Expr = m.Int(0)
            count_v: m.Expr = m.lit(extent)
        else:
            lo_v = self.expr(piece.lo) if piece.lo is not None else m.Int(0)
            hi_v = self.expr(piece.hi) if piece.hi is not None else m.lit(extent)
            pre.append(m.VarDecl(start, i32, m.call(clamp, lo_v, m.Int(0), m.lit(extent)), True))
            start_v = m.Name(start)
            pre.append(
                m.VarDecl(
                    count,
                    i32,
                    m.Binary("-", m.call(clamp, hi_v, start_v, m.lit(extent)), start_v),
                    True,
                )
            )
            count_v = m.Name(count)
        pre.append(m.VarDecl(lo, i32, m.Int(0)))
        pre.append(m.VarDecl(hi, i32, count_v))
        probe_index = m.add(start_v, m.Name(mid))  # lo <= mid < hi <= count while it runs
        indices = tuple(probe_index if f is None else f for f in fixed)
        proven = tuple(
            d == axis or self._proven_at(e.tensor, d, i) for d, i in enumerate(e.indices)
        )
        place = self.place(e.tensor, indices, proven, e)
        probe = m.Index(m.Name(place.array), (place.index,))
        body = (
            m.VarDecl(
                mid,
                i32,
                m.Binary(
                    "+", m.Name(lo), m.Binary("/", m.Binary("-", m.Name(hi), m.Name(lo)), m.Int(2))
                ),
                True,
            ),
            m.If(
                m.Binary("<=", probe, value),
                (m.Assign(m.Name(lo), "=", m.Binary("+", m.Name(mid), m.Int(1))),),
                (m.Assign(m.Name(hi), "=", m.Name(mid)),),
            ),
        )
        pre.append(m.While(m.Binary("<", m.Name(lo), m.Name(hi)), None, body))
        if isinstance(count_v, m.Int):
            upper: m.Expr = m.lit(max(extent - 2, 0))
        else:
            upper = m.call(
                self.helper("kc_max_i32", DType.I32), m.Binary("-", count_v, m.Int(2)), m.Int(0)
            )
        pre.append(
            m.VarDecl(
                res, i32, m.call(clamp, m.Binary("-", m.Name(lo), m.Int(1)), m.Int(0), upper), True
            )
        )
        return m.Name(res)

    # ----------------------------------------------------------------- helpers
    def helper(self, name: str, dtype: DType) -> str:
        """Emit a semantics helper function into the PE program once, and name it."""
        if name not in self.builder.helpers:
            self.builder.helpers.add(name)
            self.builder.code(_helper(name, dtype))
        return name

    # ------------------------------------------------------------------ statements
    def block(self, body: tuple[ir.Stmt, ...]) -> list[m.Stmt]:
        out: list[m.Stmt] = []
        self.clamps.append({})
        for s in body:
            out.extend(self.stmt(s))
        self.clamps.pop()
        return out

    def _with_prelude(self, build: Callable[[], list[m.Stmt]]) -> list[m.Stmt]:
        outer = self.prelude
        self.prelude = []
        stmts = build()
        result = [*self.prelude, *stmts]
        self.prelude = outer
        return result

    def stmt(self, s: ir.Stmt) -> list[m.Stmt]:
        match s:
            case ir.Let(name=n, value=v):
                return self._with_prelude(lambda: self._let(n, v, const=True))
            case ir.VarDecl(name=n, value=v):
                return self._with_prelude(lambda: self._let(n, v, const=False))
            case ir.Assign(name=n, op=op, value=v):

                def assign():
                    target = self.names[n]
                    value = self.expr(v)
                    if op != "=":
                        value = self._compound(op, target, value, v.dtype, s)
                    return [m.Assign(target, "=", value)]

                return self._with_prelude(assign)
            case ir.Store():
                return self._with_prelude(lambda: self._store(s))
            case ir.If(cond=c, then=then, orelse=orelse):

                def branch():
                    cond = self.expr(c)
                    return [m.If(cond, tuple(self.block(then)), tuple(self.block(orelse)))]

                return self._with_prelude(branch)
            case ir.For():
                return self._with_prelude(lambda: self._for(s))
        cannot(self.builder, type(s).__name__, s)
        return []

    def _let(self, n: str, v: ir.Expr, const: bool) -> list[m.Stmt]:
        value = self.expr(v)
        if isinstance(v, ir.Search):
            axis = next(d for d, i in enumerate(v.indices) if isinstance(i, ir.Slice))
            self.ranges[n] = (0, max(self.shapes[v.tensor][axis] - 2, 0))
        name = self._local(n)
        self.builder.names.add(name)
        self.names[n] = m.Name(name)
        if const:
            self.fixed_names.add(name)
        return [m.VarDecl(name, m.Named(csl_type(v.dtype)), value, const=const)]

    def _compound(self, op: str, old: m.Expr, value: m.Expr, dtype: DType, node) -> m.Expr:
        base = op[:-1]
        if base in ("max", "min"):
            return m.call(self.helper(f"kc_{base}_{csl_type(dtype)}", dtype), old, value)
        if base in ("/", "%") and dtype.is_int:
            fn = self.helper(f"kc_{'div' if base == '/' else 'rem'}_{csl_type(dtype)}", dtype)
            return m.call(fn, old, value)
        return m.Binary(base, old, value)

    def _store(self, s: ir.Store) -> list[m.Stmt]:
        indices = tuple(self.expr(i) for i in s.indices)
        place = self.place(s.tensor, indices, self._proven(s.tensor, s.indices), s)
        target = m.Index(m.Name(place.array), (place.index,))
        value = self.expr(s.value)
        if s.op != "=":
            value = self._compound(s.op, target, value, s.value.dtype, s)
        stmt: m.Stmt = m.Assign(target, "=", value)
        if place.guard is not None:
            stmt = m.If(place.guard, (stmt,))
        return [stmt]

    def _loop_range(self, lo: ir.Expr, hi: ir.Expr) -> tuple[int, int] | None:
        """The values a loop index ``lo .. hi`` can take, where the bounds are known."""
        from kernelc.affine import affine, bounds

        lo_f, hi_f = affine(lo), affine(hi)
        if lo_f is None or hi_f is None:
            return None
        a, b = bounds(lo_f, self.ranges), bounds(hi_f, self.ranges)
        if a is None or b is None:
            return None
        return (a[0][0], b[0][1] - 1)

    def _for(self, s: ir.For) -> list[m.Stmt]:
        if self.vectorise is not None and s.parallel:
            vector = self.vectorise(s)
            if vector is not None:
                return vector
        lo, hi = self.expr(s.lo), self.expr(s.hi)
        var = self._local(s.var)
        self.builder.names.add(var)
        self.fixed_names.add(var)
        saved = self.names.get(s.var)
        self.names[s.var] = m.Name(var)
        known = self._loop_range(s.lo, s.hi)
        if known is not None:
            self.ranges[s.var] = known
        body = tuple(self.block(s.body))
        self.ranges.pop(s.var, None)
        if saved is None:
            self.names.pop(s.var)
        else:
            self.names[s.var] = saved
        rng = m.builtin("range", m.Name("i32"), lo, hi, m.Int(1))
        return [m.For(rng, var, body)]


# ----------------------------------------------------------------------- helper functions


def _fn(name: str, params: list[tuple[str, str]], ret: str, body: list[m.Stmt]) -> m.FnDecl:
    return m.FnDecl(name, tuple((p, m.Named(t)) for p, t in params), m.Named(ret), tuple(body))


def _helper(name: str, dtype: DType) -> m.FnDecl:
    a, b, x = m.Name("a"), m.Name("b"), m.Name("x")
    t = csl_type(dtype)
    kind = name[3:].rsplit("_", 1)[0] if not name.startswith("kc_f32_to") else "f2i"
    if name.startswith("kc_f32_to_"):
        target = name.rsplit("_", 1)[1]
        info = {"i32": (2147483647, 2147483648), "u32": (4294967295, 0), "u16": (65535, 0)}
        hi, neg = info[target]
        body = [
            m.Comment("float to integer: truncate, saturate, NaN gives 0 (kernelc semantics)"),
            m.If(m.Binary("!=", x, x), (m.Return(m.Int(0)),)),
            m.If(m.Binary(">=", x, m.Float(float(hi))), (m.Return(m.lit(hi)),)),
            m.If(m.Binary("<=", x, m.lit(-float(neg))), (m.Return(m.lit(-neg)),)),
            m.Return(m.builtin("as", m.Name(target), x)),
        ]
        return _fn(name, [("x", "f32")], target, body)
    if kind == "div":
        body = [
            m.Comment("C division, truncating; x / 0 is 0 (kernelc semantics)"),
            m.If(m.Binary("==", b, m.Int(0)), (m.Return(m.Int(0)),)),
            m.Return(m.Binary("/", a, b)),
        ]
        return _fn(name, [("a", t), ("b", t)], t, body)
    if kind == "rem":
        body = [
            m.If(m.Binary("==", b, m.Int(0)), (m.Return(m.Int(0)),)),
            m.Return(m.Binary("%", a, b)),
        ]
        return _fn(name, [("a", t), ("b", t)], t, body)
    if kind in ("max", "min"):
        better = ">" if kind == "max" else "<"
        body: list[m.Stmt] = []
        if dtype.is_float:
            body += [
                m.Comment(f"NaN-ignoring {kind} (like C f{kind})"),
                m.If(m.Binary("!=", a, a), (m.Return(b),)),
                m.If(m.Binary("!=", b, b), (m.Return(a),)),
            ]
        body.append(m.Return(m.IfExpr(m.Binary(better, a, b), a, b)))
        return _fn(name, [("a", t), ("b", t)], t, body)
    if kind == "abs":
        if dtype.is_float:
            # 0.0 - x rather than -x so that abs(-0.0) is +0.0, as the language defines
            flip = m.Binary("<=", x, m.Float(0.0))
            return _fn(
                name,
                [("x", t)],
                t,
                [m.Return(m.IfExpr(flip, m.Binary("-", m.Float(0.0), x), x))],
            )
        flip = m.Binary("<", x, m.Int(0))
        return _fn(name, [("x", t)], t, [m.Return(m.IfExpr(flip, m.Unary("-", x), x))])
    if kind == "floor":
        whole = m.builtin("as", m.Name(t), m.builtin("as", m.Name("i32"), x))
        big = float(2**23)
        body = [
            m.Comment("floor, exact: from 2^23 up every f32 is whole; NaN and -0.0 come back"),
            m.If(
                m.Unary(
                    "!",
                    m.Binary("and", m.Binary(">", x, m.lit(-big)), m.Binary("<", x, m.Float(big))),
                ),
                (m.Return(x),),
            ),
            m.VarDecl("t", m.Named(t), whole, const=True),
            m.If(m.Binary("==", m.Name("t"), x), (m.Return(x),)),
            m.Return(
                m.IfExpr(
                    m.Binary(">", m.Name("t"), x),
                    m.Binary("-", m.Name("t"), m.Float(1.0)),
                    m.Name("t"),
                )
            ),
        ]
        return _fn(name, [("x", t)], t, body)
    if kind == "fmod":
        return _fmod()
    if kind == "mulwrap":
        return _mulwrap()
    if kind == "mix":
        return _mix()
    if kind == "randbits":
        key, counter = m.Name("key"), m.Name("counter")
        mixed_key = m.call("kc_mix_u32", m.Binary("^", key, m.lit(0x9E3779B9)))
        body = [
            m.Comment("randbits(key, counter) = mix(counter ^ mix(key ^ 0x9e3779b9))"),
            m.Return(m.call("kc_mix_u32", m.Binary("^", counter, mixed_key))),
        ]
        return _fn(name, [("key", "u32"), ("counter", "u32")], "u32", body)
    if kind == "clamp":
        lo, hi = m.Name("lo"), m.Name("hi")
        body = [
            m.If(m.Binary("<", x, lo), (m.Return(lo),)),
            m.If(m.Binary(">", x, hi), (m.Return(hi),)),
            m.Return(x),
        ]
        return _fn(name, [("x", t), ("lo", t), ("hi", t)], t, body)
    raise AssertionError(name)


def _mulwrap() -> m.FnDecl:
    """a * b mod 2^32 from 16-bit halves, so that no step overflows u32 (whether CSL's u32
    multiply wraps is not something the emitted code relies on)."""
    a, b = m.Name("a"), m.Name("b")
    mask = m.lit(0xFFFF)
    u32 = m.Named("u32")

    def const(name: str, value: m.Expr) -> m.Stmt:
        return m.VarDecl(name, u32, value, const=True)

    low = m.Binary("&", m.Binary(">>", m.Name("lo"), m.Int(16)), mask)
    cross = m.Binary(
        "+",
        m.Binary("&", m.Binary("*", m.Name("ah"), m.Name("bl")), mask),
        m.Binary("&", m.Binary("*", m.Name("al"), m.Name("bh")), mask),
    )
    body = [
        m.Comment("a * b mod 2^32 from 16-bit halves: no intermediate exceeds 32 bits"),
        const("al", m.Binary("&", a, mask)),
        const("ah", m.Binary(">>", a, m.Int(16))),
        const("bl", m.Binary("&", b, mask)),
        const("bh", m.Binary(">>", b, m.Int(16))),
        const("lo", m.Binary("*", m.Name("al"), m.Name("bl"))),
        const("hi", m.Binary("&", m.Binary("+", low, cross), mask)),
        m.Return(
            m.Binary(
                "|", m.Binary("<<", m.Name("hi"), m.Int(16)), m.Binary("&", m.Name("lo"), mask)
            )
        ),
    ]
    return _fn("kc_mulwrap_u32", [("a", "u32"), ("b", "u32")], "u32", body)


def _mix() -> m.FnDecl:
    """The lowbias32 hash of the language's rand (docs/LANGUAGE.md)."""
    x = m.Name("x")

    def shift_xor(k: int) -> m.Stmt:
        return m.Assign(x, "=", m.Binary("^", x, m.Binary(">>", x, m.Int(k))))

    def times(c: int) -> m.Stmt:
        return m.Assign(x, "=", m.call("kc_mulwrap_u32", x, m.lit(c)))

    body = [
        m.VarDecl("x", m.Named("u32"), m.Name("v")),
        shift_xor(16),
        times(0x7FEB352D),
        shift_xor(15),
        times(0x846CA68B),
        shift_xor(16),
        m.Return(x),
    ]
    return _fn("kc_mix_u32", [("v", "u32")], "u32", body)


def _fmod() -> m.FnDecl:
    """C's fmod, exact: subtract |y| scaled by powers of two, largest first. Each subtraction
    takes d <= r < 2d, so it is exact (Sterbenz), and so is every scaling by 2."""
    x, y, r, d, ay = (m.Name(n) for n in ("x", "y", "r", "d", "ay"))
    f32 = m.Named("f32")
    zero = m.Binary("-", x, x)  # 0, or NaN for an infinite or NaN x: 0 / 0 at run time is NaN
    nan = m.Binary("/", zero, zero)
    infinite_x = m.Binary(
        "and", m.Binary("==", x, m.Binary("*", x, m.Float(2.0))), m.Binary("!=", x, m.Float(0.0))
    )
    body = [
        m.Comment("C fmod, exact: the result has the sign of x; y = 0, x infinite or NaN give NaN"),
        m.If(
            m.Binary(
                "or",
                m.Binary("or", m.Binary("!=", x, x), m.Binary("!=", y, y)),
                m.Binary("or", m.Binary("==", y, m.Float(0.0)), infinite_x),
            ),
            (m.Return(nan),),
        ),
        m.VarDecl("ay", f32, m.IfExpr(m.Binary("<", y, m.Float(0.0)), m.Unary("-", y), y), True),
        m.VarDecl("r", f32, m.IfExpr(m.Binary("<", x, m.Float(0.0)), m.Unary("-", x), x)),
        m.If(m.Binary("or", m.Binary("<", r, ay), m.Binary("==", x, m.Float(0.0))), (m.Return(x),)),
        m.VarDecl("d", f32, ay),
        m.While(
            m.Binary("<=", m.Binary("*", d, m.Float(2.0)), r),
            None,
            (m.Assign(d, "=", m.Binary("*", d, m.Float(2.0))),),
        ),
        m.While(
            m.Binary(">=", d, ay),
            None,
            (
                m.If(m.Binary(">=", r, d), (m.Assign(r, "=", m.Binary("-", r, d)),)),
                m.Assign(d, "=", m.Binary("*", d, m.Float(0.5))),
            ),
        ),
        m.Return(m.IfExpr(m.Binary("<", x, m.Float(0.0)), m.Unary("-", r), r)),
    ]
    return _fn("kc_fmod_f32", [("x", "f32"), ("y", "f32")], "f32", body)
