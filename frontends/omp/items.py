"""Work items: kernels and the calls that apply them to regions, recorded in creation order.

Instances of one construct (one per thread, per unrolled iteration) share a kernel: their
differences are in the arguments (regions, thread numbers as constants). Kernels are named after
the function and the construct kind: ``pipeline_task1``, ``sobel_loop2``, ``gemm_step1``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from kernelc import ir
from kernelc.diagnostics import KernelcError, Span
from kernelc.frontends.omp import ctree as c
from kernelc.frontends.omp import loops
from kernelc.frontends.omp.directives import Directive
from kernelc.frontends.omp.evaluate import i32, spans_whole, thread_query
from kernelc.frontends.omp.exprs import Context
from kernelc.frontends.omp.kernels import ArrayUse, Built, Captured, KernelBuilder
from kernelc.frontends.omp.memory import Memory
from kernelc.frontends.omp.order import Order
from kernelc.frontends.omp.sharing import Depend, Siblings, default_clause, listed
from kernelc.frontends.omp.state import (
    ArrayVar,
    DeviceScalar,
    Exec,
    GraphScalar,
    Item,
    arrays_in,
)
from kernelc.types import DType


@dataclass
class Works:
    ctx: Context
    function: str
    memory: Memory
    order: Order = field(default_factory=Order)
    items: list[Item] = field(default_factory=list)
    kernels: dict[str, ir.Kernel] = field(default_factory=dict)
    variants: dict[tuple, list[str]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    siblings: Siblings = field(default_factory=Siblings)

    # -------------------------------------------------------------------------- items
    def emit(self, key: tuple, built: Built, kind: str, firstprivate: frozenset, span: Span):
        call = ir.TaskCall(kernel="", args=built.args, results=built.results, span=span)
        return self.add(key, built.kernel, call, kind, firstprivate)

    def add(self, key: tuple, kernel: ir.Kernel, call: ir.TaskCall, kind: str, firstprivate):
        name = self.kernel_name(key, kernel)
        kernel = replace(kernel, name=name)
        self.kernels[name] = kernel
        call = replace(call, kernel=name)
        node = f"item{len(self.items)}"
        self.order.graph.add_node(node)
        tensors = {}
        for p, arg in zip(kernel.params, call.args, strict=True):
            if isinstance(arg, ir.TensorRef) and not p.is_scalar:
                tensors[p.name] = arg.name
        for p, ref in zip(kernel.outputs, call.results, strict=True):
            tensors[p.name] = ref.name
        item = Item(node, call, kernel, kind, firstprivate, tensors)
        self.items.append(item)
        return item

    def kernel_name(self, key: tuple, kernel: ir.Kernel) -> str:
        """The same construct gives the same kernel name while its kernel is the same."""
        variants = self.variants.setdefault(key, [])
        for name in variants:
            if replace(self.kernels[name], name="kernel") == kernel:
                return name
        kind = key[0]
        self.counters[kind] = self.counters.get(kind, 0) + 1
        suffix = f"_{key[1]}" if kind == "copy" else str(self.counters[kind])
        name = self.memory.names.fresh(f"{self.function}_{kind}{suffix}")
        variants.append(name)
        return name

    def copy(self, src: str, dst: str, c_name: str, span: Span, ex: Exec) -> None:
        """The host-to-device stream of map(to:/tofrom:) into a device tensor."""
        t = self.memory.tensors[dst]
        shape = self.memory.param_shape(c_name, t.shape)
        idx = tuple(ir.Name(name=f"i{d}", span=span, dtype=DType.I32) for d in range(len(shape)))
        load = ir.Load(tensor="src", indices=idx, span=span, dtype=t.dtype)
        store: ir.Stmt = ir.Store(tensor="dst", indices=idx, op="=", value=load, span=span)
        for d in reversed(range(len(shape))):
            zero = ir.Const(value=0, span=span, dtype=DType.I32)
            store = ir.For(var=f"i{d}", lo=zero, hi=shape[d], body=(store,), span=span)
        kernel = ir.Kernel(
            name="kernel",
            params=(ir.Param(name="src", dtype=t.dtype, shape=shape, span=span),),
            outputs=(ir.Param(name="dst", dtype=t.dtype, shape=shape, span=span, is_output=True),),
            body=(store,),
            span=span,
        )
        call = ir.TaskCall(
            kernel="",
            args=(ir.TensorRef(name=src, slices=None, span=span),),
            results=(ir.TensorRef(name=dst, slices=None, span=span),),
            span=span,
        )
        item = self.add(("copy", c_name), kernel, call, "copy", frozenset())
        self.order.step(ex.thread, item.node)

    # ------------------------------------------------------------------------- uses
    def whole_uses(self, body: c.Stmt, ex: Exec, written: dict[str, c.Expr]) -> dict:
        """Every array a construct touches, bound whole."""
        uses = {}
        for name in arrays_in(body, ex):
            binding = ex.lookup(name)
            if isinstance(binding, DeviceScalar):
                uses[name] = self.scalar_use(binding, name in written)
            else:
                uses[name] = self.whole_use(binding, ex, name in written)
        return uses

    def whole_use(self, var: ArrayVar, ex: Exec, written: bool) -> ArrayUse:
        rank = len(var.dims)
        return ArrayUse(
            c_name=var.name,
            dtype=var.dtype,
            tensor=ex.region.device[var.name],
            slices=None,
            shape=self.memory.param_shape(var.name, var.dims),
            lo=(None,) * rank,
            partial=(False,) * rank,
            written=written,
        )

    def scalar_use(self, var: DeviceScalar, written: bool) -> ArrayUse:
        one = ir.Const(value=1, span=Span("", 1, 1), dtype=DType.I32)
        return ArrayUse(
            var.name, var.dtype, var.tensor, None, (one,), (None,), (False,), written, True
        )

    def block_use(
        self, var: ArrayVar, tensor: str, slices: tuple[ir.Slice, ...], dim: int
    ) -> ArrayUse:
        """A written array cut to one team's block of a distribute loop (rebased by the loop)."""
        rank = len(var.dims)
        shape = tuple(
            ir.Name(name=self.memory.extent(var.name, k), span=var.span, dtype=DType.I32)
            for k in range(rank)
        )
        return ArrayUse(
            c_name=var.name,
            dtype=var.dtype,
            tensor=tensor,
            slices=slices,
            shape=shape,
            lo=(None,) * rank,
            partial=tuple(k == dim for k in range(rank)),
            written=True,
        )

    def section_use(self, var: ArrayVar, dep: Depend, written: bool) -> ArrayUse:
        """An array bound to a task's depend section: its indices are rebased to the section."""
        if written and dep.kind == "in":
            raise KernelcError(
                f"this task writes '{var.name}', but its depend clause names it as in; use out "
                "or inout so that tasks reading it wait for this one",
                dep.span,
            )
        shape = tuple(
            ir.Name(name=self.memory.extent(var.name, dim), span=dep.span, dtype=DType.I32)
            for dim in range(len(var.dims))
        )
        partial = tuple(
            not spans_whole(s.lo, i32("-", s.hi, s.lo, s.span), extent)
            for s, extent in zip(dep.slices, var.dims, strict=True)
        )
        return ArrayUse(
            c_name=var.name,
            dtype=var.dtype,
            tensor=dep.tensor,
            slices=dep.slices,
            shape=shape,
            lo=dep.starts,
            partial=partial,
            written=written,
        )

    # ---------------------------------------------------------------------- kernels
    def builder(
        self, kind: str, uses: dict, ex: Exec, span: Span, body: object, d: Directive | None
    ) -> KernelBuilder:
        builder = KernelBuilder(
            ctx=self.ctx,
            kernel_name="kernel",
            kind=kind,
            uses=uses,
            capture=self.capture_for(ex, d),
            instance=dict(ex.instance),
            reserved={n for n, b in ex.scopes[0].items() if isinstance(b, GraphScalar)},
            span=span,
        )
        builder.assigned = loops.assigned_names(body)
        return builder

    def capture_for(self, ex: Exec, d: Directive | None) -> Callable[[str, Span], Captured | None]:
        """What names of the creating code mean inside a construct's kernel."""
        default = default_clause(d) if d is not None else None
        named = set(listed(d)) if d is not None else set()
        if d is not None:
            named |= {i.name for cl in d.all("reduction") for i in cl.args if isinstance(i, c.Name)}

        def capture(name: str, span: Span) -> Captured | None:
            if name.endswith("()"):
                return Captured("value", thread_query(name[:-2], ex, span))
            binding = ex.lookup(name)
            if binding is None:
                return None
            if default == "none" and name not in named:
                raise KernelcError(
                    f"'{name}' is not listed in a data-sharing clause of this construct, which "
                    "has default(none)",
                    span,
                )
            if isinstance(binding, ArrayVar | DeviceScalar):
                return Captured("array")
            if isinstance(binding, GraphScalar):
                return Captured("scalar", ir.Name(name=name, span=span, dtype=binding.dtype))
            names = {n.name for n in ir.walk(binding.expr) if isinstance(n, ir.Name)}
            if not ex.thread_known and ex.thread_var in names:
                raise KernelcError(
                    f"'{name}' depends on the thread number, which is not known here (single and "
                    "worksharing loops run on whichever thread the runtime chooses)",
                    span,
                )
            return Captured("value", binding.expr)

        return capture
