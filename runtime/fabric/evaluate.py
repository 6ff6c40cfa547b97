"""The CSL interpreter: compiles model trees into Python closures and runs them on a context.

One compiler serves the layout file (evaluated once, at "compile time") and the PE programs
(module scope evaluated per PE, then functions and tasks run by the simulator). The context
object (``LayoutContext`` or a simulated PE) answers the builtins that touch the machine; the
pure builtins (colors, casts, DSD construction) are answered here. Every executed statement
charges modelled cycles to ``ctx.now`` so that task bodies take simulated time.

Values follow CSL: typed scalars are NumPy scalars (fixed-width wrap-around, f32 rounding),
``comptime_int`` values are Python ints. Functions called by ``@map`` may receive whole NumPy
arrays; expressions (including ``if`` expressions) then evaluate element-wise.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from kernelc.csl import model as m
from kernelc.csl.charges import (
    ITERATION_CYCLES,
    STATEMENT_CYCLES,
    WHILE_TEST_CYCLES,
    expr_cycles,
)
from kernelc.diagnostics import Span
from kernelc.runtime.fabric.parser import unescape
from kernelc.runtime.fabric.values import (
    DIRECTIONS,
    NUMERIC,
    Array,
    ArrayType,
    Color,
    CslType,
    Direction,
    DsdKind,
    EnumType,
    FabDsd,
    FabricError,
    FnType,
    MemDsd,
    Pointer,
    PtrType,
    Queue,
    Struct,
    TaskId,
    convert,
    wrap_int,
)

PREDECLARED: dict[str, object] = {
    **DIRECTIONS,
    **{
        n: CslType(n)
        for n in (
            "f32 f16 i8 u8 i16 u16 i32 u32 i64 u64 bool void color local_task_id data_task_id "
            "control_task_id input_queue output_queue ut_id direction comptime_int "
            "comptime_float comptime_string comptime_struct imported_module type"
        ).split()
    },
    **{n: DsdKind(n) for n in ("mem1d_dsd", "mem4d_dsd", "fabin_dsd", "fabout_dsd")},
}


VOID = Struct()  # ``{}``, the void value


class Ret:
    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


class LoopExit:
    """What ``break`` / ``continue`` return through the enclosing blocks to their loop."""

    __slots__ = ("keyword",)

    def __init__(self, keyword: str) -> None:
        self.keyword = keyword


BREAK, CONTINUE = LoopExit("break"), LoopExit("continue")


class Frame:
    """Locals of one function or task activation (module scope uses an empty frame)."""

    __slots__ = ("ctx", "l", "lt")

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.l: dict[str, object] = {}
        self.lt: dict[str, np.dtype | None] = {}


@dataclass(eq=False)
class FnValue:
    """A CSL function or task; ``invoke`` runs it on a context."""

    name: str
    params: tuple[tuple[str, object], ...]
    ret: object
    body: Callable[[Frame], Ret | None]
    is_task: bool = False
    file: str = ""
    home: Any = None  # the imported module whose globals it sees (None: the PE program's)

    def __post_init__(self) -> None:
        self._typed = tuple(
            (pname, ptype.dtype if isinstance(ptype, CslType) else None)
            for pname, ptype in self.params
        )
        self._ret_dtype = self.ret.dtype if isinstance(self.ret, CslType) else None

    def invoke(self, ctx: Any, args: tuple[object, ...]) -> object:
        if self.home is not None:
            ctx = self.home
        if len(args) != len(self._typed):
            raise FabricError(
                f"{self.name}() takes {len(self.params)} argument(s), got {len(args)}", self.file
            )
        fr = Frame(ctx)
        local, types = fr.l, fr.lt
        for (pname, dtype), value in zip(self._typed, args, strict=True):
            local[pname] = convert(value, dtype)
            types[pname] = dtype
        result = self.body(fr)
        if result is None:
            return None
        if type(result) is LoopExit:
            raise FabricError(f"{self.name}(): {result.keyword} outside a loop", self.file)
        if self._ret_dtype is not None:
            return convert(result.value, self._ret_dtype)
        return result.value


# ------------------------------------------------------------------------------- arithmetic


def _is_int(v: object) -> bool:
    if isinstance(v, np.ndarray):
        return v.dtype.kind in "iu"
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


# fixed-width integer scalars whose quotient is exact in Python ints and wraps like int64's
NARROW_INTS = {
    t: np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32)
}


def _narrow(a: object, b: object) -> np.dtype | None:
    """The result type of ``a`` op ``b`` when both are narrow integers of one type, or one is
    and the other a Python int it can hold (NumPy then keeps the narrow type): the common case,
    computed exactly in Python ints."""
    ka, kb = type(a), type(b)
    if ka is kb:
        return NARROW_INTS.get(ka)
    if kb is int:
        dtype = NARROW_INTS.get(ka)
        return dtype if dtype is not None and _fits(b, dtype) else None
    if ka is int:
        dtype = NARROW_INTS.get(kb)
        return dtype if dtype is not None and _fits(a, dtype) else None
    return None


def _fits(v: int, dtype: np.dtype) -> bool:
    bits = dtype.itemsize * 8
    if dtype.kind == "u":
        return 0 <= v < 1 << bits
    return -(1 << (bits - 1)) <= v < 1 << (bits - 1)


def _div(a, b):
    dtype = _narrow(a, b)
    if dtype is not None:
        if b == 0:
            raise FabricError("integer division by zero")
        x, y = int(a), int(b)
        q = abs(x) // abs(y)
        return wrap_int(q if (x >= 0) == (y >= 0) else -q, dtype)
    if _is_int(a) and _is_int(b):
        if isinstance(a, int) and isinstance(b, int):
            if b == 0:
                raise FabricError("integer division by zero")
            q = abs(a) // abs(b)
            return q if (a >= 0) == (b >= 0) else -q
        if (b == 0) if not isinstance(b, np.ndarray) else np.any(b == 0):
            raise FabricError("integer division by zero")
        # in 64 bits: |INT_MIN| does not fit the operands' own type; the quotient is then
        # wrapped back into it (INT_MIN / -1 wraps to INT_MIN, as two's complement does)
        wide_a, wide_b = np.asarray(a).astype(np.int64), np.asarray(b).astype(np.int64)
        q = np.abs(wide_a) // np.abs(wide_b)
        q = np.where((wide_a >= 0) == (wide_b >= 0), q, -q)
        return q.astype(np.result_type(a, b))[()]
    return np.divide(a, b) if not (isinstance(a, float) and isinstance(b, float)) else a / b


def _mod(a, b):
    dtype = _narrow(a, b)
    if dtype is not None:
        if b == 0:
            raise FabricError("integer remainder by zero")
        x, y = int(a), int(b)
        r = abs(x) % abs(y)
        return wrap_int(r if x >= 0 else -r, dtype)
    if _is_int(a) and _is_int(b):
        if (b == 0) if not isinstance(b, np.ndarray) else np.any(b == 0):
            raise FabricError("integer remainder by zero")
        if isinstance(a, int) and isinstance(b, int):
            return a - b * _div(a, b)
        return np.fmod(a, b)
    return np.fmod(a, b)


# the operator module's functions are the Python operators without a Python frame per call
BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _div,
    "%": _mod,
    "&": operator.and_,
    "|": operator.or_,
    "^": operator.xor,
    "<<": operator.lshift,
    ">>": operator.rshift,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def _negate(v):
    if isinstance(v, np.generic | np.ndarray):
        return np.negative(v)
    return -v


def _not(v):
    return np.logical_not(v) if isinstance(v, np.ndarray) else not v


UNARY: dict[str, Callable[[Any], Any]] = {"-": _negate, "!": _not, "~": lambda v: ~v}


# --------------------------------------------------------------------------------- compiler

Closure = Callable[[Frame], Any]
StmtClosure = Callable[[Frame], Ret | None]
LOOP_LIMIT = 1 << 26  # iterations of one while loop before the simulator calls it a hang


def block_closures(
    stmts: tuple[m.Stmt, ...],
    scope: frozenset[str],
    compile_stmt: Callable[[m.Stmt, frozenset[str]], Any],
) -> list:
    """A block's statements compiled by ``compile_stmt(stmt, scope)``, each in the scope it
    sees: a ``var`` declared in the block is in scope for the statements after it; comments
    compile to nothing. Shared by the per-PE evaluator and the lockstep lanes."""
    closures = []
    for s in stmts:
        if isinstance(s, m.Comment):
            continue
        closures.append(compile_stmt(s, scope))
        if isinstance(s, m.VarDecl):
            scope = scope | {s.name}
    return closures


class Compiler:
    """Turns one file's model nodes into closures. Builtins needing the machine call ``ctx``."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.unset: set[str] = set()  # params without a default: an error only where read

    def error(self, message: str) -> FabricError:
        return FabricError(message, self.file)

    # -------------------------------------------------------------------- types
    def type_fn(self, t: m.Type | None, scope: frozenset[str]) -> Closure:
        match t:
            case None:  # ``param x = value;``: the value's own type
                return lambda fr: None
            case m.Named(name=n):
                if n in PREDECLARED:
                    value = PREDECLARED[n]
                    return lambda fr: value
                return self.expr(m.Name(n), scope)
            case m.ArrayT(dims=dims, elem=elem):
                dfs = [self.expr(d, scope) for d in dims]
                ef = self.type_fn(elem, scope)
                return lambda fr: ArrayType(tuple(int(d(fr)) for d in dfs), ef(fr))
            case m.ManyPtrT(elem=elem):
                ef = self.type_fn(elem, scope)
                return lambda fr: PtrType(ef(fr), True)
            case m.PtrT(elem=elem):
                ef = self.type_fn(elem, scope)
                return lambda fr: PtrType(ef(fr), False)
            case m.EnumT(tag=tag, members=members):
                tag_f = self.type_fn(tag, scope)
                value_fs = [(n, self.expr(v, scope) if v is not None else None) for n, v in members]

                def enum_type(fr):
                    numbered, next_value = [], 0
                    for n, vf in value_fs:
                        next_value = int(vf(fr)) if vf is not None else next_value
                        numbered.append((n, next_value))
                        next_value += 1
                    return EnumType(getattr(tag_f(fr), "name", "enum"), tuple(numbered))

                return enum_type
            case m.FnT(params=params, ret=ret):
                pfs = [self.type_fn(p, scope) for p in params]
                rf = self.type_fn(ret, scope)
                return lambda fr: FnType(tuple(p(fr) for p in pfs), rf(fr))
        raise self.error(f"the simulator does not evaluate {type(t).__name__} types")

    # -------------------------------------------------------------- expressions
    def expr(self, e: m.Expr, scope: frozenset[str]) -> Closure:
        match e:
            case m.Void():
                void = VOID
                return lambda fr: void
            case m.Str(value=v):
                text = unescape(v, e.at)
                return lambda fr: text
            case m.Int(value=v) | m.Float(value=v) | m.Bool(value=v):
                return lambda fr: v
            case m.Name(id=n):
                return self._name(n, scope)
            case m.Field(obj=obj, name=n):
                of = self.expr(obj, scope)
                return lambda fr: _field(of(fr), n, self)
            case m.Index(obj=obj, indices=idx):
                of = self.expr(obj, scope)
                ifs = [self.expr(i, scope) for i in idx]
                if len(ifs) == 1:
                    i0 = ifs[0]
                    return lambda fr: _load(of(fr), (i0(fr),), self)
                return lambda fr: _load(of(fr), tuple(f(fr) for f in ifs), self)
            case m.Deref(ptr=p):
                pf = self.expr(p, scope)

                def deref(fr):
                    ptr = pf(fr)
                    if type(ptr) is Pointer and ptr.element:
                        return _load(ptr, (0,), self)
                    return ptr  # ``*[N]T``: the array it points to, indexed by the caller

                return deref
            case m.Unary(op="&", operand=a):
                return self._address(a, scope)
            case m.Unary(op=op, operand=a):
                af, fn = self.expr(a, scope), UNARY[op]
                return lambda fr: fn(af(fr))
            case m.Binary(op="and", lhs=a, rhs=b):
                af, bf = self.expr(a, scope), self.expr(b, scope)

                def both(fr):
                    x = af(fr)
                    if isinstance(x, np.ndarray):
                        return np.logical_and(x, bf(fr))
                    return bool(x) and bool(bf(fr))

                return both
            case m.Binary(op="or", lhs=a, rhs=b):
                af, bf = self.expr(a, scope), self.expr(b, scope)

                def either(fr):
                    x = af(fr)
                    if isinstance(x, np.ndarray):
                        return np.logical_or(x, bf(fr))
                    return bool(x) or bool(bf(fr))

                return either
            case m.Binary(op=op, lhs=a, rhs=m.Int(value=bv) | m.Float(value=bv)):
                af, fn = self.expr(a, scope), BINARY[op]
                return lambda fr: fn(af(fr), bv)  # a literal operand: one call fewer
            case m.Binary(op=op, lhs=a, rhs=b):
                af, bf, fn = self.expr(a, scope), self.expr(b, scope), BINARY[op]
                return lambda fr: fn(af(fr), bf(fr))
            case m.IfExpr(cond=c, then=a, orelse=b):
                cf, af = self.expr(c, scope), self.expr(a, scope)
                if b is None:  # the last `else if` of a chain (`if (@is_arch(...)) ...`)

                    def only(fr):
                        if not cf(fr):
                            raise self.error("an if-expression without else took no branch")
                        return af(fr)

                    return only
                bf = self.expr(b, scope)

                def choose(fr):
                    cond = cf(fr)
                    if isinstance(cond, np.ndarray):
                        return np.where(cond, af(fr), bf(fr))
                    return af(fr) if cond else bf(fr)

                return choose
            case m.Call(fn=fn, args=args):
                ff = self.expr(fn, scope)
                afs = [self.expr(a, scope) for a in args]
                at = e.at

                def call(fr):
                    target = ff(fr)
                    values = tuple([a(fr) for a in afs])
                    if isinstance(target, FnValue):
                        return target.invoke(fr.ctx, values)
                    if callable(target):
                        fr.ctx.at = at  # a library member's errors point at its call
                        fr.ctx.now += getattr(target, "cycles", 0)  # a <math> routine's work
                        return target(*values)
                    raise self.error(f"{target!r} is not callable")

                return call
            case m.Builtin(name=n, args=args):
                return self.builtin(n, args, scope, e.at)
            case m.Struct(fields=fields):
                ffs = [(k, self.expr(v, scope)) for k, v in fields]
                return lambda fr: Struct({k: f(fr) for k, f in ffs})
            case m.Tuple(items=items):
                ifs = [self.expr(i, scope) for i in items]
                return lambda fr: Struct({}, tuple(f(fr) for f in ifs))
            case m.TensorAccess():
                return self._access(e, scope)
            case m.ArrayLit(type=t, items=items):
                tf = self.type_fn(t, scope)
                ifs = [self.expr(i, scope) for i in items]

                def array(fr):
                    a = _zeros(tf(fr))
                    a.data[:] = [f(fr) for f in ifs]
                    return a

                return array
            case m.TypeExpr(type=t):
                return self.type_fn(t, scope)
        raise self.error(f"the simulator does not evaluate {type(e).__name__} expressions")

    def _name(self, n: str, scope: frozenset[str]) -> Closure:
        if n in scope:
            return lambda fr: fr.l[n]
        fallback = PREDECLARED.get(n)
        if fallback is None:

            def glob(fr):
                try:
                    return fr.ctx.g[n]
                except KeyError:
                    if n in self.unset:
                        raise self.error(f"param '{n}' has no value") from None
                    raise self.error(f"unknown name '{n}'") from None

            return glob

        def glob_or_predeclared(fr):
            g = fr.ctx.g
            return g[n] if n in g else fallback

        return glob_or_predeclared

    def _address(self, a: m.Expr, scope: frozenset[str]) -> Closure:
        match a:
            case m.Index(obj=obj, indices=idx):
                of = self.expr(obj, scope)
                ifs = [self.expr(i, scope) for i in idx]

                def element(fr):
                    base = of(fr)
                    if isinstance(base, Pointer):
                        return Pointer(base.array, base.offset + int(ifs[0](fr)), True)
                    if isinstance(base, Array):
                        return Pointer(base, base.flat_index(tuple(f(fr) for f in ifs)), True)
                    raise self.error("& of an element needs an array")

                return element
        vf = self.expr(a, scope)

        def whole(fr):
            value = vf(fr)
            if isinstance(value, Array):
                return Pointer(value, 0)
            if isinstance(value, Pointer | FnValue):
                return value
            raise self.error(f"cannot take the address of {value!r}")

        return whole

    def _access(self, e: m.TensorAccess, scope: frozenset[str]) -> Closure:
        """``|i, j|{a, b} -> A[f(i, j)]``: a MemDsd; strides from evaluating f at unit points."""
        inner = scope | set(e.vars)
        extent_fs = [self.expr(x, scope) for x in e.extents]
        if not isinstance(e.target, m.Index):
            raise self.error("a tensor_access must index an array")
        obj_f = self.expr(e.target.obj, scope)
        idx_fs = [self.expr(i, inner) for i in e.target.indices]
        names = e.vars

        def build(fr):
            base = obj_f(fr)
            array, extra = (base.array, base.offset) if isinstance(base, Pointer) else (base, 0)
            if not isinstance(array, Array):
                raise self.error("a tensor_access must index an array")
            saved = {n: fr.l.get(n) for n in names}

            def offset_at(point):
                for n, v in zip(names, point, strict=True):
                    fr.l[n] = v
                idx = tuple(int(f(fr)) for f in idx_fs)
                return array.flat_index(idx) if len(idx) > 1 else idx[0]

            zero = (0,) * len(names)
            origin = offset_at(zero)
            strides = []
            for k in range(len(names)):
                unit = tuple(1 if j == k else 0 for j in range(len(names)))
                strides.append(offset_at(unit) - origin)
            for n, v in saved.items():
                if v is None:
                    fr.l.pop(n, None)
                else:
                    fr.l[n] = v
            shape = tuple(int(f(fr)) for f in extent_fs)
            return MemDsd(array, origin + extra, shape, tuple(strides))

        return build

    # ---------------------------------------------------------------- builtins
    def builtin(
        self, n: str, args: tuple[m.Expr, ...], scope: frozenset[str], at: Span | None = None
    ) -> Closure:
        """A builtin's closure. One the machine answers first sets ``ctx.at`` to its call, so
        that the machine's rules (queues, microthreads, routes) name the line that broke them."""
        afs = [self.expr(a, scope) for a in args]
        pure = PURE_BUILTINS.get(n)
        if pure is not None:
            return lambda fr: pure(self, *[a(fr) for a in afs])
        if n == "export_symbol" and args and isinstance(args[0], m.Name):
            name_arg = args[0].id
            return lambda fr: fr.ctx.builtin(
                "export_symbol", (afs[0](fr), *(a(fr) for a in afs[1:]), name_arg)
            )

        def machine(fr):
            values = tuple([a(fr) for a in afs])
            ctx = fr.ctx
            ctx.at = at
            return ctx.builtin(n, values)

        return machine

    # -------------------------------------------------------------- statements
    def block(self, stmts: tuple[m.Stmt, ...], scope: frozenset[str]) -> StmtClosure:
        closures: list[StmtClosure] = block_closures(stmts, scope, self.stmt)
        if len(closures) == 1:
            return closures[0]

        def run(fr):
            for c in closures:
                r = c(fr)
                if r is not None:
                    return r
            return None

        return run

    def stmt(self, s: m.Stmt, scope: frozenset[str]) -> StmtClosure:
        match s:
            case m.VarDecl(name=n, type=t, value=v):
                return self._local_decl(n, t, v, scope)
            case m.Assign(target=target, op=op, value=v):
                return self._assign(target, op, v, scope)
            case m.ExprStmt(expr=e):
                ef, cost = self.expr(e, scope), STATEMENT_CYCLES + expr_cycles(e)

                def run_expr(fr):
                    fr.ctx.now += cost
                    ef(fr)

                return run_expr
            case m.If(cond=c, then=then, orelse=orelse):
                cf, cost = self.expr(c, scope), STATEMENT_CYCLES + expr_cycles(c)
                tf = self.block(then, scope)
                ef = self.block(orelse, scope) if orelse else None

                def run_if(fr):
                    fr.ctx.now += cost
                    if cf(fr):
                        return tf(fr)
                    return ef(fr) if ef is not None else None

                return run_if
            case m.For(iter=it, var=v, body=body):
                itf = self.expr(it, scope)
                bf = self.block(body, scope | {v})

                def run_for(fr):
                    rng = itf(fr)
                    if not isinstance(rng, RangeValue):
                        raise self.error("for loops iterate over @range(...)")
                    convert_to = rng.dtype
                    for i in range(rng.start, rng.stop, rng.step):
                        fr.l[v] = convert_to.type(i) if convert_to is not None else i
                        fr.ctx.now += ITERATION_CYCLES
                        r = bf(fr)
                        if r is not None:
                            if r is BREAK:
                                break
                            if r is not CONTINUE:
                                return r
                    return None

                return run_for
            case m.While(cond=c, step=step, body=body):
                cf, cost = self.expr(c, scope), WHILE_TEST_CYCLES + expr_cycles(c)
                bf = self.block(body, scope)
                sf = self._assign(step.target, step.op, step.value, scope) if step else None

                def run_while(fr):
                    count = 0
                    while True:
                        fr.ctx.now += cost
                        if not cf(fr):
                            return None
                        r = bf(fr)
                        if r is not None:
                            if r is BREAK:
                                return None
                            if r is not CONTINUE:
                                return r
                        if sf is not None:
                            sf(fr)
                        count += 1
                        if count > LOOP_LIMIT:
                            raise self.error(f"a while loop ran {LOOP_LIMIT} iterations")

                return run_while
            case m.Return(value=v):
                if v is None:
                    return lambda fr: Ret(None)
                vf, cost = self.expr(v, scope), STATEMENT_CYCLES + expr_cycles(v)

                def run_return(fr):
                    fr.ctx.now += cost
                    return Ret(vf(fr))

                return run_return
            case m.Switch(subject=subject, cases=cases):
                return self._switch(subject, cases, scope)
            case m.Break():
                return lambda fr: BREAK
            case m.Continue():
                return lambda fr: CONTINUE
        raise self.error(f"the simulator does not run {type(s).__name__} statements")

    def _switch(self, subject: m.Expr, cases: tuple, scope: frozenset[str]) -> StmtClosure:
        """``switch``: the first case listing the subject's value, else the ``else`` case."""
        sf, cost = self.expr(subject, scope), STATEMENT_CYCLES + expr_cycles(subject)
        arms = [([self.expr(v, scope) for v in c.values], self.block(c.body, scope)) for c in cases]
        fallback = next((body for values, body in arms if not values), None)

        def run_switch(fr):
            fr.ctx.now += cost
            value = sf(fr)
            for values, body in arms:
                if any(value == vf(fr) for vf in values):
                    return body(fr)
            if fallback is None:
                raise self.error(f"switch on {value}: no case matches and there is no else")
            return fallback(fr)

        return run_switch

    def _local_decl(self, n, t, v, scope) -> StmtClosure:
        tf = self.type_fn(t, scope) if t is not None else None
        vf = self.expr(v, scope) if v is not None else None
        cost = STATEMENT_CYCLES + (expr_cycles(v) if v is not None else 0)
        if isinstance(t, m.Named) and t.name in PREDECLARED and vf is not None:
            known = PREDECLARED[t.name]  # a built-in type: its dtype is known now
            dtype_of = known.dtype if isinstance(known, CslType) else None

            def declare_typed(fr):
                fr.ctx.now += cost
                fr.l[n] = convert(vf(fr), dtype_of)
                fr.lt[n] = dtype_of

            return declare_typed

        def declare(fr):
            fr.ctx.now += cost
            declared = tf(fr) if tf is not None else None
            dtype = declared.dtype if isinstance(declared, CslType) else None
            if vf is None:
                value = _default(declared, n)
            else:
                value = convert(vf(fr), dtype)
            fr.l[n] = value
            fr.lt[n] = dtype
            return None

        return declare

    def _assign(self, target, op, v, scope) -> StmtClosure:
        vf, cost = self.expr(v, scope), STATEMENT_CYCLES + expr_cycles(v) + expr_cycles(target)
        fn = None if op == "=" else BINARY[op[:-1]]
        match target:
            case m.Name(id=n) if n in scope:

                def set_local(fr):
                    fr.ctx.now += cost
                    value = vf(fr)
                    if fn is not None:
                        value = fn(fr.l[n], value)
                    fr.l[n] = convert(value, fr.lt.get(n))
                    return None

                return set_local
            case m.Name(id=n):

                def set_global(fr):
                    fr.ctx.now += cost
                    g = fr.ctx.g
                    value = vf(fr)
                    if fn is not None:
                        value = fn(g[n], value)
                    g[n] = convert(value, fr.ctx.gt.get(n))
                    return None

                return set_global
            case m.Index(obj=obj, indices=idx):
                of = self.expr(obj, scope)
                ifs = [self.expr(i, scope) for i in idx]

                def set_element(fr):
                    fr.ctx.now += cost
                    base = of(fr)
                    index = tuple(f(fr) for f in ifs)
                    array, flat = _element(base, index, self)
                    value = vf(fr)
                    if fn is not None:
                        value = fn(array.data[flat], value)
                    array.data[flat] = value
                    return None

                return set_element
            case m.Deref(ptr=p):
                pf = self.expr(p, scope)

                def set_pointee(fr):
                    fr.ctx.now += cost
                    ptr = pf(fr)
                    if not (type(ptr) is Pointer and ptr.element):
                        raise self.error("assignment through .* needs a pointer to one element")
                    array, flat = _element(ptr, (0,), self)
                    value = vf(fr)
                    if fn is not None:
                        value = fn(array.data[flat], value)
                    array.data[flat] = value
                    return None

                return set_pointee
        raise self.error(f"cannot assign to {target}")

    # ----------------------------------------------------------------- module
    def module(self, f: m.CslFile) -> list[tuple[str, object]]:
        """Module-scope actions in order: ("param"|"var"|"fn"|"comptime", payload)."""
        actions: list[tuple[str, object]] = []
        empty: frozenset[str] = frozenset()
        for d in f.decls:
            match d:
                case m.Param(name=n, type=t, default=default):
                    tf = self.type_fn(t, empty)
                    df = self.expr(default, empty) if default is not None else None
                    if default is None:
                        self.unset.add(n)
                    actions.append(("param", (n, tf, df)))
                case m.VarDecl(name=n, type=t, value=v, const=const):
                    tf = self.type_fn(t, empty) if t is not None else None
                    vf = self.expr(v, empty) if v is not None else None
                    actions.append(("var", (n, tf, vf, const)))
                case m.FnDecl(name=n, params=params, ret=ret, body=body):
                    actions.append(("fn", self._function(n, params, ret, body, False)))
                case m.TaskDecl(name=n, params=params, body=body):
                    void = m.Named("void")
                    actions.append(("fn", self._function(n, params, void, body, True)))
                case m.Comptime(body=body) | m.Layout(body=body):
                    actions.append(("comptime", self.block(body, empty)))
        return actions

    def _function(self, n, params, ret, body, is_task) -> Callable[[Frame], FnValue]:
        empty: frozenset[str] = frozenset()
        ptfs = [(p, self.type_fn(t, empty)) for p, t in params]
        rtf = self.type_fn(ret, empty)
        bf = self.block(body, frozenset(p for p, _ in params))
        file = self.file

        def make(fr):
            home = fr.ctx if type(fr.ctx) is ModuleScope else None
            return FnValue(
                n, tuple((p, tf(fr)) for p, tf in ptfs), rtf(fr), bf, is_task, file, home
            )

        return make


