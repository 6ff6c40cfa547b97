"""The CSL printer: program model -> source text, deterministic and readable.

Parentheses are printed only where precedence needs them, which is what lets the fabric
simulator's parser rebuild exactly the same tree (see ``model``). Long struct literals are broken
over several lines the way the SDK examples write ``@set_tile_code`` parameters.
"""

from __future__ import annotations

import re

from kernelc.csl import model as m

INDENT = "  "
WIDTH = 100

# Zig-style precedence, loosest first; postfix forms (calls, indexing, fields) bind tightest.
PRECEDENCE = {
    "or": 1,
    "and": 2,
    "==": 3,
    "!=": 3,
    "<": 3,
    ">": 3,
    "<=": 3,
    ">=": 3,
    "&": 4,
    "^": 4,
    "|": 4,
    "<<": 5,
    ">>": 5,
    "+": 6,
    "-": 6,
    "*": 7,
    "/": 7,
    "%": 7,
}
COMPARISONS = {"==", "!=", "<", ">", "<=", ">="}
UNARY_PREC = 8
POSTFIX_PREC = 9
# What may stand between the quotes of a string literal (as the parser's STRING token reads it).
STRING_BODY = re.compile(r'([^"\\\n]|\\.)*')


def type_text(t: m.Type) -> str:
    match t:
        case m.Named(name=n):
            return n
        case m.ArrayT(dims=dims, elem=elem):
            return f"[{', '.join(expr_text(d) for d in dims)}]{type_text(elem)}"
        case m.ManyPtrT(elem=elem, const=const):
            return f"[*]{'const ' if const else ''}{type_text(elem)}"
        case m.PtrT(elem=elem, const=const):
            return f"*{'const ' if const else ''}{type_text(elem)}"
        case m.FnT(params=params, ret=ret):
            return f"fn({', '.join(type_text(p) for p in params)}){type_text(ret)}"
        case m.TaskT():
            return "task () void"
        case m.ExprT(expr=e):
            return expr_text(e)
        case m.EnumT(tag=tag, members=members):
            items = ", ".join(n if v is None else f"{n} = {expr_text(v)}" for n, v in members)
            return f"enum({type_text(tag)}) {{ {items} }}"
    raise TypeError(t)


def _prec(e: m.Expr) -> int:
    match e:
        case m.Binary(op=op):
            return PRECEDENCE[op]
        case m.Unary():
            return UNARY_PREC
        case m.IfExpr() | m.TensorAccess():
            return 0
    return POSTFIX_PREC


def _float_text(value: float) -> str:
    text = repr(float(value))
    if text in ("inf", "nan") or text.startswith("-"):
        raise ValueError(f"CSL literal must be finite and non-negative: {value}")
    return text


