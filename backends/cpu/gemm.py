"""Recognise a matrix product and emit a cache-blocked, register-tiled GEMM for it.

The pattern is a task of the ``Contraction`` form (kernelc.forms: ``c[i, j] = sum(k in 0..K)
a[i, k] * b[k, j]`` on f32, both loops parallel, whole extents) whose views have unit inner
strides. The
general lowering would run it as a scalar dot product per element: its strict left-to-right sum
keeps LLVM from vectorising the k loop. Here every output element still accumulates its k terms
in order (starting from 0, one term after another), but MR x NR elements are accumulated at once
in vector registers, each step a fused multiply-add: results differ from the interpreter's
separately rounded multiply and add only in the last bits.

Blocking (after Goto and van de Geijn): columns in panels of NC, the k range in blocks of KC
whose B block is packed into NR-wide slabs (contiguous, zero-padded), rows in blocks of MC, then
the micro-kernel over an MR x NR tile. Row tiles at the bottom edge point their missing rows at
the last valid row, so they recompute and rewrite that row's values (identical) instead of
branching; column edges use masked loads and stores.

An epilogue (bias, ReLU: element-wise work on each sum) runs after the product as a second loop
nest over the same rows or columns, lowered like any kernel body and reading C back while it
is still in cache. Products with a prologue take the general loop lowering.
"""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir as ll

from kernelc import ir
from kernelc.backends.cpu import ops
from kernelc.backends.cpu.kernel import View, counted_loop
from kernelc.backends.cpu.machine import Machine
from kernelc.backends.cpu.ops import FLOAT, I1, I32, I64
from kernelc.forms import Contraction
from kernelc.forms.contraction import PRODUCT
from kernelc.graph import Task
from kernelc.types import DType

KC = 256  # k block: one packed slab (KC x NR floats) fits the L1 data cache
MC = 128  # row block: its A rows (MC x KC floats) stay in L2
NC = 512  # column panel: the packed B block (KC x NC floats) stays in L2
PTR = ll.PointerType()


@dataclass(frozen=True)
class GemmPlan:
    m: int
    n: int
    k: int
    a: str
    b: str
    c: str
    a_view: View
    b_view: View
    c_view: View
    epilogue: ir.For | None = None  # c[i, j] = epilogue(c[i, j]), the outer loop shared out

    @property
    def split_columns(self) -> bool:
        """Threads share columns when there are more of them than rows (each thread then packs
        only its own columns of B), rows otherwise."""
        return self.n > self.m

    @property
    def split_range(self) -> tuple[int, int]:
        return (0, self.n) if self.split_columns else (0, self.m)


def match(task: Task, views: dict[str, View]) -> GemmPlan | None:
    """The GEMM plan of a task whose form is a ``Contraction`` without prologues, or None when
    it is none, has prologues (those run through the general loop lowering), or its operands
    are not f32 rows with unit stride."""
    c = task.form
    if not isinstance(c, Contraction) or c.prologue_a is not None or c.prologue_b is not None:
        return None
    av, bv, cv = views[c.a], views[c.b], views[c.c]
    if not all(v.dtype == DType.F32 and v.strides[1] == 1 for v in (av, bv, cv)):
        return None
    plan = GemmPlan(c.m, c.n, c.k, c.a, c.b, c.c, av, bv, cv)
    if c.epilogue is None:
        return plan
    return GemmPlan(c.m, c.n, c.k, c.a, c.b, c.c, av, bv, cv, _epilogue_nest(c, plan.split_columns))