def run_module(actions: list[tuple[str, object]], ctx: Any, params: dict[str, object]) -> None:
    """Evaluate module scope on a context: params, globals, functions, comptime blocks."""
    fr = Frame(ctx)
    for kind, payload in actions:
        if kind == "param":
            n, tf, df = payload
            declared = tf(fr)
            if n in params:
                value = params[n]
            elif df is not None:
                value = df(fr)
            else:
                continue  # cslc evaluates lazily: a param nobody reads may stay unset
            dtype = declared.dtype if isinstance(declared, CslType) else None
            ctx.g[n] = convert(value, dtype) if not isinstance(value, np.ndarray) else value
            ctx.gt[n] = dtype
        elif kind == "var" and type(ctx.g) is LazyGlobals:
            ctx.g.later[payload[0]] = functools.partial(_declare, fr, payload)
        elif kind == "var":
            _declare(fr, payload)
        elif kind == "fn":
            value = payload(fr)
            ctx.g[value.name] = value
            ctx.declared(value.name, value, True)
        else:
            payload(fr)


def _declare(fr: Frame, payload: tuple) -> object:
    """A module-scope ``var`` / ``const``: evaluated, given its type, counted in memory."""
    n, tf, vf, const = payload
    ctx = fr.ctx
    declared = tf(fr) if tf is not None else None
    dtype = declared.dtype if isinstance(declared, CslType) else None
    value = _default(declared, n) if vf is None else convert(vf(fr), dtype)
    if isinstance(value, Array) and value.name.startswith("<"):
        value.name = n
    ctx.g[n] = value
    ctx.gt[n] = dtype
    ctx.declared(n, value, const)
    return value


