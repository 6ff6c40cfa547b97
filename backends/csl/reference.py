"""NumPy source of a task graph, for the ``--check`` option of the emitted run.py.

run.py runs on the user's machine, where kernelc may not be installed, so the reference it
compares against is emitted as plain NumPy code. Parallel loop nests become broadcast index
grids (``I = np.arange(lo, hi)[:, None]``) so that every index expression, affine or gathered,
is an ordinary NumPy expression; a ``sum`` becomes an accumulation loop in the reference's own
order; anything else is written as scalar Python loops (slow for large inputs, but exact).
"""

from __future__ import annotations

from kernelc import ir
from kernelc.affine import evaluate
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


class _Expr:
    def __init__(self, names: dict[str, str], arrays: dict[str, str], scalar: bool) -> None:
        self.names, self.arrays, self.scalar = names, arrays, scalar

    def __call__(self, e: ir.Expr) -> str:
        match e:
            case ir.Const(value=v):
                return f"{NP[e.dtype]}({v!r})"
            case ir.Name(name=n):
                return self.names[n]
            case ir.Load(tensor=t, indices=idx):
                arr = self.arrays[t]
                clipped = ", ".join(
                    f"np.clip({self(i)}, 0, {arr}.shape[{d}] - 1)" for d, i in enumerate(idx)
                )
                return f"{arr}[{clipped}]"
            case ir.Unary(op="-", operand=a):
                return f"(-{self(a)})"
            case ir.Unary(op="!", operand=a):
                return f"np.logical_not({self(a)})"
            case ir.Unary(op="~", operand=a):
                return f"np.invert({self(a)})"
            case ir.Binary(op=op, lhs=a, rhs=b):
                if op in ("/", "%") and e.lhs.dtype.is_int:
                    return f"_int_{'div' if op == '/' else 'rem'}({self(a)}, {self(b)})"
                if op == "%":
                    return f"np.fmod({self(a)}, {self(b)})"
                return f"({self(a)} {OPS.get(op, op)} {self(b)})"
            case ir.Select(cond=c, if_true=a, if_false=b):
                return f"np.where({self(c)}, {self(a)}, {self(b)}).astype({NP[e.dtype]})"
            case ir.Cast(to=to, operand=a):
                if a.dtype.is_float and to.is_int:
                    return f"_saturate({self(a)}, {NP[to]})"
                return f"np.asarray({self(a)}).astype({NP[to]})"
            case ir.Intrinsic(fn=fn, args=args):
                names = {
                    "sqrt": "np.sqrt",
                    "exp": "np.exp",
                    "log": "np.log",
                    "abs": "np.abs",
                    "floor": "np.floor",
                    "min": "np.fmin",
                    "max": "np.fmax",
                }
                if fn in ("min", "max") and not e.dtype.is_float:
                    names[fn] = "np.minimum" if fn == "min" else "np.maximum"
                if fn == "fma":
                    raise NotImplementedError
                return f"{names[fn]}({', '.join(self(a) for a in args)})"
            case ir.Search(tensor=t, indices=idx, value=v):
                axis = next(d for d, i in enumerate(idx) if isinstance(i, ir.Slice))
                piece = idx[axis]
                arr = self.arrays[t]
                row = ", ".join(
                    ":" if d == axis else f"np.clip({self(i)}, 0, {arr}.shape[{d}] - 1)"
                    for d, i in enumerate(idx)
                )
                lo = self(piece.lo) if piece.lo is not None else "0"
                hi = self(piece.hi) if piece.hi is not None else "None"
                return f"_search({arr}[{row}], {lo}, {hi}, {self(v)})"
        raise NotImplementedError(type(e).__name__)


def _perfect_nest(task: Task) -> tuple[list[ir.For], tuple[ir.Stmt, ...]] | None:
    loops, body = [], task.kernel.body
    while len(body) == 1 and isinstance(body[0], ir.For) and body[0].parallel:
        loops.append(body[0])
        body = body[0].body
    if loops and all(isinstance(s, ir.Let | ir.Store) for s in body):
        return loops, body
    return None


def _vectorised(task: Task, arrays: dict[str, str], lines: list[str]) -> None:
    loops, body = _perfect_nest(task)
    sizes = task.size_env
    names = {n: f"np.int32({v})" for n, v in sizes.items()}
    rank = len(loops)
    for k, lp in enumerate(loops):
        lo, hi = evaluate(lp.lo, sizes), evaluate(lp.hi, sizes)
        shape = ", ".join("-1" if j == k else "1" for j in range(rank))
        var = f"g_{lp.var}"
        lines.append(f"    {var} = np.arange({lo}, {hi}, dtype=np.int32).reshape({shape})")
        names[lp.var] = var
    grid = ", ".join(f"g_{lp.var}" for lp in loops)
    expr = _Expr(names, arrays, scalar=False)
    for s in body:
        if isinstance(s, ir.Let):
            local = f"v_{s.name}"
            lines.append(f"    {local} = {_value(s.value, expr, lines, grid)}")
            names[s.name] = local
        else:
            arr = arrays[s.tensor]
            index = ", ".join(expr(i) for i in s.indices)
            value = _value(s.value, expr, lines, grid)
            if s.op == "=":
                lines.append(f"    {arr}[{index}] = {value}")
            else:
                op = s.op[:-1]
                lines.append(
                    f"    {arr}[{index}] = ({arr}[{index}] {op} {value}).astype({arr}.dtype)"
                )


