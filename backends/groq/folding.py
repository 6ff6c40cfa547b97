"""What the ``Reduction`` lowerings share: ``exp`` as ``exp2`` and division through
``rsqrt``, the VXM having neither."""

from __future__ import annotations

from kernelc import ir
from kernelc.affine import affine
from kernelc.backends.groq.builder import ProgramBuilder, size_value
from kernelc.backends.groq.model import refuse
from kernelc.backends.groq.vector import VectorStage
from kernelc.graph import Task
from kernelc.types import DType

LOG2E = 1.4426950408889634  # exp(x) = exp2(x log2(e)): the VXM has exp2 only


SIGN_BIT = -(2**31)  # int32 bits of an f32 sign


MAGNITUDE_BITS = 2**31 - 1


class FoldingStage(VectorStage):
    """What the Reduction lowerings share: identical operations emitted once, ``exp`` as
    ``exp2`` of ``x log2(e)`` and division as a multiplication by ``rsqrt(|b|)^2`` with ``b``'s
    sign put back through its bits (the VXM has neither ``exp`` nor a divide)."""

    def __init__(self, low: ProgramBuilder, task: Task) -> None:
        super().__init__(low, task)
        self.emitted: dict[str, str] = {}
        self.narrow: set[str] = set()  # variables one 320-lane vector wide (folded rows)

    def emit(self, text: str, depth: int, memory: bool = False, dtype: str = "float32") -> str:
        """The same operation on the same operands is computed once (``exp(x[r, j] - top)`` in
        both the sum and the stores of softmax)."""
        if text not in self.emitted:
            self.emitted[text] = super().emit(text, depth, memory, dtype)
        return self.emitted[text]

    def bound(self, e: ir.Expr) -> int:
        form = affine(e)
        if form is None:
            raise refuse("a loop bound that is not a compile-time size", e.span)
        return size_value(form, self.sizes, e.span)

    # ---------------------------------------------------------------------------- values

    def value(self, e: ir.Expr) -> str:
        if e.dtype is not None and e.dtype != DType.F32 and not isinstance(e, ir.Cast):
            return super().value(e)
        match e:
            case ir.Intrinsic(fn="exp", args=(x,)):
                a = self.value(x)
                scaled = self.emit(
                    f"g.mul({a}, {self.constant(('fill', LOG2E))})", 1 + self.depth(a)
                )
                return self.emit(
                    f"g.exp2({scaled})  # exp(x) = exp2(x log2(e))", 1 + self.depth(scaled)
                )
            case ir.Binary(op="/", lhs=lhs, rhs=rhs):
                return self.divide(self.value(lhs), self.value(rhs))
        return super().value(e)

    def fixed_index(self, idx: ir.Expr) -> int | None:
        """The value of an index that names no loop variable (``x[r, 0]``), else None."""
        form = affine(idx)
        if form is None or any(n not in self.sizes for n, _ in form.terms):
            return None
        return form.const + sum(self.sizes[n] * c for n, c in form.terms)

    def alu(self, fn: str, a: str, b: str) -> str:
        result = self.emit(f"g.{fn}({a}, {b})", 1 + max(self.depth(a), self.depth(b)))
        if a in self.narrow or b in self.narrow:
            self.narrow.add(result)
        return result

    def divide(self, a: str, b: str) -> str:
        """``a / b`` as ``a * rsqrt(|b|)^2`` with the sign of ``b`` added back to the bits."""
        b = self.stream(b)
        bits = self.emit(f"g.reinterpret({b}, g.int32)", self.depth(b))
        mag = self.alu("bitwise_and", bits, self.bitmask(("fill", MAGNITUDE_BITS)))
        r = self.emit(f"g.rsqrt(g.reinterpret({mag}, g.float32))", 1 + self.depth(mag))
        inv = self.alu("mul", r, r)
        sign = self.alu("bitwise_and", bits, self.bitmask(("fill", SIGN_BIT)))
        signed = self.alu("add", self.emit(f"g.reinterpret({inv}, g.int32)", self.depth(inv)), sign)
        recip = self.emit(f"g.reinterpret({signed}, g.float32)  # 1 / b", self.depth(signed))
        return self.alu("mul", a, recip)
