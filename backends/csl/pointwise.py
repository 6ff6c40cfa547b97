"""The element-wise work around a matrix product as DSD operations over a whole local block.

A ``Contraction``'s epilogue (work on the sum) and prologues (work on an operand) are IR
expressions over a placeholder. Each becomes a short list of DSD operations that run over the
block a PE holds (C's block after the last step, an operand's block before the first): the
arithmetic in place on an f32 working block (``@fadds``, ``@fsubs``, ``@fmuls``, ``@fmaxs``,
``@fnegs``, ``@fabss``; min as negate, max, negate), casts through f16 with ``@fs2h`` into an
f16 scratch block and ``@fh2s`` back. The other operand of each operation is a constant or a
tensor indexed by the block's indices, placed as the block's rows or columns are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kernelc import ir
from kernelc.backends.csl.builder import Builder
from kernelc.backends.csl.lowered import Refusal
from kernelc.csl import machine
from kernelc.csl import model as m
from kernelc.forms.blocks import Layout
from kernelc.types import DType

BINARY = {"+": "fadds", "-": "fsubs", "*": "fmuls"}
CONVERSIONS = ("fs2h", "fh2s")  # f32 -> the f16 scratch, the f16 value -> the f32 block


@dataclass(frozen=True)
class Operand:
    """The other operand of an operation: a constant, or the kernel parameter ``param``
    whose dimension t is indexed by the block's dimension ``dims[t]``."""

    value: float = 0.0
    param: str | None = None
    dims: tuple[int, ...] = ()


@dataclass(frozen=True)
class Op:
    """One DSD operation: ``w = w op x`` (``x op w`` when ``operand_first``), or a conversion."""

    builtin: str
    operand: Operand | None = None
    operand_first: bool = False


def element_ops(
    e: ir.Expr, placeholder: str, indices: dict[str, int], what: str, kernel: str
) -> tuple[Op, ...] | Refusal:
    """``e`` (over ``placeholder``) as DSD operations on a block whose dimension ``indices[v]``
    loop variable ``v`` indexes; or the refusal naming the construct that has none."""
    ops = _spine(e, placeholder, indices, what, kernel)
    return ops if isinstance(ops, Refusal) else tuple(ops)


def _has(e: ir.Expr, placeholder: str) -> bool:
    return any(isinstance(n, ir.Name) and n.name == placeholder for n in ir.walk(e))


def _spine(
    e: ir.Expr, ph: str, indices: dict[str, int], what: str, kernel: str
) -> list[Op] | Refusal:
    def refuse(construct: str) -> Refusal:
        return Refusal(
            f"'{kernel}': the csl backend does not lower {construct} in a matrix product's {what}",
            e.span,
        )

    def then(x: ir.Expr, *ops: Op) -> list[Op] | Refusal:
        """The operations of ``x``, then ``ops``."""
        first = _spine(x, ph, indices, what, kernel)
        return first if isinstance(first, Refusal) else [*first, *ops]

    def other(lhs: ir.Expr, rhs: ir.Expr) -> tuple[ir.Expr, Operand] | Refusal:
        """The side holding the value and the other side as an operand."""
        x, side = (rhs, lhs) if not _has(lhs, ph) else (lhs, rhs)
        if _has(side, ph):
            return refuse("the value used twice")
        operand = _operand(side, indices)
        if operand is None:
            return refuse(
                "an operand other than a finite constant or an f32 tensor indexed by the block"
            )
        return x, operand

    match e:
        case ir.Name(name=name) if name == ph:
            if e.dtype not in (DType.F32, DType.F16):
                return refuse(f"a {e.dtype} operand")
            return []
        case ir.Cast(to=DType.F32, operand=x) if x.dtype == DType.F32:
            return then(x)
        case ir.Cast(to=DType.F32, operand=x) if x.dtype == DType.F16:
            return then(x, Op("fh2s"))
        case ir.Cast(to=DType.F16, operand=x) if x.dtype == DType.F32:
            return then(x, Op("fs2h"))
    if e.dtype != DType.F32:
        return refuse(f"{e.dtype} arithmetic")
    match e:
        case ir.Unary(op="-", operand=x):
            return then(x, Op("fnegs"))
        case ir.Intrinsic(fn="abs", args=(x,)):
            return then(x, Op("fabss"))
        case ir.Binary(op=op, lhs=lhs, rhs=rhs) if op in BINARY:
            split = other(lhs, rhs)
            if isinstance(split, Refusal):
                return split
            x, operand = split
            return then(x, Op(BINARY[op], operand, not _has(lhs, ph) and op == "-"))
        case ir.Intrinsic(fn="max" | "min" as fn, args=(lhs, rhs)):
            split = other(lhs, rhs)
            if isinstance(split, Refusal):
                return split
            x, operand = split
            if fn == "max":
                return then(x, Op("fmaxs", operand))
            if operand.param is not None:
                return refuse("min with a tensor")
            return then(x, Op("fnegs"), Op("fmaxs", Operand(-operand.value)), Op("fnegs"))
    return refuse(f"'{type(e).__name__.lower()}'")