class LazyGlobals(dict):
    """An imported module's globals: a ``var`` / ``const`` is evaluated (and takes memory) when
    first read, as cslc analyses only the declarations a program reaches."""

    def __init__(self) -> None:
        super().__init__()
        self.later: dict[str, Callable[[], object]] = {}

    def __missing__(self, name: str) -> object:
        if name not in self.later:
            raise KeyError(name)
        return self.later.pop(name)()

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name) or name in self.later


class ModuleScope:
    """One ``@import_module`` of a program file on the PE (or the layout) importing it: its own
    globals (and params); time, builtins, tasks and memory are the importer's. Its functions
    run here."""

    __slots__ = ("file", "g", "gt", "pe")

    def __init__(self, pe: Any, file: str) -> None:
        object.__setattr__(self, "pe", pe)
        object.__setattr__(self, "file", file)
        object.__setattr__(self, "g", LazyGlobals())
        object.__setattr__(self, "gt", {})

    def __getattr__(self, name: str) -> object:
        return getattr(self.pe, name)

    def __setattr__(self, name: str, value: object) -> None:
        setattr(self.pe, name, value)  # now, at, current: the PE's

    def builtin(self, name: str, args: tuple) -> object:
        if name == "import_module":  # a path relative to this module's file
            return self.pe.import_module(args[0], args[1] if len(args) > 1 else None, self.file)
        return self.pe.builtin(name, args)

    def declared(self, name: str, value: object, const: bool) -> None:
        self.pe.module_declared(self.file, name, value, const)