def expr_text(e: m.Expr, indent: str = "") -> str:
    """Source text of an expression; ``indent`` is the current line's indentation."""
    match e:
        case m.Int(value=v):
            if v < 0:
                raise ValueError("negative literal; use model.lit")
            return str(v)
        case m.Float(value=v):
            return _float_text(v)
        case m.Bool(value=v):
            return "true" if v else "false"
        case m.Str(value=v):
            if not STRING_BODY.fullmatch(v):
                raise ValueError(f"string literal cannot hold bare quotes or newlines: {v!r}")
            return f'"{v}"'
        case m.Name(id=n):
            return n
        case m.Field(obj=obj, name=n):
            return f"{_postfix_operand(obj, indent)}.{n}"
        case m.Index(obj=obj, indices=idx):
            inner = ", ".join(expr_text(i, indent) for i in idx)
            return f"{_postfix_operand(obj, indent)}[{inner}]"
        case m.Deref(ptr=p):
            return f"{_postfix_operand(p, indent)}.*"
        case m.Unary(op=op, operand=a):
            text = expr_text(a, indent)
            if _prec(a) < UNARY_PREC or isinstance(a, m.Unary):
                text = f"({text})"
            return f"{op}{text}"
        case m.Binary(op=op, lhs=lhs, rhs=rhs):
            p = PRECEDENCE[op]
            left, right = expr_text(lhs, indent), expr_text(rhs, indent)
            lp, rp = _prec(lhs), _prec(rhs)
            if lp < p or (lp == p and op in COMPARISONS):
                left = f"({left})"
            if rp <= p:
                right = f"({right})"
            return f"{left} {op} {right}"
        case m.Call(fn=fn, args=args):
            return f"{_postfix_operand(fn, indent)}({_args(args, indent)})"
        case m.Builtin(name=n, args=args):
            return f"@{n}({_args(args, indent)})"
        case m.Struct(fields=fields):
            if not fields:
                return ".{}"
            parts = [f".{k} = {expr_text(v, indent + INDENT)}" for k, v in fields]
            flat = ".{ " + ", ".join(parts) + " }"
            if len(indent) + len(flat) <= WIDTH and "\n" not in flat:
                return flat
            inner = indent + INDENT
            return ".{\n" + "".join(f"{inner}{p},\n" for p in parts) + indent + "}"
        case m.Tuple(items=items):
            return ".{ " + ", ".join(expr_text(i, indent) for i in items) + " }"
        case m.IfExpr(cond=c, then=a, orelse=None):
            return f"if ({expr_text(c, indent)}) {_branch(a, indent, True)}"
        case m.IfExpr(cond=c, then=a, orelse=b):
            return (
                f"if ({expr_text(c, indent)}) {_branch(a, indent)} else {_branch(b, indent, True)}"
            )
        case m.TensorAccess(vars=vs, extents=ext, target=target):
            return (
                f"|{', '.join(vs)}|{{{', '.join(expr_text(x, indent) for x in ext)}}} -> "
                f"{_postfix_operand(target, indent)}"
            )
        case m.ArrayLit(type=t, items=items):
            return f"{type_text(t)}{{ {', '.join(expr_text(i, indent) for i in items)} }}"
        case m.TypeExpr(type=t):
            return type_text(t)
        case m.Void():
            return "{}"
    raise TypeError(e)


def _branch(e: m.Expr, indent: str, last: bool = False) -> str:
    text = expr_text(e, indent)
    if isinstance(e, m.TensorAccess) or (isinstance(e, m.IfExpr) and not last):
        return f"({text})"
    return text


def _postfix_operand(e: m.Expr, indent: str) -> str:
    text = expr_text(e, indent)
    return text if _prec(e) == POSTFIX_PREC else f"({text})"


def _args(args: tuple[m.Expr, ...], indent: str) -> str:
    return ", ".join(expr_text(a, indent) for a in args)


# ------------------------------------------------------------------------------- statements


def _block(body: tuple[m.Stmt, ...], indent: str) -> list[str]:
    lines: list[str] = []
    for stmt in body:
        lines.extend(stmt_lines(stmt, indent))
    return lines


def stmt_lines(s: m.Stmt, indent: str) -> list[str]:
    inner = indent + INDENT
    match s:
        case m.Comment(text=t):
            if "\n" in t:
                raise ValueError("comment text must be one line")
            return [f"{indent}// {t}".rstrip()]
        case m.VarDecl():
            return [indent + _var_text(s, indent)]
        case m.Assign(target=t, op=op, value=v):
            return [f"{indent}{expr_text(t, indent)} {op} {expr_text(v, indent)};"]
        case m.ExprStmt(expr=e):
            return [f"{indent}{expr_text(e, indent)};"]
        case m.If():
            return _if_lines(s, indent, indent)
        case m.For(iter=it, var=v, body=body, index=index):
            capture = v if index is None else f"{v}, {index}"
            head = f"{indent}for ({expr_text(it, indent)}) |{capture}| {{"
            return [head, *_block(body, inner), f"{indent}}}"]
        case m.While(cond=c, step=step, body=body):
            tail = ""
            if step is not None:
                tail = f" : ({expr_text(step.target)} {step.op} {expr_text(step.value)})"
            head = f"{indent}while ({expr_text(c, indent)}){tail} {{"
            return [head, *_block(body, inner), f"{indent}}}"]
        case m.Return(value=v):
            return [f"{indent}return;" if v is None else f"{indent}return {expr_text(v, indent)};"]
        case m.Break():
            return [f"{indent}break;"]
        case m.Continue():
            return [f"{indent}continue;"]
        case m.Switch(subject=subject, cases=cases):
            lines = [f"{indent}switch ({expr_text(subject, indent)}) {{"]
            for case in cases:
                head = ", ".join(expr_text(v, inner) for v in case.values) or "else"
                lines += [f"{inner}{head} => {{", *_block(case.body, inner + INDENT), f"{inner}}},"]
            return [*lines, f"{indent}}}"]
        case m.Comptime(body=body):
            return [f"{indent}comptime {{", *_block(body, inner), f"{indent}}}"]
    raise TypeError(s)


