"""Kernel bodies to LLVM: statements and expressions of one task, the general (any kernel) path.

Every value has the interpreter's meaning (see ops.py for the scalar rules). Memory accesses follow
docs/LANGUAGE.md: a load clamps each index into its extent and a store outside the array is
dropped. Sizes are compile-time constants here (the module is compiled per bound program), so an
index whose affine form provably stays inside its extent, given the loop ranges, is computed in
64-bit arithmetic straight from its form, with no clamp or test: that is what lets LLVM's
vectoriser see unit-stride accesses in stencils.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llvmlite import ir as ll

from kernelc import ir
from kernelc.affine import Affine, Interval, affine, bounds
from kernelc.backends.cpu import ops
from kernelc.backends.cpu.ops import I32, I64
from kernelc.diagnostics import Unsupported
from kernelc.types import DType


@dataclass(frozen=True)
class View:
    """A kernel tensor parameter as a box of its graph tensor: element offset and strides."""

    dtype: DType
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int

    @property
    def empty(self) -> bool:
        return any(n == 0 for n in self.shape)


@dataclass
class Local:
    """What a name means in the body: an SSA value, or a stack slot for a ``var``."""

    dtype: DType
    value: ll.Value | None = None
    wide: ll.Value | None = None  # the i64 value of an index (loop variables)
    slot: ll.Value | None = None
    range: Interval | None = None  # the values it can take, when known at compile time
    form: Affine | None = None  # its affine form, for a ``let`` of an affine i32 expression


def counted_loop(
    b: ll.IRBuilder,
    lo: ll.Value,
    hi: ll.Value,
    inits: list[ll.Value],
    body: Callable[[ll.Value, list[ll.Value]], list[ll.Value]],
    step: int = 1,
) -> list[ll.Value]:
    """``for iv in lo .. hi by step`` (i64) carrying values; returns the carried values at exit."""
    before = b.block
    header = b.append_basic_block("loop")
    inside = b.append_basic_block("body")
    after = b.append_basic_block("done")
    b.branch(header)
    b.position_at_end(header)
    iv = b.phi(I64, "i")
    iv.add_incoming(lo, before)
    phis = []
    for init in inits:
        phi = b.phi(init.type)
        phi.add_incoming(init, before)
        phis.append(phi)
    b.cbranch(b.icmp_signed("<", iv, hi), inside, after)
    b.position_at_end(inside)
    updated = body(iv, list(phis))
    nxt = b.add(iv, ll.Constant(I64, step))
    nxt.flags.append("nsw")
    latch = b.block
    iv.add_incoming(nxt, latch)
    for phi, value in zip(phis, updated, strict=True):
        phi.add_incoming(value, latch)
    b.branch(header)
    b.position_at_end(after)
    return phis


def unsupported(what: str, node) -> Unsupported:
    return Unsupported(f"the cpu target does not support {what}", node.span)


class BodyLowering:
    """Lowers one kernel body into the function the builder is positioned in."""

    def __init__(
        self,
        builder: ll.IRBuilder,
        views: dict[str, View],
        pointers: dict[str, ll.Value],
        names: dict[str, Local],
        split: ir.For | None = None,
        split_range: tuple[ll.Value, ll.Value] | None = None,
    ) -> None:
        self.b = builder
        self.views = views
        self.pointers = pointers
        self.scopes: list[dict[str, Local]] = [dict(names)]
        self.split = split
        self.split_range = split_range
        self.entry = builder.block

    # ------------------------------------------------------------------------------ scopes
    def lookup(self, name: str) -> Local:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise AssertionError(f"unbound name {name}")

    def _visible(self) -> dict[str, Local]:
        merged: dict[str, Local] = {}
        for scope in self.scopes:
            merged.update(scope)
        return merged

    def _ranges_aliases(self) -> tuple[dict[str, Interval], dict[str, Affine]]:
        visible = self._visible()
        ranges = {n: loc.range for n, loc in visible.items() if loc.range is not None}
        aliases = {n: loc.form for n, loc in visible.items() if loc.form is not None}
        return ranges, aliases

    def affine_form(self, e: ir.Expr) -> Affine | None:
        """The affine form of an i32 index expression built only from i32 values.

        Other integer types wrap at other widths, so their affine forms would not be exact.
        """
        if any(
            getattr(n, "dtype", DType.I32) != DType.I32
            for n in ir.walk(e)
            if not isinstance(n, ir.Slice)
        ):
            return None
        return affine(e, self._ranges_aliases()[1])

    def range_of(self, e: ir.Expr) -> Interval | None:
        form = self.affine_form(e)
        if form is None:
            return None
        result = bounds(form, self._ranges_aliases()[0])
        return result[0] if result else None

    # -------------------------------------------------------------------------- statements
    def block(self, body: tuple[ir.Stmt, ...]) -> None:
        self.scopes.append({})
        try:
            for stmt in body:
                self.stmt(stmt)
        finally:
            self.scopes.pop()

    def stmt(self, s: ir.Stmt) -> None:
        match s:
            case ir.For():
                self.loop(s)
            case ir.Let():
                value = self.expr(s.value)
                search_range = None
                if isinstance(s.value, ir.Search):
                    extent = self._search_extent(s.value)
                    search_range = (0, max(extent - 2, 0))
                self.scopes[-1][s.name] = Local(
                    s.value.dtype, value, range=search_range, form=self.affine_form(s.value)
                )
            case ir.VarDecl():
                dtype = s.value.dtype
                with self.b.goto_entry_block():
                    slot = self.b.alloca(ops.value_type(dtype), name=s.name)
                self.b.store(self.expr(s.value), slot)
                self.scopes[-1][s.name] = Local(dtype, slot=slot)
            case ir.Assign():
                local = self.lookup(s.name)
                value = self.expr(s.value)
                if s.op != "=":
                    old = self.b.load(local.slot, typ=ops.value_type(local.dtype))
                    value = ops.compound(self.b, s.op, old, value, local.dtype)
                self.b.store(value, local.slot)
            case ir.Store():
                self.store(s)
            case ir.If():
                cond = self.expr(s.cond)
                if s.orelse:
                    with self.b.if_else(cond) as (then, otherwise):
                        with then:
                            self.block(s.then)
                        with otherwise:
                            self.block(s.orelse)
                else:
                    with self.b.if_then(cond):
                        self.block(s.then)
            case _:
                raise unsupported(f"the statement '{type(s).__name__}'", s)

    def loop(self, s: ir.For) -> None:
        lo = self.b.sext(self.expr(s.lo), I64)
        hi = self.b.sext(self.expr(s.hi), I64)
        if s is self.split and self.split_range is not None:
            lo = ops.call(self.b, "llvm.smax", [lo, self.split_range[0]])
            hi = ops.call(self.b, "llvm.smin", [hi, self.split_range[1]])
        reach = self._loop_range(s.lo, s.hi)

        def body(iv: ll.Value, carried: list[ll.Value]) -> list[ll.Value]:
            local = Local(DType.I32, self.b.trunc(iv, I32), wide=iv, range=reach)
            self.scopes.append({s.var: local})
            try:
                self.block(s.body)
            finally:
                self.scopes.pop()
            return []

        counted_loop(self.b, lo, hi, [], body)

    def _loop_range(self, lo: ir.Expr, hi: ir.Expr) -> Interval | None:
        lo_r, hi_r = self.range_of(lo), self.range_of(hi)
        if lo_r is None or hi_r is None or hi_r[1] - 1 < lo_r[0]:
            return None
        return (lo_r[0], hi_r[1] - 1)

    # ------------------------------------------------------------------------------ memory
    def _index(self, e: ir.Expr, extent: int, clamp: bool) -> tuple[ll.Value, ll.Value | None]:
        """An index as i64: proven in range, clamped (loads) or with its in-range test (stores)."""
        form = self.affine_form(e)
        if form is not None:
            result = bounds(form, self._ranges_aliases()[0])
            if result is not None and result[0][0] >= 0 and result[0][1] <= extent - 1:
                return self._wide_form(form), None
        value = self.expr(e)
        if clamp:
            value = ops.call(self.b, "llvm.smax", [value, ll.Constant(I32, 0)])
            value = ops.call(self.b, "llvm.smin", [value, ll.Constant(I32, extent - 1)])
            return self.b.zext(value, I64), None
        inside = self.b.icmp_unsigned("<", value, ll.Constant(I32, extent))
        return self.b.zext(value, I64), inside

    def _wide_form(self, form: Affine) -> ll.Value:
        total: ll.Value = ll.Constant(I64, form.const)
        for name, coef in form.terms:
            local = self.lookup(name)
            wide = local.wide if local.wide is not None else self.b.sext(local.value, I64)
            term = wide if coef == 1 else self._nsw(self.b.mul, wide, ll.Constant(I64, coef))
            total = self._nsw(self.b.add, total, term)
        return total

    def _nsw(self, op, x: ll.Value, y: ll.Value) -> ll.Value:
        result = op(x, y)
        result.flags.append("nsw")
        return result

    def address(self, tensor: str, indices: list[ll.Value]) -> ll.Value:
        view = self.views[tensor]
        offset: ll.Value = ll.Constant(I64, view.offset)
        for index, stride in zip(indices, view.strides, strict=True):
            scaled = (
                index if stride == 1 else self._nsw(self.b.mul, index, ll.Constant(I64, stride))
            )
            offset = self._nsw(self.b.add, offset, scaled)
        etype = ops.storage_type(view.dtype)
        return self.b.gep(self.pointers[tensor], [offset], inbounds=True, source_etype=etype)

    def read(self, tensor: str, address: ll.Value) -> ll.Value:
        dtype = self.views[tensor].dtype
        value = self.b.load(address, typ=ops.storage_type(dtype))
        if dtype == DType.BOOL:
            return self.b.icmp_unsigned("!=", value, ll.Constant(ops.I8, 0))
        return value

    def write(self, tensor: str, address: ll.Value, value: ll.Value) -> None:
        if self.views[tensor].dtype == DType.BOOL:
            value = self.b.zext(value, ops.I8)
        self.b.store(value, address)

    def load(self, e: ir.Load) -> ll.Value:
        view = self.views[e.tensor]
        if view.empty:
            return ops.const(view.dtype, 0)
        indices = [
            self._index(i, n, clamp=True)[0] for i, n in zip(e.indices, view.shape, strict=True)
        ]
        return self.read(e.tensor, self.address(e.tensor, indices))

    def store(self, s: ir.Store) -> None:
        view = self.views[s.tensor]
        if view.empty:
            return
        indices, keep = [], None
        for index, extent in zip(s.indices, view.shape, strict=True):
            value, inside = self._index(index, extent, clamp=False)
            indices.append(value)
            if inside is not None:
                keep = inside if keep is None else self.b.and_(keep, inside)
        value = self.expr(s.value)
        if keep is None:
            self._write_element(s, indices, value)
            return
        with self.b.if_then(keep):
            self._write_element(s, indices, value)

    def _write_element(self, s: ir.Store, indices: list[ll.Value], value: ll.Value) -> None:
        address = self.address(s.tensor, indices)
        if s.op != "=":
            old = self.read(s.tensor, address)
            value = ops.compound(self.b, s.op, old, value, self.views[s.tensor].dtype)
        self.write(s.tensor, address, value)

    # --------------------------------------------------------------------------- expressions
    def expr(self, e: ir.Expr) -> ll.Value:
        b = self.b
        match e:
            case ir.Const():
                return ops.const(e.dtype, e.value)
            case ir.Name():
                local = self.lookup(e.name)
                if local.slot is not None:
                    return b.load(local.slot, typ=ops.value_type(local.dtype))
                return local.value
            case ir.Load():
                return self.load(e)
            case ir.Unary():
                return ops.unary(b, e.op, self.expr(e.operand), e.dtype)
            case ir.Binary():
                lhs, rhs = self.expr(e.lhs), self.expr(e.rhs)
                return ops.binary(b, e.op, lhs, rhs, e.lhs.dtype)
            case ir.Select():
                cond = self.expr(e.cond)
                return b.select(cond, self.expr(e.if_true), self.expr(e.if_false))
            case ir.Cast():
                return ops.cast(b, self.expr(e.operand), e.operand.dtype, e.to)
            case ir.Intrinsic():
                return ops.math(b, e.fn, [self.expr(a) for a in e.args], e.dtype)
            case ir.Reduce():
                return self.reduce(e)
            case ir.Search():
                return self.search(e)
            case ir.Rand():
                bits = ops.randbits(b, self.expr(e.key), self.expr(e.counter))
                return bits if e.bits else ops.unit_float(b, bits)
        raise unsupported(f"the expression '{type(e).__name__}'", e)

    def reduce(self, e: ir.Reduce) -> ll.Value:
        if e.op != "sum":
            raise unsupported(f"the reduction '{e.op}'", e)
        lo = self.b.sext(self.expr(e.lo), I64)
        hi = self.b.sext(self.expr(e.hi), I64)
        reach = self._loop_range(e.lo, e.hi)

        def body(iv: ll.Value, carried: list[ll.Value]) -> list[ll.Value]:
            local = Local(DType.I32, self.b.trunc(iv, I32), wide=iv, range=reach)
            self.scopes.append({e.var: local})
            try:
                term = self.expr(e.body)
            finally:
                self.scopes.pop()
            return [ops.binary(self.b, "+", carried[0], term, e.dtype)]

        return counted_loop(self.b, lo, hi, [ops.const(e.dtype, 0)], body)[0]

    def _search_extent(self, e: ir.Search) -> int:
        axis = next(d for d, i in enumerate(e.indices) if isinstance(i, ir.Slice))
        return self.views[e.tensor].shape[axis]

    def search(self, e: ir.Search) -> ll.Value:
        """The interpreter's lower-bound search: same bracket, same probes, same clamping."""
        b = self.b
        view = self.views[e.tensor]
        axis = next(d for d, i in enumerate(e.indices) if isinstance(i, ir.Slice))
        extent = ll.Constant(I64, view.shape[axis])
        zero = ll.Constant(I64, 0)
        piece = e.indices[axis]
        start = b.sext(self.expr(piece.lo), I64) if piece.lo is not None else zero
        stop = b.sext(self.expr(piece.hi), I64) if piece.hi is not None else extent
        start = ops.call(b, "llvm.smin", [ops.call(b, "llvm.smax", [start, zero]), extent])
        stop = ops.call(b, "llvm.smin", [ops.call(b, "llvm.smax", [stop, start]), extent])
        count = b.sub(stop, start)
        fixed: list[ll.Value | None] = []
        for d, index in enumerate(e.indices):
            if d == axis or view.empty:
                fixed.append(None)
            else:
                fixed.append(self._index(index, view.shape[d], clamp=True)[0])
        value = self.expr(e.value)
        before = b.block
        header = b.append_basic_block("search")
        probe = b.append_basic_block("probe")
        go_up = b.append_basic_block("up")
        go_down = b.append_basic_block("down")
        after = b.append_basic_block("found")
        b.branch(header)
        b.position_at_end(header)
        lo = b.phi(I64, "lo")
        hi = b.phi(I64, "hi")
        lo.add_incoming(zero, before)
        hi.add_incoming(count, before)
        b.cbranch(b.icmp_signed("<", lo, hi), probe, after)
        b.position_at_end(probe)
        mid = b.add(lo, b.lshr(b.sub(hi, lo), ll.Constant(I64, 1)))
        if view.empty:
            element = ops.const(view.dtype, 0)
        else:
            indices = [b.add(start, mid) if f is None else f for f in fixed]
            element = self.read(e.tensor, self.address(e.tensor, indices))
        below = ops.binary(b, "<=", element, value, view.dtype)
        b.cbranch(below, go_up, go_down)
        b.position_at_end(go_up)
        lo.add_incoming(b.add(mid, ll.Constant(I64, 1)), go_up)
        hi.add_incoming(hi, go_up)
        b.branch(header)
        b.position_at_end(go_down)
        lo.add_incoming(lo, go_down)
        hi.add_incoming(mid, go_down)
        b.branch(header)
        b.position_at_end(after)
        top = ops.call(b, "llvm.smax", [b.sub(count, ll.Constant(I64, 2)), zero])
        found = ops.call(b, "llvm.smax", [b.sub(lo, ll.Constant(I64, 1)), zero])
        return b.trunc(ops.call(b, "llvm.smin", [found, top]), I32)
