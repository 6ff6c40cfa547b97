"""The kernel IR: immutable nodes, each with the source span it came from.

Frontends build these nodes with ``dtype=None``; the type checker returns a copy in which every
expression carries its element type. Analyses add facts (such as which loops are parallel) by
returning new nodes, never by mutation, so any stage of a program can be kept and compared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from kernelc.diagnostics import Span
from kernelc.types import DType

# ---------------------------------------------------------------------------------- expressions


@dataclass(frozen=True, kw_only=True)
class Const:
    """A literal. Untyped integer and float literals adapt to the type of the other operand."""

    value: int | float | bool
    span: Span
    dtype: DType | None = None


@dataclass(frozen=True, kw_only=True)
class Name:
    """A reference to a loop index, a ``let``/``var`` local, a size or a scalar parameter."""

    name: str
    span: Span
    dtype: DType | None = None


@dataclass(frozen=True, kw_only=True)
class Slice:
    """``lo:hi`` inside an index list (only ``search`` and graph calls take slices)."""

    lo: Expr | None
    hi: Expr | None
    span: Span


@dataclass(frozen=True, kw_only=True)
class Load:
    """``tensor[i, j, ...]``: an affine or indirect (gather) read of one element."""

    tensor: str
    indices: tuple[Expr, ...]
    span: Span
    dtype: DType | None = None


@dataclass(frozen=True, kw_only=True)
class Unary:
    op: str  # "-", "!", "~"
    operand: Expr
    span: Span
    dtype: DType | None = None


@dataclass(frozen=True, kw_only=True)
class Binary:
    op: str  # arithmetic, bitwise, comparison or logical operator as spelled in source
    lhs: Expr
    rhs: Expr
    span: Span
    dtype: DType | None = None


@dataclass(frozen=True, kw_only=True)
class Select:
    cond: Expr
    if_true: Expr
    if_false: Expr
    span: Span
    dtype: DType | None = None


@dataclass(frozen=True, kw_only=True)
class Cast:
    to: DType
    operand: Expr
    span: Span
    dtype: DType | None = None


@dataclass(frozen=True, kw_only=True)
class Intrinsic:
    """A math function: sqrt, exp, log, abs, min, max, fma, floor."""

    fn: str
    args: tuple[Expr, ...]
    span: Span
    dtype: DType | None = None


@dataclass(frozen=True, kw_only=True)
class Reduce:
    """``sum(var in lo .. hi) body``: a left-to-right fold in the body's type."""

    op: str
    var: str
    lo: Expr
    hi: Expr
    body: Expr
    span: Span
    dtype: DType | None = None


@dataclass(frozen=True, kw_only=True)
class Search:
    """``search(t[..., lo:hi, ...], value)``: index of the last element <= value, clamped."""

    tensor: str
    indices: tuple[Expr | Slice, ...]
    value: Expr
    span: Span
    dtype: DType | None = None


@dataclass(frozen=True, kw_only=True)
class Rand:
    """``rand(key, counter)`` (f32 in [0, 1)) or ``randbits(key, counter)`` (u32)."""

    key: Expr
    counter: Expr
    bits: bool
    span: Span
    dtype: DType | None = None


Expr = Const | Name | Load | Unary | Binary | Select | Cast | Intrinsic | Reduce | Search | Rand

# ----------------------------------------------------------------------------------- statements


@dataclass(frozen=True, kw_only=True)
class For:
    """``for var in lo .. hi``; ``parallel`` is decided by access analysis (None before it)."""

    var: str
    lo: Expr
    hi: Expr
    body: tuple[Stmt, ...]
    span: Span
    parallel: bool | None = None


@dataclass(frozen=True, kw_only=True)
class Let:
    name: str
    value: Expr
    span: Span
    declared: DType | None = None


@dataclass(frozen=True, kw_only=True)
class VarDecl:
    """A mutable scalar local (``var acc: f32 = 0;``)."""

    name: str
    value: Expr
    span: Span
    declared: DType | None = None


@dataclass(frozen=True, kw_only=True)
class Assign:
    """``name op= value`` on a ``var`` local."""

    name: str
    op: str
    value: Expr
    span: Span


@dataclass(frozen=True, kw_only=True)
class Store:
    """``tensor[indices] op= value``; op is "=" or a compound operator such as "+="."""

    tensor: str
    indices: tuple[Expr, ...]
    op: str
    value: Expr
    span: Span


@dataclass(frozen=True, kw_only=True)
class If:
    cond: Expr
    then: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]
    span: Span


Stmt = For | Let | VarDecl | Assign | Store | If

# ------------------------------------------------------------------------------ declarations


@dataclass(frozen=True, kw_only=True)
class Param:
    """A tensor (``shape`` non-empty) or scalar parameter, input or output."""

    name: str
    dtype: DType
    shape: tuple[Expr, ...]
    span: Span
    is_output: bool = False
    default: Const | None = None

    @property
    def is_scalar(self) -> bool:
        return not self.shape


