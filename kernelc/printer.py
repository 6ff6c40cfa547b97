"""A readable text form of the IR, shown by ``kernelc build --emit ir``."""

from __future__ import annotations

from kernelc import ir
from kernelc.graph import TaskGraph
from kernelc.passes.access import summarise

_PRECEDENCE = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    "<": 3,
    "<=": 3,
    ">": 3,
    ">=": 3,
    "|": 4,
    "^": 5,
    "&": 6,
    "<<": 7,
    ">>": 7,
    "+": 8,
    "-": 8,
    "*": 9,
    "/": 9,
    "%": 9,
}


def expr_text(e: ir.Expr | ir.Slice, parent: int = 0) -> str:
    """Source-like text of an expression, with only the parentheses precedence needs."""
    match e:
        case ir.Const(value=v):
            text = str(v).lower() if isinstance(v, bool) else repr(v)
            return (
                text
                if e.dtype is None or e.dtype.value in ("i32", "f32", "bool")
                else (f"{e.dtype}({text})")
            )
        case ir.Name(name=n):
            return n
        case ir.Slice(lo=lo, hi=hi):
            return f"{expr_text(lo) if lo else ''}:{expr_text(hi) if hi else ''}"
        case ir.Load(tensor=t, indices=idx):
            return f"{t}[{', '.join(expr_text(i) for i in idx)}]"
        case ir.Search(tensor=t, indices=idx, value=v):
            return f"search({t}[{', '.join(expr_text(i) for i in idx)}], {expr_text(v)})"
        case ir.Unary(op=op, operand=a):
            return f"{op}{expr_text(a, 10)}"
        case ir.Binary(op=op, lhs=a, rhs=b):
            p = _PRECEDENCE[op]
            text = f"{expr_text(a, p)} {op} {expr_text(b, p + 1)}"
            return f"({text})" if p < parent else text
        case ir.Select(cond=c, if_true=a, if_false=b):
            return f"select({expr_text(c)}, {expr_text(a)}, {expr_text(b)})"
        case ir.Cast(to=to, operand=a):
            return f"{to}({expr_text(a)})"
        case ir.Intrinsic(fn=fn, args=args):
            return f"{fn}({', '.join(expr_text(a) for a in args)})"
        case ir.Reduce(op=op, var=v, lo=lo, hi=hi, body=body):
            text = f"{op}({v} in {expr_text(lo)} .. {expr_text(hi)}) {expr_text(body)}"
            return f"({text})" if parent else text
        case ir.Rand(key=k, counter=c, bits=bits):
            return f"{'randbits' if bits else 'rand'}({expr_text(k)}, {expr_text(c)})"
    raise TypeError(e)


def stmt_lines(s: ir.Stmt, indent: str = "") -> list[str]:
    match s:
        case ir.For(var=v, lo=lo, hi=hi, body=body, parallel=par):
            mark = {True: "  // parallel", False: "  // sequential", None: ""}[par]
            head = f"{indent}for {v} in {expr_text(lo)} .. {expr_text(hi)} {{{mark}"
            return [head, *block_lines(body, indent + "  "), f"{indent}}}"]
        case ir.Let(name=n, value=v, declared=d):
            typed = f": {d}" if d else ""
            return [f"{indent}let {n}{typed} = {expr_text(v)};"]
        case ir.VarDecl(name=n, value=v, declared=d):
            typed = f": {d}" if d else ""
            return [f"{indent}var {n}{typed} = {expr_text(v)};"]
        case ir.Assign(name=n, op=op, value=v):
            return [f"{indent}{n} {op} {expr_text(v)};"]
        case ir.Store(tensor=t, indices=idx, op=op, value=v):
            return [f"{indent}{t}[{', '.join(expr_text(i) for i in idx)}] {op} {expr_text(v)};"]
        case ir.If(cond=c, then=then, orelse=orelse):
            lines = [f"{indent}if {expr_text(c)} {{", *block_lines(then, indent + "  ")]
            if orelse:
                lines += [f"{indent}}} else {{", *block_lines(orelse, indent + "  ")]
            return [*lines, f"{indent}}}"]
    raise TypeError(s)


def block_lines(body: tuple[ir.Stmt, ...], indent: str) -> list[str]:
    return [line for s in body for line in stmt_lines(s, indent)]


def param_text(p: ir.Param) -> str:
    shape = f"[{', '.join(expr_text(d) for d in p.shape)}]" if p.shape else ""
    default = f" = {expr_text(p.default)}" if p.default is not None else ""
    return f"{p.name}: {p.dtype}{shape}{default}"


def kernel_text(k: ir.Kernel) -> str:
    params = ", ".join(param_text(p) for p in k.params)
    outs = ", ".join(param_text(p) for p in k.outputs)
    lines = [f"kernel {k.name}({params}) -> ({outs}) {{", *block_lines(k.body, "  "), "}"]
    return "\n".join(lines)


def graph_text(graph: TaskGraph) -> str:
    """The whole bound program: sizes, tensors, tasks with regions, edges and kernel bodies."""
    lines = [f"// kernelc IR of '{graph.name}' from {graph.filename}"]
    lines.append("sizes " + ", ".join(f"{n} = {v}" for n, v in graph.sizes) + ";")
    for t in graph.tensors:
        lines.append(f"tensor {t.name}: {t.dtype}{list(t.shape)}  // {t.role}, {t.nbytes} bytes")
    for s in graph.scalars:
        lines.append(f"scalar {param_text(s)}")
    lines.append("")
    deps = graph.dependencies
    for task in graph.tasks:
        lines.append(f"task {task.name} = {task.kernel.name}  // {task.span}")
        lines.append("  sizes " + ", ".join(f"{n} = {v}" for n, v in task.sizes))
        for b in task.bindings:
            if b.region is not None:
                lines.append(f"  {b.param} <- {b.region}")
            elif b.scalar is not None:
                lines.append(f"  {b.param} <- scalar {b.scalar}")
            else:
                lines.append(f"  {b.param} <- {b.constant!r}")
        for pred in deps.predecessors(task.name):
            edge = deps.edges[pred, task.name]
            lines.append(f"  after {pred}  // {edge['kind']} dependence on {edge['region']}")
        for acc in summarise(task.kernel):
            facts = [f"reads {acc.reads}", f"writes {acc.writes}"]
            if acc.reduction:
                facts.append("reduction")
            if acc.indirect:
                facts.append("indirect")
            if any(lo or hi for lo, hi in acc.halo):
                facts.append("halo " + " x ".join(f"-{lo}/+{hi}" for lo, hi in acc.halo))
            lines.append(f"  access {acc.tensor}: {', '.join(facts)}")
    lines.append("")
    seen = set()
    for task in graph.tasks:
        if task.kernel.name not in seen:
            seen.add(task.kernel.name)
            lines += [kernel_text(task.kernel), ""]
    return "\n".join(lines)
