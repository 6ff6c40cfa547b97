"""Kernel bodies: the C statements of a task, a worksharing loop or a sequential step, as an
``ir.Kernel`` plus the arguments of one call to it.

A kernel sees each array it touches as a parameter bound to a region of a graph tensor. When the
region is a depend section, indices are rebased (``v1[tid*CH + i]`` becomes ``v1[i]`` on the
section ``v1[tid*CH : CH]``). Scalars of the code that created the task are captured: compile-time
values become ``let``s at the top of the body, thread numbers and unrolled loop counters become
scalar parameters with a constant per task instance, and the function's scalar parameters are
passed through from the graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kernelc import ir
from kernelc.diagnostics import KernelcError, Span
from kernelc.frontends.omp import c_types, loops
from kernelc.frontends.omp import ctree as c
from kernelc.frontends.omp.exprs import ALLOCATION, Context, ExprLowerer, flatten_index
from kernelc.frontends.omp.state import Names
from kernelc.types import DType


@dataclass(frozen=True)
class ArrayUse:
    """How one kernel sees one C array (or one device scalar, a tensor of shape [1])."""

    c_name: str
    dtype: DType
    tensor: str
    slices: tuple[ir.Slice, ...] | None  # the region of ``tensor``; None for the whole tensor
    shape: tuple[ir.Expr, ...]  # the kernel parameter's shape
    lo: tuple[c.Expr | None, ...]  # per dimension: the section start in C, None when 0
    partial: tuple[bool, ...]  # per dimension: the region may not span the whole dimension
    written: bool
    scalar: bool = False


@dataclass(frozen=True)
class Captured:
    """What an outer name means inside a kernel."""

    kind: str  # "value", "scalar" (graph scalar parameter), "array"
    value: ir.Expr | None = None


@dataclass
class Built:
    kernel: ir.Kernel
    args: tuple[ir.TensorRef | ir.Const, ...]
    results: tuple[ir.TensorRef, ...]


@dataclass
class Local:
    """A scalar local of the kernel: its IR name, type and whether it is ever reassigned."""

    ir_name: str
    dtype: DType
    mutable: bool


@dataclass
class KernelBuilder:
    """Lowers the statements of one construct; one builder per task instance."""

    ctx: Context
    kernel_name: str
    kind: str  # "task", "loop" or "step"
    uses: dict[str, ArrayUse]
    capture: Callable[[str, Span], Captured | None]
    instance: dict[str, int]  # instance variables (thread number, unrolled counters): values
    reserved: set[str]  # names locals must not take: graph scalars, instance variables
    span: Span
    scopes: list[dict[str, Local]] = field(default_factory=lambda: [{}])
    names: Names = field(default_factory=lambda: Names(set()))  # the kernel's IR names
    prelude: list[ir.Stmt] = field(default_factory=list)
    captured: dict[str, ir.Expr] = field(default_factory=dict)
    scalar_params: dict[str, tuple[DType, ir.TensorRef | ir.Const]] = field(default_factory=dict)
    used_arrays: list[str] = field(default_factory=list)
    rebases: dict[str, tuple[ir.Expr | None, ...]] = field(default_factory=dict)
    assigned: set[str] = field(default_factory=set)
    dependent: set[str] = field(default_factory=set)
    in_clause: bool = False

    def __post_init__(self) -> None:
        self.names.taken |= (
            set(self.uses) | set(self.ctx.macros) | self.reserved | set(self.instance)
        )
        self.lowerer = ExprLowerer(self.ctx, self)

    # ------------------------------------------------------------------------- names
    def declare(self, c_name: str, dtype: DType, mutable: bool) -> str:
        base = c_name if c_name not in self.uses else f"{c_name}_local"
        ir_name = self.names.fresh(base)
        self.scopes[-1][c_name] = Local(ir_name, dtype, mutable)
        return ir_name

    def local(self, c_name: str) -> Local | None:
        for scope in reversed(self.scopes):
            if c_name in scope:
                return scope[c_name]
        return None

    # ---------------------------------------------------------------- resolver protocol
    def name(self, node: c.Name) -> ir.Expr:
        found = self.local(node.name)
        if found is not None:
            return ir.Name(name=found.ir_name, span=node.span, dtype=found.dtype)
        use = self.uses.get(node.name)
        if use is not None and use.scalar:
            return self.load(node.name, [], node)
        if use is not None:
            raise _array_as_value(node.name, node.span)
        return self.captured_name(node)

    def captured_name(self, node: c.Name) -> ir.Expr:
        if node.name in self.captured:
            value = self.captured[node.name]
            return ir.Name(name=value.name, span=node.span, dtype=value.dtype)
        outer = self.capture(node.name, node.span)
        if outer is None:
            raise KernelcError(f"unknown name '{node.name}'", node.span)
        if outer.kind == "array":
            raise _array_as_value(node.name, node.span)
        if outer.kind == "scalar":
            dtype = outer.value.dtype
            self.scalar_params[node.name] = (
                dtype,
                ir.TensorRef(name=node.name, slices=None, span=node.span),
            )
            ref = ir.Name(name=node.name, span=node.span, dtype=dtype)
            self.captured[node.name] = ref
            return ref
        value = self.import_value(outer.value)
        ir_name = self.names.fresh(node.name)
        self.prelude.append(ir.Let(name=ir_name, value=value, span=node.span, declared=value.dtype))
        ref = ir.Name(name=ir_name, span=node.span, dtype=value.dtype)
        self.captured[node.name] = ref
        return ref

    def import_value(self, value: ir.Expr) -> ir.Expr:
        """Make a compile-time value usable in the kernel: its instance variables become scalar
        parameters (a constant per task instance), graph scalars are passed through."""
        for node in ir.walk(value):
            if not isinstance(node, ir.Name):
                continue
            if node.name in self.instance:
                if node.name not in self.scalar_params:
                    const = ir.Const(
                        value=self.instance[node.name], span=self.span, dtype=DType.I32
                    )
                    self.scalar_params[node.name] = (DType.I32, const)
            elif node.name not in self.ctx.macros and node.name not in self.scalar_params:
                ref = ir.TensorRef(name=node.name, slices=None, span=node.span)
                self.scalar_params[node.name] = (node.dtype, ref)
        return value

    def load(self, array: str, indices: list[ir.Expr], node: c.Expr) -> ir.Expr:
        use = self.array_use(array, node.span)
        if use.scalar:
            zero = ir.Const(value=0, span=node.span, dtype=DType.I32)
            return ir.Load(tensor=array, indices=(zero,), span=node.span, dtype=use.dtype)
        self.check_rank(use, indices, node.span)
        rebased = self.rebase(use, indices)
        return ir.Load(tensor=array, indices=rebased, span=node.span, dtype=use.dtype)

    def omp_query(self, fn: str, node: c.Call) -> ir.Expr:
        if self.in_clause or self.kind == "step" or fn == "omp_get_num_threads":
            return self.capture_query(fn, node)
        where = {
            "task": "inside a task it is the number of whichever thread runs the task, not of "
            "the thread that created it; capture it before the task "
            "(int tid = omp_get_thread_num();) and use tid",
            "loop": "inside a worksharing loop it depends on the schedule",
        }[self.kind]
        raise KernelcError(f"omp_get_thread_num() is not supported here: {where}", node.span)

    def capture_query(self, fn: str, node: c.Call) -> ir.Expr:
        outer = self.capture(f"{fn}()", node.span)
        if outer is None or outer.value is None:
            raise KernelcError(f"{fn}() has no value here", node.span)
        return self.import_value(outer.value)

    # ----------------------------------------------------------------------- arrays
    def array_use(self, array: str, span: Span) -> ArrayUse:
        use = self.uses.get(array)
        if use is None:
            outer = self.capture(array, span)
            if outer is not None and outer.kind != "array":
                raise KernelcError(f"'{array}' is a scalar and cannot be indexed", span)
            raise KernelcError(f"unknown array '{array}'", span)
        if array not in self.used_arrays:
            self.used_arrays.append(array)
        return use

    def check_rank(self, use: ArrayUse, indices: list, span: Span) -> None:
        if len(indices) != len(use.shape):
            raise KernelcError(
                f"'{use.c_name}' has {len(use.shape)} dimension(s) but is indexed with "
                f"{len(indices)}; index every dimension (a partial index is a pointer)",
                span,
            )

    def rebase(self, use: ArrayUse, indices: list[ir.Expr]) -> tuple[ir.Expr, ...]:
        starts = self.section_starts(use)
        out = []
        for dim, (index, start, partial) in enumerate(
            zip(indices, starts, use.partial, strict=True)
        ):
            if partial and self.data_dependent(index):
                raise KernelcError(
                    f"this index of '{use.c_name}' is data-dependent, but the task's depend "
                    f"section covers only part of dimension {dim}; the task could read outside "
                    "it. Name the whole dimension in the depend clause",
                    index.span,
                )
            out.append(index if start is None else self.difference(index, start))
        return tuple(out)

    def section_starts(self, use: ArrayUse) -> tuple[ir.Expr | None, ...]:
        if use.c_name not in self.rebases:
            self.in_clause = True
            try:
                starts = tuple(
                    None if lo is None else self.lowerer.index_value(lo, "a section start")
                    for lo in use.lo
                )
            finally:
                self.in_clause = False
            self.rebases[use.c_name] = starts
        return self.rebases[use.c_name]

    def aliases(self) -> dict[str, Poly]:
        """Polynomial forms of the captured values, so section starts cancel against indices."""
        result: dict[str, Poly] = {}
        for stmt in self.prelude:
            if isinstance(stmt, ir.Let) and (form := poly(stmt.value, result)) is not None:
                result[stmt.name] = form
        return result

    def difference(self, index: ir.Expr, start: ir.Expr) -> ir.Expr:
        """``index - start``, simplified (``tid*CH + i - tid*CH`` is ``i``)."""
        aliases = self.aliases()
        a, b = poly(index, aliases), poly(start, aliases)
        if a is not None and b is not None:
            return from_poly(sub(a, b), index.span)
        return ir.Binary(op="-", lhs=index, rhs=start, span=index.span, dtype=DType.I32)

    def data_dependent(self, e: ir.Expr) -> bool:
        """Whether an index depends on array data (directly or through locals)."""
        for node in ir.walk(e):
            if isinstance(node, ir.Load | ir.Search | ir.Rand):
                return True
            if isinstance(node, ir.Name) and node.name in self.dependent:
                return True
        return False

    # --------------------------------------------------------------------- statements
    def block(self, stmts: tuple[c.Stmt, ...]) -> tuple[ir.Stmt, ...]:
        self.scopes.append({})
        try:
            out: list[ir.Stmt] = []
            for s in stmts:
                out.extend(self.stmt(s))
            return tuple(out)
        finally:
            self.scopes.pop()

    def stmt(self, s: c.Stmt) -> list[ir.Stmt]:
        match s:
            case c.Block():
                return list(self.block(s.items))
            case c.Decl():
                return self.decl(s)
            case c.ExprStmt():
                return self.expr_stmt(s.expr)
            case c.If():
                cond = c_types.truth(self.lowerer.lower(s.cond))
                then = self.block((s.then,))
                orelse = self.block((s.orelse,)) if s.orelse is not None else ()
                return [ir.If(cond=cond, then=then, orelse=orelse, span=s.span)]
            case c.For():
                return [self.loop(s)]
            case c.Empty():
                return []
            case c.Construct():
                return self.construct(s)
            case c.Return():
                raise KernelcError(f"return is not supported inside a {self.kind} body", s.span)
            case c.Unsupported():
                raise unsupported_statement(s)
            case c.Directive():
                raise KernelcError("preprocessor lines inside functions are not supported", s.span)
        raise KernelcError("this statement is not supported", s.span)

    def construct(self, s: c.Construct) -> list[ir.Stmt]:
        words = s.pragma.words
        if words == ("simd",) and s.body is not None:
            return self.stmt(s.body)
        where = {"task": "a task", "loop": "a worksharing loop", "step": "sequential code"}
        raise KernelcError(
            f"'#pragma omp {s.pragma.directive}' is not supported inside {where[self.kind]}",
            s.pragma.words_span,
        )

    def decl(self, s: c.Decl) -> list[ir.Stmt]:
        out: list[ir.Stmt] = []
        dtype = c_types.scalar_type(s.words, s.span)
        for d in s.declarators:
            for n in loops.walk(d.init):
                if isinstance(n, c.Call) and isinstance(n.fn, c.Name) and n.fn.name in ALLOCATION:
                    ExprLowerer.allocation_error(n.fn.name, n.span)
            if d.dims or d.stars:
                what = "arrays" if d.dims else "pointers"
                raise KernelcError(
                    f"{what} cannot be declared inside a {self.kind} body; declare arrays in the "
                    "function (or the target region) with a static size",
                    d.span,
                )
            if isinstance(d.init, c.InitList):
                raise KernelcError("a scalar cannot have a brace initialiser", d.init.span)
            use = self.uses.get(d.name)
            if use is not None and use.scalar and self.kind == "step":
                if d.init is not None:
                    out.append(self.assign(c.Name(d.name, d.span), "=", d.init, d.span))
                continue
            value = (
                c_types.convert(self.lowerer.lower(d.init), dtype)
                if d.init is not None
                else c_types.const(0.0 if dtype.is_float else 0, dtype, d.span)
            )
            if dtype == DType.BOOL and d.init is None:
                value = c_types.const(False, DType.BOOL, d.span)
            mutable = d.name in self.assigned or d.init is None
            ir_name = self.declare(d.name, dtype, mutable)
            if self.data_dependent(value):
                self.dependent.add(ir_name)
            node = ir.VarDecl if mutable else ir.Let
            out.append(node(name=ir_name, value=value, span=d.span, declared=dtype))
        return out

    def expr_stmt(self, e: c.Expr) -> list[ir.Stmt]:
        match e:
            case c.Assign():
                return [self.assign(e.target, e.op, e.value, e.span)]
            case c.IncDec():
                one = c.IntLit(1, "", e.span)
                return [self.assign(e.operand, "+=" if e.op == "++" else "-=", one, e.span)]
            case c.Comma():
                return self.expr_stmt(e.lhs) + self.expr_stmt(e.rhs)
        self.lowerer.lower(e)
        raise KernelcError("this statement has no effect", e.span)

    def assign(self, target: c.Expr, op: str, value: c.Expr, span: Span) -> ir.Stmt:
        if isinstance(target, c.Name) and self.local(target.name) is not None:
            var = self.local(target.name)
            if not var.mutable:
                raise AssertionError(f"{target.name} assigned but declared immutable")
            ir_op, rhs = self.assigned_value(target, op, value, var.dtype, span)
            if self.data_dependent(rhs):
                self.dependent.add(var.ir_name)
            return ir.Assign(name=var.ir_name, op=ir_op, value=rhs, span=span)
        if isinstance(target, c.Index):
            base, parts = flatten_index(target)
            if not isinstance(base, c.Name):
                raise KernelcError("only named arrays can be assigned", target.span)
            use = self.array_use(base.name, target.span)
            indices = [self.lowerer.index_value(p) for p in parts]
            self.check_rank(use, indices, target.span)
            ir_op, rhs = self.assigned_value(target, op, value, use.dtype, span)
            rebased = self.rebase(use, indices)
            return ir.Store(tensor=base.name, indices=rebased, op=ir_op, value=rhs, span=span)
        if isinstance(target, c.Name):
            use = self.uses.get(target.name)
            if use is not None and use.scalar:
                zero = c.IntLit(0, "", target.span)
                return self.assign(c.Index(target, zero, target.span), op, value, span)
            if use is not None:
                raise _array_as_value(target.name, target.span)
            raise KernelcError(
                f"'{target.name}' is declared outside this {self.kind}; a {self.kind} may only "
                "assign its own locals and array elements"
                + (" (use a reduction clause for sums)" if self.kind == "loop" else ""),
                target.span,
            )
        if isinstance(target, c.Unary) and target.op == "*":
            self.lowerer.lower(target)
        raise KernelcError("this cannot be assigned", target.span)

    def assigned_value(
        self, target: c.Expr, op: str, value: c.Expr, dtype: DType, span: Span
    ) -> tuple[str, ir.Expr]:
        """The IR operator and value of ``target op value`` under C's conversions: ``x op= e``
        stays a compound operator when C's ``x = x op e`` needs no conversion."""
        if op == "=":
            return "=", c_types.convert(self.lowerer.lower(value), dtype)
        rhs = self.lowerer.lower(value)
        keep = (DType.F32, DType.I32, DType.U32)
        if op in ("+=", "-=", "*=", "/=") and dtype in keep and rhs.dtype == dtype:
            return op, rhs
        binary = c.Binary(op[:-1], target, value, span)
        return "=", c_types.convert(self.lowerer.lower(binary), dtype)

    def loop(self, s: c.For) -> ir.For:
        canon = loops.canonical(s)
        self.scopes.append({})
        try:
            var_name = self.declare(canon.var, DType.I32, False)
            trip = self.names.fresh(f"{canon.var}_trip")
            bounds = [self.lowerer.lower(canon.start), self.lowerer.lower(canon.bound)]
            if any(self.data_dependent(b) for b in bounds):
                self.dependent.add(var_name)
            body = self.block((s.body,))
            return loops.ir_loop(canon, self.lowerer, var_name, trip, body)
        finally:
            self.scopes.pop()

    # ----------------------------------------------------------------------- finish
    def finish(self, body: tuple[ir.Stmt, ...], extra_outputs: tuple[str, ...] = ()) -> Built:
        """The kernel and the arguments of this instance's call."""
        prelude = _pruned(self.prelude, body)
        referenced = _names_in(tuple(prelude) + body)
        params: list[ir.Param] = []
        args: list[ir.TensorRef | ir.Const] = []
        for name, (dtype, arg) in self.scalar_params.items():
            if name not in referenced:
                continue
            params.append(ir.Param(name=name, dtype=dtype, shape=(), span=self.span))
            args.append(arg)
        outputs: list[ir.Param] = []
        results: list[ir.TensorRef] = []
        for array in self.used_arrays + [a for a in extra_outputs if a not in self.used_arrays]:
            use = self.uses[array]
            ref = ir.TensorRef(name=use.tensor, slices=use.slices, span=self.span)
            param = ir.Param(
                name=array, dtype=use.dtype, shape=use.shape, span=self.span, is_output=use.written
            )
            if use.written:
                outputs.append(param)
                results.append(ref)
            else:
                params.append(param)
                args.append(ref)
        sizes = tuple(sorted(referenced & set(self.ctx.macros)))
        kernel = ir.Kernel(
            name=self.kernel_name,
            params=tuple(params),
            outputs=tuple(outputs),
            body=tuple(prelude) + body,
            span=self.span,
            sizes=sizes,
        )
        return Built(kernel, tuple(args), tuple(results))