class UserModule:
    """The value of ``@import_module("file.csl", ...)``: its globals, by name."""

    __slots__ = ("scope",)

    def __init__(self, scope: ModuleScope) -> None:
        self.scope = scope

    def csl_member(self, name: str) -> object:
        if name not in self.scope.g:
            raise FabricError(f"module '{self.scope.file}' has no member '{name}'", self.scope.file)
        return self.scope.g[name]


# -------------------------------------------------------------------------- value helpers


@dataclass(frozen=True)
class RangeValue:
    start: int
    stop: int
    step: int
    dtype: np.dtype | None


def _default(declared: object, name: str) -> object:
    if isinstance(declared, ArrayType):
        return _zeros(declared, name)
    if isinstance(declared, CslType) and declared.dtype is not None:
        return declared.dtype.type(0)
    return None


COMPTIME_ELEMENTS = frozenset(
    "color local_task_id data_task_id control_task_id input_queue output_queue direction".split()
)


def _zeros(t: ArrayType, name: str = "<array>") -> Array:
    """An array's storage: numbers in PE memory, or (colors, task IDs, queues) comptime values
    that take none."""
    dtype = t.elem.dtype if isinstance(t.elem, CslType) else None
    n = int(np.prod(t.dims, dtype=np.int64))
    if dtype is None:
        if not (isinstance(t.elem, CslType) and t.elem.name in COMPTIME_ELEMENTS):
            raise FabricError(f"array of {getattr(t.elem, 'name', t.elem)} is not supported")
        return Array(name, np.full(n, None, dtype=object), t.dims)
    return Array(name, np.zeros(n, dtype=dtype), t.dims)


