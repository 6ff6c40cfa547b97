"""The PE-grid program model: a syntax tree for the subset of CSL that kernelc emits.

The lowering builds this tree, ``emit`` prints it and the fabric simulator's parser reads the
printed files back into it, so ``parse(print(p)) == p`` holds node for node. The tree is a CSL
syntax tree rather than a summary of the program, because the simulator must execute what the
files say, not what the compiler meant. Conventions that keep the round trip exact: literals are
never negative (``-1`` is ``Unary("-", Int(1))``), a simple type used as an expression is a
``Name`` (``f32``) and only compound types are wrapped in ``TypeExpr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kernelc.diagnostics import Span


@dataclass(frozen=True)
class Node:
    """Base of every node: ``at`` is where the parser read it, for located type errors.

    It takes no part in equality, so a parsed tree equals the tree that was printed.
    """

    at: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


# ------------------------------------------------------------------------------------ types


@dataclass(frozen=True)
class Named(Node):
    """A type by name: ``f32``, ``u16``, ``color``, ``comptime_struct``, ``void`` ..."""

    name: str


@dataclass(frozen=True)
class ArrayT(Node):
    """``[n]T`` or ``[a, b]T``."""

    dims: tuple[Expr, ...]
    elem: Type


@dataclass(frozen=True)
class ManyPtrT(Node):
    """``[*]T``: the pointer type used to export arrays to the host (``[*]const T`` read-only)."""

    elem: Type
    const: bool = False


@dataclass(frozen=True)
class PtrT(Node):
    """``*T`` (``*const T`` read-only)."""

    elem: Type
    const: bool = False


@dataclass(frozen=True)
class FnT(Node):
    """``fn(T, ...) R``, as in ``@export_name("f", fn()void)``."""

    params: tuple[Type, ...]
    ret: Type


@dataclass(frozen=True)
class TaskT(Node):
    """``task () void``: the type of a task-valued param (a completion callback)."""


@dataclass(frozen=True)
class ExprT(Node):
    """A type computed by an expression: ``@type_of(x)``, ``mod.T``."""

    expr: Expr


@dataclass(frozen=True)
class EnumT(Node):
    """``enum(u16) { a, b = 2 }``."""

    tag: Type
    members: tuple[tuple[str, Expr | None], ...]


Type = Named | ArrayT | ManyPtrT | PtrT | FnT | TaskT | ExprT | EnumT

# ------------------------------------------------------------------------------ expressions


@dataclass(frozen=True)
class Int(Node):
    value: int


@dataclass(frozen=True)
class Float(Node):
    value: float


@dataclass(frozen=True)
class Bool(Node):
    value: bool


@dataclass(frozen=True)
class Str(Node):
    """A string literal: the text between the quotes, escapes as written (``\\n``)."""

    value: str


@dataclass(frozen=True)
class Name(Node):
    id: str


@dataclass(frozen=True)
class Field(Node):
    """``obj.name`` (module members, struct fields)."""

    obj: Expr
    name: str


@dataclass(frozen=True)
class Index(Node):
    """``obj[i]`` or ``obj[i, j]``."""

    obj: Expr
    indices: tuple[Expr, ...]


@dataclass(frozen=True)
class Deref(Node):
    """``ptr.*``."""

    ptr: Expr


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "-", "!", "~", "&"
    operand: Expr


@dataclass(frozen=True)
class Binary(Node):
    op: str
    lhs: Expr
    rhs: Expr


@dataclass(frozen=True)
class Call(Node):
    """A call of a function or a module member: ``f(x)``, ``sys_mod.unblock_cmd_stream()``."""

    fn: Expr
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Builtin(Node):
    """``@name(args)``."""

    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Struct(Node):
    """``.{ .a = x, .b = y }`` (an empty ``.{}`` is a Struct with no fields)."""

    fields: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True)
class Tuple(Node):
    """``.{ RAMP, EAST }``: an anonymous list, as in route directions."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class IfExpr(Node):
    """``if (c) a else b``; ``orelse`` is None only for the last of an ``else if`` chain."""

    cond: Expr
    then: Expr
    orelse: Expr | None


@dataclass(frozen=True)
class TensorAccess(Node):
    """``|i, j|{a, b} -> A[expr]``: the iteration space and address map of a memory DSD."""

    vars: tuple[str, ...]
    extents: tuple[Expr, ...]
    target: Expr


@dataclass(frozen=True)
class ArrayLit(Node):
    """``[2]u16{ 2, 4 }``: an array value with its type."""

    type: ArrayT
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class TypeExpr(Node):
    """A compound type in expression position: ``@zeros([n]f32)``, ``@export_name(.., [*]f32)``."""

    type: ArrayT | ManyPtrT | PtrT | FnT | TaskT | EnumT | ExprT


@dataclass(frozen=True)
class Void(Node):
    """``{}``: the void value (an absent optional param, a ``{}`` argument)."""


Expr = (
    Int
    | Float
    | Bool
    | Str
    | Name
    | Field
    | Index
    | Deref
    | Unary
    | Binary
    | Call
    | Builtin
    | Struct
    | Tuple
    | IfExpr
    | TensorAccess
    | ArrayLit
    | TypeExpr
    | Void
)

