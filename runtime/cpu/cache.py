"""The compile cache: one JIT module per (program, parameters, host), reused by later runs.

The key is a digest of the bound task graph's full representation (kernel IR, sizes, regions):
sizes are compiled in as constants, so a program at different sizes is a different module,
while different input values or scalar arguments reuse the same one.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from kernelc.backends.cpu.compile import CompiledProgram
from kernelc.backends.cpu.machine import host
from kernelc.graph import TaskGraph
from kernelc.runtime.cpu.jit import JitModule

CAPACITY = 64  # modules kept; the least recently used is dropped beyond this


@dataclass(frozen=True)
class Loaded:
    program: CompiledProgram
    module: JitModule
    seconds: float  # lowering, optimisation and JIT code generation
    # the last run time of each task by thread count (see execute.py)
    task_seconds: dict[tuple[str, int], float] = field(default_factory=dict)


_lock = threading.Lock()
_modules: OrderedDict[str, Loaded] = OrderedDict()
compiles = 0  # how many modules were compiled since import (tests check that a hit compiles none)


def key(graph: TaskGraph) -> str:
    """The graph's digest on this host: sizes are compiled in, and so is the host's CPU."""
    m = host()
    return hashlib.sha256(
        "\n".join([m.triple, m.cpu, m.features, graph.digest]).encode()
    ).hexdigest()


def lookup(
    graph: TaskGraph, compile_fn: Callable[[TaskGraph], CompiledProgram]
) -> tuple[Loaded, bool]:
    """The loaded module of a graph and whether it came from the cache."""
    global compiles
    k = key(graph)
    with _lock:
        if k in _modules:
            _modules.move_to_end(k)
            return _modules[k], True
        program = compile_fn(graph)
        start = time.perf_counter()
        module = JitModule(program.llvm_ir, [t.symbol for t in program.tasks])
        loaded = Loaded(program, module, program.seconds + time.perf_counter() - start)
        _modules[k] = loaded
        compiles += 1
        while len(_modules) > CAPACITY:
            _modules.popitem(last=False)
        return loaded, False