def _if_lines(s: m.If, indent: str, lead: str) -> list[str]:
    inner = indent + INDENT
    lines = [f"{lead}if ({expr_text(s.cond, indent)}) {{", *_block(s.then, inner)]
    if not s.orelse:
        return [*lines, f"{indent}}}"]
    if len(s.orelse) == 1 and isinstance(s.orelse[0], m.If):
        chained = _if_lines(s.orelse[0], indent, "")
        return [*lines, f"{indent}}} else {chained[0]}", *chained[1:]]
    return [*lines, f"{indent}}} else {{", *_block(s.orelse, inner), f"{indent}}}"]


def _var_text(s: m.VarDecl, indent: str) -> str:
    text = f"{'export ' if s.export else ''}{'const' if s.const else 'var'} {s.name}"
    if s.type is not None:
        text += f": {type_text(s.type)}"
    if s.align is not None:
        text += f" align({expr_text(s.align)})"
    if s.value is not None:
        text += f" = {expr_text(s.value, indent)}"
    return text + ";"


def _params(params: tuple[tuple[str, m.Type], ...], comptime: tuple[str, ...] = ()) -> str:
    return ", ".join(
        f"{'comptime ' if n in comptime else ''}{n}: {type_text(t)}" for n, t in params
    )


def decl_lines(d: m.Decl) -> list[str]:
    match d:
        case m.Comment() | m.VarDecl():
            return stmt_lines(d, "")
        case m.Param(name=n, type=t, default=default):
            head = n if t is None else f"{n}: {type_text(t)}"
            tail = "" if default is None else f" = {expr_text(default)}"
            return [f"param {head}{tail};"]
        case m.FnDecl(name=n, params=params, ret=ret, body=body):
            lead = "export fn" if d.export else "fn"
            sig = f"{lead} {n}({_params(params, d.comptime_params)}) {type_text(ret)} {{"
            return [sig, *_block(body, INDENT), "}"]
        case m.TaskDecl(name=n, params=params, body=body):
            return [f"task {n}({_params(params)}) void {{", *_block(body, INDENT), "}"]
        case m.Comptime():
            return stmt_lines(d, "")
        case m.Layout(body=body):
            return ["layout {", *_block(body, INDENT), "}"]
    raise TypeError(d)


_SIMPLE = (m.Param, m.VarDecl)


def file_text(f: m.CslFile) -> str:
    """The text of one CSL file. Blank lines separate groups; comments stick to what follows."""
    lines: list[str] = []
    previous: m.Decl | None = None
    for d in f.decls:
        if previous is not None and not isinstance(previous, m.Comment):
            if not (isinstance(d, _SIMPLE) and type(d) is type(previous)):
                lines.append("")
        lines.extend(decl_lines(d))
        previous = d
    return "\n".join(lines) + "\n"


def program_files(p: m.Program) -> dict[str, str]:
    """File name -> text for every CSL file of a program."""
    return {f.name: file_text(f) for f in (p.layout, *p.pe_files)}
