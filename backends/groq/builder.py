"""What every task's lowering adds to: the program's declarations, names, and the latest
version of each graph tensor with the stage that wrote it."""

from __future__ import annotations

from kernelc.affine import Affine
from kernelc.backends.groq import machine
from kernelc.backends.groq.memory import Budget
from kernelc.backends.groq.model import (
    Declared,
    GroqProgram,
    MatMulDecl,
    Output,
    Stage,
    program_shape,
    refuse,
)
from kernelc.diagnostics import Span
from kernelc.graph import Task, TaskGraph
from kernelc.types import DType


class ProgramBuilder:
    """The program as its tasks are lowered: declarations, unique names, memory, versions."""

    def __init__(self, graph: TaskGraph, precision: str) -> None:
        self.graph = graph
        self.precision = precision
        self.budget = Budget()
        self.declared: list[Declared] = []
        self.matmuls: list[MatMulDecl] = []
        self.stages: list[Stage] = []
        self.names: set[str] = set()
        self.current: dict[str, str] = {}  # graph tensor -> variable of its latest version
        self.writer: dict[str, str] = {}  # graph tensor -> stage that wrote its latest version
        self.last_writer = {w.tensor: t.name for t in graph.tasks for w in t.writes}
        self.lookup_outputs: dict[str, tuple[int, int]] = {}  # tensor -> its items
        self.limits: list[tuple[str, int]] = []
        self.kinds: dict[str, str] = {}  # memory tensor variable -> its dtype, if not float32
        for t in graph.tensors:
            if not t.name.isidentifier() or not t.name.isascii():
                raise refuse(f"tensor name '{t.name}' is no ASCII identifier", t.span)

    def unique(self, name: str) -> str:
        """A program-wide unique Groq tensor name (user names first, generated ones after)."""
        candidate, k = name, 1
        while candidate in self.names or candidate in {t.name for t in self.graph.tensors}:
            k += 1
            candidate = f"{name}_{k}"
        self.names.add(candidate)
        return candidate

    def declare_input(
        self,
        source: str,
        host: str,
        dtype: str,
        transposed: bool = False,
        hemi: str = "",
        least: int = 1,
    ) -> str:
        decl = self.graph.tensor(source)
        shape = program_shape(decl.shape)
        if transposed:
            shape = (shape[1], shape[0])
        suffix = {
            "plain": "",
            "high": "_hi",
            "low": "_lo",
            "fp16": "_16",
            "int8_rows": "_q",
            "int8_cols": "_q",
            "scale": "_scale",
        }[host]
        plain = host == "plain" and not transposed
        name = source if plain else self.unique(f"{source}{suffix}{'_t' if transposed else ''}")
        if plain:
            self.names.add(name)
        layout = self.budget.take(name, shape, dtype, decl.span, least, hemi)
        var = f"{name}_mt"
        if dtype != "float32":
            self.kinds[var] = dtype
        self.declared.append(Declared(var, name, shape, dtype, layout, source, host, transposed))
        return var

    def program(self) -> GroqProgram:
        """The program once every task's stage is added."""
        outputs = []
        for t in self.graph.outputs:
            if t.name not in self.current:
                raise refuse(f"output '{t.name}' is never written by a task", t.span)
            items = self.lookup_outputs.get(t.name)
            outputs.append(Output(t.name, self.current[t.name], t.shape, items))
        used = {h: len(machine.usable_slices(h)) - n for h, n in self.budget.free.items()}
        return GroqProgram(
            self.graph.name,
            class_name(self.graph.name),
            self.graph.filename.rsplit("/", 1)[-1],
            self.precision,
            tuple(self.declared),
            tuple(self.matmuls),
            tuple(self.stages),
            tuple(outputs),
            used,
            dict(self.budget.taken),
            tuple(self.limits),
        )

    def tensor_var(self, task: Task, param: str) -> tuple[str, str]:
        """(graph tensor, variable of its current version) of a kernel parameter; an input
        read for the first time is declared."""
        name = task.binding(param).region.tensor
        if name not in self.current:
            decl = self.graph.tensor(name)
            if decl.role != "input":
                raise refuse(f"'{name}' is read before any task writes it", task.span)
            self.current[name] = self.declare_input(name, "plain", groq_dtype(decl.dtype))
            self.writer[name] = ""
        return name, self.current[name]

    def output_name(self, task: Task, tensor: str) -> tuple[str, bool]:
        """The Groq name of the version a task writes, and whether it is a program output."""
        final = self.last_writer[tensor] == task.name
        if final:
            self.names.add(tensor)
            return tensor, self.graph.tensor(tensor).role == "output"
        return self.unique(f"{tensor}_{task.name}"), False

    def predecessors(self, tensors: list[str]) -> tuple[str, ...]:
        return tuple(sorted({self.writer[t] for t in tensors if self.writer.get(t)}))


def class_name(name: str) -> str:
    """The program's component class, from the graph's name (``Program`` if none fits)."""
    words = [w for w in name.replace("-", "_").split("_") if w]
    text = "".join(w[:1].upper() + w[1:] for w in words) or "Program"
    return text if text.isidentifier() else "Program"


def groq_dtype(dtype: DType) -> str:
    """The Groq API dtype name of a streamed language type."""
    return {DType.F32: "float32", DType.F16: "float16", DType.I32: "int32"}[dtype]


def size_value(form: Affine, sizes: dict[str, int], span: Span) -> int:
    """A loop bound's value: the chip runs one fixed schedule, so it must be a size."""
    if any(n not in sizes for n, _ in form.terms):
        raise refuse("a loop bound that is not a compile-time size", span)
    return form.const + sum(sizes[n] * c for n, c in form.terms)
