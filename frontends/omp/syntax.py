"""The parse of a C file into the syntax tree (``ctree.py``), with located syntax errors.

``#pragma omp`` lines are lexed whole, parsed again with the same grammar from their ``omp``
word, and attached to the statement that follows them; non-OpenMP pragmas are ignored with a
warning.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedInput

from kernelc.diagnostics import KernelcError, Span, warn
from kernelc.frontends.omp.ctree import (
    Assign,
    Binary,
    Block,
    Call,
    Cast,
    Clause,
    Comma,
    Construct,
    Decl,
    Declarator,
    Directive,
    Empty,
    Expr,
    ExprStmt,
    FloatLit,
    For,
    Function,
    If,
    IncDec,
    Index,
    InitList,
    IntLit,
    Name,
    Other,
    Param,
    Pragma,
    Return,
    Section,
    Stmt,
    Ternary,
    TranslationUnit,
    TypeName,
    Unary,
    Unsupported,
    is_standalone,
)
from kernelc.syntax_errors import TOKEN_WORDS, syntax_error, unwrap_visit_errors

GRAMMAR = Path(__file__).with_name("c.lark")

# ------------------------------------------------------------------------------------ parse


@cache
def _parser() -> Lark:
    return Lark(
        GRAMMAR.read_text(),
        parser="lalr",
        start=["start", "pragma", "macro"],
        propagate_positions=True,
        maybe_placeholders=False,
    )


_WORDS = {
    **TOKEN_WORDS,
    "TYPE": "a type",
    "QUAL": "a qualifier",
    "ASSIGN_OP": "'='",
    "$END": "end of input",
}


def parse_file(text: str, filename: str) -> TranslationUnit:
    """Parse a C file; syntax errors are located KernelcErrors."""
    tree = _parse(text, "start", Span(filename, 1, 1), text)
    with unwrap_visit_errors():
        return _ToSyntax(filename, text).transform(tree)


def parse_macro(body: str, origin: Span, filename: str) -> Expr:
    """Parse the body of an object-like macro as an expression."""
    tree = _parse(body, "macro", origin, body)
    with unwrap_visit_errors():
        return _ToSyntax(filename, body, origin).transform(tree)


def _parse(text: str, start: str, origin: Span, source: str) -> Tree:
    try:
        return _parser().parse(text, start=start)
    except UnexpectedInput as exc:
        place = functools.partial(_shift, origin)
        raise syntax_error(exc, source, _parser(), _WORDS, place, end="end of input") from None


def _shift(origin: Span, line: int, col: int, end_line: int = 0, end_col: int = 0) -> Span:
    """A span inside a text that starts at ``origin`` (for pragma and macro sub-parses)."""

    def one(ln: int, c: int) -> tuple[int, int]:
        return origin.line + ln - 1, (origin.col + c - 1 if ln == 1 else c)

    a_line, a_col = one(line, col)
    if end_line:
        b_line, b_col = one(end_line, end_col)
        return Span(origin.file, a_line, a_col, b_line, b_col)
    return Span(origin.file, a_line, a_col)


@v_args(meta=True)
class _ToSyntax(Transformer):
    def __init__(self, filename: str, text: str, origin: Span | None = None) -> None:
        super().__init__()
        self.filename = filename
        self.text = text
        self.origin = origin

    def sp(self, meta_or_token: object) -> Span:
        if isinstance(meta_or_token, Token):
            line, col = meta_or_token.line, meta_or_token.column
            end_line, end_col = meta_or_token.end_line, meta_or_token.end_column
        else:
            meta = meta_or_token
            if getattr(meta, "empty", True):
                return self.origin or Span(self.filename, 1, 1)
            line, col, end_line, end_col = meta.line, meta.column, meta.end_line, meta.end_column
        if self.origin is not None:
            return _shift(self.origin, line, col, end_line, end_col)
        return Span(self.filename, line, col, end_line, end_col)

    # ---- top level
    def start(self, meta, items):
        return TranslationUnit(tuple(items))

    def directive(self, meta, items):
        return Directive(str(items[0]), self.sp(items[0]))

    def top_pragma(self, meta, items):
        return self._pragma(items[0])

    def function(self, meta, items):
        words, (stars, name_token), *rest = items
        params = rest[0] if len(rest) == 2 else ()
        return Function(str(name_token), words, stars, params, rest[-1], self.sp(name_token))

    def prototype(self, meta, items):
        words, (stars, name_token), *rest = items
        params = rest[0] if rest else ()
        return Function(str(name_token), words, stars, params, None, self.sp(name_token))

    def params(self, meta, items):
        return tuple(items)

    def param(self, meta, items):
        words = items[0]
        stars = sum(1 for i in items[1:] if isinstance(i, Token) and i.type == "STAR")
        name = next((i for i in items[1:] if isinstance(i, Token) and i.type == "NAME"), None)
        dims = tuple(i.value for i in items[1:] if isinstance(i, _Dim))
        span = self.sp(name) if name is not None else self.sp(meta)
        return Param(str(name) if name is not None else None, words, stars, dims, span)

    def array_dim(self, meta, items):
        exprs = [i for i in items if not (isinstance(i, Token) and i.type == "QUAL")]
        return _Dim(exprs[0] if exprs else None)

    def specs(self, meta, items):
        return tuple(str(t) for t in items)

    def declarator(self, meta, items):
        stars = sum(1 for i in items if isinstance(i, Token) and i.type == "STAR")
        return stars, items[-1]

    # ---- statements
    def block(self, meta, items):
        return Block(self._attach(items), self.sp(meta))

    def body(self, meta, items):
        attached = self._attach(items)
        return attached[0]

    def _attach(self, items: list) -> tuple[Stmt, ...]:
        """Attach each construct pragma to the statement after it."""
        out: list[Stmt] = []
        pending: list[Pragma] = []
        for item in items:
            if isinstance(item, Token) and item.type == "PRAGMA":
                pragma = self._pragma(item)
                if pragma is None:
                    continue
                if is_standalone(pragma):
                    if pending:
                        raise _needs_statement(pending[-1])
                    out.append(Construct(pragma, None, pragma.span))
                else:
                    pending.append(pragma)
                continue
            stmt = item
            for pragma in reversed(pending):
                stmt = Construct(pragma, stmt, pragma.span)
            pending.clear()
            out.append(stmt)
        if pending:
            raise _needs_statement(pending[-1])
        return tuple(out)

    def pragma_item(self, meta, items):
        return items[0]

    def expr_stmt(self, meta, items):
        return ExprStmt(items[0], self.sp(meta))

    def if_stmt(self, meta, items):
        cond, then, *rest = items
        return If(cond, then, rest[0] if rest else None, self.sp(meta))

    def for_stmt(self, meta, items):
        init, cond, step, body = items
        return For(init, cond, step, body, self.sp(meta))

    def for_decl(self, meta, items):
        words, *declarators = items
        return Decl(words, tuple(declarators), self.sp(meta))

    def opt_expr(self, meta, items):
        return items[0] if items else None

    def while_stmt(self, meta, items):
        return Unsupported("while", self.sp(meta))

    def do_stmt(self, meta, items):
        return Unsupported("do", self.sp(meta))

    def switch_stmt(self, meta, items):
        return Unsupported("switch", self.sp(meta))

    def return_stmt(self, meta, items):
        return Return(items[0] if items else None, self.sp(meta))

    def goto_stmt(self, meta, items):
        return Unsupported("goto", self.sp(meta))

    def label_stmt(self, meta, items):
        return Unsupported("label", self.sp(items[0]))

    def break_stmt(self, meta, items):
        return Unsupported("break", self.sp(meta))

    def continue_stmt(self, meta, items):
        return Unsupported("continue", self.sp(meta))

    def empty_stmt(self, meta, items):
        return Empty(self.sp(meta))

    def declaration(self, meta, items):
        words, *declarators = items
        return Decl(words, tuple(declarators), self.sp(meta))

    def init_declarator(self, meta, items):
        (stars, name), *rest = items
        dims = tuple(i.value for i in rest if isinstance(i, _Dim))
        init = None
        if rest and not isinstance(rest[-1], _Dim):
            op = next(i for i in rest if isinstance(i, Token) and i.type == "ASSIGN_OP")
            if str(op) != "=":
                raise KernelcError(f"expected '=' in a declaration, got '{op}'", self.sp(op))
            init = rest[-1]
        return Declarator(str(name), stars, dims, init, self.sp(name))

    def init_list(self, meta, items):
        return InitList(tuple(items), self.sp(meta))

    # ---- expressions
    def comma(self, meta, items):
        return Comma(items[0], items[1], self.sp(meta))

    def assign(self, meta, items):
        target, op, value = items
        return Assign(str(op), target, value, self.sp(op))

    def ternary(self, meta, items):
        return Ternary(items[0], items[1], items[2], self.sp(meta))

    def binary(self, meta, items):
        lhs, op, rhs = items
        return Binary(str(op), lhs, rhs, self.sp(op))

    def cast(self, meta, items):
        return Cast(items[0], items[1], self.sp(meta))

    def type_name(self, meta, items):
        words = items[0]
        return TypeName(words, len(items) - 1, self.sp(meta))

    def unary(self, meta, items):
        op, operand = items
        return Unary(str(op), operand, self.sp(op))

    def deref(self, meta, items):
        return Unary("*", items[1], self.sp(items[0]))

    def address_of(self, meta, items):
        return Unary("&", items[1], self.sp(items[0]))

    def pre_incdec(self, meta, items):
        return IncDec(str(items[0]), items[1], True, self.sp(meta))

    def post_incdec(self, meta, items):
        return IncDec(str(items[1]), items[0], False, self.sp(meta))

    def sizeof_expr(self, meta, items):
        return Other("sizeof", self.sp(meta))

    def sizeof_type(self, meta, items):
        return Other("sizeof", self.sp(meta))

    def index(self, meta, items):
        return Index(items[0], items[1], self.sp(meta))

    def section(self, meta, items):
        return Section(items[0], items[1], self.sp(meta))

    def call(self, meta, items):
        fn = items[0]
        args = tuple(items[1]) if len(items) > 1 else ()
        return Call(fn, args, self.sp(meta))

    def args(self, meta, items):
        return list(items)

    def member(self, meta, items):
        return Other("a member access", self.sp(meta))

    def name(self, meta, items):
        return Name(str(items[0]), self.sp(items[0]))

    def int_lit(self, meta, items):
        text = str(items[0])
        digits = text.rstrip("uUlL")
        if _octal(digits) and not set(digits) <= set("01234567"):
            bad = next(ch for ch in digits if ch in "89")
            raise KernelcError(
                f"invalid digit '{bad}' in octal constant '{digits}'", self.sp(items[0])
            )
        return IntLit(
            int(digits, 0) if not _octal(digits) else int(digits, 8),
            text[len(digits) :].lower(),
            self.sp(items[0]),
        )

    def float_lit(self, meta, items):
        text = str(items[0])
        digits = text.rstrip("fFlL")
        return FloatLit(float(digits), text, text[len(digits) :].lower(), self.sp(items[0]))

    def string_lit(self, meta, items):
        return Other("a string", self.sp(meta))

    def char_lit(self, meta, items):
        return Other("a character constant", self.sp(items[0]))

    def macro(self, meta, items):
        return items[0]

    # ---- pragmas
    def _pragma(self, token: Token) -> Pragma | None:
        """Parse one pragma line; non-OpenMP pragmas are ignored with a warning."""
        text = str(token)
        span = self.sp(token)
        head = text[1:].lstrip()[len("pragma") :]
        words = head.split()
        if not words or words[0] != "omp":
            what = words[0] if words else ""
            if what != "once":
                warn(f"'#pragma {what}' is not an OpenMP pragma; kernelc ignores it", span)
            return None
        offset = text.index("omp", text.index("pragma") + len("pragma"))
        origin = _shift(span, 1, offset + 1)
        tree = _parse(text[offset:], "pragma", origin, text[offset:])
        return _ToPragma(self.filename, text[offset:], origin, span).transform(tree)


@v_args(meta=True)
class _ToPragma(_ToSyntax):
    def __init__(self, filename: str, text: str, origin: Span, line_span: Span) -> None:
        super().__init__(filename, text, origin)
        self.line_span = line_span

    def pragma(self, meta, items):
        words: list[Clause] = []
        clauses: list[Clause] = []
        for item in items:
            names = [w.name for w in words]
            if not clauses and not item.has_parens and _is_directive_word(item.name, names):
                words.append(item)
            else:
                clauses.append(item)
        if not words:
            raise KernelcError("expected an OpenMP directive after '#pragma omp'", self.line_span)
        first, last = words[0].span, words[-1].span
        words_span = Span(first.file, first.line, first.col, last.end_line, last.end_col)
        return Pragma(tuple(w.name for w in words), tuple(clauses), self.line_span, words_span)

    def word(self, meta, items):
        return Clause(str(items[0]), None, (), False, self.sp(items[0]))

    def for_word(self, meta, items):
        return Clause("for", None, (), False, self.sp(meta))

    def clause(self, meta, items):
        name, (modifier, args) = items
        return Clause(str(name), modifier, tuple(args), True, self.sp(meta))

    def if_clause(self, meta, items):
        modifier, args = items[0]
        return Clause("if", modifier, tuple(args), True, self.sp(meta))

    def default_clause(self, meta, items):
        modifier, args = items[0]
        return Clause("default", modifier, tuple(args), True, self.sp(meta))

    def clause_args(self, meta, items):
        if len(items) == 2:
            return str(items[0]), items[1]
        return None, items[0]


# Directive words: a pragma's leading words that name constructs rather than clauses.
DIRECTIVE_WORDS = {
    "target",
    "teams",
    "distribute",
    "parallel",
    "for",
    "simd",
    "task",
    "taskwait",
    "barrier",
    "single",
    "masked",
    "master",
    "taskloop",
    "taskgroup",
    "taskyield",
    "critical",
    "atomic",
    "ordered",
    "sections",
    "section",
    "flush",
    "loop",
    "declare",
    "data",
    "enter",
    "exit",
    "update",
    "threadprivate",
    "cancel",
    "cancellation",
    "point",
    "scan",
    "depobj",
    "requires",
    "error",
    "allocate",
    "workshare",
    "metadirective",
    "tile",
    "unroll",
    "interop",
    "dispatch",
    "scope",
    "nothing",
    "assume",
    "variant",
    "reduction",
    "mapper",
}


def _is_directive_word(name: str, words: list[str]) -> bool:
    """Whether a bare word continues the directive name (it does until the first clause)."""
    if name not in DIRECTIVE_WORDS:
        return False
    if name == "reduction" or name == "mapper" or name == "variant":
        return bool(words) and words[-1] == "declare"
    return True


def _needs_statement(pragma: Pragma) -> KernelcError:
    return KernelcError(
        f"'#pragma omp {pragma.directive}' must be followed by the statement it applies to",
        pragma.words_span,
    )


def _octal(digits: str) -> bool:
    return len(digits) > 1 and digits[0] == "0" and digits[1] not in "xX"


@dataclass(frozen=True)
class _Dim:
    value: Expr | None
