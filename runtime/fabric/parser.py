"""Parse emitted CSL files back into the program model (the inverse of the backend's printer)."""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedInput

from kernelc.csl import model as m
from kernelc.diagnostics import KernelcError, Span, register_source

GRAMMAR = Path(__file__).with_name("csl.lark")


@cache
def _parser() -> Lark:
    """LALR with the transformer applied while parsing (no intermediate parse tree)."""
    return Lark(
        GRAMMAR.read_text(),
        parser="lalr",
        lexer="contextual",
        maybe_placeholders=True,
        transformer=_ToModel(),
    )


def _opt(items: list) -> tuple:
    return tuple(i for i in items if i is not None)


@v_args(inline=True)
class _ToModel(Transformer):
    # ---------------------------------------------------------------- declarations
    def start(self, *decls):
        return tuple(decls)

    def comment(self, tok):
        return m.Comment(str(tok)[2:].removeprefix(" "))

    def param_decl(self, name, type_, default):
        return m.Param(str(name), type_, default)

    def var_decl(self, kind, name, type_, value):
        return m.VarDecl(str(name), type_, value, const=str(kind) == "const")

    def fn_decl(self, name, params, ret, body):
        return m.FnDecl(str(name), params or (), ret, body)

    def task_decl(self, name, params, ret, body):
        if str(ret) != "void":
            raise _syntax(ret, "a task returns void")
        return m.TaskDecl(str(name), params or (), body)

    def fparams(self, *params):
        return tuple(params)

    def fparam(self, name, type_):
        return (str(name), type_)

    def comptime_decl(self, body):
        return m.Comptime(body)

    def layout_decl(self, body):
        return m.Layout(body)

    def block(self, *stmts):
        return tuple(stmts)

    # ------------------------------------------------------------------ statements
    def assign_stmt(self, target, op, value):
        return m.Assign(target, op, value)

    def assign_op(self, tok):
        return str(tok)

    def expr_stmt(self, e):
        return m.ExprStmt(e)

    def if_stmt(self, cond, then, orelse):
        return m.If(cond, then, orelse or ())

    def else_part(self, body):
        return body

    def else_if(self, stmt):
        return (stmt,)

    def for_stmt(self, it, var, body):
        return m.For(it, str(var), body)

    def while_stmt(self, cond, step, body):
        return m.While(cond, step, body)

    def while_step(self, target, op, value):
        return m.Assign(target, op, value)

    def return_stmt(self, value):
        return m.Return(value)

    # ----------------------------------------------------------------------- types
    def named_t(self, name):
        return m.Named(str(name))

    def manyptr_t(self, elem):
        return m.ManyPtrT(elem)

    def array_t(self, *items):
        return m.ArrayT(tuple(items[:-1]), items[-1])

    def ptr_t(self, elem):
        return m.PtrT(elem)

    def fn_t(self, *items):
        return m.FnT(_opt(list(items[:-1])), items[-1])

    # ----------------------------------------------------------------- expressions
    def if_expr(self, cond, a, b):
        return m.IfExpr(cond, a, b)

    def access_expr(self, *items):
        names = tuple(str(i) for i in items if isinstance(i, Token) and i.type == "NAME")
        rest = [i for i in items if not (isinstance(i, Token) and i.type == "NAME")]
        return m.TensorAccess(names, tuple(rest[:-1]), rest[-1])

    def binary(self, lhs, op, rhs):
        return m.Binary(str(op), lhs, rhs)

    def unary(self, op, operand):
        return m.Unary(str(op), operand)

    def field(self, obj, name):
        return m.Field(obj, str(name))

    def index(self, obj, *indices):
        return m.Index(obj, tuple(indices))

    def call(self, fn, args):
        return m.Call(fn, args or ())

    def deref(self, ptr, _tok):
        return m.Deref(ptr)

    def int_lit(self, tok):
        return m.Int(int(tok))

    def float_lit(self, tok):
        return m.Float(float(tok))

    def true_lit(self):
        return m.Bool(True)

    def false_lit(self):
        return m.Bool(False)

    def str_lit(self, tok):
        return m.Str(str(tok)[1:-1])

    def name(self, tok):
        return m.Name(str(tok))

    def builtin(self, tok, args):
        return m.Builtin(str(tok)[1:], args or ())

    def struct(self, _open, *fields):
        return m.Struct(_opt(list(fields)))

    def tuple(self, _open, *items):
        return m.Tuple(_opt(list(items)))

    def manyptr_expr(self, elem):
        return m.TypeExpr(m.ManyPtrT(elem))

    def array_expr(self, *items):
        return m.TypeExpr(m.ArrayT(tuple(items[:-1]), items[-1]))

    def array_lit(self, *items):
        n = next(i for i, x in enumerate(items) if not isinstance(x, m.Expr.__args__))
        return m.ArrayLit(m.ArrayT(tuple(items[:n]), items[n]), tuple(items[n + 1 :]))

    def ptr_expr(self, elem):
        return m.TypeExpr(m.PtrT(elem))

    def fn_expr(self, *items):
        return m.TypeExpr(m.FnT(_opt(list(items[:-1])), items[-1]))

    def args(self, *items):
        return tuple(items)

    def field_init(self, name, value):
        return (str(name), value)


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
        decls = _parser().parse(text)
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
        raise
    return m.CslFile(name, decls)


def parse_program(directory: str | Path, layout: str = "layout.csl") -> m.Program:
    """Read a layout file and every PE program file it names with ``@set_tile_code``."""
    root = Path(directory)
    layout_file = parse_file((root / layout).read_text(), layout)
    names = sorted(_tile_code_files(layout_file))
    pe_files = tuple(parse_file((root / n).read_text(), n) for n in names)
    return m.Program(layout_file, pe_files)


def _tile_code_files(f: m.CslFile) -> set[str]:
    found: set[str] = set()

    def visit(node) -> None:
        if isinstance(node, m.Builtin) and node.name == "set_tile_code" and len(node.args) >= 3:
            if isinstance(node.args[2], m.Str):
                found.add(node.args[2].value)
        if isinstance(node, tuple):
            for item in node:
                visit(item)
        elif hasattr(node, "__dataclass_fields__"):
            for key in node.__dataclass_fields__:
                visit(getattr(node, key))

    visit(f.decls)
    return found
