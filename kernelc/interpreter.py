"""The reference interpreter: executes a task graph on NumPy arrays. It is the semantic oracle.

It runs kernels SIMT-style: a *frame* holds a number of lanes (one per iteration of the parallel
loops entered so far), every local is a scalar or a per-lane array, and a mask says which lanes are
active. Parallel loops with uniform bounds multiply the lanes; sequential loops, data-dependent
trip counts and divergent ``if`` run lane-masked. Every operation follows docs/LANGUAGE.md
(integer wrap-around, C division, clamped gathers, dropped out-of-range scatters, single-rounding
``fma``, the ``search`` probe order and the ``rand`` hash), so other targets can be checked by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from kernelc import ir
from kernelc.graph import Task, TaskGraph
from kernelc.semantics import (
    bits_to_unit_float,
    exp,
    fma,
    inside,
    int_div,
    int_rem,
    load,
    log,
    randbits,
    saturate,
    scalar_if_0d,
    search,
)
from kernelc.types import DType

LANE_LIMIT = 1 << 21  # lanes per frame before a parallel loop is run in chunks

Value = np.ndarray | np.generic


@dataclass
class Frame:
    n: int
    mask: np.ndarray | None
    env: dict[str, Value]


def interpret(graph: TaskGraph, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run every task in order and return the outputs. ``inputs`` must already be validated."""
    arrays: dict[str, np.ndarray] = {}
    for t in graph.tensors:
        if t.role == "input":
            arrays[t.name] = np.asarray(inputs[t.name])
        else:
            arrays[t.name] = np.zeros(t.shape, dtype=t.dtype.numpy)
    scalars = {s.name: inputs[s.name] for s in graph.scalars}
    with np.errstate(all="ignore"):
        for task in graph.tasks:
            run_task(task, arrays, scalars)
    return {t.name: arrays[t.name] for t in graph.outputs}


def run_task(task: Task, arrays: dict[str, np.ndarray], scalars: Mapping[str, Value]) -> None:
    kernel = task.kernel
    views: dict[str, np.ndarray] = {}
    env: dict[str, Value] = {n: np.int32(v) for n, v in task.sizes}
    for param in kernel.all_params:
        b = task.binding(param.name)
        if b.region is not None:
            views[param.name] = arrays[b.region.tensor][b.region.index()]
        elif b.scalar is not None:
            env[param.name] = param.dtype.numpy.type(scalars[b.scalar])
        else:
            env[param.name] = param.dtype.numpy.type(b.constant)
    _Executor(views).block(kernel.body, Frame(1, None, env))