Poly = dict[tuple[str, ...], int]  # monomial (sorted names) -> coefficient


def poly(e: ir.Expr, aliases: dict[str, Poly]) -> Poly | None:
    """An integer expression as a polynomial in its names, or None (loads, division...)."""
    match e:
        case ir.Const(value=v) if isinstance(v, int) and not isinstance(v, bool):
            return {(): v} if v else {}
        case ir.Name(name=n):
            return dict(aliases[n]) if n in aliases else {(n,): 1}
        case ir.Cast(operand=inner) if inner.dtype is not None and inner.dtype.is_int:
            return poly(inner, aliases) if e.to == DType.I32 else None
        case ir.Unary(op="-", operand=inner):
            p = poly(inner, aliases)
            return None if p is None else {m: -k for m, k in p.items()}
        case ir.Binary(op="+" | "-" | "*", lhs=lhs, rhs=rhs):
            a, b = poly(lhs, aliases), poly(rhs, aliases)
            if a is None or b is None:
                return None
            if e.op == "+":
                return sub(a, {m: -k for m, k in b.items()})
            if e.op == "-":
                return sub(a, b)
            product: Poly = {}
            for ma, ka in a.items():
                for mb, kb in b.items():
                    m = tuple(sorted(ma + mb))
                    product[m] = product.get(m, 0) + ka * kb
            return {m: k for m, k in product.items() if k}
    return None