def _value(e: ir.Expr, expr: _Expr, lines: list[str], grid: str) -> str:
    """An expression, with each ``sum`` accumulated in a loop first (left to right, as the
    reference interpreter adds)."""
    reduces = [n for n in ir.walk(e) if isinstance(n, ir.Reduce)]
    if not reduces:
        return expr(e)
    if len(reduces) != 1 or reduces[0] is not e:
        raise NotImplementedError("nested reductions")
    acc = f"acc_{e.var}"
    lines.append(
        f"    {acc} = np.zeros(np.broadcast({grid}).shape, dtype={NP[e.dtype]})"
        if grid
        else f"    {acc} = {NP[e.dtype]}(0)"
    )
    lo, hi = expr(e.lo), expr(e.hi)
    lines.append(f"    for i_{e.var} in range(int({lo}), int({hi})):")
    inner = _Expr({**expr.names, e.var: f"np.int32(i_{e.var})"}, expr.arrays, expr.scalar)
    lines.append(f"        {acc} = ({acc} + {inner(e.body)}).astype({NP[e.dtype]})")
    return acc


def _scalar(task: Task, arrays: dict[str, str], lines: list[str]) -> None:
    names = {n: f"np.int32({v})" for n, v in task.size_env.items()}
    expr = _Expr(names, arrays, scalar=True)
    _block(task.kernel.body, expr, lines, "    ")


def _block(body, expr: _Expr, lines: list[str], pad: str) -> None:
    for s in body:
        match s:
            case ir.For(var=v, lo=lo, hi=hi, body=inner):
                lines.append(f"{pad}for i_{v} in range(int({expr(lo)}), int({expr(hi)})):")
                expr.names[v] = f"np.int32(i_{v})"
                _block(inner, expr, lines, pad + "    ")
            case ir.Let(name=n, value=v) | ir.VarDecl(name=n, value=v):
                lines.append(f"{pad}v_{n} = {expr(v)}")
                expr.names[n] = f"v_{n}"
            case ir.Assign(name=n, op=op, value=v):
                value = expr(v) if op == "=" else f"({expr.names[n]} {op[:-1]} {expr(v)})"
                lines.append(f"{pad}{expr.names[n]} = {value}")
            case ir.Store(tensor=t, indices=idx, op=op, value=v):
                arr = expr.arrays[t]
                index = ", ".join(expr(i) for i in idx)
                inside = " and ".join(
                    f"0 <= {expr(i)} < {arr}.shape[{d}]" for d, i in enumerate(idx)
                )
                lines.append(f"{pad}if {inside}:")
                if op == "=":
                    lines.append(f"{pad}    {arr}[{index}] = {expr(v)}")
                elif op in ("max=", "min="):
                    fn = "np.fmax" if op == "max=" else "np.fmin"
                    lines.append(f"{pad}    {arr}[{index}] = {fn}({arr}[{index}], {expr(v)})")
                else:
                    lines.append(f"{pad}    {arr}[{index}] = {arr}[{index}] {op[:-1]} {expr(v)}")
            case ir.If(cond=c, then=then, orelse=orelse):
                lines.append(f"{pad}if {expr(c)}:")
                _block(then, expr, lines, pad + "    ")
                lines.append(f"{pad}    pass")
                if orelse:
                    lines.append(f"{pad}else:")
                    _block(orelse, expr, lines, pad + "    ")
                    lines.append(f"{pad}    pass")
            case _:
                raise NotImplementedError(type(s).__name__)


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
            arrays = {}
            for b in task.bindings:
                if b.region is not None:
                    arrays[b.param] = f"t_{b.region.tensor}"
            lines.append(f"    # task {task.name} ({task.kernel.name})")
            if _perfect_nest(task) is not None:
                _vectorised(task, arrays, lines)
            else:
                _scalar(task, arrays, lines)
    except NotImplementedError:
        return None
    outs = ", ".join(f"{t.name!r}: t_{t.name}" for t in graph.outputs)
    lines.append(f"    return {{{outs}}}")
    return "\n".join(lines) + "\n"


HELPERS = '''
def _int_div(a, b):
    """C division (truncating); x / 0 is 0."""
    a, b = np.asarray(a), np.asarray(b)
    q = np.abs(a.astype(np.int64)) // np.maximum(np.abs(b.astype(np.int64)), 1)
    q = np.where((a < 0) != (b < 0), -q, q)
    return np.where(b == 0, 0, q).astype(a.dtype)


def _int_rem(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.where(b == 0, 0, a - b * _int_div(a, b)).astype(a.dtype)


def _saturate(x, dtype):
    """Float to integer: truncate, saturate, NaN gives 0."""
    info = np.iinfo(dtype)
    v = np.where(np.isnan(x), 0.0, np.trunc(np.asarray(x, np.float64)))
    return np.clip(v, info.min, info.max).astype(dtype)


def _search(row, lo, hi, value):
    """Index of the last element <= value in row[lo:hi], clamped to [0, count - 2]."""
    start = int(np.clip(lo, 0, row.shape[0]))
    stop = int(np.clip(row.shape[0] if hi is None else hi, start, row.shape[0]))
    count = stop - start
    a, b = 0, count
    while a < b:
        mid = a + (b - a) // 2
        if row[start + min(max(mid, 0), max(count - 1, 0))] <= value:
            a = mid + 1
        else:
            b = mid
    return np.int32(min(max(a - 1, 0), max(count - 2, 0)))
'''
