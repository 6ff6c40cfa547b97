"""``Contraction`` on the MXM (``nn.MatMul``) in the chosen precision, its prologue and
epilogue on the VXM."""

from __future__ import annotations

import math

from kernelc import ir
from kernelc.backends.groq import machine
from kernelc.backends.groq.builder import ProgramBuilder, groq_dtype
from kernelc.backends.groq.model import MatMulDecl, Stage, StageCost, program_shape, refuse
from kernelc.backends.groq.vector import VectorStage
from kernelc.forms import Contraction
from kernelc.forms.contraction import OPERAND, PRODUCT
from kernelc.graph import Task
from kernelc.types import DType


class Pointwise(VectorStage):
    """Element-wise work around a matrix product over one (rows x lanes) tensor: an operand's
    prologue (the rows of A, or of B's transpose, along K) or the epilogue (the rows of C)."""

    def __init__(
        self,
        low: ProgramBuilder,
        task: Task,
        prefix: str,
        loops: tuple[str, str],
        shape: tuple[int, int],
        placeholder: str,
        source: str,
    ) -> None:
        super().__init__(low, task, prefix)
        self.row, self.lane = loops
        self.r0, self.r1, self.c0, self.c1 = 0, shape[0], 0, shape[1]
        self.nrows = self.height = shape[0]
        self.width = shape[1]
        self.lets[placeholder] = source

    def lower(self, e: ir.Expr) -> tuple[str, list[str]]:
        """The stream of ``e`` and the lines that compute it, its constant tables first."""
        value = self.stream(self.value(e))
        return value, self.tables()

    @property
    def ops(self) -> int:
        return -(-self.work // max(self.height, 1))


class ContractionStage(VectorStage):
    """One ``Contraction`` on the MXM (``nn.MatMul``, which tiles to the 320 x 320 weight
    blocks) in the chosen precision, with its element-wise work on the VXM: an operand's
    prologue before the products (then its fp16 parts are cast and written; a prologue that
    ends in ``f32(f16(...))`` gives the fp16 operand itself, one part), the epilogue (bias,
    scale, ReLU, casts) on the product's rows after them."""

    def __init__(self, low: ProgramBuilder, task: Task, form: Contraction) -> None:
        super().__init__(low, task)
        self.form = form
        self.a_name = task.binding(form.a).region.tensor
        self.b_name = task.binding(form.b).region.tensor
        self.c_name = task.binding(form.c).region.tensor
        self.matmuls: list[tuple[str, int, int, int, str]] = []
        self.prologues: list[tuple[int, int, int]] = []  # (VXM ops, vectors, depth) per operand

    def lower(self) -> Stage:
        low, task, form = self.low, self.task, self.form
        kernel = task.kernel.name
        if self.from_chip(self.b_name):
            raise refuse(
                f"the matrix product '{kernel}' takes '{self.b_name}' from another task; the "
                "MXM's stationary operand comes transposed from the host",
                task.span,
            )
        p = low.precision
        out_name, is_output = low.output_name(task, self.c_name)
        c_layout = low.budget.take(out_name, (form.m, form.n), "float32", task.span)
        product = f"{task.name}_c"
        if p == "int8":
            self.int8(product)
        else:
            a_parts = self.parts("a")
            b_parts = self.parts("b")
            if p == "fp16":
                prod = self.matmul("16", (0, 1), a_parts[0], b_parts[0])
                self.lines.append(f"{product} = {prod}.read(streams=g.SG4)")
            else:
                self.f32_products(product, a_parts, b_parts)
        value, epilogue = product, None
        if form.epilogue is not None:
            epilogue = self.phase("epi", (form.row, form.col), (form.m, form.n), PRODUCT, product)
            value, lines = epilogue.lower(form.epilogue)
            self.after |= epilogue.after
            self.lines += lines
        var = f"{out_name}_mt"
        flag = ", program_output=True" if is_output else ""
        self.lines.append(f'{var} = {value}.write(name="{out_name}", layout="{c_layout}"{flag})')
        low.current[self.c_name] = var
        low.writer[self.c_name] = task.name
        comment = {
            "f32": {
                3: "fp16 high and low parts, three MXM products accumulated in fp32",
                2: "one operand's fp16 high and low parts with the other's fp16 value, two MXM "
                "products accumulated in fp32",
                1: "fp16 operands (exact in fp16), one MXM product accumulated in fp32",
            }.get(len(self.matmuls), ""),
            "fp16": "fp16 operands, one MXM product accumulated in fp32 (--precision fp16)",
            "int8": "host-quantised int8, int32 accumulation, rescaled (--precision int8)",
        }[p]
        around = [
            what
            for what, there in (
                ("a prologue on the VXM before", form.prologue_a or form.prologue_b),
                ("the epilogue on the VXM after", form.epilogue),
            )
            if there is not None
        ]
        vectors = form.m * math.ceil(form.n / machine.LANES)
        sums = {"f32": max(len(self.matmuls) - 1, 0), "fp16": 0, "int8": 2}[p]
        ops = sums + (epilogue.ops if epilogue else 0)
        after = max(epilogue.depths.values(), default=0) if epilogue else 0
        depth = (1 if sums else 0) + 1 + after
        cost = StageCost(
            ops, 0, vectors, depth, tuple(self.matmuls), vectors, prologue=tuple(self.prologues)
        )
        return Stage(
            task.name,
            f"Task '{task.name}' ({kernel}): {self.c_name} = {self.a_name} @ {self.b_name} "
            f"({form.m} x {form.k} x {form.n}) on the MXM: {comment}"
            f"{'; ' + ' and '.join(around) + ' it' if around else ''}.",
            tuple(sorted(self.after - {"", task.name})),
            tuple(self.lines),
            cost,
        )

    def from_chip(self, tensor: str) -> bool:
        return self.low.graph.tensor(tensor).role != "input" or tensor in self.low.writer

    def phase(
        self, kind: str, loops: tuple[str, str], shape: tuple[int, int], placeholder: str, source
    ) -> Pointwise:
        return Pointwise(
            self.low, self.task, f"{self.task.name}_{kind}", loops, shape, placeholder, source
        )

    def matmul(self, suffix: str, planes: tuple[int, ...], a: str, b: str) -> str:
        low, task, form = self.low, self.task, self.form
        attr = f"mm_{task.name}_{suffix}"
        name = low.unique(f"{self.c_name}_{suffix}")
        low.matmuls.append(MatMulDecl(attr, name, planes))
        # nn.MatMul(buffer_output=True) writes its product to S4 of its planes' hemisphere
        hemi = machine.chip.MXM_PLANES[planes[0]]
        low.budget.take(name, (form.m, form.n), "float32", task.span, hemi=hemi, slices=4)
        self.lines.append(f"{name}_mt = self.{attr}({a}, {b}, time=0)")
        dtype = "int8" if suffix == "q" else "float16"
        self.matmuls.append((",".join(map(str, planes)), form.m, form.k, form.n, dtype))
        return f"{name}_mt"

    def f32_products(self, product: str, a_parts: tuple[str, ...], b_parts: tuple[str, ...]):
        """The products of the operands' parts but the two low ones, small parts first."""
        (a_hi, *a_lo), (b_hi, *b_lo) = a_parts, b_parts
        hh = self.matmul("hh", (0, 1), a_hi, b_hi)
        hl = self.matmul("hl", (2, 3), a_hi, b_lo[0]) if b_lo else ""
        lh = self.matmul("lh", (0, 1), a_lo[0], b_hi) if a_lo else ""
        small = [x for x in (lh, hl) if x]
        if len(small) == 2:
            self.lines.append(f"{product} = g.add(g.add({lh}, {hl}), {hh})  # small parts first")
        elif small:
            self.lines.append(f"{product} = g.add({small[0]}, {hh})  # the small part first")
        else:
            self.lines.append(f"{product} = {hh}.read(streams=g.SG4)  # both operands are fp16")

    def int8(self, product: str) -> None:
        low, task, form = self.low, self.task, self.form
        kernel = task.kernel.name
        if form.prologue_a is not None or form.prologue_b is not None:
            raise refuse(
                f"--precision int8 for '{kernel}' with a prologue (int8 scales are chosen on the "
                "host, from the operands as given)",
                task.span,
            )
        if self.from_chip(self.a_name):
            raise refuse(
                f"--precision int8 for '{kernel}': '{self.a_name}' is computed on the chip and "
                "int8 scales are chosen on the host",
                task.span,
            )
        a_q = low.declare_input(self.a_name, "int8_rows", "int8")
        b_q = low.declare_input(self.b_name, "int8_cols", "int8", True, "W", machine.WEIGHT_SLICES)
        scale = low.declare_input(self.c_name, "scale", "float32")
        prod = self.matmul("q", (0,), a_q, b_q)
        self.lines.append(f"{product} = g.mul(g.cast({prod}, dtype=g.float32), {scale})")

    def parts(self, side: str) -> tuple[str, ...]:
        """The fp16 parts of an operand as the MXM takes it: ``(high, low)`` in f32 precision,
        one part in fp16 precision or where the operand is an fp16 value."""
        low, task, form = self.low, self.task, self.form
        name = self.a_name if side == "a" else self.b_name
        prologue = form.prologue_a if side == "a" else form.prologue_b
        decl = low.graph.tensor(name)
        weights = side == "b"
        place = (True, "W", machine.WEIGHT_SLICES) if weights else (False, "", 1)
        halves = low.precision == "f32"
        exact = (
            isinstance(prologue, ir.Cast)
            and prologue.to == DType.F32
            and prologue.operand.dtype == DType.F16
        )
        bare = isinstance(prologue, ir.Cast) and isinstance(prologue.operand, ir.Name)
        if exact and bare and prologue.operand.name == OPERAND:  # an f16 tensor: the part itself
            if not self.from_chip(name):
                return (low.declare_input(name, "plain", "float16", *place),)
            self.after.add(low.writer[name])
            return (low.current[name],)
        if prologue is None:
            if not self.from_chip(name):
                if not halves:
                    return (low.declare_input(name, "fp16", "float16", *place),)
                hi = low.declare_input(name, "high", "float16", *place)
                lo_place = (True, "E", machine.WEIGHT_SLICES) if weights else place
                return hi, low.declare_input(name, "low", "float16", *lo_place)
            self.after.add(low.writer[name])
            source = low.current[name]
            rows, width = program_shape(decl.shape)
            value = source
            phase = None
        else:
            if weights:  # B's transpose from the host, rows along j, lanes along k
                source = low.declare_input(name, "plain", groq_dtype(decl.dtype), True)
                rows, width = form.n, form.k
                loops = (form.col, form.red)
            else:
                _, source = low.tensor_var(task, form.a)
                self.after.add(low.writer.get(name, ""))
                rows, width = form.m, form.k
                loops = (form.row, form.red)
            phase = self.phase(f"pro_{side}", loops, (rows, width), OPERAND, source)
            value, lines = phase.lower(prologue.operand if exact else prologue)
            self.after |= phase.after
            self.lines += lines
            halves = halves and not exact
        parts = self.cast_parts(name, value, (rows, width), halves, weights, exact)
        ops = (phase.ops if phase else 0) + (0 if exact else 4 if halves else 1)
        depth = (max(phase.depths.values(), default=0) if phase else 0) + (3 if halves else 1)
        self.prologues.append((ops, rows * math.ceil(width / machine.LANES), depth))
        return parts

    def cast_parts(
        self,
        name: str,
        value: str,
        shape: tuple[int, int],
        halves: bool,
        weights: bool,
        exact: bool,
    ) -> tuple[str, ...]:
        """An operand computed on the VXM as fp16 parts written to memory (weights in S16 of
        the planes' hemispheres: high West, low East)."""
        low, span = self.low, self.task.span
        least = machine.WEIGHT_SLICES if weights else 1
        hi = low.unique(f"{name}_hi" if halves else f"{name}_16")
        hi_layout = low.budget.take(hi, shape, "float16", span, least, "W" if weights else "")
        if exact:  # the prologue's value is the fp16 part
            self.lines.append(f'{hi}_mt = {value}.write(name="{hi}", layout="{hi_layout}")')
        else:
            self.lines.append(f"{hi}_st = g.cast({value}, dtype=g.float16)")
            self.lines.append(f'{hi}_mt = {hi}_st.write(name="{hi}", layout="{hi_layout}")')
        if not halves:
            return (f"{hi}_mt",)
        lo = low.unique(f"{name}_lo")
        lo_layout = low.budget.take(lo, shape, "float16", span, least, "E" if weights else "")
        self.lines.append(f"{lo}_st = g.sub({value}, g.cast({hi}_mt, dtype=g.float32))")
        self.lines.append(f"{lo}_st = g.cast({lo}_st, dtype=g.float16)")
        self.lines.append(f'{lo}_mt = {lo}_st.write(name="{lo}", layout="{lo_layout}")')
        return f"{hi}_mt", f"{lo}_mt"
