"""Parse ``.k`` source into the kernel IR (untyped); syntax errors become located diagnostics."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedInput

from kernelc import ir
from kernelc.diagnostics import KernelcError, Span, register_source
from kernelc.syntax_errors import TOKEN_WORDS, syntax_error, unwrap_visit_errors
from kernelc.types import BY_NAME, DType

GRAMMAR = Path(__file__).with_name("kernel.lark")

INTRINSICS = {"sqrt": 1, "exp": 1, "log": 1, "abs": 1, "floor": 1, "min": 2, "max": 2, "fma": 3}

_TOKEN_WORDS = {
    **TOKEN_WORDS,
    "EQUAL": "'='",
    "ASSIGN_OP": "'=' or a compound assignment",
    "__ANON_0": "'->'",
    "$END": "end of file",
}


@cache
def _parser() -> Lark:
    return Lark(
        GRAMMAR.read_text(),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
    )


def parse(text: str, filename: str = "<string>") -> ir.Module:
    """Parse a whole source file. Raises KernelcError for syntax errors."""
    register_source(filename, text)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        place = functools.partial(Span, filename)
        raise syntax_error(exc, text, _parser(), _TOKEN_WORDS, place) from None
    with unwrap_visit_errors():
        module = _ToIR(filename).transform(tree)
    _check_slices(module)
    return module


def _check_slices(module: ir.Module) -> None:
    """The grammar takes ``lo:hi`` in any index list; only a search's tensor and a graph task's
    arguments may keep one, so an element load with a slice is reported here, where it stands."""
    roots: list[ir.Expr | ir.Stmt | ir.Slice] = []
    for item in (*module.kernels, *module.graphs):
        for param in item.all_params:
            roots.extend(param.shape)
    for kernel in module.kernels:
        roots.extend(kernel.body)
    for graph in module.graphs:
        roots.extend(d for temp in graph.temps for d in temp.shape)
        for call in graph.calls:
            for ref in (*call.args, *call.results):
                if isinstance(ref, ir.TensorRef):
                    roots.extend(ref.slices or ())
    for root in roots:
        for node in ir.walk(root):
            if isinstance(node, ir.Load):
                sliced = next((i for i in node.indices if isinstance(i, ir.Slice)), None)
                if sliced is not None:
                    raise KernelcError(
                        f"a slice of '{node.tensor}' is only allowed as the first argument of "
                        "search or as a graph task's argument; index every dimension here",
                        sliced.span,
                    )


def _span(filename: str, meta_or_token: object) -> Span:
    if isinstance(meta_or_token, Token):
        return Span(
            filename,
            meta_or_token.line,
            meta_or_token.column,
            meta_or_token.end_line,
            meta_or_token.end_column,
        )
    meta = meta_or_token
    if getattr(meta, "empty", True):
        return Span(filename, 1, 1)
    return Span(filename, meta.line, meta.column, meta.end_line, meta.end_column)


def _dtype(token: Token, filename: str) -> DType:
    dtype = BY_NAME.get(str(token))
    if dtype is None:
        known = ", ".join(BY_NAME)
        raise KernelcError(
            f"unknown type '{token}'; expected one of {known}", _span(filename, token)
        )
    return dtype


@v_args(meta=True)
class _ToIR(Transformer):
    """Turns the lark parse tree into IR nodes, checking the forms the grammar cannot."""

    def __init__(self, filename: str) -> None:
        super().__init__()
        self.filename = filename

    def sp(self, meta: object) -> Span:
        return _span(self.filename, meta)

    # ---- top level
    def start(self, meta, items):
        sizes = tuple(s for item in items if isinstance(item, list) for s in item)
        kernels = tuple(i for i in items if isinstance(i, ir.Kernel))
        graphs = tuple(i for i in items if isinstance(i, ir.Graph))
        seen: dict[str, ir.Kernel | ir.Graph] = {}
        for item in (*kernels, *graphs):
            if item.name in seen:
                raise KernelcError(
                    f"'{item.name}' is defined twice",
                    item.span,
                    [(seen[item.name].span, "first defined here")],
                )
            seen[item.name] = item
        seen_sizes: dict[str, ir.SizeDecl] = {}
        for size in sizes:
            if size.name in seen_sizes:
                raise KernelcError(f"size '{size.name}' is declared twice", size.span)
            seen_sizes[size.name] = size
        return ir.Module(
            filename=self.filename, sizes=sizes, kernels=kernels, graphs=graphs, span=self.sp(meta)
        )

    def size_decl(self, meta, items):
        return list(items)

    def size_item(self, meta, items):
        default = _int(items[1], self.filename) if len(items) > 1 else None
        return ir.SizeDecl(name=str(items[0]), default=default, span=self.sp(items[0]))

    def kernel(self, meta, items):
        name, *rest = items
        params = next((r.items for r in rest if isinstance(r, _Params)), ())
        outputs = next(r.items for r in rest if isinstance(r, _Outputs))
        body = rest[-1]
        return ir.Kernel(
            name=str(name),
            params=params,
            outputs=tuple(_as_output(p) for p in outputs),
            body=body,
            span=self.sp(name),
        )

    def graph(self, meta, items):
        name, *rest = items
        params = next((r.items for r in rest if isinstance(r, _Params)), ())
        outputs = next(r.items for r in rest if isinstance(r, _Outputs))
        temps = tuple(s for s in rest if isinstance(s, ir.Param))
        calls = tuple(s for s in rest if isinstance(s, ir.TaskCall))
        return ir.Graph(
            name=str(name),
            params=params,
            outputs=tuple(_as_output(p) for p in outputs),
            temps=temps,
            calls=calls,
            span=self.sp(name),
        )

    def param_list(self, meta, items):
        return _Params(tuple(items))

    def outputs(self, meta, items):
        return _Outputs(tuple(items))

    def param(self, meta, items):
        name, type_name, *rest = items
        shape: tuple[ir.Expr, ...] = ()
        default = None
        for extra in rest:
            if isinstance(extra, tuple):
                shape = extra
            else:
                default = extra
        if default is not None and shape:
            raise KernelcError(
                f"tensor parameter '{name}' cannot have a default; only scalars can",
                default.span,
            )
        return ir.Param(
            name=str(name),
            dtype=_dtype(type_name, self.filename),
            shape=shape,
            span=self.sp(name),
            default=default,
        )

    def default(self, meta, items):
        return items[0]

    def shape(self, meta, items):
        return tuple(items)

    # ---- graph statements
    def temp_decl(self, meta, items):
        name, type_name, shape = items
        return ir.Param(
            name=str(name), dtype=_dtype(type_name, self.filename), shape=shape, span=self.sp(name)
        )

    def task_call(self, meta, items):
        *results, kernel, args = items if isinstance(items[-1], tuple) else (*items, ())
        return ir.TaskCall(
            kernel=str(kernel), args=args, results=tuple(results), span=self.sp(kernel)
        )

    def call_args(self, meta, items):
        return tuple(items)

    def tensor_ref(self, meta, items):
        slices = tuple(items[1]) if len(items) > 1 else None
        return ir.TensorRef(name=str(items[0]), slices=slices, span=self.sp(meta))

    # ---- statements
    def block(self, meta, items):
        return tuple(items)

    def for_stmt(self, meta, items):
        *ranges, body = items
        for var_token, lo, hi in reversed(ranges):
            body = (ir.For(var=str(var_token), lo=lo, hi=hi, body=body, span=self.sp(var_token)),)
        return body[0]

    def loop_range(self, meta, items):
        return tuple(items)

    def let_stmt(self, meta, items):
        declared = _dtype(items[1], self.filename) if len(items) == 3 else None
        return ir.Let(
            name=str(items[0]), value=items[-1], span=self.sp(items[0]), declared=declared
        )

    def var_stmt(self, meta, items):
        declared = _dtype(items[1], self.filename) if len(items) == 3 else None
        return ir.VarDecl(
            name=str(items[0]), value=items[-1], span=self.sp(items[0]), declared=declared
        )

    def store_stmt(self, meta, items):
        name, indices, op, value = items
        for index in indices:
            if isinstance(index, ir.Slice):
                raise KernelcError("a store takes one element; slices are not allowed", index.span)
        return ir.Store(
            tensor=str(name), indices=tuple(indices), op=str(op), value=value, span=self.sp(meta)
        )

    def assign_stmt(self, meta, items):
        name, op, value = items
        return ir.Assign(name=str(name), op=str(op), value=value, span=self.sp(meta))

    def if_stmt(self, meta, items):
        cond, then, *rest = items
        orelse = rest[0] if rest else ()
        if isinstance(orelse, ir.If):
            orelse = (orelse,)
        return ir.If(cond=cond, then=then, orelse=orelse, span=self.sp(meta))

    # ---- expressions
    def reduction(self, meta, items):
        op, var, lo, hi, body = items
        return ir.Reduce(op=str(op), var=str(var), lo=lo, hi=hi, body=body, span=self.sp(op))

    def binary(self, meta, items):
        lhs, op, rhs = items
        return ir.Binary(op=str(op), lhs=lhs, rhs=rhs, span=self.sp(op))

    def unary(self, meta, items):
        op, operand = items
        if str(op) == "-" and isinstance(operand, ir.Const) and not isinstance(operand.value, bool):
            return ir.Const(value=-operand.value, span=self.sp(meta))
        return ir.Unary(op=str(op), operand=operand, span=self.sp(op))

    def name(self, meta, items):
        return ir.Name(name=str(items[0]), span=self.sp(items[0]))

    def load(self, meta, items):
        name, indices = items
        return ir.Load(tensor=str(name), indices=tuple(indices), span=self.sp(meta))

    def call(self, meta, items):
        fn = str(items[0])
        args = tuple(items[1]) if len(items) > 1 else ()
        span = self.sp(meta)
        for arg in args:
            if isinstance(arg, ir.Slice) and fn != "search":
                raise KernelcError(
                    "slices are only allowed in the first argument of search", arg.span
                )
        if fn in BY_NAME:
            _arity(fn, args, 1, span)
            return ir.Cast(to=BY_NAME[fn], operand=args[0], span=span)
        if fn in INTRINSICS:
            _arity(fn, args, INTRINSICS[fn], span)
            return ir.Intrinsic(fn=fn, args=args, span=span)
        if fn == "select":
            _arity(fn, args, 3, span)
            return ir.Select(cond=args[0], if_true=args[1], if_false=args[2], span=span)
        if fn in ("rand", "randbits"):
            _arity(fn, args, 2, span)
            return ir.Rand(key=args[0], counter=args[1], bits=fn == "randbits", span=span)
        if fn == "search":
            _arity(fn, args, 2, span)
            return self._search(args, span)
        raise KernelcError(
            f"unknown function '{fn}'; the language has {', '.join(sorted(_ALL_FUNCTIONS))}",
            _span(self.filename, items[0]),
        )

    def _search(self, args, span: Span) -> ir.Search:
        sliced, value = args
        if not isinstance(sliced, ir.Load):
            raise KernelcError(
                "search needs a slice of a tensor as its first argument, like egrid[n, :]",
                _expr_span(sliced, span),
            )
        n_slices = sum(isinstance(i, ir.Slice) for i in sliced.indices)
        if n_slices != 1:
            raise KernelcError(
                f"search needs exactly one ':' slice in its first argument, found {n_slices}",
                sliced.span,
            )
        return ir.Search(tensor=sliced.tensor, indices=sliced.indices, value=value, span=span)

    def expr_list(self, meta, items):
        return list(items)

    def index_list(self, meta, items):
        return list(items)

    def slice_both(self, meta, items):
        return ir.Slice(lo=items[0], hi=items[1], span=self.sp(meta))

    def slice_from(self, meta, items):
        return ir.Slice(lo=items[0], hi=None, span=self.sp(meta))

    def slice_to(self, meta, items):
        return ir.Slice(lo=None, hi=items[0], span=self.sp(meta))

    def slice_all(self, meta, items):
        return ir.Slice(lo=None, hi=None, span=self.sp(meta))

    def int_literal(self, meta, items):
        return ir.Const(value=_int(items[0], self.filename), span=self.sp(items[0]))

    def float_literal(self, meta, items):
        return ir.Const(value=float(str(items[0])), span=self.sp(items[0]))

    def negative_int_literal(self, meta, items):
        return ir.Const(value=-_int(items[0], self.filename), span=self.sp(meta))

    def negative_float_literal(self, meta, items):
        return ir.Const(value=-float(str(items[0])), span=self.sp(meta))

    def true_literal(self, meta, items):
        return ir.Const(value=True, span=self.sp(meta), dtype=DType.BOOL)

    def false_literal(self, meta, items):
        return ir.Const(value=False, span=self.sp(meta), dtype=DType.BOOL)


_ALL_FUNCTIONS = set(INTRINSICS) | set(BY_NAME) | {"select", "rand", "randbits", "search"}


def _int(token: Token, filename: str) -> int:
    """An INT token's value. ``017`` is refused rather than read: C reads it as octal 15, so
    either meaning would surprise someone."""
    text = str(token)
    if len(text) > 1 and text[0] == "0" and text[1] not in "xX":
        raise KernelcError(
            f"integer literal '{text}' has a leading zero; write {text.lstrip('0') or '0'} "
            "(the language has no octal literals, and C would read it as octal)",
            _span(filename, token),
        )
    return int(text, 0)


def _arity(fn: str, args: tuple, n: int, span: Span) -> None:
    if len(args) != n:
        raise KernelcError(f"{fn} takes {n} argument{'s' if n != 1 else ''}, got {len(args)}", span)


def _expr_span(expr: object, fallback: Span) -> Span:
    return getattr(expr, "span", fallback)


def _as_output(param: ir.Param) -> ir.Param:
    if param.default is not None:
        raise KernelcError(f"output '{param.name}' cannot have a default", param.default.span)
    return ir.Param(
        name=param.name, dtype=param.dtype, shape=param.shape, span=param.span, is_output=True
    )


@dataclass(frozen=True)
class _Params:
    items: tuple[ir.Param, ...]


@dataclass(frozen=True)
class _Outputs:
    items: tuple[ir.Param, ...]
