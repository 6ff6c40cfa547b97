"""Name resolution and type checking: returns a module in which every expression has a dtype.

The rules (docs/LANGUAGE.md, "Types"): operands of an operator have the same type; an untyped
integer literal takes the type of the other operand, an untyped float literal the type of a float
operand; indices are integers; stores and ``let`` declarations match their declared types.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from kernelc import ir
from kernelc.diagnostics import KernelcError, Span, warn
from kernelc.types import DType

ARITH = {"+", "-", "*", "/", "%"}
BITWISE = {"&", "|", "^", "<<", ">>"}
COMPARE = {"==", "!=", "<", "<=", ">", ">="}
LOGICAL = {"&&", "||"}
COMPOUND = {"+=": "+", "-=": "-", "*=": "*", "/=": "/", "max=": "max", "min=": "min"}


@dataclass(frozen=True)
class Symbol:
    """What a name means inside a kernel body."""

    kind: str  # "size", "scalar", "loop", "let", "var"
    dtype: DType
    span: Span


def check_module(module: ir.Module) -> ir.Module:
    """Type-check every kernel and graph of a module."""
    kernels = tuple(_KernelChecker(k).check() for k in module.kernels)
    checked = replace(module, kernels=kernels)
    graphs = tuple(_check_graph(g, checked) for g in module.graphs)
    return replace(checked, graphs=graphs)


def size_names(params: tuple[ir.Param, ...]) -> tuple[str, ...]:
    """The symbolic sizes used in parameter shapes, in order of first appearance."""
    names: list[str] = []
    for param in params:
        for dim in param.shape:
            for node in ir.walk(dim):
                if isinstance(node, ir.Name) and node.name not in names:
                    names.append(node.name)
    return tuple(names)


def _with_declared(shaped: tuple[str, ...], declared: tuple[str, ...]) -> tuple[str, ...]:
    """Sizes used in shapes, then any further sizes a frontend declared (loop bounds, say)."""
    return shaped + tuple(n for n in declared if n not in shaped)


def _check_params(params: tuple[ir.Param, ...], sizes: tuple[str, ...]) -> tuple[ir.Param, ...]:
    seen: dict[str, ir.Param] = {}
    checked = []
    for param in params:
        if param.name in seen:
            raise KernelcError(
                f"parameter '{param.name}' is declared twice",
                param.span,
                [(seen[param.name].span, "first declared here")],
            )
        if param.name in sizes:
            raise KernelcError(
                f"'{param.name}' is used as a size in a shape and cannot also be a parameter",
                param.span,
            )
        seen[param.name] = param
        shape = tuple(_check_shape_dim(d) for d in param.shape)
        default = param.default
        if default is not None:
            default = _coerce_literal(default, param.dtype, default.span)
        checked.append(replace(param, shape=shape, default=default))
    return tuple(checked)


def _check_shape_dim(dim: ir.Expr) -> ir.Expr:
    for node in ir.walk(dim):
        if isinstance(node, ir.Const) and not isinstance(node.value, int):
            raise KernelcError("a shape dimension must be an integer", node.span)
        if isinstance(node, ir.Binary) and node.op not in ("+", "-", "*", "/"):
            raise KernelcError(
                f"operator '{node.op}' is not allowed in a shape; use + - * / on sizes", node.span
            )
        if not isinstance(node, ir.Const | ir.Name | ir.Binary):
            raise KernelcError("a shape dimension may only combine sizes and integers", node.span)
    return _retype_shape(dim)


def _retype_shape(dim: ir.Expr) -> ir.Expr:
    match dim:
        case ir.Const():
            return replace(dim, dtype=DType.I32)
        case ir.Name():
            return replace(dim, dtype=DType.I32)
        case ir.Binary():
            return replace(
                dim, lhs=_retype_shape(dim.lhs), rhs=_retype_shape(dim.rhs), dtype=DType.I32
            )
    raise AssertionError(dim)


def _coerce_literal(const: ir.Const, dtype: DType, span: Span) -> ir.Const:
    value = const.value
    if const.dtype is not None:
        if const.dtype != dtype:
            raise KernelcError(f"type mismatch: expected {dtype}, got {const.dtype}", span)
        return const
    if isinstance(value, float) and not dtype.is_float:
        raise KernelcError(f"a float literal cannot be used as {dtype}", span)
    if dtype == DType.BOOL:
        raise KernelcError("a number cannot be used as bool; write true or false", span)
    if dtype.is_float:
        return replace(const, value=float(value), dtype=dtype)
    lo, hi = _int_range(dtype)
    if not lo <= value <= hi:
        raise KernelcError(f"literal {value} does not fit in {dtype} [{lo}, {hi}]", span)
    return replace(const, dtype=dtype)


def _int_range(dtype: DType) -> tuple[int, int]:
    return {
        DType.I32: (-(2**31), 2**31 - 1),
        DType.U32: (0, 2**32 - 1),
        DType.U16: (0, 2**16 - 1),
    }[dtype]


def _is_literal(e: ir.Expr) -> bool:
    return isinstance(e, ir.Const) and e.dtype is None


def _default_literal(e: ir.Const) -> ir.Const:
    if isinstance(e.value, float):
        return replace(e, dtype=DType.F32)
    return _coerce_literal(e, DType.I32, e.span)


class _KernelChecker:
    def __init__(self, kernel: ir.Kernel) -> None:
        self.kernel = kernel
        self.sizes = _with_declared(size_names(kernel.all_params), kernel.sizes)
        self.params = _check_params(kernel.params, self.sizes)
        self.outputs = _check_params(kernel.outputs, self.sizes)
        for out in self.outputs:
            if out.is_scalar:
                raise KernelcError(
                    f"output '{out.name}' must be a tensor; give it a shape such as f32[1]",
                    out.span,
                )
            clash = next((p for p in self.params if p.name == out.name), None)
            if clash is not None:
                raise KernelcError(f"'{out.name}' is both an input and an output", out.span)
        self.tensors = {p.name: p for p in (*self.params, *self.outputs) if not p.is_scalar}
        base: dict[str, Symbol] = {n: Symbol("size", DType.I32, kernel.span) for n in self.sizes}
        for p in self.params:
            if p.is_scalar:
                base[p.name] = Symbol("scalar", p.dtype, p.span)
        self.scopes: list[dict[str, Symbol]] = [base]

    def check(self) -> ir.Kernel:
        body = self.block(self.kernel.body)
        stored = {n.tensor for n in ir.walk_body(body) if isinstance(n, ir.Store)}
        for out in self.outputs:
            if out.name not in stored:
                warn(
                    f"output '{out.name}' of '{self.kernel.name}' is never stored to; it stays "
                    "all zeros",
                    out.span,
                )
        return replace(
            self.kernel, params=self.params, outputs=self.outputs, body=body, sizes=self.sizes
        )

    # ---- scopes
    def lookup(self, name: str, span: Span) -> Symbol:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        if name in self.tensors:
            raise KernelcError(f"'{name}' is a tensor; index it, like {name}[i]", span)
        raise KernelcError(f"unknown name '{name}'", span)

    def declare(self, name: str, symbol: Symbol) -> None:
        for scope in self.scopes:
            if name in scope:
                raise KernelcError(
                    f"'{name}' is already defined in this kernel; choose another name",
                    symbol.span,
                    [(scope[name].span, "defined here")],
                )
        if name in self.tensors:
            raise KernelcError(f"'{name}' is already the name of a tensor parameter", symbol.span)
        self.scopes[-1][name] = symbol

    def block(self, body: tuple[ir.Stmt, ...]) -> tuple[ir.Stmt, ...]:
        self.scopes.append({})
        try:
            return tuple(self.stmt(s) for s in body)
        finally:
            self.scopes.pop()

    # ---- statements
    def stmt(self, s: ir.Stmt) -> ir.Stmt:
        match s:
            case ir.For():
                lo = self.index(s.lo, "a loop bound")
                hi = self.index(s.hi, "a loop bound")
                self.scopes.append({})
                try:
                    self.declare(s.var, Symbol("loop", DType.I32, s.span))
                    body = self.block(s.body)
                finally:
                    self.scopes.pop()
                return replace(s, lo=lo, hi=hi, body=body)
            case ir.Let() | ir.VarDecl():
                value = self.expr(s.value)
                if s.declared is not None:
                    value = self.coerce(value, s.declared)
                elif _is_literal(value):
                    value = _default_literal(value)
                kind = "let" if isinstance(s, ir.Let) else "var"
                self.declare(s.name, Symbol(kind, value.dtype, s.span))
                return replace(s, value=value, declared=value.dtype)
            case ir.Assign():
                symbol = self.lookup(s.name, s.span)
                if symbol.kind != "var":
                    hint = "; declare it with var" if symbol.kind == "let" else ""
                    raise KernelcError(
                        f"cannot assign to '{s.name}': it is a {symbol.kind}{hint}", s.span
                    )
                self.check_op(s.op, symbol.dtype, s.span)
                return replace(s, value=self.coerce(self.expr(s.value), symbol.dtype))
            case ir.Store():
                tensor = self.tensor(s.tensor, len(s.indices), s.span)
                if not tensor.is_output:
                    raise KernelcError(
                        f"cannot store to input '{s.tensor}'; only outputs are writable", s.span
                    )
                self.check_op(s.op, tensor.dtype, s.span)
                indices = tuple(self.index(i, "an index") for i in s.indices)
                value = self.coerce(self.expr(s.value), tensor.dtype)
                return replace(s, indices=indices, value=value)
            case ir.If():
                cond = self.coerce(self.expr(s.cond), DType.BOOL)
                return replace(s, cond=cond, then=self.block(s.then), orelse=self.block(s.orelse))
        raise AssertionError(s)

    def check_op(self, op: str, dtype: DType, span: Span) -> None:
        if op != "=" and not dtype.is_numeric:
            raise KernelcError(f"'{op}' needs a numeric target, not {dtype}", span)

    def tensor(self, name: str, rank: int, span: Span) -> ir.Param:
        tensor = self.tensors.get(name)
        if tensor is None:
            for scope in self.scopes:
                if name in scope:
                    raise KernelcError(f"'{name}' is a scalar and cannot be indexed", span)
            raise KernelcError(f"unknown tensor '{name}'", span)
        if rank != len(tensor.shape):
            raise KernelcError(
                f"'{name}' has rank {len(tensor.shape)} but is indexed with {rank} "
                f"ind{'ex' if rank == 1 else 'ices'}",
                span,
            )
        return tensor

    def index(self, e: ir.Expr, what: str) -> ir.Expr:
        typed = self.expr(e)
        if _is_literal(typed):
            return self.coerce(typed, DType.I32)
        if typed.dtype not in (DType.I32, DType.U32, DType.U16):
            raise KernelcError(f"{what} must be an integer, got {typed.dtype}", e.span)
        if typed.dtype != DType.I32:
            return ir.Cast(to=DType.I32, operand=typed, span=typed.span, dtype=DType.I32)
        return typed

    def coerce(self, e: ir.Expr, dtype: DType) -> ir.Expr:
        if _is_literal(e):
            return _coerce_literal(e, dtype, e.span)
        if e.dtype != dtype:
            raise KernelcError(
                f"type mismatch: expected {dtype}, got {e.dtype}; convert with {dtype}(...)",
                e.span,
            )
        return e

    # ---- expressions
    def expr(self, e: ir.Expr) -> ir.Expr:
        match e:
            case ir.Const():
                return e
            case ir.Name():
                return replace(e, dtype=self.lookup(e.name, e.span).dtype)
            case ir.Load():
                tensor = self.tensor(e.tensor, len(e.indices), e.span)
                indices = tuple(self.index(i, "an index") for i in e.indices)
                return replace(e, indices=indices, dtype=tensor.dtype)
            case ir.Unary():
                return self.unary(e)
            case ir.Binary():
                return self.binary(e)
            case ir.Select():
                cond = self.coerce(self.expr(e.cond), DType.BOOL)
                a, b = self.unify(self.expr(e.if_true), self.expr(e.if_false), e.span)
                return replace(e, cond=cond, if_true=a, if_false=b, dtype=a.dtype)
            case ir.Cast():
                operand = self.expr(e.operand)
                if _is_literal(operand):
                    operand = _default_literal(operand)
                return replace(e, operand=operand, dtype=e.to)
            case ir.Intrinsic():
                return self.intrinsic(e)
            case ir.Reduce():
                lo = self.index(e.lo, "a reduction bound")
                hi = self.index(e.hi, "a reduction bound")
                self.scopes.append({})
                try:
                    self.declare(e.var, Symbol("loop", DType.I32, e.span))
                    body = self.expr(e.body)
                finally:
                    self.scopes.pop()
                if _is_literal(body):
                    body = _default_literal(body)
                if not body.dtype.is_numeric:
                    raise KernelcError(f"sum needs a numeric body, got {body.dtype}", e.body.span)
                return replace(e, lo=lo, hi=hi, body=body, dtype=body.dtype)
            case ir.Search():
                return self.search(e)
            case ir.Rand():
                key = self.coerce(self.expr(e.key), DType.U32)
                counter = self.coerce(self.expr(e.counter), DType.U32)
                dtype = DType.U32 if e.bits else DType.F32
                return replace(e, key=key, counter=counter, dtype=dtype)
        raise AssertionError(e)

    def unify(self, a: ir.Expr, b: ir.Expr, span: Span) -> tuple[ir.Expr, ir.Expr]:
        if _is_literal(a) and _is_literal(b):
            if isinstance(a.value, float) or isinstance(b.value, float):
                return (
                    _coerce_literal(a, DType.F32, a.span),
                    _coerce_literal(b, DType.F32, b.span),
                )
            return _default_literal(a), _default_literal(b)
        if _is_literal(a):
            return _coerce_literal(a, b.dtype, a.span), b
        if _is_literal(b):
            return a, _coerce_literal(b, a.dtype, b.span)
        if a.dtype != b.dtype:
            raise KernelcError(
                f"type mismatch: {a.dtype} and {b.dtype}; convert one side, e.g. {a.dtype}(...)",
                span,
            )
        return a, b

    def unary(self, e: ir.Unary) -> ir.Expr:
        operand = self.expr(e.operand)
        if _is_literal(operand):
            operand = _default_literal(operand)
        dtype = operand.dtype
        ok = {
            "-": dtype.is_numeric and dtype.is_signed,
            "!": dtype == DType.BOOL,
            "~": dtype.is_int,
        }[e.op]
        if not ok:
            raise KernelcError(f"operator '{e.op}' cannot be applied to {dtype}", e.span)
        return replace(e, operand=operand, dtype=dtype)

    def binary(self, e: ir.Binary) -> ir.Expr:
        lhs, rhs = self.expr(e.lhs), self.expr(e.rhs)
        if _is_literal(lhs) and _is_literal(rhs) and e.op in ARITH:
            folded = _fold(e.op, lhs.value, rhs.value)
            if folded is not None:
                return ir.Const(value=folded, span=e.span)
        if e.op in LOGICAL:
            lhs, rhs = self.coerce(lhs, DType.BOOL), self.coerce(rhs, DType.BOOL)
            return replace(e, lhs=lhs, rhs=rhs, dtype=DType.BOOL)
        lhs, rhs = self.unify(lhs, rhs, e.span)
        dtype = lhs.dtype
        if e.op in COMPARE:
            if dtype == DType.BOOL and e.op not in ("==", "!="):
                raise KernelcError(f"operator '{e.op}' cannot compare bool values", e.span)
            return replace(e, lhs=lhs, rhs=rhs, dtype=DType.BOOL)
        if e.op in BITWISE:
            allowed = dtype.is_int or (dtype == DType.BOOL and e.op in ("&", "|", "^"))
            if not allowed:
                raise KernelcError(f"operator '{e.op}' needs integers, got {dtype}", e.span)
        elif not dtype.is_numeric:
            raise KernelcError(f"operator '{e.op}' needs numbers, got {dtype}", e.span)
        return replace(e, lhs=lhs, rhs=rhs, dtype=dtype)

    def intrinsic(self, e: ir.Intrinsic) -> ir.Expr:
        args = [self.expr(a) for a in e.args]
        if len(args) == 1:
            (a,) = args
            if _is_literal(a):
                a = _coerce_literal(a, DType.F32, a.span) if e.fn != "abs" else _default_literal(a)
            args = [a]
        elif len(args) == 2:
            args = list(self.unify(args[0], args[1], e.span))
        else:
            first, second = self.unify(args[0], args[1], e.span)
            second, third = self.unify(second, args[2], e.span)
            first, second = self.unify(first, second, e.span)
            args = [first, second, third]
        dtype = args[0].dtype
        needs_float = e.fn in ("sqrt", "exp", "log", "fma", "floor")
        if needs_float and not dtype.is_float:
            raise KernelcError(
                f"{e.fn} needs a float argument, got {dtype}; convert with f32(...)", e.span
            )
        if not dtype.is_numeric:
            raise KernelcError(f"{e.fn} needs numbers, got {dtype}", e.span)
        return replace(e, args=tuple(args), dtype=dtype)

    def search(self, e: ir.Search) -> ir.Expr:
        tensor = self.tensor(e.tensor, len(e.indices), e.span)
        indices: list[ir.Expr | ir.Slice] = []
        for index in e.indices:
            if isinstance(index, ir.Slice):
                lo = self.index(index.lo, "a slice bound") if index.lo is not None else None
                hi = self.index(index.hi, "a slice bound") if index.hi is not None else None
                indices.append(replace(index, lo=lo, hi=hi))
            else:
                indices.append(self.index(index, "an index"))
        if not tensor.dtype.is_numeric:
            raise KernelcError(f"search needs a numeric tensor, not {tensor.dtype}", e.span)
        value = self.coerce(self.expr(e.value), tensor.dtype)
        return replace(e, indices=tuple(indices), value=value, dtype=DType.I32)


def _fold(op: str, a: int | float, b: int | float) -> int | float | None:
    """Fold arithmetic on two untyped literals, so ``2 * 3`` stays an adaptable literal."""
    if isinstance(a, bool) or isinstance(b, bool):
        return None
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/" and b != 0:
        if isinstance(a, int) and isinstance(b, int):
            return int(a / b)
        return a / b
    return None


def _check_graph(graph: ir.Graph, module: ir.Module) -> ir.Graph:
    sizes = _with_declared(size_names(graph.all_params + graph.temps), graph.sizes)
    params = _check_params(graph.params, sizes)
    outputs = _check_params(graph.outputs, sizes)
    temps = _check_params(graph.temps, sizes)
    declared: dict[str, ir.Param] = {}
    for p in (*params, *outputs, *temps):
        if p.name in declared:
            raise KernelcError(f"'{p.name}' is declared twice in graph '{graph.name}'", p.span)
        declared[p.name] = p
    for out in outputs:
        if out.is_scalar:
            raise KernelcError(f"graph output '{out.name}' must be a tensor", out.span)
    produced: dict[str, tuple[DType, int]] = {
        p.name: (p.dtype, len(p.shape)) for p in (*params, *outputs, *temps)
    }
    for call in graph.calls:
        kernel = module.kernel(call.kernel)
        if kernel is None:
            if module.graph(call.kernel) is not None:
                message = f"'{call.kernel}' is a graph; a graph can only call kernels"
            else:
                message = f"unknown kernel '{call.kernel}'"
            raise KernelcError(message, call.span)
        _check_call(call, kernel, produced, {p.name for p in params})
    return replace(graph, params=params, outputs=outputs, temps=temps, sizes=sizes)


def _check_call(
    call: ir.TaskCall,
    kernel: ir.Kernel,
    produced: dict[str, tuple[DType, int]],
    inputs: set[str],
) -> None:
    if len(call.args) != len(kernel.params):
        raise KernelcError(
            f"'{kernel.name}' takes {len(kernel.params)} argument"
            f"{'s' if len(kernel.params) != 1 else ''}, got {len(call.args)}",
            call.span,
            [(kernel.span, f"'{kernel.name}' is defined here")],
        )
    if len(call.results) != len(kernel.outputs):
        raise KernelcError(
            f"'{kernel.name}' has {len(kernel.outputs)} output"
            f"{'s' if len(kernel.outputs) != 1 else ''}, but {len(call.results)} "
            f"{'is' if len(call.results) == 1 else 'are'} assigned",
            call.span,
        )
    for arg, param in zip(call.args, kernel.params, strict=True):
        if isinstance(arg, ir.Const):
            if not param.is_scalar:
                raise KernelcError(
                    f"argument for '{param.name}' must be a tensor, not a literal", arg.span
                )
            _coerce_literal(arg, param.dtype, arg.span)
            continue
        if arg.name not in produced:
            raise KernelcError(f"unknown tensor '{arg.name}'", arg.span)
        dtype, rank = produced[arg.name]
        rank = _ref_rank(arg, rank)
        if dtype != param.dtype:
            raise KernelcError(
                f"type mismatch: '{param.name}' of '{kernel.name}' is {param.dtype}, "
                f"'{arg.name}' is {dtype}",
                arg.span,
            )
        if rank != len(param.shape):
            raise KernelcError(
                f"rank mismatch: '{param.name}' of '{kernel.name}' has rank {len(param.shape)}, "
                f"the argument has rank {rank}",
                arg.span,
            )
    for ref, out in zip(call.results, kernel.outputs, strict=True):
        if ref.name in inputs:
            raise KernelcError(f"cannot write graph input '{ref.name}'", ref.span)
        if ref.name in produced:
            dtype, rank = produced[ref.name]
            rank = _ref_rank(ref, rank)
            if dtype != out.dtype or rank != len(out.shape):
                raise KernelcError(
                    f"'{ref.name}' is {dtype} of rank {rank}, but '{kernel.name}' produces "
                    f"'{out.name}' as {out.dtype} of rank {len(out.shape)}",
                    ref.span,
                )
        elif ref.slices is not None:
            raise KernelcError(
                f"'{ref.name}' must be declared (let {ref.name}: type[shape];) before a slice of "
                "it is written",
                ref.span,
            )
        else:
            produced[ref.name] = (out.dtype, len(out.shape))


def _ref_rank(ref: ir.TensorRef, rank: int) -> int:
    if ref.slices is None:
        return rank
    if len(ref.slices) != rank:
        raise KernelcError(
            f"'{ref.name}' has rank {rank} but is sliced with {len(ref.slices)} indices", ref.span
        )
    return sum(isinstance(s, ir.Slice) for s in ref.slices)
