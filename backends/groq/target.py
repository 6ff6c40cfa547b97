"""The ``groq`` target: a Groq API program for the GroqChip (TSP), run by kernelc's tsp emulator.

``build`` lowers the graph (one buffered resource scope per task; ``--precision`` chooses how
matrix products use the MXM), checks the slice-exclusive memory plan, and writes program.py,
run.py, commands.sh, README.md and kernelc.json. ``run`` builds, then does what a user does on
a GroqNode: runs program.py (which compiles to the IOP) and run.py (which loads and runs it),
both against the emulator (runtime/tsp), and reads the emulated schedule's cycles from the IOP.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from kernelc import progress
from kernelc.artifact import Artifact, base_manifest, finished
from kernelc.backends.groq import machine, report
from kernelc.backends.groq.cost import model, report_lines
from kernelc.backends.groq.emit import commands_sh, program_py, readme, run_py
from kernelc.backends.groq.lower import lower
from kernelc.backends.groq.model import PRECISIONS, GroqProgram
from kernelc.diagnostics import KernelcError, command_line_span
from kernelc.graph import TaskGraph
from kernelc.report.data import Simulated, View
from kernelc.runtime.tsp import chip
from kernelc.targets import RunResult


def _precision(value: Any) -> str:
    text = str(value)
    if text not in PRECISIONS:
        raise KernelcError(
            f"--precision takes {', '.join(PRECISIONS)}, got '{text}'", command_line_span(text)
        )
    return text


class GroqTarget:
    name = "groq"
    description = (
        "GroqChip (Groq API): emits program.py and run.py; runs them in kernelc's tsp emulator"  # noqa: E501
    )
    options: Mapping[str, Any] = {"precision": _precision}

    def lowered(self, graph: TaskGraph, options: Mapping[str, Any]) -> GroqProgram:
        return lower(graph, options.get("precision", "f32"))

    def build(self, graph: TaskGraph, options: Mapping[str, Any]) -> Artifact:
        prog = self.lowered(graph, options)
        cost = model(prog)
        summary = report_lines(prog, cost)
        files: dict[str, str] = {
            "program.py": program_py(prog),
            "run.py": run_py(graph, prog),
            "commands.sh": commands_sh(prog),
            "README.md": readme(prog, summary),
        }
        manifest = base_manifest(
            graph,
            self.name,
            [*files, "kernelc.json"],
            arch=machine.CHIP,
            precision=prog.precision,
            iop=f"{prog.name}.iop",
            clock_hz=machine.CLOCK_HZ,
            program_inputs=[
                {
                    "name": d.name,
                    "shape": list(d.shape),
                    "dtype": d.dtype,
                    "layout": d.layout,
                    "from": d.source,
                    "host": d.host,
                }
                for d in prog.declared
                if d.host != "constant"
            ],
            constants=[
                {"name": d.name, "shape": list(d.shape), "layout": d.layout}
                for d in prog.declared
                if d.host == "constant"
            ],
            memory={
                "slices_used": prog.slices,
                "slice_bytes": machine.SLICE_BYTES,
                "reserved_slices": {h: sorted(chip.RESERVED_SLICES[h]) for h in chip.HEMISPHERES},
                "tensors": report.memory_plan(prog),
            },
            modelled_stages=report.stage_figures(prog, cost),
            host_io={"bytes": cost.host_bytes, "seconds": cost.host_seconds},
            limits={name: most for name, most in prog.limits},
            modelled_cycles=cost.cycles,
            modelled_units=cost.units,
            modelled_scopes=cost.stages,
        )
        return finished(self.name, files, manifest, summary, self.report_view)

    def report_view(self, manifest: Mapping[str, Any]) -> View:
        return report.view(manifest)

    def simulated(self, manifest: Mapping[str, Any], stats: Mapping[str, Any]) -> Simulated:
        return report.simulated(manifest, stats)

    def emit_groq(self, graph: TaskGraph, options: Mapping[str, Any]) -> str:
        return program_py(self.lowered(graph, options))

    @property
    def emitters(self) -> dict:
        return {"groq": self.emit_groq}

    def run(
        self, graph: TaskGraph, inputs: Mapping[str, np.ndarray], options: Mapping[str, Any]
    ) -> RunResult:
        from kernelc.runtime.tsp.iop import read_iop
        from kernelc.runtime.tsp.loader import run_file

        artifact = self.build(graph, options)
        for name, most in artifact.manifest["limits"].items():
            if np.any(np.asarray(inputs[name]) > most):
                raise KernelcError(
                    f"groq: input '{name}' has a value above {most}: the lookup's padded loop "
                    f"runs {most} iterations (the extent of the dimension it indexes)",
                    graph.tensor(name).span,
                )
        with tempfile.TemporaryDirectory(prefix="kernelc-groq-") as tmp:
            root = Path(tmp)
            src = artifact.write(root / "artifact")
            ins = root / "inputs"
            ins.mkdir()
            for t in graph.inputs:
                np.save(ins / f"{t.name}.npy", np.ascontiguousarray(inputs[t.name]))
            start = time.perf_counter()
            run_file(src / "program.py")
            outs = root / "outputs"
            with progress.phase("tsp emulator, run.py") as shown:

                def watch(done: int, total: int) -> None:
                    shown.update(lambda: f"instruction {done + 1:,} of {total:,}")

                run_file(src / "run.py", ["--inputs", str(ins), "--outputs", str(outs)], watch)
            seconds = time.perf_counter() - start
            outputs = {t.name: np.load(outs / f"{t.name}.npy") for t in graph.outputs}
            doc, _ = read_iop(src / artifact.manifest["iop"])
        stats = {
            "precision": artifact.manifest["precision"],
            "modelled_cycles": artifact.manifest["modelled_cycles"],
            "emulated_cycles": doc["cycles"],
            "emulated_units": dict(sorted(doc["units"].items())),
            "emulated_scopes": doc["scopes"],
            "run_seconds": seconds,
        }
        return RunResult(outputs, stats, artifact)


TARGET = GroqTarget()