def _field(obj: object, name: str, comp: Compiler) -> object:
    if isinstance(obj, Struct):
        if name in obj.fields:
            return obj.fields[name]
        raise comp.error(f"struct has no field '{name}'")
    lookup = getattr(obj, "csl_member", None)
    if lookup is None:
        raise comp.error(f"{type(obj).__name__} has no member '{name}'")
    return lookup(name)


def _element(base: object, index: tuple, comp: Compiler) -> tuple[Array, int]:
    if isinstance(base, Pointer):
        if len(index) != 1:
            raise comp.error("a many-pointer takes one index")
        return base.array, base.offset + int(index[0])
    if isinstance(base, Array):
        if len(index) != len(base.dims) and len(index) != 1:
            raise comp.error(f"'{base.name}' has {len(base.dims)} dimension(s)")
        flat = base.flat_index(tuple(int(i) for i in index))
        return base, flat
    raise comp.error(f"cannot index {type(base).__name__}")


def _load(base: object, index: tuple, comp: Compiler) -> object:
    array, flat = _element(base, index, comp)
    if not 0 <= flat < array.data.shape[0]:
        raise comp.error(f"index {flat} is outside '{array.name}' ({array.data.shape[0]} elements)")
    return array.data[flat]


# ----------------------------------------------------------------------- pure builtins


