"""The SDK runtime as the emitted ``run.py`` sees it, backed by the fabric simulator.

``run.py`` imports ``cerebras.sdk.runtime.sdkruntimepybind``; when kernelc runs it, that name is
bound (only for the duration of the run, never installed) to this module. The class keeps the
SdkRuntime call sequence of the SDK examples: ``get_id`` for each symbol, ``load``, ``run``, then
memcpys and launches, then ``stop``. Copy-mode memcpy moves exported arrays; streaming mode
moves wavelets on the colors the layout gave memcpy.
Host buffers hold one 32-bit word per element in both data types, as the SDK requires: with
``MEMCPY_16BIT`` the value is the low half of each word (csl.md 3.1).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from enum import Enum
from pathlib import Path

import numpy as np

from kernelc.runtime.fabric.fabric import Simulator
from kernelc.runtime.fabric.parser import parse_program
from kernelc.runtime.fabric.values import FabricError

STATS_FILE = "sim_stats.json"
TRACES_FILE = "sim_traces.json"  # <debug> buffers, for debug_util.read_trace
SIMPRINT_LOG = "sim.log"  # <simprint> lines, in the working directory as the SDK writes them


def _program_key(config: dict) -> str:
    """The compiled program's identity: its options and the text of every CSL file it reads."""
    sim_cfg = config["kernelc_fabric"]
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for path in sorted(Path(sim_cfg["source"]).rglob("*.csl")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


class CheckedFabric:
    """The simulator the cslc stand-in built to check a program, handed to the next
    ``load()`` of that same program in the same thread (``kernelc run`` and ``check`` run both
    in one thread): setting tens of thousands of PEs up is a large part of a big run, and the
    check has just done it on a fabric nothing has run on yet. Taken once, and per thread, so
    two threads running one program never share a simulator; a changed file or option gives
    another key, and then ``load()`` builds its own."""

    _slot = threading.local()

    @classmethod
    def keep(cls, config: dict, sim: Simulator) -> None:
        cls._slot.held = (_program_key(config), sim)

    @classmethod
    def take(cls, config: dict) -> Simulator | None:
        held = getattr(cls._slot, "held", None)
        cls._slot.held = None
        if held is None or held[0] != _program_key(config):
            return None
        return held[1]


class MemcpyDataType(Enum):
    MEMCPY_32BIT = 32
    MEMCPY_16BIT = 16


class MemcpyOrder(Enum):
    ROW_MAJOR = 0
    COL_MAJOR = 1


class _Symbol(int):
    """What ``get_id`` returns: an integer handle that remembers the symbol's name."""

    name: str

    def __new__(cls, number: int, name: str) -> _Symbol:
        obj = super().__new__(cls, number)
        obj.name = name
        return obj


class SdkRuntime:
    def __init__(self, bindir: str, cmaddr: str | None = None, **_options: object) -> None:
        if cmaddr:
            raise FabricError("kernelc's fabric simulator cannot reach a CS system (--cmaddr)")
        self.bindir = Path(bindir)
        config_path = self.bindir / "out.json"
        if not config_path.exists():
            raise FabricError(f"{config_path} is missing: compile first (see commands.sh)")
        self.config = json.loads(config_path.read_text())
        self.sim: Simulator | None = None
        self.symbols: dict[str, _Symbol] = {}
        self.wall = 0.0
        self.launch_wall = 0.0
        self.memcpy_cycles = 0

    # ---------------------------------------------------------------------- lifecycle
    def get_id(self, name: str) -> _Symbol:
        if name not in self.symbols:
            self.symbols[name] = _Symbol(len(self.symbols) + 1, name)
        return self.symbols[name]

    def load(self) -> None:
        sim_cfg = self.config["kernelc_fabric"]
        start = time.perf_counter()
        self.sim = CheckedFabric.take(self.config)
        if self.sim is None:
            program = parse_program(sim_cfg["source"], sim_cfg["layout"])
            params = {k: int(v) for k, v in self.config["params"].items()}
            self.sim = Simulator(program, params, sim_cfg["arch"], int(sim_cfg["channels"]))
        for name in self.symbols:
            if name not in self.sim.layout.exports:
                raise FabricError(f"get_id('{name}'): the layout exports no such symbol")
        self.wall += time.perf_counter() - start

    def run(self) -> None:
        if self.sim is None:
            raise FabricError("SdkRuntime.run() before load()")
        start = time.perf_counter()
        self.sim.start()
        self.wall += time.perf_counter() - start

    def stop(self) -> None:
        sim = self._sim()
        stats = sim.stats()
        stats["wall_seconds"] = self.wall
        stats["launch_wall_seconds"] = self.launch_wall
        stats["simulated_memcpy_cycles"] = int(self.memcpy_cycles)
        (self.bindir / STATS_FILE).write_text(json.dumps(stats, indent=1, sort_keys=True) + "\n")
        if sim.traces:
            traces = [[x, y, key, entries] for (x, y, key), entries in sorted(sim.traces.items())]
            (self.bindir / TRACES_FILE).write_text(json.dumps(traces) + "\n")
        if sim.simlog:
            lines = sorted(sim.simlog, key=lambda entry: entry[0])  # stable: a PE's order kept
            text = "".join(f"@{t} (simulated cycle) {line}\n" for t, line in lines)
            Path(SIMPRINT_LOG).write_text(text)

    def _sim(self) -> Simulator:
        if self.sim is None:
            raise FabricError("the runtime is not loaded: call load() and run() first")
        return self.sim

    def _timed_copy(self, copy):
        """Run one host transfer, adding its simulated cycles and wall time to the totals."""
        sim = self._sim()
        start, before = time.perf_counter(), sim.time
        result = copy()
        self.memcpy_cycles += sim.time - before
        self.wall += time.perf_counter() - start
        return result

    # ----------------------------------------------------------------------- commands
    def memcpy_h2d(
        self,
        dest,
        src,
        x0,
        y0,
        width,
        height,
        elements,
        *,
        streaming=False,
        data_type=MemcpyDataType.MEMCPY_32BIT,
        order=MemcpyOrder.ROW_MAJOR,
        nonblock=False,
    ) -> None:
        sim = self._sim()
        words = _words(np.asarray(src), "memcpy_h2d: the source")
        data = self._host_view(words, height, width, elements, order)
        bits = MemcpyDataType(data_type).value
        if streaming:
            color = _color(dest, "memcpy_h2d")
            self._timed_copy(lambda: sim.h2d_stream(color, data, x0, y0, width, height, bits))
            return
        name = self._name(dest)
        self._timed_copy(lambda: sim.h2d(name, data, x0, y0, width, height, bits))

    def memcpy_d2h(
        self,
        dest,
        src,
        x0,
        y0,
        width,
        height,
        elements,
        *,
        streaming=False,
        data_type=MemcpyDataType.MEMCPY_32BIT,
        order=MemcpyOrder.ROW_MAJOR,
        nonblock=False,
    ) -> None:
        sim = self._sim()
        target = _words(np.asarray(dest), "memcpy_d2h: the destination").reshape(-1)
        bits = MemcpyDataType(data_type).value
        if streaming:
            color = _color(src, "memcpy_d2h")
            copy = lambda: sim.d2h_stream(color, x0, y0, width, height, elements, bits)  # noqa: E731
        else:
            name = self._name(src)
            copy = lambda: sim.d2h(name, x0, y0, width, height, elements, bits)  # noqa: E731
        out = self._timed_copy(copy)
        flat = out.reshape(-1) if order == MemcpyOrder.ROW_MAJOR else out.reshape(-1, order="F")
        if target.size != flat.size:
            raise FabricError(f"memcpy_d2h: destination holds {target.size}, needs {flat.size}")
        target[:] = flat.view(target.dtype)

    def launch(self, name: str, *args: object, nonblock: bool = False) -> None:
        sim = self._sim()
        start = time.perf_counter()
        sim.launch(name, tuple(args))
        seconds = time.perf_counter() - start
        self.wall += seconds
        self.launch_wall += seconds

    def call(self, name: str, args: list, nonblock: bool = False) -> None:
        self.launch(name, *args, nonblock=nonblock)

    def task_wait(self, _handle: object) -> None:
        return None

    # ------------------------------------------------------------------------ helpers
    def _name(self, symbol: object) -> str:
        if isinstance(symbol, _Symbol):
            return symbol.name
        raise FabricError("memcpy takes a symbol from get_id(...)")

    @staticmethod
    def _host_view(src: np.ndarray, h: int, w: int, n: int, order: MemcpyOrder) -> np.ndarray:
        flat = src.reshape(-1)
        if flat.size != h * w * n:
            raise FabricError(f"memcpy_h2d: source holds {flat.size} elements, needs {h * w * n}")
        if order == MemcpyOrder.ROW_MAJOR:
            return flat.reshape(h, w, n)
        return flat.reshape((h, w, n), order="F")


def _color(handle: object, call: str) -> int:
    """A streaming memcpy names its color by ID (an int), never by a symbol from get_id."""
    if isinstance(handle, _Symbol) or not isinstance(handle, int | np.integer):
        raise FabricError(f"{call}(streaming=True) takes a color ID, not {handle!r}")
    return int(handle)


def _words(array: np.ndarray, what: str) -> np.ndarray:
    """The host buffer as 32-bit words; the SDK moves nothing else, in either data type."""
    if array.dtype.itemsize != 4:
        raise FabricError(
            f"{what} is {array.dtype}; memcpy host buffers hold 32-bit elements (16-bit data "
            "goes in the low half of each word, with MEMCPY_16BIT)"
        )
    return array
