"""The ``csl`` target: CSL for the Cerebras wafer, run by kernelc's fabric simulator.

``build`` plans and lowers the graph for a PE rectangle chosen by ``--grid`` (policy.py:
``auto``, the default, the fewest modelled cycles; ``min``, the smallest grid that fits; or
``WxH``), checks the 48 KB memory plan, and writes
layout.csl, the PE program, run.py, commands.sh, README.md and kernelc.json. ``run`` builds,
"compiles" with the simulator's cslc stand-in and executes the emitted run.py against the
simulator, so the host code users will run on the real system is exercised too.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from kernelc import ir
from kernelc.artifact import Artifact, base_manifest, finished
from kernelc.backends.csl import policy, report, roles
from kernelc.backends.csl.constants import constant_scalars
from kernelc.backends.csl.cost import model, report_lines
from kernelc.backends.csl.emit import program_files
from kernelc.backends.csl.host import commands_sh, readme, run_py
from kernelc.backends.csl.lower import scalar_culprit
from kernelc.backends.csl.lowered import Refusal
from kernelc.csl import machine
from kernelc.diagnostics import KernelcError, Span
from kernelc.graph import TaskGraph
from kernelc.report.data import Simulated, View
from kernelc.targets import RunResult

POLICIES = ("auto", "min")


def _grid(value: Any) -> str | tuple[int, int]:
    """``"auto"``, ``"min"`` or ``"WxH"`` from the command line, or a (W, H) pair from Python."""
    if isinstance(value, tuple | list) and len(value) == 2:
        value = f"{value[0]}x{value[1]}"
    text = str(value)
    if text.strip().lower() in POLICIES:
        return text.strip().lower()
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise KernelcError(f"--grid takes auto, min or WxH (e.g. 8x8), got '{text}'", _cmd(text))
    w, h = int(match.group(1)), int(match.group(2))
    mw, mh = machine.WSE2.max_program
    if not (1 <= w <= mw and 1 <= h <= mh):
        raise KernelcError(f"--grid {w}x{h} is outside 1x1 .. {mw}x{mh} PEs", _cmd(text))
    return (w, h)


def _arch(value: Any) -> str:
    return machine.arch(str(value), _cmd(str(value))).name


def _cmd(token: str) -> Span:
    from kernelc.diagnostics import command_line_span

    return command_line_span(token)


class CslTarget:
    name = "csl"
    description = "Cerebras WSE-2/WSE-3 (CSL): emits layout, PE program and run.py; runs them in kernelc's fabric simulator"  # noqa: E501
    options: Mapping[str, Any] = {"grid": _grid, "arch": _arch}

    # --------------------------------------------------------------------- build
    def placement(self, graph: TaskGraph, options: Mapping[str, Any]) -> policy.Placement:
        """The lowered program on the grid the policy chose; a graph the data-parallel
        lowerings refuse runs as scalar tasks instead (every tensor whole on each PE), when
        it fits."""
        arch = machine.arch(options.get("arch"))
        grid = options.get("grid", "auto")
        if scalar_culprit(graph) is not None:
            return policy.scalar(graph, arch, grid, None)
        constant = constant_scalars(graph)
        if not isinstance(constant, Refusal) and scalar_culprit(constant) is not None:
            return policy.scalar(graph, arch, grid, None)  # a form the values changed
        placed = (
            constant
            if isinstance(constant, Refusal)
            else policy.data_parallel(constant, arch, grid)
        )
        if isinstance(placed, Refusal):
            return policy.scalar(graph, arch, grid, placed)
        return placed

    def build(self, graph: TaskGraph, options: Mapping[str, Any]) -> Artifact:
        placed = self.placement(graph, options)
        low = placed.lowered
        cost = model(low)
        programs = roles.count(low.builder)
        summary = [
            *report_lines(low, cost),
            f"csl: {programs:,} distinct PE programs (roles) for cslc to compile on "
            f"{low.width * low.height:,} PEs",
            *placed.report(),
        ]
        files: dict[str, str] = dict(program_files(low.program))
        files["run.py"] = run_py(graph, low)
        files["commands.sh"] = commands_sh(low)
        files["README.md"] = readme(graph, low, summary)
        manifest = base_manifest(
            graph,
            self.name,
            [*files, "kernelc.json"],
            arch=low.arch.name,
            grid=[low.width, low.height],
            fabric_dims=list(machine.fabric_dims(low.width, low.height)),
            fabric_offsets=list(machine.fabric_offsets()),
            cslc_params={"width": low.width, "height": low.height},
            layout="layout.csl",
            pe_programs=[f.name for f in low.program.pe_files],
            distinct_pe_programs=programs,
            launches=low.launches,
            memory={
                "per_pe_bytes": low.memory_bytes,
                "data_bytes": low.data_bytes,
                "modelled_code_bytes": low.code_bytes,
                "limit_bytes": low.arch.pe_memory,
                "arrays": dict(sorted(low.arrays.items())),
            },
            modelled_cycles=cost.cycles,
            placement=placed.manifest(),
            modelled_tasks={t.name: t.cycles for t in cost.tasks},
            modelled_phases={t.name: list(t.parts.items()) for t in cost.tasks},
            batches=low.batches.count if low.batches is not None else 1,
            launch_tasks=report.places(graph, low),
            clock_hz=low.arch.clock_hz,
            placements={
                name: [
                    {
                        "axis": d.axis,
                        "parts": d.split.parts if d.split else d.bands.count if d.bands else 1,
                        "halo": list(d.halo),
                        "local": d.local,
                        **({"group": d.div} if d.div != 1 else {}),
                        **({"band_depth": d.bands.depth} if d.bands else {}),
                    }
                    for d in lay.dims
                ]
                for name, lay in sorted(low.layouts.items())
            },
        )
        return finished(self.name, files, manifest, summary, self.report_view)

    def report_view(self, manifest: Mapping[str, Any]) -> View:
        return report.view(manifest)

    def simulated(self, manifest: Mapping[str, Any], stats: Mapping[str, Any]) -> Simulated:
        return report.simulated(manifest, stats)

    def emit_csl(self, graph: TaskGraph, options: Mapping[str, Any]) -> str:
        low = self.placement(graph, options).lowered
        return "".join(
            f"// ===== {name}\n{text}" for name, text in program_files(low.program).items()
        )

    @property
    def emitters(self) -> dict:
        return {"csl": self.emit_csl}

    # ----------------------------------------------------------------------- run
    def run(
        self, graph: TaskGraph, inputs: Mapping[str, np.ndarray], options: Mapping[str, Any]
    ) -> RunResult:
        from kernelc.runtime.fabric.runner import compile_program, run_host_script
        from kernelc.runtime.fabric.sdk import STATS_FILE

        artifact = self.build(with_scalar_values(graph, inputs), options)
        manifest = artifact.manifest
        _check_host_memory(graph, manifest, options)
        with tempfile.TemporaryDirectory(prefix="kernelc-csl-") as tmp:
            root = Path(tmp)
            src = artifact.write(root / "artifact")
            ins = root / "inputs"
            ins.mkdir()
            for t in graph.inputs:
                np.save(ins / f"{t.name}.npy", np.ascontiguousarray(inputs[t.name]))
            out = root / "out"
            compile_program(
                src / "layout.csl",
                arch=manifest["arch"],
                fabric_dims=tuple(manifest["fabric_dims"]),
                fabric_offsets=tuple(manifest["fabric_offsets"]),
                params=dict(manifest["cslc_params"]),
                channels=1,
                memcpy=True,
                out_dir=out,
            )
            outs = root / "outputs"
            run_host_script(
                src / "run.py", ["--name", str(out), "--inputs", str(ins), "--outputs", str(outs)]
            )
            outputs = {t.name: np.load(outs / f"{t.name}.npy") for t in graph.outputs}
            sim = json.loads((out / STATS_FILE).read_text())
        stats = {
            "grid": f"{sim['grid'][0]}x{sim['grid'][1]}",
            "arch": sim["arch"],
            "simulated_kernel_cycles": sim["simulated_kernel_cycles"],
            "simulated_memcpy_cycles": sim["simulated_memcpy_cycles"],
            "simulated_launch_cycles": _per_launch(sim["launches"]),
            "simulated_max_busy_cycles": sim["max_busy_cycles"],
            "max_pe_memory_bytes": sim["max_memory_bytes"],
            "modelled_cycles": manifest["modelled_cycles"],
            "run_seconds": sim["wall_seconds"],
            "simulator_launch_seconds": sim["launch_wall_seconds"],
        }
        return RunResult(outputs, stats, artifact)


def _check_host_memory(graph: TaskGraph, manifest: dict, options: Mapping[str, Any]) -> None:
    """A plan too large to simulate in this machine's memory is refused before it starts."""
    from kernelc.runtime.fabric import footprint

    width, height = manifest["grid"]
    why = footprint.too_big(
        width * height, manifest["memory"]["data_bytes"], footprint.available_bytes()
    )
    if why is None:
        return
    grid = options.get("grid", "auto")
    if isinstance(grid, tuple):
        advice = "give a smaller --grid"
    else:
        advice = "give --grid min (the fewest PEs that hold the data) or a smaller --grid WxH"
    raise KernelcError(f"{why}: {advice} (the plan is {width} x {height} PEs)", graph.span)


def _per_launch(launches: list[dict[str, Any]]) -> dict[str, int]:
    """Simulated cycles per launched function, summed over its launches (batches)."""
    out: dict[str, int] = {}
    for launch in launches:
        out[launch["function"]] = out.get(launch["function"], 0) + launch["simulated_cycles"]
    return out


def with_scalar_values(graph: TaskGraph, inputs: Mapping[str, Any]) -> TaskGraph:
    """The graph with the scalar values given as inputs as its scalars' values: the CSL program
    takes its scalars at build time, so a run builds it for the values it was given."""
    scalars = tuple(
        replace(s, default=ir.Const(value=inputs[s.name].item(), span=s.span, dtype=s.dtype))
        if s.name in inputs
        else s
        for s in graph.scalars
    )
    return replace(graph, scalars=scalars)


TARGET = CslTarget()