@dataclass(frozen=True, kw_only=True)
class Kernel:
    name: str
    params: tuple[Param, ...]
    outputs: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span
    sizes: tuple[str, ...] = ()

    @property
    def all_params(self) -> tuple[Param, ...]:
        return self.params + self.outputs

    def param(self, name: str) -> Param | None:
        return next((p for p in self.all_params if p.name == name), None)


@dataclass(frozen=True, kw_only=True)
class TensorRef:
    """A whole tensor or a slice of one, as an argument or result of a graph call."""

    name: str
    slices: tuple[Slice | Expr, ...] | None
    span: Span


@dataclass(frozen=True, kw_only=True)
class TaskCall:
    """``results = kernel(args);`` inside a graph.

    ``after`` lists earlier calls (by position) that must finish first although no region links
    them: an ordering the source states (an OpenMP barrier or depend clause) between tasks that
    write the same data without reading it.
    """

    kernel: str
    args: tuple[TensorRef | Const, ...]
    results: tuple[TensorRef, ...]
    span: Span
    after: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Graph:
    name: str
    params: tuple[Param, ...]
    outputs: tuple[Param, ...]
    temps: tuple[Param, ...]
    calls: tuple[TaskCall, ...]
    span: Span
    sizes: tuple[str, ...] = ()

    @property
    def all_params(self) -> tuple[Param, ...]:
        return self.params + self.outputs


@dataclass(frozen=True, kw_only=True)
class SizeDecl:
    name: str
    default: int | None
    span: Span


@dataclass(frozen=True, kw_only=True)
class Module:
    """One source file: its sizes, kernels and graphs."""

    filename: str
    sizes: tuple[SizeDecl, ...]
    kernels: tuple[Kernel, ...]
    graphs: tuple[Graph, ...]
    span: Span

    def kernel(self, name: str) -> Kernel | None:
        return next((k for k in self.kernels if k.name == name), None)

    def graph(self, name: str) -> Graph | None:
        return next((g for g in self.graphs if g.name == name), None)

    def size_default(self, name: str) -> int | None:
        decl = next((s for s in self.sizes if s.name == name), None)
        return decl.default if decl else None


# ----------------------------------------------------------------------------------- walking


def children(node: Expr | Stmt | Slice) -> Iterator[Expr | Stmt | Slice]:
    """The direct sub-expressions and sub-statements of a node, in source order."""
    match node:
        case Const() | Name():
            return
        case Slice(lo=lo, hi=hi):
            yield from (x for x in (lo, hi) if x is not None)
        case Load(indices=idx):
            yield from idx
        case Unary(operand=a) | Cast(operand=a):
            yield a
        case Binary(lhs=a, rhs=b):
            yield a
            yield b
        case Select(cond=c, if_true=a, if_false=b):
            yield from (c, a, b)
        case Intrinsic(args=args):
            yield from args
        case Reduce(lo=lo, hi=hi, body=body):
            yield from (lo, hi, body)
        case Search(indices=idx, value=v):
            yield from idx
            yield v
        case Rand(key=k, counter=c):
            yield from (k, c)
        case For(lo=lo, hi=hi, body=body):
            yield from (lo, hi)
            yield from body
        case Let(value=v) | VarDecl(value=v) | Assign(value=v):
            yield v
        case Store(indices=idx, value=v):
            yield from idx
            yield v
        case If(cond=c, then=t, orelse=e):
            yield c
            yield from t
            yield from e
        case _:
            raise TypeError(f"not an IR node: {node!r}")


def own_exprs(stmt: Stmt) -> tuple[Expr, ...]:
    """The expressions a statement evaluates itself (not those of its nested statements)."""
    match stmt:
        case For():
            return (stmt.lo, stmt.hi)
        case Let() | VarDecl() | Assign():
            return (stmt.value,)
        case Store():
            return (*stmt.indices, stmt.value)
        case If():
            return (stmt.cond,)
    return ()


def walk(node: Expr | Stmt | Slice) -> Iterator[Expr | Stmt | Slice]:
    """Every node below and including ``node``, depth first, in source order."""
    yield node
    for child in children(node):
        yield from walk(child)


def fresh_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base2``, ``base3``, ...: the first name not in ``taken``, which it joins
    (a let a pass adds must not shadow or be shadowed by the kernel's own names)."""
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}{k}"
    taken.add(name)
    return name


def walk_body(body: tuple[Stmt, ...]) -> Iterator[Expr | Stmt | Slice]:
    for stmt in body:
        yield from walk(stmt)


def assignments(body: tuple[Stmt, ...], name: str) -> int:
    """How many ``Assign`` statements in ``body`` (nested ones included) set the local ``name``."""
    return sum(1 for n in walk_body(body) if isinstance(n, Assign) and n.name == name)


