"""The ``poplar`` target: Poplar C++ for Graphcore IPUs, run by kernelc's IPU model.

``build`` plans the graph (lower.py), writes codelets.cpp, main.cpp, CMakeLists.txt,
commands.sh, README.md and kernelc.json, and reports tiles, memory and modelled cycles.
``run`` builds, compiles the emitted C++ unchanged against runtime/ipu with g++ and runs it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from kernelc.artifact import Artifact, base_manifest, finished
from kernelc.backends.poplar import machine, report
from kernelc.backends.poplar.cost import model, report_lines, tile_bytes, traffic
from kernelc.backends.poplar.emit import codelets_cpp, main_cpp
from kernelc.backends.poplar.host import cmakelists, commands_sh, readme
from kernelc.backends.poplar.lower import lower
from kernelc.backends.poplar.lowered import Plan
from kernelc.diagnostics import KernelcError, command_line_span
from kernelc.graph import TaskGraph
from kernelc.report.data import Simulated, View
from kernelc.targets import RunResult


def _arch(value: Any) -> str:
    return machine.arch(str(value), command_line_span(str(value))).name


def _tiles(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        text = str(value)
        if not text.isdigit():
            raise KernelcError(
                f"--tiles takes a number of tiles, got '{text}'", command_line_span(text)
            )
        return int(text)
    return value


class PoplarTarget:
    name = "poplar"
    description = "Graphcore IPU GC200/Bow (Poplar C++): emits codelets and host program; runs them in kernelc's IPU model"  # noqa: E501
    options: Mapping[str, Any] = {"arch": _arch, "tiles": _tiles}

    def plan(self, graph: TaskGraph, options: Mapping[str, Any]) -> Plan:
        arch = machine.arch(options.get("arch"))
        tiles = options.get("tiles")
        span = None
        if tiles is not None:
            span = command_line_span(str(tiles))
            if not 1 <= tiles <= arch.tiles:
                raise KernelcError(
                    f"--tiles {tiles} is outside 1 .. {arch.tiles} (the tiles of a "
                    f"{arch.name.upper()} IPU)",
                    span,
                )
        return lower(graph, arch, tiles, span)

    def build(self, graph: TaskGraph, options: Mapping[str, Any]) -> Artifact:
        plan = self.plan(graph, options)
        flows = traffic(plan)
        cost = model(plan, flows)
        per_tile = tile_bytes(plan, flows)
        summary = report_lines(plan, cost)
        files = {
            "codelets.cpp": codelets_cpp(plan),
            "main.cpp": main_cpp(plan),
            "CMakeLists.txt": cmakelists(plan),
            "commands.sh": commands_sh(plan),
            "README.md": readme(plan, summary),
        }
        manifest = base_manifest(
            graph,
            self.name,
            [*files, "kernelc.json"],
            arch=plan.arch.name,
            sdk_target=plan.arch.sdk_target,
            tiles_used=plan.tiles_used,
            compute_sets=plan.steps,
            tiles=plan.tiles,
            tasks=[
                {
                    "task": low.task.name,
                    "class": low.codelet.cls,
                    "compute_set": low.step,
                    "vertices": len(low.instances),
                    "tiles": sorted({i.tile for i in low.instances}),
                    "lowering": low.describe,
                }
                for low in plan.tasks
            ],
            tensors={
                t.name: {
                    "tiles": sorted({tile for _, tile in t.mapping.blocks()}),
                    "bytes": t.nbytes,
                }
                for t in plan.tensors
            },
            modelled_cycles={
                "compute": cost.compute,
                "exchange": cost.exchange,
                "sync": cost.sync,
                "total": cost.total,
            },
            clock_hz=plan.arch.clock_hz,
            placement=_placement(plan, cost.total),
            modelled_compute_sets=[list(step.items()) for step in cost.steps],
            memory={
                "per_tile_bytes": [per_tile.get(t, 0) for t in range(plan.arch.tiles)],
                "limit_bytes": plan.arch.tile_memory,
            },
        )
        return finished(self.name, files, manifest, summary, self.report_view)

    def report_view(self, manifest: Mapping[str, Any]) -> View:
        return report.view(manifest)

    def simulated(self, manifest: Mapping[str, Any], stats: Mapping[str, Any]) -> Simulated:
        return report.simulated(manifest, stats)

    def run(
        self, graph: TaskGraph, inputs: Mapping[str, np.ndarray], options: Mapping[str, Any]
    ) -> RunResult:
        from kernelc.runtime.ipu import runner

        artifact = self.build(graph, options)
        runner.compiler()
        with tempfile.TemporaryDirectory(prefix="kernelc-poplar-") as tmp:
            root = Path(tmp)
            src = artifact.write(root / "artifact")
            binary = runner.build(src)
            ins, outs = root / "inputs", root / "outputs"
            ins.mkdir()
            outs.mkdir()
            for t in graph.inputs:
                (ins / f"{t.name}.bin").write_bytes(np.ascontiguousarray(inputs[t.name]).tobytes())
            for s in graph.scalars:
                value = np.asarray(inputs[s.name], dtype=s.dtype.numpy)
                (ins / f"{s.name}.bin").write_bytes(value.tobytes())
            sim = runner.run(binary, ["--inputs", str(ins), "--outputs", str(outs)], root)
            outputs = {
                t.name: np.frombuffer((outs / f"{t.name}.bin").read_bytes(), t.dtype.numpy)
                .reshape(t.shape)
                .copy()
                for t in graph.outputs
            }
        stats = {
            "arch": artifact.manifest["arch"],
            "tiles_used": sim["tiles_used"],
            "max_tile_bytes": sim["max_tile_bytes"],
            "simulated_cycles": sim["total_cycles"],
            "simulated_compute_cycles": sim["compute_cycles"],
            "simulated_exchange_cycles": sim["exchange_cycles"],
            "simulated_sync_cycles": sim["sync_cycles"],
            "simulated_compute_sets": dict(sorted(sim["compute_sets"].items())),
            "modelled_cycles": artifact.manifest["modelled_cycles"]["total"],
        }
        return RunResult(outputs, stats, artifact)


def _placement(plan: Plan, cycles: int) -> dict[str, Any]:
    """How the tile count was chosen: given, or the fewest modelled cycles among those tried,
    with the runner-up."""
    chosen = {"tiles": plan.tiles, "modelled_cycles": cycles}
    if not plan.weighed:
        return {"policy": "given", "chosen": chosen, "runner_up": None}
    others = sorted((c, t) for t, c in plan.weighed if t != plan.tiles)
    runner_up = {"tiles": others[0][1], "modelled_cycles": others[0][0]} if others else None
    return {"policy": "auto", "chosen": chosen, "runner_up": runner_up, "tried": len(plan.weighed)}


TARGET = PoplarTarget()
