"""The ``Contraction`` form: a matrix product with element-wise work around it.

``c[i, j] = epilogue(sum(k) prologue_a(a[i, k]) * prologue_b(b[k, j]))``: both outer loops
parallel and whole, the k range the operands' shared extent, f32 accumulation, and an output
that is neither operand. A prologue is element-wise work on one operand as the product reads
it (a cast of an f16 operand to f32, centring by a vector indexed by k); the epilogue is
element-wise work on the accumulated value (bias, scale, ReLU, casts) with vectors indexed by
the output's indices. Both are IR expressions over a placeholder name, so backends map them to
their own idiom (a packed micro-kernel on cpu, SUMMA or split-K on the wafer) or refuse them.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernelc import ir
from kernelc.affine import evaluate, is_static
from kernelc.forms.map import parallel_nest
from kernelc.graph import Task
from kernelc.types import DType

PRODUCT = "%product"  # the accumulated sum inside an epilogue (no user name can spell it)
OPERAND = "%operand"  # the operand element a[i, k] or b[k, j] inside a prologue


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
    prologue_a: ir.Expr | None = None  # over ir.Name(OPERAND); None: the element as loaded
    prologue_b: ir.Expr | None = None
    epilogue: ir.Expr | None = None  # over ir.Name(PRODUCT); None: the sum as it is

    @property
    def plain(self) -> bool:
        """Whether it is the bare product, with no work before or after."""
        return self.prologue_a is None and self.prologue_b is None and self.epilogue is None


def _indexed_by(access: ir.Load | ir.Store, row: str, col: str) -> bool:
    """Whether an access is exactly ``t[row, col]``."""
    return len(access.indices) == 2 and all(
        isinstance(e, ir.Name) and e.name == name
        for e, name in zip(access.indices, (row, col), strict=True)
    )


def _elementwise(e: ir.Expr, indices: set[str], forbidden: set[str]) -> bool:
    """Whether ``e`` is element-wise work whose loads are indexed by plain ``indices`` only
    (vectors and matrices over them), reading no tensor in ``forbidden`` and using no index
    as a value."""
    match e:
        case ir.Reduce() | ir.Search() | ir.Rand():
            return False
        case ir.Load():
            return e.tensor not in forbidden and all(
                isinstance(i, ir.Name) and i.name in indices for i in e.indices
            )
        case ir.Name():
            return e.name not in indices
    return all(_elementwise(c, indices, forbidden) for c in ir.children(e))


def _split(e: ir.Expr, find, placeholder: str) -> tuple[ir.Expr | None, ir.Expr] | None:
    """``e`` with its one node that ``find`` accepts replaced by the placeholder, and that
    node; None when there is not exactly one. The first is None when ``e`` is the node."""
    found = [n for n in ir.walk(e) if find(n)]
    if len(found) != 1:
        return None
    target = found[0]
    if e is target:
        return None, target
    around = ir.transform(
        e, lambda n: ir.Name(name=placeholder, span=n.span, dtype=n.dtype) if n is target else n
    )
    return around, target


def _operand(
    e: ir.Expr, first: str, second: str, forbidden: set[str]
) -> tuple[ir.Expr | None, ir.Load] | None:
    """The prologue and the load of one side of the product: ``f(t[first, second], v[second],
    ...)``, element-wise over the two indices."""
    found = _split(e, lambda n: isinstance(n, ir.Load) and _indexed_by(n, first, second), OPERAND)
    if found is None:
        return None
    prologue, load = found
    if prologue is not None and not _elementwise(prologue, {first, second}, forbidden):
        return None
    return prologue, load


def recognise_contraction(task: Task) -> Contraction | None:
    loops, body = parallel_nest(task.kernel.body)
    if len(loops) != 2 or len(body) != 1 or not isinstance(body[0], ir.Store):
        return None
    store = body[0]
    if store.op != "=":
        return None
    split = _split(store.value, lambda n: isinstance(n, ir.Reduce), PRODUCT)
    if split is None:
        return None
    epilogue, red = split
    if red.op != "sum" or red.dtype != DType.F32:
        return None
    prod = red.body
    if not (isinstance(prod, ir.Binary) and prod.op == "*"):
        return None
    i, j, k = loops[0].var, loops[1].var, red.var
    if not _indexed_by(store, i, j):
        i, j = j, i
    if not _indexed_by(store, i, j):
        return None
    out = {store.tensor}
    if epilogue is not None and not _elementwise(epilogue, {i, j}, out):
        return None
    lhs, rhs = _operand(prod.lhs, i, k, out), _operand(prod.rhs, k, j, out)
    if lhs is None or rhs is None:
        lhs, rhs = _operand(prod.rhs, i, k, out), _operand(prod.lhs, k, j, out)
    if lhs is None or rhs is None:
        return None
    (pro_a, a), (pro_b, b) = lhs, rhs
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
    return Contraction(a.tensor, b.tensor, store.tensor, m, n, kk, i, j, k, pro_a, pro_b, epilogue)