def sub(a: Poly, b: Poly) -> Poly:
    out = dict(a)
    for m, k in b.items():
        out[m] = out.get(m, 0) - k
    return {m: k for m, k in out.items() if k}


def from_poly(form: Poly, span: Span) -> ir.Expr:
    """An IR expression for a polynomial (its names are i32 scalars), constant last."""
    expr: ir.Expr | None = None
    for monomial in sorted(m for m in form if m):
        coef = form[monomial]
        term: ir.Expr | None = None
        for name in monomial:
            factor = ir.Name(name=name, span=span, dtype=DType.I32)
            term = factor if term is None else _i32("*", term, factor, span)
        if abs(coef) != 1:
            term = _i32("*", ir.Const(value=abs(coef), span=span, dtype=DType.I32), term, span)
        if expr is None:
            expr = term if coef > 0 else ir.Unary(op="-", operand=term, span=span, dtype=DType.I32)
        else:
            expr = _i32("+" if coef > 0 else "-", expr, term, span)
    const = form.get((), 0)
    if expr is None:
        return ir.Const(value=const, span=span, dtype=DType.I32)
    if const:
        k = ir.Const(value=abs(const), span=span, dtype=DType.I32)
        expr = _i32("+" if const > 0 else "-", expr, k, span)
    return expr


