"""``cerebras.sdk.debug.debug_util`` as the SDK examples' run.py use it, on the simulator.

``read_trace(x, y, key)`` takes fabric coordinates (program coordinates plus the
``--fabric-offsets`` the program was compiled with, csl.md 3.2) and returns the entries a PE's
``<debug>`` import of that key recorded: strings, integers, floats, timestamps (simulated
cycles), in order.
"""

from __future__ import annotations

import json
from pathlib import Path

from kernelc.runtime.fabric.sdk import TRACES_FILE
from kernelc.runtime.fabric.values import FabricError


class debug_util:  # noqa: N801 (the SDK's spelling)
    def __init__(self, bindir: str, cmaddr: str | None = None) -> None:
        if cmaddr:
            raise FabricError("kernelc's fabric simulator cannot reach a CS system (--cmaddr)")
        config = json.loads((Path(bindir) / "out.json").read_text())
        self.offsets = tuple(config["kernelc_fabric"]["fabric_offsets"])
        path = Path(bindir) / TRACES_FILE
        rows = json.loads(path.read_text()) if path.exists() else []
        self.traces = {(x, y, key): entries for x, y, key, entries in rows}

    def read_trace(self, x: int, y: int, key: str) -> list:
        px, py = x - self.offsets[0], y - self.offsets[1]
        if (px, py, key) not in self.traces:
            raise FabricError(
                f"read_trace({x}, {y}, '{key}'): no <debug> trace '{key}' on the PE at fabric "
                f"({x}, {y}), program ({px}, {py})"
            )
        return list(self.traces[(px, py, key)])
