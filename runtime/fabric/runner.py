"""Compile (the ``cslc`` stand-in) and run (the ``cs_python run.py`` stand-in) on the simulator.

``compile_program`` checks the layout and every PE program the way cslc would reject them
(syntax, rectangle, fabric dimensions, memory) and writes ``out.json``; ``run_host_script``
executes the emitted run.py with the SDK runtime module bound to the simulator's shim.
"""

from __future__ import annotations

import contextlib
import json
import runpy
import sys
import types
from collections.abc import Iterator
from pathlib import Path

from kernelc.csl import machine
from kernelc.runtime.fabric import sdk
from kernelc.runtime.fabric.fabric import Simulator
from kernelc.runtime.fabric.parser import parse_program
from kernelc.runtime.fabric.typecheck import check_program
from kernelc.runtime.fabric.values import FabricError


def compile_program(
    layout: str | Path,
    *,
    arch: str,
    fabric_dims: tuple[int, int],
    fabric_offsets: tuple[int, int],
    params: dict[str, int],
    channels: int,
    memcpy: bool,
    out_dir: str | Path,
) -> dict:
    """Validate the program on the simulator and write ``out_dir/out.json``."""
    layout = Path(layout).resolve()
    if not memcpy:
        raise FabricError("the simulator models programs built with --memcpy only")
    if not 1 <= channels <= 16:
        raise FabricError(f"--channels={channels}: the SDK accepts 1..16")
    program = parse_program(layout.parent, layout.name)
    check_program(program, layout.parent, arch, params)
    sim = Simulator(program, params, arch, channels)
    need = machine.fabric_dims(sim.width, sim.height)
    if fabric_offsets != machine.fabric_offsets():
        raise FabricError(
            f"--fabric-offsets={fabric_offsets[0]},{fabric_offsets[1]}: memcpy programs start at "
            f"{machine.fabric_offsets()[0]},{machine.fabric_offsets()[1]}"
        )
    if fabric_dims[0] < need[0] or fabric_dims[1] < need[1]:
        raise FabricError(
            f"--fabric-dims={fabric_dims[0]},{fabric_dims[1]} is too small for a {sim.width} x "
            f"{sim.height} program with memcpy (needs at least {need[0]},{need[1]})"
        )
    config = {
        "params": {k: str(v) for k, v in sorted(params.items())},
        "kernelc_fabric": {
            "source": str(layout.parent),
            "layout": layout.name,
            "arch": arch,
            "channels": channels,
            "fabric_dims": list(fabric_dims),
            "fabric_offsets": list(fabric_offsets),
        },
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "out.json").write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
    return config


@contextlib.contextmanager
def sdk_modules() -> Iterator[None]:
    """Bind the SDK's module names to the simulator's shim for the duration of a run."""
    names = {
        "cerebras": types.ModuleType("cerebras"),
        "cerebras.sdk": types.ModuleType("cerebras.sdk"),
        "cerebras.sdk.runtime": types.ModuleType("cerebras.sdk.runtime"),
        "cerebras.sdk.runtime.sdkruntimepybind": sdk,
    }
    saved = {n: sys.modules.get(n) for n in names}
    sys.modules.update(names)
    try:
        yield
    finally:
        for n, old in saved.items():
            if old is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = old


def run_host_script(script: str | Path, argv: list[str]) -> None:
    """Execute run.py as ``cs_python run.py ARGV`` would, against the simulator."""
    script = Path(script).resolve()
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(script), *argv]
    sys.path.insert(0, str(script.parent))
    try:
        with sdk_modules():
            runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise FabricError(f"{script.name} exited with status {exc.code}") from None
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
