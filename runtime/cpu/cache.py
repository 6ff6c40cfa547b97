"""The compile cache: one JIT module per (program, parameters, host), reused by later runs.

The key is a digest of the bound task graph's full representation (kernel IR, sizes, regions):
sizes are compiled in as constants, so a program at different sizes is a different module,
while different input values or scalar arguments reuse the same one.
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
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


# digests of live graphs by identity: a bound graph is immutable and Program hands the same one
# to every run at the same sizes, so its (costly) representation is digested once
_digests: dict[int, tuple[weakref.ref, str]] = {}


def key(graph: TaskGraph) -> str:
    known = _digests.get(id(graph))
    if known is not None and known[0]() is graph:
        return known[1]
    m = host()
    text = "\n".join([m.triple, m.cpu, m.features, repr(graph)])
    digest = hashlib.sha256(text.encode()).hexdigest()
    ident = id(graph)
    _digests[ident] = (weakref.ref(graph, lambda _ref: _digests.pop(ident, None)), digest)
    return digest


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
