"""NumPy source of a task graph, for the ``--check`` option of the emitted run.py.

run.py runs on the user's machine, where kernelc may not be installed, so the reference it
compares against is emitted as plain NumPy code. Parallel loop nests become broadcast index
grids (``I = np.arange(lo, hi)[:, None]``) so that every index expression, affine or gathered,
is an ordinary NumPy expression; a ``sum`` becomes an accumulation loop in the reference's own
order; anything else is written as scalar Python loops (slow for large inputs, but exact). The
corner cases (C division, saturating casts, clamped gathers, ``search``) are calls to the
functions of kernelc.semantics, whose source run.py carries (``HELPERS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from kernelc import ir, semantics
from kernelc.affine import affine, evaluate
from kernelc.embed import definitions
from kernelc.graph import Task, TaskGraph
from kernelc.types import DType

NP = {
    DType.F32: "np.float32",
    DType.F16: "np.float16",
    DType.I32: "np.int32",
    DType.U32: "np.uint32",
    DType.U16: "np.uint16",
    DType.BOOL: "np.bool_",
}
OPS = {"&&": "&", "||": "|"}
CHAINS = ({"+", "-"}, {"*"})  # left-associative operators written without inner parentheses
WIDTH = 99  # the emitted file's line length (ruff's default plus slack for run.py's style)


@dataclass(frozen=True)
class _Group:
    """Source text that may be broken over lines inside its brackets: ``head``, then the parts
    (each a separator and a piece; the first separator is empty), then ``tail``.

    A ``listing`` (call arguments, conditions joined by ``and``) breaks after its separators and
    its pieces stand alone; an operation breaks before its operators. ``grouping`` brackets only
    group an operation, so they are left out where the text stands alone (a call argument, a
    whole right-hand side)."""

    head: str
    parts: tuple[tuple[str, Doc], ...]
    tail: str
    listing: bool = True
    grouping: bool = False


Doc = str | _Group


def _group(head: str, items, tail: str, sep: str = ", ") -> _Group:
    return _Group(head, tuple(("" if k == 0 else sep, d) for k, d in enumerate(items)), tail)


def _operation(parts: tuple[tuple[str, Doc], ...], head: str = "(") -> _Group:
    return _Group(head, parts, ")", listing=False, grouping=head == "(")


def _flat(d: Doc, alone: bool = False) -> str:
    if isinstance(d, str):
        return d
    inner = "".join(sep + _flat(piece, d.listing) for sep, piece in d.parts)
    return inner if alone and d.grouping else d.head + inner + d.tail


def _render(prefix: str, d: Doc, suffix: str, pad: str, alone: bool = True) -> list[str]:
    """``prefix + d + suffix`` as lines no longer than WIDTH where brackets allow: a group that
    does not fit puts each part on its own line, one level deeper."""
    flat = prefix + _flat(d, alone) + suffix
    if len(flat) <= WIDTH or isinstance(d, str):
        return [flat]
    inner = pad + "    "
    lines = [prefix + d.head]
    for k, (sep, piece) in enumerate(d.parts):
        if d.listing:
            after = d.parts[k + 1][0].rstrip() if k + 1 < len(d.parts) else ""
            lines += _render(inner, piece, after, inner)
        else:
            lines += _render(inner + sep.lstrip(), piece, "", inner, alone=False)
    lines.append(pad + d.tail + suffix)
    return lines


class _Expr:
    def __init__(self, names: dict[str, str], arrays: dict[str, str], sizes: Mapping[str, int]):
        self.names, self.arrays, self.sizes = names, arrays, sizes

    def bound(self, e: ir.Expr) -> str:
        """A loop bound for ``range``: the number itself when the sizes fix it."""
        form = affine(e)
        if form is not None and form.names <= self.sizes.keys():
            return str(form.const + sum(c * self.sizes[n] for n, c in form.terms))
        return f"int({_flat(self(e), alone=True)})"

    def __call__(self, e: ir.Expr) -> Doc:
        match e:
            case ir.Const(value=v):
                return f"{NP[e.dtype]}({v!r})"
            case ir.Name(name=n):
                return self.names[n]
            case ir.Load(tensor=t, indices=idx):
                return _group("load(", (self.arrays[t], *(self(i) for i in idx)), ")")
            case ir.Unary(op="-", operand=a):
                return _operation((("", self(a)),), head="(-")
            case ir.Unary(op="!", operand=a):
                return _group("np.logical_not(", (self(a),), ")")
            case ir.Unary(op="~", operand=a):
                return _group("np.invert(", (self(a),), ")")
            case ir.Binary(op=op, lhs=a, rhs=b):
                if op in ("/", "%") and e.lhs.dtype.is_int:
                    return _group(f"int_{'div' if op == '/' else 'rem'}(", (self(a), self(b)), ")")
                if op == "%":
                    return _group("np.fmod(", (self(a), self(b)), ")")
                return _operation((*self._chain(a, op), (f" {OPS.get(op, op)} ", self(b))))
            case ir.Select(cond=c, if_true=a, if_false=b):
                return _group("np.where(", (self(c), self(a), self(b)), f").astype({NP[e.dtype]})")
            case ir.Cast(to=to, operand=a):
                if a.dtype.is_float and to.is_int:
                    return _group("saturate(", (self(a), NP[to]), ")")
                return _group("np.asarray(", (self(a),), f").astype({NP[to]})")
            case ir.Intrinsic(fn=fn, args=args):
                names = {
                    "sqrt": "np.sqrt",
                    "exp": "exp",
                    "log": "log",
                    "abs": "np.abs",
                    "floor": "np.floor",
                    "min": "np.fmin",
                    "max": "np.fmax",
                }
                if fn in ("min", "max") and not e.dtype.is_float:
                    names[fn] = "np.minimum" if fn == "min" else "np.maximum"
                if fn == "fma":
                    raise NotImplementedError
                return _group(f"{names[fn]}(", tuple(self(a) for a in args), ")")
            case ir.Search(tensor=t, indices=idx, value=v):
                axis = next(d for d, i in enumerate(idx) if isinstance(i, ir.Slice))
                piece = idx[axis]
                fixed = tuple("None" if d == axis else self(i) for d, i in enumerate(idx))
                index = _group("[", fixed, "]")
                lo = self(piece.lo) if piece.lo is not None else "0"
                hi = self(piece.hi) if piece.hi is not None else "None"
                return _group("search(", (self.arrays[t], index, lo, hi, self(v)), ")")
        raise NotImplementedError(type(e).__name__)

    def _chain(self, e: ir.Expr, op: str) -> tuple[tuple[str, Doc], ...]:
        """The parts of ``e op ...``: a left operand with an operator of the same left-associative
        family is spliced in without its parentheses (``a + b - c``, evaluated as written)."""
        family = next((f for f in CHAINS if op in f), set())
        if isinstance(e, ir.Binary) and e.op in family:
            return (*self._chain(e.lhs, e.op), (f" {e.op} ", self(e.rhs)))
        return (("", self(e)),)


def _range(lo: str, hi: str) -> _Group:
    return _group("range(", (hi,) if lo == "0" else (lo, hi), ")")


def _line(lines: list[str], pad: str, prefix: str, d: Doc, suffix: str = "") -> None:
    """One statement; an expression followed by more than a colon (``.astype(...)``) keeps its
    grouping parentheses."""
    lines.extend(_render(pad + prefix, d, suffix, pad, alone=suffix in ("", ":")))


def _perfect_nest(task: Task) -> tuple[list[ir.For], tuple[ir.Stmt, ...]] | None:
    loops, body = [], task.kernel.body
    while len(body) == 1 and isinstance(body[0], ir.For) and body[0].parallel:
        loops.append(body[0])
        body = body[0].body
    if loops and all(isinstance(s, ir.Let | ir.Store) for s in body):
        return loops, body
    return None


def _vectorised(task: Task, arrays: dict[str, str], lines: list[str], scalars: dict) -> None:
    loops, body = _perfect_nest(task)
    # loop bounds may use integer scalar parameters as well as sizes
    sizes = task.size_env | {
        name: int(value) for name, value in scalars.items() if isinstance(value, int)
    }
    names = {n: f"np.int32({v})" for n, v in sizes.items()} | _literals(task, scalars)
    rank = len(loops)
    for k, lp in enumerate(loops):
        lo, hi = evaluate(lp.lo, sizes), evaluate(lp.hi, sizes)
        shape = ", ".join("-1" if j == k else "1" for j in range(rank))
        var = f"g_{lp.var}"
        lines.append(f"    {var} = np.arange({lo}, {hi}, dtype=np.int32).reshape({shape})")
        names[lp.var] = var
    grid = ", ".join(f"g_{lp.var}" for lp in loops)
    expr = _Expr(names, arrays, sizes)
    for s in body:
        if isinstance(s, ir.Let):
            local = f"v_{s.name}"
            _line(lines, "    ", f"{local} = ", _value(s.value, expr, lines, grid))
            names[s.name] = local
        else:
            arr = arrays[s.tensor]
            index = ", ".join(_flat(expr(i)) for i in s.indices)
            value = _value(s.value, expr, lines, grid)
            if s.op == "=":
                _line(lines, "    ", f"{arr}[{index}] = ", value)
            else:
                update = _compound(s.op, f"{arr}[{index}]", value, s.value.dtype)
                _line(lines, "    ", f"{arr}[{index}] = ", update, f".astype({arr}.dtype)")


def _value(e: ir.Expr, expr: _Expr, lines: list[str], grid: str, pad: str = "    ") -> Doc:
    """An expression, with each ``sum`` accumulated in a loop first (left to right, as the
    reference interpreter adds)."""
    reduces = [n for n in ir.walk(e) if isinstance(n, ir.Reduce)]
    if not reduces:
        return expr(e)
    if len(reduces) != 1 or reduces[0] is not e:
        raise NotImplementedError("nested reductions")
    acc = f"acc_{e.var}"
    lines.append(
        f"{pad}{acc} = np.zeros(np.broadcast({grid}).shape, dtype={NP[e.dtype]})"
        if grid
        else f"{pad}{acc} = {NP[e.dtype]}(0)"
    )
    _line(lines, pad, f"for i_{e.var} in ", _range(expr.bound(e.lo), expr.bound(e.hi)), ":")
    inner = _Expr({**expr.names, e.var: f"np.int32(i_{e.var})"}, expr.arrays, expr.sizes)
    total = _operation((("", acc), (" + ", inner(e.body))))
    _line(lines, pad + "    ", f"{acc} = ", total, f".astype({NP[e.dtype]})")
    return acc


def _compound(op: str, old: str, value: Doc, dtype: DType) -> Doc:
    """The new value of ``old op= value`` with the language's semantics."""
    if op == "=":
        return value
    base = op[:-1]
    if base in ("max", "min"):
        return _group(f"np.f{base}(", (old, value), ")")
    if base in ("/", "%") and dtype.is_int:
        return _group(f"int_{'div' if base == '/' else 'rem'}(", (old, value), ")")
    if base == "%":
        return _group("np.fmod(", (old, value), ")")
    return _operation((("", old), (f" {base} ", value)))


