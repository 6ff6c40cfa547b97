"""The ``Reduction`` form: reductions along a dimension and the element-wise work that uses them.

A parallel loop over a kept index ``r`` whose body folds along another dimension (``let s =
sum(k in ..) e``, or ``var acc = init; for k { acc max= e; }`` with ``+= max= min=``), may
compute per-``r`` values from the folds (``let``), and stores element-wise: directly
(``mean[r] = s / C``) or in a parallel loop over the other dimension (``y[r, j] = x[r, j] /
s``). Softmax, row norms, row and column sums and means are of this form. Every tensor access
names the kept index as one whole dimension (the same one for every access of a tensor) and
leaves it out of the others, so a backend can spread the kept index and keep each fold local.

A task without the kept loop whose folds run over whole ranges and whose stores write single
elements (``out[0] = sum(i in 0 .. N) a[i]``, or the C way: ``var m = a[0]; for i in 1 .. N {
m = max(m, a[i]); } out[0] = m;``) is the same form with no kept index (``loop`` None): one
fold result per task, as OpenMP tasks that each fold their own slice are written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from kernelc import ir
from kernelc.affine import affine
from kernelc.graph import Task

FOLDS = {"+=": "sum", "max=": "max", "min=": "min"}
SPELLED = {"max": "max", "min": "min"}  # ``acc = max(acc, e)``: fmaxf/fminf in C


@dataclass(frozen=True)
class Fold:
    """``name = init op body[var = lo] op ... op body[var = hi - 1]``, a left-to-right fold."""

    name: str
    op: str  # "sum", "max" or "min" (max and min ignore NaN, as ``max=`` does)
    var: str
    lo: ir.Expr
    hi: ir.Expr
    body: ir.Expr
    init: ir.Expr | None  # the ``var``'s initial value; None: +0 (``sum``)


@dataclass(frozen=True)
class RowLet:
    """A per-kept-index value computed from earlier folds and lets (``let mean = s / C``)."""

    name: str
    value: ir.Expr


@dataclass(frozen=True)
class RowStores:
    """Element-wise stores: directly in the kept loop (``loop`` None) or in a parallel loop."""

    loop: ir.For | None
    body: tuple[ir.Stmt, ...]  # lets and stores only


Step = Fold | RowLet | RowStores


@dataclass(frozen=True)
class Reduction:
    # the parallel loop over the kept index; None: none, every fold runs once over its range
    # and the stores write single elements (a backend that spreads the kept index declines it)
    loop: ir.For | None
    steps: tuple[Step, ...]  # in program order
    kept_dims: tuple[tuple[str, int], ...]  # (tensor parameter, the dimension the kept index names)

    @property
    def kept(self) -> str:
        """The kept index; only for a form with a kept loop."""
        assert self.loop is not None, "a whole-range Reduction has no kept index"
        return self.loop.var

    @property
    def folds(self) -> tuple[Fold, ...]:
        return tuple(s for s in self.steps if isinstance(s, Fold))


def recognise_reduction(task: Task) -> Reduction | None:
    body = task.kernel.body
    if len(body) != 1 or not isinstance(body[0], ir.For) or not body[0].parallel:
        return _whole(task)
    loop = body[0]
    steps = _steps(loop.body)
    if steps is None or not any(isinstance(s, Fold) for s in steps):
        return None
    if not any(isinstance(s, RowStores) for s in steps):
        return None
    kept_dims = _kept_dims(loop)
    if kept_dims is None:
        return None
    return Reduction(loop, steps, kept_dims)


def _whole(task: Task) -> Reduction | None:
    """The form without a kept index: folds over fixed ranges, then single-element stores; a
    store of a whole ``sum`` (what normalisation makes of ``s = 0; for { s += e; } out[0] =
    s``) is that fold under a fresh name, then the store of it."""
    body = task.kernel.body
    taken = {n.name for n in ir.walk_body(body) if isinstance(n, ir.Name)}
    taken |= {p.name for p in task.kernel.all_params}
    taken |= {s.name for s in ir.walk_body(body) if isinstance(s, ir.Let | ir.VarDecl)}
    lifted: list[ir.Stmt] = []
    for s in body:
        if isinstance(s, ir.Store) and isinstance(s.value, ir.Reduce) and s.value.op == "sum":
            name = ir.fresh_name("total", taken)
            lifted.append(ir.Let(name=name, value=s.value, span=s.span))
            s = replace(s, value=ir.Name(name=name, span=s.value.span, dtype=s.value.dtype))
        lifted.append(s)
    steps = _steps(tuple(lifted))
    if steps is None or not any(isinstance(s, Fold) for s in steps):
        return None
    sizes = set(task.size_env)
    for step in steps:
        match step:
            case Fold(lo=lo, hi=hi) if not (_fixed(lo, sizes) and _fixed(hi, sizes)):
                return None
            case RowStores(loop=ir.For()):
                return None
            case RowStores(body=stores) if not all(
                _fixed(i, sizes) for st in stores for i in st.indices
            ):
                return None
    if not any(isinstance(s, RowStores) for s in steps):
        return None
    return Reduction(None, steps, ())


def _fixed(e: ir.Expr, sizes: set[str]) -> bool:
    """An affine expression of sizes only: a fixed trip bound or element index."""
    form = affine(e)
    return form is not None and all(n in sizes for n, _ in form.terms)


def _steps(body: tuple[ir.Stmt, ...]) -> tuple[Step, ...] | None:
    steps: list[Step] = []
    k = 0
    while k < len(body):
        s = body[k]
        match s:
            case ir.Let(name=name, value=ir.Reduce(op="sum") as red):
                if _nested_reduce(red.body):
                    return None
                steps.append(Fold(name, "sum", red.var, red.lo, red.hi, red.body, None))
            case ir.VarDecl(name=name, value=init) if k + 1 < len(body):
                fold = _loop_fold(name, init, body[k + 1])
                if fold is None or _nested_reduce(init):
                    return None
                steps.append(fold)
                k += 1
            case ir.Let(name=name, value=value):
                if _nested_reduce(value):
                    return None
                steps.append(RowLet(name, value))
            case ir.Store():
                if _nested_reduce(s.value) or s.op != "=":
                    return None
                steps.append(RowStores(None, (s,)))
            case ir.For(parallel=True, body=inner):
                if not all(isinstance(t, ir.Let | ir.Store) for t in inner):
                    return None
                if any(isinstance(t, ir.Store) and t.op != "=" for t in inner):
                    return None
                if any(_nested_reduce(t.value) for t in inner):
                    return None
                steps.append(RowStores(s, inner))
            case _:
                return None
        k += 1
    assigned = [n.name for st in body for n in ir.walk(st) if isinstance(n, ir.Assign)]
    if len(assigned) != len(set(assigned)):
        return None  # a var updated by two loops is no single fold
    return tuple(steps)


def _loop_fold(name: str, init: ir.Expr, stmt: ir.Stmt) -> Fold | None:
    """``for k { name op= e; }`` right after ``var name = init``, or the same update spelled
    ``name = max(name, e)`` / ``min`` (C's fmaxf/fminf: the language's max is ``max=``'s fold
    step, the accumulator first) or ``name = name + e`` / ``e + name`` (addition commutes)."""
    if not isinstance(stmt, ir.For) or len(stmt.body) != 1:
        return None
    update = stmt.body[0]
    if not (isinstance(update, ir.Assign) and update.name == name):
        return None
    folded = _update(name, update)
    if folded is None:
        return None
    op, value = folded
    if _nested_reduce(value) or _mentions(value, name):
        return None
    return Fold(name, op, stmt.var, stmt.lo, stmt.hi, value, init)


def _update(name: str, update: ir.Assign) -> tuple[str, ir.Expr] | None:
    """(fold op, the folded value) of an accumulator update, or None."""
    if update.op in FOLDS:
        return FOLDS[update.op], update.value
    if update.op != "=":
        return None
    match update.value:
        case ir.Intrinsic(fn=fn, args=(ir.Name(name=acc), e)) if fn in SPELLED and acc == name:
            return SPELLED[fn], e
        case ir.Binary(op="+", lhs=ir.Name(name=acc), rhs=e) if acc == name:
            return "sum", e
        case ir.Binary(op="+", lhs=e, rhs=ir.Name(name=acc)) if acc == name:
            return "sum", e
    return None


def _mentions(e: ir.Expr, name: str) -> bool:
    return any(isinstance(n, ir.Name) and n.name == name for n in ir.walk(e))


def _nested_reduce(e: ir.Expr) -> bool:
    return any(isinstance(n, ir.Reduce | ir.Search | ir.Rand) for n in ir.walk(e))


def _kept_dims(loop: ir.For) -> tuple[tuple[str, int], ...] | None:
    """The dimension of every tensor the kept index names, or None when an access mixes it in."""
    kept = loop.var
    dims: dict[str, int] = {}
    for n in ir.walk_body(loop.body):
        if not isinstance(n, ir.Load | ir.Store):
            continue
        named = [d for d, i in enumerate(n.indices) if isinstance(i, ir.Name) and i.name == kept]
        mentions = [
            d
            for d, i in enumerate(n.indices)
            if any(isinstance(x, ir.Name) and x.name == kept for x in ir.walk(i))
        ]
        if len(named) != 1 or mentions != named:
            return None
        if dims.setdefault(n.tensor, named[0]) != named[0]:
            return None
    return tuple(sorted(dims.items()))