def _epilogue_nest(c: Contraction, columns_outer: bool) -> ir.For:
    """``for i, j { c[i, j] = epilogue(c[i, j]) }``, the loop over what threads share outside."""
    span = c.epilogue.span
    index = (
        ir.Name(name=c.row, span=span, dtype=DType.I32),
        ir.Name(name=c.col, span=span, dtype=DType.I32),
    )
    product = ir.Load(tensor=c.c, indices=index, span=span, dtype=DType.F32)
    value = ir.transform(
        c.epilogue, lambda n: product if isinstance(n, ir.Name) and n.name == PRODUCT else n
    )
    store: ir.Stmt = ir.Store(tensor=c.c, indices=index, op="=", value=value, span=span)
    loops = [(c.row, c.m), (c.col, c.n)]
    if columns_outer:
        loops.reverse()
    for var, extent in reversed(loops):
        zero = ir.Const(value=0, span=span, dtype=DType.I32)
        hi = ir.Const(value=extent, span=span, dtype=DType.I32)
        store = ir.For(var=var, lo=zero, hi=hi, body=(store,), span=span, parallel=True)
    return store


def _c64(v: int) -> ll.Constant:
    return ll.Constant(I64, v)


def _masked(b: ll.IRBuilder, kind: str, vtype: ll.VectorType, args: list[ll.Value]):
    """llvm.masked.load / llvm.masked.store with 4-byte alignment."""
    mask_type = ll.VectorType(I1, vtype.count)
    if kind == "load":
        fn = ops.intrinsic(
            b.module, "llvm.masked.load", vtype, [PTR, I32, mask_type, vtype], [vtype, PTR]
        )
        ptr, mask = args
        return b.call(fn, [ptr, ll.Constant(I32, 4), mask, ll.Constant(vtype, None)])
    fn = ops.intrinsic(
        b.module, "llvm.masked.store", ll.VoidType(), [vtype, PTR, I32, mask_type], [vtype, PTR]
    )
    value, ptr, mask = args
    return b.call(fn, [value, ptr, ll.Constant(I32, 4), mask])


def _lane_mask(b: ll.IRBuilder, lanes: int, first: int, limit: ll.Value) -> ll.Value:
    """<lanes x i1>: lane l is on when first + l < limit."""
    vt = ll.VectorType(I64, lanes)
    splat = b.insert_element(ll.Constant(vt, None), limit, ll.Constant(I32, 0))
    splat = b.shuffle_vector(
        splat, ll.Constant(vt, None), ll.Constant(ll.VectorType(I32, lanes), [0] * lanes)
    )
    offsets = ll.Constant(vt, [first + lane for lane in range(lanes)])
    return b.icmp_signed("<", offsets, splat)


def _elem(b: ll.IRBuilder, base: ll.Value, offset: ll.Value) -> ll.Value:
    return b.gep(base, [offset], inbounds=True, source_etype=FLOAT)