def _scalar(task: Task, arrays: dict[str, str], lines: list[str], scalars: dict) -> None:
    names = {n: f"np.int32({v})" for n, v in task.size_env.items()} | _literals(task, scalars)
    expr = _Expr(names, arrays, task.size_env)
    _block(task.kernel.body, expr, lines, "    ")


def _block(body, expr: _Expr, lines: list[str], pad: str) -> None:
    for s in body:
        match s:
            case ir.For(var=v, lo=lo, hi=hi, body=inner):
                bounds = _range(expr.bound(lo), expr.bound(hi))
                _line(lines, pad, f"for i_{v} in ", bounds, ":")
                lines.append(f"{pad}    v_{v} = np.int32(i_{v})")
                expr.names[v] = f"v_{v}"
                _block(inner, expr, lines, pad + "    ")
            case ir.Let(name=n, value=v) | ir.VarDecl(name=n, value=v):
                _line(lines, pad, f"v_{n} = ", _value(v, expr, lines, "", pad))
                expr.names[n] = f"v_{n}"
            case ir.Assign(name=n, op=op, value=v):
                name = expr.names[n]
                value = _value(v, expr, lines, "", pad)
                _line(lines, pad, f"{name} = ", _compound(op, name, value, v.dtype))
            case ir.Store(tensor=t, indices=idx, op=op, value=v):
                arr = expr.arrays[t]
                value = _value(v, expr, lines, "", pad)
                index = ", ".join(_flat(expr(i)) for i in idx)
                inside = tuple(
                    f"0 <= {_flat(expr(i))} < {arr}.shape[{d}]" for d, i in enumerate(idx)
                )
                condition = replace(_group("(", inside, ")", " and "), grouping=True)
                _line(lines, pad, "if ", condition, ":")
                update = _compound(op, f"{arr}[{index}]", value, v.dtype)
                _line(lines, pad + "    ", f"{arr}[{index}] = ", update)
            case ir.If(cond=c, then=then, orelse=orelse):
                _line(lines, pad, "if ", expr(c), ":")
                _block(then, expr, lines, pad + "    ")
                lines.append(f"{pad}    pass")
                if orelse:
                    lines.append(f"{pad}else:")
                    _block(orelse, expr, lines, pad + "    ")
                    lines.append(f"{pad}    pass")
            case _:
                raise NotImplementedError(type(s).__name__)


