"""Parse emitted CSL files back into the program model (the inverse of the backend's printer)."""

from __future__ import annotations

import posixpath
from functools import cache, lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedInput

from kernelc.csl import model as m
from kernelc.diagnostics import KernelcError, Span, register_source

GRAMMAR = Path(__file__).with_name("csl.lark")


@cache
def _parser() -> Lark:
    """LALR building a parse tree with positions; ``_ToModel`` turns it into model nodes."""
    return Lark(
        GRAMMAR.read_text(),
        parser="lalr",
        lexer="contextual",
        maybe_placeholders=True,
        propagate_positions=True,
    )


def _opt(items: list) -> tuple:
    return tuple(i for i in items if i is not None)


def _single(stmt: m.Stmt | tuple) -> tuple:
    """A statement body: a block is a tuple already, a brace-less statement becomes one."""
    return stmt if isinstance(stmt, tuple) else (stmt,)


@v_args(inline=True, meta=True)
class _ToModel(Transformer):
    """Parse tree -> model nodes, each with ``at`` set to where its text starts."""

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    def _at(self, meta) -> Span | None:
        return None if meta.empty else Span(self.file, meta.line, meta.column)

    # ---------------------------------------------------------------- declarations
    def start(self, _meta, *decls):
        return tuple(decls)

    def comment(self, meta, tok):
        return m.Comment(str(tok)[2:].removeprefix(" "), at=self._at(meta))

    def param_decl(self, meta, name, type_, default):
        return m.Param(str(name), type_, default, at=self._at(meta))

    def var_decl(self, meta, export, kind, name, type_, align, value):
        return m.VarDecl(
            str(name),
            type_,
            value,
            const=str(kind) == "const",
            export=export is not None,
            align=align,
            at=self._at(meta),
        )

    def align(self, _meta, value):
        return value

    def fn_decl(self, meta, export, name, params, ret, body):
        params = params or ()
        comptime = tuple(n for n, _t, ct in params if ct)
        return m.FnDecl(
            str(name),
            tuple((n, t) for n, t, _ct in params),
            ret,
            body,
            export=export is not None,
            comptime_params=comptime,
            at=self._at(meta),
        )

    def task_decl(self, meta, name, params, ret, body):
        if str(ret) != "void":
            raise _syntax(ret, "a task returns void")
        return m.TaskDecl(
            str(name), tuple((n, t) for n, t, _ct in params or ()), body, at=self._at(meta)
        )

    def fparams(self, _meta, *params):
        return _opt(list(params))

    def fparam(self, _meta, comptime, name, type_):
        return (str(name), type_, comptime is not None)

    def comptime_decl(self, meta, body):
        return m.Comptime(body, at=self._at(meta))

    comptime_stmt = comptime_decl

    def layout_decl(self, meta, body):
        return m.Layout(body, at=self._at(meta))

    def block(self, _meta, *stmts):
        return tuple(stmts)

    # ------------------------------------------------------------------ statements
    def single(self, _meta, stmt):
        return (stmt,)

    def assign_stmt(self, meta, target, op, value):
        return m.Assign(target, op, value, at=self._at(meta))

    def assign_op(self, _meta, tok):
        return str(tok)

    def expr_stmt(self, meta, e):
        return m.ExprStmt(e, at=self._at(meta))

    def if_stmt(self, meta, cond, then, orelse):
        return m.If(cond, _single(then), orelse or (), at=self._at(meta))

    def if_bare(self, meta, cond, then, orelse):
        return m.If(cond, (m.ExprStmt(then, at=then.at),), _single(orelse), at=self._at(meta))

    def else_part(self, _meta, body):
        return _single(body)

    def else_if(self, _meta, stmt):
        return (stmt,)

    def for_stmt(self, meta, it, var, index, body):
        return m.For(it, str(var), body, None if index is None else str(index), at=self._at(meta))

    def while_stmt(self, meta, cond, step, body):
        return m.While(cond, step, _single(body), at=self._at(meta))

    def while_step(self, meta, target, op, value):
        return m.Assign(target, op, value, at=self._at(meta))

    def break_stmt(self, meta):
        return m.Break(at=self._at(meta))

    def continue_stmt(self, meta):
        return m.Continue(at=self._at(meta))

    def return_stmt(self, meta, value):
        return m.Return(value, at=self._at(meta))

    def switch_stmt(self, meta, subject, *cases):
        return m.Switch(subject, _opt(list(cases)), at=self._at(meta))

    def switch_case(self, meta, *items):
        *values, body = items
        return m.SwitchCase(tuple(values), _case_body(body), at=self._at(meta))

    def switch_else(self, meta, body):
        return m.SwitchCase((), _case_body(body), at=self._at(meta))

    # ----------------------------------------------------------------------- types
    def named_t(self, meta, name):
        return m.Named(str(name), at=self._at(meta))

    def manyptr_t(self, meta, const, elem):
        return m.ManyPtrT(elem, const is not None, at=self._at(meta))

    def array_t(self, meta, *items):
        return m.ArrayT(tuple(items[:-1]), items[-1], at=self._at(meta))

    def ptr_t(self, meta, const, elem):
        return m.PtrT(elem, const is not None, at=self._at(meta))

    def fn_t(self, meta, *items):
        return m.FnT(_opt(list(items[:-1])), items[-1], at=self._at(meta))

    def task_t(self, meta, ret):
        if str(ret) != "void":
            raise _syntax(ret, "a task returns void")
        return m.TaskT(at=self._at(meta))

    def builtin_t(self, meta, tok, args):
        return m.ExprT(self.builtin(meta, tok, args), at=self._at(meta))

    # ----------------------------------------------------------------- expressions
    def if_expr(self, meta, cond, a, b):
        return m.IfExpr(cond, a, b, at=self._at(meta))

    def if_open(self, meta, cond, a, cond2, b):
        at = self._at(meta)
        return m.IfExpr(cond, a, m.IfExpr(cond2, b, None, at=cond2.at), at=at)

    def void_lit(self, meta):
        return m.Void(at=self._at(meta))

    def access_expr(self, meta, *items):
        names = tuple(str(i) for i in items if isinstance(i, Token) and i.type == "NAME")
        rest = [i for i in items if not (isinstance(i, Token) and i.type == "NAME")]
        return m.TensorAccess(names, tuple(rest[:-1]), rest[-1], at=self._at(meta))

    def binary(self, meta, lhs, op, rhs):
        return m.Binary(str(op), lhs, rhs, at=_tok_at(self.file, op))

    def unary(self, meta, op, operand):
        return m.Unary(str(op), operand, at=self._at(meta))

    def field(self, meta, obj, name):
        return m.Field(obj, str(name), at=self._at(meta))

    def index(self, meta, obj, *indices):
        return m.Index(obj, tuple(indices), at=self._at(meta))

    def call(self, meta, fn, args):
        return m.Call(fn, args or (), at=self._at(meta))

    def deref(self, meta, ptr, _tok):
        return m.Deref(ptr, at=self._at(meta))

    def int_lit(self, meta, tok):
        return m.Int(int(str(tok).replace("_", ""), 0), at=self._at(meta))

    def float_lit(self, meta, tok):
        return m.Float(float(tok), at=self._at(meta))

    def true_lit(self, meta):
        return m.Bool(True, at=self._at(meta))

    def false_lit(self, meta):
        return m.Bool(False, at=self._at(meta))

    def str_lit(self, meta, tok):
        at, body = self._at(meta), str(tok)[1:-1]
        unescape(body, at)  # the model keeps the source spelling; a bad escape is an error now
        return m.Str(body, at=at)

    def name(self, meta, tok):
        return m.Name(str(tok), at=self._at(meta))

    def builtin(self, meta, tok, args):
        return m.Builtin(str(tok)[1:], args or (), at=self._at(meta))

    def struct(self, meta, _open, *fields):
        return m.Struct(_opt(list(fields)), at=self._at(meta))

    def tuple(self, meta, _open, *items):
        return m.Tuple(_opt(list(items)), at=self._at(meta))

    def manyptr_expr(self, meta, elem):
        return m.TypeExpr(m.ManyPtrT(elem, at=self._at(meta)), at=self._at(meta))

    def array_expr(self, meta, *items):
        at = self._at(meta)
        return m.TypeExpr(m.ArrayT(tuple(items[:-1]), items[-1], at=at), at=at)

    def array_lit(self, meta, *items):
        n = next(i for i, x in enumerate(items) if not isinstance(x, m.Expr.__args__))
        at = self._at(meta)
        return m.ArrayLit(
            m.ArrayT(tuple(items[:n]), items[n], at=at), _opt(list(items[n + 1 :])), at=at
        )

    def ptr_expr(self, meta, elem):
        return m.TypeExpr(m.PtrT(elem, at=self._at(meta)), at=self._at(meta))

    def fn_expr(self, meta, *items):
        at = self._at(meta)
        return m.TypeExpr(m.FnT(_opt(list(items[:-1])), items[-1], at=at), at=at)

    def task_expr(self, meta, ret):
        return m.TypeExpr(self.task_t(meta, ret), at=self._at(meta))

    def enum_expr(self, meta, tag, *members):
        at = self._at(meta)
        return m.TypeExpr(m.EnumT(tag, _opt(list(members)), at=at), at=at)

    def enum_member(self, _meta, name, value):
        return (str(name), value)

    def args(self, _meta, *items):
        return _opt(list(items))

    def field_init(self, _meta, name, value):
        return (str(name), value)


