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
from kernelc.runtime.fabric import debug_util, sdk, sdk_utils
from kernelc.runtime.fabric.fabric import Simulator
from kernelc.runtime.fabric.parser import parse_program
from kernelc.runtime.fabric.setup import Unkeyable, frozen
from kernelc.runtime.fabric.typecheck import check_program
from kernelc.runtime.fabric.values import FabricError, Struct


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
    west_buf: int = 0,
    east_buf: int = 0,
) -> dict:
    """Validate the program on the simulator and write ``out_dir/out.json``."""
    layout = Path(layout).resolve()
    if not memcpy:
        raise FabricError("the simulator models programs built with --memcpy only")
    if not 1 <= channels <= 16:
        raise FabricError(f"--channels={channels}: the SDK accepts 1..16")
    program = parse_program(layout.parent, layout.name)
    check_program(program, layout.parent, arch, params)
    if west_buf < 0 or east_buf < 0:
        raise FabricError(
            f"--width-west-buf={west_buf} --width-east-buf={east_buf}: buffer widths are >= 0"
        )
    sim = Simulator(program, params, arch, channels)
    # I/O buffer columns sit between the memcpy columns and the program (csl.md 2.3).
    need = machine.fabric_dims(sim.width + west_buf + east_buf, sim.height)
    start = (machine.fabric_offsets()[0] + west_buf, machine.fabric_offsets()[1])
    if fabric_offsets != start:
        raise FabricError(
            f"--fabric-offsets={fabric_offsets[0]},{fabric_offsets[1]}: memcpy programs with "
            f"{west_buf} west buffer columns start at {start[0]},{start[1]}"
        )
    if fabric_dims[0] < need[0] or fabric_dims[1] < need[1]:
        raise FabricError(
            f"--fabric-dims={fabric_dims[0]},{fabric_dims[1]} is too small for a {sim.width} x "
            f"{sim.height} program with memcpy and {west_buf} + {east_buf} buffer columns "
            f"(needs at least {need[0]},{need[1]})"
        )
    config = {
        "params": {k: str(v) for k, v in sorted(params.items())},
        "kernelc_fabric": {
            "distinct_pe_programs": distinct_programs(sim.layout.tiles),
            "source": str(layout.parent),
            "layout": layout.name,
            "arch": arch,
            "channels": channels,
            "fabric_dims": list(fabric_dims),
            "fabric_offsets": list(fabric_offsets),
            "width_west_buf": west_buf,
            "width_east_buf": east_buf,
        },
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "out.json").write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
    sdk.CheckedFabric.keep(config, sim)
    return config


def distinct_programs(tiles: dict[tuple[int, int], tuple[str, Struct]]) -> int:
    """How many PE programs cslc compiles for a layout: its distinct pairs of file and
    ``@set_tile_code`` params (a PE whose params have no exact key counts on its own)."""
    keys: set[object] = set()
    for at, (file, params) in tiles.items():
        try:
            keys.add((file, frozen(params)))
        except Unkeyable:
            keys.add((file, at))
    return len(keys)


@contextlib.contextmanager
def sdk_modules() -> Iterator[None]:
    """Bind the SDK's module names to the simulator's shim for the duration of a run."""
    names = {
        "cerebras": types.ModuleType("cerebras"),
        "cerebras.sdk": types.ModuleType("cerebras.sdk"),
        "cerebras.sdk.runtime": types.ModuleType("cerebras.sdk.runtime"),
        "cerebras.sdk.runtime.sdkruntimepybind": sdk,
        "cerebras.sdk.sdk_utils": sdk_utils,
        "cerebras.sdk.debug": types.ModuleType("cerebras.sdk.debug"),
        "cerebras.sdk.debug.debug_util": debug_util,
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