def _b_range(comp, t, *bounds):
    dtype = t.dtype if isinstance(t, CslType) else None
    ints = [int(b) for b in bounds]
    if len(ints) == 1:
        return RangeValue(0, ints[0], 1, dtype)
    if len(ints) == 2:
        return RangeValue(ints[0], ints[1], 1, dtype)
    if len(ints) == 3 and ints[2] != 0:
        return RangeValue(ints[0], ints[1], ints[2], dtype)
    raise comp.error("@range(T, end) or @range(T, start, end, step)")


def _b_as(comp, t, v):
    if isinstance(t, CslType) and t.dtype is not None:
        return convert(v, t.dtype)
    raise comp.error(f"@as to {t!r} is not supported")


def _b_bitcast(comp, t, v):
    if not (isinstance(t, CslType) and t.dtype is not None) or not isinstance(v, np.generic):
        raise comp.error("@bitcast(T, v) takes a type and a value of a sized type")
    if v.dtype.itemsize != t.dtype.itemsize:
        raise comp.error(f"@bitcast from {v.dtype} to {t.dtype} changes the size")
    return np.asarray(v).view(t.dtype)[()]


def _b_zeros(comp, t):
    if not isinstance(t, ArrayType):
        raise comp.error("@zeros takes an array type")
    return _zeros(t)