def _case_body(body) -> tuple:
    """A switch case's body: a block, or one expression run as a statement."""
    return body if isinstance(body, tuple) else (m.ExprStmt(body, at=body.at),)


def _tok_at(file: str, tok: Token) -> Span:
    return Span(file, tok.line, tok.column)


class _SyntaxProblem(Exception):
    def __init__(self, tok: Token, message: str) -> None:
        super().__init__(message)
        self.tok, self.message = tok, message


def _syntax(tok: Token, message: str) -> _SyntaxProblem:
    return _SyntaxProblem(tok, message)


def parse_file(text: str, name: str) -> m.CslFile:
    """Parse one CSL file; syntax errors are located KernelcErrors in that file."""
    register_source(name, text)
    return _parse_cached(text, name)


@lru_cache(maxsize=64)
def _parse_cached(text: str, name: str) -> m.CslFile:
    """Files are immutable trees, so a file compiled and then run is parsed once."""
    try:
        decls = _ToModel(name).transform(_parser().parse(text))
    except UnexpectedInput as err:
        expected = sorted(getattr(err, "expected", None) or getattr(err, "allowed", None) or [])
        hint = f"; expected one of: {', '.join(expected[:8])}" if expected else ""
        raise KernelcError(
            f"CSL syntax error{hint}", Span(name, err.line or 1, err.column or 1)
        ) from None
    except _SyntaxProblem as err:
        raise KernelcError(err.message, Span(name, err.tok.line, err.tok.column)) from None
    except Exception as err:  # a transformer callback failed: lark wraps it
        inner = getattr(err, "orig_exc", None)
        if isinstance(inner, _SyntaxProblem):
            raise KernelcError(
                inner.message, Span(name, inner.tok.line, inner.tok.column)
            ) from None
        if isinstance(inner, KernelcError):
            raise inner from None
        raise
    return m.CslFile(name, decls)


