"""Lower, verify and optimise a task graph: the optimised LLVM IR every cpu artifact is made of.

Optimisation is LLVM's new pass manager at O3 with the loop and SLP vectorisers on, for the host
target machine (its CPU name and features), so vector widths and costs are the host's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import llvmlite.binding as llvm

from kernelc.backends.cpu.lower import lower
from kernelc.backends.cpu.machine import Machine, host, target_machine
from kernelc.graph import TaskGraph


@dataclass(frozen=True)
class TaskEntry:
    """One task's exported entry point and the static range of its split loop."""

    name: str
    symbol: str
    split: tuple[int, int] | None
    gemm: bool


@dataclass(frozen=True)
class CompiledProgram:
    """Optimised LLVM IR plus what the runtime needs to call it."""

    llvm_ir: str
    buffers: tuple[str, ...]  # graph tensors then scalars: the order of the buffer table
    tasks: tuple[TaskEntry, ...]
    machine: Machine
    seconds: float


def compile_graph(graph: TaskGraph) -> CompiledProgram:
    start = time.perf_counter()
    machine = host()
    lowered = lower(graph, machine)
    tm = target_machine()
    lowered.module.data_layout = str(tm.target_data)
    module = llvm.parse_assembly(str(lowered.module))
    module.verify()
    optimise(module)
    tasks = tuple(
        TaskEntry(p.task.name, p.symbol, p.split_range, p.gemm is not None) for p in lowered.plans
    )
    return CompiledProgram(
        str(module), lowered.buffers, tasks, machine, time.perf_counter() - start
    )


def optimise(module: llvm.ModuleRef) -> None:
    """O3 with vectorisation, for the host target machine."""
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_unrolling = True
    pto.loop_interleaving = True
    builder = llvm.create_pass_builder(target_machine(), pto)
    builder.getModulePassManager().run(module, builder)


def object_code(program: CompiledProgram) -> bytes:
    """A relocatable (position-independent) object file of the optimised module."""
    module = llvm.parse_assembly(program.llvm_ir)
    return target_machine(pic=True).emit_object(module)