def _i32(op: str, a: ir.Expr, b: ir.Expr, span: Span) -> ir.Binary:
    return ir.Binary(op=op, lhs=a, rhs=b, span=span, dtype=DType.I32)


def unsupported_statement(s: c.Unsupported) -> KernelcError:
    messages = {
        "while": "while loops are not supported: a loop needs a trip count known on entry; "
        "write a canonical for loop (for (int i = 0; i < n; i++))",
        "do": "do-while loops are not supported; write a canonical for loop",
        "switch": "switch is not supported; use if / else",
        "goto": "goto is not supported: kernelc needs structured control flow to build a "
        "static task graph",
        "label": "labels (and goto) are not supported: kernelc needs structured control flow",
        "break": "break is not supported: a loop's trip count must be known on entry; guard "
        "the body with an if instead",
        "continue": "continue is not supported; guard the rest of the body with an if",
    }
    return KernelcError(messages[s.what], s.span)


def _array_as_value(name: str, span: Span) -> KernelcError:
    return KernelcError(
        f"'{name}' is an array; using it without an index would be pointer arithmetic, which "
        "kernelc does not support. Index every dimension, like "
        f"{name}[i]",
        span,
    )


def _names_in(stmts: tuple[ir.Stmt, ...]) -> set[str]:
    return {n.name for n in ir.walk_body(stmts) if isinstance(n, ir.Name)}


def _pruned(prelude: list[ir.Stmt], body: tuple[ir.Stmt, ...]) -> list[ir.Stmt]:
    """The captured values the body (or another kept capture) uses."""
    kept = list(prelude)
    while True:
        used = _names_in(tuple(kept) + body)
        keep = [s for s in kept if not isinstance(s, ir.Let) or s.name in used]
        if len(keep) == len(kept):
            return keep
        kept = keep