def _bindings(task: Task, graph: TaskGraph, lines: list[str]) -> tuple[dict, dict]:
    """The NumPy names of a task's tensor parameters (views of the regions it was given) and
    the values of its scalar parameters."""
    arrays, scalars = {}, {}
    for b in task.bindings:
        if b.region is not None:
            whole = b.region.box == tuple((0, n) for n in graph.tensor(b.region.tensor).shape)
            if whole and all(b.region.keep):
                arrays[b.param] = f"t_{b.region.tensor}"
                continue
            view = ", ".join(
                f"{lo}:{hi}" if keep else str(lo)
                for (lo, hi), keep in zip(b.region.box, b.region.keep, strict=True)
            )
            arrays[b.param] = f"r_{b.param}"
            lines.append(f"    r_{b.param} = t_{b.region.tensor}[{view}]")
            continue
        value = b.constant
        if b.scalar is not None:
            default = next(s for s in graph.scalars if s.name == b.scalar).default
            if default is None:
                raise NotImplementedError("a scalar given at run time")
            value = default.value
        scalars[b.param] = value
    return arrays, scalars


def _literals(task: Task, scalars: dict) -> dict[str, str]:
    """The typed NumPy literals of a task's scalar parameter values."""
    return {n: f"{NP[task.kernel.param(n).dtype]}({v!r})" for n, v in scalars.items()}


