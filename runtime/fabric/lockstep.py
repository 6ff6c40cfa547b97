"""Lockstep (SIMT) execution of the head of a launched function on many PEs at once.

Interpreting a PE program once per PE dominated large simulations (the XS lookup on 72,000 PEs
ran some 3e8 loop iterations in Python). PEs that run the same file start a launched function
with the same code; its *head*, the statements before the first one that touches anything
but the PE itself (a collective, a fabric or asynchronous DSD operation, a task activation, an
unblock), is run here for all of them together as NumPy lanes: a scalar is a vector with one
value per PE, ``if``/``for``/``while`` run each branch or iteration on the lanes that take it
(lane-varying conditions and trip counts), user functions are inlined on their callers' lanes,
array reads and writes are gathers and scatters into the per-file stores that hold every PE's
copy of an array as one row, and synchronous memory DSD operations run on all lanes' operands.
Each lane is charged exactly the cycles the per-PE evaluator charges for the same statements
(kernelc/csl/charges.py and the DSD timing of dsd.py), at its own launch time.

Why running the head early is sound: a head reads and writes only its own PE's memory, locals
and clock. When a launch begins every earlier event has been drained, so no operation of a PE
is pending; before a PE's own launch event nothing can write its memory (a wavelet sent to it
waits in a queue, a collective needs its own call), and nothing reads what its head writes.
The one thing that could run on a PE before its launch event, a task woken by a wavelet from a
PE launched earlier, is detected when the launch event comes (``PE.runs`` moved), and is an
error naming ``KERNELC_FABRIC_LOCKSTEP=0``, never a silent difference. The rest of the body
runs per PE at its launch event, from the locals the lanes hand over.

A statement the lanes cannot run ends the head: ``break``/``continue``, local arrays, untyped
scalar locals, fabric or asynchronous DSD operations, library calls other than the lane-local
ones below. A head with no loop and no DSD operation runs per PE (lanes gain nothing on
straight-line code). ``KERNELC_FABRIC_LOCKSTEP=0`` runs every PE on its own, ``=all`` runs
every head the lanes can, even of a program on one PE (the differential tests compare the two).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from kernelc.csl import machine
from kernelc.csl import model as m
from kernelc.csl.charges import (
    ITERATION_CYCLES,
    STATEMENT_CYCLES,
    WHILE_TEST_CYCLES,
    expr_cycles,
    walk,
)
from kernelc.runtime.fabric import libraries as lib
from kernelc.runtime.fabric.evaluate import (
    BINARY,
    LOOP_LIMIT,
    PREDECLARED,
    Compiler,
    Frame,
    block_closures,
)
from kernelc.runtime.fabric.values import (
    FLOAT_DSD_OPS,
    Array,
    CslType,
    FabricError,
    MemDsd,
    convert,
)

if TYPE_CHECKING:
    from kernelc.runtime.fabric.pe import PE

ENV = "KERNELC_FABRIC_LOCKSTEP"  # "0": every PE on its own; "all": lanes wherever they can run
MIN_LANES = 2  # fewer PEs of one file gain nothing from lanes (unless ENV is "all")
DSD_OPS = {  # synchronous memory DSD operations the lanes run: element type and function
    name: (np.float32 if kind == "f32" else np.float16, fn)
    for name, (kind, _, fn) in FLOAT_DSD_OPS.items()
}
# library members whose whole effect is on the calling PE (run per lane, at its own time)
LANE_LOCAL = {
    lib.Collectives2D: frozenset({"init"}),
    lib.LayoutModule: frozenset({"get_x_coord", "get_y_coord"}),
}
UNARY = {  # per operator: on a Python scalar (a literal), on lane values
    "-": (lambda v: -v, np.negative),
    "!": (lambda v: not v, np.logical_not),
    "~": (lambda v: ~v, np.invert),
}


def enabled() -> bool:
    return os.environ.get(ENV, "1") != "0"


def everywhere() -> bool:
    """Lanes for every head they can run, one PE's or straight-line ones too (the tests)."""
    return os.environ.get(ENV) == "all"


def min_lanes() -> int:
    return 1 if everywhere() else MIN_LANES


class Unsupported(Exception):
    """A construct the lanes do not run: the head ends before its statement."""


