"""The C syntax tree of the OpenMP frontend.

It is close to the source: it keeps forms that kernelc rejects (pointers, ``while``, ``goto``...)
so that the lowering can reject them with an error at the construct. ``#pragma omp`` lines are
attached to the statement that follows them (``Construct``).
"""

from __future__ import annotations

from dataclasses import dataclass

from kernelc.diagnostics import Span

# ------------------------------------------------------------------------------ expressions


@dataclass(frozen=True)
class Name:
    name: str
    span: Span


@dataclass(frozen=True)
class IntLit:
    value: int
    suffix: str  # lower-case suffix letters, e.g. "" or "u"
    span: Span


@dataclass(frozen=True)
class FloatLit:
    value: float
    text: str
    suffix: str  # "f" for float, "" for double, "l" for long double
    span: Span


@dataclass(frozen=True)
class Other:
    """A form kernelc parses only to reject: a string, a character, sizeof, a member access..."""

    what: str
    span: Span


@dataclass(frozen=True)
class Unary:
    op: str  # "-", "+", "!", "~", "*" (dereference), "&" (address of)
    operand: Expr
    span: Span


@dataclass(frozen=True)
class IncDec:
    op: str  # "++" or "--"
    operand: Expr
    prefix: bool
    span: Span


@dataclass(frozen=True)
class Binary:
    op: str
    lhs: Expr
    rhs: Expr
    span: Span


@dataclass(frozen=True)
class Ternary:
    cond: Expr
    if_true: Expr
    if_false: Expr
    span: Span


@dataclass(frozen=True)
class TypeName:
    words: tuple[str, ...]  # type and qualifier words in source order
    stars: int
    span: Span


@dataclass(frozen=True)
class Cast:
    to: TypeName
    operand: Expr
    span: Span


@dataclass(frozen=True)
class Section:
    """``lo:length`` inside brackets: an OpenMP array section (only valid in clauses)."""

    lo: Expr | None
    length: Expr | None
    span: Span


@dataclass(frozen=True)
class Index:
    base: Expr
    index: Expr | Section
    span: Span


@dataclass(frozen=True)
class Call:
    fn: Expr
    args: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class Assign:
    op: str  # "=", "+=", ...
    target: Expr
    value: Expr
    span: Span


@dataclass(frozen=True)
class Comma:
    lhs: Expr
    rhs: Expr
    span: Span


@dataclass(frozen=True)
class InitList:
    items: tuple[object, ...]
    span: Span


Expr = (
    Name
    | IntLit
    | FloatLit
    | Other
    | Unary
    | IncDec
    | Binary
    | Ternary
    | Cast
    | Index
    | Call
    | Assign
    | Comma
)

# ---------------------------------------------------------------------------------- pragmas


@dataclass(frozen=True)
class Clause:
    name: str
    modifier: str | None
    args: tuple[Expr, ...]
    has_parens: bool
    span: Span


@dataclass(frozen=True)
class Pragma:
    """One ``#pragma omp`` line: its directive words and its clauses."""

    words: tuple[str, ...]
    clauses: tuple[Clause, ...]
    span: Span  # the whole line
    words_span: Span  # the directive name, e.g. "parallel for"

    @property
    def directive(self) -> str:
        return " ".join(self.words)


# ------------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class Declarator:
    name: str
    stars: int
    dims: tuple[Expr | None, ...]
    init: Expr | InitList | None
    span: Span


@dataclass(frozen=True)
class Decl:
    words: tuple[str, ...]
    declarators: tuple[Declarator, ...]
    span: Span


@dataclass(frozen=True)
class Block:
    items: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class ExprStmt:
    expr: Expr
    span: Span


@dataclass(frozen=True)
class If:
    cond: Expr
    then: Stmt
    orelse: Stmt | None
    span: Span


@dataclass(frozen=True)
class For:
    init: Decl | Expr | None
    cond: Expr | None
    step: Expr | None
    body: Stmt
    span: Span


@dataclass(frozen=True)
class Return:
    value: Expr | None
    span: Span


@dataclass(frozen=True)
class Unsupported:
    """A statement kernelc rejects: while, do, switch, goto, a label, break, continue."""

    what: str
    span: Span


@dataclass(frozen=True)
class Empty:
    span: Span


@dataclass(frozen=True)
class Construct:
    """A ``#pragma omp`` directive with the statement it applies to (None for standalone ones)."""

    pragma: Pragma
    body: Stmt | None
    span: Span


@dataclass(frozen=True)
class Directive:
    """A preprocessor line other than a pragma."""

    text: str
    span: Span


Stmt = Block | Decl | ExprStmt | If | For | Return | Unsupported | Empty | Construct | Directive

# ------------------------------------------------------------------------------- top level


@dataclass(frozen=True)
class Param:
    name: str | None
    words: tuple[str, ...]
    stars: int
    dims: tuple[Expr | None, ...]
    span: Span


@dataclass(frozen=True)
class Function:
    name: str
    words: tuple[str, ...]
    stars: int
    params: tuple[Param, ...]
    body: Block | None  # None for a prototype
    span: Span  # the name


@dataclass(frozen=True)
class TranslationUnit:
    items: tuple[Function | Decl | Directive | Pragma, ...]


# Directives that stand alone (they apply to no statement).
STANDALONE = {
    "barrier",
    "taskwait",
    "taskyield",
    "flush",
    "cancel",
    "cancellation",
    "depobj",
    "scan",
    "error",
    "requires",
    "threadprivate",
    "declare",
    "allocate",
    "section",
}
STANDALONE_PAIRS = {("target", "update"), ("target", "enter"), ("target", "exit")}


def is_standalone(pragma: Pragma) -> bool:
    return pragma.words[0] in STANDALONE or tuple(pragma.words[:2]) in STANDALONE_PAIRS