def reference_source(graph: TaskGraph) -> str | None:
    """Python source of ``reference(inputs) -> outputs``, or None if a construct is missing."""
    lines = [
        "def reference(inputs):",
        '    """The kernel in NumPy, written from the kernel IR by kernelc."""',
    ]
    for t in graph.tensors:
        if t.role == "input":
            lines.append(f"    t_{t.name} = np.array(inputs[{t.name!r}])")
        else:
            lines.append(f"    t_{t.name} = np.zeros({t.shape!r}, dtype={NP[t.dtype]})")
    try:
        for task in graph.tasks:
            lines.append(f"    # task {task.name} ({task.kernel.name})")
            arrays, scalars = _bindings(task, graph, lines)
            if _perfect_nest(task) is not None:
                _vectorised(task, arrays, lines, scalars)
            else:
                _scalar(task, arrays, lines, scalars)
    except NotImplementedError:
        return None
    outs = ", ".join(f"{t.name!r}: t_{t.name}" for t in graph.outputs)
    lines.append(f"    return {{{outs}}}")
    return "\n".join(lines) + "\n"


HELPERS = (
    "# The language's corner cases (kernelc/semantics.py, copied verbatim by kernelc).\n"
    + definitions(semantics)
)
"""The NumPy helpers the reference calls: kernelc.semantics, verbatim, under a comment."""