class _Executor:
    def __init__(self, tensors: dict[str, np.ndarray]) -> None:
        self.tensors = tensors

    # ------------------------------------------------------------------------- statements
    def block(self, body: tuple[ir.Stmt, ...], frame: Frame) -> None:
        for stmt in body:
            self.stmt(stmt, frame)

    def stmt(self, s: ir.Stmt, frame: Frame) -> None:
        match s:
            case ir.For():
                self.loop(s, frame)
            case ir.Let():
                frame.env[s.name] = self.expr(s.value, frame)
            case ir.VarDecl():
                frame.env[s.name] = self.expr(s.value, frame)
            case ir.Assign():
                old = frame.env[s.name]
                value = self.expr(s.value, frame)
                if s.op != "=":
                    value = compound(s.op, old, value)
                frame.env[s.name] = _masked(frame, value, old)
            case ir.Store():
                self.store(s, frame)
            case ir.If():
                cond = self.expr(s.cond, frame)
                if np.ndim(cond) == 0:
                    self.block(s.then if bool(cond) else s.orelse, frame)
                    return
                active = cond if frame.mask is None else frame.mask & cond
                inactive = ~cond if frame.mask is None else frame.mask & ~cond
                for branch, mask in ((s.then, active), (s.orelse, inactive)):
                    if branch and mask.any():
                        sub = Frame(frame.n, mask, frame.env)
                        self.block(branch, sub)

    def loop(self, s: ir.For, frame: Frame) -> None:
        lo, hi = self.expr(s.lo, frame), self.expr(s.hi, frame)
        uniform = np.ndim(lo) == 0 and np.ndim(hi) == 0
        if uniform and s.parallel and int(hi) - int(lo) > 1:
            lo, hi = int(lo), int(hi)
            chunk = max(1, LANE_LIMIT // frame.n)
            for start in range(lo, hi, chunk):
                self.expanded(s, frame, start, min(hi, start + chunk))
            return
        if uniform:
            for t in range(int(lo), int(hi)):
                frame.env[s.var] = np.int32(t)
                self.block(s.body, frame)
            return
        lo_a = np.broadcast_to(lo, (frame.n,))
        hi_a = np.broadcast_to(hi, (frame.n,))
        base = frame.mask if frame.mask is not None else np.ones(frame.n, dtype=bool)
        if not base.any():
            return
        first, last = int(lo_a[base].min()), int(hi_a[base].max())
        for t in range(first, last):
            mask = base & (lo_a <= t) & (t < hi_a)
            if mask.any():
                frame.env[s.var] = np.int32(t)
                self.block(s.body, Frame(frame.n, mask, frame.env))

    def expanded(self, s: ir.For, frame: Frame, lo: int, hi: int) -> None:
        trip = hi - lo
        env = {k: (np.repeat(v, trip) if np.ndim(v) else v) for k, v in frame.env.items()}
        env[s.var] = np.tile(np.arange(lo, hi, dtype=np.int32), frame.n)
        mask = np.repeat(frame.mask, trip) if frame.mask is not None else None
        self.block(s.body, Frame(frame.n * trip, mask, env))

    def store(self, s: ir.Store, frame: Frame) -> None:
        target = self.tensors[s.tensor]
        indices = [np.broadcast_to(self.expr(i, frame), (frame.n,)) for i in s.indices]
        value = np.broadcast_to(self.expr(s.value, frame), (frame.n,))
        keep = np.ones(frame.n, dtype=bool) if frame.mask is None else frame.mask.copy()
        keep &= inside(target.shape, indices)
        if not keep.any():
            return
        where = tuple(i[keep] for i in indices)
        value = value[keep]
        if s.op == "=":
            target[where] = value
            return
        ufunc = _AT_UFUNCS.get((s.op, target.dtype.kind))
        if ufunc is not None:
            ufunc.at(target, where, value)
            return
        for lane in range(len(value)):  # ops with no ordered ufunc.at: apply lane by lane
            at = tuple(int(i[lane]) for i in where)
            target[at] = compound(s.op, target[at], value[lane])

    # ------------------------------------------------------------------------ expressions
    def expr(self, e: ir.Expr, frame: Frame) -> Value:
        match e:
            case ir.Const():
                return e.dtype.numpy.type(e.value)
            case ir.Name():
                return frame.env[e.name]
            case ir.Load():
                return load(self.tensors[e.tensor], *(self.expr(i, frame) for i in e.indices))
            case ir.Unary():
                a = self.expr(e.operand, frame)
                if e.op == "-":
                    return np.negative(a)
                return np.logical_not(a) if e.op == "!" else np.invert(a)
            case ir.Binary():
                return binary(e.op, self.expr(e.lhs, frame), self.expr(e.rhs, frame), e.lhs.dtype)
            case ir.Select():
                cond = self.expr(e.cond, frame)
                a, b = self.expr(e.if_true, frame), self.expr(e.if_false, frame)
                return scalar_if_0d(np.where(cond, a, b).astype(e.dtype.numpy))
            case ir.Cast():
                return cast(self.expr(e.operand, frame), e.operand.dtype, e.to)
            case ir.Intrinsic():
                return intrinsic(e.fn, [self.expr(a, frame) for a in e.args], e.dtype)
            case ir.Reduce():
                return self.reduce(e, frame)
            case ir.Search():
                return self.search(e, frame)
            case ir.Rand():
                bits = randbits(self.expr(e.key, frame), self.expr(e.counter, frame))
                return bits if e.bits else bits_to_unit_float(bits)
        raise TypeError(e)

    def reduce(self, e: ir.Reduce, frame: Frame) -> Value:
        lo, hi = self.expr(e.lo, frame), self.expr(e.hi, frame)
        acc: Value = e.dtype.numpy.type(0)
        env = frame.env
        if np.ndim(lo) == 0 and np.ndim(hi) == 0:
            for k in range(int(lo), int(hi)):
                env[e.var] = np.int32(k)
                acc = binary("+", acc, self.expr(e.body, frame), e.dtype)
        else:
            lo_a, hi_a = np.broadcast_to(lo, (frame.n,)), np.broadcast_to(hi, (frame.n,))
            if frame.n:
                for k in range(int(lo_a.min()), int(hi_a.max())):
                    env[e.var] = np.int32(k)
                    inside = (lo_a <= k) & (k < hi_a)
                    acc = np.where(inside, binary("+", acc, self.expr(e.body, frame), e.dtype), acc)
        env.pop(e.var, None)
        return acc

    def search(self, e: ir.Search, frame: Frame) -> Value:
        axis = next(d for d, i in enumerate(e.indices) if isinstance(i, ir.Slice))
        piece = e.indices[axis]
        index = [None if d == axis else self.expr(i, frame) for d, i in enumerate(e.indices)]
        lo = self.expr(piece.lo, frame) if piece.lo is not None else np.int32(0)
        hi = self.expr(piece.hi, frame) if piece.hi is not None else None
        return search(self.tensors[e.tensor], index, lo, hi, self.expr(e.value, frame))


def _masked(frame: Frame, new: Value, old: Value) -> Value:
    if frame.mask is None:
        return new
    return np.where(frame.mask, new, old).astype(np.result_type(new))


# ---------------------------------------------------------------------------- operations

_AT_UFUNCS = {
    ("+=", "f"): np.add,
    ("+=", "i"): np.add,
    ("+=", "u"): np.add,
    ("-=", "f"): np.subtract,
    ("-=", "i"): np.subtract,
    ("-=", "u"): np.subtract,
    ("*=", "f"): np.multiply,
    ("*=", "i"): np.multiply,
    ("*=", "u"): np.multiply,
    ("/=", "f"): np.divide,
    ("max=", "f"): np.fmax,
    ("max=", "i"): np.maximum,
    ("max=", "u"): np.maximum,
    ("min=", "f"): np.fmin,
    ("min=", "i"): np.minimum,
    ("min=", "u"): np.minimum,
}


def compound(op: str, old: Value, value: Value) -> Value:
    """``old op= value`` with the language's semantics."""
    dtype = np.result_type(old)
    if op in ("max=", "min="):
        return intrinsic(op[:3], [old, value], None)
    return binary(op[:-1], old, value, DType.F32 if dtype.kind == "f" else None).astype(dtype)


def binary(op: str, a: Value, b: Value, operand_type: DType | None) -> Value:
    """A binary operator on two values of one type (see docs/LANGUAGE.md, "Operators")."""
    kind = np.result_type(a).kind
    if op in ("+", "-", "*"):
        return {"+": np.add, "-": np.subtract, "*": np.multiply}[op](a, b)
    if op in ("/", "%"):
        if kind == "f":
            return np.divide(a, b) if op == "/" else np.fmod(a, b)
        return int_div(a, b) if op == "/" else int_rem(a, b)
    if op in ("&", "|", "^"):
        return {"&": np.bitwise_and, "|": np.bitwise_or, "^": np.bitwise_xor}[op](a, b)
    if op in ("<<", ">>"):
        dtype = np.result_type(a)
        amount = np.bitwise_and(b, dtype.itemsize * 8 - 1).astype(dtype)
        return np.left_shift(a, amount) if op == "<<" else np.right_shift(a, amount)
    if op in ("&&", "||"):
        return np.logical_and(a, b) if op == "&&" else np.logical_or(a, b)
    compare = {
        "==": np.equal,
        "!=": np.not_equal,
        "<": np.less,
        "<=": np.less_equal,
        ">": np.greater,
        ">=": np.greater_equal,
    }
    return compare[op](a, b)


def cast(value: Value, source: DType, to: DType) -> Value:
    """Conversions: float to int truncates and saturates (NaN gives 0); others round or wrap."""
    target = to.numpy
    if source == to:
        return value
    if to == DType.BOOL:
        return np.not_equal(value, 0)
    if source.is_float and to.is_int:
        return saturate(value, target)
    return scalar_if_0d(np.asarray(value).astype(target))


def intrinsic(fn: str, args: list[Value], dtype: DType | None) -> Value:
    kind = np.result_type(args[0]).kind
    if fn in ("min", "max"):
        if kind == "f":
            return (np.fmin if fn == "min" else np.fmax)(args[0], args[1])
        return (np.minimum if fn == "min" else np.maximum)(args[0], args[1])
    if fn == "fma":
        return fma(*args)
    return {"sqrt": np.sqrt, "exp": exp, "log": log, "abs": np.abs, "floor": np.floor}[fn](args[0])
