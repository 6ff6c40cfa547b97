"""The ``cpu`` target: LLVM (through llvmlite) for the host CPU, JIT-run on NumPy arrays.

``build`` writes the optimised module as ``<entry>.ll``, a position-independent object file
``<entry>.o`` exporting one ``kernelc_task_<task>(void **buffers, int64_t lo, int64_t hi)`` per
task (see lower.py for the buffer table), and ``kernelc.json``. ``run`` compiles once per bound
program (runtime/cpu/cache.py) and runs the tasks in dependency order on ``threads`` threads.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from kernelc.artifact import Artifact, base_manifest, manifest_text
from kernelc.backends.cpu.compile import CompiledProgram, compile_graph, object_code
from kernelc.backends.cpu.machine import host
from kernelc.diagnostics import KernelcError, Span
from kernelc.graph import TaskGraph
from kernelc.report import data
from kernelc.targets import RunResult


def _threads(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise KernelcError(
            f"--threads must be a positive integer, got {value!r}", Span("<command line>", 1, 1)
        )
    return int(value)


def _emit_llvm(graph: TaskGraph, options: Mapping[str, Any]) -> str:
    return compile_graph(graph).llvm_ir


class CpuTarget:
    name = "cpu"
    description = "native code for this CPU via LLVM (llvmlite JIT), parallel loops on threads"
    options: Mapping[str, Any] = {"threads": _threads}
    emitters = {"llvm": _emit_llvm}

    def build(self, graph: TaskGraph, options: Mapping[str, Any]) -> Artifact:
        program = compile_graph(graph)
        stem = graph.name
        files: dict[str, str | bytes] = {
            f"{stem}.ll": program.llvm_ir,
            f"{stem}.o": object_code(program),
        }
        manifest = base_manifest(
            graph, self.name, [*files, "kernelc.json"], **_manifest_extra(program)
        )
        files["kernelc.json"] = manifest_text(manifest)
        m = program.machine
        report = (
            f"{len(program.tasks)} task(s) for {m.cpu} ({m.vector_bits}-bit vectors), "
            f"LLVM O3 in {program.seconds:.3f} s",
        )
        return Artifact(self.name, files, manifest, report, data.report(manifest, None))

    def report_view(self, manifest: Mapping[str, Any]) -> None:
        """No placement or cycle model on this target: the report shows the graph only."""
        return None

    def run(
        self, graph: TaskGraph, inputs: Mapping[str, np.ndarray], options: Mapping[str, Any]
    ) -> RunResult:
        from kernelc.runtime.cpu import cache
        from kernelc.runtime.cpu.execute import execute

        fixed = options.get("threads") is not None
        threads = options["threads"] if fixed else host().cores
        loaded, hit = cache.lookup(graph, compile_graph)
        start = time.perf_counter()
        outputs = execute(loaded, graph, inputs, threads, fixed)
        seconds = time.perf_counter() - start
        stats = {
            "run_seconds": seconds,
            "compile_seconds": 0.0 if hit else round(loaded.seconds, 4),
            "cache": "hit" if hit else "miss",
            "threads": threads,
        }
        return RunResult(outputs, stats)


def _manifest_extra(program: CompiledProgram) -> dict[str, Any]:
    m = program.machine
    return {
        "arch": m.cpu,
        "cpu": {"triple": m.triple, "name": m.cpu, "features": m.features},
        "abi": {
            "entry": "void kernelc_task_<task>(void **buffers, int64_t lo, int64_t hi)",
            "buffers": list(program.buffers),
            "whole_range": [-(2**63), 2**63 - 1],
        },
        "symbols": [
            {
                "task": t.name,
                "symbol": t.symbol,
                "split": list(t.split) if t.split is not None else None,
                "gemm": t.gemm,
            }
            for t in program.tasks
        ],
    }


TARGET = CpuTarget()
