"""The Groq program model: what the lowerings build and emit, cost and report read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kernelc.diagnostics import Span, Unsupported

PRECISIONS = ("f32", "fp16", "int8")


TINY = 2.0**-126  # added under rsqrt so that sqrt(0) = 0 * rsqrt(TINY) = 0 exactly


SHIFT_LANES = "shift_lanes("  # program.py's helper: one VXM op joins each split's edge lanes


@dataclass(frozen=True)
class Declared:
    """A memory tensor the program declares at module level: an input or a constant table."""

    var: str
    name: str
    shape: tuple[int, ...]
    dtype: str
    layout: str
    source: str  # the graph tensor it carries ("" for a constant table)
    host: str  # how run.py prepares it: plain, high, low, fp16, int8_rows, int8_cols, scale
    transposed: bool = False
    rows: tuple[tuple, ...] = ()  # a constant table's rows: ("fill", v) or ("lanes", lo, hi)
    items: tuple[int, int] = (0, 0)  # a lookup's item range (host "superlanes")
    listed: bool = False  # a table of "fill" rows whose values program.py lists as NAME


@dataclass(frozen=True)
class MatMulDecl:
    attr: str
    name: str
    planes: tuple[int, ...]


@dataclass(frozen=True)
class StageCost:
    """What the cost model needs of a stage: per unit the streamed vectors, and the depth."""

    vxm_ops: int
    sxm_ops: int
    vectors: int  # vectors per VXM/SXM op (rows x inner splits)
    depth: int  # longest VXM chain
    matmuls: tuple[tuple[str, int, int, int, str], ...]  # (planes, n, k, m, dtype)
    writes: int  # vectors written
    gathers: int = 0  # g.mem_gather vectors per vector of items
    sxm_rows: int = 0  # when set, each SXM op streams this many vectors (one inner split's rows)
    chained: bool = False  # its time: the longer of the units' throughput and its chain (depth)
    prologue: tuple[tuple[int, int, int], ...] = ()  # (VXM ops, vectors, depth) before the MXM
    span: int = 0  # when set: its ops' rows and chains overlap, the last one ends this late


@dataclass(frozen=True)
class Stage:
    name: str
    comment: str
    predecessors: tuple[str, ...]
    lines: tuple[str, ...]
    cost: StageCost


@dataclass(frozen=True)
class Output:
    name: str
    var: str
    shape: tuple[int, ...]  # the graph's shape (the program's is 2-D)
    items: tuple[int, int] | None = None  # a lookup's output: items first .. end by superlane


@dataclass(frozen=True)
class GroqProgram:
    name: str
    class_name: str
    source: str
    precision: str
    declared: tuple[Declared, ...]
    matmuls: tuple[MatMulDecl, ...]
    stages: tuple[Stage, ...]
    outputs: tuple[Output, ...]
    slices: dict[str, int]  # slices used per hemisphere
    memory: dict[str, tuple[str, int, int]]  # memory tensor -> (layout, bytes, per slice)
    limits: tuple[tuple[str, int], ...] = ()  # (input, largest value a padded loop allows)


class FormStage(Protocol):
    """A task's lowering: built for one task, ``lower`` gives its resource scope."""

    def lower(self) -> Stage: ...


def refuse(construct: str, span: Span) -> Unsupported:
    return Unsupported(f"groq: {construct}", span)


def program_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """Tensors are (rows, lanes) on the chip; a 1-D tensor is one row."""
    return (1, shape[0]) if len(shape) == 1 else (shape[0], shape[1])