def _micro_kernel(module: ll.Module, name: str, machine: Machine, mr: int) -> ll.Function:
    """``micro(a, lda, bs, ldb, c, ldc, kc, rows, cols, first)``: one mr x NR tile of C.

    ``bs`` points at the tile's B slab with row stride ``ldb`` (NR when packed); rows >= ``rows``
    alias the last valid row; columns >= ``cols`` are masked off.
    """
    nr = machine.gemm_tile[1]
    lanes = machine.lanes
    halves = nr // lanes
    vt = ll.VectorType(FLOAT, lanes)
    args = [PTR, I64, PTR, I64, PTR, I64, I64, I64, I64, I1]
    fn = ll.Function(module, ll.FunctionType(ll.VoidType(), args), name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    a, lda, bs, ldb, c, ldc, kc, rows, cols, first = fn.args
    b = ll.IRBuilder(fn.append_basic_block("entry"))
    last = b.sub(rows, _c64(1))
    a_rows, c_rows = [], []
    for r in range(mr):
        row = ops.call(b, "llvm.smin", [_c64(r), last])
        a_rows.append(_elem(b, a, b.mul(row, lda)))
        c_rows.append(_elem(b, c, b.mul(row, ldc)))
    masks = [_lane_mask(b, lanes, h * lanes, cols) for h in range(halves)]
    zero = ll.Constant(vt, None)
    inits = []
    for r in range(mr):
        for h in range(halves):
            old = _masked(b, "load", vt, [_elem(b, c_rows[r], _c64(h * lanes)), masks[h]])
            inits.append(b.select(first, zero, old))
    shuffle_zero = ll.Constant(ll.VectorType(I32, lanes), [0] * lanes)

    def step(kk: ll.Value, acc: list[ll.Value]) -> list[ll.Value]:
        row = _elem(b, bs, b.mul(kk, ldb))
        bvec = [
            _masked(b, "load", vt, [_elem(b, row, _c64(h * lanes)), masks[h]])
            for h in range(halves)
        ]
        out = []
        for r in range(mr):
            scalar = b.load(_elem(b, a_rows[r], kk), typ=FLOAT)
            splat = b.insert_element(ll.Constant(vt, None), scalar, ll.Constant(I32, 0))
            splat = b.shuffle_vector(splat, ll.Constant(vt, None), shuffle_zero)
            for h in range(halves):
                out.append(ops.call(b, "llvm.fma", [splat, bvec[h], acc[r * halves + h]]))
        return out

    acc = counted_loop(b, _c64(0), kc, inits, step)
    for r in range(mr):
        for h in range(halves):
            ptr = _elem(b, c_rows[r], _c64(h * lanes))
            _masked(b, "store", vt, [acc[r * halves + h], ptr, masks[h]])
    b.ret_void()
    return fn


def emit(
    b: ll.IRBuilder,
    plan: GemmPlan,
    pointers: dict[str, ll.Value],
    lo: ll.Value,
    hi: ll.Value,
    machine: Machine,
) -> None:
    """The blocked product of the rows or columns [lo, hi) (see ``GemmPlan.split_columns``)."""
    module = b.module
    mr, nr = machine.gemm_tile
    lanes = machine.lanes
    halves = nr // lanes
    vt = ll.VectorType(FLOAT, lanes)
    # a tile of r < MR rows (the bottom edge, or a thin A) uses the smallest kernel that fits
    heights = sorted({h for h in (1, 2, 4, mr) if h <= mr})
    micros = {h: _micro_kernel(module, f"{b.function.name}_micro{h}", machine, h) for h in heights}
    malloc = module.globals.get("malloc") or ll.Function(
        module, ll.FunctionType(PTR, [I64]), "malloc"
    )
    free = module.globals.get("free") or ll.Function(
        module, ll.FunctionType(ll.VoidType(), [PTR]), "free"
    )
    if plan.split_columns:
        i_lo, i_hi = _c64(0), _c64(plan.m)
        j_lo = ops.call(b, "llvm.smax", [lo, _c64(0)])
        j_hi = ops.call(b, "llvm.smin", [hi, _c64(plan.n)])
    else:
        i_lo = ops.call(b, "llvm.smax", [lo, _c64(0)])
        i_hi = ops.call(b, "llvm.smin", [hi, _c64(plan.m)])
        j_lo, j_hi = _c64(0), _c64(plan.n)
    a = _elem(b, pointers[plan.a], _c64(plan.a_view.offset))
    bm = _elem(b, pointers[plan.b], _c64(plan.b_view.offset))
    c = _elem(b, pointers[plan.c], _c64(plan.c_view.offset))
    lda, ldb, ldc = (_c64(v.strides[0]) for v in (plan.a_view, plan.b_view, plan.c_view))
    nc_max = min(NC, -(-plan.n // nr) * nr)
    pack = b.icmp_signed(">", b.sub(i_hi, i_lo), _c64(mr))
    with b.if_then(b.and_(b.icmp_signed("<", i_lo, i_hi), b.icmp_signed("<", j_lo, j_hi))):
        packed = b.call(malloc, [_c64(KC * nc_max * 4)])

        def panel(jc: ll.Value, _: list) -> list:
            nc = ops.call(b, "llvm.smin", [_c64(NC), b.sub(j_hi, jc)])
            slabs = b.sdiv(b.add(nc, _c64(nr - 1)), _c64(nr))

            def kblock(pc: ll.Value, _: list) -> list:
                kc = ops.call(b, "llvm.smin", [_c64(KC), b.sub(_c64(plan.k), pc)])
                b_block = _elem(b, bm, b.add(b.mul(pc, ldb), jc))
                with b.if_then(pack):
                    _pack(b, b_block, ldb, packed, kc, nc, slabs, nr, lanes, halves, vt)

                def rblock(ic: ll.Value, _: list) -> list:
                    ic_end = ops.call(b, "llvm.smin", [b.add(ic, _c64(MC)), i_hi])

                    def slab(s: ll.Value, _: list) -> list:
                        jr = b.mul(s, _c64(nr))
                        cols = ops.call(b, "llvm.smin", [_c64(nr), b.sub(nc, jr)])
                        slab_ptr = b.select(
                            pack,
                            _elem(b, packed, b.mul(s, b.mul(kc, _c64(nr)))),
                            _elem(b, b_block, jr),
                        )
                        slab_ld = b.select(pack, _c64(nr), ldb)

                        def tile(ir_: ll.Value, _: list) -> list:
                            rows = ops.call(b, "llvm.smin", [_c64(mr), b.sub(ic_end, ir_)])
                            a_tile = _elem(b, a, b.add(b.mul(ir_, lda), pc))
                            c_tile = _elem(b, c, b.add(b.mul(ir_, ldc), b.add(jc, jr)))
                            is_first = b.icmp_signed("==", pc, _c64(0))
                            args = [
                                a_tile,
                                lda,
                                slab_ptr,
                                slab_ld,
                                c_tile,
                                ldc,
                                kc,
                                rows,
                                cols,
                                is_first,
                            ]
                            _dispatch(b, micros, rows, args)
                            return []

                        counted_loop(b, ic, ic_end, [], tile, mr)
                        return []

                    counted_loop(b, _c64(0), slabs, [], slab)
                    return []

                counted_loop(b, i_lo, i_hi, [], rblock, MC)
                return []

            counted_loop(b, _c64(0), _c64(plan.k), [], kblock, KC)
            return []

        counted_loop(b, j_lo, j_hi, [], panel, NC)
        b.call(free, [packed])


def _dispatch(b: ll.IRBuilder, micros: dict[int, ll.Function], rows: ll.Value, args) -> None:
    """Call the micro-kernel of the smallest height that covers ``rows``."""
    heights = sorted(micros)
    done = b.append_basic_block("tile_done")
    for h in heights[:-1]:
        fits = b.append_basic_block(f"rows{h}")
        more = b.append_basic_block(f"rows_over{h}")
        b.cbranch(b.icmp_signed("<=", rows, _c64(h)), fits, more)
        b.position_at_end(fits)
        b.call(micros[h], args)
        b.branch(done)
        b.position_at_end(more)
    b.call(micros[heights[-1]], args)
    b.branch(done)
    b.position_at_end(done)


def _pack(b, src, ldb, packed, kc, nc, slabs, nr, lanes, halves, vt) -> None:
    """Copy B[k, j] (k < kc, j < nc) into NR-wide slabs: packed[s][k][0..NR), zero-padded."""

    def slab(s: ll.Value, _: list) -> list:
        base = b.mul(s, _c64(nr))
        masks = [_lane_mask(b, lanes, h * lanes, b.sub(nc, base)) for h in range(halves)]
        out = _elem(b, packed, b.mul(s, b.mul(kc, _c64(nr))))

        def row(kk: ll.Value, _: list) -> list:
            src_row = _elem(b, src, b.add(b.mul(kk, ldb), base))
            dst_row = _elem(b, out, b.mul(kk, _c64(nr)))
            for h in range(halves):
                v = _masked(b, "load", vt, [_elem(b, src_row, _c64(h * lanes)), masks[h]])
                b.store(v, _elem(b, dst_row, _c64(h * lanes)), align=4)
            return []

        counted_loop(b, _c64(0), kc, [], row)
        return []

    counted_loop(b, _c64(0), slabs, [], slab)
