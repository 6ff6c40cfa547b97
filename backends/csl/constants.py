"""Scalar parameters as build-time constants: the CSL program takes no scalars at run time."""

from __future__ import annotations

from dataclasses import replace

from kernelc import ir
from kernelc.backends.csl.lowered import Refusal
from kernelc.forms import recognise
from kernelc.graph import Binding, TaskGraph
from kernelc.passes.constants import specialise, substitute


def missing_value(graph: TaskGraph, binding: Binding) -> Refusal | None:
    """Why a task's scalar parameter has no build-time value; None when it has one."""
    if binding.scalar is None:
        return None
    scalar = next(s for s in graph.scalars if s.name == binding.scalar)
    if scalar.default is not None:
        return None
    return Refusal(
        f"the csl backend takes scalar parameters at build time; give '{scalar.name}' a "
        f"value with -D {scalar.name}=VALUE",
        scalar.span,
    )


def scalar_value(graph: TaskGraph, binding: Binding) -> int | float | bool:
    """What a task passes for a scalar parameter; the CSL program takes it at build time. A
    parameter without a value is the user's to give (every lowering needs it)."""
    refused = missing_value(graph, binding)
    if refused is not None:
        raise refused.error()
    if binding.scalar is None:
        return binding.constant
    scalar = next(s for s in graph.scalars if s.name == binding.scalar)
    return scalar.default.value


def constant_scalars(graph: TaskGraph) -> TaskGraph | Refusal:
    """The graph with each task's scalar parameters replaced by their values, so that the
    data-parallel lowerings see constants (a task's form is recognised again on its new body);
    or why it cannot be (a scalar without a value)."""
    tasks = []
    for original in graph.tasks:
        task = specialise(original)  # constants, as bind recognised its form
        values: dict[str, ir.Const] = {}
        for binding in task.bindings:
            if binding.region is not None or binding.constant is not None:
                continue
            refused = missing_value(graph, binding)
            if refused is not None:
                return refused
            param = task.kernel.param(binding.param)
            value = scalar_value(graph, binding)
            values[param.name] = ir.Const(value=value, span=param.span, dtype=param.dtype)
        if task is original and not values:
            tasks.append(task)
            continue
        specialised = replace(task, kernel=substitute(task.kernel, values))
        tasks.append(replace(specialised, form=recognise(specialised)))
    return replace(graph, tasks=tuple(tasks))