@dataclass(frozen=True)
class LaneDsd:
    """A memory DSD on every lane: one array name, one shape, a per-lane offset."""

    name: str
    offsets: np.ndarray  # per lane (full length)
    shape: tuple[int, ...]
    strides: tuple[int, ...]

    def moved(self, idx: np.ndarray, by: np.ndarray) -> LaneDsd:
        """The DSD with the offsets of lanes ``idx`` moved by ``by``; other lanes' kept."""
        offsets = self.offsets.copy()
        offsets[idx] += by
        return LaneDsd(self.name, offsets, self.shape, self.strides)

    def same_kind(self, other: LaneDsd) -> bool:
        return (self.name, self.shape, self.strides) == (other.name, other.shape, other.strides)


class Lanes:
    """The state of one lockstep run: its PEs, their clocks, locals and array stores."""

    def __init__(self, pes: list[PE], stores: Stores, now: np.ndarray) -> None:
        self.pes = pes
        self.count = len(pes)
        self.stores = stores
        self.rows = stores.rows(pes)
        self.now = now
        self.dsd_free = np.array([pe.dsd_free for pe in pes], dtype=np.int64)
        self.scalars: dict[str, np.ndarray] = {}  # module-scope scalars read or written
        self.written: set[str] = set()

    def scalar(self, name: str) -> np.ndarray:
        values = self.scalars.get(name)
        if values is None:
            values = np.array([pe.g[name] for pe in self.pes])
            self.scalars[name] = values
        return values

    def hand_back(self) -> None:
        for i, pe in enumerate(self.pes):
            pe.dsd_free = int(self.dsd_free[i])
            for name in self.written:
                pe.g[name] = self.scalars[name][i]


class Stores:
    """Every PE's copy of each array of one file as a row of one NumPy array; each PE's
    ``Array.data`` is a view of its row, so that lanes gather and scatter without copying."""

    def __init__(self, pes: list[PE]) -> None:
        self.row = {(pe.x, pe.y): i for i, pe in enumerate(pes)}
        self.arrays: dict[str, np.ndarray] = {}

    def rows(self, pes: list[PE]) -> np.ndarray:
        return np.array([self.row[pe.x, pe.y] for pe in pes], dtype=np.int64)

    def store(self, name: str, pes: list[PE], every: list[PE]) -> np.ndarray:
        """The store of global array ``name``, made on first use from every PE's array."""
        got = self.arrays.get(name)
        if got is not None:
            return got
        first = every[0].g.get(name)
        if not isinstance(first, Array) or first.data.dtype == object:
            raise Unsupported(f"'{name}' is not a numeric array")
        shape, dtype = first.data.shape, first.data.dtype
        arrays = [pe.g.get(name) for pe in every]
        if not all(
            isinstance(a, Array) and a.data.shape == shape and a.data.dtype == dtype for a in arrays
        ):
            raise Unsupported(f"'{name}' differs between PEs")
        if len({id(a) for a in arrays}) != len(arrays):
            raise Unsupported(f"'{name}' is shared between PEs")
        store = np.empty((len(every), *shape), dtype=dtype)
        for i, a in enumerate(arrays):
            store[i] = a.data
            a.data = store[i]
        self.arrays[name] = store
        return store


Value = Any  # a Python scalar (the same on every lane) or an array, one value per lane
Expr = Callable[[Lanes, "Scope", np.ndarray], Value]
Stmt = Callable[[Lanes, "Scope", np.ndarray], np.ndarray]  # -> the lanes that go on


class Scope:
    """One activation's locals: per name a full-length lane array (or a LaneDsd)."""

    __slots__ = ("l", "ret", "returned", "types")

    def __init__(self) -> None:
        self.l: dict[str, Any] = {}
        self.types: dict[str, np.dtype] = {}
        self.ret: np.ndarray | None = None  # the return values, per lane
        self.returned: np.ndarray | None = None  # per lane: has it returned


def _lane_array(value: Value, idx: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=dtype), idx.shape)