# ------------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class Comment(Node):
    """A whole-line ``//`` comment, kept so that printing is the inverse of parsing."""

    text: str


@dataclass(frozen=True)
class VarDecl(Node):
    """``const x: T = v;`` or ``var x: T = v;`` (type and value optional)."""

    name: str
    type: Type | None
    value: Expr | None
    const: bool = False
    export: bool = False
    align: Expr | None = None


@dataclass(frozen=True)
class Assign(Node):
    """``target op value;`` where op is ``=`` or a compound operator."""

    target: Expr
    op: str
    value: Expr


@dataclass(frozen=True)
class ExprStmt(Node):
    expr: Expr


@dataclass(frozen=True)
class If(Node):
    """``if (c) { } else { }``; an ``else if`` is an ``orelse`` holding one ``If``."""

    cond: Expr
    then: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...] = ()


@dataclass(frozen=True)
class For(Node):
    """``for (@range(T, ...)) |var| { }``."""

    iter: Expr
    var: str
    body: tuple[Stmt, ...]
    index: str | None = None


@dataclass(frozen=True)
class While(Node):
    """``while (cond) : (step) { }``; step is an Assign or None."""

    cond: Expr
    step: Assign | None
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class Return(Node):
    value: Expr | None = None


@dataclass(frozen=True)
class Break(Node):
    """``break;``."""


@dataclass(frozen=True)
class Continue(Node):
    """``continue;``."""


@dataclass(frozen=True)
class SwitchCase(Node):
    """``a, b => { }``; no values is the ``else`` case."""

    values: tuple[Expr, ...]
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class Switch(Node):
    subject: Expr
    cases: tuple[SwitchCase, ...]


@dataclass(frozen=True)
class Comptime(Node):
    """``comptime { }``: at file scope or as a statement."""

    body: tuple[Stmt, ...]


Stmt = (
    Comment
    | VarDecl
    | Assign
    | ExprStmt
    | If
    | For
    | While
    | Return
    | Break
    | Continue
    | Switch
    | Comptime
)

# ----------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Param(Node):
    """``param name: T;``, ``param name: T = default;`` or ``param name = default;``."""

    name: str
    type: Type | None
    default: Expr | None = None


@dataclass(frozen=True)
class FnDecl(Node):
    name: str
    params: tuple[tuple[str, Type], ...]
    ret: Type
    body: tuple[Stmt, ...]
    export: bool = False
    comptime_params: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskDecl(Node):
    """``task name(args) void { }`` (data tasks take the wavelet as arguments)."""

    name: str
    params: tuple[tuple[str, Type], ...]
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class Layout(Node):
    body: tuple[Stmt, ...]


Decl = Comment | Param | VarDecl | FnDecl | TaskDecl | Comptime | Layout


@dataclass(frozen=True)
class CslFile:
    name: str
    decls: tuple[Decl, ...]


@dataclass(frozen=True)
class Program:
    """A whole CSL program: the layout file (handed to cslc) and the PE program files."""

    layout: CslFile
    pe_files: tuple[CslFile, ...]

    def file(self, name: str) -> CslFile:
        for f in (self.layout, *self.pe_files):
            if f.name == name:
                return f
        raise KeyError(name)


# ------------------------------------------------------------------------- building helpers


def lit(value: int | float | bool) -> Expr:
    """A literal, with negative numbers as a negation so trees match what the parser builds."""
    if isinstance(value, bool):
        return Bool(value)
    if isinstance(value, int):
        return Int(value) if value >= 0 else Unary("-", Int(-value))
    if value < 0 or (value == 0 and str(value).startswith("-")):
        return Unary("-", Float(-value))
    return Float(float(value))


def name(text: str) -> Name:
    return Name(text)


def call(fn: str | Expr, *args: Expr) -> Call:
    return Call(Name(fn) if isinstance(fn, str) else fn, tuple(args))


def member(module: str, attr: str) -> Field:
    return Field(Name(module), attr)


def builtin(fn: str, *args: Expr) -> Builtin:
    return Builtin(fn, tuple(args))


def struct(**fields: Expr) -> Struct:
    return Struct(tuple(fields.items()))


def add(a: Expr, b: Expr) -> Expr:
    """``a + b`` with literal zero dropped (keeps emitted index arithmetic short)."""
    if b == Int(0):
        return a
    if a == Int(0):
        return b
    if isinstance(a, Int) and isinstance(b, Int):
        return Int(a.value + b.value)
    return Binary("+", a, b)


def mul(a: Expr, b: Expr) -> Expr:
    """``a * b`` with literal one and zero folded."""
    if a == Int(1):
        return b
    if b == Int(1):
        return a
    if Int(0) in (a, b):
        return Int(0)
    if isinstance(a, Int) and isinstance(b, Int):
        return Int(a.value * b.value)
    return Binary("*", a, b)


def type_expr(t: Type) -> Expr:
    """A type as an expression argument: a Name for a simple type, else TypeExpr."""
    return Name(t.name) if isinstance(t, Named) else TypeExpr(t)