def _b_constants(comp, t, v):
    a = _b_zeros(comp, t)
    a.data[:] = v
    return a


def _b_get_dsd(comp, kind, cfg):
    if not isinstance(kind, DsdKind) or not isinstance(cfg, Struct):
        raise comp.error("@get_dsd(kind, .{ ... })")
    f = cfg.fields
    if kind.name in ("mem1d_dsd", "mem4d_dsd"):
        if "tensor_access" in f:
            dsd = f["tensor_access"]
            if kind.name == "mem1d_dsd" and len(dsd.shape) != 1:
                raise comp.error("mem1d_dsd takes a one-variable tensor_access")
            if kind.name == "mem1d_dsd" and not -128 <= dsd.strides[0] <= 127:
                raise comp.error(f"mem1d_dsd stride {dsd.strides[0]} does not fit in an i8")
            return dsd
        base = f.get("base_address")
        if not isinstance(base, Pointer):
            raise comp.error("a memory DSD needs .base_address or .tensor_access")
        stride = int(f.get("stride", 1))
        return MemDsd(
            base.array, base.offset + int(f.get("offset", 0)), (int(f["extent"]),), (stride,)
        )
    color = f.get("fabric_color")
    if not isinstance(color, Color):
        raise comp.error("a fabric DSD needs .fabric_color")
    io = "in" if kind.name == "fabin_dsd" else "out"
    queue = f.get("input_queue" if io == "in" else "output_queue")
    return FabDsd(io, color, int(f.get("extent", 1)), queue, bool(f.get("control", False)))