class Builder:
    """Compiles a head's statements into lane closures against a sample PE's globals."""

    def __init__(self, file: m.CslFile, pes: list[PE], stores: Stores) -> None:
        self.file = file
        self.fns = {d.name: d for d in file.decls if isinstance(d, m.FnDecl)}
        self.pes = pes
        self.sample = pes[0]
        self.stores = stores
        self.depth = 0

    def error(self, message: str) -> FabricError:
        return FabricError(message, self.file.name)

    # ---------------------------------------------------------------- globals
    def _global(self, name: str) -> object:
        g = self.sample.g
        if name in g:
            return g[name]
        if name in PREDECLARED:
            return PREDECLARED[name]
        raise Unsupported(f"unknown name '{name}'")

    def dtype_of(self, t: m.Type | None) -> np.dtype:
        if isinstance(t, m.Named) and isinstance(PREDECLARED.get(t.name), CslType):
            dtype = PREDECLARED[t.name].dtype
            if dtype is not None:
                return dtype
        raise Unsupported("a type the lanes do not hold")

    # ----------------------------------------------------------- expressions
    def expr(self, e: m.Expr, scope: frozenset[str]) -> Expr:
        match e:
            case m.Int(value=v) | m.Float(value=v) | m.Bool(value=v):
                return lambda st, sc, idx: v
            case m.Name(id=n) if n in scope:
                return lambda st, sc, idx: _read_local(sc, n, idx)
            case m.Name(id=n):
                return self._global_value(n)
            case m.Index(obj=m.Name(id=n), indices=indices) if n not in scope:
                return self._load(n, indices, scope)
            case m.Unary(op=op, operand=a) if op in UNARY:
                af, fn = self.expr(a, scope), UNARY[op]
                return lambda st, sc, idx: _unary(fn, af(st, sc, idx))
            case m.Binary(op="and" | "or", lhs=a, rhs=b):
                return self._logic(e.op == "and", self.expr(a, scope), self.expr(b, scope))
            case m.Binary(op=op, lhs=a, rhs=b) if op in BINARY:
                af, bf, fn = self.expr(a, scope), self.expr(b, scope), BINARY[op]
                return lambda st, sc, idx: fn(af(st, sc, idx), bf(st, sc, idx))
            case m.IfExpr(cond=c, then=a, orelse=b) if b is not None:
                return self._choose(self.expr(c, scope), self.expr(a, scope), self.expr(b, scope))
            case m.Builtin(name="as", args=(t, v)):
                dtype, vf = self.dtype_of(_type_of(t)), self.expr(v, scope)
                return lambda st, sc, idx: convert(vf(st, sc, idx), dtype)
            case m.Builtin(name="increment_dsd_offset", args=(d, n, *_)):
                df, nf = self.expr(d, scope), self.expr(n, scope)

                def increment(st, sc, idx):
                    dsd = df(st, sc, idx)
                    if not isinstance(dsd, LaneDsd):
                        raise self.error("@increment_dsd_offset takes a memory DSD")
                    by = np.asarray(nf(st, sc, idx)).astype(np.int64)
                    return dsd.moved(idx, by)

                return increment
            case m.Call(fn=m.Name(id=n), args=args) if n in self.fns and n not in scope:
                return self._inline(self.fns[n], [self.expr(a, scope) for a in args])
            case m.Call(fn=m.Field(obj=m.Name(id=mod), name=member), args=args) if mod not in scope:
                return self._library(mod, member, [self.expr(a, scope) for a in args])
            case m.Field(obj=m.Builtin(name="get_rectangle", args=()), name=side):
                sim = self.pes[0].sim  # one rectangle for every PE
                sides = {"width": sim.width, "height": sim.height}
                if side not in sides:
                    raise Unsupported(f"@get_rectangle().{side}")
                value = sides[side]
                return lambda st, sc, idx: value
        raise Unsupported(type(e).__name__)

    def _global_value(self, n: str) -> Expr:
        value = self._global(n)
        if isinstance(value, np.generic):

            def scalar(st, sc, idx):
                return st.scalar(n)[idx]

            return scalar
        if isinstance(value, int | float | bool) and not isinstance(value, np.generic):
            if any(pe.g.get(n) != value for pe in self.pes):
                raise Unsupported(f"comptime '{n}' differs between PEs")
            return lambda st, sc, idx: value
        if isinstance(value, MemDsd):
            return self._dsd(n, value)
        raise Unsupported(f"global '{n}' ({type(value).__name__})")

    def _dsd(self, n: str, sample: MemDsd) -> Expr:
        dsds = [pe.g.get(n) for pe in self.pes]
        name = next((k for k, v in self.sample.g.items() if v is sample.array), None)
        if name is None:
            raise Unsupported(f"DSD '{n}' over an array with no global name")
        for pe, d in zip(self.pes, dsds, strict=True):
            if not (
                isinstance(d, MemDsd)
                and d.array is pe.g.get(name)
                and d.shape == sample.shape
                and d.strides == sample.strides
            ):
                raise Unsupported(f"DSD '{n}' differs between PEs")
        self.stores.store(name, self.pes, self.pes)
        offsets = np.array([d.offset for d in dsds], dtype=np.int64)
        dsd = LaneDsd(name, offsets, sample.shape, sample.strides)
        return lambda st, sc, idx: dsd

    def _load(self, n: str, indices: tuple[m.Expr, ...], scope: frozenset[str]) -> Expr:
        store, dims = self._array(n)
        flat = self._flat(dims, [self.expr(i, scope) for i in indices], n)
        size = store.shape[1]

        def load(st, sc, idx):
            at = flat(st, sc, idx)
            _check_bounds(at, size, n, self)
            return store[st.rows[idx], at]

        return load

    def _array(self, n: str) -> tuple[np.ndarray, tuple[int, ...]]:
        value = self._global(n)
        if not isinstance(value, Array):
            raise Unsupported(f"'{n}' is not an array")
        return self.stores.store(n, self.pes, self.pes), value.dims

    def _flat(self, dims: tuple[int, ...], fs: list[Expr], n: str) -> Expr:
        if len(fs) == 1:
            f0 = fs[0]
            return lambda st, sc, idx: np.asarray(f0(st, sc, idx)).astype(np.int64)
        if len(fs) != len(dims):
            raise self.error(f"'{n}' has {len(dims)} dimension(s)")

        def flat(st, sc, idx):
            at = np.zeros(idx.shape, dtype=np.int64)
            for f, d in zip(fs, dims, strict=True):
                at = at * d + np.asarray(f(st, sc, idx)).astype(np.int64)
            return at

        return flat

    def _logic(self, is_and: bool, af: Expr, bf: Expr) -> Expr:
        def logic(st, sc, idx):
            x = np.broadcast_to(np.asarray(af(st, sc, idx), dtype=bool), idx.shape)
            rest = x if is_and else ~x  # the lanes that evaluate the right side
            out = x.copy()
            if rest.any():
                out[rest] = np.asarray(bf(st, sc, idx[rest]), dtype=bool)
            return out

        return logic

    def _choose(self, cf: Expr, af: Expr, bf: Expr) -> Expr:
        def choose(st, sc, idx):
            c = np.broadcast_to(np.asarray(cf(st, sc, idx), dtype=bool), idx.shape)
            parts = []
            if c.any():
                parts.append((c, af(st, sc, idx[c])))
            if not c.all():
                parts.append((~c, bf(st, sc, idx[~c])))
            typed = [np.asarray(v).dtype for _, v in parts if not _is_python(v)]
            dtype = typed[0] if typed else np.asarray(parts[0][1]).dtype
            out = np.empty(idx.shape, dtype=dtype)
            for where, v in parts:
                out[where] = v
            return out

        return choose

    def _inline(self, fn: m.FnDecl, afs: list[Expr]) -> Expr:
        if self.depth > 8:
            raise Unsupported("deeply nested calls")
        self.depth += 1
        try:
            ptypes = [(p, self.dtype_of(t)) for p, t in fn.params]
            body = self.block(fn.body, frozenset(p for p, _ in fn.params))
        finally:
            self.depth -= 1
        void = isinstance(fn.ret, m.Named) and fn.ret.name == "void"
        rtype = None if void else self.dtype_of(fn.ret)

        def call(st, sc, idx):
            inner = Scope()
            for (p, dtype), f in zip(ptypes, afs, strict=True):
                values = np.zeros(st.count, dtype=dtype)
                values[idx] = convert(f(st, sc, idx), dtype)
                inner.l[p], inner.types[p] = values, dtype
            if rtype is not None:
                inner.ret = np.zeros(st.count, dtype=rtype)
            body(st, inner, idx)
            return None if inner.ret is None else inner.ret[idx]

        return call

    def _library(self, mod: str, member: str, afs: list[Expr]) -> Expr:
        module = self._global(mod)
        allowed = LANE_LOCAL.get(type(module), frozenset())
        if member not in allowed or not all(type(pe.g.get(mod)) is type(module) for pe in self.pes):
            raise Unsupported(f"{mod}.{member}")

        def per_lane(st, sc, idx):
            args = [np.broadcast_to(np.asarray(f(st, sc, idx)), idx.shape) for f in afs]
            results = []
            for k, lane in enumerate(idx):
                pe = st.pes[lane]
                saved, pe.now = pe.now, int(st.now[lane])
                target = pe.g[mod].csl_member(member)
                value = target(*(a[k] for a in args)) if callable(target) else target
                st.now[lane], pe.now = pe.now, saved
                results.append(value)
            if all(r is None for r in results):
                return None
            return np.array(results)

        return per_lane

    # ------------------------------------------------------------ statements
    def block(self, stmts: tuple[m.Stmt, ...], scope: frozenset[str]) -> Stmt:
        closures = block_closures(stmts, scope, self.stmt)

        def run(st, sc, idx):
            for c in closures:
                if not idx.size:
                    break
                idx = c(st, sc, idx)
            return idx

        return run

    def stmt(self, s: m.Stmt, scope: frozenset[str]) -> Stmt:
        match s:
            case m.VarDecl(name=n, type=t, value=v) if v is not None:
                return self._declare(n, t, v, scope)
            case m.Assign(target=target, op=op, value=v):
                return self._assign(target, op, v, scope)
            case m.ExprStmt(expr=m.Builtin(name=n, args=args)) if n in DSD_OPS:
                return self._dsd_op(n, args, scope, s)
            case m.ExprStmt(expr=e):
                ef, cost = self.expr(e, scope), STATEMENT_CYCLES + expr_cycles(e)

                def run_expr(st, sc, idx):
                    st.now[idx] += cost
                    ef(st, sc, idx)
                    return idx

                return run_expr
            case m.If(cond=c, then=then, orelse=orelse):
                return self._if(c, then, orelse, scope)
            case m.For(iter=m.Builtin(name="range", args=(t, *bounds)), var=v, body=body) if (
                s.index is None and 1 <= len(bounds) <= 3
            ):
                return self._for(t, bounds, v, body, scope)
            case m.While(cond=c, step=step, body=body):
                return self._while(c, step, body, scope)
            case m.Return(value=v):
                return self._return(v, scope)
        raise Unsupported(type(s).__name__)

    def _declare(self, n: str, t: m.Type | None, v: m.Expr, scope: frozenset[str]) -> Stmt:
        vf, cost = self.expr(v, scope), STATEMENT_CYCLES + expr_cycles(v)
        if t is None and isinstance(v, m.Builtin) and v.name == "as":
            t = _type_of(v.args[0])  # ``const x = @as(T, e)`` holds a T
        if t is None:
            if not (isinstance(v, m.Builtin) and v.name == "increment_dsd_offset"):
                raise Unsupported("an untyped local")

            def declare_dsd(st, sc, idx):
                st.now[idx] += cost
                dsd, old = vf(st, sc, idx), sc.l.get(n)
                if isinstance(old, LaneDsd) and old.same_kind(dsd):
                    dsd = old.moved(idx, dsd.offsets[idx] - old.offsets[idx])  # others keep theirs
                sc.l[n] = dsd
                return idx

            return declare_dsd
        dtype = self.dtype_of(t)

        def declare(st, sc, idx):
            st.now[idx] += cost
            values = sc.l.get(n)
            if values is None or sc.types.get(n) != dtype:
                values = np.zeros(st.count, dtype=dtype)
                sc.l[n], sc.types[n] = values, dtype
            values[idx] = convert(vf(st, sc, idx), dtype)
            return idx

        return declare

    def _assign(self, target: m.Expr, op: str, v: m.Expr, scope: frozenset[str]) -> Stmt:
        vf = self.expr(v, scope)
        cost = STATEMENT_CYCLES + expr_cycles(v) + expr_cycles(target)
        fn = None if op == "=" else BINARY[op[:-1]]
        match target:
            case m.Name(id=n) if n in scope:

                def set_local(st, sc, idx):
                    st.now[idx] += cost
                    value = vf(st, sc, idx)
                    values = sc.l[n]
                    if fn is not None:
                        value = fn(values[idx], value)
                    values[idx] = convert(value, sc.types[n])
                    return idx

                return set_local
            case m.Name(id=n) if isinstance(self._global(n), np.generic):
                dtype = self._global(n).dtype

                def set_global(st, sc, idx):
                    st.now[idx] += cost
                    values = st.scalar(n)
                    value = vf(st, sc, idx)
                    if fn is not None:
                        value = fn(values[idx], value)
                    values[idx] = convert(value, dtype)
                    st.written.add(n)
                    return idx

                return set_global
            case m.Index(obj=m.Name(id=n), indices=indices) if n not in scope:
                store, dims = self._array(n)
                flat = self._flat(dims, [self.expr(i, scope) for i in indices], n)
                size = store.shape[1]

                def set_element(st, sc, idx):
                    st.now[idx] += cost
                    at = flat(st, sc, idx)
                    _check_bounds(at, size, n, self)
                    rows = st.rows[idx]
                    value = vf(st, sc, idx)
                    if fn is not None:
                        value = fn(store[rows, at], value)
                    store[rows, at] = value
                    return idx

                return set_element
        raise Unsupported(f"assignment to {type(target).__name__}")

    def _if(self, c: m.Expr, then: tuple, orelse: tuple, scope: frozenset[str]) -> Stmt:
        cf, cost = self.expr(c, scope), STATEMENT_CYCLES + expr_cycles(c)
        tf = self.block(then, scope)
        ef = self.block(orelse, scope) if orelse else None

        def run_if(st, sc, idx):
            st.now[idx] += cost
            cond = np.broadcast_to(np.asarray(cf(st, sc, idx), dtype=bool), idx.shape)
            taken, other = idx[cond], idx[~cond]
            if taken.size:
                taken = tf(st, sc, taken)
            if ef is not None and other.size:
                other = ef(st, sc, other)
            if not other.size:
                return taken
            if not taken.size:
                return other
            return np.concatenate((taken, other))  # lanes are independent: any order

        return run_if

    def _for(self, t, bounds, v: str, body: tuple, scope: frozenset[str]) -> Stmt:
        dtype = self.dtype_of(_type_of(t))
        bfs = [self.expr(b, scope) for b in bounds]
        bf = self.block(body, scope | {v})

        def run_for(st, sc, idx):
            values = [np.broadcast_to(np.asarray(f(st, sc, idx)), idx.shape) for f in bfs]
            ints = [np.asarray(x).astype(np.int64) for x in values]
            if len(ints) == 1:
                start, stop, step = np.zeros(idx.shape, np.int64), ints[0], 1
            else:
                start, stop = ints[0], ints[1]
                step = ints[2] if len(ints) == 3 else 1
            if np.any(np.asarray(step) == 0):
                raise self.error("@range(T, end) or @range(T, start, end, step)")
            step = np.broadcast_to(np.asarray(step, dtype=np.int64), idx.shape)
            counter = sc.l.get(v)
            if counter is None or sc.types.get(v) != dtype:
                counter = np.zeros(st.count, dtype=dtype)
                sc.l[v], sc.types[v] = counter, dtype
            full_i = np.zeros(st.count, dtype=np.int64)
            full_stop = np.zeros(st.count, dtype=np.int64)
            full_step = np.ones(st.count, dtype=np.int64)
            full_i[idx], full_stop[idx], full_step[idx] = start, stop, step
            live = idx
            while live.size:
                i, s = full_i[live], full_step[live]
                more = np.where(s > 0, i < full_stop[live], i > full_stop[live])
                live = live[more]
                if not live.size:
                    break
                counter[live] = full_i[live].astype(dtype)
                st.now[live] += ITERATION_CYCLES
                live = bf(st, sc, live)
                full_i[live] += full_step[live]
            return _survivors(sc, idx)

        return run_for

    def _while(self, c: m.Expr, step: m.Assign | None, body: tuple, scope: frozenset[str]):
        cf, cost = self.expr(c, scope), WHILE_TEST_CYCLES + expr_cycles(c)
        bf = self.block(body, scope)
        sf = self._assign(step.target, step.op, step.value, scope) if step else None

        def run_while(st, sc, idx):
            live, count = idx, 0
            while live.size:
                st.now[live] += cost
                cond = np.broadcast_to(np.asarray(cf(st, sc, live), dtype=bool), live.shape)
                live = live[cond]
                if not live.size:
                    break
                live = bf(st, sc, live)
                if sf is not None and live.size:
                    live = sf(st, sc, live)
                count += 1
                if count > LOOP_LIMIT:
                    raise self.error(f"a while loop ran {LOOP_LIMIT} iterations")
            return _survivors(sc, idx)

        return run_while

    def _return(self, v: m.Expr | None, scope: frozenset[str]) -> Stmt:
        if self.depth == 0:
            raise Unsupported("return from the launched function")
        if v is None:

            def run_return_void(st, sc, idx):
                _returned(st, sc)[idx] = True
                return idx[:0]

            return run_return_void
        vf, cost = self.expr(v, scope), STATEMENT_CYCLES + expr_cycles(v)

        def run_return(st, sc, idx):
            st.now[idx] += cost
            sc.ret[idx] = convert(vf(st, sc, idx), sc.ret.dtype)
            _returned(st, sc)[idx] = True
            return idx[:0]

        return run_return

    def _dsd_op(self, name: str, args: tuple[m.Expr, ...], scope: frozenset[str], s) -> Stmt:
        if not args or isinstance(args[-1], m.Struct):
            raise Unsupported(f"@{name} with options")
        dtype, fn = DSD_OPS[name]
        afs = [self.expr(a, scope) for a in args]
        cost = STATEMENT_CYCLES + expr_cycles(s.expr)
        stores = self.stores

        def run_op(st, sc, idx):
            st.now[idx] += cost
            operands = [f(st, sc, idx) for f in afs]
            dsds = [o for o in operands if isinstance(o, LaneDsd)]
            if not isinstance(operands[0], LaneDsd):
                raise self.error(f"@{name} needs a memory DSD destination")
            n = int(np.prod(dsds[0].shape))
            if any(int(np.prod(d.shape)) != n for d in dsds):
                raise self.error(f"@{name} operands differ in length")
            rows = st.rows[idx][:, None]
            values = []
            for o in operands[1:]:
                if isinstance(o, LaneDsd):
                    store = stores.arrays[o.name]
                    values.append(store[rows, _dsd_indices(o, idx, store.shape[1], self)])
                else:
                    values.append(np.asarray(o).astype(dtype).reshape(-1, 1))
            result = fn(*values)
            start = np.maximum(st.now[idx], st.dsd_free[idx])
            end = start + machine.DSD_SETUP_CYCLES + n
            st.now[idx] = end
            st.dsd_free[idx] = end
            dst = stores.arrays[operands[0].name]
            at = _dsd_indices(operands[0], idx, dst.shape[1], self)
            dst[rows, at] = np.broadcast_to(result, at.shape)
            return idx

        return run_op