def transform(node, fn: Callable[[object], object]):
    """``node`` (an IR node or a tuple of them) rebuilt bottom-up with ``fn`` applied to every
    node, children first; nodes ``fn`` returns unchanged are shared, not copied."""
    if isinstance(node, tuple):
        items = tuple(transform(x, fn) for x in node)
        return node if all(a is b for a, b in zip(items, node, strict=True)) else items
    if not hasattr(node, "__dataclass_fields__"):
        return node
    changes = {}
    for name in node.__dataclass_fields__:
        value = getattr(node, name)
        if isinstance(value, tuple) or hasattr(value, "__dataclass_fields__"):
            new = transform(value, fn)
            if new is not value:
                changes[name] = new
    return fn(replace(node, **changes) if changes else node)


Rewrite = Callable[[tuple[Stmt, ...], int], tuple[tuple[Stmt, ...], int] | None]


def rewrite_blocks(body: tuple[Stmt, ...], rewrite: Rewrite) -> tuple[Stmt, ...]:
    """``body`` with ``rewrite`` tried at every statement of every block, nested ones included.

    ``rewrite(block, i)`` returns the statements that replace ``block[i:i + n]`` and ``n``, or
    None to keep ``block[i]`` (whose own blocks are then rewritten in turn).
    """
    out: list[Stmt] = []
    i = 0
    while i < len(body):
        found = rewrite(body, i)
        if found is not None:
            stmts, used = found
            out.extend(stmts)
            i += used
            continue
        stmt = body[i]
        if isinstance(stmt, For):
            stmt = replace(stmt, body=rewrite_blocks(stmt.body, rewrite))
        elif isinstance(stmt, If):
            stmt = replace(
                stmt,
                then=rewrite_blocks(stmt.then, rewrite),
                orelse=rewrite_blocks(stmt.orelse, rewrite),
            )
        out.append(stmt)
        i += 1
    return tuple(out)


def without_unused_locals(body: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
    """``body`` without the ``let``s, ``var``s and updates of locals whose values nothing uses,
    and without the loops and ``if``s that are left with nothing to do.

    Expressions have no side effects, so dropping them changes no result; a backend that
    compiles with unused-variable warnings as errors (poplar's g++ -Werror) emits this body.
    A local is used when a store, a condition, a loop bound, or the value of a used local
    reads it (a ``var``'s updates of itself do not count). Names are unique per kernel. A
    loop emptied by the first rule may have been the only reader of a local, so the two
    rules are applied until neither changes the body."""
    while True:
        slim = _without_empty(_without_dead_locals(body))
        if slim == body:
            return body
        body = slim


def _without_empty(body: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
    """``body`` without loops whose bodies are empty and ``if``s whose branches are (an ``if``
    with only an ``else`` left becomes an ``if`` on the negated condition)."""
    out: list[Stmt] = []
    for stmt in body:
        if isinstance(stmt, For):
            stmt = replace(stmt, body=_without_empty(stmt.body))
            if not stmt.body:
                continue
        elif isinstance(stmt, If):
            stmt = replace(stmt, then=_without_empty(stmt.then), orelse=_without_empty(stmt.orelse))
            if not stmt.then and not stmt.orelse:
                continue
            if not stmt.then:  # if !c { else-branch }, rather than an empty then-branch
                negated = Unary(op="!", operand=stmt.cond, span=stmt.cond.span, dtype=DType.BOOL)
                stmt = replace(stmt, cond=negated, then=stmt.orelse, orelse=())
        out.append(stmt)
    return tuple(out)


def _without_dead_locals(body: tuple[Stmt, ...]) -> tuple[Stmt, ...]:
    """``body`` without the locals (and their updates) that nothing uses."""
    reads: dict[str, set[str]] = {}
    used: set[str] = set()
    for node in walk_body(body):
        if isinstance(node, Let | VarDecl | Assign):
            found = {n.name for n in walk(node.value) if isinstance(n, Name)}
            reads.setdefault(node.name, set()).update(found - {node.name})
        elif isinstance(node, Store | If | For):
            used |= {n.name for e in own_exprs(node) for n in walk(e) if isinstance(n, Name)}
    todo = list(used)
    while todo:
        for name in reads.get(todo.pop(), ()):
            if name not in used:
                used.add(name)
                todo.append(name)

    def rewrite(block: tuple[Stmt, ...], i: int) -> tuple[tuple[Stmt, ...], int] | None:
        stmt = block[i]
        if isinstance(stmt, Let | VarDecl | Assign) and stmt.name not in used:
            return (), 1
        return None

    return rewrite_blocks(body, rewrite)


def extent(expr: Expr) -> Span:
    """The span from the first to the last character of an expression (for underlining it)."""
    spans = [n.span for n in walk(expr) if n.span.line]
    first = min(spans, key=lambda s: (s.line, s.col))
    last = max(spans, key=lambda s: (s.end_line or s.line, s.end_col or s.col))
    return Span(first.file, first.line, first.col, last.end_line, last.end_col)