def _b_increment(comp, dsd, n, t=None):
    if isinstance(dsd, MemDsd):
        return MemDsd(dsd.array, dsd.offset + int(n), dsd.shape, dsd.strides)
    raise comp.error("@increment_dsd_offset takes a memory DSD")


def _b_set_base(comp, dsd, ptr):
    if isinstance(dsd, MemDsd) and isinstance(ptr, Pointer):
        return MemDsd(ptr.array, ptr.offset, dsd.shape, dsd.strides)
    raise comp.error("@set_dsd_base_addr(memory DSD, pointer)")


def _b_set_length(comp, dsd, n):
    if isinstance(dsd, MemDsd) and len(dsd.shape) == 1:
        return MemDsd(dsd.array, dsd.offset, (int(n),), dsd.strides)
    if isinstance(dsd, FabDsd):
        return FabDsd(dsd.kind, dsd.color, int(n), dsd.queue, dsd.control)
    raise comp.error("@set_dsd_length takes a 1-D memory or a fabric DSD")


def _b_set_stride(comp, dsd, s):
    if isinstance(dsd, MemDsd) and len(dsd.shape) == 1:
        return MemDsd(dsd.array, dsd.offset, dsd.shape, (int(s),))
    raise comp.error("@set_dsd_stride takes a 1-D memory DSD")


def _b_concat(comp, a, b):
    return Struct({**a.fields, **b.fields})


def _b_assert(comp, cond, *_msg):
    if not bool(cond):
        raise comp.error("@assert failed")


def _b_comptime_assert(comp, cond, *_msg):
    if not bool(cond):
        raise comp.error("@comptime_assert failed")


def _b_ptrcast(comp, t, p):
    if type(p) is Pointer and isinstance(t, PtrType):  # ``*T`` points at one element
        return Pointer(p.array, p.offset, not t.many and not isinstance(t.elem, ArrayType))
    return p


NUMERIC_NAMES = {np.dtype(t): n for n, t in NUMERIC.items()}
TYPE_NAMES = {"local": "local_task_id", "data": "data_task_id", "control": "control_task_id"}


def _b_type_of(comp, v):
    """The type of a value, as far as the comptime questions of the examples need it."""
    if type(v) is Struct:
        name = "void" if not v.fields and not v.items else "comptime_struct"
    elif isinstance(v, np.generic):
        name = NUMERIC_NAMES.get(v.dtype)
    elif isinstance(v, bool):
        name = "bool"
    else:
        name = {
            Color: "color",
            Direction: "direction",
            int: "comptime_int",
            float: "comptime_float",
            str: "comptime_string",
        }.get(type(v))
        if type(v) is TaskId:
            name = TYPE_NAMES[v.kind]
        elif type(v) is Queue:
            name = "input_queue" if v.io == "in" else "output_queue"
    if name is None:
        raise comp.error(f"@type_of: the simulator has no type for {type(v).__name__}")
    return PREDECLARED[name]


PURE_BUILTINS: dict[str, Callable[..., object]] = {
    "type_of": _b_type_of,
    "is_same_type": lambda comp, a, b: a == b,
    "get_color": lambda comp, n: Color(int(n)),
    "get_local_task_id": lambda comp, n: TaskId("local", int(n)),
    "get_control_task_id": lambda comp, n: TaskId("control", int(n)),
    "get_data_task_id": lambda comp, c: TaskId("data", c.id),
    "get_input_queue": lambda comp, n: Queue("in", int(n)),
    "get_output_queue": lambda comp, n: Queue("out", int(n)),
    "get_ut_id": lambda comp, n: int(n),
    "get_int": lambda comp, c: c.id,
    "range": _b_range,
    "as": _b_as,
    "bitcast": _b_bitcast,
    "zeros": _b_zeros,
    "constants": _b_constants,
    "get_dsd": _b_get_dsd,
    "increment_dsd_offset": _b_increment,
    "set_dsd_base_addr": _b_set_base,
    "set_dsd_length": _b_set_length,
    "set_dsd_stride": _b_set_stride,
    "concat_structs": _b_concat,
    "assert": _b_assert,
    "comptime_assert": _b_comptime_assert,
    "ptrcast": _b_ptrcast,
}