def _operand(e: ir.Expr, indices: dict[str, int]) -> Operand | None:
    """A constant or a tensor indexed by the block's indices; None for anything else."""
    match e:
        case ir.Const(value=value) if math.isfinite(value):
            return Operand(float(value))
        case ir.Unary(op="-", operand=ir.Const(value=value)) if math.isfinite(value):
            return Operand(-float(value))
        case ir.Load(tensor=param, indices=idx, dtype=DType.F32):
            dims = tuple(indices.get(i.name, -1) for i in idx if isinstance(i, ir.Name))
            if len(dims) == len(idx) and -1 not in dims and len(set(dims)) == len(dims):
                return Operand(param=param, dims=dims)
    return None


def operand_layout(x: Operand, tensor: str, block: Layout) -> Layout:
    """Where an operation's tensor goes: each dimension placed as the block dimension that
    indexes it."""
    return Layout(tensor, DType.F32, tuple(block.dims[d] for d in x.dims))


def element_code(
    b: Builder,
    ops: tuple[Op, ...],
    source: tuple[str, DType],
    work: str,
    shape: tuple[int, ...],
    arrays: dict[str, str],
) -> list[m.Stmt]:
    """The operations over a whole local block of ``shape`` (row-major): from the ``source``
    array (and its element type) into the f32 ``work`` array, which may be the source itself.
    ``arrays`` maps the operands' parameters to their arrays."""
    names = [b.fresh(v) for v in "ijkl"[: len(shape)]]

    def dsd(array: str, dims: tuple[int, ...]) -> m.Name:
        flat: m.Expr = m.Int(0)
        pitch = 1
        for d in reversed(dims):
            term = m.Name(names[d]) if pitch == 1 else m.mul(m.Name(names[d]), m.Int(pitch))
            flat = term if isinstance(flat, m.Int) else m.add(term, flat)
            pitch *= shape[d]
        name = b.fresh(f"{array}_dsd")
        access = m.TensorAccess(
            tuple(names), tuple(m.lit(n) for n in shape), m.Index(m.Name(array), (flat,))
        )
        b.const(name, m.builtin("get_dsd", m.Name("mem4d_dsd"), m.struct(tensor_access=access)))
        return m.Name(name)

    every = tuple(range(len(shape)))
    size = math.prod(shape)
    out = dsd(work, every)
    current = out if source[0] == work else dsd(source[0], every)
    current_type = source[1]
    scratch: m.Name | None = None
    stmts: list[m.Stmt] = []
    for op in ops:
        if op.builtin == "fs2h":
            if scratch is None:
                scratch = dsd(b.array(f"{work}_f16", DType.F16, size, "f16 scratch block"), every)
            stmts.append(m.ExprStmt(m.builtin("fs2h", scratch, current)))
            current, current_type = scratch, DType.F16
            continue
        if op.builtin == "fh2s":
            stmts.append(m.ExprStmt(m.builtin("fh2s", out, current)))
            current, current_type = out, DType.F32
            continue
        if current is not out:
            stmts.append(m.ExprStmt(m.builtin("fmovs", out, current)))
            current = out
        if op.operand is None:
            stmts.append(m.ExprStmt(m.builtin(op.builtin, out, out)))
            continue
        x = op.operand
        if x.param is None:
            value = m.Float(abs(x.value))
            src: m.Expr = value if x.value >= 0 else m.Unary("-", value)
        else:
            src = dsd(arrays[x.param], x.dims)
        args = (src, out) if op.operand_first else (out, src)
        stmts.append(m.ExprStmt(m.builtin(op.builtin, out, *args)))
    if current is not out:
        copy = "fh2s" if current_type == DType.F16 else "fmovs"
        stmts.append(m.ExprStmt(m.builtin(copy, out, current)))
    return stmts


def element_cycles(stmts: int, elements: int) -> int:
    """Each DSD operation: its set-up, one element per cycle, and the scalar work around it."""
    return stmts * (machine.DSD_SETUP_CYCLES + elements + 6)
