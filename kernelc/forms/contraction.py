"""The ``Contraction`` form: a matrix product ``c[i, j] = sum(k) a[i, k] * b[k, j]``.

Both outer loops parallel and whole, the k range the operands' shared extent, f32
accumulation, and an output that is neither operand. Backends map it to their native idiom
(a packed micro-kernel on cpu, SUMMA or split-K on the wafer).
"""

from __future__ import annotations

from dataclasses import dataclass

from kernelc import ir
from kernelc.affine import evaluate, is_static
from kernelc.forms.map import parallel_nest
from kernelc.graph import Task
from kernelc.types import DType


@dataclass(frozen=True)
class Contraction:
    a: str  # kernel parameter names of the operands and the result
    b: str
    c: str
    m: int
    n: int
    k: int
    row: str  # loop variables: c[row, col], summed over red
    col: str
    red: str


def _indexed_by(access: ir.Load | ir.Store, row: str, col: str) -> bool:
    """Whether an access is exactly ``t[row, col]``."""
    return len(access.indices) == 2 and all(
        isinstance(e, ir.Name) and e.name == name
        for e, name in zip(access.indices, (row, col), strict=True)
    )


def recognise_contraction(task: Task) -> Contraction | None:
    loops, body = parallel_nest(task.kernel.body)
    if len(loops) != 2 or len(body) != 1 or not isinstance(body[0], ir.Store):
        return None
    store = body[0]
    red = store.value
    if store.op != "=" or not isinstance(red, ir.Reduce) or red.op != "sum":
        return None
    if red.dtype != DType.F32:
        return None
    prod = red.body
    if not (isinstance(prod, ir.Binary) and prod.op == "*"):
        return None
    if not (isinstance(prod.lhs, ir.Load) and isinstance(prod.rhs, ir.Load)):
        return None
    i, j, k = loops[0].var, loops[1].var, red.var
    if not _indexed_by(store, i, j):
        i, j = j, i
    a, b = prod.lhs, prod.rhs
    if not _indexed_by(a, i, k):
        a, b = b, a
    if not (_indexed_by(a, i, k) and _indexed_by(b, k, j) and _indexed_by(store, i, j)):
        return None
    static = set(task.kernel.sizes)
    sizes = task.size_env
    bounds = {}
    for var, lo, hi in [(lp.var, lp.lo, lp.hi) for lp in loops] + [(k, red.lo, red.hi)]:
        if not (is_static(lo, static) and is_static(hi, static)) or evaluate(lo, sizes) != 0:
            return None
        bounds[var] = evaluate(hi, sizes)
    regions = {bnd.param: bnd.region for bnd in task.bindings if bnd.region is not None}
    shape_a = regions[a.tensor].view_shape
    shape_b = regions[b.tensor].view_shape
    shape_c = regions[store.tensor].view_shape
    m, n, kk = bounds[i], bounds[j], bounds[k]
    if shape_a != (m, kk) or shape_b != (kk, n) or shape_c != (m, n) or min(m, n, kk) < 1:
        return None
    if regions[store.tensor].tensor in (regions[a.tensor].tensor, regions[b.tensor].tensor):
        return None
    return Contraction(a.tensor, b.tensor, store.tensor, m, n, kk, i, j, k)