def parse_program(directory: str | Path, layout: str = "layout.csl") -> m.Program:
    """Read a layout file, every PE program file it names with ``@set_tile_code`` and every
    program file it or they import, at any depth."""
    root = Path(directory)
    layout_file = parse_file((root / layout).read_text(), layout)
    todo = sorted(_named_files(layout_file, "set_tile_code", 2))
    todo += sorted(p for p in _named_files(layout_file, "import_module", 0) if p[0] != "<")
    files: dict[str, m.CslFile] = {}
    while todo:  # the tile files, then the program files they import, at any depth
        name = todo.pop()
        if name in files:
            continue
        files[name] = parse_file((root / name).read_text(), name)
        for path in _named_files(files[name], "import_module", 0):
            if not path.startswith("<"):
                todo.append(posixpath.normpath(posixpath.join(posixpath.dirname(name), path)))
    return m.Program(layout_file, tuple(files[n] for n in sorted(files)))


def _named_files(f: m.CslFile, builtin: str, position: int) -> set[str]:
    """The string literals a file passes as argument ``position`` of a builtin."""
    found: set[str] = set()

    def visit(node) -> None:
        if isinstance(node, m.Builtin) and node.name == builtin and len(node.args) > position:
            if isinstance(node.args[position], m.Str):
                found.add(node.args[position].value)
        if isinstance(node, tuple):
            for item in node:
                visit(item)
        elif hasattr(node, "__dataclass_fields__"):
            for key in node.__dataclass_fields__:
                visit(getattr(node, key))

    visit(f.decls)
    return found


ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def unescape(body: str, at: Span | None = None) -> str:
    """A string literal's characters, its escapes (\\n \\t \\r \\\\ \\" \\' \\xNN) replaced."""
    out, k = [], 0
    while k < len(body):
        ch = body[k]
        if ch != "\\":
            out.append(ch)
            k += 1
            continue
        code = body[k + 1]
        if code in ESCAPES:
            out.append(ESCAPES[code])
            k += 2
        elif code == "x" and len(body[k + 2 : k + 4]) == 2:
            try:
                out.append(chr(int(body[k + 2 : k + 4], 16)))
            except ValueError:
                raise KernelcError(f"invalid escape '\\{body[k + 1 : k + 4]}'", at) from None
            k += 4
        else:
            raise KernelcError(f"invalid escape '\\{code}' in a string literal", at)
    return "".join(out)