def _returned(st: Lanes, sc: Scope) -> np.ndarray:
    if sc.returned is None:
        sc.returned = np.zeros(st.count, dtype=bool)
    return sc.returned


def _survivors(sc: Scope, idx: np.ndarray) -> np.ndarray:
    """The lanes of ``idx`` that have not returned from the enclosing function."""
    if sc.returned is None:
        return idx
    return idx[~sc.returned[idx]]


def _dsd_indices(d: LaneDsd, idx: np.ndarray, size: int, b: Builder) -> np.ndarray:
    base = MemDsd(None, 0, d.shape, d.strides).indices()  # type: ignore[arg-type]
    at = d.offsets[idx][:, None] + base[None, :]
    if at.size and (at.min() < 0 or at.max() >= size):
        raise b.error(f"DSD over '{d.name}' reaches outside it ({size} elements)")
    return at


def _check_bounds(at: np.ndarray, size: int, name: str, b: Builder) -> None:
    if at.size and (at.min() < 0 or at.max() >= size):
        bad = int(at[(at < 0) | (at >= size)][0])
        raise b.error(f"index {bad} is outside '{name}' ({size} elements)")


def _is_python(v: Value) -> bool:
    return isinstance(v, int | float | bool) and not isinstance(v, np.generic)


def _unary(fns: tuple[Callable, Callable], v: Value) -> Value:
    return fns[0](v) if _is_python(v) else fns[1](v)


