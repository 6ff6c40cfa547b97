"""The ``csl`` target: CSL for the Cerebras wafer, run by kernelc's fabric simulator.

``build`` plans and lowers the graph for a PE rectangle (``--grid WxH``, or the smallest grid
whose per-PE memory plan fits, squarest blocks first), checks the 48 KB memory plan, and writes
layout.csl, the PE program, run.py, commands.sh, README.md and kernelc.json. ``run`` builds,
"compiles" with the simulator's cslc stand-in and executes the emitted run.py against the
simulator, so the host code users will run on the real system is exercised too.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from kernelc import ir
from kernelc.artifact import Artifact, base_manifest, manifest_text
from kernelc.backends.csl import tasks
from kernelc.backends.csl.constants import constant_scalars
from kernelc.backends.csl.cost import model, report_lines
from kernelc.backends.csl.emit import program_files
from kernelc.backends.csl.host import commands_sh, readme, run_py
from kernelc.backends.csl.lower import (
    GraphPlanner,
    lower,
    lowering_of,
    plan,
    scalar_culprit,
    scalar_reason,
)
from kernelc.backends.csl.lowered import Lowered
from kernelc.csl import machine
from kernelc.diagnostics import KernelcError, Span, Unsupported
from kernelc.graph import TaskGraph
from kernelc.targets import RunResult

GRID_SEARCH_LIMIT = 4000  # PE counts the automatic choice examines beyond the lower bound


def _grid(value: Any) -> tuple[int, int]:
    """``"WxH"`` from the command line, or a (W, H) pair from Python."""
    if isinstance(value, tuple | list) and len(value) == 2:
        value = f"{value[0]}x{value[1]}"
    text = str(value)
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise KernelcError(f"--grid takes WxH (e.g. 8x8), got '{text}'", _cmd(text))
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
    def lowered(self, graph: TaskGraph, options: Mapping[str, Any]) -> Lowered:
        """The lowered program; a graph the data-parallel lowerings refuse runs as scalar
        tasks instead (every tensor whole on each PE), when it fits."""
        if scalar_culprit(graph) is not None:
            return self._lowered(graph, options, None)
        try:
            return self._lowered(constant_scalars(graph), options, None)
        except Unsupported as refused:
            try:
                return self._lowered(graph, options, refused.message)
            except KernelcError as err:
                if err.message != refused.message:  # both paths may refuse for one reason
                    note = f"the data-parallel lowering: {refused.message}"
                    err.notes.append((refused.span, note))
                raise

    def _lowered(
        self, graph: TaskGraph, options: Mapping[str, Any], refusal: str | None
    ) -> Lowered:
        """``refusal``: why the data-parallel lowerings refused the graph (then scalar tasks)."""
        arch = machine.arch(options.get("arch"))
        grid = options.get("grid")
        if grid is None:
            return choose_grid(graph, arch, refusal)
        low = lower(graph, arch, *grid, refusal is not None)
        check_memory(graph, low, refusal)
        return low

    def build(self, graph: TaskGraph, options: Mapping[str, Any]) -> Artifact:
        low = self.lowered(graph, options)
        cost = model(low)
        report = report_lines(low, cost)
        files: dict[str, str] = dict(program_files(low.program))
        files["run.py"] = run_py(graph, low)
        files["commands.sh"] = commands_sh(low)
        files["README.md"] = readme(graph, low, report)
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
            launches=low.launches,
            memory={
                "per_pe_bytes": low.memory_bytes,
                "data_bytes": low.data_bytes,
                "modelled_code_bytes": low.code_bytes,
                "limit_bytes": low.arch.pe_memory,
                "arrays": dict(sorted(low.arrays.items())),
            },
            modelled_cycles=cost.cycles,
            modelled_tasks={t.name: t.cycles for t in cost.tasks},
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
        files["kernelc.json"] = manifest_text(manifest)
        return Artifact(self.name, files, manifest, tuple(report))

    def emit_csl(self, graph: TaskGraph, options: Mapping[str, Any]) -> str:
        low = self.lowered(graph, options)
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
            "simulated_max_busy_cycles": sim["max_busy_cycles"],
            "max_pe_memory_bytes": sim["max_memory_bytes"],
            "modelled_cycles": manifest["modelled_cycles"],
            "run_seconds": sim["wall_seconds"],
            "simulator_launch_seconds": sim["launch_wall_seconds"],
        }
        return RunResult(outputs, stats)


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


# ---------------------------------------------------------------------------- memory plan


def check_memory(graph: TaskGraph, low: Lowered, refusal: str | None = None) -> None:
    """A plan over 48 KB per PE is a user error naming the biggest tensor and the numbers."""
    limit = low.arch.pe_memory
    if low.memory_bytes <= limit:
        return
    biggest = max(low.layouts.values(), key=lambda lay: lay.local_bytes)
    decl = graph.tensor(biggest.tensor)
    block = " x ".join(str(n) for n in biggest.local_shape)
    hint = ""
    try:
        better = choose_grid(graph, low.arch, refusal)
        hint = f"; a {better.width} x {better.height} grid fits (omit --grid to choose it)"
    except KernelcError:
        hint = "; no grid of this machine fits: reduce the sizes"
    raise KernelcError(
        f"the csl plan for a {low.width} x {low.height} grid needs {low.memory_bytes:,} bytes per "
        f"PE (data {low.data_bytes:,} + modelled code {low.code_bytes:,}), more than the "
        f"{limit:,} bytes of a {low.arch.name.upper()} PE; the largest piece is '{decl.name}' "
        f"({decl.role} {decl.dtype}{list(decl.shape)}): a {block} block of "
        f"{biggest.local_bytes:,} bytes on every PE{hint}",
        decl.span,
    )


def _estimate(graph: TaskGraph, w: int, h: int) -> int | None:
    try:
        layouts = plan(graph, w, h)
    except Unsupported:
        raise
    except KernelcError:
        return None
    return sum(lay.local_bytes for lay in layouts.values())


def _squareness(graph: TaskGraph, w: int, h: int) -> float:
    t = graph.outputs[0] if graph.outputs else graph.tensors[0]
    if len(t.shape) < 2:
        return abs(math.log(w / h))
    bh, bw = t.shape[-2] / h, t.shape[-1] / w
    return abs(math.log(max(bh, 1e-9) / max(bw, 1e-9)))


def choose_grid(graph: TaskGraph, arch: machine.Arch, refusal: str | None = None) -> Lowered:
    """The smallest PE count whose plan fits; among its shapes the squarest blocks.
    ``refusal``: why the data-parallel lowerings refused the graph (then scalar tasks)."""
    mw, mh = arch.max_program
    culprit = scalar_culprit(graph)
    if culprit is not None or refusal is not None:
        # scalar tasks: a PE per task of the widest step, every tensor whole on each PE
        count = min(tasks.widest_step(graph), mw * mh)
        w = min(count, mw)
        low = lower(graph, arch, w, -(-count // w), scalar=True)
        if low.memory_bytes > arch.pe_memory:
            reason = (
                f"the data-parallel lowerings refused it: {refusal}"
                if refusal is not None
                else scalar_reason(graph)
            )
            raise tasks.too_big(graph, arch, culprit or graph.tasks[0], low.memory_bytes, reason)
        return low
    total = sum(t.nbytes for t in graph.tensors)
    room = arch.pe_memory - machine.CODE_BASE_BYTES
    first = max(1, total // room)
    planner = GraphPlanner()
    for task in graph.tasks:
        first = max(first, lowering_of(task).fewest_pes(task, task.form, graph, arch, planner))
    refused: KernelcError | None = None
    for count in range(first, min(first + GRID_SEARCH_LIMIT, mw * mh) + 1):
        shapes = [
            (w, count // w)
            for w in range(1, min(count, mw) + 1)
            if count % w == 0 and count // w <= mh
        ]
        shapes.sort(key=lambda s: (round(_squareness(graph, *s), 9), -s[0]))
        for w, h in shapes:
            estimate = _estimate(graph, w, h)
            if estimate is None or estimate + machine.CODE_BASE_BYTES > arch.pe_memory:
                continue
            try:
                low = lower(graph, arch, w, h)
            except Unsupported:
                raise  # no other grid would help: say what cannot be lowered
            except KernelcError as err:
                refused = err  # this grid cannot take the plan; another may
                continue
            if low.memory_bytes <= arch.pe_memory:
                return low
    notes = [] if refused is None else [(refused.span, f"the last grid tried: {refused.message}")]
    raise KernelcError(
        f"no PE grid of up to {min(first + GRID_SEARCH_LIMIT, mw * mh):,} PEs holds "
        f"'{graph.name}' in {arch.pe_memory:,} bytes per PE ({total:,} bytes of tensors); "
        "reduce the sizes or give --grid",
        graph.span,
        notes,
    )


TARGET = CslTarget()
