"""Lowering a task graph to a Groq API program model (``GroqProgram``), one stage per task.

Each task becomes one buffered resource scope of the top-level component, ordered after the
scopes whose tensors it reads, lowered by its form's entry in ``LOWERINGS``. A ``Map`` streams
its rows as 320-lane vectors through the VXM: a load at a row offset reads another window of
the tensor's rows, a load at a lane offset goes through an SXM shift, constants are rows of a
per-task constant table; guarded pieces are bands of rows whose lanes are chosen through their
bits. A ``Contraction`` runs on the MXM (``nn.MatMul``, which tiles to the 320 x 320 weight
blocks), in the chosen precision: ``f32`` (fp16 high and low parts of each operand, three
products with fp32 accumulation), ``fp16`` (one product) or ``int8`` (host-quantised operands
with per-row and per-column scales, int32 accumulation, rescaled on the VXM), its prologue and
epilogue on the VXM. A ``Reduction`` folds across the lanes of each row, or down the rows of
each column; a ``Lookup`` runs branch-free. A task of any other form is refused with
``Unsupported`` naming it: the chip has no data-dependent control flow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kernelc import ir
from kernelc.backends.groq.builder import ProgramBuilder
from kernelc.backends.groq.contract import ContractionStage
from kernelc.backends.groq.lookup import LookupStage
from kernelc.backends.groq.map import MapStage
from kernelc.backends.groq.model import FormStage, GroqProgram, refuse
from kernelc.backends.groq.reduction import reduction_stage
from kernelc.forms import Contraction, Lookup, Map, Reduction
from kernelc.graph import Task, TaskGraph
from kernelc.types import DType

LOWERINGS: dict[type, Callable[[ProgramBuilder, Task, Any], FormStage]] = {
    Map: MapStage,
    Contraction: ContractionStage,
    Reduction: reduction_stage,
    Lookup: LookupStage,
}
"""The lowering of each form the chip runs, keyed by the form's type; any other task is
refused (no data-dependent control flow)."""


def lower(graph: TaskGraph, precision: str) -> GroqProgram:
    builder = ProgramBuilder(graph, precision)
    for task in graph.tasks:
        drawn = next((n for n in ir.walk_body(task.kernel.body) if isinstance(n, ir.Rand)), None)
        if drawn is not None:
            raise refuse(
                f"'{'randbits' if drawn.bits else 'rand'}' in '{task.kernel.name}': the "
                "counter-based generator (lowbias32) needs wrapping u32 multiplies and xor, "
                "and the VXM's integer arithmetic saturates and the public API shows no xor, "
                "so the chip has no exact equivalent",
                drawn.span,
            )
        if type(task.form) not in LOWERINGS:
            raise refuse(
                f"'{task.kernel.name}' is sequential or data-dependent code (no Map, "
                "Contraction, Reduction or Lookup): the GroqChip runs one fixed schedule "
                "without data-dependent branches or loops",
                task.span,
            )
    for s in graph.scalars:
        raise refuse(f"scalar parameter '{s.name}' (runtime scalars are not lowered)", s.span)
    for task in graph.tasks:
        _check_regions(graph, task)
        builder.stages.append(LOWERINGS[type(task.form)](builder, task, task.form).lower())
    return builder.program()


def _check_regions(graph: TaskGraph, task: Task) -> None:
    """Tasks take whole tensors of rank 1 or 2, f32 (f16 where streamed; any for a lookup)."""
    for b in task.bindings:
        if b.scalar is not None:
            raise refuse(f"scalar argument '{b.scalar}' of '{task.kernel.name}'", task.span)
        if b.region is None:
            continue
        decl = graph.tensor(b.region.tensor)
        sliced = len(decl.shape) == 1 and b.region.keep == (True,)
        whole_fold = isinstance(task.form, Reduction) and task.form.loop is None
        if b.region.view_shape != decl.shape and not (whole_fold and sliced):
            raise refuse(
                f"the region {b.region} of '{decl.name}' passed to '{task.kernel.name}' "
                "(tasks take whole tensors on groq)",
                task.span,
            )
        if isinstance(task.form, Lookup):
            continue  # tables of any rank, f32 and i32 (LookupStage.param)
        if len(decl.shape) > 2:
            raise refuse(f"the rank-{len(decl.shape)} tensor '{decl.name}'", decl.span)
        streamed = (DType.F32, DType.F16) if isinstance(task.form, Map | Contraction) else ()
        if decl.dtype != DType.F32 and decl.dtype not in streamed:
            raise refuse(
                f"'{decl.name}' is {decl.dtype}; the groq lowering streams f32 tensors",
                decl.span,
            )