def _read_local(sc: Scope, n: str, idx: np.ndarray) -> Value:
    value = sc.l[n]
    return value if isinstance(value, LaneDsd) else value[idx]


def _type_of(t: m.Expr) -> m.Type | None:
    if isinstance(t, m.Name):
        return m.Named(t.id)
    if isinstance(t, m.TypeExpr):
        return t.type
    return None


@dataclass(frozen=True)
class Resume:
    """What a PE's launch event runs after its head ran in lockstep: the rest of the body
    from the head's locals, at the clock the head left it."""

    tail: Callable[[Frame], object] | None
    frame: Frame
    now: int
    runs: int  # ``PE.runs`` when the head ran: a task run since then voids the head


def _split(
    fn: m.FnDecl, builder: Builder
) -> tuple[Stmt | None, frozenset[str], tuple[m.Stmt, ...]]:
    """The head's lane closure (None: no statement runs in lockstep), the names in scope after
    it (the params and its declarations) and the rest of the body."""
    scope = frozenset(p for p, _ in fn.params)
    stmts = [s for s in fn.body if not isinstance(s, m.Comment)]
    closures: list[Stmt] = []
    for k, s in enumerate(stmts):
        try:
            closures.append(builder.stmt(s, scope))
        except Unsupported:
            stmts = stmts[k:]
            break
        if isinstance(s, m.VarDecl):
            scope = scope | {s.name}
    else:
        stmts = []
    head_stmts = [s for s in fn.body if not isinstance(s, m.Comment)][: len(closures)]
    if not closures or (not everywhere() and not _repeats(head_stmts, builder.fns, set())):
        return None, scope, tuple(stmts)

    def head(st, sc, idx):
        for c in closures:
            idx = c(st, sc, idx)
        return idx

    return head, scope, tuple(stmts)


def _repeats(stmts: list[m.Stmt], fns: dict[str, m.FnDecl], seen: set[str]) -> bool:
    """Whether a head repeats work (a loop or a DSD operation, here or in a function it calls):
    straight-line code gains nothing from lanes, and a PE's own run of it is cheaper."""
    for s in stmts:
        match s:
            case m.For() | m.While():
                return True
            case m.ExprStmt(expr=m.Builtin(name=n)) if n in DSD_OPS:
                return True
            case m.If(then=then, orelse=orelse) if _repeats([*then, *orelse], fns, seen):
                return True
        for e in _exprs(s):
            for node in walk(e):
                if isinstance(node, m.Call) and isinstance(node.fn, m.Name):
                    name = node.fn.id
                    if name in fns and name not in seen:
                        seen.add(name)
                        if _repeats(list(fns[name].body), fns, seen):
                            return True
    return False


def _exprs(s: m.Stmt) -> list[m.Expr]:
    match s:
        case m.VarDecl(value=v) | m.ExprStmt(expr=v) | m.Return(value=v) if v is not None:
            return [v]
        case m.Assign(value=v, target=t):
            return [v, t]
        case m.If(cond=c):
            return [c]
    return []


def run_heads(
    files: dict[str, m.CslFile],
    stores: dict[str, Stores],
    pes: list[PE],
    fns: list[Any],
    args: tuple,
    times: list[int],
) -> list[Resume | None]:
    """Run the head of each PE's launched function in lockstep, grouped by file; a PE whose
    head does not run here (None) is launched as before."""
    out: list[Resume | None] = [None] * len(pes)
    groups: dict[tuple[str, str], list[int]] = {}
    for k, (pe, fn) in enumerate(zip(pes, fns, strict=True)):
        if fn.home is None and not fn.is_task and pe.now <= times[k] and pe.file in files:
            groups.setdefault((pe.file, fn.name), []).append(k)
    for (file, name), members in groups.items():
        decl = next(
            (d for d in files[file].decls if isinstance(d, m.FnDecl) and d.name == name), None
        )
        if decl is None or len(members) < min_lanes() or len(decl.params) != len(args):
            continue
        lane_pes = [pes[k] for k in members]
        if file not in stores:
            stores[file] = Stores([pe for pe in pes if pe.file == file])
        builder = Builder(files[file], lane_pes, stores[file])
        try:
            types = [builder.dtype_of(t) for _, t in decl.params]
        except Unsupported:
            continue
        head, scope, rest = _split(decl, builder)
        if head is None:
            continue
        now = np.array([times[k] for k in members], dtype=np.int64)
        st = Lanes(lane_pes, stores[file], now)
        sc = Scope()
        count = len(members)
        for (p, _), dtype, value in zip(decl.params, types, args, strict=True):
            sc.l[p], sc.types[p] = np.full(count, convert(value, dtype), dtype=dtype), dtype
        head(st, sc, np.arange(count, dtype=np.int64))
        st.hand_back()
        tail = Compiler(file).block(rest, scope) if rest else None
        for i, k in enumerate(members):
            pe = pes[k]
            fr = Frame(pe)
            for n in scope:
                values = sc.l[n]
                if isinstance(values, LaneDsd):
                    fr.l[n] = MemDsd(
                        pe.g[values.name], int(values.offsets[i]), values.shape, values.strides
                    )
                    fr.lt[n] = None
                else:
                    fr.l[n], fr.lt[n] = values[i], sc.types[n]
            out[k] = Resume(tail, fr, int(st.now[i]), pe.runs)
    return out
